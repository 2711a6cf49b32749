#!/bin/bash
# A tree refused by checkpoint --live, before it begins (pre-copy follows
# one process), and left running. Never half a tree: an image of the tree
# subject cut short or corrupted
# anywhere (in the root's stream, right after it, in a child's) is refused
# with an error, and no process of the tree is left running: those already
# built are killed before any runs. The whole image then restores the tree.
# timeout: 120
. "$(dirname "$0")/lib.sh"

start_subject tree
run_for 0.3
# Pre-copy follows one process: --live refuses a tree before it begins,
# and the tree runs on untouched.
timeout -k 5 30 "$ROAM" checkpoint --live --stats "$SPID" -o "$T/live.img" 2>"$T/live.err"
rc=$?
echo "checkpoint --live said: $(cat "$T/live.err")"
[ $rc = 255 ] || fail "checkpoint --live of a tree exited $rc, not 255"
grep -q "child process [0-9]*: a process tree is not checkpointed live" "$T/live.err" || fail "--live: no reason given"
[ -e "$T/live.img" ] && fail "checkpoint --live of a tree left an image"
grep -q "pre-copy with" "$T/live.err" && fail "--live began a pre-copy before refusing the tree"
run_for 0.2
checkpoint
GOOD=$IMG
size=$(stat -c %s "$GOOD")
# Where the root's stream ends: its commit record, 24 bytes, is its last.
root_commit=$("$ROAM" inspect --records "$GOOD" | awk '$3 == "at" && $5 == "commit" { print $4; exit }')
[[ $root_commit =~ ^[0-9]+$ ]] || fail "no commit record in the root's stream"
root_end=$((root_commit + 24))
[ "$root_end" -lt "$size" ] || fail "the image holds one stream only"

try_bad() { # NAME FILE
	local rc
	timeout -k 5 30 "$ROAM" restore "$2" 2>"$T/bad.err"
	rc=$?
	echo "$1: $(cat "$T/bad.err")"
	[ $rc = 124 ] && fail "$1: roam restore ran the tree"
	[ $rc = 255 ] || fail "$1: roam restore exited $rc, not 255"
	grep -Eq "truncated|preamble|record [0-9]+|checksum|magic" "$T/bad.err" || fail "$1: the message names no fault"
	[ "$(count_subjects tree)" = 0 ] || fail "$1: $(count_subjects tree) processes of the tree run"
}

for cut in $((root_end / 2)) "$root_end" $((root_end + 10)) $(((root_end + size) / 2)) $((size - 24)); do
	head -c "$cut" "$GOOD" >"$T/cut"
	try_bad "cut at $cut of $size (root's stream ends at $root_end)" "$T/cut"
done
for at in $((root_end + 100)) $((size - 40)); do
	cp "$GOOD" "$T/flip"
	python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))' "$T/flip" "$at"
	try_bad "byte $at flipped" "$T/flip"
done

log "the whole image"
restore
run_for 0.3
stop_and_check PASS
log "ok"
