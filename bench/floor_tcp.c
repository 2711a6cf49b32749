/*
 * floor_tcp: the floor of the migration benchmark, and the copy step of
 * CRIU's cold migration in it. Both sides run in their own network
 * namespace (the harness starts each under nsenter); they talk over one TCP
 * connection.
 *
 *   floor_tcp recv ADDR PORT              receive one transfer into fresh memory
 *   floor_tcp send ADDR PORT SIZE         send SIZE bytes (K/M/G) of random data
 *   floor_tcp recv-dir ADDR PORT DIR      receive files into DIR (made if missing)
 *   floor_tcp send-dir ADDR PORT DIR      send DIR's regular files (not recursive)
 *
 * The receivers listen on ADDR:PORT, print "listening" once they do, take
 * one connection, and print "recv_us N bytes=B" when it is done. The memory
 * receiver maps fresh anonymous memory for the announced size (4 KiB pages,
 * no THP, as a restored process gets) and reads straight into it: its page
 * faults are part of the floor, as a restore pays for them too. The senders
 * time from the connect to the receiver's one-byte acknowledgement, sent
 * once everything is in place, and print "floor_us N bytes=B" (send) or
 * "copy_us N bytes=B files=F" (send-dir). The data sent by send is
 * random-filled memory mapped and touched before the clock starts, like a
 * running process's memory.
 *
 * Wire format: send: an 8-byte little-endian size, then the bytes. send-dir:
 * per file a 4-byte little-endian name length (1..255, no '/'), the name,
 * an 8-byte little-endian size, the bytes; a zero name length ends it. The
 * receiver answers one byte, 'k'. Either side gives up after 300 s.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster.h"

#define CHUNK (1u << 20)

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static int make_addr(const char *host, const char *port, struct sockaddr_in *sa)
{
	char *end;
	unsigned long p = strtoul(port, &end, 10);

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (*end || end == port || p == 0 || p > 65535 || inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -1;
	sa->sin_port = htons((uint16_t)p);
	return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = read(fd, (char *)buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Listens, says so on stdout, and returns the one accepted connection. */
static int accept_one(const struct sockaddr_in *sa)
{
	int one = 1, ls, fd;

	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(ls, (const struct sockaddr *)sa, sizeof(*sa)) || listen(ls, 1)) {
		perror("floor_tcp: listen");
		return -1;
	}
	printf("listening\n");
	fflush(stdout);
	fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		perror("floor_tcp: accept");
	close(ls);
	return fd;
}

static int connect_to(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof(*sa))) {
		perror("floor_tcp: connect");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int recv_mem(const struct sockaddr_in *sa)
{
	unsigned char hdr[8];
	unsigned char *dst;
	uint64_t t0, size;
	int fd = accept_one(sa);

	if (fd < 0)
		return 1;
	t0 = mono_us();
	if (read_full(fd, hdr, sizeof(hdr))) {
		fprintf(stderr, "floor_tcp: short header\n");
		return 1;
	}
	size = get_le(hdr, 8);
	dst = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED) {
		perror("floor_tcp: mmap");
		return 1;
	}
	(void)madvise(dst, size, MADV_NOHUGEPAGE);
	if (read_full(fd, dst, size) || write_full(fd, "k", 1)) {
		fprintf(stderr, "floor_tcp: transfer cut short\n");
		return 1;
	}
	printf("recv_us %llu bytes=%llu\n", (unsigned long long)(mono_us() - t0),
	    (unsigned long long)size);
	close(fd);
	return 0;
}

static int send_mem(const struct sockaddr_in *sa, size_t size)
{
	unsigned char hdr[8], ack;
	uint64_t *src, x = 0x243f6a8885a308d3ull, t0;
	int fd;

	src = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED) {
		perror("floor_tcp: mmap");
		return 1;
	}
	(void)madvise(src, size, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < size / sizeof(*src); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		src[i] = x;
	}
	put_le(hdr, size, 8);
	t0 = mono_us();
	fd = connect_to(sa);
	if (fd < 0)
		return 1;
	if (write_full(fd, hdr, sizeof(hdr)) || write_full(fd, src, size) ||
	    read_full(fd, &ack, 1) || ack != 'k') {
		fprintf(stderr, "floor_tcp: transfer failed\n");
		return 1;
	}
	printf("floor_us %llu bytes=%zu\n", (unsigned long long)(mono_us() - t0), size);
	close(fd);
	return 0;
}

