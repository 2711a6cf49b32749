#!/bin/bash
# roam migrate refuses, before freezing anything, what cannot move, and says
# why: a destination lacking a CPU feature the source offers, another vDSO
# (both advertised through roamd's test-only overrides, since the test hosts
# share one CPU and kernel), a file open for writing that is not shared
# storage, a file lock on shared storage, a zombie child, a resource
# the engine refuses (a TCP connection), POSIX timers where the
# destination's kernel cannot give their ids back (h3 acts as one, through
# another test-only override), an unknown host, a job
# that runs elsewhere, a roamd whose image channel is of another version
# (h4 acts as a roamd of version 2, which neither says nor checks it).
# --check lists every blocker and freezes nothing. After each refusal the
# job runs on where it was, untouched.
# timeout: 120
. "$(dirname "$0")/lib/cluster.sh"

HOST_FLAGS[2]="--test-hide-cpu avx2,sse4_2"
HOST_FLAGS[3]="--test-vdso-id another-kernel --test-no-timer-ids yes"
HOST_FLAGS[4]="--test-bulk-version 2"
SCRATCH=$WORK/scratch SHARED=$WORK/shared
mkdir -p "$SCRATCH" "$SHARED"
cluster_up 4 --allow-root --shared "$SHARED"
H1=$(hname 1) H2=$(hname 2) H3=$(hname 3) H4=$(hname 4)

# A python3 job on h1 (or host I) that waits for a line of input.
start_job() { # CODE [I] -> sets ID, RUNNER, OUT
	local i=${2:-1}
	OUT=$WORK/out.$RANDOM
	mkfifo "$OUT.in"
	exec 7<>"$OUT.in"
	(cd / && exec "$ROAM" run --control "$WORK/h$i.sock" --on "$(hname "$i")" -- python3 -c "$1") \
		<"$OUT.in" >"$OUT" 2>&1 7>&- &
	RUNNER=$!
	wait_until 10 grep -q ready "$OUT" || fail "job never ready: $(cat "$OUT")"
	ID=$(last_job "$i")
}
end_job() { # it must still answer, then end with status 0
	echo go >&7
	exec 7>&-
	wait "$RUNNER" || fail "the job failed after a refusal: $(cat "$OUT")"
	grep -q "^done" "$OUT" || fail "the job did not finish: $(cat "$OUT")"
}
refused() { # EXPECT ARGS...: roam migrate ARGS (typed on h1, or on host FROM) fails, naming EXPECT
	local expect=$1; shift
	if run_on "${FROM:-1}" migrate "$@" >"$WORK/r" 2>&1; then
		fail "migrate $* was accepted; expected a refusal naming '$expect'"
	fi
	grep -q -- "$expect" "$WORK/r" || fail "migrate $*: refusal does not name '$expect': $(cat "$WORK/r")"
	note "refused: $(cat "$WORK/r")"
}

PLAIN='import sys
print("ready", flush=True)
sys.stdin.readline()
print("done", flush=True)'
start_job "$PLAIN"
refused "sse4_2 avx2" "$ID" --to "$H2"
refused "sse4_2 avx2" "$ID" --to "$H2" --check
refused "vDSO" "$ID" --to "$H3"
grep -q "POSIX timer" "$WORK/r" && fail "a job without POSIX timers was refused for them: $(cat "$WORK/r")"
refused "unknown host" "$ID" --to nosuchhost
refused "already runs on" "$ID" --to "$H1"
# Typed on a host where it does not run: relayed through its home, the
# refusal comes back all the same; an unknown job is named as such.
run_on 2 migrate "$ID" --to "$H3" >"$WORK/r" 2>&1 && fail "a relayed migrate to h3 was accepted"
grep -q "vDSO" "$WORK/r" || fail "relayed refusal: $(cat "$WORK/r")"
run_on 2 migrate "$H1.999" --to "$H3" >"$WORK/r" 2>&1 && fail "migrate of an unknown job succeeded"
grep -q "no such running job" "$WORK/r" || fail "unknown job: $(cat "$WORK/r")"
# What is fine checks fine, and nothing moved.
HOST_OK=$(run_on 1 migrate "$ID" --to "$H2" --check 2>&1 || true)
[ "$(run_on 1 ps --json | grep -c "\"host\":\"$H1\"")" -ge 1 ] || fail "the job left h1 after refusals"
end_job

