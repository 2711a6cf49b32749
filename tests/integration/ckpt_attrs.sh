#!/bin/bash
# Checkpoint/restore of the attrs subject: see tests/subjects/attrs.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test attrs
