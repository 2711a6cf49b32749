#!/bin/bash
# An image taken with --leave-running is a snapshot: once the original has
# finished, restoring the image runs the process again from that point.
# (The other tests never restore a --leave-running image.)  Done for the
# threads and clocks subjects, whose checks do not depend on files that the
# original changed after the snapshot.
# timeout: 60
. "$(dirname "$0")/lib.sh"

snapshot_test() {
	local snap
	log "$*: snapshot, original finishes, snapshot restored"
	start_subject "$@"
	run_for 0.3
	checkpoint --leave-running
	snap=$IMG
	run_for 0.2
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
