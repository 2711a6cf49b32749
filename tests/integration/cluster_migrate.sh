#!/bin/bash
# roam migrate across 3 namespace hosts: self-checking subjects (every kind
# of state the engine tests check, threaded variants too) and real programs
# (python3, bc) move while they run and finish as if nothing happened, with their
# output, stdin, signals and exit status at the home (the `roam run` that
# started them), and their file locks; a process tree (a shell pipeline) moves;
# a process moves 20 times around the cluster; roam ps shows
# where it is and how often it moved; roam drain empties a host.
# timeout: 300
. "$(dirname "$0")/lib/cluster.sh"

SUBJ=${ROAM_SUBJECTS:?}
SHARED=$WORK/shared   # seen by every host (their /tmp is their own)
mkdir -p "$SHARED"
chmod 777 "$SHARED"
# Files there may stay open for writing across a move: shared storage.
cluster_up 3 --allow-root --shared "$SHARED"
H1=$(hname 1) H2=$(hname 2) H3=$(hname 3)

# Each subject, and the multithreaded variants the engine tests run
# (ckpt_*_mt.sh), as NAME or NAME:THREADS.
for s in ${MIG_SUBJECTS-memory threads fpu clocks syscalls signals memory:4 fds events events:2 timers \
	attrs attrs:2 pid pid:2 session session:2 tree}; do
	case $s in
	*:*) migrate_subject "${s%%:*}" -t "${s#*:}" ;;
	*) migrate_subject "$s" ;;
	esac
done

# A real program: python3's output is byte-identical to an unmigrated run,
# while it moves 20 times around the cluster; stdin typed at the home
# reaches it wherever it is, and its exit status comes back.
PY='import sys, time
n = 0
for line in sys.stdin:
    n += 1
    print(n, line.strip(), sum(i * i for i in range(n * 2000)), flush=True)
sys.exit(7)'
want=$(seq 1 40 | python3 -c "$PY")
mkfifo "$WORK/in"
exec 7<>"$WORK/in"   # read-write: opening does not wait for a reader
# (not bg_run_on: a background command's stdin would be /dev/null)
(cd / && exec "$ROAM" run --control "$WORK/h1.sock" --on "$H1" -- python3 -c "$PY") <"$WORK/in" >"$WORK/py.out" 2>&1 7>&- &
runner=$!
echo 1 >&7
wait_until 10 grep -q '^1 1 ' "$WORK/py.out" || fail "python3 never answered: $(cat "$WORK/py.out")"
id=$(last_job 1)
cur=1 relayed=0 relayed2=0
for k in $(seq 1 20); do
	next=$((cur % 3 + 1))
	# Typed on the host it runs on, on its home, or on the third host
	# (roamd relays the request to where the job runs).
	# (The offset from the job's host changes every third move: with the
	# host itself changing every move, an offset changing with k alone
	# would always name the same host.)
	at=$(( (cur - 1 + (k / 3) % 3) % 3 + 1 ))
	run_on "$at" migrate "$id" --to "$(hname $next)" --progress >"$WORK/m" 2>&1 || fail "move $k h$cur -> h$next typed on h$at: $(cat "$WORK/m")"
	# Progress lines (forced by --progress: stdout is no terminal) reach
	# the caller wherever it typed it: relayed by the home, or by the
	# third host and the home.
	for phase in prepare transfer commit; do
		grep -q "^roam migrate: $phase: .* MiB sent" "$WORK/m" ||
			fail "move $k typed on h$at (job on h$cur, home h1): no $phase line: $(cat "$WORK/m")"
	done
	grep -q "^roam migrate: commit: .* MiB/s" "$WORK/m" || fail "move $k: no rate: $(cat "$WORK/m")"
	[ "$at" != "$cur" ] && relayed=$((relayed + 1))
	[ "$at" != "$cur" ] && [ "$at" != 1 ] && [ "$cur" != 1 ] && relayed2=$((relayed2 + 1))
	cur=$next
	echo $((k + 1)) >&7
done
for k in $(seq 22 40); do echo "$k" >&7; done
exec 7>&-
wait_until 60 sh -c "! kill -0 $runner" || fail "python3 did not end after its stdin did: $(tail -n 3 "$WORK/py.out")"
wait "$runner"
rc=$?
[ $rc = 7 ] || fail "python3's exit status came back as $rc, not 7"
diff <(echo "$want") "$WORK/py.out" >/dev/null || fail "python3's output differs after 20 moves: $(diff <(echo "$want") "$WORK/py.out" | head)"
[ -z "$(job_moves 1 "$id")" ] || fail "python3's job ended, yet ps lists it running on $(job_moves 1 "$id")"
[ $relayed2 -gt 0 ] && [ $relayed -gt $relayed2 ] || fail "the moves were not typed on other hosts: $relayed relayed, $relayed2 twice"
note "python3: identical output, status 7, after 20 migrations ($relayed typed elsewhere, $relayed2 relayed twice, each with its progress lines)"

