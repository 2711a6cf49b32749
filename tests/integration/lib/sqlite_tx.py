# One long sqlite3 transaction on a database file (rollback journal,
# BEGIN EXCLUSIVE: POSIX locks on the file held from the first insert to the
# COMMIT), printing what it holds as it goes; then a second connection
# reads the committed rows. Usage: sqlite_tx.py DB ROWS
import os
import sqlite3
import sys

db, rows = sys.argv[1], int(sys.argv[2])
for leftover in (db, db + "-journal"):
    if os.path.exists(leftover):
        os.unlink(leftover)
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA journal_mode=DELETE")
con.execute("PRAGMA cache_size=200")  # small: pages spill to the file and journal mid-transaction
con.execute("CREATE TABLE t(i INTEGER PRIMARY KEY, x INTEGER, s TEXT)")
con.execute("BEGIN EXCLUSIVE")
x = 1
for i in range(1, rows + 1):
    x = (x * 1103515245 + 12345) % 2147483648
    con.execute("INSERT INTO t VALUES (?, ?, ?)", (i, x, "%08x" % x))
    if i % 10000 == 0:
        print(i, con.execute("SELECT count(*), sum(x), max(s) FROM t").fetchone(), flush=True)
con.execute("COMMIT")
other = sqlite3.connect(db)
print("committed", other.execute("SELECT count(*), sum(x), min(s) FROM t").fetchone())
