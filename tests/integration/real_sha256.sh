#!/bin/bash
# sha256sum (unmodified) hashes a 1 GiB file of pseudo-random bytes (AES-CTR
# keystream from a fixed key, or a seeded Python generator: reproducible,
# incompressible) and is checkpointed and restored several times mid-file:
# the digest must be the one an uninterrupted run prints.
# timeout: 180
. "$(dirname "$0")/lib.sh"
if command -v openssl >/dev/null; then
	openssl enc -aes-128-ctr -nosalt -K 00112233445566778899aabbccddeeff \
		-iv 0102030405060708090a0b0c0d0e0f10 </dev/zero 2>/dev/null |
		head -c 1G >"$T/data.bin"
else	# slower, same purpose: a seeded generator
	python3 -c 'import random, sys
r = random.Random(20261127)
for i in range(16): sys.stdout.buffer.write(r.randbytes(1 << 26))' >"$T/data.bin"
fi
[ "$(stat -c %s "$T/data.bin")" = 1073741824 ] || fail "could not generate the data file"
real_test 3 sha256sum "$T/data.bin"
