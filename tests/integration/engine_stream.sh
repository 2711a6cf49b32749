#!/bin/bash
# The image as a stream: `roam checkpoint PID -o - | roam restore -`, the road
# migration will take (no file, no seeking), with a multithreaded subject and
# compressed pages; a 64 MiB one, whose pages are filled by the reader alone
# while the stream sets the pace (a stream held to about 32 MB/s must start
# no helper thread), and by helper threads when told to (ROAM_FILL_HELPERS,
# the path a slow fill takes); then a restore of a stream that is cut short
# must leave nothing running.
# timeout: 90
. "$(dirname "$0")/lib.sh"

# pipe_restore NAME [CKPT_ARGS...] [-- ENV...]: $SPID checkpointed into a
# pipe read by `roam restore - --stats` (run under ENV, its stderr in
# $T/NAME.err); the restored process becomes $SPID.
pipe_restore() {
	local name=$1 ck=() pf="$T/$1.pid"
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do ck+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	# Not the file an earlier restore of that name left: it would pass for
	# this one's before this one wrote it.
	rm -f "$pf"
	("$ROAM" checkpoint "$SPID" -o - ${ck[@]+"${ck[@]}"} 2>"$T/$name-ck.err" | ${PIPE_VIA:-cat} |
		env "$@" "$ROAM" restore - --pid-file "$pf" --stats 2>"$T/$name.err") &
	PIPELINE=$!
	track "$PIPELINE"
	wait_until 20 test -s "$pf" ||
		fail "no pid file from the streamed restore: $(cat "$T/$name-ck.err" "$T/$name.err")"
	# The original, killed once its image was written. Not by polling its
	# pid: the restored process may already be running under that very pid.
	wait "$WAITER" 2>/dev/null
	SPID=$(cat "$pf")
	WAITER=$PIPELINE
	track "$SPID"
	alive "$SPID" || fail "the streamed process is not running"
	grep "^restore: pid" "$T/$name.err"
}

start_subject threads -t 3
run_for 0.3
log "checkpoint -o - | restore -"
pipe_restore threads --compress
run_for 0.3
stop_and_check PASS

# throttle: stdin to stdout at about 32 MB/s (64 KiB every 2 ms).
throttle() {
	python3 -c '
import os, sys, time
while True:
    b = sys.stdin.buffer.read1(65536)
    if not b:
        break
    sys.stdout.buffer.write(b)
    sys.stdout.buffer.flush()
    time.sleep(0.002)
'
}

# fill_helpers NAME: the fill-helpers figure of that restore's --stats.
fill_helpers() { grep -o "fill-helpers [0-9]*" "$T/$1.err" | cut -d' ' -f2; }

# big_stream [ENV...]: the memory subject with 64 MiB more through a pipe.
big_stream() {
	start_subject memory big=64
	run_for 0.2
	pipe_restore big -- "$@"
	run_for 0.2
	stop_and_check PASS
}

log "64 MiB through a pipe, the fill paced by the stream"
big_stream
log "64 MiB through a pipe held to 32 MB/s: the stream sets the pace, no helper"
PIPE_VIA=throttle big_stream
helpers=$(fill_helpers big)
[ "$helpers" = 0 ] || fail "a helper thread started while the stream set the pace (fill-helpers ${helpers:-none})"
log "64 MiB through a pipe, helper threads filling from the fifth block"
big_stream ROAM_FILL_HELPERS=1
helpers=$(fill_helpers big)
if [ "$(nproc)" -ge 2 ]; then
	[ "${helpers:-0}" -ge 1 ] || fail "no helper thread filled the pages (fill-helpers ${helpers:-none})"
else
	log "one CPU: no helper threads to check"
fi

log "a stream cut short"
start_subject memory
run_for 0.2
"$ROAM" checkpoint "$SPID" -o - --leave-running 2>"$T/ck2.err" | head -c 200000 | "$ROAM" restore - 2>"$T/cut.err"
rc=${PIPESTATUS[2]}
cat "$T/cut.err"
[ "$rc" = 255 ] || fail "restore of a cut stream exited $rc"
grep -q "truncated" "$T/cut.err" || fail "the message does not say the stream was truncated"
[ "$(count_subjects memory)" = 1 ] || fail "more than one memory subject runs"
run_for 0.2
stop_and_check PASS
