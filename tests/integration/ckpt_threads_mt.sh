#!/bin/bash
# Checkpoint/restore of the threads subject (-t 4): see tests/subjects/threads.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test threads -t 4
