/*
 * _shmring.c - the CPython extension behind the `shmring` package: a
 * drop-in replacement for multiprocessing's Queue, SimpleQueue and
 * JoinableQueue on top of the shmring C library (docs/python.md).
 *
 * Two types:
 *   Ring       one process's handle on a ring (struct shmring *), plus the
 *              optional "meta" page that holds the item counter for maxsize.
 *              Shared by every queue object of this process that uses the
 *              same ring (the Python layer caches rings by (st_dev, st_ino)).
 *   QueueBase  a queue handle: a Ring and a per-handle closed flag.  The hot
 *              methods (put/get and friends) live here, in C; the Python
 *              subclasses in __init__.py add construction, pickling and the
 *              side-segment path for objects larger than max_record.
 *
 * Records (the first byte says what a record is):
 *   0x80 ...  a pickle stream (protocol 5 starts with 0x80 0x05), in-band;
 *   0x01      pickle stream + out-of-band buffers (layout at OOB_ below);
 *   0x02      a reference to a side segment in /dev/shm (__init__.py);
 *   0x03      a bytes object, verbatim after the tag byte;
 *   0x04      small plain data in shmring's own compact encoding (FAST_
 *             below): about 3x cheaper than pickle for a tuple of ints.
 * put_bytes/get_bytes move raw records with no tag at all.
 *
 * Blocking: every call first tries without waiting, holding the GIL.  If
 * it has to wait, it releases the GIL and calls the C library in slices of
 * at most SLICE_NS, re-taking the GIL between slices to run signal handlers
 * (Ctrl-C raises KeyboardInterrupt within a slice) and to see close().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "shmring.h"
#include "shmring_batch.h"
#include "shmring_poll.h"
#include "shmring_zc.h"

#define SLICE_NS        50000000LL  /* longest wait without the GIL: 50 ms */
#define EOF_POLL_NS      2000000LL  /* fallback poll when a role cannot be declared */
#define NOGIL_COPY_MIN  (64 * 1024) /* copies this big run without the GIL */
#define OOB_MIN         4096        /* smaller PickleBuffers stay in-band */
#define OOB_ALIGN       64          /* out-of-band buffers start 64-aligned */
#define GETMANY_BUF     (256 * 1024)
#define ERR_PY          (-100000)   /* a Python exception is set */

#define TAG_OOB   0x01
#define TAG_LARGE 0x02
#define TAG_BYTES 0x03
#define TAG_FAST  0x04

#define FAST_MAX   512              /* TAG_FAST records up to this size */
#define FAST_DEPTH 8
#define TAG_PICKLE 0x80

/* --------------------------------------------------------------- globals */

static PyObject *pickle_dumps, *pickle_loads;
static PyObject *str_buffer_callback, *str_buffers, *str_release;
static PyObject *kwnames_cb, *kwnames_buffers;
static PyObject *Empty, *Full, *ShutDown;       /* set by _setup() */
static PyObject *put_large_fn, *get_large_fn, *discard_large_fn;
static PyObject *int_five;
/* How a Python handle waits: sched_yield polling for default_yield_ns, then
 * the library's wait (spinning default_spin pauses, then the futex).
 * SHMRING_PY_YIELD_NS / SHMRING_PY_SPIN override them (read at import). */
static int64_t default_yield_ns = 50000;
static int64_t default_pause_ns = 5000;
static long default_spin = 0;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static PyObject *set_errno_error(int rc)
{
	PyObject *args = Py_BuildValue("(is)", -rc, shmring_strerror(rc));
	if (args) {
		PyErr_SetObject(PyExc_OSError, args);
		Py_DECREF(args);
	}
	return NULL;
}

/* A file descriptor argument (an int in C int range, >= 0). */
static int fd_arg(PyObject *arg, int *fd)
{
	long v = PyLong_AsLong(arg);
	if (v == -1 && PyErr_Occurred())
		return -1;
	if (v < 0 || v > INT_MAX) {
		PyErr_SetString(PyExc_ValueError, "not a file descriptor");
		return -1;
	}
	*fd = (int)v;
	return 0;
}

