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

import atexit
import collections
import errno
import fcntl
import operator
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

__all__ = ['Queue', 'SimpleQueue', 'JoinableQueue', 'Empty', 'Full',
           'ShutDown', 'unlink', 'DEFAULT_CAPACITY', 'DEFAULT_MAX_ATTACH']

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
#: A named queue keeps its control page (item limit, join counter, chain of
#: rings) in /dev/shm/<name>.pyq.
META_SUFFIX = '.pyq'
#: Processes that can use one ring of a new queue at the same time (the
#: library's attachment table, shmring_config.max_attach): 256, or 4 per
#: CPU on a machine with more than 64 CPUs, so that a Pool or joblib's
#: n_jobs=-1 (one worker per CPU) and its parents fit.  Each slot costs
#: about 1 KiB of shared memory per ring; Queue(max_attach=n) sets it per
#: queue (1 to MAX_ATTACH_LIMIT, 65535).
DEFAULT_MAX_ATTACH = min(_shmring.MAX_ATTACH_LIMIT,
                         max(_shmring.MAX_ATTACH, 4 * (os.cpu_count() or 1)))
MAX_ATTACH_LIMIT = _shmring.MAX_ATTACH_LIMIT
#: The smallest max_record: a side segment's reference record must fit.
MIN_MAX_RECORD = 256
_MAXSIZE_MAX = (1 << 63) - 1


# --- shared-memory helpers ---------------------------------------------------

def _check_name(name):
    if not isinstance(name, str):
        raise TypeError('queue name must be a str, not %s' % type(name).__name__)
    bare = name[1:] if name.startswith('/') else name
    if not bare or len(bare) > _shmring.NAME_MAX or bare in ('.', '..') or \
            any(not (c.isascii() and (c.isalnum() or c in '._-')) for c in bare):
        raise ValueError('bad queue name %r: 1 to %d characters of [A-Za-z0-9._-]'
                         % (name, _shmring.NAME_MAX))
    return bare


def _open_shm(bare, flags, mode=0o600):
    """A file in /dev/shm, never through a symbolic link."""
    return os.open('/dev/shm/' + bare, flags | os.O_CLOEXEC | os.O_NOFOLLOW, mode)


def _unlink_shm(bare):
    try:
        os.unlink('/dev/shm/' + bare)
    except FileNotFoundError:
        pass


def _stem():
    """Names of a new queue's overflow rings: <stem><generation>."""
    return '%sq%s-' % (SEGMENT_PREFIX, secrets.token_hex(8))


# --- the rings of this process -------------------------------------------------
# One C handle per queue per process, shared by every queue object on it (a
# queue passed to a Pool worker with every task is attached once, not once
# per task).  Keyed by the (st_dev, st_ino) of the queue's first ring, which
# travels in the pickle: a handle already here is found with no system call.

_rings = weakref.WeakValueDictionary()


@atexit.register
def _leave_at_exit():
    # A queue still held at exit (a daemon thread blocked in get(), say) is
    # never freed: its Ring lets go of the holders' table here instead, and
    # the last process of an anonymous queue removes its overflow rings'
    # names (ringobj.c).  (atexit runs after the non-daemon threads end.)
    with _rings_lock:
        rings = list(_rings.values())
    for ring in rings:
        ring.leave_at_exit()

_recently_pickled = collections.deque(maxlen=8)
_recently_loaded = collections.deque(maxlen=8)
_attaches = 0          # queues this process attached from a pickle or a name
_rings_lock = threading.Lock()


def _after_fork_in_child():
    # a fork while another thread held the lock must not leave it held
    global _rings_lock
    _rings_lock = threading.Lock()
    # this process now holds the anonymous queues it inherited
    for ring in list(_rings.values()):
        if ring.name is None:
            try:
                ring.register_holder()
            except OSError:
                pass


os.register_at_fork(after_in_child=_after_fork_in_child)


def _remember(ring):
    with _rings_lock:
        ring = _rings.setdefault(ring.key(), ring)
    if ring.name is None:
        try:
            ring.register_holder()        # so that other processes can load it
        except OSError:
            pass
    return ring


