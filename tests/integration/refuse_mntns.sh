#!/bin/bash
# A process in a mount namespace of its own (needs root).
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_root
EXPECT=('mnt|mount' 'namespace|\bns\b')
refuse_test mntns
