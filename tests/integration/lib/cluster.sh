# Sourced by tests/integration/cluster_*.sh: builds a cluster of roamd hosts.
#
# As root, each host is its own network, PID, mount and UTS namespace:
#   ip netns roamtNNNN-hI (entered with nsenter), veth to a bridge in roamtNNNN-sw, address
#   10.77.0.I/24 (used only inside these namespaces), then
#   unshare --pid --mount --uts --fork --mount-proc: roamd is PID 1 there,
#   with its own host name, /proc and /tmp.
# Without root, the same cluster runs on 127.0.0.1 ports.
#
#   cluster_up N [roamd flags for every host]   hosts h1..hN, all up and known
#   HOST_FLAGS[I]="..."                         extra flags for host I (set before)
#   HOST_PRE[I]="cmd;"                          root: run in host I's namespaces first
#   HOST_WRAP[I]="cmd args"                     without root: host I's roamd runs under it
#   run_on I ARGS...                            roam ARGS against host I's roamd
#   bg_run_on I ARGS...                         the same in the background: BG_PID
#   roamd_pid I                                 roamd's pid (in our namespace)
#   on_host I CMD...                            CMD in host I's PID and mount namespaces
#   wait_until SECONDS CMD...                   polls CMD until it succeeds
#   fail MSG                                    prints and exits 1
# Cleanup (trap EXIT) kills the daemons and removes namespaces, cgroups and files.

set -u
B=${ROAM_BUILD:?ROAM_BUILD must name the build directory}
ROAM=$B/roam
ROAMD=$B/roamd
WORK=$(mktemp -d /var/tmp/roam-cluster.XXXXXX)
chmod 755 "$WORK"
NS=roamt$$
declare -a HOST_FLAGS HOST_PRE HOST_WRAP ROAMD_PIDS
NHOSTS=0
AS_ROOT=0
[ "$(id -u)" = 0 ] && AS_ROOT=1
BASE_PORT=$((20000 + ($$ % 20000)))

fail() {
	echo "FAIL: $*"
	for i in $(seq 1 "$NHOSTS"); do
		echo "--- h$i log"
		grep -A 30 "ERROR: .*Sanitizer\|runtime error" "$WORK/h$i.log" 2>/dev/null | head -n 40
		tail -n 30 "$WORK/h$i.log" 2>/dev/null
	done
	exit 1
}
note() { echo "# $*"; }

# running_jobs I: the ids of the running jobs, oldest first, one a line, as
# host I's roam ps says.
running_jobs() {
	run_on "$1" ps --json | /usr/bin/python3 -c 'import json, sys
print(*[j["id"] for j in json.load(sys.stdin) if j["state"] == "running"], sep="\n")'
}

# last_job I: the id of the newest running job (empty when none runs).
last_job() { running_jobs "$1" | tail -n 1; }

# migrate_bc: a program nobody here wrote. bc (unmodified) prints 40 numbers
# of 400 digits, reading its program on stdin from the home h1, and moves
# h1 -> h2 live, then h2 -> h3 cold, mid-computation; its output must be
# byte-identical to an unmigrated run, and its status 0 at the home.
migrate_bc() {
	local runner rc id
	command -v bc >/dev/null || fail "bc is not installed (scripts/deps.sh installs it)"
	printf 'scale=400\nfor (i = 1; i <= 40; i++) { print i, " ", l(i) + e(i / 10) + a(i), "\\n" }\nquit\n' >"$WORK/prog.bc"
	bc -l <"$WORK/prog.bc" >"$WORK/bc.want" 2>&1 || fail "bc's reference run failed"
	(cd / && exec "$ROAM" run --control "$WORK/h1.sock" --on "$(hname 1)" -- bc -l) <"$WORK/prog.bc" >"$WORK/bc.out" 2>&1 &
	runner=$!
	# The numbers printed so far (each starts a line with its index).
	bc_done() { [ "$(grep -c '^[0-9]* ' "$WORK/bc.out")" -ge "$1" ]; }
	wait_until 20 bc_done 5 || fail "bc printed nothing: $(cat "$WORK/bc.out")"
	id=$(last_job 1)
	run_on 1 migrate "$id" --to "$(hname 2)" --stats >"$WORK/m" 2>&1 || fail "bc: migrate live to h2: $(cat "$WORK/m")"
	note "bc: $(cat "$WORK/m")"
	wait_until 20 bc_done 15 || fail "bc stalled on h2: $(tail -n 2 "$WORK/bc.out")"
	run_on 1 migrate "$id" --to "$(hname 3)" --cold --stats >"$WORK/m" 2>&1 || fail "bc: migrate cold to h3: $(cat "$WORK/m")"
	note "bc: $(cat "$WORK/m")"
	wait "$runner"
	rc=$?
	[ $rc = 0 ] || fail "bc's exit status came back as $rc"
	cmp "$WORK/bc.want" "$WORK/bc.out" || fail "bc's output differs after two moves"
	note "bc: identical output ($(wc -c <"$WORK/bc.out") bytes) after a live and a cold migration"
}

