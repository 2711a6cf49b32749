#!/bin/bash
# Restores whose threads cannot have their TIDs back: after the checkpoint,
# other processes take them, so the restored threads get new ones.
#   attrs -t 2: each thread keeps its own /proc/thread-self/comm open, and
#     must still find its own comm there (restore opens such files in the
#     thread they belong to, once it exists);
#   syscalls -t 3: its last stop wakes threads with pthread_kill, which
#     uses the TID the C library cached (restore writes the new one there).
# timeout: 90
# alone: it needs pids it gave up to stay free (or to become its own), and
# another test's processes, with pids wrapping at pid_max, would take them
. "$(dirname "$0")/lib.sh"
need_root
[ -w /proc/sys/kernel/ns_last_pid ] || skip "needs a writable /proc/sys/kernel/ns_last_pid"

tids_taken() { # SUBJECT ARGS...
	log "$*: restored under new TIDs"
	start_subject "$@"
	run_for 0.3
	local tids n
	tids=$(ls "/proc/$ORIG_PID/task" | grep -vx "$ORIG_PID")
	n=$(echo "$tids" | wc -w)
	[ "$n" -ge 2 ] || fail "$1: expected threads besides the main one, saw: $tids"
	checkpoint
	for tid in $tids; do
		occupy_pid "$tid" || fail "could not start a process under TID $tid"
	done
	restore
	for tid in $tids; do
		[ -e "/proc/$SPID/task/$tid" ] && fail "$1: thread $tid came back under its taken TID?"
	done
	run_for 0.3
	stop_and_check PASS
}

tids_taken attrs -t 2
tids_taken syscalls -t 3
log "ok"
