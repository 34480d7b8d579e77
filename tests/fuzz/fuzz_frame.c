/*
 * tests/fuzz/fuzz_frame.c - record frames (zf_frame_parse, storage/mlog.c)
 *
 * The input is a run of bytes as a log holds them after its header. Frames
 * are parsed as replay walks them (a bad or short frame: move one byte on,
 * as the salvage scan does); every frame that parses must lie inside the
 * input and re-encode (zf_frame_put) to exactly its bytes.
 */
#include "config.h"

#include "common/buf.h"
#include "storage/meta_format.h"
#include "storage/mlog.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zf_buf b = { 0 };
	size_t off = 0;

	/* a copy of exactly size bytes: ASan catches a read past the end */
	uint8_t *p = malloc(size ? size : 1);

	memcpy(p, data, size);
	while (off < size) {
		struct zf_frame f;
		ssize_t n = zf_frame_parse(p + off, size - off, &f);

		fz_check(n == 0 || n == -EBADMSG || n >= (ssize_t)ZF_REC_HDR_SIZE);
		if (n <= 0) {
			off++;
			continue;
		}
		fz_check((size_t)n <= size - off);
		fz_check(n == (ssize_t)(ZF_REC_HDR_SIZE + f.len));
		fz_check(f.payload == p + off + ZF_REC_HDR_SIZE);
		b.len = 0;
		zf_frame_put(&b, f.type, f.flags, f.seq, f.payload, f.len);
		fz_check(b.len == (size_t)n && memcmp(b.p, p + off, n) == 0);
		off += n;
	}
	zf_buf_free(&b);
	free(p);
	return 0;
}
