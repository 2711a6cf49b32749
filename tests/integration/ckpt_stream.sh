#!/bin/bash
# The stream path that migration will use: `roam checkpoint PID -o -` piped
# straight into `roam restore -`, no image file in between.  The threads
# and fpu subjects go through it twice each and must still pass; each
# checkpoint must exit 0 and the old process be gone.  (Not the memory
# subject: its own test already covers mappings, and a failure there would
# hide one here.)
# timeout: 60
. "$(dirname "$0")/lib.sh"

# stream_cycle: checkpoint $SPID into a pipe read by roam restore.
stream_cycle() {
	local pf="$T/stream$IMG_N.pid" old=$SPID oldwaiter=$WAITER
	IMG_N=$((IMG_N + 1))
	rm -f "$pf" "$T/ckpt.rc"
	no_fail
	{ timeout -k 5 "$ROAM_CMD_TIMEOUT" "$ROAM" checkpoint "$old" -o - 2>"$T/checkpoint.err"
	  echo $? >"$T/ckpt.rc"; } |
		"$ROAM" restore - --pid-file "$pf" 2>>"$T/restore.err" &
	WAITER=$!
	track "$WAITER"
	wait_until 30 test -s "$T/ckpt.rc" || fail "roam checkpoint -o - did not finish"
	[ "$(cat "$T/ckpt.rc")" = 0 ] ||
		fail "roam checkpoint -o - exited $(cat "$T/ckpt.rc"): $(cat "$T/checkpoint.err")"
	wait_exit "$oldwaiter" 10
	[ "$RC" -gt 128 ] || fail "the checkpointed process ended with status $RC, not killed"
	wait_until 10 test -s "$pf" || fail "roam restore - wrote no pid file: $(cat "$T/restore.err")"
	SPID=$(cat "$pf")
	track "$SPID"
	alive "$SPID" || fail "restored process $SPID not running"
	echo "streamed $old -> $SPID"
}

for subject in "threads -t 2" "fpu -t 1"; do
	log "$subject"
	start_subject $subject
	run_for 0.3
	stream_cycle
	run_for 0.3
	stream_cycle
	run_for 0.3
	stop_and_check PASS
done
log "ok"
