/*
 * test_stale.c - shmring_unlink_stale and the in-use lock (ring/inuse.h):
 * a ring a process holds open, by any handle but an inspection's, is never
 * removed as stale, whatever its attachment table says; a process that
 * opens a ring by name while a remover looks at it either keeps the ring
 * or finds the name gone, never a handle on a ring nobody else can find;
 * the lock goes with a killed holder.
 *
 * The remover's window is made wide here by holding the exclusive lock
 * ourselves (flock on our own fd of the ring file), as shmring_unlink_stale
 * holds it while it sweeps and reads the ring.
 */
#include <stdatomic.h>
#include <sys/file.h>

#include "common.h"
#include "shmring_inspect.h"

TestSuite(stale, .timeout = T_TIMEOUT, .fini = t_cleanup);

static const char *ring_path(const char *name)
{
	static char path[PATH_MAX];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	return path;
}

static ino_t inode_of(const char *name)
{
	struct stat st;
	return stat(ring_path(name), &st) == 0 ? st.st_ino : 0;
}

static const char *make_ring(const char *tag)
{
	const char *name = t_name(tag);
	struct shmring *r = NULL;
	struct shmring_config cfg = { .capacity = 65536 };
	cr_assert_eq(shmring_create(&r, name, &cfg), 0);
	shmring_detach(r);
	return name;
}

/* A handle with no role (no attachment entry: shmring_open alone) keeps
 * the ring: before the lock, rm --stale removed it (its table was empty). */
Test(stale, a_handle_without_a_role_keeps_the_ring)
{
	const char *name = make_ring("norole");
	struct shmring *r = NULL;
	cr_assert_eq(shmring_open(&r, name), 0);
	cr_assert_eq(t_info(r).producers + t_info(r).consumers, 0, "no role taken");
	cr_assert_eq(shmring_unlink_stale(name, 0), -EBUSY);
	cr_assert_neq(inode_of(name), 0, "removed while held");
	/* the creator's handle holds it too */
	struct shmring *c = NULL;
	const char *made = t_name("creator");
	struct shmring_config cfg = { .capacity = 65536 };
	cr_assert_eq(shmring_create(&c, made, &cfg), 0);
	cr_assert_eq(shmring_unlink_stale(made, 0), -EBUSY);
	shmring_detach(c);
	cr_assert_eq(shmring_unlink_stale(made, 0), 0);
	shmring_detach(r);
	cr_assert_eq(shmring_unlink_stale(name, 0), 0);
	cr_assert_eq(inode_of(name), 0, "not removed once let go");
	cr_assert_eq(shmring_unlink_stale(name, 0), -ENOENT);
}

/* Records waiting: kept unless forced; an inspection's handle does not
 * count; bad flags and not-rings are refused and stay. */
Test(stale, waiting_records_inspection_and_errors)
{
	const char *name = make_ring("waiting");
	struct shmring *r = NULL;
	cr_assert_eq(shmring_open(&r, name), 0);
	cr_assert_eq(shmring_put(r, "left", 4, 0), 0);
	shmring_detach(r);
	cr_assert_eq(shmring_unlink_stale(name, 0), -ENOTEMPTY);
	cr_assert_eq(shmring_unlink_stale(name, 0x80), -EINVAL);
	struct shmring *look = NULL;
	cr_assert_eq(shmring_inspect_open(&look, name), 0);
	cr_assert_eq(shmring_unlink_stale(name, SHMRING_UNLINK_FORCE), 0,
	             "an inspection's handle kept the ring");
	cr_assert_eq(inode_of(name), 0);
	shmring_detach(look);

	const char *foreign = t_name("foreign");
	int fd = open(ring_path(foreign), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "not a ring", 10), 10);
	close(fd);
	cr_assert_eq(shmring_unlink_stale(foreign, SHMRING_UNLINK_FORCE), -EPROTO);
	cr_assert_neq(inode_of(foreign), 0);
	cr_assert_eq(shmring_unlink_any(foreign), 0);
}

/* A holder killed lets go of the lock with its last fd, and the sweep frees
 * its entry: the ring is removable at once, no waiting for a timeout. */
static int hold_forever(void *arg)
{
	struct shmring *r = NULL;
	if (shmring_open(&r, arg) != 0)
		return 1;
	if (shmring_declare(r, SHMRING_CONSUMER) != 0)
		return 2;
	for (;;)
		pause();
}

