/*
 * pyshmring.h - what the files of the _shmring extension share (internal).
 *
 * The extension behind the `shmring` package: a drop-in replacement for
 * multiprocessing's Queue, SimpleQueue and JoinableQueue on top of the
 * shmring C library's public API (docs/python.md).  One file per concern:
 *   module.c    the module: globals, _setup, errors, init
 *   ctl.c       a queue's control page (struct qctl) and its chain of rings
 *   ringobj.c   the Ring type: one process's handle on a queue's rings
 *   wait.c      timeouts and waiting (the library's waits, in slices)
 *   codec.c     objects to records and back (pickle, out-of-band, large)
 *   fastcodec.c the compact encoding of small plain data (TAG_FAST)
 *   put.c, get.c  the queue's put and get families
 *   queue.c     the QueueBase type: construction, small methods, join
 *
 * Records (the first byte says what a record is):
 *   0x80 ...  a pickle stream (protocol 5 starts with 0x80 0x05), in-band;
 *   0x01      pickle stream + out-of-band buffers (codec.c);
 *   0x02      a reference to a side segment in /dev/shm (__init__.py);
 *   0x03      a bytes object, verbatim after the tag byte;
 *   0x04      small plain data in shmring's own compact encoding (fastcodec.c).
 * put_bytes/get_bytes move raw records with no tag at all.
 */
#ifndef PYSHMRING_H
#define PYSHMRING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stdalign.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "shmring.h"
#include "shmring_batch.h"
#include "shmring_latch.h"
#include "shmring_poll.h"
#include "shmring_sem.h"
#include "shmring_zc.h"

#define SLICE_NS        50000000LL  /* longest wait without the GIL: 50 ms */
#define EOF_POLL_NS      2000000LL  /* fallback poll when a role cannot be declared */
#define NOGIL_COPY_MIN  (64 * 1024) /* copies this big run without the GIL */
#define OOB_MIN         4096        /* smaller PickleBuffers stay in-band */
#define OOB_ALIGN       64          /* out-of-band buffers start 64-aligned */
#define GETMANY_BUF     (256 * 1024)
#define ERR_PY          (-100000)   /* a Python exception is set */

#define TAG_OOB    0x01
#define TAG_LARGE  0x02
#define TAG_BYTES  0x03
#define TAG_FAST   0x04
#define TAG_PICKLE 0x80
#define FAST_MAX   512              /* TAG_FAST records up to this size */

/* module.c */
extern PyObject *pickle_dumps, *pickle_loads;
extern PyObject *str_release, *kwnames_cb, *kwnames_buffers, *int_five;
extern PyObject *Empty, *Full, *ShutDown;
extern PyObject *put_large_fn, *get_large_fn, *discard_large_fn;
int64_t   now_ns(void);
PyObject *set_errno_error(int rc);
int       fd_arg(PyObject *arg, int *fd);
int       check_setup(void);

/* ------------------------------------------------------------- ctl.c */
/*
 * The control page: one page per queue in its own shared file (a memfd for
 * an anonymous queue, /dev/shm/<name>.pyq for a named one), made by the
 * creator before the first ring, never resized.  It holds what the queue
 * adds to the rings: the item limit (maxsize), the join counter of a
 * JoinableQueue, and the chain of rings that lets an unbounded queue grow.
 *
 * The chain: generation 0 is the queue's own ring; generation g > 0 is the
 * named ring <stem><g> (same capacity, max_record and mode).  Producers put
 * into generation `tail`; a producer that finds it full (and the queue has
 * no maxsize, or room under it) makes generation tail + 1, moves tail to it
 * (CAS) and closes the old ring (shmring_close).  A put racing with that
 * either lands in the old ring before the close, or gets -EPIPE from it and
 * follows tail.  Consumers take from generation `head`; the old ring, once
 * closed, gives its records and then -EPIPE, and only then does a consumer
 * move head on (CAS) and unlink its name.  A producer that read tail == t and
 * slept past all that reads head after making t + 1 and removes what it made
 * if head is past it (gen_grow_read).  So every record of one producer
 * in generation g was put before any of its records in g + 1, and a
 * consumer reads g + 1 only after g is drained: FIFO per producer holds.
 */
#define CTL_MAGIC   "SHMRPYQ2"
#define CTL_SIZE    4096
#define CTL_STEM    160
#define CTL_HOLDERS 64
#define QK_PLAIN    0u
#define QK_JOINABLE 1u