/* One file from the connection into DIR/name. */
static int recv_file(int fd, int dirfd, const char *name, uint64_t size, char *buf)
{
	int out = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = -1;

	if (out < 0) {
		perror("floor_tcp: create");
		return -1;
	}
	while (size) {
		size_t n = size < CHUNK ? (size_t)size : CHUNK;
		ssize_t got = read(fd, buf, n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0 || write_full(out, buf, (size_t)got))
			goto out;
		size -= (uint64_t)got;
	}
	rc = 0;
out:
	close(out);
	return rc;
}

static int recv_dir(const struct sockaddr_in *sa, const char *dir)
{
	unsigned char hdr[8];
	char name[256];
	char *buf = malloc(CHUNK);
	uint64_t t0, total = 0;
	int fd, dirfd;

	if (!buf || (mkdir(dir, 0700) && errno != EEXIST) ||
	    (dirfd = open(dir, O_DIRECTORY | O_CLOEXEC)) < 0) {
		perror("floor_tcp: directory");
		return 1;
	}
	fd = accept_one(sa);
	if (fd < 0)
		return 1;
	t0 = mono_us();
	for (;;) {
		uint32_t len;
		uint64_t size;

		if (read_full(fd, hdr, 4))
			goto cut;
		len = (uint32_t)get_le(hdr, 4);
		if (len == 0)
			break;
		if (len > 255 || read_full(fd, name, len) || read_full(fd, hdr, 8))
			goto cut;
		name[len] = 0;
		if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
			fprintf(stderr, "floor_tcp: bad file name\n");
			return 1;
		}
		size = get_le(hdr, 8);
		if (recv_file(fd, dirfd, name, size, buf))
			goto cut;
		total += size;
	}
	if (write_full(fd, "k", 1))
		goto cut;
	printf("recv_us %llu bytes=%llu\n", (unsigned long long)(mono_us() - t0),
	    (unsigned long long)total);
	close(fd);
	return 0;
cut:
	fprintf(stderr, "floor_tcp: transfer cut short\n");
	return 1;
}

static int send_dir(const struct sockaddr_in *sa, const char *dir)
{
	unsigned char hdr[8], ack;
	uint64_t t0, total = 0;
	unsigned files = 0;
	struct dirent *de;
	DIR *d;
	int fd;

	t0 = mono_us();
	d = opendir(dir);
	if (!d) {
		perror("floor_tcp: opendir");
		return 1;
	}
	fd = connect_to(sa);
	if (fd < 0)
		return 1;
	while ((de = readdir(d))) {
		struct stat st;
		size_t len = strlen(de->d_name);
		int in = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

		if (in < 0)
			continue;	/* ".", "..", anything not a plain file */
		if (fstat(in, &st) || !S_ISREG(st.st_mode) || len > 255) {
			close(in);
			continue;
		}
		put_le(hdr, len, 4);
		if (write_full(fd, hdr, 4) || write_full(fd, de->d_name, len))
			goto fail;
		put_le(hdr, (uint64_t)st.st_size, 8);
		if (write_full(fd, hdr, 8))
			goto fail;
		for (off_t off = 0; off < st.st_size;) {
			ssize_t n = sendfile(fd, in, &off, (size_t)(st.st_size - off));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				goto fail;
		}
		close(in);
		total += (uint64_t)st.st_size;
		files++;
	}
	closedir(d);
	put_le(hdr, 0, 4);
	if (write_full(fd, hdr, 4) || read_full(fd, &ack, 1) || ack != 'k') {
		fprintf(stderr, "floor_tcp: transfer failed\n");
		return 1;
	}
	printf("copy_us %llu bytes=%llu files=%u\n", (unsigned long long)(mono_us() - t0),
	    (unsigned long long)total, files);
	close(fd);
	return 0;
fail:
	fprintf(stderr, "floor_tcp: transfer failed\n");
	return 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	uint64_t size;

	if (argc < 4 || make_addr(argv[2], argv[3], &sa))
		goto usage;
	alarm(300);
	if (!strcmp(argv[1], "recv") && argc == 4)
		return recv_mem(&sa);
	if (!strcmp(argv[1], "send") && argc == 5 && !need_parse_size(argv[4], &size) && size)
		return send_mem(&sa, size);
	if (!strcmp(argv[1], "recv-dir") && argc == 5)
		return recv_dir(&sa, argv[4]);
	if (!strcmp(argv[1], "send-dir") && argc == 5)
		return send_dir(&sa, argv[4]);
usage:
	fprintf(stderr, "usage: floor_tcp recv|send ADDR PORT [SIZE]\n"
	    "       floor_tcp recv-dir|send-dir ADDR PORT DIR\n");
	return 2;
}
