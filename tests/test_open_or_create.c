/*
 * test_open_or_create.c - shmring_open_or_create (issue 11): race-free among
 * many concurrent callers (exactly one creates, all share one ring); a blank
 * file left by a dead creator is replaced at once; a live creator's is not;
 * and shmring_create never shows a half-made ring under its name.
 */
#include "common.h"

#include <stdatomic.h>
#include <sys/file.h>

#include "shmring_latch.h"

TestSuite(ooc, .timeout = T_TIMEOUT, .fini = t_cleanup);

#define OOC_PROCS 60

struct ooc_shared {
	struct shmring_latch go;
	_Atomic int ready;
	_Atomic int stop;
	_Atomic int blank_seen;
	_Atomic long opens;
};
static struct ooc_shared *o_sh;
static const char *o_name;

static int o_racer(void *arg)
{
	uint32_t me = (uint32_t)(intptr_t)arg;
	atomic_fetch_add(&o_sh->ready, 1);
	/* asleep on a futex, not spinning: 60 spinners would starve the
	 * machine (and the tests running beside this one) */
	if (shmring_gate_wait(&o_sh->go, 30 * T_SEC) != 0)
		return 98;
	struct shmring_config cfg = { .capacity = 16384, .flags = SHMRING_PRODUCER };
	struct shmring *r;
	int rc = shmring_open_or_create(&r, o_name, &cfg);
	if (rc != 0 && rc != 1)
		return 100 + (rc < 0 ? -rc % 100 : 99);
	if (shmring_put(r, &me, sizeof me, 5 * T_SEC) != 0)
		return 50;
	shmring_detach(r);
	return rc; /* 1: created, 0: opened */
}

Test(ooc, concurrent_callers_one_creates_all_share_it)
{
	o_sh = t_shared(4096);
	o_name = t_name("race");
	cr_assert_eq(shmring_gate_init(&o_sh->go), 0);
	pid_t pids[OOC_PROCS];
	for (int i = 0; i < OOC_PROCS; i++)
		pids[i] = t_fork(o_racer, (void *)(intptr_t)i);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&o_sh->ready) == OOC_PROCS, 20 * T_SEC);
	cr_assert(ok, "children did not start");
	shmring_gate_open(&o_sh->go);
	int created = 0;
	for (int i = 0; i < OOC_PROCS; i++) {
		int st = t_wait_status(pids[i], 20 * T_SEC);
		char buf[96];
		cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) <= 1, "racer %d: %s", i,
		          t_status_str(st, buf, sizeof buf));
		created += WEXITSTATUS(st);
	}
	cr_assert_eq(created, 1, "%d callers created the ring", created);
	/* every racer's record is in the one ring */
	struct shmring *r;
	cr_assert_eq(shmring_open_or_create(&r, o_name, NULL), 0, "it exists now: opened");
	char seen[OOC_PROCS] = { 0 };
	uint32_t who;
	for (int i = 0; i < OOC_PROCS; i++) {
		cr_assert_eq(shmring_get(r, &who, sizeof who, 0), (ssize_t)sizeof who, "record %d", i);
		cr_assert_lt(who, OOC_PROCS);
		cr_assert_eq(seen[who]++, 0, "racer %u twice", who);
	}
	cr_assert_eq(shmring_get(r, &who, sizeof who, 0), -EPIPE, "the producers are gone");
	shmring_detach(r);
	cr_assert_eq(shmring_unlink(o_name), 0);
}

/* A file named like the ring, as a creator that died half way leaves it:
 * the size of a ring, all zeroes (or shorter than a header). */
static void o_make_blank(const char *name, off_t size)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
	cr_assert_eq(ftruncate(fd, size), 0);
	close(fd);
}

