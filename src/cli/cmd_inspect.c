/*
 * roam inspect IMAGE [--json]: what an image holds, for humans (like CRIU's
 * crit show) or, with --json, for programs.
 *
 * The image is read once, as a stream ("-" is stdin), through the same
 * loader restore uses (src/image/load.h), so inspect refuses exactly what
 * restore would refuse, naming the record: a corrupt or truncated image is an
 * error (exit 255), never a partial description.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "image/load.h"
#include "sys/inet.h"

#define CMD "inspect"

/* --- small formatters ---------------------------------------------------- */

static const char *sig_name(uint32_t sig, char *buf, size_t len)
{
	const char *abbrev = sig < 65 ? sigabbrev_np((int)sig) : NULL;

	if (abbrev)
		snprintf(buf, len, "SIG%s", abbrev);
	else if (sig >= (uint32_t)SIGRTMIN && sig <= (uint32_t)SIGRTMAX)
		snprintf(buf, len, "SIGRT%u", sig - (uint32_t)SIGRTMIN);
	else
		snprintf(buf, len, "sig%u", sig);
	return buf;
}

/* Signal numbers of a 64-bit mask, by name: "SIGUSR1,SIGUSR2" or "-". */
static void print_sigmask(FILE *out, uint64_t mask)
{
	char name[16];
	int first = 1;

	for (uint32_t s = 1; s <= 64; s++) {
		if (!(mask & (1ull << (s - 1))))
			continue;
		fprintf(out, "%s%s", first ? "" : ",", sig_name(s, name, sizeof(name)));
		first = 0;
	}
	if (first)
		fputc('-', out);
}

static void print_siginfos(FILE *out, Roamimg__SigInfo *const *si, size_t n)
{
	char name[16];

	if (!n)
		fputc('-', out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? "," : "", sig_name(si[i]->signo, name, sizeof(name)));
}

static const char *human(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 "B", bytes);
		return buf;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%" PRIu64 "%c", (uint64_t)v, units[u]);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
	return buf;
}

static void print_hex(FILE *out, const ProtobufCBinaryData *b, size_t max)
{
	for (size_t i = 0; i < b->len && i < max; i++)
		fprintf(out, "%02x", b->data[i]);
	if (b->len > max)
		fputs("...", out);
	if (!b->len)
		fputc('-', out);
}

static const char *rlimit_name(uint32_t r)
{
	static const char *const names[] = {
		"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
		"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
	};
	return r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

static void print_limit(FILE *out, uint64_t v)
{
	if (v == UINT64_MAX)
		fputs("unlimited", out);
	else
		fprintf(out, "%" PRIu64, v);
}

static void print_ns(FILE *out, const char *name, int64_t ns)
{
	fprintf(out, " %s %" PRId64 ".%09" PRId64 "s", name, ns / 1000000000, (ns < 0 ? -ns : ns) % 1000000000);
}

static void print_open_flags(FILE *out, uint32_t flags, int has, int cloexec)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} bits[] = {
		{O_APPEND, "append"}, {O_NONBLOCK, "nonblock"}, {O_SYNC, "sync"}, {O_DSYNC, "dsync"},
		{O_DIRECT, "direct"}, {O_NOATIME, "noatime"}, {O_LARGEFILE, "largefile"},
	};
	char buf[96];
	int n = 0;

	if (!has) {
		n = snprintf(buf, sizeof(buf), "-");
	} else {
		static const char *const acc[] = {"rdonly", "wronly", "rdwr", "acc3"};
		n = snprintf(buf, sizeof(buf), "%s", acc[flags & O_ACCMODE]);
		for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
			if ((flags & bits[i].bit) && n < (int)sizeof(buf))
				n += snprintf(buf + n, sizeof(buf) - (size_t)n, ",%s", bits[i].name);
	}
	if (cloexec && n < (int)sizeof(buf))
		snprintf(buf + n, sizeof(buf) - (size_t)n, ",cloexec");
	fprintf(out, "%-22s", buf);
}

/* --- the text description ------------------------------------------------ */

