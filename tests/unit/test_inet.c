/*
 * sys/inet.c: the lines of /proc/net/{tcp,tcp6,udp} as this kernel prints
 * them (addresses in host-order words, ports in hex), the printed form of
 * an address, the option table restore trusts; sys/netlock.c's nft script.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "sys/inet.h"
#include "sys/netlock.h"

static void test_parse_tcp4(void **state)
{
	struct inet_entry e;
	const uint8_t lo[4] = { 127, 0, 0, 1 };

	(void)state;
	assert_int_equal(inet_parse_line("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000005 00:00000000 "
					 "00000000     0        0 126 1 000000003d10f720 100 0 0 10 0\n",
					 AF_INET, SOCK_STREAM, &e), 0);
	assert_memory_equal(e.addr, lo, 4);
	assert_int_equal(e.port, 8080);
	assert_int_equal(e.state, TCP_LISTEN);
	assert_int_equal(e.ino, 126);
	assert_int_equal(e.family, AF_INET);
	assert_int_equal(e.type, SOCK_STREAM);
}

static void test_parse_tcp6(void **state)
{
	struct inet_entry e;
	uint8_t one[16] = { 0 };

	(void)state;
	one[15] = 1;   /* ::1 */
	assert_int_equal(inet_parse_line("   3: 00000000000000000000000001000000:E73F 00000000000000000000000001000000:"
					 "D4B8 01 00000000:00000000 00:00000000 00000000  1000        0 98765 1 "
					 "000000008c02e454 20 4 30 10 -1\n", AF_INET6, SOCK_STREAM, &e), 0);
	assert_memory_equal(e.addr, one, 16);
	assert_int_equal(e.port, 0xE73F);
	assert_int_equal(e.state, TCP_ESTABLISHED);
	assert_int_equal(e.ino, 98765);
}

static void test_parse_bad(void **state)
{
	struct inet_entry e;

	(void)state;
	/* the header line, a v6 address in a v4 table, a cut line, junk */
	assert_int_equal(inet_parse_line("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   "
					 "uid  timeout inode\n", AF_INET, SOCK_STREAM, &e), -EINVAL);
	assert_int_equal(inet_parse_line("   0: 00000000000000000000000001000000:E73F 00000000000000000000000001000000:"
					 "D4B8 01 00000000:00000000 00:00000000 00000000 0 0 5 1\n", AF_INET, SOCK_STREAM,
					 &e), -EINVAL);
	assert_int_equal(inet_parse_line("   0: 0100007F:1F90 00000000:0000 0A", AF_INET, SOCK_STREAM, &e), -EINVAL);
	assert_int_equal(inet_parse_line("   0: 0100007G:1F90 00000000:0000 0A 00000000:00000000 00:00000000 "
					 "00000000 0 0 7 1\n", AF_INET, SOCK_STREAM, &e), -EINVAL);
	assert_int_equal(inet_parse_line("", AF_INET, SOCK_DGRAM, &e), -EINVAL);
}

static void test_addr_str(void **state)
{
	char b[80];
	const uint8_t v4[4] = { 10, 1, 2, 3 };
	uint8_t v6[16] = { 0xfe, 0x80 };

	(void)state;
	v6[15] = 1;
	assert_string_equal(inet_addr_str(AF_INET, v4, 4, 80, 0, b, sizeof(b)), "10.1.2.3:80");
	assert_string_equal(inet_addr_str(AF_INET6, v6, 16, 53, 2, b, sizeof(b)), "[fe80::1%2]:53");
	assert_string_equal(inet_addr_str(AF_INET6, v6, 16, 53, 0, b, sizeof(b)), "[fe80::1]:53");
	/* a length that is not the family's */
	assert_string_equal(inet_addr_str(AF_INET6, v4, 4, 1, 0, b, sizeof(b)), "[?]:1");
}

static void test_options(void **state)
{
	(void)state;
	assert_non_null(inet_opt_find(SOL_SOCKET, SO_REUSEADDR));
	assert_string_equal(inet_opt_find(IPPROTO_TCP, TCP_NODELAY)->label, "TCP_NODELAY");
	/* what a program could not set without privilege, or that would
	 * change the socket's kernel tuning, is not in the table */
	assert_null(inet_opt_find(SOL_SOCKET, SO_MARK));
	assert_null(inet_opt_find(SOL_SOCKET, SO_RCVBUF));
	assert_null(inet_opt_find(IPPROTO_IP, IP_TRANSPARENT));
	assert_null(inet_opt_find(SOL_SOCKET, SO_ATTACH_FILTER));
}

static void test_netlock_script(void **state)
{
	const uint8_t lo[4] = { 127, 0, 0, 1 }, peer[4] = { 10, 0, 0, 9 };
	uint8_t six[16] = { 0 };
	struct netlock_conn c[2] = {
		{ .family = AF_INET, .local = lo, .peer = peer, .lport = 8000, .pport = 51000 },
		{ .family = AF_INET6, .local = six, .peer = six, .lport = 1, .pport = 2 },
	};
	char buf[2048], small[100];

	(void)state;
	six[15] = 1;
	assert_int_equal(netlock_script("roam_lock_1", c, 2, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "add table inet roam_lock_1\n"));
	assert_non_null(strstr(buf, "hook input priority -300"));
	assert_non_null(strstr(buf, "hook output priority -300"));
	/* both directions of each connection */
	assert_non_null(strstr(buf, "add rule inet roam_lock_1 in ip saddr 10.0.0.9 tcp sport 51000 ip daddr 127.0.0.1 "
				    "tcp dport 8000 drop\n"));
	assert_non_null(strstr(buf, "add rule inet roam_lock_1 out ip saddr 127.0.0.1 tcp sport 8000 ip daddr 10.0.0.9 "
				    "tcp dport 51000 drop\n"));
	assert_non_null(strstr(buf, "in ip6 saddr ::1 tcp sport 2 ip6 daddr ::1 tcp dport 1 drop\n"));
	assert_int_equal(netlock_script("roam_lock_1", c, 2, small, sizeof(small)), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_tcp4), cmocka_unit_test(test_parse_tcp6), cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_addr_str), cmocka_unit_test(test_options), cmocka_unit_test(test_netlock_script),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
