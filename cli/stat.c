/*
 * stat.c - `shmring stat NAME`: one ring in full, once or every -w SECONDS
 * with rates, as text or JSON.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void print_text(const struct ring_view *v)
{
	const struct shmring_info *in = &v->info;
	char a[32], b[32];
	printf("name:        %s\n", v->name);
	human_size(a, sizeof a, in->capacity);
	human_size(b, sizeof b, in->max_record);
	printf("capacity:    %zu (%s), max record %zu (%s), %s layout\n", in->capacity, a,
	       in->max_record, b,
	       in->max_record <= SHMRING_INLINE_MAX_RECORD ? "inline" : "split");
	printf("waiting:     %zu records, %zu bytes (%zu bytes of storage in use)\n",
	       in->records, in->bytes, in->used);
	printf("state:       %s\n", view_state(v));
	printf("kind:        %s (persistent: %s); attachment table %zu entries\n", view_kind(v),
	       in->persistent ? "yes" : "no", in->max_attach);
	printf("publication: %s\n", (in->delivery & SHMRING_LIGHT_PUBLISH)
	                                    ? "light (SHMRING_LIGHT_PUBLISH: sleepers issue membarrier)"
	                                    : "locked store");
	printf("producers:   %u live\n", v->live_producers);
	printf("consumers:   %u live\n", v->live_consumers);
	printf("unfinished:  %llu\n", (unsigned long long)in->unfinished);
	printf("lost:        %llu records, %llu tasks; recovered claims %llu\n",
	       (unsigned long long)in->lost_records, (unsigned long long)in->lost_tasks,
	       (unsigned long long)in->recovered_claims);
	printf("dropped:     %llu records (puts refused, ring full); overwritten %llu\n",
	       (unsigned long long)in->dropped, (unsigned long long)in->overwritten);
	if (in->delivery & SHMRING_REDELIVER)
		printf("redelivery:  %llu records given back, %llu waiting to be taken again; "
		       "dead letters %llu, %llu waiting\n", (unsigned long long)in->redelivered,
		       (unsigned long long)in->redeliver_waiting,
		       (unsigned long long)in->dead_letters, (unsigned long long)in->dead_waiting);
	printf("traffic:     %llu slots put, %llu taken; futex waits %llu, wakes %llu\n",
	       (unsigned long long)v->traffic.put_slots, (unsigned long long)v->traffic.taken_slots,
	       (unsigned long long)in->futex_waits, (unsigned long long)in->futex_wakes);
	printf("file:        owner %u, mode %04o, %llu bytes\n", (unsigned)v->probe.uid,
	       v->probe.mode, (unsigned long long)v->probe.file_size);
	if (v->swept)
		printf("swept:       %d dead attachment%s freed now\n", v->swept, v->swept == 1 ? "" : "s");
	printf("attachments: %d\n", v->natt);
	if (v->natt) {
		printf("  %8s  %-17s  %-7s  %10s  %10s\n", "PID", "ROLES", "STATE", "TAKEN", "DONE");
		for (int i = 0; i < v->natt; i++) {
			const struct shmring_attachment *t = &v->att[i];
			printf("  %8d  %-17s  %-7s  %10llu  %10llu\n", (int)t->pid, roles_text(t->roles),
			       attach_state_text(t->state), (unsigned long long)t->taken,
			       (unsigned long long)t->done);
		}
	}
	if (!(in->delivery & SHMRING_BROADCAST))
		return;
	printf("subscribers: %d\n", v->subscribers);
	if (v->nsub) {
		printf("  %8s  %-8s  %-7s  %10s  %12s  %10s  %s\n", "PID", "POLICY", "STATE",
		       "LAG", "LAG BYTES", "LOST", "LAPPED");
		for (int i = 0; i < v->nsub; i++) {
			const struct shmring_subscriber *sub = &v->sub[i];
			printf("  %8d  %-8s  %-7s  %10llu  %12llu  %10llu  %s\n", (int)sub->pid,
			       sub_policy(sub), sub_liveness(v, i), (unsigned long long)sub->lag_records,
			       (unsigned long long)sub->lag_bytes, (unsigned long long)sub->lost,
			       sub->lapped ? "yes" : "no");
		}
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep s seconds, or until SIGINT/SIGTERM. */
static void nap(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
	while (!cli_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int flush_stdout(void)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	if (errno == EPIPE)
		return -1;
	warnx_("stdout: %s", strerror(errno));
	return 1;
}

int cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "watch", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool json = false;
	double every = 0;
	int c;
	while ((c = getopt_long(argc, argv, "Jw:h", opts, NULL)) != -1) {
		switch (c) {
		case 'J': json = true; break;
		case 'w':
			if (parse_seconds(optarg, &every))
				return usage_error("stat", "-w wants a number of seconds, not '%s'", optarg);
			break;
		case 'h': fputs("usage: shmring stat [--json] [-w SECONDS] NAME\n", stdout); return 0;
		default:  return usage_error("stat", "bad option");
		}
	}
	if (optind != argc - 1)
		return usage_error("stat", "wants one ring name");
	const char *name = argv[optind];
	struct ring_view *v = calloc(1, sizeof *v);
	struct shmring_traffic prev;
	if (!v) {
		warnx_("out of memory");
		return 1;
	}
	int rc = view_load(name, v);
	if (rc) {
		view_free(v);
		free(v);
		return ring_error(name, rc);
	}
	if (json && !every) {
		view_json(stdout, v, true);
		putchar('\n');
	} else if (!every) {
		print_text(v);
	}
	if (!every) {
		rc = flush_stdout();
		view_free(v);
		free(v);
		return rc < 0 ? 0 : rc;
	}

	/* -w: a line per interval with rates, as `iox2 service hz` does */
	cli_signals();
	double t0 = now_s();
	if (!json) {
		print_text(v);
		printf("\n%8s %12s %12s %10s %12s %5s %5s %s\n", "TIME", "IN slots/s", "OUT slots/s",
		       "RECORDS", "BYTES", "PROD", "CONS", "STATE");
	}
	rc = 0;
	while (!cli_stop && (rc = flush_stdout()) == 0) {
		prev = v->traffic;
		double t1 = now_s();
		nap(every);
		if (cli_stop)
			break;
		int err = view_load(name, v);
		if (err) {
			rc = ring_error(name, err);
			break;
		}
		double dt = now_s() - t1;
		double in = (double)(v->traffic.put_slots - prev.put_slots) / dt;
		double out = (double)(v->traffic.taken_slots - prev.taken_slots) / dt;
		if (json) {
			printf("{\"time\": %.3f, \"in_slots_per_s\": %.1f, \"out_slots_per_s\": %.1f, \"ring\": ",
			       now_s() - t0, in, out);
			view_json(stdout, v, true);
			puts("}");
		} else {
			printf("%8.1f %12.1f %12.1f %10zu %12zu %5u %5u %s\n", now_s() - t0, in, out,
			       v->info.records, v->info.bytes, v->live_producers, v->live_consumers,
			       view_state(v));
		}
	}
	view_free(v);
	free(v);
	if (rc < 0)      /* the reader of stdout went away: done */
		return 0;
	return rc;       /* SIGINT / SIGTERM end a watch normally: 0 */
}
