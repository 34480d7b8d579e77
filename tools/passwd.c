/*
 * tools/passwd.c - an encrypted filesystem's passphrase: where a command
 * gets it (zf_tool_passphrase), and `zerofs passwd`, which wraps the same
 * master key with a new one (storage/keys.h) in the bucket and the dev-dir.
 *
 * A passphrase never comes from the command line (other users see it in
 * ps): $ZEROFS_PASSPHRASE, the first line of the file
 * $ZEROFS_PASSPHRASE_FILE, else a prompt on the terminal. passwd's new one
 * comes from $ZEROFS_NEW_PASSPHRASE(_FILE) or a prompt asked twice.
 * Exit codes of passwd: 0 changed, 1 failed (nothing changed), 2 bad
 * arguments.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "devdir/devdir.h"
#include "devdir/remote_conf.h"
#include "net/objstore.h"
#include "storage/bucket_keys.h"
#include "storage/keys.h"
#include "storage/superblock.h"
#include "tools/commands.h"

/* one line from the terminal, not echoed; its length or -errno */
static int tty_line(const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	FILE *tty = fopen("/dev/tty", "r+");
	int r = -ENOTTY;

	if (!tty)
		return -ENOTTY;
	fprintf(tty, "%s", prompt);
	fflush(tty);
	int echo_off = tcgetattr(fileno(tty), &old) == 0;

	if (echo_off) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	}
	if (fgets(buf, (int)len, tty)) {
		r = strchr(buf, '\n') || strlen(buf) + 1 < len ? 0 : -E2BIG; /* cut: refused */
		buf[strcspn(buf, "\r\n")] = 0;
		if (r == 0)
			r = (int)strlen(buf);
	}
	if (echo_off)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fprintf(tty, "\n");
	fclose(tty);
	return r;
}

int zf_tool_passphrase(const char *cmd, const char *var, int confirm, char *buf, size_t len)
{
	char name[64], again[1024];
	const char *v;
	int n, m;

	snprintf(name, sizeof(name), "%s_FILE", var);
	v = getenv(var);
	if (v) {
		n = strlen(v) < len ? (int)strlen(v) : -E2BIG;
		snprintf(buf, len, "%s", v);
		unsetenv(var); /* not inherited by what this process runs */
	} else if ((v = getenv(name))) {
		FILE *f = fopen(v, "r");

		if (!f || !fgets(buf, (int)len, f)) {
			fprintf(stderr, "zerofs %s: cannot read the passphrase from '%s' ($%s): %s\n",
				cmd, v, name, f ? "empty file" : strerror(errno));
			if (f)
				fclose(f);
			return -EINVAL;
		}
		/* a line that did not fit is not cut to what did */
		n = strchr(buf, '\n') || strlen(buf) + 1 < len || fgetc(f) == EOF ? 0 : -E2BIG;
		fclose(f);
		buf[strcspn(buf, "\r\n")] = 0;
		if (n == 0)
			n = (int)strlen(buf);
	} else {
		n = tty_line(confirm ? "New passphrase: " : "Passphrase: ", buf, len);
		if (n == -ENOTTY) {
			fprintf(stderr, "zerofs %s: a passphrase is needed: set $%s or $%s (a file), "
				"or run it on a terminal\n", cmd, var, name);
			return n;
		}
		if (n >= 0 && confirm) {
			m = tty_line("Again: ", again, sizeof(again));
			if (m != n || strcmp(again, buf)) {
				fprintf(stderr, "zerofs %s: the passphrases differ\n", cmd);
				n = -EINVAL;
			}
			sodium_memzero(again, sizeof(again));
		}
	}
	if (n == -E2BIG) {
		sodium_memzero(buf, len);
		fprintf(stderr, "zerofs %s: the passphrase is longer than %zu bytes\n", cmd, len - 1);
		return -EINVAL;
	}
	if (n == 0) {
		fprintf(stderr, "zerofs %s: the passphrase is empty\n", cmd);
		return -EINVAL;
	}
	return n;
}

/*
 * zerofs passwd: the new wrapping goes to <dev-dir>/keys.new (durable),
 * then to the bucket, then keys.new replaces keys. A crash before the PUT
 * changes nothing; after it, the bucket has the new passphrase and fsck
 * --repair (or the next passwd) finishes the rename.
 */
