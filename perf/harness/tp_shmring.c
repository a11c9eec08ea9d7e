/*
 * tp_shmring.c - shmring through its three APIs: copy (put/get), zero-copy
 * (reserve/commit, peek/release) and batches (put_many/get_many).
 *
 * shmring-light is the copy API on a ring made with SHMRING_LIGHT_PUBLISH
 * (a plain store publishes and releases; sleepers pay a membarrier).
 * shmring-inline is the copy API on a ring made with max_record
 * SHMRING_INLINE_MAX_RECORD (48 bytes): the inline layout, one cache line a
 * record (<shmring.h>); only for records that fit.
 *
 * The ring is anonymous (memfd), made by the parent and inherited across
 * fork; each party declares its role before the start gate.  Blocking calls
 * use timeout -1, i.e. the library's own spin-then-futex wait; in spin mode
 * timeout 0 and the harness retries.
 */
#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "shmring.h"
#include "shmring_batch.h"
#include "shmring_zc.h"

struct shm_ch {
	struct shmring *ring;
	size_t capacity, max_record;
};

struct shm_ep {
	struct shmring_span span;
	/* batches */
	int batch;			/* records per put_many / get_many */
	size_t stride;			/* bytes per record in the batch buffers */
	unsigned char *bbuf;
	struct iovec *iov;
	size_t pending, done;		/* producer: filled, already put */
	size_t n, next;			/* consumer: taken, handed out */
};

static int64_t tmo(const struct endpoint *ep)
{
	return ep->cfg->nonblock ? 0 : -1;
}

static int batch_records(size_t rec_size)
{
	size_t b = (256u << 10) / (rec_size ? rec_size : 1);
	return b < 1 ? 1 : b > 32 ? 32 : (int)b;
}

static int shm_setup_max(void **chp, const struct chan_cfg *cfg, size_t max_record,
                         unsigned flags, char *why, size_t whylen)
{
	struct shm_ch *ch = xcalloc(1, sizeof *ch);
	struct shmring_config rc_cfg = { .capacity = cfg->queue_bytes, .max_record = max_record,
		                         .flags = flags };
	int rc = shmring_create(&ch->ring, NULL, &rc_cfg);

	if (rc) {
		snprintf(why, whylen, "shmring_create: %s", shmring_strerror(rc));
		free(ch);
		return rc;
	}
	struct shmring_info info;
	shmring_info(ch->ring, &info);
	ch->capacity = info.capacity;
	ch->max_record = info.max_record;
	if (cfg->rec_size > info.max_record) {
		snprintf(why, whylen, "record over max_record %zu", info.max_record);
		shmring_detach(ch->ring);
		free(ch);
		return 1;
	}
	*chp = ch;
	return 0;
}

static int shm_setup(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen)
{
	return shm_setup_max(chp, cfg, 0, 0, why, whylen);
}

static int shm_setup_light(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen)
{
	return shm_setup_max(chp, cfg, 0, SHMRING_LIGHT_PUBLISH, why, whylen);
}

static int shm_setup_inline(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen)
{
	return shm_setup_max(chp, cfg, SHMRING_INLINE_MAX_RECORD, 0, why, whylen);
}

/* In the parent, before any timing: the ring's pages are allocated (each
 * party maps them into its own page tables again, in shm_open). */
static void shm_prefault(void *chv, const struct chan_cfg *cfg)
{
	struct shm_ch *ch = chv;

	(void)cfg;
	(void)shmring_prefault(ch->ring);	/* best effort: only timing */
}

static void shm_teardown(void *chv, const struct chan_cfg *cfg)
{
	struct shm_ch *ch = chv;

	(void)cfg;
	if (!ch)
		return;
	shmring_detach(ch->ring);
	free(ch);
}

static void shm_describe(void *chv, const struct chan_cfg *cfg, char *buf, size_t len)
{
	struct shm_ch *ch = chv;
	(void)cfg;
	if (g_opt.ring_spin >= 0)
		snprintf(buf, len, "anonymous ring, capacity %zu, max_record %zu, spin %d",
			 ch->capacity, ch->max_record, g_opt.ring_spin);
	else
		snprintf(buf, len, "anonymous ring, capacity %zu, max_record %zu", ch->capacity,
			 ch->max_record);
}

