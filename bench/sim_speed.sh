#!/bin/bash
# roam-sim's speed, as issue 4 asks (run on a quiet machine; one core each):
#  1. events per second for pod:d=2, N = 1000, load 0.9 (target >= 15 M/s),
#     median of 5 runs of 10 M processes;
#  2. N = 10,000 hosts and 10 M processes for each policy (target < 10 s),
#     wall time and peak memory;
#  3. memory against hosts and processes in the system: peak RSS for
#     N = 1000 .. 100,000 at load 0.9, and at load 0.99 (more in the system).
#   bench/sim_speed.sh [BUILD_DIR]
set -eu
cd "$(dirname "$0")/.."
SIM=${1:-build}/roam-sim
[ -x "$SIM" ] || { echo "build roam-sim first (make)"; exit 1; }

echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine slows the wall clock)"
echo "== 1. events/s, pod:d=2, N=1000, load 0.9, 10 M processes (5 runs)"
for i in 1 2 3 4 5; do
	/usr/bin/time -f '%e' -o /tmp/sim_speed.$$ \
		"$SIM" --hosts 1000 --load 0.9 --policy pod:d=2 --jobs 10000000 --reps 1 >/tmp/sim_out.$$
	ev=$(awk 'NR == 2 { print $NF }' /tmp/sim_out.$$)
	# events = Mev/s(cpu) x cpu seconds; wall rate = events / wall seconds
	echo "$ev $(cat /tmp/sim_speed.$$)"
done | sort -n | awk '{ v[NR] = $1; w[NR] = $2 } END {
	printf "Mev per CPU second: min %s median %s max %s (wall seconds: %s %s %s %s %s)\n", v[1], v[3], v[5], w[1], w[2], w[3], w[4], w[5] }'

echo "== 2. N=10000, 10 M processes, load 0.9"
printf '%-22s %8s %8s %10s %12s\n' policy wall_s cpu_s peak_MiB Mev/cpu-s
for p in random pod:d=2 pod:d=3 probe:d=2 threshold:t=2,lp=3 jsq least-loaded; do
	/usr/bin/time -f '%e %U %M' -o /tmp/sim_speed.$$ \
		"$SIM" --hosts 10000 --load 0.9 --policy "$p" --jobs 10000000 --reps 1 >/tmp/sim_out.$$
	read -r secs cpu kb </tmp/sim_speed.$$
	printf '%-22s %8s %8s %10.1f %12s\n' "$p" "$secs" "$cpu" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')" "$(tail -n1 /tmp/sim_out.$$ | awk '{ print $NF }')"
done
rm -f /tmp/sim_speed.$$ /tmp/sim_out.$$

echo "== 3. peak memory (MiB) against hosts, pod:d=2, 2 M processes"
printf '%8s %10s %10s\n' hosts load0.9 load0.99
for n in 1000 10000 100000; do
	row="$n"
	for l in 0.9 0.99; do
		/usr/bin/time -f '%M' -o /tmp/sim_speed.$$ "$SIM" --hosts "$n" --load "$l" --policy pod:d=2 \
			--jobs 2000000 --reps 1 >/dev/null
		row="$row $(awk '{ printf "%.1f", $1 / 1024 }' /tmp/sim_speed.$$)"
	done
	printf '%8s %10s %10s\n' $row
done
rm -f /tmp/sim_speed.$$
