#!/bin/bash
# A shell pipeline of programs nobody here wrote, as one process tree: bash
# runs python3 (numbered lines, some arithmetic on each) into sha256sum, and
# the tree is checkpointed and restored several times while the data
# flows: whatever sat in the pipe between them, and the pipeline's shared
# stdout, come through, so the digest and the rest of the output are
# byte-identical to an uninterrupted run's.
# timeout: 180
. "$(dirname "$0")/lib.sh"
command -v sha256sum >/dev/null || skip "needs sha256sum"
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3) || skip "needs python3"
cat >"$T/gen.py" <<'PYEOF'
import sys
w = sys.stdout.write
for i in range(2000000):
    w("%d %d\n" % (i, (i * i) % 1000003))
    if i % 200000 == 0:
        print("gen", i, file=sys.stderr, flush=True)
PYEOF
# Checkpoints at python3's second, fourth and sixth progress lines (of ten):
# by its own count, whatever the CPU time of the tree under load.
progress() { [ "$(grep -c '^gen' "$RUN/stderr")" -ge $((2 * $1)) ]; }
PROGRESS=progress
real_test 3 bash -c "echo start; $PY -I -S $T/gen.py | sha256sum; echo status \${PIPESTATUS[*]}"
