#!/bin/bash
# A process whose clocks are ahead of this host's (here: started in a time
# namespace 100000 s ahead, as after a reboot or on another host) is restored
# in a time namespace of its own, so that CLOCK_MONOTONIC and CLOCK_BOOTTIME
# never go backwards; the clocks subject checks that itself.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_root
unshare --help 2>&1 | grep -q -- --monotonic || skip "needs util-linux unshare --time"

RUN="$T/run1" LOG="$T/run1/log" STOP="$T/run1/stop"
mkdir -p "$RUN"
: >"$LOG"
ROAM_STOP="$STOP" unshare --time --monotonic 100000 --boottime 100000 --fork \
	"$ROAM_SUBJECTS/clocks" >>"$LOG" 2>&1 </dev/null &
WAITER=$!
track "$WAITER"
wait_until 10 eval 'pgrep -P $WAITER >/dev/null' || fail "no subject under unshare"
SPID=$(pgrep -P "$WAITER") ORIG_PID=$SPID
track "$SPID"
wait_ready
[ "$(stat -Lc %i /proc/$SPID/ns/time)" != "$(stat -Lc %i /proc/self/ns/time)" ] ||
	fail "the subject is not in a time namespace of its own"
run_for 0.3

# unshare(1) reports its child's death by signal with status 1: no
# checkpoint() helper for this first one.
new_image
"$ROAM" checkpoint "$SPID" -o "$IMG" 2>"$T/checkpoint.err" || fail "checkpoint: $(cat "$T/checkpoint.err")"
wait_until 10 eval '! alive $SPID' || fail "process $SPID still runs after checkpoint"
restore --stats
grep -q "timens 1" "$T/restore.err" || fail "roam restore made no time namespace: $(cat "$T/restore.err")"
[ "$(stat -Lc %i /proc/$SPID/ns/time)" != "$(stat -Lc %i /proc/self/ns/time)" ] ||
	fail "the restored process shares our time namespace"
mono=$(awk '$1 == "monotonic" || $1 == 1 { print $2 }' /proc/$SPID/timens_offsets)
[ "${mono:-0}" -ge 99000 ] || fail "monotonic offset $mono s, expected about 100000 s"
run_for 0.3
# And once more, from a process that is already in a namespace roam made.
checkpoint
restore
run_for 0.3
stop_and_check PASS
