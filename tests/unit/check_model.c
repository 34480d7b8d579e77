/*
 * tests/unit/check_model.c - randomized model-based test of the storage core
 *
 * Each seed drives a random sequence of namespace and data operations through
 * storage/fs.h only, and applies the same operations to a plain in-memory
 * model: a table of nodes (type, mode, owner, link count, contents as one
 * byte array, symlink target, xattrs; hard links are two entries naming one
 * node). Every return code is compared with what the model expects (success,
 * or the set of errnos POSIX allows for the conditions that hold), and every
 * so often the whole tree: names through readdir (paged at random), lookups,
 * attributes, symlink targets, xattrs, and file contents byte for byte
 * through zf_fs_read().
 *
 * Durability is checked twice over:
 *   - clean reopen: zf_fs_close + zf_fs_open, everything must survive;
 *   - crash: zf_fs_abandon + zf_fs_open; the state must equal the model as
 *     of the last commit point (zf_fs_sync, zf_fs_fsync, zf_fs_checkpoint,
 *     open). A commit makes every namespace change durable, but file data
 *     only as of that file's last flush, and flushes also happen on their
 *     own (dirty-buffer budget). So the model keeps, per file, the contents
 *     a flush may have logged since the last definite flush (its candidates);
 *     after a crash the file must hold one of them.
 * Unlinked-but-pinned inodes are reclaimed at open and pins do not survive
 * it. Every seed ends with zf_fs_check(verify_data=1), which must be clean.
 *
 * Some reopens also go through a read-only open first (same state, every
 * change refused).
 *
 * Small chunk sizes, segment limit, dirty budget and checkpoint threshold
 * make chunking, super-chunk packing, segment seals and checkpoints happen
 * often with little data; some opens use a budget that flushes on nearly
 * every write or never, and some seeds a large name pool (big directories).
 * The PRNG is splitmix64, so a seed replays exactly.
 *
 * Environment: ZF_MODEL_SEEDS (number of seeds, default 40), ZF_MODEL_OPS
 * (operations per seed, default 1500), ZF_MODEL_SEED (run only this seed),
 * ZF_MODEL_FIRST (first seed of the range, default 1), ZF_MODEL_TRACE=1
 * (print every operation), ZF_MODEL_VERBOSE=1 (statistics per seed, core
 * log lines), ZF_MODEL_KEEP=1 (keep the scratch of a failed run),
 * ZF_SANITIZED (12 seeds by default: sanitizer builds are much slower).
 * A divergence prints the seed, the operation index and the operations that
 * led to it; replay with ZF_MODEL_SEED=<seed> ZF_MODEL_OPS=<index + 1>.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/fs.h"

#define KIB 1024u
#define MAX_FILE (512u * KIB)	/* files stay small: many chunks, cheap compares */
#define MAX_BIG_FILE (12u << 20) /* the one streamed file (op_stream) */
#define MAX_CANDS 64		/* crash candidates per file before "anything goes" */
#define NLIB 4			/* shared random blobs that writes repeat (dedup) */
#define LIB_LEN (192u * KIB)
#define HIST 24			/* operations printed before a divergence */
#define XATTR_MAX (64u * KIB)	/* the core's value limit (fs_ns.c) */
#define MODEL_ROOT 0		/* model index of the root directory */
#define POOL_MAX 48		/* names per directory: few collide often, many fill slots */

static char g_root[256];

/* ---------------------------------------------------------------- PRNG */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static int pct(struct rng *r, unsigned int p)
{
	return below(r, 100) < p;
}

static void fill_rnd(struct rng *r, uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)rnd(r);
}

/* ------------------------------------------- immutable, shared contents */

struct blob {
	unsigned int refs;
	size_t len;
	uint8_t d[];
};

static struct blob *blob_new(size_t len)
{
	struct blob *b = zf_calloc(1, sizeof(*b) + len + 1);

	b->refs = 1;
	b->len = len;
	return b;
}

static struct blob *blob_ref(struct blob *b)
{
	if (b)
		b->refs++;
	return b;
}

static void blob_unref(struct blob *b)
{
	if (b && --b->refs == 0)
		free(b);
}

/* a copy of b resized to len (zero-extended) */
static struct blob *blob_resized(const struct blob *b, size_t len)
{
	struct blob *n = blob_new(len);

	memcpy(n->d, b->d, b->len < len ? b->len : len);
	return n;
}

/* ---------------------------------------------------------------- model */

struct mxattr {
	char *name;
	struct blob *val;
};

struct ment {
	char *name;
	int node;
};

struct mnode {
	int used;		/* 0: reclaimed (ino is kept for stale lookups) */
	uint64_t ino;
	uint32_t mode, nlink, uid, gid;
	uint64_t rdev;
	uint64_t pins;
	int parent;		/* directories: model index of the parent */
	struct blob *data;	/* regular files */
	struct blob **cand;	/* contents a crash may show (see the header) */
	int ncand, cand_any;
	struct blob *pfx;	/* ... or a prefix of this, at least pfx_min long */
	size_t pfx_min;
	char *target;		/* symlinks */
	struct mxattr *x;
	int nx;
	struct ment *e;		/* directories */
	int ne;
	int atime_known, mtime_known;
	struct timespec atime, mtime;
};

struct model {
	struct mnode *n;
	int nn, cap;
	uint64_t *dead;		/* inode numbers reclaimed (getattr: ENOENT) */
	int ndead, deadcap;
};

static void node_clear(struct mnode *n)
{
	int i;

	blob_unref(n->data);
	for (i = 0; i < n->ncand; i++)
		blob_unref(n->cand[i]);
	free(n->cand);
	blob_unref(n->pfx);
	free(n->target);
	for (i = 0; i < n->nx; i++) {
		free(n->x[i].name);
		blob_unref(n->x[i].val);
	}
	free(n->x);
	for (i = 0; i < n->ne; i++)
		free(n->e[i].name);
	free(n->e);
	n->data = NULL;
	n->cand = NULL;
	n->ncand = n->cand_any = 0;
	n->pfx = NULL;
	n->target = NULL;
	n->x = NULL;
	n->nx = 0;
	n->e = NULL;
	n->ne = 0;
}

static void node_copy(struct mnode *d, const struct mnode *s)
{
	int i;

	*d = *s;
	d->data = blob_ref(s->data);
	d->pfx = blob_ref(s->pfx);
	d->cand = s->ncand ? zf_malloc(s->ncand * sizeof(*d->cand)) : NULL;
	for (i = 0; i < s->ncand; i++)
		d->cand[i] = blob_ref(s->cand[i]);
	d->target = s->target ? zf_strdup(s->target) : NULL;
	d->x = s->nx ? zf_malloc(s->nx * sizeof(*d->x)) : NULL;
	for (i = 0; i < s->nx; i++) {
		d->x[i].name = zf_strdup(s->x[i].name);
		d->x[i].val = blob_ref(s->x[i].val);
	}
	d->e = s->ne ? zf_malloc(s->ne * sizeof(*d->e)) : NULL;
	for (i = 0; i < s->ne; i++) {
		d->e[i].name = zf_strdup(s->e[i].name);
		d->e[i].node = s->e[i].node;
	}
}

static void model_free(struct model *m)
{
	int i;

	for (i = 0; i < m->nn; i++)
		node_clear(&m->n[i]);
	free(m->n);
	free(m->dead);
	memset(m, 0, sizeof(*m));
}

static void model_copy(struct model *d, const struct model *s)
{
	int i;

	d->nn = d->cap = s->nn;
	d->n = zf_calloc(s->nn ? s->nn : 1, sizeof(*d->n));
	for (i = 0; i < s->nn; i++)
		node_copy(&d->n[i], &s->n[i]);
	d->ndead = d->deadcap = s->ndead;
	d->dead = zf_malloc((s->ndead ? s->ndead : 1) * sizeof(*d->dead));
	if (s->ndead)
		memcpy(d->dead, s->dead, s->ndead * sizeof(*d->dead));
}

static int model_add(struct model *m)
{
	if (m->nn == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->n = zf_realloc(m->n, m->cap * sizeof(*m->n));
	}
	memset(&m->n[m->nn], 0, sizeof(m->n[0]));
	m->n[m->nn].used = 1;
	return m->nn++;
}

static int ent_find(const struct mnode *d, const char *name)
{
	int i;

	for (i = 0; i < d->ne; i++)
		if (!strcmp(d->e[i].name, name))
			return i;
	return -1;
}

static void ent_add(struct mnode *d, const char *name, int node)
{
	d->e = zf_realloc(d->e, (d->ne + 1) * sizeof(*d->e));
	d->e[d->ne].name = zf_strdup(name);
	d->e[d->ne].node = node;
	d->ne++;
}

static void ent_del(struct mnode *d, int i)
{
	free(d->e[i].name);
	d->e[i] = d->e[--d->ne];
}

/* the file's contents may have been logged as they are now */
static void cand_push(struct mnode *n)
{
	if (n->cand_any)
		return;
	if (n->ncand == MAX_CANDS) {
		n->cand_any = 1;
		return;
	}
	n->cand = zf_realloc(n->cand, (n->ncand + 1) * sizeof(*n->cand));
	n->cand[n->ncand++] = blob_ref(n->data);
}

/* the file was flushed: what is logged now is its current contents */
static void cand_reset(struct mnode *n)
{
	int i;

	if (!S_ISREG(n->mode))
		return;
	for (i = 0; i < n->ncand; i++)
		blob_unref(n->cand[i]);
	n->ncand = n->cand_any = 0;
	blob_unref(n->pfx);
	n->pfx = NULL;
	cand_push(n);
}

static void set_data(struct mnode *n, struct blob *b)
{
	blob_unref(n->data);
	n->data = b;
	cand_push(n);
}

/* drop a node nothing holds any more */
static void node_release(struct model *m, int i)
{
	struct mnode *n = &m->n[i];

	if (m->ndead == m->deadcap) {
		m->deadcap = m->deadcap ? m->deadcap * 2 : 64;
		m->dead = zf_realloc(m->dead, m->deadcap * sizeof(*m->dead));
	}
	m->dead[m->ndead++] = n->ino;
	node_clear(n);
	n->used = 0;
}

static void maybe_release(struct model *m, int i)
{
	if (m->n[i].used && m->n[i].nlink == 0 && m->n[i].pins == 0)
		node_release(m, i);
}

/* what a reopen does: pins are gone, unlinked inodes reclaimed */
static void model_reopened(struct model *m)
{
	int i;

	for (i = 0; i < m->nn; i++) {
		if (!m->n[i].used)
			continue;
		m->n[i].pins = 0;
		maybe_release(m, i);
	}
}

/* ------------------------------------------------------------ the run */

struct run {
	uint64_t seed;
	struct rng rng;
	char dir[300], dev[320];
	struct zf_fs *fs;
	struct model m;		/* the live state */
	struct model dur;	/* as of the last commit point */
	struct blob *lib[NLIB];
	int opi, nops;
	char desc[400];
	char hist[HIST][400];
	uint64_t max_ino;	/* highest inode number handed out */
	uint64_t dur_max_ino;	/* ... as of the last commit point */
	int trace, keep, streamed;
	int npool;		/* names in use from g_pool */
	int cur_op;		/* index in ops[] (statistics) */
	unsigned long nok[40], nerr[40];
	unsigned long cand_picks;	/* crash: a file showed an older candidate */
	unsigned long any_picks;	/* ... or anything (too many candidates) */
	int clean;			/* nothing is buffered (right after open) */
	unsigned long reopens, crashes, verifies, nwrites, nckpt, ngc, ngc_moved, ngc_freed;
};

static void rm_tree(const char *path);

static void run_cleanup(struct run *R)
{
	int i;

	if (R->fs)
		zf_fs_abandon(R->fs);
	R->fs = NULL;
	model_free(&R->m);
	model_free(&R->dur);
	for (i = 0; i < NLIB; i++) {
		blob_unref(R->lib[i]);
		R->lib[i] = NULL;
	}
	if (R->dir[0])
		rm_tree(R->dir);
	R->dir[0] = 0;
}

