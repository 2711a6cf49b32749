#!/bin/bash
# A process holding a flock(2) lock.
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('lock' 'fd @FD@\b|hold\.lock')
refuse_test flock
