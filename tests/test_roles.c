/*
 * test_roles.c - roles and end of stream, as with a pipe: declare/leave,
 * implicit roles at the first put/get, the census in shmring_info, end of
 * stream (-EPIPE for gets once every producer has gone and the ring is
 * empty), broken pipe (-EPIPE for puts once every consumer has gone), dead
 * processes noticed without anyone calling anything, roles across fork, the
 * attachment table's limit (-EUSERS) and the reuse of dead entries.
 */
#include "common.h"
#include "attach.h" /* tests are built with -Iring: attach_slot, shmring__reap */

#include <pthread.h>

TestSuite(roles, .timeout = T_TIMEOUT);

/* A second handle on r, in this process. */
static struct shmring *t_attach(struct shmring *r)
{
	struct shmring *h = NULL;
	int rc = shmring_attach_fd(&h, shmring_fd(r));
	cr_assert_eq(rc, 0, "attach_fd = %d", rc);
	return h;
}

/* ------------------------------------------------------------ declare, leave */

Test(roles, bad_role_arguments)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_declare(r, 0), -EINVAL);
	cr_assert_eq(shmring_declare(r, 0x4), -EINVAL);
	cr_assert_eq(shmring_declare(r, SHMRING_PRODUCER | 0x100), -EINVAL);
	cr_assert_eq(shmring_declare(NULL, SHMRING_PRODUCER), -EINVAL);
	cr_assert_eq(shmring_leave(r, 0), -EINVAL);
	cr_assert_eq(shmring_leave(r, 0x8), -EINVAL);
	cr_assert_eq(shmring_leave(NULL, SHMRING_CONSUMER), -EINVAL);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.consumers, 0);
	shmring_detach(r);
}

Test(roles, census_counts_handles)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.consumers, 0);
	cr_assert_eq(in.eof, 0);
	/* implicit: first put makes a producer, first get a consumer */
	cr_assert_eq(shmring_put(r, "a", 1, 0), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 0);
	char c;
	cr_assert_eq(shmring_get(r, &c, 1, 0), 1);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 1);
	/* explicit, on other handles (one entry each) */
	struct shmring *p2 = t_attach(r), *c2 = t_attach(r), *both = t_attach(r);
	cr_assert_eq(shmring_declare(p2, SHMRING_PRODUCER), 0);
	cr_assert_eq(shmring_declare(p2, SHMRING_PRODUCER), 0, "declaring twice is harmless");
	cr_assert_eq(shmring_declare(c2, SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_declare(both, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 3, "producers %u", in.producers);
	cr_assert_eq(in.consumers, 3, "consumers %u", in.consumers);
	/* a role already held is not counted again by use */
	cr_assert_eq(shmring_put(p2, "b", 1, 0), 0);
	cr_assert_eq(shmring_get(c2, &c, 1, 0), 1);
	cr_assert_eq(t_info(r).producers, 3);
	cr_assert_eq(t_info(r).consumers, 3);
	/* leaving and detaching take them off */
	cr_assert_eq(shmring_leave(both, SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_leave(both, SHMRING_CONSUMER), 0, "leaving twice is harmless");
	cr_assert_eq(t_info(r).consumers, 2);
	cr_assert_eq(t_info(r).producers, 3);
	shmring_detach(p2);
	cr_assert_eq(t_info(r).producers, 2);
	shmring_detach(both);
	cr_assert_eq(t_info(r).producers, 1);
	shmring_detach(c2);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 1);
	cr_assert_eq(in.eof, 0);
	shmring_detach(r);
}

Test(roles, config_flags_declare_the_creators_roles)
{
	struct shmring_config cfg = { .capacity = 4096, .flags = SHMRING_PRODUCER | SHMRING_CONSUMER };
	struct shmring *r = NULL;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 1);
	shmring_detach(r);
	cfg.flags = SHMRING_CONSUMER;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.consumers, 1);
	shmring_detach(r);
}

/* ------------------------------------------------------------ end of stream */

Test(roles, no_end_of_stream_before_any_producer)
{
	struct shmring *r = t_ring(4096, 0);
	char buf[8];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EAGAIN);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 30 * T_MS), -ETIMEDOUT);
	cr_assert_eq(shmring_next_len(r), -EAGAIN);
	cr_assert_eq(t_info(r).eof, 0);
	shmring_detach(r);
}

