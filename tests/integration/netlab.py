"""netlab - a small Internet inside a network namespace, for the tests of
outbound mail (tests/integration/outbound.py).

Not a test itself (not executable).  A test calls enter() first: run as
root outside the lab, it re-executes the test under
`unshare --net --mount` (a new network namespace and a private mount
namespace, so nothing the lab does is seen outside it); inside, it
returns.  When the namespace cannot be made the test fails with a TAP
"not ok" that says why: it never skips.

Lab() then builds the world on the namespace's own loopback, every server
on the port it has on the Internet:

  10.0.0.53   DNS (dnsmasq, port 53): HOSTS, MX, A_ONLY below
  10.0.1.1    posta A   mx.a.test    (a.test)
  10.0.2.1    posta B   mx.b.test    (b.test, two.test, aonly.test)
  10.0.3.1    Postfix   mx.pf.test   (pf.test; STARTTLS)
  10.0.3.2    Postfix   mx.notls.test (notls.test; no STARTTLS)
  10.0.9.9    dead.two.test: the address exists, nothing listens (refused)
  10.0.5.5    client.lab.test: the source address of the test's own
              SMTP clients (send(), client())

On one loopback the kernel would pick the destination as the source
address of a connection; so every server's own client binds its address
(Postfix smtp_bind_address, posta smtp_bind_address in smtp.conf) and a
log shows who really connected.

/etc/resolv.conf is replaced (in the private mount namespace only) by
"nameserver 10.0.0.53", so Postfix's and the tools' own lookups see the
lab's zone too; posta is told with dns_servers = 10.0.0.53.  One test CA
(tests/fixtures/tls/mkcerts.sh) signs the servers' certificates mx-a,
mx-b and mx-pf; every instance trusts it.

  lab = Lab()               temp dir, addresses, resolv.conf, certificates
  lab.start_dns()           dnsmasq on 10.0.0.53:53 (a child, by PID);
  lab.stop_dns()            stop_dns() stops it (a DNS outage)
  lab.dig(name, type)       (status, [answer rdata...]) asked of dnsmasq
  lab.posta(key, ...)       a postalib.Posta for A or B on ADDR[key]:25
                            (+587 submission), not started
  lab.postfix()             a Postfix (not started): Postfix.start/stop
  lab.cleanup()             stops what the lab started (by PID), removes
                            the temp dir (kept when POSTA_KEEP_TMP=1)

Helpers for the checks: send() (SMTP with STARTTLS verified against the
lab CA, optional AUTH), content() and check_content() (a message with an
8-bit body, a 2000-character line and a base64 attachment, and the test
that a delivered copy is intact), maildir_files().
"""

import base64
import email
import email.policy
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile

import postalib
from postalib import BIN, MKCERTS, Posta, wait_until, write_file

ADDR = {
    "dns": "10.0.0.53",
    "a": "10.0.1.1",
    "b": "10.0.2.1",
    "pf": "10.0.3.1",
    "notls": "10.0.3.2",
    "dead": "10.0.9.9",
    "client": "10.0.5.5",
    "liar": "10.0.5.6",
}
DNS = ADDR["dns"]
AGENT = os.path.join(BIN, "smtp")

# (name, A record) of every host; each also gets its PTR
HOSTS = [
    ("ns.lab.test", ADDR["dns"]),
    ("mx.a.test", ADDR["a"]),
    ("mx.b.test", ADDR["b"]),
    ("mx.pf.test", ADDR["pf"]),
    ("mx.notls.test", ADDR["notls"]),
    ("dead.two.test", ADDR["dead"]),
    ("client.lab.test", ADDR["client"]),
]
# a PTR whose name has no A record: a client name that does not verify
PTR_ONLY = [("liar.lab.test", ADDR["liar"])]
# (domain, MX host, preference)
MX = [
    ("a.test", "mx.a.test", 10),
    ("b.test", "mx.b.test", 10),
    ("two.test", "dead.two.test", 10),
    ("two.test", "mx.b.test", 20),
    ("nullmx.test", ".", 0),
    ("pf.test", "mx.pf.test", 10),
    ("notls.test", "mx.notls.test", 10),
]
# names with an A record and no MX
A_ONLY = [("aonly.test", ADDR["b"])]

