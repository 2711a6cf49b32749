#!/bin/bash
# A process with a child that ended and was never reaped (a zombie): a
# process tree is taken whole, and a zombie cannot be made again.
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('zombie' '\b@PID@\b')
refuse_test zombie