struct ctl_holder {               /* a process that can hand the fds out */
	_Atomic int32_t pid;          /* 0 free, -pid while being written */
	int32_t         ring_fd;
	int32_t         ctl_fd;
	int32_t         pad;
};

struct qctl {
	char     magic[8];
	uint32_t version;
	uint32_t kind;                /* QK_PLAIN or QK_JOINABLE */
	uint64_t maxsize;             /* 0: unbounded */
	uint64_t capacity;            /* of every generation */
	uint64_t max_record;
	uint32_t mode;
	uint32_t max_attach;           /* of every generation (0: the library's default) */
	char     stem[CTL_STEM];      /* generation g > 0: /dev/shm/<stem><g> */
	uint32_t no_side_segments;    /* 1: an object bigger than max_record is refused
	                               * at put (ValueError); 0 (pages made before this
	                               * field, which was padding and zeroed): side segments */
	uint32_t ring_flags;          /* SHMRING_LIGHT_PUBLISH or 0: of every generation
	                               * (padding, zeroed, in pages made before it) */
	alignas(64) struct shmring_sem   room;    /* maxsize > 0: free places */
	alignas(64) struct shmring_latch tasks;   /* QK_JOINABLE: unfinished */
	alignas(64) _Atomic uint64_t     head;    /* generation gets take from */
	alignas(64) _Atomic uint64_t     tail;    /* generation puts go to */
	_Atomic uint32_t                 shut;    /* shutdown() was called */
	_Atomic uint32_t                 holders_overflow; /* a process found holders[] full */
	alignas(64) struct ctl_holder    holders[CTL_HOLDERS];
};
_Static_assert(sizeof(struct qctl) <= CTL_SIZE, "the control page fits a page");

struct gen {                      /* one generation this process has attached */
	uint64_t        g;
	struct shmring *r;
	int             pins;         /* calls using r without the GIL */
	unsigned        declared;     /* roles declared to keep EOF away */
	struct gen     *next;
};

typedef struct {
	PyObject_HEAD
	struct shmring *r;            /* generation 0 */
	struct qctl    *ctl;
	int             ctl_fd;
	size_t          capacity;
	size_t          max_record;
	PyObject       *name;         /* str, or None for an anonymous ring */
	int64_t         maxsize;      /* 0: unbounded */
	struct gen     *gens;         /* attached generations, g = 0 included */
	int             holder;       /* our slot in ctl->holders, or -1 */
	pid_t           pid;          /* the process these handles belong to */
	unsigned char  *getbuf;       /* get_many's buffer (GETMANY_BUF), or NULL */
	int             getbuf_busy;
	int             evfd;         /* event_fd() was asked for: an empty get re-arms it */
	dev_t           dev;
	ino_t           ino;
	PyObject       *weakreflist;
} RingObject;

extern PyTypeObject Ring_Type;

int  ctl_check(const struct qctl *c, off_t size);
int  ring_reserve(struct shmring *r);
int  ctl_init(int fd, uint32_t kind, int64_t maxsize, size_t capacity, size_t max_record,
              unsigned mode, unsigned max_attach, const char *stem,
              int side_segments, unsigned ring_flags);
/* The generation this process should put into / take from now, pinned (the
 * caller unpins it with gen_unpin, GIL held).  NULL with an exception set. */
struct gen *gen_tail(RingObject *ring);
struct gen *gen_head(RingObject *ring);
void        gen_unpin(struct gen *g);
/* Generation g, pinned, or NULL (no exception set) if it is gone. */
struct gen *gen_at(RingObject *ring, uint64_t g);
/* After a put found gen g full: make g + 1 the tail (unless someone did).
 * 0 or a negative errno; -ENOSPC etc. from making the ring. */
int         gen_grow(RingObject *ring, struct gen *g);
/* The part of gen_grow after it read tail == g->g (and no shutdown): make or
 * open g + 1 and move tail to it, unless head has passed g + 1 meanwhile.
 * Ring._grow_after_read calls it alone, as a producer preempted right after
 * that read would (test_traps). */
int         gen_grow_read(RingObject *ring, struct gen *g);
/* After a get found gen g closed and drained: 1 if head moved on (retry),
 * 0 if g is the last (the queue is shut down). */
