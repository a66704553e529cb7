#!/usr/bin/env python3
"""smtpd.py - smtpd end to end, under the real master.

Starts build/bin/master in the foreground with a temporary config dir and
queue; services on ports chosen at run time: an MX (STARTTLS offered), an
MX whose mynetworks holds 127.0.0.0/8, submission (STARTTLS then AUTH
required), submissions (implicit TLS), an MX with AUTH but not over
plaintext, one with tiny limits for the hostile cases, one that trusts a
client certificate fingerprint, and the unix-socket submit service.
Clients: Python's smtplib, swaks, and raw sockets where the bytes matter
(pipelining, BDAT, STARTTLS injection, bare LF).  qmgr does not exist yet:
the test reads incoming/ with tests/helpers/qdump.  Prints TAP.
"""
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from postalib import BIN, BUILD, MKCERTS, Tap, free_ports, write_file

QDUMP = os.path.join(BUILD, 'tests', 'helpers', 'qdump')

tap = Tap(diag_lines=20)
ok = tap.ok


T = tempfile.mkdtemp(prefix='posta-smtpd.')
os.chmod(T, 0o755)
ETC = os.path.join(T, 'etc')
TLS = os.path.join(T, 'tls')
Q = os.path.join(T, 'queue')
INCOMING = os.path.join(Q, 'incoming')
LOG = os.path.join(T, 'log')
os.makedirs(ETC)
os.chmod(ETC, 0o755)
master = None


def cleanup():
    if master is not None and master.poll() is None:
        master.terminate()
        try:
            master.wait(10)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
    shutil.rmtree(T, ignore_errors=True)


def log_text():
    try:
        with open(LOG, errors='replace') as f:
            return f.read()
    except OSError:
        return ''


def wait_log(pattern, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, log_text(), re.M)
        if m:
            return m
        time.sleep(0.05)
    return None


def queue_files(tmp=False):
    try:
        names = [n for n in os.listdir(INCOMING) if n[0] != "."]
    except OSError:
        return set()
    return set(x for x in names if x.endswith('.tmp') == tmp)


