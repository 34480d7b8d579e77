/*
 * storage/fs_pipe.c - the core's write and read pipeline: compression and
 * appends of super-chunks, and decompression ahead of sequential readers, on
 * a small pool of worker threads. The contract is in fs_pipe.h.
 *
 * Write side, in order:
 *  1. under fs->lock, the data path cuts and hashes chunks and copies new
 *     ones into the filling pack (fs_pack_cur); a full pack is submitted;
 *  2. a worker builds the super-chunk (zstd, no lock held), then waits for
 *     its turn (tickets) and appends it to the segment store: the store's
 *     super-chunks are in submission order, so seals come in order too;
 *  3. the next holder of fs->lock reaps appended packs in the same order:
 *     it logs each one's super-chunk record (and a seal after it) and the
 *     chunks point at their new location instead of the pack.
 * A commit reaps everything first, so a log record never reaches the disk
 * before the super-chunk records of the chunks it references (the commit
 * order of fs.c is unchanged: data, fdatasync, then the records).
 *
 * A failed append (a full disk) makes the pipeline's error sticky: later
 * packs are not appended out of order but marked failed too, and the next
 * reap with all retries them inline, in order; their bytes stay readable
 * in the packs meanwhile.
 *
 * Memory: submitted packs hold their raw bytes and a built image; writers
 * wait in fs_pipe_throttle() (without fs->lock) while more than
 * ZF_PIPE_PACKS_PER_THREAD packs per worker are in flight, reaping the
 * appended ones themselves.
 *
 * Locking: pipe->lock guards the queues, states and counters below; it is
 * a leaf, taken alone or under fs->lock and dropped before any segment
 * store call and before fs->lock (fs_pipe.h). The workers take it and
 * segment store locks (never together), never fs->lock.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/fs_pipe.h"
#include "storage/meta_format.h"

/*
 * Packs in flight per worker before writers wait: one being compressed, one
 * queued behind it so a worker never idles between packs. Each costs about
 * 2 x ZF_PACK_BYTES (raw bytes and image).
 */
#define ZF_PIPE_PACKS_PER_THREAD 2
#define ZF_PIPE_MAX_THREADS 8
/* zstd level under a backlog: 1.5x the speed of level 3 on text for about
 * 10 % more bytes (bench/RESULTS.md, "write pipeline") */
#define ZF_PIPE_FAST_LEVEL 1
/* read-ahead requests waiting at most; older ones are dropped (the reader
 * has moved on or will decompress them itself) */
#define ZF_PIPE_RA_MAX 8

struct zf_ra {
	struct zf_sc_loc loc;
};

struct zf_pipe {
	struct zf_fs *fs;
	struct zf_mutex lock;	/* rank ZF_RANK_PIPE, a leaf; alone or under fs->lock (fs_pipe.h) */
	pthread_cond_t work;	/* a pack or read-ahead to do, or stop */
	pthread_cond_t done;	/* a pack changed state, or was reaped */
	pthread_t *threads;
	unsigned int nthreads;
	int stop;			/* protected by lock */
	struct zf_pack *head, *tail;	/* protected by lock: submitted, unreaped */
	struct zf_pack *todo;		/* protected by lock: first QUEUED pack */
	unsigned int inflight;		/* protected by lock: packs submitted, unreaped */
	unsigned int working;		/* protected by lock: of those, queued or busy */
	uint64_t inflight_bytes;	/* protected by lock */
	uint64_t next_ticket;		/* protected by lock */
	uint64_t turn;			/* protected by lock: ticket whose append is next */
	int err;			/* protected by lock: sticky append error */
	struct zf_sc_packer **idle;	/* protected by lock: compressors not in use */
	unsigned int nidle;
	struct zf_pack *spare;		/* protected by lock: reaped packs to reuse */
	unsigned int nspare;
	struct zf_ra ra[ZF_PIPE_RA_MAX]; /* protected by lock: ring of read-aheads */
	unsigned int ra_head, ra_n;
	unsigned int busy;		/* protected by lock: workers at work */
	uint64_t packs, raw_packs, fast_packs, readahead; /* protected by lock */
};

