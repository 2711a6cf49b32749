/*
 * A migration source's records in its state directory, and what a restarted
 * source does with them. See migrate.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/migrate.h"


/*
 * From the freeze to the end, a source keeps a record of the migration in
 * its state directory (mig-MID: destination and job). A roamd that starts
 * and finds one has lost its frozen copy with its predecessor (a restart
 * kills what the last roamd ran), so it tells the destination so
 * (RESOLVE, source gone): a destination still holding the complete,
 * built process commits it, and the job is not lost with the source daemon.
 */
static struct resolving {
	uint64_t mid;
	char dest[CL_NAME_MAX];
	char id[MSG_MAX_ID];
	bool asked;
	struct resolving *next;
} *resolving;

static void record_name(uint64_t mid, char *buf, size_t cap)
{
	snprintf(buf, cap, "mig-%llu", (unsigned long long)mid);
}

void mig_record_write(struct mig *g)
{
	char name[64], line[300];
	int fd, n;

	record_name(g->mid, name, sizeof(name));
	n = snprintf(line, sizeof(line), "%s %s\n", g->peer, g->job->id);
	fd = openat(roamd->state_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) < 0)
		log_warn("migration %llu: cannot record it in %s: %s", (unsigned long long)g->mid,
			 roamd->cfg.state_dir, strerror(errno));
	if (fd >= 0)
		close(fd);
}

void mig_record_drop(uint64_t mid)
{
	char name[64];

	record_name(mid, name, sizeof(name));
	unlinkat(roamd->state_fd, name, 0);
}

void mig_records_load(void)
{
	DIR *d;
	struct dirent *e;
	int dfd = dup(roamd->state_fd);

	if (dfd < 0 || !(d = fdopendir(dfd))) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		unsigned long long mid;
		char line[300], dest[CL_NAME_MAX], id[MSG_MAX_ID];
		struct resolving *r;
		ssize_t n;
		int fd;
		if (sscanf(e->d_name, "mig-%llu", &mid) != 1)
			continue;
		fd = openat(roamd->state_fd, e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			continue;
		line[n] = 0;
		if (sscanf(line, "%63s %127s", dest, id) != 2 || !(r = calloc(1, sizeof(*r))))
			continue;
		r->mid = mid;
		snprintf(r->dest, sizeof(r->dest), "%s", dest);
		snprintf(r->id, sizeof(r->id), "%s", id);
		r->next = resolving;
		resolving = r;
		log_warn("migration %llu of %s to %s was under way when the last roamd ended; its copy here "
			 "is gone: asking %s to keep its own", mid, id, dest, dest);
	}
	closedir(d);
}

/* The answer to a restarted source's RESOLVE. */
bool mig_resolved(const Roamnet__MigReply *r)
{
	for (struct resolving **pp = &resolving, *x; (x = *pp); pp = &x->next)
		if (x->mid == r->mid) {
			if (r->ok)
				log_info("migration %llu: job %s runs on %s", (unsigned long long)x->mid, x->id, x->dest);
			else
				log_warn("migration %llu: %s does not have job %s: it is lost with the last roamd",
					 (unsigned long long)x->mid, x->dest, x->id);
			mig_record_drop(x->mid);
			*pp = x->next;
			free(x);
			return true;
		}
	return false;
}

/* Asks the destination c reaches what became of our predecessor's migrations to it. */
void mig_records_ask(struct conn *c)
{
	for (struct resolving *x = resolving; x; x = x->next)
		if (!strcmp(x->dest, c->member->name)) {
			Roamnet__MigCtl m = ROAMNET__MIG_CTL__INIT;
			m.mid = x->mid;
			m.op = MIG_OP_RESOLVE;
			m.has_source_alive = 1;
			m.source_alive = false;
			conn_send(c, MSG_MIG_CTL, &m.base);
		}
}

