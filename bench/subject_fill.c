/*
 * subject_fill: the benchmark's subject. Its memory is SIZE bytes of
 * pseudo-random data, so that neither zero-page skipping nor compression
 * flatters a checkpointer, and THREADS threads spin reading CLOCK_REALTIME
 * to measure the stall the process itself sees across a checkpoint and
 * restore.
 *
 *   subject_fill [--dirty MBPS] [--tick-us US] [--report FILE]
 *                SIZE THREADS STOPFILE      (SIZE: bytes, or with K/M/G)
 *
 *   --dirty MBPS   one more thread rewrites randomly chosen pages with new
 *                  random data at MBPS megabytes (10^6 bytes) per second,
 *                  in bursts every millisecond, so that a live migration has
 *                  pages to send again; 0 starts no such thread but still
 *                  uses the per-page checksum below. A freeze does not make it
 *                  catch up in one burst afterwards: it never owes more than
 *                  10 ms of writes.
 *   --tick-us US   the measuring threads sleep US microseconds between two
 *                  readings instead of spinning (0, the default: spin). On a
 *                  2-core machine a spinning subject takes a core from the
 *                  migration that moves it; a sleeping one measures its gap
 *                  to within US plus a wake-up.
 *   --report FILE  the protocol lines below go to FILE, opened (append) and
 *                  closed for each line, instead of stdout: a migrated
 *                  process has no file open for writing while it moves, and
 *                  FILE may sit on a file system both hosts see.
 *
 * With --dirty the memory checksum is per page (the XOR of every page's
 * XXH3 seeded with its index), kept up to date by the dirtying thread as it
 * rewrites pages; "done" recomputes it from the memory and compares it with
 * the kept one. Without --dirty it is XXH3 of the whole memory, as before.
 *
 * Protocol, on stdout (which the harness makes a regular file, so that it
 * survives checkpoint and restore as an fd with a path and an offset), or in
 * the --report file:
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
 *                                           " touch_us=U" measured again, and
 *                                           " CORRUPT" when the sums differ;
 *                                           with --report, " netns=N" too: the
 *                                           inode of the network namespace it
 *                                           ended in (where it migrated to);
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
#include <fcntl.h>
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "cluster/cluster.h"

#define MAX_THREADS 64
#define PAGE 4096u

static _Atomic uint64_t last_ns;	/* newest realtime any thread has read */
static _Atomic uint64_t max_gap_ns;	/* longest interval with no reading */
static _Atomic uint64_t max_gap_end;	/* realtime at which it ended */
static atomic_int stopping;
static volatile sig_atomic_t report;	/* SIGUSR1 seen, not yet answered */

static unsigned tick_us;		/* sleep between readings; 0: spin */
static const char *report_path;		/* protocol lines go there, or stdout */

/* What the dirtying thread works on. Only that thread writes page_sum once
 * it runs; the main thread reads it after joining it. */
struct dirtier {
	unsigned char *mem;
	size_t pages;
	double bytes_per_ns;
	uint64_t page_sum;
};

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
static uint64_t tick(void)
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
	return t;
}

static void nap_us(unsigned us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };

	(void)nanosleep(&ts, NULL);
}

static void *spin(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		tick();
		if (tick_us)
			nap_us(tick_us);
	}
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

/* One protocol line, to the report file (opened and closed again: the
 * process keeps no file open for writing) or to stdout. */
static void emit(const char *line)
{
	if (!report_path) {
		fputs(line, stdout);
		fflush(stdout);
		return;
	}
	int fd = open(report_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return;
	for (size_t off = 0, len = strlen(line); off < len;) {
		ssize_t n = write(fd, line + off, len - off);

		if (n <= 0 && errno != EINTR)
			break;
		if (n > 0)
			off += (size_t)n;
	}
	close(fd);
}

static int fmt_gap(char *buf, size_t len, const char *what)
{
	return snprintf(buf, len, "%s gap_us=%" PRIu64 " gap_end_ns=%" PRIu64, what,
	    atomic_load(&max_gap_ns) / 1000, atomic_load(&max_gap_end));
}

static uint64_t random_seed(void)
{
	uint64_t x;

	if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x))
		x = now_ns() ^ ((uint64_t)getpid() << 32);
	return x;
}

/* splitmix64: fast, full-period, and its output does not compress. The
 * state *x moves on, so that two fills never write the same data. */
static void fill_random_from(uint64_t *x, uint64_t *p, size_t words)
{
	for (size_t i = 0; i < words; i++) {
		uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		p[i] = z ^ (z >> 31);
	}
}

/* The per-page checksum: each page hashed with its index as the seed, so
 * that two pages swapped do not cancel out, and all of them XORed. */
static uint64_t page_hash(const unsigned char *mem, size_t idx)
{
	return XXH3_64bits_withSeed(mem + idx * PAGE, PAGE, idx);
}

static uint64_t page_sum_all(const unsigned char *mem, size_t pages)
{
	uint64_t s = 0;

	for (size_t i = 0; i < pages; i++)
		s ^= page_hash(mem, i);
	return s;
}

/* Rewrites random pages at the requested rate, in a burst every
 * millisecond, keeping page_sum equal to page_sum_all() of the memory at
 * every burst's end. Owes at most 10 ms of writes: after the process was
 * frozen it resumes the rate, it does not make up for the freeze. */
