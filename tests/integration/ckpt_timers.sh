#!/bin/bash
# Checkpoint/restore of the timers subject (POSIX timers under their ids):
# see tests/subjects/timers.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
# Restoring a POSIX timer under its id needs PR_TIMER_CREATE_RESTORE_IDS.
/usr/bin/python3 -c 'import ctypes, sys; sys.exit(ctypes.CDLL(None).prctl(77, 2, 0, 0, 0) < 0)' ||
	skip "needs Linux 6.17 or later (PR_TIMER_CREATE_RESTORE_IDS) to restore POSIX timers"
ckpt_test timers
