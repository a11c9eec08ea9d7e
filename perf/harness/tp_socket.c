/*
 * tp_socket.c - an AF_UNIX SOCK_SEQPACKET socketpair: the kernel keeps
 * message boundaries, so a record is one send and one recv, and any number
 * of producers and consumers can share the two ends.
 *
 * The sending end's SO_SNDBUF (which bounds both the bytes in flight and the
 * largest message) is set to the common queue size (SO_SNDBUFFORCE when root,
 * else capped by net.core.wmem_max); describe() says what it got.
 */
#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct sock_ch {
	int sv[2];		/* [0] producers send, [1] consumers receive */
	int sndbuf;
};

static int sock_setup(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen)
{
	struct sock_ch *ch = xcalloc(1, sizeof *ch);
	int want = cfg->queue_bytes > (1u << 30) ? (1 << 30) : (int)cfg->queue_bytes;
	socklen_t sl = sizeof ch->sndbuf;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch->sv) != 0) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		free(ch);
		return -errno;
	}
	if (setsockopt(ch->sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0)
		(void)setsockopt(ch->sv[0], SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
	getsockopt(ch->sv[0], SOL_SOCKET, SO_SNDBUF, &ch->sndbuf, &sl);
	/* The kernel refuses a message over sk_sndbuf - 32. */
	if (cfg->rec_size + 64 > (size_t)ch->sndbuf) {
		snprintf(why, whylen, "record over SO_SNDBUF %d (raise net.core.wmem_max)",
			 ch->sndbuf);
		close(ch->sv[0]);
		close(ch->sv[1]);
		free(ch);
		return 1;
	}
	*chp = ch;
	return 0;
}

static void sock_teardown(void *chv, const struct chan_cfg *cfg)
{
	struct sock_ch *ch = chv;

	(void)cfg;
	if (!ch)
		return;
	close(ch->sv[0]);
	close(ch->sv[1]);
	free(ch);
}

static void sock_describe(void *chv, const struct chan_cfg *cfg, char *buf, size_t len)
{
	struct sock_ch *ch = chv;
	(void)cfg;
	snprintf(buf, len, "socketpair SOCK_SEQPACKET, SO_SNDBUF %d", ch->sndbuf);
}

static int sock_open(struct endpoint *ep, int role)
{
	(void)role;
	return ep_alloc_buf(ep, ep->cfg->rec_size);
}

static void sock_close(struct endpoint *ep)
{
	free(ep->buf);
	ep->buf = NULL;
}

static int sock_send_begin(struct endpoint *ep, size_t len, void **rec)
{
	(void)len;
	*rec = ep->buf;
	return 0;
}

static int sock_send_end(struct endpoint *ep, size_t len)
{
	struct sock_ch *ch = ep->ch;
	int flags = MSG_NOSIGNAL | (ep->cfg->nonblock ? MSG_DONTWAIT : 0);

	for (;;) {
		ssize_t n = send(ch->sv[0], ep->buf, len, flags);
		if (n == (ssize_t)len)
			return 0;
		if (n >= 0) {
			ep_seterr(ep, "send: short send %zd of %zu", n, len);
			return -EIO;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		if (errno != EINTR) {
			ep_seterr(ep, "send: %s", strerror(errno));
			return -errno;
		}
	}
}

static ssize_t sock_recv_begin(struct endpoint *ep, const void **rec)
{
	struct sock_ch *ch = ep->ch;
	int flags = MSG_TRUNC | (ep->cfg->nonblock ? MSG_DONTWAIT : 0);

	for (;;) {
		ssize_t n = recv(ch->sv[1], ep->buf, ep->buf_len, flags);
		if (n >= 0) {
			if ((size_t)n > ep->buf_len) {
				ep_seterr(ep, "recv: message of %zd bytes truncated", n);
				return -EMSGSIZE;
			}
			*rec = ep->buf;
			return n;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		if (errno != EINTR) {
			ep_seterr(ep, "recv: %s", strerror(errno));
			return -errno;
		}
	}
}

static int sock_recv_end(struct endpoint *ep)
{
	(void)ep;
	return 0;
}

const struct transport tp_seqpacket = {
	.name = "seqpacket",
	.desc = "AF_UNIX SOCK_SEQPACKET socketpair",
	.setup = sock_setup,
	.open = sock_open,
	.close = sock_close,
	.teardown = sock_teardown,
	.send_begin = sock_send_begin,
	.send_end = sock_send_end,
	.recv_begin = sock_recv_begin,
	.recv_end = sock_recv_end,
	.describe = sock_describe,
};
