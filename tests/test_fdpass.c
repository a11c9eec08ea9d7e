/*
 * test_fdpass.c - shmring_send_fd / shmring_recv_fd: hand an anonymous ring
 * to a forked child over a socketpair; timeouts, EOF, bad arguments.
 */
#include "common.h"

#include <sys/socket.h>

TestSuite(fdpass, .timeout = T_TIMEOUT);

static int sockpair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}

/* ------------------------------------------------------------ to a child */

#define FP_N 200

struct fp_arg {
	int sock;
	int close_first; /* the other end of the pair, which the child closes */
};

/* Receive the ring, check the descriptor, consume FP_N records, reply. */
static int fp_child(void *argp)
{
	struct fp_arg *a = argp;
	close(a->close_first);
	int fd = -1;
	int rc = shmring_recv_fd(a->sock, &fd, 10 * T_SEC);
	if (rc != 0)
		return 10;
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0 || !(fl & FD_CLOEXEC))
		return 11;
	struct shmring *r = NULL;
	if (shmring_attach_fd(&r, fd) != 0)
		return 12;
	close(fd); /* the handle has its own */
	static char buf[2048];
	uint64_t sum = 0;
	for (int i = 0; i < FP_N; i++) {
		ssize_t n = shmring_get(r, buf, sizeof buf, 10 * T_SEC);
		if (n != (ssize_t)(i * 7 % 1000))
			return 13;
		if (!t_check(buf, (size_t)n, (uint64_t)i))
			return 14;
		sum += (uint64_t)n;
	}
	char reply[64];
	int len = snprintf(reply, sizeof reply, "child got %d records, %llu bytes", FP_N,
	                   (unsigned long long)sum);
	if (shmring_put(r, reply, (size_t)len, 10 * T_SEC) != 0)
		return 15;
	shmring_detach(r);
	return 0;
}

Test(fdpass, child_attaches_received_fd_and_consumes)
{
	struct shmring *r = t_ring(8192, 0);
	int sv[2];
	cr_assert_eq(sockpair(sv), 0);
	struct fp_arg a = { sv[1], sv[0] };
	pid_t pid = t_fork(fp_child, &a);
	close(sv[1]);
	cr_assert_eq(shmring_send_fd(sv[0], shmring_fd(r)), 0);
	uint64_t sum = 0;
	for (int i = 0; i < FP_N; i++) {
		static char buf[2048];
		size_t len = (size_t)(i * 7 % 1000);
		t_fill(buf, len, (uint64_t)i);
		cr_assert_eq(shmring_put(r, buf, len, 10 * T_SEC), 0);
		sum += len;
	}
	t_expect_exit(pid, 0, 20 * T_SEC);
	char reply[64] = { 0 }, want[64];
	snprintf(want, sizeof want, "child got %d records, %llu bytes", FP_N,
	         (unsigned long long)sum);
	ssize_t n = shmring_get(r, reply, sizeof reply - 1, 0);
	cr_assert_eq(n, (ssize_t)strlen(want));
	cr_assert_str_eq(reply, want);
	cr_assert_eq(shmring_get(r, reply, sizeof reply, 0), -EAGAIN);
	close(sv[0]);
	shmring_detach(r);
}

/* ------------------------------------------------------------ in-process */

Test(fdpass, received_fd_is_cloexec_and_attachable)
{
	struct shmring *r = t_ring(4096, 0);
	int sv[2];
	cr_assert_eq(sockpair(sv), 0);
	cr_assert_eq(shmring_send_fd(sv[0], shmring_fd(r)), 0);
	int fd = -1;
	cr_assert_eq(shmring_recv_fd(sv[1], &fd, 0), 0, "a sent fd is there at once");
	cr_assert_geq(fd, 0);
	cr_assert_neq(fd, shmring_fd(r));
	int fl = fcntl(fd, F_GETFD);
	cr_assert(fl >= 0 && (fl & FD_CLOEXEC), "received fd is not O_CLOEXEC");
	struct stat a, b;
	cr_assert_eq(fstat(fd, &a), 0);
	cr_assert_eq(fstat(shmring_fd(r), &b), 0);
	cr_assert_eq(a.st_ino, b.st_ino, "received a different file");
	struct shmring *r2 = NULL;
	cr_assert_eq(shmring_attach_fd(&r2, fd), 0);
	cr_assert_eq(shmring_put(r2, "via fd", 6, 0), 0);
	char buf[8];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 6);
	cr_assert_eq(memcmp(buf, "via fd", 6), 0);
	shmring_detach(r2);
	close(fd);
	close(sv[0]);
	close(sv[1]);
	shmring_detach(r);
}

