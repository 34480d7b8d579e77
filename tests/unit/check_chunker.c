/*
 * tests/unit/check_chunker.c - unit tests for storage/chunker.c
 *
 * Checks the chunker against a plain reference implementation written from
 * docs/FORMAT.md "Chunking", pins the format with known answers, and checks
 * the properties dedup relies on: bounds, mean size, shift resistance,
 * streaming consistency and key separation. All data comes from a seeded
 * splitmix64 generator, so every run sees the same bytes.
 */
#include "config.h"

#define XXH_STATIC_LINKING_ONLY /* XXH3_generateSecret, cross-checked below */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/endian.h"
#include "common/util.h"
#include "storage/chunker.h"

#define MIB (1u << 20)

/* ---- deterministic test data ---- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8)
		zf_put64(buf + i, splitmix64(&s));
	for (; i < len; i++)
		buf[i] = (uint8_t)splitmix64(&s);
}

static uint8_t *random_buf(size_t len, uint64_t seed)
{
	uint8_t *buf = zf_malloc(len);

	fill_random(buf, len, seed);
	return buf;
}

static void make_secret(uint8_t secret[ZF_SECRET_LEN], uint64_t seed)
{
	fill_random(secret, ZF_SECRET_LEN, seed);
}

static struct zf_chunker *new_chunker(uint64_t secret_seed, uint32_t min, uint32_t avg,
				      uint32_t max)
{
	uint8_t secret[ZF_SECRET_LEN];
	struct zf_chunker *c = NULL;

	make_secret(secret, secret_seed);
	ck_assert_int_eq(zf_chunker_new(secret, min, avg, max, &c), 0);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* ---- cutting a whole buffer ---- */

struct chunk_list {
	size_t n;
	size_t *len;
	struct zf_chunk_id *id;
};

static void chunk_all(const struct zf_chunker *c, const uint8_t *buf, size_t len,
		      struct chunk_list *cl)
{
	size_t cap = 1024, off = 0;

	cl->n = 0;
	cl->len = zf_malloc(cap * sizeof(*cl->len));
	cl->id = zf_malloc(cap * sizeof(*cl->id));
	while (off < len) {
		size_t l = zf_chunker_cut(c, buf + off, len - off, 1);

		ck_assert_uint_gt(l, 0);
		ck_assert_uint_le(l, len - off);
		if (cl->n == cap) {
			cap *= 2;
			cl->len = zf_realloc(cl->len, cap * sizeof(*cl->len));
			cl->id = zf_realloc(cl->id, cap * sizeof(*cl->id));
		}
		cl->len[cl->n] = l;
		zf_chunker_id(c, buf + off, l, &cl->id[cl->n]);
		cl->n++;
		off += l;
	}
}

static void chunk_list_free(struct chunk_list *cl)
{
	free(cl->len);
	free(cl->id);
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, ZF_CHUNK_ID_LEN);
}

/* how many of b's chunks have an id that also occurs in a */
static size_t count_shared(const struct chunk_list *a, const struct chunk_list *b)
{
	struct zf_chunk_id *sorted = zf_malloc(a->n * sizeof(*sorted));
	size_t i, shared = 0;

	memcpy(sorted, a->id, a->n * sizeof(*sorted));
	qsort(sorted, a->n, sizeof(*sorted), id_cmp);
	for (i = 0; i < b->n; i++)
		if (bsearch(&b->id[i], sorted, a->n, sizeof(*sorted), id_cmp))
			shared++;
	free(sorted);
	return shared;
}

/* ---- reference implementation, written from docs/FORMAT.md "Chunking" ---- */

struct ref_chunker {
	uint64_t gear[256];
	uint32_t min, avg, max;
	unsigned int bits_s, bits_l;
};

static void ref_init(struct ref_chunker *r, const uint8_t secret[ZF_SECRET_LEN],
		     uint32_t min, uint32_t avg, uint32_t max)
{
	uint8_t msg[40];
	unsigned int i, b = 0;

	memcpy(msg, secret, 32);
	memcpy(msg + 32, "zfgear", 6);
	for (i = 0; i < 256; i++) {
		msg[38] = i & 0xff;
		msg[39] = i >> 8;
		r->gear[i] = XXH3_64bits(msg, sizeof(msg));
	}
	while ((1u << b) < avg)
		b++;
	r->min = min;
	r->avg = avg;
	r->max = max;
	r->bits_s = b + 2;
	r->bits_l = b > 2 ? b - 2 : 1;
}