# bc, a program nobody here wrote, moves live and cold mid-computation.
migrate_bc

# A process tree moves (cold: pre-copy follows one process): bash running
# python3 into sha256sum, moved h1 -> h2 -> h3 while the numbers flow
# through the pipe between them; the digest, and the progress python3
# writes on the stderr they share with bash, arrive at the home as an
# unmigrated run's.
cat >"$WORK/gen.py" <<'PYEOF'
import sys, time
w = sys.stdout.write
for i in range(1200000):
    w("%d %d\n" % (i, (i * i) % 1000003))
    if i % 200000 == 0:
        sys.stdout.flush()
        print("gen", i, file=sys.stderr, flush=True)
        time.sleep(0.3)
PYEOF
PIPELINE="python3 -I -S $WORK/gen.py | sha256sum; echo tree done"
bash -c "$PIPELINE" >"$WORK/tree.want" 2>&1
(cd / && exec "$ROAM" run --control "$WORK/h1.sock" --on "$H1" -- bash -c "$PIPELINE") </dev/null >"$WORK/tree.out" 2>&1 &
runner=$!
wait_until 20 grep -q "^gen 200000" "$WORK/tree.out" || fail "the pipeline never got going: $(cat "$WORK/tree.out")"
id=$(last_job 1)
migrate_to "$id" "$H2" 1
grep -q "^tree done" "$WORK/tree.out" && fail "the pipeline ended before its second move"
migrate_to "$id" "$H3" 2
runner_matches "$runner" "$WORK/tree.want" "$WORK/tree.out"
note "a process tree (bash, python3, sha256sum): identical output after two moves"

