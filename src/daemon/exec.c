/*
 * The exec side of a job: the process on this host, its pipes, its cgroup,
 * its end. Output goes to the home side: over the origin link when the home
 * is another host, straight to job.c when it is here.
 *
 * A job ends when its first process (the leader) exits: what it wrote is
 * drained from the pipes, whatever it left behind in its cgroup is killed
 * (nothing escapes), and the leader's status is reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/roamd.h"

#define THROTTLE (4u << 20)   /* pause reading a job's pipes past this backlog */

#define JOB_OF(ev, member) ((struct job *)((char *)(ev) - offsetof(struct job, member)))

static void job_out_event(struct ev *ev, uint32_t events);
static void job_err_event(struct ev *ev, uint32_t events);
static void job_in_event(struct ev *ev, uint32_t events);
static void job_pidfd_event(struct ev *ev, uint32_t events);

static bool env_denied(const char *kv)
{
	size_t klen = strcspn(kv, "=");

	for (unsigned i = 0; i < roamd->cfg.nenv_deny; i++) {
		const char *d = roamd->cfg.env_deny[i];
		size_t dl = strlen(d);
		if (dl && d[dl - 1] == '*') {
			if (klen >= dl - 1 && !strncmp(kv, d, dl - 1))
				return true;
		} else if (dl == klen && !strncmp(kv, d, klen)) {
			return true;
		}
	}
	return false;
}