static int check_setup(void)
{
	if (!Empty) {
		PyErr_SetString(PyExc_RuntimeError, "shmring._shmring used before _setup()");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ meta page */
/*
 * The item counter for maxsize: one page in its own shared file (a memfd for
 * an anonymous queue, /dev/shm/<name>.pyq for a named one), made by the
 * Python layer.  count is the items put (or being put) and not yet taken;
 * a put claims one with a CAS while count < maxsize and otherwise sleeps on
 * an eventcount (the same protocol as the ring's, docs/design.md section 4):
 * word = [epoch:32 | waiters:32], the futex word is the epoch half.
 */
#define META_MAGIC "SHMRPYQ1"
#define META_SIZE 4096

struct pymeta {
	char               magic[8];
	uint64_t           maxsize;
	uint64_t           version;
	uint64_t           pad0[5];
	_Atomic int64_t    count;     /* offset 64 */
	_Atomic uint64_t   ec;        /* offset 72: epoch (high) | waiters (low) */
};
_Static_assert(sizeof(struct pymeta) <= META_SIZE, "meta fits a page");

#define EC_EPOCH(w)   ((uint32_t)((w) >> 32))
#define EC_WAITERS(w) ((uint32_t)(w))

static _Atomic uint32_t *ec_futex(struct pymeta *m)
{
	/* little-endian: the high half is at offset 4 */
	return (_Atomic uint32_t *)((char *)&m->ec + 4);
}

static void meta_notify(struct pymeta *m)
{
	uint64_t w = atomic_load_explicit(&m->ec, memory_order_seq_cst);
	while (EC_WAITERS(w)) {
		uint64_t next = (uint64_t)(EC_EPOCH(w) + 1u) << 32;
		if (atomic_compare_exchange_weak_explicit(&m->ec, &w, next, memory_order_seq_cst,
		                                          memory_order_seq_cst)) {
			syscall(SYS_futex, ec_futex(m), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
			return;
		}
	}
}

static void meta_release(struct pymeta *m, int64_t n)
{
	atomic_fetch_sub_explicit(&m->count, n, memory_order_seq_cst);
	meta_notify(m);
}

static int64_t meta_try(struct pymeta *m, int64_t maxsize, int64_t want)
{
	int64_t c = atomic_load_explicit(&m->count, memory_order_relaxed);
	while (c < maxsize) {
		int64_t k = maxsize - c < want ? maxsize - c : want;
		if (atomic_compare_exchange_weak_explicit(&m->count, &c, c + k, memory_order_seq_cst,
		                                          memory_order_relaxed))
			return k;
	}
	return 0;
}

/* Claim between 1 and want items of room, waiting at most timeout_ns (0: not
 * at all).  Returns the number claimed, -EAGAIN or -ETIMEDOUT.  No Python. */
static int64_t meta_acquire(struct pymeta *m, int64_t maxsize, int64_t want, int64_t timeout_ns)
{
	int64_t k = meta_try(m, maxsize, want);
	if (k || timeout_ns == 0)
		return k ? k : -EAGAIN;
	int64_t deadline = now_ns() + timeout_ns;
	for (int spin = 0; spin < 200; spin++) {
		for (int j = 0; j < 16; j++)
			__builtin_ia32_pause();
		if ((k = meta_try(m, maxsize, want)))
			return k;
	}
	for (;;) {
		uint64_t w = atomic_fetch_add_explicit(&m->ec, 1, memory_order_seq_cst); /* W1 */
		uint32_t key = EC_EPOCH(w);
		k = meta_try(m, maxsize, want);                                          /* W2 */
		int64_t left = deadline - now_ns();
		if (!k && left > 0) {
			struct timespec ts = { left / 1000000000LL, left % 1000000000LL };
			syscall(SYS_futex, ec_futex(m), FUTEX_WAIT, key, &ts, NULL, 0); /* W3 */
		}
		/* W4: take ourselves off unless a notifier already did. */
		w = atomic_load_explicit(&m->ec, memory_order_relaxed);
		while (EC_EPOCH(w) == key && EC_WAITERS(w) > 0 &&
		       !atomic_compare_exchange_weak_explicit(&m->ec, &w, w - 1, memory_order_relaxed,
		                                              memory_order_relaxed))
			;
		if (k)
			return k;
		if ((k = meta_try(m, maxsize, want)))
			return k;
		if (now_ns() >= deadline)
			return -ETIMEDOUT;
	}
}

/* ------------------------------------------------------------------ Ring */

typedef struct {
	PyObject_HEAD
	struct shmring *r;
	size_t          capacity;
	size_t          max_record;
	PyObject       *name;       /* str, or None for an anonymous ring */
	struct pymeta  *meta;       /* NULL: no maxsize */
	int             meta_fd;
	int64_t         maxsize;    /* 0: unbounded */
	unsigned        declared;   /* roles declared to keep EOF away */
	int64_t         yield_ns;   /* poll this long before sleeping ... */
	int64_t         pause_ns;   /* ... spinning for the first pause_ns of it */
	unsigned char  *getbuf;     /* get_many's buffer (GETMANY_BUF), or NULL */
	int             getbuf_busy;
	dev_t           dev;
	ino_t           ino;
	PyObject       *weakreflist;
} RingObject;

static PyTypeObject Ring_Type;

static void Ring_dealloc(RingObject *self)
{
	if (self->weakreflist)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->r)
		shmring_detach(self->r);
	PyMem_RawFree(self->getbuf);
	if (self->meta)
		munmap(self->meta, META_SIZE);
	if (self->meta_fd >= 0)
		close(self->meta_fd);
	Py_XDECREF(self->name);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *ring_wrap(struct shmring *r, PyObject *name)
{
	struct shmring_info info;
	struct stat st;
	if (fstat(shmring_fd(r), &st) < 0) {
		int e = errno;
		shmring_detach(r);
		return set_errno_error(-e);
	}
	RingObject *self = PyObject_New(RingObject, &Ring_Type);
	if (!self) {
		shmring_detach(r);
		return NULL;
	}
	self->r = r;
	shmring_info(r, &info);
	self->capacity = info.capacity;
	self->max_record = info.max_record;
	self->name = name ? name : Py_None;
	Py_INCREF(self->name);
	self->meta = NULL;
	self->meta_fd = -1;
	self->maxsize = 0;
	self->declared = 0;
	self->yield_ns = default_yield_ns;
	self->pause_ns = default_pause_ns;
	self->getbuf = NULL;
	self->getbuf_busy = 0;
	if (default_spin >= 0)
		shmring_set_spin(r, (unsigned)default_spin);
	self->dev = st.st_dev;
	self->ino = st.st_ino;
	self->weakreflist = NULL;
	return (PyObject *)self;
}

/* create(name, capacity, max_record, mode) */
static PyObject *mod_create(PyObject *mod, PyObject *args)
{
	PyObject *name;
	Py_ssize_t capacity, max_record;
	unsigned mode;
	if (!PyArg_ParseTuple(args, "OnnI:create", &name, &capacity, &max_record, &mode))
		return NULL;
	if (capacity < 0 || max_record < 0) {
		PyErr_SetString(PyExc_ValueError, "capacity and max_record must be >= 0");
		return NULL;
	}
	const char *cname = NULL;
	if (name != Py_None) {
		cname = PyUnicode_AsUTF8(name);
		if (!cname)
			return NULL;
	}
	struct shmring_config cfg = { .capacity = (size_t)capacity, .max_record = (size_t)max_record,
	                              .mode = mode };
	struct shmring *r;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = shmring_create(&r, cname, &cfg);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return set_errno_error(rc);
	return ring_wrap(r, name == Py_None ? NULL : name);
}

static PyObject *mod_open(PyObject *mod, PyObject *name)
{
	const char *cname = PyUnicode_AsUTF8(name);
	if (!cname)
		return NULL;
	struct shmring *r;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = shmring_open(&r, cname);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return set_errno_error(rc);
	return ring_wrap(r, name);
}

static PyObject *mod_attach_fd(PyObject *mod, PyObject *arg)
{
	int fd;
	if (fd_arg(arg, &fd) < 0)
		return NULL;
	struct shmring *r;
	int rc = shmring_attach_fd(&r, fd);
	if (rc < 0)
		return set_errno_error(rc);
	return ring_wrap(r, NULL);
}

static PyObject *mod_unlink(PyObject *mod, PyObject *name)
{
	const char *cname = PyUnicode_AsUTF8(name);
	if (!cname)
		return NULL;
	int rc = shmring_unlink(cname);
	if (rc < 0)
		return set_errno_error(rc);
	Py_RETURN_NONE;
}

/* Ring.set_meta(fd): map the meta page behind fd (duplicated; the caller
 * keeps its own fd). */
static PyObject *Ring_set_meta(RingObject *self, PyObject *arg)
{
	int fd;
	if (fd_arg(arg, &fd) < 0)
		return NULL;
	if (self->meta) {
		PyErr_SetString(PyExc_ValueError, "ring already has a meta page");
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	if (st.st_size < META_SIZE) {
		PyErr_SetString(PyExc_ValueError, "not a shmring queue meta file (too short)");
		return NULL;
	}
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	void *p = mmap(NULL, META_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0);
	if (p == MAP_FAILED) {
		close(dfd);
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	struct pymeta *m = p;
	if (memcmp(m->magic, META_MAGIC, 8) != 0 || m->maxsize == 0 ||
	    m->maxsize > (uint64_t)INT64_MAX) {
		munmap(p, META_SIZE);
		close(dfd);
		PyErr_SetString(PyExc_ValueError, "not a shmring queue meta file (bad magic)");
		return NULL;
	}
	self->meta = m;
	self->meta_fd = dfd;
	self->maxsize = (int64_t)m->maxsize;
	Py_RETURN_NONE;
}

static PyObject *Ring_fileno(RingObject *self, PyObject *unused)
{
	return PyLong_FromLong(shmring_fd(self->r));
}

static PyObject *Ring_meta_fileno(RingObject *self, PyObject *unused)
{
	return PyLong_FromLong(self->meta_fd);
}

static PyObject *Ring_key(RingObject *self, PyObject *unused)
{
	return Py_BuildValue("(KK)", (unsigned long long)self->dev, (unsigned long long)self->ino);
}

static PyObject *Ring_info(RingObject *self, PyObject *unused)
{
	struct shmring_info i;
	int rc = shmring_info(self->r, &i);
	if (rc < 0)
		return set_errno_error(rc);
	long long count = self->meta ? (long long)atomic_load(&self->meta->count) : -1;
	return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:O,s:O,s:K,s:K,s:I,s:I,s:O,s:K,s:L,s:L}",
	                     "capacity", (Py_ssize_t)i.capacity,
	                     "max_record", (Py_ssize_t)i.max_record,
	                     "records", (Py_ssize_t)i.records,
	                     "bytes", (Py_ssize_t)i.bytes,
	                     "used", (Py_ssize_t)i.used,
	                     "closed", i.closed ? Py_True : Py_False,
	                     "named", i.named ? Py_True : Py_False,
	                     "futex_waits", (unsigned long long)i.futex_waits,
	                     "futex_wakes", (unsigned long long)i.futex_wakes,
	                     "producers", i.producers,
	                     "consumers", i.consumers,
	                     "eof", i.eof ? Py_True : Py_False,
	                     "unfinished", (unsigned long long)i.unfinished,
	                     "maxsize", (long long)self->maxsize,
	                     "count", count);
}

/* Ring.shutdown(): shmring_close, for every process. */
static PyObject *Ring_shutdown(RingObject *self, PyObject *unused)
{
	int rc = shmring_close(self->r);
	if (rc < 0)
		return set_errno_error(rc);
	Py_RETURN_NONE;
}

/* set_yield(yield_ns, pause_ns=-1): -1 leaves pause_ns as it is */
static PyObject *Ring_set_yield(RingObject *self, PyObject *args)
{
	long long y, p = -1;
	if (!PyArg_ParseTuple(args, "L|L:set_yield", &y, &p))
		return NULL;
	self->yield_ns = y < 0 ? 0 : y;
	if (p >= 0)
		self->pause_ns = p;
	Py_RETURN_NONE;
}

static PyObject *Ring_set_spin(RingObject *self, PyObject *arg)
{
	unsigned long v = PyLong_AsUnsignedLong(arg);
	if (v == (unsigned long)-1 && PyErr_Occurred())
		return NULL;
	shmring_set_spin(self->r, (unsigned)(v > UINT_MAX ? UINT_MAX : v));
	Py_RETURN_NONE;
}

static PyMethodDef Ring_methods[] = {
	{"set_meta", (PyCFunction)Ring_set_meta, METH_O, "Map the maxsize meta page behind fd."},
	{"fileno", (PyCFunction)Ring_fileno, METH_NOARGS, "The ring's fd (owned by the ring)."},
	{"meta_fileno", (PyCFunction)Ring_meta_fileno, METH_NOARGS, "The meta page's fd, or -1."},
	{"key", (PyCFunction)Ring_key, METH_NOARGS, "(st_dev, st_ino) of the ring's file."},
	{"info", (PyCFunction)Ring_info, METH_NOARGS, "A snapshot of the ring (dict)."},
	{"shutdown", (PyCFunction)Ring_shutdown, METH_NOARGS, "Close the ring for every process."},
	{"set_spin", (PyCFunction)Ring_set_spin, METH_O, "Spin iterations before sleeping."},
	{"set_yield", (PyCFunction)Ring_set_yield, METH_VARARGS,
	 "set_yield(yield_ns, pause_ns=-1): poll this long before sleeping, spinning the first pause_ns."},
	{NULL}
};

static PyObject *Ring_get_name(RingObject *self, void *c)
{
	Py_INCREF(self->name);
	return self->name;
}
static PyObject *Ring_get_capacity(RingObject *self, void *c)
{
	return PyLong_FromSize_t(self->capacity);
}
static PyObject *Ring_get_max_record(RingObject *self, void *c)
{
	return PyLong_FromSize_t(self->max_record);
}
static PyObject *Ring_get_maxsize(RingObject *self, void *c)
{
	return PyLong_FromLongLong(self->maxsize);
}

static PyGetSetDef Ring_getset[] = {
	{"name", (getter)Ring_get_name, NULL, "ring name, or None", NULL},
	{"capacity", (getter)Ring_get_capacity, NULL, "bytes of record storage", NULL},
	{"max_record", (getter)Ring_get_max_record, NULL, "largest record, bytes", NULL},
	{"maxsize", (getter)Ring_get_maxsize, NULL, "item limit (0: none)", NULL},
	{NULL}
};

static PyTypeObject Ring_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmring._shmring.Ring",
	.tp_basicsize = sizeof(RingObject),
	.tp_dealloc = (destructor)Ring_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "One process's handle on a shared-memory ring (internal).",
	.tp_weaklistoffset = offsetof(RingObject, weakreflist),
	.tp_methods = Ring_methods,
	.tp_getset = Ring_getset,
};

/* ------------------------------------------------------------- QueueBase */

typedef struct {
	PyObject_HEAD
	RingObject *ring;
	int         closed;
	PyObject   *pending;   /* list of raw records taken but not delivered, or NULL */
} QueueObject;

static PyTypeObject Queue_Type;

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

static int check_usable(QueueObject *q)
{
	if (!q->ring) {
		PyErr_SetString(PyExc_ValueError, "Queue is not initialised");
		return -1;
	}
	if (q->closed) {
		PyErr_Format(PyExc_ValueError, "Queue %R is closed", (PyObject *)q);
		return -1;
	}
	return 0;
}

/* --- argument parsing (vectorcall) --- */

/* Fill out[0..n) from positional args then keywords, by name.  Missing
 * entries stay as they were (the caller's defaults). */
static int parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
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

/* How long to wait: NONBLOCK, FOREVER, or until deadline (CLOCK_MONOTONIC ns). */
struct tmo {
	int     mode;
	int64_t deadline;
};
enum { TMO_NONBLOCK, TMO_FOREVER, TMO_DEADLINE };

static int make_tmo(PyObject *block, PyObject *timeout, struct tmo *t)
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

/* Is the ring closed (shmring_close)?  Only asked after -EPIPE. */
static int ring_is_closed(RingObject *ring)
{
	struct shmring_info i;
	if (shmring_info(ring->r, &i) < 0)
		return 0;
	return i.closed;
}

/* A blocking operation on the ring: called with timeout_ns 0 while holding
 * the GIL, or with a slice while not; must not touch Python objects. */
typedef ssize_t (*ring_op)(void *ctx, int64_t timeout_ns);

/* Run op until it succeeds, fails for good, or t runs out.  Returns op's
 * result (>= 0), -EAGAIN / -ETIMEDOUT (ran out), -EPIPE (the ring is closed
 * for good), another negative errno, or ERR_PY.
 *
 * -EPIPE from the library also means "end of stream" (every producer that
 * ever put has gone) for a get, or "broken pipe" (every consumer has gone)
 * for a put.  A multiprocessing queue has neither: another process may put
 * or get later.  So unless the ring was really closed, declare the missing
 * role on this handle (which ends the condition while this process lives)
 * and go on waiting. */
static ssize_t run_op(QueueObject *q, ring_op op, void *ctx, const struct tmo *t,
                      unsigned epipe_role, int nogil_first)
{
	RingObject *ring = q->ring;
	int eof_poll = 0, slices = 0;
	ssize_t rc = (nogil_first && t->mode != TMO_NONBLOCK) ? -EAGAIN : op(ctx, 0);
	for (;;) {
		if (rc >= 0)
			return rc;
		if (rc == -EPIPE) {
			if (!epipe_role || ring_is_closed(ring))
				return -EPIPE;
			if (!(ring->declared & epipe_role) && shmring_declare(ring->r, epipe_role) == 0) {
				ring->declared |= epipe_role;
				rc = op(ctx, 0);
				continue;
			}
			eof_poll = 1;   /* could not declare (table full?): poll */
			rc = -EAGAIN;
		}
		if (rc != -EAGAIN && rc != -ETIMEDOUT)
			return rc;
		/* it has to wait */
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
			if (q->closed) {
				PyErr_Format(PyExc_ValueError, "Queue %R is closed", (PyObject *)q);
				return ERR_PY;
			}
		}
		if (slices == 1 && ring->yield_ns > 0 && !eof_poll) {
			/* Before sleeping: poll, giving the CPU away between looks
			 * (sched_yield), for up to yield_ns.  On a busy machine this
			 * lets the peer we wait for run; on an idle one it is a
			 * short spin.  Either way no FUTEX_WAKE is needed from the
			 * peer for a wait that ends here. */
			int64_t start = now_ns();
			int64_t until = start + (ring->yield_ns < slice ? ring->yield_ns : slice);
			int64_t spin_until = start + ring->pause_ns;
			Py_BEGIN_ALLOW_THREADS
			/* a few microseconds of plain spinning first: a peer that
			 * answers at once is seen without a system call */
			unsigned gap = 1;
			do {
				for (unsigned i = 0; i < gap; i++)
					__builtin_ia32_pause();
				if (gap < 16)
					gap <<= 1;
				rc = op(ctx, 0);
			} while (rc == -EAGAIN && now_ns() < spin_until);
			while (rc == -EAGAIN && now_ns() < until) {
				sched_yield();
				rc = op(ctx, 0);
			}
			Py_END_ALLOW_THREADS
			if (rc != -EAGAIN)
				continue;
		}
		if (eof_poll) {
			struct timespec ts = { 0, slice < EOF_POLL_NS ? slice : EOF_POLL_NS };
			Py_BEGIN_ALLOW_THREADS
			nanosleep(&ts, NULL);
			rc = op(ctx, 0);
			Py_END_ALLOW_THREADS
		} else {
			Py_BEGIN_ALLOW_THREADS
			rc = op(ctx, slice);
			Py_END_ALLOW_THREADS
		}
	}
}

/* Claim `want` items of room (maxsize), at least 1; returns how many. */
struct meta_ctx {
	RingObject *ring;
	int64_t     want;
};
static ssize_t op_meta(void *p, int64_t timeout_ns)
{
	struct meta_ctx *c = p;
	return (ssize_t)meta_acquire(c->ring->meta, c->ring->maxsize, c->want, timeout_ns);
}

static ssize_t meta_claim(QueueObject *q, int64_t want, const struct tmo *t)
{
	struct meta_ctx c = { q->ring, want };
	return run_op(q, op_meta, &c, t, 0, 0);
}

/* Map a failed result to the exception a queue raises. */
static PyObject *raise_for(ssize_t rc, PyObject *timeout_exc)
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
	return set_errno_error((int)rc);
}

