/*
 * events: the descriptors an event loop is made of survive a
 * checkpoint/restore.
 *
 *   an eventfd counter (non-blocking) whose count each round reads back and
 *     adds to, shared with a dup of it (one count through both)
 *   an eventfd in semaphore mode holding 4: each round takes one and gives
 *     it back; at the end exactly 4 can be taken, one at a time
 *   a signalfd for SIGUSR2 and SIGRTMIN+1, both blocked: each round queues
 *     SIGUSR2 with the round's number and reads it back through the
 *     signalfd; a SIGRTMIN+1 queued at start stays pending until the end
 *   timerfds: periodic (20 ms, CLOCK_MONOTONIC) whose expirations keep
 *     coming; one-shot 1000 s ahead (time left never grows); one that
 *     expired at start and is read only at the end (its expiration is
 *     kept); a CLOCK_REALTIME absolute one with TFD_TIMER_CANCEL_ON_SET
 *   an epoll watching the counter (data 0x1111), a pipe level-triggered
 *     holding a byte (0x4444), the periodic timer (0x3333) and a socket
 *     pair's end one-shot, fired once and disarmed (0x5555): epoll_wait
 *     reports exactly the ready ones with their data, the one-shot never,
 *     and its interest list (fdinfo) stays what it was
 *   a stream socket pair with 3000 unread bytes one way (a known stream:
 *     each round reads them and writes the next 3000, in one write, as a
 *     sender of one byte at a time would soon fill the send buffer with
 *     packets) and 100 the other way (read at the end), a send buffer size,
 *     O_NONBLOCK on one end
 *   a datagram socket pair: message boundaries hold; a seqpacket pair and
 *     another datagram pair hold messages from start to end
 *   an inotify watching a directory under wd 2 (wd 1 was removed): its
 *     watch list stays, and at the end a file made and removed there comes
 *     as IN_CREATE and IN_DELETE under that wd (no event waits in it before:
 *     a checkpoint refuses an inotify with events queued). The directory is
 *     held open too, as by a program that lists what it watches: how a
 *     checkpoint without CAP_DAC_READ_SEARCH names it
 *   every descriptor's status flags and close-on-exec unchanged
 * Worker threads (-t N) check flags and the epoll concurrently.
 */
#include "subject.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#define SOCK_FILL 3000
#define BACK_FILL 100
#define SNDBUF 50000

static int efd, efd_dup, semfd, sigfd, tper, tlong, texp, treal, ep, lt[2], sp[2], dp[2], qp[2], kp[2], ino, ino_wd;
static char ino_dir[PATH_MAX];
static int ino_dirfd;
static uint64_t counter = 5, per_ticks;
static int64_t tlong_left = INT64_MAX;
static unsigned round_;
static uint64_t sock_r, sock_w;
static char epinfo0[1024];
static int fl_fd[32], fl_val[32], fl_cx[32], nfl;
static volatile int stop_threads;

static unsigned char stream(uint64_t i)
{
	return (unsigned char)(subj_pattern(91, i / 8) >> (8 * (i % 8)));
}

static void save_flags(void)
{
	int all[] = { efd, efd_dup, semfd, sigfd, tper, tlong, texp, treal, ep, sp[0], sp[1], dp[0], dp[1], qp[0], qp[1],
		      kp[0], kp[1], ino };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		fl_fd[nfl] = all[i];
		fl_val[nfl] = fcntl(all[i], F_GETFL);
		fl_cx[nfl] = fcntl(all[i], F_GETFD);
		SUBJ_CHECK(fl_val[nfl] >= 0 && fl_cx[nfl] >= 0, "F_GETFL fd %d: %s", all[i], strerror(errno));
		nfl++;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The "tfd:" lines of the epoll's fdinfo as "fd:events:data", sorted (the
 * kernel lists them by the address of the file). A one-shot watch that
 * fired and one restored disarmed differ in EPOLLERR|EPOLLHUP, which the
 * kernel adds to every watch it is given: not compared. */
