/*
 * test_liveness.c - liveness that cannot be fooled into a false end of
 * stream (issue 11):
 *   - a start-time read that fails (fd table full when the role is taken)
 *     never registers a live process as dead;
 *   - a process in another PID namespace is refused (-EXDEV), not tracked
 *     wrong (root only: unshare(CLONE_NEWPID));
 *   - a producer whose puts keep succeeding learns within 100 ms that the
 *     forked child holding the consumer role died.
 */
#include "common.h"

#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "shmring_broadcast.h"
#include "shmring_latch.h"

TestSuite(liveness, .timeout = T_TIMEOUT, .fini = t_cleanup);

struct l_shared {
	struct shmring_latch go;
	_Atomic int declare_rc;
	_Atomic int redeclare_rc;
	_Atomic int open_rc;
	_Atomic int done;
};
static struct l_shared *l_sh;
static const char *l_name;

/* Forked before this process has any handle (so no atfork handler of the
 * library has read its identity yet): opens the ring with the fd table
 * full but for one, so that the start time cannot be read from /proc. */
static int l_fdless_producer(void *arg)
{
	(void)arg;
	if (shmring_gate_wait(&l_sh->go, 10 * T_SEC) != 0)
		return 10;
	int lowest = dup(0);
	if (lowest < 0)
		return 11;
	close(lowest);
	struct rlimit old, rl;
	getrlimit(RLIMIT_NOFILE, &old);
	rl = old;
	rl.rlim_cur = (rlim_t)lowest + 1; /* room for the ring's fd, no more */
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 12;
	struct shmring *r;
	int rc = shmring_open(&r, l_name);
	if (rc != 0)
		return 13;
	atomic_store(&l_sh->declare_rc, shmring_declare(r, SHMRING_PRODUCER) - 1000);
	/* alive, as a producer or not, for a while */
	t_sleep_ns(400 * T_MS);
	setrlimit(RLIMIT_NOFILE, &old);
	atomic_store(&l_sh->redeclare_rc, shmring_declare(r, SHMRING_PRODUCER) - 1000);
	t_sleep_ns(300 * T_MS);
	atomic_store(&l_sh->done, 1);
	shmring_detach(r);
	return 0;
}

Test(liveness, start_time_read_failure_never_registers_a_live_process_as_dead)
{
	l_sh = t_shared(4096);
	l_name = t_name("fdless");
	cr_assert_eq(shmring_gate_init(&l_sh->go), 0);
	pid_t pid = t_fork(l_fdless_producer, NULL);
	struct shmring *r;
	struct shmring_config cfg = { .capacity = 4096, .flags = SHMRING_CONSUMER };
	cr_assert_eq(shmring_create(&r, l_name, &cfg), 0);
	shmring_set_spin(r, 0);
	shmring_gate_open(&l_sh->go);
	char b[8];
	/* while the child lives: never end of stream */
	int64_t t0 = t_now_ns();
	ssize_t n = 0;
	while (!atomic_load(&l_sh->done) && t_now_ns() - t0 < 5 * T_SEC) {
		n = shmring_get(r, b, sizeof b, 20 * T_MS);
		cr_assert(n == -ETIMEDOUT || atomic_load(&l_sh->done),
		          "get = %zd while the producer lives (declare = %d, redeclare = %d)", n,
		          atomic_load(&l_sh->declare_rc) + 1000, atomic_load(&l_sh->redeclare_rc) + 1000);
	}
	t_expect_exit(pid, 0, 10 * T_SEC);
	int d1 = atomic_load(&l_sh->declare_rc) + 1000, d2 = atomic_load(&l_sh->redeclare_rc) + 1000;
	cr_assert(d1 == 0 || d1 == -EMFILE, "declare with no fd to spare = %d", d1);
	cr_assert_eq(d2, 0, "declare once fds are back = %d", d2);
	/* it was a producer, and has gone: now end of stream */
	cr_assert_eq(shmring_get(r, b, sizeof b, 5 * T_SEC), -EPIPE);
	shmring_detach(r);
	shmring_unlink(l_name);
}

/* In a new PID namespace (the grandchild is its pid 1). */
static int l_ns_grandchild(void)
{
	struct shmring *r;
	int rc = shmring_open(&r, l_name);
	atomic_store(&l_sh->open_rc, rc - 1000);
	if (rc == 0) {
		/* the old behaviour: registered under a pid that means another
		 * process in the ring's namespace; stay alive a while */
		shmring_declare(r, SHMRING_PRODUCER);
		t_sleep_ns(500 * T_MS);
		shmring_detach(r);
	}
	return 0;
}

static int l_ns_child(void *arg)
{
	(void)arg;
	if (unshare(CLONE_NEWPID) != 0)
		return 77; /* not allowed here: the test is skipped */
	pid_t pid = fork();
	if (pid < 0)
		return 10;
	if (pid == 0)
		_exit(l_ns_grandchild());
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 11;
}

