#!/usr/bin/env bash
# install - "make install DESTDIR=..." (with the BUILD and SANITIZE the
# test runner exports) yields the FHS layout: programs in
# /usr/lib/posta, posta in /usr/sbin, the configuration in /etc/posta
# (never overwriting the admin's files), manual pages, the systemd unit
# with the right paths, the queue and mailbox directories.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/posta_install.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }

D=$T/root
make -s BUILD="$BUILD" ${SANITIZE:+SANITIZE="$SANITIZE"} install DESTDIR="$D" >"$T/log" 2>&1
rc=$?
check "make install DESTDIR=... succeeds" [ $rc -eq 0 ]
[ $rc -eq 0 ] || sed 's/^/# /' "$T/log"

check "master in /usr/lib/posta, executable" [ -x "$D/usr/lib/posta/master" ]
check "posta in /usr/sbin, executable" [ -x "$D/usr/sbin/posta" ]
check "posta is not in /usr/lib/posta" [ ! -e "$D/usr/lib/posta/posta" ]
for p in "$BUILD"/bin/*; do
	name=${p##*/}
	case $name in posta|sendmail|mailq) continue ;; esac
	check "program $name installed in /usr/lib/posta" \
	    cmp -s "$p" "$D/usr/lib/posta/$name"
done
check "etc/posta/posta.conf installed" [ -f "$D/etc/posta/posta.conf" ]
check "etc/posta/master.conf installed" [ -f "$D/etc/posta/master.conf" ]
check "the unit is not among the configuration" [ ! -e "$D/etc/posta/posta.service" ]
check "man8/posta.8 installed" [ -f "$D/usr/share/man/man8/posta.8" ]
check "man5/posta.conf.5 installed" [ -f "$D/usr/share/man/man5/posta.conf.5" ]
for m in man/*.[1-8]; do
	sec=${m##*.}
	check "$m installed in man$sec" [ -f "$D/usr/share/man/man$sec/${m##*/}" ]
done
U=$D/usr/lib/systemd/system/posta.service
check "systemd unit installed" [ -f "$U" ]
check "unit: Type=notify" grep -qx "Type=notify" "$U"
check "unit: runs master -f" grep -qx "ExecStart=/usr/lib/posta/master -f" "$U"
check "unit: reload is SIGHUP" grep -qxF 'ExecReload=/bin/kill -HUP $MAINPID' "$U"
check "queue directory created" [ -d "$D/var/spool/posta" ]
check "mailbox directory created, not world-readable" \
    eval '[ -d "$D/var/lib/posta/mail" ] && [ "$(stat -c %a "$D/var/lib/posta/mail")" = 750 ]'
if [ "$(id -u)" = 0 ]; then
	check "mail directory owned by posta, queue directory by root (root install)" \
	    eval '[ "$(stat -c %U "$D/var/spool/posta")" = root ] &&
	    [ "$(stat -c %U:%G "$D/var/lib/posta/mail")" = posta:posta ]'
fi

# the installed posta runs and checks the installed configuration
"$D/usr/sbin/posta" -c "$D/etc/posta" config -n >"$T/out" 2>&1
rc=$?
check "the installed posta.conf parses and sets nothing but comments" \
    eval '[ $rc -eq 0 ] && [ ! -s "$T/out" ]'
"$D/usr/sbin/posta" -c "$D/etc/posta" config config_directory >"$T/out" 2>&1
check "installed posta reads the installed directory" \
    [ "$(cat "$T/out")" = "config_directory = $D/etc/posta" ]

# a second install keeps the admin's edits
echo "mydomain = admin.test" >>"$D/etc/posta/posta.conf"
make -s BUILD="$BUILD" ${SANITIZE:+SANITIZE="$SANITIZE"} install DESTDIR="$D" >"$T/log" 2>&1
check "a second install succeeds" [ $? -eq 0 ]
check "and keeps the admin's posta.conf" \
    grep -qx "mydomain = admin.test" "$D/etc/posta/posta.conf"
check "and says so" grep -q "keeping existing /etc/posta/posta.conf" "$T/log"

# other directories are honoured, paths in the files follow them; the
# compiled-in defaults change too, so this builds in a directory of its own
# (the shared build must keep the default paths for the other tests)
D2=$T/other
make -s BUILD="$T/build" ${SANITIZE:+SANITIZE="$SANITIZE"} install DESTDIR="$D2" PREFIX=/usr/local \
    SYSCONFDIR=/usr/local/etc/posta SPOOLDIR=/var/spool/posta-test \
    >"$T/log" 2>&1
check "install with PREFIX=/usr/local" [ $? -eq 0 ]
check "programs in /usr/local/lib/posta, posta in /usr/local/sbin" \
    [ -x "$D2/usr/local/lib/posta/master" -a -x "$D2/usr/local/sbin/posta" ]
check "configuration in /usr/local/etc/posta" [ -f "$D2/usr/local/etc/posta/posta.conf" ]
check "its posta.conf comments name the queue directory given" \
    grep -qx "#queue_directory = /var/spool/posta-test" "$D2/usr/local/etc/posta/posta.conf"
check "the unit runs /usr/local/lib/posta/master" \
    grep -qx "ExecStart=/usr/local/lib/posta/master -f" "$D2/usr/local/lib/systemd/system/posta.service"
"$D2/usr/local/sbin/posta" config config_directory >"$T/out" 2>&1
check "that build's posta looks in /usr/local/etc/posta by default" \
    grep -q "/usr/local/etc/posta" "$T/out"

# a normal user stages a tree: no chown, and it still works
if [ "$(id -u)" = 0 ]; then
	D3=$T/user
	mkdir -p "$D3"
	chmod 0755 "$T"
	chown nobody "$D3"
	bin=$BUILD
	case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
	runuser -u nobody -- ./tools/install-tree "$D3" "$bin/bin" /usr/lib/posta \
	    /usr/sbin /etc/posta /usr/share/man /var/spool/posta \
	    /var/lib/posta/mail >"$T/log" 2>&1
	rc=$?
	check "install-tree as a normal user into a DESTDIR works" [ $rc -eq 0 ]
	[ $rc -eq 0 ] || sed 's/^/# /' "$T/log"
	check "and leaves the queue directory to that user" \
	    [ "$(stat -c %U "$D3/var/spool/posta" 2>/dev/null)" = nobody ]
fi

echo "1..$n"
