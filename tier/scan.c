/*
 * tier/scan.c - the chain scanner (see scan.h)
 *
 * Not here: what an object must be (tier/verify.c); what restore, audit and
 * gc make of the findings (tier/restore.c, tier/audit.c, tier/gc.c).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/buf.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "net/objstore.h"
#include "storage/bucket_keys.h"
#include "storage/meta_format.h"
#include "storage/mlog.h"
#include "tier/scan.h"

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

int zf_mscan_list_fn(void *ctx, const char *key, uint64_t size)
{
	struct mscan *s = ctx;
	struct zf_bkey k;

	(void)size;
	switch (zf_bkey_parse(key, &k)) {
	case ZF_BKEY_IS_LOG:
		s->pieces = zf_realloc(s->pieces, (s->npieces + 1) * sizeof(*s->pieces));
		s->pieces[s->npieces++] = (struct mkey){ k.a, k.b };
		break;
	case ZF_BKEY_IS_CKPT:
		s->ckpts = zf_realloc(s->ckpts, (s->nckpts + 1) * sizeof(*s->ckpts));
		s->ckpts[s->nckpts++] = (struct mkey){ k.a, k.a };
		break;
	default:
		break;
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

void zf_mscan_free(struct mscan *s)
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
	char key[ZF_BKEY_MAX], name[32], why[256];
	struct zf_buf trimmed = { 0 };
	uint64_t ok_last;
	size_t len, ok_len;
	void *buf;
	int r;

	if (!s->fetch)
		return 0;
	zf_bkey_log(k->a, k->b, key, sizeof(key));
	r = zf_tier_get_obj(s->os, s->seal, key, &buf, &len, why, sizeof(why));
	if (r == -EBADMSG)
		goto damaged;
	if (r == -ENOENT) {
		snprintf(why, sizeof(why), "listed, then gone (deleted meanwhile?)");
		goto damaged;
	}
	if (r < 0)
		return r;
	r = zf_tier_piece_verify(buf, len, s->fsid, k->a, k->b, s->frame, s->ctx, &ok_len,
				 &ok_last, why, sizeof(why));
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
int zf_mscan_run(struct mscan *s)
{
	char key[ZF_BKEY_MAX], name[32], why[256];
	struct mfail ckpt_bad = { .n = 0 }, fail = { .n = 0 };
	struct zf_buf partial = { 0 };
	uint64_t next, partial_last = 0, gap_to;
	const char *target_src;
	char target_buf[64];
	void *buf = NULL;
	size_t i, len;
	unsigned int j;
	int r;

	r = zf_objstore_list(s->os, ZF_BKEY_META_PREFIX, zf_mscan_list_fn, s);
	if (r < 0)
		return r;
	if (s->nckpts)
		qsort(s->ckpts, s->nckpts, sizeof(*s->ckpts), cmp_newest);
	if (s->npieces)
		qsort(s->pieces, s->npieces, sizeof(*s->pieces), cmp_chain);
	r = zf_tier_get_obj(s->os, s->seal, ZF_BKEY_HEAD, &buf, &len, s->head_why,
			    sizeof(s->head_why));
	if (r == -EBADMSG) {
		s->head_state = -1;
		r = 0;
	} else if (r == 0) {
		s->head_state = zf_tier_head_parse(buf, len, &s->head, s->head_why, sizeof(s->head_why)) == 0
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
		zf_bkey_ckpt(s->ckpts[0].a, target_buf, sizeof(target_buf));
		target_src = target_buf;
	}
	for (i = 0; i < s->npieces; i++)
		if (s->pieces[i].b > s->target) {
			s->target = s->pieces[i].b;
			target_src = NULL; /* a piece exists past the end: the gap says it */
		}
	/* a replica's table reaches after: the pieces from after + 1, if they are there */
	for (i = 0; s->after && i < s->npieces && !s->along; i++)
		s->along = s->pieces[i].a <= s->after + 1 && s->pieces[i].b > s->after;
	if (s->after && !s->along && s->head_state > 0 && s->head.seq <= s->after &&
	    (!s->nckpts || s->ckpts[0].a <= s->after))
		s->along = 1; /* nothing new */
	/* the newest checkpoint that verifies */
	for (i = 0; i < s->nckpts && !s->has_ckpt && !s->along; i++) {
		zf_bkey_ckpt(s->ckpts[i].a, key, sizeof(key));
		if (s->fetch) {
			r = zf_tier_get_obj(s->os, s->seal, key, &buf, &len, why, sizeof(why));
			if (r < 0 && r != -ENOENT && r != -EBADMSG)
				goto out;
			if (r == -ENOENT)
				snprintf(why, sizeof(why), "listed, then gone (deleted meanwhile?)");
			else if (r == 0)
				r = zf_tier_ckpt_verify(buf, len, s->fsid, s->ckpts[i].a,
							s->frame, s->ctx, why, sizeof(why));
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
	next = (s->along ? s->after : s->has_ckpt ? s->ckpt : 0) + 1;
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
		zf_bkey_ckpt(s->head.ckpt, key, sizeof(key));
		if (i == s->nckpts)
			mscan_say(s, s->usable && s->end >= s->target ? SAY_DAMAGE_OK : SAY_DAMAGE,
				  "%s missing (the bucket's head names it)", key);
	}
	if (!s->usable) {
		if (s->nckpts || s->npieces)
			mscan_say(s, SAY_DAMAGE, "no checkpoint verifies and no log piece starts at "
				  "record 1: nothing in the bucket can be restored");
		goto out;
	}
	if (s->has_ckpt && s->ckpt != s->ckpts[0].a && s->end >= s->target) {
		zf_bkey_ckpt(s->ckpt, key, sizeof(key));
		mscan_say(s, SAY_WARN, "used the older checkpoint %s: its log reaches record 0x%"
			  PRIx64 ", as far as the bucket holds", key, s->end);
	}
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
		zf_bkey_log(next, gap_to, key, sizeof(key));
		if (gap_to < s->target)
			mscan_say(s, SAY_DAMAGE, "%s missing: the log has a gap before record 0x%"
				  PRIx64, key, gap_to + 1);
		else
			mscan_say(s, SAY_DAMAGE, "%s missing (%s says records up to 0x%" PRIx64 ")",
				  key, target_src ? target_src : "the bucket", s->target);
	}
	for (i = 0; i < s->npieces; i++)
		if (s->pieces[i].a > next) {
			zf_bkey_log(s->pieces[i].a, s->pieces[i].b, key, sizeof(key));
			mscan_say(s, SAY_UNUSED, "%s (it follows the missing records)", key);
		}
