#!/bin/bash
# Checkpoint/restore of the memory-static subject (-t 2): see tests/subjects/memory-static.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test memory-static -t 2
