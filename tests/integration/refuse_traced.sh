#!/bin/bash
# A process already traced by another tracer (a helper that PTRACE_SEIZEs
# it): roam refuses, says so, and leaves the tracer in place.
# timeout: 60
. "$(dirname "$0")/lib.sh"
TRACER=""
trace_it() {
	"$ROAM_SUBJECTS/hold" trace "$SPID" >"$RUN/tracer.log" 2>&1 &
	TRACER=$!
	track "$TRACER"
	wait_until 5 eval '[ "$(proc_field $SPID TracerPid)" = "$TRACER" ]' ||
		fail "tracer did not attach: $(cat "$RUN/tracer.log")"
}
untrace_it() {
	[ "$(proc_field "$SPID" TracerPid)" = "$TRACER" ] ||
		fail "tracer $TRACER no longer attached after the refusal"
	kill "$TRACER"
	wait "$TRACER" 2>/dev/null
	wait_until 5 eval '[ "$(proc_field $SPID TracerPid)" = 0 ]' || fail "tracer did not let go"
}
PREPARE=trace_it UNPREPARE=untrace_it
EXPECT=('trac')
refuse_test plain
