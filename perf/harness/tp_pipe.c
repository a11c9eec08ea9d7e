/*
 * tp_pipe.c - a pipe carrying records framed with a 4-byte length prefix.
 *
 * The producer writes each record with one writev (prefix + payload).  The
 * consumer reads as much as the pipe holds into a 64 KiB buffer and parses
 * frames out of it (one read can deliver many records), which is the best a
 * pipe consumer can do without delaying anything; --pipe-exact reads the
 * prefix and then the payload instead, two reads per record, as
 * multiprocessing.Connection does.  Several consumers cannot share buffered
 * reads, so with C > 1 every read of a frame is done under a process-shared
 * mutex (exact reads); with P > 1 and frames over PIPE_BUF (which a pipe does
 * not keep whole), so is every write.
 *
 * The pipe is grown with F_SETPIPE_SZ to the queue size the other transports
 * get (root may exceed /proc/sys/fs/pipe-max-size); describe() says what it
 * got.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF (64u << 10)

struct pipe_locks {
	pthread_mutex_t rlock, wlock;
};

struct pipe_ch {
	int fd[2];
	int pipe_size;
	int exact, need_rlock, need_wlock;
	struct pipe_locks *locks;	/* shared memory */
};

struct pipe_ep {
	unsigned char *rb;
	size_t pos, end;
};

static void init_shared_mutex(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

static int pipe_setup(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen)
{
	struct pipe_ch *ch = xcalloc(1, sizeof *ch);

	if (pipe2(ch->fd, O_CLOEXEC | (cfg->nonblock ? O_NONBLOCK : 0)) != 0) {
		snprintf(why, whylen, "pipe2: %s", strerror(errno));
		free(ch);
		return -errno;
	}
	/* Grow the pipe to the common queue size, or as close as allowed. */
	for (size_t want = cfg->queue_bytes; want >= 4096; want /= 2)
		if (fcntl(ch->fd[1], F_SETPIPE_SZ, (int)(want > INT_MAX ? INT_MAX : want)) >= 0)
			break;
	ch->pipe_size = fcntl(ch->fd[1], F_GETPIPE_SZ);
	ch->exact = cfg->pipe_exact || cfg->consumers > 1;
	ch->need_rlock = cfg->consumers > 1;
	ch->need_wlock = cfg->producers > 1 && 4 + cfg->rec_size > PIPE_BUF;
	ch->locks = shared_alloc(sizeof *ch->locks);
	init_shared_mutex(&ch->locks->rlock);
	init_shared_mutex(&ch->locks->wlock);
	*chp = ch;
	return 0;
}

static void pipe_teardown(void *chv, const struct chan_cfg *cfg)
{
	struct pipe_ch *ch = chv;

	(void)cfg;
	if (!ch)
		return;
	close(ch->fd[0]);
	close(ch->fd[1]);
	shared_free(ch->locks, sizeof *ch->locks);
	free(ch);
}

static void pipe_describe(void *chv, const struct chan_cfg *cfg, char *buf, size_t len)
{
	struct pipe_ch *ch = chv;
	(void)cfg;
	snprintf(buf, len, "pipe buffer %d bytes (F_SETPIPE_SZ), %s reads%s%s", ch->pipe_size,
		 ch->exact ? "exact (prefix, then payload)" : "buffered 64 KiB",
		 ch->need_rlock ? ", reader mutex" : "", ch->need_wlock ? ", writer mutex" : "");
}

static int pipe_open(struct endpoint *ep, int role)
{
	struct pipe_ch *ch = ep->ch;
	struct pipe_ep *e = xcalloc(1, sizeof *e);

	ep->priv = e;
	if (role == ROLE_CONSUMER && !ch->exact)
		e->rb = xmalloc(RBUF);
	return ep_alloc_buf(ep, ep->cfg->rec_size);
}

static void pipe_close(struct endpoint *ep)
{
	struct pipe_ep *e = ep->priv;

	if (e)
		free(e->rb);
	free(e);
	ep->priv = NULL;
	free(ep->buf);
	ep->buf = NULL;
}

static int pipe_send_begin(struct endpoint *ep, size_t len, void **rec)
{
	(void)len;
	*rec = ep->buf;
	return 0;
}

static int pipe_send_end(struct endpoint *ep, size_t len)
{
	struct pipe_ch *ch = ep->ch;
	uint32_t hdr = (uint32_t)len;
	struct iovec iov[2] = { { &hdr, 4 }, { ep->buf, len } };
	struct iovec *v = iov;
	int nv = 2, rc = 0;
	size_t written = 0;

	if (ch->need_wlock)
		pthread_mutex_lock(&ch->locks->wlock);
	while (nv > 0) {
		ssize_t n = writev(ch->fd[1], v, nv);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (!written && !ch->need_wlock) {
					rc = -EAGAIN;	/* nothing sent: the caller retries */
					break;
				}
				cpu_relax();	/* mid-frame: finish it */
				continue;
			}
			rc = -errno;
			ep_seterr(ep, "writev: %s", strerror(errno));
			break;
		}
		written += (size_t)n;
		while (nv > 0 && (size_t)n >= v->iov_len) {
			n -= (ssize_t)v->iov_len;
			v++;
			nv--;
		}
		if (nv > 0) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
		}
	}
	if (ch->need_wlock)
		pthread_mutex_unlock(&ch->locks->wlock);
	return rc;
}

