#!/bin/bash
# Checkpoint/restore of the syscalls subject (-t 1): see tests/subjects/syscalls.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test syscalls -t 1
