"""shmring queues between processes: passing the queue under fork, spawn and
forkserver, Pool / ProcessPoolExecutor arguments, named queues from a
separate interpreter, a child that exits before its data is read, dead
producers, Ctrl-C, and many producers and consumers."""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
import unittest
from concurrent.futures import ProcessPoolExecutor

import support  # noqa: F401  (first: sets up the environment)
import shmring
from shmring import Empty, ShutDown

from support import ShmLeakMixin, slow_timeout_factor, unique_name

METHODS = [m for m in ('fork', 'spawn', 'forkserver')
           if m in multiprocessing.get_all_start_methods()]


# --- functions run in children (module level: spawn imports them) ---------

def child_all_kinds(plain, bounded, joinable, simple, named, out):
    """Echo one item from each queue to `out`, tagged."""
    for tag, q in (('plain', plain), ('bounded', bounded), ('joinable', joinable),
                   ('simple', simple), ('named', named)):
        item = q.get(timeout=30)
        out.put((tag, item, type(q).__name__, q.maxsize))
        if tag == 'joinable':
            q.task_done()


def square_into(q, i):
    q.put(i * i)
    return i


def put_then_exit(q, n, size, big):
    for i in range(n):
        q.put((i, b'x' * size))
    q.put(big)


def put_then_die(q, n):
    for i in range(n):
        q.put(i)
    os.kill(os.getpid(), signal.SIGKILL)


def fill_then_block(q):
    while True:
        q.put(b'y' * 1000)


def producer(q, k, n, batch):
    if batch:
        for start in range(0, n, 100):
            q.put_many([(k, i) for i in range(start, min(n, start + 100))])
    else:
        for i in range(n):
            q.put((k, i))


def consumer(q, results, batch):
    got = []
    while True:
        items = q.get_many(timeout=60) if batch else [q.get(timeout=60)]
        for i, item in enumerate(items):
            if item is None:
                # the parent puts one None per consumer once every producer
                # is done: a batch may hold several; leave the others
                for extra in items[i + 1:]:
                    assert extra is None, extra
                    q.put(None)
                results.put(got)
                return
            got.append(item)


def wait_for_shutdown(q, out):
    try:
        q.get(timeout=30)
        out.put('item')
    except ShutDown:
        out.put('shutdown')


def return_ring_pid(q, i):
    q.put(i)
    return os.getpid()


class StartMethodTest(ShmLeakMixin, unittest.TestCase):
    """The queue object as a Process argument, a Pool argument and a
    ProcessPoolExecutor argument, under each start method."""

    def _queues(self):
        name = unique_name('sm')
        qs = (shmring.Queue(), shmring.Queue(3), shmring.JoinableQueue(),
              shmring.SimpleQueue(), shmring.Queue(name=name))
        return name, qs

    def test_process_argument(self):
        for method in METHODS:
            with self.subTest(method=method):
                ctx = multiprocessing.get_context(method)
                name, qs = self._queues()
                try:
                    out = shmring.Queue()
                    for i, q in enumerate(qs):
                        q.put('item%d' % i)
                    p = ctx.Process(target=child_all_kinds, args=qs + (out,))
                    p.start()
                    got = sorted(out.get(timeout=60) for _ in range(5))
                    p.join(30)
                    self.assertEqual(p.exitcode, 0)
                    self.assertEqual(got, sorted([
                        ('bounded', 'item1', 'Queue', 3),
                        ('joinable', 'item2', 'JoinableQueue', 0),
                        ('named', 'item4', 'Queue', 0),
                        ('plain', 'item0', 'Queue', 0),
                        ('simple', 'item3', 'SimpleQueue', 0)]))
                    self.assertTrue(qs[2].join(timeout=5))
                finally:
                    shmring.unlink(name)

    def test_pool_and_executor_arguments(self):
        for method in METHODS:
            with self.subTest(method=method):
                ctx = multiprocessing.get_context(method)
                q, bounded = shmring.Queue(), shmring.Queue(100)
                with ctx.Pool(2) as pool:
                    self.assertEqual(pool.starmap(square_into, [(q, i) for i in range(20)]),
                                     list(range(20)))
                    self.assertEqual(sorted(q.get(timeout=10) for _ in range(20)),
                                     [i * i for i in range(20)])
                    r = pool.apply_async(square_into, (bounded, 7))
                    self.assertEqual(r.get(60), 7)
                    self.assertEqual(bounded.get(timeout=10), 49)
                    self.assertEqual(bounded.qsize(), 0)
                    # many tasks, one attachment per worker process
                    pids = pool.starmap(return_ring_pid, [(q, i) for i in range(200)])
                    self.assertLessEqual(len(set(pids)), 2)
                    self.assertEqual(sorted(q.get(timeout=10) for _ in range(200)),
                                     list(range(200)))
                with ProcessPoolExecutor(2, mp_context=ctx) as ex:
                    fs = [ex.submit(square_into, q, i) for i in range(10)]
                    self.assertEqual([f.result(60) for f in fs], list(range(10)))
                    self.assertEqual(sorted(q.get(timeout=10) for _ in range(10)),
                                     [i * i for i in range(10)])
                self.assertTrue(q.empty())

    def test_multiprocessing_queue_fails_where_shmring_works(self):
        """The README's claim: a multiprocessing.Queue cannot be a Pool
        argument; a shmring.Queue can."""
        ctx = multiprocessing.get_context(METHODS[0])
        with ctx.Pool(1) as pool:
            with self.assertRaisesRegex(RuntimeError, 'through inheritance'):
                pool.apply(square_into, (ctx.Queue(), 3))
            q = shmring.Queue()
            self.assertEqual(pool.apply(square_into, (q, 3)), 3)
            self.assertEqual(q.get(timeout=10), 9)


