#!/bin/bash
# The events subject (eventfd, signalfd, timerfd, epoll, socket pairs: see
# tests/subjects/events.c) live-checkpointed through a pipe into roam
# restore, twice: its descriptors are then made by remote system calls in
# the process built while the rounds ran, not by the child itself as in
# ckpt_events. It must still pass.
# timeout: 90
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib/precopy.sh"
need_root
start_subject events -t 2
run_for 0.3
live_pipe
run_for 0.3
live_pipe ROAM_DIRTY_HASH=1
run_for 0.3
stop_and_check PASS
log "ok"
