#!/usr/bin/env python3
"""local.py - the local delivery agent, driven the way qmgr drives it.

Lays out a queue and a config in a temp dir, writes queue files with
tests/helpers/mkqueue (lib/queue, as smtpd writes them), starts
$BUILD/bin/local as master would (-c DIR -n local, the listening socket
as fd 3, POSTA_LISTEN_FDS=1; as root, so it drops to posta), and talks
to it with a small client of the lib/ipc wire format (attr records).
A fake qmgr socket records the "new" notices of forwarded mail.

Checks, hostile input first: malformed records, bad ids and paths,
rcpt_index out of range; then delivery into Maildir/new with
Return-Path, Delivered-To and the exact body with LF line ends;
aliases, extensions, lists, owner-, an alias to itself, alias loops,
unknown users (5.1.1), Delivered-To loops (5.4.6), quota (4.2.2, per
user and local_quota_default), forwarding to a new queue file in
incoming/, the log lines, pipelining, parallel connections, SIGTERM.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from postalib import (BUILD, IpcConn, Tap, attr_decode, attr_encode,
                      ipc_serve, start_with_listener, unix_listener,
                      write_file)

LOCAL = os.path.join(BUILD, "bin", "local")
MKQUEUE = os.path.join(BUILD, "tests", "helpers", "mkqueue")


# ---- the answers of local (lib/ipc records) -------------------------

def groups(resp):
    """Per-recipient results of a deliver response: list of dicts."""
    out = []
    for name, value in resp:
        if name == "rcpt_index":
            out.append({"rcpt_index": int(value)})
        elif out and name in ("result", "dsn", "reason"):
            out[-1][name] = value.decode()
    return out


def first(resp, name):
    for n, v in resp:
        if n == name:
            return v.decode()
    return None


# ---- the instance --------------------------------------------------------

T = tempfile.mkdtemp(prefix="posta-local.")
os.chmod(T, 0o755)
ETC = os.path.join(T, "etc")
Q = os.path.join(T, "queue")
MAIL = os.path.join(T, "mail")
HOME = os.path.join(T, "home", "hu")
LOG = os.path.join(T, "local.log")
IS_ROOT = os.geteuid() == 0
OWNER = "posta" if IS_ROOT else None

for d in (ETC, MAIL, HOME, os.path.join(Q, "private")):
    os.makedirs(d)
for d in ("incoming", "active", "deferred", "hold", "corrupt"):
    os.makedirs(os.path.join(Q, d))
if IS_ROOT:
    for d in [MAIL, HOME, Q] + [os.path.join(Q, x) for x in
                               os.listdir(Q)]:
        shutil.chown(d, "posta", "posta")
os.chmod(ETC, 0o755)


write_file(os.path.join(ETC, "posta.conf"), """# local.py
myhostname = mx.example.test
mydomain = example.test
mydestination = $mydomain, localhost
virtual_mailbox_domains = virt.test
queue_directory = {q}
mail_root = {mail}
{owner}
user_database = file:{etc}/users
alias_maps = file:{etc}/aliases
recipient_delimiter = +
""".format(q=Q, mail=MAIL, etc=ETC,
           owner="mail_owner = posta" if IS_ROOT else
           "mail_owner = %s" % os.environ.get("USER", "root")))
write_file(os.path.join(ETC, "local.conf"), """local_quota_default = 50k
local_workers = 4
""")
write_file(os.path.join(ETC, "users"), """demo@example.test:{{PLAIN}}demo::::::quota=100M
other@example.test:{{PLAIN}}x::::::quota=100M
me@example.test:{{PLAIN}}x::::::quota=100M
small@example.test:{{PLAIN}}x::::::quota=1k
nq@example.test:{{PLAIN}}x
hu@example.test:{{PLAIN}}x::::{home}
vu@virt.test:{{PLAIN}}x::::::quota=100M
tu@routed.test:{{PLAIN}}x
""".format(home=HOME))
write_file(os.path.join(ETC, "aliases"), """postmaster: demo@example.test
alias: demo
list: demo, other, far@remote.test
owner-list: demo
me: me, other
fwd: someone@remote.test
loop1: loop2
loop2: loop1
ghost: nobody
cmd: |/bin/sh
info@virt.test: vu@virt.test
""")

# the listening socket master would pass, and a fake qmgr
lsock = unix_listener(os.path.join(Q, "private", "local"), 64)
qsock = unix_listener(os.path.join(Q, "private", "qmgr"), 16, 0o666)
qmgr_new = []


def fake_qmgr(pairs):
    d = dict((n, v.decode()) for n, v in pairs)
    qmgr_new.append((d.get("request"), d.get("id")))
    return [("status", "0")]


ipc_serve(qsock, fake_qmgr, timeout=5)

env = dict(os.environ)
env["POSTA_LOG_STDERR"] = "1"
env.pop("POSTA_LOG_FILE", None)
logf = open(LOG, "wb")
proc = start_with_listener([LOCAL, "-c", ETC, "-n", "local"], lsock, env,
                           stdin=subprocess.DEVNULL, stdout=logf,
                           stderr=logf)
SOCK = os.path.join(Q, "private", "local")
t = Tap()


def log_text():
    with open(LOG, "rb") as f:
        return f.read().decode("utf-8", "replace")


def cleanup():
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    try:
        qsock.close()
    except OSError:
        pass
    shutil.rmtree(T, ignore_errors=True)


def mkqueue(sender, rcpts, body, active=True):
    args = [MKQUEUE] + (["-a"] if active else []) + [Q, sender] + rcpts
    # as smtpd does: the queue file belongs to posta, mode 0600
    kw = {"user": "posta", "group": "posta"} if IS_ROOT else {}
    r = subprocess.run(args, input=body, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=True, **kw)
    return r.stdout.decode().strip()


def deliver(qid, idx, cl=None, path=None):
    own = cl is None
    if own:
        cl = IpcConn.connect(SOCK)
    req = [("request", "deliver"), ("id", qid),
           ("path", path if path is not None else "active/" + qid)]
    req += [("rcpt_index", str(i)) for i in idx]
    resp = cl.call(req)
    if own:
        cl.close()
    return resp


def maildir(user, domain="example.test", base=None):
    return os.path.join(base or os.path.join(MAIL, domain, user), "Maildir")


def new_files(md):
    d = os.path.join(md, "new")
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d))


def read(path):
    with open(path, "rb") as f:
        return f.read()


BODY = (b"From: Sender <sender@remote.test>\n"
        b"To: demo@example.test\n"
        b"Subject: test\n"
        b"\n"
        b"line one\n"
        b".leading dot stays\n"
        b"\n"
        b"last line\n")
BODY_LF = BODY


def one(resp):
    g = groups(resp) if resp is not None else []
    return g[0] if len(g) == 1 else {"resp": resp}


try:
    up = False
    for _ in range(200):
        try:
            c = IpcConn.connect(SOCK)
            r = c.call([("request", "ping")])
            c.close()
            up = r is not None and first(r, "status") == "0"
            if up:
                break
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if not t.ok(up, "local starts and answers ping", log_text()):
        raise SystemExit

    # ---- hostile input ----
    c = IpcConn.connect(SOCK)
    c.send_raw(b"99999999999:request=x,")
    r = c.recv()
    t.ok(r is not None and first(r, "status") == "3" and c.recv() is None,
         "an over-long record: status 3 and the connection closed", r)
    c.close()
    c = IpcConn.connect(SOCK)
    c.send_raw(b"x:request=deliver,0:,")
    r = c.recv()
    t.ok(r is not None and first(r, "status") == "3" and c.recv() is None,
         "a bad length prefix: status 3 and closed", r)
    c.close()
    c = IpcConn.connect(SOCK)
    c.send_raw(b"15:request=deliv")
    c.s.shutdown(socket.SHUT_WR)
    r = c.recv()
    t.ok(r is not None and first(r, "status") == "3",
         "a truncated record: status 3", r)
    c.close()
    c = IpcConn.connect(SOCK)
    r = c.call([("id", "X"), ("request", "deliver")])
    t.ok(r is not None and first(r, "status") == "3",
         "a record not starting with request=: status 3", r)
    c.close()
    c = IpcConn.connect(SOCK)
    r = c.call([("request", "explode")])
    t.ok(r is not None and first(r, "status") == "2" and
         "unknown request" in first(r, "reason"),
         "an unknown request: status 2", r)
    r = c.call([("request", "ping")])
    t.ok(r is not None and first(r, "status") == "0",
         "the connection stays usable after a refused request", r)
    qid = mkqueue("sender@remote.test", ["demo@example.test"], BODY)
    r = deliver("../../../etc", [0], c)
    t.eq(first(r, "status"), "2", "a bad id: status 2")
    r = deliver(qid, [0], c, path="active/../../../../etc/passwd")
    t.eq(first(r, "status"), "2", "a path outside the queue: status 2")
    r = deliver(qid, [0], c, path="corrupt/" + qid)
    t.eq(first(r, "status"), "2", "a path in corrupt/: status 2")
    r = deliver(qid, [], c)
    t.eq(first(r, "status"), "2", "no rcpt_index: status 2")
    r = c.call([("request", "deliver"), ("id", qid),
                ("path", "active/" + qid), ("rcpt_index", "-1")])
    t.eq(first(r, "status"), "2", "a negative rcpt_index: status 2")
    r = c.call([("request", "deliver"), ("id", qid),
                ("path", "active/" + qid),
                ("rcpt_index", "99999999999999999999999")])
    t.eq(first(r, "status"), "2", "an overflowing rcpt_index: status 2")
    r = c.call([("request", "deliver"), ("id", qid),
                ("path", "active/" + qid), ("rcpt_index", "0\0")])
    t.eq(first(r, "status"), "2", "a rcpt_index with NUL: status 2")
    r = c.call([("request", "deliver"), ("id", qid),
                ("path", "active/" + qid)] + [("rcpt_index", "0")] * 1001)
    t.eq(first(r, "status"), "2", "1001 rcpt_index: status 2")
    r = deliver(qid, [1], c)
    t.ok(first(r, "status") == "2" and "out of range" in first(r, "reason"),
         "rcpt_index out of range: status 2", r)
    t.eq(new_files(maildir("demo")), [],
         "nothing was delivered by the refused requests")
    r = deliver("1K13CHCQ8KJK", [0], c)
    t.ok(first(r, "status") == "1" and "queue file" in first(r, "reason"),
         "a missing queue file: status 1 (temporary)", r)
    c.close()

    # ---- plain delivery ----
    g = one(deliver(qid, [0]))
    t.eq((g.get("result"), g.get("dsn"), g.get("reason")),
         ("sent", "2.0.0", "delivered to maildir"),
         "delivery to demo: sent 2.0.0 delivered to maildir")
    files = new_files(maildir("demo"))
    t.eq(len(files), 1, "one file in demo's Maildir/new")
    md = maildir("demo")
    t.ok(all(os.path.isdir(os.path.join(md, d))
             for d in ("tmp", "new", "cur")),
         "the Maildir was created with tmp, new, cur")
    want = (b"Return-Path: <sender@remote.test>\n"
            b"Delivered-To: demo@example.test\n" + BODY_LF)
    got = read(files[0]) if files else b""
    t.eq(got, want, "the file is Return-Path, Delivered-To, then the exact "
         "body with LF line ends")
    t.ok(files and re.search(r",S=%d(,|$)" % len(want),
                             os.path.basename(files[0])),
         "the file name carries ,S=<size>", files)
    if IS_ROOT:
        st = os.stat(files[0]) if files else None
        import pwd
        t.ok(st is not None and st.st_uid == pwd.getpwnam("posta").pw_uid,
             "the mail file belongs to posta (privileges dropped)")
    t.ok(os.path.exists(os.path.join(Q, "active", qid)),
         "local leaves the queue file alone")
    pat = (r"posta/local\[%d\]: %s: to=<demo@example\.test>, relay=local, "
           r"delay=\d+\.\d\d, dsn=2\.0\.0, status=sent "
           r"\(delivered to maildir\)" % (proc.pid, qid))
    t.ok(re.search(pat, log_text()), "the Postfix-like log line",
         log_text())

    # ---- aliases ----
    n0 = len(new_files(maildir("demo")))
    qid = mkqueue("a@remote.test", ["postmaster@example.test",
                                    "Alias@Example.TEST",
                                    "demo+tag@example.test"], BODY)
    r = deliver(qid, [0, 1, 2])
    g = groups(r)
    t.eq([(x["rcpt_index"], x["result"], x["dsn"]) for x in g],
         [(0, "sent", "2.0.0"), (1, "sent", "2.0.0"), (2, "sent", "2.0.0")],
         "postmaster, an alias in capitals, an extension: all sent")
    files = new_files(maildir("demo"))
    t.eq(len(files) - n0, 3, "three more files in demo's Maildir")
    dts = sorted(read(f).split(b"\n")[1] for f in files[n0:])
    t.eq(dts, [b"Delivered-To: demo+tag@example.test",
               b"Delivered-To: demo@example.test",
               b"Delivered-To: demo@example.test"],
         "Delivered-To names the mailbox address (with its extension)")
    t.ok(re.search(r"%s: to=<demo@example\.test>, "
                   r"orig_to=<postmaster@example\.test>, relay=local, "
                   r"delay=\d+\.\d\d, dsn=2\.0\.0, status=sent "
                   r"\(delivered to maildir\)" % qid, log_text()),
         "the log line has orig_to= for an alias", log_text())
    r = deliver(qid, [2, 0])
    t.eq([x["rcpt_index"] for x in groups(r)], [2, 0],
         "results come in the order of the request")

    # ---- lists, owner-, forwarding ----
    n0 = len(new_files(maildir("demo")))
    qmgr_new.clear()
    qid = mkqueue("sender@remote.test", ["list@example.test"], BODY)
    g = one(deliver(qid, [0]))
    m = re.match(r"delivered to maildir, forwarded as ([0-9A-Z]{12})$",
                 g.get("reason", ""))
    t.ok(g.get("result") == "sent" and m,
         "a list with local and remote members: sent, delivered and "
         "forwarded", g)
    t.eq(len(new_files(maildir("demo"))) - n0, 1, "list: demo got it")
    of = new_files(maildir("other"))
    t.eq(len(of), 1, "list: other got it")
    t.ok(of and read(of[0]).startswith(
        b"Return-Path: <owner-list@example.test>\n"),
        "list mail goes out under owner-list",
        read(of[0])[:80] if of else None)
    newid = m.group(1) if m else "none"
    nf = os.path.join(Q, "incoming", newid)
    t.ok(os.path.exists(nf), "list: the remote member is in a new queue "
         "file in incoming/")
    data = read(nf) if os.path.exists(nf) else b""
    rec = attr_decode(data)
    envl = dict()
    rcpts = []
    content = b""
    if rec is not None:
        for n, v in rec[0]:
            if n == "rcpt":
                rcpts.append(v.decode())
            else:
                envl[n] = v.decode()
        content = data[rec[1]:][:int(envl.get("content_size", "0"))]
    t.eq((envl.get("sender"), rcpts),
         ("owner-list@example.test", ["far@remote.test"]),
         "the new queue file: sender owner-list, recipient far@remote.test")
    want = (b"Delivered-To: list@example.test\r\n" +
            BODY.replace(b"\n", b"\r\n"))
    t.eq(content, want, "the new queue file: Delivered-To, then the "
         "content (CRLF)")
    t.ok(("new", newid) in qmgr_new, "qmgr was told: request=new id=NEWID",
         qmgr_new)

    qid = mkqueue("sender@remote.test", ["fwd@example.test"], BODY)
    g = one(deliver(qid, [0]))
    m = re.match(r"forwarded as ([0-9A-Z]{12})$", g.get("reason", ""))
    t.ok(g.get("result") == "sent" and m and
         os.path.exists(os.path.join(Q, "incoming", m.group(1))),
         "an alias to a remote address: sent, forwarded as NEWID", g)
    if m:
        rec = attr_decode(read(os.path.join(Q, "incoming", m.group(1))))
        d = dict((n, v.decode()) for n, v in rec[0])
        t.eq((d.get("sender"), d.get("rcpt"), d.get("orcpt")),
             ("sender@remote.test", "someone@remote.test",
              "rfc822;fwd@example.test"),
             "forward keeps the sender and records the original recipient")
    # the forwarded copy comes back: a loop
    loopbody = b"Delivered-To: fwd@example.test\n" + BODY
    qid = mkqueue("sender@remote.test", ["fwd@example.test"], loopbody)
    g = one(deliver(qid, [0]))
    t.eq((g.get("result"), g.get("dsn"), g.get("reason")),
         ("failed", "5.4.6", "mail forwarding loop"),
         "mail that carries our Delivered-To for the address: 5.4.6")

    n0 = len(new_files(maildir("other")))
    nme = len(new_files(maildir("me")))
    qid = mkqueue("sender@remote.test", ["me@example.test"], BODY)
    g = one(deliver(qid, [0]))
    t.ok(g.get("result") == "sent" and
         len(new_files(maildir("me"))) == nme + 1 and
         len(new_files(maildir("other"))) == n0 + 1,
         "an alias that names itself delivers to the user, and the rest",
         g)

    # Delivered-To in the body is no loop; deep in a long header it is
    n0 = len(new_files(maildir("demo")))
    qid = mkqueue("sender@remote.test", ["demo@example.test"],
                  BODY + b"Delivered-To: demo@example.test\n")
    g = one(deliver(qid, [0]))
    t.eq(g.get("result"), "sent", "Delivered-To in the body is not a loop")
    longhdr = b"".join(b"X-Filler-%d: %s\n" % (i, b"f" * 70)
                       for i in range(400))
    qid = mkqueue("sender@remote.test", ["demo@example.test"],
                  longhdr + b"DELIVERED-TO:   <Demo@Example.Test>  \n" + BODY)
    g = one(deliver(qid, [0]))
    t.eq((g.get("result"), g.get("dsn")), ("failed", "5.4.6"),
         "Delivered-To after 30 KB of header, in other case and <>: a loop")
    t.eq(len(new_files(maildir("demo"))) - n0, 1,
         "only the first of the two was delivered")
    # a domain in neither list that qmgr routed here: delivered, not
    # forwarded back
    nin = len(os.listdir(os.path.join(Q, "incoming")))
    qid = mkqueue("sender@remote.test", ["tu@routed.test"], BODY)
    g = one(deliver(qid, [0]))
    t.ok(g.get("result") == "sent" and
         len(new_files(maildir("tu", "routed.test"))) == 1 and
         len(os.listdir(os.path.join(Q, "incoming"))) == nin,
         "a recipient in a domain routed to local is delivered, not "
         "forwarded", g)

    # ---- failures ----
    qid = mkqueue("sender@remote.test",
                  ["loop1@example.test", "nobody@example.test",
                   "ghost@example.test", "cmd@example.test",
                   "demo@example.test"],
                  b"Delivered-To: demo@example.test\n" + BODY)
    g = groups(deliver(qid, [0, 1, 2, 3, 4]))
    got = [(x["result"], x["dsn"], x["reason"]) for x in g]
    t.eq(got[0:1], [("failed", "5.4.6", "alias loop")],
         "an alias loop fails with 5.4.6")
    t.eq(got[1:3], [("failed", "5.1.1", "unknown user")] * 2,
         "an unknown user, also behind an alias: failed 5.1.1")
    t.ok(len(got) > 3 and got[3][0] == "failed" and got[3][1] == "5.3.5",
         "an alias to a command is refused", got)
    t.eq(got[4:5], [("failed", "5.4.6", "mail forwarding loop")],
         "a Delivered-To loop to a mailbox: 5.4.6 mail forwarding loop")
    t.ok(not os.path.exists(os.path.join(MAIL, "example.test", "nobody")),
         "no mailbox is made for an unknown user")
    t.ok(re.search(r"%s: to=<nobody@example\.test>, relay=local, "
                   r"delay=\S+, dsn=5\.1\.1, status=bounced \(unknown user\)"
                   % qid, log_text()), "the log says status=bounced",
         log_text())

    # ---- quota ----
    big = BODY + b"x" * 2000 + b"\n"
    qid = mkqueue("sender@remote.test", ["small@example.test"], big)
    g = one(deliver(qid, [0]))
    t.eq((g.get("result"), g.get("dsn"), g.get("reason")),
         ("deferred", "4.2.2", "Mailbox full"),
         "over the user's quota=: deferred 4.2.2 Mailbox full")
    t.eq(new_files(maildir("small")), [], "nothing left in new/")
    qid = mkqueue("sender@remote.test", ["small@example.test"], BODY)
    g = one(deliver(qid, [0]))
    t.eq(g.get("result"), "sent", "a message under the quota is delivered")
    huge = BODY + (b"y" * 999 + b"\n") * 60
    qid = mkqueue("sender@remote.test", ["nq@example.test",
                                        "demo@example.test"], huge)
    g = groups(deliver(qid, [0, 1]))
    t.eq([(x["result"], x["dsn"]) for x in g],
         [("deferred", "4.2.2"), ("sent", "2.0.0")],
         "local_quota_default (50k) applies to a user without quota=")

    # ---- homes and virtual domains ----
    qid = mkqueue("", ["hu@example.test", "info@virt.test"], BODY)
    g = groups(deliver(qid, [0, 1]))
    t.eq([x["result"] for x in g], ["sent", "sent"],
         "a user with a home, a virtual alias: sent")
    hf = new_files(os.path.join(HOME, "Maildir"))
    t.ok(len(hf) == 1 and read(hf[0]).startswith(b"Return-Path: <>\n"),
         "the home user's mail is in HOME/Maildir, with Return-Path: <>",
         hf)
    t.eq(len(new_files(maildir("vu", "virt.test"))), 1,
         "the virtual user's mail is in mail_root/virt.test/vu/Maildir")

    # ---- pipelining and parallel connections ----
    ids = [mkqueue("p@remote.test", ["other@example.test"], BODY)
           for _ in range(3)]
    c = IpcConn.connect(SOCK)
    c.send_raw(b"".join(attr_encode([("request", "deliver"), ("id", i),
                                ("path", "active/" + i),
                                ("rcpt_index", "0")]) for i in ids))
    res = [c.recv() for _ in ids]
    c.close()
    t.ok(all(r is not None and first(r, "status") == "0" and
             groups(r)[0]["result"] == "sent" for r in res),
         "three pipelined requests: three answers, all sent", res)
    n0 = len(new_files(maildir("demo")))
    ids = [mkqueue("p@remote.test", ["demo@example.test"], BODY)
           for _ in range(12)]
    results = {}

    def worker(qid):
        try:
            results[qid] = one(deliver(qid, [0])).get("result")
        except OSError as e:
            results[qid] = str(e)
    ths = [threading.Thread(target=worker, args=(i,)) for i in ids]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    t.ok(list(results.values()) == ["sent"] * 12 and
         len(new_files(maildir("demo"))) - n0 == 12,
         "12 connections at once: 12 deliveries", results)
    names = [os.path.basename(f).split(",")[0]
             for f in new_files(maildir("demo"))]
    t.eq(len(names), len(set(names)), "every Maildir file name is unique")

    # ---- SIGTERM ----
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = None
    t.eq(rc, 0, "SIGTERM: local exits 0")
    t.ok("ERROR: AddressSanitizer" not in log_text() and
         "runtime error" not in log_text(), "no sanitizer report",
         log_text())
finally:
    print("1..%d" % t.n, flush=True)
    cleanup()
sys.exit(1 if t.failed else 0)
