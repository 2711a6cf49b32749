#!/bin/bash
# Checkpoint/restore benchmark: roam against CRIU 4.1.1, side by side in one
# run, on the same subject (bench/subject_fill.c: random-filled memory,
# spinning threads that measure their own stall), images on tmpfs, with the
# memcpy floor (bench/floor_memcpy.c) measured in the same run.
#
#   bench/ckpt_restore.sh            (normally through: bench/run.sh ckpt)
#
# Environment (defaults in brackets):
#   SIZES ["1M 64M 1G"]   THREADS ["1 4"]
#   RUNS [21]             measured runs per tool for sizes below 1 GiB
#   RUNS_BIG [5]          measured runs per tool for 1 GiB and above
#   WARMUP [1]            unmeasured runs per tool before each configuration
#   TOOL_TIMEOUT [60]     seconds one checkpoint or restore command may take;
#                         roam is dropped from the run after two time-outs
#   CRIU [built by bench/criu/build.sh]   ROAM [build/roam]
#   OUT [bench/out]       where the raw TSV and the markdown table go
#   ROAM_PIPE [1]         also measure roam checkpoint -o - | roam restore -
#   BENCH_NICE [-10]      nice level of the whole run (tools, subjects and floor
#                         alike), so that other work on the machine disturbs
#                         it less; empty to leave it alone
#
# For each configuration the tools alternate (criu, roam, roam, criu, ...).
# One run: start the subject, wait for "ready", checkpoint it (the tool kills
# it), reap it so its PID is free again, restore it detached, let it run,
# stop it and read the stall it saw and the checksum of its memory. A run
# whose checksum differs is a failure, reported, never a figure.
#
# roam's side is probed first: while `roam checkpoint`/`roam restore` do not
# work yet the table says so and shows CRIU and the floor alone; as soon as
# the engine works, the same command measures it. roam's frozen time is read
# from its output when it prints one (`roam checkpoint --stats`: "frozen-ms X",
# used when its usage mentions --stats; or "frozen_us=N").
set -u
shopt -s extglob

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BENCH=ckpt_restore
. "$here/lib.sh"
bench_renice "$0" "$@"
SIZES=${SIZES:-"1M 64M 1G"}
THREADS=${THREADS:-"1 4"}
RUNS=${RUNS:-21}
RUNS_BIG=${RUNS_BIG:-5}
WARMUP=${WARMUP:-1}
TOOL_TIMEOUT=${TOOL_TIMEOUT:-60}
ROAM=${ROAM:-$root/build/roam}
OUT=${OUT:-$root/bench/out}
SUBJECT=$root/build/bench/subject_fill
FLOOR=$root/build/bench/floor_memcpy
PY=/usr/bin/python3


[ "$(id -u)" -eq 0 ] || die "needs root (CRIU dumps with ptrace and restores PIDs)"
[ -x "$SUBJECT" ] && [ -x "$FLOOR" ] || die "build first: make (in $root)"
find_criu

# Images and the subjects' files live on tmpfs: the figures are about the
# tools, not the disk.
SHM=$(mktemp -d /dev/shm/roam-bench.XXXXXX) || die "mktemp on /dev/shm"
out_files ckpt

subject_pid=""
cleanup() {
	[ -n "$subject_pid" ] && kill -KILL "$subject_pid" 2>/dev/null
	# A restored subject is nobody's child here: stop it by its stop file.
	[ -d "$SHM" ] && touch "$SHM"/w/stop 2>/dev/null
	sleep 0.2
	rm -rf "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM






# tool_ckpt TOOL PID IMGDIR [--leave-running]: checkpoint, killing the
# process unless told otherwise. Leaves the tool's output in
# $IMGDIR/../ckpt.txt.
tool_ckpt() {
	case $1 in
	criu) timeout "$TOOL_TIMEOUT" "$CRIU" dump -t "$2" -D "$3" --display-stats -o dump.log ${4:-} \
		>"$3/../ckpt.txt" 2>&1 ;;
	roam) ROAM_STATS=1 timeout "$TOOL_TIMEOUT" "$ROAM" checkpoint "$2" -o "$3/roam.img" $ROAM_STATS_FLAG ${4:-} \
		>"$3/../ckpt.txt" 2>&1 ;;
	roam-pipe) (pipe_ckpt "$2" "$3") >"$3/../ckpt.txt" 2>&1 ;;
	esac
}

