/*
 * common.c - what every subcommand uses: messages and exit codes, signals,
 * parsing sizes, listing /dev/shm, JSON strings.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

volatile sig_atomic_t cli_stop;

static void on_signal(int sig)
{
	cli_stop = sig;
}

/* No SA_RESTART: a blocking read(2) of stdin returns EINTR, so put notices.
 * The library's waits are bounded (WAIT_SLICE_NS) and re-check cli_stop. */
void cli_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A closed stdout is EPIPE from write, handled where it happens. */
	signal(SIGPIPE, SIG_IGN);
}

int exit_for_signal(void)
{
	return 128 + cli_stop;
}

void warnx_(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("shmring: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("shmring: ", stderr);
	if (cmd)
		fprintf(stderr, "%s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry 'shmring --help' or 'man shmring'.\n");
	va_end(ap);
	return EXIT_USAGE;
}

/* The words a user of a ring name expects; shmring_strerror otherwise. */
const char *ring_error_text(int err)
{
	switch (err) {
	case -ENOENT:  return "no such ring";
	case -EPROTO:  return "not a ring";
	case -EPROTONOSUPPORT:
		return "a ring of another layout version (made by an older or newer shmring library; "
		       "its own version's tool reads it)";
	case -EAGAIN:  return "not a ring (empty, or still being made)";
	case -EBADMSG: return "corrupt ring (its size or geometry does not match its header)";
	case -EFAULT:  return "corrupt ring (its file was cut short while being read)";
	case -ELOOP:   return "not a ring (a symbolic link)";
	case -EACCES:  return "permission denied";
	case -EINVAL:  return "not a valid ring name";
	case -EEXIST:  return "a ring of that name already exists";
	default:       return shmring_strerror(err);
	}
}

int ring_error(const char *name, int err)
{
	warnx_("%s: %s", name, ring_error_text(err));
	return 1;
}

int parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (shift && (*end == 'i' || *end == 'I'))
		end++;
	if (shift && (*end == 'b' || *end == 'B'))
		end++;
	if (*end || (shift && v > (~0ull >> shift)))
		return -1;
	*out = (size_t)(v << shift);
	return 0;
}

int parse_seconds(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 86400)
		return -1;
	*out = v;
	return 0;
}

void human_size(char *buf, size_t n, unsigned long long v)
{
	static const char units[] = "KMGT";
	if (v < 1024) {
		snprintf(buf, n, "%llu", v);
		return;
	}
	double d = (double)v;
	int u = -1;
	while (d >= 1024 && u < 3) {
		d /= 1024;
		u++;
	}
	if (d == (double)(unsigned long long)d)
		snprintf(buf, n, "%llu%c", (unsigned long long)d, units[u]);
	else
		snprintf(buf, n, "%.1f%c", d, units[u]);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every entry of /dev/shm but "." and "..", sorted.  Nothing is opened. */
int list_shm_names(char ***names, size_t *count)
{
	DIR *d = opendir(SHM_DIR);
	if (!d)
		return -errno;
	size_t n = 0, cap = 0;
	char **v = NULL;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			char **nv = realloc(v, cap * sizeof *v);
			if (!nv)
				goto nomem;
			v = nv;
		}
		if (!(v[n] = strdup(e->d_name)))
			goto nomem;
		n++;
	}
	closedir(d);
	if (n)   /* (v is NULL for an empty folder) */
		qsort(v, n, sizeof *v, cmp_names);
	*names = v;
	*count = n;
	return 0;
nomem:
	closedir(d);
	free_names(v, n);
	return -ENOMEM;
}

void free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

const char *roles_text(unsigned roles)
{
	switch (roles & (SHMRING_PRODUCER | SHMRING_CONSUMER)) {
	case SHMRING_PRODUCER:                    return "producer";
	case SHMRING_CONSUMER:                    return "consumer";
	case SHMRING_PRODUCER | SHMRING_CONSUMER: return "producer,consumer";
	default:                                  return "none";
	}
}

const char *attach_state_text(int state)
{
	switch (state) {
	case SHMRING_ATTACH_LIVE:    return "live";
	case SHMRING_ATTACH_DEAD:    return "dead";
	case SHMRING_ATTACH_PENDING: return "pending";
	case SHMRING_ATTACH_REAPING: return "reaping";
	default:                     return "unknown";
	}
}