static void diverge(struct run *R, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void diverge(struct run *R, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int i, first;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "check_model: DIVERGENCE seed %llu op %d: %s\n  during: %s\n",
		(unsigned long long)R->seed, R->opi, msg, R->desc);
	first = R->opi >= HIST ? R->opi - HIST + 1 : 0;
	fprintf(stderr, "  operations before it:\n");
	for (i = first; i <= R->opi; i++)
		fprintf(stderr, "    #%d %s\n", i, R->hist[i % HIST]);
	fprintf(stderr, "  replay: ZF_MODEL_SEED=%llu ZF_MODEL_OPS=%d ZF_MODEL_TRACE=1\n",
		(unsigned long long)R->seed, R->opi + 1);
	if (R->keep && R->fs) {
		fprintf(stderr, "  dev-dir kept: %s\n", R->dev);
		zf_fs_abandon(R->fs);
		R->fs = NULL;
		R->dir[0] = 0;
	}
	run_cleanup(R);
	ck_abort_msg("seed %llu op %d (%s): %s", (unsigned long long)R->seed, R->opi, R->desc,
		     msg);
	abort(); /* not reached */
}

static void desc(struct run *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void desc(struct run *R, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(R->desc, sizeof(R->desc), fmt, ap);
	va_end(ap);
	snprintf(R->hist[R->opi % HIST], sizeof(R->hist[0]), "%s", R->desc);
	if (R->trace)
		fprintf(stderr, "#%d %s\n", R->opi, R->desc);
}

static struct mnode *N(struct run *R, int i)
{
	return &R->m.n[i];
}

static const char *ename(long r)
{
	static char buf[4][64];
	static int k;

	k = (k + 1) % 4;
	if (r >= 0)
		snprintf(buf[k], sizeof(buf[k]), "success (%ld)", r);
	else
		snprintf(buf[k], sizeof(buf[k]), "-%s", strerrorname_np((int)-r) ?: "?");
	return buf[k];
}

/* ------------------------------------------------- expected return codes */

struct want {
	int n, any;
	int e[8];
};

static void want(struct want *w, int cond, int err)
{
	if (cond && w->n < 8)
		w->e[w->n++] = err;
}

/* cond: some failure (the errno is not pinned down by POSIX) */
static void want_any(struct want *w, int cond)
{
	if (cond) {
		w->any = 1;
		want(w, 1, 0);
	}
}

static const char *want_str(const struct want *w)
{
	static char buf[160];
	size_t n = 0;
	int i;

	if (w->any)
		return "any error";
	buf[0] = 0;
	for (i = 0; i < w->n && n < sizeof(buf) - 40; i++)
		n += snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? " or " : "", ename(-w->e[i]));
	return buf;
}

static void check_ret(struct run *R, const struct want *w, long r)
{
	int i;

	if (r < 0)
		R->nerr[R->cur_op]++;
	else
		R->nok[R->cur_op]++;
	if (w->n == 0) {
		if (r < 0)
			diverge(R, "expected success, core returned %s", ename(r));
		return;
	}
	if (r >= 0)
		diverge(R, "expected %s, core returned success", want_str(w));
	if (w->any)
		return;
	for (i = 0; i < w->n; i++)
		if (-r == w->e[i])
			return;
	diverge(R, "expected %s, core returned %s", want_str(w), ename(r));
}

/* ------------------------------------------------------------- picking */

struct tgt {
	int idx;	/* model index, or -1 for a reclaimed inode */
	uint64_t ino;
};

static int is_any(const struct mnode *n)
{
	(void)n;
	return 1;
}

static int is_reg(const struct mnode *n)
{
	return S_ISREG(n->mode);
}

static int is_live_dir(const struct mnode *n)
{
	return S_ISDIR(n->mode) && n->nlink > 0;
}

static int is_dead_dir(const struct mnode *n)
{
	return S_ISDIR(n->mode) && n->nlink == 0;
}

static int is_pinned(const struct mnode *n)
{
	return n->pins > 0;
}

static int is_nonempty_dir(const struct mnode *n)
{
	return S_ISDIR(n->mode) && n->ne > 0;
}

static int rand_node(struct run *R, int (*ok)(const struct mnode *))
{
	int i, cnt = 0, pick = -1;

	/* reservoir sampling over the used nodes that pass */
	for (i = 0; i < R->m.nn; i++) {
		if (!R->m.n[i].used || !ok(&R->m.n[i]))
			continue;
		if (below(&R->rng, ++cnt) == 0)
			pick = i;
	}
	return pick;
}

static struct tgt tgt_of(struct run *R, int idx)
{
	return (struct tgt){ .idx = idx, .ino = N(R, idx)->ino };
}

static struct tgt tgt_dead(struct run *R)
{
	if (!R->m.ndead)
		return tgt_of(R, MODEL_ROOT);
	return (struct tgt){ .idx = -1, .ino = R->m.dead[below(&R->rng, R->m.ndead)] };
}

/* a directory to create in: mostly live, sometimes not a directory at all */
static struct tgt pick_dir(struct run *R)
{
	unsigned int p = below(&R->rng, 100);
	int i = -1;

	if (p < 3)
		return tgt_dead(R);
	if (p < 7)
		i = rand_node(R, is_any);
	else if (p < 10)
		i = rand_node(R, is_dead_dir);
	if (i < 0)
		i = rand_node(R, is_live_dir);
	return tgt_of(R, i);
}

static struct tgt pick_node(struct run *R, int (*ok)(const struct mnode *))
{
	int i;

	if (pct(&R->rng, 3))
		return tgt_dead(R);
	i = rand_node(R, ok);
	if (i < 0)
		i = rand_node(R, is_any);
	return tgt_of(R, i);
}

static char g_long[3][300];

static char g_pool[POOL_MAX][8];

static const char *pick_name(struct run *R)
{
	unsigned int p = below(&R->rng, 1000);

	if (p < 15)
		return g_long[0]; /* 255 bytes: the longest valid name */
	if (p < 25)
		return g_long[1]; /* 255 bytes, another */
	if (p < 33)
		return g_long[2]; /* 256 bytes: too long */
	if (p < 37)
		return "";
	if (p < 41)
		return p & 1 ? "." : "..";
	return g_pool[below(&R->rng, R->npool)];
}

/* the name an entry of directory d picked at random has, or a pool name */
static const char *pick_existing_name(struct run *R, int d)
{
	/* a copy: the operation may free the entry the name came from */
	static char buf[4][ZF_NAME_LEN + 2];
	static int k;

	if (d >= 0 && S_ISDIR(N(R, d)->mode) && N(R, d)->ne && pct(&R->rng, 80)) {
		k = (k + 1) % 4;
		snprintf(buf[k], sizeof(buf[k]), "%s",
			 N(R, d)->e[below(&R->rng, N(R, d)->ne)].name);
		return buf[k];
	}
	return pick_name(R);
}

static int is_dot(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..");
}

static const char *short_name(const char *name)
{
	static char buf[4][32];
	static int k;

	k = (k + 1) % 4;
	if (strlen(name) <= 16)
		snprintf(buf[k], sizeof(buf[k]), "\"%s\"", name);
	else
		snprintf(buf[k], sizeof(buf[k]), "\"%c...\"(%zu)", name[0], strlen(name));
	return buf[k];
}

/* the parent directory's conditions for adding an entry */
static int want_dir_for_add(struct run *R, struct want *w, struct tgt d, const char *name)
{
	size_t nl = strlen(name);

	want(w, nl == 0, EINVAL);
	want(w, nl > ZF_NAME_LEN, ENAMETOOLONG);
	if (d.idx < 0) {
		want(w, 1, ENOENT);
		return 0;
	}
	if (!S_ISDIR(N(R, d.idx)->mode)) {
		want(w, 1, ENOTDIR);
		return 0;
	}
	want(w, N(R, d.idx)->nlink == 0, ENOENT);
	want(w, is_dot(name) || ent_find(N(R, d.idx), name) >= 0, EEXIST);
	return 1;
}

/* ------------------------------------------------------- attribute checks */

static uint64_t model_size(const struct mnode *n)
{
	if (S_ISREG(n->mode))
		return n->data->len;
	if (S_ISDIR(n->mode))
		return 4096;
	if (S_ISLNK(n->mode))
		return strlen(n->target);
	return 0;
}

static void check_attr(struct run *R, int i, const struct zf_attr *a)
{
	struct mnode *n = N(R, i);

	if (a->ino != n->ino)
		diverge(R, "node %d: ino %llu, model %llu", i, (unsigned long long)a->ino,
			(unsigned long long)n->ino);
	if (a->mode != n->mode)
		diverge(R, "ino %llu: mode 0%o, model 0%o", (unsigned long long)n->ino, a->mode,
			n->mode);
	if (a->nlink != n->nlink)
		diverge(R, "ino %llu: nlink %u, model %u", (unsigned long long)n->ino, a->nlink,
			n->nlink);
	if (a->uid != n->uid || a->gid != n->gid)
		diverge(R, "ino %llu: owner %u:%u, model %u:%u", (unsigned long long)n->ino, a->uid,
			a->gid, n->uid, n->gid);
	if ((S_ISCHR(n->mode) || S_ISBLK(n->mode)) && a->rdev != n->rdev)
		diverge(R, "ino %llu: rdev %llu, model %llu", (unsigned long long)n->ino,
			(unsigned long long)a->rdev, (unsigned long long)n->rdev);
	if (a->size != model_size(n))
		diverge(R, "ino %llu: size %llu, model %llu", (unsigned long long)n->ino,
			(unsigned long long)a->size, (unsigned long long)model_size(n));
	if (n->mtime_known &&
	    (a->mtime.tv_sec != n->mtime.tv_sec || a->mtime.tv_nsec != n->mtime.tv_nsec))
		diverge(R, "ino %llu: mtime %lld.%09ld, model %lld.%09ld",
			(unsigned long long)n->ino, (long long)a->mtime.tv_sec, a->mtime.tv_nsec,
			(long long)n->mtime.tv_sec, n->mtime.tv_nsec);
	if (n->atime_known &&
	    (a->atime.tv_sec != n->atime.tv_sec || a->atime.tv_nsec != n->atime.tv_nsec))
		diverge(R, "ino %llu: atime %lld.%09ld, model %lld.%09ld",
			(unsigned long long)n->ino, (long long)a->atime.tv_sec, a->atime.tv_nsec,
			(long long)n->atime.tv_sec, n->atime.tv_nsec);
}

static void getattr_check(struct run *R, int i)
{
	struct zf_attr a;
	int r = zf_fs_getattr(R->fs, N(R, i)->ino, &a);

	if (r < 0)
		diverge(R, "getattr of ino %llu (model node %d): %s",
			(unsigned long long)N(R, i)->ino, i, ename(r));
	check_attr(R, i, &a);
}

/* read the whole file through zf_fs_read in pieces of random size */
static struct blob *read_all(struct run *R, uint64_t ino, size_t size)
{
	struct blob *b = blob_new(size);
	size_t off = 0;
	uint8_t probe;
	ssize_t r;

	while (off < size) {
		size_t len = pct(&R->rng, 50) ? size - off : 1 + below(&R->rng, 64 * KIB);

		if (len > size - off)
			len = size - off;
		r = zf_fs_read(R->fs, ino, b->d + off, len, off);
		if (r != (ssize_t)len) {
			blob_unref(b);
			diverge(R, "read of ino %llu [%zu, +%zu): %s", (unsigned long long)ino, off,
				len, ename(r));
		}
		off += len;
	}
	r = zf_fs_read(R->fs, ino, &probe, 1, size);
	if (r != 0) {
		blob_unref(b);
		diverge(R, "read of ino %llu at its end %zu: %s, expected 0",
			(unsigned long long)ino, size, ename(r));
	}
	return b;
}

static size_t first_diff(const struct blob *a, const struct blob *b)
{
	size_t i, n = a->len < b->len ? a->len : b->len;

	for (i = 0; i < n; i++)
		if (a->d[i] != b->d[i])
			return i;
	return n;
}

