#!/bin/bash
# python3 (Debian's, unmodified) running an asyncio program is checkpointed
# and restored several times mid-run: its event loop's epoll, its self-pipe
# (a socket pair, also signal.set_wakeup_fd's), two stream connections over
# a socket pair with bytes in flight, a signal handler, timers and a thread
# pool. Its output must be byte-identical to an uninterrupted run.
# timeout: 120
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3) || skip "needs python3"
cp "$(dirname "$0")/lib/asyncio_chat.py" "$T/chat.py"
real_test 3 "$PY" -I -S "$T/chat.py" 600
