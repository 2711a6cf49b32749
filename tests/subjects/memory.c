/*
 * memory: every kind of mapping a process holds keeps its address,
 * protection, sharing and content across checkpoint/restore.
 *
 *   brk heap grown with sbrk            pattern, brk end not below ours
 *   main stack (deep frame) and thread stacks (-t N)     pattern
 *   private anonymous: written pages, a page written with zeros, untouched
 *     pages (must read zero), a large sparse NORESERVE area whose never
 *     touched pages must stay absent (mincore): a restore brings back the
 *     pages that were present, not zeros for the whole area; it and a
 *     64 GiB NORESERVE reservation (as ASan, or a runtime's heap, makes) keep
 *     MAP_NORESERVE ("nr" in smaps VmFlags): without it, such an area does
 *     not even fit in this host's memory accounting
 *   shared anonymous                     pattern, 's' in /proc/self/maps
 *   private file mapping: written pages hold what we wrote, untouched pages
 *     what the file holds, and the file itself is unchanged
 *   read-only private file mapping       file content
 *   shared file mapping: a counter written through the mapping is seen by
 *     pread() on the file (so the mapping is still the file's page cache)
 *   PROT_NONE guard between two RW pages, an area split by mprotect into
 *     rw/r--/rw/---/r-x pieces          exact permissions in maps
 *   the vDSO is where AT_SYSINFO_EHDR says
 *   mm state: /proc/self/cmdline, environ and auxv read back byte for byte
 *     as at start (the kernel reads them through mm's arg/env/auxv fields),
 *     and /proc/self/exe still names this program
 *
 * "big=N" as an argument adds an N MiB private anonymous area filled with a
 * pattern (every page present and distinct), for the large-image paths.
 * "any-exe" skips the /proc/self/exe check, for restorers without
 * CAP_CHECKPOINT_RESTORE (they cannot set that link: it names roam, or the
 * roamd that restored it).
 *
 * Also built statically (memory-static).
 */
#include "subject.h"

#include <pthread.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#define PG 4096UL

static char *brk_area;		/* sbrk'd */
#define BRK_LEN (64 * PG)
static char *panon;		/* private anonymous */
#define PANON_PAGES 256
static char *sparse;		/* 64 MiB NORESERVE, one page per 8 MiB touched */
#define SPARSE_LEN (64UL << 20)
static char *huge;		/* 64 GiB NORESERVE, two pages touched */
#define HUGE_LEN (64UL << 30)
static char *big;		/* big=N: N MiB, all pages present */
static int any_exe;		/* any-exe: /proc/self/exe may name another program */
static size_t big_len;
static char *sanon;		/* shared anonymous */
#define SANON_PAGES 32
static char *pfile;		/* private file mapping, RW */
static char *rofile;		/* private file mapping, R */
#define PFILE_PAGES 16
static char *sfile;		/* shared file mapping */
#define SFILE_PAGES 4
static int sfile_fd;
static uint64_t sfile_counter;
static char *guard;		/* rw | --- | rw */
static char *split;		/* 8 pages, see split_prot[] */
static const int split_prot[8] = {
	PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ, PROT_READ,
	PROT_READ | PROT_WRITE, PROT_NONE, PROT_READ | PROT_EXEC, PROT_READ | PROT_EXEC,
};
static volatile char *main_stack;	/* a big frame in main's stack */
#define MAIN_STACK_LEN (128 * 1024)

struct blob {
	char data[16384];
	ssize_t len;
};
static struct blob cmdline0, environ0, auxv0, exe0;

static volatile int stop_threads;

/* Reads the file at PATH whole into BUF (CAP bytes, NUL-terminated); returns
 * its length. */
