#!/bin/bash
# roam restore --detach: roam restore exits 0 once the process runs, and
# the process is no longer its child (it belongs to init, or to the nearest
# subreaper).  The restored fds subject must still pass, and must not hold
# any descriptor roam restore left it.
# timeout: 60
. "$(dirname "$0")/lib.sh"

start_subject fds -t 1
run_for 0.3
checkpoint
pf="$T/detach.pid"
timeout -k 5 20 "$ROAM" restore "$IMG" --detach --pid-file "$pf" 2>"$T/restore.err"
rc=$?
[ $rc = 0 ] || fail "roam restore --detach exited $rc"
[ -s "$pf" ] || fail "no pid file after roam restore --detach returned"
SPID=$(cat "$pf")
track "$SPID"
alive "$SPID" || fail "detached process $SPID not running"
ppid=$(proc_field "$SPID" PPid)
[ "$(readlink "/proc/$ppid/exe")" != "$(readlink -f "$ROAM")" ] ||
	fail "detached process $SPID is still the child of a roam process ($ppid)"
wait_until 5 eval '[ "$(proc_field $SPID TracerPid)" = 0 ]' || fail "detached process still traced"
run_for 0.3

# Not our child: stop it and watch the log.
[ "$SPID" = "$ORIG_PID" ] && echo pid-kept >"$STOP.tmp" || : >"$STOP.tmp"
mv "$STOP.tmp" "$STOP"
wait_until 20 eval '! alive $SPID' || fail "detached process did not finish"
[ "$(grep -c '^PASS$' "$LOG")" = 1 ] || fail "no PASS from the detached process"
grep -q '^FAIL' "$LOG" && fail "FAIL in the log"
log "ok"
