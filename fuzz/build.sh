#!/usr/bin/env bash
# Build the fuzz targets out of the normal build (CI needs no clang unless it
# runs them).
#
#   fuzz/build.sh [TARGET...]           libFuzzer binaries: build/fuzz/TARGET
#                                       (clang, -fsanitize=fuzzer,address,undefined)
#   fuzz/build.sh --replay [TARGET...]  replay binaries without libFuzzer:
#                                       build/fuzz/TARGET-replay (cc, ASan + UBSan;
#                                       run one on files or corpus folders)
#   fuzz/build.sh --check               exit 0 if clang can link a libFuzzer target
#   fuzz/build.sh --corpus              regenerate the seed corpus (fuzz/gen_corpus.c)
#                                       into tests/fuzz-corpus/<target>/; keeps
#                                       crash regressions (tests/fuzz-corpus/*/regress-*)
#
# TARGET defaults to every fuzz/fuzz_*.c.  A binary is rebuilt when a source
# (fuzz/, ring/, include/) is newer.  $FUZZ_CLANG overrides clang, $CC the
# replay compiler.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

clang=${FUZZ_CLANG:-clang}
mode=fuzz
# The library's flags and sources: libflags.py, the one place that says how
# ring/*.c is compiled (configure.py and setup.py read it too).  Only the
# sanitizers, the optimisation level and -Ifuzz are this script's own.
read -r -a libcflags <<<"$(python3 libflags.py --cflags)"
read -r -a libsrcs <<<"$(python3 libflags.py --sources)"
read -r -a libs <<<"$(python3 libflags.py --libs)"
case "${1:-}" in
--replay) mode=replay; shift ;;
--corpus)
	# (Re)write the seed corpus: tests/fuzz-corpus/<target>/.
	mkdir -p build/fuzz
	read -r -a cc <<<"${CC:-cc}"
	"${cc[@]}" "${libcflags[@]}" -O1 -g -Ifuzz \
		fuzz/gen_corpus.c "${libsrcs[@]}" -o build/fuzz/gen_corpus "${libs[@]}"
	for d in tests/fuzz-corpus/fuzz_attach tests/fuzz-corpus/fuzz_scribble; do
		[ -d "$d" ] && find "$d" -type f ! -name 'regress-*' -delete
	done
	build/fuzz/gen_corpus tests/fuzz-corpus
	echo "fuzz/build.sh: wrote $(find tests/fuzz-corpus -type f | wc -l) seeds under tests/fuzz-corpus/"
	exit 0
	;;
--check)
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$tmp/t.c"
	command -v "$clang" >/dev/null 2>&1 &&
		"$clang" -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" >/dev/null 2>&1
	exit $?
	;;
esac

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for f in fuzz/fuzz_*.c; do
		t=$(basename "$f" .c)
		targets+=("$t")
	done
fi

common=("${libcflags[@]}" -O1 -g -fno-omit-frame-pointer -Ifuzz
        -Wno-unused-parameter)
if [ "$mode" = fuzz ]; then
	cc=("$clang")
	san=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
	suffix=
else
	read -r -a cc <<<"${CC:-cc}"
	san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
	suffix=-replay
fi

mkdir -p build/fuzz
for t in "${targets[@]}"; do
	src=fuzz/$t.c
	[ -f "$src" ] || { echo "fuzz/build.sh: no $src" >&2; exit 2; }
	out=build/fuzz/$t$suffix
	extra=()
	[ "$mode" = replay ] && extra=(fuzz/replay.c)
	if [ -x "$out" ] && [ -z "$(find fuzz ring include libflags.py -newer "$out" \( -name '*.[ch]' -o -name libflags.py \) -print -quit)" ]; then
		continue
	fi
	echo "fuzz/build.sh: building $out"
	"${cc[@]}" "${common[@]}" "${san[@]}" "$src" "${extra[@]}" "${libsrcs[@]}" -o "$out.tmp" "${libs[@]}"
	mv "$out.tmp" "$out"
done