Test(ooc, blank_file_of_a_dead_creator_is_replaced_at_once)
{
	off_t sizes[] = { 0, 4096, 69632 + 4096 + 1024 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		const char *name = t_name("blank");
		o_make_blank(name, sizes[i]);
		struct shmring *r;
		struct shmring_config cfg = { .capacity = 4096 };
		int64_t t0 = t_now_ns();
		int rc = shmring_open_or_create(&r, name, &cfg);
		int64_t el = t_now_ns() - t0;
		cr_assert_eq(rc, 1, "size %lld: open_or_create = %d (%s)", (long long)sizes[i], rc,
		             shmring_strerror(rc));
		/* before: a 1 s wait, then -EBADMSG / -EPROTO */
		cr_assert_lt(el, 500 * T_MS, "took %lld ms", (long long)(el / T_MS));
		cr_assert_eq(shmring_put(r, "x", 1, 0), 0);
		struct shmring *r2;
		cr_assert_eq(shmring_open(&r2, name), 0);
		char b[8];
		cr_assert_eq(shmring_get(r2, b, sizeof b, 0), 1);
		shmring_detach(r2);
		shmring_detach(r);
		cr_assert_eq(shmring_unlink(name), 0);
	}
}

Test(ooc, foreign_file_is_left_alone)
{
	const char *name = t_name("foreign");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	char junk[8192];
	memset(junk, 'j', sizeof junk);
	cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	struct shmring *r = NULL;
	int rc = shmring_open_or_create(&r, name, NULL);
	cr_assert(rc == -EPROTO || rc == -EBADMSG, "foreign file: %d", rc);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "the foreign file was removed");
	cr_assert_eq(st.st_size, (off_t)sizeof junk);
	cr_assert_eq(shmring_open_or_create(NULL, name, NULL), -EINVAL);
	struct shmring_config bad = { .flags = 0x80000000u };
	cr_assert_eq(shmring_open_or_create(&r, name, &bad), -EINVAL);
	cr_assert_eq(shmring_open_or_create(&r, "a/b", NULL), -EINVAL);
}

/* A file of a few bytes that are not zero (shorter than a magic): foreign
 * too, refused at once and left alone.  It was counted blank: 2000 rounds,
 * each making and dropping a whole ring, then 0 ("opened") with *ring NULL
 * (a review found it, 2026-12-06). */
Test(ooc, a_few_foreign_bytes_are_eproto)
{
	const char *name = t_name("short");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "abcd", 4), 4);
	close(fd);
	struct shmring *r = (struct shmring *)0x1;
	int64_t t0 = t_now_ns();
	int rc = shmring_open_or_create(&r, name, NULL);
	cr_assert_eq(rc, -EPROTO, "open_or_create of 4 foreign bytes: %d (ring %p)", rc, (void *)r);
	cr_assert_lt(t_now_ns() - t0, 200 * T_MS);
	cr_assert_eq(shmring_open(&r, name), -EPROTO);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "the foreign file was removed");
	cr_assert_eq(st.st_size, 4);
}

/* A ring of another layout version (its ABI word forged, as an older
 * library's ring would read to this one): -EPROTONOSUPPORT at once, and left
 * alone, whole (processes of that version use it); so is a header-less
 * file that starts with the magic and another ABI word (a future smaller
 * header), where a short ring of ours is -EBADMSG. */
