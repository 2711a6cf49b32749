#!/bin/bash
# Checkpoint/restore of the timers subject (POSIX timers under their ids):
# see tests/subjects/timers.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test timers
