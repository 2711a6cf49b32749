#!/bin/bash
# python3 (Debian's, unmodified) runs a deterministic computation, printing
# a line at each step, and is checkpointed and restored several times
# mid-run: its output must be byte-identical to an uninterrupted run.
# timeout: 120
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3) || skip "needs python3"
cat >"$T/lcg.py" <<'PYEOF'
x = 1
digits = []
for i in range(600):
    for j in range(20000):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    digits.append(x % 10)
    print(i, x, sum(digits), flush=True)
PYEOF
real_test 3 "$PY" -I -S "$T/lcg.py"
