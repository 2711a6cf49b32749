#!/bin/bash
# An image taken with --leave-running is a snapshot: once the original has
# finished, restoring the image runs the process again from that point.
# (The other tests never restore a --leave-running image.)  Done for the
# threads and clocks subjects, whose checks do not depend on files that the
# original changed after the snapshot. The snapshot restored is a second one
# taken over the first (the older image, held open until the process is let
# go, is replaced whole).
# timeout: 60
. "$(dirname "$0")/lib.sh"

snapshot_test() {
	local snap
	log "$*: snapshot, original finishes, snapshot restored"
	start_subject "$@"
	run_for 0.3
	checkpoint --leave-running
	snap=$IMG
	run_for 0.1
	local first
	first=$(stat -c %i "$snap")
	"$ROAM" checkpoint "$SPID" -o "$snap" --leave-running 2>"$T/second.err" ||
		fail "a second snapshot over the first failed: $(tail -n 3 "$T/second.err")"
	[ "$(stat -c %i "$snap")" != "$first" ] || fail "the second snapshot did not replace the first"
	[ "$(stat -c %a "$snap")" = 600 ] || fail "the second snapshot's mode is $(stat -c %a "$snap")"
	ls "$snap".partial-* 2>/dev/null && fail "a partial file is left beside the image"
	run_for 0.1
	stop_and_check PASS
	rm -f "$STOP"
	: >"$LOG"
	IMG=$snap
	restore
	run_for 0.3
	checkpoint
	restore
	run_for 0.2
	stop_and_check PASS
}

snapshot_test threads -t 2
snapshot_test clocks -t 1
log "ok"
