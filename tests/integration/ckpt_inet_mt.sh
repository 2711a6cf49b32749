#!/bin/bash
# The inet subject with threads beside it.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test inet -t 3