# A file open for writing, not on shared storage.
start_job "import sys
f = open('$SCRATCH/log', 'w')
print('ready', flush=True)
sys.stdin.readline()
f.write('x'); f.close()
print('done', flush=True)"
refused "$SCRATCH/log is open for writing" "$ID" --to "$H2" --check
end_job

# A file lock on shared storage: the source holds it until the commit, the
# destination would have to take it before; both hosts see the same file.
start_job "import fcntl, sys
f = open('$SHARED/locked', 'a')
fcntl.lockf(f, fcntl.LOCK_EX)
print('ready', flush=True)
sys.stdin.readline()
print('done', flush=True)"
refused "$SHARED/locked is locked by the process and is shared storage" "$ID" --to "$H3" --check
end_job

# A child that ended, never reaped (a zombie): a process tree moves whole,
# and a zombie cannot be made again.
start_job "import os, sys
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
print('ready', flush=True)
sys.stdin.readline()
os.waitpid(pid, 0)
print('done', flush=True)"
refused "child process .* has ended and is not reaped yet (a zombie)" "$ID" --to "$H3" --check
end_job

# A resource the engine cannot move: a TCP connection (to itself). Every
# blocker listed.
start_job "import sys, socket
s = socket.create_server(('127.0.0.1', 0))
c = socket.create_connection(s.getsockname())
a = s.accept()
f = open('$SCRATCH/log2', 'w')
print('ready', flush=True)
sys.stdin.readline()
print('done', flush=True)"
refused "TCP connection on fd" "$ID" --to "$H3" --check
end_job

# POSIX timers (two, made through the C library): h3's kernel, as it says,
# cannot give them their ids back. h2 takes them (on its CPU's refusal only).
start_job "import ctypes, sys
libc = ctypes.CDLL(None)
timers = [ctypes.c_void_p() for _ in range(2)]
for t in timers:
    assert libc.timer_create(1, None, ctypes.byref(t)) == 0
print('ready', flush=True)
sys.stdin.readline()
print('done', flush=True)"
refused "the process holds 2 POSIX timers, whose ids this kernel cannot give back" "$ID" --to "$H3" --check
grep -q "vDSO" "$WORK/r" || fail "--check to h3 leaves out its vDSO: $(cat "$WORK/r")"
refused "sse4_2 avx2" "$ID" --to "$H2" --check
grep -q "POSIX timer" "$WORK/r" && fail "h2 refused the POSIX timers its kernel can restore: $(cat "$WORK/r")"
end_job

# Another version of the image channel, refused before anything is frozen:
# by the source, whose destination (h4) does not say its version...
start_job "$PLAIN"
refused "the image channel of roamd on $H4 is version 2, on $H1 3" "$ID" --to "$H4" --check
refused "the image channel of roamd on $H4 is version 2, on $H1 3" "$ID" --to "$H4"
[ "$(job_host 1 "$ID")" = "$H1" ] || fail "the job left h1"
end_job
# ...and by the destination, whose source (h4) does not say it; --check
# lists it beside the destination's other blockers.
start_job "$PLAIN" 4
FROM=4 refused "the image channel of roamd on $H4 is version 2, on $H1 3" "$ID" --to "$H1"
FROM=4 refused "the image channel of roamd on $H4 is version 2, on $H2 3" "$ID" --to "$H2" --check
grep -q "sse4_2 avx2" "$WORK/r" || fail "--check from h4 to h2 leaves out h2's CPU: $(cat "$WORK/r")"
[ "$(job_host 4 "$ID")" = "$H4" ] || fail "the job left h4"
end_job
echo "PASS"
