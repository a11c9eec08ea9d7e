/*
 * test_pidreuse.c - liveness is pid + start time, not pid alone.
 *
 * An attachment entry's id is pid | start_time << ATTACH_PID_BITS, the start
 * time being field 22 of /proc/<pid>/stat.  A recycled pid has another start
 * time, so an entry left by a dead process must not be kept alive by a new
 * process that happens to get its pid.  Recycling a pid on purpose is not
 * practical, so these tests craft entries in the shared attachment table
 * (through a mapping of their own) for a process that is certainly alive, a
 * sleeping child:
 *   - with a wrong start time the entry is dead: a consumer's sweep removes
 *     the fake producer and the empty ring reads as end of stream (-EPIPE);
 *   - with the right start time it is alive (-ETIMEDOUT) until the child is
 *     killed: then (already as an unreaped zombie) it is dead (-EPIPE);
 *   - a pid that no longer exists is dead;
 *   - a pending entry (claimed by a forking parent) is honoured for about a
 *     second and then dropped even though its pid is alive.
 */
#include "common.h"

#include <stdatomic.h>

#include "layout.h" /* tests are built with -Iring */

TestSuite(pidreuse, .timeout = T_TIMEOUT);

/* Field 22 (starttime) of /proc/<pid>/stat, and field 3 (state); skips the
 * command name by its last ')'. */
static int proc_start(pid_t pid, uint64_t *start, char *state)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	unsigned long long st;
	char s;
	if (sscanf(p + 1, " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
	           &s, &st) != 2)
		return -EIO;
	*start = st;
	if (state)
		*state = s;
	return 0;
}

static int sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0; /* not reached */
}

static size_t mapped; /* the whole file: the header and the attachment table */

static struct ring_header *map_header(struct shmring *r)
{
	struct stat st;
	cr_assert_eq(fstat(shmring_fd(r), &st), 0);
	mapped = (size_t)st.st_size;
	void *p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, shmring_fd(r), 0);
	cr_assert_neq(p, MAP_FAILED, "mmap header: %s", strerror(errno));
	struct ring_header *hdr = p;
	cr_assert_eq(hdr->magic, RING_MAGIC);
	return hdr;
}

static void unmap_header(struct ring_header *hdr)
{
	munmap(hdr, mapped);
}

/* Write a producer entry with the given id into a free slot, and count it
 * in the census as a live producer (and a producer having existed).
 * Returns the slot. */
static int craft_producer(struct ring_header *hdr, uint64_t id, int pending)
{
	for (int i = 0; i < (int)hdr->attach_count; i++) {
		struct attach_entry *e = layout_attach(hdr, i);
		if (atomic_load(&e->id) != 0)
			continue;
		atomic_store(&e->roles, SHMRING_PRODUCER);
		atomic_store(&e->since_ns, (uint64_t)t_now_ns());
		uint64_t expect = 0;
		/* a pending entry is one whose id carries ATTACH_PENDING_TAG */
		cr_assert(atomic_compare_exchange_strong(&e->id, &expect,
		                                         pending ? id | ATTACH_PENDING_TAG : id));
		/* the count (and the arrival generation, as shmring__census_add
		 * moves it: a consumer made before this producer came sees its
		 * end of stream), then the ever bit: never "ever, and none" */
		atomic_fetch_add(&hdr->census, CENSUS_PRODUCER | (UINT64_C(1) << CENSUS_PGEN_SHIFT));
		atomic_fetch_or(&hdr->census, CENSUS_EVER_PRODUCER);
		return i;
	}
	cr_assert_fail("no free attachment entry");
	return -1;
}

static uint64_t make_id(pid_t pid, uint64_t start)
{
	return (uint64_t)pid | (start << ATTACH_PID_BITS);
}

/* A consumer on a ring whose only producer is the crafted entry: get with
 * a timeout.  Returns the get's result; *el its duration. */
