#!/bin/bash
# Never twice: a roamd killed outright leaves its jobs behind (no PID
# namespace here to take them down); their homes were told the host was
# lost, so the roamd that starts next on that host kills them before
# anything else. Nor are job ids given twice: the next roamd's ids follow the
# ones its state directory reserved, so the old id names nothing.
# timeout: 60
set -u
B=${ROAM_BUILD:?}
[ "$(id -u)" = 0 ] || { echo "needs root (job cgroups)"; exit 77; }
W=$(mktemp -d /var/tmp/roam-restart.XXXXXX)
NAME=rr$$
PORT=$((21000 + $$ % 20000))
PID=""
cleanup() {
	[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null
	sleep 0.5
	[ -n "${JOBPID:-}" ] && kill -9 "$JOBPID" 2>/dev/null
	for d in /sys/fs/cgroup/unified /sys/fs/cgroup /sys/fs/cgroup/pids /sys/fs/cgroup/freezer /sys/fs/cgroup/cpuacct; do
		[ -d "$d/roam.$NAME" ] && { find "$d/roam.$NAME" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null; rmdir "$d/roam.$NAME" 2>/dev/null; }
	done
	rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -n 20 "$W"/roamd*.log; exit 1; }
start() { # N
	"$B/roamd" --name $NAME --listen 127.0.0.1:$PORT --key "$W/key" --control "$W/c.sock" --allow-root --state-dir "$W/state" >"$W/roamd$1.log" 2>&1 &
	PID=$!
	for k in $(seq 1 50); do "$B/roam" hosts --control "$W/c.sock" >/dev/null 2>&1 && return; sleep 0.1; done
	fail "roamd $1 did not start"
}
"$B/roam" keygen "$W/key" || fail keygen
start 1
id=$(cd / && "$B/roam" run --control "$W/c.sock" --detach -- sleep 300) || fail "detach"
JOBPID=$("$B/roam" ps --control "$W/c.sock" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pid"])')
[ -n "$JOBPID" ] && kill -0 "$JOBPID" || fail "no job pid"
kill -9 $PID
wait $PID 2>/dev/null
sleep 0.2
kill -0 "$JOBPID" 2>/dev/null || fail "the job died with its roamd: this test needs it left behind"
start 2
for k in $(seq 1 30); do kill -0 "$JOBPID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$JOBPID" 2>/dev/null && fail "job $id (pid $JOBPID) still runs after its host's roamd restarted"
grep -q "left by an earlier roamd" "$W/roamd2.log" || fail "the kill was not logged"
JOBPID=""
[ "$(stat -c %a "$W/state")" = 700 ] || fail "state directory mode $(stat -c %a "$W/state")"
"$B/roam" wait --control "$W/c.sock" "$id" 2>"$W/e"; rc=$?
[ $rc = 255 ] && grep -q "no such job $id" "$W/e" || fail "wait for the old id $id after the restart gave $rc: $(cat "$W/e")"
id2=$(cd / && "$B/roam" run --control "$W/c.sock" --detach -- true) || fail "detach after the restart"
[ "${id2%.*}" = "$NAME" ] && [ "${id2##*.}" -gt "${id##*.}" ] || fail "job id $id2 after the restart does not follow $id"
# A sequence file that does not parse stops roamd rather than risk reusing ids.
kill -TERM $PID; wait $PID 2>/dev/null; PID=""
echo garbage >"$W/state/seq"
"$B/roamd" --name $NAME --listen 127.0.0.1:$PORT --key "$W/key" --control "$W/c.sock" --state-dir "$W/state" 2>"$W/e"; rc=$?
[ $rc = 1 ] && grep -q "corrupt sequence file" "$W/e" || fail "a corrupt seq file gave $rc: $(cat "$W/e")"
echo "PASS"
