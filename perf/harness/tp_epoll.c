/*
 * tp_epoll.c - a consumer that waits in epoll_wait, as an event loop does:
 * shmring through shmring_event_fd (the watcher) and shmring_event_fd_direct
 * (io_uring) against a SOCK_SEQPACKET socketpair, in
 * the same loop (issue 12: "waking through shmring_event_fd costs about twice
 * a socket's wake-up").  Not in the default set: name them with -t, e.g.
 *
 *   shmring-bench pingpong-block -t shmring-efd,shmring-efd-direct,seqpacket-epoll
 *
 * The consumer: take a record without waiting (shmring_get / recv with
 * timeout 0 / MSG_DONTWAIT); if there is none, wait for the fd in epoll_wait
 * and try again.  shmring's fd is level-triggered until acknowledged:
 * shmring_event_ack after a miss, then one more look before sleeping (a
 * record put between the miss and the ack raised no new event).  Producers
 * use the ordinary blocking calls.
 */
#include "harness.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shmring.h"
#include "shmring_poll.h"

struct ep_state {
	int epfd;
	int fd;			/* the one fd waited for */
};

static int epoll_for(struct endpoint *ep, int fd)
{
	struct ep_state *s = xcalloc(1, sizeof *s);
	ep->priv = s;
	s->fd = fd;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		ep_seterr(ep, "epoll_create1: %s", strerror(errno));
		return -errno;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		ep_seterr(ep, "epoll_ctl: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int epoll_once(struct endpoint *ep)
{
	struct ep_state *s = ep->priv;
	struct epoll_event ev;
	for (;;) {
		int n = epoll_wait(s->epfd, &ev, 1, -1);
		if (n == 1)
			return 0;
		if (n < 0 && errno != EINTR) {
			ep_seterr(ep, "epoll_wait: %s", strerror(errno));
			return -errno;
		}
	}
}

static void epoll_close(struct endpoint *ep)
{
	struct ep_state *s = ep->priv;
	if (s) {
		if (s->epfd > 0)
			close(s->epfd);
		free(s);
	}
	ep->priv = NULL;
	free(ep->buf);
	ep->buf = NULL;
}

/* ---- shmring through shmring_event_fd ------------------------------------ */

struct efd_ch {
	struct shmring *ring;
	bool direct;   /* shmring_event_fd_direct (io_uring), not the watcher */
};

static int efd_make(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen,
                    bool direct)
{
	struct efd_ch *ch = xcalloc(1, sizeof *ch);
	ch->direct = direct;
	struct shmring_config rc_cfg = { .capacity = cfg->queue_bytes };
	int rc = shmring_create(&ch->ring, NULL, &rc_cfg);
	if (rc) {
		snprintf(why, whylen, "shmring_create: %s", shmring_strerror(rc));
		free(ch);
		return rc;
	}
	*chp = ch;
	return 0;
}

static int efd_setup(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen)
{
	return efd_make(chp, cfg, why, whylen, false);
}

static int efd_direct_setup(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen)
{
	/* Not applicable (1) where io_uring has no FUTEX_WAIT: probed on a
	 * ring of its own, so that the measured ring has no fd armed here. */
	struct shmring *probe;
	struct shmring_config pc = { .capacity = 4096 };
	int rc = shmring_create(&probe, NULL, &pc);
	if (rc == 0) {
		rc = shmring_event_fd_direct(probe);
		shmring_detach(probe);
	}
	if (rc == -EOPNOTSUPP) {
		snprintf(why, whylen, "shmring_event_fd_direct: no io_uring FUTEX_WAIT here "
		         "(Linux 6.7+, io_uring enabled)");
		return 1;
	}
	return efd_make(chp, cfg, why, whylen, true);
}

static void efd_teardown(void *chv, const struct chan_cfg *cfg)
{
	struct efd_ch *ch = chv;
	(void)cfg;
	if (ch) {
		shmring_detach(ch->ring);
		free(ch);
	}
}

static void efd_describe(void *chv, const struct chan_cfg *cfg, char *buf, size_t len)
{
	const struct efd_ch *ch = chv;
	(void)cfg;
	snprintf(buf, len, "anonymous ring; consumer: shmring_get(0), else epoll_wait on "
		 "%s + shmring_event_ack", ch && ch->direct ? "shmring_event_fd_direct (io_uring)"
		                                             : "shmring_event_fd (watcher thread)");
}

static int efd_open(struct endpoint *ep, int role)
{
	struct efd_ch *ch = ep->ch;
	if (g_opt.ring_spin >= 0) /* also the watcher's spin before it sleeps */
		shmring_set_spin(ch->ring, (unsigned)g_opt.ring_spin);
	int rc = shmring_declare(ch->ring, role == ROLE_PRODUCER ? SHMRING_PRODUCER : SHMRING_CONSUMER);
	if (rc) {
		ep_seterr(ep, "shmring_declare: %s", shmring_strerror(rc));
		return rc;
	}
	rc = shmring_prefault(ch->ring);
	if (rc && rc != -EOPNOTSUPP) {
		ep_seterr(ep, "shmring_prefault: %s", shmring_strerror(rc));
		return rc;
	}
	if (role == ROLE_CONSUMER) {
		int fd = ch->direct ? shmring_event_fd_direct(ch->ring) : shmring_event_fd(ch->ring);
		if (fd < 0) {
			ep_seterr(ep, "shmring_event_fd%s: %s", ch->direct ? "_direct" : "",
			          shmring_strerror(fd));
			return fd;
		}
		rc = epoll_for(ep, fd);
		if (rc)
			return rc;
	}
	return ep_alloc_buf(ep, ep->cfg->rec_size);
}

static int efd_send_begin(struct endpoint *ep, size_t len, void **rec)
{
	(void)len;
	*rec = ep->buf;
	return 0;
}

static int efd_send_end(struct endpoint *ep, size_t len)
{
	struct efd_ch *ch = ep->ch;
	int rc = shmring_put(ch->ring, ep->buf, len, -1);
	if (rc)
		ep_seterr(ep, "shmring_put: %s", shmring_strerror(rc));
	return rc;
}

static ssize_t efd_recv_begin(struct endpoint *ep, const void **rec)
{
	struct efd_ch *ch = ep->ch;
	for (;;) {
		ssize_t n = shmring_get(ch->ring, ep->buf, ep->buf_len, 0);
		if (n == -EAGAIN) {
			int rc = shmring_event_ack(ch->ring);
			if (rc) {
				ep_seterr(ep, "shmring_event_ack: %s", shmring_strerror(rc));
				return rc;
			}
			n = shmring_get(ch->ring, ep->buf, ep->buf_len, 0);
			if (n == -EAGAIN) {
				if ((rc = epoll_once(ep)) != 0)
					return rc;
				continue;
			}
		}
		if (n < 0) {
			ep_seterr(ep, "shmring_get: %s", shmring_strerror((int)n));
			return n;
		}
		*rec = ep->buf;
		return n;
	}
}

static int nop_end(struct endpoint *ep)
{
	(void)ep;
	return 0;
}

const struct transport tp_shmring_efd = {
	.name = "shmring-efd",
	.desc = "shmring get(0) + epoll on shmring_event_fd",
	.flags = TP_SHMRING,
	.setup = efd_setup,
	.open = efd_open,
	.close = epoll_close,
	.teardown = efd_teardown,
	.send_begin = efd_send_begin,
	.send_end = efd_send_end,
	.recv_begin = efd_recv_begin,
	.recv_end = nop_end,
	.describe = efd_describe,
};

const struct transport tp_shmring_efd_direct = {
	.name = "shmring-efd-direct",
	.desc = "shmring get(0) + epoll on shmring_event_fd_direct (io_uring, Linux 6.7+)",
	.flags = TP_SHMRING,
	.setup = efd_direct_setup,
	.open = efd_open,
	.close = epoll_close,
	.teardown = efd_teardown,
	.send_begin = efd_send_begin,
	.send_end = efd_send_end,
	.recv_begin = efd_recv_begin,
	.recv_end = nop_end,
	.describe = efd_describe,
};

/* ---- SOCK_SEQPACKET socketpair, the consumer in epoll ---------------------- */

struct sp_ch {
	int sv[2];		/* [0] producers send, [1] the consumer receives */
};

static int sp_setup(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen)
{
	struct sp_ch *ch = xcalloc(1, sizeof *ch);
	int want = cfg->queue_bytes > (1u << 30) ? (1 << 30) : (int)cfg->queue_bytes;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch->sv) != 0) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		free(ch);
		return -errno;
	}
	if (setsockopt(ch->sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0)
		(void)setsockopt(ch->sv[0], SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
	*chp = ch;
	return 0;
}

static void sp_teardown(void *chv, const struct chan_cfg *cfg)
{
	struct sp_ch *ch = chv;
	(void)cfg;
	if (ch) {
		close(ch->sv[0]);
		close(ch->sv[1]);
		free(ch);
	}
}

static void sp_describe(void *chv, const struct chan_cfg *cfg, char *buf, size_t len)
{
	(void)chv;
	(void)cfg;
	snprintf(buf, len, "socketpair SOCK_SEQPACKET; consumer: recv(MSG_DONTWAIT), else "
		 "epoll_wait on the socket");
}

static int sp_open(struct endpoint *ep, int role)
{
	struct sp_ch *ch = ep->ch;
	if (role == ROLE_CONSUMER) {
		int rc = epoll_for(ep, ch->sv[1]);
		if (rc)
			return rc;
	}
	return ep_alloc_buf(ep, ep->cfg->rec_size);
}

static int sp_send_end(struct endpoint *ep, size_t len)
{
	struct sp_ch *ch = ep->ch;
	for (;;) {
		ssize_t n = send(ch->sv[0], ep->buf, len, MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		ep_seterr(ep, "send: %s", n < 0 ? strerror(errno) : "short");
		return n < 0 ? -errno : -EIO;
	}
}

static ssize_t sp_recv_begin(struct endpoint *ep, const void **rec)
{
	struct sp_ch *ch = ep->ch;
	for (;;) {
		ssize_t n = recv(ch->sv[1], ep->buf, ep->buf_len, MSG_DONTWAIT);
		if (n >= 0) {
			*rec = ep->buf;
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			ep_seterr(ep, "recv: %s", strerror(errno));
			return -errno;
		}
		int rc = epoll_once(ep);
		if (rc)
			return rc;
	}
}

const struct transport tp_seqpacket_epoll = {
	.name = "seqpacket-epoll",
	.desc = "socketpair SOCK_SEQPACKET, recv + epoll",
	.setup = sp_setup,
	.open = sp_open,
	.close = epoll_close,
	.teardown = sp_teardown,
	.send_begin = efd_send_begin,
	.send_end = sp_send_end,
	.recv_begin = sp_recv_begin,
	.recv_end = nop_end,
	.describe = sp_describe,
};
