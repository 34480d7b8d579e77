/*
 * common/buf.h - a growable byte buffer (like git's strbuf)
 *
 * zf_buf_reserve() grows geometrically and aborts on out-of-memory through
 * zf_realloc(); len is the number of valid bytes.
 */
#ifndef ZF_COMMON_BUF_H
#define ZF_COMMON_BUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct zf_buf {
	uint8_t *p;
	size_t len, cap;
};

static inline void zf_buf_reserve(struct zf_buf *b, size_t extra)
{
	size_t need = b->len + extra;

	if (need <= b->cap)
		return;
	b->cap = b->cap ? b->cap : 256;
	while (b->cap < need)
		b->cap *= 2;
	b->p = zf_realloc(b->p, b->cap);
}

/* make room for n bytes at the end and return a pointer to them */
static inline uint8_t *zf_buf_grow(struct zf_buf *b, size_t n)
{
	uint8_t *p;

	zf_buf_reserve(b, n);
	p = b->p + b->len;
	b->len += n;
	return p;
}

static inline void zf_buf_add(struct zf_buf *b, const void *d, size_t n)
{
	if (n)
		memcpy(zf_buf_grow(b, n), d, n);
}

/* drop the first n bytes */
static inline void zf_buf_consume(struct zf_buf *b, size_t n)
{
	if (n == 0)
		return;
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static inline void zf_buf_free(struct zf_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

#endif