# roam-pipe: the streaming path migration will take, checkpoint piped into
# restore with no image file: `roam checkpoint PID -o - | roam restore -`. Its
# "checkpoint" is the whole pipeline, its restore step is empty. The restore
# overlaps the checkpoint, so the process may come back under a new PID.
pipe_ckpt() {
	set -o pipefail
	ROAM_STATS=1 timeout "$TOOL_TIMEOUT" "$ROAM" checkpoint "$1" -o - $ROAM_STATS_FLAG |
		timeout "$TOOL_TIMEOUT" "$ROAM" restore - --detach --pid-file "$2/../pid" $ROAM_RESTORE_STATS_FLAG
}

# tool_restore TOOL IMGDIR: restore detached; returns once the process runs.
tool_restore() {
	case $1 in
	criu) timeout "$TOOL_TIMEOUT" "$CRIU" restore -D "$2" -d -o restore.log >"$2/../restore.txt" 2>&1 ;;
	roam-pipe) : ;;
	roam) timeout "$TOOL_TIMEOUT" "$ROAM" restore "$2/roam.img" --detach --pid-file "$2/../pid" \
		>"$2/../restore.txt" 2>&1 ;;
	esac
}

frozen_us() {
	case $1 in
	criu) sed -n 's/^Frozen time: \([0-9]*\) us.*/\1/p' "$SHM/w/ckpt.txt" | head -n1 ;;
	roam*) # "frozen-ms 12.3" (roam checkpoint --stats), or "frozen_us=N".
		awk '{ for (i = 1; i < NF; i++) if ($i == "frozen-ms") { printf "%d\n", $(i + 1) * 1000; exit } }
		     match($0, /frozen_us=[0-9]+/) { print substr($0, RSTART + 10, RLENGTH - 10); exit }' \
			"$SHM/w/ckpt.txt" ;;
	esac
}

# one_run TOOL SIZE THREADS: prints one TSV row (without the leading
# tool/size/threads/run columns) or "FAIL reason" on stdout.
one_run() {
	local tool=$1 size=$2 thr=$3 line pid sum t0 t1 t2 t3 done gap end fz bytes
	rm -rf "$SHM/w"
	mkdir -p "$SHM/w/img"
	"$SUBJECT" "$size" "$thr" "$SHM/w/stop" >"$SHM/w/out" 2>"$SHM/w/err" </dev/null &
	subject_pid=$!
	line=$(wait_line "$SHM/w/out" "ready " 120) || { echo "FAIL subject not ready: $(head -c 200 "$SHM/w/err")"; return; }
	pid=$(field pid "$line"); sum=$(field sum "$line")
	sleep 0.05

	now_us t0
	tool_ckpt "$tool" "$pid" "$SHM/w/img"
	local rc=$?
	now_us t1
	if [ $rc -ne 0 ]; then
		kill -KILL "$subject_pid" 2>/dev/null; wait "$subject_pid" 2>/dev/null; subject_pid=""
		echo "FAIL checkpoint rc=$rc: $(grep -v '^ *$' "$SHM/w/ckpt.txt" | tail -n1 | head -c 200)"
		return
	fi
	# The tool killed it; reap it so that its PID is free for the restore.
	# Nothing else between the two commands: the subject's stall counts it.
	if ! gone "$subject_pid" 10; then
		kill -KILL "$subject_pid"; wait "$subject_pid" 2>/dev/null; subject_pid=""
		echo "FAIL checkpoint left the process running"
		return
	fi
	wait "$subject_pid" 2>/dev/null; subject_pid=""

	now_us t2
	tool_restore "$tool" "$SHM/w/img"
	rc=$?
	now_us t3
	fz=$(frozen_us "$tool")
	bytes=$(img_bytes "$SHM/w/img")
	# A failed restore still leaves valid checkpoint figures: the row keeps
	# them, and its note (FAIL_restore...) keeps the restore out of the table.
	local ck="${fz:--}	$((t1 - t0))"
	if [ $rc -ne 0 ]; then
		local msg
		msg=$(grep -v '^ *$' "$SHM/w/restore.txt" | tail -n1 | head -c 200)
		echo "$ck	-	-	$bytes	FAIL_restore_rc=$rc:${msg// /_}"
		return
	fi
	sleep 0.1
	touch "$SHM/w/stop"
	done=$(wait_line "$SHM/w/out" "done " 120) || { echo "$ck	-	-	$bytes	FAIL_restore:subject_never_finished"; return; }
	# Let the restored process finish exiting (unmapping its memory takes a
	# while at 1 GiB) before anything else runs: the next run or the floor
	# must not pay for this one's teardown.
	local rpid=$pid
	[ "$tool" = criu ] || read -r rpid 2>/dev/null <"$SHM/w/pid" || rpid=$pid
	gone "$rpid" 10 || log "$tool: restored process $rpid still there 10 s after it finished"
	gap=$(field gap_us "$done"); end=$(field gap_end_ns "$done")
	[ "$(field sum "$done")" = "$sum" ] ||
		{ echo "$ck	-	-	$bytes	FAIL_restore:memory_checksum_differs"; return; }
	# The stall must be the checkpoint's: the longest gap ended after the
	# checkpoint began. Otherwise something else stopped the subject longer.
	local note=ok
	[ "$((end / 1000))" -ge "$t0" ] || note=gap-before-ckpt
	local rs=$((t3 - t2))
	if [ "$tool" = roam-pipe ]; then
		rs=-
		bytes=$(awk '{ for (i = 1; i < NF; i++) if ($i == "bytes") { print $(i + 1); exit } }' "$SHM/w/ckpt.txt")
	fi
	echo "${fz:--}	$((t1 - t0))	$rs	$gap	${bytes:--}	$note	$(field touch_us "$done")"
}

