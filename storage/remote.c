/*
 * storage/remote.c - the object-storage tier (see remote.h)
 *
 * Local state: <dev-dir>/upload.state ("seq S", "seg N", "ckpt C" lines)
 * says what the bucket holds: log records up to S, every sealed segment up
 * to N, checkpoint C. It is rewritten (.tmp, fsync, rename) after each
 * segment and each round; if it is lost or stale, uploads are redone —
 * objects are immutable and named by content position, so a second put
 * writes the same bytes. A fourth line "claim L" is saved before a
 * checkpoint or log piece goes up: the bucket may hold records up to L from
 * this dev-dir. Records beyond it in the bucket were written by another
 * dev-dir (a restored copy): uploading would fork the filesystem, so
 * attaching refuses.
 *
 * Eviction: a sealed segment whose id is <= N may leave the dev-dir. Reads
 * of it then go through the fetch hook: a ranged GET of exactly the
 * super-chunk, kept in <dev-dir>/cache/<seg>-<off>.sc (unsynced: it is
 * verified on every use and re-fetched when it does not verify).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/buf.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/meta_format.h"
#include "storage/mlog.h"
#include "storage/remote.h"
#include "storage/seg_format.h"
#include "storage/segstore.h"

struct zf_remote {
	struct zf_fs *fs;
	struct zf_objstore *up;		/* uploads: patient */
	struct zf_objstore *down;	/* fetches: bounded by fetch_timeout_ms */
	struct zf_remote_opts o;
	char *url;
	char *dev_real;			/* the dev-dir's real path, named in the lease */
	int devfd, segfd, cachefd, metafd;
	pthread_t thread;
	int started;

	pthread_mutex_t evict_lock;	/* one eviction at a time; taken before lock */
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* the uploader has work */
	pthread_cond_t done;		/* a round finished */
	pthread_cond_t arrived;		/* a fetch finished (or failed) */
	/* protected by lock: */
	struct fetching {
		uint64_t seg, off;
		struct fetching *next;
	} *fetching;			/* super-chunks on their way: one GET each */
	int stopping;
	uint64_t up_seq, up_seg, up_ckpt;
	uint64_t claim_seq;		/* records this dev-dir may have put (>= up_seq) */
	uint64_t sync_want, sync_done;	/* committed seqs asked for / reached */
	int sync_err;
	/* the last failed round: which side, doing what, since when (wall clock); under lock */
	int fail_local;
	char fail_what[200];
	time_t fail_since;
	char released[33];		/* our lease, released by a clean close that could not
					 * delete it (upload.state "released"): no crash */
	uint64_t pending_since_ns;	/* 0: nothing pending */
	uint64_t fresh_since_ns;	/* first write admitted since the round's
					 * upload point was taken (0: none) */
	uint64_t progress_ns;		/* last time an object went up (or start) */
	uint64_t local_bytes;		/* segments + fetch cache in the dev-dir */
	uint64_t unevictable;		/* written bytes not yet in the bucket: segments,
					 * write buffers, admitted writes */
	uint64_t evictable;		/* local bytes the bucket holds: they may go */
	unsigned int waiters;		/* writers waiting for room */
	uint64_t uploaded, fetched, fetch_hits, fetch_misses, evictions, stalls;
	uint64_t t0_ns;
	/*
	 * Read-ahead of evicted data (the prefetch thread; under lock): a
	 * reader whose fetches follow each other through a segment gets the
	 * next super-chunks fetched into cache/ before it asks.
	 */
	pthread_t pf_thread;
	int pf_started, pf_pending;
	pthread_cond_t pf_wake;
	uint64_t seq_seg, seq_end;	/* where the last super-chunk a reader got ended */
	uint64_t pf_seg, pf_from, pf_to; /* asked: bytes [from, to) of segment seg */
	uint64_t pf_done_seg, pf_done_end; /* fetched ahead up to here */
	uint64_t pf_size_seg, pf_size;	/* size of the segment object pf_size_seg */
	uint64_t prefetched;		/* bytes fetched ahead */
	int fenced;
	uint8_t fsid[16];		/* this filesystem's, from the dev-dir's superblock */
	uint64_t head_seq, head_ckpt;	/* the head this process put last (UINT64_MAX: none) */
	/* a request the bucket did not answer (fsck: its results are incomplete) */
	int unreachable;		/* protected by lock */
	char unreachable_why[320];	/* protected by lock */
	int need_lease;			/* the bucket was unreachable at open: lease first */
	char lease_id[33];
	uint64_t lease_token, lease_renew_ns;
	/* fsck: the bucket's objects, listed once, sorted by key */
	struct bucket_obj {
		char *key;
		uint64_t size;
	} *objs;
	size_t nobjs;
	int listed;			/* 0 not yet, 1 done, < 0 the listing's error */
};

#define DEFAULT_INTERVAL_MS 1000
#define DEFAULT_MAX_DELAY_S 10
#define DEFAULT_FETCH_MS 30000
#define DEFAULT_WRITE_WAIT_MS 120000
#define DEFAULT_LEASE_S 60
#define PREFETCH_SCS 4		/* super-chunks fetched ahead of a sequential reader */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
	return zf_mono_ns();
}

static void evict(struct zf_remote *rm);

/* ---------------------------------------------------------------- state */

static int state_save(struct zf_remote *rm)
{
	char buf[200];
	int n;

	pthread_mutex_lock(&rm->lock);
	if (rm->claim_seq < rm->up_seq)
		rm->claim_seq = rm->up_seq;
	n = snprintf(buf, sizeof(buf),
		     "seq %" PRIu64 "\nseg %" PRIu64 "\nckpt %" PRIu64 "\nclaim %" PRIu64 "\n%s%s%s",
		     rm->up_seq, rm->up_seg, rm->up_ckpt, rm->claim_seq,
		     rm->released[0] ? "released " : "", rm->released, rm->released[0] ? "\n" : "");
	pthread_mutex_unlock(&rm->lock);
	return zf_publish_file(rm->devfd, "upload.state", buf, n);
}

static void state_load(struct zf_remote *rm)
{
	unsigned long long seq = 0, seg = 0, ckpt = 0, claim = 0;
	const char *rel;
	void *buf;
	size_t len;

	if (zf_read_file(rm->devfd, "upload.state", &buf, &len) < 0)
		return;
	((char *)buf)[len] = 0;
	if (sscanf(buf, "seq %llu\nseg %llu\nckpt %llu\nclaim %llu", &seq, &seg, &ckpt,
		   &claim) >= 3) {
		rm->up_seq = seq;
		rm->up_seg = seg;
		rm->up_ckpt = ckpt;
		rm->claim_seq = claim > seq ? claim : seq;
	}
	rel = strstr(buf, "\nreleased ");
	if (rel && sscanf(rel + 10, "%32[0-9a-f]", rm->released) != 1)
		rm->released[0] = 0;
	free(buf);
}

/* ------------------------------------------------------- bucket metadata */

/*
 * What the bucket's metadata must be, checked the same way by restore,
 * fsck's audit and bucket gc (docs/FORMAT.md "Bucket"). Bucket objects are
 * published whole (a put replaces an object atomically), so anything in one
 * that does not verify is damage, never a torn tail.
 *
 * The head object says how far the bucket's log reaches: the uploader puts
 * it after every round that moved the log end or the checkpoint, always
 * after the objects it counts, so the chain of log pieces reaches at least
 * its seq (a crash between the two leaves the head behind, never ahead).
 */

#define HEAD_KEY "head"
#define HEAD_MAX 160		/* a version 1 head is 117 bytes */

struct head {
	uint8_t fsid[16];
	uint64_t seq;		/* the bucket holds log records up to seq */
	uint64_t ckpt;		/* and a checkpoint at least this new */
};

static void hex_str(const uint8_t *p, size_t n, char *out)
{
	static const char digit[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digit[p[i] >> 4];
		out[2 * i + 1] = digit[p[i] & 15];
	}
	out[2 * n] = 0;
}

static size_t head_format(const struct head *h, char *buf)
{
	char fsid[33];
	int n;

	hex_str(h->fsid, 16, fsid);
	n = snprintf(buf, HEAD_MAX, "zerofs-head 1\nfsid %s\nseq %016" PRIx64 "\nckpt %016" PRIx64 "\n",
		     fsid, h->seq, h->ckpt);
	n += snprintf(buf + n, HEAD_MAX - n, "xxh3 %016" PRIx64 "\n", (uint64_t)XXH3_64bits(buf, n));
	return n;
}

/* 0 and *ret, or -EBADMSG with why: the head must be exactly what head_format wrote */
static int head_parse(const void *buf, size_t len, struct head *ret, char *why, size_t wlen)
{
	char text[HEAD_MAX], canon[HEAD_MAX], fsid[33];
	unsigned long long seq, ckpt, sum;
	const char *x;
	struct head h;
	int i, n = 0;

	if (len >= sizeof(text) || len < 14 || memcmp(buf, "zerofs-head ", 12)) {
		snprintf(why, wlen, "not a zerofs head (%zu bytes)", len);
		return -EBADMSG;
	}
	memcpy(text, buf, len);
	text[len] = 0;
	if (strncmp(text, "zerofs-head 1\n", 14)) {
		snprintf(why, wlen, "unsupported head version");
		return -EBADMSG;
	}
	x = strstr(text, "\nxxh3 ");
	if (!x || sscanf(x + 6, "%16llx%n", &sum, &n) != 1 || n != 16 || x[6 + n] != '\n' ||
	    x + 7 + n != text + len) {
		snprintf(why, wlen, "truncated (%zu bytes, no checksum line at its end)", len);
		return -EBADMSG;
	}
	if (sum != XXH3_64bits(text, x + 1 - text)) {
		snprintf(why, wlen, "checksum mismatch");
		return -EBADMSG;
	}
	if (sscanf(text, "zerofs-head 1\nfsid %32[0-9a-f]\nseq %16llx\nckpt %16llx\n", fsid, &seq,
		   &ckpt) != 3 || strlen(fsid) != 32) {
		snprintf(why, wlen, "malformed");
		return -EBADMSG;
	}
	for (i = 0; i < 16; i++) {
		unsigned int b;

		sscanf(fsid + 2 * i, "%2x", &b);
		h.fsid[i] = b;
	}
	h.seq = seq;
	h.ckpt = ckpt;
	if (head_format(&h, canon) != len || memcmp(canon, text, len)) {
		snprintf(why, wlen, "malformed");
		return -EBADMSG;
	}
	*ret = h;
	return 0;
}

/* the superblock's fsid, or -EBADMSG with why */
static int sb_verify(const uint8_t *p, size_t len, uint8_t fsid[16], char *why, size_t wlen)
{
	if (len != ZF_SB_SIZE) {
		snprintf(why, wlen, "%zu bytes, not %u", len, ZF_SB_SIZE);
		return -EBADMSG;
	}
	if (memcmp(p, ZF_SB_MAGIC, 8) || zf_get64(p + ZF_SB_CSUM_OFF) != XXH3_64bits(p, ZF_SB_CSUM_OFF)) {
		snprintf(why, wlen, "bad magic or checksum");
		return -EBADMSG;
	}
	if (zf_get32(p + 8) != ZF_SB_VERSION) {
		snprintf(why, wlen, "unsupported version %u", zf_get32(p + 8));
		return -EBADMSG;
	}
	memcpy(fsid, p + 16, 16);
	return 0;
}

/* the 64-byte header of a log piece or checkpoint: its kind, fsid and seq */
static int file_hdr_verify(const uint8_t *p, size_t len, const char *magic, uint32_t version,
			   const uint8_t fsid[16], uint64_t seq, char *why, size_t wlen)
{
	if (len < ZF_LOG_HDR_SIZE) {
		snprintf(why, wlen, "truncated: %zu bytes, shorter than its header", len);
		return -EBADMSG;
	}
	if (memcmp(p, magic, 8) || zf_get64(p + 56) != XXH3_64bits(p, 56)) {
		snprintf(why, wlen, "its header does not verify (magic or checksum)");
		return -EBADMSG;
	}
	if (zf_get32(p + 8) != version) {
		snprintf(why, wlen, "unsupported version %u", zf_get32(p + 8));
		return -EBADMSG;
	}
	if (memcmp(p + 16, fsid, 16)) {
		snprintf(why, wlen, "belongs to another filesystem (its fsid is not the superblock's)");
		return -EBADMSG;
	}
	if (zf_get64(p + 32) != seq) {
		snprintf(why, wlen, "its header says record 0x%" PRIx64 ", its key 0x%" PRIx64
			 " (another object under this key)", zf_get64(p + 32), seq);
		return -EBADMSG;
	}
	return 0;
}

typedef void (*meta_frame_fn)(void *ctx, const struct zf_frame *f);

/*
 * A bucket log piece: a log file of fsid whose header says first, holding
 * exactly records first..last in complete transactions. 0, or -EBADMSG
 * with why. Either way *ret_ok_len and *ret_ok_last give the longest prefix
 * of complete transactions that verifies (the header alone: first - 1).
 */
static int piece_verify(const uint8_t *p, size_t len, const uint8_t fsid[16], uint64_t first,
			uint64_t last, meta_frame_fn fn, void *ctx, size_t *ret_ok_len,
			uint64_t *ret_ok_last, char *why, size_t wlen)
{
	uint64_t seq = first;
	struct zf_frame f = { 0 };
	size_t off = ZF_LOG_HDR_SIZE;
	int r;

	*ret_ok_len = 0;
	*ret_ok_last = first - 1;
	r = file_hdr_verify(p, len, ZF_LOG_MAGIC, ZF_LOG_VERSION, fsid, first, why, wlen);
	if (r < 0)
		return r;
	*ret_ok_len = off;
	while (off < len) {
		ssize_t n = zf_frame_parse(p + off, len - off, &f);

		if (n == 0) {
			snprintf(why, wlen, "truncated: record 0x%" PRIx64 " at offset %zu runs past "
				 "its end (%zu bytes)", seq, off, len);
			return -EBADMSG;
		}
		if (n < 0) {
			snprintf(why, wlen, "record 0x%" PRIx64 " at offset %zu does not verify "
				 "(checksum, magic or length)", seq, off);
			return -EBADMSG;
		}
		if (f.seq != seq || seq > last) {
			snprintf(why, wlen, "the record at offset %zu is 0x%" PRIx64 ", expected 0x%"
				 PRIx64 "%s", off, f.seq, seq, seq > last ? " (past its last)" : "");
			return -EBADMSG;
		}
		if (fn)
			fn(ctx, &f);
		off += n;
		if (f.flags & ZF_REC_F_TXN_END) {
			*ret_ok_len = off;
			*ret_ok_last = seq;
		}
		seq++;
	}
	if (seq - 1 != last) {
		snprintf(why, wlen, "truncated: it ends after record 0x%" PRIx64 ", its key says 0x%"
			 PRIx64, seq - 1, last);
		return -EBADMSG;
	}
	if (!(f.flags & ZF_REC_F_TXN_END)) {
		snprintf(why, wlen, "its last transaction is incomplete (record 0x%" PRIx64
			 " does not end it)", last);
		return -EBADMSG;
	}
	return 0;
}

/* a bucket checkpoint as of record seq: every frame, STATE first, END last and exactly at the end */
static int ckpt_verify(const uint8_t *p, size_t len, const uint8_t fsid[16], uint64_t seq,
		       meta_frame_fn fn, void *ctx, char *why, size_t wlen)
{
	struct zf_frame f = { 0 };
	size_t off = ZF_CKPT_HDR_SIZE;
	uint64_t n = 1;
	int r;

	r = file_hdr_verify(p, len, ZF_CKPT_MAGIC, ZF_CKPT_VERSION, fsid, seq, why, wlen);
	if (r < 0)
		return r;
	while (off < len) {
		ssize_t k = zf_frame_parse(p + off, len - off, &f);

		if (k <= 0) {
			snprintf(why, wlen, "record %" PRIu64 " at offset %zu %s", n, off,
				 k == 0 ? "runs past its end (truncated)" : "does not verify");
			return -EBADMSG;
		}
		if (f.seq != n || (n == 1) != (f.type == ZF_REC_STATE)) {
			snprintf(why, wlen, "record %" PRIu64 " at offset %zu is out of order", n, off);
			return -EBADMSG;
		}
		if (fn)
			fn(ctx, &f);
		off += k;
		if (f.type == ZF_REC_END)
			break;
		n++;
	}
	if (f.type != ZF_REC_END) {
		snprintf(why, wlen, "truncated: no END record (%zu bytes)", len);
		return -EBADMSG;
	}
	if (f.len != 8 || zf_get64(f.payload) != n - 1 || off != len) {
		snprintf(why, wlen, "its END record does not match (record %" PRIu64 " at offset %zu "
			 "of %zu bytes)", n, off - ZF_REC_HDR_SIZE - f.len, len);
		return -EBADMSG;
	}
	return 0;
}

