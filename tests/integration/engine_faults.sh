#!/bin/bash
# Faults during checkpoint: the disk fills up, the reader of `-o -` goes
# away. The process must resume untouched (neither stopped nor traced, and
# still passing its own checks) and no partial image may be left behind.
# --same-pid with the pid taken is an error, and nothing runs.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_root

mkdir -p "$T/small"
mount -t tmpfs -o size=256k roamtest "$T/small" || fail "cannot mount a small tmpfs"
trap 'umount "$T/small" 2>/dev/null; cleanup' EXIT

untouched() {
	alive "$SPID" || fail "$1: process $SPID is gone"
	wait_until 5 eval '[ "$(proc_field $SPID TracerPid)" = 0 ]' || fail "$1: still traced"
	case $(proc_state "$SPID") in T | t) fail "$1: left stopped" ;; esac
	run_for 0.2
}

start_subject memory
run_for 0.2
log "disk full"
"$ROAM" checkpoint "$SPID" -o "$T/small/img" 2>"$T/full.err"
rc=$?
cat "$T/full.err"
[ $rc = 255 ] || fail "checkpoint onto a full disk exited $rc"
grep -qi "no space" "$T/full.err" || fail "the message does not say the disk is full"
[ -z "$(ls -A "$T/small")" ] || fail "partial files left: $(ls -A "$T/small")"
untouched "disk full"

log "the reader of the stream goes away"
"$ROAM" checkpoint "$SPID" -o - 2>"$T/pipe.err" | head -c 1000 >/dev/null
rc=${PIPESTATUS[0]}
[ "$rc" != 0 ] || fail "checkpoint into a closed pipe succeeded"
untouched "closed pipe"

log "--same-pid while the pid is taken"
checkpoint --leave-running
"$ROAM" restore "$IMG" --same-pid 2>"$T/same.err"
rc=$?
cat "$T/same.err"
[ $rc = 255 ] || fail "restore --same-pid exited $rc"
grep -q "in use" "$T/same.err" || fail "the message does not say the pid is in use"
[ "$(count_subjects memory)" = 1 ] || fail "a second memory subject runs"
untouched "same pid"
stop_and_check PASS
