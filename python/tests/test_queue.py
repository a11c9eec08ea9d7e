"""shmring.Queue in one process: every method, exception and timeout,
closed handles, maxsize, large objects, out-of-band buffers, batches, named
queues, shutdown, pickling of the queue object itself."""

import copy
import gc
import importlib.util
import os
import pickle
import queue
import signal
import threading
import time
import unittest
import uuid

import support  # noqa: F401  (first: sets up the environment)
import shmring
from shmring import Empty, Full, ShutDown

from support import (ShmLeakMixin, fd_count, slow_timeout_factor,
                     unique_name)


class Str(str):
    pass


class Unpicklable:
    def __reduce__(self):
        raise TypeError('Unpicklable cannot be pickled')


def _explode(arg):
    raise RuntimeError('boom while unpickling %r' % (arg,))


class ExplodesOnLoad:
    """Pickles fine; unpickling it raises."""
    def __init__(self, tag):
        self.tag = tag

    def __reduce__(self):
        return (_explode, (self.tag,))


class OutOfBand:
    """Pickles its payload as an out-of-band PickleBuffer (protocol 5), as
    numpy arrays do."""
    def __init__(self, data):
        self.data = bytearray(data)

    def __reduce_ex__(self, protocol):
        return (_rebuild_oob, (pickle.PickleBuffer(self.data),))


def _rebuild_oob(buf):
    obj = OutOfBand(b'')
    obj.data = obj.buf = buf        # out of band: the buffer itself, no copy
    return obj


