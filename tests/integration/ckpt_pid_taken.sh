#!/bin/bash
# The pid subject is checkpointed, then another process takes its pid.
# `roam restore --same-pid` must then fail (exit 255, naming the pid) without
# leaving a process behind; a plain `roam restore` must run it under a new
# pid, where it still passes (it asserts its old pid only when kept).
# timeout: 60
# alone: it needs pids it gave up to stay free (or to become its own), and
# another test's processes, with pids wrapping at pid_max, would take them
. "$(dirname "$0")/lib.sh"
need_root
[ -w /proc/sys/kernel/ns_last_pid ] || skip "needs a writable /proc/sys/kernel/ns_last_pid"

start_subject pid
run_for 0.2
checkpoint
occupy_pid "$ORIG_PID" || fail "could not start a process under pid $ORIG_PID"

log "restore --same-pid while pid $ORIG_PID is taken"
timeout -k 5 20 "$ROAM" restore "$IMG" --same-pid --pid-file "$T/same.pid" 2>"$T/same.err"
rc=$?
echo "roam restore said: $(cat "$T/same.err")"
[ $rc = 124 ] && fail "roam restore --same-pid ran the process although pid $ORIG_PID is taken"
[ $rc = 255 ] || fail "roam restore --same-pid exited $rc, not 255"
grep -q "$ORIG_PID" "$T/same.err" || fail "the message does not name pid $ORIG_PID"
if [ -s "$T/same.pid" ] && alive "$(cat "$T/same.pid")" &&
	[ "$(readlink "/proc/$(cat "$T/same.pid")/exe")" = "$ROAM_SUBJECTS/pid" ]; then
	fail "a restored process was left running"
fi

log "plain restore: a new pid"
restore
[ "$SPID" != "$ORIG_PID" ] || fail "restored under the taken pid $ORIG_PID?"
run_for 0.3
stop_and_check PASS
grep -q "pid not kept" "$LOG" || fail "the subject did not notice its new pid"
log "ok"
