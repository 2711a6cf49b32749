/*
 * roam run before the C library starts.
 *
 * A static glibc program spends about 0.25 ms in its start-up on a VM here,
 * most of it in some 40 CPUID instructions (CPU features and cache sizes),
 * each a trap to the hypervisor: half of what a remote /bin/true costs
 * beyond a local one. So the CLI's entry point (src/arch/x86_64/entry.c)
 * calls cli_pre_libc first, which, for a plain `roam run`, does with raw
 * system calls what cmd_run would do first: read the options (the same
 * parser, src/net/runwire.c), gather the working directory, umask, rlimits
 * and environment, connect to roamd and send the Run frame (and the EOF
 * behind it when stdin is /dev/null), byte for byte what msg_encode would
 * send. Then, when stdin is /dev/null and nothing is asked of the
 * terminal (no --explain, no --detach), it relays the job too: Started,
 * Output to stdout and stderr, and on Exited it exits with the job's status,
 * so that the C library never starts at all.
 *
 * Anything else hands over: this returns, the C library starts, and cmd_run
 * carries on from where this stopped (struct run_early): a frame of another
 * type (Failed, Result) or one not plainly valid, a signal to forward, EOF,
 * an error. The real decoder and relay (control_client.c) then judge and
 * print, as if they had done everything themselves. Nothing is decided
 * here that cmd_run would decide otherwise: what this cannot do exactly as
 * cmd_run does, it leaves to cmd_run (an unknown option, an unreachable
 * roamd, a working directory that cannot be read, a request too large for
 * the buffer).
 *
 * The rules of code running before the C library: no function of it at all
 * (memcpy and strlen are IFUNCs not yet resolved, errno is in TLS not yet set
 * up), hence arch_syscall6 and the loops of runwire.c; no large initialised
 * structures (the compiler may call memset for them).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "arch.h"
#include "cli/cli.h"
#include "cli/control_client.h"
#include "cli/run_early.h"
#include "net/msg.h"
#include "net/runwire.h"

struct run_early run_early;

#ifdef ARCH_HAVE_CLI_ENTRY

#define EARLY_MAX_ARGS 1024
#define EARLY_OUT      (256u << 10)                   /* the Run frame and the EOF */
#define EARLY_IN       ((128u << 10) + MSG_HDR_SIZE)  /* the largest Output frame */

static uint8_t out_buf[EARLY_OUT];
static uint8_t in_buf[2 * EARLY_IN];
static char cwd[4096];

#define BARRIER() __asm__ volatile("" ::: "memory")

static long sys(long nr, long a, long b, long c)
{
	return arch_syscall6(nr, a, b, c, 0, 0, 0);
}

/* The signals roam run forwards (cc_relay's list, and its order). */
static const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};

static const char *env_get(char **envp, const char *name)
{
	for (; *envp; envp++) {
		const char *e = *envp, *n = name;
		while (*n && *e == *n) {
			BARRIER();
			e++;
			n++;
		}
		if (!*n && *e == '=')
			return e + 1;
	}
	return NULL;
}

static bool stdin_is_null(void)
{
	struct stat st;

	return arch_syscall6(SYS_newfstatat, 0, (long)"", (long)&st, AT_EMPTY_PATH, 0, 0) == 0 &&
	       S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

/* Connects to roamd's control socket: the fd, or -1 (cmd_run will try
 * again and say why). */
static int connect_to(const char *path)
{
	struct sockaddr_un sa;
	size_t n = 0;
	int fd;

	sa.sun_family = AF_UNIX;
	for (; path[n]; n++) {
		BARRIER();
		if (n + 1 >= sizeof(sa.sun_path))
			return -1;
		sa.sun_path[n] = path[n];
	}
	sa.sun_path[n] = 0;
	fd = (int)sys(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (sys(SYS_connect, fd, (long)&sa, sizeof(sa)) < 0) {
		sys(SYS_close, fd, 0, 0);
		return -1;
	}
	return fd;
}

/* Sends all of p[0..n); 0 or -errno. */
static long send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		long w = arch_syscall6(SYS_sendto, fd, (long)p, (long)n, MSG_NOSIGNAL, 0, 0);
		if (w == -EINTR)
			continue;
		if (w < 0)
			return w;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Connects and sends the request: true when it went (or failed on the
 * wire, which run_early.err then says). */
static bool send_request(int argc, char **argv, char **envp, struct run_opts *o)
{
	static char *args[EARLY_MAX_ARGS];
	static struct run_limit lim[RLIM_NLIMITS];
	const char *path;
	struct run_req r;
	size_t size;
	long n;
	int fd;

	if (argc > EARLY_MAX_ARGS)
		return false;
	path = env_get(envp, "ROAM_CONTROL");
	argc = runwire_strip_control(argc, argv, args, &path);
	if (!path || !*path)
		path = ROAM_CONTROL_DEFAULT;
	run_opts_parse(argc, args, o);
	if (o->status != RUN_OPTS_OK)
		return false;

	n = sys(SYS_getcwd, (long)cwd, sizeof(cwd), 0);
	if (n <= 0 || cwd[0] != '/')
		return false;   /* unreachable or too long: cmd_run says so */
	r.o = o;
	r.argv = args + o->cmd;
	r.argc = (size_t)(argc - o->cmd);
	r.env = envp;
	for (r.nenv = 0; envp[r.nenv]; r.nenv++)
		;
	r.cwd = cwd;
	r.umask = (uint32_t)sys(SYS_umask, 0, 0, 0);
	sys(SYS_umask, r.umask, 0, 0);
	r.nlim = 0;
	for (int i = 0; i < RLIM_NLIMITS; i++) {
		struct rlimit rl;
		if (arch_syscall6(SYS_prlimit64, 0, i, 0, (long)&rl, 0, 0) < 0)
			continue;
		lim[r.nlim].resource = (uint32_t)i;
		lim[r.nlim].soft = rl.rlim_cur;
		lim[r.nlim].hard = rl.rlim_max;
		r.nlim++;
	}
	r.lim = lim;
	run_early.null_in = !o->detach && stdin_is_null();
	size = runwire_run_size(&r);
	if (size - MSG_HDR_SIZE > MSG_MAX_PAYLOAD || size + RUNWIRE_EOF_SIZE > sizeof(out_buf))
		return false;
	runwire_run_encode(&r, out_buf);
	if (run_early.null_in) {
		runwire_eof_encode(out_buf + size);
		size += RUNWIRE_EOF_SIZE;
	}
	if ((fd = connect_to(path)) < 0)
		return false;
	run_early.fd = fd;
	run_early.sent = true;
	n = send_all(fd, out_buf, size);
	if (n < 0)
		run_early.err = (int)-n;
	return true;
}

/* As cc_relay starts: the forwarded signals back to their default action
 * (a shell starts background commands with SIGINT ignored) and blocked,
 * read through a signalfd; SIGPIPE blocked, so that a closed stdout is an
 * error rather than death. Returns the signalfd or -errno. */
static int relay_signals(void)
{
	struct { long handler; unsigned long flags; long restorer; uint64_t mask; } dfl;
	uint64_t mask = 0;

	dfl.handler = (long)SIG_DFL;
	dfl.flags = 0;
	dfl.restorer = 0;
	dfl.mask = 0;
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++) {
		arch_syscall6(SYS_rt_sigaction, fwd[i], (long)&dfl, 0, sizeof(uint64_t), 0, 0);
		mask |= 1ull << (fwd[i] - 1);
	}
	mask |= 1ull << (SIGPIPE - 1);
	arch_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&mask, 0, sizeof(mask), 0, 0);
	mask &= ~(1ull << (SIGPIPE - 1));
	return (int)arch_syscall6(SYS_signalfd4, -1, (long)&mask, sizeof(mask),
				  SFD_CLOEXEC | SFD_NONBLOCK, 0, 0);
}

