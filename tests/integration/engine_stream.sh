#!/bin/bash
# The image as a stream: `roam checkpoint PID -o - | roam restore -`, the road
# migration will take (no file, no seeking), with a multithreaded subject and
# compressed pages; then a restore of a stream that is cut short must leave
# nothing running.
# timeout: 60
. "$(dirname "$0")/lib.sh"

start_subject threads -t 3
run_for 0.3
log "checkpoint -o - | restore -"
pf="$T/stream.pid"
("$ROAM" checkpoint "$SPID" -o - --compress 2>"$T/ck.err" | "$ROAM" restore - --pid-file "$pf" 2>"$T/rs.err") &
PIPELINE=$!
track "$PIPELINE"
wait_until 10 test -s "$pf" || fail "no pid file from the streamed restore: $(cat "$T/ck.err" "$T/rs.err")"
# The original, killed once its image was written. Not by polling its pid:
# the restored process may already be running under that very pid.
wait "$WAITER" 2>/dev/null
SPID=$(cat "$pf")
WAITER=$PIPELINE
track "$SPID"
alive "$SPID" || fail "the streamed process is not running"
run_for 0.3
stop_and_check PASS

log "a stream cut short"
start_subject memory
run_for 0.2
"$ROAM" checkpoint "$SPID" -o - --leave-running 2>"$T/ck2.err" | head -c 200000 | "$ROAM" restore - 2>"$T/cut.err"
rc=${PIPESTATUS[2]}
cat "$T/cut.err"
[ "$rc" = 255 ] || fail "restore of a cut stream exited $rc"
grep -q "truncated" "$T/cut.err" || fail "the message does not say the stream was truncated"
[ "$(pgrep -fc "$ROAM_SUBJECTS/memory")" = 1 ] || fail "more than one memory subject runs"
run_for 0.2
stop_and_check PASS