/* compare a regular file's contents; after a crash, pick the candidate */
static void check_contents(struct run *R, int i)
{
	struct mnode *n = N(R, i);
	struct zf_attr a;
	struct blob *got;
	int r, k;

	r = zf_fs_getattr(R->fs, n->ino, &a);
	if (r < 0)
		diverge(R, "getattr of ino %llu: %s", (unsigned long long)n->ino, ename(r));
	if (a.size > MAX_BIG_FILE)
		diverge(R, "ino %llu: size %llu is beyond anything written",
			(unsigned long long)n->ino, (unsigned long long)a.size);
	got = read_all(R, n->ino, a.size);
	if (R->clean) {
		/* nothing buffered: blocks count mapped bytes, which hold every
		 * non-zero byte and never more than the size */
		size_t nz = 0;

		while (nz < got->len && !got->d[nz])
			nz++;
		if (a.blocks > (a.size + 511) / 512 || (nz < got->len && !a.blocks))
			diverge(R, "ino %llu: %llu blocks for %llu bytes%s", (unsigned long long)n->ino,
				(unsigned long long)a.blocks, (unsigned long long)a.size,
				nz < got->len ? " (not all zero)" : "");
	}
	if (n->data->len == got->len && !memcmp(n->data->d, got->d, got->len)) {
		blob_unref(got);
		return;
	}
	if (n->cand_any) {
		R->any_picks++;
		blob_unref(n->data);
		n->data = got;
		cand_reset(n);
		return;
	}
	for (k = 0; k < n->ncand; k++) {
		struct blob *c = n->cand[k];

		if (c->len == got->len && !memcmp(c->d, got->d, got->len)) {
			R->cand_picks++;
			blob_unref(got);
			blob_unref(n->data);
			n->data = blob_ref(c);
			cand_reset(n);
			return;
		}
	}
	if (n->pfx && got->len >= n->pfx_min && got->len <= n->pfx->len &&
	    !memcmp(n->pfx->d, got->d, got->len)) {
		R->cand_picks++;
		blob_unref(n->data);
		n->data = got;
		cand_reset(n);
		return;
	}
	{
		size_t d = first_diff(n->data, got);
		unsigned int mb = d < n->data->len ? n->data->d[d] : 0;
		unsigned int gb = d < got->len ? got->d[d] : 0;
		size_t gl = got->len;

		blob_unref(got);
		diverge(R,
			"ino %llu: contents differ: size %zu, model %zu (%d candidates), first "
			"difference at %zu: 0x%02x, model 0x%02x",
			(unsigned long long)n->ino, gl, n->data->len, n->ncand, d, gb, mb);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_xattrs(struct run *R, int i)
{
	struct mnode *n = N(R, i);
	char *buf, *p, **names;
	ssize_t total, r;
	int cnt = 0, k;

	total = zf_fs_listxattr(R->fs, n->ino, NULL, 0);
	if (total < 0)
		diverge(R, "listxattr of ino %llu: %s", (unsigned long long)n->ino, ename(total));
	buf = zf_malloc(total + 1);
	r = zf_fs_listxattr(R->fs, n->ino, buf, total + 1);
	if (r != total) {
		free(buf);
		diverge(R, "listxattr of ino %llu: %s, size query said %zd",
			(unsigned long long)n->ino, ename(r), total);
	}
	names = zf_malloc((total + 1) * sizeof(*names));
	for (p = buf; p < buf + total; p += strlen(p) + 1)
		names[cnt++] = p;
	if (cnt != n->nx) {
		free(names);
		free(buf);
		diverge(R, "ino %llu: %d xattrs, model %d", (unsigned long long)n->ino, cnt, n->nx);
	}
	qsort(names, cnt, sizeof(*names), cmp_str);
	for (k = 0; k + 1 < cnt; k++) {
		if (!strcmp(names[k], names[k + 1])) {
			free(names);
			free(buf);
			diverge(R, "ino %llu: xattr listed twice", (unsigned long long)n->ino);
		}
	}
	free(names);
	free(buf);
	for (k = 0; k < n->nx; k++) {
		struct blob *v = n->x[k].val;
		uint8_t *val = zf_malloc(v->len + 1);

		r = zf_fs_getxattr(R->fs, n->ino, n->x[k].name, val, v->len + 1);
		if (r != (ssize_t)v->len || memcmp(val, v->d, v->len)) {
			free(val);
			diverge(R, "ino %llu: xattr '%s': %s, model %zu bytes%s",
				(unsigned long long)n->ino, n->x[k].name, ename(r), v->len,
				r == (ssize_t)v->len ? " (value differs)" : "");
		}
		free(val);
	}
}

/* ------------------------------------------------------------- readdir */

struct rd_ent {
	char name[ZF_NAME_LEN + 1];
	uint64_t ino, off;
	uint32_t mode;
};

struct rd {
	struct rd_ent *e;
	int n, cap, limit, got;
};

static int rd_cb(void *ctx, const char *name, uint64_t ino, uint32_t mode, uint64_t next_off)
{
	struct rd *rd = ctx;
	struct rd_ent *e;

	if (rd->limit && rd->got == rd->limit)
		return 1;
	if (rd->n == rd->cap) {
		rd->cap = rd->cap ? rd->cap * 2 : 32;
		rd->e = zf_realloc(rd->e, rd->cap * sizeof(*rd->e));
	}
	e = &rd->e[rd->n++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->ino = ino;
	e->mode = mode;
	e->off = next_off;
	rd->got++;
	return 0;
}

/* one page from off; returns the number of entries got */
static int rd_page(struct run *R, struct rd *rd, uint64_t ino, uint64_t off, int limit)
{
	int r;

	rd->limit = limit;
	rd->got = 0;
	r = zf_fs_readdir(R->fs, ino, off, rd_cb, rd);
	if (r < 0)
		diverge(R, "readdir of ino %llu from %llu: %s", (unsigned long long)ino,
			(unsigned long long)off, ename(r));
	return rd->got;
}

static void check_dir(struct run *R, int i)
{
	struct mnode *d = N(R, i);
	struct rd rd = { 0 };
	uint64_t off = 0, parent_ino;
	int page = pct(&R->rng, 50) ? 0 : 1 + (int)below(&R->rng, 5);
	int k, *seen;

	while (rd_page(R, &rd, d->ino, off, page) > 0 && page)
		off = rd.e[rd.n - 1].off;
	parent_ino = i == MODEL_ROOT ? d->ino : R->m.n[d->parent].ino;
	if (rd.n < 2 || strcmp(rd.e[0].name, ".") || strcmp(rd.e[1].name, "..") ||
	    rd.e[0].ino != d->ino || rd.e[1].ino != parent_ino) {
		free(rd.e);
		diverge(R, "readdir of ino %llu: '.' and '..' are not first or name wrong inodes",
			(unsigned long long)d->ino);
	}
	if (rd.n - 2 != d->ne) {
		int n = rd.n - 2;

		free(rd.e);
		diverge(R, "readdir of ino %llu: %d entries, model %d", (unsigned long long)d->ino,
			n, d->ne);
	}
	seen = zf_calloc(d->ne + 1, sizeof(*seen));
	for (k = 2; k < rd.n; k++) {
		struct rd_ent *e = &rd.e[k];
		int j = ent_find(d, e->name);
		const char *why = NULL;

		if (j < 0)
			why = "is not in the model";
		else if (seen[j]++)
			why = "is listed twice";
		else if (R->m.n[d->e[j].node].ino != e->ino)
			why = "names the wrong inode";
		else if ((R->m.n[d->e[j].node].mode & S_IFMT) != (e->mode & S_IFMT))
			why = "has the wrong type";
		else if (e->off <= rd.e[k - 1].off)
			why = "has an offset that does not increase";
		if (why) {
			char name[40];

			snprintf(name, sizeof(name), "%s", short_name(e->name));
			free(seen);
			free(rd.e);
			diverge(R, "readdir of ino %llu: entry %s %s", (unsigned long long)d->ino,
				name, why);
		}
	}
	free(seen);
	free(rd.e);
	/* and each entry by name */
	for (k = 0; k < d->ne; k++) {
		struct zf_attr a;
		int r = zf_fs_lookup(R->fs, d->ino, d->e[k].name, &a);

		if (r < 0 || a.ino != R->m.n[d->e[k].node].ino)
			diverge(R, "lookup of %s in ino %llu: %s, ino %llu, model %llu",
				short_name(d->e[k].name), (unsigned long long)d->ino, ename(r),
				(unsigned long long)(r < 0 ? 0 : a.ino),
				(unsigned long long)R->m.n[d->e[k].node].ino);
	}
}

/* the whole state against the model */
static void verify_all(struct run *R)
{
	struct zf_fs_stats st;
	uint64_t files = 0, dirs = 0, inodes = 0, logical = 0;
	int i, k;

	R->verifies++;
	for (i = 0; i < R->m.nn; i++) {
		struct mnode *n = N(R, i);

		if (!n->used)
			continue;
		inodes++;
		if (S_ISREG(n->mode)) {
			files++;
			check_contents(R, i);
			logical += n->data->len;
		} else if (S_ISDIR(n->mode)) {
			dirs++;
			check_dir(R, i);
		} else if (S_ISLNK(n->mode)) {
			char buf[4100];
			ssize_t r = zf_fs_readlink(R->fs, n->ino, buf, sizeof(buf));

			if (r != (ssize_t)strlen(n->target) || memcmp(buf, n->target, r))
				diverge(R, "readlink of ino %llu: %s, model %zu bytes",
					(unsigned long long)n->ino, ename(r), strlen(n->target));
		}
		getattr_check(R, i);
		check_xattrs(R, i);
	}
	for (k = 0; k < R->m.ndead && k < 32; k++) {
		struct zf_attr a;
		uint64_t ino = R->m.dead[below(&R->rng, R->m.ndead)];
		int r = zf_fs_getattr(R->fs, ino, &a);

		if (r != -ENOENT)
			diverge(R, "getattr of reclaimed ino %llu: %s", (unsigned long long)ino,
				ename(r));
	}
	zf_fs_stats(R->fs, &st);
	/* (chunks waiting in the packer are unique but not stored yet) */
	if (st.referenced_bytes > st.logical_bytes || st.chunks_live > st.chunks ||
	    (R->clean && st.unique_bytes > st.stored_raw_bytes))
		diverge(R, "stats: %llu bytes referenced of %llu, %llu chunks live of %llu, "
			"%llu unique bytes of %llu stored",
			(unsigned long long)st.referenced_bytes, (unsigned long long)st.logical_bytes,
			(unsigned long long)st.chunks_live, (unsigned long long)st.chunks,
			(unsigned long long)st.unique_bytes, (unsigned long long)st.stored_raw_bytes);
	if (st.inodes != inodes || st.files != files || st.dirs != dirs ||
	    st.logical_bytes != logical)
		diverge(R,
			"stats: %llu inodes, %llu files, %llu dirs, %llu bytes; model %llu, %llu, "
			"%llu, %llu",
			(unsigned long long)st.inodes, (unsigned long long)st.files,
			(unsigned long long)st.dirs, (unsigned long long)st.logical_bytes,
			(unsigned long long)inodes, (unsigned long long)files,
			(unsigned long long)dirs, (unsigned long long)logical);
}

static void problem_cb(void *ctx, const char *msg)
{
	struct run *R = ctx;

	fprintf(stderr, "check_model: seed %llu op %d: fsck: %s\n", (unsigned long long)R->seed,
		R->opi, msg);
}

static void fsck(struct run *R, int verify_data)
{
	struct zf_check_report rep = { .problem = problem_cb,
				       .ctx = R,
				       .verify_data = verify_data };
	int r = zf_fs_check(R->fs, &rep);

	if (r != 0 || rep.errors)
		diverge(R, "zf_fs_check: %s, %llu problems (listed above)", ename(r),
			(unsigned long long)rep.errors);
}

/* -------------------------------------------------- durability points */

/* a commit point: everything in the log is durable, data as last flushed */
static void durable(struct run *R)
{
	model_free(&R->dur);
	model_copy(&R->dur, &R->m);
	R->dur_max_ino = R->max_ino;
}

/* every file was flushed */
static void all_flushed(struct run *R)
{
	int i;

	for (i = 0; i < R->m.nn; i++)
		if (N(R, i)->used)
			cand_reset(N(R, i));
}

static void fs_open_or_fail(struct run *R)
{
	struct zf_open_opts oo = { .dirty_bytes = 256 * KIB, .ckpt_bytes = 64 * KIB };
	unsigned int p = below(&R->rng, 100);
	int r;

	/* now and then a budget that flushes on almost every write, or never;
	 * a checkpoint after every commit, or hardly ever */
	if (p < 15)
		oo.dirty_bytes = 4 * KIB;
	else if (p < 30)
		oo.dirty_bytes = 64u << 20;
	p = below(&R->rng, 100);
	if (p < 15)
		oo.ckpt_bytes = 4 * KIB;
	else if (p < 30)
		oo.ckpt_bytes = 16u << 20;
	r = zf_fs_open(R->dev, &oo, &R->fs);
	if (r < 0) {
		R->fs = NULL;
		diverge(R, "zf_fs_open: %s", ename(r));
	}
}

static int has_orphans(const struct model *m)
{
	int i;

	for (i = 0; i < m->nn; i++)
		if (m->n[i].used && m->n[i].nlink == 0)
			return 1;
	return 0;
}

/* a read-only open (no orphans to reclaim) shows the same, refuses changes */
static void ro_visit(struct run *R)
{
	struct zf_open_opts oo = { .readonly = 1 };
	struct zf_attr a;
	int r, i;

	desc(R, "open read-only");
	r = zf_fs_open(R->dev, &oo, &R->fs);
	if (r < 0) {
		R->fs = NULL;
		diverge(R, "zf_fs_open read-only: %s", ename(r));
	}
	verify_all(R);
	fsck(R, 0);
	r = zf_fs_mknod(R->fs, ZF_ROOT_INO, "ro", S_IFREG | 0644, 0, 0, 0, &a);
	if (r != -EROFS)
		diverge(R, "mknod on a read-only open: %s", ename(r));
	i = rand_node(R, is_reg);
	if (i >= 0 && (r = zf_fs_write(R->fs, N(R, i)->ino, "x", 1, 0)) != -EROFS)
		diverge(R, "write on a read-only open: %s", ename(r));
	r = zf_fs_close(R->fs);
	R->fs = NULL;
	if (r < 0)
		diverge(R, "zf_fs_close read-only: %s", ename(r));
}

static void do_reopen(struct run *R)
{
	int r, orphans;

	desc(R, "close + open");
	r = zf_fs_close(R->fs);
	R->fs = NULL;
	if (r < 0)
		diverge(R, "zf_fs_close: %s", ename(r));
	all_flushed(R);
	orphans = has_orphans(&R->m);
	model_reopened(&R->m);
	if (!orphans && pct(&R->rng, 20))
		ro_visit(R);
	desc(R, "open after close");
	fs_open_or_fail(R);
	R->reopens++;
	durable(R);
	R->clean = 1;
	verify_all(R);
	R->clean = 0;
	if (pct(&R->rng, 30))
		fsck(R, pct(&R->rng, 50));
}

static void do_crash(struct run *R)
{
	unsigned int how = below(&R->rng, 10);
	int r, orphans;

	if (how < 4) {
		desc(R, "sync + crash");
		r = zf_fs_sync(R->fs);
		if (r < 0)
			diverge(R, "zf_fs_sync: %s", ename(r));
		all_flushed(R);
		durable(R);
	} else if (how < 7) {
		int i = rand_node(R, is_reg);

		if (i < 0)
			i = MODEL_ROOT;
		desc(R, "fsync ino %llu + crash", (unsigned long long)N(R, i)->ino);
		r = zf_fs_fsync(R->fs, N(R, i)->ino);
		if (r < 0)
			diverge(R, "zf_fs_fsync: %s", ename(r));
		cand_reset(N(R, i));
		durable(R);
	} else {
		desc(R, "crash");
	}
	zf_fs_abandon(R->fs);
	R->fs = NULL;
	model_free(&R->m);
	model_copy(&R->m, &R->dur);
	R->max_ino = R->dur_max_ino;
	orphans = has_orphans(&R->m);
	model_reopened(&R->m);
	if (!orphans && pct(&R->rng, 20))
		ro_visit(R);
	desc(R, "open after crash");
	fs_open_or_fail(R);
	R->crashes++;
	R->clean = 1;
	verify_all(R); /* settles each file on one of its candidates */
	R->clean = 0;
	all_flushed(R);
	durable(R);
	if (pct(&R->rng, 30))
		fsck(R, pct(&R->rng, 50));
}

/* ------------------------------------------------------ namespace ops */

static const char *kind_name[] = { "file", "dir", "symlink", "fifo", "socket", "chrdev", "blkdev" };

static void new_node_from(struct run *R, int idx, const struct zf_attr *a)
{
	if (a->ino <= R->max_ino)
		diverge(R, "new inode number %llu is not above every earlier one (%llu)",
			(unsigned long long)a->ino, (unsigned long long)R->max_ino);
	R->max_ino = a->ino;
	N(R, idx)->ino = a->ino;
}

static void do_create(struct run *R, struct tgt d, const char *name, int kind)
{
	static const uint32_t fmt[] = { S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO,
					S_IFSOCK, S_IFCHR, S_IFBLK };
	uint32_t perm = pct(&R->rng, 70) ? (kind == 1 ? 0755 : 0644) : below(&R->rng, 010000);
	uint32_t uid = below(&R->rng, 3), gid = below(&R->rng, 3);
	uint64_t rdev = kind >= 5 ? rnd(&R->rng) & 0xfffff : 0;
	uint32_t umask_bits = 0;
	char target[4200];
	struct want w = { 0 };
	struct zf_attr a;
	int r, ok, i;

	target[0] = 0;
	if (kind == 2) {
		unsigned int p = below(&R->rng, 100);
		size_t tl = p < 3 ? 0 : p < 6 ? 4095 + (p & 1) : 1 + below(&R->rng, 80);

		for (i = 0; i < (int)tl; i++)
			target[i] = "abcdefgh/.-_"[below(&R->rng, 12)];
		target[tl] = 0;
	}
	/* zf_fs_create applies a umask (no default ACLs here: no ACL xattrs) */
	if (kind != 2 && pct(&R->rng, 30)) {
		static const uint32_t umasks[] = { 0, 022, 027, 077, 0777 };

		umask_bits = umasks[below(&R->rng, 5)] | 070000; /* high bits: ignored */
	}
	desc(R, "create %s %s in ino %llu mode 0%o umask 0%o owner %u:%u%s%.40s", kind_name[kind],
	     short_name(name), (unsigned long long)d.ino, perm, umask_bits, uid, gid,
	     kind == 2 ? " -> " : "", target);
	ok = want_dir_for_add(R, &w, d, name);
	if (kind == 2) {
		want(&w, strlen(target) == 0, ENOENT);
		want(&w, strlen(target) > 4095, ENAMETOOLONG);
	}
	if (umask_bits) {
		r = zf_fs_create(R->fs, d.ino, name, fmt[kind] | perm, rdev, umask_bits, uid, gid,
				 &a);
		perm &= ~(umask_bits & 0777);
	} else switch (kind) {
	case 1:
		r = zf_fs_mkdir(R->fs, d.ino, name, perm, uid, gid, &a);
		break;
	case 2:
		r = zf_fs_symlink(R->fs, d.ino, name, target, uid, gid, &a);
		break;
	default:
		r = zf_fs_mknod(R->fs, d.ino, name, fmt[kind] | perm, rdev, uid, gid, &a);
		break;
	}
	check_ret(R, &w, r);
	if (r < 0)
		return;
	(void)ok;
	i = model_add(&R->m);
	{
		struct mnode *n = N(R, i), *p = N(R, d.idx);

		n->mode = fmt[kind] | (kind == 2 ? 0777 : perm);
		n->uid = uid;
		n->gid = gid;
		n->rdev = rdev;
		if (p->mode & S_ISGID) {
			n->gid = p->gid;
			if (kind == 1)
				n->mode |= S_ISGID;
		}
		if (kind == 1) {
			n->nlink = 2;
			n->parent = d.idx;
			p->nlink++;
		} else {
			n->nlink = 1;
		}
		if (kind == 0) {
			n->data = blob_new(0);
			cand_push(n);
		}
		if (kind == 2)
			n->target = zf_strdup(target);
		ent_add(p, name, i);
		p->mtime_known = 0;
	}
	new_node_from(R, i, &a);
	check_attr(R, i, &a);
}

static void op_create(struct run *R)
{
	unsigned int p = below(&R->rng, 100);
	int kind = p < 55 ? 0 : p < 80 ? 1 : p < 90 ? 2 : 3 + (int)below(&R->rng, 4);

	do_create(R, pick_dir(R), pick_name(R), kind);
}

static void op_lookup(struct run *R)
{
	struct tgt d = pick_dir(R);
	const char *name = pick_existing_name(R, d.idx);
	struct want w = { 0 };
	struct zf_attr a;
	int r, want_idx = -1;

	desc(R, "lookup %s in ino %llu", short_name(name), (unsigned long long)d.ino);
	if (d.idx < 0) {
		want(&w, 1, ENOENT);
	} else if (!S_ISDIR(N(R, d.idx)->mode)) {
		want(&w, 1, ENOTDIR);
	} else if (strlen(name) > ZF_NAME_LEN) {
		want(&w, 1, ENAMETOOLONG);
	} else if (!strcmp(name, ".")) {
		want_idx = d.idx;
	} else if (!strcmp(name, "..")) {
		want_idx = d.idx == MODEL_ROOT ? MODEL_ROOT : N(R, d.idx)->parent;
		if (!N(R, want_idx)->used) {
			want(&w, 1, ENOENT); /* a removed directory's parent is gone too */
			want_idx = -1;
		}
	} else {
		int j = ent_find(N(R, d.idx), name);

		if (j < 0)
			want(&w, 1, ENOENT);
		else
			want_idx = N(R, d.idx)->e[j].node;
	}
	r = zf_fs_lookup(R->fs, d.ino, name, &a);
	check_ret(R, &w, r);
	if (r == 0)
		check_attr(R, want_idx, &a);
}

static void op_link(struct run *R)
{
	struct tgt s = pick_node(R, pct(&R->rng, 90) ? is_reg : is_any);
	struct tgt d = pick_dir(R);
	const char *name = pick_name(R);
	struct want w = { 0 };
	struct zf_attr a;
	int r;

	desc(R, "link ino %llu as %s in ino %llu", (unsigned long long)s.ino, short_name(name),
	     (unsigned long long)d.ino);
	want_dir_for_add(R, &w, d, name);
	want(&w, s.idx < 0 || (s.idx >= 0 && N(R, s.idx)->nlink == 0), ENOENT);
	want(&w, s.idx >= 0 && S_ISDIR(N(R, s.idx)->mode), EPERM);
	r = zf_fs_link(R->fs, s.ino, d.ino, name, &a);
	check_ret(R, &w, r);
	if (r < 0)
		return;
	N(R, s.idx)->nlink++;
	ent_add(N(R, d.idx), name, s.idx);
	N(R, d.idx)->mtime_known = 0;
	check_attr(R, s.idx, &a);
}

static void do_unlink(struct run *R, struct tgt d, const char *name, int rmdir)
{
	struct want w = { 0 };
	int r, j = -1, c = -1;

	desc(R, "%s %s in ino %llu", rmdir ? "rmdir" : "unlink", short_name(name),
	     (unsigned long long)d.ino);
	if (d.idx < 0) {
		want(&w, 1, ENOENT);
	} else if (!S_ISDIR(N(R, d.idx)->mode)) {
		want(&w, 1, ENOTDIR);
	} else if (strlen(name) > ZF_NAME_LEN) {
		want(&w, 1, ENAMETOOLONG);
	} else if (rmdir && !strcmp(name, ".")) {
		want(&w, 1, EINVAL);
	} else if (rmdir && !strcmp(name, "..")) {
		want(&w, 1, ENOTEMPTY);
	} else if (!rmdir && is_dot(name)) {
		want_any(&w, 1); /* POSIX: EISDIR, or EBUSY; the core says ENOENT */
	} else if ((j = ent_find(N(R, d.idx), name)) < 0) {
		want(&w, 1, ENOENT);
	} else {
		struct mnode *n = N(R, N(R, d.idx)->e[j].node);

		c = N(R, d.idx)->e[j].node;
		want(&w, rmdir && !S_ISDIR(n->mode), ENOTDIR);
		want(&w, !rmdir && S_ISDIR(n->mode), EISDIR);
		want(&w, rmdir && S_ISDIR(n->mode) && n->ne > 0, ENOTEMPTY);
	}
	r = rmdir ? zf_fs_rmdir(R->fs, d.ino, name) : zf_fs_unlink(R->fs, d.ino, name);
	check_ret(R, &w, r);
	if (r < 0)
		return;
	ent_del(N(R, d.idx), j);
	N(R, d.idx)->mtime_known = 0;
	if (rmdir) {
		N(R, d.idx)->nlink--;
		N(R, c)->nlink = 0;
	} else {
		N(R, c)->nlink--;
	}
	maybe_release(&R->m, c);
}

static int is_empty_subdir(const struct mnode *n)
{
	return S_ISDIR(n->mode) && n->nlink > 0 && n->ne == 0 && n->ino != ZF_ROOT_INO;
}

static void op_unlink(struct run *R, int rmdir)
{
	struct tgt d;
	int e;

	if (rmdir && pct(&R->rng, 60) && (e = rand_node(R, is_empty_subdir)) >= 0) {
		/* an empty directory, by one of its parent's names for it */
		struct mnode *p = N(R, N(R, e)->parent);
		int j;

		for (j = 0; j < p->ne && p->e[j].node != e; j++)
			;
		if (j < p->ne) {
			char nm[ZF_NAME_LEN + 2];

			snprintf(nm, sizeof(nm), "%s", p->e[j].name);
			do_unlink(R, tgt_of(R, N(R, e)->parent), nm, 1);
			return;
		}
	}
	if (pct(&R->rng, 85)) {
		int i = rand_node(R, is_nonempty_dir);

		d = i >= 0 ? tgt_of(R, i) : pick_dir(R);
	} else {
		d = pick_dir(R);
	}
	do_unlink(R, d, pick_existing_name(R, d.idx), rmdir);
}

/* is directory x the directory anc or below it (model, live directories) */
static int m_within(struct run *R, int x, int anc)
{
	int guard = 0;

	for (;;) {
		if (x == anc)
			return 1;
		if (x == MODEL_ROOT || !N(R, x)->used || guard++ > 100000)
			return 0;
		x = N(R, x)->parent;
	}
}

static void do_rename(struct run *R, struct tgt sd, const char *name, struct tgt dd,
		      const char *newname, unsigned int flags)
{
	struct want w = { 0 };
	int r, sj = -1, dj = -1, si = -1, di = -1, sdir_ok, ddir_ok;

	desc(R, "rename %s in ino %llu to %s in ino %llu%s", short_name(name),
	     (unsigned long long)sd.ino, short_name(newname), (unsigned long long)dd.ino,
	     flags == RENAME_NOREPLACE ? " NOREPLACE" : flags ? " EXCHANGE" : "");
	want(&w, sd.idx < 0 || dd.idx < 0, ENOENT);
	sdir_ok = sd.idx >= 0 && S_ISDIR(N(R, sd.idx)->mode);
	ddir_ok = dd.idx >= 0 && S_ISDIR(N(R, dd.idx)->mode);
	want(&w, sd.idx >= 0 && !sdir_ok, ENOTDIR);
	want(&w, dd.idx >= 0 && !ddir_ok, ENOTDIR);
	want(&w, strlen(newname) > ZF_NAME_LEN || strlen(name) > ZF_NAME_LEN, ENAMETOOLONG);
	want(&w, strlen(newname) == 0, EINVAL);
	want_any(&w, is_dot(name) || is_dot(newname)); /* EBUSY in Linux; EINVAL is fine */
	if (sdir_ok && (sj = ent_find(N(R, sd.idx), name)) >= 0)
		si = N(R, sd.idx)->e[sj].node;
	if (ddir_ok && (dj = ent_find(N(R, dd.idx), newname)) >= 0)
		di = N(R, dd.idx)->e[dj].node;
	want(&w, sdir_ok && si < 0 && !is_dot(name), ENOENT);
	if (ddir_ok && N(R, dd.idx)->nlink == 0)
		want(&w, 1, ENOENT); /* a removed directory takes no entries */
	if (si >= 0 && ddir_ok) {
		struct mnode *s = N(R, si), *t = di >= 0 ? N(R, di) : NULL;

		if (flags & RENAME_EXCHANGE) {
			want(&w, !t, ENOENT);
		} else if (t && (flags & RENAME_NOREPLACE)) {
			want(&w, 1, EEXIST);
		} else if (t && di != si) {
			want(&w, S_ISDIR(s->mode) && !S_ISDIR(t->mode), ENOTDIR);
			want(&w, !S_ISDIR(s->mode) && S_ISDIR(t->mode), EISDIR);
			want(&w, S_ISDIR(s->mode) && S_ISDIR(t->mode) && t->ne > 0, ENOTEMPTY);
		}
		if (di != si && N(R, dd.idx)->nlink > 0) {
			want(&w, S_ISDIR(s->mode) && m_within(R, dd.idx, si), EINVAL);
			want(&w,
			     (flags & RENAME_EXCHANGE) && t && S_ISDIR(t->mode) &&
				     m_within(R, sd.idx, di),
			     EINVAL);
		}
	}
	r = zf_fs_rename(R->fs, sd.ino, name, dd.ino, newname, flags);
	check_ret(R, &w, r);
	if (r < 0 || di == si)
		return; /* two names of one inode: nothing happens */
	{
		struct mnode *S = N(R, sd.idx), *D = N(R, dd.idx);

		S->mtime_known = D->mtime_known = 0;
		if (flags & RENAME_EXCHANGE) {
			S->e[sj].node = di;
			D->e[dj].node = si;
			if (sd.idx != dd.idx) {
				if (S_ISDIR(N(R, si)->mode)) {
					S->nlink--;
					D->nlink++;
				}
				if (S_ISDIR(N(R, di)->mode)) {
					D->nlink--;
					S->nlink++;
				}
			}
			if (S_ISDIR(N(R, si)->mode))
				N(R, si)->parent = dd.idx;
			if (S_ISDIR(N(R, di)->mode))
				N(R, di)->parent = sd.idx;
			return;
		}
		if (di >= 0) {
			struct mnode *t = N(R, di);

			ent_del(D, dj);
			if (S_ISDIR(t->mode)) {
				D->nlink--;
				t->nlink = 0;
			} else {
				t->nlink--;
			}
		}
		sj = ent_find(S, name);
		ent_del(S, sj);
		ent_add(D, newname, si);
		if (S_ISDIR(N(R, si)->mode)) {
			if (sd.idx != dd.idx) {
				S->nlink--;
				D->nlink++;
			}
			N(R, si)->parent = dd.idx;
		}
		if (di >= 0)
			maybe_release(&R->m, di);
	}
}

static void op_rename(struct run *R)
{
	unsigned int p = below(&R->rng, 100);
	unsigned int flags = p < 70 ? 0 : p < 85 ? RENAME_NOREPLACE : RENAME_EXCHANGE;
	struct tgt sd, dd;
	const char *name;
	int i = rand_node(R, is_nonempty_dir);

	sd = i >= 0 && pct(&R->rng, 90) ? tgt_of(R, i) : pick_dir(R);
	name = pick_existing_name(R, sd.idx);
	dd = pct(&R->rng, 40) ? sd : pick_dir(R);
	do_rename(R, sd, name, dd, pct(&R->rng, 50) ? pick_existing_name(R, dd.idx) : pick_name(R),
		  flags);
}

static void op_pin(struct run *R)
{
	struct tgt t = pick_node(R, pct(&R->rng, 70) ? is_reg : is_any);
	struct want w = { 0 };
	int r;

	desc(R, "pin ino %llu", (unsigned long long)t.ino);
	want(&w, t.idx < 0, ENOENT);
	r = zf_fs_ref(R->fs, t.ino);
	check_ret(R, &w, r);
	if (r == 0)
		N(R, t.idx)->pins++;
}

static void op_unpin(struct run *R)
{
	int i = rand_node(R, is_pinned);
	uint64_t n;

	if (i < 0) {
		op_pin(R);
		return;
	}
	n = pct(&R->rng, 70) ? 1 : N(R, i)->pins;
	desc(R, "unpin ino %llu x%llu (pins %llu, nlink %u)", (unsigned long long)N(R, i)->ino,
	     (unsigned long long)n, (unsigned long long)N(R, i)->pins, N(R, i)->nlink);
	zf_fs_forget(R->fs, N(R, i)->ino, n);
	N(R, i)->pins -= n;
	maybe_release(&R->m, i);
}

static void random_time(struct run *R, struct timespec *ts)
{
	ts->tv_sec = 1000000000 + (time_t)below(&R->rng, 1000000000);
	ts->tv_nsec = (long)below(&R->rng, 1000000000);
}

static void op_setattr(struct run *R)
{
	struct tgt t = pick_node(R, pct(&R->rng, 70) ? is_reg : is_any);
	struct zf_attr in = { 0 }, a;
	unsigned int set = 0, p = below(&R->rng, 100);
	struct want w = { 0 };
	int r;

	if (p < 40) {
		set |= ZF_SET_SIZE;
		if (t.idx >= 0 && S_ISREG(N(R, t.idx)->mode) && pct(&R->rng, 60))
			in.size = below(&R->rng, N(R, t.idx)->data->len + 1);
		else
			in.size = below(&R->rng, MAX_FILE);
		if (pct(&R->rng, 1))
			in.size = (1ull << 60) + 1;
	} else if (p < 60) {
		set |= ZF_SET_MODE;
		in.mode = below(&R->rng, 010000);
	} else if (p < 70) {
		set |= ZF_SET_UID | ZF_SET_GID;
		in.uid = below(&R->rng, 4);
		in.gid = below(&R->rng, 4);
	}
	if (pct(&R->rng, 40)) {
		set |= pct(&R->rng, 20) ? ZF_SET_ATIME_NOW : ZF_SET_ATIME;
		random_time(R, &in.atime);
	}
	if (pct(&R->rng, 40) || !set) {
		set |= pct(&R->rng, 20) ? ZF_SET_MTIME_NOW : ZF_SET_MTIME;
		random_time(R, &in.mtime);
	}
	if (t.idx >= 0 && S_ISLNK(N(R, t.idx)->mode))
		set &= ~ZF_SET_MODE; /* Linux cannot chmod a symlink */
	desc(R, "setattr ino %llu set 0x%x size %llu mode 0%o owner %u:%u",
	     (unsigned long long)t.ino, set, (unsigned long long)in.size, in.mode, in.uid, in.gid);
	want(&w, t.idx < 0, ENOENT);
	if (t.idx >= 0 && (set & ZF_SET_SIZE)) {
		want(&w, S_ISDIR(N(R, t.idx)->mode), EISDIR);
		want_any(&w, !S_ISDIR(N(R, t.idx)->mode) && !S_ISREG(N(R, t.idx)->mode));
		want(&w, in.size > (1ull << 60), EFBIG);
	}
	r = zf_fs_setattr(R->fs, t.ino, set, &in, &a);
	check_ret(R, &w, r);
	if (r < 0)
		return;
	{
		struct mnode *n = N(R, t.idx);

		if (set & ZF_SET_MODE)
			n->mode = (n->mode & S_IFMT) | (in.mode & 07777);
		if (set & ZF_SET_UID)
			n->uid = in.uid;
		if (set & ZF_SET_GID)
			n->gid = in.gid;
		if (set & ZF_SET_SIZE) {
			/* the core flushes first (a linked file) */
			if (n->nlink)
				cand_reset(n);
			set_data(n, blob_resized(n->data, in.size));
			n->mtime_known = 0;
		}
		if (set & ZF_SET_ATIME_NOW) {
			n->atime_known = 0;
		} else if (set & ZF_SET_ATIME) {
			n->atime_known = 1;
			n->atime = in.atime;
		}
		if (set & ZF_SET_MTIME_NOW) {
			n->mtime_known = 0;
		} else if (set & ZF_SET_MTIME) {
			n->mtime_known = 1;
			n->mtime = in.mtime;
		}
	}
	check_attr(R, t.idx, &a);
}

static void op_getattr(struct run *R)
{
	struct tgt t = pick_node(R, is_any);
	struct want w = { 0 };
	struct zf_attr a;
	int r;

	desc(R, "getattr ino %llu", (unsigned long long)t.ino);
	want(&w, t.idx < 0, ENOENT);
	r = zf_fs_getattr(R->fs, t.ino, &a);
	check_ret(R, &w, r);
	if (r == 0)
		check_attr(R, t.idx, &a);
	if (t.idx >= 0 && !S_ISLNK(N(R, t.idx)->mode)) {
		char c;

		r = zf_fs_readlink(R->fs, t.ino, &c, 1);
		if (r != -EINVAL)
			diverge(R, "readlink of a non-symlink: %s", ename(r));
	}
}

/* ----------------------------------------------------------- data ops */

/* bytes for a write: fresh, repeated from the library or a file, or zeros */
static struct blob *gen_data(struct run *R, size_t len, char *what, size_t wlen)
{
	struct blob *b = blob_new(len);
	unsigned int p = below(&R->rng, 100);

	if (p < 35) {
		fill_rnd(&R->rng, b->d, len);
		snprintf(what, wlen, "random");
	} else if (p < 70 && len <= LIB_LEN) {
		int k = below(&R->rng, NLIB);
		size_t o = below(&R->rng, LIB_LEN - len + 1);

		memcpy(b->d, R->lib[k]->d + o, len);
		snprintf(what, wlen, "lib%d+%zu", k, o);
	} else if (p < 82) {
		snprintf(what, wlen, "zeros");
	} else if (p < 92) {
		int i = rand_node(R, is_reg);
		const struct blob *s = i >= 0 ? N(R, i)->data : NULL;

		if (s && s->len) {
			size_t o = below(&R->rng, s->len), n = s->len - o < len ? s->len - o : len;

			memcpy(b->d, s->d + o, n);
			snprintf(what, wlen, "from ino %llu +%zu", (unsigned long long)N(R, i)->ino,
				 o);
		} else {
			snprintf(what, wlen, "zeros");
		}
	} else {
		uint8_t pat[7];
		size_t i;

		fill_rnd(&R->rng, pat, sizeof(pat));
		for (i = 0; i < len; i++)
			b->d[i] = pat[i % sizeof(pat)];
		snprintf(what, wlen, "pattern");
	}
	return b;
}

static void touch_m(struct mnode *n)
{
	n->mtime_known = 0;
}

static void do_write(struct run *R, struct tgt t, uint64_t off, struct blob *data,
		     const char *what)
{
	struct want w = { 0 };
	ssize_t r;

	desc(R, "write ino %llu [%llu, +%zu) %s", (unsigned long long)t.ino,
	     (unsigned long long)off, data->len, what);
	want(&w, t.idx < 0, ENOENT);
	if (t.idx >= 0) {
		want(&w, S_ISDIR(N(R, t.idx)->mode), EISDIR);
		want_any(&w, !S_ISDIR(N(R, t.idx)->mode) && !S_ISREG(N(R, t.idx)->mode));
	}
	r = zf_fs_write(R->fs, t.ino, data->d, data->len, off);
	check_ret(R, &w, r);
	if (r < 0)
		return;
	if (r != (ssize_t)data->len)
		diverge(R, "write returned %zd, not %zu", r, data->len);
	R->nwrites++;
	if (data->len) {
		struct mnode *n = N(R, t.idx);
		size_t end = off + data->len;
		struct blob *nb = blob_resized(n->data, end > n->data->len ? end : n->data->len);

		memcpy(nb->d + off, data->d, data->len);
		set_data(n, nb);
		touch_m(n);
	}
}

static void op_write(struct run *R)
{
	struct tgt t = pick_node(R, pct(&R->rng, 97) ? is_reg : is_any);
	size_t size = t.idx >= 0 && S_ISREG(N(R, t.idx)->mode) ? N(R, t.idx)->data->len : 0;
	unsigned int p = below(&R->rng, 100);
	size_t len = p < 45 ? 1 + below(&R->rng, 256)
		     : p < 80 ? 256 + below(&R->rng, 16 * KIB)
			      : 16 * KIB + below(&R->rng, 112 * KIB);
	uint64_t off;
	struct blob *b;
	char what[80];

	p = below(&R->rng, 100);
	if (p < 35)
		off = below(&R->rng, size + 1);
	else if (p < 65)
		off = size;
	else if (p < 80)
		off = size + 1 + below(&R->rng, 64 * KIB);
	else if (p < 90)
		off = 0;
	else
		off = below(&R->rng, MAX_FILE / 4096) * 4096;
	if (off >= MAX_FILE)
		off = below(&R->rng, MAX_FILE);
	if (off + len > MAX_FILE)
		len = MAX_FILE - off;
	if (pct(&R->rng, 1))
		len = 0;
	b = gen_data(R, len, what, sizeof(what));
	do_write(R, t, off, b, what);
	blob_unref(b);
}

/*
 * One append of more than ZF_FLUSH_FILE_BYTES (8 MiB): the streaming path
 * chunks while writing and keeps the unterminated tail buffered, so a crash
 * may show the file cut at the last cut point: any prefix longer than the
 * old size. Once per seed at most (big files make every compare slow).
 */
static void op_stream(struct run *R)
{
	int i = rand_node(R, is_reg);
	size_t len = (8u << 20) + below(&R->rng, 512 * KIB), off, o;
	struct blob *b;
	struct mnode *n;

	if (i < 0 || R->streamed) {
		op_write(R);
		return;
	}
	R->streamed = 1;
	off = N(R, i)->data->len;
	b = blob_new(len);
	for (o = 0; o < len;) {
		size_t piece = 1 + below(&R->rng, 96 * KIB);

		if (piece > len - o)
			piece = len - o;
		if (pct(&R->rng, 50))
			memcpy(b->d + o,
			       R->lib[below(&R->rng, NLIB)]->d +
				       below(&R->rng, LIB_LEN - piece + 1),
			       piece);
		else if (pct(&R->rng, 80))
			fill_rnd(&R->rng, b->d + o, piece);
		o += piece;
	}
	do_write(R, tgt_of(R, i), off, b, "stream");
	blob_unref(b);
	n = N(R, i);
	blob_unref(n->pfx);
	n->pfx = blob_ref(n->data);
	n->pfx_min = off + 1;
}

static void op_read(struct run *R)
{
	struct tgt t = pick_node(R, pct(&R->rng, 95) ? is_reg : is_any);
	size_t size = t.idx >= 0 && S_ISREG(N(R, t.idx)->mode) ? N(R, t.idx)->data->len : 0;
	uint64_t off = below(&R->rng, size + 2 * KIB);
	size_t len = pct(&R->rng, 50) ? 1 + below(&R->rng, 4 * KIB) : below(&R->rng, 160 * KIB);
	struct want w = { 0 };
	uint8_t *buf = zf_malloc(len + 1);
	ssize_t r;

	desc(R, "read ino %llu [%llu, +%zu)", (unsigned long long)t.ino, (unsigned long long)off,
	     len);
	want(&w, t.idx < 0, ENOENT);
	if (t.idx >= 0) {
		want(&w, S_ISDIR(N(R, t.idx)->mode), EISDIR);
		want_any(&w, !S_ISDIR(N(R, t.idx)->mode) && !S_ISREG(N(R, t.idx)->mode));
	}
	r = zf_fs_read(R->fs, t.ino, buf, len, off);
	check_ret(R, &w, r);
	if (r >= 0) {
		size_t exp = off >= size ? 0 : size - off < len ? size - off : len;

		if ((size_t)r != exp || memcmp(buf, N(R, t.idx)->data->d + (exp ? off : 0), exp)) {
			free(buf);
			diverge(R, "read returned %zd bytes%s, model %zu", r,
				(size_t)r == exp ? " that differ" : "", exp);
		}
	}
	free(buf);
}

static void op_fallocate(struct run *R)
{
	struct tgt t = pick_node(R, pct(&R->rng, 95) ? is_reg : is_any);
	size_t size = t.idx >= 0 && S_ISREG(N(R, t.idx)->mode) ? N(R, t.idx)->data->len : 0;
	unsigned int p = below(&R->rng, 100);
	int mode = p < 75 ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
		   : p < 90 ? 0
			    : FALLOC_FL_KEEP_SIZE;
	uint64_t off = below(&R->rng, size + 8 * KIB);
	uint64_t len = pct(&R->rng, 50) ? 1 + below(&R->rng, 8 * KIB) : below(&R->rng, 128 * KIB);
	struct want w = { 0 };
	int r;

	if (off + len > MAX_FILE) {
		off = below(&R->rng, MAX_FILE / 2);
		len = below(&R->rng, MAX_FILE / 2);
	}
	desc(R, "fallocate ino %llu mode 0x%x [%llu, +%llu)", (unsigned long long)t.ino, mode,
	     (unsigned long long)off, (unsigned long long)len);
	want(&w, len == 0, EINVAL);
	want(&w, t.idx < 0, ENOENT);
	if (t.idx >= 0) {
		want(&w, S_ISDIR(N(R, t.idx)->mode), EISDIR);
		want_any(&w, !S_ISDIR(N(R, t.idx)->mode) && !S_ISREG(N(R, t.idx)->mode));
	}
	r = zf_fs_fallocate(R->fs, t.ino, mode, off, len);
	check_ret(R, &w, r);
	if (r < 0)
		return;
	{
		struct mnode *n = N(R, t.idx);

		cand_reset(n); /* flushed first */
		if (mode & FALLOC_FL_PUNCH_HOLE) {
			struct blob *nb = blob_resized(n->data, n->data->len);

			if (off < nb->len)
				memset(nb->d + off, 0,
				       (off + len < nb->len ? off + len : nb->len) - off);
			set_data(n, nb);
			touch_m(n);
		} else if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > n->data->len) {
			set_data(n, blob_resized(n->data, off + len));
			touch_m(n);
		}
	}
}

static void op_copy_range(struct run *R)
{
	struct tgt s = pick_node(R, pct(&R->rng, 97) ? is_reg : is_any);
	struct tgt d = pct(&R->rng, 15) ? s : pick_node(R, pct(&R->rng, 97) ? is_reg : is_any);
	size_t ssize = s.idx >= 0 && S_ISREG(N(R, s.idx)->mode) ? N(R, s.idx)->data->len : 0;
	size_t dsize = d.idx >= 0 && S_ISREG(N(R, d.idx)->mode) ? N(R, d.idx)->data->len : 0;
	uint64_t soff = below(&R->rng, ssize + KIB);
	uint64_t doff = pct(&R->rng, 50) ? below(&R->rng, dsize + 1) : below(&R->rng, MAX_FILE / 2);
	size_t len = below(&R->rng, pct(&R->rng, 50) ? 8 * KIB : MAX_FILE / 2);
	struct want w = { 0 };
	ssize_t r;

	if (pct(&R->rng, 20)) { /* chunk-aligned-ish: whole-chunk sharing */
		soff = 0;
		doff = dsize;
		len = ssize;
	}
	if (doff >= MAX_FILE)
		doff = below(&R->rng, MAX_FILE);
	if (doff + len > MAX_FILE)
		len = MAX_FILE - doff;
	desc(R, "copy_range ino %llu +%llu -> ino %llu +%llu, %zu bytes", (unsigned long long)s.ino,
	     (unsigned long long)soff, (unsigned long long)d.ino, (unsigned long long)doff, len);
	want(&w, s.idx < 0 || d.idx < 0, ENOENT);
	if (s.idx >= 0 && d.idx >= 0) {
		int sdir = S_ISDIR(N(R, s.idx)->mode), ddir = S_ISDIR(N(R, d.idx)->mode);

		want(&w, sdir || ddir, EISDIR);
		want_any(&w, (!sdir && !S_ISREG(N(R, s.idx)->mode)) ||
				     (!ddir && !S_ISREG(N(R, d.idx)->mode)));
	}
	r = zf_fs_copy_range(R->fs, s.ino, soff, d.ino, doff, len);
	check_ret(R, &w, r);
	if (r < 0)
		return;
	{
		struct mnode *sn = N(R, s.idx), *dn = N(R, d.idx);
		size_t n = soff >= sn->data->len ? 0
			   : sn->data->len - soff < len ? sn->data->len - soff
							 : len;
		struct blob *src = blob_ref(sn->data), *nb;

		if ((size_t)r != n) {
			blob_unref(src);
			diverge(R, "copy_range returned %zd, model %zu", r, n);
		}
		cand_reset(sn);
		cand_reset(dn);
		if (n) {
			nb = blob_resized(dn->data,
					  doff + n > dn->data->len ? doff + n : dn->data->len);
			memcpy(nb->d + doff, src->d + soff, n);
			set_data(dn, nb);
			touch_m(dn);
		}
		blob_unref(src);
	}
}

static void op_lseek(struct run *R)
{
	struct tgt t = pick_node(R, pct(&R->rng, 95) ? is_reg : is_any);
	size_t size = t.idx >= 0 && S_ISREG(N(R, t.idx)->mode) ? N(R, t.idx)->data->len : 0;
	uint64_t off = below(&R->rng, size + KIB);
	int whence = pct(&R->rng, 50) ? SEEK_DATA : SEEK_HOLE;
	struct want w = { 0 };
	const uint8_t *d;
	int64_t r;
	uint64_t i;

	desc(R, "lseek ino %llu %s from %llu", (unsigned long long)t.ino,
	     whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE", (unsigned long long)off);
	want(&w, t.idx < 0, ENOENT);
	want_any(&w, t.idx >= 0 && !S_ISREG(N(R, t.idx)->mode));
	want(&w, w.n == 0 && off >= size, ENXIO);
	r = zf_fs_lseek(R->fs, t.ino, off, whence);
	if (r == -ENXIO && whence == SEEK_DATA && w.n == 0) {
		/* no data after off: it must all read as zeros */
		d = N(R, t.idx)->data->d;
		for (i = off; i < size; i++)
			if (d[i])
				diverge(R, "SEEK_DATA: -ENXIO, but byte %llu is 0x%02x",
					(unsigned long long)i, d[i]);
		cand_reset(N(R, t.idx));
		return;
	}
	check_ret(R, &w, r);
	if (r < 0)
		return;
	cand_reset(N(R, t.idx)); /* flushed first */
	d = N(R, t.idx)->data->d;
	if ((uint64_t)r < off || (uint64_t)r > size || (whence == SEEK_DATA && (uint64_t)r == size))
		diverge(R, "lseek returned %lld outside [%llu, %zu]", (long long)r,
			(unsigned long long)off, size);
	if (whence == SEEK_DATA) {
		for (i = off; i < (uint64_t)r; i++)
			if (d[i])
				diverge(R, "SEEK_DATA: %lld, but byte %llu before it is 0x%02x",
					(long long)r, (unsigned long long)i, d[i]);
	} else if ((uint64_t)r < size && d[r]) {
		diverge(R, "SEEK_HOLE: %lld, but that byte is 0x%02x", (long long)r, d[r]);
	}
}

/* ----------------------------------------------------------------- xattrs */

static const char *pick_xname(struct run *R)
{
	static const char *const pool[] = { "user.a", "user.b", "user.c", "trusted.t",
					     "security.s" };
	static char longname[256];

	if (!longname[0]) {
		memcpy(longname, "user.", 5);
		memset(longname + 5, 'n', 250);
	}
	if (pct(&R->rng, 2))
		return pct(&R->rng, 50) ? "" : longname;
	return pool[below(&R->rng, sizeof(pool) / sizeof(pool[0]))];
}

static int x_find(const struct mnode *n, const char *name)
{
	int i;

	for (i = 0; i < n->nx; i++)
		if (!strcmp(n->x[i].name, name))
			return i;
	return -1;
}

static void op_setxattr(struct run *R)
{
	struct tgt t = pick_node(R, is_any);
	const char *name = pick_xname(R);
	unsigned int p = below(&R->rng, 100);
	size_t len = p < 80 ? below(&R->rng, 64) : p < 96 ? below(&R->rng, 4096)
					 : p < 98 ? XATTR_MAX : XATTR_MAX + 1;
	int flags = pct(&R->rng, 60) ? 0 : pct(&R->rng, 50) ? XATTR_CREATE : XATTR_REPLACE;
	struct blob *v = blob_new(len);
	struct want w = { 0 };
	int r, j;

	fill_rnd(&R->rng, v->d, len);
	desc(R, "setxattr ino %llu '%.20s' %zu bytes flags %d", (unsigned long long)t.ino, name,
	     len, flags);
	want(&w, t.idx < 0, ENOENT);
	want(&w, strlen(name) == 0, ERANGE);
	want(&w, len > XATTR_MAX, E2BIG);
	j = t.idx >= 0 ? x_find(N(R, t.idx), name) : -1;
	want(&w, t.idx >= 0 && (flags & XATTR_CREATE) && j >= 0, EEXIST);
	want(&w, t.idx >= 0 && (flags & XATTR_REPLACE) && j < 0, ENODATA);
	r = zf_fs_setxattr(R->fs, t.ino, name, v->d, len, flags);
	check_ret(R, &w, r);
	if (r < 0) {
		blob_unref(v);
		return;
	}
	{
		struct mnode *n = N(R, t.idx);

		if (j < 0) {
			n->x = zf_realloc(n->x, (n->nx + 1) * sizeof(*n->x));
			n->x[n->nx].name = zf_strdup(name);
			n->x[n->nx].val = v;
			n->nx++;
		} else {
			blob_unref(n->x[j].val);
			n->x[j].val = v;
		}
	}
}

static int has_xattrs(const struct mnode *n)
{
	return n->nx > 0;
}

static void op_getxattr(struct run *R)
{
	struct tgt t = pick_node(R, pct(&R->rng, 70) ? has_xattrs : is_any);
	int j = t.idx >= 0 && N(R, t.idx)->nx && pct(&R->rng, 80)
			? (int)below(&R->rng, N(R, t.idx)->nx)
			: -1;
	const char *name = j >= 0 ? N(R, t.idx)->x[j].name : pick_xname(R);
	size_t vlen, blen;
	struct want w = { 0 };
	uint8_t *buf;
	ssize_t r;

	if (t.idx >= 0)
		j = x_find(N(R, t.idx), name);
	vlen = j >= 0 ? N(R, t.idx)->x[j].val->len : 0;
	blen = pct(&R->rng, 20) ? 0 : pct(&R->rng, 15) && vlen > 1 ? vlen - 1 : vlen + 8;
	desc(R, "getxattr ino %llu '%.20s' into %zu bytes", (unsigned long long)t.ino, name, blen);
	want(&w, t.idx < 0, ENOENT);
	want(&w, t.idx >= 0 && j < 0, ENODATA);
	want(&w, j >= 0 && blen && blen < vlen, ERANGE);
	buf = zf_malloc(blen + 1);
	r = zf_fs_getxattr(R->fs, t.ino, name, buf, blen);
	check_ret(R, &w, r);
	if (r >= 0 &&
	    ((size_t)r != vlen || (blen && memcmp(buf, N(R, t.idx)->x[j].val->d, vlen)))) {
		free(buf);
		diverge(R, "getxattr returned %zd bytes, model %zu%s", r, vlen,
			(size_t)r == vlen ? " (value differs)" : "");
	}
	free(buf);
}

static void op_removexattr(struct run *R)
{
	struct tgt t = pick_node(R, pct(&R->rng, 70) ? has_xattrs : is_any);
	int j = t.idx >= 0 && N(R, t.idx)->nx && pct(&R->rng, 80)
			? (int)below(&R->rng, N(R, t.idx)->nx)
			: -1;
	const char *name = j >= 0 ? N(R, t.idx)->x[j].name : pick_xname(R);
	struct want w = { 0 };
	char nm[300];
	int r;

	snprintf(nm, sizeof(nm), "%s", name);
	if (t.idx >= 0)
		j = x_find(N(R, t.idx), nm);
	desc(R, "removexattr ino %llu '%.20s'", (unsigned long long)t.ino, nm);
	want(&w, t.idx < 0, ENOENT);
	want(&w, t.idx >= 0 && j < 0, ENODATA);
	r = zf_fs_removexattr(R->fs, t.ino, nm);
	check_ret(R, &w, r);
	if (r < 0)
		return;
	{
		struct mnode *n = N(R, t.idx);

		free(n->x[j].name);
		blob_unref(n->x[j].val);
		n->x[j] = n->x[--n->nx];
	}
}

static void op_listxattr(struct run *R)
{
	struct tgt t = pick_node(R, is_any);
	size_t total = 0, blen;
	struct want w = { 0 };
	char *buf;
	ssize_t r;
	int k;

	if (t.idx >= 0)
		for (k = 0; k < N(R, t.idx)->nx; k++)
			total += strlen(N(R, t.idx)->x[k].name) + 1;
	blen = pct(&R->rng, 15) && total > 1 ? total - 1 : total + 4;
	desc(R, "listxattr ino %llu into %zu bytes", (unsigned long long)t.ino, blen);
	want(&w, t.idx < 0, ENOENT);
	want(&w, t.idx >= 0 && blen < total, ERANGE);
	buf = zf_malloc(blen + 1);
	r = zf_fs_listxattr(R->fs, t.ino, buf, blen);
	free(buf);
	check_ret(R, &w, r);
	if (r >= 0 && (size_t)r != total)
		diverge(R, "listxattr returned %zd, model %zu", r, total);
	if (r >= 0)
		check_xattrs(R, t.idx);
}

/* ------------------------------------------------------ readdir + churn */

static void op_readdir(struct run *R)
{
	int i = rand_node(R, pct(&R->rng, 90) ? is_live_dir : is_dead_dir);

	if (i < 0)
		i = MODEL_ROOT;
	desc(R, "readdir ino %llu", (unsigned long long)N(R, i)->ino);
	check_dir(R, i);
}

/*
 * List a directory in pages while entries are added and removed between the
 * pages: an entry present throughout is listed exactly once, and nothing is
 * listed that was never there.
 */
static void op_readdir_churn(struct run *R)
{
	int i = rand_node(R, is_live_dir), k, j, pages = 0;
	char **stable, **ever;
	int nstable = 0, never = 0;
	struct rd rd = { 0 };
	uint64_t off = 0, dino;

	if (i < 0)
		i = MODEL_ROOT;
	dino = N(R, i)->ino;
	stable = zf_malloc((N(R, i)->ne + 1) * sizeof(*stable));
	ever = zf_malloc((N(R, i)->ne + 1) * sizeof(*ever));
	for (k = 0; k < N(R, i)->ne; k++) {
		stable[nstable++] = zf_strdup(N(R, i)->e[k].name);
		ever[never++] = zf_strdup(N(R, i)->e[k].name);
	}
	for (;;) {
		int got;

		desc(R, "readdir ino %llu page %d from %llu (with churn)", (unsigned long long)dino,
		     pages, (unsigned long long)off);
		got = rd_page(R, &rd, dino, off, 1 + (int)below(&R->rng, 3));
		if (!got)
			break;
		off = rd.e[rd.n - 1].off;
		pages++;
		/* churn: create or remove a name of this directory */
		if (!N(R, i)->used || N(R, i)->nlink == 0)
			break;
		for (k = below(&R->rng, 3); k > 0; k--) {
			const char *name = pick_existing_name(R, i);
			char nm[300];
			int s;

			snprintf(nm, sizeof(nm), "%s", name);
			if (is_dot(nm) || !nm[0] || strlen(nm) > ZF_NAME_LEN)
				continue;
			for (s = 0; s < nstable; s++) {
				if (!strcmp(stable[s], nm)) {
					free(stable[s]);
					stable[s] = stable[--nstable];
					break;
				}
			}
			ever = zf_realloc(ever, (never + 1) * sizeof(*ever));
			ever[never++] = zf_strdup(nm);
			s = ent_find(N(R, i), nm);
			if (s >= 0 && !S_ISDIR(N(R, N(R, i)->e[s].node)->mode))
				do_unlink(R, tgt_of(R, i), nm, 0);
			else
				do_create(R, tgt_of(R, i), nm, 0); /* or EEXIST */
		}
	}
	desc(R, "readdir ino %llu with churn: check %d entries over %d pages",
	     (unsigned long long)dino, rd.n, pages);
	for (k = 0; k < rd.n; k++) {
		int cnt = 0, known = 0;

		if (is_dot(rd.e[k].name))
			continue;
		for (j = 0; j < rd.n; j++)
			cnt += !strcmp(rd.e[j].name, rd.e[k].name);
		for (j = 0; j < never; j++)
			known |= !strcmp(ever[j], rd.e[k].name);
		for (j = 0; j < nstable && cnt > 1; j++)
			if (!strcmp(stable[j], rd.e[k].name))
				diverge(R, "entry %s listed %d times", short_name(rd.e[k].name),
					cnt);
		if (!known)
			diverge(R, "entry %s listed but never there", short_name(rd.e[k].name));
	}
	for (j = 0; j < nstable; j++) {
		int found = 0;

		for (k = 0; k < rd.n; k++)
			found |= !strcmp(stable[j], rd.e[k].name);
		if (!found && N(R, i)->nlink > 0)
			diverge(R, "entry %s present throughout but not listed",
				short_name(stable[j]));
	}
	for (j = 0; j < nstable; j++)
		free(stable[j]);
	for (j = 0; j < never; j++)
		free(ever[j]);
	free(stable);
	free(ever);
	free(rd.e);
}

/* --------------------------------------------------------- sync & co */

static void op_fsync(struct run *R)
{
	struct tgt t = pick_node(R, pct(&R->rng, 80) ? is_reg : is_any);
	struct want w = { 0 };
	int r;

	desc(R, "fsync ino %llu", (unsigned long long)t.ino);
	want(&w, t.idx < 0, ENOENT);
	r = zf_fs_fsync(R->fs, t.ino);
	check_ret(R, &w, r);
	if (r < 0)
		return;
	cand_reset(N(R, t.idx));
	durable(R);
}

static void op_flush(struct run *R)
{
	struct tgt t = pick_node(R, is_reg);
	int r;

	desc(R, "flush ino %llu", (unsigned long long)t.ino);
	r = zf_fs_flush(R->fs, t.ino);
	if (r < 0)
		diverge(R, "flush: %s", ename(r));
	if (t.idx >= 0)
		cand_reset(N(R, t.idx));
}

static void op_sync(struct run *R)
{
	int r;

	desc(R, "sync");
	r = zf_fs_sync(R->fs);
	if (r < 0)
		diverge(R, "sync: %s", ename(r));
	all_flushed(R);
	durable(R);
}

static void op_checkpoint(struct run *R)
{
	int r;

	desc(R, "checkpoint");
	r = zf_fs_checkpoint(R->fs);
	if (r < 0)
		diverge(R, "checkpoint: %s", ename(r));
	R->nckpt++;
	all_flushed(R);
	durable(R);
}

/* gc moves live chunks and removes segments: nothing visible may change */
static void op_gc(struct run *R)
{
	static const double waste[] = { 1e-9, 0.01, 0.05, 0.5, 10 };
	struct zf_gc_opts o = { .max_waste = waste[below(&R->rng, 5)] };
	struct zf_gc_report rep;
	int r;

	desc(R, "gc (max waste %g)", o.max_waste);
	o.dry_run = pct(&R->rng, 10);
	r = zf_fs_gc(R->fs, &o, &rep);
	if (r < 0)
		diverge(R, "gc: %s", ename(r));
	if (rep.kept_damaged)
		diverge(R, "gc kept %llu damaged segments", (unsigned long long)rep.kept_damaged);
	R->ngc++;
	R->ngc_moved += rep.moved_chunks;
	R->ngc_freed += o.dry_run ? 0 : rep.freed_segments;
	/* gc flushes buffered data and commits */
	all_flushed(R);
	durable(R);
}

/* ------------------------------------------------------------- driver */

struct op {
	const char *name;
	unsigned int weight;
	void (*fn)(struct run *R);
};

static void op_unlink_file(struct run *R)
{
	op_unlink(R, 0);
}

static void op_rmdir(struct run *R)
{
	op_unlink(R, 1);
}

static void op_verify(struct run *R)
{
	desc(R, "verify everything");
	verify_all(R);
}

static void op_fsck(struct run *R)
{
	desc(R, "fsck");
	fsck(R, 0);
}

static const struct op ops[] = {
	{ "create", 90, op_create },	 { "lookup", 30, op_lookup },
	{ "link", 30, op_link },	 { "unlink", 50, op_unlink_file },
	{ "rmdir", 25, op_rmdir },	 { "rename", 60, op_rename },
	{ "pin", 20, op_pin },		 { "unpin", 20, op_unpin },
	{ "setattr", 50, op_setattr },	 { "getattr", 15, op_getattr },
	{ "write", 200, op_write },	 { "read", 50, op_read },
	{ "fallocate", 30, op_fallocate }, { "copy_range", 30, op_copy_range },
	{ "lseek", 10, op_lseek },	 { "setxattr", 35, op_setxattr },
	{ "getxattr", 15, op_getxattr }, { "removexattr", 15, op_removexattr },
	{ "listxattr", 8, op_listxattr }, { "readdir", 15, op_readdir },
	{ "readdir_churn", 8, op_readdir_churn }, { "fsync", 20, op_fsync },
	{ "flush", 8, op_flush },	 { "sync", 10, op_sync },
	{ "checkpoint", 3, op_checkpoint }, { "reopen", 3, do_reopen },
	{ "crash", 5, do_crash },	 { "verify", 4, op_verify },
	{ "fsck", 2, op_fsck },		 { "stream", 1, op_stream },
	{ "gc", 4, op_gc },
};

static const struct op *pick_op(struct run *R)
{
	unsigned int total = 0, x, i;
	int live = 0;

	for (i = 0; i < (unsigned int)R->m.nn; i++)
		live += R->m.n[i].used;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		total += ops[i].weight;
	for (;;) {
		x = below(&R->rng, total);
		for (i = 0; x >= ops[i].weight; i++)
			x -= ops[i].weight;
		/* keep the tree at a size where names collide often */
		if (ops[i].fn == op_create && live > 40 + 8 * R->npool && pct(&R->rng, 80))
			continue;
		if ((ops[i].fn == op_unlink_file || ops[i].fn == op_rmdir) && live < 20 &&
		    pct(&R->rng, 60))
			continue;
		return &ops[i];
	}
}

static unsigned long env_ul(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 0) : dflt;
}

static void rm_one_path(const char *p);

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	rm_one_path(path);
	return 0;
}

static void rm_one_path(const char *p)
{
	if (remove(p) < 0 && errno != ENOENT)
		fprintf(stderr, "check_model: cannot remove '%s': %s\n", p, strerror(errno));
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void run_seed(uint64_t seed, int nops)
{
	struct zf_mkfs_opts mo = { .chunk_min = 1024,
				   .chunk_avg = 4096,
				   .chunk_max = 16384,
				   .seg_limit = 256 * KIB };
	struct run *R = zf_calloc(1, sizeof(*R));
	int i, r;

	R->seed = seed;
	R->rng.s = seed * UINT64_C(0x2545f4914f6cdd1d) + 1;
	R->nops = nops;
	R->trace = env_ul("ZF_MODEL_TRACE", 0) != 0;
	R->keep = env_ul("ZF_MODEL_KEEP", 0) != 0;
	R->npool = pct(&R->rng, 25) ? POOL_MAX : 10;
	snprintf(R->dir, sizeof(R->dir), "%s/seed-%llu-XXXXXX", g_root, (unsigned long long)seed);
	ck_assert_ptr_nonnull(mkdtemp(R->dir));
	snprintf(R->dev, sizeof(R->dev), "%s/dev", R->dir);
	for (i = 0; i < NLIB; i++) {
		R->lib[i] = blob_new(LIB_LEN);
		fill_rnd(&R->rng, R->lib[i]->d, LIB_LEN);
	}
	desc(R, "mkfs");
	r = zf_fs_mkfs(R->dev, &mo);
	if (r < 0)
		diverge(R, "zf_fs_mkfs: %s", ename(r));
	fs_open_or_fail(R);
	i = model_add(&R->m);
	N(R, i)->ino = ZF_ROOT_INO;
	N(R, i)->mode = S_IFDIR | 0755;
	N(R, i)->nlink = 2;
	N(R, i)->parent = MODEL_ROOT;
	R->max_ino = ZF_ROOT_INO;
	durable(R);
	verify_all(R);
	for (R->opi = 0; R->opi < nops; R->opi++) {
		const struct op *op = pick_op(R);

		R->desc[0] = 0;
		R->cur_op = op - ops;
		op->fn(R);
		if (R->opi % 250 == 249) {
			desc(R, "periodic verify");
			verify_all(R);
		}
	}
	R->opi = nops;
	desc(R, "final verify, close, open, verify, fsck");
	verify_all(R);
	do_reopen(R);
	fsck(R, 1);
	r = zf_fs_close(R->fs);
	R->fs = NULL;
	if (r < 0)
		diverge(R, "zf_fs_close: %s", ename(r));
	if (env_ul("ZF_MODEL_VERBOSE", 0)) {
		fprintf(stderr,
			"check_model: seed %llu: %d ops, %lu writes, %lu reopens, %lu crashes "
			"(%lu older contents chosen, %lu unchecked), %lu checkpoints, %lu verifies, %d inodes "
			"created, %lu gc runs (%lu chunks moved, %lu segments removed)\n  ok/failed:",
			(unsigned long long)seed, nops, R->nwrites, R->reopens, R->crashes,
			R->cand_picks, R->any_picks, R->nckpt, R->verifies, R->m.nn, R->ngc,
			R->ngc_moved, R->ngc_freed);
		for (i = 0; i < (int)(sizeof(ops) / sizeof(ops[0])); i++)
			if (R->nok[i] + R->nerr[i])
				fprintf(stderr, " %s %lu/%lu", ops[i].name, R->nok[i], R->nerr[i]);
		fprintf(stderr, "\n");
	}
	run_cleanup(R);
	free(R);
}

static unsigned long g_first, g_seeds, g_ops;

START_TEST(test_model)
{
	run_seed(g_first + (uint64_t)_i, (int)g_ops);
}
END_TEST

static Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("random");
	int sanitized = getenv("ZF_SANITIZED") != NULL;

	g_first = env_ul("ZF_MODEL_FIRST", 1);
	g_seeds = env_ul("ZF_MODEL_SEEDS", sanitized ? 12 : 40);
	g_ops = env_ul("ZF_MODEL_OPS", 1500);
	if (getenv("ZF_MODEL_SEED")) {
		g_first = env_ul("ZF_MODEL_SEED", 1);
		g_seeds = 1;
	}
	/* per seed; a seed takes well under a second plain, ~10x that sanitized */
	tcase_set_timeout(tc, sanitized ? 120 : 30);
	tcase_add_loop_test(tc, test_model, 0, (int)g_seeds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	SRunner *sr;
	int failed, k;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	snprintf(g_root, sizeof(g_root), "%s/zf-check-model-XXXXXX", tmp);
	if (!mkdtemp(g_root)) {
		fprintf(stderr, "check_model: cannot create '%s': %s\n", g_root, strerror(errno));
		return EXIT_FAILURE;
	}
	for (k = 0; k < 3; k++) {
		memset(g_long[k], k == 1 ? 'y' : 'x', k == 2 ? 256 : 255);
		g_long[k][k == 2 ? 256 : 255] = 0;
	}
	for (k = 0; k < POOL_MAX; k++) /* "a".."z", then "n26".. */
		snprintf(g_pool[k], sizeof(g_pool[k]), k < 26 ? "%c" : "n%d", k < 26 ? 'a' + k : k);
	if (!getenv("ZF_MODEL_VERBOSE"))
		zf_log_set_level(ZF_LOG_ERR); /* crashes make expected warnings */
	sr = srunner_create(model_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (failed && getenv("ZF_MODEL_KEEP"))
		fprintf(stderr, "check_model: scratch kept in '%s'\n", g_root);
	else
		rm_tree(g_root);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
