#!/bin/bash
# roam migrate of programs built on event loops, while they run, live
# h1 -> h2 then cold h2 -> h1: python3 running an asyncio program
# (lib/asyncio_chat.py: its epoll, its self-pipe socket pair, two streams
# over a socket pair with bytes in flight, a signal handler, timers, a
# thread pool) and node (lib/node_steps.js: libuv's epoll and eventfds,
# timers, promises, V8's threads). Their output at the home is byte-identical
# to an unmigrated run, and so is their exit status.
# timeout: 240
. "$(dirname "$0")/lib/cluster.sh"

SHARED=$WORK/shared   # the programs, seen by both hosts
mkdir -p "$SHARED"
chmod 777 "$SHARED"
cluster_up 2 --allow-root --shared "$SHARED"
H1=$(hname 1) H2=$(hname 2)
cp "$(dirname "$0")/lib/asyncio_chat.py" "$(dirname "$0")/lib/node_steps.js" "$SHARED/"

# moves NAME CMD...: CMD's reference run, then CMD as a job on h1, moved
# live to h2 and, once it has gone on there, cold back to h1.
moves() {
	local name=$1 runner id lines
	shift
	"$@" >"$WORK/want" 2>&1 || fail "$name: the reference run failed: $(tail -n 3 "$WORK/want")"
	bg_run_on 1 run --on "$H1" -- "$@" >"$WORK/out" 2>&1
	runner=$BG_PID
	wait_until 60 grep -q '^50 ' "$WORK/out" || fail "$name never got going: $(tail -n 3 "$WORK/out")"
	id=$(last_job 1)
	migrate_to "$id" "$H2" 1
	lines=$(wc -l <"$WORK/out")
	wait_until 30 sh -c "[ \$(wc -l <'$WORK/out') -gt $((lines + 20)) ]" ||
		fail "$name: no progress on h2: $(tail -n 3 "$WORK/out")"
	migrate_to "$id" "$H1" 2 --cold
	grep -q '^done ' "$WORK/out" && fail "$name finished before its second move: give it more steps"
	runner_matches "$runner" "$WORK/want" "$WORK/out"
	note "$name: $(tail -n 1 "$WORK/out" | cut -c1-30)... identical after a live and a cold move"
}

moves "python3 asyncio" /usr/bin/python3 -I -S "$SHARED/asyncio_chat.py" 3000
NODE=$(command -v node || command -v nodejs) || fail "no node: scripts/deps.sh installs Debian's nodejs"
moves node "$NODE" "$SHARED/node_steps.js" 3000
echo PASS
