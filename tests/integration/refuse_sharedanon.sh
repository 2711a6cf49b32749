#!/bin/bash
# A process whose shared anonymous memory another process maps too (not its
# child: one it made through a process that has left). After a restore the
# two would no longer share it, and the other's writes are no writes in
# this process's page tables, which a pre-copy would miss.
# roam checkpoint must refuse it, name the memory and the other process, and
# leave the process untouched.
# timeout: 60
. "$(dirname "$0")/lib.sh"
EXPECT=('shared anonymous memory' '@ADDR@' 'pid @PID@')
refuse_test sharedanon
