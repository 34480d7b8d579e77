/*
 * bench/bench_core.c - CPU cost of the write path's building blocks
 *
 * Generates two data sets of the same size (incompressible random bytes and
 * pseudo-text built from the words of the source tree) and prints MB/s of
 * CPU time for: memcpy, chunk cuts, chunk ids, zstd -1 and -3 in 4 MiB
 * blocks, and chunk + id + pack + zstd -1 into ~4 MiB super-chunks. The
 * budget it checks: the whole write path may cost at most 1.5x the CPU of
 * zstd -1 alone on the same bytes.
 *
 * Usage: bench_core [MiB=1024] [source-dir=.]
 *
 * Times are CLOCK_PROCESS_CPUTIME_ID (single-threaded, so it is the work done
 * and is not skewed by other load on the machine). Ratios are against
 * references measured in the same run, never absolute thresholds.
 * Not here: the full storage core write path -- see bench_full_write_path().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>
#include <zstd.h>

#include "common/endian.h"
#include "common/util.h"
#include "storage/chunker.h"
#include "storage/fs.h"

#include <sys/stat.h>

#define MIB ((size_t)1 << 20)
/* super-chunk target and the block size of the zstd references */
#define BENCH_BLOCK (4 * MIB)
/* store a super-chunk raw unless zstd saves at least 3% */
#define BENCH_RAW_PCT 97

struct bench_data {
	const char *name;
	uint8_t *buf;
	size_t len;
};

/* one measured row: CPU seconds, and output/input size where relevant */
struct bench_result {
	double cpu_s; /* < 0: not measured */
	double ratio; /* input / output bytes, 0 if not applicable */
	size_t count; /* chunks, for the cut row */
};

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* ---- data sets ---- */

static void gen_random(uint8_t *buf, size_t len)
{
	uint64_t s = 0x0123456789abcdefULL;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8)
		zf_put64(buf + i, splitmix64(&s));
	for (; i < len; i++)
		buf[i] = (uint8_t)splitmix64(&s);
}

/* words of the source tree, in order of appearance (with repeats) */
struct corpus {
	char **word;
	size_t n, cap;
};

static struct corpus *walk_corpus; /* nftw() has no user pointer */

static int corpus_wanted(const char *path)
{
	static const char *const ext[] = { ".c", ".h", ".md", ".am", ".ac", ".txt", ".sh" };
	const char *base = strrchr(path, '/');
	size_t i, l = strlen(path);

	base = base ? base + 1 : path;
	if (!strncmp(base, "README", 6))
		return 1;
	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		size_t e = strlen(ext[i]);

		if (l > e && !strcmp(path + l - e, ext[i]))
			return 1;
	}
	return 0;
}

static void corpus_add(struct corpus *c, const char *w, size_t len)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 4096;
		c->word = zf_realloc(c->word, c->cap * sizeof(*c->word));
	}
	c->word[c->n] = zf_malloc(len + 1);
	memcpy(c->word[c->n], w, len);
	c->word[c->n][len] = '\0';
	c->n++;
}

/* split text into identifiers/words and single punctuation characters */
static void corpus_add_text(struct corpus *c, const char *t, size_t len)
{
	size_t i = 0, j;

	while (i < len) {
		unsigned char ch = t[i];

		if (ch == '_' || (ch | 0x20) - 'a' < 26u || ch - '0' < 10u) {
			for (j = i; j < len; j++) {
				unsigned char d = t[j];

				if (!(d == '_' || (d | 0x20) - 'a' < 26u || d - '0' < 10u))
					break;
			}
			if (j - i < 40)
				corpus_add(c, t + i, j - i);
			i = j;
		} else if (ch > ' ' && ch < 127) {
			corpus_add(c, t + i, 1);
			i++;
		} else {
			i++;
		}
	}
}

