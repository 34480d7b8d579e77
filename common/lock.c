/*
 * common/lock.c - ranked mutexes and the lock-order check (see lock.h)
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lock.h"
#include "common/log.h"

/* deeper than any path in zerofs takes; more is itself a bug */
#define ZF_LOCK_DEPTH 16

#if defined(ZF_DEBUG) || defined(__SANITIZE_ADDRESS__)
#define ZF_LOCK_CHECK_BUILD 1
#else
#define ZF_LOCK_CHECK_BUILD 0
#endif

static int check_on = -1;	/* -1: not decided yet */
static pthread_once_t check_once = PTHREAD_ONCE_INIT;

/* the locks this thread holds, in the order it took them */
static __thread const struct zf_mutex *held[ZF_LOCK_DEPTH];
static __thread unsigned int nheld;

static void check_decide(void)
{
	const char *e = getenv("ZF_LOCK_CHECK");

	if (__atomic_load_n(&check_on, __ATOMIC_RELAXED) < 0)
		__atomic_store_n(&check_on, e ? atoi(e) != 0 : ZF_LOCK_CHECK_BUILD,
				 __ATOMIC_RELAXED);
}

int zf_lock_checking(void)
{
	pthread_once(&check_once, check_decide);
	return __atomic_load_n(&check_on, __ATOMIC_RELAXED) > 0;
}

void zf_lock_check_enable(void)
{
	pthread_once(&check_once, check_decide);
	__atomic_store_n(&check_on, 1, __ATOMIC_RELAXED);
}

static void __attribute__((noreturn)) lock_bug(const char *what, const struct zf_mutex *mu, const struct zf_mutex *other)
{
	char line[256];

	if (other)
		snprintf(line, sizeof(line), "lock order: %s %s (rank %d) while holding %s (rank %d)",
			 what, mu->name, (int)mu->rank, other->name, (int)other->rank);
	else
		snprintf(line, sizeof(line), "lock order: %s %s (rank %d), which this thread "
			 "does not hold", what, mu->name, (int)mu->rank);
	zf_log(ZF_LOG_ERR, "internal bug: %s", line);
	abort();
}

/* the held lock that forbids taking mu (rank not below mu's), or NULL */
static const struct zf_mutex *blocker(const struct zf_mutex *mu)
{
	unsigned int i;

	for (i = 0; i < nheld; i++)
		if (held[i]->rank >= mu->rank)
			return held[i];
	return NULL;
}

static int held_at(const struct zf_mutex *mu)
{
	unsigned int i;

	for (i = nheld; i-- > 0;)
		if (held[i] == mu)
			return (int)i;
	return -1;
}

static void held_push(const struct zf_mutex *mu)
{
	if (nheld == ZF_LOCK_DEPTH)
		lock_bug("taking", mu, held[nheld - 1]);
	held[nheld++] = mu;
}

static void held_drop(const struct zf_mutex *mu)
{
	int i = held_at(mu);

	if (i < 0)
		lock_bug("releasing", mu, NULL);
	memmove(&held[i], &held[i + 1], (nheld - i - 1) * sizeof(*held));
	nheld--;
}

void zf_mutex_init(struct zf_mutex *mu, enum zf_lock_rank rank, const char *name)
{
	ZF_BUG_ON(rank <= 0 || rank >= ZF_RANK_MAX);
	pthread_mutex_init(&mu->m, NULL);
	mu->rank = rank;
	mu->name = name;
}

void zf_mutex_destroy(struct zf_mutex *mu)
{
	pthread_mutex_destroy(&mu->m);
}

void zf_mutex_lock(struct zf_mutex *mu)
{
	int check = zf_lock_checking();

	if (check) {
		const struct zf_mutex *b = blocker(mu);

		if (b)
			lock_bug("taking", mu, b);
	}
	pthread_mutex_lock(&mu->m);
	if (check)
		held_push(mu);
}

void zf_mutex_unlock(struct zf_mutex *mu)
{
	if (zf_lock_checking())
		held_drop(mu);
	pthread_mutex_unlock(&mu->m);
}

void zf_mutex_assert_held(const struct zf_mutex *mu)
{
	if (zf_lock_checking() && held_at(mu) < 0)
		lock_bug("expecting", mu, NULL);
}

/* waiting releases mu and takes it back: nothing held may rank after it */
static void wait_check(const struct zf_mutex *mu)
{
	unsigned int i;

	if (!zf_lock_checking())
		return;
	zf_mutex_assert_held(mu);
	for (i = 0; i < nheld; i++)
		if (held[i] != mu && held[i]->rank >= mu->rank)
			lock_bug("waiting on", mu, held[i]);
}

void zf_cond_wait(pthread_cond_t *c, struct zf_mutex *mu)
{
	wait_check(mu);
	pthread_cond_wait(c, &mu->m);
}

int zf_cond_timedwait(pthread_cond_t *c, struct zf_mutex *mu, const struct timespec *abstime)
{
	wait_check(mu);
	return pthread_cond_timedwait(c, &mu->m, abstime);
}
