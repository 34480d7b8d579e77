/*
 * tier/state.c - upload.state and the bucket's head
 *
 * Local state: <dev-dir>/upload.state ("seq S", "seg N", "ckpt C" lines)
 * says what the bucket holds: log records up to S, every sealed segment up
 * to N, checkpoint C. It is rewritten (.tmp, fsync, rename) after each
 * segment and each round; if it is lost or stale, uploads are redone --
 * objects are immutable and named by content position, so a second put
 * writes the same bytes. A fourth line "claim L" is saved before a
 * checkpoint or log piece goes up: the bucket may hold records up to L from
 * this dev-dir. Records beyond it in the bucket were written by another
 * dev-dir (a restored copy): uploading would fork the filesystem, so
 * attaching refuses (tier/attach.c). A line "released <id>" records a lease
 * a clean close could not delete.
 *
 * The head object says how far the bucket's log reaches: the uploader puts
 * it after every round that moved the log end or the checkpoint, always
 * after the objects it counts, so the chain of log pieces reaches at least
 * its seq (a crash between the two leaves the head behind, never ahead).
 * Format: docs/FORMAT.md "Bucket".
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/lock.h"
#include "common/util.h"
#include "storage/bucket_keys.h"
#include "tier/tier_internal.h"

int zf_tier_state_save(struct zf_remote *rm)
{
	char buf[200];
	int n;

	zf_mutex_lock(&rm->lock);
	if (rm->claim_seq < rm->up_seq)
		rm->claim_seq = rm->up_seq;
	n = snprintf(buf, sizeof(buf),
		     "seq %" PRIu64 "\nseg %" PRIu64 "\nckpt %" PRIu64 "\nclaim %" PRIu64 "\n%s%s%s",
		     rm->up_seq, rm->up_seg, rm->up_ckpt, rm->claim_seq,
		     rm->released[0] ? "released " : "", rm->released, rm->released[0] ? "\n" : "");
	zf_mutex_unlock(&rm->lock);
	return zf_publish_file(rm->devfd, "upload.state", buf, n);
}

void zf_tier_state_load(struct zf_remote *rm)
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

size_t zf_tier_head_format(const struct zf_tier_head *h, char *buf)
{
	char fsid[33];
	int n;

	hex_str(h->fsid, 16, fsid);
	n = snprintf(buf, ZF_TIER_HEAD_MAX,
		     "zerofs-head 1\nfsid %s\nseq %016" PRIx64 "\nckpt %016" PRIx64 "\n", fsid,
		     h->seq, h->ckpt);
	n += snprintf(buf + n, ZF_TIER_HEAD_MAX - n, "xxh3 %016" PRIx64 "\n",
		      (uint64_t)XXH3_64bits(buf, n));
	return n;
}

/* 0 and *ret, or -EBADMSG with why: the head must be exactly what zf_tier_head_format wrote */
int zf_tier_head_parse(const void *buf, size_t len, struct zf_tier_head *ret, char *why,
		       size_t wlen)
{
	char text[ZF_TIER_HEAD_MAX], canon[ZF_TIER_HEAD_MAX], fsid[33];
	unsigned long long seq, ckpt, sum;
	const char *x;
	struct zf_tier_head h;
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
	if (zf_tier_head_format(&h, canon) != len || memcmp(canon, text, len)) {
		snprintf(why, wlen, "malformed");
		return -EBADMSG;
	}
	*ret = h;
	return 0;
}


/*
 * After a round that moved the bucket's log end or its checkpoint: the
 * head says so, put after the objects it counts (never before). The first
 * round of a process always puts it (an older zerofs wrote none; a damaged
 * one heals).
 */
int zf_tier_head_update(struct zf_remote *rm)
{
	char buf[ZF_TIER_HEAD_MAX];
	struct zf_tier_head h;
	int r, same;

	zf_mutex_lock(&rm->lock);
	h.seq = rm->up_seq;
	h.ckpt = rm->up_ckpt;
	same = h.seq == rm->head_seq && h.ckpt == rm->head_ckpt;
	zf_mutex_unlock(&rm->lock);
	if (same || (!h.seq && !h.ckpt))
		return 0;
	memcpy(h.fsid, rm->fsid, 16);
	r = zf_tier_put_obj(rm->up, &rm->seal, ZF_BKEY_HEAD, buf, zf_tier_head_format(&h, buf));
	if (r == 0) {
		zf_mutex_lock(&rm->lock);
		rm->head_seq = h.seq;
		rm->head_ckpt = h.ckpt;
		rm->puts++;
		zf_mutex_unlock(&rm->lock);
	}
	return r;
}