class LifecycleTest(ShmLeakMixin, unittest.TestCase):

    def test_child_exits_before_parent_reads(self):
        """The multiprocessing.Queue deadlock: joining a child that put data
        before reading it.  Here put() writes into shared memory at once."""
        for method in ('fork', 'spawn'):
            with self.subTest(method=method):
                ctx = multiprocessing.get_context(method)
                q = shmring.Queue(capacity=1 << 20)
                big = b'B' * (q.max_record * 2)        # via a side segment
                p = ctx.Process(target=put_then_exit, args=(q, 500, 1000, big))
                p.start()
                p.join(60)
                self.assertEqual(p.exitcode, 0)
                got = [q.get(timeout=5) for _ in range(500)]
                self.assertEqual([g[0] for g in got], list(range(500)))
                self.assertEqual(q.get(timeout=5), big)

    def test_dead_producer(self):
        """A producer killed after putting: its items are delivered, a get
        with a timeout returns Empty on time (not an error, not a hang), a
        blocked get stays interruptible, and the queue keeps working for
        new producers."""
        ctx = multiprocessing.get_context('fork')
        q = shmring.Queue()
        p = ctx.Process(target=put_then_die, args=(q, 3))
        p.start()
        p.join(30)
        self.assertEqual(p.exitcode, -signal.SIGKILL)
        self.assertEqual([q.get(timeout=5) for _ in range(3)], [0, 1, 2])
        t = time.monotonic()
        self.assertRaises(Empty, q.get, timeout=0.3)
        self.assertLess(time.monotonic() - t, 0.3 + 0.5 * slow_timeout_factor())
        self.assertRaises(Empty, q.get_nowait)
        self.assertTrue(q.empty())
        p = ctx.Process(target=put_then_exit, args=(q, 2, 1, 'end'))
        p.start()
        self.assertEqual(q.get(timeout=30), (0, b'x'))
        self.assertEqual(q.get(timeout=30), (1, b'x'))
        self.assertEqual(q.get(timeout=30), 'end')
        p.join(30)

    def test_put_after_every_consumer_exited(self):
        """The library's broken pipe (consumers came and all went) is not an
        error for a queue: the next consumer may not have started yet."""
        name = unique_name('bp')
        q = shmring.Queue(name=name)
        try:
            q.put('first')
            r = run_script('''
                q = shmring.Queue.open(sys.argv[1])
                assert q.get(timeout=10) == 'first'
                del q                     # detaches: the only consumer is gone
            ''', name)
            self.assertEqual(r.returncode, 0, r.stderr)
            info = q.info()
            self.assertEqual((info['consumers'], info['producers']), (0, 1))
            q.put('second')               # broken pipe underneath: still fine
            q.put_many(['third'])
            self.assertEqual(q.info()['consumers'], 1)
            self.assertEqual(q.get_many(timeout=5), ['second', 'third'])
        finally:
            q.unlink()

    def test_producer_killed_while_blocked_in_put(self):
        ctx = multiprocessing.get_context('fork')
        q = shmring.Queue(500, capacity=1 << 16)
        p = ctx.Process(target=fill_then_block, args=(q,))
        p.start()
        deadline = time.monotonic() + 30
        while not q.full() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)               # it is asleep in put() now
        p.kill()
        p.join(30)
        n = 0
        while True:
            try:
                q.get(timeout=0.2)
                n += 1
            except Empty:
                break
        self.assertGreater(n, 10)
        q.put('after')
        self.assertEqual(q.get(timeout=1), 'after')

    def test_shutdown_reaches_other_processes(self):
        ctx = multiprocessing.get_context('fork')
        q, out = shmring.Queue(), shmring.Queue()
        p = ctx.Process(target=wait_for_shutdown, args=(q, out))
        p.start()
        time.sleep(0.2)
        q.shutdown()
        self.assertEqual(out.get(timeout=10), 'shutdown')
        p.join(10)
        self.assertEqual(p.exitcode, 0)

    def test_many_producers_and_consumers(self):
        ctx = multiprocessing.get_context('fork')
        P, C, N = 4, 3, 5000
        q, results = shmring.Queue(maxsize=200), shmring.Queue()
        prods = [ctx.Process(target=producer, args=(q, k, N, k % 2 == 1))
                 for k in range(P)]
        cons = [ctx.Process(target=consumer, args=(q, results, k == 0))
                for k in range(C)]
        for p in cons + prods:
            p.start()
        for p in prods:
            p.join(120)
            self.assertEqual(p.exitcode, 0)
        for _ in cons:
            q.put(None)
        got = []
        for _ in cons:
            got += results.get(timeout=120)
        for p in cons:
            p.join(30)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(len(got), P * N)                    # no loss ...
        self.assertEqual(set(got), {(k, i) for k in range(P) for i in range(N)})  # ... no dup
        self.assertEqual(q.qsize(), 0)
        # per producer, each consumer saw its items in order
        self.assertTrue(q.empty())


