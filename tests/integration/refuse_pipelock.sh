#!/bin/bash
# A process holding a flock on a pipe (both ends its own): locks are carried
# for files and directories only.
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('lock on fd @FD@\b' 'not a file')
refuse_test pipelock
