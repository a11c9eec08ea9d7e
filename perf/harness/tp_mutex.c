/*
 * tp_mutex.c - a shared-memory ring guarded by one process-shared mutex and
 * two condition variables: the design of faster-fifo and of
 * Boost.Interprocess message_queue, written small.
 *
 * A byte ring of length-prefixed records (8-byte header, payload padded to 8
 * bytes, wrapping by splitting the copy).  put: lock; while no room, wait on
 * not_full; copy in; signal not_empty; unlock.  get: lock; while empty, wait
 * on not_empty; copy out; signal not_full; unlock.  Copies happen under the
 * lock, as in faster-fifo.  Spin mode: the same, returning -EAGAIN instead of
 * waiting.
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct mring {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	uint64_t head, tail;		/* bytes ever taken / ever put */
	uint64_t cap;			/* a multiple of 8 */
	_Alignas(CACHE_LINE) unsigned char data[];
};

struct mring_ch {
	struct mring *r;
	size_t map_len;
};

static size_t rec_room(size_t len)
{
	return 8 + ((len + 7) & ~(size_t)7);
}

static int mr_setup(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen)
{
	struct mring_ch *ch = xcalloc(1, sizeof *ch);
	size_t cap = (cfg->queue_bytes + 7) & ~(size_t)7;
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;

	if (rec_room(cfg->rec_size) > cap) {
		snprintf(why, whylen, "record over the ring's %zu bytes", cap);
		free(ch);
		return 1;
	}
	ch->map_len = sizeof(struct mring) + cap;
	ch->r = shared_alloc(ch->map_len);
	ch->r->cap = cap;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&ch->r->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	pthread_cond_init(&ch->r->not_empty, &ca);
	pthread_cond_init(&ch->r->not_full, &ca);
	pthread_condattr_destroy(&ca);
	*chp = ch;
	return 0;
}

static void mr_prefault(void *chv, const struct chan_cfg *cfg)
{
	struct mring_ch *ch = chv;
	(void)cfg;
	shared_prefault(ch->r->data, ch->r->cap);
}

static void mr_teardown(void *chv, const struct chan_cfg *cfg)
{
	struct mring_ch *ch = chv;

	(void)cfg;
	if (!ch)
		return;
	shared_free(ch->r, ch->map_len);
	free(ch);
}

static void mr_describe(void *chv, const struct chan_cfg *cfg, char *buf, size_t len)
{
	struct mring_ch *ch = chv;
	(void)cfg;
	snprintf(buf, len, "byte ring of %llu bytes, 1 process-shared mutex + 2 condvars",
		 (unsigned long long)ch->r->cap);
}

static int mr_open(struct endpoint *ep, int role)
{
	struct mring_ch *ch = ep->ch;

	(void)role;
	shared_prefault(ch->r, ch->map_len);
	return ep_alloc_buf(ep, ep->cfg->rec_size);
}

static void mr_close(struct endpoint *ep)
{
	free(ep->buf);
	ep->buf = NULL;
}

static void copy_in(struct mring *r, uint64_t at, const void *src, size_t len)
{
	size_t off = (size_t)(at % r->cap), first = r->cap - off < len ? r->cap - off : len;

	memcpy(r->data + off, src, first);
	if (first < len)
		memcpy(r->data, (const char *)src + first, len - first);
}

static void copy_out(const struct mring *r, uint64_t at, void *dst, size_t len)
{
	size_t off = (size_t)(at % r->cap), first = r->cap - off < len ? r->cap - off : len;

	memcpy(dst, r->data + off, first);
	if (first < len)
		memcpy((char *)dst + first, r->data, len - first);
}

static int mr_send_begin(struct endpoint *ep, size_t len, void **rec)
{
	(void)len;
	*rec = ep->buf;
	return 0;
}

static int mr_send_end(struct endpoint *ep, size_t len)
{
	struct mring *r = ((struct mring_ch *)ep->ch)->r;
	size_t need = rec_room(len);
	uint64_t hdr = len;

	pthread_mutex_lock(&r->mu);
	while (r->cap - (r->tail - r->head) < need) {
		if (ep->cfg->nonblock) {
			pthread_mutex_unlock(&r->mu);
			return -EAGAIN;
		}
		pthread_cond_wait(&r->not_full, &r->mu);
	}
	copy_in(r, r->tail, &hdr, 8);
	copy_in(r, r->tail + 8, ep->buf, len);
	r->tail += need;
	pthread_cond_signal(&r->not_empty);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

static ssize_t mr_recv_begin(struct endpoint *ep, const void **rec)
{
	struct mring *r = ((struct mring_ch *)ep->ch)->r;
	uint64_t len;

	pthread_mutex_lock(&r->mu);
	while (r->tail == r->head) {
		if (ep->cfg->nonblock) {
			pthread_mutex_unlock(&r->mu);
			return -EAGAIN;
		}
		pthread_cond_wait(&r->not_empty, &r->mu);
	}
	copy_out(r, r->head, &len, 8);
	if (len > ep->buf_len) {
		pthread_mutex_unlock(&r->mu);
		ep_seterr(ep, "mutex ring: record of %llu bytes", (unsigned long long)len);
		return -EBADMSG;
	}
	copy_out(r, r->head + 8, ep->buf, (size_t)len);
	r->head += rec_room((size_t)len);
	pthread_cond_signal(&r->not_full);
	pthread_mutex_unlock(&r->mu);
	*rec = ep->buf;
	return (ssize_t)len;
}

static int mr_recv_end(struct endpoint *ep)
{
	(void)ep;
	return 0;
}

const struct transport tp_mutex_ring = {
	.name = "mutex-ring",
	.desc = "shm ring, 1 mutex + 2 condvars",
	.setup = mr_setup,
	.prefault = mr_prefault,
	.open = mr_open,
	.close = mr_close,
	.teardown = mr_teardown,
	.send_begin = mr_send_begin,
	.send_end = mr_send_end,
	.recv_begin = mr_recv_begin,
	.recv_end = mr_recv_end,
	.describe = mr_describe,
};
