/*
 * Two-phase restore (restore_prepare, restore_release, restore_abort): a
 * prepared process is complete but does not run until released; an aborted
 * one leaves nothing behind; one whose tracer thread dies before the release
 * dies too (PTRACE_O_EXITKILL); stdin rebound by the caller gets the bytes
 * the process had not read, from a plain image and a pre-copy stream; a
 * mapping written after the layout was read (ckpt_snapshot) and before the
 * freeze is in the image.
 *
 * The subject is tests/subjects/memory (ROAM_SUBJECTS), or dirty where
 * said, checkpointed into memory through the ckpt API and killed, then
 * restored from that buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "image/load.h"
#include "restore/restore.h"

struct membuf {
	uint8_t *p;
	size_t len, cap;
};

static int membuf_write(void *ctx, const void *data, size_t len)
{
	struct membuf *b = ctx;

	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 1 << 20;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *n = realloc(b->p, cap);
		if (!n)
			return -ENOMEM;
		b->p = n;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

struct world {
	char dir[64];
	char log[96], stop[96];
	struct membuf img;
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static int log_has(const struct world *w, const char *word)
{
	char buf[4096];
	int fd = open(w->log, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strstr(buf, word) != NULL;
}

/* Tells the restored subject pid to stop: it must exit 0 and say PASS. */
static void stop_and_pass(const struct world *w, pid_t pid)
{
	int fd = open(w->stop, O_WRONLY | O_CREAT | O_CLOEXEC, 0600), st;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(log_has(w, "PASS"));
}

/* Starts the subject args (NULL: memory; stdin from stdin_fd, or
 * /dev/null when -1), waits for "ready", checkpoints it into w->img (live,
 * with pre-copy rounds, when precopy is set; before_freeze, if any, runs
 * just before the freeze) and kills it. */
