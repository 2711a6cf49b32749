#!/bin/bash
# python3 holds a datagram socket pair whose queue has an empty message and
# another after it, and a second descriptor of the receiving end (dup). A
# checkpoint reads the queue once, through the first descriptor of that end
# (a second walk would pass over the empty message, which the first walk's
# peek marked, and refuse); after the restore both messages come, in order,
# through the dup, and the two descriptors still share one end.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_root
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3) || skip "needs python3"
cat >"$T/dgram.py" <<'PYEOF'
import os, socket, sys, time
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
b.send(b"")
b.send(b"second")
dup = os.dup(a.fileno())
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
got = [os.read(dup, 64), a.recv(64)]
print("got", got, flush=True)
b.send(b"third")
print("then", os.read(dup, 64), flush=True)
PYEOF
start_program "$PY" -I -S "$T/dgram.py" "$T/go"
wait_until 10 grep -qx ready "$LOG" || fail "python3 never got ready: $(cat "$RUN/stderr")"
checkpoint
restore
touch "$T/go"
wait_exit "$WAITER" 20
[ "$RC" = 0 ] || fail "python3 exited $RC after the restore: $(tail -n 3 "$RUN/stderr")"
grep -qx "got \[b'', b'second'\]" "$LOG" || fail "the queue came back as: $(grep got "$LOG")"
grep -qx "then b'third'" "$LOG" || fail "the dup no longer reads the pair's end: $(tail -n 1 "$LOG")"
log "an empty message and the next came back through the dup, in order"
