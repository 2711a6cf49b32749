#!/bin/bash
# Migration benchmark (issue 5): roam migrate against CRIU 4.1.1's cold
# migration and against the floor, side by side in one run, between the same
# two network-namespace hosts (bench/migrate_net.sh: 10.78.0.1 and 10.78.0.2
# on a bridge, nothing else addressed).
#
#   bench/migrate.sh            (normally through: bench/run.sh migrate)
#
# For each RSS and dirtying rate, the subject (bench/subject_fill.c with
# --dirty R --tick-us: random-filled memory, one thread rewriting random pages
# at R MB/s, a thread measuring the longest time no thread of the process ran)
# starts on host 1 and moves to host 2:
#   criu       cold: criu dump on h1 (kills it), the image sent over one TCP
#              connection to h2 (floor_tcp send-dir, sendfile from tmpfs; the
#              receiver writes it to h2's image directory on tmpfs), criu
#              restore -d on h2. Each CRIU command runs in its host's network
#              namespace; the process keeps its PID (the root PID namespace).
#   criu-ps    the same, but the dump sends the memory to `criu page-server`
#              on h2 as it goes; the rest of the image is copied as above;
#   roam       `roam migrate ID --to h2 --stats` of a job started with
#              `roam run --on h1 --detach` (live: pre-copy rounds);
#   roam-cold  the same with --cold (ROAM_COLD=0 leaves it out);
#   floor      SIZE bytes over one TCP connection from h1 into freshly mapped
#              memory on h2 (floor_tcp send/recv), after each round of the
#              tools' runs, so that it sees the same conditions.
# total: from the start of the first command to the process running on h2
# (the command's return: criu restore -d and roam migrate both return once
# it runs); downtime (seen): the subject's longest gap, i.e. last instruction
# before the freeze to the first on h2; roam's own total_ms and downtime_ms
# are recorded beside them. A run whose memory checksum fails is a failure,
# never a figure.
#
# roam is probed first: without `roam migrate` (or while it fails on a small
# subject) the table says "roam migrate: not available" and still shows
# CRIU and the floor.
#
# Environment (defaults in brackets):
#   SIZES ["64M 1G"]   RATES ["0 10 100"] (MB/s, 10^6 bytes)
#   RUNS [7]           measured runs per tool below 1 GiB
#   RUNS_BIG [3]       measured runs per tool at 1 GiB and above
#   WARMUP [1]         unmeasured rounds before each configuration
#   TICK_US [100]      the subject's sleep between two clock readings
#   SETTLE_S [4]       seconds every tool (and the floor) waits, its subject
#                      ready, before it is timed: see "settle" below
#   WARM_GIB [0]       GiB faulted in and freed by a throw-away process just
#                      before each timed run (after the settle): see "warm"
#                      below. Not the issue's measurement, which is with 0
#   TOOL_TIMEOUT [120] seconds one command may take
#   ROAM_COLD [1]      also measure roam migrate --cold
#   CRIU_PS [1]        also measure CRIU with its page server (criu-ps)
#   ROAMD_EXTRA []     more flags for both roamd (bench/migrate_net.sh)
#   ROAM_CLEAR [0]     1: both roamd send images in clear, still authenticated
#                      (--image-encryption no, as CRIU's own transfer here is
#                      plain TCP); the table's header says which
#   CRIU [bench/criu/build.sh's]  ROAM, ROAMD [build/]  OUT [bench/out]
#   BENCH_NICE [-10]   nice level of the whole run; empty to leave it
set -u
shopt -s extglob

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BENCH=migrate
. "$here/lib.sh"
bench_renice "$0" "$@"
SIZES=${SIZES:-"64M 1G"}
RATES=${RATES:-"0 10 100"}
RUNS=${RUNS:-7}
RUNS_BIG=${RUNS_BIG:-3}
WARMUP=${WARMUP:-1}
TICK_US=${TICK_US:-100}
SETTLE_S=${SETTLE_S:-4}
WARM_GIB=${WARM_GIB:-0}
TOOL_TIMEOUT=${TOOL_TIMEOUT:-120}
ROAM_COLD=${ROAM_COLD:-1}
ROAM_CLEAR=${ROAM_CLEAR:-0}
if [ "$ROAM_CLEAR" = 1 ]; then
	ROAMD_EXTRA="${ROAMD_EXTRA:-} --image-encryption no"
	images="roam's images in clear, each record authenticated (AES-256-GMAC; roamd --image-encryption no)"
