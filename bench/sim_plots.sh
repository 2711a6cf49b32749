#!/bin/bash
# Regenerates the plots and CSVs of docs/sim.md under docs/plots/ (about
# ten minutes on this machine; two sweeps run at a time).
#   bench/sim_plots.sh [BUILD_DIR]
set -eu
cd "$(dirname "$0")/.."
SIM=${1:-build}/roam-sim
OUT=docs/plots
mkdir -p "$OUT"
[ -x "$SIM" ] || { echo "build roam-sim first (make)"; exit 1; }

policies=(--policy random --policy jsq --policy pod:d=2 --policy pod:d=3 --policy probe:d=2
          --policy threshold:t=2,lp=3 --policy threshold:t=1,lp=3)
stale=(--policy random --policy least-loaded --policy jsq --policy pod:d=2 --policy probe:d=2
       --policy threshold:t=2,lp=3)

sweep() { # name args...
	local name=$1; shift
	"$SIM" --sweep --csv --seed 1 --plot "$OUT/$name" "$@" >"$OUT/$name.csv"
	echo "$name done"
}

sweep n1000-exact --hosts 1000 --jobs 4000000 --reps 4 "${policies[@]}" &
sweep n10000-exact --hosts 10000 --jobs 10000000 --reps 2 "${policies[@]}" &
wait
sweep n1000-stale --hosts 1000 --jobs 4000000 --reps 4 --publish 1 "${stale[@]}" &
sweep n10000-stale --hosts 10000 --jobs 10000000 --reps 2 --publish 1 "${stale[@]}" &
wait
sweep n1000-probecost --hosts 1000 --jobs 4000000 --reps 4 --probe-delay 0.2 --transfer-delay 0.1 "${stale[@]}" &
sweep n1000-heavy --hosts 1000 --jobs 4000000 --reps 4 --ps --work bpareto:a=1.1,r=1e5 \
	--policy random --policy pod:d=2 --policy threshold:t=2,lp=3 &
wait
sweep n1000-heavy-migrate --hosts 1000 --jobs 4000000 --reps 4 --ps --work bpareto:a=1.1,r=1e5 \
	--migrate --mig-cost 0.01 --policy random --policy pod:d=2 --policy threshold:t=2,lp=3 &
sweep n10000-heavy --hosts 10000 --jobs 10000000 --reps 2 --ps --work bpareto:a=1.1,r=1e5 \
	--policy random --policy pod:d=2 --policy threshold:t=2,lp=3 &
wait
sweep n10000-heavy-migrate --hosts 10000 --jobs 10000000 --reps 2 --ps --work bpareto:a=1.1,r=1e5 \
	--migrate --mig-cost 0.01 --policy random --policy pod:d=2 --policy threshold:t=2,lp=3

# Migration against none, from the two CSVs: one curve per policy and mode.
# gnuplot does not read RFC 4180 quoting, so the specs' commas become ';'
# in a temporary copy and the keys are spelled back in the titles.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in 1000 10000; do
	for f in heavy heavy-migrate; do
		sed -E 's/"([^",]*),([^"]*)"/\1;\2/' "$OUT/n$n-$f.csv" >"$tmp/n$n-$f.csv"
	done
	for term in "pngcairo size 1400,560 font ',10'|png" "svg size 1400,560 dynamic|svg"; do
		t=${term%|*} ext=${term#*|}
		gnuplot <<GP
set terminal $t
set output '$OUT/n$n-migration.$ext'
set datafile separator ','
keys = "random pod:d=2 threshold:t=2;lp=3"
names = "random pod:d=2 threshold:t=2,lp=3"
set multiplot layout 1,2 title "N = $n, PS, bounded Pareto (a = 1.1, max/min = 1e5): preemptive migration by age (cost 0.01 s/MiB, 10 MiB)"
set key top left; set grid; set logscale y; set xlabel 'load'
do for [panel=0:1] {
  col = panel == 0 ? 4 : 5
  set ylabel (panel == 0 ? 'mean' : 'p99').' time in system (mean work = 1)'
  plot for [i=1:3] '$tmp/n$n-heavy.csv' using 3:(strcol(1) eq word(keys, i) ? column(col) : 1/0) with linespoints lt i title word(names, i), \
       for [i=1:3] '$tmp/n$n-heavy-migrate.csv' using 3:(strcol(1) eq word(keys, i) ? column(col) : 1/0) with linespoints lt i dashtype 2 title word(names, i).' + migrate'
}
unset multiplot
GP
	done
done
echo "plots in $OUT"