/* Read exactly len bytes; -EAGAIN only if none could be read (then nothing
 * was consumed). */
static int read_exact(struct endpoint *ep, int fd, void *buf, size_t len, int may_eagain)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n > 0) {
			got += (size_t)n;
		} else if (n == 0) {
			ep_seterr(ep, "read: unexpected end of file");
			return -EPIPE;
		} else if (errno == EAGAIN) {
			if (!got && may_eagain)
				return -EAGAIN;
			cpu_relax();
		} else if (errno != EINTR) {
			ep_seterr(ep, "read: %s", strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static ssize_t pipe_recv_exact(struct endpoint *ep, const void **rec)
{
	struct pipe_ch *ch = ep->ch;
	uint32_t len;
	int rc;

	if (ch->need_rlock)
		pthread_mutex_lock(&ch->locks->rlock);
	rc = read_exact(ep, ch->fd[0], &len, 4, 1);
	if (rc == 0) {
		if (len > ep->buf_len) {
			ep_seterr(ep, "bad frame: length %u", len);
			rc = -EBADMSG;
		} else {
			rc = read_exact(ep, ch->fd[0], ep->buf, len, 0);
		}
	}
	if (ch->need_rlock)
		pthread_mutex_unlock(&ch->locks->rlock);
	if (rc)
		return rc;
	*rec = ep->buf;
	return len;
}

static ssize_t pipe_recv_begin(struct endpoint *ep, const void **rec)
{
	struct pipe_ch *ch = ep->ch;
	struct pipe_ep *e = ep->priv;

	if (ch->exact)
		return pipe_recv_exact(ep, rec);
	for (;;) {
		size_t avail = e->end - e->pos;
		if (avail >= 4) {
			uint32_t len;
			memcpy(&len, e->rb + e->pos, 4);
			if (len > ep->buf_len) {
				ep_seterr(ep, "bad frame: length %u", len);
				return -EBADMSG;
			}
			if (avail >= 4 + (size_t)len) {
				*rec = e->rb + e->pos + 4;
				e->pos += 4 + (size_t)len;
				return len;
			}
			if (4 + (size_t)len > RBUF) {
				/* A record larger than the buffer: take what
				 * is buffered, read the rest straight into the
				 * record buffer. */
				size_t have = avail - 4;
				memcpy(ep->buf, e->rb + e->pos + 4, have);
				e->pos = e->end = 0;
				int rc = read_exact(ep, ch->fd[0], ep->buf + have, len - have, 0);
				if (rc)
					return rc;
				*rec = ep->buf;
				return len;
			}
		}
		if (e->pos) {
			memmove(e->rb, e->rb + e->pos, avail);
			e->pos = 0;
			e->end = avail;
		}
		ssize_t n = read(ch->fd[0], e->rb + e->end, RBUF - e->end);
		if (n > 0) {
			e->end += (size_t)n;
		} else if (n == 0) {
			ep_seterr(ep, "read: unexpected end of file");
			return -EPIPE;
		} else if (errno == EAGAIN) {
			return -EAGAIN;
		} else if (errno != EINTR) {
			ep_seterr(ep, "read: %s", strerror(errno));
			return -errno;
		}
	}
}

static int pipe_recv_end(struct endpoint *ep)
{
	(void)ep;
	return 0;
}

const struct transport tp_pipe = {
	.name = "pipe",
	.desc = "pipe, 4-byte length prefix",
	.setup = pipe_setup,
	.open = pipe_open,
	.close = pipe_close,
	.teardown = pipe_teardown,
	.send_begin = pipe_send_begin,
	.send_end = pipe_send_end,
	.recv_begin = pipe_recv_begin,
	.recv_end = pipe_recv_end,
	.describe = pipe_describe,
};
