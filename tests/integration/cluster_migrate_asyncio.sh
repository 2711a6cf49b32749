#!/bin/bash
# roam migrate of python3 running an asyncio program (tests/integration/
# lib/asyncio_chat.py: its event loop's epoll, self-pipe socket pair, two
# streams over a socket pair with bytes in flight, a signal handler, timers
# and a thread pool), live h1 -> h2, then cold h2 -> h1, while it runs: its
# output at the home is byte-identical to an unmigrated run, and so is its
# exit status.
# timeout: 180
. "$(dirname "$0")/lib/cluster.sh"

SHARED=$WORK/shared   # the program, seen by both hosts
mkdir -p "$SHARED"
chmod 777 "$SHARED"
cluster_up 2 --allow-root --shared "$SHARED"
H1=$(hname 1) H2=$(hname 2)
cp "$(dirname "$0")/lib/asyncio_chat.py" "$SHARED/chat.py"
STEPS=3000

/usr/bin/python3 -I -S "$SHARED/chat.py" $STEPS >"$WORK/want" 2>&1 || fail "the reference run failed: $(tail -n 3 "$WORK/want")"

bg_run_on 1 run --on "$H1" -- /usr/bin/python3 -I -S "$SHARED/chat.py" $STEPS >"$WORK/out" 2>&1
runner=$BG_PID
wait_until 60 grep -q '^50 ' "$WORK/out" || fail "python3 never got going: $(tail -n 3 "$WORK/out")"
id=$(last_job 1)
run_on 1 migrate "$id" --to "$H2" --stats >"$WORK/m" 2>&1 || fail "live to h2: $(cat "$WORK/m")"
note "live: $(tail -n 1 "$WORK/m")"
[ "$(job_moves 1 "$id")" = "$H2 1" ] || fail "ps says $(job_moves 1 "$id") after one move"
lines=$(wc -l <"$WORK/out")
wait_until 30 sh -c "[ \$(wc -l <'$WORK/out') -gt $((lines + 20)) ]" ||
	fail "no progress on h2: $(tail -n 3 "$WORK/out")"
run_on 1 migrate "$id" --to "$H1" --cold --stats >"$WORK/m" 2>&1 || fail "cold back to h1: $(cat "$WORK/m")"
note "cold: $(tail -n 1 "$WORK/m")"
[ "$(job_moves 1 "$id")" = "$H1 2" ] || fail "ps says $(job_moves 1 "$id") after two moves"
grep -q '^done ' "$WORK/out" && fail "python3 finished before its second move: make STEPS larger"
wait_until 120 sh -c "! kill -0 $runner" || fail "python3 did not end: $(tail -n 3 "$WORK/out")"
wait "$runner"
rc=$?
[ $rc = 0 ] || fail "python3's exit status came back as $rc: $(tail -n 3 "$WORK/out")"
cmp "$WORK/want" "$WORK/out" || fail "the output differs after two moves: $(diff "$WORK/want" "$WORK/out" | head -n 6)"
note "python3 asyncio: $(tail -n 1 "$WORK/out" | cut -c1-30)... identical after a live and a cold move"
echo PASS