/* Candidate paths for argv0, like execvp with the job's PATH. */
static char **candidates(const char *argv0, char *const *env, size_t nenv)
{
	const char *path = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
	char **out;
	size_t n = 1;

	if (strchr(argv0, '/')) {
		out = calloc(2, sizeof(*out));
		if (out)
			out[0] = strdup(argv0);
		return out;
	}
	for (size_t i = 0; i < nenv; i++)
		if (!strncmp(env[i], "PATH=", 5))
			path = env[i] + 5;
	for (const char *p = path; *p; p++)
		n += *p == ':';
	out = calloc(n + 1, sizeof(*out));
	if (!out)
		return NULL;
	n = 0;
	for (const char *p = path;;) {
		size_t l = strcspn(p, ":");
		if (asprintf(&out[n], "%.*s/%s", (int)l, l ? p : ".", argv0) >= 0)
			n++;
		if (!p[l])
			break;
		p += l + 1;
	}
	return out;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void close_ev(struct ev *ev)
{
	if (ev->fd >= 0) {
		loop_del(ev);
		close(ev->fd);
		ev->fd = -1;
	}
}

int exec_start(struct job *j, const Roamnet__Spawn *s, char *reason, size_t cap)
{
	const char *host = roamd->cfg.name;
	struct user_info user;
	const struct user_info *pw = users_by_name(s->user, &user) == 0 ? &user : NULL;
	struct rlimit rlim[RLIM_NLIMITS];
	bool rlim_set[RLIM_NLIMITS] = {0};
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
	char **envp = NULL, **argvp = NULL, **paths = NULL, *procs[8] = {0};
	const char *procsv[9] = {0};
	char env_host[CL_NAME_MAX + 16], env_home[CL_NAME_MAX + 16], env_id[MSG_MAX_ID + 16];
	enum spawn_stage stage = SPAWN_OK;
	int pidfd = -1, code = 255, np = 0, cgfd = -1;
	char *v2procs = NULL;
	pid_t pid;

	j->pidfd_ev.fd = j->out_ev.fd = j->err_ev.fd = j->in_ev.fd = -1;
	if (!pw) {
		snprintf(reason, cap, "%s: unknown user '%s'", host, s->user);
		return 255;
	}
	if (pw->uid == 0 && !roamd->cfg.allow_root) {
		snprintf(reason, cap, "%s: root jobs are refused (roamd --allow-root)", host);
		return 255;
	}
	/* An unprivileged roamd (the tests without root) can run jobs only
	 * as its own user. */
	if (geteuid() != 0 && pw->uid != geteuid()) {
		snprintf(reason, cap, "%s: roamd runs unprivileged and cannot run jobs as '%s'", host,
			 s->user);
		return 255;
	}
	if (roamd->cfg.max_procs && exec_running() >= roamd->cfg.max_procs) {
		snprintf(reason, cap, "%s: already runs its limit of %u jobs", host, roamd->cfg.max_procs);
		return 255;
	}
	for (size_t i = 0; i < s->n_rlimits; i++) {
		unsigned r = s->rlimits[i]->resource;
		struct rlimit cur;
		if (r >= RLIM_NLIMITS || getrlimit((int)r, &cur) < 0)
			continue;
		/* roamd cannot raise a hard limit above its own: clamp, as a login would. */
		rlim[r].rlim_max = s->rlimits[i]->hard < cur.rlim_max || cur.rlim_max == RLIM_INFINITY
				   ? s->rlimits[i]->hard : cur.rlim_max;
		rlim[r].rlim_cur = s->rlimits[i]->soft < rlim[r].rlim_max ? s->rlimits[i]->soft
									   : rlim[r].rlim_max;
		/* The child inherits roamd's own: set only those that differ. */
		rlim_set[r] = rlim[r].rlim_cur != cur.rlim_cur || rlim[r].rlim_max != cur.rlim_max;
	}
	/* protobuf-c's repeated fields carry a count, not a NULL terminator. */
	envp = calloc(s->n_env + 4, sizeof(*envp));
	argvp = calloc(s->n_argv + 1, sizeof(*argvp));
	paths = candidates(s->argv[0], s->env, s->n_env);
	if (!envp || !argvp || !paths) {
		snprintf(reason, cap, "%s: out of memory", host);
		goto out;
	}
	memcpy(argvp, s->argv, s->n_argv * sizeof(*argvp));
	/* Tell the job who and where it is, replacing what the caller had. */
	snprintf(env_host, sizeof(env_host), "ROAM_HOST=%s", host);
	snprintf(env_home, sizeof(env_home), "ROAM_HOME=%s", s->home);
	snprintf(env_id, sizeof(env_id), "ROAM_JOB_ID=%s", s->id);
	size_t k = 0;
	for (size_t i = 0; i < s->n_env; i++)
		if (!env_denied(s->env[i]) && strncmp(s->env[i], "ROAM_HOST=", 10) &&
		    strncmp(s->env[i], "ROAM_HOME=", 10) && strncmp(s->env[i], "ROAM_JOB_ID=", 12))
			envp[k++] = s->env[i];
	envp[k++] = env_host;
	envp[k++] = env_home;
	envp[k++] = env_id;
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0) {
		snprintf(reason, cap, "%s: pipe: %s", host, strerror(errno));
		goto out;
	}
	if (cgroup_create(j) == 0) {
		/* Born into its cgroup2 folder (clone3 CLONE_INTO_CGROUP): moving a
		 * process afterwards takes a lock that waits for an RCU grace
		 * period, measured at 3-20 ms here when spawns are sparse. */
		if (j->cg_v2[0]) {
			cgfd = open(j->cg_v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (asprintf(&v2procs, "%s/cgroup.procs", j->cg_v2) < 0)
				v2procs = NULL;
		}
		for (unsigned i = 0; i < j->ncg_v1; i++)
			if (asprintf(&procs[np], "%s/cgroup.procs", j->cg_v1[i]) >= 0)
				np++;
		for (int i = 0; i < np; i++)
			procsv[i] = procs[i];
	}

	struct spawn_req req = {
		.argv = argvp, .envp = envp, .paths = (const char *const *)paths, .cwd = s->cwd,
		.umask = (mode_t)s->umask, .switch_user = geteuid() == 0, .uid = pw->uid, .gid = pw->gid, .groups = pw->groups,
		.ngroups = pw->ngroups, .rlim = rlim, .rlim_set = rlim_set, .fd_in = pin[0],
		.fd_out = pout[1], .fd_err = perr[1], .cgroup_procs = procsv,
		.cgroup_fd = cgfd, .cgroup_v2_procs = v2procs,
	};
	pid = spawn_process(&req, &pidfd, &stage);
	if (pid < 0) {
		if (stage == SPAWN_EXEC) {
			code = 127;
			snprintf(reason, cap, "%s: cannot execute '%s': %s", host, s->argv[0], strerror((int)-pid));
		} else if (stage == SPAWN_CWD) {
			snprintf(reason, cap, "%s: working directory %s: %s", host, s->cwd, strerror((int)-pid));
		} else {
			snprintf(reason, cap, "%s: %s: %s", host, spawn_stage_name(stage), strerror((int)-pid));
		}
		cgroup_remove(j);
		goto out;
	}
	code = 0;
	j->pid = pid;
	j->exec_side = true;
	j->state = JOB_RUNNING;
	snprintf(j->host, sizeof(j->host), "%s", host);
	snprintf(j->user, sizeof(j->user), "%s", pw->name);
	j->started = (uint64_t)time(NULL);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	pin[0] = pout[1] = perr[1] = -1;
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	fcntl(pout[0], F_SETFL, O_NONBLOCK);
	fcntl(perr[0], F_SETFL, O_NONBLOCK);
	j->in_ev = (struct ev){.fd = pin[1], .fn = job_in_event};
	j->out_ev = (struct ev){.fd = pout[0], .fn = job_out_event};
	j->err_ev = (struct ev){.fd = perr[0], .fn = job_err_event};
	j->pidfd_ev = (struct ev){.fd = pidfd, .fn = job_pidfd_event};
	pin[1] = pout[0] = perr[0] = -1;
	loop_add(&j->out_ev, EPOLLIN);
	loop_add(&j->err_ev, EPOLLIN);
	loop_add(&j->in_ev, 0);
	loop_add(&j->pidfd_ev, EPOLLIN);
	/* Until the next sample, count the new job in this host's load. */
	roamd->self_load.load += 1.0 / (roamd->self_load.ncpus ? roamd->self_load.ncpus : 1);
	roamd->self_load.nprocs++;
	log_info("job %s started: pid %d user %s cmd %s", j->id, pid, pw->name, s->argv[0]);
out:
	for (int i = 0; i < 2; i++) {
		if (pin[i] >= 0) close(pin[i]);
		if (pout[i] >= 0) close(pout[i]);
		if (perr[i] >= 0) close(perr[i]);
	}
	for (int i = 0; i < np; i++)
		free(procs[i]);
	if (cgfd >= 0)
		close(cgfd);
	free(v2procs);
	free(envp);
	free(argvp);
	free_strv(paths);
	return code;
}

/* Where the job's output goes: the home's link, or the home side here. */
static struct conn *sink(struct job *j)
{
	return j->origin ? j->origin : j->client;
}

void exec_deliver(struct job *j, unsigned fd, const uint8_t *data, size_t n)
{
	if (j->origin) {
		Roamnet__Output o = ROAMNET__OUTPUT__INIT;
		o.id = j->id;
		o.fd = fd;
		o.data.data = (uint8_t *)data;
		o.data.len = n;
		conn_send(j->origin, MSG_OUTPUT, &o.base);
	} else if (j->home_side) {
		job_home_output(j, fd, data, n);
	} else {
		orphan_keep(j, fd, data, n);   /* its home is gone: kept for roam attach */
	}
}

/* Reads what a pipe holds; returns false at EOF or error (the pipe is closed). */
static bool drain(struct job *j, struct ev *ev, unsigned fd, size_t budget)
{
	uint8_t data[65536];

	while (ev->fd >= 0 && budget > 0) {
		ssize_t n = read(ev->fd, data, sizeof(data));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0) {
			close_ev(ev);
			return false;
		}
		exec_deliver(j, fd, data, (size_t)n);
		budget -= (size_t)n < budget ? (size_t)n : budget;
	}
	struct conn *c = sink(j);
	if (ev->fd >= 0 && (j->held || (c && conn_pending(c) > THROTTLE))) {
		loop_mod(ev, 0);   /* exec_resume or exec_hold turns it back on */
		if (c && !j->held)
			c->held_back = true;
	}
	return true;
}