def _sizes(maxsize, capacity, max_record):
    if maxsize is None:
        maxsize = 0
    maxsize = operator.index(maxsize)   # Queue(1.5) is a TypeError, as in multiprocessing
    if maxsize < 0:
        maxsize = 0
    if maxsize > _MAXSIZE_MAX:
        raise OverflowError('maxsize must be at most 2**63 - 1')
    capacity = DEFAULT_CAPACITY if not capacity else operator.index(capacity)
    max_record = 0 if max_record is None else operator.index(max_record)
    if capacity < 0 or max_record < 0:
        raise ValueError('capacity and max_record must be >= 0')
    if 0 < max_record < MIN_MAX_RECORD:
        raise ValueError('max_record must be 0 (the default) or at least %d'
                         % MIN_MAX_RECORD)
    return maxsize, capacity, max_record


def _max_attach(max_attach):
    """The attachment table size of a new queue's rings (shmring_config.
    max_attach): the processes that can use one ring at the same time."""
    if max_attach is None:
        return DEFAULT_MAX_ATTACH
    max_attach = operator.index(max_attach)
    if not 1 <= max_attach <= _shmring.MAX_ATTACH_LIMIT:
        raise ValueError('max_attach must be 1 to %d' % _shmring.MAX_ATTACH_LIMIT)
    return max_attach