static int shm_open(struct endpoint *ep, int role)
{
	struct shm_ch *ch = ep->ch;
	struct shm_ep *e = xcalloc(1, sizeof *e);
	int rc;

	ep->priv = e;
	if (g_opt.ring_spin >= 0)
		shmring_set_spin(ch->ring, (unsigned)g_opt.ring_spin);
	rc = shmring_declare(ch->ring, role == ROLE_PRODUCER ? SHMRING_PRODUCER : SHMRING_CONSUMER);
	if (rc) {
		ep_seterr(ep, "shmring_declare: %s", shmring_strerror(rc));
		return rc;
	}
	/* A forked party does not inherit the parent's page tables for a
	 * shared mapping: without this it faults every page in again, inside
	 * the timing (the parent's shm_prefault only allocates the pages). */
	rc = shmring_prefault(ch->ring);
	if (rc && rc != -EOPNOTSUPP) {
		ep_seterr(ep, "shmring_prefault: %s", shmring_strerror(rc));
		return rc;
	}
	return ep_alloc_buf(ep, ep->cfg->rec_size);
}

static int batch_open(struct endpoint *ep, int role)
{
	int rc = shm_open(ep, role);
	struct shm_ep *e = ep->priv;

	if (rc)
		return rc;
	e->batch = batch_records(ep->cfg->rec_size);
	e->stride = (ep->cfg->rec_size + 7) & ~(size_t)7;
	e->bbuf = aligned_alloc(CACHE_LINE, (e->stride * (size_t)e->batch + CACHE_LINE - 1) &
						    ~(size_t)(CACHE_LINE - 1));
	e->iov = xcalloc((size_t)e->batch, sizeof *e->iov);
	if (!e->bbuf)
		return -ENOMEM;
	memset(e->bbuf, 0, e->stride * (size_t)e->batch);
	return 0;
}

static void shm_close(struct endpoint *ep)
{
	struct shm_ep *e = ep->priv;

	if (e) {
		free(e->bbuf);
		free(e->iov);
		free(e);
	}
	ep->priv = NULL;
	free(ep->buf);
	ep->buf = NULL;
}

static int err(struct endpoint *ep, const char *what, long rc)
{
	if (rc != -EAGAIN)
		ep_seterr(ep, "%s: %s", what, shmring_strerror((int)rc));
	return (int)rc;
}

/* ---- copy ----------------------------------------------------------------- */

static int copy_send_begin(struct endpoint *ep, size_t len, void **rec)
{
	(void)len;
	*rec = ep->buf;
	return 0;
}

static int copy_send_end(struct endpoint *ep, size_t len)
{
	struct shm_ch *ch = ep->ch;
	int rc = shmring_put(ch->ring, ep->buf, len, tmo(ep));
	return rc ? err(ep, "shmring_put", rc) : 0;
}

static ssize_t copy_recv_begin(struct endpoint *ep, const void **rec)
{
	struct shm_ch *ch = ep->ch;
	ssize_t n = shmring_get(ch->ring, ep->buf, ep->buf_len, tmo(ep));

	if (n < 0)
		return err(ep, "shmring_get", n);
	*rec = ep->buf;
	return n;
}

static int nop_recv_end(struct endpoint *ep)
{
	(void)ep;
	return 0;
}

/* ---- zero-copy -------------------------------------------------------------- */

static int zc_send_begin(struct endpoint *ep, size_t len, void **rec)
{
	struct shm_ch *ch = ep->ch;
	struct shm_ep *e = ep->priv;
	int rc = shmring_reserve(ch->ring, len, &e->span, tmo(ep));

	if (rc)
		return err(ep, "shmring_reserve", rc);
	*rec = e->span.data;
	return 0;
}

static int zc_send_end(struct endpoint *ep, size_t len)
{
	struct shm_ch *ch = ep->ch;
	struct shm_ep *e = ep->priv;
	int rc = shmring_commit(ch->ring, &e->span, len);
	return rc ? err(ep, "shmring_commit", rc) : 0;
}

static ssize_t zc_recv_begin(struct endpoint *ep, const void **rec)
{
	struct shm_ch *ch = ep->ch;
	struct shm_ep *e = ep->priv;
	ssize_t n = shmring_peek(ch->ring, &e->span, tmo(ep));

	if (n < 0)
		return err(ep, "shmring_peek", n);
	*rec = e->span.data;
	return n;
}

static int zc_recv_end(struct endpoint *ep)
{
	struct shm_ch *ch = ep->ch;
	struct shm_ep *e = ep->priv;
	int rc = shmring_release(ch->ring, &e->span);
	return rc ? err(ep, "shmring_release", rc) : 0;
}

/* ---- batches ------------------------------------------------------------------ */

