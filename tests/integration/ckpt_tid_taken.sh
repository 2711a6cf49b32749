#!/bin/bash
# The attrs subject's threads each keep their own /proc/thread-self/comm
# open. After the checkpoint, other processes take the threads' TIDs, so
# the restored threads get new ones: each must still find, in the file it
# kept, its own comm (restore opens such files in the thread they belong to,
# once it exists).
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_root
[ -w /proc/sys/kernel/ns_last_pid ] || skip "needs a writable /proc/sys/kernel/ns_last_pid"

start_subject attrs -t 2
run_for 0.2
tids=$(ls "/proc/$ORIG_PID/task" | grep -vx "$ORIG_PID")
[ "$(echo "$tids" | wc -w)" = 2 ] || fail "expected 2 threads besides the main one, saw: $tids"
checkpoint
for tid in $tids; do
	occupy_pid "$tid" || fail "could not start a process under TID $tid"
done
restore
for tid in $tids; do
	[ -e "/proc/$SPID/task/$tid" ] && fail "thread $tid came back under its taken TID?"
done
run_for 0.3
stop_and_check PASS
log "ok"
