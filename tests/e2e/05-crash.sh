#!/usr/bin/env bash
# crash safety: kill -9 of the daemon at random moments of fsync-heavy file
# storms and of metadata storms that force checkpoints; after each crash the
# dead mount is detached, fsck must be clean, and after remount every state
# that an fsync acknowledged must be there (sha256 compared). Crashes
# accumulate on one dev-dir. ZF_CRASH_SEED=N repeats a schedule.
. "$(dirname "$0")/lib.sh"
require_fuse
command -v python3 >/dev/null || { echo "SKIP: the crash workload needs python3"; exit 77; }
D=$T/dev M=$T/mnt
seed=${ZF_CRASH_SEED:-$(($(date +%s%N) / 1000 % 1000000))}
RANDOM=$seed
echo "# seed $seed (ZF_CRASH_SEED=$seed repeats the schedule)"
if [ -n "${ZF_SANITIZED:-}" ]; then
	data_rounds=8 meta_rounds=4
else
	data_rounds=12 meta_rounds=6
fi
# sanitizer reports of every zerofs process (daemons too) land in $T
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/san"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/san"
no_san_reports() { ! ls "$T"/san.* >/dev/null 2>&1 || { cat "$T"/san.*; return 1; }; }

# the workload and its verifier (documented at the top of the program)
cat >"$T/cw.py" <<'PY'
"""crash workloads of tests/e2e/05-crash.sh (the script writes this file out)

  cw.py data ROOT MANIFEST SEED TAG READY   file storm until the mount dies
  cw.py meta ROOT MANIFEST SEED TAG READY   namespace storm until it dies
  cw.py verify-data ROOT MANIFEST           compare, then rebase MANIFEST
  cw.py verify-meta ROOT MANIFEST

Writers exit 0 once the mount is gone (ENOTCONN), 1 on any other error,
2 if nobody killed the mount within 60 s. Verifiers exit 1 on a mismatch.

data manifest, one line per event, appended (and fsynced) outside the mount:
  P <kind> <path> <sha256> <size> <recipe>   about to change path (pending)
  P unlink <path> | P rename <src> <dst>
  D <path> <sha256> <size> <recipe>          fsync returned: durable state
  D <path> - 0 gone                          durable absence
A path's last D line is its durable state; after it at most one pending
change. After the crash a path holds its durable state, or the pending one,
or (for data writes) a torn mix of the two on a per-byte basis (bytes of the
old state, the new state, or zeros where the file grew); a torn file is
removed by the verifier so that the next round starts from known contents.
Contents are regenerated from recipes: b(seed,size) p(off,seed,len)
a(seed,len) t(size), so no copy of the data is kept.

meta manifest: "B <json>" the starting tree, "O <n> <json>" before op n is
issued, "S <n>" after a directory fsync returned. The tree after the crash
must equal the state after op k for some k >= the last S (the log commits
transactions in order).
"""
import errno
import hashlib
import json
import os
import random
import stat
import sys
import time

MiB = 1 << 20
XNAME = "user.big"
XLEN = 65536  # the largest value Linux passes: fills the log fast


def rb(seed, n):
    return random.Random(seed).randbytes(n)


def build(recipe):
    b = bytearray()
    for st in recipe:
        k = st[0]
        if k == "b":
            b = bytearray(rb(st[1], st[2]))
        elif k == "p":
            off, seed, n = st[1], st[2], st[3]
            b[off:off + n] = rb(seed, n)
        elif k == "a":
            b += rb(st[1], st[2])
        elif k == "t":
            n = st[1]
            b = b[:n] + bytes(max(0, n - len(b)))
    return bytes(b)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def rj(recipe):
    return json.dumps(recipe, separators=(",", ":"))


class Dead(Exception):
    pass


def gone(root):
    """the daemon is dead: statfs always reaches it (attributes may be cached)"""
    try:
        os.statvfs(root)
    except OSError as e:
        return e.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    return False


