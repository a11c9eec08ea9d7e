/*
 * main.c - shmring-bench: the command line, the default suite, the outputs.
 *
 * usage: shmring-bench [options] [scenario ...]   (--help for the list)
 * With no scenario it runs the default suite (about two and a half minutes
 * on two cores) and ends with the targets of issue 5.  docs/perf.md tells
 * what each figure means and how it is taken.
 */
#include "harness.h"

#include <stdbool.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct opts g_opt;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmring-bench [options] [scenario ...]\n"
		"\n"
		"Measures shmring against a pipe, a SOCK_SEQPACKET socketpair, a POSIX message\n"
		"queue, a mutex+condvar shared-memory ring and liburcu's wfcqueue (threads), and\n"
		"against the physical floor (cache-line ping-pong, memcpy), all in one run.\n"
		"Every record is checked.  With no scenario: the default suite, then the\n"
		"issue-5 targets.\n"
		"\n"
		"scenarios:\n"
		"  throughput      P x C processes (--procs) at each record size (--sizes)\n"
		"  pingpong        round trips, spinning and blocking (also pingpong-spin,\n"
		"                  pingpong-block); record size --size\n"
		"  telemetry       8 producers x 1 consumer, records of 20-2000 bytes:\n"
		"                  shmring (and -batch) against the pipe and the mutex ring\n"
		"  paced           one-way latency at --rate records/s for --duration seconds\n"
		"  idle            CPU of a consumer blocked --idle seconds on an empty channel\n"
		"  burst           --burst records into a sleeping consumer: time to drain\n"
		"  all             the default suite\n"
		"\n"
		"options:\n"
		"  -t, --transports LIST  comma-separated (default: all; --list shows them)\n"
		"  -s, --sizes LIST       throughput record sizes, e.g. 8,64,4K,1M\n"
		"                         (default 8,64,512,4K,64K,1M)\n"
		"  -p, --procs LIST       throughput PxC list, e.g. 1x1,4x4 (default 1x1; the\n"
		"                         default suite adds 1x2,2x1,2x2,4x4 at 64 B)\n"
		"      --size BYTES       record size of the other scenarios (default 64)\n"
		"  -n, --count N          records per throughput run (default: 64 MiB worth,\n"
		"                         100 to 100000, 4x that with more parties than CPUs;\n"
		"                         the same for every transport)\n"
		"      --rounds N         ping-pong round trips per run (default 100000 spinning,\n"
		"                         5000 blocking)\n"
		"      --rate R           paced: records per second (default 10000)\n"
		"      --duration S       paced: seconds per run (default 1)\n"
		"      --idle S           idle: seconds (default 1)\n"
		"      --burst N          burst: records (default 10000)\n"
		"  -r, --reps N           runs per point, round-robin over the transports; figures\n"
		"                         are medians (default 3; paced and idle: 1)\n"
		"      --queue-bytes B    buffering given to every transport (default 4M, at\n"
		"                         least 4 records)\n"
		"      --no-pin           never pin (default: when the parties fit the usable\n"
		"                         CPUs, one each: 1x1, ping-pong, ...)\n"
		"      --pipe-exact       pipe consumer reads prefix then payload (default: a\n"
		"                         64 KiB buffered reader)\n"
		"      --ring-spin N      shmring_set_spin(N) on every shmring handle (default:\n"
		"                         the library's; 0 = sleep on the futex at once)\n"
		"      --quick            a quarter of the records and round trips, 1 rep\n"
		"      --timeout S        kill a run after S seconds (default 120)\n"
		"      --json FILE        every measurement as JSON\n"
		"      --plot DIR         SVG plots (gnuplot) and their data in DIR\n"
		"      --markdown FILE    the tables as markdown\n"
		"      --no-targets       leave out the targets section\n"
		"      --progress, --no-progress   the live line (default: when stderr is a tty)\n"
		"      --list             list the transports and exit\n"
		"  -h, --help\n"
		"\n"
		"Exit status: 0 when every run completed and every record checked out (a missed\n"
		"target is reported, not an error); 1 if a run failed; 2 on bad usage.\n");
}

static void list_transports(void)
{
	for (int i = 0; i < n_transports; i++)
		printf("  %-14s %s\n", all_transports[i]->name, all_transports[i]->desc);
	for (int i = 0; i < n_extra_transports; i++)
		printf("  %-14s %s (only with -t)\n", extra_transports[i]->name,
		       extra_transports[i]->desc);
}

static int parse_list(const char *s, char items[][64], int max)
{
	int n = 0;

	while (*s && n < max) {
		size_t k = strcspn(s, ",");
		snprintf(items[n++], 64, "%.*s", (int)k, s);
		s += k + (s[k] == ',');
	}
	return n;
}

