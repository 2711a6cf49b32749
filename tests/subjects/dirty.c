/*
 * dirty: a subject that keeps writing its memory, for pre-copy (live
 * checkpoint): whatever page a round copied may be stale by the freeze, and
 * a restore that kept one stale copy shows here.
 *
 *   dirty [-x] [-s STOP] [MIB] [churn] [aba] [dropback] [shared] [shared-area] [huge] [late] [remap] [rate=PAGES] [low=ADDR]
 *
 * An area of MIB MiB (default 16) whose page i holds the pattern of
 * (i, ver[i]); every millisecond RATE pages (default 8) get a new version,
 * and ver[] (itself in memory) says what each must hold. With "churn" it
 * also, each step: drops a page (MADV_DONTNEED: it must read zero again
 * until rewritten), writes zeros over another (present, zero), and every
 * 50 steps unmaps its side mapping and maps a new one (another size,
 * another pattern), and flips the protection of the area's last 16 pages
 * (a split mapping). With "aba" a page of counters is raised by one during
 * each sleep and lowered after it: a copy taken while raised and not taken
 * again once lowered (content compared, not writes) leaves them off by one.
 * With "dropback" a page is dropped during each sleep and written back after
 * it as it was: a copier that took the page's bytes before the drop as what
 * the copy holds (not the zero it read, or did not read, after) misses it.
 * With low=ADDR (hex), once a file "map-low" appears beside the stop file,
 * it maps 128 KiB there (where a restore may have put its own work). With
 * "shared", 4 pages of shared anonymous memory, rewritten every step.
 * With "huge" the area asks for transparent huge pages (MADV_HUGEPAGE).
 * With "shared-area" the area itself is shared anonymous memory, whose pages
 * a drop punches out of the object (MADV_REMOVE: no write, and no page
 * table entry tells it).
 * With "remap", two mappings A and B of 32 pages, each between inaccessible
 * pages, are moved by mremap during each sleep, in turn: A and B swap places
 * (the same layout, other contents, no write); A's pages move onto B's
 * place and leave A mapped and empty (MREMAP_DONTUNMAP: zero, no write);
 * A is written again.
 * With "late", a mapping of 16 pages of its own is made at the start and
 * left untouched until a file "fill-late" appears beside the stop file;
 * then it is written once ("late filled" in the log) and checked after.
 * The whole area is checked every 100 steps and at the
 * end; -x corrupts a byte of the side mapping.
 */
#include "subject.h"

#include <sys/mman.h>

#define PG 4096UL
#define V_ZERO UINT32_MAX  /* the page must read all zero */

static uint8_t *area;
static uint32_t *ver;
static size_t npages;
static int churn;
static unsigned rate = 8;
static uint8_t *side;
static size_t side_len;
static uint64_t side_seed, step;
static int aba;
static int dropback;
static int drop_advice = MADV_DONTNEED;  /* shared-area: MADV_REMOVE */
static int huge;  /* the area asks for transparent huge pages */
static uint64_t low_addr;
static uint8_t *low;        /* low=: LOW_LEN mapped at low_addr, once asked */
#define LOW_LEN (32 * PG)
static uint64_t *shm;       /* shared: 4 pages, word i = step * i */
static uint64_t shm_step;
static uint64_t *counters;  /* aba: 512 counters, 0 at rest */
static uint8_t *late;       /* late: LATE_LEN, empty until filled */
static int late_filled;
#define LATE_LEN (16 * PG)
/* remap: slot[0] (A), slot[1] (B) and a spare, each REMAP_LEN between
 * inaccessible pages; seed 0: the slot reads zero */
#define REMAP_LEN (32 * PG)
static uint8_t *slot[3];
static uint64_t slot_seed[2];

static uint64_t seed_of(size_t i)
{
	return ((uint64_t)i << 32) | ver[i];
}

static void check_page(size_t i)
{
	const uint64_t *w = (const uint64_t *)(area + i * PG);

	if (ver[i] == V_ZERO) {
		for (size_t k = 0; k < PG / 8; k++)
			SUBJ_CHECK(w[k] == 0, "page %zu (%p) should read zero, word %zu is %#llx", i, (void *)w, k,
				   (unsigned long long)w[k]);
		return;
	}
	long bad = subj_check_fill(w, PG, seed_of(i));
	SUBJ_CHECK(bad < 0, "page %zu (%p) version %u: word %ld differs", i, (void *)w, ver[i], bad);
}

static int slot_is_zero(const uint8_t *p)
{
	for (size_t k = 0; k < REMAP_LEN; k++)
		if (p[k])
			return 0;
	return 1;
}

