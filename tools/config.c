/*
 * tools/config.c - zerofs config: the settings zerofs.conf and the
 * ZEROFS_* variables give (devdir/conffile.h), each with where it comes
 * from; and the loading that mount and mkfs share.
 *
 * Exit codes: 0 printed, 2 bad arguments or a bad setting (file:line said).
 */
#include "config.h"

#include <stdio.h>

#include "devdir/conffile.h"
#include "tools/commands.h"

int zf_tool_conf_load(const char *cmd, struct zf_conf *c)
{
	char why[1024];

	if (zf_conf_load(c, why, sizeof(why)) == 0)
		return 0;
	fprintf(stderr, "zerofs %s: %s\n", cmd, why);
	zf_conf_free(c);
	return 2;
}

int zf_cmd_config(int argc, char **argv)
{
	struct zf_conf c;
	int r;

	if (argc > 1) {
		fprintf(stderr, "zerofs config: takes no arguments (see 'zerofs config --help')\n");
		return 2;
	}
	r = zf_tool_conf_load("config", &c);
	if (r)
		return r;
	zf_conf_print(&c, stdout);
	zf_conf_free(&c);
	return 0;
}