static void describe_header(FILE *out, const struct img_load *ld)
{
	const Roamimg__Header *h = ld->header;
	const Roamimg__Platform *p = ld->platform;

	fprintf(out, "header    format %u  arch %s  page %u", h->version, h->arch, h->page_size);
	if (h->hostname)
		fprintf(out, "  host %s", h->hostname);
	if (h->has_created_ns) {
		time_t t = (time_t)(h->created_ns / 1000000000);
		struct tm tm;
		char when[64];
		if (gmtime_r(&t, &tm) && strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm))
			fprintf(out, "  created %s", when);
	}
	if (h->tool)
		fprintf(out, "  by %s", h->tool);
	if (h->has_tree && h->tree > 1)
		fprintf(out, "  tree of %u processes", h->tree);
	fputc('\n', out);

	fputs("platform ", out);
	if (p->has_xfeatures)
		fprintf(out, " xfeatures 0x%" PRIx64, p->xfeatures);
	if (p->has_xsave_size)
		fprintf(out, "  xsave %u bytes", p->xsave_size);
	if (p->has_vdso_size)
		fprintf(out, "  vdso %" PRIu64 " bytes", p->vdso_size);
	if (p->has_vdso_hash) {
		fputs("  vdso hash ", out);
		print_hex(out, &p->vdso_hash, 16);
	}
	if (p->n_cpuid_features) {
		fputs("  cpuid", out);
		for (size_t i = 0; i < p->n_cpuid_features; i++)
			fprintf(out, " %08x", p->cpuid_features[i]);
	}
	fputc('\n', out);
}

static void describe_process(FILE *out, const Roamimg__Process *p)
{
	const Roamimg__Creds *c = p->creds;
	char name[16];

	fprintf(out, "\nprocess   pid %d  pgid %d  sid %d  cwd %s  root %s  umask %04o  personality 0x%x",
		p->pid, p->pgid, p->sid, p->cwd, p->root ? p->root : "-", p->umask, p->personality);
	if (p->has_tree_parent)
		fprintf(out, "  parent %d", p->tree_parent);
	fputc('\n', out);
	fprintf(out, "  creds     uid %u/%u/%u/%u  gid %u/%u/%u/%u  groups ", c->uid, c->euid, c->suid, c->fsuid,
		c->gid, c->egid, c->sgid, c->fsgid);
	if (!c->n_groups)
		fputc('-', out);
	for (size_t i = 0; i < c->n_groups; i++)
		fprintf(out, "%s%u", i ? "," : "", c->groups[i]);
	fprintf(out, "\n            caps inh %" PRIx64 " prm %" PRIx64 " eff %" PRIx64 " bnd %" PRIx64 " amb %" PRIx64
		"  secbits 0x%x  no_new_privs %s  dumpable %s\n",
		c->cap_inh, c->cap_prm, c->cap_eff, c->cap_bnd, c->cap_amb, c->secbits,
		c->has_no_new_privs ? (c->no_new_privs ? "yes" : "no") : "-",
		c->has_dumpable ? (c->dumpable ? "yes" : "no") : "-");
	fputs("  rlimits  ", out);
	if (!p->n_rlimits)
		fputs(" -", out);
	for (size_t i = 0; i < p->n_rlimits; i++) {
		fprintf(out, " %s ", rlimit_name(p->rlimits[i]->resource));
		print_limit(out, p->rlimits[i]->cur);
		fputc('/', out);
		print_limit(out, p->rlimits[i]->max);
	}
	fprintf(out, "\n  signal handlers (%zu)\n", p->n_sigactions);
	for (size_t i = 0; i < p->n_sigactions; i++) {
		const Roamimg__SigAction *a = p->sigactions[i];
		fprintf(out, "    %-10s ", sig_name(a->signo, name, sizeof(name)));
		if (a->handler == 0)
			fputs("SIG_DFL", out);
		else if (a->handler == 1)
			fputs("SIG_IGN", out);
		else
			fprintf(out, "handler 0x%" PRIx64 "  flags 0x%" PRIx64 "  restorer 0x%" PRIx64 "  mask ",
				a->handler, a->flags, a->restorer);
		if (a->handler > 1)
			print_sigmask(out, a->mask);
		fputc('\n', out);
	}
	fputs("  pending  ", out);
	print_siginfos(out, p->shared_pending, p->n_shared_pending);
	fputs("\n  itimers  ", out);
	if (!p->n_itimers)
		fputc('-', out);
	for (size_t i = 0; i < p->n_itimers; i++) {
		static const char *const which[] = {"REAL", "VIRTUAL", "PROF"};
		const Roamimg__Itimer *t = p->itimers[i];
		fprintf(out, "%s%s value %" PRIu64 "us interval %" PRIu64 "us", i ? "; " : "",
			t->which < 3 ? which[t->which] : "?", t->value_us, t->interval_us);
	}
	for (size_t i = 0; i < p->n_posix_timers; i++) {
		const Roamimg__PosixTimer *t = p->posix_timers[i];
		fprintf(out, "\n  timer %d  clock %d value %" PRIu64 "ns interval %" PRIu64 "ns ", t->id, t->clockid,
			t->value_ns, t->interval_ns);
		if ((t->notify & ~SIGEV_THREAD_ID) == SIGEV_NONE)
			fputs("no signal", out);
		else
			fprintf(out, "signal %d to %s", t->signo, t->has_tid ? "thread " : "the process");
		if (t->has_tid)
			fprintf(out, "%d", t->tid);
	}
	fputs("\n  clocks  ", out);
	print_ns(out, "monotonic", p->clocks->monotonic_ns);
	print_ns(out, " boottime", p->clocks->boottime_ns);
	print_ns(out, " realtime", p->clocks->realtime_ns);
	fputc('\n', out);
}