Test(stale, a_killed_holder_lets_go)
{
	const char *name = make_ring("killed");
	pid_t pid = t_fork(hold_forever, (void *)name);
	/* wait for its attachment */
	struct shmring *look = NULL;
	cr_assert_eq(shmring_inspect_open(&look, name), 0);
	int64_t until = t_now_ns() + 10 * T_SEC;
	while (shmring_attachments(look, NULL, 0) == 0 && t_now_ns() < until)
		t_sleep_ns(T_MS);
	cr_assert_eq(shmring_attachments(look, NULL, 0), 1, "the holder never attached");
	shmring_detach(look);
	cr_assert_eq(shmring_unlink_stale(name, 0), -EBUSY);
	t_kill_and_reap(pid);
	cr_assert_eq(shmring_unlink_stale(name, 0), 0, "a dead holder kept the ring");
	cr_assert_eq(inode_of(name), 0);
}

/* The race itself.  We hold the remover's lock; a child opens the ring by
 * name (shmring_open, then shmring_open_or_create) and must wait for it;
 * we remove the name and let go: the child's open finds the name gone
 * (-ENOENT), and open_or_create makes a new ring there.  Before the lock,
 * the open returned at once with a handle on the ring about to vanish. */
struct race {
	const char *name;
	int         rc;       /* the open's result */
	ino_t       ino;      /* the file of its handle */
	int64_t     took_ns;
	int         lock;     /* the parent's fd holding the remover's lock */
	_Atomic int opening;  /* the child is about to open */
};

static int open_in_child(void *arg)
{
	struct race *x = arg;
	close(x->lock); /* inherited: the lock would stay with our copy */
	struct shmring *r = NULL;
	atomic_store(&x->opening, 1);
	int64_t t0 = t_now_ns();
	x->rc = shmring_open(&r, x->name);
	x->took_ns = t_now_ns() - t0;
	if (x->rc == 0) {
		struct stat st;
		fstat(shmring_fd(r), &st);
		x->ino = st.st_ino;
		shmring_detach(r);
	}
	return 0;
}

static int open_or_create_in_child(void *arg)
{
	struct race *x = arg;
	close(x->lock);
	struct shmring *r = NULL;
	struct shmring_config cfg = { .capacity = 65536 };
	atomic_store(&x->opening, 1);
	x->rc = shmring_open_or_create(&r, x->name, &cfg);
	if (x->rc >= 0) {
		struct stat st;
		fstat(shmring_fd(r), &st);
		x->ino = st.st_ino;
		shmring_detach(r);
	}
	return 0;
}

static void race(int (*opener)(void *), struct race *x, bool remove)
{
	int lock = open(ring_path(x->name), O_RDONLY | O_CLOEXEC);
	cr_assert_geq(lock, 0);
	cr_assert_eq(flock(lock, LOCK_EX | LOCK_NB), 0);
	x->lock = lock;
	pid_t pid = t_fork(opener, x);
	int64_t until = t_now_ns() + 10 * T_SEC;
	while (!atomic_load(&x->opening) && t_now_ns() < until)
		t_sleep_ns(T_MS / 10);
	t_sleep_ns(100 * T_MS); /* the child is in its open by now, waiting */
	if (remove)
		cr_assert_eq(unlink(ring_path(x->name)), 0);
	close(lock);
	t_expect_exit(pid, 0, 10 * T_SEC);
}

Test(stale, an_open_during_a_removal_finds_the_name_gone)
{
	struct race *x = t_shared(sizeof *x);
	x->name = make_ring("race");
	ino_t old = inode_of(x->name);
	race(open_in_child, x, true);
	cr_assert_eq(x->rc, -ENOENT, "shmring_open during a removal: %d (%s)%s", x->rc,
	             shmring_strerror(x->rc),
	             x->rc == 0 && x->ino == old ? ": a handle on the removed ring" : "");
	cr_assert_geq(x->took_ns, 50 * T_MS, "the open did not wait for the remover");

	memset(x, 0, sizeof *x);
	x->name = make_ring("race2");
	old = inode_of(x->name);
	race(open_or_create_in_child, x, true);
	cr_assert_eq(x->rc, 1, "open_or_create during a removal: %d (%s)", x->rc,
	             shmring_strerror(x->rc));
	cr_assert_neq(x->ino, old, "open_or_create kept the removed ring");
	cr_assert_eq(x->ino, inode_of(x->name), "its ring is not the one at the name");
}

/* The remover lets go without removing (the ring was in use after all):
 * the open goes on, on the same ring. */
Test(stale, an_open_during_a_kept_check_gets_the_ring)
{
	struct race *x = t_shared(sizeof *x);
	x->name = make_ring("kept");
	ino_t old = inode_of(x->name);
	race(open_in_child, x, false);
	cr_assert_eq(x->rc, 0, "shmring_open after the check: %d (%s)", x->rc,
	             shmring_strerror(x->rc));
	cr_assert_eq(x->ino, old);
}

