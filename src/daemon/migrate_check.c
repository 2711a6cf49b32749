/*
 * What a migration checks before anything is frozen: the host identity
 * (cluster/ident.c's rule), the user, the files the process maps or holds
 * open (identical here, or on shared storage), the addresses its listeners
 * and UDP sockets are bound to (free here), the job's home reachable.
 * The source gathers (mig_files_of, mig_ident_msg); the destination judges
 * (mig_dest_checks). See docs/migration.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster/ident.h"
#include "daemon/migrate.h"
#include "sys/clock.h"
#include "sys/fileid.h"
#include "sys/proc.h"

void mig_ident_msg(Roamnet__HostIdent *m, const struct host_ident *id, char **featv, uint32_t *cpuid)
{
	size_t nf = 0;

	roamnet__host_ident__init(m);
	m->arch = (char *)id->arch;
	for (unsigned i = 0; i < cl_nfeatures && i < 64; i++)
		if (id->features & (1ull << i))
			featv[nf++] = (char *)cl_features[i];
	m->cpu_flags = featv;
	m->n_cpu_flags = nf;
	memcpy(cpuid, id->cpuid, sizeof(id->cpuid));
	m->cpuid = cpuid;
	m->n_cpuid = ARCH_CPUID_WORDS;
	m->has_xfeatures = m->has_xsave_size = 1;
	m->xfeatures = id->xfeatures;
	m->xsave_size = id->xsave_size;
	if (id->has_vdso) {
		m->has_vdso = 1;
		m->vdso.data = (uint8_t *)id->vdso;
		m->vdso.len = 16;
	}
}

static void ident_from(struct host_ident *id, const Roamnet__HostIdent *m)
{
	memset(id, 0, sizeof(*id));
	snprintf(id->arch, sizeof(id->arch), "%s", m->arch);
	for (size_t i = 0; i < m->n_cpu_flags; i++)
		for (unsigned k = 0; k < cl_nfeatures; k++)
			if (!strcmp(m->cpu_flags[i], cl_features[k]))
				id->features |= 1ull << k;
	for (size_t i = 0; i < m->n_cpuid && i < ARCH_CPUID_WORDS; i++)
		id->cpuid[i] = m->cpuid[i];
	id->xfeatures = m->xfeatures;
	id->xsave_size = m->xsave_size;
	if (m->has_vdso && m->vdso.len == 16) {
		id->has_vdso = true;
		memcpy(id->vdso, m->vdso.data, 16);
	}
}

void mig_self_ident(struct host_ident *id)
{
	ident_self(id, (const char (*)[64])roamd->cfg.hide_cpu, roamd->cfg.nhide_cpu, roamd->cfg.test_vdso_id);
}


void mig_files_free(struct file_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->path[i]);
	free(l->v);
	free(l->p);
	free(l->hash);
	free(l->path);
	free(l->sv);
	free(l->sp);
	free(l->se);
	free(l->inos);
	memset(l, 0, sizeof(*l));
}

static int socket_add(struct file_list *l, uint64_t ino)
{
	if (l->ninos == l->inocap) {
		size_t cap = l->inocap ? l->inocap * 2 : 16;
		uint64_t *v = cap > MSG_MAX_FILES ? NULL : realloc(l->inos, cap * sizeof(*v));
		if (!v)
			return cap > MSG_MAX_FILES ? -E2BIG : -ENOMEM;
		l->inos = v, l->inocap = cap;
	}
	l->inos[l->ninos++] = ino;
	return 0;
}

/* The bound TCP listeners and UDP sockets among the inodes listed: what the
 * destination must be able to bind (the engine refuses connections). */
static int sockets_resolve(pid_t pid, struct file_list *l)
{
	size_t n = 0;
	int rc = inet_sockets_of((int)pid, l->inos, l->ninos, &l->se, &n);

	if (rc < 0)
		return rc;
	l->sv = calloc(n ? n : 1, sizeof(*l->sv));
	l->sp = calloc(n ? n : 1, sizeof(*l->sp));
	if (!l->sv || !l->sp)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct inet_entry *e = &l->se[i];
		if (!e->port || (e->type == SOCK_STREAM && e->state != TCP_LISTEN))
			continue;
		Roamnet__MigSocket *m = &l->sv[l->ns];
		roamnet__mig_socket__init(m);
		m->family = (uint32_t)e->family;
		m->type = (uint32_t)e->type;
		m->addr.data = l->se[i].addr;
		m->addr.len = e->family == AF_INET6 ? 16 : 4;
		m->port = e->port;
		l->sp[l->ns++] = m;
	}
	return 0;
}