static void check_all(void)
{
	for (size_t i = 0; i < npages; i++)
		check_page(i);
	SUBJ_CHECK(subj_check_fill(side, side_len, side_seed) < 0, "side mapping (%zu bytes, seed %llu) differs",
		   side_len, (unsigned long long)side_seed);
	SUBJ_CHECK(!low || subj_check_fill(low, LOW_LEN, 4242) < 0, "the area at %p differs", (void *)low);
	SUBJ_CHECK(!late_filled || subj_check_fill(late, LATE_LEN, 5151) < 0, "the late area at %p differs",
		   (void *)late);
	for (int k = 0; slot[0] && k < 2; k++)
		SUBJ_CHECK(slot_seed[k] ? subj_check_fill(slot[k], REMAP_LEN, slot_seed[k]) < 0 : slot_is_zero(slot[k]),
			   "remapped %c (%p, seed %llu) differs", 'A' + k, (void *)slot[k],
			   (unsigned long long)slot_seed[k]);
	for (size_t k = 0; shm && k < 4 * PG / 8; k++)
		SUBJ_CHECK(shm[k] == shm_step * k, "shared word %zu is %llu, not %llu", k, (unsigned long long)shm[k],
			   (unsigned long long)(shm_step * k));
	for (size_t k = 0; aba && k < PG / 8; k++)
		SUBJ_CHECK(counters[k] == 0, "counter %zu is %llu at rest", k, (unsigned long long)counters[k]);
}

