#!/bin/bash
# Two refusals that need a particular set-up: a hard rlimit above what this
# host can grant (roam runs with a lower hard limit than the process, and
# lacks CAP_SYS_RESOURCE to raise it: refuse, never clamp silently), and a
# session leader with a controlling terminal, which cannot be given back.
# timeout: 60
. "$(dirname "$0")/lib.sh"
command -v prlimit >/dev/null || skip "needs prlimit (util-linux)"

log "hard rlimit above what roam may grant"
start_subject memory
run_for 0.2
hard=$(prlimit --pid "$SPID" --nofile --raw --noheadings -o HARD)
low=$((hard / 2))
new_image
prlimit --nofile=$low:$low "$ROAM" checkpoint "$SPID" -o "$IMG" 2>"$T/rl.err"
rc=$?
cat "$T/rl.err"
[ $rc = 255 ] || fail "checkpoint exited $rc, not 255"
grep -q "RLIMIT_NOFILE" "$T/rl.err" || fail "the message does not name RLIMIT_NOFILE"
[ -e "$IMG" ] && fail "an image was left behind"
alive "$SPID" || fail "the process is gone"
run_for 0.2
stop_and_check PASS

log "a session leader with a controlling terminal"
command -v script >/dev/null || skip "needs script (util-linux)"
script -q -c "exec sleep 60" /dev/null </dev/null >/dev/null 2>&1 &
SCRIPT=$!
track "$SCRIPT"
wait_until 10 eval 'pgrep -P $SCRIPT -x sleep >/dev/null' || fail "no sleep under script(1)"
SPID=$(pgrep -P "$SCRIPT" -x sleep)
track "$SPID"
new_image
"$ROAM" checkpoint "$SPID" -o "$IMG" 2>"$T/tty.err"
rc=$?
cat "$T/tty.err"
[ $rc = 255 ] || fail "checkpoint exited $rc, not 255"
grep -qi "controlling terminal" "$T/tty.err" || fail "the message does not name the controlling terminal"
alive "$SPID" || fail "the process is gone"
[ "$(proc_field "$SPID" TracerPid)" = 0 ] || fail "the process is left traced"
log ok