Test(roles, leave_producer_gives_end_of_stream_after_drain)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring *p = t_attach(r);
	cr_assert_eq(shmring_declare(p, SHMRING_PRODUCER), 0);
	cr_assert_eq(shmring_put(p, "one", 3, 0), 0);
	cr_assert_eq(shmring_put(p, "two", 3, 0), 0);
	cr_assert_eq(shmring_leave(p, SHMRING_PRODUCER), 0);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.records, 2);
	char buf[8];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, -1), 3, "records before end of stream come first");
	cr_assert_eq(shmring_next_len(r), 3);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, -1), 3);
	cr_assert_eq(memcmp(buf, "two", 3), 0);
	cr_assert_eq(shmring_next_len(r), -EPIPE);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EPIPE);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, -1), -EPIPE, "must not block at end of stream");
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(r, &sp, -1), -EPIPE);
	_Alignas(8) char many[64];
	struct iovec recs[2];
	cr_assert_eq(shmring_get_many(r, many, sizeof many, recs, 2, -1), -EPIPE);
	cr_assert_eq(t_info(r).eof, 1);
	/* not closed: a put takes the producer role again, and the stream goes on */
	cr_assert_eq(t_info(r).closed, 0);
	cr_assert_eq(shmring_put(p, "three", 5, 0), 0);
	cr_assert_eq(t_info(r).eof, 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 5);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EAGAIN, "a producer again: no end of stream");
	shmring_detach(p);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, -1), -EPIPE, "detaching ends the stream too");
	shmring_detach(r);
}

Test(roles, end_of_stream_waits_for_every_producer)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring *p1 = t_attach(r), *p2 = t_attach(r);
	cr_assert_eq(shmring_put(p1, "x", 1, 0), 0);
	cr_assert_eq(shmring_put(p2, "y", 1, 0), 0);
	shmring_detach(p1);
	char buf[4];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 1);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 1);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EAGAIN, "p2 is still a producer");
	cr_assert_eq(t_info(r).eof, 0);
	shmring_detach(p2);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EPIPE);
	shmring_detach(r);
}

/* ------------------------------------------------------------ broken pipe */

