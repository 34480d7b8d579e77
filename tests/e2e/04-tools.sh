#!/usr/bin/env bash
# real tools on a mount: rsync -aHAX of every file type, git, tar, make + cc,
# and chunk sharing of copies in zerofs stats
. "$(dirname "$0")/lib.sh"
require_fuse
for tool in rsync git tar make cc python3 setfacl getfacl setfattr getfattr setpriv cmp; do
	command -v $tool >/dev/null || { echo "FAIL: $tool is missing (./setup.sh deps)"; exit 1; }
done
D=$T/dev M=$T/mnt S=$T/src
umask 022
# steps run in subshells, where zf_mount's cleanup hook is lost: unmount here
for m in "$M" "$T/mnt2"; do
	cleanup_hooks="fusermount3 -uz '$m' 2>/dev/null; $cleanup_hooks"
done
export GIT_CONFIG_NOSYSTEM=1 HOME=$T
GIT="git -c user.name=zerofs -c user.email=zerofs@example.com -c init.defaultBranch=main"

# tree_same A B: both trees hold the same names, types, modes, owners, sizes,
# mtimes (ns), link counts of files, device numbers, symlink targets,
# xattrs (ACLs included) and bytes; prints every difference
tree_same() {
	python3 - "$1" "$2" <<'PY'
import hashlib, os, stat, sys
def walk(top):
    out, inos = {}, {}
    for dirpath, dirs, files in os.walk(top):
        for n in [""] + dirs + files:
            p = os.path.join(dirpath, n) if n else dirpath
            rel = os.path.relpath(p, top)
            if n == "" and p != top:
                continue
            s = os.lstat(p)
            inos.setdefault(s.st_ino, []).append(rel)
            x = {k: os.getxattr(p, k, follow_symlinks=False)
                 for k in os.listxattr(p, follow_symlinks=False)}
            e = [stat.filemode(s.st_mode), s.st_uid, s.st_gid, s.st_rdev, s.st_mtime_ns, x]
            if not stat.S_ISDIR(s.st_mode):
                e += [s.st_nlink]
            if stat.S_ISREG(s.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for b in iter(lambda: f.read(1 << 20), b""):
                        h.update(b)
                e += [s.st_size, h.hexdigest()]
            elif stat.S_ISLNK(s.st_mode):
                e += [os.readlink(p)]
            out[rel] = e
    links = sorted(sorted(v) for v in inos.values() if len(v) > 1)
    return out, links
(a, la), (b, lb) = walk(sys.argv[1]), walk(sys.argv[2])
bad = 0
for k in sorted(set(a) | set(b)):
    if a.get(k) != b.get(k):
        print("differs: %r\n  %s\n  %s" % (k, a.get(k), b.get(k)))
        bad += 1
if la != lb:
    print("hard link groups differ:", la, lb)
    bad += 1
print("%d entries compared" % len(a))
sys.exit(1 if bad else 0)
PY
}

test_expect_success 'a source tree with every file type, xattrs, ACLs and odd names' '
	mkdir -p "$S/dir/sub" "$S/empty dir" "$S/ünïcödé ☃ dir" "$S/-dash" &&
	echo plain >"$S/dir/file" && : >"$S/empty" && printf "x\0y" >"$S/dir/sub/bin" &&
	head -c 12000000 /dev/urandom >"$S/large" &&
	truncate -s 40M "$S/sparse" && echo middle | dd of="$S/sparse" bs=1 seek=20000000 conv=notrunc 2>/dev/null &&
	echo tail >>"$S/sparse" &&
	ln "$S/dir/file" "$S/dir/sub/hard" && ln "$S/dir/file" "$S/ünïcödé ☃ dir/hard 2" &&
	ln "$S/large" "$S/-dash/large-link" &&
	ln -s file "$S/dir/rel" && ln -s /etc/passwd "$S/abs" && ln -s nowhere "$S/dangling" &&
	ln -s "ünïcödé ☃ dir" "$S/to unicode" &&
	mkfifo "$S/dir/fifo" && mknod "$S/dir/null" c 1 3 && mknod "$S/blockdev" b 7 200 &&
	echo spaced >"$S/with  two spaces" && echo q >"$S/quote'\''s \"and\" \\back" &&
	echo nl >"$S/new
line" && echo tab >"$S/tab	here" && echo emoji >"$S/ünïcödé ☃ dir/😀.txt" &&
	chmod 0600 "$S/dir/sub/bin" && chmod 4755 "$S/dir/file" && chmod 1777 "$S/empty dir" &&
	chmod 2750 "$S/dir/sub" && chown 65534:4242 "$S/empty" "$S/-dash" &&
	chown -h 1234:5678 "$S/dangling" &&
	setfattr -n user.color -v blue "$S/dir/file" &&
	setfattr -n user.bin -v 0x00ff00 "$S/large" && setfattr -n user.dir -v yes "$S/dir" &&
	setfattr -n trusted.t -v root-only "$S/empty" &&
	setfacl -m u:65534:rw,g:4242:r "$S/dir/sub/bin" &&
	setfacl -m u:65534:rx "$S/dir" && setfacl -d -m u:65534:rwx,g::r-x "$S/dir/sub" &&
	echo acl >"$S/acl-file" && chmod 0600 "$S/acl-file" && setfacl -m u:65534:r "$S/acl-file" &&
	find "$S" -depth -exec touch -h -d "2020-01-02 03:04:05.678901234" {} + &&
	touch -h -d "2001-02-03 04:05:06.123456789" "$S/dir/rel" "$S/large" &&
	touch -d "1999-12-31 23:59:59.5" "$S/dir/sub" &&
	getfacl -pn "$S/dir/sub/bin" | grep -q "user:65534:rw-" &&
	test "$(find "$S" | wc -l)" -ge 25
'
test_expect_success 'mkfs and mount' '
	$ZEROFS mkfs "$D" && zf_mount "$D" "$M" -o allow_other
'
test_expect_success 'rsync -aHAX into the mount, then a dry run itemizes nothing' '
	rsync -aHAX "$S/" "$M/copy/" &&
	rsync -aHAXn --itemize-changes "$S/" "$M/copy/" >"$T/itemized" &&
	{ cat "$T/itemized"; test ! -s "$T/itemized"; } &&
	tree_same "$S" "$M/copy"
'
test_expect_success 'the copied ACLs are shown in the mode and enforced as in the source' '
	test "$(stat -c %A "$M/copy/acl-file")" = -rw-r----- &&
	getfacl -pn "$M/copy/dir/sub/bin" | grep -q "^user:65534:rw-" &&
	chmod 0755 "$T" && nb="setpriv --reuid=65534 --regid=65534 --clear-groups" &&
	test "$($nb cat "$M/copy/acl-file")" = acl &&
	for f in acl-file dir/file dir/sub/bin large "empty dir"; do
		a=$($nb head -c 64 "$S/$f" 2>/dev/null | od -An -tx1; echo "${PIPESTATUS[0]}") &&
		b=$($nb head -c 64 "$M/copy/$f" 2>/dev/null | od -An -tx1; echo "${PIPESTATUS[0]}") &&
		echo "$f: $a" && test "$a" = "$b" || exit 1
	done
'
test_expect_success 'the sparse file stays sparse, the large one is intact' '
	test "$(stat -c %b "$M/copy/sparse")" -lt 1024 &&
	cmp "$S/sparse" "$M/copy/sparse" && cmp "$S/large" "$M/copy/-dash/large-link"
'
test_expect_success 'unmount, fsck, remount: rsync still itemizes nothing' '
	zf_umount "$M" && zf_fsck_clean "$D" && zf_mount "$D" "$M" -o allow_other &&
	rsync -aHAXn --itemize-changes "$S/" "$M/copy/" >"$T/itemized" &&
	{ cat "$T/itemized"; test ! -s "$T/itemized"; } &&
	tree_same "$S" "$M/copy"
'
test_expect_success 'rsync back out of the mount, and an update after a change' '
	rsync -aHAX "$M/copy/" "$T/back/" && tree_same "$S" "$T/back" &&
	echo changed >>"$S/dir/sub/hard" && rsync -aHAX "$S/" "$M/copy/" &&
	rsync -aHAXn --itemize-changes "$S/" "$M/copy/" >"$T/itemized" &&
	{ cat "$T/itemized"; test ! -s "$T/itemized"; } &&
	test "$(cat "$M/copy/ünïcödé ☃ dir/hard 2")" = "$(printf "plain\nchanged")"
'
test_expect_success 'in-place edits of a large file (dd, rsync --inplace, truncate) as on a local copy' '
	cp "$S/large" "$T/edit" && cp "$S/large" "$M/edit" &&
	for f in "$T/edit" "$M/edit"; do
		printf "PATCH" | dd of="$f" bs=1 seek=6000000 conv=notrunc status=none &&
		head -c 300000 /dev/zero | dd of="$f" bs=1k seek=2000 conv=notrunc status=none &&
		echo appended >>"$f" || exit 1
	done && cmp "$T/edit" "$M/edit" &&
	printf "rsync" | dd of="$T/edit" bs=1 seek=9000001 conv=notrunc status=none &&
	truncate -s 11000000 "$T/edit" && echo again >>"$T/edit" &&
	rsync --inplace --no-whole-file "$T/edit" "$M/edit" && cmp "$T/edit" "$M/edit" &&
	truncate -s 5555555 "$T/edit" "$M/edit" && cmp "$T/edit" "$M/edit"
'
test_expect_success 'cp -a and cp --sparse=always out of the mount' '
	cp -a "$M/copy" "$T/cp-back" && tree_same "$S" "$T/cp-back" &&
	cp --sparse=always "$M/copy/sparse" "$T/sparse.back" && cmp "$S/sparse" "$T/sparse.back" &&
	test "$(stat -c %b "$T/sparse.back")" -lt 1024
'
test_expect_success 'tar round trip: into the mount and back out, compared byte for byte' '
	tar -C "$S" --format=posix --xattrs --xattrs-include="*" --acls -cf "$T/src.tar" . &&
	mkdir "$M/untar" && tar -C "$M/untar" --xattrs --xattrs-include="*" --acls -xpf "$T/src.tar" &&
	tree_same "$S" "$M/untar" &&
	tar -C "$M/untar" --format=posix --sparse --xattrs --xattrs-include="*" --acls -cf "$T/back.tar" . &&
	mkdir "$T/untar" && tar -C "$T/untar" --xattrs --xattrs-include="*" --acls -xpf "$T/back.tar" &&
	tree_same "$S" "$T/untar" && cmp "$S/large" "$T/untar/large" &&
	test "$(stat -c %b "$T/untar/sparse")" -lt 1024 &&
	tar -C "$M" -cf "$M/self.tar" untar && tar -tvf "$M/self.tar" >/dev/null &&
	mkdir "$T/self" && tar -C "$T/self" -xf "$M/self.tar" &&
	cmp "$S/sparse" "$T/self/untar/sparse"
'
test_expect_success 'git: init, commit, clone (hard links and not), gc, fsck' '
	mkdir "$M/repo" && cd "$M/repo" && $GIT init -q && python3 -c "
import os, random
r = random.Random(7)
for d in range(6):
    os.makedirs(\"src/m%d\" % d)
    for f in range(40):
        with open(\"src/m%d/f%d.txt\" % (d, f), \"w\") as o:
            o.write(\"\".join(\"line %d %d\\n\" % (i, r.randrange(10**6)) for i in range(200)))
" && $GIT add -A && $GIT commit -qm first &&
	sed -i "s/line 1 /LINE 1 /" src/m0/f*.txt && $GIT commit -qam second &&
	$GIT mv src/m1 src/moved && $GIT commit -qm third &&
	test -z "$($GIT status --porcelain)" &&
	cd "$M" && $GIT clone -q repo clone && $GIT clone -q --no-local repo clone2 &&
	test "$(git -C clone rev-list --count HEAD)" = 3 &&
	test "$(git -C clone2 rev-parse HEAD)" = "$(git -C repo rev-parse HEAD)" &&
	$GIT -C repo gc -q --aggressive --prune=now && $GIT -C clone gc -q --prune=now &&
	git -C repo fsck --full --strict --no-dangling && git -C clone fsck --full --strict &&
	git -C clone2 fsck --full --strict && test -z "$(git -C clone status --porcelain)" &&
	git -C repo diff --quiet HEAD~2 -- src/m2 && ! git -C repo diff --quiet HEAD~2 -- src/m0
'
test_expect_success 'git after a remount: still clean, fsck clean' '
	zf_umount "$M" && zf_fsck_clean "$D" && zf_mount "$D" "$M" -o allow_other &&
	cmp "$T/edit" "$M/edit" &&
	test -z "$(git -C "$M/repo" status --porcelain)" &&
	git -C "$M/repo" fsck --full --strict --no-dangling &&
	git -C "$M/clone" fsck --full --strict && git -C "$M/clone" log --oneline | grep -q third
'
test_expect_success 'a small C project builds, passes its tests, and rebuilds only what changed' '
	# the test suite runs under make -s -j2: keep its flags away from this make
	unset MAKEFLAGS MFLAGS MAKELEVEL &&
	mkdir "$M/proj" && cd "$M/proj" &&
	cat >ops.h <<-\EOF &&
	int add(int a, int b);
	int mul(int a, int b);
	EOF
	cat >add.c <<-\EOF &&
	#include "ops.h"
	int add(int a, int b) { return a + b; }
	EOF
	cat >mul.c <<-\EOF &&
	#include "ops.h"
	int mul(int a, int b) { return a * b; }
	EOF
	cat >main.c <<-\EOF &&
	#include <stdio.h>
	#include <stdlib.h>
	#include "ops.h"
	int main(int argc, char **argv)
	{
		int a = atoi(argv[1]), b = atoi(argv[2]);

		printf("%d %d\n", add(a, b), mul(a, b));
		return 0;
	}
	EOF
	cat >Makefile <<-\EOF &&
	.RECIPEPREFIX = >
	OBJS = main.o add.o mul.o
	calc: $(OBJS)
	> $(CC) -o $@ $(OBJS)
	%.o: %.c ops.h
	> $(CC) -O2 -Wall -Werror -c -o $@ $<
	test: calc
	> test "$$(./calc 6 7)" = "13 42"
	> test "$$(./calc -2 5)" = "3 -10"
	> @echo tests passed
	clean:
	> rm -f calc $(OBJS)
	.PHONY: test clean
	EOF
	echo "# build and test" && make -s -j2 test | grep -q "tests passed" &&
	echo "# up to date after the build" && make -q calc &&
	echo "# out of date after touch" && touch mul.c && ! make -q calc &&
	ls -l --time-style=full-iso mul.c mul.o calc && make calc >"$T/make.log" &&
	grep -q "mul.c" "$T/make.log" && ! grep -q "main.c\|add.c" "$T/make.log" &&
	sed -i "s/a \* b/a * b + 0/" mul.c && make -s test | grep -q "tests passed" &&
	make -s clean && test ! -e calc && test ! -e main.o
'
test_expect_success 'unmount and fsck' '
	zf_umount "$M" && zf_fsck_clean "$D"
'
# stats: the dev-dir must be unmounted for zerofs stats
stat_of() { $ZEROFS stats --bytes "$1" | sed -n "s/^$2: *\([0-9]*\).*/\1/p"; }
test_expect_success 'a file copied twice in, then copied inside: chunks shared in zerofs stats' '
	$ZEROFS mkfs "$T/dev2" && zf_mount "$T/dev2" "$T/mnt2" &&
	head -c 10000000 /dev/urandom >"$T/rnd" &&
	cp "$T/rnd" "$T/mnt2/a" && cp "$T/rnd" "$T/mnt2/b" && zf_umount "$T/mnt2" &&
	u=$(stat_of "$T/dev2" "unique bytes") && r=$(stat_of "$T/dev2" "referenced bytes") &&
	echo "unique $u referenced $r" && test "$u" = 10000000 && test "$r" = 20000000 &&
	zf_mount "$T/dev2" "$T/mnt2" && cp --reflink=auto "$T/mnt2/a" "$T/mnt2/c" &&
	cmp "$T/rnd" "$T/mnt2/c" && zf_umount "$T/mnt2" &&
	u=$(stat_of "$T/dev2" "unique bytes") && r=$(stat_of "$T/dev2" "referenced bytes") &&
	echo "unique $u referenced $r" && test "$u" = 10000000 && test "$r" = 30000000 &&
	zf_fsck_clean "$T/dev2"
'
test_done
