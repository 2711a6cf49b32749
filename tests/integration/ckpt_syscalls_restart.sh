#!/bin/bash
# Checkpoints in quick succession (30 ms apart) of the syscalls subject
# (-t 1), alternating --leave-running and checkpoint+restore: a sleeping
# thread that a --leave-running checkpoint resumed is still inside the
# restarted call (restart_syscall, for nanosleep, timed futex and poll) when
# the next checkpoint comes, and must come back from that one too without
# EINTR and without sleeping short.  See tests/subjects/syscalls.c.
# timeout: 90
. "$(dirname "$0")/lib.sh"
CYCLES="L K L K L K" CYCLE_GAP=0.03
ckpt_test syscalls -t 1
