#!/usr/bin/env python3
"""outbound - posta sends mail to the world: issue 5 end to end.

Runs in a lab of its own (tests/integration/netlab.py): a network
namespace with a DNS server (dnsmasq, 10.0.0.53) serving the test zone,
two posta instances A (a.test, 10.0.1.1:25/587) and B (b.test, two.test,
aonly.test, 10.0.2.1:25/587) and a private Postfix (pf.test 10.0.3.1:25
with STARTTLS, notls.test 10.0.3.2:25 without), all on port 25, one test
CA.  Root is needed (unshare --net); the test re-executes itself inside.

What works without the smtp delivery agent is checked first: the zone
answers, posta's smtpd on a lab address with STARTTLS verified against
the CA, AUTH on 587, Postfix relaying to posta A (8-bit body, a
2000-character line, a base64 attachment intact).  The scenarios that
need build/bin/smtp follow; while it is not built each reports
"not ok ... - smtp agent not built yet" (never a skip):
A -> B and B -> A through MX lookups with TLS verified, A -> Postfix,
MX fallback past a dead MX, a domain with only an A record, null MX ->
bounce 5.1.10, unknown user at B -> bounce with B's 550, the encrypt
policy towards a server without STARTTLS -> deferred 4.7.4, NXDOMAIN ->
bounce 5.1.2, a temporary failure (B down) then success after `posta
queue flush`, and the DNS server down -> deferred 4.4.3.
"""

import os
import re
import smtplib
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402

netlab.enter()

from netlab import ADDR, Lab, agent_built, check_content, content  # noqa
from postalib import run_main, write_file  # noqa: E402

POLICY_A = """a.test verify
b.test verify
two.test verify
pf.test verify
notls.test encrypt
"""
POLICY_B = "a.test verify\n[mx.a.test]:25 verify\n"
B_USERS = ("boss@dept.test:{PLAIN}bosspw\n"
           "fallback@two.test:{PLAIN}fallbackpw\n"
           "plain@aonly.test:{PLAIN}plainpw\n"
           "retry@b.test:{PLAIN}retrypw\n")


# How long a scenario waits for its outcome (the mail arrives, a bounce
# comes back, the delivery is deferred): 20 s, but only 5 s once an
# outcome never came, so that a broken agent fails the test in about a
# minute instead of several.  What comes with an outcome (log lines) is
# waited for LATER seconds.
OUTCOME = [20.0]
LATER = 3.0


def outcome(ok):
    if not ok:
        OUTCOME[0] = 5.0
    return ok


def log_lines(p, *needles):
    """The lines of p's log that contain every one of needles."""
    return [l for l in p.log().splitlines() if all(n in l for n in needles)]


def wait_log_lines(p, *needles, timeout=LATER):
    return netlab.wait_for(lambda: log_lines(p, *needles), timeout) or []


def submit(lab, p, user, password, rcpts, msg):
    """Submission on p's 587: STARTTLS (verified) and AUTH as user.  The
    refused recipients ({} when all were taken) or the error's text."""
    try:
        return netlab.send(p.listen, 587, user, rcpts, msg, lab.ca,
                           tls_name=p.hostname, login=(user, password),
                           mail_options=("BODY=8BITMIME",))
    except (OSError, smtplib.SMTPException) as e:
        return "%s: %s" % (type(e).__name__, e)


# ---- what works without the smtp agent ----------------------------------

