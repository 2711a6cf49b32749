/*
 * Migration workers: a forked child of roamd per side, the tracer of its
 * process from start to end, which streams the image over the bulk channel
 * (source: pre-copy rounds, freeze, dump; destination: restore), then waits
 * for the decision (kill or resume; release or abort). See migrate.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "daemon/migrate.h"
#include "net/bulk.h"
#include "restore/restore.h"

#define BULK_WAIT_MS 10000   /* the source worker's connection to the destination's */


/* A worker is a forked child of roamd, not a thread: a tracer in roamd's own
 * thread group would make the job's ptrace stops visible to roamd's waits
 * (the kernel reports a traced child's stops to its parent's whole group
 * when the tracer is in it), and roamd's reaping would steal them. Forked,
 * the worker is a tracer like any other; a process it restores is
 * reparented to roamd (a subreaper) when the worker exits. */

static uint64_t worker_bytes;   /* in a source worker: what the writer has counted */

/* In a source worker: roamd's SIGUSR1 (mig_cut_stream) shuts the stream
 * down, which fails the write under way and every later one. */
static volatile sig_atomic_t stream_cut;
static volatile sig_atomic_t stream_fd = -1;

static void on_cut(int sig)
{
	(void)sig;
	stream_cut = 1;
	if (stream_fd >= 0)
		shutdown(stream_fd, SHUT_RDWR);
}

