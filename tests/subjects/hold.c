/*
 * hold: a subject holding one resource that roam must refuse to checkpoint
 * (refusal works as an allowlist).  The refusal tests check that roam names
 * the resource and leaves the process running untouched: the subject keeps
 * using its resource throughout and must still pass afterwards.
 *
 *   hold [-s STOP] MODE
 *
 * MODE is one of: socket sockpeer emptypeeked tcpconn acceptq sockfilter
 * inotify epoll-lost io_uring lease pipelock seccomp utsns mntns sysvshm sharedanon memfd hugetlb
 * zombie pipe3 plain.
 * "sharedanon" maps shared anonymous memory that a process of its making,
 * not its child, maps too (it exits once the subject is gone); "sockpeer"
 * holds one end of a socket pair whose other end such a process holds.
 * "tcpconn" holds both ends of a TCP connection over 127.0.0.1 (and the
 * listener it came through); "acceptq" a listener with a connection its
 * client closed, never accepted; "sockfilter" a UDP socket with a socket
 * filter (classic BPF) attached.
 * "epoll-lost" watches a pipe through an epoll, added as a descriptor that
 * was closed since (the pipe lives on through a dup). "emptypeeked" holds a
 * datagram socket pair with an empty message queued, which it peeked at,
 * then another: a peek offset passes over such a message. "inotify" has an
 * event queued, which it never reads. "lease" holds a read lease on a file,
 * "pipelock" a flock on a pipe whose both ends it holds. "zombie" has a
 * child that ended, never reaped. "pipe3" expects
 * the harness to hand it a pipe on fd 3 whose other end lives elsewhere;
 * "plain" holds nothing (the harness stops or traces it instead).
 * Before "ready" the subject prints what roam should name:
 *   hold: fd N / hold: pid N / hold: addr START-END (hex, as in maps)
 *
 *   hold trace PID
 * is not a subject but the helper that keeps PID traced (PTRACE_SEIZE)
 * until PID exits or the helper is killed.
 */
#include "subject.h"

#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>

static const char *mode;
static int fd = -1, pfd[2];
static pid_t child;
static pid_t sharer;	/* sharedanon, sockpeer: not a child of ours */
static int lost_dup;	/* epoll-lost: the watched pipe's one descriptor */
static char *shm;
#define SHM_LEN (64 * 1024)
static char *mfd_map;	/* memfd: shared mapping of fd */
static uint32_t mfd_counter;
static char *huge;	/* hugetlb: one huge page, anonymous */
#define HUGE_LEN (2u << 20)
static ino_t ns_ino;
static volatile uint32_t *sq_entries_p;
static unsigned sq_entries;

static int is(const char *m)
{
	return !strcmp(mode, m);
}

static ino_t ns_inode(const char *ns)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	SUBJ_SYS(stat(path, &st));
	return st.st_ino;
}

/* A process that shares what we hold (it inherits it) and lives as long as
 * we do, but is not our child: the middle one of a double fork leaves. */
static pid_t spawn_sharer(void)
{
	pid_t me = getpid(), mid, b = 0;
	int p[2];

	SUBJ_SYS(pipe2(p, O_CLOEXEC));
	SUBJ_SYS(mid = fork());
	if (mid == 0) {
		b = fork();
		if (b != 0)
			_exit(write(p[1], &b, sizeof(b)) == sizeof(b) ? 0 : 1);
		while (kill(me, 0) == 0)
			usleep(50000);
		_exit(0);
	}
	SUBJ_CHECK(read(p[0], &b, sizeof(b)) == sizeof(b) && b > 0, "no sharer");
	SUBJ_SYS(waitpid(mid, NULL, 0));
	close(p[0]);
	close(p[1]);
	return b;
}

