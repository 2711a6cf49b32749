#!/bin/bash
# Checkpoint/restore of the events subject: see tests/subjects/events.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test events
