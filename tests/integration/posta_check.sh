#!/usr/bin/env bash
# posta_check - "posta check", "posta config" and "posta map build" on the
# shipped conf/ and on broken copies of it: exit status, and the exact
# "file:line: message" the admin reads.  Also keeps conf/posta.conf and
# man/posta.conf.5 in step with the settings table.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
POSTA=$BUILD/bin/posta
T=$(mktemp -d /tmp/posta_check.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
# check DESC COND...: ok if the command succeeds
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }

if [ ! -x "$POSTA" ]; then
	nok "posta is built ($POSTA)"
	exit 1
fi
if [ "$(id -u)" = 0 ]; then owner=posta; else owner=$(id -un); fi

# mkconf DIR: a copy of conf/ with paths that exist in this test
mkconf() {
	mkdir -p "$1"
	cp "$ROOT"/conf/* "$1"/
	rm -f "$1"/*.service
	cat >>"$1/posta.conf" <<-CONF
	mydomain = check.test
	queue_directory = $T/queue
	daemon_directory = $BUILD/bin
	mail_root = $T/mail
	mail_owner = $owner
	CONF
}

# run DIR ARGS...: posta -c DIR ARGS; output in $T/out, $T/err, status $rc
run() {
	local d=$1; shift
	"$POSTA" -c "$d" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}

# has_line FILE TEXT: FILE has a line that is exactly TEXT
has_line() { grep -qxF -- "$2" "$1"; }
# lineno FILE TEXT: the number of the line that is exactly TEXT
lineno() { grep -nxF -- "$2" "$1" | head -n 1 | cut -d: -f1; }

# ---- the shipped configuration -------------------------------------------
good=$T/good
mkconf "$good"
run "$good" check
check "shipped conf/ passes posta check (exit 0)" [ "$rc" -eq 0 ]
check "posta check prints nothing when all is well" \
    [ ! -s "$T/out" -a ! -s "$T/err" ]
run "$good" check -v
check "posta check -v sums up" \
    grep -q "^posta: $good is valid: 3 files, 5 services" "$T/out"

# every documented default, uncommented, is accepted (paths set after)
all=$T/all
mkconf "$all"
sed -n 's/^#\([a-z_][a-z0-9_]* =.*\)$/\1/p' "$ROOT/conf/posta.conf" \
    >"$all/posta.conf"
tail -n 5 "$good/posta.conf" >>"$all/posta.conf"
run "$all" check
check "every commented default of conf/posta.conf is valid" \
    [ "$rc" -eq 0 -a ! -s "$T/err" ]

# ---- conf/posta.conf and posta.conf(5) document every setting -------------
empty=$T/empty
mkdir -p "$empty"
: >"$empty/posta.conf"
run "$empty" config
sed '/^$/,$d' "$T/out" | grep -v '^config_directory =' >"$T/defaults"
missing_conf=
missing_man=
while IFS= read -r line; do
	name=${line%% =*}
	value=${line#*= }
	[ "$value" = "$line" ] && value=
	if [ -n "$value" ]; then want="#$name = $value"; else want="#$name ="; fi
	has_line "$ROOT/conf/posta.conf" "$want" ||
		missing_conf="$missing_conf $name"
	entry=$(grep -E "^\.BR $name \"" "$ROOT/man/posta.conf.5")
	if [ -z "$entry" ]; then
		missing_man="$missing_man $name"
	elif [ -n "$value" ]; then
		case $entry in *"$value"*) ;; *) missing_man="$missing_man $name" ;; esac
	else
		case $entry in *"default: empty"*) ;; *) missing_man="$missing_man $name" ;; esac
	fi
done <"$T/defaults"
check "posta config lists the posta.conf settings" \
    [ "$(wc -l <"$T/defaults")" -ge 20 ]
check "conf/posta.conf shows every setting with its default:${missing_conf:- all there}" \
    [ -z "$missing_conf" ]
check "posta.conf(5) documents every setting with its default:${missing_man:- all there}" \
    [ -z "$missing_man" ]

# ---- hostile and broken posta.conf ----------------------------------------
b=$T/unknown
mkconf "$b"
echo "mydomian = typo.test" >>"$b/posta.conf"
ln=$(lineno "$b/posta.conf" "mydomian = typo.test")
run "$b" check
check "unknown setting: exit 1" [ "$rc" -eq 1 ]
check "unknown setting: file:line named" \
    has_line "$T/err" "$b/posta.conf:$ln: unknown setting \"mydomian\""

b=$T/badvalue
mkconf "$b"
printf 'master_throttle_count = 0\nmaster_stop_timeout = 99999999999999999999\ndebug = maybe\n' \
    >>"$b/posta.conf"
ln=$(lineno "$b/posta.conf" "master_throttle_count = 0")
run "$b" check
check "bad values: exit 1" [ "$rc" -eq 1 ]
check "bad integer: file:line and range" has_line "$T/err" \
    "$b/posta.conf:$ln: bad value \"0\" for master_throttle_count: expected an integer in range 1..1000"
check "overflowing time: file:line" grep -q \
    "^$b/posta.conf:$((ln + 1)): bad value \"99999999999999999999\" for master_stop_timeout" "$T/err"
check "bad boolean: file:line" has_line "$T/err" \
    "$b/posta.conf:$((ln + 2)): bad value \"maybe\" for debug: expected yes or no"
check "one run reports all three errors" [ "$(wc -l <"$T/err")" -eq 3 ]

b=$T/hostile
mkconf "$b"
{ printf 'mydomain = a\0b\n'; printf 'x%.0s' $(seq 9000); echo; printf '  = nothing\n'; } \
    >"$b/posta.conf.head"
cat "$b/posta.conf.head" "$b/posta.conf" >"$b/posta.conf.new"
mv "$b/posta.conf.new" "$b/posta.conf"
run "$b" check
check "NUL byte, 9000-byte line, leading continuation: exit 1" [ "$rc" -eq 1 ]
check "NUL byte reported at line 1" has_line "$T/err" "$b/posta.conf:1: NUL byte in line"
check "long line reported at line 2" has_line "$T/err" \
    "$b/posta.conf:2: line too long (over 8192 bytes)"
check "stray continuation reported at line 3" has_line "$T/err" \
    "$b/posta.conf:3: continuation line without a setting before it"

b=$T/noconf
mkdir -p "$b"
cp "$ROOT/conf/master.conf" "$b/"
run "$b" check
check "missing posta.conf: exit 1 and named" \
    [ "$rc" -eq 1 -a "$(grep -c "^$b/posta.conf: cannot open" "$T/err")" -eq 1 ]

b=$T/owner
mkconf "$b"
echo "mail_owner = no_such_user_posta" >>"$b/posta.conf"
ln=$(lineno "$b/posta.conf" "mail_owner = no_such_user_posta")
run "$b" check
check "mail_owner that does not exist: exit 1, file:line" \
    eval '[ "$rc" -eq 1 ] && has_line "$T/err" \
    "$b/posta.conf:$ln: mail_owner: no such user \"no_such_user_posta\""'
sed -i "s/^mail_owner = no_such_user_posta/mail_owner = root/" "$b/posta.conf"
run "$b" check
check "mail_owner root is refused" \
    has_line "$T/err" "$b/posta.conf:$ln: mail_owner: must not be root (\"root\" has uid 0)"

b=$T/paths
mkconf "$b"
printf 'queue_directory = %s/no/such/queue\ndaemon_directory = relative/bin\n' "$T" \
    >>"$b/posta.conf"
ln=$(lineno "$b/posta.conf" "queue_directory = $T/no/such/queue")
run "$b" check
check "queue_directory without parent: exit 1, file:line" \
    eval '[ "$rc" -eq 1 ] && has_line "$T/err" \
    "$b/posta.conf:$ln: queue_directory: parent directory $T/no/such of $T/no/such/queue does not exist"'
check "relative daemon_directory: file:line" has_line "$T/err" \
    "$b/posta.conf:$((ln + 1)): daemon_directory: \"relative/bin\" is not an absolute path"

b=$T/log
mkconf "$b"
printf 'maillog_file = %s\nmaillog_file = %s/no/such/log\n' "$T" "$T" >"$b/posta.conf.add"
head -n 1 "$b/posta.conf.add" >>"$b/posta.conf"
ln=$(lineno "$b/posta.conf" "maillog_file = $T")
run "$b" check
check "maillog_file naming a directory: file:line" \
    eval '[ "$rc" -eq 1 ] && has_line "$T/err" "$b/posta.conf:$ln: maillog_file: $T is a directory"'
tail -n 1 "$b/posta.conf.add" >>"$b/posta.conf"
run "$b" check
check "maillog_file in a missing directory: the later line is named" \
    eval '[ "$rc" -eq 1 ] && has_line "$T/err" \
    "$b/posta.conf:$((ln + 1)): maillog_file: parent directory $T/no/such of $T/no/such/log does not exist"'

# ---- tables named in settings ------------------------------------------
b=$T/tables
mkconf "$b"
echo "lonelykey" >>"$b/aliases"
ln=$(wc -l <"$b/aliases")
run "$b" check
check "a broken default alias table: exit 1, the table's file:line" \
    eval '[ "$rc" -eq 1 ] && has_line "$T/err" \
    "$b/posta.conf: alias_maps (default): $b/aliases:$ln: missing value for key \"lonelykey\" (expected: key whitespace value)"'
mkconf "$b"
echo "alias_maps = bdb:$b/aliases, file:$b/aliases, bdb:$b/aliases" >>"$b/posta.conf"
sln=$(wc -l <"$b/posta.conf")
run "$b" check
check "a bdb: table not built: the setting's file:line" \
    eval '[ "$rc" -eq 1 ] && grep -q "^$b/posta.conf:$sln: alias_maps: $b/aliases.db: " "$T/err"'
check "a table named twice is reported once" \
    [ "$(grep -c "aliases.db" "$T/err")" -eq 1 ]
run "$b" map build "$b/aliases"
run "$b" check -v
check "after posta map build the check passes" \
    eval '[ "$rc" -eq 0 ] && grep -q " 3 tables," "$T/out"'
echo "relay_recipient_maps = file:$b/nonexistent" >>"$b/smtpd.conf"
run "$b" check
check "a missing table named in smtpd.conf: that file's line" \
    eval '[ "$rc" -eq 1 ] && has_line "$T/err" \
    "$b/smtpd.conf:1: relay_recipient_maps: $b/nonexistent: No such file or directory"'
rm "$b/smtpd.conf"
echo "one none - 1 /bin/true -o alias_maps=file:$b/missing" >>"$b/master.conf"
mln=$(wc -l <"$b/master.conf")
run "$b" check
check "a missing table in a -o override: master.conf's line" \
    eval '[ "$rc" -eq 1 ] && has_line "$T/err" \
    "$b/master.conf:$mln: alias_maps: $b/missing: No such file or directory"'
mkconf "$b"
echo "broken-user-line-without-password" >>"$b/users"
run "$b" check
check "a broken user database: exit 1, user_database named" \
    eval '[ "$rc" -eq 1 ] && grep -q "^$b/posta.conf: user_database (default): $b/users:" "$T/err"'

# ---- a program's own file -------------------------------------------------
b=$T/prog
mkconf "$b"
printf 'debug = yes\nqueue_directory = /tmp\nsmtpd_nonsense = 1\n' >"$b/smtpd.conf"
run "$b" check
check "smtpd.conf errors: exit 1" [ "$rc" -eq 1 ]
check "a shared setting may be overridden in smtpd.conf" \
    [ "$(grep -c "smtpd.conf:[12]:" "$T/err")" -eq 0 ]
check "unknown setting in smtpd.conf: file:line" has_line "$T/err" \
    "$b/smtpd.conf:3: unknown setting \"smtpd_nonsense\""

# ---- master.conf ------------------------------------------------------------
b=$T/master
mkconf "$b"
cat >>"$b/master.conf" <<-MCF
	smtp inet 127.0.0.1:99999 1 smtpd
	one  none - 1 /bin/true -o no_such_setting=1
	two  none - 1 /bin/true -o debug=perhaps
	dup  none - 1 /bin/true
	dup  none - 2 /bin/true
	short inet 2525
	bad  bogus - 1 /bin/true
MCF
ln=$(lineno "$b/master.conf" "smtp inet 127.0.0.1:99999 1 smtpd")
run "$b" check
check "broken master.conf: exit 1" [ "$rc" -eq 1 ]
check "bad port: master.conf:line" grep -q \
    "^$b/master.conf:$ln: inet listen \"127.0.0.1:99999\": bad port" "$T/err"
check "-o unknown setting: master.conf:line" has_line "$T/err" \
    "$b/master.conf:$((ln + 1)): unknown setting \"no_such_setting\""
check "-o bad value: master.conf:line" has_line "$T/err" \
    "$b/master.conf:$((ln + 2)): bad value \"perhaps\" for debug: expected yes or no"
check "duplicate service: master.conf:line" has_line "$T/err" \
    "$b/master.conf:$((ln + 4)): duplicate service \"dup\" (first defined at $b/master.conf:$((ln + 3)))"
check "missing fields: master.conf:line" grep -q \
    "^$b/master.conf:$((ln + 5)): missing fields" "$T/err"
check "unknown type: master.conf:line" has_line "$T/err" \
    "$b/master.conf:$((ln + 6)): unknown service type \"bogus\": expected inet, unix or none"

b=$T/master2
mkconf "$b"
echo "ghost none - 1 no_such_program" >>"$b/master.conf"
ln=$(lineno "$b/master.conf" "ghost none - 1 no_such_program")
run "$b" check
check "a program that is not there is a warning, not an error" \
    eval '[ "$rc" -eq 0 ] && grep -q \
    "^$b/master.conf:$ln: warning: service ghost: cannot run $BUILD/bin/no_such_program" "$T/err"'
rm "$b/master.conf"
run "$b" check
check "missing master.conf: exit 1 and named" \
    eval '[ "$rc" -eq 1 ] && grep -q "^$b/master.conf: cannot open" "$T/err"'

# ---- posta config -------------------------------------------------------------
run "$good" config -n
sort "$T/out" >"$T/got"
{
	echo "mydomain = check.test"
	echo "queue_directory = $T/queue"
	echo "daemon_directory = $BUILD/bin"
	echo "mail_root = $T/mail"
	[ "$owner" != posta ] && echo "mail_owner = $owner"
} | sort >"$T/want"
check "posta config -n prints exactly the changed settings" \
    eval '[ "$rc" -eq 0 ] && cmp -s "$T/got" "$T/want"'
echo "debug = yes" >"$good/imapd.conf"
run "$good" config -n
check "posta config -n shows a program file's change under its name" \
    [ "$(tail -n 3 "$T/out" | tr '\n' '|')" = "|# imapd.conf|debug = yes|" ]
rm "$good/imapd.conf"
run "$good" config mydomain
check "posta config NAME prints that one" \
    eval '[ "$rc" -eq 0 ] && [ "$(cat "$T/out")" = "mydomain = check.test" ]'
run "$good" config master_stop_timeout mynetworks
check "posta config NAME... prints defaults too, in order asked" \
    [ "$(tr '\n' '|' <"$T/out")" = "master_stop_timeout = 10s|mynetworks = 127.0.0.0/8, [::1]/128|" ]
run "$good" config -n master_stop_timeout mydomain
check "posta config -n NAME prints only a changed one" \
    [ "$(cat "$T/out")" = "mydomain = check.test" ]
run "$good" config mydomain no_such_thing
check "posta config with an unknown name: exit 1, known ones printed" \
    eval '[ "$rc" -eq 1 ] && [ "$(cat "$T/out")" = "mydomain = check.test" ] &&
    has_line "$T/err" "posta: unknown setting \"no_such_thing\""'
run "$good" config
check "posta config prints every setting" \
    eval '[ "$rc" -eq 0 ] && has_line "$T/out" "master_throttle_count = 5" &&
    has_line "$T/out" "config_directory = $good"'
run "$T/badvalue" config
check "posta config on a broken file: exit 1 with file:line" \
    eval '[ "$rc" -eq 1 ] && grep -q "^$T/badvalue/posta.conf:[0-9]*: bad value" "$T/err"'
"$POSTA" -c "$T/nonexistent" status >/dev/null 2>"$T/err"
rc=$?
check "a missing config directory is named" \
    eval '[ $rc -eq 1 ] && grep -q "^posta: configuration directory $T/nonexistent: " "$T/err"'
"$POSTA" -c "$good" frobnicate >/dev/null 2>"$T/err"
rc=$?
check "unknown command: exit 2 and usage" \
    eval '[ $rc -eq 2 ] && grep -q "unknown command \"frobnicate\"" "$T/err" &&
    grep -q "^usage: posta" "$T/err"'
POSTA_CONFIG_DIR=$good "$POSTA" config mydomain >"$T/out" 2>&1
check "POSTA_CONFIG_DIR picks the configuration" \
    [ "$(cat "$T/out")" = "mydomain = check.test" ]

# ---- posta map build -----------------------------------------------------------
printf '# users\nalice  alice@example.test\nBob:   bob@example.test\n' >"$T/virtual"
run "$good" map build "$T/virtual"
check "posta map build: exit 0, quiet" [ "$rc" -eq 0 -a ! -s "$T/err" ]
check "posta map build made a Berkeley DB" \
    eval '[ -f "$T/virtual.db" ] && file "$T/virtual.db" | grep -qi "berkeley"'
cp -r "$good" "$T/withdb"
echo "alias_maps = bdb:$T/virtual" >>"$T/withdb/posta.conf"
run "$T/withdb" check
check "posta check accepts the built bdb: table" eval '[ $rc -eq 0 ] && [ ! -s "$T/err" ]'
printf 'alice alice@example.test\nbob\n' >"$T/broken"
run "$good" map build "$T/broken"
check "posta map build of a broken table: exit 1, file:line, no .db" \
    eval '[ "$rc" -eq 1 ] && grep -q "^$T/broken:2: missing value for key \"bob\"" "$T/err" &&
    [ ! -e "$T/broken.db" ]'
run "$good" map build
check "posta map build without a file: usage, exit 2" [ "$rc" -eq 2 ]

echo "1..$n"
