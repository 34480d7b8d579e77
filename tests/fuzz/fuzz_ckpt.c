/*
 * tests/fuzz/fuzz_ckpt.c - checkpoint files (zf_ckpt_load and
 * zf_ckpt_load_salvage, storage/mlog.c)
 *
 * The input is a checkpoint file, written once per input into the scratch
 * directory as ckpt.<its header's seq>, loaded strictly and then with
 * salvage. The fsid expected is the header's own. Checked: every record
 * and every bad region reported lies inside the file, and a strict load
 * that succeeds delivers the same records as the salvaging one.
 */
#include "config.h"

#include "storage/meta_format.h"
#include "storage/mlog.h"
#include "tests/fuzz/fuzz.h"

static size_t cur_size;

struct count {
	uint64_t records, bad;
};

static int on_frame(void *ctx, const struct zf_frame *f)
{
	struct count *c = ctx;

	fz_check(f->off >= ZF_CKPT_HDR_SIZE);
	fz_check(f->off + ZF_REC_HDR_SIZE + f->len <= cur_size);
	c->records++;
	return f->type == 0xff ? 7 : 0;
}

static void on_bad(void *ctx, const char *name, uint64_t off, const uint8_t *p, size_t len,
		   uint64_t expect_seq)
{
	struct count *c = ctx;

	fz_check(off <= cur_size && len <= cur_size - off);
	fz_touch(p, len);
	c->bad++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	fz_scratch();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct count strict = { 0 }, salv = { 0 };
	uint8_t fsid[16] = { 0 };
	uint64_t seq = size >= 40 ? fz_le64(data + 32) : 1, got;
	char name[64];
	int r, rs;

	if (size >= 32)
		memcpy(fsid, data + 16, 16);
	zf_ckpt_name(seq, name, sizeof(name));
	fz_write_file(fz_dirfd, name, data, size, 0600);
	cur_size = size;

	r = zf_ckpt_load(fz_dirfd, name, fsid, on_frame, &strict, &got);
	fz_check(r == 0 || r == -EBADMSG || r == 7);
	rs = zf_ckpt_load_salvage(fz_dirfd, name, fsid, on_frame, on_bad, &salv, &got);
	fz_check(rs == 0 || rs == -EBADMSG || rs == 7);
	if (r == 0) {
		/* what loads strictly is undamaged: salvage sees the same */
		fz_check(rs == 0 && salv.bad == 0 && salv.records == strict.records);
		fz_check(got == seq);
	}
	unlinkat(fz_dirfd, name, 0);
	return 0;
}
