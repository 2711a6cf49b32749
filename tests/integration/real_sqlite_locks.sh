#!/bin/bash
# python3's sqlite3 (Debian's libsqlite3, unmodified) holds one exclusive
# transaction on a database file from start to end while it inserts, and is
# checkpointed and restored several times inside it: after each restore
# another connection must still be told the database is locked (the POSIX
# locks sqlite takes on the file are held again), and the output, the
# committed rows included, must be byte-identical to an uninterrupted run.
# timeout: 180
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3) || skip "needs python3"
$PY -c 'import sqlite3' 2>/dev/null || skip "needs python3's sqlite3 module"
cp "$(dirname "$0")/lib/sqlite_tx.py" "$T/tx.py"
locked() {
	local said
	said=$($PY -c 'import sqlite3, sys
try:
    sqlite3.connect(sys.argv[1], timeout=0).execute("SELECT count(*) FROM t").fetchone()
    print("read")
except sqlite3.OperationalError as e:
    print(e)' "$T/db" 2>&1)
	echo "another connection: $said"
	[ "$said" = "database is locked" ] || fail "another connection was not told the database is locked"
}
AFTER_CYCLE=locked
real_test 3 "$PY" -I -S "$T/tx.py" "$T/db" 400000