static const struct {
	uint32_t bit;
	const char *name;
} madv_names[] = {
	{VMA_MADV_DONTFORK, "dontfork"}, {VMA_MADV_DONTDUMP, "dontdump"}, {VMA_MADV_WIPEONFORK, "wipeonfork"},
	{VMA_MADV_HUGEPAGE, "hugepage"}, {VMA_MADV_NOHUGEPAGE, "nohugepage"}, {VMA_MADV_MERGEABLE, "mergeable"},
};

static void describe_mm(FILE *out, const struct img_load *ld)
{
	const Roamimg__Mm *mm = ld->mm;
	char size[16];

	fprintf(out, "\nmm        code %" PRIx64 "-%" PRIx64 "  data %" PRIx64 "-%" PRIx64 "  brk %" PRIx64 "-%" PRIx64
		"  stack %" PRIx64 "\n          args %" PRIx64 "-%" PRIx64 "  env %" PRIx64 "-%" PRIx64
		"  auxv %zu bytes  exe %s\n",
		mm->start_code, mm->end_code, mm->start_data, mm->end_data, mm->start_brk, mm->brk,
		mm->start_stack, mm->arg_start, mm->arg_end, mm->env_start, mm->env_end, mm->auxv.len,
		mm->exe_path ? mm->exe_path : "-");

	fprintf(out, "\nmappings (%zu)\n", mm->n_vmas);
	fprintf(out, "  %-33s %7s %-4s %-12s %6s %6s %5s  %-26s %s\n", "RANGE", "SIZE", "PROT", "KIND", "PAGES",
		"UNIQUE", "ZERO", "NOTES", "PATH");
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Roamimg__Vma *v = mm->vmas[i];
		const struct img_vma_stat *st = &ld->vma_stat[i];
		int shared = v->kind == ROAMIMG__VMA_KIND__VMA_ANON_SHARED || v->kind == ROAMIMG__VMA_KIND__VMA_FILE_SHARED;
		char notes[96];
		int n = 0;

		notes[0] = 0;
		if (v->has_growsdown && v->growsdown)
			n += snprintf(notes + n, sizeof(notes) - (size_t)n, "growsdown ");
		if (v->has_carried && v->carried && n < (int)sizeof(notes))
			n += snprintf(notes + n, sizeof(notes) - (size_t)n, "carried ");
		if (v->has_shm_id && n < (int)sizeof(notes))
			n += snprintf(notes + n, sizeof(notes) - (size_t)n, "shm#%" PRIu64 " ", v->shm_id);
		if (v->has_file_id && n < (int)sizeof(notes))
			n += snprintf(notes + n, sizeof(notes) - (size_t)n, "file#%u@%" PRIx64 " ", v->file_id, v->pgoff);
		if (v->has_madv) {
			uint32_t rest = v->madv;
			for (size_t b = 0; b < sizeof(madv_names) / sizeof(madv_names[0]); b++)
				if ((v->madv & madv_names[b].bit) && n < (int)sizeof(notes)) {
					n += snprintf(notes + n, sizeof(notes) - (size_t)n, "%s ", madv_names[b].name);
					rest &= ~madv_names[b].bit;
				}
			/* Bits a newer writer defined: shown, not hidden. */
			if (rest && n < (int)sizeof(notes))
				n += snprintf(notes + n, sizeof(notes) - (size_t)n, "flags=0x%x ", rest);
		}
		fprintf(out, "  %016" PRIx64 "-%016" PRIx64 " %7s %c%c%c%c %-12s %6" PRIu64 " %6" PRIu64 " %5" PRIu64 "  %-26s %s\n",
			v->start, v->end, human(v->end - v->start, size, sizeof(size)),
			v->prot & PROT_READ ? 'r' : '-', v->prot & PROT_WRITE ? 'w' : '-',
			v->prot & PROT_EXEC ? 'x' : '-', shared ? 's' : 'p', img_vma_kind_name(v->kind),
			st->pages, st->unique, st->zero, notes,
			v->path ? v->path : (v->name ? v->name : ""));
	}
	if (mm->n_files) {
		fprintf(out, "\nmapped files (%zu)\n  %-3s %10s %-7s %-34s %s\n", mm->n_files, "ID", "SIZE", "MODE",
			"HASH", "PATH");
		for (size_t i = 0; i < mm->n_files; i++) {
			const Roamimg__MappedFile *f = mm->files[i];
			fprintf(out, "  %-3zu %10" PRIu64 " %07o ", i, f->size, f->has_mode ? f->mode : 0);
			print_hex(out, &f->hash, 16);
			fprintf(out, "%*s %s%s\n", f->hash.len >= 16 ? 1 : (int)(33 - 2 * f->hash.len), "",
				f->path, f->has_deleted && f->deleted ? " (deleted)" : "");
		}
	}
}

