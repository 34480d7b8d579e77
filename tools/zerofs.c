/*
 * tools/zerofs.c - the zerofs command: one table of its subcommands, from
 * which the global usage, each command's --help and the dispatch come;
 * the helpers the commands share to say what their arguments name. The
 * commands themselves live a group a file (tools/commands.h). The only
 * place in the tree, with them, that exits the process.
 *
 * Exit codes: 0 success, 1 operation failed or refused, 2 bad arguments;
 * each command's file names its others (mkfs --restore --allow-loss and
 * umount: 3; fsck follows e2fsck: 0, 1, 4, 8).
 *
 * man/zerofs.8.scd (the man page) says the same as this table at more
 * length; tests/e2e/24-help.sh checks that every command here is there.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/control.h"
#include "devdir/devdir.h"
#include "devdir/mountinfo.h"
#include "tools/commands.h"
#include "tools/sync.h"
#include "tools/wset.h"

struct command {
	const char *name;
	const char *args;	/* what follows the name in the usage line */
	const char *summary;	/* one line, for the global usage */
	const char *help;	/* its options and exit codes, for --help */
	int (*run)(int argc, char **argv);
};

static int cmd_pin(int argc, char **argv)
{
	return zf_cmd_pin(argc, argv, 1);
}

static int cmd_unpin(int argc, char **argv)
{
	return zf_cmd_pin(argc, argv, 0);
}

static int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "zerofs version: takes no arguments\n");
		return 2;
	}
	printf("zerofs %s\n", PACKAGE_VERSION);
	return 0;
}

