#!/bin/bash
# python3's http.server (Debian's, unmodified) serves a directory on
# 127.0.0.1, on a port the kernel picked. It is checkpointed (killed) and
# restored, checkpointed with --leave-running, and again killed and
# restored; after each, files fetched from it (python3's urllib, a new
# connection each) are byte-identical to the files. The image taken with
# --leave-running cannot be restored beside its original, which still
# listens on the port: the restore fails naming the address, and the
# original serves on.
# timeout: 120
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3) || skip "needs python3"
mkdir -p "$T/www"
head -c 3000000 /dev/urandom >"$T/www/big.bin"
seq 1 5000 >"$T/www/numbers.txt"

fetch_all() {
	local f
	for f in big.bin numbers.txt; do
		timeout 20 $PY -c 'import sys, urllib.request
sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=15).read())' \
			"http://127.0.0.1:$PORT/$f" >"$T/got" 2>"$T/fetch.err" ||
			fail "fetching $f: $(tail -n 1 "$T/fetch.err")"
		cmp -s "$T/got" "$T/www/$f" || fail "$f fetched differs from the file"
	done
	echo "fetched both files from port $PORT: identical"
}

start_program $PY -u -m http.server 0 --bind 127.0.0.1 --directory "$T/www"
wait_until 10 grep -q 'port [0-9]' "$LOG" || fail "the server never said its port: $(cat "$RUN/stderr")"
PORT=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$LOG" | head -n 1)
fetch_all

log "checkpoint (killed) and restore"
checkpoint
restore
fetch_all

log "checkpoint --leave-running: its image cannot run beside the original"
checkpoint --leave-running
fetch_all
out=$(timeout 20 "$ROAM" restore "$IMG" 2>&1 </dev/null)
rc=$?
echo "roam restore said: $out"
[ $rc != 0 ] || fail "the image was restored beside its original, listening on the same port"
echo "$out" | grep -q "127\.0\.0\.1:$PORT" || fail "the failure does not name the address 127.0.0.1:$PORT"
echo "$out" | grep -qi "address already in use" || fail "the failure does not say the address is in use"
alive "$SPID" || fail "the original is gone"
fetch_all

log "checkpoint (killed) and restore again"
checkpoint
restore
fetch_all
kill "$SPID"
log "ok"
