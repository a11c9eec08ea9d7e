/*
 * test_attach_trust.c - shmring_attach_fd maps only what its sender cannot
 * shrink under us: a memfd sealed against shrinking and growing, or a file
 * in /dev/shm (a named ring: the trust of shmring_open).  An unsealed memfd
 * or a regular file elsewhere holding a valid ring image is -EPERM.
 */
#include "common.h"

TestSuite(attach_trust, .timeout = T_TIMEOUT, .fini = t_cleanup);

/* A whole valid ring image: the file of a fresh anonymous ring. */
static char *ring_image(size_t *size)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_put(r, "hello", 5, 0), 0);
	struct stat st;
	cr_assert_eq(fstat(shmring_fd(r), &st), 0);
	char *img = malloc((size_t)st.st_size);
	cr_assert_not_null(img);
	cr_assert_eq(pread(shmring_fd(r), img, (size_t)st.st_size, 0), st.st_size);
	shmring_detach(r);
	*size = (size_t)st.st_size;
	return img;
}

static void write_all(int fd, const char *img, size_t size)
{
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	cr_assert_eq(pwrite(fd, img, size, 0), (ssize_t)size);
}

static int memfd_image(const char *img, size_t size, unsigned seals)
{
	int fd = memfd_create("shmring-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	cr_assert_geq(fd, 0, "memfd_create: %s", strerror(errno));
	write_all(fd, img, size);
	if (seals)
		cr_assert_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

static void expect_refused(int fd, const char *what)
{
	struct shmring *r = (struct shmring *)0x1;
	int rc = shmring_attach_fd(&r, fd);
	cr_assert_eq(rc, -EPERM, "attach_fd(%s) = %d (%s), expected -EPERM", what, rc,
	             shmring_strerror(rc));
	cr_assert_neq(fcntl(fd, F_GETFD), -1, "attach_fd closed the caller's fd");
}

Test(attach_trust, unsealed_memfd_is_eperm)
{
	size_t size;
	char *img = ring_image(&size);
	int fd = memfd_image(img, size, 0);
	expect_refused(fd, "unsealed memfd with a valid ring");
	close(fd);
	/* not sealable at all (no MFD_ALLOW_SEALING) */
	fd = memfd_create("shmring-test", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	write_all(fd, img, size);
	expect_refused(fd, "memfd without MFD_ALLOW_SEALING");
	close(fd);
	/* one seal is not enough: growing is as bad (a peer grows then cuts) */
	fd = memfd_image(img, size, F_SEAL_SHRINK);
	expect_refused(fd, "memfd sealed against shrinking only");
	close(fd);
	fd = memfd_image(img, size, F_SEAL_GROW);
	expect_refused(fd, "memfd sealed against growing only");
	close(fd);
	/* the same image, sealed: attaches, and the record is there */
	fd = memfd_image(img, size, F_SEAL_SHRINK | F_SEAL_GROW);
	struct shmring *r = NULL;
	cr_assert_eq(shmring_attach_fd(&r, fd), 0);
	char buf[8];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 5);
	cr_assert(memcmp(buf, "hello", 5) == 0);
	shmring_detach(r);
	close(fd);
	free(img);
}

Test(attach_trust, regular_file_is_eperm)
{
	size_t size;
	char *img = ring_image(&size);
	static const char *const dirs[] = { "/var/tmp", "/tmp", "." };
	int tried = 0;
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/shmring-test-XXXXXX", dirs[i]);
		int fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0)
			continue;
		unlink(path);
		write_all(fd, img, size);
		expect_refused(fd, path);
		close(fd);
		tried++;
	}
	cr_assert_gt(tried, 0, "no directory to make a regular file in");
	free(img);
}

Test(attach_trust, named_ring_fd_is_trusted)
{
	const char *name = t_name("trust");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *a = NULL, *b = NULL;
	cr_assert_eq(shmring_create(&a, name, &cfg), 0);
	/* a descriptor of our own on the file, as a peer would pass it */
	char path[PATH_MAX];
	t_fd_path(shmring_fd(a), path, sizeof path);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(shmring_attach_fd(&b, fd), 0);
	cr_assert_eq(shmring_put(a, "x", 1, 0), 0);
	char c;
	cr_assert_eq(shmring_get(b, &c, 1, 0), 1);
	shmring_detach(b);
	shmring_detach(a);
	close(fd);
	cr_assert_eq(shmring_unlink(name), 0);
}
