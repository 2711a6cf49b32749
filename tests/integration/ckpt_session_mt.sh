#!/bin/bash
# Checkpoint/restore of the session subject -t 2: it leads its own session and
# process group, and must still lead them (and get a signal sent to the
# group) after each restore: see tests/subjects/session.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
signal_group() {
	kill -USR1 -- "-$SPID" || fail "no process group $SPID to signal"
	sleep 0.05
}
BEFORE_STOP=signal_group
ckpt_test session -t 2
