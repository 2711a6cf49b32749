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
migrate_to "$id" "$H2" 1
lines=$(wc -l <"$WORK/out")
wait_until 30 sh -c "[ \$(wc -l <'$WORK/out') -gt $((lines + 20)) ]" ||
	fail "no progress on h2: $(tail -n 3 "$WORK/out")"
migrate_to "$id" "$H1" 2 --cold
grep -q '^done ' "$WORK/out" && fail "python3 finished before its second move: make STEPS larger"
runner_matches "$runner" "$WORK/want" "$WORK/out"
note "python3 asyncio: $(tail -n 1 "$WORK/out" | cut -c1-30)... identical after a live and a cold move"
echo PASS