static ssize_t timed_get(struct shmring *r, int64_t timeout, int64_t *el)
{
	char buf[64];
	int64_t t0 = t_now_ns();
	ssize_t n = shmring_get(r, buf, sizeof buf, timeout);
	*el = t_now_ns() - t0;
	return n;
}

static void wrong_start_is_dead(uint64_t (*wrong)(uint64_t), const char *what)
{
	pid_t child = t_fork(sleeper, NULL);
	uint64_t start;
	char state;
	cr_assert_eq(proc_start(child, &start, &state), 0);
	cr_assert_neq(state, 'Z');

	struct shmring *r = t_ring(4096, 0);
	shmring_set_spin(r, 0);
	cr_assert_eq(shmring_declare(r, SHMRING_CONSUMER), 0);
	struct ring_header *hdr = map_header(r);
	uint64_t id = make_id(child, wrong(start));
	int slot = craft_producer(hdr, id, 0);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.eof, 0);

	int64_t el;
	ssize_t n = timed_get(r, 3 * T_SEC, &el);
	cr_assert_eq(n, -EPIPE, "%s: live pid %d with a wrong start time must be dead: get = %zd",
	             what, (int)child, n);
	cr_assert_lt(el, 2 * T_SEC);
	cr_log_info("pidreuse: %s: fake producer swept after %.1f ms\n", what, el / 1e6);
	in = t_info(r);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.eof, 1);
	cr_assert_eq(in.consumers, 1, "our own entry survives the sweep");
	cr_assert_eq(atomic_load(&layout_attach(hdr, slot)->id), 0, "the dead entry is freed");
	/* and the child it resembled is untouched */
	cr_assert_eq(waitpid(child, NULL, WNOHANG), 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	unmap_header(hdr);
	shmring_detach(r);
}

static uint64_t plus_one(uint64_t s) { return s + 1; }
static uint64_t minus_one(uint64_t s) { return s - 1; }
static uint64_t far_later(uint64_t s) { return s + 100000; }
static uint64_t zero_start(uint64_t s) { (void)s; return 0; }

Test(pidreuse, live_pid_with_wrong_start_time_is_dead)
{
	wrong_start_is_dead(plus_one, "start + 1");
}

Test(pidreuse, live_pid_with_earlier_start_time_is_dead)
{
	wrong_start_is_dead(minus_one, "start - 1");
}

Test(pidreuse, live_pid_with_much_later_start_time_is_dead)
{
	wrong_start_is_dead(far_later, "start + 100000");
}

Test(pidreuse, live_pid_with_start_time_zero_is_dead)
{
	wrong_start_is_dead(zero_start, "start 0");
}

Test(pidreuse, live_pid_with_right_start_time_is_alive_until_killed)
{
	pid_t child = t_fork(sleeper, NULL);
	uint64_t start;
	cr_assert_eq(proc_start(child, &start, NULL), 0);

	struct shmring *r = t_ring(4096, 0);
	shmring_set_spin(r, 0);
	cr_assert_eq(shmring_declare(r, SHMRING_CONSUMER), 0);
	struct ring_header *hdr = map_header(r);
	uint64_t id = make_id(child, start);
	int slot = craft_producer(hdr, id, 0);

	/* 300 ms: several sweeps, each of which finds the entry alive */
	int64_t el;
	ssize_t n = timed_get(r, 300 * T_MS, &el);
	cr_assert_eq(n, -ETIMEDOUT, "live pid, right start time: get = %zd", n);
	cr_assert_geq(el, 300 * T_MS);
	cr_assert_eq(atomic_load(&layout_attach(hdr, slot)->id), id, "the live entry stays");
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.eof, 0);
	/* polling consumers sweep too (once the ring has stood still for
	 * 50 ms: attach.h ring_sweep_if_stalled): still alive */
	int64_t poll_end = t_now_ns() + 150 * T_MS;
	while (t_now_ns() < poll_end)
		cr_assert_eq(shmring_get(r, NULL, 0, 0), -EAGAIN);
	cr_assert_eq(t_info(r).producers, 1);

	/* killed: dead as soon as it is a zombie, before anyone reaps it */
	int64_t t0 = t_now_ns();
	kill(child, SIGKILL);
	siginfo_t si;
	cr_assert_eq(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT), 0);
	char state = 0;
	uint64_t s2;
	cr_assert_eq(proc_start(child, &s2, &state), 0, "not reaped yet: still in /proc");
	cr_assert_eq(state, 'Z');
	cr_assert_eq(s2, start);
	n = timed_get(r, 3 * T_SEC, &el);
	cr_assert_eq(n, -EPIPE, "killed (a zombie): get = %zd", n);
	cr_assert_lt(t_now_ns() - t0, 2 * T_SEC);
	cr_log_info("pidreuse: zombie producer swept %.1f ms after the kill\n",
	            (t_now_ns() - t0) / 1e6);
	cr_assert_eq(atomic_load(&layout_attach(hdr, slot)->id), 0);
	cr_assert_eq(t_info(r).producers, 0);
	cr_assert_eq(waitpid(child, NULL, 0), child);
	unmap_header(hdr);
	shmring_detach(r);
}