SCRIPT_PRELUDE = 'import sys, time, signal, shmring\n'


def run_script(code, *args, **kw):
    return subprocess.run([sys.executable, '-c', SCRIPT_PRELUDE + textwrap.dedent(code)]
                          + [str(a) for a in args], capture_output=True, text=True,
                          timeout=kw.pop('timeout', 60), env=dict(os.environ), **kw)


class SeparateInterpreterTest(ShmLeakMixin, unittest.TestCase):

    def test_named_queue_between_unrelated_programs(self):
        name = unique_name('ipc')
        q = shmring.Queue(name=name, maxsize=2)
        try:
            q.put('ping')
            r = run_script('''
                q = shmring.Queue.open(sys.argv[1])
                item = q.get(timeout=10)
                q.put(('pong', item, q.maxsize))
                # and a queue of its own, left for the parent after we exit
                q2 = shmring.JoinableQueue(name=sys.argv[1] + '-2')
                q2.put_many(range(100))
            ''', name)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(q.get(timeout=10), ('pong', 'ping', 2))
            q2 = shmring.JoinableQueue.open(name + '-2')
            try:
                self.assertEqual(q2.get_many(), list(range(100)))
                self.assertEqual(q2.unfinished_tasks(), 100)
            finally:
                q2.unlink()
        finally:
            q.unlink()

    def test_keyboard_interrupt_in_a_blocked_child(self):
        """SIGINT to a process blocked in get() (and in a full put(), and
        in join()) raises KeyboardInterrupt there promptly."""
        for call in ('q.get()', 'q.put(2)', 'j.join()', 'q.get_many()'):
            with self.subTest(call=call):
                p = subprocess.Popen(
                    [sys.executable, '-c', SCRIPT_PRELUDE + textwrap.dedent('''
                    q = shmring.Queue(1) if sys.argv[1] == 'q.put(2)' else shmring.Queue()
                    if sys.argv[1] == 'q.put(2)':
                        q.put(1)
                    j = shmring.JoinableQueue()
                    j.put(1)
                    print('ready', flush=True)
                    try:
                        eval(sys.argv[1])
                    except KeyboardInterrupt:
                        print('KeyboardInterrupt %.3f' % time.monotonic(), flush=True)
                        sys.exit(3)
                    '''), call], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                try:
                    self.assertEqual(p.stdout.readline().strip(), 'ready')
                    time.sleep(0.3)               # asleep in the futex by now
                    sent = time.monotonic()
                    p.send_signal(signal.SIGINT)
                    line = p.stdout.readline().split()
                    self.assertEqual(p.wait(10), 3, p.stderr.read())
                    self.assertEqual(line[0], 'KeyboardInterrupt')
                    self.assertLess(float(line[1]) - sent, 0.25 * slow_timeout_factor())
                finally:
                    p.kill()
                    p.wait()
                    p.stdout.close()
                    p.stderr.close()


# --- light queues: every ring made with SHMRING_LIGHT_PUBLISH ---------------

def light_child(q, n, out):
    """Take n items, sleeping on the queue between them (the membarrier
    path of a light ring), then report what this process sees."""
    got = [q.get(timeout=30) for _ in range(n)]
    out.put((got, q.light, q.info()['light']))


class LightQueueTest(ShmLeakMixin, unittest.TestCase):
    def test_light_queue_between_processes_and_its_overflow_rings(self):
        # Queue(light=True): the control page says so, so a process that
        # opens or inherits the queue sees it, and the rings a put adds when
        # the first is full are light too (ctl.c gen_grow_read); a plain
        # queue's are not.
        for light in (True, False):
            name = unique_name()
            q = shmring.Queue(name=name, capacity=1 << 16, light=light)
            out = shmring.Queue()
            try:
                self.assertIs(q.light, light)
                self.assertIs(q.info()['light'], light)
                ctx = multiprocessing.get_context('fork')
                p = ctx.Process(target=light_child, args=(q, 50, out))
                p.start()
                for i in range(50):          # the child sleeps for most of them
                    time.sleep(0.002)
                    q.put(i)
                got, child_light, child_info_light = out.get(timeout=60)
                p.join(30)
                self.assertEqual(p.exitcode, 0)
                self.assertEqual(got, list(range(50)))
                self.assertIs(child_light, light)
                self.assertIs(child_info_light, light)
                other = shmring.Queue.open(name)
                self.assertIs(other.light, light)
                other.close()
                # grow: puts that find the ring full add another ring
                n = 0
                while q.info()['tail'] == 0:
                    q.put(b'z' * 1000)
                    n += 1
                gen1 = shmring._shmring.open(q._ring.stem + '1', q._ring.ctl_fileno())
                self.assertIs(gen1.info()['light'], light, 'the overflow ring')
                del gen1
                for _ in range(n):
                    self.assertEqual(q.get(timeout=10), b'z' * 1000)
            finally:
                q.unlink()
                q.close()
                out.close()

    def test_exist_ok_keeps_the_queues_own_setting(self):
        name = unique_name()
        q = shmring.Queue(name=name, light=True)
        try:
            again = shmring.Queue(name=name, exist_ok=True)     # light=False asked
            self.assertTrue(again.light)
            self.assertTrue(again.info()['light'])
            again.close()
            # in another interpreter (no cached handle): the control page's
            out = run_script('''
                q = shmring.Queue(name=sys.argv[1], exist_ok=True)
                print(q.light, q.info()['light'])
            ''', name)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout.split(), ['True', 'True'])
        finally:
            q.unlink()
            q.close()
        s = shmring.SimpleQueue(light=True)
        self.assertTrue(s.light)
        s.put('x')
        self.assertEqual(s.get(timeout=5), 'x')
        s.close()


if __name__ == '__main__':
    unittest.main()
