"""Issue 16's limits: more than 64 processes on one queue (the attachment
table, max_attach), and a full /dev/shm (OSError, never SIGBUS)."""

import multiprocessing
import os
import signal
import subprocess
import sys
import unittest

import support  # noqa: F401  (first: sets up the environment)
import shmring

from support import ShmLeakMixin, unique_name


def put_square(q, i):
    q.put(i * i)
    return os.getpid()


def fork_putters(q, n, payload=b''):
    """n children, all alive at once, each putting (index, pid, payload)
    into q and then waiting until the parent has everything.  Returns the
    items and the children's exit statuses."""
    r, w = os.pipe()
    pids = []
    try:
        for i in range(n):
            pid = os.fork()
            if pid == 0:                     # the child
                code = 1
                try:
                    os.close(w)
                    q.put((i, os.getpid(), payload))
                    os.read(r, 1)            # until the parent closes w
                    code = 0
                except BaseException as e:   # noqa: BLE001 - a child reports and exits
                    try:
                        q.put(('error', i, repr(e)))
                    except BaseException:    # noqa: BLE001
                        pass
                finally:
                    os._exit(code)
            pids.append(pid)
        items = [q.get(timeout=120) for _ in range(n)]
    finally:
        os.close(w)
        os.close(r)
        statuses = [os.waitpid(pid, 0)[1] for pid in pids]
    return items, statuses


class ManyProcessesTest(ShmLeakMixin, unittest.TestCase):

    def test_default_table_is_large(self):
        self.assertGreaterEqual(shmring.DEFAULT_MAX_ATTACH, 256)
        self.assertEqual(shmring.Queue().info()['max_attach'], shmring.DEFAULT_MAX_ATTACH)

    def test_70_processes_each_put(self):
        # issue 16: 70 processes each putting, 6 got "attachment table full"
        q = shmring.Queue()
        items, statuses = fork_putters(q, 70)
        self.assertEqual([s for s in statuses if s], [], items)
        self.assertEqual(sorted(i[0] for i in items), list(range(70)))

    def test_pool_of_64_workers(self):
        # the 64-worker pattern: a Pool(64) worker per task putting
        q = shmring.Queue()
        with multiprocessing.get_context('fork').Pool(64) as pool:
            pids = pool.starmap(put_square, [(q, i) for i in range(640)])
        self.assertEqual(sorted(q.get(timeout=30) for _ in range(640)),
                         sorted(i * i for i in range(640)))
        self.assertGreater(len(set(pids)), 1)

    def test_max_attach_keyword_reaches_every_ring(self):
        # 280 processes at once on a queue made for 300: more than the
        # library's default table, on generation 0 and on an overflow ring
        # (the queue is grown first, so the children's puts go there)
        name = unique_name()
        q = shmring.Queue(name=name, capacity=1 << 16, max_attach=300)
        try:
            self.assertEqual(q.info()['max_attach'], 300)
            n = 0
            while q.info()['tail'] == 0:
                q.put(n)
                n += 1
            q.put('marker')
            self.assertEqual([q.get(timeout=10) for _ in range(n + 1)],
                             list(range(n)) + ['marker'])
            self.assertEqual((q.info()['head'], q.info()['tail']), (1, 1))
            items, statuses = fork_putters(q, 280, b'x' * 40)
            self.assertEqual([s for s in statuses if s], [],
                             [i for i in items if i[0] == 'error'][:3])
            self.assertEqual(sorted(i[0] for i in items), list(range(280)))
            self.assertEqual(q.info()['tail'], 1, 'the test meant one overflow ring')
        finally:
            q.unlink()

    def test_max_attach_bounds(self):
        self.assertRaises(ValueError, shmring.Queue, max_attach=0)
        self.assertRaises(ValueError, shmring.Queue, max_attach=shmring.MAX_ATTACH_LIMIT + 1)
        self.assertRaises(TypeError, shmring.Queue, max_attach=1.5)
        self.assertEqual(shmring.SimpleQueue(max_attach=2).info()['max_attach'], 2)


if __name__ == '__main__':
    unittest.main()
