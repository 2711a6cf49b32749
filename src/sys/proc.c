#include "sys/proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

int proc_open(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int proc_read_file(int dirfd, const char *name, char **buf, size_t *len)
{
	size_t cap = 4096, used = 0;
	char *b = NULL;
	int fd, rc = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (!b || used + 1 >= cap) {
			char *n = realloc(b, cap *= 2);
			if (!n) {
				rc = -ENOMEM;
				goto out;
			}
			b = n;
		}
		ssize_t r = read(fd, b + used, cap - used - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		used += (size_t)r;
	}
	b[used] = '\0';
	*buf = b;
	if (len)
		*len = used;
	b = NULL;
out:
	free(b);
	close(fd);
	return rc;
}

int proc_status_value(const char *text, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, kl) || p[kl] != ':')
			continue;
		p += kl + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		size_t l = strcspn(p, "\n");
		if (l >= size)
			l = size - 1;
		memcpy(out, p, l);
		out[l] = '\0';
		return 0;
	}
	return -ENOENT;
}

uint64_t proc_status_hex(const char *text, const char *key)
{
	char v[64];

	if (proc_status_value(text, key, v, sizeof(v)))
		return 0;
	return strtoull(v, NULL, 16);
}

int proc_parse_stat(int dirfd, struct proc_stat *st)
{
	char *buf, *p;
	unsigned long long f[52] = {0};
	int rc, i;

	if ((rc = proc_read_file(dirfd, "stat", &buf, NULL)) < 0)
		return rc;
	/* The command name may hold spaces and parentheses: skip to the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ') {
		free(buf);
		return -EINVAL;
	}
	p += 2;
	memset(st, 0, sizeof(*st));
	st->state = *p;
	p++;
	/* Field 4 (ppid) onwards, numbered as in proc(5). */
	for (i = 4; i < 52 && *p; i++) {
		while (*p == ' ')
			p++;
		char *end;
		if (*p == '-')
			f[i] = (unsigned long long)strtoll(p, &end, 10);
		else
			f[i] = strtoull(p, &end, 10);
		if (end == p)
			break;
		p = end;
	}
	free(buf);
	st->ppid = (int)f[4];
	st->pgrp = (int)f[5];
	st->session = (int)f[6];
	st->tty_nr = (int)f[7];
	st->start_code = f[26];
	st->end_code = f[27];
	st->start_stack = f[28];
	st->exit_signal = (int)f[38];
	st->processor = (int)f[39];
	st->start_data = f[45];
	st->end_data = f[46];
	st->start_brk = f[47];
	st->arg_start = f[48];
	st->arg_end = f[49];
	st->env_start = f[50];
	st->env_end = f[51];
	return 0;
}

static uint32_t parse_vmflags(const char *p)
{
	static const struct { char name[3]; uint32_t bit; } names[] = {
		{"gd", PV_GROWSDOWN}, {"dc", PV_DONTCOPY}, {"dd", PV_DONTDUMP},
		{"wf", PV_WIPEONFORK}, {"hg", PV_HUGEPAGE}, {"nh", PV_NOHUGEPAGE},
		{"mg", PV_MERGEABLE}, {"mw", PV_MAYWRITE}, {"mr", PV_MAYREAD},
		{"io", PV_IO}, {"pf", PV_PFNMAP}, {"ht", PV_HUGETLB}, {"lo", PV_LOCKED},
		{"ms", PV_MAYSHARE}, {"um", PV_UFFD}, {"uw", PV_UFFD}, {"nr", PV_NORESERVE},
	};
	uint32_t f = 0;

	while (*p && *p != '\n') {
		while (*p == ' ')
			p++;
		if (isalpha((unsigned char)p[0]) && isalpha((unsigned char)p[1]))
			for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
				if (p[0] == names[i].name[0] && p[1] == names[i].name[1])
					f |= names[i].bit;
		while (*p && *p != ' ' && *p != '\n')
			p++;
	}
	return f;
}

