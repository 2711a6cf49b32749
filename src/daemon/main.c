/*
 * roamd: one daemon per host. Reads its configuration, opens its sockets,
 * then runs one epoll loop until SIGTERM or SIGINT.
 *
 * Startup order matters: signals are blocked (and turned into a signalfd)
 * before any child exists, so that no SIGCHLD is lost and the spawn child
 * inherits a mask it resets itself; the key is loaded and checked before any
 * socket opens.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include "daemon/roamd.h"
#include "sys/clock.h"

#define TICK_MS 250
#define BUSY_TURNS 4   /* loop turns with events before queued frames leave anyway */

static struct roamd daemon_state;
struct roamd *roamd = &daemon_state;

static void on_listen(struct ev *ev, uint32_t events)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char desc[CL_ADDR_MAX] = "?";
		int one = 1;
		int fd = accept4(ev->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			uint32_t a = ntohl(in->sin_addr.s_addr);
			snprintf(desc, sizeof(desc), "%u.%u.%u.%u:%u", a >> 24, a >> 16 & 255, a >> 8 & 255,
				 a & 255, ntohs(in->sin_port));
		}
		if (!conn_new(fd, CONN_PEER_IN, desc))
			close(fd);
	}
}

static void shutdown_jobs(void)
{
	/* Host shutdown reaches every process of every job. */
	for (struct job *j = roamd->jobs; j; j = j->next)
		if (j->exec_side)
			exec_signal(j, SIGKILL);
}

static void on_signal(struct ev *ev, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(ev->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			exec_reap_orphans();
			break;
		case SIGTERM:
		case SIGINT:
			log_info("signal %u: shutting down", si.ssi_signo);
			roamd->stopping = true;
			break;
		default:
			break;
		}
	}
}

static void on_timer(struct ev *ev, uint32_t events)
{
	uint64_t n, now = mono_ms();

	if (read(ev->fd, &n, sizeof(n)) < 0)
		return;
	peer_tick(now);
	conn_tick(now);
	job_tick(now);
	migrate_tick(now);
	orphan_tick(now);
	query_tick(now);
	cgroup_tick();
}