Test(liveness, another_pid_namespace_is_refused_not_tracked_wrong)
{
	l_sh = t_shared(4096);
	l_name = t_name("pidns");
	struct shmring *r;
	struct shmring_config cfg = { .capacity = 4096, .flags = SHMRING_CONSUMER };
	cr_assert_eq(shmring_create(&r, l_name, &cfg), 0);
	atomic_store(&l_sh->open_rc, 1);
	int st = t_wait_status(t_fork(l_ns_child, NULL), 10 * T_SEC);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		shmring_detach(r);
		shmring_unlink(l_name);
		cr_skip_test("unshare(CLONE_NEWPID) not permitted");
	}
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	int rc = atomic_load(&l_sh->open_rc) + 1000;
	cr_assert_eq(rc, -EXDEV, "open from another PID namespace = %d (%s)", rc,
	             shmring_strerror(rc));
	cr_assert_eq(t_info(r).producers, 0);
	shmring_detach(r);
	shmring_unlink(l_name);
}

/* Inherits the consumer role at fork, then waits to be killed. */
static int l_consumer_child(void *arg)
{
	(void)arg;
	atomic_store(&l_sh->done, 1);
	for (;;)
		pause();
	return 0;
}

Test(liveness, succeeding_puts_notice_a_dead_consumer_within_100ms)
{
	l_sh = t_shared(4096);
	struct shmring *r;
	struct shmring_config cfg = { .capacity = 16u << 20, .flags = SHMRING_CONSUMER };
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	pid_t pid = t_fork(l_consumer_child, NULL);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&l_sh->done), 10 * T_SEC);
	cr_assert(ok);
	cr_assert_eq(shmring_leave(r, SHMRING_CONSUMER), 0);
	cr_assert_eq(t_info(r).consumers, 1, "the child's inherited role");
	/* puts that keep succeeding: one every 0.1 ms (16 MiB lasts 26 s) */
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(shmring_put(r, "x", 1, 0), 0);
		t_sleep_ns(T_MS / 10);
	}
	int64_t killed = t_now_ns();
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	int rc;
	int64_t el;
	while ((rc = shmring_put(r, "x", 1, 0)) == 0) {
		el = t_now_ns() - killed;
		cr_assert_lt(el, 3 * T_SEC, "puts still succeed %lld ms after the consumer died",
		             (long long)(el / T_MS));
		t_sleep_ns(T_MS / 10);
	}
	el = t_now_ns() - killed;
	cr_assert_eq(rc, -EPIPE, "put = %d", rc);
	fprintf(stderr, "liveness: -EPIPE %lld us after SIGKILL of the last consumer\n",
	        (long long)(el / 1000));
	/* 100 ms is the promise; twice that for a loaded machine */
	cr_assert_lt(el, 200 * T_MS, "-EPIPE came %lld ms after the death", (long long)(el / T_MS));
	shmring_detach(r);
}

/* A lossy subscriber reading until it is killed. */
static int l_lossy_subscriber_child(void *arg)
{
	struct shmring *r = arg;
	if (shmring_subscribe(r, SHMRING_SUB_LOSSY) != 0)
		return 30;
	atomic_store(&l_sh->done, 1);
	char buf[64];
	for (;;) {
		ssize_t n = shmring_get(r, buf, sizeof buf, -1);
		if (n < 0 && n != -EOVERFLOW)
			return 31;
	}
}

/* The same on a broadcast ring, whose producers never wait for a lossy
 * subscriber: a put's liveness look watches the subscribers' cursors there
 * (cons_head never moves), and a cursor that stops is a standstill like
 * any other.  (Watching the frontier instead would never see one: producers
 * move it themselves.) */
Test(liveness, succeeding_broadcast_puts_notice_a_dead_lossy_subscriber)
{
	l_sh = t_shared(4096);
	struct shmring *r;
	struct shmring_config cfg = { .capacity = 64u << 10, .flags = SHMRING_BROADCAST };
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	pid_t pid = t_fork(l_lossy_subscriber_child, r);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&l_sh->done), 10 * T_SEC);
	cr_assert(ok);
	cr_assert_eq(t_info(r).consumers, 1, "the subscriber");
	/* puts that keep succeeding, one every 0.1 ms, lapping the ring */
	for (int i = 0; i < 2000; i++) {
		cr_assert_eq(shmring_put(r, "x", 1, 0), 0);
		t_sleep_ns(T_MS / 10);
	}
	int64_t killed = t_now_ns();
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	int rc;
	int64_t el;
	while ((rc = shmring_put(r, "x", 1, 0)) == 0) {
		el = t_now_ns() - killed;
		cr_assert_lt(el, 3 * T_SEC, "puts still succeed %lld ms after the subscriber died",
		             (long long)(el / T_MS));
		t_sleep_ns(T_MS / 10);
	}
	el = t_now_ns() - killed;
	cr_assert_eq(rc, -EPIPE, "put = %d", rc);
	fprintf(stderr, "liveness: broadcast -EPIPE %lld us after SIGKILL of the last subscriber\n",
	        (long long)(el / 1000));
	/* 50-100 ms by design; four times that for a loaded machine */
	cr_assert_lt(el, 400 * T_MS, "-EPIPE came %lld ms after the death", (long long)(el / T_MS));
	shmring_detach(r);
}