else
	images="roam's images encrypted (AES-256-OCB, the default)"
fi
CRIU_PS=${CRIU_PS:-1}
ROAM=${ROAM:-$root/build/roam}
ROAMD=${ROAMD:-$root/build/roamd}
OUT=${OUT:-$root/bench/out}
SUBJECT=$root/build/bench/subject_fill
FLOOR=$root/build/bench/floor_tcp
PORT=7171


[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, CRIU)"
[ -x "$SUBJECT" ] && [ -x "$FLOOR" ] || die "build first: make (in $root)"
find_criu

# The subject's report and stop file must be seen from both hosts (each
# roamd host has its own /tmp): /var/tmp. Images live on tmpfs.
MWORK=$(mktemp -d /var/tmp/roam-mig.XXXXXX) || die "mktemp in /var/tmp"
chmod 755 "$MWORK"
SHM=$(mktemp -d /dev/shm/roam-mig.XXXXXX) || die "mktemp on /dev/shm"
. "$here/migrate_net.sh"
out_files migrate

# Runs happen in background subshells (run, below): the processes they start are
# noted in $MWORK/pids, so that an interrupted run leaves none behind.
subject_pid="" recv_pid="" roam_job="" run_pid=""
track() { echo "$1" >>"$MWORK/pids"; }
kill_tree() { # PID: it and its descendants (by parent pid), children first
	local c
	for c in $(pgrep -P "$1"); do kill_tree "$c"; done
	kill -KILL "$1" 2>/dev/null
}
cleanup() {
	local p exe
	[ -n "$run_pid" ] && kill_tree "$run_pid"
	[ -d "$MWORK/w" ] && touch "$MWORK/w/stop"
	sleep 0.3
	for p in $(cat "$MWORK/pids" 2>/dev/null); do
		exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
		[ "$exe" = "$SUBJECT" ] || [ "$exe" = "$FLOOR" ] && kill -KILL "$p" 2>/dev/null
	done
	# roam's jobs die with the PID namespaces of their roamd.
	mig_net_down
	rm -rf "$MWORK" "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM





ms_to_us() { awk -v v="$1" 'BEGIN { if (v ~ /^[0-9.]+$/) printf "%d\n", v * 1000; else print "-" }'; }

last_words() { grep -v '^ *$' "$1" 2>/dev/null | tail -n1 | head -c 200 | tr ' \t' '__'; }


subject_args() { # SIZE RATE
	echo "--dirty $2 --tick-us $TICK_US --report $MWORK/w/rep $1 1 $MWORK/w/stop"
}

# finish T0: stops the migrated subject and checks what it reports (its
# memory, and that it ended in h2's network namespace). Prints
# "GAP NOTE" or "FAIL reason".
finish() {
	local t0=$1 done gap end
	sleep 0.3
	touch "$MWORK/w/stop"
	done=$(wait_line "$MWORK/w/rep" done 120) || { echo "FAIL subject_never_finished_on_h2"; return; }
	case $done in *CORRUPT*) echo "FAIL memory_checksum_differs"; return ;; esac
	# It must have ended on h2: the subject names its network namespace.
	[ "$(field netns "$done")" = "$(stat -L -c %i "$(host_ns 2)")" ] ||
		{ echo "FAIL process_did_not_end_on_h2"; return; }
	gap=$(field gap_us "$done"); end=$(field gap_end_ns "$done")
	# The downtime must be the migration's: the longest gap ended after it
	# began. Otherwise something else stopped the subject longer.
	if [ "$((end / 1000))" -ge "$t0" ]; then echo "$gap ok"; else echo "$gap gap-before-migration"; fi
}

