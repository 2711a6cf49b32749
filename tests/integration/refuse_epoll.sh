#!/bin/bash
# A process holding an epoll instance.
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('epoll' 'fd @FD@\b')
refuse_test epoll
