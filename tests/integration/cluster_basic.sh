#!/bin/bash
# roam run as the user sees it, across 3 hosts: where it ran (host name and
# PID namespace are the other host's), stdout and stderr kept apart, stdin
# forwarded, exit codes (job's, 128+signal, 127 cannot-exec, 255 refusals),
# signals forwarded, --detach/attach/wait, ps, hosts, kill, --json, and real
# programs (python3, bc, sha256sum).
# timeout: 120
. "$(dirname "$0")/lib/cluster.sh"

HOST_FLAGS[3]="--cgroup v1"
cluster_up 3 --allow-root
H2=$(hname 2) H3=$(hname 3)

# Jobs live in a cgroup of their own: cgroup2 on h2, the v1 hierarchies on h3.
if [ $AS_ROOT = 1 ]; then
	cg=$(run_on 1 run --on "$H2" -- cat /proc/self/cgroup)
	echo "$cg" | grep -q "^0::/roam\.$H2/$(hname 1)\.[0-9]*$" || fail "h2 job cgroup (v2): $cg"
	cg=$(run_on 1 run --on "$H3" -- cat /proc/self/cgroup)
	echo "$cg" | grep -q ":pids:/roam\.$H3/$(hname 1)\.[0-9]*$" || fail "h3 job cgroup (v1 pids): $cg"
	echo "$cg" | grep -q ":freezer:/roam\.$H3/" || fail "h3 job cgroup (v1 freezer): $cg"
	# Nothing escapes: a double-forked daemon of a job dies with it.
	# (Lengths of this test's own, so that no other test's sleep counts.)
	run_on 1 run --on "$H3" -- sh -c "(setsid sleep 77.$$ &) ; exit 0" || fail "escape run"
	run_on 1 run --on "$H2" -- sh -c "(setsid sleep 78.$$ &) ; exit 0" || fail "escape run 2"
	sleep 0.3
	pgrep -f "^sleep 7[78]\.$$\$" && fail "a double-forked process escaped its job"
fi

# Where it runs: h2, and (as root) h2's UTS and PID namespaces.
out=$(run_on 1 run --on "$H2" -- sh -c 'echo $ROAM_HOST $ROAM_JOB_ID; hostname; echo $$') || fail "run --on h2"
[[ "$(echo "$out" | head -n1)" == "$H2 $(hname 1)."* ]] || fail "ROAM_HOST/ROAM_JOB_ID: '$out'"
if [ $AS_ROOT = 1 ]; then
	[ "$(echo "$out" | sed -n 2p)" = "$H2" ] || fail "hostname on h2 was '$out'"
	[ "$(echo "$out" | tail -n1)" -lt 100 ] || fail "pid '$out' not from h2's PID namespace"
fi

# stdout and stderr stay apart.
run_on 1 run --on "$H2" -- sh -c 'echo to-out; echo to-err >&2' >"$WORK/o" 2>"$WORK/e" || fail "stdio run"
[ "$(cat "$WORK/o")" = "to-out" ] || fail "stdout: $(cat "$WORK/o")"
grep -qx "to-err" "$WORK/e" || fail "stderr: $(cat "$WORK/e")"

