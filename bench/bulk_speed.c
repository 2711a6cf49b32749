/*
 * bulk_speed: the bulk channel (src/net/bulk.c) against plain TCP over
 * loopback, with the same buffers and the same write and read sizes.
 *
 *   bulk_speed [SIZE [IOSIZE]]     SIZE to move (default 1G), IOSIZE per
 *                                  write and read call (default 64M); K/M/G
 *
 * A child process receives, the parent sends; each side cycles through its
 * own 64 MiB buffer (the sender's filled with random bytes and touched
 * before the clock starts). The clock runs from the sender's connect to the
 * receiver's one-byte acknowledgement, sent once everything is read (and
 * for bulk, the END record checked). Each pair runs twice: where the
 * scheduler puts the two processes, then with each pinned to its own CPU,
 * as on two hosts. A last pair sends the same bytes the way migration
 * does: an image stream (img_writer, page records of 1 MiB, codec none)
 * read back by img_reader, each page copied into the receiver's memory.
 * It also times the ciphers alone, sealing in memory,
 * which bounds what one core can feed, and charges each transfer the CPU
 * time both processes used per GB (on a machine short of CPU the ratio of
 * throughputs tends to the inverse ratio of these). Prints one line per
 * measure and the ratio bulk/plain; the target is 0.70.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "image/image.h"
#include "net/bulk.h"
#include "cluster/cluster.h"

#define BUF_SIZE ((size_t)64 << 20)

static uint8_t K[LINK_KEY_SIZE];
static const char TOKEN[] = "bench migration 1 hostA hostB";

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *buffer(int fill)
{
	uint8_t *p = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (fill)
		randombytes_buf(p, BUF_SIZE);
	else
		memset(p, 0, BUF_SIZE);
	return p;
}

/* Keeps the calling process on one CPU (when there is more than one): two
 * hosts each have their own, which loopback on a shared pair does not give
 * unless asked (the scheduler likes to wake a receiver on its sender's CPU). */
