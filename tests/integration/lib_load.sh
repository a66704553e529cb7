# lib_load.sh - mail load for integration tests with Postfix's smtp-source(1)
#
# Not a test itself (no x bit, no TAP): source it from a bash test,
#
#	. "$(dirname "$0")/lib_load.sh"
#
# then
#
#	load_send TARGET COUNT SIZE SESSIONS [FROM [TO]]
#	    Send COUNT messages of SIZE body bytes over SESSIONS parallel
#	    SMTP sessions to TARGET (127.0.0.1:PORT or unix:/path) and wait.
#	    Returns 0 when smtp-source succeeded and every message got its
#	    250, else 1 (2 for bad arguments or no smtp-source).  Sets
#	    LOAD_RC (smtp-source's exit status), LOAD_ACCEPTED (messages that
#	    got 250), LOAD_ERR (smtp-source's last complaint, or empty) and
#	    LOAD_SECONDS (wall time, e.g. 2.417).
#
#	load_start TARGET COUNT SIZE SESSIONS [FROM [TO]]
#	load_wait
#	    The same in two halves: load_start runs smtp-source in the
#	    background and sets LOAD_PID (kill qmgr or local meanwhile);
#	    load_wait waits for it and sets what load_send sets.  One load at
#	    a time.
#
#	load_maildir_count MAILDIR
#	    Prints the number of messages in MAILDIR/new and MAILDIR/cur.
#
#	load_maildir_wait MAILDIR N SECONDS
#	    Polls every 0.1 s until MAILDIR holds at least N messages;
#	    0 when it does, 1 after SECONDS.
#
#	load_maildir_ids MAILDIR
#	    Prints "MESSAGES UNIQUE DUPLICATES NOID": smtp-source gives every
#	    message a Message-Id unique within the run (pid.session.counter),
#	    so DUPLICATES (messages whose Message-Id was already seen) counts
#	    deliveries that were repeated, e.g. after kill -9 of local, and
#	    UNIQUE == COUNT says that none was lost.  NOID counts messages
#	    without a Message-Id (not from smtp-source).
#
# FROM and TO default to $LOAD_FROM and $LOAD_TO (load@source.test and
# demo@example.test).  $LOAD_OPTS adds smtp-source options, e.g. "-d" to
# send all the messages of a session over one connection (the default is a
# new connection per message, like most MX traffic) or "-r 3" for three
# recipients per message.  Do not add -A: smtp-source then counts
# rejected messages as sent.
#
# What smtp-source does (see smtp-source(1)): HELO, MAIL FROM, RCPT TO,
# DATA with From:, To:, Date:, Message-Id: and SIZE bytes of 'X' lines,
# QUIT; no pipelining.  -c makes it print a counter after each DATA; it
# stops at the first reply that is not 2xx/3xx (exit status 1, "fatal:
# ..." on stderr), and that message is in the counter already.  With
# several sessions, a message whose final dot was sent when smtp-source
# gave up may still have been accepted: after a failure LOAD_ACCEPTED is
# the best count smtp-source can give, not an exact one.

# shellcheck disable=SC2034	# the LOAD_* results are for the caller
LOAD_FROM=${LOAD_FROM:-load@source.test}
LOAD_TO=${LOAD_TO:-demo@example.test}
LOAD_OPTS=${LOAD_OPTS:-}
LOAD_PID=
LOAD_RC=
LOAD_ACCEPTED=
LOAD_ERR=
LOAD_SECONDS=
_load_count=
_load_out=
_load_err=
_load_t0=

# _load_now - nanoseconds since the epoch
_load_now() {
	date +%s%N
}

