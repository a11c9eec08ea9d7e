#!/usr/bin/env bash
# model/check.sh - model-check model/ring.pml with spin, every configuration.
#
#   model/check.sh            run them all (two at a time; JOBS=n to change)
#   model/check.sh wake eof   run the named ones only
#   KEEP=dir model/check.sh   keep each run's pan output and trail under dir
#
# Three kinds of configuration (docs/model.md describes each):
#   pass     spin must find no error and finish its search.  The model
#            follows the library as written ("as-is" in the summary), plus
#            the proposed fixes for findings 1-3 where those findings
#            would otherwise show up ("+fix ...");
#   bug      a deliberately broken variant: spin must find the error (the
#            checks can fail);
#   finding  the library as written, in a configuration where spin finds
#            one of the counterexamples of docs/model.md, "Findings".
#            Expected until take.c / recover.c get fixed; then make the
#            FIX_* behaviour the default in ring.pml and drop these lines.
# Exit status 0 when every configuration behaves as expected, 1 otherwise.
set -u
here=$(cd "$(dirname "$0")" && pwd)
SPIN=${SPIN:-spin}
CC=${CC:-gcc}
JOBS=${JOBS:-2}
MEMLIM=${MEMLIM:-6000}  # MB per run; a run that needs more fails, never swaps

command -v "$SPIN" >/dev/null || { echo "check.sh: $SPIN not found (apt-get install spin)" >&2; exit 2; }
command -v "$CC" >/dev/null || { echo "check.sh: $CC not found" >&2; exit 2; }