int         gen_advance(RingObject *ring, struct gen *g);
void        gens_free(RingObject *ring);
int         ctl_register_holder(RingObject *ring);
void        ctl_unregister_holder(RingObject *ring);
int         ctl_live_holders(RingObject *ring);
void        gens_unlink_names(RingObject *ring);
/* A get found nothing: re-arm the head's event fd (if event_fd() was used). */
void        gen_rearm(RingObject *ring);

/* ringobj.c */
PyObject *ring_wrap(struct shmring *r, PyObject *name, int ctl_fd);

/* ------------------------------------------------------------- wait.c */
struct tmo {
	int     mode;
	int64_t deadline;
};
enum { TMO_NONBLOCK, TMO_FOREVER, TMO_DEADLINE };

typedef struct QueueObject QueueObject;
int make_tmo(PyObject *block, PyObject *timeout, struct tmo *t);
/* A blocking operation: called with timeout_ns 0 while holding the GIL, or
 * with a slice while not; must not touch Python objects. */
typedef ssize_t (*ring_op)(void *ctx, int64_t timeout_ns);
ssize_t   run_op(QueueObject *q, struct gen *g, ring_op op, void *ctx, const struct tmo *t,
                 unsigned epipe_role, int nogil_first);
/* epipe_role bit (no ring: g NULL): go on waiting after this handle's
 * close() (join: multiprocessing's works after close, a producer's pattern) */
#define RUN_OP_AFTER_CLOSE 0x100u
ssize_t   sem_claim(QueueObject *q, int64_t want, const struct tmo *t);
PyObject *raise_for(ssize_t rc, PyObject *timeout_exc);

/* ------------------------------------------------------------- codec.c */
struct enc {
	struct iovec   small[3];
	struct iovec  *iov;
	int            iovcnt;
	size_t         total;
	unsigned char  tag;
	PyObject      *keep;     /* owns the bytes the iovecs point into */
	PyObject      *record;   /* a side-segment reference record, or NULL */
	unsigned char *hdr;      /* out-of-band header (heap) */
	Py_buffer     *views;
	Py_ssize_t     nviews;
	unsigned char  fast[FAST_MAX + 1];   /* a TAG_FAST record */
};
void      enc_init(struct enc *e);
void      enc_free(struct enc *e);
void      enc_discard(struct enc *e);
int       encode(struct enc *e, PyObject *obj, size_t max_record, unsigned mode, int side);
PyObject *enc_flat(struct enc *e);
PyObject *decode(const unsigned char *p, size_t len);
PyObject *bytes_copy(const unsigned char *p, size_t len);
void      discard_record(PyObject *rec);
/* A reference record's object, its side segment then removed (codec.c). */
PyObject *large_object(PyObject *rec);

/* fastcodec.c: 0 encoded into buf (*len set), 1 not for this codec. */
int       fast_encode(PyObject *o, unsigned char *buf, size_t *len);
PyObject *fast_decode(const unsigned char *p, size_t len);

/* ------------------------------------------------------------- queue.c */
struct QueueObject {
	PyObject_HEAD
	RingObject *ring;
	int         closed;
	pid_t       closed_pid; /* close() applies in this process only */
	PyObject   *pending;    /* list of raw records taken but not delivered, or NULL */
	pid_t       pending_pid; /* the process that took them (queue_pending) */
};
extern PyTypeObject Queue_Type;
int  check_usable(QueueObject *q);
int  check_ring(QueueObject *q); /* initialised (closed or not) */
int  parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                const char *const *names, int n, int required, PyObject **out);
int  is_closed(QueueObject *q);
/* q's held-back records (get.c), or NULL: a fork child drops the copy it
 * inherited, whose records its parent took from the ring and delivers. */
PyObject *queue_pending(QueueObject *q);

/* put.c / get.c */
PyObject *Queue_put(QueueObject *q, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *Queue_put_nowait(QueueObject *q, PyObject *obj);
PyObject *Queue_put_bytes(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kw);
PyObject *Queue_put_many(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kw);
PyObject *Queue_get(QueueObject *q, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *Queue_get_nowait(QueueObject *q, PyObject *unused);
PyObject *Queue_get_bytes(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kw);
PyObject *Queue_get_many(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kw);
PyObject *Queue_get_bytes_many(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kw);
/* One item taken (get side): the room it held under maxsize is free. */
void      took(RingObject *ring, int64_t n);

#endif
