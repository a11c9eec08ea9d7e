/*
 * test_fdpass_extra.c - shmring_recv_fd on a message that carries more than
 * one fd (in one SCM_RIGHTS block, in two, or more than fit its buffer):
 * an error, and every fd the message brought is closed.  Counted in
 * /proc/self/fd over 250 messages of each kind.
 */
#include "common.h"

#include <dirent.h>
#include <sys/socket.h>

TestSuite(fdpass_extra, .timeout = T_TIMEOUT);

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	cr_assert_not_null(d, "opendir /proc/self/fd: %s", strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* Send one byte with nfds copies of fd, split into `blocks` SCM_RIGHTS
 * control messages (1 or 2). */
static void send_fds(int sock, int fd, int nfds, int blocks)
{
	char byte = 'R';
	struct iovec iov = { &byte, 1 };
	union {
		char buf[2 * CMSG_SPACE(64 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	int fds[64];
	cr_assert_leq(nfds, 64);
	for (int i = 0; i < nfds; i++)
		fds[i] = fd;
	int first = blocks == 2 ? nfds / 2 : nfds;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf };
	msg.msg_controllen = CMSG_SPACE(first * sizeof(int)) +
	                     (blocks == 2 ? CMSG_SPACE((nfds - first) * sizeof(int)) : 0);
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(first * sizeof(int));
	memcpy(CMSG_DATA(c), fds, first * sizeof(int));
	if (blocks == 2) {
		c = CMSG_NXTHDR(&msg, c);
		cr_assert_not_null(c);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((nfds - first) * sizeof(int));
		memcpy(CMSG_DATA(c), fds + first, (nfds - first) * sizeof(int));
	}
	ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	cr_assert_eq(n, 1, "sendmsg(%d fds in %d blocks): %s", nfds, blocks, strerror(errno));
}

static void many_fds_leak_nothing(int type, int nfds, int blocks, int want1, int want2)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
	struct shmring *r = t_ring(4096, 0);
	int before = open_fds();
	for (int i = 0; i < 250; i++) {
		send_fds(sv[0], shmring_fd(r), nfds, blocks);
		int fd = -1;
		int rc = shmring_recv_fd(sv[1], &fd, 5 * T_SEC);
		cr_assert(rc == want1 || rc == want2,
		          "recv_fd(%d fds in %d blocks) = %d (%s), expected %d or %d", nfds, blocks,
		          rc, shmring_strerror(rc), want1, want2);
		cr_assert_eq(fd, -1, "an error must not hand out an fd");
	}
	int after = open_fds();
	cr_assert_eq(after, before, "%d fds leaked by 250 messages of %d fds (%d blocks)",
	             after - before, nfds, blocks);
	/* the socket still works for a well-formed message */
	cr_assert_eq(shmring_send_fd(sv[0], shmring_fd(r)), 0);
	int fd = -1;
	cr_assert_eq(shmring_recv_fd(sv[1], &fd, 5 * T_SEC), 0);
	struct shmring *r2 = NULL;
	cr_assert_eq(shmring_attach_fd(&r2, fd), 0);
	close(fd);
	shmring_detach(r2);
	shmring_detach(r);
	close(sv[0]);
	close(sv[1]);
	cr_assert_eq(open_fds(), before - 3);
}

Test(fdpass_extra, two_fds_in_one_message_leak_nothing)
{
	many_fds_leak_nothing(SOCK_STREAM, 2, 1, -EBADMSG, -EBADMSG);
}

Test(fdpass_extra, three_fds_in_one_message_leak_nothing)
{
	many_fds_leak_nothing(SOCK_STREAM, 3, 1, -EBADMSG, -EBADMSG);
}

Test(fdpass_extra, two_blocks_of_fds_leak_nothing)
{
	many_fds_leak_nothing(SOCK_DGRAM, 4, 2, -EBADMSG, -EBADMSG);
}

/* More fds than the receiver's buffer holds: MSG_CTRUNC; the ones that were
 * installed are closed, the others never were. */
Test(fdpass_extra, truncated_control_leaks_nothing)
{
	many_fds_leak_nothing(SOCK_DGRAM, 60, 1, -EMSGSIZE, -EMSGSIZE);
}

/* With SO_PASSPIDFD on the receiving socket (Linux 6.5), the kernel adds a
 * pidfd to every message: each receive leaked one before. */
Test(fdpass_extra, recv_closes_the_pidfd_of_so_passpidfd)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int one = 1;
	if (setsockopt(sv[1], SOL_SOCKET, 76 /* SO_PASSPIDFD */, &one, sizeof one) != 0) {
		close(sv[0]);
		close(sv[1]);
		cr_skip_test("SO_PASSPIDFD: %s (a kernel before 6.5)", strerror(errno));
	}
	int before = open_fds();
	for (int i = 0; i < 10; i++) {
		int fd = -1;
		cr_assert_eq(shmring_send_fd(sv[0], 0), 0);
		cr_assert_eq(shmring_recv_fd(sv[1], &fd, T_SEC), 0);
		close(fd);
	}
	cr_assert_eq(open_fds(), before, "fds leaked: %d before, %d after", before, open_fds());
	close(sv[0]);
	close(sv[1]);
}
