#!/usr/bin/env python3
"""How libshmring is compiled: the one place that says it (issue 10).

Three recipes compile ring/*.c, and all three take their flags from here:
  configure.py  -> build.ninja (the library, its tests and tools, the
                   in-tree Python extension),
  setup.py      -> the Python package (pip install .),
  fuzz/build.sh -> the fuzz targets, via `python3 libflags.py --cflags`.
Each recipe adds only what is its own (sanitizers, optimisation of its
variant, Python's headers), never a second copy of these.

The library needs a C11 compiler, -pthread and -lrt, nothing else: no
liburcu (only perf's wfcqueue baseline links that, through configure.py).

  python3 libflags.py --cflags     library compile flags (incl. warnings)
  python3 libflags.py --libs       what a program linking ring/*.c needs
  python3 libflags.py --sources    ring/*.c

Needs only Python 3's standard library.
"""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Language, feature macros, position independence (the objects go into
# libshmring.so and the Python extension too) and the library boundary:
# everything is hidden unless its declaration in include/ says SHMRING_API.
CFLAGS = ['-std=c11', '-D_GNU_SOURCE', '-fPIC', '-pthread',
          '-fvisibility=hidden', '-Iinclude', '-Iring']

# Warnings the library is kept free of.
WARNINGS = ['-Wall', '-Wextra', '-Wshadow', '-Wstrict-prototypes',
            '-Wmissing-prototypes']

# Optimisation and checks per variant: (compile flags, link flags).
VARIANTS = {
    'release': (['-O2', '-g', '-DNDEBUG'], []),
    'debug': (['-O0', '-g3', '-DSHMRING_DEBUG'], []),
    'asan': (['-O1', '-g', '-fsanitize=address,undefined',
              '-fno-omit-frame-pointer', '-fno-sanitize-recover=undefined'],
             ['-fsanitize=address,undefined']),
    'tsan': (['-O1', '-g', '-fsanitize=thread'], ['-fsanitize=thread']),
}

# What the library links with (and so every program or module holding it).
LIBS = ['-pthread', '-lrt']

# The shared library's exports (ld --version-script).
VERSION_SCRIPT = 'ring/version.map'

# Extra flags for the Python extension's own sources (python/shmring/*.c):
# CPython's headers and method tables trip these two.
PYEXT_CFLAGS = ['-Wno-unused-parameter', '-Wno-missing-field-initializers']


def sources(root=HERE):
    """The library's sources, relative to `root` (the source tree)."""
    return sorted(os.path.relpath(p, root)
                  for p in glob.glob(os.path.join(root, 'ring', '*.c')))


def main(argv):
    out = {'--cflags': CFLAGS + WARNINGS, '--libs': LIBS,
           '--sources': sources()}
    if len(argv) != 1 or argv[0] not in out:
        sys.exit('usage: libflags.py --cflags|--libs|--sources')
    print(' '.join(out[argv[0]]))


if __name__ == '__main__':
    main(sys.argv[1:])