Test(roles, puts_accepted_before_any_consumer)
{
	struct shmring *r = t_ring(4096, 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(shmring_put(r, "p", 1, 0), 0);
	cr_assert_eq(t_info(r).consumers, 0);
	shmring_detach(r);
}

Test(roles, leave_consumer_gives_broken_pipe)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring *c = t_attach(r);
	cr_assert_eq(shmring_declare(c, SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_put(r, "a", 1, 0), 0);
	cr_assert_eq(shmring_leave(c, SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_put(r, "b", 1, 0), -EPIPE);
	cr_assert_eq(shmring_put(r, "b", 1, -1), -EPIPE, "must not block on a broken pipe");
	struct iovec iov = { "b", 1 };
	cr_assert_eq(shmring_putv(r, &iov, 1, -1), -EPIPE);
	cr_assert_eq(shmring_put_many(r, &iov, 1, -1), -EPIPE);
	struct shmring_span sp;
	cr_assert_eq(shmring_reserve(r, 1, &sp, -1), -EPIPE);
	cr_assert_eq(t_info(r).records, 1, "what was put before stays");
	/* a get takes the consumer role again: puts work again */
	char buf[4];
	cr_assert_eq(shmring_get(c, buf, sizeof buf, 0), 1);
	cr_assert_eq(shmring_put(r, "c", 1, 0), 0);
	shmring_detach(c);
	cr_assert_eq(shmring_put(r, "d", 1, 0), -EPIPE, "detaching the last consumer breaks the pipe");
	shmring_detach(r);
}

/* ------------------------------------------------------------ other processes */

static struct shmring *pr_ring;

static int sleeping_getter(void *arg)
{
	(void)arg;
	shmring_set_spin(pr_ring, 0);
	char buf[16];
	ssize_t n = shmring_get(pr_ring, buf, sizeof buf, 20 * T_SEC);
	return n == -EPIPE ? 0 : n >= 0 ? 1 : (int)(100 - n > 250 ? 250 : 100 - n);
}

/* Roles are counted per attachment: a child that inherited a declared
 * producer role keeps the stream open after the parent leaves its own. */
Test(roles, inherited_role_keeps_stream_open)
{
	pr_ring = t_ring(4096, 0);
	struct shmring *p = t_attach(pr_ring);
	cr_assert_eq(shmring_declare(p, SHMRING_PRODUCER), 0);
	/* the child sleeps in get on pr_ring, and holds p's role, inherited */
	pid_t pid = t_fork(sleeping_getter, NULL);
	int ok;
	T_POLL_UNTIL(ok, t_info(pr_ring).futex_waits >= 1, 10 * T_SEC);
	cr_assert(ok, "the consumer never slept");
	cr_assert_eq(t_info(pr_ring).producers, 2, "parent's and child's attachments of p");
	cr_assert_eq(shmring_leave(p, SHMRING_PRODUCER), 0);
	cr_assert_eq(t_info(pr_ring).producers, 1);
	t_sleep_ns(150 * T_MS); /* past a liveness sweep */
	cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "end of stream while the child still produces");
	char buf[4];
	cr_assert_eq(shmring_get(pr_ring, buf, sizeof buf, 0), -EAGAIN);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* now the last producer is dead */
	cr_assert_eq(shmring_get(pr_ring, buf, sizeof buf, 5 * T_SEC), -EPIPE);
	shmring_detach(p);
	shmring_detach(pr_ring);
}

/* Plain version: parent is the only producer, child consumer asleep. */
Test(roles, last_producer_leaving_wakes_consumer)
{
	pr_ring = t_ring(4096, 0);
	pid_t pid = t_fork(sleeping_getter, NULL);
	int ok;
	T_POLL_UNTIL(ok, t_info(pr_ring).futex_waits >= 1, 10 * T_SEC);
	cr_assert(ok, "the consumer never slept");
	cr_assert_eq(shmring_declare(pr_ring, SHMRING_PRODUCER), 0);
	t_sleep_ns(60 * T_MS);
	cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_leave(pr_ring, SHMRING_PRODUCER), 0);
	t_expect_exit(pid, 0, T_WAKE_BOUND_NS);
	cr_assert_lt(t_now_ns() - t0, T_WAKE_BOUND_NS);
	shmring_detach(pr_ring);
}

static int sleeping_putter(void *arg)
{
	(void)arg;
	shmring_set_spin(pr_ring, 0);
	static char big[4096];
	int rc = shmring_put(pr_ring, big, 4096, 20 * T_SEC);
	return rc == -EPIPE ? 0 : rc == 0 ? 1 : (100 - rc > 250 ? 250 : 100 - rc);
}

Test(roles, last_consumer_leaving_wakes_producer)
{
	pr_ring = t_ring(4096, 4096);
	struct shmring *c = t_attach(pr_ring);
	static char big[4096];
	cr_assert_eq(shmring_put(pr_ring, big, 4096, 0), 0);
	pid_t pid = t_fork(sleeping_putter, NULL);
	cr_assert_eq(shmring_declare(c, SHMRING_CONSUMER), 0); /* after fork: not inherited */
	int ok;
	T_POLL_UNTIL(ok, t_info(pr_ring).futex_waits >= 1, 10 * T_SEC);
	cr_assert(ok, "the producer never slept");
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_leave(c, SHMRING_CONSUMER), 0);
	t_expect_exit(pid, 0, T_WAKE_BOUND_NS);
	cr_assert_lt(t_now_ns() - t0, T_WAKE_BOUND_NS);
	shmring_detach(c);
	shmring_detach(pr_ring);
}

/* ------------------------------------------------------------ the dead */

struct role_child {
	unsigned role;
	int ready[2]; /* pipe: the child writes one byte once it holds its role */
	int records;  /* a producer puts this many first */
};

static int role_then_hang(void *arg)
{
	struct role_child *rc = arg;
	close(rc->ready[0]);
	if (shmring_declare(pr_ring, rc->role) != 0)
		return 1;
	for (int i = 0; i < rc->records; i++)
		if (shmring_put(pr_ring, &i, sizeof i, 0) != 0)
			return 2;
	if (write(rc->ready[1], "r", 1) != 1)
		return 3;
	for (;;)
		pause();
}

