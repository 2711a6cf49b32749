#!/bin/bash
# The events subject with worker threads: see tests/subjects/events.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test events -t 2
