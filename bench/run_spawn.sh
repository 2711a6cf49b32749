#!/bin/bash
# Remote spawn benchmark (issue 3): /bin/true on another host, round trip as
# the user sees it (the harness fork+execs the client each time), p50/p99 and
# runs per second with 1 and 4 concurrent callers, side by side in one run:
#   floor          /bin/true run locally by the harness
#   roam local     roam run --on h1 (the caller's own host)
#   roam remote    roam run --on h2 (another network/PID namespace)
#   ssh fresh      ssh to an sshd in h2's namespaces, a new connection each run
#   ssh mux        the same through a ControlMaster connection
# The p50/p99 of floor, roam local, roam remote and ssh mux come from one
# interleaved harness run (one run of each per round), so that their ratios
# are not at the mercy of a load burst that hits one row and not another;
# runs/s (four callers) is measured one case at a time;
# and the cost of a spawn with 1 GiB resident: roamd (h3, --ballast 1024)
# spawning locally, against a plain fork+exec of a 1 GiB process and a
# posix_spawn (vfork) of one.
#
#   bench/run_spawn.sh [RUNS]        (root; needs openssh-server: scripts/deps.sh --bench)
# Writes bench/out/run_spawn.txt.
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-300}
export ROAM_BUILD=${ROAM_BUILD:-$PWD/build}
[ "$(id -u)" = 0 ] || { echo "needs root (namespaces, sshd)"; exit 77; }
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || { echo "needs openssh-server (scripts/deps.sh --bench)"; exit 77; }
make -s all >/dev/null || exit 1
. tests/integration/lib/cluster.sh
HARNESS=$B/bench/run_harness
mkdir -p bench/out
OUT=bench/out/run_spawn.txt

HOST_FLAGS[3]="--ballast 1024"
cluster_up 3 --allow-root
H1=$(hname 1) H2=$(hname 2) H3=$(hname 3)

# sshd inside h2's network namespace, with keys of its own.
S=$WORK/ssh
mkdir -p "$S" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$S/host" && ssh-keygen -q -t ed25519 -N '' -f "$S/user" || fail "ssh-keygen"
cp "$S/user.pub" "$S/authorized_keys"
cat >"$S/sshd_config" <<CONF
ListenAddress 10.77.0.2:22
HostKey $S/host
AuthorizedKeysFile $S/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
UseDNS no
PidFile $S/sshd.pid
CONF
# sshd gets a mount namespace of its own where root's shell start-up file is
# empty: bash sources ~/.bashrc for ssh commands, and this machine's (pyenv)
# would charge ssh for time that is not its own.
: >"$S/empty"
nsenter --net="/run/netns/$NS-h2" unshare --mount sh -c \
	"mount --bind $S/empty /root/.bashrc 2>/dev/null; exec /usr/sbin/sshd -f $S/sshd_config -D -E $S/sshd.log" &
SSHD=$!
trap 'kill $SSHD 2>/dev/null; [ -S "$S/cm" ] && in_host_net 1 ssh -S "$S/cm" -O exit x 2>/dev/null; cluster_cleanup' EXIT
SSH=(ssh -F /dev/null -i "$S/user" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
     -o LogLevel=ERROR -o BatchMode=yes)
wait_until 10 in_host_net 1 "${SSH[@]}" root@10.77.0.2 true || fail "sshd not reachable: $(cat "$S/sshd.log")"
in_host_net 1 "${SSH[@]}" -M -S "$S/cm" -o ControlPersist=yes -fN root@10.77.0.2 || fail "ControlMaster"

measure() { # label runs callers cmd...
	local label=$1 n=$2 c=$3; shift 3
	local r
	r=$(in_host_net 1 "$HARNESS" -n "$n" -c "$c" -w 5 -- "$@") || { echo "$label: failures ($r)" >&2; }
	printf '%-22s c=%d %s\n' "$label" "$c" "$r" | tee -a "$OUT.raw" >&2
	echo "$r"
}
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

