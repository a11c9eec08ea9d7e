/*
 * put.c - put, put_nowait, put_bytes, put_many.
 *
 * A put claims a place under maxsize (the control page's shmring_sem, if the
 * queue has a maxsize), counts a task (JoinableQueue: the control page's
 * latch, before the record is visible, as the library's join counter does),
 * then writes the record into the tail generation without waiting.  A full
 * tail grows the chain (ctl.c, gen_grow) instead of blocking: only maxsize
 * (or memory) bounds a queue.
 */
#include "pyshmring.h"

#include <errno.h>

struct put_ctx {
	struct shmring     *r;
	const struct iovec *iov;
	size_t              n;       /* putv: iovecs of one record; put_many: records */
};
static ssize_t op_putv(void *p, int64_t timeout_ns)
{
	struct put_ctx *c = p;
	return shmring_putv(c->r, c->iov, (int)c->n, timeout_ns);
}
static ssize_t op_put_many(void *p, int64_t timeout_ns)
{
	struct put_ctx *c = p;
	return shmring_put_many(c->r, c->iov, c->n, timeout_ns);
}

/* Put into the tail generation, growing the chain while it is full.
 * Returns op's result (putv: 0; put_many: records put, >= 1), -EPIPE (shut
 * down), ERR_PY, or another negative errno (-ENOSPC: no memory for a new
 * generation; nothing was put). */
static ssize_t put_chain(QueueObject *q, ring_op op, struct put_ctx *c, int nogil)
{
	static const struct tmo now = { TMO_NONBLOCK, 0 };
	RingObject *ring = q->ring;
	for (;;) {
		if (atomic_load_explicit(&ring->ctl->shut, memory_order_acquire))
			return -EPIPE;
		struct gen *g = gen_tail(ring);
		if (!g)
			return ERR_PY;
		c->r = g->r;
		ssize_t rc;
		if (nogil) {
			Py_BEGIN_ALLOW_THREADS
			rc = op(c, 0);
			Py_END_ALLOW_THREADS
			if (rc == -EPIPE)
				rc = run_op(q, g, op, c, &now, SHMRING_CONSUMER, 0);
		} else {
			rc = run_op(q, g, op, c, &now, SHMRING_CONSUMER, 0);
		}
		if (rc == -EAGAIN)
			rc = gen_grow(ring, g) ? : -EAGAIN;
		uint64_t was = g->g;
		gen_unpin(g);
		if (rc >= 0 || (rc != -EAGAIN && rc != -EPIPE))
			return rc;
		if (rc == -EPIPE &&
		    atomic_load_explicit(&ring->ctl->tail, memory_order_acquire) == was)
			return -EPIPE;   /* closed and not moved past: shut down */
	}
}

/* Room under maxsize and a task, for n records; undone by put_undo. */
static ssize_t put_claim(QueueObject *q, int64_t n, const struct tmo *t)
{
	struct qctl *c = q->ring->ctl;
	if (atomic_load_explicit(&c->shut, memory_order_acquire))
		return -EPIPE;
	if (q->ring->maxsize) {
		ssize_t k = sem_claim(q, n, t);
		if (k < 0)
			return k;
		n = k;
	}
	if (c->kind == QK_JOINABLE)
		shmring_latch_add(&c->tasks, n);
	return n;
}

static void put_undo(QueueObject *q, int64_t n)
{
	struct qctl *c = q->ring->ctl;
	if (n <= 0)
		return;
	if (c->kind == QK_JOINABLE)
		shmring_latch_add(&c->tasks, -n);
	if (q->ring->maxsize)
		shmring_sem_release(&c->room, n);
}

static ssize_t put_record(QueueObject *q, const struct iovec *iov, int iovcnt, size_t total,
                          const struct tmo *t)
{
	ssize_t rc = put_claim(q, 1, t);
	if (rc < 0)
		return rc;
	struct put_ctx c = { NULL, iov, (size_t)iovcnt };
	rc = put_chain(q, op_putv, &c, total >= NOGIL_COPY_MIN);
	if (rc < 0)
		put_undo(q, 1);
	return rc;
}

static PyObject *do_put(QueueObject *q, PyObject *obj, PyObject *block, PyObject *timeout)
{
	if (check_usable(q) < 0)
		return NULL;
	struct tmo t;
	if (make_tmo(block, timeout, &t) < 0)
		return NULL;
	struct enc e;
	if (encode(&e, obj, q->ring->max_record,
	                  q->ring->ctl->mode, !q->ring->ctl->no_side_segments) < 0) {
		enc_free(&e);
		return NULL;
	}
	ssize_t rc = put_record(q, e.iov, e.iovcnt, e.total, &t);
	if (rc < 0)
		enc_discard(&e);
	enc_free(&e);
	if (rc < 0)
		return raise_for(rc, Full);
	Py_RETURN_NONE;
}

static const char *const put_names[] = { "obj", "block", "timeout" };

PyObject *Queue_put(QueueObject *q, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[3] = { NULL, NULL, NULL };
	if (nargs == 1 && !kwnames)
		a[0] = args[0];
	else if (parse_args("put", args, nargs, kwnames, put_names, 3, 1, a) < 0)
		return NULL;
	return do_put(q, a[0], a[1], a[2]);
}

