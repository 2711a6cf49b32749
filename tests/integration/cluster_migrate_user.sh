#!/bin/bash
# roam migrate without root: three roamd run by an ordinary user on
# 127.0.0.1 ports (no namespaces, no cgroups, no choice of pid, no time
# namespace of its own; docs/migration.md, "Without root"). Self-checking
# subjects and real programs (bc, python3) move live and cold and finish as
# if nothing happened, with their output, stdin and exit status at the home
# and roam ps following them; h3 runs in a user and time namespace whose
# clocks are 100000 s ahead (a host booted earlier), so a job of h3 cannot
# go back to h1 (its clocks would go backwards), and says so before
# anything is frozen; h4 sees a Yama ptrace_scope of 1 and refuses to move
# its jobs, saying why; a source roamd killed with the process built (before
# COMMIT) leaves it running exactly once.
#
# Run by an ordinary user, it runs as that user. Run as root, it makes a
# throwaway user, runs itself as that user, and removes the user again.
# timeout: 300
if [ "$(id -u)" = 0 ]; then
	for c in useradd userdel runuser; do
		command -v $c >/dev/null || { echo "needs $c to run as an ordinary user"; exit 77; }
	done
	U=roamnr$$
	SELF=$(realpath "$0")
	UHOME=$(mktemp -d /var/tmp/roam-user.XXXXXX)
	useradd -M -N -s /bin/sh -d "$UHOME" "$U" || { echo "FAIL: cannot create the user $U"; exit 1; }
	chown "$U" "$UHOME"
	cd / || exit 1
	runuser -u "$U" -- env HOME="$UHOME" PATH=/usr/local/bin:/usr/bin:/bin \
		ROAM_BUILD="$ROAM_BUILD" ROAM_SUBJECTS="$ROAM_SUBJECTS" \
		ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" LSAN_OPTIONS="${LSAN_OPTIONS:-}" \
		bash "$SELF"
	rc=$?
	# The test stops its daemons, and they their jobs: nothing of the user
	# may be left once the last ones are reaped. (Whatever is, is the
	# test's own: the user is new.)
	for k in $(seq 1 30); do
		pgrep -u "$U" >/dev/null || break
		sleep 0.1
	done
	if pgrep -u "$U" >/dev/null; then
		echo "FAIL: processes of $U left behind:"
		ps -o pid,ppid,stat,args -u "$U"
		kill -9 $(pgrep -u "$U") 2>/dev/null
		sleep 0.2
		rc=1
	fi
	userdel "$U" || rc=1
	rm -rf "$UHOME"
	exit $rc
fi

. "$(dirname "$0")/lib/cluster.sh"
PY=/usr/bin/python3   # not a pyenv shim: the user may not read root's
SUBJ=${ROAM_SUBJECTS:?}
SHARED=$WORK/shared
mkdir -p "$SHARED"
# h3: a host whose clocks are ahead, where the user's namespaces allow it.
TIMENS=0
if unshare --help 2>&1 | grep -q -- --monotonic &&
	unshare --user --map-current-user --time --monotonic 1 true 2>/dev/null; then
	HOST_WRAP[3]="unshare --user --map-current-user --time --monotonic 100000 --boottime 100000"
	TIMENS=1
fi
# h4: a host whose Yama ptrace_scope is 1 (a file of that name over
# /proc/sys/kernel, in a mount namespace: user namespace root for the mount,
# then roamd's own uid again), where the user's namespaces allow it.
NH=3
if [ $TIMENS = 1 ] && unshare --user --map-root-user --mount true 2>/dev/null &&
	unshare --help 2>&1 | grep -q -- --map-user; then
	cat >"$WORK/yama.sh" <<'EOS'
mount -t tmpfs tmpfs /proc/sys/kernel && mkdir /proc/sys/kernel/yama &&
	echo 1 >/proc/sys/kernel/yama/ptrace_scope || exit 1
exec unshare --user --map-user="$ROAM_UID" --map-group="$ROAM_GID" "$@"
EOS
	HOST_WRAP[4]="env ROAM_UID=$(id -u) ROAM_GID=$(id -g) unshare --user --map-root-user --mount sh $WORK/yama.sh"
	NH=4
