#!/bin/bash
# The identity of mapped files: a private file mapping is re-mapped from its
# file only when the file's content hash still matches; otherwise restore is
# refused naming the file, unless the image carries the mapping's pages
# (--carry-files, and always for a deleted file).
# timeout: 60
. "$(dirname "$0")/lib.sh"

SLEEP=$(command -v sleep)
mkdir -p "$T/bin"

run_copy() { # NAME SECONDS: a private copy of sleep(1), running
	cp "$SLEEP" "$T/bin/$1"
	RUN="$T/$1.run" LOG="$T/$1.log"
	mkdir -p "$RUN"
	: >"$LOG"
	"$T/bin/$1" "$2" >>"$LOG" 2>&1 </dev/null &
	SPID=$! ORIG_PID=$! WAITER=$!
	track "$SPID"
	sleep 0.2
}

log "a changed binary is refused, naming it"
run_copy changed 30
checkpoint
printf 'x' >>"$T/bin/changed"
new_image_name=$IMG
"$ROAM" restore "$new_image_name" 2>"$T/refused.err"
rc=$?
cat "$T/refused.err"
[ $rc = 255 ] || fail "restore of a changed binary exited $rc, not 255"
grep -q "$T/bin/changed" "$T/refused.err" || fail "the message does not name the file"
grep -q -- "--carry-files" "$T/refused.err" || fail "the message does not suggest --carry-files"
image_pid_runs "$T/bin/changed" && fail "something runs under the old pid"

log "--carry-files: the same change restores fine"
run_copy carried 1.5
checkpoint --carry-files
printf 'x' >>"$T/bin/carried"
restore
wait_exit "$WAITER" 20
[ "$RC" = 0 ] || fail "the carried sleep exited $RC"

log "a deleted binary is carried without asking"
run_copy deleted 1.5
rm -f "$T/bin/deleted"
checkpoint
restore
wait_exit "$WAITER" 20
[ "$RC" = 0 ] || fail "the sleep of a deleted binary exited $RC"
log ok
