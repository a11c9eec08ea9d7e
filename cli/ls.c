/*
 * ls.c - `shmring ls`: every named ring, one line each (or JSON).
 *
 * Every entry of /dev/shm is probed without waiting (shmring_probe); what
 * is not a ring is skipped (shown, marked, with --all).  Each ring is swept
 * for dead attachments first, so the counts are those of processes alive
 * now.  ls exits 0 whatever else lies in /dev/shm.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct column {
	const char *name;   /* for --output, and the heading */
	const char *help;
	bool number;        /* right-aligned */
	bool size;          /* bytes: human-readable unless --bytes */
};

static const struct column columns[] = {
	{ "NAME",       "ring name",                                   false, false },
	{ "STATUS",     "ring, or what else the file is",             false, false },
	{ "CAPACITY",   "record storage",                              true,  true  },
	{ "MAXREC",     "largest record",                              true,  true  },
	{ "RECORDS",    "records waiting",                             true,  false },
	{ "BYTES",      "payload bytes waiting",                       true,  true  },
	{ "USED",       "storage not yet reusable",                    true,  true  },
	{ "PROD",       "live producers, checked now",                 true,  false },
	{ "CONS",       "live consumers, checked now",                 true,  false },
	{ "PIDS",       "pids of the live attachments",                false, false },
	{ "STATE",      "open, closed, or eof (end of stream)",        false, false },
	{ "UNFINISHED", "join counter: tasks not yet done",            true,  false },
	{ "LOST",       "records dead consumers took, never released", true,  false },
	{ "LOSTTASKS",  "join tasks forgiven with dead peers",         true,  false },
	{ "RECOVERED",  "dead producers' unpublished claims skipped",  true,  false },
	{ "SWEPT",      "dead attachments this ls freed",              true,  false },
	{ "OWNER",      "owner's uid",                                 true,  false },
	{ "MODE",       "permission bits",                             false, false },
	{ "FILESIZE",   "size of the file",                            true,  true  },
	{ "DROPPED",    "records puts refused because the ring was full", true, false },
	{ "OVERWRITTEN", "records overwrite puts discarded unread",    true,  false },
	{ "KIND",       "pipe, persistent, broadcast, overwrite (-persistent)", false, false },
	{ "PERSISTENT", "yes for a persistent ring (no end of stream)", false, false },
	{ "SUBS",       "live subscribers (broadcast rings)",          true,  false },
	{ "MAXATTACH",  "size of the attachment table",                true,  false },
};
#define NCOLUMNS (sizeof columns / sizeof columns[0])
static const char default_columns[] =
	"NAME,KIND,CAPACITY,RECORDS,BYTES,PROD,CONS,PIDS,STATE,LOST,DROPPED,OVERWRITTEN,RECOVERED";
/* --all's default: what each file is, too (shmring(1): "with STATUS ...") */
static const char default_columns_all[] =
	"NAME,STATUS,KIND,CAPACITY,RECORDS,BYTES,PROD,CONS,PIDS,STATE,LOST,DROPPED,OVERWRITTEN,"
	"RECOVERED";

static int column_index(const char *name)
{
	for (size_t i = 0; i < NCOLUMNS; i++)
		if (!strcasecmp(columns[i].name, name))
			return (int)i;
	return -1;
}

static void live_pids(const struct ring_view *v, char *buf, size_t n)
{
	size_t at = 0;
	buf[0] = '\0';
	for (int i = 0; i < v->natt && at + 1 < n; i++) {
		if (v->att[i].state != SHMRING_ATTACH_LIVE)
			continue;
		int k = snprintf(buf + at, n - at, "%s%d", at ? "," : "", (int)v->att[i].pid);
		if (k < 0 || (size_t)k >= n - at) {
			/* no room for the whole pid: none of it (a cut one named
			 * another process), and say more were left out */
			buf[at] = '\0';
			if (at + 4 < n)
				strcat(buf + at, ",...");
			break;
		}
		at += (size_t)k;
	}
	if (!at)
		snprintf(buf, n, "-");
}