static int files_add(struct file_list *l, const char *path, bool write, bool locked)
{
	struct stat st;
	uint64_t size;
	int fd;

	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->path[i], path)) {
			l->v[i].write |= write;
			l->v[i].has_write = l->v[i].write;
			l->v[i].locked |= locked;
			l->v[i].has_locked = l->v[i].locked;
			return 0;
		}
	/* Deleted, not a file, or a kernel file (/proc/self/...): the engine
	 * decides about those. */
	if (!strncmp(path, "/proc/", 6) || !strncmp(path, "/sys/", 5) || !strncmp(path, "/dev/", 5) ||
	    stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		if (cap > MSG_MAX_FILES)
			return -E2BIG;
		void *a = realloc(l->v, cap * sizeof(*l->v)), *b = realloc(l->p, cap * sizeof(*l->p));
		void *c = realloc(l->hash, cap * sizeof(*l->hash)), *d = realloc(l->path, cap * sizeof(*l->path));
		if (a) l->v = a;
		if (b) l->p = b;
		if (c) l->hash = c;
		if (d) l->path = d;
		if (!a || !b || !c || !d)
			return -ENOMEM;
		l->cap = cap;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int rc = file_hash_cached(fd, l->hash[l->n], &size);
	close(fd);
	if (rc < 0)
		return rc;
	l->path[l->n] = strdup(path);
	if (!l->path[l->n])
		return -ENOMEM;
	roamnet__mig_file__init(&l->v[l->n]);
	l->v[l->n].path = l->path[l->n];
	l->v[l->n].hash.data = l->hash[l->n];
	l->v[l->n].hash.len = 16;
	l->v[l->n].has_write = write;
	l->v[l->n].write = write;
	l->v[l->n].has_locked = locked;
	l->v[l->n].locked = locked;
	l->n++;
	return 0;
}

/* more[0..nmore) onto the end of *v (best effort: memory short, left out). */
static void append_pids(pid_t **v, size_t *n, const pid_t *more, size_t nmore)
{
	pid_t *grown = nmore ? realloc(*v, (*n + nmore) * sizeof(**v)) : NULL;

	if (!grown)
		return;
	*v = grown;
	memcpy(grown + *n, more, nmore * sizeof(*more));
	*n += nmore;
}

/* pid and its descendants, as they are now (a process tree moves whole);
 * at least pid. */
static size_t tree_pids(pid_t pid, pid_t **out)
{
	pid_t *v = malloc(sizeof(*v)), *kids;
	size_t n = 0, done = 0, nkids;

	if (!v) {
		*out = NULL;
		return 0;
	}
	v[n++] = pid;
	while (done < n) {
		int dirfd = proc_open(v[done++]);
		if (dirfd < 0)
			continue;
		if (proc_list_children(dirfd, &kids, &nkids) == 0) {
			append_pids(&v, &n, kids, nkids);
			free(kids);
		}
		close(dirfd);
	}
	*out = v;
	return n;
}

static int files_of_one(pid_t pid, struct file_list *l);

int mig_files_of(pid_t pid, struct file_list *l)
{
	pid_t *pids;
	size_t n = tree_pids(pid, &pids);
	int rc = n ? 0 : -ENOMEM;

	memset(l, 0, sizeof(*l));
	for (size_t i = 0; rc == 0 && i < n; i++)
		if ((rc = files_of_one(pids[i], l)) == -ENOENT || rc == -ESRCH)
			rc = i ? 0 : rc;   /* a child gone meanwhile */
	free(pids);
	return rc < 0 ? rc : sockets_resolve(pid, l);
}

