/*
 * storage/segstore_read.c - reading one super-chunk and proving it: the
 * header checksum (which covers the chunk table), version, flags, segment
 * id, lengths against the location, payload checksum, zstd frame, and
 * every chunk re-hashed against its id. Then the store's read entry points:
 * whole ranges through the cache, single chunks (straight from a raw
 * super-chunk when that is cheaper), and fsck's uncached verification.
 *
 * Errors: -EIO with one log line naming segment and offset, and the same
 * words in the caller's struct zf_seg_err when it passed one.
 * Locking (segstore_internal.h): st->dlock around the pool of zstd
 * decompression contexts; the fd cache and the super-chunk cache take their
 * own. No lock is held while reading, fetching or decompressing.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <zstd.h>

#include "common/lock.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/segstore_internal.h"

void zf_scent_free(struct zf_scent *e)
{
	if (!e)
		return;
	free(e->tab);
	free(e->tab_off);
	free(e);
}

/* ---- zstd contexts ---- */

static ZSTD_DCtx *zf_dctx_get(struct zf_segstore *st)
{
	ZSTD_DCtx *d = NULL;

	zf_mutex_lock(&st->dlock);
	if (st->ndpool > 0)
		d = st->dpool[--st->ndpool];
	zf_mutex_unlock(&st->dlock);
	if (!d) {
		d = ZSTD_createDCtx();
		if (!d) {
			zf_err("out of memory creating a zstd decompression context");
			abort();
		}
	}
	return d;
}

static void zf_dctx_put(struct zf_segstore *st, ZSTD_DCtx *d)
{
	zf_mutex_lock(&st->dlock);
	if (st->ndpool < ZF_SEG_DCTX_POOL) {
		st->dpool[st->ndpool++] = d;
		d = NULL;
	}
	zf_mutex_unlock(&st->dlock);
	ZSTD_freeDCtx(d);
}

/* ---- reading and verifying one super-chunk ---- */

void zf_seg_err_set(struct zf_seg_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->why, sizeof(err->why), fmt, ap);
	va_end(ap);
}

