#!/bin/bash
# Credentials are compared, never granted: a user cannot restore an image of
# root's; a user can checkpoint and restore their own process (under a new
# pid, since choosing one needs privilege).
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_root
command -v setpriv >/dev/null || skip "needs setpriv"
U=65534
chmod 755 "$T"
# An array, not a function: "func &" would make $! a root subshell.
AS_USER=(setpriv --reuid=$U --regid=$U --clear-groups --inh-caps=-all)

log "root's image, restored by uid $U"
start_subject memory
run_for 0.2
checkpoint
chmod 644 "$IMG"
"${AS_USER[@]}" "$ROAM" restore "$IMG" 2>"$T/user.err"
rc=$?
cat "$T/user.err"
[ $rc = 255 ] || fail "restore by uid $U exited $rc"
grep -q "uid 0" "$T/user.err" || fail "the message does not name the image's uid"
image_pid_runs && fail "something runs under the image's pid"

# The threads subject, not memory: memory checks /proc/self/exe, which only
# a restorer with CAP_CHECKPOINT_RESTORE may set (README, Trust).
log "uid $U checkpoints and restores its own process"
mkdir -p "$T/u" && chown $U:$U "$T/u"
RUN="$T/u" LOG="$T/u/log" STOP="$T/u/stop"
: >"$LOG" && chown $U "$LOG"
ROAM_STOP="$STOP" "${AS_USER[@]}" "$ROAM_SUBJECTS/threads" -t 2 >>"$LOG" 2>&1 </dev/null &
SPID=$! ORIG_PID=$! WAITER=$!
track "$SPID"
wait_ready
run_for 0.2
"${AS_USER[@]}" "$ROAM" checkpoint "$SPID" -o "$T/u/img" 2>"$T/uck.err" || fail "user checkpoint failed: $(cat "$T/uck.err")"
wait_exit "$WAITER" 10
"${AS_USER[@]}" "$ROAM" restore "$T/u/img" --pid-file "$T/u/pid" 2>"$T/urs.err" &
WAITER=$!
track "$WAITER"
wait_until 10 test -s "$T/u/pid" || fail "user restore wrote no pid: $(cat "$T/urs.err")"
SPID=$(cat "$T/u/pid")
track "$SPID"
[ "$(stat -c %u /proc/$SPID)" = $U ] || fail "the restored process is not uid $U"
run_for 0.3
touch "$STOP"
wait_exit "$WAITER" 20
[ "$RC" = 0 ] || fail "subject exited $RC: $(tail -3 "$LOG")"
grep -q '^PASS' "$LOG" || fail "no PASS"

# Pre-copy without privilege: the userfaultfd made inside the process can
# only be one for faults of user mode (vm.unprivileged_userfaultfd is 0 by
# default), which asynchronous write protection does not need: the pages
# are tracked by userfaultfd all the same, not by hashing.
log "uid $U checkpoints its own process live, through a pipe"
: >"$T/u/log2"
chown $U "$T/u/log2"
LOG="$T/u/log2" STOP="$T/u/stop2"
ROAM_STOP="$STOP" "${AS_USER[@]}" "$ROAM_SUBJECTS/dirty" 16 churn >>"$LOG" 2>&1 </dev/null &
SPID=$! ORIG_PID=$! WAITER=$!
track "$SPID"
wait_ready
run_for 0.2
rm -f "$T/u/pid2"
( "${AS_USER[@]}" "$ROAM" checkpoint "$SPID" --live --stats -o - 2>"$T/ulive.err" |
	"${AS_USER[@]}" "$ROAM" restore - --pid-file "$T/u/pid2" 2>"$T/ulrs.err" ) &
old=$WAITER WAITER=$!
track "$WAITER"
wait_until 20 test -s "$T/u/pid2" || fail "user live restore wrote no pid: $(cat "$T/ulive.err" "$T/ulrs.err")"
wait_exit "$old" 10
SPID=$(cat "$T/u/pid2")
track "$SPID"
grep -q "pre-copy with userfaultfd" "$T/ulive.err" || fail "not tracked by userfaultfd: $(cat "$T/ulive.err")"
run_for 0.3
touch "$STOP"
wait_exit "$WAITER" 20
[ "$RC" = 0 ] || fail "subject exited $RC: $(tail -3 "$LOG")"
grep -q '^PASS' "$LOG" || fail "no PASS"

# An established TCP connection takes privilege to carry (TCP_REPAIR and the
# network lock both need CAP_NET_ADMIN): refused, naming why, and the
# process runs on untouched, with no lock left.
log "uid $U cannot carry its TCP connections"
: >"$T/u/log3"
chown $U "$T/u/log3"
LOG="$T/u/log3" STOP="$T/u/stop3"
ROAM_STOP="$STOP" "${AS_USER[@]}" "$ROAM_SUBJECTS/tcp" >>"$LOG" 2>&1 </dev/null &
SPID=$! ORIG_PID=$! WAITER=$!
track "$SPID"
wait_ready
"${AS_USER[@]}" "$ROAM" checkpoint "$SPID" --tcp-established -o "$T/u/img3" 2>"$T/utcp.err" &&
	fail "uid $U carried its TCP connections"
cat "$T/utcp.err"
grep -Eq "nftables|CAP_NET_ADMIN" "$T/utcp.err" || fail "the refusal does not say why"
[ -e "$T/u/img3" ] && fail "an image was left behind"
no_netlock $(sed -n "s/^tcp: ports //p" "$LOG")
run_for 0.3
touch "$STOP"
wait_exit "$WAITER" 20
[ "$RC" = 0 ] || fail "subject exited $RC: $(tail -3 "$LOG")"
grep -q '^PASS' "$LOG" || fail "no PASS"
