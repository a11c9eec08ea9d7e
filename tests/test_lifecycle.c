/*
 * test_lifecycle.c - create/open/attach_fd/fd/detach/unlink, configuration
 * defaults and validation, name validation, modes, memfd seals, fork.
 */
#include "common.h"

#include <grp.h>
#include <sys/socket.h>

#ifndef F_GET_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif

TestSuite(lifecycle, .timeout = T_TIMEOUT, .fini = t_cleanup);

/* ------------------------------------------------------------ config */

Test(lifecycle, zeroed_config_gives_documented_defaults)
{
	struct shmring_config cfg = { 0 };
	struct shmring *r = NULL;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.capacity, SHMRING_DEFAULT_CAPACITY);
	cr_assert_eq(in.max_record, SHMRING_DEFAULT_CAPACITY / SHMRING_DEFAULT_MAX_RECORD_DIVISOR);
	cr_assert_eq(in.records, 0);
	cr_assert_eq(in.bytes, 0);
	cr_assert_eq(in.used, 0);
	cr_assert_eq(in.closed, 0);
	cr_assert_eq(in.named, 0);
	cr_assert_eq(in.futex_waits, 0);
	cr_assert_eq(in.futex_wakes, 0);
	shmring_detach(r);
}

struct cap_case {
	size_t asked, cap;
};

