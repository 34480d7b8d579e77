/*
 * tests/unit/check_lock.c - unit tests for common/lock.c: the lock order is
 * enforced (taking, releasing, waiting out of order abort) and the order
 * itself allows what it lists, per thread.
 *
 * Every case runs in its own process (Check's fork mode): the abort cases
 * must die of SIGABRT, and checking is switched on first in each.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "common/lock.h"

static struct zf_mutex fs_lock, rm_lock, seg_lock, pool_lock;

static void setup(void)
{
	zf_lock_check_enable();
	zf_mutex_init(&fs_lock, ZF_RANK_FS, "fs->lock");
	zf_mutex_init(&rm_lock, ZF_RANK_REMOTE, "rm->lock");
	zf_mutex_init(&seg_lock, ZF_RANK_SEG, "st->lock");
	zf_mutex_init(&pool_lock, ZF_RANK_S3_POOL, "pool_lock");
}

START_TEST(in_order)
{
	ck_assert(zf_lock_checking());
	zf_mutex_lock(&fs_lock);
	zf_mutex_lock(&rm_lock);
	zf_mutex_lock(&seg_lock);
	zf_mutex_assert_held(&rm_lock);
	/* releases in any order; then the same locks again */
	zf_mutex_unlock(&rm_lock);
	zf_mutex_unlock(&fs_lock);
	zf_mutex_lock(&pool_lock);
	zf_mutex_unlock(&pool_lock);
	zf_mutex_unlock(&seg_lock);
	zf_mutex_lock(&rm_lock);
	zf_mutex_unlock(&rm_lock);
}
END_TEST

START_TEST(out_of_order)
{
	zf_mutex_lock(&rm_lock);
	zf_mutex_lock(&fs_lock);	/* fs->lock ranks before rm->lock */
}
END_TEST

START_TEST(twice)
{
	zf_mutex_lock(&seg_lock);
	zf_mutex_lock(&seg_lock);	/* a self-deadlock: reported, not hung */
}
END_TEST

START_TEST(release_unheld)
{
	zf_mutex_unlock(&rm_lock);
}
END_TEST

START_TEST(assert_unheld)
{
	zf_mutex_assert_held(&fs_lock);
}
END_TEST

START_TEST(wait_inverted)
{
	pthread_cond_t c = PTHREAD_COND_INITIALIZER;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	zf_mutex_lock(&fs_lock);
	zf_mutex_lock(&rm_lock);
	/* waiting gives fs->lock up and takes it back while rm->lock is held */
	zf_cond_timedwait(&c, &fs_lock, &ts);
}
END_TEST

START_TEST(wait_in_order)
{
	pthread_cond_t c = PTHREAD_COND_INITIALIZER;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	zf_mutex_lock(&fs_lock);
	zf_mutex_lock(&rm_lock);
	ck_assert_int_ne(zf_cond_timedwait(&c, &rm_lock, &ts), 0); /* past: times out */
	zf_mutex_assert_held(&rm_lock);
	zf_mutex_unlock(&rm_lock);
	zf_mutex_unlock(&fs_lock);
}
END_TEST

static void *other_thread(void *arg)
{
	(void)arg;
	/* what another thread holds is no concern of this one's order */
	zf_mutex_lock(&fs_lock);
	zf_mutex_unlock(&fs_lock);
	return NULL;
}

START_TEST(per_thread)
{
	pthread_t t;

	zf_mutex_lock(&seg_lock);
	ck_assert_int_eq(pthread_create(&t, NULL, other_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	zf_mutex_unlock(&seg_lock);
}
END_TEST

static Suite *lock_suite(void)
{
	Suite *s = suite_create("lock");
	TCase *tc = tcase_create("order");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, in_order);
	tcase_add_test(tc, wait_in_order);
	tcase_add_test(tc, per_thread);
	tcase_add_test_raise_signal(tc, out_of_order, SIGABRT);
	tcase_add_test_raise_signal(tc, twice, SIGABRT);
	tcase_add_test_raise_signal(tc, release_unheld, SIGABRT);
	tcase_add_test_raise_signal(tc, assert_unheld, SIGABRT);
	tcase_add_test_raise_signal(tc, wait_inverted, SIGABRT);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(lock_suite());
	int failed;

	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
