"""shmring: multiprocessing-compatible queues in shared memory.

A drop-in replacement for multiprocessing.Queue, SimpleQueue and
JoinableQueue, built on the shmring C library (a lock-free multi-producer
multi-consumer ring of variable-size records in a memfd or /dev/shm, with
futex sleeps and no system call on the fast path).

    import shmring
    q = shmring.Queue()            # like multiprocessing.Queue()
    q.put({"any": "picklable"})    # written straight into shared memory
    q.get()

Differences from multiprocessing that you can rely on:

* No feeder thread: put() pickles and writes the object into shared memory
  before it returns, so a child that put data and exited can be joined
  before the parent reads it, and an object that fails to pickle raises from
  put() itself.
* The queue object pickles anywhere: as an argument to Pool.map,
  apply_async, ProcessPoolExecutor.submit, loky/joblib, or Process under
  fork, spawn and forkserver.  An anonymous queue travels as a file
  descriptor (as multiprocessing.reduction passes fds), a named one by name.
* Named queues: Queue(name="jobs") in one program, Queue.open("jobs") in
  any other, with no server process.
* Extras: put_bytes/get_bytes (raw records), put_many/get_many (batches),
  shutdown() (ShutDown in every process once drained), info().

See docs/python.md for the full semantics.
"""

import os
import pickle
import secrets
import struct
import threading
import types
import weakref
from queue import Empty, Full

from . import _shmring

try:                                   # Python 3.13+
    from queue import ShutDown
except ImportError:                    # pragma: no cover - version dependent
    class ShutDown(Exception):
        """Raised by put() and get() on a queue that has been shut down
        (get() only once it is empty)."""

try:
    import _posixshmem
except ImportError:                    # pragma: no cover
    _posixshmem = None

__all__ = ['Queue', 'SimpleQueue', 'JoinableQueue', 'Empty', 'Full',
           'ShutDown', 'unlink', 'DEFAULT_CAPACITY']

__version__ = '0.1'

#: Bytes of record storage of a new queue (memory is committed as it is
#: used; a busy queue ends up using all of it).
DEFAULT_CAPACITY = 8 << 20
#: The largest record that goes into the ring itself (capacity / 4 unless
#: given); a bigger pickled object travels in a side segment.
DEFAULT_MAX_RECORD_DIVISOR = 4
#: Side segments (objects bigger than max_record) are named
#: /dev/shm/<SEGMENT_PREFIX><pid>-<random>; the prefix is shmring-py- unless
#: the environment variable SHMRING_SEGMENT_PREFIX says otherwise.
SEGMENT_PREFIX = os.environ.get('SHMRING_SEGMENT_PREFIX') or 'shmring-py-'
if not all(c.isascii() and (c.isalnum() or c in '._-') for c in SEGMENT_PREFIX) \
        or len(SEGMENT_PREFIX) > 100:
    raise ImportError('SHMRING_SEGMENT_PREFIX must be at most 100 characters '
                      'of [A-Za-z0-9._-], not %r' % SEGMENT_PREFIX)
#: A named queue with maxsize > 0 keeps its item counter in /dev/shm/<name>.pyq.
META_SUFFIX = '.pyq'


# --- shared-memory helpers ---------------------------------------------------

def _shm_open(name, flags, mode=0o600):
    if _posixshmem is not None:
        return _posixshmem.shm_open(name, flags, mode)
    return os.open('/dev/shm/' + name.lstrip('/'), flags | os.O_CLOEXEC, mode)


def _shm_unlink(name):
    if _posixshmem is not None:
        _posixshmem.shm_unlink(name)
    else:
        os.unlink('/dev/shm/' + name.lstrip('/'))


def _check_name(name):
    if not isinstance(name, str):
        raise TypeError('queue name must be a str, not %s' % type(name).__name__)
    bare = name[1:] if name.startswith('/') else name
    if not bare or len(bare) > _shmring.NAME_MAX or bare in ('.', '..') or \
            any(not (c.isascii() and (c.isalnum() or c in '._-')) for c in bare):
        raise ValueError('bad queue name %r: 1 to %d characters of [A-Za-z0-9._-]'
                         % (name, _shmring.NAME_MAX))
    return bare


def _init_meta(fd, maxsize, mode=None):
    if mode is not None:
        os.fchmod(fd, mode)
    os.ftruncate(fd, _shmring.META_SIZE)
    os.pwrite(fd, struct.pack('<8sQQ', _shmring.META_MAGIC.encode(), maxsize, 1), 0)


