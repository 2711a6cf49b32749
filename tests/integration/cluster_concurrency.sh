#!/bin/bash
# 200 concurrent roam runs from all 4 hosts, placed by pod:d=2: every run
# must come back with exactly its own output (a token and a digest of it,
# on stdout and stderr) and its own exit code: nothing lost, nothing mixed.
# timeout: 180
. "$(dirname "$0")/lib/cluster.sh"

cluster_up 4 --allow-root
N=200
mkdir -p "$WORK/out"
pids=""
for k in $(seq 1 $N); do
	i=$((k % 4 + 1))
	(cd / && "$ROAM" run --control "$WORK/h$i.sock" --policy pod:d=2 -- \
		sh -c 'printf "token-%s\n" "$1"; printf "%s" "$1" | sha256sum >&2; exit $(($1 % 50))' sh "$k" \
		>"$WORK/out/$k.o" 2>"$WORK/out/$k.e"; echo $? >"$WORK/out/$k.rc") &
	pids="$pids $!"
done
# Not a bare wait: the daemons are this shell's children too.
wait $pids
bad=0
for k in $(seq 1 $N); do
	want_e=$(printf "%s" "$k" | sha256sum)
	if [ "$(cat "$WORK/out/$k.o")" != "token-$k" ] || [ "$(cat "$WORK/out/$k.e")" != "$want_e" ] ||
	   [ "$(cat "$WORK/out/$k.rc")" != $((k % 50)) ]; then
		bad=$((bad + 1))
		[ $bad -le 5 ] && echo "run $k: rc=$(cat "$WORK/out/$k.rc") out=$(head -c 200 "$WORK/out/$k.o") err=$(head -c 300 "$WORK/out/$k.e")"
	fi
done
[ $bad = 0 ] || fail "$bad of $N runs lost or mixed up"
# Every host took a share.
hosts_used=$(cat "$WORK"/h*.log | grep -o 'job [^ ]* started' | wc -l)
[ "$hosts_used" = $N ] || fail "$hosts_used jobs started for $N runs"
for i in 1 2 3 4; do
	grep -q "started" "$WORK/h$i.log" || fail "h$i ran nothing"
done
echo "PASS"