static void setup(void)
{
	if (is("socket")) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		SUBJ_SYS(fd);
	} else if (is("sockpeer")) {
		int sv[2];

		SUBJ_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
		sharer = spawn_sharer();
		close(sv[1]);  /* the sharer keeps its copy */
		fd = sv[0];
	} else if (is("tcpconn") || is("acceptq")) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(a);
		int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		SUBJ_SYS(l);
		SUBJ_SYS(c);
		SUBJ_SYS(bind(l, (struct sockaddr *)&a, sizeof(a)));
		SUBJ_SYS(listen(l, 4));
		SUBJ_SYS(getsockname(l, (struct sockaddr *)&a, &len));
		SUBJ_SYS(connect(c, (struct sockaddr *)&a, len));
		if (is("acceptq")) {
			close(c);   /* the connection stays queued, not accepted */
			fd = l;
		} else {
			SUBJ_SYS(pfd[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC));
			fd = c;
		}
	} else if (is("sockfilter")) {
		struct sock_filter all = BPF_STMT(BPF_RET | BPF_K, 0xffffffff);
		struct sock_fprog prog = { .len = 1, .filter = &all };

		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		SUBJ_SYS(fd);
		SUBJ_SYS(setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)));
	} else if (is("emptypeeked")) {
		char b[4];

		SUBJ_SYS(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pfd));
		SUBJ_CHECK(send(pfd[1], "", 0, 0) == 0, "send: %s", strerror(errno));
		SUBJ_CHECK(recv(pfd[0], b, sizeof(b), MSG_PEEK) == 0, "peek: %s", strerror(errno));
		SUBJ_CHECK(send(pfd[1], "b", 1, 0) == 1, "send: %s", strerror(errno));
		fd = pfd[0];
	} else if (is("inotify")) {
		char made[PATH_MAX];

		fd = inotify_init1(IN_CLOEXEC);
		SUBJ_SYS(fd);
		SUBJ_SYS(inotify_add_watch(fd, subj.dir, IN_CREATE));
		subj_path(made, sizeof(made), "inotify-made");
		SUBJ_SYS(open(made, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));  /* an event it never reads */
	} else if (is("epoll-lost")) {
		struct epoll_event ev = { .events = EPOLLIN };

		SUBJ_SYS(pipe2(pfd, O_CLOEXEC));
		SUBJ_CHECK(write(pfd[1], "x", 1) == 1, "write pipe");
		fd = epoll_create1(EPOLL_CLOEXEC);
		SUBJ_SYS(fd);
		SUBJ_SYS(epoll_ctl(fd, EPOLL_CTL_ADD, pfd[0], &ev));
		SUBJ_SYS(lost_dup = fcntl(pfd[0], F_DUPFD_CLOEXEC, 20));
		close(pfd[0]);
	} else if (is("io_uring")) {
		struct io_uring_params p;
		char *ring;

		memset(&p, 0, sizeof(p));
		fd = (int)syscall(SYS_io_uring_setup, 4, &p);
		if (fd < 0) {
			subj_log("io_uring_setup: %s\n", strerror(errno));
			exit(77);
		}
		ring = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(uint32_t),
			    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
		SUBJ_CHECK(ring != MAP_FAILED, "mmap io_uring: %s", strerror(errno));
		sq_entries_p = (volatile uint32_t *)(ring + p.sq_off.ring_entries);
		sq_entries = p.sq_entries;
	} else if (is("lease")) {
		char path[PATH_MAX];

		subj_path(path, sizeof(path), "hold.lease");
		fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
		SUBJ_SYS(fd);
		SUBJ_SYS(fcntl(fd, F_SETLEASE, F_RDLCK));
	} else if (is("pipelock")) {
		int p[2];

		SUBJ_SYS(pipe2(p, O_CLOEXEC));
		fd = p[0];
		SUBJ_SYS(flock(fd, LOCK_EX));
	} else if (is("seccomp")) {
		struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
		struct sock_fprog prog = { .len = 1, .filter = &allow };

		SUBJ_SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
		SUBJ_SYS(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
	} else if (is("utsns")) {
		SUBJ_SYS(unshare(CLONE_NEWUTS));
		SUBJ_SYS(sethostname("roam-hold", 9));
		ns_ino = ns_inode("uts");
	} else if (is("mntns")) {
		SUBJ_SYS(unshare(CLONE_NEWNS));
		ns_ino = ns_inode("mnt");
	} else if (is("sysvshm")) {
		int id = shmget(IPC_PRIVATE, SHM_LEN, IPC_CREAT | 0600);

		SUBJ_SYS(id);
		shm = shmat(id, NULL, 0);
		if (shm == (void *)-1) {
			shmctl(id, IPC_RMID, NULL);
			subj_fail("shmat: %s", strerror(errno));
		}
		/* Removed now, freed when we detach or die. */
		SUBJ_SYS(shmctl(id, IPC_RMID, NULL));
		subj_fill(shm, SHM_LEN, 42);
	} else if (is("sharedanon")) {
		shm = mmap(NULL, SHM_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		SUBJ_CHECK(shm != MAP_FAILED, "mmap shared anonymous: %s", strerror(errno));
		subj_fill(shm, SHM_LEN, 44);
		sharer = spawn_sharer();
	} else if (is("memfd")) {
		fd = memfd_create("roam-hold", MFD_CLOEXEC);
		SUBJ_SYS(fd);
		SUBJ_SYS(ftruncate(fd, SHM_LEN));
		mfd_map = mmap(NULL, SHM_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		SUBJ_CHECK(mfd_map != MAP_FAILED, "mmap memfd: %s", strerror(errno));
	} else if (is("hugetlb")) {
		huge = mmap(NULL, HUGE_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		SUBJ_CHECK(huge != MAP_FAILED, "mmap MAP_HUGETLB (no huge page reserved?): %s", strerror(errno));
		subj_fill(huge, HUGE_LEN, 43);
	} else if (is("zombie")) {
		child = fork();
		SUBJ_SYS(child);
		if (child == 0)
			_exit(0);  /* never reaped */
		siginfo_t si;
		SUBJ_SYS(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT));
	} else if (is("pipe3")) {
		fd = 3;
	} else if (!is("plain")) {
		subj_fail("unknown mode '%s'", mode);
	}
}

static void verify(void)
{
	struct stat st;

	if (is("socket")) {
		int type = 0;
		socklen_t len = sizeof(type);

		SUBJ_SYS(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len));
		SUBJ_CHECK(type == SOCK_STREAM, "socket type %d", type);
	} else if (is("sockpeer")) {
		SUBJ_CHECK(send(fd, "x", 1, MSG_DONTWAIT) == 1, "send to the sharer: %s", strerror(errno));
		SUBJ_CHECK(kill(sharer, 0) == 0, "sharer %d gone", (int)sharer);
	} else if (is("tcpconn")) {
		char b;

		SUBJ_CHECK(send(fd, "x", 1, 0) == 1, "send: %s", strerror(errno));
		SUBJ_CHECK(recv(pfd[0], &b, 1, 0) == 1 && b == 'x', "the byte sent did not come");
	} else if (is("acceptq")) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);

		SUBJ_SYS(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len));
		SUBJ_CHECK(ti.tcpi_state == TCP_LISTEN && ti.tcpi_unacked == 1, "%u connections queued, not 1",
			   ti.tcpi_unacked);
	} else if (is("sockfilter")) {
		socklen_t len = 0;

		SUBJ_SYS(getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &len));
		SUBJ_CHECK(len == 1, "filter of %u instructions", len);
	} else if (is("emptypeeked")) {
		char b[4];

		SUBJ_CHECK(recv(fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT) == 0, "the empty message is not first");
	} else if (is("inotify")) {
		SUBJ_CHECK(fcntl(fd, F_GETFD) >= 0, "inotify fd closed");
	} else if (is("epoll-lost")) {
		struct epoll_event ev;

		SUBJ_CHECK(epoll_wait(fd, &ev, 1, 0) == 1, "epoll_wait found no ready pipe");
	} else if (is("io_uring")) {
		SUBJ_CHECK(*sq_entries_p == sq_entries, "io_uring ring shows %u entries, want %u",
			   *sq_entries_p, sq_entries);
	} else if (is("lease")) {
		SUBJ_CHECK(fcntl(fd, F_GETLEASE) == F_RDLCK, "lease gone");
	} else if (is("pipelock")) {
		/* Another open file description of the pipe must see the lock. */
		char path[64];
		int other;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		other = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		SUBJ_SYS(other);
		SUBJ_CHECK(flock(other, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "flock on the pipe gone");
		close(other);
	} else if (is("seccomp")) {
		char buf[4096], *p;
		int f = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
		ssize_t n;

		SUBJ_SYS(f);
		n = read(f, buf, sizeof(buf) - 1);
		close(f);
		SUBJ_CHECK(n > 0, "read status");
		buf[n] = '\0';
		p = strstr(buf, "Seccomp:");
		SUBJ_CHECK(p && atoi(p + 8) == SECCOMP_MODE_FILTER, "seccomp filter gone");
	} else if (is("utsns")) {
		struct utsname u;

		SUBJ_SYS(uname(&u));
		SUBJ_CHECK(!strcmp(u.nodename, "roam-hold"), "hostname '%s'", u.nodename);
		SUBJ_CHECK(ns_inode("uts") == ns_ino, "uts namespace changed");
	} else if (is("mntns")) {
		SUBJ_CHECK(ns_inode("mnt") == ns_ino, "mount namespace changed");
	} else if (is("sysvshm")) {
		long bad = subj_check_fill(shm, SHM_LEN, 42);

		SUBJ_CHECK(bad < 0, "shm word %ld differs", bad);
	} else if (is("sharedanon")) {
		long bad = subj_check_fill(shm, SHM_LEN, 44);

		SUBJ_CHECK(bad < 0, "shared word %ld differs", bad);
		SUBJ_CHECK(kill(sharer, 0) == 0, "sharer %d gone", (int)sharer);
	} else if (is("memfd")) {
		uint32_t v = 0;

		mfd_counter++;
		memcpy(mfd_map + 100, &mfd_counter, 4);
		SUBJ_CHECK(pread(fd, &v, 4, 100) == 4 && v == mfd_counter,
			   "memfd mapping no longer shared with its fd");
	} else if (is("hugetlb")) {
		long bad = subj_check_fill(huge, HUGE_LEN, 43);

		SUBJ_CHECK(bad < 0, "huge page word %ld differs", bad);
	} else if (is("zombie")) {
		char path[64], buf[256], *p;
		int f;
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)child);
		f = open(path, O_RDONLY | O_CLOEXEC);
		SUBJ_SYS(f);
		n = read(f, buf, sizeof(buf) - 1);
		close(f);
		SUBJ_CHECK(n > 0, "reading the state of child %d", (int)child);
		buf[n] = '\0';
		p = strrchr(buf, ')');
		SUBJ_CHECK(p && p[1] == ' ' && p[2] == 'Z', "child %d is no zombie", (int)child);
	} else if (is("pipe3")) {
		SUBJ_SYS(fstat(3, &st));
		SUBJ_CHECK(S_ISFIFO(st.st_mode), "fd 3 is not a pipe");
	}
}