PyObject *Queue_put_nowait(QueueObject *q, PyObject *obj)
{
	return do_put(q, obj, Py_False, NULL);
}

/* put_bytes(data, block=True, timeout=None): one raw record, no tag. */
PyObject *Queue_put_bytes(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames)
{
	static const char *const names[] = { "data", "block", "timeout" };
	PyObject *a[3] = { NULL, NULL, NULL };
	if (nargs == 1 && !kwnames)
		a[0] = args[0];
	else if (parse_args("put_bytes", args, nargs, kwnames, names, 3, 1, a) < 0)
		return NULL;
	if (check_usable(q) < 0)
		return NULL;
	struct tmo t;
	if (make_tmo(a[1], a[2], &t) < 0)
		return NULL;
	Py_buffer view;
	if (PyObject_GetBuffer(a[0], &view, PyBUF_SIMPLE) < 0)
		return NULL;
	if ((size_t)view.len > q->ring->max_record) {
		PyBuffer_Release(&view);
		PyErr_Format(PyExc_ValueError,
		             "put_bytes: %zd bytes is more than the queue's max_record (%zu); "
		             "use put() for objects of any size",
		             view.len, q->ring->max_record);
		return NULL;
	}
	struct iovec iov = { view.buf, (size_t)view.len };
	ssize_t rc = put_record(q, &iov, 1, iov.iov_len, &t);
	PyBuffer_Release(&view);
	if (rc < 0)
		return raise_for(rc, Full);
	Py_RETURN_NONE;
}

static void discard_from(PyObject *recs, Py_ssize_t from)
{
	for (Py_ssize_t i = from; i < PyList_GET_SIZE(recs); i++) {
		PyObject *b = PyList_GET_ITEM(recs, i);
		if (b && PyBytes_GET_SIZE(b) > 0 && PyBytes_AS_STRING(b)[0] == TAG_LARGE)
			discard_record(b);
	}
}

static void raise_put_many(ssize_t rc, Py_ssize_t done)
{
	if (rc != -EAGAIN && rc != -ETIMEDOUT) {
		raise_for(rc, Full);
		return;
	}
	PyObject *exc = PyObject_CallFunction(Full, "s", "put_many: queue full");
	if (!exc)
		return;
	PyObject *cnt = PyLong_FromSsize_t(done);
	if (cnt) {
		PyObject_SetAttrString(exc, "count", cnt);
		Py_DECREF(cnt);
	}
	PyErr_SetObject(Full, exc);
	Py_DECREF(exc);
}

/* put_many(objs, block=True, timeout=None): put every object, in order.
 * Raises Full (with .count = how many were put) if room under maxsize runs
 * out first. */
PyObject *Queue_put_many(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
	static const char *const names[] = { "objs", "block", "timeout" };
	PyObject *a[3] = { NULL, NULL, NULL };
	if (parse_args("put_many", args, nargs, kwnames, names, 3, 1, a) < 0)
		return NULL;
	if (check_usable(q) < 0)
		return NULL;
	struct tmo t;
	if (make_tmo(a[1], a[2], &t) < 0)
		return NULL;
	/* a tuple of our own: pickling may run code that changes a list */
	PyObject *seq = PySequence_Tuple(a[0]);
	if (!seq)
		return NULL;
	Py_ssize_t n = PyTuple_GET_SIZE(seq);
	PyObject *recs = PyList_New(n);   /* the encoded records, as bytes */
	struct iovec *iov = PyMem_Malloc(sizeof(struct iovec) * (size_t)(n ? n : 1));
	Py_ssize_t done = 0, encoded = 0;
	if (!recs || !iov) {
		PyErr_NoMemory();
		goto out;
	}
	for (; encoded < n; encoded++) {
		struct enc e;
		if (encode(&e, PyTuple_GET_ITEM(seq, encoded), q->ring->max_record,
	                  q->ring->ctl->mode, !q->ring->ctl->no_side_segments) < 0) {
			enc_free(&e);
			break;
		}
		PyObject *b = enc_flat(&e);
		if (!b)
			enc_discard(&e);
		enc_free(&e);
		if (!b)
			break;
		PyList_SET_ITEM(recs, encoded, b);
		iov[encoded] = (struct iovec){ PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b) };
	}
	if (encoded < n) {   /* objects pickled so far may have made side segments */
		discard_from(recs, 0);
		goto out;
	}
	while (done < n) {
		ssize_t k = put_claim(q, n - done, &t);
		if (k < 0) {
			discard_from(recs, done);
			raise_put_many(k, done);
			goto out;
		}
		Py_ssize_t put = 0;
		ssize_t rc = 0;
		while (put < k) {
			struct put_ctx c = { NULL, iov + done + put, (size_t)(k - put) };
			rc = put_chain(q, op_put_many, &c, 0);
			if (rc < 0)
				break;
			put += rc;
		}
		put_undo(q, k - put);
		done += put;
		if (rc < 0) {
			discard_from(recs, done);
			raise_put_many(rc, done);
			goto out;
		}
	}
out:
	PyMem_Free(iov);
	Py_XDECREF(recs);
	Py_DECREF(seq);
	if (PyErr_Occurred())
		return NULL;
	Py_RETURN_NONE;
}
