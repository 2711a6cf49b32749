/*
 * proc_parse_lock (src/sys/proc.c): the "lock:" lines of /proc/PID/fdinfo/N,
 * as this kernel prints them (fs/locks.c, lock_get_status), into what
 * checkpoint carries or refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "sys/proc.h"

static void test_locks_carried(void **state)
{
	struct proc_lock l;

	(void)state;
	assert_int_equal(proc_parse_lock("\t1: FLOCK  ADVISORY  WRITE 11445 fe:00:10953710 0 EOF\n", &l), 0);
	assert_int_equal(l.kind, PROC_LOCK_FLOCK);
	assert_true(l.write);
	assert_true(l.start == 0 && l.end == UINT64_MAX);

	assert_int_equal(proc_parse_lock("\t1: POSIX  ADVISORY  WRITE 11445 fe:00:10953711 5 14\n", &l), 0);
	assert_int_equal(l.kind, PROC_LOCK_POSIX);
	assert_true(l.write && l.start == 5 && l.end == 14);

	assert_int_equal(proc_parse_lock("\t2: POSIX  ADVISORY  READ 11445 fe:00:10953711 50 EOF\n", &l), 0);
	assert_int_equal(l.kind, PROC_LOCK_POSIX);
	assert_true(!l.write && l.start == 50 && l.end == UINT64_MAX);

	assert_int_equal(proc_parse_lock("\t1: OFDLCK ADVISORY  READ -1 00:2a:77 200 299\n", &l), 0);
	assert_int_equal(l.kind, PROC_LOCK_OFD);
	assert_true(!l.write && l.start == 200 && l.end == 299);
	assert_string_equal(l.what, "OFDLCK");
}

static void test_locks_refused(void **state)
{
	struct proc_lock l;

	(void)state;
	/* Leases and delegations: their state where a lock's flags are. */
	assert_int_equal(proc_parse_lock("\t1: LEASE  ACTIVE    READ 301 fe:00:12 0 EOF\n", &l), 0);
	assert_int_equal(l.kind, PROC_LOCK_OTHER);
	assert_string_equal(l.what, "LEASE");
	assert_int_equal(proc_parse_lock("\t1: LEASE  BREAKING  UNLCK 301 fe:00:12 0 EOF\n", &l), 0);
	assert_int_equal(l.kind, PROC_LOCK_OTHER);
	assert_int_equal(proc_parse_lock("\t1: DELEG  ACTIVE    READ 301 fe:00:12 0 EOF\n", &l), 0);
	assert_int_equal(l.kind, PROC_LOCK_OTHER);
	assert_int_equal(proc_parse_lock("\t1: UNKNOWN UNKNOWN  WRITE 301 fe:00:12 0 EOF\n", &l), 0);
	assert_int_equal(l.kind, PROC_LOCK_OTHER);
	/* Not a lock line at all, or a range out of order. */
	assert_int_equal(proc_parse_lock("\t1: POSIX  ADVISORY  WRITE\n", &l), -EINVAL);
	assert_int_equal(proc_parse_lock("garbage", &l), -EINVAL);
	assert_int_equal(proc_parse_lock("\t1: POSIX  ADVISORY  WRITE 1 fe:00:12 14 5\n", &l), -EINVAL);
	assert_int_equal(proc_parse_lock("\t1: POSIX  ADVISORY  WRITE 1 fe:00:12 -3 5\n", &l), -EINVAL);
	assert_int_equal(proc_parse_lock("\t1: POSIX  ADVISORY  WRITE 1 fe:00:12 3 5x\n", &l), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_locks_carried),
		cmocka_unit_test(test_locks_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
