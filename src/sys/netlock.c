/*
 * See netlock.h. nft reads its script on stdin; its messages come back
 * through a pipe, for the caller's error.
 */
#include "sys/netlock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>


/* "10.0.0.1 . 8000" or "::1 . 8000": one end of an element. */
static void end_of(char *out, size_t cap, int family, const uint8_t *addr, uint32_t port)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(family, addr, a, sizeof(a));
	snprintf(out, cap, "%s . %u", a, port);
}

/* Appends to buf at *off; -ENOSPC when it does not fit. */
static int put(char *buf, size_t cap, size_t *off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int put(char *buf, size_t cap, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int w;

	va_start(ap, fmt);
	w = vsnprintf(buf + *off, cap - *off, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= cap - *off)
		return -ENOSPC;
	*off += (size_t)w;
	return 0;
}

const char *netlock_setup_script(void)
{
	/* Before conntrack (priority -300 < -200): a segment of a connection
	 * without a socket must not even be tracked as new. */
	return "add table inet " NETLOCK_TABLE "\n"
	       "add set inet " NETLOCK_TABLE " conn4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }\n"
	       "add set inet " NETLOCK_TABLE " conn6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }\n"
	       "add chain inet " NETLOCK_TABLE " in { type filter hook input priority -300; policy accept; }\n"
	       "add chain inet " NETLOCK_TABLE " out { type filter hook output priority -300; policy accept; }\n"
	       "flush chain inet " NETLOCK_TABLE " in\n"
	       "flush chain inet " NETLOCK_TABLE " out\n"
	       "add rule inet " NETLOCK_TABLE " in ip saddr . tcp sport . ip daddr . tcp dport @conn4 drop\n"
	       "add rule inet " NETLOCK_TABLE " in ip6 saddr . tcp sport . ip6 daddr . tcp dport @conn6 drop\n"
	       "add rule inet " NETLOCK_TABLE " out ip saddr . tcp sport . ip daddr . tcp dport @conn4 drop\n"
	       "add rule inet " NETLOCK_TABLE " out ip6 saddr . tcp sport . ip6 daddr . tcp dport @conn6 drop\n";
}

/* The same two elements as an earlier connection's: its other end, when
 * both ends are the process's (a set's element is named once a command). */
static int seen(const struct netlock_conn *c, size_t i)
{
	for (size_t j = 0; j < i; j++) {
		const struct netlock_conn *a = &c[i], *b = &c[j];
		if (a->family != b->family)
			continue;
		if ((!memcmp(a->local, b->local, 16) && !memcmp(a->peer, b->peer, 16) && a->lport == b->lport &&
		     a->pport == b->pport) ||
		    (!memcmp(a->local, b->peer, 16) && !memcmp(a->peer, b->local, 16) && a->lport == b->pport &&
		     a->pport == b->lport))
			return 1;
	}
	return 0;
}

int netlock_script(const char *op, const struct netlock_conn *c, size_t n, char *buf, size_t cap)
{
	size_t off = 0;
	int rc;

	buf[0] = 0;
	for (int v6 = 0; v6 < 2; v6++) {
		const char *sep = NULL;   /* NULL: no element of this family yet */
		for (size_t i = 0; i < n; i++) {
			char l[96], p[96];
			if ((c[i].family == AF_INET6) != v6 || seen(c, i))
				continue;
			if (!sep && (rc = put(buf, cap, &off, "%s element inet %s conn%c { ", op, NETLOCK_TABLE,
					      v6 ? '6' : '4')) < 0)
				return rc;
			end_of(l, sizeof(l), c[i].family, c[i].local, c[i].lport);
			end_of(p, sizeof(p), c[i].family, c[i].peer, c[i].pport);
			/* from the peer to us, and from us to the peer */
			if ((rc = put(buf, cap, &off, "%s%s . %s, %s . %s", sep ? sep : "", p, l, l, p)) < 0)
				return rc;
			sep = ", ";
		}
		if (sep && (rc = put(buf, cap, &off, " }\n")) < 0)
			return rc;
	}
	return 0;
}

static int run_script(int pid, const char *script, char *why, size_t cap);

int netlock_lock(int pid, const struct netlock_conn *c, size_t n, char *why, size_t cap)
{
	char add[4096], both[8192];
	int rc;

	if ((rc = netlock_script("add", c, n, add, sizeof(add))) < 0)
		return rc;
	if (run_script(pid, add, why, cap) == 0)
		return 0;
	/* No table yet (or its sets gone): made, then the elements. */
	if (snprintf(both, sizeof(both), "%s%s", netlock_setup_script(), add) >= (int)sizeof(both))
		return -ENOSPC;
	return run_script(pid, both, why, cap);
}

int netlock_unlock(int pid, const struct netlock_conn *c, size_t n, char *why, size_t cap)
{
	char del[4096];
	int rc;

	if ((rc = netlock_script("delete", c, n, del, sizeof(del))) < 0)
		return rc;
	if ((rc = run_script(pid, del, why, cap)) == 0 || n == 1)
		return rc;
	/* One element gone already fails the whole command: one by one. */
	rc = 0;
	for (size_t i = 0; i < n; i++)
		if (!seen(c, i) && netlock_script("delete", &c[i], 1, del, sizeof(del)) == 0 &&
		    run_script(pid, del, why, cap) < 0)
			rc = -ENOENT;
	return rc;
}

static int run_script(int pid, const char *script, char *why, size_t cap)
{
	int in[2], out[2], st, rc = 0;
	pid_t child;
	char path[64];
	int ns = -1;

	why[0] = 0;
	if (pid > 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
		if ((ns = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return -errno;
	}
	if (pipe2(in, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	if (pipe2(out, O_CLOEXEC) < 0) {
		rc = -errno;
		close(in[0]), close(in[1]);
		goto out;
	}
	child = fork();
	if (child == 0) {
		static const char *const argv[] = { "nft", "-f", "-", NULL };
		if ((ns >= 0 && setns(ns, CLONE_NEWNET) < 0) || dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 ||
		    dup2(out[1], 2) < 0)
			_exit(126);
		execv("/usr/sbin/nft", (char *const *)argv);
		execvp("nft", (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (child < 0) {
		rc = -errno;
		close(in[1]), close(out[0]);
		goto out;
	}
	/* An nft that died early must not take us with it (SIGPIPE). */
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	sigaction(SIGPIPE, &ign, &old);
	size_t len = strlen(script);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(in[1], script + off, len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(in[1]);
	sigaction(SIGPIPE, &old, NULL);
	size_t got = 0;
	for (ssize_t r; got + 1 < cap && (r = read(out[0], why + got, cap - 1 - got)) > 0;)
		got += (size_t)r;
	why[got] = 0;
	while (got && (why[got - 1] == '\n'))
		why[--got] = 0;
	close(out[0]);
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		rc = WIFEXITED(st) && WEXITSTATUS(st) == 127 ? -ENOENT : -EPERM;
		if (!why[0])
			snprintf(why, cap, "%s", rc == -ENOENT ? "nft is not installed (Debian's nftables)"
								: "nft failed (it takes CAP_NET_ADMIN)");
	}
out:
	if (ns >= 0)
		close(ns);
	return rc;
}
