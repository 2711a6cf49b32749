#!/bin/bash
# Checkpoint/restore of the memory subject: see tests/subjects/memory.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test memory
