"""Issue 16's traps, each with the test that failed before its fix: the
unbounded queue that blocked, pickles that loaded once, the small argument
bugs, close() before fork, and safety among users (planted files, modes,
full /dev/shm)."""

import multiprocessing
import contextlib
import errno
import os
import pickle
import signal
import stat
import subprocess
import sys
import time
import unittest

import support  # noqa: F401  (first: sets up the environment)
import shmring
from shmring import Empty, Full

from support import ShmLeakMixin, fd_count, slow_timeout_factor, unique_name


# --- functions run in children (module level: spawn imports them) ---------

def put_big_then_exit(q, n, size):
    for i in range(n):
        q.put(bytes([i]) * size)


def put_sequence(q, k, n):
    for i in range(n):
        q.put((k, i))


def get_one(q):
    return q.get(timeout=30)


def put_square(q, i):
    q.put(i * i)
    return os.getpid()


def attaches(q):
    return shmring._attaches


def make_queue_and_put():
    q = shmring.Queue()
    q.put('from the worker')
    return q


def use_after_parent_closed(q, out):
    q.put('child put')                  # the parent's close() is not ours
    out.put(q.get(timeout=30))


def _raise_runtime():
    raise RuntimeError('does not unpickle (test)')


def _slow_str(text):
    time.sleep(0.2)
    return text


class Unpicklable:
    def __reduce__(self):
        return (_raise_runtime, ())


class SlowToUnpickle:
    """Unpickles after 0.2 s of Python code: another thread runs meanwhile."""

    def __init__(self, text):
        self.text = text

    def __reduce__(self):
        return (_slow_str, (self.text,))


_interrupts_left = [0]


def _interrupting_bytes(data):
    if _interrupts_left[0] > 0:
        _interrupts_left[0] -= 1
        raise KeyboardInterrupt
    return data


class InterruptsWhileLoading:
    """Unpickling raises KeyboardInterrupt while _interrupts_left > 0 (as
    Ctrl-C would, in the middle of a big pickle's load)."""

    def __init__(self, data):
        self.data = data

    def __reduce__(self):
        return (_interrupting_bytes, (self.data,))


@contextlib.contextmanager
def first_side_segment_read_refused():
    """The first side segment read in the block raises PermissionError (as
    for one this user may not open); the others are read as usual."""
    real = shmring._get_large
    calls = []

    def refuse(rec):
        calls.append(rec)
        if len(calls) == 1:
            raise PermissionError(13, 'refused (test)')
        return real(rec)
    shmring._shmring._setup(Empty, Full, shmring.ShutDown, shmring._put_large,
                            refuse, shmring._discard_large)
    try:
        yield
    finally:
        shmring._shmring._setup(Empty, Full, shmring.ShutDown, shmring._put_large,
                                real, shmring._discard_large)


def queue_with_held_back(items):
    """A queue whose handle holds items back: get_many() took them from the
    ring behind a record that failed to unpickle, and get() raised that
    record's error, so they come out first on this handle."""
    q = shmring.Queue()
    q.put('ok')
    q.put(Unpicklable())
    for item in items:
        q.put(item)
    assert q.get_many() == ['ok']
    try:
        q.get()
    except RuntimeError:
        pass
    else:
        raise AssertionError('the unpicklable record unpickled')
    return q


