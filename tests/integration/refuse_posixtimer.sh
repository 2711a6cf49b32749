#!/bin/bash
# A process holding a POSIX timer (timer_create).
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('timer')
refuse_test posixtimer