static void image_of(struct world *w, int stdin_fd, int precopy, const char *const *args,
		     void (*before_freeze)(struct ckpt *, struct world *))
{
	static const char *const memory[] = { "memory", NULL };
	const char *subjects = getenv("ROAM_SUBJECTS");
	char exe[512];
	pid_t pid;

	if (!args)
		args = memory;
	assert_non_null(subjects);
	snprintf(exe, sizeof(exe), "%s/%s", subjects, args[0]);
	strcpy(w->dir, "/tmp/roam-test-prepare.XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	snprintf(w->log, sizeof(w->log), "%s/log", w->dir);
	snprintf(w->stop, sizeof(w->stop), "%s/stop", w->dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int in = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
		int out = open(w->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		syscall(SYS_close_range, 3, ~0u, 0);
		setenv("ROAM_STOP", w->stop, 1);
		execv(exe, (char *const *)args);
		_exit(127);
	}
	for (int i = 0; i < 500 && !log_has(w, "ready"); i++)
		sleep_ms(20);
	assert_true(log_has(w, "ready"));

	struct ckpt_opts o = { .codec = IMG_CODEC_NONE, .out_fd = -1 };
	struct roam_error err = {0};
	struct img_writer iw;
	struct ckpt *c;
	int st;
	memset(&w->img, 0, sizeof(w->img));
	assert_int_equal(ckpt_open(&c, pid, &o, &err), 0);
	assert_int_equal(ckpt_check(c, 0), 0);
	assert_int_equal(img_writer_init(&iw, membuf_write, &w->img, IMG_CODEC_NONE), 0);
	if (precopy) {
		struct ckpt_round rd;
		assert_int_equal(ckpt_precopy_start(c, &iw, &rd), 0);
		assert_int_equal(rd.round, 0);
		assert_true(rd.pages > 0);
		sleep_ms(20);
		assert_int_equal(ckpt_precopy_round(c, &iw, &rd), 0);
		assert_int_equal(rd.round, 1);
	}
	if (before_freeze)
		before_freeze(c, w);
	assert_int_equal(ckpt_freeze(c), 0);
	assert_int_equal(ckpt_dump(c, &iw), 0);
	img_writer_fini(&iw);
	assert_int_equal(ckpt_kill(c), 0);
	ckpt_close(c);
	/* ckpt_kill reaps its parent's zombie when it can (we are the parent). */
	while (waitpid(pid, &st, 0) == pid)
		assert_true(WIFSIGNALED(st));
	assert_int_equal(kill(pid, 0), -1);
}

static void subject_to_image_in(struct world *w, int stdin_fd, int precopy)
{
	image_of(w, stdin_fd, precopy, NULL, NULL);
}

static void subject_to_image(struct world *w)
{
	subject_to_image_in(w, -1, 0);
}

static void world_free(struct world *w)
{
	char late[128];

	snprintf(late, sizeof(late), "%s/fill-late", w->dir);
	unlink(late);
	unlink(w->log);
	unlink(w->stop);
	rmdir(w->dir);
	free(w->img.p);
}

/* The state letter of /proc/PID/stat and its TracerPid. */
static char proc_state(pid_t pid, pid_t *tracer)
{
	char path[64], buf[2048];
	int fd;
	ssize_t n;

	*tracer = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '-';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '-';
	buf[n] = '\0';
	char *t = strstr(buf, "TracerPid:");
	if (t)
		*tracer = atoi(t + 10);
	char *s = strstr(buf, "State:");
	return s ? s[7] : '?';
}

static struct restore *open_restore(struct roam_error *err)
{
	struct restore_opts opts = { .stdio = { -1, -1, -1 } };
	struct restore *r;

	assert_int_equal(restore_open(&r, &opts, err), 0);
	return r;
}

static void prepare_then_abort(void **state)
{
	struct roam_error err = {0};
	struct world w;
	pid_t tracer;
	(void)state;

	subject_to_image(&w);
	struct restore *r = open_restore(&err);
	pid_t pid = restore_prepare_mem(r, w.img.p, w.img.len);
	assert_true(pid > 0);
	/* Built but held: stopped, traced by us, and it stays so. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(proc_state(pid, &tracer), 't');
		assert_int_equal(tracer, (pid_t)syscall(SYS_gettid));
		sleep_ms(30);
	}
	assert_int_equal(restore_abort(r), 0);
	/* Reaped: not even a zombie remains. */
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
	assert_int_equal(restore_release(r), -EINVAL);
	restore_close(r);
	assert_false(log_has(&w, "PASS"));
	world_free(&w);
}

static void prepare_then_release(void **state)
{
	struct roam_error err = {0};
	const void *data;
	struct world w;
	size_t len;
	(void)state;

	subject_to_image(&w);
	struct restore *r = open_restore(&err);
	pid_t pid = restore_prepare_mem(r, w.img.p, w.img.len);
	assert_true(pid > 0);
	/* No stdio was rebound: no queued stdin to hand over. */
	assert_int_equal(restore_stdio_data(r, 0, &data, &len), 0);
	assert_null(data);
	assert_int_equal(len, 0);
	assert_int_equal(restore_stdio_data(r, 3, &data, &len), -EINVAL);
	assert_int_equal(restore_release(r), 0);
	assert_int_equal(restore_abort(r), -EINVAL);
	restore_close(r);
	/* It runs, verifies its memory, and passes when told to stop. */
	stop_and_pass(&w, pid);
	world_free(&w);
}

/* Stdin was a pipe from outside holding unread bytes: a restorer that gives
 * its own stdin gets them, to write first. */
static void stdin_pipe_data(void **state)
{
	static const char queued[] = "not read yet\n";
	struct roam_error err = {0};
	struct restore_opts opts = { .stdio = { -1, -1, -1 } };
	const void *data;
	struct world w;
	struct restore *r;
	size_t len;
	int in[2], mine[2];
	(void)state;

	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(write(in[1], queued, sizeof(queued) - 1), (ssize_t)sizeof(queued) - 1);
	subject_to_image_in(&w, in[0], 0);
	close(in[0]);
	close(in[1]);

	/* Without a rebound stdin the image is refused (fd 0 is external). */
	assert_int_equal(restore_open(&r, &opts, &err), 0);
	assert_true(restore_prepare_mem(r, w.img.p, w.img.len) < 0);
	restore_close(r);

	assert_int_equal(pipe2(mine, O_CLOEXEC), 0);
	opts.stdio[0] = mine[0];
	memset(&err, 0, sizeof(err));
	assert_int_equal(restore_open(&r, &opts, &err), 0);
	pid_t pid = restore_prepare_mem(r, w.img.p, w.img.len);
	assert_true(pid > 0);
	assert_int_equal(restore_stdio_data(r, 0, &data, &len), 0);
	assert_int_equal(len, sizeof(queued) - 1);
	assert_memory_equal(data, queued, len);
	assert_int_equal(restore_stdio_data(r, 1, &data, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(restore_abort(r), 0);
	restore_close(r);
	close(mine[0]);
	close(mine[1]);
	world_free(&w);
}

/* The same through a pre-copy stream, whose process is built before its
 * descriptors are known: the stdin given still lands at fd 0, and the
 * process runs and passes once released. */
static void precopy_stdin_rebound(void **state)
{
	static const char queued[] = "still unread\n";
	struct roam_error err = {0};
	struct restore_opts opts = { .stdio = { -1, -1, -1 } };
	const void *data;
	struct world w;
	struct restore *r;
	struct stat want, got;
	char fd0[64];
	size_t len;
	int in[2], mine[2];
	(void)state;

	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(write(in[1], queued, sizeof(queued) - 1), (ssize_t)sizeof(queued) - 1);
	subject_to_image_in(&w, in[0], 1);
	close(in[0]);
	close(in[1]);

	assert_int_equal(pipe2(mine, O_CLOEXEC), 0);
	opts.stdio[0] = mine[0];
	assert_int_equal(restore_open(&r, &opts, &err), 0);
	pid_t pid = restore_prepare_mem(r, w.img.p, w.img.len);
	assert_true(pid > 0);
	assert_true(restore_stats(r)->final_ns > 0);
	assert_int_equal(restore_stdio_data(r, 0, &data, &len), 0);
	assert_int_equal(len, sizeof(queued) - 1);
	assert_memory_equal(data, queued, len);
	snprintf(fd0, sizeof(fd0), "/proc/%d/fd/0", pid);
	assert_int_equal(fstat(mine[0], &want), 0);
	assert_int_equal(stat(fd0, &got), 0);
	assert_int_equal(got.st_ino, want.st_ino);
	assert_int_equal(restore_release(r), 0);
	restore_close(r);
	close(mine[0]);
	close(mine[1]);
	stop_and_pass(&w, pid);
	world_free(&w);
}

/* The layout is read (as a migration does while the destination prepares),
 * then the subject fills a mapping that was empty: the page counts read
 * said it held nothing. */
static void fill_after_snapshot(struct ckpt *c, struct world *w)
{
	char path[128];
	int fd;

	ckpt_snapshot(c);
	snprintf(path, sizeof(path), "%s/fill-late", w->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	for (int i = 0; i < 500 && !log_has(w, "late filled"); i++)
		sleep_ms(10);
	assert_true(log_has(w, "late filled"));
}

/* Its pages are in the image all the same: the restored subject finds
 * them (it fails, "the late area differs", where they are missing). */
static void written_after_snapshot(void **state)
{
	static const char *const dirty[] = { "dirty", "4", "late", NULL };
	struct roam_error err = {0};
	struct world w;
	(void)state;

	image_of(&w, -1, 0, dirty, fill_after_snapshot);
	struct restore *r = open_restore(&err);
	pid_t pid = restore_prepare_mem(r, w.img.p, w.img.len);
	assert_true(pid > 0);
	assert_int_equal(restore_release(r), 0);
	restore_close(r);
	stop_and_pass(&w, pid);
	world_free(&w);
}

struct held {
	struct world *w;
	int pidpipe;
};

/* A thread that prepares, reports the PID, and exits without releasing. */
static void *prepare_and_vanish(void *arg)
{
	struct held *h = arg;
	struct roam_error err = {0};
	struct restore_opts opts = { .stdio = { -1, -1, -1 } };
	struct restore *r;
	pid_t pid = -1;

	if (restore_open(&r, &opts, &err) == 0)
		pid = restore_prepare_mem(r, h->w->img.p, h->w->img.len);
	if (write(h->pidpipe, &pid, sizeof(pid)) != sizeof(pid))
		_exit(3);
	/* The restore context is deliberately leaked: its thread ends here. */
	return NULL;
}

static void tracer_thread_dies(void **state)
{
	struct world w;
	int p[2], st;
	pid_t pid = -1;
	(void)state;

	subject_to_image(&w);
	assert_int_equal(pipe(p), 0);
	pid_t helper = fork();
	assert_true(helper >= 0);
	if (helper == 0) {
		struct held h = { &w, p[1] };
		pthread_t t;
		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (pthread_create(&t, NULL, prepare_and_vanish, &h) != 0 || pthread_join(t, NULL) != 0)
			_exit(2);
		for (;;)
			pause();  /* the process lives on; only the tracer thread is gone */
	}
	close(p[1]);
	assert_int_equal(read(p[0], &pid, sizeof(pid)), sizeof(pid));
	close(p[0]);
	assert_true(pid > 0);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), gone;
	if (pidfd >= 0) {
		struct pollfd pf = { .fd = pidfd, .events = POLLIN };
		/* Readable once the process has exited (a zombie of the helper). */
		gone = poll(&pf, 1, 5000) == 1;
		close(pidfd);
	} else {
		gone = errno == ESRCH;  /* already gone and reaped */
	}
	char c = proc_state(pid, &(pid_t){0});
	/* Nothing may outlive a failed check. */
	if (!gone)
		kill(pid, SIGKILL);
	kill(helper, SIGKILL);
	assert_int_equal(waitpid(helper, &st, 0), helper);
	assert_true(gone);
	assert_true(c == 'Z' || c == 'X' || c == '-');
	assert_false(log_has(&w, "PASS"));
	world_free(&w);
}

/* The image again, with every page block preceded by a garbled copy of
 * itself: a later copy of a page wins, however the blocks are spread over
 * the threads that copy them. */
static void garble_before_each_block(const struct membuf *in, struct membuf *out)
{
	struct img_reader rd;
	struct img_record rec;
	size_t at;

	memset(out, 0, sizeof(*out));
	assert_int_equal(img_reader_init_mem(&rd, in->p, in->len), 0);
	assert_int_equal(membuf_write(out, in->p, rd.mem_off), 0);
	for (;;) {
		at = rd.mem_off;
		int rc = img_read_record(&rd, &rec);
		assert_true(rc >= 0);
		if (rc == 0)
			break;
		if (rec.type == IMG_REC_PAGES) {
			struct img_pages pg;
			assert_int_equal(img_decode_pages(&rd, &rec, &pg), 0);
			size_t n = (size_t)pg.npages * IMG_PAGE_SIZE;
			uint8_t *bad = malloc(n), hdr[IMG_PAGES_OVERHEAD];
			assert_non_null(bad);
			for (size_t i = 0; i < n; i++)
				bad[i] = (uint8_t)(pg.data[i] ^ 0x5a);
			img_encode_raw_pages(hdr, pg.addr, bad, pg.npages);
			assert_int_equal(membuf_write(out, hdr, sizeof(hdr)), 0);
			assert_int_equal(membuf_write(out, bad, n), 0);
			free(bad);
		}
		assert_int_equal(membuf_write(out, in->p + at, rd.mem_off - at), 0);
	}
	img_reader_fini(&rd);
}

struct memstream {
	const uint8_t *p;
	size_t len, off;
};

/* Reads in pieces, as from a pipe. */
static ssize_t memstream_read(void *ctx, void *buf, size_t len)
{
	struct memstream *m = ctx;
	size_t n = m->len - m->off;

	if (n > len)
		n = len;
	if (n > 65536)
		n = 65536;
	memcpy(buf, m->p + m->off, n);
	m->off += n;
	return (ssize_t)n;
}

static void later_copy_wins(void **state)
{
	struct membuf twice;
	struct world w;
	(void)state;

	subject_to_image(&w);
	garble_before_each_block(&w.img, &twice);
	for (int stream = 0; stream < 2; stream++) {
		struct roam_error err = {0};
		struct memstream ms = { twice.p, twice.len, 0 };
		struct restore *r = open_restore(&err);
		pid_t pid = stream ? restore_prepare(r, memstream_read, &ms) : restore_prepare_mem(r, twice.p, twice.len);
		assert_true(pid > 0);
		assert_int_equal(restore_release(r), 0);
		restore_close(r);
		stop_and_pass(&w, pid);
		unlink(w.stop);
		truncate(w.log, 0);
	}
	free(twice.p);
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prepare_then_abort),
		cmocka_unit_test(prepare_then_release),
		cmocka_unit_test(stdin_pipe_data),
		cmocka_unit_test(precopy_stdin_rebound),
		cmocka_unit_test(tracer_thread_dies),
		cmocka_unit_test(written_after_snapshot),
		cmocka_unit_test(later_copy_wins),
	};

	if (geteuid() != 0) {
		printf("needs root\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
