#!/bin/bash
# Faults: a daemon killed while it runs a job (roam run says so and exits
# 255 within seconds; the host is marked down, then up again when it
# returns), a peer holding another cluster key (refused and logged, never
# a member, never runs anything), a captured session replayed (refused),
# and a peer speaking garbage (dropped).
# timeout: 120
. "$(dirname "$0")/lib/cluster.sh"

cluster_up 3 --allow-root
H2=$(hname 2)

# --- a daemon killed mid-run
bg_run_on 1 run --on "$H2" -- sh -c 'echo started $$; exec sleep 60' >"$WORK/bg.out"
rp=$BG_PID
sleep 1
kill -9 "$(roamd_pid 2)"
t0=$SECONDS
while kill -0 $rp 2>/dev/null && [ $((SECONDS - t0)) -lt 20 ]; do sleep 0.1; done
kill -0 $rp 2>/dev/null && { kill -9 $rp; fail "roam run still waiting 20 s after its host died"; }
wait $rp; rc=$?
[ $rc = 255 ] || fail "roam run exited $rc after its host died, not 255"
# Without root there is no PID namespace to take the orphaned job down with
# its roamd (and no cgroup for the next roamd to find): end it here.
orphan=$(awk '/^started/ {print $2}' "$WORK/bg.out")
[ $AS_ROOT = 1 ] || { [ -n "$orphan" ] && kill -9 -- "-$orphan" 2>/dev/null; }
note "roam run exited 255 $((SECONDS - t0)) s after the kill"
h2_state() { run_on 1 hosts --json | python3 -c '
import json, sys
print({h["name"]: h["state"] for h in json.load(sys.stdin)}.get(sys.argv[1], "absent"))' "$H2"; }
h2_down() { [ "$(h2_state)" = down ]; }
wait_until 10 h2_down || fail "h2 not marked down: $(run_on 1 hosts)"
run_on 1 run --on "$H2" -- true 2>"$WORK/e"; rc=$?
[ $rc = 255 ] || fail "run on a down host gave $rc"
note "run on the down host: $(cat "$WORK/e")"
# It comes back.
start_host 2 --allow-root
wait_until 15 hosts_up_on 1 3 || fail "h2 did not come back: $(run_on 1 hosts)"
[ "$(run_on 1 run --on "$H2" -- sh -c 'echo $ROAM_HOST')" = "$H2" ] || fail "run on the returned h2"

# --- a peer with another cluster key
NHOSTS=4
make_host_net 4
$ROAM keygen "$WORK/key2" || fail "keygen 2"
HOST_FLAGS[4]="--key $WORK/key2"
start_host 4 --allow-root
sleep 3
grep -q "failed cluster-key authentication" "$WORK/h1.log" "$WORK/h4.log" ||
	fail "no authentication failure logged"
run_on 1 hosts | grep -q "$(hname 4)" && fail "h4 with the wrong key became a member"
run_on 4 run --on "$(hname 1)" -- true 2>"$WORK/e"; rc=$?
[ $rc = 255 ] || fail "h4 with the wrong key could run on h1 (rc $rc)"
grep "started" "$WORK/h1.log" | grep -q "$(hname 4)\." && fail "h1 started a job for h4"
note "wrong key: $(grep -h "authentication" "$WORK/h1.log" "$WORK/h4.log" | head -n 2)"

# --- a replayed session: h5 joins through a recorder in h3's network; the
# recorded bytes (its HELLO, FINISH and sealed heartbeats) are then sent
# again to h1 on a new connection: h1 must refuse the FINISH and drop it.
HOST_ADDR_1=$(host_addr 1)
if [ $AS_ROOT = 1 ]; then REC_HOST=10.77.0.3 REC_PORT=7171; else REC_HOST=127.0.0.1 REC_PORT=$((BASE_PORT + 50)); fi
in_host_net 3 python3 "$(dirname "$0")/lib/replay.py" record $REC_HOST $REC_PORT \
	"${HOST_ADDR_1%:*}" "${HOST_ADDR_1#*:}" "$WORK/captured" >"$WORK/rec.log" 2>&1 &
REC=$!
wait_until 5 grep -q listening "$WORK/rec.log" || fail "recorder did not start"
NHOSTS=5
make_host_net 5
HOST_FLAGS[5]="--peers $REC_HOST:$REC_PORT"
start_host 5 --allow-root
wait_until 10 hosts_up_on 1 4 || fail "h5 did not join through the recorder: $(run_on 1 hosts)"
wait $REC
[ -s "$WORK/captured" ] || fail "nothing captured"
before=$(grep -c "failed cluster-key authentication" "$WORK/h1.log")
in_host_net 3 python3 "$(dirname "$0")/lib/replay.py" replay "${HOST_ADDR_1%:*}" "${HOST_ADDR_1#*:}" "$WORK/captured" || fail "replay"
sleep 0.3
after=$(grep -c "failed cluster-key authentication" "$WORK/h1.log")
[ "$after" -gt "$before" ] || fail "replayed session not refused: $(tail -n 5 "$WORK/h1.log")"
note "replay of $(stat -c %s "$WORK/captured") captured bytes refused: $(grep "authentication" "$WORK/h1.log" | tail -n 1)"

# --- garbage on the peer port
in_host_net 3 bash -c "exec 3<>/dev/tcp/${HOST_ADDR_1%:*}/${HOST_ADDR_1#*:}; printf 'GET / HTTP/1.0\r\n\r\n%.0s' {1..8} >&3; sleep 0.5" 2>/dev/null
sleep 0.5
grep -q "not a roam peer" "$WORK/h1.log" || fail "garbage peer not dropped and logged"
[ "$(run_on 3 run --on "$(hname 1)" -- echo alive)" = alive ] || fail "h1 unusable after garbage"
echo "PASS"