/* "tcp listening on 127.0.0.1:8000 (backlog 5; SO_REUSEADDR 1)". */
static void describe_inet(FILE *out, const Roamimg__InetSock *in)
{
	char a[80];

	if (!in)
		return (void)fputs("?", out);
	inet_addr_str((int)in->family, in->addr.data, in->addr.len, in->port, in->scope_id, a, sizeof(a));
	fprintf(out, "%s%s ", in->type == SOCK_STREAM ? "tcp" : "udp", in->family == AF_INET6 ? "6" : "");
	if (in->tcp)
		fprintf(out, "established %s", a);
	else if (in->has_backlog)
		fprintf(out, "listening on %s (backlog %u)", a, in->backlog);
	else if (in->port)
		fprintf(out, "bound to %s", a);
	else
		fputs("unbound", out);
	if (in->has_peer_addr)
		fprintf(out, "%s %s", in->tcp ? " to" : ", connected to",
			inet_addr_str((int)in->family, in->peer_addr.data, in->peer_addr.len, in->peer_port,
				      in->peer_scope_id, a, sizeof(a)));
	if (in->tcp)
		fprintf(out, " (%zu bytes to send, %zu to read)", in->tcp->send_queue.len, in->tcp->recv_queue.len);
	for (size_t i = 0; i < in->n_opts; i++) {
		const struct inet_opt *o = inet_opt_find(in->opts[i]->level, in->opts[i]->name);
		if (o)
			fprintf(out, "%s%s %d", i ? ", " : "; ", o->label, in->opts[i]->value);
		else
			fprintf(out, "%soption %d:%d %d", i ? ", " : "; ", in->opts[i]->level, in->opts[i]->name,
				in->opts[i]->value);
	}
}

