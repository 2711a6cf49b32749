#!/bin/bash
# An established TCP connection outlives a checkpoint of either end
# (--tcp-established): python3 serving a line echo (lib/tcp_echo.py) to
# another python3, which sends a line every 20 ms and checks each answer.
# The server is checkpointed (killed) and restored, checkpointed with
# --leave-running, checkpointed again and restored from a cut image first
# (which fails, keeping the lock, and says so) then from the whole one;
# then the client itself is checkpointed and restored: the client's lines and answers are exactly those of an
# uninterrupted run, its exit status 0. While an end is away its packets
# are dropped by the network lock (no reset): the peer retransmits. No lock
# is left at the end.
# timeout: 120
. "$(dirname "$0")/lib.sh"
need_root   # TCP_REPAIR and nftables take CAP_NET_ADMIN
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3) || skip "needs python3"
cp "$(dirname "$0")/lib/tcp_echo.py" "$T/echo.py"
LINES=250
{ for i in $(seq 1 $LINES); do echo "echo 1: line $i" | sed "s/1:/$i:/"; done; echo done; } >"$T/want"

start_program $PY -I -S "$T/echo.py" server
SERVER_PID=$SPID
wait_until 10 grep -q '^port ' "$LOG" || fail "the server never said its port: $(cat "$RUN/stderr")"
PORT=$(sed -n 's/^port //p' "$LOG")
$PY -I -S "$T/echo.py" client "$PORT" $LINES >"$T/client.out" 2>"$T/client.err" </dev/null &
CLIENT=$! CLIENT_PID=$!
track $CLIENT
answered() { [ "$(grep -c '^echo' "$T/client.out")" -ge "$1" ]; }

n=20
for c in K L C; do
	wait_until 20 answered $n || fail "the client got no $n answers: $(tail -n 2 "$T/client.out" "$T/client.err")"
	log "server: $c at $(grep -c '^echo' "$T/client.out") answers"
	case $c in
	K) checkpoint --tcp-established
	   "$ROAM" inspect "$IMG" | grep -q "tcp established" || fail "the image holds no connection"
	   restore ;;
	L) checkpoint --tcp-established --leave-running ;;
	C) # A cut image fails to restore: the lock stays, said so, and the
	   # whole image then restores the connection.
	   checkpoint --tcp-established
	   head -c $(($(stat -c %s "$IMG") - 100)) "$IMG" >"$T/cut.img"
	   "$ROAM" restore "$T/cut.img" >"$T/cut.out" 2>&1 </dev/null && fail "a cut image was restored"
	   cat "$T/cut.out"
	   grep -q "network lock stays" "$T/cut.out" || fail "the failed restore does not tell of the lock"
	   nft list table inet roam | grep -q "\. $PORT[ ,]" || fail "the failed restore lifted the lock"
	   sleep 0.5   # the client retransmits into the lock meanwhile
	   restore ;;
	esac
	n=$((n + 40))
done

log "the client: checkpoint (killed) and restore"
wait_until 20 answered $n || fail "the client got no $n answers: $(tail -n 2 "$T/client.out")"
SPID=$CLIENT ORIG_PID=$CLIENT WAITER=$CLIENT LOG=$T/client.out
checkpoint --tcp-established
restore
CLIENT=$SPID
wait_until 60 sh -c "! kill -0 $CLIENT" || fail "the client never finished: $(tail -n 2 "$T/client.out")"
wait "$WAITER"
rc=$?
[ $rc = 0 ] || fail "the client (restored) exited $rc: $(tail -n 3 "$T/client.out")"
cmp -s "$T/want" "$T/client.out" || fail "the client's output differs: $(diff "$T/want" "$T/client.out" | head -n 5)"
echo "the client's $LINES lines and answers are those of an uninterrupted run"
no_netlock "$PORT"
log "ok"
