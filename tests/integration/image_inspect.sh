#!/bin/bash
# roam inspect on a sample image (written by tests/unit/test_image_gen.c):
# the description shows every part of the image, --json parses, stdin works,
# and every damaged copy (truncated, flipped, foreign, newer) is refused with
# exit 255 and a message naming the record, with nothing on stdout.
# timeout: 60
set -u
B=${ROAM_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
ROAM=$B/roam
GEN=$B/tests/test_image_gen
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect FILE PATTERN...: every pattern (grep -E) occurs in FILE.
expect() {
	local f=$1; shift
	for p in "$@"; do
		grep -Eq -- "$p" "$f" || fail "'$p' missing from $(basename "$f"): $(head -c 600 "$f")"
	done
}
# refused IMAGE PATTERN...: inspect exits 255, prints nothing on stdout, and
# its error matches every pattern.
refused() {
	local img=$1; shift
	"$ROAM" inspect "$img" >"$T/out" 2>"$T/err"
	local rc=$?
	[ $rc = 255 ] || fail "$(basename "$img"): exit $rc, wanted 255"
	[ -s "$T/out" ] && fail "$(basename "$img"): output on stdout for a refused image"
	expect "$T/err" "^roam inspect: " "$@"
}

[ -x "$ROAM" ] && [ -x "$GEN" ] || { echo "FAIL: $ROAM or $GEN not built"; exit 1; }
"$GEN" "$T/lz4.img" && "$GEN" --raw "$T/raw.img" && "$GEN" --zstd "$T/zstd.img" && "$GEN" --arch aarch64 "$T/arm.img" ||
	{ echo "FAIL: the generator failed"; exit 1; }

# --- a good image, both codecs --------------------------------------------
for img in lz4 raw zstd; do
	"$ROAM" inspect "$T/$img.img" >"$T/$img.txt" 2>"$T/$img.err" || fail "inspect $img.img: exit $?: $(cat "$T/$img.err")"
	[ -s "$T/$img.err" ] && fail "inspect $img.img wrote to stderr: $(cat "$T/$img.err")"
	expect "$T/$img.txt" \
		"^header +format 2 +arch x86_64 +page 4096 +host testhost" \
		"^platform +xfeatures 0x2e7" \
		"^process +pid 4242 +pgid 4242 +sid 4000 +cwd /tmp/work" \
		"uid 1000/1000/1000/1000" \
		"NOFILE 1024/4096 STACK 8388608/unlimited" \
		"SIGUSR1 +handler 0x400120 .*mask SIGUSR2" \
		"SIGINT +SIG_IGN" \
		"^  pending +SIGUSR2" \
		"REAL value 120000us interval 250000us" \
		"^  timer 0  clock 1 value 5000000ns interval 20000000ns signal 10 to the process" \
		"^  timer 3  clock 1 value 5000000ns interval 20000000ns signal 10 to thread 4243" \
		"^mappings \(5\)" \
		"^  0000000000600000-0000000000604000 +16K rw-p anon-private +5 +4 +0 .*\[heap\]" \
		"^  00007f0000000000-00007f0000010000 +64K rw-s anon-shared +1 +1 +1 +shm#1 dontfork" \
		"^  00007ffd00000000-00007ffd00021000 +132K rw-p anon-private +1 +1 +0 +growsdown .*\[stack\]" \
		"^  0000000000400000-0000000000401000 +4K r-xp file-private +0 +0 +0 +file#0" \
		"vdso .*\[vdso\]" \
		"^files \(15\)" \
		"^  3 +reg +2 +wronly,append,cloexec +1234 +/tmp/work/data.log \(POSIX write lock 10-19\) \(OFD read lock 100-EOF\)$" \
		"^  4 +dir +3 .*/tmp/work \(flock read lock\)$" \
		"pipe#77 read end \(5 bytes queued\)" \
		"pipe#77 write end" \
		"^  7 +eventfd +6 .*eventfd count 42 \(semaphore\)" \
		"^  8 +timerfd .*timerfd clock 1 next 1.500 s every 0.020 s, 3 unread" \
		"^  9 +epoll .*epoll watching fd 7 \(0x19\), fd 10 \(0x80000019\)" \
		"^  10 +sockpair .*socket pair#88 end 0 \(stream\) \(6 bytes queued\)" \
		"^  11 +sockpair .*socket pair#88 end 1 \(stream\)$" \
		"^  12 +inotify .*inotify watching /tmp/work \(wd 2, 0x300\), /tmp/work/in \(wd 5, 0x300\)" \
		"^  13 +inet .*tcp listening on 127\.0\.0\.1:8000 \(backlog 128\); SO_REUSEADDR 1$" \
		"^  14 +inet .*tcp established 127\.0\.0\.1:8000 to 127\.0\.0\.1:51000 \(5 bytes to send, 0 to read\); SO_REUSEADDR 1$" \
		"^threads \(2\)" \
		"^  4242 +0000000000400042 00007ffd00020e00 .* 601000\+8K .* syscall 0 +sample +SIGUSR2 / -" \
		"^  4243 .* worker +- / SIGUSR1" \
		"^totals +12 records, [0-9]+ bytes \(header 1, platform 1, process 1, mm 1, files 1, pages 5, threads 1, commit 1, drop 0\)" \
		"pages: 7 carried, 6 distinct, 1 all-zero"
done
expect "$T/lz4.txt" "5 compressed"
expect "$T/raw.txt" "0 compressed"
expect "$T/zstd.txt" "5 compressed"
size=$(stat -c %s "$T/lz4.img")
expect "$T/lz4.txt" "^totals +12 records, $size bytes"

# stdin gives the same description, named (stdin).
"$ROAM" inspect - <"$T/lz4.img" >"$T/stdin.txt" || fail "inspect - : exit $?"
diff <(tail -n +2 "$T/lz4.txt") <(tail -n +2 "$T/stdin.txt") >/dev/null || fail "stdin and file descriptions differ"
expect "$T/stdin.txt" "^image +\(stdin\)"
# ...also through a pipe, which cannot seek.
cat "$T/lz4.img" | "$ROAM" inspect - >/dev/null || fail "inspect from a pipe: exit $?"

# --json
if command -v python3 >/dev/null; then
	"$ROAM" inspect --json "$T/lz4.img" >"$T/json" || fail "inspect --json: exit $?"
	python3 - "$T/json" <<'EOF' || fail "--json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["header"]["arch"] == "x86_64", d["header"]
assert d["process"]["pid"] == 4242
assert d["process"]["creds"]["groups"] == [1000, 27]
assert len(d["mm"]["vmas"]) == len(d["vma_pages"]) == 5
assert d["mm"]["vmas"][1]["kind"] == "VMA_ANON_PRIVATE"
assert d["vma_pages"][1] == {"pages": 5, "unique": 4, "zero": 0}
assert [f["fd"] for f in d["files"]["fds"]] == list(range(15))
assert d["files"]["fds"][14]["inet"]["tcp"]["snd_seq"] == 1000 and d["files"]["netlock"] == "roam"
assert d["files"]["fds"][5]["pipe_data"] == "68656c6c6f"
assert d["files"]["fds"][9]["watches"][1] == {"fd": 10, "events": 0x80000019, "data": 0x2222}
assert d["files"]["fds"][8]["timer"]["ticks"] == 3
assert [t["tid"] for t in d["threads"]["threads"]] == [4242, 4243]
assert d["totals"]["pages"] == 7 and d["totals"]["pages_unique"] == 6 and d["totals"]["pages_zero"] == 1
EOF
else
	echo "note: python3 missing, --json content not checked"
	"$ROAM" inspect --json "$T/lz4.img" | grep -q '"totals":{"records":12' || fail "--json totals"
fi

# --records: one line per record, then the description.
"$ROAM" inspect --records "$T/zstd.img" >"$T/records.txt" || fail "inspect --records: exit $?"
expect "$T/records.txt" "^record 1 +at 16 +header " \
	"^record 6 +at [0-9]+ +pages .* 600000-602000 2 pages zstd" \
	"^record 7 +at [0-9]+ +pages +8208 bytes +602000-604000 2 pages raw" \
	"^record 12 +at $(( $(stat -c %s "$T/zstd.img") - 24 )) +commit +0 bytes" \
	"^totals +12 records"
# ...and on a damaged image, the records before the damage, then the error.
cp "$T/zstd.img" "$T/flip.img"
printf 'X' | dd of="$T/flip.img" bs=1 seek=300 conv=notrunc status=none
"$ROAM" inspect --records "$T/flip.img" >"$T/out" 2>"$T/err"
[ $? = 255 ] || fail "--records on a damaged image: wanted exit 255"
expect "$T/out" "^record 2 +at 84 +platform"
grep -q "^record 3 " "$T/out" && fail "--records printed the damaged record"
expect "$T/err" "record 3 \(process, type 3\) at byte 153: record checksum mismatch"

# --- damaged copies ----------------------------------------------------------
# Truncated: inside the preamble it is not an image at all; after it, the
# error names the record where the stream ended.
for cut in 0 7 15; do
	head -c $cut "$T/lz4.img" >"$T/cut.img"
	refused "$T/cut.img" "preamble: not a roam image"
done
for cut in 16 17 40 200 $((size / 2)) $((size - 24)) $((size - 1)); do
	head -c $cut "$T/lz4.img" >"$T/cut.img"
	refused "$T/cut.img" "record [0-9]+.* at byte [0-9]+: stream ended .*image truncated"
done
# Every cut at a record boundary but the last lacks the commit record.
head -c $((size - 24)) "$T/lz4.img" >"$T/cut.img"
refused "$T/cut.img" "record 12 at byte $((size - 24)): stream ended before the commit record"

# A flipped bit in each record's payload or header is a checksum error naming it.
for off in 20 100 300 2000 6000 $((size - 30)); do
	cp "$T/lz4.img" "$T/flip.img"
	printf "$(printf '\\%03o' $(( $(od -An -tu1 -j$off -N1 "$T/lz4.img") ^ 4 )))" |
		dd of="$T/flip.img" bs=1 seek=$off conv=notrunc status=none
	cmp -s "$T/lz4.img" "$T/flip.img" && fail "byte $off not flipped"
	refused "$T/flip.img" "record [0-9]+ \([a-z]+, type [0-9]+\) at byte [0-9]+: .*(checksum|out of bounds|unknown record type)"
done

# Foreign and newer images, and things that are not images.
refused "$T/arm.img" "record 1 \(header, type 1\) at byte 16 \[format 2, arch aarch64, page size 4096\]" "another architecture"
cp "$T/lz4.img" "$T/newer.img"
printf '\x03' | dd of="$T/newer.img" bs=1 seek=8 conv=notrunc status=none
refused "$T/newer.img" "preamble: image written by a newer roam"
refused "$ROAM" "preamble: not a roam image"
refused "$T/missing.img" "missing.img: No such file or directory"

# Bytes after the commit record are reported, not silently taken.
cat "$T/lz4.img" - <<<"junk" >"$T/tail.img"
"$ROAM" inspect "$T/tail.img" >/dev/null 2>"$T/err" || fail "image with a tail: exit $?"
expect "$T/err" "5 bytes after the commit record are ignored"

# A real image, once roam checkpoint exists (the engine lands on its own
# branch): a sleeping process, left running, described with its own pid,
# its executable and one thread.
if "$ROAM" checkpoint 2>&1 | grep -q "not implemented"; then
	echo "note: roam checkpoint not implemented in this build; real-image check not run"
else
	# The subject gets /dev/null for stdio and no other inherited descriptor.
	(
		for fd in $(ls /proc/$BASHPID/fd); do
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec sleep 300
	) </dev/null >/dev/null 2>&1 &
	subject=$!
	sleep 0.2
	if "$ROAM" checkpoint "$subject" -o "$T/real.img" --leave-running 2>"$T/err"; then
		"$ROAM" inspect "$T/real.img" >"$T/real.txt" 2>"$T/err" || fail "inspect of a real image: $(cat "$T/err")"
		expect "$T/real.txt" "^process +pid $subject " "exe /usr/bin/sleep" "^threads \(1\)" \
			"^  $subject .* sleep " "\[stack\]" "^totals +[0-9]+ records"
		"$ROAM" inspect --json "$T/real.img" | grep -q "\"pid\":$subject," || fail "--json of a real image"
	else
		fail "roam checkpoint of sleep failed: $(cat "$T/err")"
	fi
	kill "$subject" 2>/dev/null
	wait "$subject" 2>/dev/null
fi

# Usage errors exit 2.
"$ROAM" inspect >/dev/null 2>&1; [ $? = 2 ] || fail "no argument: wanted exit 2"
"$ROAM" inspect --bogus "$T/lz4.img" >/dev/null 2>&1; [ $? = 2 ] || fail "unknown option: wanted exit 2"
"$ROAM" inspect --json --records "$T/lz4.img" >/dev/null 2>&1; [ $? = 2 ] || fail "--json with --records: wanted exit 2"

if [ $fails != 0 ]; then
	echo "$fails checks failed"
	exit 1
fi
echo "image_inspect: all checks passed"
