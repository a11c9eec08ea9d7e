"""side_segments=False: an object bigger than max_record is refused at put
(ValueError, nothing put) instead of going through a side segment, which
exists on one host only (docs/python.md, docs/bridge.md: issue 17)."""
import multiprocessing
import os
import subprocess
import sys
import unittest

import support  # noqa: F401  (first: sets up the environment)
import shmring

from support import ShmLeakMixin, unique_name

MAX_RECORD = 4096
BIG = [b'x' * (MAX_RECORD + 1),                 # bytes: record = 1 + len
       'y' * (3 * MAX_RECORD),                   # str: a pickle
       list(range(5000)),                        # a pickle of many objects
       bytearray(b'z' * (2 * MAX_RECORD)),      # out-of-band buffer (protocol 5)
       ]


def child_put_big(q, out):
    """In another process: the handle's setting, and what put of a big
    object does there."""
    try:
        q.put(b'b' * (MAX_RECORD * 2))
        out.put(('put', q.side_segments))
    except ValueError as e:
        out.put(('ValueError', q.side_segments, str(e)))


class SideSegmentsOffTest(ShmLeakMixin, unittest.TestCase):

    def check_refuses(self, q):
        self.assertFalse(q.side_segments)
        for obj in BIG:
            with self.assertRaises(ValueError) as cm:
                q.put(obj)
            msg = str(cm.exception)
            self.assertIn("larger than the queue's max_record (%d bytes)" % MAX_RECORD, msg)
            self.assertIn('side segments are off', msg)
            self.assertTrue(q.empty(), 'nothing was put')
            with self.assertRaises(ValueError):
                q.put_nowait(obj)
        with self.assertRaises(ValueError):
            q.put_many([1, BIG[0], 2])           # all or nothing
        self.assertTrue(q.empty())
        self.assertEqual(shmring.leftover_segments(), [])
        # still usable, and objects that fit (up to max_record) pass intact
        fits = [b'a' * (MAX_RECORD - 1), 'small', list(range(10)),
                bytearray(b'q' * 100), None]
        for obj in fits:
            q.put(obj)
        for obj in fits:
            self.assertEqual(q.get(timeout=10), obj)
        self.assertTrue(q.empty())

    def test_queue(self):
        q = shmring.Queue(max_record=MAX_RECORD, side_segments=False)
        self.check_refuses(q)
        q.close()

    def test_simple_queue(self):
        q = shmring.SimpleQueue(max_record=MAX_RECORD, side_segments=False)
        self.check_refuses(q)

    def test_joinable_queue(self):
        q = shmring.JoinableQueue(max_record=MAX_RECORD, side_segments=False)
        self.check_refuses(q)
        self.assertEqual(q.unfinished_tasks(), 5)   # the 5 that fit; a refused put is no task
        for _ in range(5):
            q.task_done()
        self.assertTrue(q.join(timeout=5))

    def test_default_still_carries_big_objects(self):
        q = shmring.Queue(max_record=MAX_RECORD)
        self.assertTrue(q.side_segments)
        for obj in BIG:
            q.put(obj)
            self.assertEqual(q.get(timeout=10), obj)

    def test_named_open_in_another_process(self):
        name = unique_name()
        q = shmring.Queue(name=name, max_record=MAX_RECORD, side_segments=False)
        try:
            self.assertFalse(shmring.Queue.open(name).side_segments)
            self.assertFalse(shmring.Queue(name=name, exist_ok=True).side_segments)
            code = ('import shmring, sys\n'
                    'q = shmring.Queue.open(sys.argv[1])\n'
                    'print(q.side_segments)\n'
                    'try:\n'
                    '    q.put(b"b" * %d)\n'
                    'except ValueError as e:\n'
                    '    print("ValueError", e)\n'
                    'q.put("small")\n' % (MAX_RECORD * 2))
            out = subprocess.run([sys.executable, '-c', code, name], capture_output=True,
                                 text=True, timeout=120, env=os.environ)
            self.assertEqual(out.returncode, 0, out.stderr)
            lines = out.stdout.splitlines()
            self.assertEqual(lines[0], 'False')
            self.assertTrue(lines[1].startswith('ValueError'), lines)
            self.assertIn('side segments are off', lines[1])
            self.assertEqual(q.get(timeout=10), 'small')
            self.assertTrue(q.empty())
        finally:
            q.unlink()

    def test_pickled_handle_in_a_spawned_process(self):
        for method in ('spawn', 'fork'):
            ctx = multiprocessing.get_context(method)
            q = shmring.Queue(max_record=MAX_RECORD, side_segments=False)
            out = shmring.Queue()
            p = ctx.Process(target=child_put_big, args=(q, out))
            p.start()
            res = out.get(timeout=120)
            p.join(120)
            self.assertEqual(p.exitcode, 0)
            self.assertEqual(res[:2], ('ValueError', False), (method, res))
            self.assertIn('side segments are off', res[2])
            self.assertTrue(q.empty())
            # and the default travels too: the child's put goes through
            q2 = shmring.Queue(max_record=MAX_RECORD)
            p = ctx.Process(target=child_put_big, args=(q2, out))
            p.start()
            self.assertEqual(out.get(timeout=120), ('put', True))
            p.join(120)
            self.assertEqual(q2.get(timeout=10), b'b' * (MAX_RECORD * 2))


if __name__ == '__main__':
    unittest.main()
