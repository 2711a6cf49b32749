#!/bin/bash
# A process holding an inotify with an event queued that it has not read:
# restore could not queue it again. roam checkpoint must refuse it, name it
# and why, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('inotify' 'fd @FD@\b' 'events not read')
refuse_test inotify