/*
 * A bucket segment, structurally: header and footer, and every super-chunk
 * between them by its header and payload checksums (no decompression: the
 * chunk ids are checked by reads and by fsck's data pass).
 */
static int seg_verify(const uint8_t *p, size_t len, uint64_t id, const uint8_t fsid[16],
		      char *why, size_t wlen)
{
	const uint8_t *ftr = p + len - ZF_SEG_FTR_SIZE;
	uint64_t off = ZF_SEG_HDR_SIZE, end;

	if (len < ZF_SEG_HDR_SIZE + ZF_SEG_FTR_SIZE) {
		snprintf(why, wlen, "truncated (%zu bytes)", len);
		return -EBADMSG;
	}
	if (memcmp(p, ZF_SEG_MAGIC, ZF_SEG_MAGIC_LEN) ||
	    zf_get64(p + ZF_SEG_HDR_CSUM_OFF) != XXH3_64bits(p, ZF_SEG_HDR_CSUM_OFF)) {
		snprintf(why, wlen, "its header does not verify");
		return -EBADMSG;
	}
	if (zf_get64(p + ZF_SEG_HDR_ID_OFF) != id || memcmp(p + ZF_SEG_HDR_FSID_OFF, fsid, 16)) {
		snprintf(why, wlen, "its header names segment %016" PRIx64 "%s (another segment under "
			 "this key)", zf_get64(p + ZF_SEG_HDR_ID_OFF),
			 memcmp(p + ZF_SEG_HDR_FSID_OFF, fsid, 16) ? " of another filesystem" : "");
		return -EBADMSG;
	}
	end = zf_get64(ftr + ZF_SEG_FTR_END_OFF);
	if (memcmp(ftr, ZF_SEG_FTR_MAGIC, 8) ||
	    zf_get64(ftr + ZF_SEG_FTR_CSUM_OFF) != XXH3_64bits(ftr, ZF_SEG_FTR_CSUM_OFF) ||
	    zf_get64(ftr + ZF_SEG_FTR_ID_OFF) != id || end != len - ZF_SEG_FTR_SIZE) {
		snprintf(why, wlen, "its footer does not verify (truncated, or damaged at its end)");
		return -EBADMSG;
	}
	while (off < end) {
		const uint8_t *h = p + off;
		uint64_t n, dlen;
		XXH3_state_t *st;
		uint64_t sum;

		if (end - off < ZF_SC_HDR_SIZE || zf_get32(h) != ZF_SC_MAGIC)
			goto bad;
		n = zf_get32(h + ZF_SC_NCHUNKS_OFF);
		dlen = ZF_SC_HDR_SIZE + n * ZF_SC_ENT_SIZE + zf_get32(h + ZF_SC_STORED_LEN_OFF);
		if (n == 0 || n > ZF_SC_CHUNKS_MAX || dlen > end - off)
			goto bad;
		st = XXH3_createState();
		XXH3_64bits_reset(st);
		XXH3_64bits_update(st, h, ZF_SC_HCSUM_COVER);
		XXH3_64bits_update(st, h + ZF_SC_HDR_SIZE, n * ZF_SC_ENT_SIZE);
		sum = XXH3_64bits_digest(st);
		XXH3_freeState(st);
		if (sum != zf_get64(h + ZF_SC_HCSUM_OFF) || zf_get64(h + ZF_SC_SEG_OFF) != id ||
		    zf_get64(h + ZF_SC_PCSUM_OFF) !=
			    XXH3_64bits(h + ZF_SC_HDR_SIZE + n * ZF_SC_ENT_SIZE,
					zf_get32(h + ZF_SC_STORED_LEN_OFF)))
			goto bad;
		off += dlen;
	}
	return 0;
bad:
	snprintf(why, wlen, "the super-chunk at offset %" PRIu64 " does not verify", off);
	return -EBADMSG;
}

/* ---- the chain: the newest checkpoint that verifies and the log pieces after it ---- */

enum {
	SAY_DAMAGE,		/* damage that costs log records (a restore refuses) */
	SAY_DAMAGE_OK,		/* damage a restore can do without (another copy, an older
				 * checkpoint whose log reaches as far) */
	SAY_UNUSED,		/* an object a restore cannot use (past a gap) */
	SAY_WARN,		/* worth saying, not damage */
};

struct mkey {
	uint64_t a, b;		/* checkpoint: a = its seq; log piece: records a..b */
};

struct mscan {
	/* in */
	struct zf_objstore *os;
	uint8_t fsid[16];	/* the superblock's */
	int fetch;		/* GET and verify every object of the chain (else: keys only) */
	int partial;		/* keep the verified prefix of a damaged last piece (allow-loss) */
	uint64_t expect;	/* the bucket should hold records up to this (0: no opinion) */
	const char *expect_src;	/* who says so ("upload.state") */
	meta_frame_fn frame;	/* every frame of the chain's objects (gc: SC records) */
	/* restore: a verified object of the chain, under its dev-dir name in meta/ */
	int (*keep)(void *ctx, const char *name, const void *buf, size_t len);
	void (*say)(void *ctx, int kind, const char *msg);
	void *ctx;
	/* out */
	struct mkey *ckpts, *pieces;	/* checkpoints newest first; pieces by first, longest first */
	size_t nckpts, npieces;
	int head_state;		/* 0 absent, 1 verified and this filesystem's, -1 not */
	char head_why[200];
	struct head head;
	int has_ckpt;		/* the chain starts after checkpoint ckpt (else at record 1) */
	uint64_t ckpt;
	int usable;		/* a chain exists (a checkpoint or pieces from record 1 verify) */
	uint64_t end;		/* the chain's last record */
	uint64_t target;	/* the last record the bucket should hold */
	unsigned int damaged;	/* SAY_DAMAGE lines */
};

