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
#include <poll.h>

#include "common.h"
#include "shmring_poll.h"

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
	const char *args[] = { a1, a2, a3, a4, a5, NULL };
	static char var[64];
	if (env)
		snprintf(var, sizeof var, "SHMRING_MEMBARRIER=%s", env);
	return t_exec_helper("helper_fence", env ? var : NULL, 0, args);
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

/* helper_fence sleeps KIND WAIT [deny]: the sleeps of a 200 ms wait; fails
 * the test on the helper's own errors (exit codes below H_SLEEPS). */
static int sleeps_on(const char *kind, const char *what, const char *deny)
{
	int code = helper_exit(exec_helper(NULL, "sleeps", kind, what, deny, NULL));
	cr_assert_geq(code, H_SLEEPS, "helper_fence sleeps %s %s%s%s: error exit %d", kind, what,
	              deny ? " " : "", deny ? deny : "", code);
	return code - H_SLEEPS;
}

static int sleeps(const char *deny)
{
	return sleeps_on("light", "get", deny);
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
	int blind = sleeps_on("plain", "get", "deny");
	cr_assert(blind >= 1 && blind <= 10, "a 200 ms wait on a plain ring, membarrier denied: "
	          "%d sleeps", blind);
}

/* A join or a wait for a peer has no light notifier even on a light ring
 * (the join count, the census and closed are written seq_cst only): a blind
 * process sleeps there in 50 ms slices too.  When every wait on a light
 * ring was fenced, these slept some 200 times in 200 ms (found in the
 * twelfth session; wait.h ring_waiter_init_unfenced). */
Test(fence, a_blind_join_or_peer_wait_sleeps_as_usual_on_a_light_ring)
{
	int join = sleeps_on("light", "join", "deny");
	int peer = sleeps_on("light", "peer", "deny");
	cr_assert(join >= 1 && join <= 10 && peer >= 1 && peer <= 10,
	          "200 ms waits on a light ring, membarrier denied: join %d sleeps, wait_peer %d",
	          join, peer);
}

/* Every kind of sleeper on a light ring is woken, by every kind of
 * publication: the consumer sleeps in shmring_get, shmring_get_many,
 * shmring_poll (beside a plain ring) and poll(2) on the direct event fd, a
 * phase each; the producer, a forked child, puts with shmring_put and
 * shmring_put_many (the batch's one fence) in turn, and takes the replies
 * with shmring_get and shmring_get_many.  Every wait sleeps (spin 0); a round
 * trip that took a sleep slice is a lost wake. */
#define KIND_ROUNDS 5000
enum { BY_GET, BY_GET_MANY, BY_POLL, BY_EVENT_FD, KINDS };

static struct shmring *kinds_to, *kinds_back;

static int kinds_child(void *arg)
{
	(void)arg;
	shmring_set_spin(kinds_to, 0);
	shmring_set_spin(kinds_back, 0);
	for (uint64_t i = 0; i < (uint64_t)KINDS * KIND_ROUNDS; i++) {
		struct iovec rec = { &i, sizeof i };
		if (i & 1 ? shmring_put_many(kinds_to, &rec, 1, 10 * T_SEC) != 1
		          : shmring_put(kinds_to, &i, sizeof i, 10 * T_SEC) != 0)
			return 3;
		uint64_t back = 0;
		struct iovec got;
		uint64_t buf[2];
		if (i & 1) {
			if (shmring_get_many(kinds_back, buf, sizeof buf, &got, 1, 10 * T_SEC) != 1)
				return 4;
			memcpy(&back, got.iov_base, sizeof back);
		} else if (shmring_get(kinds_back, &back, sizeof back, 10 * T_SEC) != sizeof back)
			return 4;
		if (back != i)
			return 5;
	}
	return 0;
}

/* One record from kinds_to, taken after sleeping the phase's way. */
static uint64_t take_by(int kind, struct shmring *plain, int efd)
{
	uint64_t v = 0, buf[2];
	struct iovec got;
	switch (kind) {
	case BY_GET:
		cr_assert_eq(shmring_get(kinds_to, &v, sizeof v, 10 * T_SEC), (ssize_t)sizeof v);
		return v;
	case BY_GET_MANY:
		cr_assert_eq(shmring_get_many(kinds_to, buf, sizeof buf, &got, 1, 10 * T_SEC), 1);
		memcpy(&v, got.iov_base, sizeof v);
		return v;
	case BY_POLL:
		for (;;) {
			struct shmring_pollitem it[2] = { { plain, SHMRING_POLLIN, 0 },
				                          { kinds_to, SHMRING_POLLIN, 0 } };
			int n = shmring_poll(it, 2, 10 * T_SEC);
			cr_assert_gt(n, 0, "shmring_poll: %d", n);
			cr_assert_eq(it[0].revents, 0u, "the plain ring never gets a record");
			ssize_t r = shmring_get(kinds_to, &v, sizeof v, 0);
			if (r == (ssize_t)sizeof v)
				return v;
			cr_assert_eq(r, -EAGAIN);
		}
	default:
		for (;;) {
			struct pollfd p = { .fd = efd, .events = POLLIN };
			int n = poll(&p, 1, 10000);
			if (n < 0 && errno == EINTR)
				continue;
			cr_assert_eq(n, 1, "poll on the direct event fd: %d", n);
			cr_assert_eq(shmring_event_ack(kinds_to), 0);
			ssize_t r = shmring_get(kinds_to, &v, sizeof v, 0);
			if (r == (ssize_t)sizeof v)
				return v;
			cr_assert_eq(r, -EAGAIN);
		}
	}
}

Test(fence, light_rings_wake_every_kind_of_sleeper)
{
	struct shmring_config cfg = { .capacity = 65536, .flags = SHMRING_LIGHT_PUBLISH };
	cr_assert_eq(shmring_create(&kinds_to, NULL, &cfg), 0);
	cr_assert_eq(shmring_create(&kinds_back, NULL, &cfg), 0);
	struct shmring *plain = t_ring(65536, 0);
	shmring_set_spin(kinds_to, 0);
	shmring_set_spin(kinds_back, 0);
	pid_t pid = t_fork(kinds_child, NULL);
	int slow[KINDS] = { 0 }, efd = -1;
	uint64_t i = 0;
	for (int kind = 0; kind < KINDS; kind++) {
		if (kind == BY_EVENT_FD) {
			efd = shmring_event_fd_direct(kinds_to);
			if (efd == -EOPNOTSUPP)
				efd = shmring_event_fd(kinds_to); /* the watcher's: still a sleeper */
			cr_assert_geq(efd, 0, "event fd: %d", efd);
		}
		for (int k = 0; k < KIND_ROUNDS; k++, i++) {
			int64_t t0 = t_now_ns();
			cr_assert_eq(take_by(kind, plain, efd), i, "kind %d, round %d", kind, k);
			cr_assert_eq(shmring_put(kinds_back, &i, sizeof i, 10 * T_SEC), 0);
			int64_t took = t_now_ns() - t0;
			slow[kind] += took >= SLICE_LO_NS && took < SLICE_HI_NS;
		}
	}
	t_expect_exit(pid, 0, 20 * T_SEC);
	cr_assert_leq(slow[BY_GET] + slow[BY_GET_MANY] + slow[BY_POLL] + slow[BY_EVENT_FD], 1,
	              "round trips of a whole sleep slice: get %d, get_many %d, poll %d, event fd %d",
	              slow[BY_GET], slow[BY_GET_MANY], slow[BY_POLL], slow[BY_EVENT_FD]);
	shmring_detach(plain);
	shmring_detach(kinds_to);
	shmring_detach(kinds_back);
}