/* The state of an object restore makes rather than opens. */
static void describe_object(FILE *out, const Roamimg__Fd *d)
{
	static const char *const sock_types[] = { [SOCK_STREAM] = "stream", [SOCK_DGRAM] = "dgram",
						  [SOCK_SEQPACKET] = "seqpacket" };
	const Roamimg__TimerFd *t = d->timer;

	switch (d->kind) {
	case ROAMIMG__FD_KIND__FD_EVENTFD:
		fprintf(out, "eventfd count %" PRIu64 "%s", d->eventfd_count,
			d->eventfd_semaphore ? " (semaphore)" : "");
		break;
	case ROAMIMG__FD_KIND__FD_SIGNALFD:
		fprintf(out, "signalfd mask %#" PRIx64, d->sigmask);
		break;
	case ROAMIMG__FD_KIND__FD_TIMERFD:
		if (t)
			fprintf(out, "timerfd clock %d next %.3f s every %.3f s, %" PRIu64 " unread%s", t->clockid,
				(double)t->value_ns / 1e9, (double)t->interval_ns / 1e9, t->ticks,
				t->settime_flags & TFD_TIMER_ABSTIME ? " (absolute)" : "");
		break;
	case ROAMIMG__FD_KIND__FD_EPOLL:
		fputs("epoll watching", out);
		for (size_t w = 0; w < d->n_watches; w++)
			fprintf(out, "%s fd %u (%#x)", w ? "," : "", d->watches[w]->fd, d->watches[w]->events);
		if (!d->n_watches)
			fputs(" nothing", out);
		break;
	case ROAMIMG__FD_KIND__FD_INOTIFY:
		fputs("inotify watching", out);
		for (size_t w = 0; w < d->n_inotify; w++)
			fprintf(out, "%s %s (wd %d, %#x)", w ? "," : "", d->inotify[w]->path, d->inotify[w]->wd,
				d->inotify[w]->mask);
		if (!d->n_inotify)
			fputs(" nothing", out);
		break;
	case ROAMIMG__FD_KIND__FD_SOCKPAIR:
		fprintf(out, "socket pair#%" PRIu64 " end %u (%s)", d->pair_id, d->pair_end,
			d->sock_type < sizeof(sock_types) / sizeof(sock_types[0]) && sock_types[d->sock_type]
				? sock_types[d->sock_type] : "?");
		if (d->has_sock_queued)
			fprintf(out, " (%zu bytes queued)", d->sock_queued.len);
		if (d->n_sock_messages)
			fprintf(out, " (%zu messages queued)", d->n_sock_messages);
		break;
	case ROAMIMG__FD_KIND__FD_INET:
		describe_inet(out, d->inet);
		break;
	default:
		fputs("?", out);
	}
}

/* " (POSIX write lock 10-19)", " (flock read lock)", " (OFD read lock 100-EOF)". */
static void describe_lock(FILE *out, const Roamimg__FileLock *l)
{
	const char *kind = l->kind == ROAMIMG__LOCK_KIND__LOCK_FLOCK ? "flock"
			   : l->kind == ROAMIMG__LOCK_KIND__LOCK_POSIX ? "POSIX"
			   : l->kind == ROAMIMG__LOCK_KIND__LOCK_OFD   ? "OFD"
								       : "?";

	fprintf(out, " (%s %s lock", kind, l->write ? "write" : "read");
	if (l->kind != ROAMIMG__LOCK_KIND__LOCK_FLOCK && l->has_end)
		fprintf(out, " %" PRIu64 "-%" PRIu64, l->start, l->end);
	else if (l->kind != ROAMIMG__LOCK_KIND__LOCK_FLOCK)
		fprintf(out, " %" PRIu64 "-EOF", l->start);
	fputc(')', out);
}

static void describe_files(FILE *out, const Roamimg__Files *fl)
{
	fprintf(out, "\nfiles (%zu)\n  %-5s %-8s %-5s %-22s %10s  %s\n", fl->n_fds, "FD", "KIND", "FILE", "FLAGS",
		"POS", "OBJECT");
	for (size_t i = 0; i < fl->n_fds; i++) {
		const Roamimg__Fd *d = fl->fds[i];

		fprintf(out, "  %-5u %-8s %-5u ", d->fd, img_fd_kind_name(d->kind), d->file_id);
		print_open_flags(out, d->flags, d->has_flags, d->has_cloexec && d->cloexec);
		if (d->has_pos)
			fprintf(out, " %10" PRIu64 "  ", d->pos);
		else
			fprintf(out, " %10s  ", "-");
		if (d->kind == ROAMIMG__FD_KIND__FD_PIPE)
			fprintf(out, "pipe#%" PRIu64 " %s end", d->pipe_id,
				d->has_pipe_write_end && d->pipe_write_end ? "write" : "read");
		else if (d->kind == ROAMIMG__FD_KIND__FD_EXTERNAL)
			fprintf(out, "external %s", d->external ? d->external : "?");
		else if (d->kind >= ROAMIMG__FD_KIND__FD_EVENTFD)
			describe_object(out, d);
		else
			fputs(d->path ? d->path : "?", out);
		if (d->has_pipe_data && d->pipe_data.len)
			fprintf(out, " (%zu bytes queued)", d->pipe_data.len);
		if (d->has_rdev)
			fprintf(out, " (dev %u:%u)", major(d->rdev), minor(d->rdev));
		if (d->has_task_tid)
			fprintf(out, " (thread %d's own)", d->task_tid);
		for (size_t k = 0; k < d->n_locks; k++)
			describe_lock(out, d->locks[k]);
		if (d->has_shared_id)
			fprintf(out, " (tree-shared #%" PRIu64 ")", d->shared_id);
		fputc('\n', out);
	}
	if (fl->n_tree_objects)
		fprintf(out, "\nshared by the tree (%zu, made by the root at fd %u and up)\n", fl->n_tree_objects,
			fl->tree_fd_base);
	for (size_t i = 0; i < fl->n_tree_objects; i++) {
		const Roamimg__Fd *o = fl->tree_objects[i];
		fprintf(out, "  #%-4" PRIu64 " %-8s ", o->shared_id, img_fd_kind_name(o->kind));
		print_open_flags(out, o->flags, o->has_flags, 0);
		if (o->kind == ROAMIMG__FD_KIND__FD_PIPE)
			fprintf(out, "  pipe#%" PRIu64 " %s end", o->pipe_id, o->pipe_write_end ? "write" : "read");
		else if (o->kind == ROAMIMG__FD_KIND__FD_EXTERNAL)
			fprintf(out, "  the root's fd %u (%s)", o->fd, o->external ? o->external : "?");
		else
			fprintf(out, "  %s", o->path ? o->path : "?");
		if (o->has_pipe_data && o->pipe_data.len)
			fprintf(out, " (%zu bytes queued)", o->pipe_data.len);
		fputc('\n', out);
	}
}

