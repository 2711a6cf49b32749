#!/bin/bash
# timeout: 120
# Preemptive migration by age (Harchol-Balter and Downey) under processor
# sharing and heavy-tailed work: with a modest memory-proportional cost it
# moves a few percent of the processes and cuts the mean time in system of
# random placement (the 95% intervals do not overlap); with a prohibitive
# cost it moves nothing.
set -u
. "$(dirname "$0")/sim_lib.inc"

common="--hosts 100 --load 0.8 --policy random --ps --work bpareto:a=1.1,r=1e5 --jobs 1000000 --reps 4 --seed 2"
read -r _ _ m0 _ c0 _ _ _ g0 _ <<<"$(sim_row $common)"
read -r _ _ m1 _ c1 _ _ _ g1 _ <<<"$(sim_row $common --migrate --mig-cost 0.01)"
read -r _ _ m2 _ c2 _ _ _ g2 _ <<<"$(sim_row $common --migrate --mig-cost 1e6)"
echo "no migration: $m0 ± $c0; cheap: $m1 ± $c1 (migrated $g1); prohibitive: $m2 ± $c2 (migrated $g2)"
awk -v g="$g0" 'BEGIN { exit !(g == 0) }' && echo "ok    nothing migrates without --migrate" || { echo "FAIL migrated $g0 without --migrate"; failures=$((failures + 1)); }
awk -v g="$g1" 'BEGIN { exit !(g > 0.01 && g < 0.5) }' && echo "ok    cheap migration moves some processes" || { echo "FAIL cheap migration moved $g1"; failures=$((failures + 1)); }
awk -v a="$m0" -v ca="$c0" -v b="$m1" -v cb="$c1" 'BEGIN { exit !(b + cb < a - ca) }' && echo "ok    migration cuts the mean time" || { echo "FAIL no gain"; failures=$((failures + 1)); }
awk -v g="$g2" 'BEGIN { exit !(g == 0) }' && echo "ok    a prohibitive cost moves nothing" || { echo "FAIL prohibitive cost moved $g2"; failures=$((failures + 1)); }
finish