# lr_start SIZE THREADS: starts a subject for leave_runs; sets lr_pid.
lr_start() {
	local line
	rm -rf "$SHM/w"
	mkdir -p "$SHM/w"
	"$SUBJECT" "$1" "$2" "$SHM/w/stop" >"$SHM/w/out" 2>"$SHM/w/err" </dev/null &
	subject_pid=$!
	line=$(wait_line "$SHM/w/out" "ready " 120) || { kill -KILL "$subject_pid"; wait "$subject_pid"; return 1; }
	lr_pid=$(field pid "$line")
	lr_seen=0
}

# leave_runs SIZE THREADS N TOOLS: the frozen time as the process sees it,
# the same way for both tools: checkpoints with --leave-running of one
# subject, tools alternating, each followed by SIGUSR1 so that the subject
# reports (and forgets) its longest gap. Prints TSV rows "TOOL-lr ...". A tool
# that does not leave the process running is reported once and dropped.
leave_runs() {
	local size=$1 thr=$2 n=$3 tools=$4 line i j tool order t0 rc gap end note
	lr_start "$size" "$thr" || { log "leave-running: subject not ready"; return; }
	for ((i = 1 - WARMUP; i <= n; i++)); do
		order=$tools
		((i % 2 == 0)) && order=$(echo "$tools" | awk '{for (k = NF; k; k--) printf "%s ", $k}')
		for tool in $order; do
			rm -rf "$SHM/w/img"; mkdir -p "$SHM/w/img"
			sleep 0.05
			now_us t0
			tool_ckpt "$tool" "$lr_pid" "$SHM/w/img" --leave-running
			rc=$?
			if ! kill -0 "$lr_pid" 2>/dev/null; then
				log "leave-running: $tool left no process behind (rc=$rc): dropped"
				printf '%s-lr\t%s\t%s\t%s\t-\t-\t-\t-\t-\tFAIL_process_gone_rc=%s\n' \
					"$tool" "$size" "$thr" "$i" "$rc"
				wait "$subject_pid" 2>/dev/null; subject_pid=""
				tools=$(echo "$tools" | tr ' ' '\n' | grep -vx "$tool" | tr '\n' ' ')
				[ -n "${tools// /}" ] || return
				lr_start "$size" "$thr" || return
				continue 2
			fi
			sleep 0.05
			kill -USR1 "$lr_pid"
			lr_seen=$((lr_seen + 1))
			line=""
			for ((j = 0; j < 2000; j++)); do
				line=$(grep "^gap " "$SHM/w/out" | sed -n "${lr_seen}p")
				[ -n "$line" ] && break
				sleep 0.005
			done
			((i < 1)) && continue
			if [ $rc -ne 0 ] || [ -z "$line" ]; then
				printf '%s-lr\t%s\t%s\t%s\t-\t-\t-\t-\t-\tFAIL_rc=%s\n' "$tool" "$size" "$thr" "$i" "$rc"
				continue
			fi
			gap=$(field gap_us "$line"); end=$(field gap_end_ns "$line")
			note=ok
			[ "$((end / 1000))" -ge "$t0" ] || note=gap-before-ckpt
			printf '%s-lr\t%s\t%s\t%s\t-\t-\t-\t%s\t-\t%s\n' "$tool" "$size" "$thr" "$i" "$gap" "$note"
		done
	done
	touch "$SHM/w/stop"
	wait "$subject_pid" 2>/dev/null; subject_pid=""
}

# roam_ready: 0 when roam checkpoints and restores, 2 when it checkpoints
# only, 1 when it does neither; prints why not.
roam_ready() {
	local r
	[ -x "$ROAM" ] || { echo "no $ROAM (run make)"; return 1; }
	r=$(one_run roam 1M 1)
	case $r in
	FAIL*) echo "${r#FAIL }"; return 1 ;;
	*FAIL_restore*) echo "restore: ${r##*FAIL_restore}" | tr '_' ' '; return 2 ;;
	esac
	return 0
}