/* ------------------------------------------------------------- encoding */

struct enc {
	struct iovec  small[3];
	struct iovec *iov;
	int           iovcnt;
	size_t        total;
	unsigned char tag;
	PyObject     *keep;     /* owns the bytes the iovecs point into */
	PyObject     *record;   /* a side-segment reference record, or NULL */
	unsigned char *hdr;     /* out-of-band header (heap) */
	Py_buffer    *views;
	Py_ssize_t    nviews;
	unsigned char fast[FAST_MAX + 1];   /* a TAG_FAST record */
};

static void enc_init(struct enc *e)
{
	e->iov = e->small;
	e->iovcnt = 0;
	e->total = 0;
	e->keep = e->record = NULL;
	e->hdr = NULL;
	e->views = NULL;
	e->nviews = 0;
}

static void enc_free(struct enc *e)
{
	for (Py_ssize_t i = 0; i < e->nviews; i++)
		PyBuffer_Release(&e->views[i]);
	PyMem_Free(e->views);
	PyMem_Free(e->hdr);
	if (e->iov != e->small)
		PyMem_Free(e->iov);
	Py_XDECREF(e->keep);
	Py_XDECREF(e->record);
	enc_init(e);
}

/* A put failed after making a side segment: remove it. */
static void enc_discard(struct enc *e)
{
	if (!e->record)
		return;
	PyObject *exc_type, *exc_val, *exc_tb;
	PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
	PyObject *r = PyObject_CallOneArg(discard_large_fn, e->record);
	if (!r)
		PyErr_WriteUnraisable(discard_large_fn);
	Py_XDECREF(r);
	PyErr_Restore(exc_type, exc_val, exc_tb);
}

