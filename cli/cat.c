/*
 * cat.c - `shmring cat NAME`: take the records waiting and write them to
 * stdout (lines, -0, --framed, --hex); -n N for at most N; -f to wait for
 * more until end of stream.
 *
 * A record taken is gone from the ring, so cat takes none it cannot write:
 * before each take it checks that stdout's reader is still there (a pipe
 * whose reader has gone polls POLLERR), and SIGINT/SIGTERM end it between
 * records (waits are bounded slices that re-check).  Records already taken
 * when the reader goes are reported as not delivered.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Is the reader of stdout gone (a pipe or socket with no reader)? */
static bool stdout_gone(void)
{
	struct pollfd pfd = { .fd = STDOUT_FILENO, .events = 0 };
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL));
}

struct taker {
	const char *name;
	struct shmring *ring;
	unsigned char *buf;
	size_t cap;
	enum rec_format fmt;
	bool hex;
	unsigned long long taken, unflushed;
	int out_failed;   /* 1: stdout failed; -1: its reader went, nothing lost */
};

/* 0 if stdout took everything written so far; else what to exit with. */
static int flush_out(struct taker *t)
{
	if (t->out_failed)
		return t->out_failed > 0 ? 1 : 0;
	if (fflush(stdout) == 0) {
		t->unflushed = 0;
		return 0;
	}
	if (errno == EPIPE) {
		if (t->unflushed)
			warnx_("%s: stdout closed: up to %llu record%s taken from the ring "
			       "were not delivered", t->name, t->unflushed,
			       t->unflushed == 1 ? "" : "s");
		t->out_failed = t->unflushed ? 1 : -1;
	} else {
		warnx_("stdout: %s", strerror(errno));
		t->out_failed = 1;
	}
	return t->out_failed > 0 ? 1 : 0;
}

/* How a run ended: 0 end (of what was waiting, of the stream, of -n),
 * else the exit status. */
static int take_all(struct taker *t, unsigned long long limit, bool follow)
{
	unsigned since_check = 0;
	while (!limit || t->taken < limit) {
		if (cli_stop)
			return exit_for_signal();
		/* every 64 records, and before every wait */
		if (++since_check >= 64) {
			since_check = 0;
			if (stdout_gone())
				return flush_out(t) ? 1 : 0;
		}
		ssize_t len = shmring_get(t->ring, t->buf, t->cap, 0);
		if (len == -EAGAIN) {
			int rc = flush_out(t);
			if (rc || !follow)
				return rc;
			if (stdout_gone())
				return 0;
			len = shmring_get(t->ring, t->buf, t->cap, WAIT_SLICE_NS);
			if (len == -ETIMEDOUT)
				continue;
		}
		if (len == -EPIPE)
			return 0; /* closed and drained, or end of stream */
		if (len < 0)
			return ring_error(t->name, (int)len);
		t->taken++;
		t->unflushed++;
		if (!write_record(stdout, t->fmt, t->hex, t->taken, t->buf, (size_t)len)) {
			int rc = flush_out(t);
			return rc ? rc : 1;
		}
	}
	return 0;
}

static const char cat_usage[] =
	"usage: shmring cat [-f] [-n N] [-0 | --framed | --hex] NAME\n";

int cmd_cat(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "count", required_argument, NULL, 'n' },
		{ "null", no_argument, NULL, '0' },
		{ "framed", no_argument, NULL, 'F' },
		{ "hex", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct taker t = { .fmt = FMT_LINES };
	bool follow = false;
	unsigned long long limit = 0;
	int c;
	while ((c = getopt_long(argc, argv, "fn:0xh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': follow = true; break;
		case 'n': {
			char *end;
			errno = 0;
			limit = strtoull(optarg, &end, 10);
			if (errno || !*optarg || *end || *optarg == '-' || limit == 0)
				return usage_error("cat", "-n wants a positive count, not '%s'", optarg);
			break;
		}
		case '0': t.fmt = FMT_NUL; break;
		case 'F': t.fmt = FMT_FRAMED; break;
		case 'x': t.hex = true; break;
		case 'h': fputs(cat_usage, stdout); return 0;
		default:  return usage_error("cat", "bad option");
		}
	}
	if (optind != argc - 1)
		return usage_error("cat", "wants one ring name");
	t.name = argv[optind];
	cli_signals();
	if (open_member(t.name, &t.ring))
		return 1;
	struct shmring_info info;
	shmring_info(t.ring, &info);
	t.cap = info.max_record ? info.max_record : 1;
	t.buf = malloc(t.cap);
	int rc = t.buf ? 0 : (warnx_("out of memory"), 1);
	/* -f: a consumer from the start, so producers see one while it waits */
	if (!rc && follow && (rc = shmring_declare(t.ring, SHMRING_CONSUMER)) != 0)
		rc = ring_error(t.name, rc);
	static char obuf[1 << 16];
	setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
	if (!rc)
		rc = take_all(&t, limit, follow);
	int frc = flush_out(&t); /* what was taken goes out, whatever ended it */
	if (frc && !rc)
		rc = frc;
	free(t.buf);
	shmring_detach(t.ring);
	return rc;
}