# stdin is forwarded, in order, whole (1 MiB through sha256sum on h3).
head -c 1048576 /dev/urandom >"$WORK/blob"
want=$(sha256sum <"$WORK/blob" | cut -d' ' -f1)
got=$(run_on 1 run --on "$(hname 3)" -- sha256sum <"$WORK/blob" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "sha256 through stdin: $got != $want"
# stdin that arrives while the policy is still probing is kept, not lost.
got=$(head -c 65536 "$WORK/blob" | run_on 1 run --policy probe:d=3 -- sha256sum | cut -d" " -f1)
[ "$got" = "$(head -c 65536 "$WORK/blob" | sha256sum | cut -d" " -f1)" ] || fail "stdin during probing: $got"
# and output streams back whole (2 MiB).
n=$(run_on 2 run --on "$(hname 3)" -- head -c 2097152 /dev/zero | wc -c)
[ "$n" = 2097152 ] || fail "2 MiB of output came back as $n bytes"

# A slow reader holds the job back (flow control from the home to the exec
# host): all 128 MiB arrive, and the home roamd never queues most of them.
n=$(run_on 1 run --on "$H3" -- head -c 134217728 /dev/zero | (sleep 2; wc -c))
[ "$n" = 134217728 ] || fail "128 MiB to a slow reader came back as $n bytes"
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$(roamd_pid 1)/status")
note "home roamd peak RSS after 128 MiB to a slow reader: $((hwm / 1024)) MiB"
# (ASan keeps freed memory in quarantine: its RSS says nothing about queues.)
grep -q __asan_init "$ROAMD" || [ "$hwm" -lt 98304 ] ||
	fail "home roamd peaked at $((hwm / 1024)) MiB: output was queued, not held back"

# Real programs nobody here wrote.
[ "$(echo '2^64' | run_on 1 run --on "$H2" -- bc)" = "18446744073709551616" ] || fail "bc"
[ "$(run_on 1 run --on "$H2" -- python3 -c 'import sys; print(sum(range(1000)))')" = 499500 ] || fail "python3"

# Exit codes.
run_on 1 run --on "$H2" -- sh -c 'exit 3'; rc=$?
[ $rc = 3 ] || fail "exit 3 gave $rc"
run_on 1 run --on "$H2" -- sh -c 'kill -KILL $$'; rc=$?
[ $rc = 137 ] || fail "SIGKILL gave $rc"
run_on 1 run --on "$H2" -- /no/such/program 2>"$WORK/e"; rc=$?
[ $rc = 127 ] || fail "cannot-exec gave $rc"
grep -q "$H2" "$WORK/e" && grep -q "No such file" "$WORK/e" || fail "cannot-exec message: $(cat "$WORK/e")"
(cd /tmp && mkdir -p only-here-$$ && cd only-here-$$ && "$ROAM" run --control "$WORK/h1.sock" --on "$H2" -- true) 2>"$WORK/e"; rc=$?
rmdir /tmp/only-here-$$ 2>/dev/null
[ $AS_ROOT = 0 ] || { [ $rc = 255 ] && grep -q "working directory" "$WORK/e"; } || fail "missing cwd gave $rc: $(cat "$WORK/e")"
run_on 1 run --on nosuchhost -- true 2>"$WORK/e"; rc=$?
[ $rc = 255 ] && grep -q "unknown host" "$WORK/e" || fail "unknown host gave $rc: $(cat "$WORK/e")"

# Environment, umask and rlimits travel with the job.
out=$(cd / && umask 027 && ulimit -n 123 && ROAM_TEST_VAR=carried "$ROAM" run --control "$WORK/h1.sock" --on "$H2" -- sh -c 'echo $ROAM_TEST_VAR $(umask) $(ulimit -n)')
[ "$out" = "carried 0027 123" ] || fail "env/umask/rlimit: '$out'"

# Signals: SIGINT to roam run reaches the job (and every process of it).
bg_run_on 1 run --on "$H2" -- sh -c 'sleep 30 & wait'
rp=$BG_PID
sleep 1
kill -INT $rp
wait $rp; rc=$?
[ $rc = 130 ] || fail "SIGINT forwarded gave $rc"

# --detach, ps, attach, wait, kill.
id=$(run_on 1 run --detach --on "$H2" -- sh -c 'echo early; sleep 1; echo late; exit 7') || fail "detach"
[[ $id == $(hname 1).* ]] || fail "id '$id'"
run_on 1 ps | grep -q "^$id .*running" || fail "ps does not list $id: $(run_on 1 ps)"
run_on 3 ps --json | grep -q "\"id\":\"$id\"" || fail "ps --json on h3 does not list $id"
out=$(run_on 1 attach "$id"); rc=$?
[ $rc = 7 ] || fail "attach exit $rc"
[ "$(echo $out)" = "early late" ] || fail "attach output '$out'"
run_on 1 wait "$id"; rc=$?
[ $rc = 7 ] || fail "wait gave $rc"

# A detached job writing more than is kept is held back, not truncated:
# attach later gets every byte (here and on another host).
for h in "$(hname 1)" "$H2"; do
	id=$(run_on 1 run --detach --on "$h" -- head -c 8388608 /dev/zero) || fail "detach big"
	sleep 1.5
	run_on 1 ps | grep -q "^$id .*running" || fail "$id on $h was not held back: $(run_on 1 ps)"
	n=$(run_on 1 attach "$id" | wc -c)
	[ "$n" = 8388608 ] || fail "attach to $id on $h got $n bytes"
done

id=$(run_on 1 run --detach --on "$(hname 3)" -- sleep 30) || fail "detach 2"
run_on 2 kill -KILL "$id" || fail "kill from another host"
run_on 1 wait "$id"; rc=$?
[ $rc = 137 ] || fail "killed job's wait gave $rc"

# hosts lists all three with their loads; --json parses.
[ "$(run_on 2 hosts | tail -n +2 | wc -l)" = 3 ] || fail "hosts: $(run_on 2 hosts)"
run_on 2 hosts --json | python3 -c 'import json,sys; h=json.load(sys.stdin); assert len(h)==3, h' || fail "hosts --json"
run_on 1 ps --json | python3 -c 'import json,sys; json.load(sys.stdin)' || fail "ps --json"
echo "PASS"