static void describe_threads(FILE *out, const Roamimg__Threads *t)
{
	fprintf(out, "\nthreads (%zu)\n  %-7s %-16s %-16s %-16s %-7s %-24s %-14s %-14s %-15s %s\n", t->n_threads, "TID",
		"RIP", "RSP", "FS_BASE", "XSTATE", "ALTSTACK", "RSEQ", "RESTART", "COMM", "SIGMASK / PENDING");
	for (size_t i = 0; i < t->n_threads; i++) {
		const Roamimg__Thread *th = t->threads[i];
		char alt[48] = "-", rseq[24] = "-", restart[24] = "-", size[16];

		if (th->altstack)
			snprintf(alt, sizeof(alt), "%" PRIx64 "+%s%s", th->altstack->sp,
				 human(th->altstack->size, size, sizeof(size)), th->altstack->flags ? "!" : "");
		if (th->rseq)
			snprintf(rseq, sizeof(rseq), "%" PRIx64, th->rseq->ptr);
		if (th->has_restarted_syscall && th->restarted_syscall >= 0)
			snprintf(restart, sizeof(restart), "syscall %d", th->restarted_syscall);
		fprintf(out, "  %-7d %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %-7zu %-24s %-14s %-14s %-15s ", th->tid,
			th->regs->rip, th->regs->rsp, th->regs->fs_base, th->has_xstate ? th->xstate.len : 0, alt, rseq,
			restart, th->comm ? th->comm : "-");
		print_sigmask(out, th->sigmask);
		fputs(" / ", out);
		print_siginfos(out, th->pending, th->n_pending);
		fputc('\n', out);
	}
}

static void describe_totals(FILE *out, const struct img_load *ld)
{
	char a[16], b[16];

	fprintf(out, "\ntotals    %" PRIu64 " records, %" PRIu64 " bytes (", ld->records, ld->bytes);
	for (uint32_t t = 1; t < IMG_REC_MAX; t++)
		fprintf(out, "%s%s %" PRIu64, t > 1 ? ", " : "", img_rec_name(t), ld->rec_count[t]);
	fprintf(out, ")\n          pages: %" PRIu64 " carried, %" PRIu64 " distinct, %" PRIu64 " all-zero, %" PRIu64
		" compressed; %s of memory in %s of page records\n",
		ld->pages, ld->pages_unique, ld->pages_zero, ld->pages_compressed,
		human(ld->pages_unique * IMG_PAGE_SIZE, a, sizeof(a)), human(ld->rec_bytes[IMG_REC_PAGES], b, sizeof(b)));
}

static void describe(FILE *out, const char *name, const struct img_load *ld)
{
	fprintf(out, "image     %s\n", name);
	describe_header(out, ld);
	describe_process(out, ld->process);
	describe_mm(out, ld);
	describe_files(out, ld->files);
	describe_threads(out, ld->threads);
	describe_totals(out, ld);
}

/* --- JSON: the schema's messages, by reflection ----------------------------- */

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void json_message(FILE *out, const ProtobufCMessage *m);

