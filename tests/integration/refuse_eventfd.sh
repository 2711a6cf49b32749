#!/bin/bash
# A process holding an eventfd.
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('eventfd' 'fd @FD@\b')
refuse_test eventfd