def qdump(qid):
    p = subprocess.run([QDUMP, os.path.join(INCOMING, qid)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        return None, p.stderr
    head, _, content = p.stdout.partition(b'\n--\n')
    env = {'rcpt': []}
    for line in head.decode().splitlines():
        k, _, v = line.partition('=')
        if k == 'rcpt':
            env['rcpt'].append(v)
        else:
            env[k] = v
    return env, content


class Raw:
    """A raw SMTP client: bytes out, reply lines in."""

    def __init__(self, port=None, path=None, timeout=5.0):
        if path is not None:
            self.s = socket.socket(socket.AF_UNIX)
            self.s.settimeout(timeout)
            self.s.connect(path)
        else:
            self.s = socket.create_connection(('127.0.0.1', port),
                                              timeout=timeout)
        self.buf = b''
        self.closed = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def line(self, timeout=None):
        if timeout is not None:
            self.s.settimeout(timeout)
        while b'\n' not in self.buf:
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return None
            except (ConnectionResetError, ssl.SSLError):
                d = b''
            if not d:
                self.closed = True
                return None
            self.buf += d
        line, _, self.buf = self.buf.partition(b'\n')
        return line.rstrip(b'\r').decode(errors='replace')

    def reply(self, timeout=None):
        """one whole (maybe multi-line) reply as a list of lines"""
        lines = []
        while True:
            ln = self.line(timeout)
            if ln is None:
                return lines or None
            lines.append(ln)
            if len(ln) < 4 or ln[3] != '-':
                return lines

    def cmd(self, text, timeout=None):
        self.send(text + '\r\n')
        r = self.reply(timeout)
        return r[-1] if r else None

    def eof(self, timeout=3.0):
        """True when the server closes (after any pending bytes)"""
        self.s.settimeout(timeout)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
                self.buf += d
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError, OSError):
            return True

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


ENHANCED = re.compile(r'^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3} ')
all_replies = []


def coded(r):
    """remember a reply for the enhanced-code check at the end"""
    if r is not None:
        all_replies.append(r)
    return r


def start():
    global master
    p = free_ports(9)
    global P_MX, P_NET, P_SUB, P_SUBS, P_HOST, P_PAUTH, P_CERT, P_SMALL
    global P_RESTR
    (P_MX, P_NET, P_SUB, P_SUBS, P_HOST, P_PAUTH, P_CERT, P_SMALL,
     P_RESTR) = p
    subprocess.run(['sh', MKCERTS, TLS], check=True)
    fp = subprocess.run(['openssl', 'x509', '-in',
                         os.path.join(TLS, 'client.pem'), '-noout',
                         '-fingerprint', '-sha256'],
                        stdout=subprocess.PIPE, check=True).stdout.decode()
    fp = fp.strip().split('=', 1)[1]
    write_file(os.path.join(ETC, 'fingerprints'), '%s client1\n' % fp)
    write_file(os.path.join(ETC, 'users'),
          'demo@example.test:{PLAIN}demo\n'
          'other@virtual.test:{PLAIN}secret\n')
    write_file(os.path.join(ETC, 'aliases'),
          'postmaster: demo@example.test\n'
          'info@example.test: demo@example.test\n')
    write_file(os.path.join(ETC, 'relay_recipients'), 'ok@relay.test yes\n')
    write_file(os.path.join(ETC, 'posta.conf'), '''\
queue_directory = {q}
daemon_directory = {bin}
maillog_file = {log}
myhostname = mx.example.test
mydomain = example.test
mydestination = $mydomain, localhost
virtual_mailbox_domains = virtual.test
relay_domains = relay.test
relay_recipient_maps = file:{etc}/relay_recipients
mynetworks = 192.0.2.0/24, [2001:db8::]/32
user_database = file:{etc}/users
alias_maps = file:{etc}/aliases
message_size_limit = 1m
tls_cert_file = {tls}/server.pem
tls_key_file = {tls}/server.key
tls_ca_file = {tls}/ca.pem
master_stop_timeout = 2s
'''.format(q=Q, bin=BIN, log=LOG, etc=ETC, tls=TLS))
    write_file(os.path.join(ETC, 'smtpd.conf'), 'smtpd_auth_failure_delay = 1s\n')
    write_file(os.path.join(ETC, 'master.conf'), '''\
smtp        inet 127.0.0.1:{mx}   1 smtpd -o smtpd_tls_security_level=may
mynet       inet 127.0.0.1:{net}  1 smtpd -o mynetworks=127.0.0.0/8
submission  inet 127.0.0.1:{sub}  1 smtpd -o smtpd_tls_security_level=encrypt
    -o smtpd_sasl_auth_enable=yes
    -o smtpd_client_restrictions=permit_sasl_authenticated,reject
submissions inet 127.0.0.1:{subs} 1 smtpd -o smtpd_tls_wrappermode=yes
    -o smtpd_sasl_auth_enable=yes
    -o smtpd_client_restrictions=permit_sasl_authenticated,reject
hostile     inet 127.0.0.1:{host} 1 smtpd -o smtpd_timeout=2s
    -o smtpd_recipient_limit=3 -o smtpd_soft_error_limit=3
    -o smtpd_hard_error_limit=6 -o smtpd_error_sleep_time=1s
    -o message_size_limit=4096
plainauth   inet 127.0.0.1:{pauth} 1 smtpd -o smtpd_sasl_auth_enable=yes
certs       inet 127.0.0.1:{cert} 1 smtpd -o smtpd_tls_security_level=may
    -o tls_verify_client=optional
    -o smtpd_tls_fingerprint_maps=file:{etc}/fingerprints
small       inet 127.0.0.1:{small} 1 smtpd -o smtpd_client_connection_limit=2
restricted  inet 127.0.0.1:{restr} 1 smtpd -o smtpd_restricted_networks=127.0.0.0/8
    -o smtpd_restricted_domains=alarm.test,.ops.test
submit      unix public/submit 1 smtpd -o smtpd_local_submit=yes
'''.format(mx=P_MX, net=P_NET, sub=P_SUB, subs=P_SUBS, host=P_HOST,
           pauth=P_PAUTH, cert=P_CERT, small=P_SMALL, restr=P_RESTR, etc=ETC))
    out = open(os.path.join(T, 'master.out'), 'w')
    master = subprocess.Popen([os.path.join(BIN, 'master'), '-c', ETC, '-f'],
                              stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    while time.time() < deadline:
        if master.poll() is not None:
            break
        try:
            up = 0
            for port in p:
                r = Raw(port)
                if r.s.getsockname():
                    up += 1
                r.close()
            if up == len(p) and os.path.exists(
                    os.path.join(Q, 'public', 'submit')) and \
                    len(re.findall(r'posta/smtpd\[\d+\]: \S+: ready',
                                   log_text())) >= 9:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def tls_ctx():
    c = ssl.create_default_context(cafile=os.path.join(TLS, 'ca.pem'))
    return c


def send_plain(port, rcpt, body=None, sender='alice@sender.test'):
    """one message with smtplib; (code, text) of the DATA reply"""
    s = smtplib.SMTP('127.0.0.1', port, local_hostname='client.test',
                     timeout=10)
    s.ehlo()
    code, msg = s.mail(sender)
    if code != 250:
        s.quit()
        return code, msg.decode()
    code, msg = s.rcpt(rcpt)
    if code != 250:
        s.quit()
        return code, msg.decode()
    code, msg = s.data(body or 'Subject: hello\r\n\r\nHi there.\r\n')
    s.quit()
    return code, msg.decode()


def queued_id(text):
    m = re.match(r'2\.0\.0 Ok: queued as ([0-9A-Z]{12})$', text)
    return m.group(1) if m else None

STRACE_LINE = re.compile(r'^(\d+) +(\d+):(\d+):(\d+\.\d+) (.*)$')


def strace_calls(path):
    """[(name, args_and_result, entry, exit)] from strace -f -tt -T"""
    calls, open_ = [], {}
    with open(path, errors='replace') as f:
        for line in f:
            m = STRACE_LINE.match(line.rstrip('\n'))
            if not m:
                continue
            pid, rest = m.group(1), m.group(5)
            t = (int(m.group(2)) * 3600 + int(m.group(3)) * 60 +
                 float(m.group(4)))
            r = re.match(r'<\.\.\. (\w+) resumed>(.*)$', rest)
            if r:
                name, start, head = open_.pop(pid, (r.group(1), t, ''))
                calls.append((name, head + r.group(2), start, t))
                continue
            c = re.match(r'(\w+)\((.*)$', rest)
            if not c:
                continue
            if rest.endswith('<unfinished ...>'):
                open_[pid] = (c.group(1), t,
                              c.group(2)[:-len('<unfinished ...>')].rstrip())
                continue
            d = re.search(r'<([\d.]+)>$', rest)
            calls.append((c.group(1), c.group(2), t,
                          t + (float(d.group(1)) if d else 0.0)))
    return calls


def test_durable_order():
    """the order of the durable steps, seen by strace on the smtpd that
    serves the MX: the file's name ID.tmp, then an fsync of incoming/
    that starts after it; the file's fdatasync before its rename to ID;
    the 250 only after both syncs are done"""
    pids = re.findall(r'posta/smtpd\[(\d+)\]: smtp: ready', log_text())
    strace = shutil.which('strace')
    if not ok(pids and strace, 'durable order: strace and the MX smtpd '
              '(pid %s) are there' % (pids[-1] if pids else None)):
        return
    out = os.path.join(T, 'strace.out')
    st = subprocess.Popen([strace, '-f', '-tt', '-T', '-s', '200', '-o', out,
                           '-e', 'trace=openat,renameat2,rename,fsync,'
                           'fdatasync,sendto,write', '-p', pids[-1]],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # strace says "Process N attached" (and its threads) when ready
        time.sleep(1.0)
        code, text = send_plain(P_MX, 'demo@example.test')
        qid = queued_id(text)
        time.sleep(0.3)
    finally:
        st.terminate()
        st.wait(10)
    ok(code == 250 and qid, 'durable order: the message is queued',
       (code, text))
    if not qid:
        return
    calls = strace_calls(out)
    tmp = 'incoming/%s.tmp' % qid
    named = [c for c in calls if c[0] in ('renameat2', 'openat') and
             tmp in c[1] and ('renameat2' == c[0] or 'O_CREAT' in c[1])]
    opened = [c for c in calls if c[0] == 'openat' and tmp in c[1] and
              re.search(r'= (\d+)', c[1])]
    fd = re.search(r'= (\d+)\s*(<[\d.]+>)?$', opened[-1][1]).group(1) \
        if opened else None
    fsync_file = [c for c in calls if c[0] == 'fdatasync' and
                  fd is not None and c[1].startswith(fd + ')')]
    commit = [c for c in calls if c[0] == 'rename' and tmp in c[1]]
    reply = [c for c in calls if c[0] in ('sendto', 'write') and
             ('250 2.0.0 Ok: queued as %s' % qid) in c[1]]
    if not ok(named and fsync_file and commit and reply,
              'durable order: strace saw the name, the fdatasync, the '
              'rename and the 250',
              '\n'.join('%s(%s' % (c[0], c[1][:120]) for c in calls)[:3000]):
        return
    t_named, t_synced = named[0][3], fsync_file[0][3]
    t_commit, t_250 = commit[0][2], reply[0][2]
    dir_syncs = [c for c in calls if c[0] == 'fsync' and
                 c[2] > t_named and c[3] < t_250]
    ok(t_synced < t_commit,
       'durable order: the file is fdatasynced before it is renamed to ID')
    ok(dir_syncs, 'durable order: an fsync of incoming/ that started after '
       'the file got its name ID.tmp ended before the 250',
       [(c[0], c[1][:40], c[2], c[3]) for c in calls if c[0] == 'fsync'])
    ok(t_synced < t_250, 'durable order: the 250 comes after the file\'s '
       'fdatasync')


# ---- the tests ---------------------------------------------------------------

def test_plain_mx():
    before = queue_files()
    code, text = send_plain(P_MX, 'demo@example.test',
                            'Subject: plain\r\n\r\nline one\r\n'
                            '.leading dot\r\n')
    qid = queued_id(text)
    ok(code == 250 and qid is not None,
       'plain MX session: 250 2.0.0 Ok: queued as ID', (code, text))
    ok(queue_files() - before == {qid}, 'the queue file is in incoming/ '
       'under that ID', queue_files() - before)
    env, content = qdump(qid)
    ok(env is not None and env.get('sender') == 'alice@sender.test' and
       env['rcpt'] == ['demo@example.test'],
       'queue_read gives the envelope sender and recipient', env)
    ok(env is not None and env.get('client_addr') == '127.0.0.1' and
       re.match(r'^[a-z0-9.-]+$', env.get('client_name', '')) and
       env.get('helo') == 'client.test' and env.get('proto') == 'ESMTP',
       'envelope records client, helo and protocol', env)
    text = (content or b'').decode(errors='replace')
    ok(re.match(r'Received: from client\.test \([a-z0-9.-]+ \[127\.0\.0\.1\]\)'
                r'\r\n\tby mx\.example\.test \(posta\) with ESMTP id '
                + qid + r'\r\n\tfor <demo@example\.test>; '
                r'\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n'
                r'Subject: plain\r\n', text) is not None,
       'Received: header in RFC 5321 4.4 form leads the content', text)
    ok(text.endswith('line one\r\n.leading dot\r\n'),
       'content stored dot-unstuffed with CRLF line ends', text[-60:])
    # the name of 127.0.0.1 comes from the system's resolver (/etc/hosts)
    ok(wait_log(r'posta/smtpd\[\d+\]: %s: client=[a-z0-9.-]+\[127\.0\.0\.1\]$'
                % qid) is not None, 'log: ID: client=NAME[127.0.0.1]')
    ok(wait_log(r': %s: from=<alice@sender\.test>, size=\d+, nrcpt=1$'
                % qid) is not None, 'log: ID: from=<...>, size=N, nrcpt=1')
    ok(wait_log(r'disconnect from [a-z0-9.-]+\[127\.0\.0\.1\] ehlo=1 mail=1 '
                r'rcpt=1 data=1 quit=1 commands=5$') is not None,
       'log: disconnect line with command counts')


def test_ehlo():
    r = Raw(P_MX)
    banner = r.reply()
    ok(banner == ['220 mx.example.test ESMTP posta'], 'banner', banner)
    r.send('EHLO client.test\r\n')
    lines = r.reply()
    kw = [x[4:] for x in lines or []]
    want = ['PIPELINING', 'SIZE 1048576', 'STARTTLS', 'ENHANCEDSTATUSCODES',
            '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING']
    ok(lines is not None and lines[0] == '250-mx.example.test' and
       all(w in kw for w in want) and not any(k.startswith('AUTH')
                                              for k in kw),
       'EHLO on the MX: extensions advertised, no AUTH', lines)
    ok(coded(r.cmd('VRFY demo')) ==
       '252 2.0.0 Cannot VRFY user, but will accept message and attempt '
       'delivery', 'VRFY: 252 without revealing users')
    ok(coded(r.cmd('HELP', )).startswith('214 2.0.0 '), 'HELP: 214 2.0.0')
    ok(coded(r.cmd('EXPN staff')) == '502 5.5.1 Error: EXPN is disabled',
       'EXPN: 502 5.5.1')
    ok(coded(r.cmd('FROB')) == '500 5.5.2 Error: command not recognized',
       'unknown command: 500 5.5.2')
    ok(coded(r.cmd('NOOP')) == '250 2.0.0 Ok', 'NOOP: 250 2.0.0')
    ok(coded(r.cmd('RSET')) == '250 2.0.0 Ok', 'RSET: 250 2.0.0')
    ok(coded(r.cmd('QUIT')) == '221 2.0.0 Bye' and r.eof(),
       'QUIT: 221 2.0.0 and close')
    r.close()


def test_recipients():
    r = Raw(P_MX)
    r.reply()
    r.cmd('EHLO client.test')
    coded(r.cmd('MAIL FROM:<alice@sender.test>'))
    cases = [
        ('nobody@example.test', '550 5.1.1 <nobody@example.test>: '
         'Recipient address rejected: User unknown', 'unknown local user'),
        ('x@elsewhere.test', '554 5.7.1 <x@elsewhere.test>: Relay access '
         'denied', 'stranger relaying to another domain'),
        ('demo@example.test', '250 2.1.5 Ok', 'known user'),
        ('DEMO+tag@Example.TEST', '250 2.1.5 Ok',
         'user with an extension, any case'),
        ('postmaster@example.test', '250 2.1.5 Ok', 'alias (local part)'),
        ('info@example.test', '250 2.1.5 Ok', 'alias (full address)'),
        ('postmaster', '250 2.1.5 Ok', '<postmaster> without a domain'),
        ('other@virtual.test', '250 2.1.5 Ok', 'virtual domain user'),
        ('demo@virtual.test', '550 5.1.1 <demo@virtual.test>: Recipient '
         'address rejected: User unknown', 'unknown virtual user'),
        ('ok@relay.test', '250 2.1.5 Ok', 'relay domain, listed recipient'),
        ('bad@relay.test', '550 5.1.1 <bad@relay.test>: Recipient address '
         'rejected: User unknown in relay recipient table',
         'relay domain, unlisted recipient'),
    ]
    for addr, want, what in cases:
        got = coded(r.cmd('RCPT TO:<%s>' % addr))
        ok(got == want, 'RCPT %s: %s' % (what, want[:9]), got)
    r.cmd('QUIT')
    r.close()
    ok(wait_log(r'NOQUEUE: reject: RCPT from [a-z0-9.-]+\[127\.0\.0\.1\]: 554 '
                r'5\.7\.1 <x@elsewhere\.test>: Relay access denied; '
                r'from=<alice@sender\.test> to=<x@elsewhere\.test> '
                r'proto=ESMTP helo=<client\.test>$') is not None,
       'log: NOQUEUE: reject: RCPT ... Relay access denied; from= to= '
       'proto= helo=')
    code, text = send_plain(P_MX, 'x@elsewhere.test')
    ok(code == 554, 'smtplib: relay denied for a stranger', (code, text))


def test_mynetworks():
    before = queue_files()
    code, text = send_plain(P_NET, 'x@elsewhere.test')
    ok(code == 250 and queued_id(text) in queue_files() - before,
       'relay allowed for a client in mynetworks', (code, text))


def test_restricted_networks():
    # no AUTH, not in mynetworks: only the listed domains (and ours)
    for rcpt, want, what in (
            ('pager@alarm.test', 250, 'a listed domain'),
            ('Pager@ALARM.test', 250, 'a listed domain, any case'),
            ('x@db.ops.test', 250, 'a subdomain of a listed .parent'),
            ('x@ops.test', 554, 'not the .parent itself'),
            ('x@notalarm.test', 554, 'not a look-alike domain'),
            ('x@elsewhere.test', 554, 'any other domain'),
            ('demo@example.test', 250, 'our own domain as always'),
            ('nobody@example.test', 550, 'our unknown users as always')):
        code, text = send_plain(P_RESTR, rcpt)
        ok(code == want, 'restricted network to %s (%s): %d' % (
            rcpt, what, want), (code, text))
    code, text = send_plain(P_MX, 'pager@alarm.test')
    ok(code == 554, 'the same domain from a client outside the '
       'restricted networks: 554', (code, text))


def test_auth_needs_tls():
    r = Raw(P_PAUTH)
    r.reply()
    r.send('EHLO client.test\r\n')
    lines = r.reply()
    ok(not any('AUTH' in x for x in lines or []),
       'AUTH not advertised without TLS', lines)
    got = coded(r.cmd('AUTH PLAIN AGRlbW8AZGVtbw=='))
    ok(got == '538 5.7.11 Encryption required for requested '
       'authentication mechanism', 'AUTH refused without TLS: 538 5.7.11',
       got)
    r.close()


def test_submission():
    s = smtplib.SMTP('127.0.0.1', P_SUB, local_hostname='laptop.test',
                     timeout=10)
    s.ehlo()
    code, msg = s.mail('demo@example.test')
    ok(code == 530 and msg.decode().startswith('5.7.0 Must issue a STARTTLS'),
       'submission: MAIL before STARTTLS gets 530 5.7.0', (code, msg))
    code, msg = s.docmd('AUTH', 'PLAIN AGRlbW8AZGVtbw==')
    ok(code == 530, 'submission: AUTH before STARTTLS gets 530', (code, msg))
    s.starttls(context=tls_ctx())
    s.ehlo()
    ok('PLAIN' in s.esmtp_features.get('auth', '') and
       'LOGIN' in s.esmtp_features.get('auth', '') and
       'starttls' not in s.esmtp_features,
       'after STARTTLS: AUTH PLAIN LOGIN offered, STARTTLS no more',
       s.esmtp_features)
    code, msg = s.docmd('STARTTLS')
    ok(code == 503 and msg.decode().startswith('5.5.1'),
       'STARTTLS twice: 503 5.5.1', (code, msg))
    code, msg = s.mail('demo@example.test')
    ok(code == 530 and msg.decode() == '5.7.0 Authentication required',
       'submission: MAIL without AUTH gets 530 5.7.0', (code, msg))
    t0 = time.time()
    try:
        s.login('demo@example.test', 'wrong')
        bad = None
    except smtplib.SMTPAuthenticationError as e:
        bad = e
    took = time.time() - t0
    ok(bad is not None and bad.smtp_code == 535 and
       bad.smtp_error.decode().startswith('5.7.8'),
       'wrong password: 535 5.7.8', bad)
    ok(took >= 0.9, 'a failed AUTH is answered after a delay (%.2fs)' % took)
    s.user, s.password = 'demo@example.test', 'demo'
    code, msg = s.auth('PLAIN', s.auth_plain)
    ok(code == 235 and msg.decode().startswith('2.7.0'),
       'AUTH PLAIN over TLS: 235 2.7.0', (code, msg))
    before = queue_files()
    s.mail('demo@example.test')
    code, msg = s.rcpt('friend@elsewhere.test')
    ok(code == 250, 'authenticated client may relay', (code, msg))
    code, msg = s.data('Subject: out\r\n\r\nfrom the laptop\r\n')
    qid = queued_id(msg.decode())
    ok(code == 250 and qid in queue_files() - before,
       'submission message queued', (code, msg))
    s.quit()
    env, content = qdump(qid)
    text = (content or b'').decode(errors='replace')
    ok(env is not None and env.get('auth') == 'demo@example.test' and
       env.get('proto') == 'ESMTPSA', 'envelope: auth= and proto=ESMTPSA',
       env)
    ok(re.match(r'Received: from laptop\.test \([a-z0-9.-]+ \[127\.0\.0\.1\]\)'
                r'\r\n\t\(using TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)'
                r'\)\r\n\t\(Authenticated sender: demo@example\.test\)\r\n'
                r'\tby mx\.example\.test \(posta\) with ESMTPSA id ' + qid,
                text) is not None,
       'Received: shows TLS version, cipher and the authenticated sender',
       text[:400])
    ok(wait_log(r': %s: client=[a-z0-9.-]+\[127\.0\.0\.1\], sasl_method=PLAIN, '
                r'sasl_username=demo@example\.test$' % qid) is not None,
       'log: client=..., sasl_method=PLAIN, sasl_username=...')
    ok(wait_log(r'warning: [a-z0-9.-]+\[127\.0\.0\.1\]: SASL PLAIN '
                r'authentication failed') is not None,
       'log: failed AUTH warning')

    # AUTH LOGIN, with smtplib's own exchange
    s = smtplib.SMTP('127.0.0.1', P_SUB, local_hostname='laptop.test',
                     timeout=10)
    s.starttls(context=tls_ctx())
    s.ehlo()
    s.user, s.password = 'other@virtual.test', 'secret'
    code, msg = s.auth('LOGIN', s.auth_login, initial_response_ok=False)
    ok(code == 235, 'AUTH LOGIN with 334 challenges: 235', (code, msg))
    code, msg = s.docmd('AUTH', 'PLAIN')
    ok(code == 503, 'AUTH after AUTH: 503', (code, msg))
    s.quit()


def test_auth_protocol():
    """raw AUTH exchanges: cancel, bad base64, too many failures"""
    r = Raw(P_SUB)
    r.reply()
    r.cmd('EHLO x.test')
    r.cmd('STARTTLS')
    r.s = tls_ctx().wrap_socket(r.s, server_hostname='mx.example.test')
    r.send('EHLO x.test\r\n')
    r.reply()
    ok(r.cmd('AUTH PLAIN') == '334 ', 'AUTH PLAIN without initial response: '
       'empty 334 challenge')
    ok(coded(r.cmd('*')) == '501 5.7.0 Authentication aborted',
       'AUTH cancelled with "*": 501 5.7.0')
    ok(r.cmd('AUTH LOGIN') == '334 VXNlcm5hbWU6', 'AUTH LOGIN: 334 Username:')
    ok(coded(r.cmd('%%%')) == '501 5.5.2 Error: cannot decode response',
       'bad base64: 501 5.5.2')
    ok(coded(r.cmd('AUTH CRAM-MD5')) ==
       '504 5.5.4 Unsupported authentication mechanism',
       'unknown mechanism: 504 5.5.4')
    r.close()


def test_implicit_tls():
    before = queue_files()
    s = smtplib.SMTP_SSL('127.0.0.1', P_SUBS, local_hostname='phone.test',
                         context=tls_ctx(), timeout=10)
    s.ehlo()
    s.login('demo@example.test', 'demo')
    s.mail('demo@example.test')
    s.rcpt('someone@elsewhere.test')
    code, msg = s.data('Subject: 465\r\n\r\nimplicit\r\n')
    s.quit()
    qid = queued_id(msg.decode())
    ok(code == 250 and qid in queue_files() - before,
       'submissions (implicit TLS, port 465 style): AUTH and relay work',
       (code, msg))


def test_client_cert():
    c = tls_ctx()
    c.load_cert_chain(os.path.join(TLS, 'client.pem'),
                      os.path.join(TLS, 'client.key'))
    s = smtplib.SMTP('127.0.0.1', P_CERT, local_hostname='peer.test',
                     timeout=10)
    s.starttls(context=c)
    s.ehlo()
    s.mail('a@peer.test')
    code, msg = s.rcpt('x@elsewhere.test')
    ok(code == 250, 'client certificate in smtpd_tls_fingerprint_maps may '
       'relay', (code, msg))
    s.quit()
    c = tls_ctx()
    c.load_cert_chain(os.path.join(TLS, 'other.pem'),
                      os.path.join(TLS, 'other.key'))
    s = smtplib.SMTP('127.0.0.1', P_CERT, local_hostname='peer.test',
                     timeout=10)
    s.starttls(context=c)
    s.ehlo()
    s.mail('a@peer.test')
    code, msg = s.rcpt('x@elsewhere.test')
    ok(code == 554, 'a certificate not in the table may not', (code, msg))
    s.quit()


def test_starttls_injection():
    r = Raw(P_MX)
    r.reply()
    r.send('EHLO client.test\r\n')
    r.reply()
    r.send('STARTTLS\r\nRSET\r\n')
    first = coded(r.reply())
    ok(first == ['220 2.0.0 Ready to start TLS'], 'STARTTLS: 220 2.0.0',
       first)
    extra = r.buf
    r.s = tls_ctx().wrap_socket(r.s, server_hostname='mx.example.test')
    r.buf = b''
    r.send('NOOP\r\n')
    got = r.reply()
    more = r.reply(timeout=0.7)
    ok(extra == b'' and got == ['250 2.0.0 Ok'] and more is None,
       'STARTTLS\\r\\nRSET\\r\\n in one write: the RSET is discarded, '
       'never answered', (extra, got, more))
    ok(wait_log(r'[a-z0-9.-]+\[127\.0\.0\.1\]: improper command pipelining '
                r'after STARTTLS: 6 bytes discarded') is not None,
       'log: discarded pipelined bytes counted')
    r.close()

    # a failed handshake: the session ends without another reply
    r = Raw(P_MX)
    r.reply()
    r.cmd('EHLO client.test')
    r.cmd('STARTTLS')
    r.send('EHLO plaintext.test\r\nMAIL FROM:<a@b.test>\r\n' * 20)
    closed = r.eof(timeout=5)
    ok(closed and b'250' not in r.buf,
       'commands after a failed handshake get nothing; the session ends',
       r.buf[:200])
    r.close()


def hostile():
    r = Raw(P_HOST)
    r.reply()
    r.cmd('EHLO hostile.test')
    return r


def test_hostile():
    r = hostile()
    got = coded(r.cmd('NOOP ' + 'x' * 3000))
    ok(got == '500 5.5.2 Error: line too long', 'line too long: 500 5.5.2',
       got)
    ok(r.cmd('NOOP') == '250 2.0.0 Ok', '... and the session reads on')
    got = coded(r.cmd('MAIL FROM:<broken'))
    ok(got is not None and got.startswith('501 5.'), 'bad syntax: 501', got)
    got = coded(r.cmd('NOOP\0x'))
    ok(got is not None and got.startswith('500 5.5.2'), 'NUL in a command: '
       '500 5.5.2', got)
    r.close()

    r = hostile()
    got = coded(r.cmd('RCPT TO:<demo@example.test>'))
    ok(got == '503 5.5.1 Error: need MAIL command',
       'RCPT before MAIL: 503 5.5.1', got)
    got = coded(r.cmd('DATA'))
    ok(got == '503 5.5.1 Error: need MAIL command',
       'DATA before MAIL: 503 5.5.1', got)
    r.close()
    r = Raw(P_HOST)
    r.reply()
    got = coded(r.cmd('MAIL FROM:<a@b.test>'))
    ok(got == '503 5.5.1 Error: send HELO/EHLO first',
       'MAIL before EHLO: 503 5.5.1', got)
    r.close()

    r = hostile()
    r.cmd('MAIL FROM:<a@b.test>')
    for i in range(3):
        r.cmd('RCPT TO:<demo+%d@example.test>' % i)
    got = coded(r.cmd('RCPT TO:<demo+9@example.test>'))
    ok(got == '452 4.5.3 Error: too many recipients',
       'recipient limit: 452 4.5.3', got)
    got = coded(r.cmd('MAIL FROM:<a@b.test>'))
    ok(got == '503 5.5.1 Error: nested MAIL command', 'nested MAIL: 503',
       got)
    r.close()

    # error limits: soft 3 (replies delayed 1s), hard 6 (421, close)
    r = hostile()
    times = []
    for i in range(6):
        t0 = time.time()
        got = r.cmd('BOGUS%d' % i)
        times.append(time.time() - t0)
    fast = times[0] < 0.5 and times[1] < 0.5
    slow = all(t >= 0.9 for t in times[2:])
    ok(fast and slow, 'past smtpd_soft_error_limit each error reply waits '
       'smtpd_error_sleep_time', ['%.2f' % t for t in times])
    last = r.reply()
    ok(last == ['421 4.7.0 mx.example.test Error: too many errors'] and
       r.eof(), 'at smtpd_hard_error_limit: 421 4.7.0 and disconnect', last)
    r.close()
    ok(wait_log(r'too many errors after UNKNOWN from [a-z0-9.-]+\[127\.0\.0\.1\]')
       is not None, 'log: too many errors after ...')

    # a client that resets the connection while its reply is held back
    # is let go at once (the loop must not spin on the hang-up)
    pat = r'lost connection after UNKNOWN from [a-z0-9.-]+\[127\.0\.0\.1\]'
    seen = len(re.findall(pat, log_text()))
    r = hostile()
    r.send('BAD1\r\nBAD2\r\nBAD3\r\n')
    r.reply()
    r.reply()
    r.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                   b'\x01\x00\x00\x00\x00\x00\x00\x00')
    r.close()	# RST while the third reply sleeps
    t0 = time.time()
    while time.time() - t0 < 3 and len(re.findall(pat, log_text())) <= seen:
        time.sleep(0.02)
    took = time.time() - t0
    ok(took < 0.6, 'reset during an error sleep: session ended at once '
       '(%.2fs)' % took)

    # idle timeout (2s here)
    r = hostile()
    r.send('NOO')	# a partial line does not count as activity
    t0 = time.time()
    got = r.reply(timeout=6)
    took = time.time() - t0
    ok(got == ['421 4.4.2 mx.example.test Error: timeout exceeded'] and
       r.eof() and 1.5 <= took <= 4.5,
       'idle timeout: 421 4.4.2 and close (after %.1fs)' % took, got)
    r.close()


def test_size():
    r = hostile()
    got = coded(r.cmd('MAIL FROM:<a@b.test> SIZE=5000'))
    ok(got == '552 5.3.4 Message size exceeds fixed limit',
       'SIZE= above message_size_limit refused at MAIL: 552 5.3.4', got)
    before = queue_files()
    r.cmd('MAIL FROM:<a@b.test>')
    r.cmd('RCPT TO:<demo@example.test>')
    r.cmd('DATA')
    r.send(('x' * 78 + '\r\n') * 4000)	# 320 KB, no end yet
    time.sleep(0.5)
    sizes = [os.path.getsize(os.path.join(INCOMING, f))
             for f in queue_files(tmp=True)]
    ok(len(sizes) == 1 and sizes[0] < 8192,
       'size limit enforced while streaming: the file stops growing '
       '(%s bytes on disk)' % sizes)
    r.send('\r\n.\r\n')
    got = coded((r.reply() or [None])[-1])
    ok(got == '552 5.3.4 Error: message file too big',
       'oversized message: 552 5.3.4 after the data', got)
    ok(r.cmd('NOOP') == '250 2.0.0 Ok', '... and the session goes on')
    time.sleep(0.2)
    ok(queue_files() == before and not queue_files(tmp=True),
       'nothing left in incoming/ for the refused message')
    r.close()

    # dot-stuffed data counts the bytes after unstuffing
    r = hostile()
    r.cmd('MAIL FROM:<a@b.test> SIZE=3900')
    r.cmd('RCPT TO:<demo@example.test>')
    r.cmd('DATA')
    r.send('..\r\n' * 1300 + '.\r\n')	# 5203 bytes on the wire
    got = r.reply()[-1]
    qid = queued_id(got[4:]) if got else None
    env, content = qdump(qid) if qid else (None, b'')
    body = (content or b'').split(b'\r\n\r\n', 1)[-1] if content else b''
    ok(qid is not None and content is not None and
       content.endswith(b'.\r\n' * 1300) and
       int(env.get('content_size', 0)) - content.find(b'.\r\n' * 1300) ==
       3900, 'dot-stuffed message within the limit accepted, stored '
       'unstuffed', (got, body[:40]))
    r.close()


def test_gone_mid_data():
    before = queue_files()
    r = hostile()
    r.cmd('MAIL FROM:<a@b.test>')
    r.cmd('RCPT TO:<demo@example.test>')
    r.cmd('DATA')
    r.send('Subject: half\r\n\r\nsome of the text')
    time.sleep(0.3)
    had_tmp = bool(queue_files(tmp=True))
    r.close()
    gone = wait_log(r'lost connection after DATA \(\d+ bytes\) from '
                    r'[a-z0-9.-]+\[127\.0\.0\.1\]')
    time.sleep(0.2)
    ok(had_tmp and gone is not None and queue_files() == before and
       not queue_files(tmp=True),
       'client gone mid-DATA: the unfinished file is removed, nothing '
       'queued', (had_tmp, gone))


def test_bare_lf():
    before = queue_files()
    r = hostile()
    r.cmd('MAIL FROM:<a@b.test>')
    r.cmd('RCPT TO:<demo@example.test>')
    r.cmd('DATA')
    # "\n.\r\n" is not the end; the smuggled MAIL is content
    r.send('Subject: x\r\n\r\nline\n.\r\nMAIL FROM:<evil@x.test>\r\n'
           'RCPT TO:<demo@example.test>\r\nDATA\r\n.\r\n')
    got = coded(r.reply())
    more = r.reply(timeout=0.7)
    ok(got == ['550 5.5.2 Error: message contains a bare <LF> (see RFC 5321 '
               '2.3.8)'] and more is None,
       'bare LF in DATA refused with 550 5.5.2; "<LF>.<CR><LF>" was not an '
       'end of data, nothing smuggled', (got, more))
    r.send('MAIL FROM:<a@b.test>\r\n')
    got = coded(r.reply())
    r.cmd('RCPT TO:<demo@example.test>')
    r.cmd('DATA')
    r.send('Subject: y\r\n\r\nbare\rcr\r\n.\r\n')
    got = coded(r.reply())
    ok(got == ['550 5.5.2 Error: message contains a bare <CR> (see RFC 5321 '
               '2.3.8)'], 'bare CR in DATA refused with 550 5.5.2', got)
    r.close()
    time.sleep(0.2)
    ok(queue_files() == before and not queue_files(tmp=True),
       'nothing queued for the refused messages')


def test_pipelining():
    before = queue_files()
    r = Raw(P_MX)
    r.reply()
    r.send('EHLO pipe.test\r\n')
    r.reply()
    r.send('MAIL FROM:<p@pipe.test>\r\nRCPT TO:<demo@example.test>\r\n'
           'RCPT TO:<nobody@example.test>\r\nDATA\r\n')
    got = [r.reply() for _ in range(4)]
    got = [x[-1] if x else None for x in got]
    ok(got == ['250 2.1.0 Ok', '250 2.1.5 Ok',
               '550 5.1.1 <nobody@example.test>: Recipient address '
               'rejected: User unknown', '354 End data with <CR><LF>.<CR><LF>'],
       'pipelined MAIL/RCPT/RCPT/DATA: replies in order', got)
    r.send('Subject: piped\r\n\r\nhi\r\n.\r\nQUIT\r\n')
    a = r.reply()
    b = r.reply()
    qid = queued_id(a[-1][4:]) if a else None
    ok(qid is not None and qid in queue_files() - before and
       b == ['221 2.0.0 Bye'], 'end of data and QUIT pipelined: 250 then 221',
       (a, b))
    r.close()


def test_bdat():
    before = queue_files()
    r = Raw(P_MX)
    r.reply()
    r.send('EHLO chunk.test\r\n')
    r.reply()
    r.send('BDAT 5\r\nhello')
    got = coded((r.reply() or [None])[-1])
    ok(got == '503 5.5.1 Error: need MAIL command',
       'BDAT without MAIL: 503, its bytes are still read', got)
    ok(r.cmd('NOOP') == '250 2.0.0 Ok', '... and the session stays in step')
    r.cmd('MAIL FROM:<c@chunk.test> BODY=8BITMIME')
    r.cmd('RCPT TO:<demo@example.test>')
    part1 = b'Subject: chunks\r\n\r\nfirst '
    part2 = b'second\r\n.\r\n'
    r.send(b'BDAT %d\r\n' % len(part1) + part1)
    got1 = coded(r.reply())
    r.send(b'BDAT %d LAST\r\n' % len(part2) + part2)
    got2 = coded(r.reply())
    qid = queued_id(got2[-1][4:]) if got2 else None
    ok(got1 == ['250 2.0.0 Ok: %d bytes' % len(part1)] and qid is not None
       and qid in queue_files() - before, 'BDAT chunks, then LAST: queued',
       (got1, got2))
    env, content = qdump(qid) if qid else (None, None)
    ok(content is not None and content.endswith(part1 + part2),
       'BDAT content stored as sent (no dot handling)', content)
    got = coded(r.cmd('DATA'))
    ok(got == '503 5.5.1 Error: need MAIL command', 'transaction over after '
       'LAST', got)
    r.close()


def test_submit_socket():
    before = queue_files()
    r = Raw(path=os.path.join(Q, 'public', 'submit'))
    banner = r.reply()
    r.send('EHLO localhost\r\n')
    ehlo = r.reply()
    r.cmd('MAIL FROM:<root@example.test>')
    got = r.cmd('RCPT TO:<anyone@elsewhere.test>')
    ok(banner is not None and got == '250 2.1.5 Ok',
       'submit socket: a local client may relay', (banner, got))
    r.cmd('DATA')
    r.send('Subject: cron\r\n\r\noutput\r\n.\r\n')
    got = r.reply()
    qid = queued_id(got[-1][4:]) if got else None
    ok(qid is not None and qid in queue_files() - before,
       'submit socket: message queued', got)
    env, content = qdump(qid) if qid else (None, b'')
    ok(content is not None and content.startswith(
        b'Received: from local (uid %d)\r\n\tby mx.example.test (posta) '
        b'with ESMTP id ' % os.getuid()),
       'Received: from local (uid N) with the peer uid (SO_PEERCRED)',
       content[:200] if content else None)
    ok(not any('STARTTLS' in x for x in ehlo or []),
       'no STARTTLS offered on the local socket', ehlo)
    r.cmd('QUIT')
    r.close()


def test_connection_limit():
    a = Raw(P_SMALL)
    b = Raw(P_SMALL)
    a.reply()
    b.reply()
    c = Raw(P_SMALL)
    got = c.reply()
    ok(got == ['421 4.7.0 mx.example.test Error: too many connections from '
               '127.0.0.1'] and c.eof(),
       'smtpd_client_connection_limit: the third session gets 421 4.7.0',
       got)
    for x in (a, b, c):
        x.close()


def test_concurrent():
    """many sessions at once: every 250 has its own durable file"""
    import threading
    before = queue_files()
    ids, errs = [], []
    lock = threading.Lock()

    def client(k):
        try:
            s = smtplib.SMTP('127.0.0.1', P_MX, local_hostname='c%d.test' % k,
                             timeout=20)
            s.ehlo()
            for j in range(3):
                s.mail('c%d@sender.test' % k)
                s.rcpt('demo@example.test')
                code, msg = s.data('Subject: %d/%d\r\n\r\nbody\r\n'
                                   % (k, j))
                with lock:
                    if code == 250:
                        ids.append(queued_id(msg.decode()))
                    else:
                        errs.append((code, msg))
            s.quit()
        except Exception as e:
            with lock:
                errs.append(repr(e))
    th = [threading.Thread(target=client, args=(k,)) for k in range(30)]
    for t in th:
        t.start()
    for t in th:
        t.join(60)
    new = queue_files() - before
    ok(not errs and len(ids) == 90 and set(ids) == new,
       '30 concurrent sessions x 3 messages: 90 distinct IDs, all in '
       'incoming/', (errs[:3], len(ids), len(new)))
    bad = [i for i in ids if qdump(i)[0] is None]
    ok(not bad, 'every one of them reads back with queue_read', bad[:3])


def test_swaks():
    if shutil.which('swaks') is None:
        ok(False, 'swaks is installed')
        return
    before = queue_files()
    # (swaks's TLS needs Net::SSLeay, not installed here: plain MX)
    p = subprocess.run(['swaks', '--server', '127.0.0.1', '--port',
                        str(P_MX), '--from', 'someone@sender.test',
                        '--to', 'demo@example.test', '--helo', 'swaks.test',
                        '--pipeline'],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    out = p.stdout.decode(errors='replace')
    ok(p.returncode == 0 and re.search(r'<-  250 2\.0\.0 Ok: queued as', out)
       and len(queue_files() - before) == 1,
       'swaks (PIPELINING) on the MX: message queued',
       out[-1500:])


def test_enhanced_codes():
    bad = [r for r in all_replies
           if isinstance(r, str) and not ENHANCED.match(r) or
           isinstance(r, list) and not all(ENHANCED.match(x) for x in r)]
    ok(not bad and len(all_replies) > 20,
       'every reply seen (%d) carries an enhanced status code'
       % len(all_replies), bad)


def main():
    try:
        if not ok(start(), 'master starts every smtpd service'):
            print('# ' + log_text()[-3000:].replace('\n', '\n# '))
            return
        for t in (test_plain_mx, test_ehlo, test_recipients, test_mynetworks,
                  test_restricted_networks,
                  test_auth_needs_tls, test_submission, test_auth_protocol,
                  test_implicit_tls, test_client_cert,
                  test_starttls_injection, test_hostile, test_size,
                  test_gone_mid_data, test_bare_lf, test_pipelining,
                  test_bdat, test_submit_socket, test_connection_limit,
                  test_concurrent,
                  test_swaks, test_enhanced_codes, test_durable_order):
            try:
                t()
            except Exception as e:	# a crash is a failure, not a stop
                ok(False, '%s ran to its end' % t.__name__, repr(e))
        crashes = re.findall(r'.*(?:panic|fatal|killed by signal|exited with '
                             r'status).*', log_text())
        ok(not crashes, 'no smtpd crashed or died', '\n'.join(crashes))
        # SIGTERM: master stops, every smtpd ends cleanly
        master.terminate()
        try:
            rc = master.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        ok(rc == 0 and len(re.findall(r'posta/smtpd\[\d+\]: \S+: stopping '
                                      r'on signal 15', log_text())) >= 9,
           'SIGTERM: master and every smtpd stop (master status %s)' % rc)
        with open(os.path.join(T, 'master.out'), errors='replace') as f:
            out = f.read()
        san = re.findall(r'.*(?:Sanitizer|runtime error).*', out + log_text())
        ok(not san, 'no sanitizer report from any smtpd', '\n'.join(san[:10]))
    finally:
        if tap.failed:
            print('# log tail:')
            for line in log_text().splitlines()[-40:]:
                print('# ' + line)
        cleanup()
    sys.exit(tap.done())


main()
