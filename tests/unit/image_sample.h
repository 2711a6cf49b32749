/*
 * A small, complete sample image for the image tests, the fuzz seeds and
 * tests/integration/image_inspect.sh: every record type, every kind of
 * mapping and descriptor, compressible, incompressible, zero and repeated
 * pages. Static functions only: each test program is one translation unit.
 *
 * A test may change any message of struct sample before writing it, or write
 * the records in another order with sample_write_steps().
 */
#ifndef ROAM_TEST_IMAGE_SAMPLE_H
#define ROAM_TEST_IMAGE_SAMPLE_H

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <fcntl.h>

#include <xxhash.h>

#include "image/image.h"
#include "image/load.h"

/* --- an in-memory stream ----------------------------------------------- */

struct membuf {
	uint8_t *p;
	size_t len, cap;
	size_t pos;      /* read position */
	size_t chunk;    /* if set, reads return at most this many bytes */
	size_t limit;    /* if set, writes fail with ENOSPC past this many bytes */
};

static int mem_write(void *ctx, const void *buf, size_t len)
{
	struct membuf *m = ctx;

	if (m->limit && m->len + len > m->limit)
		return -ENOSPC;
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		while (cap < m->len + len)
			cap *= 2;
		void *n = realloc(m->p, cap);
		if (!n)
			return -ENOMEM;
		m->p = n;
		m->cap = cap;
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
	struct membuf *m = ctx;
	size_t n = m->len - m->pos;

	if (n > len)
		n = len;
	if (m->chunk && n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

static void membuf_free(struct membuf *m)
{
	free(m->p);
	memset(m, 0, sizeof(*m));
}

/*
 * Appends one record with any type and flags and a correct check, which
 * img_write_record refuses to do for types the reader does not know.
 */
static int raw_record(struct membuf *m, uint32_t type, uint32_t flags, const void *payload, size_t len)
{
	uint8_t *buf = malloc(IMG_RECORD_HDR_SIZE + len);
	uint64_t check;
	int rc;

	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < 4; i++) {
		buf[i] = (uint8_t)(type >> (8 * i));
		buf[4 + i] = (uint8_t)(flags >> (8 * i));
	}
	for (int i = 0; i < 8; i++)
		buf[8 + i] = (uint8_t)((uint64_t)len >> (8 * i));
	if (len)
		memcpy(buf + IMG_RECORD_HDR_SIZE, payload, len);
	/* The check covers header bytes 0..15 and the payload: hash them as one run. */
	memmove(buf + 16, buf + IMG_RECORD_HDR_SIZE, len);
	check = XXH3_64bits(buf, 16 + len);
	memmove(buf + IMG_RECORD_HDR_SIZE, buf + 16, len);
	for (int i = 0; i < 8; i++)
		buf[16 + i] = (uint8_t)(check >> (8 * i));
	rc = mem_write(m, buf, IMG_RECORD_HDR_SIZE + len);
	free(buf);
	return rc;
}

/* --- the sample -------------------------------------------------------- */

#define S_EXE   0x400000ull
#define S_HEAP  0x600000ull
#define S_SHM   0x7f0000000000ull
#define S_STACK 0x7ffd00000000ull
#define S_VDSO  0x7ffd10000000ull
#define S_NPAGES 7           /* page copies the sample carries */
#define S_UNIQUE 6           /* distinct pages */
#define S_ZERO   1           /* all-zero pages */

struct sample_block {
	uint64_t addr;
	uint32_t npages;
	int fill;            /* 0 zero, 1 compressible, 2 random */
	uint8_t seed;
};

static const struct sample_block sample_blocks[] = {
	{S_HEAP, 2, 1, 'A'},                  /* compressible */
	{S_HEAP + 0x2000, 2, 2, 7},           /* incompressible */
	{S_SHM, 1, 0, 0},                     /* a zero page */
	{S_STACK + 0x20000, 1, 1, 'S'},
	{S_HEAP, 1, 1, 'B'},                  /* a later round of the heap's first page */
};

struct sample {
	Roamimg__Header hdr;
	Roamimg__Platform plat;
	uint32_t cpuid[5];
	uint8_t vdso_hash[16];

	Roamimg__Process proc;
	Roamimg__Creds creds;
	uint32_t groups[2];
	Roamimg__Rlimit rl[2], *rlp[2];
	Roamimg__SigAction sa[2], *sap[2];
	Roamimg__SigInfo spend, *spendp[1];
	uint8_t siginfo[128];
	Roamimg__Itimer it, *itp[1];
	Roamimg__PosixTimer pt[2], *ptp[2];
	Roamimg__Clocks clocks;

	Roamimg__Mm mm;
	Roamimg__Vma vma[5], *vmap[5];
	Roamimg__MappedFile mf, *mfp[1];
	uint8_t file_hash[16];
	uint8_t auxv[32];

	Roamimg__Files files;
	Roamimg__Fd fd[15], *fdp[15];
	Roamimg__InetSock inet[2];
	Roamimg__SockOpt sopt, *soptp[1];
	Roamimg__TcpConn tcp;
	Roamimg__InotifyWatch iw[2], *iwp[2];
	Roamimg__FileLock lock[3], *lockp[3];
	Roamimg__TimerFd timer;
	Roamimg__EpollWatch watch[2], *watchp[2];

	Roamimg__Threads threads;
	Roamimg__Thread th[2], *thp[2];
	Roamimg__GpRegsX86 regs[2];
	Roamimg__SigAltStack alt;
	Roamimg__Rseq rseq;
	Roamimg__SigInfo tpend, *tpendp[1];

	int codec;
	uint8_t *page_buf;   /* scratch for page blocks */
};

static void sample_fill(uint8_t *p, const struct sample_block *b)
{
	size_t n = (size_t)b->npages * 4096;
	uint32_t x = 0x9e3779b9u * (b->seed + 1u);

	for (size_t i = 0; i < n; i++) {
		if (b->fill == 0) {
			p[i] = 0;
		} else if (b->fill == 1) {
			p[i] = (uint8_t)(b->seed + (i / 512));
		} else {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			p[i] = (uint8_t)x;
		}
	}
}

static void sample_vma(Roamimg__Vma *v, uint64_t start, uint64_t end, uint32_t prot, int kind,
		       const char *name)
{
	*v = (Roamimg__Vma)ROAMIMG__VMA__INIT;
	v->start = start;
	v->end = end;
	v->prot = prot;
	v->kind = kind;
	if (name) {
		v->name = (char *)name;
		v->path = (char *)name;
	}
}

static void sample_fd(Roamimg__Fd *d, uint32_t fd, int kind, uint32_t file_id, const char *path)
{
	*d = (Roamimg__Fd)ROAMIMG__FD__INIT;
	d->fd = fd;
	d->kind = kind;
	d->file_id = file_id;
	d->path = (char *)path;
}

static void sample_regs(Roamimg__GpRegsX86 *r, uint64_t rip, uint64_t rsp)
{
	*r = (Roamimg__GpRegsX86)ROAMIMG__GP_REGS_X86__INIT;
	r->rip = rip;
	r->rsp = rsp;
	r->cs = 0x33;
	r->ss = 0x2b;
	r->eflags = 0x246;
	r->orig_rax = (uint64_t)-1;
	r->fs_base = S_HEAP + 0x100;
}

static void sample_init(struct sample *s, int codec)
{
	memset(s, 0, sizeof(*s));
	s->codec = codec;

	s->hdr = (Roamimg__Header)ROAMIMG__HEADER__INIT;
	s->hdr.version = IMG_FORMAT_VERSION;
	s->hdr.arch = (char *)"x86_64";
	s->hdr.page_size = 4096;
	s->hdr.hostname = (char *)"testhost";
	s->hdr.has_created_ns = 1;
	s->hdr.created_ns = 1795740000ull * 1000000000ull;   /* 2026-11-27 */
	s->hdr.tool = (char *)"roam test";

	s->plat = (Roamimg__Platform)ROAMIMG__PLATFORM__INIT;
	s->plat.has_xfeatures = 1;
	s->plat.xfeatures = 0x2e7;
	s->plat.has_xsave_size = 1;
	s->plat.xsave_size = 2696;
	for (int i = 0; i < 16; i++)
		s->vdso_hash[i] = (uint8_t)(0xa0 + i);
	s->plat.has_vdso_hash = 1;
	s->plat.vdso_hash = (ProtobufCBinaryData){16, s->vdso_hash};
	s->plat.has_vdso_size = 1;
	s->plat.vdso_size = 8192;
	s->cpuid[0] = 0x7ffafbff;
	s->cpuid[1] = 0xbfebfbff;
	s->plat.n_cpuid_features = 5;
	s->plat.cpuid_features = s->cpuid;

	s->creds = (Roamimg__Creds)ROAMIMG__CREDS__INIT;
	s->creds.uid = s->creds.euid = s->creds.suid = s->creds.fsuid = 1000;
	s->creds.gid = s->creds.egid = s->creds.sgid = s->creds.fsgid = 1000;
	s->groups[0] = 1000;
	s->groups[1] = 27;
	s->creds.n_groups = 2;
	s->creds.groups = s->groups;
	s->creds.cap_bnd = 0x1ffffffffffull;
	s->proc = (Roamimg__Process)ROAMIMG__PROCESS__INIT;
	s->proc.pid = 4242;
	s->proc.pgid = 4242;
	s->proc.sid = 4000;
	s->proc.creds = &s->creds;
	s->proc.cwd = (char *)"/tmp/work";
	s->proc.umask = 022;
	for (int i = 0; i < 2; i++) {
		s->rl[i] = (Roamimg__Rlimit)ROAMIMG__RLIMIT__INIT;
		s->rlp[i] = &s->rl[i];
	}
	s->rl[0].resource = RLIMIT_NOFILE;
	s->rl[0].cur = 1024;
	s->rl[0].max = 4096;
	s->rl[1].resource = RLIMIT_STACK;
	s->rl[1].cur = 8 << 20;
	s->rl[1].max = (uint64_t)RLIM_INFINITY;
	s->proc.n_rlimits = 2;
	s->proc.rlimits = s->rlp;
	for (int i = 0; i < 2; i++) {
		s->sa[i] = (Roamimg__SigAction)ROAMIMG__SIG_ACTION__INIT;
		s->sap[i] = &s->sa[i];
	}
	s->sa[0].signo = SIGUSR1;
	s->sa[0].handler = S_EXE + 0x120;
	s->sa[0].flags = 0x14000000;   /* SA_RESTORER | SA_RESTART */
	s->sa[0].restorer = S_EXE + 0x200;
	s->sa[0].mask = 1ull << (SIGUSR2 - 1);
	s->sa[1].signo = SIGINT;
	s->sa[1].handler = 1;          /* SIG_IGN */
	s->proc.n_sigactions = 2;
	s->proc.sigactions = s->sap;
	s->spend = (Roamimg__SigInfo)ROAMIMG__SIG_INFO__INIT;
	s->spend.signo = SIGUSR2;
	s->spend.code = 0;
	s->siginfo[0] = SIGUSR2;
	s->spend.raw = (ProtobufCBinaryData){128, s->siginfo};
	s->spendp[0] = &s->spend;
	s->proc.n_shared_pending = 1;
	s->proc.shared_pending = s->spendp;
	s->it = (Roamimg__Itimer)ROAMIMG__ITIMER__INIT;
	s->it.which = ITIMER_REAL;
	s->it.interval_us = 250000;
	s->it.value_us = 120000;
	s->itp[0] = &s->it;
	s->proc.n_itimers = 1;
	s->proc.itimers = s->itp;
	/* POSIX timers: one signalling the process, one a thread (id 3: a hole). */
	for (int i = 0; i < 2; i++) {
		s->pt[i] = (Roamimg__PosixTimer)ROAMIMG__POSIX_TIMER__INIT;
		s->ptp[i] = &s->pt[i];
		s->pt[i].clockid = CLOCK_MONOTONIC;
		s->pt[i].signo = SIGUSR1;
		s->pt[i].interval_ns = 20000000;
		s->pt[i].value_ns = 5000000;
	}
	s->pt[1].id = 3;
	s->pt[1].notify = SIGEV_THREAD_ID | SIGEV_SIGNAL;
	s->pt[1].has_tid = 1;
	s->pt[1].tid = 4243;
	s->pt[1].sigev_value = 0x601000;
	s->proc.n_posix_timers = 2;
	s->proc.posix_timers = s->ptp;
	s->clocks = (Roamimg__Clocks)ROAMIMG__CLOCKS__INIT;
	s->clocks.monotonic_ns = 123456789012;
	s->clocks.boottime_ns = 123556789012;
	s->clocks.realtime_ns = (int64_t)s->hdr.created_ns;
	s->proc.clocks = &s->clocks;
	s->proc.root = (char *)"/";

	s->mm = (Roamimg__Mm)ROAMIMG__MM__INIT;
	sample_vma(&s->vma[0], S_EXE, S_EXE + 0x1000, PROT_READ | PROT_EXEC,
		   ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE, "/usr/bin/sample");
	s->vma[0].has_file_id = 1;
	s->vma[0].file_id = 0;
	s->vma[0].has_pgoff = 1;
	sample_vma(&s->vma[1], S_HEAP, S_HEAP + 0x4000, PROT_READ | PROT_WRITE,
		   ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE, "[heap]");
	sample_vma(&s->vma[2], S_SHM, S_SHM + 0x10000, PROT_READ | PROT_WRITE,
		   ROAMIMG__VMA_KIND__VMA_ANON_SHARED, NULL);
	s->vma[2].has_shm_id = 1;
	s->vma[2].shm_id = 1;
	s->vma[2].has_madv = 1;
	s->vma[2].madv = VMA_MADV_DONTFORK;
	sample_vma(&s->vma[3], S_STACK, S_STACK + 0x21000, PROT_READ | PROT_WRITE,
		   ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE, "[stack]");
	s->vma[3].has_growsdown = 1;
	s->vma[3].growsdown = 1;
	sample_vma(&s->vma[4], S_VDSO, S_VDSO + 0x2000, PROT_READ | PROT_EXEC,
		   ROAMIMG__VMA_KIND__VMA_VDSO, "[vdso]");
	for (int i = 0; i < 5; i++)
		s->vmap[i] = &s->vma[i];
	s->mm.n_vmas = 5;
	s->mm.vmas = s->vmap;
	s->mf = (Roamimg__MappedFile)ROAMIMG__MAPPED_FILE__INIT;
	s->mf.path = (char *)"/usr/bin/sample";
	s->mf.size = 4096;
	memset(s->file_hash, 0x5a, sizeof(s->file_hash));
	s->mf.hash = (ProtobufCBinaryData){16, s->file_hash};
	s->mf.has_mode = 1;
	s->mf.mode = 0100755;
	s->mfp[0] = &s->mf;
	s->mm.n_files = 1;
	s->mm.files = s->mfp;
	s->mm.start_code = S_EXE;
	s->mm.end_code = S_EXE + 0x800;
	s->mm.start_data = S_EXE + 0x800;
	s->mm.end_data = S_EXE + 0x1000;
	s->mm.start_brk = S_HEAP;
	s->mm.brk = S_HEAP + 0x4000;
	s->mm.start_stack = S_STACK + 0x20f00;
	s->mm.arg_start = S_STACK + 0x20f80;
	s->mm.arg_end = S_STACK + 0x20fa0;
	s->mm.env_start = S_STACK + 0x20fa0;
	s->mm.env_end = S_STACK + 0x20ff0;
	s->auxv[0] = 33;
	s->mm.auxv = (ProtobufCBinaryData){sizeof(s->auxv), s->auxv};
	s->mm.exe_path = (char *)"/usr/bin/sample";
	s->mm.has_exe_file_id = 1;
	s->mm.exe_file_id = 0;

	s->files = (Roamimg__Files)ROAMIMG__FILES__INIT;
	sample_fd(&s->fd[0], 0, ROAMIMG__FD_KIND__FD_CHR, 0, "/dev/null");
	s->fd[0].has_rdev = 1;
	s->fd[0].rdev = 0x103;
	sample_fd(&s->fd[1], 1, ROAMIMG__FD_KIND__FD_EXTERNAL, 1, NULL);
	s->fd[1].external = (char *)"pipe:[98765]";
	sample_fd(&s->fd[2], 2, ROAMIMG__FD_KIND__FD_EXTERNAL, 1, NULL);
	s->fd[2].external = (char *)"pipe:[98765]";
	sample_fd(&s->fd[3], 3, ROAMIMG__FD_KIND__FD_REG, 2, "/tmp/work/data.log");
	s->fd[3].has_flags = 1;
	s->fd[3].flags = O_WRONLY | O_APPEND;
	s->fd[3].has_pos = 1;
	s->fd[3].pos = 1234;
	s->fd[3].has_cloexec = 1;
	s->fd[3].cloexec = 1;
	for (int i = 0; i < 3; i++) {
		s->lock[i] = (Roamimg__FileLock)ROAMIMG__FILE_LOCK__INIT;
		s->lockp[i] = &s->lock[i];
	}
	s->lock[0].kind = ROAMIMG__LOCK_KIND__LOCK_POSIX;  /* bytes 10-19, written */
	s->lock[0].write = 1;
	s->lock[0].start = 10;
	s->lock[0].has_end = 1;
	s->lock[0].end = 19;
	s->lock[1].kind = ROAMIMG__LOCK_KIND__LOCK_OFD;    /* from byte 100 on, read */
	s->lock[1].start = 100;
	s->lock[2].kind = ROAMIMG__LOCK_KIND__LOCK_FLOCK;  /* the directory's, shared */
	s->fd[3].n_locks = 2;
	s->fd[3].locks = s->lockp;
	sample_fd(&s->fd[4], 4, ROAMIMG__FD_KIND__FD_DIR, 3, "/tmp/work");
	s->fd[4].n_locks = 1;
	s->fd[4].locks = &s->lockp[2];
	sample_fd(&s->fd[5], 5, ROAMIMG__FD_KIND__FD_PIPE, 4, NULL);
	s->fd[5].has_pipe_id = 1;
	s->fd[5].pipe_id = 77;
	s->fd[5].has_pipe_data = 1;
	s->fd[5].pipe_data = (ProtobufCBinaryData){5, (uint8_t *)"hello"};
	sample_fd(&s->fd[6], 6, ROAMIMG__FD_KIND__FD_PIPE, 5, NULL);
	s->fd[6].has_pipe_id = 1;
	s->fd[6].pipe_id = 77;
	s->fd[6].has_pipe_write_end = 1;
	s->fd[6].pipe_write_end = 1;
	/* Objects restore makes: an eventfd, a timerfd, an epoll watching the
	 * eventfd and a socket pair's end, and the pair with bytes queued. */
	sample_fd(&s->fd[7], 7, ROAMIMG__FD_KIND__FD_EVENTFD, 6, NULL);
	s->fd[7].has_eventfd_count = s->fd[7].has_eventfd_semaphore = 1;
	s->fd[7].eventfd_count = 42;
	s->fd[7].eventfd_semaphore = 1;
	sample_fd(&s->fd[8], 8, ROAMIMG__FD_KIND__FD_TIMERFD, 7, NULL);
	s->timer = (Roamimg__TimerFd)ROAMIMG__TIMER_FD__INIT;
	s->timer.clockid = 1;
	s->timer.value_ns = 1500000000;
	s->timer.interval_ns = 20000000;
	s->timer.ticks = 3;
	s->fd[8].timer = &s->timer;
	sample_fd(&s->fd[9], 9, ROAMIMG__FD_KIND__FD_EPOLL, 8, NULL);
	for (int i = 0; i < 2; i++) {
		s->watch[i] = (Roamimg__EpollWatch)ROAMIMG__EPOLL_WATCH__INIT;
		s->watchp[i] = &s->watch[i];
	}
	s->watch[0].fd = 7;
	s->watch[0].events = 0x19;
	s->watch[0].data = 0x1111;
	s->watch[1].fd = 10;
	s->watch[1].events = 0x80000019;
	s->watch[1].data = 0x2222;
	s->fd[9].n_watches = 2;
	s->fd[9].watches = s->watchp;
	for (int i = 10; i < 12; i++) {
		sample_fd(&s->fd[i], (uint32_t)i, ROAMIMG__FD_KIND__FD_SOCKPAIR, (uint32_t)i - 1, NULL);
		s->fd[i].has_sock_type = s->fd[i].has_pair_id = s->fd[i].has_pair_end = 1;
		s->fd[i].sock_type = 1;  /* SOCK_STREAM */
		s->fd[i].pair_id = 88;
		s->fd[i].pair_end = (uint32_t)i - 10;
	}
	s->fd[10].has_sock_queued = 1;
	s->fd[10].sock_queued = (ProtobufCBinaryData){6, (uint8_t *)"queued"};
	sample_fd(&s->fd[12], 12, ROAMIMG__FD_KIND__FD_INOTIFY, 11, NULL);
	for (int i = 0; i < 2; i++) {
		s->iw[i] = (Roamimg__InotifyWatch)ROAMIMG__INOTIFY_WATCH__INIT;
		s->iwp[i] = &s->iw[i];
		s->iw[i].wd = 2 + 3 * i;
		s->iw[i].mask = 0x300;
		s->iw[i].path = (char *)(i ? "/tmp/work/in" : "/tmp/work");
	}
	s->fd[12].n_inotify = 2;
	s->fd[12].inotify = s->iwp;
	/* A TCP listener on 127.0.0.1:8000 with SO_REUSEADDR, and an
	 * established connection from it to 127.0.0.1:51000. */
	static uint8_t lo[16] = { 127, 0, 0, 1 };   /* room for a forged length of 16 */
	s->sopt = (Roamimg__SockOpt)ROAMIMG__SOCK_OPT__INIT;
	s->sopt.level = 1, s->sopt.name = 2, s->sopt.value = 1;   /* SOL_SOCKET, SO_REUSEADDR */
	s->soptp[0] = &s->sopt;
	s->tcp = (Roamimg__TcpConn)ROAMIMG__TCP_CONN__INIT;
	s->tcp.snd_seq = 1000, s->tcp.rcv_seq = 2000, s->tcp.mss = 65483;
	s->tcp.has_send_queue = 1, s->tcp.send_queue = (ProtobufCBinaryData){5, (uint8_t *)"unack"};
	s->tcp.has_wscale = s->tcp.wscale = s->tcp.has_snd_wscale = s->tcp.has_rcv_wscale = 1;
	s->tcp.snd_wscale = 7, s->tcp.rcv_wscale = 7;
	s->tcp.snd_wnd = s->tcp.max_window = s->tcp.rcv_wnd = 65536;
	for (int i = 0; i < 2; i++) {
		sample_fd(&s->fd[13 + i], 13 + (uint32_t)i, ROAMIMG__FD_KIND__FD_INET, 12 + (uint32_t)i, NULL);
		s->inet[i] = (Roamimg__InetSock)ROAMIMG__INET_SOCK__INIT;
		s->inet[i].family = 2, s->inet[i].type = 1;   /* AF_INET, SOCK_STREAM */
		s->inet[i].addr = (ProtobufCBinaryData){4, lo};
		s->inet[i].port = 8000;
		s->inet[i].n_opts = 1, s->inet[i].opts = s->soptp;
		s->fd[13 + i].inet = &s->inet[i];
	}
	s->inet[0].has_backlog = 1, s->inet[0].backlog = 128;
	s->inet[1].has_peer_addr = s->inet[1].has_peer_port = 1;
	s->inet[1].peer_addr = (ProtobufCBinaryData){4, lo};
	s->inet[1].peer_port = 51000;
	s->inet[1].tcp = &s->tcp;
	s->files.netlock = (char *)"roam";
	for (int i = 0; i < 15; i++)
		s->fdp[i] = &s->fd[i];
	s->files.n_fds = 15;
	s->files.fds = s->fdp;

	s->threads = (Roamimg__Threads)ROAMIMG__THREADS__INIT;
	for (int i = 0; i < 2; i++) {
		s->th[i] = (Roamimg__Thread)ROAMIMG__THREAD__INIT;
		s->th[i].regs = &s->regs[i];
		s->thp[i] = &s->th[i];
	}
	sample_regs(&s->regs[0], S_EXE + 0x42, S_STACK + 0x20e00);
	s->th[0].tid = 4242;
	s->th[0].comm = (char *)"sample";
	s->th[0].sigmask = 1ull << (SIGUSR2 - 1);
	s->th[0].has_restarted_syscall = 1;
	s->th[0].restarted_syscall = 0;        /* read */
	s->alt = (Roamimg__SigAltStack)ROAMIMG__SIG_ALT_STACK__INIT;
	s->alt.sp = S_HEAP + 0x1000;
	s->alt.size = 8192;
	s->th[0].altstack = &s->alt;
	s->rseq = (Roamimg__Rseq)ROAMIMG__RSEQ__INIT;
	s->rseq.ptr = S_HEAP + 0x3000;
	s->rseq.len = 32;
	s->rseq.sig = 0x53053053;
	s->th[0].rseq = &s->rseq;
	sample_regs(&s->regs[1], S_EXE + 0x80, S_HEAP + 0x3f00);
	s->th[1].tid = 4243;
	s->th[1].comm = (char *)"worker";
	s->th[1].has_restarted_syscall = 1;
	s->th[1].restarted_syscall = -1;
	s->tpend = (Roamimg__SigInfo)ROAMIMG__SIG_INFO__INIT;
	s->tpend.signo = SIGUSR1;
	s->tpend.raw = (ProtobufCBinaryData){128, s->siginfo};
	s->tpendp[0] = &s->tpend;
	s->th[1].n_pending = 1;
	s->th[1].pending = s->tpendp;
	s->threads.n_threads = 2;
	s->threads.threads = s->thp;
}

static void sample_fini(struct sample *s)
{
	free(s->page_buf);
	s->page_buf = NULL;
}

static int sample_write_pages(struct img_writer *w, struct sample *s)
{
	if (!s->page_buf && !(s->page_buf = malloc(4 * 4096)))
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(sample_blocks) / sizeof(sample_blocks[0]); i++) {
		int rc;

		sample_fill(s->page_buf, &sample_blocks[i]);
		rc = img_write_pages(w, sample_blocks[i].addr, s->page_buf, sample_blocks[i].npages);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Pseudo record types of sample_write_one, for pre-copy streams. */
#define SAMPLE_MM_FINAL  100  /* the MM with the heap fresh */
#define SAMPLE_MM_BADKEEP 101 /* the MM with the heap grown, not fresh */
#define SAMPLE_DROP_SHM  102  /* a drop in the shared mapping */
#define SAMPLE_PAGE_HEAP 103  /* one page of the heap */

static int sample_write_drop(struct img_writer *w, uint64_t addr, uint32_t n)
{
	Roamimg__DropPages d = ROAMIMG__DROP_PAGES__INIT;

	d.n_addr = d.n_npages = 1;
	d.addr = &addr;
	d.npages = &n;
	return img_write_msg(w, IMG_REC_DROP, &d.base);
}

/* Writes one record of the sample (IMG_REC_PAGES writes every page block). */
static int sample_write_one(struct img_writer *w, struct sample *s, uint32_t type)
{
	int rc;

	switch (type) {
	case SAMPLE_MM_FINAL:
		s->vma[1].has_fresh = s->vma[1].fresh = 1;
		rc = img_write_msg(w, IMG_REC_MM, &s->mm.base);
		s->vma[1].has_fresh = s->vma[1].fresh = 0;
		return rc;
	case SAMPLE_MM_BADKEEP:
		s->vma[1].end += 0x1000;
		rc = img_write_msg(w, IMG_REC_MM, &s->mm.base);
		s->vma[1].end -= 0x1000;
		return rc;
	case IMG_REC_DROP: return sample_write_drop(w, S_HEAP + 0x1000, 2);
	case SAMPLE_DROP_SHM: return sample_write_drop(w, S_SHM, 1);
	case SAMPLE_PAGE_HEAP:
		if (!s->page_buf && !(s->page_buf = malloc(4 * 4096)))
			return -ENOMEM;
		sample_fill(s->page_buf, &sample_blocks[0]);
		return img_write_pages(w, S_HEAP, s->page_buf, 1);
	case IMG_REC_HEADER: return img_write_msg(w, type, &s->hdr.base);
	case IMG_REC_PLATFORM: return img_write_msg(w, type, &s->plat.base);
	case IMG_REC_PROCESS: return img_write_msg(w, type, &s->proc.base);
	case IMG_REC_MM: return img_write_msg(w, type, &s->mm.base);
	case IMG_REC_FILES: return img_write_msg(w, type, &s->files.base);
	case IMG_REC_PAGES: return sample_write_pages(w, s);
	case IMG_REC_THREADS: return img_write_msg(w, type, &s->threads.base);
	case IMG_REC_COMMIT: return img_write_commit(w);
	default: return raw_record(w->ctx, type, 0, NULL, 0);   /* w writes to a membuf */
	}
}

/* Writes a preamble and the records listed in steps (0-terminated). */
static int sample_write_steps(struct sample *s, img_write_fn fn, void *ctx, const uint32_t *steps)
{
	struct img_writer w;
	int rc = img_writer_init(&w, fn, ctx, s->codec);

	for (; rc == 0 && *steps; steps++)
		rc = sample_write_one(&w, s, *steps);
	img_writer_fini(&w);
	return rc;
}

static const uint32_t sample_order[] = {
	IMG_REC_HEADER, IMG_REC_PLATFORM, IMG_REC_PROCESS, IMG_REC_MM, IMG_REC_FILES,
	IMG_REC_PAGES, IMG_REC_THREADS, IMG_REC_COMMIT, 0,
};

/* A pre-copy stream of the sample (with s->hdr.precopy set): rounds, a
 * drop, the final picture with the heap made anew, its page. */
static const uint32_t sample_precopy_order[] = {
	IMG_REC_HEADER, IMG_REC_PLATFORM, IMG_REC_PROCESS, IMG_REC_MM, IMG_REC_PAGES, IMG_REC_DROP,
	IMG_REC_PROCESS, SAMPLE_MM_FINAL, IMG_REC_FILES, IMG_REC_DROP, SAMPLE_PAGE_HEAP, IMG_REC_THREADS,
	IMG_REC_COMMIT, 0,
};

/* The whole sample, in the canonical order, into m. */
static int sample_to_mem(struct membuf *m, int codec)
{
	struct sample s;
	int rc;

	sample_init(&s, codec);
	rc = sample_write_steps(&s, mem_write, m, sample_order);
	sample_fini(&s);
	return rc;
}

#endif