/* Objects that can never produce a PickleBuffer: pickled without a
 * buffer_callback (which costs ~50 ns a call). */
static int is_plain(PyObject *o, int depth)
{
	PyTypeObject *t = Py_TYPE(o);
	if (t == &PyLong_Type || t == &PyFloat_Type || t == &PyUnicode_Type ||
	    t == &PyBytes_Type || o == Py_None || t == &PyBool_Type || t == &PyComplex_Type)
		return 1;
	if (depth >= 3)
		return 0;
	if (t == &PyTuple_Type || t == &PyList_Type) {
		Py_ssize_t n = Py_SIZE(o);
		if (n > 32)
			return 0;
		PyObject **items = t == &PyTuple_Type ? ((PyTupleObject *)o)->ob_item
		                                      : ((PyListObject *)o)->ob_item;
		for (Py_ssize_t i = 0; i < n; i++)
			if (!is_plain(items[i], depth + 1))
				return 0;
		return 1;
	}
	if (t == &PyDict_Type) {
		if (PyDict_GET_SIZE(o) > 16)
			return 0;
		Py_ssize_t pos = 0;
		PyObject *k, *v;
		while (PyDict_Next(o, &pos, &k, &v))
			if (!is_plain(k, depth + 1) || !is_plain(v, depth + 1))
				return 0;
		return 1;
	}
	return 0;
}

/* buffer_callback: keep big contiguous buffers out of band (return None),
 * serialise the rest in-band (return True). */
static PyObject *collect_buffer(PyObject *list, PyObject *pb)
{
	Py_buffer view;
	if (PyObject_GetBuffer(pb, &view, PyBUF_FULL_RO) < 0) {
		PyErr_Clear();
		Py_RETURN_TRUE;
	}
	int ok = view.len >= OOB_MIN && PyBuffer_IsContiguous(&view, 'A');
	PyBuffer_Release(&view);
	if (!ok)
		Py_RETURN_TRUE;
	if (PyList_Append(list, pb) < 0)
		return NULL;
	Py_RETURN_NONE;
}
static PyMethodDef collect_def = {"_collect", (PyCFunction)collect_buffer, METH_O, NULL};