int zf_cmd_passwd(int argc, char **argv)
{
	char old[1024], new[1024], why[320], url[ZF_REMOTE_URL_MAX];
	uint8_t master[ZF_KEY_LEN], keys[ZF_KEYS_SIZE];
	struct zf_objstore *os = NULL;
	void *cur = NULL, *sbuf = NULL;
	const char *dev;
	size_t len, slen;
	struct zf_sb sb;
	int fd, r, n, m, bucket = 0;

	if (argc != 2 || argv[1][0] == '-') {
		if (argc == 2 && argv[1][0] == '-')
			return zf_tool_bad_option(argv);
		fprintf(stderr, "zerofs passwd: expected one dev-dir\n");
		return 2;
	}
	dev = argv[1];
	fd = open(dev, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && faccessat(fd, ZF_DEVDIR_REPLICA_MARK, F_OK, 0) == 0) {
		fprintf(stderr, "zerofs passwd: '%s' is a replica's cache-dir: change the "
			"passphrase on the writer's dev-dir\n", dev);
		close(fd);
		return 1;
	}
	if (fd < 0 || zf_read_file(fd, "superblock", &sbuf, &slen) < 0 ||
	    zf_sb_decode(sbuf, slen, &sb, why, sizeof(why)) < 0 || !(sb.incompat & ZF_FEAT_ENCRYPT) ||
	    zf_read_file(fd, ZF_KEYS_NAME, &cur, &len) < 0) {
		fprintf(stderr, "zerofs passwd: '%s' is not the dev-dir of an encrypted zerofs "
			"filesystem (its superblock, or its '%s' file)\n", dev, ZF_KEYS_NAME);
		free(sbuf);
		if (fd >= 0)
			close(fd);
		return 1;
	}
	free(sbuf);
	r = 1;
	n = zf_tool_passphrase("passwd", "ZEROFS_PASSPHRASE", 0, old, sizeof(old));
	if (n < 0)
		goto out;
	if (zf_keys_unwrap(cur, len, sb.fsid, old, (size_t)n, master, why, sizeof(why)) < 0) {
		fprintf(stderr, "zerofs passwd: cannot open '%s/%s': %s; nothing changed\n", dev,
			ZF_KEYS_NAME, why);
		goto out;
	}
	m = zf_tool_passphrase("passwd", "ZEROFS_NEW_PASSPHRASE", 1, new, sizeof(new));
	if (m < 0 || zf_keys_wrap(sb.fsid, master, new, (size_t)m, keys) < 0)
		goto out;
	n = zf_remote_conf_read(dev, url, sizeof(url));
	if (n < 0 && n != -ENOENT) {
		fprintf(stderr, "zerofs passwd: cannot read '%s/remote.conf': %s; nothing changed\n",
			dev, strerror(-n));
		goto out;
	}
	bucket = n == 0 && zf_remote_conf_is_bucket(url);
	if (zf_publish_file(fd, ZF_KEYS_NEW_NAME, keys, sizeof(keys)) < 0) {
		fprintf(stderr, "zerofs passwd: cannot write '%s/%s'; nothing changed\n", dev,
			ZF_KEYS_NEW_NAME);
		goto out;
	}
	/* the bucket next: a restore anywhere takes the new one from now on */
	if (bucket && (zf_objstore_open(url, NULL, &os) < 0 ||
		       zf_objstore_put(os, ZF_BKEY_KEYS, keys, sizeof(keys)) < 0)) {
		unlinkat(fd, ZF_KEYS_NEW_NAME, 0);
		fprintf(stderr, "zerofs passwd: cannot put the new 'keys' into '%s'; nothing "
			"changed\n", url);
		goto out;
	}
	if (renameat(fd, ZF_KEYS_NEW_NAME, fd, ZF_KEYS_NAME) < 0 || zf_fsync_dir(fd) < 0) {
		fprintf(stderr, "zerofs passwd: the bucket has the new passphrase, but '%s/%s' "
			"could not replace '%s' (%s): run 'zerofs fsck --repair %s'\n", dev,
			ZF_KEYS_NEW_NAME, ZF_KEYS_NAME, strerror(errno), dev);
		goto out;
	}
	printf("passphrase of '%s' changed%s%s%s\n", dev, bucket ? " (and in the bucket '" : "",
	       bucket ? url : "", bucket ? "')" : "");
	r = 0;
out:
	sodium_memzero(old, sizeof(old));
	sodium_memzero(new, sizeof(new));
	sodium_memzero(master, sizeof(master));
	zf_objstore_close(os);
	free(cur);
	close(fd);
	return r;
}
