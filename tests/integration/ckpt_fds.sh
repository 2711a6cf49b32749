#!/bin/bash
# Checkpoint/restore of the fds subject: see tests/subjects/fds.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test fds