# --- the rings of this process -------------------------------------------------
# One C handle per ring per process, shared by every queue object on it (a
# queue passed to a Pool worker with every task is attached once, not once
# per task).  Keyed by the file's (st_dev, st_ino).

_rings = weakref.WeakValueDictionary()
_rings_lock = threading.Lock()


def _after_fork_in_child():
    # a fork while another thread held the lock must not leave it held
    global _rings_lock
    _rings_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _new_ring(name, maxsize, capacity, max_record, mode):
    if maxsize is None:
        maxsize = 0
    maxsize = int(maxsize)
    capacity = DEFAULT_CAPACITY if capacity is None else int(capacity)
    max_record = 0 if max_record is None else int(max_record)
    if name is None:
        ring = _shmring.create(None, capacity, max_record, 0)
        if maxsize > 0:
            fd = os.memfd_create('shmring-pyq', os.MFD_CLOEXEC)
            try:
                _init_meta(fd, maxsize)
                ring.set_meta(fd)
            finally:
                os.close(fd)
    else:
        bare = _check_name(name)
        meta_fd = None
        if maxsize > 0:
            # The counter first: an opener that finds the ring finds it too.
            meta_fd = _shm_open('/' + bare + META_SUFFIX,
                                os.O_CREAT | os.O_EXCL | os.O_RDWR, mode)
            try:
                _init_meta(meta_fd, maxsize, mode)
            except BaseException:
                os.close(meta_fd)
                _shm_unlink('/' + bare + META_SUFFIX)
                raise
        ring = None
        try:
            ring = _shmring.create(bare, capacity, max_record, mode)
            if meta_fd is not None:
                ring.set_meta(meta_fd)
        except BaseException:
            if meta_fd is not None:
                _shm_unlink('/' + bare + META_SUFFIX)
            if ring is not None:          # made it, but cannot finish: undo
                _shmring.unlink(bare)
            raise
        finally:
            if meta_fd is not None:
                os.close(meta_fd)
    with _rings_lock:
        _rings[ring.key()] = ring
    return ring


def _open_named(name):
    bare = _check_name(name)
    ring = _shmring.open(bare)
    with _rings_lock:
        known = _rings.get(ring.key())
        if known is not None:
            return known
    try:
        fd = _shm_open('/' + bare + META_SUFFIX, os.O_RDWR)
    except FileNotFoundError:
        pass
    else:
        try:
            ring.set_meta(fd)
        finally:
            os.close(fd)
    with _rings_lock:
        return _rings.setdefault(ring.key(), ring)


def _attach_fd(fd, meta_fd):
    st = os.fstat(fd)
    with _rings_lock:
        known = _rings.get((st.st_dev, st.st_ino))
        if known is not None:
            return known
    ring = _shmring.attach_fd(fd)
    if meta_fd >= 0:
        ring.set_meta(meta_fd)
    with _rings_lock:
        return _rings.setdefault(ring.key(), ring)


def unlink(name):
    """Remove a named queue's name (and its item counter) from /dev/shm.
    Handles already open keep working; the memory goes with the last one."""
    bare = _check_name(name)
    try:
        _shm_unlink('/' + bare + META_SUFFIX)
    except FileNotFoundError:
        pass
    _shmring.unlink(bare)


# --- objects bigger than max_record: side segments ---------------------------
# put() writes the pickle (and its out-of-band buffers) into a fresh
# /dev/shm/shmring-py-<pid>-<random> file and puts a small record naming it;
# the get() that takes the record opens the file, unlinks it at once, maps it
# and unpickles from the mapping (out-of-band buffers are used in place).
# A segment is left behind only if its record is never taken (the queue is
# dropped while holding it) or the producer dies between making the file and
# putting the record; shmring.leftover_segments() lists them.

_SEG_MAGIC = b'SHMRSEG1'
_SEG_HDR = struct.Struct('<8sBxxxIQQ')     # magic, kind, nbuf, data_len, data_off
_REF = struct.Struct('<BQ')                # tag 0x02, segment size; then the name
_ALIGN = 64


def _align(x):
    return (x + _ALIGN - 1) & ~(_ALIGN - 1)