static size_t align_up(size_t x, size_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static const unsigned char zeros[OOB_ALIGN];

/* Out-of-band record:
 *   [0] TAG_OOB, [1..4) 0, [4..8) u32 nbuf, [8..16) u64 stream length,
 *   [16..16+8n) u64 length of each buffer, then the stream, then each
 *   buffer at the next OOB_ALIGN boundary of the record. */
static int enc_oob(struct enc *e, PyObject *stream, PyObject *bufs, size_t max_record,
                   int *too_big)
{
	Py_ssize_t n = PyList_GET_SIZE(bufs);
	e->views = PyMem_Calloc((size_t)n, sizeof(Py_buffer));
	e->hdr = PyMem_Malloc(16 + 8 * (size_t)n);
	e->iov = PyMem_Malloc(sizeof(struct iovec) * (size_t)(2 + 2 * n));
	if (!e->views || !e->hdr || !e->iov) {
		if (!e->iov)
			e->iov = e->small;
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		if (PyObject_GetBuffer(PyList_GET_ITEM(bufs, i), &e->views[i], PyBUF_FULL_RO) < 0)
			return -1;
		e->nviews++;
	}
	size_t hdrlen = 16 + 8 * (size_t)n;
	size_t slen = (size_t)PyBytes_GET_SIZE(stream);
	uint32_t n32 = (uint32_t)n;
	uint64_t s64 = slen;
	memset(e->hdr, 0, 4);
	e->hdr[0] = TAG_OOB;
	memcpy(e->hdr + 4, &n32, 4);
	memcpy(e->hdr + 8, &s64, 8);
	int c = 0;
	e->iov[c++] = (struct iovec){ e->hdr, hdrlen };
	e->iov[c++] = (struct iovec){ PyBytes_AS_STRING(stream), slen };
	size_t off = hdrlen + slen;
	for (Py_ssize_t i = 0; i < n; i++) {
		uint64_t bl = (uint64_t)e->views[i].len;
		memcpy(e->hdr + 16 + 8 * i, &bl, 8);
		size_t a = align_up(off, OOB_ALIGN);
		if (a > off)
			e->iov[c++] = (struct iovec){ (void *)zeros, a - off };
		e->iov[c++] = (struct iovec){ e->views[i].buf, (size_t)bl };
		off = a + (size_t)bl;
	}
	e->iovcnt = c;
	e->total = off;
	*too_big = off > max_record;
	return 0;
}

/* --- the compact codec for small plain data (TAG_FAST) -------------------
 * Exact builtin atoms (None, bool, int that fits in 64 bits, float, str,
 * bytes) and tuples of them, nested; a list or dict only at the top (so no
 * mutable object can appear twice, and pickle's shared references cannot
 * differ).  Anything else, or more than FAST_MAX bytes, goes to pickle.
 *   'N' 'T' 'F' | 'i' int64 | 'd' double | 's'/'b' u32 len, bytes |
 *   '(' / '[' u32 n, n values | '{' u32 n, n key-value pairs  (little-endian) */

struct fbuf {
	unsigned char *p;
	size_t         len;
};

static int fput(struct fbuf *b, const void *src, size_t n)
{
	if (n > FAST_MAX - b->len)
		return 1;
	memcpy(b->p + b->len, src, n);
	b->len += n;
	return 0;
}

static int fput_hdr(struct fbuf *b, char code, uint32_t n)
{
	unsigned char h[5] = { (unsigned char)code };
	memcpy(h + 1, &n, 4);
	return fput(b, h, 5);
}

/* 0: encoded; 1: not for this codec (use pickle). */
static int fenc(struct fbuf *b, PyObject *o, int depth)
{
	PyTypeObject *t = Py_TYPE(o);
	unsigned char c;
	if (o == Py_None || o == Py_True || o == Py_False) {
		c = o == Py_None ? 'N' : o == Py_True ? 'T' : 'F';
		return fput(b, &c, 1);
	}
	if (t == &PyLong_Type) {
		int overflow;
		long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
		if (overflow || (v == -1 && PyErr_Occurred())) {
			PyErr_Clear();
			return 1;
		}
		unsigned char x[9] = { 'i' };
		int64_t v64 = v;
		memcpy(x + 1, &v64, 8);
		return fput(b, x, 9);
	}
	if (t == &PyFloat_Type) {
		unsigned char x[9] = { 'd' };
		double d = PyFloat_AS_DOUBLE(o);
		memcpy(x + 1, &d, 8);
		return fput(b, x, 9);
	}
	if (t == &PyUnicode_Type || t == &PyBytes_Type) {
		const char *data;
		Py_ssize_t n;
		if (t == &PyBytes_Type) {
			data = PyBytes_AS_STRING(o);
			n = PyBytes_GET_SIZE(o);
		} else if (!(data = PyUnicode_AsUTF8AndSize(o, &n))) {
			PyErr_Clear();   /* lone surrogates: pickle copes */
			return 1;
		}
		if ((size_t)n > FAST_MAX)
			return 1;
		return fput_hdr(b, t == &PyBytes_Type ? 'b' : 's', (uint32_t)n) ||
		       fput(b, data, (size_t)n);
	}
	if (depth >= FAST_DEPTH)
		return 1;
	if (t == &PyTuple_Type || (depth == 0 && t == &PyList_Type)) {
		/* a list is read with the GIL held and no Python code runs: its
		 * size cannot change under us */
		Py_ssize_t n = Py_SIZE(o);
		if (n > FAST_MAX || fput_hdr(b, t == &PyTuple_Type ? '(' : '[', (uint32_t)n))
			return 1;
		PyObject **items = t == &PyTuple_Type ? ((PyTupleObject *)o)->ob_item
		                                      : ((PyListObject *)o)->ob_item;
		for (Py_ssize_t i = 0; i < n; i++)
			if (fenc(b, items[i], depth + 1))
				return 1;
		return 0;
	}
	if (depth == 0 && t == &PyDict_Type) {
		Py_ssize_t n = PyDict_GET_SIZE(o), pos = 0;
		PyObject *k, *v;
		if (n > FAST_MAX || fput_hdr(b, '{', (uint32_t)n))
			return 1;
		while (PyDict_Next(o, &pos, &k, &v))
			if (fenc(b, k, depth + 1) || fenc(b, v, depth + 1))
				return 1;
		return 0;
	}
	return 1;
}

struct frd {
	const unsigned char *p, *end;
};

static int fget_u32(struct frd *r, uint32_t *n)
{
	if (r->end - r->p < 4)
		return -1;
	memcpy(n, r->p, 4);
	r->p += 4;
	return 0;
}

static PyObject *fdec(struct frd *r, int depth)
{
	if (r->p >= r->end || depth > FAST_DEPTH)
		goto bad;
	unsigned char c = *r->p++;
	uint32_t n;
	switch (c) {
	case 'N':
		Py_RETURN_NONE;
	case 'T':
		Py_RETURN_TRUE;
	case 'F':
		Py_RETURN_FALSE;
	case 'i':
	case 'd': {
		if (r->end - r->p < 8)
			goto bad;
		int64_t v;
		double d;
		memcpy(&v, r->p, 8);
		memcpy(&d, r->p, 8);
		r->p += 8;
		return c == 'i' ? PyLong_FromLongLong(v) : PyFloat_FromDouble(d);
	}
	case 's':
	case 'b':
		if (fget_u32(r, &n) < 0 || (size_t)(r->end - r->p) < n)
			goto bad;
		r->p += n;
		return c == 's' ? PyUnicode_DecodeUTF8((const char *)r->p - n, n, "strict")
		                : PyBytes_FromStringAndSize((const char *)r->p - n, n);
	case '(':
	case '[': {
		if (fget_u32(r, &n) < 0 || n > (size_t)(r->end - r->p))
			goto bad;
		PyObject *o = c == '(' ? PyTuple_New(n) : PyList_New(n);
		if (!o)
			return NULL;
		for (uint32_t i = 0; i < n; i++) {
			PyObject *x = fdec(r, depth + 1);
			if (!x) {
				Py_DECREF(o);
				return NULL;
			}
			if (c == '(')
				PyTuple_SET_ITEM(o, i, x);
			else
				PyList_SET_ITEM(o, i, x);
		}
		return o;
	}
	case '{': {
		if (fget_u32(r, &n) < 0 || n > (size_t)(r->end - r->p))
			goto bad;
		PyObject *o = PyDict_New();
		if (!o)
			return NULL;
		for (uint32_t i = 0; i < n; i++) {
			PyObject *k = fdec(r, depth + 1), *v = k ? fdec(r, depth + 1) : NULL;
			int rc = v ? PyDict_SetItem(o, k, v) : -1;
			Py_XDECREF(k);
			Py_XDECREF(v);
			if (rc < 0) {
				Py_DECREF(o);
				return NULL;
			}
		}
		return o;
	}
	}
bad:
	if (!PyErr_Occurred())
		PyErr_SetString(PyExc_ValueError, "corrupt shmring record (compact encoding)");
	return NULL;
}

static PyObject *decode_fast(const unsigned char *p, size_t len)
{
	struct frd r = { p + 1, p + len };
	PyObject *o = fdec(&r, 0);
	if (o && r.p != r.end) {
		Py_DECREF(o);
		PyErr_SetString(PyExc_ValueError, "corrupt shmring record (trailing bytes)");
		return NULL;
	}
	return o;
}

/* kind 0: pickle stream (+ out-of-band buffers), kind 1: raw bytes. */
static int enc_large(struct enc *e, int kind, PyObject *data, PyObject *bufs)
{
	PyObject *rec = PyObject_CallFunction(put_large_fn, "iOO", kind, data,
	                                      bufs ? bufs : Py_None);
	if (!rec)
		return -1;
	if (!PyBytes_Check(rec)) {
		Py_DECREF(rec);
		PyErr_SetString(PyExc_TypeError, "_put_large must return bytes");
		return -1;
	}
	enc_free(e);
	e->record = rec;
	Py_INCREF(rec);
	e->keep = rec;
	e->iov = e->small;
	e->iov[0] = (struct iovec){ PyBytes_AS_STRING(rec), (size_t)PyBytes_GET_SIZE(rec) };
	e->iovcnt = 1;
	e->total = (size_t)PyBytes_GET_SIZE(rec);
	return 0;
}

static int encode(struct enc *e, PyObject *obj, size_t max_record)
{
	enc_init(e);
	if (PyBytes_CheckExact(obj)) {
		size_t n = (size_t)PyBytes_GET_SIZE(obj);
		if (n + 1 > max_record)
			return enc_large(e, 1, obj, NULL);
		e->tag = TAG_BYTES;
		Py_INCREF(obj);
		e->keep = obj;
		e->iov[0] = (struct iovec){ &e->tag, 1 };
		e->iov[1] = (struct iovec){ PyBytes_AS_STRING(obj), n };
		e->iovcnt = 2;
		e->total = n + 1;
		return 0;
	}
	PyTypeObject *t = Py_TYPE(obj);
	if (t == &PyTuple_Type || t == &PyLong_Type || t == &PyUnicode_Type ||
	    t == &PyFloat_Type || t == &PyList_Type || t == &PyDict_Type || obj == Py_None ||
	    t == &PyBool_Type) {
		struct fbuf b = { e->fast + 1, 0 };
		if (fenc(&b, obj, 0) == 0) {
			e->fast[0] = TAG_FAST;
			e->iov[0] = (struct iovec){ e->fast, b.len + 1 };
			e->iovcnt = 1;
			e->total = b.len + 1;
			if (e->total <= max_record)
				return 0;
		}
	}
	PyObject *stream, *bufs = NULL;
	if (is_plain(obj, 0)) {
		PyObject *a[2] = { obj, int_five };
		stream = PyObject_Vectorcall(pickle_dumps, a, 2, NULL);
	} else {
		bufs = PyList_New(0);
		if (!bufs)
			return -1;
		PyObject *cb = PyCFunction_New(&collect_def, bufs);
		if (!cb) {
			Py_DECREF(bufs);
			return -1;
		}
		PyObject *a[3] = { obj, int_five, cb };
		stream = PyObject_Vectorcall(pickle_dumps, a, 2, kwnames_cb);
		Py_DECREF(cb);
	}
	if (!stream) {
		Py_XDECREF(bufs);
		return -1;
	}
	if (!PyBytes_Check(stream)) {
		Py_DECREF(stream);
		Py_XDECREF(bufs);
		PyErr_SetString(PyExc_TypeError, "pickle.dumps did not return bytes");
		return -1;
	}
	e->keep = stream;
	if (bufs && PyList_GET_SIZE(bufs) > 0) {
		int too_big = 0;
		int rc = enc_oob(e, stream, bufs, max_record, &too_big);
		if (rc == 0 && too_big)
			rc = enc_large(e, 0, stream, bufs);
		Py_DECREF(bufs);
		return rc;
	}
	Py_XDECREF(bufs);
	size_t n = (size_t)PyBytes_GET_SIZE(stream);
	if (n > max_record)
		return enc_large(e, 0, stream, NULL);
	e->iov[0] = (struct iovec){ PyBytes_AS_STRING(stream), n };
	e->iovcnt = 1;
	e->total = n;
	return 0;
}

/* One record as one contiguous bytes object (for put_many). */
static PyObject *enc_flat(struct enc *e)
{
	if (e->iovcnt == 1 && e->keep && PyBytes_Check(e->keep) &&
	    PyBytes_AS_STRING(e->keep) == e->iov[0].iov_base &&
	    (size_t)PyBytes_GET_SIZE(e->keep) == e->iov[0].iov_len) {
		Py_INCREF(e->keep);
		return e->keep;
	}
	PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)e->total);
	if (!b)
		return NULL;
	char *p = PyBytes_AS_STRING(b);
	for (int i = 0; i < e->iovcnt; i++) {
		memcpy(p, e->iov[i].iov_base, e->iov[i].iov_len);
		p += e->iov[i].iov_len;
	}
	return b;
}

