#!/bin/bash
# Checkpoint/restore of the inet subject (tests/subjects/inet.c): TCP
# listeners (IPv4, IPv6, every address) and UDP sockets (bound, connected)
# with their options, listening and trading bytes again after restore.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test inet