static void *dirty(void *arg)
{
	struct dirtier *d = arg;
	uint64_t x = random_seed(), pick = random_seed() | 1;
	uint64_t t0 = now_ns(), done = 0;
	const uint64_t slack = (uint64_t)(d->bytes_per_ns * 10e6);

	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		uint64_t t = tick();
		uint64_t due = (uint64_t)((double)(t - t0) * d->bytes_per_ns);

		if (due > done + slack)
			done = due - slack;
		for (; done < due; done += PAGE) {
			size_t idx;

			pick ^= pick << 13;
			pick ^= pick >> 7;
			pick ^= pick << 17;
			idx = (size_t)(pick % d->pages);
			d->page_sum ^= page_hash(d->mem, idx);
			fill_random_from(&x, (uint64_t *)(void *)(d->mem + idx * PAGE),
			    PAGE / sizeof(uint64_t));
			d->page_sum ^= page_hash(d->mem, idx);
		}
		nap_us(tick_us && tick_us < 1000 ? tick_us : 1000);
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: subject_fill [--dirty MBPS] [--tick-us US] [--report FILE] "
	    "SIZE THREADS STOPFILE\n");
}

int main(int argc, char **argv)
{
	pthread_t tids[MAX_THREADS], dtid;
	struct dirtier d = { 0 };
	double dirty_mbps = -1;		/* < 0: no --dirty */
	uint64_t size;
	long nthreads;
	uint64_t *mem;
	uint64_t sum, sum2, touch_us, last_check = 0;
	const char *stopfile;
	char line[256];
	unsigned n = 0;
	int a = 1, len;

	for (; a + 1 < argc && argv[a][0] == '-' && argv[a][1] == '-'; a += 2) {
		char *end;

		if (!strcmp(argv[a], "--dirty")) {
			dirty_mbps = strtod(argv[a + 1], &end);
			if (*end || end == argv[a + 1] || !(dirty_mbps >= 0))
				break;
		} else if (!strcmp(argv[a], "--tick-us")) {
			unsigned long v = strtoul(argv[a + 1], &end, 10);

			if (*end || end == argv[a + 1] || v > 1000000)
				break;
			tick_us = (unsigned)v;
		} else if (!strcmp(argv[a], "--report")) {
			report_path = argv[a + 1];
		} else {
			break;
		}
	}
	if (argc - a != 3 || need_parse_size(argv[a], &size) || !size ||
	    (nthreads = strtol(argv[a + 1], NULL, 10)) < 1 || nthreads > MAX_THREADS) {
		usage();
		return 2;
	}
	stopfile = argv[a + 2];
	size = (size + PAGE - 1) & ~(size_t)(PAGE - 1);
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
	{
		uint64_t x = random_seed();

		fill_random_from(&x, mem, size / sizeof(*mem));
	}
	d.mem = (unsigned char *)mem;
	d.pages = size / PAGE;
	sum = dirty_mbps < 0 ? XXH3_64bits(mem, size) : page_sum_all(d.mem, d.pages);
	d.page_sum = sum;

	atomic_store(&last_ns, now_ns());
	for (long i = 1; i < nthreads; i++) {
		if (pthread_create(&tids[i], NULL, spin, NULL)) {
			fprintf(stderr, "subject_fill: pthread_create failed\n");
			return 1;
		}
	}
	touch_us = touch(mem, size);
	if (dirty_mbps > 0) {
		d.bytes_per_ns = dirty_mbps * 1e6 / 1e9;
		if (pthread_create(&dtid, NULL, dirty, &d)) {
			fprintf(stderr, "subject_fill: pthread_create failed\n");
			return 1;
		}
	}
	/* Settle, then forget the start-up gaps: only what follows "ready"
	 * counts. */
	for (uint64_t until = now_ns() + 20000000u; now_ns() < until;)
		tick();
	atomic_store(&max_gap_ns, 0);
	atomic_store(&max_gap_end, 0);
	snprintf(line, sizeof(line), "ready pid=%d size=%" PRIu64 " threads=%ld sum=%016" PRIx64
	    " touch_us=%" PRIu64 "\n", (int)getpid(), size, nthreads, sum, touch_us);
	emit(line);

	/* The main thread ticks like the others and looks for the stop file
	 * about every 4096 readings when it spins (a fraction of a
	 * millisecond), every millisecond when it sleeps between readings. */
	for (;;) {
		uint64_t t = tick();

		if (report) {
			report = 0;
			fmt_gap(line, sizeof(line) - 1, "gap");
			strcat(line, "\n");
			emit(line);
			atomic_store(&max_gap_ns, 0);
		}
		if (tick_us) {
			nap_us(tick_us);
			if (t - last_check < 1000000u)
				continue;
			last_check = t;
		} else if (++n % 4096) {
			continue;
		}
		if (access(stopfile, F_OK) == 0)
			break;
	}
	atomic_store(&stopping, 1);
	for (long i = 1; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	if (dirty_mbps > 0)
		pthread_join(dtid, NULL);

	touch_us = touch(mem, size);
	if (dirty_mbps < 0) {
		sum2 = XXH3_64bits(mem, size);
	} else {
		sum2 = page_sum_all(d.mem, d.pages);
		sum = d.page_sum;
	}
	len = fmt_gap(line, sizeof(line), "done");
	len += snprintf(line + len, sizeof(line) - (size_t)len, " sum=%016" PRIx64 " touch_us=%" PRIu64,
	    sum2, touch_us);
	if (report_path) {
		struct stat st;

		if (stat("/proc/self/ns/net", &st) == 0)
			len += snprintf(line + len, sizeof(line) - (size_t)len, " netns=%llu",
			    (unsigned long long)st.st_ino);
	}
	snprintf(line + len, sizeof(line) - (size_t)len, "%s\n", sum2 == sum ? "" : " CORRUPT");
	emit(line);
	return sum2 == sum ? 0 : 3;
}