static void note(struct mig *g, char kind, int rc, pid_t pid, uint64_t freeze_ns, const struct roam_error *e)
{
	struct worker_note n = {.kind = kind, .rc = rc, .pid = pid, .freeze_ns = freeze_ns, .bytes = worker_bytes};

	if (e && rc < 0)
		roam_error_text(e, n.err, sizeof(n.err));
	while (write(g->worker_note_fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
}

/* The word to go to a source worker (mig_go): where the destination's
 * bulk channel listens. One write, atomic on a pipe. */
struct worker_go {
	char kind;              /* 'T' */
	uint16_t port;
	char addr[sizeof(((struct mig *)0)->bulk_addr)];
};

/* In a source worker: waits for the word to go; false when its pipe ends
 * (roamd gone). A worker roamd no longer needs is killed (mig_free). */
static bool wait_go(struct mig *g)
{
	struct worker_go go;
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(go)) {
		n = read(g->worker_ctl_fd, (char *)&go + got, sizeof(go) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	if (go.kind != 'T')
		return false;
	g->bulk_port = go.port;
	memcpy(g->bulk_addr, go.addr, sizeof(go.addr));
	g->bulk_addr[sizeof(g->bulk_addr) - 1] = 0;
	return true;
}

static char decision(struct mig *g)
{
	char c = 0;

	while (read(g->worker_ctl_fd, &c, 1) < 0 && errno == EINTR)
		;
	return c;
}

/*
 * Pre-copy: memory streams while the process runs, in rounds of the pages
 * written since the last, until the rest would go in a few milliseconds.
 * The stream is blocking, so a round's rate is the link's: a process that
 * writes memory about as fast as the link carries it ends the rounds early,
 * its rest no longer shrinking (ckpt_precopy_enough). Before each round the
 * rest is counted where the tracking can (ckpt_precopy_rest; userfaultfd:
 * a scan of the page tables that changes nothing) rather than guessed from
 * the last round's size: a round costs milliseconds of its own (the walk
 * that protects the pages again), more than a few pages take at the freeze.
 */
#define PRECOPY_MAX_ROUNDS 12
#define PRECOPY_REST_NS    5000000ull    /* what is left should go in 5 ms */
#define PRECOPY_SYNC_MS    10000         /* the destination catching up, at most */

static int precopy(struct mig *g, struct img_writer *w, int *rounds)
{
	struct ckpt_round r;
	uint64_t last = UINT64_MAX;
	int rc;

	if ((rc = ckpt_precopy_start(g->ck, w, &r)) < 0)
		return rc;
	note(g, 'P', 0, 0, 0, NULL);
	/* *rounds: the rounds done, the first step not counted */
	for (*rounds = 0; *rounds < PRECOPY_MAX_ROUNDS; ++*rounds) {
		double rate = ckpt_precopy_pace(&r);
		uint64_t rest = 0;
		bool known = ckpt_precopy_rest(g->ck, &r, &rest) == 0;
		if (known && ckpt_precopy_enough(rest, last, rate, PRECOPY_REST_NS))
			break;
		last = known ? rest : UINT64_MAX;
		if ((rc = ckpt_precopy_round(g->ck, w, &r)) < 0)
			return rc;
		note(g, 'P', 0, *rounds + 1, 0, NULL);
	}
	return 0;
}

/* The source worker's writer: the bulk channel, with the test faults that
 * damage the stream in flight. */
static int stream_write(void *ctx, const void *buf, size_t len)
{
	struct bulk *b = ctx;
	static int corrupted;

	if (worker_bytes > (1u << 20) && mig_fault("truncate-stream")) {
		shutdown(b->fd, SHUT_RDWR);   /* cut: no END record */
		return -EPIPE;
	}
	if (worker_bytes > (1u << 20) && !corrupted && mig_fault("corrupt-stream")) {
		/* A byte slipped into the connection, as a faulty link or a
		 * peer in the middle would: what arrives is not what was sealed,
		 * and the receiver's record layer refuses it. */
		corrupted = 1;
		if (send(b->fd, "\x5a", 1, MSG_NOSIGNAL) != 1)
			return -errno;
	}
	worker_bytes += len;
	return bulk_write(b, buf, len);
}

/* Source worker: stream the image (pre-copy, freeze, the rest) straight to
 * the destination's worker, then kill or resume the process as told. */
static void source_worker(struct mig *g)
{
	struct roam_error *err = &g->err;   /* the ckpt's, in our copy of roamd */
	struct img_writer w;
	struct bulk b;
	char token[160];
	uint64_t freeze_ns = 0;
	int rounds = 0;
	int rc;
	struct sigaction sa = {.sa_handler = on_cut};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	/* Forked at PREPARE: while the destination prepares, the layout's walk
	 * of every page table, which the freeze would otherwise begin with. */
	ckpt_snapshot(g->ck);
	if (!wait_go(g)) {
		ckpt_tree_close(g->ckt);   /* nothing touched: the process runs on */
		return;
	}
	snprintf(token, sizeof(token), "%llu %s %s", (unsigned long long)g->mid, roamd->cfg.name, g->peer);
	rc = bulk_connect(&b, g->bulk_addr, g->bulk_port, roamd->key, token, strlen(token), BULK_WAIT_MS);
	if (rc < 0)
		roam_fail(err, rc, "the bulk channel to %s: %s", g->peer, bulk_strerror(rc));
	if (rc == 0) {
		stream_fd = b.fd;
		if (stream_cut)   /* cut while connecting */
			rc = roam_fail(err, -ECONNABORTED, "the migration was aborted");
	}
	if (rc == 0 && (rc = img_writer_init(&w, stream_write, &b, IMG_CODEC_NONE)) == 0)
		img_writer_unchecked(&w);   /* the channel's tags cover every byte */
	if (rc == 0) {
		if (!g->cold)
			rc = precopy(g, &w, &rounds);
		/* The destination may still be reading what the rounds sent (the
		 * socket buffers hold megabytes): the freeze waits for it, or the
		 * pause would. */
		if (rc == 0 && !g->cold && (rc = bulk_sync(&b, PRECOPY_SYNC_MS)) < 0)
			roam_fail(err, rc, "waiting for the destination: %s", bulk_strerror(rc));
		if (rc == 0)
			rc = ckpt_tree_freeze(g->ckt);
		/* Frozen for the last time: from here its image may come to run
		 * at the destination, so if roamd (and we with it) dies, this
		 * copy must die too. A frozen cgroup holds it where roamd has
		 * one; an unprivileged roamd has none, and a copy resumed by our
		 * death would run twice once the destination commits. */
		if (rc == 0)
			rc = ckpt_tree_kill_with_tracer(g->ckt);
		if (rc == 0) {
			freeze_ns = ckpt_stats(g->ck)->freeze_ns;
			rc = ckpt_tree_dump(g->ckt, &w);
		}
		if (rc == 0 && (rc = bulk_finish(&b)) < 0)
			roam_fail(err, rc, "sending the image: %s", bulk_strerror(rc));
		img_writer_fini(&w);
	}
	stream_fd = -1;
	note(g, rc ? 'E' : 'D', rc, rounds, freeze_ns, err);
	char d = decision(g);
	/* No decision (0) is roamd gone: once the whole image went, the
	 * destination may commit it (a restarted roamd asks it to), so this
	 * copy ends as if told 'K'; it must not run on unseen. */
	bool gone = (d == 'K' || d == 0) && rc == 0;
	/* The stream is closed only now: a process resumed here must never be
	 * built there, so its image goes with a reset, what the kernel still
	 * holds of it discarded (closed earlier, it would reach a destination
	 * whose link comes back after the abort, which would then hold a copy
	 * until told or timed out). */
	if (gone)
		bulk_close(&b);
	else
		bulk_abort(&b);
	if (gone)
		rc = ckpt_tree_kill(g->ckt);
	else
		rc = ckpt_tree_resume(g->ckt) == 0 ? 1 : -1;
	ckpt_tree_close(g->ckt);
	note(g, 'F', rc, 0, 0, err);
}

/* The destination worker's reader; under exit-data it tells roamd, which
 * dies, at the first bytes (a signal would not do: roamd may be its PID
 * namespace's init). */
static struct mig *reading;
static ssize_t stream_read(void *ctx, void *buf, size_t len)
{
	ssize_t n = bulk_read(ctx, buf, len);

	if (n > 0 && mig_fault("exit-data") && reading) {
		note(reading, 'X', 0, 0, 0, NULL);
		reading = NULL;
	}
	return n;
}

/* Destination worker: build from the stream, then release or kill as told.
 * What the image held of stdin goes into the job's stdin pipe first. */
static void dest_worker(struct mig *g)
{
	const void *data;
	size_t len;
	struct bulk b;
	char token[160];
	pid_t pid;
	int rc;

	snprintf(token, sizeof(token), "%llu %s %s", (unsigned long long)g->mid, g->peer, roamd->cfg.name);
	rc = bulk_accept(&b, g->listen_fd, roamd->key, token, strlen(token), BULK_WAIT_MS);
	close(g->listen_fd);
	if (rc < 0) {
		roam_fail(&g->err, rc, "the bulk channel from %s: %s", g->peer, bulk_strerror(rc));
		pid = rc;
	} else {
		log_info("migration %llu from %s: image %s", (unsigned long long)g->mid, g->peer,
			 bulk_cipher_name(b.cipher));
		reading = g;
		pid = restore_prepare(g->rs, stream_read, &b);
		if (pid < 0 && b.err) {
			/* The channel failed, not the image: say so in its words
			 * rather than as a record the restore could not read. */
			g->err.code = 0;
			roam_fail(&g->err, -b.err > BULK_ERR_BASE ? -EPROTO : b.err, "the image stream from %s: %s",
				  g->peer, bulk_strerror(b.err));
		}
	}
	bulk_close(&b);
	if (pid > 0 && restore_stdio_data(g->rs, 0, &data, &len) == 0 && len) {
		fcntl(g->pipes[0][1], F_SETFL, O_NONBLOCK);
		if (write(g->pipes[0][1], data, len) != (ssize_t)len)
			pid = -EAGAIN;   /* cannot happen: it came from a pipe as big */
	}
	note(g, pid > 0 ? 'B' : 'E', pid > 0 ? 0 : (int)pid, pid > 0 ? pid : 0, 0, &g->err);
	if (pid <= 0)
		return;
	rc = decision(g) == 'G' ? restore_release(g->rs) : (restore_abort(g->rs), 1);
	note(g, 'F', rc, pid, 0, &g->err);
}

/*
 * In the worker: roamd's descriptors are not its to hold. A socket kept
 * open here would outlive roamd closing it (a link roamd drops would stay
 * up until the worker ends), a job's pipe would hide its EOF.
 */
static void close_inherited(struct mig *g)
{
	struct ev *evs[] = {&roamd->listen_ev, &roamd->control_ev, &roamd->signal_ev, &roamd->timer_ev};

	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i]->fd >= 0)
			close(evs[i]->fd);
	close(roamd->epfd);
	if (roamd->state_fd >= 0)
		close(roamd->state_fd);
	for (struct conn *c = roamd->conns; c; c = c->next)
		if (c->ev.fd >= 0)
			close(c->ev.fd);
	for (struct job *j = roamd->jobs; j; j = j->next) {
		struct ev *je[] = {&j->pidfd_ev, &j->out_ev, &j->err_ev, &j->in_ev};
		for (size_t i = 0; i < sizeof(je) / sizeof(je[0]); i++)
			if (je[i]->fd >= 0)
				close(je[i]->fd);
	}
	for (struct mig *o = migs; o; o = o->next) {
		if (o == g)
			continue;
		int fds[] = {o->listen_fd, o->note_fd, o->ctl_fd, o->pipes[0][0], o->pipes[0][1],
			     o->pipes[1][0], o->pipes[1][1], o->pipes[2][0], o->pipes[2][1]};
		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
}

int mig_start_worker(struct mig *g)
{
	pid_t parent = getpid(), pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* The worker dies with roamd: a held restore dies with it
		 * (PTRACE_O_EXITKILL), a checkpoint resumes its process, or,
		 * once it froze it for the last time, kills it too. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(g->note_fd);
		close(g->ctl_fd);
		close_inherited(g);
		if (g->source)
			source_worker(g);
		else
			dest_worker(g);
		_exit(0);
	}
	g->worker = pid;
	/* The worker's ends are its alone: its death is then EOF here. */
	close_fd(&g->listen_fd);
	close_fd(&g->worker_note_fd);
	close_fd(&g->worker_ctl_fd);
	if (g->ckt) {
		ckpt_tree_close(g->ckt);   /* our copy: never frozen here */
		g->ckt = NULL;
		g->ck = NULL;
	}
	return 0;
}

void mig_cut_stream(struct mig *g)
{
	/* Before its handler is in place SIGUSR1 kills the worker, which then
	 * has not frozen the process yet: it runs on, as after a cut. */
	if (g->worker > 0)
		kill(g->worker, SIGUSR1);
}

void mig_go(struct mig *g)
{
	struct worker_go go = {.kind = 'T', .port = g->bulk_port};

	memcpy(go.addr, g->bulk_addr, sizeof(go.addr));
	while (write(g->ctl_fd, &go, sizeof(go)) < 0 && errno == EINTR)
		;
}

void mig_tell(struct mig *g, char c)
{
	while (write(g->ctl_fd, &c, 1) < 0 && errno == EINTR)
		;
}

