#!/usr/bin/env python3
"""Generate build.ninja for shmring.

Usage: ./configure.py [--cc CC] [--prefix DIR]

One top-level build.ninja builds every variant out of tree, under
build/<variant>/.  The source lists come from globbing the source folders now;
build.ninja re-runs this script (with the same arguments) whenever one of those
folders changes, so adding or removing a file needs nothing but `ninja`.

Needs only Python 3's standard library.
"""

import argparse
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

os.chdir(os.path.dirname(os.path.abspath(__file__)))
import libflags   # how the library is compiled: the one place (libflags.py)
argv = sys.argv[1:]


# --- ninja syntax -----------------------------------------------------------
# The few helpers of ninja's misc/ninja_syntax.py that this file needs.

def escape(s):
    """Escape a variable value: only '$' is special there."""
    assert '\n' not in s, 'ninja values cannot contain newlines'
    return s.replace('$', '$$')


def escape_path(s):
    """Escape a path on a build line: '$', ' ' and ':' are special there."""
    return escape(s).replace(' ', '$ ').replace(':', '$:')


class Writer:
    width = 78

    def __init__(self):
        self.lines = []

    def comment(self, text):
        self.lines.append('# ' + text)

    def newline(self):
        self.lines.append('')

    def variable(self, key, value, indent=0):
        if isinstance(value, (list, tuple)):
            value = ' '.join(v for v in value if v)
        self.lines.append(('  ' * indent + '%s = %s' % (key, value)).rstrip())

    def rule(self, name, command, description=None, depfile=None, deps=None,
             pool=None, generator=False):
        self.lines.append('rule ' + name)
        self.variable('command', command, indent=1)
        for key, value in (('description', description), ('depfile', depfile),
                           ('deps', deps), ('pool', pool)):
            if value:
                self.variable(key, value, indent=1)
        if generator:
            self.variable('generator', '1', indent=1)

    def build(self, outputs, rule, inputs=(), implicit=(), order_only=(),
              variables=()):
        """Inputs and outputs are plain paths; they are escaped here."""
        as_list = lambda x: [x] if isinstance(x, str) else list(x)
        head = 'build %s: %s' % (
            ' '.join(escape_path(o) for o in as_list(outputs)), rule)
        words = [escape_path(i) for i in as_list(inputs)]
        if implicit:
            words.append('|')
            words += [escape_path(i) for i in as_list(implicit)]
        if order_only:
            words.append('||')
            words += [escape_path(i) for i in as_list(order_only)]
        line = ' '.join([head] + words)
        if len(line) > self.width and len(words) > 1:
            # One path per line: adding a source file is a one-line diff.
            line = ' $\n    '.join([head] + words)
        self.lines.append(line)
        for key, value in variables:
            self.variable(key, value, indent=1)

    def default(self, paths):
        self.lines.append('default ' + ' '.join(escape_path(p) for p in paths))

    def text(self):
        return '\n'.join(self.lines) + '\n'


# --- options ----------------------------------------------------------------

parser = argparse.ArgumentParser(
    description='Generate build.ninja for shmring (all variants, out of tree '
                'under build/<variant>/).')
parser.add_argument('--cc', default=None,
                    help='C compiler (default: $CC, else cc)')
parser.add_argument('--prefix', default='/usr/local',
                    help='install prefix for `ninja install` (default: '
                         '/usr/local; DESTDIR is read from the environment '
                         'at install time)')
parser.add_argument('--python', default='python3',
                    help='Python interpreter to build the shmring extension '
                         'for (default: python3 on PATH)')
parser.add_argument('--also-python', default='/usr/bin/python3',
                    help='a second interpreter that `ninja test-python` runs the '
                         'suite under too, against the same build, if it exists, '
                         'is another one and has the same EXT_SUFFIX (default: '
                         '/usr/bin/python3; "" for none)')
options = parser.parse_args(argv)

# Store what a re-run needs: the arguments as given, plus CC from the
# environment turned into --cc, since ninja re-runs us without that env.
configure_args = list(argv)
if options.cc is None:
    options.cc = os.environ.get('CC') or 'cc'
    if os.environ.get('CC'):
        configure_args.append('--cc=' + options.cc)
if not os.path.isabs(options.prefix):
    sys.exit('configure.py: --prefix must be an absolute path, not %r'
             % options.prefix)
if re.search(r"[\n|'\\&]", options.prefix):
    sys.exit('configure.py: --prefix may not contain a newline, |, \', \\ or &')
options.prefix = os.path.normpath(options.prefix)

cc = shlex.split(options.cc)


# --- dependency checks ------------------------------------------------------

warnings = []
found = []


def warn(msg):
    warnings.append(msg)


