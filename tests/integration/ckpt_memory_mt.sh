#!/bin/bash
# Checkpoint/restore of the memory subject (-t 3): see tests/subjects/memory.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test memory -t 3