Test(fdpass, several_fds_in_order)
{
	struct shmring *r1 = t_ring(4096, 0), *r2 = t_ring(8192, 0);
	int sv[2];
	cr_assert_eq(sockpair(sv), 0);
	cr_assert_eq(shmring_send_fd(sv[0], shmring_fd(r1)), 0);
	cr_assert_eq(shmring_send_fd(sv[0], shmring_fd(r2)), 0);
	int f1 = -1, f2 = -1;
	cr_assert_eq(shmring_recv_fd(sv[1], &f1, T_SEC), 0);
	cr_assert_eq(shmring_recv_fd(sv[1], &f2, T_SEC), 0);
	struct shmring *a = NULL, *b = NULL;
	cr_assert_eq(shmring_attach_fd(&a, f1), 0);
	cr_assert_eq(shmring_attach_fd(&b, f2), 0);
	cr_assert_eq(t_info(a).capacity, 4096, "first fd received is the first sent");
	cr_assert_eq(t_info(b).capacity, 8192);
	shmring_detach(a);
	shmring_detach(b);
	close(f1);
	close(f2);
	close(sv[0]);
	close(sv[1]);
	shmring_detach(r1);
	shmring_detach(r2);
}

Test(fdpass, recv_timeouts)
{
	int sv[2];
	cr_assert_eq(sockpair(sv), 0);
	int fd = -12345;
	cr_assert_eq(shmring_recv_fd(sv[1], &fd, 0), -EAGAIN);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_recv_fd(sv[1], &fd, 80 * T_MS), -ETIMEDOUT);
	int64_t el = t_now_ns() - t0;
	cr_assert_geq(el, 80 * T_MS, "returned after %lld ns", (long long)el);
	cr_assert_lt(el, 80 * T_MS + T_WAKE_BOUND_NS);
	cr_assert_eq(fd, -12345, "fd written on failure");
	close(sv[0]);
	close(sv[1]);
}

/* A timeout of 2^32 ms + 200 ms (49.7 days): cast whole to poll's int
 * milliseconds it was 200 ms, so the receive gave up after 0.2 s; and 30
 * days was negative, i.e. forever (a review found it, 2026-12-06).  Here a
 * child sends after 500 ms: the receive must still be waiting for it. */
static int send_later(void *arg)
{
	int sock = *(int *)arg;
	t_sleep_ns(500 * T_MS);
	return shmring_send_fd(sock, 0) == 0 ? 0 : 1;
}

Test(fdpass, recv_timeouts_longer_than_an_int_of_milliseconds)
{
	int sv[2];
	cr_assert_eq(sockpair(sv), 0);
	pid_t pid = t_fork(send_later, &sv[0]);
	int fd = -1;
	int rc = shmring_recv_fd(sv[1], &fd, ((INT64_C(1) << 32) + 200) * T_MS);
	cr_assert_eq(rc, 0, "recv = %d (%s)", rc, shmring_strerror(rc));
	close(fd);
	t_expect_exit(pid, 0, 10 * T_SEC);
	close(sv[0]);
	close(sv[1]);
}

Test(fdpass, recv_from_closed_peer_is_epipe)
{
	int sv[2];
	cr_assert_eq(sockpair(sv), 0);
	close(sv[0]);
	int fd = -1;
	cr_assert_eq(shmring_recv_fd(sv[1], &fd, 0), -EPIPE);
	cr_assert_eq(shmring_recv_fd(sv[1], &fd, -1), -EPIPE, "must not block on EOF");
	close(sv[1]);
}

static int fp_closer(void *arg)
{
	int *sv = arg;
	t_sleep_ns(100 * T_MS);
	close(sv[0]);
	return 0;
}

/* A receiver blocked in recv_fd wakes with -EPIPE when the peer (another
 * process) goes away. */
Test(fdpass, blocked_recv_wakes_on_peer_exit)
{
	int sv[2];
	cr_assert_eq(sockpair(sv), 0);
	pid_t pid = t_fork(fp_closer, sv);
	close(sv[0]);
	int fd = -1;
	int64_t t0 = t_now_ns();
	int rc = shmring_recv_fd(sv[1], &fd, -1);
	int64_t el = t_now_ns() - t0;
	t_expect_exit(pid, 0, 10 * T_SEC);
	cr_assert_eq(rc, -EPIPE);
	cr_assert_lt(el, T_WAKE_BOUND_NS);
	close(sv[1]);
}

Test(fdpass, recv_without_fd_is_an_error)
{
	int sv[2];
	cr_assert_eq(sockpair(sv), 0);
	cr_assert_eq(write(sv[0], "R", 1), 1);
	int fd = -12345;
	int rc = shmring_recv_fd(sv[1], &fd, T_SEC);
	cr_assert_lt(rc, 0, "a byte without a descriptor was accepted (fd %d)", fd);
	cr_assert_eq(fd, -12345);
	close(sv[0]);
	close(sv[1]);
}

Test(fdpass, send_errors)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_send_fd(-1, shmring_fd(r)), -EINVAL);
	int sv[2];
	cr_assert_eq(sockpair(sv), 0);
	cr_assert_eq(shmring_send_fd(sv[0], -1), -EINVAL);
	int fd;
	cr_assert_eq(shmring_recv_fd(-1, &fd, 0), -EINVAL);
	cr_assert_eq(shmring_recv_fd(sv[1], NULL, 0), -EINVAL);
	/* a closed peer: an error, and no SIGPIPE killing us */
	close(sv[1]);
	cr_assert_eq(shmring_send_fd(sv[0], shmring_fd(r)), -EPIPE);
	close(sv[0]);
	/* not a socket */
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(shmring_send_fd(p[1], shmring_fd(r)), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	shmring_detach(r);
}
