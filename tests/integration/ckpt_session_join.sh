#!/bin/bash
# A process living in another's session (the pid subject, started by this
# script, is no session leader) joins the session of whoever restores it,
# as CRIU's shell-job mode does: here roam restore runs under setsid(1), in
# a session of its own, and the restored process must be in that session
# (restore() in lib.sh checks it), not in this script's and not in one of
# its own.
# timeout: 60
. "$(dirname "$0")/lib.sh"
command -v setsid >/dev/null || skip "needs setsid (util-linux)"
RESTORE_WRAP=(setsid)
ckpt_test pid -t 1
[ "$(sid_of "$$")" != "$ORIG_SID" ] || [ "$ORIG_SID" != "$ORIG_PID" ] ||
	fail "the subject led its own session from the start: nothing tested"
