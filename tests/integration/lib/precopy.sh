# precopy.sh: live checkpoint helpers for engine_precopy*.sh (source after lib.sh).

# live_pipe [ENV=VALUE...]: roam checkpoint $SPID --live -o - | roam restore -
# (LIVE_OPTS, an array, adds checkpoint options)
live_pipe() {
	local pf="$T/live$RUN_N.pid" old=$WAITER
	no_fail
	rm -f "$pf"
	( env "$@" timeout -k 5 "$ROAM_CMD_TIMEOUT" "$ROAM" checkpoint "$SPID" --live --rounds 3 --stats \
		${LIVE_OPTS[@]+"${LIVE_OPTS[@]}"} -o - \
		2>"$T/live.err" | "$ROAM" restore - --pid-file "$pf" 2>>"$T/restore.err" ) &
	WAITER=$!
	track "$WAITER"
	if ! wait_until 30 eval "test -s $pf || ! alive $WAITER" || ! test -s "$pf"; then
		wait "$WAITER"
		fail "live checkpoint | restore exited $? without a pid file: $(tail -n 5 "$T/live.err")"
	fi
	cat "$T/live.err"
	wait_exit "$old" 10
	[ "$RC" -gt 128 ] || fail "after the live checkpoint the process ended with status $RC, not killed"
	SPID=$(cat "$pf")
	track "$SPID"
	if ! alive "$SPID"; then
		[ -s "$RUN/stderr" ] && tail -n 5 "$RUN/stderr"
		wait "$WAITER"
		fail "restored process $SPID not running (roam restore exited $?)"
	fi
	grep -q "^checkpoint: round 1 " "$T/live.err" || fail "no pre-copy round reported"
	grep -q "^checkpoint: final pages" "$T/live.err" || fail "no final delta reported"
}

