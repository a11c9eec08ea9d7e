"""Build and install the shmring Python package:

    pip install --no-build-isolation .

The C extension compiles ring/*.c and python/shmring/*.c itself, with the
library's flags from libflags.py (the one place that says how libshmring is
compiled), so nothing but a C compiler and Python's headers is needed: the
library uses only libc (-pthread -lrt), no liburcu.

docs/python.md has the details; `ninja` builds the same extension in-tree
(build/python/) for the test suite.
"""
import glob
import os
import sys

from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))
os.chdir(here)          # the source paths below are relative to this file
sys.path.insert(0, here)
import libflags  # noqa: E402  (the library's flags; needs the path above)

ring_sources = libflags.sources(here)
if not ring_sources:
    raise SystemExit('setup.py: no ring/*.c: run it from the shmring source tree')
py_sources = sorted(glob.glob('python/shmring/*.c'))

ext = Extension(
    'shmring._shmring',
    sources=py_sources + ring_sources,
    extra_compile_args=(libflags.CFLAGS + libflags.VARIANTS['release'][0]
                        + libflags.PYEXT_CFLAGS),
    extra_link_args=libflags.LIBS,
)

setup(
    name='shmring',
    version='0.1',
    description='multiprocessing-compatible queues in shared memory (shmring)',
    long_description=open('python/README.md').read()
    if os.path.exists('python/README.md') else '',
    long_description_content_type='text/markdown',
    license='see the shmring repository',
    python_requires='>=3.9',
    package_dir={'': 'python'},
    packages=['shmring'],
    ext_modules=[ext],
    zip_safe=False,
)
