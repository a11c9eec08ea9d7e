/*
 * ringobj.c - the Ring type: one process's handle on a queue's rings and
 * control page (pyshmring.h).  Shared by every queue object of this process
 * that uses the same queue (the Python layer caches Rings by the (st_dev,
 * st_ino) of generation 0's file).
 */
#include "pyshmring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* This process lets go of the queue: off the holders' table, and the last
 * process of an anonymous queue takes its overflow rings' names with it (a
 * named queue's go with unlink()); only if every process that had it was
 * listed (the table never overflowed), or one not listed could still need
 * a name.  Once per process (the holder slot is given back). */
static void ring_leave_holders(RingObject *self)
{
	int listed = self->holder >= 0 && self->pid == getpid();
	ctl_unregister_holder(self);
	if (self->name == Py_None && listed && !atomic_load(&self->ctl->holders_overflow) &&
	    !ctl_live_holders(self))
		gens_unlink_names(self);
}

static void Ring_dealloc(RingObject *self)
{
	if (self->weakreflist)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->ctl) {
		ring_leave_holders(self);
		gens_free(self);
		munmap(self->ctl, CTL_SIZE);
	}
	if (self->r)
		shmring_detach(self->r);
	PyMem_RawFree(self->getbuf);
	if (self->ctl_fd >= 0)
		close(self->ctl_fd);
	Py_XDECREF(self->name);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Map the control page behind ctl_fd (duplicated) after checking that it is
 * what the ring says: a regular file of CTL_SIZE bytes, same owner as the
 * ring's file, writable by nobody the ring's file does not let write. */