class UnboundedTest(ShmLeakMixin, unittest.TestCase):

    def test_child_puts_20_mib_and_exits_join_does_not_block(self):
        # issue 16: the child blocked in put (8 MiB ring), so join() did too
        ctx = multiprocessing.get_context('fork')
        q = shmring.Queue()
        p = ctx.Process(target=put_big_then_exit, args=(q, 20, 1 << 20))
        p.start()
        p.join(60 * slow_timeout_factor())
        self.assertEqual(p.exitcode, 0, 'the child did not finish its puts')
        for i in range(20):
            self.assertEqual(q.get(timeout=10), bytes([i]) * (1 << 20))
        self.assertTrue(q.empty())

    def test_fifo_per_producer_across_rings(self):
        # Rounds of 4 producer processes on 4 KiB rings (about 40 rings a
        # round): FIFO per producer, every put done, and no overflow ring
        # left.  A producer that read tail == t and was preempted before
        # making ring t + 1 made it again after the real t + 1 had been
        # filled, drained and unlinked: a name nobody unlinked (one round in
        # ten here, one run in four of the single round this test was), or
        # its open found no name and a put raised FileNotFoundError.
        ctx = multiprocessing.get_context('fork')
        chain = shmring.SEGMENT_PREFIX + 'q'
        before = {f for f in os.listdir('/dev/shm') if f.startswith(chain)}
        n, producers = 1000, 4
        for rnd in range(12):
            q = shmring.Queue(capacity=4096)
            ps = [ctx.Process(target=put_sequence, args=(q, k, n))
                  for k in range(producers)]
            for p in ps:
                p.start()
            last = dict.fromkeys(range(producers), -1)
            for _ in range(producers * n):
                k, i = q.get(timeout=30 * slow_timeout_factor())
                self.assertEqual(i, last[k] + 1, 'producer %d out of order' % k)
                last[k] = i
            for p in ps:
                p.join(30 * slow_timeout_factor())
                self.assertEqual(p.exitcode, 0, 'round %d: a put raised' % rnd)
            self.assertGreater(q._ring.info()['head'], 1, 'the chain never grew')
            del q
            left = sorted(f for f in os.listdir('/dev/shm')
                          if f.startswith(chain) and f not in before)
            self.assertEqual(left, [], 'round %d left overflow rings' % rnd)

    def test_stale_grower_leaves_no_ring(self):
        # The interleaving above, forced: ring 0 full, rings 1 and 2 made,
        # everything taken (head 2, ring 1's name unlinked), and then the
        # producer that read tail == 0 long ago makes ring 1.
        chain = shmring.SEGMENT_PREFIX + 'q'
        before = {f for f in os.listdir('/dev/shm') if f.startswith(chain)}
        q = shmring.Queue(capacity=4096)
        ring = q._ring
        i = 0
        while ring.info()['tail'] < 2:
            q.put(i)
            i += 1
        for k in range(i):
            self.assertEqual(q.get(timeout=10), k)
        self.assertEqual(ring.info()['head'], 2)
        mine = sorted(f for f in os.listdir('/dev/shm')
                      if f.startswith(chain) and f not in before)
        self.assertEqual([f.rsplit('-', 1)[1] for f in mine], ['2'])
        ring._grow_after_read(0)
        now = sorted(f for f in os.listdir('/dev/shm')
                     if f.startswith(chain) and f not in before)
        self.assertEqual(now, mine, 'the stale grower left a ring')
        self.assertEqual((ring.info()['head'], ring.info()['tail']), (2, 2))
        q.put('after')
        self.assertEqual(q.get(timeout=10), 'after')

    def test_maxsize_still_bounds(self):
        q = shmring.Queue(3, capacity=4096)
        for i in range(3):
            q.put_nowait(b'z' * 1000)
        self.assertTrue(q.full())
        self.assertRaises(Full, q.put_nowait, 1)
        q.get()
        q.put_nowait(1)


class ArgumentTest(ShmLeakMixin, unittest.TestCase):

    def test_huge_maxsize_is_overflow_not_bad_magic(self):
        with self.assertRaises(OverflowError):
            shmring.Queue(maxsize=2 ** 63)
        q = shmring.Queue(maxsize=2 ** 63 - 1)
        q.put(1)
        self.assertEqual(q.get(), 1)

    def test_tiny_max_record_is_refused(self):
        with self.assertRaises(ValueError):
            shmring.Queue(max_record=1)
        q = shmring.Queue(max_record=shmring.MIN_MAX_RECORD, capacity=4096)
        q.put(b'x' * 10000)              # a side segment's reference fits
        self.assertEqual(q.get(), b'x' * 10000)

    def test_float_maxsize_is_a_type_error(self):
        with self.assertRaises(TypeError):
            shmring.Queue(1.5)

    def test_capacity_zero_is_the_documented_default(self):
        self.assertEqual(shmring.Queue(capacity=0).capacity, shmring.DEFAULT_CAPACITY)
        self.assertEqual(shmring.DEFAULT_CAPACITY, 8 << 20)

    def test_close_before_fork_is_not_inherited(self):
        ctx = multiprocessing.get_context('fork')
        q = shmring.Queue()
        out = shmring.Queue()
        q.close()
        self.assertRaises(ValueError, q.put, 1)
        p = ctx.Process(target=use_after_parent_closed, args=(q, out))
        p.start()
        self.assertEqual(out.get(timeout=30), 'child put')
        p.join(30)
        self.assertEqual(p.exitcode, 0)


class ManyThreadsTest(ShmLeakMixin, unittest.TestCase):

    def test_more_waiting_threads_than_the_library_has_slots(self):
        # CPython's test_many_threads got OSError(ENOBUFS): more than
        # SHMRING_MAX_INFLIGHT threads of one process in the library on one
        # handle; the extra ones now wait outside it
        import threading
        q = shmring.SimpleQueue()
        errors = []

        def getter():
            try:
                q.get(timeout=30)
            except Exception as e:      # noqa: BLE001 - collected for the assertion
                errors.append(e)
        ts = [threading.Thread(target=getter) for _ in range(200)]
        for t in ts:
            t.start()
        time.sleep(0.3)
        for i in range(200):
            q.put(i)
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])


