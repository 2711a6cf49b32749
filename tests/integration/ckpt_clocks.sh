#!/bin/bash
# Checkpoint/restore of the clocks subject: see tests/subjects/clocks.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test clocks
