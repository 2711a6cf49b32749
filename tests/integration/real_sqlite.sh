#!/bin/bash
# sqlite3 (unmodified) builds an in-memory database (800k rows, an index, a
# join), reading its SQL from a file, and is checkpointed and restored
# several times mid-run: every result row must be byte-identical to an
# uninterrupted run.  In-memory, with temp_store in memory: no file locks
# (which roam would rightly refuse).
# timeout: 120
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "needs sqlite3"
cat >"$T/q.sql" <<'SQL'
PRAGMA temp_store = MEMORY;
CREATE TABLE t(i INTEGER PRIMARY KEY, x INTEGER, s TEXT);
WITH RECURSIVE c(i, x) AS (SELECT 1, 1 UNION ALL
  SELECT i + 1, (x * 1103515245 + 12345) % 2147483648 FROM c WHERE i < 800000)
INSERT INTO t SELECT i, x, printf('%08x', x) FROM c;
SELECT count(*), sum(x), max(s) FROM t;
CREATE INDEX t_s ON t(s);
SELECT s, i FROM t ORDER BY s LIMIT 5;
SELECT x % 97 AS k, count(*), sum(i) FROM t GROUP BY k ORDER BY k;
SELECT count(*), sum(a.i) FROM t a JOIN t b ON a.i = b.x % 800000 + 1 WHERE a.x % 7 = 3;
SELECT group_concat(s, '') FROM (SELECT s FROM t WHERE i % 50000 = 0);
SQL
PROG_STDIN="$T/q.sql"
real_test 3 sqlite3 -batch :memory:
