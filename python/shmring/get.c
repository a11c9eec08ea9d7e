/*
 * get.c - get, get_nowait, get_bytes, get_many, get_bytes_many.
 *
 * A get takes from the head generation (ctl.c), waiting there with the
 * library's wait; a head that is closed and drained (-EPIPE) while the
 * chain has moved on is left behind for the next one.  Each item taken
 * gives its place under maxsize back (took).
 */
#include "pyshmring.h"

#include <errno.h>
#include <unistd.h>

struct peek_ctx {
	struct shmring     *r;
	struct shmring_span span;
};
static ssize_t op_peek(void *p, int64_t timeout_ns)
{
	struct peek_ctx *c = p;
	return shmring_peek(c->r, &c->span, timeout_ns);
}

void took(RingObject *ring, int64_t n)
{
	if (ring->maxsize && n > 0)
		shmring_sem_release(&ring->ctl->room, n);
}

/* Run op on the head generation, moving along the chain.  On success the
 * generation stays pinned in *gp (the caller unpins it). */
static ssize_t get_chain(QueueObject *q, ring_op op, struct shmring **rp, void *ctx,
                         const struct tmo *t, struct gen **gp)
{
	for (;;) {
		struct gen *g = gen_head(q->ring);
		if (!g)
			return ERR_PY;
		*rp = g->r;
		ssize_t rc = run_op(q, g, op, ctx, t, SHMRING_PRODUCER, 0);
		if (rc >= 0) {
			*gp = g;
			return rc;
		}
		int moved = rc == -EPIPE && gen_advance(q->ring, g);
		gen_unpin(g);
		if (!moved)
			return rc;
	}
}

/* The held-back list of this process, made if need be (NULL: no memory). */
static PyObject *pending_list(QueueObject *q)
{
	if (!queue_pending(q)) {
		q->pending = PyList_New(0);
		q->pending_pid = getpid();
	}
	return q->pending;
}

/* Take the first held-back record out of the line (a new reference).  Out
 * before any Python code runs (unpickling may run some, and another thread
 * get() then): each record is delivered once (two threads decoding the
 * same borrowed first item delivered it twice, or crashed). */
static PyObject *pending_take(QueueObject *q)
{
	PyObject *rec = PyList_GET_ITEM(q->pending, 0);
	Py_INCREF(rec);
	if (PyList_SetSlice(q->pending, 0, 1, NULL) < 0)
		PyErr_Clear(); /* (a one-item slice of a list: cannot fail) */
	if (PyList_GET_SIZE(q->pending) == 0)
		Py_CLEAR(q->pending);
	return rec;
}

/* A side segment that could not be read (PermissionError, a full /dev/shm,
 * ...), or a record get_many could not decode: its reference goes back to
 * the front of the line, so the item is not lost; the error is raised. */
static void keep_first(QueueObject *q, PyObject *rec)
{
	PyObject *exc_type, *exc_val, *exc_tb;
	PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
	if (!pending_list(q) || PyList_Insert(q->pending, 0, rec) < 0)
		PyErr_WriteUnraisable((PyObject *)q);
	PyErr_Restore(exc_type, exc_val, exc_tb);
}

/* An error that is not the record's fault (KeyboardInterrupt: Ctrl-C, or
 * a signal handler's): what was taken is kept, and the error raised.  Not
 * every BaseException: a record whose unpickling raises SystemExit, say,
 * would stay first in line and jam the queue. */
static int interrupted(void)
{
	return PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
}

/* Records taken from the ring by get_many but not delivered (one after a
 * record that failed to unpickle) come out first, in order: raw records
 * (bytes), or objects already decoded (a 1-tuple: get_many interrupted,
 * keep_objects).  Decodes the first; on failure it is dropped (and the
 * error raised) only if drop_bad and the record is at fault, else it goes
 * back to the front of the line. */