class PickleTwiceTest(ShmLeakMixin, unittest.TestCase):

    def test_load_the_same_pickle_twice(self):
        q = shmring.Queue()
        data = pickle.dumps(q)
        a = pickle.loads(data)
        b = pickle.loads(data)
        a.put(1)
        self.assertEqual(b.get(timeout=5), 1)

    def test_load_in_other_processes_many_times(self):
        q = shmring.Queue()
        data = pickle.dumps(q)
        code = ('import pickle, sys; sys.path[:0] = %r; import shmring; '
                'q = pickle.loads(%r); q.put(sys.argv[1])' % (sys.path[:3], data))
        for i in range(3):
            subprocess.run([sys.executable, '-c', code, 'p%d' % i], check=True, timeout=60)
        self.assertEqual(sorted(q.get(timeout=5) for _ in range(3)), ['p0', 'p1', 'p2'])

    def test_dumps_never_loaded_hold_no_fds(self):
        q = shmring.Queue()
        before = fd_count()
        for _ in range(500):
            pickle.dumps(q)
        self.assertLessEqual(fd_count() - before, 0)

    def test_pool_maxtasksperchild_loads_it_every_task(self):
        q = shmring.Queue()
        ctx = multiprocessing.get_context('spawn')
        with ctx.Pool(2, maxtasksperchild=1) as pool:
            pids = pool.starmap(put_square, [(q, i) for i in range(6)])
        self.assertGreater(len(set(pids)), 2, 'workers were not replaced')
        self.assertEqual(sorted(q.get(timeout=10) for _ in range(6)),
                         [i * i for i in range(6)])

    def test_queue_returned_from_a_worker_that_stays_alive(self):
        ctx = multiprocessing.get_context('fork')
        with ctx.Pool(1) as pool:
            q = pool.apply(make_queue_and_put)
            self.assertEqual(q.get(timeout=10), 'from the worker')

    def test_spawn_worker_attaches_once_for_many_tasks(self):
        # issue 16: a queue passed with every task was attached again for
        # each (spawn: 891 tasks/s against 25,918 without it)
        ctx = multiprocessing.get_context('spawn')
        q = shmring.Queue()
        name = unique_name()
        n = shmring.Queue(name=name)
        try:
            with ctx.Pool(1) as pool:
                a = [pool.apply(attaches, (q,)) for _ in range(10)]
                b = [pool.apply(attaches, (n,)) for _ in range(10)]
            self.assertEqual(a, [1] * 10)
            self.assertEqual(b, [2] * 10)
        finally:
            n.unlink()

    def test_loaded_handle_is_the_cached_one(self):
        # passing a queue with every task costs a dict lookup, not a mapping
        q = shmring.Queue()
        self.assertIs(pickle.loads(pickle.dumps(q))._ring, q._ring)
        name = unique_name()
        n = shmring.Queue(name=name)
        try:
            self.assertIs(pickle.loads(pickle.dumps(n))._ring, n._ring)
            self.assertIs(shmring.Queue.open(name)._ring, n._ring)
        finally:
            n.unlink()


def open_or_create_many(name, n, out):
    for i in range(n):
        q = shmring.Queue(name=name, exist_ok=True)
        q.put((os.getpid(), i))
    out.put('done')


def race_fresh_names(names, barrier, out):
    # every round a fresh name, both processes released together
    errors = []
    for name in names:
        barrier.wait(60)
        try:
            shmring.Queue(name=name, exist_ok=True).put(os.getpid())
        except Exception as e:              # noqa: BLE001 - reported to the parent
            errors.append('%s: %r' % (name, e))
    out.put(errors)


def slow_creator(name, out):
    # A creator that is slow between making the control file and finishing
    # the queue (a loaded machine): 3 s, longer than any grace period.
    real = {}
    for fn in ('ctl_init', 'open_or_create'):
        if hasattr(shmring._shmring, fn):
            real[fn] = getattr(shmring._shmring, fn)

            def slow(*a, _fn=fn):
                out.put('inside')
                time.sleep(3)
                return real[_fn](*a)
            setattr(shmring._shmring, fn, slow)
    q = shmring.Queue(name=name, exist_ok=True)
    q.put('from the slow creator')
    out.put('done')


