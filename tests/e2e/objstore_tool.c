/*
 * tests/e2e/objstore_tool.c - drive one net/objstore call from the shell
 *
 *   objstore_tool [options] URL put KEY FILE|-
 *   objstore_tool [options] URL get KEY [OFF LEN]     (bytes to stdout)
 *   objstore_tool [options] URL head KEY              ("SIZE ETAG")
 *   objstore_tool [options] URL list [PREFIX]         ("KEY SIZE", sorted)
 *   objstore_tool [options] URL delete KEY
 *   objstore_tool [options] URL mdelete KEY...
 *   objstore_tool [options] URL threads N COUNT    (N threads share one store:
 *                           each puts, range-gets, checks and deletes COUNT
 *                           64 KiB objects under threads/; prints "ok")
 *
 * Options map to struct zf_objstore_opts: --endpoint URL, --region R,
 * --path-style, --vhost, --part-size N, --threshold N, --page-size N,
 * --timeout MS, --connect-timeout MS, --attempts N, --retry-base MS,
 * --no-tls-verify, --create, --debug; --stats prints the store's counters
 * to stderr at the end ("stats: requests=N retries=N errors=N").
 * On failure prints "objstore_tool: CMD 'KEY': <strerror> (ENAME)" and
 * exits 1; bad usage exits 2. A test program, not installed.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "net/objstore.h"

static void usage(void)
{
	fprintf(stderr, "usage: objstore_tool [options] URL put|get|head|list|delete|mdelete ...\n");
	exit(2);
}

struct keys {
	char **v;
	unsigned long long *size;
	size_t n;
};

static int collect(void *ctx, const char *key, uint64_t size)
{
	struct keys *k = ctx;

	k->v = zf_realloc(k->v, (k->n + 1) * sizeof(*k->v));
	k->size = zf_realloc(k->size, (k->n + 1) * sizeof(*k->size));
	k->v[k->n] = zf_strdup(key);
	k->size[k->n++] = size;
	return 0;
}

static int cmp_idx(const void *a, const void *b, void *arg)
{
	char **v = arg;

	return strcmp(v[*(const size_t *)a], v[*(const size_t *)b]);
}

struct worker {
	struct zf_objstore *st;
	int id, count, failures;
};

#define WORKER_OBJ (64 * 1024)

static void *worker(void *arg)
{
	struct worker *w = arg;
	uint8_t *data = zf_malloc(WORKER_OBJ);
	char key[64];
	int i;
	size_t j;

	for (i = 0; i < w->count; i++) {
		void *buf;
		size_t n;

		snprintf(key, sizeof(key), "threads/w%d/o%d", w->id, i);
		for (j = 0; j < WORKER_OBJ; j++)
			data[j] = (uint8_t)(j * 31 + i * 7 + w->id);
		if (zf_objstore_put(w->st, key, data, WORKER_OBJ) < 0 ||
		    zf_objstore_get(w->st, key, 1000, 20000, &buf, &n) < 0) {
			w->failures++;
			continue;
		}
		if (n != 20000 || memcmp(buf, data + 1000, n))
			w->failures++;
		free(buf);
		if (zf_objstore_delete(w->st, key) < 0)
			w->failures++;
	}
	free(data);
	return NULL;
}

static int run_threads(struct zf_objstore *st, int n, int count)
{
	struct worker *w = zf_calloc(n, sizeof(*w));
	pthread_t *th = zf_calloc(n, sizeof(*th));
	int i, failures = 0;

	/*
	 * s3rver removes a directory it has just seen empty with rm -r, which
	 * races with a put into it; a keeper object makes sure "threads/" never
	 * is empty (each worker's own directory is used by that worker alone)
	 */
	if (zf_objstore_put(st, "threads/keep", "", 0) < 0)
		failures++;
	for (i = 0; i < n; i++) {
		w[i] = (struct worker){ st, i, count, 0 };
		if (pthread_create(&th[i], NULL, worker, &w[i]))
			abort();
	}
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		failures += w[i].failures;
	}
	free(w);
	free(th);
	if (zf_objstore_delete(st, "threads/keep") < 0)
		failures++;
	if (failures)
		return -EIO;
	printf("ok\n");
	return 0;
}

static int read_all(const char *path, struct zf_buf *b)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t n;

	if (!f)
		return -errno;
	do {
		zf_buf_reserve(b, 1 << 20);
		n = fread(b->p + b->len, 1, 1 << 20, f);
		b->len += n;
	} while (n > 0);
	if (f != stdin)
		fclose(f);
	return 0;
}

static unsigned long long num(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s)
		usage();
	if (*end == 'K' || *end == 'k')
		v <<= 10;
	else if (*end == 'M' || *end == 'm')
		v <<= 20;
	return v;
}

