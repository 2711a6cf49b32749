#!/bin/bash
# A listening TCP socket with a connection queued, not accepted yet (its
# client gone): the program has not seen it, so it cannot be carried.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('socket on fd @FD@\b' 'listening on 127\.0\.0\.1:[0-9]+' 'waiting to be accepted: 1')
refuse_test acceptq
