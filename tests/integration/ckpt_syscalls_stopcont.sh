#!/bin/bash
# A job stopped and continued (SIGSTOP, SIGCONT: Ctrl-Z then fg) while its
# threads sleep: the kernel resumes their sleeps through restart_syscall.
# Checkpointed at once (within the 150 ms sleeps), restored, the syscalls
# subject (-t 1) must see no EINTR and no short sleep.  Twice, and once with
# a --leave-running checkpoint in between.  See tests/subjects/syscalls.c.
# timeout: 60
. "$(dirname "$0")/lib.sh"

stop_cont() {
	kill -STOP "$SPID"
	wait_until 5 eval '[ "$(proc_state $SPID)" = T ]' || fail "subject did not stop"
	sleep 0.03
	kill -CONT "$SPID"
	sleep 0.02
}

start_subject syscalls -t 1
run_for 0.3
log "SIGSTOP, SIGCONT, checkpoint, restore"
stop_cont
checkpoint
restore
run_for 0.3
log "SIGSTOP, SIGCONT, checkpoint --leave-running, checkpoint, restore"
stop_cont
checkpoint --leave-running
checkpoint
restore
run_for 0.3
stop_and_check PASS
log "ok"