static void reading(struct job *j, bool on)
{
	if (j->out_ev.fd >= 0)
		loop_mod(&j->out_ev, on ? EPOLLIN : 0);
	if (j->err_ev.fd >= 0)
		loop_mod(&j->err_ev, on ? EPOLLIN : 0);
}

void exec_resume(struct conn *c)
{
	/* Called at every flush: walk the jobs only when one waits for c. */
	if (!c->held_back)
		return;
	c->held_back = false;
	for (struct job *j = roamd->jobs; j; j = j->next)
		if (j->exec_side && !j->held && sink(j) == c)
			reading(j, true);
	job_client_drained(c);
}

void exec_hold(struct job *j, bool hold)
{
	if (!j->exec_side || j->held == hold)
		return;
	j->held = hold;
	reading(j, !hold);
}

static void job_out_event(struct ev *ev, uint32_t events)
{
	struct job *j = JOB_OF(ev, out_ev);

	drain(j, ev, 1, 1u << 20);
}

static void job_err_event(struct ev *ev, uint32_t events)
{
	struct job *j = JOB_OF(ev, err_ev);

	drain(j, ev, 2, 1u << 20);
}

/* The job's home learns what stdin it took, so that it sends more: at
 * once for a home here, in a Flow when a quarter of the window was taken
 * or nothing is left waiting here. */