static int corpus_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *base = path + ftw->base;
	void *buf;
	size_t len;

	if (type == FTW_D && ftw->level > 0 &&
	    (base[0] == '.' || !strcmp(base, "autom4te.cache") || !strncmp(base, "build", 5)))
		return FTW_SKIP_SUBTREE;
	if (type != FTW_F || st->st_size > (off_t)MIB || !corpus_wanted(path))
		return FTW_CONTINUE;
	if (zf_read_file(AT_FDCWD, path, &buf, &len) < 0)
		return FTW_CONTINUE;
	corpus_add_text(walk_corpus, buf, len);
	free(buf);
	return FTW_CONTINUE;
}

/* used when the source tree has too few words to be a fair sample */
static const char fallback_text[] =
	"the filesystem keeps every inode in an append only metadata log and each "
	"mutation is a checksummed record ; a checkpoint bounds the time of replay . "
	"file data is cut into chunks , deduplicated by their id , packed into "
	"compressed super chunks and appended to a segment file in the dev dir . "
	"static int zf_segstore_append ( struct zf_segstore * st , const void * buf , "
	"size_t len ) { int r ; if ( len == 0 ) return 0 ; r = zf_write_full ( fd , "
	"buf , len ) ; if ( r < 0 ) goto out_unlock ; return r ; } the uploader ships "
	"sealed segments to object storage in the background and a read fetches only "
	"the bytes it needs when the data was evicted from the local cache .";

/*
 * Pseudo-text: runs of 1..8 consecutive tokens copied from random places of
 * the corpus, so phrases repeat the way they do in real text and code but
 * the stream has no long exact repeats (which would flatter zstd and dedup).
 */
static void gen_text(uint8_t *buf, size_t len, const char *srcdir, size_t *ret_words,
		     int *ret_fallback)
{
	struct corpus c = { 0 };
	uint64_t s = 0xfeedfacecafef00dULL;
	size_t i, out = 0, col = 0;

	walk_corpus = &c;
	nftw(srcdir, corpus_visit, 32, FTW_PHYS | FTW_ACTIONRETVAL);
	*ret_fallback = c.n < 2000;
	if (*ret_fallback)
		corpus_add_text(&c, fallback_text, sizeof(fallback_text) - 1);
	*ret_words = c.n;

	while (out < len) {
		size_t at = splitmix64(&s) % c.n;
		size_t run = 1 + splitmix64(&s) % 8;

		for (i = 0; i < run && at + i < c.n && out < len; i++) {
			const char *w = c.word[at + i];
			size_t wl = strlen(w);

			if (wl > len - out)
				wl = len - out;
			memcpy(buf + out, w, wl);
			out += wl;
			col += wl;
			if (out < len) {
				/* wrap lines near 72 columns, indent some of them */
				if (col > 72 || (w[0] == ';' || w[0] == '{')) {
					buf[out++] = '\n';
					col = 0;
					if (out < len && (splitmix64(&s) & 3) == 0) {
						buf[out++] = '\t';
						col = 8;
					}
				} else {
					buf[out++] = ' ';
					col++;
				}
			}
		}
	}
	for (i = 0; i < c.n; i++)
		free(c.word[i]);
	free(c.word);
}

/* ---- measurements ---- */

static void bench_memcpy(const struct bench_data *d, struct bench_result *r)
{
	uint8_t *dst = zf_malloc(BENCH_BLOCK);
	size_t off, n;
	double t0;

	memset(dst, 0, BENCH_BLOCK);
	t0 = cpu_now();
	for (off = 0; off < d->len; off += n) {
		n = d->len - off < BENCH_BLOCK ? d->len - off : BENCH_BLOCK;
		memcpy(dst, d->buf + off, n);
		__asm__ __volatile__("" : : "r"(dst) : "memory");
	}
	r->cpu_s = cpu_now() - t0;
	free(dst);
}

/* cut only; leaves the chunk lengths in *ret_lens for the hash row */
static void bench_cut(const struct zf_chunker *c, const struct bench_data *d,
		      struct bench_result *r, uint32_t **ret_lens)
{
	/* every chunk but the last is >= min, so this bounds the count */
	size_t cap = d->len / ZF_CHUNK_MIN + 2, n = 0, off = 0;
	uint32_t *lens = zf_malloc(cap * sizeof(*lens));
	double t0;

