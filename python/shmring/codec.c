/*
 * codec.c - objects to records and back: pickle protocol 5 (in-band, or with
 * out-of-band buffers laid out after the stream), raw bytes, the compact
 * codec (fastcodec.c), and side segments for objects bigger than max_record
 * (made and read by __init__.py's _put_large/_get_large).
 */
#include "pyshmring.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

void enc_init(struct enc *e)
{
	e->iov = e->small;
	e->iovcnt = 0;
	e->total = 0;
	e->keep = e->record = NULL;
	e->hdr = NULL;
	e->views = NULL;
	e->nviews = 0;
}

void enc_free(struct enc *e)
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
void enc_discard(struct enc *e)
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


/* kind 0: pickle stream (+ out-of-band buffers), kind 1: raw bytes. */
static int enc_large(struct enc *e, int kind, PyObject *data, PyObject *bufs, unsigned mode,
                     int side, size_t size, size_t max_record)
{
	if (!side) {   /* a side segment exists on this host only (docs/python.md) */
		PyErr_Format(PyExc_ValueError,
		             "put: the object (%zu bytes %s) is larger than the queue's max_record "
		             "(%zu bytes) and side segments are off: make the queue with a bigger "
		             "max_record, or with side_segments=True if every consumer is on "
		             "this host", size, kind ? "as a record" : "pickled", max_record);
		return -1;
	}
	PyObject *rec = PyObject_CallFunction(put_large_fn, "iOOI", kind, data,
	                                      bufs ? bufs : Py_None, mode);
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

int encode(struct enc *e, PyObject *obj, size_t max_record, unsigned mode, int side)
{
	enc_init(e);
	if (PyBytes_CheckExact(obj)) {
		size_t n = (size_t)PyBytes_GET_SIZE(obj);
		if (n + 1 > max_record)
			return enc_large(e, 1, obj, NULL, mode, side, n + 1, max_record);
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
		size_t len;
		if (fast_encode(obj, e->fast + 1, &len) == 0) {
			e->fast[0] = TAG_FAST;
			e->iov[0] = (struct iovec){ e->fast, len + 1 };
			e->iovcnt = 1;
			e->total = len + 1;
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
			rc = enc_large(e, 0, stream, bufs, mode, side, e->total, max_record);
		Py_DECREF(bufs);
		return rc;
	}
	Py_XDECREF(bufs);
	size_t n = (size_t)PyBytes_GET_SIZE(stream);
	if (n > max_record)
		return enc_large(e, 0, stream, NULL, mode, side, n, max_record);
	e->iov[0] = (struct iovec){ PyBytes_AS_STRING(stream), n };
	e->iovcnt = 1;
	e->total = n;
	return 0;
}

/* One record as one contiguous bytes object (for put_many). */
PyObject *enc_flat(struct enc *e)
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

PyObject *bytes_copy(const unsigned char *p, size_t len)
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
PyObject *decode(const unsigned char *p, size_t len)
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
		return fast_decode(p, len);
	case TAG_BYTES:
		return bytes_copy(p + 1, len - 1);
	case TAG_OOB:
		return decode_oob(p, len);
	case TAG_LARGE: {
		PyObject *rec = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)len);
		if (!rec)
			return NULL;
		PyObject *obj = large_object(rec);
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

/* The object of a reference record (__init__.py _get_large builds it and
 * leaves the side segment), then the segment removed here, in C: no Python
 * code runs between the removal and the return, so a KeyboardInterrupt
 * either comes while the object is built (the segment stays, and so does
 * the record: get.c keep_first, get_many keep_pending) or after the get
 * returned it.  Another user's segment this user may not remove is
 * truncated instead (its data was copied out first), as before. */
PyObject *large_object(PyObject *rec)
{
	PyObject *t = PyObject_CallOneArg(get_large_fn, rec);
	if (!t)
		return NULL;
	PyObject *obj = NULL;
	const char *name;
	int mine;
	if (!PyTuple_Check(t) || !PyArg_ParseTuple(t, "Osp", &obj, &name, &mine)) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_SystemError, "_get_large: not (obj, name, mine)");
		Py_DECREF(t);
		return NULL;
	}
	char path[512];
	if (snprintf(path, sizeof path, "/dev/shm/%s", name) < (int)sizeof path &&
	    unlink(path) < 0 && (errno == EACCES || errno == EPERM) && !mine) {
		int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			if (ftruncate(fd, 0) < 0) {
				/* its memory stays until its owner removes it */
			}
			close(fd);
		}
	}
	Py_INCREF(obj);
	Py_DECREF(t);
	return obj;
}

/* A reference record that will never be delivered: remove its segment. */
void discard_record(PyObject *rec)
{
	PyObject *exc_type, *exc_val, *exc_tb;
	PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
	PyObject *r = PyObject_CallOneArg(discard_large_fn, rec);
	if (!r)
		PyErr_WriteUnraisable(discard_large_fn);
	Py_XDECREF(r);
	PyErr_Restore(exc_type, exc_val, exc_tb);
}
