#!/bin/bash
# The fds subject with stdout and stderr on a pipe (to a `cat` appending to
# the log), as under a shell pipeline.  Such stdio cannot be rebuilt from
# the image alone: `roam restore` without --inherit-stdio must fail cleanly
# (exit 255, no process left), and with --inherit-stdio the process gets
# roam restore's own fds 0-2, here another pipe to a `cat`.  Checkpointed
# twice (once --leave-running), it must still pass, its PASS arriving
# through the new pipe.
# timeout: 60
. "$(dirname "$0")/lib.sh"

# piped CMD...: run CMD with stdout+stderr piped into the log; the subshell
# (our WAITER) exits with CMD's status once the cat has written everything.
piped() {
	( "$@" 2>&1 </dev/null | cat >>"$LOG"; exit "${PIPESTATUS[0]}" ) &
	WAITER=$!
	track "$WAITER"
}

# child_running EXE: pid of the WAITER subshell's child running EXE.
child_running() {
	local c
	for c in $(cat /proc/"$WAITER"/task/*/children 2>/dev/null); do
		[ "$(readlink "/proc/$c/exe")" = "$1" ] && { echo "$c"; return 0; }
	done
	return 1
}

restore_piped() {
	local pf="$T/restore$IMG_N.pid"
	rm -f "$pf"
	piped "$ROAM" restore "$IMG" --inherit-stdio --pid-file "$pf"
	wait_until 10 test -s "$pf" || { cat "$LOG"; fail "roam restore --inherit-stdio wrote no pid file"; }
	SPID=$(cat "$pf")
	track "$SPID"
	alive "$SPID" || fail "restored process $SPID not running"
}

RUN="$T/run" LOG="$T/run/log" STOP="$T/run/stop"
mkdir -p "$RUN"
: >"$LOG"
export ROAM_STOP="$STOP"
piped "$ROAM_SUBJECTS/fds" -t 1
wait_until 10 child_running "$ROAM_SUBJECTS/fds" >/dev/null || fail "subject did not start"
SPID=$(child_running "$ROAM_SUBJECTS/fds") ORIG_PID=$SPID
track "$SPID"
wait_ready
[ "$(readlink /proc/"$SPID"/fd/1)" = "$(readlink /proc/"$SPID"/fd/2)" ] &&
	[[ $(readlink /proc/"$SPID"/fd/1) == pipe:* ]] || fail "subject's stdout is not the pipe"
run_for 0.2

log "checkpoint (stdio on a pipe)"
new_image
timeout -k 5 "$ROAM_CMD_TIMEOUT" "$ROAM" checkpoint "$SPID" -o "$IMG" 2>"$T/checkpoint.err"
rc=$?
[ $rc = 0 ] || fail "roam checkpoint exited $rc: $(cat "$T/checkpoint.err")"
wait_exit "$WAITER" 10
[ "$RC" -gt 128 ] || fail "the process ended with status $RC, not killed"

log "restore without --inherit-stdio must fail cleanly"
timeout -k 5 20 "$ROAM" restore "$IMG" --pid-file "$T/plain.pid" </dev/null >"$T/plain.out" 2>"$T/plain.err"
rc=$?
echo "roam restore said: $(cat "$T/plain.err")"
[ $rc = 255 ] || fail "roam restore without --inherit-stdio exited $rc, not 255"
grep -q '^roam restore: ' "$T/plain.err" || fail "no 'roam restore: ' message"
if [ -s "$T/plain.pid" ] && alive "$(cat "$T/plain.pid")"; then
	fail "a restored process was left running"
fi

log "restore --inherit-stdio"
restore_piped
run_for 0.3
checkpoint --leave-running
run_for 0.2
checkpoint
restore_piped
run_for 0.3
stop_and_check PASS
log "ok"
