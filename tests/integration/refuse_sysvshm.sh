#!/bin/bash
# A process with a SysV shared memory segment attached.
# roam checkpoint must refuse it, name it, and leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('SYSV' '@ADDR@')
refuse_test sysvshm