/* A lock held too long (a remover stopped, or anyone who may read the file
 * and takes it to keep openers out): the open waits a second, then attaches
 * without it, never refused (docs/threat-model.md). */
Test(stale, an_open_outlasts_a_lock_held_too_long)
{
	const char *name = make_ring("squat");
	int lock = open(ring_path(name), O_RDONLY | O_CLOEXEC); /* read access is enough */
	cr_assert_geq(lock, 0);
	cr_assert_eq(flock(lock, LOCK_EX | LOCK_NB), 0);
	struct shmring *r = NULL;
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_open(&r, name), 0, "an open refused while the lock was held");
	int64_t took = t_now_ns() - t0;
	cr_assert(took >= 900 * T_MS && took < 5 * T_SEC, "waited %lld ms for the lock",
	          (long long)(took / T_MS));
	cr_assert_eq(shmring_put(r, "ok", 2, 0), 0);
	shmring_detach(r);
	close(lock);
}

/* shmring_unlink_stale itself against openers, many rounds: a child opens
 * the ring (open_or_create, so that a removed name is made again), checks
 * that the name leads to its handle's file, holds it a moment, checks
 * again, detaches; the parent calls shmring_unlink_stale without pause.
 * A ring removed while the child held it, or a handle on a removed ring,
 * is exit 1.  Both sides must have had their way a few times. */
struct churn {
	const char *name;
	_Atomic int stop;
	_Atomic uint64_t opens, lost;
};

static bool leads_to(const char *name, struct shmring *r)
{
	struct stat a, b;
	return stat(ring_path(name), &a) == 0 && fstat(shmring_fd(r), &b) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static int churn_opener(void *arg)
{
	struct churn *c = arg;
	struct shmring_config cfg = { .capacity = 4096 };
	while (!atomic_load(&c->stop)) {
		struct shmring *r = NULL;
		int rc = shmring_open_or_create(&r, c->name, &cfg);
		if (rc < 0)
			return 2;
		bool ok = leads_to(c->name, r);
		for (volatile int i = 0; i < 2000; i++)
			;
		ok = ok && leads_to(c->name, r);
		shmring_detach(r);
		atomic_fetch_add(&c->opens, 1);
		if (!ok) {
			atomic_fetch_add(&c->lost, 1);
			return 1;
		}
	}
	return 0;
}

Test(stale, unlink_stale_never_removes_a_ring_being_opened)
{
	struct churn *c = t_shared(sizeof *c);
	c->name = t_name("churn");
	pid_t pid = t_fork(churn_opener, c);
	uint64_t removed = 0, busy = 0;
	int64_t end = t_now_ns() + 1500 * T_MS;
	while (t_now_ns() < end && !atomic_load(&c->lost)) {
		int rc = shmring_unlink_stale(c->name, 0);
		cr_assert(rc == 0 || rc == -EBUSY || rc == -ENOENT, "unlink_stale: %d (%s)", rc,
		          shmring_strerror(rc));
		removed += rc == 0;
		busy += rc == -EBUSY;
	}
	atomic_store(&c->stop, 1);
	t_expect_exit(pid, 0, 10 * T_SEC);
	cr_assert_gt(removed, 3, "removed %llu times in %llu opens (busy %llu)",
	             (unsigned long long)removed, (unsigned long long)c->opens,
	             (unsigned long long)busy);
	cr_assert_gt(busy, 3, "found in use only %llu times", (unsigned long long)busy);
	shmring_unlink(c->name);
}

/* A ring of another layout version: its users cannot be seen from here,
 * so it is kept (-EPROTONOSUPPORT), whole; with its ABI word put back, it
 * is removable as any. */
Test(stale, a_ring_of_another_layout_version_is_kept)
{
	const char *name = make_ring("otherabi");
	int fd = open(ring_path(name), O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	uint32_t abi, other = 3;
	cr_assert_eq(pread(fd, &abi, 4, 8), 4);
	cr_assert_eq(pwrite(fd, &other, 4, 8), 4);
	ino_t ino = inode_of(name);
	cr_assert_eq(shmring_unlink_stale(name, SHMRING_UNLINK_FORCE), -EPROTONOSUPPORT);
	cr_assert_eq(inode_of(name), ino, "removed or replaced");
	cr_assert_eq(pwrite(fd, &abi, 4, 8), 4);
	close(fd);
	cr_assert_eq(shmring_unlink_stale(name, 0), 0);
	cr_assert_eq(inode_of(name), 0);
}
