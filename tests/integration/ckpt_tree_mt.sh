#!/bin/bash
# The tree subject with four threads in its root.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test tree -t 4
