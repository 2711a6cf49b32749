/*
 * fds: file descriptors survive a checkpoint/restore.
 *
 *   a regular file O_RDWR at offset 123 (close-on-exec), the same file
 *     opened again O_RDONLY at offset 200 (a distinct open file description,
 *     no close-on-exec), a file O_WRONLY
 *   an O_APPEND file: each round seeks to 0 and writes a record, which must
 *     land at the end (size and offset checked)
 *   a directory fd (same inode, openat through it works)
 *   its own /proc/self/fd, open as a directory: still its own (whatever
 *     its PID now) and still listing its fds
 *   /dev/null (O_RDWR, also dup2'd to fd 250) and /dev/urandom
 *   a pipe with both ends here and 5000 unread bytes in it; each round
 *     writes one byte and reads one, so the content is a sliding window of a
 *     known stream, drained and compared at the end
 *   dup() and F_DUPFD_CLOEXEC copies share their file's offset (and kcmp
 *     says KCMP_FILE equal), while the distinct opens stay distinct
 *   stdout and stderr share one open file description iff they did at
 *     start (the harness runs subjects with >>log 2>&1)
 *   exactly the same set of fds is open (nothing leaked in by the restorer),
 *     each with the same status flags (F_GETFL: O_NONBLOCK on the pipe's
 *     write end, O_DSYNC on the write-only file, an O_PATH fd, ...)
 * Worker threads (-t N) check flags and sharing concurrently.
 */
#include "subject.h"

#include <dirent.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

#define PIPE_FILL 5000

static int fd_rw, fd_ro, fd_wo, fd_app, fd_dir, fd_null, fd_null2, fd_rand;
static int fd_sh, fd_dup, fd_dupcx, pfd[2], fd_opath, fd_procdir;
static int fl_fd[32], fl_val[32], nfl;	/* F_GETFL of each fd at start */
static ino_t dir_ino;
static unsigned nrec, round_;
static uint64_t pipe_r, pipe_w;		/* stream bytes read / written */
static int std_shared, std1_flags;
static volatile int stop_threads;
static char fdset0[1024];	/* open fds at start, "0 1 2 ..." */

static int kcmp_file(int a, int b)
{
	pid_t p = getpid();

	return (int)syscall(SYS_kcmp, p, p, KCMP_FILE, a, b);
}

static unsigned char stream(uint64_t i)
{
	return (unsigned char)(subj_pattern(77, i / 8) >> (8 * (i % 8)));
}

static int open_in_dir(const char *leaf, int flags)
{
	char path[PATH_MAX];
	int fd;

	subj_path(path, sizeof(path), leaf);
	fd = open(path, flags, 0600);
	if (fd < 0)
		subj_fail("open %s: %s", path, strerror(errno));
	return fd;
}

static void expect_fl(int fd, int acc, int extra, const char *what)
{
	int fl = fcntl(fd, F_GETFL);

	SUBJ_CHECK(fl >= 0, "%s: F_GETFL: %s", what, strerror(errno));
	SUBJ_CHECK((fl & O_ACCMODE) == acc, "%s (fd %d): access mode %#x, want %#x", what, fd,
		   fl & O_ACCMODE, acc);
	SUBJ_CHECK((fl & extra) == extra, "%s (fd %d): flags %#x lack %#x", what, fd, fl, extra);
}

static void expect_cloexec(int fd, int want, const char *what)
{
	int fl = fcntl(fd, F_GETFD);

	SUBJ_CHECK(fl >= 0, "%s: F_GETFD: %s", what, strerror(errno));
	SUBJ_CHECK(!!(fl & FD_CLOEXEC) == want, "%s (fd %d): close-on-exec is %d, want %d", what,
		   fd, !!(fl & FD_CLOEXEC), want);
}

static void expect_chr(int fd, unsigned maj, unsigned min, const char *what)
{
	struct stat st;

	SUBJ_SYS(fstat(fd, &st));
	SUBJ_CHECK(S_ISCHR(st.st_mode) && major(st.st_rdev) == maj && minor(st.st_rdev) == min,
		   "%s (fd %d) is not the character device %u:%u", what, fd, maj, min);
}