static void epoll_list(char *out, size_t len)
{
	char path[64], line[256], items[16][64], *sorted[16];
	FILE *f;
	size_t used = 0, n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	f = fopen(path, "re");
	SUBJ_CHECK(f != NULL, "open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		int tfd;
		unsigned events;
		unsigned long long data;
		if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3)
			continue;
		SUBJ_CHECK(n < 16, "epoll list too long");
		if (events & EPOLLONESHOT)
			events &= ~(unsigned)(EPOLLERR | EPOLLHUP);
		snprintf(items[n], sizeof(items[n]), "%d:%x:%llx", tfd, events, data);
		sorted[n] = items[n];
		n++;
	}
	fclose(f);
	qsort(sorted, n, sizeof(sorted[0]), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		used += (size_t)snprintf(out + used, len - used, "%s ", sorted[i]);
		SUBJ_CHECK(used < len, "epoll list too long");
	}
}

/* Checks that change nothing: safe from any thread. */
static void check_static(void)
{
	char now[1024];
	struct epoll_event ev[8];
	int n, seen_counter = 0, seen_lt = 0;

	for (int i = 0; i < nfl; i++) {
		SUBJ_CHECK(fcntl(fl_fd[i], F_GETFL) == fl_val[i], "fd %d: status flags %#x, were %#x", fl_fd[i],
			   fcntl(fl_fd[i], F_GETFL), fl_val[i]);
		SUBJ_CHECK(fcntl(fl_fd[i], F_GETFD) == fl_cx[i], "fd %d: close-on-exec changed", fl_fd[i]);
	}
	epoll_list(now, sizeof(now));
	SUBJ_CHECK(!strcmp(now, epinfo0), "epoll interest list is '%s', was '%s'", now, epinfo0);
	n = epoll_wait(ep, ev, 8, 0);
	SUBJ_CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		switch (ev[i].data.u64) {
		case 0x1111: seen_counter++; break;
		case 0x4444: seen_lt++; break;
		case 0x3333: break;  /* the periodic timer, when it has fired */
		default:
			subj_fail("epoll_wait reported data %#llx (events %#x)", (unsigned long long)ev[i].data.u64,
				  ev[i].events);
		}
	}
	SUBJ_CHECK(seen_counter == 1 && seen_lt == 1, "epoll_wait: counter seen %d times, pipe %d (want 1, 1)",
		   seen_counter, seen_lt);
}

