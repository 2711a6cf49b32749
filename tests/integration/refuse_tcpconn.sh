#!/bin/bash
# A process holding both ends of a TCP connection (over 127.0.0.1): roam
# checkpoint refuses it, naming the connection, and leaves it running.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('TCP connection on fd @FD@\b' 'established' 'from 127\.0\.0\.1:[0-9]+ to 127\.0\.0\.1:[0-9]+')
refuse_test tcpconn