Test(lifecycle, capacity_rounds_up_to_power_of_two_within_bounds)
{
	static const struct cap_case cases[] = {
		{ 1, SHMRING_MIN_CAPACITY },
		{ 64, SHMRING_MIN_CAPACITY },
		{ 4095, 4096 },
		{ 4096, 4096 },
		{ 4097, 8192 },
		{ 5000, 8192 },
		{ 65536, 65536 },
		{ 65537, 131072 },
		{ (1u << 20) - 1, 1u << 20 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct shmring *r = t_ring(cases[i].asked, 0);
		struct shmring_info in = t_info(r);
		cr_assert_eq(in.capacity, cases[i].cap, "capacity %zu -> %zu, expected %zu",
		             cases[i].asked, in.capacity, cases[i].cap);
		cr_assert_eq(in.max_record, cases[i].cap / SHMRING_DEFAULT_MAX_RECORD_DIVISOR,
		             "default max_record for capacity %zu: %zu", cases[i].cap, in.max_record);
		shmring_detach(r);
	}
}

Test(lifecycle, capacity_above_max_is_einval)
{
	struct shmring_config cfg = { .capacity = SHMRING_MAX_CAPACITY + 1 };
	struct shmring *r = NULL;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg.capacity = SIZE_MAX;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg.capacity = SHMRING_MAX_CAPACITY * 2;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
}

Test(lifecycle, max_record_bounds)
{
	struct shmring *r;
	/* equal to capacity: allowed */
	r = t_ring(8192, 8192);
	cr_assert_eq(t_info(r).max_record, 8192);
	shmring_detach(r);
	/* 1 byte: allowed */
	r = t_ring(4096, 1);
	cr_assert_eq(t_info(r).max_record, 1);
	shmring_detach(r);
	/* not exceeding the *rounded* capacity: 5000 -> 8192, so 6000 is fine */
	r = t_ring(5000, 6000);
	cr_assert_eq(t_info(r).capacity, 8192);
	cr_assert_eq(t_info(r).max_record, 6000);
	shmring_detach(r);
	/* over the rounded capacity: -EINVAL */
	struct shmring_config cfg = { .capacity = 8192, .max_record = 8193 };
	r = NULL;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg = (struct shmring_config){ .capacity = 0, .max_record = SHMRING_DEFAULT_CAPACITY + 1 };
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg = (struct shmring_config){ .capacity = 5000, .max_record = 8193 };
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
}

Test(lifecycle, unknown_flags_are_einval)
{
	struct shmring_config cfg = { .capacity = 4096, .flags = 0x4 };
	struct shmring *r = NULL;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg.flags = 0x80000000u;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	/* and nothing was left behind under the name */
	const char *name = t_name("flags");
	cr_assert_eq(shmring_create(&r, name, &cfg), -EINVAL);
	cr_assert_eq(shmring_open(&r, name), -ENOENT);
}

Test(lifecycle, null_arguments_are_einval)
{
	struct shmring_config cfg = { .capacity = 4096 };
	cr_assert_eq(shmring_create(NULL, NULL, &cfg), -EINVAL);
	cr_assert_eq(shmring_open(NULL, "x"), -EINVAL);
	struct shmring *r = NULL;
	cr_assert_eq(shmring_open(&r, NULL), -EINVAL);
	cr_assert_eq(shmring_unlink(NULL), -EINVAL);
	cr_assert_eq(shmring_attach_fd(NULL, 0), -EINVAL);
	cr_assert_eq(shmring_info(NULL, &(struct shmring_info){ 0 }), -EINVAL);
	r = t_ring(4096, 0);
	cr_assert_eq(shmring_info(r, NULL), -EINVAL);
	shmring_detach(r);
	shmring_detach(NULL); /* allowed, no crash */
}

/* ------------------------------------------------------------ names */

static void fill_chars(char *buf, size_t n, char c)
{
	memset(buf, c, n);
	buf[n] = '\0';
}

Test(lifecycle, invalid_names_are_einval)
{
	static const char *const bad[] = {
		"", "/", ".", "..", "/.", "/..", "a/b", "//a", "/a/", "a/", "a b", "a\nb",
		"a*b", "a:b", "ä", "a\\b", "%s", "~x",
	};
	struct shmring_config cfg = { .capacity = 4096 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct shmring *r = NULL;
		int rc = shmring_create(&r, bad[i], &cfg);
		cr_assert_eq(rc, -EINVAL, "create(\"%s\") = %d, expected -EINVAL", bad[i], rc);
		rc = shmring_open(&r, bad[i]);
		cr_assert_eq(rc, -EINVAL, "open(\"%s\") = %d, expected -EINVAL", bad[i], rc);
		rc = shmring_unlink(bad[i]);
		cr_assert_eq(rc, -EINVAL, "unlink(\"%s\") = %d, expected -EINVAL", bad[i], rc);
	}
}

Test(lifecycle, name_length_limit)
{
	char name[SHMRING_NAME_MAX + 8];
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *r = NULL;

	/* SHMRING_NAME_MAX + 1 bytes: too long */
	fill_chars(name, SHMRING_NAME_MAX + 1, 'z');
	cr_assert_eq(shmring_create(&r, name, &cfg), -ENAMETOOLONG);
	cr_assert_eq(shmring_open(&r, name), -ENAMETOOLONG);
	cr_assert_eq(shmring_unlink(name), -ENAMETOOLONG);

	/* exactly SHMRING_NAME_MAX bytes: fine.  Make it unique. */
	fill_chars(name, SHMRING_NAME_MAX, 'q');
	int k = snprintf(name, sizeof name, "shmring-test-%ld-long-", (long)getpid());
	name[k] = 'q';
	cr_assert_eq(strlen(name), SHMRING_NAME_MAX);
	(void)shmring_unlink(name);
	int rc = shmring_create(&r, name, &cfg);
	cr_assert_eq(rc, 0, "create(%zu-byte name) = %d", strlen(name), rc);
	struct shmring *r2 = NULL;
	cr_assert_eq(shmring_open(&r2, name), 0);
	cr_assert_eq(shmring_unlink(name), 0);
	shmring_detach(r2);
	shmring_detach(r);
}

Test(lifecycle, valid_unusual_names)
{
	char base[64];
	snprintf(base, sizeof base, "shmring-test-%ld", (long)getpid());
	const char *suffixes[] = { "...", "-", "_", "A.b-C_9", "x" };
	struct shmring_config cfg = { .capacity = 4096 };
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		char name[128];
		snprintf(name, sizeof name, "%s%s", base, suffixes[i]);
		struct shmring *r = NULL;
		int rc = shmring_create(&r, name, &cfg);
		cr_assert_eq(rc, 0, "create(\"%s\") = %d", name, rc);
		cr_assert_eq(shmring_unlink(name), 0);
		shmring_detach(r);
	}
	/* a name made only of allowed punctuation, not "." or ".." */
	struct shmring *r = NULL;
	char dots[64];
	snprintf(dots, sizeof dots, "...shmring-test-%ld", (long)getpid());
	cr_assert_eq(shmring_create(&r, dots, &cfg), 0);
	cr_assert_eq(shmring_unlink(dots), 0);
	shmring_detach(r);
}

Test(lifecycle, leading_slash_names_the_same_ring)
{
	const char *name = t_name("slash");
	char slashed[SHMRING_NAME_MAX + 2];
	snprintf(slashed, sizeof slashed, "/%s", name);
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *a = NULL, *b = NULL;
	cr_assert_eq(shmring_create(&a, slashed, &cfg), 0);
	cr_assert_eq(shmring_create(&b, name, &cfg), -EEXIST);
	cr_assert_eq(shmring_open(&b, name), 0);
	cr_assert_eq(shmring_put(a, "hi", 2, 0), 0);
	char buf[8];
	cr_assert_eq(shmring_get(b, buf, sizeof buf, 0), 2);
	cr_assert_eq(memcmp(buf, "hi", 2), 0);
	cr_assert_eq(shmring_unlink(name), 0);
	cr_assert_eq(shmring_unlink(slashed), -ENOENT);
	shmring_detach(a);
	shmring_detach(b);
}