static const struct command commands[] = {
	{ "mkfs", "[--force] [--zstd-level N] [--remote URL|none] [--no-check] [--encrypt]\n"
		  "       <dev-dir>\n"
		  "       zerofs mkfs --restore URL [--allow-loss] [--verify-data] <dev-dir>",
	  "format a dev-dir, or rebuild one from a bucket",
	  "Format <dev-dir> (created if missing; it must be empty) for a new filesystem.\n"
	  "Its bucket is --remote URL, by default zerofs.conf's remote (zerofs config),\n"
	  "else file://<dev-dir>.bucket.\n"
	  "\n"
	  "  --remote URL        the bucket: file:///abs/dir or s3://bucket[/prefix][?params]\n"
	  "                      (params: endpoint=URL, region=NAME, addressing=path|vhost,\n"
	  "                      tls_verify=0|1, profile=NAME); 'none': no bucket\n"
	  "  --no-check          do not check the --remote bucket first (by default its URL,\n"
	  "                      credentials and a test object written, read back and\n"
	  "                      deleted; a failure formats nothing)\n"
	  "  --force             format a directory that holds files (only meta/ and seg/\n"
	  "                      are replaced) or a filesystem\n"
	  "  --zstd-level N      compression level, 1..19 (3)\n"
	  "  --encrypt           encrypt everything that goes to the bucket (XChaCha20-\n"
	  "                      Poly1305) under a new master key wrapped by a passphrase\n"
	  "                      (Argon2id): $ZEROFS_PASSPHRASE, the file\n"
	  "                      $ZEROFS_PASSPHRASE_FILE, or asked on the terminal; a\n"
	  "                      restore needs it, mounts of this dev-dir do not\n"
	  "  --restore URL       rebuild <dev-dir> from the bucket at URL; every metadata\n"
	  "                      object is verified and a damaged bucket refused\n"
	  "  --allow-loss        with --restore: restore what verifies, name what is lost\n"
	  "                      (exit 3)\n"
	  "  --verify-data       with --restore: also verify every data object\n"
	  "\n"
	  "Exit: 0 done, 1 failed (nothing formatted), 2 bad arguments or bucket URL,\n"
	  "3 restored with --allow-loss, but less than the bucket held.\n",
	  zf_cmd_mkfs },
	{ "mount", "[-f] [-d] [-o OPTIONS] [--replica URL] [--snapshot NAME] <dev-dir> <mountpoint>",
	  "serve a dev-dir's filesystem at a mountpoint",
	  "Serve the filesystem of <dev-dir> at <mountpoint> (an empty directory), in the\n"
	  "background once it is mounted. An empty <dev-dir> with a bucket (-o remote=URL)\n"
	  "is restored from the bucket first.\n"
	  "\n"
	  "With --replica URL, mount the filesystem in the bucket at URL read-only, on\n"
	  "any machine, while its writer goes on: <dev-dir> is the replica's own cache-dir\n"
	  "(an empty directory the first time; metadata comes at once, data as it is\n"
	  "read). It follows the writer within the poll interval (+ the writer's upload\n"
	  "delay), takes no lease and writes nothing to the bucket; 'zerofs stats' says\n"
	  "how far behind it is.\n"
	  "\n"
	  "  -f, --foreground    stay in the foreground (logs on stderr); exit 3 when it\n"
	  "                      stops with uploads pending\n"
	  "  -d, --debug         foreground, and libfuse logs every request (debugging)\n"
	  "  --cache-size SIZE   the same as -o cache_size=SIZE\n"
	  "  --replica URL       the same as -o replica=URL\n"
	  "  --snapshot NAME     the same as -o snapshot=NAME\n"
	  "  -o OPTIONS          comma-separated (defaults: zerofs.conf, 'zerofs config'):\n"
	  "     remote=URL          the bucket (default: the dev-dir's remote.conf)\n"
	  "     cache_size=SIZE     dev-dir budget for data (e.g. 64M; default unlimited):\n"
	  "                         beyond it, data the bucket holds is evicted\n"
	  "     fetch_timeout=SECS  a read of evicted data fails with EIO after this (30)\n"
	  "     write_wait=SECS     writers wait this long for room under cache_size (120)\n"
	  "     max_delay=SECS      data this old goes up to the bucket even if its segment\n"
	  "                         is not full (1)\n"
	  "     merge_after=N       the small segments that leaves are merged once N went\n"
	  "                         up (64)\n"
	  "     commit=SECS         buffered data is made durable this often (5)\n"
	  "     timeout=SECS        kernel attribute cache (1)\n"
	  "     ckpt=MIB            log written between checkpoints (64)\n"
	  "     mem=SIZE            memory of the data path: write buffers, compression\n"
	  "                         pipeline, decompressed cache (256M)\n"
	  "     nonempty            mount over a directory that is not empty\n"
	  "     log=FILE|syslog|stderr  the daemon's messages (default: stderr with -f,\n"
	  "                         else syslog, or <dev-dir>/zerofs.log without /dev/log)\n"
	  "     log_level=LEVEL     error, warn, info or debug (warn)\n"
	  "     metrics_file=PATH   write 'zerofs stats --prometheus' to PATH (absolute)\n"
	  "                         for node_exporter's textfile collector\n"
	  "     metrics_interval=SECS  how often (15)\n"
	  "     replica=URL         a read-only replica of the filesystem in that bucket\n"
	  "     poll=SECS           how often a replica looks for the writer's news (1)\n"
	  "     snapshot=NAME       mount that snapshot, read-only ('zerofs snapshot')\n"
	  "     allow_other, ro, ...  any FUSE option\n"
	  "\n"
	  "make install puts mount.fuse.zerofs in /sbin, where mount(8) looks, for\n"
	  "mount -t fuse.zerofs and /etc/fstab (_netdev: mount once the network is up):\n"
	  "  /srv/zerofs-dev  /mnt/work  fuse.zerofs  _netdev,allow_other  0 0\n"
	  "\n"
	  "Exit: 0 (unmounted cleanly, -f), 1 failed, 2 bad arguments, 3 (-f) stopped\n"
	  "with uploads pending.\n",
	  zf_cmd_mount },
	{ "umount", "[--timeout SECONDS] <mountpoint>",
	  "upload what is pending, unmount, wait until flushed",
	  "Upload what is pending (progress on a terminal), unmount, and wait until the\n"
	  "daemon has flushed and let go of the dev-dir. 'unmount' is the same.\n"
	  "\n"
	  "  --timeout SECONDS   give up waiting for the bucket once it took nothing for\n"
	  "                      this long (default: the mount's write_wait)\n"
	  "\n"
	  "Exit: 0 done, 1 failed, 2 bad arguments, 3 unmounted but the bucket still lacks\n"
	  "data (it stays in the dev-dir; the next mount uploads it).\n",
	  zf_cmd_umount },
	{ "sync", "[--timeout SECONDS] <mountpoint>",
	  "return once all written is in the bucket",
	  "Return once everything written to <mountpoint> is in the bucket (progress on a\n"
	  "terminal).\n"
	  "\n"
	  "  --timeout SECONDS   give up, say what is pending and exit 1 once the bucket\n"
	  "                      took nothing for this long (default: the mount's\n"
	  "                      write_wait, 120)\n"
	  "\n"
	  "Exit: 0 done, 1 gave up or failed, 2 bad arguments.\n",
	  zf_cmd_sync },
	{ "stats", "[--bytes|--json|--prometheus] <mountpoint|dev-dir>",
	  "space, dedup, compression, memory, the bucket",
	  "Space, dedup and compression, memory, what is pending upload and the bucket's\n"
	  "state (\"offline since\", \"uploads: failing since\"). Of a mount: asked of its\n"
	  "daemon; of an unmounted dev-dir: read from it, without the bucket. Sizes in\n"
	  "KiB, MiB, ...\n"
	  "\n"
	  "  -b, --bytes         sizes as plain byte counts (for scripts)\n"
	  "  -j, --json          one JSON object: sizes in bytes (keys *_bytes), times in\n"
	  "                      seconds, a ratio that cannot be told null\n"
	  "  -p, --prometheus    Prometheus's text format: zerofs_* metrics, counters\n"
	  "                      *_total, sizes *_bytes (as -o metrics_file= writes it)\n"
	  "\n"
	  "Exit: 0 done, 1 failed, 2 bad arguments.\n",
	  zf_cmd_stats },
	{ "fsck", "[--verify-data] [--repair] [-q] <dev-dir>",
	  "check a dev-dir and its bucket; repair",
	  "Check the store of an unmounted <dev-dir> and its bucket; name every damaged\n"
	  "file and byte range.\n"
	  "\n"
	  "  --verify-data       also read and verify every chunk (local and in the bucket)\n"
	  "  --repair            fix what can be fixed: lost metadata rebuilt from the\n"
	  "                      bucket, else what is lost marked (reads give EIO)\n"
	  "  -q, --quiet         print nothing; the exit code says it\n"
	  "\n"
	  "Exit (as e2fsck): 0 clean, 1 errors repaired, 4 errors left, 8 cannot check\n"
	  "(no dev-dir, mounted, the bucket unreachable, bad arguments).\n",
	  zf_cmd_fsck },
	{ "gc", "[--dry-run] [--max-waste PCT] <dev-dir|mountpoint>",
	  "give back the space of deleted data",
	  "Reclaim the space of deleted data, in the dev-dir and in the bucket. Given a\n"
	  "mountpoint, the mounted filesystem collects while it serves. Safe to kill and\n"
	  "to rerun.\n"
	  "\n"
	  "  -n, --dry-run       say what would be freed, change nothing\n"
	  "  -w, --max-waste PCT rewrite segments until at most PCT % of the live bytes\n"
	  "                      are dead (5)\n"
	  "\n"
	  "Exit: 0 done, 1 failed (or the dev-dir is mounted: use the mountpoint),\n"
	  "2 bad arguments.\n",
	  zf_cmd_gc },
	{ "lease-break", "[--force] <URL>",
	  "free a bucket whose writer is gone",
	  "Delete the lease of the bucket at <URL>: a writer (a mount) that is gone for\n"
	  "good holds it until it expires. Refused while the holder is alive on this host.\n"
	  "\n"
	  "  -f, --force         break it even then (that writer then stops uploading)\n"
	  "\n"
	  "Exit: 0 done (or no lease), 1 refused or failed, 2 bad arguments.\n",
	  zf_cmd_lease_break },
	{ "passwd", "<dev-dir>",
	  "change an encrypted filesystem's passphrase",
	  "Wrap the master key of the encrypted filesystem of <dev-dir> with a new\n"
	  "passphrase, in its bucket and in <dev-dir>; no data is encrypted again. The\n"
	  "old passphrase comes from $ZEROFS_PASSPHRASE or $ZEROFS_PASSPHRASE_FILE, the\n"
	  "new one from $ZEROFS_NEW_PASSPHRASE or $ZEROFS_NEW_PASSPHRASE_FILE, else\n"
	  "each is asked on the terminal. The old passphrase no longer restores it.\n"
	  "\n"
	  "Exit: 0 changed, 1 failed (nothing changed), 2 bad arguments.\n",
	  zf_cmd_passwd },
	{ "snapshot", "create|delete NAME <mountpoint|dev-dir> | list <mountpoint|dev-dir>",
	  "keep the filesystem as it is now, by name",
	  "create: keep the filesystem as it is now as snapshot NAME: a checkpoint,\n"
	  "no data copied; with a bucket it goes there too (after a sync), so a restore\n"
	  "brings it back. gc keeps every byte a snapshot holds until it is deleted.\n"
	  "delete: forget it (the next gc frees what only it held). list: the snapshots,\n"
	  "with when each was made. A snapshot mounts read-only on its own:\n"
	  "'zerofs mount --snapshot NAME <dev-dir> <mnt>' (the dev-dir not mounted), or\n"
	  "'zerofs mount --replica URL --snapshot NAME <cache-dir> <mnt>' anywhere.\n"
	  "NAME: 1 to 48 letters, digits, '.', '_' and '-'.\n"
	  "\n"
	  "Exit: 0 done, 1 failed (exists, not found, the bucket did not take it),\n"
	  "2 bad arguments.\n",
	  zf_cmd_snapshot },
	{ "pin", "<path>...",
	  "keep files local, for offline work",
	  "Keep the data of files on a zerofs mount in the dev-dir (fetched now when only\n"
	  "in the bucket), for offline work. Directories: recursively, and what is made in\n"
	  "them later. Pins survive remount, crash and restore; they may take 3/4 of\n"
	  "cache_size. 'unpin' undoes it.\n"
	  "\n"
	  "Exit: 0 done, 1 failed (a pin beyond the budget is refused), 2 bad arguments.\n",
	  cmd_pin },
	{ "unpin", "<path>...",
	  "undo pin",
	  "Let pinned files be evicted again (directories: recursively).\n"
	  "\n"
	  "Exit: 0 done, 1 failed, 2 bad arguments.\n",
	  cmd_unpin },
	{ "warmup", "<path>...",
	  "fetch files now",
	  "Fetch now the data of files (directories: recursively) that is only in the\n"
	  "bucket; a progress bar on a terminal.\n"
	  "\n"
	  "Exit: 0 done, 1 failed, 2 bad arguments.\n",
	  zf_cmd_warmup },
	{ "evict", "<path>...",
	  "drop local copies the bucket holds",
	  "Drop the dev-dir's copies of file data the bucket holds (directories:\n"
	  "recursively); pinned files are kept.\n"
	  "\n"
	  "Exit: 0 done, 1 failed, 2 bad arguments.\n",
	  zf_cmd_evict },
	{ "status", "[-b] <path>...",
	  "bytes local, only in the bucket, pending upload; pinned",
	  "For each path (directories: summed over their files): bytes in the dev-dir,\n"
	  "bytes only in the bucket, bytes pending upload, and whether it is pinned.\n"
	  "\n"
	  "  -b                  bytes as plain numbers (default: KiB, MiB, ...)\n"
	  "\n"
	  "Exit: 0 done, 1 failed, 2 bad arguments.\n",
	  zf_cmd_status },
	{ "config", "", "the settings of zerofs.conf and ZEROFS_*, and where each is from",
	  "Print the settings that mount and mkfs take from the configuration files and\n"
	  "the environment, each with the file and line (or the variable) it comes from,\n"
	  "after the files read. Precedence, highest first: the command line, ZEROFS_<KEY>\n"
	  "variables, the file $ZEROFS_CONFIG names, the user's file\n"
	  "($XDG_CONFIG_HOME/zerofs/zerofs.conf or ~/.config/zerofs/zerofs.conf), the\n"
	  "system file (/etc/zerofs/zerofs.conf, or $ZEROFS_SYSTEM_CONFIG). Keys: the -o\n"
	  "options of mount (cache_size = 10G), options (more -o options), remote (mkfs's\n"
	  "bucket). More: man 5 zerofs.conf.\n"
	  "\n"
	  "Exit: 0 done, 2 bad arguments or a bad setting (its file:line said).\n",
	  zf_cmd_config },
	{ "version", "", "print the version", "Print the version (also: -V, --version).\n",
	  cmd_version },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: zerofs <command> [options] <args>\n"
		     "       zerofs <command> --help    that command's options\n"
		     "\n"
		     "commands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n"
		     "options: -h, --help       this text\n"
		     "         -V, --version    print the version\n"
		     "\n"
		     "Installed as /sbin/mount.fuse.zerofs, the command serves mount(8) and /etc/fstab\n"
		     "('zerofs mount --help'). More: man 8 zerofs.\n");
}

