#!/bin/bash
# timeout: 240
# threshold:t=T,lp=L (Eager, Lazowska, Zahorjan) on N = 1000 hosts against
# its mean-field fixed point (derived in docs/sim.md), with the whole
# 95% interval inside ±2%. Negative controls: the T=2 result is not the T=1 value,
# and L=1 is not the L=3 value.
set -u
. "$(dirname "$0")/sim_lib.inc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cases="2,3,0.5 2,3,0.9 2,3,0.95 1,3,0.5 1,3,0.9 2,1,0.9"
set -- $cases
while [ $# -gt 0 ]; do
	for c in "$1" "${2:-}"; do
		[ -n "$c" ] || continue
		IFS=, read -r T L l <<<"$c"
		jobs=2000000; [ "$l" = 0.9 ] && jobs=8000000; [ "$l" = 0.95 ] && jobs=16000000
		sim_row --hosts 1000 --load "$l" --policy "threshold:t=$T,lp=$L" --jobs "$jobs" --reps 8 --seed 5 \
			>"$tmp/$T-$L-$l" &
	done
	wait
	shift; [ $# -gt 0 ] && shift
done
for c in $cases; do
	IFS=, read -r T L l <<<"$c"
	read -r _ _ m _ ci _ _ xfer _ probes _ <"$tmp/$T-$L-$l" || { echo "no result for $c"; exit 1; }
	read -r want resid want_xfer want_probes < <(theory_threshold "$l" "$T" "$L")
	awk -v r="$resid" 'BEGIN { exit !(r < 1e-6) }' || { echo "FAIL fixed point inconsistent for $c: $resid"; failures=$((failures + 1)); }
	check "threshold:t=$T,lp=$L N=1000 load $l" "$m" "$ci" "$want" 0.02
	near "  transferred fraction" "$xfer" "$want_xfer" 0.02
	near "  probes per process" "$probes" "$want_probes" 0.02
done
read -r _ _ m _ <"$tmp/2-3-0.9"
differs "t=2,lp=3 is not the t=1,lp=3 value" "$m" "$(theory_threshold 0.9 1 3 | cut -d' ' -f1)" 0.02
read -r _ _ m _ <"$tmp/2-1-0.9"
differs "t=2,lp=1 is not the t=2,lp=3 value" "$m" "$(theory_threshold 0.9 2 3 | cut -d' ' -f1)" 0.02
finish
