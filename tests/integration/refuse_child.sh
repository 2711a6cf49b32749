#!/bin/bash
# A process with a child process (process trees are not supported yet).
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('child' '\b@PID@\b')
refuse_test child
