#!/bin/bash
# timeout: 240
# Closed forms of single queues, through random placement (every host is
# then an M/G/1 queue fed at rate lambda):
#   FIFO, exponential work:            M/M/1     T = 1/(1-lambda)
#   FIFO, deterministic work:          M/D/1     T = 1 + lambda/(2(1-lambda))
#   processor sharing, bounded Pareto: M/G/1-PS  T = 1/(1-lambda) (insensitive)
#   probe:d=1 with probe delay D and transfer delay X: D + X(1 - 1/N) + 1/(1-lambda)
#   pod:d=2 with loads published once and never again (P huge): all look
#   equal, ties at random, so it is random placement: 1/(1-lambda)
#   hosts of speeds 1 and 3 (alternating), random placement, load 0.25 of
#   the capacity: each host gets 0.5/s, so T = (1/(1-0.5) + 1/(3-0.5)) / 2 = 1.2
# and the negative control: exact pod:d=2 is NOT 1/(1-lambda).
set -u
. "$(dirname "$0")/sim_lib.inc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

common="--hosts 100 --jobs 3000000 --reps 8 --seed 3"
sim_row $common --load 0.5 --policy random >"$tmp/mm1-5" &
sim_row $common --load 0.8 --policy random >"$tmp/mm1-8" &
wait
sim_row $common --load 0.8 --policy random --work det >"$tmp/md1" &
sim_row $common --load 0.7 --policy random --ps --work bpareto:a=1.5,r=100 >"$tmp/ps" &
wait
sim_row $common --load 0.8 --policy probe:d=1 --probe-delay 0.5 --transfer-delay 0.25 >"$tmp/delay" &
sim_row --hosts 1000 --jobs 3000000 --reps 8 --seed 3 --load 0.8 --policy pod:d=2 --publish 1e9 >"$tmp/stale" &
wait
sim_row $common --load 0.25 --policy random --speeds 1,3 >"$tmp/speeds"

r() { read -r _ _ m _ c _ <"$tmp/$1" || { echo "no result $1"; exit 1; }; }
r mm1-5;  check "random = M/M/1, load 0.5" "$m" "$c" 2 0.02
r mm1-8;  check "random = M/M/1, load 0.8" "$m" "$c" 5 0.02
r md1;    check "random, det work = M/D/1, load 0.8" "$m" "$c" 3 0.02
r ps;     check "random, PS, bounded Pareto = M/G/1-PS, 0.7" "$m" "$c" "$(awk 'BEGIN { print 1 / 0.3 }')" 0.02
r delay;  check "probe:d=1 + probe/transfer delays, 0.8" "$m" "$c" "$(awk 'BEGIN { print 0.5 + 0.25 * 0.99 + 5 }')" 0.02
r stale;  check "pod:d=2 on never-updated loads = M/M/1" "$m" "$c" 5 0.02
r speeds; check "random, speeds 1 and 3, load 0.25" "$m" "$c" 1.2 0.02
read -r _ _ m _ < <(sim_row --hosts 1000 --jobs 500000 --reps 2 --seed 3 --load 0.8 --policy pod:d=2)
differs "exact pod:d=2 is not M/M/1" "$m" 5 0.02
finish