def _put_large(kind, data, buffers):
    """kind 0: data is a pickle stream, buffers its out-of-band PickleBuffers
    (or None); kind 1: data is a bytes object.  Returns the reference record."""
    import mmap
    # the collector in _shmring.c only keeps contiguous buffers
    views = [b.raw() for b in (buffers or ())]
    hdr_len = _SEG_HDR.size + 8 * len(views)
    data_off = _align(hdr_len)
    off = data_off + len(data)
    offsets = []
    for v in views:
        off = _align(off)
        offsets.append(off)
        off += v.nbytes
    total = max(off, 1)
    name = '/%s%d-%s' % (SEGMENT_PREFIX, os.getpid(), secrets.token_hex(8))
    fd = _shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        try:
            # Allocate now: a full /dev/shm is an OSError here, not a
            # SIGBUS when the mapping is written.
            os.posix_fallocate(fd, 0, total)
        except OSError as e:
            if e.errno not in (95,):        # EOPNOTSUPP: not tmpfs
                raise
            os.ftruncate(fd, total)
        with mmap.mmap(fd, total) as mm:
            mm[:hdr_len] = _SEG_HDR.pack(_SEG_MAGIC, kind, len(views), len(data),
                                         data_off) + \
                struct.pack('<%dQ' % len(views), *(v.nbytes for v in views))
            mm[data_off:data_off + len(data)] = data
            for v, o in zip(views, offsets):
                mm[o:o + v.nbytes] = v
    except BaseException:
        try:
            _shm_unlink(name)
        except OSError:
            pass
        raise
    finally:
        os.close(fd)
    return _REF.pack(2, total) + name.encode()


def _ref_name(record):
    return bytes(record[_REF.size:]).decode()


def _get_large(record):
    import mmap
    tag, total = _REF.unpack_from(record)
    name = _ref_name(record)
    fd = _shm_open(name, os.O_RDWR)
    try:
        _shm_unlink(name)
        size = os.fstat(fd).st_size
        if size != total or size < _SEG_HDR.size:
            raise ValueError('side segment %s has %d bytes, expected %d'
                             % (name, size, total))
        mm = mmap.mmap(fd, size)
    finally:
        os.close(fd)
    mv = memoryview(mm)
    magic, kind, nbuf, data_len, data_off = _SEG_HDR.unpack_from(mv)
    if magic != _SEG_MAGIC or data_off + data_len > size:
        raise ValueError('corrupt side segment %s' % name)
    if kind == 1:
        obj = bytes(mv[data_off:data_off + data_len])
        mv.release()
        mm.close()
        return obj
    lens = struct.unpack_from('<%dQ' % nbuf, mv, _SEG_HDR.size)
    bufs = []
    off = data_off + data_len
    for n in lens:
        off = _align(off)
        bufs.append(mv[off:off + n])
        off += n
    stream = mv[data_off:data_off + data_len]
    try:
        obj = pickle.loads(stream, buffers=bufs)
    finally:
        stream.release()
    if not bufs:
        mv.release()
        mm.close()
    # else: objects built on the buffers keep the mapping alive
    return obj


def _discard_large(record):
    """A reference record that will never be delivered: remove its segment."""
    try:
        _shm_unlink(_ref_name(record))
    except FileNotFoundError:
        pass


def leftover_segments():
    """Side segments in /dev/shm that no get() has claimed (yet): those of
    items still queued, and those a crash left behind.  Remove one with
    os.unlink('/dev/shm/' + name) once you know nobody will read it."""
    try:
        return sorted(n for n in os.listdir('/dev/shm')
                      if n.startswith(SEGMENT_PREFIX))
    except OSError:
        return []


_shmring._setup(Empty, Full, ShutDown, _put_large, _get_large, _discard_large)


# --- the queues --------------------------------------------------------------

def _rebuild(cls, name, ring_fd, meta_fd):
    """Unpickle a queue: by name, or from fds passed by multiprocessing."""
    if name is not None:
        ring = _open_named(name)
    else:
        fd = ring_fd.detach()
        mfd = meta_fd.detach() if meta_fd is not None else -1
        try:
            ring = _attach_fd(fd, mfd)
        finally:
            os.close(fd)
            if mfd >= 0:
                os.close(mfd)
    q = cls.__new__(cls)
    _shmring.QueueBase.__init__(q, ring)
    return q


