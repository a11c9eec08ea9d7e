/*
 * queue.c - the QueueBase type: construction, argument parsing, and the
 * small methods (qsize, empty, full, close, task_done, join, fileno).  The
 * put and get families live in put.c and get.c.
 */
#include "pyshmring.h"

#include <errno.h>
#include <unistd.h>

static int Queue_init(QueueObject *self, PyObject *args, PyObject *kw)
{
	PyObject *ring;
	if (check_setup() < 0 || !PyArg_ParseTuple(args, "O!:QueueBase", &Ring_Type, &ring))
		return -1;
	if (self->ring) {
		PyErr_SetString(PyExc_RuntimeError, "queue already initialised");
		return -1;
	}
	Py_INCREF(ring);
	self->ring = (RingObject *)ring;
	self->closed = 0;
	return 0;
}

static void Queue_dealloc(QueueObject *self)
{
	PyObject_GC_UnTrack(self);
	Py_CLEAR(self->ring);
	Py_CLEAR(self->pending);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Queue_traverse(QueueObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->ring);
	Py_VISIT(self->pending);
	return 0;
}

static int Queue_clear(QueueObject *self)
{
	Py_CLEAR(self->pending);
	return 0;
}

/* close() is this process's: a child forked after it has an open handle,
 * as multiprocessing's does (its reader and writer are the child's own). */
int is_closed(QueueObject *q)
{
	return q->closed && q->closed_pid == getpid();
}

PyObject *queue_pending(QueueObject *q)
{
	if (q->pending && q->pending_pid != getpid())
		Py_CLEAR(q->pending);
	return q->pending;
}

int check_ring(QueueObject *q)
{
	if (!q->ring) {
		PyErr_SetString(PyExc_ValueError, "Queue is not initialised");
		return -1;
	}
	return 0;
}

int check_usable(QueueObject *q)
{
	if (!q->ring) {
		PyErr_SetString(PyExc_ValueError, "Queue is not initialised");
		return -1;
	}
	if (is_closed(q)) {
		PyErr_Format(PyExc_ValueError, "Queue %R is closed", (PyObject *)q);
		return -1;
	}
	return 0;
}

/* Fill out[0..n) from positional args then keywords, by name.  Missing
 * entries stay as they were (the caller's defaults). */
int parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames, const char *const *names, int n, int required,
                      PyObject **out)
{
	if (nargs > n) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fname, n,
		             nargs);
		return -1;
	}
	for (Py_ssize_t i = 0; i < nargs; i++)
		out[i] = args[i];
	int have = (int)nargs;
	if (kwnames) {
		Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
		for (Py_ssize_t k = 0; k < nk; k++) {
			PyObject *key = PyTuple_GET_ITEM(kwnames, k);
			int j;
			for (j = 0; j < n; j++)
				if (PyUnicode_CompareWithASCIIString(key, names[j]) == 0)
					break;
			if (j == n) {
				PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'",
				             fname, key);
				return -1;
			}
			if (j < nargs) {
				PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
				             fname, names[j]);
				return -1;
			}
			out[j] = args[nargs + k];
			if (j < required)
				have++;
		}
	}
	if (have < required) {
		PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname,
		             names[have]);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------ the small methods */

static PyObject *Queue_qsize(QueueObject *q, PyObject *unused)
{
	if (!q->ring)
		return PyLong_FromLong(0);
	RingObject *ring = q->ring;
	PyObject *pending = queue_pending(q);
	Py_ssize_t extra = pending ? PyList_GET_SIZE(pending) : 0;
	if (ring->maxsize) {
		int64_t v = shmring_sem_value(&ring->ctl->room);
		int64_t c = v >= 0 && v <= ring->maxsize ? ring->maxsize - v : 0;
		return PyLong_FromLongLong(c + extra);
	}
	/* the records of every generation from head to tail */
	uint64_t head = atomic_load_explicit(&ring->ctl->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&ring->ctl->tail, memory_order_acquire);
	size_t n = 0;
	for (uint64_t k = head; k <= tail; k++) {
		struct gen *g = gen_at(ring, k);
		struct shmring_info i;
		if (g && shmring_info(g->r, &i) == 0)
			n += i.records;
		if (g)
			gen_unpin(g);
	}
	return PyLong_FromSsize_t((Py_ssize_t)n + extra);
}

static PyObject *Queue_empty(QueueObject *q, PyObject *unused)
{
	if (!q->ring || queue_pending(q))
		return PyBool_FromLong(!q->ring ? 1 : 0);
	RingObject *ring = q->ring;
	for (int tries = 0; tries < 64; tries++) {
		struct gen *g = gen_head(ring);
		if (!g) {
			PyErr_Clear();
			Py_RETURN_TRUE;
		}
		ssize_t n = shmring_next_len(g->r);
		int moved = n == -EPIPE && gen_advance(ring, g);
		gen_unpin(g);
		if (!moved)
			return PyBool_FromLong(n < 0);
	}
	Py_RETURN_TRUE;
}

/* full(): only maxsize makes a queue full; a full ring grows the chain. */
static PyObject *Queue_full(QueueObject *q, PyObject *unused)
{
	if (!q->ring || !q->ring->maxsize)
		Py_RETURN_FALSE;
	return PyBool_FromLong(shmring_sem_value(&q->ring->ctl->room) == 0);
}

static PyObject *Queue_close(QueueObject *q, PyObject *unused)
{
	q->closed = 1;
	q->closed_pid = getpid();
	Py_RETURN_NONE;
}

static PyObject *Queue_noop(QueueObject *q, PyObject *unused)
{
	Py_RETURN_NONE;
}