static void check_timers(int final)
{
	struct itimerspec its;
	uint64_t t;

	SUBJ_SYS(timerfd_gettime(tper, &its));
	SUBJ_CHECK(its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == 20000000, "periodic interval %ld.%09ld",
		   (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
	if (read(tper, &t, 8) == 8)
		per_ticks += t;
	else
		SUBJ_CHECK(errno == EAGAIN, "read periodic timer: %s", strerror(errno));
	SUBJ_SYS(timerfd_gettime(tlong, &its));
	int64_t left = (int64_t)its.it_value.tv_sec * 1000000000 + its.it_value.tv_nsec;
	SUBJ_CHECK(left > 0 && left <= tlong_left, "one-shot timer: %lld ns left, was %lld", (long long)left,
		   (long long)tlong_left);
	tlong_left = left;
	SUBJ_SYS(timerfd_gettime(treal, &its));
	SUBJ_CHECK(its.it_value.tv_sec > 0 && its.it_value.tv_sec <= 2000, "realtime timer: %ld s left",
		   (long)its.it_value.tv_sec);
	if (final) {
		/* Wait for one more period at most 2 s: expirations still come. */
		uint64_t before = per_ticks;
		for (int i = 0; i < 200 && per_ticks == before; i++) {
			subj_sleep_ms(10);
			if (read(tper, &t, 8) == 8)
				per_ticks += t;
		}
		SUBJ_CHECK(per_ticks > before, "periodic timer stopped (%llu expirations)", (unsigned long long)before);
		SUBJ_CHECK(read(texp, &t, 8) == 8 && t == 1, "expired timer: %s, %llu expirations",
			   strerror(errno), (unsigned long long)t);
	}
}

static void fill_window(void)
{
	unsigned char b[SOCK_FILL];

	for (int i = 0; i < SOCK_FILL; i++)
		b[i] = stream(sock_w + (uint64_t)i);
	SUBJ_CHECK(write(sp[1], b, sizeof(b)) == sizeof(b), "socket write: %s", strerror(errno));
	sock_w += SOCK_FILL;
}

/* Everything written so far, and nothing more (sp[0] does not block). */
static void read_window(void)
{
	unsigned char b[SOCK_FILL + 1];
	ssize_t got = 0, n;

	while (got < SOCK_FILL && (n = read(sp[0], b + got, sizeof(b) - (size_t)got)) > 0)
		got += n;
	SUBJ_CHECK(got == SOCK_FILL, "socket held %zd bytes, want %d (%s)", got, SOCK_FILL, strerror(errno));
	SUBJ_CHECK(read(sp[0], b, 1) < 0 && errno == EAGAIN, "socket holds more than was written");
	for (int i = 0; i < SOCK_FILL; i++, sock_r++)
		SUBJ_CHECK(b[i] == stream(sock_r), "socket byte %llu is %u, want %u", (unsigned long long)sock_r, b[i],
			   stream(sock_r));
}

/* The inotify's one watch, still under its wd (adding it again gives it). */
static void check_inotify(void)
{
	int wd = inotify_add_watch(ino, ino_dir, IN_CREATE | IN_DELETE | IN_MASK_ADD);

	SUBJ_CHECK(wd == ino_wd, "inotify: %s is watched under wd %d, was %d (%s)", ino_dir, wd, ino_wd,
		   strerror(errno));
}

/* One event of the inotify: mask and name, under the watch's wd. */
static void expect_event(uint32_t mask, const char *name)
{
	union {
		struct inotify_event e;
		char buf[sizeof(struct inotify_event) + NAME_MAX + 1];
	} u;
	ssize_t n = -1;

	for (int i = 0; i < 200 && n < 0; i++) {
		n = read(ino, &u, sizeof(u));
		if (n < 0)
			subj_sleep_ms(10);
	}
	SUBJ_CHECK(n > 0, "inotify: no event for %s: %s", name, strerror(errno));
	SUBJ_CHECK(u.e.wd == ino_wd && (u.e.mask & mask) && u.e.len && !strcmp(u.e.name, name),
		   "inotify: event wd %d mask %#x name '%s', want wd %d mask %#x '%s'", u.e.wd, u.e.mask,
		   u.e.len ? u.e.name : "", ino_wd, mask, name);
}

static void verify(void)
{
	uint64_t v;
	struct signalfd_siginfo si;

	check_static();
	/* The counter, through the dup: both ends of one count. */
	SUBJ_CHECK(read(efd, &v, 8) == 8, "eventfd read: %s", strerror(errno));
	SUBJ_CHECK(v == counter, "eventfd count %llu, want %llu", (unsigned long long)v, (unsigned long long)counter);
	counter++;
	SUBJ_CHECK(write(efd_dup, &counter, 8) == 8, "eventfd write: %s", strerror(errno));
	/* The semaphore: one taken, one given back. */
	SUBJ_CHECK(read(semfd, &v, 8) == 8 && v == 1, "semaphore eventfd gave %llu: %s", (unsigned long long)v,
		   strerror(errno));
	v = 1;
	SUBJ_CHECK(write(semfd, &v, 8) == 8, "semaphore write: %s", strerror(errno));
	/* A signal through the signalfd, with its value. */
	union sigval val = { .sival_int = (int)round_ };
	SUBJ_SYS(sigqueue(getpid(), SIGUSR2, val));
	SUBJ_CHECK(read(sigfd, &si, sizeof(si)) == sizeof(si), "signalfd read: %s", strerror(errno));
	SUBJ_CHECK(si.ssi_signo == SIGUSR2 && si.ssi_int == (int)round_, "signalfd gave signal %u value %d, want %d %u",
		   si.ssi_signo, si.ssi_int, SIGUSR2, round_);
	/* The socket pair's window. */
	read_window();
	fill_window();
	/* Datagrams keep their boundaries. */
	SUBJ_CHECK(send(dp[1], "abc", 3, 0) == 3 && send(dp[1], "defgh", 5, 0) == 5, "datagram send: %s",
		   strerror(errno));
	char d[16];
	SUBJ_CHECK(recv(dp[0], d, sizeof(d), 0) == 3 && recv(dp[0], d + 3, sizeof(d), 0) == 5 &&
		   !memcmp(d, "abcdefgh", 8), "datagrams lost their boundaries");
	int sz;
	socklen_t sl = sizeof(sz);
	SUBJ_SYS(getsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &sz, &sl));
	SUBJ_CHECK(sz == 2 * SNDBUF, "SO_SNDBUF %d, want %d", sz, 2 * SNDBUF);
	check_timers(0);
	check_inotify();
	round_++;
}

/* The messages queued at start, whole and in order, and no more. */
static const char *const kept_msgs[] = { "first message", "second", "third" };

static void expect_messages(int fd, const char *what)
{
	char b[64];

	for (size_t i = 0; i < sizeof(kept_msgs) / sizeof(kept_msgs[0]); i++) {
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		SUBJ_CHECK(n == (ssize_t)strlen(kept_msgs[i]) && !memcmp(b, kept_msgs[i], (size_t)n),
			   "%s message %zu: got %zd bytes, want '%s' (%s)", what, i, n, kept_msgs[i], strerror(errno));
	}
	SUBJ_CHECK(recv(fd, b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EAGAIN, "%s: more messages than sent", what);
}

static void final_check(void)
{
	uint64_t v;
	struct signalfd_siginfo si;
	unsigned char c;
	int n = 0;

	check_timers(1);
	while (read(semfd, &v, 8) == 8)
		n++;
	SUBJ_CHECK(n == 4 && errno == EAGAIN, "semaphore eventfd gave %d, want 4 (%s)", n, strerror(errno));
	SUBJ_CHECK(read(sigfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == (unsigned)SIGRTMIN + 1 &&
		   si.ssi_int == 4242, "the signal queued at start is lost");
	read_window();
	SUBJ_CHECK(read(sp[0], &c, 1) < 0 && errno == EAGAIN, "socket holds more than was written");
	for (int i = 0; i < BACK_FILL; i++)
		SUBJ_CHECK(read(sp[1], &c, 1) == 1 && c == (unsigned char)(i * 7), "backward socket byte %d differs", i);
	expect_messages(qp[0], "seqpacket");
	expect_messages(kp[1], "datagram");
	char f[PATH_MAX + 8];
	snprintf(f, sizeof(f), "%s/made", ino_dir);
	int fd = open(f, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	SUBJ_SYS(fd);
	close(fd);
	expect_event(IN_CREATE, "made");
	SUBJ_SYS(unlink(f));
	expect_event(IN_DELETE, "made");
}

static void sabotage(void)
{
	uint64_t v = 1;

	/* One more count than the subject knows of. */
	SUBJ_CHECK(write(efd, &v, 8) == 8, "sabotage: %s", strerror(errno));
}

static void *worker(void *arg)
{
	(void)arg;
	while (!stop_threads) {
		int fl = fcntl(ep, F_GETFL);
		SUBJ_CHECK(fl == fcntl(ep, F_GETFL) && fl >= 0, "epoll flags unstable");
		char now[1024];
		epoll_list(now, sizeof(now));
		SUBJ_CHECK(!strcmp(now, epinfo0), "epoll interest list is '%s', was '%s' (worker)", now, epinfo0);
		subj_sleep_ms(5);
	}
	return NULL;
}

static void add(int fd, unsigned events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	SUBJ_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
}

int main(int argc, char **argv)
{
	sigset_t mask;
	struct itimerspec its = { .it_interval = { 0, 20000000 }, .it_value = { 0, 20000000 } };
	struct epoll_event ev;
	struct timespec now;

	subj_init(argc, argv, "events");
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR2);
	sigaddset(&mask, SIGRTMIN + 1);
	SUBJ_SYS(pthread_sigmask(SIG_BLOCK, &mask, NULL));
	SUBJ_SYS(efd = eventfd(5, EFD_NONBLOCK | EFD_CLOEXEC));
	SUBJ_SYS(efd_dup = fcntl(efd, F_DUPFD, 40));
	SUBJ_SYS(semfd = eventfd(4, EFD_SEMAPHORE | EFD_NONBLOCK));
	SUBJ_SYS(sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
	union sigval val = { .sival_int = 4242 };
	SUBJ_SYS(sigqueue(getpid(), SIGRTMIN + 1, val));

	SUBJ_SYS(tper = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
	SUBJ_SYS(timerfd_settime(tper, 0, &its, NULL));
	SUBJ_SYS(tlong = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
	struct itimerspec one = { .it_value = { 1000, 0 } };
	SUBJ_SYS(timerfd_settime(tlong, 0, &one, NULL));
	SUBJ_SYS(texp = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK));
	struct itimerspec soon = { .it_value = { 0, 1000000 } };
	SUBJ_SYS(timerfd_settime(texp, 0, &soon, NULL));
	SUBJ_SYS(treal = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC));
	clock_gettime(CLOCK_REALTIME, &now);
	struct itimerspec abs = { .it_value = { now.tv_sec + 1500, 0 } };
	SUBJ_SYS(timerfd_settime(treal, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &abs, NULL));

	SUBJ_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	int sz = SNDBUF;
	SUBJ_SYS(setsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)));
	fill_window();
	unsigned char back[BACK_FILL];
	for (int i = 0; i < BACK_FILL; i++)
		back[i] = (unsigned char)(i * 7);
	SUBJ_CHECK(write(sp[0], back, sizeof(back)) == sizeof(back), "fill socket back: %s", strerror(errno));
	SUBJ_SYS(fcntl(sp[0], F_SETFL, O_NONBLOCK));
	SUBJ_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, dp));
	SUBJ_SYS(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, qp));
	SUBJ_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, kp));
	for (size_t i = 0; i < sizeof(kept_msgs) / sizeof(kept_msgs[0]); i++)
		SUBJ_CHECK(send(qp[1], kept_msgs[i], strlen(kept_msgs[i]), 0) == (ssize_t)strlen(kept_msgs[i]) &&
			   send(kp[0], kept_msgs[i], strlen(kept_msgs[i]), 0) == (ssize_t)strlen(kept_msgs[i]),
			   "queueing messages: %s", strerror(errno));

	/* wd 1 goes, so that the one kept is wd 2 */
	subj_path(ino_dir, sizeof(ino_dir), "inotify-dir");
	SUBJ_CHECK(mkdir(ino_dir, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", ino_dir, strerror(errno));
	SUBJ_SYS(ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
	int first = inotify_add_watch(ino, subj.dir, IN_CREATE);
	SUBJ_SYS(first);
	SUBJ_SYS(inotify_rm_watch(ino, first));
	SUBJ_SYS(ino_wd = inotify_add_watch(ino, ino_dir, IN_CREATE | IN_DELETE));
	SUBJ_SYS(ino_dirfd = open(ino_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	SUBJ_CHECK(ino_wd != first, "inotify gave wd %d again", ino_wd);
	char drain[4096];
	subj_sleep_ms(20);
	while (read(ino, drain, sizeof(drain)) > 0)
		;  /* the IN_IGNORED of wd 1 */
	SUBJ_SYS(pipe2(lt, O_CLOEXEC));
	SUBJ_CHECK(write(lt[1], "x", 1) == 1, "write pipe");
	SUBJ_SYS(ep = epoll_create1(EPOLL_CLOEXEC));
	add(efd, EPOLLIN, 0x1111);
	add(lt[0], EPOLLIN, 0x4444);
	add(tper, EPOLLIN, 0x3333);
	add(sp[1], EPOLLIN | EPOLLONESHOT, 0x5555);
	/* Fire the one-shot: the socket's end 1 has the 100 bytes to read. */
	int n = epoll_wait(ep, &ev, 1, 1000);
	while (n == 1 && ev.data.u64 != 0x5555)
		n = epoll_wait(ep, &ev, 1, 1000);
	SUBJ_CHECK(n == 1, "the one-shot socket never fired");
	subj_sleep_ms(5);  /* texp expires */
	epoll_list(epinfo0, sizeof(epinfo0));
	save_flags();

	subj_run_threaded(worker, verify, sabotage, &stop_threads);
	final_check();
	subj_pass();
}
