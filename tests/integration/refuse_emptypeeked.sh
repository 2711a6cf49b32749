#!/bin/bash
# A process holding a datagram socket pair whose queue has an empty message
# it peeked at (the kernel marks it) and another after it: a walk of the
# queue with a peek offset passes over such a message, so roam cannot list
# the queue. The charge of the queued messages on the sender's buffer tells
# (SIOCOUTQ). roam checkpoint must refuse, name the socket and why, and
# leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('socket' 'fd @FD@\b' 'messages a peek does not list')
refuse_test emptypeeked