static PyObject *Queue_task_done(QueueObject *q, PyObject *unused)
{
	if (check_ring(q) < 0) /* after close() too, as multiprocessing's */
		return NULL;
	int rc = shmring_latch_add(&q->ring->ctl->tasks, -1);
	if (rc == -ERANGE) {
		PyErr_SetString(PyExc_ValueError, "task_done() called too many times");
		return NULL;
	}
	if (rc < 0)
		return set_errno_error(rc);
	Py_RETURN_NONE;
}

static ssize_t op_join(void *p, int64_t timeout_ns)
{
	return shmring_latch_wait(p, timeout_ns);
}

/* join(timeout=None): True once every task is done, False on timeout. */
static PyObject *Queue_join(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
	static const char *const names[] = { "timeout" };
	PyObject *a[1] = { NULL };
	if ((nargs || kwnames) && parse_args("join", args, nargs, kwnames, names, 1, 0, a) < 0)
		return NULL;
	/* After close() too: multiprocessing.JoinableQueue's join does not use
	 * the closed ends, and "put ...; q.close(); q.join()" is a producer's
	 * pattern (it raised ValueError here; a review found it, 2026-12-06) */
	if (check_ring(q) < 0)
		return NULL;
	struct tmo t;
	if (make_tmo(Py_True, a[0], &t) < 0)
		return NULL;
	ssize_t rc = run_op(q, NULL, op_join, &q->ring->ctl->tasks, &t, RUN_OP_AFTER_CLOSE, 0);
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	if (rc < 0)
		return raise_for(rc, Empty);
	Py_RETURN_TRUE;
}

static PyObject *Queue_unfinished(QueueObject *q, PyObject *unused)
{
	if (!q->ring)
		return PyLong_FromLong(0);
	return PyLong_FromLongLong(shmring_latch_count(&q->ring->ctl->tasks));
}

static PyObject *Queue_get_ring(QueueObject *q, void *c)
{
	if (!q->ring)
		Py_RETURN_NONE;
	Py_INCREF(q->ring);
	return (PyObject *)q->ring;
}

static PyObject *Queue_get_closed(QueueObject *q, void *c)
{
	return PyBool_FromLong(is_closed(q));
}

static PyMethodDef Queue_methods[] = {
	{"put", (PyCFunction)(void (*)(void))Queue_put, METH_FASTCALL | METH_KEYWORDS,
	 "put(obj, block=True, timeout=None)"},
	{"get", (PyCFunction)(void (*)(void))Queue_get, METH_FASTCALL | METH_KEYWORDS,
	 "get(block=True, timeout=None)"},
	{"put_nowait", (PyCFunction)Queue_put_nowait, METH_O, "put(obj, False)"},
	{"get_nowait", (PyCFunction)Queue_get_nowait, METH_NOARGS, "get(False)"},
	{"put_bytes", (PyCFunction)(void (*)(void))Queue_put_bytes, METH_FASTCALL | METH_KEYWORDS,
	 "put_bytes(data, block=True, timeout=None): one raw record"},
	{"get_bytes", (PyCFunction)(void (*)(void))Queue_get_bytes, METH_FASTCALL | METH_KEYWORDS,
	 "get_bytes(block=True, timeout=None): one raw record as bytes"},
	{"put_many", (PyCFunction)(void (*)(void))Queue_put_many, METH_FASTCALL | METH_KEYWORDS,
	 "put_many(objs, block=True, timeout=None)"},
	{"get_many", (PyCFunction)(void (*)(void))Queue_get_many, METH_FASTCALL | METH_KEYWORDS,
	 "get_many(block=True, timeout=None, max_items=None) -> list"},
	{"get_bytes_many", (PyCFunction)(void (*)(void))Queue_get_bytes_many,
	 METH_FASTCALL | METH_KEYWORDS,
	 "get_bytes_many(block=True, timeout=None, max_items=None) -> list of bytes"},
	{"qsize", (PyCFunction)Queue_qsize, METH_NOARGS, "Approximate number of items."},
	{"empty", (PyCFunction)Queue_empty, METH_NOARGS, "True if no item is ready now."},
	{"full", (PyCFunction)Queue_full, METH_NOARGS, "True if a put would have to wait now."},
	{"close", (PyCFunction)Queue_close, METH_NOARGS, "Close this handle (this process)."},
	{"join_thread", (PyCFunction)Queue_noop, METH_NOARGS, "No-op: there is no feeder thread."},
	{"cancel_join_thread", (PyCFunction)Queue_noop, METH_NOARGS,
	 "No-op: there is no feeder thread."},
	{"_task_done", (PyCFunction)Queue_task_done, METH_NOARGS, "task_done()"},
	{"_join", (PyCFunction)(void (*)(void))Queue_join, METH_FASTCALL | METH_KEYWORDS,
	 "join(timeout=None)"},
	{"_unfinished", (PyCFunction)Queue_unfinished, METH_NOARGS, "unfinished tasks"},
	{NULL}
};

static PyGetSetDef Queue_getset[] = {
	{"_ring", (getter)Queue_get_ring, NULL, "the Ring behind this handle", NULL},
	{"_closed", (getter)Queue_get_closed, NULL, "close() was called on this handle", NULL},
	{NULL}
};

PyTypeObject Queue_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmring._shmring.QueueBase",
	.tp_basicsize = sizeof(QueueObject),
	.tp_dealloc = (destructor)Queue_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "The C core of shmring's queues (use shmring.Queue).",
	.tp_traverse = (traverseproc)Queue_traverse,
	.tp_clear = (inquiry)Queue_clear,
	.tp_methods = Queue_methods,
	.tp_getset = Queue_getset,
	.tp_init = (initproc)Queue_init,
	.tp_new = PyType_GenericNew,
};