static int files_of_one(pid_t pid, struct file_list *l)
{
	char path[PATH_MAX + 64], line[PATH_MAX + 128];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, '/');
		if (!p || strstr(line, " (deleted)"))
			continue;
		p[strcspn(p, "\n")] = 0;
		rc = files_add(l, p, false, false);
	}
	fclose(f);
	if (rc < 0)
		return rc;
	/* The open descriptors as listed, not probed number by number: a
	 * readlink per possible fd (a thousand of them) cost milliseconds of
	 * every migration. */
	int pfd = proc_open(pid), *fds = NULL;
	size_t nfds = 0;
	if (pfd < 0)
		return pfd;
	rc = proc_list_fds(pfd, &fds, &nfds);
	for (size_t i = 0; rc == 0 && i < nfds; i++) {
		char target[PATH_MAX];
		struct proc_fdinfo info;
		snprintf(path, sizeof(path), "fd/%d", fds[i]);
		ssize_t n = readlinkat(pfd, path, target, sizeof(target) - 1);
		if (n < 0 || proc_read_fdinfo(pfd, fds[i], &info) < 0)
			continue;   /* closed meanwhile */
		target[n] = 0;
		unsigned long long ino;
		if (sscanf(target, "socket:[%llu]", &ino) == 1 && (rc = socket_add(l, ino)) < 0)
			break;
		if (target[0] != '/')
			continue;
		rc = files_add(l, target, (info.flags & O_ACCMODE) != O_RDONLY, info.locks > 0);
	}
	close(pfd);
	free(fds);
	return rc;
}

/* A sum of /proc/PID/status fields (in kB there), in bytes, over the
 * process and its descendants. */
static uint64_t status_bytes(pid_t pid, const char *const *keys)
{
	char path[64], line[128], key[32];
	unsigned long long kb, sum = 0;
	pid_t *pids;
	size_t n = tree_pids(pid, &pids);
	FILE *f;

	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pids[i]);
		if (!(f = fopen(path, "re")))
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "%31[^:]: %llu kB", key, &kb) == 2)
				for (const char *const *k = keys; *k; k++)
					if (!strcmp(key, *k))
						sum += kb;
		fclose(f);
	}
	free(pids);
	return (uint64_t)sum << 10;
}

uint64_t mig_rss_of(pid_t pid)
{
	static const char *const keys[] = {"VmRSS", NULL};

	return status_bytes(pid, keys);
}

/* What a restore must allocate: the anonymous and shared-memory pages
 * present (file pages come from the destination's page cache). */
uint64_t mig_anon_of(pid_t pid)
{
	static const char *const keys[] = {"RssAnon", "RssShmem", NULL};

	return status_bytes(pid, keys);
}

size_t mig_tids_of(pid_t pid, pid_t **out)
{
	pid_t *pids, *tids, *v = NULL;
	size_t np = tree_pids(pid, &pids), n = 0, nt;

	/* Every thread of the tree: the destination keeps their ids free. */
	for (size_t i = 0; i < np; i++) {
		int fd = proc_open(pids[i]);
		if (fd >= 0 && proc_list_tasks(fd, &tids, &nt) == 0) {
			append_pids(&v, &n, tids, nt);
			free(tids);
		}
		if (fd >= 0)
			close(fd);
	}
	free(pids);
	*out = v;
	return n;
}

/* The process's clocks now, as the engine will write them in its image:
 * ours, less our time namespace's offsets, plus its own. */
void mig_clocks_of(pid_t pid, int64_t *mono, int64_t *boot)
{
	int64_t pm = 0, pb = 0, om = 0, ob = 0;
	int fd = proc_open(pid);

	if (fd >= 0) {
		proc_timens_offsets(fd, &pm, &pb);
		close(fd);
	}
	proc_timens_offsets(AT_FDCWD, &om, &ob);
	*mono = clock_ns(CLOCK_MONOTONIC) - om + pm;
	*boot = clock_ns(CLOCK_BOOTTIME) - ob + pb;
}

/*
 * Yama (kernel.yama.ptrace_scope) lets a tracer without CAP_SYS_PTRACE
 * trace only its descendants (1), or nothing (2, 3), and a worker is its
 * job's sibling (both are roamd's children): an unprivileged roamd says so
 * before anything is frozen, rather than fail at the freeze.
 */
