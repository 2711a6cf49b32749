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
	struct netlock_conn c[3] = {
		{ .family = AF_INET, .local = { 127, 0, 0, 1 }, .peer = { 10, 0, 0, 9 }, .lport = 8000, .pport = 51000 },
		{ .family = AF_INET6, .local = { [15] = 1 }, .peer = { [15] = 1 }, .lport = 1, .pport = 2 },
		{ .family = AF_INET, .local = { 127, 0, 0, 1 }, .peer = { 127, 0, 0, 1 }, .lport = 3, .pport = 4 },
	};
	char buf[2048], small[60];

	(void)state;
	assert_int_equal(netlock_script("add", c, 3, buf, sizeof(buf)), 0);
	/* both directions of each connection, IPv4 and IPv6 apart */
	assert_string_equal(buf, "add element inet roam conn4 { 10.0.0.9 . 51000 . 127.0.0.1 . 8000, "
				 "127.0.0.1 . 8000 . 10.0.0.9 . 51000, 127.0.0.1 . 4 . 127.0.0.1 . 3, "
				 "127.0.0.1 . 3 . 127.0.0.1 . 4 }\n"
				 "add element inet roam conn6 { ::1 . 2 . ::1 . 1, ::1 . 1 . ::1 . 2 }\n");
	assert_int_equal(netlock_script("delete", c, 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "delete element inet roam conn4 { 10.0.0.9 . 51000 . 127.0.0.1 . 8000, "
				 "127.0.0.1 . 8000 . 10.0.0.9 . 51000 }\n");
	assert_int_equal(netlock_script("add", c, 3, small, sizeof(small)), -ENOSPC);
	/* both ends of one connection held by the process: its elements once */
	struct netlock_conn ends[2] = { c[2], c[2] };
	ends[1].lport = c[2].pport, ends[1].pport = c[2].lport;
	assert_int_equal(netlock_script("delete", ends, 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "delete element inet roam conn4 { 127.0.0.1 . 4 . 127.0.0.1 . 3, "
				 "127.0.0.1 . 3 . 127.0.0.1 . 4 }\n");
	/* the rules drop what the sets hold, both ways, before conntrack */
	assert_non_null(strstr(netlock_setup_script(), "add rule inet roam in ip saddr . tcp sport . ip daddr . "
							 "tcp dport @conn4 drop\n"));
	assert_non_null(strstr(netlock_setup_script(), "out ip6 saddr . tcp sport . ip6 daddr . tcp dport @conn6 drop"));
	assert_non_null(strstr(netlock_setup_script(), "hook input priority -300"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_tcp4), cmocka_unit_test(test_parse_tcp6), cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_addr_str), cmocka_unit_test(test_options), cmocka_unit_test(test_netlock_script),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