/* ------------------------------------------------------------- decoding */

static PyObject *loads_view(const unsigned char *p, size_t len)
{
	PyObject *mv = PyMemoryView_FromMemory((char *)p, (Py_ssize_t)len, PyBUF_READ);
	if (!mv)
		return NULL;
	PyObject *obj = PyObject_CallOneArg(pickle_loads, mv);
	if (Py_REFCNT(mv) > 1) {
		/* someone kept the view: cut it off from the ring's memory */
		PyObject *exc_type, *exc_val, *exc_tb;
		PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
		PyObject *r = PyObject_CallMethodNoArgs(mv, str_release);
		if (!r)
			PyErr_Clear();
		Py_XDECREF(r);
		PyErr_Restore(exc_type, exc_val, exc_tb);
	}
	Py_DECREF(mv);
	return obj;
}

static PyObject *decode_oob(const unsigned char *p, size_t len)
{
	uint32_t n;
	uint64_t slen;
	if (len < 16)
		goto bad;
	memcpy(&n, p + 4, 4);
	memcpy(&slen, p + 8, 8);
	size_t hdrlen = 16 + 8 * (size_t)n;
	if (n > len / 8 || hdrlen > len || slen > len - hdrlen)
		goto bad;
	/* A writable copy: numpy and friends keep referring to it. */
	PyObject *ba = PyByteArray_FromStringAndSize((const char *)p, (Py_ssize_t)len);
	if (!ba)
		return NULL;
	PyObject *mv = PyMemoryView_FromObject(ba);
	Py_DECREF(ba);
	if (!mv)
		return NULL;
	PyObject *obj = NULL, *bufs = PyList_New(n), *stream = NULL;
	if (!bufs)
		goto out;
	size_t off = hdrlen + (size_t)slen;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t bl;
		memcpy(&bl, p + 16 + 8 * i, 8);
		size_t a = align_up(off, OOB_ALIGN);
		if (a > len || bl > len - a) {
			PyErr_SetString(PyExc_ValueError, "corrupt out-of-band record");
			goto out;
		}
		PyObject *s = PySequence_GetSlice(mv, (Py_ssize_t)a, (Py_ssize_t)(a + bl));
		if (!s)
			goto out;
		PyList_SET_ITEM(bufs, i, s);
		off = a + (size_t)bl;
	}
	stream = PySequence_GetSlice(mv, (Py_ssize_t)hdrlen, (Py_ssize_t)(hdrlen + slen));
	if (!stream)
		goto out;
	PyObject *a[2] = { stream, bufs };
	obj = PyObject_Vectorcall(pickle_loads, a, 1, kwnames_buffers);
out:
	Py_XDECREF(stream);
	Py_XDECREF(bufs);
	Py_DECREF(mv);
	return obj;
bad:
	PyErr_SetString(PyExc_ValueError, "corrupt out-of-band record");
	return NULL;
}

static PyObject *bytes_copy(const unsigned char *p, size_t len)
{
	PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
	if (!b)
		return NULL;
	if (len >= NOGIL_COPY_MIN) {
		char *dst = PyBytes_AS_STRING(b);
		Py_BEGIN_ALLOW_THREADS
		memcpy(dst, p, len);
		Py_END_ALLOW_THREADS
	} else {
		memcpy(PyBytes_AS_STRING(b), p, len);
	}
	return b;
}

/* Decode a record that stays valid while we run (a buffer of ours, or a
 * peeked span we release afterwards). */
static PyObject *decode(const unsigned char *p, size_t len)
{
	if (len == 0) {
		PyErr_SetString(PyExc_ValueError,
		                "empty record: not written by put() (use get_bytes())");
		return NULL;
	}
	switch (p[0]) {
	case TAG_PICKLE:
		return loads_view(p, len);
	case TAG_FAST:
		return decode_fast(p, len);
	case TAG_BYTES:
		return bytes_copy(p + 1, len - 1);
	case TAG_OOB:
		return decode_oob(p, len);
	case TAG_LARGE: {
		PyObject *rec = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)len);
		if (!rec)
			return NULL;
		PyObject *obj = PyObject_CallOneArg(get_large_fn, rec);
		Py_DECREF(rec);
		return obj;
	}
	default:
		PyErr_Format(PyExc_ValueError,
		             "record of %zu bytes was not written by put() (first byte 0x%02x); "
		             "use get_bytes() for raw records", len, p[0]);
		return NULL;
	}
}

/* --------------------------------------------------------------- put */

struct put_ctx {
	struct shmring     *r;
	const struct iovec *iov;
	int                 iovcnt;
};
static ssize_t op_putv(void *p, int64_t timeout_ns)
{
	struct put_ctx *c = p;
	return shmring_putv(c->r, c->iov, c->iovcnt, timeout_ns);
}

/* Put one encoded record: claim room in the item count (maxsize), then in
 * the ring. */
static ssize_t put_record(QueueObject *q, struct enc *e, const struct tmo *t)
{
	RingObject *ring = q->ring;
	ssize_t rc;
	if (ring->meta) {
		rc = meta_claim(q, 1, t);
		if (rc < 0)
			return rc;
	}
	struct put_ctx c = { ring->r, e->iov, e->iovcnt };
	rc = run_op(q, op_putv, &c, t, SHMRING_CONSUMER, e->total >= NOGIL_COPY_MIN);
	if (rc < 0 && ring->meta)
		meta_release(ring->meta, 1);
	return rc;
}

static const char *const put_names[] = { "obj", "block", "timeout" };

static PyObject *do_put(QueueObject *q, PyObject *obj, PyObject *block, PyObject *timeout)
{
	if (check_usable(q) < 0)
		return NULL;
	struct tmo t;
	if (make_tmo(block, timeout, &t) < 0)
		return NULL;
	struct enc e;
	if (encode(&e, obj, q->ring->max_record) < 0) {
		enc_free(&e);
		return NULL;
	}
	ssize_t rc = put_record(q, &e, &t);
	if (rc < 0)
		enc_discard(&e);
	enc_free(&e);
	if (rc < 0)
		return raise_for(rc, Full);
	Py_RETURN_NONE;
}

static PyObject *Queue_put(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
	PyObject *a[3] = { NULL, NULL, NULL };
	if (nargs == 1 && !kwnames)
		a[0] = args[0];
	else if (parse_args("put", args, nargs, kwnames, put_names, 3, 1, a) < 0)
		return NULL;
	return do_put(q, a[0], a[1], a[2]);
}

static PyObject *Queue_put_nowait(QueueObject *q, PyObject *obj)
{
	return do_put(q, obj, Py_False, NULL);
}

/* put_bytes(data, block=True, timeout=None): one raw record, no tag. */
static PyObject *Queue_put_bytes(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
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
	struct enc e;
	enc_init(&e);
	e.iov[0] = (struct iovec){ view.buf, (size_t)view.len };
	e.iovcnt = 1;
	e.total = (size_t)view.len;
	ssize_t rc = put_record(q, &e, &t);
	PyBuffer_Release(&view);
	if (rc < 0)
		return raise_for(rc, Full);
	Py_RETURN_NONE;
}

