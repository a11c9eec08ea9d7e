/*
 * test_fence.c - the asymmetric fence of the eventcount protocol on rings
 * made with SHMRING_LIGHT_PUBLISH (ring/fence.h): a process that opens such
 * a ring registers for the waiters' membarrier, unless SHMRING_MEMBARRIER=0,
 * and one that opens only plain rings does not; no wake is lost between
 * processes that sleep on every wait, whether the other side publishes
 * light, heavy (SHMRING_MEMBARRIER=0), or cannot issue the barrier at all
 * (membarrier denied by seccomp: a blind process, which sleeps in short
 * slices on light rings, and as usual on plain ones).
 *
 * A lost wake shows as a round trip of a whole sleep slice (50 ms): without
 * the waiter's membarrier, a ping-pong of 30 000 sleeping rounds here lost
 * 8-14 in the VM's near state (none in its far state).  A descheduled
 * process can also make one slow round on a loaded machine, so one is
 * forgiven.
 */
#include <inttypes.h>

#include "common.h"

TestSuite(fence, .timeout = T_TIMEOUT, .fini = t_cleanup);

#define ROUNDS    30000
/* A lost wake ends with the sleep slice: round trips of 48 to 55 ms (the
 * lost wakes of the check without the membarrier took 50.2-50.4 ms); a
 * process descheduled on a loaded machine makes a stall of any length,
 * rarely in that window. */
#define SLICE_LO_NS   (48 * T_MS)
#define SLICE_HI_NS   (55 * T_MS)
#define H_CANNOT_TELL 77
#define H_SLEEPS      100 /* helper_fence sleeps: 100 + the count */

/* fork + exec helper_fence with args (NULL-terminated, at most 5), with
 * SHMRING_MEMBARRIER=env in its environment if env is not NULL. */