def _new_ring(name, maxsize, capacity, max_record, mode, joinable, max_attach=None,
              side_segments=True, light=False):
    maxsize, capacity, max_record = _sizes(maxsize, capacity, max_record)
    max_attach = _max_attach(max_attach)
    if name is None:
        fd = os.memfd_create('shmring-pyq', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            _shmring.ctl_init(fd, joinable, maxsize, capacity, max_record, 0o600, _stem(),
                              max_attach, bool(side_segments), bool(light))
            # sealed: nobody can shrink it under a mapping (SIGBUS)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                        fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
            ring = _shmring.create(None, capacity, max_record, 0, fd, max_attach, bool(light))
        finally:
            os.close(fd)
        return _remember(ring)
    return _named_ring(name, maxsize, capacity, max_record, mode, joinable, max_attach,
                       exist_ok=False, side_segments=side_segments, light=light)


# --- named queues: two files, one lock -------------------------------------
# A named queue is its ring, /dev/shm/<name>, and its control page,
# /dev/shm/<name>.pyq.  Every change of that pair (making it, replacing
# what a crash left, removing it) happens under an exclusive flock(2) of the
# control file, and every open of it under a shared one, so nobody sees the
# pair half made; flock locks go with their holder, so a creator that dies
# leaves no lock behind, and what it leaves is recognised and replaced under
# the lock by the next creator.  The ring itself is made or opened by the
# library's shmring_open_or_create.  A lock is never waited for longer than
# LOCK_TIMEOUT seconds (TimeoutError): making the pair takes milliseconds.

#: Longest wait for another process's lock on a named queue's control file.
LOCK_TIMEOUT = 10.0


def _lock_ctl(bare, how, create=False, mode=0o600):
    """The control file of queue `bare`, opened (made empty if create and
    there is none) and flock()ed (LOCK_EX or LOCK_SH), and still the file at
    that name once locked: (fd, stat).  FileNotFoundError if there is none."""
    import time
    path = _ctl_path(bare)
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fd = _open_shm(bare + META_SUFFIX, os.O_RDWR)
        except FileNotFoundError:
            if not create:
                raise
            # O_EXCL only when there is none: an O_CREAT open of another
            # user's file in sticky /dev/shm is EACCES where
            # fs.protected_regular is set, even for a group-shared queue
            try:
                fd = _open_shm(bare + META_SUFFIX, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
            except FileExistsError:
                continue
        try:
            pause = 0.0002
            while True:
                try:
                    fcntl.flock(fd, how | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            'queue %r: another process has held the lock of %s for '
                            'more than %g s' % (bare, path, LOCK_TIMEOUT)) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.01)
            st = os.fstat(fd)
            try:
                now = os.stat(path, follow_symlinks=False)
                same = (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            return fd, st
        os.close(fd)          # replaced or removed while we waited: again


def _unlock_close(fd):
    # Unlock first: the Ring keeps a dup() of this fd (the same open file
    # description, which is what a flock belongs to), so a close alone
    # would keep the lock for as long as the queue is open.
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _ctl_path(bare):
    """The control file of the queue named bare."""
    return '/dev/shm/' + bare + META_SUFFIX


def _ctl_state(fd, st, path):
    """'empty' (nothing written yet), 'whole' (a control page) or 'half'
    (its creator died writing it: the magic, written last, still zero).
    Anything else raises OSError and stays: another version's control page
    (EPROTONOSUPPORT: its queue is in use by processes of that version), a
    file that is no control page (EPROTO), one cut short (EBADMSG).  Before,
    all three were 'half' and removed as a crash's leftover (a review found
    it, twelfth session)."""
    if st.st_size == 0:
        return 'empty'
    magic = os.pread(fd, 8, 0)
    if magic == _shmring.CTL_MAGIC:
        if st.st_size == _shmring.CTL_SIZE:
            return 'whole'
        raise OSError(errno.EBADMSG, 'corrupt shmring queue control file (%d bytes, not %d)'
                      % (st.st_size, _shmring.CTL_SIZE), path)
    if not magic.strip(b'\0'):
        return 'half'
    if magic[:7] == _shmring.CTL_MAGIC[:7]:
        raise OSError(errno.EPROTONOSUPPORT, 'the control file of a queue made by another '
                      'version of shmring (%s; this one reads %s)'
                      % (magic.decode('ascii', 'replace'), _shmring.CTL_MAGIC.decode()), path)
    raise OSError(errno.EPROTO, 'not a shmring queue control file', path)


def _named_ring(name, maxsize, capacity, max_record, mode, joinable, max_attach, exist_ok,
                side_segments=True, light=False):
    """Queue(name=...): make the named queue; with exist_ok, open it if it
    exists.  Race-free among any number of processes doing either: the
    pair is made under the control file's exclusive lock.  What a crash
    left at the name (a control file with no ring, or half written; a ring
    with no control file) never makes this fail: a control file whose ring
    is gone is removed and made again, a ring with no control file gets one
    (exist_ok; without it that is FileExistsError, as for any ring there)."""
    bare = _check_name(name)
    maxsize, capacity, max_record = _sizes(maxsize, capacity, max_record)
    max_attach = _max_attach(max_attach)
    if exist_ok:
        known = _cached_named(bare)
        if known is not None:
            return known
    for _ in range(1000):      # each round ends, or removes a leftover
        fd, st = _lock_ctl(bare, fcntl.LOCK_EX, create=True, mode=mode)
        try:
            try:
                state = _ctl_state(fd, st, _ctl_path(bare))
            except OSError:
                if st.st_uid == os.geteuid():
                    raise
                state = 'foreign'                     # another user's: refused below
            if state == 'whole':
                try:
                    ring = _shmring.open(bare, fd)
                except FileNotFoundError:
                    _unlink_shm(bare + META_SUFFIX)   # its ring is gone: a leftover
                    continue
                if not exist_ok:
                    raise FileExistsError(17, 'File exists', '/dev/shm/' + bare)
                return _remember(ring)
            if st.st_uid != os.geteuid():
                raise PermissionError(
                    1, 'refused: the control file of queue %r belongs to uid %d and '
                    'is not a control page' % (bare, st.st_uid), _ctl_path(bare))
            if state == 'half':                       # its creator died writing it
                _unlink_shm(bare + META_SUFFIX)
                continue
            try:
                os.fchmod(fd, mode)
                if exist_ok:
                    ring, _ = _shmring.open_or_create(bare, capacity, max_record, mode,
                                                      max_attach, fd, joinable, maxsize,
                                                      _stem(), bool(side_segments),
                                                      bool(light))
                else:
                    _shmring.ctl_init(fd, joinable, maxsize, capacity, max_record, mode,
                                      _stem(), max_attach, bool(side_segments), bool(light))
                    ring = _shmring.create(bare, capacity, max_record, mode, fd, max_attach,
                                           bool(light))
            except BaseException:
                _unlink_shm(bare + META_SUFFIX)   # ours, and locked: nobody uses it
                raise
            return _remember(ring)
        finally:
            _unlock_close(fd)
    raise OSError(11, 'queue %r: its files kept changing under us' % bare)


def _adopt_ring(name):
    """Queue.open() of a ring that has no control file: one made by a C
    program (shmring_create, `shmring create`, shmring-nats) or left by an
    interrupted unlink.  It gets a control page (unbounded, not joinable,
    the ring's own mode and geometry), made race-free under the control
    file's lock as exist_ok does; FileNotFoundError if there is no ring."""
    bare = _check_name(name)
    try:
        st = os.stat('/dev/shm/' + bare)
    except FileNotFoundError:
        raise FileNotFoundError(2, 'no shmring queue named %r' % bare,
                                '/dev/shm/' + bare) from None
    return _named_ring(bare, 0, 0, 0, st.st_mode & 0o777, False, None, True)


def _cached_named(bare, key=None):
    if key is None:
        try:
            st = os.stat('/dev/shm/' + bare)
            key = (st.st_dev, st.st_ino)
        except OSError:
            return None
    with _rings_lock:
        return _rings.get(key)


def _open_named(name, key=None):
    bare = _check_name(name)
    known = _cached_named(bare, key)
    if known is not None:
        return known
    global _attaches
    _attaches += 1
    fd, st = _lock_ctl(bare, fcntl.LOCK_SH)
    try:
        if _ctl_state(fd, st, _ctl_path(bare)) != 'whole':
            raise FileNotFoundError(2, 'no shmring queue named %r (its control file is '
                                    'not written)' % bare, _ctl_path(bare))
        ring = _shmring.open(bare, fd)
    finally:
        _unlock_close(fd)
    return _remember(ring)


def _attach_anonymous(key, holders):
    """An anonymous queue's handle in this process: the one already here, or
    its files opened through /proc/<pid>/fd/<n> of a live process that holds
    them (and checked to be the same file: pid and fd numbers are reused)."""
    with _rings_lock:
        known = _rings.get(key)
    if known is not None:
        return known
    global _attaches
    _attaches += 1
    for pid, ring_fd, ctl_fd in holders:
        try:
            rfd = os.open('/proc/%d/fd/%d' % (pid, ring_fd), os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.fstat(rfd)
            if (st.st_dev, st.st_ino) != tuple(key):
                continue
            cfd = os.open('/proc/%d/fd/%d' % (pid, ctl_fd), os.O_RDWR | os.O_CLOEXEC)
            try:
                ring = _shmring.attach_fd(rfd, cfd)
            finally:
                os.close(cfd)
        except OSError:
            continue
        finally:
            os.close(rfd)
        ring = _remember(ring)
        try:
            ring.register_holder()        # this process can hand it on too
        except OSError:
            pass
        return ring
    raise FileNotFoundError(
        'no live process holds this anonymous shmring queue any more (an '
        'anonymous queue lives as long as some process has it; use a named '
        'queue to outlive them all)')


def unlink(name):
    """Remove a named queue's name (and its control page and overflow rings)
    from /dev/shm.  Handles already open keep working; the memory goes with
    the last one."""
    bare = _check_name(name)
    try:
        ring = _open_named(bare)
    except (OSError, ValueError):
        ring = None
    if ring is not None:
        ring.unlink_generations()
    try:
        fd, _ = _lock_ctl(bare, fcntl.LOCK_EX)
    except FileNotFoundError:
        _shmring.unlink(bare)
        return
    try:
        # the ring first: a crash in between leaves a control file with no
        # ring, which the next Queue(name=...) recognises and replaces
        try:
            _shmring.unlink(bare)
        finally:
            _unlink_shm(bare + META_SUFFIX)
    finally:
        _unlock_close(fd)


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


def _put_large(kind, data, buffers, mode=0o600):
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
    name = '%s%d-%s' % (SEGMENT_PREFIX, os.getpid(), secrets.token_hex(8))
    fd = _open_shm(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode)
    try:
        os.fchmod(fd, mode)               # the queue's mode, not the umask's
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
            _unlink_shm(name)
        except OSError:
            pass
        raise
    finally:
        os.close(fd)
    return _REF.pack(2, total) + name.encode()


def _ref_name(record):
    name = bytes(record[_REF.size:]).decode()
    return name[1:] if name.startswith('/') else name


_initial_userns = []


def _may_unlink(st):
    """May this process remove the /dev/shm file st is of (sticky: its
    owner, or root of the initial user namespace)?  Root of another user
    namespace may not remove a file of a user it does not map: it was taken
    for its owner, and the segment stayed whole (a review found it)."""
    euid = os.geteuid()
    if euid == st.st_uid:
        return True
    if euid != 0:
        return False
    if not _initial_userns:
        try:
            with open('/proc/self/uid_map') as f:
                _initial_userns.append(f.read().split() == ['0', '0', '4294967295'])
        except OSError:
            _initial_userns.append(False)
    return _initial_userns[0]


def _get_large(record):
    """The object a reference record names, read from its side segment:
    returns (obj, name, mine).  The segment is left in place: the caller
    (codec.c large_object) removes it, in C, once this has returned, so an
    interruption anywhere in here (Ctrl-C while a big pickle loads) leaves
    it for the next get of this handle (get.c keep_first).  It used to be
    unlinked here, before the object was built: a KeyboardInterrupt after
    that lost the item.  mine: this user may remove the name (its owner,
    or root: /dev/shm is sticky); otherwise the data is copied out first,
    for the caller truncates the file instead."""
    import mmap
    tag, total = _REF.unpack_from(record)
    name = _ref_name(record)
    if '/' in name or name in ('', '.', '..'):
        raise ValueError('bad side segment name %r' % name)
    fd = _open_shm(name, os.O_RDWR)
    try:
        st = os.fstat(fd)
        size = st.st_size
        if size != total or size < _SEG_HDR.size:
            raise ValueError('side segment %s has %d bytes, expected %d'
                             % (name, size, total))
        # Private (copy-on-write): an array backed by it is this
        # process's, as one copied out of the ring is; shared, a fork
        # child's writes to a received array changed the parent's (a
        # review found it, 2026-12-06).
        mm = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE)
    finally:
        os.close(fd)
    mine = _may_unlink(st)
    if not mine:
        # another user's segment in a shared-mode queue: the caller frees
        # its memory by truncating it, which would cut a mapping objects
        # are built on: copy out first
        data = bytes(mm)
        mm.close()
        mm = bytearray(data)
    mv = memoryview(mm)
    magic, kind, nbuf, data_len, data_off = _SEG_HDR.unpack_from(mv)
    if magic != _SEG_MAGIC or data_off + data_len > size:
        raise ValueError('corrupt side segment %s' % name)
    if kind == 1:
        obj = bytes(mv[data_off:data_off + data_len])
        mv.release()
        if hasattr(mm, 'close'):
            mm.close()
        return obj, name, mine
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
        if hasattr(mm, 'close'):
            mm.close()
    # else: objects built on the buffers keep the mapping alive
    return obj, name, mine


def _discard_large(record):
    """A reference record that will never be delivered: remove its segment."""
    try:
        _unlink_shm(_ref_name(record))
    except OSError:
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

def _rebuild(cls, name, key, holders):
    """Unpickle a queue: by name, or from a process that holds it."""
    if name is not None:
        ring = _open_named(name, key)
        if key is not None and ring.key() != key:
            # the name now holds another queue: the pickled one was
            # unlinked since (and a new one made under its name)
            raise FileNotFoundError(2, 'shmring queue %r was unlinked since it was pickled '
                                    '(the name now holds another queue)' % name,
                                    '/dev/shm/' + _check_name(name))
    else:
        ring = _attach_anonymous(key, holders)
    # A worker that gets the queue with every task and drops it after each
    # (spawn, forkserver) keeps the last few attached, so that the next
    # task finds it in the cache instead of attaching again.
    _recently_loaded.append(ring)
    q = cls.__new__(cls)
    _shmring.QueueBase.__init__(q, ring)
    return q


# An event loop keeps one reader callback per fd: the get_async calls of
# one loop waiting on the same ring share one, which wakes them all (each
# then tries get_nowait; those that find nothing wait again).  It watches a
# dup() of the ring's event fd, closed when the last waiter leaves: a ring
# this process lets go of (a drained overflow ring) cannot have its fd
# number reused under the loop's selector.  The waiting futures are held
# weakly: each belongs to its loop, and a strong set here kept every loop
# closed while a get_async waited alive for good, with its dup()ed fd
# (test_asyncio.py test_a_loop_closed_while_get_async_waits_is_let_go).
# Weakly, the waiting task, its future and the loop are garbage together;
# the coroutine's finally then removes the reader and closes the fd.
_loop_readers = weakref.WeakKeyDictionary()  # loop -> {(ring key, gen): [fd, futures]}


class _ReadersLock:
    """A lock that knows its holder.  The collector may finalise a waiting
    coroutine (one whose loop was closed) while this thread holds the lock,
    inside a comprehension below, say: its _reader_remove must not wait for
    the lock (the thread deadlocked on itself: a review found it), nor touch
    a set the holder may be iterating.  It leaves its entry in _deferred,
    which the next call outside the lock finishes."""

    __slots__ = ('_lock', 'owner')

    def __init__(self):
        self._lock = threading.Lock()
        self.owner = None

    def __enter__(self):
        self._lock.acquire()
        self.owner = threading.get_ident()

    def __exit__(self, *exc):
        self.owner = None
        self._lock.release()

    def held_here(self):
        return self.owner == threading.get_ident()


_loop_readers_lock = _ReadersLock()  # loops of several threads; _wake_waiters
_deferred = []                       # (loop ref, key, entry): _reader_remove under the lock


def _reader_close(loop, key, entry):
    """Under the lock: forget entry if nobody waits on it; returns the fd to
    close (and unwatch, if loop is not closed), or -1."""
    if entry[1] or entry[0] < 0:
        return -1
    readers = _loop_readers.get(loop) if loop is not None else None
    if readers is not None and readers.get(key) is entry:
        del readers[key]
    fd, entry[0] = entry[0], -1
    return fd


def _reader_unwatch(loop, fd):
    if fd < 0:
        return
    if loop is not None and not loop.is_closed():
        loop.remove_reader(fd)
    os.close(fd)


def _finish_deferred():
    """Outside the lock: the entries _reader_remove left under it."""
    while _deferred:
        ref, key, entry = _deferred.pop()
        loop = ref()
        with _loop_readers_lock:
            fd = _reader_close(loop, key, entry)
        _reader_unwatch(loop, fd)


def _reader_add(loop, key, fd, fut):
    """Watch fd for fut; returns the entry to give _reader_remove."""
    _finish_deferred()
    with _loop_readers_lock:
        readers = _loop_readers.setdefault(loop, {})
        entry = readers.get(key)
        if entry is not None and entry[0] >= 0:
            entry[1].add(fut)
            return entry
    dfd = os.dup(fd)
    futs = weakref.WeakSet()

    def wake():
        with _loop_readers_lock:
            waiting = list(futs)
        _wake_all(waiting)
    try:
        loop.add_reader(dfd, wake)
    except BaseException:
        os.close(dfd)
        raise
    entry = [dfd, futs]
    with _loop_readers_lock:
        futs.add(fut)
        readers[key] = entry
    return entry


def _wake_all(futs):
    for f in futs:
        if not f.done():
            f.set_result(None)


def _wake_waiters(ring_key):
    """Wake every get_async waiting on the ring ring_key names, in every
    loop (they look again): close() of a handle a get_async waits on made
    it raise only at its next look, up to 1 s later."""
    _finish_deferred()
    with _loop_readers_lock:
        waiting = [(loop, list(entry[1])) for loop, readers in _loop_readers.items()
                   for key, entry in readers.items() if key[0] == ring_key]
    for loop, futs in waiting:
        if futs and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(_wake_all, futs)
            except RuntimeError:              # closed in between
                pass


def _reader_remove(loop, key, fut, entry):
    """fut waits no more; the last one out closes the fd.  From the entry
    itself, not from _loop_readers: a waiting coroutine finalised with its
    closed loop runs this after the loop's weak key is gone."""
    if _loop_readers_lock.held_here():
        # finalised by the collector inside a locked section of this
        # thread: fut is garbage, so the set drops it by itself
        _deferred.append((weakref.ref(loop), key, entry))
        return
    with _loop_readers_lock:
        entry[1].discard(fut)
        fd = _reader_close(loop, key, entry)
    _reader_unwatch(loop, fd)
    _finish_deferred()


class _QueueMixin:
    """What every shmring queue adds to the C core: construction, naming,
    pickling, shutdown, introspection."""

    __slots__ = ()

    @classmethod
    def open(cls, name):
        """Attach to the named queue made by cls(name=...) (in any process).
        FileNotFoundError if there is none; ValueError for
        JoinableQueue.open() of a queue that is not joinable."""
        try:
            ring = _open_named(name)
        except FileNotFoundError:
            ring = _adopt_ring(name)
        if issubclass(cls, JoinableQueue) and not ring.joinable:
            raise ValueError('%r is not a JoinableQueue: its puts are not tasks' % name)
        q = cls.__new__(cls)
        _shmring.QueueBase.__init__(q, ring)
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
        pickled object travels in a side segment (or is refused, see
        side_segments)."""
        return self._ring.max_record

    @property
    def side_segments(self):
        """True: an object whose record is bigger than max_record travels in
        a side segment (a /dev/shm file on this host).  False: put() refuses
        it with ValueError and puts nothing.  Set at construction, kept in
        the queue's control page, so every handle of the queue (opened,
        pickled, inherited) sees the same value."""
        return self._ring.side_segments

    @property
    def light(self):
        """True: every ring of the queue is made with SHMRING_LIGHT_PUBLISH
        (Queue(light=True)).  Kept in the queue's control page, as
        side_segments."""
        return self._ring.light

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

    def close(self):
        """Close this handle (this process); a get_async waiting on it
        raises at once (ValueError, as every call on a closed handle)."""
        ring = self._ring
        key = ring.key() if ring is not None and not self._closed else None
        super().close()
        if key is not None:
            _wake_waiters(key)

    def info(self):
        """A snapshot of the ring as a dict (records, bytes, producers, ...)."""
        return self._ring.info()

    def set_yield(self, ns, pause_ns=-1):
        """Deprecated, and does nothing: waiting is the library's own
        (spin, then sleep on a futex); set_spin() tunes it."""

    def set_spin(self, iterations):
        """How many pause instructions the library spins before it sleeps
        (per queue, per process; the library's default otherwise)."""
        self._ring.set_spin(iterations)

    def __reduce__(self):
        ring = self._ring
        if ring.name is not None:
            return (_rebuild, (type(self), ring.name, ring.key(), None))
        # An anonymous queue travels as the identity of its file plus the
        # processes that hold it: the loader opens /proc/<pid>/fd/<n> of a
        # live one.  Nothing is held for the pickle itself, so it can be
        # loaded any number of times, by any number of processes, and one
        # never loaded costs nothing.
        # The last few rings pickled stay attached here (a bounded cost,
        # not one per pickle), so that a pickle of a queue dropped at once
        # (pickle.loads(pickle.dumps(Queue()))) still loads.
        _recently_pickled.append(ring)
        return (_rebuild, (type(self), None, ring.key(), ring.holders()))

    # --- event loops -------------------------------------------------------

    def fileno(self):
        """A file descriptor that polls readable when a get may succeed (a
        record is ready, or the queue is shut down): for loop.add_reader,
        selectors and multiprocessing.connection.wait.  It is the library's
        event fd (shmring_event_fd) of the ring gets take from now; a get
        that finds the queue empty re-arms it.  Ask again after each wait:
        when an unbounded queue has grown, the number changes."""
        return self._ring.event_fd()[0]

    async def get_async(self, timeout=None):
        """get() for asyncio: waits without blocking the event loop (on
        fileno()), raises queue.Empty after timeout seconds.  Cancelling it
        never loses an item: an item is only taken by a get that returns."""
        import asyncio
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(timeout, 0)
        while True:
            try:
                return self.get_nowait()      # an Empty here re-arms fileno()
            except Empty:
                if deadline is not None and loop.time() >= deadline:
                    raise
            fd, gen = self._ring.event_fd()
            key = (self._ring.key(), gen)
            fut = loop.create_future()
            entry = _reader_add(loop, key, fd, fut)
            try:
                # at most 1 s between looks: a safety net only (a drained
                # ring's fd is readable until this process lets it go)
                left = 1.0 if deadline is None else min(1.0, deadline - loop.time())
                await asyncio.wait_for(fut, max(left, 0))
            except asyncio.TimeoutError:
                pass                          # look again (then Empty, if late)
            finally:
                _reader_remove(loop, key, fut, entry)

    async def put_async(self, obj, timeout=None):
        """put() for asyncio.  An unbounded queue never waits; one with a
        maxsize that is full is retried on a timer (50 us, doubling to 20
        ms) until there is room, raising queue.Full after timeout seconds.
        Cancelling it puts nothing."""
        import asyncio
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(timeout, 0)
        pause = 0.00005
        while True:
            try:
                return self.put(obj, block=False)
            except Full:
                if deadline is not None and loop.time() >= deadline:
                    raise
            await asyncio.sleep(pause if deadline is None
                                else min(pause, max(deadline - loop.time(), 0)))
            pause = min(pause * 2, 0.02)

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
          mode=0o600, exist_ok=False, max_attach=None, side_segments=True,
          light=False)

    maxsize: most items queued at once (<= 0: no limit; put() never waits
      nor raises Full then, memory is the only bound, as in multiprocessing).
    name: make a named queue (/dev/shm/<name>) that Queue.open(name) attaches
      to from any process; FileExistsError if it exists.  Remove the name
      with q.unlink() or shmring.unlink(name).
    capacity: bytes of record storage of each ring (default 8 MiB, rounded
      up to a power of two).  A put that finds the ring full adds another
      ring of the same size (FIFO per producer is kept); drained rings go.
    max_record: the largest record kept in the ring (default capacity / 4);
      bigger objects go through a side segment.
    side_segments: False refuses an object bigger than max_record at put()
      with ValueError (nothing is put) instead of using a side segment,
      which exists on this host only: for a queue whose items cross a
      bridge to another host.  Kept in the queue (Queue.open and pickled
      handles see it); exist_ok on an existing queue keeps its setting.
    mode: permissions of a named queue's files (and of its side segments
      and overflow rings).
    exist_ok: with a name, open the queue if it exists instead of raising
      FileExistsError (race-free among processes doing the same; what a
      crash left at the name is replaced, at once).
    max_attach: processes that can use each ring of the queue at the same
      time (default DEFAULT_MAX_ATTACH, at least 256; up to 65535).
    light: make every ring of the queue with SHMRING_LIGHT_PUBLISH: a put
      and a get skip one locked instruction each, and a process that
      sleeps on the queue pays a membarrier(2) instead (docs/design.md,
      "light rings"): for queues whose consumers mostly find items
      waiting.  Kept in the queue, as side_segments; exist_ok on an
      existing queue keeps its setting.
    ctx: accepted for compatibility with multiprocessing and ignored.
    """

    def __init__(self, maxsize=0, *, ctx=None, name=None, capacity=None,
                 max_record=None, mode=0o600, exist_ok=False, max_attach=None,
                 side_segments=True, light=False):
        joinable = isinstance(self, JoinableQueue)
        if exist_ok and name is not None:
            ring = _named_ring(name, maxsize, capacity, max_record, mode, joinable,
                               max_attach, exist_ok=True, side_segments=side_segments,
                               light=light)
            if joinable and not ring.joinable:
                raise ValueError('%r exists and is not a JoinableQueue' % name)
        else:
            ring = _new_ring(name, maxsize, capacity, max_record, mode, joinable, max_attach,
                             side_segments, light)
        _shmring.QueueBase.__init__(self, ring)


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
                 mode=0o600, exist_ok=False, max_attach=None, side_segments=True,
                 light=False):
        _shmring.QueueBase.__init__(
            self, _named_ring(name, 0, capacity, max_record, mode, False, max_attach,
                              exist_ok=True, side_segments=side_segments, light=light)
            if exist_ok and name is not None else
            _new_ring(name, 0, capacity, max_record, mode, False, max_attach,
                      side_segments, light))