static int open_listen(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (parse_hostport(addr, &ss, &len))
		return -EINVAL;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void add_seeds(void)
{
	char peers[sizeof(roamd->cfg.peers)], *save, *tok;

	snprintf(peers, sizeof(peers), "%s", roamd->cfg.peers);
	for (tok = strtok_r(peers, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (strcmp(tok, roamd->cfg.listen))
			members_add(&roamd->members, NULL, tok);
}

int main(int argc, char **argv)
{
	unsigned busy = 0;
	struct itimerspec it = {.it_interval = {0, TICK_MS * 1000000L}, .it_value = {0, 1000000L}};
	sigset_t mask;
	int fd;

	config_defaults(&roamd->cfg);
	if (config_parse(&roamd->cfg, argc, argv) < 0)
		return 2;
	if (sodium_init() < 0) {
		fprintf(stderr, "roamd: libsodium failed to initialise\n");
		return 1;
	}
	if (config_check(&roamd->cfg, roamd->key) < 0)
		return 1;
	if (roamd->cfg.check_only) {
		printf("roamd: configuration OK (host %s, listen %s, control %s, state %s)\n",
		       roamd->cfg.name, roamd->cfg.listen, roamd->cfg.control, roamd->cfg.state_dir);
		return 0;
	}
	log_init(roamd->cfg.name, roamd->cfg.verbose);
	/* fds 0-2 must exist, or a pipe could land there and be dup2'd away. */
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
	if ((fd = state_init(roamd->cfg.state_dir)) < 0) {
		fprintf(stderr, "roamd: state directory %s: %s\n", roamd->cfg.state_dir,
			fd == -EBADMSG ? "corrupt sequence file 'seq'" : strerror(-fd));
		return 1;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/* Orphans of jobs come to us, so they are reaped and counted. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	roamd->epfd = epoll_create1(EPOLL_CLOEXEC);
	roamd->signal_ev = (struct ev){.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC), .fn = on_signal};
	roamd->timer_ev = (struct ev){.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC), .fn = on_timer};
	if (roamd->epfd < 0 || roamd->signal_ev.fd < 0 || roamd->timer_ev.fd < 0) {
		perror("roamd: epoll/signalfd/timerfd");
		return 1;
	}
	timerfd_settime(roamd->timer_ev.fd, 0, &it, NULL);
	loop_add(&roamd->signal_ev, EPOLLIN);
	loop_add(&roamd->timer_ev, EPOLLIN);

	fd = open_listen(roamd->cfg.listen);
	if (fd < 0) {
		fprintf(stderr, "roamd: listen %s: %s\n", roamd->cfg.listen, strerror(-fd));
		return 1;
	}
	roamd->listen_ev = (struct ev){.fd = fd, .fn = on_listen};
	loop_add(&roamd->listen_ev, EPOLLIN);
	fd = control_listen(roamd->cfg.control);
	if (fd < 0) {
		fprintf(stderr, "roamd: control socket %s: %s\n", roamd->cfg.control, strerror(-fd));
		return 1;
	}
	roamd->control_ev = (struct ev){.fd = fd, .fn = control_accept};
	loop_add(&roamd->control_ev, EPOLLIN);

	policy_rng_seed(&roamd->rng, randombytes_random() | (uint64_t)randombytes_random() << 32);
	members_init(&roamd->members, roamd->cfg.name, roamd->cfg.listen);
	load_machine(&roamd->self_load);
	roamd->self_load.psi_some = -1;
	roamd->self_load.max_procs = roamd->cfg.max_procs;
	for (unsigned i = 0; i < roamd->cfg.ntags; i++)
		memcpy(roamd->self_load.tags[roamd->self_load.ntags++], roamd->cfg.tags[i], CL_NAME_MAX);
	roamd->members.m[0].load = roamd->self_load;
	cgroup_init();
	migrate_init();
	add_seeds();
	if (roamd->cfg.ballast_mb) {
		size_t sz = (size_t)roamd->cfg.ballast_mb << 20;
		char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			for (size_t off = 0; off < sz; off += 4096)
				p[off] = 1;
		log_info("ballast: %u MiB resident", roamd->cfg.ballast_mb);
	}
	log_info("listening on %s, control %s, policy %s%s", roamd->cfg.listen, roamd->cfg.control,
		 roamd->cfg.policy, roamd->cfg.allow_root ? ", root jobs allowed" : "");

	while (!roamd->stopping) {
		struct epoll_event evs[64];
		/* Queued frames leave when nothing else is ready (a poll that
		 * does not sleep says so), or after BUSY_TURNS turns that each
		 * found work: a job that exits while its spawn is still being
		 * answered sends Started and Exited in one segment, and wakes
		 * its home and client once instead of twice. */
		bool pending = conn_flush_pending();
		int n = epoll_wait(roamd->epfd, evs, 64, pending ? 0 : -1);

		if (n < 0 && errno != EINTR) {
			log_warn("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct ev *ev = evs[i].data.ptr;
			ev->fn(ev, evs[i].events);
		}
		roamd->members.m[0].load = roamd->self_load;
		if (!conn_flush_pending()) {
			busy = 0;
		} else if (n <= 0 || ++busy >= BUSY_TURNS) {
			conn_flush_due();
			busy = 0;
		}
		conn_reap();
		job_reap();
	}
	shutdown_jobs();
	/* Give the killed jobs a second to be reaped, so their cgroups go too. */
	for (int i = 0; i < 20 && exec_running(); i++) {
		usleep(50000);
		exec_reap_orphans();
	}
	conn_flush_due();   /* the ends of those jobs, to their homes */
	cgroup_fini();
	unlink(roamd->cfg.control);
	sodium_memzero(roamd->key, sizeof(roamd->key));
	return 0;
}
