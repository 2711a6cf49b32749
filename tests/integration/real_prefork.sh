#!/bin/bash
# A pre-forking server in python3 (lib/prefork.py): a parent and two workers
# accepting on the one listening socket the parent made. The tree is
# checkpointed (killed) and restored twice: the socket is made once, in the
# root, and inherited by both workers, which accept on it again (their
# accept restarted); a third process never appears; every request is
# answered by one of the two restored workers.
# timeout: 120
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3) || skip "needs python3"
cp "$(dirname "$0")/lib/prefork.py" "$T/prefork.py"

ask() {
	local i said
	for i in 1 2 3 4 5 6; do
		said=$(timeout 20 $PY -c 'import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
c.sendall(sys.argv[2].encode())
print(c.recv(200).decode())' "$PORT" "hello $i" 2>&1) || fail "request $i: $said"
		[[ $said =~ ^worker\ [01]\ pid\ ([0-9]+):\ hello\ $i$ ]] || fail "request $i answered '$said'"
		case " $WORKERS " in *" ${BASH_REMATCH[1]} "*) ;; *) fail "answered by pid ${BASH_REMATCH[1]}, not a worker ($WORKERS)" ;; esac
	done
	echo "six requests answered by the workers ($WORKERS)"
}
workers() { WORKERS=$(cat /proc/"$SPID"/task/*/children | xargs); }

start_program $PY -I -S "$T/prefork.py"
wait_until 10 grep -q '^port ' "$LOG" || fail "the server never said its port: $(cat "$RUN/stderr")"
PORT=$(sed -n 's/^port //p' "$LOG")
wait_until 10 eval '[ "$(cat /proc/$SPID/task/*/children | wc -w)" = 2 ]' || fail "no two workers"
workers
ask
for round in 1 2; do
	log "round $round: checkpoint the tree (killed), restore"
	old=$WORKERS
	checkpoint
	"$ROAM" inspect "$IMG" | grep -q 'tcp listening on 127.0.0.1:'"$PORT" || fail "the image holds no listener on $PORT"
	# The workers need their pids back (the parent waits for them by pid),
	# which init's zombies hold until it reaps them: late here, later under
	# load than the restore waits (see the sixteenth note).
	for w in $old; do wait_until 10 eval "[ ! -e /proc/$w ]" || fail "worker $w never reaped"; done
	restore
	workers
	[ "$(echo $WORKERS | wc -w)" = 2 ] || fail "the restored server has workers '$WORKERS', not two"
	ask
done
kill -9 $WORKERS "$SPID"
log "ok"
