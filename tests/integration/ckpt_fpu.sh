#!/bin/bash
# Checkpoint/restore of the fpu subject: see tests/subjects/fpu.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test fpu
