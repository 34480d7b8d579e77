# bench/data.sh - test data the benchmarks share (sourced)
#
# build_text OUT MIB MARKER: MIB MiB of real text, /usr/share/doc
# (decompressed) and /usr/include, every line prefixed by MARKER and the
# number of its copy ("c<N>: "), so that no copy dedups against another
# while it compresses like text (zstd -1: about 4.6x).
build_text() { # out MiB marker: real text, each line prefixed by marker<copy>
	python3 - "$@" <<'PY'
import gzip, hashlib, os, sys
out, size, marker = sys.argv[1], int(sys.argv[2]) << 20, sys.argv[3].encode()
seen, parts = set(), []
for top in ("/usr/share/doc", "/usr/include"):
    for dirpath, dirs, files in os.walk(top):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            # license texts are the same in every package: they would dedup
            if f.startswith("copyright") or not os.path.isfile(p) or os.path.islink(p):
                continue
            try:
                data = gzip.open(p).read() if f.endswith(".gz") else open(p, "rb").read()
            except (OSError, EOFError):
                continue
            h = hashlib.sha1(data).digest()
            if not data or b"\0" in data or h in seen:
                continue
            seen.add(h)
            parts.append(data if data.endswith(b"\n") else data + b"\n")
lines = b"".join(parts).split(b"\n")[:-1]
with open(out + ".tmp", "wb") as o:
    n, left = 0, size
    while left > 0:
        pre = marker + b"%d: " % n
        b = pre + (b"\n" + pre).join(lines) + b"\n"
        o.write(b[:left])
        left -= min(left, len(b))
        n += 1
os.rename(out + ".tmp", out)
print(f"text: {len(seen)} files, {len(lines)} lines a copy, {n} copies", file=sys.stderr)
PY
}
