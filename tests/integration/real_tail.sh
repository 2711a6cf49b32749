#!/bin/bash
# tail -f (coreutils, which follows a file through inotify) is checkpointed
# and restored while it follows a growing file, then checkpointed once more
# with --leave-running: after each, the lines appended next come out, and at
# the end its output is the file itself, byte for byte. The restored tail
# still watches the file through inotify (its fdinfo names the file's inode),
# rather than having fallen back to polling.
# timeout: 60
. "$(dirname "$0")/lib.sh"
TAIL=$(command -v tail) || skip "needs tail (coreutils)"
F=$T/grow.log
lines_are() { [ "$(wc -l <"$LOG")" -eq "$1" ]; }
seq 1 100 >"$F"
start_program "$TAIL" -n +1 -f "$F"
wait_until 10 lines_are 100 || fail "tail printed $(wc -l <"$LOG") lines, not 100"
checkpoint
restore
ino=$(printf '%x' "$(stat -c %i "$F")")
grep -q "^inotify wd:[0-9]* ino:$ino " /proc/"$SPID"/fdinfo/* ||
	fail "the restored tail watches no inotify on $F: $(grep -h '^inotify' /proc/"$SPID"/fdinfo/* | head -3)"
seq 101 200 >>"$F"
wait_until 10 lines_are 200 || fail "after the restore, tail printed $(wc -l <"$LOG") lines, not 200"
checkpoint --leave-running
seq 201 300 >>"$F"
wait_until 10 lines_are 300 || fail "after --leave-running, tail printed $(wc -l <"$LOG") lines, not 300"
kill "$SPID"
cmp "$F" "$LOG" || fail "tail's output differs from the file it followed"
log "tail -f followed the file through a restore and a --leave-running checkpoint"
