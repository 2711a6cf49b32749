#!/bin/bash
# A process with a memfd (memfd_create) mapped shared: memory with a file
# name but no file behind it, outside the supported list.
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('memfd')
refuse_test memfd
