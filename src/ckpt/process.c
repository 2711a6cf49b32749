/*
 * Process-wide attributes read from /proc and prlimit: credentials, cwd,
 * umask, rlimits, personality, session, shared pending signals, clocks.
 */
#include "ckpt/internal.h"
#include "sys/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int parse_ids(const char *status, const char *key, uint32_t out[4])
{
	char v[128];

	if (proc_status_value(status, key, v, sizeof(v)))
		return -EINVAL;
	return sscanf(v, "%u %u %u %u", &out[0], &out[1], &out[2], &out[3]) == 4 ? 0 : -EINVAL;
}

static int collect_creds(struct ckpt *c, Roamimg__Creds *cr)
{
	uint32_t u[4], g[4];
	char v[4096];

	if (parse_ids(c->status, "Uid", u) || parse_ids(c->status, "Gid", g))
		return roam_fail(c->err, -EINVAL, "parsing the credentials of pid %d", c->pid);
	cr->uid = u[0]; cr->euid = u[1]; cr->suid = u[2]; cr->fsuid = u[3];
	cr->gid = g[0]; cr->egid = g[1]; cr->sgid = g[2]; cr->fsgid = g[3];
	if (!proc_status_value(c->status, "Groups", v, sizeof(v))) {
		size_t n = 0;
		for (char *p = v; *p;) {
			while (*p == ' ')
				p++;
			if (*p)
				n++;
			while (*p && *p != ' ')
				p++;
		}
		cr->groups = arena_alloc(&c->arena, (n ? n : 1) * sizeof(uint32_t));
		if (!cr->groups)
			return -ENOMEM;
		char *p = v, *end;
		while (cr->n_groups < n) {
			unsigned long gid = strtoul(p, &end, 10);
			if (end == p)
				break;
			cr->groups[cr->n_groups++] = (uint32_t)gid;
			p = end;
		}
	}
	cr->cap_inh = proc_status_hex(c->status, "CapInh");
	cr->cap_prm = proc_status_hex(c->status, "CapPrm");
	cr->cap_eff = proc_status_hex(c->status, "CapEff");
	cr->cap_bnd = proc_status_hex(c->status, "CapBnd");
	cr->cap_amb = proc_status_hex(c->status, "CapAmb");
	cr->has_cap_amb = 1;
	if (!proc_status_value(c->status, "NoNewPrivs", v, sizeof(v))) {
		cr->has_no_new_privs = 1;
		cr->no_new_privs = atoi(v) != 0;
	}
	return 0;
}

/*
 * The clocks as the process sees them: ours, less our own time namespace's
 * offsets (roam may itself run in one: a roamd in a container), plus its
 * namespace's. Both sets of offsets are from the host's clocks.
 */
static int collect_clocks(struct ckpt *c, Roamimg__Clocks *ck)
{
	int64_t mono_off, boot_off, own_mono, own_boot;

	if (proc_timens_offsets(c->procfd, &mono_off, &boot_off) < 0)
		mono_off = boot_off = 0;
	if (proc_timens_offsets(AT_FDCWD, &own_mono, &own_boot) < 0)
		own_mono = own_boot = 0;
	ck->monotonic_ns = clock_ns(CLOCK_MONOTONIC) - own_mono + mono_off;
	ck->boottime_ns = clock_ns(CLOCK_BOOTTIME) - own_boot + boot_off;
	ck->realtime_ns = clock_ns(CLOCK_REALTIME);
	return 0;
}

int ckpt_collect_process(struct ckpt *c)
{
	Roamimg__Process *p = ARENA_NEW(c, Roamimg__Process, roamimg__process__init);
	char v[64], cwd[PATH_MAX], *text;
	int rc;

	if (!p)
		return -ENOMEM;
	c->process = p;
	p->pid = c->pid;
	p->tids = arena_alloc(&c->arena, (c->nthreads ? c->nthreads : 1) * sizeof(*p->tids));
	if (!p->tids)
		return -ENOMEM;
	for (size_t i = 0; i < c->nthreads; i++)
		p->tids[p->n_tids++] = c->threads[i].tid;
	p->pgid = c->stat.pgrp;
	p->sid = c->stat.session;
	p->creds = ARENA_NEW(c, Roamimg__Creds, roamimg__creds__init);
	p->clocks = ARENA_NEW(c, Roamimg__Clocks, roamimg__clocks__init);
	if (!p->creds || !p->clocks)
		return -ENOMEM;
	if ((rc = collect_creds(c, p->creds)) < 0)
		return rc;
	if (!proc_status_value(c->status, "Umask", v, sizeof(v)))
		p->umask = (uint32_t)strtoul(v, NULL, 8);
	if (proc_read_file(c->procfd, "personality", &text, NULL) == 0) {
		p->personality = (uint32_t)strtoul(text, NULL, 16);
		free(text);
	}
	ssize_t n = readlinkat(c->procfd, "cwd", cwd, sizeof(cwd) - 1);
	if (n < 0)
		return roam_fail(c->err, -errno, "reading the cwd of pid %d", c->pid);
	cwd[n] = '\0';
	if (strstr(cwd, " (deleted)"))
		return roam_fail(c->err, -ROAM_E_REFUSED, "working directory %s was deleted", cwd);
	p->cwd = arena_strdup(&c->arena, cwd);
	p->root = arena_strdup(&c->arena, "/");

	p->rlimits = arena_alloc(&c->arena, RLIM_NLIMITS * sizeof(*p->rlimits));
	if (!p->rlimits)
		return -ENOMEM;
	uint64_t lcur[RLIM_NLIMITS], lmax[RLIM_NLIMITS];
	if (proc_read_limits(c->procfd, lcur, lmax, RLIM_NLIMITS) != RLIM_NLIMITS)
		return roam_fail(c->err, -EIO, "reading /proc/%d/limits", c->pid);
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit rl = { lcur[r], lmax[r] };
		Roamimg__Rlimit *l = ARENA_NEW(c, Roamimg__Rlimit, roamimg__rlimit__init);
		if (!l)
			return -ENOMEM;
		l->resource = (uint32_t)r;
		l->cur = rl.rlim_cur;
		l->max = rl.rlim_max;
		p->rlimits[p->n_rlimits++] = l;
	}

	siginfo_t *si = malloc(4096 * sizeof(*si));
	if (!si)
		return -ENOMEM;
	int cnt = pt_peek_siginfo(c->pid, 1, si, 4096);
	if (cnt < 0) {
		free(si);
		return roam_fail(c->err, cnt, "reading the shared pending signals of pid %d", c->pid);
	}
	p->n_shared_pending = (size_t)cnt;
	p->shared_pending = ckpt_pack_siginfo(c, si, cnt);
	free(si);
	if (!p->shared_pending)
		return -ENOMEM;
	return collect_clocks(c, p->clocks);
}
