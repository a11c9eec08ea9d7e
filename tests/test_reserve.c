/*
 * test_reserve.c - a ring's storage is allocated when it is made: on a small
 * tmpfs mounted on /dev/shm (in a private mount namespace), a ring that does
 * not fit is -ENOSPC at create and leaves no file, and a ring that fit
 * survives another file filling the tmpfs (no SIGBUS at any put or get).
 */
#include "common.h"

#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>

TestSuite(reserve, .timeout = T_TIMEOUT, .fini = t_cleanup);

#define RS_TMPFS_SIZE "8m"
#define RS_SKIP 77     /* child: mount namespaces not available here */

/* Child: a private mount namespace with an 8 MiB tmpfs on /dev/shm. */
static int rs_private_shm(void)
{
	if (unshare(CLONE_NEWNS) < 0)
		return RS_SKIP;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return RS_SKIP;
	if (mount("shmring-test", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
	          "size=" RS_TMPFS_SIZE ",mode=1777") < 0)
		return RS_SKIP;
	return 0;
}

static int rs_files_in_shm(void)
{
	DIR *d = opendir("/dev/shm");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Fill the tmpfs with a file of its own until write says ENOSPC. */
static int rs_fill_shm(void)
{
	int fd = open("/dev/shm/filler", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	static char block[1 << 16];
	memset(block, 0x5a, sizeof block);
	for (;;) {
		ssize_t n = write(fd, block, sizeof block);
		if (n < 0 && errno == ENOSPC)
			break;
		if (n <= 0) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

static int rs_too_big_child(void *arg)
{
	(void)arg;
	int rc = rs_private_shm();
	if (rc)
		return rc;
	/* 16 MiB of storage (+ 4 MiB of metadata) on an 8 MiB tmpfs */
	struct shmring_config cfg = { .capacity = 16u << 20 };
	struct shmring *r = NULL;
	if (shmring_create(&r, "rs-too-big", &cfg) != -ENOSPC)
		return 10;
	if (rs_files_in_shm() != 0)
		return 11; /* the file was left behind */
	/* named just under the limit: 4 MiB + 1 MiB metadata + header fits */
	cfg.capacity = 4u << 20;
	if (shmring_create(&r, "rs-fits", &cfg) != 0)
		return 12;
	/* a second one no longer fits, and leaves nothing either */
	struct shmring *r2 = NULL;
	if (shmring_create(&r2, "rs-second", &cfg) != -ENOSPC)
		return 13;
	if (rs_files_in_shm() != 1)
		return 14;
	shmring_detach(r);
	return shmring_unlink("rs-fits") == 0 ? 0 : 15;
}

Test(reserve, create_past_tmpfs_size_is_enospc_and_leaves_no_file)
{
	pid_t pid = t_fork(rs_too_big_child, NULL);
	int st = t_wait_status(pid, 20 * T_SEC);
	if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == RS_SKIP)
		cr_skip_test("no private mount namespace with a tmpfs here (needs root): %s",
		             "unshare/mount refused");
	char buf[96];
	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s",
	          t_status_str(st, buf, sizeof buf));
}

/* A ring that fit, then the tmpfs filled by someone else, then puts and gets
 * over the whole ring, several times round: every page is touched. */
static int rs_fill_after_create_child(void *arg)
{
	(void)arg;
	int rc = rs_private_shm();
	if (rc)
		return rc;
	struct shmring_config cfg = { .capacity = 4u << 20, .max_record = 8192 };
	struct shmring *r = NULL;
	if (shmring_create(&r, "rs-live", &cfg) != 0)
		return 10;
	if (rs_fill_shm() != 0)
		return 11;
	static char rec[4000], got[8192];
	for (uint64_t i = 0; i < 3 * (4u << 20) / sizeof rec; i++) {
		t_fill(rec, sizeof rec, i);
		if (shmring_put(r, rec, sizeof rec, 0) != 0)
			return 12;
		if (shmring_get(r, got, sizeof got, 0) != (ssize_t)sizeof rec)
			return 13;
		if (!t_check(got, sizeof rec, i))
			return 14;
	}
	/* a second handle maps the ring again: still nothing to allocate */
	struct shmring *r2 = NULL;
	if (shmring_open(&r2, "rs-live") != 0)
		return 15;
	if (shmring_prefault(r2) != 0)
		return 16;
	/* fill the ring itself completely, then drain it */
	size_t n = 0;
	while (shmring_put(r2, rec, sizeof rec, 0) == 0)
		n++;
	if (n < (4u << 20) / 4096 / 2)
		return 17;
	for (size_t i = 0; i < n; i++)
		if (shmring_get(r, got, sizeof got, 0) != (ssize_t)sizeof rec)
			return 18;
	shmring_detach(r2);
	shmring_detach(r);
	return 0;
}

Test(reserve, filling_tmpfs_after_create_never_raises_sigbus)
{
	pid_t pid = t_fork(rs_fill_after_create_child, NULL);
	int st = t_wait_status(pid, 25 * T_SEC);
	if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == RS_SKIP)
		cr_skip_test("no private mount namespace with a tmpfs here (needs root): %s",
		             "unshare/mount refused");
	char buf[96];
	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s",
	          t_status_str(st, buf, sizeof buf));
}

/* SHMRING_NO_RESERVE: the file stays sparse (nothing allocated by create). */
Test(reserve, no_reserve_leaves_the_file_sparse)
{
	const char *name = t_name("sparse");
	struct shmring_config cfg = { .capacity = 1u << 20, .flags = SHMRING_NO_RESERVE };
	struct shmring *r = NULL;
	cr_assert_eq(shmring_create(&r, name, &cfg), 0);
	struct stat st;
	cr_assert_eq(fstat(shmring_fd(r), &st), 0);
	cr_assert_lt((long long)st.st_blocks * 512, 256 * 1024,
	             "NO_RESERVE ring has %lld bytes allocated", (long long)st.st_blocks * 512);
	shmring_detach(r);
	cfg.flags = 0;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	cr_assert_eq(fstat(shmring_fd(r), &st), 0);
	cr_assert_geq((long long)st.st_blocks * 512, (long long)st.st_size,
	              "reserved ring: %lld bytes allocated of %lld",
	              (long long)st.st_blocks * 512, (long long)st.st_size);
	shmring_detach(r);
	cr_assert_eq(shmring_unlink(name), 0);
}