static void pin(int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

/* The two transports behind one pair of calls. */
struct xport {
	int bulk;
	int fd;
	struct bulk b;
};

static int x_write(struct xport *x, const void *p, size_t n)
{
	if (x->bulk)
		return bulk_write(&x->b, p, n);
	while (n) {
		ssize_t k = send(x->fd, p, n, MSG_NOSIGNAL);
		if (k < 0)
			return -errno;
		p = (const uint8_t *)p + k;
		n -= (size_t)k;
	}
	return 0;
}

static ssize_t x_read(struct xport *x, void *p, size_t n)
{
	ssize_t k;

	if (x->bulk)
		return bulk_read(&x->b, p, n);
	k = recv(x->fd, p, n, 0);
	return k < 0 ? -errno : k;
}

/* The same as image callbacks. */
static int x_img_write(void *ctx, const void *p, size_t n)
{
	return x_write(ctx, p, n);
}

static ssize_t x_img_read(void *ctx, void *p, size_t n)
{
	struct xport *x = ctx;
	size_t got = 0;

	if (x->bulk)
		return bulk_read(&x->b, p, n);
	/* Plain TCP has no end marker: the image's COMMIT record is the end. */
	while (got < n) {
		ssize_t k = x_read(x, (uint8_t *)p + got, n - got);
		if (k <= 0)
			return got ? (ssize_t)got : k;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

static int x_fd(struct xport *x)
{
	return x->bulk ? x->b.fd : x->fd;
}

static void x_close(struct xport *x)
{
	if (x->bulk)
		bulk_close(&x->b);
	else if (x->fd >= 0)
		close(x->fd);
}

/* Reads an image stream and places every page in buf, as a restore does. */
static int recv_image(struct xport *x, uint8_t *buf, size_t *got)
{
	struct img_reader r;
	struct img_record rec;
	struct img_pages pg;
	int rc;

	if ((rc = img_reader_init(&r, x_img_read, x)))
		return rc;
	while ((rc = img_read_record(&r, &rec)) == 1) {
		if (rec.type != IMG_REC_PAGES)
			continue;
		if ((rc = img_decode_pages(&r, &rec, &pg)))
			break;
		memcpy(buf + pg.addr % BUF_SIZE, pg.data, (size_t)pg.npages * 4096);
		*got += (size_t)pg.npages * 4096;
	}
	img_reader_fini(&r);
	return rc;
}

static int receiver(int bulk, int img, int lfd, size_t size, size_t io)
{
	struct xport x = { .bulk = bulk, .fd = -1 };
	uint8_t *buf = buffer(0);
	size_t got = 0, off = 0;
	int rc;

	if (!buf)
		return 1;
	if (bulk) {
		if ((rc = bulk_accept(&x.b, lfd, K, TOKEN, sizeof(TOKEN), 30000))) {
			fprintf(stderr, "accept: %s\n", bulk_strerror(rc));
			return 1;
		}
	} else if ((x.fd = accept(lfd, NULL, NULL)) < 0) {
		return 1;
	}
	if (img) {
		if ((rc = recv_image(&x, buf, &got))) {
			fprintf(stderr, "image: %s\n", rc < -6000 ? bulk_strerror(rc) : img_strerror(rc));
			return 1;
		}
		if (bulk && bulk_read(&x.b, buf, 1) != 0)
			return 1;
	}
	while (!img) {
		size_t want = BUF_SIZE - off < io ? BUF_SIZE - off : io;
		ssize_t n = x_read(&x, buf + off, want);

		if (n < 0) {
			fprintf(stderr, "read: %s\n", bulk_strerror((int)n));
			return 1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		off = (off + (size_t)n) % BUF_SIZE;
	}
	if (got != size) {
		fprintf(stderr, "received %zu of %zu bytes\n", got, size);
		return 1;
	}
	if (write(x_fd(&x), "k", 1) != 1)
		return 1;
	x_close(&x);
	return 0;
}

/* Sends size bytes of buf as an image stream: page records of 1 MiB. */
static int send_image(struct xport *x, const uint8_t *buf, size_t size)
{
	struct img_writer w;
	int rc;

	if ((rc = img_writer_init(&w, x_img_write, x, IMG_CODEC_NONE)))
		return rc;
	if ((rc = img_write_record(&w, IMG_REC_HEADER, "bench", 5)))
		goto out;
	for (size_t off = 0; off < size; off += (size_t)IMG_MAX_PAGES_PER_RECORD * 4096) {
		size_t o = off % BUF_SIZE;

		if ((rc = img_write_pages(&w, off, buf + o, IMG_MAX_PAGES_PER_RECORD)))
			goto out;
	}
	rc = img_write_commit(&w);
out:
	img_writer_fini(&w);
	return rc;
}

/* The cipher the last bulk channel this process connected went with. */
static int channel_cipher;

static int sender(int bulk, int img, uint16_t port, const uint8_t *buf, size_t size, size_t io,
		  double *secs)
{
	struct xport x = { .bulk = bulk, .fd = -1 };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	size_t left = size, off = 0;
	double t0 = mono_s();
	char ack;
	int rc = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bulk) {
		if ((rc = bulk_connect(&x.b, "127.0.0.1", port, K, TOKEN, sizeof(TOKEN), 30000))) {
			fprintf(stderr, "connect: %s\n", bulk_strerror(rc));
			goto out;
		}
		channel_cipher = x.b.cipher;
	} else {
		x.fd = socket(AF_INET, SOCK_STREAM, 0);
		if (x.fd < 0 || connect(x.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto out;
	}
	if (img && (rc = send_image(&x, buf, size))) {
		fprintf(stderr, "image: %s\n", rc < -6000 ? bulk_strerror(rc) : img_strerror(rc));
		goto out;
	}
	while (!img && left) {
		size_t n = left < io ? left : io;

		if (n > BUF_SIZE - off)
			n = BUF_SIZE - off;
		if ((rc = x_write(&x, buf + off, n))) {
			fprintf(stderr, "write: %s\n", bulk_strerror(rc));
			goto out;
		}
		left -= n;
		off = (off + n) % BUF_SIZE;
	}
	rc = -1;
	if (bulk ? bulk_finish(&x.b) != 0 : shutdown(x.fd, SHUT_WR) != 0)
		goto out;
	if (read(x_fd(&x), &ack, 1) != 1 || ack != 'k')
		goto out;
	*secs = mono_s() - t0;
	rc = 0;
out:
	x_close(&x);
	return rc;
}

/* CPU seconds (user + system) used by who, RUSAGE_SELF or RUSAGE_CHILDREN. */
static double cpu_s(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* One transfer; returns MB/s or a negative value, and the CPU seconds both
 * sides spent per GB moved in *cpu (softirq work is charged to whoever the
 * kernel ran it for, so the sum is what counts). */
static double run(int bulk, int img, int pinned, const uint8_t *buf, size_t size, size_t io,
		  double *cpu)
{
	uint16_t port = 0;
	int lfd = bulk_listen("127.0.0.1", &port), st;
	double secs = 0, c0 = cpu_s(RUSAGE_SELF) + cpu_s(RUSAGE_CHILDREN);
	pid_t pid;

	if (lfd < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (pinned)
			pin(1);
		_exit(receiver(bulk, img, lfd, size, io));
	}
	close(lfd);
	if (sender(bulk, img, port, buf, size, io, &secs) < 0)
		kill(pid, SIGKILL);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) || secs <= 0)
		return -1;
	*cpu = (cpu_s(RUSAGE_SELF) + cpu_s(RUSAGE_CHILDREN) - c0) / ((double)size / 1e9);
	return (double)size / 1e6 / secs;
}

/* Seals size bytes in memory, in whole records; returns MB/s. */
static double seal_speed(int cipher, uint8_t *buf, size_t size)
{
	uint8_t k1[32], k2[32], hdr[BULK_HDR_SIZE], tag[BULK_TAG_SIZE];
	struct bulk b;
	double t0;

	randombytes_buf(k1, sizeof(k1));
	randombytes_buf(k2, sizeof(k2));
	if (bulk_init_keys(&b, cipher, k1, k2) < 0)
		return 0;
	t0 = mono_s();
	for (size_t off = 0; off < size; off += BULK_MAX_RECORD)
		bulk_seal(&b, BULK_REC_DATA, buf + off % BUF_SIZE, BULK_MAX_RECORD, hdr, tag);
	double rate = (double)size / 1e6 / (mono_s() - t0);
	bulk_close(&b);
	return rate;
}

int main(int argc, char **argv)
{
	static const char *const how[2] = { "scheduler's choice", "each on its own CPU" };
	uint64_t size = 1ull << 30, io = BUF_SIZE;
	double plain[2], bulk[2], pcpu, bcpu;
	uint8_t *buf;
	pid_t pid;
	int st;

	if ((argc > 1 && (need_parse_size(argv[1], &size) || !size)) ||
	    (argc > 2 && (need_parse_size(argv[2], &io) || !io))) {
		fprintf(stderr, "usage: bulk_speed [SIZE [IOSIZE]]\n");
		return 2;
	}
	if (sodium_init() < 0 || !(buf = buffer(1)))
		return 1;
	randombytes_buf(K, sizeof(K));
	printf("bulk_speed: %zu MiB over loopback, %zu KiB per call, %u KiB records\n",
	       (size_t)(size >> 20), (size_t)(io >> 10), BULK_MAX_RECORD >> 10);
	/* Each cipher this process can run (bulk_init_keys refuses the AES
	 * ones without AES-NI or libgcrypt's OCB). */
	static const struct { int cipher; const char *label, *what; } ciphers[] = {
		{BULK_AES256OCB, "seal AES-256-OCB       ", ""},
		{BULK_AES256GMAC, "tag AES-256-GMAC       ", "; records in clear"},
		{BULK_XCHACHA20POLY1305, "seal XChaCha20-Poly1305", ""},
	};
	for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++) {
		double rate = seal_speed(ciphers[i].cipher, buf, (size_t)256 << 20);
		if (rate > 0)
			printf("%s %8.0f MB/s (one core, in memory%s)\n", ciphers[i].label, rate, ciphers[i].what);
		else
			printf("%s  not available here\n", ciphers[i].label);
	}
	for (int pinned = 0; pinned < 2; pinned++) {
		/* The pinned runs happen in a child, so the sender's CPU mask
		 * does not outlive them. */
		if (pinned) {
			fflush(stdout);
			if ((pid = fork()) < 0)
				return 1;
			if (pid > 0) {
				if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
					return 1;
				return WEXITSTATUS(st);
			}
			pin(0);
		}
		plain[pinned] = run(0, 0, pinned, buf, size, io, &pcpu);
		bulk[pinned] = run(1, 0, pinned, buf, size, io, &bcpu);
		if (plain[pinned] <= 0 || bulk[pinned] <= 0) {
			fprintf(stderr, "bulk_speed: a transfer failed\n");
			return 1;
		}
		if (!pinned)
			printf("bulk channel's records  %s\n", bulk_cipher_name(channel_cipher));
		printf("plain TCP               %8.0f MB/s  %5.2f CPU-s/GB  (%s)\n", plain[pinned],
		       pcpu, how[pinned]);
		printf("bulk                    %8.0f MB/s  %5.2f CPU-s/GB  (%s)\n", bulk[pinned],
		       bcpu, how[pinned]);
		printf("ratio bulk/plain        %8.2f                       (%s)\n", bulk[pinned] / plain[pinned],
		       how[pinned]);
	}
	/* The migration path: image records through img_writer and img_reader,
	 * pages placed in the receiver's memory, on their own CPUs. */
	plain[0] = run(0, 1, 1, buf, size, io, &pcpu);
	bulk[0] = run(1, 1, 1, buf, size, io, &bcpu);
	if (plain[0] <= 0 || bulk[0] <= 0) {
		fprintf(stderr, "bulk_speed: an image transfer failed\n");
		return 1;
	}
	printf("image over plain TCP    %8.0f MB/s  %5.2f CPU-s/GB  (%s)\n", plain[0], pcpu, how[1]);
	printf("image over bulk         %8.0f MB/s  %5.2f CPU-s/GB  (%s)\n", bulk[0], bcpu, how[1]);
	printf("ratio bulk/plain        %8.2f                       (%s, image)\n",
	       bulk[0] / plain[0], how[1]);
	return 0;
}