static PyObject *pop_pending(QueueObject *q, int raw, int drop_bad)
{
	PyObject *rec = pending_take(q);
	if (PyTuple_Check(rec)) {
		PyObject *obj = PyTuple_GET_ITEM(rec, 0);
		Py_INCREF(obj);
		Py_DECREF(rec);
		return obj;
	}
	PyObject *obj = raw ? rec : decode((const unsigned char *)PyBytes_AS_STRING(rec),
	                                   (size_t)PyBytes_GET_SIZE(rec));
	if (raw)
		Py_INCREF(obj);
	if (!obj && (!drop_bad || interrupted()))
		keep_first(q, rec);
	Py_DECREF(rec);
	return obj;
}

/* get_many interrupted (KeyboardInterrupt, ...) after it had decoded the
 * objects in out: back to the front of the line, in order, so that the
 * interrupt propagates and nothing is lost.  The interrupt was cleared into
 * PyErr_Clear() before, and the call returned what it had (a review found
 * it, 2026-12-06). */
static void keep_objects(QueueObject *q, PyObject *out, int raw)
{
	PyObject *exc_type, *exc_val, *exc_tb;
	PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
	Py_ssize_t n = PyList_GET_SIZE(out);
	for (Py_ssize_t j = n - 1; j >= 0; j--) {
		/* raw (get_bytes_many): the records' own bytes, kept as records */
		PyObject *t = PyList_GET_ITEM(out, j);
		if (raw)
			Py_INCREF(t); /* (no Py_NewRef: CPython 3.9 too) */
		else
			t = PyTuple_Pack(1, t);
		if (!t || !pending_list(q) || PyList_Insert(q->pending, 0, t) < 0)
			PyErr_WriteUnraisable((PyObject *)q); /* lost: out of memory */
		Py_XDECREF(t);
	}
	PyErr_Restore(exc_type, exc_val, exc_tb);
}

/* Keep recs[from..n) for the next get. */
static void keep_pending(QueueObject *q, const struct iovec *recs, ssize_t from, ssize_t n)
{
	PyObject *exc_type, *exc_val, *exc_tb;
	PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
	pending_list(q);
	for (ssize_t j = from; j < n && q->pending; j++) {
		PyObject *b = PyBytes_FromStringAndSize(recs[j].iov_base, (Py_ssize_t)recs[j].iov_len);
		if (!b || PyList_Append(q->pending, b) < 0)
			PyErr_WriteUnraisable((PyObject *)q); /* lost: out of memory */
		Py_XDECREF(b);
	}
	PyErr_Restore(exc_type, exc_val, exc_tb);
}

/* A reference to a side segment: its object (__init__.py _get_large).  A
 * segment that could not be read stays first in line (keep_first), but for
 * one that is gone (removed from /dev/shm by hand, say): kept, it raised
 * FileNotFoundError from every get after it, and the items behind it never
 * came out.  Its item is lost; the error says so once. */
static PyObject *get_large(QueueObject *q, PyObject *rec)
{
	PyObject *obj = large_object(rec);
	if (!obj && (interrupted() || (PyErr_ExceptionMatches(PyExc_OSError) &&
	                               !PyErr_ExceptionMatches(PyExc_FileNotFoundError))))
		keep_first(q, rec);
	return obj;
}

/* Take one record; decode it (raw = 0) or return its bytes (raw = 1). */
static PyObject *do_get(QueueObject *q, PyObject *block, PyObject *timeout, int raw)
{
	if (check_usable(q) < 0)
		return NULL;
	if (queue_pending(q)) {
		PyObject *rec = PyList_GET_ITEM(q->pending, 0);
		if (!raw && PyBytes_Check(rec) && PyBytes_GET_SIZE(rec) &&
		    PyBytes_AS_STRING(rec)[0] == TAG_LARGE) {
			rec = pending_take(q);
			PyObject *obj = get_large(q, rec);
			Py_DECREF(rec);
			return obj;
		}
		return pop_pending(q, raw, 1);
	}
	struct tmo t;
	if (make_tmo(block, timeout, &t) < 0)
		return NULL;
	RingObject *ring = q->ring;
	struct peek_ctx c;
	struct gen *g;
	ssize_t rc = get_chain(q, op_peek, &c.r, &c, &t, &g);
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		gen_rearm(ring);
	if (rc < 0)
		return raise_for(rc, Empty);
	took(ring, 1);
	const unsigned char *p = c.span.data;
	size_t len = c.span.len;
	PyObject *obj;
	if (raw) {
		obj = bytes_copy(p, len);
	} else if (len && p[0] == TAG_LARGE) {
		/* copy the reference out first: no ring space held while we work */
		PyObject *rec = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)len);
		shmring_release(c.r, &c.span);
		gen_unpin(g);
		if (!rec)
			return NULL;
		obj = get_large(q, rec);
		Py_DECREF(rec);
		return obj;
	} else {
		obj = decode(p, len);
	}
	shmring_release(c.r, &c.span);
	gen_unpin(g);
	return obj;
}