class Manifest:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def put(self, line, sync=True):
        os.write(self.fd, (line + "\n").encode())
        if sync:
            os.fsync(self.fd)


def signal_ready(ready, tag):
    fd = os.open(ready, os.O_WRONLY)
    os.write(fd, ("ready %s\n" % tag).encode())
    os.close(fd)


def write_all(fd, data, rng, off=None):
    pos = 0
    while pos < len(data):
        n = min(len(data) - pos, rng.choice((4096, 65536, 200000, MiB)))
        if off is None:
            w = os.write(fd, data[pos:pos + n])
        else:
            w = os.pwrite(fd, data[pos:pos + n], off + pos)
        pos += w


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ data

def parse_data(manifest):
    dur, pend = {}, {}
    if not os.path.exists(manifest):
        return dur, pend
    with open(manifest) as f:
        for line in f:
            w = line.rstrip("\n").split(" ", 5)
            if w[0] == "D":
                dur[w[1]] = None if w[4] == "gone" else (w[2], int(w[3]), json.loads(w[4]))
                pend.pop(w[1], None)
            elif w[1] == "unlink":
                pend[w[2]] = {"kind": "unlink", "path": w[2]}
            elif w[1] == "rename":
                op = {"kind": "rename", "src": w[2], "dst": w[3]}
                pend[w[2]] = pend[w[3]] = op
            else:
                pend[w[2]] = {"kind": w[1], "path": w[2], "sha": w[3], "size": int(w[4]),
                              "recipe": json.loads(w[5])}
    return dur, {p: o for p, o in pend.items()}


def pick_size(rng):
    r = rng.random()
    if r < 0.08:
        return 0
    if r < 0.6:
        return rng.randint(1, 64 << 10)
    if r < 0.92:
        return rng.randint(64 << 10, MiB)
    return rng.randint(MiB, 5 * MiB)


