#!/usr/bin/env python3
"""queue_tools - "posta queue" and mailq on a queue made by lib/queue.

Queue files are written with tests/helpers/mkq_tools (lib/queue's
writer and status records) into a temporary queue directory: fresh mail
in incoming/, deferred mail with reasons and some recipients final, held
and active mail, a corrupt file.  Checked: the Postfix-shaped listing
(column by column: IDs, markers '*' and '!', sizes, arrival times,
MAILER-DAEMON, recipients not yet final grouped under their reasons,
the total line, "Mail queue is empty"), that mailq prints the same,
that terminal control bytes from the envelope are never printed,
"show", and every changing command: first with no qmgr (acting on the
files, never on active/), including unknown and malformed IDs and ALL;
then against a fake qmgr on private/qmgr speaking lib/ipc's records, to
check the requests sent and that the files are then left to qmgr.
Prints TAP.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from postalib import BUILD, Tap, ipc_serve, unix_listener

POSTA = os.path.join(BUILD, "bin", "posta")
MAILQ = os.path.join(BUILD, "bin", "mailq")
MKQ = os.path.join(BUILD, "tests", "helpers", "mkq_tools")

tap = Tap(diag_lines=60)


def check(what, cond, detail=""):
    tap.ok(cond, what, str(detail))


T = tempfile.mkdtemp(prefix="queue_tools.")
os.chmod(T, 0o755)
etc = os.path.join(T, "etc")
Q = os.path.join(T, "q")
DIRS = ("incoming", "active", "deferred", "hold", "corrupt")
os.makedirs(etc)
for d in DIRS + ("private", "public"):
    os.makedirs(os.path.join(Q, d))
with open(os.path.join(etc, "posta.conf"), "w") as fp:
    fp.write("queue_directory = %s\n" % Q)
ENV = dict(os.environ)
ENV["POSTA_CONFIG_DIR"] = etc
ENV["TZ"] = "UTC"


def run(args, prog=None):
    p = subprocess.run([prog or POSTA] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=ENV, timeout=30)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def mkq(d, rcpts, content=b"Subject: test\n\nbody\n", opts=()):
    p = subprocess.run([MKQ, Q, d] + list(opts) + list(rcpts),
                       input=content, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if p.returncode != 0:
        raise RuntimeError("mkq_tools: %r" % p.stderr)
    return p.stdout.decode().strip()


def where(qid):
    return [d for d in DIRS if os.path.exists(os.path.join(Q, d, qid))]


def when(t):
    return time.strftime("%a %b %e %H:%M:%S", time.gmtime(t))


def clear():
    for d in DIRS:
        for f in os.listdir(os.path.join(Q, d)):
            if f[0] != ".":	# incoming/.idseq, the ID counter, stays
                os.unlink(os.path.join(Q, d, f))


REASON = "connect to mx.example.org[192.0.2.1]: Connection refused"
HDR = ("-Queue ID-   --Size-- ----Arrival Time---- "
       "-Sender/Recipient-------")

try:
    for f in (POSTA, MKQ):
        if not os.access(f, os.X_OK):
            check("%s is built" % f, False)
            sys.exit(1)

    # --- empty ------------------------------------------------------------------
    rc, out, err = run(["queue", "list"])
    check("empty queue: \"Mail queue is empty\"",
          rc == 0 and out == "Mail queue is empty\n", (rc, out, err))
    shutil.rmtree(os.path.join(Q, "hold"))
    rc, out, err = run(["queue", "list"])
    check("a missing sub-directory is an empty one",
          rc == 0 and out == "Mail queue is empty\n", (rc, out, err))
    os.makedirs(os.path.join(Q, "hold"))

    # --- a queue ------------------------------------------------------------------
    t0 = 1700000000
    body1 = b"Subject: one\nFrom: a@example.org\n\nline\n.dot line\n"
    id1 = mkq("incoming", ["a@x.test", "b@y.test"], body1,
              ["-a", str(t0)])
    id2 = mkq("deferred", ["c@x.test", "d@y.test", "e@z.test", "f@g.test",
                           "x@failed.test"],
              b"Subject: two\n\n" + b"z" * 2000 + b"\n",
              ["-a", str(t0 + 100), "-f", "",
               "-d", "0:4.4.1:" + REASON, "-d", "2:4.4.1:" + REASON,
               "-s", "1", "-d", "3:4.2.2:mailbox full",
               "-x", "4:5.1.1:user unknown"])
    id3 = mkq("hold", ["h@x.test"], opts=["-a", str(t0 + 200)])
    id4 = mkq("active", ["i@x.test"], opts=["-a", str(t0 + 300)])
    id5 = mkq("deferred", ["j@x.test"],
              opts=["-a", str(t0 + 400), "-f", "evil\x1b[31m@x.test",
                    "-d", "0:4.0.0:bad \x1b]0;owned\x07 reply \x9b2J"])
    id6 = mkq("deferred", ["k@x.test"], opts=["-a", str(t0 + 500), "-H"])
    with open(os.path.join(Q, "corrupt", "1K13AAAAAAAA"), "wb") as fp:
        fp.write(b"garbage")
    with open(os.path.join(Q, "deferred", "1K13ZZZZZZZ0"), "wb") as fp:
        fp.write(b"3:v=9,0:,")
    with open(os.path.join(Q, "incoming", id1 + ".tmp"), "wb") as fp:
        fp.write(b"half written")
    size1 = len(body1.replace(b"\n", b"\r\n"))
    size2 = len((b"Subject: two\n\n" + b"z" * 2000 + b"\n").replace(
        b"\n", b"\r\n"))
    size3 = len(b"Subject: test\r\n\r\nbody\r\n")

    rc, out, err = run(["queue", "list"])
    lines = out.split("\n")
    check("list: exit 0, the header line", rc == 0 and lines[0] == HDR,
          (rc, out, err))
    want1 = [
        "%-13s%8d %-20s %s" % (id1, size1, when(t0), "sender@example.org"),
        " " * 43 + "a@x.test",
        " " * 43 + "b@y.test",
        "",
    ]
    i1 = lines.index(want1[0]) if want1[0] in lines else -1
    check("list: fresh mail, both recipients, columns as Postfix's",
          i1 > 0 and lines[i1:i1 + 4] == want1, out)
    want2 = [
        "%-13s%8d %-20s %s" % (id2, size2, when(t0 + 100), "MAILER-DAEMON"),
        " " * 12 + "(" + REASON + ")",
        " " * 43 + "c@x.test",
        " " * 43 + "e@z.test",
        " " * 12 + "(mailbox full)",
        " " * 43 + "f@g.test",
        "",
    ]
    i2 = lines.index(want2[0]) if want2[0] in lines else -1
    check("list: deferred mail: null sender as MAILER-DAEMON, recipients "
          "grouped under their reasons, sent and failed ones not listed",
          i2 > 0 and lines[i2:i2 + 7] == want2, out)
    check("list: '!' after a held message's ID",
          ("%s!%8d %-20s sender@example.org" % (id3, size3, when(t0 + 200)))
          in lines, out)
    check("list: '*' after an active message's ID",
          ("%s*%8d %-20s sender@example.org" % (id4, size3, when(t0 + 300)))
          in lines, out)
    check("list: '!' for a message recorded as held outside hold/",
          any(l.startswith(id6 + "!") for l in lines), out)
    ids = [l[:12] for l in lines if re.match(r"^[0-9A-Z]{12}[ *!]", l)]
    check("list: sorted by queue ID (arrival), each message once",
          ids == sorted(ids) and ids == sorted([id1, id2, id3, id4, id5,
                                                id6]), ids)
    total = (size1 + size2 + 4 * size3) // 1024
    check("list: the total line", lines[-2:] ==
          ["-- %d Kbytes in 6 Requests." % total, ""], lines[-3:])
    check("list: no terminal control byte from the envelope is printed",
          "\x1b" not in out and "\x07" not in out and "\x9b" not in out and
          "evil?[31m@x.test" in out and "(bad ?]0;owned? reply ??2J)" in out,
          out)
    check("list: the corrupt file is reported on stderr and skipped",
          "1K13ZZZZZZZ0: corrupt queue file" in err and
          "1K13ZZZZZZZ0" not in out and "1K13AAAAAAAA" not in out,
          (out, err))

    if os.path.exists(MAILQ):
        rc2, out2, err2 = run([], prog=MAILQ)
        check("mailq prints the same listing", rc2 == 0 and out2 == out,
              out2)
        rc2, out2, err2 = run(["-bp"], prog=os.path.join(BUILD, "bin",
                                                         "sendmail"))
        check("sendmail -bp prints the same listing",
              rc2 == 0 and out2 == out, out2)
    else:
        check("mailq is built", False, MAILQ)

    # --- show ---------------------------------------------------------------------
    rc, out, err = run(["queue", "show", id2])
    check("show: the envelope",
          rc == 0 and ("*** ENVELOPE deferred/%s ***" % id2) in out and
          "sender: <>\n" in out and "message_size: %d\n" % size2 in out and
          "recipient: c@x.test\n  status: deferred 4.4.1" in out and
          "  reason: " + REASON in out and
          "recipient: d@y.test\n  status: sent 2.0.0" in out and
          "recipient: x@failed.test\n  status: failed 5.1.1" in out,
          (rc, out, err))
    rc, out, err = run(["queue", "show", id1])
    check("show: the message, CR LF as LF, dots as stored",
          rc == 0 and ("*** MESSAGE CONTENTS incoming/%s ***\n" % id1 +
                       body1.decode() +
                       "*** END OF MESSAGE incoming/%s ***\n" % id1) in out,
          out)
    rc, out, err = run(["queue", "show", "1K13BJX62MTH"])
    check("show: unknown ID: \"no such message\", exit 1",
          rc == 1 and err == "posta queue: 1K13BJX62MTH: no such message\n",
          (rc, err))
    for bad in ("../../../etc/passwd", "1K13BJX62MT", "1K13BJX62MTHX",
                "1k13bjx62mth", "", "1K13BJX62MT/", "\x1b[2J"):
        rc, out, err = run(["queue", "show", bad])
        check("show: malformed ID %r refused" % bad,
              rc == 1 and "bad queue ID" in err and "\x1b" not in err,
              (rc, err))
    rc, out, err = run(["queue", "show", "1K13ZZZZZZZ0"])
    check("show: a corrupt file says so, exit 1",
          rc == 1 and "corrupt queue file" in err, (rc, err))
    rc, out, err = run(["queue", "show"])
    check("show without an ID: usage, exit 2", rc == 2 and "usage" in err,
          (rc, err))
    rc, out, err = run(["queue", "frobnicate"])
    check("unknown queue command: usage, exit 2", rc == 2, (rc, err))

    # --- changing commands without qmgr -------------------------------------------
    rc, out, err = run(["queue", "hold", id2])
    check("hold (no qmgr): deferred -> hold, says it acts on the files",
          rc == 0 and where(id2) == ["hold"] and
          "qmgr is not running" in err, (rc, out, err, where(id2)))
    rc, out, err = run(["queue", "list"])
    check("list shows it held",
          any(l.startswith(id2 + "!") for l in out.split("\n")), out)
    rc, out, err = run(["queue", "requeue", id2])
    check("requeue of held mail refused (release it first)",
          rc == 1 and where(id2) == ["hold"] and "on hold" in err, (rc, err))
    rc, out, err = run(["queue", "release", id2])
    check("release: hold -> incoming",
          rc == 0 and where(id2) == ["incoming"], (rc, err, where(id2)))
    rc, out, err = run(["queue", "release", id2])
    check("release of mail not on hold: exit 1",
          rc == 1 and "not on hold" in err and where(id2) == ["incoming"],
          (rc, err))
    check("hold recorded held=1, release held=0 (or qmgr would hold it "
          "again)", "held: yes" not in run(["queue", "show", id2])[1],
          run(["queue", "show", id2])[1])
    id8 = mkq("hold", ["p@x.test"], opts=["-H"])
    rc, out, err = run(["queue", "show", id8])
    check("show: held: yes for a message recorded as held",
          rc == 0 and "\nheld: yes\n" in out, out)
    rc, out, err = run(["queue", "release", id8])
    rc2, out2, err2 = run(["queue", "list"])
    check("release of a message recorded as held: in incoming, no '!'",
          rc == 0 and where(id8) == ["incoming"] and
          any(l.startswith(id8 + " ") for l in out2.split("\n")),
          (rc, err, out2))
    os.unlink(os.path.join(Q, "incoming", id8))
    id9 = mkq("deferred", ["q@x.test"])
    rc, out, err = run(["queue", "hold", id9])
    rc2, out2, err2 = run(["queue", "show", id9])
    check("hold (no qmgr) records held=1 as qmgr does",
          rc == 0 and where(id9) == ["hold"] and "\nheld: yes\n" in out2,
          (rc, err, out2))
    os.unlink(os.path.join(Q, "hold", id9))
    rc, out, err = run(["queue", "hold", id4])
    check("hold never touches active/", rc == 1 and where(id4) == ["active"]
          and "active" in err, (rc, err))
    rc, out, err = run(["queue", "delete", id4])
    check("delete never touches active/",
          rc == 1 and where(id4) == ["active"], (rc, err))
    rc, out, err = run(["queue", "delete", "1K13BJX62MTH"])
    check("delete of an unknown ID: \"no such message\", exit 1",
          rc == 1 and
          "posta queue: 1K13BJX62MTH: no such message" in err, (rc, err))
    open(os.path.join(T, "victim"), "w").close()
    rc, out, err = run(["queue", "delete", "../../victim"])
    check("delete ../../victim: refused, nothing removed",
          rc == 1 and os.path.exists(os.path.join(T, "victim")), (rc, err))
    rc, out, err = run(["queue", "delete", id1, "../x"])
    check("one bad ID among several: nothing is done",
          rc == 1 and where(id1) == ["incoming"], (rc, err))
    rc, out, err = run(["queue", "hold", "ALL"])
    check("hold ALL is a usage error", rc == 2, (rc, err))
    rc, out, err = run(["queue", "delete", "ALL", id1])
    check("delete ALL with an ID is a usage error",
          rc == 2 and where(id1) == ["incoming"], (rc, err))
    rc, out, err = run(["queue", "delete"])
    check("delete without an ID is a usage error", rc == 2, (rc, err))

    past = time.time() - 86400
    p5 = os.path.join(Q, "deferred", id5)
    os.utime(p5, (past, past))
    rc, out, err = run(["queue", "flush", id5])
    check("flush ID (no qmgr): the deferred file is due now (mtime)",
          rc == 0 and where(id5) == ["deferred"] and
          os.stat(p5).st_mtime > time.time() - 60, (rc, err))
    rc, out, err = run(["queue", "requeue", id5])
    check("requeue ID: deferred -> incoming",
          rc == 0 and where(id5) == ["incoming"], (rc, err))
    id7 = mkq("deferred", ["m@x.test"], opts=["-d", "0:4.0.0:later"])
    rc, out, err = run(["queue", "requeue"])
    check("requeue (ALL): every deferred file -> incoming (a corrupt one "
          "too: qmgr moves it to corrupt/)",
          rc == 0 and where(id7) == ["incoming"] and
          where(id6) == ["incoming"] and
          os.listdir(os.path.join(Q, "deferred")) == [] and
          where("1K13ZZZZZZZ0") == ["incoming"] and
          "requeued: 3 messages" in out, (rc, out, err))
    os.unlink(os.path.join(Q, "incoming", "1K13ZZZZZZZ0"))
    rc, out, err = run(["queue", "delete", id1])
    check("delete ID: unlinked",
          rc == 0 and where(id1) == [] and ("%s: deleted" % id1) in out,
          (rc, out, err))
    rc, out, err = run(["queue", "delete", "1K13AAAAAAAA"])
    check("delete of a file in corrupt/ by its ID", rc == 0 and
          not os.listdir(os.path.join(Q, "corrupt")), (rc, err))

    # a stale socket: qmgr is gone, the file is left behind
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(os.path.join(Q, "private", "qmgr"))
    stale.close()
    mkq("hold", ["n@x.test"])
    rc, out, err = run(["queue", "delete", "ALL"])
    rest = {d: [f for f in os.listdir(os.path.join(Q, d)) if f[0] != "."]
            for d in DIRS}
    check("delete ALL (stale qmgr socket): incoming, deferred and hold "
          "emptied, active/ and a .tmp being written untouched",
          rc == 0 and rest["incoming"] == [id1 + ".tmp"] and rest["deferred"] == [] and
          rest["hold"] == [] and rest["active"] == [id4] and
          "deleted: 6 messages" in out, (rc, out, err, rest))
    rc, out, err = run(["queue", "list"])
    check("list after delete ALL: only the active message",
          [l[:13] for l in out.split("\n") if re.match(r"^[0-9A-Z]{12}", l)]
          == [id4 + "*"], out)
    os.unlink(os.path.join(Q, "private", "qmgr"))

    # --- with a (fake) qmgr ---------------------------------------------------
    requests = []
    known = {id4}
    qsock = unix_listener(os.path.join(Q, "private", "qmgr"), 4)

    def fake_qmgr(pairs):
        fields = [(name, value.decode()) for name, value in pairs]
        requests.append(fields)
        d = dict(fields)
        if d.get("id") in (None, "ALL") or d["id"] in known:
            resp = [("status", "0")]
            if d.get("id") == "ALL":
                resp.append(("count", "3"))
        else:
            resp = [("status", "2"), ("reason", "no such message")]
        return resp

    ipc_serve(qsock, fake_qmgr)
    rc, out, err = run(["queue", "delete", id4])
    check("delete with qmgr: request=delete id=ID; the file is left to "
          "qmgr", rc == 0 and requests[-1:] ==
          [[("request", "delete"), ("id", id4)]] and where(id4) ==
          ["active"] and "qmgr is not running" not in err,
          (rc, out, err, requests))
    rc, out, err = run(["queue", "hold", "1K13BJX62MTH"])
    check("qmgr's refusal: \"posta queue: ID: no such message\", exit 1",
          rc == 1 and err == "posta queue: 1K13BJX62MTH: no such message\n"
          and requests[-1] == [("request", "hold"), ("id", "1K13BJX62MTH")],
          (rc, err, requests))
    for args, want in (
            (["flush"], [("request", "flush")]),
            (["flush", id4], [("request", "flush"), ("id", id4)]),
            (["release", id4], [("request", "release"), ("id", id4)]),
            (["requeue"], [("request", "requeue"), ("id", "ALL")]),
            (["requeue", id4], [("request", "requeue"), ("id", id4)]),
            (["delete", "ALL"], [("request", "delete"), ("id", "ALL")])):
        rc, out, err = run(["queue"] + args)
        check("posta queue %s -> %s" % (" ".join(args), want),
              rc == 0 and requests[-1] == want, (rc, out, err, requests))
    check("a count in qmgr's answer is shown",
          "deleted: 3 messages" in out, out)
    rc, out, err = run(["queue", "delete", "../x"])
    nreq = len(requests)
    check("a malformed ID is not sent to qmgr",
          rc == 1 and len(requests) == nreq, (rc, err))
    qsock.close()
finally:
    shutil.rmtree(T, ignore_errors=True)

sys.exit(tap.done())
