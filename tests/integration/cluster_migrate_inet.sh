#!/bin/bash
# roam migrate of processes that listen: the inet subject (TCP listeners on
# IPv4, IPv6 and every address, UDP sockets bound and connected) moves
# h1 -> h2 -> h3 (live, then live) and passes there, listeners and all;
# python3's http.server, listening on every address, moves live and cold
# and serves the same files on each host, reached there by its address on
# the test's bridge. Refused before anything is frozen, naming the address
# and the host: a port another program holds on the destination, an
# address of the source host's own. After each refusal the server runs on
# where it was, and serves. Where the port is taken after the check (h3
# skips it: test fault skip-socket-check), the restore there fails naming
# the address, and the server runs on at the source, and only there.
# timeout: 240
. "$(dirname "$0")/lib/cluster.sh"
# Without root the hosts share one network: a listener's port is always
# taken at the destination (by the process itself), as the check would say.
[ $AS_ROOT = 1 ] || { echo "needs root (a network namespace per host)"; exit 77; }

SHARED=$WORK/shared
mkdir -p "$SHARED/www"
chmod -R 777 "$SHARED"
head -c 2000000 /dev/urandom >"$SHARED/www/big.bin"
seq 1 3000 >"$SHARED/www/numbers.txt"
HOST_FLAGS[3]="--test-fault skip-socket-check"
cluster_up 3 --allow-root --shared "$SHARED"
H1=$(hname 1) H2=$(hname 2) H3=$(hname 3)

migrate_subject inet
migrate_subject inet -t 2

# fetch I ADDR PORT: from host I's network, both files through the server
# at ADDR:PORT, byte-identical to the files.
fetch() {
	local f
	for f in big.bin numbers.txt; do
		in_host_net "$1" timeout 20 python3 -c 'import sys, urllib.request
sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=15).read())' \
			"http://$2:$3/$f" >"$WORK/got" 2>"$WORK/fetch.err" ||
			fail "from h$1, fetching $f from $2:$3: $(tail -n 1 "$WORK/fetch.err")"
		cmp -s "$WORK/got" "$SHARED/www/$f" || fail "from h$1, $f from $2:$3 differs from the file"
	done
	note "from h$1: both files from $2:$3, identical"
}

# serve BIND PORT: python3's http.server as a job on h1; sets ID, RUNNER, OUT.
serve() {
	OUT=$WORK/http.$2
	bg_run_on 1 run --on "$H1" -- python3 -u -m http.server "$2" --bind "$1" --directory "$SHARED/www" \
		>"$OUT" 2>&1
	RUNNER=$BG_PID
	wait_until 10 grep -q "Serving HTTP" "$OUT" || fail "http.server never served: $(cat "$OUT")"
	ID=$(last_job 1)
}
stop_server() { # the job ID ends (killed), and roam run with it
	run_on 1 kill "$ID" >/dev/null 2>&1 || fail "roam kill $ID"
	wait_until 20 sh -c "! kill -0 $RUNNER" || fail "roam run of $ID did not end"
}
refused() { # EXPECT ARGS...: roam migrate ARGS fails, naming EXPECT
	local expect=$1; shift
	if run_on 1 migrate "$@" >"$WORK/r" 2>&1; then
		fail "migrate $* was accepted; expected a refusal naming '$expect'"
	fi
	grep -q -- "$expect" "$WORK/r" || fail "migrate $*: refusal does not name '$expect': $(cat "$WORK/r")"
	note "refused: $(cat "$WORK/r")"
}

serve 0.0.0.0 8123
fetch 1 127.0.0.1 8123
migrate_to "$ID" "$H2" 1
fetch 2 127.0.0.1 8123
fetch 1 10.77.0.2 8123
migrate_to "$ID" "$H3" 2 --cold
fetch 3 127.0.0.1 8123
fetch 2 10.77.0.3 8123
stop_server

# A port another program holds on h2 (a listener of python3's there).
in_host_net 2 python3 -c 'import socket, time
s = socket.create_server(("0.0.0.0", 8124))
time.sleep(600)' &
holder=$!
serve 0.0.0.0 8124
wait_until 10 in_host_net 2 python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8124), timeout=1)' ||
	fail "the program on h2 never listened"
refused "TCP 0.0.0.0:8124: Address already in use on $H2" "$ID" --to "$H2"
refused "TCP 0.0.0.0:8124: Address already in use on $H2" "$ID" --to "$H2" --check
[ "$(job_host 1 "$ID")" = "$H1" ] || fail "after the refusal the server runs on '$(job_host 1 "$ID")', not h1"
fetch 1 127.0.0.1 8124
in_host_net 3 python3 -c 'import socket, time
s = socket.create_server(("0.0.0.0", 8124))
time.sleep(600)' &
holder3=$!
wait_until 10 in_host_net 3 python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8124), timeout=1)' ||
	fail "the program on h3 never listened"
refused "binding 0.0.0.0:8124 for fd 3" "$ID" --to "$H3"
[ "$(job_host 1 "$ID")" = "$H1" ] || fail "after the failed restore the server runs on '$(job_host 1 "$ID")', not h1"
[ -z "$(run_on 3 ps --json | python3 -c 'import json, sys
print(*[j["id"] for j in json.load(sys.stdin) if j["id"] == sys.argv[1] and j["host"] == sys.argv[2]])' "$ID" "$H3")" ] ||
	fail "h3 runs a copy of $ID"
fetch 1 127.0.0.1 8124
kill "$holder" "$holder3"
stop_server

# An address of h1's own, which h2 does not have.
serve 10.77.0.1 8125
refused "TCP 10.77.0.1:8125: Cannot assign requested address on $H2" "$ID" --to "$H2"
[ "$(job_host 1 "$ID")" = "$H1" ] || fail "after the refusal the server runs on '$(job_host 1 "$ID")', not h1"
fetch 2 10.77.0.1 8125
stop_server
note "ok"