/*
 * A compressor, and the level to use: the filesystem's, unless packs wait
 * for a worker. Then the writer outruns compression at that level and
 * waits for it, so this pack gets ZF_PIPE_FAST_LEVEL: a bulk write runs at
 * the speed of level 1 on every core, a trickle gets the full level.
 */
static struct zf_sc_packer *packer_get(struct zf_pipe *p, int *ret_level)
{
	struct zf_fs *fs = p->fs;
	struct zf_sc_packer *pk;
	int backlog;

	zf_mutex_lock(&p->lock);
	pk = p->nidle ? p->idle[--p->nidle] : NULL;
	backlog = p->working > p->nthreads;
	p->fast_packs += backlog && fs->zstd_level > ZF_PIPE_FAST_LEVEL;
	zf_mutex_unlock(&p->lock);
	*ret_level = backlog && fs->zstd_level > ZF_PIPE_FAST_LEVEL ? ZF_PIPE_FAST_LEVEL
								    : fs->zstd_level;
	return pk ? pk : zf_sc_packer_new();
}

static void packer_put(struct zf_pipe *p, struct zf_sc_packer *pk)
{
	zf_mutex_lock(&p->lock);
	p->idle = zf_realloc(p->idle, (p->nidle + 1) * sizeof(*p->idle));
	p->idle[p->nidle++] = pk;
	zf_mutex_unlock(&p->lock);
}

/* build pack's super-chunk into pack->img (no lock); 0 or -errno */
static int pack_build(struct zf_pipe *p, struct zf_pack *pack)
{
	struct zf_sc_chunk *tab = zf_malloc(pack->n * sizeof(*tab));
	struct zf_sc_packer *pk;
	uint32_t i;
	int level, r;

	pk = packer_get(p, &level);
	for (i = 0; i < pack->n; i++) {
		tab[i].id = pack->chunks[i]->id;
		tab[i].len = pack->chunks[i]->len;
	}
	r = pk ? zf_sc_packer_build(pk, level, tab, pack->n, pack->raw.p,
				    (uint32_t)pack->raw.len, &pack->img)
	       : -ENOMEM;
	if (pk)
		packer_put(p, pk);
	free(tab);
	if (r == 0) {
		zf_mutex_lock(&p->lock);
		p->packs++;
		p->raw_packs += pack->img.len > pack->img.raw_len;
		zf_mutex_unlock(&p->lock);
	}
	return r;
}

/* a worker's share of one pack: build, then append in ticket order */
static void pack_work(struct zf_pipe *p, struct zf_pack *pack)
{
	int r, err;

	zf_mutex_lock(&p->lock);
	err = p->err;
	zf_mutex_unlock(&p->lock);
	/* after a failure, this pack fails too (unbuilt): the retry is inline */
	r = err ? err : pack_build(p, pack);

	zf_mutex_lock(&p->lock);
	while (p->turn != pack->ticket)
		zf_cond_wait(&p->done, &p->lock);
	if (r == 0 && p->err)
		r = p->err; /* an earlier pack failed: never append past it */
	if (r == 0) {
		zf_mutex_unlock(&p->lock);
		r = zf_segstore_append_image(p->fs->seg, &pack->img, &pack->loc, &pack->sealed);
		zf_mutex_lock(&p->lock);
	}
	/* any failure is sticky, a build's too: a later pack appended (and
	 * perhaps sealing a segment) before this one's retry would put
	 * super-chunk records out of the store's order */
	if (r < 0 && !p->err)
		p->err = r;
	pack->err = r;
	pack->state = r < 0 ? ZF_PACK_FAILED : ZF_PACK_DONE;
	p->working--;
	p->turn++;
	pthread_cond_broadcast(&p->done);
	zf_mutex_unlock(&p->lock);
}

