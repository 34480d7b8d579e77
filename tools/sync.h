/*
 * tools/sync.h - the zerofs commands that wait for the bucket: sync and
 * umount (tools/sync.c). Each takes its command's argv (argv[0] is the
 * command's name) and returns the process's exit code.
 */
#ifndef ZF_TOOLS_SYNC_H
#define ZF_TOOLS_SYNC_H

/* exit codes besides 0 (done), 1 (failed) and 2 (bad arguments) */
#define ZF_EXIT_PENDING 3	/* umount: unmounted, but the bucket lacks data */

int zf_cmd_sync(int argc, char **argv);
int zf_cmd_umount(int argc, char **argv);

#endif
