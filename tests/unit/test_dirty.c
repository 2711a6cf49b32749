/*
 * Dirty tracking of another process (src/sys/dirty.c), both ways: a child
 * writes the pages it is told to, and a scan must report exactly those,
 * once. A range never tracked must be reported as untracked, not as clean.
 * A page re-armed before it is read (dirty_rearm) counts as clean. A range
 * tracked DIRTY_BY_HASH under userfaultfd behaves as hashing does. Ranges
 * are found whatever order they were tracked in, and may not overlap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sys/dirty.h"
#include "sys/mem.h"
#include "sys/proc.h"

#define NPAGES 64
#define PAGE 4096ul

struct child {
	pid_t pid;
	int cmd, ack;           /* our ends of the pipes */
	uint64_t base;          /* its NPAGES-page region */
};

/* The child: maps its region, tells us where, then writes page i for each
 * byte i it reads, acknowledging each. */
static void child_main(int cmd, int ack)
{
	uint8_t *p = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t page;
	uint64_t base = (uint64_t)(uintptr_t)p;

	if (p == MAP_FAILED)
		_exit(1);
	for (int i = 0; i < NPAGES; i += 2)
		p[i * PAGE] = 1;  /* half the pages present, half never touched */
	if (write(ack, &base, sizeof(base)) != sizeof(base))
		_exit(1);
	while (read(cmd, &page, 1) == 1) {
		if (page == 0xff) {
			/* A new mapping, created after tracking started, below the
			 * region (tracked after it, it must be found all the same). */
			void *q = mmap((void *)(uintptr_t)(base - 16 * PAGE), PAGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (q == MAP_FAILED)  /* taken: anywhere */
				q = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (q == MAP_FAILED)
				_exit(1);
			((char *)q)[0] = 1;
			uint64_t a = (uint64_t)(uintptr_t)q;
			if (write(ack, &a, sizeof(a)) != sizeof(a))
				_exit(1);
			continue;
		}
		p[page * PAGE + 100] ^= 0x5a;
		if (write(ack, &page, 1) != 1)
			_exit(1);
	}
	_exit(0);
}

static void start_child(struct child *c)
{
	int cmd[2], ack[2];

	assert_int_equal(pipe(cmd), 0);
	assert_int_equal(pipe(ack), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		close(cmd[1]);
		close(ack[0]);
		child_main(cmd[0], ack[1]);
	}
	close(cmd[0]);
	close(ack[1]);
	c->cmd = cmd[1];
	c->ack = ack[0];
	assert_int_equal(read(c->ack, &c->base, sizeof(c->base)), sizeof(c->base));
}

static void stop_child(struct child *c)
{
	int st;

	close(c->cmd);
	close(c->ack);
	kill(c->pid, SIGKILL);
	waitpid(c->pid, &st, 0);
}

static void write_page(struct child *c, uint8_t page)
{
	uint8_t got;

	assert_int_equal(write(c->cmd, &page, 1), 1);
	assert_int_equal(read(c->ack, &got, 1), 1);
}

struct seen {
	int pages[NPAGES + 1];
	uint64_t base;
};

static int collect(void *ctx, uint64_t start, uint64_t end)
{
	struct seen *s = ctx;

	for (uint64_t a = start; a < end; a += PAGE) {
		uint64_t i = (a - s->base) / PAGE;
		if (i <= NPAGES)
			s->pages[i]++;
	}
	return 0;
}

static void expect_dirty(struct dirty *d, struct child *c, const int *want, int nwant)
{
	struct seen s = { .base = c->base };

	assert_int_equal(dirty_scan(d, c->base, c->base + NPAGES * PAGE, collect, &s), 0);
	for (int i = 0; i < NPAGES; i++) {
		int expected = 0;
		for (int k = 0; k < nwant; k++)
			expected |= want[k] == i;
		if (s.pages[i] != expected)
			fail_msg("page %d reported %d times, expected %d (mode %d)", i, s.pages[i], expected, d->mode);
	}
}

/* What the page map shows after tracking began: with userfaultfd, a
 * marker on each page never touched (the odd ones, but those written,
 * which hold data), never on a page that holds data; with hashing, no marker. */
static void expect_markers(struct dirty *d, struct child *c, int hashed, int w1, int w2)
{
	uint64_t pm[NPAGES];

	assert_int_equal(pagemap_read(d->pagemapfd, c->base, NPAGES, pm), 0);
	for (int i = 0; i < NPAGES; i++) {
		int written = i == w1 || i == w2, empty = !hashed && i % 2 && !written;
		if (dirty_is_marker(d, pm[i]) != empty)
			fail_msg("page %d: entry %llx marker %d, expected %d", i, (unsigned long long)pm[i],
				 dirty_is_marker(d, pm[i]), empty);
		if (!empty && !(pm[i] & PM_PRESENT) && (i % 2 == 0 || written))
			fail_msg("page %d holds data but is not present: %llx", i, (unsigned long long)pm[i]);
	}
}

static void run(unsigned flags, enum dirty_mode want_mode, unsigned how)
{
	int hashed = want_mode == DIRTY_HASH || how == DIRTY_BY_HASH;
	struct child c;
	struct dirty d;
	struct remote r = { 0 };
	int st, procfd, memfd;
	char path[64];

	start_child(&c);
	/* Stop it to create the userfaultfd inside it, then let it go. */
	assert_int_equal(pt_seize(c.pid, PTRACE_O_TRACESYSGOOD), 0);
	assert_int_equal(pt_wait_stop(c.pid, &st), 0);
	procfd = proc_open(c.pid);
	snprintf(path, sizeof(path), "/proc/%d/mem", c.pid);
	memfd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(procfd >= 0 && memfd >= 0);
	r.tid = c.pid;
	assert_int_equal(arch_get_regs(c.pid, &r.base), 0);
	assert_int_equal(remote_find_syscall(procfd, c.pid, memfd, &r.ip), 0);
	arch_regs_t saved = r.base;
	assert_int_equal(dirty_open(&d, c.pid, &r, flags), 0);
	arch_apply_restart(&saved, 1);
	assert_int_equal(arch_set_regs(c.pid, &saved), 0);
	assert_int_equal(pt_detach(c.pid), 0);
	close(procfd);
	close(memfd);
	assert_int_equal(d.mode, want_mode);

	assert_int_equal(dirty_track(&d, c.base, c.base + NPAGES * PAGE, how), 0);
	expect_dirty(&d, &c, NULL, 0);
	expect_markers(&d, &c, hashed, -1, -1);

	write_page(&c, 3);   /* present */
	write_page(&c, 17);  /* never touched before */
	write_page(&c, 40);
	expect_dirty(&d, &c, (int[]){ 3, 17, 40 }, 3);
	expect_dirty(&d, &c, NULL, 0);  /* reported once */
	expect_markers(&d, &c, hashed, 3, 17);
	/* Counted without a scan by userfaultfd only. */
	uint64_t counted = 0;
	write_page(&c, 9);
	int crc = dirty_count(&d, c.base, c.base + NPAGES * PAGE, &counted);
	if (want_mode == DIRTY_HASH)
		assert_int_equal(crc, -EOPNOTSUPP);
	else {
		assert_int_equal(crc, 0);
		assert_int_equal(counted, hashed ? 0 : 1);
	}
	expect_dirty(&d, &c, (int[]){ 9 }, 1);

	write_page(&c, 17);
	write_page(&c, 63);
	expect_dirty(&d, &c, (int[]){ 17, 63 }, 2);

	/* dirty_rearm, before a page is read to be sent: with userfaultfd, a
	 * write before it counts as clean after it, a later one shows again;
	 * hashing leaves that to dirty_copied, so the write still shows. */
	write_page(&c, 5);
	write_page(&c, 20);
	dirty_rearm(&d, c.base + 5 * PAGE, c.base + 6 * PAGE);
	if (!hashed)
		expect_dirty(&d, &c, (int[]){ 20 }, 1);
	else
		expect_dirty(&d, &c, (int[]){ 5, 20 }, 2);
	write_page(&c, 5);
	dirty_rearm(&d, c.base + 4 * PAGE, c.base + 5 * PAGE);  /* not page 5 */
	expect_dirty(&d, &c, (int[]){ 5 }, 1);

	/* A mapping made after tracking began is not clean: it is untracked. */
	uint8_t cmd = 0xff;
	uint64_t extra;
	assert_int_equal(write(c.cmd, &cmd, 1), 1);
	assert_int_equal(read(c.ack, &extra, sizeof(extra)), sizeof(extra));
	struct seen s = { .base = c.base };
	assert_int_equal(dirty_scan(&d, extra, extra + PAGE, collect, &s), -ENOENT);
	/* Tracked now, it is found beside the first range, on whichever side
	 * of it it lies (ranges are kept in address order); a range that meets
	 * one tracked already is refused. */
	assert_int_equal(dirty_track(&d, c.base + PAGE, c.base + 2 * PAGE, how), -EEXIST);
	assert_int_equal(dirty_track(&d, c.base - PAGE, c.base + PAGE, how), -EEXIST);
	assert_int_equal(dirty_track(&d, extra, extra + PAGE, how), 0);
	assert_int_equal(dirty_scan(&d, extra, extra + PAGE, collect, &s), 0);
	expect_dirty(&d, &c, NULL, 0);
	write_page(&c, 7);
	expect_dirty(&d, &c, (int[]){ 7 }, 1);

	dirty_close(&d);
	stop_child(&c);
}

static void test_uffd(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();  /* creating a userfaultfd that handles kernel faults needs privilege */
	run(0, DIRTY_UFFD, 0);
}

static void test_uffd_by_hash(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	run(0, DIRTY_UFFD, DIRTY_BY_HASH);
}

static void test_hash(void **state)
{
	(void)state;
	run(DIRTY_FORCE_HASH, DIRTY_HASH, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uffd),
		cmocka_unit_test(test_uffd_by_hash),
		cmocka_unit_test(test_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
