#!/bin/bash
# A process holding an inotify instance (its watches name paths of this host).
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('inotify' 'fd @FD@\b')
refuse_test inotify
