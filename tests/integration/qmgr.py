#!/usr/bin/env python3
"""qmgr.py - the queue manager end to end, with a fake local service.

qmgr runs as master would run it (-c CONFIG -n qmgr, the listening
socket private/qmgr as fd 3, POSTA_LISTEN_FDS=1) on a temporary queue.
A fake "local" delivery agent written here listens on private/local,
speaks the ipc wire format (lib/attr.h records) and answers
sent/deferred/failed per recipient as each test wants; it keeps what it
was asked and a copy of each message it "delivered".  Queue files are
written with tests/helpers/mkq_qmgr (lib/queue).  Prints TAP.
"""
import fcntl
import os
import pwd
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

from postalib import (BIN, BUILD, Tap, attr_decode, attr_encode, ipc_answer,
                      ipc_call, start_with_listener, unix_listener,
                      wait_until)

QMGR = os.path.join(BIN, "qmgr")
MKQ = os.path.join(BUILD, "tests", "helpers", "mkq_qmgr")

tap = Tap(diag_lines=-15, diag_prefix="#   ")


def ok(cond, what, detail=""):
    return tap.ok(cond, what, detail if detail else None)


def parse_queue_file(path):
    """envelope dict, content bytes, list of status dicts"""
    with open(path, "rb") as f:
        data = f.read()
    pairs, used = attr_decode(data)
    env = {"rcpt": []}
    for name, value in pairs:
        v = value.decode("utf-8", "replace")
        if name == "rcpt":
            env["rcpt"].append(v)
        else:
            env[name] = v
    size = int(env["content_size"])
    content = data[used:used + size]
    off = used + size
    status = []
    while off < len(data):
        r = attr_decode(data[off:])
        if r is None:
            break
        status.append({k: v.decode() for k, v in r[0]})
        off += r[1]
    return env, content, status


# ---- the fake local delivery agent ----

class FakeLocal:
    """answers per recipient address: self.rules[addr] = list of
    (result, dsn, reason), used in turn (the last one stays); default
    sent.  self.delay seconds before each answer; self.status != 0
    fails whole requests."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.rules = {}
        self.delay = 0.0
        self.status = 0
        self.requests = []          # (id, [addr...], [index...])
        self.delivered = []         # (id, addr, sender, content)
        self.active = 0
        self.max_active = 0
        self.starts = []            # time.monotonic() of each request
        fake = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                ipc_answer(self.request, fake.answer)

        class Server(socketserver.ThreadingMixIn,
                     socketserver.UnixStreamServer):
            daemon_threads = True

        if os.path.exists(path):
            os.unlink(path)
        self.server = Server(path, Handler)
        os.chmod(path, 0o666)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def answer(self, req):
        d = {}
        idx = []
        for name, value in req:
            if name == "rcpt_index":
                idx.append(int(value))
            else:
                d[name] = value.decode()
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.starts.append(time.monotonic())
        try:
            if self.delay:
                time.sleep(self.delay)
            if d.get("request") != "deliver":
                return [("status", 2), ("reason", "unknown")]
            path = os.path.join(QDIR, d["path"])
            env, content, _ = parse_queue_file(path)
            addrs = [env["rcpt"][i] for i in idx]
            with self.lock:
                self.requests.append((d["id"], addrs, idx))
            if self.status != 0:
                return [("status", self.status),
                        ("reason", "local is unhappy")]
            out = [("status", 0)]
            for i, a in zip(idx, addrs):
                with self.lock:
                    rule = self.rules.get(a)
                    if rule:
                        res = rule[0]
                        if len(rule) > 1:
                            rule.pop(0)
                    else:
                        res = ("sent", "2.0.0", "delivered to maildir")
                if res[0] == "sent":
                    with self.lock:
                        self.delivered.append((d["id"], a, env["sender"],
                                               content))
                out += [("rcpt_index", i), ("result", res[0]),
                        ("dsn", res[1]), ("reason", res[2])]
            return out
        finally:
            with self.lock:
                self.active -= 1

    def delivered_to(self, addr):
        with self.lock:
            return [x for x in self.delivered if x[1] == addr]


# ---- the test bed ----

T = tempfile.mkdtemp(prefix="posta-qmgr.")
os.chmod(T, 0o755)
QDIR = os.path.join(T, "queue")
ETC = os.path.join(T, "etc")
LOG = os.path.join(T, "maillog")
OWNER = "posta"
if os.geteuid() == 0:
    try:
        pwd.getpwnam(OWNER)
    except KeyError:
        OWNER = "nobody"
else:
    OWNER = pwd.getpwuid(os.geteuid()).pw_name
for d in ("incoming", "active", "deferred", "hold", "corrupt", "private"):
    os.makedirs(os.path.join(QDIR, d))
os.makedirs(ETC)
with open(os.path.join(ETC, "posta.conf"), "w") as f:
    f.write("""mydomain = example.test