static void taken(struct job *j, size_t n)
{
	if (j->home_side) {
		job_input_taken(j, n);
		return;
	}
	j->in_taken += n;
	if (j->in_taken >= IN_WINDOW / 4 || !buf_used(&j->stdin_buf))
		exec_taken_flush(j);
}

void exec_taken_flush(struct job *j)
{
	Roamnet__Flow f = ROAMNET__FLOW__INIT;

	if (!j->in_taken)
		return;
	if (j->origin) {
		f.id = j->id;
		f.has_input_taken = 1;
		f.input_taken = j->in_taken;
		conn_send(j->origin, MSG_FLOW, &f.base);
	}
	j->in_taken = 0;
}

static void push_stdin(struct job *j)
{
	/* Migrating: the pipe's content is imaged as it is; a write now
	 * (an EPOLLOUT armed before) would put bytes neither in the image nor
	 * in what COMMIT carries. */
	if (j->migrating) {
		if (j->in_ev.fd >= 0)
			loop_mod(&j->in_ev, 0);
		return;
	}
	while (j->in_ev.fd >= 0 && buf_used(&j->stdin_buf)) {
		ssize_t n = write(j->in_ev.fd, buf_data(&j->stdin_buf), buf_used(&j->stdin_buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			loop_mod(&j->in_ev, EPOLLOUT);
			return;
		}
		if (n < 0) {
			/* EPIPE: the job stopped reading; what is left is dropped, as a pipe would. */
			size_t left = buf_used(&j->stdin_buf);
			buf_free(&j->stdin_buf);
			close_ev(&j->in_ev);
			taken(j, left);
			return;
		}
		buf_consume(&j->stdin_buf, (size_t)n);
		taken(j, (size_t)n);
	}
	if (j->in_ev.fd >= 0) {
		if (j->stdin_eof)
			close_ev(&j->in_ev);
		else
			loop_mod(&j->in_ev, 0);
	}
}

static void job_in_event(struct ev *ev, uint32_t events)
{
	push_stdin(JOB_OF(ev, in_ev));
}

void exec_input(struct job *j, const uint8_t *data, size_t n, bool eof)
{
	if (!j->exec_side || (j->in_ev.fd < 0 && !j->migrating)) {
		if (j->exec_side && n)
			taken(j, n);   /* nobody reads it: dropped, as a closed pipe drops it */
		return;
	}
	if (n && buf_append(&j->stdin_buf, data, n) < 0)
		return;
	if (eof)
		j->stdin_eof = true;
	/* Migrating: what the image holds of the pipe is fixed; the rest goes
	 * with the commit (or into the pipe again if it aborts). */
	if (!j->migrating)
		push_stdin(j);
}

void exec_signal(struct job *j, int sig)
{
	if (!j->exec_side || j->leader_exited || sig == 0)
		return;
	if (j->migrating) {
		j->held_sigs |= 1ull << (sig - 1);
		return;
	}
	/* Every process of the job, as a terminal's Ctrl-C reaches its whole
	 * foreground group; the leader alone when there is no cgroup. */
	if (cgroup_signal(j, sig) < 0)
		kill(-j->pid, sig);   /* no cgroup: the job's process group (it is a session leader) */
}

/* The process is gone from here: what it wrote is delivered, and the
 * exec side's descriptors close. */
static void close_ends(struct job *j)
{
	drain(j, &j->out_ev, 1, SIZE_MAX);
	drain(j, &j->err_ev, 2, SIZE_MAX);
	close_ev(&j->out_ev);
	close_ev(&j->err_ev);
	close_ev(&j->in_ev);
	close_ev(&j->pidfd_ev);
	if (buf_used(&j->stdin_buf))
		taken(j, buf_used(&j->stdin_buf));   /* dropped with the job */
	buf_free(&j->stdin_buf);
	exec_taken_flush(j);
	j->exec_side = false;
}

/* The leader exited with wait status st: end the job. */
static void leader_done(struct job *j, int st)
{
	j->leader_exited = true;
	close_ends(j);
	if (roamd->self_load.nprocs)
		roamd->self_load.nprocs--;
	/* The status goes out first, then whatever the job left behind is
	 * killed: both in this loop turn, before roamd reads anything else, so
	 * nothing of the job outlives it, but the caller does not wait for the
	 * kill (an open and a write in the cgroup folder). */
	if (j->origin) {
		Roamnet__Exited e = ROAMNET__EXITED__INIT;
		e.id = j->id;
		e.status = st;
		conn_send(j->origin, MSG_EXITED, &e.base);
	} else if (j->home_side) {
		job_home_exited(j, st);
	} else {
		orphan_exited(j, st);   /* its home went away: kept for roam attach */
	}
	conn_flush_due();   /* now, not at the end of the turn */
	if (cgroup_signal(j, SIGKILL) < 0)
		kill(-j->pid, SIGKILL);
	cgroup_remove(j);
	log_info("job %s exited: status 0x%x", j->id, st);
	if (!j->home_side && !j->orphan)
		job_free(j);   /* its home is elsewhere (told above) */
}

static int wait_status(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED: return (si->si_status & 0xff) << 8;
	case CLD_KILLED: return si->si_status & 0x7f;
	case CLD_DUMPED: return (si->si_status & 0x7f) | 0x80;
	default: return 0;
	}
}

