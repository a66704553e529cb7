#!/usr/bin/env bash
# posta_ctl - posta start, status, reload, stop against a real master
# running tests/helpers/testd services on ports chosen at run time:
# status tells the truth (a stale pid file is not a running master),
# start refuses a second master and a broken configuration, reload
# applies a new master.conf and refuses a broken one, stop leaves no
# process behind.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
POSTA=$BUILD/bin/posta
TESTD=$BUILD/tests/helpers/testd
T=$(mktemp -d /tmp/posta_ctl.XXXXXX)
chmod 0755 "$T"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }

stale=
cleanup() {
	local pid
	# only what this test started: the master of $T and its children
	pid=$(cat "$T/queue/pid/master.pid" 2>/dev/null)
	if [ -n "$pid" ] && grep -qF "$T" "/proc/$pid/cmdline" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		sleep 1
		kill -KILL "$pid" 2>/dev/null
	fi
	for pid in $(procs_of_test); do kill -KILL "$pid" 2>/dev/null; done
	[ -n "$stale" ] && kill "$stale" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# procs_of_test - pids of live processes whose command line names $T
procs_of_test() {
	local d pid state
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[ "$pid" = $$ ] && continue
		grep -qF "$T/" "$d/cmdline" 2>/dev/null || continue
		state=$(sed 's/.*) \(.\).*/\1/' "$d/stat" 2>/dev/null)
		[ "$state" = Z ] || [ -z "$state" ] || echo "$pid"
	done
}

for f in "$POSTA" "$BUILD/bin/master" "$TESTD"; do
	if [ ! -x "$f" ]; then
		nok "$f is built"
		exit 1
	fi
done

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# greeting PORT - the first line a service on PORT sends, or nothing
greeting() {
	python3 - "$1" <<-'PY' 2>/dev/null
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
	print(s.makefile().readline().strip())
	PY
}
# wait_greeting PORT: retry for up to 5 s (a reload takes a moment)
wait_greeting() {
	local i g
	for i in $(seq 50); do
		g=$(greeting "$1")
		[ -n "$g" ] && { echo "$g"; return 0; }
		sleep 0.1
	done
	return 1
}

if [ "$(id -u)" = 0 ]; then owner=posta; else owner=$(id -un); fi
port1=$(free_port)
port2=$(free_port)
while [ "$port2" = "$port1" ]; do port2=$(free_port); done
E=$T/etc
mkdir -p "$E" "$T/queue" "$T/mail" "$T/log"
[ "$owner" = posta ] && chown posta "$T/log" "$T/mail"
cat >"$E/posta.conf" <<CONF
mydomain = ctl.test
queue_directory = $T/queue
daemon_directory = $BUILD/bin
mail_root = $T/mail
mail_owner = $owner
maillog_file = $T/log/posta.log
master_stop_timeout = 3s
CONF
# the tables posta.conf names by default (user_database, alias_maps)
printf 'demo@ctl.test:{PLAIN}demo\n' >"$E/users"
printf 'postmaster: demo@ctl.test\n' >"$E/aliases"
cat >"$E/master.conf" <<MCF
echo1  inet  127.0.0.1:$port1  1  $TESTD
idle   none  -                 1  $TESTD
MCF

run() {
	"$POSTA" -c "$E" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}

# ---- before start ---------------------------------------------------------
run status
check "status before start: not running, exit 1" \
    eval '[ $rc -eq 1 ] && [ "$(cat "$T/out")" = "posta is not running" ]'
run stop
check "stop when not running: exit 1, says so" \
    eval '[ $rc -eq 1 ] && grep -qx "posta: posta is not running" "$T/err"'
run reload
check "reload when not running: exit 1" [ $rc -eq 1 ]

# a stale pid file naming a live process that is not master
sleep 300 &
stale=$!
mkdir -p "$T/queue/pid"
echo "$stale" >"$T/queue/pid/master.pid"
run status
check "a stale pid file is not a running master" \
    eval '[ $rc -eq 1 ] && [ "$(cat "$T/out")" = "posta is not running" ]'
run stop
check "stop with a stale pid file signals nobody" \
    eval '[ $rc -eq 1 ] && kill -0 "$stale" 2>/dev/null'
kill "$stale" 2>/dev/null
wait "$stale" 2>/dev/null
stale=

# ---- start with a broken configuration ----------------------------------
cp "$E/master.conf" "$T/master.conf.good"
echo "broken inet 127.0.0.1:0 1 $TESTD" >>"$E/master.conf"
run start
check "start with a broken master.conf: exit 1, file:line, not started" \
    eval '[ $rc -eq 1 ] && grep -q "^$E/master.conf:3: inet listen" "$T/err" &&
    grep -q "^posta: not starting: 1 error in the configuration" "$T/err"'
cp "$T/master.conf.good" "$E/master.conf"

# ---- start ------------------------------------------------------------------
run start
check "posta start: exit 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] || sed 's/^/# /' "$T/err"
pid=$(sed -n 's/^posta started (pid \([0-9]*\))$/\1/p' "$T/out")
check "posta start reports the master pid" [ -n "$pid" ]
check "the pid file holds that pid" \
    [ "$(tr -d '\n' <"$T/queue/pid/master.pid")" = "$pid" ]
check "that process is master, with our configuration" \
    grep -qaF "$E" "/proc/$pid/cmdline"
run status
check "status: running, with its pid, exit 0" \
    eval '[ $rc -eq 0 ] && [ "$(cat "$T/out")" = "posta is running (pid $pid)" ]'

g=$(wait_greeting "$port1")
check "service echo1 answers on 127.0.0.1:$port1 ($g)" \
    [ "${g#testd echo1 pid=}" != "$g" ]
child1=$(echo "$g" | sed -n 's/.* pid=\([0-9]*\).*/\1/p')

run start
check "a second posta start fails clearly" \
    eval '[ $rc -eq 1 ] && grep -qx "posta: posta is already running (pid $pid)" "$T/err"'
run status
check "and the first master still runs" [ $rc -eq 0 ]

# ---- reload ------------------------------------------------------------------
echo "echo2  inet  127.0.0.1:$port2  1  $TESTD" >>"$E/master.conf"
run reload
check "posta reload: exit 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] || sed "s/^/# /" "$T/err"
g=$(wait_greeting "$port2")
check "after reload the new service answers on 127.0.0.1:$port2 ($g)" \
    [ "${g#testd echo2 pid=}" != "$g" ]
child2=$(echo "$g" | sed -n 's/.* pid=\([0-9]*\).*/\1/p')
run status
check "reload keeps the same master" \
    [ "$(cat "$T/out")" = "posta is running (pid $pid)" ]

cp "$E/master.conf" "$T/master.conf.two"
echo "bad bogus - 1 $TESTD" >>"$E/master.conf"
run reload
check "reload with a broken master.conf: exit 1, file:line" \
    eval '[ $rc -eq 1 ] && grep -q "^$E/master.conf:4: unknown service type \"bogus\"" "$T/err"'
g=$(greeting "$port1")
check "and the running services still answer" [ "${g#testd echo1 pid=}" != "$g" ]
cp "$T/master.conf.two" "$E/master.conf"

# every process of this test before stop: master and its children
before=$(procs_of_test | tr '\n' ' ')
check "master has children running testd ($before)" \
    [ "$(echo $before | wc -w)" -ge 3 ]

# ---- stop ------------------------------------------------------------------------
run stop
check "posta stop: exit 0, 'posta stopped'" \
    eval '[ $rc -eq 0 ] && [ "$(cat "$T/out")" = "posta stopped" ]'
gone=yes
for p in $pid $child1 $child2 $before; do
	if [ -d "/proc/$p" ] && [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$p/stat" 2>/dev/null)" != Z ]; then
		gone="no: $p"
	fi
done
check "no process left: master, services ($gone)" [ "$gone" = yes ]
check "no process names the test's directory" [ -z "$(procs_of_test)" ]
run status
check "status after stop: not running, exit 1" \
    eval '[ $rc -eq 1 ] && [ "$(cat "$T/out")" = "posta is not running" ]'
check "the service port is closed" [ -z "$(greeting "$port1")" ]

# ---- start again after stop ---------------------------------------------------
run start
check "posta start after stop works" [ $rc -eq 0 ]
[ $rc -eq 0 ] || sed "s/^/# /" "$T/err"
run stop
check "and stop again" eval '[ $rc -eq 0 ] && [ -z "$(procs_of_test)" ]'

echo "1..$n"
