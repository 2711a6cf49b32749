#!/bin/bash
# Checkpoint/restore of programs built on event loops, roam against CRIU
# 4.1.1 side by side in one run: python3 running asyncio
# (tests/integration/lib/asyncio_chat.py: epoll, socket pairs with bytes in
# flight, a signal handler, timers, a thread pool), node
# (tests/integration/lib/node_steps.js: libuv's epoll and eventfds, V8's
# threads), a process tree: bash running the asyncio program into cat
# through a pipe ("pipeline"), and the asyncio program over a TCP connection
# to its own server on 127.0.0.1 ("asyncio-tcp": both tools with
# --tcp-established, CRIU's network lock through nftables, as roam's).
# Images on tmpfs.
#
#   bench/ckpt_loops.sh            (normally through: bench/run.sh loops)
#
# Environment (defaults in brackets):
#   PROGRAMS ["asyncio node pipeline asyncio-tcp"]   RUNS [11]   WARMUP [1]
#   TOOL_TIMEOUT [60]   CRIU [built by bench/criu/build.sh]   ROAM [build/roam]
#   OUT [bench/out]     BENCH_NICE [-10]
#
# One run: start the program (its own session, output to a file), wait for
# its 40th line, checkpoint it (the tool kills it), restore it detached, and
# let it finish: its output must be byte-identical to an uninterrupted run's,
# else the run is a failure, reported, never a figure. Tools alternate
# (criu, roam, roam, criu, ...). Measured: the checkpoint command, the
# restore command, the freeze each tool reports, and "stopped", from the
# checkpoint's start to the restore's return: how long the program did not
# run (less, for a tree, the wait for init to reap the processes the kill
# orphaned, which holds their pids for both tools).
set -u
shopt -s extglob

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BENCH=ckpt_loops
. "$here/lib.sh"
bench_renice "$0" "$@"
PROGRAMS=${PROGRAMS:-"asyncio node pipeline asyncio-tcp"}
RUNS=${RUNS:-11}
WARMUP=${WARMUP:-1}
TOOL_TIMEOUT=${TOOL_TIMEOUT:-60}
ROAM=${ROAM:-$root/build/roam}
OUT=${OUT:-$root/bench/out}
LIB=$root/tests/integration/lib
PY=/usr/bin/python3
NODE=$(command -v node || command -v nodejs) || die "no node (scripts/deps.sh installs Debian's nodejs)"

[ "$(id -u)" -eq 0 ] || die "needs root (CRIU dumps with ptrace and restores PIDs)"
find_criu
SHM=$(mktemp -d /dev/shm/roam-loops.XXXXXX) || die "mktemp on /dev/shm"
out_files loops
prog_pid=""
cleanup() {
	[ -n "$prog_pid" ] && kill -KILL "$prog_pid" 2>/dev/null
	pkill -KILL -f "$SHM/" 2>/dev/null
	rm -rf "$SHM"
}
trap cleanup EXIT
cp "$LIB/asyncio_chat.py" "$LIB/node_steps.js" "$SHM/"
# A process tree: bash, the asyncio program, and cat reading it through a pipe.
printf '%s -I -S %s/asyncio_chat.py 400 | cat\n' "$PY" "$SHM" >"$SHM/pipeline.sh"

# The command of each program: long enough to be caught mid-run.
program() {
	case $1 in
	asyncio) echo "$PY -I -S $SHM/asyncio_chat.py 400" ;;
	node) echo "$NODE $SHM/node_steps.js 400" ;;
	pipeline) echo "bash $SHM/pipeline.sh" ;;
	asyncio-tcp) echo "$PY -I -S $SHM/asyncio_chat.py 400 tcp" ;;
	*) die "unknown program $1" ;;
	esac
}

# What a tool needs to carry the program's connections (tool, program, dump
# or restore).
conn_flags() {
	[ "$2" = asyncio-tcp ] || return 0
	case $1:$3 in
	criu:dump) echo "--tcp-established --network-lock nftables" ;;
	criu:restore) echo "--tcp-established" ;;
	roam:dump) echo "--tcp-established" ;;
	esac
}

frozen_us() {
	case $1 in
	criu) sed -n 's/^Frozen time: \([0-9]*\) us.*/\1/p' "$SHM/w/ckpt.txt" | head -n1 ;;
	roam) awk '{ for (i = 1; i < NF; i++) if ($i == "frozen-ms") { printf "%d\n", $(i + 1) * 1000; exit } }' \
		"$SHM/w/ckpt.txt" ;;
	esac
}

# reaped PID: true once PID is gone, zombie included (10 s at most).
reaped() {
	local i
	for ((i = 0; i < 2000; i++)); do
		[ -e "/proc/$1" ] || return 0
		sleep 0.005
	done
	return 1
}

