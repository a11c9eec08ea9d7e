"""CPython's own queue tests (Lib/test/test_queue.py of the interpreter
running this), re-targeted at shmring: its Queue tests against
shmring.JoinableQueue (maxsize, blocking put/get, task_done/join, threads)
and its SimpleQueue tests against shmring.SimpleQueue.  Skipped, saying why,
where the interpreter ships without its test package (Debian's python3 needs
libpython3.X-testsuite)."""

import types
import unittest

import support  # noqa: F401  (first: sets up the environment)
import shmring

from support import ShmLeakMixin

try:
    from test import test_queue as cpython
except ImportError:                     # pragma: no cover - installation dependent
    cpython = None

_queue_module = types.SimpleNamespace(Empty=shmring.Empty, Full=shmring.Full)


class Queue(shmring.JoinableQueue):
    """Named Queue: CPython's basic_queue_test picks the expected order by
    class name."""


if cpython is not None:
    class ShmringQueueTest(ShmLeakMixin, cpython.BaseQueueTestMixin, unittest.TestCase):
        queue = _queue_module

        def setUp(self):
            self.type2test = Queue
            super().setUp()

        @unittest.skip('by design: a negative timeout polls, as in multiprocessing.Queue')
        def test_negative_timeout_raises_exception(self):
            pass

        @unittest.skip('by design: maxsize is fixed in shared memory at creation')
        def test_shrinking_queue(self):
            pass

    class ShmringSimpleQueueTest(ShmLeakMixin, cpython.BaseSimpleQueueTest, unittest.TestCase):
        queue = _queue_module

        def setUp(self):
            self.type2test = shmring.SimpleQueue
            super().setUp()

        @unittest.skip('by design: a negative timeout polls, as in multiprocessing.Queue')
        def test_negative_timeout_raises_exception(self):
            pass

        @unittest.skip('by design: items are pickled (a local class cannot be), so the '
                       'queue never holds a reference to the object put')
        def test_references(self):
            pass
else:
    class ShmringQueueTest(unittest.TestCase):
        @unittest.skip('this interpreter has no test.test_queue (CPython test package)')
        def test_cpython_queue_tests(self):
            pass


if __name__ == '__main__':
    unittest.main()