R=-DFIX_READABLE   # finding 1, fixed in take.c (shmring__readable re-reads cons_head)
V=-DFIX_RECOVER    # findings 2 and 3, fixed in recover.c (cover first; resume at p)
# name | expect | mode | spin -D options.  Modes: safety = assertions and
# invalid end states (-DSAFETY); np = non-progress cycles, no fairness
# assumed (-DNP).  Biggest first, so that the two lanes end together.
CONFIGS="
follow_own|pass|safety|$R $V -DNSLOT=2 -DRECS0=4 -DRECS1=0 -DFOLLOW_OWN
stale|pass|safety|@stale.pml -DNPOS=4
crash2c|pass|safety|$R $V -DCRASH -DRECS0=1 -DRECS1=1 -DFIXED_SIZES
wake|pass|safety|$R $V -DFIXED_SIZES
crashwide|pass|safety|$R $V -DCRASH_WIDE -DNCONS=1 -DRECS0=3 -DRECS1=1 -DFIXED_SIZES
order1c|pass|safety|$R $V -DNCONS=1
np_eof1c|pass|np|$R $V -DEOF -DNCONS=1 -DFIXED_SIZES
eof|pass|safety|$R $V -DEOF -DRECS0=1 -DRECS1=1 -DFIXED_SIZES
np_crash|pass|np|$R $V -DCRASH -DNCONS=1 -DRECS0=1 -DRECS1=1
crash|pass|safety|$R $V -DCRASH -DNCONS=1 -DRECS1=1 -DFIXED_SIZES
eof1c|pass|safety|$R $V -DEOF -DNCONS=1 -DFIXED_SIZES
sizes|pass|safety|$R $V -DRECS0=1 -DRECS1=1
np_sizes|pass|np|$R $V -DRECS0=1 -DRECS1=1
bug_no_recheck|bug|safety|$R -DFIXED_SIZES -DBUG_NO_RECHECK
bug_no_room_recheck|bug|safety|$R -DFIXED_SIZES -DBUG_NO_ROOM_RECHECK
bug_notify_early|bug|safety|$R -DFIXED_SIZES -DBUG_NOTIFY_EARLY
bug_room|bug|safety|$R -DFIXED_SIZES -DBUG_ROOM
bug_eof_order|bug|safety|$R -DEOF -DRECS0=1 -DRECS1=1 -DFIXED_SIZES -DBUG_EOF_ORDER
bug_busy|bug|np|-DRECS0=1 -DRECS1=1 -DBUG_BUSY
old_readable|bug|safety|-DFIXED_SIZES
old_recover_order|bug|safety|$R -DCRASH_WIDE -DNCONS=1 -DRECS1=1 -DFIXED_SIZES
old_recover_retry|bug|safety|$R -DCRASH -DNCONS=1 -DRECS0=3 -DRECS1=1 -DFIXED_SIZES -DBUG_WALK_STOPS
bcast_die|pass|safety|@bcast.pml -DDIE
bcast|pass|safety|@bcast.pml -DNSLOT=4
bcast_join|pass|safety|@bcast.pml -DJOIN -DRECS1=2
bug_bcast_no_gen|bug|safety|@bcast.pml -DJOIN -DBUG_NO_GEN
bcast_lossy_join|pass|safety|@bcast.pml -DJOIN -DLOSSY_JOIN -DRECS1=2 -DNSLOT=2
bug_bcast_join_no_check|bug|safety|@bcast.pml -DJOIN -DLOSSY_JOIN -DRECS1=2 -DNSLOT=2 -DBUG_JOIN_NO_CHECK
bug_bcast_no_recheck|bug|safety|@bcast.pml -DBUG_NO_RECHECK
bug_bcast_no_gate|bug|safety|@bcast.pml -DBUG_NO_GATE
bug_bcast_no_pub_wake|bug|safety|@bcast.pml -DDIE -DBUG_NO_PUB_WAKE
overwrite|pass|safety|@overwrite.pml -DNSLOT=2
overwrite3|pass|safety|@overwrite.pml -DNSLOT=3
bug_overwrite_store_take|bug|safety|@overwrite.pml -DBUG_STORE_TAKE
rdl_full|pass|safety|$R -DREDELIVER -DNSLOT=2 -DRECS0=2 -DRECS1=0 -DFIXED_SIZES
rdl_requeue|pass|safety|$R -DREDELIVER -DREQUEUE -DRECS0=1 -DRECS1=0 -DFIXED_SIZES
rdl_one|pass|safety|$R -DREDELIVER -DRECS0=1 -DRECS1=0 -DFIXED_SIZES
np_rdl|pass|np|$R -DREDELIVER -DRECS0=1 -DRECS1=0 -DFIXED_SIZES
bug_rdl_release_order|bug|safety|$R -DREDELIVER -DREQUEUE -DRECS0=1 -DRECS1=0 -DFIXED_SIZES -DBUG_RELEASE_ORDER
bug_rdl_eof|bug|safety|$R -DREDELIVER -DRECS0=1 -DRECS1=0 -DFIXED_SIZES -DBUG_EOF_IGNORES_HELD
bug_follow|bug|safety|$R -DNSLOT=2 -DFIXED_SIZES -DBUG_FOLLOW
bug_follow_own|bug|safety|$R -DNSLOT=2 -DRECS0=4 -DRECS1=0 -DFOLLOW_OWN -DBUG_FOLLOW_OWN
bug_stale_no_starts|bug|safety|@stale.pml -DBUG_NO_STARTS
bug_stale_clip_at_claim|bug|safety|@stale.pml -DBUG_CLIP_AT_CLAIM
"


work=$(mktemp -d "${TMPDIR:-/tmp}/shmring-model.XXXXXX")
trap 'rm -rf "$work"' EXIT

