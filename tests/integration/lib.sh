# lib.sh: helpers shared by the checkpoint/restore integration tests
# (ckpt_*.sh, refuse_*.sh, real_*.sh).  Source it; it sets `set -u`, makes a
# scratch directory and a trap that kills every process a test started.
#
# Environment (exported by tests/run): ROAM_BUILD (build dir holding `roam`),
# ROAM_SUBJECTS (build/subjects), ROAM_ROOT (the repository).
#
# The subject protocol (tests/subjects/subject.h): a subject prints "ready",
# verifies its state until the stop file appears, then prints PASS or FAIL.
#
# State kept by the helpers for the one subject a script is driving:
#   SPID     pid of the subject process (changes after a restore)
#   ORIG_PID pid it started with
#   WAITER   the process whose exit status is the subject's: the subject
#            itself (child of this shell) or the `roam restore` waiting for it
#   LOG      the subject's stdout+stderr (appended, so restores reopen it)
#   STOP     its stop file; RUN its scratch directory
set -u

: "${ROAM_BUILD:?ROAM_BUILD not set (run through tests/run)}"
: "${ROAM_SUBJECTS:?ROAM_SUBJECTS not set (run through tests/run)}"
ROAM="$ROAM_BUILD/roam"

# Subjects must inherit nothing but stdio: a descriptor leaked by whoever
# runs the tests (a CI runner's pipe) would make roam, rightly, refuse them.
# 255 is bash's own handle on this script (close-on-exec).
for _fd in /proc/$$/fd/*; do
	_fd=${_fd##*/}
	[ "$_fd" -gt 2 ] && [ "$_fd" != 255 ] && eval "exec $_fd>&-"
done 2>/dev/null
unset _fd
TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/roam-$TEST_NAME.XXXXXX")
KILL_PIDS=()
ROAM_CMD_TIMEOUT=${ROAM_CMD_TIMEOUT:-30}	# seconds a checkpoint may take
CYCLES=${CYCLES:-K L K} CYCLE_GAP=${CYCLE_GAP:-0.3}	# see ckpt_test
SPID="" ORIG_PID="" ORIG_SID="" WAITER="" LOG="" STOP="" RUN="" RUN_N=0 IMG_N=0

# start_time PID: when PID started (clock ticks since boot), to tell it from
# a later process that reuses its number.
start_time() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	set -- $s
	echo "${20}"
}

