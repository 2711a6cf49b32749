/*
 * Pre-copy: the memory is copied while the process runs, and only what
 * changed since is copied at the freeze (ckpt.h has the calls, image/load.h
 * the stream).
 *
 * The early layout (the MM written by ckpt_precopy_start) is the reference:
 * each of its private or shared anonymous and private file mappings is
 * tracked (sys/dirty.h) unless the kernel refuses, and each tracked one has
 * a bitmap of the pages a copy of which went out. A round sends the pages
 * written since the last; an anonymous page found all zero is not sent but
 * dropped, when an older copy of it went out (restore keeps the last word).
 *
 * At the freeze each mapping of the final layout either is identical to a
 * tracked early one whose tracking held (kept: its written pages are sent,
 * and pages sent once but gone now, dropped) or is marked fresh and sent
 * whole, as a plain checkpoint would. Nothing is ever skipped silently: a
 * mapping whose tracking failed at any point is fresh.
 *
 * With hashing, the hash a page is compared with next is that of what
 * restore holds there: the very bytes sent (dirty_copied), or for a page not
 * sent zero or the file's bytes (baseline_unsent), never that of an earlier
 * read.
 *
 * Each freeze (the first step's and the last) goes by a read of smaps while
 * the process still ran (ckpt_snapshot), the rounds between none; the thaw
 * after the first step drops it, so that the last freeze reads it again.
 *
 * Userfaultfd tracking does not see a page dropped (MADV_DONTNEED) or
 * replaced by the zero page, since neither is a write: dirty_gone finds them
 * at the freeze. Hashing sees them as changed, and reads them as zero.
 * Shared anonymous memory is hashed in either mode: a write by another
 * process, or a hole punched in it (MADV_REMOVE) and read back as zero, is
 * no write in this process's page tables.
 */
#include "ckpt/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "image/load.h"
#include "sys/clock.h"
#include "sys/dirty.h"
#include "sys/mem.h"

#define PAGE ARCH_PAGE_SIZE
#define RUN_PAGES IMG_MAX_PAGES_PER_RECORD
#define DROP_BATCH 8192                 /* ranges per drop record */
#define HASH_MAX_BYTES (4ull << 30)     /* larger mappings are not hashed: sent at the freeze */
#define TRACK_SPARSE_BYTES (64ull << 20) /* larger and under 1/4 present: not tracked */

struct pre_vma {
	int tracked;
	uint64_t *sent;         /* one bit per page: a copy went out */
};

struct run {
	uint64_t start, end;
};

struct precopy {
	struct dirty dirty;
	Roamimg__Mm *mm;        /* the early layout (in the arena) */
	struct pre_vma *v;      /* per early mapping */
	uint8_t *buf;           /* RUN_PAGES pages */
	uint64_t pm[RUN_PAGES];
	uint64_t *drop_addr;
	uint32_t *drop_n;
	size_t ndrop, capdrop;
	struct run *runs;       /* what dirty_scan reported */
	size_t nruns, capruns, run_floor;
	struct ckpt_round cur;  /* the step being written */
	size_t gone_vma;        /* dirty_gone's mapping... */
	struct img_writer *gone_w;  /* ... and the stream its drops go to */
};

/* Restore maps anonymous memory for these: a dropped page reads as zero. */
static int anon_like(const Roamimg__Vma *v)
{
	return v->kind == ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE ||
	       (v->kind == ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE && v->carried);
}

static int trackable(const Roamimg__Vma *v)
{
	return v->kind == ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE || v->kind == ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE ||
	       v->kind == ROAMIMG__VMA_KIND__VMA_ANON_SHARED;
}

static int sent_get(const struct pre_vma *pv, size_t i)
{
	return (pv->sent[i / 64] >> (i % 64)) & 1;
}

static void sent_set(struct pre_vma *pv, size_t i, int on)
{
	if (on)
		pv->sent[i / 64] |= 1ull << (i % 64);
	else
		pv->sent[i / 64] &= ~(1ull << (i % 64));
}

static void untrack(struct precopy *pre, size_t k)
{
	if (pre->v[k].tracked)
		pre->cur.untracked++;
	pre->v[k].tracked = 0;
	free(pre->v[k].sent);
	pre->v[k].sent = NULL;
}

