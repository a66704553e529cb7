#!/usr/bin/env bash
# master.sh - the supervisor end to end, with tests/helpers/testd as the
# child program: privilege drop, restart after kill -9, throttling of a
# child that dies at once, SIGHUP reload (new, changed, removed service;
# a broken file refused), the pid-file lock, -t, SIGTERM with SIGKILL
# after master_stop_timeout, nothing left behind, daemon mode, sd_notify.
# Runs as root; ports are chosen at run time; everything lives in a temp
# dir that is removed at the end.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
TOP=$PWD
MASTER=$TOP/$BUILD/bin/master
TESTD_DIR=$TOP/$BUILD/tests/helpers
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { # check "what" command...
	local what=$1
	shift
	if "$@"; then ok "$what"; else nok "$what"; fi
}

T=$(mktemp -d /tmp/posta-master.XXXXXX)
chmod 755 "$T"	# the children (user posta) must reach the queue
MPIDS=()
cleanup() {
	local p
	for p in "${MPIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	# children of ours that might be left: found by our unique temp dir
	for p in $(our_procs); do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

# our_procs - pids of live processes whose command line names $T
our_procs() {
	local d
	for d in /proc/[0-9]*; do
		[ "${d#/proc/}" = "$$" ] && continue
		[ -r "$d/cmdline" ] || continue
		if tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q -- "-c $T/"; then
			[ "$(awk '/^State:/ {print $2}' "$d/status" 2>/dev/null)" = Z ] ||
			    echo "${d#/proc/}"
		fi
	done
}

free_ports() { # free_ports N: N distinct free TCP ports on 127.0.0.1
	$PY - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    socks.append(s)
print(' '.join(str(s.getsockname()[1]) for s in socks))
EOF
}

# client tcp PORT | client unix PATH: print the greeting and the echo
client() {
	$PY - "$@" <<'EOF'
import socket, sys
kind, where = sys.argv[1], sys.argv[2]
try:
    if kind == 'tcp':
        s = socket.create_connection(('127.0.0.1', int(where)), timeout=2)
    else:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        s.connect(where)
    f = s.makefile('rb')
    g = f.readline().decode().strip()
    s.sendall(b'ping 123\r\n')
    e = f.readline().decode().strip()
    print(g)
    print(e)
except Exception as ex:
    print('client error:', ex, file=sys.stderr)
    sys.exit(1)
EOF
}

# greeting_pid tcp PORT: the pid= of the process that answers, or empty
greeting_pid() {
	client "$@" 2>/dev/null | head -1 | sed -n 's/.* pid=\([0-9]*\).*/\1/p'
}

# wait_until SECONDS command...: retry every 0.1 s
wait_until() {
	local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
	shift
	while [ $(( $(date +%s%N) / 1000000 )) -lt $deadline ]; do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

quiet() { "$@" >/dev/null 2>&1; }
answers() { [ -n "$(greeting_pid "$@")" ]; }
not_answers() { ! client "$@" >/dev/null 2>&1; }
pid_gone() { ! kill -0 "$1" 2>/dev/null; }
pid_changed() { local p; p=$(greeting_pid tcp "$1"); [ -n "$p" ] && [ "$p" != "$2" ]; }
uid_of() { awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$1/status"; }
count_log() { grep -c -- "$1" "$T/log"; }

read -r P1 P2 P3 P4 <<<"$(free_ports 4)"
POSTA_UID=$(id -u posta)
mkdir -p "$T/etc"
cat >"$T/etc/posta.conf" <<EOF
queue_directory = $T/queue
daemon_directory = $TESTD_DIR
maillog_file = $T/log
master_restart_delay = 0
master_restart_max_delay = 1s
master_throttle_window = 3s
master_throttle_count = 3
master_throttle_time = 60s
master_stop_timeout = 1s
EOF
cat >"$T/etc/master.conf" <<EOF
# service  type  listen           procs  command
echo       inet  127.0.0.1:$P1    1      testd
other      inet  127.0.0.1:$P2    1      testd
local      unix  private/local    2      testd
bad        none  -                1      testd -x 3
stubborn   none  -                1      $TESTD_DIR/testd -s
EOF

# ---- start in the foreground ------------------------------------------
start_ms=$(( $(date +%s%N) / 1000000 ))
"$MASTER" -c "$T/etc" -f >"$T/master.out" 2>&1 &
MP=$!
MPIDS+=("$MP")
check "master starts and its inet service answers" \
    wait_until 5 answers tcp "$P1"

g=$(client tcp "$P1" 2>/dev/null)
check "greeting names the service and the child's uid" \
    grep -q "^testd echo pid=[0-9]* uid=$POSTA_UID" <<<"$g"
check "the child echoes lines" grep -q "^ping 123$" <<<"$g"
CP=$(greeting_pid tcp "$P1")
check "child runs as user posta (real, effective, saved, fs uid)" \
    [ "$(uid_of "$CP")" = "$POSTA_UID $POSTA_UID $POSTA_UID $POSTA_UID" ]
check "child has no capabilities left" \
    grep -q '^CapEff:[[:space:]]*0*$' "/proc/$CP/status"
check "child's parent is master" \
    [ "$(awk '/^PPid:/ {print $2}' "/proc/$CP/status")" = "$MP" ]
check "master runs as root" [ "$(uid_of "$MP")" = "0 0 0 0" ]
check "pid file holds master's pid" \
    [ "$(cat "$T/queue/pid/master.pid")" = "$MP" ]

check "unix service in private/ answers" \
    wait_until 3 answers unix "$T/queue/private/local"
check "private socket is mode 0600, owned by posta" \
    [ "$(stat -c '%a %U' "$T/queue/private/local")" = "600 posta" ]
check "queue subdirectories exist with their modes" \
    [ "$(stat -c '%a %U' "$T/queue/incoming" "$T/queue/private" \
    "$T/queue/public" "$T/queue/pid" | tr '\n' ' ')" = \
    "700 posta 700 posta 710 posta 755 root " ]
two_local() { [ "$(count_log 'testd\[[0-9]*\]: service local ready')" = 2 ]; }
check "procs 2 gives two processes of the unix service" wait_until 3 two_local

# ---- -t and a second master ----------------------------------------------
check "master -t says a master runs (exit 0)" \
    quiet "$MASTER" -c "$T/etc" -t
timeout 10 "$MASTER" -c "$T/etc" -f >"$T/second.out" 2>&1
rc=$?
check "a second master on the same queue exits 1 (got $rc)" [ "$rc" = 1 ]
check "... with a clear message" \
    grep -q "another master (pid $MP) is already running" "$T/second.out"
check "... and the first one keeps serving" \
    [ "$(greeting_pid tcp "$P1")" = "$CP" ]

# ---- kill -9: restart ------------------------------------------------------
kill -KILL "$CP"
check "child killed with kill -9 is restarted: a new pid answers" \
    wait_until 5 pid_changed "$P1" "$CP"
check "master logged the death" \
    grep -q "warning: service echo: process $CP killed by signal 9" "$T/log"

# ---- throttling --------------------------------------------------------------
now_ms=$(( $(date +%s%N) / 1000000 ))
left=$(( 3000 - (now_ms - start_ms) ))
[ $left -gt 0 ] && sleep "$(awk -v l=$left 'BEGIN { print l / 1000 }')"
spawns=$(count_log 'exiting with status 3 as told')
check "a child that exits at once is started exactly 3 times (got $spawns)" \
    [ "$spawns" = 3 ]
check "the throttle decision is logged" \
    grep -q "warning: service bad: throttled for 60s after 3 failures in a row" \
    "$T/log"
check "each failure is logged with its status" \
    [ "$(count_log 'service bad: process [0-9]* exited with status 3')" = 3 ]
sleep 1
spawns=$(count_log 'exiting with status 3 as told')
check "a throttled service is not started again (still $spawns)" \
    [ "$spawns" = 3 ]

# ---- SIGHUP: new, changed, removed ---------------------------------------
EP=$(greeting_pid tcp "$P1")
OP=$(greeting_pid tcp "$P2")
LOCALPIDS=$(grep -o 'testd\[[0-9]*\]: service local ready' "$T/log" |
    sed 's/testd\[\([0-9]*\)\].*/\1/')
cat >"$T/etc/master.conf" <<EOF
echo       inet  127.0.0.1:$P1    1      testd
other      inet  127.0.0.1:$P2    1      testd -o debug=yes
bad        none  -                1      testd -x 3
stubborn   none  -                1      $TESTD_DIR/testd -s
new        inet  127.0.0.1:$P3    -      testd
EOF
kill -HUP "$MP"
check "reload: a new service answers on its port" \
    wait_until 5 answers tcp "$P3"
check "reload: a changed service is restarted on the same port" \
    wait_until 5 pid_changed "$P2" "$OP"
check "reload: its old process is gone" wait_until 3 pid_gone "$OP"
check "reload: a removed unix service stops answering" \
    wait_until 3 not_answers unix "$T/queue/private/local"
gone=1
for p in $LOCALPIDS; do wait_until 3 pid_gone "$p" || gone=0; done
check "reload: the removed service's processes are gone" [ $gone = 1 ]
check "reload: an unchanged service keeps its process" \
    [ "$(greeting_pid tcp "$P1")" = "$EP" ]
check "reload: decisions are logged" \
    grep -q "reload: done: 1 new, 1 changed, 1 removed, 3 unchanged" \
    "$T/log"
check "reload: a throttled, unchanged service stays throttled" \
    [ "$(count_log 'exiting with status 3 as told')" = 3 ]

# ---- a broken master.conf is refused ----------------------------------------
NP=$(greeting_pid tcp "$P3")
cp "$T/etc/master.conf" "$T/etc/master.conf.good"
printf 'broken     tcp   127.0.0.1:%s    1  testd\nnew inet 127.0.0.1:%s 1 testd\n' \
    "$P4" "$P4" >>"$T/etc/master.conf"
kill -HUP "$MP"
check "broken reload: the error is logged as file:line" \
    wait_until 5 grep -q "$T/etc/master.conf:6: unknown service type \"tcp\"" \
    "$T/log"
check "broken reload: all errors are listed" \
    grep -q "$T/etc/master.conf:7: duplicate service \"new\"" "$T/log"
check "broken reload: refused" grep -q "reload refused" "$T/log"
check "broken reload: old services keep running" \
    [ "$(greeting_pid tcp "$P3")" = "$NP" ] && \
    [ "$(greeting_pid tcp "$P1")" = "$EP" ]
check "broken reload: nothing new listens" not_answers tcp "$P4"
check "master is still alive" kill -0 "$MP"

# ---- SIGTERM: everything stops; the stubborn child gets SIGKILL -----------
ALL=$(grep -o 'testd\[[0-9]*\]: service [a-z]* ready' "$T/log" |
    sed 's/testd\[\([0-9]*\)\].*/\1/')
CHILDREN=""
for d in /proc/[0-9]*; do
	[ "$(awk '/^PPid:/ {print $2}' "$d/status" 2>/dev/null)" = "$MP" ] &&
	    CHILDREN="$CHILDREN ${d#/proc/}"
done
check "master has 4 children before stop (got:$CHILDREN)" \
    [ "$(wc -w <<<"$CHILDREN")" = 4 ]
t0=$(date +%s%N)
kill -TERM "$MP"
wait "$MP"
rc=$?
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
check "master exits 0 on SIGTERM (got $rc)" [ "$rc" = 0 ]
check "stop waited for master_stop_timeout, not much more (${ms}ms)" \
    [ "$ms" -ge 900 ] && [ "$ms" -lt 5000 ]
check "the child that ignores SIGTERM was killed" \
    grep -q "stopping: 1 processes still running after 1s: sending SIGKILL" \
    "$T/log"
left=""
for p in $ALL $CHILDREN; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
check "no recorded process of ours is left (left:$left)" [ -z "$left" ]
left=$(our_procs | tr '\n' ' ')
check "no process started for this test is running (left: $left)" \
    [ -z "$left" ]
check "pid file is emptied, not removed" \
    [ -f "$T/queue/pid/master.pid" ] && [ ! -s "$T/queue/pid/master.pid" ]
"$MASTER" -c "$T/etc" -t >/dev/null
rc=$?
check "master -t says none runs (exit 1, got $rc)" [ "$rc" = 1 ]

# ---- a broken config at start: file:line and exit 1 -----------------------
cp "$T/etc/master.conf" "$T/etc/master.conf.bad"
printf 'x inet 127.0.0.1:0 0 testd -o nosuch=1\n' >>"$T/etc/master.conf"
"$MASTER" -c "$T/etc" -f >"$T/bad.out" 2>&1
rc=$?
check "broken master.conf at start: exit 1 (got $rc)" [ "$rc" = 1 ]
check "... with file:line messages" \
    grep -q "$T/etc/master.conf:6: unknown service type" "$T/bad.out" && \
    grep -q "$T/etc/master.conf:8: bad procs" "$T/bad.out" && \
    grep -q "$T/etc/master.conf:8: unknown setting \"nosuch\"" "$T/bad.out"

# ---- daemon mode with sd_notify ---------------------------------------------
cp "$T/etc/master.conf.good" "$T/etc/master.conf"
sed -i '/^stubborn/d; /^bad/d' "$T/etc/master.conf"
$PY - "$T/notify" "$T/notify.log" <<'EOF' &
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
with open(sys.argv[2], 'a') as log:
    while True:
        try:
            m = s.recv(4096).decode()
        except socket.timeout:
            break
        log.write(m.replace('\n', ' ') + '\n')
        log.flush()
        if 'STOPPING=1' in m:
            break
EOF
NOTIFY_PY=$!
MPIDS+=("$NOTIFY_PY")
wait_until 3 test -S "$T/notify"
NOTIFY_SOCKET=$T/notify timeout 10 "$MASTER" -c "$T/etc" >"$T/daemon.out" 2>&1
rc=$?
check "daemon mode: the starting process exits 0 (got $rc)" [ "$rc" = 0 ]
DP=$(cat "$T/queue/pid/master.pid" 2>/dev/null)
[ -n "$DP" ] && MPIDS+=("$DP")
check "daemon mode: master -t finds it" quiet "$MASTER" -c "$T/etc" -t
check "daemon mode: its services answer" wait_until 5 answers tcp "$P3"
check "daemon mode: it runs in its own session" \
    [ "$(ps -o sid= -p "$DP" | tr -d ' ')" = "$DP" ]
check "sd_notify: READY=1 sent" wait_until 3 grep -q "READY=1" "$T/notify.log"
kill -HUP "$DP"
check "sd_notify: RELOADING=1 on SIGHUP" \
    wait_until 3 grep -q "RELOADING=1" "$T/notify.log"
kill -TERM "$DP"
check "daemon mode: SIGTERM stops it" wait_until 5 pid_gone "$DP"
check "sd_notify: STOPPING=1 sent" grep -q "STOPPING=1" "$T/notify.log"
wait "$NOTIFY_PY" 2>/dev/null
left=$(our_procs | tr '\n' ' ')
check "nothing of ours is left after the daemon (left: $left)" [ -z "$left" ]

# ---- master killed with kill -9: its children follow it -------------------
"$MASTER" -c "$T/etc" -f >"$T/master3.out" 2>&1 &
MP=$!
MPIDS+=("$MP")
wait_until 5 answers tcp "$P1"
CP=$(greeting_pid tcp "$P1")
kill -KILL "$MP"
wait "$MP" 2>/dev/null
check "kill -9 of master: its children exit too" wait_until 3 pid_gone "$CP"
no_procs() { [ -z "$(our_procs)" ]; }
check "kill -9 of master: nothing of ours is left" wait_until 3 no_procs
"$MASTER" -c "$T/etc" -f >"$T/master4.out" 2>&1 &
MP=$!
MPIDS+=("$MP")
check "after kill -9 the stale pid file does not block a new master" \
    wait_until 5 answers tcp "$P1"
kill -TERM "$MP"
wait "$MP"
rc=$?
check "... which stops cleanly (exit $rc)" [ "$rc" = 0 ]

# ---- stderr is the systemd journal and no maillog_file: each line once,
# through syslog (which ends in the journal), none copied to stderr ------
sed -i '/^maillog_file/d' "$T/etc/posta.conf"
for how in journal other; do
	: >"$T/$how.out"
	if [ $how = journal ]; then
		JS=$(stat -c '%d:%i' "$T/$how.out")
	else
		JS=0:0
	fi
	JOURNAL_STREAM=$JS "$MASTER" -c "$T/etc" -f >>"$T/$how.out" 2>&1 &
	MP=$!
	MPIDS+=("$MP")
	wait_until 5 answers tcp "$P1"
	kill -TERM "$MP"
	wait "$MP"
done
check "stderr is the journal (JOURNAL_STREAM), no maillog_file: no copy" \
    bash -c "! grep -q 'started:' '$T/journal.out'"
check "JOURNAL_STREAM naming another file: lines on stderr as ever" \
    grep -q 'posta/master\[[0-9]*\]: started:' "$T/other.out"

if [ $failed -gt 0 ]; then
	echo "# log follows"
	sed 's/^/# /' "$T/log" "$T"/*.out
fi
echo "1..$n"
exit 0
