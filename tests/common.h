/*
 * common.h - shared helpers for the shmring Criterion tests.
 *
 * Rules every test follows (Criterion runs each test in its own worker
 * process):
 *   - a forked child never calls cr_assert / cr_log and never returns from
 *     the test body: it runs a plain function and leaves with _exit(code);
 *   - fflush(NULL) before fork (t_fork does it), PR_SET_PDEATHSIG in the child;
 *   - the parent asserts on the child's exit status (t_wait_exit);
 *   - named rings get unique names (t_name) and are unlinked both on the
 *     success path and, through .fini = t_cleanup, when an assertion fails.
 */
#ifndef SHMRING_TESTS_COMMON_H
#define SHMRING_TESTS_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmring.h"
#include "shmring_batch.h"
#include "shmring_fdpass.h"
#include "shmring_zc.h"

#include "pattern.h"

#define T_TIMEOUT 30            /* seconds, per test (loaded 2-core machine) */
#define T_WAKE_BOUND_NS  (2 * T_SEC)   /* "promptly": a wake within 2 s   */
#define T_MS  1000000LL
#define T_SEC 1000000000LL

/* Exit codes used by children; anything else is a specific failure code. */
#define T_CHILD_OK      0
#define T_WAIT_TIMEOUT  (-1000)   /* t_wait_exit: child did not exit in time */

/* ---------------------------------------------------------------- time */

static inline int64_t t_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * T_SEC + ts.tv_nsec;
}

static inline void t_sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / T_SEC, .tv_nsec = ns % T_SEC };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---------------------------------------------------------------- random */

/* FNV-1a, 32 bit. */
static inline uint32_t t_fnv(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* Slots a record of len bytes uses (documented in shmring.h). */
static inline size_t t_slots(size_t len)
{
	return len == 0 ? 1 : (len + SHMRING_SLOT_SIZE - 1) / SHMRING_SLOT_SIZE;
}

/* ---------------------------------------------------------------- names */

#define T_MAX_NAMES 32
static char t_names[T_MAX_NAMES][SHMRING_NAME_MAX + 2];
static int t_nnames;

/* A unique ring name (pid + counter + tag), remembered for t_cleanup. */
static inline const char *t_name(const char *tag)
{
	static unsigned counter;
	if (t_nnames >= T_MAX_NAMES)
		abort();
	char *n = t_names[t_nnames++];
	snprintf(n, sizeof t_names[0], "shmring-test-%ld-%u-%s", (long)getpid(), counter++, tag);
	return n;
}

/* .fini hook: unlink every name this test made (errors ignored: the success
 * path has normally unlinked them already), ring or not. */
static inline void t_cleanup(void)
{
	for (int i = 0; i < t_nnames; i++)
		(void)shmring_unlink_any(t_names[i]);
	t_nnames = 0;
}

/* ---------------------------------------------------------------- rings */

/* An anonymous ring with the given geometry; asserts success. */
static inline struct shmring *t_ring(size_t capacity, size_t max_record)
{
	struct shmring_config cfg = { .capacity = capacity, .max_record = max_record };
	struct shmring *r = NULL;
	int rc = shmring_create(&r, NULL, &cfg);
	cr_assert_eq(rc, 0, "shmring_create(anon, cap=%zu, max=%zu) = %d (%s)",
	             capacity, max_record, rc, shmring_strerror(rc));
	cr_assert_not_null(r);
	return r;
}

static inline struct shmring_info t_info(const struct shmring *r)
{
	struct shmring_info info;
	memset(&info, 0xa5, sizeof info);
	int rc = shmring_info(r, &info);
	cr_assert_eq(rc, 0, "shmring_info = %d", rc);
	return info;
}

/* Path of the file behind a descriptor (e.g. /dev/shm/NAME for a named ring),
 * read from /proc so that tests do not guess the library's naming. */
static inline void t_fd_path(int fd, char *out, size_t outsz)
{
	char link[64];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, out, outsz - 1);
	cr_assert_gt(n, 0, "readlink(%s) failed: %s", link, strerror(errno));
	out[n] = '\0';
}

/* A named ring (4 KiB) whose file a hostile peer has shrunk to one page under
 * its mapping: t_shrunk_ring makes it, t_shrunk_restore gives the file its
 * size back (zeroes), so that the ring's own detach touches nothing missing,
 * then detaches and unlinks it. */
struct t_shrunk {
	const char *name;
	struct shmring *r;
	int fd;         /* the file, opened again read-write */
	off_t size;     /* its size before the shrink */
};

static inline struct t_shrunk t_shrunk_ring(const char *tag)
{
	struct t_shrunk s = { .name = t_name(tag) };
	struct shmring_config cfg = { .capacity = 4096 };
	cr_assert_eq(shmring_create(&s.r, s.name, &cfg), 0);
	char path[PATH_MAX];
	t_fd_path(shmring_fd(s.r), path, sizeof path);
	s.fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(s.fd, 0, "open %s: %s", path, strerror(errno));
	struct stat full;
	cr_assert_eq(fstat(s.fd, &full), 0);
	s.size = full.st_size;
	cr_assert_eq(ftruncate(s.fd, 4096), 0);
	return s;
}

