#!/bin/bash
# A process holding an io_uring instance (fd and its mapped ring).
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
[ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 0 ] ||
	skip "io_uring is disabled on this host (kernel.io_uring_disabled)"
EXPECT=('io_uring')
refuse_test io_uring