static void expect_same(int a, int b, int same, const char *what)
{
	int r = kcmp_file(a, b);

	if (r < 0 && errno == ENOSYS)
		return;
	SUBJ_CHECK(r >= 0, "kcmp: %s", strerror(errno));
	SUBJ_CHECK((r == 0) == same, "%s: fds %d and %d %s one open file description", what, a, b,
		   same ? "no longer share" : "now share");
}

/* fd_procdir is the fd directory of this process, whatever its PID now. */
static void check_procdir(void)
{
	char link[64], want[64], got[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd_procdir);
	snprintf(want, sizeof(want), "/proc/%d/fd", (int)getpid());
	n = readlink(link, got, sizeof(got) - 1);
	SUBJ_CHECK(n > 0, "readlink %s: %s", link, strerror(errno));
	got[n] = '\0';
	SUBJ_CHECK(!strcmp(got, want), "fd %d is %s, not %s", fd_procdir, got, want);
	SUBJ_CHECK(faccessat(fd_procdir, "0", F_OK, 0) == 0, "fd 0 not listed through fd %d", fd_procdir);
}

static void save_flags(void)
{
	int all[] = { 0, 1, 2, fd_rw, fd_ro, fd_wo, fd_app, fd_dir, fd_null, fd_null2, fd_rand,
		      fd_sh, fd_dup, fd_dupcx, pfd[0], pfd[1], fd_opath };
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		fl_fd[nfl] = all[i];
		fl_val[nfl] = fcntl(all[i], F_GETFL);
		SUBJ_CHECK(fl_val[nfl] >= 0, "F_GETFL fd %d: %s", all[i], strerror(errno));
		nfl++;
	}
}

/* Checks that do not move any offset: safe from any thread. */
static void check_static(void)
{
	struct stat st;
	int i;

	for (i = 0; i < nfl; i++)
		SUBJ_CHECK(fcntl(fl_fd[i], F_GETFL) == fl_val[i], "fd %d: status flags %#x, were %#x",
			   fl_fd[i], fcntl(fl_fd[i], F_GETFL), fl_val[i]);

	expect_fl(fd_rw, O_RDWR, 0, "O_RDWR file");
	expect_fl(fd_ro, O_RDONLY, 0, "O_RDONLY file");
	expect_fl(fd_wo, O_WRONLY, 0, "O_WRONLY file");
	expect_fl(fd_app, O_WRONLY, O_APPEND, "O_APPEND file");
	expect_fl(fd_null, O_RDWR, 0, "/dev/null");
	expect_cloexec(fd_rw, 1, "O_RDWR file");
	expect_cloexec(fd_ro, 0, "O_RDONLY file");
	expect_cloexec(fd_sh, 0, "shared file");
	expect_cloexec(fd_dup, 0, "dup");
	expect_cloexec(fd_dupcx, 1, "F_DUPFD_CLOEXEC copy");
	SUBJ_CHECK(lseek(fd_ro, 0, SEEK_CUR) == 200, "O_RDONLY file offset %lld, want 200",
		   (long long)lseek(fd_ro, 0, SEEK_CUR));
	SUBJ_SYS(fstat(fd_dir, &st));
	SUBJ_CHECK(S_ISDIR(st.st_mode) && st.st_ino == dir_ino, "directory fd changed");
	SUBJ_SYS(fstatat(fd_dir, "fds-rw.dat", &st, 0));
	SUBJ_CHECK(st.st_size == 1000, "fds-rw.dat through the directory fd: size %lld",
		   (long long)st.st_size);
	check_procdir();
	expect_chr(fd_null, 1, 3, "/dev/null");
	expect_chr(fd_null2, 1, 3, "/dev/null at fd 250");
	expect_chr(fd_rand, 1, 9, "/dev/urandom");
	expect_same(fd_sh, fd_dup, 1, "dup");
	expect_same(fd_sh, fd_dupcx, 1, "F_DUPFD_CLOEXEC");
	expect_same(fd_null, fd_null2, 1, "dup2 of /dev/null");
	expect_same(fd_rw, fd_ro, 0, "two opens of one file");
	expect_same(1, 2, std_shared, "stdout and stderr");
	expect_fl(1, fcntl(1, F_GETFL) & O_ACCMODE, std1_flags & O_APPEND, "stdout");
}

