/*
 * test_unlink.c - shmring_unlink removes only rings (-EPROTO for anything
 * else in /dev/shm, which stays); shmring_unlink_any removes any file.
 * Foreign files are made through /dev/shm/NAME directly.
 */
#include "common.h"

#include <sys/socket.h>

TestSuite(unlink, .timeout = T_TIMEOUT, .fini = t_cleanup);

static void shm_path(const char *name, char *out, size_t n)
{
	snprintf(out, n, "/dev/shm/%s", name);
}

/* A file of len bytes of `contents` (NULL: zeroes) at /dev/shm/name. */
static void foreign_file(const char *name, const void *contents, size_t len)
{
	char path[PATH_MAX];
	shm_path(name, path, sizeof path);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
	cr_assert_eq(ftruncate(fd, (off_t)len), 0);
	if (contents && len)
		cr_assert_eq(pwrite(fd, contents, len, 0), (ssize_t)len);
	close(fd);
}

static bool exists(const char *name)
{
	char path[PATH_MAX];
	shm_path(name, path, sizeof path);
	struct stat st;
	return lstat(path, &st) == 0;
}

static void expect_refused_then_forced(const char *name, const char *what)
{
	int rc = shmring_unlink(name);
	cr_assert_eq(rc, -EPROTO, "unlink(%s) = %d (%s), expected -EPROTO", what, rc,
	             shmring_strerror(rc));
	cr_assert(exists(name), "unlink(%s) removed it", what);
	rc = shmring_unlink_any(name);
	cr_assert_eq(rc, 0, "unlink_any(%s) = %d (%s)", what, rc, shmring_strerror(rc));
	cr_assert(!exists(name), "unlink_any(%s) left it", what);
	cr_assert_eq(shmring_unlink_any(name), -ENOENT);
}

Test(unlink, empty_file_is_refused)
{
	const char *name = t_name("empty");
	foreign_file(name, NULL, 0);
	expect_refused_then_forced(name, "an empty file");
}

Test(unlink, garbage_file_is_refused)
{
	static char junk[70000];
	uint64_t s = 7;
	for (size_t i = 0; i + 8 <= sizeof junk; i += 8) {
		uint64_t v = t_rand(&s);
		memcpy(junk + i, &v, 8);
	}
	const char *name = t_name("garbage");
	foreign_file(name, junk, sizeof junk);
	expect_refused_then_forced(name, "70 KB of garbage");
	/* shorter than the magic, and zeroes (a ring whose creator died
	 * before its header: only unlink_any removes it) */
	name = t_name("short");
	foreign_file(name, "shmr", 4);
	expect_refused_then_forced(name, "a 4-byte file");
	name = t_name("zeroes");
	foreign_file(name, NULL, 1 << 20);
	expect_refused_then_forced(name, "1 MiB of zeroes");
}

/* Neither waits on a FIFO nor follows a symbolic link. */
Test(unlink, fifo_and_symlink_are_refused_without_waiting)
{
	const char *name = t_name("fifo");
	char path[PATH_MAX];
	shm_path(name, path, sizeof path);
	cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
	int64_t t0 = t_now_ns();
	expect_refused_then_forced(name, "a FIFO");
	cr_assert_lt(t_now_ns() - t0, 5 * T_SEC);

	/* a link to a real ring: the link is not a ring */
	const char *ring_name = t_name("target");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *r = NULL;
	cr_assert_eq(shmring_create(&r, ring_name, &cfg), 0);
	char target[PATH_MAX];
	shm_path(ring_name, target, sizeof target);
	name = t_name("link");
	shm_path(name, path, sizeof path);
	cr_assert_eq(symlink(target, path), 0, "symlink: %s", strerror(errno));
	expect_refused_then_forced(name, "a symbolic link to a ring");
	cr_assert(exists(ring_name), "the link's target went too");
	shmring_detach(r);
	cr_assert_eq(shmring_unlink(ring_name), 0);
}

Test(unlink, rings_are_removed_even_corrupt)
{
	struct shmring_config cfg = { .capacity = 4096 };
	const char *name = t_name("ring");
	struct shmring *r = NULL;
	cr_assert_eq(shmring_create(&r, name, &cfg), 0);
	cr_assert_eq(shmring_unlink(name), 0);
	cr_assert(!exists(name));
	cr_assert_eq(shmring_unlink(name), -ENOENT);
	/* still attached: it works */
	cr_assert_eq(shmring_put(r, "x", 1, 0), 0);
	shmring_detach(r);

	/* a ring cut to its first page: no longer opens, still a ring */
	name = t_name("cut");
	cr_assert_eq(shmring_create(&r, name, &cfg), 0);
	shmring_detach(r);
	char path[PATH_MAX];
	shm_path(name, path, sizeof path);
	cr_assert_eq(truncate(path, 4096), 0);
	cr_assert_eq(shmring_open(&r, name), -EBADMSG);
	cr_assert_eq(shmring_unlink(name), 0);
	cr_assert(!exists(name));

	/* unlink_any removes a ring too */
	name = t_name("any");
	cr_assert_eq(shmring_create(&r, name, &cfg), 0);
	cr_assert_eq(shmring_unlink_any(name), 0);
	cr_assert(!exists(name));
	shmring_detach(r);

	/* bad names are -EINVAL for both */
	cr_assert_eq(shmring_unlink_any("a/b"), -EINVAL);
	cr_assert_eq(shmring_unlink_any(NULL), -EINVAL);
	cr_assert_eq(shmring_unlink_any(".."), -EINVAL);
}