struct putmany_ctx {
	struct shmring     *r;
	const struct iovec *recs;
	size_t              n;
};
static ssize_t op_put_many(void *p, int64_t timeout_ns)
{
	struct putmany_ctx *c = p;
	return shmring_put_many(c->r, c->recs, c->n, timeout_ns);
}

/* put_many(objs, block=True, timeout=None): put every object, in order.
 * Raises Full (with .count = how many were put) if room runs out first. */
static PyObject *Queue_put_many(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
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
	PyObject **items = ((PyTupleObject *)seq)->ob_item;
	PyObject *recs = PyList_New(n);   /* the encoded records, as bytes */
	PyObject *large = NULL;           /* side-segment records, to discard */
	struct iovec *iov = PyMem_Malloc(sizeof(struct iovec) * (size_t)(n ? n : 1));
	Py_ssize_t done = 0;
	ssize_t rc = 0;
	if (!recs || !iov) {
		PyErr_NoMemory();
		goto out;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		struct enc e;
		if (encode(&e, items[i], q->ring->max_record) < 0) {
			enc_free(&e);
			goto fail_encode;
		}
		PyObject *b = enc_flat(&e);
		if (b && e.record) {
			if (!large)
				large = PyList_New(0);
			if (!large || PyList_Append(large, e.record) < 0)
				Py_CLEAR(b);
		}
		enc_free(&e);
		if (!b)
			goto fail_encode;
		PyList_SET_ITEM(recs, i, b);
		iov[i] = (struct iovec){ PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b) };
	}
	RingObject *ring = q->ring;
	while (done < n) {
		int64_t claimed = n - done;
		if (ring->meta) {
			rc = meta_claim(q, n - done, &t);
			if (rc < 0)
				break;
			claimed = rc;
		}
		struct putmany_ctx c = { ring->r, iov + done, (size_t)claimed };
		rc = run_op(q, op_put_many, &c, &t, SHMRING_CONSUMER, 0);
		if (rc < 0) {
			if (ring->meta)
				meta_release(ring->meta, claimed);
			break;
		}
		if (ring->meta && rc < claimed)
			meta_release(ring->meta, claimed - rc);
		done += rc;
	}
	if (done < n) {
		/* discard the side segments of the records not put */
		if (large) {
			PyObject *exc_type, *exc_val, *exc_tb;
			PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
			for (Py_ssize_t i = done; i < n; i++) {
				PyObject *b = PyList_GET_ITEM(recs, i);
				if (PyBytes_GET_SIZE(b) > 0 && PyBytes_AS_STRING(b)[0] == TAG_LARGE) {
					PyObject *r = PyObject_CallOneArg(discard_large_fn, b);
					if (!r)
						PyErr_WriteUnraisable(discard_large_fn);
					Py_XDECREF(r);
				}
			}
			PyErr_Restore(exc_type, exc_val, exc_tb);
		}
		if (rc == -EAGAIN || rc == -ETIMEDOUT) {
			PyObject *exc = PyObject_CallFunction(Full, "s", "put_many: queue full");
			if (exc) {
				PyObject *cnt = PyLong_FromSsize_t(done);
				if (cnt) {
					PyObject_SetAttrString(exc, "count", cnt);
					Py_DECREF(cnt);
				}
				PyErr_SetObject(Full, exc);
				Py_DECREF(exc);
			}
		} else {
			raise_for(rc, Full);
		}
		goto out;
	}
	goto out;
fail_encode:
	/* objects pickled so far may have made side segments */
	if (large) {
		PyObject *exc_type, *exc_val, *exc_tb;
		PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
		for (Py_ssize_t i = 0; i < PyList_GET_SIZE(large); i++) {
			PyObject *r = PyObject_CallOneArg(discard_large_fn, PyList_GET_ITEM(large, i));
			if (!r)
				PyErr_WriteUnraisable(discard_large_fn);
			Py_XDECREF(r);
		}
		PyErr_Restore(exc_type, exc_val, exc_tb);
	}
out:
	PyMem_Free(iov);
	Py_XDECREF(recs);
	Py_XDECREF(large);
	Py_DECREF(seq);
	if (PyErr_Occurred())
		return NULL;
	Py_RETURN_NONE;
}

/* --------------------------------------------------------------- get */

struct peek_ctx {
	struct shmring     *r;
	struct shmring_span span;
};
static ssize_t op_peek(void *p, int64_t timeout_ns)
{
	struct peek_ctx *c = p;
	return shmring_peek(c->r, &c->span, timeout_ns);
}

/* One record taken: count it off maxsize. */
static inline void took(RingObject *ring, int64_t n)
{
	if (ring->meta)
		meta_release(ring->meta, n);
}

/* Records taken from the ring by get_many but not delivered (one after a
 * record that failed to unpickle) come out first, in order.  Decodes the
 * first; on failure it is dropped (and the error raised) only if drop_bad. */
static PyObject *pop_pending(QueueObject *q, int raw, int drop_bad)
{
	PyObject *rec = PyList_GET_ITEM(q->pending, 0);
	Py_INCREF(rec);
	PyObject *obj = raw ? rec : decode((const unsigned char *)PyBytes_AS_STRING(rec),
	                                   (size_t)PyBytes_GET_SIZE(rec));
	if (raw)
		Py_INCREF(obj);
	Py_DECREF(rec);
	if (obj || drop_bad) {
		PyObject *exc_type, *exc_val, *exc_tb;
		PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
		if (PySequence_DelItem(q->pending, 0) < 0)
			PyErr_Clear();
		if (PyList_GET_SIZE(q->pending) == 0)
			Py_CLEAR(q->pending);
		PyErr_Restore(exc_type, exc_val, exc_tb);
	}
	return obj;
}

/* Keep recs[from..n) for the next get. */
static void keep_pending(QueueObject *q, const struct iovec *recs, ssize_t from, ssize_t n)
{
	PyObject *exc_type, *exc_val, *exc_tb;
	PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
	if (!q->pending)
		q->pending = PyList_New(0);
	for (ssize_t j = from; j < n && q->pending; j++) {
		PyObject *b = PyBytes_FromStringAndSize(recs[j].iov_base, (Py_ssize_t)recs[j].iov_len);
		if (!b || PyList_Append(q->pending, b) < 0)
			PyErr_WriteUnraisable((PyObject *)q); /* lost: out of memory */
		Py_XDECREF(b);
	}
	PyErr_Restore(exc_type, exc_val, exc_tb);
}

/* Take one record; decode it (raw = 0) or return its bytes (raw = 1). */
static PyObject *do_get(QueueObject *q, PyObject *block, PyObject *timeout, int raw)
{
	if (check_usable(q) < 0)
		return NULL;
	if (q->pending)
		return pop_pending(q, raw, 1);
	struct tmo t;
	if (make_tmo(block, timeout, &t) < 0)
		return NULL;
	RingObject *ring = q->ring;
	struct peek_ctx c = { ring->r };
	ssize_t rc = run_op(q, op_peek, &c, &t, SHMRING_PRODUCER, 0);
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
		shmring_release(ring->r, &c.span);
		if (!rec)
			return NULL;
		obj = PyObject_CallOneArg(get_large_fn, rec);
		Py_DECREF(rec);
		return obj;
	} else {
		obj = decode(p, len);
	}
	shmring_release(ring->r, &c.span);
	return obj;
}

static const char *const get_names[] = { "block", "timeout" };

static PyObject *Queue_get(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
	PyObject *a[2] = { NULL, NULL };
	if ((nargs || kwnames) &&
	    parse_args("get", args, nargs, kwnames, get_names, 2, 0, a) < 0)
		return NULL;
	return do_get(q, a[0], a[1], 0);
}

static PyObject *Queue_get_nowait(QueueObject *q, PyObject *unused)
{
	return do_get(q, Py_False, NULL, 0);
}

