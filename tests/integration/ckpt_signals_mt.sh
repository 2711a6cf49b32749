#!/bin/bash
# Checkpoint/restore of the signals subject (-t 3): see tests/subjects/signals.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test signals -t 3