/* The cell of column c for view v. */
static void cell(const struct ring_view *v, int c, bool bytes, char *buf, size_t n)
{
	const struct shmring_info *in = &v->info;
	bool ring = v->status == 0;
	unsigned long long num;
	switch (c) {
	case 0:  snprintf(buf, n, "%s", v->name); return;
	case 1:  snprintf(buf, n, "%s", status_word(v->status)); return;
	case 9:  if (ring) live_pids(v, buf, n); else snprintf(buf, n, "-"); return;
	case 10: snprintf(buf, n, "%s", ring ? view_state(v) : "-"); return;
	case 16: snprintf(buf, n, "%u", (unsigned)v->probe.uid); return;
	case 17: snprintf(buf, n, "%04o", v->probe.mode); return;
	case 18: num = v->probe.file_size; break;
	case 21: snprintf(buf, n, "%s", ring ? view_kind(v) : "-"); return;
	case 22: snprintf(buf, n, "%s", ring ? (in->persistent ? "yes" : "no") : "-"); return;
	default:
		if (!ring) {
			snprintf(buf, n, "-");
			return;
		}
		switch (c) {
		case 2:  num = in->capacity; break;
		case 3:  num = in->max_record; break;
		case 4:  num = in->records; break;
		case 5:  num = in->bytes; break;
		case 6:  num = in->used; break;
		case 7:  num = v->live_producers; break;
		case 8:  num = v->live_consumers; break;
		case 11: num = in->unfinished; break;
		case 12: num = in->lost_records; break;
		case 13: num = in->lost_tasks; break;
		case 14: num = in->recovered_claims; break;
		case 19: num = in->dropped; break;
		case 20: num = in->overwritten; break;
		case 23: num = (unsigned long long)v->subscribers; break;
		case 24: num = in->max_attach; break;
		default: num = (unsigned long long)v->swept; break;
		}
	}
	if (columns[c].size && !bytes)
		human_size(buf, n, num);
	else
		snprintf(buf, n, "%llu", num);
}

