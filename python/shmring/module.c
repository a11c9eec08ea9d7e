/*
 * module.c - the _shmring module: its globals, the functions that make and
 * open queues' rings, and initialisation (pyshmring.h lists the files).
 */
#include "pyshmring.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

PyObject *pickle_dumps, *pickle_loads;
PyObject *str_release, *kwnames_cb, *kwnames_buffers, *int_five;
PyObject *Empty, *Full, *ShutDown;       /* set by _setup() */
PyObject *put_large_fn, *get_large_fn, *discard_large_fn;

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

PyObject *set_errno_error(int rc)
{
	PyObject *args = Py_BuildValue("(is)", -rc, shmring_strerror(rc));
	if (args) {
		PyErr_SetObject(PyExc_OSError, args);
		Py_DECREF(args);
	}
	return NULL;
}

/* A file descriptor argument (an int in C int range, >= 0). */
int fd_arg(PyObject *arg, int *fd)
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

int check_setup(void)
{
	if (!Empty) {
		PyErr_SetString(PyExc_RuntimeError, "shmring._shmring used before _setup()");
		return -1;
	}
	return 0;
}

static int check_sizes(Py_ssize_t capacity, Py_ssize_t max_record, unsigned max_attach)
{
	if (capacity < 0 || max_record < 0) {
		PyErr_SetString(PyExc_ValueError, "capacity and max_record must be >= 0");
		return -1;
	}
	if (max_attach > SHMRING_MAX_ATTACH_LIMIT) {
		PyErr_Format(PyExc_ValueError, "max_attach must be at most %d",
		             SHMRING_MAX_ATTACH_LIMIT);
		return -1;
	}
	return 0;
}

/* create(name, capacity, max_record, mode, ctl_fd, max_attach=0, light=False) -> Ring */
static PyObject *mod_create(PyObject *mod, PyObject *args)
{
	PyObject *name, *ctl;
	Py_ssize_t capacity, max_record;
	unsigned mode, max_attach = 0;
	int ctl_fd, light = 0;
	if (!PyArg_ParseTuple(args, "OnnIO|Ip:create", &name, &capacity, &max_record, &mode, &ctl,
	                      &max_attach, &light) ||
	    fd_arg(ctl, &ctl_fd) < 0 || check_sizes(capacity, max_record, max_attach) < 0)
		return NULL;
	const char *cname = NULL;
	if (name != Py_None && !(cname = PyUnicode_AsUTF8(name)))
		return NULL;
	struct shmring_config cfg = { .capacity = (size_t)capacity, .max_record = (size_t)max_record,
	                              .mode = mode, .max_attach = max_attach,
	                              .flags = light ? SHMRING_LIGHT_PUBLISH : 0 };
	struct shmring *r;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = shmring_create(&r, cname, &cfg);
	Py_END_ALLOW_THREADS
	if (rc == 0 && (rc = ring_reserve(r)) < 0) {
		shmring_detach(r);
		if (cname)
			shmring_unlink(cname);
	}
	if (rc < 0)
		return set_errno_error(rc);
	return ring_wrap(r, name == Py_None ? NULL : name, ctl_fd);
}

/* open_or_create(name, capacity, max_record, mode, max_attach, ctl_fd,
 *                joinable, maxsize, stem, side_segments=True, light=False)
 *                -> (Ring, created)
 * The named ring, made now or opened (the library's shmring_open_or_create:
 * race-free, one creator), then its control page written into ctl_fd: an
 * empty file that the caller holds locked (flock, __init__.py), so nobody
 * sees the pair half made.  The control page takes the geometry of the
 * ring as it is (an existing ring keeps its own, and its publication:
 * light or not). */
static PyObject *mod_open_or_create(PyObject *mod, PyObject *args)
{
	PyObject *name, *ctl;
	Py_ssize_t capacity, max_record;
	unsigned mode, max_attach;
	int ctl_fd, joinable;
	long long maxsize;
	const char *stem;
	int side_segments = 1, light = 0;
	if (!PyArg_ParseTuple(args, "UnnIIOpLs|pp:open_or_create", &name, &capacity, &max_record,
	                      &mode, &max_attach, &ctl, &joinable, &maxsize, &stem,
	                      &side_segments, &light) ||
	    fd_arg(ctl, &ctl_fd) < 0 || check_sizes(capacity, max_record, max_attach) < 0)
		return NULL;
	if (maxsize < 0) {
		PyErr_SetString(PyExc_ValueError, "negative maxsize");
		return NULL;
	}
	const char *cname = PyUnicode_AsUTF8(name);
	if (!cname)
		return NULL;
	struct shmring_config cfg = { .capacity = (size_t)capacity, .max_record = (size_t)max_record,
	                              .mode = mode, .max_attach = max_attach,
	                              .flags = light ? SHMRING_LIGHT_PUBLISH : 0 };
	struct shmring *r;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = shmring_open_or_create(&r, cname, &cfg);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return set_errno_error(rc);
	int created = rc;
	struct shmring_info info;
	struct stat st;
	if (created)
		rc = ring_reserve(r);
	if (rc == 0)
		rc = shmring_info(r, &info);
	if (rc == 0 && fstat(shmring_fd(r), &st) < 0)
		rc = -errno;
	if (rc == 0)
		rc = ctl_init(ctl_fd, joinable ? QK_JOINABLE : QK_PLAIN, maxsize, info.capacity,
		              info.max_record, created ? mode : (unsigned)(st.st_mode & 07777),
		              created ? max_attach : (unsigned)info.max_attach, stem,
		              side_segments, info.delivery & SHMRING_LIGHT_PUBLISH);
	if (rc < 0) {
		shmring_detach(r);
		if (created)
			shmring_unlink(cname);
		return set_errno_error(rc);
	}
	PyObject *ring = ring_wrap(r, name, ctl_fd);
	if (!ring)
		return NULL;
	return Py_BuildValue("(NO)", ring, created ? Py_True : Py_False);
}