static void command_help(const struct command *c)
{
	printf("usage: zerofs %s%s%s\n\n%s\n\n%s", c->name, *c->args ? " " : "", c->args,
	       c->summary, c->help);
}

/* does argv ask for help: -h or --help before any "--"? */
static int wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	return 0;
}

int zf_tool_bad_option(char **argv)
{
	fprintf(stderr, "zerofs %s: unknown option or missing value: '%s' (see 'zerofs %s "
		"--help')\n", argv[0], argv[optind - 1], argv[0]);
	return 2;
}

int zf_tool_say_if_mounted(const char *cmd, const char *dev)
{
	char mnt[4096], pid[32] = "";
	pid_t p;

	if (zf_mount_of_devdir(dev, mnt, sizeof(mnt)) < 0)
		return 0;
	if (zf_control_daemon_pid(dev, &p) == 0)
		snprintf(pid, sizeof(pid), ", daemon pid %d", (int)p);
	if (!strcmp(cmd, "gc"))
		fprintf(stderr, "zerofs gc: '%s' is mounted on '%s'%s: run 'zerofs gc %s' to "
			"collect while it serves, or unmount it first ('zerofs umount %s')\n", dev,
			mnt, pid, mnt, mnt);
	else
		fprintf(stderr, "zerofs %s: '%s' is mounted on '%s'%s: unmount it first "
			"('zerofs umount %s')\n", cmd, dev, mnt, pid, mnt);
	return 1;
}

