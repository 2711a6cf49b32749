#!/bin/bash
# Checkpoint/restore of the threads subject: see tests/subjects/threads.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test threads