static void bad(const char *what, const char *v)
{
	fprintf(stderr, "shmring-bench: bad %s: %s (see --help)\n", what, v);
	exit(2);
}

static double parse_num(const char *what, const char *v, double lo)
{
	char *end;
	double d = strtod(v, &end);
	if (end == v || *end || d < lo)
		bad(what, v);
	return d;
}

enum { DO_TPUT = 1, DO_PP_SPIN = 2, DO_PP_BLOCK = 4, DO_PACED = 8, DO_IDLE = 16, DO_BURST = 32,
       DO_TELEM = 64, DO_ALL = 127 };

static int parse_args(int argc, char **argv)
{
	int todo = 0, procs_given = 0, rounds_given = 0;
	uint64_t rounds = 0;
	char items[32][64];

	g_opt.lat_size = 64;
	g_opt.rate = 10000;
	g_opt.duration = 1;
	g_opt.idle_s = 1;
	g_opt.burst = 10000;
	g_opt.reps = 0;
	g_opt.queue_bytes = 4u << 20;
	g_opt.progress = -1;
	g_opt.ring_spin = -1;
	g_opt.pin = 1;
	g_opt.targets = 1;
	g_opt.run_timeout_ns = 120 * (int64_t)1000000000;
	size_t dflt_sizes[] = { 8, 64, 512, 4096, 65536, 1u << 20 };
	g_opt.nsizes = 6;
	memcpy(g_opt.sizes, dflt_sizes, sizeof dflt_sizes);
	g_opt.procs[0] = (struct pc){ 1, 1 };
	g_opt.nprocs = 1;

	size_t len = 0;
	for (int i = 0; i < argc && len < sizeof g_opt.cmdline - 1; i++)
		len += (size_t)snprintf(g_opt.cmdline + len, sizeof g_opt.cmdline - len, "%s%s",
					i ? " " : "", argv[i]);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(s, l) (!strcmp(a, s) || !strcmp(a, l))
#define NEED() do { if (!v) bad("option (needs a value)", a); i++; } while (0)
		if (OPT("-h", "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--list")) {
			list_transports();
			exit(0);
		} else if (OPT("-t", "--transports")) {
			NEED();
			int n = parse_list(v, items, 32);
			g_opt.ntps = 0;
			for (int k = 0; k < n; k++) {
				const struct transport *tp = transport_by_name(items[k]);
				if (!tp)
					bad("transport", items[k]);
				if (g_opt.ntps < 16)
					g_opt.tps[g_opt.ntps++] = tp;
			}
		} else if (OPT("-s", "--sizes")) {
			NEED();
			g_opt.nsizes = parse_list(v, items, 32);
			for (int k = 0; k < g_opt.nsizes; k++)
				if ((g_opt.sizes[k] = parse_size(items[k])) < 8 ||
				    g_opt.sizes[k] > (256u << 20))
					bad("record size (8 B to 256 MiB)", items[k]);
		} else if (OPT("-p", "--procs")) {
			NEED();
			procs_given = 1;
			g_opt.nprocs = parse_list(v, items, 32);
			for (int k = 0; k < g_opt.nprocs; k++) {
				struct pc *pc = &g_opt.procs[k];
				if (sscanf(items[k], "%dx%d", &pc->P, &pc->C) != 2 || pc->P < 1 ||
				    pc->C < 1 || pc->P + pc->C > MAX_PARTIES)
					bad("PxC (e.g. 4x4, at most 64 processes)", items[k]);
			}
		} else if (!strcmp(a, "--size")) {
			NEED();
			if ((g_opt.lat_size = parse_size(v)) < 8 || g_opt.lat_size > (256u << 20))
				bad("record size", v);
		} else if (OPT("-n", "--count")) {
			NEED();
			g_opt.count = (uint64_t)parse_num("count", v, 1);
		} else if (!strcmp(a, "--rounds")) {
			NEED();
			rounds = (uint64_t)parse_num("rounds", v, 10);
			rounds_given = 1;
		} else if (!strcmp(a, "--rate")) {
			NEED();
			g_opt.rate = parse_num("rate", v, 1);
		} else if (!strcmp(a, "--duration")) {
			NEED();
			g_opt.duration = parse_num("duration", v, 0.001);
		} else if (!strcmp(a, "--idle")) {
			NEED();
			g_opt.idle_s = parse_num("idle seconds", v, 0.01);
		} else if (!strcmp(a, "--burst")) {
			NEED();
			g_opt.burst = (uint64_t)parse_num("burst", v, 1);
		} else if (OPT("-r", "--reps")) {
			NEED();
			g_opt.reps = (int)parse_num("reps", v, 1);
			g_opt.reps_given = 1;
			if (g_opt.reps > MAX_REPS)
				bad("reps (at most 16)", v);
		} else if (!strcmp(a, "--queue-bytes")) {
			NEED();
			if ((g_opt.queue_bytes = parse_size(v)) < 4096)
				bad("queue bytes (at least 4K)", v);
		} else if (!strcmp(a, "--ring-spin")) {
			NEED();
			g_opt.ring_spin = (int)parse_num("ring spin", v, 0);
		} else if (!strcmp(a, "--no-pin")) {
			g_opt.pin = 0;
		} else if (!strcmp(a, "--pipe-exact")) {
			g_opt.pipe_exact = 1;
		} else if (!strcmp(a, "--quick")) {
			g_opt.quick = 1;
		} else if (!strcmp(a, "--timeout")) {
			NEED();
			g_opt.run_timeout_ns = (int64_t)(parse_num("timeout", v, 1) * 1e9);
		} else if (!strcmp(a, "--json")) {
			NEED();
			g_opt.json = v;
		} else if (!strcmp(a, "--plot")) {
			NEED();
			g_opt.plot = v;
		} else if (!strcmp(a, "--markdown")) {
			NEED();
			g_opt.markdown = v;
		} else if (!strcmp(a, "--no-targets")) {
			g_opt.targets = 0;
		} else if (!strcmp(a, "--progress")) {
			g_opt.progress = 1;
		} else if (!strcmp(a, "--no-progress")) {
			g_opt.progress = 0;
		} else if (!strcmp(a, "throughput")) {
			todo |= DO_TPUT;
		} else if (!strcmp(a, "pingpong")) {
			todo |= DO_PP_SPIN | DO_PP_BLOCK;
		} else if (!strcmp(a, "pingpong-spin")) {
			todo |= DO_PP_SPIN;
		} else if (!strcmp(a, "pingpong-block")) {
			todo |= DO_PP_BLOCK;
		} else if (!strcmp(a, "telemetry")) {
			todo |= DO_TELEM;
		} else if (!strcmp(a, "paced")) {
			todo |= DO_PACED;
		} else if (!strcmp(a, "idle") || !strcmp(a, "cpu")) {
			todo |= DO_IDLE;
		} else if (!strcmp(a, "burst")) {
			todo |= DO_BURST;
		} else if (!strcmp(a, "all")) {
			todo |= DO_ALL;
		} else {
			fprintf(stderr, "shmring-bench: unknown argument %s\n\n", a);
			usage(stderr);
			exit(2);
		}
#undef OPT
#undef NEED
	}
	if (!g_opt.ntps) {
		for (int i = 0; i < n_transports && i < 16; i++)
			g_opt.tps[g_opt.ntps++] = all_transports[i];
	}
	if (!g_opt.reps)
		g_opt.reps = g_opt.quick ? 1 : 3;
	g_opt.pp_spin = rounds_given ? rounds : g_opt.quick ? 10000 : 100000;
	g_opt.pp_block = rounds_given ? rounds : g_opt.quick ? 1500 : 5000;
	if (g_opt.quick && g_opt.duration == 1)
		g_opt.duration = 0.25;
	if (!todo) {
		todo = DO_ALL;
		g_opt.default_suite = 1;
		if (!procs_given) {
			struct pc scale[] = { { 1, 1 }, { 1, 2 }, { 2, 1 }, { 2, 2 }, { 4, 4 } };
			memcpy(g_opt.procs, scale, sizeof scale);
			g_opt.nprocs = 5;
		}
	}
	return todo;
}

