/*
 * See netlock.h. nft reads its script on stdin; its messages come back
 * through a pipe, for the caller's error.
 */
#include "sys/netlock.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sys/inet.h"

void netlock_name(int pid, char *buf, size_t cap)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, cap, "roam_lock_%d_%lld%03ld", pid, (long long)ts.tv_sec, ts.tv_nsec / 1000000);
}

/* "ip saddr 127.0.0.1 tcp sport 8000" without the port's brackets. */
static void match(char *out, size_t cap, int family, const char *dir, const uint8_t *addr, uint32_t port)
{
	char a[80];

	inet_addr_str(family, addr, family == AF_INET6 ? 16 : 4, 0, 0, a, sizeof(a));
	if (family == AF_INET6) {   /* "[::1]:0" */
		char *end = strrchr(a, ']');
		if (end)
			*end = 0;
		snprintf(out, cap, "ip6 %saddr %s tcp %sport %u", dir, a + 1, dir, port);
	} else {
		a[strcspn(a, ":")] = 0;
		snprintf(out, cap, "ip %saddr %s tcp %sport %u", dir, a, dir, port);
	}
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

int netlock_script(const char *table, const struct netlock_conn *c, size_t n, char *buf, size_t cap)
{
	size_t off = 0;
	int rc;

	/* Before conntrack (priority -300 < -200): a segment of a connection
	 * without a socket must not even be tracked as new. */
	if ((rc = put(buf, cap, &off, "add table inet %s\n", table)) < 0 ||
	    (rc = put(buf, cap, &off, "add chain inet %s in { type filter hook input priority -300; policy accept; }\n",
		      table)) < 0 ||
	    (rc = put(buf, cap, &off, "add chain inet %s out { type filter hook output priority -300; policy accept; }\n",
		      table)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		char l[160], p[160];
		/* from the peer to us, and from us to the peer */
		match(p, sizeof(p), c[i].family, "s", c[i].peer, c[i].pport);
		match(l, sizeof(l), c[i].family, "d", c[i].local, c[i].lport);
		if ((rc = put(buf, cap, &off, "add rule inet %s in %s %s drop\n", table, p, l)) < 0)
			return rc;
		match(l, sizeof(l), c[i].family, "s", c[i].local, c[i].lport);
		match(p, sizeof(p), c[i].family, "d", c[i].peer, c[i].pport);
		if ((rc = put(buf, cap, &off, "add rule inet %s out %s %s drop\n", table, l, p)) < 0)
			return rc;
	}
	return 0;
}

int netlock_run(int pid, const char *script, char *why, size_t cap)
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
