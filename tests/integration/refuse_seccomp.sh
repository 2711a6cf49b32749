#!/bin/bash
# A process under a seccomp filter (allowing everything).
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('seccomp')
refuse_test seccomp
