/*
 * test_exec.c - the open-by-name path from an unrelated process: the parent
 * makes a named ring and execs helper_open, which finds the ring only by its
 * name, consumes, verifies and replies.  Also: -ENOENT from another process
 * after unlink, and no ring descriptor leaks across exec.
 */
#include "common.h"

TestSuite(exec, .timeout = T_TIMEOUT, .fini = t_cleanup);

/* fork + exec helper_open with args; returns the pid.  quiet: its stderr
 * goes to /dev/null (for runs that are meant to fail). */
static pid_t exec_helper_q(int quiet, const char *a1, const char *a2, const char *a3)
{
	const char *args[] = { a1, a2, a3, NULL };
	return t_exec_helper("helper_open", NULL, quiet, args);
}

static pid_t exec_helper(const char *a1, const char *a2, const char *a3)
{
	return exec_helper_q(0, a1, a2, a3);
}

#define EXEC_COUNT 300

Test(exec, helper_opens_by_name_consumes_and_replies)
{
	const char *name = t_name("exec");
	struct shmring_config cfg = { .capacity = 16384 };
	struct shmring *r = NULL;
	cr_assert_eq(shmring_create(&r, name, &cfg), 0);
	/* some records before the helper exists, the rest while it runs (the
	 * ring is too small for all of them: the puts wait for the helper) */
	static char buf[1024];
	unsigned i = 0;
	unsigned long long bytes = 0;
	for (; i < 10; i++) {
		t_fill(buf, t_exec_len(i), i);
		cr_assert_eq(shmring_put(r, buf, t_exec_len(i), 0), 0);
		bytes += t_exec_len(i);
	}
	char count[16];
	snprintf(count, sizeof count, "%u", EXEC_COUNT);
	pid_t pid = exec_helper("echo", name, count);
	for (; i < EXEC_COUNT; i++) {
		t_fill(buf, t_exec_len(i), i);
		int rc = shmring_put(r, buf, t_exec_len(i), 10 * T_SEC);
		cr_assert_eq(rc, 0, "put #%u = %d (%s)", i, rc, shmring_strerror(rc));
		bytes += t_exec_len(i);
	}
	t_expect_exit(pid, 0, 20 * T_SEC);
	char reply[64] = { 0 }, want[64];
	snprintf(want, sizeof want, "ok %u %llu", EXEC_COUNT, bytes);
	ssize_t n = shmring_get(r, reply, sizeof reply - 1, 0);
	cr_assert_gt(n, 0, "no reply from the helper: %zd", n);
	cr_assert_str_eq(reply, want);
	cr_assert_eq(shmring_get(r, reply, sizeof reply, 0), -EAGAIN);
	cr_assert_eq(shmring_unlink(name), 0);
	shmring_detach(r);
}

Test(exec, helper_sees_enoent_for_unknown_and_unlinked_names)
{
	const char *missing = t_name("nosuch");
	pid_t pid = exec_helper("enoent", missing, NULL);
	t_expect_exit(pid, 0, 10 * T_SEC);

	const char *name = t_name("gone");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *r = NULL;
	cr_assert_eq(shmring_create(&r, name, &cfg), 0);
	/* the check can fail: while the name exists, "enoent" must fail */
	pid = exec_helper_q(1, "enoent", name, NULL);
	t_expect_exit(pid, 7, 10 * T_SEC);
	cr_assert_eq(shmring_unlink(name), 0);
	pid = exec_helper("enoent", name, NULL);
	t_expect_exit(pid, 0, 10 * T_SEC);
	shmring_detach(r);
}

Test(exec, ring_descriptors_do_not_leak_across_exec)
{
	struct shmring *anon = t_ring(4096, 0);
	const char *name = t_name("leak");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *named = NULL, *opened = NULL, *attached = NULL;
	cr_assert_eq(shmring_create(&named, name, &cfg), 0);
	cr_assert_eq(shmring_open(&opened, name), 0);
	cr_assert_eq(shmring_attach_fd(&attached, shmring_fd(anon)), 0);
	pid_t pid = exec_helper("fds", NULL, NULL);
	int st = t_wait_status(pid, 10 * T_SEC);
	char b[96];
	cr_assert(st >= 0 && WIFEXITED(st), "helper: %s", t_status_str(st, b, sizeof b));
	cr_assert_eq(WEXITSTATUS(st), 0, "%d ring descriptors were inherited across exec",
	             WEXITSTATUS(st));
	cr_assert_eq(shmring_unlink(name), 0);
	shmring_detach(attached);
	shmring_detach(opened);
	shmring_detach(named);
	shmring_detach(anon);
}
