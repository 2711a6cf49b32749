#!/bin/bash
# Truncated, corrupted and newer-version images are refused with an error
# naming the record, and nothing of the image ever runs: the half-built
# process is killed before it executes one instruction of its own.
# timeout: 60
. "$(dirname "$0")/lib.sh"

start_subject memory
run_for 0.2
checkpoint
GOOD=$IMG
size=$(stat -c %s "$GOOD")

# where PID and its children wait, thread by thread (for a hang)
where_stuck() { # PID
	local p t
	for p in $1 $(pgrep -P "$1"); do
		echo "pid $p $(proc_state "$p") $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
		for t in /proc/"$p"/task/*; do
			echo "  task ${t##*/}: wchan $(cat "$t/wchan" 2>/dev/null), syscall $(cat "$t/syscall" 2>/dev/null)"
		done
	done
}

try_bad() { # NAME FILE REGEX
	local rc pid k
	"$ROAM" restore "$2" 2>"$T/bad.err" &
	pid=$!
	# A restore that does not end here is a refusal that did not happen
	# (when a "flipped" byte was written over itself, the restored process
	# ran): say where it waits, then fail.
	for k in $(seq 1 200); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		where_stuck "$pid"
		kill -9 "$pid" $(pgrep -P "$pid") 2>/dev/null
		fail "$1: roam restore still runs after 20 s: $(cat "$T/bad.err")"
	fi
	wait "$pid"
	rc=$?
	echo "$1: $(cat "$T/bad.err")"
	[ $rc = 255 ] || fail "$1: roam restore exited $rc, not 255"
	grep -Eq "$3" "$T/bad.err" || fail "$1: message does not match /$3/"
	image_pid_runs && fail "$1: a process runs under the image's pid $ORIG_PID"
	[ "$(count_subjects memory)" = 0 ] || fail "$1: a memory subject is running"
	return 0
}

for cut in 10 200 $((size / 2)) $((size - 100)) $((size - 24)); do
	head -c "$cut" "$GOOD" >"$T/cut$cut"
	try_bad "truncated at $cut" "$T/cut$cut" 'truncated|preamble|record [0-9]+'
done
for at in 40 $((size / 3)) $((size / 2)) $((size - 30)); do
	cp "$GOOD" "$T/flip$at"
	# Every bit of the byte inverted: writing a fixed value left the image
	# intact wherever the byte already had it (1 in 256 of page bytes).
	python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1)[0]; f.seek(-1, 1); f.write(bytes([b ^ 0xff]))' "$T/flip$at" "$at"
	cmp -s "$GOOD" "$T/flip$at" && fail "byte $at: the copy is still the image"
	try_bad "byte $at flipped" "$T/flip$at" 'record [0-9]+ \([a-z]+\)'
done
cp "$GOOD" "$T/newer"
printf '\x63' | dd of="$T/newer" bs=1 seek=8 conv=notrunc status=none
try_bad "newer version" "$T/newer" 'newer'
GEN="$ROAM_BUILD/tests/test_image_gen"
if [ -x "$GEN" ]; then
	"$GEN" --arch aarch64 "$T/foreign" || fail "could not make a foreign image"
	try_bad "foreign architecture" "$T/foreign" 'architecture|aarch64'
fi
printf 'not an image at all, not at all\n' >"$T/junk"
try_bad "junk" "$T/junk" 'not a roam image'

log "the good image still restores"
restore
run_for 0.2
stop_and_check PASS
