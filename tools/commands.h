/*
 * tools/commands.h - the zerofs command's subcommands, a group a file:
 * mkfs (tools/mkfs.c), fsck (tools/fsck.c), mount (tools/mount.c), gc and
 * lease-break (tools/maint.c), stats (tools/stats.c), config
 * (tools/config.c); sync and umount
 * (tools/sync.h), the working set (tools/wset.h). tools/zerofs.c
 * dispatches to them and answers --help from one table.
 *
 * Each zf_cmd_* takes its command's argv (argv[0] is the command's name,
 * getopt's state reset) and returns the process's exit code: 0 done, 1
 * failed or refused (said on stderr, one line), 2 bad arguments; each
 * file's header names its others.
 */
#ifndef ZF_TOOLS_COMMANDS_H
#define ZF_TOOLS_COMMANDS_H

int zf_cmd_mkfs(int argc, char **argv);
int zf_cmd_fsck(int argc, char **argv);
int zf_cmd_mount(int argc, char **argv);
int zf_cmd_gc(int argc, char **argv);
int zf_cmd_lease_break(int argc, char **argv);
int zf_cmd_stats(int argc, char **argv);
int zf_cmd_config(int argc, char **argv);
int zf_cmd_passwd(int argc, char **argv);
int zf_cmd_snapshot(int argc, char **argv);

/*
 * An encrypted filesystem's passphrase for cmd into buf: $var, the first
 * line of the file $var_FILE, else asked on the terminal (twice when
 * confirm). Its length, or -errno after one line on stderr.
 */
int zf_tool_passphrase(const char *cmd, const char *var, int confirm, char *buf, size_t len);

/* ---- shared by the commands (tools/zerofs.c, tools/mkfs.c) ---- */

/*
 * Restore dev from url and point it at url, saying how it went (cmd names
 * the command in messages). Returns the exit code: 0, 1 (refused or
 * failed, the dev-dir as it was), 3 (allow_loss: restored with less than
 * the bucket held, each loss said).
 */
int zf_tool_restore(const char *cmd, const char *url, const char *dev, int allow_loss,
		    int verify);

/*
 * When a zerofs daemon in this namespace serves the dev-dir dev, say where,
 * its pid and what to do instead of cmd ("fsck", "gc", "mount"), and
 * return 1; else 0.
 */
int zf_tool_say_if_mounted(const char *cmd, const char *dev);

struct zf_conf;
/*
 * Read zerofs.conf's layers into c (zf_conf_load). Returns 0, or 2 after
 * saying why in one line, "zerofs <cmd>: FILE:LINE: ..." (c freed).
 */
int zf_tool_conf_load(const char *cmd, struct zf_conf *c);

/*
 * Is arg not something cmd can open as a dev-dir? Then say why in one line
 * (or_mnt: cmd also takes a mountpoint) and return 1; else 0.
 */
int zf_tool_say_if_not_devdir(const char *cmd, const char *arg, int or_mnt);

/*
 * After getopt_long returned '?' or ':' for argv: say which option, and
 * where the command's options are listed, in one line. Returns 2.
 */
int zf_tool_bad_option(char **argv);

#endif