	t0 = cpu_now();
	while (off < d->len) {
		size_t l = zf_chunker_cut(c, d->buf + off, d->len - off, 1);

		lens[n++] = (uint32_t)l;
		off += l;
	}
	r->cpu_s = cpu_now() - t0;
	r->count = n;
	*ret_lens = lens;
}

static void bench_hash(const struct zf_chunker *c, const struct bench_data *d,
		       const uint32_t *lens, size_t n, struct bench_result *r)
{
	struct zf_chunk_id id;
	uint64_t acc = 0;
	size_t i, off = 0;
	double t0;

	t0 = cpu_now();
	for (i = 0; i < n; i++) {
		zf_chunker_id(c, d->buf + off, lens[i], &id);
		acc ^= zf_get64(id.b);
		off += lens[i];
	}
	r->cpu_s = cpu_now() - t0;
	__asm__ __volatile__("" : : "r"(acc));
}

static int bench_zstd(const struct bench_data *d, int level, struct bench_result *r)
{
	size_t cap = ZSTD_compressBound(BENCH_BLOCK), off, n, out = 0;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	void *dst = zf_malloc(cap);
	double t0;
	int ret = 0;

	if (!cctx) {
		free(dst);
		return -ENOMEM;
	}
	t0 = cpu_now();
	for (off = 0; off < d->len; off += n) {
		size_t z;

		n = d->len - off < BENCH_BLOCK ? d->len - off : BENCH_BLOCK;
		z = ZSTD_compressCCtx(cctx, dst, cap, d->buf + off, n, level);
		if (ZSTD_isError(z)) {
			fprintf(stderr, "bench_core: zstd: %s\n", ZSTD_getErrorName(z));
			ret = -EIO;
			goto out;
		}
		out += z;
	}
	r->cpu_s = cpu_now() - t0;
	r->ratio = (double)d->len / out;
out:
	ZSTD_freeCCtx(cctx);
	free(dst);
	return ret;
}

/*
 * What the write path does with new data, minus I/O and the dedup lookup:
 * cut, id, copy the chunk into the open super-chunk, and when that reaches
 * ~4 MiB compress it, keeping the raw bytes if zstd saves less than 3%.
 */
static int bench_pipeline(const struct zf_chunker *c, const struct bench_data *d, int level,
			  struct bench_result *r)
{
	size_t cap = ZSTD_compressBound(BENCH_BLOCK + ZF_CHUNK_MAX);
	uint8_t *sc = zf_malloc(BENCH_BLOCK + zf_chunker_max(c));
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	void *dst = zf_malloc(cap);
	size_t off = 0, fill = 0, out = 0;
	struct zf_chunk_id id;
	uint64_t acc = 0;
	double t0;
	int ret = 0;

	if (!cctx) {
		ret = -ENOMEM;
		goto out_free;
	}
	t0 = cpu_now();
	while (off < d->len || fill) {
		if (off < d->len) {
			size_t l = zf_chunker_cut(c, d->buf + off, d->len - off, 1);

			zf_chunker_id(c, d->buf + off, l, &id);
			acc ^= zf_get64(id.b);
			memcpy(sc + fill, d->buf + off, l);
			fill += l;
			off += l;
		}
		if (fill >= BENCH_BLOCK || (off == d->len && fill)) {
			size_t z = ZSTD_compressCCtx(cctx, dst, cap, sc, fill, level);

			if (ZSTD_isError(z)) {
				fprintf(stderr, "bench_core: zstd: %s\n", ZSTD_getErrorName(z));
				ret = -EIO;
				goto out_free;
			}
			out += z * 100 > fill * BENCH_RAW_PCT ? fill : z;
			fill = 0;
		}
	}
	r->cpu_s = cpu_now() - t0;
	r->ratio = (double)d->len / out;
	__asm__ __volatile__("" : : "r"(acc));
out_free:
	ZSTD_freeCCtx(cctx);
	free(dst);
	free(sc);
	return ret;
}

