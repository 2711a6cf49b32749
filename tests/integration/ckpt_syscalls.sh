#!/bin/bash
# Checkpoint/restore of the syscalls subject: see tests/subjects/syscalls.c.
# More cycles than the other subjects, --leave-running ones after restores
# among them: each one interrupts the blocked calls anew.
# timeout: 90
. "$(dirname "$0")/lib.sh"
CYCLES="K L K K L K L K" CYCLE_GAP=0.2
ckpt_test syscalls