# Kills what the test started, and only that: a pid whose start time has
# changed belongs to someone else by now.
cleanup() {
	local e p
	for e in ${KILL_PIDS[@]+"${KILL_PIDS[@]}"}; do
		p=${e%%:*}
		[ "$(start_time "$p")" = "${e#*:}" ] || continue
		kill -CONT "$p" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $*"; }

# fail MESSAGE: the test fails; the subject's log is shown.
fail() {
	echo "FAIL: $TEST_NAME: $*"
	if [ -n "$LOG" ] && [ -f "$LOG" ]; then
		echo "-- subject log ($LOG):"
		tail -n 20 "$LOG"
	fi
	for f in "$T"/*.err; do
		[ -s "$f" ] && { echo "-- $(basename "$f"):"; tail -n 10 "$f"; }
	done
	exit 1
}

skip() { echo "$*"; exit 77; }
need_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }

[ -x "$ROAM" ] || fail "no roam binary at $ROAM"

# track PID...: kill PID when the test ends, if it is still the same process.
track() {
	local p
	for p in "$@"; do
		KILL_PIDS+=("$p:$(start_time "$p")")
	done
}

alive() { kill -0 "$1" 2>/dev/null && [ "$(proc_state "$1")" != Z ]; }

# proc_state PID: the one-letter state from /proc/PID/stat (R S D T t Z ...).
# occupy_pid PID: start a sleeper under exactly PID (as root, via
# ns_last_pid), so that a restore cannot have it back.
occupy_pid() {
	local try
	for try in $(seq 1 200); do
		echo $(($1 - 1)) >/proc/sys/kernel/ns_last_pid 2>/dev/null || return 1
		sleep 600 &
		track $!
		[ $! = "$1" ] && return 0
		kill $! 2>/dev/null
	done
	return 1
}

proc_state() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo "-"; return; }
	s=${s##*) }
	echo "${s%% *}"
}

# sid_of PID: the session id of PID.
sid_of() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo "-"; return; }
	s=${s##*) }
	set -- $s
	echo "$4"
}

proc_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null; }

# wait_until SECONDS CMD...: poll CMD every 20 ms; false on timeout.
wait_until() {
	local limit=$(($1 * 50)) i=0
	shift
	while ! "$@"; do
		i=$((i + 1))
		[ $i -ge $limit ] && return 1
		sleep 0.02
	done
	return 0
}

# wait_exit PID SECONDS: reap our child PID, set RC; fail on timeout.
wait_exit() {
	local pid=$1 limit=$2
	if ! wait_until "$limit" eval "! kill -0 $pid 2>/dev/null || [ \"\$(proc_state $pid)\" = Z ]"; then
		fail "process $pid still running after ${limit}s"
	fi
	wait "$pid" 2>/dev/null
	RC=$?
}

# start_subject NAME ARGS...: start a subject with stdout+stderr appended to
# its log, stdin /dev/null; wait until it is ready.
start_subject() {
	local name=$1
	shift
	RUN_N=$((RUN_N + 1))
	RUN="$T/run$RUN_N"
	mkdir -p "$RUN"
	LOG="$RUN/log" STOP="$RUN/stop"
	: >"$LOG"
	ROAM_STOP="$STOP" "$ROAM_SUBJECTS/$name" "$@" >>"$LOG" 2>&1 </dev/null &
	SPID=$! ORIG_PID=$! WAITER=$! SUBJECT=$name
	track "$SPID"
	wait_ready
	ORIG_SID=$(sid_of "$SPID")
}

# image_pid_runs [PROGRAM]: a process of this test's runs under the image's
# pid ($ORIG_PID): roam (a restore's child not yet the program) or PROGRAM
# (the subject's, by default); not another test's process that came to reuse
# the pid (pids wrap at pid_max, 32768 here, within minutes).
image_pid_runs() {
	local exe
	alive "$ORIG_PID" || return 1
	exe=$(readlink "/proc/$ORIG_PID/exe" 2>/dev/null) || return 1
	[ "$exe" = "$(readlink -f "$ROAM")" ] || [ "$exe" = "$(readlink -f "${1:-$ROAM_SUBJECTS/$SUBJECT}")" ]
}

# count_subjects NAME: how many processes of this test run subject NAME
# (their ROAM_STOP, set by start_subject, lies under $T, and a restored
# process keeps its environment), whatever other tests run beside it.
count_subjects() {
	local n=0 p
	for p in $(pgrep -f "^$ROAM_SUBJECTS/$1( |\$)"); do
		tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -q "^ROAM_STOP=$T/" && n=$((n + 1))
	done
	echo "$n"
}

# start_program CMD...: a program we did not write; stdout appended to $LOG,
# stderr to $RUN/stderr, stdin from $PROG_STDIN (default /dev/null).
start_program() {
	RUN_N=$((RUN_N + 1))
	RUN="$T/run$RUN_N"
	mkdir -p "$RUN"
	LOG="$RUN/log" STOP="$RUN/stop"
	: >"$LOG"
	"$@" >>"$LOG" 2>"$RUN/stderr" <"${PROG_STDIN:-/dev/null}" &
	SPID=$! ORIG_PID=$! WAITER=$!
	track "$SPID"
	ORIG_SID=$(sid_of "$SPID")
}

ready_or_gone() { grep -qx ready "$LOG" || ! alive "$SPID"; }

wait_ready() {
	wait_until 10 ready_or_gone ||
		fail "subject $SPID not ready after 10s (state $(proc_state "$SPID"))"
	grep -qx ready "$LOG" || { wait "$SPID"; fail "subject exited ($?) before it was ready"; }
}

# no_fail: the subject has not reported a failure so far, and still runs.
no_fail() {
	grep -q '^FAIL' "$LOG" && fail "subject reported a failure"
	alive "$SPID" || fail "subject $SPID is gone (state $(proc_state "$SPID"))"
	return 0
}

# run_for SECONDS: let the subject verify itself for a while.
run_for() {
	sleep "$1"
	no_fail
}

new_image() { IMG_N=$((IMG_N + 1)); IMG="$T/img$IMG_N"; }

# checkpoint [OPTIONS...]: checkpoint $SPID into a new $IMG; the command
# must succeed and write a 0600 image.  Without --leave-running the process
# must be gone afterwards (and its waiter reports a kill); with it, the
# process must still run, neither stopped nor traced.
checkpoint() {
	local leave=0 o
	for o in "$@"; do [ "$o" = --leave-running ] && leave=1; done
	new_image
	no_fail
	timeout -k 5 "$ROAM_CMD_TIMEOUT" "$ROAM" checkpoint "$SPID" -o "$IMG" "$@" 2>"$T/checkpoint.err"
	local rc=$?
	[ $rc = 124 ] && fail "roam checkpoint $SPID${*:+ $*} did not finish in ${ROAM_CMD_TIMEOUT}s"
	[ $rc = 0 ] || fail "roam checkpoint $SPID${*:+ $*} exited $rc: $(tail -n 3 "$T/checkpoint.err")"
	[ -s "$IMG" ] || fail "checkpoint wrote no image"
	[ "$(stat -c %a "$IMG")" = 600 ] || fail "image mode is $(stat -c %a "$IMG"), not 600"
	# The space reserved before the freeze is cut to what was written.
	"$ROAM" inspect "$IMG" 2>&1 >/dev/null | grep 'after the commit record' && fail "the image has bytes after its end"
	if [ $leave = 1 ]; then
		alive "$SPID" || fail "process $SPID gone after --leave-running"
		wait_until 5 eval '[ "$(proc_field $SPID TracerPid)" = 0 ]' ||
			fail "process $SPID still traced after checkpoint --leave-running"
		case $(proc_state "$SPID") in
		T | t) fail "process $SPID left stopped after checkpoint --leave-running" ;;
		esac
		no_fail
	else
		wait_exit "$WAITER" 10
		[ "$RC" -gt 128 ] || fail "after checkpoint the process ended with status $RC, not killed"
		grep -q '^PASS' "$LOG" && fail "subject finished instead of being killed"
	fi
}

# restore [OPTIONS...]: `roam restore $IMG` in the background; sets SPID
# (from the pid file) and WAITER (the roam restore process).  RESTORE_WRAP
# (array) prefixes the command, e.g. (setsid): it must exec roam.
restore() {
	local pf="$T/restore$IMG_N.pid"
	rm -f "$pf"
	${RESTORE_WRAP[@]+"${RESTORE_WRAP[@]}"} "$ROAM" restore "$IMG" --pid-file "$pf" "$@" \
		2>>"$T/restore.err" &
	WAITER=$!
	track "$WAITER"
	if ! wait_until 10 eval "test -s $pf || ! alive $WAITER" || ! test -s "$pf"; then
		alive "$WAITER" || { wait "$WAITER"; fail "roam restore exited $? without a pid file"; }
		fail "roam restore wrote no pid file in 10s"
	fi
	SPID=$(cat "$pf")
	[[ $SPID =~ ^[0-9]+$ ]] || fail "pid file holds '$SPID'"
	track "$SPID"
	alive "$SPID" || { wait "$WAITER"; fail "restored process $SPID not running (roam restore: $?)"; }
	case $(proc_state "$SPID") in
	T | t) fail "restored process $SPID is stopped" ;;
	esac
	# The contract: roam restore is the parent, and lets go of its tracee.
	local ppid
	ppid=$(proc_field "$SPID" PPid)
	[ -n "$ppid" ] || fail "restored process $SPID ended right away"
	[ "$ppid" = "$WAITER" ] || fail "restored process's parent is $ppid, not roam restore ($WAITER)"
	wait_until 5 eval '[ "$(proc_field $SPID TracerPid)" = 0 ]' ||
		fail "restored process $SPID still traced by $(proc_field "$SPID" TracerPid)"
	# roam restore holds itself and the process it builds on one CPU; each
	# thread must get back the CPUs roam restore had (ours, inherited). The
	# threads subject pins its own threads for a while (its rseq check).
	local t mine allowed
	mine=$(proc_field "$$" Cpus_allowed_list)
	[ "${SUBJECT:-}" = threads ] || for t in /proc/"$SPID"/task/*; do
		allowed=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$t/status" 2>/dev/null) || continue
		[ -z "$allowed" ] || [ "$allowed" = "$mine" ] ||
			fail "restored thread ${t##*/} may run on CPUs $allowed, not $mine"
	done
	# One that lived in another's session joins the restorer's.
	if [ -n "$ORIG_SID" ] && [ "$ORIG_SID" != "$ORIG_PID" ] &&
		[ "$(sid_of "$SPID")" != "$(sid_of "$WAITER")" ]; then
		fail "restored process in session $(sid_of "$SPID"), roam restore in $(sid_of "$WAITER")"
	fi
	return 0
}

