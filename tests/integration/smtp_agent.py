#!/usr/bin/env python3
"""smtp_agent - the smtp delivery agent against scripted SMTP servers.

A posta instance runs the smtp agent (master.conf "smtpout unix
private/smtp 1 smtp"); transport_maps route test domains to
smtp:[127.0.0.1]:PORT where fake SMTP servers written here listen.  Each
fake server follows a script (extensions, per-recipient replies, final
reply, STARTTLS, hostile greetings) and records what it received: every
recv() chunk (to see PIPELINING in one packet), each command line and
each message's DATA bytes (to check dot stuffing and line breaking byte
for byte).  Mail goes in through posta's smtpd with smtplib; we look at
what the servers got, the log lines, mailq and bounces in the sender's
Maildir.
"""

import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from postalib import BIN, MKCERTS, Posta, run_main, wait_until, write_file

SENDER = "demo@example.test"


class Fake:
    """A scripted SMTP server on 127.0.0.1 (one thread per connection).

    ext: EHLO keywords; rcpt(addr) -> reply line; final(accepted, data)
    -> reply line; raw_greeting: bytes sent instead of a greeting (then
    the connection is only drained); tls: an ssl.SSLContext to offer
    STARTTLS with; ehlo_reply: a reply to EHLO instead of 250; stall:
    "MAIL", "RCPT", "DATA" or "." (the final dot): no answer to it, the
    connection is only drained (a server that hangs there)."""

    def __init__(self, name, ext=("PIPELINING", "SIZE 10240000", "8BITMIME",
                                  "DSN", "ENHANCEDSTATUSCODES"),
                 rcpt=None, final=None, raw_greeting=None, tls=None,
                 greeting=None, stall=None):
        self.name = name
        self.ext = list(ext)
        self.rcpt = rcpt or (lambda a: "250 2.1.5 Ok")
        self.final = final
        self.raw_greeting = raw_greeting
        self.greeting = greeting or ("220 %s ESMTP fake" % name)
        self.tls = tls
        self.stall = stall
        self.conns = []
        self.nmsg = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        rec = {"chunks": [], "lines": [], "messages": [], "tls": False,
               "closed": False}
        with self.lock:
            self.conns.append(rec)
        c.settimeout(20)
        try:
            self._dialogue(c, rec)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            rec["closed"] = True
            try:
                c.close()
            except OSError:
                pass

    def _dialogue(self, c, rec):
        buf = bytearray()

        def fill():
            d = c.recv(65536)
            if not d:
                raise ValueError("eof")
            rec["chunks"].append(bytes(d))
            buf.extend(d)

        def line():
            while b"\r\n" not in buf:
                fill()
            i = buf.index(b"\r\n")
            ln = bytes(buf[:i])
            del buf[:i + 2]
            rec["lines"].append(ln.decode("latin-1"))
            return ln.decode("latin-1")

        def send(text):
            c.sendall(text.encode("latin-1") + b"\r\n")

        if self.raw_greeting is not None:
            c.sendall(self.raw_greeting)
            while True:
                fill()
        send(self.greeting)
        accepted = []
        while True:
            ln = line()
            verb = ln.split(" ", 1)[0].upper()
            if verb == self.stall:
                while True:	# hang: read, never answer
                    fill()
            if verb == "EHLO":
                exts = list(self.ext)
                if self.tls is not None and not rec["tls"]:
                    exts.append("STARTTLS")
                out = [self.name] + exts
                send("\r\n".join("250%s%s" % (
                    " " if i == len(out) - 1 else "-", t)
                    for i, t in enumerate(out)))
            elif verb == "HELO":
                send("250 %s" % self.name)
            elif verb == "STARTTLS" and self.tls == "broken":
                # a handshake that fails: garbage instead of TLS
                send("220 2.0.0 Ready to start TLS")
                c.sendall(b"this is not a TLS server hello\r\n")
                raise ValueError("broken TLS")
            elif verb == "STARTTLS" and self.tls is not None:
                send("220 2.0.0 Ready to start TLS")
                c = self.tls.wrap_socket(c, server_side=True)
                rec["tls"] = True
                buf.clear()
            elif verb == "MAIL":
                accepted = []
                send("250 2.1.0 Ok")
            elif verb == "RCPT":
                m = re.match(r"RCPT TO:<([^>]*)>", ln, re.I)
                addr = m.group(1) if m else ""
                r = self.rcpt(addr)
                if r.startswith("2"):
                    accepted.append(addr)
                send(r)
            elif verb == "DATA":
                if not accepted:
                    send("554 5.5.1 Error: no valid recipients")
                    continue
                send("354 End data with <CR><LF>.<CR><LF>")
                while True:
                    if buf.startswith(b".\r\n"):
                        end = 3
                        break
                    i = buf.find(b"\r\n.\r\n")
                    if i >= 0:
                        end = i + 5
                        break
                    fill()
                data = bytes(buf[:end])
                del buf[:end]
                rec["messages"].append(data)
                if self.stall == ".":
                    while True:
                        fill()
                with self.lock:
                    self.nmsg += 1
                    n = self.nmsg
                if self.final is not None:
                    send(self.final(accepted, data))
                else:
                    send("250 2.0.0 Ok: queued as FAKE%d" % n)
                accepted = []
            elif verb == "RSET":
                accepted = []
                send("250 2.0.0 Ok")
            elif verb == "NOOP":
                send("250 2.0.0 Ok")
            elif verb == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send("502 5.5.2 Error: command not recognized")


