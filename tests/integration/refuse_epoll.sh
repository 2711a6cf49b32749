#!/bin/bash
# A process whose epoll watches a pipe added as a descriptor it has closed
# since (the pipe lives on through a dup): restore could not add it again.
# roam checkpoint must refuse it, name the epoll and why, and leave the
# process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('epoll' 'fd @FD@\b' 'no longer open')
refuse_test epoll-lost