out:
	zf_buf_free(&partial);
	return r;
}


/*
 * Whose metadata does the bucket hold? The fsid in the header of its newest
 * checkpoint (the bulk of it), else in its head. 1 and *ret_fsid, 0 when
 * neither verifies, or the store's -errno.
 */
int zf_tier_meta_fsid(struct zf_objstore *os, const struct zf_seal *seal, uint8_t ret_fsid[16])
{
	struct mscan s = { .os = os, .seal = seal };
	char key[ZF_BKEY_MAX], why[200];
	struct zf_tier_head h;
	void *buf;
	size_t len;
	int r;

	r = zf_objstore_list(os, ZF_BKEY_META_PREFIX, zf_mscan_list_fn, &s);
	if (r == 0 && s.nckpts) {
		qsort(s.ckpts, s.nckpts, sizeof(*s.ckpts), cmp_newest);
		zf_bkey_ckpt(s.ckpts[0].a, key, sizeof(key));
		/* a sealed one opens whole, a plain one's header is enough */
		if (zf_seal_is_plain(seal, key))
			r = zf_objstore_get(os, key, 0, ZF_CKPT_HDR_SIZE, &buf, &len);
		else
			r = zf_tier_get_obj(os, seal, key, &buf, &len, why, sizeof(why));
		if (r == 0 && len >= ZF_CKPT_HDR_SIZE) {
			len = ZF_CKPT_HDR_SIZE;
			/* checked against its own fsid: only the kind, checksum and seq count */
			r = len == ZF_CKPT_HDR_SIZE &&
			    zf_tier_file_hdr_verify(buf, len, ZF_CKPT_MAGIC, ZF_CKPT_VERSION,
						    (uint8_t *)buf + 16, s.ckpts[0].a, why,
						    sizeof(why)) == 0;
			if (r)
				memcpy(ret_fsid, (uint8_t *)buf + 16, 16);
			free(buf);
		} else if (r >= 0 || r == -ENOENT || r == -EIO || r == -EBADMSG) {
			free(r == 0 ? buf : NULL);
			r = 0; /* gone, shorter than a header or not opening: it tells nothing */
		}
	}
	zf_mscan_free(&s);
	if (r != 0)
		return r;
	r = zf_tier_get_obj(os, seal, ZF_BKEY_HEAD, &buf, &len, why, sizeof(why));
	if (r == -ENOENT || r == -EBADMSG)
		return 0;
	if (r < 0)
		return r;
	r = zf_tier_head_parse(buf, len, &h, why, sizeof(why)) == 0;
	if (r)
		memcpy(ret_fsid, h.fsid, 16);
	free(buf);
	return r;
}

