#!/usr/bin/env bash
# CI: run every fuzz target for a short bounded time from the seed corpus.
#
#   fuzz/ci.sh [SECONDS]     (default 20 per target, or $FUZZ_SECONDS)
#
# Needs clang with its libFuzzer runtime (Debian: clang and libclang-rt-dev,
# or libclang-rt-14-dev).  Without it the targets cannot fuzz; then the seed
# corpus (including every crash regression) is replayed once through each
# target built with $CC and ASan + UBSan, and the script says so.  Fails if
# any input crashes, hangs (10 s) or trips a sanitizer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-${FUZZ_SECONDS:-20}}
targets=()
for f in fuzz/fuzz_*.c; do
	targets+=("$(basename "$f" .c)")
done

if fuzz/build.sh --check; then
	for t in "${targets[@]}"; do
		echo "=== fuzz: $t for ${seconds}s"
		log=build/fuzz/$t-ci.log
		mkdir -p build/fuzz
		if ! fuzz/run.sh "$t" "$seconds" >"$log" 2>&1; then
			tail -n 60 "$log" >&2
			echo "fuzz/ci.sh: $t FAILED (log: $log, artifacts: build/fuzz/artifacts/)" >&2
			exit 1
		fi
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" |
			tr '\n' ' '
		echo
		grep -E '^Done [0-9]+ runs' "$log" | tail -n 1 || true
	done
	echo "=== fuzz: clean"
else
	echo "fuzz/ci.sh: clang's libFuzzer runtime is not installed: fuzzing SKIPPED"
	echo "fuzz/ci.sh: (apt-get install clang libclang-rt-14-dev to fuzz); replaying the seed corpus instead"
	fuzz/build.sh --replay
	for t in "${targets[@]}"; do
		echo "=== replay: $t"
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			timeout 300 "build/fuzz/$t-replay" "tests/fuzz-corpus/$t"
	done
fi
