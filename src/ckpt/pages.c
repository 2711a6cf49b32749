/*
 * The pages. Which are stored, by kind of mapping:
 *   private anonymous       present or swapped pages (page map)
 *   private file            pages the process wrote (present and no longer
 *                           file pages, or swapped); all of them when the
 *                           mapping is carried (--carry-files, deleted files)
 *   shared anonymous        every page of the range: its pages need not be
 *                           in this process's page tables to exist
 *   shared file, vDSO       none: the file and the kernel hold them
 * All-zero pages are skipped: restore maps fresh zero-filled memory anyway.
 *
 * The work is cut into chunks of at most one record's worth of address
 * space. Into a pipe or socket one thread writes them in order through the
 * image writer. Into a regular file, where the cost is in allocating and
 * filling the file's pages, one thread per CPU takes chunks and writes each
 * chunk's records with one pwritev at an offset it reserves: page records
 * may come in any order, and restore reads them as they come.
 */
#include "ckpt/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sys/cpus.h"
#include "sys/dirty.h"
#include "sys/mem.h"

#define PAGE ARCH_PAGE_SIZE
#define CHUNK_PAGES IMG_MAX_PAGES_PER_RECORD
#define MAX_WORKERS 4

enum pick { PICK_NONE, PICK_PRESENT, PICK_WRITTEN, PICK_ALL };

struct chunk {
	uint64_t start, end;
	enum pick pick;
	int exact;              /* every page is wanted: no page map to read */
	const struct proc_vma *v;
};

struct dumper {
	struct ckpt *c;
	struct img_writer *w;     /* sequential mode */
	int fd;                   /* parallel mode: the regular file, else -1 */
	struct chunk *chunks;
	size_t nchunks;
	atomic_size_t next;
	atomic_uint_fast64_t off; /* next free byte of the file */
	atomic_uint_fast64_t bytes, records, pages, zero_pages;
	pthread_mutex_t lock;     /* guards err */
	pthread_mutex_t wlock;    /* one writer at a time: see flush() */
	int err;
};

static enum pick pick_for(const Roamimg__Vma *m, const struct proc_vma *v)
{
	switch (m->kind) {
	case ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE:
		return (v->rss_kb || v->swap_kb) ? PICK_PRESENT : PICK_NONE;
	case ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE:
		if (m->carried)
			return PICK_ALL;
		return (v->rss_kb || v->swap_kb) ? PICK_WRITTEN : PICK_NONE;
	case ROAMIMG__VMA_KIND__VMA_ANON_SHARED:
		return PICK_ALL;
	default:
		return PICK_NONE;
	}
}

static int wanted(enum pick pick, uint64_t pm)
{
	switch (pick) {
	case PICK_ALL: return 1;
	case PICK_PRESENT: return (pm & (PM_PRESENT | PM_SWAPPED)) != 0;
	case PICK_WRITTEN: return (pm & PM_SWAPPED) || ((pm & PM_PRESENT) && !(pm & PM_FILE));
	default: return 0;
	}
}