def run_data(root, manifest, seed, tag, ready):
    rng = random.Random(seed)
    dur, pend = parse_data(manifest)
    assert not pend, "manifest not rebased"
    state = {p: v for p, v in dur.items() if v is not None}
    cache = {}
    dirs = ["d0", "d1", "d2"]
    for d in dirs:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    fsync_dir(root)
    m = Manifest(manifest)
    signal_ready(ready, tag)
    serial = 0
    t0 = time.time()

    def content(p):
        if p not in cache:
            cache.clear() if len(cache) > 16 else None
            cache[p] = build(state[p][2])
        return cache[p]

    def newname():
        nonlocal serial
        serial += 1
        return "%s/%s-%d" % (rng.choice(dirs), tag, serial)

    def durable(p, recipe, data):
        state[p] = (sha(data), len(data), recipe)
        cache[p] = data
        m.put("D %s %s %d %s" % (p, state[p][0], len(data), rj(recipe)))

    def fsync_file(fd, p):
        r = rng.random()
        if r < 0.15:
            os.close(fd)
            fd = os.open(os.path.join(root, p), os.O_RDONLY)
        (os.fdatasync if r > 0.8 else os.fsync)(fd)
        os.close(fd)

    while time.time() - t0 < 60:
        total = sum(v[1] for v in state.values())
        files = sorted(state)
        if len(files) < 4:
            kind = "new"
        elif total > 24 * MiB:
            kind = rng.choice(("unlink", "trunc"))
        else:
            kind = rng.choices(("new", "dup", "rewrite", "patch", "append", "trunc", "rename",
                                "unlink"), (20, 8, 12, 20, 15, 5, 10, 10 if len(files) > 12 else 1))[0]
        if kind in ("new", "dup", "rewrite"):
            if kind == "rewrite":
                p = rng.choice(files)
                flags = os.O_WRONLY | os.O_TRUNC
            else:
                p = newname()
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            if kind == "dup":
                recipe = list(state[rng.choice(files)][2])
            else:
                recipe = [["b", rng.getrandbits(48), pick_size(rng)]]
            data = build(recipe)
            m.put("P %s %s %s %d %s" % (kind, p, sha(data), len(data), rj(recipe)), False)
            fd = os.open(os.path.join(root, p), flags, 0o644)
            write_all(fd, data, rng)
            fsync_file(fd, p)
            if kind != "rewrite" and rng.random() < 0.5:
                fsync_dir(os.path.dirname(os.path.join(root, p)))
            durable(p, recipe, data)
        elif kind in ("patch", "append"):
            p = rng.choice(files)
            old = content(p)
            if kind == "patch" and not old:
                continue
            recipe = list(state[p][2])
            npatch = rng.randint(1, 3) if kind == "patch" else 1
            steps = []
            for _ in range(npatch):
                if kind == "patch":
                    off = rng.randrange(len(old))
                    n = rng.randint(1, min(len(old) - off, rng.choice((100, 5000, 70000, MiB))))
                    steps.append(["p", off, rng.getrandbits(48), n])
                else:
                    steps.append(["a", rng.getrandbits(48), pick_size(rng)])
            recipe = recipe + steps
            if len(recipe) > 12:  # keep recipes short: a fresh write instead
                continue
            data = build(recipe)
            m.put("P %s %s %s %d %s" % (kind, p, sha(data), len(data), rj(recipe)), False)
            fd = os.open(os.path.join(root, p), os.O_WRONLY | (os.O_APPEND if kind == "append" else 0))
            for st in steps:
                if st[0] == "p":
                    write_all(fd, rb(st[2], st[3]), rng, st[1])
                else:
                    write_all(fd, rb(st[1], st[2]), rng)
            fsync_file(fd, p)
            durable(p, recipe, data)
        elif kind == "trunc":
            p = rng.choice(files)
            size = state[p][1]
            n = rng.randint(0, size) if rng.random() < 0.8 or total > 24 * MiB else size + rng.randint(1, 300000)
            recipe = state[p][2] + [["t", n]]
            if len(recipe) > 12:
                recipe = [["b", rng.getrandbits(48), 0]] if n == 0 else None
            if recipe is None:
                continue
            data = build(recipe)
            m.put("P trunc %s %s %d %s" % (p, sha(data), len(data), rj(recipe)), False)
            fd = os.open(os.path.join(root, p), os.O_WRONLY)
            os.ftruncate(fd, n)
            fsync_file(fd, p)
            durable(p, recipe, data)
        elif kind == "rename":
            src = rng.choice(files)
            dst = newname() if rng.random() < 0.5 or len(files) < 2 else rng.choice(files)
            if dst == src:
                continue
            m.put("P rename %s %s" % (src, dst), False)
            os.rename(os.path.join(root, src), os.path.join(root, dst))
            for d in {os.path.dirname(src), os.path.dirname(dst)}:
                fsync_dir(os.path.join(root, d))
            state[dst] = state.pop(src)
            cache.pop(src, None)
            cache.pop(dst, None)
            m.put("D %s - 0 gone" % src, False)
            m.put("D %s %s %d %s" % (dst, state[dst][0], state[dst][1], rj(state[dst][2])))
        elif kind == "unlink":
            p = rng.choice(files)
            m.put("P unlink %s" % p, False)
            os.unlink(os.path.join(root, p))
            fsync_dir(os.path.dirname(os.path.join(root, p)))
            del state[p]
            cache.pop(p, None)
            m.put("D %s - 0 gone" % p)
    return 2


def read_tree(root):
    """{relative path: bytes} of every regular file below root"""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, root)
            with open(full, "rb") as f:
                out[rel] = f.read()
    return out


def mixed(a, old, new, grow_zero_from):
    """every byte of a is old's, new's, or 0 at positions >= grow_zero_from"""
    B = 4096
    for i in range(0, len(a), B):
        blk = a[i:i + B]
        if blk == new[i:i + B] or blk == old[i:i + B]:
            continue
        for j, c in enumerate(blk):
            k = i + j
            if (k < len(new) and c == new[k]) or (k < len(old) and c == old[k]):
                continue
            if k >= grow_zero_from and c == 0:
                continue
            return False
    return True


