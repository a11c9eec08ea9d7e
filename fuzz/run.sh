#!/usr/bin/env bash
# Build (if needed) and run one fuzz target for a bounded time.
#
#   fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#
# TARGET is fuzz_attach or fuzz_scribble.  Seeds are read from
# tests/fuzz-corpus/TARGET/ (never written); what the run discovers goes to
# build/fuzz/corpus/TARGET/, and crashes, timeouts and leaks to
# build/fuzz/artifacts/ (named TARGET-crash-..., TARGET-timeout-...).
# Exit status: 0 if the run was clean, libFuzzer's otherwise.
#
# A crash found: reproduce it with build/fuzz/TARGET FILE, fix it, add a test
# to tests/test_hostile.c and copy FILE to tests/fuzz-corpus/TARGET/regress-NAME.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ $# -lt 2 ]; then
	echo "usage: fuzz/run.sh TARGET SECONDS [libFuzzer options...]" >&2
	exit 2
fi
target=$1 seconds=$2
shift 2

fuzz/build.sh "$target"

case "$target" in
fuzz_attach)   max_len=131072 ;; # a whole ring file of the seeds' geometries
fuzz_scribble) max_len=2048 ;;   # a program of up to 256 instructions
*)             max_len=4096 ;;
esac

work=build/fuzz/corpus/$target
seeds=tests/fuzz-corpus/$target
mkdir -p "$work" build/fuzz/artifacts
[ -d "$seeds" ] || seeds=

# -timeout: no input may take 10 s (a hang is a bug: every wait in the
# targets is bounded by a few ms).  Leaks are checked by ASan per input.
exec "build/fuzz/$target" \
	-max_total_time="$seconds" \
	-timeout=10 \
	-max_len="$max_len" \
	-print_final_stats=1 \
	-artifact_prefix="build/fuzz/artifacts/$target-" \
	"$@" \
	"$work" ${seeds:+"$seeds"}
