#!/usr/bin/env python3
"""The installed manual: every public function in include/*.h has a page that
`man NAME` finds, every page renders with `man -l` without a warning, and
`mandoc -Tlint` reports no error in any.

Run by `ninja test` (ninja test-man) with SHMRING_INSTALLED=<the prefix that
`ninja install` filled, with DESTDIR=build/stage>.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAN = os.path.join(os.environ.get('SHMRING_INSTALLED', ''), 'share', 'man')
ENV = dict(os.environ, MANWIDTH='80', MAN_KEEP_FORMATTING='0', LC_ALL='C.UTF-8',
           MANPAGER='cat', PAGER='cat')


def public_functions():
    """Every function declared (or defined inline) in include/*.h."""
    names = set()
    for h in glob.glob(os.path.join(ROOT, 'include', '*.h')):
        with open(h) as f:
            text = re.sub(r'/\*.*?\*/', ' ', f.read(), flags=re.S)
        text = re.sub(r'^\s*#.*$', ' ', text, flags=re.M)
        for m in re.finditer(r'^[ \t]*(?:SHMRING_API\s+)?(?:static\s+inline\s+)?(?:const\s+)?'
                             r'(?:struct\s+\w+|\w+)[\s*]+(shmring_\w+)\s*\(', text, re.M):
            names.add(m.group(1))
    return sorted(names)


def pages():
    return sorted(glob.glob(os.path.join(MAN, 'man[137]', '*.[137]')))


class Manual(unittest.TestCase):
    def test_the_header_scan_finds_the_api(self):
        funcs = public_functions()
        for f in ('shmring_create', 'shmring_put', 'shmring_gate_wait', 'shmring_probe',
                  'shmring_poll', 'shmring_strerror'):
            self.assertIn(f, funcs)
        self.assertGreater(len(funcs), 40)

    def test_every_public_function_has_a_page_man_finds(self):
        missing = []
        for f in public_functions():
            if not os.path.exists(os.path.join(MAN, 'man3', f + '.3')):
                missing.append(f)
                continue
            r = subprocess.run(['man', '-M', MAN, '3', f], capture_output=True, env=ENV,
                               timeout=60)
            self.assertEqual(r.returncode, 0, (f, r.stderr))
            self.assertIn(f, r.stdout.decode(errors='replace').replace('\u2010\n', ''), f)
        self.assertEqual(missing, [], 'public functions without a page')
        for page in ('man1/shmring.1', 'man7/shmring.7'):
            self.assertTrue(os.path.exists(os.path.join(MAN, page)), page)

    def test_every_page_renders_without_warnings(self):
        self.assertTrue(pages(), 'no pages installed under ' + MAN)
        for p in pages():
            # from the tree's root, as man runs them, so that .so links resolve
            r = subprocess.run(['man', '--warnings', '-l', p], capture_output=True,
                               env=ENV, cwd=MAN, timeout=60)
            self.assertEqual(r.returncode, 0, (p, r.stderr))
            self.assertEqual(r.stderr, b'', p)
            self.assertGreater(len(r.stdout), 200, p)

    @unittest.skipUnless(shutil.which('mandoc'), 'mandoc not installed')
    def test_mandoc_lint_reports_no_error(self):
        for p in pages():
            r = subprocess.run(['mandoc', '-Tlint', '-W', 'error', p], capture_output=True,
                               cwd=MAN, timeout=60)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, b''), p)


if __name__ == '__main__':
    if not os.path.isdir(MAN):
        sys.exit('test_man.py: no installed manual at %r (SHMRING_INSTALLED)' % MAN)
    unittest.main(verbosity=2)