static int role_then_exit(void *arg)
{
	struct role_child *rc = arg;
	close(rc->ready[0]);
	if (shmring_declare(pr_ring, rc->role) != 0)
		return 1;
	for (int i = 0; i < rc->records; i++)
		if (shmring_put(pr_ring, &i, sizeof i, 0) != 0)
			return 2;
	if (write(rc->ready[1], "r", 1) != 1)
		return 3;
	return 0; /* _exit without detaching */
}

static pid_t start_role_child(struct role_child *rc, int (*fn)(void *))
{
	cr_assert_eq(pipe(rc->ready), 0);
	pid_t pid = t_fork(fn, rc);
	close(rc->ready[1]);
	char b;
	cr_assert_eq(read(rc->ready[0], &b, 1), 1, "child did not take its role");
	close(rc->ready[0]);
	return pid;
}

struct killer {
	pid_t pid;
	int64_t delay;
};

static void *killer_thread(void *arg)
{
	struct killer *k = arg;
	t_sleep_ns(k->delay);
	kill(k->pid, SIGKILL);
	return NULL;
}

/* A producer that exits without detaching: the consumer gets its records,
 * then end of stream (the exited child is not reaped yet: a zombie is dead). */
Test(roles, exited_producer_gives_end_of_stream)
{
	pr_ring = t_ring(4096, 0);
	struct role_child rc = { .role = SHMRING_PRODUCER, .records = 3 };
	pid_t pid = start_role_child(&rc, role_then_exit);
	char buf[8];
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(shmring_get(pr_ring, buf, sizeof buf, 5 * T_SEC), (ssize_t)sizeof(int));
		int v;
		memcpy(&v, buf, sizeof v);
		cr_assert_eq(v, i);
	}
	int64_t t0 = t_now_ns();
	ssize_t n = shmring_get(pr_ring, buf, sizeof buf, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(n, -EPIPE, "get after the producer died = %zd", n);
	cr_assert_lt(el, T_WAKE_BOUND_NS, "noticed after %lld ms", (long long)(el / T_MS));
	t_expect_exit(pid, 0, 10 * T_SEC);
	struct shmring_info in = t_info(pr_ring);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.eof, 1);
	shmring_detach(pr_ring);
}

/* A producer killed while we sleep in get(-1): we wake with -EPIPE. */
Test(roles, killed_producer_wakes_sleeping_consumer)
{
	pr_ring = t_ring(4096, 0);
	shmring_set_spin(pr_ring, 0);
	struct role_child rc = { .role = SHMRING_PRODUCER, .records = 0 };
	pid_t pid = start_role_child(&rc, role_then_hang);
	cr_assert_eq(t_info(pr_ring).producers, 1);
	struct killer k = { pid, 150 * T_MS };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, killer_thread, &k), 0);
	char buf[8];
	int64_t t0 = t_now_ns();
	ssize_t n = shmring_get(pr_ring, buf, sizeof buf, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	pthread_join(th, NULL);
	cr_assert_eq(n, -EPIPE, "get = %zd", n);
	cr_assert_geq(el, 150 * T_MS - T_MS, "end of stream before the producer died");
	cr_assert_lt(el, 150 * T_MS + T_WAKE_BOUND_NS);
	int st = t_wait_status(pid, 5 * T_SEC);
	cr_assert(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	shmring_detach(pr_ring);
}

/* A consumer killed while we sleep in put(-1) on a full ring: -EPIPE. */
Test(roles, killed_consumer_wakes_sleeping_producer)
{
	pr_ring = t_ring(4096, 4096);
	shmring_set_spin(pr_ring, 0);
	struct role_child rc = { .role = SHMRING_CONSUMER };
	pid_t pid = start_role_child(&rc, role_then_hang);
	static char big[4096];
	cr_assert_eq(shmring_put(pr_ring, big, 4096, 0), 0);
	struct killer k = { pid, 150 * T_MS };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, killer_thread, &k), 0);
	int64_t t0 = t_now_ns();
	int rc2 = shmring_put(pr_ring, big, 1, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	pthread_join(th, NULL);
	cr_assert_eq(rc2, -EPIPE, "put = %d", rc2);
	cr_assert_geq(el, 150 * T_MS - T_MS);
	cr_assert_lt(el, 150 * T_MS + T_WAKE_BOUND_NS);
	t_wait_status(pid, 5 * T_SEC);
	shmring_detach(pr_ring);
}

