/*
 * plot.c - --plot DIR: the data as .dat files, a gnuplot script (plots.gp)
 * and, when gnuplot is installed (Debian: gnuplot-nox), the SVG plots:
 *   throughput-vs-size.svg        records/s against record size (P x C = 1x1)
 *   throughput-vs-size-bytes.svg  MB/s against record size, memcpy for floor
 *   throughput-vs-procs.svg       records/s against P x C (64 B records)
 *   latency-cdf-<scenario>.svg    latency distributions (paced, ping-pong)
 * Without gnuplot the data and the script are still written; the harness
 * says how to install it and rerun the script.
 */
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static FILE *open_in(const char *dir, const char *name)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		perror(path);
	return f;
}


/* The transports (and floor) seen in scenario sc, in order of first
 * appearance. */
static int names_in(enum scen sc, const char **names, int max)
{
	int n = 0;

	for (int i = 0; i < g_nmeas; i++) {
		const struct meas *m = g_meas[i];
		int seen = 0;
		if (m->sc != sc)
			continue;
		for (int k = 0; k < n; k++)
			seen |= !strcmp(names[k], meas_label(m));
		if (!seen && n < max)
			names[n++] = meas_label(m);
	}
	return n;
}

static const struct meas *find_tp(int P, int C, size_t size, const char *name)
{
	for (int i = 0; i < g_nmeas; i++) {
		const struct meas *m = g_meas[i];
		if (m->sc == SC_THROUGHPUT && m->P == P && m->C == C && m->size == size &&
		    !strcmp(meas_label(m), name) && !m->na && m->ok)
			return m;
	}
	return NULL;
}

/* A fixed colour per transport, the floor black and dashed, so that every
 * plot reads the same. */
static const char *style(const char *name)
{
	static const struct {
		const char *name, *style;
	} st[] = {
		{ "shmring", "lc rgb '#1f77b4'" },	{ "shmring-zc", "lc rgb '#17becf'" },
		{ "shmring-batch", "lc rgb '#2ca02c'" }, { "pipe", "lc rgb '#d62728'" },
		{ "seqpacket", "lc rgb '#ff7f0e'" },	{ "mq", "lc rgb '#9467bd'" },
		{ "mutex-ring", "lc rgb '#8c564b'" },	{ "wfcqueue", "lc rgb '#e377c2'" },
	};
	if (!strcmp(name, "ref: bare SPSC"))
		return "lc rgb '#999999'";
	if (!strncmp(name, "floor", 5))
		return "lc rgb 'black'";
	for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
		if (!strcmp(st[i].name, name))
			return st[i].style;
	return "lc rgb '#7f7f7f'";
}

