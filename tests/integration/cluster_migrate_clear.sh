#!/bin/bash
# roamd --image-encryption no: a migration image goes in clear (every record
# still authenticated) only between two hosts that both say so; with any
# other host it is encrypted as always. bc (unmodified) moves h1 -> h2 live
# (both allow clear) and h2 -> h3 cold (h3 does not), its output
# byte-identical to an unmigrated run; each destination's log names how the
# image came (AES-256-OCB where the CPU has AES).
# timeout: 120
. "$(dirname "$0")/lib/cluster.sh"

HOST_FLAGS[1]="--image-encryption no"
HOST_FLAGS[2]="--image-encryption no"
cluster_up 3 --allow-root
grep -q "go in clear" "$WORK/h1.log" || fail "h1 does not say it allows images in clear"
grep -q "go in clear" "$WORK/h3.log" && fail "h3 says it allows images in clear"

migrate_bc

grep -q "from $(hname 1): image in clear, authenticated" "$WORK/h2.log" ||
	fail "h1 -> h2 was not in clear: $(grep 'image' "$WORK/h2.log")"
grep -q "from $(hname 2): image encrypted (" "$WORK/h3.log" ||
	fail "h2 -> h3 was not encrypted: $(grep 'image' "$WORK/h3.log")"
# With AES in hardware the cipher is AES-256-OCB (libgcrypt), never the
# slower XChaCha20-Poly1305 fallback that a failed libgcrypt set-up would
# leave without a word.
if grep -qw aes /proc/cpuinfo; then
	grep -q "from $(hname 2): image encrypted (AES-256-OCB)" "$WORK/h3.log" ||
		fail "h2 -> h3 did not use AES-256-OCB on a CPU with AES: $(grep 'image' "$WORK/h3.log")"
fi
note "$(grep -h ': image ' "$WORK/h2.log" "$WORK/h3.log" | sed 's/.*migration/migration/')"
