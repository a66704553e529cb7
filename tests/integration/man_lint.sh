#!/usr/bin/env bash
# man_lint - every manual page in man/ formats without a warning under
# groff -ww and renders with man(1); one TAP line per page and check.
set -u
cd "$(dirname "$0")/../.."
n=0
tmp=$(mktemp /tmp/man_lint.XXXXXX)
trap 'rm -f "$tmp"' EXIT
pages=(man/*.[1-8])
if [ ! -e "${pages[0]}" ]; then
	echo "not ok 1 - man/ has manual pages"
	exit 1
fi
for page in "${pages[@]}"; do
	out=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
	n=$((n + 1))
	if [ -z "$out" ]; then
		echo "ok $n - $page: groff -man -ww is silent"
	else
		echo "not ok $n - $page: groff -man -ww warns"
		printf '%s\n' "$out" | sed 's/^/# /'
	fi
	n=$((n + 1))
	warn=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >"$tmp")
	text=$(cat "$tmp")
	name=$(basename "$page")
	name=${name%.*}
	if [ -z "$warn" ] && printf '%s\n' "$text" | grep -q '^NAME' &&
	    printf '%s\n' "$text" | grep -qi "^ *$name "; then
		echo "ok $n - $page: man renders NAME with its name, no warnings"
	else
		echo "not ok $n - $page: man -l renders badly"
		printf '%s\n' "$warn" | sed 's/^/# /'
	fi
done
echo "1..$n"
