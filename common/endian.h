/*
 * common/endian.h - little-endian encode/decode into byte buffers
 *
 * Every on-disk integer in zerofs is little-endian (docs/FORMAT.md). Codecs
 * build records with these helpers instead of casting packed structs, so
 * alignment and host byte order never leak into the format.
 */
#ifndef ZF_COMMON_ENDIAN_H
#define ZF_COMMON_ENDIAN_H

#include <stdint.h>
#include <string.h>

static inline void zf_put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static inline void zf_put32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static inline void zf_put64(uint8_t *p, uint64_t v)
{
	zf_put32(p, (uint32_t)v);
	zf_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t zf_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t zf_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t zf_get64(const uint8_t *p)
{
	return (uint64_t)zf_get32(p) | ((uint64_t)zf_get32(p + 4) << 32);
}

#endif
