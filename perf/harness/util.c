/*
 * util.c - memory, CPUs, sizes, machine information and the progress line.
 */
#include "harness.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

void *shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("shmring-bench: mmap");
		exit(2);
	}
	return p;
}

void shared_prefault(void *p, size_t size)
{
	/* As shmring_prefault does: the pages, then this process's translation
	 * of each (built at its first access where the hypervisor shadows the
	 * page tables, ~15 us a page here; ring/map.c). */
	if (madvise(p, size, MADV_POPULATE_WRITE) != 0)
		return;	/* best effort: only timing */
	for (size_t off = 0; off < size; off += 4096)
		(void)((volatile const unsigned char *)p)[off];
}

void shared_free(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p) {
		fprintf(stderr, "shmring-bench: out of memory (%zu bytes)\n", size);
		exit(2);
	}
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) {
		fprintf(stderr, "shmring-bench: out of memory (%zu x %zu bytes)\n", n, size);
		exit(2);
	}
	return p;
}

int usable_cpus(int *cpus, int max)
{
	cpu_set_t set;
	int n = 0;

	if (sched_getaffinity(0, sizeof set, &set) != 0) {
		if (max > 0)
			cpus[0] = -1;
		return 1;
	}
	for (int i = 0; i < CPU_SETSIZE && n < max; i++)
		if (CPU_ISSET(i, &set))
			cpus[n++] = i;
	return n ? n : 1;
}

void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof set, &set);
}

int64_t rusage_cpu_ns(const struct rusage *ru)
{
	return ((int64_t)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1000;
}

void sleep_ns(int64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };

	while (ns > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

size_t parse_size(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return 0;
	while (*end == ' ')
		end++;
	double mult = 1;
	switch (toupper((unsigned char)*end)) {
	case 'K': mult = 1024.0; end++; break;
	case 'M': mult = 1024.0 * 1024; end++; break;
	case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
	default: break;
	}
	if (mult > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return 0;
	v *= mult;
	if (v > 1e15)
		return 0;
	return (size_t)llround(v);
}

const char *fmt_size(size_t b, char *buf, size_t len)
{
	if (b >= (1u << 20) && b % (1u << 20) == 0)
		snprintf(buf, len, "%zu MiB", b >> 20);
	else if (b >= 1024 && b % 1024 == 0)
		snprintf(buf, len, "%zu KiB", b >> 10);
	else
		snprintf(buf, len, "%zu B", b);
	return buf;
}

const char *fmt_si(double v, char *buf, size_t len)
{
	const char *unit = "";
	double a = fabs(v);

	if (a >= 1e9) {
		v /= 1e9;
		unit = "G";
	} else if (a >= 1e6) {
		v /= 1e6;
		unit = "M";
	} else if (a >= 1e3) {
		v /= 1e3;
		unit = "k";
	}
	a = fabs(v);
	snprintf(buf, len, a >= 100 ? "%.0f%s" : a >= 10 ? "%.1f%s" : "%.2f%s", v, unit);
	return buf;
}

const char *fmt_ns(double ns, char *buf, size_t len)
{
	if (!(ns == ns))
		snprintf(buf, len, "-");
	else if (ns < 10000)
		snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 10e6)
		snprintf(buf, len, "%.1f us", ns / 1e3);
	else if (ns < 10e9)
		snprintf(buf, len, "%.1f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.1f s", ns / 1e9);
	return buf;
}

static void read_first_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	buf[0] = 0;
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

void machine_info(struct machine *m)
{
	struct utsname u;
	char line[512];
	FILE *f;
	int cpus[256];
	time_t t = time(NULL);
	struct tm tm;

	memset(m, 0, sizeof *m);
	snprintf(m->cpu_model, sizeof m->cpu_model, "unknown");
	f = fopen("/proc/cpuinfo", "r");
	if (f) {
		while (fgets(line, sizeof line, f)) {
			if (!strncmp(line, "model name", 10) || !strncmp(line, "Model", 5) ||
			    !strncmp(line, "Hardware", 8)) {
				char *c = strchr(line, ':');
				if (!c)
					continue;
				c++;
				while (*c == ' ' || *c == '\t')
					c++;
				c[strcspn(c, "\n")] = 0;
				snprintf(m->cpu_model, sizeof m->cpu_model, "%s", c);
				break;
			}
		}
		fclose(f);
	}
	m->cores_online = (int)sysconf(_SC_NPROCESSORS_ONLN);
	m->cores_usable = usable_cpus(cpus, 256);
	if (uname(&u) == 0) {
		snprintf(m->kernel, sizeof m->kernel, "%.20s %.80s %.20s", u.sysname, u.release, u.machine);
		snprintf(m->hostname, sizeof m->hostname, "%.63s", u.nodename);
	}
	read_first_line("/proc/loadavg", line, sizeof line);
	if (sscanf(line, "%lf %lf %lf", &m->load1, &m->load5, &m->load15) != 3)
		m->load1 = m->load5 = m->load15 = -1;
	localtime_r(&t, &tm);
	strftime(m->date, sizeof m->date, "%Y-%m-%dT%H:%M:%S%z", &tm);
	m->root = geteuid() == 0;
}

int mkdir_parents(const char *path)
{
	char buf[1024];

	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/* ---- progress ---------------------------------------------------------- */

static int prog_on, prog_total, prog_done, prog_shown;
static int64_t prog_t0;

void progress_init(int enabled, int total_steps)
{
	prog_on = enabled;
	prog_total = total_steps;
	prog_done = 0;
	prog_t0 = now_ns();
}

void progress(const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	if (!prog_on)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	double el = (double)(now_ns() - prog_t0) / 1e9;
	if (prog_total > 0)
		fprintf(stderr, "\r\033[K[%3d/%d %4.0fs] %s", prog_done + 1, prog_total, el, msg);
	else
		fprintf(stderr, "\r\033[K[%4.0fs] %s", el, msg);
	fflush(stderr);
	prog_shown = 1;
}

void progress_step(void)
{
	prog_done++;
}

void progress_clear(void)
{
	if (prog_on && prog_shown) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
		prog_shown = 0;
	}
}
