"""asyncio and event loops: get_async/put_async never block the loop,
fileno() works with loop.add_reader, selectors and
multiprocessing.connection.wait, cancelling a get_async loses no item, and
many tasks in several processes under load."""

import asyncio
import multiprocessing
import multiprocessing.connection
import selectors
import threading
import time
import unittest

import support  # noqa: F401  (first: sets up the environment)
import shmring
from shmring import Empty, Full

from support import ShmLeakMixin, slow_timeout_factor


def produce(q, k, n):
    for i in range(n):
        q.put((k, i))
        if i % 500 == 0:
            time.sleep(0.001)


def async_consumer(q, out, n_tasks):
    async def worker(got):
        while True:
            item = await q.get_async()
            if item is None:
                return
            got.append(item)

    async def main():
        got = []
        await asyncio.gather(*[worker(got) for _ in range(n_tasks)])
        return got
    out.put(len(asyncio.run(main())))


class AsyncTest(ShmLeakMixin, unittest.TestCase):

    def test_get_async_waits_without_blocking_the_loop(self):
        q = shmring.Queue()

        async def main():
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.005)
                    ticks += 1
            t = asyncio.ensure_future(ticker())
            threading.Timer(0.3, q.put, args=('late',)).start()
            item = await q.get_async(timeout=10 * slow_timeout_factor())
            t.cancel()
            return item, ticks
        item, ticks = asyncio.run(main())
        self.assertEqual(item, 'late')
        self.assertGreater(ticks, 5, 'the loop was blocked while waiting')

    def test_get_async_timeout_raises_empty(self):
        q = shmring.Queue()
        t0 = time.monotonic()
        with self.assertRaises(Empty):
            asyncio.run(q.get_async(timeout=0.1))
        self.assertGreaterEqual(time.monotonic() - t0, 0.1)

    def test_cancelled_get_async_loses_no_item(self):
        # issue 16: run_in_executor(None, q.get) took the next item for a
        # task that had been cancelled
        q = shmring.Queue()

        async def main():
            for _ in range(50):
                t = asyncio.ensure_future(q.get_async())
                await asyncio.sleep(0)
                t.cancel()
                try:
                    await t
                except asyncio.CancelledError:
                    pass
            q.put('kept')
            await asyncio.sleep(0.01)
            return await q.get_async(timeout=5)
        self.assertEqual(asyncio.run(main()), 'kept')

    def test_a_loop_closed_while_get_async_waits_is_let_go(self):
        # A loop closed (not by asyncio.run) while a get_async waited on it
        # stayed alive for good, with the dup()ed event fd its reader
        # watched: 20 loops, 20 fds.
        import gc
        import os
        import weakref
        q = shmring.Queue()
        q.fileno()                                # the event fd exists now
        before = len(os.listdir('/proc/self/fd'))
        loops = []
        # (asyncio logs "Task was destroyed but it is pending!" for each)
        with self.assertLogs('asyncio', 'ERROR'):
            for _ in range(20):
                loop = asyncio.new_event_loop()
                task = loop.create_task(q.get_async())
                loop.run_until_complete(asyncio.sleep(0.01))   # it waits now
                self.assertFalse(task.done())
                loop.close()
                loops.append(weakref.ref(loop))
                del loop, task
            gc.collect()
        self.assertEqual(sum(r() is not None for r in loops), 0, 'closed loops kept alive')
        self.assertLessEqual(len(os.listdir('/proc/self/fd')), before, 'event fds leaked')
        q.put('after')                            # the queue still works
        self.assertEqual(asyncio.run(q.get_async(timeout=5)), 'after')
        q.close()

    def test_close_while_get_async_waits_raises_at_once(self):
        # It raised only at its next look, up to 1 s later.
        q = shmring.Queue()

        async def main():
            waiter = asyncio.ensure_future(q.get_async())
            await asyncio.sleep(0.05)
            t0 = time.monotonic()
            q.close()
            with self.assertRaises(ValueError):
                await asyncio.wait_for(waiter, 10)
            return time.monotonic() - t0
        took = asyncio.run(main())
        # (before: about 0.95 s, the next look; now a few ms)
        self.assertLess(took, 0.5, 'close() woke get_async after %.2f s' % took)

    def test_a_collection_inside_close_does_not_deadlock(self):
        # The collector finalised a get_async whose loop had been closed
        # while close() held the readers' lock (60 loops waiting: its list
        # allocates enough for a collection); the coroutine's cleanup asked
        # for the same lock and the thread waited on itself for good.  In a
        # child: it sets the collector's thresholds.
        import subprocess
        import sys
        code = '''if 1:
            import asyncio, gc, logging
            logging.disable(logging.CRITICAL)
            import shmring
            q = shmring.Queue(); q.fileno()
            live = []
            for _ in range(60):
                l = asyncio.new_event_loop()
                t = l.create_task(q.get_async())
                l.run_until_complete(asyncio.sleep(0))
                live.append((l, t))
            gc.collect(); gc.disable()
            loop = asyncio.new_event_loop()
            task = loop.create_task(q.get_async())
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
            holder = [loop, task]; del loop, task
            gc.set_threshold(50, 0, 100)
            gc.collect(0)
            del holder
            gc.enable()
            q.close()
            print('closed', flush=True)
        '''
        r = subprocess.run([sys.executable, '-c', code], capture_output=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, b'closed'), r.stderr[-2000:])

    def test_put_async_on_a_full_queue(self):
        q = shmring.Queue(2)

        async def main():
            await q.put_async(1)
            await q.put_async(2)
            with self.assertRaises(Full):
                await q.put_async(3, timeout=0.05)
            asyncio.get_running_loop().call_later(0.1, q.get_nowait)
            await q.put_async(3, timeout=10)
            return [q.get_nowait(), q.get_nowait()]
        self.assertEqual(asyncio.run(main()), [2, 3])

    def test_fileno_with_selectors_and_connection_wait(self):
        q = shmring.Queue()
        self.assertEqual(multiprocessing.connection.wait([q], timeout=0.05), [])
        q.put('x')
        self.assertEqual(multiprocessing.connection.wait([q], timeout=5), [q])
        with selectors.DefaultSelector() as sel:
            sel.register(q.fileno(), selectors.EVENT_READ)
            self.assertTrue(sel.select(timeout=5))
        self.assertEqual(q.get_nowait(), 'x')
        self.assertRaises(Empty, q.get_nowait)      # re-arms the fd
        self.assertEqual(multiprocessing.connection.wait([q], timeout=0.05), [])

    def test_add_reader(self):
        q = shmring.Queue()

        async def main():
            loop = asyncio.get_running_loop()
            got = loop.create_future()

            def readable():
                try:
                    got.set_result(q.get_nowait())
                except Empty:
                    pass
            loop.add_reader(q.fileno(), readable)
            loop.call_later(0.05, q.put, 'via add_reader')
            try:
                return await asyncio.wait_for(got, 10)
            finally:
                loop.remove_reader(q.fileno())
        self.assertEqual(asyncio.run(main()), 'via add_reader')

    def test_many_tasks_several_processes_under_load(self):
        ctx = multiprocessing.get_context('fork')
        q = shmring.Queue(capacity=1 << 16)
        out = shmring.Queue()
        n_prod, n_items, n_cons, n_tasks = 3, 3000, 2, 20
        cons = [ctx.Process(target=async_consumer, args=(q, out, n_tasks))
                for _ in range(n_cons)]
        prods = [ctx.Process(target=produce, args=(q, k, n_items)) for k in range(n_prod)]
        for p in cons + prods:
            p.start()
        for p in prods:
            p.join(60)
        for _ in range(n_cons * n_tasks):
            q.put(None)
        total = sum(out.get(timeout=60) for _ in range(n_cons))
        for p in cons:
            p.join(30)
        self.assertEqual(total, n_prod * n_items)


if __name__ == '__main__':
    unittest.main()
