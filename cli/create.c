/*
 * create.c - `shmring create NAME`: a named ring that outlives the command,
 * persistent (SHMRING_PERSISTENT) unless --pipe asks for pipe semantics;
 * --redeliver makes it at-least-once (SHMRING_REDELIVER); --light gives it
 * light publication (SHMRING_LIGHT_PUBLISH).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char create_usage[] =
	"usage: shmring create [--capacity BYTES] [--max-record BYTES] [--mode MODE] [--pipe]\n"
	"                      [--redeliver] [--light] NAME\n";

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "capacity", required_argument, NULL, 'c' },
		{ "max-record", required_argument, NULL, 'm' },
		{ "mode", required_argument, NULL, 'M' },
		{ "pipe", no_argument, NULL, 'p' },
		{ "redeliver", no_argument, NULL, 'r' },
		{ "light", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct shmring_config cfg = { .flags = SHMRING_PERSISTENT };
	int c;
	while ((c = getopt_long(argc, argv, "c:m:M:prlh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (parse_size(optarg, &cfg.capacity) || !cfg.capacity)
				return usage_error("create", "bad --capacity '%s'", optarg);
			break;
		case 'm':
			if (parse_size(optarg, &cfg.max_record) || !cfg.max_record)
				return usage_error("create", "bad --max-record '%s'", optarg);
			break;
		case 'M': {
			char *end;
			unsigned long mode = strtoul(optarg, &end, 8);
			if (!*optarg || *end || mode > 0777)
				return usage_error("create", "bad --mode '%s' (octal, e.g. 0660)", optarg);
			cfg.mode = (unsigned)mode;
			break;
		}
		case 'p': cfg.flags &= ~SHMRING_PERSISTENT; break;
		case 'r': cfg.flags |= SHMRING_REDELIVER; break;
		case 'l': cfg.flags |= SHMRING_LIGHT_PUBLISH; break;
		case 'h': fputs(create_usage, stdout); return 0;
		default:  return usage_error("create", "bad option");
		}
	}
	if (optind != argc - 1)
		return usage_error("create", "wants one ring name");
	const char *name = argv[optind];
	struct shmring *ring;
	int rc = shmring_create(&ring, name, &cfg);
	if (rc == -EINVAL) {
		warnx_("%s: invalid ring name or geometry (capacity 4K..64G, "
		       "max record at most the capacity)", name);
		return 1;
	}
	if (rc)
		return ring_error(name, rc);
	shmring_detach(ring);
	return 0;
}
