#!/bin/bash
# The locks subject with four threads beside it: locks belong to the
# process (POSIX) or to its open file descriptions, whatever thread runs.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test locks -t 4
