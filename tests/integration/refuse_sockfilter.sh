#!/bin/bash
# A UDP socket with a socket filter (classic BPF) attached: refused.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('socket on fd @FD@\b' 'socket filter')
refuse_test sockfilter
