/*
 * common/htab.h - open-addressing hash table of pointers keyed by a 64-bit hash
 *
 * Linear probing, backward-shift deletion, grows at 70 % load. The caller
 * supplies the hash and, for lookups, an equality test on the stored value
 * (NULL when equal hashes imply equal keys, e.g. a bijective hash of an
 * inode number). Values are never NULL. Not thread-safe.
 */
#ifndef ZF_COMMON_HTAB_H
#define ZF_COMMON_HTAB_H

#include <stddef.h>
#include <stdint.h>

struct zf_hent {
	uint64_t hash;
	void *val;
};

struct zf_htab {
	struct zf_hent *t;
	size_t mask;	/* capacity - 1 (0 when empty and unallocated) */
	size_t n;
};

typedef int (*zf_htab_eq)(const void *val, const void *key);

void *zf_htab_find(const struct zf_htab *h, uint64_t hash, zf_htab_eq eq, const void *key);
/* insert val (the key must not be present) */
void zf_htab_insert(struct zf_htab *h, uint64_t hash, void *val);
/* remove and return the matching value, or NULL */
void *zf_htab_remove(struct zf_htab *h, uint64_t hash, zf_htab_eq eq, const void *key);
void zf_htab_free(struct zf_htab *h);
/* pre-size for n entries */
void zf_htab_reserve(struct zf_htab *h, size_t n);

/* bijective 64-bit mixer (splitmix64 finalizer) */
static inline uint64_t zf_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

#define zf_htab_foreach(h, e)                                                  \
	for ((e) = (h)->t; (h)->t && (e) <= (h)->t + (h)->mask; (e)++)         \
		if ((e)->val)

#endif
