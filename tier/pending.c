/*
 * tier/pending.c - what the bucket lacks of a dev-dir
 *
 * upload.state (tier/state.c) holds two marks: every segment up to "seg"
 * and every log record up to "seq" are in the bucket. What it lacks is
 * therefore the segment files in seg/ past the first mark (the open one
 * included) and the committed log records past the second. Two views:
 * a mounted dev-dir's, from the tier's own marks (zf_tier_pending: stats,
 * sync progress, the daemon's last word), and an unmounted one's, from the
 * dev-dir alone, with no bucket and no lease (zf_remote_pending_read:
 * 'zerofs stats <dev-dir>', umount's last check) -- it works while the
 * bucket is unreachable. One sentence says it (zf_remote_pending_say).
 *
 * Locking: rm->lock to read the marks; the core is asked without it.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lock.h"
#include "tier/tier_internal.h"

/* segment files of seg/ (segfd) past up_seg: their count and bytes */
static int count_segs(int segfd, uint64_t up_seg, struct zf_remote_pending *p)
{
	struct dirent *e;
	DIR *d;
	int fd = openat(segfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		unsigned long long id;
		struct stat st;
		int n = 0;

		/* "<16 hex>.zseg" exactly: not a .tmp of one */
		if (sscanf(e->d_name, "%16llx.zseg%n", &id, &n) != 1 || e->d_name[n] ||
		    id <= up_seg || fstatat(segfd, e->d_name, &st, 0) < 0)
			continue;
		p->segs++;
		p->bytes += st.st_size;
	}
	closedir(d);
	return 0;
}

static void records_past(uint64_t committed, uint64_t up_seq, struct zf_remote_pending *p)
{
	p->records = committed > up_seq ? committed - up_seq : 0;
}

void zf_tier_pending(struct zf_remote *rm, struct zf_remote_pending *ret)
{
	uint64_t up_seg, up_seq;

	memset(ret, 0, sizeof(*ret));
	zf_mutex_lock(&rm->lock);
	up_seg = rm->up_seg;
	up_seq = rm->up_seq;
	zf_mutex_unlock(&rm->lock);
	count_segs(rm->segfd, up_seg, ret); /* unreadable: counted as none, stats go on */
	ret->bytes += zf_fs_buffered_bytes(rm->fs);
	records_past(zf_fs_committed_seq(rm->fs), up_seq, ret);
}

int zf_remote_pending_read(struct zf_fs *fs, const char *dev_dir, struct zf_remote_pending *ret)
{
	/*
	 * The marks through upload.state's one parser, on a tier that is
	 * never opened: zf_tier_state_load reads only devfd, and leaves the
	 * marks 0 (everything pending) when there is no upload.state yet.
	 */
	struct zf_remote marks = { 0 };
	struct zf_remote_pending p = { 0 };
	int segfd, r;

	marks.devfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (marks.devfd < 0)
		return -errno;
	zf_tier_state_load(&marks);
	segfd = openat(marks.devfd, "seg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = segfd < 0 ? -errno : count_segs(segfd, marks.up_seg, &p);
	if (segfd >= 0)
		close(segfd);
	close(marks.devfd);
	if (r < 0)
		return r;
	records_past(zf_fs_committed_seq(fs), marks.up_seq, &p);
	*ret = p;
	return 0;
}

void zf_remote_pending_say(const struct zf_remote_pending *p, char *buf, size_t len)
{
	snprintf(buf, len, "%llu bytes in %llu segment%s and %llu log record%s",
		 (unsigned long long)p->bytes, (unsigned long long)p->segs, p->segs == 1 ? "" : "s",
		 (unsigned long long)p->records, p->records == 1 ? "" : "s");
}