static void quote(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void gp_head(FILE *gp, const char *out, const char *title)
{
	fprintf(gp, "\nreset\nset terminal svg size 960,600 dynamic font 'sans,12' background rgb 'white'\n"
		    "set output '%s'\nset title ", out);
	quote(gp, title);
	fprintf(gp, "\nset grid\nset key outside right top\nset datafile missing 'NaN'\n");
}

/* Throughput against record size, at the configuration with most sizes. */
static int plot_vs_size(const char *dir, FILE *gp, const char **names, int nn)
{
	struct pc pc = { 1, 1 };
	size_t sizes[64];
	int ns = 0, best = 0;

	for (int i = 0; i < g_nmeas; i++) {
		const struct meas *m = g_meas[i];
		int n = 0;
		if (m->sc != SC_THROUGHPUT)
			continue;
		for (int k = 0; k < g_nmeas; k++)
			n += g_meas[k]->sc == SC_THROUGHPUT && g_meas[k]->P == m->P &&
			     g_meas[k]->C == m->C && !strcmp(g_meas[k]->transport, m->transport);
		if (n > best || (n == best && m->P == 1 && m->C == 1)) {
			best = n;
			pc = (struct pc){ m->P, m->C };
		}
	}
	for (int i = 0; i < g_nmeas; i++) {
		const struct meas *m = g_meas[i];
		int seen = 0;
		if (m->sc != SC_THROUGHPUT || m->P != pc.P || m->C != pc.C)
			continue;
		for (int k = 0; k < ns; k++)
			seen |= sizes[k] == m->size;
		if (!seen && ns < 64)
			sizes[ns++] = m->size;
	}
	if (ns < 2)
		return 0;
	for (int a = 1; a < ns; a++)	/* sort */
		for (int b = a; b > 0 && sizes[b] < sizes[b - 1]; b--) {
			size_t t = sizes[b];
			sizes[b] = sizes[b - 1];
			sizes[b - 1] = t;
		}
	FILE *d = open_in(dir, "throughput-vs-size.dat");
	if (!d)
		return -1;
	fprintf(d, "# records/s and bytes/s by record size, %dx%d\n# bytes label", pc.P, pc.C);
	for (int k = 0; k < nn; k++)
		fprintf(d, " \"%s rec/s\" \"%s B/s\"", names[k], names[k]);
	fprintf(d, "\n");
	for (int s = 0; s < ns; s++) {
		char lb[32];
		fprintf(d, "%zu \"%s\"", sizes[s], fmt_size(sizes[s], lb, sizeof lb));
		for (int k = 0; k < nn; k++) {
			const struct meas *m = find_tp(pc.P, pc.C, sizes[s], names[k]);
			if (m)
				fprintf(d, " %.6g %.6g", m->value, m->value * (double)sizes[s]);
			else
				fprintf(d, " NaN NaN");
		}
		fprintf(d, "\n");
	}
	fclose(d);
	for (int bytes = 0; bytes < 2; bytes++) {
		char title[200];
		snprintf(title, sizeof title, "%s vs record size, %d producer%s x %d consumer%s (%s)",
			 bytes ? "MB/s" : "records/s", pc.P, pc.P > 1 ? "s" : "", pc.C,
			 pc.C > 1 ? "s" : "", g_machine.cpu_model);
		gp_head(gp, bytes ? "throughput-vs-size-bytes.svg" : "throughput-vs-size.svg", title);
		fprintf(gp, "set logscale xy\nset format y '%%.0s%%c'\nset xlabel 'record size'\n"
			    "set ylabel '%s'\nplot ", bytes ? "MB/s" : "records/s");
		for (int k = 0; k < nn; k++) {
			fprintf(gp, "%s'throughput-vs-size.dat' using 1:($%d%s):xtic(2) with linespoints "
				    "lw 2 pt 7 ps 0.6 %s title ", k ? ", \\\n     " : "", 3 + 2 * k + bytes,
				bytes ? "/1e6" : "", style(names[k]));
			quote(gp, names[k]);
		}
		fprintf(gp, "\n");
	}
	return 2;
}

/* Throughput against P x C, at the record size with most configurations. */
static int plot_vs_procs(const char *dir, FILE *gp, const char **names, int nn)
{
	size_t size = 64;
	int best = 0;
	struct pc pcs[64];
	int np = 0;

	for (int i = 0; i < g_nmeas; i++) {
		const struct meas *m = g_meas[i];
		int n = 0;
		if (m->sc != SC_THROUGHPUT)
			continue;
		for (int k = 0; k < g_nmeas; k++)
			n += g_meas[k]->sc == SC_THROUGHPUT && g_meas[k]->size == m->size &&
			     !strcmp(g_meas[k]->transport, m->transport);
		if (n > best) {
			best = n;
			size = m->size;
		}
	}
	for (int i = 0; i < g_nmeas; i++) {
		const struct meas *m = g_meas[i];
		int seen = 0;
		if (m->sc != SC_THROUGHPUT || m->size != size)
			continue;
		for (int k = 0; k < np; k++)
			seen |= pcs[k].P == m->P && pcs[k].C == m->C;
		if (!seen && np < 64)
			pcs[np++] = (struct pc){ m->P, m->C };
	}
	if (np < 2)
		return 0;
	FILE *d = open_in(dir, "throughput-vs-procs.dat");
	if (!d)
		return -1;
	fprintf(d, "# records/s by producers x consumers, %zu-byte records\n# config", size);
	for (int k = 0; k < nn; k++)
		fprintf(d, " \"%s\"", names[k]);
	fprintf(d, "\n");
	for (int p = 0; p < np; p++) {
		fprintf(d, "\"%dx%d\"", pcs[p].P, pcs[p].C);
		for (int k = 0; k < nn; k++) {
			const struct meas *m = find_tp(pcs[p].P, pcs[p].C, size, names[k]);
			fprintf(d, m ? " %.6g" : " NaN", m ? m->value : 0);
		}
		fprintf(d, "\n");
	}
	fclose(d);
	char title[200], sz[32];
	snprintf(title, sizeof title, "records/s vs producers x consumers, %s records, %d CPUs (%s)",
		 fmt_size(size, sz, sizeof sz), g_machine.cores_usable, g_machine.cpu_model);
	gp_head(gp, "throughput-vs-procs.svg", title);
	fprintf(gp, "set logscale y\nset format y '%%.0s%%c'\nset xlabel 'producers x consumers'\n"
		    "set ylabel 'records/s'\n"
		    "set xrange [-0.5:%d.5]\nplot ", np - 1);
	for (int k = 0, j = 0; k < nn; k++) {
		if (!strncmp(names[k], "floor", 5) || !strncmp(names[k], "ref:", 4))
			continue;
		fprintf(gp, "%s'throughput-vs-procs.dat' using 0:%d:xtic(1) with linespoints lw 2 pt 7 "
			    "ps 0.6 %s title ", j++ ? ", \\\n     " : "", 2 + k, style(names[k]));
		quote(gp, names[k]);
	}
	fprintf(gp, "\n");
	return 1;
}

struct cdf_file {
	FILE *f;
	uint64_t count;
};

static void cdf_row(double v, double frac, void *arg)
{
	struct cdf_file *c = arg;
	double tail = frac < 1 ? 1 / (1 - frac) : 2.0 * (double)c->count;
	fprintf(c->f, "%.0f %.6g %.6g\n", v, frac, tail);
}

static int plot_cdf(const char *dir, FILE *gp, enum scen sc)
{
	int n = 0;
	char title[200], name[128];

	for (int i = 0; i < g_nmeas; i++)
		n += g_meas[i]->sc == sc && g_meas[i]->hist && g_meas[i]->hist->count;
	if (!n)
		return 0;
	snprintf(title, sizeof title, "latency distribution: %s (%s)",
		 sc == SC_PACED ? "paced one-way, from the intended send time"
		 : sc == SC_PINGPONG_SPIN ? "spinning ping-pong, one-way"
					  : "blocking ping-pong, one-way",
		 g_machine.cpu_model);
	snprintf(name, sizeof name, "latency-cdf-%s.svg", scen_name[sc]);
	gp_head(gp, name, title);
	fprintf(gp, "set logscale xy\nset xlabel 'latency'\nset ylabel 'percentile'\n"
		    "set xtics ('10 ns' 10, '100 ns' 100, '1 us' 1e3, '10 us' 1e4, '100 us' 1e5, "
		    "'1 ms' 1e6, '10 ms' 1e7, '100 ms' 1e8, '1 s' 1e9)\n"
		    "set ytics ('0%%%%' 1, '50%%%%' 2, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, "
		    "'99.99%%%%' 10000, '99.999%%%%' 100000)\nset yrange [1:*]\nplot ");
	int k = 0;
	for (int i = 0; i < g_nmeas; i++) {
		const struct meas *m = g_meas[i];
		if (m->sc != sc || !m->hist || !m->hist->count)
			continue;
		snprintf(name, sizeof name, "latency-cdf-%s-%s.dat", scen_name[sc],
			 m->is_floor == 1 ? "floor" : meas_key(m));
		FILE *d = open_in(dir, name);
		if (!d)
			return -1;
		struct cdf_file c = { d, m->hist->count };
		fprintf(d, "# ns cumulative_fraction 1/(1-fraction)\n");
		hist_walk(m->hist, cdf_row, &c);
		fclose(d);
		fprintf(gp, "%s'%s' using 1:3 with steps lw 2 %s title ", k++ ? ", \\\n     " : "", name,
			style(meas_label(m)));
		quote(gp, meas_label(m));
	}
	fprintf(gp, "\n");
	return 1;
}

static int have_gnuplot(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		snprintf(buf, sizeof buf, "%.*s/gnuplot", (int)n, path);
		if (access(buf, X_OK) == 0)
			return 1;
		path += n + (path[n] == ':');
	}
	return 0;
}

