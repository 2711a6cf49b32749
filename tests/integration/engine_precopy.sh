#!/bin/bash
# engine_precopy: live checkpoint (pre-copy: the memory is copied while the
# process runs, then only the last delta at the freeze), restored through a
# pipe as the stream arrives or from a file. Subjects that keep writing
# their memory, and one that also drops pages, zeroes pages, remaps and
# splits mappings between rounds, and one that moves mappings with mremap
# (which takes them out of userfaultfd's tracking), must find every page as
# they left it; each also with page hashing forced instead of userfaultfd.
# timeout: 150
. "$(dirname "$0")/lib.sh"
need_root

. "$(dirname "$0")/lib/precopy.sh"

log "dirty: untouched, then sabotaged"
start_subject dirty 16
run_for 0.3
stop_and_check PASS
start_subject dirty -x 16
sleep 0.3
stop_and_check FAIL

log "dirty 16 MiB, writing while copied: live and left running, then live into a file, restored"
start_subject dirty 16
run_for 0.2
checkpoint --live --leave-running --stats
run_for 0.3
checkpoint --live --rounds 3 --stats
grep -q "pre-copy with userfaultfd" "$T/checkpoint.err" || fail "not tracked by userfaultfd: $(cat "$T/checkpoint.err")"
restore
run_for 0.3
stop_and_check PASS

log "dirty with churn (drops, zeroes, remaps, splits): live through a pipe"
start_subject dirty 16 churn
run_for 0.3
live_pipe
run_for 0.3
stop_and_check PASS

log "dirty with churn, page hashing forced (ROAM_DIRTY_HASH=1)"
start_subject dirty 16 churn rate=4
run_for 0.3
live_pipe ROAM_DIRTY_HASH=1
grep -q "pre-copy with hashing" "$T/live.err" || fail "hashing was not used"
run_for 0.3
stop_and_check PASS

log "dirty with counters up and down (aba) and a page dropped and written back as it was (dropback): hashing forced four times, then userfaultfd twice"
start_subject dirty 16 aba dropback rate=2
run_for 0.2
for hash in 1 1 1 1 0 0; do
	live_pipe ROAM_DIRTY_HASH=$hash
	run_for 0.1
done
stop_and_check PASS

log "dirty in shared anonymous memory with churn and dropback (holes punched, no write seen): userfaultfd three times, hashing once"
start_subject dirty 16 shared-area churn dropback
run_for 0.2
for hash in 0 0 0 1; do
	live_pipe ROAM_DIRTY_HASH=$hash
	run_for 0.1
done
stop_and_check PASS

log "dirty with mappings moved by mremap (swapped: the same layout, other contents; moved away and left empty): userfaultfd three times, hashing twice"
start_subject dirty 16 remap churn rate=4
run_for 0.2
for hash in 0 0 0 1 1; do
	live_pipe ROAM_DIRTY_HASH=$hash
	run_for 0.1
done
stop_and_check PASS

log "dirty in transparent huge pages: userfaultfd twice, hashing once"
start_subject dirty 16 huge
run_for 0.2
thp=$(sed -n 's/^AnonHugePages: *\([0-9]*\) kB/\1/p' "/proc/$SPID/smaps_rollup")
echo "huge pages: $thp kB"
thp_on=/sys/kernel/mm/transparent_hugepage/enabled
if [ -r $thp_on ] && ! grep -q '\[never\]' $thp_on && [ "${thp:-0}" = 0 ]; then
	fail "transparent huge pages are on, but the subject has none"
fi
for hash in 0 0 1; do
	live_pipe ROAM_DIRTY_HASH=$hash
	run_for 0.1
done
stop_and_check PASS

log "a pre-copy stream cut short anywhere is refused, and leaves nothing running"
start_subject dirty 4 rate=13
run_for 0.2
checkpoint --live --leave-running
size=$(stat -c %s "$IMG")
for cut in 100 5000 $((size / 3)) $((size * 9 / 10)) $((size - 30)); do
	head -c "$cut" "$IMG" >"$T/cut.img"
	"$ROAM" restore "$T/cut.img" 2>"$T/cut.err" && fail "a stream cut at $cut of $size bytes was restored"
	grep -q "^roam restore: " "$T/cut.err" || fail "no 'roam restore: ' message for a cut at $cut"
	n=$(count_subjects dirty)
	[ "$n" = 1 ] || fail "after a stream cut at $cut, $n processes run the subject, not 1"
done
rm -f "$T/cut.img"
stop_and_check PASS

log "128 KiB mapped during the rounds where restore keeps its trampoline and a shared memory master (1 MiB): they move"
start_subject dirty 4 rate=3 shared low=100000
run_for 0.1
( sleep 0.3; touch "$RUN/map-low" ) &
LIVE_OPTS=(--rounds 1 --round-gap 700)
live_pipe
LIVE_OPTS=()
grep -q "fresh-vmas [1-9]" "$T/live.err" || fail "the area at 1 MiB was not made during the rounds"
run_for 0.2
stop_and_check PASS

log "memory (sparse, shared, file mappings): live through a pipe, twice; threads"
start_subject memory
run_for 0.2
live_pipe
run_for 0.2
live_pipe ROAM_DIRTY_HASH=1
run_for 0.2
stop_and_check PASS
start_subject threads -t 3
run_for 0.2
live_pipe
run_for 0.2
stop_and_check PASS

log "fds (offsets, a pipe holding data, shared descriptions, no leaks): live, twice"
start_subject fds
run_for 0.2
live_pipe
run_for 0.2
live_pipe ROAM_DIRTY_HASH=1
run_for 0.2
stop_and_check PASS
log "ok"
