#!/usr/bin/env bash
# the command's own documentation: 'zerofs --help' lists the commands, each
# command's --help its usage and options (exit 0), 'zerofs version'; a bad
# option is one line pointing at --help; the man page (built from
# man/zerofs.8.scd when scdoc is installed) renders without a warning and
# names every command; the bash completion completes commands, options and
# -o lists, and knows the same commands as --help; make install puts the
# man page and the completion where man and bash-completion look.
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(dirname "$ZEROFS")
man_page=$build/man/zerofs.8

# the commands 'zerofs --help' lists, one a line
commands() { $ZEROFS --help | sed -n '/^commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p'; }

test_expect_success 'zerofs --help lists the commands; each command'\''s --help is its own, exit 0' '
	test "$(commands | wc -l)" -ge 14 &&
	for c in $(commands); do
		$ZEROFS $c --help >"$T/out" 2>"$T/err" || { echo "$c --help failed"; return 1; }
		head -n1 "$T/out" | grep -q "^usage: zerofs $c" && test ! -s "$T/err" &&
		test "$(wc -l <"$T/out")" -ge 4 || { echo "$c:"; cat "$T/out" "$T/err"; return 1; }
	done
'
test_expect_success '-h and help <command> say the same; unmount is umount' '
	$ZEROFS gc --help >"$T/a" && $ZEROFS gc -h >"$T/b" && $ZEROFS help gc >"$T/c" &&
	cmp "$T/a" "$T/b" && cmp "$T/a" "$T/c" &&
	$ZEROFS unmount --help | grep -q "^usage: zerofs umount" &&
	$ZEROFS lease-break --help | grep -q -- "--force" &&
	$ZEROFS stats --help | grep -q "^usage: zerofs stats"
'
test_expect_success 'each option a command takes is in its --help; -d and -q explained' '
	$ZEROFS mount --help >"$T/m" &&
	grep -q "^  -d, --debug  *foreground, and libfuse logs every request" "$T/m" &&
	grep -q "^     timeout=SECS  *kernel attribute cache (1)" "$T/m" &&
	grep -q "^     ckpt=MIB  *log written between checkpoints (64)" "$T/m" &&
	for o in remote= cache_size= fetch_timeout= write_wait= max_delay= commit= mem= nonempty; do
		grep -q "^     $o" "$T/m" || { echo "mount --help lacks $o"; return 1; }
	done &&
	$ZEROFS fsck --help | grep -q "^  -q, --quiet  *print nothing; the exit code says it" &&
	$ZEROFS mkfs --help | grep -q -- "--no-check" && $ZEROFS gc --help | grep -q -- "--dry-run" &&
	$ZEROFS sync --help | grep -q -- "--timeout SECONDS"
'
test_expect_success 'zerofs version, -V and --version print the version' '
	v=$($ZEROFS version) && echo "$v" | grep -q "^zerofs [0-9]" &&
	test "$($ZEROFS -V)" = "$v" && test "$($ZEROFS --version)" = "$v" &&
	expect_code 2 $ZEROFS version extra 2>/dev/null
'
test_expect_success 'a bad option: one line naming it and --help, exit 2 (fsck: 8)' '
	expect_code 2 $ZEROFS mkfs --frobnicate "$T/x" 2>"$T/err" && cat "$T/err" &&
	test "$(wc -l <"$T/err")" = 1 &&
	grep -q "^zerofs mkfs: unknown option or missing value: .--frobnicate. (see .zerofs mkfs --help.)" "$T/err" &&
	expect_code 2 $ZEROFS gc --max-waste 2>"$T/err" && grep -q "see .zerofs gc --help." "$T/err" &&
	expect_code 2 $ZEROFS sync --frobnicate "$T" 2>"$T/err" && grep -q "see .zerofs sync --help." "$T/err" &&
	expect_code 8 $ZEROFS fsck --frobnicate "$T/x" 2>/dev/null
'
if [ -f "$man_page" ]; then
	test_expect_success 'the man page renders without warnings (groff -ww, man -l)' '
		groff -ww -man -Tutf8 -z "$man_page" 2>"$T/warn" && test ! -s "$T/warn" &&
		MANWIDTH=80 man -l "$man_page" >"$T/man.txt" 2>"$T/warn" &&
		cat "$T/warn" && test ! -s "$T/warn" && grep -q "^NAME" "$T/man.txt" &&
		grep -q "zerofs - a deduplicating" "$T/man.txt"
	'
	test_expect_success 'the man page names every command and mount option of --help' '
		MANWIDTH=80 man -l "$man_page" >"$T/man.txt" 2>/dev/null &&
		for c in $(commands); do
			grep -q "^       $c\b" "$T/man.txt" || { echo "man page lacks command $c"; return 1; }
		done &&
		# the -o options of zerofs itself (not the FUSE ones: allow_other, ro)
		for o in $($ZEROFS mount --help | sed -n "s/^     \([a-z_]\{1,\}=\{0,1\}\).*/\1/p" |
			grep -v "^allow_other"); do
			grep -q "^       $o" "$T/man.txt" || { echo "man page lacks -o $o"; return 1; }
		done
	'
else
	echo "# skip: the man page was not built (no scdoc; Debian package scdoc)"
fi
# complete WORDS...: what _zerofs offers for the last word, sorted, one a line
complete_words() {
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _zerofs;
		printf "%s\n" "${COMPREPLY[@]}" | sort' complete "$src/tools/zerofs.bash" "$@"
}
test_expect_success 'bash completion: commands, options, -o lists, mountpoints' '
	test "$(complete_words zerofs mk)" = mkfs &&
	test "$(complete_words zerofs fsck --ver)" = --verify-data &&
	test "$(complete_words zerofs mount -o cache_size=1M,non)" = cache_size=1M,nonempty &&
	complete_words zerofs lease-break - | grep -qx -- --force &&
	mkdir -p "$T/dirs/one" && test "$(complete_words zerofs stats "$T/dirs/o")" = "$T/dirs/one" &&
	bash -c ". \"$src/tools/zerofs.bash\" && complete -p zerofs" | grep -q "_zerofs"
'
test_expect_success 'bash completion knows exactly the commands of --help' '
	commands | sort >"$T/help.cmds" && complete_words zerofs "" | grep -v "^-" >"$T/comp.cmds" &&
	diff "$T/help.cmds" <(grep -vx help "$T/comp.cmds")
'
test_expect_success 'make install puts the completion (and the man page) where they are looked for' '
	prefix=$(sed -n "s/^prefix = //p" "$build/Makefile") && test -n "$prefix" &&
	make -s -C "$build" install-data-local DESTDIR="$T/inst" >/dev/null &&
	test -f "$T/inst$prefix/share/bash-completion/completions/zerofs" &&
	if [ -f "$man_page" ]; then
		make -s -C "$build" install-man DESTDIR="$T/inst" >/dev/null &&
		test -f "$T/inst$prefix/share/man/man8/zerofs.8"
	fi
'
test_done