/* open(name, ctl_fd) -> Ring */
static PyObject *mod_open(PyObject *mod, PyObject *args)
{
	PyObject *name, *ctl;
	int ctl_fd;
	if (!PyArg_ParseTuple(args, "UO:open", &name, &ctl) || fd_arg(ctl, &ctl_fd) < 0)
		return NULL;
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
	return ring_wrap(r, name, ctl_fd);
}

/* attach_fd(ring_fd, ctl_fd) -> Ring (both duplicated) */
static PyObject *mod_attach_fd(PyObject *mod, PyObject *args)
{
	PyObject *a, *b;
	int fd, ctl_fd;
	if (!PyArg_ParseTuple(args, "OO:attach_fd", &a, &b) || fd_arg(a, &fd) < 0 ||
	    fd_arg(b, &ctl_fd) < 0)
		return NULL;
	struct shmring *r;
	int rc = shmring_attach_fd(&r, fd);
	if (rc < 0)
		return set_errno_error(rc);
	return ring_wrap(r, NULL, ctl_fd);
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

/* ctl_init(fd, joinable, maxsize, capacity, max_record, mode, stem, max_attach=0,
 *          side_segments=True, light=False) */
static PyObject *mod_ctl_init(PyObject *mod, PyObject *args)
{
	PyObject *fdo;
	int fd, joinable;
	long long maxsize;
	Py_ssize_t capacity, max_record;
	unsigned mode, max_attach = 0;
	int side_segments = 1, light = 0;
	const char *stem;
	if (!PyArg_ParseTuple(args, "OpLnnIs|Ipp:ctl_init", &fdo, &joinable, &maxsize, &capacity,
	                      &max_record, &mode, &stem, &max_attach, &side_segments, &light) ||
	    fd_arg(fdo, &fd) < 0)
		return NULL;
	if (maxsize < 0 || capacity < 0 || max_record < 0) {
		PyErr_SetString(PyExc_ValueError, "negative size");
		return NULL;
	}
	int rc = ctl_init(fd, joinable ? QK_JOINABLE : QK_PLAIN, maxsize, (size_t)capacity,
	                  (size_t)max_record, mode, max_attach, stem, side_segments,
	                  light ? SHMRING_LIGHT_PUBLISH : 0);
	if (rc < 0)
		return set_errno_error(rc);
	Py_RETURN_NONE;
}

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
	{"create", mod_create, METH_VARARGS,
	 "create(name, capacity, max_record, mode, ctl_fd, max_attach=0, light=False) -> Ring"},
	{"open_or_create", mod_open_or_create, METH_VARARGS,
	 "open_or_create(name, capacity, max_record, mode, max_attach, ctl_fd, joinable, maxsize, "
	 "stem, side_segments=True, light=False) -> (Ring, created)"},
	{"open", mod_open, METH_VARARGS, "open(name, ctl_fd) -> Ring"},
	{"attach_fd", mod_attach_fd, METH_VARARGS,
	 "attach_fd(ring_fd, ctl_fd) -> Ring (fds are duplicated)"},
	{"unlink", mod_unlink, METH_O, "unlink(name): remove a named ring's name"},
	{"ctl_init", mod_ctl_init, METH_VARARGS,
	 "ctl_init(fd, joinable, maxsize, capacity, max_record, mode, stem, max_attach=0, "
	 "side_segments=True, light=False)"},
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
	PyObject *str_buffer_callback = PyUnicode_InternFromString("buffer_callback");
	PyObject *str_buffers = PyUnicode_InternFromString("buffers");
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
	    PyModule_AddIntConstant(m, "CTL_SIZE", CTL_SIZE) < 0 ||
	    PyModule_AddIntConstant(m, "CTL_STEM", CTL_STEM) < 0 ||
	    PyModule_AddIntConstant(m, "DEFAULT_CAPACITY", SHMRING_DEFAULT_CAPACITY) < 0 ||
	    PyModule_AddIntConstant(m, "MIN_CAPACITY", SHMRING_MIN_CAPACITY) < 0 ||
	    PyModule_AddIntConstant(m, "SLOT_SIZE", SHMRING_SLOT_SIZE) < 0 ||
	    PyModule_AddIntConstant(m, "NAME_MAX", SHMRING_NAME_MAX) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_ATTACH", SHMRING_MAX_ATTACH) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_ATTACH_LIMIT", SHMRING_MAX_ATTACH_LIMIT) < 0 ||
	    PyModule_AddObject(m, "CTL_MAGIC", PyBytes_FromStringAndSize(CTL_MAGIC, 8)) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