/* As control_client.c's write_all: a closed stdout drops the output. */
static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		long w = sys(SYS_write, fd, (long)p, (long)n);
		if (w == -EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/*
 * The relay of a job whose stdin is /dev/null: returns (to hand over) with
 * run_early.rest holding what was read and not handled; exits the process
 * when the job's status came.
 */
static void relay(int fd)
{
	size_t off = 0, have = 0;
	int sfd = -1;

	for (;;) {
		unsigned type;
		size_t size;
		int r = runwire_frame(in_buf + off, have - off, EARLY_IN - MSG_HDR_SIZE, &type, &size);

		if (r < 0)
			break;
		if (r == 1) {
			const uint8_t *p = in_buf + off + MSG_HDR_SIZE, *data;
			size_t n = size - MSG_HDR_SIZE, len;
			unsigned ofd;
			int status;

			if (!run_early.started) {
				if (type != MSG_STARTED || runwire_started(p, n) < 0)
					break;
				sfd = relay_signals();
				if (sfd < 0)
					break;
				run_early.started = true;
			} else if (type == MSG_OUTPUT && runwire_output(p, n, &ofd, &data, &len) == 0) {
				write_all((int)ofd, data, len);
			} else if (type == MSG_EXITED && runwire_exited(p, n, &status) == 0) {
				sys(SYS_exit_group, cc_exit_code(status), 0, 0);
			} else {
				break;
			}
			off += size;
			continue;
		}
		/* Part of a frame: keep it at the front, read more. */
		if (off) {
			for (size_t i = 0; off + i < have; i++) {
				BARRIER();
				in_buf[i] = in_buf[off + i];
			}
			have -= off;
			off = 0;
		}
		long got = arch_syscall6(SYS_recvfrom, fd, (long)(in_buf + have), (long)(sizeof(in_buf) - have),
					 sfd >= 0 ? MSG_DONTWAIT : 0, 0, 0);
		if (got == -EAGAIN) {
			struct pollfd pf[2];
			pf[0].fd = fd;
			pf[0].events = POLLIN;
			pf[0].revents = 0;
			pf[1].fd = sfd;
			pf[1].events = POLLIN;
			pf[1].revents = 0;
			if (sys(SYS_poll, (long)pf, 2, -1) < 0 || (pf[1].revents & POLLIN))
				break;   /* a signal to forward: cc_relay reads it */
			continue;
		}
		if (got == -EINTR)
			continue;
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	if (sfd >= 0)
		sys(SYS_close, sfd, 0, 0);
	run_early.rest = in_buf + off;
	run_early.nrest = have - off;
}

void cli_pre_libc(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1), **envp = argv + argc + 1;
	struct run_opts o;

	if (argc < 2 || argv[1][0] != 'r' || argv[1][1] != 'u' || argv[1][2] != 'n' || argv[1][3])
		return;
	if (!send_request(argc - 1, argv + 1, envp, &o) || run_early.err)
		return;
	if (run_early.null_in && !o.explain && !o.detach)
		relay(run_early.fd);
}

#endif /* ARCH_HAVE_CLI_ENTRY */