class BasicTest(ShmLeakMixin, unittest.TestCase):

    def test_put_get_objects(self):
        q = shmring.Queue()
        objs = [None, 0, -1, 2**100, 1.5, 'text', 'ünïcode', b'', b'bytes',
                bytearray(b'ba'), (1, 2, 3, 4, 5), [1, [2, [3]]],
                {'a': 1, 2: (3,)}, {1, 2}, frozenset({3}), Exception('x'),
                list(range(1000)), {'k%d' % i: i for i in range(100)}]
        for o in objs:
            q.put(o)
        for o in objs:
            got = q.get()
            if isinstance(o, Exception):
                self.assertEqual(got.args, o.args)
            else:
                self.assertEqual(got, o)
                self.assertIs(type(got), type(o))
        self.assertTrue(q.empty())

    def test_plain_data_roundtrip_exactly(self):
        """Small plain data takes the compact codec, the rest pickle: either
        way the object that comes out is equal, of the same types, with the
        same sharing."""
        import math
        q = shmring.Queue()
        shared = [1]
        cases = [
            (1, 2, 3, 4, 5), (), [], {}, 0, -2**63, 2**63 - 1, 2**63, -2**63 - 1,
            True, False, (True, 1, 1.0), -0.0, float('inf'), 1e-310,
            'ascii', 'ünï€😀', '\udc80 lone surrogate', b'\x00\xff',
            ((((((((((1,),),),),),),),),),),                 # deeper than the codec goes
            {'a': (1, 2), (1, 'k'): None, 3.5: b'v'},
            [1, 'two', (3,), None], [[1]], ([1],), {'l': [1]},
            [shared, shared], (shared, shared),
            Str('subclass'), 'x' * 600, tuple(range(100)),
        ]
        for c in cases:
            q.put(c)
        for c in cases:
            got = q.get()
            self.assertEqual(got, c)
            self.assertEqual(repr(got), repr(c))     # same types all the way down
            self.assertIs(type(got), type(c))
        got = q.get() if q.put(float('nan')) is None else None
        self.assertTrue(math.isnan(got))
        q.put([shared, shared])
        got = q.get()
        self.assertIs(got[0], got[1])                # sharing kept (via pickle)
        q.put(-0.0)
        self.assertEqual(math.copysign(1, q.get()), -1)

    def test_fifo_single_producer(self):
        q = shmring.Queue()
        for i in range(5000):
            q.put(i)
        self.assertEqual([q.get() for _ in range(5000)], list(range(5000)))

    def test_signatures_like_multiprocessing(self):
        q = shmring.Queue()
        q.put(1, True, None)
        q.put(obj=2, block=True, timeout=1.0)
        q.put(3, block=False)
        q.put_nowait(4)
        self.assertEqual(q.get(True, None), 1)
        self.assertEqual(q.get(block=True, timeout=1), 2)
        self.assertEqual(q.get(False), 3)
        self.assertEqual(q.get_nowait(), 4)
        with self.assertRaises(TypeError):
            q.put()
        with self.assertRaises(TypeError):
            q.put(1, True, None, 4)
        with self.assertRaises(TypeError):
            q.get(bogus=1)
        with self.assertRaises(TypeError):
            q.put(1, block=True, obj=2)
        # context argument accepted and ignored, as multiprocessing.Queue(ctx=)
        import multiprocessing
        shmring.Queue(3, ctx=multiprocessing.get_context())

    def test_empty_exceptions_are_queue_module_ones(self):
        self.assertIs(shmring.Empty, queue.Empty)
        self.assertIs(shmring.Full, queue.Full)
        q = shmring.Queue()
        self.assertRaises(queue.Empty, q.get_nowait)
        self.assertRaises(queue.Empty, q.get, False)
        self.assertRaises(queue.Empty, q.get, True, 0)
        self.assertRaises(queue.Empty, q.get, True, -1)   # as multiprocessing

    def test_get_timeout(self):
        q = shmring.Queue()
        for timeout in (0.05, 0.2):
            t = time.monotonic()
            self.assertRaises(Empty, q.get, timeout=timeout)
            dt = time.monotonic() - t
            self.assertGreaterEqual(dt, timeout * 0.95)
            self.assertLess(dt, timeout + 0.5 * slow_timeout_factor())

    def test_get_timeout_woken_by_put(self):
        q = shmring.Queue()
        threading.Timer(0.1, q.put, ('late',)).start()
        t = time.monotonic()
        self.assertEqual(q.get(timeout=5), 'late')
        self.assertLess(time.monotonic() - t, 2)

    def test_maxsize(self):
        q = shmring.Queue(maxsize=3)
        self.assertEqual(q.maxsize, 3)
        for i in range(3):
            q.put(i)
        self.assertTrue(q.full())
        self.assertEqual(q.qsize(), 3)
        self.assertRaises(Full, q.put_nowait, 3)
        self.assertRaises(Full, q.put, 3, False)
        t = time.monotonic()
        self.assertRaises(Full, q.put, 3, timeout=0.1)
        self.assertGreaterEqual(time.monotonic() - t, 0.09)
        self.assertEqual(q.get(), 0)
        self.assertFalse(q.full())
        q.put(3)
        self.assertEqual([q.get() for _ in range(3)], [1, 2, 3])
        self.assertEqual(q.qsize(), 0)
        self.assertTrue(q.empty())

    def test_maxsize_put_woken_by_get(self):
        q = shmring.Queue(maxsize=1)
        q.put('a')
        threading.Timer(0.1, q.get).start()
        t = time.monotonic()
        q.put('b', timeout=5)
        self.assertLess(time.monotonic() - t, 2)
        self.assertEqual(q.get(timeout=1), 'b')

    def test_maxsize_zero_or_negative_is_unbounded(self):
        for m in (0, -1):
            q = shmring.Queue(m)
            self.assertEqual(q.maxsize, 0)
            for i in range(2000):
                q.put_nowait(i)
            self.assertFalse(q.full())
            self.assertEqual(q.qsize(), 2000)

    def test_unbounded_queue_never_blocks(self):
        # issue 16: it stopped at item 131,072 (Full, or blocked forever)
        q = shmring.Queue(capacity=4096)
        self.assertEqual(q.capacity, 4096)
        self.assertEqual(q.max_record, 1024)
        for i in range(3000):
            q.put_nowait((i, b'x' * 100))     # 4096 bytes hold about 30
        self.assertFalse(q.full())
        q.put(b'last', timeout=0.05)
        self.assertGreater(q._ring.info()['tail'], 10)
        for i in range(3000):
            self.assertEqual(q.get_nowait(), (i, b'x' * 100))
        self.assertEqual(q.get_nowait(), b'last')
        self.assertTrue(q.empty())
        self.assertRaises(Empty, q.get_nowait)

    def test_fill_300000_before_any_get(self):
        q = shmring.Queue()
        for i in range(300_000):
            q.put(i)
        self.assertEqual(q.qsize(), 300_000)
        got = q.get_many(max_items=1000)
        while len(got) < 300_000:
            got += q.get_many(max_items=100_000)
        self.assertEqual(got, list(range(300_000)))

    def test_qsize_empty_full_never_raise(self):
        q = shmring.Queue()
        self.assertEqual(q.qsize(), 0)
        q.put(1)
        q.put(2)
        self.assertEqual(q.qsize(), 2)
        self.assertFalse(q.empty())
        self.assertFalse(q.full())
        q.close()
        self.assertEqual(q.qsize(), 2)
        self.assertIsInstance(q.empty(), bool)
        self.assertIsInstance(q.full(), bool)

    def test_unpicklable_put_raises_and_queue_stays_usable(self):
        q = shmring.Queue()
        with self.assertRaises(TypeError):
            q.put(Unpicklable())
        with self.assertRaises((pickle.PicklingError, AttributeError)):
            q.put(lambda: 0)
        q.put('still fine')
        self.assertEqual(q.get(timeout=1), 'still fine')
        self.assertTrue(q.empty())

    def test_unpickling_error_raises_from_get(self):
        q = shmring.Queue()
        q.put(ExplodesOnLoad(1))
        q.put('after')
        with self.assertRaisesRegex(RuntimeError, 'boom'):
            q.get()
        self.assertEqual(q.get(), 'after')

    def test_bytes_fast_path(self):
        q = shmring.Queue()
        for b in (b'', b'\x80\x05', b'x' * 1000):
            q.put(b)
            got = q.get()
            self.assertEqual(got, b)
            self.assertIs(type(got), bytes)

    def test_put_bytes_get_bytes(self):
        q = shmring.Queue()
        q.put_bytes(b'raw')
        q.put_bytes(bytearray(b'ba'))
        q.put_bytes(memoryview(b'mv'))
        q.put_bytes(b'')
        self.assertEqual([q.get_bytes() for _ in range(4)], [b'raw', b'ba', b'mv', b''])
        self.assertRaises(Empty, q.get_bytes, timeout=0.01)
        self.assertRaises(Empty, q.get_bytes, False)
        with self.assertRaisesRegex(ValueError, 'max_record'):
            q.put_bytes(b'x' * (q.max_record + 1))
        with self.assertRaises(TypeError):
            q.put_bytes('str is not bytes')
        # a raw record is not a pickle: get() says so
        q.put_bytes(b'hello')
        with self.assertRaisesRegex(ValueError, 'get_bytes'):
            q.get()
        # get_bytes of a put() record is its encoding (here: a pickle)
        q.put({1, 2})
        self.assertEqual(pickle.loads(q.get_bytes()), {1, 2})

    def test_put_many_get_many(self):
        q = shmring.Queue()
        items = [(i, 'x' * (i % 50)) for i in range(3000)]
        q.put_many(items)
        self.assertEqual(q.qsize(), 3000)
        got = []
        while len(got) < 3000:
            batch = q.get_many(timeout=1)
            self.assertGreaterEqual(len(batch), 1)
            got += batch
        self.assertEqual(got, items)
        self.assertRaises(Empty, q.get_many, timeout=0.01)
        self.assertRaises(Empty, q.get_many, False)
        q.put_many(range(10))
        self.assertEqual(q.get_many(max_items=3), [0, 1, 2])
        self.assertEqual(q.get_many(max_items=100), list(range(3, 10)))
        self.assertRaises(ValueError, q.get_many, max_items=0)
        q.put_many(iter([1, 2]))            # any iterable
        q.put_many([])
        self.assertEqual(q.get_many(), [1, 2])
        q.put_bytes(b'a')
        q.put_bytes(b'b')
        self.assertEqual(q.get_bytes_many(), [b'a', b'b'])

    def test_get_many_mixed_sizes_and_large(self):
        q = shmring.Queue(capacity=1 << 20)
        big = bytes(range(256)) * 2000        # 512 KB: bigger than get_many's buffer
        huge = b'h' * (q.max_record + 10)     # side segment
        items = [1, big, 2, huge, 3, OutOfBand(b'o' * 10000), 4]
        q.put_many(items)
        got = []
        while len(got) < len(items):
            got += q.get_many(timeout=1)
        self.assertEqual(got[:5], items[:5])
        self.assertEqual(bytes(got[5].data), b'o' * 10000)
        self.assertEqual(got[6], 4)
        self.assertEqual(shmring.leftover_segments(), [])

    def test_get_many_keeps_records_after_a_bad_one(self):
        q = shmring.Queue()
        q.put_many([1, 2, ExplodesOnLoad(3), 4, 5])
        self.assertEqual(q.get_many(), [1, 2])      # stops before the bad one
        self.assertEqual(q.qsize(), 3)
        with self.assertRaisesRegex(RuntimeError, 'boom'):
            q.get_many()
        self.assertEqual(q.get(), 4)
        self.assertEqual(q.get_many(), [5])
        q.put_many([ExplodesOnLoad(1), 'x', 'y'])
        with self.assertRaisesRegex(RuntimeError, 'boom'):
            q.get_many()
        self.assertEqual(q.get_many(), ['x', 'y'])

    def test_put_many_full(self):
        q = shmring.Queue(maxsize=5)
        with self.assertRaises(Full) as cm:
            q.put_many(range(8), timeout=0.05)
        self.assertEqual(cm.exception.count, 5)
        self.assertEqual(q.get_many(), [0, 1, 2, 3, 4])
        q.put_many(range(5), block=False)
        self.assertRaises(Full, q.put_many, [9], block=False)

    def test_put_many_unpicklable_puts_nothing(self):
        q = shmring.Queue()
        with self.assertRaises(TypeError):
            q.put_many([1, b'x' * (q.max_record + 1), Unpicklable()])
        self.assertTrue(q.empty())
        self.assertEqual(shmring.leftover_segments(), [])

    def test_large_objects(self):
        q = shmring.Queue(capacity=1 << 16)          # max_record 16 KiB
        objs = [b'b' * 100000, 's' * 100000, list(range(20000)),
                bytearray(b'z' * 70000), OutOfBand(b'q' * 50000)]
        for o in objs:
            q.put(o)
        self.assertEqual(len(shmring.leftover_segments()), len(objs))
        self.assertEqual(q.get(), objs[0])
        self.assertEqual(q.get(), objs[1])
        self.assertEqual(q.get(), objs[2])
        self.assertEqual(q.get(), objs[3])
        oob = q.get()
        self.assertEqual(bytes(oob.data), b'q' * 50000)
        self.assertEqual(shmring.leftover_segments(), [])

    def test_large_object_put_timeout_leaves_no_segment(self):
        q = shmring.Queue(1, capacity=1 << 16)
        q.put(1)
        self.assertRaises(Full, q.put, b'x' * 100000, timeout=0.05)
        self.assertRaises(Full, q.put_nowait, b'x' * 100000)
        self.assertEqual(shmring.leftover_segments(), [])

    def test_out_of_band_buffers(self):
        q = shmring.Queue()
        o = OutOfBand(bytes(range(256)) * 100)
        q.put(o)
        got = q.get()
        self.assertEqual(bytes(got.data), bytes(o.data))
        # the buffer handed to the reducer is writable (numpy arrays need it)
        self.assertFalse(memoryview(got.buf).readonly)
        # small buffers stay in-band
        q.put(OutOfBand(b'small'))
        self.assertEqual(bytes(q.get().data), b'small')

    @unittest.skipUnless(importlib.util.find_spec('numpy'), 'numpy is not installed')
    def test_numpy_arrays(self):
        import numpy as np
        q = shmring.Queue(capacity=1 << 20)
        arrays = [np.arange(100000, dtype=np.float64),             # out of band
                  np.arange(12, dtype=np.int32).reshape(3, 4),      # small: in-band
                  np.asfortranarray(np.ones((300, 200))),           # F-contiguous
                  np.arange(100000)[::2],                           # not contiguous
                  np.zeros((1000, 1000), dtype=np.uint8)]           # > max_record
        for a in arrays:
            q.put(a)
        for a in arrays:
            got = q.get(timeout=1)
            self.assertEqual(got.dtype, a.dtype)
            self.assertEqual(got.shape, a.shape)
            self.assertTrue(np.array_equal(got, a))
            self.assertTrue(got.flags.writeable)
            got[...] = 0                              # really writable
        self.assertEqual(shmring.leftover_segments(), [])

    def test_picklebuffer_readonly_roundtrip(self):
        q = shmring.Queue()
        q.put(pickle.PickleBuffer(b'r' * 10000))
        got = q.get()
        self.assertTrue(memoryview(got).readonly)
        self.assertEqual(bytes(got), b'r' * 10000)

    def test_closed_handle(self):
        q = shmring.Queue()
        q.put(1)
        q.close()
        q.close()                       # idempotent
        for call in (lambda: q.put(2), lambda: q.get(), lambda: q.put_nowait(2),
                     lambda: q.get_nowait(), lambda: q.put_many([1]),
                     lambda: q.get_many(), lambda: q.put_bytes(b'x'),
                     lambda: q.get_bytes()):
            with self.assertRaisesRegex(ValueError, 'is closed'):
                call()
        q.join_thread()
        q.cancel_join_thread()
        self.assertEqual(q.qsize(), 1)
        # another handle on the same ring is not closed
        q2 = copy.copy(q)
        self.assertEqual(q2.get_nowait(), 1)

    def test_close_wakes_a_blocked_get(self):
        q = shmring.Queue()
        errors = []

        def getter():
            try:
                q.get()
            except ValueError as e:
                errors.append(e)
        th = threading.Thread(target=getter)
        th.start()
        time.sleep(0.1)
        q.close()
        th.join(2)
        self.assertFalse(th.is_alive())
        self.assertIn('is closed', str(errors[0]))

    def test_join_thread_and_cancel_are_noops(self):
        q = shmring.Queue()
        self.assertIsNone(q.cancel_join_thread())
        q.close()
        self.assertIsNone(q.join_thread())

    def test_simple_queue(self):
        q = shmring.SimpleQueue()
        self.assertTrue(q.empty())
        q.put([1])
        self.assertFalse(q.empty())
        self.assertEqual(q.get(), [1])
        q.close()
        self.assertRaisesRegex(ValueError, 'is closed', q.put, 1)
        with self.assertRaises(TypeError):
            shmring.SimpleQueue(5)      # no maxsize, as multiprocessing

    def test_joinable_queue(self):
        q = shmring.JoinableQueue()
        self.assertTrue(q.join(timeout=0))
        q.put('a')
        q.put('b')
        self.assertEqual(q.unfinished_tasks(), 2)
        self.assertFalse(q.join(timeout=0.05))
        q.get()
        q.task_done()
        q.get()
        threading.Timer(0.1, q.task_done).start()
        t = time.monotonic()
        self.assertTrue(q.join())
        self.assertLess(time.monotonic() - t, 2)
        with self.assertRaisesRegex(ValueError, 'too many times'):
            q.task_done()
        self.assertFalse(hasattr(shmring.Queue(), 'task_done'))
        q.close()
        # after close() both still work, as multiprocessing's do
        self.assertRaisesRegex(ValueError, 'too many times', q.task_done)
        self.assertTrue(q.join())
        self.assertRaisesRegex(ValueError, 'is closed', q.put, 'c')

    def test_joinable_counts_large_and_batches_once_each(self):
        q = shmring.JoinableQueue(capacity=1 << 16)
        q.put(b'x' * 100000)
        q.put_many([1, 2, 3])
        self.assertEqual(q.unfinished_tasks(), 4)
        for _ in range(4):
            q.get()
            q.task_done()
        self.assertTrue(q.join(timeout=1))

    def test_shutdown(self):
        q = shmring.Queue()
        q.put(1)
        q.put(2)
        q.shutdown()
        self.assertRaises(ShutDown, q.put, 3)
        self.assertEqual(q.get(), 1)
        self.assertEqual(q.get_many(), [2])
        self.assertRaises(ShutDown, q.get)
        self.assertRaises(ShutDown, q.get_nowait)
        self.assertRaises(ShutDown, q.get, timeout=0.01)
        self.assertEqual(q.qsize(), 0)

    def test_shutdown_immediate_and_wakes_getter(self):
        q = shmring.Queue(capacity=1 << 16)
        q.put(b'x' * 100000)            # a side segment: must be removed
        q.put(2)
        q.shutdown(immediate=True)
        self.assertRaises(ShutDown, q.get_nowait)
        self.assertEqual(shmring.leftover_segments(), [])
        q2 = shmring.Queue()
        out = []

        def getter():
            try:
                q2.get()
            except ShutDown:
                out.append('shutdown')
        th = threading.Thread(target=getter)
        th.start()
        time.sleep(0.05)
        q2.shutdown()
        th.join(2)
        self.assertEqual(out, ['shutdown'])

    def test_threads_many_producers_consumers(self):
        q = shmring.Queue(maxsize=50)
        N, P, C = 2000, 4, 3
        got = [[] for _ in range(C)]

        def prod(k):
            for i in range(N):
                q.put((k, i))

        def cons(k):
            while True:
                item = q.get(timeout=10)
                if item is None:
                    return
                got[k].append(item)
        ts = [threading.Thread(target=prod, args=(k,)) for k in range(P)]
        cs = [threading.Thread(target=cons, args=(k,)) for k in range(C)]
        for t in ts + cs:
            t.start()
        for t in ts:
            t.join()
        for _ in cs:
            q.put(None)
        for t in cs:
            t.join()
        allgot = sum(got, [])
        self.assertEqual(len(allgot), N * P)
        self.assertEqual(set(allgot), {(k, i) for k in range(P) for i in range(N)})

    def test_keyboard_interrupt_in_process(self):
        if threading.current_thread() is not threading.main_thread():
            self.skipTest('needs the main thread')
        q = shmring.Queue()
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        t = time.monotonic()
        with self.assertRaises(KeyboardInterrupt):
            q.get()
        self.assertLess(time.monotonic() - t, 0.2 + 0.5 * slow_timeout_factor())
        # a full queue's put and a join are interruptible too
        q = shmring.JoinableQueue(1)
        q.put(1)
        for call in (lambda: q.put(2), q.join):
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
            with self.assertRaises(KeyboardInterrupt):
                call()