/* One value of a field; p points at it inside the message (or its array). */
static void json_value(FILE *out, const ProtobufCFieldDescriptor *fd, const void *p)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(out, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(out, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(out, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(out, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		fprintf(out, "%.9g", (double)*(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		fprintf(out, "%.17g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(fd->descriptor, v);
		if (ev)
			json_string(out, ev->name);
		else
			fprintf(out, "%d", v);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		if (s)
			json_string(out, s);
		else
			fputs("null", out);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		fputc('"', out);
		for (size_t i = 0; i < b->len; i++)
			fprintf(out, "%02x", b->data[i]);
		fputc('"', out);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
		if (sub)
			json_message(out, sub);
		else
			fputs("null", out);
		break;
	}
	}
}

static size_t json_value_size(const ProtobufCFieldDescriptor *fd)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: return 8;
	case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
	default: return 4;
	}
}

/* Every field present, named as in image.proto. Absent optional fields are left out. */
static void json_message(FILE *out, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	int first = 1;

	fputc('{', out);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const void *p = base + fd->offset;

		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + fd->quantifier_offset);
			const char *arr = *(char *const *)p;
			fprintf(out, "%s\"%s\":[", first ? "" : ",", fd->name);
			for (size_t k = 0; k < n; k++) {
				if (k)
					fputc(',', out);
				json_value(out, fd, arr + k * json_value_size(fd));
			}
			fputc(']', out);
			first = 0;
			continue;
		}
		if (fd->label == PROTOBUF_C_LABEL_OPTIONAL) {
			if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE) {
				if (!*(void *const *)p)
					continue;
			} else if (!*(const protobuf_c_boolean *)(base + fd->quantifier_offset)) {
				continue;
			}
		}
		fprintf(out, "%s\"%s\":", first ? "" : ",", fd->name);
		json_value(out, fd, p);
		first = 0;
	}
	fputc('}', out);
}

static void describe_json(FILE *out, const struct img_load *ld)
{
	fputs("{\"header\":", out);
	json_message(out, &ld->header->base);
	fputs(",\"platform\":", out);
	json_message(out, &ld->platform->base);
	fputs(",\"process\":", out);
	json_message(out, &ld->process->base);
	fputs(",\"mm\":", out);
	json_message(out, &ld->mm->base);
	/* Page statistics, one entry per mm.vmas entry, in the same order. */
	fputs(",\"vma_pages\":[", out);
	for (size_t i = 0; i < ld->mm->n_vmas; i++)
		fprintf(out, "%s{\"pages\":%" PRIu64 ",\"unique\":%" PRIu64 ",\"zero\":%" PRIu64 "}", i ? "," : "",
			ld->vma_stat[i].pages, ld->vma_stat[i].unique, ld->vma_stat[i].zero);
	fputs("],\"files\":", out);
	json_message(out, &ld->files->base);
	fputs(",\"threads\":", out);
	json_message(out, &ld->threads->base);
	fprintf(out, ",\"totals\":{\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"pages\":%" PRIu64
		",\"pages_unique\":%" PRIu64 ",\"pages_zero\":%" PRIu64 ",\"pages_compressed\":%" PRIu64
		",\"page_record_bytes\":%" PRIu64 "}}\n",
		ld->records, ld->bytes, ld->pages, ld->pages_unique, ld->pages_zero, ld->pages_compressed,
		ld->rec_bytes[IMG_REC_PAGES]);
}

/* --- the command ------------------------------------------------------------ */

static void report_fault(const char *name, int rc, const struct img_fault *f, const struct img_load *ld)
{
	char where[160];

	if (f->record == 0)
		snprintf(where, sizeof(where), "preamble");
	else if (f->type)
		snprintf(where, sizeof(where), "record %" PRIu64 " (%s, type %u) at byte %" PRIu64, f->record,
			 img_rec_name(f->type), f->type, f->offset);
	else
		snprintf(where, sizeof(where), "record %" PRIu64 " at byte %" PRIu64, f->record, f->offset);
	/* A header this host refuses: say what it claims. */
	if (f->type == IMG_REC_HEADER && ld->header && (rc == -IMG_ERR_ARCH || rc == -IMG_ERR_VERSION)) {
		size_t n = strlen(where);
		snprintf(where + n, sizeof(where) - n, " [format %u, arch %.32s, page size %u]", ld->header->version,
			 ld->header->arch, ld->header->page_size);
	}
	if (f->has_addr)
		cli_error(CMD, "%s: %s, page block at 0x%" PRIx64 ": %s%s%s", name, where, f->addr,
			  f->what ? f->what : "", f->what ? ": " : "", img_strerror(rc));
	else
		cli_error(CMD, "%s: %s: %s%s%s", name, where, f->what ? f->what : "", f->what ? ": " : "",
			  img_strerror(rc));
}