/* ------------------------------------------------------------ named rings */

Test(lifecycle, create_existing_name_is_eexist)
{
	const char *name = t_name("exist");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *a = NULL, *b = NULL;
	cr_assert_eq(shmring_create(&a, name, &cfg), 0);
	cr_assert_eq(shmring_create(&b, name, &cfg), -EEXIST);
	/* the existing ring was not disturbed */
	cr_assert_eq(shmring_put(a, "x", 1, 0), 0);
	cr_assert_eq(t_info(a).records, 1);
	cr_assert_eq(shmring_unlink(name), 0);
	/* after unlink the name is free again, and it is a fresh ring */
	cr_assert_eq(shmring_create(&b, name, &cfg), 0);
	cr_assert_eq(t_info(b).records, 0);
	cr_assert_eq(t_info(a).records, 1);
	cr_assert_eq(shmring_unlink(name), 0);
	shmring_detach(a);
	shmring_detach(b);
}

Test(lifecycle, open_or_unlink_missing_is_enoent)
{
	const char *name = t_name("missing");
	struct shmring *r = (struct shmring *)0x1;
	cr_assert_eq(shmring_open(&r, name), -ENOENT);
	cr_assert_eq(shmring_unlink(name), -ENOENT);
}

Test(lifecycle, open_sees_same_ring_and_geometry)
{
	const char *name = t_name("geom");
	struct shmring_config cfg = { .capacity = 16384, .max_record = 1000 };
	struct shmring *a = NULL, *b = NULL;
	cr_assert_eq(shmring_create(&a, name, &cfg), 0);
	cr_assert_eq(shmring_open(&b, name), 0);
	struct shmring_info ia = t_info(a), ib = t_info(b);
	cr_assert_eq(ia.named, 1);
	cr_assert_eq(ib.named, 1);
	cr_assert_eq(ib.capacity, 16384);
	cr_assert_eq(ib.max_record, 1000);
	/* b enforces the creator's max_record */
	char big[1001] = { 0 };
	cr_assert_eq(shmring_put(b, big, 1001, 0), -EMSGSIZE);
	cr_assert_eq(shmring_put(b, big, 1000, 0), 0);
	char buf[1000];
	cr_assert_eq(shmring_get(a, buf, sizeof buf, 0), 1000);
	cr_assert_eq(shmring_unlink(name), 0);
	shmring_detach(a);
	shmring_detach(b);
}

Test(lifecycle, unlink_keeps_attached_handles_working)
{
	const char *name = t_name("unl");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *a = NULL, *b = NULL;
	cr_assert_eq(shmring_create(&a, name, &cfg), 0);
	cr_assert_eq(shmring_open(&b, name), 0);
	cr_assert_eq(shmring_unlink(name), 0);
	struct shmring *c = NULL;
	cr_assert_eq(shmring_open(&c, name), -ENOENT);
	cr_assert_eq(shmring_unlink(name), -ENOENT);
	cr_assert_eq(shmring_put(a, "abc", 3, 0), 0);
	char buf[8];
	cr_assert_eq(shmring_get(b, buf, sizeof buf, 0), 3);
	cr_assert_eq(memcmp(buf, "abc", 3), 0);
	shmring_detach(a);
	shmring_detach(b);
}

