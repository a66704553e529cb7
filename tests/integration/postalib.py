"""postalib - a whole posta instance for the integration tests.

Not a test itself (not executable): the end-to-end tests import it.

Posta(...) lays out a temporary instance: etc/ (posta.conf, master.conf,
users, aliases, TLS certificates from a test CA), queue/, mail/, log/,
with every service on 127.0.0.1 ports chosen at run time, then start()
runs the real master (build/bin/master -f) as a child of the test and
stop() ends it by PID (SIGTERM, then waits).  Helpers read the log, the
queue directories and the Maildirs the way an admin would.

Tap is the tiny TAP writer the test runner counts ("ok N - what").

The tests that run one daemon alone share the rest: attr_encode() and
attr_decode() (the lib/attr record format), IpcConn and ipc_call() (a
client of a lib/ipc service on a unix socket), ipc_serve() and
ipc_answer() (a fake lib/ipc service), unix_listener() and
start_with_listener() (a daemon started as master starts it, its
listening socket as fd 3), free_ports() and write_file().
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
BIN = os.path.join(BUILD, "bin")
MKCERTS = os.path.join(ROOT, "tests", "fixtures", "tls", "mkcerts.sh")

DEMO_HASH = None
with open(os.path.join(ROOT, "conf", "users")) as _f:
    for _line in _f:
        if _line.startswith("demo@example.test:"):
            DEMO_HASH = _line.strip()


class Tap:
    """TAP output: one "ok N - what" or "not ok N - what" per check.

    Under a failed check the text of diag (when not None) follows as
    comment lines, each diag_prefix + line: its last -diag_lines lines
    when diag_lines is negative, its first diag_lines lines otherwise.
    """

    def __init__(self, diag_lines=-30, diag_prefix="# "):
        self.n = 0
        self.failed = 0
        self.diag_lines = diag_lines
        self.diag_prefix = diag_prefix

    def ok(self, cond, what, diag=None):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, what), flush=True)
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, what), flush=True)
            if diag is not None:
                lines = str(diag).splitlines()
                if self.diag_lines < 0:
                    lines = lines[self.diag_lines:]
                else:
                    lines = lines[:self.diag_lines]
                for line in lines:
                    print(self.diag_prefix + line, flush=True)
        return bool(cond)

    def eq(self, got, want, what, diag=None):
        text = "got %r, want %r" % (got, want)
        if diag is not None:
            text += "\n" + str(diag)
        return self.ok(got == want, what, text)

    def done(self):
        print("1..%d" % self.n, flush=True)
        return 1 if self.failed else 0


def free_ports(k):
    """k distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    socks = []
    for _ in range(k):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def free_port():
    return free_ports(1)[0]


