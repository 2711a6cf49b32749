#!/bin/bash
# Checkpoint/restore (--tcp-established) of the tcp subject
# (tests/subjects/tcp.c): established TCP connections over 127.0.0.1 and
# ::1, with bytes queued unread at both ends of one, made again in repair
# mode beside the listener they came from; the connections carry on.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_root   # TCP_REPAIR and nftables take CAP_NET_ADMIN
CKPT_OPTS=(--tcp-established)
ckpt_test tcp
# No network lock is left behind.
nft list tables 2>/dev/null | grep -q 'roam_lock_' && fail "a network lock stays: $(nft list tables)"
log "no network lock left"