# one_run TOOL PROGRAM: one TSV row's figures, or "FAIL reason".
one_run() {
	local tool=$1 prog=$2 pid t0 t1 t2 t3 rc rpid
	rm -rf "$SHM/w"
	mkdir -p "$SHM/w/img"
	# shellcheck disable=SC2046
	setsid $(program "$prog") >"$SHM/w/out" 2>&1 </dev/null &
	prog_pid=$!
	wait_line "$SHM/w/out" "40 " 60 >/dev/null || { echo "FAIL $prog never reached line 40"; return; }
	pid=$prog_pid
	local tree t2b
	tree=$(pgrep -s "$pid" | tr '\n' ' ')   # the program runs in a session of its own
	now_us t0
	case $tool in
	# shellcheck disable=SC2046
	criu) timeout "$TOOL_TIMEOUT" "$CRIU" dump -t "$pid" -D "$SHM/w/img" --display-stats -o dump.log \
		$(conn_flags criu "$prog" dump) >"$SHM/w/ckpt.txt" 2>&1 ;;
	# shellcheck disable=SC2046
	roam) timeout "$TOOL_TIMEOUT" "$ROAM" checkpoint --stats -o "$SHM/w/img/roam.img" "$pid" \
		$(conn_flags roam "$prog" dump) >"$SHM/w/ckpt.txt" 2>&1 ;;
	esac
	rc=$?
	now_us t1
	if [ $rc -ne 0 ]; then
		kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; prog_pid=""
		# CRIU logs its reason in dump.log (past a warning-like error about
		# RLIMIT_NOFILE, which CAP_SYS_RESOURCE would lift), roam on stderr.
		local why
		why=$(grep -h '^Error' "$SHM/w/img/dump.log" 2>/dev/null | grep -v RLIMIT_NOFILE | head -n1)
		echo "FAIL checkpoint rc=$rc: $(echo "${why:-$(tail -n1 "$SHM/w/ckpt.txt")}" | head -c 200)"
		return
	fi
	gone "$pid" 10 || { kill -KILL "$pid"; echo "FAIL the checkpoint left the process running"; return; }
	wait "$pid" 2>/dev/null; prog_pid=""
	now_us t2
	# A tree's other processes, orphaned by the kill, are reaped by init
	# (a second late here): either tool needs their pids back. Not counted.
	for p in $tree; do reaped "$p" || { echo "FAIL process $p of the tree was never reaped"; return; }; done
	now_us t2b
	case $tool in
	# shellcheck disable=SC2046
	criu) timeout "$TOOL_TIMEOUT" "$CRIU" restore -D "$SHM/w/img" -d -o restore.log \
		$(conn_flags criu "$prog" restore) >"$SHM/w/restore.txt" 2>&1 ;;
	roam) timeout "$TOOL_TIMEOUT" "$ROAM" restore --detach --pid-file "$SHM/w/pid" "$SHM/w/img/roam.img" \
		>"$SHM/w/restore.txt" 2>&1 ;;
	esac
	rc=$?
	now_us t3
	[ $rc -eq 0 ] || { echo "FAIL restore rc=$rc: $(tail -n1 "$SHM/w/restore.txt" | head -c 200)"; return; }
	rpid=$pid
	[ "$tool" = roam ] && read -r rpid <"$SHM/w/pid"
	gone "$rpid" 60 || { kill -KILL "$rpid"; echo "FAIL the restored program did not finish"; return; }
	cmp -s "$SHM/want-$prog" "$SHM/w/out" || { echo "FAIL the output differs from an uninterrupted run"; return; }
	echo "$(frozen_us "$tool")	$((t1 - t0))	$((t3 - t2b))	$((t3 - t0 - (t2b - t2)))	$(img_bytes "$SHM/w/img")"
}

printf 'program\ttool\trun\tfrozen_us\tckpt_us\trestore_us\tstopped_us\timage_bytes\tnote\n' >"$TSV"
for prog in $PROGRAMS; do
	# shellcheck disable=SC2046
	$(program "$prog") >"$SHM/want-$prog" 2>&1 </dev/null || die "$prog: the uninterrupted run failed"
	log "$prog: $WARMUP warm-up and $RUNS measured runs per tool"
	for ((i = -WARMUP; i < RUNS; i++)); do
		if ((i % 2)); then order="roam criu"; else order="criu roam"; fi
		for tool in $order; do
			row=$(one_run "$tool" "$prog")
			((i < 0)) && continue
			case $row in
			FAIL*) log "$prog $tool run $i: $row"
			       printf '%s\t%s\t%d\t-\t-\t-\t-\t-\t%s\n' "$prog" "$tool" "$i" "${row// /_}" >>"$TSV" ;;
			*) printf '%s\t%s\t%d\t%s\tok\n' "$prog" "$tool" "$i" "$row" >>"$TSV" ;;
			esac
		done
	done
done
"$PY" "$here/loops_report.py" "$TSV" --criu "$("$CRIU" --version | awk '/Version/ {print $2}')" | tee "$MD"
log "raw: $TSV  table: $MD"