static pid_t exec_helper(const char *env, const char *a1, const char *a2, const char *a3,
                         const char *a4, const char *a5)
{
	char path[PATH_MAX];
	t_helper_path("helper_fence", path, sizeof path);
	cr_assert_eq(access(path, X_OK), 0,
	             "helper %s not found (%s); set SHMRING_TEST_HELPER_DIR", path, strerror(errno));
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		if (env)
			setenv("SHMRING_MEMBARRIER", env, 1);
		else
			unsetenv("SHMRING_MEMBARRIER");
		execl(path, "helper_fence", a1, a2, a3, a4, a5, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int helper_exit(pid_t pid)
{
	int st = t_wait_status(pid, 20 * T_SEC);
	char buf[96];
	cr_assert(st >= 0 && WIFEXITED(st), "helper_fence: %s", t_status_str(st, buf, sizeof buf));
	return WEXITSTATUS(st);
}

Test(fence, a_process_registers_at_its_first_light_ring)
{
	int code = helper_exit(exec_helper(NULL, "registered", "light", NULL, NULL, NULL));
	if (code == H_CANNOT_TELL)
		cr_skip_test("the kernel cannot list registrations (MEMBARRIER_CMD_GET_REGISTRATIONS, Linux 6.3)");
	cr_assert_eq(code, 0, "helper_fence registered light: exit %d (1: not registered)", code);
}

Test(fence, a_process_with_plain_rings_does_not_register)
{
	int code = helper_exit(exec_helper(NULL, "registered", "plain", NULL, NULL, NULL));
	if (code == H_CANNOT_TELL)
		cr_skip_test("the kernel cannot list registrations (MEMBARRIER_CMD_GET_REGISTRATIONS, Linux 6.3)");
	cr_assert_eq(code, 1, "helper_fence registered plain: exit %d (0: registered)", code);
}

Test(fence, shmring_membarrier_0_keeps_a_process_unregistered)
{
	int code = helper_exit(exec_helper("0", "registered", "light", NULL, NULL, NULL));
	if (code == H_CANNOT_TELL)
		cr_skip_test("the kernel cannot list registrations (MEMBARRIER_CMD_GET_REGISTRATIONS, Linux 6.3)");
	cr_assert_eq(code, 1, "helper_fence registered with SHMRING_MEMBARRIER=0: exit %d", code);
}

/* ROUNDS sleeping round trips with a helper (spin 0 on both sides: every
 * wait registers and sleeps); returns how many took a sleep slice (between
 * SLICE_LO_NS and SLICE_HI_NS), and asserts the helper's exit code. */
static int ping_pong(const char *env, const char *deny, int64_t *longest_ns)
{
	const char *a = t_name("fence-a"), *b = t_name("fence-b");
	struct shmring_config cfg = { .capacity = 65536, .flags = SHMRING_LIGHT_PUBLISH };
	struct shmring *out = NULL, *in = NULL;
	cr_assert_eq(shmring_create(&out, a, &cfg), 0);
	cr_assert_eq(shmring_create(&in, b, &cfg), 0);
	shmring_set_spin(out, 0);
	shmring_set_spin(in, 0);
	char rounds[16];
	snprintf(rounds, sizeof rounds, "%d", ROUNDS);
	pid_t pid = exec_helper(env, "echo", a, b, rounds, deny);
	int slow = 0;
	*longest_ns = 0;
	for (uint64_t i = 0; i < ROUNDS; i++) {
		int64_t t0 = t_now_ns();
		cr_assert_eq(shmring_put(out, &i, sizeof i, 10 * T_SEC), 0);
		uint64_t back = ~i;
		cr_assert_eq(shmring_get(in, &back, sizeof back, 10 * T_SEC), (ssize_t)sizeof back,
		             "round %" PRIu64 ": no reply", i);
		cr_assert_eq(back, i);
		int64_t took = t_now_ns() - t0;
		if (took >= SLICE_LO_NS && took < SLICE_HI_NS)
			slow++;
		if (took > *longest_ns)
			*longest_ns = took;
	}
	int code = helper_exit(pid);
	cr_assert_eq(code, 0, "helper_fence echo%s%s: exit %d", deny ? " " : "", deny ? deny : "", code);
	struct shmring_info info = t_info(out);
	cr_assert_gt(info.futex_waits, ROUNDS / 4, "the helper slept only %" PRIu64 " times",
	             (uint64_t)info.futex_waits);
	shmring_detach(out);
	shmring_detach(in);
	return slow;
}

Test(fence, no_wake_is_lost_between_light_processes)
{
	int64_t longest;
	int slow = ping_pong(NULL, NULL, &longest);
	cr_assert_leq(slow, 1, "%d of %d round trips took a 50 ms slice (longest %lld us): lost wakes",
	              slow, ROUNDS, (long long)(longest / 1000));
}

Test(fence, no_wake_is_lost_beside_a_heavy_publisher)
{
	int64_t longest;
	int slow = ping_pong("0", NULL, &longest);
	cr_assert_leq(slow, 1, "%d of %d round trips took a 50 ms slice (longest %lld us): lost wakes",
	              slow, ROUNDS, (long long)(longest / 1000));
}

/* The helper cannot issue membarrier: the test's light puts may race its
 * registration unseen, so it sleeps 1 ms at a time (eventcount.c
 * RECHECK_BLIND_NS); a lost wake costs at most that. */
Test(fence, a_blind_waiter_loses_at_most_a_short_slice)
{
	int64_t longest;
	int slow = ping_pong(NULL, "deny", &longest);
	cr_assert_leq(slow, 1, "%d of %d round trips took a 50 ms slice (longest %lld us): a blind "
	              "waiter slept a whole slice", slow, ROUNDS, (long long)(longest / 1000));
}

/* helper_fence sleeps KIND [deny]: the sleeps of a 200 ms wait; fails the
 * test on the helper's own errors (exit codes below H_SLEEPS). */
static int sleeps_on(const char *kind, const char *deny)
{
	int code = helper_exit(exec_helper(NULL, "sleeps", kind, deny, NULL, NULL));
	cr_assert_geq(code, H_SLEEPS, "helper_fence sleeps %s%s%s: error exit %d", kind,
	              deny ? " " : "", deny ? deny : "", code);
	return code - H_SLEEPS;
}

static int sleeps(const char *deny)
{
	return sleeps_on("light", deny);
}

/* The same, told apart from luck: a blind process sleeps in 1 ms slices (a
 * 200 ms wait is some 200 sleeps), a seeing one in slices of 50 ms (4 or 5).
 * Exit codes 2-7 are the helper's errors. */
Test(fence, a_blind_waiter_sleeps_in_short_slices)
{
	int seeing = sleeps(NULL);
	int blind = sleeps("deny");
	cr_assert(seeing >= 1 && seeing <= 10, "a 200 ms wait with membarrier: %d sleeps", seeing);
	cr_assert_geq(blind, 40, "a 200 ms wait with membarrier denied: %d sleeps, not 1 ms slices",
	              blind);
}

/* A plain ring has no light notifier: a blind process sleeps there as any
 * other, in 50 ms slices. */
Test(fence, a_blind_waiter_sleeps_as_usual_on_a_plain_ring)
{
	int blind = sleeps_on("plain", "deny");
	cr_assert(blind >= 1 && blind <= 10, "a 200 ms wait on a plain ring, membarrier denied: "
	          "%d sleeps", blind);
}