# job_moves I ID: "HOST MIGRATIONS" of the running job ID, as host I's
# roam ps says (empty when it runs nowhere).
job_moves() {
	run_on "$1" ps --json | /usr/bin/python3 -c 'import json, sys
print(*[j["host"] + " " + str(j.get("migrations", 0)) for j in json.load(sys.stdin)
        if j["id"] == sys.argv[1] and j["state"] == "running"])' "$2"
}

# migrate_to ID HOST N [OPTIONS...]: h1's roam migrates job ID to HOST
# with --stats (notes its last line); ps must then show it on HOST, moved N
# times in all.
migrate_to() {
	local id=$1 host=$2 n=$3
	shift 3
	run_on 1 migrate "$id" --to "$host" --stats "$@" >"$WORK/m" 2>&1 ||
		fail "migrate $id to $host${*:+ $*}: $(cat "$WORK/m")"
	note "to $host${*:+ ($*)}: $(tail -n 1 "$WORK/m")"
	[ "$(job_moves 1 "$id")" = "$host $n" ] || fail "ps says '$(job_moves 1 "$id")' after $n moves"
}

# runner_matches PID WANT OUT: the roam run PID ends with status 0, and the
# output OUT it got is byte-identical to WANT (an unmigrated run's).
runner_matches() {
	local rc
	wait_until 120 sh -c "! kill -0 $1" || fail "the job did not end: $(tail -n 3 "$3")"
	wait "$1"
	rc=$?
	[ $rc = 0 ] || fail "the job's exit status came back as $rc: $(tail -n 3 "$3")"
	cmp "$2" "$3" || fail "the output differs after the moves: $(diff "$2" "$3" | head -n 6)"
}

# job_host I ID: the host job ID runs on, as host I's roam ps says (empty
# when it runs nowhere).
job_host() { local m; m=$(job_moves "$1" "$2"); echo "${m%% *}"; }