static int collect_run(void *ctx, uint64_t start, uint64_t end)
{
	struct precopy *pre = ctx;

	if (pre->nruns > pre->run_floor && pre->runs[pre->nruns - 1].end == start) {
		pre->runs[pre->nruns - 1].end = end;
		return 0;
	}
	if (pre->nruns == pre->capruns) {
		size_t cap = pre->capruns ? pre->capruns * 2 : 256;
		struct run *n = realloc(pre->runs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		pre->runs = n;
		pre->capruns = cap;
	}
	pre->runs[pre->nruns++] = (struct run){ start, end };
	return 0;
}

static int flush_drops(struct ckpt *c, struct img_writer *w)
{
	struct precopy *pre = c->pre;
	Roamimg__DropPages d = ROAMIMG__DROP_PAGES__INIT;
	int rc;

	if (!pre->ndrop)
		return 0;
	d.n_addr = d.n_npages = pre->ndrop;
	d.addr = pre->drop_addr;
	d.npages = pre->drop_n;
	rc = img_write_msg(w, IMG_REC_DROP, &d.base);
	pre->ndrop = 0;
	return rc < 0 ? roam_fail(c->err, rc, "writing a drop record") : 0;
}

static int drop_add(struct ckpt *c, struct img_writer *w, uint64_t addr, uint32_t n)
{
	struct precopy *pre = c->pre;

	pre->cur.dropped += n;
	if (pre->ndrop && pre->drop_addr[pre->ndrop - 1] + (uint64_t)pre->drop_n[pre->ndrop - 1] * PAGE == addr) {
		pre->drop_n[pre->ndrop - 1] += n;
		return 0;
	}
	if (pre->ndrop == DROP_BATCH) {
		int rc = flush_drops(c, w);
		if (rc < 0)
			return rc;
	}
	if (pre->ndrop == pre->capdrop) {
		size_t cap = pre->capdrop ? pre->capdrop * 2 : 64;
		uint64_t *a = realloc(pre->drop_addr, cap * sizeof(*a));
		if (a)
			pre->drop_addr = a;
		uint32_t *m = realloc(pre->drop_n, cap * sizeof(*m));
		if (m)
			pre->drop_n = m;
		if (!a || !m)
			return -ENOMEM;
		pre->capdrop = cap;
	}
	pre->drop_addr[pre->ndrop] = addr;
	pre->drop_n[pre->ndrop++] = n;
	return 0;
}

/* What send_pages does with a page, by why it is sent. */
enum send_mode {
	SEND_FIRST,     /* round 0, from the pages present at the start: an
			 * anonymous zero page needs nothing (restore's is) */
	SEND_WRITTEN,   /* written since: an anonymous zero page is dropped,
			 * when a copy of it went out */
	SEND_GONE,      /* sent once, not present now: an anonymous page is
			 * dropped if it reads zero, else (swapped out) was sent
			 * as it is; a private file page is sent again */
};

/*
 * Sends the pages [start, end) of early mapping k as they are now. A page
 * that cannot be read sets *lost (the mapping changed under us); a write
 * error is returned.
 */
static int send_pages(struct ckpt *c, struct img_writer *w, size_t k, uint64_t start, uint64_t end,
		      enum send_mode mode, int *lost)
{
	struct precopy *pre = c->pre;
	const Roamimg__Vma *v = pre->mm->vmas[k];
	struct pre_vma *pv = &pre->v[k];
	int anon = anon_like(v), rc;

	for (uint64_t a = start; a < end;) {
		size_t n = (size_t)((end - a) / PAGE);
		if (n > RUN_PAGES)
			n = RUN_PAGES;
		/* The first pass: what the process wrote here before this read is
		 * in it; only a write after it need go again. */
		if (mode == SEND_FIRST)
			dirty_rearm(&pre->dirty, a, a + n * PAGE);
		if (mem_read(c->pid, c->memfd, a, pre->buf, n * PAGE) < 0) {
			*lost = 1;
			return 0;
		}
		/* What restore will hold for these pages, as of this read. */
		if (mode != SEND_GONE)
			dirty_copied(&pre->dirty, a, pre->buf, n);
		size_t base = (size_t)((a - v->start) / PAGE);
		for (size_t i = 0; i < n;) {
			int zero = anon && page_is_zero(pre->buf + i * PAGE);
			if (zero || (anon && mode == SEND_GONE)) {
				if (zero && mode != SEND_FIRST && sent_get(pv, base + i) &&
				    (rc = drop_add(c, w, a + i * PAGE, 1)) < 0)
					return rc;
				if (zero)
					sent_set(pv, base + i, 0);
				i++;
				continue;
			}
			size_t j = i + 1;
			while (j < n && !(anon && (mode == SEND_GONE || page_is_zero(pre->buf + j * PAGE))))
				j++;
			if ((rc = img_write_pages(w, a + i * PAGE, pre->buf + i * PAGE, (uint32_t)(j - i))) < 0)
				return roam_fail(c->err, rc, "writing the pages at %llx", (unsigned long long)(a + i * PAGE));
			for (size_t b = i; b < j; b++)
				sent_set(pv, base + b, 1);
			pre->cur.pages += j - i;
			i = j;
		}
		a += n * PAGE;
	}
	return 0;
}

/* Round 0: the pages early mapping k held when tracking began (marked in
 * its bitmap by mark_present). */
static int send_vma(struct ckpt *c, struct img_writer *w, size_t k)
{
	struct precopy *pre = c->pre;
	const Roamimg__Vma *v = pre->mm->vmas[k];
	struct pre_vma *pv = &pre->v[k];
	size_t n = (size_t)((v->end - v->start) / PAGE);
	int lost = 0, rc;

	for (size_t i = 0; i < n && !lost;) {
		if (!sent_get(pv, i)) {
			i++;
			continue;
		}
		size_t j = i + 1;
		while (j < n && sent_get(pv, j))
			j++;
		if ((rc = send_pages(c, w, k, v->start + i * PAGE, v->start + j * PAGE, SEND_FIRST, &lost)) < 0)
			return rc;
		i = j;
	}
	if (lost)
		untrack(pre, k);
	return 0;
}

/* Marks the pages of early mapping k that a plain checkpoint would pick
 * (present anonymous pages, written private file pages, every page of a
 * shared or carried mapping), once tracking has started: a page populated
 * before is listed here, one populated after shows as written. The page map
 * shows a write-protection marker (a page never populated, or dropped) as
 * swapped out: dirty_is_marker tells it from a page really swapped out or
 * being migrated, which holds data. */
static int mark_present(struct ckpt *c, size_t k)
{
	struct precopy *pre = c->pre;
	const Roamimg__Vma *v = pre->mm->vmas[k];
	struct pre_vma *pv = &pre->v[k];
	uint64_t end = v->end;

	if (v->kind == ROAMIMG__VMA_KIND__VMA_ANON_SHARED || v->carried) {
		if (v->carried) {
			/* Pages beyond the end of the file cannot be read (SIGBUS). */
			const Roamimg__MappedFile *f = pre->mm->files[v->file_id];
			uint64_t file_end = v->start + (f->size > v->pgoff ? f->size - v->pgoff : 0);
			file_end = (file_end + PAGE - 1) & ~(PAGE - 1);
			if (file_end < end)
				end = file_end;
		}
		for (size_t i = 0; i < (size_t)((end - v->start) / PAGE); i++)
			sent_set(pv, i, 1);
		return 0;
	}
	for (uint64_t a = v->start; a < end;) {
		size_t n = (size_t)((end - a) / PAGE), base = (size_t)((a - v->start) / PAGE);
		if (n > RUN_PAGES)
			n = RUN_PAGES;
		int rc = pagemap_read(c->pagemapfd, a, n, pre->pm);
		if (rc < 0)
			return rc;
		for (size_t i = 0; i < n; i++) {
			uint64_t pm = pre->pm[i];
			int swapped = (pm & PM_SWAPPED) && !dirty_is_marker(&pre->dirty, pm);
			int want = v->kind == ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE
					   ? (pm & PM_PRESENT) || swapped
					   : swapped || ((pm & PM_PRESENT) && !(pm & PM_FILE));
			if (want)
				sent_set(pv, base + i, 1);
		}
		a += n * PAGE;
	}
	return 0;
}

/* Hashing: what restore holds, after round 0, at a page of early mapping k
 * that round 0 does not send (not marked by mark_present): zero, or the
 * file's bytes. Its hash is what the next scan compares with, not that of
 * dirty_track's read: a page dropped between that read and the listing, then
 * written again with the bytes it had, would never show, and restore would
 * keep zero there. (A page round 0 sends gets the hash of the bytes sent.) */
static int baseline_unsent(struct ckpt *c, size_t k)
{
	struct precopy *pre = c->pre;
	const Roamimg__Vma *v = pre->mm->vmas[k];
	size_t n = (size_t)((v->end - v->start) / PAGE);
	int fd = -1, rc = 0;

	for (size_t i = 0; i < n && rc == 0;) {
		if (sent_get(&pre->v[k], i)) {
			i++;
			continue;
		}
		size_t j = i + 1;
		while (j < n && j - i < RUN_PAGES && !sent_get(&pre->v[k], j))
			j++;
		size_t len = (j - i) * PAGE;
		memset(pre->buf, 0, len);
		if (!anon_like(v) && fd < 0) {
			const Roamimg__MappedFile *f = pre->mm->files[v->file_id];
			if ((fd = ckpt_open_mapped(c, v->start, v->end, f->deleted ? NULL : f->path)) < 0)
				return fd;
		}
		if (fd >= 0) {
			/* Past the end of the file the last page reads zero; a
			 * whole page past it cannot be mapped (nor tracked). */
			ssize_t got = pread(fd, pre->buf, len, (off_t)(v->pgoff + i * PAGE));
			if (got < 0 || (size_t)got + PAGE <= len)
				rc = got < 0 ? -errno : -ESTALE;
		}
		if (rc == 0)
			dirty_copied(&pre->dirty, v->start + i * PAGE, pre->buf, j - i);
		i = j;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Starts tracking every early mapping worth it, while the process runs. A
 * sparse reservation is not: write-protecting its unpopulated pages builds
 * page tables for all of it (userfaultfd), hashing reads all of it; the few
 * pages it holds go at the freeze.
 *
 * Tracking first, listing the pages second: a page written before the
 * tracking began is listed (round 0 reads it after, so any later write
 * shows), one first written after shows as written. The other order would
 * lose a page first written between the listing and the tracking, unless
 * the process is stopped (list_first): where markers cannot be told from
 * pages swapped out (dirty_knows_markers), the listing must come first. */
static void track_all(struct ckpt *c, int list_first)
{
	struct precopy *pre = c->pre;

	for (size_t k = 0; k < pre->mm->n_vmas; k++) {
		const Roamimg__Vma *v = pre->mm->vmas[k];
		uint64_t size = v->end - v->start;
		if (!trackable(v))
			continue;
		const struct proc_vma *pv = proc_vma_at(c->vmas, c->nvmas, v->start);
		uint64_t held = pv ? (pv->rss_kb + pv->swap_kb) * 1024 : 0;
		if (v->kind == ROAMIMG__VMA_KIND__VMA_ANON_SHARED || v->carried)
			held = size;  /* every page is sent anyway */
		if (size > TRACK_SPARSE_BYTES && held < size / 4)
			continue;
		/* Shared memory is hashed whatever the mode (dirty.h). Hashing
		 * reads every page: never-touched ones would become the zero
		 * page, present, where the process expects none. */
		unsigned how = v->kind == ROAMIMG__VMA_KIND__VMA_ANON_SHARED ? DIRTY_BY_HASH : 0;
		int hashed = pre->dirty.mode == DIRTY_HASH || how == DIRTY_BY_HASH;
		if (hashed && (held < size / 4 || size > HASH_MAX_BYTES))
			continue;
		size_t words = (size_t)((size / PAGE + 63) / 64);
		pre->v[k].sent = calloc(words ? words : 1, sizeof(uint64_t));
		if (!pre->v[k].sent)
			continue;
		if ((list_first ? mark_present(c, k) < 0 || dirty_track(&pre->dirty, v->start, v->end, how) < 0
				: dirty_track(&pre->dirty, v->start, v->end, how) < 0 || mark_present(c, k) < 0) ||
		    (hashed && baseline_unsent(c, k) < 0)) {
			free(pre->v[k].sent);
			pre->v[k].sent = NULL;
			continue;
		}
		pre->v[k].tracked = 1;
	}
}

/* After a failed or finished start: the process runs, nothing is held. */
static void thaw(struct ckpt *c)
{
	ckpt_inet_release(c, 1);   /* its connections work meanwhile: read again at the last freeze */
	ckpt_release_all(c);
	ckpt_snapshot_drop(c);  /* the final freeze takes its own */
	free(c->threads);
	c->threads = NULL;
	c->nthreads = 0;
	c->state = CK_OPEN;
}

void ckpt_precopy_free(struct ckpt *c)
{
	struct precopy *pre = c->pre;

	if (!pre)
		return;
	dirty_close(&pre->dirty);
	for (size_t k = 0; pre->v && k < pre->mm->n_vmas; k++)
		free(pre->v[k].sent);
	free(pre->v);
	free(pre->buf);
	free(pre->drop_addr);
	free(pre->drop_n);
	free(pre->runs);
	free(pre);
	c->pre = NULL;
}

int ckpt_precopy_start(struct ckpt *c, struct img_writer *w, struct ckpt_round *out)
{
	struct precopy *pre;
	struct remote r;
	uint64_t t0 = mono_ns(), bytes0 = w->bytes;
	int rc;

	if (c->state != CK_OPEN || c->pre)
		return -EINVAL;
	if (!(pre = calloc(1, sizeof(*pre))) || !(pre->buf = malloc(RUN_PAGES * PAGE))) {
		free(pre);
		return roam_fail(c->err, -ENOMEM, "pre-copy of pid %d", c->pid);
	}
	pre->dirty.uffd = pre->dirty.pagemapfd = pre->dirty.memfd = -1;
	c->pre = pre;

	/* Frozen only to read the early picture and to make the userfaultfd
	 * inside the process (a remote syscall); tracking starts after the
	 * thaw where it can (track_all), before any page is read, so that every
	 * later write shows. */
	if ((rc = ckpt_freeze(c)) < 0)
		goto fail;
	if ((rc = ckpt_collect_all(c)) < 0 || (rc = ckpt_remote_leader(c, &r)) < 0)
		goto thaw;
	rc = dirty_open(&pre->dirty, c->pid, &r, c->opts.dirty_hash ? DIRTY_FORCE_HASH : 0);
	int prc = ckpt_restore_threads(c);
	if (rc < 0 || (rc = prc) < 0) {
		roam_fail(c->err, rc, "starting dirty tracking in pid %d", c->pid);
		goto thaw;
	}
	pre->mm = c->mm;
	if (!(pre->v = calloc(pre->mm->n_vmas ? pre->mm->n_vmas : 1, sizeof(*pre->v)))) {
		rc = -ENOMEM;
		goto thaw;
	}
	int stopped = !dirty_knows_markers(&pre->dirty);
	if (stopped)
		track_all(c, 1);
	thaw(c);
	memset(&pre->cur, 0, sizeof(pre->cur));
	pre->cur.frozen_ns = mono_ns() - c->stats.freeze_ns;
	if (!stopped)
		track_all(c, 0);
	c->stats.dirty_mode = pre->dirty.mode;

	if ((rc = ckpt_write_header(c, w, 1)) < 0 || (rc = ckpt_write_platform(c, w)) < 0) {
		roam_fail(c->err, rc, "writing the image header");
		goto fail;
	}
	if ((rc = ckpt_write_meta(c, w, IMG_REC_PROCESS, &c->process->base)) < 0 ||
	    (rc = ckpt_write_meta(c, w, IMG_REC_MM, &c->mm->base)) < 0)
		goto fail;
	for (size_t k = 0; k < pre->mm->n_vmas; k++)
		if (pre->v[k].tracked && (rc = send_vma(c, w, k)) < 0)
			goto fail;
	pre->cur.bytes = w->bytes - bytes0;
	pre->cur.ns = mono_ns() - t0;
	if (out)
		*out = pre->cur;
	return 0;
thaw:
	thaw(c);
fail:
	ckpt_precopy_free(c);
	return rc;
}

int ckpt_precopy_round(struct ckpt *c, struct img_writer *w, struct ckpt_round *out)
{
	struct precopy *pre = c->pre;
	uint64_t t0 = mono_ns(), bytes0 = w->bytes;
	int rc;

	if (!pre || c->state != CK_OPEN)
		return -EINVAL;
	memset(&pre->cur, 0, sizeof(pre->cur));
	pre->cur.round = ++c->stats.rounds;
	for (size_t k = 0; k < pre->mm->n_vmas; k++) {
		const Roamimg__Vma *v = pre->mm->vmas[k];
		int lost = 0;
		if (!pre->v[k].tracked)
			continue;
		pre->nruns = pre->run_floor = 0;
		/* The process runs: a mapping it unmapped or replaced is no longer
		 * tracked, and goes whole at the freeze. */
		if (dirty_scan(&pre->dirty, v->start, v->end, collect_run, pre) < 0) {
			untrack(pre, k);
			continue;
		}
		for (size_t i = 0; i < pre->nruns && !lost; i++) {
			pre->cur.dirty_pages += (pre->runs[i].end - pre->runs[i].start) / PAGE;
			if ((rc = send_pages(c, w, k, pre->runs[i].start, pre->runs[i].end, SEND_WRITTEN, &lost)) < 0)
				return rc;
		}
		if (lost)
			untrack(pre, k);
	}
	if ((rc = flush_drops(c, w)) < 0)
		return rc;
	pre->cur.bytes = w->bytes - bytes0;
	pre->cur.ns = mono_ns() - t0;
	for (size_t k = 0; k < pre->mm->n_vmas; k++)
		pre->cur.untracked += trackable(pre->mm->vmas[k]) && !pre->v[k].tracked;
	if (out)
		*out = pre->cur;
	return 0;
}

int ckpt_precopy_pending(struct ckpt *c, uint64_t *pages)
{
	struct precopy *pre = c->pre;
	int rc;

	*pages = 0;
	if (!pre || c->state != CK_OPEN)
		return -EINVAL;
	/* Untracked mappings go whole at the freeze whatever the rounds do. */
	for (size_t k = 0; k < pre->mm->n_vmas; k++)
		if (pre->v[k].tracked &&
		    (rc = dirty_count(&pre->dirty, pre->mm->vmas[k]->start, pre->mm->vmas[k]->end, pages)) < 0)
			return rc;
	return 0;
}

int ckpt_precopy_rest(struct ckpt *c, const struct ckpt_round *last, uint64_t *pages)
{
	int rc = ckpt_precopy_pending(c, pages);

	if (rc < 0 && last->round > 0) {
		*pages = last->dirty_pages;
		rc = 0;
	}
	return rc;
}

bool ckpt_precopy_enough(uint64_t rest, uint64_t last, double rate, uint64_t rest_ns)
{
	double ns = (double)rest * PAGE / (rate > 0 ? rate : 1.0);

	return ns <= (double)rest_ns || (last != UINT64_MAX && rest * 4 >= last * 3);
}

double ckpt_precopy_pace(const struct ckpt_round *r)
{
	double rate = r->ns ? (double)r->bytes / (double)r->ns : 1.0;

	return r->round == 0 ? rate / 2 : rate;
}

/* dirty_gone's runs: of the pages that went out once, those that may be
 * gone now are read again (SEND_GONE). */
static int recheck_gone(void *ctx, uint64_t start, uint64_t end)
{
	struct ckpt *c = ctx;
	struct precopy *pre = c->pre;
	size_t k = pre->gone_vma;
	const Roamimg__Vma *v = pre->mm->vmas[k];
	size_t i = (size_t)((start - v->start) / PAGE), n = (size_t)((end - v->start) / PAGE);
	int lost = 0, rc;

	while (i < n) {
		if (!sent_get(&pre->v[k], i)) {
			i++;
			continue;
		}
		size_t j = i + 1;
		while (j < n && sent_get(&pre->v[k], j))
			j++;
		if ((rc = send_pages(c, pre->gone_w, k, v->start + i * PAGE, v->start + j * PAGE, SEND_GONE, &lost)) < 0)
			return rc;
		if (lost)
			return roam_fail(c->err, -EIO, "reading the memory at %llx of frozen pid %d",
					 (unsigned long long)(v->start + i * PAGE), c->pid);
		i = j;
	}
	return 0;
}

/* dirty_file_pages' runs: a private copy that went out is gone. */
static int drop_file_pages(void *ctx, uint64_t start, uint64_t end)
{
	struct ckpt *c = ctx;
	struct precopy *pre = c->pre;
	size_t k = pre->gone_vma;
	const Roamimg__Vma *v = pre->mm->vmas[k];
	int rc;

	for (uint64_t a = start; a < end; a += PAGE) {
		size_t i = (size_t)((a - v->start) / PAGE);
		if (!sent_get(&pre->v[k], i))
			continue;
		sent_set(&pre->v[k], i, 0);
		if ((rc = drop_add(c, pre->gone_w, a, 1)) < 0)
			return rc;
	}
	return 0;
}

int ckpt_precopy_final(struct ckpt *c, struct img_writer *w)
{
	struct precopy *pre = c->pre;
	Roamimg__Mm *mm = c->mm;
	size_t n = mm->n_vmas;
	uint8_t *fresh = calloc(n ? n : 1, 1);
	size_t *early = calloc(n ? n : 1, sizeof(size_t));
	size_t (*slice)[2] = calloc(n ? n : 1, sizeof(*slice));
	int rc = 0, lost = 0;

	if (!fresh || !early || !slice) {
		rc = roam_fail(c->err, -ENOMEM, "pre-copy of pid %d", c->pid);
		goto out;
	}
	memset(&pre->cur, 0, sizeof(pre->cur));
	pre->nruns = 0;
	/* Kept or fresh, decided before the MM is written: a kept mapping's
	 * written pages are collected now, while it is sure to be tracked. */
	for (size_t i = 0; i < n; i++) {
		Roamimg__Vma *v = mm->vmas[i];
		ssize_t k = img_find_vma(pre->mm, v->start);
		int same = k >= 0 && img_vma_same(pre->mm, pre->mm->vmas[k], mm, v);
		if (same && !trackable(v))
			continue;  /* no pages of its own: the vDSO, a shared file */
		if (same && pre->v[k].tracked) {
			pre->run_floor = pre->nruns;
			if (dirty_scan(&pre->dirty, v->start, v->end, collect_run, pre) == 0) {
				early[i] = (size_t)k;
				slice[i][0] = pre->run_floor;
				slice[i][1] = pre->nruns;
				continue;
			}
			pre->nruns = pre->run_floor;
		}
		fresh[i] = 1;
		v->has_fresh = v->fresh = 1;
		c->stats.fresh_vmas++;
	}
	if ((rc = ckpt_write_meta(c, w, IMG_REC_PROCESS, &c->process->base)) < 0 ||
	    (rc = ckpt_write_meta(c, w, IMG_REC_MM, &mm->base)) < 0 ||
	    (rc = ckpt_write_meta(c, w, IMG_REC_FILES, &c->files->base)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const Roamimg__Vma *v = mm->vmas[i];
		if (fresh[i] || !trackable(v))
			continue;
		for (size_t r = slice[i][0]; r < slice[i][1] && !lost; r++) {
			pre->cur.dirty_pages += (pre->runs[r].end - pre->runs[r].start) / PAGE;
			if ((rc = send_pages(c, w, early[i], pre->runs[r].start, pre->runs[r].end, SEND_WRITTEN, &lost)) < 0)
				goto out;
		}
		if (lost) {
			rc = roam_fail(c->err, -EIO, "reading the memory at %llx of frozen pid %d",
				       (unsigned long long)v->start, c->pid);
			goto out;
		}
		if (pre->dirty.mode == DIRTY_UFFD && v->kind != ROAMIMG__VMA_KIND__VMA_ANON_SHARED) {
			pre->gone_vma = early[i];
			pre->gone_w = w;
			rc = dirty_gone(&pre->dirty, v->start, v->end, recheck_gone, c);
			if (rc == 0 && !anon_like(v))
				rc = dirty_file_pages(&pre->dirty, v->start, v->end, drop_file_pages, c);
			if (rc < 0) {
				rc = roam_fail(c->err, rc, "finding the pages pid %d dropped at %llx", c->pid,
					       (unsigned long long)v->start);
				goto out;
			}
		}
	}
	if ((rc = flush_drops(c, w)) < 0)
		goto out;
	uint64_t before = c->stats.pages;
	if ((rc = ckpt_write_pages(c, w, fresh)) < 0)
		goto out;
	c->stats.final_pages = pre->cur.pages + (c->stats.pages - before);
	c->stats.final_dropped = pre->cur.dropped;
	c->stats.pages += pre->cur.pages;
out:
	free(fresh);
	free(early);
	free(slice);
	return rc;
}