_load_isnum() {
	case $1 in
	'' | *[!0-9]*) return 1 ;;
	esac
	[ ${#1} -le 9 ]
}

load_start() {
	local target=$1 count=$2 size=$3 sessions=$4
	local from=${5:-$LOAD_FROM} to=${6:-$LOAD_TO}

	if [ $# -lt 4 ] || [ $# -gt 6 ]; then
		echo "usage: load_start TARGET COUNT SIZE SESSIONS [FROM [TO]]" >&2
		return 2
	fi
	if [ -n "$LOAD_PID" ]; then
		echo "load_start: a load is running already ($LOAD_PID)" >&2
		return 2
	fi
	if ! _load_isnum "$count" || ! _load_isnum "$size" ||
	    ! _load_isnum "$sessions" || [ "$count" -lt 1 ] ||
	    [ "$sessions" -lt 1 ]; then
		echo "load_start: bad count, size or sessions:" \
		    "'$count' '$size' '$sessions'" >&2
		return 2
	fi
	if ! command -v smtp-source >/dev/null 2>&1; then
		echo "load_start: smtp-source not found (package postfix)" >&2
		return 2
	fi
	_load_count=$count
	_load_out=$(mktemp "${TMPDIR:-/tmp}/load-out.XXXXXX") || return 2
	_load_err=$(mktemp "${TMPDIR:-/tmp}/load-err.XXXXXX") || {
		rm -f "$_load_out"
		return 2
	}
	_load_t0=$(_load_now)
	# shellcheck disable=SC2086	# LOAD_OPTS is a list of words
	smtp-source -c $LOAD_OPTS -s "$sessions" -m "$count" -l "$size" \
	    -f "$from" -t "$to" "$target" </dev/null >"$_load_out" \
	    2>"$_load_err" &
	LOAD_PID=$!
	return 0
}

load_wait() {
	local last t1

	if [ -z "$LOAD_PID" ]; then
		echo "load_wait: no load running" >&2
		return 2
	fi
	wait "$LOAD_PID"
	LOAD_RC=$?
	t1=$(_load_now)
	LOAD_PID=
	LOAD_SECONDS=$(awk -v a="$_load_t0" -v b="$t1" \
	    'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	# the counter: "1\r2\r...N\r\n"; its last number
	last=$(tr '\r' '\n' <"$_load_out" | awk '/^[0-9]+$/ { n = $1 }
	    END { print n + 0 }')
	LOAD_ERR=$(grep -v '^$' "$_load_err" | tail -n 1)
	rm -f "$_load_out" "$_load_err"
	# a message refused at the final dot is in the counter already
	if [ "$LOAD_RC" -ne 0 ] && [ "$last" -gt 0 ] &&
	    printf '%s' "$LOAD_ERR" | grep -q 'end of data rejected'; then
		last=$((last - 1))
	fi
	LOAD_ACCEPTED=$last
	[ "$LOAD_RC" -eq 0 ] && [ "$LOAD_ACCEPTED" -eq "$_load_count" ]
}

load_send() {
	load_start "$@" || return $?
	load_wait
}

load_maildir_count() {
	local n=0 d f

	for d in "$1/new" "$1/cur"; do
		[ -d "$d" ] || continue
		for f in "$d"/*; do
			[ -f "$f" ] && n=$((n + 1))
		done
	done
	echo "$n"
}

load_maildir_wait() {
	local md=$1 want=$2 deadline

	deadline=$(( $(_load_now) / 1000000 + $3 * 1000 ))
	while :; do
		[ "$(load_maildir_count "$md")" -ge "$want" ] && return 0
		[ $(( $(_load_now) / 1000000 )) -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

load_maildir_ids() {
	local md=$1 total ids

	total=$(load_maildir_count "$md")
	# the value of the first Message-Id: line in each message's header
	ids=$(find "$md/new" "$md/cur" -maxdepth 1 -type f \
	    -exec awk 'FNR == 1 { hdr = 1 }
		hdr && /^\r?$/ { hdr = 0; nextfile }
		hdr && tolower($0) ~ /^message-id:/ {
			sub(/\r$/, ""); print tolower($2); nextfile
		}' {} + 2>/dev/null | sort | uniq -c)
	printf '%s\n' "$ids" | awk -v total="$total" '
	    NF == 2 { uniq++; dup += $1 - 1; seen += $1 }
	    END { printf "%d %d %d %d\n", total, uniq, dup, total - seen }'
}
