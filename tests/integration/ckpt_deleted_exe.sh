#!/bin/bash
# A process whose executable was deleted after it started: the image must
# carry the program's pages (its file is gone), the restored process must
# run and pass, and its exe link (/proc/PID/exe, which programs use to
# re-execute themselves) must still name its own program, "(deleted)", not
# whatever did the restoring.
# timeout: 60
. "$(dirname "$0")/lib.sh"
mkdir -p "$T/bin"
cp "$ROAM_SUBJECTS/threads" "$T/bin/threads"
ROAM_SUBJECTS="$T/bin"
start_subject threads -t 1
run_for 0.2
rm "$T/bin/threads"
exe0=$(readlink "/proc/$SPID/exe")
echo "exe before: $exe0"
for cycle in 1 2; do
	checkpoint
	restore
	run_for 0.3
	exe=$(readlink "/proc/$SPID/exe")
	echo "exe after restore $cycle: $exe"
	[ "${exe% (deleted)}" = "${exe0% (deleted)}" ] ||
		fail "exe link is '$exe', was '$exe0'"
done
stop_and_check PASS
log "ok"
