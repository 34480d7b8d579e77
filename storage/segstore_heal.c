/*
 * storage/segstore_heal.c - where a super-chunk comes from when the first
 * copy tried does not verify: fetched bytes (the tier's fetch cache may
 * hold a damaged copy) are fetched once more straight from the bucket, and
 * a damaged local copy is replaced by the bucket's verified one (a
 * self-healing read), unless the store is read-only (fsck reports the
 * damage and --repair decides).
 *
 * Locking: no store lock is held while fetching or writing the healed
 * bytes back; a caller holding fs->lock (zf_nonet_locks) gets the first
 * failure, never a wait for the bucket.
 * Not here: the fetch hook itself (the object-storage tier).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/segstore_internal.h"

/* the bucket's verified copy of loc replaces the damaged local bytes */
static void zf_sc_heal(struct zf_segstore *st, const struct zf_sc_loc *loc, const char *why)
{
	uint8_t *buf = zf_malloc(loc->disk_len);
	char name[32];
	int r;

	zf_segstore_name(loc->seg, name, sizeof(name));
	r = st->fetch(st->fetch_ctx, loc, buf, 2);
	if (r == 0)
		r = zf_seg_patch(st, loc->seg, loc->off, buf, loc->disk_len);
	free(buf);
	if (r < 0) {
		zf_err("segment '%s' offset %" PRIu64 ": %s; served the bucket's copy, but cannot "
		       "replace the local one: %s", name, loc->off, why, strerror(-r));
		return;
	}
	__atomic_add_fetch(&st->healed, 1, __ATOMIC_RELAXED);
	zf_warn("segment '%s' offset %" PRIu64 ": %s; replaced by the bucket's copy", name,
		loc->off, why);
}

int zf_sc_load(struct zf_segstore *st, const struct zf_sc_loc *loc, struct zf_scent **ret_e,
	       struct zf_sc_chunk **ret_chunks, uint32_t *ret_n, struct zf_seg_err *err)
{
	struct zf_seg_err first, again;
	int fetched = 0, local, r;

	r = zf_sc_load_once(st, loc, ret_e, ret_chunks, ret_n, 0, &fetched, &first);
	if (r < 0 && err)
		*err = first;
	if (r != -EIO || !st->fetch || zf_nonet_locks)
		return r;
	if (st->readonly && zf_segfd_exists(st, loc->seg) == 0)
		return r; /* fsck: it reports the damage, --repair decides */
	local = zf_segfd_exists(st, loc->seg) == 0;
	/* fetched bytes that did not verify (a damaged copy in the fetch
	 * cache): once more from the bucket itself; a fetch that failed (an
	 * outage, a timeout) is not tried again: that doubled the wait */
	if (!local)
		return fetched ? zf_sc_load_once(st, loc, ret_e, ret_chunks, ret_n, 1, &fetched,
						 err)
			       : r;
	/*
	 * A local copy that does not verify: the bucket's copy (if it has
	 * one) is verified the same way, served, and written over the
	 * damaged bytes, which are exactly the super-chunk's range.
	 */
	if (zf_sc_load_once(st, loc, ret_e, ret_chunks, ret_n, 2, &fetched, &again) < 0)
		return r; /* err: why the local copy failed */
	zf_sc_heal(st, loc, first.why);
	return 0;
}