/* JSON: one object per ring, the same keys every time (docs: shmring(1)). */
void view_json(FILE *f, const struct ring_view *v, bool attachments)
{
	const struct shmring_info *in = &v->info;
	fputs("{\"name\": ", f);
	json_string(f, v->name);
	fprintf(f, ", \"status\": \"%s\"", status_word(v->status));
	if (v->status) {
		fprintf(f, ", \"error\": ");
		json_string(f, ring_error_text(v->status));
	} else {
		fprintf(f, ", \"capacity\": %zu, \"max_record\": %zu, \"records\": %zu, "
		           "\"bytes\": %zu, \"used\": %zu, \"producers\": %u, \"consumers\": %u, "
		           "\"closed\": %s, \"eof\": %s, \"state\": \"%s\", \"unfinished\": %llu, "
		           "\"lost_records\": %llu, \"lost_tasks\": %llu, \"recovered_claims\": %llu, "
		           "\"futex_waits\": %llu, \"futex_wakes\": %llu, \"swept\": %d, "
		           "\"put_slots\": %llu, \"taken_slots\": %llu, \"pids\": [",
		        in->capacity, in->max_record, in->records, in->bytes, in->used,
		        v->live_producers, v->live_consumers, in->closed ? "true" : "false",
		        in->eof ? "true" : "false", view_state(v),
		        (unsigned long long)in->unfinished, (unsigned long long)in->lost_records,
		        (unsigned long long)in->lost_tasks, (unsigned long long)in->recovered_claims,
		        (unsigned long long)in->futex_waits, (unsigned long long)in->futex_wakes,
		        v->swept, (unsigned long long)v->traffic.put_slots,
		        (unsigned long long)v->traffic.taken_slots);
		bool first = true;
		for (int i = 0; i < v->natt; i++) {
			if (v->att[i].state != SHMRING_ATTACH_LIVE)
				continue;
			fprintf(f, "%s%d", first ? "" : ", ", (int)v->att[i].pid);
			first = false;
		}
		fputc(']', f);
		fprintf(f, ", \"kind\": \"%s\", \"persistent\": %s, \"broadcast\": %s, "
		           "\"overwrite\": %s, \"redeliver\": %s, \"light\": %s, \"max_attach\": %zu, "
		           "\"dropped\": %llu, \"overwritten\": %llu, \"subscribers\": %d, "
		           "\"redelivered\": %llu, \"redeliver_waiting\": %llu, "
		           "\"dead_letters\": %llu, \"dead_waiting\": %llu",
		        view_kind(v), in->persistent ? "true" : "false",
		        (in->delivery & SHMRING_BROADCAST) ? "true" : "false",
		        (in->delivery & SHMRING_OVERWRITE) ? "true" : "false",
		        (in->delivery & SHMRING_REDELIVER) ? "true" : "false",
		        (in->delivery & SHMRING_LIGHT_PUBLISH) ? "true" : "false", in->max_attach,
		        (unsigned long long)in->dropped, (unsigned long long)in->overwritten,
		        v->subscribers, (unsigned long long)in->redelivered,
		        (unsigned long long)in->redeliver_waiting,
		        (unsigned long long)in->dead_letters, (unsigned long long)in->dead_waiting);
		if (attachments) {
			fputs(", \"attachments\": [", f);
			for (int i = 0; i < v->natt; i++) {
				const struct shmring_attachment *a = &v->att[i];
				fprintf(f, "%s{\"pid\": %d, \"producer\": %s, \"consumer\": %s, "
				           "\"state\": \"%s\", \"start_time\": %llu, \"taken\": %llu, "
				           "\"done\": %llu}",
				        i ? ", " : "", (int)a->pid,
				        (a->roles & SHMRING_PRODUCER) ? "true" : "false",
				        (a->roles & SHMRING_CONSUMER) ? "true" : "false",
				        attach_state_text(a->state), (unsigned long long)a->start_time,
				        (unsigned long long)a->taken, (unsigned long long)a->done);
			}
			fputc(']', f);
			fputs(", \"subscriptions\": [", f);
			for (int i = 0; i < v->nsub; i++) {
				const struct shmring_subscriber *b = &v->sub[i];
				fprintf(f, "%s{\"pid\": %d, \"policy\": \"%s\", \"lag_records\": %llu, "
				           "\"lag_bytes\": %llu, \"lapped\": %s, \"lost\": %llu, "
				           "\"state\": \"%s\"}",
				        i ? ", " : "", (int)b->pid, sub_policy(b),
				        (unsigned long long)b->lag_records, (unsigned long long)b->lag_bytes,
				        b->lapped ? "true" : "false", (unsigned long long)b->lost,
				        sub_liveness(v, i));
			}
			fputc(']', f);
		}
	}
	fprintf(f, ", \"uid\": %u, \"mode\": \"%04o\", \"file_size\": %llu}",
	        (unsigned)v->probe.uid, v->probe.mode, (unsigned long long)v->probe.file_size);
}

static int list_columns(void)
{
	for (size_t i = 0; i < NCOLUMNS; i++)
		printf("%-11s %s\n", columns[i].name, columns[i].help);
	return 0;
}