static void usage(FILE *out)
{
	fprintf(out, "usage: roam inspect [--json | --records] IMAGE   (IMAGE '-' reads stdin)\n"
		     "  --json     the whole description as one JSON object\n"
		     "  --records  one line per record as it is read, then the description\n");
}

/* --records: the framing, for debugging a writer. */
static void print_record(FILE *out, const struct img_load *ld, uint64_t at, const struct img_record *rec,
			 const struct img_pages *pg)
{
	static const char *const codecs[] = {"raw", "lz4", "zstd"};

	fprintf(out, "record %-6" PRIu64 " at %-10" PRIu64 " %-8s %10" PRIu64 " bytes", ld->records, at,
		img_rec_name(rec->type), rec->len);
	if (rec->type == IMG_REC_PAGES)
		fprintf(out, "  %" PRIx64 "-%" PRIx64 " %u pages %s", pg->addr, pg->addr + (uint64_t)pg->npages * IMG_PAGE_SIZE,
			pg->npages, pg->codec < 3 ? codecs[pg->codec] : "?");
	fputc('\n', out);
}

int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"records", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct img_load ld;
	struct img_fault f;
	const char *path;
	int json = 0, records = 0, fd, c, rc;
	struct img_reader r;
	struct img_record rec;
	struct img_pages pg;
	uint8_t extra[4096];
	ssize_t n;
	uint64_t trailing = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'r':
			records = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || (json && records)) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	path = argv[optind];
	if (!strcmp(path, "-")) {
		fd = STDIN_FILENO;
		path = "(stdin)";
	} else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		cli_error(CMD, "%s: %s", path, strerror(errno));
		return CLI_EXIT_FAILURE;
	}

	/* A process tree is one whole stream per process, the root's first
	 * (Header.tree): each described in turn. */
	uint32_t nstreams = 1;
	for (uint32_t k = 0; k < nstreams; k++) {
		img_load_init(&ld, IMG_LOAD_TRACK | IMG_LOAD_ZERO);
		if (!records) {
			rc = img_load_stream(&ld, img_fd_read, &fd, &f);
		} else if ((rc = img_reader_init(&r, img_fd_read, &fd)) < 0) {
			f = (struct img_fault){.what = NULL};
		} else {
			uint64_t at = r.bytes;
			while ((rc = img_load_next(&ld, &r, &rec, &pg, &f)) > 0) {
				print_record(stdout, &ld, at, &rec, &pg);
				at = r.bytes;
			}
			img_reader_fini(&r);
			if (rc == 0)
				fputc('\n', stdout);
		}
		if (rc < 0) {
			fflush(stdout);
			report_fault(path, rc, &f, &ld);
			goto out;
		}
		if (k == 0 && ld.header->has_tree && ld.header->tree > 1) {
			nstreams = ld.header->tree;
			if (json)
				fputs("{\"tree\":[", stdout);
		}
		if (k > 0 && json)
			fputc(',', stdout);
		if (json)
			describe_json(stdout, &ld);
		else
			describe(stdout, path, &ld);
		if (k + 1 < nstreams && !json)
			printf("\n=== process %u of %u in the tree\n\n", k + 2, nstreams);
		if (k + 1 < nstreams)
			img_load_fini(&ld);
	}
	if (json && nstreams > 1)
		fputs("]}\n", stdout);
	/* The reader stops at COMMIT; bytes after it are never restored. */
	while ((n = img_fd_read(&fd, extra, sizeof(extra))) > 0)
		trailing += (uint64_t)n;
	if (trailing)
		cli_error(CMD, "%s: warning: %" PRIu64 " bytes after the commit record are ignored", path, trailing);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		cli_error(CMD, "writing the description: %s", strerror(errno));
		rc = -EIO;
	}
out:
	img_load_fini(&ld);
	if (fd != STDIN_FILENO)
		close(fd);
	return rc < 0 ? CLI_EXIT_FAILURE : 0;
}
