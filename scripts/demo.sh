#!/bin/bash
# The main job: builds roam, starts a local cluster of three hosts, runs a
# mix of jobs through `roam run`, migrates a running python3 between hosts
# while its output keeps streaming to this terminal, drains a host, and
# prints a summary. As root each host is its own network, PID, mount and UTS
# namespace (addresses 10.77.0.x exist only inside them); without root the
# hosts are roamd's on 127.0.0.1 ports. scripts/demo-engine.sh shows the
# checkpoint/restore engine alone.
set -eu
cd "$(dirname "$0")/.."
. scripts/demo-prelude.sh
# (The test suite runs this demo against each of its builds.)
export ROAM_BUILD=${ROAM_BUILD:-$PWD/build}
# The cluster: the same set-up the multi-host tests use (and remove).
. tests/integration/lib/cluster.sh
set +u
SHARED=$WORK/shared
mkdir -p "$SHARED" && chmod 777 "$SHARED"
echo "== 1. a cluster of three hosts"
cluster_up 3 --allow-root --shared "$SHARED" >/dev/null
H1=$(hname 1) H2=$(hname 2) H3=$(hname 3)
run_on 1 hosts | sed 's/^/   | /'

echo "== 2. a mix of jobs through roam run, placed by the policies"
head -c 8388608 /dev/urandom >"$WORK/blob"
want=$(sha256sum <"$WORK/blob" | cut -d' ' -f1)
got=$(run_on 1 run --on "$H2" -- sha256sum <"$WORK/blob" | cut -d' ' -f1)
echo "   sha256sum of 8 MiB of stdin, on $H2: $( [ "$got" = "$want" ] && echo right || echo WRONG)"
echo "   bc on the least loaded host: 2^100 = $(echo '2^100' | run_on 1 run --policy least-loaded -- bc)"
for k in 1 2 3 4; do
	run_on 1 run --detach --policy random -- /usr/bin/python3 -c 'import time; time.sleep(60)' >/dev/null
done
run_on 1 run --explain --policy probe:d=2 -- true 2>&1 | sed 's/^/   explain: /'
run_on 1 ps | sed 's/^/   | /'

PI="$PWD/scripts/pi.py 24000 1000 0.2"
echo "== 3. python3 computes pi on $H1; it moves to $H2, then $H3, while it prints"
/usr/bin/python3 -I -S $PI >"$WORK/ref.out" 2>"$WORK/ref.err"
# Its output streams here (and into run.out, to be compared at the end).
( (cd / && exec "$ROAM" run --control "$WORK/h1.sock" --on "$H1" -- /usr/bin/python3 -I -S $PI) \
	2>"$WORK/run.err" </dev/null; echo $? >"$WORK/rc" ) | tee "$WORK/run.out" | sed -u 's/^/   | /' &
runner=$!
sleep 1.5
id=$(run_on 1 ps --json | python3 -c 'import json,sys; print([j["id"] for j in json.load(sys.stdin) if "pi.py" in j["command"] and j["state"] == "running"][-1])')
run_on 1 migrate "$id" --to "$H2" --stats | sed 's/^/   >> /'
sleep 1.5
run_on 2 migrate "$id" --to "$H3" --stats | sed 's/^/   >> /'
wait $runner
rc=$(cat "$WORK/rc")
if cmp -s "$WORK/ref.out" "$WORK/run.out" && cmp -s "$WORK/ref.err" "$WORK/run.err" && [ $rc = 0 ]; then
	result="output byte-identical to an unmigrated run ($(cat "$WORK/run.err")), status 0 at the home"
else
	result="OUTPUT DIFFERS (status $rc)"
fi
echo "   $result"

echo "== 4. drain $H3: its jobs move away, and no new job goes there"
# A job placed with --on is pinned there (drain leaves it): these two go
# --near one, which then ends.
anchor=$(run_on 1 run --on "$H3" --detach -- sleep 60)
for k in 1 2; do run_on 1 run --near "$anchor" --detach -- /usr/bin/python3 -c 'import time; time.sleep(60)' >/dev/null; done
run_on 1 kill "$anchor" >/dev/null
sleep 1
run_on 3 drain "$H3" | sed 's/^/   >> /'
run_on 1 ps | sed 's/^/   | /'
left=$(run_on 1 ps --json | python3 -c "import json,sys; print(sum(1 for j in json.load(sys.stdin) if j['host']=='$H3' and j['state']=='running'))")
run_on 3 undrain "$H3" >/dev/null

echo "== summary"
echo "   hosts: 3 ($([ $AS_ROOT = 1 ] && echo 'network, PID, mount and UTS namespaces' || echo '127.0.0.1 ports'))"
echo "   pi: $result"
echo "   drain: $left jobs left on $H3"
[ "$left" = 0 ] && [[ "$result" == output* ]]
