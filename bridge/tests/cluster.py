#!/usr/bin/env python3
"""End-to-end test of shmring-nats against a real 3-node JetStream cluster.

    python3 bridge/tests/cluster.py [--build build/release] [--records N]
                                    [--no-faults] [--keep]

Starts three nats-server processes on loopback (each its own server_name,
free client/cluster/monitoring ports, routes to the other two, its own
jetstream store_dir in a temporary folder), waits for a JetStream meta
leader (/jsz), then runs

    4 x bridge_tool produce -> ring A -> shmring-nats out -> stream (R3)
      -> shmring-nats in -> ring B -> bridge_tool check

with N records in all (250000 each for the 1-million run).  While the records
flow it stops the out bridge with SIGTERM and restarts it, SIGKILLs the out
bridge, makes it die (a test hook) holding records the stream has and records
it never published, SIGKILLs the in bridge and the stream's leader node,
restarting each.  Then it
checks: every record in ring B is intact, no producer's records out of
order, no duplicate except one the in bridge declared on restart (it died
between a put and recording it: docs/bridge.md), nothing missing and ring
A's lost_records 0 (ring A is made with SHMRING_REDELIVER: what the killed
out bridge had peeked is delivered again to its next run).  It prints how long
each outage stalled the flow.  Every process it started is stopped, and
every file it made removed, pass or fail.

Needs only Python 3's standard library; skips (exit 0, saying so) without
nats-server on PATH.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def log(msg):
    print('cluster.py: ' + msg, flush=True)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Procs:
    """Every process started, so that all are stopped at the end."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.live = {}

    def start(self, name, argv, stdout=None, env=None):
        logf = open(os.path.join(self.tmp, name + '.log'), 'ab')
        p = subprocess.Popen(argv, stdout=stdout or logf, stderr=logf,
                             start_new_session=True, env=env)
        self.live[name] = p
        return p

    def signal(self, name, sig):
        p = self.live.get(name)
        if p and p.poll() is None:
            p.send_signal(sig)

    def wait(self, name, timeout):
        p = self.live[name]
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop_all(self):
        for p in self.live.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        for p in self.live.values():
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def tail(self, name, lines=15):
        path = os.path.join(self.tmp, name + '.log')
        try:
            with open(path, 'rb') as f:
                text = f.read().decode(errors='replace').splitlines()
        except OSError:
            return ''
        return '\n'.join('    ' + l for l in text[-lines:])