static size_t ref_cut(const struct ref_chunker *r, const uint8_t *buf, size_t len, int at_eof)
{
	size_t n = len < r->max ? len : r->max;
	size_t L, start = r->min > 64 ? r->min - 64 : 0;
	uint64_t h = 0;

	for (L = start + 1; L <= n; L++) {
		unsigned int bits = L < r->avg ? r->bits_s : r->bits_l;

		h = (h << 1) + r->gear[buf[L - 1]];
		if (L >= r->min && (h >> (64 - bits)) == 0)
			return L;
	}
	if (n == r->max)
		return n;
	return at_eof ? len : 0;
}

/* ---- tests ---- */

START_TEST(test_params_invalid)
{
	static const uint32_t bad[][3] = {
		{ 64, 64, 256 },	      /* min == avg */
		{ 128, 64, 256 },	      /* min > avg */
		{ 16, 64, 64 },		      /* avg == max */
		{ 16, 96, 256 },	      /* avg not a power of two */
		{ 16, 0, 256 },		      /* avg zero */
		{ 1 << 10, 1 << 20, (16 << 20) + 1 }, /* max > 16 MiB */
		{ 1 << 10, 1 << 20, UINT32_MAX },
	};
	struct zf_chunker *c = (struct zf_chunker *)&c; /* must stay untouched */
	struct zf_chunker *sentinel = c;
	uint8_t secret[ZF_SECRET_LEN] = { 0 };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(zf_chunker_new(secret, bad[i][0], bad[i][1], bad[i][2], &c),
				 -EINVAL);
	ck_assert_int_eq(zf_chunker_new(NULL, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX, &c),
			 -EINVAL);
	ck_assert_int_eq(zf_chunker_new(secret, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX, NULL),
			 -EINVAL);
	ck_assert_ptr_eq(c, sentinel);

	/* the limits themselves are fine */
	ck_assert_int_eq(zf_chunker_new(secret, 1 << 20, 4 << 20, 16 << 20, &c), 0);
	ck_assert_uint_eq(zf_chunker_max(c), 16 << 20);
	zf_chunker_free(c);
	ck_assert_int_eq(zf_chunker_new(secret, 0, 2, 3, &c), 0);
	zf_chunker_free(c);
	zf_chunker_free(NULL);
}
END_TEST

/* the tuned cut loop equals the spec's naive loop, for many shapes and lengths */
START_TEST(test_matches_reference)
{
	static const uint32_t cfg[][3] = {
		{ ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX },
		{ 64, 256, 1024 },  /* min == window */
		{ 65, 256, 1024 },
		{ 10, 32, 100 },    /* min < window: no full warm-up */
		{ 0, 2, 3 },	    /* degenerate but valid */
		{ 1, 16, 17 },
		{ 1000, 4096, 5000 },
	};
	const size_t len = 4 * MIB;
	uint8_t *buf = random_buf(len, 11);
	uint8_t secret[ZF_SECRET_LEN];
	uint64_t s = 99;
	size_t k;

	make_secret(secret, 1);
	for (k = 0; k < sizeof(cfg) / sizeof(cfg[0]); k++) {
		struct zf_chunker *c = NULL;
		struct ref_chunker ref;
		size_t off = 0, cuts = 0, t;
		size_t limit = cfg[k][2] > 64 * 1024 ? len : 256 * 1024;

		ck_assert_int_eq(zf_chunker_new(secret, cfg[k][0], cfg[k][1], cfg[k][2], &c), 0);
		ref_init(&ref, secret, cfg[k][0], cfg[k][1], cfg[k][2]);
		while (off < limit) {
			size_t got = zf_chunker_cut(c, buf + off, limit - off, 1);
			size_t want = ref_cut(&ref, buf + off, limit - off, 1);

			ck_assert_msg(got == want, "cfg %zu off %zu: cut %zu, reference %zu", k,
				      off, got, want);
			off += got;
			cuts++;
		}
		ck_assert_uint_gt(cuts, 2);

		/* random truncations, with and without eof */
		for (t = 0; t < 2000; t++) {
			size_t o = splitmix64(&s) % limit;
			size_t l = splitmix64(&s) % (cfg[k][2] + 2);
			int eof = (int)(splitmix64(&s) & 1);

			if (l > limit - o)
				l = limit - o;
			ck_assert_uint_eq(zf_chunker_cut(c, buf + o, l, eof),
					  ref_cut(&ref, buf + o, l, eof));
		}
		zf_chunker_free(c);
	}
	free(buf);
}
END_TEST