int write_plots(const char *dir)
{
	const char *names[32];
	int nn, made = 0;
	FILE *gp;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		perror(dir);
		return -1;
	}
	gp = open_in(dir, "plots.gp");
	if (!gp)
		return -1;
	fprintf(gp, "# written by shmring-bench (%s); run in this folder: gnuplot plots.gp\n",
		g_machine.date);
	nn = names_in(SC_THROUGHPUT, names, 32);
	int r[5] = { plot_vs_size(dir, gp, names, nn), plot_vs_procs(dir, gp, names, nn),
		     plot_cdf(dir, gp, SC_PACED), plot_cdf(dir, gp, SC_PINGPONG_SPIN),
		     plot_cdf(dir, gp, SC_PINGPONG_BLOCK) };
	for (int i = 0; i < 5; i++)
		made += r[i] > 0 ? r[i] : 0;
	fclose(gp);
	if (!made) {
		printf("plots: nothing to plot in %s (needs throughput at two sizes or configurations, "
		       "or a latency scenario)\n", dir);
		return 0;
	}
	if (!have_gnuplot()) {
		printf("plots: gnuplot not found: apt-get install gnuplot-nox, then: cd %s && gnuplot "
		       "plots.gp\n(the data and the script are in %s)\n", dir, dir);
		return 0;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(127);
		execlp("gnuplot", "gnuplot", "plots.gp", (char *)NULL);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("plots: gnuplot failed (see above); the data and plots.gp are in %s\n", dir);
		return -1;
	}
	printf("plots: %d SVG plot%s in %s\n", made, made > 1 ? "s" : "", dir);
	return 0;
}