static void job_pidfd_event(struct ev *ev, uint32_t events)
{
	struct job *j = JOB_OF(ev, pidfd_ev);
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, (id_t)ev->fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return;
	leader_done(j, wait_status(&si));
}

void exec_reap_orphans(void)
{
	for (;;) {
		siginfo_t si;
		struct job *j;

		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
			return;
		for (j = roamd->jobs; j; j = j->next)
			if (j->exec_side && j->pid == si.si_pid)
				break;
		if (j) {
			/* A leader: its pidfd path reaps it and reports. */
			memset(&si, 0, sizeof(si));
			if (waitid(P_PIDFD, (id_t)j->pidfd_ev.fd, &si, WEXITED | WNOHANG) == 0 && si.si_pid)
				leader_done(j, wait_status(&si));
			else
				return;
		} else {
			/* An orphan of some job, reparented to us (subreaper or pid 1). */
			waitpid(si.si_pid, NULL, WNOHANG);
		}
	}
}

void exec_origin_lost(struct conn *c)
{
	for (struct job *j = roamd->jobs; j; j = j->next)
		if (j->exec_side && j->origin == c)
			orphan_adopt(j);
}

int exec_adopt(struct job *j, pid_t pid, int in_w, int out_r, int err_r)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pidfd < 0)
		return -errno;
	j->pid = pid;
	j->exec_side = true;
	j->leader_exited = false;
	j->state = JOB_RUNNING;
	j->held = true;   /* until the home has switched to us: output stays in order */
	snprintf(j->host, sizeof(j->host), "%s", roamd->cfg.name);
	fcntl(in_w, F_SETFL, O_NONBLOCK);
	fcntl(out_r, F_SETFL, O_NONBLOCK);
	fcntl(err_r, F_SETFL, O_NONBLOCK);
	j->in_ev = (struct ev){.fd = in_w, .fn = job_in_event};
	j->out_ev = (struct ev){.fd = out_r, .fn = job_out_event};
	j->err_ev = (struct ev){.fd = err_r, .fn = job_err_event};
	j->pidfd_ev = (struct ev){.fd = pidfd, .fn = job_pidfd_event};
	loop_add(&j->out_ev, 0);
	loop_add(&j->err_ev, 0);
	loop_add(&j->in_ev, 0);
	loop_add(&j->pidfd_ev, EPOLLIN);
	roamd->self_load.nprocs++;
	push_stdin(j);
	log_info("job %s adopted: pid %d", j->id, pid);
	return 0;
}