Test(lifecycle, named_ring_default_mode_is_0600)
{
	mode_t old = umask(0);
	const char *name = t_name("mode0");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *r = NULL;
	int rc = shmring_create(&r, name, &cfg);
	umask(old);
	cr_assert_eq(rc, 0);
	struct stat st;
	cr_assert_eq(fstat(shmring_fd(r), &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(shmring_unlink(name), 0);
	shmring_detach(r);
}

Test(lifecycle, named_ring_mode_is_honoured)
{
	static const unsigned modes[] = { 0640, 0644, 0604, 0400, 0600 };
	mode_t old = umask(022);
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		const char *name = t_name("mode");
		struct shmring_config cfg = { .capacity = 4096, .mode = modes[i] };
		struct shmring *r = NULL;
		int rc = shmring_create(&r, name, &cfg);
		cr_assert_eq(rc, 0, "create mode %o = %d", modes[i], rc);
		struct stat st;
		cr_assert_eq(fstat(shmring_fd(r), &st), 0);
		cr_assert_eq(st.st_mode & 07777, modes[i], "asked %o got %o", modes[i],
		             st.st_mode & 07777);
		/* the name really refers to this file */
		char path[PATH_MAX];
		t_fd_path(shmring_fd(r), path, sizeof path);
		struct stat st2;
		cr_assert_eq(stat(path, &st2), 0, "stat %s: %s", path, strerror(errno));
		cr_assert_eq(st2.st_ino, st.st_ino);
		cr_assert_eq(shmring_unlink(name), 0);
		cr_assert_neq(stat(path, &st2), 0, "%s still exists after unlink", path);
		shmring_detach(r);
	}
	umask(old);
}

/* The mode is the ring's permission bits, whatever the creator's umask. */
Test(lifecycle, mode_is_not_masked_by_umask)
{
	mode_t old = umask(077);
	const char *name = t_name("umask");
	struct shmring_config cfg = { .capacity = 4096, .mode = 0660 };
	struct shmring *r = NULL;
	int rc = shmring_create(&r, name, &cfg);
	umask(old);
	cr_assert_eq(rc, 0);
	struct stat st;
	cr_assert_eq(fstat(shmring_fd(r), &st), 0);
	cr_assert_eq(shmring_unlink(name), 0);
	shmring_detach(r);
	cr_assert_eq(st.st_mode & 07777, 0660, "mode 0660 under umask 077 gave %o",
	             st.st_mode & 07777);
}

/* A process that is not the owner cannot open a 0600 ring (needs root to
 * switch to another uid; skipped otherwise). */
static const char *eacces_name;
static int eacces_child(void *arg)
{
	(void)arg;
	if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
		return 77;
	struct shmring *r = NULL;
	int rc = shmring_open(&r, eacces_name);
	if (rc == -EACCES)
		return 0;
	return rc == 0 ? 10 : 11;
}

Test(lifecycle, mode_0600_denies_other_users)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to switch uid");
	eacces_name = t_name("eacces");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *r = NULL;
	cr_assert_eq(shmring_create(&r, eacces_name, &cfg), 0);
	pid_t pid = t_fork(eacces_child, NULL);
	int st = t_wait_status(pid, 10 * T_SEC);
	cr_assert_eq(shmring_unlink(eacces_name), 0);
	shmring_detach(r);
	if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 77)
		cr_skip_test("cannot switch uid here");
	char b[96];
	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	          "open by another uid: %s (10: succeeded, 11: other error)",
	          t_status_str(st, b, sizeof b));
}

/* ------------------------------------------------------------ anonymous */