int zf_sc_bad(struct zf_seg_err *err, const struct zf_sc_loc *loc, const char *fmt, ...)
{
	char name[32], what[sizeof(err->why)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	zf_seg_err_set(err, "%s", what);
	zf_segstore_name(loc->seg, name, sizeof(name));
	zf_err("cannot read segment '%s' at offset %" PRIu64 ": %s", name, loc->off, what);
	return -EIO;
}

/* the checks are listed at the top of the file */
int zf_sc_load_once(struct zf_segstore *st, const struct zf_sc_loc *loc, struct zf_scent **ret_e,
		    struct zf_sc_chunk **ret_chunks, uint32_t *ret_n, int refetch, int *ret_fetched,
		    struct zf_seg_err *err)
{
	int fetched = 0;
	struct zf_sc_chunk *chunks = NULL;
	struct zf_scent *e = NULL;
	struct zf_segfd *f = NULL;
	struct zf_sc_hdr h;
	const uint8_t *table, *payload;
	uint8_t *buf;
	uint32_t i, pos;
	ssize_t n;
	int r;

	if (loc->disk_len < ZF_SC_HDR_SIZE + ZF_SC_ENT_SIZE || loc->disk_len > ZF_SC_DISK_MAX ||
	    loc->raw_len == 0 || loc->raw_len > ZF_SC_RAW_MAX)
		return zf_sc_bad(err, loc, "implausible location (disk length %" PRIu32
				 ", raw length %" PRIu32 ")", loc->disk_len, loc->raw_len);

	zf_seg_err_set(err, "unreadable");
	/* refetch > 1: the bucket's copy only, whatever the dev-dir holds (fsck) */
	r = refetch > 1 ? -ENOENT : zf_segfd_get(st, loc->seg, &f, err);
	if (r == -ENOENT && st->fetch && zf_nonet_locks && refetch <= 1) {
		/* the caller may not wait for the network (segstore.h) */
		zf_seg_err_set(err, "not local, and the caller may not wait for the bucket");
		return -EIO;
	}
	if (r == -ENOENT && st->fetch) {
		/*
		 * An evicted segment: the object-storage tier fetches exactly
		 * [loc->off, loc->off + disk_len), possibly from its local
		 * cache of fetched super-chunks; it is verified below like a
		 * local read. No storage lock is held here.
		 */
		buf = zf_malloc(loc->disk_len);
		r = st->fetch(st->fetch_ctx, loc, buf, refetch);
		if (r < 0) {
			free(buf);
			zf_seg_err_set(err, "cannot fetch it from the bucket: %s", strerror(-r));
			return r; /* logged by the fetcher */
		}
		fetched = 1;
		goto verify;
	}
	if (r == -ENOENT) {
		char name[32];

		zf_segstore_name(loc->seg, name, sizeof(name));
		zf_warn("cannot read segment '%s' at offset %" PRIu64 ": no such file", name,
			loc->off);
		zf_seg_err_set(err, "segment file missing");
		return r;
	}
	if (r < 0)
		return r; /* -EIO for a bad segment header, else -errno; logged */

	buf = zf_malloc(loc->disk_len);
	n = zf_pread_full(f->fd, buf, loc->disk_len, (off_t)loc->off);
	zf_segfd_put(st, f);
	if (n < 0) {
		r = zf_sc_bad(err, loc, "%s", strerror((int)-n));
		goto out_free;
	}
	if ((uint64_t)n < loc->disk_len) {
		r = zf_sc_bad(err, loc, "truncated super-chunk (%zd of %" PRIu32 " bytes)", n,
			      loc->disk_len);
		goto out_free;
	}
verify:
	if (zf_get32(buf) != ZF_SC_MAGIC) {
		r = zf_sc_bad(err, loc, "bad super-chunk magic");
		goto out_free;
	}
	zf_sc_hdr_decode(buf, &h);
	/* bound n by the bytes we have before hashing its table */
	if (h.nchunks == 0 || h.nchunks > ZF_SC_CHUNKS_MAX ||
	    ZF_SC_HDR_SIZE + (uint64_t)h.nchunks * ZF_SC_ENT_SIZE > loc->disk_len) {
		r = zf_sc_bad(err, loc, "bad chunk count %" PRIu32, h.nchunks);
		goto out_free;
	}
	if (zf_sc_hdr_csum(buf, h.nchunks) != h.hdr_csum) {
		r = zf_sc_bad(err, loc, "super-chunk header checksum mismatch");
		goto out_free;
	}
	if (h.version != ZF_SC_VERSION) {
		r = zf_sc_bad(err, loc, "unsupported super-chunk version %u", h.version);
		goto out_free;
	}
	if (h.flags & ZF_SC_F_ENCRYPTED) {
		r = zf_sc_bad(err, loc, "encrypted super-chunk, not supported by this version");
		goto out_free;
	}
	if (h.flags & ~ZF_SC_F_KNOWN) {
		r = zf_sc_bad(err, loc, "unknown super-chunk flags 0x%x", h.flags);
		goto out_free;
	}
	if (h.seg != loc->seg) {
		r = zf_sc_bad(err, loc, "super-chunk belongs to segment %016" PRIx64, h.seg);
		goto out_free;
	}
	if (h.raw_len != loc->raw_len ||
	    ZF_SC_HDR_SIZE + (uint64_t)h.nchunks * ZF_SC_ENT_SIZE + h.stored_len != loc->disk_len) {
		r = zf_sc_bad(err, loc, "super-chunk lengths (raw %" PRIu32 ", stored %" PRIu32
			      ", %" PRIu32 " chunks) do not match its location",
			      h.raw_len, h.stored_len, h.nchunks);
		goto out_free;
	}
	table = buf + ZF_SC_HDR_SIZE;
	payload = table + (size_t)h.nchunks * ZF_SC_ENT_SIZE;
	if (XXH3_64bits(payload, h.stored_len) != h.payload_csum) {
		r = zf_sc_bad(err, loc, "super-chunk payload checksum mismatch");
		goto out_free;
	}

	e = zf_malloc(sizeof(*e) + h.raw_len);
	memset(e, 0, sizeof(*e));
	e->seg = loc->seg;
	e->off = loc->off;
	e->disk_len = loc->disk_len;
	e->raw_len = h.raw_len;
	e->refs = 1;
	zf_link_init(&e->lru);

	if (h.flags & ZF_SC_F_ZSTD) {
		unsigned long long fcs = ZSTD_getFrameContentSize(payload, h.stored_len);
		size_t csize = ZSTD_findFrameCompressedSize(payload, h.stored_len);
		ZSTD_DCtx *d;
		size_t got;

		if (fcs != h.raw_len || ZSTD_isError(csize) || csize != h.stored_len) {
			r = zf_sc_bad(err, loc, "zstd frame does not match the super-chunk lengths");
			goto out_free;
		}
		d = zf_dctx_get(st);
		got = ZSTD_decompressDCtx(d, e->data, h.raw_len, payload, h.stored_len);
		zf_dctx_put(st, d);
		if (ZSTD_isError(got)) {
			r = zf_sc_bad(err, loc, "zstd: %s", ZSTD_getErrorName(got));
			goto out_free;
		}
		if (got != h.raw_len) {
			r = zf_sc_bad(err, loc, "decompressed %zu bytes, expected %" PRIu32, got,
				      h.raw_len);
			goto out_free;
		}
	} else {
		if (h.stored_len != h.raw_len) {
			r = zf_sc_bad(err, loc, "raw super-chunk with stored length %" PRIu32
				      " != raw length %" PRIu32, h.stored_len, h.raw_len);
			goto out_free;
		}
		memcpy(e->data, payload, h.raw_len);
	}

	/* re-hash every chunk: this is what makes served bytes trustworthy */
	if (ret_chunks)
		chunks = zf_malloc((size_t)h.nchunks * sizeof(*chunks));
	for (i = 0, pos = 0; i < h.nchunks; i++) {
		const uint8_t *ent = table + (size_t)i * ZF_SC_ENT_SIZE;
		uint32_t len = zf_get32(ent + ZF_SC_ENT_LEN_OFF);
		struct zf_chunk_id id;

		if (len == 0 || len > h.raw_len - pos) {
			r = zf_sc_bad(err, loc, "chunk %" PRIu32 " length %" PRIu32
				      " overruns the super-chunk", i, len);
			goto out_free;
		}
		zf_chunker_id(st->chunker, e->data + pos, len, &id);
		if (memcmp(id.b, ent, ZF_CHUNK_ID_LEN) != 0) {
			r = zf_sc_bad(err, loc, "chunk %" PRIu32 " (raw offset %" PRIu32
				      ") does not match its id (hash mismatch)", i, pos);
			goto out_free;
		}
		if (chunks) {
			memcpy(chunks[i].id.b, ent, ZF_CHUNK_ID_LEN);
			chunks[i].len = len;
		}
		pos += len;
	}
	if (pos != h.raw_len) {
		r = zf_sc_bad(err, loc, "chunk lengths add up to %" PRIu32 ", raw length is %" PRIu32,
			      pos, h.raw_len);
		goto out_free;
	}

	free(buf);
	*ret_e = e;
	if (ret_chunks) {
		*ret_chunks = chunks;
		*ret_n = h.nchunks;
	}
	*ret_fetched = fetched;
	return 0;

out_free:
	*ret_fetched = fetched; /* fetched bytes that did not verify */
	free(chunks);
	free(e);
	free(buf);
	return r;
}


int zf_segstore_read(struct zf_segstore *st, const struct zf_sc_loc *loc, uint32_t raw_off,
		     uint32_t len, void *dst)
{
	struct zf_scent *e;
	int r;

	if (!loc || loc->seg == 0 || raw_off > loc->raw_len || len > loc->raw_len - raw_off)
		return -EINVAL;
	if (len == 0)
		return 0;
	r = zf_cache_load(st, loc, &e);
	if (r < 0)
		return r;
	memcpy(dst, e->data + raw_off, len);
	zf_cache_put(st, e);
	return 0;
}

/*
 * A super-chunk stored raw (disk_len > raw_len: incompressible data) holds
 * each chunk's bytes verbatim at the end of the record: read just the chunk
 * and prove it by its keyed hash, instead of loading and caching megabytes
 * for a 4 KiB random read. Any doubt (compressed after all, damage, a short
 * read) returns non-zero and the caller takes the full, logging path.
 */
static int zf_read_raw_chunk(struct zf_segstore *st, const struct zf_sc_loc *loc,
			     const struct zf_sc_chunk *want, uint32_t chunk_off, uint32_t coff,
			     uint32_t len, void *dst)
{
	struct zf_chunk_id id;
	struct zf_segfd *f;
	uint8_t *buf;
	ssize_t n;
	int r;

	if (loc->disk_len <= loc->raw_len)
		return -EAGAIN;
	r = zf_segfd_get(st, loc->seg, &f, NULL);
	if (r < 0)
		return r;
	buf = zf_malloc(want->len);
	n = zf_pread_full(f->fd, buf, want->len,
			  loc->off + loc->disk_len - loc->raw_len + chunk_off);
	zf_segfd_put(st, f);
	r = -EAGAIN;
	if (n == (ssize_t)want->len) {
		zf_chunker_id(st->chunker, buf, want->len, &id);
		if (memcmp(id.b, want->id.b, ZF_CHUNK_ID_LEN) == 0) {
			memcpy(dst, buf + coff, len);
			r = 0;
		}
	}
	free(buf);
	return r;
}

int zf_segstore_read_chunk(struct zf_segstore *st, const struct zf_sc_loc *loc,
			   const struct zf_sc_chunk *want, uint32_t chunk_off, uint32_t coff,
			   uint32_t len, void *dst)
{
	struct zf_scent *e;
	uint32_t lo = 0, hi;
	int r;

	if (!loc || loc->seg == 0 || chunk_off > loc->raw_len ||
	    want->len > loc->raw_len - chunk_off || coff > want->len || len > want->len - coff)
		return -EINVAL;
	e = zf_cache_get(st, loc->seg, loc->off);
	if (!e && zf_read_raw_chunk(st, loc, want, chunk_off, coff, len, dst) == 0)
		return 0;
	if (e)
		zf_cache_put(st, e);
	r = zf_cache_load(st, loc, &e);
	if (r < 0)
		return r;
	/* the table must list exactly this chunk at this offset */
	hi = e->ntab;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (e->tab_off[mid] < chunk_off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == e->ntab || e->tab_off[lo] != chunk_off || e->tab[lo].len != want->len ||
	    memcmp(e->tab[lo].id.b, want->id.b, ZF_CHUNK_ID_LEN) != 0) {
		zf_cache_put(st, e);
		return zf_sc_bad(NULL, loc, "chunk expected at raw offset %" PRIu32 " is not there",
				 chunk_off);
	}
	if (len)
		memcpy(dst, e->data + chunk_off + coff, len);
	zf_cache_put(st, e);
	return 0;
}

/* hand a verified chunk table to the caller (either pointer may be NULL) */
static void table_out(struct zf_sc_chunk *chunks, uint32_t n, struct zf_sc_chunk **ret_chunks,
		      uint32_t *ret_n)
{
	if (ret_chunks)
		*ret_chunks = chunks;
	else
		free(chunks);
	if (ret_n)
		*ret_n = n;
}

int zf_segstore_verify(struct zf_segstore *st, const struct zf_sc_loc *loc,
		       struct zf_sc_chunk **ret_chunks, uint32_t *ret_n, struct zf_seg_err *err)
{
	struct zf_sc_chunk *chunks;
	struct zf_scent *e;
	uint32_t n;
	int r;

	zf_seg_err_set(err, "unreadable");
	if (!loc || loc->seg == 0)
		return -EINVAL;
	r = zf_sc_load(st, loc, &e, &chunks, &n, err);
	if (r < 0)
		return r;
	zf_scent_free(e);
	table_out(chunks, n, ret_chunks, ret_n);
	return 0;
}

int zf_segstore_verify_remote(struct zf_segstore *st, const struct zf_sc_loc *loc,
			      struct zf_sc_chunk **ret_chunks, uint32_t *ret_n,
			      struct zf_seg_err *err)
{
	struct zf_sc_chunk *chunks;
	struct zf_scent *e;
	uint32_t n;
	int fetched = 0, r;

	zf_seg_err_set(err, "unreadable");
	if (!loc || loc->seg == 0)
		return -EINVAL;
	if (!st->fetch)
		return -EOPNOTSUPP;
	r = zf_sc_load_once(st, loc, &e, &chunks, &n, 2, &fetched, err);
	if (r < 0)
		return r;
	zf_scent_free(e);
	table_out(chunks, n, ret_chunks, ret_n);
	return 0;
}