# keep_log FILE NAME: a failed run's log, kept beside the table.
keep_log() {
	mkdir -p "$OUT/migrate-$stamp.logs"
	cp "$1" "$OUT/migrate-$stamp.logs/$2" 2>/dev/null
}

# bail REASON: a failed run; kills what it started (still running) and
# prints "FAIL REASON".
bail() {
	local p
	for p in $subject_pid $recv_pid; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	subject_pid="" recv_pid=""
	echo "FAIL $*"
}

# TSV columns after tool/size/rate/run:
#   wall_us own_total_us own_down_us stall_us bytes rounds dump_us copy_us restore_us note
# settle: every timed run starts from memory in the same state. This VM's
# balloon device reports freed pages to the host (free page reporting, about
# 2 s after they are freed), which must fault them in again when they are
# next touched: 1 GiB copied into fresh pages took 0.45 to 2.6 s right after
# another GiB was freed, 2.75 to 2.95 s once 4 s had passed. Without the
# wait a tool got fast or slow pages by what freed memory just before it;
# with it each pays for fresh pages as the floor does. (The dirtying thread
# is at work meanwhile.)
settle() { sleep "$SETTLE_S"; warm; }

# warm: with WARM_GIB, a process faults in that much memory and exits just
# before the run is timed, so that what the tool (or the floor) allocates
# next comes from memory the host still backs, as on a machine without a
# balloon: the freed pages go back to the host only about 2 s later. A
# supplementary measurement of each tool's own work, with a caveat: the
# report of the rest, 2 s on, stalls every process once for 25 to 35 ms
# (see fresh_gap), which falls inside CRIU's longer runs.
warm() {
	[ "$WARM_GIB" = 0 ] && return
	python3 -c "b = b'\x01' * ($WARM_GIB << 30)" ||
		log "warm: could not fault in $WARM_GIB GiB"
}

# fresh_gap: the subject forgets the longest gap it saw so far (SIGUSR1, to
# which it answers with a "gap" line) just before the run is timed, so that
# the downtime seen is the migration's. A stall before it is not: this VM
# stops every process for 25 to 35 ms about 2.1 s after another one frees a
# GiB (when the balloon reports the pages to the host), and often as one
# starts to fault a GiB in (seen with a 1 GiB subject idle beside a program
# doing both), so the previous run's memory stalls the settle above. The
# subject's PID is looked up by its report path, the one name it has in
# every PID namespace.
fresh_gap() {
	local pid
	pid=$(pgrep -f -- "subject_fill .*--report $MWORK/w/rep" | head -n1)
	[ -n "$pid" ] && kill -USR1 "$pid" && wait_line "$MWORK/w/rep" gap 5 >/dev/null
}

