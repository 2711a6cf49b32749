#!/bin/bash
# A host whose only cgroup hierarchy is cgroup2, mounted at /sys/fs/cgroup,
# as on most machines today (this one mounts the v1 hierarchies, with
# cgroup2 beside them as "unified"; h2's mount namespace mounts cgroup2 over
# /sys/fs/cgroup, which hides them), with roamd started in a cgroup of its
# own, as systemd starts a service. There roamd puts each job in a cgroup2
# folder of its own, under its own cgroup, and in no v1 hierarchy; nothing
# a job forks outlives it; the job memory limit goes to memory.max where
# cgroup2 has the memory controller, and roamd says so where it has not; a
# process migrated onto the host runs in its job's folder, and one migrated
# off it leaves no folder behind.
# timeout: 120
[ "$(id -u)" = 0 ] || { echo "needs root (a mount namespace with cgroup2 alone)"; exit 77; }
. "$(dirname "$0")/lib/cluster.sh"

SUBJ=${ROAM_SUBJECTS:?}
SHARED=$WORK/shared   # the stop file, seen by both hosts
mkdir -p "$SHARED"
chmod 777 "$SHARED"
# roamd's own cgroup on h2, as a service's (/system.slice/roamd.service);
# the shell that execs roamd moves itself there ("0" is the writer).
SVC=svc-$$.roamd
HOST_PRE[2]="mount -t cgroup2 none /sys/fs/cgroup; mkdir /sys/fs/cgroup/$SVC; echo 0 >/sys/fs/cgroup/$SVC/cgroup.procs;"
HOST_FLAGS[2]="--job-mem-max 48M"
# The service folder goes too, once cluster_cleanup has removed roamd's.
CG2_ROOT=$(findmnt -n -t cgroup2 -o TARGET | head -n1)
svc_cleanup() {
	cluster_cleanup
	[ -n "$CG2_ROOT" ] && [ -d "$CG2_ROOT/$SVC" ] && find "$CG2_ROOT/$SVC" -depth -type d -exec rmdir {} + 2>/dev/null
}
trap svc_cleanup EXIT
cluster_up 2 --allow-root --shared "$SHARED"
H1=$(hname 1) H2=$(hname 2)
HOSTDIR=/sys/fs/cgroup/$SVC/roam.$H2

[ "$(on_host 2 stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] || fail "h2's /sys/fs/cgroup is not cgroup2"
on_host 2 test -d /sys/fs/cgroup/pids && fail "h2 still sees the v1 pids hierarchy"
grep -q "cgroups: v2 $HOSTDIR, v1 0 hierarchies" "$WORK/h2.log" ||
	fail "h2's roamd did not take cgroup2 alone: $(grep cgroups "$WORK/h2.log")"

# The job's folders under h2's host folder (none once every job is gone).
job_dirs() { on_host 2 find "$HOSTDIR" -mindepth 1 -maxdepth 1 -type d; }
no_job_dirs() { [ -z "$(job_dirs)" ]; }

# A job there is in its own cgroup2 folder, under roamd's, and in no v1
# hierarchy of roam's.
cg=$(run_on 1 run --on "$H2" -- cat /proc/self/cgroup) || fail "run on h2"
echo "$cg" | grep -q "^0::/$SVC/roam\.$H2/$H1\.[0-9]*$" || fail "h2 job cgroup (cgroup2): $cg"
echo "$cg" | grep -v '^0::' | grep -q 'roam\.' && fail "a job on h2 joined a v1 hierarchy: $cg"
wait_until 5 no_job_dirs || fail "job folders left on h2: $(job_dirs)"

# Nothing escapes: a double-forked process dies with its job (cgroup.kill).
# (A length of this test's own, so that no other test's sleep counts.)
escaped() { pgrep -f "^sleep 79\.$$\$" >/dev/null; }
run_on 1 run --on "$H2" -- sh -c "(setsid sleep 79.$$ &) ; exit 0" || fail "escape run"
wait_until 5 sh -c "! pgrep -f '^sleep 79\.$$\$'" || fail "a double-forked process escaped its job on h2"
escaped && fail "sleep 79.$$ still runs"

# The job memory limit: memory.max where cgroup2 has the memory controller;
# where it has not (on this machine it is bound to v1, which h2 cannot see),
# roamd says that it cannot apply it.
if on_host 2 grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
	max=$(run_on 1 run --on "$H2" -- sh -c 'cat /sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)/memory.max')
	[ "$max" = $((48 << 20)) ] || fail "a job's memory.max on h2 is '$max', not 48 MiB"
	note "job memory limit on h2: memory.max $max"
else
	grep -q "job-mem-max: no memory controller this roamd can use" "$WORK/h2.log" ||
		fail "h2 has no memory controller, and its roamd did not say so: $(grep -i memory "$WORK/h2.log")"
	note "h2's cgroup2 has no memory controller here (bound to v1): roamd says the limit cannot apply"
fi

# A process migrated onto h2 is born in its job's folder there; migrated
# back, it leaves no folder on h2; it finishes with its checks passed and
# its status at the home.
STOP=$SHARED/stop
ROAM_STOP=$STOP bg_run_on 1 run --on "$H1" -- "$SUBJ/memory" -s "$STOP" >"$WORK/out" 2>&1
runner=$BG_PID
wait_until 15 grep -q ready "$WORK/out" || fail "subject never ready: $(cat "$WORK/out")"
id=$(last_job 1)
migrate_to "$id" "$H2" 1
pid=$(run_on 1 ps --json | python3 -c 'import json, sys
print([j["pid"] for j in json.load(sys.stdin) if j["id"] == sys.argv[1]][0])' "$id")
on_host 2 grep -qx "0::/$SVC/roam\.$H2/$id" "/proc/$pid/cgroup" ||
	fail "the migrated process is not in its job's folder on h2: $(on_host 2 cat "/proc/$pid/cgroup")"
on_host 2 grep -qx "$pid" "$HOSTDIR/$id/cgroup.procs" || fail "$HOSTDIR/$id/cgroup.procs does not list $pid"
migrate_to "$id" "$H1" 2 --cold
wait_until 5 no_job_dirs || fail "the job left its folder on h2: $(job_dirs)"
echo stop >"$STOP"
wait "$runner"
rc=$?
grep -q '^PASS' "$WORK/out" || fail "the subject's checks failed after h1 -> h2 -> h1 (rc $rc): $(tail -n 3 "$WORK/out")"
[ $rc = 0 ] || fail "status $rc at the home"
note "memory subject: PASS after h1 -> h2 (cgroup2 alone) -> h1"
echo "PASS"