# stop_and_check [EXPECT]: create the stop file and wait for the subject;
# EXPECT is PASS (default: exit 0, exactly one PASS and no FAIL in the log)
# or FAIL (exit 1 and a FAIL line: the sabotaged run).
stop_and_check() {
	local expect=${1:-PASS} words=""
	[ "$SPID" = "$ORIG_PID" ] && words="pid-kept"
	echo "$words" >"$STOP.tmp" && mv "$STOP.tmp" "$STOP"
	wait_exit "$WAITER" 20
	if [ "$expect" = PASS ]; then
		[ "$RC" = 0 ] || fail "subject exited with status $RC"
		[ "$(grep -c '^PASS$' "$LOG")" = 1 ] || fail "no single PASS in the log"
		grep -q '^FAIL' "$LOG" && fail "FAIL in the log"
	else
		[ "$RC" = 1 ] || fail "sabotaged subject exited with status $RC, not 1"
		grep -q '^FAIL' "$LOG" || fail "sabotaged subject printed no FAIL"
		grep -q '^PASS' "$LOG" && fail "sabotaged subject printed PASS"
	fi
	return 0
}

# ckpt_test SUBJECT [ARGS...]: the standard life of a subject test:
#  1. it passes when nobody touches it;
#  2. with -x (sabotaged) it fails, so its checks can fail;
#  3. the cycles in CYCLES (default "K L K": checkpoint (kill) + restore,
#     checkpoint --leave-running, checkpoint + restore again), CYCLE_GAP
#     seconds apart (default 0.3), then it must still pass.
# CKPT_OPTS (array) adds options to every checkpoint, RESTORE_OPTS to every
# restore, RESTORE_WRAP (array)
# prefixes it; BEFORE_STOP names a function run before each stop.
ckpt_test() {
	local name=$1
	shift
	log "$name${*:+ $*}: untouched run"
	start_subject "$name" "$@"
	run_for 0.3
	[ -n "${BEFORE_STOP:-}" ] && $BEFORE_STOP
	stop_and_check PASS

	log "$name${*:+ $*}: sabotaged run must fail"
	start_subject "$name" -x "$@"
	sleep 0.3
	[ -n "${BEFORE_STOP:-}" ] && alive "$SPID" && $BEFORE_STOP
	stop_and_check FAIL

	log "$name${*:+ $*}: cycles $CYCLES (K: checkpoint+restore, L: checkpoint --leave-running)"
	start_subject "$name" "$@"
	run_for "$CYCLE_GAP"
	local c
	for c in $CYCLES; do
		case $c in
		K) checkpoint ${CKPT_OPTS[@]+"${CKPT_OPTS[@]}"}
		   restore ${RESTORE_OPTS[@]+"${RESTORE_OPTS[@]}"} ;;
		L) checkpoint --leave-running ${CKPT_OPTS[@]+"${CKPT_OPTS[@]}"} ;;
		*) fail "bad cycle '$c' in CYCLES" ;;
		esac
		run_for "$CYCLE_GAP"
	done
	[ -n "${BEFORE_STOP:-}" ] && $BEFORE_STOP
	stop_and_check PASS
	log "$name${*:+ $*}: ok"
}