static void *worker(void *arg)
{
	struct zf_pipe *p = arg;
	struct zf_fs *fs = p->fs;

	zf_mutex_lock(&p->lock);
	for (;;) {
		if (p->todo) {
			struct zf_pack *pack = p->todo;

			for (p->todo = pack->next; p->todo && p->todo->state != ZF_PACK_QUEUED;)
				p->todo = p->todo->next;
			pack->state = ZF_PACK_BUSY;
			p->busy++;
			zf_mutex_unlock(&p->lock);
			pack_work(p, pack);
			zf_mutex_lock(&p->lock);
			p->busy--;
		} else if (p->ra_n) {
			struct zf_sc_loc loc = p->ra[p->ra_head].loc;

			p->ra_head = (p->ra_head + 1) % ZF_PIPE_RA_MAX;
			p->ra_n--;
			p->busy++;
			zf_mutex_unlock(&p->lock);
			/* errors are the reader's to meet and report */
			if (zf_segstore_prefetch(fs->seg, &loc, ZF_PREFETCH_LOCAL) == 1) {
				zf_mutex_lock(&p->lock);
				p->readahead++;
				zf_mutex_unlock(&p->lock);
			}
			zf_mutex_lock(&p->lock);
			p->busy--;
		} else if (p->stop) {
			break;
		} else {
			zf_cond_wait(&p->work, &p->lock);
		}
	}
	zf_mutex_unlock(&p->lock);
	return NULL;
}

void fs_pack_free(struct zf_pack *pack)
{
	if (!pack)
		return;
	zf_buf_free(&pack->raw);
	zf_sc_image_free(&pack->img);
	free(pack->chunks);
	free(pack);
}

static void pipe_free(struct zf_pipe *p);

static int fs_pipe_start(struct zf_fs *fs, unsigned int nthreads)
{
	struct zf_pipe *p;
	unsigned int i;
	int r;

	if (!nthreads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		nthreads = n < 1 ? 1 : n > ZF_PIPE_MAX_THREADS ? ZF_PIPE_MAX_THREADS : (unsigned)n;
	}
	p = zf_calloc(1, sizeof(*p));
	zf_mutex_init(&p->lock, ZF_RANK_PIPE, "pipe->lock");
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->threads = zf_calloc(nthreads, sizeof(*p->threads));
	p->fs = fs;
	for (i = 0; i < nthreads; i++) {
		r = -pthread_create(&p->threads[i], NULL, worker, p);
		if (r < 0) {
			zf_err("cannot start a compression worker: %s", strerror(-r));
			pipe_free(p);
			return r;
		}
		p->nthreads++;
	}
	fs->pipe = p; /* published whole: readers without fs->lock see it or NULL */
	return 0;
}

struct zf_pipe *fs_pipe_get(struct zf_fs *fs)
{
	if (!fs->pipe && fs->pipe_threads >= 0 && !fs->readonly &&
	    fs_pipe_start(fs, (unsigned int)fs->pipe_threads) < 0)
		fs->pipe_threads = -1; /* said why; append inline from now on */
	return fs->pipe;
}

void fs_pipe_stop(struct zf_fs *fs)
{
	if (!fs->pipe)
		return;
	pipe_free(fs->pipe);
	fs->pipe = NULL;
}

/* stop the workers and free p and its packs */
static void pipe_free(struct zf_pipe *p)
{
	struct zf_pack *pack, *next;
	unsigned int i;

	zf_mutex_lock(&p->lock);
	p->stop = 1;
	p->ra_n = 0;
	pthread_cond_broadcast(&p->work);
	zf_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* packs never reaped (a crash test abandons the fs): their chunks go
	 * with the table, which is freed right after */
	for (pack = p->head; pack; pack = next) {
		next = pack->next;
		fs_pack_free(pack);
	}
	for (pack = p->spare; pack; pack = next) {
		next = pack->next;
		fs_pack_free(pack);
	}
	for (i = 0; i < p->nidle; i++)
		zf_sc_packer_free(p->idle[i]);
	free(p->idle);
	free(p->threads);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->work);
	zf_mutex_destroy(&p->lock);
	free(p);
}

/*
 * Packs are reused: a pack's buffers are megabytes, and fresh ones cost a
 * page fault per 4 KiB on first touch and a copy per doubling while they
 * grow (a third of the write path's CPU before they were kept).
 */
struct zf_pack *fs_pack_cur(struct zf_fs *fs)
{
	struct zf_pipe *p = fs->pipe;
	struct zf_pack *pack = NULL;

