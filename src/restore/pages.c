/*
 * The pages, written into the child (step 5 of the list in mm.c).
 *
 * Filling fresh anonymous memory is what a restore costs: written with
 * process_vm_writev, every page is faulted in, allocated and zeroed by the
 * kernel, and only then copied over. So the child's private anonymous
 * mappings are registered, for the time of the fill only, with a
 * userfaultfd made inside the child (missing mode, user faults only), and
 * their pages are placed with UFFDIO_COPY: one call per block, which
 * allocates each page and copies into it with no fault and no zeroing. The
 * userfaultfd is closed, which unregisters every mapping, before anything of
 * the image runs (restore_fill_close); nothing about the mappings changes.
 *
 * The other mappings take process_vm_writev (mem_write): shared anonymous
 * objects, private file mappings (the kernel registers neither), those
 * without write permission, those advised MADV_HUGEPAGE (a UFFDIO_COPY
 * makes small pages, a fault may make a huge one), and all of them where
 * the kernel gives no userfaultfd.
 *
 * From the fifth block on (a small image does not pay for threads and
 * buffers; from a stream, once the fill is slower than the stream: see
 * helpers_pay), uncompressed blocks are queued and copied by helper threads, one
 * per CPU beside the reader, while the reader reads and checks the records
 * that follow; it joins them when it waits, and at the end. A block read from a
 * stream stays in the reader's payload buffer, which the block's jobs take
 * along (img_reader_swap_payload): the reader gets a spare one from a small
 * pool, so the memory in flight is bounded. A block is queued only once no
 * pending block covers any of its pages, so that a page written twice (a
 * later copy wins) lands in stream order; the second copy finds the page
 * present (EEXIST) and goes through mem_write. Compressed blocks, whose
 * data the next block overwrites, end the parallel mode.
 *
 * A thread takes the first job under a page-table page (a 2 MiB region on
 * x86_64) that no other thread is filling, when there is one: two threads
 * filling neighbouring blocks take turns on that page table's lock (64 MiB
 * filled in 11 to 17 ms, against 11 ms steady when each keeps to its own
 * regions). From a file every block is queued at once, and there is one;
 * from a stream there often is none, and waiting would cost more.
 *
 * Restoring from a file, each helper is also held on a CPU of its own
 * (sys/cpus.h; the caller is held on its own from the spawn, restore.c).
 * Not from a stream: whatever writes it (roam checkpoint in a pipe, a
 * migration's source) needs CPUs too.
 *
 * From an image file (restore_run_file) the reader leaves the data of
 * uncompressed blocks in the file (img_reader_lazy_pages): a block's job
 * reads it with pread into its thread's own buffer, checks its checksum,
 * and only then writes it. Reading and checking, which the reader did
 * alone, are shared by every thread that fills. A block that fails its
 * check fails the restore as the reader would have, naming its record,
 * before anything of the image runs.
 *
 * Pre-copy streams are filled so until their first round (a page record
 * below the first pass's last), drop or final layout (restore.c), then keep
 * to process_vm_writev in stream order.
 */
#include "restore/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys/clock.h"
#include "sys/cpus.h"
#include "sys/mem.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define PAGE ARCH_PAGE_SIZE
#define MAX_HELPERS 3
#define MAX_BUFS (2 * (MAX_HELPERS + 1))
#define HELPERS_AFTER 5         /* page blocks written before helpers start */
#define PACE_WINDOW   (4u << 20)  /* from a stream: bytes of pages between two looks at
				   * what sets the pace */

/* A payload buffer taken from the stream reader: it goes back to the pool
 * once every job reading from it is done. */
struct pbuf {
	uint8_t *p;
	size_t size;
	int refs;
};

struct fill_job {
	uint64_t dst;
	const uint8_t *src;
	size_t len;
	int uffd;               /* the destination is registered: UFFDIO_COPY */
	int taken, done;
	struct pbuf *buf;       /* where src lies, when taken from the reader */
	const struct img_pages *lazy;  /* a whole block still in the file (dst,
					* len: its pages), or NULL */
	uint64_t rec, rec_at;   /* lazy: its record's index and offset */
};

