#!/bin/bash
# Peers that share no peer protocol leave each other out, and say why: h3
# speaks protocol 2 only (roamd's test-only override), h1 and h2 protocol 1.
# h1 and h3 list each other as "incompatible" (not up, not down), log it
# once, never place a job there, and refuse `run --on` and `migrate --to`
# naming both protocol ranges; h1 and h2 work together as ever.
# timeout: 90
. "$(dirname "$0")/lib/cluster.sh"

NHOSTS=3
$ROAM keygen "$WORK/key" || fail "keygen"
for i in 1 2 3; do make_host_net "$i"; done
HOST_FLAGS[3]="--test-proto 2"
for i in 1 2 3; do start_host "$i" --allow-root; done
H1=$(hname 1) H2=$(hname 2) H3=$(hname 3)

state_on() { # I NAME: the state host I gives host NAME in roam hosts
	run_on "$1" hosts --json 2>/dev/null |
		python3 -c 'import json,sys; print([h["state"] for h in json.load(sys.stdin) if h["name"]==sys.argv[1]][0])' "$2" 2>/dev/null
}
wait_until 15 eval '[ "$(state_on 1 "$H2")" = up ] && [ "$(state_on 1 "$H3")" = incompatible ]' ||
	fail "h1 sees h2 '$(state_on 1 "$H2")', h3 '$(state_on 1 "$H3")'; want up, incompatible"
wait_until 15 eval '[ "$(state_on 3 "$H1")" = incompatible ]' ||
	fail "h3 sees h1 '$(state_on 3 "$H1")', want incompatible"
# h1 does not pass h3 on to h2 (only members up are), and h3 knows only its
# seed: h2 never hears of it, or hears it is incompatible.
wait_until 15 eval '[ "$(state_on 2 "$H1")" = up ]' || fail "h2 sees h1 '$(state_on 2 "$H1")'"
case $(state_on 2 "$H3") in
"" | incompatible) ;;
*) fail "h2 sees h3 '$(state_on 2 "$H3")'" ;;
esac
run_on 1 hosts | grep "$H3" | grep -q incompatible || fail "roam hosts does not show h3 incompatible: $(run_on 1 hosts)"

# Refusals name the protocols.
out=$(run_on 1 run --on "$H3" -- true 2>&1) && fail "run --on h3 was accepted: $out"
echo "$out" | grep -q "protocol 2..2, this roamd 1..1" || fail "run --on h3: '$out'"
note "refused: $out"

# The first two still work together; placement never picks h3.
out=$(run_on 1 run --on "$H2" -- sh -c 'echo $ROAM_HOST') || fail "run --on h2"
[ "$out" = "$H2" ] || fail "run --on h2 ran on '$out'"
for k in 1 2 3 4 5 6; do
	out=$(run_on 1 run -- sh -c 'echo $ROAM_HOST') || fail "run (placed) failed"
	[ "$out" != "$H3" ] || fail "a placed job ran on the incompatible host"
done
ID=$(run_on 1 run --detach --on "$H1" -- sleep 30) || fail "run --detach"
out=$(run_on 1 migrate "$ID" --to "$H3" 2>&1) && fail "migrate --to h3 was accepted: $out"
echo "$out" | grep -q "protocol 2..2" || fail "migrate --to h3: '$out'"
run_on 1 ps | grep -q "$ID.*running" || fail "the job does not run on after the refusal: $(run_on 1 ps)"
run_on 1 migrate "$ID" --to "$H2" >/dev/null || fail "migrate to h2 (same protocol) failed"
run_on 1 kill "$ID" >/dev/null 2>&1

# Said once, not at every heartbeat.
sleep 2.5
n=$(grep -c "left out of the cluster" "$WORK/h1.log")
[ "$n" = 1 ] || fail "h1 logged the incompatibility $n times: $(grep "left out" "$WORK/h1.log")"
note "ok: $(grep "left out of the cluster" "$WORK/h1.log")"
