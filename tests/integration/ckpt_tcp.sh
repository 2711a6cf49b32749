#!/bin/bash
# Checkpoint/restore (--tcp-established) of the tcp subject
# (tests/subjects/tcp.c): established TCP connections over 127.0.0.1 and
# ::1, with bytes queued unread at both ends of one, made again in repair
# mode beside the listener they came from; the connections carry on. Then
# the same with threads beside it, checkpointed live.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_root   # TCP_REPAIR and nftables take CAP_NET_ADMIN
CKPT_OPTS=(--tcp-established)
ckpt_test tcp
no_netlock $(sed -n "s/^tcp: ports //p" "$LOG")
# Live (pre-copy): the connections are read at the last freeze.
CKPT_OPTS=(--tcp-established --live)
ckpt_test tcp -t 2
no_netlock $(sed -n "s/^tcp: ports //p" "$LOG")
log "no network lock left"