/* Chunks of at most one record over [start, end). */
static int push_chunks(struct dumper *d, uint64_t start, uint64_t end, enum pick pick, int exact,
		       const struct proc_vma *v, size_t *cap)
{
	for (uint64_t a = start; a < end; a += CHUNK_PAGES * PAGE) {
		if (d->nchunks == *cap) {
			size_t ncap = *cap ? *cap * 2 : 256;
			struct chunk *n = realloc(d->chunks, ncap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			d->chunks = n;
			*cap = ncap;
		}
		d->chunks[d->nchunks++] = (struct chunk){
			a, a + CHUNK_PAGES * PAGE < end ? a + CHUNK_PAGES * PAGE : end, pick, exact || pick == PICK_ALL, v,
		};
	}
	return 0;
}

struct run_ctx {
	struct dumper *d;
	enum pick pick;
	const struct proc_vma *v;
	size_t *cap;
};

/* A run of present or swapped pages, which are exactly the pages
 * PICK_PRESENT wants; PICK_WRITTEN still tells file pages apart. */
static int push_run(void *ctx, uint64_t start, uint64_t end)
{
	struct run_ctx *r = ctx;

	return push_chunks(r->d, start, end, r->pick, r->pick == PICK_PRESENT, r->v, r->cap);
}

static int add_chunks(struct dumper *d, const Roamimg__Vma *m, const struct proc_vma *v, size_t *cap)
{
	enum pick pick = pick_for(m, v);
	uint64_t end = m->end;

	/* The layout read before the freeze (ckpt_snapshot): its page counts
	 * are not to be trusted, the page tables are looked at instead. */
	if (pick == PICK_NONE && d->c->counts_stale && (m->kind == ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE ||
					       m->kind == ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE))
		pick = m->kind == ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE ? PICK_PRESENT : PICK_WRITTEN;
	if (pick == PICK_NONE)
		return 0;
	if (pick == PICK_ALL && m->kind == ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE) {
		/* Pages beyond the end of the file cannot be read (SIGBUS). */
		const Roamimg__MappedFile *f = d->c->mm->files[m->file_id];
		uint64_t file_end = m->start + (f->size > m->pgoff ? f->size - m->pgoff : 0);
		file_end = (file_end + PAGE - 1) & ~(PAGE - 1);
		if (file_end < end)
			end = file_end;
	}
	if (pick != PICK_ALL && m->end - m->start > CHUNK_PAGES * PAGE) {
		/* Only the runs page tables cover: a sparse reservation costs what
		 * it holds, not its size. */
		size_t before = d->nchunks;
		struct run_ctx r = { d, pick, v, cap };
		int rc = pagemap_present(d->c->pagemapfd, m->start, end, push_run, &r);
		if (rc != -ENOTTY && rc != -EINVAL)
			return rc;
		d->nchunks = before;  /* no PAGEMAP_SCAN here: the whole range */
	}
	return push_chunks(d, m->start, end, pick, 0, v, cap);
}

static void set_err(struct dumper *d, int rc)
{
	pthread_mutex_lock(&d->lock);
	if (!d->err)
		d->err = rc;
	pthread_mutex_unlock(&d->lock);
}

/* One worker's buffers: the chunk's pages, and for the parallel mode the
 * headers and iovecs of its records. */
struct worker {
	struct dumper *d;
	uint8_t *buf;
	uint64_t pm[CHUNK_PAGES];
	uint8_t hdr[CHUNK_PAGES][IMG_PAGES_OVERHEAD];
	struct iovec iov[2 * CHUNK_PAGES];
	int niov;
	uint64_t iov_bytes, iov_records;
};

/* Queues (parallel) or writes (sequential) the record of npages pages. */
static int emit(struct worker *wk, uint64_t addr, const uint8_t *data, size_t npages)
{
	struct dumper *d = wk->d;

	if (d->fd < 0) {
		int rc = img_write_pages(d->w, addr, data, (uint32_t)npages);
		return rc < 0 ? roam_fail(d->c->err, rc, "writing the pages at %llx", (unsigned long long)addr) : 0;
	}
	int k = wk->niov / 2;
	img_encode_raw_pages(wk->hdr[k], addr, data, (uint32_t)npages);
	wk->iov[wk->niov++] = (struct iovec){ wk->hdr[k], IMG_PAGES_OVERHEAD };
	wk->iov[wk->niov++] = (struct iovec){ (void *)data, npages * PAGE };
	wk->iov_bytes += IMG_PAGES_OVERHEAD + npages * PAGE;
	wk->iov_records++;
	return 0;
}

/* Writes the queued records at a reserved offset. */
static int flush(struct worker *wk)
{
	struct dumper *d = wk->d;
	uint64_t off;
	int i = 0;

	if (!wk->niov)
		return 0;
	off = atomic_fetch_add(&d->off, wk->iov_bytes);
	atomic_fetch_add(&d->bytes, wk->iov_bytes);
	atomic_fetch_add(&d->records, wk->iov_records);
	/* Writers of one file serialize on its inode lock anyway, spinning: one
	 * writes while the others read and check their next chunk, asleep. */
	pthread_mutex_lock(&d->wlock);
	int rc = 0;
	while (i < wk->niov) {
		ssize_t n = pwritev(d->fd, wk->iov + i, wk->niov - i > IOV_MAX ? IOV_MAX : wk->niov - i, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = roam_fail(d->c->err, -errno, "writing the pages at offset %llu", (unsigned long long)off);
			break;
		}
		off += (uint64_t)n;
		while (i < wk->niov && (size_t)n >= wk->iov[i].iov_len)
			n -= (ssize_t)wk->iov[i++].iov_len;
		if (i < wk->niov) {
			wk->iov[i].iov_base = (char *)wk->iov[i].iov_base + n;
			wk->iov[i].iov_len -= (size_t)n;
		}
	}
	pthread_mutex_unlock(&d->wlock);
	wk->niov = 0;
	wk->iov_bytes = wk->iov_records = 0;
	return rc;
}

static int dump_chunk(struct worker *wk, const struct chunk *ch)
{
	struct dumper *d = wk->d;
	struct ckpt *c = d->c;
	size_t n = (size_t)((ch->end - ch->start) / PAGE), i = 0;
	int rc;

	if (!ch->exact && (rc = pagemap_read(c->pagemapfd, ch->start, n, wk->pm)) < 0)
		return roam_fail(c->err, rc, "reading the page map at %llx", (unsigned long long)ch->start);
	/* Read each run of wanted pages to its place in buf; then records for
	 * the runs of non-zero pages. */
	while (i < n) {
		if (!ch->exact && !wanted(ch->pick, wk->pm[i])) {
			i++;
			continue;
		}
		size_t j = ch->exact ? n : i + 1;
		while (j < n && wanted(ch->pick, wk->pm[j]))
			j++;
		uint64_t addr = ch->start + i * PAGE;
		if ((rc = mem_read(c->pid, c->memfd, addr, wk->buf + i * PAGE, (j - i) * PAGE)) < 0)
			return roam_fail(c->err, rc, "reading the memory at %llx (mapping %s)", (unsigned long long)addr,
					 ch->v->path[0] ? ch->v->path : "anonymous");
		/* Pre-copy: a shared object may hold older pages at restore,
		 * zero ones included, so every page goes. */
		int keep_zero = c->pre && ch->v->shared;
		for (size_t k = i; k < j;) {
			if (!keep_zero && page_is_zero(wk->buf + k * PAGE)) {
				atomic_fetch_add(&d->zero_pages, 1);
				k++;
				continue;
			}
			size_t e = k + 1;
			while (e < j && (keep_zero || !page_is_zero(wk->buf + e * PAGE)))
				e++;
			if ((rc = emit(wk, ch->start + k * PAGE, wk->buf + k * PAGE, e - k)) < 0)
				return rc;
			atomic_fetch_add(&d->pages, e - k);
			k = e;
		}
		i = j;
	}
	return d->fd >= 0 ? flush(wk) : 0;
}

static void *work(void *arg)
{
	struct worker *wk = arg;
	struct dumper *d = wk->d;

	for (;;) {
		size_t i = atomic_fetch_add(&d->next, 1);
		if (i >= d->nchunks || d->err)
			break;
		int rc = dump_chunk(wk, &d->chunks[i]);
		if (rc < 0) {
			set_err(d, rc);
			break;
		}
	}
	return NULL;
}

int ckpt_write_pages(struct ckpt *c, struct img_writer *w, const uint8_t *only)
{
	struct dumper d = { .c = c, .w = w, .fd = -1 };
	struct worker *wk[MAX_WORKERS] = { 0 };
	pthread_t th[MAX_WORKERS];
	size_t cap = 0;
	int nworkers = 1, rc = 0;

	pthread_mutex_init(&d.lock, NULL);
	pthread_mutex_init(&d.wlock, NULL);
	/* The vmas of c->mm were built from c->vmas in order, skipping [vsyscall]. */
	for (size_t i = 0, k = 0; !rc && i < c->nvmas && k < c->mm->n_vmas; i++) {
		if (c->vmas[i].start != c->mm->vmas[k]->start)
			continue;
		if (only && !only[k]) {
			k++;
			continue;
		}
		rc = add_chunks(&d, c->mm->vmas[k++], &c->vmas[i], &cap);
	}
	if (rc < 0)
		goto out;
	if (c->opts.out_fd >= 0 && w->codec == IMG_CODEC_NONE && d.nchunks > 16) {
		long cpus = cpu_allowed();
		const char *force = getenv("ROAM_CKPT_THREADS");  /* for benchmarks */
		if (force && atoi(force) > 0)
			cpus = atoi(force);
		off_t pos = lseek(c->opts.out_fd, 0, SEEK_CUR);
		if (cpus > 1 && pos >= 0 && (uint64_t)pos == w->bytes) {
			d.fd = c->opts.out_fd;
			atomic_store(&d.off, (uint64_t)pos);
			nworkers = cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;
		}
	}
	for (int t = 0; t < nworkers; t++) {
		wk[t] = calloc(1, sizeof(*wk[t]));
		if (!wk[t] || !(wk[t]->buf = malloc(CHUNK_PAGES * PAGE))) {
			rc = -ENOMEM;
			goto out;
		}
		wk[t]->d = &d;
	}
	int started = 0;
	struct cpu_spread spread;
	int nthreads = cpu_spread_begin(&spread, nworkers);
	for (int t = 1; t < nthreads; t++) {
		pthread_attr_t at;
		pthread_attr_init(&at);
		cpu_spread_attr(&spread, &at);
		int prc = pthread_create(&th[t], &at, work, wk[t]);
		pthread_attr_destroy(&at);
		if (prc != 0)
			break;
		started = t;
	}
	work(wk[0]);
	for (int t = 1; t <= started; t++)
		pthread_join(th[t], NULL);
	cpu_spread_end(&spread);
	rc = d.err;
	if (!rc && d.fd >= 0) {
		img_writer_account(w, atomic_load(&d.bytes), atomic_load(&d.records));
		if (lseek(d.fd, (off_t)atomic_load(&d.off), SEEK_SET) < 0)
			rc = roam_fail(c->err, -errno, "seeking past the pages");
	}
	c->stats.pages += atomic_load(&d.pages);
	c->stats.zero_pages += atomic_load(&d.zero_pages);
out:
	for (int t = 0; t < nworkers; t++) {
		if (wk[t])
			free(wk[t]->buf);
		free(wk[t]);
	}
	free(d.chunks);
	pthread_mutex_destroy(&d.lock);
	pthread_mutex_destroy(&d.wlock);
	return rc;
}
