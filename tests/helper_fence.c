/*
 * helper_fence.c - a process of its own for test_fence.c: whether opening a
 * ring registered it for the waiters' membarrier (ring/fence.h), and the far
 * side of a sleeping ping-pong, optionally with membarrier denied to it by a
 * seccomp filter (a "blind" process).
 *
 *   helper_fence registered KIND     make a ring, KIND light (made with
 *                                    SHMRING_LIGHT_PUBLISH) or plain; exit
 *                                    0 if this process is now registered for
 *                                    MEMBARRIER_CMD_GLOBAL_EXPEDITED, 1 if
 *                                    not, 77 if the kernel cannot say
 *   helper_fence echo A B ROUNDS [deny]
 *                                    open rings A and B; ROUNDS times take a
 *                                    record from A and put it on B, every
 *                                    wait a sleep (spin 0); deny: first
 *                                    make membarrier fail with EPERM
 *   helper_fence sleeps KIND WAIT [deny]
 *                                    wait 200 ms on a ring of that KIND
 *                                    (spin 0) in WAIT: get (an empty ring),
 *                                    join (a task unfinished), peer (no
 *                                    producer); exit with 100 + the number
 *                                    of sleeps it took (futex_waits, at most
 *                                    150): below 100 is an error
 *
 * The environment (SHMRING_MEMBARRIER) comes from the test.  Exit status:
 * 0 on success, the codes below otherwise; diagnostics to stderr.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/membarrier.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shmring.h"

enum {
	H_OK = 0,
	H_NOT_REGISTERED = 1,
	H_USAGE = 2,
	H_OPEN = 3,
	H_GET = 4,
	H_PUT = 5,
	H_SECCOMP = 6,
	H_NOT_DENIED = 7,
	H_CANNOT_TELL = 77,
	H_SLEEPS = 100, /* sleeps: 100 + the count */
};

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9) /* Linux 6.3 */
#endif

static long membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

/* An anonymous ring of kind k (light: SHMRING_LIGHT_PUBLISH, else plain);
 * 0, or H_OPEN. */
static int make_ring(const char *k, struct shmring **r)
{
	struct shmring_config cfg = { .flags = strcmp(k, "light") ? 0 : SHMRING_LIGHT_PUBLISH };
	int rc = shmring_create(r, NULL, &cfg);
	if (rc) {
		fprintf(stderr, "helper_fence: create: %s\n", shmring_strerror(rc));
		return H_OPEN;
	}
	return H_OK;
}

static int registered(const char *k)
{
	struct shmring *r = NULL;
	int rc = make_ring(k, &r);
	if (rc)
		return rc;
	long regs = membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS);
	shmring_detach(r);
	if (regs < 0)
		return H_CANNOT_TELL;
	return (regs & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) ? H_OK : H_NOT_REGISTERED;
}

/* Every membarrier call fails with EPERM from now on, as under a container's
 * seccomp profile that leaves it out; everything else is allowed. */
static int deny_membarrier(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		fprintf(stderr, "helper_fence: seccomp: %s\n", strerror(errno));
		return H_SECCOMP;
	}
	if (membarrier(MEMBARRIER_CMD_QUERY) != -1 || errno != EPERM)
		return H_NOT_DENIED;
	return H_OK;
}

static int echo(const char *a, const char *b, long rounds, int deny)
{
	if (deny) {
		int rc = deny_membarrier();
		if (rc)
			return rc;
	}
	struct shmring *in = NULL, *out = NULL;
	int rc = shmring_open(&in, a);
	if (!rc)
		rc = shmring_open(&out, b);
	if (rc) {
		fprintf(stderr, "helper_fence: open: %s\n", shmring_strerror(rc));
		return H_OPEN;
	}
	shmring_set_spin(in, 0);
	shmring_set_spin(out, 0);
	char buf[64];
	for (long i = 0; i < rounds; i++) {
		ssize_t n = shmring_get(in, buf, sizeof buf, 10 * 1000000000LL);
		if (n < 0) {
			fprintf(stderr, "helper_fence: get %ld: %s\n", i, shmring_strerror((int)n));
			return H_GET;
		}
		rc = shmring_put(out, buf, (size_t)n, 10 * 1000000000LL);
		if (rc) {
			fprintf(stderr, "helper_fence: put %ld: %s\n", i, shmring_strerror(rc));
			return H_PUT;
		}
	}
	shmring_detach(in);
	shmring_detach(out);
	return H_OK;
}

/* The wait of sleeps: -ETIMEDOUT after 200 ms, or the error. */
static int wait_in(struct shmring *r, const char *what)
{
	const int64_t ns = 200 * 1000000LL;
	if (!strcmp(what, "join")) {
		int rc = shmring_join(r, 0); /* the count in use from here */
		if (!rc)
			rc = shmring_put(r, "task", 4, 0);
		return rc ? rc : shmring_join(r, ns);
	}
	if (!strcmp(what, "peer"))
		return shmring_wait_peer(r, SHMRING_PRODUCER, ns);
	char buf[64];
	return (int)shmring_get(r, buf, sizeof buf, ns);
}

static int sleeps(const char *k, const char *what, int deny)
{
	if (strcmp(what, "get") && strcmp(what, "join") && strcmp(what, "peer"))
		return H_USAGE;
	if (deny) {
		int rc = deny_membarrier();
		if (rc)
			return rc;
	}
	struct shmring *r = NULL;
	int rc = make_ring(k, &r);
	if (rc)
		return rc;
	shmring_set_spin(r, 0);
	rc = wait_in(r, what);
	if (rc != -ETIMEDOUT) {
		fprintf(stderr, "helper_fence: %s on a ring with nothing coming: %s\n", what,
		        shmring_strerror(rc));
		return H_GET;
	}
	struct shmring_info info;
	shmring_info(r, &info);
	shmring_detach(r);
	return H_SLEEPS + (info.futex_waits > 150 ? 150 : (int)info.futex_waits);
}

int main(int argc, char **argv)
{
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "sleeps"))
		return sleeps(argv[2], argv[3], argc == 5 && !strcmp(argv[4], "deny"));
	if (argc == 3 && !strcmp(argv[1], "registered"))
		return registered(argv[2]);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "echo"))
		return echo(argv[2], argv[3], atol(argv[4]), argc == 6 && !strcmp(argv[5], "deny"));
	fprintf(stderr, "usage: helper_fence registered KIND | echo A B ROUNDS [deny] | sleeps KIND WAIT [deny]\n");
	return H_USAGE;
}