/* The open fds as a string, without the one used to list them. */
static void list_fds(char *buf, size_t len)
{
	int fds[512], n = 0, i, j, dfd;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t off = 0;

	SUBJ_CHECK(d != NULL, "opendir /proc/self/fd: %s", strerror(errno));
	dfd = dirfd(d);
	while ((e = readdir(d)) && n < 512)
		if (e->d_name[0] != '.' && atoi(e->d_name) != dfd)
			fds[n++] = atoi(e->d_name);
	closedir(d);
	for (i = 1; i < n; i++)	/* insertion sort: readdir order is not ours */
		for (j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
			int t = fds[j];

			fds[j] = fds[j - 1];
			fds[j - 1] = t;
		}
	buf[0] = '\0';
	for (i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%d ", fds[i]);
}

static void check_fdset(void)
{
	char now[sizeof(fdset0)];

	list_fds(now, sizeof(now));
	SUBJ_CHECK(!strcmp(now, fdset0), "open fds are now '%s', were '%s'", now, fdset0);
}

static void verify(void)
{
	char buf[64];
	unsigned char c;
	struct stat st;
	off_t off;
	int n;

	check_static();
	check_fdset();
	SUBJ_CHECK(lseek(fd_rw, 0, SEEK_CUR) == 123, "O_RDWR file offset %lld, want 123",
		   (long long)lseek(fd_rw, 0, SEEK_CUR));
	SUBJ_CHECK(write(fd_ro, "", 0) < 0 && errno == EBADF, "write to O_RDONLY fd did not fail");
	SUBJ_CHECK(read(fd_wo, buf, 0) < 0 && errno == EBADF, "read from O_WRONLY fd did not fail");
	SUBJ_CHECK(pread(fd_rw, buf, 8, 992) == 8 && !memcmp(buf, "-the-end", 8),
		   "O_RDWR file content changed");

	/* O_APPEND: a write after seeking to 0 still goes to the end. */
	SUBJ_SYS(lseek(fd_app, 0, SEEK_SET));
	n = snprintf(buf, sizeof(buf), "rec %010u\n", nrec);
	SUBJ_CHECK(n == 15 && write(fd_app, buf, 15) == 15, "append: %s", strerror(errno));
	nrec++;
	SUBJ_SYS(fstat(fd_app, &st));
	SUBJ_CHECK(st.st_size == (off_t)nrec * 15, "append file size %lld, want %lld",
		   (long long)st.st_size, (long long)nrec * 15);
	SUBJ_CHECK(lseek(fd_app, 0, SEEK_CUR) == st.st_size, "append offset not at the end");

	/* /dev/null and /dev/urandom still behave as such. */
	SUBJ_CHECK(write(fd_null, "xxxxx", 5) == 5, "write /dev/null: %s", strerror(errno));
	SUBJ_CHECK(read(fd_null, buf, 5) == 0, "read /dev/null did not give EOF");
	SUBJ_CHECK(read(fd_rand, buf, 16) == 16, "read /dev/urandom: %s", strerror(errno));

	/* Shared offsets. */
	off = (off_t)(round_++ * 37 % 4000);
	SUBJ_SYS(lseek(fd_sh, off, SEEK_SET));
	SUBJ_CHECK(lseek(fd_dup, 0, SEEK_CUR) == off && lseek(fd_dupcx, 0, SEEK_CUR) == off,
		   "dup'd fds do not follow the offset %lld", (long long)off);
	SUBJ_SYS(lseek(fd_dupcx, off + 5, SEEK_SET));
	SUBJ_CHECK(lseek(fd_sh, 0, SEEK_CUR) == off + 5, "dup'd fds do not share the offset");

	/* The pipe: unread bytes are still there, and it still flows. */
	SUBJ_SYS(ioctl(pfd[0], FIONREAD, &n));
	SUBJ_CHECK(n == PIPE_FILL, "pipe holds %d bytes, want %d", n, PIPE_FILL);
	c = stream(pipe_w);
	SUBJ_CHECK(write(pfd[1], &c, 1) == 1, "write pipe: %s", strerror(errno));
	pipe_w++;
	SUBJ_CHECK(read(pfd[0], &c, 1) == 1, "read pipe: %s", strerror(errno));
	SUBJ_CHECK(c == stream(pipe_r), "pipe byte %llu is %#x, want %#x",
		   (unsigned long long)pipe_r, c, stream(pipe_r));
	pipe_r++;
}

static void sabotage(void)
{
	SUBJ_SYS(lseek(fd_rw, 7, SEEK_SET));
}

static void *worker(void *arg)
{
	while (!stop_threads) {
		check_static();
		subj_sleep_ms(5);
	}
	return NULL;
}

static void drain_pipe(void)
{
	unsigned char buf[PIPE_FILL];
	size_t got = 0;
	int i;

	while (got < sizeof(buf)) {
		ssize_t n = read(pfd[0], buf + got, sizeof(buf) - got);

		SUBJ_CHECK(n > 0, "drain pipe: %s", n ? strerror(errno) : "EOF");
		got += (size_t)n;
	}
	for (i = 0; i < PIPE_FILL; i++, pipe_r++)
		SUBJ_CHECK(buf[i] == stream(pipe_r), "pipe byte %llu is %#x, want %#x",
			   (unsigned long long)pipe_r, buf[i], stream(pipe_r));
	SUBJ_SYS(close(pfd[1]));
	SUBJ_CHECK(read(pfd[0], buf, 1) == 0, "pipe not empty after draining");
}

int main(int argc, char **argv)
{
	char buf[1000];
	struct stat st;
	int i;

	subj_init(argc, argv, "fds");
	fd_rw = open_in_dir("fds-rw.dat", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC);
	memset(buf, 'r', sizeof(buf));
	memcpy(buf + 992, "-the-end", 8);
	SUBJ_CHECK(write(fd_rw, buf, sizeof(buf)) == sizeof(buf), "write: %s", strerror(errno));
	SUBJ_SYS(lseek(fd_rw, 123, SEEK_SET));
	fd_ro = open_in_dir("fds-rw.dat", O_RDONLY);
	SUBJ_SYS(lseek(fd_ro, 200, SEEK_SET));
	fd_wo = open_in_dir("fds-wo.dat", O_WRONLY | O_CREAT | O_TRUNC | O_DSYNC);
	SUBJ_CHECK(write(fd_wo, "0123456789", 10) == 10, "write: %s", strerror(errno));
	fd_app = open_in_dir("fds-append.dat", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
	fd_dir = open(subj.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	SUBJ_SYS(fd_dir);
	SUBJ_SYS(fstat(fd_dir, &st));
	dir_ino = st.st_ino;
	fd_null = open("/dev/null", O_RDWR);
	SUBJ_SYS(fd_null);
	fd_null2 = dup2(fd_null, 250);
	SUBJ_CHECK(fd_null2 == 250, "dup2: %s", strerror(errno));
	fd_rand = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	SUBJ_SYS(fd_rand);
	fd_sh = open_in_dir("fds-shared.dat", O_RDWR | O_CREAT | O_TRUNC);
	memset(buf, 's', sizeof(buf));
	for (i = 0; i < 5; i++)
		SUBJ_CHECK(write(fd_sh, buf, sizeof(buf)) == sizeof(buf), "write: %s", strerror(errno));
	fd_dup = dup(fd_sh);
	SUBJ_SYS(fd_dup);
	fd_dupcx = fcntl(fd_sh, F_DUPFD_CLOEXEC, 100);
	SUBJ_CHECK(fd_dupcx >= 100, "F_DUPFD_CLOEXEC: %s", strerror(errno));
	SUBJ_SYS(pipe(pfd));
	for (pipe_w = 0; pipe_w < PIPE_FILL; pipe_w++) {
		unsigned char c = stream(pipe_w);

		SUBJ_CHECK(write(pfd[1], &c, 1) == 1, "fill pipe: %s", strerror(errno));
	}
	SUBJ_SYS(fcntl(pfd[1], F_SETFL, O_NONBLOCK));
	fd_opath = open(subj.dir, O_PATH | O_CLOEXEC);
	SUBJ_SYS(fd_opath);
	fd_procdir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	SUBJ_SYS(fd_procdir);
	save_flags();
	std_shared = kcmp_file(1, 2) == 0;
	std1_flags = fcntl(1, F_GETFL);
	subj_log("stdout and stderr %s\n", std_shared ? "shared" : "separate");

	list_fds(fdset0, sizeof(fdset0));
	subj_run_threaded(worker, verify, sabotage, &stop_threads);
	drain_pipe();
	subj_pass();
}
