/*
 * helper_open.c - an unrelated process for test_exec.c: it reaches a ring
 * only by its name (shmring_open), never through an inherited handle.
 *
 *   helper_open echo NAME COUNT   open NAME, take COUNT records (record i:
 *                                 t_exec_len(i) bytes of t_fill(.., i)),
 *                                 put the reply "ok COUNT BYTES", detach
 *   helper_open enoent NAME       shmring_open(NAME) must fail with -ENOENT
 *   helper_open fds               count descriptors inherited from the
 *                                 parent that point at a ring (exit code)
 *
 * Exit status: 0 on success; see the codes below otherwise.  Diagnostics go
 * to stderr.  No Criterion here.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmring.h"
#include "pattern.h"

enum {
	H_OK = 0,
	H_USAGE = 2,
	H_OPEN = 3,
	H_GET = 4,
	H_CONTENT = 5,
	H_PUT = 6,
	H_NOT_ENOENT = 7,
	H_NOT_NAMED = 8,
};

static int echo(const char *name, unsigned count)
{
	struct shmring *r = NULL;
	int rc = shmring_open(&r, name);
	if (rc != 0) {
		fprintf(stderr, "helper: open %s: %s\n", name, shmring_strerror(rc));
		return H_OPEN;
	}
	struct shmring_info info;
	if (shmring_info(r, &info) != 0 || !info.named)
		return H_NOT_NAMED;
	static char buf[1024];
	unsigned long long bytes = 0;
	for (unsigned i = 0; i < count; i++) {
		ssize_t n = shmring_get(r, buf, sizeof buf, 10LL * 1000000000);
		if (n < 0) {
			fprintf(stderr, "helper: get #%u: %s\n", i, shmring_strerror((int)n));
			return H_GET;
		}
		if ((size_t)n != t_exec_len(i) || !t_check(buf, (size_t)n, i)) {
			fprintf(stderr, "helper: record #%u: %zd bytes, bad content\n", i, n);
			return H_CONTENT;
		}
		bytes += (unsigned long long)n;
	}
	char reply[64];
	int len = snprintf(reply, sizeof reply, "ok %u %llu", count, bytes);
	rc = shmring_put(r, reply, (size_t)len, 10LL * 1000000000);
	if (rc != 0) {
		fprintf(stderr, "helper: put reply: %s\n", shmring_strerror(rc));
		return H_PUT;
	}
	shmring_detach(r);
	return H_OK;
}

static int enoent(const char *name)
{
	struct shmring *r = NULL;
	int rc = shmring_open(&r, name);
	if (rc != -ENOENT) {
		fprintf(stderr, "helper: open %s = %d, expected -ENOENT\n", name, rc);
		return H_NOT_ENOENT;
	}
	return H_OK;
}

/* Descriptors that point at a ring file (a memfd made by shmring, or a
 * /dev/shm file of the tests). */
static int ring_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 100;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char link[300], target[512];
		snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(link, target, sizeof target - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (strncmp(target, "/memfd:shmring", 14) == 0 ||
		    strncmp(target, "/dev/shm/shmring-test", 21) == 0) {
			fprintf(stderr, "helper: inherited fd %s -> %s\n", e->d_name, target);
			n++;
		}
	}
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "echo"))
		return echo(argv[2], (unsigned)strtoul(argv[3], NULL, 10));
	if (argc == 3 && !strcmp(argv[1], "enoent"))
		return enoent(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "fds"))
		return ring_fds();
	fprintf(stderr, "usage: helper_open echo NAME COUNT | enoent NAME | fds\n");
	return H_USAGE;
}
