/*
 * subject_fill: the benchmark's subject. Its memory is SIZE bytes of
 * pseudo-random data, so that neither zero-page skipping nor compression
 * flatters a checkpointer, and THREADS threads spin reading CLOCK_REALTIME
 * to measure the stall the process itself sees across a checkpoint and
 * restore.
 *
 *   subject_fill SIZE THREADS STOPFILE      (SIZE: bytes, or with K/M/G)
 *
 * Protocol, on stdout (which the harness makes a regular file, so that it
 * survives checkpoint and restore as an fd with a path and an offset):
 *   "ready pid=P size=S threads=T sum=H touch_us=U"
 *                                           once the memory is filled and every
 *                                           thread spins; U is the time one write
 *                                           to every page takes (see touch());
 *   "done gap_us=G gap_end_ns=E sum=H"     once STOPFILE exists: G is the
 *                                           longest interval in which no thread
 *                                           of the process ran, E the realtime
 *                                           at which that interval ended, H the
 *                                           checksum of the memory recomputed
 *                                           (equal to the first one when the
 *                                           memory came back intact), then
 *                                           " touch_us=U" measured again;
 *   "gap gap_us=G gap_end_ns=E"            on SIGUSR1: the longest interval so
 *                                           far, which is then forgotten. After
 *                                           a checkpoint with --leave-running
 *                                           it is the time the process was
 *                                           frozen, as the process saw it.
 *
 * The stall is measured process-wide, not per thread: each thread publishes
 * the latest CLOCK_REALTIME it read into one shared word (an atomic max), and
 * the gap is the distance from the published value to a newer reading. With
 * four spinning threads on two cores a thread alone is descheduled for whole
 * time slices, which is scheduler noise; the process as a whole is not, unless
 * something stops all of it: that is the freeze. With one thread it is simply
 * the largest gap between two consecutive reads.
 *
 * The subject makes itself a session leader (setsid) so that both CRIU and
 * roam can dump it without shell-job handling, and closes every descriptor
 * but 0, 1 and 2, which whoever started the harness may have leaked to it: both
 * tools see the same small, clean process.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define MAX_THREADS 64

static _Atomic uint64_t last_ns;	/* newest realtime any thread has read */
static _Atomic uint64_t max_gap_ns;	/* longest interval with no reading */
static _Atomic uint64_t max_gap_end;	/* realtime at which it ended */
static atomic_int stopping;
static volatile sig_atomic_t report;	/* SIGUSR1 seen, not yet answered */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One reading: raise the published time, and if it moved forward by more
 * than any gap seen so far, record the gap. A reading older than the
 * published one (a thread preempted between reading and publishing) changes
 * nothing, so a stale reading never opens a false gap. */
static void tick(void)
{
	uint64_t t = now_ns();
	uint64_t cur = atomic_load_explicit(&last_ns, memory_order_relaxed);

	while (t > cur) {
		if (atomic_compare_exchange_weak_explicit(&last_ns, &cur, t,
		    memory_order_relaxed, memory_order_relaxed)) {
			uint64_t gap = t - cur;
			uint64_t m = atomic_load_explicit(&max_gap_ns, memory_order_relaxed);

			while (gap > m) {
				if (atomic_compare_exchange_weak_explicit(&max_gap_ns, &m, gap,
				    memory_order_relaxed, memory_order_relaxed)) {
					atomic_store_explicit(&max_gap_end, t, memory_order_relaxed);
					break;
				}
			}
			break;
		}
	}
}

static void *spin(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stopping, memory_order_relaxed))
		tick();
	return NULL;
}

/* Writes every page once (the value it holds) and returns the time taken.
 * Memory that is really there costs little; memory a restore left to be
 * filled later (lazily, copy-on-write from a file) pays its deferred cost
 * here, so the harness can see a restore that only looks fast. */
static uint64_t touch(void *mem, size_t size)
{
	uint64_t t0 = now_ns();

	for (size_t off = 0; off < size; off += 4096) {
		volatile unsigned char *b = (unsigned char *)mem + off;

		*b = *b;
	}
	return (now_ns() - t0) / 1000;
}

static void on_usr1(int sig)
{
	(void)sig;
	report = 1;
}

static void print_gap(const char *what)
{
	printf("%s gap_us=%" PRIu64 " gap_end_ns=%" PRIu64, what,
	    atomic_load(&max_gap_ns) / 1000, atomic_load(&max_gap_end));
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'G': case 'g': v <<= 30; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'K': case 'k': v <<= 10; end++; break;
	default: break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	if (*end || v == 0)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* splitmix64: fast, full-period, and its output does not compress. */
static void fill_random(uint64_t *p, size_t words)
{
	uint64_t x;

	if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x))
		x = now_ns() ^ ((uint64_t)getpid() << 32);
	for (size_t i = 0; i < words; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		p[i] = z ^ (z >> 31);
	}
}

int main(int argc, char **argv)
{
	pthread_t tids[MAX_THREADS];
	size_t size;
	long nthreads;
	uint64_t *mem;
	uint64_t sum, sum2, touch_us;
	const char *stopfile;
	unsigned n = 0;

	if (argc != 4 || parse_size(argv[1], &size) ||
	    (nthreads = strtol(argv[2], NULL, 10)) < 1 || nthreads > MAX_THREADS) {
		fprintf(stderr, "usage: subject_fill SIZE THREADS STOPFILE\n");
		return 2;
	}
	stopfile = argv[3];
	size = (size + 4095) & ~(size_t)4095;
	(void)setsid();
	(void)close_range(3, ~0u, 0);
	signal(SIGUSR1, on_usr1);

	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("subject_fill: mmap");
		return 1;
	}
	/* No transparent huge pages: both tools should see 4 KiB pages, as a
	 * long-running program's fragmented heap would give them. */
	(void)madvise(mem, size, MADV_NOHUGEPAGE);
	fill_random(mem, size / sizeof(*mem));
	sum = XXH3_64bits(mem, size);

	atomic_store(&last_ns, now_ns());
	for (long i = 1; i < nthreads; i++) {
		if (pthread_create(&tids[i], NULL, spin, NULL)) {
			fprintf(stderr, "subject_fill: pthread_create failed\n");
			return 1;
		}
	}
	touch_us = touch(mem, size);
	/* Settle, then forget the start-up gaps: only what follows "ready"
	 * counts. */
	for (uint64_t until = now_ns() + 20000000u; now_ns() < until;)
		tick();
	atomic_store(&max_gap_ns, 0);
	atomic_store(&max_gap_end, 0);
	printf("ready pid=%d size=%zu threads=%ld sum=%016" PRIx64 " touch_us=%" PRIu64 "\n",
	    (int)getpid(), size, nthreads, sum, touch_us);
	fflush(stdout);

	/* The main thread spins like the others and looks for the stop file
	 * about every 4096 readings (a fraction of a millisecond). */
	for (;;) {
		tick();
		if (report) {
			report = 0;
			print_gap("gap");
			putchar('\n');
			fflush(stdout);
			atomic_store(&max_gap_ns, 0);
		}
		if (++n % 4096 == 0 && access(stopfile, F_OK) == 0)
			break;
	}
	atomic_store(&stopping, 1);
	for (long i = 1; i < nthreads; i++)
		pthread_join(tids[i], NULL);

	touch_us = touch(mem, size);
	sum2 = XXH3_64bits(mem, size);
	print_gap("done");
	printf(" sum=%016" PRIx64 " touch_us=%" PRIu64 "%s\n", sum2, touch_us,
	    sum2 == sum ? "" : " CORRUPT");
	fflush(stdout);
	return sum2 == sum ? 0 : 3;
}