# one_criu SIZE RATE [ps]: prints them, or "FAIL reason". With "ps" the
# dump sends the memory to a `criu page-server` on h2 as it goes, and only
# the rest of the image is copied afterwards.
one_criu() {
	local size=$1 rate=$2 ps=${3:-} w=$MWORK/w line pid t0 t1 t2 t3 rc res bytes rmt
	local tag=criu${ps:+-ps}-$size-$rate psargs=() pspid=""
	rm -rf "$w" "$SHM/a" "$SHM/b"
	mkdir -p "$w" "$SHM/a" "$SHM/b"
	# shellcheck disable=SC2046
	nsenter --net="$(host_ns 1)" "$SUBJECT" $(subject_args "$size" "$rate") </dev/null >/dev/null 2>"$w/err" &
	subject_pid=$!
	track "$subject_pid"
	line=$(wait_line "$w/rep" ready 120) || { bail "subject_not_ready:$(last_words "$w/err")"; return; }
	pid=$(field pid "$line")
	nsenter --net="$(host_ns 2)" "$FLOOR" recv-dir "$(host_ip 2)" "$PORT" "$SHM/b" >"$w/recv.out" 2>"$w/recv.err" </dev/null &
	recv_pid=$!
	track "$recv_pid"
	wait_line "$w/recv.out" listening 10 >/dev/null || { bail "receiver:$(last_words "$w/recv.err")"; return; }
	if [ -n "$ps" ]; then
		# -d: returns once it listens; it exits when the dump is done.
		nsenter --net="$(host_ns 2)" "$CRIU" page-server -D "$SHM/b" --address "$(host_ip 2)" \
			--port $((PORT + 1)) -d --pidfile "$w/ps.pid" -o "$w/ps.log" >"$w/ps.out" 2>&1 </dev/null ||
			{ keep_log "$w/ps.log" "$tag-page-server.log"; bail "page_server:$(last_words "$w/ps.log")"; return; }
		pspid=$(cat "$w/ps.pid")
		track "$pspid"
		psargs=(--page-server --address "$(host_ip 2)" --port $((PORT + 1)))
	fi
	settle

	fresh_gap || { bail "subject_did_not_answer_SIGUSR1"; return; }
	now_us t0
	timeout "$TOOL_TIMEOUT" nsenter --net="$(host_ns 1)" \
		"$CRIU" dump -t "$pid" -D "$SHM/a" "${psargs[@]}" -o "$w/dump.log" >"$w/dump.out" 2>&1
	rc=$?
	[ -n "$pspid" ] && { gone "$pspid" || rc=99; }
	now_us t1
	if [ $rc -ne 0 ]; then
		keep_log "$w/dump.log" "$tag-dump.log"
		[ -n "$pspid" ] && { keep_log "$w/ps.log" "$tag-page-server.log"; kill -KILL "$pspid" 2>/dev/null; }
		bail "dump_rc=$rc:$(last_words "$w/dump.log")"
		return
	fi
	# The dump killed it: reap it, so that its PID is free on h2 (the
	# hosts share the root PID namespace).
	gone "$subject_pid" || { bail "dump_left_the_process_running"; return; }
	wait "$subject_pid" 2>/dev/null; subject_pid=""
	timeout "$TOOL_TIMEOUT" nsenter --net="$(host_ns 1)" \
		"$FLOOR" send-dir "$(host_ip 2)" "$PORT" "$SHM/a" >"$w/send.out" 2>&1
	rc=$?
	wait "$recv_pid"; recv_pid=""
	now_us t2
	[ $rc -eq 0 ] || { bail "copy_rc=$rc:$(last_words "$w/send.out")"; return; }
	# h1's image goes before the restore: on two machines it would not take
	# h2's memory, and on this VM fresh pages get much slower with another
	# GiB held on tmpfs (CRIU's 1 GiB restore took 3 s instead of 0.6 s).
	# The process is dead meanwhile, so the time taken comes off both its
	# downtime and the total exactly.
	rm -rf "$SHM/a"
	now_us rmt; rmt=$((rmt - t2))
	now_us t2
	timeout "$TOOL_TIMEOUT" nsenter --net="$(host_ns 2)" \
		"$CRIU" restore -D "$SHM/b" -d -o "$w/restore.log" >"$w/restore.out" 2>&1
	rc=$?
	now_us t3
	[ $rc -eq 0 ] || { keep_log "$w/restore.log" "$tag-restore.log"; keep_log "$w/err" "$tag-subject.err"; }
	[ $rc -eq 0 ] || { bail "restore_rc=$rc:$(last_words "$w/restore.log")"; return; }
	res=$(finish "$t0")
	case $res in FAIL*) kill -KILL "$pid" 2>/dev/null ;; esac
	gone "$pid" || log "criu: restored process $pid still there 20 s after it finished"
	case $res in FAIL*) echo "$res"; return ;; esac
	bytes=$(img_bytes "$SHM/b")
	rm -rf "$SHM/b"
	printf '%s\t-\t-\t%s\t%s\t-\t%s\t%s\t%s\t%s\n' "$((t3 - t0 - rmt))" "$((${res% *} - rmt))" \
		"$bytes" "$((t1 - t0))" "$((t2 - t1 - rmt))" "$((t3 - t2))" "${res#* }"
}

