/*
 * json.c - --json FILE: one object per measurement, self-contained (each
 * carries the machine it was taken on), plus the run's options and the
 * targets.
 *
 *   { "tool": "shmring-bench", "date": ..., "command": ..., "machine": {...},
 *     "options": {...},
 *     "measurements": [ { "scenario", "transport", "producers", "consumers",
 *                         "record_bytes", "count", "reps", "ok", "na", "note",
 *                         "setup", "value", "unit", "per_rep": [...],
 *                         "x_pipe", "x_floor", "figures": {...},
 *                         "cdf": [[ns, fraction], ...] (latency only),
 *                         "machine": {...} }, ... ],
 *     "targets": [ ... ] }
 */
#include "harness.h"

#include <math.h>
#include <string.h>

static void jstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void jnum(FILE *f, double v)
{
	if (v == v && !isinf(v))
		fprintf(f, "%.6g", v);
	else
		fprintf(f, "null");
}

static void machine_json(FILE *f, const struct machine *m)
{
	fprintf(f, "{\"cpu_model\": ");
	jstr(f, m->cpu_model);
	fprintf(f, ", \"cores_online\": %d, \"cores_usable\": %d, \"kernel\": ", m->cores_online,
		m->cores_usable);
	jstr(f, m->kernel);
	fprintf(f, ", \"hostname\": ");
	jstr(f, m->hostname);
	fprintf(f, ", \"loadavg_at_start\": [%.2f, %.2f, %.2f], \"root\": %s}", m->load1, m->load5,
		m->load15, m->root ? "true" : "false");
}

static const char *unit_of(enum scen sc)
{
	switch (sc) {
	case SC_THROUGHPUT: return "records/s";
	case SC_PINGPONG_SPIN:
	case SC_PINGPONG_BLOCK: return "ns one-way (median batch mean)";
	case SC_PACED: return "ns one-way (p50)";
	case SC_IDLE: return "% of a core";
	case SC_BURST: return "ns to drain";
	default: return "";
	}
}

struct cdf_ctx {
	FILE *f;
	int n;
};

static void cdf_point(double v, double frac, void *arg)
{
	struct cdf_ctx *c = arg;
	fprintf(c->f, "%s[%.0f, %.6g]", c->n++ ? ", " : "", v, frac);
}

int write_json(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		return -1;
	}
	fprintf(f, "{\n  \"tool\": \"shmring-bench\",\n  \"date\": ");
	jstr(f, g_machine.date);
	fprintf(f, ",\n  \"command\": ");
	jstr(f, g_opt.cmdline);
	fprintf(f, ",\n  \"machine\": ");
	machine_json(f, &g_machine);
	fprintf(f, ",\n  \"options\": {\"reps\": %d, \"queue_bytes\": %zu, \"quick\": %s, "
		   "\"pipe_reads\": \"%s\", \"pingpong_spin_rounds\": %llu, "
		   "\"pingpong_block_rounds\": %llu, \"paced_rate\": %g, \"paced_seconds\": %g, "
		   "\"idle_seconds\": %g, \"burst\": %llu},\n",
		g_opt.reps, g_opt.queue_bytes, g_opt.quick ? "true" : "false",
		g_opt.pipe_exact ? "exact" : "buffered", (unsigned long long)g_opt.pp_spin,
		(unsigned long long)g_opt.pp_block, g_opt.rate, g_opt.duration, g_opt.idle_s,
		(unsigned long long)g_opt.burst);
	fprintf(f, "  \"measurements\": [");
	for (int i = 0; i < g_nmeas; i++) {
		const struct meas *m = g_meas[i];
		fprintf(f, "%s\n    {\"scenario\": \"%s\", \"transport\": ", i ? "," : "",
			scen_name[m->sc]);
		jstr(f, meas_key(m));
		fprintf(f, ", \"producers\": %d, \"consumers\": %d, \"record_bytes\": %zu, "
			   "\"count\": %llu, \"reps\": %d, \"ok\": %s, \"na\": %s, \"note\": ",
			m->P, m->C, m->size, (unsigned long long)m->count, m->reps,
			m->ok ? "true" : "false", m->na ? "true" : "false");
		jstr(f, m->note);
		fprintf(f, ", \"setup\": ");
		jstr(f, m->desc);
		fprintf(f, ", \"value\": ");
		jnum(f, m->value);
		fprintf(f, ", \"unit\": \"%s\", \"per_rep\": [", unit_of(m->sc));
		for (int k = 0; k < m->nrep; k++) {
			fprintf(f, "%s", k ? ", " : "");
			jnum(f, m->rep[k]);
		}
		fprintf(f, "], \"x_pipe\": ");
		jnum(f, m->x_pipe);
		fprintf(f, ", \"x_floor\": ");
		jnum(f, m->x_floor);
		fprintf(f, ", \"figures\": {");
		for (int k = 0; k < m->nfigs; k++) {
			fprintf(f, "%s\"%s\": ", k ? ", " : "", m->figs[k].name);
			jnum(f, m->figs[k].v);
		}
		fprintf(f, "}");
		if (m->hist && m->hist->count) {
			struct cdf_ctx c = { f, 0 };
			fprintf(f, ", \"cdf\": [");
			hist_walk(m->hist, cdf_point, &c);
			fprintf(f, "]");
		}
		fprintf(f, ", \"machine\": ");
		machine_json(f, &g_machine);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ],\n  \"targets\": ");
	targets_json(f);
	fprintf(f, "\n}\n");
	if (fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}