void proc_free_vmas(struct proc_vma *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

const struct proc_vma *proc_vma_at(const struct proc_vma *v, size_t n, uint64_t start)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].start == start)
			return &v[mid];
		if (v[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* smaps, or maps: the same header lines, without the fields. */
static int read_vmas(int dirfd, const char *name, struct proc_vma **out, size_t *n)
{
	char *buf, *line, *next;
	struct proc_vma *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	if ((rc = proc_read_file(dirfd, name, &buf, NULL)) < 0)
		return rc;
	for (line = buf; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!strncmp(line, "Rss:", 4) || !strncmp(line, "Swap:", 5)) {
			if (cnt) {
				uint64_t kb = strtoull(line + (line[0] == 'R' ? 4 : 5), NULL, 10);
				if (line[0] == 'R')
					v[cnt - 1].rss_kb = kb;
				else
					v[cnt - 1].swap_kb = kb;
			}
			continue;
		}
		if (!strncmp(line, "VmFlags:", 8)) {
			if (cnt)
				v[cnt - 1].vmflags = parse_vmflags(line + 8);
			continue;
		}
		/* Header lines start with "start-end "; field lines with "Name:". */
		unsigned long long s, e, off, ino;
		char perms[5];
		unsigned maj, min;
		int pathpos = 0;
		if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &s, &e, perms, &off, &maj, &min, &ino,
			   &pathpos) < 7)
			continue;
		if (cnt == cap) {
			struct proc_vma *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
			if (!nv) {
				rc = -ENOMEM;
				goto fail;
			}
			v = nv;
		}
		struct proc_vma *m = &v[cnt];
		memset(m, 0, sizeof(*m));
		m->start = s;
		m->end = e;
		m->pgoff = off;
		m->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
			  (perms[2] == 'x' ? PROT_EXEC : 0);
		m->shared = perms[3] == 's';
		m->dev_major = maj;
		m->dev_minor = min;
		m->ino = ino;
		m->path = strdup(pathpos ? line + pathpos : "");
		if (!m->path) {
			rc = -ENOMEM;
			goto fail;
		}
		cnt++;
	}
	free(buf);
	*out = v;
	*n = cnt;
	return 0;
fail:
	free(buf);
	proc_free_vmas(v, cnt);
	return rc;
}

int proc_read_vmas(int dirfd, struct proc_vma **out, size_t *n)
{
	return read_vmas(dirfd, "smaps", out, n);
}

int proc_read_maps(int dirfd, struct proc_vma **out, size_t *n)
{
	return read_vmas(dirfd, "maps", out, n);
}

static int cmp_pid(const void *a, const void *b)
{
	return *(const pid_t *)a - *(const pid_t *)b;
}

/* Numeric entries of a directory under dirfd. */
static int list_numeric(int dirfd, const char *name, int **out, size_t *n)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int *v = NULL;
	size_t cnt = 0, cap = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (cnt == cap) {
			int *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = atoi(de->d_name);
	}
	closedir(d);
	if (cnt)   /* none: v is NULL (a zombie's fd directory) */
		qsort(v, cnt, sizeof(*v), cmp_pid);
	*out = v;
	*n = cnt;
	return 0;
}

int proc_list_tasks(int dirfd, pid_t **out, size_t *n)
{
	char *buf;
	int rc, tgid;

	if ((rc = list_numeric(dirfd, "task", out, n)) < 0)
		return rc;
	/* Put the leader first: its tid is the tgid, from "Tgid:" of status. */
	if (proc_read_file(dirfd, "status", &buf, NULL) == 0) {
		char v[32];
		if (!proc_status_value(buf, "Tgid", v, sizeof(v))) {
			tgid = atoi(v);
			for (size_t i = 1; i < *n; i++)
				if ((*out)[i] == tgid) {
					(*out)[i] = (*out)[0];
					(*out)[0] = tgid;
				}
		}
		free(buf);
	}
	return 0;
}

int proc_list_children(int dirfd, pid_t **out, size_t *n)
{
	pid_t *tids, *v = NULL;
	size_t nt, k = 0, cap = 0;
	int rc;

	if ((rc = proc_list_tasks(dirfd, &tids, &nt)) < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < nt; i++) {
		char name[64], *buf;
		snprintf(name, sizeof(name), "task/%d/children", tids[i]);
		if (proc_read_file(dirfd, name, &buf, NULL) < 0)
			continue;
		for (char *p = buf; *p && rc == 0;) {
			while (*p == ' ')
				p++;
			if (!isdigit((unsigned char)*p))
				break;
			if (k == cap) {
				pid_t *grown = realloc(v, (cap = cap ? 2 * cap : 8) * sizeof(*v));
				if (!grown) {
					rc = -ENOMEM;
					break;
				}
				v = grown;
			}
			v[k++] = (pid_t)strtol(p, &p, 10);
		}
		free(buf);
	}
	free(tids);
	if (rc < 0) {
		free(v);
		return rc;
	}
	if (k)
		qsort(v, k, sizeof(*v), cmp_pid);
	*out = v;
	*n = k;
	return 0;
}