def encode(msg, limit=998):
    """What a correct client sends after DATA for msg (CRLF lines):
    dot stuffing, lines over limit broken, with a space in the header."""
    out = bytearray()
    in_header = True
    for raw in msg.split(b"\r\n")[:-1]:
        if raw == b"":
            in_header = False
            out += b"\r\n"
            continue
        cur = bytearray()
        first = True
        for ch in raw:
            if len(cur) >= limit:
                out += cur + b"\r\n"
                cur = bytearray(b" " if in_header else b"")
                first = not in_header
            if first and ch == ord("."):
                cur += b"."
            first = False
            cur.append(ch)
        out += cur + b"\r\n"
    return bytes(out) + b".\r\n"


def rcpt_script(addr):
    local = addr.split("@")[0]
    if local.startswith("temp"):
        return "451 4.2.0 <%s>: mailbox busy, try later" % addr
    if local.startswith("bad"):
        return "550 5.1.1 <%s>: Recipient address rejected: no such user" \
            % addr
    return "250 2.1.5 Ok"


def final_script(accepted, data):
    if any(a.startswith("datafail") for a in accepted):
        return "554 5.6.0 Error: content rejected by policy"
    return None


def submit(p, rcpts, body, subject="test", mail_options=(),
           rcpt_options=(), headers=""):
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n%s\r\n" %
           (SENDER, ", ".join(rcpts), subject, headers)).encode() + body
    with smtplib.SMTP("127.0.0.1", p.ports["smtp"], timeout=20) as s:
        s.ehlo("client.test")
        code, resp = s.mail(SENDER, list(mail_options))
        assert code == 250, resp
        for r in rcpts:
            code, resp = s.rcpt(r, list(rcpt_options))
            assert code == 250, (r, resp)
        code, resp = s.data(msg)
        assert code == 250, resp
        m = re.search(rb"queued as ([0-9A-Z]+)", resp)
    return m.group(1).decode(), msg


def log_line(p, qid, rcpt, timeout=20):
    pat = re.compile(r"posta/smtp\[\d+\]: %s: to=<%s>,.*" %
                     (re.escape(qid), re.escape(rcpt)))

    def find():
        m = pat.search(p.log())
        return m.group(0) if m else None
    return wait_until(find, timeout)