def verify_data(root, manifest):
    dur, pend = parse_data(manifest)
    actual = read_tree(root)
    problems, torn = [], []
    res = {}  # path -> (sha, size, recipe) | None
    done = set()
    badp = []  # paths with a problem: removed, so that later rounds go on

    def content(v):
        return b"" if v is None else build(v[2])

    for p in sorted(set(dur) | set(pend) | set(actual)):
        if p in done:
            continue
        done.add(p)
        a = actual.get(p)
        op = pend.get(p)
        old = dur.get(p)
        if op is None:
            msg = None
            if old is None and a is not None:
                msg = "%s: exists (%d bytes), but its fsynced state is 'absent'" % (p, len(a))
            elif old is not None and a is None:
                msg = "%s: fsynced file is missing (want %d bytes %s)" % (p, old[1], old[0][:16])
            elif old is not None and sha(a) != old[0]:
                msg = "%s: fsynced content lost: %d bytes %s, want %d bytes %s" % (
                    p, len(a), sha(a)[:16], old[1], old[0][:16])
            if msg:
                problems.append(msg)
                badp.append(p)
            res[p] = old
            continue
        k = op["kind"]
        if k == "rename":
            s, d = op["src"], op["dst"]
            done.update((s, d))
            os_, od = dur.get(s), dur.get(d)
            as_, ad = actual.get(s), actual.get(d)
            if (as_ is not None and os_ is not None and sha(as_) == os_[0] and
                    ((ad is None and od is None) or (ad is not None and od is not None and sha(ad) == od[0]))):
                res[s], res[d] = os_, od
            elif as_ is None and ad is not None and os_ is not None and sha(ad) == os_[0]:
                res[s], res[d] = None, os_
            else:
                problems.append("rename %s -> %s in flight: neither before nor after (src %s, dst %s)" %
                                (s, d, "absent" if as_ is None else sha(as_)[:16],
                                 "absent" if ad is None else sha(ad)[:16]))
                badp.extend((s, d))
            continue
        if k == "unlink":
            if a is None:
                res[p] = None
            elif old is not None and sha(a) == old[0]:
                res[p] = old
            else:
                problems.append("%s: unlink in flight, content is neither the old state nor absent" % p)
                badp.append(p)
            continue
        new = (op["sha"], op["size"], op["recipe"])
        if a is not None and sha(a) == new[0]:
            res[p] = new
            continue
        if a is not None and old is not None and sha(a) == old[0]:
            res[p] = old
            continue
        if a is None:
            if k in ("new", "dup"):
                res[p] = None
            else:
                problems.append("%s: %s in flight, but the file is gone" % (p, k))
                badp.append(p)
            continue
        n, o = build(new[2]), content(old)
        if k in ("new", "dup", "rewrite"):
            ok = len(a) <= len(n) and mixed(a, b"", n, 0)
        elif k == "patch":
            ok = len(a) == len(o) and mixed(a, o, n, len(o))
        elif k == "append":
            ok = len(o) <= len(a) <= len(n) and a[:len(o)] == o and mixed(a, o, n, len(o))
        else:  # trunc: one setattr, never torn
            ok = False
        if ok:
            torn.append(p)
            res[p] = None
        else:
            problems.append("%s: %s in flight: %d bytes %s are neither the old state (%s), the new "
                            "one (%s) nor a mix of them" % (p, k, len(a), sha(a)[:16],
                                                             old[0][:16] if old else "absent", new[0][:16]))
            badp.append(p)
    for p in problems:
        print("problem:", p)
    gone_now = [p for p in torn + badp if p in actual]
    for p in torn + badp:
        res[p] = None
    for p in gone_now:
        os.unlink(os.path.join(root, p))
    for d in {os.path.dirname(p) for p in gone_now}:
        fsync_dir(os.path.join(root, d))
    tmp = manifest + ".tmp"
    with open(tmp, "w") as f:
        for p in sorted(res):
            if res[p] is not None:
                f.write("D %s %s %d %s\n" % (p, res[p][0], res[p][1], rj(res[p][2])))
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, manifest)
    print("%s: %d files verified (%d in flight: %s), %d torn removed" %
          (root, sum(1 for v in res.values() if v), len(pend), ",".join(sorted({o["kind"] for o in pend.values()})) or "-",
           len(torn)))
    return 1 if problems else 0


