#!/bin/bash
# node (a JavaScript runtime nobody here wrote: libuv's event loop on epoll
# and eventfds, V8's worker threads) runs timers, promises and hashing
# (tests/integration/lib/node_steps.js), printing a line per step, and is
# checkpointed and restored several times mid-run: its output must be
# byte-identical to an uninterrupted run.
# timeout: 120
. "$(dirname "$0")/lib.sh"
NODE=$(command -v node || command -v nodejs) || skip "needs node (Debian's nodejs: scripts/deps.sh installs it)"
cp "$(dirname "$0")/lib/node_steps.js" "$T/steps.js"
real_test 3 "$NODE" "$T/steps.js" 1200
