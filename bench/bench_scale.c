/*
 * bench/bench_scale.c - open time and resident memory of a big inode table
 *
 *   bench/bench_scale [inodes=1000000] [dirs=3000] [tail=50000]
 *
 * Builds a filesystem of `inodes` empty files spread over `dirs`
 * directories (closed cleanly: one checkpoint), then adds `tail` more files
 * without a checkpoint (a log tail to replay), and abandons it as a crash
 * would. Then, in a fresh process, measures zf_fs_open() wall time and the
 * resident set (VmRSS, VmHWM) after it. Targets: < 2 s and < 300 MB for one
 * million inodes.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/fs.h"

static long status_kb(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key) + 1);
	if (f)
		fclose(f);
	return v;
}

static double now_s(void)
{
	return zf_mono_ns() / 1e9;
}

static int die(const char *what, int r)
{
	fprintf(stderr, "bench_scale: %s: %s\n", what, strerror(-r));
	exit(1);
}

static void populate(const char *dir, long inodes, long dirs, long tail)
{
	struct zf_open_opts oo = { .ckpt_bytes = 1ull << 40 };
	uint64_t *dino = malloc(dirs * sizeof(*dino));
	struct zf_attr a;
	struct zf_fs *fs;
	char name[64];
	double t0 = now_s();
	long i;
	int r;

	r = zf_fs_mkfs(dir, NULL);
	if (r < 0)
		die("mkfs", r);
	r = zf_fs_open(dir, &oo, &fs);
	if (r < 0)
		die("open", r);
	for (i = 0; i < dirs; i++) {
		snprintf(name, sizeof(name), "dir%05ld", i);
		r = zf_fs_mkdir(fs, 1, name, 0755, 1000, 1000, &a);
		if (r < 0)
			die("mkdir", r);
		dino[i] = a.ino;
	}
	for (i = 0; i < inodes + tail; i++) {
		if (i == inodes) {
			/* everything so far goes into one checkpoint */
			r = zf_fs_checkpoint(fs);
			if (r < 0)
				die("checkpoint", r);
		}
		snprintf(name, sizeof(name), "file-%09ld.c", i);
		r = zf_fs_mknod(fs, dino[i % dirs], name, S_IFREG | 0644, 0, 1000, 1000, &a);
		if (r < 0)
			die("mknod", r);
		if (i % 20000 == 0 && (r = zf_fs_sync(fs)) < 0)
			die("sync", r);
	}
	r = zf_fs_sync(fs);
	if (r < 0)
		die("sync", r);
	zf_fs_abandon(fs); /* leave the tail in the log, as a crash would */
	printf("built %ld inodes in %ld directories + %ld in the log tail: %.1f s\n", inodes, dirs,
	       tail, now_s() - t0);
	free(dino);
}

static void measure(const char *dir)
{
	struct zf_fs_stats st;
	struct zf_fs *fs;
	double t0;
	long rss0 = status_kb("VmRSS");
	int r;

	t0 = now_s();
	r = zf_fs_open(dir, NULL, &fs);
	if (r < 0)
		die("open", r);
	printf("open: %.3f s\n", now_s() - t0);
	zf_fs_stats(fs, &st);
	printf("inodes after open: %llu\n", (unsigned long long)st.inodes);
	printf("resident after open: %.1f MB (peak %.1f MB, before open %.1f MB)\n",
	       status_kb("VmRSS") / 1024.0, status_kb("VmHWM") / 1024.0, rss0 / 1024.0);
	zf_fs_abandon(fs);
}

int main(int argc, char **argv)
{
	long inodes = argc > 1 ? atol(argv[1]) : 1000000;
	long dirs = argc > 2 ? atol(argv[2]) : 3000;
	long tail = argc > 3 ? atol(argv[3]) : 50000;
	char dir[] = "/tmp/zf-scale-XXXXXX", cmd[64];
	pid_t pid;
	int status;

	if (argc == 3 && !strcmp(argv[1], "--measure")) {
		measure(argv[2]);
		return 0;
	}
	if (!mkdtemp(dir))
		return 1;
	populate(dir, inodes, dirs, tail);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* a fresh program image: no memory left over from building */
		execl("/proc/self/exe", argv[0], "--measure", dir, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	snprintf(cmd, sizeof(cmd), "ls -la %s/meta", dir);
	if (system(cmd) != 0)
		return 1;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