static void mscan_say(struct mscan *s, int kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void mscan_say(struct mscan *s, int kind, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (kind == SAY_DAMAGE)
		s->damaged++;
	if (s->say)
		s->say(s->ctx, kind, msg);
	else
		zf_log(kind == SAY_DAMAGE ? ZF_LOG_ERR : ZF_LOG_WARN, "%s", msg);
}

static int mscan_list_fn(void *ctx, const char *key, uint64_t size)
{
	struct mscan *s = ctx;
	unsigned long long a, b;
	int n = 0;

	(void)size;
	if (sscanf(key, "meta/log.%16llx-%16llx%n", &a, &b, &n) == 2 && n == 42 && !key[n] &&
	    a <= b && a > 0) {
		s->pieces = zf_realloc(s->pieces, (s->npieces + 1) * sizeof(*s->pieces));
		s->pieces[s->npieces++] = (struct mkey){ a, b };
	} else if (sscanf(key, "meta/ckpt.%16llx%n", &a, &n) == 1 && n == 26 && !key[n]) {
		s->ckpts = zf_realloc(s->ckpts, (s->nckpts + 1) * sizeof(*s->ckpts));
		s->ckpts[s->nckpts++] = (struct mkey){ a, a };
	}
	return 0;
}

static int cmp_newest(const void *x, const void *y)
{
	const struct mkey *p = x, *q = y;

	return p->a > q->a ? -1 : p->a < q->a;
}

static int cmp_chain(const void *x, const void *y)
{
	const struct mkey *p = x, *q = y;

	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	return p->b > q->b ? -1 : p->b < q->b;
}

static void piece_key(uint64_t a, uint64_t b, char *buf, size_t len)
{
	snprintf(buf, len, "meta/log.%016" PRIx64 "-%016" PRIx64, a, b);
}

static void mscan_free(struct mscan *s)
{
	free(s->ckpts);
	free(s->pieces);
	s->ckpts = s->pieces = NULL;
	s->nckpts = s->npieces = 0;
}

/*
 * A log piece whose records run from before next to past it (a re-upload
 * overlapping the chain): the same log from record next on, with its header
 * moved there. next follows a transaction's end (the chain's previous piece
 * ended one), so the image holds complete transactions.
 */
static int piece_trim(const uint8_t *p, size_t len, uint64_t next, struct zf_buf *out)
{
	size_t off = ZF_LOG_HDR_SIZE;
	struct zf_frame f;
	uint8_t *h;

	while (off < len) {
		ssize_t n = zf_frame_parse(p + off, len - off, &f);

		if (n <= 0)
			return -EBADMSG;
		if (f.seq == next)
			break;
		off += n;
	}
	if (off >= len)
		return -EBADMSG;
	h = zf_buf_grow(out, ZF_LOG_HDR_SIZE);
	memcpy(h, p, ZF_LOG_HDR_SIZE);
	zf_put64(h + 32, next);
	zf_put64(h + 56, XXH3_64bits(h, 56));
	zf_buf_add(out, p + off, len - off);
	return 0;
}

/* pieces that failed where the chain stands now, said once it is known what they cost */
struct mfail {
	char msg[2][400];
	unsigned int n;
};

/*
 * The piece at index i, which holds record next: 0 when it verifies (and
 * is kept), -EBADMSG when it is damaged (noted in fail), or the store's
 * -errno.
 */
static int mscan_piece(struct mscan *s, size_t i, uint64_t next, struct mfail *fail,
		       struct zf_buf *partial, uint64_t *partial_last)
{
	const struct mkey *k = &s->pieces[i];
	char key[64], name[32], why[256];
	struct zf_buf trimmed = { 0 };
	uint64_t ok_last;
	size_t len, ok_len;
	void *buf;
	int r;

	if (!s->fetch)
		return 0;
	piece_key(k->a, k->b, key, sizeof(key));
	r = zf_objstore_get(s->os, key, 0, 0, &buf, &len);
	if (r == -ENOENT) {
		snprintf(why, sizeof(why), "listed, then gone (deleted meanwhile?)");
		goto damaged;
	}
	if (r < 0)
		return r;
	r = piece_verify(buf, len, s->fsid, k->a, k->b, s->frame, s->ctx, &ok_len, &ok_last, why,
			 sizeof(why));
	if (r < 0) {
		if (s->partial && k->a == next && ok_last >= next && ok_last > *partial_last) {
			partial->len = 0;
			zf_buf_add(partial, buf, ok_len);
			*partial_last = ok_last;
		}
		free(buf);
		goto damaged;
	}
	if (s->keep) {
		if (k->a < next) {
			r = piece_trim(buf, len, next, &trimmed);
			if (r == 0) {
				zf_mlog_name(next, name, sizeof(name));
				r = s->keep(s->ctx, name, trimmed.p, trimmed.len);
			}
			zf_buf_free(&trimmed);
		} else {
			zf_mlog_name(k->a, name, sizeof(name));
			r = s->keep(s->ctx, name, buf, len);
		}
	}
	free(buf);
	return r == -EBADMSG ? -EIO : r;
damaged:
	if (fail->n < 2)
		snprintf(fail->msg[fail->n++], sizeof(fail->msg[0]), "%s: %s", key, why);
	return -EBADMSG;
}

/*
 * Find the newest checkpoint that verifies and the longest chain of log
 * pieces after it, and compare its end with what the bucket should hold:
 * the head's seq, s->expect, the newest piece or checkpoint. Each finding
 * is said once. 0, or the store's -errno when it did not answer (nothing is
 * concluded then).
 */
static int mscan_run(struct mscan *s)
{
	char key[64], name[32], why[256];
	struct mfail ckpt_bad = { .n = 0 }, fail = { .n = 0 };
	struct zf_buf partial = { 0 };
	uint64_t next, partial_last = 0, gap_to;
	const char *target_src;
	char target_buf[64];
	void *buf = NULL;
	size_t i, len;
	unsigned int j;
	int r;

	r = zf_objstore_list(s->os, "meta/", mscan_list_fn, s);
	if (r < 0)
		return r;
	if (s->nckpts)
		qsort(s->ckpts, s->nckpts, sizeof(*s->ckpts), cmp_newest);
	if (s->npieces)
		qsort(s->pieces, s->npieces, sizeof(*s->pieces), cmp_chain);
	r = zf_objstore_get(s->os, HEAD_KEY, 0, 0, &buf, &len);
	if (r == 0) {
		s->head_state = head_parse(buf, len, &s->head, s->head_why, sizeof(s->head_why)) == 0
					? 1 : -1;
		if (s->head_state > 0 && memcmp(s->head.fsid, s->fsid, 16)) {
			snprintf(s->head_why, sizeof(s->head_why), "belongs to another filesystem (its "
				 "fsid is not the superblock's)");
			s->head_state = -1;
		}
		free(buf);
		buf = NULL;
	} else if (r != -ENOENT) {
		return r;
	}
	/* what the bucket should hold: the most anyone says */
	s->target = s->expect;
	target_src = s->expect_src;
	if (s->head_state > 0 && s->head.seq > s->target) {
		s->target = s->head.seq;
		target_src = "the bucket's head";
	}
	if (s->nckpts && s->ckpts[0].a > s->target) {
		s->target = s->ckpts[0].a;
		snprintf(target_buf, sizeof(target_buf), "meta/ckpt.%016" PRIx64, s->ckpts[0].a);
		target_src = target_buf;
	}
	for (i = 0; i < s->npieces; i++)
		if (s->pieces[i].b > s->target) {
			s->target = s->pieces[i].b;
			target_src = NULL; /* a piece exists past the end: the gap says it */
		}
	/* the newest checkpoint that verifies */
	for (i = 0; i < s->nckpts && !s->has_ckpt; i++) {
		snprintf(key, sizeof(key), "meta/ckpt.%016" PRIx64, s->ckpts[i].a);
		if (s->fetch) {
			r = zf_objstore_get(s->os, key, 0, 0, &buf, &len);
			if (r < 0 && r != -ENOENT)
				goto out;
			if (r == -ENOENT)
				snprintf(why, sizeof(why), "listed, then gone (deleted meanwhile?)");
			else
				r = ckpt_verify(buf, len, s->fsid, s->ckpts[i].a, s->frame, s->ctx, why,
						sizeof(why));
			if (r < 0) {
				free(buf);
				buf = NULL;
				if (ckpt_bad.n < 2)
					snprintf(ckpt_bad.msg[ckpt_bad.n++], sizeof(ckpt_bad.msg[0]),
						 "%s: %s", key, why);
				continue;
			}
			if (s->keep) {
				zf_ckpt_name(s->ckpts[i].a, name, sizeof(name));
				r = s->keep(s->ctx, name, buf, len);
			}
			free(buf);
			buf = NULL;
			if (r < 0)
				goto out;
		}
		s->has_ckpt = 1;
		s->ckpt = s->ckpts[i].a;
	}
	/* the log after it, the longest verified piece first where several start alike */
	next = (s->has_ckpt ? s->ckpt : 0) + 1;
	for (;;) {
		int advanced = 0, pass;

		/* pass 0: pieces starting at next; pass 1: pieces overlapping it */
		for (pass = 0; pass < 2 && !advanced; pass++) {
			for (i = 0; i < s->npieces && !advanced; i++) {
				const struct mkey *k = &s->pieces[i];

				if (k->a > next || k->b < next || (k->a < next) != pass)
					continue;
				r = mscan_piece(s, i, next, &fail, &partial, &partial_last);
				if (r < 0 && r != -EBADMSG)
					goto out;
				if (r == 0) {
					next = k->b + 1;
					advanced = 1;
				}
			}
		}
		if (!advanced)
			break;
		/* damaged pieces another one stood in for cost nothing */
		for (j = 0; j < fail.n; j++)
			mscan_say(s, SAY_DAMAGE_OK, "%s (another piece holds its records)",
				  fail.msg[j]);
		fail.n = 0;
		partial_last = 0;
	}
	if (partial_last >= next && s->keep) {
		/* allow-loss: the complete transactions before the damage */
		zf_mlog_name(next, name, sizeof(name));
		r = s->keep(s->ctx, name, partial.p, partial.len);
		if (r < 0)
			goto out;
		next = partial_last + 1;
	}
	s->end = next - 1;
	s->usable = s->has_ckpt || s->end > 0;
	r = 0;
	/* a damaged newer checkpoint costs nothing when the chain reaches as far without it */
	for (j = 0; j < ckpt_bad.n; j++)
		mscan_say(s, s->usable && s->end >= s->target ? SAY_DAMAGE_OK : SAY_DAMAGE, "%s",
			  ckpt_bad.msg[j]);
	if (s->head_state > 0 && s->head.ckpt > (s->has_ckpt ? s->ckpt : 0)) {
		for (i = 0; i < s->nckpts && s->ckpts[i].a != s->head.ckpt; i++)
			;
		if (i == s->nckpts)
			mscan_say(s, s->usable && s->end >= s->target ? SAY_DAMAGE_OK : SAY_DAMAGE,
				  "meta/ckpt.%016" PRIx64 " missing (the bucket's head names it)",
				  s->head.ckpt);
	}
	if (!s->usable) {
		if (s->nckpts || s->npieces)
			mscan_say(s, SAY_DAMAGE, "no checkpoint verifies and no log piece starts at "
				  "record 1: nothing in the bucket can be restored");
		goto out;
	}
	if (s->has_ckpt && s->ckpt != s->ckpts[0].a && s->end >= s->target)
		mscan_say(s, SAY_WARN, "used the older checkpoint meta/ckpt.%016" PRIx64 ": its log "
			  "reaches record 0x%" PRIx64 ", as far as the bucket holds", s->ckpt, s->end);
	if (s->end >= s->target)
		goto out;
	/* records are missing: the damaged piece or the hole where the chain stops */
	if (fail.n) {
		mscan_say(s, SAY_DAMAGE, "%s: records 0x%" PRIx64 "..0x%" PRIx64 " are lost with it",
			  fail.msg[0], next, s->target);
		for (j = 1; j < fail.n; j++)
			mscan_say(s, SAY_DAMAGE, "%s", fail.msg[j]);
	} else {
		gap_to = s->target;
		for (i = 0; i < s->npieces; i++)
			if (s->pieces[i].a > next && s->pieces[i].a - 1 < gap_to)
				gap_to = s->pieces[i].a - 1;
		piece_key(next, gap_to, key, sizeof(key));
		if (gap_to < s->target)
			mscan_say(s, SAY_DAMAGE, "%s missing: the log has a gap before record 0x%"
				  PRIx64, key, gap_to + 1);
		else
			mscan_say(s, SAY_DAMAGE, "%s missing (%s says records up to 0x%" PRIx64 ")",
				  key, target_src ? target_src : "the bucket", s->target);
	}
	for (i = 0; i < s->npieces; i++)
		if (s->pieces[i].a > next) {
			piece_key(s->pieces[i].a, s->pieces[i].b, key, sizeof(key));
			mscan_say(s, SAY_UNUSED, "%s (it follows the missing records)", key);
		}
out:
	zf_buf_free(&partial);
	return r;
}

/*
 * A request the bucket did not answer (an outage, a timeout, a refusal),
 * as opposed to an answer about an object: fsck cannot conclude anything
 * from it (zf_remote_unreachable). The first one is kept with its reason.
 */
static void note_unreachable(struct zf_remote *rm, const char *what, const char *key, int err)
{
	pthread_mutex_lock(&rm->lock);
	if (!rm->unreachable) {
		rm->unreachable = err;
		snprintf(rm->unreachable_why, sizeof(rm->unreachable_why), "%s%s%s%s: %s", what,
			 key ? " '" : "", key ? key : "", key ? "'" : "", strerror(-err));
	}
	pthread_mutex_unlock(&rm->lock);
}

int zf_remote_unreachable(struct zf_remote *rm, char *why, size_t len)
{
	int r;

	pthread_mutex_lock(&rm->lock);
	r = rm->unreachable;
	if (r && why)
		snprintf(why, len, "%s", rm->unreachable_why);
	pthread_mutex_unlock(&rm->lock);
	return r;
}

/* ---------------------------------------------------------------- lease */

struct lease {
	char id[64];
	char who[256];			/* "<host> pid <pid>" */
	char dev[4096];			/* the holder's dev-dir ("": an older zerofs) */
	uint64_t token, expires;
};

static int lease_read(struct zf_objstore *os, struct lease *ret)
{
	unsigned long long t = 0, e = 0;
	struct lease l = { 0 };
	const char *dev;
	size_t len;
	void *buf;
	int r;

	r = zf_objstore_get(os, "lease", 0, 0, &buf, &len);
	if (r < 0)
		return r;
	buf = zf_realloc(buf, len + 1);
	((char *)buf)[len] = 0;
	if (sscanf(buf, "zerofs-lease 1\nid %63s\nholder %255[^\n]\nexpires %llu\ntoken %llu", l.id,
		   l.who, &e, &t) != 4) {
		free(buf);
		return -EBADMSG;
	}
	dev = strstr(buf, "\ndev ");
	if (dev && sscanf(dev + 5, "%4095[^\n]", l.dev) != 1)
		l.dev[0] = 0;
	free(buf);
	l.expires = e;
	l.token = t;
	*ret = l;
	return 0;
}

static int lease_write(struct zf_remote *rm)
{
	char buf[4608], host[128] = "?";
	int n;

	gethostname(host, sizeof(host) - 1);
	n = snprintf(buf, sizeof(buf),
		     "zerofs-lease 1\nid %s\nholder %s pid %d\nexpires %llu\ntoken %" PRIu64
		     "\ndev %s\n",
		     rm->lease_id, host, (int)getpid(),
		     (unsigned long long)(time(NULL) + rm->o.lease_ttl_s), rm->lease_token,
		     rm->dev_real);
	if (n >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	return zf_objstore_put(rm->up, "lease", buf, n);
}

/*
 * Is the holder of an unexpired lease certainly gone? Only when it served
 * this very dev-dir on this host: a zerofs daemon holds its dev-dir's lock
 * from open to exit, and we hold that lock now (zf_fs_open took it), so
 * that daemon is dead — a kill -9 or a crash. Its pid proves nothing: the
 * lease may name the process that daemonized, and pids are reused.
 */
static int lease_holder_gone(const struct zf_remote *rm, const struct lease *l)
{
	char host[256] = "", holder[256] = "";

	if (!l->dev[0] || sscanf(l->who, "%255s pid", holder) != 1)
		return 0;
	gethostname(host, sizeof(host) - 1);
	return strcmp(host, holder) == 0 && strcmp(l->dev, rm->dev_real) == 0;
}

/* -EBUSY (logged) if another writer holds the lease, else 0 or the store's -errno */
static int lease_acquire(struct zf_remote *rm)
{
	struct lease l = { 0 };
	uint8_t raw[16];
	int r, i;

	zf_random(raw, sizeof(raw));
	for (i = 0; i < 16; i++)
		sprintf(rm->lease_id + 2 * i, "%02x", raw[i]);
	r = lease_read(rm->up, &l);
	if (r == 0 && l.expires > (uint64_t)time(NULL) && rm->released[0] &&
	    !strcmp(l.id, rm->released)) {
		/* this dev-dir's last mount released it cleanly, but could not delete it */
		zf_info("the lease of '%s' was released by this dev-dir's last (clean) unmount "
			"during an outage: taking it", rm->url);
	} else if (r == 0 && l.expires > (uint64_t)time(NULL)) {
		if (!lease_holder_gone(rm, &l)) {
			zf_err("bucket '%s' is in use by %s%s%s%s until %llu (unix time, %llu s from "
			       "now); if that writer is gone for good, run 'zerofs lease-break %s'",
			       rm->url, l.who, l.dev[0] ? " (dev-dir '" : "", l.dev,
			       l.dev[0] ? "')" : "", (unsigned long long)l.expires,
			       (unsigned long long)(l.expires - time(NULL)), rm->url);
			return -EBUSY;
		}
		zf_warn("taking over the lease of '%s' from %s: it served this dev-dir, which no "
			"process holds any more (a crashed mount)",
			rm->url, l.who);
	}
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	rm->lease_token = (r == 0 ? l.token : 0) + 1;
	r = lease_write(rm);
	if (r < 0)
		return r;
	/* two writers racing for an expired lease: the last put wins, check it */
	r = lease_read(rm->up, &l);
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	if (r < 0 || strcmp(l.id, rm->lease_id) != 0) {
		zf_err("lost the race for the lease of '%s' to %s", rm->url, r < 0 ? "?" : l.who);
		return -EBUSY;
	}
	rm->lease_renew_ns = now_ns() + (uint64_t)rm->o.lease_ttl_s * 1000000000ull / 3;
	pthread_mutex_lock(&rm->lock);
	rm->released[0] = 0; /* the next state_save drops the record */
	pthread_mutex_unlock(&rm->lock);
	return 0;
}

/* fencing: before each round, the lease must still be ours */
static int lease_check(struct zf_remote *rm)
{
	struct lease l;
	int r;

	r = lease_read(rm->up, &l);
	if (r == 0 && strcmp(l.id, rm->lease_id) != 0) {
		zf_err("the lease of '%s' now belongs to %s: uploads stop here, local data stays",
		       rm->url, l.who);
		pthread_mutex_lock(&rm->lock);
		rm->fenced = 1;
		pthread_mutex_unlock(&rm->lock);
		return -EPERM;
	}
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	if (r < 0 || now_ns() >= rm->lease_renew_ns) {
		r = lease_write(rm);
		if (r == 0)
			rm->lease_renew_ns =
				now_ns() + (uint64_t)rm->o.lease_ttl_s * 1000000000ull / 3;
	}
	return r;
}

/* ---------------------------------------------------------------- fetch */

static void cache_name(const struct zf_sc_loc *loc, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64 "-%016" PRIx64 ".sc", loc->seg, loc->off);
}

/* is the super-chunk at loc being fetched? (rm->lock held) */
/* keep a fetched super-chunk in cache/; no fsync: it is verified on every use */
static void cache_put(struct zf_remote *rm, const char *name, const void *buf, size_t len)
{
	char tmp[80];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(rm->cachefd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (zf_write_full(fd, buf, len) == 0)
		renameat(rm->cachefd, tmp, rm->cachefd, name);
	else
		unlinkat(rm->cachefd, tmp, 0);
	close(fd);
}

/*
 * A reader got the super-chunk at loc. When it follows the previous one (in
 * the segment, or the first of the next segment), ask the prefetch thread
 * for the next PREFETCH_SCS super-chunks' worth, at most a quarter of the
 * dev-dir budget.
 */
static void read_ahead(struct zf_remote *rm, const struct zf_sc_loc *loc)
{
	uint64_t end = loc->off + loc->disk_len, allow, from;
	int seq;

	allow = (uint64_t)PREFETCH_SCS * loc->disk_len;
	if (rm->o.cache_bytes && allow > rm->o.cache_bytes / 4)
		allow = rm->o.cache_bytes / 4;
	pthread_mutex_lock(&rm->lock);
	seq = (loc->seg == rm->seq_seg && loc->off == rm->seq_end) ||
	      (loc->seg == rm->seq_seg + 1 && loc->off == ZF_SEG_HDR_SIZE);
	rm->seq_seg = loc->seg;
	rm->seq_end = end;
	if (seq && rm->pf_started && !rm->pf_pending) {
		from = rm->pf_done_seg == loc->seg && rm->pf_done_end > end ? rm->pf_done_end : end;
		if (from + loc->disk_len <= end + allow) {
			rm->pf_seg = loc->seg;
			rm->pf_from = from;
			rm->pf_to = end + allow;
			rm->pf_pending = 1;
			pthread_cond_signal(&rm->pf_wake);
		}
	}
	pthread_mutex_unlock(&rm->lock);
}

/*
 * Fetch [from, to) of segment seg (cut at the object's end) with one ranged
 * GET and keep every whole super-chunk in it in cache/. Returns the end of
 * the last one kept (from if none; to when the segment has no more).
 */
static uint64_t prefetch_range(struct zf_remote *rm, uint64_t seg, uint64_t from, uint64_t to)
{
	struct zf_objstore_stat st;
	char segname[32], key[64], name[64];
	uint64_t size, pos = from;
	void *data = NULL;
	size_t len = 0, i = 0;
	int at_end = 0;

	zf_segstore_name(seg, segname, sizeof(segname));
	snprintf(key, sizeof(key), "seg/%s", segname);
	pthread_mutex_lock(&rm->lock);
	size = rm->pf_size_seg == seg ? rm->pf_size : 0;
	pthread_mutex_unlock(&rm->lock);
	if (!size) {
		if (zf_objstore_head(rm->down, key, &st) < 0)
			return to; /* the reader's own fetch reports it */
		size = st.size;
		pthread_mutex_lock(&rm->lock);
		rm->pf_size_seg = seg;
		rm->pf_size = size;
		pthread_mutex_unlock(&rm->lock);
	}
	if (to > size)
		to = size;
	if (from + ZF_SC_HDR_SIZE >= to)
		return to; /* the segment's end (its footer) */
	if (zf_objstore_get(rm->down, key, from, to - from, &data, &len) < 0)
		return to;
	while (len - i >= ZF_SC_HDR_SIZE) {
		const uint8_t *p = (const uint8_t *)data + i;
		uint64_t dlen = ZF_SC_HDR_SIZE + (uint64_t)zf_get32(p + ZF_SC_NCHUNKS_OFF) * ZF_SC_ENT_SIZE +
				zf_get32(p + ZF_SC_STORED_LEN_OFF);
		struct zf_sc_loc loc = { .seg = seg, .off = pos };

		if (zf_get32(p) != ZF_SC_MAGIC) {
			at_end = 1; /* the footer: nothing more to fetch here */
			break;
		}
		if (dlen > len - i)
			break; /* cut by the range: the next ask starts with it */
		cache_name(&loc, name, sizeof(name));
		if (faccessat(rm->cachefd, name, F_OK, 0) < 0) {
			cache_put(rm, name, p, dlen);
			pthread_mutex_lock(&rm->lock);
			rm->prefetched += dlen;
			rm->fetched += dlen;
			rm->local_bytes += dlen;
			rm->evictable += dlen;
			pthread_mutex_unlock(&rm->lock);
		}
		i += dlen;
		pos += dlen;
	}
	free(data);
	/* nothing kept (the first one did not fit): no new ask before the reader gets there */
	return at_end || pos == from ? to : pos;
}

static void *prefetch_main(void *arg)
{
	struct zf_remote *rm = arg;

	pthread_mutex_lock(&rm->lock);
	while (!rm->stopping) {
		uint64_t seg, from, to, end;

		if (!rm->pf_pending) {
			pthread_cond_wait(&rm->pf_wake, &rm->lock);
			continue;
		}
		seg = rm->pf_seg;
		from = rm->pf_from;
		to = rm->pf_to;
		pthread_mutex_unlock(&rm->lock);
		end = prefetch_range(rm, seg, from, to);
		pthread_mutex_lock(&rm->lock);
		rm->pf_done_seg = seg;
		rm->pf_done_end = end;
		rm->pf_pending = 0;
		pthread_cond_broadcast(&rm->arrived); /* readers waiting for it */
		pthread_cond_broadcast(&rm->wake); /* the budget may need eviction */
	}
	pthread_mutex_unlock(&rm->lock);
	return NULL;
}

/* is the prefetch thread fetching the range that holds loc? */
static int prefetching_locked(struct zf_remote *rm, const struct zf_sc_loc *loc)
{
	return rm->pf_pending && rm->pf_seg == loc->seg && loc->off >= rm->pf_from &&
	       loc->off + loc->disk_len <= rm->pf_to;
}

static int fetching_locked(struct zf_remote *rm, const struct zf_sc_loc *loc)
{
	struct fetching *f;

	for (f = rm->fetching; f; f = f->next)
		if (f->seg == loc->seg && f->off == loc->off)
			return 1;
	return 0;
}

static int fetch(void *ctx, const struct zf_sc_loc *loc, void *buf, int refetch)
{
	struct zf_remote *rm = ctx;
	uint64_t deadline = now_ns() + (uint64_t)rm->o.fetch_timeout_ms * 1000000ull;
	char name[64], key[64], seg[32];
	struct fetching me = { loc->seg, loc->off, NULL }, **pp;
	void *data = NULL;
	size_t len = 0;
	int fd, r, truncated = 0;

	cache_name(loc, name, sizeof(name));
again:
	if (!refetch) {
		fd = openat(rm->cachefd, name, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = zf_pread_full(fd, buf, loc->disk_len, 0);

			close(fd);
			if (n == (ssize_t)loc->disk_len) {
				pthread_mutex_lock(&rm->lock);
				rm->fetch_hits++;
				pthread_mutex_unlock(&rm->lock);
				read_ahead(rm, loc);
				return 0;
			}
		}
	}
	if (zf_fs_lock_held()) {
		/*
		 * Never wait for the bucket with the core lock held: every
		 * other operation would wait too. The core fetches what it
		 * needs before it locks; landing here means that fetch failed
		 * (or a bug): the operation fails instead of freezing the rest.
		 */
		zf_segstore_name(loc->seg, seg, sizeof(seg));
		zf_err("segment '%s' at offset %" PRIu64 " is not local and the caller holds the "
		       "core lock: not fetched", seg, loc->off);
		return -EIO;
	}
	/*
	 * One GET per super-chunk: the kernel reads ahead with several
	 * threads, which all miss on the same one. Later readers wait for the
	 * first and take its copy from the cache.
	 */
	pthread_mutex_lock(&rm->lock);
	if (!refetch && prefetching_locked(rm, loc)) {
		/* the prefetch thread is on its way with it: take its copy */
		while (prefetching_locked(rm, loc) && now_ns() < deadline)
			pthread_cond_wait(&rm->arrived, &rm->lock);
		pthread_mutex_unlock(&rm->lock);
		if (now_ns() < deadline)
			goto again;
		pthread_mutex_lock(&rm->lock);
	}
	if (fetching_locked(rm, loc)) {
		while (fetching_locked(rm, loc))
			pthread_cond_wait(&rm->arrived, &rm->lock);
		pthread_mutex_unlock(&rm->lock);
		refetch = 0; /* what arrived came straight from the store */
		if (now_ns() < deadline)
			goto again;
		return -EIO; /* the first reader logged why */
	}
	me.next = rm->fetching;
	rm->fetching = &me;
	pthread_mutex_unlock(&rm->lock);

	zf_segstore_name(loc->seg, seg, sizeof(seg));
	snprintf(key, sizeof(key), "seg/%s", seg);
	for (;;) {
		struct zf_objstore_stat st;
		int h;

		r = zf_objstore_get(rm->down, key, loc->off, loc->disk_len, &data, &len);
		if (r == 0 || r == -ENOENT || r == -EACCES || now_ns() >= deadline)
			break;
		/*
		 * -EIO is the store failing (5xx after its retries, a cut
		 * body) or a range past the object's end: a truncated object
		 * is an answer, and no retry changes it.
		 */
		if (r == -EIO && (h = zf_objstore_head(rm->down, key, &st)) != -ENOENT && h >= 0 &&
		    st.size < loc->off + loc->disk_len) {
			zf_err("segment '%s' in '%s' is truncated: %" PRIu64 " bytes, the super-chunk "
			       "at %" PRIu64 " ends at %" PRIu64, seg, rm->url, st.size, loc->off,
			       loc->off + loc->disk_len);
			truncated = 1;
			break;
		}
		if (rm->o.readonly)
			break; /* fsck: the store retried; an outage is reported, not waited out */
		usleep(200000); /* the store is down: try until the deadline */
	}
	if (r < 0 && r != -ENOENT && !truncated) {
		note_unreachable(rm, "GET", key, r);
		if (rm->o.readonly && r == -EIO)
			r = -EREMOTEIO; /* fsck: not an answer, nothing is marked damaged */
	}
	if (r < 0) {
		zf_err("cannot fetch segment '%s' at offset %" PRIu64 " from '%s': %s", seg, loc->off,
		       rm->url, strerror(-r));
		goto out; /* -ENOENT: not in the bucket; -EIO: truncated there (fsck); else the
			   * store's error */
	}
	memcpy(buf, data, loc->disk_len);
	free(data);
	pthread_mutex_lock(&rm->lock);
	rm->fetch_misses++;
	rm->fetched += loc->disk_len;
	if (!rm->o.readonly) {
		rm->local_bytes += loc->disk_len;
		rm->evictable += loc->disk_len;
	}
	pthread_mutex_unlock(&rm->lock);
	/*
	 * Keep it locally; no fsync: it is verified whenever it is used. Not
	 * for fsck (read-only): nothing would evict it, and a check of the
	 * whole filesystem would copy the whole bucket into the dev-dir.
	 */
	if (!rm->o.readonly) {
		cache_put(rm, name, buf, loc->disk_len);
		read_ahead(rm, loc);
	}
	pthread_cond_broadcast(&rm->wake); /* the budget may need eviction */
out:
	pthread_mutex_lock(&rm->lock);
	for (pp = &rm->fetching; *pp != &me; pp = &(*pp)->next)
		;
	*pp = me.next;
	pthread_cond_broadcast(&rm->arrived);
	pthread_mutex_unlock(&rm->lock);
	return r;
}

/* ---------------------------------------------------------- backpressure */

/* a write is admitted now: the recovery point ages from its oldest byte */
static void note_write_locked(struct zf_remote *rm)
{
	uint64_t now = now_ns();

	if (!rm->pending_since_ns)
		rm->pending_since_ns = now;
	if (!rm->fresh_since_ns)
		rm->fresh_since_ns = now;
}

static int admit(void *ctx, size_t len)
{
	struct zf_remote *rm = ctx;
	struct timespec ts;
	int r = 0, stalled = 0, evicted = 0;

	if (!rm->o.cache_bytes) {
		pthread_mutex_lock(&rm->lock);
		rm->unevictable += len; /* no budget, but stats show what is pending */
		note_write_locked(rm);
		pthread_mutex_unlock(&rm->lock);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += rm->o.write_wait_ms / 1000;
	ts.tv_nsec += (long)(rm->o.write_wait_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&rm->lock);
	while (!rm->stopping && !rm->fenced) {
		/*
		 * The dev-dir must have room for len once everything pending
		 * has landed: data the bucket holds leaves at once, in this
		 * thread; data it does not hold yet is waited for.
		 */
		if (!(rm->unevictable && rm->unevictable + len > rm->o.cache_bytes)) {
			if (evicted || !rm->evictable ||
			    rm->unevictable + rm->evictable + len <= rm->o.cache_bytes)
				break;
			evicted = 1;
			pthread_mutex_unlock(&rm->lock);
			evict(rm);
			pthread_mutex_lock(&rm->lock);
			continue;
		}
		if (!stalled) {
			stalled = 1;
			rm->stalls++;
			rm->waiters++;
		}
		pthread_cond_broadcast(&rm->wake);
		if (pthread_cond_timedwait(&rm->done, &rm->lock, &ts) == ETIMEDOUT) {
			zf_err("write waited %u ms for room in the dev-dir of '%s' (uploads to '%s' "
			       "are behind)",
			       rm->o.write_wait_ms, zf_fs_dev_dir(rm->fs), rm->url);
			r = -ENOSPC;
			break;
		}
	}
	if (r == 0) {
		rm->unevictable += len; /* counted until the next round measures */
		note_write_locked(rm);
	}
	if (stalled)
		rm->waiters--;
	pthread_mutex_unlock(&rm->lock);
	return r;
}

/* ------------------------------------------------------------- uploads */

/*
 * Why a round failed, for 'zerofs sync' (zf_remote_sync_why): the store's
 * answer (local 0) or the dev-dir's (1), doing what. Returns r.
 */
static int round_fail(struct zf_remote *rm, int r, int local, const char *what, const char *key)
{
	pthread_mutex_lock(&rm->lock);
	rm->fail_local = local;
	snprintf(rm->fail_what, sizeof(rm->fail_what), "%s%s%s%s", what, key ? " '" : "",
		 key ? key : "", key ? "'" : "");
	pthread_mutex_unlock(&rm->lock);
	return r;
}

static int put_file(struct zf_remote *rm, int dirfd, const char *name, const char *key)
{
	void *buf;
	size_t len;
	int r;

	r = zf_read_file(dirfd, name, &buf, &len);
	if (r < 0)
		return round_fail(rm, r, 1, "reading", name);
	r = zf_objstore_put(rm->up, key, buf, len);
	free(buf);
	if (r == 0) {
		pthread_mutex_lock(&rm->lock);
		rm->uploaded += len;
		pthread_mutex_unlock(&rm->lock);
	}
	return r < 0 ? round_fail(rm, r, 0, "PUT", key) : 0;
}

struct prune_ctx {
	uint64_t ckpt;
	char **keys;
	size_t n;
};

static int prune_fn(void *ctx, const char *key, uint64_t size)
{
	struct prune_ctx *p = ctx;
	unsigned long long a, b;

	if ((sscanf(key, "meta/log.%16llx-%16llx", &a, &b) == 2 && b <= p->ckpt) ||
	    (sscanf(key, "meta/ckpt.%16llx", &a) == 1 && a < p->ckpt)) {
		p->keys = zf_realloc(p->keys, (p->n + 1) * sizeof(*p->keys));
		p->keys[p->n++] = zf_strdup(key);
	}
	return 0;
}

/* the bucket holds checkpoint ckpt: log pieces it covers can go */
static void prune_meta(struct zf_remote *rm, uint64_t ckpt)
{
	struct prune_ctx p = { .ckpt = ckpt };
	size_t i;

	if (zf_objstore_list(rm->up, "meta/", prune_fn, &p) == 0 && p.n)
		zf_objstore_multi_delete(rm->up, (const char *const *)p.keys, p.n);
	for (i = 0; i < p.n; i++)
		free(p.keys[i]);
	free(p.keys);
}

/* a failure that may pass (the store is down or slow), not a refusal */
static int transient(int r)
{
	return r == -EIO || r == -ETIMEDOUT || r == -ECONNREFUSED || r == -EHOSTUNREACH ||
	       r == -EAGAIN;
}

/* take the lease, make sure the bucket holds this filesystem's superblock */
/* the bucket may hold log records up to seq from us: on disk before they go up */
static int claim(struct zf_remote *rm, uint64_t seq)
{
	pthread_mutex_lock(&rm->lock);
	if (seq <= rm->claim_seq) {
		pthread_mutex_unlock(&rm->lock);
		return 0;
	}
	rm->claim_seq = seq;
	pthread_mutex_unlock(&rm->lock);
	return state_save(rm);
}

struct foreign {
	uint64_t seq, claim;	/* this dev-dir put records up to seq, maybe up to claim */
	uint64_t last;		/* last record of an object it did not put (0: none) */
	/* those objects (they may still be this dev-dir's: see adopt_foreign) */
	struct fobj {
		uint64_t a, b;	/* a log piece a..b; a checkpoint: a = b = its seq, ckpt */
		int ckpt;
	} *objs;
	size_t nobjs;
	uint64_t ckpt;		/* the newest checkpoint among them */
};

/*
 * Objects beyond seq are foreign unless they are the one put this dev-dir
 * may have made before a crash: log.<seq+1>-<claim> or ckpt.<claim>.
 */
static int foreign_fn(void *ctx, const char *key, uint64_t size)
{
	struct foreign *f = ctx;
	unsigned long long a, b;
	int n = 0;

	(void)size;
	if (sscanf(key, "meta/log.%16llx-%16llx%n", &a, &b, &n) == 2 && key[n] == 0) {
		if (b > f->seq && !(a == f->seq + 1 && b == f->claim)) {
			if (b > f->last)
				f->last = b;
			f->objs = zf_realloc(f->objs, (f->nobjs + 1) * sizeof(*f->objs));
			f->objs[f->nobjs++] = (struct fobj){ a, b, 0 };
		}
	} else if (sscanf(key, "meta/ckpt.%16llx%n", &a, &n) == 1 && key[n] == 0) {
		if (a > f->seq && a != f->claim) {
			if (a > f->last)
				f->last = a;
			f->objs = zf_realloc(f->objs, (f->nobjs + 1) * sizeof(*f->objs));
			f->objs[f->nobjs++] = (struct fobj){ a, a, 1 };
			if (a > f->ckpt)
				f->ckpt = a;
		}
	}
	return 0;
}

/*
 * The bucket holds metadata beyond what upload.state says this dev-dir put:
 * another dev-dir wrote it — or upload.state was lost or damaged (it is
 * not checksummed). Objects this dev-dir put are byte for byte what it can
 * build again: a log piece is the image of its records (zf_fs_log_image),
 * a checkpoint the local file of the same name. When every such object is
 * identical, they are this dev-dir's: the watermarks move up to them (and
 * segments are shipped again from the first: re-uploads cost bytes, never
 * data). Anything that differs, or cannot be compared, stays foreign.
 * Returns 1 (adopted), 0 (foreign), or the store's -errno.
 */
static int adopt_foreign(struct zf_remote *rm, const struct foreign *f)
{
	char key[80], name[64];
	size_t i;
	int r;

	for (i = 0; i < f->nobjs; i++) {
		const struct fobj *o = &f->objs[i];
		struct zf_buf mine = { 0 };
		void *theirs = NULL;
		size_t len = 0;

		if (o->ckpt) {
			zf_ckpt_name(o->a, name, sizeof(name));
			snprintf(key, sizeof(key), "meta/%s", name);
			r = zf_read_file(rm->metafd, name, (void **)&mine.p, &mine.len);
		} else {
			snprintf(key, sizeof(key), "meta/log.%016llx-%016llx",
				 (unsigned long long)o->a, (unsigned long long)o->b);
			r = zf_fs_log_image(rm->fs, o->a, o->b, &mine);
		}
		if (r == 0)
			r = zf_objstore_get(rm->up, key, 0, 0, &theirs, &len);
		if (r == 0 && (len != mine.len || memcmp(theirs, mine.p, len)))
			r = 1;
		free(theirs);
		zf_buf_free(&mine);
		if (r != 0)
			return r < 0 && r != -ENOENT && r != -EBADMSG ? r : 0;
	}
	pthread_mutex_lock(&rm->lock);
	rm->up_seq = rm->claim_seq = f->last;
	if (f->ckpt > rm->up_ckpt)
		rm->up_ckpt = f->ckpt;
	rm->up_seg = 0;
	pthread_mutex_unlock(&rm->lock);
	zf_warn("upload.state of '%s' was behind the bucket, whose log is this dev-dir's (every "
		"object beyond it identical): taken up to record %llu; segments are shipped "
		"again", rm->dev_real, (unsigned long long)f->last);
	r = state_save(rm);
	return r < 0 ? r : 1;
}

/*
 * Whose metadata does the bucket hold? The fsid in the header of its newest
 * checkpoint (the bulk of it), else in its head. 1 and *ret_fsid, 0 when
 * neither verifies, or the store's -errno.
 */
static int meta_fsid(struct zf_objstore *os, uint8_t ret_fsid[16])
{
	struct mscan s = { .os = os };
	char key[64], why[200];
	struct head h;
	void *buf;
	size_t len;
	int r;

	r = zf_objstore_list(os, "meta/", mscan_list_fn, &s);
	if (r == 0 && s.nckpts) {
		qsort(s.ckpts, s.nckpts, sizeof(*s.ckpts), cmp_newest);
		snprintf(key, sizeof(key), "meta/ckpt.%016" PRIx64, s.ckpts[0].a);
		r = zf_objstore_get(os, key, 0, ZF_CKPT_HDR_SIZE, &buf, &len);
		if (r == 0) {
			/* checked against its own fsid: only the kind, checksum and seq count */
			r = len == ZF_CKPT_HDR_SIZE &&
			    file_hdr_verify(buf, len, ZF_CKPT_MAGIC, ZF_CKPT_VERSION,
					    (uint8_t *)buf + 16, s.ckpts[0].a, why, sizeof(why)) == 0;
			if (r)
				memcpy(ret_fsid, (uint8_t *)buf + 16, 16);
			free(buf);
		} else if (r == -ENOENT || r == -EIO) {
			r = 0; /* gone, or shorter than a header: it tells nothing */
		}
	}
	mscan_free(&s);
	if (r != 0)
		return r;
	r = zf_objstore_get(os, HEAD_KEY, 0, 0, &buf, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = head_parse(buf, len, &h, why, sizeof(why)) == 0;
	if (r)
		memcpy(ret_fsid, h.fsid, 16);
	free(buf);
	return r;
}

/* does the bucket's own metadata say it is this filesystem's? 1, 0, or -errno */
static int bucket_is_ours(struct zf_remote *rm)
{
	uint8_t fsid[16];
	int r = meta_fsid(rm->up, fsid);

	return r > 0 ? !memcmp(fsid, rm->fsid, 16) : r;
}

enum { SB_OURS, SB_ABSENT, SB_HEAL, SB_FOREIGN, SB_UNSURE };

/*
 * Is the bucket's superblock this dev-dir's? SB_OURS, SB_ABSENT, SB_HEAL
 * (damaged or replaced, but the bucket's metadata is ours: put ours back),
 * SB_FOREIGN (a valid superblock of another filesystem, and nothing says
 * the bucket is ours), SB_UNSURE (damaged, and nothing tells whose it is);
 * or the store's -errno (an outage is not a mismatch). why says what differs.
 */
static int sb_classify(struct zf_remote *rm, char *why, size_t wlen)
{
	void *ours = NULL, *theirs = NULL;
	size_t olen = 0, tlen = 0;
	uint8_t fsid[16];
	int r, damaged, mine;

	why[0] = 0;
	r = zf_objstore_get(rm->up, "superblock", 0, 0, &theirs, &tlen);
	if (r == -ENOENT)
		return SB_ABSENT;
	if (r < 0)
		return r;
	r = zf_read_file(rm->devfd, "superblock", &ours, &olen);
	if (r < 0)
		goto out;
	if (olen == tlen && !memcmp(ours, theirs, olen)) {
		r = SB_OURS;
		goto out;
	}
	damaged = sb_verify(theirs, tlen, fsid, why, wlen) < 0;
	if (!damaged)
		snprintf(why, wlen, "%s", memcmp(fsid, rm->fsid, 16) ? "another filesystem's"
				: "this filesystem's id, but other bytes");
	mine = bucket_is_ours(rm);
	if (mine < 0)
		r = mine;
	else if (mine)
		r = SB_HEAL;
	else
		r = damaged ? SB_UNSURE : SB_FOREIGN;
out:
	free(ours);
	free(theirs);
	return r;
}

/*
 * 0 if the bucket's superblock is ours, absent (*ret_put) or to be healed
 * (*ret_put: damaged or replaced in a bucket whose metadata is ours);
 * -EEXIST (logged) if the bucket is another filesystem's; the store's
 * -errno when it did not answer.
 */
static int check_superblock(struct zf_remote *rm, int *ret_put)
{
	char why[200];
	int r;

	*ret_put = 0;
	r = sb_classify(rm, why, sizeof(why));
	if (r < 0)
		return r;
	switch (r) {
	case SB_OURS:
		return 0;
	case SB_ABSENT:
		*ret_put = 1;
		return 0;
	case SB_HEAL:
		zf_warn("the superblock in the bucket '%s' is damaged (%s) while the bucket's "
			"metadata is this filesystem's: putting back '%s/superblock'",
			rm->url, why, rm->dev_real);
		*ret_put = 1;
		return 0;
	case SB_UNSURE:
		zf_err("the superblock in the bucket '%s' is damaged (%s) and the bucket's metadata "
		       "does not tell whose it is; if the bucket is this filesystem's, 'zerofs fsck "
		       "--repair' puts it back", rm->url, why);
		return -EEXIST;
	default:
		zf_err("the bucket '%s' holds another filesystem: its superblock differs from "
		       "'%s/superblock'",
		       rm->url, rm->dev_real);
		return -EEXIST;
	}
}

/*
 * Take the lease and check the bucket before anything goes up: it must hold
 * this filesystem (or nothing yet) and no log record this dev-dir did not
 * put. A refusal is -EEXIST, -EBUSY or -ESTALE (logged); other errors come
 * from the store.
 */
static int attach(struct zf_remote *rm)
{
	struct foreign f = { 0 };
	int r, put_sb;

	r = check_superblock(rm, &put_sb);
	if (r < 0)
		return r;
	r = lease_acquire(rm);
	if (r == -EBUSY) {
		pthread_mutex_lock(&rm->lock);
		rm->fenced = 1;
		pthread_mutex_unlock(&rm->lock);
	}
	if (r < 0)
		return r;
	pthread_mutex_lock(&rm->lock);
	f.seq = rm->up_seq;
	f.claim = rm->claim_seq;
	pthread_mutex_unlock(&rm->lock);
	if (put_sb)
		r = put_file(rm, rm->devfd, "superblock", "superblock");
	if (r == 0)
		r = zf_objstore_list(rm->up, "meta/", foreign_fn, &f);
	if (r == 0 && f.last && adopt_foreign(rm, &f) == 1)
		f.last = 0;
	free(f.objs);
	if (r < 0)
		return r;
	if (f.last) {
		zf_err("the bucket '%s' holds log records up to %llu that this dev-dir did not put "
		       "(it put up to %llu): another dev-dir (a restored copy?) has written to it "
		       "since, and uploading would fork the filesystem; restore a new dev-dir from "
		       "the bucket ('zerofs mkfs --restore') or give this one a new bucket",
		       rm->url, (unsigned long long)f.last, (unsigned long long)f.seq);
		zf_objstore_delete(rm->up, "lease");
		pthread_mutex_lock(&rm->lock);
		rm->fenced = 1;
		pthread_mutex_unlock(&rm->lock);
		return -ESTALE;
	}
	rm->need_lease = 0;
	return 0;
}

/*
 * After a round that moved the bucket's log end or its checkpoint: the
 * head says so, put after the objects it counts (never before). The first
 * round of a process always puts it (an older zerofs wrote none; a damaged
 * one heals).
 */
static int head_update(struct zf_remote *rm)
{
	char buf[HEAD_MAX];
	struct head h;
	int r, same;

	pthread_mutex_lock(&rm->lock);
	h.seq = rm->up_seq;
	h.ckpt = rm->up_ckpt;
	same = h.seq == rm->head_seq && h.ckpt == rm->head_ckpt;
	pthread_mutex_unlock(&rm->lock);
	if (same || (!h.seq && !h.ckpt))
		return 0;
	memcpy(h.fsid, rm->fsid, 16);
	r = zf_objstore_put(rm->up, HEAD_KEY, buf, head_format(&h, buf));
	if (r == 0) {
		pthread_mutex_lock(&rm->lock);
		rm->head_seq = h.seq;
		rm->head_ckpt = h.ckpt;
		pthread_mutex_unlock(&rm->lock);
	}
	return r;
}

static int upload_round(struct zf_remote *rm, int seal)
{
	struct zf_upload_point pt;
	uint64_t seg, up_seq, up_seg, up_ckpt, buffered_since;
	struct zf_buf img = { 0 };
	char name[64], key[96];
	int r, flush;

	/* stalled writers wait for buffered data too: it must reach a segment */
	pthread_mutex_lock(&rm->lock);
	flush = rm->waiters > 0;
	rm->fresh_since_ns = 0; /* writes from now on are not in this round */
	pthread_mutex_unlock(&rm->lock);
	r = flush ? zf_fs_sync(rm->fs) : 0;
	if (r == 0)
		r = zf_fs_upload_point(rm->fs, seal, &pt);
	if (r < 0)
		return round_fail(rm, r, 1, "committing the log", NULL);
	/* written, not committed: not in this round either */
	buffered_since = zf_fs_buffered_since(rm->fs);
	/* the recovery point ages from now, even if the store is down */
	pthread_mutex_lock(&rm->lock);
	if (pt.committed > rm->up_seq && !rm->pending_since_ns)
		rm->pending_since_ns = now_ns();
	pthread_mutex_unlock(&rm->lock);
	r = rm->need_lease ? attach(rm) : lease_check(rm);
	if (r < 0)
		return round_fail(rm, r, 0, rm->need_lease ? "attaching" : "renewing the lease", NULL);
	pthread_mutex_lock(&rm->lock);
	up_seq = rm->up_seq;
	up_seg = rm->up_seg;
	up_ckpt = rm->up_ckpt;
	pthread_mutex_unlock(&rm->lock);
	/* 1. sealed segments, in order */
	for (seg = up_seg + 1; seg <= pt.last_sealed; seg++) {
		zf_segstore_name(seg, name, sizeof(name));
		snprintf(key, sizeof(key), "seg/%s", name);
		r = put_file(rm, rm->segfd, name, key);
		if (r == -ENOENT && zf_objstore_head(rm->up, key, &(struct zf_objstore_stat){ 0 }) == 0)
			r = 0; /* evicted earlier: the bucket has it */
		if (r < 0)
			goto out;
		pthread_mutex_lock(&rm->lock);
		rm->up_seg = seg;
		rm->progress_ns = now_ns();
		rm->sync_err = 0;
		pthread_mutex_unlock(&rm->lock);
		/* a crash now must not redo this segment: segments are the bulk */
		r = state_save(rm);
		if (r < 0) {
			round_fail(rm, r, 1, "writing", "upload.state");
			goto out;
		}
		/* room for stalled writers now, not after the whole round */
		evict(rm);
		pthread_mutex_lock(&rm->lock);
		pthread_cond_broadcast(&rm->done);
		pthread_mutex_unlock(&rm->lock);
	}
	/* 2. a newer checkpoint (all its segments are sealed and up by now) */
	if (pt.ckpt_seq > up_ckpt && pt.ckpt_seq <= pt.seq) {
		r = claim(rm, pt.ckpt_seq);
		if (r < 0) {
			round_fail(rm, r, 1, "writing", "upload.state");
			goto out;
		}
		zf_ckpt_name(pt.ckpt_seq, name, sizeof(name));
		snprintf(key, sizeof(key), "meta/%s", name);
		r = put_file(rm, rm->metafd, name, key);
		if (r == -ENOENT)
			r = 0; /* replaced by a newer one meanwhile: next round */
		else if (r == 0) {
			pthread_mutex_lock(&rm->lock);
			rm->up_ckpt = pt.ckpt_seq;
			if (rm->up_seq < pt.ckpt_seq)
				rm->up_seq = pt.ckpt_seq;
			up_seq = rm->up_seq;
			pthread_mutex_unlock(&rm->lock);
			prune_meta(rm, pt.ckpt_seq);
		}
		if (r < 0)
			goto out;
	}
	/* 3. the log since, as one piece */
	if (pt.seq > up_seq) {
		r = zf_fs_log_image(rm->fs, up_seq + 1, pt.seq, &img);
		if (r == -ENOENT) {
			r = 0; /* only in a checkpoint now: it goes up next round */
			goto out;
		}
		if (r < 0) {
			round_fail(rm, r, 1, "reading the log", NULL);
			goto out;
		}
		snprintf(key, sizeof(key), "meta/log.%016" PRIx64 "-%016" PRIx64, up_seq + 1,
			 pt.seq);
		r = claim(rm, pt.seq);
		if (r < 0) {
			round_fail(rm, r, 1, "writing", "upload.state");
			goto out;
		}
		r = zf_objstore_put(rm->up, key, img.p, img.len);
		if (r < 0) {
			round_fail(rm, r, 0, "PUT", key);
			goto out;
		}
		pthread_mutex_lock(&rm->lock);
		rm->uploaded += img.len;
		rm->up_seq = pt.seq;
		rm->progress_ns = now_ns();
		pthread_mutex_unlock(&rm->lock);
	}
	/* 4. the head, once what it counts is in the bucket */
	r = head_update(rm);
	if (r < 0) {
		round_fail(rm, r, 0, "PUT", HEAD_KEY);
		goto out;
	}
	r = state_save(rm);
	if (r < 0)
		round_fail(rm, r, 1, "writing", "upload.state");
	pthread_mutex_lock(&rm->lock);
	/*
	 * Caught up: what is pending now was written after the upload point,
	 * or was still buffered (not committed) then: the oldest of those.
	 */
	if (rm->up_seq >= pt.committed)
		rm->pending_since_ns = !buffered_since ? rm->fresh_since_ns
				       : !rm->fresh_since_ns || buffered_since < rm->fresh_since_ns
					       ? buffered_since
					       : rm->fresh_since_ns;
	else if (!rm->pending_since_ns)
		rm->pending_since_ns = now_ns();
	pthread_mutex_unlock(&rm->lock);
out:
	zf_buf_free(&img);
	return r;
}

/* ------------------------------------------------------------- eviction */

struct victim {
	int is_seg;
	uint64_t id;		/* segment id */
	char name[256];		/* cache file name */
	uint64_t size;
	int64_t when;		/* last access (cache files: atime) */
};

static int cmp_victim(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	return x->when < y->when ? -1 : x->when > y->when;
}

/* list a directory's files into v; returns their total size */
static uint64_t scan_dir(int dirfd, int is_seg, uint64_t up_seg, struct victim **v, size_t *n,
			 uint64_t *ret_unevictable)
{
	uint64_t total = 0;
	struct dirent *e;
	DIR *d;
	int fd = dup(dirfd);

	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	rewinddir(d);
	while ((e = readdir(d))) {
		unsigned long long id = 0;
		struct stat st;

		if (e->d_name[0] == '.' || fstatat(dirfd, e->d_name, &st, 0) < 0)
			continue;
		total += st.st_size;
		if (is_seg && (sscanf(e->d_name, "%16llx.zseg", &id) != 1 || id > up_seg)) {
			*ret_unevictable += st.st_size; /* open, or not in the bucket yet */
			continue;
		}
		*v = zf_realloc(*v, (*n + 1) * sizeof(**v));
		(*v)[*n].is_seg = is_seg;
		(*v)[*n].id = id;
		snprintf((*v)[*n].name, sizeof((*v)[*n].name), "%s", e->d_name);
		(*v)[*n].size = st.st_size;
		/* segments are read through the kernel: their atime is the age */
		(*v)[*n].when = (int64_t)st.st_atim.tv_sec * 1000000000 + st.st_atim.tv_nsec;
		if (st.st_mtim.tv_sec > st.st_atim.tv_sec)
			(*v)[*n].when = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		(*n)++;
	}
	closedir(d);
	return total;
}

/* keep the dev-dir's segments and fetched data within the budget, LRU first */
static void evict(struct zf_remote *rm)
{
	struct victim *v = NULL;
	uint64_t total, buffered, unevictable = 0, up_seg;
	size_t n = 0, i;

	pthread_mutex_lock(&rm->evict_lock);
	/* before the scan: bytes that move to a segment meanwhile count twice, not never */
	buffered = zf_fs_buffered_bytes(rm->fs);
	pthread_mutex_lock(&rm->lock);
	up_seg = rm->up_seg;
	pthread_mutex_unlock(&rm->lock);
	total = scan_dir(rm->segfd, 1, up_seg, &v, &n, &unevictable);
	total += scan_dir(rm->cachefd, 0, up_seg, &v, &n, &unevictable);
	/* what the dev-dir holds once buffered data has landed must fit */
	if (rm->o.cache_bytes && total + buffered > rm->o.cache_bytes && n) {
		qsort(v, n, sizeof(*v), cmp_victim);
		for (i = 0; i < n && total + buffered > rm->o.cache_bytes; i++) {
			int r = v[i].is_seg ? zf_segstore_evict(zf_fs_segstore(rm->fs), v[i].id)
					    : (unlinkat(rm->cachefd, v[i].name, 0) < 0 ? -errno : 0);

			if (r < 0)
				continue;
			total -= v[i].size;
			if (v[i].is_seg) {
				pthread_mutex_lock(&rm->lock);
				rm->evictions++;
				pthread_mutex_unlock(&rm->lock);
			}
		}
	}
	pthread_mutex_lock(&rm->lock);
	rm->local_bytes = total;
	rm->unevictable = unevictable + buffered;
	rm->evictable = total - unevictable;
	pthread_mutex_unlock(&rm->lock);
	pthread_mutex_unlock(&rm->evict_lock);
	free(v);
}

/* ------------------------------------------------------------ the thread */

static void *uploader_main(void *arg)
{
	struct zf_remote *rm = arg;
	uint64_t last_err_log = 0, progress = 0;
	int backoff = 0, first = 1;

	pthread_mutex_lock(&rm->lock);
	while (!rm->stopping) {
		struct timespec ts;
		uint64_t want, age;
		int r, seal;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(rm->o.interval_ms << backoff) % 1000 * 1000000;
		ts.tv_sec += (rm->o.interval_ms << backoff) / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		/*
		 * The first round at once (it renews the lease with this
		 * process's pid and resumes a backlog); then a round per period,
		 * or at once for a sync or while the budget is tight and rounds
		 * make progress. After a failure, the whole backoff: wakes from
		 * writers and readers must not turn an outage into a busy loop.
		 */
		if (backoff) {
			while (!rm->stopping &&
			       pthread_cond_timedwait(&rm->wake, &rm->lock, &ts) != ETIMEDOUT)
				;
		} else if (!first && rm->sync_want <= rm->sync_done &&
			   !(rm->o.cache_bytes && rm->unevictable > rm->o.cache_bytes / 2 &&
			     rm->progress_ns != progress)) {
			pthread_cond_timedwait(&rm->wake, &rm->lock, &ts);
		}
		first = 0;
		progress = rm->progress_ns;
		if (rm->stopping)
			break;
		want = rm->sync_want;
		age = rm->pending_since_ns ? now_ns() - rm->pending_since_ns : 0;
		/* seal for a sync, for old data, or to make room under the budget */
		seal = want > rm->sync_done || age >= (uint64_t)rm->o.max_delay_s * 1000000000ull ||
		       (rm->o.cache_bytes && rm->unevictable > rm->o.cache_bytes / 2);
		pthread_mutex_unlock(&rm->lock);
		r = rm->fenced ? -EPERM : upload_round(rm, seal);
		evict(rm);
		pthread_mutex_lock(&rm->lock);
		if (r == 0) {
			backoff = 0;
			rm->sync_err = 0;
			rm->fail_since = 0;
			if (rm->up_seq >= want && want > rm->sync_done)
				rm->sync_done = want;
		} else {
			if (backoff < 4)
				backoff++;
			if (!rm->sync_err || !rm->fail_since)
				rm->fail_since = time(NULL);
			rm->sync_err = r;
			if (now_ns() - last_err_log > 10000000000ull) {
				zf_err("upload to '%s' failed: %s (retrying; local data is safe)", rm->url,
				       strerror(-r));
				last_err_log = now_ns();
			}
		}
		pthread_cond_broadcast(&rm->done);
	}
	pthread_mutex_unlock(&rm->lock);
	return NULL;
}

/* --------------------------------------------------------------- public */

static int open_stores(const char *url, const struct zf_objstore_opts *so,
		       unsigned int fetch_ms, struct zf_objstore **up, struct zf_objstore **down)
{
	struct zf_objstore_opts f = *so;
	int r;

	r = zf_objstore_open(url, so, up);
	if (r < 0)
		return r;
	if (down) {
		f.timeout_ms = fetch_ms;
		r = zf_objstore_open(url, &f, down);
		if (r < 0) {
			zf_objstore_close(*up);
			*up = NULL;
		}
	}
	return r;
}

int zf_remote_open(struct zf_fs *fs, const char *dev_dir, const struct zf_remote_opts *o,
		   struct zf_remote **ret_rm)
{
	struct zf_remote *rm;
	int r;

	rm = zf_calloc(1, sizeof(*rm));
	rm->fs = fs;
	rm->o = *o;
	rm->url = zf_strdup(o->url);
	rm->o.url = rm->url;
	rm->dev_real = realpath(dev_dir, NULL);
	if (!rm->dev_real)
		rm->dev_real = zf_strdup(dev_dir);
	if (!rm->o.interval_ms)
		rm->o.interval_ms = DEFAULT_INTERVAL_MS;
	if (!rm->o.max_delay_s)
		rm->o.max_delay_s = DEFAULT_MAX_DELAY_S;
	if (!rm->o.fetch_timeout_ms)
		rm->o.fetch_timeout_ms = DEFAULT_FETCH_MS;
	if (!rm->o.write_wait_ms)
		rm->o.write_wait_ms = DEFAULT_WRITE_WAIT_MS;
	if (!rm->o.lease_ttl_s)
		rm->o.lease_ttl_s = DEFAULT_LEASE_S;
	pthread_mutex_init(&rm->evict_lock, NULL);
	pthread_mutex_init(&rm->lock, NULL);
	pthread_cond_init(&rm->wake, NULL);
	pthread_cond_init(&rm->done, NULL);
	pthread_cond_init(&rm->arrived, NULL);
	pthread_cond_init(&rm->pf_wake, NULL);
	rm->devfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rm->devfd >= 0) {
		mkdirat(rm->devfd, "cache", 0700);
		rm->segfd = openat(rm->devfd, "seg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rm->metafd = openat(rm->devfd, "meta", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rm->cachefd = openat(rm->devfd, "cache", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (rm->devfd < 0 || rm->segfd < 0 || rm->metafd < 0 || rm->cachefd < 0) {
		r = -errno;
		zf_err("cannot open the dev-dir '%s' for uploads: %s", dev_dir, strerror(-r));
		goto fail;
	}
	r = open_stores(rm->url, &o->store, rm->o.fetch_timeout_ms, &rm->up, &rm->down);
	if (r < 0) {
		zf_err("cannot open the object store '%s': %s", rm->url, strerror(-r));
		goto fail;
	}
	state_load(rm);
	rm->head_seq = rm->head_ckpt = UINT64_MAX;
	{
		void *sb;
		size_t len;

		if (zf_read_file(rm->devfd, "superblock", &sb, &len) == 0) {
			if (len >= 32)
				memcpy(rm->fsid, (uint8_t *)sb + 16, 16);
			free(sb);
		}
	}
	if (!rm->o.readonly) {
		struct zf_upload_point pt;

		/*
		 * Records reach the bucket only once committed here, so a
		 * dev-dir behind the bucket lost committed records (a damaged
		 * log tail, dropped as torn): writing on would give new
		 * records the numbers of lost ones, a fork.
		 */
		r = zf_fs_upload_point(fs, 0, &pt);
		if (r == 0 && pt.committed < rm->up_seq) {
			zf_err("the dev-dir '%s' lacks log records %llu..%llu that the bucket '%s' "
			       "holds (its log lost them); writing on would fork the filesystem: "
			       "restore a new dev-dir from the bucket ('zerofs mkfs --restore'), "
			       "which has everything this one had",
			       dev_dir, (unsigned long long)pt.committed + 1,
			       (unsigned long long)rm->up_seq, rm->url);
			r = -ESTALE;
		}
		if (r < 0)
			goto fail;
	}
	rm->t0_ns = now_ns();
	rm->progress_ns = rm->t0_ns;
	zf_segstore_set_fetch(zf_fs_segstore(fs), fetch, rm);
	if (rm->o.readonly) {
		*ret_rm = rm;
		return 0;
	}
	/*
	 * The lease, and the bucket must describe this filesystem. A bucket
	 * that is down now must not keep the local disk from serving: the
	 * uploader attaches before its first upload. A refusal (credentials,
	 * another writer) is final.
	 */
	r = attach(rm);
	if (r < 0 && transient(r)) {
		zf_warn("the bucket '%s' is unreachable (%s): serving local data, uploads start "
			"once it answers",
			rm->url, strerror(-r));
		rm->need_lease = 1;
		r = 0;
	}
	if (r < 0) {
		if (r != -EBUSY && r != -ESTALE && r != -EEXIST) /* refusals say why */
			zf_err("cannot attach the bucket '%s': %s", rm->url, strerror(-r));
		goto fail;
	}
	evict(rm);
	zf_fs_set_admit(fs, admit, rm);
	*ret_rm = rm;
	return 0;
fail:
	zf_segstore_set_fetch(zf_fs_segstore(fs), NULL, NULL);
	zf_objstore_close(rm->up);
	zf_objstore_close(rm->down);
	if (rm->devfd >= 0)
		close(rm->devfd);
	free(rm->dev_real);
	free(rm->url);
	free(rm);
	return r;
}

int zf_remote_start(struct zf_remote *rm)
{
	int r;

	/* the daemon may have forked since the open: the first round names its pid */
	rm->lease_renew_ns = 0;
	r = -pthread_create(&rm->thread, NULL, uploader_main, rm);
	if (r < 0)
		return r;
	rm->started = 1;
	/* read-ahead is an optimisation: without its thread reads still work */
	if (pthread_create(&rm->pf_thread, NULL, prefetch_main, rm) == 0) {
		pthread_mutex_lock(&rm->lock);
		rm->pf_started = 1;
		pthread_mutex_unlock(&rm->lock);
	}
	return 0;
}

/* the reason of a failed sync, from the round that failed (rm->lock held) */
static void sync_why_locked(struct zf_remote *rm, int r, char *why, size_t len)
{
	char since[16] = "?", what[220] = "";
	struct tm tm;

	if (rm->fail_since && localtime_r(&rm->fail_since, &tm))
		strftime(since, sizeof(since), "%H:%M:%S", &tm);
	if (rm->fail_what[0])
		snprintf(what, sizeof(what), " (%s)", rm->fail_what);
	if (rm->fenced)
		snprintf(why, len, "the lease of bucket '%s' belongs to another writer: uploads "
			 "stopped here, local data stays", rm->url);
	else if (rm->fail_local)
		snprintf(why, len, "the dev-dir '%s': %s%s", rm->dev_real, strerror(-r), what);
	else if (r == -ENOSPC || r == -EDQUOT || r == -EFBIG)
		snprintf(why, len, "bucket '%s' full (%s)%s", rm->url, strerror(-r), what);
	else if (r == -EACCES || r == -EPERM)
		snprintf(why, len, "bucket '%s' refuses this writer (%s)%s", rm->url, strerror(-r),
			 what);
	else if (transient(r))
		snprintf(why, len, "bucket '%s' unreachable since %s: %s%s", rm->url, since,
			 strerror(-r), what);
	else
		snprintf(why, len, "bucket '%s': %s%s", rm->url, strerror(-r), what);
}

int zf_remote_sync(struct zf_remote *rm)
{
	return zf_remote_sync_why(rm, NULL, 0);
}

int zf_remote_sync_why(struct zf_remote *rm, char *why, size_t len)
{
	struct zf_upload_point pt;
	uint64_t start;
	int r;

	r = zf_fs_sync(rm->fs);
	if (r == 0)
		r = zf_fs_upload_point(rm->fs, 0, &pt);
	if (r < 0) {
		if (why)
			snprintf(why, len, "the dev-dir '%s': %s (committing the log)", rm->dev_real,
				 strerror(-r));
		return r;
	}
	pthread_mutex_lock(&rm->lock);
	if (pt.committed > rm->sync_want)
		rm->sync_want = pt.committed;
	pthread_cond_broadcast(&rm->wake);
	start = now_ns();
	while (rm->sync_done < pt.committed && !rm->stopping && !rm->fenced) {
		pthread_cond_wait(&rm->done, &rm->lock);
		/*
		 * Failed rounds are retried: give up when the store refuses us,
		 * or has taken no object for write_wait (it is down, not flaky).
		 */
		if (rm->sync_err && rm->sync_done < pt.committed &&
		    (!transient(rm->sync_err) ||
		     now_ns() - (rm->progress_ns > start ? rm->progress_ns : start) >=
			     (uint64_t)rm->o.write_wait_ms * 1000000ull)) {
			r = rm->sync_err;
			break;
		}
	}
	if (rm->fenced)
		r = -EPERM;
	if (r < 0 && why)
		sync_why_locked(rm, r, why, len);
	pthread_mutex_unlock(&rm->lock);
	return r;
}

void zf_remote_stats(struct zf_remote *rm, struct zf_remote_stats *ret)
{
	double el;

	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&rm->lock);
	el = (now_ns() - rm->t0_ns) / 1e9;
	ret->pending_bytes = rm->unevictable;
	ret->oldest_pending_s = rm->pending_since_ns ? (now_ns() - rm->pending_since_ns) / 1e9 : 0;
	ret->uploaded_bytes = rm->uploaded;
	ret->fetched_bytes = rm->fetched;
	ret->upload_rate = el > 0 ? rm->uploaded / el : 0;
	ret->fetch_rate = el > 0 ? rm->fetched / el : 0;
	ret->fetch_hits = rm->fetch_hits;
	ret->prefetched_bytes = rm->prefetched;
	ret->fetch_misses = rm->fetch_misses;
	ret->local_bytes = rm->local_bytes;
	ret->cache_bytes = rm->o.cache_bytes;
	ret->evictions = rm->evictions;
	ret->stalls = rm->stalls;
	ret->uploaded_seq = rm->up_seq;
	ret->fenced = rm->fenced;
	pthread_mutex_unlock(&rm->lock);
}

int zf_remote_close(struct zf_remote *rm)
{
	int r = 0;

	if (!rm)
		return 0;
	pthread_mutex_lock(&rm->lock);
	rm->stopping = 1;
	pthread_cond_broadcast(&rm->wake);
	pthread_cond_broadcast(&rm->done);
	pthread_cond_broadcast(&rm->pf_wake);
	pthread_mutex_unlock(&rm->lock);
	if (rm->started)
		pthread_join(rm->thread, NULL);
	if (rm->pf_started)
		pthread_join(rm->pf_thread, NULL);
	if (rm->started && !rm->fenced && !rm->o.readonly) {
		/* the thread is gone: everything written so far goes up now */
		r = zf_fs_sync(rm->fs);
		if (r == 0)
			r = upload_round(rm, 1);
		if (r < 0)
			zf_err("final upload to '%s' failed: %s (the next mount resumes it)", rm->url,
			       strerror(-r));
	}
	zf_segstore_set_fetch(zf_fs_segstore(rm->fs), NULL, NULL);
	if (!rm->o.readonly) {
		zf_fs_set_admit(rm->fs, NULL, NULL);
		if (!rm->fenced && !rm->need_lease && zf_objstore_delete(rm->up, "lease") < 0) {
			/*
			 * A clean close during an outage: the lease stays in the
			 * bucket until it expires. Say here that it was released,
			 * so the next mount takes it without calling this a crash.
			 */
			pthread_mutex_lock(&rm->lock);
			snprintf(rm->released, sizeof(rm->released), "%s", rm->lease_id);
			pthread_mutex_unlock(&rm->lock);
			if (state_save(rm) < 0)
				zf_warn("cannot record in '%s/upload.state' that the lease of '%s' was "
					"released", rm->dev_real, rm->url);
		}
	}
	zf_objstore_close(rm->up);
	zf_objstore_close(rm->down);
	close(rm->cachefd);
	close(rm->metafd);
	close(rm->segfd);
	close(rm->devfd);
	pthread_cond_destroy(&rm->wake);
	pthread_cond_destroy(&rm->done);
	pthread_cond_destroy(&rm->arrived);
	pthread_cond_destroy(&rm->pf_wake);
	pthread_mutex_destroy(&rm->lock);
	pthread_mutex_destroy(&rm->evict_lock);
	for (size_t i = 0; i < rm->nobjs; i++)
		free(rm->objs[i].key);
	free(rm->objs);
	free(rm->dev_real);
	free(rm->url);
	free(rm);
	return r;
}

/* ------------------------------------------------------------------- gc */

/* segments up to max that the table (ids, sorted) no longer references */
struct sweep {
	const uint64_t *ids;
	size_t nids;
	const uint64_t *keep;		/* segments the bucket's metadata references, sorted */
	size_t nkeep;
	uint64_t max;
	char **keys;
	size_t nkeys;
	uint64_t bytes;
};

static int garbage_seg(const struct sweep *s, uint64_t id)
{
	return id && id <= s->max && !bsearch(&id, s->ids, s->nids, sizeof(*s->ids), zf_cmp_u64) &&
	       !(s->nkeep && bsearch(&id, s->keep, s->nkeep, sizeof(*s->keep), zf_cmp_u64));
}

struct bucket_refs {
	uint64_t *ids;
	size_t n;
	char first[400];		/* the first damage found */
};

static void refs_frame(void *ctx, const struct zf_frame *f)
{
	struct bucket_refs *b = ctx;

	if ((f->type == ZF_REC_SC || f->type == ZF_REC_SC_MOVE) && f->len >= 8) {
		b->ids = zf_realloc(b->ids, (b->n + 1) * sizeof(*b->ids));
		b->ids[b->n++] = zf_get64(f->payload);
	}
}

static void refs_say(void *ctx, int kind, const char *msg)
{
	struct bucket_refs *b = ctx;

	if (kind == SAY_WARN || kind == SAY_UNUSED)
		return;
	zf_err("gc: %s", msg);
	if (!b->first[0])
		snprintf(b->first, sizeof(b->first), "%s", msg);
}

/*
 * The segments the bucket's own metadata references (SC and SC_MOVE
 * records of its newest checkpoint and of the log after it), every object
 * of it fetched and verified, and the log reaching the head: a restore from
 * the bucket needs them whatever the dev-dir's table says. -EBADMSG (logged)
 * when the metadata is damaged or incomplete, or the store's -errno.
 */
static int bucket_refs(struct zf_remote *rm, uint64_t **ret_ids, size_t *ret_n)
{
	struct bucket_refs b = { 0 };
	struct mscan s = { .os = rm->up, .fetch = 1, .frame = refs_frame, .say = refs_say,
			   .ctx = &b, .expect_src = "upload.state" };
	int r;

	memcpy(s.fsid, rm->fsid, 16);
	pthread_mutex_lock(&rm->lock);
	s.expect = rm->up_seq;
	pthread_mutex_unlock(&rm->lock);
	r = mscan_run(&s);
	if (r == 0 && !b.first[0] && s.head_state <= 0 && (s.nckpts || s.npieces))
		snprintf(b.first, sizeof(b.first), "bucket object 'head' %s", s.head_state < 0 ?
			 s.head_why : "missing");
	if (r == 0 && b.first[0])
		r = -EBADMSG;
	if (r < 0) {
		zf_err("gc: the metadata of the bucket '%s' %s: nothing is deleted from the bucket "
		       "(run 'zerofs fsck --verify-data')", rm->url,
		       r == -EBADMSG ? "is damaged or incomplete" : "cannot be read");
		if (r != -EBADMSG)
			zf_err("gc: reading it failed: %s", strerror(-r));
		free(b.ids);
	} else {
		if (b.n)
			qsort(b.ids, b.n, sizeof(*b.ids), zf_cmp_u64);
		*ret_ids = b.ids;
		*ret_n = b.n;
	}
	mscan_free(&s);
	return r;
}

static int sweep_fn(void *ctx, const char *key, uint64_t size)
{
	struct sweep *s = ctx;
	unsigned long long id;
	char name[32];

	if (sscanf(key, "seg/%16llx.zseg", &id) != 1)
		return 0;
	zf_segstore_name(id, name, sizeof(name));
	if (strcmp(key + 4, name) || !garbage_seg(s, id))
		return 0;
	s->keys = zf_realloc(s->keys, (s->nkeys + 1) * sizeof(*s->keys));
	s->keys[s->nkeys++] = zf_strdup(key);
	s->bytes += size;
	return 0;
}

/* fetched super-chunks of garbage segments leave the dev-dir's cache */
static void sweep_cache(struct zf_remote *rm, const struct sweep *s)
{
	struct dirent *e;
	DIR *d;
	int fd = openat(rm->cachefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		unsigned long long id, off;

		if (sscanf(e->d_name, "%16llx-%16llx.sc", &id, &off) == 2 && garbage_seg(s, id))
			unlinkat(rm->cachefd, e->d_name, 0);
	}
	closedir(d);
}

int zf_remote_gc(struct zf_remote *rm, const struct zf_gc_opts *o, struct zf_gc_report *rep)
{
	struct zf_gc_opts lo = *o;
	struct sweep s = { 0 };
	uint64_t *ids = NULL, *keep = NULL, seq, up_seq;
	size_t i;
	int r;

	if (rm->o.readonly)
		return -EROFS;
	/* only segments the bucket holds may leave the dev-dir */
	pthread_mutex_lock(&rm->lock);
	lo.keep = 1;
	lo.keep_above = rm->up_seg;
	pthread_mutex_unlock(&rm->lock);
	r = zf_fs_gc(rm->fs, &lo, rep);
	if (r == 0)
		r = zf_fs_seg_refs(rm->fs, &ids, &s.nids, &s.max, &seq);
	if (r < 0)
		return r;
	s.ids = ids;
	if (!o->dry_run) {
		/*
		 * The bucket's log must reach seq before objects go: from then
		 * on a restore replays past every move gc made. A checkpoint
		 * with it lets the log pieces before it go as well.
		 */
		r = zf_fs_checkpoint(rm->fs);
		if (r == 0)
			r = zf_remote_sync(rm);
		pthread_mutex_lock(&rm->lock);
		up_seq = rm->up_seq;
		pthread_mutex_unlock(&rm->lock);
		if (r == 0 && up_seq < seq)
			r = -EAGAIN;
		if (r < 0) {
			zf_err("gc: the bucket '%s' did not take the log (%s): its garbage stays "
			       "until the next run", rm->url, strerror(-r));
			goto out;
		}
	}
	/* nothing the bucket's own metadata references goes, and nothing when it cannot be read */
	r = bucket_refs(rm, &keep, &s.nkeep);
	if (r < 0)
		goto out;
	s.keep = keep;
	if (!o->dry_run)
		sweep_cache(rm, &s);
	r = zf_objstore_list(rm->up, "seg/", sweep_fn, &s);
	if (r == 0 && s.nkeys && !o->dry_run)
		r = zf_objstore_multi_delete(rm->up, (const char *const *)s.keys, s.nkeys);
	if (r < 0)
		zf_err("gc: cannot delete garbage in the bucket '%s': %s", rm->url, strerror(-r));
	else {
		rep->bucket_objects = s.nkeys;
		rep->bucket_bytes = s.bytes;
	}
out:
	for (i = 0; i < s.nkeys; i++)
		free(s.keys[i]);
	free(s.keys);
	free(ids);
	free(keep);
	return r;
}

/* ---------------------------------------------------------------- fsck */

static int list_fn(void *ctx, const char *key, uint64_t size)
{
	struct zf_remote *rm = ctx;

	rm->objs = zf_realloc(rm->objs, (rm->nobjs + 1) * sizeof(*rm->objs));
	rm->objs[rm->nobjs].key = zf_strdup(key);
	rm->objs[rm->nobjs++].size = size;
	return 0;
}

static int cmp_obj(const void *a, const void *b)
{
	return strcmp(((const struct bucket_obj *)a)->key, ((const struct bucket_obj *)b)->key);
}

static int bucket_list(struct zf_remote *rm)
{
	if (rm->listed)
		return rm->listed < 0 ? rm->listed : 0;
	rm->listed = zf_objstore_list(rm->up, "", list_fn, rm);
	if (rm->listed < 0) {
		zf_err("cannot list the bucket '%s': %s", rm->url, strerror(-rm->listed));
		return rm->listed;
	}
	rm->listed = 1;
	if (rm->nobjs)
		qsort(rm->objs, rm->nobjs, sizeof(*rm->objs), cmp_obj);
	return 0;
}

static struct bucket_obj *bucket_find(struct zf_remote *rm, const char *key)
{
	struct bucket_obj k = { .key = (char *)key };

	return rm->nobjs ? bsearch(&k, rm->objs, rm->nobjs, sizeof(k), cmp_obj) : NULL;
}

int zf_remote_seg_size(void *ctx, uint64_t seg, uint64_t *ret_size)
{
	struct zf_remote *rm = ctx;
	struct bucket_obj *o;
	char key[64];
	int r = bucket_list(rm);

	if (r < 0)
		return r;
	snprintf(key, sizeof(key), "seg/%016" PRIx64 ".zseg", seg);
	o = bucket_find(rm, key);
	if (!o)
		return -ENOENT;
	*ret_size = o->size;
	return 0;
}

static void audit_say(struct zf_remote_audit *a, int is_problem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void audit_say(struct zf_remote_audit *a, int is_problem, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (is_problem) {
		a->errors++;
		if (a->problem)
			a->problem(a->ctx, msg);
	} else {
		a->notes++;
		if (a->note)
			a->note(a->ctx, msg);
	}
}

static void audit_garbage(struct zf_remote_audit *a, const struct bucket_obj *o, const char *why)
{
	a->garbage_objects++;
	a->garbage_bytes += o->size;
	audit_say(a, 0, "garbage: bucket object '%s' (%" PRIu64 " bytes) %s: reclaimable by "
		  "zerofs gc", o->key, o->size, why);
}

/* the superblock: there, and this filesystem's */
static int audit_superblock(struct zf_remote *rm, struct zf_remote_audit *a)
{
	const char *fix = a->repair ? "" : " (--repair puts the dev-dir's copy back)";
	void *local = NULL;
	size_t llen = 0;
	char why[200];
	int r, put = 0;

	if (zf_read_file(rm->devfd, "superblock", &local, &llen) < 0)
		return 0; /* the core could open the dev-dir: it is there */
	r = bucket_find(rm, "superblock") ? sb_classify(rm, why, sizeof(why)) : SB_ABSENT;
	if (r < 0) {
		note_unreachable(rm, "GET", "superblock", r);
		goto out;
	}
	switch (r) {
	case SB_ABSENT:
		audit_say(a, 1, "bucket object 'superblock' is missing: a restore from the bucket is "
			  "impossible%s", fix);
		put = 1;
		break;
	case SB_HEAL:
		audit_say(a, 1, "bucket object 'superblock' is damaged (%s), while the bucket's "
			  "metadata is this filesystem's: a restore from the bucket is impossible%s",
			  why, fix);
		put = 1;
		break;
	case SB_UNSURE:
		audit_say(a, 1, "bucket object 'superblock' is damaged (%s), and the bucket's "
			  "metadata does not say whose it is (not repaired)", why);
		break;
	case SB_FOREIGN:
		audit_say(a, 1, "the bucket holds another filesystem: its superblock is %s", why);
		break;
	}
	r = 0;
	if (put && a->repair) {
		r = zf_objstore_put(rm->up, "superblock", local, llen);
		if (r == 0) {
			a->repaired++;
			audit_say(a, 0, "repair: put the dev-dir's superblock into the bucket");
		} else {
			note_unreachable(rm, "PUT", "superblock", r);
		}
	}
out:
	free(local);
	return r;
}

/* the newest checkpoint in the dev-dir's meta/ (0: none) */
static uint64_t local_ckpt(struct zf_remote *rm)
{
	unsigned long long seq;
	uint64_t newest = 0;
	struct dirent *e;
	int fd = openat(rm->metafd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((e = readdir(d))) {
		n = 0;
		if (sscanf(e->d_name, "ckpt.%16llx%n", &seq, &n) == 1 && !e->d_name[n] &&
		    seq > newest)
			newest = seq;
	}
	closedir(d);
	return newest;
}

struct audit_meta {
	struct zf_remote_audit *a;
	int scheduled;			/* a fresh checkpoint goes up at the next mount */
	uint64_t ckpt;			/* ... this one */
	unsigned int damage;		/* problems a fresh checkpoint would replace */
};

static void audit_meta_say(void *ctx, int kind, const char *msg)
{
	struct audit_meta *m = ctx;

	if (kind == SAY_WARN || kind == SAY_UNUSED) {
		audit_say(m->a, 0, "bucket: %s%s", kind == SAY_UNUSED ? "a restore cannot use " : "",
			  msg);
		return;
	}
	if (m->scheduled) {
		audit_say(m->a, 0, "bucket: %s (scheduled: the next mount uploads the dev-dir's "
			  "checkpoint 0x%" PRIx64 ", which replaces it)", msg, m->ckpt);
		return;
	}
	m->damage++;
	audit_say(m->a, 1, "bucket: %s%s", msg, m->a->repair ? "" : " (--repair has the dev-dir's "
		  "checkpoint uploaded again, which replaces it)");
}

/*
 * The bucket's metadata: the head, and the chain from the newest checkpoint
 * (with verify: every object fetched and checked frame by frame) up to what
 * the head and upload.state say it holds. Damage the dev-dir can replace
 * (it holds every record the bucket got from it) is repaired by a fresh
 * checkpoint: upload.state's checkpoint mark goes to 0, so the next mount's
 * uploader ships the newest local checkpoint, after which the log pieces it
 * covers (the damaged ones among them) are deleted. The log mark stays: a
 * lower one would make the bucket's later pieces look like another
 * dev-dir's (a fork) at the next mount.
 */
static int audit_meta(struct zf_remote *rm, struct zf_remote_audit *a, int *ret_fix)
{
	struct audit_meta m = { .a = a };
	struct mscan s = { .os = rm->up, .fetch = 1, .expect_src = "upload.state",
			   .say = audit_meta_say, .ctx = &m };
	uint64_t up_seq, up_ckpt, claim, newest;
	const char *fix = a->repair ? "" : " (--repair puts it)";
	char buf[HEAD_MAX];
	struct head h;
	int r, put_head = 0;

	memcpy(s.fsid, rm->fsid, 16);
	pthread_mutex_lock(&rm->lock);
	up_seq = rm->up_seq;
	up_ckpt = rm->up_ckpt;
	claim = rm->claim_seq;
	pthread_mutex_unlock(&rm->lock);
	s.expect = up_seq;
	m.ckpt = local_ckpt(rm);
	m.scheduled = !up_ckpt && m.ckpt && m.ckpt >= claim;
	r = mscan_run(&s);
	if (r < 0) {
		note_unreachable(rm, "reading the metadata", NULL, r);
		goto out;
	}
	if (m.damage && a->repair) {
		pthread_mutex_lock(&rm->lock);
		rm->up_ckpt = 0;
		pthread_mutex_unlock(&rm->lock);
		*ret_fix = 1;
		a->repaired++;
		audit_say(a, 0, "repair: the next mount uploads the dev-dir's newest checkpoint, "
			  "which replaces the bucket's damaged metadata ('zerofs sync' or max_delay "
			  "seals the open segment first)");
	}
	/* the head: there, this filesystem's, not behind what this dev-dir put */
	if (!s.nckpts && !s.npieces)
		goto out; /* nothing uploaded yet: no head either */
	if (s.head_state == 0) {
		audit_say(a, 1, "bucket object 'head' is missing: a restore cannot tell whether the "
			  "newest log pieces are there%s", fix);
		put_head = 1;
	} else if (s.head_state < 0) {
		audit_say(a, 1, "bucket object 'head': %s%s", s.head_why, fix);
		put_head = 1;
	} else if (s.head.seq < up_seq) {
		audit_say(a, 1, "bucket object 'head' is stale: it says records up to 0x%" PRIx64
			  ", upload.state 0x%" PRIx64 "%s", s.head.seq, up_seq, fix);
		put_head = 1;
	} else if (s.head.seq > claim) {
		/* not damage: a restored copy wrote on; a mount of this one refuses (a fork) */
		audit_say(a, 0, "the bucket's head says records up to 0x%" PRIx64 ", past what this "
			  "dev-dir put (0x%" PRIx64 "): another dev-dir (a restored copy?) writes to "
			  "the bucket, and this one is behind it", s.head.seq, claim);
	}
	if (put_head && a->repair) {
		newest = s.nckpts ? s.ckpts[0].a : 0;
		memcpy(h.fsid, rm->fsid, 16);
		h.seq = up_seq;
		h.ckpt = up_ckpt && up_ckpt < newest ? up_ckpt : newest;
		r = zf_objstore_put(rm->up, HEAD_KEY, buf, head_format(&h, buf));
		if (r < 0) {
			note_unreachable(rm, "PUT", HEAD_KEY, r);
			goto out;
		}
		a->repaired++;
		audit_say(a, 0, "repair: put a head saying records up to 0x%" PRIx64 " into the "
			  "bucket", h.seq);
	}
out:
	mscan_free(&s);
	return r;
}

/*
 * Segments upload.state says the bucket holds: there, as long as the local
 * copy (listing sizes), and with verify the same bytes, each checked on its
 * own. A bucket copy that is missing or damaged while the dev-dir's is good
 * goes up again (the segment mark is lowered below it).
 */
static int audit_segs(struct zf_remote *rm, struct zf_remote_audit *a, int *ret_fix)
{
	uint64_t up_seg, first_bad = 0;
	void *remote = NULL, *local = NULL;
	size_t i, rlen, llen;
	int r = 0;

	pthread_mutex_lock(&rm->lock);
	up_seg = rm->up_seg;
	pthread_mutex_unlock(&rm->lock);
	for (i = 0; i < a->nsegs && a->segs[i] <= up_seg; i++) {
		const char *fix = a->repair ? "" : " (--repair has it uploaded again)";
		struct bucket_obj *o;
		char key[64], name[32], why[200];
		struct stat st;
		int has_local, bad = 0;

		zf_segstore_name(a->segs[i], name, sizeof(name));
		snprintf(key, sizeof(key), "seg/%s", name);
		o = bucket_find(rm, key);
		has_local = zf_segstore_has(zf_fs_segstore(rm->fs), a->segs[i]) &&
			    fstatat(rm->segfd, name, &st, 0) == 0;
		if (!o) {
			if (!has_local)
				continue; /* gone everywhere: the checker named the files above */
			audit_say(a, 1, "bucket object '%s' is missing (upload.state says it is "
				  "there): a restore would lose its data%s", key, fix);
			bad = 1;
		} else if (has_local && o->size != (uint64_t)st.st_size) {
			audit_say(a, 1, "bucket object '%s' is %" PRIu64 " bytes, the dev-dir's copy %"
				  PRIu64 "%s", key, o->size, (uint64_t)st.st_size, fix);
			bad = 1;
		} else if (a->verify) {
			r = zf_objstore_get(rm->up, key, 0, 0, &remote, &rlen);
			if (r == -ENOENT) {
				audit_say(a, 1, "bucket object '%s' is missing (listed, then gone)%s",
					  key, fix);
				bad = 1;
			} else if (r < 0) {
				note_unreachable(rm, "GET", key, r);
				break;
			} else if (has_local && zf_read_file(rm->segfd, name, &local, &llen) == 0 &&
				   llen == rlen && !memcmp(local, remote, rlen)) {
				/* the same bytes: the checker verified the local copy */
			} else if (seg_verify(remote, rlen, a->segs[i], rm->fsid, why, sizeof(why))) {
				/*
				 * Without a local copy the checker read every super-chunk
				 * the files map from this object and named what is lost;
				 * the rest of it (header, footer) costs nothing.
				 */
				audit_say(a, has_local, "bucket object '%s': %s%s", key, why,
					  has_local ? fix : " (the only copy: the files it costs, "
					  "if any, are named above)");
				bad = has_local;
			} else if (has_local) {
				audit_say(a, 0, "seg/%s: the dev-dir's copy differs from the bucket's, "
					  "which verifies (the checker judges the local one)", name);
			}
			free(remote);
			free(local);
			remote = local = NULL;
			r = 0;
		}
		if (bad && has_local && !first_bad)
			first_bad = a->segs[i];
	}
	if (r == 0 && a->repair && first_bad) {
		pthread_mutex_lock(&rm->lock);
		if (rm->up_seg >= first_bad)
			rm->up_seg = first_bad - 1;
		pthread_mutex_unlock(&rm->lock);
		*ret_fix = 1;
		a->repaired++;
		audit_say(a, 0, "repair: segments from %016" PRIx64 " on go up again at the next mount",
			  first_bad);
	}
	return r;
}

int zf_remote_audit(struct zf_remote *rm, struct zf_remote_audit *a)
{
	size_t i;
	int r, fix = 0;

	r = bucket_list(rm);
	if (r < 0) {
		note_unreachable(rm, "LIST", NULL, r);
		return r;
	}
	a->objects = rm->nobjs;
	for (i = 0; i < rm->nobjs; i++)
		a->bytes += rm->objs[i].size;
	if (!rm->nobjs) {
		audit_say(a, 0, "the bucket '%s' holds nothing yet", rm->url);
		return 0;
	}
	r = audit_superblock(rm, a);
	if (r < 0)
		return r;
	/* every object is the bucket's metadata, a segment it uses, or garbage */
	{
		uint64_t ckpt = 0;
		int has_ckpt = 0;

		for (i = 0; i < rm->nobjs; i++) {
			unsigned long long x;
			int n = 0;

			if (sscanf(rm->objs[i].key, "meta/ckpt.%16llx%n", &x, &n) == 1 &&
			    !rm->objs[i].key[n] && (!has_ckpt || x > ckpt)) {
				ckpt = x;
				has_ckpt = 1;
			}
		}
		for (i = 0; i < rm->nobjs; i++) {
			const struct bucket_obj *o = &rm->objs[i];
			unsigned long long x, y;
			int n = 0;

			if (!strcmp(o->key, "superblock") || !strcmp(o->key, "lease") ||
			    !strcmp(o->key, HEAD_KEY))
				continue;
			if (sscanf(o->key, "seg/%16llx.zseg%n", &x, &n) == 1 && !o->key[n] && n == 25) {
				if (!bsearch(&(uint64_t){ x }, a->segs, a->nsegs, sizeof(*a->segs),
					     cmp_u64))
					audit_garbage(a, o, "holds no chunk the metadata knows");
			} else if (sscanf(o->key, "meta/ckpt.%16llx%n", &x, &n) == 1 && !o->key[n]) {
				if (x != ckpt)
					audit_garbage(a, o, "is an older checkpoint");
			} else if (sscanf(o->key, "meta/log.%16llx-%16llx%n", &x, &y, &n) == 2 &&
				   !o->key[n] && x <= y) {
				if (has_ckpt && y <= ckpt)
					audit_garbage(a, o, "is covered by the newest checkpoint");
			} else {
				audit_garbage(a, o, "is not a zerofs object");
			}
		}
	}
	r = audit_meta(rm, a, &fix);
	if (r == 0)
		r = audit_segs(rm, a, &fix);
	if (r == 0 && zf_remote_unreachable(rm, NULL, 0))
		r = -EREMOTEIO; /* some answer is missing: nothing is concluded */
	if (r == 0 && fix) {
		r = state_save(rm);
		if (r < 0) {
			audit_say(a, 1, "cannot rewrite upload.state: %s", strerror(-r));
			r = 0;
		}
	}
	if (a->garbage_objects > 1)
		audit_say(a, 0, "garbage: %" PRIu64 " bucket objects, %" PRIu64 " bytes: reclaimable "
			  "by zerofs gc", a->garbage_objects, a->garbage_bytes);
	return r;
}

/* -------------------------------------------------------------- restore */

struct restore {
	const struct zf_restore_opts *o;
	const char *url;
	int dirfd, metafd;
	char **written;			/* meta/ files this restore wrote */
	size_t nwritten;
	unsigned int problems;		/* damage said (SAY_DAMAGE, data) */
};

static void restore_say(struct restore *rs, int kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void restore_say(struct restore *rs, int kind, const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (kind == ZF_RESTORE_DAMAGE)
		rs->problems++;
	if (rs->o->say)
		rs->o->say(rs->o->ctx, kind, msg);
	else
		zf_log(kind == ZF_RESTORE_DAMAGE ? ZF_LOG_ERR : ZF_LOG_WARN, "%s", msg);
}

static void restore_scan_say(void *ctx, int kind, const char *msg)
{
	static const int map[] = { [SAY_DAMAGE] = ZF_RESTORE_DAMAGE,
				   [SAY_DAMAGE_OK] = ZF_RESTORE_WARN,
				   [SAY_UNUSED] = ZF_RESTORE_UNUSED,
				   [SAY_WARN] = ZF_RESTORE_WARN };

	restore_say(ctx, map[kind], "%s", msg);
}

/* a verified object of the chain: into the dev-dir's meta/ */
static int restore_keep(void *ctx, const char *name, const void *buf, size_t len)
{
	struct restore *rs = ctx;
	int r;

	r = zf_publish_file(rs->metafd, name, buf, len);
	if (r < 0) {
		zf_err("cannot write 'meta/%s' for the restore: %s", name, strerror(-r));
		return r;
	}
	rs->written = zf_realloc(rs->written, (rs->nwritten + 1) * sizeof(*rs->written));
	rs->written[rs->nwritten++] = zf_strdup(name);
	return 0;
}

static void restore_problem(void *ctx, const char *msg)
{
	restore_say(ctx, ZF_RESTORE_DAMAGE, "data: %s", msg);
}

static void restore_ignore(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

/*
 * The restored metadata against the bucket's data: every super-chunk a
 * file maps is in a segment object long enough for it (one listing), and
 * with verify_data every one is fetched and verified. Each problem is said
 * (with the files it costs). The top segment id in *ret_top_seg.
 */
static int restore_check_data(struct restore *rs, const char *dev_dir,
			      const struct zf_objstore_opts *so, uint64_t *ret_top_seg)
{
	struct zf_open_opts oo = { .readonly = 1 };
	struct zf_remote_opts ro = { .url = rs->url, .readonly = 1 };
	struct zf_check_report rep = { 0 };
	struct zf_remote *rm = NULL;
	uint64_t *ids = NULL;
	size_t nids = 0;
	struct zf_fs *fs;
	char why[320];
	int r;

	r = zf_fs_open(dev_dir, &oo, &fs);
	if (r < 0) {
		restore_say(rs, ZF_RESTORE_DAMAGE, "the restored metadata does not load (%s): see "
			    "the error above", strerror(-r));
		return -EBADMSG;
	}
	zf_fs_segments_used(fs, &ids, &nids);
	*ret_top_seg = nids ? ids[nids - 1] : 0;
	free(ids);
	ro.store = *so;
	r = zf_remote_open(fs, dev_dir, &ro, &rm);
	if (r == 0) {
		rep.problem = restore_problem;
		rep.note = restore_ignore;
		rep.ctx = rs;
		rep.verify_data = rs->o->verify_data;
		rep.remote_seg_size = zf_remote_seg_size;
		rep.rctx = rm;
		r = zf_fs_check(fs, &rep);
		if (r == -EUCLEAN)
			r = 0;
		if (r == 0 && zf_remote_unreachable(rm, why, sizeof(why))) {
			zf_err("the bucket '%s' did not answer: %s", rs->url, why);
			r = zf_remote_unreachable(rm, NULL, 0);
		}
	}
	zf_remote_close(rm);
	zf_fs_close(fs);
	return r;
}

/* remove what this restore made in the dev-dir: it is left as it was */
static void restore_undo(struct restore *rs, const char *dev_dir, char **before, size_t nbefore,
			 int made_dir)
{
	static const char *const ours[] = { "meta", "seg", "cache", "superblock", "upload.state",
					    "lock", NULL };
	struct stat st;
	size_t i, j;

	for (i = 0; i < rs->nwritten; i++)
		unlinkat(rs->metafd, rs->written[i], 0);
	for (i = 0; ours[i]; i++) {
		for (j = 0; j < nbefore && strcmp(before[j], ours[i]); j++)
			;
		if (j < nbefore)
			continue; /* there before: not ours to remove */
		if (fstatat(rs->dirfd, ours[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			unlinkat(rs->dirfd, ours[i], 0);
		} else {
			int fd = openat(rs->dirfd, ours[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			DIR *d = fd < 0 ? NULL : fdopendir(fd);
			struct dirent *e;

			while (d && (e = readdir(d)))
				if (e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..")))
					unlinkat(fd, e->d_name, 0);
			if (d)
				closedir(d);
			else if (fd >= 0)
				close(fd);
			unlinkat(rs->dirfd, ours[i], AT_REMOVEDIR);
		}
	}
	if (made_dir)
		rmdir(dev_dir);
}

/* the names in dir (malloc'd) */
static char **dir_names(int dirfd, size_t *ret_n)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;

	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		v = zf_realloc(v, (n + 1) * sizeof(*v));
		v[n++] = zf_strdup(e->d_name);
	}
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
	*ret_n = n;
	return v;
}

int zf_remote_restore(const char *url, const struct zf_restore_opts *ro, const char *dev_dir,
		      struct zf_restore_report *ret)
{
	static const struct zf_restore_opts none = { 0 };
	const struct zf_restore_opts *o = ro ? ro : &none;
	struct zf_objstore_opts so = o->store ? *o->store : (struct zf_objstore_opts){ 0 };
	struct restore rs = { .o = o, .url = url, .dirfd = -1, .metafd = -1 };
	struct mscan m = { .fetch = 1, .partial = o->allow_loss, .keep = restore_keep,
			   .say = restore_scan_say, .ctx = &rs };
	struct zf_restore_report rep = { 0 };
	struct zf_objstore *os = NULL;
	char why[200], state[160], **before = NULL;
	size_t nbefore = 0, sblen = 0, i;
	uint8_t fsid[16];
	int r, n, made_dir = 0, undo = 0;
	uint64_t top_seg = 0;
	void *sb = NULL;

	r = zf_objstore_open(url, &so, &os);
	if (r < 0) {
		zf_err("cannot open the object store '%s': %s", url, strerror(-r));
		return r;
	}
	if (mkdir(dev_dir, 0700) == 0)
		made_dir = 1;
	else if (errno != EEXIST) {
		r = -errno;
		zf_err("cannot create the dev-dir '%s': %s", dev_dir, strerror(-r));
		goto out;
	}
	rs.dirfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rs.dirfd < 0) {
		r = -errno;
		zf_err("cannot open the dev-dir '%s': %s", dev_dir, strerror(-r));
		goto out;
	}
	if (faccessat(rs.dirfd, "superblock", F_OK, 0) == 0) {
		zf_err("'%s' already holds a filesystem: restore only into an empty dev-dir",
		       dev_dir);
		r = -EEXIST;
		goto out;
	}
	before = dir_names(rs.dirfd, &nbefore);
	undo = 1;
	if ((mkdirat(rs.dirfd, "meta", 0700) < 0 && errno != EEXIST) ||
	    (mkdirat(rs.dirfd, "seg", 0700) < 0 && errno != EEXIST) ||
	    (rs.metafd = openat(rs.dirfd, "meta", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = -errno;
		zf_err("cannot prepare the dev-dir '%s': %s", dev_dir, strerror(-r));
		goto out;
	}
	/* the superblock holds the filesystem's secret: nothing is restorable without it */
	r = zf_objstore_get(os, "superblock", 0, 0, &sb, &sblen);
	if (r == -ENOENT) {
		r = zf_objstore_list(os, "meta/", mscan_list_fn, &m);
		if (r == 0 && !m.nckpts && !m.npieces) {
			zf_err("the bucket '%s' holds no zerofs filesystem", url);
			r = -ENOENT;
			goto out;
		}
		mscan_free(&m);
		if (r == 0) {
			restore_say(&rs, ZF_RESTORE_DAMAGE, "superblock missing: it holds the "
				    "filesystem's secret, nothing can be restored without it");
			r = -EBADMSG;
		}
	} else if (r == 0 && sb_verify(sb, sblen, m.fsid, why, sizeof(why)) < 0) {
		restore_say(&rs, ZF_RESTORE_DAMAGE, "superblock: %s (it holds the filesystem's "
			    "secret, nothing can be restored without it)", why);
		r = -EBADMSG;
	} else if (r == 0 && (r = meta_fsid(os, fsid)) > 0 && memcmp(fsid, m.fsid, 16)) {
		restore_say(&rs, ZF_RESTORE_DAMAGE, "superblock: another filesystem's (the bucket's "
			    "checkpoint and head are not its); it holds the filesystem's secret, "
			    "nothing can be restored without the right one");
		r = -EBADMSG;
	} else if (r > 0) {
		r = 0;
	}
	if (r < 0) {
		if (r != -EBADMSG)
			zf_err("cannot fetch 'superblock' from '%s': %s", url, strerror(-r));
		goto out;
	}
	/* the newest checkpoint and the log after it, every object verified */
	m.os = os;
	r = mscan_run(&m);
	if (r < 0) {
		zf_err("cannot read the metadata of '%s': %s", url, strerror(-r));
		goto out;
	}
	if (m.head_state == 0 && m.usable)
		restore_say(&rs, ZF_RESTORE_WARN, "the bucket has no head (an older zerofs wrote it): "
			    "a missing newest log piece cannot be detected");
	else if (m.head_state < 0)
		restore_say(&rs, ZF_RESTORE_DAMAGE, "head: %s (the end of the bucket's log is "
			    "unknown)", m.head_why);
	if (!m.usable) {
		r = -EBADMSG;
		goto out;
	}
	if (rs.problems && !o->allow_loss) {
		r = -EBADMSG;
		goto out;
	}
	r = zf_publish_file(rs.dirfd, "superblock", sb, sblen);
	if (r == 0)
		r = restore_check_data(&rs, dev_dir, &so, &top_seg);
	if (r < 0)
		goto out;
	if (rs.problems && !o->allow_loss) {
		r = -EBADMSG;
		goto out;
	}
	/*
	 * Everything it names is in the bucket: segments come on demand. The
	 * segment mark is the highest one the metadata uses: segments
	 * written from now on have higher ids and must go up (a mark above
	 * them would keep them out of the bucket for good).
	 */
	n = snprintf(state, sizeof(state), "seq %" PRIu64 "\nseg %" PRIu64 "\nckpt %" PRIu64 "\n",
		     m.end, top_seg, m.has_ckpt ? m.ckpt : 0);
	r = zf_publish_file(rs.dirfd, "upload.state", state, n);
	if (r < 0)
		goto out;
	rep.seq = m.end;
	rep.problems = rs.problems;
	if (m.end < m.target) {
		rep.lost_from = m.end + 1;
		rep.lost_to = m.target;
	}
	for (i = 0; i < m.npieces; i++)
		if (m.pieces[i].b > m.end)
			rep.beyond = 1; /* the next mount will see them as another dev-dir's */
	undo = 0;
out:
	if (undo && r < 0)
		restore_undo(&rs, dev_dir, before, nbefore, made_dir);
	else if (r < 0 && made_dir)
		rmdir(dev_dir);
	for (i = 0; i < nbefore; i++)
		free(before[i]);
	free(before);
	for (i = 0; i < rs.nwritten; i++)
		free(rs.written[i]);
	free(rs.written);
	free(sb);
	mscan_free(&m);
	if (rs.metafd >= 0)
		close(rs.metafd);
	if (rs.dirfd >= 0)
		close(rs.dirfd);
	zf_objstore_close(os);
	if (r == 0 && ret)
		*ret = rep;
	return r;
}

int zf_remote_break_lease(const char *url, const struct zf_objstore_opts *so)
{
	struct zf_objstore_opts o = so ? *so : (struct zf_objstore_opts){ 0 };
	struct zf_objstore *os;
	int r;

	r = zf_objstore_open(url, &o, &os);
	if (r < 0)
		return r;
	r = zf_objstore_delete(os, "lease");
	zf_objstore_close(os);
	return r;
}