/*
 * ==== HOOK for the lead: full write path through the storage core ====
 *
 * Replace this body once the storage core exists: create a scratch dev-dir,
 * open the core on it, write d->buf as one file (in, say, 1 MiB writes),
 * fsync, close; measure CPU with cpu_now() around the writes and the fsync
 * only, set r->cpu_s and r->ratio (input / bytes in segments), remove the
 * scratch dir, return 0. Returning -ENOSYS prints "n/a".
 */
static int bench_full_write_path(const struct zf_chunker *c, const struct bench_data *d,
				 struct bench_result *r)
{
	struct zf_mkfs_opts mo = { .zstd_level = 1 };
	struct zf_fs_stats st;
	struct zf_attr a;
	struct zf_fs *fs;
	char dir[] = "/tmp/zf-bench-XXXXXX", cmd[64];
	const size_t piece = 1 << 20;
	size_t off;
	double t0;
	int rc;

	if (!mkdtemp(dir))
		return -errno;
	rc = zf_fs_mkfs(dir, &mo);
	if (rc == 0)
		rc = zf_fs_open(dir, NULL, &fs);
	if (rc < 0)
		goto out;
	rc = zf_fs_mknod(fs, 1, "data", S_IFREG | 0644, 0, 0, 0, &a);
	t0 = cpu_now();
	for (off = 0; rc == 0 && off < d->len; off += piece) {
		size_t n = d->len - off < piece ? d->len - off : piece;

		if (zf_fs_write(fs, a.ino, d->buf + off, n, off) != (ssize_t)n)
			rc = -EIO;
	}
	if (rc == 0)
		rc = zf_fs_fsync(fs, a.ino);
	r->cpu_s = cpu_now() - t0;
	zf_fs_stats(fs, &st);
	r->ratio = st.stored_bytes ? (double)d->len / st.stored_bytes : 0;
	zf_fs_close(fs);
out:
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = rc ? rc : -EIO;
	return rc;
}

/* ---- report ---- */

enum {
	ROW_MEMCPY,
	ROW_CUT,
	ROW_HASH,
	ROW_ZSTD1,
	ROW_ZSTD3,
	ROW_PIPELINE,
	ROW_FULL,
	ROW_N,
};

static const char *const row_name[ROW_N] = {
	"memcpy (reference)",
	"chunk (cut only)",
	"hash (chunk ids)",
	"zstd -1, 4 MiB blocks",
	"zstd -3, 4 MiB blocks",
	"chunk+hash+zstd -1",
	"full write path (core)",
};

static int run_set(const struct zf_chunker *c, const struct bench_data *d,
		   struct bench_result res[ROW_N])
{
	uint32_t *lens;
	int r, i;

	for (i = 0; i < ROW_N; i++)
		res[i] = (struct bench_result){ .cpu_s = -1 };
	bench_memcpy(d, &res[ROW_MEMCPY]);
	bench_cut(c, d, &res[ROW_CUT], &lens);
	bench_hash(c, d, lens, res[ROW_CUT].count, &res[ROW_HASH]);
	free(lens);
	r = bench_zstd(d, 1, &res[ROW_ZSTD1]);
	if (r == 0)
		r = bench_zstd(d, 3, &res[ROW_ZSTD3]);
	if (r == 0)
		r = bench_pipeline(c, d, 1, &res[ROW_PIPELINE]);
	if (r < 0)
		return r;
	r = bench_full_write_path(c, d, &res[ROW_FULL]);
	if (r < 0 && r != -ENOSYS)
		fprintf(stderr, "bench_core: full write path: %s\n", strerror(-r));
	return 0;
}