static ssize_t read_file(const char *path, char *buf, size_t cap)
{
	ssize_t n, got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		subj_fail("open %s: %s", path, strerror(errno));
	while ((n = read(fd, buf + got, cap - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	return got;
}

/*
 * The layout checks below read /proc/self/maps and smaps, which come a page
 * per read(). A checkpoint may stop this process between two of them; the
 * restored process then reads on at the same offset of its own file, whose
 * lines before that offset may differ (a restore may make one mapping of
 * two the kernel kept apart, such as libc's two read-only pieces), and the
 * text read is torn. A check that fails is therefore made again, from a
 * fresh read, before it counts: a restore cannot come between every try.
 */
#define LAYOUT_TRIES 3

/* Permissions ("rw-p") and sharing of the mapping holding ADDR, from maps. */
static int maps_perms(const void *addr, char perms[5], char *name, size_t namelen)
{
	static char buf[256 * 1024];
	uintptr_t a = (uintptr_t)addr;
	char *line;

	read_file("/proc/self/maps", buf, sizeof(buf));
	for (line = buf; line && *line; ) {
		char *nl = strchr(line, '\n');
		unsigned long lo, hi;
		char p[5];
		int off = 0;

		if (nl)
			*nl = '\0';
		if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &lo, &hi, p, &off) >= 3 &&
		    a >= lo && a < hi) {
			memcpy(perms, p, 5);
			if (name) {
				snprintf(name, namelen, "%s", off ? line + off : "");
			}
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	return -1;
}

static void read_blob(const char *path, struct blob *b)
{
	if (!strcmp(path, "/proc/self/exe")) {
		b->len = readlink(path, b->data, sizeof(b->data));
		if (b->len < 0)
			subj_fail("readlink %s: %s", path, strerror(errno));
		return;
	}
	b->len = read_file(path, b->data, sizeof(b->data));
}

static void check_blob(const char *path, const struct blob *want)
{
	static struct blob now;

	read_blob(path, &now);
	if (now.len != want->len || memcmp(now.data, want->data, (size_t)now.len))
		subj_fail("%s changed (%zd bytes, was %zd): '%.*s'", path, now.len, want->len,
			  (int)(now.len > 60 ? 60 : now.len), now.data);
}

/* Whether the VmFlags of the mapping starting at ADDR include FLAG; if not,
 * why, in WHY. */
static int has_vmflag(const void *addr, const char *flag, const char *what, char *why, size_t cap)
{
	static char buf[2 << 20];
	char head[32], *p, *vf;

	read_file("/proc/self/smaps", buf, sizeof(buf));
	snprintf(head, sizeof(head), "\n%lx-", (unsigned long)addr);
	p = strstr(buf, head);
	if (!p) {
		snprintf(why, cap, "%s at %p: not in smaps", what, addr);
		return 0;
	}
	vf = strstr(p, "\nVmFlags:");
	if (!vf) {
		snprintf(why, cap, "%s: no VmFlags in smaps", what);
		return 0;
	}
	p = strchr(vf + 1, '\n');
	if (p)
		*p = '\0';
	snprintf(why, cap, "%s at %p: VmFlags '%s' lack '%s'", what, addr, vf + 10, flag);
	for (p = strtok(vf + 9, " "); p; p = strtok(NULL, " "))
		if (!strcmp(p, flag))
			return 1;
	return 0;
}

static void expect_vmflag(const void *addr, const char *flag, const char *what)
{
	char why[300];

	for (int i = 0; i < LAYOUT_TRIES; i++)
		if (has_vmflag(addr, flag, what, why, sizeof(why)))
			return;
	subj_fail("%s", why);
}

static void expect_perms(const void *addr, const char *want, const char *what)
{
	char p[5];
	int found = -1;

	for (int i = 0; i < LAYOUT_TRIES; i++)
		if ((found = maps_perms(addr, p, NULL, 0)) == 0 && !strcmp(p, want))
			return;
	if (found < 0)
		subj_fail("%s at %p: not mapped", what, addr);
	subj_fail("%s at %p: perms %s, want %s", what, addr, p, want);
}

/* The name maps gives the mapping holding ADDR must contain WANT. */
static void expect_mapped_name(const void *addr, const char *want, int exact, const char *what)
{
	char p[5], name[256] = "";

	for (int i = 0; i < LAYOUT_TRIES; i++)
		if (maps_perms(addr, p, name, sizeof(name)) == 0 &&
		    (exact ? !strcmp(name, want) : strstr(name, want) != NULL))
			return;
	subj_fail("%s at %p shows '%s'", what, addr, name);
}

static void check_page(const void *p, uint64_t seed, const char *what, int page)
{
	long bad = subj_check_fill(p, PG, seed);

	if (bad >= 0)
		subj_fail("%s page %d: word %ld differs", what, page, bad);
}

static void check_zero(const void *p, const char *what, int page)
{
	const volatile uint64_t *w = p;
	size_t i;

	for (i = 0; i < PG / 8; i++)
		if (w[i])
			subj_fail("%s page %d: word %zu not zero", what, page, i);
}

static char *map_file(const char *leaf, int pages, uint64_t seed, int prot, int flags, int *fdp)
{
	char path[PATH_MAX];
	char *buf = malloc(PG), *m;
	int fd, p;

	subj_path(path, sizeof(path), leaf);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !buf)
		subj_fail("create %s: %s", path, strerror(errno));
	for (p = 0; p < pages; p++) {
		subj_fill(buf, PG, seed + (uint64_t)p);
		if (pwrite(fd, buf, PG, (off_t)(p * PG)) != (ssize_t)PG)
			subj_fail("write %s: %s", path, strerror(errno));
	}
	free(buf);
	m = mmap(NULL, pages * PG, prot, flags, fd, 0);
	if (m == MAP_FAILED)
		subj_fail("mmap %s: %s", path, strerror(errno));
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	return m;
}

static char *map_anon(size_t len, int flags)
{
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | flags, -1, 0);

	if (m == MAP_FAILED)
		subj_fail("mmap anon %zu: %s", len, strerror(errno));
	return m;
}

static void setup(void)
{
	int p;

	brk_area = sbrk(BRK_LEN);
	if (brk_area == (void *)-1)
		subj_fail("sbrk: %s", strerror(errno));
	subj_fill(brk_area, BRK_LEN, 1);

	panon = map_anon(PANON_PAGES * PG, MAP_PRIVATE);
	for (p = 0; p < PANON_PAGES; p += 2)
		subj_fill(panon + p * PG, PG, 500 + (uint64_t)p);
	memset(panon + 1 * PG, 0, PG);	/* present, but all zero */

	sparse = map_anon(SPARSE_LEN, MAP_PRIVATE | MAP_NORESERVE);
	/* Small pages only, so that touching one page populates only it. */
	SUBJ_SYS(madvise(sparse, SPARSE_LEN, MADV_NOHUGEPAGE));
	for (p = 0; p < 8; p++)
		subj_fill(sparse + p * (8UL << 20), PG, 600 + (uint64_t)p);

	huge = map_anon(HUGE_LEN, MAP_PRIVATE | MAP_NORESERVE);
	subj_fill(huge, PG, 650);
	subj_fill(huge + HUGE_LEN / 2, PG, 651);

	if (big_len) {
		big = map_anon(big_len, MAP_PRIVATE);
		subj_fill(big, big_len, 4242);
	}

	sanon = map_anon(SANON_PAGES * PG, MAP_SHARED);
	for (p = 0; p < SANON_PAGES; p++)
		subj_fill(sanon + p * PG, PG, 400 + (uint64_t)p);

	pfile = map_file("memory-private.dat", PFILE_PAGES, 100, PROT_READ | PROT_WRITE, MAP_PRIVATE, NULL);
	for (p = 0; p < PFILE_PAGES; p++)
		if (p < 4 || p == 8)
			subj_fill(pfile + p * PG, PG, 200 + (uint64_t)p);
	rofile = map_file("memory-readonly.dat", PFILE_PAGES, 700, PROT_READ, MAP_PRIVATE, NULL);

	sfile = map_file("memory-shared.dat", SFILE_PAGES, 300, PROT_READ | PROT_WRITE, MAP_SHARED, &sfile_fd);

	guard = map_anon(3 * PG, MAP_PRIVATE);
	subj_fill(guard, PG, 800);
	subj_fill(guard + 2 * PG, PG, 802);
	SUBJ_SYS(mprotect(guard + PG, PG, PROT_NONE));

	split = map_anon(8 * PG, MAP_PRIVATE);
	for (p = 0; p < 8; p++) {
		subj_fill(split + p * PG, PG, 900 + (uint64_t)p);
		SUBJ_SYS(mprotect(split + p * PG, PG, split_prot[p]));
	}
}

static const char *prot_str(int prot)
{
	static char s[5];

	s[0] = prot & PROT_READ ? 'r' : '-';
	s[1] = prot & PROT_WRITE ? 'w' : '-';
	s[2] = prot & PROT_EXEC ? 'x' : '-';
	s[3] = 'p';
	s[4] = '\0';
	return s;
}

/* Never touched: pages 16.. of each 8 MiB step of the sparse area. */
static void check_absent(void)
{
	static unsigned char vec[2048];
	int p, i;

	for (p = 0; p < 8; p++) {
		char *base = sparse + p * (8UL << 20) + 16 * PG;

		SUBJ_SYS(mincore(base, (8UL << 20) - 16 * PG, vec));
		for (i = 0; i < 2048 - 16; i++)
			if (vec[i] & 1)
				subj_fail("sparse area: never touched page %p is present",
					  (void *)(base + i * PG));
	}
}

/* Content checks that any thread may run concurrently. */
static void verify_content(void)
{
	int p;
	long bad;

	bad = subj_check_fill(brk_area, BRK_LEN, 1);
	SUBJ_CHECK(bad < 0, "brk area word %ld differs", bad);
	for (p = 0; p < PANON_PAGES; p++) {
		if (p % 2 == 0)
			check_page(panon + p * PG, 500 + (uint64_t)p, "private anon", p);
		else
			check_zero(panon + p * PG, "private anon", p);
	}
	for (p = 0; p < 8; p++) {
		check_page(sparse + p * (8UL << 20), 600 + (uint64_t)p, "sparse", p);
		check_zero(sparse + p * (8UL << 20) + 4 * PG, "sparse+4", p);
	}
	check_absent();
	if (big_len) {
		bad = subj_check_fill(big, big_len, 4242);
		SUBJ_CHECK(bad < 0, "big area word %ld differs", bad);
	}
	check_page(huge, 650, "64 GiB area", 0);
	check_page(huge + HUGE_LEN / 2, 651, "64 GiB area", 1);
	for (p = 0; p < SANON_PAGES; p++)
		check_page(sanon + p * PG, 400 + (uint64_t)p, "shared anon", p);
	for (p = 0; p < PFILE_PAGES; p++)
		check_page(pfile + p * PG, (p < 4 || p == 8 ? 200 : 100) + (uint64_t)p,
			   "private file", p);
	for (p = 0; p < PFILE_PAGES; p++)
		check_page(rofile + p * PG, 700 + (uint64_t)p, "read-only file", p);
	for (p = 0; p < SFILE_PAGES - 1; p++)
		check_page(sfile + p * PG, 300 + (uint64_t)p, "shared file", p);
	check_page(guard, 800, "guard low", 0);
	check_page(guard + 2 * PG, 802, "guard high", 2);
	for (p = 0; p < 8; p++)
		if (split_prot[p] & PROT_READ)
			check_page(split + p * PG, 900 + (uint64_t)p, "split", p);
}

/* Checks of layout and of the file behind the mappings: main thread only. */
static void verify(void)
{
	char *buf;
	uint64_t word;
	void *vdso = (void *)getauxval(AT_SYSINFO_EHDR);
	int p;
	long bad;

	verify_content();
	bad = subj_check_fill((const void *)main_stack, MAIN_STACK_LEN, 2);
	SUBJ_CHECK(bad < 0, "main stack word %ld differs", bad);
	SUBJ_CHECK((char *)sbrk(0) >= brk_area + BRK_LEN, "brk end %p below our area end %p",
		   sbrk(0), brk_area + BRK_LEN);

	expect_perms(brk_area, "rw-p", "brk area");
	expect_perms(panon, "rw-p", "private anon");
	expect_perms(sanon, "rw-s", "shared anon");
	expect_vmflag(sparse, "nr", "sparse NORESERVE area");
	expect_vmflag(huge, "nr", "64 GiB NORESERVE area");
	expect_perms(pfile, "rw-p", "private file");
	expect_perms(rofile, "r--p", "read-only file");
	expect_perms(sfile, "rw-s", "shared file");
	expect_perms(guard, "rw-p", "guard low");
	expect_perms(guard + PG, "---p", "guard");
	expect_perms(guard + 2 * PG, "rw-p", "guard high");
	for (p = 0; p < 8; p++)
		expect_perms(split + p * PG, prot_str(split_prot[p]), "split");
	expect_mapped_name(pfile, "memory-private.dat", 0, "private file mapping");
	expect_mapped_name(sfile, "memory-shared.dat", 0, "shared file mapping");
	if (vdso)
		expect_mapped_name(vdso, "[vdso]", 1, "AT_SYSINFO_EHDR");

	check_blob("/proc/self/cmdline", &cmdline0);
	check_blob("/proc/self/environ", &environ0);
	check_blob("/proc/self/auxv", &auxv0);
	if (!any_exe)
		check_blob("/proc/self/exe", &exe0);

	/* The shared file mapping is still the file: writes go both ways. */
	sfile_counter++;
	*(volatile uint64_t *)(sfile + (SFILE_PAGES - 1) * PG) = sfile_counter;
	if (pread(sfile_fd, &word, 8, (off_t)((SFILE_PAGES - 1) * PG)) != 8)
		subj_fail("pread shared file: %s", strerror(errno));
	SUBJ_CHECK(word == sfile_counter, "shared file holds %llu, mapping wrote %llu",
		   (unsigned long long)word, (unsigned long long)sfile_counter);
	word = sfile_counter * 3;
	if (pwrite(sfile_fd, &word, 8, (off_t)((SFILE_PAGES - 1) * PG + 8)) != 8)
		subj_fail("pwrite shared file: %s", strerror(errno));
	SUBJ_CHECK(*(volatile uint64_t *)(sfile + (SFILE_PAGES - 1) * PG + 8) == word,
		   "shared mapping does not see a write to the file");

	/* A private file mapping's writes never reach the file. */
	buf = malloc(PG);
	SUBJ_CHECK(buf != NULL, "out of memory");
	{
		char path[PATH_MAX];
		int fd;

		subj_path(path, sizeof(path), "memory-private.dat");
		fd = open(path, O_RDONLY | O_CLOEXEC);
		SUBJ_SYS(fd);
		if (pread(fd, buf, PG, 0) != (ssize_t)PG)
			subj_fail("pread private file: %s", strerror(errno));
		close(fd);
		bad = subj_check_fill(buf, PG, 100);
		SUBJ_CHECK(bad < 0, "private mapping's writes reached the file (word %ld)", bad);
	}
	free(buf);
}

static void sabotage(void)
{
	panon[3 * PG + 17] ^= 1;	/* an untouched page is no longer zero */
}

static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	volatile char stack[32 * 1024];
	uint64_t seed = 10000 + (uint64_t)idx;
	long bad;

	subj_fill((void *)stack, sizeof(stack), seed);
	while (!stop_threads) {
		bad = subj_check_fill((const void *)stack, sizeof(stack), seed);
		SUBJ_CHECK(bad < 0, "thread %d stack word %ld differs", idx, bad);
		verify_content();
		subj_sleep_ms(10);
	}
	bad = subj_check_fill((const void *)stack, sizeof(stack), seed);
	SUBJ_CHECK(bad < 0, "thread %d stack word %ld differs", idx, bad);
	return NULL;
}

/* Runs with a big frame of its own, so the main stack grows well down. */
static __attribute__((noinline)) void run(void)
{
	volatile char frame[MAIN_STACK_LEN];

	subj_fill((void *)frame, sizeof(frame), 2);
	main_stack = frame;
	subj_run_threaded(worker, verify, sabotage, &stop_threads);
	verify();
}

int main(int argc, char **argv)
{
	subj_init(argc, argv, "memory");
	for (int i = 0; i < subj.argc; i++) {
		if (!strncmp(subj.argv[i], "big=", 4))
			big_len = (size_t)atoi(subj.argv[i] + 4) << 20;
		else if (!strcmp(subj.argv[i], "any-exe"))
			any_exe = 1;
		else
			subj_usage();
	}
	read_blob("/proc/self/cmdline", &cmdline0);
	read_blob("/proc/self/environ", &environ0);
	read_blob("/proc/self/auxv", &auxv0);
	read_blob("/proc/self/exe", &exe0);
	setup();
	run();
	subj_pass();
}