def run(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
    except OSError:
        return None
    return p.stdout.strip() if p.returncode == 0 else None


tmpdir = tempfile.mkdtemp(prefix='shmring-configure-')


def try_link(code, flags=(), libs=()):
    """True if `code` compiles and links with the chosen compiler."""
    src = os.path.join(tmpdir, 'try.c')
    with open(src, 'w') as f:
        f.write(code)
    return run(cc + list(flags) + [src, '-o', os.path.join(tmpdir, 'try')]
               + list(libs)) is not None


try:
    if shutil.which(cc[0]) is None:
        sys.exit('configure.py: C compiler %r not found: apt-get install gcc '
                 '(or pass --cc / set CC)' % options.cc)
    if not try_link('int main(void) { return 0; }\n', ['-std=c11']):
        sys.exit('configure.py: %r cannot build a C11 program: '
                 'apt-get install gcc' % options.cc)
    cc_version = run(cc + ['-dumpfullversion']) or run(cc + ['-dumpversion'])
    found.append('%s %s' % (options.cc, cc_version or ''))

    ninja_bin = shutil.which('ninja') or shutil.which('ninja-build')
    if ninja_bin:
        found.append('ninja %s' % (run([ninja_bin, '--version']) or ''))
    else:
        warn('ninja not found: apt-get install ninja-build')

    pkg_config = shutil.which('pkg-config')
    if not pkg_config:
        warn('pkg-config not found: apt-get install pkg-config '
             '(falling back to header checks)')

    def pkg(*args):
        return run([pkg_config] + list(args)) if pkg_config else None

    # Criterion: the test binary needs it; the library does not.
    have_criterion = try_link(
        '#include <criterion/criterion.h>\nTest(a, b) { cr_assert(1); }\n',
        libs=['-lcriterion'])
    if have_criterion:
        found.append('criterion %s' % (pkg('--modversion', 'criterion') or ''))
    else:
        warn('Criterion not found: apt-get install libcriterion-dev '
             '(the library still builds; the test targets fail until then)')

    # liburcu: programs (perf, stress, ...) may use it, so link them all
    # with it; liburcu-cds too, where present, for its lock-free queues.
    urcu_cflags, urcu_libs = [], []
    if pkg('--exists', 'liburcu') is not None:
        mods = ['liburcu'] + (['liburcu-cds']
                              if pkg('--exists', 'liburcu-cds') is not None
                              else [])
        # Leave system include dirs to the compiler (as -I they would lose
        # their "system header" status and leak warnings).
        urcu_cflags = [f for f in shlex.split(pkg('--cflags', *mods) or '')
                       if not f.startswith('-I/usr/include')]
        urcu_libs = shlex.split(pkg('--libs', *mods) or '-lurcu')
        found.append('liburcu %s' % pkg('--modversion', 'liburcu'))
    elif try_link('#include <urcu.h>\n'
                  'int main(void) { urcu_memb_register_thread(); return 0; }\n',
                  libs=['-lurcu', '-lurcu-common']):
        urcu_libs = ['-lurcu', '-lurcu-common']
        found.append('liburcu')
    else:
        warn('liburcu not found: apt-get install liburcu-dev')

    # libnats (nats.c): only the bridge/ program links it (docs/bridge.md).
    have_nats = try_link('#include <nats/nats.h>\n'
                         'int main(void) { jsPubOptions o; jsPubOptions_Init(&o);'
                         ' return nats_Open(-1) != NATS_OK; }\n', libs=['-lnats'])
    if have_nats:
        found.append('libnats %s' % (pkg('--modversion', 'libnats') or ''))
    else:
        warn('libnats not found: apt-get install libnats-dev (the shmring-nats '
             'bridge will not build)')

    # Sanitizer runtimes come with gcc on Debian; say so early if not.
    for name, flag in (('asan', '-fsanitize=address,undefined'),
                       ('tsan', '-fsanitize=thread')):
        if not try_link('int main(void) { return 0; }\n', [flag]):
            warn('%s %s cannot link: the %s variant will not build '
                 '(apt-get install gcc, which pulls in the sanitizer '
                 'runtimes)' % (options.cc, flag, name))
finally:
    shutil.rmtree(tmpdir, ignore_errors=True)

with open('include/shmring.h') as f:
    header = f.read()
version = '.'.join(
    re.search(r'#define\s+SHMRING_VERSION_%s\s+(\d+)' % part, header).group(1)
    for part in ('MAJOR', 'MINOR'))
soversion = version.split('.')[0]


# --- sources ----------------------------------------------------------------
# Globbed now; build.ninja depends on the folders, so ninja re-runs this
# script when a file is added to or removed from one of them.

def sources(pattern):
    return sorted(glob.glob(pattern))


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


lib_srcs = libflags.sources()
all_tests = sources('tests/*.c')
helper_srcs = [s for s in all_tests if os.path.basename(s).startswith('helper_')]
test_srcs = [s for s in all_tests if s not in helper_srcs]
# Folders with one program per .c file: <dir>/<prog>.c holds its main();
# a program of more files keeps the others in <dir>/<prog>/*.c.
program_dirs = ['stress', 'perf', 'demo']
programs = {d: sources(d + '/*.c') for d in program_dirs}
program_parts = {src: sources(os.path.splitext(src)[0] + '/*.c')
                 for d in program_dirs for src in programs[d]}
# perf/harness/*.c: the benchmark harness, all linked into one program,
# build/<variant>/perf/shmring-bench (docs/perf.md).
harness_srcs = sources('perf/harness/*.c')
# bridge/*.c: shmring-nats, one program, the only one linking libnats;
# bridge/tests/*.c: programs its cluster test drives (docs/bridge.md).
bridge_srcs = sources('bridge/*.c')
bridge_test_srcs = sources('bridge/tests/*.c')
# cli/*.c: the shmring(1) command, all linked into one program,
# build/<variant>/cli/shmring; man/*.scd: the manual pages (scdoc).
cli_srcs = sources('cli/*.c')
# tests/cli/helper_*.c: programs test_cli.py drives (what the tool cannot do).
cli_helper_srcs = sources('tests/cli/helper_*.c')
man_srcs = sources('man/*.scd')
# The folders to watch: those that exist and are not empty (git keeps no
# empty folder, so a fresh clone would not have one).
link_test_srcs = sources('tests/link/*.c')
source_dirs = [d for d in ['ring', 'tests', 'tests/link'] + program_dirs
               + ['perf/harness', 'cli', 'man', 'tests/cli', 'bridge', 'bridge/tests'] + sorted(
                   os.path.dirname(parts[0])
                   for parts in program_parts.values() if parts)
               if os.path.isdir(d) and os.listdir(d)]

if not lib_srcs:
    warn('no ring/*.c yet: the library targets will fail')


# --- build.ninja ------------------------------------------------------------

n = Writer()
n.comment('This file is generated by configure.py; edit that instead.')
n.comment('Regenerated automatically when a source folder changes.')
n.comment('configure arguments: ' + (' '.join(configure_args) or '(none)'))
n.newline()
n.variable('ninja_required_version', '1.7')
n.variable('builddir', 'build')
n.variable('python', 'python3')
n.variable('configure_args',
           escape(' '.join(shlex.quote(a) for a in configure_args)))
n.variable('cc', escape(options.cc))
n.variable('ar', 'ar')
n.variable('ld', 'ld')
n.variable('objcopy', 'objcopy')
n.variable('prefix', escape(options.prefix))
n.newline()

# The library's flags come from libflags.py (so do setup.py's and
# fuzz/build.sh's); the programs (perf, stress, ...) add liburcu, for perf's
# wfcqueue baseline.  The library itself needs only -pthread -lrt.
n.variable('cflags', escape(' '.join(libflags.CFLAGS + libflags.WARNINGS)))
n.variable('lib_libs', escape(' '.join(libflags.LIBS)))
n.variable('prog_cflags', escape(' '.join(urcu_cflags)))
n.variable('libs', escape(' '.join(urcu_libs + libflags.LIBS)))
n.newline()

VARIANTS = {v: (' '.join(c), ' '.join(l))
            for v, (c, l) in libflags.VARIANTS.items()}
for v, (cflags, ldflags) in VARIANTS.items():
    n.variable('cflags_' + v, cflags)
    n.variable('ldflags_' + v, ldflags)
n.newline()

n.comment('Rules.')
for v in VARIANTS:
    n.rule('cc_' + v,
           '$cc -MMD -MF $out.d $cflags $cflags_%s $extra_cflags -c $in -o $out'
           % v,
           depfile='$out.d', deps='gcc', description='CC %s $in' % v)
    n.rule('link_' + v,
           '$cc $ldflags_%s -o $out $in $extra_libs $libs' % v,
           description='LINK $out')
n.rule('ar', 'rm -f $out && $ar crs $out $in', description='AR $out')
# The static library's one object: the ring objects linked into one
# relocatable object whose hidden symbols (everything but SHMRING_API) are
# then made local, so libshmring.a defines no global symbol but the public
# API, as libshmring.so exports none (issue 10; tests/link/check.sh).
n.rule('relocatable',
       '$ld -r -o $out.tmp $in && $objcopy --localize-hidden $out.tmp $out '
       '&& rm -f $out.tmp',
       description='LD -r $out')
n.rule('solink',
       '$cc -shared -Wl,-soname,$soname -Wl,--no-undefined '
       '-Wl,--version-script=%s -o $out $in -Wl,--as-needed $lib_libs'
       % libflags.VERSION_SCRIPT,
       description='SOLINK $out')
n.rule('symlink', 'ln -sfn $target $out', description='SYMLINK $out')
n.rule('pkgconfig',
       "sed -e 's|@prefix@|$prefix|g' -e 's|@version@|$version|g' $in > $out",
       description='GEN $out')
n.rule('fail', 'echo $msg >&2; exit 1', description='FAIL $out')
n.rule('run', '$env $in $args', description='RUN $in', pool='console')
n.newline()

helper_dir_env = 'SHMRING_TEST_HELPER_DIR="$$(pwd -P)/build/%s/tests"'
san_env = {
    # Criterion's own runner leaks 48 bytes at exit: suppressed by name.
    'asan': 'ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 '
            'LSAN_OPTIONS=suppressions=$$(pwd -P)/tests/lsan.supp '
            'UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1',
    'tsan': 'TSAN_OPTIONS=halt_on_error=1',
}


phonies = set()   # the names of the phony targets, as they are made


extra_phony_inputs = {}   # name -> more inputs (the Python section adds to 'test')


def phony(name, inputs):
    phonies.add(name)
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    n.build(name, 'phony', inputs + extra_phony_inputs.get(name, []))


def fail(output, message):
    """An edge that prints `message` and fails: for targets that cannot be
    built here, so that asking for them says why."""
    n.build(output, 'fail',
            variables=[('msg', escape(shlex.quote('error: ' + message)))])


def obj(v, src):
    return 'build/%s/obj/%s.o' % (v, os.path.splitext(src)[0])


def compile_all(v, srcs, extra_cflags=''):
    objs = []
    for src in srcs:
        objs.append(obj(v, src))
        n.build(objs[-1], 'cc_' + v, src,
                variables=[('extra_cflags', extra_cflags)] if extra_cflags
                else [])
    return objs


# Two archives per variant:
#   build/<v>/libshmring.a           the public static library: one object,
#                                    its internals local (rule relocatable);
#                                    demo/ and tests/link/ link it, as an
#                                    application would;
#   build/<v>/libshmring-internal.a  the ring objects as they are (internal
#                                    symbols hidden but global): the tests,
#                                    stress, perf and the Python extension
#                                    link it, because some of them call the
#                                    library's internals (ring/*.h).
targets = {}   # variant -> what `ninja <variant>` builds
lib_objs = {}  # variant -> the ring objects
for v in VARIANTS:
    n.comment('Variant %s: build/%s/' % (v, v))
    lib = 'build/%s/libshmring.a' % v
    internal = 'build/%s/libshmring-internal.a' % v
    if lib_srcs:
        lib_objs[v] = compile_all(v, lib_srcs)
        one = 'build/%s/obj/libshmring.o' % v
        n.build(one, 'relocatable', lib_objs[v])
        n.build(lib, 'ar', one)
        n.build(internal, 'ar', lib_objs[v])
    else:
        fail(lib, 'no library sources (ring/*.c)')
        fail(internal, 'no library sources (ring/*.c)')
    targets[v] = [lib, internal]

    def program(out, srcs, extra_libs=(), archive=internal):
        n.build(out, 'link_' + v,
                compile_all(v, srcs, '$prog_cflags') + [archive],
                variables=[('extra_libs', ' '.join(extra_libs))] if extra_libs
                else [])
        targets[v].append(out)

    if v != 'tsan':   # TSan does not work under Criterion's runner
        for src in helper_srcs:
            program('build/%s/tests/%s' % (v, stem(src)), [src])
        tests_bin = 'build/%s/tests/shmring_tests' % v
        if not have_criterion:
            fail(tests_bin, 'Criterion is not installed: apt-get install '
                 'libcriterion-dev, then ./configure.py')
        elif not test_srcs:
            fail(tests_bin, 'no test sources (tests/*.c)')
        else:
            program(tests_bin, test_srcs, ['-lcriterion'])
    for d in program_dirs:
        if v == 'tsan' and d == 'demo':
            continue
        for src in programs[d]:
            # demo/ is an application: the public library only.
            program('build/%s/%s/%s' % (v, d, stem(src)),
                    [src] + program_parts[src],
                    archive=lib if d == 'demo' else internal)
    # tests/link/: programs that define the library's internal names
    # themselves, linked with the public static library (tests/link/check.sh).
    for src in link_test_srcs:
        program('build/%s/tests/link/%s-static' % (v, stem(src)), [src],
                archive=lib)
    if harness_srcs:
        # (liburcu, its wfcqueue, -lrt for mq_open and -pthread come with
        # $libs, as for every program)
        program('build/%s/perf/shmring-bench' % v, harness_srcs, ['-lm'])
    if cli_srcs:
        program('build/%s/cli/shmring' % v, cli_srcs)
        for src in cli_helper_srcs:
            program('build/%s/tests/cli/%s' % (v, stem(src)), [src])
    # The bridge in every variant, TSan's too (bridge/tests/race.py: libnats
    # is not instrumented, but the bridge's own threads' accesses are).
    if bridge_srcs and have_nats:
        program('build/%s/bridge/shmring-nats' % v, bridge_srcs, ['-lnats'])
    if v != 'tsan':
        for src in bridge_test_srcs:   # nats_*.c: the NATS baselines
            if stem(src).startswith('nats_'):
                if have_nats:
                    program('build/%s/bridge/tests/%s' % (v, stem(src)), [src],
                            ['-lnats'])
            else:
                program('build/%s/bridge/tests/%s' % (v, stem(src)), [src])
    n.newline()

n.comment('Release extras: shared library and pkg-config files.')
so_real = 'build/release/libshmring.so.%s' % version
so_name = 'libshmring.so.%s' % soversion
if lib_srcs:
    n.build(so_real, 'solink', lib_objs['release'],
            implicit=libflags.VERSION_SCRIPT,
            variables=[('soname', so_name)])
else:
    fail(so_real, 'no library sources (ring/*.c)')
n.build('build/release/' + so_name, 'symlink', so_real,
        variables=[('target', os.path.basename(so_real))])
n.build('build/release/libshmring.so', 'symlink', 'build/release/' + so_name,
        variables=[('target', so_name)])
n.build('build/release/shmring.pc', 'pkgconfig', 'shmring.pc.in',
        variables=[('version', version)])
# For use before installing (PKG_CONFIG_PATH=build/release): absolute paths
# into this tree, found when it is built, so build.ninja names no machine.
n.rule('pkgconfig_uninstalled',
       'top="$$(pwd -P)"; sed -e "s|@srcdir@|$$top|g" '
       '-e "s|@libdir@|$$top/build/release|g" -e "s|@version@|$version|g" '
       '$in > $out',
       description='GEN $out')
n.build('build/release/shmring-uninstalled.pc', 'pkgconfig_uninstalled',
        'shmring-uninstalled.pc.in', variables=[('version', version)])
release_lib = ['build/release/libshmring.a', so_real, 'build/release/' + so_name,
               'build/release/libshmring.so', 'build/release/shmring.pc']
targets['release'] += release_lib[1:] + [
    'build/release/shmring-uninstalled.pc']
# tests/link/ against the shared library (the static builds are above).
n.rule('link_shared_release',
       '$cc -o $out $in -Lbuild/release -lshmring '
       "'-Wl,-rpath,$$ORIGIN/../..' $lib_libs",
       description='LINK $out')
link_shared = []
for src in link_test_srcs:
    link_shared.append('build/release/tests/link/%s-shared' % stem(src))
    n.build(link_shared[-1], 'link_shared_release', obj('release', src),
            implicit='build/release/libshmring.so')
targets['release'] += link_shared
n.newline()

# --- Python extension (python/; see docs/python.md) --------------------------
# The `shmring` package for the interpreter given by --python (python3 on
# PATH): python/shmring/*.c compiled like the release library and linked with
# build/release/libshmring-internal.a into build/python/obj/_shmring.so,
# which build/python/shmring/_shmring<EXT_SUFFIX> links to, beside a symlink
# to python/shmring/__init__.py, so that PYTHONPATH=build/python imports it.
# The interpreter's include directory and EXT_SUFFIX are asked of it when
# building, not written here, so build.ninja names no Python version or path
# and a fresh machine with another Python builds from it as it is.  `ninja python` builds it (the default
# build does too), `ninja test-python` runs the unittest suite in
# python/tests, and `ninja test` runs that suite after the Criterion suite.
# (`pip install --no-build-isolation .` builds the same package via setup.py.)

def python_config(python):
    """(include dir, EXT_SUFFIX, version) of `python`, or None."""
    out = run([python, '-c',
               'import sys, sysconfig; print(sysconfig.get_paths()["include"]); '
               'print(sysconfig.get_config_var("EXT_SUFFIX")); '
               'print("%d.%d.%d" % sys.version_info[:3])'])
    if not out or len(out.splitlines()) != 3:
        return None
    return out.splitlines()


py_ext_ok = False
py_cfg = python_config(options.python)
if py_cfg is None:
    warn('%s not found or not working: the Python extension (ninja python, '
         'test-python) will not build' % options.python)
elif not os.path.exists(os.path.join(py_cfg[0], 'Python.h')):
    warn('%s has no Python.h in %s: the Python extension will not build '
         '(apt-get install python3-dev)' % (options.python, py_cfg[0]))
else:
    py_ext_ok = True
    found.append('python %s' % py_cfg[2])

py_srcs = sources('python/shmring/*.c')
py_dir = 'build/python/shmring'
py_targets = []
also_ok = False
n.comment('Python extension: build/python/shmring/.')
if py_ext_ok and py_srcs and lib_srcs:
    n.variable('python_bin', escape(options.python))
    n.variable('pyext_cflags', escape(' '.join(libflags.PYEXT_CFLAGS)))
    n.rule('cc_pyext',
           '$cc -MMD -MF $out.d $cflags $cflags_release $pyext_cflags '
           '-I"$$($python_bin -c \'import sysconfig; '
           'print(sysconfig.get_paths()["include"])\')" -c $in -o $out',
           depfile='$out.d', deps='gcc', description='CC python $in')
    n.rule('link_pyext',
           '$cc -shared -o $out $in $lib_libs && '
           'sfx="$$($python_bin -c \'import sysconfig; '
           'print(sysconfig.get_config_var("EXT_SUFFIX"))\')" && '
           'rm -f %s/_shmring.*so && '
           'ln -sfn ../obj/_shmring.so "%s/_shmring$$sfx"' % (py_dir, py_dir),
           description='LINK $out')
    py_objs = []
    for src in py_srcs:
        py_objs.append('build/python/obj/%s.o' % stem(src))
        n.build(py_objs[-1], 'cc_pyext', src)
    py_so = 'build/python/obj/_shmring.so'
    n.build(py_so, 'link_pyext',
            py_objs + ['build/release/libshmring-internal.a'])
    n.build(py_dir + '/__init__.py', 'symlink', 'python/shmring/__init__.py',
            variables=[('target', '../../../python/shmring/__init__.py')])
    py_targets = [py_so, py_dir + '/__init__.py']
    n.rule('run_python',
           'PYTHONPATH="$$(pwd -P)/build/python" $python_bin -m unittest '
           'discover -s python/tests -t python/tests $args',
           description='PYTHON unittest python/tests ($python_bin)', pool='console')
    # standalone, and (for `ninja test`) after the Criterion suite's run;
    # then under the second interpreter, if it can load the same build
    n.build('build/.run/test-python', 'run_python', implicit=py_targets)
    n.build('build/.run/test-python-after-c', 'run_python',
            implicit=py_targets + ['build/.run/test'])
    also = options.also_python
    also_cfg = python_config(also) if also and os.path.exists(also) and \
        os.path.realpath(also) != os.path.realpath(shutil.which(options.python) or '') \
        else None
    if also_cfg and also_cfg[1] == py_cfg[1]:
        also_ok = True
        found.append('also python %s' % also_cfg[2])
        for t in ('build/.run/test-python', 'build/.run/test-python-after-c'):
            n.build(t + '-also', 'run_python', implicit=py_targets + [t],
                    variables=[('python_bin', escape(also))])
    elif also_cfg:
        warn('%s has another EXT_SUFFIX (%s): the suite runs under %s only'
             % (also, also_cfg[1], options.python))
else:
    why = ('no python/shmring/*.c' if not py_srcs else
           'no library sources (ring/*.c)' if not lib_srcs else
           'Python headers not found for %s (see configure warnings)'
           % options.python)
    fail('build/.run/python', why)
    fail('build/.run/test-python', why)
    py_targets = ['build/.run/python']
phony('python', py_targets)
phony('test-python', ['build/.run/test-python'] +
      (['build/.run/test-python-also'] if also_ok else []))
if py_ext_ok and py_srcs and lib_srcs:
    extra_phony_inputs.setdefault('test', []).extend(
        ['build/.run/test-python-after-c'] + (
            ['build/.run/test-python-after-c-also'] if also_ok else []))
n.newline()

# --- the shmring command and the manual (cli/, man/) -------------------------
# `ninja man` turns each man/NAME.N.scd into build/man/NAME.N with scdoc, and
# writes a one-line `.so` page for every other name its NAME section lists
# (`shmring_put, shmring_get - ...`), so that `man shmring_get` finds
# shmring_put(3).  `ninja install` also installs build/release/cli/shmring in
# PREFIX/bin and the pages in PREFIX/share/man.  `ninja test` runs that same
# install into build/stage (DESTDIR) and then tests/cli/*.py against what it
# installed: the tool against real rings, and every page.

def man_names(path):
    """The names a page's NAME section lists: 'a, b - what' gives [a, b]."""
    with open(path) as f:
        m = re.search(r'^# NAME\s*\n+(.+?)\s+-\s', f.read(), re.M)
    return [x.strip() for x in m.group(1).split(',')] if m else []


scdoc = shutil.which('scdoc')
if man_srcs and not scdoc:
    warn('scdoc not found: apt-get install scdoc (ninja man, install and '
         'test need it)')
man_pages = []
n.comment('Manual pages: build/man/.')
if man_srcs and scdoc:
    n.rule('scdoc', 'scdoc < $in > $out', description='SCDOC $out')
    n.rule('man_so', "echo '.so $target' > $out", description='MAN-SO $out')
    for src in man_srcs:
        page = os.path.basename(src)[:-len('.scd')]       # shmring_put.3
        name, section = page.rsplit('.', 1)
        man_pages.append('build/man/' + page)
        n.build(man_pages[-1], 'scdoc', src)
        for alias in man_names(src):
            if alias != name:
                man_pages.append('build/man/%s.%s' % (alias, section))
                n.build(man_pages[-1], 'man_so',
                        variables=[('target', 'man%s/%s' % (section, page))])
    phony('man', man_pages)
else:
    fail('build/.run/man', 'no man/*.scd, or scdoc not installed')
    phony('man', 'build/.run/man')

cli_bin = 'build/release/cli/shmring'
if cli_srcs and man_pages:
    # $destdir: the environment's DESTDIR for `ninja install`, build/stage
    # for the tests.
    n.rule('install_cli',
           'set -e; $before d="$destdir"%s; '
           'install -d "$$d/bin" "$$d/share/man/man1" "$$d/share/man/man3" '
           '"$$d/share/man/man7"; '
           'install -m 755 %s "$$d/bin/"; '
           'for p in $pages; do install -m 644 "$$p" "$$d/share/man/man$${p##*.}/"; done; '
           '$after' % (escape(shlex.quote(options.prefix)), cli_bin),
           description='INSTALL shmring(1) and the manual $out')
    cli_install_inputs = [cli_bin] + man_pages
    n.build('build/.run/install-cli', 'install_cli', implicit=cli_install_inputs,
            variables=[('destdir', '$${DESTDIR:-}'), ('pages', ' '.join(man_pages)),
                       ('after', 'echo "installed shmring(1) and %d pages in $$d"'
                        % len(man_pages))])
    extra_phony_inputs['install'] = ['build/.run/install-cli']
    stage = 'build/stage/installed'
    n.build(stage, 'install_cli', implicit=cli_install_inputs,
            variables=[('before', 'rm -rf build/stage;'),
                       ('destdir', '$$(pwd -P)/build/stage'),
                       ('pages', ' '.join(man_pages)), ('after', 'touch ' + stage)])
    stage_env = 'SHMRING_INSTALLED="$$(pwd -P)/build/stage"%s' % escape(
        shlex.quote(options.prefix))
    for script in sources('tests/cli/*.py'):
        target = stem(script).replace('test_', 'test-', 1)  # test-cli, test-man
        run = 'build/.run/' + target
        n.build(run, 'run', script, implicit=[stage] + [
                    'build/release/tests/cli/' + stem(h) for h in cli_helper_srcs],
                variables=[('env', stage_env + ' SHMRING_CLI_HELPERS='
                            '"$$(pwd -P)/build/release/tests/cli"'), ('args', '')])
        phony(target, run)
        extra_phony_inputs.setdefault('test', []).append(run)
elif cli_srcs:
    fail('build/.run/install-cli', 'the manual pages cannot be built: '
         'apt-get install scdoc, then ./configure.py')
    extra_phony_inputs['install'] = ['build/.run/install-cli']
n.newline()

# `ninja test-bridge`: bridge/tests/cluster.py against a 3-node JetStream
# cluster it starts on loopback (skips, saying why, without nats-server);
# `ninja test` runs it after the Criterion suite with a CI-sized count.
bridge_test_deps = (['build/release/bridge/shmring-nats'] if have_nats else []) + \
    ['build/release/bridge/tests/%s' % stem(s) for s in bridge_test_srcs
     if have_nats or not stem(s).startswith('nats_')]
if bridge_srcs and os.path.exists('bridge/tests/cluster.py'):
    n.rule('run_bridge_test', '$python bridge/tests/cluster.py --build build/release $args',
           description='BRIDGE cluster test', pool='console')
    n.build('build/.run/test-bridge', 'run_bridge_test', implicit=bridge_test_deps)
    n.build('build/.run/test-bridge-after-c', 'run_bridge_test',
            implicit=bridge_test_deps + ['build/.run/test'],
            variables=[('args', '--records 100000')])
    phony('test-bridge', 'build/.run/test-bridge')
    extra_phony_inputs.setdefault('test', []).append('build/.run/test-bridge-after-c')
if bridge_srcs and os.path.exists('bridge/tests/race.py'):
    # `ninja test-bridge-tsan`: the out bridge built with TSan on a real
    # cluster (bridge/tests/race.py); `ninja test` runs it after the cluster test.
    tsan_bridge = ['build/tsan/bridge/shmring-nats'] if have_nats else []
    n.rule('run_bridge_race', '$python bridge/tests/race.py --tsan-build build/tsan '
           '--build build/release', description='BRIDGE TSan test', pool='console')
    n.build('build/.run/test-bridge-tsan', 'run_bridge_race',
            implicit=tsan_bridge + bridge_test_deps)
    n.build('build/.run/test-bridge-tsan-after', 'run_bridge_race',
            implicit=tsan_bridge + bridge_test_deps + ['build/.run/test-bridge-after-c'])
    phony('test-bridge-tsan', 'build/.run/test-bridge-tsan')
    extra_phony_inputs.setdefault('test', []).append('build/.run/test-bridge-tsan-after')
n.newline()

n.comment('Build a variant: ninja release|debug|asan|tsan|all.')
for v in VARIANTS:
    phony(v, targets[v])
phony('all', list(VARIANTS))
n.default(['release'] + (['python'] if py_ext_ok and py_srcs and lib_srcs else []))
n.newline()

n.comment('Run things (always out of date; output goes straight to the '
          'terminal).')


def run_target(name, binary, args='', env='', implicit=(), missing=None):
    """`ninja name` builds what it needs, then runs `binary args`."""
    stamp = 'build/.run/' + name   # never created, so it always runs
    if missing:
        fail(stamp, missing)
    else:
        n.build(stamp, 'run', binary, implicit=implicit,
                variables=[('env', env), ('args', args)])
    phony(name, stamp)


# tests/link/check.sh: the library's boundary (exports, collisions,
# pkg-config before installing), with `ninja test` and `ninja test-asan`.
if lib_srcs and link_test_srcs:
    for v in ('release', 'asan'):
        deps = ['build/%s/libshmring.a' % v] + [
            'build/%s/tests/link/%s-static' % (v, stem(s))
            for s in link_test_srcs]
        if v == 'release':
            deps += release_lib + link_shared + [
                'build/release/shmring-uninstalled.pc']
        stamp = 'build/.run/test-link-' + v
        n.build(stamp, 'run', 'tests/link/check.sh', implicit=deps,
                variables=[('env', san_env['asan'] if v == 'asan' else ''),
                           ('args', 'build/' + v)])
        extra_phony_inputs.setdefault(
            'test' if v == 'release' else 'test-' + v, []).append(stamp)
    phony('test-link', 'build/.run/test-link-release')


for v in ('release', 'debug', 'asan'):
    env = helper_dir_env % v
    if v in san_env:
        env += ' ' + san_env[v]
    run_target('test' if v == 'release' else 'test-' + v,
               'build/%s/tests/shmring_tests' % v,
               args='--color=never -j2', env=env,
               implicit=['build/%s/tests/%s' % (v, stem(s))
                         for s in helper_srcs])


def program_target(name, v, d, prog, args='', env=''):
    path = '%s/%s.c' % (d, prog)
    run_target(name, 'build/%s/%s/%s' % (v, d, prog), args=args, env=env,
               missing=None if path in programs[d] else
               '%s does not exist (yet): nothing to run' % path)


program_target('stress-tsan', 'tsan', 'stress', 'stress_threads',
               args='--seconds 10', env=san_env['tsan'])
program_target('demo', 'release', 'demo', 'demo')
program_target('bench-quick', 'release', 'perf', 'bench_quick')
program_target('bench-pinned', 'release', 'perf', 'bench_pinned')
# `ninja bench`: the harness's default suite (docs/perf.md), JSON and plots
# under build/bench/; `ninja bench-docs` regenerates docs/perf-results.*.
harness_bin = 'build/release/perf/shmring-bench'
harness_missing = None if harness_srcs else 'perf/harness/*.c does not exist'
run_target('bench', harness_bin,
           args='--json build/bench/results.json --plot build/bench/plots',
           missing=harness_missing)
run_target('bench-docs', harness_bin,
           args='--json docs/perf-results.json --plot docs/perf-plots '
                '--markdown docs/perf-results.md',
           missing=harness_missing)
n.newline()

n.comment('ninja install: PREFIX from configure --prefix, DESTDIR from the '
          'environment.')
n.rule('install',
       'set -e; d="$${DESTDIR:-}"%s; '
       'install -d "$$d/include" "$$d/lib/pkgconfig"; '
       'install -m 644 include/*.h "$$d/include/"; '
       'install -m 644 build/release/libshmring.a "$$d/lib/"; '
       'install -m 755 %s "$$d/lib/"; '
       'ln -sfn %s "$$d/lib/%s"; '
       'ln -sfn %s "$$d/lib/libshmring.so"; '
       'install -m 644 build/release/shmring.pc "$$d/lib/pkgconfig/"; '
       '%s'
       'echo "installed shmring %s in $$d"'
       % (escape(shlex.quote(options.prefix)), so_real,
          os.path.basename(so_real), so_name, so_name,
          'install -d "$$d/bin"; install -m 755 build/release/bridge/shmring-nats '
          '"$$d/bin/"; ' if bridge_srcs and have_nats else '', version),
       description='INSTALL', pool='console')
n.build('build/.run/install', 'install', implicit=release_lib +
        (['build/release/bridge/shmring-nats'] if bridge_srcs and have_nats else []))
phony('install', 'build/.run/install')
n.newline()

n.comment('Regenerate this file when configure.py or a source folder changes.')
# Each folder is also a phony target with no inputs, so that one that goes
# away (git does not keep an empty folder) re-runs configure instead of
# stopping ninja with "missing and no known rule to make it".  A folder whose
# name is also a target here (demo) cannot be named as an input at all: ninja
# would take it for the target.  Such a folder is watched through a symlink
# to it instead (ninja stats through symlinks).
regen_inputs = ['configure.py', 'include/shmring.h']
# (generator = 1: made here too, so ninja needs no log entry for it, and
# `ninja -t clean` leaves it.)
n.rule('srcdir_link', 'ln -sfn ../../$dir $out',
       description='WATCH $dir/', generator=True)
for d in source_dirs:
    if d in phonies:
        link = 'build/.srcdirs/' + d
        n.build(link, 'srcdir_link', variables=[('dir', d)])
        regen_inputs.append(link)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.lexists(link):
            os.remove(link)
        os.symlink('../../' + d, link)
    else:
        n.build(d, 'phony')
        regen_inputs.append(d)
n.rule('configure', '$python configure.py $configure_args',
       description='CONFIGURE build.ninja', generator=True)
n.build('build.ninja', 'configure', implicit=regen_inputs)

text = n.text()
tmp = 'build.ninja.tmp'
with open(tmp, 'w') as f:
    f.write(text)
os.replace(tmp, 'build.ninja')

for msg in warnings:
    print('configure.py: warning: ' + msg, file=sys.stderr)
print('configure.py: found %s' % ', '.join(found))
print('configure.py: wrote build.ninja: %d library, %d test, %d helper, '
      '%s sources; prefix %s'
      % (len(lib_srcs), len(test_srcs), len(helper_srcs),
         ', '.join('%d %s' % (len(programs[d]), d) for d in program_dirs),
         options.prefix))