# drop_job REASON: a failed roam run; its job is killed (and waited for).
drop_job() {
	roam_on 1 kill -KILL "$roam_job" >/dev/null 2>&1
	timeout 20 "$ROAM" wait --control "$MWORK/h1.sock" "$roam_job" >/dev/null 2>&1
	roam_job=""
	echo "FAIL $*"
}

# one_roam SIZE RATE [--cold]: the same columns for roam migrate.
one_roam() {
	local size=$1 rate=$2 cold=${3:-} w=$MWORK/w line t0 t1 rc out res
	rm -rf "$w"
	mkdir -p "$w"
	# shellcheck disable=SC2046
	roam_job=$(roam_on 1 run --on "$(hname 1)" --detach -- "$SUBJECT" $(subject_args "$size" "$rate") \
		</dev/null 2>"$w/run.err") || { echo "FAIL roam_run:$(last_words "$w/run.err")"; roam_job=""; return; }
	line=$(wait_line "$w/rep" ready 120) || { echo "FAIL subject_not_ready"; return; }
	settle

	fresh_gap || { drop_job subject_did_not_answer_SIGUSR1; return; }
	now_us t0
	out=$(timeout "$TOOL_TIMEOUT" "$ROAM" migrate --control "$MWORK/h1.sock" "$roam_job" \
		--to "$(hname 2)" --stats $cold 2>"$w/mig.err" </dev/null)
	rc=$?
	now_us t1
	if [ $rc -ne 0 ]; then
		keep_log "$w/mig.err" "roam$cold-$size-$rate-migrate.err"
		drop_job "migrate_rc=$rc:$(last_words "$w/mig.err")"
		return
	fi
	line=$(echo "$out" | grep -m1 '^migrated ')
	res=$(finish "$t0")
	timeout 30 "$ROAM" wait --control "$MWORK/h1.sock" "$roam_job" >/dev/null 2>&1 ||
		log "roam: job $roam_job did not end 30 s after it finished"
	roam_job=""
	case $res in FAIL*) echo "$res"; return ;; esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\t-\t-\t-\t%s\n' "$((t1 - t0))" \
		"$(ms_to_us "$(field total_ms "$line")")" "$(ms_to_us "$(field downtime_ms "$line")")" \
		"${res% *}" "$(field bytes "$line" || echo -)" "$(field rounds "$line" || echo -)" "${res#* }"
}

# one_floor SIZE: SIZE bytes from h1 into fresh memory on h2.
one_floor() {
	local size=$1 w=$MWORK/w out rc
	rm -rf "$w"
	mkdir -p "$w"
	nsenter --net="$(host_ns 2)" "$FLOOR" recv "$(host_ip 2)" "$PORT" >"$w/recv.out" 2>"$w/recv.err" </dev/null &
	recv_pid=$!
	track "$recv_pid"
	wait_line "$w/recv.out" listening 10 >/dev/null || { bail "receiver:$(last_words "$w/recv.err")"; return; }
	settle
	out=$(timeout "$TOOL_TIMEOUT" nsenter --net="$(host_ns 1)" "$FLOOR" send "$(host_ip 2)" "$PORT" "$size" 2>&1)
	rc=$?
	wait "$recv_pid"; recv_pid=""
	[ $rc -eq 0 ] || { bail "floor_rc=$rc:${out// /_}"; return; }
	local us=${out#floor_us }
	printf '%s\t-\t-\t-\t%s\t-\t-\t-\t-\tok\n' "${us%% *}" "$(field bytes "$out")"
}

one_run() { # TOOL SIZE RATE
	case $1 in
	criu) one_criu "$2" "$3" ;;
	criu-ps) one_criu "$2" "$3" ps ;;
	roam) one_roam "$2" "$3" ;;
	roam-cold) one_roam "$2" "$3" --cold ;;
	floor) one_floor "$2" ;;
	esac
}