/* ids are XXH3-128 under the secret XXH3_generateSecret() makes from the key */
START_TEST(test_id_is_keyed_xxh3)
{
	const size_t sizes[] = { 0, 1, 3, 16, 17, 128, 129, 240, 241, 1000, 65536, 300001 };
	uint8_t *buf = random_buf(300001, 5);
	uint8_t secret[ZF_SECRET_LEN];
	struct zf_chunker *c;
	size_t i;

	make_secret(secret, 2);
	c = new_chunker(2, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct zf_chunk_id id;

		zf_chunker_id(c, buf, sizes[i], &id);
#if XXH_VERSION_NUMBER >= 801
		{
			uint8_t xs[192];
			XXH128_hash_t h;

			ck_assert_int_eq(XXH3_generateSecret(xs, sizeof(xs), secret, 32), XXH_OK);
			h = XXH3_128bits_withSecret(buf, sizes[i], xs, sizeof(xs));
			ck_assert_uint_eq(zf_get64(id.b), h.low64);
			ck_assert_uint_eq(zf_get64(id.b + 8), h.high64);
		}
#endif
		/* and never the unkeyed hash */
		ck_assert_uint_ne(zf_get64(id.b), XXH3_128bits(buf, sizes[i]).low64);
	}
	zf_chunker_free(c);
	free(buf);
}
END_TEST

/*
 * Known answers: these values are the on-disk format. If this test fails
 * the chunker (or libxxhash) changed cut points or ids and existing
 * filesystems would stop deduplicating against new writes.
 */
START_TEST(test_known_answers)
{
	static const size_t want_len[] = {
		70760, 68822, 34608, 110380, 94716, 66132, 86310,
		74740, 75469, 72276, 72587, 125097, 78901, 17778,
	};
	static const uint8_t want_id0[16] = {
		0x99, 0x4e, 0xd5, 0xe5, 0x43, 0x5f, 0xbb, 0x63,
		0x58, 0x1c, 0x0a, 0xdb, 0x1e, 0x09, 0x67, 0x20,
	};
	static const uint8_t want_abc[16] = {
		0x52, 0x29, 0xfd, 0x69, 0xb1, 0x9e, 0x4b, 0xb3,
		0xde, 0xb1, 0x72, 0x26, 0x06, 0x4a, 0x8b, 0x03,
	};
	uint8_t secret[ZF_SECRET_LEN];
	uint8_t *buf = random_buf(MIB, 0x5eed);
	struct zf_chunker *c = NULL;
	struct zf_chunk_id id;
	size_t i, off = 0;

	for (i = 0; i < ZF_SECRET_LEN; i++)
		secret[i] = (uint8_t)i;
	ck_assert_int_eq(zf_chunker_new(secret, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX, &c), 0);
	for (i = 0; i < sizeof(want_len) / sizeof(want_len[0]); i++) {
		size_t l = zf_chunker_cut(c, buf + off, MIB - off, 1);

		ck_assert_uint_eq(l, want_len[i]);
		if (i == 0) {
			zf_chunker_id(c, buf, l, &id);
			ck_assert_mem_eq(id.b, want_id0, 16);
		}
		off += l;
	}
	ck_assert_uint_eq(off, MIB);
	zf_chunker_id(c, "abc", 3, &id);
	ck_assert_mem_eq(id.b, want_abc, 16);
	zf_chunker_free(c);
	free(buf);
}
END_TEST

START_TEST(test_determinism)
{
	const size_t len = 16 * MIB;
	uint8_t *buf = random_buf(len, 3);
	struct zf_chunker *a = new_chunker(7, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX);
	struct zf_chunker *b = new_chunker(7, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX);
	struct chunk_list la, lb;

	chunk_all(a, buf, len, &la);
	chunk_all(b, buf, len, &lb);
	ck_assert_uint_gt(la.n, 100);
	ck_assert_uint_eq(la.n, lb.n);
	ck_assert_mem_eq(la.len, lb.len, la.n * sizeof(*la.len));
	ck_assert_mem_eq(la.id, lb.id, la.n * sizeof(*la.id));
	chunk_list_free(&la);
	chunk_list_free(&lb);
	zf_chunker_free(a);
	zf_chunker_free(b);
	free(buf);
}
END_TEST