class _QueueMixin:
    """What every shmring queue adds to the C core: construction, naming,
    pickling, shutdown, introspection."""

    __slots__ = ()

    @classmethod
    def open(cls, name):
        """Attach to the named queue made by cls(name=...) (in any process).
        FileNotFoundError if there is none."""
        q = cls.__new__(cls)
        _shmring.QueueBase.__init__(q, _open_named(name))
        return q

    @property
    def name(self):
        """The queue's name, or None for an anonymous queue."""
        return self._ring.name

    @property
    def maxsize(self):
        """Most items the queue holds (0: bounded only by its capacity)."""
        return self._ring.maxsize

    @property
    def capacity(self):
        """Bytes of record storage."""
        return self._ring.capacity

    @property
    def max_record(self):
        """The largest record kept in the ring itself, bytes; a bigger
        pickled object travels in a side segment."""
        return self._ring.max_record

    def unlink(self):
        """Remove this named queue's name from /dev/shm (shmring.unlink)."""
        if self._ring.name is None:
            raise ValueError('an anonymous queue has no name to unlink')
        unlink(self._ring.name)

    def shutdown(self, immediate=False):
        """Shut the queue down for every process: put() raises ShutDown from
        now on; get() returns what is left and then raises ShutDown.  With
        immediate=True what is left is discarded now."""
        self._ring.shutdown()
        if immediate:
            while True:
                try:
                    rec = self.get_bytes(block=False)
                except (Empty, ShutDown):
                    break
                if rec[:1] == b'\x02':
                    _discard_large(rec)
                if isinstance(self, JoinableQueue):
                    try:
                        self.task_done()
                    except ValueError:
                        pass

    def info(self):
        """A snapshot of the ring as a dict (records, bytes, producers, ...)."""
        return self._ring.info()

    def set_yield(self, ns, pause_ns=-1):
        """How long a waiting call polls before it sleeps: spinning for the
        first pause_ns, then with sched_yield() between looks, for ns in
        all (per ring, per process; defaults 50000 and 5000)."""
        self._ring.set_yield(ns, pause_ns)

    def set_spin(self, iterations):
        """How many pause instructions the library spins before it sleeps,
        after the yield phase (per ring, per process; default 0)."""
        self._ring.set_spin(iterations)

    def __reduce__(self):
        ring = self._ring
        if ring.name is not None:
            return (_rebuild, (type(self), ring.name, None, None))
        # multiprocessing's own fd passing: to a child being spawned
        # (spawn/forkserver: popen.DupFd), or through the resource sharer
        # (Pool, ProcessPoolExecutor, loky: anything else).
        from multiprocessing.reduction import DupFd
        mfd = ring.meta_fileno()
        return (_rebuild, (type(self), None, DupFd(ring.fileno()),
                           DupFd(mfd) if mfd >= 0 else None))

    def __copy__(self):
        q = type(self).__new__(type(self))
        _shmring.QueueBase.__init__(q, self._ring)
        return q

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __repr__(self):
        r = self._ring
        if r is None:
            return '<%s.%s uninitialised>' % (type(self).__module__,
                                              type(self).__qualname__)
        where = 'name=%r' % r.name if r.name is not None else 'fd=%d' % r.fileno()
        return '<%s.%s %s maxsize=%d%s at %#x>' % (
            type(self).__module__, type(self).__qualname__, where, r.maxsize,
            ' closed' if self._closed else '', id(self))

    __class_getitem__ = classmethod(types.GenericAlias)


class Queue(_QueueMixin, _shmring.QueueBase):
    """multiprocessing.Queue in shared memory.

    Queue(maxsize=0, *, ctx=None, name=None, capacity=None, max_record=None,
          mode=0o600)

    maxsize: most items queued at once (<= 0: no limit but the capacity).
    name: make a named queue (/dev/shm/<name>) that Queue.open(name) attaches
      to from any process; FileExistsError if it exists.  Remove the name
      with q.unlink() or shmring.unlink(name).
    capacity: bytes of record storage (default 8 MiB, rounded up to a power
      of two); a put waits while the ring has no room, whatever maxsize says.
    max_record: the largest record kept in the ring (default capacity / 4);
      bigger objects go through a side segment.
    mode: permissions of a named queue's files.
    ctx: accepted for compatibility with multiprocessing and ignored.
    """

    def __init__(self, maxsize=0, *, ctx=None, name=None, capacity=None,
                 max_record=None, mode=0o600):
        _shmring.QueueBase.__init__(
            self, _new_ring(name, maxsize, capacity, max_record, mode))


class JoinableQueue(Queue):
    """multiprocessing.JoinableQueue in shared memory: every put() adds an
    unfinished task, task_done() finishes one, join() waits for none left
    (join(timeout) returns False if time ran out)."""

    task_done = _shmring.QueueBase._task_done
    join = _shmring.QueueBase._join

    def unfinished_tasks(self):
        """Unfinished tasks now (all processes)."""
        return self._unfinished()


class SimpleQueue(_QueueMixin, _shmring.QueueBase):
    """multiprocessing.SimpleQueue in shared memory (get, put, empty,
    close), with every Queue method available as well."""

    def __init__(self, *, ctx=None, name=None, capacity=None, max_record=None,
                 mode=0o600):
        _shmring.QueueBase.__init__(
            self, _new_ring(name, 0, capacity, max_record, mode))
