#!/bin/sh
# One command per benchmark. Installs what the benchmarks need (Debian
# packages through scripts/deps.sh --bench, CRIU 4.1.1 built from Debian's
# source package), builds roam, then runs.
#
#   bench/run.sh ckpt      checkpoint/restore: roam vs CRIU vs the memcpy floor
#                          (bench/ckpt_restore.sh; its environment knobs apply)
#   bench/run.sh migrate   migration: roam migrate vs CRIU cold migration vs
#                          the TCP floor (bench/migrate.sh; its knobs apply)
#   bench/run.sh loops     checkpoint/restore of python3 asyncio and node: roam
#                          vs CRIU (bench/ckpt_loops.sh; its knobs apply)
#   bench/run.sh spawn [RUNS]   remote spawn: roam run vs ssh vs local
#                          (bench/run_spawn.sh)
#   bench/run.sh sim       roam-sim's speed (bench/sim_speed.sh)
#
# Tables are printed and saved under bench/out/.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	echo "usage: bench/run.sh ckpt|migrate|loops|spawn [RUNS]|sim" >&2
	exit 2
}
[ $# -ge 1 ] || usage
case $1 in ckpt | migrate | loops | spawn | sim) ;; *) usage ;; esac

"$root/scripts/deps.sh" --bench
make -C "$root" -s -j"$(nproc)" >/dev/null

case $1 in
ckpt)
	"$root/bench/criu/build.sh" >/dev/null
	exec "$root/bench/ckpt_restore.sh"
	;;
migrate)
	"$root/bench/criu/build.sh" >/dev/null
	exec "$root/bench/migrate.sh"
	;;
loops)
	"$root/bench/criu/build.sh" >/dev/null
	exec "$root/bench/ckpt_loops.sh"
	;;
spawn)
	shift
	exec "$root/bench/run_spawn.sh" "$@"
	;;
sim)
	exec "$root/bench/sim_speed.sh"
	;;
*) usage ;;
esac