int proc_count_children(int dirfd, pid_t *first)
{
	pid_t *v;
	size_t n;
	int rc = proc_list_children(dirfd, &v, &n);

	if (rc < 0)
		return rc;
	if (n && first)
		*first = v[0];
	free(v);
	return (int)n;
}

int proc_read_fdinfo(int dirfd, int fd, struct proc_fdinfo *fi)
{
	char name[64], *buf, v[64];
	int rc;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	if ((rc = proc_read_file(dirfd, name, &buf, NULL)) < 0)
		return rc;
	memset(fi, 0, sizeof(*fi));
	if (!proc_status_value(buf, "pos", v, sizeof(v)))
		fi->pos = strtoull(v, NULL, 10);
	if (!proc_status_value(buf, "flags", v, sizeof(v)))
		fi->flags = (uint32_t)strtoul(v, NULL, 8);
	if (!proc_status_value(buf, "mnt_id", v, sizeof(v)))
		fi->mnt_id = atoi(v);
	if (!proc_status_value(buf, "ino", v, sizeof(v)))
		fi->ino = strtoull(v, NULL, 10);
	for (char *p = buf; (p = strstr(p, "lock:")); p += 5)
		fi->locks++;
	free(buf);
	return 0;
}

/* The kernel prints "ID: KIND FLAGS TYPE PID MAJ:MIN:INO START END" (fs/locks.c,
 * lock_get_status): FLAGS is ADVISORY for locks, a lease's state for leases;
 * a flock lock always reads "0 EOF". */
int proc_parse_lock(const char *line, struct proc_lock *out)
{
	char kind[16], flags[16], type[8], start[24], end[24];
	int pid;

	memset(out, 0, sizeof(*out));
	if (sscanf(line, " %*d: %15s %15s %7s %d %*s %23s %23s", kind, flags, type, &pid, start, end) != 6)
		return -EINVAL;
	snprintf(out->what, sizeof(out->what), "%s", kind);
	if (strcmp(flags, "ADVISORY") || (strcmp(type, "READ") && strcmp(type, "WRITE")))
		out->kind = PROC_LOCK_OTHER;
	else if (!strcmp(kind, "FLOCK"))
		out->kind = PROC_LOCK_FLOCK;
	else if (!strcmp(kind, "POSIX"))
		out->kind = PROC_LOCK_POSIX;
	else if (!strcmp(kind, "OFDLCK"))
		out->kind = PROC_LOCK_OFD;
	else
		out->kind = PROC_LOCK_OTHER;
	out->write = !strcmp(type, "WRITE");
	char *e;
	out->start = strtoull(start, &e, 10);
	if (*e || start[0] == '-')
		return -EINVAL;
	if (!strcmp(end, "EOF"))
		out->end = UINT64_MAX;
	else {
		out->end = strtoull(end, &e, 10);
		if (*e || end[0] == '-' || out->end < out->start)
			return -EINVAL;
	}
	return 0;
}

int proc_read_locks(int dirfd, int fd, struct proc_lock **out, size_t *n)
{
	char name[64], *buf;
	struct proc_lock *v = NULL;
	size_t k = 0;
	int rc;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	if ((rc = proc_read_file(dirfd, name, &buf, NULL)) < 0)
		return rc;
	for (char *p = buf; rc == 0 && (p = strstr(p, "lock:")); p += 5) {
		struct proc_lock *grown = realloc(v, (k + 1) * sizeof(*v));
		if (!grown)
			rc = -ENOMEM;
		else if ((rc = proc_parse_lock(p + 5, &(v = grown)[k])) == 0)
			k++;
	}
	free(buf);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*n = k;
	return 0;
}

int proc_list_fds(int dirfd, int **out, size_t *n)
{
	return list_numeric(dirfd, "fd", out, n);
}

