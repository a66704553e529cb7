#!/usr/bin/env python3
"""e2e - the whole MTA from the outside: smtpd -> queue -> qmgr -> local.

Real clients only (Python smtplib, swaks, sendmail from a shell script);
we look at what a user and an admin see: reply codes, Maildir files and
their headers, bounces in the sender's mailbox, mailq output, log lines.
"""

import email
import email.policy
import os
import re
import smtplib
import ssl
import subprocess
import time

from postalib import BIN, Posta, run_main, wait_until

USERS = "alice@example.test:{PLAIN}alicepw\nbob@example.test:{PLAIN}bobpw\n"
ALIASES = """team: demo@example.test, alice@example.test
everyone: team, bob@example.test
loop1: loop2
loop2: loop1
mixed: demo@example.test, ghost@example.test
"""


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def tls_ctx(p):
    ctx = ssl.create_default_context(cafile=os.path.join(p.certs, "ca.pem"))
    return ctx


def test_delivery(tap, p):
    body = "Hello demo,\r\n\r\n.leading dot line\r\nUTF-8: caf\u00e9\r\n"
    msg = ("From: sender@example.org\r\nTo: demo@example.test\r\n"
           "Subject: e2e delivery\r\nMessage-ID: <e2e-1@example.org>\r\n"
           "\r\n" + body)
    with smtplib.SMTP("127.0.0.1", p.ports["smtp"], timeout=10) as s:
        s.ehlo("client.example.org")
        tap.ok(s.has_extn("pipelining") and s.has_extn("8bitmime") and
               s.has_extn("enhancedstatuscodes") and s.has_extn("size"),
               "EHLO advertises PIPELINING 8BITMIME ENHANCEDSTATUSCODES SIZE",
               s.esmtp_features)
        code, resp = s.mail("sender@example.org")
        tap.eq(code, 250, "MAIL FROM accepted")
        code, resp = s.rcpt("demo@example.test")
        tap.eq(code, 250, "RCPT TO a local user accepted")
        code, resp = s.data(msg.encode("utf-8"))
        tap.eq(code, 250, "DATA accepted")
        m = re.search(rb"queued as ([0-9A-Z]+)", resp)
        tap.ok(m is not None and resp.startswith(b"2.0.0"),
               "250 2.0.0 Ok: queued as ID", resp)
    qid = m.group(1).decode() if m else "?"
    files = p.wait_mails(1)
    tap.eq(len(files), 1, "one file in demo's Maildir/new")
    if not files:
        tap.ok(False, "delivery log", p.log())
        return
    raw = p.read_mail(files[0])
    tap.ok(b"\r\n" not in raw, "Maildir file has LF line endings")
    m = parse(raw)
    tap.eq(m["Return-Path"], "<sender@example.org>", "Return-Path header")
    tap.eq(m["Delivered-To"], "demo@example.test", "Delivered-To header")
    rec = m.get_all("Received") or []
    tap.ok(rec and "mx.example.test" in rec[0] and qid in rec[0],
           "Received header names our host and the queue ID", rec)
    tap.eq(m["Subject"], "e2e delivery", "Subject kept")
    tap.ok(raw.endswith(body.replace("\r\n", "\n").encode("utf-8")),
           "body byte-exact (dot unstuffed, 8-bit kept)", raw[-120:])
    sz = re.search(r",S=(\d+)", files[0])
    tap.ok(sz and int(sz.group(1)) == len(raw), "Maildir name has ,S=size")
    log = p.log()
    tap.ok(re.search(qid + r": to=<demo@example.test>.*status=sent", log),
           "local logs to=<demo@example.test> ... status=sent with the ID")
    tap.ok(wait_until(lambda: qid + ": removed" in p.log(), 10),
           "qmgr removes the delivered message", p.log())


def test_swaks(tap, p):
    before = len(p.mails("alice"))
    r = subprocess.run(["swaks", "--server", "127.0.0.1",
                        "--port", str(p.ports["smtp"]),
                        "--from", "someone@example.org",
                        "--to", "alice@example.test",
                        "--header", "Subject: via swaks"],
                       capture_output=True, text=True, timeout=30)
    tap.ok(r.returncode == 0 and "250 2.0.0" in r.stdout,
           "swaks delivers to alice", r.stdout + r.stderr)
    files = p.wait_mails(before + 1, "alice")
    tap.eq(len(files), before + 1, "alice got the swaks message")


def test_aliases(tap, p):
    before = {u: len(p.mails(u)) for u in ("demo", "alice", "bob")}
    with smtplib.SMTP("127.0.0.1", p.ports["smtp"], timeout=10) as s:
        s.sendmail("x@example.org", ["everyone@example.test"],
                   b"Subject: to everyone\r\n\r\nlist test\r\n")
    for u in ("demo", "alice", "bob"):
        files = p.wait_mails(before[u] + 1, u)
        tap.eq(len(files), before[u] + 1,
               "list 'everyone' (nested alias 'team') reached %s" % u)
    files = p.mails("alice")
    m = parse(p.read_mail(files[-1]))
    tap.eq(m["Delivered-To"], "alice@example.test",
           "expanded recipient in Delivered-To")


