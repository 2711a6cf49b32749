#!/bin/bash
# A job outlives its home: when the host where `roam run` was typed dies,
# the job runs on where it is (unlike MOSIX, whose processes die with their
# home node), its output is kept there, and `roam attach ID` typed on any
# other host re-homes it: the output kept since, the live output, and its
# exit status come back there. Also for a job that ended while homeless.
# timeout: 120
. "$(dirname "$0")/lib/cluster.sh"

cluster_up 3 --allow-root
H2=$(hname 2)
PY='import time, sys
for i in range(int(sys.argv[1])):
    print("line", i, flush=True)
    time.sleep(0.1)
sys.exit(3)'

id=$(run_on 1 run --on "$H2" --detach -- python3 -c "$PY" 40) || fail "detached run"
id2=$(run_on 1 run --on "$H2" --detach -- python3 -c "$PY" 12) || fail "detached run 2"
sleep 0.5
kill -9 "$(roamd_pid 1)"
h1_down() { run_on 3 hosts --json | python3 -c "
import json, sys
sys.exit(0 if all(h['state'] != 'up' for h in json.load(sys.stdin) if h['name'] == '$(hname 1)') else 1)"; }
wait_until 10 h1_down || fail "h3 still sees h1 up after its roamd was killed"
# The home is gone; the jobs run on h2 and h3 can take them.
run_on 3 ps --json | grep -q "\"$id\"" || fail "ps on h3 does not list $id after its home died"
run_on 3 attach "$id" >"$WORK/a1" 2>&1
rc=$?
[ $rc = 3 ] || fail "attach from h3: status $rc, not 3: $(tail -n 3 "$WORK/a1")"
grep -q "^line 39$" "$WORK/a1" || fail "the last line did not come: $(tail -n 3 "$WORK/a1")"
# Whatever came is consecutive and ends at the end: nothing lost or doubled
# since the home died.
first=$(head -n1 "$WORK/a1" | awk '{print $2}')
seq "$first" 39 | sed 's/^/line /' | diff - "$WORK/a1" >/dev/null || fail "output kept while homeless is not whole: $(head -n 3 "$WORK/a1")"
note "attach on h3 after the home died: lines $first..39, status 3"
# The short one ended while homeless: its end was kept.
run_on 2 attach "$id2" >"$WORK/a2" 2>&1
rc=$?
[ $rc = 3 ] || fail "attach to a job that ended homeless: status $rc: $(cat "$WORK/a2")"
grep -q "^line 11$" "$WORK/a2" || fail "its last line was not kept: $(cat "$WORK/a2")"
run_on 3 attach "$(hname 1).999" >"$WORK/a3" 2>&1 && fail "attach to an unknown homeless job succeeded"
grep -q "no such job" "$WORK/a3" || fail "unknown homeless job: $(cat "$WORK/a3")"
echo PASS