# refuse_test HOLD_MODE: start the `hold` subject holding one resource;
# `roam checkpoint` must exit 255 with a "roam checkpoint: ..." message that
# matches every extended regex in the array EXPECT (case-insensitive; @FD@,
# @PID@ and @ADDR@ stand for the fd, pid or mapping start the subject
# printed), leave no image behind, and leave the process running untouched;
# then the subject must still pass.  A function named by PREPARE runs once
# the subject is ready (e.g. to stop or trace it), one named by UNPREPARE
# after the refusal (to check and undo that).
refuse_test() {
	local rc re msg
	log "hold $*: untouched run"
	start_subject hold "$@"
	run_for 0.2
	stop_and_check PASS

	log "hold $*: checkpoint must be refused"
	start_subject hold "$@"
	[ -n "${PREPARE:-}" ] && $PREPARE
	run_for 0.1
	new_image
	timeout -k 5 "$ROAM_CMD_TIMEOUT" "$ROAM" checkpoint "$SPID" -o "$IMG" 2>"$T/checkpoint.err"
	rc=$?
	[ $rc = 124 ] && fail "roam checkpoint $SPID did not finish in ${ROAM_CMD_TIMEOUT}s"
	msg=$(cat "$T/checkpoint.err")
	echo "roam checkpoint said: $msg"
	[ $rc = 255 ] || fail "roam checkpoint exited $rc, not 255"
	grep -q '^roam checkpoint: ' "$T/checkpoint.err" || fail "no 'roam checkpoint: ' message"
	for re in "${EXPECT[@]}"; do
		re=${re//@FD@/$(sed -n 's/^hold: fd //p' "$LOG")}
		re=${re//@PID@/$(sed -n 's/^hold: pid //p' "$LOG")}
		re=${re//@ADDR@/$(sed -n 's/^hold: addr \([0-9a-f]*\)-.*/\1/p' "$LOG")}
		grep -Eiq -- "$re" "$T/checkpoint.err" || fail "message does not match /$re/"
	done
	[ -e "$IMG" ] && fail "an image file was left behind"
	alive "$SPID" || fail "process $SPID is gone after the refusal"
	[ -n "${UNPREPARE:-}" ] && $UNPREPARE
	[ "$(proc_field "$SPID" TracerPid)" = 0 ] ||
		fail "process $SPID traced by $(proc_field "$SPID" TracerPid) after the refusal"
	case $(proc_state "$SPID") in
	T | t) fail "process $SPID left stopped after the refusal" ;;
	esac
	run_for 0.2
	stop_and_check PASS
	log "refused: ok"
}

# cpu_ticks PID: user+system CPU time of PID and its descendants in clock
# ticks (-1 if gone).
cpu_ticks() {
	local s p total=0
	local -a todo=("$1")
	[ -e "/proc/$1/stat" ] || { echo -1; return; }
	# The process and its descendants (a pipeline's bash does no work).
	while [ ${#todo[@]} -gt 0 ]; do
		p=${todo[0]}
		todo=("${todo[@]:1}" $(cat /proc/"$p"/task/*/children 2>/dev/null))
		s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		s=${s##*) }
		total=$((total + $(set -- $s; echo $((${12} + ${13})))))
	done
	echo "$total"
}

# no_netlock PORT...: no connection of these ports is still locked by roam
# checkpoint --tcp-established (an element of roam's nftables sets).
no_netlock() {
	local p sets
	[ $# -gt 0 ] || fail "no_netlock: no port given"
	sets=$(nft list table inet roam 2>/dev/null) || return 0
	for p in "$@"; do
		echo "$sets" | grep -Eq "\. $p( |,|\$)" && fail "a connection of port $p stays locked: $sets"
	done
	return 0
}

# real_test CYCLES CMD...: run a program nobody here wrote, first
# uninterrupted (the reference), then again with CYCLES checkpoints spread
# over its CPU time: each kills it and restores it, except the second, which
# uses --leave-running; after each, the function AFTER_CYCLE names runs,
# if set.  Exit status, stdout and stderr must be identical.  A program
# that tells its progress can name a function PROGRESS, true once it has
# gone far enough for checkpoint N (its argument), instead of CPU time.
# Progress is measured in CPU time consumed (not wall time), so the
# checkpoints land mid-run however fast the machine is. They all land in the
# first 3/8 of the reference's CPU time (for 3): the same work takes less CPU
# time when the other CPU is idle than beside the other build's tests, and
# a python3 run once needed 40% less than its reference and ended before the
# third checkpoint (with a step of 1/5).
real_test() {
	local cycles=$1 i base step hz secs
	shift
	hz=$(getconf CLK_TCK)
	log "reference run: $*"
	local TIMEFORMAT='%3U %3S'
	{ time "$@" <"${PROG_STDIN:-/dev/null}" >"$T/ref.out" 2>"$T/ref.err"; } 2>"$T/ref.time"
	local ref_rc=$?
	[ $ref_rc = 0 ] || fail "reference run exited $ref_rc: $(tail -n 3 "$T/ref.err")"
	[ -s "$T/ref.out" ] || fail "reference run printed nothing"
	secs=$(awk '{ print int(($1 + $2) * 1000) }' "$T/ref.time")
	step=$((secs * hz / 1000 / (2 * cycles + 2)))
	echo "reference: $(cat "$T/ref.time") s CPU, $(wc -c <"$T/ref.out") bytes; a checkpoint every $step ticks"
	[ "$step" -ge 5 ] || fail "reference run too short ($secs ms CPU) to checkpoint $cycles times mid-run"

	log "checkpointed run"
	start_program "$@"
	for ((i = 1; i <= cycles; i++)); do
		base=$(cpu_ticks "$SPID")
		if [ -n "${PROGRESS:-}" ]; then
			wait_until 120 eval '$PROGRESS $i || ! alive $SPID' || fail "no progress before checkpoint $i"
		else
			wait_until 120 eval '[ "$(cpu_ticks $SPID)" -ge $((base + step)) ] || ! alive $SPID' ||
				fail "no progress before checkpoint $i"
		fi
		alive "$SPID" || fail "the program finished before checkpoint $i"
		if [ $i = 2 ]; then
			checkpoint --leave-running
		else
			checkpoint
			restore
		fi
		echo "checkpoint $i done (process now $SPID)"
		[ -z "${AFTER_CYCLE:-}" ] || $AFTER_CYCLE
	done
	wait_exit "$WAITER" 120
	[ "$RC" = "$ref_rc" ] || fail "exit status $RC after the restores, $ref_rc uninterrupted"
	cmp "$T/ref.out" "$LOG" || fail "stdout differs from the uninterrupted run"
	cmp "$T/ref.err" "$RUN/stderr" || fail "stderr differs from the uninterrupted run"
	log "output identical after $cycles checkpoints"
}