/* The default suite's light ring (SHMRING_LIGHT_PUBLISH): shmring-light
 * joins the transports of a point when `yes` (and is not there already);
 * true if it was added, for without_light. */
static bool with_light(bool yes)
{
	if (!yes || g_opt.ntps >= (int)(sizeof g_opt.tps / sizeof g_opt.tps[0]))
		return false;
	for (int i = 0; i < g_opt.ntps; i++)
		if (g_opt.tps[i] == &tp_shmring_light)
			return false;
	g_opt.tps[g_opt.ntps++] = &tp_shmring_light;
	return true;
}

static void without_light(bool added)
{
	if (added)
		g_opt.ntps--;
}

int main(int argc, char **argv)
{
	int todo;
	int failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);	/* a transport error shows up as EPIPE */
	todo = parse_args(argc, argv);
	g_ncpus = usable_cpus(g_cpus, 256);
	machine_info(&g_machine);
	progress_init(g_opt.progress < 0 ? isatty(2) : g_opt.progress, 0);

	if (g_opt.json)
		mkdir_parents(g_opt.json);
	if (g_opt.markdown)
		mkdir_parents(g_opt.markdown);
	if (g_opt.plot) {
		char d[1024];
		snprintf(d, sizeof d, "%s/", g_opt.plot);
		mkdir_parents(d);
	}
	if (g_opt.markdown) {
		g_md = fopen(g_opt.markdown, "w");
		if (!g_md) {
			perror(g_opt.markdown);
			return 2;
		}
		fprintf(g_md, "<!-- written by shmring-bench; regenerate, do not edit -->\n"
			      "### Results: %s\n\n", g_machine.date);
		fprintf(g_md, "- command: `%s`\n- machine: %s, %d cores online (%d usable), %s\n"
			      "- load average at start: %.2f %.2f %.2f\n",
			g_opt.cmdline, g_machine.cpu_model, g_machine.cores_online,
			g_machine.cores_usable, g_machine.kernel, g_machine.load1, g_machine.load5,
			g_machine.load15);
	}

	printf("shmring-bench: %s\n", g_opt.default_suite ? "default suite" : g_opt.cmdline);
	report_machine(stdout, &g_machine);
	printf("transports:");
	for (int i = 0; i < g_opt.ntps; i++)
		printf(" %s", g_opt.tps[i]->name);
	printf("; %d rep%s per point, queue %zu bytes per transport%s\n", g_opt.reps,
	       g_opt.reps > 1 ? "s" : "", g_opt.queue_bytes,
	       g_ncpus < 2 ? "; ONE CPU: nothing pinned"
	       : g_opt.pin ? "; 1x1 and ping-pong pinned to two CPUs" : "; nothing pinned (--no-pin)");

	int64_t t0 = now_ns();
	if (todo & DO_TPUT) {
		if (g_opt.default_suite) {
			/* record sizes at 1x1, then process counts at 64 B; at 64 B
			 * a light ring too, in the same points (same reps, same
			 * minutes as the others: the targets pair them by rep) */
			for (int s = 0; s < g_opt.nsizes; s++) {
				bool light = with_light(g_opt.sizes[s] == g_opt.lat_size);
				sc_throughput((struct pc){ 1, 1 }, g_opt.sizes[s]);
				without_light(light);
			}
			bool light = with_light(true);
			for (int p = 0; p < g_opt.nprocs; p++) {
				struct pc pc = g_opt.procs[p];
				int done = 0;
				for (int s = 0; s < g_opt.nsizes; s++)
					done |= pc.P == 1 && pc.C == 1 && g_opt.sizes[s] == g_opt.lat_size;
				if (!done)
					sc_throughput(pc, g_opt.lat_size);
			}
			without_light(light);
		} else {
			for (int p = 0; p < g_opt.nprocs; p++)
				for (int s = 0; s < g_opt.nsizes; s++)
					sc_throughput(g_opt.procs[p], g_opt.sizes[s]);
		}
	}
	if ((todo & DO_TPUT) && g_opt.default_suite)
		sc_throughput_inline();
	if (todo & DO_TELEM) {
		bool light = with_light(g_opt.default_suite);
		sc_telemetry();
		without_light(light);
	}
	if ((todo & DO_PP_SPIN) && g_opt.default_suite)
		sc_pingpong_inline(); /* before sc_pingpong(1): its floor is the latest */
	if (todo & DO_PP_SPIN)
		sc_pingpong(1);
	if (todo & DO_PP_BLOCK)
		sc_pingpong(0);
	if ((todo & DO_PP_BLOCK) && g_opt.default_suite)
		sc_pingpong_event_fd();
	if (todo & DO_PACED)
		sc_paced();
	if (todo & DO_IDLE)
		sc_idle();
	if (todo & DO_BURST)
		sc_burst();
	progress_clear();

	for (int i = 0; i < g_nmeas; i++)
		if (!g_meas[i]->ok && !g_meas[i]->na)
			failed = 1;
	if (g_opt.targets)
		report_targets(stdout, 0);
	if (g_md) {
		if (g_opt.targets)
			report_targets(g_md, 1);
		fclose(g_md);
	}
	printf("\ntotal %.1f s%s\n", (double)(now_ns() - t0) / 1e9,
	       failed ? "; SOME RUNS FAILED (see FAILED above)" : "; every record checked out");
	if (g_opt.json && write_json(g_opt.json) == 0)
		printf("json: %s\n", g_opt.json);
	if (g_opt.plot)
		write_plots(g_opt.plot);
	return failed ? 1 : 0;
}