# run NAME EXPECT MODE DEFINES: one spin run; writes $work/NAME.res
run() {
	local name=$1 expect=$2 mode=$3 defs=$4 d="$work/$1"
	local cflags opt pflags t0 t1 out errors states secs result pml=ring.pml
	# "@file.pml -D..." models another file (bcast.pml: issue 13)
	case "$defs" in @*) pml=${defs%% *}; pml=${pml#@}; defs=${defs#* } ;; esac
	mkdir -p "$d" && cp "$here/$pml" "$d/"
	if [ "$mode" = np ]; then cflags="-DNP"; pflags="-l"; else cflags="-DSAFETY"; pflags=""; fi
	# a run expected to fail stops at its first error: no need to optimise
	if [ "$expect" = pass ]; then opt=-O2; else opt=-O0; fi
	t0=$(date +%s.%N)
	if ! (cd "$d" && $SPIN -a $defs $pml >spin.out 2>&1 &&
	      $CC $opt -w $cflags -DCOLLAPSE -DMEMLIM=$MEMLIM -o pan pan.c >cc.out 2>&1); then
		printf '%s|%s|-|BUILD FAILED|-|-|UNEXPECTED|%s\n' "$name" "$expect" "$(cat "$d/spin.out" "$d/cc.out" | head -3 | tr '\n' ' ')" >"$work/$name.res"
		return
	fi
	(cd "$d" && ./pan -m300000 -w26 $pflags >pan.out 2>&1)
	t1=$(date +%s.%N)
	out="$d/pan.out"
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | tail -1)
	states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$out" | tail -1)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	local what
	what=$(grep -m1 -E '^pan:1: |pan: out of memory|error: max search depth too small' "$out" | sed 's/^pan:1: //')
	if [ -z "$errors" ]; then
		result="NO RESULT"; what=$(grep -m1 -iE 'error|memory' "$out")
	elif [ "$errors" = 0 ]; then
		if grep -qE 'max search depth too small|Search not completed|out of memory' "$out"; then
			result="INCOMPLETE"; what="search not completed"
		else
			result="no error"
		fi
	else
		result="ERROR"
	fi
	case "$expect:$result" in
	pass:"no error")          verdict=ok ;;
	bug:ERROR|finding:ERROR)  verdict=ok ;;
	*)                        verdict=UNEXPECTED ;;
	esac
	local model=as-is
	case "$defs" in *FIX_READABLE*FIX_RECOVER*) model="+fix 1,2,3" ;; *FIX_READABLE*) model="+fix 1" ;; esac
	printf '%s|%s|%s|%s|%s|%s|%s|%s\n' "$name" "$expect" "$model" "$result" "${states:--}" "$secs" "$verdict" "$what" >"$work/$name.res"
	if [ -n "${KEEP:-}" ]; then
		mkdir -p "$KEEP/$name" && cp "$d"/pan.out "$d/$pml" "$KEEP/$name/" &&
		{ [ ! -f "$d/$pml.trail" ] || cp "$d/$pml.trail" "$KEEP/$name/"; }
		echo "spin -t -p -g $defs $pml" >"$KEEP/$name/replay.txt"
	fi
}

want="$*"
selected=$(printf '%s\n' "$CONFIGS" | while IFS='|' read -r name expect mode defs; do
	[ -n "$name" ] || continue
	if [ -z "$want" ] || printf ' %s ' "$want" | grep -q " $name "; then
		printf '%s|%s|%s|%s\n' "$name" "$expect" "$mode" "$defs"
	fi
done)
[ -n "$selected" ] || { echo "check.sh: no such configuration: $want" >&2; exit 2; }

start=$(date +%s)
running=0
while IFS='|' read -r name expect mode defs; do
	run "$name" "$expect" "$mode" "$defs" &
	running=$((running + 1))
	if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done <<<"$selected"
wait

status=0
printf '%-20s %-8s %-6s %-10s %-10s %10s %7s  %s\n' configuration expect check model result states seconds verdict
while IFS='|' read -r name expect mode defs; do
	IFS='|' read -r n e model result states secs verdict what <"$work/$name.res"
	printf '%-20s %-8s %-6s %-10s %-10s %10s %7s  %s%s\n' "$name" "$expect" "$mode" "$model" "$result" "$states" "$secs" "$verdict" "${what:+  ($what)}"
	[ "$verdict" = ok ] || status=1
done <<<"$selected"
n=$(printf '%s\n' "$selected" | grep -c .)
if [ $status = 0 ]; then
	echo "model: OK, $n configurations as expected, $(( $(date +%s) - start )) s"
else
	echo "model: FAIL, some of $n configurations not as expected, $(( $(date +%s) - start )) s"
fi
exit $status
