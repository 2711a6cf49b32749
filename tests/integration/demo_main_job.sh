#!/bin/bash
# The README's main job, scripts/demo.sh, runs to its end: a pi job moved
# twice with its output byte-identical, a host drained to 0 jobs, and no
# namespace of its cluster left behind.
# timeout: 300
. "$(dirname "$0")/lib.sh"
need_root
out=$T/demo.out
"$ROAM_ROOT/scripts/demo.sh" >"$out" 2>&1 </dev/null
rc=$?
tail -n 4 "$out"
[ $rc = 0 ] || fail "scripts/demo.sh exited $rc: $(tail -n 15 "$out")"
grep -q "pi: output byte-identical to an unmigrated run" "$out" || fail "no byte-identical pi in the summary"
grep -q "drain: 0 jobs left" "$out" || fail "the drain left jobs: $(grep drain "$out")"
cluster=$(sed -n 's/.*\(roamt[0-9]*\)-h1.*/\1/p' "$out" | head -n 1)
[ -n "$cluster" ] || fail "no cluster name in the demo's output"
ip netns list | grep -q "$cluster" && fail "the demo left namespaces: $(ip netns list | grep "$cluster")"
log "ok"
