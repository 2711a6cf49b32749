#!/bin/bash
# Checkpoint/restore of the pid subject -t 2, restored with --same-pid, so it
# must find its saved pid (and tids) again: see tests/subjects/pid.c.
# timeout: 60
# alone: it needs pids it gave up to stay free (or to become its own), and
# another test's processes, with pids wrapping at pid_max, would take them
. "$(dirname "$0")/lib.sh"
RESTORE_OPTS=(--same-pid)
ckpt_test pid -t 2
[ "$SPID" = "$ORIG_PID" ] || fail "restored under pid $SPID, not $ORIG_PID, despite --same-pid"
