#!/usr/bin/env python3
"""sendmail - the injector against a fake submit service.

A small SMTP server written here listens on $T/q/public/submit (a Unix
socket, as smtpd's submit service will), records every command and the
raw DATA bytes, and answers as each test asks (550/451 for chosen
recipients, a refusal at the end of DATA).  Checked: the envelope (-f,
the default sender, recipients from the command line and from headers
with -t, Bcc: removed), the headers added (From: with -F, Date:,
Message-ID:), the lone-dot rule with and without -i, dot-stuffing on
the wire, CR LF line ends, the exit status for every kind of failure
(sysexits.h), hostile arguments that must never reach the server, -bs
relaying, and mailq / -bp on an empty queue.  Prints TAP.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from postalib import BUILD, Tap

SENDMAIL = os.path.join(BUILD, "bin", "sendmail")
MAILQ = os.path.join(BUILD, "bin", "mailq")

EX_OK, EX_USAGE, EX_DATAERR, EX_NOUSER = 0, 64, 65, 67
EX_UNAVAILABLE, EX_TEMPFAIL, EX_NOPERM = 69, 75, 77

tap = Tap(diag_lines=40)


def check(what, cond, detail=""):
    tap.ok(cond, what, str(detail))


class FakeSubmit:
    """Minimal SMTP on a Unix socket; one session at a time, recorded."""

    def __init__(self, path):
        self.path = path
        self.sessions = []
        self.rcpt_replies = {}      # address -> reply line
        self.mail_reply = b"250 2.1.0 Ok"
        self.data_reply = b"250 2.0.0 Ok: queued as 1K13BJX62MTH"
        self.greeting = b"220 test.example ESMTP fake"
        self.ehlo_lines = [b"test.example", b"PIPELINING", b"SIZE 10240000",
                           b"8BITMIME", b"SMTPUTF8", b"DSN",
                           b"ENHANCEDSTATUSCODES"]
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def reset(self):
        self.sessions = []
        self.rcpt_replies = {}
        self.mail_reply = b"250 2.1.0 Ok"
        self.data_reply = b"250 2.0.0 Ok: queued as 1K13BJX62MTH"
        self.greeting = b"220 test.example ESMTP fake"

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                self.session(conn)
            except (OSError, ValueError):
                pass
            finally:
                conn.close()

    def session(self, conn):
        rec = {"cmds": [], "data": None, "raw": b""}
        self.sessions.append(rec)
        f = conn.makefile("rb")
        conn.sendall(self.greeting + b"\r\n")
        if not self.greeting.startswith(b"220"):
            pass
        while True:
            line = f.readline(100000)
            if not line:
                return
            rec["raw"] += line
            cmd = line.rstrip(b"\r\n")
            rec["cmds"].append(cmd)
            verb = cmd[:4].upper()
            if verb == b"EHLO":
                out = b""
                for i, e in enumerate(self.ehlo_lines):
                    sep = b" " if i == len(self.ehlo_lines) - 1 else b"-"
                    out += b"250" + sep + e + b"\r\n"
                conn.sendall(out)
            elif verb == b"HELO":
                conn.sendall(b"250 test.example\r\n")
            elif verb == b"MAIL":
                conn.sendall(self.mail_reply + b"\r\n")
            elif verb == b"RCPT":
                addr = cmd[cmd.find(b"<") + 1:cmd.find(b">")].decode(
                    "utf-8", "replace")
                r = self.rcpt_replies.get(addr, b"250 2.1.5 Ok")
                conn.sendall(r + b"\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                data = b""
                while True:
                    l = f.readline(1000000)
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    data += l
                rec["data"] = data
                conn.sendall(self.data_reply + b"\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            elif verb == b"RSET" or verb == b"NOOP":
                conn.sendall(b"250 2.0.0 Ok\r\n")
            else:
                conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")

    def close(self):
        self.stop = True
        self.sock.close()


T = tempfile.mkdtemp(prefix="sendmail_test.")
os.chmod(T, 0o755)
etc = os.path.join(T, "etc")
q = os.path.join(T, "q")
for d in ("etc", "q", "q/public", "q/incoming", "q/active", "q/deferred",
          "q/hold", "q/corrupt"):
    os.makedirs(os.path.join(T, d), exist_ok=True)
with open(os.path.join(etc, "posta.conf"), "w") as fp:
    fp.write("queue_directory = %s\nmydomain = example.test\n"
             "myhostname = host.example.test\n"
             "message_size_limit = 128k\n" % q)

ENV = dict(os.environ)
ENV["POSTA_CONFIG_DIR"] = etc
ENV.pop("NAME", None)


def run(args, data=b"", env=None, prog=SENDMAIL, timeout=30):
    p = subprocess.run([prog] + args, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env or ENV,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def headers_of(data):
    head = data.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")


def header(data, name):
    want = name.lower().encode() + b":"
    for h in headers_of(data):
        if h.lower().startswith(want):
            return h[len(want):].strip()
    return None


try:
    if not os.access(SENDMAIL, os.X_OK):
        check("sendmail is built", False, SENDMAIL)
        sys.exit(1)

    # --- nothing listens: the socket is missing ----------------------------
    rc, out, err = run(["a@example.org"], b"Subject: x\n\nhi\n")
    check("no submit socket: EX_TEMPFAIL and a clear message",
          rc == EX_TEMPFAIL and b"public/submit" in err
          and b"sendmail:" in err, (rc, err))

    srv = FakeSubmit(os.path.join(q, "public", "submit"))

    # --- hostile arguments never reach the server ---------------------------
    cases = [
        (["-oQ/tmp"], "an unknown -o option is ignored, but no recipient"),
        (["a@b.test", "-oQ/tmp"], "option-like recipient after a recipient"),
        (["--", "-oQ/tmp@x.test"], "recipient starting with '-' after --"),
        (["a@b.test\r\nRCPT TO:<evil@x.test>"], "CR LF inside a recipient"),
        (["a@b.test> NOTIFY=SUCCESS"], "'>' smuggling ESMTP parameters"),
        (["<a@b.test"], "unbalanced angle bracket"),
        (["x" * 300 + "@b.test"], "address longer than 254 bytes"),
        (["\"unterminated@b.test"], "unterminated quote"),
        (["a(comment@b.test"], "unterminated comment"),
        ([], "no recipient at all"),
        (["-f", "bad sender@x.test", "a@b.test"], "sender with a blank"),
        (["-f", "a@b.test>\r\nRCPT TO:<x@y>", "a@b.test"],
         "sender with CR LF"),
        (["-bd"], "-bd (daemon mode) is not supported"),
        (["-N", "sometimes", "a@b.test"], "bad -N value"),
        (["-R", "most", "a@b.test"], "bad -R value"),
    ]
    for args, what in cases:
        srv.reset()
        rc, out, err = run(args, b"Subject: x\n\nhi\n")
        check("refused with EX_USAGE: " + what,
              rc == EX_USAGE and len(srv.sessions) == 0 and
              b"sendmail:" in err, (rc, err, srv.sessions))

    # --- a plain message ------------------------------------------------------
    srv.reset()
    rc, out, err = run(["demo@example.test"],
                       b"Subject: hello\nTo: demo@example.test\n\nline 1\n"
                       b"line 2 no newline")
    s = srv.sessions[0] if srv.sessions else {"cmds": [], "data": None,
                                              "raw": b""}
    check("plain message: exit 0", rc == EX_OK, (rc, err))
    check("EHLO with myhostname",
          b"EHLO host.example.test" in s["cmds"], s["cmds"])
    login = subprocess.run(["id", "-un"], stdout=subprocess.PIPE,
                           text=True).stdout.strip()
    mail = [c for c in s["cmds"] if c.startswith(b"MAIL")]
    check("default sender is login@mydomain with SIZE=",
          len(mail) == 1 and mail[0].startswith(
              ("MAIL FROM:<%s@example.test> SIZE=" % login).encode()),
          mail)
    check("one RCPT TO per recipient",
          [c for c in s["cmds"] if c.startswith(b"RCPT")] ==
          [b"RCPT TO:<demo@example.test>"], s["cmds"])
    check("QUIT at the end", s["cmds"][-1:] == [b"QUIT"], s["cmds"])
    data = s["data"] or b""
    check("every line ends in CR LF, last line completed",
          data.endswith(b"line 2 no newline\r\n") and
          b"\n" not in data.replace(b"\r\n", b""), data)
    check("Date: and Message-ID: added",
          header(data, "Date") is not None and
          (header(data, "Message-ID") or b"").endswith(
              b"@host.example.test>"), data)
    check("From: added with the sender",
          header(data, "From") == ("<%s@example.test>" % login).encode(),
          data)
    size = int(mail[0].split(b"SIZE=")[1].split()[0]) if mail else -1
    check("SIZE= is the content size", size == len(data), (size, len(data)))

    # --- -f, -F -------------------------------------------------------------
    srv.reset()
    rc, out, err = run(["-f", "owner@example.org", "-F", "Jane Q. Doe",
                        "demo@example.test"], b"Subject: x\n\nbody\n")
    s = srv.sessions[0]
    check("-f sets the envelope sender",
          any(c.startswith(b"MAIL FROM:<owner@example.org>")
              for c in s["cmds"]), s["cmds"])
    check("-F gives From: a quoted full name (it has a '.')",
          header(s["data"], "From") ==
          b'"Jane Q. Doe" <owner@example.org>', s["data"])

    srv.reset()
    rc, out, err = run(["-f", "<>", "-F", "Evil\r\nBcc: x@evil.test",
                        "demo@example.test"], b"Subject: x\n\nbody\n")
    s = srv.sessions[0]
    check("-f '<>' is the null sender",
          any(c.startswith(b"MAIL FROM:<>") for c in s["cmds"]), s["cmds"])
    check("a full name with CR LF cannot add a header",
          header(s["data"], "Bcc") is None, s["data"])

    srv.reset()
    rc, out, err = run(["-f", "me", "-F", "Jörg Ünïcödé", "demo"],
                       b"Subject: x\n\nbody\n")
    s = srv.sessions[0]
    frm = header(s["data"], "From") or b""
    check("sender and recipient without a domain get @mydomain",
          any(c.startswith(b"MAIL FROM:<me@example.test>")
              for c in s["cmds"]) and
          b"RCPT TO:<demo@example.test>" in s["cmds"], s["cmds"])
    check("a non-ASCII full name is an RFC 2047 encoded word",
          frm.startswith(b"=?UTF-8?B?") and
          frm.endswith(b"<me@example.test>"), frm)

    srv.reset()
    env = dict(ENV)
    env["NAME"] = "Cron Daemon"
    rc, out, err = run(["demo@example.test"], b"Subject: x\n\nbody\n",
                       env=env)
    check("$NAME is the full name without -F",
          header(srv.sessions[0]["data"], "From").startswith(
              b"Cron Daemon <"), srv.sessions[0]["data"])

    srv.reset()
    rc, out, err = run(["-F", "Nobody", "demo@example.test"],
                       b"From: Someone <s@example.org>\nSubject: x\n\nb\n")
    check("an existing From: is kept, not doubled",
          [h for h in headers_of(srv.sessions[0]["data"])
           if h.lower().startswith(b"from:")] ==
          [b"From: Someone <s@example.org>"], srv.sessions[0]["data"])

    # --- -t ---------------------------------------------------------------------
    srv.reset()
    msg = (b"From: me@example.org\n"
           b"To: alice, \"Bob, Jr.\" <bob@example.org> (the boss)\n"
           b"Cc: friends: carol@example.org, <dave@example.org>;,\n"
           b"  erin@example.org\n"
           b"Bcc: secret@example.org,\n"
           b"\thidden@example.org\n"
           b"Subject: -t test\n\nbody\nBcc: not-a-header@example.org\n")
    rc, out, err = run(["-t", "extra@example.org"], msg)
    s = srv.sessions[0]
    rcpts = [c for c in s["cmds"] if c.startswith(b"RCPT")]
    want = [b"RCPT TO:<%s>" % a for a in (
        b"extra@example.org", b"alice@example.test", b"bob@example.org",
        b"carol@example.org", b"dave@example.org", b"erin@example.org",
        b"secret@example.org", b"hidden@example.org")]
    check("-t: recipients from To:, Cc: (group, folded), Bcc: plus the "
          "command line", rc == EX_OK and rcpts == want, (rc, err, rcpts))
    check("-t: Bcc: removed with its continuation line, body untouched",
          b"secret@" not in s["data"] and b"hidden@" not in s["data"] and
          b"\r\nBcc: not-a-header@example.org\r\n" in s["data"], s["data"])

    srv.reset()
    rc, out, err = run(["-t"], b"From: me@example.org\nTo: a@example.org\n"
                       b"Resent-To: r@example.org\nSubject: x\n\nbody\n")
    rcpts = [c for c in srv.sessions[0]["cmds"] if c.startswith(b"RCPT")]
    check("-t: Resent-To: wins over To:",
          rcpts == [b"RCPT TO:<r@example.org>"], rcpts)

    srv.reset()
    rc, out, err = run(["-t"], b"To: a@example.org\nCc: a@example.org\n\nb\n")
    rcpts = [c for c in srv.sessions[0]["cmds"] if c.startswith(b"RCPT")]
    check("-t: a repeated recipient gets one RCPT",
          rcpts == [b"RCPT TO:<a@example.org>"], rcpts)

    srv.reset()
    rc, out, err = run(["-t"], b"Subject: no recipients\n\nbody\n")
    check("-t without recipient headers: EX_USAGE, no session",
          rc == EX_USAGE and not srv.sessions and b"recipient" in err,
          (rc, err))

    srv.reset()
    rc, out, err = run(["-t"], b"To: \"a@example.org\nSubject: x\n\nb\n")
    check("-t with a broken To: header: EX_DATAERR, no session",
          rc == EX_DATAERR and not srv.sessions, (rc, err))

    srv.reset()
    rc, out, err = run(["-t"], b"To: undisclosed-recipients:;\n"
                       b"Bcc: only@example.org\n\nb\n")
    rcpts = [c for c in srv.sessions[0]["cmds"] if c.startswith(b"RCPT")]
    check("-t: an empty group gives no address",
          rcpts == [b"RCPT TO:<only@example.org>"], rcpts)

    # --- dots -------------------------------------------------------------------
    srv.reset()
    rc, out, err = run(["demo@example.test"],
                       b"Subject: x\n\nbefore\n.\nafter\n")
    d = srv.sessions[0]["data"]
    check("without -i a lone '.' line ends the message",
          rc == EX_OK and d.endswith(b"before\r\n") and b"after" not in d,
          d)
    for opt in ("-i", "-oi"):
        srv.reset()
        rc, out, err = run([opt, "demo@example.test"],
                           b"Subject: x\n\nbefore\n.\nafter\n")
        d = srv.sessions[0]["data"]
        check("with %s a lone '.' is data (sent as '..')" % opt,
              d.endswith(b"before\r\n..\r\nafter\r\n"), d)
    srv.reset()
    rc, out, err = run(["demo@example.test"],
                       b"Subject: x\n\n.hidden\n..two\n. \n")
    d = srv.sessions[0]["data"]
    check("dot-stuffing on the wire",
          d.endswith(b"\r\n..hidden\r\n...two\r\n.. \r\n"), d)

    # --- line ends, From_ line, 8-bit ---------------------------------------
    srv.reset()
    rc, out, err = run(["demo@example.test"],
                       b"From someone Thu Jan  1 00:00:00 2024\n"
                       b"Subject: x\r\n\r\nbare\rcr\r\nmixed\n\xc3\xa9t\xc3\xa9\n")
    s = srv.sessions[0]
    d = s["data"]
    check("mbox 'From ' line dropped",
          not d.startswith(b"From ") and b"From someone" not in d, d)
    check("bare CR and LF become CR LF",
          b"\r\nbare\r\ncr\r\nmixed\r\n" in d and
          b"\r" not in d.replace(b"\r\n", b""), d)
    check("8-bit content is declared BODY=8BITMIME",
          any(c.startswith(b"MAIL") and b"BODY=8BITMIME" in c
              for c in s["cmds"]), s["cmds"])

    srv.reset()
    rc, out, err = run(["demo@example.test"], b"just a body line\nmore\n")
    d = srv.sessions[0]["data"]
    check("input without headers: an empty line between ours and the body",
          b"\r\n\r\njust a body line\r\nmore\r\n" in d and
          header(d, "Date") is not None, d)

    srv.reset()
    big = b"Subject: " + b"x" * 70000 + b"\nTo: a@b\n\nbody\n"
    rc, out, err = run(["demo@example.test"], big)
    d = srv.sessions[0]["data"] if srv.sessions else b""
    check("a 70 KB header line ends the header block: it and the rest "
          "are body, after our headers and an empty line",
          rc == EX_OK and header(d, "Date") is not None and
          d.endswith(b"\r\n\r\nSubject: " + b"x" * 70000 +
                     b"\r\nTo: a@b\r\n\r\nbody\r\n"), (rc, err, d[:300]))

    srv.reset()
    rc, out, err = run(["demo@example.test"],
                       b"Subject: a\x00b\nTo: x@y\n\nbody\n")
    d = srv.sessions[0]["data"] if srv.sessions else b""
    check("a NUL in a header line ends the header block",
          rc == EX_OK and header(d, "Subject") is None and
          b"\r\n\r\nSubject: a\x00b\r\nTo: x@y\r\n" in d, (rc, d))

    srv.reset()
    rc, out, err = run(["demo@example.test"],
                       b"Subject: x\n\n" + (b"y" * 999 + b"\n") * 200)
    check("over message_size_limit: EX_DATAERR before any session",
          rc == EX_DATAERR and not srv.sessions and b"too large" in err,
          (rc, err))

    # --- replies and exit status --------------------------------------------
    srv.reset()
    srv.rcpt_replies["nobody@example.test"] = \
        b"550 5.1.1 <nobody@example.test>: Recipient address rejected"
    rc, out, err = run(["nobody@example.test"], b"Subject: x\n\nb\n")
    s = srv.sessions[0]
    check("550 for the only recipient: EX_NOUSER, no DATA, reply shown",
          rc == EX_NOUSER and b"DATA" not in s["cmds"] and
          b"550 5.1.1" in err and b"nobody@example.test" in err,
          (rc, err, s["cmds"]))

    srv.reset()
    srv.rcpt_replies["nobody@example.test"] = b"550 5.1.1 unknown"
    rc, out, err = run(["nobody@example.test", "demo@example.test"],
                       b"Subject: x\n\nb\n")
    s = srv.sessions[0]
    check("one of two recipients refused: sent to the other, EX_NOUSER",
          rc == EX_NOUSER and s["data"] is not None, (rc, err, s["cmds"]))

    srv.reset()
    srv.rcpt_replies["later@example.test"] = b"451 4.3.0 try again"
    rc, out, err = run(["later@example.test"], b"Subject: x\n\nb\n")
    check("451 at RCPT: EX_TEMPFAIL", rc == EX_TEMPFAIL and b"451" in err,
          (rc, err))

    srv.reset()
    srv.rcpt_replies["far@example.org"] = b"554 5.7.1 Relay access denied"
    rc, out, err = run(["far@example.org"], b"Subject: x\n\nb\n")
    check("554 5.7.1 at RCPT: EX_NOPERM", rc == EX_NOPERM, (rc, err))

    srv.reset()
    srv.mail_reply = b"553 5.1.8 bad sender domain"
    rc, out, err = run(["demo@example.test"], b"Subject: x\n\nb\n")
    check("553 at MAIL: EX_DATAERR, no RCPT",
          rc == EX_DATAERR and not any(c.startswith(b"RCPT")
                                       for c in srv.sessions[0]["cmds"]),
          (rc, err))

    srv.reset()
    srv.data_reply = b"554 5.7.0 content refused"
    rc, out, err = run(["demo@example.test"], b"Subject: x\n\nb\n")
    check("554 after the data: EX_DATAERR", rc == EX_DATAERR and
          b"554 5.7.0" in err, (rc, err))

    srv.reset()
    srv.data_reply = b"452 4.3.1 insufficient system storage"
    rc, out, err = run(["demo@example.test"], b"Subject: x\n\nb\n")
    check("452 after the data: EX_TEMPFAIL", rc == EX_TEMPFAIL, (rc, err))

    srv.reset()
    srv.greeting = b"421 4.3.2 service not available"
    rc, out, err = run(["demo@example.test"], b"Subject: x\n\nb\n")
    check("421 greeting: EX_TEMPFAIL", rc == EX_TEMPFAIL, (rc, err))

    srv.reset()
    rc, out, err = run(["-v", "demo@example.test"], b"Subject: x\n\nb\n")
    check("-v shows the dialogue on stderr",
          rc == EX_OK and b">>> MAIL FROM:" in err and b"<<< 250" in err,
          err)

    srv.reset()
    rc, out, err = run(["-N", "success,delay", "-R", "hdrs", "-V", "id+1",
                        "demo@example.test"], b"Subject: x\n\nb\n")
    s = srv.sessions[0]
    check("-N, -R, -V become NOTIFY=, RET=, ENVID= (xtext)",
          any(c.startswith(b"MAIL") and b"RET=HDRS" in c and
              b"ENVID=id+2B1" in c for c in s["cmds"]) and
          b"RCPT TO:<demo@example.test> NOTIFY=SUCCESS,DELAY" in s["cmds"],
          s["cmds"])

    # --- -bs ---------------------------------------------------------------------
    srv.reset()
    rc, out, err = run(["-bs"], b"EHLO client.test\nMAIL FROM:<a@b.test>\n"
                       b"RCPT TO:<c@d.test>\r\nQUIT\n")
    s = srv.sessions[0] if srv.sessions else {"raw": b""}
    check("-bs relays the dialogue both ways",
          rc == EX_OK and out.startswith(b"220 ") and
          b"250 2.1.5 Ok" in out and b"221 2.0.0 Bye" in out, (rc, out))
    check("-bs turns LF into CR LF and keeps CR LF",
          s["raw"] == b"EHLO client.test\r\nMAIL FROM:<a@b.test>\r\n"
          b"RCPT TO:<c@d.test>\r\nQUIT\r\n", s["raw"])

    # --- -bp / mailq ----------------------------------------------------------
    rc, out, err = run(["-bp"])
    check("sendmail -bp on an empty queue",
          rc == EX_OK and out == b"Mail queue is empty\n", (rc, out, err))
    rc, out, err = run([], prog=MAILQ)
    check("mailq on an empty queue",
          rc == EX_OK and out == b"Mail queue is empty\n", (rc, out, err))
    rc, out, err = run(["x@y"], prog=MAILQ)
    check("mailq with an argument: EX_USAGE", rc == EX_USAGE, (rc, err))

    srv.close()

    # --- end to end: the real smtpd submit service and qmgr under master ----
    # No local service: deliveries are deferred, so the message stays
    # for mailq and the queue commands (which then go through qmgr).
    E = os.path.join(T, "e2e")
    eetc = os.path.join(E, "etc")
    eq = os.path.join(E, "q")
    os.makedirs(eetc)
    os.chmod(E, 0o755)
    os.chmod(eetc, 0o755)
    bindir = os.path.join(BUILD, "bin")
    with open(os.path.join(eetc, "posta.conf"), "w") as fp:
        fp.write("queue_directory = %s\ndaemon_directory = %s\n"
                 "maillog_file = %s/log\nmyhostname = mx.example.test\n"
                 "mydomain = example.test\n"
                 "user_database = file:%s/users\n"
                 "alias_maps = file:%s/aliases\n"
                 "master_stop_timeout = 2s\n" % (eq, bindir, E, eetc, eetc))
    with open(os.path.join(eetc, "users"), "w") as fp:
        fp.write("demo@example.test:{PLAIN}demo\n")
    open(os.path.join(eetc, "aliases"), "w").close()
    with open(os.path.join(eetc, "master.conf"), "w") as fp:
        fp.write("submit unix public/submit 1 smtpd "
                 "-o smtpd_local_submit=yes\n"
                 "qmgr unix private/qmgr 1 qmgr\n")
    for f in os.listdir(eetc):
        os.chmod(os.path.join(eetc, f), 0o644)
    eenv = dict(ENV)
    eenv["POSTA_CONFIG_DIR"] = eetc
    missing = [x for x in ("master", "smtpd", "qmgr", "posta", "mailq")
               if not os.access(os.path.join(bindir, x), os.X_OK)]
    check("e2e: master, smtpd, qmgr are built", not missing, missing)
    if missing:
        raise SystemExit(1)
    master = subprocess.Popen([os.path.join(bindir, "master"), "-c", eetc,
                               "-f"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and not (
                os.path.exists(os.path.join(eq, "public", "submit")) and
                os.path.exists(os.path.join(eq, "private", "qmgr"))):
            time.sleep(0.1)
        rc, out, err = run(["-t", "-F", "Cron Daemon"],
                           b"To: demo, far@elsewhere.test\n"
                           b"Bcc: hidden@elsewhere.test\n"
                           b"Subject: e2e\n\n.leading dot\nbody\n",
                           env=eenv)
        check("e2e: sendmail -t through the real submit service: exit 0",
              rc == EX_OK and err == b"", (rc, err))
        qid = None
        while time.time() < deadline + 10:
            d = os.listdir(os.path.join(eq, "deferred"))
            if d:
                qid = d[0]
                break
            time.sleep(0.1)
        rc, out, err = run([], env=eenv, prog=MAILQ)
        lines = out.decode().split("\n")
        check("e2e: mailq shows it deferred, three recipients, with reasons",
              qid is not None and lines[1].startswith(qid + " ") and
              ("%s@example.test" % login) in lines[1] and
              "demo@example.test" in out.decode() and
              "far@elsewhere.test" in out.decode() and
              "hidden@elsewhere.test" in out.decode() and
              re.search(r"^ {12}\(.+\)$", out.decode(), re.M) is not None,
              (qid, out, err))
        p = subprocess.run([os.path.join(bindir, "posta"), "queue", "show",
                            qid or "x"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=eenv)
        shown = p.stdout.decode("utf-8", "replace")
        check("e2e: the queued message: Received: with our uid, our "
              "headers, Bcc: gone, dots as sent",
              ("Received: from local (uid %d)" % os.getuid()) in shown and
              "From: Cron Daemon <%s@example.test>" % login in shown and
              "\nDate: " in shown and "\nMessage-ID: <" in shown and
              "Bcc:" not in shown and "\n.leading dot\nbody\n" in shown,
              shown)
        rc, out, err = run(["nobody@example.test"], b"Subject: x\n\nb\n",
                           env=eenv)
        check("e2e: an unknown local user: EX_NOUSER with smtpd's reply",
              rc == EX_NOUSER and b"550 5.1.1" in err and
              len([f for f in os.listdir(os.path.join(eq, "incoming"))
                   if f[0] != "."]) +
              len(os.listdir(os.path.join(eq, "deferred"))) == 1,
              (rc, err))
        p = subprocess.run([os.path.join(bindir, "posta"), "queue", "hold",
                            qid or "x"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=eenv)
        check("e2e: posta queue hold goes through qmgr",
              p.returncode == 0 and b"not running" not in p.stderr and
              qid is not None and
              os.path.exists(os.path.join(eq, "hold", qid)),
              (p.returncode, p.stdout, p.stderr))
        p = subprocess.run([os.path.join(bindir, "posta"), "queue", "delete",
                            "ALL"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=eenv)
        rc, out, err = run([], env=eenv, prog=MAILQ)
        check("e2e: delete ALL through qmgr empties the queue",
              p.returncode == 0 and out == b"Mail queue is empty\n",
              (p.stdout, p.stderr, out))
    finally:
        master.terminate()
        try:
            master.wait(15)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
except SystemExit:
    tap.failed += 1
finally:
    shutil.rmtree(T, ignore_errors=True)

sys.exit(tap.done())