int main(int argc, char **argv)
{
	struct zf_objstore_opts o = { 0 };
	struct zf_objstore *st = NULL;
	struct zf_objstore_counters c;
	const char *url, *cmd, *key = "";
	int i, r, stats = 0;

	zf_log_init("objstore_tool", 0, ZF_LOG_WARN);
	for (i = 1; i < argc && !strncmp(argv[i], "--", 2); i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--path-style"))
			o.addressing = ZF_OBJSTORE_ADDR_PATH;
		else if (!strcmp(a, "--vhost"))
			o.addressing = ZF_OBJSTORE_ADDR_VHOST;
		else if (!strcmp(a, "--no-tls-verify"))
			o.tls_no_verify = 1;
		else if (!strcmp(a, "--create"))
			o.create = 1;
		else if (!strcmp(a, "--debug"))
			zf_log_set_level(ZF_LOG_DEBUG);
		else if (!strcmp(a, "--stats"))
			stats = 1;
		else if (!v)
			usage();
		else if (i++, !strcmp(a, "--endpoint"))
			o.endpoint = v;
		else if (!strcmp(a, "--region"))
			o.region = v;
		else if (!strcmp(a, "--part-size"))
			o.part_size = num(v);
		else if (!strcmp(a, "--threshold"))
			o.multipart_threshold = num(v);
		else if (!strcmp(a, "--page-size"))
			o.list_page_size = num(v);
		else if (!strcmp(a, "--timeout"))
			o.timeout_ms = num(v);
		else if (!strcmp(a, "--connect-timeout"))
			o.connect_timeout_ms = num(v);
		else if (!strcmp(a, "--attempts"))
			o.max_attempts = num(v);
		else if (!strcmp(a, "--retry-base"))
			o.retry_base_ms = num(v);
		else
			usage();
	}
	if (argc - i < 2)
		usage();
	url = argv[i++];
	cmd = argv[i++];
	r = zf_objstore_open(url, &o, &st);
	if (r < 0) {
		fprintf(stderr, "objstore_tool: cannot open '%s': %s (%s)\n", url, strerror(-r),
			strerrorname_np(-r));
		return 1;
	}
	if (!strcmp(cmd, "put") && argc - i == 2) {
		struct zf_buf b = { 0 };

		key = argv[i];
		r = read_all(argv[i + 1], &b);
		if (r == 0)
			r = zf_objstore_put(st, key, b.p, b.len);
		zf_buf_free(&b);
	} else if (!strcmp(cmd, "get") && (argc - i == 1 || argc - i == 3)) {
		uint64_t off = 0;
		size_t len = 0, n;
		void *buf;

		key = argv[i];
		if (argc - i == 3) {
			off = num(argv[i + 1]);
			len = num(argv[i + 2]);
		}
		r = zf_objstore_get(st, key, off, len, &buf, &n);
		if (r == 0) {
			if (fwrite(buf, 1, n, stdout) != n || fflush(stdout))
				r = -EIO;
			free(buf);
		}
	} else if (!strcmp(cmd, "head") && argc - i == 1) {
		struct zf_objstore_stat s;

		key = argv[i];
		r = zf_objstore_head(st, key, &s);
		if (r == 0)
			printf("%llu %s\n", (unsigned long long)s.size, s.etag);
	} else if (!strcmp(cmd, "list") && argc - i <= 1) {
		struct keys k = { 0 };
		size_t j, *idx;

		key = argc - i == 1 ? argv[i] : "";
		r = zf_objstore_list(st, key, collect, &k);
		idx = zf_calloc(k.n + 1, sizeof(*idx));
		for (j = 0; j < k.n; j++)
			idx[j] = j;
		qsort_r(idx, k.n, sizeof(*idx), cmp_idx, k.v);
		for (j = 0; r == 0 && j < k.n; j++)
			printf("%s %llu\n", k.v[idx[j]], k.size[idx[j]]);
		for (j = 0; j < k.n; j++)
			free(k.v[j]);
		free(k.v);
		free(k.size);
		free(idx);
	} else if (!strcmp(cmd, "threads") && argc - i == 2) {
		key = "threads/";
		r = run_threads(st, (int)num(argv[i]), (int)num(argv[i + 1]));
	} else if (!strcmp(cmd, "delete") && argc - i == 1) {
		key = argv[i];
		r = zf_objstore_delete(st, key);
	} else if (!strcmp(cmd, "mdelete") && argc - i >= 1) {
		key = argv[i];
		r = zf_objstore_multi_delete(st, (const char *const *)argv + i, argc - i);
	} else {
		zf_objstore_close(st);
		usage();
	}
	zf_objstore_counters(st, &c);
	if (stats)
		fprintf(stderr, "stats: requests=%llu retries=%llu errors=%llu\n",
			(unsigned long long)c.requests, (unsigned long long)c.retries,
			(unsigned long long)c.errors);
	zf_objstore_close(st);
	if (r < 0) {
		fprintf(stderr, "objstore_tool: %s '%s': %s (%s)\n", cmd, key, strerror(-r),
			strerrorname_np(-r));
		return 1;
	}
	return 0;
}