# run TOOL SIZE RATE: one_run in the background, its result in $r. A
# signal then stops the whole run at once (bash runs a trap only once the
# foreground command is over, but interrupts `wait`).
run() {
	one_run "$@" >"$MWORK/r" &
	run_pid=$!
	wait "$run_pid"
	run_pid=""
	r=$(<"$MWORK/r")
}


mig_net_up || die "could not set up the network namespaces"

# roam: is there a `roam migrate`, and does it move a small subject?
tools="criu"
[ "$CRIU_PS" = 1 ] && tools="criu criu-ps"
why=""
if [ ! -x "$ROAM" ] || [ ! -x "$ROAMD" ]; then
	why="roam migrate: not available (no $ROAM or $ROAMD; run make)"
elif "$ROAM" migrate --help 2>&1 </dev/null | grep -q "unknown command"; then
	why="roam migrate: not available ($ROAM has no migrate command yet)"
elif ! roamd_up; then
	why="roam migrate: not available (the two roamd hosts did not come up)"
else
	run roam 16M 0
	case $r in
	FAIL*) why="roam migrate: not available (a 16 MiB subject did not move: ${r#FAIL })" ;;
	*) tools="$tools roam"
		if [ "$ROAM_COLD" = 1 ]; then
			run roam-cold 16M 0
			case $r in
			FAIL*) log "roam migrate --cold does not work: ${r#FAIL }" ;;
			*) tools="$tools roam-cold" ;;
			esac
		fi ;;
	esac
fi
[ -n "$why" ] && log "$why"
log "measuring: $tools, and the floor"

roam_timeouts=0
load0=$(cut -d' ' -f1-3 /proc/loadavg)
nice_now=$(nice)
printf 'tool\tsize\trate\trun\twall_us\town_total_us\town_down_us\tstall_us\tbytes\trounds\tdump_us\tcopy_us\trestore_us\tnote\n' >"$TSV"
log "raw figures: $TSV"
for size in $SIZES; do
	n=$(runs_for "$size")
	for rate in $RATES; do
		log "$size dirtying $rate MB/s: $WARMUP warm-up round(s) + $n rounds ($tools, floor)"
		for ((i = 1 - WARMUP; i <= n; i++)); do
			order=$tools
			((i % 2 == 0)) && order=$(echo "$tools" | awk '{for (k = NF; k; k--) printf "%s ", $k}')
			for tool in $order floor; do
				case " $tools floor " in *" $tool "*) ;; *) continue ;; esac
				run "$tool" "$size" "$rate"
				case $r in FAIL*) log "$tool $size $rate MB/s round $i: $r" ;; esac
				# A roam that hangs would hold the whole run: after two
				# time-outs it is dropped, and the table says so.
				if [[ $tool == roam* && $r == *rc=124* ]]; then
					roam_timeouts=$((roam_timeouts + 1))
					if ((roam_timeouts >= 2)); then
						tools=$(echo "$tools" | tr ' ' '\n' | grep -v '^roam' | tr '\n' ' ')
						why="roam dropped after two time-outs (${TOOL_TIMEOUT}s) at $size, $rate MB/s"
						log "$why"
					fi
				fi
				((i < 1)) && continue
				case $r in
				FAIL*) printf '%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n' \
					"$tool" "$size" "$rate" "$i" "${r// /_}" ;;
				*) printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$size" "$rate" "$i" "$r" ;;
				esac >>"$TSV"
			done
		done
	done
done

/usr/bin/python3 "$here/migrate_report.py" "$TSV" \
	--criu "$("$CRIU" --version | awk '/Version/ {print $2}')" \
	--machine "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), kernel $(uname -r); load average before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg); run at nice $nice_now; $images; subject ticks every ${TICK_US} us; each run timed after a ${SETTLE_S} s settle (see bench/migrate.sh)$([ "$WARM_GIB" = 0 ] || echo " and $WARM_GIB GiB faulted in and freed just before (WARM_GIB: not the issue's measurement)")." \
	${why:+--roam-missing "$why"} >"$MD" || die "report failed"
cat "$MD"
log "table saved: $MD"