myhostname = mx.example.test
mydestination = $mydomain, localhost
queue_directory = %s
mail_owner = %s
postmaster_address = postmaster@example.test
""" % (QDIR, OWNER))
with open(os.path.join(ETC, "transport"), "w") as f:
    f.write("discard.test discard:\n"
            "error.test error:5.7.1 go away\n"
            ".sub.example.org discard:thrown away\n"
            "odd.test nosuchtransport:\n")
with open(os.path.join(ETC, "qmgr.conf"), "w") as f:
    f.write("""queue_run_delay = 60s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 1h
local_destination_concurrency_limit = 2
transport_maps = file:%s/transport
""" % ETC)


def chown_queue():
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(OWNER)
    for root, dirs, files in os.walk(QDIR):
        for x in dirs + files:
            p = os.path.join(root, x)
            if not os.path.islink(p) and not p.endswith("/private/local"):
                os.chown(p, pw.pw_uid, pw.pw_gid)
    os.chown(QDIR, pw.pw_uid, pw.pw_gid)


chown_queue()
LOCAL = FakeLocal(os.path.join(QDIR, "private", "local"))
qmgr_proc = None
lsock = None


def start_qmgr(extra=()):
    global qmgr_proc, lsock
    path = os.path.join(QDIR, "private", "qmgr")
    if lsock is None:
        if os.path.exists(path):
            os.unlink(path)
        lsock = unix_listener(path, 64, 0o666)
    env = dict(os.environ, POSTA_LOG_FILE=LOG)
    env.pop("POSTA_LOG_STDERR", None)
    qmgr_proc = start_with_listener([QMGR, "-c", ETC, "-n", "qmgr"] +
                                    list(extra), lsock, env,
                                    stdout=subprocess.DEVNULL,
                                    stderr=open(os.path.join(T, "stderr"),
                                                "a"))
    wait_until(lambda: "started:" in log_text()[log_mark:], 10)


def stop_qmgr(sig=signal.SIGTERM):
    global qmgr_proc
    if qmgr_proc is None:
        return None
    qmgr_proc.send_signal(sig)
    try:
        rc = qmgr_proc.wait(10)
    except subprocess.TimeoutExpired:
        qmgr_proc.kill()
        rc = qmgr_proc.wait()
    qmgr_proc = None
    return rc


def log_text():
    try:
        with open(LOG, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


log_mark = 0


def wait(cond, timeout=10.0):
    return wait_until(cond, timeout)


def ipc(name, **attrs):
    resp = ipc_call(os.path.join(QDIR, "private", "qmgr"),
                    [("request", name)] + list(attrs.items()), 10)
    d = {k: v.decode() for k, v in resp}
    return int(d["status"]), d


def mkq(sender, *rcpts, opts=(), body=None):
    if body is None:
        body = "From: <%s>\nTo: <%s>\nSubject: test\n\nhello\n" % (
            sender, rcpts[0])
    p = subprocess.run([MKQ] + list(opts) + [QDIR, sender] + list(rcpts),
                       input=body.encode(), capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode())
    qid = p.stdout.decode().strip()
    chown_queue()
    return qid


def where(qid):
    return [d for d in ("incoming", "active", "deferred", "hold", "corrupt")
            if os.path.exists(os.path.join(QDIR, d, qid))]


def gone(qid):
    return where(qid) == []


def new(qid):
    return ipc("new", id=qid)[0]


def queue_empty():
    return all(not [x for x in os.listdir(os.path.join(QDIR, d))
                    if not x.endswith(".tmp") and x[0] != "."]
               for d in ("incoming", "active", "deferred"))


def removed_logged(qid):
    return ("%s: removed" % qid) in log_text()


try:
    start_qmgr()
    ok(qmgr_proc.poll() is None, "qmgr starts with the socket as fd 3",
       log_text())

    # ---- hostile requests first ----
    st, d = ipc("delete", id="../../etc/passwd")
    ok(st == 2 and d.get("reason") == "bad queue ID",
       "a queue ID with a path in it is refused", d)
    st, d = ipc("hold", id="0" * 200)
    ok(st == 2, "an over-long queue ID is refused", d)
    st, d = ipc("delete")
    ok(st == 2, "delete without id= is refused", d)
    st, d = ipc("frobnicate", id="X")
    ok(st == 2, "an unknown request gets status 2", d)
    st, d = ipc("release", id="1K13CPE15B6S")
    ok(st == 2 and d.get("reason") == "no such message",
       "release of an unknown ID: no such message", d)
    st, d = ipc("new", id="1K13CPE15B6T")
    ok(st == 2 and d.get("reason") == "no such message",
       "new for an ID not in incoming/: no such message", d)
    # a file in incoming/ that is not a queue ID is left alone
    junk = os.path.join(QDIR, "incoming", "not-an-id")
    with open(junk, "w") as f:
        f.write("x")
    stale = os.path.join(QDIR, "incoming", "1K13STA1E000.tmp")
    fresh = os.path.join(QDIR, "incoming", "1K13STA1E001.tmp")
    for p in (stale, fresh):
        with open(p, "w") as f:
            f.write("half written")
    two_days = time.time() - 2 * 86400
    os.utime(stale, (two_days, two_days))
    chown_queue()
    ipc("scan")
    time.sleep(0.3)
    ok(os.path.exists(junk), "a file that is not a queue ID is ignored")
    ok(not os.path.exists(stale) and os.path.exists(fresh),
       "a stale incoming/ID.tmp (over a day old) is removed, a fresh one "
       "kept")
    os.unlink(junk)
    os.unlink(fresh)

    # ---- an ID.tmp whose rename to ID was lost (smtpd said 250, then
    # the machine crashed): whole, sealed, unlocked -> queued ----
    def as_tmp(qid):
        tmp = os.path.join(QDIR, "incoming", qid + ".tmp")
        os.rename(os.path.join(QDIR, "incoming", qid), tmp)
        return tmp

    lost = mkq("s@example.test", "lost@example.test")
    lost_tmp = as_tmp(lost)
    held = mkq("s@example.test", "held@example.test")
    held_tmp = as_tmp(held)
    torn = mkq("s@example.test", "torn@example.test")
    torn_tmp = as_tmp(torn)
    with open(torn_tmp, "r+b") as f:	# a block that never hit the disk
        data = f.read()
        at = data.index(b"hello")
        f.seek(at)
        f.write(b"jello")
    lockf = open(held_tmp, "rb")	# a writer still at work
    fcntl.flock(lockf, fcntl.LOCK_EX)
    ipc("scan")
    ok(wait(lambda: gone(lost) and not os.path.exists(lost_tmp)),
       "scan: an unlocked, sealed ID.tmp with a good check sum is queued "
       "and delivered", where(lost))
    ok(("%s: recovered incoming/%s.tmp" % (lost, lost)) in log_text(),
       "log: ID: recovered incoming/ID.tmp", log_text()[-600:])
    ok(os.path.exists(held_tmp) and gone(held),
       "an ID.tmp a writer holds locked is left alone", where(held))
    ok(os.path.exists(torn_tmp) and gone(torn) and
       not [r for r in LOCAL.requests if r[0] == torn],
       "an ID.tmp whose check sum does not match is not delivered",
       where(torn))
    lockf.close()
    ipc("scan")
    ok(wait(lambda: gone(held) and not os.path.exists(held_tmp)),
       "once the lock is gone, the next scan queues it", where(held))
    os.unlink(torn_tmp)

    # ---- 1. plain delivery, both local recipients in one request ----
    qid = mkq("s@example.test", "a@example.test", "b@example.test")
    ok(new(qid) == 0, "new id=ID answers 0")
    ok(wait(lambda: gone(qid)), "a message in incoming/ is delivered and "
       "removed", where(qid))
    reqs = [r for r in LOCAL.requests if r[0] == qid]
    ok(len(reqs) == 1 and reqs[0][2] == [0, 1] and
       reqs[0][1] == ["a@example.test", "b@example.test"],
       "both recipients went to local in one request", reqs)
    lt = log_text()
    ok(("%s: from=<s@example.test>, size=" % qid) in lt and
       "nrcpt=2 (queue active)" in lt and removed_logged(qid),
       "log: from=<...>, size=, nrcpt=2 (queue active) and removed", lt)

    # ---- 2. the smtp agent is not running: deferred with 4.3.0 ----
    qid = mkq("s@example.test", "x@remote.test")
    new(qid)
    ok(wait(lambda: where(qid) == ["deferred"]),
       "mail for a remote domain is deferred", where(qid))
    env, content, status = parse_queue_file(
        os.path.join(QDIR, "deferred", qid))
    ok(status and status[-1]["status"] == "deferred" and
       status[-1]["dsn"] == "4.3.0" and
       status[-1]["reason"].startswith("delivery temporarily suspended: "
                                       "connect private/smtp") and
       int(status[-1]["next_try"]) > 0,
       "the status record says why (4.3.0, agent unreachable) and when "
       "to retry", status)
    ok(wait(lambda: ("%s: to=<x@remote.test>, relay=smtp, delay=" % qid)
            in log_text()) and
       "dsn=4.3.0, status=deferred (delivery temporarily suspended: "
       "connect private/smtp" in log_text(),
       "log: to=<..>, relay=smtp, ..., status=deferred")
    st, d = ipc("delete", id=qid)
    ok(st == 0 and wait(lambda: gone(qid)) and removed_logged(qid),
       "delete id= removes a deferred message", d)

    # ---- 3. a local deferral, retried after the back-off ----
    LOCAL.rules["c@example.test"] = [("deferred", "4.2.2", "mailbox full"),
                                     ("sent", "2.0.0", "ok")]
    qid = mkq("s@example.test", "c@example.test")
    new(qid)
    ok(wait(lambda: where(qid) == ["deferred"]),
       "a recipient local defers: the file goes to deferred/", where(qid))
    if where(qid) == ["deferred"]:
        env, content, status = parse_queue_file(
            os.path.join(QDIR, "deferred", qid))
        ok(status[-1]["reason"] == "mailbox full" and
           status[-1]["dsn"] == "4.2.2",
           "the deferral reason is recorded in the file", status)
        mt = os.stat(os.path.join(QDIR, "deferred", qid)).st_mtime
        ok(abs(mt - int(status[-1]["next_try"])) <= 1 and
           mt >= time.time() - 1, "the deferred file's mtime is its next try",
           (mt, status))
    else:
        ok(False, "the deferral reason is recorded in the file")
        ok(False, "the deferred file's mtime is its next try")
    t0 = time.time()
    ok(wait(lambda: gone(qid), 8) and
       len(LOCAL.delivered_to("c@example.test")) == 1,
       "retried after the back-off and delivered (%.1fs)" %
       (time.time() - t0))

    # ---- 4. a permanent failure bounces to the sender ----
    LOCAL.rules["bad@example.test"] = [("failed", "5.1.1",
                                        "unknown user: \"bad\"")]
    qid = mkq("sender@example.test", "bad@example.test", "ok@example.test")
    new(qid)
    ok(wait(lambda: gone(qid)), "a message with a failed recipient is "
       "removed once all are final", where(qid))
    ok(wait(lambda: LOCAL.delivered_to("sender@example.test")),
       "a bounce was queued and delivered to the sender")
    b = LOCAL.delivered_to("sender@example.test")
    text = b[0][3].decode("utf-8", "replace") if b else ""
    ok(b and b[0][2] == "" and "multipart/report" in text and
       "report-type=delivery-status" in text and
       "Final-Recipient: rfc822; bad@example.test" in text and
       "Action: failed" in text and "5.1.1" in text and
       "ok@example.test" not in text.split("message/rfc822")[0]
       .split("message/delivery-status")[-1],
       "the bounce: null sender, RFC 3464 multipart/report for the failed "
       "recipient only", text[:3000])
    lt = log_text()
    ok(("%s: sender non-delivery notification: " % qid) in lt,
       "log: sender non-delivery notification: NEWID")

    # ---- 4b. failures are reported at the end of their round, once ----
    LOCAL.rules["bad3@example.test"] = [("failed", "5.1.1", "no bad3")]
    LOCAL.rules["late@example.test"] = [("deferred", "4.2.2", "full"),
                                        ("failed", "5.2.0", "gave up")]
    qid = mkq("mixed@example.test", "bad3@example.test",
              "late@example.test", "ok2@example.test")
    new(qid)
    ok(wait(lambda: LOCAL.delivered_to("mixed@example.test")),
       "a recipient failed, another deferred: the notice comes now, "
       "not when the deferred one is done")
    first = LOCAL.delivered_to("mixed@example.test")
    t1 = first[0][3].decode("utf-8", "replace") if first else ""
    ok(where(qid) == ["deferred"] and "bad3@example.test" in t1 and
       "Final-Recipient: rfc822; late@example.test" not in t1,
       "... while the message waits in deferred/; only bad3 in it",
       (where(qid), t1[:1500]))
    if where(qid) == ["deferred"]:
        env, content, status = parse_queue_file(
            os.path.join(QDIR, "deferred", qid))
        ok(any(x.get("notified") == "1" and x.get("rcpt_index") == "0"
               for x in status), "the file records bad3 as notified",
           status)
    else:
        ok(False, "the file records bad3 as notified")
    ok(wait(lambda: gone(qid), 10) and
       wait(lambda: len(LOCAL.delivered_to("mixed@example.test")) >= 2),
       "the deferred one fails on its retry: a second notice")
    time.sleep(0.5)
    notes = LOCAL.delivered_to("mixed@example.test")
    t2 = notes[1][3].decode("utf-8", "replace") if len(notes) > 1 else ""
    ok(len(notes) == 2 and
       "Final-Recipient: rfc822; late@example.test" in t2 and
       "Final-Recipient: rfc822; bad3@example.test" not in t2,
       "the second notice has late only: bad3 is not reported twice",
       [n[3][:200] for n in notes])

    # ---- 5. NOTIFY=NEVER: no bounce ----
    before = len(LOCAL.delivered)
    LOCAL.rules["bad2@example.test"] = [("failed", "5.1.1", "no such user")]
    qid = mkq("quiet@example.test", "bad2@example.test", opts=["-N", "1"])
    new(qid)
    ok(wait(lambda: gone(qid)), "NOTIFY=NEVER failure: removed")
    time.sleep(0.5)
    ok(not LOCAL.delivered_to("quiet@example.test") and
       ("%s: sender non-delivery" % qid) not in log_text(),
       "NOTIFY=NEVER: no bounce")

    # ---- 6. a failed bounce goes to the postmaster once, then stops ----
    LOCAL.rules["bad3@example.test"] = [("failed", "5.1.1", "no such user")]
    LOCAL.rules["postmaster@example.test"] = [("failed", "5.2.2",
                                               "postmaster is full")]
    qid = mkq("", "bad3@example.test")
    new(qid)
    ok(wait(lambda: gone(qid)), "a failed null-sender message is removed")
    ok(wait(lambda: ("%s: postmaster non-delivery notification: " % qid)
            in log_text()),
       "a failed bounce is reported to postmaster_address",
       log_text()[-2000:])
    ok(wait(lambda: "undeliverable postmaster notification discarded"
            in log_text()),
       "the failed postmaster notice is dropped with a log line")
    time.sleep(1.0)
    pm = [r for r in LOCAL.requests if "postmaster@example.test" in r[1]]
    ok(len(pm) == 1 and queue_empty(),
       "no loop: one postmaster attempt, the queue is empty",
       (pm, os.listdir(os.path.join(QDIR, "incoming"))))
    ok(not [r for r in LOCAL.requests if "" in r[1]],
       "nothing is ever sent to the null sender")
    del LOCAL.rules["postmaster@example.test"]

    # ---- 7. corrupt files go to corrupt/ and block nothing ----
    bad_id = "1K13BADF11E0"
    with open(os.path.join(QDIR, "incoming", bad_id), "wb") as f:
        f.write(b"99999:garbage,")
    bad_id2 = "1K13BADF11E1"
    with open(os.path.join(QDIR, "incoming", bad_id2), "wb") as f:
        f.write(attr_encode([("v", "1"), ("id", "1K13BADF11E9"),
                          ("arrival", "1"), ("sender", ""),
                          ("rcpt", "a@example.test"),
                          ("content_size", "0000000000000")]))
    good = mkq("s@example.test", "d@example.test")
    chown_queue()
    ipc("scan")
    ok(wait(lambda: where(bad_id) == ["corrupt"] and
            where(bad_id2) == ["corrupt"]),
       "unparsable files (bad framing, ID not the file name) go to corrupt/",
       (where(bad_id), where(bad_id2)))
    ok(("%s: corrupt queue file" % bad_id) in log_text(),
       "log: ID: corrupt queue file: ...")
    ok(wait(lambda: gone(good)) and LOCAL.delivered_to("d@example.test"),
       "the good message beside them is delivered")

    # ---- 8. transport_maps: discard, error, unknown transport ----
    qid = mkq("s@example.test", "x@discard.test", "y@error.test",
              "z@a.sub.example.org", opts=["-N", "1"])
    new(qid)
    ok(wait(lambda: gone(qid)), "discard and error recipients are final")
    lt = log_text()
    ok(("%s: to=<x@discard.test>, relay=none" % qid) in lt and
       "status=sent (discarded)" in lt,
       "discard: status=sent (discarded)")
    ok(("%s: to=<y@error.test>, relay=none" % qid) in lt and
       "dsn=5.7.1, status=bounced (go away)" in lt,
       "error: failed with the configured text and DSN")
    ok("to=<z@a.sub.example.org>, relay=none" in lt and
       "status=sent (thrown away)" in lt,
       "a .parent.domain key matches a subdomain")
    qid = mkq("s@example.test", "u@odd.test")
    new(qid)
    ok(wait(lambda: where(qid) == ["deferred"]) and
       "unknown transport nosuchtransport" in log_text(),
       "an unknown transport defers (4.3.5)")
    ipc("delete", id=qid)

    # ---- 9. hold, release, flush, requeue ----
    qid = mkq("s@example.test", "h@example.test", opts=["-d", "deferred"])
    chown_queue()
    future = time.time() + 3600
    os.utime(os.path.join(QDIR, "deferred", qid), (future, future))
    ipc("scan")
    time.sleep(0.5)
    ok(where(qid) == ["deferred"] and not LOCAL.delivered_to(
        "h@example.test"), "a deferred file is not tried before its mtime")
    st, d = ipc("hold", id=qid)
    ok(st == 0 and where(qid) == ["hold"] and
       ("%s: placed on hold" % qid) in log_text(), "hold moves it to hold/")
    env, content, status = parse_queue_file(os.path.join(QDIR, "hold", qid))
    ok(any(s.get("held") == "1" for s in status),
       "hold records held=1 in the file", status)
    ipc("flush")
    time.sleep(0.5)
    ok(where(qid) == ["hold"], "flush leaves held mail alone")
    st, d = ipc("release", id=qid)
    ok(st == 0 and wait(lambda: gone(qid)) and
       LOCAL.delivered_to("h@example.test"),
       "release sends it on: delivered", (st, d, where(qid)))

    qid = mkq("s@example.test", "f@example.test", opts=["-d", "deferred"])
    chown_queue()
    os.utime(os.path.join(QDIR, "deferred", qid), (future, future))
    ipc("scan")
    time.sleep(0.3)
    ok(where(qid) == ["deferred"], "another one waits in deferred/")
    st, d = ipc("flush", id=qid)
    ok(st == 0 and wait(lambda: gone(qid), 3) and
       LOCAL.delivered_to("f@example.test"),
       "flush id= retries it now", (st, d))

    ids = [mkq("s@example.test", "fa%d@example.test" % i,
               opts=["-d", "deferred"]) for i in range(2)]
    chown_queue()
    for q in ids:
        os.utime(os.path.join(QDIR, "deferred", q), (future, future))
    ipc("scan")
    st, d = ipc("flush", id="ALL")
    ok(st == 0 and d.get("count") == "2" and
       wait(lambda: all(gone(q) for q in ids)),
       "flush id=ALL retries every deferred message", d)

    ids = [mkq("s@example.test", "r%d@example.test" % i,
               opts=["-d", "deferred"]) for i in range(3)]
    chown_queue()
    for q in ids:
        os.utime(os.path.join(QDIR, "deferred", q), (future, future))
    ipc("scan")
    st, d = ipc("requeue", id="ALL")
    ok(st == 0 and d.get("count") == "3" and
       wait(lambda: all(gone(q) for q in ids)),
       "requeue ALL sends every deferred message on", d)

    qid = mkq("s@example.test", "g@example.test", opts=["-d", "hold"])
    st, d = ipc("delete", id=qid)
    ok(st == 0 and gone(qid), "delete removes held mail")
    st, d = ipc("delete", id=qid)
    ok(st == 2 and d.get("reason") == "no such message",
       "delete of a removed message: no such message", d)

    # ---- 10. expiry and delay warnings ----
    LOCAL.rules["slow@example.test"] = [("deferred", "4.2.2", "over quota")]
    old = int(time.time()) - 2 * 3600
    qid = mkq("warn@example.test", "slow@example.test",
              opts=["-t", str(old)])
    new(qid)
    ok(wait(lambda: LOCAL.delivered_to("warn@example.test")),
       "mail deferred past delay_warning_time: a delay notice to the sender")
    w = LOCAL.delivered_to("warn@example.test")
    text = w[0][3].decode("utf-8", "replace") if w else ""
    ok("Action: delayed" in text and "over quota" in text,
       "the delay notice is a DSN with Action: delayed", text[:2000])
    ok(wait(lambda: len([r for r in LOCAL.requests if r[0] == qid]) >= 3,
            10), "the delayed message is retried")
    ok(len(LOCAL.delivered_to("warn@example.test")) == 1 and
       log_text().count("%s: sender delay notification" % qid) == 1,
       "the delay notice is sent once")
    ipc("delete", id=qid)

    LOCAL.rules["gone@example.test"] = [("deferred", "4.2.2", "over quota")]
    ancient = int(time.time()) - 6 * 86400
    qid = mkq("exp@example.test", "gone@example.test",
              opts=["-t", str(ancient)])
    new(qid)
    ok(wait(lambda: gone(qid)) and
       ("%s: to=<gone@example.test>" % qid) in log_text() and
       "dsn=5.2.2, status=expired, returned to sender (over quota)"
       in log_text(), "after maximal_queue_lifetime a deferral is final")
    ok(wait(lambda: LOCAL.delivered_to("exp@example.test")) and
       "Action: failed" in LOCAL.delivered_to("exp@example.test")[0][3]
       .decode("utf-8", "replace"),
       "... and bounces to the sender with the last reason")

    # ---- 11. local refuses a whole request: all deferred ----
    LOCAL.status = 1
    qid = mkq("s@example.test", "w1@example.test", "w2@example.test")
    new(qid)
    ok(wait(lambda: where(qid) == ["deferred"]),
       "status != 0 from local defers the message")
    env, content, status = parse_queue_file(
        os.path.join(QDIR, "deferred", qid))
    ok(len(status) == 2 and
       all("local is unhappy" in s["reason"] for s in status),
       "every recipient is deferred with local's reason", status)
    LOCAL.status = 0
    ok(wait(lambda: gone(qid), 8), "and delivered when local is back")

    # ---- 12. concurrency per destination ----
    LOCAL.delay = 0.3
    LOCAL.max_active = 0
    ids = [mkq("s@example.test", "c%d@example.test" % i) for i in range(8)]
    for q in ids:
        new(q)
    ok(wait(lambda: all(gone(q) for q in ids), 20),
       "8 messages to one local domain delivered")
    ok(LOCAL.max_active == 2,
       "local_destination_concurrency_limit = 2 holds (max %d at once)" %
       LOCAL.max_active)

    # ---- 13. kill -9 in the middle, restart: nothing lost ----
    LOCAL.delay = 0.2
    ids = [mkq("s@example.test", "k%d@example.test" % i) for i in range(20)]
    for q in ids:
        new(q)
    wait(lambda: len([1 for q in ids if gone(q)]) >= 3, 10)
    in_active = len(os.listdir(os.path.join(QDIR, "active")))
    stop_qmgr(signal.SIGKILL)
    ok(not all(gone(q) for q in ids),
       "qmgr killed with kill -9 in the middle (%d in active/)" % in_active)
    log_mark = len(log_text())
    start_qmgr()
    ok(wait(lambda: all(gone(q) for q in ids), 30),
       "after a restart every message is delivered and removed",
       [(q, where(q)) for q in ids if not gone(q)])
    got = {}
    for q, a, s, c in LOCAL.delivered:
        if q in ids:
            got[q] = got.get(q, 0) + 1
    dups = sum(v - 1 for v in got.values())
    ok(len(got) == 20, "all 20 reached local (%d repeated deliveries)" % dups)

    # ---- 14. a bounded number of messages in active/ ----
    stop_qmgr()
    ids = [mkq("s@example.test", "m%d@example.test" % i) for i in range(12)]
    log_mark = len(log_text())
    start_qmgr(["-o", "qmgr_message_active_limit=3"])
    most = [0]

    def drained():
        most[0] = max(most[0], len(os.listdir(os.path.join(QDIR,
                                                           "active"))))
        return all(gone(q) for q in ids)
    ok(wait(drained, 30), "12 waiting messages delivered after a start")
    ok(0 < most[0] <= 3, "qmgr_message_active_limit = 3 holds (at most %d "
       "in active/)" % most[0])
    LOCAL.delay = 0

    # ---- 14b. a rate delay per destination ----
    stop_qmgr()
    LOCAL.delay = 0.1
    LOCAL.max_active = 0
    ids = [mkq("s@example.test", "r%d@example.test" % i) for i in range(3)]
    log_mark = len(log_text())
    first = len(LOCAL.starts)
    start_qmgr(["-o", "default_destination_rate_delay=1s"])
    ok(wait(lambda: all(gone(q) for q in ids), 20),
       "3 messages delivered with a rate delay of 1s")
    st = LOCAL.starts[first:]
    gaps = [b - a for a, b in zip(st, st[1:])]
    ok(len(st) == 3 and all(g >= 0.95 for g in gaps),
       "deliveries to one destination start 1s apart", gaps)
    ok(LOCAL.max_active == 1, "one at a time under a rate delay (max %d)" %
       LOCAL.max_active)
    LOCAL.delay = 0

    # ---- 14c. smtp's scheduling limits come from smtp.conf too ----
    stop_qmgr()
    with open(os.path.join(ETC, "smtp.conf"), "w") as f:
        f.write("smtp_destination_rate_delay = 7s\n"
                "smtp_destination_recipient_limit = 9\n")
    with open(os.path.join(ETC, "qmgr.conf"), "a") as f:
        f.write("smtp_destination_recipient_limit = 3\n")
    log_mark = len(log_text())
    start_qmgr(["-o", "debug=yes"])
    ok(wait(lambda: "transport smtp: 100 at once, 1 per destination, 9 "
            "recipients per request, rate delay 7000ms" in log_text()),
       "qmgr reads smtp.conf: its smtp_destination_* settings win over "
       "qmgr.conf", [x for x in log_text().splitlines()
                     if "transport smtp:" in x])
    ok("transport local: 100 at once, 2 per destination" in log_text(),
       "... and leave the other transports alone")
    os.unlink(os.path.join(ETC, "smtp.conf"))
    stop_qmgr()
    log_mark = len(log_text())
    start_qmgr()

    # ---- 15. SIGTERM: orderly stop ----
    rc = stop_qmgr()
    ok(rc == 0 and "stopped" in log_text(), "SIGTERM stops qmgr, exit 0",
       rc)
    err = open(os.path.join(T, "stderr")).read()
    ok("runtime error" not in err and "Sanitizer" not in err,
       "qmgr wrote no sanitizer report", err)
except Exception as e:
    import traceback
    ok(False, "the test ran to its end", traceback.format_exc())
finally:
    if qmgr_proc is not None:
        qmgr_proc.kill()
        qmgr_proc.wait()
    try:
        LOCAL.stop()
    except Exception:
        pass
    if os.environ.get("QMGR_TEST_KEEP"):
        print("# kept " + T)
    else:
        shutil.rmtree(T, ignore_errors=True)

sys.exit(tap.done())
