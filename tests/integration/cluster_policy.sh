#!/bin/bash
# Placement across 4 hosts by every policy and constraint: --on, --need
# (tags, memory: and a request no host meets fails at once naming the
# constraint), --near (typed on any host: the near job's home is asked), and, with h1-h3 made busy by spinning jobs and h4 idle,
# least-loaded, jsq, pod, probe and threshold all choose h4; threshold keeps a
# job at an idle origin; random spreads.
# timeout: 150
. "$(dirname "$0")/lib/cluster.sh"

HOST_FLAGS[3]="--tags gpu,ssd"
cluster_up 4 --allow-root
for i in 1 2 3 4; do H[$i]=$(hname $i); done

where() { # I roam-run-args... : prints the host the job ran on
	local i=$1; shift
	run_on "$i" run "$@" -- sh -c 'echo $ROAM_HOST'
}

# --on pins.
for i in 1 2 3 4; do
	[ "$(where 1 --on "${H[$i]}")" = "${H[$i]}" ] || fail "--on ${H[$i]}"
done
# --need tag=gpu: only h3 has it; the other constraints filter as well.
for k in 1 2 3; do
	[ "$(where 2 --need tag=gpu)" = "${H[3]}" ] || fail "--need tag=gpu did not go to h3"
done
[ "$(where 1 --need tag=gpu,tag=ssd,arch=x86_64,mem=1M,cpus=1)" = "${H[3]}" ] || fail "combined --need"
where 1 --need tag=tpu 2>"$WORK/e"; rc=$?
[ $rc = 255 ] && grep -q "no host satisfies" "$WORK/e" && grep -qi "tag" "$WORK/e" || fail "tag=tpu gave $rc: $(cat "$WORK/e")"
where 1 --need mem=1000T 2>"$WORK/e"; rc=$?
[ $rc = 255 ] && grep -qi "mem" "$WORK/e" || fail "mem=1000T gave $rc: $(cat "$WORK/e")"
where 1 --need color=blue 2>"$WORK/e"; rc=$?
[ $rc = 255 ] || fail "bad --need gave $rc"
where 1 --policy nosuch 2>"$WORK/e"; rc=$?
[ $rc = 255 ] && grep -q "policy" "$WORK/e" || fail "bad --policy gave $rc: $(cat "$WORK/e")"

# --near: with a job on h4.
near=$(run_on 1 run --detach --on "${H[4]}" -- sleep 60) || fail "near anchor"
[ "$(where 1 --near "$near")" = "${H[4]}" ] || fail "--near $near"
# Typed on h2 and h3, which know nothing of the job: its home (h1) says where it runs.
for i in 2 3; do
	[ "$(where $i --near "$near")" = "${H[4]}" ] || fail "--near $near typed on h$i"
done
where 2 --near "${H[1]}.999999" 2>"$WORK/e"; rc=$?
[ $rc = 255 ] && grep -q "no such running job" "$WORK/e" || fail "--near an unknown job gave $rc: $(cat "$WORK/e")"
run_on 1 kill -KILL "$near"
run_on 1 wait "$near" >/dev/null 2>&1
where 3 --near "$near" 2>"$WORK/e"; rc=$?
[ $rc = 255 ] && grep -q "no such running job" "$WORK/e" || fail "--near an ended job gave $rc: $(cat "$WORK/e")"

# Busy h1-h3 with one spinning job each; h4 stays idle.
for i in 1 2 3; do
	run_on 1 run --detach --on "${H[$i]}" -- nice -n 19 sh -c 'while :; do :; done' >/dev/null || fail "spinner on h$i"
done
loads_ready() {
	run_on 1 hosts --json | python3 -c '
import json, sys
h = {x["name"]: x["load"] for x in json.load(sys.stdin)}
n = sys.argv[1:]
ok = all(h[x] >= 0.4 for x in n[:3]) and h[n[3]] < 0.1
sys.exit(0 if ok else 1)' "${H[@]}"
}
wait_until 10 loads_ready || fail "loads never showed: $(run_on 1 hosts)"
note "$(run_on 1 hosts)"

for p in least-loaded jsq pod:d=4 probe:d=4 threshold:t=0.3,lp=3; do
	got=$(run_on 1 run --policy "$p" --explain -- sh -c 'echo $ROAM_HOST' 2>"$WORK/e")
	[ "$got" = "${H[4]}" ] || fail "$p chose $got, not the idle h4: $(cat "$WORK/e")"
	grep -q "decided ${H[4]}" "$WORK/e" || fail "$p --explain: $(cat "$WORK/e")"
	note "$(cat "$WORK/e")"
	# Let h4's next heartbeat replace the load h1 counted for this job.
	sleep 1.2
done
# threshold at an idle origin keeps the job there.
[ "$(where 4 --policy threshold:t=0.3,lp=3)" = "${H[4]}" ] || fail "threshold at idle h4 moved"
# probe:d=1 from a busy origin asks one host; whatever it is, it is a host.
[ -n "$(where 1 --policy probe:d=1)" ] || fail "probe:d=1"

# random spreads over the hosts.
seen=$(for k in $(seq 1 16); do where 2 --policy random; done | sort -u | wc -l)
[ "$seen" -ge 2 ] || fail "random used $seen host(s) in 16 runs"
echo "PASS"