struct filler {
	struct restore *r;
	pid_t pid;
	int memfd;
	int uffd;               /* on the child's mm, or -1 */
	uint8_t *registered;    /* per vma of the layout the child has */
	size_t nvmas;

	/* Parallel mode. */
	int parallel;
	pthread_t th[MAX_HELPERS];
	int nth;
	pthread_mutex_t lock;
	pthread_cond_t more;    /* a job was queued, or stop */
	pthread_cond_t progress;  /* a job is done */
	struct fill_job *jobs;
	size_t njobs, cap, next, low;  /* next: every job before it is taken;
					* low: every job before it is done */
	uint64_t span_lo, span_hi;  /* the pages of every job queued since the
					* queue was last empty, and maybe more */
	struct { uint64_t lo, hi; int used; } busy[MAX_HELPERS + 1];  /* the
					* page-table regions of the running jobs */
	int stop;
	int err;                /* the first failure, and where */
	uint64_t err_addr;
	uint64_t err_rec, err_rec_at;  /* a lazy block's record, when it failed */
	struct pbuf bufs[MAX_BUFS];
	struct pbuf *free_bufs[MAX_BUFS];
	int nbufs, nfree, maxbufs;  /* two per copying thread: each buffer is
				     * fresh memory, faulted in on first use */
	int helpers;            /* threads to start, once blocks keep coming */
	int helpers_at_once;    /* from a stream too, at the fifth block (tests) */
	unsigned blocks;
	/* From a stream, until the helpers start: the reader's time reading
	 * and filling, and the pages filled, since the last look. */
	uint64_t read_ns, fill_ns, block_in, block_out;
	uint64_t window_pages;
};

/* UFFDIO_COPY of len bytes; a page already present (EEXIST: written
 * before) is written over with mem_write, which finds it present. */
static int uffd_copy(struct filler *f, uint64_t dst, const uint8_t *src, size_t len)
{
	while (len) {
		struct uffdio_copy c = { .dst = dst, .src = (uint64_t)(uintptr_t)src, .len = len,
					 .mode = UFFDIO_COPY_MODE_DONTWAKE };
		int rc = ioctl(f->uffd, UFFDIO_COPY, &c);
		if (c.copy > 0) {
			dst += (uint64_t)c.copy;
			src += c.copy;
			len -= (size_t)c.copy;
			continue;
		}
		int e = c.copy < 0 ? (int)-c.copy : rc < 0 ? errno : EIO;
		if (e == EAGAIN || e == EINTR)
			continue;
		if (e != EEXIST)
			return -e;
		if ((rc = mem_write(f->pid, f->memfd, dst, src, PAGE)) < 0)
			return rc;
		dst += PAGE;
		src += PAGE;
		len -= PAGE;
	}
	return 0;
}

static int place(struct restore *r, uint64_t addr, const uint8_t *data, uint64_t end, int stays,
		 struct pbuf *buf, int now);

/* Each thread's buffer for the blocks it reads from the file; a helper
 * frees its own as it ends, restore_fill_close the caller's. */
static __thread uint8_t *lazy_buf;

/* A block still in the file: read, checked, then written part by part.
 * Errors are only returned: this may run in a helper thread. */
