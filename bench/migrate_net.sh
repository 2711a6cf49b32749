# Sourced by bench/migrate.sh: the two hosts of the migration benchmark.
#
# Two network namespaces $MNS-h1 and $MNS-h2, each with a veth to a bridge in
# $MNS-sw, addresses 10.78.0.1/24 and 10.78.0.2/24: these addresses exist only
# inside the namespaces, and nothing here sends traffic to any other. CRIU,
# the floor and roam all move the process over this same path. For roam, each
# host also runs a roamd as in tests/integration/lib/cluster.sh: its own PID,
# mount and UTS namespace (roamd is PID 1 there, with its own /tmp), so that
# the subject really changes PID namespace when it moves. Files both sides
# must see (the subject's report and stop file) live under /var/tmp.
#
#   mig_net_up                    the namespaces and the bridge
#   in_host I CMD...              CMD in host I's network namespace
#   host_ns I                     its path, for `nsenter --net=` (in the
#                                 background use that directly: a function
#                                 run with & is a subshell, and $! its pid)
#   host_ip I                     10.78.0.I
#   roamd_up                      roamd on h1 and h2, both up and known; 0 or 1
#   roam_on I ARGS...             roam ARGS against host I's roamd
#   hname I                       roamd's name for host I
#   mig_net_down                  daemons, namespaces, cgroups and files gone
#                                 (the caller's EXIT trap calls it)
# Needs: ROAM, ROAMD (paths), MWORK (a directory under /var/tmp).

MNS=roamb$$
declare -a MIG_ROAMD_PIDS
MIG_NET=0

host_ip() { echo "10.78.0.$1"; }
hname() { echo "$MNS-h$1"; }

host_ns() { echo "/run/netns/$MNS-h$1"; }

in_host() { # I CMD...
	local i=$1; shift
	nsenter --net="$(host_ns "$i")" "$@"
}

mig_net_up() {
	local i
	MIG_NET=1
	ip netns add "$MNS-sw" || return 1
	ip -n "$MNS-sw" link add br0 type bridge || return 1
	ip -n "$MNS-sw" link set br0 up
	for i in 1 2; do
		ip netns add "$MNS-h$i" || return 1
		ip link add "rb$$h$i" netns "$MNS-h$i" type veth peer name "p$i" netns "$MNS-sw" || return 1
		ip -n "$MNS-h$i" link set "rb$$h$i" name eth0
		ip -n "$MNS-h$i" addr add "$(host_ip "$i")/24" dev eth0
		ip -n "$MNS-h$i" link set eth0 up
		ip -n "$MNS-h$i" link set lo up
		ip -n "$MNS-sw" link set "p$i" master br0
		ip -n "$MNS-sw" link set "p$i" up
	done
	# A bridge without STP forwards at once (the first floor run shows it).
	return 0
}

roam_on() { # I roam-args...
	local i=$1; shift
	local sub=$1; shift
	(cd / && exec "$ROAM" "$sub" --control "$MWORK/h$i.sock" "$@")
}

mig_hosts_up() { # I: host I sees both hosts up
	[ "$(roam_on "$1" hosts --json 2>/dev/null | grep -o '"state":"\(up\|self\)"' | wc -l)" -ge 2 ]
}

roamd_up() {
	local i k upid flags
	"$ROAM" keygen "$MWORK/key" >/dev/null || return 1
	for i in 1 2; do
		flags="--name $(hname "$i") --listen $(host_ip "$i"):7070 --key $MWORK/key"
		flags="$flags --control $MWORK/h$i.sock --allow-root ${ROAMD_EXTRA:-}"
		[ "$i" = 2 ] && flags="$flags --peers $(host_ip 1):7070"
		# nsenter, not "ip netns exec": the latter remounts /sys, hiding the
		# cgroup trees roamd puts its jobs in.
		nsenter --net="/run/netns/$MNS-h$i" unshare --pid --mount --uts --fork --mount-proc \
			--kill-child sh -c "hostname $(hname "$i"); mount -t tmpfs tmpfs /tmp; exec $ROAMD $flags" \
			>"$MWORK/roamd-h$i.log" 2>&1 </dev/null &
		upid=$!
		for k in $(seq 1 50); do
			MIG_ROAMD_PIDS[$i]=$(pgrep -P "$upid" 2>/dev/null | head -n1)
			[ -n "${MIG_ROAMD_PIDS[$i]}" ] && break
			sleep 0.05
		done
	done
	for i in 1 2; do
		for k in $(seq 1 150); do
			mig_hosts_up "$i" && continue 2
			sleep 0.1
		done
		echo "migrate: roamd on h$i does not see both hosts up (see $MWORK/roamd-h$i.log)" >&2
		return 1
	done
}

mig_net_down() {
	local i k d alive
	for i in 1 2; do
		[ -n "${MIG_ROAMD_PIDS[$i]:-}" ] && kill -TERM "${MIG_ROAMD_PIDS[$i]}" 2>/dev/null
	done
	for k in $(seq 1 20); do
		alive=0
		for i in 1 2; do
			[ -n "${MIG_ROAMD_PIDS[$i]:-}" ] && kill -0 "${MIG_ROAMD_PIDS[$i]}" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for i in 1 2; do
		[ -n "${MIG_ROAMD_PIDS[$i]:-}" ] && kill -KILL "${MIG_ROAMD_PIDS[$i]}" 2>/dev/null
	done
	if [ "$MIG_NET" = 1 ]; then
		for i in 1 2; do ip netns del "$MNS-h$i" 2>/dev/null; done
		ip netns del "$MNS-sw" 2>/dev/null
	fi
	for i in 1 2; do
		for d in /sys/fs/cgroup/unified /sys/fs/cgroup/cpuacct /sys/fs/cgroup/pids \
			/sys/fs/cgroup/freezer /sys/fs/cgroup; do
			[ -d "$d/roam.$MNS-h$i" ] || continue
			find "$d/roam.$MNS-h$i" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
			rmdir "$d/roam.$MNS-h$i" 2>/dev/null
		done
	done
	return 0
}