# ------------------------------------------------------------------ meta

def xsha(seed):
    return sha(rb(seed, XLEN))


def proj(v):
    """what can be seen of a node: ["d"] or ["f", xattr sha, nlink]"""
    return v if v is None or v[0] == "d" else v[:3]


class Tree:
    """path -> ["d"] | ["f", xattr sha or None, nlink, inode id]; the inode id
    (the path that created it) ties hard links together. With actual set,
    miss counts the paths whose visible node differs from actual."""

    def __init__(self, nodes):
        self.m, self.g, self.actual, self.miss = {}, {}, None, 0
        for p, v in nodes.items():
            self.set(p, v)

    def compare(self, actual):
        self.actual = actual
        self.miss = sum(1 for p in set(self.m) | set(actual) if proj(self.m.get(p)) != actual.get(p))

    def set(self, p, v):
        old = self.m.get(p)
        if self.actual is not None:
            before = proj(old) != self.actual.get(p)
        if old is not None and old[0] == "f":
            self.g[old[3]].discard(p)
        if v is None:
            self.m.pop(p, None)
        else:
            self.m[p] = v
            if v[0] == "f":
                self.g.setdefault(v[3], set()).add(p)
        if self.actual is not None:
            self.miss += (proj(v) != self.actual.get(p)) - before

    def inode(self, p, x=False, nlink=0):
        """set xattr sha (unless x is False) and add nlink on every link of p's inode"""
        v = self.m[p]
        for q in sorted(self.g[v[3]]):
            w = self.m[q]
            self.set(q, ["f", w[1] if x is False else x, w[2] + nlink, w[3]])

    def apply(self, op):
        k = op["op"]
        if k == "mkdir":
            self.set(op["p"], ["d"])
        elif k == "touch":
            self.set(op["p"], ["f", None, 1, op["p"]])
        elif k == "link":
            self.inode(op["s"], nlink=1)
            self.set(op["d"], list(self.m[op["s"]]))
        elif k == "unlink":
            self.inode(op["p"], nlink=-1)
            self.set(op["p"], None)
        elif k == "rmdir":
            self.set(op["p"], None)
        elif k == "setx":
            self.inode(op["p"], x=xsha(op["seed"]))
        elif k == "rmx":
            self.inode(op["p"], x=None)
        elif k == "ren":
            s, d = op["s"], op["d"]
            if d in self.m and self.m[d][0] == "f":
                self.inode(d, nlink=-1)  # the replaced file loses a link
            moved = [(p, v) for p, v in self.m.items() if p == s or p.startswith(s + "/")]
            for p, v in moved:
                self.set(p, None)
            for p, v in moved:
                self.set(d + p[len(s):], v)