/* A caller that never sleeps (timeout 0, -EAGAIN over and over) notices a
 * dead consumer too. */
Test(roles, polling_producer_notices_dead_consumer)
{
	pr_ring = t_ring(4096, 4096);
	struct role_child rc = { .role = SHMRING_CONSUMER };
	pid_t pid = start_role_child(&rc, role_then_hang);
	static char big[4096];
	cr_assert_eq(shmring_put(pr_ring, big, 4096, 0), 0);
	cr_assert_eq(shmring_put(pr_ring, big, 1, 0), -EAGAIN);
	kill(pid, SIGKILL);
	int64_t t0 = t_now_ns();
	int rc2;
	while ((rc2 = shmring_put(pr_ring, big, 1, 0)) == -EAGAIN && t_now_ns() - t0 < 5 * T_SEC)
		t_sleep_ns(T_MS / 2);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(rc2, -EPIPE, "put = %d after %lld ms", rc2, (long long)(el / T_MS));
	cr_assert_lt(el, T_WAKE_BOUND_NS);
	t_wait_status(pid, 5 * T_SEC);
	shmring_detach(pr_ring);
}

Test(roles, polling_consumer_notices_dead_producer)
{
	pr_ring = t_ring(4096, 0);
	struct role_child rc = { .role = SHMRING_PRODUCER, .records = 1 };
	pid_t pid = start_role_child(&rc, role_then_hang);
	char buf[8];
	cr_assert_eq(shmring_get(pr_ring, buf, sizeof buf, 0), (ssize_t)sizeof(int));
	cr_assert_eq(shmring_get(pr_ring, buf, sizeof buf, 0), -EAGAIN);
	kill(pid, SIGKILL);
	int64_t t0 = t_now_ns();
	ssize_t n;
	while ((n = shmring_get(pr_ring, buf, sizeof buf, 0)) == -EAGAIN && t_now_ns() - t0 < 5 * T_SEC)
		t_sleep_ns(T_MS / 2);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(n, -EPIPE, "get = %zd after %lld ms", n, (long long)(el / T_MS));
	cr_assert_lt(el, T_WAKE_BOUND_NS);
	t_wait_status(pid, 5 * T_SEC);
	shmring_detach(pr_ring);
}

/* ------------------------------------------------------------ fork */

static int report_census(void *arg)
{
	unsigned want = *(unsigned *)arg;
	struct shmring_info in;
	if (shmring_info(pr_ring, &in) != 0)
		return 1;
	return in.producers == want ? 0 : 10 + (int)(in.producers > 9 ? 9 : in.producers);
}

Test(roles, declared_roles_are_inherited_implicit_ones_are_not)
{
	pr_ring = t_ring(4096, 0);
	/* implicit: the parent's first put; a child does not inherit it */
	cr_assert_eq(shmring_put(pr_ring, "x", 1, 0), 0);
	unsigned want = 1;
	pid_t pid = t_fork(report_census, &want);
	t_expect_exit(pid, 0, 10 * T_SEC);
	shmring_detach(pr_ring);

	/* declared: the child is a producer of its own from fork on */
	pr_ring = t_ring(4096, 0);
	cr_assert_eq(shmring_declare(pr_ring, SHMRING_PRODUCER), 0);
	want = 2;
	pid = t_fork(report_census, &want);
	t_expect_exit(pid, 0, 10 * T_SEC);
	/* the child exited without detaching: its role is swept away */
	int ok;
	char buf[4];
	T_POLL_UNTIL(ok, (shmring_get(pr_ring, buf, sizeof buf, 0), t_info(pr_ring).producers == 1),
	             5 * T_SEC);
	cr_assert(ok, "the dead child's producer role was never swept (producers %u)",
	          t_info(pr_ring).producers);
	shmring_detach(pr_ring);
}