def test_dns(tap, lab):
    st, ans = lab.dig("two.test", "MX")
    tap.eq((st, sorted(ans)), ("NOERROR", ["10 dead.two.test.",
                                           "20 mx.b.test."]),
           "DNS: two.test has two MX (10 dead.two.test, 20 mx.b.test)")
    st, ans = lab.dig("nullmx.test", "MX")
    tap.eq((st, ans), ("NOERROR", ["0 ."]), "DNS: nullmx.test has the "
           "null MX (0 .)")
    st, ans = lab.dig("aonly.test", "MX")
    tap.eq((st, ans), ("NOERROR", []), "DNS: aonly.test has no MX (NODATA)")
    st, ans = lab.dig("aonly.test", "A")
    tap.eq((st, ans), ("NOERROR", [ADDR["b"]]), "DNS: aonly.test A 10.0.2.1")
    st, ans = lab.dig("b.test", "MX")
    tap.eq((st, ans), ("NOERROR", ["10 mx.b.test."]), "DNS: b.test MX")
    st, ans = lab.dig("mx.b.test", "A")
    tap.eq((st, ans), ("NOERROR", [ADDR["b"]]), "DNS: mx.b.test A")
    st, ans = lab.dig("nosuchdomain.test", "MX")
    tap.eq(st, "NXDOMAIN", "DNS: an unknown name is NXDOMAIN")
    st, ans = lab.dig("1.2.0.10.in-addr.arpa", "PTR")
    tap.eq((st, ans), ("NOERROR", ["mx.b.test."]), "DNS: PTR of 10.0.2.1")
    try:
        got = socket.gethostbyname("mx.pf.test")
    except OSError as e:
        got = str(e)
    tap.eq(got, ADDR["pf"], "the system resolver in the lab asks the lab's "
           "DNS (resolv.conf of the namespace)")


def test_listen(tap, lab, a, b):
    for p in (a, b):
        greet = netlab.smtp_greeting(p.listen, 25)
        tap.ok(greet.startswith("220 " + p.hostname),
               "%s greets on %s:25 as %s" % (p.domain, p.listen, p.hostname),
               greet)
        try:
            with netlab.client(p.listen, 25) as s:
                s.ehlo()
                offered = s.has_extn("starttls")
                netlab.starttls(s, lab.ca, p.hostname)
                cert = s.sock.getpeercert()
                ok = offered and cert is not None
                why = cert
        except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
            ok, why = False, e
        tap.ok(ok, "%s:25 STARTTLS with a certificate for %s verified "
               "against the lab CA" % (p.listen, p.hostname), why)
    tap.ok(netlab.wait_for(lambda: log_lines(
        a, "connect from client.lab.test[10.0.5.5]")),
        "A names the client by its verified PTR: client.lab.test[10.0.5.5]",
        a.log()[-2000:])
    greet = netlab.smtp_greeting(a.listen, 25, source=netlab.ADDR["liar"])
    tap.ok(greet.startswith("220 ") and netlab.wait_for(lambda: log_lines(
        a, "connect from unknown[10.0.5.6]")),
        "a PTR name without a matching A record is not believed: "
        "unknown[10.0.5.6]", (greet, a.log()[-2000:]))
    tap.ok(netlab.wait_for(lambda: log_lines(
        a, "TLS connection established from", "[10.0.5.5]")),
        "A logs the TLS connection from the client 10.0.5.5", a.log())
    try:
        with netlab.client(a.listen, 587) as s:
            s.ehlo()
            netlab.starttls(s, lab.ca, a.hostname)
            code, _ = s.login("demo@a.test", "demo")
    except (OSError, smtplib.SMTPException) as e:
        code = str(e)
    tap.eq(code, 235, "submission on 10.0.1.1:587: AUTH after STARTTLS")
    try:
        s = socket.create_connection(("127.0.0.1", 25), 1)
        s.close()
        listening = True
    except OSError:
        listening = False
    tap.ok(not listening, "nothing listens on 127.0.0.1:25 (lab addresses "
           "only)")