def run_meta(root, manifest, seed, tag, ready):
    rng = random.Random(seed)
    if not os.path.exists(manifest):
        os.makedirs(root, exist_ok=True)
        fsync_dir(os.path.dirname(root))
        with open(manifest, "w") as f:
            f.write("B {}\n")
    with open(manifest) as f:
        first = f.readline()
        assert first.startswith("B ") and not f.readline(), "manifest not rebased"
    t = Tree(json.loads(first[2:]))
    m = Manifest(manifest)
    signal_ready(ready, tag)
    n = 0
    serial = 0
    t0 = time.time()

    def depth(p):
        return p.count("/") + 1

    while time.time() - t0 < 60:
        dirs = [""] + [p for p, v in t.m.items() if v[0] == "d"]
        files = [p for p, v in t.m.items() if v[0] == "f"]
        big = len(t.m) > 2500
        serial += 1
        name = "%s%d" % (tag, serial)
        r = rng.random()
        if r < 0.08 and not big:
            parent = rng.choice([d for d in dirs if not d or depth(d) < 3])
            op = {"op": "mkdir", "p": (parent + "/" + name).lstrip("/")}
        elif r < 0.18 and not big:
            op = {"op": "touch", "p": (rng.choice(dirs) + "/" + name).lstrip("/")}
        elif r < 0.21 and files and not big:
            op = {"op": "link", "s": rng.choice(files), "d": (rng.choice(dirs) + "/" + name).lstrip("/")}
        elif r < 0.28 and files:
            s = rng.choice(files)
            if rng.random() < 0.3 and len(files) > 1:
                d = rng.choice(files)
                if t.m[d][3] == t.m[s][3]:
                    continue  # links of one inode: rename does nothing
            else:
                d = (rng.choice(dirs) + "/" + name).lstrip("/")
            op = {"op": "ren", "s": s, "d": d}
        elif r < 0.3 and len(dirs) > 1:
            s = rng.choice(dirs[1:])
            op = {"op": "ren", "s": s, "d": os.path.join(os.path.dirname(s), name)}
        elif r < 0.88 and files:
            xs = [p for p in files if t.m[p][1]]
            pool = xs if len(xs) >= 40 else files
            op = {"op": "setx", "p": rng.choice(pool), "seed": rng.getrandbits(48)}
            if rng.random() < 0.1 and xs:
                op = {"op": "rmx", "p": rng.choice(xs)}
        elif r < 0.95 and files:
            op = {"op": "unlink", "p": rng.choice(files)}
        else:
            full_dirs = {os.path.dirname(p) for p in t.m}
            empty = [d for d in dirs[1:] if d not in full_dirs]
            if not empty:
                continue
            op = {"op": "rmdir", "p": rng.choice(empty)}
        n += 1
        m.put("O %d %s" % (n, json.dumps(op, separators=(",", ":"))), False)
        k = op["op"]
        full = os.path.join(root, op.get("p", op.get("s", "")))
        if k == "mkdir":
            os.mkdir(full)
        elif k == "touch":
            os.close(os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        elif k == "link":
            os.link(full, os.path.join(root, op["d"]))
        elif k == "ren":
            os.rename(full, os.path.join(root, op["d"]))
        elif k == "unlink":
            os.unlink(full)
        elif k == "rmdir":
            os.rmdir(full)
        elif k == "setx":
            os.setxattr(full, XNAME, rb(op["seed"], XLEN))
        elif k == "rmx":
            os.removexattr(full, XNAME)
        t.apply(op)
        if rng.random() < 0.01:
            fsync_dir(os.path.join(root, rng.choice([""] + [p for p, v in t.m.items() if v[0] == "d"])))
            m.put("S %d" % n)
    return 2


def snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ["d"]
            else:
                try:
                    x = sha(os.getxattr(full, XNAME, follow_symlinks=False))
                except OSError as e:
                    if e.errno != errno.ENODATA:
                        raise
                    x = None
                out[rel] = ["f" if stat.S_ISREG(st.st_mode) else "?", x, st.st_nlink]
    return out


def verify_meta(root, manifest):
    with open(manifest) as f:
        lines = f.read().splitlines()
    assert lines[0].startswith("B ")
    t = Tree(json.loads(lines[0][2:]))
    ops, synced = [], 0
    for line in lines[1:]:
        w = line.split(" ", 2)
        if w[0] == "O":
            assert int(w[1]) == len(ops) + 1
            ops.append(json.loads(w[2]))
        elif w[0] == "S":
            synced = int(w[1])
    actual = snapshot(root)
    for op in ops[:synced]:
        t.apply(op)
    at_sync = {p: proj(v) for p, v in t.m.items()}
    t.compare(actual)
    k = synced
    while t.miss and k < len(ops):
        t.apply(ops[k])
        k += 1
    failed = t.miss != 0
    if failed:
        print("problem: the tree matches no state from op %d (last directory fsync) to op %d "
              "(last issued)" % (synced, len(ops)))
        diff = sorted(p for p in set(at_sync) | set(actual) if at_sync.get(p) != actual.get(p))
        for p in diff[:20]:
            print("problem:   %s: after op %d %s, found %s" % (p, synced, at_sync.get(p), actual.get(p)))
        # go on from what is there (hard links of one inode share its st_ino)
        ino = {}
        for dirpath, dirnames, filenames in os.walk(root):
            for n in filenames:
                full = os.path.join(dirpath, n)
                ino.setdefault(os.lstat(full).st_ino, os.path.relpath(full, root))
        t = Tree({p: v if v[0] == "d" else v + [ino[os.lstat(os.path.join(root, p)).st_ino]]
                  for p, v in actual.items()})
    tmp = manifest + ".tmp"
    with open(tmp, "w") as f:
        f.write("B %s\n" % json.dumps(t.m, separators=(",", ":")))
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, manifest)
    if failed:
        return 1
    print("%s: %d entries verified: state after op %d (synced %d, issued %d)" %
          (root, len(actual), k, synced, len(ops)))
    return 0