fi
for i in 1 2 3 4; do HOST_FLAGS[$i]="--doubt-timeout 20"; done
cluster_up $NH --shared "$SHARED"
H1=$(hname 1) H2=$(hname 2) H3=$(hname 3)
[ $AS_ROOT = 0 ] || fail "running as root"
grep -q "cgroups: v2 none, v1 0" "$WORK/h1.log" || note "h1 has cgroups after all: $(grep cgroups: "$WORK/h1.log")"

# start_job I HOST NAME STOP OUT: subject NAME, started from host I to run
# on HOST (stop file STOP, output OUT), once ready; sets runner (the roam
# run) and id (the job).
start_job() {
	bg_run_on "$1" run --on "$2" -- "$SUBJ/$3" -s "$4" >"$5" 2>&1
	runner=$BG_PID
	wait_until 10 grep -q ready "$5" || fail "$3 on $2: never ready: $(cat "$5")"
	id=$(last_job "$1")
}

# end_job STOP OUT WHAT: stops the job start_job started; it must print PASS
# and end with status 0 at its home.
end_job() {
	echo stop >"$1"
	wait "$runner"
	local rc=$?
	grep -q '^PASS' "$2" && [ $rc = 0 ] || fail "$3: rc=$rc $(cat "$2")"
}

# migrate_subject NAME [ARGS]: subject NAME runs from h1 on h1, moves live
# to h2, then cold to h3, where it is stopped: PASS and status 0 at the home.
migrate_subject() {
	local name=$1; shift
	local stop="$SHARED/stop-$name" out="$WORK/out-$name" id
	rm -f "$stop"
	bg_run_on 1 run --on "$H1" -- "$SUBJ/$name" -s "$stop" "$@" >"$out" 2>&1
	local runner=$BG_PID
	wait_until 10 grep -q ready "$out" || fail "$name: never ready: $(cat "$out")"
	id=$(last_job 1)
	run_on 1 migrate "$id" --to "$H2" --stats >"$WORK/m" 2>&1 || fail "$name: migrate live to h2: $(cat "$WORK/m")"
	note "$(cat "$WORK/m")"
	[ "$(job_moves 1 "$id")" = "$H2 1" ] || fail "$name: ps says $(job_moves 1 "$id") after one move"
	sleep 0.2
	run_on 2 migrate "$id" --to "$H3" --cold >"$WORK/m" 2>&1 || fail "$name: migrate cold to h3: $(cat "$WORK/m")"
	[ "$(job_moves 3 "$id")" = "$H3 2" ] || fail "$name: ps says $(job_moves 3 "$id") after two moves"
	sleep 0.2
	# The session subject still leads its process group on h3: a signal
	# to the group reaches it.
	if [ "$name" = session ]; then
		local pid
		pid=$(run_on 3 ps --json | $PY -c 'import json,sys; print([j["pid"] for j in json.load(sys.stdin) if j["id"]==sys.argv[1]][0])' "$id")
		kill -USR1 -- "-$pid" || fail "$name: no process group $pid on h3"
		sleep 0.1
	fi
	echo "pid-moved" >"$stop"   # never pid-kept: choosing a pid needs privilege
	wait "$runner"
	local rc=$?
	grep -q '^PASS' "$out" || fail "$name $*: after two migrations: rc=$rc: $(cat "$out")"
	[ $rc = 0 ] || fail "$name $*: exit status $rc at the home"
	note "$name${*:+ $*}: PASS after h1 -> h2 (live) -> h3 (cold)"
}

# The subjects of cluster_migrate.sh. The memory subject skips its check of
# /proc/self/exe (any-exe): setting that link needs CAP_CHECKPOINT_RESTORE,
# so without it a restored process's exe names roamd (README, Trust).
for s in ${MIG_SUBJECTS-memory memory:4 threads fpu clocks syscalls signals fds events timers attrs attrs:2 pid:2 session tree}; do
	extra=""
	[ "${s%%:*}" = memory ] && extra=any-exe
	case $s in
	*:*) migrate_subject "${s%%:*}" -t "${s#*:}" $extra ;;
	*) migrate_subject "$s" $extra ;;
	esac
done

# bc (unmodified), reading its program on stdin from the home, moves live
# and cold mid-computation; output byte-identical to an unmigrated run.
migrate_bc

# python3 answers lines typed at the home while it moves h1 -> h2 -> h1 ->
# h3 (live, cold, live; h3's clocks are ahead, so it goes there last); its
# output is that of an unmigrated run and its exit status (7) comes back.
PROG='import sys
n = 0
for line in sys.stdin:
    n += 1
    print(n, line.strip(), sum(i * i for i in range(n * 2000)), flush=True)
