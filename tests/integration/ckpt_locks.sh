#!/bin/bash
# Checkpoint/restore of the locks subject (tests/subjects/locks.c): flock,
# POSIX and OFD locks, held again after restore, as other open file
# descriptions see them.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test locks
