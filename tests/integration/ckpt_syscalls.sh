#!/bin/bash
# Checkpoint/restore of the syscalls subject: see tests/subjects/syscalls.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test syscalls