void exec_detach(struct job *j)
{
	close_ends(j);
	cgroup_remove(j);
	if (roamd->self_load.nprocs)
		roamd->self_load.nprocs--;
}

void exec_rebind(struct conn *c)
{
	for (struct job *j = roamd->jobs; j; j = j->next)
		if (j->exec_side && !j->home_side && !j->origin && !j->orphan && !strcmp(j->home, c->peer_name)) {
			log_info("job %s: its home %s is back", j->id, j->home);
			j->origin = c;
		}
}

void exec_unhold(struct job *j)
{
	uint64_t sigs = j->held_sigs;

	j->migrating = false;
	j->held_sigs = 0;
	push_stdin(j);
	for (int s = 1; s <= 64; s++)
		if (sigs & (1ull << (s - 1)))
			exec_signal(j, s);
}

unsigned exec_running(void)
{
	unsigned n = 0;

	for (struct job *j = roamd->jobs; j; j = j->next)
		n += j->exec_side;
	return n;
}

double exec_load(void)
{
	unsigned runnable = 0, r;
	char path[300];
	unsigned ncpus = roamd->self_load.ncpus ? roamd->self_load.ncpus : 1;

	for (struct job *j = roamd->jobs; j; j = j->next) {
		if (!j->exec_side)
			continue;
		if (cgroup_threads_file(j, path, sizeof(path)) == 0 && load_runnable(path, &r) == 0)
			runnable += r;
		else if (load_runnable_pid(j->pid, &r) == 0)
			runnable += r;
	}
	return (double)runnable / ncpus;
}

/* VmRSS of pid, in bytes (0 if it is gone). */
static uint64_t pid_rss(long pid)
{
	char sp[64], line[128];
	unsigned long long kb;
	uint64_t rss = 0;
	FILE *s;

	snprintf(sp, sizeof(sp), "/proc/%ld/status", pid);
	if (!(s = fopen(sp, "re")))
		return 0;
	while (fgets(line, sizeof(line), s))
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			rss = (uint64_t)kb << 10;
	fclose(s);
	return rss;
}

/* User and system CPU time of pid (its threads, not its children), in ns. */
static uint64_t pid_cpu_ns(long pid)
{
	char sp[64], buf[1024], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd;

	snprintf(sp, sizeof(sp), "/proc/%ld/stat", pid);
	if ((fd = open(sp, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* After the command's closing parenthesis: state is field 3, utime 14. */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (uint64_t)(ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* A job's CPU time and resident memory for roam ps: its cgroup's, or,
 * without one (an unprivileged roamd), its leader's. */
void exec_sample(struct job *j, uint64_t *cpu_ns, uint64_t *rss)
{
	char path[300];
	FILE *f;
	long pid;

	*cpu_ns = cgroup_cpu_ns(j);
	*rss = 0;
	if (!j->exec_side)
		return;
	if (cgroup_procs_file(j, path, sizeof(path)) < 0) {
		if (j->pid > 0) {
			*cpu_ns = pid_cpu_ns(j->pid);
			*rss = pid_rss(j->pid);
		}
		return;
	}
	f = fopen(path, "re");
	if (!f)
		return;
	while (fscanf(f, "%ld", &pid) == 1)
		*rss += pid_rss(pid);
	fclose(f);
}