START_TEST(test_bounds_and_mean)
{
	const size_t len = 64 * MIB;
	uint8_t *buf = random_buf(len, 4);
	struct zf_chunker *c = new_chunker(8, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX);
	struct chunk_list cl;
	size_t i, total = 0, at_max = 0;
	double mean;

	chunk_all(c, buf, len, &cl);
	for (i = 0; i < cl.n; i++) {
		if (i + 1 < cl.n)
			ck_assert_uint_ge(cl.len[i], ZF_CHUNK_MIN);
		ck_assert_uint_le(cl.len[i], ZF_CHUNK_MAX);
		at_max += cl.len[i] == ZF_CHUNK_MAX;
		total += cl.len[i];
	}
	ck_assert_uint_eq(total, len);
	mean = (double)len / cl.n;
	fprintf(stderr, "chunker: %zu chunks, mean %.0f bytes (%.2fx avg), %zu at max\n", cl.n,
		mean, mean / ZF_CHUNK_AVG, at_max);
	ck_assert_msg(mean >= 0.6 * ZF_CHUNK_AVG && mean <= 1.6 * ZF_CHUNK_AVG,
		      "mean chunk %.0f outside 0.6..1.6 x avg", mean);
	/* normalized chunking: forced cuts at max are rare on random data */
	ck_assert_uint_lt(at_max, cl.n / 100);
	chunk_list_free(&cl);
	zf_chunker_free(c);
	free(buf);
}
END_TEST

START_TEST(test_eof_semantics)
{
	const size_t len = 2 * ZF_CHUNK_MAX;
	struct zf_chunker *c = new_chunker(9, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX);
	uint8_t *buf = random_buf(len, 6);
	size_t l;
	int v, found = 0;

	ck_assert_uint_eq(zf_chunker_cut(c, buf, 0, 0), 0);
	ck_assert_uint_eq(zf_chunker_cut(c, buf, 0, 1), 0);
	ck_assert_uint_eq(zf_chunker_cut(c, buf, ZF_CHUNK_MIN - 1, 0), 0);
	ck_assert_uint_eq(zf_chunker_cut(c, buf, ZF_CHUNK_MIN - 1, 1), ZF_CHUNK_MIN - 1);

	/* just short of a natural cut: nothing found yet */
	l = zf_chunker_cut(c, buf, len, 0);
	ck_assert_uint_gt(l, ZF_CHUNK_MIN);
	ck_assert_uint_lt(l, ZF_CHUNK_MAX);
	ck_assert_uint_eq(zf_chunker_cut(c, buf, l - 1, 0), 0);
	ck_assert_uint_eq(zf_chunker_cut(c, buf, l - 1, 1), l - 1);
	ck_assert_uint_eq(zf_chunker_cut(c, buf, l, 0), l);

	/*
	 * A run of one byte value hashes to a constant after the window; find a
	 * value whose constant never passes a mask, so no cut exists below max.
	 */
	for (v = 0; v < 256 && !found; v++) {
		memset(buf, v, len);
		if (zf_chunker_cut(c, buf, len, 0) != ZF_CHUNK_MAX)
			continue;
		found = 1;
		ck_assert_uint_eq(zf_chunker_cut(c, buf, ZF_CHUNK_MAX - 1, 0), 0);
		ck_assert_uint_eq(zf_chunker_cut(c, buf, ZF_CHUNK_MAX - 1, 1), ZF_CHUNK_MAX - 1);
		ck_assert_uint_eq(zf_chunker_cut(c, buf, ZF_CHUNK_MAX, 0), ZF_CHUNK_MAX);
		ck_assert_uint_eq(zf_chunker_cut(c, buf, ZF_CHUNK_MAX, 1), ZF_CHUNK_MAX);
		ck_assert_uint_eq(zf_chunker_cut(c, buf, ZF_CHUNK_MAX + 1, 1), ZF_CHUNK_MAX);
	}
	ck_assert_msg(found, "no byte value without a cut below max");
	zf_chunker_free(c);
	free(buf);
}
END_TEST

/* required acceptance test: a small insert at the front keeps dedup */
START_TEST(test_shift_insert_front)
{
	const size_t len = 64 * MIB, ins = 7;
	uint8_t *a = random_buf(len, 12);
	uint8_t *b = zf_malloc(len + ins);
	struct zf_chunker *c = new_chunker(13, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX);
	struct chunk_list la, lb;
	size_t shared;

	fill_random(b, ins, 14);
	memcpy(b + ins, a, len);
	chunk_all(c, a, len, &la);
	chunk_all(c, b, len + ins, &lb);
	shared = count_shared(&la, &lb);
	fprintf(stderr, "chunker: insert %zu at front: %zu of %zu chunks shared\n", ins, shared,
		lb.n);
	ck_assert_msg(shared * 10 > lb.n * 9, "only %zu of %zu chunks shared", shared, lb.n);
	/* in fact only the first chunk should differ */
	ck_assert_uint_ge(shared + 2, lb.n);
	chunk_list_free(&la);
	chunk_list_free(&lb);
	zf_chunker_free(c);
	free(a);
	free(b);
}
END_TEST

