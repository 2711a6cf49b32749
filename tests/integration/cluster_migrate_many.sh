#!/bin/bash
# roam migrate of a process that holds many of everything: python3 (a
# program nobody here wrote) with 20,000 mappings of shared memory of its
# own (the mmap module makes one object per call) and 3,000 descriptors, in
# groups of three that share an open file description (dup) and its offset.
# It moves live h1 -> h2, then cold h2 -> h1, and must go on as if it had
# not moved: every mapping holds its number and no other is left in its
# address space, the descriptors of a group still share their offset, and
# its output is byte-identical to an unmigrated run. (Work for each mapping or descriptor that grew with the
# count of the others made the first move fail: the destination took 57 s
# to lay out 20,000 objects, past the image channel's deadline.)
# timeout: 240
. "$(dirname "$0")/lib/cluster.sh"

SHARED=$WORK/shared   # the program, its go file and its output, seen by both hosts
mkdir -p "$SHARED"
chmod 777 "$SHARED"
cluster_up 2 --allow-root --shared "$SHARED"
H1=$(hname 1) H2=$(hname 2)

cat >"$SHARED/many.py" <<'PY'
import mmap, os, sys, time
go = sys.argv[1]
maps = [mmap.mmap(-1, 4096) for i in range(20000)]
for i, m in enumerate(maps):
    m[0:8] = i.to_bytes(8, 'little')
groups = []
for k in range(1000):
    a = os.open('/etc/os-release', os.O_RDONLY)
    groups.append((a, os.dup(a), os.dup(a)))
    os.lseek(a, k % 97, os.SEEK_SET)
print('started', flush=True)
while not os.path.exists(go):
    time.sleep(0.01)
bad = sum(1 for i, m in enumerate(maps) if int.from_bytes(m[0:8], 'little') != i)
print('mappings', len(maps), 'wrong', bad)
# Nothing but its own: a restore's leftover (a master of shared memory) shows here.
print('shared mappings in maps', sum(1 for l in open('/proc/self/maps') if '/dev/zero' in l))
moved = 0
for k, (a, b, c) in enumerate(groups):
    pos = [os.lseek(fd, 0, os.SEEK_CUR) for fd in (a, b, c)]
    os.read(b, 3)
    moved += all(os.lseek(fd, 0, os.SEEK_CUR) == pos[0] + 3 for fd in (a, c)) and pos == [k % 97] * 3
print('descriptor groups', len(groups), 'sharing their offset', moved)
PY
touch "$SHARED/go.ref"
/usr/bin/python3 "$SHARED/many.py" "$SHARED/go.ref" >"$WORK/want" 2>&1 || fail "the reference run failed: $(cat "$WORK/want")"
grep -q "wrong 0" "$WORK/want" && grep -q "sharing their offset 1000" "$WORK/want" ||
	fail "the reference run itself says: $(cat "$WORK/want")"

bg_run_on 1 run --on "$H1" -- /usr/bin/python3 "$SHARED/many.py" "$SHARED/go" >"$WORK/out" 2>&1
runner=$BG_PID
wait_until 60 grep -q started "$WORK/out" || fail "python3 never started: $(cat "$WORK/out")"
id=$(last_job 1)
migrate_to "$id" "$H2" 1
migrate_to "$id" "$H1" 2 --cold
touch "$SHARED/go"
runner_matches "$runner" "$WORK/want" "$WORK/out"
note "python3: $(tail -n 2 "$WORK/out" | tr '\n' ';') identical after a live and a cold move"
echo PASS
