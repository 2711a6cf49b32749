#!/bin/bash
# A pre-copy freezes twice: briefly to start dirty tracking, and at the end.
# A thread inside an interrupted sleep is released from the first freeze
# about to resume it through restart_syscall; if the last freeze comes
# before it ran that instruction (here: the subject idles at SCHED_IDLE on
# the one CPU that roam keeps busy), its registers say restart_syscall, and
# a restored process would run that with a fresh restart block: EINTR. The
# checkpoint must re-issue the original call instead. The syscalls subject
# (timed sleeps on its main thread, never EINTR) moves through
# `roam checkpoint --live | roam restore -` several times.
# timeout: 90
. "$(dirname "$0")/lib.sh"
need_root
command -v taskset >/dev/null && command -v chrt >/dev/null || skip "needs taskset and chrt (util-linux)"
if [ "${ON_ONE_CPU:-}" != 1 ]; then
	cpu=$(taskset -pc $$ | sed 's/.*: *//; s/.*[,-]//')
	ON_ONE_CPU=1 exec taskset -c "$cpu" bash "$0"
fi
. "$(dirname "$0")/lib/precopy.sh"

start_subject syscalls
run_for 0.2
for k in 1 2 3 4 5 6; do
	chrt --idle -a -p 0 "$SPID" >/dev/null || fail "chrt --idle on $SPID"
	live_pipe
	run_for 0.2
done
stop_and_check PASS
log "ok: no EINTR after 6 live checkpoints of an idling subject"
