#!/bin/bash
# A process holding one end of a socket pair whose other end another
# process holds (not its child): the connection cannot move with it.
# roam checkpoint must refuse it, name the socket and why, and leave the
# process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('socket' 'fd @FD@\b' 'connected outside the process')
refuse_test sockpeer