# roam checkpoint prints its frozen time with --stats, when it has the flag.
ROAM_STATS_FLAG=""
ROAM_RESTORE_STATS_FLAG=""
if [ -x "$ROAM" ] && { "$ROAM" checkpoint --help 2>&1; "$ROAM" checkpoint 2>&1; } </dev/null |
	grep -q -- '--stats'; then
	ROAM_STATS_FLAG=--stats
fi
if [ -x "$ROAM" ] && { "$ROAM" restore --help 2>&1; "$ROAM" restore 2>&1; } </dev/null |
	grep -q -- '--stats'; then
	ROAM_RESTORE_STATS_FLAG=--stats
fi

tools="criu"
why=$(roam_ready)
case $? in
0) tools="criu roam"
	log "roam: checkpoint and restore work, measuring both"
	if [ "${ROAM_PIPE:-1}" = 1 ]; then
		r=$(one_run roam-pipe 1M 1)
		case $r in
		*FAIL*) log "roam checkpoint -o - | roam restore - does not work: ${r##*FAIL}" ;;
		*) tools="criu roam roam-pipe" ;;
		esac
	fi ;;
2) tools="criu roam"
	why="roam restore not measured ($why)"
	log "$why; measuring roam checkpoint alone" ;;
*) why="roam not measured in this run: $why"
	log "$why" ;;
esac

roam_timeouts=0
load0=$(cut -d' ' -f1-3 /proc/loadavg)
nice_now=$(nice)
# touch_us, last and only in complete runs: one write to every page of the
# restored process, where a lazy restore would pay what it deferred.
printf 'tool\tsize\tthreads\trun\tfrozen_us\tckpt_us\trestore_us\tstall_us\timage_bytes\tnote\ttouch_us\n' >"$TSV"
log "raw figures: $TSV"
for size in $SIZES; do
	n=$(runs_for "$size")
	for thr in $THREADS; do
		log "$size x $thr thread(s): $WARMUP warm-up + $n runs per tool ($tools)"
		for ((i = 1 - WARMUP; i <= n; i++)); do
			order=$tools
			((i % 2 == 0)) && order=$(echo "$tools" | awk '{for (k = NF; k; k--) printf "%s ", $k}')
			for tool in $order; do
				case " $tools " in *" $tool "*) ;; *) continue ;; esac
				r=$(one_run "$tool" "$size" "$thr")
				if [[ $tool == roam* && $r == *rc=124* ]]; then
					roam_timeouts=$((roam_timeouts + 1))
					if ((roam_timeouts >= 2)); then
						log "roam timed out twice: dropped from the rest of the run"
						tools=criu
						why="roam dropped after two time-outs (${TOOL_TIMEOUT}s) at $size x $thr"
					fi
				fi
				((i < 1)) && continue
				case $r in
				FAIL*) log "$tool $size x $thr run $i: $r"
					printf '%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\t%s\n' "$tool" "$size" "$thr" "$i" "${r// /_}" ;;
				*FAIL_restore*) ((i == 1)) && log "$tool $size x $thr: ${r##*	}"
					printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$size" "$thr" "$i" "$r" ;;
				*) printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$size" "$thr" "$i" "$r" ;;
				esac >>"$TSV"
			done
			# The floor runs between the tools' runs, not in a block of its own:
			# how slow fresh pages are on this VM drifts with what the machine
			# did lately, and the ratio must compare like with like. It starts,
			# like each tool's run, with no image left on tmpfs: measured right
			# after CRIU's run, with its 1 GiB image still there, the 1 GiB
			# floor took 2-2.8 s instead of 0.45 s.
			rm -rf "$SHM/w"
			"$FLOOR" "$size" 1 | while read -r _ us; do
				((i < 1)) || printf 'floor\t%s\t%s\t%s\t-\t%s\t-\t-\t-\tok\n' "$size" "$thr" "$i" "$us"
			done >>"$TSV"
		done
		log "$size x $thr thread(s): $n checkpoints --leave-running per tool (frozen as seen)"
		# Never with roam-pipe: a pipe restore of a process left running would
		# run it twice.
		leave_runs "$size" "$thr" "$n" "${tools/ roam-pipe/}" >>"$TSV"
	done
done

"$PY" "$here/ckpt_report.py" "$TSV" --criu "$("$CRIU" --version | awk '/Version/ {print $2}')" \
	--machine "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), kernel $(uname -r); load average before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows here); run at nice $nice_now." \
	${why:+--roam-missing "$why"} >"$MD" || die "report failed"
cat "$MD"
log "table saved: $MD"