ENTER_ENV = "POSTA_NETLAB_OUTER"	# the outer namespace's inode


def agent_built():
    """True when the smtp delivery agent (BIN/smtp) exists."""
    return os.access(AGENT, os.X_OK)


def _netns_inode():
    return str(os.stat("/proc/self/ns/net").st_ino)


def _fail(why):
    print("not ok 1 - netlab: %s" % why, flush=True)
    print("1..1", flush=True)
    sys.exit(1)


def enter():
    """Make sure the test runs inside a lab namespace of its own: re-exec
    sys.argv under unshare --net --mount when outside, return when inside.
    A failure is a TAP "not ok" and exit 1."""
    outer = os.environ.get(ENTER_ENV)
    if outer is not None:
        if outer == _netns_inode():
            _fail("%s is set but this is not a new network namespace" %
                  ENTER_ENV)
        return
    if os.geteuid() != 0:
        _fail("must run as root: the lab is a network namespace "
              "(unshare --net) with servers on port 25")
    unshare = shutil.which("unshare")
    if unshare is None:
        _fail("unshare(1) not found (util-linux)")
    probe = subprocess.run([unshare, "--net", "--mount", "--", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        _fail("cannot create a network namespace (unshare --net --mount): "
              + (probe.stderr.strip() or "exit %d" % probe.returncode))
    env = dict(os.environ)
    env[ENTER_ENV] = _netns_inode()
    sys.stdout.flush()
    os.execve(unshare, [unshare, "--net", "--mount", "--", sys.executable,
                        os.path.abspath(sys.argv[0])] + sys.argv[1:], env)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          **kw)


def stop_pid(proc, timeout=10):
    """SIGTERM the child proc (a Popen), then SIGKILL after timeout."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def smtp_greeting(addr, port=25, timeout=2.0, source=None):
    """The first line a server at addr:port says, or "" on failure;
    source: the client address (default the lab's client)."""
    try:
        with socket.create_connection((addr, port), timeout,
                                      (source or ADDR["client"], 0)) as s:
            f = s.makefile("rb")
            line = f.readline().decode("utf-8", "replace").rstrip()
            try:
                s.sendall(b"QUIT\r\n")
            except OSError:
                pass
            return line
    except OSError:
        return ""


def _exit_on_signal(sig, frame):
    raise SystemExit(128 + sig)


class Lab:
    """The lab world; see the module comment."""

    def __init__(self):
        inside = os.environ.get(ENTER_ENV)
        if inside is None or inside == _netns_inode():
            raise RuntimeError("Lab() outside a lab namespace: call "
                               "netlab.enter() first")
        # SIGTERM (the runner's timeout) and SIGHUP unwind like an
        # exception, so that the caller's finally: lab.cleanup() runs
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _exit_on_signal)
        self.tmp = tempfile.mkdtemp(prefix="netlab.")
        os.chmod(self.tmp, 0o755)
        self.dns_proc = None
        self.instances = []	# Posta and Postfix objects to clean up
        self.resolv_mounted = False
        self.certs = os.path.join(self.tmp, "tls")
        self.ca = os.path.join(self.certs, "ca.pem")
        try:
            self._network()
            subprocess.run(["sh", MKCERTS, self.certs], check=True,
                           stdout=subprocess.DEVNULL)
            for f in os.listdir(self.certs):
                os.chmod(os.path.join(self.certs, f),
                         0o600 if f.endswith(".key") else 0o644)
        except BaseException:
            self.cleanup()
            raise

    def _network(self):
        for argv in (["ip", "link", "set", "lo", "up"],) + tuple(
                ["ip", "addr", "add", a + "/32", "dev", "lo"]
                for a in ADDR.values()):
            r = run(argv)
            if r.returncode != 0:
                raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr))
        resolv = os.path.join(self.tmp, "resolv.conf")
        write_file(resolv, "nameserver %s\noptions timeout:1 attempts:1\n"
                   % DNS)
        r = run(["mount", "--bind", resolv, "/etc/resolv.conf"])
        if r.returncode != 0:
            raise RuntimeError("mount --bind resolv.conf: " + r.stderr)
        self.resolv_mounted = True

    # ---- DNS -----------------------------------------------------------

    def dns_args(self):
        args = ["dnsmasq", "--conf-file=/dev/null", "--keep-in-foreground",
                "--user=root", "--port=53", "--listen-address=" + DNS,
                "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--no-negcache", "--local=/#/", "--local-ttl=1",
                "--pid-file=" + os.path.join(self.tmp, "dnsmasq.pid"),
                "--log-facility=" + os.path.join(self.tmp, "dnsmasq.log"),
                "--log-queries"]
        for name, addr in HOSTS + A_ONLY:
            args.append("--host-record=%s,%s" % (name, addr))
        for name, addr in HOSTS:
            rev = ".".join(reversed(addr.split("."))) + ".in-addr.arpa"
            args.append("--ptr-record=%s,%s" % (rev, name))
        for name, addr in PTR_ONLY:
            rev = ".".join(reversed(addr.split("."))) + ".in-addr.arpa"
            args.append("--ptr-record=%s,%s" % (rev, name))
        for dom, host, pref in MX:
            args.append("--mx-host=%s,%s,%d" % (dom, host, pref))
        return args

    def start_dns(self):
        self.dns_proc = subprocess.Popen(self.dns_args(),
                                         stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)

        def up():
            if self.dns_proc.poll() is not None:
                raise RuntimeError("dnsmasq exited %s:\n%s" % (
                    self.dns_proc.returncode, self.dns_log()))
            return self.dig("mx.a.test", "A")[0] == "NOERROR"
        if not wait_until(up, 10):
            raise RuntimeError("dnsmasq does not answer on %s\n%s" %
                               (DNS, self.dns_log()))

    def stop_dns(self):
        """Stop dnsmasq (by PID); start_dns() brings it back."""
        stop_pid(self.dns_proc)
        self.dns_proc = None

    def dns_log(self):
        try:
            with open(os.path.join(self.tmp, "dnsmasq.log")) as f:
                return f.read()
        except OSError:
            return ""

    def dig(self, name, qtype, server=DNS):
        """(status, [rdata, ...]) of a query to server; status "NOERROR",
        "NXDOMAIN", ... or "dig failed: ..." when there is no answer."""
        r = run(["dig", "+noall", "+comments", "+answer", "+time=1",
                 "+tries=1", "@" + server, name, qtype])
        m = re.search(r"status: ([A-Z]+)", r.stdout)
        if m is None:
            return "dig failed: " + (r.stdout + r.stderr).strip(), []
        answers = []
        for line in r.stdout.splitlines():
            if not line.strip() or line.startswith(";"):
                continue
            f = line.split(None, 4)
            if len(f) == 5 and f[3] == qtype:
                answers.append(f[4].strip())
        return m.group(1), answers

    # ---- posta -----------------------------------------------------------

    def posta(self, key, domain, domains=(), users="", posta_conf="",
              smtpd_conf="", smtp_conf="", tls_policy="", qmgr_conf=""):
        """A posta instance (not started) for domain on ADDR[key]: inet
        services mx (25, STARTTLS offered) and submission (587, STARTTLS
        then AUTH), the smtp agent on private/smtp when it is built;
        more local domains in domains; its smtp.conf trusts the lab CA and
        uses tls_policy (the text of a file: table) as
        smtp_tls_policy_maps."""
        services = """mx          inet {listen}:{smtp} 1 smtpd
    -o smtpd_tls_security_level=may
submission  inet {listen}:{submission} 1 smtpd
    -o smtpd_tls_security_level=encrypt -o smtpd_sasl_auth_enable=yes
    -o smtpd_client_restrictions=permit_sasl_authenticated,reject
submit      unix public/submit 1 smtpd -o smtpd_local_submit=yes
qmgr        unix private/qmgr 1 qmgr
local       unix private/local 1 local
"""
        if agent_built():
            services += "smtp        unix private/smtp 1 smtp\n"
        conf = ("dns_servers = %s\nmydestination = $mydomain, localhost%s\n"
                % (DNS, "".join(", " + d for d in domains)) + posta_conf)
        p = Posta(name="lab-" + key, domain=domain,
                  hostname="mx." + domain, posta_conf=conf, users=users,
                  services=services, listen=ADDR[key],
                  ports={"smtp": 25, "submission": 587},
                  tls_dir=self.certs, tls_server="mx-" + key,
                  program_conf={"smtpd": smtpd_conf,
                                "qmgr": "queue_run_delay = 1s\n" +
                                qmgr_conf})
        write_file(os.path.join(p.etc, "smtp.conf"),
                   "smtp_tls_ca_file = %s/tls/ca.pem\n"
                   "smtp_tls_policy_maps = file:%s/tls_policy\n"
                   "smtp_bind_address = %s\n%s" %
                   (p.etc, p.etc, ADDR[key], smtp_conf))
        write_file(os.path.join(p.etc, "tls_policy"),
                   tls_policy or "# no policy\n")
        # start() waits for the services of this master.conf only
        p.ports = {"smtp": 25, "submission": 587}
        self.instances.append(p)
        return p

    # ---- Postfix ---------------------------------------------------------

    def postfix(self):
        pf = Postfix(self)
        self.instances.append(pf)
        return pf

    # ---- the end ---------------------------------------------------------

    def cleanup(self):
        for inst in reversed(self.instances):
            try:
                inst.cleanup()
            except Exception as e:  # the others must still stop
                print("# cleanup: %r" % e, flush=True)
        self.instances = []
        stop_pid(self.dns_proc)
        self.dns_proc = None
        if self.resolv_mounted:
            run(["umount", "/etc/resolv.conf"])
            self.resolv_mounted = False
        if os.environ.get("POSTA_KEEP_TMP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)


class Postfix:
    """A private Postfix (Debian's programs, our main.cf and master.cf)
    for pf.test on 10.0.3.1:25 with STARTTLS (certificate mx-pf) and for
    notls.test on 10.0.3.2:25 without it; both domains delivered by
    virtual(8) into Maildirs under mail/.  Mail for a.test and b.test is
    relayed to posta A and B by its transport table
    (smtp:[10.0.1.1]:25), TLS verified against the lab CA (policy
    "verify match=mx.a.test"), no DNS needed on its side.

    start() runs `postfix -c ETC start-fg` as a child of the test (the
    master stays in the foreground under it); stop() runs `postfix -c ETC
    stop`, waits for that child and signals what is left of the master's
    processes by PID.  The log is maillog (maillog_file)."""

    USERS = ("user@pf.test", "user@notls.test")

    def __init__(self, lab):
        self.lab = lab
        self.top = os.path.join(lab.tmp, "postfix")
        self.etc = os.path.join(self.top, "etc")
        self.queue = os.path.join(self.top, "queue")
        self.data = os.path.join(self.top, "data")
        self.mail = os.path.join(self.top, "mail")
        self.logfile = os.path.join(self.top, "maillog")
        self.proc = None
        self.master_pid = None
        pw = pwd.getpwnam("posta")
        for d in (self.etc, self.queue, self.data, self.mail):
            os.makedirs(d)
        os.chmod(self.top, 0o755)
        os.chown(self.data, pwd.getpwnam("postfix").pw_uid, -1)
        os.chown(self.mail, pw.pw_uid, pw.pw_gid)
        write_file(os.path.join(self.etc, "vmailbox"), "".join(
            "%s %s/%s/Maildir/\n" % (u, u.split("@")[1], u.split("@")[0])
            for u in self.USERS))
        write_file(os.path.join(self.etc, "transport"),
                   "a.test smtp:[%s]:25\nb.test smtp:[%s]:25\n" %
                   (ADDR["a"], ADDR["b"]))
        write_file(os.path.join(self.etc, "tls_policy"),
                   "[%s]:25 verify match=mx.a.test\n"
                   "[%s]:25 verify match=mx.b.test\n" %
                   (ADDR["a"], ADDR["b"]))
        certs = lab.certs
        write_file(os.path.join(self.etc, "main.cf"), """\
# main.cf of the netlab Postfix (generated)
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.pf.test
mydomain = pf.test
myorigin = $mydomain
inet_interfaces = {pf}, {notls}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8, 10.0.0.0/16
mydestination =
virtual_mailbox_domains = pf.test, notls.test
virtual_mailbox_base = {mail}
virtual_mailbox_maps = texthash:{etc}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
alias_maps =
alias_database =
local_recipient_maps =
biff = no
transport_maps = texthash:{etc}/transport
smtpd_tls_cert_file = {certs}/mx-pf.pem
smtpd_tls_key_file = {certs}/mx-pf.key
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtp_tls_CAfile = {certs}/ca.pem
smtp_tls_security_level = may
smtp_tls_policy_maps = texthash:{etc}/tls_policy
smtp_tls_loglevel = 1
smtp_bind_address = {pf}
maillog_file = {log}
maillog_file_prefixes = {top}
""".format(queue=self.queue, data=self.data, pf=ADDR["pf"],
           notls=ADDR["notls"], mail=self.mail, etc=self.etc,
           uid=pw.pw_uid, gid=pw.pw_gid, certs=certs, log=self.logfile,
           top=self.top))
        write_file(os.path.join(self.etc, "master.cf"), """\
# master.cf of the netlab Postfix (generated); nothing chrooted
{pf}:25 inet n - n - - smtpd
{notls}:25 inet n - n - - smtpd
    -o smtpd_tls_security_level=none -o myhostname=mx.notls.test
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
""".format(pf=ADDR["pf"], notls=ADDR["notls"]))

    def cmd(self, *args):
        return subprocess.run(["postfix", "-c", self.etc] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60)

    def start(self, timeout=20):
        r = self.cmd("check")
        if r.returncode != 0:
            raise RuntimeError("postfix check:\n" + r.stdout + r.stderr)
        out = open(os.path.join(self.top, "start-fg.out"), "w")
        self.proc = subprocess.Popen(
            ["postfix", "-c", self.etc, "start-fg"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        out.close()
        pidfile = os.path.join(self.queue, "pid", "master.pid")

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("postfix start-fg exited %s:\n%s" % (
                    self.proc.returncode, self.log()[-2000:]))
            try:
                with open(pidfile) as f:
                    self.master_pid = int(f.read().strip())
            except (OSError, ValueError):
                return False
            return (smtp_greeting(ADDR["pf"]).startswith("220") and
                    smtp_greeting(ADDR["notls"]).startswith("220"))
        if not wait_until(up, timeout, 0.1):
            raise RuntimeError("Postfix does not answer on %s:25\n%s" %
                               (ADDR["pf"], self.log()[-2000:]))
        return self

    def _tree(self):
        """The master and its descendants: {pid: starttime}."""
        table = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            rest = st[st.rfind(")") + 2:].split()
            if rest[0] != "Z":
                table[int(d)] = (int(rest[1]), rest[19])
        out, todo = {}, [self.master_pid] if self.master_pid else []
        while todo:
            pid = todo.pop()
            if pid in table and pid not in out:
                out[pid] = table[pid][1]
                todo.extend(p for p, (pp, _) in table.items() if pp == pid)
        return out

    def stop(self):
        if self.proc is None:
            return
        left = self._tree()
        self.cmd("stop")
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
        wait_until(lambda: not self._still(left), 5, 0.1)
        for pid in self._still(left):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stop_pid(self.proc, 5)
        self.proc = None

    @staticmethod
    def _still(pids):
        """Those of {pid: starttime} that still run (the same process)."""
        out = []
        for pid, start in pids.items():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    st = f.read()
            except OSError:
                continue
            rest = st[st.rfind(")") + 2:].split()
            if rest[19] == start and rest[0] != "Z":
                out.append(pid)
        return out

    def cleanup(self):
        self.stop()

    def log(self):
        return postalib.read_text(self.logfile)

    def wait_log(self, pattern, timeout=15):
        return wait_until(lambda: re.search(pattern, self.log()), timeout)

    def mails(self, addr):
        user, dom = addr.split("@")
        return maildir_files(os.path.join(self.mail, dom, user, "Maildir"))

    def wait_mails(self, addr, count, timeout=20):
        wait_until(lambda: len(self.mails(addr)) >= count, timeout)
        return self.mails(addr)


def maildir_files(md):
    """The files of Maildir md's new/, oldest first."""
    return postalib.maildir_files(os.path.join(md, "new"))


# ---- talking SMTP ---------------------------------------------------------

def tls_context(ca):
    return ssl.create_default_context(cafile=ca)


def client(addr, port, helo="client.lab.test"):
    """An smtplib.SMTP connected to addr:port from the client address."""
    return smtplib.SMTP(addr, port, local_hostname=helo, timeout=15,
                        source_address=(ADDR["client"], 0))


def starttls(s, ca, name):
    """STARTTLS on smtplib.SMTP s, the certificate verified against ca for
    name; EHLO again."""
    s._host = name	# what smtplib gives ssl as server_hostname
    s.starttls(context=tls_context(ca))
    s.ehlo()


def send(addr, port, sender, rcpts, msg, ca, tls_name=None, login=None,
         mail_options=()):
    """Send msg (bytes) to addr:port from the client address: EHLO,
    STARTTLS verified against ca for tls_name (when given), AUTH
    login=(user, password) when given.  The refused recipients of
    sendmail() ({} when all were taken)."""
    with client(addr, port) as s:
        s.ehlo()
        if tls_name is not None:
            starttls(s, ca, tls_name)
        if login is not None:
            s.login(*login)
        return s.sendmail(sender, rcpts, msg, mail_options=list(mail_options))


LONG_LINE = "".join(chr(ord("a") + i % 26) for i in range(2000))
EIGHT_BIT = "Grüße aus dem Labor: café, naïve, Ελληνικά, 日本語"


def content(sender, rcpt, subject, seed=1):
    """(message bytes, attachment bytes): an 8-bit text part with a
    2000-character line and a base64 attachment of binary data."""
    attach = bytes((i * 7 + seed * 13 + (i >> 8)) % 256 for i in range(5000))
    b64 = base64.encodebytes(attach).decode().replace("\n", "\r\n")
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
           "Message-ID: <lab-%d-%s>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"=_lab\"\r\n\r\n"
           "--=_lab\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n"
           "%s\r\n%s\r\n.a line that starts with a dot\r\n\r\n"
           "--=_lab\r\nContent-Type: application/octet-stream\r\n"
           "Content-Disposition: attachment; filename=\"data.bin\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n%s"
           "--=_lab--\r\n" % (sender, rcpt, subject, seed, rcpt.replace(
               "@", "."), EIGHT_BIT, LONG_LINE, b64))
    return msg.encode("utf-8"), attach


def check_content(tap, raw, attach, what):
    """Checks that a delivered copy (raw bytes, LF or CRLF lines) of a
    content() message is intact."""
    text = raw.replace(b"\r\n", b"\n")
    tap.ok(EIGHT_BIT.encode("utf-8") in text,
           "%s: 8-bit body byte-exact" % what, text[:1500])
    tap.ok(b"\n.a line that starts with a dot\n" in text,
           "%s: a line starting with a dot kept (dot-stuffing undone)" %
           what)
    # the long line arrives broken into lines of at most 998 characters;
    # put together (a leading continuation blank dropped) it is the same
    lines = text.decode("utf-8", "replace").split("\n")
    start = [i for i, l in enumerate(lines) if l.startswith(LONG_LINE[:40])]
    joined, pieces = "", []
    if start:
        i = start[0]
        while i < len(lines) and len(joined) < len(LONG_LINE):
            piece = lines[i]
            pieces.append(len(piece))
            joined += piece[1:] if (i > start[0] and
                                    piece.startswith(" ")) else piece
            i += 1
    tap.ok(joined == LONG_LINE and max(pieces or [9999]) <= 998,
           "%s: the 2000-character line folded at <= 998 and intact" % what,
           "piece lengths %s" % pieces)
    m = email.message_from_bytes(text, policy=email.policy.default)
    got = None
    for part in m.walk():
        if part.get_filename() == "data.bin":
            got = part.get_payload(decode=True)
    tap.ok(got == attach, "%s: base64 attachment byte-identical" % what,
           "got %s bytes" % (None if got is None else len(got)))


def wait_for(pred, timeout=20.0):
    return wait_until(pred, timeout, 0.1)
