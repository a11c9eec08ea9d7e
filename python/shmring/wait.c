/*
 * wait.c - timeouts and waiting.  Every wait is the library's own (a ring's
 * put/get/peek/join or a shmring_sem acquire, with its spin and futex
 * sleep): this file only cuts a wait into slices of at most SLICE_NS run
 * without the GIL, taking the GIL back between slices to run signal
 * handlers (Ctrl-C raises KeyboardInterrupt within a slice) and to see
 * close().  The first attempt of every call is made holding the GIL with
 * timeout 0 (no system call when it succeeds).
 */
#include "pyshmring.h"

#include <errno.h>
#include <time.h>

int make_tmo(PyObject *block, PyObject *timeout, struct tmo *t)
{
	int b = 1;
	if (block && block != Py_True) {
		b = PyObject_IsTrue(block);
		if (b < 0)
			return -1;
	}
	if (!b) {
		t->mode = TMO_NONBLOCK;
		return 0;
	}
	if (!timeout || timeout == Py_None) {
		t->mode = TMO_FOREVER;
		return 0;
	}
	double s = PyFloat_AsDouble(timeout);
	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (s != s) {
		PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
		return -1;
	}
	if (s <= 0) {
		t->mode = TMO_NONBLOCK;   /* as multiprocessing: a negative timeout polls */
		return 0;
	}
	if (s > 1e9) {
		t->mode = TMO_FOREVER;
		return 0;
	}
	t->mode = TMO_DEADLINE;
	t->deadline = now_ns() + (int64_t)(s * 1e9);
	return 0;
}

static int ring_is_closed(struct shmring *r)
{
	struct shmring_info i;
	return shmring_info(r, &i) == 0 && i.closed;
}

/* Run op until it succeeds, fails for good, or t runs out.  Returns op's
 * result (>= 0), -EAGAIN / -ETIMEDOUT (ran out), -EPIPE (g's ring is closed:
 * shut down, or a full generation the chain has moved past), another
 * negative errno, or ERR_PY.
 *
 * -EPIPE from the library also means "end of stream" (every producer that
 * ever put has gone) for a get, or "broken pipe" (every consumer has gone)
 * for a put.  A multiprocessing queue has neither: another process may put
 * or get later.  So unless the ring was really closed, declare the missing
 * role on this handle (which ends the condition while this process lives)
 * and go on waiting.  g may be NULL for an op on no ring (epipe_role 0, or
 * RUN_OP_AFTER_CLOSE alone: no role to declare). */
ssize_t run_op(QueueObject *q, struct gen *g, ring_op op, void *ctx, const struct tmo *t,
               unsigned epipe_role, int nogil_first)
{
	int eof_poll = 0, slices = 0;
	ssize_t rc = (nogil_first && t->mode != TMO_NONBLOCK) ? -EAGAIN : op(ctx, 0);
	for (;;) {
		if (rc >= 0)
			return rc;
		if (rc == -EPIPE) {
			if (!epipe_role || !g || ring_is_closed(g->r))
				return -EPIPE;
			if (!(g->declared & epipe_role) && shmring_declare(g->r, epipe_role) == 0) {
				g->declared |= epipe_role;
				rc = op(ctx, 0);
				continue;
			}
			eof_poll = 1;   /* could not declare (table full?): poll */
			rc = -EAGAIN;
		}
		if (rc == -ENOBUFS) {
			/* SHMRING_MAX_INFLIGHT calls of this process's threads are
			 * already in the library on this handle (each sleeping one
			 * holds a slot): wait outside it this slice, polling. */
			eof_poll = 1;
			rc = -EAGAIN;
		}
		if (rc != -EAGAIN && rc != -ETIMEDOUT)
			return rc;
		if (t->mode == TMO_NONBLOCK)
			return -EAGAIN;
		int64_t slice = SLICE_NS;
		if (t->mode == TMO_DEADLINE) {
			int64_t left = t->deadline - now_ns();
			if (left <= 0)
				return -ETIMEDOUT;
			if (left < slice)
				slice = left;
		}
		if (slices++ > 0) {
			if (PyErr_CheckSignals() < 0)
				return ERR_PY;
			if (!(epipe_role & RUN_OP_AFTER_CLOSE) && is_closed(q)) {
				PyErr_Format(PyExc_ValueError, "Queue %R is closed", (PyObject *)q);
				return ERR_PY;
			}
		}
		if (eof_poll) {
			struct timespec ts = { 0, slice < EOF_POLL_NS ? slice : EOF_POLL_NS };
			Py_BEGIN_ALLOW_THREADS
			nanosleep(&ts, NULL);
			rc = op(ctx, 0);
			Py_END_ALLOW_THREADS
			if (rc == -ENOBUFS)
				rc = -EAGAIN;
			else if (rc != -EPIPE)
				eof_poll = 0;   /* the library may take the next slice again */
		} else {
			Py_BEGIN_ALLOW_THREADS
			rc = op(ctx, slice);
			Py_END_ALLOW_THREADS
		}
	}
}

/* Claim between 1 and want places under maxsize; returns how many. */
struct sem_ctx {
	struct qctl *ctl;
	int64_t      want;
};
static ssize_t op_sem(void *p, int64_t timeout_ns)
{
	struct sem_ctx *c = p;
	if (atomic_load_explicit(&c->ctl->shut, memory_order_acquire))
		return -EPIPE;
	return (ssize_t)shmring_sem_acquire(&c->ctl->room, c->want, timeout_ns);
}

ssize_t sem_claim(QueueObject *q, int64_t want, const struct tmo *t)
{
	struct sem_ctx c = { q->ring->ctl, want };
	return run_op(q, NULL, op_sem, &c, t, 0, 0);
}

/* Map a failed result to the exception a queue raises. */
PyObject *raise_for(ssize_t rc, PyObject *timeout_exc)
{
	if (rc == ERR_PY)
		return NULL;
	if (rc == -EAGAIN || rc == -ETIMEDOUT) {
		PyErr_SetNone(timeout_exc);
		return NULL;
	}
	if (rc == -EPIPE) {
		PyErr_SetString(ShutDown, "the queue has been shut down");
		return NULL;
	}
	if (rc == -EBADMSG) {
		PyErr_SetString(PyExc_ValueError, "the queue's shared state is corrupt");
		return NULL;
	}
	return set_errno_error((int)rc);
}