static const char ls_usage[] =
	"usage: shmring ls [--all] [--json] [--output COLS] [--no-headings] [--bytes]\n"
	"       shmring ls --list-columns\n";

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'J' },
		{ "output", required_argument, NULL, 'o' },
		{ "no-headings", no_argument, NULL, 'H' },
		{ "noheadings", no_argument, NULL, 'H' },
		{ "bytes", no_argument, NULL, 'b' },
		{ "list-columns", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool all = false, json = false, headings = true, bytes = false;
	const char *output = default_columns;
	int c;
	while ((c = getopt_long(argc, argv, "aJo:bh", opts, NULL)) != -1) {
		switch (c) {
		case 'a': all = true; break;
		case 'J': json = true; break;
		case 'o': output = optarg; break;
		case 'H': headings = false; break;
		case 'b': bytes = true; break;
		case 'L': return list_columns();
		case 'h': fputs(ls_usage, stdout); return 0;
		default:  return usage_error("ls", "bad option (see the usage above)");
		}
	}
	if (optind < argc)
		return usage_error("ls", "unexpected argument '%s'", argv[optind]);

	int cols[NCOLUMNS * 2], ncols = 0;
	const char *defaults = all ? default_columns_all : default_columns;
	bool plain_defaults = output == default_columns && !all;
	if (output == default_columns)
		output = defaults;
	if (!json) {
		char *copy = strdup(output[0] == '+' ? output + 1 : output);
		char *all_cols = NULL;
		if (output[0] == '+' && asprintf(&all_cols, "%s,%s", defaults, copy) >= 0) {
			free(copy);
			copy = all_cols;
		}
		for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			int k = column_index(t);
			if (k < 0 || ncols == (int)(sizeof cols / sizeof cols[0])) {
				usage_error("ls", "unknown column '%s' (shmring ls --list-columns)", t);
				free(copy);
				return EXIT_USAGE;
			}
			cols[ncols++] = k;
		}
		free(copy);
		if (!ncols)
			return usage_error("ls", "no columns");
	}

	char **names;
	size_t n;
	int rc = list_shm_names(&names, &n);
	if (rc) {
		/* no /dev/shm: no rings */
		if (json)
			puts("[]");
		return 0;
	}
	struct ring_view *views = calloc(n ? n : 1, sizeof *views);
	if (!views) {
		free_names(names, n);
		warnx_("out of memory");
		return 1;
	}
	size_t shown = 0;
	for (size_t i = 0; i < n; i++) {
		int st = view_load(names[i], &views[shown]);
		/* not a ring name at all, or gone meanwhile: never shown */
		if (st == -EINVAL || st == -ENAMETOOLONG || st == -ENOENT)
			continue;
		/* a ring made in another PID namespace (a container sharing
		 * /dev/shm), or by a library of another layout version, is a
		 * ring: listed, though not read (its pids mean nothing here; its
		 * layout is not ours) */
		if (st && st != -EXDEV && st != -EPROTONOSUPPORT && !all)
			continue;
		shown++;
	}
	/* A row plain ls shows that is not read (another PID namespace's ring,
	 * or another layout version's) gets the STATUS column, which says so:
	 * without it, its row was all dashes, and why was nowhere (a review
	 * found it, 2026-12-06).  Not with --no-headings: a script reading
	 * fields by position keeps them. */
	if (!json && plain_defaults && headings && ncols < (int)(sizeof cols / sizeof cols[0])) {
		bool unread = false;
		for (size_t i = 0; i < shown && !unread; i++)
			unread = views[i].status != 0;
		if (unread) {
			memmove(cols + 2, cols + 1, (size_t)(ncols - 1) * sizeof cols[0]);
			cols[1] = column_index("STATUS");
			ncols++;
		}
	}

	if (json) {
		fputc('[', stdout);
		for (size_t i = 0; i < shown; i++) {
			fputs(i ? ",\n " : "", stdout);
			view_json(stdout, &views[i], false);
		}
		fputs("]\n", stdout);
	} else {
		/* Each cell formatted twice, to size the columns and then to print
		 * them, rather than kept: a table of every cell (160 bytes each)
		 * took 45 MB over 20 000 files. */
		int width[NCOLUMNS * 2] = { 0 };
		char buf[160];
		for (size_t i = headings ? 0 : 1; i <= shown; i++)
			for (int k = 0; k < ncols; k++) {
				if (i == 0)
					snprintf(buf, sizeof buf, "%s", columns[cols[k]].name);
				else
					cell(&views[i - 1], cols[k], bytes, buf, sizeof buf);
				int w = (int)strlen(buf);
				if (w > width[k])
					width[k] = w;
			}
		for (size_t i = headings ? 0 : 1; i <= shown; i++) {
			for (int k = 0; k < ncols; k++) {
				if (i == 0)
					snprintf(buf, sizeof buf, "%s", columns[cols[k]].name);
				else
					cell(&views[i - 1], cols[k], bytes, buf, sizeof buf);
				bool last = k == ncols - 1;
				if (columns[cols[k]].number)
					printf("%s%*s", k ? " " : "", width[k], buf);
				else
					printf("%s%-*s", k ? " " : "", last ? 0 : width[k], buf);
			}
			putchar('\n');
		}
	}
	for (size_t i = 0; i < n; i++)
		view_free(&views[i]);
	free(views);
	free_names(names, n);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno != EPIPE)
			warnx_("stdout: %s", strerror(errno));
		return errno == EPIPE ? 0 : 1;
	}
	return rc;
}