def test_unknown_user(tap, p):
    with smtplib.SMTP("127.0.0.1", p.ports["smtp"], timeout=10) as s:
        s.ehlo("client.example.org")
        s.mail("x@example.org")
        code, resp = s.rcpt("nosuchuser@example.test")
        tap.eq(code, 550, "unknown local user refused at RCPT with 550")
        tap.ok(resp.startswith(b"5.1.1"), "with 5.1.1", resp)


def test_relay(tap, p, stranger):
    # p's MX service does not trust 127.0.0.1 (mynetworks elsewhere)
    with smtplib.SMTP("127.0.0.1", stranger, timeout=10) as s:
        s.ehlo("client.example.org")
        s.mail("x@example.org")
        code, resp = s.rcpt("someone@elsewhere.example")
        tap.eq(code, 554, "relay for a stranger refused with 554")
        tap.ok(resp.startswith(b"5.7.1") and b"Relay access denied" in resp,
               "5.7.1 Relay access denied", resp)
        code, resp = s.rcpt("demo@example.test")
        tap.eq(code, 250, "a stranger may still mail our users")
    with smtplib.SMTP("127.0.0.1", p.ports["smtp"], timeout=10) as s:
        s.ehlo("client.example.org")
        s.mail("x@example.org")
        code, resp = s.rcpt("someone@elsewhere.example")
        tap.eq(code, 250, "relay allowed for mynetworks")
        s.rset()
    with smtplib.SMTP("127.0.0.1", p.ports["submission"], timeout=10) as s:
        s.ehlo("client.example.org")
        tap.ok(not s.has_extn("auth"), "no AUTH before STARTTLS on 587",
               s.esmtp_features)
        s.starttls(context=tls_ctx(p))
        s.ehlo("client.example.org")
        tap.ok("PLAIN" in s.esmtp_features.get("auth", "").upper(),
               "AUTH PLAIN offered after STARTTLS", s.esmtp_features)
        try:
            s.login("demo@example.test", "wrong")
            tap.ok(False, "wrong password refused")
        except smtplib.SMTPAuthenticationError as e:
            tap.eq(e.smtp_code, 535, "wrong password refused with 535")
        s.login("demo@example.test", "demo")
        s.mail("demo@example.test")
        code, resp = s.rcpt("someone@elsewhere.example")
        tap.eq(code, 250, "relay allowed after AUTH on submission")
    ctx = tls_ctx(p)
    with smtplib.SMTP_SSL("127.0.0.1", p.ports["submissions"], timeout=10,
                          context=ctx) as s:
        s.ehlo("client.example.org")
        s.login("alice@example.test", "alicepw")
        code, _ = s.mail("alice@example.test")
        tap.eq(code, 250, "submissions (465, implicit TLS) with AUTH LOGIN"
               " or PLAIN works")


def test_bounce(tap, p):
    before = len(p.mails("demo"))
    before_admin = len(p.mails("bob"))
    with smtplib.SMTP("127.0.0.1", p.ports["smtp"], timeout=10) as s:
        s.sendmail("demo@example.test", ["loop1@example.test"],
                   b"Subject: into a loop\r\n\r\nthis must come back\r\n")
    files = p.wait_mails(before + 1, "demo", timeout=30)
    tap.eq(len(files), before + 1, "a bounce reached the sender's mailbox",
           p.log())
    if len(files) <= before:
        return
    m = parse(p.read_mail(files[-1]))
    tap.eq(m.get_content_type(), "multipart/report", "bounce is a "
           "multipart/report")
    tap.eq(m["Return-Path"], "<>", "bounce has the null sender")
    parts = [part.get_content_type() for part in m.iter_parts()]
    tap.ok("message/delivery-status" in parts, "with a delivery-status part",
           parts)
    raw = p.read_mail(files[-1]).decode("utf-8", "replace")
    tap.ok("Action: failed" in raw and "Status: 5." in raw,
           "Action: failed, Status: 5.x.x", raw[:2000])
    tap.ok("this must come back" in raw, "original message included")
    # bounce_notice_recipient (bob) gets a copy with the headers only
    files = p.wait_mails(before_admin + 1, "bob", timeout=30)
    tap.eq(len(files), before_admin + 1, "bounce_notice_recipient got a "
           "copy of the bounce", p.log())
    if len(files) > before_admin:
        raw = p.read_mail(files[-1]).decode("utf-8", "replace")
        m = parse(p.read_mail(files[-1]))
        parts = [part.get_content_type() for part in m.iter_parts()]
        tap.ok("text/rfc822-headers" in parts and
               "Subject: into a loop" in raw and
               "this must come back" not in raw,
               "the copy carries the original's headers, not its body",
               parts)


