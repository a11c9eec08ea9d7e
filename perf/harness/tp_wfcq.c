/*
 * tp_wfcq.c - liburcu's wait-free concurrent queue (wfcqueue) between the
 * threads of one process: the in-process anchor, what a queue can do when
 * it does not cross a process boundary.
 *
 * A record is a malloc'd node (header + payload) enqueued with
 * cds_wfcq_enqueue and taken with cds_wfcq_dequeue_blocking (which takes the
 * queue's dequeue lock; "blocking" there means it may wait for an enqueuer
 * that is mid-way).  The queue itself is unbounded; to bound it like the
 * others, a counter of records in flight is kept under queue_bytes /
 * record size.  Waiting (empty queue, or no credit) spins 2000 pauses, then
 * sleeps on a condition variable, the same shape as shmring's wait.
 */
#define _LGPL_SOURCE
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/wfcqueue.h>

#define SPIN 2000

struct waitq {
	_Alignas(CACHE_LINE) atomic_int waiters;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

struct wfcq_ch {
	struct cds_wfcq_head head;
	_Alignas(CACHE_LINE) struct cds_wfcq_tail tail;
	_Alignas(CACHE_LINE) atomic_long inflight;
	long limit;
	struct waitq not_empty, not_full;
};

struct node {
	struct cds_wfcq_node n;
	size_t len;
	_Alignas(CACHE_LINE) unsigned char data[];
};

struct wfcq_ep {
	struct node *cur;
};

static void waitq_init(struct waitq *w)
{
	atomic_init(&w->waiters, 0);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static void waitq_notify(struct waitq *w)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&w->waiters, memory_order_relaxed)) {
		pthread_mutex_lock(&w->mu);
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
}

/* Wait until ready(arg); spin first, then sleep.  The waiter registers, then
 * re-checks (seq_cst on both sides), so a notify cannot be lost. */
static void waitq_wait(struct waitq *w, int (*ready)(void *), void *arg)
{
	for (int i = 0; i < SPIN; i++) {
		if (ready(arg))
			return;
		cpu_relax();
	}
	pthread_mutex_lock(&w->mu);
	atomic_fetch_add(&w->waiters, 1);
	while (!ready(arg))
		pthread_cond_wait(&w->cv, &w->mu);
	atomic_fetch_sub(&w->waiters, 1);
	pthread_mutex_unlock(&w->mu);
}

static int wq_setup(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen)
{
	struct wfcq_ch *ch;

	(void)why;
	(void)whylen;
	if (posix_memalign((void **)&ch, CACHE_LINE, sizeof *ch))
		return -ENOMEM;
	memset(ch, 0, sizeof *ch);
	cds_wfcq_init(&ch->head, &ch->tail);
	ch->limit = (long)(cfg->queue_bytes / cfg->rec_size);
	if (ch->limit < 1)
		ch->limit = 1;
	atomic_init(&ch->inflight, 0);
	waitq_init(&ch->not_empty);
	waitq_init(&ch->not_full);
	*chp = ch;
	return 0;
}

static void wq_teardown(void *chv, const struct chan_cfg *cfg)
{
	struct wfcq_ch *ch = chv;
	struct cds_wfcq_node *n;

	(void)cfg;
	if (!ch)
		return;
	while ((n = cds_wfcq_dequeue_blocking(&ch->head, &ch->tail)) != NULL)
		free(caa_container_of(n, struct node, n));
	cds_wfcq_destroy(&ch->head, &ch->tail);
	free(ch);
}

static void wq_describe(void *chv, const struct chan_cfg *cfg, char *buf, size_t len)
{
	struct wfcq_ch *ch = chv;
	(void)cfg;
	snprintf(buf, len, "threads of one process; malloc'd nodes; at most %ld in flight",
		 ch->limit);
}

static int wq_open(struct endpoint *ep, int role)
{
	(void)role;
	ep->priv = xcalloc(1, sizeof(struct wfcq_ep));
	return 0;
}

static void wq_close(struct endpoint *ep)
{
	struct wfcq_ep *e = ep->priv;

	if (e)
		free(e->cur);
	free(e);
	ep->priv = NULL;
}

static int has_credit(void *arg)
{
	struct wfcq_ch *ch = arg;
	return atomic_load(&ch->inflight) < ch->limit;
}

static int not_empty(void *arg)
{
	struct wfcq_ch *ch = arg;
	return !cds_wfcq_empty(&ch->head, &ch->tail);
}

static int wq_send_begin(struct endpoint *ep, size_t len, void **rec)
{
	struct wfcq_ep *e = ep->priv;

	if (!e->cur) {
		if (posix_memalign((void **)&e->cur, CACHE_LINE, sizeof(struct node) + len))
			return -ENOMEM;
		cds_wfcq_node_init(&e->cur->n);
		e->cur->len = len;
	}
	*rec = e->cur->data;
	return 0;
}

static int wq_send_end(struct endpoint *ep, size_t len)
{
	struct wfcq_ch *ch = ep->ch;
	struct wfcq_ep *e = ep->priv;

	(void)len;
	/* Take a credit: inflight < limit. */
	for (;;) {
		long f = atomic_load(&ch->inflight);
		if (f < ch->limit) {
			if (atomic_compare_exchange_weak(&ch->inflight, &f, f + 1))
				break;
			continue;
		}
		if (ep->cfg->nonblock)
			return -EAGAIN;
		waitq_wait(&ch->not_full, has_credit, ch);
	}
	cds_wfcq_enqueue(&ch->head, &ch->tail, &e->cur->n);
	e->cur = NULL;
	waitq_notify(&ch->not_empty);
	return 0;
}

static ssize_t wq_recv_begin(struct endpoint *ep, const void **rec)
{
	struct wfcq_ch *ch = ep->ch;
	struct wfcq_ep *e = ep->priv;
	struct cds_wfcq_node *n;

	while ((n = cds_wfcq_dequeue_blocking(&ch->head, &ch->tail)) == NULL) {
		if (ep->cfg->nonblock)
			return -EAGAIN;
		waitq_wait(&ch->not_empty, not_empty, ch);
	}
	free(e->cur);
	e->cur = caa_container_of(n, struct node, n);
	*rec = e->cur->data;
	return (ssize_t)e->cur->len;
}

static int wq_recv_end(struct endpoint *ep)
{
	struct wfcq_ch *ch = ep->ch;
	struct wfcq_ep *e = ep->priv;

	free(e->cur);
	e->cur = NULL;
	atomic_fetch_sub(&ch->inflight, 1);
	waitq_notify(&ch->not_full);
	return 0;
}

const struct transport tp_wfcqueue = {
	.name = "wfcqueue",
	.desc = "liburcu wfcqueue, threads",
	.flags = TP_INPROC,
	.setup = wq_setup,
	.open = wq_open,
	.close = wq_close,
	.teardown = wq_teardown,
	.send_begin = wq_send_begin,
	.send_end = wq_send_end,
	.recv_begin = wq_recv_begin,
	.recv_end = wq_recv_end,
	.describe = wq_describe,
};
