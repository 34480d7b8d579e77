/*
 * common/htab.c - open-addressing hash table (see htab.h)
 */
#include "config.h"

#include <stdlib.h>

#include "common/htab.h"
#include "common/util.h"

static void place(struct zf_hent *t, size_t mask, uint64_t hash, void *val)
{
	size_t i = hash & mask;

	while (t[i].val)
		i = (i + 1) & mask;
	t[i].hash = hash;
	t[i].val = val;
}

static void resize(struct zf_htab *h, size_t cap)
{
	struct zf_hent *t = zf_calloc(cap, sizeof(*t));
	size_t i;

	for (i = 0; h->t && i <= h->mask; i++)
		if (h->t[i].val)
			place(t, cap - 1, h->t[i].hash, h->t[i].val);
	free(h->t);
	h->t = t;
	h->mask = cap - 1;
}

void zf_htab_reserve(struct zf_htab *h, size_t n)
{
	size_t cap = 16;

	while (cap * 7 / 10 < n)
		cap *= 2;
	if (!h->t || cap > h->mask + 1)
		resize(h, cap);
}

void *zf_htab_find(const struct zf_htab *h, uint64_t hash, zf_htab_eq eq, const void *key)
{
	size_t i;

	if (!h->t)
		return NULL;
	for (i = hash & h->mask; h->t[i].val; i = (i + 1) & h->mask)
		if (h->t[i].hash == hash && (!eq || eq(h->t[i].val, key)))
			return h->t[i].val;
	return NULL;
}

void zf_htab_insert(struct zf_htab *h, uint64_t hash, void *val)
{
	if (!h->t || (h->n + 1) > (h->mask + 1) * 7 / 10)
		resize(h, h->t ? (h->mask + 1) * 2 : 16);
	place(h->t, h->mask, hash, val);
	h->n++;
}

void *zf_htab_remove(struct zf_htab *h, uint64_t hash, zf_htab_eq eq, const void *key)
{
	size_t i, j;
	void *val;

	if (!h->t)
		return NULL;
	for (i = hash & h->mask; h->t[i].val; i = (i + 1) & h->mask)
		if (h->t[i].hash == hash && (!eq || eq(h->t[i].val, key)))
			break;
	if (!h->t[i].val)
		return NULL;
	val = h->t[i].val;
	/* backward-shift: move later members of the probe run into the gap */
	for (j = (i + 1) & h->mask; h->t[j].val; j = (j + 1) & h->mask) {
		size_t home = h->t[j].hash & h->mask;

		if (((j - home) & h->mask) >= ((j - i) & h->mask)) {
			h->t[i] = h->t[j];
			i = j;
		}
	}
	h->t[i].val = NULL;
	h->n--;
	return val;
}

void zf_htab_free(struct zf_htab *h)
{
	free(h->t);
	h->t = NULL;
	h->mask = h->n = 0;
}
