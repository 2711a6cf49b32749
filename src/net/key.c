/*
 * Cluster key files (see key.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "net/key.h"

const char *key_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case KEY_ERR_MODE: return "key file is readable or writable by group or others (chmod 600)";
	case KEY_ERR_FORMAT: return "key file does not hold 64 hex digits";
	default: return strerror(err);
	}
}

int key_generate(const char *path)
{
	uint8_t key[LINK_KEY_SIZE];
	char hex[2 * LINK_KEY_SIZE + 2];
	int fd, err = 0;
	size_t n;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	n = strlen(hex);
	hex[n++] = '\n';
	/* O_EXCL made the file ours; fchmod undoes a permissive umask's opposite. */
	if (fchmod(fd, 0600) < 0 || write(fd, hex, n) != (ssize_t)n || fsync(fd) < 0)
		err = errno ? -errno : -EIO;
	close(fd);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hex, sizeof(hex));
	if (err)
		unlink(path);
	return err;
}

int key_load(const char *path, uint8_t key[LINK_KEY_SIZE])
{
	char buf[256];
	struct stat st;
	size_t bin_len = 0;
	const char *end;
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto out_close;
	}
	if (st.st_mode & 077) {
		err = -KEY_ERR_MODE;
		goto out_close;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		err = -errno;
		goto out_close;
	}
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	if (n != 2 * LINK_KEY_SIZE ||
	    sodium_hex2bin(key, LINK_KEY_SIZE, buf, (size_t)n, NULL, &bin_len, &end) ||
	    bin_len != LINK_KEY_SIZE || *end)
		err = -KEY_ERR_FORMAT;
	sodium_memzero(buf, sizeof(buf));
out_close:
	close(fd);
	return err;
}
