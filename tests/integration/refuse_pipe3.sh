#!/bin/bash
# A process holding, on fd 3, a pipe whose other end belongs to another
# process (here a `sleep`): a pipe roam cannot rebuild by itself.
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
exec 3< <(exec sleep 600)
track $!
EXPECT=('pipe' 'fd 3\b')
refuse_test pipe3
