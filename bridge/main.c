/*
 * main.c - shmring-nats: the command line, signals, and dispatch.
 *
 *   shmring-nats out --ring NAME --servers URL[,URL...] --stream STREAM
 *                    --subject SUBJECT [--replicas N] [options]
 *   shmring-nats in  --ring NAME --servers URL[,URL...] --stream STREAM
 *                    --subject SUBJECT --durable NAME [options]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"

volatile sig_atomic_t stop_requested;
volatile sig_atomic_t stop_forced;

static void on_signal(int sig)
{
	(void)sig;
	if (stop_requested)
		stop_forced = 1;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: shmring-nats out --ring NAME --servers URL[,URL...] --stream STREAM\n"
"                        --subject SUBJECT [--replicas N] [options]\n"
"       shmring-nats in  --ring NAME --servers URL[,URL...] --stream STREAM\n"
"                        --subject SUBJECT --durable NAME [options]\n"
"\n"
"out: takes records from the ring and publishes each to the stream; a record\n"
"     leaves the ring only once JetStream has acknowledged it.\n"
"in:  fetches from a durable pull consumer, puts each message into the ring,\n"
"     and acknowledges it only after the put.\n"
"\n"
"options:\n"
"  --replicas N         replicas of a stream this bridge creates (default 1)\n"
"  --max-pending N      out: records published and awaiting their ack\n"
"                       (default 256, at most 1024)\n"
"  --batch N            in: messages per fetch at most (default 256)\n"
"  --ack-wait MS        out: how long a publish waits for its ack before the\n"
"                       bridge resyncs (default 2000); in: the consumer's\n"
"                       AckWait (default 30000)\n"
"  --dup-window MS      Duplicates window of a stream this bridge creates\n"
"                       (default 600000: 10 minutes)\n"
"  --stats-interval S   seconds between stats lines on stderr (default 5; 0: off)\n"
"  --capacity BYTES     capacity of a ring this bridge creates (default 4 MiB)\n"
"  --max-record BYTES   largest record of a ring this bridge creates\n"
"\n"
"SIGINT/SIGTERM: finish what is in flight, then exit (a second one: exit now).\n"
"Guarantees and set-up: docs/bridge.md.\n");
}

static int parse_num(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "shmring-nats: --%s: expected an integer in [%lld, %lld], got '%s'\n",
		        opt, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct bridge_args a = {
		.replicas = 1, .max_pending = 256, .batch = 256, .ack_wait_ms = -1,
		.dup_window_ms = 600000, .stats_interval = 5,
	};
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	a.mode = argv[1];
	if (strcmp(a.mode, "out") && strcmp(a.mode, "in")) {
		fprintf(stderr, "shmring-nats: unknown direction '%s' (out or in)\n", a.mode);
		usage(stderr);
		return 2;
	}
	enum { O_RING = 256, O_SERVERS, O_STREAM, O_SUBJECT, O_DURABLE, O_REPLICAS,
	       O_MAXPEND, O_BATCH, O_ACKWAIT, O_DUPWIN, O_STATS, O_CAP, O_MAXREC, O_HELP };
	static const struct option opts[] = {
		{ "ring", required_argument, 0, O_RING },
		{ "servers", required_argument, 0, O_SERVERS },
		{ "stream", required_argument, 0, O_STREAM },
		{ "subject", required_argument, 0, O_SUBJECT },
		{ "durable", required_argument, 0, O_DURABLE },
		{ "replicas", required_argument, 0, O_REPLICAS },
		{ "max-pending", required_argument, 0, O_MAXPEND },
		{ "batch", required_argument, 0, O_BATCH },
		{ "ack-wait", required_argument, 0, O_ACKWAIT },
		{ "dup-window", required_argument, 0, O_DUPWIN },
		{ "stats-interval", required_argument, 0, O_STATS },
		{ "capacity", required_argument, 0, O_CAP },
		{ "max-record", required_argument, 0, O_MAXREC },
		{ "help", no_argument, 0, O_HELP },
		{ 0, 0, 0, 0 },
	};
	optind = 2;
	int c;
	long long v;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *name = c >= O_RING && c <= O_HELP ? opts[c - O_RING].name : "?";
		switch (c) {
		case O_RING: a.ring = optarg; break;
		case O_SERVERS: a.servers = optarg; break;
		case O_STREAM: a.stream = optarg; break;
		case O_SUBJECT: a.subject = optarg; break;
		case O_DURABLE: a.durable = optarg; break;
		case O_HELP: usage(stdout); return 0;
		case O_STATS: {
			char *end;
			errno = 0;
			a.stats_interval = strtod(optarg, &end);
			if (errno || end == optarg || *end || a.stats_interval < 0) {
				fprintf(stderr, "shmring-nats: --stats-interval: expected seconds >= 0, got '%s'\n", optarg);
				return 2;
			}
			break;
		}
		default:
			if (c < O_REPLICAS || c > O_MAXREC) {
				usage(stderr);
				return 2;
			}
			static const long long lo[] = { 1, 1, 1, 1, 1000, 0, 0 };
			static const long long hi[] = { 5, BRIDGE_MAX_PENDING, 1 << 16, 3600000,
			                                 7LL * 24 * 3600 * 1000, 0, 0 };
			int i = c - O_REPLICAS;
			long long h = c >= O_CAP ? (1LL << 36) : hi[i];
			if (parse_num(name, optarg, c >= O_CAP ? 0 : lo[i], h, &v))
				return 2;
			switch (c) {
			case O_REPLICAS: a.replicas = (int)v; break;
			case O_MAXPEND: a.max_pending = (int)v; break;
			case O_BATCH: a.batch = (int)v; break;
			case O_ACKWAIT: a.ack_wait_ms = v; break;
			case O_DUPWIN: a.dup_window_ms = v; break;
			case O_CAP: a.capacity = (size_t)v; break;
			case O_MAXREC: a.max_record = (size_t)v; break;
			}
		}
	}
	if (optind < argc) {
		fprintf(stderr, "shmring-nats: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	const char *missing = !a.ring ? "--ring" : !a.servers ? "--servers" :
	                      !a.stream ? "--stream" : !a.subject ? "--subject" :
	                      (!strcmp(a.mode, "in") && !a.durable) ? "--durable" : NULL;
	if (missing) {
		fprintf(stderr, "shmring-nats %s: %s is required\n", a.mode, missing);
		return 2;
	}
	if (!strcmp(a.mode, "out") && a.durable) {
		fprintf(stderr, "shmring-nats out: --durable is for the in direction\n");
		return 2;
	}
	if (strpbrk(a.subject, "*> \t") || strpbrk(a.stream, ".*> \t")) {
		fprintf(stderr, "shmring-nats: --subject must be one literal subject and --stream a "
		        "name without '.', '*', '>' or spaces\n");
		return 2;
	}

	if (a.ack_wait_ms < 0)
		a.ack_wait_ms = !strcmp(a.mode, "out") ? 2000 : 30000;

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	return !strcmp(a.mode, "out") ? run_out(&a) : run_in(&a);
}