static void print_cell(const struct bench_data *d, const struct bench_result *r)
{
	if (r->cpu_s < 0)
		printf("  %9s %7s", "n/a", "");
	else if (r->ratio > 0)
		printf("  %9.0f %6.2fx", d->len / r->cpu_s / 1e6, r->ratio);
	else
		printf("  %9.0f %7s", d->len / r->cpu_s / 1e6, "");
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_core [MiB=1024] [source-dir=.]\n");
}

int main(int argc, char **argv)
{
	static const uint8_t secret[ZF_SECRET_LEN] = "zerofs bench_core fixed secret!";
	struct bench_result res[2][ROW_N];
	struct bench_data set[2];
	const char *srcdir = ".";
	struct zf_chunker *c;
	size_t mib = 1024, words = 0;
	int fallback = 0;
	char *end;
	int i, k, r;

	if (argc > 3) {
		usage();
		return 2;
	}
	if (argc > 1) {
		errno = 0;
		mib = strtoul(argv[1], &end, 10);
		if (errno || *end || mib == 0 || mib > 65536) {
			usage();
			return 2;
		}
	}
	if (argc > 2)
		srcdir = argv[2];
	r = zf_chunker_new(secret, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX, &c);
	if (r < 0) {
		fprintf(stderr, "bench_core: cannot create chunker: %s\n", strerror(-r));
		return 1;
	}

	set[0] = (struct bench_data){ .name = "random", .len = mib * MIB };
	set[1] = (struct bench_data){ .name = "text", .len = mib * MIB };
	/* one data set in memory at a time */
	for (k = 0; k < 2; k++) {
		set[k].buf = zf_malloc(set[k].len);
		if (k == 0)
			gen_random(set[k].buf, set[k].len);
		else
			gen_text(set[k].buf, set[k].len, srcdir, &words, &fallback);
		r = run_set(c, &set[k], res[k]);
		free(set[k].buf);
		if (r < 0) {
			fprintf(stderr, "bench_core: '%s' data set failed: %s\n", set[k].name,
				strerror(-r));
			zf_chunker_free(c);
			return 1;
		}
	}

	printf("bench_core: %zu MiB per data set; chunks %u/%u/%u KiB; super-chunks %zu MiB;\n"
	       "zstd %s, xxhash %u.%u.%u; text from %zu tokens of '%s'%s\n"
	       "MB/s = 10^6 bytes of input per CPU second; ratio = input / output\n\n",
	       mib, ZF_CHUNK_MIN >> 10, ZF_CHUNK_AVG >> 10, ZF_CHUNK_MAX >> 10,
	       BENCH_BLOCK / MIB, ZSTD_versionString(), XXH_VERSION_MAJOR, XXH_VERSION_MINOR,
	       XXH_VERSION_RELEASE, words, srcdir,
	       fallback ? " (few sources: built-in words added)" : "");
	printf("%-24s  %17s  %17s\n", "", set[0].name, set[1].name);
	printf("%-24s  %9s %7s  %9s %7s\n", "test", "MB/s", "ratio", "MB/s", "ratio");
	for (i = 0; i < ROW_N; i++) {
		printf("%-24s", row_name[i]);
		for (k = 0; k < 2; k++)
			print_cell(&set[k], &res[k][i]);
		printf("\n");
	}
	printf("\n%-24s", "mean chunk (bytes)");
	for (k = 0; k < 2; k++)
		printf("  %9.0f %7s", (double)set[k].len / res[k][ROW_CUT].count, "");
	printf("\n%-24s", "pipeline / zstd-1 CPU");
	for (k = 0; k < 2; k++)
		printf("  %9.2f %7s", res[k][ROW_PIPELINE].cpu_s / res[k][ROW_ZSTD1].cpu_s, "");
	printf("\n%-24s", "full path / zstd-1 CPU");
	for (k = 0; k < 2; k++) {
		if (res[k][ROW_FULL].cpu_s < 0)
			printf("  %9s %7s", "n/a", "");
		else
			printf("  %9.2f %7s", res[k][ROW_FULL].cpu_s / res[k][ROW_ZSTD1].cpu_s, "");
	}
	printf("\n");
	zf_chunker_free(c);
	return 0;
}