int mig_may_trace(struct roam_error *err)
{
	int scope = 0;
	FILE *f;

	if (geteuid() == 0 || !(f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re")))
		return 0;
	if (fscanf(f, "%d", &scope) != 1)
		scope = 0;
	fclose(f);
	if (scope < 1)
		return 0;
	return roam_fail(err, -ROAM_E_PERM, "Yama's ptrace_scope is %d here: an unprivileged roamd cannot trace "
			 "its jobs (run roamd as root, or set kernel.yama.ptrace_scope to 0)", scope);
}

/* The link a home opened to us: where a job's output goes. */
struct conn *mig_home_link(const char *home)
{
	for (struct conn *k = roamd->conns; k; k = k->next)
		if (k->kind == CONN_PEER_IN && k->state == CS_OPEN && !k->dead && !strcmp(k->peer_name, home))
			return k;
	return NULL;
}

static bool shared_path(const char *path)
{
	for (unsigned i = 0; i < roamd->cfg.nshared; i++) {
		size_t n = strlen(roamd->cfg.shared[i]);
		if (!strncmp(path, roamd->cfg.shared[i], n) && (path[n] == '/' || path[n] == 0 ||
							       roamd->cfg.shared[i][n - 1] == '/'))
			return true;
	}
	return false;
}

static void add_why(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_why(char *why, size_t cap, const char *fmt, ...)
{
	size_t n = strlen(why);
	va_list ap;

	if (n && n + 2 < cap) {
		memcpy(why + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(why + n, cap - n, fmt, ap);
	va_end(ap);
}

/*
 * A process whose clocks are ahead of ours is restored in a time namespace
 * (its CLOCK_MONOTONIC must not go back), which an unprivileged roamd cannot
 * make. Said before anything is frozen; the restore checks again, on the
 * clocks of the freeze. The source's reading is older than ours by the
 * link's delay, which errs on the side of trying.
 */
static void check_clocks(const Roamnet__MigPrepare *p, char *why, size_t cap)
{
	int64_t ahead = 0;

	if (geteuid() == 0 || (!p->has_clock_mono && !p->has_clock_boot))
		return;
	if (p->has_clock_mono && p->clock_mono - clock_ns(CLOCK_MONOTONIC) > ahead)
		ahead = p->clock_mono - clock_ns(CLOCK_MONOTONIC);
	if (p->has_clock_boot && p->clock_boot - clock_ns(CLOCK_BOOTTIME) > ahead)
		ahead = p->clock_boot - clock_ns(CLOCK_BOOTTIME);
	if (ahead > 0)
		add_why(why, cap, "%s: the job's clocks are %.3f s ahead of this host's; restoring it needs a "
			"time namespace, which needs root (roamd runs unprivileged)", roamd->cfg.name,
			(double)ahead / 1e9);
}

/* Version 2 of the image channel was the last whose roamd did not say it.
 * A roamd told to speak it (tests) acts as one did: says and checks nothing. */
#define BULK_VERSION_UNSAID 2

bool mig_bulk_says(uint32_t *version)
{
	*version = roamd->cfg.bulk_version;
	return *version > BULK_VERSION_UNSAID;
}

bool mig_bulk_mismatch(const char *peer, bool has, uint32_t version, char *why, size_t cap)
{
	uint32_t theirs = has ? version : BULK_VERSION_UNSAID;

	if (roamd->cfg.bulk_version <= BULK_VERSION_UNSAID || theirs == roamd->cfg.bulk_version)
		return false;
	snprintf(why, cap, "the image channel of roamd on %s is version %u, on %s %u: upgrade the older roamd",
		 peer, theirs, roamd->cfg.name, roamd->cfg.bulk_version);
	return true;
}

/* Every reason this host cannot take the process, joined. */
/* A listener or UDP socket of the process must find its address free
 * here: bound, and let go, by a socket like it. An address of the source
 * host's own is not one of this host's; a port taken here is taken. Should
 * it be taken by the time of the restore, the restore fails and the
 * process runs on at the source. */
static void check_socket(const Roamnet__MigSocket *m, char *why, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int v6 = m->family == AF_INET6, s, one = 1;
	char where[80];

	if ((m->family != AF_INET && m->family != AF_INET6) || (m->type != SOCK_STREAM && m->type != SOCK_DGRAM) ||
	    m->addr.len != (v6 ? 16u : 4u) || !m->port || m->port > 65535) {
		add_why(why, cap, "a socket address the source sent is malformed");
		return;
	}
	inet_addr_str((int)m->family, m->addr.data, m->addr.len, m->port, 0, where, sizeof(where));
	len = inet_sockaddr((int)m->family, m->addr.data, m->port, 0, &ss);
	if ((s = socket((int)m->family, (int)m->type | SOCK_CLOEXEC, 0)) < 0) {
		add_why(why, cap, "%s: cannot make a socket to try %s: %s", roamd->cfg.name, where, strerror(errno));
		return;
	}
	/* A connection of an earlier program waiting out its TIME_WAIT does
	 * not keep a TCP listener off the port; IPv6 alone, so that an IPv4
	 * socket on the port does not count against it. */
	if (m->type == SOCK_STREAM)
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (v6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&ss, len) < 0)
		add_why(why, cap, "%s %s: %s on %s", m->type == SOCK_STREAM ? "TCP" : "UDP", where, strerror(errno),
			roamd->cfg.name);
	close(s);
}

void mig_dest_checks(struct conn *c, const Roamnet__MigPrepare *p, char *why, size_t cap)
{
	struct host_ident src, self;
	struct passwd *pw = getpwnam(p->user);
	struct job *j = job_find(p->id);
	char w[400];

	why[0] = 0;
	ident_from(&src, p->ident);
	mig_self_ident(&self);
	if (ident_check(&src, &self, w, sizeof(w)))
		add_why(why, cap, "%s: %s", roamd->cfg.name, w);
	if (!pw)
		add_why(why, cap, "%s: unknown user '%s'", roamd->cfg.name, p->user);
	else if (pw->pw_uid != p->uid)
		add_why(why, cap, "%s: user %s is uid %u here, %u at the source", roamd->cfg.name, p->user,
			pw->pw_uid, p->uid);
	else if (pw->pw_uid == 0 && !roamd->cfg.allow_root)
		add_why(why, cap, "%s: root jobs are refused (roamd --allow-root)", roamd->cfg.name);
	else if (geteuid() != 0 && pw->pw_uid != geteuid())   /* as exec.c refuses a spawn */
		add_why(why, cap, "%s: roamd runs unprivileged and cannot run jobs as '%s'", roamd->cfg.name,
			p->user);
	check_clocks(p, why, cap);
	if (p->has_posix_timers && p->posix_timers &&
	    (roamd->cfg.test_no_timer_ids || !proc_timer_ids_restorable()))
		add_why(why, cap, "%s: the process holds %u POSIX timers, whose ids this kernel cannot give back "
			"(PR_TIMER_CREATE_RESTORE_IDS, Linux 6.17 and later)", roamd->cfg.name, p->posix_timers);
	if (mig_bulk_mismatch(c->peer_name, p->has_bulk_version, p->bulk_version, w, sizeof(w)))
		add_why(why, cap, "%s", w);
	if (roamd->self_load.draining)
		add_why(why, cap, "%s is draining", roamd->cfg.name);
	if (roamd->cfg.max_procs && exec_running() >= roamd->cfg.max_procs)
		add_why(why, cap, "%s already runs its limit of %u jobs", roamd->cfg.name, roamd->cfg.max_procs);
	if (j && (j->exec_side || j->mig))
		add_why(why, cap, "job %s already runs here", p->id);
	/* The image's known size against the job memory limit; the restore
	 * itself runs under the limit too (a process that grew since is
	 * stopped there), and the test fault skip-mem-check leaves it to that. */
	if (roamd->mem_max && p->has_anon && p->anon > roamd->mem_max && !mig_fault("skip-mem-check"))
		add_why(why, cap, "%s: the process holds %llu MiB of memory, over the job memory limit there "
			"(roamd --job-mem-max %llu MiB)", roamd->cfg.name, (unsigned long long)(p->anon >> 20),
			(unsigned long long)(roamd->mem_max >> 20));
	if (strcmp(p->home, roamd->cfg.name)) {
		if (!mig_home_link(p->home))
			add_why(why, cap, "%s cannot reach the job's home %s", roamd->cfg.name, p->home);
	}
	/* The test fault skip-socket-check leaves a port taken to the restore. */
	for (size_t i = 0; i < p->n_sockets && !mig_fault("skip-socket-check"); i++)
		check_socket(p->sockets[i], why, cap);
	for (size_t i = 0; i < p->n_files; i++) {
		const Roamnet__MigFile *f = p->files[i];
		bool shared = shared_path(f->path);
		uint8_t h[16];
		uint64_t size;
		int fd;
		if (f->write && !shared) {
			add_why(why, cap, "%s is open for writing and is not shared storage (roamd --shared)",
				f->path);
			continue;
		}
		/* The source holds the lock until the commit, the destination must
		 * hold it before: on storage both see, never both at once. */
		if (f->locked && shared) {
			add_why(why, cap, "%s is locked by the process and is shared storage: a file lock cannot "
				"pass from one host to another", f->path);
			continue;
		}
		fd = open(f->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			add_why(why, cap, "%s: %s on %s", f->path, strerror(errno), roamd->cfg.name);
			continue;
		}
		if (!shared && (file_hash_cached(fd, h, &size) < 0 || memcmp(h, f->hash.data, 16)))
			add_why(why, cap, "%s differs on %s", f->path, roamd->cfg.name);
		close(fd);
	}
	(void)c;
}