def wait_until(pred, timeout=15.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def read_text(path):
    """the file's text, "" when it cannot be read (a log not yet made)"""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def write_file(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


# ---- the lib/attr record format and lib/ipc ------------------------------

def attr_encode(pairs):
    """One record, "<len>:name=value,...0:,", from (name, value) pairs;
    a value may be bytes, str or int."""
    out = b""
    for name, value in pairs:
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str):
            value = value.encode()
        item = name.encode() + b"=" + value
        out += str(len(item)).encode() + b":" + item + b","
    return out + b"0:,"


def attr_decode(buf):
    """The record at the front of buf: (pairs, bytes used), each pair
    (name str, value bytes); None while the record is incomplete.
    ValueError when an attribute or the end marker lacks its ','."""
    pairs = []
    off = 0
    while True:
        colon = buf.find(b":", off)
        if colon < 0:
            return None
        length = int(buf[off:colon])
        start = colon + 1
        if len(buf) < start + length + 1:
            return None
        if buf[start + length:start + length + 1] != b",":
            raise ValueError("bad attr framing")
        off = start + length + 1
        if length == 0:
            return pairs, off
        item = buf[start:start + length]
        name, _, value = item.partition(b"=")
        pairs.append((name.decode(), value))


class IpcConn:
    """Records both ways on a connected stream socket (lib/ipc).  Bytes
    after a record wait for the next recv(): pipelined records are kept."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    @classmethod
    def connect(cls, path, timeout=20.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        return cls(s)

    def send_raw(self, data):
        self.s.sendall(data)

    def recv(self):
        """The next record's pairs, or None at end of input."""
        while True:
            r = attr_decode(self.buf)
            if r is not None:
                pairs, used = r
                self.buf = self.buf[used:]
                return pairs
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def call(self, pairs):
        self.send_raw(attr_encode(pairs))
        return self.recv()

    def close(self):
        self.s.close()


def ipc_call(path, pairs, timeout=10.0):
    """One request on a new connection to the service at path: the
    answer's pairs.  EOFError when the service closes without one."""
    c = IpcConn.connect(path, timeout)
    try:
        resp = c.call(pairs)
    finally:
        c.close()
    if resp is None:
        raise EOFError("connection closed")
    return resp


def unix_listener(path, backlog, mode=None):
    """A stream socket listening on path (chmod mode first, if given)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    if mode is not None:
        os.chmod(path, mode)
    s.listen(backlog)
    return s


def ipc_answer(sock, answer):
    """Serve one connection of a fake lib/ipc service: each request's
    pairs go to answer(pairs), whose pairs are sent back, until the peer
    closes or an OSError."""
    conn = IpcConn(sock)
    try:
        while True:
            req = conn.recv()
            if req is None:
                return
            sock.sendall(attr_encode(answer(req)))
    except OSError:
        pass


def ipc_serve(lsock, answer, timeout=None):
    """A fake lib/ipc service on the listening socket lsock, in a daemon
    thread, one connection at a time (ipc_answer()).  The thread ends
    when lsock is closed; timeout bounds each wait on a connection."""

    def serve():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            c.settimeout(timeout)
            ipc_answer(c, answer)
            c.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    return th


def start_with_listener(argv, lsock, env=None, **popen_kw):
    """Start argv the way master starts a daemon: the listening socket
    lsock as its fd 3 (no other copy of it) and POSTA_LISTEN_FDS=1 added
    to env (default os.environ).  popen_kw go to subprocess.Popen."""
    env = dict(os.environ if env is None else env)
    env["POSTA_LISTEN_FDS"] = "1"
    fd = lsock.fileno()
    # sh moves the socket to fd 3 (closing the original), then execs argv
    script = ('exec "$0" "$@"' if fd == 3 else
              'exec 3<&%d %d<&-; exec "$0" "$@"' % (fd, fd))
    return subprocess.Popen(["/bin/sh", "-c", script] + list(argv),
                            env=env, pass_fds=(fd,), **popen_kw)


def maildir_files(d):
    """The files of Maildir folder d (new/, cur/...), oldest first."""
    out = []
    try:
        for n in os.listdir(d):
            try:
                out.append((os.stat(os.path.join(d, n)).st_mtime_ns, n))
            except OSError:
                continue
    except OSError:
        return []
    return [os.path.join(d, n) for _, n in sorted(out)]


class Posta:
    """One posta instance in a temporary directory."""

    def __init__(self, name="posta", domain="example.test",
                 hostname="mx.example.test", posta_conf="", master_extra="",
                 users="", aliases="", services=None, extra_ports=(),
                 program_conf=None, listen="127.0.0.1", ports=None,
                 tls_dir=None, tls_server="server"):
        """listen: the address of the inet services ({listen} in services
        and master_extra); ports: fixed ports by service name instead of
        free ones (e.g. {"smtp": 25} on a lab address); tls_dir: copy the
        certificates of this mkcerts.sh directory (one CA shared by
        several instances) instead of making new ones; tls_server: the
        base name of the pair there used as tls_cert_file/tls_key_file."""
        self.tmp = tempfile.mkdtemp(prefix="posta-%s." % name)
        os.chmod(self.tmp, 0o755)
        self.etc = os.path.join(self.tmp, "etc")
        self.queue = os.path.join(self.tmp, "queue")
        self.mail = os.path.join(self.tmp, "mail")
        self.logdir = os.path.join(self.tmp, "log")
        self.logfile = os.path.join(self.logdir, "posta.log")
        self.domain = domain
        self.hostname = hostname
        self.listen = listen
        self.tls_server = tls_server
        for d in (self.etc, self.mail, self.logdir):
            os.makedirs(d)
        self.certs = os.path.join(self.etc, "tls")
        if tls_dir is not None:
            shutil.copytree(tls_dir, self.certs)
        else:
            subprocess.run(["sh", MKCERTS, self.certs], check=True,
                           stdout=subprocess.DEVNULL)
        self.ports = {"smtp": free_port(), "submission": free_port(),
                      "submissions": free_port()}
        for name in extra_ports:
            self.ports[name] = free_port()
        self.ports.update(ports or {})
        self.proc = None
        self._write_conf(posta_conf, master_extra, users, aliases, services)
        for prog, text in (program_conf or {}).items():
            with open(os.path.join(self.etc, prog + ".conf"), "w") as f:
                f.write(text)
        if os.geteuid() == 0:
            # master runs as root and drops its children to posta
            for d in (self.mail, self.logdir):
                shutil.chown(d, "posta", "posta")
            for f in os.listdir(self.certs):
                os.chmod(os.path.join(self.certs, f), 0o644)
            os.chmod(os.path.join(self.certs, "server.key"), 0o600)
            os.chmod(os.path.join(self.certs, tls_server + ".key"), 0o600)

    def _write_conf(self, posta_conf, master_extra, users, aliases, services):
        owner = "posta" if os.geteuid() == 0 else os.environ.get("USER")
        with open(os.path.join(self.etc, "posta.conf"), "w") as f:
            f.write("""# test instance
myhostname = {host}
mydomain = {dom}
mydestination = $mydomain, localhost
mynetworks = 127.0.0.0/8
queue_directory = {q}
daemon_directory = {bin}
mail_root = {mail}
mail_owner = {owner}
maillog_file = {log}
user_database = file:{etc}/users
alias_maps = file:{etc}/aliases
tls_cert_file = {etc}/tls/{crt}.pem
tls_key_file = {etc}/tls/{crt}.key
tls_ca_file = {etc}/tls/ca.pem
master_restart_delay = 0
{extra}
""".format(host=self.hostname, dom=self.domain, q=self.queue, bin=BIN,
                mail=self.mail, owner=owner, log=self.logfile, etc=self.etc,
                extra=posta_conf, crt=self.tls_server))
        if services is None:
            services = """smtp        inet {listen}:{smtp} 1 smtpd
submission  inet {listen}:{submission} 1 smtpd
    -o smtpd_tls_security_level=encrypt -o smtpd_sasl_auth_enable=yes
    -o smtpd_client_restrictions=permit_sasl_authenticated,reject
submissions inet {listen}:{submissions} 1 smtpd
    -o smtpd_tls_wrappermode=yes -o smtpd_sasl_auth_enable=yes
    -o smtpd_client_restrictions=permit_sasl_authenticated,reject
submit      unix public/submit 1 smtpd -o smtpd_local_submit=yes
qmgr        unix private/qmgr 1 qmgr
local       unix private/local 1 local
"""
        with open(os.path.join(self.etc, "master.conf"), "w") as f:
            f.write(services.format(listen=self.listen, **self.ports))
            f.write(master_extra.format(listen=self.listen, **self.ports))
        with open(os.path.join(self.etc, "users"), "w") as f:
            f.write(DEMO_HASH.replace("example.test", self.domain) + "\n")
            f.write(users)
        with open(os.path.join(self.etc, "aliases"), "w") as f:
            f.write("postmaster: demo@%s\n" % self.domain)
            f.write(aliases)

    # ---- running --------------------------------------------------------

    def start(self, timeout=15):
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "master"), "-f", "-c", self.etc],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = wait_until(lambda: self._ports_up(), timeout)
        if not ok:
            raise RuntimeError("posta did not start:\n" + self.log())
        return self

    def _ports_up(self):
        if self.proc.poll() is not None:
            raise RuntimeError("master exited %s:\n%s" %
                               (self.proc.returncode, self.log()))
        for port in self.ports.values():
            try:
                socket.create_connection((self.listen, port), 0.2).close()
            except OSError:
                return False
        return os.path.exists(os.path.join(self.queue, "private", "local"))

    def pids(self, prog):
        """PIDs of the running children of master named prog."""
        out = []
        if self.proc is None:
            return out
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    stat = f.read()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    argv0 = f.read().split(b"\0")[0].decode()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.proc.pid and os.path.basename(argv0) == prog:
                out.append(int(pid))
        return out

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        if os.environ.get("POSTA_KEEP_TMP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)

    def finish(self, tap):
        """cleanup(), after the log's last 40 lines if a check failed."""
        if tap.failed:
            print("# log tail:\n# " +
                  "\n# ".join(self.log().splitlines()[-40:]))
        self.cleanup()

    def posta(self, *args, stdin=None):
        return subprocess.run([os.path.join(BIN, "posta"), "-c", self.etc] +
                              list(args), input=stdin, capture_output=True,
                              text=True, timeout=60)

    # ---- looking ---------------------------------------------------------

    def log(self):
        return read_text(self.logfile)

    def wait_log(self, text, timeout=15):
        return wait_until(lambda: text in self.log(), timeout)

    def queue_ids(self, sub):
        d = os.path.join(self.queue, sub)
        try:
            # incoming/.idseq is the queue's ID counter, not a message
            return sorted(n for n in os.listdir(d)
                          if not n.endswith(".tmp") and n[0] != ".")
        except OSError:
            return []

    def maildir(self, user="demo", domain=None):
        return os.path.join(self.mail, domain or self.domain, user, "Maildir")

    def mails(self, user="demo", domain=None, folder="new"):
        """The files of a Maildir folder, oldest first (by delivery time:
        the names' M<usec> part does not sort as text)."""
        return maildir_files(os.path.join(self.maildir(user, domain),
                                          folder))

    def wait_mails(self, count, user="demo", domain=None, timeout=20):
        wait_until(lambda: len(self.mails(user, domain)) >= count, timeout)
        return self.mails(user, domain)

    def read_mail(self, path):
        with open(path, "rb") as f:
            return f.read()


def run_main(fn):
    """Run fn(tap) and exit with TAP's status; report a crash as not ok."""
    tap = Tap()
    try:
        fn(tap)
    except Exception as e:  # a broken test is a failed test
        import traceback
        tap.ok(False, "test raised %s" % type(e).__name__,
               traceback.format_exc())
    sys.exit(tap.done())