def test_postfix_to_a(tap, lab, pf, a):
    before = len(a.mails("demo"))
    msg, attach = content("user@pf.test", "demo@a.test", "Postfix to A")
    try:
        refused = netlab.send(ADDR["pf"], 25, "user@pf.test",
                              ["demo@a.test"], msg, lab.ca,
                              tls_name="mx.pf.test",
                              mail_options=("BODY=8BITMIME",))
    except (OSError, smtplib.SMTPException) as e:
        refused = str(e)
    tap.eq(refused, {}, "Postfix (mx.pf.test, STARTTLS verified) takes mail "
           "for demo@a.test")
    files = a.wait_mails(before + 1, "demo", timeout=20)
    tap.eq(len(files), before + 1, "Postfix -> A: arrives in A's Maildir",
           pf.log()[-3000:])
    ok = pf.wait_log(r"Verified TLS connection established to "
                     r"\S*\[10\.0\.1\.1\]:25", 5)
    tap.ok(ok, "Postfix -> A: Postfix verified A's certificate (mx.a.test, "
           "lab CA) on 10.0.1.1:25", pf.log()[-3000:])
    ok = pf.wait_log(r"to=<demo@a\.test>, relay=\S*\[10\.0\.1\.1\]:25.*"
                     r"status=sent", 5)
    tap.ok(ok, "Postfix -> A: Postfix logs status=sent, relay "
           "[10.0.1.1]:25", pf.log()[-3000:])
    tap.ok(log_lines(a, "TLS connection established from", "[10.0.3.1]"),
           "Postfix -> A: A logs TLS from 10.0.3.1", a.log()[-3000:])
    if len(files) > before:
        raw = a.read_mail(files[-1])
        check_content(tap, raw, attach, "Postfix -> A")
        tap.ok(re.search(rb"Received: from mx\.pf\.test", raw),
               "Postfix -> A: Received names Postfix's HELO mx.pf.test",
               raw[:800])
    else:
        for what in ("content intact", "Received header"):
            tap.ok(False, "Postfix -> A: " + what + " (no mail)")


# ---- scenarios that need the smtp agent ---------------------------------

def sent_line(p, rcpt, relay):
    """Wait for p's delivery line of rcpt via relay with status=sent."""
    return wait_log_lines(p, "to=<%s>" % rcpt, "relay=%s" % relay,
                          "status=sent")