def mailq(p):
    r = subprocess.run([os.path.join(BIN, "mailq")],
                       env=dict(os.environ, POSTA_CONFIG_DIR=p.etc),
                       capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


def bounce_with(p, text, timeout=20):
    def find():
        for f in p.mails("demo"):
            raw = p.read_mail(f).decode("utf-8", "replace")
            if text in raw:
                return raw
        return None
    return wait_until(find, timeout)


def main(tap):
    tmp = tempfile.mkdtemp(prefix="posta-smtp-agent.")
    os.chmod(tmp, 0o755)
    fakes = []
    try:
        run(tap, tmp, fakes)
    finally:
        for f in fakes:
            f.close()
        shutil.rmtree(tmp, ignore_errors=True)


def run(tap, tmp, fakes):
    def fake(*a, **kw):
        f = Fake(*a, **kw)
        fakes.append(f)
        return f

    certs = os.path.join(tmp, "certs")
    subprocess.run(["sh", MKCERTS, certs], check=True,
                   stdout=subprocess.DEVNULL)
    for f in os.listdir(certs):
        os.chmod(os.path.join(certs, f), 0o644)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(os.path.join(certs, "server.pem"),
                         os.path.join(certs, "server.key"))
    fp = subprocess.run(["openssl", "x509", "-noout", "-fingerprint",
                         "-sha256", "-in", os.path.join(certs,
                                                        "server.pem")],
                        capture_output=True, text=True).stdout
    fp = fp.strip().split("=", 1)[1]

    main_s = fake("main.fake", rcpt=rcpt_script,
                  final=lambda a, d: final_script(a, d) or
                  "250 2.0.0 Ok: queued as MAIN%d" % main_s.nmsg)
    nopipe = fake("nopipe.fake", ext=("SIZE 1000", "8BITMIME"))
    reuse = fake("reuse.fake")
    tls_ok = fake("tls.fake", tls=sctx)
    tls_name = fake("tls.fake", tls=sctx)
    tls_fp = fake("tls.fake", tls=sctx)
    plain = fake("plain.fake")
    maytls = fake("maytls.fake", tls=sctx)
    nodsn = fake("nodsn.fake", ext=("PIPELINING", "8BITMIME"))
    maybroken = fake("maybroken.fake", tls="broken")
    endless = fake("x", raw_greeting=b"220-endless\r\n" * 300)
    longline = fake("x", raw_greeting=b"220 " + b"x" * 5000 + b"\r\n")
    garbage = fake("x", raw_greeting=b"hello, this is not SMTP\r\n")
    greet5 = fake("greet5.fake", greeting="554 5.7.1 go away")
    loop = fake("loop.fake", greeting="220 mx.example.test ESMTP")
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    mxs = fake("mx.fake")
    stalls = {}
    for verb, dom in (("MAIL", "hangmail.test"), ("RCPT", "hangrcpt.test"),
                      ("DATA", "hangdata.test"), (".", "hangdot.test")):
        stalls[dom] = fake("hang.fake", ext=("8BITMIME",), stall=verb)
    dns_port, dns = start_dns(tmp)

    routes = {"main.test": main_s, "nopipe.test": nopipe,
              "reuse.test": reuse, "tls.test": tls_ok,
              "tlsname.test": tls_name, "tlsfp.test": tls_fp,
              "plain.test": plain, "maytls.test": maytls,
              "nodsn.test": nodsn,
              "maybroken.test": maybroken, "endless.test": endless,
              "longline.test": longline, "garbage.test": garbage,
              "greet5.test": greet5, "loop.test": loop}
    routes.update(stalls)
    lines = ["%s smtp:[127.0.0.1]:%d" % (d, f.port)
             for d, f in routes.items()]
    lines.append("dead.test smtp:[127.0.0.1]:%d" % dead_port)
    # MX lookups (no brackets): the port goes with every MX host
    for d in ("mx.test", "aonly.test", "nullmx.test", "nx.test"):
        lines.append("%s smtp:%s:%d" % (d, d, mxs.port))
    routes["mx.test"] = mxs
    write_file(os.path.join(tmp, "transport"), "\n".join(lines) + "\n")
    write_file(os.path.join(tmp, "tls_policy"),
               "[127.0.0.1]:%d verify\n" % tls_ok.port +
               "[127.0.0.1]:%d verify match=wrong.example.test\n"
               % tls_name.port +
               "[127.0.0.1]:%d verify fingerprint=%s\n"
               % (tls_fp.port, fp.lower().replace(":", "")) +
               "[127.0.0.1]:%d encrypt\n" % plain.port)

    p = Posta(name="smtp-agent",
              posta_conf="dns_servers = 127.0.0.1:%d\n" % dns_port,
              master_extra="smtpout unix private/smtp 1 smtp\n",
              program_conf={
                  "qmgr": "transport_maps = file:%s/transport\n"
                          "default_destination_concurrency_limit = 1\n"
                          % tmp,
                  "smtp": "smtp_tls_ca_file = %s/ca.pem\n"
                          "smtp_tls_policy_maps = file:%s/tls_policy\n"
                          "smtp_connection_cache_time = 3s\n"
                          "smtp_helo_timeout = 10s\n"
                          "smtp_mail_timeout = 2s\n"
                          "smtp_rcpt_timeout = 2s\n"
                          "smtp_data_init_timeout = 2s\n"
                          "smtp_data_done_timeout = 2s\n" % (certs, tmp)})
    try:
        p.start()
        tap.ok(wait_until(lambda: os.path.exists(
            os.path.join(p.queue, "private", "smtp")), 10),
            "smtp agent serves private/smtp", p.log())
        checks(tap, p, routes, dead_port)
        dns_checks(tap, p, mxs)
    finally:
        p.finish(tap)
        dns.terminate()
        dns.wait(10)


def start_dns(tmp):
    """dnsmasq on 127.0.0.1, a free UDP port: mx.test has a dead MX
    (preference 10, 127.0.0.2 where nothing listens) and a good one (20,
    127.0.0.1); aonly.test has no MX, only an A record; nullmx.test has
    the null MX; nx.test does not exist."""
    for _ in range(20):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        u.close()
        proc = subprocess.Popen(
            ["dnsmasq", "--conf-file=/dev/null", "--keep-in-foreground",
             "--user=root", "--port=%d" % port, "--listen-address=127.0.0.1",
             "--bind-interfaces", "--no-resolv", "--no-hosts",
             "--no-negcache", "--local=/#/",
             "--pid-file=%s/dnsmasq.pid" % tmp,
             "--mx-host=mx.test,dead.mx.test,10",
             "--mx-host=mx.test,good.mx.test,20",
             "--host-record=dead.mx.test,127.0.0.2",
             "--host-record=good.mx.test,127.0.0.1",
             "--host-record=aonly.test,127.0.0.1",
             "--mx-host=nullmx.test,.,0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.2)
        if proc.poll() is None:
            return port, proc
    raise RuntimeError("dnsmasq did not start: %s" % proc.stderr.read())


def dns_checks(tap, p, mxs):
    qid, _ = submit(p, ["u@mx.test"], b"via mx\r\n")
    line = log_line(p, qid, "u@mx.test")
    tap.ok(line and "status=sent" in line and
           "relay=good.mx.test[127.0.0.1]:%d" % mxs.port in line,
           "MX: the dead first MX is skipped, the second takes it", line)
    tap.ok(re.search(r"%s: connect to dead\.mx\.test\[127\.0\.0\.2\]:%d: "
                     r"Connection refused" % (qid, mxs.port), p.log()),
           "the dead MX was tried first (preference 10)")
    qid, _ = submit(p, ["u@aonly.test"], b"no mx\r\n")
    line = log_line(p, qid, "u@aonly.test")
    tap.ok(line and "status=sent" in line and
           "relay=aonly.test[127.0.0.1]:%d" % mxs.port in line,
           "no MX record: the domain's own A record", line)
    qid, _ = submit(p, ["u@nullmx.test"], b"null mx\r\n")
    line = log_line(p, qid, "u@nullmx.test")
    tap.ok(line and "dsn=5.1.10" in line and "status=bounced (Domain "
           "nullmx.test does not accept mail (nullMX))" in line,
           "null MX: bounced 5.1.10", line)
    qid, _ = submit(p, ["u@nx.test"], b"nx\r\n")
    line = log_line(p, qid, "u@nx.test")
    tap.ok(line and "dsn=5.1.2" in line and "Host or domain name not "
           "found. Name service error for name=nx.test type=MX: Host not "
           "found" in line, "NXDOMAIN: bounced 5.1.2", line)


def checks(tap, p, routes, dead_port):
    main_s = routes["main.test"]

    # ---- mixed per-recipient results, PIPELINING, log line ----------------
    qid, _ = submit(p, ["ok1@main.test", "temp1@main.test", "bad1@main.test"],
                    b"mixed results\r\n", subject="mixed")
    line = log_line(p, qid, "ok1@main.test")
    tap.ok(line and re.search(
        r"to=<ok1@main\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, "
        r"delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, "
        r"dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as MAIN\d+\), "
        r"tls=none$" % main_s.port, line),
        "sent: Postfix-like log line with relay, delays, dsn, reply, tls",
        line or p.log())
    line = log_line(p, qid, "temp1@main.test")
    tap.ok(line and "status=deferred (host 127.0.0.1[127.0.0.1] said: 451 "
           "4.2.0 <temp1@main.test>: mailbox busy, try later (in reply to "
           "RCPT TO command))" in line and "dsn=4.2.0" in line,
           "4xx to RCPT: deferred with the remote reply", line)
    line = log_line(p, qid, "bad1@main.test")
    tap.ok(line and "status=bounced (host 127.0.0.1[127.0.0.1] said: 550 "
           "5.1.1" in line and "dsn=5.1.1" in line,
           "5xx to RCPT: bounced with the remote reply", line)
    conn = next((c for c in main_s.conns if any(
        l.startswith("MAIL FROM:") for l in c["lines"])), None)
    chunk = next((ch for ch in (conn or {}).get("chunks", [])
                  if b"MAIL FROM:" in ch), b"")
    tap.ok(chunk.count(b"RCPT TO:") == 3 and chunk.endswith(b"DATA\r\n"),
           "PIPELINING: MAIL, 3 RCPT and DATA in one packet", chunk)
    tap.ok(conn and len(conn["messages"]) == 1 and
           conn["messages"][0].endswith(b"\r\nmixed results\r\n.\r\n"),
           "the server got the message once", conn and conn["messages"])
    tap.ok(wait_until(lambda: "451 4.2.0" in mailq(p), 10),
           "mailq shows the remote 4xx reply", mailq(p))
    # (qmgr bounces once the message is done: a message of its own here)
    qid, _ = submit(p, ["bad2@main.test", "ok5@main.test"], b"one bad\r\n")
    raw = bounce_with(p, "Final-Recipient: rfc822; bad2@main.test")
    tap.ok(raw and "Diagnostic-Code: smtp; 550 5.1.1 <bad2@main.test>" in raw
           and "Action: failed" in raw and
           "Final-Recipient: rfc822; ok5@main.test" not in raw,
           "bounce carries the remote 550 in Diagnostic-Code", raw)

    # ---- 5xx to end of DATA ----------------------------------------------
    qid, _ = submit(p, ["datafail@main.test"], b"bad content\r\n")
    line = log_line(p, qid, "datafail@main.test")
    tap.ok(line and "status=bounced (host 127.0.0.1[127.0.0.1] said: 554 "
           "5.6.0 Error: content rejected by policy (in reply to end of "
           "DATA command))" in line, "5xx after DATA: bounced", line)
    tap.ok(bounce_with(p, "554 5.6.0 Error: content rejected"),
           "and the DSN carries the 554")

    # ---- dot stuffing and line breaking, byte for byte -------------------
    body = (b".starts with a dot\r\n..two dots\r\n.\r\nnormal\r\n" +
            b"y" * 2500 + b"\r\n" + b"." + b"z" * 997 + b"." + b"w" * 5 +
            b"\r\nend\r\n")
    longhdr = "X-Long: " + "h" * 1200 + "\r\n"
    qid, msg = submit(p, ["ok2@main.test"], body, subject="stuffing",
                      headers=longhdr)
    tap.ok(log_line(p, qid, "ok2@main.test"), "long-line message sent")
    data = next((m for c in main_s.conns for m in c["messages"]
                 if b"Subject: stuffing" in m), b"")
    want = encode(msg)
    tap.ok(data.endswith(want), "DATA byte-exact: dots stuffed, lines over "
           "998 broken (header continued with a space)",
           "got tail %r" % data[-300:])
    tap.ok(all(len(x) <= 998 for x in data.split(b"\r\n")) and
           b"\r\n..starts with a dot\r\n...two dots\r\n..\r\n" in data,
           "no line over 998 bytes; '.' lines stuffed", data[:400])

    # ---- ESMTP parameters passed on: SIZE BODY RET ENVID NOTIFY ORCPT -----
    qid, _ = submit(p, ["ok3@main.test"], "8-bit caf\u00e9\r\n".encode(),
                    mail_options=("BODY=8BITMIME", "RET=HDRS",
                                  "ENVID=env+2B1"),
                    rcpt_options=("NOTIFY=SUCCESS,FAILURE",
                                  "ORCPT=rfc822;orig@main.test"))
    line = log_line(p, qid, "ok3@main.test")
    tap.ok(line and ", orig_to=<orig@main.test>, " in line,
           "orig_to= logged from ORCPT", line)
    lines = [l for c in main_s.conns for l in c["lines"]]
    mail = next((l for l in reversed(lines) if l.startswith("MAIL") and
                 "ENVID" in l), "")
    tap.ok(re.match(r"MAIL FROM:<demo@example\.test> SIZE=\d+ "
                    r"BODY=8BITMIME RET=HDRS ENVID=env\+2B1$", mail),
           "MAIL FROM with SIZE, BODY=8BITMIME, RET, ENVID", lines[-8:])
    tap.ok("RCPT TO:<ok3@main.test> NOTIFY=SUCCESS,FAILURE "
           "ORCPT=rfc822;orig@main.test" in lines,
           "RCPT TO with NOTIFY and ORCPT", lines[-8:])

    # ---- NOTIFY=SUCCESS: passed on, or reported "relayed" (RFC 3461 4) ----
    before = len(p.mails("demo"))
    qid2, _ = submit(p, ["notify@nodsn.test"], b"tell me\r\n",
                     rcpt_options=("NOTIFY=SUCCESS",))
    line = log_line(p, qid2, "notify@nodsn.test")
    got = p.wait_mails(before + 1, "demo")
    reports = [p.read_mail(f) for f in got[before:]]
    relayed = [r for r in reports if b"notify@nodsn.test" in r and
               b"Successful Mail Delivery Report" in r]
    tap.ok(line and "status=sent" in line and relayed and
           re.search(rb"Action: relayed\r?\n", relayed[0]) and
           re.search(rb"Final-Recipient: rfc822; ?notify@nodsn\.test",
                     relayed[0]),
           "NOTIFY=SUCCESS to a server without DSN: a success report "
           "with Action: relayed", reports[:1])
    tap.ok(not any(b"ok3@main.test" in r for r in
                   (p.read_mail(f) for f in p.mails("demo"))),
           "NOTIFY=SUCCESS passed on to a server with DSN: no report from "
           "us (the next hop sends it)")

    # ---- SMTPUTF8 required, server without it ------------------------------
    qid, _ = submit(p, ["ok4@main.test"], "utf-8 body\r\n".encode(),
                    mail_options=("SMTPUTF8",))
    line = log_line(p, qid, "ok4@main.test")
    tap.ok(line and "dsn=5.6.7" in line and "SMTPUTF8 is required, but "
           "was not offered by host 127.0.0.1[127.0.0.1]" in line,
           "SMTPUTF8 message to a server without it: 5.6.7", line)

    # ---- no PIPELINING; SIZE too small -----------------------------------
    nopipe = routes["nopipe.test"]
    qid, _ = submit(p, ["big@nopipe.test"], b"x" * 3000 + b"\r\n")
    line = log_line(p, qid, "big@nopipe.test")
    tap.ok(line and "dsn=5.3.4" in line and "exceeds size limit 1000 of "
           "server 127.0.0.1[127.0.0.1]" in line,
           "message over the server's SIZE: bounced 5.3.4", line)
    tap.ok(not any(l.startswith("MAIL") for c in nopipe.conns
                   for l in c["lines"]), "and no MAIL was sent")
    qid, _ = submit(p, ["a@nopipe.test", "b@nopipe.test"], b"small\r\n")
    tap.ok(log_line(p, qid, "b@nopipe.test") and "status=sent" in
           log_line(p, qid, "b@nopipe.test"), "sent without PIPELINING")
    chunks = [ch for c in nopipe.conns for ch in c["chunks"]]
    tap.ok(any(ch.startswith(b"MAIL FROM:") and b"RCPT" not in ch
               for ch in chunks) and
           any(ch.startswith(b"RCPT TO:<b@") for ch in chunks),
           "without PIPELINING every command waits for its reply", chunks)

    # ---- connection reuse ------------------------------------------------
    reuse = routes["reuse.test"]
    q1, _ = submit(p, ["one@reuse.test"], b"first\r\n")
    log_line(p, q1, "one@reuse.test")
    q2, _ = submit(p, ["two@reuse.test"], b"second\r\n")
    l2 = log_line(p, q2, "two@reuse.test")
    tap.ok(l2 and "status=sent" in l2, "second message sent", l2)
    tap.eq(len(reuse.conns), 1, "two messages, one connection",
           [c["lines"] for c in reuse.conns])
    ls = reuse.conns[0]["lines"] if reuse.conns else []
    verbs = [l.split(" ")[0].split(":")[0] for l in ls]
    tap.ok(verbs[:2] == ["EHLO", "MAIL"] and verbs.count("DATA") == 2 and
           "RSET" in verbs[verbs.index("DATA"):], "RSET between the two "
           "transactions", ls)
    tap.ok(wait_until(lambda: reuse.conns and reuse.conns[0]["closed"] and
                      reuse.conns[0]["lines"][-1] == "QUIT", 20),
           "cached connection ends with QUIT after "
           "smtp_connection_cache_time", reuse.conns and
           reuse.conns[0]["lines"])

    # ---- TLS: verify against the test CA, name mismatch, fingerprint ----
    qid, _ = submit(p, ["u@tls.test"], b"over tls\r\n")
    line = log_line(p, qid, "u@tls.test")
    tap.ok(line and "status=sent" in line and
           re.search(r"tls=verified TLSv1\.[23] \S+$", line),
           "STARTTLS verified against the test CA, logged", line)
    tap.ok(routes["tls.test"].conns and
           routes["tls.test"].conns[0]["tls"] and
           routes["tls.test"].conns[0]["messages"],
           "the message went over TLS")
    qid, _ = submit(p, ["u@tlsname.test"], b"wrong name\r\n")
    line = log_line(p, qid, "u@tlsname.test")
    tap.ok(line and "dsn=4.7.5" in line and
           "Server certificate not verified" in line and
           not routes["tlsname.test"].conns[0]["messages"],
           "verify with match= another name: deferred 4.7.5", line)
    qid, _ = submit(p, ["u@tlsfp.test"], b"pinned\r\n")
    line = log_line(p, qid, "u@tlsfp.test")
    tap.ok(line and "status=sent" in line and "tls=verified" in line,
           "verify fingerprint= (lower case, no colons) matches", line)
    qid, _ = submit(p, ["u@plain.test"], b"needs tls\r\n")
    line = log_line(p, qid, "u@plain.test")
    tap.ok(line and "dsn=4.7.4" in line and "TLS is required, but was not "
           "offered by host 127.0.0.1[127.0.0.1]" in line and
           "status=deferred" in line,
           "encrypt policy, server without STARTTLS: deferred 4.7.4", line)
    tap.ok(not any(l.startswith("MAIL") for c in routes["plain.test"].conns
                   for l in c["lines"]), "and nothing sent in the clear")
    # the default level, may: STARTTLS when offered, the outcome logged
    qid, _ = submit(p, ["u@maytls.test"], b"opportunistic\r\n")
    line = log_line(p, qid, "u@maytls.test")
    tap.ok(line and "status=sent" in line and
           re.search(r"tls=(trusted|verified|untrusted|anonymous) "
                     r"TLSv1\.[23] \S+$", line) and
           routes["maytls.test"].conns[0]["tls"],
           "level may (no policy entry): STARTTLS used, logged", line)
    # may and a handshake that fails: delivered again without TLS
    qid, _ = submit(p, ["u@maybroken.test"], b"plain after all\r\n")
    line = log_line(p, qid, "u@maybroken.test")
    cs = routes["maybroken.test"].conns
    tap.ok(line and "status=sent" in line and "tls=none" in line and
           len(cs) == 2 and "STARTTLS" in cs[0]["lines"] and
           "STARTTLS" not in cs[1]["lines"] and cs[1]["messages"],
           "level may, failed handshake: a second session without "
           "STARTTLS delivers", (line, [c["lines"] for c in cs]))

    # ---- hostile and failing servers ---------------------------------------
    for dom, what in (("endless.test", "endless multiline greeting"),
                      ("longline.test", "5000-byte reply line"),
                      ("garbage.test", "greeting that is not SMTP")):
        qid, _ = submit(p, ["u@" + dom], b"x\r\n")
        line = log_line(p, qid, "u@" + dom)
        tap.ok(line and "status=deferred" in line and
               "malformed reply from 127.0.0.1[127.0.0.1]" in line,
               "%s: deferred, malformed reply" % what, line)
    qid, _ = submit(p, ["u@greet5.test"], b"x\r\n")
    line = log_line(p, qid, "u@greet5.test")
    tap.ok(line and "status=bounced" in line and "refused to talk to me: "
           "554 5.7.1 go away" in line, "5xx greeting (only address): "
           "bounced", line)
    qid, _ = submit(p, ["u@dead.test"], b"x\r\n")
    line = log_line(p, qid, "u@dead.test")
    tap.ok(line and "relay=none" in line and "status=deferred (connect to "
           "127.0.0.1[127.0.0.1]:%d: Connection refused)" % dead_port in line,
           "connection refused: deferred", line)
    qid, _ = submit(p, ["u@loop.test"], b"x\r\n")
    line = log_line(p, qid, "u@loop.test")
    tap.ok(line and "dsn=5.4.6" in line and "loops back to myself" in line,
           "greeting with our own name: 5.4.6 mail loop", line)

    # ---- servers that hang: each stage's timeout, Postfix's words --------
    hang = {}
    for dom in ("hangmail.test", "hangrcpt.test", "hangdata.test",
                "hangdot.test"):
        hang[dom], _ = submit(p, ["u@" + dom], b"x\r\n")
    for dom, stage in (("hangmail.test", "sending MAIL FROM"),
                       ("hangrcpt.test", "sending RCPT TO"),
                       ("hangdata.test", "sending DATA command"),
                       ("hangdot.test", "sending end of data")):
        line = log_line(p, hang[dom], "u@" + dom)
        tap.ok(line and "status=deferred" in line and "dsn=4.4.2" in line
               and "conversation with 127.0.0.1[127.0.0.1] timed out while "
               "%s" % stage in line,
               "a server that hangs at %s: deferred when the stage's "
               "timeout ends, 4.4.2, \"timed out while %s\""
               % (stage.split(" ", 1)[1], stage), line)
    t = routes["hangdot.test"].conns
    tap.ok(t and t[0]["messages"] and t[0]["closed"],
           "hang at the final dot: the whole message was sent, then the "
           "agent gave up and closed", [c["lines"] for c in t])

    # ---- the agent survived all of it ------------------------------------
    tap.eq(len(re.findall(r"posta/smtp\[\d+\]: started", p.log())), 1,
           "one smtp process, never restarted")
    tap.ok(not re.search(r"posta/smtp\[\d+\]: (panic|fatal)", p.log()),
           "no panic or fatal in the log")


if __name__ == "__main__":
    run_main(main)
