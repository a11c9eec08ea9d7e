"""PEP 517 build backend for shmring's Python package.

It is setuptools.build_meta when the `wheel` package is installed.  Without
it (setuptools < 70.1 cannot make a wheel then, and with no network pip
cannot fetch it), build_wheel runs `setup.py build` and packs the result
into a wheel itself: a wheel is a zip file with a small .dist-info folder.
So `pip install --no-build-isolation .` works offline either way.
"""
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile

from setuptools import build_meta as _setuptools

build_sdist = _setuptools.build_sdist
get_requires_for_build_sdist = _setuptools.get_requires_for_build_sdist

try:
    import wheel  # noqa: F401
    HAVE_WHEEL = True
except ImportError:
    HAVE_WHEEL = False

NAME = 'shmring'
VERSION = '0.1'
SUMMARY = 'multiprocessing-compatible queues in shared memory (shmring)'

if HAVE_WHEEL:
    get_requires_for_build_wheel = _setuptools.get_requires_for_build_wheel
    prepare_metadata_for_build_wheel = _setuptools.prepare_metadata_for_build_wheel
    build_wheel = _setuptools.build_wheel
else:
    def get_requires_for_build_wheel(config_settings=None):
        return []

    def _tag():
        impl = 'cp%d%d' % sys.version_info[:2]
        abi = impl + (sys.abiflags if hasattr(sys, 'abiflags') else '')
        plat = sysconfig.get_platform().replace('-', '_').replace('.', '_')
        return '%s-%s-%s' % (impl, abi, plat)

    def _record_line(path, data):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
        return '%s,sha256=%s,%d' % (path, digest.rstrip(b'=').decode(), len(data))

    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        tmp = tempfile.mkdtemp(prefix='shmring-wheel-')
        try:
            subprocess.check_call([sys.executable, 'setup.py', '-q', 'build',
                                   '--build-base', tmp])
            libdir = next(os.path.join(tmp, d) for d in sorted(os.listdir(tmp))
                          if d.startswith('lib') and
                          os.path.isdir(os.path.join(tmp, d, NAME)))
            tag = _tag()
            dist_info = '%s-%s.dist-info' % (NAME, VERSION)
            wheel_name = '%s-%s-%s.whl' % (NAME, VERSION, tag)
            files = []
            for root, _, names in os.walk(os.path.join(libdir, NAME)):
                for n in sorted(names):
                    full = os.path.join(root, n)
                    files.append((os.path.relpath(full, libdir), open(full, 'rb').read()))
            readme = ''
            if os.path.exists('python/README.md'):
                readme = open('python/README.md').read()
            meta = ('Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\n'
                    'Requires-Python: >=3.9\n'
                    'Description-Content-Type: text/markdown\n\n%s'
                    % (NAME, VERSION, SUMMARY, readme)).encode()
            whl = ('Wheel-Version: 1.0\nGenerator: shmring_build\n'
                   'Root-Is-Purelib: false\nTag: %s\n' % tag).encode()
            files += [(dist_info + '/METADATA', meta),
                      (dist_info + '/WHEEL', whl),
                      (dist_info + '/top_level.txt', (NAME + '\n').encode())]
            record = [_record_line(p, d) for p, d in files]
            record.append(dist_info + '/RECORD,,')
            files.append((dist_info + '/RECORD', ('\n'.join(record) + '\n').encode()))
            os.makedirs(wheel_directory, exist_ok=True)
            with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), 'w',
                                 zipfile.ZIP_DEFLATED) as z:
                for p, d in files:
                    z.writestr(p, d)
            return wheel_name
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