static const char *const get_names[] = { "block", "timeout" };

PyObject *Queue_get(QueueObject *q, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[2] = { NULL, NULL };
	if ((nargs || kwnames) &&
	    parse_args("get", args, nargs, kwnames, get_names, 2, 0, a) < 0)
		return NULL;
	return do_get(q, a[0], a[1], 0);
}

PyObject *Queue_get_nowait(QueueObject *q, PyObject *unused)
{
	return do_get(q, Py_False, NULL, 0);
}

PyObject *Queue_get_bytes(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames)
{
	PyObject *a[2] = { NULL, NULL };
	if ((nargs || kwnames) &&
	    parse_args("get_bytes", args, nargs, kwnames, get_names, 2, 0, a) < 0)
		return NULL;
	return do_get(q, a[0], a[1], 1);
}

struct getmany_ctx {
	struct shmring *r;
	void           *buf;
	size_t          cap;
	struct iovec   *recs;
	size_t          max;
};
static ssize_t op_get_many(void *p, int64_t timeout_ns)
{
	struct getmany_ctx *c = p;
	return shmring_get_many(c->r, c->buf, c->cap, c->recs, c->max, timeout_ns);
}

/* get_many(block=True, timeout=None, max_items=None): a list of at least one
 * item (waiting for the first as get() does), and then as many more as are
 * ready now, up to max_items. */
