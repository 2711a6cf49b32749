#!/bin/bash
# A stopped process (SIGSTOP): roam must not freeze what someone else
# stopped; it refuses, names the state, and leaves the process stopped.
# timeout: 60
. "$(dirname "$0")/lib.sh"
stop_it() {
	kill -STOP "$SPID"
	wait_until 5 eval '[ "$(proc_state $SPID)" = T ]' || fail "subject did not stop"
}
cont_it() {
	[ "$(proc_state "$SPID")" = T ] || fail "subject no longer stopped after the refusal"
	kill -CONT "$SPID"
	wait_until 5 eval '[ "$(proc_state $SPID)" != T ]' || fail "subject did not continue"
}
PREPARE=stop_it UNPREPARE=cont_it
EXPECT=('stopped')
refuse_test plain
