#!/usr/bin/env python3
"""Python queue benchmark: shmring.Queue against multiprocessing.Queue,
multiprocessing.SimpleQueue and multiprocessing.Manager().Queue(), in one run.

    PYTHONPATH=build/python python3 perf/bench_python.py            # ~2 minutes
    PYTHONPATH=build/python python3 perf/bench_python.py --scale 0.2  # quicker
    ... --json results.json                                        # raw figures too
    ... --sizes --per-task 2000   # issue 16: numpy arrays of 8 B to 100 MiB, 1x1
                                  # and 4x4, and the per-task passing cost (numpy needed)

Throughput uses faster-fifo's matrix of producer x consumer processes (1x1,
1x10, 10x1, 3x20, 20x3, 20x20), each message a tuple of five ints; then
64-byte bytes objects (shmring's put_bytes/get_bytes against put/get of the
same bytes elsewhere), 1 MiB bytes objects, 10x1 with get_many on the
consumer side, and ping-pong latency between two processes.  Every process
is forked before the clock starts; they start together at a barrier, and
the clock stops when the consumers have received every message (one None
per consumer ends the run).  The Manager queue gets fewer messages (it does
~10-20k a second).  Ratios are shmring's figure over the other queue's; the
targets (docs/python.md) are checked at the end.

Latency is timed per round trip, in several short rounds per queue,
interleaved between the queues, because on a machine shared with other work
it is bimodal: when the two processes have a core each a round trip is a
few microseconds of work, when they must share one it is two context
switches.  The best round's median measures the queue (every queue gets
the same treatment); the median round's median and the mean of all round
trips show what the machine's load did to it.
"""

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time

try:
    import shmring
except ImportError:                                   # run from the tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    '..', 'build', 'python'))
    import shmring

MSG = (1, 2, 3, 4, 5)
MATRIX = [(1, 1), (1, 10), (10, 1), (3, 20), (20, 3), (20, 20)]
KINDS = ['shmring', 'mp.Queue', 'mp.SimpleQueue', 'Manager']


# --- workers ----------------------------------------------------------------

def producer(q, n, msg, barrier, mode):
    barrier.wait()
    if mode == 'bytes':
        put = q.put_bytes
    else:
        put = q.put
    for _ in range(n):
        put(msg)


def consumer(q, idx, counts, barrier, mode):
    barrier.wait()
    n = 0
    if mode == 'many':
        get_many = q.get_many
        while True:
            items = get_many()
            if items[-1] is None:
                # sentinels come after every message: only at the tail
                k = 0
                while k < len(items) and items[-1 - k] is None:
                    k += 1
                n += len(items) - k
                for _ in range(k - 1):
                    q.put(None)
                break
            n += len(items)
    elif mode == 'bytes':
        get = q.get_bytes
        while True:
            b = get()
            if not b:                       # b'' ends the run
                break
            n += 1
    else:
        get = q.get
        while True:
            if get() is None:
                break
            n += 1
    counts[idx] = n


def echo(a, b, mode):
    if mode == 'bytes':
        get, put = a.get_bytes, b.put_bytes
    else:
        get, put = a.get, b.put
    while True:
        x = get()
        put(x)
        if x is None or x == b'':
            return


# --- harness ----------------------------------------------------------------

def make_queue(kind, manager):
    if kind == 'shmring':
        return shmring.Queue()
    if kind == 'mp.Queue':
        return mp.Queue()
    if kind == 'mp.SimpleQueue':
        return mp.SimpleQueue()
    return manager.Queue()