static PyObject *do_get_many(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames, int raw)
{
	static const char *const names[] = { "block", "timeout", "max_items" };
	PyObject *a[3] = { NULL, NULL, NULL };
	if ((nargs || kwnames) &&
	    parse_args(raw ? "get_bytes_many" : "get_many", args, nargs, kwnames, names, 3, 0, a) < 0)
		return NULL;
	if (check_usable(q) < 0)
		return NULL;
	Py_ssize_t max_items = PY_SSIZE_T_MAX;
	if (a[2] && a[2] != Py_None) {
		max_items = PyLong_AsSsize_t(a[2]);
		if (max_items == -1 && PyErr_Occurred())
			return NULL;
		if (max_items < 1) {
			PyErr_SetString(PyExc_ValueError, "max_items must be at least 1");
			return NULL;
		}
	}
	struct tmo t;
	if (make_tmo(a[0], a[1], &t) < 0)
		return NULL;
	PyObject *out = PyList_New(0);
	if (!out)
		return NULL;
	/* records taken earlier but not delivered come first */
	while (queue_pending(q) && PyList_GET_SIZE(out) < max_items) {
		PyObject *obj = PyList_GET_SIZE(out) == 0 ? do_get(q, Py_False, NULL, raw)
		                                          : pop_pending(q, raw, 0);
		if (!obj) {
			if (PyList_GET_SIZE(out) == 0) {
				Py_DECREF(out);
				return NULL;
			}
			if (interrupted()) {
				keep_objects(q, out, raw);
				Py_DECREF(out);
				return NULL;
			}
			PyErr_Clear();   /* it stays first in line; deliver what we have */
			return out;
		}
		int ok = PyList_Append(out, obj);
		Py_DECREF(obj);
		if (ok < 0) {
			Py_DECREF(out);
			return NULL;
		}
	}
	if (PyList_GET_SIZE(out) > 0)
		return out;

	RingObject *ring = q->ring;
	struct iovec recs[256];
	/* the ring's buffer, unless another thread of ours is using it */
	unsigned char *buf;
	int own_buf = 0;
	if (!ring->getbuf_busy && (ring->getbuf || (ring->getbuf = PyMem_RawMalloc(GETMANY_BUF)))) {
		buf = ring->getbuf;
		ring->getbuf_busy = 1;
	} else {
		buf = PyMem_RawMalloc(GETMANY_BUF);
		own_buf = 1;
	}
	if (!buf) {
		Py_DECREF(out);
		return PyErr_NoMemory();
	}
	struct tmo now_only = { TMO_NONBLOCK, 0 };
	const struct tmo *tp = &t;
	Py_ssize_t got = 0;
	while (got < max_items) {
		size_t want = (size_t)(max_items - got < 256 ? max_items - got : 256);
		struct getmany_ctx c = { NULL, buf, GETMANY_BUF, recs, want };
		struct gen *g;
		ssize_t rc = get_chain(q, op_get_many, &c.r, &c, tp, &g);
		if (rc == -EMSGSIZE) {
			/* the next record alone is bigger than our buffer */
			PyObject *obj = do_get(q, Py_False, NULL, raw);
			if (!obj) {
				if (!PyErr_ExceptionMatches(Empty)) {
					/* raised, and what was taken before it stays
					 * first in line (it was dropped: a review
					 * found it, 2026-12-06) */
					if (got)
						keep_objects(q, out, raw);
					goto fail;
				}
				/* another consumer took it first: with nothing
				 * yet, wait again as get() does (a blocking
				 * get_many raised Empty here) */
				PyErr_Clear();
				if (got)
					break;
				continue;
			}
			int ok = PyList_Append(out, obj);
			Py_DECREF(obj);
			if (ok < 0)
				goto fail;
			got++;
			tp = &now_only;
			continue;
		}
		if (rc < 0) {
			if (rc == -EAGAIN || rc == -ETIMEDOUT)
				gen_rearm(ring);
			if (got && (rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EPIPE))
				break;
			raise_for(rc, Empty);
			goto fail;
		}
		gen_unpin(g);   /* the records are copied into buf */
		took(ring, rc);
		/* Decode them all.  If one fails: with nothing to deliver yet, raise
		 * its error (it is consumed, as with get()); otherwise deliver what
		 * we have and keep it for the next call.  Either way the records
		 * after it are kept, never lost. */
		for (ssize_t i = 0; i < rc; i++) {
			const unsigned char *p = recs[i].iov_base;
			size_t len = recs[i].iov_len;
			PyObject *obj = raw ? PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)len)
			                    : decode(p, len);
			if (!obj) {
				if (interrupted()) { /* nothing of it is the record's fault */
					keep_pending(q, recs, i, rc);
					keep_objects(q, out, raw);
					goto fail;
				}
				if (got == 0) {
					/* consumed (as get()), but for a side segment that
					 * could not be read, which stays first in line as
					 * get_large keeps it (get_many dropped it, and left
					 * its file: a review found it, 2026-12-06) */
					int large_kept = !raw && len && p[0] == TAG_LARGE &&
					                  PyErr_ExceptionMatches(PyExc_OSError) &&
					                  !PyErr_ExceptionMatches(PyExc_FileNotFoundError);
					keep_pending(q, recs, large_kept ? i : i + 1, rc);
					goto fail;
				}
				PyErr_Clear();
				keep_pending(q, recs, i, rc);
				goto done;
			}
			int ok = PyList_Append(out, obj);
			Py_DECREF(obj);
			if (ok < 0) {
				keep_pending(q, recs, i + 1, rc);
				goto fail;
			}
			got++;
		}
		if ((size_t)rc < want)
			break;   /* took all that was ready (or all that fit) */
		tp = &now_only;
	}
done:
	if (own_buf)
		PyMem_RawFree(buf);
	else
		ring->getbuf_busy = 0;
	return out;
fail:
	Py_CLEAR(out);
	goto done;
}

PyObject *Queue_get_many(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
	return do_get_many(q, args, nargs, kwnames, 0);
}

PyObject *Queue_get_bytes_many(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
	return do_get_many(q, args, nargs, kwnames, 1);
}
