#!/bin/bash
# roam migrate --auto and roam drain honour the job's own constraints: its
# roam run --need travels with it (a second hop still knows it), a job placed
# with --on is moved only by an explicit --to, and when no host meets the
# need --auto fails at once naming the need and drain leaves the job where
# it is, saying so. Hosts differ by tags: h2 and h3 are "gpu", h1 is not.
# timeout: 200
. "$(dirname "$0")/lib/cluster.sh"

HOST_FLAGS[2]="--tags gpu"
HOST_FLAGS[3]="--tags gpu"
cluster_up 3 --allow-root
H1=$(hname 1)

num() { echo "${1##*-h}"; }   # host name -> its index
drains_seen() { # I N: host I sees N hosts draining
	[ "$(run_on "$1" hosts --json | grep -o '"draining":true' | wc -l)" = "$2" ]
}

# The gpu job: placed on h2 or h3, never on h1.
J=$(run_on 1 run --detach --need tag=gpu -- sleep 600) || fail "run --need tag=gpu"
set -- $(job_moves 1 "$J")
A=$1
[ "$A" != "$H1" ] || fail "the gpu job was placed on $H1"
B=$(hname $(( $(num "$A") == 2 ? 3 : 2 )))

# --auto typed on h1 (relayed to where it runs): the other gpu host, not h1
# (which is idle, so the least loaded).
run_on 1 migrate "$J" --auto >"$WORK/m" 2>&1 || fail "migrate --auto: $(cat "$WORK/m")"
[ "$(job_moves 1 "$J")" = "$B 1" ] || fail "--auto moved it to '$(job_moves 1 "$J")', expected $B"
note "--auto moved $J from $A to $B (--need tag=gpu)"

# A second hop, asked where it now runs: the need came with it.
run_on "$(num "$B")" migrate "$J" --auto >"$WORK/m" 2>&1 || fail "second --auto: $(cat "$WORK/m")"
[ "$(job_moves 1 "$J")" = "$A 2" ] || fail "the second --auto moved it to '$(job_moves 1 "$J")', expected $A"
note "second hop: back to $A"

# With B draining, no other host has the tag: --auto fails at once, naming
# the unmet need, and the job goes on where it was.
run_on "$(num "$B")" drain "$B" >"$WORK/d" 2>&1 || fail "drain $B (empty): $(cat "$WORK/d")"
wait_until 5 drains_seen "$(num "$A")" 1 ||
	fail "$A never saw $B draining"
run_on 1 migrate "$J" --auto >"$WORK/m" 2>&1 && fail "--auto succeeded with no gpu host free: $(cat "$WORK/m")"
grep -q "tags asked for (tag=)" "$WORK/m" || fail "--auto did not name the unmet need: $(cat "$WORK/m")"
[ "$(job_moves 1 "$J")" = "$A 2" ] || fail "after a refused --auto the job is at '$(job_moves 1 "$J")'"
note "refused: $(cat "$WORK/m")"

# Drain A: a job with no need (placed near J, not pinned) goes to h1, the
# only host left; J (no gpu host left) and a job placed with --on A stay,
# and the drain says so.
F=$(run_on 1 run --detach --near "$J" -- sleep 600) || fail "run --near"
P=$(run_on 1 run --detach --on "$A" -- sleep 600) || fail "run --on"
[ "$(job_moves 1 "$F")" = "$A 0" ] || fail "--near put $F on '$(job_moves 1 "$F")'"
run_on "$(num "$A")" drain "$A" >"$WORK/d" 2>&1 && fail "drain of $A succeeded with jobs left: $(cat "$WORK/d")"
note "drain said: $(cat "$WORK/d")"
grep -q "moved 1 jobs, 2 could not move" "$WORK/d" || fail "drain said: $(cat "$WORK/d")"
grep -q "$J --need tag=gpu: no host has the tags asked for" "$WORK/d" || fail "drain did not say why $J stays: $(cat "$WORK/d")"
grep -q "$P was placed with --on" "$WORK/d" || fail "drain did not say why $P stays: $(cat "$WORK/d")"
[ "$(job_moves 1 "$F")" = "$H1 1" ] || fail "the free job is at '$(job_moves 1 "$F")' after the drain, not $H1"
[ "$(job_moves 1 "$J")" = "$A 2" ] || fail "J is at '$(job_moves 1 "$J")' after the drain"
[ "$(job_moves 1 "$P")" = "$A 0" ] || fail "the pinned job is at '$(job_moves 1 "$P")' after the drain"
run_on "$(num "$A")" undrain "$A" >/dev/null || fail "undrain $A"
run_on "$(num "$B")" undrain "$B" >/dev/null || fail "undrain $B"

# The pinned job: --auto refuses it, an explicit --to moves it, and it
# stays pinned there.
wait_until 5 drains_seen 1 0 || fail "h1 still sees a host draining"
run_on 1 migrate "$P" --auto >"$WORK/m" 2>&1 && fail "--auto moved the pinned job"
grep -q "placed with --on" "$WORK/m" || fail "--auto of the pinned job said: $(cat "$WORK/m")"
run_on 1 migrate "$P" --to "$H1" >"$WORK/m" 2>&1 || fail "--to of the pinned job: $(cat "$WORK/m")"
[ "$(job_moves 1 "$P")" = "$H1 1" ] || fail "the pinned job is at '$(job_moves 1 "$P")' after --to"
run_on 1 migrate "$P" --auto >"$WORK/m" 2>&1 && fail "--auto moved the pinned job after its --to"
note "pinned: moved by --to only"

for id in "$J" "$F" "$P"; do run_on 1 kill "$id" >/dev/null 2>&1; done
echo PASS
