#!/usr/bin/env bash
# every FUSE operation and its error cases, through the kernel, on a real mount
. "$(dirname "$0")/lib.sh"
require_fuse
for tool in python3 setpriv fallocate truncate mkfifo mknod setfacl getfacl; do
	command -v $tool >/dev/null || { echo "FAIL: $tool is missing (./setup.sh deps)"; exit 1; }
done
D=$T/dev M=$T/mnt
umask 022
# steps run in subshells, where zf_mount's cleanup hook is lost: unmount here
for m in "$M" "$T/a,b/mnt"; do
	cleanup_hooks="fusermount3 -uz '$m' 2>/dev/null; $cleanup_hooks"
done
chmod 0755 "$T"	# uid 65534 must reach the mount below it
NB="setpriv --reuid=65534 --regid=65534 --clear-groups"
# a python3 that uid 65534 can run (a pyenv shim under /root is not one)
PYN=python3
for p in /usr/bin/python3 /usr/local/bin/python3; do
	[ -x "$p" ] && $NB "$p" -c pass 2>/dev/null && { PYN=$p; break; }
done

# py 'statements' args...: python3 with the arguments in a[], plus helpers:
#   fails("ENOENT", fn, args...)  fn(args) must raise exactly that errno
#   rename2(old, new, flags)      renameat2(2); EXCHANGE=2, NOREPLACE=1
#   xget(path, name, size), xlist(path, size): the libc calls with a buffer size
#   uncached(fd)                  drop clean cached pages: next reads hit the daemon
PRELUDE='import ctypes, errno, mmap, os, stat, sys
a = sys.argv[1:]
libc = ctypes.CDLL(None, use_errno=True)
NOREPLACE, EXCHANGE = 1, 2
def oserr(what):
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e), what)
def fails(name, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except OSError as e:
        if e.errno == getattr(errno, name):
            return
        sys.exit("%s%r: expected %s, got %s" % (fn.__name__, args, name, errno.errorcode.get(e.errno)))
    sys.exit("%s%r: expected %s, but it succeeded" % (fn.__name__, args, name))
def rename2(old, new, flags):
    if libc.renameat2(-100, old.encode(), -100, new.encode(), flags) < 0:
        oserr(old)
def xget(path, name, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = libc.getxattr(path.encode(), name.encode(), buf, ctypes.c_size_t(size))
    return buf.raw[:n] if n >= 0 else oserr(path)
def xlist(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = libc.listxattr(path.encode(), buf, ctypes.c_size_t(size))
    return buf.raw[:n] if n >= 0 else oserr(path)
def uncached(fd):
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
def fopen(path, flags):
    os.close(os.open(path, flags, 0o644))
'
py() {
	local code=$1
	shift
	${AS:-} "${PYTHON:-python3}" -c "$PRELUDE$code" "$@"
}
# nobody CMD...: run a command (or py) as uid/gid 65534 without groups
nobody() {
	AS=$NB PYTHON=$PYN "$@"
}
# acl_case DIR: POSIX ACL operations, their outcome must be a local filesystem's
acl_case() {
	mkdir "$1" && cd "$1" &&
	echo s >f && chmod 0600 f && setfacl -m u:65534:r f && cp -p f f2 && chmod 0600 f2 &&
	echo s >g && chmod 0664 g && setfacl -m u:65534:rw,m::r g && chmod 0670 g &&
	echo s >h && setfacl -m u:65534:rwx h && setfacl -b h &&
	echo s >e && setfacl -m u::rwx,g::r-x,o::r e &&
	mkdir dd && setfacl -d -m u:65534:rwx,g::rwx,o::- dd && setfacl -m u:65534:rwx dd &&
	touch dd/f && mkdir dd/sub && mkfifo dd/p && ln -s f dd/s &&
	(umask 077 && touch dd/u077 && mkdir dd/d077 && touch u077 && mkdir d077) &&
	(umask 0 && mkdir -m 0777 d000 && touch dd/sub/deep) &&
	setfacl -k dd/d077 && setfacl -k d077 && setfacl -x u:65534 dd &&
	py "
os.removexattr(\"g\", \"system.posix_acl_access\")
os.removexattr(\"g\", \"system.posix_acl_access\")
os.removexattr(\"f2\", \"system.posix_acl_default\")"
}
# acl_state DIR: modes, ACLs and what uid 65534 may read, for every name of acl_case
acl_state() {
	(cd "$1" && for n in f f2 g h e dd dd/f dd/sub dd/sub/deep dd/p dd/s dd/u077 dd/d077 \
		u077 d077 d000; do
		stat -c "%n %A" "$n" && [ -L "$n" ] || getfacl -cpn "$n" || return 1
		if [ -f "$n" ]; then
			$NB cat "$n" >/dev/null 2>&1 && echo "$n readable" || echo "$n denied"
		fi
	done)
}

test_expect_success 'mkfs and mount (allow_other: other uids use the mount)' '
	$ZEROFS mkfs "$D" && zf_mount "$D" "$M" -o allow_other &&
	grep -q " $M fuse.zerofs .*allow_other" /proc/mounts &&
	nobody py "os.listdir(a[0])" "$M"
'
test_expect_success 'lookup and getattr of a new file' '
	echo hello >"$M/f" &&
	test "$(stat -c "%s %F %a %u:%g %h" "$M/f")" = "6 regular file 644 0:0 1" &&
	test "$(stat -c %i "$M/f")" != "$(stat -c %i "$M")" &&
	py "fails(\"ENOENT\", os.stat, a[0] + \"/nope\")" "$M"
'
test_expect_success 'chmod and chown' '
	chmod 0604 "$M/f" && test "$(stat -c %a "$M/f")" = 604 &&
	chmod u+s,g+s "$M/f" && test "$(stat -c %a "$M/f")" = 6604 &&
	chown 1234:5678 "$M/f" && test "$(stat -c %u:%g "$M/f")" = 1234:5678 &&
	chown 0:0 "$M/f" && chmod 0644 "$M/f" &&
	test "$(stat -c "%a %u:%g" "$M/f")" = "644 0:0"
'
test_expect_success 'chown of a setuid file clears the bit as on a local filesystem' '
	touch "$M/suid" "$T/suid" && chmod 6755 "$M/suid" "$T/suid" &&
	chown 65534 "$M/suid" "$T/suid" &&
	test "$(stat -c %a "$M/suid")" = "$(stat -c %a "$T/suid")"
'
test_expect_success 'truncate down and up; the grown range reads as zeros' '
	printf "hello world" >"$M/t" && truncate -s 5 "$M/t" &&
	test "$(cat "$M/t")" = hello && truncate -s 100000 "$M/t" &&
	test "$(stat -c %s "$M/t")" = 100000 &&
	{ printf hello; head -c 99995 /dev/zero; } | cmp - "$M/t" &&
	py "
fd = os.open(a[0], os.O_RDWR)
os.pwrite(fd, b\"XY\", 3)
os.ftruncate(fd, 4)
uncached(fd)
assert os.pread(fd, 100, 0) == b\"helX\", os.pread(fd, 100, 0)
os.ftruncate(fd, 0)
assert os.fstat(fd).st_size == 0
os.close(fd)" "$M/t"
'
test_expect_success 'utimensat: explicit times to the nanosecond, UTIME_NOW, UTIME_OMIT' '
	TZ=UTC0 touch -d "2001-02-03 04:05:06.123456789" "$M/f" &&
	test "$(TZ=UTC0 stat -c "%x|%y" "$M/f")" = "2001-02-03 04:05:06.123456789 +0000|2001-02-03 04:05:06.123456789 +0000" &&
	py "
s = os.stat(a[0])
os.utime(a[0], ns=(1000000001, 2000000002))
s = os.stat(a[0])
assert (s.st_atime_ns, s.st_mtime_ns) == (1000000001, 2000000002), s
os.utime(a[0], ns=(-1500000000, 4102444800999999999))
s = os.stat(a[0])
assert (s.st_atime_ns, s.st_mtime_ns) == (-1500000000, 4102444800999999999), s
os.utime(a[0], ns=(1000000001, 2000000002))" "$M/f" &&
	touch -m "$M/f" &&
	test "$(stat -c %X "$M/f")" = 1 && test "$(stat -c %Y "$M/f")" -ge "$(date +%s -d -1min)" &&
	touch -a -d @7 "$M/f" && test "$(stat -c %X "$M/f")" = 7 &&
	test "$(stat -c %Y "$M/f")" -gt 2 &&
	touch "$M/f" && test "$(stat -c %X "$M/f")" -ge "$(date +%s -d -1min)" &&
	py "
fd = os.open(a[0], os.O_RDONLY)
os.utime(fd, ns=(5000000000, 6000000000))
s = os.fstat(fd)
assert (s.st_atime_ns, s.st_mtime_ns) == (5000000000, 6000000000), s
os.close(fd)" "$M/f"
'
test_expect_success 'ctime moves on chmod, mtime and ctime on write' '
	py "
import time
p = a[0]
os.utime(p, ns=(10**9, 10**9))
c0 = os.stat(p).st_ctime_ns
time.sleep(0.01)
os.chmod(p, 0o640)
s = os.stat(p)
assert s.st_ctime_ns > c0 and s.st_mtime_ns == 10**9, s
with open(p, \"ab\") as f:
    f.write(b\"more\")
s2 = os.stat(p)
assert s2.st_mtime_ns > 10**9 and s2.st_ctime_ns >= s.st_ctime_ns, s2
os.utime(p, ns=(1000000001, 1000000002))
os.chmod(p, 0o644)" "$M/f"
'
test_expect_success 'directory mtime/ctime move with entries, a file ctime with its links' '
	mkdir "$M/ts" "$M/ts2" && py "
import time
d, d2 = a[0] + \"/ts\", a[0] + \"/ts2\"
def t(p):
    s = os.stat(p)
    return s.st_mtime_ns, s.st_ctime_ns
def moved(before, p):
    m, c = t(p)
    assert m > before[0] and c > before[1], (p, before, (m, c))
    return m, c
b = t(d)
fopen(d + \"/f\", os.O_CREAT | os.O_WRONLY)
b = moved(b, d)
fc = os.stat(d + \"/f\").st_ctime_ns
time.sleep(0.02)  # the kernel stamps a file ctime with its coarse clock
os.link(d + \"/f\", d + \"/g\")
b = moved(b, d)
assert os.stat(d + \"/f\").st_ctime_ns > fc
b2 = t(d2)
os.rename(d + \"/g\", d2 + \"/g\")
b = moved(b, d)
b2 = moved(b2, d2)
os.unlink(d2 + \"/g\")
moved(b2, d2)
os.mkdir(d + \"/sub\")
b = moved(b, d)
os.rmdir(d + \"/sub\")
moved(b, d)" "$M"
'
test_expect_success 'symlink and readlink; readlink of a file is EINVAL' '
	ln -s "some/where else" "$M/sl" && test "$(readlink "$M/sl")" = "some/where else" &&
	test "$(stat -c "%F %s" "$M/sl")" = "symbolic link 15" &&
	long=$(head -c 4000 /dev/zero | tr "\0" x) && ln -s "$long" "$M/longsl" &&
	test "$(readlink "$M/longsl")" = "$long" &&
	py "fails(\"EINVAL\", os.readlink, a[0] + \"/f\")" "$M"
'
test_expect_success 'mknod: fifo, char and block devices, socket' '
	mkfifo -m 0620 "$M/fifo" && test "$(stat -c "%F %a" "$M/fifo")" = "fifo 620" &&
	mknod "$M/chr" c 4 7 && test "$(stat -c "%F %t:%T" "$M/chr")" = "character special file 4:7" &&
	mknod "$M/blk" b 259 3 && test "$(stat -c "%F %t:%T" "$M/blk")" = "block special file 103:3" &&
	py "
import socket
s = socket.socket(socket.AF_UNIX)
s.bind(a[0])
s.close()
assert stat.S_ISSOCK(os.stat(a[0]).st_mode)" "$M/sock" &&
	{ echo through-fifo >"$M/fifo" & } && test "$(cat "$M/fifo")" = through-fifo && wait
'
test_expect_success 'mkdir, rmdir, unlink and directory link counts' '
	mkdir "$M/d" "$M/d/a" "$M/d/b" && test "$(stat -c %h "$M/d")" = 4 &&
	test "$(stat -c "%F %a" "$M/d/a")" = "directory 755" &&
	rmdir "$M/d/b" && test "$(stat -c %h "$M/d")" = 3 &&
	touch "$M/d/a/x" && rm "$M/d/a/x" && test ! -e "$M/d/a/x" && rmdir "$M/d/a" &&
	test "$(stat -c %h "$M/d")" = 2 && test -z "$(ls -A "$M/d")"
'
test_expect_success 'errors: ENOENT, EEXIST, ENOTEMPTY, EISDIR, ENOTDIR' '
	mkdir -p "$M/e/sub" && echo x >"$M/e/file" && py "
d = a[0]
fails(\"ENOENT\", os.open, d + \"/missing\", os.O_RDONLY)
fails(\"ENOENT\", os.unlink, d + \"/missing\")
fails(\"ENOENT\", os.rmdir, d + \"/missing\")
fails(\"ENOENT\", os.rename, d + \"/missing\", d + \"/x\")
fails(\"ENOENT\", os.mkdir, d + \"/missing/x\")
fails(\"ENOENT\", os.link, d + \"/missing\", d + \"/x\")
fails(\"EEXIST\", os.mkdir, d + \"/sub\")
fails(\"EEXIST\", os.mkdir, d + \"/file\")
fails(\"EEXIST\", os.open, d + \"/file\", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
fails(\"EEXIST\", os.symlink, \"t\", d + \"/file\")
fails(\"EEXIST\", os.link, d + \"/file\", d + \"/sub\")
fails(\"EEXIST\", os.mkfifo, d + \"/file\")
fails(\"ENOTEMPTY\", os.rmdir, d)
fails(\"EISDIR\", os.open, d + \"/sub\", os.O_WRONLY)
fails(\"EISDIR\", os.open, d + \"/sub\", os.O_RDWR)
fails(\"EISDIR\", os.unlink, d + \"/sub\")
fails(\"EISDIR\", os.rename, d + \"/file\", d + \"/sub\")
fails(\"ENOTDIR\", os.rmdir, d + \"/file\")
fails(\"ENOTDIR\", os.open, d + \"/file/x\", os.O_RDONLY)
fails(\"ENOTDIR\", os.mkdir, d + \"/file/x\")
fails(\"ENOTDIR\", os.listdir, d + \"/file\")
fails(\"ENOTDIR\", os.rename, d + \"/sub\", d + \"/file\")
fails(\"ENOTDIR\", os.open, d + \"/file\", os.O_RDONLY | os.O_DIRECTORY)
fails(\"EPERM\", os.link, d + \"/sub\", d + \"/sublink\")
fails(\"EINVAL\", os.rename, d, d + \"/sub/inside\")
fails(\"EINVAL\", os.rmdir, d + \"/sub/.\")" "$M/e"
'
test_expect_success 'ENAMETOOLONG for a 256-byte name, 255 bytes are fine' '
	n255=$(head -c 255 /dev/zero | tr "\0" n) &&
	touch "$M/$n255" && test -f "$M/$n255" && py "
n = \"n\" * 256
fails(\"ENAMETOOLONG\", os.open, a[0] + \"/\" + n, os.O_CREAT | os.O_WRONLY)
fails(\"ENAMETOOLONG\", os.mkdir, a[0] + \"/\" + n)
fails(\"ENAMETOOLONG\", os.stat, a[0] + \"/\" + n)
fails(\"ENAMETOOLONG\", os.symlink, \"x\", a[0] + \"/\" + n)
fails(\"ENAMETOOLONG\", os.rename, a[0] + \"/f\", a[0] + \"/\" + n)
fails(\"ENAMETOOLONG\", os.link, a[0] + \"/f\", a[0] + \"/\" + n)" "$M" &&
	rm "$M/$n255" && test "$(stat -f -c %l "$M")" = 255
'
test_expect_success 'ELOOP: a symlink loop, O_NOFOLLOW on a symlink' '
	ln -s loop2 "$M/loop1" && ln -s loop1 "$M/loop2" && py "
fails(\"ELOOP\", os.open, a[0] + \"/loop1\", os.O_RDONLY)
fails(\"ELOOP\", os.stat, a[0] + \"/loop2\")
fails(\"ELOOP\", os.open, a[0] + \"/sl\", os.O_RDONLY | os.O_NOFOLLOW)
assert os.readlink(a[0] + \"/loop1\") == \"loop2\"" "$M"
'
test_expect_success 'EXDEV: rename and link to another filesystem' '
	py "
fails(\"EXDEV\", os.rename, a[0] + \"/f\", a[1] + \"/moved\")
fails(\"EXDEV\", os.link, a[0] + \"/f\", a[1] + \"/linked\")
fails(\"EXDEV\", os.rename, a[1] + \"/suid\", a[0] + \"/in\")" "$M" "$T" &&
	test -f "$M/f" && test ! -e "$T/moved"
'
test_expect_success 'EACCES and EPERM for another uid (default_permissions)' '
	mkdir -m 0700 "$M/private" && echo secret >"$M/private/s" &&
	echo secret >"$M/ro600" && chmod 0600 "$M/ro600" && echo pub >"$M/ro644" &&
	mkdir -m 1777 "$M/sticky" && touch "$M/sticky/roots" &&
	echo w >"$M/w666" && chmod 0666 "$M/w666" &&
	nobody py "
d = a[0]
fails(\"EACCES\", os.listdir, d + \"/private\")
fails(\"EACCES\", os.stat, d + \"/private/s\")
fails(\"EACCES\", os.open, d + \"/ro600\", os.O_RDONLY)
fails(\"EACCES\", os.open, d + \"/ro644\", os.O_WRONLY)
fails(\"EACCES\", os.open, d + \"/new\", os.O_CREAT | os.O_WRONLY)
fails(\"EACCES\", os.mkdir, d + \"/newdir\")
fails(\"EACCES\", os.unlink, d + \"/ro644\")
fails(\"EACCES\", os.rename, d + \"/ro644\", d + \"/sticky/x\")
fails(\"EACCES\", os.truncate, d + \"/ro644\", 0)
fails(\"EACCES\", os.setxattr, d + \"/ro644\", \"user.x\", b\"1\")
fails(\"EPERM\", os.chmod, d + \"/ro644\", 0o777)
fails(\"EPERM\", os.chown, d + \"/ro644\", 65534, 65534)
fails(\"EPERM\", os.unlink, d + \"/sticky/roots\")
fails(\"EPERM\", os.utime, d + \"/w666\", ns=(1, 1))
os.utime(d + \"/w666\")
assert open(d + \"/ro644\").read() == \"pub\\n\"" "$M" &&
	test "$(cat "$M/private/s")" = secret
'
test_expect_success 'new nodes of another uid belong to it; setgid directories pass their group' '
	mkdir -m 0777 "$M/pub" &&
	$NB sh -c "cd \"$M/pub\" && echo x >f && mkdir d && mkfifo p && ln -s f s && ln f h" &&
	for n in f d p s h; do test "$(stat -c %u:%g "$M/pub/$n")" = 65534:65534 || exit 1; done &&
	mkdir "$M/sg" && chgrp 4242 "$M/sg" && chmod 2777 "$M/sg" &&
	touch "$M/sg/f" && mkdir "$M/sg/d" && $NB mkdir "$M/sg/nd" && $NB touch "$M/sg/nf" &&
	test "$(stat -c %g "$M/sg/f")" = 4242 && test "$(stat -c "%g %A" "$M/sg/d")" = "4242 drwxr-sr-x" &&
	test "$(stat -c "%u:%g %A" "$M/sg/nd")" = "65534:4242 drwxr-sr-x" &&
	test "$(stat -c "%u:%g" "$M/sg/nf")" = "65534:4242"
'
test_expect_success 'a write by another uid clears setuid and setgid as on a local filesystem' '
	touch "$M/pub/kill" "$T/kill" && chmod 6777 "$M/pub/kill" "$T/kill" &&
	$NB sh -c "echo x >>\"$M/pub/kill\"" && $NB sh -c "echo x >>\"$T/kill\"" &&
	test "$(stat -c %a "$M/pub/kill")" = "$(stat -c %a "$T/kill")" &&
	test "$(stat -c %a "$M/pub/kill")" = 777
'
test_expect_success 'POSIX ACLs: mode, mask, default ACLs, umask and access as on a local filesystem' '
	acl_case "$T/aclref" && acl_case "$M/acl" &&
	acl_state "$T/aclref" >"$T/acl.want" && acl_state "$M/acl" >"$T/acl.got" &&
	diff -u "$T/acl.want" "$T/acl.got" && grep -q "^f readable" "$T/acl.got" &&
	grep -q "^f2 denied" "$T/acl.got" && grep -q "^dd/f -rw-rw----" "$T/acl.got"
'
test_expect_success 'rename: plain, across directories, over a file (atomic replace)' '
	mkdir -p "$M/r/x" "$M/r/y" && echo one >"$M/r/x/a" && echo two >"$M/r/y/b" &&
	mv "$M/r/x/a" "$M/r/x/a2" && test "$(cat "$M/r/x/a2")" = one && test ! -e "$M/r/x/a" &&
	ino=$(stat -c %i "$M/r/x/a2") && mv "$M/r/x/a2" "$M/r/y/b" &&
	test "$(cat "$M/r/y/b")" = one && test "$(stat -c %i "$M/r/y/b")" = "$ino" &&
	test -z "$(ls "$M/r/x")" && mkdir "$M/r/x/sub" && test "$(stat -c %h "$M/r/x")" = 3 &&
	mv "$M/r/x/sub" "$M/r/y/" && test "$(stat -c %h "$M/r/x"):$(stat -c %h "$M/r/y")" = 2:3 &&
	test "$(stat -c %h "$M/r/y/sub")" = 2 && test "$(cd "$M/r/y/sub/.." && pwd -P)" = "$M/r/y" &&
	mkdir "$M/r/empty" "$M/r/full" && touch "$M/r/full/x" && py "
os.rename(a[0] + \"/y/sub\", a[0] + \"/empty\")
assert not os.path.exists(a[0] + \"/y/sub\") and os.listdir(a[0] + \"/empty\") == []
fails(\"ENOTEMPTY\", os.rename, a[0] + \"/empty\", a[0] + \"/full\")
fails(\"ENOENT\", os.rename, a[0] + \"/nothing\", a[0] + \"/full\")" "$M/r"
'
test_expect_success 'renameat2: RENAME_NOREPLACE and RENAME_EXCHANGE' '
	mkdir -p "$M/rx/d1" "$M/rx/d2/inner" && echo A >"$M/rx/a" && echo B >"$M/rx/d1/b" && py "
d = a[0]
fails(\"EEXIST\", rename2, d + \"/a\", d + \"/d1/b\", NOREPLACE)
rename2(d + \"/a\", d + \"/a2\", NOREPLACE)
fails(\"ENOENT\", rename2, d + \"/a2\", d + \"/none\", EXCHANGE)
fails(\"EINVAL\", rename2, d + \"/a2\", d + \"/d1/b\", EXCHANGE | NOREPLACE)
ia, ib = os.stat(d + \"/a2\").st_ino, os.stat(d + \"/d1/b\").st_ino
rename2(d + \"/a2\", d + \"/d1/b\", EXCHANGE)
assert open(d + \"/a2\").read() == \"B\\n\" and open(d + \"/d1/b\").read() == \"A\\n\"
assert os.stat(d + \"/a2\").st_ino == ib and os.stat(d + \"/d1/b\").st_ino == ia
# a file and a directory across directories: parents link counts follow
rename2(d + \"/a2\", d + \"/d2/inner\", EXCHANGE)
assert os.path.isdir(d + \"/a2\") and os.path.isfile(d + \"/d2/inner\")
assert os.stat(d).st_nlink == 5 and os.stat(d + \"/d2\").st_nlink == 2
assert os.path.samefile(d + \"/a2/..\", d)" "$M/rx"
'
test_expect_success 'hard links across directories and their link counts' '
	mkdir -p "$M/h1" "$M/h2/deep" && echo linked >"$M/h1/orig" &&
	ln "$M/h1/orig" "$M/h2/l1" && ln "$M/h1/orig" "$M/h2/deep/l2" &&
	test "$(stat -c %h "$M/h1/orig")" = 3 &&
	test "$(stat -c %i "$M/h2/deep/l2")" = "$(stat -c %i "$M/h1/orig")" &&
	echo more >>"$M/h2/l1" && test "$(cat "$M/h2/deep/l2")" = "$(printf "linked\nmore")" &&
	rm "$M/h1/orig" && test "$(stat -c %h "$M/h2/l1")" = 2 &&
	py "os.rename(a[0] + \"/l1\", a[0] + \"/deep/l2\")" "$M/h2" &&
	test "$(stat -c %h "$M/h2/deep/l2")" = 2 && test -e "$M/h2/l1" && ln "$M/h2/l1" "$M/h1/back" && test "$(stat -c %h "$M/h1/back")" = 3
'
test_expect_success 'open flags, pread/pwrite, O_APPEND, O_TRUNC, reads past the end' '
	py "
p = a[0] + \"/io\"
fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o640)
assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o640
os.pwrite(fd, b\"abcdef\", 0)
os.pwrite(fd, b\"XY\", 2)
os.pwrite(fd, b\"tail\", 1 << 20)
uncached(fd)
assert os.pread(fd, 6, 0) == b\"abXYef\"
assert os.pread(fd, 10, 1000) == bytes(10)
assert os.pread(fd, 10, (1 << 20) + 4) == b\"\"
assert os.fstat(fd).st_size == (1 << 20) + 4
os.close(fd)
fd = os.open(p, os.O_WRONLY | os.O_APPEND)
os.write(fd, b\"++\")
os.close(fd)
assert os.path.getsize(p) == (1 << 20) + 6
fd = os.open(p, os.O_RDWR | os.O_TRUNC)
assert os.fstat(fd).st_size == 0 and os.read(fd, 10) == b\"\"
os.write(fd, b\"new\")
uncached(fd)
assert os.pread(fd, 100, 0) == b\"new\"
os.close(fd)
fd = os.open(a[0] + \"/ro644\", os.O_RDONLY)
fails(\"EBADF\", os.write, fd, b\"x\")
os.close(fd)" "$M"
'
test_expect_success 'O_DIRECT writes and reads' '
	py "
buf = mmap.mmap(-1, 65536)
buf.write(os.urandom(65536))
fd = os.open(a[0], os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o644)
assert os.pwrite(fd, buf, 4096) == 65536
out = mmap.mmap(-1, 65536)
assert os.preadv(fd, [out], 4096) == 65536 and out[:] == buf[:]
assert os.preadv(fd, [out], 0) == 65536 and out[:4096] == bytes(4096)
os.close(fd)
assert open(a[0], \"rb\").read() == bytes(4096) + buf[:]" "$M/direct"
'
test_expect_success 'a removed directory that is still a cwd: nothing can be created in it' '
	mkdir "$M/gone" && py "
os.chdir(a[0] + \"/gone\")
os.rmdir(a[0] + \"/gone\")
fails(\"ENOENT\", os.open, \"x\", os.O_CREAT | os.O_WRONLY)
fails(\"ENOENT\", os.mkdir, \"sub\")
fails(\"ENOENT\", os.symlink, \"t\", \"sym\")
assert os.listdir(\".\") == [] and os.stat(\".\").st_nlink == 0, os.stat(\".\")" "$M" &&
	test ! -e "$M/gone"
'
test_expect_success 'parallel writers: one shared file in disjoint pieces, and files of their own' '
	for w in 0 1 2 3; do
		py "
import random
w = int(a[1])
r = random.Random(w)
fd = os.open(a[0] + \"/shared\", os.O_CREAT | os.O_WRONLY, 0o644)
own = os.open(a[0] + \"/own%d\" % w, os.O_CREAT | os.O_WRONLY, 0o644)
pieces = list(range(w, 256, 4))
r.shuffle(pieces)
for p in pieces:
    os.pwrite(fd, bytes([p]) * 16384, p * 16384)
    os.pwrite(own, bytes([p]) * 16384, p * 16384)
os.close(fd)
os.close(own)" "$M" $w &
	done && wait && py "
want = b\"\".join(bytes([p]) * 16384 for p in range(256))
assert open(a[0] + \"/shared\", \"rb\").read() == want
for w in range(4):
    got = open(a[0] + \"/own%d\" % w, \"rb\").read()
    exp = b\"\".join(bytes([p]) * 16384 if p % 4 == w else bytes(16384) for p in range(256))
    assert got[:len(exp)].rstrip(b\"\\0\") == exp.rstrip(b\"\\0\"), w" "$M" &&
	cp "$M/shared" "$T/shared.want"
'
test_expect_success 'a write at 1 TiB: the file is sparse and SEEK_DATA finds the bytes' '
	py "
fd = os.open(a[0], os.O_CREAT | os.O_RDWR, 0o644)
os.pwrite(fd, b\"far away\", 1 << 40)
os.fsync(fd)
assert os.fstat(fd).st_size == (1 << 40) + 8
assert os.lseek(fd, 0, os.SEEK_DATA) == 1 << 40
assert os.lseek(fd, 1 << 40, os.SEEK_HOLE) == (1 << 40) + 8
uncached(fd)
assert os.pread(fd, 8, 1 << 40) == b\"far away\" and os.pread(fd, 4096, 1 << 39) == bytes(4096)
os.close(fd)" "$M/far" && test "$(du -k "$M/far" | cut -f1)" -lt 1024
'
test_expect_success 'symlinks themselves: lchown, utimensat without following' '
	ln -s /nonexistent/target "$M/own-link" && chown -h 4321:8765 "$M/own-link" &&
	test "$(stat -c %u:%g "$M/own-link")" = 4321:8765 && py "
os.utime(a[0], ns=(3000000003, 4000000004), follow_symlinks=False)
s = os.lstat(a[0])
assert (s.st_atime_ns, s.st_mtime_ns) == (3000000003, 4000000004), s" "$M/own-link"
'
test_expect_success 'fsync and fdatasync of files and directories' '
	py "
fd = os.open(a[0] + \"/synced\", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b\"durable\" * 10000)
os.fsync(fd)
os.fdatasync(fd)
os.close(fd)
dfd = os.open(a[0], os.O_RDONLY | os.O_DIRECTORY)
os.fsync(dfd)
os.close(dfd)" "$M" && sync -f "$M" && sync "$M/synced"
'
test_expect_success 'readdir of a 5000-entry directory' '
	mkdir "$M/big" && py "
d = a[0]
for i in range(5000):
    fopen(\"%s/entry-%05d\" % (d, i), os.O_CREAT | os.O_WRONLY)
names = os.listdir(d)
assert len(names) == 5000 and set(names) == {\"entry-%05d\" % i for i in range(5000)}
assert sum(1 for e in os.scandir(d) if e.is_file(follow_symlinks=False)) == 5000" "$M/big" &&
	test "$(ls "$M/big" | wc -l)" = 5000 && test "$(ls -f "$M/big" | wc -l)" = 5002 &&
	test "$(find "$M/big" -type f | wc -l)" = 5000
'
test_expect_success 'readdir while entries are removed sees every entry once' '
	mkdir "$M/churn" && py "
d = a[0]
for i in range(1500):
    fopen(\"%s/c%04d\" % (d, i), os.O_CREAT | os.O_WRONLY)
seen = []
with os.scandir(d) as it:
    for e in it:
        seen.append(e.name)
        os.unlink(e.path)
        if len(seen) % 3 == 0:
            fopen(d + \"/added-\" + e.name, os.O_CREAT | os.O_WRONLY)
orig = [n for n in seen if not n.startswith(\"added-\")]
assert len(orig) == 1500 and len(set(orig)) == 1500, len(orig)
assert len(seen) == len(set(seen))" "$M/churn" &&
	rm -rf "$M/churn" && test ! -e "$M/churn"
'
test_expect_success 'statfs: df and stat -f' '
	df -P "$M" | grep -q " $M\$" &&
	test "$(stat -f -c %l "$M")" = 255 &&
	test "$(stat -f -c %b "$M")" -gt 0 && test "$(stat -f -c %d "$M")" -gt 0 &&
	test "$(stat -f -c %c "$M")" -gt "$(stat -f -c %d "$M")" &&
	test "$(stat -f -c %T "$M")" = fuseblk -o "$(stat -f -c %T "$M")" = fuse
'
test_expect_success 'xattrs: set, get, list, replace, remove, ENODATA, ERANGE, EEXIST' '
	echo x >"$M/xa" && mkdir "$M/xd" && py "
p = a[0] + \"/xa\"
os.setxattr(p, \"user.k\", b\"value\")
os.setxattr(p, \"user.empty\", b\"\")
os.setxattr(p, \"trusted.t\", b\"\\0bin\\xff\")
big = os.urandom(65536)
os.setxattr(p, \"user.big\", big)
assert os.getxattr(p, \"user.k\") == b\"value\"
assert os.getxattr(p, \"user.empty\") == b\"\"
assert os.getxattr(p, \"trusted.t\") == b\"\\0bin\\xff\"
assert os.getxattr(p, \"user.big\") == big
assert sorted(os.listxattr(p)) == [\"trusted.t\", \"user.big\", \"user.empty\", \"user.k\"], os.listxattr(p)
assert libc.getxattr(p.encode(), b\"user.k\", None, 0) == 5
assert xget(p, \"user.k\", 5) == b\"value\"
fails(\"ERANGE\", xget, p, \"user.k\", 4)
fails(\"ERANGE\", xlist, p, 10)
fails(\"ENODATA\", os.getxattr, p, \"user.none\")
fails(\"ENODATA\", os.removexattr, p, \"user.none\")
fails(\"EEXIST\", os.setxattr, p, \"user.k\", b\"v2\", os.XATTR_CREATE)
fails(\"ENODATA\", os.setxattr, p, \"user.none\", b\"v2\", os.XATTR_REPLACE)
fails(\"E2BIG\", os.setxattr, p, \"user.huge\", bytes(65537))
os.setxattr(p, \"user.k\", b\"v2\", os.XATTR_REPLACE)
assert os.getxattr(p, \"user.k\") == b\"v2\"
os.removexattr(p, \"user.empty\")
assert \"user.empty\" not in os.listxattr(p)
d = a[0] + \"/xd\"
os.setxattr(d, \"user.dir\", b\"on a dir\")
assert os.listxattr(d) == [\"user.dir\"]
os.removexattr(d, \"user.dir\")
assert os.listxattr(d) == []
fails(\"EPERM\", os.setxattr, a[0] + \"/sl\", \"user.k\", b\"v\", follow_symlinks=False)
os.setxattr(a[0] + \"/sl\", \"trusted.l\", b\"on a link\", follow_symlinks=False)
assert os.getxattr(a[0] + \"/sl\", \"trusted.l\", follow_symlinks=False) == b\"on a link\"" "$M"
'
test_expect_success 'fallocate: allocate, keep size, punch a hole, unsupported modes' '
	fallocate -l 1M "$M/fa" && test "$(stat -c %s "$M/fa")" = 1048576 &&
	head -c 1048576 /dev/zero | cmp - "$M/fa" &&
	head -c 300000 /dev/urandom >"$T/punch.src" && cp "$T/punch.src" "$M/punch" &&
	fallocate -n -o 0 -l 10M "$M/punch" && test "$(stat -c %s "$M/punch")" = 300000 &&
	fallocate -o 290000 -l 20000 "$M/punch" && test "$(stat -c %s "$M/punch")" = 310000 &&
	cmp -n 290000 "$T/punch.src" "$M/punch" &&
	fallocate -p -o 70000 -l 100000 "$M/punch" && test "$(stat -c %s "$M/punch")" = 310000 &&
	py "
src = open(a[1], \"rb\").read()
want = src[:70000] + bytes(100000) + src[170000:] + bytes(10000)
fd = os.open(a[0], os.O_RDONLY)
uncached(fd)
got = os.pread(fd, 400000, 0)
assert got == want, [i for i in range(len(want)) if got[i:i+1] != want[i:i+1]][:5]
os.close(fd)
fd = os.open(a[0], os.O_RDWR)
r = libc.fallocate(fd, 0x10, ctypes.c_long(0), ctypes.c_long(4096))
assert r < 0 and ctypes.get_errno() == errno.EOPNOTSUPP, (r, ctypes.get_errno())
os.close(fd)" "$M/punch" "$T/punch.src" &&
	cp "$M/punch" "$T/punch.want"
'
test_expect_success 'SEEK_DATA and SEEK_HOLE on a sparse file; a punched hole is found' '
	head -c 1048576 /dev/urandom >"$T/r1" && py "
MB = 1 << 20
data = open(a[1], \"rb\").read()
fd = os.open(a[0], os.O_CREAT | os.O_RDWR, 0o644)
os.pwrite(fd, data, 0)
os.pwrite(fd, data, 8 * MB)
os.ftruncate(fd, 11 * MB)
os.fsync(fd)
assert os.lseek(fd, 0, os.SEEK_DATA) == 0
assert os.lseek(fd, 0, os.SEEK_HOLE) == MB, os.lseek(fd, 0, os.SEEK_HOLE)
assert os.lseek(fd, 5, os.SEEK_HOLE) == MB
assert os.lseek(fd, MB, os.SEEK_DATA) == 8 * MB, os.lseek(fd, MB, os.SEEK_DATA)
assert os.lseek(fd, 3 * MB, os.SEEK_HOLE) == 3 * MB
assert os.lseek(fd, 8 * MB, os.SEEK_HOLE) == 9 * MB
assert os.lseek(fd, 9 * MB, os.SEEK_HOLE) == 9 * MB
fails(\"ENXIO\", os.lseek, fd, 9 * MB, os.SEEK_DATA)
fails(\"ENXIO\", os.lseek, fd, 11 * MB, os.SEEK_DATA)
fails(\"ENXIO\", os.lseek, fd, 11 * MB, os.SEEK_HOLE)
assert os.fstat(fd).st_blocks * 512 < 3 * MB, os.fstat(fd).st_blocks
uncached(fd)
assert os.pread(fd, MB, 2 * MB) == bytes(MB)
assert os.pread(fd, MB, 8 * MB) == data
# punch the middle of the first data region: the hole shows up
libc.fallocate(fd, 3, ctypes.c_long(256 << 10), ctypes.c_long(512 << 10))
h = os.lseek(fd, 0, os.SEEK_HOLE)
assert 0 < h <= 256 << 10, h
assert os.lseek(fd, h, os.SEEK_DATA) <= 768 << 10
os.close(fd)
fd = os.open(a[2], os.O_CREAT | os.O_RDWR, 0o644)
os.ftruncate(fd, 5 * MB)
fails(\"ENXIO\", os.lseek, fd, 0, os.SEEK_DATA)
assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
# bytes still in the page cache (no fsync) are data too
os.pwrite(fd, data[:5000], 2 * MB)
os.pwrite(fd, data[:5000], 6 * MB)
assert os.lseek(fd, 0, os.SEEK_DATA) == 2 * MB, os.lseek(fd, 0, os.SEEK_DATA)
h = os.lseek(fd, 2 * MB, os.SEEK_HOLE)
assert 2 * MB + 5000 <= h < 3 * MB, h
assert os.lseek(fd, h, os.SEEK_DATA) == 6 * MB
assert os.lseek(fd, 6 * MB, os.SEEK_HOLE) == 6 * MB + 5000
fails(\"ENXIO\", os.lseek, fd, 6 * MB + 5000, os.SEEK_DATA)
os.close(fd)" "$M/sparse" "$T/r1" "$M/allhole"
'
test_expect_success 'copy_file_range: whole file and ranges read back identical' '
	head -c 3000000 /dev/urandom >"$T/cfr.src" && cp "$T/cfr.src" "$M/cfr.src" && py "
src = open(a[1], \"rb\").read()
fi = os.open(a[0] + \"/cfr.src\", os.O_RDONLY)
fo = os.open(a[0] + \"/cfr.whole\", os.O_CREAT | os.O_RDWR, 0o644)
n = 0
while n < len(src):
    k = os.copy_file_range(fi, fo, len(src) - n, n, n)
    assert k > 0
    n += k
uncached(fo)
assert os.pread(fo, len(src) + 1, 0) == src
os.close(fo)
# a range into the middle of an existing file, at unaligned offsets
fo = os.open(a[0] + \"/cfr.part\", os.O_CREAT | os.O_RDWR, 0o644)
os.pwrite(fo, b\"=\" * 1000000, 0)
k = os.copy_file_range(fi, fo, 500000, 100001, 12345)
assert k == 500000, k
want = b\"=\" * 12345 + src[100001:600001] + b\"=\" * (1000000 - 512345)
uncached(fo)
assert os.pread(fo, 2000000, 0) == want
# past the source end: a short copy that extends the destination
k = os.copy_file_range(fi, fo, 100000, len(src) - 10, 999995)
assert k == 10, k
assert os.fstat(fo).st_size == 1000005
uncached(fo)
assert os.pread(fo, 20, 999990) == want[999990:999995] + src[-10:]
assert os.copy_file_range(fi, fo, 10, len(src) + 5, 0) == 0
os.close(fo)
os.close(fi)" "$M" "$T/cfr.src" && cmp "$T/cfr.src" "$M/cfr.whole"
'
test_expect_success 'a file unlinked while open stays readable and writable until closed' '
	py "
p = a[0] + \"/doomed\"
fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
blob = os.urandom(3 << 20)
os.write(fd, blob)
os.fsync(fd)
fd2 = os.open(p, os.O_RDONLY)
os.unlink(p)
assert not os.path.exists(p)
assert os.fstat(fd).st_nlink == 0
uncached(fd)
assert os.pread(fd2, len(blob), 0) == blob
os.pwrite(fd, b\"after unlink\", 1000)
os.write(fd, b\"appended\")
uncached(fd)
os.posix_fadvise(fd2, 0, 0, os.POSIX_FADV_DONTNEED)
want = blob[:1000] + b\"after unlink\" + blob[1012:] + b\"appended\"
assert os.pread(fd2, len(want) + 10, 0) == want
os.ftruncate(fd, 10)
assert os.fstat(fd2).st_size == 10
os.close(fd)
assert os.pread(fd2, 100, 0) == want[:10]
os.close(fd2)" "$M"
'
test_expect_success 'rename over an open file: the open fd keeps the old content' '
	echo "old content" >"$M/victim" && echo "new content" >"$M/incoming" && py "
p = a[0]
fd = os.open(p + \"/victim\", os.O_RDWR)
os.rename(p + \"/incoming\", p + \"/victim\")
assert open(p + \"/victim\").read() == \"new content\\n\"
uncached(fd)
assert os.pread(fd, 100, 0) == b\"old content\\n\"
os.pwrite(fd, b\"OLD\", 0)
uncached(fd)
assert os.pread(fd, 100, 0) == b\"OLD content\\n\"
assert open(p + \"/victim\").read() == \"new content\\n\"
os.close(fd)" "$M"
'
test_expect_success 'a shared writable mmap reaches the file' '
	head -c 200000 /dev/urandom >"$T/mm.data" && py "
MB = 1 << 20
data = open(a[1], \"rb\").read()
fd = os.open(a[0], os.O_CREAT | os.O_RDWR, 0o644)
os.ftruncate(fd, MB)
m = mmap.mmap(fd, MB, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[4096:4096 + len(data)] = data
m[MB - 3:] = b\"end\"
m.flush()
m.close()
os.close(fd)
want = bytes(4096) + data + bytes(MB - 4096 - len(data) - 3) + b\"end\"
open(a[2], \"wb\").write(want)
fd = os.open(a[0], os.O_RDONLY)
uncached(fd)
assert os.pread(fd, 2 * MB, 0) == want
os.close(fd)" "$M/mm" "$T/mm.data" "$T/mm.want" && cmp "$T/mm.want" "$M/mm"
'
test_expect_success 'unmount, fsck, remount: everything above survived' '
	zf_umount "$M" && zf_fsck_clean "$D" && zf_mount "$D" "$M" -o allow_other &&
	cmp "$T/mm.want" "$M/mm" && cmp "$T/punch.want" "$M/punch" &&
	cmp "$T/cfr.src" "$M/cfr.whole" && cmp "$T/shared.want" "$M/shared" &&
	test "$(cat "$M/io")" = new && test "$(stat -c %s "$M/far")" = 1099511627784 &&
	test "$(stat -c "%u:%g %Y" "$M/own-link")" = "4321:8765 4" &&
	test "$(stat -c "%X %Y %a %u:%g" "$M/f")" = "1 1 644 0:0" &&
	py "s = os.stat(a[0]); assert (s.st_atime_ns, s.st_mtime_ns) == (1000000001, 1000000002), s" "$M/f" &&
	test "$(ls "$M/big" | wc -l)" = 5000 &&
	test "$(readlink "$M/sl")" = "some/where else" &&
	test "$(stat -c "%F %t:%T" "$M/blk")" = "block special file 103:3" &&
	test "$(stat -c "%h %i" "$M/h1/back")" = "3 $(stat -c %i "$M/h2/l1")" &&
	test "$(stat -c "%u:%g %A" "$M/sg/nd")" = "65534:4242 drwxr-sr-x" &&
	test "$(stat -c %h "$M/rx"):$(stat -c %h "$M")" = "5:$(( 2 + $(find "$M" -mindepth 1 -maxdepth 1 -type d | wc -l) ))" &&
	py "
p = a[0]
assert os.getxattr(p + \"/xa\", \"user.k\") == b\"v2\"
assert sorted(os.listxattr(p + \"/xa\")) == [\"trusted.t\", \"user.big\", \"user.k\"]
fd = os.open(p + \"/sparse\", os.O_RDONLY)
assert os.lseek(fd, 1 << 20, os.SEEK_DATA) == 8 << 20
assert os.lseek(fd, 8 << 20, os.SEEK_HOLE) == 9 << 20
os.close(fd)
assert not os.path.exists(p + \"/doomed\")
assert os.stat(p + \"/xa\").st_mtime_ns > 10**18" "$M"
'
test_expect_success 'rm -r of the big directory, then the tree is empty' '
	rm -r "$M/big" && test ! -e "$M/big" &&
	find "$M" -mindepth 1 -delete && test -z "$(ls -A "$M")" &&
	test "$(stat -c %h "$M")" = 2
'
test_expect_success 'a relative dev-dir with a comma in its path: statfs, umount from elsewhere' '
	mkdir "$T/a,b" && cd "$T/a,b" && $ZEROFS mkfs dev && zf_mount dev mnt &&
	grep -q "^zerofs:$T/a,b/dev $T/a,b/mnt fuse.zerofs " /proc/mounts &&
	test "$(stat -f -c "%S %b" mnt)" = "$(stat -f -c "%S %b" dev)" &&
	head -c 5000000 /dev/urandom >mnt/f && cd / && zf_umount "$T/a,b/mnt" &&
	zf_fsck_clean "$T/a,b/dev"
'
test_expect_success 'unmount and final fsck' '
	zf_umount "$M" && zf_fsck_clean "$D"
'
test_done