sys.exit(7)'
want=$(seq 1 12 | $PY -c "$PROG")
mkfifo "$WORK/in"
exec 7<>"$WORK/in"
(cd / && exec "$ROAM" run --control "$WORK/h1.sock" --on "$H1" -- $PY -c "$PROG") <"$WORK/in" >"$WORK/py.out" 2>&1 7>&- &
runner=$!
echo 1 >&7
wait_until 10 grep -q '^1 1 ' "$WORK/py.out" || fail "python3 never answered: $(cat "$WORK/py.out")"
id=$(last_job 1)
k=1
for step in "$H2 --stats" "$H1 --cold" "$H3 --stats"; do
	run_on 1 migrate "$id" --to $step >"$WORK/m" 2>&1 || fail "python3: migrate --to $step: $(cat "$WORK/m")"
	k=$((k + 1))
	echo $k >&7
	wait_until 10 grep -q "^$k $k " "$WORK/py.out" || fail "python3 did not answer line $k on ${step%% *}"
done
[ "$(job_moves 1 "$id")" = "$H3 3" ] || fail "python3: ps says $(job_moves 1 "$id") after three moves"
for k in $(seq 5 12); do echo "$k" >&7; done
exec 7>&-
wait_until 30 sh -c "! kill -0 $runner" || fail "python3 did not end after its stdin did"
wait "$runner"
rc=$?
[ $rc = 7 ] || fail "python3's exit status came back as $rc, not 7"
diff <(echo "$want") "$WORK/py.out" >/dev/null || fail "python3's output differs: $(diff <(echo "$want") "$WORK/py.out" | head)"
note "python3: identical output, status 7, after three migrations"

# Signals: a job moved away from its home is still signalled through it
# (no cgroup here: its process group), and its status comes back.
bg_run_on 1 run --on "$H1" -- sleep 60 >/dev/null 2>&1
runner=$BG_PID
wait_until 10 sh -c "'$ROAM' ps --control '$WORK/h1.sock' | grep -q ' sleep 60'" || fail "sleep never started"
id=$(last_job 1)
run_on 1 migrate "$id" --to "$H2" >"$WORK/m" 2>&1 || fail "sleep: migrate to h2: $(cat "$WORK/m")"
run_on 1 kill -TERM "$id" || fail "roam kill of the moved sleep"
wait "$runner"
rc=$?
[ $rc = 143 ] || fail "the moved sleep, killed with SIGTERM, came back as $rc"
note "sleep: moved to h2, killed from its home: status 143"

# roam drain, asked by roamd's own user: h2's jobs leave it. (Placed near a
# job pinned there by --on, which drain leaves alone: cluster_migrate_need.sh.)
pin=$(run_on 1 run --on "$H2" --detach -- sleep 60) || fail "detached sleep on h2"
for k in 1 2; do
	run_on 1 run --near "$pin" --detach -- sleep 60 >/dev/null || fail "detached sleep near $pin"
done
run_on 1 kill -KILL "$pin" >/dev/null || fail "kill $pin"
wait_until 10 jobs_on_is 1 "$H2" 2 || fail "not 2 jobs on h2 before the drain"
run_on 2 drain "$H2" >"$WORK/drain" 2>&1 || fail "drain: $(cat "$WORK/drain")"
grep -q "moved 2 jobs" "$WORK/drain" || fail "drain said: $(cat "$WORK/drain")"
jobs_on_is 1 "$H2" 0 || fail "jobs still run on the drained h2"
run_on 2 undrain "$H2" >/dev/null || fail "undrain"
for id in $(running_jobs 1); do
	run_on 1 kill -KILL "$id" >/dev/null || fail "kill $id after the drain"
done
note "drain: 2 jobs moved off h2"