# File locks move with the job: python3 holds a shared flock and a POSIX read
# lock on a file opened read-only (identical on every host, not shared
# storage), moves h1 -> h2 live and h2 -> h3 cold, then finds both still its
# own: another open file description of the file cannot take it exclusively,
# and /proc/locks lists its POSIX lock under its pid.
head -c 4096 /dev/urandom >"$WORK/ro"
PYL='import fcntl, os, sys
f = open(sys.argv[1])
fcntl.flock(f, fcntl.LOCK_SH)
fcntl.lockf(f, fcntl.LOCK_SH, 10, 5)
print("ready", flush=True)
sys.stdin.readline()
mine = [l for l in open("/proc/locks") if " POSIX " in l and " READ %d " % os.getpid() in l]
print("posix held" if len(mine) == 1 and mine[0].split()[-2:] == ["5", "14"] else "posix lost: %r" % mine)
g = open(sys.argv[1])
try:
    fcntl.flock(g, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("flock lost")
except BlockingIOError:
    print("flock held")'
exec 7<>"$WORK/in"
(cd / && exec "$ROAM" run --control "$WORK/h1.sock" --on "$H1" -- python3 -c "$PYL" "$WORK/ro") <"$WORK/in" \
	>"$WORK/lk.out" 2>&1 7>&- &
runner=$!
wait_until 10 grep -q ready "$WORK/lk.out" || fail "the locking job never ready: $(cat "$WORK/lk.out")"
id=$(last_job 1)
migrate_to "$id" "$H2" 1
migrate_to "$id" "$H3" 2 --cold
echo go >&7
exec 7>&-
printf 'ready\nposix held\nflock held\n' >"$WORK/lk.want"
runner_matches "$runner" "$WORK/lk.want" "$WORK/lk.out"
note "file locks: held after a live and a cold move"

# sha256sum (unmodified) digests 64 MiB typed on its stdin at the home, in
# pieces, and moves h1 -> h2 live, then h2 -> h3 cold, in between: the
# digest it prints must be the data's.
head -c 64M /dev/urandom >"$WORK/sha.in"
sha_want=$(sha256sum <"$WORK/sha.in")
mkfifo "$WORK/sha.fifo"
exec 8<>"$WORK/sha.fifo"
(cd / && exec "$ROAM" run --control "$WORK/h1.sock" --on "$H1" -- sha256sum) <"$WORK/sha.fifo" >"$WORK/sha.out" 2>&1 8>&- &
runner=$!
feed() { dd if="$WORK/sha.in" bs=1M skip="$1" count="$2" status=none >&8 || fail "feeding sha256sum"; }
feed 0 16
wait_until 10 eval '[ -n "$(running_jobs 1)" ]' ||
	fail "sha256sum never ran"
id=$(last_job 1)
run_on 1 migrate "$id" --to "$H2" --stats >"$WORK/m" 2>&1 || fail "sha256sum: migrate live to h2: $(cat "$WORK/m")"
note "sha256sum: $(cat "$WORK/m")"
feed 16 24
run_on 1 migrate "$id" --to "$H3" --cold --stats >"$WORK/m" 2>&1 || fail "sha256sum: migrate cold to h3: $(cat "$WORK/m")"
note "sha256sum: $(cat "$WORK/m")"
feed 40 24
exec 8>&-
wait "$runner"
rc=$?
[ $rc = 0 ] || fail "sha256sum's exit status came back as $rc: $(cat "$WORK/sha.out")"
[ "$(cat "$WORK/sha.out")" = "$sha_want" ] || fail "sha256sum printed $(cat "$WORK/sha.out"), want $sha_want"
note "sha256sum: the right digest of 64 MiB after a live and a cold migration"

# A process that writes memory about as fast as the link carries it: python3
# rewrites one byte in each of 16384 pages (64 MiB) over and over (each
# write a write-protect fault while the rounds track it). Its live migration
# must end the rounds once the rest stops shrinking by a quarter, a round or
# two in, not loop to the cap of 12, and pay the rest in the pause; at h2 it
# goes on, and each page holds the last value written there.
FAST='
import os, sys
b = bytearray(64 << 20)
k = 0
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    k += 1
    b[::4096] = bytes([k % 251 + 1]) * 16384
ok = b[::4096] == bytes([k % 251 + 1]) * 16384 and b.count(0) == len(b) - 16384
print("PASS" if ok else "FAIL", k > 1000)'
rm -f "$SHARED/stop-fast"
bg_run_on 1 run --on "$H1" -- python3 -c "$FAST" "$SHARED/stop-fast" >"$WORK/fast.out" 2>&1
runner=$BG_PID
wait_until 10 grep -q ready "$WORK/fast.out" || fail "the fast writer never started: $(cat "$WORK/fast.out")"
id=$(last_job 1)
sleep 0.3
run_on 1 migrate "$id" --to "$H2" --stats >"$WORK/m" 2>&1 || fail "fast writer: migrate to h2: $(cat "$WORK/m")"
note "fast writer: $(cat "$WORK/m")"
rounds=$(sed -n 's/.* rounds=\([0-9]*\).*/\1/p' "$WORK/m")
[ -n "$rounds" ] && [ "$rounds" -le 3 ] || fail "a process writing faster than the link took ${rounds:-?} rounds: $(cat "$WORK/m")"
[ "$(job_moves 1 "$id")" = "$H2 1" ] || fail "fast writer: ps says $(job_moves 1 "$id")"
sleep 0.3
touch "$SHARED/stop-fast"
wait "$runner" || fail "fast writer: exit status $?: $(cat "$WORK/fast.out")"
grep -q "^PASS True" "$WORK/fast.out" || fail "fast writer: $(cat "$WORK/fast.out")"
note "fast writer: rounds=$rounds, its pages intact at h2"

# roam drain: every job leaves h2, and no new one goes there. (Placed near a
# job pinned there by --on, which drain leaves: cluster_migrate_need.sh.)
pin=$(run_on 1 run --on "$H2" --detach -- sleep 60) || fail "detached sleep on h2"
for k in 1 2; do
	run_on 1 run --near "$pin" --detach -- sleep 60 >/dev/null || fail "detached sleep near $pin"
done
run_on 1 kill "$pin" >/dev/null || fail "kill $pin"
wait_until 10 jobs_on_is 1 "$H2" 2 || fail "not 2 jobs on h2 before the drain"
run_on 2 drain "$H2" >"$WORK/drain" 2>&1 || fail "drain: $(cat "$WORK/drain")"
grep -q "moved 2 jobs" "$WORK/drain" || fail "drain said: $(cat "$WORK/drain")"
jobs_on_is 1 "$H2" 0 || fail "jobs still run on the drained h2"
h2_draining() { run_on 1 hosts --json | grep -q '"draining":true'; }
wait_until 5 h2_draining || fail "h1 never saw h2 draining"
for k in 1 2 3 4; do
	h=$(run_on 1 run --policy random -- sh -c 'echo $ROAM_HOST') || fail "run while h2 drains"
	[ "$h" != "$H2" ] || fail "a new job went to the draining h2"
done
run_on 2 undrain "$H2" >/dev/null || fail "undrain"
echo "PASS"
