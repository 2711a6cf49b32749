#!/bin/bash
# The engine alone (scripts/demo.sh is the main job): builds roam, shows the engine at work on a program
# nobody here wrote. python3 computes digits of pi, printing as it goes; roam
# checkpoints it mid-run (the process is killed once its image is safe),
# restores it from the image, and the restored process finishes with output
# byte-identical to an uninterrupted run.
set -eu
cd "$(dirname "$0")/.."
. scripts/demo-prelude.sh
ROAM=$PWD/build/roam
W=$(mktemp -d /tmp/roam-demo.XXXXXX)
trap 'kill -9 $PID 2>/dev/null; rm -rf "$W"' EXIT
PID=""
PY=/usr/bin/python3

PI="$PWD/scripts/pi.py 30000 2000 0"

echo "== 1. the reference: python3 runs uninterrupted"
start=$(date +%s.%N)
"$PY" -I -S $PI >"$W/ref.out" 2>"$W/ref.err"
echo "   $(wc -l <"$W/ref.out") lines in $(echo "$(date +%s.%N) - $start" | bc | cut -c1-5) s; last: $(tail -n1 "$W/ref.out")"

echo "== 2. the same run, checkpointed mid-run"
"$PY" -I -S $PI >"$W/run.out" 2>"$W/run.err" </dev/null &
PID=$!
sleep 1.5
echo "   after 1.5 s it has printed $(wc -l <"$W/run.out") lines; checkpointing pid $PID"
"$ROAM" checkpoint "$PID" -o "$W/pi.img" --stats
wait "$PID" 2>/dev/null || true
PID=""
echo "   the process is gone; its image: $(du -h "$W/pi.img" | cut -f1)"
"$ROAM" inspect "$W/pi.img" >"$W/inspect.txt"
{ grep -m1 '^process' "$W/inspect.txt"; grep -A2 '^threads' "$W/inspect.txt"; grep -A4 '^mappings' "$W/inspect.txt"; } | sed 's/^/   | /'

echo "== 3. restored from the image, it runs to the end"
set +e
"$ROAM" restore "$W/pi.img" --stats
rc=$?
set -e
echo "   roam restore exited $rc (the program's own status)"

echo "== 4. the result"
if cmp -s "$W/ref.out" "$W/run.out" && cmp -s "$W/ref.err" "$W/run.err" && [ $rc = 0 ]; then
	echo "   output identical to the uninterrupted run: $(tail -n1 "$W/run.out"); $(cat "$W/run.err")"
else
	echo "   OUTPUT DIFFERS"; diff "$W/ref.out" "$W/run.out" | head; exit 1
fi
