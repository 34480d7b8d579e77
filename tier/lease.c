/*
 * tier/lease.c - the writers' lease: one writer per bucket
 *
 * The bucket object "lease" names its holder (host, pid, dev-dir) and when
 * it expires; the holder renews it at a third of its lifetime and checks
 * before every upload round that it is still its own (fencing: a writer
 * that lost it stops uploading). Format: docs/FORMAT.md "Bucket".
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/bucket_keys.h"
#include "tier/tier_internal.h"

struct lease {
	char id[64];
	char who[256];			/* "<host> pid <pid>" */
	char dev[4096];			/* the holder's dev-dir ("": an older zerofs) */
	uint64_t token, expires;
};

static int lease_read(struct zf_objstore *os, const struct zf_seal *seal, struct lease *ret)
{
	unsigned long long t = 0, e = 0;
	struct lease l = { 0 };
	const char *dev;
	char why[200];
	size_t len;
	void *buf;
	int r;

	r = zf_tier_get_obj(os, seal, ZF_BKEY_LEASE, &buf, &len, why, sizeof(why));
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
	return zf_tier_put_obj(rm->up, &rm->seal, ZF_BKEY_LEASE, buf, n);
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
int zf_tier_lease_acquire(struct zf_remote *rm)
{
	struct lease l = { 0 };
	uint8_t raw[16];
	int r, i;

	zf_random(raw, sizeof(raw));
	for (i = 0; i < 16; i++)
		sprintf(rm->lease_id + 2 * i, "%02x", raw[i]);
	r = lease_read(rm->up, &rm->seal, &l);
	if (r == 0 && l.expires > (uint64_t)time(NULL) && rm->released[0] &&
	    !strcmp(l.id, rm->released)) {
		/* this dev-dir's last mount released it cleanly, but could not delete it */
		zf_info("the lease of '%s' was released by this dev-dir's last (clean) unmount "
			"during an outage: taking it", rm->url);
	} else if (r == 0 && l.expires > (uint64_t)time(NULL)) {
		if (!lease_holder_gone(rm, &l)) {
			char until[80];

			zf_time_human(l.expires, until, sizeof(until));
			zf_err("bucket '%s' is in use by %s%s%s%s until %s; if that writer is gone "
			       "for good, run 'zerofs lease-break %s'", rm->url, l.who,
			       l.dev[0] ? " (dev-dir '" : "", l.dev, l.dev[0] ? "')" : "", until,
			       rm->url);
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
	r = lease_read(rm->up, &rm->seal, &l);
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	if (r < 0 || strcmp(l.id, rm->lease_id) != 0) {
		zf_err("lost the race for the lease of '%s' to %s", rm->url, r < 0 ? "?" : l.who);
		return -EBUSY;
	}
	rm->lease_renew_ns = zf_mono_ns() + (uint64_t)rm->o.lease_ttl_s * 1000000000ull / 3;
	zf_mutex_lock(&rm->lock);
	rm->released[0] = 0; /* the next zf_tier_state_save drops the record */
	zf_mutex_unlock(&rm->lock);
	return 0;
}

/* fencing: before each round, the lease must still be ours */
int zf_tier_lease_check(struct zf_remote *rm)
{
	struct lease l;
	int r;

	r = lease_read(rm->up, &rm->seal, &l);
	if (r == 0 && strcmp(l.id, rm->lease_id) != 0) {
		zf_err("the lease of '%s' now belongs to %s: uploads stop here, local data stays",
		       rm->url, l.who);
		zf_mutex_lock(&rm->lock);
		rm->fenced = 1;
		zf_mutex_unlock(&rm->lock);
		return -EPERM;
	}
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	if (r < 0 || zf_mono_ns() >= rm->lease_renew_ns) {
		r = lease_write(rm);
		if (r == 0)
			rm->lease_renew_ns =
				zf_mono_ns() + (uint64_t)rm->o.lease_ttl_s * 1000000000ull / 3;
	}
	return r;
}


/* is pid a live zerofs process on this host (not a zombie; its command name says so)? */
static int pid_is_zerofs(int pid)
{
	char path[64], stat[256] = "", *open, *close;
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(stat, sizeof(stat), f))
		stat[0] = 0;
	fclose(f);
	/* "<pid> (<command name>) <state> ...": the name may hold ')' itself */
	open = strchr(stat, '(');
	close = strrchr(stat, ')');
	if (!open || !close || close < open || close[1] != ' ' || close[2] == 'Z' ||
	    close[2] == 'X')
		return 0;
	*close = 0;
	open++;
	/* run as zerofs, or by mount(8) as mount.zerofs or mount.fuse.zerofs
	 * (a command name is cut at 15 characters) */
	return !strcmp(open, "zerofs") || !strcmp(open, "mount.zerofs") ||
	       !strcmp(open, "mount.fuse.zero");
}

int zf_remote_lease_read(const char *url, const struct zf_objstore_opts *so,
			 const struct zf_seal *seal, struct zf_lease_info *ret)
{
	struct zf_objstore_opts o = so ? *so : (struct zf_objstore_opts){ 0 };
	struct zf_lease_info info = { 0 };
	char host[256] = "";
	struct zf_objstore *os;
	struct lease l;
	int r;

	r = zf_objstore_open(url, &o, &os);
	if (r < 0)
		return r;
	r = lease_read(os, seal, &l);
	zf_objstore_close(os);
	if (r < 0)
		return r;
	if (sscanf(l.who, "%255s pid %d", info.host, &info.pid) < 1)
		return -EBADMSG;
	snprintf(info.dev, sizeof(info.dev), "%s", l.dev);
	info.expires = l.expires;
	gethostname(host, sizeof(host) - 1);
	info.here = !strcmp(host, info.host);
	info.alive_here = info.here && pid_is_zerofs(info.pid);
	*ret = info;
	return 0;
}

int zf_remote_break_lease(const char *url, const struct zf_objstore_opts *so)
{
	struct zf_objstore_opts o = so ? *so : (struct zf_objstore_opts){ 0 };
	struct zf_objstore *os;
	int r;

	r = zf_objstore_open(url, &o, &os);
	if (r < 0)
		return r;
	r = zf_objstore_delete(os, ZF_BKEY_LEASE);
	zf_objstore_close(os);
	return r;
}
