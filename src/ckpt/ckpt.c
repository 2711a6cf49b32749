/*
 * The checkpoint driver: a table of contents of the steps (see ckpt.h).
 */
#include "ckpt/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "sys/clock.h"
#include "sys/mem.h"

int ckpt_open(struct ckpt **out, pid_t pid, const struct ckpt_opts *opts, struct roam_error *err)
{
	struct ckpt *c = calloc(1, sizeof(*c));
	char path[64];
	int rc;

	if (!c)
		return -ENOMEM;
	c->pid = pid;
	c->opts = *opts;
	c->err = err;
	c->memfd = c->pagemapfd = -1;
	c->procfd = proc_open(pid);
	if (c->procfd < 0) {
		rc = roam_fail(err, c->procfd == -ENOENT ? -ESRCH : c->procfd, "no process %d", pid);
		free(c);
		return rc;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	c->memfd = open(path, O_RDWR | O_CLOEXEC);
	if (c->memfd < 0)
		c->memfd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	c->pagemapfd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->memfd < 0 || c->pagemapfd < 0) {
		int e = errno;
		struct proc_stat st;
		if (proc_parse_stat(c->procfd, &st) == 0 && st.state == 'Z')
			rc = roam_fail(err, -ROAM_E_REFUSED,
				       "the main thread of process %d has exited (pthread_exit): not supported", pid);
		else
			rc = roam_fail(err, e == EACCES ? -ROAM_E_PERM : -e, "opening the memory of process %d", pid);
		ckpt_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

int ckpt_check(struct ckpt *c, int every_flag)
{
	return ckpt_check_process(c, every_flag);
}

int ckpt_reserve(struct ckpt *c)
{
	/* Not RssShmem: it counts the pages of shared file mappings on tmpfs,
	 * which the image does not hold (shared anonymous pages, which it does,
	 * then land in fresh file pages, as they did). */
	static const char *const keys[] = { "RssAnon", "VmSwap" };
	char *text = NULL, val[64];
	size_t len;
	uint64_t kb = 0;

	if (c->opts.out_fd < 0 || proc_read_file(c->procfd, "status", &text, &len) < 0)
		return 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (proc_status_value(text, keys[i], val, sizeof(val)) == 0)
			kb += strtoull(val, NULL, 10);
	free(text);
	/* Page records cost 40 bytes each, one per run of up to 256 pages:
	 * room for one per 2.5 pages, and for the metadata. Every byte reserved
	 * beyond the image is freed again inside the freeze (ftruncate below);
	 * a short reservation only lets the file grow as it is written. */
	uint64_t bytes = kb * 1024 + kb * 1024 / 256 + (256u << 10);
	off_t pos = lseek(c->opts.out_fd, 0, SEEK_CUR);
	if (pos < 0)
		return 0;
	if (fallocate(c->opts.out_fd, 0, pos, (off_t)bytes) < 0) {
		/* Nothing is kept: the dump finds out for itself whether it fits. */
		if (ftruncate(c->opts.out_fd, pos) < 0)
			return roam_fail(c->err, -errno, "undoing the space reserved for the image");
		return 0;
	}
	c->reserved = bytes;
	return 0;
}

int ckpt_freeze(struct ckpt *c)
{
	int rc;

	if (c->state == CK_OPEN && !c->snap)
		ckpt_snapshot(c);
	rc = ckpt_seize_all(c);

	if (rc < 0)
		ckpt_release_all(c);
	return rc;
}

int ckpt_write_header(struct ckpt *c, struct img_writer *w, int precopy)
{
	Roamimg__Header h = ROAMIMG__HEADER__INIT;
	char host[256] = "";
	struct timespec ts;

	gethostname(host, sizeof(host) - 1);
	clock_gettime(CLOCK_REALTIME, &ts);
	h.version = IMG_FORMAT_VERSION;
	h.arch = (char *)ARCH_NAME;
	h.page_size = ARCH_PAGE_SIZE;
	h.hostname = host;
	h.has_created_ns = 1;
	h.created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	h.tool = (char *)"roam 0.1";
	h.has_precopy = h.precopy = precopy != 0;
	h.has_tree = c->tree_size > 1;
	h.tree = c->tree_size;
	return img_write_msg(w, IMG_REC_HEADER, &h.base);
}

int ckpt_write_platform(struct ckpt *c, struct img_writer *w)
{
	Roamimg__Platform p = ROAMIMG__PLATFORM__INIT;
	uint32_t words[ARCH_CPUID_WORDS];
	uint8_t hash[16];
	int rc;

	p.has_xfeatures = p.has_xsave_size = 1;
	p.xfeatures = arch_xfeatures();
	p.xsave_size = arch_xsave_size();
	arch_cpuid_features(words);
	p.cpuid_features = words;
	p.n_cpuid_features = ARCH_CPUID_WORDS;
	for (size_t i = 0; i < c->mm->n_vmas; i++) {
		const Roamimg__Vma *v = c->mm->vmas[i];
		if (v->kind != ROAMIMG__VMA_KIND__VMA_VDSO)
			continue;
		size_t len = v->end - v->start;
		uint8_t *buf = malloc(len);
		if (!buf)
			return -ENOMEM;
		if ((rc = mem_read(c->pid, c->memfd, v->start, buf, len)) < 0) {
			free(buf);
			return roam_fail(c->err, rc, "reading the vDSO of pid %d", c->pid);
		}
		XXH128_canonical_t canon;
		XXH128_canonicalFromHash(&canon, XXH3_128bits(buf, len));
		memcpy(hash, canon.digest, 16);
		free(buf);
		p.has_vdso_hash = p.has_vdso_size = 1;
		p.vdso_hash.data = hash;
		p.vdso_hash.len = 16;
		p.vdso_size = len;
	}
	return img_write_msg(w, IMG_REC_PLATFORM, &p.base);
}

int ckpt_write_meta(struct ckpt *c, struct img_writer *w, int type, const ProtobufCMessage *m)
{
	int rc = img_write_msg(w, (uint32_t)type, m);
	return rc < 0 ? roam_fail(c->err, rc, "writing the %s record", img_rec_name((uint32_t)type)) : 0;
}

int ckpt_collect_all(struct ckpt *c)
{
	int rc;

	if (c->collected)
		return 0;
	if ((rc = ckpt_check_process(c, 0)) < 0 ||
	    (rc = ckpt_collect_threads(c)) < 0 ||
	    (rc = ckpt_collect_process(c)) < 0 ||
	    (rc = ckpt_collect_remote(c)) < 0 ||
	    (rc = ckpt_collect_mm(c)) < 0 ||
	    (rc = ckpt_collect_files(c)) < 0)
		return rc == -ENOMEM ? roam_fail(c->err, rc, "collecting the state of pid %d", c->pid) : rc;
	c->collected = 1;
	return 0;
}

int ckpt_dump(struct ckpt *c, struct img_writer *w)
{
	int rc;

	if (c->state != CK_FROZEN)
		return -EINVAL;
	if ((rc = ckpt_collect_all(c)) < 0)
		return rc;
	if (c->pre) {
		if ((rc = ckpt_precopy_final(c, w)) < 0)
			return rc;
	} else {
		if ((rc = ckpt_write_header(c, w, 0)) < 0)
			return roam_fail(c->err, rc, "writing the image header");
		if ((rc = ckpt_write_platform(c, w)) < 0)
			return roam_fail(c->err, rc, "writing the platform record");
		if ((rc = ckpt_write_meta(c, w, IMG_REC_PROCESS, &c->process->base)) < 0 ||
		    (rc = ckpt_write_meta(c, w, IMG_REC_MM, &c->mm->base)) < 0 ||
		    (rc = ckpt_write_meta(c, w, IMG_REC_FILES, &c->files->base)) < 0)
			return rc;
		if ((rc = ckpt_write_pages(c, w, NULL)) < 0)
			return rc;
	}
	if ((rc = ckpt_write_threads(c, w)) < 0)
		return roam_fail(c->err, rc, "writing the threads record");
	if ((rc = img_write_commit(w)) < 0)
		return roam_fail(c->err, rc, "writing the commit record");
	if (c->reserved) {
		off_t end = lseek(c->opts.out_fd, 0, SEEK_CUR);
		if (end < 0 || ftruncate(c->opts.out_fd, end) < 0)
			return roam_fail(c->err, -errno, "cutting the image to its size");
	}
	c->stats.dumped_ns = mono_ns();
	c->stats.threads = (uint32_t)c->nthreads;
	c->stats.bytes = w->bytes;
	return 0;
}

int ckpt_resume(struct ckpt *c)
{
	int rc;

	if (c->state != CK_FROZEN)
		return 0;
	ckpt_inet_release(c, 1);
	rc = ckpt_release_all(c);
	c->state = CK_RESUMED;
	return rc;
}

int ckpt_kill(struct ckpt *c)
{
	int pidfd;

	if (c->state != CK_FROZEN)
		return -EINVAL;
	pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	if (kill(c->pid, SIGKILL) < 0) {
		int rc = roam_fail(c->err, -errno, "killing pid %d", c->pid);
		if (pidfd >= 0)
			close(pidfd);
		return rc;
	}
	c->state = CK_KILLED;
	/* Wait until it is really gone, so that the caller can rely on "killed".
	 * Traced threads linger as zombies until their tracer collects them, and
	 * the leader's exit is reported only once the others are gone: collect
	 * the other threads first, then wait for the leader's pidfd. The zombie
	 * leader remains its parent's to reap. */
	for (size_t i = 1; i < c->nthreads; i++) {
		int st;
		while (waitpid(c->threads[i].tid, &st, __WALL) < 0 && errno == EINTR)
			;
	}
	if (pidfd >= 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		while (poll(&p, 1, 10000) < 0 && errno == EINTR)
			;
		close(pidfd);
	}
	int st;
	waitpid(c->pid, &st, __WALL | WNOHANG);
	return 0;
}

const struct ckpt_stats *ckpt_stats(const struct ckpt *c)
{
	return &c->stats;
}

void ckpt_close(struct ckpt *c)
{
	if (!c)
		return;
	if (c->state == CK_FROZEN)
		ckpt_resume(c);
	ckpt_inet_release(c, 0);
	cpu_spread_end(&c->hold);
	if (c->procfd >= 0)
		close(c->procfd);
	if (c->memfd >= 0)
		close(c->memfd);
	if (c->pagemapfd >= 0)
		close(c->pagemapfd);
	ckpt_precopy_free(c);
	ckpt_snapshot_drop(c);
	proc_free_vmas(c->vmas, c->nvmas);
	free(c->threads);
	free(c->status);
	arena_free(&c->arena);
	free(c);
}
