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


# Run as root in a private mount namespace with an 8 MiB tmpfs on /dev/shm
# (as tests/test_reserve.c does): exit 77 if that is refused.
FULL_SHM_CHILD = r"""if 1:
    import ctypes, errno, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWNS, MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV = 0x20000, 0x4000, 1 << 18, 2, 4
    if libc.unshare(CLONE_NEWNS) != 0 or \
            libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0 or \
            libc.mount(b"shmring-test", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV,
                       b"size=8m,mode=1777") != 0:
        print("refused", errno.errorcode.get(ctypes.get_errno()))
        sys.exit(77)
    sys.path[:0] = %r
    import shmring

    MiB = 1 << 20
    def item(q, k):
        return bytes([q, k]) * (MiB // 2)

    # 10 named queues, 7 x 1 MiB each (side segments): 70 MiB into 8 MiB
    queues, made_enospc = [], 0
    for i in range(10):
        try:
            queues.append(shmring.Queue(name="full-%%d" %% i, capacity=256 << 10,
                                        max_attach=16))
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            made_enospc += 1
    put, enospc = {}, 0
    for qi, q in enumerate(queues):
        put[qi] = []
        for k in range(7):
            try:
                q.put(item(qi, k))
                put[qi].append(k)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                enospc += 1
    print("queues", len(queues), "refused", made_enospc, "puts", sum(map(len, put.values())),
          "enospc", enospc)
    assert enospc > 0, "the test meant /dev/shm to fill up"
    # every queue still works: what went in comes out, in order; after a
    # get has freed room, a put that failed succeeds
    for qi, q in enumerate(queues):
        got = []
        while True:
            try:
                got.append(q.get(timeout=0))
            except shmring.Empty:
                break
        assert got == [item(qi, k) for k in put[qi]], (qi, len(got))
        q.put(item(qi, 99))
        assert q.get(timeout=5) == item(qi, 99)
    # a queue whose ring must grow (records kept in the ring): the put that
    # needs a new ring gets ENOSPC, and the queue goes on
    hog = open("/dev/shm/hog", "wb")
    g = shmring.Queue(name="grow", capacity=1 << 20, max_record=600 << 10, max_attach=16)
    n, grow_enospc = 0, 0
    while True:
        try:
            g.put(bytes([n]) * (500 << 10))
            n += 1
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            grow_enospc += 1
            break
        if n > 40:
            break
    assert grow_enospc, n
    first = g.get(timeout=5)
    assert first == bytes([0]) * (500 << 10)
    # fill what is left with a plain file, then: making a queue is ENOSPC,
    # and leaves nothing behind
    try:
        while True:
            hog.write(b"h" * MiB)
            hog.flush()
    except OSError:
        pass
    before = sorted(os.listdir("/dev/shm"))
    for kw in ({}, {"exist_ok": True}):
        try:
            shmring.Queue(name="late", **kw)
            raise AssertionError("made a queue in a full /dev/shm")
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    assert sorted(os.listdir("/dev/shm")) == before, (before, os.listdir("/dev/shm"))
    print("grow puts", n, "then ENOSPC; usable")
"""


class FullShmTest(unittest.TestCase):

    @unittest.skipUnless(os.geteuid() == 0, 'needs root for a private tmpfs on /dev/shm')
    def test_full_dev_shm_is_enospc_never_sigbus(self):
        # issue 16: 10 named queues with 7 x 1 MiB each in a small /dev/shm
        # killed the process with a bus error
        r = subprocess.run([sys.executable, '-c', FULL_SHM_CHILD % (sys.path[:3],)],
                           capture_output=True, text=True, timeout=120)
        if r.returncode == 77:
            self.skipTest('no private mount namespace with a tmpfs: ' + r.stdout.strip())
        self.assertNotEqual(r.returncode, -signal.SIGBUS, 'died of SIGBUS: ' + r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('usable', r.stdout)


if __name__ == '__main__':
    unittest.main()