class PickleTest(ShmLeakMixin, unittest.TestCase):

    def test_pickle_anonymous_in_process(self):
        # Outside multiprocessing the fd goes through multiprocessing's
        # resource sharer; loading it in this same process works too.
        q = shmring.Queue(4)
        q2 = pickle.loads(pickle.dumps(q))
        self.assertIs(type(q2), shmring.Queue)
        self.assertIs(q2._ring, q._ring)        # one handle per ring per process
        q2.put('via copy')
        self.assertEqual(q.get(timeout=1), 'via copy')
        self.assertEqual(q2.maxsize, 4)
        j = pickle.loads(pickle.dumps(shmring.JoinableQueue()))
        self.assertIs(type(j), shmring.JoinableQueue)

    def test_copy(self):
        q = shmring.Queue()
        for q2 in (copy.copy(q), copy.deepcopy(q)):
            q2.put(1)
            self.assertEqual(q.get(timeout=1), 1)

    def test_repr(self):
        q = shmring.Queue(3)
        self.assertIn('maxsize=3', repr(q))
        self.assertIn('fd=', repr(q))
        q.close()
        self.assertIn('closed', repr(q))

    def test_no_fd_leak(self):
        def rounds(n):
            for _ in range(n):
                q = shmring.Queue(5)
                q.put(1)
                q2 = pickle.loads(pickle.dumps(q))
                q2.get()
                del q, q2
        # first fill the bounded caches of the last queues pickled and
        # loaded (8 each, by design), so that this passes run alone too
        rounds(10)
        gc.collect()
        before = fd_count()
        rounds(50)
        gc.collect()
        self.assertLessEqual(fd_count(), before + 2)   # the resource sharer's socket


