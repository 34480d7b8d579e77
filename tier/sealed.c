/*
 * tier/sealed.c - bucket objects through storage/seal.h: every whole-object
 * GET and PUT of the tier, and the opening of fetched super-chunks
 *
 * What a sealed object looks like is storage/seal.c's; here it meets the
 * store: a whole object is opened after its GET and sealed before its PUT;
 * a ranged GET of a segment is opened unit by unit, with the segment's
 * nonce read once from its header and kept (a few segments are read at a
 * time: a small table, least recently used out).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "net/objstore.h"
#include "storage/bucket_keys.h"
#include "storage/seg_format.h"
#include "storage/superblock.h"
#include "tier/tier_internal.h"

int zf_tier_get_obj(struct zf_objstore *os, const struct zf_seal *s, const char *key,
		    void **ret, size_t *ret_len, char *why, size_t why_len)
{
	struct zf_bkey k;
	void *buf = NULL;
	size_t len = 0;
	int r;

	r = zf_objstore_get(os, key, 0, 0, &buf, &len);
	if (r < 0)
		return r;
	if (zf_bkey_parse(key, &k) == ZF_BKEY_IS_SEG) {
		r = zf_unseal_seg(s, k.a, buf, len, why, why_len);
		if (r < 0) {
			free(buf);
			return r;
		}
		*ret = buf;
		*ret_len = len;
		return 0;
	}
	r = zf_unseal_obj(s, key, buf, len, ret, ret_len, why, why_len);
	free(buf);
	return r;
}

int zf_tier_put_obj(struct zf_objstore *os, const struct zf_seal *s, const char *key,
		    const void *buf, size_t len)
{
	struct zf_bkey k;
	void *out = NULL;
	size_t olen;
	int r;

	if (zf_bkey_parse(key, &k) == ZF_BKEY_IS_SEG && (s->features & ZF_FEAT_ENCRYPT)) {
		out = zf_malloc(len ? len : 1);
		memcpy(out, buf, len);
		olen = len;
		r = zf_seal_seg(s, k.a, out, len);
		if (r < 0) {
			zf_err("cannot seal segment object '%s': it does not parse", key);
			free(out);
			return -EIO;
		}
	} else if (zf_seal_is_plain(s, key)) {
		return zf_objstore_put(os, key, buf, len);
	} else {
		r = zf_seal_obj(s, key, buf, len, &out, &olen);
		if (r < 0)
			return r;
	}
	r = zf_objstore_put(os, key, out, olen);
	free(out);
	return r;
}

/*
 * The segment's nonce: from the table (*ret_cached set), else from its
 * header in the bucket. fresh: not from the table (a re-upload since gave
 * the object new nonces).
 */
static int seg_nonce(struct zf_remote *rm, uint64_t seg, int fresh, uint8_t nonce[ZF_SEG_NONCE_LEN],
		     int *ret_cached)
{
	char key[ZF_BKEY_MAX], why[200];
	void *hdr = NULL;
	size_t len, i;
	int r;

	*ret_cached = 0;
	zf_mutex_lock(&rm->lock);
	for (i = 0; i < ZF_TIER_NONCES; i++)
		if (rm->nonces[i].used && rm->nonces[i].seg == seg) {
			if (fresh) {
				rm->nonces[i].used = 0;
				break;
			}
			memcpy(nonce, rm->nonces[i].nonce, ZF_SEG_NONCE_LEN);
			rm->nonces[i].used = ++rm->nonce_clock;
			zf_mutex_unlock(&rm->lock);
			*ret_cached = 1;
			return 0;
		}
	zf_mutex_unlock(&rm->lock);
	zf_bkey_seg(seg, key, sizeof(key));
	r = zf_objstore_get(rm->down, key, 0, ZF_SEG_HDR_SIZE, &hdr, &len);
	if (r < 0)
		return r;
	r = zf_unseal_seg_nonce(&rm->seal, seg, hdr, nonce, why, sizeof(why));
	free(hdr);
	if (r < 0) {
		zf_err("segment object '%s' in '%s': %s", key, rm->url, why);
		return r;
	}
	zf_mutex_lock(&rm->lock);
	{
		size_t old = 0;

		for (i = 1; i < ZF_TIER_NONCES; i++)
			if (rm->nonces[i].used < rm->nonces[old].used)
				old = i;
		rm->nonces[old].seg = seg;
		memcpy(rm->nonces[old].nonce, nonce, ZF_SEG_NONCE_LEN);
		rm->nonces[old].used = ++rm->nonce_clock;
	}
	zf_mutex_unlock(&rm->lock);
	return 0;
}

int zf_tier_seg_nonce(struct zf_remote *rm, uint64_t seg)
{
	uint8_t nonce[ZF_SEG_NONCE_LEN];
	int cached;

	if (!(rm->seal.features & ZF_FEAT_ENCRYPT))
		return 0;
	return seg_nonce(rm, seg, 0, nonce, &cached);
}

int zf_tier_open_units(struct zf_remote *rm, uint64_t seg, uint64_t off, void *buf, size_t len,
		       size_t *ret_len, int *ret_footer)
{
	uint8_t nonce[ZF_SEG_NONCE_LEN], *p = buf;
	char key[ZF_BKEY_MAX], why[200];
	uint64_t ulen;
	size_t pos = 0;
	int r, footer, cached, fresh = 0;

	*ret_len = 0;
	if (ret_footer)
		*ret_footer = 0;
	if (!(rm->seal.features & ZF_FEAT_ENCRYPT)) {
		*ret_len = len;
		return 0;
	}
again:
	r = seg_nonce(rm, seg, fresh, nonce, &cached);
	if (r < 0)
		return r;
	while (pos < len) {
		r = zf_unseal_peek(&rm->seal, nonce, off + pos, p + pos, len - pos, &ulen, &footer);
		if (r < 0 && len - pos < ZF_SC_HDR_SIZE)
			break; /* cut by the range: not a unit yet */
		if (r == 0 && footer) {
			if (ret_footer)
				*ret_footer = 1; /* left sealed: nobody reads it as a super-chunk */
			break;
		}
		if (r == 0 && ulen > len - pos)
			break;
		if (r == 0)
			r = zf_unseal_unit(&rm->seal, seg, nonce, off + pos, p + pos, ulen, why,
					   sizeof(why));
		else if (pos == 0 && !cached)
			break; /* not a unit here: the caller's reader names any damage */
		else
			snprintf(why, sizeof(why), "no super-chunk at %llu (damaged)",
				 (unsigned long long)(off + pos));
		if (r < 0 && pos == 0 && cached) {
			fresh = 1; /* the object may have been put again since: its header once more */
			goto again;
		}
		if (r < 0) {
			zf_bkey_seg(seg, key, sizeof(key));
			zf_err("segment object '%s' in '%s': %s", key, rm->url, why);
			break;
		}
		pos += ulen;
	}
	*ret_len = pos;
	return pos || len == 0 || (ret_footer && *ret_footer) ? 0 : -EBADMSG;
}
