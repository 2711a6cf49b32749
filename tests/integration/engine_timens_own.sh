#!/bin/bash
# roam itself runs in a time namespace (a roamd in a container, say), with
# the process it checkpoints and restores: the image's clocks are the
# process's (the host's plus its offsets, counted once, not once for roam
# and once for the process), so the restore needs no time namespace of its
# own and the restored process shares ours, its clocks unmoved.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_root
unshare --help 2>&1 | grep -q -- --monotonic || skip "needs util-linux unshare --time"
if [ "${IN_TIMENS:-}" != 1 ]; then
	IN_TIMENS=1 exec unshare --time --monotonic 100000 --boottime 100000 --fork bash "$0"
fi
# Before each stop (so after every restore): same time namespace as roam's.
same_timens() {
	[ "$(stat -Lc %i "/proc/$SPID/ns/time")" = "$(stat -Lc %i /proc/self/ns/time)" ] ||
		fail "process $SPID was restored in a time namespace of its own (offsets $(tr '\n' ' ' <"/proc/$SPID/timens_offsets"))"
}
BEFORE_STOP=same_timens
ckpt_test clocks
