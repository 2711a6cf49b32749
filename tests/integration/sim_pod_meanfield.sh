#!/bin/bash
# timeout: 240
# Power of d (pod:d=2, pod:d=3) on N = 1000 hosts against the supermarket
# model's mean-field mean time in system, at loads 0.5, 0.9 and 0.95:
# within 2%: the whole 95% interval inside ±2%. Negative controls: pod:d=2 and
# pod:d=3 must not pass for each other's values, nor random for pod's.
set -u
. "$(dirname "$0")/sim_lib.inc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Two runs at a time: the machine has two cores.
for l in 0.5 0.9 0.95; do
	jobs=2000000; [ "$l" = 0.9 ] && jobs=8000000; [ "$l" = 0.95 ] && jobs=16000000
	for d in 2 3; do
		sim_row --hosts 1000 --load "$l" --policy "pod:d=$d" --jobs "$jobs" --reps 8 --seed 11 \
			>"$tmp/$d-$l" &
	done
	wait
done
for d in 2 3; do
	for l in 0.5 0.9 0.95; do
		read -r _ _ m _ c _ <"$tmp/$d-$l" || { echo "no result for d=$d load $l"; exit 1; }
		check "pod:d=$d N=1000 load $l" "$m" "$c" "$(theory_pod "$l" "$d")" 0.02
	done
done
read -r _ _ m _ <"$tmp/2-0.9"
differs "pod:d=2 is not the d=3 value (0.9)" "$m" "$(theory_pod 0.9 3)" 0.02
read -r _ _ m _ <"$tmp/3-0.95"
differs "pod:d=3 is not the d=2 value (0.95)" "$m" "$(theory_pod 0.95 2)" 0.02
read -r _ _ m _ < <(sim_row --hosts 1000 --load 0.9 --policy random --jobs 1000000 --reps 2 --seed 11)
differs "random is not the pod:d=2 value (0.9)" "$m" "$(theory_pod 0.9 2)" 0.02
finish
