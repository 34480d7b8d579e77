/*
 * tools/wset.h - the CLI's working-set commands (tools/wset.c). Each takes
 * the command's argv (argv[0] is the command's name) and returns the exit
 * code: 0 done, 1 failed (said on stderr), 2 usage.
 */
#ifndef ZF_TOOLS_WSET_H
#define ZF_TOOLS_WSET_H

/* pin (on) or unpin PATH...: files, and directories recursively */
int zf_cmd_pin(int argc, char **argv, int on);
/* warmup PATH...: fetch what is only in the bucket, a progress bar on a terminal */
int zf_cmd_warmup(int argc, char **argv);
/* evict PATH...: drop the local copies of data the bucket holds */
int zf_cmd_evict(int argc, char **argv);
/* status [-b] PATH...: bytes local, only in the bucket, pending upload; pinned */
int zf_cmd_status(int argc, char **argv);

#endif