def posta_to_posta(tap, lab, src, dst, what):
    user, pw = "demo@" + src.domain, "demo"
    rcpt = "demo@" + dst.domain
    before = len(dst.mails("demo"))
    msg, attach = content(user, rcpt, what)
    refused = submit(lab, src, user, pw, [rcpt], msg)
    tap.eq(refused, {}, "%s: submission on 587 with AUTH accepted" % what)
    files = dst.wait_mails(before + 1, "demo", timeout=OUTCOME[0])
    outcome(len(files) > before)
    tap.eq(len(files), before + 1, "%s: arrives in %s's Maildir via the MX "
           "of %s" % (what, dst.domain, dst.domain), src.log()[-3000:])
    lines = sent_line(src, rcpt, "%s[%s]:25" % (dst.hostname, dst.listen))
    tap.ok(lines, "%s: delivery line to=<%s>, relay=%s[%s]:25, status=sent"
           % (what, rcpt, dst.hostname, dst.listen), src.log()[-3000:])
    tap.ok(lines and "tls=verified" in lines[-1], "%s: tls=verified on the "
           "delivery line" % what, lines)
    tap.ok(lines and re.search(r"dsn=2\.0\.0", lines[-1]) and
           re.search(r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+", lines[-1]),
           "%s: dsn=2.0.0 and delays=a/b/c/d" % what, lines)
    tap.ok(log_lines(dst, "TLS connection established from",
                     "[%s]" % src.listen),
           "%s: %s logs a TLS connection from %s" % (what, dst.domain,
                                                    src.listen),
           dst.log()[-3000:])
    if len(files) > before:
        raw = dst.read_mail(files[-1])
        check_content(tap, raw, attach, what)
        tap.ok(re.search(rb"Received: from " + src.hostname.encode(), raw),
               "%s: Received names the sender's EHLO %s" % (what,
                                                             src.hostname),
               raw[:800])
        # smtpd's peer name: the PTR of the address, confirmed by its A
        name = re.escape("%s (%s [%s])" % (src.hostname, src.hostname,
                                          src.listen)).encode()
        tap.ok(re.search(rb"Received: from " + name, raw),
               "%s: Received shows the client's verified name %s [%s]" % (
                   what, src.hostname, src.listen), raw[:800])
        tap.ok(log_lines(dst, "connect from %s[%s]" % (src.hostname,
                                                       src.listen)),
               "%s: %s logs connect from %s[%s] (reverse DNS)" % (
                   what, dst.domain, src.hostname, src.listen),
               dst.log()[-2000:])


def scn_a_to_b(tap, lab, a, b, pf):
    posta_to_posta(tap, lab, a, b, "A -> B")


def scn_b_to_a(tap, lab, a, b, pf):
    posta_to_posta(tap, lab, b, a, "B -> A")


def scn_a_to_postfix(tap, lab, a, b, pf):
    what = "A -> Postfix"
    rcpt = "user@pf.test"
    before = len(pf.mails(rcpt))
    msg, attach = content("demo@a.test", rcpt, what, seed=3)
    refused = submit(lab, a, "demo@a.test", "demo", [rcpt], msg)
    tap.eq(refused, {}, "%s: submission accepted" % what)
    files = pf.wait_mails(rcpt, before + 1, timeout=OUTCOME[0])
    outcome(len(files) > before)
    tap.eq(len(files), before + 1, "%s: arrives in Postfix's Maildir for "
           "user@pf.test" % what, a.log()[-3000:])
    lines = sent_line(a, rcpt, "mx.pf.test[10.0.3.1]:25")
    tap.ok(lines and "tls=verified" in lines[-1], "%s: A's delivery line: "
           "relay=mx.pf.test[10.0.3.1]:25, status=sent, tls=verified" %
           what, a.log()[-3000:])
    tap.ok(pf.wait_log(r"TLS connection established from "
                       r"\S*\[10\.0\.1\.1\]", LATER),
           "%s: Postfix logs TLS from 10.0.1.1" % what, pf.log()[-3000:])
    if len(files) > before:
        with open(files[-1], "rb") as f:
            check_content(tap, f.read(), attach, what)


def scn_mx_fallback(tap, lab, a, b, pf):
    what = "MX fallback"
    rcpt = "fallback@two.test"
    before = len(b.mails("fallback", "two.test"))
    refused = submit(lab, a, "demo@a.test", "demo", [rcpt],
                     b"Subject: fallback\r\n\r\nvia the second MX\r\n")
    tap.eq(refused, {}, "%s: submission accepted" % what)
    files = b.wait_mails(before + 1, "fallback", "two.test",
                         timeout=OUTCOME[0])
    outcome(len(files) > before)
    tap.eq(len(files), before + 1, "%s: two.test (10 dead MX, 20 mx.b.test) "
           "delivered to B" % what, a.log()[-3000:])
    tap.ok(sent_line(a, rcpt, "mx.b.test[10.0.2.1]:25"),
           "%s: A's delivery line names relay=mx.b.test[10.0.2.1]:25" % what,
           a.log()[-3000:])
    tap.ok(re.search(r"query\[A\] dead\.two\.test", lab.dns_log()),
           "%s: the dead MX (preference 10) was looked up first" % what)


def scn_a_only(tap, lab, a, b, pf):
    what = "no MX, A record"
    rcpt = "plain@aonly.test"
    before = len(b.mails("plain", "aonly.test"))
    refused = submit(lab, a, "demo@a.test", "demo", [rcpt],
                     b"Subject: aonly\r\n\r\nto the A record\r\n")
    tap.eq(refused, {}, "%s: submission accepted" % what)
    files = b.wait_mails(before + 1, "plain", "aonly.test",
                         timeout=OUTCOME[0])
    outcome(len(files) > before)
    tap.eq(len(files), before + 1, "%s: aonly.test (MX NODATA) delivered to "
           "its A record 10.0.2.1" % what, a.log()[-3000:])
    tap.ok(sent_line(a, rcpt, "aonly.test[10.0.2.1]:25"),
           "%s: delivery line relay=aonly.test[10.0.2.1]:25, status=sent" %
           what,
           a.log()[-3000:])


def bounce_for(a, before, rcpt):
    """The bounce in demo@a.test's Maildir that names rcpt (bytes)."""
    def find():
        for path in a.mails("demo")[before:]:
            raw = a.read_mail(path)
            if rcpt.encode() in raw and b"multipart/report" in raw:
                return raw
        return None
    return outcome(netlab.wait_for(find, OUTCOME[0]))


def scn_null_mx(tap, lab, a, b, pf):
    what = "null MX"
    rcpt = "someone@nullmx.test"
    before = len(a.mails("demo"))
    refused = submit(lab, a, "demo@a.test", "demo", [rcpt],
                     b"Subject: to a null MX\r\n\r\nmust bounce\r\n")
    tap.eq(refused, {}, "%s: submission accepted" % what)
    raw = bounce_for(a, before, rcpt)
    tap.ok(raw is not None, "%s: a bounce reaches the sender's Maildir" %
           what, a.log()[-3000:])
    text = (raw or b"").decode("utf-8", "replace")
    tap.ok(re.search(r"Status: 5\.1\.10", text), "%s: the DSN says Status: "
           "5.1.10" % what, text[:3000])
    tap.ok("nullMX" in text or "does not accept mail" in text,
           "%s: the DSN says the domain does not accept mail (nullMX)" %
           what, text[:3000])
    tap.ok(log_lines(a, "to=<%s>" % rcpt, "dsn=5.1.10"),
           "%s: A's log has to=<%s> ... dsn=5.1.10" % (what, rcpt),
           a.log()[-3000:])


def scn_nxdomain(tap, lab, a, b, pf):
    what = "NXDOMAIN"
    rcpt = "someone@nosuchdomain.test"
    before = len(a.mails("demo"))
    refused = submit(lab, a, "demo@a.test", "demo", [rcpt],
                     b"Subject: to nowhere\r\n\r\nmust bounce\r\n")
    tap.eq(refused, {}, "%s: submission accepted" % what)
    raw = bounce_for(a, before, rcpt)
    tap.ok(raw is not None, "%s: a bounce reaches the sender's Maildir" %
           what, a.log()[-3000:])
    text = (raw or b"").decode("utf-8", "replace")
    tap.ok(re.search(r"Status: 5\.1\.2\b", text), "%s: Status: 5.1.2" %
           what, text[:3000])
    tap.ok(log_lines(a, "to=<%s>" % rcpt, "dsn=5.1.2",
                     "Host or domain name not found"),
           "%s: A's log: dsn=5.1.2, Host or domain name not found" % what,
           a.log()[-3000:])


def scn_dns_down(tap, lab, a, b, pf):
    what = "DNS down"
    rcpt = "someone@later.test"	# not in the zone: NXDOMAIN once back
    lab.stop_dns()
    try:
        refused = submit(lab, a, "demo@a.test", "demo", [rcpt],
                         b"Subject: no DNS\r\n\r\nwait for it\r\n")
        tap.eq(refused, {}, "%s: submission accepted" % what)
        lines = outcome(wait_log_lines(a, "to=<%s>" % rcpt,
                                       "status=deferred",
                                       timeout=OUTCOME[0]))
        tap.ok(lines and "dsn=4.4.3" in lines[-1], "%s: deferred with "
               "dsn=4.4.3 (not bounced) while the DNS server is away" % what,
               a.log()[-3000:])
    finally:
        lab.start_dns()


def scn_unknown_user(tap, lab, a, b, pf):
    what = "unknown user at B"
    rcpt = "nosuchuser@b.test"
    before = len(a.mails("demo"))
    refused = submit(lab, a, "demo@a.test", "demo", [rcpt],
                     b"Subject: to nobody\r\n\r\nmust bounce\r\n")
    tap.eq(refused, {}, "%s: submission accepted by A" % what)
    raw = bounce_for(a, before, rcpt)
    tap.ok(raw is not None, "%s: a bounce reaches the sender's Maildir" %
           what, a.log()[-3000:])
    text = (raw or b"").decode("utf-8", "replace")
    tap.ok(re.search(r"Status: 5\.1\.1\b", text), "%s: Status: 5.1.1" % what,
           text[:3000])
    tap.ok(re.search(r"Diagnostic-Code: smtp; ?550 5\.1\.1", text),
           "%s: Diagnostic-Code carries B's 550 5.1.1 reply" % what,
           text[:3000])
    tap.ok("mx.b.test" in text, "%s: the bounce names mx.b.test" % what,
           text[:3000])


def scn_encrypt(tap, lab, a, b, pf):
    what = "encrypt policy"
    rcpt = "user@notls.test"
    refused = submit(lab, a, "demo@a.test", "demo", [rcpt],
                     b"Subject: needs TLS\r\n\r\nnot in the clear\r\n")
    tap.eq(refused, {}, "%s: submission accepted" % what)
    lines = outcome(wait_log_lines(a, "to=<%s>" % rcpt, "status=deferred",
                                   timeout=OUTCOME[0]))
    tap.ok(lines and "4.7.4" in lines[-1], "%s: deferred with dsn=4.7.4" %
           what, a.log()[-3000:])
    tap.ok(lines and "TLS is required, but was not offered by host "
           "mx.notls.test[10.0.3.2]" in lines[-1],
           "%s: reason: TLS is required, but was not offered by host "
           "mx.notls.test[10.0.3.2]" % what, lines)
    q = a.posta("queue", "list")
    tap.ok("TLS is required" in q.stdout and rcpt in q.stdout,
           "%s: mailq shows the reason" % what, q.stdout + q.stderr)
    tap.eq(len(pf.mails(rcpt)), 0, "%s: nothing reached the server without "
           "STARTTLS" % what)


def scn_tempfail(tap, lab, a, b, pf):
    what = "temporary failure"
    rcpt = "retry@b.test"
    before = len(b.mails("retry"))
    b.stop()
    try:
        refused = submit(lab, a, "demo@a.test", "demo", [rcpt],
                         b"Subject: retry me\r\n\r\nsecond time lucky\r\n")
        tap.eq(refused, {}, "%s: submission accepted while B is down" %
               what)
        lines = outcome(wait_log_lines(a, "to=<%s>" % rcpt,
                                       "status=deferred",
                                       timeout=OUTCOME[0]))
        tap.ok(lines and "Connection refused" in lines[-1],
               "%s: deferred: connect to mx.b.test[10.0.2.1]:25: Connection "
               "refused" % what, a.log()[-3000:])
        q = a.posta("queue", "list")
        tap.ok("mx.b.test[10.0.2.1]:25" in q.stdout and
               "Connection refused" in q.stdout, "%s: mailq shows the "
               "reason" % what, q.stdout + q.stderr)
    finally:
        b.start()
    r = a.posta("queue", "flush")
    tap.eq(r.returncode, 0, "%s: posta queue flush" % what, r.stderr)
    files = b.wait_mails(before + 1, "retry", timeout=OUTCOME[0])
    outcome(len(files) > before)
    tap.eq(len(files), before + 1, "%s: delivered to B once it is back" %
           what, a.log()[-3000:])
    tap.ok(netlab.wait_for(lambda: rcpt not in a.posta("queue",
                                                      "list").stdout,
                           LATER),
           "%s: the message left A's queue" % what,
           a.posta("queue", "list").stdout)


def scn_relay_domain(tap, lab, a, b, pf):
    # A is the MX in front of a department's own server (B): dept.test
    # is one of A's relay_domains, with its valid recipients in a table
    # and its mail sent to the inside host by transport_maps
    what = "relay domain dept.test"
    before = len(b.mails("boss", "dept.test"))
    try:
        refused = netlab.send(a.listen, 25, "someone@pf.test",
                              ["boss@dept.test", "stranger@dept.test"],
                              b"Subject: to the department\r\n\r\nhi\r\n",
                              lab.ca, tls_name=a.hostname)
    except (OSError, smtplib.SMTPException) as e:
        refused = str(e)
    tap.ok(isinstance(refused, dict) and list(refused) ==
           ["stranger@dept.test"] and refused["stranger@dept.test"][0] ==
           550, "%s: A takes the listed recipient and refuses the other "
           "with 550" % what, refused)
    files = b.wait_mails(before + 1, "boss", "dept.test",
                         timeout=OUTCOME[0])
    outcome(len(files) > before)
    tap.eq(len(files), before + 1, "%s: forwarded to the inside host (B) "
           "and delivered there" % what, a.log()[-3000:])
    tap.ok(sent_line(a, "boss@dept.test", "mx.b.test[10.0.2.1]:25"),
           "%s: A's line: relay=mx.b.test[10.0.2.1]:25 (transport_maps "
           "smtp:[mx.b.test]), status=sent" % what, a.log()[-3000:])


def scn_relayhost(tap, lab, a, b, pf):
    # B sends everything that is not its own through relayhost
    # [mx.a.test]:25; A, the smart host (B is in its mynetworks), passes
    # it on by MX
    what = "relayhost"
    rcpt = "user@pf.test"
    before = len(pf.mails(rcpt))
    refused = submit(lab, b, "demo@b.test", "demo", [rcpt],
                     b"Subject: via the smart host\r\n\r\nhello\r\n")
    tap.eq(refused, {}, "%s: submission at B accepted" % what)
    files = pf.wait_mails(rcpt, before + 1, timeout=OUTCOME[0])
    outcome(len(files) > before)
    tap.eq(len(files), before + 1, "%s: B -> A -> Postfix arrives" % what,
           b.log()[-3000:])
    lines = sent_line(b, rcpt, "mx.a.test[10.0.1.1]:25")
    tap.ok(lines and "tls=verified" in lines[-1], "%s: B's line: "
           "relay=mx.a.test[10.0.1.1]:25, not pf.test's MX; TLS verified"
           % what, b.log()[-3000:])
    tap.ok(sent_line(a, rcpt, "mx.pf.test[10.0.3.1]:25"),
           "%s: A's line: relay=mx.pf.test[10.0.3.1]:25" % what,
           a.log()[-3000:])


AGENT_SCENARIOS = [
    ("A -> B via MX lookup, STARTTLS verified, content intact", scn_a_to_b),
    ("B -> A via MX lookup, STARTTLS verified, content intact", scn_b_to_a),
    ("A -> Postfix (pf.test), TLS, content intact", scn_a_to_postfix),
    ("MX fallback: dead MX, then mx.b.test", scn_mx_fallback),
    ("domain without MX delivered to its A record", scn_a_only),
    ("null MX -> bounce 5.1.10 in the sender's Maildir", scn_null_mx),
    ("NXDOMAIN -> bounce 5.1.2", scn_nxdomain),
    ("unknown user at B -> bounce with B's 550", scn_unknown_user),
    ("encrypt policy, server without STARTTLS -> deferred 4.7.4",
     scn_encrypt),
    ("temporary failure (B down), then success after posta queue flush",
     scn_tempfail),
    ("relay domain forwarded to the inside host", scn_relay_domain),
    ("relayhost used for other domains", scn_relayhost),
    ("DNS server down -> deferred 4.4.3", scn_dns_down),
]


def main(tap):
    lab = Lab()
    a = b = pf = None
    not_built = 0
    try:
        lab.start_dns()
        test_dns(tap, lab)
        a = lab.posta("a", "a.test", tls_policy=POLICY_A,
                      posta_conf="dns_timeout = 3s\n"
                      "mynetworks = 127.0.0.0/8, %s/32\n"
                      "relay_domains = dept.test\n" % ADDR["b"] +
                      "relay_recipient_maps = "
                      "file:$config_directory/relay_recipients\n",
                      qmgr_conf="transport_maps = "
                      "file:$config_directory/transport\n")
        write_file(os.path.join(a.etc, "relay_recipients"),
                   "boss@dept.test ok\n")
        write_file(os.path.join(a.etc, "transport"),
                   "dept.test smtp:[mx.b.test]\n")
        b = lab.posta("b", "b.test",
                      domains=("two.test", "aonly.test", "dept.test"),
                      users=B_USERS, tls_policy=POLICY_B,
                      posta_conf="relayhost = [mx.a.test]:25\n")
        pf = lab.postfix()
        a.start()
        b.start()
        pf.start()
        test_listen(tap, lab, a, b)
        test_postfix_to_a(tap, lab, pf, a)
        for name, fn in AGENT_SCENARIOS:
            if not agent_built():
                tap.ok(False, "%s - smtp agent not built yet" % name)
                not_built += 1
                continue
            fn(tap, lab, a, b, pf)
    finally:
        try:
            if tap.failed > not_built:
                for label, inst in (("A", a), ("B", b), ("Postfix", pf)):
                    if inst is not None:
                        print("# %s log tail:\n# " % label + "\n# ".join(
                            inst.log().splitlines()[-25:]), flush=True)
        except OSError:
            pass
        finally:
            lab.cleanup()


if __name__ == "__main__":
    run_main(main)