def test_list_member_bounce(tap, p):
    """A list member that does not exist must not vanish silently."""
    before_demo = len(p.mails("demo"))
    before_alice = len(p.mails("alice"))
    with smtplib.SMTP("127.0.0.1", p.ports["smtp"], timeout=10) as s:
        s.sendmail("alice@example.test", ["mixed@example.test"],
                   b"Subject: to a list with a ghost\r\n\r\nhello list\r\n")
    tap.eq(len(p.wait_mails(before_demo + 1, "demo")), before_demo + 1,
           "the good list member got the message")
    files = p.wait_mails(before_alice + 1, "alice", timeout=30)
    tap.eq(len(files), before_alice + 1, "the sender got a notice about "
           "the failed member", p.log())
    if len(files) > before_alice:
        raw = p.read_mail(files[-1]).decode("utf-8", "replace")
        tap.ok("multipart/report" in raw and
               "Final-Recipient: rfc822; ghost@example.test" in raw and
               "Action: failed" in raw and
               "Original-Recipient: rfc822; mixed@example.test" in raw and
               "demo@example.test" not in raw.split("message/rfc822")[0]
               .split("delivery-status")[-1],
               "it names the ghost member (and not the delivered one) with "
               "the list as Original-Recipient", raw[:3000])


def test_queue_tools(tap, p):
    # mail to a remote domain waits: no smtp transport yet (issue 5)
    with smtplib.SMTP("127.0.0.1", p.ports["smtp"], timeout=10) as s:
        resp = s.sendmail("demo@example.test", ["far@remote.example"],
                          b"Subject: deferred\r\n\r\nwaiting\r\n")
    tap.ok(resp == {}, "remote recipient accepted from mynetworks")
    ok = wait_until(lambda: p.queue_ids("deferred"), 20)
    tap.ok(ok, "message lands in deferred/", p.log())
    ids = p.queue_ids("deferred")
    if not ids:
        return
    qid = ids[0]
    r = subprocess.run([os.path.join(BIN, "mailq")],
                       env=dict(os.environ, POSTA_CONFIG_DIR=p.etc),
                       capture_output=True, text=True, timeout=30)
    tap.ok(qid in r.stdout and "far@remote.example" in r.stdout and
           "demo@example.test" in r.stdout, "mailq lists ID, sender, "
           "recipient", r.stdout + r.stderr)
    tap.ok("(" in r.stdout and ")" in r.stdout, "mailq shows the deferral "
           "reason", r.stdout)
    r = p.posta("queue", "hold", qid)
    tap.eq(r.returncode, 0, "posta queue hold")
    tap.ok(wait_until(lambda: qid in p.queue_ids("hold"), 10),
           "held message is in hold/")
    r = p.posta("queue", "list")
    tap.ok(re.search(qid + r"!", r.stdout), "held message marked '!'",
           r.stdout)
    r = p.posta("queue", "release", qid)
    tap.eq(r.returncode, 0, "posta queue release")
    tap.ok(wait_until(lambda: qid not in p.queue_ids("hold"), 10),
           "released message leaves hold/")
    r = p.posta("queue", "delete", qid)
    tap.eq(r.returncode, 0, "posta queue delete", r.stderr)
    tap.ok(wait_until(lambda: not any(qid in p.queue_ids(d) for d in
                                      ("incoming", "active", "deferred",
                                       "hold")), 10),
           "deleted message is gone")
    r = p.posta("queue", "delete", "0123456789AB")
    tap.ok(r.returncode != 0, "deleting an unknown ID fails")


def test_sendmail(tap, p):
    before = len(p.mails("bob"))
    script = os.path.join(p.tmp, "cron.sh")
    with open(script, "w") as f:
        f.write("""#!/bin/sh
{bin}/sendmail -t -f cron@example.test <<'EOF'
To: bob@example.test
Bcc: alice@example.test
Subject: from cron

nightly report
.
EOF
""".format(bin=BIN))
    os.chmod(script, 0o755)
    r = subprocess.run([script], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, POSTA_CONFIG_DIR=p.etc))
    tap.eq(r.returncode, 0, "sendmail -t from a script exits 0",
           r.stdout + r.stderr)
    files = p.wait_mails(before + 1, "bob")
    tap.eq(len(files), before + 1, "bob got the sendmail -t message")
    if len(files) > before:
        m = parse(p.read_mail(files[-1]))
        tap.eq(m["Return-Path"], "<cron@example.test>", "sendmail -f sets "
               "the envelope sender")
        tap.ok(m["Bcc"] is None, "Bcc removed")


def main(tap):
    p = Posta(posta_conf="bounce_notice_recipient = bob@example.test\n",
              program_conf={"qmgr": "minimal_backoff_time = 2s\n"
                            "maximal_backoff_time = 4s\n"
                            "queue_run_delay = 1s\n"},
              users=USERS, aliases=ALIASES,
              master_extra="mx inet 127.0.0.1:{mx} 1 smtpd "
              "-o mynetworks=192.0.2.0/24\n", extra_ports=("mx",))
    try:
        p.start()
        test_delivery(tap, p)
        test_swaks(tap, p)
        test_aliases(tap, p)
        test_unknown_user(tap, p)
        test_relay(tap, p, p.ports["mx"])
        test_bounce(tap, p)
        test_list_member_bounce(tap, p)
        test_queue_tools(tap, p)
        test_sendmail(tap, p)
    finally:
        p.finish(tap)


if __name__ == "__main__":
    run_main(main)
