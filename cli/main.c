/*
 * main.c - shmring(1): see, use and clean up shmring rings from a shell.
 * One program, one subcommand per source file; man/shmring.1.scd is the
 * manual.
 */
#include <string.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "ls",     cmd_ls,     "list named rings (--json, --output COLS)" },
	{ "stat",   cmd_stat,   "one ring in full, attachments, rates (-w SECONDS)" },
	{ "create", cmd_create, "make a named ring (persistent unless --pipe)" },
	{ "rm",     cmd_rm,     "remove rings by name, or --stale ones" },
	{ "put",    cmd_put,    "put records from arguments or stdin" },
	{ "cat",    cmd_cat,    "take records and write them to stdout (-f to follow)" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static int usage(FILE *f)
{
	fputs("usage: shmring COMMAND [OPTIONS] [ARGS]\n\ncommands:\n", f);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-7s %s\n", commands[i].name, commands[i].summary);
	fputs("\n'shmring COMMAND --help' for its options; man shmring for all.\n", f);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr), EXIT_USAGE;
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))
		return usage(stdout);
	if (!strcmp(cmd, "--version")) {
		printf("shmring %d.%d\n", SHMRING_VERSION_MAJOR, SHMRING_VERSION_MINOR);
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(cmd, commands[i].name))
			continue;
		/* getopt's own messages then start "shmring ls: " */
		char name[32];
		snprintf(name, sizeof name, "shmring %s", cmd);
		argv[1] = name;
		return commands[i].run(argc - 1, argv + 1);
	}
	return usage_error(NULL, "unknown command '%s'", cmd);
}