/* a one-byte edit and a deletion in the middle touch only nearby chunks */
START_TEST(test_local_edits)
{
	const size_t len = 16 * MIB, mid = len / 2 + 12345;
	uint8_t *a = random_buf(len, 15);
	uint8_t *b = zf_malloc(len);
	struct zf_chunker *c = new_chunker(16, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX);
	struct chunk_list la, lb;

	chunk_all(c, a, len, &la);

	memcpy(b, a, len);
	b[mid] ^= 0x5a;
	chunk_all(c, b, len, &lb);
	ck_assert_uint_le(lb.n - count_shared(&la, &lb), 3);
	chunk_list_free(&lb);

	/* delete 1000 bytes */
	memcpy(b, a, mid);
	memcpy(b + mid, a + mid + 1000, len - mid - 1000);
	chunk_all(c, b, len - 1000, &lb);
	ck_assert_uint_le(lb.n - count_shared(&la, &lb), 3);
	chunk_list_free(&lb);

	chunk_list_free(&la);
	zf_chunker_free(c);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_secrets_differ)
{
	const size_t len = 16 * MIB;
	uint8_t *buf = random_buf(len, 17);
	struct zf_chunker *a = new_chunker(18, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX);
	struct zf_chunker *b = new_chunker(19, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX);
	struct zf_chunk_id ia, ib;
	struct chunk_list la, lb;
	size_t i, j, oa = 0, ob = 0, same_cut = 0;

	chunk_all(a, buf, len, &la);
	chunk_all(b, buf, len, &lb);
	/* count cut offsets common to both (a merge of two sorted lists) */
	for (i = j = 0; i < la.n && j < lb.n;) {
		if (oa + la.len[i] == ob + lb.len[j]) {
			same_cut++;
			oa += la.len[i++];
			ob += lb.len[j++];
		} else if (oa + la.len[i] < ob + lb.len[j]) {
			oa += la.len[i++];
		} else {
			ob += lb.len[j++];
		}
	}
	/* only the final cut at EOF is certain to coincide */
	ck_assert_uint_lt(same_cut * 20, la.n);
	ck_assert_uint_eq(count_shared(&la, &lb), 0);

	/* same bytes, different key: different id */
	zf_chunker_id(a, buf, 4096, &ia);
	zf_chunker_id(b, buf, 4096, &ib);
	ck_assert_int_ne(memcmp(&ia, &ib, sizeof(ia)), 0);

	chunk_list_free(&la);
	chunk_list_free(&lb);
	zf_chunker_free(a);
	zf_chunker_free(b);
	free(buf);
}
END_TEST

/*
 * A writer sees a stream in pieces: it calls cut with at_eof=0, and when 0
 * comes back it appends more bytes and retries. The result must equal
 * cutting the whole buffer.
 */
START_TEST(test_streaming)
{
	const size_t len = 8 * MIB;
	uint8_t *buf = random_buf(len, 20);
	struct zf_chunker *c = new_chunker(21, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX);
	struct chunk_list whole;
	size_t have = 0, start = 0, k = 0;
	uint64_t s = 22;

	chunk_all(c, buf, len, &whole);
	for (;;) {
		size_t l;
		int eof = have == len;

		l = zf_chunker_cut(c, buf + start, have - start, eof);
		if (l == 0) {
			if (eof)
				break;
			/* pieces of 1 byte to 200 KiB, like short writes */
			have += 1 + splitmix64(&s) % (200 * 1024);
			if (have > len)
				have = len;
			continue;
		}
		ck_assert_uint_lt(k, whole.n);
		ck_assert_uint_eq(l, whole.len[k]);
		k++;
		start += l;
	}
	ck_assert_uint_eq(start, len);
	ck_assert_uint_eq(k, whole.n);
	chunk_list_free(&whole);
	zf_chunker_free(c);
	free(buf);
}
END_TEST

static Suite *chunker_suite(void)
{
	Suite *s = suite_create("chunker");
	TCase *tc = tcase_create("core");

	/* 64 MiB cases under ASan take a few seconds; the default is 4 s */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_params_invalid);
	tcase_add_test(tc, test_matches_reference);
	tcase_add_test(tc, test_id_is_keyed_xxh3);
	tcase_add_test(tc, test_known_answers);
	tcase_add_test(tc, test_determinism);
	tcase_add_test(tc, test_bounds_and_mean);
	tcase_add_test(tc, test_eof_semantics);
	tcase_add_test(tc, test_shift_insert_front);
	tcase_add_test(tc, test_local_edits);
	tcase_add_test(tc, test_secrets_differ);
	tcase_add_test(tc, test_streaming);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(chunker_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