static int map_ctl(int ring_fd, int ctl_fd, struct qctl **out, int *dup_out, struct stat *rst)
{
	struct stat st;
	if (fstat(ring_fd, rst) < 0 || fstat(ctl_fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_uid != rst->st_uid || (st.st_mode & ~rst->st_mode & 0022) ||
	    st.st_size != CTL_SIZE)
		return -EPERM;
	int dfd = fcntl(ctl_fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return -errno;
	void *p = mmap(NULL, CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		close(dfd);
		return -e;
	}
	/* A page of a file truncated under a mapping faults (SIGBUS): so a
	 * named control file is trusted only from the ring's owner (checked
	 * above), who never truncates it, and an anonymous one is sealed
	 * against shrinking (__init__.py). */
	if (ctl_check(p, st.st_size) < 0) {
		munmap(p, CTL_SIZE);
		close(dfd);
		return -EBADMSG;
	}
	*out = p;
	*dup_out = dfd;
	return 0;
}

PyObject *ring_wrap(struct shmring *r, PyObject *name, int ctl_fd)
{
	struct qctl *ctl = NULL;
	int dfd = -1, rc;
	struct stat st;
	if ((rc = map_ctl(shmring_fd(r), ctl_fd, &ctl, &dfd, &st)) < 0) {
		shmring_detach(r);
		if (rc == -EPERM || rc == -EBADMSG) {
			PyErr_Format(rc == -EPERM ? PyExc_PermissionError : PyExc_ValueError,
			             "%s: the queue's control file %s",
			             rc == -EPERM ? "refused" : "not a shmring queue",
			             rc == -EPERM ? "has another owner, mode or size than its ring"
			                          : "is not a shmring control page (bad magic)");
			return NULL;
		}
		return set_errno_error(rc);
	}
	RingObject *self = PyObject_New(RingObject, &Ring_Type);
	if (!self) {
		munmap(ctl, CTL_SIZE);
		close(dfd);
		shmring_detach(r);
		return NULL;
	}
	struct shmring_info info;
	shmring_info(r, &info);
	self->r = r;
	self->ctl = ctl;
	self->ctl_fd = dfd;
	self->capacity = info.capacity;
	self->max_record = info.max_record;
	self->name = name ? name : Py_None;
	Py_INCREF(self->name);
	self->maxsize = (int64_t)ctl->maxsize;
	self->gens = NULL;
	self->holder = -1;
	self->pid = getpid();
	self->getbuf = NULL;
	self->getbuf_busy = 0;
	self->evfd = 0;
	self->dev = st.st_dev;
	self->ino = st.st_ino;
	self->weakreflist = NULL;
	struct gen *g0 = PyMem_RawCalloc(1, sizeof *g0);
	if (!g0) {
		Py_DECREF(self);
		return PyErr_NoMemory();
	}
	g0->r = r;
	self->gens = g0;
	return (PyObject *)self;
}

/* ---------------------------------------------------------------- methods */

static PyObject *Ring_fileno(RingObject *self, PyObject *unused)
{
	return PyLong_FromLong(shmring_fd(self->r));
}

static PyObject *Ring_ctl_fileno(RingObject *self, PyObject *unused)
{
	return PyLong_FromLong(self->ctl_fd);
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
	struct qctl *c = self->ctl;
	long long count = self->maxsize ? (long long)(self->maxsize - shmring_sem_value(&c->room))
	                                : -1;
	return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:n,s:O,s:O,s:K,s:K,s:I,s:I,s:O,s:L,s:L,s:L,s:K,s:K,"
	                     "s:O}",
	                     "capacity", (Py_ssize_t)i.capacity,
	                     "max_record", (Py_ssize_t)i.max_record,
	                     "max_attach", (Py_ssize_t)i.max_attach,
	                     "records", (Py_ssize_t)i.records,
	                     "bytes", (Py_ssize_t)i.bytes,
	                     "used", (Py_ssize_t)i.used,
	                     "closed", atomic_load(&c->shut) ? Py_True : Py_False,
	                     "named", i.named ? Py_True : Py_False,
	                     "futex_waits", (unsigned long long)i.futex_waits,
	                     "futex_wakes", (unsigned long long)i.futex_wakes,
	                     "producers", i.producers,
	                     "consumers", i.consumers,
	                     "eof", i.eof ? Py_True : Py_False,
	                     "unfinished", (long long)shmring_latch_count(&c->tasks),
	                     "maxsize", (long long)self->maxsize,
	                     "count", count,
	                     "head", (unsigned long long)atomic_load(&c->head),
	                     "tail", (unsigned long long)atomic_load(&c->tail),
	                     "light", (i.delivery & SHMRING_LIGHT_PUBLISH) ? Py_True : Py_False);
}

/* Ring.shutdown(): for every process.  The flag first, then the tail ring
 * closed (waking every sleeper); a tail that moved meanwhile is closed too
 * (gen_grow closes a ring it adds after seeing the flag). */
static PyObject *Ring_shutdown(RingObject *self, PyObject *unused)
{
	atomic_store_explicit(&self->ctl->shut, 1, memory_order_seq_cst);
	for (;;) {
		struct gen *g = gen_tail(self);
		if (!g)
			return NULL;
		shmring_close(g->r);
		uint64_t t = g->g;
		gen_unpin(g);
		if (atomic_load_explicit(&self->ctl->tail, memory_order_seq_cst) == t)
			break;
	}
	Py_RETURN_NONE;
}

static PyObject *Ring_set_spin(RingObject *self, PyObject *arg)
{
	unsigned long v = PyLong_AsUnsignedLong(arg);
	if (v == (unsigned long)-1 && PyErr_Occurred())
		return NULL;
	for (struct gen *g = self->gens; g; g = g->next)
		shmring_set_spin(g->r, (unsigned)(v > UINT_MAX ? UINT_MAX : v));
	Py_RETURN_NONE;
}

/* register_holder() -> (pid, ring_fd, ctl_fd): list this process as one that
 * can hand the queue's fds to others (pickling an anonymous queue). */
static PyObject *Ring_register_holder(RingObject *self, PyObject *unused)
{
	int rc = ctl_register_holder(self);
	if (rc < 0)
		return set_errno_error(rc);
	return Py_BuildValue("(iii)", (int)self->pid, shmring_fd(self->r), self->ctl_fd);
}

/* holders() -> [(pid, ring_fd, ctl_fd), ...] of the processes listed. */
static PyObject *Ring_holders(RingObject *self, PyObject *unused)
{
	PyObject *out = PyList_New(0);
	for (int i = 0; out && i < CTL_HOLDERS; i++) {
		struct ctl_holder *h = &self->ctl->holders[i];
		int32_t pid = atomic_load_explicit(&h->pid, memory_order_acquire);
		if (pid <= 0)
			continue;
		PyObject *t = Py_BuildValue("(iii)", pid, h->ring_fd, h->ctl_fd);
		if (!t || PyList_Append(out, t) < 0)
			Py_CLEAR(out);
		Py_XDECREF(t);
	}
	return out;
}

static PyObject *Ring_unlink_generations(RingObject *self, PyObject *unused)
{
	gens_unlink_names(self);
	Py_RETURN_NONE;
}

/* _grow_after_read(t): for tests, what a producer that read tail == t,
 * found ring t full and was preempted until now does next (gen_grow_read). */
static PyObject *Ring_grow_after_read(RingObject *self, PyObject *arg)
{
	unsigned long long t = PyLong_AsUnsignedLongLong(arg);
	if (t == (unsigned long long)-1 && PyErr_Occurred())
		return NULL;
	struct gen *g = gen_at(self, t);
	if (!g)
		return PyErr_Format(PyExc_FileNotFoundError, "generation %llu is gone", t);
	int rc = gen_grow_read(self, g);
	gen_unpin(g);
	if (rc < 0)
		return set_errno_error(rc);
	Py_RETURN_NONE;
}

/* event_fd(): the library's event fd of the generation gets take from now
 * (readable when a get may succeed); it changes when that generation is
 * drained, so ask again after each wait. */
static PyObject *Ring_event_fd(RingObject *self, PyObject *unused)
{
	struct gen *g = gen_head(self);
	if (!g)
		return NULL;
	int fd = shmring_event_fd(g->r);
	unsigned long long gen = g->g;
	gen_unpin(g);
	self->evfd = 1;
	if (fd < 0)
		return set_errno_error(fd);
	return Py_BuildValue("(iK)", fd, gen);
}

static PyObject *Ring_event_ack(RingObject *self, PyObject *unused)
{
	struct gen *g = gen_head(self);
	if (!g)
		return NULL;
	int rc = shmring_event_ack(g->r);
	gen_unpin(g);
	if (rc < 0 && rc != -EAGAIN)
		return set_errno_error(rc);
	Py_RETURN_NONE;
}

/* At interpreter exit (__init__.py): what dealloc would do for the holders'
 * table, for a Ring that is never freed (a daemon thread still holds its
 * queue: the overflow rings' names stayed in /dev/shm after a clean exit). */
static PyObject *Ring_leave_at_exit(RingObject *self, PyObject *unused)
{
	if (self->ctl)
		ring_leave_holders(self);
	Py_RETURN_NONE;
}

static PyMethodDef Ring_methods[] = {
	{"leave_at_exit", (PyCFunction)Ring_leave_at_exit, METH_NOARGS,
	 "At exit: off the holders' table; the last holder of an anonymous queue unlinks its "
	 "overflow rings' names."},
	{"fileno", (PyCFunction)Ring_fileno, METH_NOARGS, "Generation 0's fd (owned by the ring)."},
	{"ctl_fileno", (PyCFunction)Ring_ctl_fileno, METH_NOARGS, "The control page's fd."},
	{"key", (PyCFunction)Ring_key, METH_NOARGS, "(st_dev, st_ino) of the ring's file."},
	{"info", (PyCFunction)Ring_info, METH_NOARGS, "A snapshot of the queue (dict)."},
	{"shutdown", (PyCFunction)Ring_shutdown, METH_NOARGS, "Shut the queue for every process."},
	{"set_spin", (PyCFunction)Ring_set_spin, METH_O, "Spin iterations before sleeping."},
	{"register_holder", (PyCFunction)Ring_register_holder, METH_NOARGS,
	 "List this process as one that hands the fds out: (pid, ring_fd, ctl_fd)."},
	{"holders", (PyCFunction)Ring_holders, METH_NOARGS, "[(pid, ring_fd, ctl_fd), ...]"},
	{"unlink_generations", (PyCFunction)Ring_unlink_generations, METH_NOARGS,
	 "Remove the names of the queue's overflow rings."},
	{"event_fd", (PyCFunction)Ring_event_fd, METH_NOARGS, "(fd, generation): fd readable when a get may succeed."},
	{"event_ack", (PyCFunction)Ring_event_ack, METH_NOARGS, "Re-arm event_fd()."},
	{"_grow_after_read", (PyCFunction)Ring_grow_after_read, METH_O,
	 "For tests: grow the chain as a producer that read tail == t and slept."},
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
static PyObject *Ring_get_side_segments(RingObject *self, void *c)
{
	return PyBool_FromLong(!self->ctl->no_side_segments);
}
static PyObject *Ring_get_light(RingObject *self, void *c)
{
	return PyBool_FromLong((self->ctl->ring_flags & SHMRING_LIGHT_PUBLISH) != 0);
}
static PyObject *Ring_get_stem(RingObject *self, void *c)
{
	return PyUnicode_FromString(self->ctl->stem);
}
static PyObject *Ring_get_joinable(RingObject *self, void *c)
{
	return PyBool_FromLong(self->ctl->kind == QK_JOINABLE);
}

static PyGetSetDef Ring_getset[] = {
	{"name", (getter)Ring_get_name, NULL, "ring name, or None", NULL},
	{"capacity", (getter)Ring_get_capacity, NULL, "bytes of record storage", NULL},
	{"max_record", (getter)Ring_get_max_record, NULL, "largest record, bytes", NULL},
	{"maxsize", (getter)Ring_get_maxsize, NULL, "item limit (0: none)", NULL},
	{"side_segments", (getter)Ring_get_side_segments, NULL,
	 "objects bigger than max_record go through a side segment (else ValueError)", NULL},
	{"joinable", (getter)Ring_get_joinable, NULL, "made by a JoinableQueue", NULL},
	{"light", (getter)Ring_get_light, NULL,
	 "every ring of the queue made with SHMRING_LIGHT_PUBLISH", NULL},
	{"stem", (getter)Ring_get_stem, NULL,
	 "the queue's overflow rings are /dev/shm/<stem><generation>", NULL},
	{NULL}
};

PyTypeObject Ring_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmring._shmring.Ring",
	.tp_basicsize = sizeof(RingObject),
	.tp_dealloc = (destructor)Ring_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "One process's handle on a queue's shared memory (internal).",
	.tp_weaklistoffset = offsetof(RingObject, weakreflist),
	.tp_methods = Ring_methods,
	.tp_getset = Ring_getset,
};