/* The kernel prints each line as "%-25s %-20s %-20s %-10s": the soft limit
 * starts at column 26, the hard one at 47. */
static uint64_t limit_value(const char *p)
{
	return strncmp(p, "unlimited", 9) ? strtoull(p, NULL, 10) : ~0ull;
}

int proc_read_limits(int dirfd, uint64_t cur[], uint64_t max[], int n)
{
	char *buf, *line, *next;
	int rc, i = -1;

	if ((rc = proc_read_file(dirfd, "limits", &buf, NULL)) < 0)
		return rc;
	for (line = buf; line && *line && i < n; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (i >= 0 && strlen(line) > 47) {
			cur[i] = limit_value(line + 26);
			max[i] = limit_value(line + 47);
		}
		i++;  /* the first line is the header */
	}
	free(buf);
	return i < 0 ? 0 : i;
}

int proc_timens_offsets(int dirfd, int64_t *mono, int64_t *boot)
{
	char *text;
	int rc;

	*mono = *boot = 0;
	rc = proc_read_file(dirfd, dirfd == AT_FDCWD ? "/proc/self/timens_offsets" : "timens_offsets", &text, NULL);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	for (char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		char name[32];
		long long s, ns;
		if (sscanf(line, "%31s %lld %lld", name, &s, &ns) != 3)
			continue;
		if (!strcmp(name, "monotonic") || !strcmp(name, "1"))
			*mono = s * 1000000000 + ns;
		else if (!strcmp(name, "boottime") || !strcmp(name, "7"))
			*boot = s * 1000000000 + ns;
	}
	free(text);
	return 0;
}

int proc_keep_pids_free(const int32_t *ids, size_t n)
{
	int32_t top = 0;
	char buf[32];
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		if (ids[i] > top)
			top = ids[i];
	if (top <= 0)
		return 0;
	int fd = open("/proc/sys/kernel/ns_last_pid", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Read, compare and write as one: two restores at once could otherwise
	 * move it back (one writing a top it read as higher than the value,
	 * after the other moved it further), and pids just freed by a
	 * checkpoint would be handed out again. */
	if (flock(fd, LOCK_EX) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	ssize_t got = read(fd, buf, sizeof(buf) - 1);
	if (got > 0) {
		buf[got] = 0;
		if (atol(buf) < top) {
			int len = snprintf(buf, sizeof(buf), "%d", (int)top);
			if (pwrite(fd, buf, (size_t)len, 0) != len)
				rc = -errno;
		}
	}
	close(fd);
	return rc;
}

/* Each timer is a block of four lines:
 *   ID: 3 / signal: 10/00000000000000a0 / notify: signal/tid.1234 / ClockID: 1 */
int proc_read_posix_timers(int dirfd, struct proc_posix_timer **out, size_t *n)
{
	struct proc_posix_timer *v = NULL;
	size_t cnt = 0, cap = 0;
	char *text;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (proc_read_file(dirfd, "timers", &text, NULL) < 0)
		return 0;  /* a kernel without POSIX timers has none */
	for (const char *p = text; p && *p && rc == 0; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		char how[16], whom[8];
		int target;
		struct proc_posix_timer t = { 0 };
		unsigned long long value;
		if (strncmp(p, "ID: ", 4))
			continue;  /* the block's other lines ("ClockID: " too) */
		if (sscanf(p, "ID: %d signal: %d/%llx notify: %15[a-z]/%7[a-z].%d ClockID: %d", &t.id, &t.signo, &value,
			   how, whom, &target, &t.clockid) != 7) {
			rc = -EPROTO;
			break;
		}
		t.sigev_value = value;
		t.notify = !strcmp(how, "none") ? SIGEV_NONE : SIGEV_SIGNAL;
		if (!strcmp(whom, "tid")) {
			t.notify |= SIGEV_THREAD_ID;
			t.tid = target;
		}
		if (cnt == cap) {
			struct proc_posix_timer *more = realloc(v, (cap = cap ? 2 * cap : 8) * sizeof(*v));
			if (!more) {
				rc = -ENOMEM;
				break;
			}
			v = more;
		}
		v[cnt++] = t;
	}
	free(text);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int proc_timer_ids_restorable(void)
{
	return prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_GET, 0, 0, 0) >= 0;
}
