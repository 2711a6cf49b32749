/*
 * locks: file locks of the three kinds, each seen from an open file
 * description that does not hold it (so the kernel's view is checked, not
 * our memory of it):
 *   a  flock LOCK_EX through an fd that was dup'ed (one description, one lock)
 *   b  POSIX record locks (fcntl F_SETLK): a write lock on bytes 10-19 and a
 *      read lock from byte 100 to the end, plus a second, read-only
 *      description of the same file kept open all along (closing any fd of
 *      the file would drop the process's POSIX locks on it)
 *   c  OFD locks (F_OFD_SETLK) on two descriptions: a write lock on bytes
 *      0-49 and a read lock on 200-299
 *   d  flock LOCK_SH through a read-only fd
 * Sabotage drops a's lock. With -t N, N threads sleep beside it (the locks
 * belong to the process, whatever thread runs).
 */
#include "subject.h"

#include <fcntl.h>
#include <sys/file.h>

static int fa, fa_dup, fb, fb_ro, fc1, fc2, fd_sh;

static int open_file(const char *leaf, int flags)
{
	char path[PATH_MAX];
	int f;

	subj_path(path, sizeof(path), leaf);
	f = open(path, flags | O_CREAT | O_CLOEXEC, 0600);
	if (f < 0)
		subj_fail("open %s: %s", path, strerror(errno));
	return f;
}

static void set_lock(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	SUBJ_SYS(fcntl(fd, cmd, &fl));
}

/* What a lock of type over [start, start+len) through fd would run into:
 * its type (F_UNLCK: nothing), and its owner's pid in *pid. */
static short conflict(int fd, short type, off_t start, off_t len, pid_t *pid)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	SUBJ_SYS(fcntl(fd, F_OFD_GETLK, &fl));
	if (pid)
		*pid = fl.l_pid;
	return fl.l_type;
}

static void verify(void)
{
	int other;
	pid_t pid;

	/* a: held exclusively through its description, which the dup shares. */
	other = open_file("locks.a", O_RDWR);
	SUBJ_CHECK(flock(other, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK, "a: flock LOCK_EX no longer held");
	close(other);
	SUBJ_SYS(flock(fa_dup, LOCK_EX | LOCK_NB));  /* ours: taking it again is a no-op */

	/* b: the process's record locks, as another description sees them. */
	SUBJ_CHECK(conflict(fb_ro, F_RDLCK, 10, 10, &pid) == F_WRLCK && pid == getpid(),
		   "b: POSIX write lock on bytes 10-19 no longer held by us (pid %d)", (int)pid);
	SUBJ_CHECK(conflict(fb_ro, F_RDLCK, 9, 1, NULL) == F_UNLCK, "b: byte 9 locked");
	SUBJ_CHECK(conflict(fb_ro, F_WRLCK, 20, 80, NULL) == F_UNLCK, "b: bytes 20-99 locked");
	SUBJ_CHECK(conflict(fb_ro, F_RDLCK, 100, 0, NULL) == F_UNLCK, "b: a read lock from byte 100 blocked");
	SUBJ_CHECK(conflict(fb_ro, F_WRLCK, 1000000, 1, &pid) == F_RDLCK && pid == getpid(),
		   "b: POSIX read lock from byte 100 to the end no longer held");

	/* c: each description's own lock. */
	other = open_file("locks.c", O_RDWR);
	SUBJ_CHECK(conflict(other, F_RDLCK, 0, 50, &pid) == F_WRLCK && pid == -1, "c: OFD write lock on 0-49 gone");
	SUBJ_CHECK(conflict(other, F_RDLCK, 50, 150, NULL) == F_UNLCK, "c: bytes 50-199 locked");
	SUBJ_CHECK(conflict(other, F_WRLCK, 250, 10, NULL) == F_RDLCK, "c: OFD read lock on 200-299 gone");
	SUBJ_CHECK(conflict(fc1, F_WRLCK, 250, 10, NULL) == F_UNLCK && conflict(fc2, F_WRLCK, 250, 10, NULL) == F_RDLCK,
		   "c: the read lock is no longer fc1's");
	SUBJ_CHECK(conflict(fc2, F_WRLCK, 0, 10, NULL) == F_UNLCK && conflict(fc1, F_RDLCK, 0, 10, NULL) == F_WRLCK,
		   "c: the write lock is no longer fc2's");
	close(other);

	/* d: shared: another may share it, not take it. */
	other = open_file("locks.d", O_RDONLY);
	SUBJ_CHECK(flock(other, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "d: flock LOCK_SH no longer held");
	SUBJ_SYS(flock(other, LOCK_SH | LOCK_NB));
	close(other);
}

static void sabotage(void)
{
	SUBJ_SYS(flock(fa, LOCK_UN));
}

int main(int argc, char **argv)
{
	subj_init(argc, argv, "locks");
	fa = open_file("locks.a", O_RDWR);
	SUBJ_SYS(flock(fa, LOCK_EX));
	fa_dup = fcntl(fa, F_DUPFD, 20);
	SUBJ_SYS(fa_dup);
	fb = open_file("locks.b", O_RDWR);
	set_lock(fb, F_SETLK, F_WRLCK, 10, 10);
	set_lock(fb, F_SETLK, F_RDLCK, 100, 0);
	fb_ro = open_file("locks.b", O_RDONLY);
	fc1 = open_file("locks.c", O_RDWR);
	fc2 = open_file("locks.c", O_RDWR);
	set_lock(fc2, F_OFD_SETLK, F_WRLCK, 0, 50);
	set_lock(fc1, F_OFD_SETLK, F_RDLCK, 200, 100);
	fd_sh = open_file("locks.d", O_RDONLY);
	SUBJ_SYS(flock(fd_sh, LOCK_SH));
	subj_run_threaded(subj_idle_worker, verify, sabotage, &subj_idle_stop);
	subj_pass();
}