static void new_side(void)
{
	if (side)
		SUBJ_SYS(munmap(side, side_len));
	side_len = (1 + step % 7) * 16 * PG;
	side_seed = 7000 + step;
	side = mmap(NULL, side_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (side == MAP_FAILED)
		subj_fail("mmap side: %s", strerror(errno));
	subj_fill(side, side_len, side_seed);
}

/* Reserves the three slots, inaccessible, and maps A and B. */
static void remap_init(void)
{
	uint8_t *r = mmap(NULL, 3 * (REMAP_LEN + PG) + PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		subj_fail("mmap remap slots: %s", strerror(errno));
	for (int k = 0; k < 3; k++)
		slot[k] = r + PG + (size_t)k * (REMAP_LEN + PG);
	for (int k = 0; k < 2; k++) {
		SUBJ_SYS(mprotect(slot[k], REMAP_LEN, PROT_READ | PROT_WRITE));
		slot_seed[k] = 8000 + (uint64_t)k;
		subj_fill(slot[k], REMAP_LEN, slot_seed[k]);
	}
}

static void move(int from, int to, int flags)
{
	if (mremap(slot[from], REMAP_LEN, REMAP_LEN, MREMAP_MAYMOVE | MREMAP_FIXED | flags, slot[to]) == MAP_FAILED)
		subj_fail("mremap %p to %p: %s", (void *)slot[from], (void *)slot[to], strerror(errno));
}

/* The spare slot is inaccessible again after each move. */
static void spare_again(void)
{
	if (mmap(slot[2], REMAP_LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		subj_fail("mmap spare slot: %s", strerror(errno));
}

static void remap_step(void)
{
	switch (step % 3) {
	case 0: {  /* swap: A to the spare, B to A, the spare to B */
		move(0, 2, 0);
		move(1, 0, 0);
		move(2, 1, 0);
		spare_again();
		uint64_t t = slot_seed[0];
		slot_seed[0] = slot_seed[1];
		slot_seed[1] = t;
		break;
	}
	case 1:  /* A's pages to B's place, A left empty */
		move(0, 2, MREMAP_DONTUNMAP);
		move(2, 1, 0);
		spare_again();
		slot_seed[1] = slot_seed[0];
		slot_seed[0] = 0;
		break;
	default:
		slot_seed[0] = 9000 + step;
		subj_fill(slot[0], REMAP_LEN, slot_seed[0]);
	}
}

static uint64_t rng = 88172645463325252ULL;

static size_t pick(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (size_t)(rng % npages);
}

static void write_page(size_t i)
{
	ver[i] = ver[i] == V_ZERO ? 1 : ver[i] + 1;
	subj_fill(area + i * PG, PG, seed_of(i));
}

static void one_step(void)
{
	step++;
	if (shm) {
		shm_step = step;
		for (size_t k = 0; k < 4 * PG / 8; k++)
			shm[k] = shm_step * k;
	}
	for (unsigned k = 0; k < rate; k++)
		write_page(pick());
	if (!churn)
		return;
	size_t d = pick();
	SUBJ_SYS(madvise(area + d * PG, PG, drop_advice));
	ver[d] = V_ZERO;
	size_t z = pick();
	memset(area + z * PG, 0, PG);
	ver[z] = V_ZERO;
	if (step % 50 == 0) {
		new_side();
		/* Split the area's end off and join it back: a changed mapping. */
		int prot = (step / 50) % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
		SUBJ_SYS(mprotect(area + (npages - 16) * PG, 16 * PG, prot));
		if (prot == PROT_READ)
			SUBJ_SYS(mprotect(area + (npages - 16) * PG, 16 * PG, PROT_READ | PROT_WRITE));
	}
}

int main(int argc, char **argv)
{
	size_t mib = 16;

	subj_init(argc, argv, "dirty");
	for (int i = 0; i < subj.argc; i++) {
		if (!strcmp(subj.argv[i], "churn"))
			churn = 1;
		else if (!strcmp(subj.argv[i], "aba"))
			aba = 1;
		else if (!strcmp(subj.argv[i], "dropback"))
			dropback = 1;
		else if (!strcmp(subj.argv[i], "shared-area"))
			drop_advice = MADV_REMOVE;
		else if (!strcmp(subj.argv[i], "huge"))
			huge = 1;
		else if (!strcmp(subj.argv[i], "remap"))
			remap_init();
		else if (!strcmp(subj.argv[i], "late")) {
			/* Between two inaccessible pages: a mapping of its own, whatever
			 * is mapped next to it. */
			late = mmap(NULL, LATE_LEN + 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (late == MAP_FAILED)
				subj_fail("mmap late: %s", strerror(errno));
			late += PG;
			SUBJ_SYS(mprotect(late, LATE_LEN, PROT_READ | PROT_WRITE));
		}
		else if (!strcmp(subj.argv[i], "shared")) {
			shm = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
			if (shm == MAP_FAILED)
				subj_fail("mmap shared: %s", strerror(errno));
		} else if (!strncmp(subj.argv[i], "low=", 4))
			low_addr = strtoull(subj.argv[i] + 4, NULL, 16);
		else if (!strncmp(subj.argv[i], "rate=", 5))
			rate = (unsigned)atoi(subj.argv[i] + 5);
		else if (atoi(subj.argv[i]) > 0)
			mib = (size_t)atoi(subj.argv[i]);
		else
			subj_usage();
	}
	npages = mib * 256;
	area = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE,
		    (drop_advice == MADV_REMOVE ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
	if (huge && area != MAP_FAILED)
		SUBJ_SYS(madvise(area, npages * PG, MADV_HUGEPAGE));
	ver = calloc(npages, sizeof(*ver));
	if (area == MAP_FAILED || !ver)
		subj_fail("allocating %zu MiB: %s", mib, strerror(errno));
	for (size_t i = 0; i < npages; i++)
		write_page(i);
	counters = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (counters == MAP_FAILED)
		subj_fail("mmap counters: %s", strerror(errno));
	counters[0] = 1;  /* present, then at rest */
	counters[0] = 0;
	new_side();
	check_all();
	subj_ready();
	while (!subj_stopped()) {
		one_step();
		if (step % 100 == 0)
			check_all();
		if (low_addr && !low) {
			char path[PATH_MAX];
			subj_path(path, sizeof(path), "map-low");
			if (access(path, F_OK) == 0) {
				low = mmap((void *)(uintptr_t)low_addr, LOW_LEN, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
				if (low == MAP_FAILED || (uint64_t)(uintptr_t)low != low_addr)
					subj_fail("mapping a page at %#llx: %s", (unsigned long long)low_addr, strerror(errno));
				subj_fill(low, LOW_LEN, 4242);
			}
		}
		if (late && !late_filled) {
			char path[PATH_MAX];
			subj_path(path, sizeof(path), "fill-late");
			if (access(path, F_OK) == 0) {
				subj_fill(late, LATE_LEN, 5151);
				late_filled = 1;
				subj_log("late filled\n");
			}
		}
		if (subj.sabotage && step == 20)
			side[100] ^= 1;  /* no write repairs it before the check */
		for (size_t k = 0; aba && k < PG / 8; k++)
			counters[k]++;
		size_t back = dropback ? pick() : 0;
		if (dropback && ver[back] != V_ZERO)
			SUBJ_SYS(madvise(area + back * PG, PG, drop_advice));
		if (slot[0])
			remap_step();
		subj_sleep_ms(1);
		if (dropback && ver[back] != V_ZERO)
			subj_fill(area + back * PG, PG, seed_of(back));
		for (size_t k = 0; aba && k < PG / 8; k++)
			counters[k]--;
		if (aba)
			subj_sleep_ms(1);  /* as long at rest as raised */
	}
	check_all();
	subj_pass();
}
