#!/usr/bin/env bash
# sandbox - tools/sandbox, the script behind make run/start/stop, in a
# temporary RUNDIR: start writes the configuration and runs master in the
# background with its log file, stop stops it, run keeps master in the
# foreground until Ctrl-C (SIGINT to the whole process group).
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BIN=$BUILD/bin
R=$(mktemp -d /tmp/posta_sandbox.XXXXXX)
chmod 0755 "$R"
RUN=$R/run
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }

# live - pids of live processes whose command line names $R
live() {
	local d state
	for d in /proc/[0-9]*; do
		grep -qF "$R/" "$d/cmdline" 2>/dev/null || continue
		state=$(sed 's/.*) \(.\).*/\1/' "$d/stat" 2>/dev/null)
		[ "$state" = Z ] || [ -z "$state" ] || echo "${d#/proc/}"
	done
}
cleanup() {
	local p
	for p in $(live); do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$R"
}
trap cleanup EXIT

if [ ! -x "$BIN/master" ] || [ ! -x "$BIN/posta" ]; then
	nok "master and posta are built in $BIN"
	exit 1
fi
if [ "$(id -u)" = 0 ]; then owner=posta; else owner=$(id -un); fi

# ports chosen at run time: other tests (or a make run) may use 2525
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
POSTA_SMTP_PORT=$(free_port)
POSTA_SUBMISSION_PORT=$(free_port)
POSTA_SUBMISSIONS_PORT=$(free_port)
export POSTA_SMTP_PORT POSTA_SUBMISSION_PORT POSTA_SUBMISSIONS_PORT

./tools/sandbox start "$RUN" "$BIN" >"$R/out" 2>&1
check "sandbox start: exit 0" [ $? -eq 0 ]
check "it writes the sandbox posta.conf" \
    eval 'grep -qx "queue_directory = $RUN/queue" "$RUN/etc/posta.conf" &&
    grep -qx "daemon_directory = $BIN" "$RUN/etc/posta.conf" &&
    grep -qx "mydomain = example.test" "$RUN/etc/posta.conf" &&
    grep -qx "mail_owner = $owner" "$RUN/etc/posta.conf" &&
    grep -qx "maillog_file = $RUN/log/posta.log" "$RUN/etc/posta.conf"'
check "the sandbox configuration passes posta check" \
    "$BIN/posta" -c "$RUN/etc" check
"$BIN/posta" -c "$RUN/etc" status >"$R/out" 2>&1
check "master runs in the background" [ $? -eq 0 ]
check "and logs into RUNDIR/log/posta.log" \
    grep -q "^posta/master\[[0-9]*\]: " "$RUN/log/posta.log"
if [ -f conf/users ]; then
	check "conf/users copied" cmp -s conf/users "$RUN/etc/users"
fi
./tools/sandbox start "$RUN" "$BIN" >"$R/out" 2>&1
rc=$?
# the sandbox is a working mail server for example.test
if [ -x "$BIN/smtpd" ]; then
	for i in $(seq 50); do
		swaks --server 127.0.0.1 --port "$POSTA_SMTP_PORT" \
		    --from someone@example.org --to demo@example.test \
		    --header "Subject: sandbox" >"$R/swaks" 2>&1 && break
		sleep 0.1
	done
	check "swaks sends to demo@example.test" grep -q "250 2.0.0" "$R/swaks"
	md=$RUN/mail/example.test/demo/Maildir/new
	for i in $(seq 100); do
		[ -n "$(ls "$md" 2>/dev/null)" ] && break
		sleep 0.1
	done
	check "the message is in demo's Maildir" [ -n "$(ls "$md" 2>/dev/null)" ]
	POSTA_CONFIG_DIR=$RUN/etc "$BIN/mailq" >"$R/mailq" 2>&1
	check "mailq works on the sandbox" grep -q "Mail queue is empty" "$R/mailq"
fi

check "a second sandbox start fails" \
    eval '[ $rc -ne 0 ] && grep -q "already running" "$R/out"'
./tools/sandbox stop "$RUN" "$BIN" >"$R/out" 2>&1
check "sandbox stop: exit 0" [ $? -eq 0 ]
"$BIN/posta" -c "$RUN/etc" status >/dev/null 2>&1
rc=$?
check "nothing runs after stop" eval '[ $rc -eq 1 ] && [ -z "$(live)" ]'

# the admin's edits survive once the generated line is gone
sed -i '1d; s/^mydomain = .*/mydomain = mine.test/' "$RUN/etc/posta.conf"
./tools/sandbox start "$RUN" "$BIN" >"$R/out" 2>&1
check "an edited posta.conf is kept" \
    eval 'grep -qx "mydomain = mine.test" "$RUN/etc/posta.conf" &&
    grep -q "keeping your" "$R/out"'
./tools/sandbox stop "$RUN" "$BIN" >/dev/null 2>&1
rm "$RUN/etc/posta.conf"

# run: foreground, logs on the terminal, Ctrl-C (SIGINT to the group)
setsid ./tools/sandbox run "$RUN" "$BIN" >"$R/out" 2>&1 &
pgid=$!
for i in $(seq 50); do
	"$BIN/posta" -c "$RUN/etc" status >/dev/null 2>&1 && break
	sleep 0.1
done
"$BIN/posta" -c "$RUN/etc" status >"$R/status" 2>&1
check "sandbox run: master runs in the foreground" \
    [ "$(cat "$R/status")" = "posta is running (pid $pgid)" ]
check "sandbox run: no log file, logs on the terminal" \
    eval 'grep -qx "maillog_file =" "$RUN/etc/posta.conf" &&
    grep -q "^posta/master\[$pgid\]: " "$R/out"'
kill -INT -- -"$pgid"
for i in $(seq 100); do
	kill -0 "$pgid" 2>/dev/null || break
	sleep 0.1
done
wait "$pgid"
rc=$?
check "Ctrl-C stops it: exit 0" [ $rc -eq 0 ]
check "and nothing is left running" [ -z "$(live)" ]

echo "1..$n"
