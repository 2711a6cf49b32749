#!/bin/bash
# bc (unmodified) computes 2500 digits of pi, reading its program from a
# file, and is checkpointed and restored several times mid-computation: the
# digits must be byte-identical to an uninterrupted run.
# timeout: 120
. "$(dirname "$0")/lib.sh"
command -v bc >/dev/null || skip "needs bc"
printf 'scale=2500\n4*a(1)\nquit\n' >"$T/pi.bc"
PROG_STDIN="$T/pi.bc"
real_test 3 bc -l