class Cluster:
    def __init__(self, procs, tmp, size=3):
        self.procs = procs
        ports = free_ports(3 * size)
        self.nodes = []
        for i in range(size):
            self.nodes.append({'name': 'n%d' % (i + 1), 'client': ports[3 * i],
                               'route': ports[3 * i + 1], 'http': ports[3 * i + 2]})
        for node in self.nodes:
            routes = ', '.join('nats-route://127.0.0.1:%d' % o['route']
                               for o in self.nodes if o is not node)
            store = os.path.join(tmp, 'js-' + node['name'])
            node['conf'] = os.path.join(tmp, node['name'] + '.conf')
            with open(node['conf'], 'w') as f:
                f.write('server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n'
                        'jetstream { store_dir: "%s", max_file_store: 4G, '
                        'max_memory_store: 256M }\n'
                        'cluster { name: shmring-test, listen: 127.0.0.1:%d, '
                        'routes: [%s] }\n'
                        % (node['name'], node['client'], node['http'], store,
                           node['route'], routes))

    def urls(self):
        return ','.join('nats://127.0.0.1:%d' % n['client'] for n in self.nodes)

    def start(self, node):
        self.procs.start('nats-' + node['name'], ['nats-server', '-c', node['conf']])

    def node(self, name):
        return next(n for n in self.nodes if n['name'] == name)

    def jsz(self, node, query=''):
        url = 'http://127.0.0.1:%d/jsz%s' % (node['http'], query)
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.load(r)

    def wait_meta_leader(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                leaders = {self.jsz(n).get('meta_cluster', {}).get('leader')
                           for n in self.nodes}
                routes = [json.load(urllib.request.urlopen(
                    'http://127.0.0.1:%d/routez' % n['http'], timeout=2))['num_routes']
                    for n in self.nodes]
                if len(leaders) == 1 and None not in leaders and '' not in leaders \
                        and min(routes) >= len(self.nodes) - 1:
                    return leaders.pop()
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError('no JetStream meta leader after %d s' % timeout)

    def stream(self, name):
        """(leader, messages, the consumers' lowest ack floor) of stream name,
        asked of any live node."""
        for n in self.nodes:
            try:
                j = self.jsz(n, '?accounts=true&streams=true&consumers=true')
            except (OSError, ValueError):
                continue
            for acc in j.get('account_details') or []:
                for s in acc.get('stream_detail') or []:
                    if s.get('name') == name:
                        floors = [c.get('ack_floor', {}).get('stream_seq', 0)
                                  for c in s.get('consumer_detail') or []]
                        return (s.get('cluster', {}).get('leader'),
                                s.get('state', {}).get('messages', 0),
                                min(floors) if floors else 0)
        return None, 0, 0


def run(args, procs, tmp):
    build = os.path.abspath(args.build)
    bridge = os.path.join(build, 'bridge', 'shmring-nats')
    tool = os.path.join(build, 'bridge', 'tests', 'bridge_tool')
    for path in (bridge, tool):
        if not os.path.exists(path):
            raise RuntimeError('%s is missing: run ninja first' % path)
    # Ring A is made by the out bridge with SHMRING_REDELIVER: what a
    # SIGKILLed out bridge had peeked is delivered again to its next run, so
    # nothing may be missing (docs/bridge.md).
    redeliver = True

    cluster = Cluster(procs, tmp)
    for node in cluster.nodes:
        cluster.start(node)
    leader = cluster.wait_meta_leader()
    log('3-node cluster up (client ports %s), meta leader %s'
        % (', '.join(str(n['client']) for n in cluster.nodes), leader))

    tag = '%d' % os.getpid()
    ring_a, ring_b = 'bridge-test-%s-A' % tag, 'bridge-test-%s-B' % tag
    stream, subject, durable = 'BT%s' % tag, 'bt.%s' % tag, 'bt%s' % tag
    args.cleanup_rings += ((ring_a, ring_b, durable),)
    # the bridges make both rings (persistent where the library has it)
    common = ['--servers', cluster.urls(), '--stream', stream, '--subject', subject,
              '--stats-interval', '2', '--capacity', str(4 << 20),
              '--max-record', str(64 << 10)]
    out_argv = [bridge, 'out', '--ring', ring_a, '--replicas', '3',
                '--max-pending', str(args.max_pending)] + common
    in_argv = [bridge, 'in', '--ring', ring_b, '--durable', durable] + common

    producers, per = 4, args.records // 4
    progress_file = os.path.join(tmp, 'progress')

    def progress():
        try:
            with open(progress_file) as f:
                return int(f.read())
        except (OSError, ValueError):
            return 0

    total = producers * per
    checker = procs.start('check', [tool, 'check', '--ring', ring_b, '--producers',
                                    str(producers), '--count', str(per),
                                    '--timeout', str(args.timeout),
                                    '--progress', progress_file],
                          stdout=subprocess.PIPE)
    procs.start('out', out_argv)
    procs.start('in', in_argv)
    t_start = time.time()
    for p in range(producers):
        procs.start('produce-%d' % p, [tool, 'produce', '--ring', ring_a, '--producer',
                                      str(p), '--count', str(per)])

    # Sample the stream's count and ring B's every 50 ms: each outage's stall
    # is the longest time the counter of the side it hit did not move.
    samples = []   # (time, stored in the stream, arrived in ring B)
    sampling = [True]

    def sample():
        while sampling[0]:
            samples.append((time.time(), cluster.stream(stream)[1], progress()))
            time.sleep(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    faults = [] if args.no_faults else [
        (0.10, 'SIGTERM out (clean stop), restart'),
        (0.25, 'SIGKILL out, restart'),
        (0.35, 'the out bridge dies holding stored and unpublished records (test hook), '
               'restart'),
        (0.45, 'SIGKILL in, restart'),
        (0.65, 'SIGKILL the stream leader node, restart'),
        (0.80, 'in dies between a put and its position (test hook), restart'),
    ]
    events = []
    lost_before = None
    expect_declared = 0
    resume_at = 0   # the stream's count when the last fault was undone
    for frac, what in faults:
        # the next fault once the flow is this far and the last one is
        # behind it at both ends (ring B has what the stream had then)
        deadline = time.time() + args.timeout
        while True:
            _, stored, _ = cluster.stream(stream)
            if (stored >= frac * total and progress() >= resume_at) or \
                    checker.poll() is not None:
                break
            for name in ('out', 'in'):
                if procs.live[name].poll() is not None:
                    raise RuntimeError('the %s bridge exited by itself (status %s)'
                                       % (name, procs.live[name].returncode))
            if time.time() > deadline:
                raise RuntimeError('no progress to %d%% in %d s' % (100 * frac, args.timeout))
            time.sleep(0.1)
        t = time.time()
        if what.startswith('SIGTERM out'):
            lost_before = json.loads(subprocess.run(
                [tool, 'info', '--ring', ring_a], stdout=subprocess.PIPE,
                check=True).stdout)['lost_records']
            procs.signal('out', signal.SIGTERM)
            rc = procs.wait('out', 60)
            if rc != 0:
                raise RuntimeError('out bridge exit status %r after SIGTERM' % rc)
            lost_after = json.loads(subprocess.run(
                [tool, 'info', '--ring', ring_a], stdout=subprocess.PIPE,
                check=True).stdout)['lost_records']
            if lost_after != lost_before:
                raise RuntimeError('a clean stop lost %d records'
                                   % (lost_after - lost_before))
            procs.start('out', out_argv)
        elif what.startswith('SIGKILL out'):
            procs.signal('out', signal.SIGKILL)
            procs.wait('out', 10)
            time.sleep(0.5)
            procs.start('out', out_argv)
        elif what.startswith('the out bridge dies'):
            procs.signal('out', signal.SIGTERM)
            if procs.wait('out', 60) != 0:
                raise RuntimeError('out bridge exit status after SIGTERM')
            procs.start('out', out_argv, env=dict(os.environ,
                                                  SHMRING_NATS_TEST_DIE_HOLDING='2000'))
            if procs.wait('out', 120) != -signal.SIGKILL:
                raise RuntimeError('the out bridge did not die holding records')
            procs.start('out', out_argv)
        elif what.startswith('SIGKILL in'):
            procs.signal('in', signal.SIGKILL)
            procs.wait('in', 10)
            time.sleep(0.5)
            procs.start('in', in_argv)
        elif what.startswith('in dies'):
            procs.signal('in', signal.SIGTERM)
            if procs.wait('in', 60) != 0:
                raise RuntimeError('in bridge exit status after SIGTERM')
            procs.start('in', in_argv, env=dict(os.environ,
                                                SHMRING_NATS_TEST_DIE_AFTER_PUTS='500'))
            if procs.wait('in', 120) != -signal.SIGKILL:
                raise RuntimeError('the in bridge did not die at its 500th put')
            procs.start('in', in_argv)
            expect_declared = 1
        else:
            leader = cluster.stream(stream)[0]
            if not leader:
                raise RuntimeError('no leader for stream %s' % stream)
            procs.signal('nats-' + leader, signal.SIGKILL)
            procs.wait('nats-' + leader, 10)
            time.sleep(2)
            cluster.start(cluster.node(leader))
            what = what.replace('the stream leader node', 'stream leader ' + leader)
        log('%.1f s: %s (at %d%% of the records)' % (t - t_start, what, 100 * frac))
        events.append((t, what))
        resume_at = cluster.stream(stream)[1]

    # a bridge that exits by itself fails the test now, not at the timeout
    while checker.poll() is None:
        for name in ('out', 'in'):
            if procs.live[name].poll() is not None:
                raise RuntimeError('the %s bridge exited by itself (status %s)'
                                   % (name, procs.live[name].returncode))
        time.sleep(0.2)
    out, _ = checker.communicate(timeout=args.timeout + 60)
    sampling[0] = False
    sampler.join()
    elapsed = time.time() - t_start
    result = json.loads(out)
    info_a = json.loads(subprocess.run([tool, 'info', '--ring', ring_a],
                                       stdout=subprocess.PIPE, check=True).stdout)
    with open(os.path.join(tmp, 'in.log'), errors='replace') as f:
        declared = len(re.findall(r'may be in ring', f.read()))

    log('%d records in %.1f s end to end (%.0f records/s in ring B), latency p50 %.2f ms, '
        'p99 %.2f ms' % (result['distinct'], elapsed, result['records_per_s'],
                         result['latency_ms_p50'], result['latency_ms_p99']))
    def stall(t0, t1, col):
        """The longest time in [t0, t1) during which counter col stood still
        (while it still had records to come)."""
        best, since, last = 0.0, None, None
        for row in samples:
            t, v = row[0], row[col]
            if t < t0 - 0.2 or t >= t1 or v >= total:
                continue
            if last is None or v != last:
                since, last = t, v
            elif t >= t0:
                best = max(best, t - max(since, t0 - 0.2))
        return best

    for i, (t, what) in enumerate(events):
        t_next = events[i + 1][0] if i + 1 < len(events) else float('inf')
        parts = []
        if ' out' in what or 'leader' in what:
            parts.append('stream stood still %.2f s' % stall(t, t_next, 1))
        if 'SIGKILL in' in what or 'in dies' in what or 'leader' in what:
            parts.append('ring B stood still %.2f s' % stall(t, t_next, 2))
        log('outage "%s": %s' % (what, ', '.join(parts)))
    log('check: %s' % json.dumps(result))
    log('ring A lost_records (peeked by a killed out bridge): %d, redelivered (peeked by a '
        'killed out bridge, taken again by the next): %d; in bridge declared %d possible '
        'duplicate(s)' % (info_a['lost_records'], info_a.get('redelivered', 0), declared))

    errors = []
    if result['corrupt']:
        errors.append('%d corrupt records' % result['corrupt'])
    if result['order_violations']:
        errors.append('%d per-producer order violations' % result['order_violations'])
    if declared < expect_declared:
        errors.append('the in bridge did not declare the put it died in')
    if result['duplicates'] != result['duplicates_adjacent'] or \
            result['duplicates_adjacent'] > declared:
        errors.append('%d duplicates (%d adjacent, %d declared by the in bridge)'
                      % (result['duplicates'], result['duplicates_adjacent'], declared))
    allowed = 0 if redeliver else info_a['lost_records']
    if result['missing'] > allowed:
        errors.append('%d records missing, more than the %d the ring counts lost%s'
                      % (result['missing'], allowed,
                         ' (the ring has SHMRING_REDELIVER)' if redeliver else ''))
    if redeliver and info_a['lost_records']:
        errors.append('ring A (SHMRING_REDELIVER) counts %d lost records'
                      % info_a['lost_records'])
    if result['distinct'] + result['missing'] != total:
        errors.append('count mismatch')
    return errors + python_objects(args, procs, cluster, tool, bridge)


PY_SCENARIO = r"""
import sys, time
import shmring
ring_a, ring_b, max_record = sys.argv[1], sys.argv[2], int(sys.argv[3])
a = shmring.Queue.open(ring_a)
if a.side_segments:
    sys.exit('python: the producing queue should have side_segments=False')
# every size up to max_record: a bytes object's record is 1 + len(b)
items = [None, True, False, 0, -1, 2**63 - 1, 2**200, 1.5, float('inf'), '', 'x' * 10,
         'é' * 1000, b'', b'y' * 100, bytearray(5000), (1, 'a', (2, (3, None))),
         [1, 2, 3], {'k': [1], 2: (3,)}, {1, 2}, list(range(3000)),
         'z' * (max_record - 100), b'w' * (max_record - 1)]
items += [bytes([n % 251]) * n for n in (1, 511, 512, 4095, 4096, 65535 // 3, max_record // 2)]
# too big for a record: a side segment would exist on this host only, so the
# queue refuses it at put, puts nothing, and stays usable
too_big = [b'o' * max_record, 'o' * (2 * max_record), bytearray(3 * max_record),
           list(range(max_record))]
refused = 0
for i, it in enumerate(items):
    a.put(it)
    if i < len(too_big):
        try:
            a.put(too_big[i])
        except ValueError as e:
            if 'side segments are off' in str(e):
                refused += 1
            else:
                print('python: unexpected ValueError: %s' % e)
print('python: %d of %d over-size objects refused at put' % (refused, len(too_big)))
deadline = time.time() + 60
while True:
    try:
        b = shmring.Queue.open(ring_b)
        break
    except FileNotFoundError:
        if time.time() > deadline:
            raise
        time.sleep(0.1)
got = [b.get(timeout=60) for _ in items]
bad = [i for i, (x, y) in enumerate(zip(items, got)) if x != y or type(x) is not type(y)]
print('python: %d objects through the bridges, %d differ %s' % (len(items), len(bad), bad))
try:
    extra = b.get(timeout=2)
    print('python: an object too many arrived: %r' % (extra,)[:80])
    bad.append('extra')
except shmring.Empty:
    pass
sys.exit(1 if bad or refused != len(too_big) else 0)
"""


def python_objects(args, procs, cluster, tool, bridge):
    """shmring.Queue(name=...) -> out -> stream -> in -> Queue.open(...):
    objects of every kind the binding encodes, of every size up to the largest
    record; the producing queue has side_segments=False, so a bigger object
    is refused at put (ValueError) and nothing of it crosses."""
    pydir = os.path.join(ROOT, 'build', 'python')
    if not os.path.isdir(os.path.join(pydir, 'shmring')):
        log('python: SKIP: build/python/shmring is not built (ninja python)')
        return []
    tag = 'py%d' % os.getpid()
    ring_a, ring_b = 'bridge-test-%s-A' % tag, 'bridge-test-%s-B' % tag
    args.cleanup_rings += ((ring_a, ring_b, 'd' + tag),)
    env = dict(os.environ, PYTHONPATH=pydir)
    max_record = 64 << 10
    subprocess.run([sys.executable, '-c', 'import shmring, sys; '
                    'shmring.Queue(name=sys.argv[1], capacity=%d, max_record=%d, '
                    'side_segments=False)'
                    % (4 << 20, max_record), ring_a], env=env, check=True)
    common = ['--servers', cluster.urls(), '--stream', 'BTP' + tag, '--subject',
              'btp.' + tag, '--replicas', '3', '--stats-interval', '0']
    procs.start('py-out', [bridge, 'out', '--ring', ring_a] + common)
    procs.start('py-in', [bridge, 'in', '--ring', ring_b, '--durable', 'd' + tag,
                          '--max-record', str(max_record)] + common)
    r = subprocess.run([sys.executable, '-c', PY_SCENARIO, ring_a, ring_b, str(max_record)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=180)
    log(r.stdout.decode(errors='replace').strip())
    for name in ('py-out', 'py-in'):
        procs.signal(name, signal.SIGTERM)
        if procs.wait(name, 30) != 0:
            return ['the %s bridge did not stop cleanly' % name]
    return [] if r.returncode == 0 else ['python objects did not arrive intact']


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default=os.path.join(ROOT, 'build', 'release'))
    ap.add_argument('--records', type=int, default=1000000,
                    help='records in all, over 4 producers (default 1000000)')
    ap.add_argument('--max-pending', type=int, default=256)
    ap.add_argument('--timeout', type=float, default=900,
                    help='seconds the checker waits at most')
    ap.add_argument('--no-faults', action='store_true')
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder')
    args = ap.parse_args()
    if not shutil.which('nats-server'):
        log('SKIP: nats-server is not on PATH (apt-get install nats-server)')
        return 0
    def on_term(sig, frame):   # cleanup below runs on SIGTERM too (timeout(1))
        raise SystemExit('cluster.py: signal %d' % sig)
    signal.signal(signal.SIGTERM, on_term)
    tmp = tempfile.mkdtemp(prefix='shmring-bridge-test-')
    procs = Procs(tmp)
    args.cleanup_rings = ()
    errors = []
    try:
        errors = run(args, procs, tmp)
    except Exception as e:   # report, then clean up below
        errors = ['%s: %s' % (type(e).__name__, e)]
    finally:
        procs.stop_all()
        tool = os.path.join(os.path.abspath(args.build), 'bridge', 'tests', 'bridge_tool')
        for ring_a, ring_b, durable in args.cleanup_rings:
            for ring in (ring_a, ring_b):
                subprocess.run([tool, 'unlink', '--ring', ring])
            # (and a Python queue's control page: <name>.pyq, python/shmring)
            for path in ['/dev/shm/shmring-nats-in.%s.%s' % (ring_b, durable)] + \
                    ['/dev/shm/%s.pyq' % ring for ring in (ring_a, ring_b)]:
                try:
                    os.unlink(path)
                except OSError:
                    pass
    if errors:
        for name in sorted(procs.live):
            log('--- %s.log (last lines)\n%s' % (name, procs.tail(name)))
        log('FAIL: ' + '; '.join(errors))
    else:
        log('PASS')
    if args.keep or errors:
        log('logs kept in %s' % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
