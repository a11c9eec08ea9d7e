/*
 * fastcodec.c - the compact encoding of small plain data (TAG_FAST records):
 * about 3x cheaper than pickle for a tuple of ints.
 *
 * Exact builtin atoms (None, bool, int that fits in 64 bits, float, str,
 * bytes) and tuples of them, nested; a list or dict only at the top (so no
 * mutable object can appear twice, and pickle's shared references cannot
 * differ).  Anything else, or more than FAST_MAX bytes, goes to pickle.
 *   'N' 'T' 'F' | 'i' int64 | 'd' double | 's'/'b' u32 len, bytes |
 *   '(' / '[' u32 n, n values | '{' u32 n, n key-value pairs  (little-endian)
 */
#include "pyshmring.h"

#include <string.h>

#define FAST_DEPTH 8

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

PyObject *fast_decode(const unsigned char *p, size_t len)
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

int fast_encode(PyObject *o, unsigned char *buf, size_t *len)
{
	struct fbuf b = { buf, 0 };
	if (fenc(&b, o, 0))
		return 1;
	*len = b.len;
	return 0;
}

