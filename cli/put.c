/*
 * put.c - `shmring put NAME [DATA...]`: records from the arguments, or from
 * stdin as lines, NUL-terminated (-0) or framed (--framed).
 *
 * Each record is put whole or not at all.  Waits for room are bounded
 * (WAIT_SLICE_NS) and re-check for SIGINT/SIGTERM, so a signal ends put
 * between records, leaving every record it put complete in the ring.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

struct putter {
	const char *name;
	struct shmring *ring;
	size_t max_record;
	unsigned long long count;
};

/* 0, or the exit status. */
static int put_one(struct putter *p, const void *data, size_t len)
{
	if (len > p->max_record) {
		warnx_("%s: record %llu is %zu bytes, over the ring's max record (%zu); "
		       "nothing more was put", p->name, p->count + 1, len, p->max_record);
		return 1;
	}
	for (;;) {
		int rc = shmring_put(p->ring, data, len, WAIT_SLICE_NS);
		if (rc == 0) {
			p->count++;
			return 0;
		}
		if (rc != -ETIMEDOUT) {
			if (rc == -EPIPE)
				warnx_("%s: ring closed, or every consumer has gone "
				       "(%llu records put)", p->name, p->count);
			else
				ring_error(p->name, rc);
			return 1;
		}
		if (cli_stop)
			return exit_for_signal();
	}
}

/* Read exactly n bytes; 0 at a clean end before any, -1 on a short read or
 * error (errno set; EINTR when a signal came). */
static int read_full(FILE *in, void *buf, size_t n, size_t *got)
{
	*got = fread(buf, 1, n, in);
	if (*got == n)
		return 1;
	return *got == 0 && feof(in) ? 0 : -1;
}

static int put_framed(struct putter *p, FILE *in)
{
	unsigned char *buf = malloc(p->max_record ? p->max_record : 1);
	if (!buf) {
		warnx_("out of memory");
		return 1;
	}
	int rc = 0;
	while (!cli_stop) {
		unsigned char h[FRAME_HEADER];
		size_t got;
		int r = read_full(in, h, sizeof h, &got);
		if (r == 0)
			break;
		if (r < 0) {
			if (!cli_stop)
				warnx_("stdin: %s after %llu records", ferror(in) ? strerror(errno)
				       : "truncated frame header", p->count);
			rc = cli_stop ? exit_for_signal() : 1;
			break;
		}
		uint32_t len = frame_length(h);
		if (len > p->max_record) {
			rc = put_one(p, buf, len); /* reports it */
			break;
		}
		if (len && read_full(in, buf, len, &got) != 1) {
			if (!cli_stop)
				warnx_("stdin: truncated frame (%zu of %u bytes) after %llu records",
				       got, len, p->count);
			rc = cli_stop ? exit_for_signal() : 1;
			break;
		}
		if ((rc = put_one(p, buf, len)) != 0)
			break;
	}
	free(buf);
	return rc ? rc : cli_stop ? exit_for_signal() : 0;
}

static int put_delimited(struct putter *p, FILE *in, int delim)
{
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;
	while (!cli_stop) {
		errno = 0;
		ssize_t n = getdelim(&line, &cap, delim, in);
		if (n < 0) {
			if (ferror(in) && !cli_stop) {
				warnx_("stdin: %s", strerror(errno));
				rc = 1;
			}
			break;
		}
		if (n > 0 && line[n - 1] == (char)delim) {
			n--;
		} else if (ferror(in)) {
			/* a read cut short (a signal): the part read is not a
			 * record; a last line without a delimiter (EOF) is */
			if (!cli_stop) {
				warnx_("stdin: %s", strerror(errno));
				rc = 1;
			}
			break;
		}
		if ((rc = put_one(p, line, (size_t)n)) != 0)
			break;
	}
	free(line);
	return rc ? rc : cli_stop ? exit_for_signal() : 0;
}

static const char put_usage[] =
	"usage: shmring put [-0 | --framed] NAME            (records from stdin)\n"
	"       shmring put NAME DATA...                    (one record per argument)\n";

int cmd_put(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "null", no_argument, NULL, '0' },
		{ "framed", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	enum rec_format fmt = FMT_LINES;
	int c;
	while ((c = getopt_long(argc, argv, "+0h", opts, NULL)) != -1) {
		switch (c) {
		case '0': fmt = FMT_NUL; break;
		case 'F': fmt = FMT_FRAMED; break;
		case 'h': fputs(put_usage, stdout); return 0;
		default:  return usage_error("put", "bad option");
		}
	}
	if (optind == argc)
		return usage_error("put", "wants a ring name");
	struct putter p = { .name = argv[optind++] };
	if (optind < argc && fmt != FMT_LINES)
		return usage_error("put", "-0 and --framed are for stdin, not arguments");
	cli_signals();
	if (open_member(p.name, &p.ring))
		return 1;
	struct shmring_info info;
	shmring_info(p.ring, &info);
	p.max_record = info.max_record;
	/* a producer from now until exit (end of stream for --pipe rings) */
	int rc = shmring_declare(p.ring, SHMRING_PRODUCER);
	if (rc) {
		shmring_detach(p.ring);
		return ring_error(p.name, rc);
	}
	if (optind < argc) {
		for (; optind < argc && !rc && !cli_stop; optind++)
			rc = put_one(&p, argv[optind], strlen(argv[optind]));
		if (!rc && cli_stop)
			rc = exit_for_signal();
	} else if (fmt == FMT_FRAMED) {
		rc = put_framed(&p, stdin);
	} else {
		rc = put_delimited(&p, stdin, fmt == FMT_NUL ? '\0' : '\n');
	}
	shmring_detach(p.ring);
	return rc;
}