	if (fs->pack)
		return fs->pack;
	if (p) {
		zf_mutex_lock(&p->lock);
		if ((pack = p->spare)) {
			p->spare = pack->next;
			p->nspare--;
		}
		zf_mutex_unlock(&p->lock);
	}
	if (!pack) {
		pack = zf_calloc(1, sizeof(*pack));
		pack->raw.p = zf_malloc(ZF_PACK_BYTES + ZF_CHUNK_MAX);
		pack->raw.cap = ZF_PACK_BYTES + ZF_CHUNK_MAX;
	}
	pack->next = NULL;
	pack->state = ZF_PACK_FILLING;
	pack->raw.len = 0;
	pack->n = 0;
	pack->err = 0;
	pack->sealed = 0;
	fs->pack = pack;
	return pack;
}

/* a reaped pack goes back to the spares (a few) or is freed */
static void pack_put(struct zf_fs *fs, struct zf_pack *pack)
{
	struct zf_pipe *p = fs->pipe;

	if (p) {
		zf_mutex_lock(&p->lock);
		if (p->nspare < p->nthreads + 1) { /* the ones a burst keeps in use */
			pack->next = p->spare;
			p->spare = pack;
			p->nspare++;
			pack = NULL;
		}
		zf_mutex_unlock(&p->lock);
	}
	if (pack)
		fs_pack_free(pack);
}

/* log pack's super-chunk record and forget the pack (fs->lock held) */
static void pack_log(struct zf_fs *fs, struct zf_pack *pack)
{
	uint32_t i, off = 0;

	for (i = 0; i < pack->n; i++) {
		ZF_BUG_ON(pack->chunks[i]->raw_off != off);
		off += pack->chunks[i]->len;
	}
	fs_log_sc(fs, ZF_REC_SC, &pack->loc, pack->chunks, pack->n);
	for (i = 0; i < pack->n; i++)
		if (pack->chunks[i]->pk == pack)
			pack->chunks[i]->pk = NULL;
	if (pack->sealed)
		fs_log_seal(fs, pack->sealed);
	pack_put(fs, pack);
}

/* build and append pack here, now (fs->lock held; no pipeline, or a retry) */
static int pack_inline(struct zf_fs *fs, struct zf_pack *pack)
{
	struct zf_sc_chunk *tab = zf_malloc(pack->n * sizeof(*tab));
	uint32_t i;
	int r;

	for (i = 0; i < pack->n; i++) {
		tab[i].id = pack->chunks[i]->id;
		tab[i].len = pack->chunks[i]->len;
	}
	r = zf_segstore_append(fs->seg, tab, pack->n, pack->raw.p, (uint32_t)pack->raw.len,
			       &pack->loc, &pack->sealed);
	free(tab);
	if (r < 0)
		zf_err("cannot append to segment store of '%s': %s", fs->dev_dir, strerror(-r));
	return r;
}

int fs_pack_submit(struct zf_fs *fs)
{
	struct zf_pack *pack = fs->pack;
	struct zf_pipe *p;
	int r;

	if (!pack || !pack->n)
		return 0;
	p = fs_pipe_get(fs);
	if (!p) {
		/* no workers (a read-only or repairing open): append it now */
		r = pack_inline(fs, pack);
		if (r < 0)
			return r;
		fs->pack = NULL;
		pack_log(fs, pack);
		return 0;
	}
	fs->pack = NULL;
	zf_mutex_lock(&p->lock);
	pack->ticket = p->next_ticket++;
	pack->state = ZF_PACK_QUEUED;
	if (p->tail)
		p->tail->next = pack;
	else
		p->head = pack;
	p->tail = pack;
	if (!p->todo)
		p->todo = pack;
	p->inflight++;
	p->working++;
	p->inflight_bytes += pack->raw.len;
	pthread_cond_signal(&p->work);
	zf_mutex_unlock(&p->lock);
	return 0;
}