class NamedTest(ShmLeakMixin, unittest.TestCase):

    def test_open_a_ring_made_by_a_c_program(self):
        # Queue.open() of a ring made by shmring_create (a C program, the
        # shmring command, shmring-nats' far side): it has no control file,
        # and open() used to say FileNotFoundError for it.
        import ctypes
        lib = os.path.join(os.path.dirname(__file__), '..', '..', 'build', 'release',
                           'libshmring.so')
        if not os.path.exists(lib):
            self.skipTest('no build/release/libshmring.so')
        c = ctypes.CDLL(lib)
        name = unique_name()
        cfg = (ctypes.c_char * 256)()          # struct shmring_config, zeroed
        ctypes.c_size_t.from_buffer(cfg, 0).value = 65536          # capacity
        ring = ctypes.c_void_p()
        self.assertEqual(c.shmring_create(ctypes.byref(ring), name.encode(), cfg), 0)
        try:
            q = shmring.Queue.open(name)
            q2 = shmring.Queue.open(name)      # and again: it has a control page now
            q.put({'from': 'python'})
            self.assertEqual(q2.get(timeout=10), {'from': 'python'})
            self.assertEqual(q.maxsize, 0)
            self.assertTrue(q.side_segments)   # no control page before: the default
            with self.assertRaises(ValueError):
                shmring.JoinableQueue.open(name)
            q.unlink()
        finally:
            c.shmring_detach(ring)
            c.shmring_unlink_any(name.encode())
            c.shmring_unlink_any((name + '.pyq').encode())
        with self.assertRaises(FileNotFoundError):
            shmring.Queue.open(unique_name())

    def test_named_create_open_unlink(self):
        name = unique_name()
        q = shmring.Queue(name=name, maxsize=7)
        try:
            self.assertEqual(q.name, name)
            self.assertTrue(os.path.exists('/dev/shm/' + name))
            self.assertTrue(os.path.exists('/dev/shm/' + name + '.pyq'))
            with self.assertRaises(FileExistsError):
                shmring.Queue(name=name)
            q2 = shmring.Queue.open(name)
            self.assertEqual(q2.maxsize, 7)
            q2.put('hi')
            self.assertEqual(q.get(timeout=1), 'hi')
            # travels by name
            fn, args = q.__reduce__()
            self.assertIn(name, args)
            q3 = pickle.loads(pickle.dumps(q))
            self.assertEqual(q3.name, name)
            # issue 16: JoinableQueue.open() of a plain queue counted its
            # puts as tasks; now it says it is not joinable
            with self.assertRaises(ValueError):
                shmring.JoinableQueue.open(name)
        finally:
            q.unlink()
        self.assertFalse(os.path.exists('/dev/shm/' + name))
        self.assertFalse(os.path.exists('/dev/shm/' + name + '.pyq'))
        q.put('still works after unlink')
        self.assertEqual(q.get(), 'still works after unlink')
        with self.assertRaises(FileNotFoundError):
            shmring.Queue.open(name)
        with self.assertRaises(FileNotFoundError):
            shmring.unlink(name)

    def test_named_without_maxsize_and_bad_names(self):
        name = '/' + unique_name()
        q = shmring.SimpleQueue(name=name)
        try:
            self.assertTrue(os.path.exists('/dev/shm/' + name[1:] + '.pyq'))
            self.assertEqual(shmring.Queue.open(name).maxsize, 0)
        finally:
            shmring.unlink(name)
        for bad in ('', 'a/b', '..', 'x' * 300, 'spa ce'):
            with self.assertRaises(ValueError):
                shmring.Queue(name=bad)
        with self.assertRaises(TypeError):
            shmring.Queue(name=5)
        with self.assertRaises(ValueError):
            shmring.Queue().unlink()

    def test_named_mode(self):
        name = unique_name()
        q = shmring.Queue(name=name, maxsize=1, mode=0o640)
        try:
            self.assertEqual(os.stat('/dev/shm/' + name).st_mode & 0o777, 0o640)
            self.assertEqual(os.stat('/dev/shm/' + name + '.pyq').st_mode & 0o777, 0o640)
        finally:
            q.unlink()


if __name__ == '__main__':
    unittest.main()