def throughput(kind, manager, P, C, total, msg, mode='plain'):
    """Messages per second from P producers to C consumers."""
    q = make_queue(kind, manager)
    per = max(1, total // P)
    barrier = mp.Barrier(P + C + 1)
    counts = mp.Array('q', C, lock=False)
    prods = [mp.Process(target=producer, args=(q, per, msg, barrier, mode))
             for _ in range(P)]
    cons = [mp.Process(target=consumer, args=(q, i, counts, barrier, mode))
            for i in range(C)]
    for p in cons + prods:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    for p in prods:
        p.join()
    end = b'' if mode == 'bytes' else None
    put_end = q.put_bytes if mode == 'bytes' else q.put
    for _ in range(C):
        put_end(end)
    for p in cons:
        p.join()
    dt = time.perf_counter() - t0
    got = sum(counts)
    if got != per * P:
        raise SystemExit('%s %dx%d: received %d of %d messages' % (kind, P, C, got, per * P))
    if hasattr(q, 'close'):
        q.close()
    return per * P / dt


def ping_pong(kind, manager, seconds, mode='plain', msg=MSG):
    """One-way latency in microseconds (each round trip / 2): a dict with
    the mean, the median (p50) and p99 over the round trips."""
    a, b = make_queue(kind, manager), make_queue(kind, manager)
    p = mp.Process(target=echo, args=(a, b, mode))
    p.start()
    put, get = (a.put_bytes, b.get_bytes) if mode == 'bytes' else (a.put, b.get)
    for _ in range(100):                    # warm up
        put(msg)
        get()
    clock = time.perf_counter
    rtts = []
    t0 = clock()
    deadline = t0 + seconds
    now = t0
    while now < deadline:
        put(msg)
        get()
        t = clock()
        rtts.append(t - now)
        now = t
    put(b'' if mode == 'bytes' else None)
    get()
    p.join()
    rtts.sort()
    half = 1e6 / 2
    return {'mean': (now - t0) / len(rtts) * half,
            'p50': rtts[len(rtts) // 2] * half,
            'p99': rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))] * half,
            'n': len(rtts)}


# numpy arrays of these sizes, 1 to 1 and 4 to 4 (--sizes): (label, bytes,
# messages per case at --scale 1).  The Manager queue gets a quarter (at
# least 2): it moves every array through its server process.
SIZES = [('8 B', 8, 20000), ('1 KiB', 1024, 20000), ('1 MiB', 1 << 20, 300),
         ('100 MiB', 100 << 20, 8)]