static int run_lazy(struct restore *r, const struct fill_job *j)
{
	const struct img_pages *pg = j->lazy;
	size_t got = 0;

	if (!lazy_buf && !(lazy_buf = malloc((size_t)IMG_MAX_PAGES_PER_RECORD * PAGE)))
		return -ENOMEM;
	while (got < j->len) {
		ssize_t n = pread(r->lazy_fd, lazy_buf + got, j->len - got, (off_t)(pg->data_off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -IMG_ERR_TRUNCATED;  /* the file shrank under us */
		got += (size_t)n;
	}
	int rc = img_pages_check(pg, lazy_buf);
	return rc < 0 ? rc : place(r, j->dst, lazy_buf, j->dst + j->len, 0, NULL, 1);
}

static int run_job(struct filler *f, const struct fill_job *j)
{
	if (j->lazy)
		return run_lazy(f->r, j);
	if (j->uffd)
		return uffd_copy(f, j->dst, j->src, j->len);
	return mem_write(f->pid, f->memfd, j->dst, j->src, j->len);
}

static void put_buf(struct filler *f, struct pbuf *b)
{
	if (b && --b->refs == 0)
		f->free_bufs[f->nfree++] = b;
}

static uint64_t region(uint64_t addr)
{
	return addr >> ARCH_PTE_TABLE_SHIFT;
}

/* Is a page-table region of job j being filled by another thread? */
static int region_busy(const struct filler *f, const struct fill_job *j)
{
	uint64_t lo = region(j->dst), hi = region(j->dst + j->len - 1);

	for (size_t s = 0; s < sizeof(f->busy) / sizeof(f->busy[0]); s++)
		if (f->busy[s].used && f->busy[s].lo <= hi && lo <= f->busy[s].hi)
			return 1;
	return 0;
}

/* Runs the first queued job whose regions no other thread is filling, with
 * f->lock held on entry and on return; 0 when there was none. */
static int take_job(struct filler *f)
{
	size_t k, s = 0;

	while (f->next < f->njobs && f->jobs[f->next].taken)
		f->next++;
	for (k = f->next; k < f->njobs; k++)
		if (!f->jobs[k].taken && !region_busy(f, &f->jobs[k]))
			break;
	if (k == f->njobs)
		k = f->next;  /* every job waiting is in a busy region: better than idle */
	if (k == f->njobs)
		return 0;
	while (f->busy[s].used)
		s++;  /* one slot per thread, and each runs one job */
	f->busy[s].used = 1;
	f->busy[s].lo = region(f->jobs[k].dst);
	f->busy[s].hi = region(f->jobs[k].dst + f->jobs[k].len - 1);
	f->jobs[k].taken = 1;
	struct fill_job j = f->jobs[k];
	int failed = f->err != 0, rc = 0;
	pthread_mutex_unlock(&f->lock);
	if (!failed)
		rc = run_job(f, &j);
	pthread_mutex_lock(&f->lock);
	if (rc < 0 && !f->err) {
		f->err = rc;
		f->err_addr = j.dst;
		f->err_rec = j.lazy ? j.rec : 0;
		f->err_rec_at = j.rec_at;
	}
	f->jobs[k].done = 1;
	f->busy[s].used = 0;
	while (f->low < f->njobs && f->jobs[f->low].done)
		f->low++;
	put_buf(f, j.buf);
	free((void *)j.lazy);
	pthread_cond_broadcast(&f->progress);
	pthread_cond_broadcast(&f->more);  /* a job its region held back may go */
	return 1;
}

static void *helper(void *arg)
{
	struct filler *f = arg;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		if (take_job(f))
			continue;
		if (f->stop)
			break;
		pthread_cond_wait(&f->more, &f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	free(lazy_buf);
	lazy_buf = NULL;
	return NULL;
}

/* Helps with the queue, or waits for a running job: f->lock held. */
static void help_or_wait(struct filler *f)
{
	if (!take_job(f))
		pthread_cond_wait(&f->progress, &f->lock);
}

/* Parallel mode ends: the queue is worked off (the caller helps) and the
 * helpers stop. The filler goes on in the calling thread alone. */
static int drain(struct filler *f)
{
	if (!f->parallel)
		return 0;
	pthread_mutex_lock(&f->lock);
	while (f->low < f->njobs)
		help_or_wait(f);
	f->stop = 1;
	pthread_cond_broadcast(&f->more);
	pthread_mutex_unlock(&f->lock);
	for (int t = 0; t < f->nth; t++)
		pthread_join(f->th[t], NULL);
	f->parallel = 0;
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->more);
	pthread_cond_destroy(&f->progress);
	free(f->jobs);
	f->jobs = NULL;
	return f->err;
}

/* A userfaultfd inside the child, brought over to us, the child's copy
 * closed: -1 when this kernel or its settings give none. */
static int child_uffd(struct restore *r)
{
	long fd, ignored;
	int pidfd, uffd = -1;

	if (remote_syscall(&r->rem, &fd, SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0) < 0 || fd < 0)
		return -1;
	pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
	if (pidfd >= 0) {
		uffd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
		close(pidfd);
	}
	remote_syscall(&r->rem, &ignored, SYS_close, fd, 0, 0, 0, 0, 0);
	struct uffdio_api api = { .api = UFFD_API };
	if (uffd >= 0 && ioctl(uffd, UFFDIO_API, &api) < 0) {
		close(uffd);
		uffd = -1;
	}
	return uffd;
}

static int registrable(const Roamimg__Vma *v)
{
	int anon = v->kind == ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE ||
		   (v->kind == ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE && v->carried);
	/* Read-only and PROT_NONE mappings keep the forced write of
	 * /proc/PID/mem, which is what they had. */
	return anon && (v->prot & PROT_WRITE) && !(v->madv & VMA_MADV_HUGEPAGE);
}

int restore_fill_open(struct restore *r)
{
	const Roamimg__Mm *mm = r->mm;
	struct filler *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->r = r;
	f->pid = r->pid;
	f->memfd = r->memfd;
	f->nvmas = mm->n_vmas;
	f->registered = calloc(mm->n_vmas + 1, 1);
	if (!f->registered) {
		free(f);
		return -ENOMEM;
	}
	r->fill = f;
	f->uffd = child_uffd(r);
	for (size_t i = 0; f->uffd >= 0 && i < mm->n_vmas; i++) {
		const Roamimg__Vma *v = mm->vmas[i];
		struct uffdio_register reg = { .range = { v->start, v->end - v->start },
					       .mode = UFFDIO_REGISTER_MODE_MISSING };
		if (registrable(v) && ioctl(f->uffd, UFFDIO_REGISTER, &reg) == 0)
			f->registered[i] = (reg.ioctls & (1ull << _UFFDIO_COPY)) != 0;
	}
	int cpus = r->hold.held ? cpu_spread_width(&r->hold) : cpu_allowed();
	f->helpers = cpus - 1 > MAX_HELPERS ? MAX_HELPERS : cpus - 1;
	/* The tests' way to run a stream's parallel fill whatever the pace. */
	f->helpers_at_once = getenv("ROAM_FILL_HELPERS") != NULL;
	return 0;
}

/* Parallel mode begins: the helper threads start. */
static void start_helpers(struct filler *f)
{
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->more, NULL);
	pthread_cond_init(&f->progress, NULL);
	f->parallel = 1;
	for (int t = 0; t < f->helpers; t++) {
		pthread_attr_t at;
		pthread_attr_init(&at);
		/* The caller is held on one CPU (restore.c): from a file each
		 * helper gets one of its own, from a stream any. */
		if (f->r->lazy_fd >= 0)
			cpu_spread_attr(&f->r->hold, &at);
		else
			cpu_spread_attr_any(&f->r->hold, &at);
		int rc = pthread_create(&f->th[t], &at, helper, f);
		pthread_attr_destroy(&at);
		if (rc != 0)
			break;
		f->nth++;
	}
	f->helpers = 0;  /* once */
	f->r->stats.fill_helpers = (uint32_t)f->nth;
	f->maxbufs = 2 * (f->nth + 1);
	if (!f->nth)
		drain(f);
}

/* Queues a job once no queued or running job writes any of its pages: two
 * copies of a page land in stream order. f->lock held. */
static int queue(struct filler *f, const struct fill_job *j)
{
	if (f->low == f->njobs) {
		f->span_lo = UINT64_MAX;
		f->span_hi = 0;
	}
	/* Jobs mostly come in address order, up or down (shared memory's go to
	 * its masters): one outside the span of those queued meets none of
	 * them, without a look at each (there may be thousands). */
	int outside = j->dst >= f->span_hi || j->dst + j->len <= f->span_lo;
	for (size_t k = f->low; !outside && k < f->njobs; k++) {
		const struct fill_job *o = &f->jobs[k];
		if (!o->done && o->dst < j->dst + j->len && j->dst < o->dst + o->len) {
			help_or_wait(f);
			k = f->low - 1;  /* look again: the queue moved */
		}
	}
	if (f->njobs == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		struct fill_job *n = realloc(f->jobs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		f->jobs = n;
		f->cap = cap;
	}
	f->jobs[f->njobs++] = *j;
	if (j->dst < f->span_lo)
		f->span_lo = j->dst;
	if (j->dst + j->len > f->span_hi)
		f->span_hi = j->dst + j->len;
	if (j->buf)
		j->buf->refs++;
	pthread_cond_signal(&f->more);
	return f->err;
}

/* One part of a block, inside mapping vi: queued when its data stays
 * (an image in memory) or was taken from the reader (buf). */
static int fill(struct restore *r, size_t vi, uint64_t dst, const uint8_t *src, size_t len, int stays,
		struct pbuf *buf)
{
	struct filler *f = r->fill;
	struct fill_job j = { .dst = dst, .src = src, .len = len, .buf = buf };
	int rc;

	if (!f)
		return mem_write(r->pid, r->memfd, dst, src, len);
	j.uffd = vi < f->nvmas && f->registered[vi];
	if (f->parallel && !stays && !buf && (rc = drain(f)) < 0)
		return rc;
	if (!f->parallel)
		return run_job(f, &j);
	pthread_mutex_lock(&f->lock);
	rc = queue(f, &j);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* The reader's payload buffer, for the jobs of the block it holds; the
 * reader gets a spare one from the pool (waiting for one to come back when
 * all are out). NULL when the block is to be written at once. */
static struct pbuf *take_payload(struct filler *f, struct img_reader *rd)
{
	struct pbuf *b;

	pthread_mutex_lock(&f->lock);
	while (!f->nfree && f->nbufs == f->maxbufs)
		help_or_wait(f);
	if (f->nfree) {
		b = f->free_bufs[--f->nfree];
	} else {
		b = &f->bufs[f->nbufs++];
		*b = (struct pbuf){ NULL, 0, 0 };
	}
	pthread_mutex_unlock(&f->lock);
	size_t size = 0;
	uint8_t *p = img_reader_swap_payload(rd, b->p, b->size, &size);
	b->p = p;
	b->size = size;
	b->refs = 1;  /* the caller's, until every part is queued */
	return b;
}

/* Fails the restore for a write that failed with rc at addr, or for the
 * queued block that failed earlier (which names its own pages): a block
 * read from the file that failed its check names its record, as the
 * reader does. */
static int fill_error(struct restore *r, int rc, uint64_t addr, uint64_t rec, uint64_t rec_at)
{
	struct filler *f = r->fill;

	if (f && f->parallel)
		pthread_mutex_lock(&f->lock);
	if (f && f->err) {
		rc = f->err;
		addr = f->err_addr;
		rec = f->err_rec;
		rec_at = f->err_rec_at;
	}
	if (f && f->parallel)
		pthread_mutex_unlock(&f->lock);
	if (rec && img_is_error(rc))
		return roam_fail(r->err, -ROAM_E_IMAGE, "record %llu (pages) at byte %llu: %s", (unsigned long long)rec,
				 (unsigned long long)rec_at, img_strerror(rc));
	return roam_fail(r->err, rc, "writing the pages at %llx", (unsigned long long)addr);
}

/* Where the pages at addr, inside mapping v, are written: shared anonymous
 * ones into their object's master. 0, with why, when nowhere. */
static uint64_t target_of(const struct restore *r, const Roamimg__Vma *v, uint64_t addr, const char **why)
{
	if (v->kind == ROAMIMG__VMA_KIND__VMA_ANON_SHARED) {
		const struct shm_master *m = restore_find_master(r, v->shm_id);
		if (m)
			return m->addr + v->pgoff + (addr - v->start);
		*why = "no shared object";
		return 0;
	}
	if (v->kind == ROAMIMG__VMA_KIND__VMA_VDSO || v->kind == ROAMIMG__VMA_KIND__VMA_VVAR ||
	    v->kind == ROAMIMG__VMA_KIND__VMA_FILE_SHARED) {
		*why = "in a mapping that carries none";
		return 0;
	}
	return addr;
}

/* Writes the pages [addr, end), whose bytes start at data, each part where
 * its mapping is (a block may cover adjacent mappings): queued (fill), or
 * with now written at once by the calling thread, and errors only returned
 * (it may be a helper). */
static int place(struct restore *r, uint64_t addr, const uint8_t *data, uint64_t end, int stays,
		 struct pbuf *buf, int now)
{
	struct filler *f = r->fill;
	int rc;

	while (addr < end) {
		const char *why = "lie outside every mapping";
		ssize_t i = img_find_vma(r->mm, addr);
		uint64_t dst = i < 0 ? 0 : target_of(r, r->mm->vmas[i], addr, &why);
		if (!dst)
			return now ? -ROAM_E_IMAGE
				   : roam_fail(r->err, -ROAM_E_IMAGE, "pages at %llx %s", (unsigned long long)addr, why);
		uint64_t part_end = r->mm->vmas[i]->end < end ? r->mm->vmas[i]->end : end;
		size_t len = (size_t)(part_end - addr);
		if (now) {
			struct fill_job j = { .dst = dst, .src = data, .len = len,
					      .uffd = f && (size_t)i < f->nvmas && f->registered[i] };
			rc = f ? run_job(f, &j) : mem_write(r->pid, r->memfd, dst, data, len);
		} else {
			rc = fill(r, (size_t)i, dst, data, len, stays, buf);
		}
		if (rc < 0)
			return now ? rc : fill_error(r, rc, addr, 0, 0);
		data += len;
		addr = part_end;
	}
	return 0;
}

/* A block whose data is still in the file: queued whole (a helper reads,
 * checks and writes it), or all that at once. */
static int place_lazy(struct restore *r, const struct img_pages *pg, const struct img_reader *rd)
{
	struct filler *f = r->fill;
	struct img_pages *copy = malloc(sizeof(*copy));
	struct fill_job j = {
		.dst = pg->addr, .len = (size_t)pg->npages * PAGE, .lazy = copy, .rec = rd->records,
		.rec_at = pg->data_off - rd->lazy_base - IMG_PAGES_OVERHEAD,
	};
	int rc;

	if (!copy)
		return roam_fail(r->err, -ENOMEM, "reading the pages at %llx", (unsigned long long)pg->addr);
	*copy = *pg;
	if (f && f->parallel) {
		pthread_mutex_lock(&f->lock);
		if ((rc = queue(f, &j)) == -ENOMEM && !f->err)
			free(copy);  /* not queued */
		pthread_mutex_unlock(&f->lock);
		return rc < 0 ? fill_error(r, rc, pg->addr, 0, 0) : 0;
	}
	rc = run_lazy(r, &j);
	free(copy);
	return rc < 0 ? fill_error(r, rc, pg->addr, j.rec, j.rec_at) : 0;
}

/*
 * Whether the helpers start with this block. Not before the fifth: a small
 * image is written at once, without the cost of threads and buffers. From
 * a file, whose size tells what is left, they start at once when that is
 * large; from an image in memory, at the fifth block.
 *
 * From a stream, only once filling takes the reader twice as long as
 * reading (receiving, opening) over the last PACE_WINDOW bytes of pages:
 * then the fill, not the stream, sets the pace, and helpers share it out.
 * Bytes, not blocks: a small block costs its fill a call of its own but its
 * read next to nothing, so a run of them looked fill-bound (a stream held to
 * 32 MB/s started helpers at its fifth block). While the stream sets it, a
 * helper fills nothing sooner and takes a CPU from whatever else runs: on
 * one machine, the migration's source. Cold 64 MiB
 * migrations on the test VM, medians of 40, encrypted: 63.4 ms against
 * 74.8 with helpers from the fifth block; in clear, 54.7 against 55.1. A
 * GiB, where fresh pages (microseconds each on that VM) slow the fill down
 * midway and the helpers start then: 1018 against 1004 ms, medians of 21.
 * No helpers at all gave 58.8 against 69.3 ms at 64 MiB, but 2.2 to 3.2 s
 * against 1.4 to 2.0 for a GiB of fresh pages.
 */
static int helpers_pay(struct restore *r, const struct img_pages *pg, const struct img_reader *rd)
{
	struct filler *f = r->fill;
	unsigned n = ++f->blocks;
	int pays;

	if (r->lazy_fd >= 0 || r->mem_image || f->helpers_at_once)
		return n == HELPERS_AFTER ||
		       (pg->lazy && rd && rd->lazy_size - (rd->lazy_base + rd->bytes) >=
					     HELPERS_AFTER * IMG_MAX_PAGES_PER_RECORD * ARCH_PAGE_SIZE);
	f->block_in = mono_ns();
	if (f->block_out)
		f->read_ns += f->block_in - f->block_out;
	if (f->window_pages * ARCH_PAGE_SIZE < PACE_WINDOW)
		return 0;
	pays = f->fill_ns >= 2 * f->read_ns;
	f->fill_ns = f->read_ns = 0;
	f->window_pages = 0;
	return pays;
}

int restore_pages(struct restore *r, const struct img_pages *pg, struct img_reader *rd)
{
	uint64_t end = pg->addr + (uint64_t)pg->npages * ARCH_PAGE_SIZE;
	/* Raw blocks of an image in memory point into it; those of a stream
	 * into the reader's payload buffer, which is taken; compressed ones into
	 * a buffer the next block reuses. */
	int stays = r->mem_image && pg->codec == IMG_CODEC_NONE;
	struct pbuf *buf = NULL;
	int rc;

	if (r->fill && r->fill->helpers && helpers_pay(r, pg, rd))
		start_helpers(r->fill);
	if (pg->lazy) {
		rc = place_lazy(r, pg, rd);
	} else {
		if (!stays && rd && r->fill && r->fill->parallel && pg->codec == IMG_CODEC_NONE)
			buf = take_payload(r->fill, rd);
		rc = place(r, pg->addr, pg->data, end, stays, buf, 0);
		if (buf) {
			pthread_mutex_lock(&r->fill->lock);
			put_buf(r->fill, buf);
			pthread_mutex_unlock(&r->fill->lock);
		}
	}
	if (r->fill && r->fill->helpers && r->fill->block_in) {
		r->fill->block_out = mono_ns();
		r->fill->fill_ns += r->fill->block_out - r->fill->block_in;
		r->fill->window_pages += pg->npages;
	}
	if (rc == 0)
		r->stats.pages += pg->npages;
	return rc;
}

int restore_fill_close(struct restore *r, int abort)
{
	struct filler *f = r->fill;
	int rc;

	free(lazy_buf);  /* this thread's: the helpers free their own */
	lazy_buf = NULL;
	if (!f)
		return 0;
	if (abort && f->parallel) {
		pthread_mutex_lock(&f->lock);
		f->err = f->err ? f->err : -ECANCELED;  /* the jobs left are skipped */
		pthread_mutex_unlock(&f->lock);
	}
	rc = drain(f);
	if (rc < 0 && !abort && !r->err->code)
		fill_error(r, rc, f->err_addr, 0, 0);
	/* The last reference: the kernel unregisters every mapping. */
	if (f->uffd >= 0)
		close(f->uffd);
	for (int i = 0; i < f->nbufs; i++)
		free(f->bufs[i].p);
	free(f->registered);
	free(f);
	r->fill = NULL;
	return rc;
}
