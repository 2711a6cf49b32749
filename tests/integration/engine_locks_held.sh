#!/bin/bash
# Never twice, for locks: the locks subject is checkpointed with
# --leave-running, and its image restored while the original still holds
# its locks. The restore must fail (exit 255) naming the lock another
# process holds, and leave nothing running; the original runs on and
# passes. Once the original is checkpointed for good (killed), the same
# kind of image restores and holds the locks.
# timeout: 60
. "$(dirname "$0")/lib.sh"

start_subject locks
run_for 0.2
checkpoint --leave-running

log "restore while the original holds the locks"
timeout -k 5 20 "$ROAM" restore "$IMG" --pid-file "$T/twice.pid" 2>"$T/twice.err"
rc=$?
echo "roam restore said: $(cat "$T/twice.err")"
[ $rc = 124 ] && fail "roam restore ran a second copy of the process"
[ $rc = 255 ] || fail "roam restore exited $rc, not 255"
grep -Eq "^roam restore: .*fd [0-9]+ \(.*/locks\.[abcd]\): its (flock|POSIX|OFD) (read|write) lock.* is held by another process" \
	"$T/twice.err" || fail "the message does not name the lock held elsewhere"
[ "$(count_subjects locks)" = 1 ] || fail "$(count_subjects locks) locks subjects run, not 1"
alive "$SPID" || fail "the original is gone"

log "the original runs on; checkpointed for good, it restores"
run_for 0.2
checkpoint
restore
run_for 0.3
stop_and_check PASS
log "ok"