/* The fork-pool pattern of the header: declare PRODUCER, fork producers,
 * leave in the parent at once.  The consumer sees every record and only
 * then end of stream, however the producers are scheduled. */
static int pool_producer(void *arg)
{
	int id = *(int *)arg;
	for (int i = 0; i < 50; i++) {
		int rec[2] = { id, i };
		if (shmring_put(pr_ring, rec, sizeof rec, 10 * T_SEC) != 0)
			return 1;
		if (i % 10 == 0)
			t_sleep_ns((int64_t)(id + 1) * 10 * T_MS); /* stagger them */
	}
	return 0;
}

Test(roles, fork_pool_end_of_stream_after_all_producers)
{
	pr_ring = t_ring(4096, 0);
	cr_assert_eq(shmring_declare(pr_ring, SHMRING_PRODUCER), 0);
	int ids[3] = { 0, 1, 2 };
	pid_t pids[3];
	for (int i = 0; i < 3; i++)
		pids[i] = t_fork(pool_producer, &ids[i]);
	cr_assert_eq(shmring_leave(pr_ring, SHMRING_PRODUCER), 0);
	int next[3] = { 0, 0, 0 };
	int total = 0;
	for (;;) {
		int rec[2];
		ssize_t n = shmring_get(pr_ring, rec, sizeof rec, 20 * T_SEC);
		if (n == -EPIPE)
			break;
		cr_assert_eq(n, (ssize_t)sizeof rec, "get = %zd", n);
		cr_assert(rec[0] >= 0 && rec[0] < 3);
		cr_assert_eq(rec[1], next[rec[0]], "producer %d: record %d after %d", rec[0], rec[1],
		             next[rec[0]] - 1);
		next[rec[0]]++;
		total++;
	}
	cr_assert_eq(total, 150, "end of stream after %d of 150 records", total);
	for (int i = 0; i < 3; i++)
		t_expect_exit(pids[i], 0, 10 * T_SEC);
	shmring_detach(pr_ring);
}

/* The parent's detach does not end an inherited (declared) role. */
static int late_producer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++)
		if (shmring_put(pr_ring, &i, sizeof i, 5 * T_SEC) != 0)
			return 1;
	t_sleep_ns(200 * T_MS);
	int last = 3;
	if (shmring_put(pr_ring, &last, sizeof last, 5 * T_SEC) != 0)
		return 2;
	shmring_detach(pr_ring);
	return 0;
}

Test(roles, parent_detach_does_not_end_childs_role)
{
	pr_ring = t_ring(4096, 0);
	struct shmring *cons = t_attach(pr_ring);
	cr_assert_eq(shmring_declare(pr_ring, SHMRING_PRODUCER), 0);
	pid_t pid = t_fork(late_producer, NULL);
	shmring_detach(pr_ring);
	cr_assert_eq(shmring_declare(cons, SHMRING_CONSUMER), 0);
	for (int i = 0; i < 4; i++) {
		int v = -1;
		ssize_t n = shmring_get(cons, &v, sizeof v, 10 * T_SEC);
		cr_assert_eq(n, (ssize_t)sizeof v, "record %d: get = %zd", i, n);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(shmring_get(cons, NULL, 0, 10 * T_SEC), -EPIPE);
	t_expect_exit(pid, 0, 10 * T_SEC);
	shmring_detach(cons);
}

/* ------------------------------------------------------------ the table */

Test(roles, attachment_table_full_is_eusers)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring *h[SHMRING_MAX_ATTACH + 1];
	for (int i = 0; i <= SHMRING_MAX_ATTACH; i++)
		h[i] = t_attach(r);
	for (int i = 0; i < SHMRING_MAX_ATTACH; i++)
		cr_assert_eq(shmring_declare(h[i], SHMRING_PRODUCER), 0, "declare #%d", i);
	cr_assert_eq(t_info(r).producers, SHMRING_MAX_ATTACH);
	struct shmring *last = h[SHMRING_MAX_ATTACH];
	cr_assert_eq(shmring_declare(last, SHMRING_CONSUMER), -EUSERS);
	cr_assert_eq(shmring_put(last, "x", 1, 0), -EUSERS);
	char c;
	cr_assert_eq(shmring_get(last, &c, 1, 0), -EUSERS);
	cr_assert_eq(t_info(r).records, 0, "a put refused for -EUSERS left a record");
	/* an entry comes free with a detach */
	shmring_detach(h[7]);
	cr_assert_eq(shmring_declare(last, SHMRING_CONSUMER), 0);
	cr_assert_eq(t_info(r).consumers, 1);
	for (int i = 0; i <= SHMRING_MAX_ATTACH; i++)
		if (i != 7)
			shmring_detach(h[i]);
	cr_assert_eq(t_info(r).producers, 0);
	cr_assert_eq(t_info(r).consumers, 0);
	shmring_detach(r);
}