int zf_tool_say_if_not_devdir(const char *cmd, const char *arg, int or_mnt)
{
	int r = zf_devdir_identify(arg);

	if (r == -EMEDIUMTYPE)
		fprintf(stderr, "zerofs %s: '%s' is %s zerofs dev-dir (no superblock; 'zerofs "
			"mkfs' formats one)\n", cmd, arg,
			or_mnt ? "neither a zerofs mountpoint nor a" : "not a");
	else if (r < 0)
		fprintf(stderr, "zerofs %s: cannot open '%s': %s\n", cmd, arg, strerror(-r));
	return r < 0;
}


/* is path a directory (following symlinks)? */
static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct command *c;
	const char *cmd;

	zf_log_init("zerofs", 0, ZF_LOG_WARN);
	opterr = 0; /* zf_tool_bad_option says it, in one line */
	/* mount(8) runs us as mount.zerofs <dev-dir> <mnt> [-o opts] */
	if (!strcmp(basename(argv[0]), "mount.zerofs") ||
	    !strcmp(basename(argv[0]), "mount.fuse.zerofs")) {
		argv[0] = "mount";
		if (argc > 1 && !strncmp(argv[1], "zerofs#", 7))
			argv[1] += 7;
		return zf_cmd_mount(argc, argv);
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "help") && argc > 2) { /* zerofs help <command> */
		cmd = argv[2];
		argv[2] = "--help";
	} else if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version"))
		cmd = "version";
	if (!strcmp(cmd, "unmount"))
		cmd = "umount";
	c = find_command(cmd);
	if (!c && argc >= 3 && is_dir(argv[1]) && is_dir(argv[2])) {
		/* mount.fuse(8) serves type fuse.zerofs (when mount.fuse.zerofs is
		 * not where mount(8) looks) as "zerofs <dev-dir> <mnt> -o <opts>" */
		argv[0] = "mount";
		return zf_cmd_mount(argc, argv);
	}
	if (!c) {
		fprintf(stderr, "zerofs: unknown command '%s' (try 'zerofs --help')\n", cmd);
		return 2;
	}
	if (wants_help(argc - 1, argv + 1)) {
		command_help(c);
		return 0;
	}
	argv[1] = (char *)c->name;
	return c->run(argc - 1, argv + 1);
}