static PyObject *Queue_get_bytes(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
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
	while (q->pending && PyList_GET_SIZE(out) < max_items) {
		PyObject *obj = pop_pending(q, raw, PyList_GET_SIZE(out) == 0);
		if (!obj) {
			if (PyList_GET_SIZE(out) == 0) {
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
		struct getmany_ctx c = { ring->r, buf, GETMANY_BUF, recs, want };
		ssize_t rc = run_op(q, op_get_many, &c, tp, SHMRING_PRODUCER, 0);
		if (rc == -EMSGSIZE) {
			/* the next record alone is bigger than our buffer */
			PyObject *obj = do_get(q, Py_False, NULL, raw);
			if (!obj) {
				if (got && PyErr_ExceptionMatches(Empty)) {
					PyErr_Clear();
					break;
				}
				goto fail;
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
			if (got && (rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EPIPE))
				break;
			raise_for(rc, Empty);
			goto fail;
		}
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
				if (got == 0) {
					keep_pending(q, recs, i + 1, rc);
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

static PyObject *Queue_get_many(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
	return do_get_many(q, args, nargs, kwnames, 0);
}

static PyObject *Queue_get_bytes_many(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames)
{
	return do_get_many(q, args, nargs, kwnames, 1);
}

/* ------------------------------------------------------ the small methods */

static PyObject *Queue_qsize(QueueObject *q, PyObject *unused)
{
	if (!q->ring)
		return PyLong_FromLong(0);
	Py_ssize_t extra = q->pending ? PyList_GET_SIZE(q->pending) : 0;
	if (q->ring->meta) {
		int64_t c = atomic_load_explicit(&q->ring->meta->count, memory_order_relaxed);
		return PyLong_FromLongLong((c > 0 ? c : 0) + extra);
	}
	struct shmring_info i;
	if (shmring_info(q->ring->r, &i) < 0)
		return PyLong_FromSsize_t(extra);
	return PyLong_FromSsize_t((Py_ssize_t)i.records + extra);
}

static PyObject *Queue_empty(QueueObject *q, PyObject *unused)
{
	if (!q->ring || q->pending)
		return PyBool_FromLong(!q->ring ? 1 : 0);
	ssize_t n = shmring_next_len(q->ring->r);
	return PyBool_FromLong(n < 0);
}

static PyObject *Queue_full(QueueObject *q, PyObject *unused)
{
	if (!q->ring)
		Py_RETURN_FALSE;
	RingObject *ring = q->ring;
	if (ring->meta &&
	    atomic_load_explicit(&ring->meta->count, memory_order_relaxed) >= ring->maxsize)
		Py_RETURN_TRUE;
	struct shmring_pollitem it = { ring->r, SHMRING_POLLOUT, 0 };
	int rc = shmring_poll(&it, 1, 0);
	return PyBool_FromLong(rc == 0);
}

static PyObject *Queue_close(QueueObject *q, PyObject *unused)
{
	q->closed = 1;
	Py_RETURN_NONE;
}

static PyObject *Queue_noop(QueueObject *q, PyObject *unused)
{
	Py_RETURN_NONE;
}

static PyObject *Queue_task_done(QueueObject *q, PyObject *unused)
{
	if (check_usable(q) < 0)
		return NULL;
	int rc = shmring_task_done(q->ring->r);
	if (rc == -ERANGE) {
		PyErr_SetString(PyExc_ValueError, "task_done() called too many times");
		return NULL;
	}
	if (rc < 0)
		return set_errno_error(rc);
	Py_RETURN_NONE;
}

struct join_ctx {
	struct shmring *r;
};
static ssize_t op_join(void *p, int64_t timeout_ns)
{
	struct join_ctx *c = p;
	return shmring_join(c->r, timeout_ns);
}

/* join(timeout=None): True once every task is done, False on timeout. */
static PyObject *Queue_join(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
	static const char *const names[] = { "timeout" };
	PyObject *a[1] = { NULL };
	if ((nargs || kwnames) && parse_args("join", args, nargs, kwnames, names, 1, 0, a) < 0)
		return NULL;
	if (check_usable(q) < 0)
		return NULL;
	struct tmo t;
	if (make_tmo(Py_True, a[0], &t) < 0)
		return NULL;
	struct join_ctx c = { q->ring->r };
	ssize_t rc = run_op(q, op_join, &c, &t, 0, 0);
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
	return PyLong_FromUnsignedLongLong(shmring_unfinished(q->ring->r));
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
	return PyBool_FromLong(q->closed);
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

static PyTypeObject Queue_Type = {
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

/* ---------------------------------------------------------------- module */

/* _setup(Empty, Full, ShutDown, put_large, get_large, discard_large) */
static PyObject *mod_setup(PyObject *mod, PyObject *args)
{
	PyObject *e, *f, *s, *pl, *gl, *dl;
	if (!PyArg_ParseTuple(args, "OOOOOO:_setup", &e, &f, &s, &pl, &gl, &dl))
		return NULL;
#define SET(var, val) do { Py_INCREF(val); Py_XSETREF(var, val); } while (0)
	SET(Empty, e);
	SET(Full, f);
	SET(ShutDown, s);
	SET(put_large_fn, pl);
	SET(get_large_fn, gl);
	SET(discard_large_fn, dl);
#undef SET
	Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
	{"create", mod_create, METH_VARARGS, "create(name, capacity, max_record, mode) -> Ring"},
	{"open", mod_open, METH_O, "open(name) -> Ring"},
	{"attach_fd", mod_attach_fd, METH_O, "attach_fd(fd) -> Ring (fd is duplicated)"},
	{"unlink", mod_unlink, METH_O, "unlink(name): remove a named ring's name"},
	{"_setup", mod_setup, METH_VARARGS, "internal"},
	{NULL}
};

static struct PyModuleDef moddef = {
	PyModuleDef_HEAD_INIT, "_shmring", "C core of the shmring package.", -1, mod_methods,
};

PyMODINIT_FUNC PyInit__shmring(void);
PyMODINIT_FUNC PyInit__shmring(void)
{
	if (PyType_Ready(&Ring_Type) < 0 || PyType_Ready(&Queue_Type) < 0)
		return NULL;
	const char *env = getenv("SHMRING_PY_YIELD_NS");
	if (env && *env)
		default_yield_ns = strtoll(env, NULL, 10);
	env = getenv("SHMRING_PY_PAUSE_NS");
	if (env && *env)
		default_pause_ns = strtoll(env, NULL, 10);
	env = getenv("SHMRING_PY_SPIN");
	if (env && *env)
		default_spin = strtol(env, NULL, 10);
	PyObject *m = PyModule_Create(&moddef);
	if (!m)
		return NULL;
	PyObject *pk = PyImport_ImportModule("_pickle");
	if (!pk)
		pk = PyImport_ImportModule("pickle");
	if (!pk)
		goto fail;
	pickle_dumps = PyObject_GetAttrString(pk, "dumps");
	pickle_loads = PyObject_GetAttrString(pk, "loads");
	Py_DECREF(pk);
	str_buffer_callback = PyUnicode_InternFromString("buffer_callback");
	str_buffers = PyUnicode_InternFromString("buffers");
	str_release = PyUnicode_InternFromString("release");
	int_five = PyLong_FromLong(5);
	if (!pickle_dumps || !pickle_loads || !str_buffer_callback || !str_buffers ||
	    !str_release || !int_five)
		goto fail;
	kwnames_cb = PyTuple_Pack(1, str_buffer_callback);
	kwnames_buffers = PyTuple_Pack(1, str_buffers);
	if (!kwnames_cb || !kwnames_buffers)
		goto fail;
	Py_INCREF(&Ring_Type);
	Py_INCREF(&Queue_Type);
	if (PyModule_AddObject(m, "Ring", (PyObject *)&Ring_Type) < 0 ||
	    PyModule_AddObject(m, "QueueBase", (PyObject *)&Queue_Type) < 0 ||
	    PyModule_AddIntConstant(m, "SLICE_NS", SLICE_NS) < 0 ||
	    PyModule_AddIntConstant(m, "META_SIZE", META_SIZE) < 0 ||
	    PyModule_AddIntConstant(m, "DEFAULT_CAPACITY", SHMRING_DEFAULT_CAPACITY) < 0 ||
	    PyModule_AddIntConstant(m, "NAME_MAX", SHMRING_NAME_MAX) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_ATTACH", SHMRING_MAX_ATTACH) < 0 ||
	    PyModule_AddStringConstant(m, "META_MAGIC", META_MAGIC) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