int fs_pipe_reap(struct zf_fs *fs, int all)
{
	struct zf_pipe *p = fs->pipe;
	struct zf_pack *pack;
	int r = 0;

	if (!p)
		return 0;
	zf_mutex_lock(&p->lock);
	while ((pack = p->head)) {
		if (pack->state == ZF_PACK_QUEUED || pack->state == ZF_PACK_BUSY) {
			if (!all)
				break;
			zf_cond_wait(&p->done, &p->lock);
			continue;
		}
		if (pack->state == ZF_PACK_FAILED) {
			if (!all)
				break;
			/* later packs failed too (sticky): let them all settle,
			 * then append them here, in order */
			while (p->working)
				zf_cond_wait(&p->done, &p->lock);
			zf_mutex_unlock(&p->lock);
			r = pack_inline(fs, pack);
			zf_mutex_lock(&p->lock);
			if (r < 0)
				break;
			pack->state = ZF_PACK_DONE;
			if (!pack->next)
				p->err = 0; /* every failed pack is in the store now */
		}
		p->head = pack->next;
		if (!p->head)
			p->tail = NULL;
		p->inflight--;
		p->inflight_bytes -= pack->raw.len;
		pthread_cond_broadcast(&p->done);
		zf_mutex_unlock(&p->lock);
		pack_log(fs, pack);
		zf_mutex_lock(&p->lock);
	}
	zf_mutex_unlock(&p->lock);
	return r;
}

int fs_pipe_pending(struct zf_fs *fs)
{
	struct zf_pipe *p = fs->pipe;
	int n;

	if (!p)
		return 0;
	zf_mutex_lock(&p->lock);
	n = p->inflight != 0;
	zf_mutex_unlock(&p->lock);
	return n;
}

void fs_pipe_throttle(struct zf_fs *fs)
{
	struct zf_pipe *p = fs->pipe;

	if (!p)
		return;
	zf_mutex_lock(&p->lock);
	/*
	 * After a failed append (p->err) nothing drains until a commit
	 * retries: writers go on (their flushes and fsyncs report the error)
	 * rather than hang.
	 */
	while (p->inflight > p->nthreads * ZF_PIPE_PACKS_PER_THREAD && !p->err) {
		unsigned int before = p->inflight;

		if (p->inflight > p->working) {
			/* appended packs wait for a holder of fs->lock: be it */
			zf_mutex_unlock(&p->lock);
			fs_lock(fs);
			fs_pipe_reap(fs, 0);
			fs_unlock(fs);
			zf_mutex_lock(&p->lock);
			if (p->inflight < before)
				continue;
		}
		zf_cond_wait(&p->done, &p->lock);
	}
	zf_mutex_unlock(&p->lock);
}

void fs_pipe_readahead(struct zf_fs *fs, const struct zf_sc_loc *loc)
{
	struct zf_pipe *p = fs->pipe;
	unsigned int i;

	if (!p || !zf_segstore_has(fs->seg, loc->seg))
		return; /* evicted data is the object-storage tier's read-ahead */
	zf_mutex_lock(&p->lock);
	for (i = 0; i < p->ra_n; i++) {
		const struct zf_sc_loc *q = &p->ra[(p->ra_head + i) % ZF_PIPE_RA_MAX].loc;

		if (q->seg == loc->seg && q->off == loc->off)
			goto out_unlock;
	}
	if (p->ra_n == ZF_PIPE_RA_MAX) { /* drop the oldest */
		p->ra_head = (p->ra_head + 1) % ZF_PIPE_RA_MAX;
		p->ra_n--;
	}
	p->ra[(p->ra_head + p->ra_n) % ZF_PIPE_RA_MAX].loc = *loc;
	p->ra_n++;
	pthread_cond_signal(&p->work);
out_unlock:
	zf_mutex_unlock(&p->lock);
}

void fs_pipe_stats(struct zf_fs *fs, struct zf_pipe_stats *ret)
{
	struct zf_pipe *p = fs->pipe;

	memset(ret, 0, sizeof(*ret));
	if (!p)
		return;
	zf_mutex_lock(&p->lock);
	ret->threads = p->nthreads;
	ret->inflight_bytes = p->inflight_bytes;
	ret->packs = p->packs;
	ret->raw_packs = p->raw_packs;
	ret->fast_packs = p->fast_packs;
	ret->readahead = p->readahead;
	zf_mutex_unlock(&p->lock);
}
