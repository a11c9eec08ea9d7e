#!/usr/bin/env python3
"""Throughput and latency of shmring-nats, beside NATS alone, in one run.

    python3 perf/bridge_bench.py [--build build/release] [--records N]
                                 [--latency-rate R] [--latency-records M]

Starts a 3-node JetStream cluster on loopback (as bridge/tests/cluster.py),
then for 64 B and 4 KiB records and for R1 and R3 streams measures

  bridge    bridge_tool produce -> ring A -> shmring-nats out -> stream
            -> shmring-nats in -> ring B -> bridge_tool check
  js        nats_bench js: JetStream async publish (MaxPending 256) and a pull
            consumer (batches of 256, AckAll): what the bridges do, without rings
  core      nats_bench core: plain NATS publish/subscribe (no stream, no acks;
            stream size does not apply)

each twice: flat out (N records: records/s) and paced at R records/s (M
records: end-to-end latency p50/p99, put time to get time).  Prints a
Markdown table (docs/bridge.md keeps one).  Everything it starts is stopped.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'bridge', 'tests'))
import cluster as cl  # noqa: E402  (the cluster set-up, shared with the test)


def log_text(procs, name):
    try:
        with open(os.path.join(procs.tmp, name + '.log'), errors='replace') as f:
            return f.read()
    except OSError:
        return ''


def bridge_case(build, urls, procs, tag, size, replicas, count, rate):
    tool = os.path.join(build, 'bridge', 'tests', 'bridge_tool')
    bridge = os.path.join(build, 'bridge', 'shmring-nats')
    ring_a, ring_b = 'bridge-bench-%s-A' % tag, 'bridge-bench-%s-B' % tag
    for ring, side in ((ring_a, 'out'), (ring_b, 'in')):   # as the bridges make them
        subprocess.run([tool, 'create', '--ring', ring, '--capacity', str(16 << 20),
                        '--max-record', str(64 << 10), '--as', side], check=True)
    common = ['--servers', urls, '--stream', 'BB' + tag, '--subject', 'bb.' + tag,
              '--replicas', str(replicas), '--stats-interval', '0']
    try:
        checker = procs.start('check-' + tag, [tool, 'check', '--ring', ring_b,
                                               '--producers', '1', '--count', str(count),
                                               '--timeout', '300'],
                              stdout=subprocess.PIPE)
        procs.start('out-' + tag, [bridge, 'out', '--ring', ring_a] + common)
        procs.start('in-' + tag, [bridge, 'in', '--ring', ring_b, '--durable', 'd' + tag]
                    + common)
        # time the records, not the start: wait until both bridges are set up
        deadline = time.time() + 60
        while time.time() < deadline and not (
                'last sequence' in log_text(procs, 'out-' + tag) and
                'committed through' in log_text(procs, 'in-' + tag)):
            for name in ('out-', 'in-'):
                if procs.live[name + tag].poll() is not None:
                    raise RuntimeError('%s exited: %s' % (name + tag,
                                                          log_text(procs, name + tag)))
            time.sleep(0.05)
        procs.start('produce-' + tag, [tool, 'produce', '--ring', ring_a, '--producer', '0',
                                       '--count', str(count), '--size', '%d:%d' % (size, size),
                                       '--rate', str(rate)])
        out, _ = checker.communicate(timeout=330)
        return json.loads(out)
    finally:
        for name in ('out-', 'in-', 'produce-'):
            procs.signal(name + tag, 15)
            procs.wait(name + tag, 30)
        for ring in (ring_a, ring_b):
            subprocess.run([tool, 'unlink', '--ring', ring])
        try:
            os.unlink('/dev/shm/shmring-nats-in.%s.d%s' % (ring_b, tag))
        except OSError:
            pass


def nats_case(build, urls, mode, tag, size, replicas, count, rate):
    bench = os.path.join(build, 'bridge', 'tests', 'nats_bench')
    argv = [bench, mode, '--servers', urls, '--subject', 'nb.' + tag, '--count', str(count),
            '--size', str(size), '--rate', str(rate)]
    if mode == 'js':
        argv += ['--stream', 'NB' + tag, '--replicas', str(replicas)]
    out = subprocess.run(argv, stdout=subprocess.PIPE, check=True, timeout=330).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default=os.path.join(ROOT, 'build', 'release'))
    ap.add_argument('--records', type=int, default=100000)
    ap.add_argument('--latency-rate', type=float, default=1000)
    ap.add_argument('--latency-records', type=int, default=3000)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    if not shutil.which('nats-server'):
        print('bridge_bench.py: SKIP: nats-server is not on PATH')
        return 0
    tmp = tempfile.mkdtemp(prefix='shmring-bridge-bench-')
    procs = cl.Procs(tmp)
    rows = []
    try:
        cluster = cl.Cluster(procs, tmp)
        for node in cluster.nodes:
            cluster.start(node)
        cluster.wait_meta_leader()
        urls = cluster.urls()
        n = 0
        for size in (64, 4096):
            count = args.records if size == 64 else max(1000, args.records // 4)
            for replicas in (1, 3):
                for what in ('bridge', 'js', 'core'):
                    if what == 'core' and replicas == 3:
                        continue
                    res = []
                    for c, rate in ((count, 0), (args.latency_records, args.latency_rate)):
                        n += 1
                        tag = '%d%d' % (os.getpid(), n)
                        if what == 'bridge':
                            res.append(bridge_case(build, urls, procs, tag, size, replicas,
                                                   c, rate))
                        else:
                            res.append(nats_case(build, urls, what, tag, size, replicas,
                                                 c, rate))
                    rows.append((size, '-' if what == 'core' else 'R%d' % replicas, what,
                                 res[0]['records_per_s'], res[1]['latency_ms_p50'],
                                 res[1]['latency_ms_p99']))
                    print('bridge_bench.py: %5d B %s %-6s %8.0f records/s, latency at %.0f/s: '
                          'p50 %.2f ms, p99 %.2f ms' % (rows[-1][:4] + (args.latency_rate,)
                                                        + rows[-1][4:]), flush=True)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print('\n| record | stream | path | records/s | p50 ms (at %.0f/s) | p99 ms |'
          % args.latency_rate)
    print('| ---: | --- | --- | ---: | ---: | ---: |')
    for r in rows:
        print('| %d B | %s | %s | %.0f | %.2f | %.2f |' % r)
    return 0


if __name__ == '__main__':
    sys.exit(main())