class ExistOkTest(ShmLeakMixin, unittest.TestCase):

    def test_create_or_open_race(self):
        # issue 16: try Queue(name) except FileExistsError: Queue.open(name)
        # got FileNotFoundError in 3 of 60 opens
        ctx = multiprocessing.get_context('fork')
        name = unique_name()
        out = shmring.Queue()
        try:
            ps = [ctx.Process(target=open_or_create_many, args=(name, 30, out))
                  for _ in range(2)]
            for p in ps:
                p.start()
            self.assertEqual([out.get(timeout=60) for _ in ps], ['done', 'done'])
            for p in ps:
                p.join(30)
                self.assertEqual(p.exitcode, 0)
            q = shmring.Queue.open(name)
            self.assertEqual(len(q.get_many(max_items=100)), 60)
        finally:
            shmring.unlink(name)

    def test_two_processes_race_60_fresh_names(self):
        # 60 rounds, each on a new name, both processes released by a
        # barrier: never an error, and both always end on the same queue
        ctx = multiprocessing.get_context('fork')
        names = [unique_name('r%d' % i) for i in range(60)]
        barrier = ctx.Barrier(2)
        out = shmring.Queue()
        ps = [ctx.Process(target=race_fresh_names, args=(names, barrier, out))
              for _ in range(2)]
        try:
            for p in ps:
                p.start()
            errors = out.get(timeout=120) + out.get(timeout=120)
            for p in ps:
                p.join(30)
            self.assertEqual(errors, [])
            pids = {p.pid for p in ps}
            for name in names:
                q = shmring.Queue.open(name)
                got = q.get_many(block=False, max_items=10)
                self.assertEqual(set(got), pids, name)
        finally:
            for name in names:
                try:
                    shmring.unlink(name)
                except FileNotFoundError:
                    pass

    def test_slow_creator_and_an_opener_share_one_queue(self):
        # The retry loop took a creator slower than its grace period (2 s)
        # for a crash's leftover, removed its files and made a second
        # queue: the two processes ended on different queues.
        ctx = multiprocessing.get_context('fork')
        name = unique_name()
        out = shmring.Queue()
        p = ctx.Process(target=slow_creator, args=(name, out))
        p.start()
        try:
            self.assertEqual(out.get(timeout=30), 'inside')
            q = shmring.Queue(name=name, exist_ok=True)
            q.put('from the opener')
            self.assertEqual(out.get(timeout=30), 'done')
            p.join(30)
            self.assertEqual(p.exitcode, 0)
            got = q.get_many(timeout=5, max_items=10)
            if len(got) < 2:
                got += q.get_many(timeout=5, max_items=10)
            self.assertEqual(sorted(got), ['from the opener', 'from the slow creator'])
        finally:
            p.join(30)
            for n in (name, name):
                try:
                    shmring.unlink(n)
                except FileNotFoundError:
                    pass

    def _restart_is_prompt(self, name):
        t0 = time.monotonic()
        q = shmring.Queue(name=name, exist_ok=True)
        try:
            self.assertLess(time.monotonic() - t0, 1.0, 'a restart waited on a leftover')
            q.put('fresh')
            self.assertEqual(shmring.Queue(name=name, exist_ok=True).get(timeout=5), 'fresh')
        finally:
            q.unlink()
        self.assertFalse(os.path.exists('/dev/shm/' + name + '.pyq'))

    def test_stale_empty_control_file_does_not_stop_a_restart(self):
        # a creator that died after making its first file
        name = unique_name()
        os.close(os.open('/dev/shm/%s.pyq' % name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
        self._restart_is_prompt(name)

    def test_stale_zeroed_control_page_does_not_stop_a_restart(self):
        # a creator that died after its fallocate, before the magic
        name = unique_name()
        with open('/dev/shm/%s.pyq' % name, 'xb') as f:
            f.write(bytes(shmring._shmring.CTL_SIZE))
        self._restart_is_prompt(name)

    def test_control_files_not_ours_are_refused_and_kept(self):
        # Another version's control page (its queue in use by processes of
        # that version), a foreign file, a cut one: each was taken for a
        # crash's leftover and removed.
        cases = [
            (b'SHMRPYQ1' + bytes(shmring._shmring.CTL_SIZE - 8), errno.EPROTONOSUPPORT),
            (b'not a control page' + bytes(100), errno.EPROTO),
            (shmring._shmring.CTL_MAGIC + bytes(100), errno.EBADMSG),
        ]
        for content, err in cases:
            name = unique_name()
            path = '/dev/shm/%s.pyq' % name
            with open(path, 'xb') as f:
                f.write(content)
            try:
                for make in (lambda: shmring.Queue(name=name, exist_ok=True),
                             lambda: shmring.Queue(name=name),
                             lambda: shmring.Queue.open(name)):
                    with self.assertRaises(OSError) as cm:
                        make()
                    self.assertEqual(cm.exception.errno, err, content[:20])
                    with open(path, 'rb') as f:
                        self.assertEqual(f.read(), content, 'the file was changed')
                self.assertFalse(os.path.exists('/dev/shm/' + name))
            finally:
                os.unlink(path)

    def test_stale_control_page_without_ring_does_not_stop_a_restart(self):
        # a creator that died between its two files, or an unlink cut short
        name = unique_name()
        q = shmring.Queue(name=name)
        q.put('old')
        del q
        shmring._shmring.unlink(name)          # the ring's name only
        self.assertTrue(os.path.exists('/dev/shm/' + name + '.pyq'))
        self.assertRaises(FileNotFoundError, shmring.Queue.open, name)
        self._restart_is_prompt(name)

    def test_ring_without_control_page_is_taken_over(self):
        # an unlink cut short the other way, or a ring a C program made:
        # exist_ok opens it and gives it a control page
        name = unique_name()
        q = shmring.Queue(name=name, capacity=1 << 16)
        q.put_bytes(b'left in the ring')
        del q
        os.unlink('/dev/shm/' + name + '.pyq')
        self.assertRaises(FileExistsError, shmring.Queue, name=name)
        self.assertFalse(os.path.exists('/dev/shm/' + name + '.pyq'))
        t0 = time.monotonic()
        q = shmring.Queue(name=name, exist_ok=True)
        try:
            self.assertLess(time.monotonic() - t0, 1.0)
            self.assertEqual(q.capacity, 1 << 16)       # the ring's own geometry
            self.assertEqual(q.get_bytes(timeout=5), b'left in the ring')
            q.put('works')
            self.assertEqual(shmring.Queue.open(name).get(timeout=5), 'works')
        finally:
            q.unlink()

    def test_lock_is_not_held_by_an_open_queue(self):
        # the flock belongs to the open file description, which the queue's
        # handle keeps (a dup): creating and opening must release it
        name = unique_name()
        q = shmring.Queue(name=name, exist_ok=True)
        try:
            code = ('import sys; sys.path[:0] = %r; import shmring; '
                    'shmring.LOCK_TIMEOUT = 2; '
                    'q = shmring.Queue(name=%r, exist_ok=True); print(q.get(timeout=10))'
                    % (sys.path[:3], name))
            q.put('seen')
            r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.stdout.strip(), 'seen', r.stderr)
        finally:
            q.unlink()

    @unittest.skipUnless(os.geteuid() == 0, 'needs root to run a child as another user')
    def test_exist_ok_by_another_user_of_a_shared_queue(self):
        # Another user of a mode=0o666 queue opens it with exist_ok.  (The
        # control file is opened without O_CREAT when it exists: with
        # fs.protected_regular set, an O_CREAT open of another user's file
        # in sticky /dev/shm is EACCES; see
        # /proc/sys/fs/protected_regular.)
        name = unique_name()
        q = shmring.Queue(name=name, mode=0o666, exist_ok=True)
        code = ('import os, sys; sys.path[:0] = %r; import shmring; '
                'os.setgid(65534); os.setuid(65534); '
                'shmring.LOCK_TIMEOUT = 5; '
                'shmring.Queue(name=%r, exist_ok=True).put_bytes(b"from nobody")'
                % (sys.path[:3], name))
        try:
            r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(q.get_bytes(timeout=10), b'from nobody')
        finally:
            q.unlink()


class SafetyTest(ShmLeakMixin, unittest.TestCase):

    @unittest.skipUnless(os.geteuid() == 0, 'needs root to plant a file as another user')
    def test_planted_control_file_of_another_user_is_refused(self):
        name = unique_name()
        q = shmring.Queue(name=name)
        try:
            os.chown('/dev/shm/%s.pyq' % name, 12345, -1)   # as if planted
            shmring._rings.clear()
            with self.assertRaises(PermissionError):
                shmring.Queue.open(name)
        finally:
            os.chown('/dev/shm/%s.pyq' % name, 0, -1)
            q.unlink()

    def test_symlinked_control_file_is_refused(self):
        name = unique_name()
        q = shmring.Queue(name=name)
        target = unique_name('target')
        try:
            os.rename('/dev/shm/%s.pyq' % name, '/dev/shm/' + target)
            os.symlink('/dev/shm/' + target, '/dev/shm/%s.pyq' % name)
            shmring._rings.clear()
            with self.assertRaises(OSError):
                shmring.Queue.open(name)
        finally:
            os.unlink('/dev/shm/%s.pyq' % name)
            os.unlink('/dev/shm/' + target)
            q.unlink()

    def test_side_segments_and_rings_get_the_queue_mode(self):
        name = unique_name()
        q = shmring.Queue(name=name, mode=0o660, capacity=4096)
        try:
            before = set(os.listdir('/dev/shm'))
            q.put(b'y' * 100000)                 # a side segment
            for i in range(200):
                q.put(b'z' * 100)                # overflow rings
            new = [n for n in set(os.listdir('/dev/shm')) - before
                   if n.startswith(shmring.SEGMENT_PREFIX)]
            self.assertGreater(len(new), 1)
            for n in new:
                self.assertEqual(stat.S_IMODE(os.stat('/dev/shm/' + n).st_mode), 0o660, n)
            self.assertEqual(q.get(), b'y' * 100000)
            for i in range(200):
                self.assertEqual(q.get(), b'z' * 100)
        finally:
            q.unlink()

    def test_unreadable_side_segment_loses_no_item(self):
        q = shmring.Queue(capacity=4096)
        q.put(b'w' * 100000)
        seg = [n for n in os.listdir('/dev/shm') if n.startswith(shmring.SEGMENT_PREFIX)
               and '-q' not in n]
        self.assertEqual(len(seg), 1)
        with first_side_segment_read_refused():
            self.assertRaises(PermissionError, q.get)
            self.assertEqual(q.get(), b'w' * 100000, 'the item was lost')

    def test_file_size_limit_is_an_oserror_at_put_not_a_signal(self):
        # A put that cannot get storage raises OSError and the queue stays
        # usable (RLIMIT_FSIZE stands in for a full /dev/shm: both make
        # posix_fallocate fail before anything is mapped).
        code = '''if 1:
            import os, resource, signal, sys
            sys.path[:0] = %r
            import shmring
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            q = shmring.Queue(capacity=4096)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
            try:
                q.put(b'x' * (4 << 20))
            except OSError as e:
                print('OSError', e.errno)
            for i in range(3000):
                try:
                    q.put(i)
                except OSError as e:
                    print('grow', e.errno)
                    break
            q.put('still usable')
            while True:
                item = q.get()
                if item == 'still usable':
                    print('usable')
                    break
        ''' % (sys.path[:3],)
        r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('OSError 27', r.stdout)       # EFBIG
        self.assertEqual(r.stdout.splitlines()[-1], 'usable', r.stdout)
        for n in os.listdir('/dev/shm'):
            if n.startswith(shmring.SEGMENT_PREFIX):
                os.unlink('/dev/shm/' + n)


class ReviewTest(ShmLeakMixin, unittest.TestCase):
    """A review of the binding (2026-12-06) found these; each failed before
    its fix."""

    def test_two_threads_take_held_back_items_once_each(self):
        # Before: the first thread unpickled item 0 through a borrowed
        # reference, the second took the same item meanwhile; then both
        # deleted "item 0": ['A', 'A'] with B lost, or a segfault.
        import threading
        q = queue_with_held_back([SlowToUnpickle('A'), SlowToUnpickle('B')])
        out, errors = [], []

        def take():
            try:
                out.append(q.get(timeout=5))
            except Exception as e:      # noqa: BLE001 (reported below)
                errors.append(repr(e))
        threads = [threading.Thread(target=take) for _ in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(sorted(out), ['A', 'B'])

    def test_held_back_items_stay_with_the_process_that_took_them(self):
        # Before: a fork child inherited the list and delivered its items
        # too (the parent's get() and the child's both returned 'A').
        q = queue_with_held_back(['A'])
        pid = os.fork()
        if pid == 0:
            try:
                q.get(timeout=0.3)
                os._exit(1)             # delivered twice
            except Empty:
                os._exit(0)
            except BaseException:
                os._exit(2)
        _, st = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(st), 0,
                         'the child got an item it did not take')
        self.assertEqual(q.get(timeout=5), 'A')

    def test_blocking_get_many_waits_when_another_consumer_wins_a_large_record(self):
        # A record bigger than get_many's 256 KiB buffer is taken by a
        # non-blocking get(); when another consumer had it first, a
        # get_many() that may block raised Empty at once.
        import threading
        q = shmring.Queue()
        errors, got, early = [], [], []
        done = threading.Event()

        def consume():
            try:
                while True:
                    got.extend(q.get_many(timeout=3))
            except Empty:
                if not done.is_set():
                    early.append(time.monotonic())
            except Exception as e:      # noqa: BLE001
                errors.append(repr(e))
        threads = [threading.Thread(target=consume) for _ in range(3)]
        for t in threads:
            t.start()
        for i in range(40):
            q.put(b'x' * 300000)
            time.sleep(0.02)
        # a consumer may end only by its 3 s timeout, after the last item
        time.sleep(1)
        done.set()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(early, [], 'a blocking get_many() raised Empty with items flowing')
        self.assertEqual(len(got), 40)

    def test_a_side_segment_removed_by_hand_loses_only_its_item(self):
        # Before: its reference was kept for a retry that could never
        # succeed; every get() raised FileNotFoundError and the items
        # behind it never came out.
        q = shmring.Queue(capacity=1 << 16)
        q.put(b'x' * 100000)
        q.put('next')
        for n in shmring.leftover_segments():
            os.unlink('/dev/shm/' + n)
        self.assertRaises(FileNotFoundError, q.get, timeout=5)
        self.assertEqual(q.get(timeout=5), 'next')

    def test_a_side_segment_that_fails_to_map_is_read_on_the_next_get(self):
        # Before: its name was removed before the map, so the retry found
        # no file (FileNotFoundError on every get, as above).
        import errno
        import mmap
        q = shmring.Queue(capacity=1 << 16)
        q.put(b'y' * 100000)
        q.put('next')
        real = mmap.mmap

        def fail_once(*args, **kw):
            mmap.mmap = real
            raise OSError(errno.ENOMEM, 'no memory (test)')
        mmap.mmap = fail_once
        try:
            with self.assertRaises(OSError) as cm:
                q.get(timeout=5)
            self.assertEqual(cm.exception.errno, errno.ENOMEM)
        finally:
            mmap.mmap = real
        self.assertEqual(q.get(timeout=5), b'y' * 100000)
        self.assertEqual(q.get(timeout=5), 'next')

    def test_a_pickled_named_queue_does_not_load_a_new_queue_of_its_name(self):
        # The pickle carries the ring's (st_dev, st_ino); before, a loader
        # that did not have it cached opened whatever held the name now.
        name = unique_name('renamed')
        q = shmring.Queue(name=name)
        data = pickle.dumps(q)
        q.unlink()
        del q
        q2 = shmring.JoinableQueue(name=name)
        try:
            code = '''if 1:
                import pickle, sys
                sys.path[:0] = %r
                try:
                    pickle.loads(sys.stdin.buffer.read())
                    print('loaded')
                except FileNotFoundError as e:
                    print('FileNotFoundError', e)
            ''' % (sys.path[:3],)
            r = subprocess.run([sys.executable, '-c', code], input=data, capture_output=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith(b'FileNotFoundError'), r.stdout)
        finally:
            q2.unlink()

    def test_a_large_array_is_not_shared_with_a_fork_child(self):
        # An array bigger than max_record comes out backed by the side
        # segment's mapping; mapped shared, a fork child's write to it
        # changed the parent's array (one from the ring did not).
        try:
            import numpy as np
        except ImportError:
            self.skipTest('numpy is not installed')
        q = shmring.Queue(capacity=1 << 16)
        q.put(np.zeros(1 << 20, np.uint8))
        big = q.get(timeout=5)
        self.assertTrue(big.flags.writeable)
        pid = os.fork()
        if pid == 0:
            big[0] = 7
            os._exit(0 if big[0] == 7 else 1)
        _, st = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(st), 0)
        self.assertEqual(int(big[0]), 0, "the child's write reached the parent's array")

    def test_get_many_interrupted_raises_and_keeps_everything(self):
        # A KeyboardInterrupt while get_many unpickles its second item was
        # cleared and the call returned [1]: the interrupt lost, and the
        # interrupted item with it if the interrupt came at the first one.
        import signal

        def interrupt(signum, frame):
            raise KeyboardInterrupt
        old = signal.signal(signal.SIGALRM, interrupt)
        try:
            q = shmring.Queue()
            q.put(1)
            q.put(SlowToUnpickle('two'))
            q.put(3)
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            self.assertRaises(KeyboardInterrupt, q.get_many, timeout=5)
            signal.setitimer(signal.ITIMER_REAL, 0)
            got = []
            while len(got) < 3:
                got.extend(q.get_many(timeout=5))
            self.assertEqual(got, [1, 'two', 3])
            self.assertEqual(q.qsize(), 0)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def test_get_many_keeps_a_side_segment_it_cannot_read(self):
        # As get() does: the item stays first in line, never lost.
        # get_many dropped it (and left its file) when it came first.
        q = shmring.Queue(capacity=1 << 16)
        q.put(b'w' * 100000)
        q.put('next')
        with first_side_segment_read_refused():
            self.assertRaises(PermissionError, q.get_many, timeout=5)
            got = []
            while len(got) < 2:
                got.extend(q.get_many(timeout=5))
            self.assertEqual(got, [b'w' * 100000, 'next'], 'the item was lost')

    def test_a_large_item_interrupted_while_it_loads_is_kept(self):
        # Ctrl-C while a side segment's pickle loads: its name had been
        # removed before the load, so the item was lost (the next get()
        # raised Empty; get_many() the FileNotFoundError once).  Now the
        # name goes only once the object is built, and the record stays
        # first in line.
        before = set(shmring.leftover_segments())
        for how in ('get', 'get_many'):
            q = shmring.Queue(capacity=1 << 16)
            q.put(InterruptsWhileLoading(b'x' * 100000))
            q.put('next')
            _interrupts_left[0] = 1
            try:
                self.assertRaises(KeyboardInterrupt, getattr(q, how), timeout=5)
            finally:
                _interrupts_left[0] = 0
            first = q.get(timeout=5)
            self.assertEqual(first, b'x' * 100000, how + ': the item was lost')
            self.assertEqual(q.get(timeout=5), 'next')
            self.assertEqual(set(shmring.leftover_segments()) - before, set(),
                             how + ': its side segment was left behind')
            q.close()

    def test_root_of_a_user_namespace_frees_another_users_segment(self):
        # A side segment of uid 4242 (mode 0666), got by uid 4243 as root of
        # its own user namespace (unshare -r), which may read the file but
        # not remove it (/dev/shm is sticky; 4242 is not mapped there).  It
        # was taken for its owner ("root"): neither removed nor truncated,
        # 100 KB left in /dev/shm.  Now it is copied out and truncated.
        import shutil
        import subprocess
        import sys
        if os.geteuid() != 0 or not shutil.which('setpriv') or not shutil.which('unshare'):
            self.skipTest('needs root, setpriv and unshare')
        env = dict(os.environ)
        mk = ('import shmring; print(shmring._put_large(1, b"x" * 100000, None, 0o666).hex())')
        r = subprocess.run(['setpriv', '--reuid=4242', '--regid=4242', '--clear-groups',
                            sys.executable, '-c', mk], capture_output=True, env=env, timeout=30)
        if r.returncode != 0:
            self.skipTest('cannot run as uid 4242 here: %r' % r.stderr[-300:])
        rec = r.stdout.strip().decode()
        name = shmring._ref_name(bytes.fromhex(rec))
        path = '/dev/shm/' + name
        try:
            get = ('import sys, shmring; q = shmring.Queue(); '
                   'q.put_bytes(bytes.fromhex(sys.argv[1])); print(len(q.get(timeout=5)))')
            r = subprocess.run(['setpriv', '--reuid=4243', '--regid=4243', '--clear-groups',
                                'unshare', '-r', sys.executable, '-c', get, rec],
                               capture_output=True, env=env, timeout=30)
            if r.returncode != 0 and b'unshare' in r.stderr:
                self.skipTest('unshare -r not permitted here: %r' % r.stderr[-300:])
            self.assertEqual((r.returncode, r.stdout.strip()), (0, b'100000'), r.stderr[-1000:])
            self.assertEqual(os.path.getsize(path), 0, 'the segment was left whole')
        finally:
            if os.path.exists(path):
                os.unlink(path)

    def test_get_many_keeps_what_it_took_before_a_big_record_that_fails(self):
        # A record bigger than get_many's buffer is taken by a get of its
        # own; when that raised (here: not written by put()), the items
        # get_many had taken before it were dropped with the error.
        q = shmring.Queue(capacity=1 << 22, max_record=1 << 20)
        big = b'a' * (300 * 1024)                  # beyond the 256 KiB buffer
        q.put(big)
        q.put_bytes(b'\xff' * (300 * 1024))
        q.put(3)
        self.assertRaises(ValueError, q.get_many, timeout=5)
        got = []
        while len(got) < 2:
            got.extend(q.get_many(timeout=5))
        self.assertEqual(got, [big, 3], 'the first big item was lost')
        q.close()

    def test_join_and_task_done_work_after_close(self):
        # multiprocessing.JoinableQueue's do: a producer puts, closes its
        # handle and joins.  Both raised ValueError ("closed") here.
        q = shmring.JoinableQueue()
        q.put(1)
        q.put(2)
        q.close()
        self.assertEqual(q.join(timeout=0.05), False)
        other = shmring.JoinableQueue.__new__(shmring.JoinableQueue)
        shmring._shmring.QueueBase.__init__(other, q._ring)   # a second handle
        self.assertEqual(other.get(timeout=5), 1)
        self.assertEqual(other.get(timeout=5), 2)
        q.task_done()
        q.task_done()
        self.assertRaises(ValueError, q.task_done)            # too many times
        self.assertIs(q.join(timeout=5), True)
        self.assertRaises(ValueError, q.put, 3)              # still closed for puts

    def test_overflow_rings_go_at_exit_while_a_daemon_thread_holds_the_queue(self):
        # A daemon consumer blocked in get() keeps the queue alive through
        # exit: its Ring was never freed, and the names of its overflow
        # rings stayed in /dev/shm.
        code = '''if 1:
            import sys, threading, time
            sys.path[:0] = %r
            import shmring
            q = shmring.Queue(capacity=1 << 16)
            def consume():
                while True:
                    q.get()
                    time.sleep(10)
            threading.Thread(target=consume, daemon=True).start()
            for i in range(3000):
                q.put(i)
            print(len(shmring.leftover_segments()))
        ''' % (sys.path[:3],)
        r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(int(r.stdout), 0, 'the queue did not grow: the test tells nothing')
        self.assertEqual(shmring.leftover_segments(), [])


if __name__ == '__main__':
    unittest.main()