static void sabotage(void)
{
	subj_fail("sabotaged (hold has no state of its own to corrupt)");
}

/* hold trace PID: keep PID traced, letting it run, until it exits. */
static int trace(pid_t pid)
{
	int status;

	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0) {
		dprintf(2, "hold trace: PTRACE_SEIZE %d: %s\n", (int)pid, strerror(errno));
		return 1;
	}
	dprintf(1, "tracing %d\n", (int)pid);
	for (;;) {
		pid_t w = waitpid(pid, &status, __WALL | WNOHANG);

		if (w < 0 || (w == pid && (WIFEXITED(status) || WIFSIGNALED(status))))
			return 0;
		if (w == pid && WIFSTOPPED(status)) {
			int sig = WSTOPSIG(status);

			/* Pass signals on; group-stops and events carry none. */
			if (status >> 16 || sig == SIGTRAP)
				sig = 0;
			ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig);
		}
		usleep(20000);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "trace"))
		return trace((pid_t)atoi(argv[2]));
	subj_init(argc, argv, "hold");
	if (subj.argc != 1)
		subj_usage();
	mode = subj.argv[0];
	setup();
	if (fd >= 0)
		subj_log("hold: fd %d\n", fd);
	if (child > 0 || sharer > 0)
		subj_log("hold: pid %d\n", (int)(child > 0 ? child : sharer));
	if (shm)
		subj_log("hold: addr %lx-%lx\n", (unsigned long)shm, (unsigned long)shm + SHM_LEN);
	if (huge)
		subj_log("hold: addr %lx-%lx\n", (unsigned long)huge, (unsigned long)huge + HUGE_LEN);
	verify();
	subj_ready();
	subj_loop(verify, sabotage);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	subj_pass();
}