def sizes_table(kinds, manager, scale):
    import numpy as np
    results = {}
    print('\nnumpy arrays, messages per second (and the ratio of shmring\'s rate to '
          'each other queue\'s, same run)')
    print('%-16s' % 'case' + ''.join('%15s' % k for k in kinds) +
          ''.join('%12s' % ('/' + k) for k in kinds if k != 'shmring'))
    for P in (1, 4):
        for label, nbytes, n in SIZES:
            arr = np.arange(nbytes, dtype=np.uint8)
            n = max(2 * P, int(n * scale))
            figs = {}
            line = '%-16s' % ('%dx%d %s' % (P, P, label))
            for kind in kinds:
                nn = max(2 * P, n // 4) if kind == 'Manager' else n
                figs[kind] = throughput(kind, manager, P, P, nn, arr)
                line += '%15s' % fmt_rate(figs[kind])
                if sys.stdout.isatty():
                    sys.stdout.write('\r' + line)
                    sys.stdout.flush()
            if 'shmring' in figs:
                line += ''.join('%11.1fx' % (figs['shmring'] / figs[k])
                                for k in kinds if k != 'shmring')
            print('\r' + line)
            results['%dx%d %s' % (P, P, label)] = figs
    return results


def noop_task(i, q=None):
    return i


def task_cost(method, n):
    """apply_async x n of a trivial function on a 2-worker Pool: tasks/s
    without a queue argument, with an anonymous shmring queue, and with a
    named one (issue 16: passing the queue must cost at most half the rate)."""
    ctx = mp.get_context(method)
    name = 'shmring-bench-task-%d' % os.getpid()
    anon, named = shmring.Queue(), shmring.Queue(name=name)
    rates = {}
    try:
        with ctx.Pool(2) as pool:
            pool.apply(noop_task, (0, anon))     # warm: workers up, queue cached
            pool.apply(noop_task, (0, named))
            for label, arg in (('none', None), ('anonymous', anon), ('named', named),
                               ('none again', None)):
                t0 = time.perf_counter()
                rs = [pool.apply_async(noop_task, (i, arg)) for i in range(n)]
                for r in rs:
                    r.get(60)
                rates[label] = n / (time.perf_counter() - t0)
    finally:
        named.unlink()
    return rates


def fmt_rate(r):
    if r is None:
        return '-'
    if r >= 1e6:
        return '%.2fM/s' % (r / 1e6)
    if r >= 1e3:
        return '%.0fk/s' % (r / 1e3)
    if r >= 10:
        return '%.0f/s' % r
    return '%.2f/s' % r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--scale', type=float, default=1.0,
                    help='multiply every message count by this (default 1)')
    ap.add_argument('--messages', type=int, default=300000,
                    help='messages per matrix case (default 300000; the '
                         'Manager queue gets 1/30 of it)')
    ap.add_argument('--kinds', default=','.join(KINDS),
                    help='queues to measure (default: %s)' % ','.join(KINDS))
    ap.add_argument('--latency-seconds', type=float, default=2.0,
                    help='ping-pong time per queue and message (default 2)')
    ap.add_argument('--latency-rounds', type=int, default=5,
                    help='split it into this many interleaved rounds (default 5)')
    ap.add_argument('--json', help='also write the raw figures to this file')
    ap.add_argument('--per-task', type=int, metavar='N', default=0,
                    help='only measure the cost of passing a queue with each of N '
                         'Pool.apply_async tasks (fork and spawn), and exit')
    ap.add_argument('--sizes', action='store_true',
                    help='only the numpy table: arrays of 8 B, 1 KiB, 1 MiB and 100 MiB, '
                         '1x1 and 4x4, every queue (with --per-task: that too)')
    args = ap.parse_args()
    kinds = args.kinds.split(',')
    if args.sizes or args.per_task:
        mp.set_start_method('fork')
        print('shmring Python benchmark: Python %s, %d CPUs, load average %s'
              % (platform.python_version(), os.cpu_count(),
                 ' '.join('%.2f' % x for x in os.getloadavg())))
        out = {'loadavg_start': os.getloadavg()}
        if args.sizes:
            manager = mp.Manager() if 'Manager' in kinds else None
            out['sizes'] = sizes_table(kinds, manager, args.scale)
            if manager is not None:
                manager.shutdown()
        if args.per_task:
            print('\npassing a queue with each of %d Pool(2).apply_async tasks' % args.per_task)
            out['per_task'] = {}
            for method in ('fork', 'spawn'):
                r = out['per_task'][method] = task_cost(method, args.per_task)
                print('%-6s tasks/s: %s; with the queue / without: anonymous %.2f, named %.2f'
                      % (method, ', '.join('%s %s' % (k, fmt_rate(v)) for k, v in r.items()),
                         r['anonymous'] / max(r['none'], r['none again']),
                         r['named'] / max(r['none'], r['none again'])))
        out['loadavg_end'] = os.getloadavg()
        print('\nload average at the end: %s' % ' '.join('%.2f' % x for x in os.getloadavg()))
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(out, f, indent=1)
        return
    mp.set_start_method('fork')
    N = max(1000, int(args.messages * args.scale))
    manager = mp.Manager() if 'Manager' in kinds else None

    def count(kind, n):
        return max(200, n // 30) if kind == 'Manager' else n

    print('shmring Python benchmark: %s, Python %s, %d CPUs, load average %s'
          % (platform.node() or 'this machine', platform.python_version(),
             os.cpu_count(), ' '.join('%.2f' % x for x in os.getloadavg())))
    print('shmring %s from %s' % (shmring.__version__, os.path.dirname(shmring.__file__)))
    results = {'python': platform.python_version(), 'cpus': os.cpu_count(),
               'loadavg_start': os.getloadavg(), 'messages': N, 'rows': {}}

    rows = []
    for P, C in MATRIX:
        rows.append(('%dx%d' % (P, C), P, C, MSG, 'plain', N))
    rows.append(('10x1 get_many', 10, 1, MSG, 'many', N))
    rows.append(('1x1 64 B bytes', 1, 1, b'x' * 64, 'bytes', N))
    rows.append(('1x1 1 MiB bytes', 1, 1, b'x' * (1 << 20), 'plain',
                 max(100, int(2000 * args.scale))))

    head = '%-16s' % 'case' + ''.join('%15s' % k for k in kinds)
    if 'shmring' in kinds:
        head += '%10s%10s' % ('vs mp.Q', 'vs Mgr')
    print('\nthroughput, messages per second (a tuple of five ints unless noted)')
    print(head)
    for label, P, C, msg, mode, n in rows:
        line = '%-16s' % label
        figs = {}
        for kind in kinds:
            if mode == 'many' and kind != 'shmring':
                figs[kind] = None
                line += '%15s' % '-'
                continue
            kmode = mode if kind == 'shmring' else 'plain'
            if kind == 'Manager' and msg is not MSG and len(msg) > 1000:
                nn = max(20, n // 30)
            else:
                nn = count(kind, n)
            r = throughput(kind, manager, P, C, nn, msg, kmode)
            figs[kind] = r
            line += '%15s' % fmt_rate(r)
            sys.stdout.write('\r' + line)
            sys.stdout.flush()
        if 'shmring' in kinds:
            base = figs.get('mp.Queue')
            if mode == 'many':
                base = results['rows'].get('10x1', {}).get('mp.Queue')
            mgr = figs.get('Manager')
            if mode == 'many':
                mgr = results['rows'].get('10x1', {}).get('Manager')
            line += '%10s%10s' % ('%.1fx' % (figs['shmring'] / base) if base else '-',
                                  '%.0fx' % (figs['shmring'] / mgr) if mgr else '-')
        print('\r' + line)
        results['rows'][label] = figs

    rounds = max(1, args.latency_rounds)
    print('\nping-pong latency, one way (round trip / 2), microseconds, %d rounds '
          'per queue, interleaved:\n  best round\'s median (median round\'s median, '
          'mean of all)' % rounds)
    print('%-16s' % 'message' + ''.join('%22s' % k for k in kinds) +
          ('%12s' % 'mp.Q/shm' if 'shmring' in kinds else ''))
    lat = {}
    for label, mode, msg in (('5-int tuple', 'plain', MSG), ('64 B bytes', 'bytes', b'x' * 64)):
        per = {k: [] for k in kinds}
        for _ in range(rounds):
            for kind in kinds:
                kmode = mode if kind == 'shmring' else 'plain'
                secs = args.latency_seconds / rounds * (0.5 if kind == 'Manager' else 1)
                per[kind].append(ping_pong(kind, manager, secs * max(args.scale, 0.2),
                                           kmode, msg))
        line = '%-16s' % label
        figs = {}
        for kind in kinds:
            rs = per[kind]
            n = sum(r['n'] for r in rs)
            f = figs[kind] = {
                'best_p50': min(r['p50'] for r in rs),
                'p50': sorted(r['p50'] for r in rs)[len(rs) // 2],
                'mean': sum(r['mean'] * r['n'] for r in rs) / n,
                'rounds': rs}
            line += '%22s' % ('%.1f (%.1f, %.1f)' % (f['best_p50'], f['p50'], f['mean']))
        if 'shmring' in kinds and 'mp.Queue' in kinds:
            line += '%6.0fx/%.0fx' % (figs['mp.Queue']['best_p50'] / figs['shmring']['best_p50'],
                                     figs['mp.Queue']['mean'] / figs['shmring']['mean'])
        print(line)
        lat[label] = figs
    results['latency_us'] = lat

    if 'shmring' in kinds and 'mp.Queue' in kinds:
        R = results['rows']
        checks = [
            ('1x1: shmring >= 5x mp.Queue', R['1x1']['shmring'] / R['1x1']['mp.Queue'], 5),
            ('10x1 get_many >= 10x mp.Queue (10x1)',
             R['10x1 get_many']['shmring'] / R['10x1']['mp.Queue'], 10),
            ('ping-pong latency (best median) >= 10x lower than mp.Queue',
             lat['5-int tuple']['mp.Queue']['best_p50'] /
             lat['5-int tuple']['shmring']['best_p50'], 10),
            ('ping-pong latency (mean) >= 10x lower than mp.Queue',
             lat['5-int tuple']['mp.Queue']['mean'] / lat['5-int tuple']['shmring']['mean'], 10),
        ]
        if 'Manager' in kinds:
            checks.insert(1, ('1x1: shmring >= 100x Manager().Queue()',
                              R['1x1']['shmring'] / R['1x1']['Manager'], 100))
        print('\ntargets')
        ok = True
        for what, ratio, target in checks:
            met = ratio >= target
            ok &= met
            print('  %-54s %8.1fx  %s' % (what, ratio, 'met' if met else 'MISSED'))
        results['targets'] = [(w, r, t) for w, r, t in checks]
    results['loadavg_end'] = os.getloadavg()
    print('\nload average at the end: %s' % ' '.join('%.2f' % x for x in os.getloadavg()))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    if manager is not None:
        manager.shutdown()


if __name__ == '__main__':
    main()