Test(lifecycle, anonymous_ring_is_a_sealed_memfd)
{
	struct shmring *r = t_ring(4096, 0);
	int fd = shmring_fd(r);
	cr_assert_geq(fd, 0);
	int seals = fcntl(fd, F_GET_SEALS);
	cr_assert_geq(seals, 0, "F_GET_SEALS: %s", strerror(errno));
	cr_assert_eq(seals & (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW,
	             "seals 0x%x", seals);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_neq(ftruncate(fd, st.st_size / 2), 0, "shrinking a sealed memfd succeeded");
	cr_assert_eq(errno, EPERM);
	cr_assert_neq(ftruncate(fd, st.st_size * 2), 0, "growing a sealed memfd succeeded");
	cr_assert_eq(errno, EPERM);
	char path[PATH_MAX];
	t_fd_path(fd, path, sizeof path);
	cr_assert(strncmp(path, "/memfd:", 7) == 0, "anonymous ring fd is %s", path);
	cr_assert_eq(t_info(r).named, 0);
	/* still usable */
	cr_assert_eq(shmring_put(r, "z", 1, 0), 0);
	shmring_detach(r);
}

Test(lifecycle, fd_is_valid_and_owned_by_handle)
{
	struct shmring *r = t_ring(4096, 0);
	int fd = shmring_fd(r);
	cr_assert_geq(fd, 0);
	cr_assert_eq(shmring_fd(r), fd, "shmring_fd is stable");
	cr_assert_neq(fcntl(fd, F_GETFD), -1);
	int dupfd = dup(fd);
	cr_assert_geq(dupfd, 0);
	shmring_detach(r);
	/* detach closed the handle's fd ... */
	errno = 0;
	cr_assert(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "fd %d still open after detach", fd);
	/* ... but our dup keeps the ring alive and attachable */
	struct shmring *r2 = NULL;
	cr_assert_eq(shmring_attach_fd(&r2, dupfd), 0);
	cr_assert_eq(t_info(r2).capacity, 4096);
	shmring_detach(r2);
	close(dupfd);
}

Test(lifecycle, attach_fd_duplicates_the_fd)
{
	struct shmring *r = t_ring(8192, 100);
	int fd = dup(shmring_fd(r));
	cr_assert_geq(fd, 0);
	struct shmring *r2 = NULL;
	cr_assert_eq(shmring_attach_fd(&r2, fd), 0);
	cr_assert_neq(shmring_fd(r2), fd, "attach_fd must dup the caller's fd");
	cr_assert_eq(close(fd), 0, "caller's fd still ours");
	struct shmring_info in = t_info(r2);
	cr_assert_eq(in.capacity, 8192);
	cr_assert_eq(in.max_record, 100);
	cr_assert_eq(shmring_put(r2, "hello", 5, 0), 0);
	char buf[16];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	/* detaching one handle does not disturb the other's mapping */
	cr_assert_eq(shmring_put(r2, "x", 1, 0), 0);
	shmring_detach(r);
	cr_assert_eq(shmring_get(r2, buf, sizeof buf, 0), 1);
	cr_assert_eq(buf[0], 'x');
	shmring_detach(r2);
}

Test(lifecycle, attach_fd_bad_descriptor)
{
	struct shmring *r = NULL;
	int rc = shmring_attach_fd(&r, -1);
	cr_assert(rc == -EBADF || rc == -EINVAL, "attach_fd(-1) = %d", rc);
	int fd = open("/dev/null", O_RDONLY);
	cr_assert_geq(fd, 0);
	close(fd);
	rc = shmring_attach_fd(&r, fd);
	cr_assert_eq(rc, -EBADF, "attach_fd(closed fd) = %d", rc);
}

Test(lifecycle, attach_fd_of_named_ring)
{
	const char *name = t_name("afd");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *a = NULL, *b = NULL;
	cr_assert_eq(shmring_create(&a, name, &cfg), 0);
	cr_assert_eq(shmring_attach_fd(&b, shmring_fd(a)), 0);
	cr_assert_eq(t_info(b).named, 1);
	cr_assert_eq(shmring_put(b, "q", 1, 0), 0);
	char c;
	cr_assert_eq(shmring_get(a, &c, 1, 0), 1);
	cr_assert_eq(c, 'q');
	cr_assert_eq(shmring_unlink(name), 0);
	shmring_detach(a);
	shmring_detach(b);
}

/* ------------------------------------------------------------ fork */

static struct shmring *fork_ring;
static int fork_child(void *arg)
{
	(void)arg;
	char buf[64];
	ssize_t n = shmring_get(fork_ring, buf, sizeof buf, 5 * T_SEC);
	if (n != 6 || memcmp(buf, "parent", 6) != 0)
		return 1;
	if (shmring_put(fork_ring, "child", 5, 5 * T_SEC) != 0)
		return 2;
	shmring_detach(fork_ring);
	return 0;
}

Test(lifecycle, handle_is_inherited_across_fork)
{
	fork_ring = t_ring(4096, 0);
	pid_t pid = t_fork(fork_child, NULL);
	cr_assert_eq(shmring_put(fork_ring, "parent", 6, 0), 0);
	t_expect_exit(pid, 0, 10 * T_SEC);
	char buf[64];
	cr_assert_eq(shmring_get(fork_ring, buf, sizeof buf, 0), 5);
	cr_assert_eq(memcmp(buf, "child", 5), 0);
	/* the child's detach did not hurt the parent's handle */
	cr_assert_eq(shmring_put(fork_ring, "again", 5, 0), 0);
	cr_assert_eq(shmring_get(fork_ring, buf, sizeof buf, 0), 5);
	shmring_detach(fork_ring);
}

/* ------------------------------------------------------------ strerror */

Test(lifecycle, strerror_names_every_documented_error)
{
	static const int errs[] = { EINVAL, ENAMETOOLONG, EEXIST, ENOENT, EMSGSIZE, EAGAIN,
		                    ETIMEDOUT, EPIPE, EPROTO, EPROTONOSUPPORT, EBADMSG, ERANGE,
		                    EUSERS, ENOMEM, EMFILE, EACCES, EBUSY, ENOTEMPTY };
	const char *seen[sizeof errs / sizeof errs[0]];
	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		const char *s = shmring_strerror(-errs[i]);
		cr_assert_not_null(s, "strerror(-%d) is NULL", errs[i]);
		cr_assert_gt(strlen(s), 0);
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(s, seen[j], "errors %d and %d share the text \"%s\"",
			                  errs[i], errs[j], s);
		seen[i] = s;
	}
	cr_assert_not_null(shmring_strerror(0));
	cr_assert_not_null(shmring_strerror(-99999));
	cr_assert_not_null(shmring_strerror(12345));
}