/* A pid that does not exist any more (a reaped child's). */
Test(pidreuse, vanished_pid_is_dead)
{
	pid_t child = t_fork(sleeper, NULL);
	uint64_t start;
	cr_assert_eq(proc_start(child, &start, NULL), 0);
	kill(child, SIGKILL);
	cr_assert_eq(waitpid(child, NULL, 0), child);

	struct shmring *r = t_ring(4096, 0);
	shmring_set_spin(r, 0);
	struct ring_header *hdr = map_header(r);
	craft_producer(hdr, make_id(child, start), 0);
	int64_t el;
	ssize_t n = timed_get(r, 3 * T_SEC, &el);
	cr_assert_eq(n, -EPIPE, "vanished pid: get = %zd", n);
	cr_assert_lt(el, 2 * T_SEC);
	unmap_header(hdr);
	shmring_detach(r);
}

/* A pending entry stands for a child being forked: it is not checked for
 * liveness (its id is still the parent's) for about a second, then dropped
 * as the leftover of a failed fork, whoever owns the pid. */
Test(pidreuse, stale_pending_entry_is_dropped_after_a_second)
{
	pid_t child = t_fork(sleeper, NULL);
	uint64_t start;
	cr_assert_eq(proc_start(child, &start, NULL), 0);
	struct shmring *r = t_ring(4096, 0);
	shmring_set_spin(r, 0);
	struct ring_header *hdr = map_header(r);
	int64_t t0 = t_now_ns();
	/* pending = 1, and bit 63 of the id set too: never part of a real id
	 * (start times are far below 2^41 ticks), it keeps this entry pending
	 * should the table ever mark pending entries in the id itself. */
	int slot = craft_producer(hdr, make_id(child, start + 1) | (UINT64_C(1) << 63), 1);
	int64_t el;
	/* not even a wrong start time ends it while it is young */
	ssize_t n = timed_get(r, 300 * T_MS, &el);
	cr_assert_eq(n, -ETIMEDOUT, "young pending entry: get = %zd", n);
	n = timed_get(r, 5 * T_SEC, &el);
	int64_t age = t_now_ns() - t0;
	cr_assert_eq(n, -EPIPE, "stale pending entry: get = %zd", n);
	cr_assert_geq(age, 900 * T_MS, "dropped after %lld ns", (long long)age);
	cr_assert_lt(age, 3 * T_SEC, "dropped after %lld ns", (long long)age);
	cr_assert_eq(atomic_load(&layout_attach(hdr, slot)->id), 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	unmap_header(hdr);
	shmring_detach(r);
}

/* The moment between a forking parent's taking an entry for its child and
 * its stamping it (attach.c before_fork: the id first, then since_ns, roles
 * and the census): a sweep then must not take the entry for a long-dead
 * pending one.  Every entry is freed with since_ns 0, so that is what a
 * sweep sees there; it starts the clock instead (reap.c).  Before: it read
 * 0 (or the stamp of the entry's last pending use) as long timed out and
 * reaped the fresh entry, the parent then counted the child's roles into a
 * free entry that no sweep ever takes off the census, and the end of
 * stream never came (stress_procs --kill, once in ~25 000 kills). */
Test(pidreuse, pending_entry_not_yet_stamped_is_not_reaped)
{
	struct shmring *r = t_ring(4096, 0);
	shmring_set_spin(r, 0);
	cr_assert_eq(shmring_declare(r, SHMRING_CONSUMER), 0);
	struct ring_header *hdr = map_header(r);
	int slot = -1;
	for (int i = 0; i < (int)hdr->attach_count && slot < 0; i++) {
		struct attach_entry *e = layout_attach(hdr, i);
		uint64_t expect = 0;
		/* as a parent's attach_entry_take: the id, nothing else yet */
		if (atomic_load(&e->since_ns) == 0 &&
		    atomic_compare_exchange_strong(&e->id, &expect,
		                                   make_id(getpid(), 1) | ATTACH_PENDING_TAG))
			slot = i;
	}
	cr_assert_geq(slot, 0, "no free entry with since_ns 0");
	struct attach_entry *e = layout_attach(hdr, slot);
	int64_t el;
	/* sweeps run while the get sleeps (at most one a 50 ms) */
	cr_assert_eq(timed_get(r, 300 * T_MS, &el), -ETIMEDOUT);
	cr_assert_eq(atomic_load(&e->id), make_id(getpid(), 1) | ATTACH_PENDING_TAG,
	             "a pending entry not stamped yet was reaped");
	cr_assert_neq(atomic_load(&e->since_ns), 0, "the sweep did not start its clock");
	/* the parent goes on: stamp, roles, census (a producer now) */
	atomic_store(&e->since_ns, (uint64_t)t_now_ns());
	atomic_store(&e->roles, SHMRING_PRODUCER);
	atomic_fetch_add(&hdr->census, CENSUS_PRODUCER | (UINT64_C(1) << CENSUS_PGEN_SHIFT));
	atomic_fetch_or(&hdr->census, CENSUS_EVER_PRODUCER);
	cr_assert_eq(t_info(r).producers, 1);
	/* no child ever converts it: dropped after about a second, roles and all */
	cr_assert_eq(timed_get(r, 5 * T_SEC, &el), -EPIPE);
	cr_assert_eq(atomic_load(&e->id), 0);
	cr_assert_eq(atomic_load(&e->since_ns), 0, "an entry freed with a stamp");
	cr_assert_eq(t_info(r).producers, 0);
	unmap_header(hdr);
	shmring_detach(r);
}

static int declare_and_leave(void *arg)
{
	struct shmring *r = arg;
	/* the entry its parent took for it at fork, converted, then freed */
	char b[8];
	(void)shmring_get(r, b, sizeof b, 0);
	shmring_detach(r);
	return 0;
}

/* Every entry is freed with since_ns 0, a forked child's too (whose entry
 * its parent stamped). */
Test(pidreuse, entries_are_freed_unstamped)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_declare(r, SHMRING_CONSUMER), 0);
	struct ring_header *hdr = map_header(r);
	pid_t child = t_fork(declare_and_leave, r);
	cr_assert_eq(t_wait_status(child, 5 * T_SEC), 0);
	int stamped = 0;
	for (int i = 0; i < (int)hdr->attach_count; i++) {
		struct attach_entry *e = layout_attach(hdr, i);
		if (atomic_load(&e->id) == 0 && atomic_load(&e->since_ns) != 0)
			stamped++;
	}
	cr_assert_eq(stamped, 0, "%d free entries still stamped", stamped);
	unmap_header(hdr);
	shmring_detach(r);
}
