/*
 * roamd's state directory (--state-dir, default /var/lib/roam/NAME, mode
 * 0700): what must outlive one roamd process. Today one file, `seq`, the
 * job-id sequence.
 *
 * A job id (HOST.SEQ) must never name two jobs, also across restarts, or
 * `roam wait h1.1` could find a later job. So ids are reserved in blocks:
 * before handing out the first id of a block, roamd writes the block's last
 * id to `seq` (a temporary file, fsync, rename, fsync of the folder). The
 * next roamd starts after that: a restart skips at most SEQ_BLOCK ids and
 * never reuses one, and the disk is touched once per SEQ_BLOCK jobs, not on
 * every spawn.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/roamd.h"

#define SEQ_BLOCK 1024
#define SEQ_FILE  "seq"

/* Creates dir and its missing parents (0755), the last one 0700. */
static int make_dirs(const char *dir)
{
	char path[sizeof(roamd->cfg.state_dir)];
	struct stat st;

	if (strfmt(path, sizeof(path), "%s", dir) < 0)
		return -ENAMETOOLONG;
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != geteuid())
		return -EPERM;
	/* Nobody else reads or plants roamd's state. */
	if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) < 0)
		return -errno;
	return 0;
}

/* Reads the last reserved id: 0 for a new state directory. */
static int read_seq(int dfd, uint64_t *seq)
{
	char buf[32], *end;
	ssize_t n;
	int fd = openat(dfd, SEQ_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	*seq = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	errno = 0;
	*seq = strtoull(buf, &end, 10);
	if (end == buf || (*end && strcmp(end, "\n")) || errno)
		return -EBADMSG;
	return 0;
}

/* Makes upto the last id reserved, durably, before any of it is used. */
static int write_seq(uint64_t upto)
{
	char buf[32];
	int fd, n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", upto), err = 0;
	ssize_t w;

	fd = openat(roamd->state_fd, SEQ_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	w = write(fd, buf, (size_t)n);
	if (w != n)
		err = w < 0 ? -errno : -EIO;
	else if (fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && renameat(roamd->state_fd, SEQ_FILE ".tmp", roamd->state_fd, SEQ_FILE) < 0)
		err = -errno;
	if (!err && fsync(roamd->state_fd) < 0)
		err = -errno;
	if (err)
		unlinkat(roamd->state_fd, SEQ_FILE ".tmp", 0);
	return err;
}

int state_init(const char *dir)
{
	uint64_t seq;
	int err;

	if ((err = make_dirs(dir)))
		return err;
	roamd->state_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (roamd->state_fd < 0)
		return -errno;
	if ((err = read_seq(roamd->state_fd, &seq)))
		return err;
	/* Every id up to the last reservation may have been used. */
	roamd->next_seq = roamd->seq_limit = seq;
	return 0;
}

uint64_t state_next_seq(void)
{
	int err;

	if (roamd->next_seq == roamd->seq_limit) {
		if ((err = write_seq(roamd->seq_limit + SEQ_BLOCK))) {
			log_warn("state %s/%s: cannot reserve job ids: %s", roamd->cfg.state_dir, SEQ_FILE,
				 strerror(-err));
			return 0;
		}
		roamd->seq_limit += SEQ_BLOCK;
	}
	return ++roamd->next_seq;
}