static int declare_and_die(void *arg)
{
	(void)arg;
	return shmring_declare(pr_ring, SHMRING_PRODUCER) == 0 ? 0 : 1;
}

/* Entries of dead processes are reused when the table fills up. */
Test(roles, dead_entries_are_reused)
{
	pr_ring = t_ring(4096, 0);
	for (int i = 0; i < SHMRING_MAX_ATTACH; i++) {
		pid_t pid = t_fork(declare_and_die, NULL);
		t_expect_exit(pid, 0, 10 * T_SEC);
	}
	/* every entry is held by a dead process now (or was swept already) */
	struct shmring *h = t_attach(pr_ring);
	cr_assert_eq(shmring_declare(h, SHMRING_PRODUCER), 0, "table full of the dead");
	cr_assert_eq(shmring_put(h, "x", 1, 0), 0);
	shmring_detach(h);
	shmring_detach(pr_ring);
}

/* A fork in one thread while another thread puts and peeks on the same
 * handle: the other thread's operations stay in the handle's own entry.
 * before_fork pointed the handle at the child's pending entry for a moment;
 * a peek announced there was then recovered, from under the live thread, by
 * the sweep after the child's exit (lost_records with nobody dead; a review
 * found it, 2026-12-06). */
static struct shmring *fw_ring;
static _Atomic int fw_stop, fw_parent_slot;
static _Atomic long fw_foreign, fw_errors;
static void *fw_worker(void *arg)
{
	(void)arg;
	char buf[32] = "x";
	while (!atomic_load(&fw_stop)) {
		if (shmring_put(fw_ring, buf, sizeof buf, 0) < 0) {
			fw_errors++;
			continue;
		}
		struct shmring_span sp;
		int before = atomic_load(&fw_ring->attach_slot);
		ssize_t n = shmring_peek(fw_ring, &sp, 0);
		int after = atomic_load(&fw_ring->attach_slot);
		if (before != fw_parent_slot || after != fw_parent_slot)
			fw_foreign++;
		if (n < 0 || shmring_release(fw_ring, &sp) != 0)
			fw_errors++;
	}
	return NULL;
}

Test(roles, fork_leaves_other_threads_in_their_entry)
{
	struct shmring_config cfg = { .capacity = 1 << 16, .max_attach = 3,
	                              .flags = SHMRING_PRODUCER | SHMRING_CONSUMER };
	cr_assert_eq(shmring_create(&fw_ring, NULL, &cfg), 0);
	atomic_store(&fw_parent_slot, atomic_load(&fw_ring->attach_slot));
	pthread_t w;
	cr_assert_eq(pthread_create(&w, NULL, fw_worker, NULL), 0);
	int64_t t0 = t_now_ns();
	long forks = 0;
	while (t_now_ns() - t0 < 3 * T_SEC) {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		cr_assert_gt(p, 0);
		waitpid(p, NULL, 0);
		forks++;
		shmring__reap(fw_ring); /* a sweep, as any waiter's */
	}
	atomic_store(&fw_stop, 1);
	pthread_join(w, NULL);
	cr_assert_eq(fw_foreign, 0, "the worker saw the handle in another entry %ld times (%ld forks)",
	             fw_foreign, forks);
	cr_assert_eq(fw_errors, 0);
	cr_assert_eq(t_info(fw_ring).lost_records, 0, "records lost with nobody dead");
	shmring_detach(fw_ring);
}