: >"$OUT.raw"
declare -A P50 P99 RPS
row() { # key label runs cmd...
	local key=$1 label=$2 n=$3; shift 3
	local r1 r4
	r1=$(measure "$label" "$n" 1 "$@")
	r4=$(measure "$label" "$n" 4 "$@")
	P50[$key]=$(field "$r1" p50_ms); P99[$key]=$(field "$r1" p99_ms)
	RPS[$key]=$(field "$r4" runs_per_s)
}
ROAM1=("$ROAM" run --control "$WORK/h1.sock")
# The latencies that the targets compare (one caller) are measured
# interleaved: each round runs the floor, roam local, roam remote and ssh
# mux once each, so that the load of this shared machine, which changes from
# second to second, falls on all four alike and their ratios hold.
LAT=$(in_host_net 1 "$HARNESS" -n "$RUNS" -c 1 -w 5 -- /bin/true \
	::: "${ROAM1[@]}" --on "$H1" -- /bin/true \
	::: "${ROAM1[@]}" --on "$H2" -- /bin/true \
	::: "${SSH[@]}" -S "$S/cm" root@10.77.0.2 /bin/true) || echo "interleaved: failures ($LAT)" >&2
k=0
for key in floor rlocal rremote sshmux; do
	r=$(echo "$LAT" | sed -n "s/^cmd=$k //p")
	printf '%-22s c=1 %s (interleaved)\n' "$key" "$r" | tee -a "$OUT.raw" >&2
	P50[$key]=$(field "$r" p50_ms); P99[$key]=$(field "$r" p99_ms)
	k=$((k + 1))
done
# Throughput (four concurrent callers), one case at a time.
tput() { # key label cmd...
	local key=$1 label=$2; shift 2
	RPS[$key]=$(field "$(measure "$label" "$RUNS" 4 "$@")" runs_per_s)
}
tput floor "local /bin/true" /bin/true
tput rlocal "roam run (local)" "${ROAM1[@]}" --on "$H1" -- /bin/true
tput rremote "roam run (remote)" "${ROAM1[@]}" --on "$H2" -- /bin/true
tput sshmux "ssh ControlMaster" "${SSH[@]}" -S "$S/cm" root@10.77.0.2 /bin/true
row sshfresh "ssh fresh" 40 "${SSH[@]}" root@10.77.0.2 /bin/true
# Spawn with 1 GiB resident.
row rbig "roamd 1GiB: local run" "$RUNS" "$ROAM" run --control "$WORK/h3.sock" --on "$H3" -- /bin/true
P=$(in_host_net 1 "$HARNESS" -n "$RUNS" -c 1 -b 1024 -m fork -- /bin/true); P50[fork1g]=$(field "$P" p50_ms); P99[fork1g]=$(field "$P" p99_ms)
P=$(in_host_net 1 "$HARNESS" -n "$RUNS" -c 1 -b 1024 -m vfork -- /bin/true); P50[vfork1g]=$(field "$P" p50_ms); P99[vfork1g]=$(field "$P" p99_ms)

ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
{
	echo "remote spawn of /bin/true, $(nproc) CPUs, $(date -u +%FT%TZ); round trip of the CLI as a user runs it"
	echo "(p50/p99 of the first four rows: measured interleaved, one run of each per round; load average $(cut -d' ' -f1-3 /proc/loadavg))"
	printf '%-30s %9s %9s %11s %12s\n' "case" "p50 ms" "p99 ms" "runs/s c=4" "p50 / floor"
	for k in floor rlocal rremote sshmux sshfresh rbig; do
		case $k in
		floor) l="local /bin/true (floor)" ;; rlocal) l="roam run, local host" ;;
		rremote) l="roam run, other host" ;; sshmux) l="ssh, ControlMaster" ;;
		sshfresh) l="ssh, fresh connection" ;; rbig) l="roam run by a 1 GiB roamd" ;;
		esac
		printf '%-30s %9s %9s %11s %12s\n' "$l" "${P50[$k]}" "${P99[$k]}" "${RPS[$k]}" "$(ratio "${P50[$k]}" "${P50[floor]}")"
	done
	printf '%-30s %9s %9s\n' "fork+exec, 1 GiB process" "${P50[fork1g]}" "${P99[fork1g]}"
	printf '%-30s %9s %9s\n' "posix_spawn, 1 GiB process" "${P50[vfork1g]}" "${P99[vfork1g]}"
	echo
	echo "roam remote vs floor (p50): $(ratio "${P50[rremote]}" "${P50[floor]}")x   (target <= 2.5x)"
	echo "ssh fresh / roam remote (p50): $(ratio "${P50[sshfresh]}" "${P50[rremote]}")x   (target >= 50x)"
	echo "ssh mux / roam remote (p50): $(ratio "${P50[sshmux]}" "${P50[rremote]}")x   (target >= 5x)"
} | tee "$OUT"