def main():
    mode = sys.argv[1]
    if mode in ("data", "meta"):
        root, manifest, seed, tag, ready = sys.argv[2:7]
        fn = run_data if mode == "data" else run_meta
        try:
            return fn(root, manifest, int(seed), tag, ready)
        except OSError as e:
            if gone(root):
                return 0
            print("%s writer %s: unexpected error: %s" % (mode, tag, e), file=sys.stderr)
            raise
    if mode == "verify-data":
        return verify_data(sys.argv[2], sys.argv[3])
    if mode == "verify-meta":
        return verify_meta(sys.argv[2], sys.argv[3])
    print("usage: see the top of this file", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
PY

# the daemon serving $M (the background process keeps its argv)
daemon_pid() { pgrep -f -- "zerofs mount .*$D $M\$"; }
# on the way out: no daemon, no dead mount left behind
cleanup_hooks="kill -9 \$(daemon_pid) 2>/dev/null; fusermount3 -uz '$M' 2>/dev/null; $cleanup_hooks"

cw() { python3 "$T/cw.py" "$@"; }

# every manifest, even after a failure (each verifier rebases its manifest
# on what it found, so that the next rounds go on)
verify_all() {
	local rc=0
	cw verify-data "$M/w/a" "$T/man.a" || rc=1
	if [ -f "$T/man.b" ]; then
		cw verify-data "$M/w/b" "$T/man.b" || rc=1
	fi
	if [ -f "$T/man.m" ]; then
		cw verify-meta "$M/m" "$T/man.m" || rc=1
	fi
	return $rc
}

# the daemon exits soon after it released the dev-dir lock (zombies waiting
# for init are dead)
daemon_gone() {
	local i pid alive
	for i in $(seq 1 400); do
		alive=""
		for pid in $(daemon_pid); do
			case $(ps -o stat= -p "$pid") in
			Z* | "") ;;
			*) alive="$alive $pid" ;;
			esac
		done
		[ -z "$alive" ] && return 0
		sleep 0.05
	done
	echo "daemon still alive after unmount:$alive"
	return 1
}

