#!/usr/bin/env python3
"""The out bridge under ThreadSanitizer, against a real 3-node JetStream cluster.

    python3 bridge/tests/race.py [--tsan-build build/tsan] [--build build/release]
                                 [--records N] [--keep]

shmring-nats out has two threads on its window: the main thread peeks and
publishes, the nats.c ack thread marks entries acknowledged and releases them
(pop_acked).  A field of the window read outside the lock once let a peek
overwrite a live span (its op record leaked: "peek: too many operations in
flight on this handle" after a resync; docs/bridge.md).  This runs the bridge
built with -fsanitize=thread (halt_on_error: the first report ends it with
status 66) over a ring made with SHMRING_REDELIVER, 2 producers putting N
records in all, until the stream holds all of them, then stops it with
SIGTERM.  It passes if the bridge reported no race, exited 0 and the stream
holds exactly N records.  (libnats is not instrumented: races inside it are
not seen, races in the bridge's own code, the ack handler included, are.)

Skips (exit 0, saying so) without nats-server on PATH.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from cluster import Cluster, Procs  # noqa: E402  (the same cluster set-up)


def log(msg):
    print('race.py: ' + msg, flush=True)


def run(args, procs, tmp):
    bridge = os.path.join(os.path.abspath(args.tsan_build), 'bridge', 'shmring-nats')
    tool = os.path.join(os.path.abspath(args.build), 'bridge', 'tests', 'bridge_tool')
    for path in (bridge, tool):
        if not os.path.exists(path):
            raise RuntimeError('%s is missing: run ninja first' % path)
    cluster = Cluster(procs, tmp)
    for node in cluster.nodes:
        cluster.start(node)
    cluster.wait_meta_leader()
    tag = '%d' % os.getpid()
    ring, stream, subject = 'bridge-race-%s' % tag, 'BR%s' % tag, 'br.%s' % tag
    args.cleanup_rings = (ring,)
    env = dict(os.environ, TSAN_OPTIONS='halt_on_error=1')
    procs.start('out', [bridge, 'out', '--ring', ring, '--servers', cluster.urls(),
                        '--stream', stream, '--subject', subject, '--replicas', '1',
                        '--capacity', str(4 << 20), '--max-record', str(64 << 10),
                        '--stats-interval', '5'], env=env)
    per = args.records // 2
    for p in range(2):
        procs.start('produce-%d' % p, [tool, 'produce', '--ring', ring, '--producer', str(p),
                                      '--count', str(per)])
    t0 = time.time()
    deadline = t0 + args.timeout
    stored = 0
    while stored < 2 * per:
        if procs.live['out'].poll() is not None:
            break
        if time.time() > deadline:
            raise RuntimeError('%d of %d records stored in %d s' % (stored, 2 * per,
                                                                    args.timeout))
        time.sleep(0.5)
        stored = cluster.stream(stream)[1]
    log('%d records stored in %.1f s' % (stored, time.time() - t0))
    procs.signal('out', signal.SIGTERM)
    rc = procs.wait('out', 60)
    with open(os.path.join(tmp, 'out.log'), errors='replace') as f:
        text = f.read()
    errors = []
    races = text.count('WARNING: ThreadSanitizer')
    if races:
        errors.append('ThreadSanitizer: %d report(s) in the out bridge' % races)
    if rc != 0:
        errors.append('out bridge exit status %r' % rc)
    stored = cluster.stream(stream)[1]
    if stored != 2 * per:
        errors.append('the stream holds %d records, not %d' % (stored, 2 * per))
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--tsan-build', default=os.path.join(ROOT, 'build', 'tsan'))
    ap.add_argument('--build', default=os.path.join(ROOT, 'build', 'release'))
    ap.add_argument('--records', type=int, default=60000)
    ap.add_argument('--timeout', type=float, default=300)
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder')
    args = ap.parse_args()
    if not shutil.which('nats-server'):
        log('SKIP: nats-server is not on PATH (apt-get install nats-server)')
        return 0

    def on_term(sig, frame):
        raise SystemExit('race.py: signal %d' % sig)
    signal.signal(signal.SIGTERM, on_term)
    tmp = tempfile.mkdtemp(prefix='shmring-bridge-race-')
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
        for ring in args.cleanup_rings:
            subprocess.run([tool, 'unlink', '--ring', ring])
    if errors:
        for name in sorted(procs.live):
            log('--- %s.log (last lines)\n%s' % (name, procs.tail(name, 40)))
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
