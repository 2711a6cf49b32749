#!/bin/bash
# A process holding a socket (AF_UNIX, unbound).
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('socket' 'fd @FD@\b')
refuse_test socket