static inline void t_shrunk_restore(struct t_shrunk *s)
{
	cr_assert_eq(ftruncate(s->fd, s->size), 0);
	close(s->fd);
}

/* ---------------------------------------------------------------- processes */

/* Fork a child that runs fn(arg) and _exit()s with its return value.  The
 * child dies with its parent (the Criterion worker). */
static inline pid_t t_fork(int (*fn)(void *), void *arg)
{
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		int code = fn(arg);
		_exit(code);
	}
	return pid;
}

/* Wait up to timeout_ns for pid; returns its raw wait status, or
 * T_WAIT_TIMEOUT after killing it if it did not finish. */
static inline int t_wait_status(pid_t pid, int64_t timeout_ns)
{
	int64_t deadline = t_now_ns() + timeout_ns;
	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return st;
		if (w < 0 && errno != EINTR)
			return -2000 - errno;
		if (t_now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return T_WAIT_TIMEOUT;
		}
		t_sleep_ns(T_MS / 2);
	}
}

/* Describe a wait status for assertion messages. */
static inline const char *t_status_str(int st, char *buf, size_t n)
{
	if (st == T_WAIT_TIMEOUT)
		snprintf(buf, n, "did not exit in time (killed)");
	else if (st < 0)
		snprintf(buf, n, "waitpid error %d", st);
	else if (WIFEXITED(st))
		snprintf(buf, n, "exit code %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, n, "status 0x%x", st);
	return buf;
}

/* Assert that pid exits with code `code` within timeout_ns. */
#define t_expect_exit(pid, code, timeout_ns)                                          \
	do {                                                                          \
		int t_st_ = t_wait_status((pid), (timeout_ns));                       \
		char t_buf_[96];                                                      \
		cr_assert(t_st_ >= 0 && WIFEXITED(t_st_) && WEXITSTATUS(t_st_) == (code), \
		          "child %d: expected exit code %d, got %s", (int)(pid), (code), \
		          t_status_str(t_st_, t_buf_, sizeof t_buf_));                 \
	} while (0)

/* SIGKILL pid and assert it died of it within 5 s. */
static inline void t_kill_and_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	int st = t_wait_status(pid, 5 * T_SEC);
	cr_assert(st >= 0 && WIFSIGNALED(st), "child was not killed");
}

/* Shared anonymous memory visible to forked children (for results). */
static inline void *t_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "mmap shared: %s", strerror(errno));
	return p;
}

/* Poll cond (an expression) until true or timeout_ns passes; stores its
 * last value (0 or 1) in ok. */
#define T_POLL_UNTIL(ok, cond, timeout_ns)                                            \
	do {                                                                          \
		int64_t t_dl_ = t_now_ns() + (timeout_ns);                            \
		while (!((ok) = !!(cond)) && t_now_ns() < t_dl_)                      \
			t_sleep_ns(T_MS / 2);                                         \
	} while (0)

/* Directory holding the helper executables: $SHMRING_TEST_HELPER_DIR, or the
 * directory of this test binary. */
static inline void t_helper_path(const char *helper, char *out, size_t n)
{
	const char *dir = getenv("SHMRING_TEST_HELPER_DIR");
	char self[PATH_MAX];
	if (!dir || !*dir) {
		ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
		cr_assert_gt(len, 0, "readlink /proc/self/exe: %s", strerror(errno));
		self[len] = '\0';
		char *slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		dir = self;
	}
	int k = snprintf(out, n, "%s/%s", dir, helper);
	cr_assert(k > 0 && (size_t)k < n, "helper path too long");
}

/* fork + exec the helper program `helper` (t_helper_path) with arguments
 * args (NULL-terminated, at most 7), env ("NAME=VALUE", or NULL) added to
 * its environment, and its stderr to /dev/null if quiet; returns the pid.
 * The child dies with its parent. */
static inline pid_t t_exec_helper(const char *helper, const char *env, int quiet,
                                  const char *const *args)
{
	char path[PATH_MAX];
	t_helper_path(helper, path, sizeof path);
	cr_assert_eq(access(path, X_OK), 0,
	             "helper %s not found (%s); set SHMRING_TEST_HELPER_DIR", path, strerror(errno));
	char *argv[9] = { (char *)helper };
	for (int i = 0; i < 7 && args[i]; i++)
		argv[i + 1] = (char *)args[i];
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		if (quiet && !freopen("/dev/null", "w", stderr))
			_exit(98);
		if (env && putenv((char *)env))
			_exit(97);
		execv(path, argv);
		_exit(127);
	}
	return pid;
}

#endif /* SHMRING_TESTS_COMMON_H */
