#!/bin/bash
# Checkpoint/restore of the fpu subject (-t 2): see tests/subjects/fpu.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test fpu -t 2