# Clocks: a job of h3 (100000 s ahead) cannot go to h1, whose roamd cannot
# make a time namespace: --check and migrate say so, nothing is frozen, and
# the job goes on at h3; to h2 likewise.
if [ $TIMENS = 1 ]; then
	stop=$SHARED/stop-clocks3
	start_job 3 "$H3" clocks "$stop" "$WORK/out-c3"
	run_on 3 migrate --check "$id" --to "$H1" >"$WORK/m" 2>&1 && fail "--check let h3's job go to h1: $(cat "$WORK/m")"
	grep -q "clocks are .* ahead .*time namespace, which needs root" "$WORK/m" || fail "--check said: $(cat "$WORK/m")"
	run_on 3 migrate "$id" --to "$H1" >"$WORK/m" 2>&1; rc=$?
	[ $rc = 255 ] || fail "migrate to h1 of a job whose clocks are ahead exited $rc: $(cat "$WORK/m")"
	grep -q "time namespace, which needs root" "$WORK/m" || fail "the refusal said: $(cat "$WORK/m")"
	note "h3 -> h1 refused: $(cat "$WORK/m")"
	grep -q "receiving $id" "$WORK/h1.log" && fail "h1 received an image of the refused job"
	[ "$(job_moves 3 "$id")" = "$H3 0" ] || fail "the refused job: ps says $(job_moves 3 "$id")"
	end_job "$stop" "$WORK/out-c3" "clocks on h3 after the refusal"
else
	note "no unprivileged time namespace here: the clocks refusal is not tested"
fi

# Yama: h4's roamd cannot trace its own jobs (a worker is a job's sibling,
# not its ancestor), and says so before anything is frozen.
if [ $NH = 4 ]; then
	stop=$SHARED/stop-yama
	start_job 4 "$(hname 4)" threads "$stop" "$WORK/out-y"
	run_on 4 migrate "$id" --to "$H1" >"$WORK/m" 2>&1; rc=$?
	[ $rc = 255 ] && grep -q "ptrace_scope is 1 here" "$WORK/m" || fail "migrate from h4 (Yama 1) gave $rc: $(cat "$WORK/m")"
	note "h4 (Yama ptrace_scope 1): $(cat "$WORK/m")"
	run_on 4 migrate --check "$id" --to "$H1" >"$WORK/m" 2>&1 && fail "--check let h4's job go"
	grep -q "ptrace_scope" "$WORK/m" || fail "--check on h4 said: $(cat "$WORK/m")"
	end_job "$stop" "$WORK/out-y" "threads on h4 after the refusal"
else
	note "no unprivileged user and mount namespaces here: the Yama refusal is not tested"
fi

# The source's roamd dies with the process built at the destination, before
# COMMIT, and restarts: with no cgroup to freeze, its copy must die with its
# worker (not resume), since the restarted roamd lets the destination commit
# its own: the job runs once, on h2, and its status reaches the home (h3).
copies() { pgrep -u "$(id -u)" -fc "^$SUBJ/threads -s $1\$" || true; }
restart_h1() { # [flags]
	kill -9 "$(roamd_pid 1)" 2>/dev/null   # gone already after a fault
	sleep 0.3
	HOST_FLAGS[1]="--doubt-timeout 20 $*"
	start_host 1 --shared "$SHARED"
	for k in $(seq 1 $NH); do wait_until 15 hosts_up_on "$k" $NH || fail "h$k does not see $NH hosts after h1 restarted"; done
}
restart_h1 --test-fault exit-before-commit
stop=$SHARED/stop-fault
start_job 3 "$H1" threads "$stop" "$WORK/out-f"
run_on 3 migrate "$id" --to "$H2" >"$WORK/m" 2>&1
note "source killed before COMMIT: roam migrate said: $(cat "$WORK/m")"
restart_h1
wait_until 30 sh -c "[ \"\$(pgrep -u $(id -u) -fc '^$SUBJ/threads -s $stop\$')\" = 1 ]" ||
	fail "after the source died before COMMIT: $(copies "$stop") copies run"
wait_until 10 sh -c "[ \"\$('$ROAM' ps --control '$WORK/h3.sock' --json | $PY -c 'import json,sys; print(*[j[\"host\"] for j in json.load(sys.stdin) if j[\"id\"]==\"$id\" and j[\"state\"]==\"running\"])')\" = '$H2' ]" ||
	fail "the job does not run on h2: ps says $(job_moves 3 "$id")"
sleep 0.3
[ "$(copies "$stop")" = 1 ] || fail "$(copies "$stop") copies after settling"
end_job "$stop" "$WORK/out-f" "fault case"
note "source killed before COMMIT, restarted: runs once, on h2, PASS"

# roam ps on every host agrees that nothing runs any more.
for i in $(seq 1 $NH); do
	n=$(run_on $i ps --json | $PY -c 'import json,sys; print(sum(1 for j in json.load(sys.stdin) if j["state"]=="running"))')
	[ "$n" = 0 ] || fail "h$i: roam ps still shows $n running jobs"
done
echo "PASS"
