#!/usr/bin/env bash
# tests/link/check.sh - the library keeps its internals to itself (issue 10).
#
#   tests/link/check.sh build/<variant>     (`ninja test` runs it for release,
#                                            `ninja test-asan` for asan)
#
# Checks, for the variant's build directory:
#   1. collide-static (tests/link/collide.c linked with libshmring.a) and,
#      where built, collide-shared (with libshmring.so) run and pass: an
#      application that defines the library's former internal names links
#      and works, timeouts included;
#   2. libshmring.a defines no global symbol but the public API (shmring_,
#      never the internal prefix shmring__);
#   3. where libshmring.so is built: `nm -D` exports exactly the functions
#      include/*.h declares with SHMRING_API (ring/version.map lists the
#      same), no other name;
#   4. where shmring-uninstalled.pc is built: a program compiled with
#      PKG_CONFIG_PATH=<dir> `pkg-config --cflags --libs shmring` (the
#      -uninstalled convention) builds and runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
dir=${1:?usage: tests/link/check.sh build/VARIANT}
fails=0
fail() { echo "link check: FAIL: $*" >&2; fails=$((fails + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The collision programs.
for how in static shared; do
	bin=$dir/tests/link/collide-$how
	[ -x "$bin" ] || { [ "$how" = shared ] && continue; fail "$bin not built"; continue; }
	"$bin" "$how" || fail "$bin"
done

# The public API: every function include/*.h declares with SHMRING_API.
grep -ho 'SHMRING_API[^(]*(' include/*.h | grep -o 'shmring_[A-Za-z0-9_]*' |
	sort -u >"$tmp/api"
[ -s "$tmp/api" ] || fail "no SHMRING_API declaration in include/*.h"

# 2. The static library's global symbols.
nm -g --defined-only "$dir/libshmring.a" | awk 'NF == 3 { print $3 }' |
	sort -u >"$tmp/a-globals"
if grep -v '^shmring_' "$tmp/a-globals" >"$tmp/bad" ||
   grep '^shmring__' "$tmp/a-globals" >>"$tmp/bad"; then
	fail "$dir/libshmring.a defines global symbols outside the public API: $(tr '\n' ' ' <"$tmp/bad")"
fi
grep '^shmring_' "$tmp/a-globals" | grep -v '^shmring__' >"$tmp/a-public" || true
if ! cmp -s "$tmp/api" "$tmp/a-public"; then
	fail "libshmring.a's shmring_ symbols differ from the SHMRING_API declarations:" \
	     "$(diff "$tmp/api" "$tmp/a-public" | grep '^[<>]' | tr '\n' ' ')"
fi

# 3. The shared library's exports.
so=$dir/libshmring.so
if [ -e "$so" ]; then
	before=$fails
	nm -D --defined-only "$so" | awk 'NF == 3 && $2 != "A" { print $3 }' | sed 's/@.*//' |
		sort -u >"$tmp/so-exports"
	if ! cmp -s "$tmp/api" "$tmp/so-exports"; then
		fail "nm -D $so differs from the SHMRING_API declarations in include/*.h" \
		     "(< declared only: add SHMRING_API or ring/version.map; > exported only):" \
		     "$(diff "$tmp/api" "$tmp/so-exports" | grep '^[<>]' | tr '\n' ' ')"
	fi
	grep -v '^shmring_' "$tmp/so-exports" && fail "$so exports non-shmring_ names (above)"
	grep '^shmring__' "$tmp/so-exports" && fail "$so exports internal shmring__ names (above)"
	((fails > before)) ||
		echo "link check: $so exports $(wc -l <"$tmp/so-exports") symbols, all public"
fi

# 4. pkg-config before installing.
if [ -e "$dir/shmring-uninstalled.pc" ]; then
	if ! command -v pkg-config >/dev/null; then
		fail "pkg-config not installed (apt-get install pkg-config)"
	else
		flags=$(PKG_CONFIG_PATH=$dir pkg-config --cflags --libs shmring) ||
			fail "PKG_CONFIG_PATH=$dir pkg-config shmring"
		read -r -a cc <<<"${CC:-cc}"
		# (word splitting of $flags intended)
		# shellcheck disable=SC2086
		if "${cc[@]}" -std=c11 -o "$tmp/collide-pc" tests/link/collide.c $flags; then
			"$tmp/collide-pc" pkg-config || fail "the program built through pkg-config"
		else
			fail "cc $flags tests/link/collide.c"
		fi
	fi
fi

if ((fails)); then
	echo "link check: $fails FAILED" >&2
	exit 1
fi
echo "link check: OK ($dir)"
