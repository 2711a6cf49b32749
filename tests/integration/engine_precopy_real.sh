#!/bin/bash
# engine_precopy_real: python3 (Debian's, unmodified), building and changing
# a large dict while it prints, is live-checkpointed (pre-copy) twice
# mid-run through a pipe into roam restore, once with page hashing forced:
# its output must be byte-identical to an uninterrupted run.
# timeout: 150
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib/precopy.sh"
need_root
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3) || skip "needs python3"
cat >"$T/churn.py" <<'PYEOF'
import hashlib
d = {}
h = hashlib.sha256()
for i in range(1, 13500001):   # ~4.5 s: room for two live checkpoints on a loaded machine
    d[i % 70000] = str(i) * (i % 9 + 1)
    if i % 5000 == 0:
        for k in range(i % 13, 70000, 97):
            d.pop(k, None)
    if i % 150000 == 0:
        h.update(repr(sorted(d.items())[:200]).encode())
        print(i, len(d), h.hexdigest()[:16], flush=True)
print("done", h.hexdigest())
PYEOF

log "reference run"
"$PY" -I -S "$T/churn.py" >"$T/ref.out" 2>"$T/ref.err" || fail "reference run failed: $(tail -n 3 "$T/ref.err")"
hz=$(getconf CLK_TCK)
log "live-checkpointed run"
start_program "$PY" -I -S "$T/churn.py"
for mode in uffd hash; do
	base=$(cpu_ticks "$SPID")
	wait_until 60 eval '[ "$(cpu_ticks $SPID)" -ge $((base + hz / 2)) ] || ! alive $SPID' ||
		fail "no progress before the $mode checkpoint"
	alive "$SPID" || fail "python finished before the $mode checkpoint"
	if [ $mode = hash ]; then live_pipe ROAM_DIRTY_HASH=1; else live_pipe; fi
done
wait_exit "$WAITER" 120
[ "$RC" = 0 ] || fail "exit status $RC after the live checkpoints"
cmp "$T/ref.out" "$LOG" || fail "stdout differs from the uninterrupted run"
cmp "$T/ref.err" "$RUN/stderr" || fail "stderr differs from the uninterrupted run"
log "output identical after 2 live checkpoints"
