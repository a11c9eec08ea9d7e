"""Build and install the shmring Python package (the C extension compiles
ring/*.c directly, so nothing but a C compiler and Python's headers is
needed):

    pip install --no-build-isolation .

docs/python.md has the details; `ninja` builds the same extension in-tree
(build/python/) for the test suite.
"""
import glob
import os

from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))
os.chdir(here)          # the source paths below are relative to this file

ring_sources = sorted(glob.glob('ring/*.c'))
if not ring_sources:
    raise SystemExit('setup.py: no ring/*.c: run it from the shmring source tree')

ext = Extension(
    'shmring._shmring',
    sources=sorted(glob.glob('python/shmring/*.c')) + ring_sources,
    include_dirs=['include', 'ring'],
    define_macros=[('_GNU_SOURCE', '1'), ('NDEBUG', '1')],
    extra_compile_args=['-std=c11', '-O2', '-pthread', '-fno-strict-aliasing'],
    extra_link_args=['-pthread'],
    libraries=['rt'],
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