# crash_round N data|meta MS KMS SEED1 SEED2 [mount options for the remount]:
# two writers on the live mount, kill -9 of the daemon MS ms after both are
# running, detach the dead mount, fsck the crashed dev-dir; with KMS > 0
# one more kill -9, KMS ms into the next mount (log replay, segment
# resume, orphan reclaim); remount, verify
crash_round() {
	local n=$1 kind=$2 ms=$3 kms=$4 s1=$5 s2=$6 i line pid p rc=0 wpids=""
	shift 6
	if ! mountpoint -q "$M"; then # an earlier round failed half-way
		fusermount3 -uz "$M" 2>/dev/null
		flock -w 60 "$D/lock" true && zf_mount "$D" "$M" "$@" && verify_all || return 1
	fi
	rm -f "$T/ready" && mkfifo "$T/ready" && exec 5<>"$T/ready" || return 1
	cw data "$M/w/a" "$T/man.a" "$s1" "a$n" "$T/ready" 2>"$T/err.a" &
	wpids=$!
	if [ "$kind" = meta ]; then
		cw meta "$M/m" "$T/man.m" "$s2" "m$n" "$T/ready" 2>"$T/err.2" &
	else
		cw data "$M/w/b" "$T/man.b" "$s2" "b$n" "$T/ready" 2>"$T/err.2" &
	fi
	wpids="$wpids $!"
	for i in 1 2; do
		read -r -t 60 -u 5 line || { echo "the writers did not start"; cat "$T"/err.*; return 1; }
	done
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	pid=$(daemon_pid)
	if [ "$(echo $pid | wc -w)" -ne 1 ]; then
		echo "want one daemon for $D, found '$pid'"
		kill $wpids
		return 1
	fi
	kill -9 "$pid" || return 1
	for p in $wpids; do
		wait "$p" || rc=1
	done
	[ $rc -eq 0 ] || { echo "a writer failed before the crash:"; cat "$T"/err.*; return 1; }
	ls -l "$D/meta"
	fusermount3 -uz "$M" && flock -w 60 "$D/lock" true && zf_fsck_clean "$D" || return 1
	if [ "$kms" -gt 0 ]; then
		$ZEROFS mount "$@" "$D" "$M" &
		p=$!
		sleep "0.$(printf %03d "$kms")"
		kill -9 $(daemon_pid) 2>/dev/null
		wait "$p"
		if grep -q " $M " /proc/mounts; then
			fusermount3 -uz "$M"
		fi
		flock -w 60 "$D/lock" true && zf_fsck_clean "$D" || return 1
	fi
	zf_mount "$D" "$M" "$@" && verify_all
}

# mount options of each round: a 1 s periodic commit in every other file
# storm; metadata storms checkpoint every MiB of log when the command can
# be told so (else every 64 MiB, a few times per run)
ckpt_opt=""
if $ZEROFS mount --help | grep -q "ckpt="; then
	ckpt_opt="-o ckpt=1"
else
	echo "# note: 'zerofs mount' has no -o ckpt=MIB: checkpoints only every 64 MiB of log"
fi
opts_of() { # round
	if [ "$1" -gt "$data_rounds" ]; then
		echo "$ckpt_opt"
	elif [ $(($1 % 2)) -eq 1 ]; then
		echo "-o commit=1"
	fi
}

test_expect_success 'mkfs and mount' '
	$ZEROFS mkfs "$D" && zf_mount "$D" "$M" $(opts_of 1) && mkdir -p "$M/w/a" "$M/w/b"
'
for r in $(seq 1 $((data_rounds + meta_rounds))); do
	ms=$((50 + RANDOM % 1451)) kms=$((RANDOM % 3 ? 0 : 1 + RANDOM % 60))
	s1=$RANDOM$RANDOM s2=$RANDOM$RANDOM
	if [ "$r" -le "$data_rounds" ]; then
		what="file storm $r" kind=data
	else
		what="metadata storm $((r - data_rounds))" kind=meta
	fi
	if [ "$kms" -gt 0 ]; then
		what="$what: kill -9 after $ms ms and $kms ms into the remount"
	else
		what="$what: kill -9 after $ms ms"
	fi
	test_expect_success "$what, fsynced state intact, fsck clean" \
		"crash_round $r $kind $ms $kms $s1 $s2 $(opts_of $((r + 1)))"
done
test_expect_success 'clean unmount after the crashes: fsck clean, everything still there' '
	zf_umount "$M" && zf_fsck_clean "$D" && zf_mount "$D" "$M" && verify_all
'
test_expect_success 'unmount and final fsck, no sanitizer reports' '
	zf_umount "$M" && daemon_gone && zf_fsck_clean "$D" && no_san_reports
'
test_done
