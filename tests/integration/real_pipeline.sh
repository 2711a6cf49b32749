#!/bin/bash
# A shell pipeline of programs nobody here wrote, as one process tree: bash
# runs python3 (numbered lines, some arithmetic on each) into sha256sum, and
# the tree is checkpointed and restored several times while the data
# flows: whatever sat in the pipe between them, and the pipeline's shared
# stdout, come through, so the digest and the rest of the output are
# byte-identical to an uninterrupted run's. Then the same with python3
# running asyncio into cat: asyncio needs its old pid back.
# timeout: 240
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

# The asyncio program of real_asyncio into cat: asyncio compares its pid with
# the one it started its loop under, so the restored python3 must have its
# old pid back, though the checkpoint's kill left it held by a zombie of
# init's (reaped late here) until just before the restore.
unset PROGRESS
cp "$(dirname "$0")/lib/asyncio_chat.py" "$T/chat.py"
real_test 3 bash -c "$PY -I -S $T/chat.py 600 | cat"
