/*
 * tests/fuzz/fuzz_mlog.c - a whole log file (zf_mlog_replay and
 * zf_mlog_replay_salvage, storage/mlog.c)
 *
 * The input is a log file, written once per input into the scratch
 * directory under the name its header's seq gives (the salvage path takes
 * the seq from the name when the header is damaged). The fsid the replay
 * expects is the header's own, so a mutated header still gets past it.
 * Checked: every frame delivered and every bad region reported lies inside
 * the file, the scan's end and dropped bytes add up to the file's size.
 * The same bytes are then read as the durable mark, meta/synced
 * (zf_synced_read), whose slots carry the fsid at the same offset.
 */
#include "config.h"

#include "storage/meta_format.h"
#include "storage/mlog.h"
#include "tests/fuzz/fuzz.h"

static size_t cur_size;

static int on_frame(void *ctx, const struct zf_frame *f)
{
	fz_check(f->off >= ZF_LOG_HDR_SIZE);
	fz_check(f->off + ZF_REC_HDR_SIZE + f->len <= cur_size);
	/* a callback's non-zero stops the replay: let the input ask for it */
	return f->type == 0xff ? 7 : 0;
}

static void on_bad(void *ctx, const char *name, uint64_t off, const uint8_t *p, size_t len,
		   uint64_t expect_seq)
{
	fz_check(off <= cur_size && len <= cur_size - off);
	fz_touch(p, len);
}

static void check_scan(int r, const struct zf_mlog_scan *s)
{
	if (r != 0)
		return;
	fz_check(s->end <= cur_size);
	fz_check(s->end + s->dropped == cur_size);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	fz_scratch();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t fsid[16] = { 0 };
	struct zf_mlog_scan scan;
	char name[64];
	uint64_t seq = size >= 40 ? fz_le64(data + 32) : 1;
	int r;

	if (size >= 32)
		memcpy(fsid, data + 16, 16);
	zf_mlog_name(seq, name, sizeof(name));
	fz_write_file(fz_dirfd, name, data, size, 0600);
	cur_size = size;

	memset(&scan, 0, sizeof(scan));
	r = zf_mlog_replay(fz_dirfd, name, fsid, 0, on_frame, NULL, &scan);
	fz_check(r == 0 || r == -EBADMSG || r == 7);
	check_scan(r, &scan);

	memset(&scan, 0, sizeof(scan));
	r = zf_mlog_replay_salvage(fz_dirfd, name, fsid, seq + (size & 3), on_frame, on_bad, NULL,
				   &scan);
	fz_check(r == 0 || r == -EBADMSG || r == 7);
	check_scan(r, &scan);

	unlinkat(fz_dirfd, name, 0);

	/* the same bytes as the durable mark (meta/synced, two slots) */
	fz_write_file(fz_dirfd, ZF_SYNCED_NAME, data, size, 0600);
	{
		uint64_t mseq = 1, gen = 1;

		r = zf_synced_read(fz_dirfd, fsid, &mseq, &gen);
		fz_check(r <= 0 && r > -4096);
	}
	unlinkat(fz_dirfd, ZF_SYNCED_NAME, 0);
	return 0;
}