# jobs_on_is I HOST N: host I's roam ps shows exactly N running jobs on HOST.
jobs_on_is() {
	[ "$(run_on "$1" ps --json | /usr/bin/python3 -c 'import json, sys
print(sum(1 for j in json.load(sys.stdin) if j["host"] == sys.argv[1] and j["state"] == "running"))' "$2")" = "$3" ]
}

# The pid and thread ids of job ID running on host I, as that host sees them.
job_tids() { # I ID
	local pid
	pid=$(run_on "$1" ps --json | python3 -c '
import json, sys
print([j["pid"] for j in json.load(sys.stdin) if j["id"] == sys.argv[1]][0])' "$2") || return 1
	echo "$pid: $(on_host "$1" ls "/proc/$pid/task" | sort -n | tr '\n' ' ')"
}

# migrate_subject NAME [ARGS]: runs subject NAME (its stop file in
# $SHARED, which every host sees) from h1 on h1, moves it to
# h2 then h3, stops it there; it must print PASS and exit 0 at the home.
# When its pid and every thread id came through unchanged (PID namespaces:
# the engine takes the old ones where they are free), the stop file says
# pid-kept and the subject asserts them too. They must come through: each
# host is a fresh PID namespace, where the destination keeps the old ids
# free (MigPrepare.tids); but for the threads subject, which starts and
# ends threads all the time, so that its ids change by themselves.
migrate_subject() {
	local name=$1; shift
	local stop="${SHARED:?}/stop-$name" out="$WORK/out-$name" id tids0 words=pid-moved
	rm -f "$stop"
	ROAM_STOP=$stop bg_run_on 1 run --on "$H1" -- "${ROAM_SUBJECTS:?}/$name" -s "$stop" "$@" >"$out" 2>&1
	local runner=$BG_PID
	wait_until 10 grep -q ready "$out" || fail "$name: never ready: $(cat "$out")"
	id=$(last_job 1)
	tids0=$(job_tids 1 "$id")
	run_on 1 migrate "$id" --to "$H2" --stats >"$WORK/mig-$name" 2>&1 || fail "$name: migrate to h2: $(cat "$WORK/mig-$name")"
	note "$(cat "$WORK/mig-$name")"
	[ "$(job_moves 1 "$id")" = "$H2 1" ] || fail "$name: ps says $(job_moves 1 "$id") after one move"
	sleep 0.2
	run_on 2 migrate "$id" --to "$H3" >/dev/null 2>&1 || fail "$name: migrate to h3"
	[ "$(job_moves 2 "$id")" = "$H3 2" ] || fail "$name: ps says $(job_moves 2 "$id") after two moves"
	sleep 0.2
	local tids3
	tids3=$(job_tids 3 "$id")
	if [ "$tids3" = "$tids0" ]; then
		words="$words pid-kept"
	elif [ "$name" != threads ]; then
		fail "$name $*: pid and thread ids $tids0 on h1 came to h3 as $tids3"
	fi
	# The session subject leads its session and process group on h3 too:
	# a signal to the group reaches it (as ckpt_session.sh checks).
	if [ "$name" = session ]; then
		on_host 3 kill -USR1 -- "-$(job_tids 3 "$id" | cut -d: -f1)" || fail "$name: no process group to signal on h3"
		sleep 0.1
	fi
	echo "$words" >"$stop"
	wait "$runner"
	local rc=$?
	grep -q '^PASS' "$out" || fail "$name $*: after two migrations: rc=$rc: $(cat "$out")"
	[ $rc = 0 ] || fail "$name $*: exit status $rc at the home"
	note "$name${*:+ $*}: PASS after h1 -> h2 -> h3 ($words)"
}

host_addr() { # I
	if [ $AS_ROOT = 1 ]; then echo "10.77.0.$1:7070"; else echo "127.0.0.1:$((BASE_PORT + $1))"; fi
}

cluster_cleanup() {
	local i k
	# A caller under set -e (scripts/demo.sh) must not stop half way: a
	# failing kill of a daemon already gone would leave the namespaces.
	set +e
	# TERM first: roamd kills its jobs on the way out (without root there
	# is no PID namespace to take them down with it).
	for i in $(seq 1 "$NHOSTS"); do
		[ -n "${ROAMD_PIDS[$i]:-}" ] && kill -TERM "${ROAMD_PIDS[$i]}" 2>/dev/null
	done
	for k in $(seq 1 20); do
		alive=0
		for i in $(seq 1 "$NHOSTS"); do
			[ -n "${ROAMD_PIDS[$i]:-}" ] && kill -0 "${ROAMD_PIDS[$i]}" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for i in $(seq 1 "$NHOSTS"); do
		[ -n "${ROAMD_PIDS[$i]:-}" ] && kill -9 "${ROAMD_PIDS[$i]}" 2>/dev/null
	done
	sleep 0.1
	if [ $AS_ROOT = 1 ]; then
		for i in $(seq 1 "$NHOSTS"); do ip netns del "$NS-h$i" 2>/dev/null; done
		ip netns del "$NS-sw" 2>/dev/null
		# The v1 memory hierarchy (roamd --job-mem-max), under our own cgroup there.
		local mem; mem=/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory:\(.*[^/]\)\/*$/\1/p' /proc/self/cgroup)
		for i in $(seq 1 "$NHOSTS"); do
			for d in /sys/fs/cgroup/unified /sys/fs/cgroup/cpuacct /sys/fs/cgroup/pids /sys/fs/cgroup/freezer /sys/fs/cgroup "$mem"; do
				[ -d "$d/roam.$NS-h$i" ] || continue
				find "$d/roam.$NS-h$i" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
				rmdir "$d/roam.$NS-h$i" 2>/dev/null
			done
		done
	fi
	rm -rf "$WORK"
}
trap cluster_cleanup EXIT

# Host names carry the test's pid so that cgroup folders never collide with
# another cluster on the same kernel; hN is what tests call them.
hname() { echo "$NS-h$1"; }

start_host() { # I [flags...]
	local i=$1; shift
	local name; name=$(hname "$i")
	local flags="--name $name --listen $(host_addr "$i") --key $WORK/key --control $WORK/h$i.sock"
	# Each host's state (the job-id sequence) in WORK, kept across its restarts.
	flags="$flags --state-dir $WORK/state.h$i"
	# h1 is every other host's seed unless HOST_FLAGS says otherwise (later flags win).
	[ "$i" != 1 ] && flags="$flags --peers $(host_addr 1)"
	flags="$flags ${HOST_FLAGS[$i]:-} $*"
	if [ $AS_ROOT = 1 ]; then
		# nsenter, not "ip netns exec": the latter remounts /sys, hiding the
		# cgroup trees roamd puts its jobs in.
		nsenter --net="/run/netns/$NS-h$i" unshare --pid --mount --uts --fork --mount-proc --kill-child \
			sh -c "hostname $name; mount -t tmpfs tmpfs /tmp; ${HOST_PRE[$i]:-} exec $ROAMD $flags" >"$WORK/h$i.log" 2>&1 &
		local upid=$! k
		for k in $(seq 1 50); do
			ROAMD_PIDS[$i]=$(pgrep -P "$upid" 2>/dev/null | head -n1)
			[ -n "${ROAMD_PIDS[$i]}" ] && break
			sleep 0.05
		done
	else
		# The wrapper (unshare, say) must exec roamd: its pid is roamd's.
		${HOST_WRAP[$i]:-} $ROAMD $flags >"$WORK/h$i.log" 2>&1 &
		ROAMD_PIDS[$i]=$!
	fi
}

roamd_pid() { echo "${ROAMD_PIDS[$1]}"; }

# Runs CMD where host I's pids mean what roam ps says (its PID namespace,
# and the mount namespace whose /proc shows it); without root, here.
on_host() { # I CMD...
	local i=$1; shift
	if [ $AS_ROOT = 1 ]; then nsenter -t "$(roamd_pid "$i")" -p -m -- "$@"; else "$@"; fi
}

run_on() { # I roam-args...
	local i=$1; shift
	local sub=$1; shift
	(cd / && exec "$ROAM" "$sub" --control "$WORK/h$i.sock" "$@")
}

# Like run_on, in the background; BG_PID is roam's own pid (for signals).
bg_run_on() { # I roam-args...
	local i=$1; shift
	local sub=$1; shift
	(cd / && exec "$ROAM" "$sub" --control "$WORK/h$i.sock" "$@") &
	BG_PID=$!
}

wait_until() { # SECONDS CMD...
	local limit=$1; shift
	local end=$((SECONDS + limit))
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}

hosts_up_on() { # I N: host I sees N hosts up (itself included)
	[ "$(run_on "$1" hosts --json 2>/dev/null | grep -o '"state":"\(up\|self\)"' | wc -l)" -ge "$2" ]
}

# Host I's own network namespace on the cluster's bridge (root only).
make_host_net() { # I
	local i=$1
	[ $AS_ROOT = 1 ] || return 0
	[ -e "/run/netns/$NS-sw" ] || {
		ip netns add "$NS-sw" || fail "ip netns add"
		ip -n "$NS-sw" link add br0 type bridge
		ip -n "$NS-sw" link set br0 up
	}
	ip netns add "$NS-h$i"
	ip link add "rt$$h$i" netns "$NS-h$i" type veth peer name "p$i" netns "$NS-sw"
	ip -n "$NS-h$i" link set "rt$$h$i" name eth0
	ip -n "$NS-h$i" addr add "10.77.0.$i/24" dev eth0
	ip -n "$NS-h$i" link set eth0 up
	ip -n "$NS-h$i" link set lo up
	ip -n "$NS-sw" link set "p$i" master br0
	ip -n "$NS-sw" link set "p$i" up
}

# Runs CMD inside host I's network namespace (or here, without root).
in_host_net() { # I CMD...
	local i=$1; shift
	if [ $AS_ROOT = 1 ]; then nsenter --net="/run/netns/$NS-h$i" "$@"; else "$@"; fi
}

cluster_up() { # N [flags for all]
	local n=$1; shift
	NHOSTS=$n
	$ROAM keygen "$WORK/key" || fail "keygen"
	for i in $(seq 1 "$n"); do make_host_net "$i"; done
	for i in $(seq 1 "$n"); do start_host "$i" "$@"; done
	for i in $(seq 1 "$n"); do
		wait_until 15 hosts_up_on "$i" "$n" || fail "host h$i does not see $n hosts up"
	done
	note "cluster of $n hosts up (root=$AS_ROOT)"
}
