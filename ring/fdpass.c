/*
 * fdpass.c - sending a ring's fd over an AF_UNIX socket (SCM_RIGHTS).
 */
#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "wait.h"
#include "shmring_fdpass.h"

/* fds one receive can see at once (only one is ever accepted). */
#define RECV_FD_ROOM 16
/* The kernel's SCM_PIDFD (asm-generic/socket.h, Linux 6.5), for headers
 * older than it. */
#ifdef SCM_PIDFD
#define SCM_PIDFD_TYPE SCM_PIDFD
#else
#define SCM_PIDFD_TYPE 0x04
#endif

int shmring_send_fd(int sock, int fd)
{
	if (sock < 0 || fd < 0)
		return -EINVAL;
	char byte = 'R';
	struct iovec iov = { &byte, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
	                      .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : (n < 0 ? -errno : -EIO);
}

int shmring_recv_fd(int sock, int *fd, int64_t timeout_ns)
{
	if (sock < 0 || !fd)
		return -EINVAL;
	struct deadline dl;
	shmring__deadline_init(&dl, timeout_ns);
	for (;;) {
		int ms = -1;
		bool capped = false;
		if (!dl.forever) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			int64_t left = (int64_t)(dl.at.tv_sec - now.tv_sec) * 1000000000 +
			               (dl.at.tv_nsec - now.tv_nsec);
			/* at most INT_MAX ms a poll (24.8 days), then again:
			 * cast whole, 30 days became a negative poll timeout,
			 * i.e. forever (a review found it, 2026-12-06) */
			int64_t left_ms = left <= 0 ? 0 : (left + 999999) / 1000000;
			capped = left_ms > INT_MAX;
			ms = capped ? INT_MAX : (int)left_ms;
		}
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int pr = poll(&p, 1, ms);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return -errno;
		if (pr == 0 && capped)
			continue; /* a slice of a longer wait */
		if (pr == 0)
			return timeout_ns == 0 ? -EAGAIN : -ETIMEDOUT;
		break;
	}
	char byte;
	struct iovec iov = { &byte, 1 };
	/* Room for more fds than we accept, so that a message carrying several
	 * is seen whole and each of its fds closed; whatever did not fit
	 * (MSG_CTRUNC) the kernel never installed (scm_detach_fds). */
	union {
		char buf[CMSG_SPACE(RECV_FD_ROOM * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
	                      .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* Every fd the message brought, wherever it sits: one is the answer,
	 * more (or a truncated message) is an error and all are closed. */
	int got = -1, count = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_len < CMSG_LEN(0))
			continue;
		/* A pidfd the kernel installs with every message on a socket
		 * with SO_PASSPIDFD (Linux 6.5): closed, or each receive leaked
		 * one (a review found it, 2026-12-06). */
		if (c->cmsg_type == SCM_PIDFD_TYPE && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int pidfd;
			memcpy(&pidfd, CMSG_DATA(c), sizeof(int));
			close(pidfd);
			continue;
		}
		if (c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfds; i++) {
			int one;
			memcpy(&one, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (count++ == 0)
				got = one;
			else
				close(one);
		}
	}
	bool truncated = msg.msg_flags & MSG_CTRUNC;
	if (n > 0 && count == 1 && !truncated) {
		*fd = got;
		return 0;
	}
	if (count >= 1)
		close(got);
	if (n == 0)
		return -EPIPE;
	return truncated ? -EMSGSIZE : -EBADMSG;
}
