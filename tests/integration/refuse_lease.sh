#!/bin/bash
# A process holding a file lease (F_SETLEASE): its break is a matter between
# the kernel and whoever opens the file next, which a restore cannot take over.
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('file lease' 'fd @FD@\b')
refuse_test lease