/* Put what is pending; -EAGAIN (spin mode) if not even one record fit. */
static int batch_push(struct endpoint *ep)
{
	struct shm_ch *ch = ep->ch;
	struct shm_ep *e = ep->priv;

	while (e->done < e->pending) {
		ssize_t r = shmring_put_many(ch->ring, e->iov + e->done, e->pending - e->done,
					     tmo(ep));
		if (r < 0)
			return err(ep, "shmring_put_many", r);
		e->done += (size_t)r;
	}
	e->pending = e->done = 0;
	return 0;
}

static int batch_send_begin(struct endpoint *ep, size_t len, void **rec)
{
	struct shm_ep *e = ep->priv;

	if (e->pending == (size_t)e->batch) {
		int rc = batch_push(ep);
		if (rc)
			return rc;
	}
	*rec = e->bbuf + e->pending * e->stride;
	e->iov[e->pending].iov_base = *rec;
	e->iov[e->pending].iov_len = len;
	return 0;
}

static int batch_send_end(struct endpoint *ep, size_t len)
{
	struct shm_ep *e = ep->priv;

	(void)len;
	e->pending++;
	if (e->pending == (size_t)e->batch) {
		int rc = batch_push(ep);
		if (rc && rc != -EAGAIN)
			return rc;	/* -EAGAIN: the next send_begin retries */
	}
	return 0;
}

static int batch_flush(struct endpoint *ep)
{
	return batch_push(ep);
}

static ssize_t batch_recv_begin(struct endpoint *ep, const void **rec)
{
	struct shm_ch *ch = ep->ch;
	struct shm_ep *e = ep->priv;

	if (e->next == e->n) {
		ssize_t n = shmring_get_many(ch->ring, e->bbuf, e->stride * (size_t)e->batch, e->iov,
					     (size_t)e->batch, tmo(ep));
		if (n < 0)
			return err(ep, "shmring_get_many", n);
		e->n = (size_t)n;
		e->next = 0;
	}
	*rec = e->iov[e->next].iov_base;
	return (ssize_t)e->iov[e->next++].iov_len;
}

static size_t batch_buffered(struct endpoint *ep)
{
	struct shm_ep *e = ep->priv;
	return e->n - e->next;
}

/* What the shmring transports share: one ring per channel, made (but for
 * shmring-inline's max_record), mapped, described and closed alike; they
 * differ in the calls that move records. */
#define SHM_CHANNEL_BUT_SETUP \
	.flags = TP_SHMRING, .prefault = shm_prefault, \
	.close = shm_close, .teardown = shm_teardown, .describe = shm_describe
#define SHM_CHANNEL .setup = shm_setup, SHM_CHANNEL_BUT_SETUP
/* The copy API's calls (shmring and shmring-inline). */
#define SHM_COPY_CALLS \
	.open = shm_open, .send_begin = copy_send_begin, .send_end = copy_send_end, \
	.recv_begin = copy_recv_begin, .recv_end = nop_recv_end

const struct transport tp_shmring = {
	.name = "shmring",
	.desc = "shmring put/get (copy)",
	SHM_CHANNEL,
	SHM_COPY_CALLS,
};

const struct transport tp_shmring_inline = {
	.name = "shmring-inline",
	.desc = "shmring put/get, max_record 48: the inline layout",
	.setup = shm_setup_inline,
	SHM_CHANNEL_BUT_SETUP,
	SHM_COPY_CALLS,
};

const struct transport tp_shmring_light = {
	.name = "shmring-light",
	.desc = "shmring put/get on a ring made with SHMRING_LIGHT_PUBLISH",
	.setup = shm_setup_light,
	SHM_CHANNEL_BUT_SETUP,
	SHM_COPY_CALLS,
};

const struct transport tp_shmring_zc = {
	.name = "shmring-zc",
	.desc = "shmring reserve/commit, peek/release",
	SHM_CHANNEL,
	.open = shm_open,
	.send_begin = zc_send_begin,
	.send_end = zc_send_end,
	.recv_begin = zc_recv_begin,
	.recv_end = zc_recv_end,
};

const struct transport tp_shmring_batch = {
	.name = "shmring-batch",
	.desc = "shmring put_many/get_many",
	SHM_CHANNEL,
	.open = batch_open,
	.send_begin = batch_send_begin,
	.send_end = batch_send_end,
	.flush = batch_flush,
	.recv_begin = batch_recv_begin,
	.recv_end = nop_recv_end,
	.buffered = batch_buffered,
};