Test(ooc, a_ring_of_another_layout_version_is_left_alone)
{
	const char *name = t_name("otherabi");
	struct shmring *r = NULL;
	struct shmring_config cfg = { .capacity = 4096 };
	cr_assert_eq(shmring_create(&r, name, &cfg), 0);
	cr_assert_eq(shmring_put(r, "kept", 4, 0), 0);
	shmring_detach(r);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	uint32_t abi, other = 3;
	cr_assert_eq(pread(fd, &abi, 4, 8), 4);
	cr_assert_eq(pwrite(fd, &other, 4, 8), 4);
	struct stat st0, st;
	cr_assert_eq(fstat(fd, &st0), 0);
	int64_t t0 = t_now_ns();
	r = (struct shmring *)0x1;
	cr_assert_eq(shmring_open_or_create(&r, name, &cfg), -EPROTONOSUPPORT);
	cr_assert_lt(t_now_ns() - t0, 200 * T_MS, "waited");
	cr_assert_eq(stat(path, &st), 0, "the ring was removed");
	cr_assert_eq(st.st_ino, st0.st_ino, "the ring was replaced");
	/* put back, it is whole: nothing was written */
	cr_assert_eq(pwrite(fd, &abi, 4, 8), 4);
	cr_assert_eq(shmring_open(&r, name), 0);
	char b[8];
	cr_assert_eq(shmring_get(r, b, sizeof b, 0), 4);
	shmring_detach(r);
	/* cut to a page: shorter than our header */
	cr_assert_eq(ftruncate(fd, 4096), 0);
	cr_assert_eq(shmring_open(&r, name), -EBADMSG);
	cr_assert_eq(pwrite(fd, &other, 4, 8), 4);
	cr_assert_eq(shmring_open(&r, name), -EPROTONOSUPPORT);
	cr_assert_eq(shmring_open_or_create(&r, name, &cfg), -EPROTONOSUPPORT);
	cr_assert_eq(stat(path, &st), 0, "the short ring was removed");
	close(fd);
	cr_assert_eq(shmring_unlink(name), 0);
}

/* A creator still at work (its flock held) keeps its blank file: the caller
 * waits for it rather than removing it. */
static int o_slow_creator(void *arg)
{
	(void)arg;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/dev/shm/%s", o_name);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) != 0)
		return 10;
	atomic_store(&o_sh->ready, 1);
	t_sleep_ns(300 * T_MS);
	return 0; /* dies: the lock goes with it */
}

Test(ooc, blank_file_of_a_live_creator_is_waited_for)
{
	o_sh = t_shared(4096);
	o_name = t_name("busy");
	o_make_blank(o_name, 4096);
	pid_t pid = t_fork(o_slow_creator, NULL);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&o_sh->ready), 10 * T_SEC);
	cr_assert(ok);
	struct shmring *r;
	int64_t t0 = t_now_ns();
	int rc = shmring_open_or_create(&r, o_name, NULL);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, 1, "%d", rc);
	cr_assert_geq(el, 100 * T_MS, "replaced while its creator held it (%lld ms)",
	              (long long)(el / T_MS));
	t_expect_exit(pid, 0, 10 * T_SEC);
	shmring_detach(r);
	cr_assert_eq(shmring_unlink(o_name), 0);
}

/* While a big ring is being made, its name never leads to a blank file. */
static int o_watcher(void *arg)
{
	(void)arg;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/dev/shm/%s", o_name);
	atomic_store(&o_sh->ready, 1);
	while (!atomic_load(&o_sh->stop)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		uint64_t magic = 0;
		atomic_fetch_add(&o_sh->opens, 1);
		if (pread(fd, &magic, sizeof magic, 0) != (ssize_t)sizeof magic || magic == 0)
			atomic_store(&o_sh->blank_seen, 1);
		close(fd);
	}
	return 0;
}

Test(ooc, create_never_shows_a_half_made_ring)
{
	o_sh = t_shared(4096);
	o_name = t_name("whole");
	pid_t pid = t_fork(o_watcher, NULL);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&o_sh->ready), 10 * T_SEC);
	cr_assert(ok);
	struct shmring *r;
	struct shmring_config cfg = { .capacity = 64u << 20 }; /* fallocate: milliseconds */
	cr_assert_eq(shmring_create(&r, o_name, &cfg), 0);
	/* Until the watcher has opened the made ring a few times (not a fixed
	 * 20 ms: on a loaded CI machine the watcher was descheduled all of it
	 * and the test failed, 1 run in the final CI of 2026-12-05). */
	int seen;
	T_POLL_UNTIL(seen, atomic_load(&o_sh->opens) >= 10, 10 * T_SEC);
	atomic_store(&o_sh->stop, 1);
	t_expect_exit(pid, 0, 10 * T_SEC);
	cr_assert(seen, "the watcher never saw the ring");
	cr_assert_eq(atomic_load(&o_sh->blank_seen), 0, "a half-made ring was visible");
	shmring_detach(r);
	cr_assert_eq(shmring_unlink(o_name), 0);
}
