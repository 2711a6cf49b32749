/*
 * The checkpoint context shared by the files of ckpt/. One file per kind of
 * state: check.c (the allowlist), seize.c (freeze and release), threads.c,
 * process.c, mm.c (layout and pages), files.c (descriptors).
 */
#ifndef ROAM_CKPT_INTERNAL_H
#define ROAM_CKPT_INTERNAL_H

#include <limits.h>
#include <signal.h>
#include <sys/stat.h>

#include "arch.h"
#include "ckpt/ckpt.h"
#include "sys/arena.h"
#include "sys/cpus.h"
#include "sys/proc.h"
#include "sys/ptrace.h"
#include "sys/netlock.h"
#include "sys/unixdiag.h"

struct ckpt_thread {
	pid_t tid;
	int seized;             /* PTRACE_SEIZE succeeded */
	int stopped;            /* reported its interrupt stop */
	int regs_changed;       /* remote syscalls ran: registers must be put back */
	int mask_changed;       /* all signals blocked for remote syscalls */
	arch_regs_t regs;       /* as the thread stopped */
	uint64_t sigmask;       /* its own blocked mask */
	Roamimg__Thread *img;   /* collected state */
};

struct precopy;  /* precopy.c */

struct ckpt {
	pid_t pid;
	int procfd, memfd, pagemapfd;
	struct ckpt_opts opts;
	struct roam_error *err;
	struct arena arena;     /* every image message lives here */
	struct cpu_spread hold; /* while we drive threads by remote syscalls:
				 * on the CPU of the one driven (remote_for) */
	enum { CK_OPEN, CK_FROZEN, CK_RESUMED, CK_KILLED } state;

	struct ckpt_thread *threads;
	size_t nthreads;
	struct proc_vma *vmas;
	size_t nvmas;
	struct proc_stat stat;
	char *status;           /* /proc/PID/status text */

	uint64_t syscall_ip;    /* a syscall instruction in the target's vDSO */
	uint64_t brk;           /* from brk(0), run in the target */

	Roamimg__Process *process;
	Roamimg__Mm *mm;
	Roamimg__Files *files;
	struct ckpt_stats stats;
	struct precopy *pre;    /* pre-copy state once ckpt_precopy_start ran */
	struct proc_vma *snap;  /* smaps while it ran (ckpt_snapshot), or NULL */
	size_t nsnap;
	int counts_stale;       /* vmas' page counts came from snap */
	uint64_t reserved;      /* bytes ckpt_reserve allocated in opts.out_fd */
	int collected;          /* ckpt_collect_all ran since the freeze */

	/* In a tree (tree.c): what it shares with the other processes. */
	int tree_child;         /* a process of the tree but its root */
	uint32_t tree_size;     /* the root: processes in the tree (Header.tree) */
	struct tree_share *share;  /* by fd: the descriptors others hold too */
	size_t nshare;
	int shares_known;       /* share and tree_pipes are filled in */
	uint64_t *tree_pipes;   /* sorted: pipes with ends in several processes of
				 * the tree, and both ends in the tree */
	size_t ntree_pipes;

	/* Established TCP connections (opts.tcp_established, inet.c): our
	 * copies of their sockets, in repair mode until the process resumes
	 * (or, killed, until we close them: without a FIN or a reset), and
	 * the connections whose packets are dropped meanwhile (sys/netlock.h). */
	struct repaired { int fd, reuse; } *repaired;   /* reuse: its SO_REUSEADDR */
	size_t nrepaired;
	struct netlock_conn *locked;
	size_t nlocked;
};

struct tree_share {
	int fd;
	uint64_t id;            /* Fd.shared_id */
};

/* check.c */
int ckpt_check_process(struct ckpt *c, int every_flag);
int ckpt_check_vma(struct ckpt *c, const struct proc_vma *v);
/* seize.c */
int ckpt_seize_all(struct ckpt *c);
int ckpt_release_all(struct ckpt *c);
int ckpt_restore_threads(struct ckpt *c);
/* threads.c */
/* Queued signals as image messages, in the arena; NULL when out of memory. */
Roamimg__SigInfo **ckpt_pack_siginfo(struct ckpt *c, const siginfo_t *si, int n);
int ckpt_collect_threads(struct ckpt *c);
int ckpt_collect_remote(struct ckpt *c);
int ckpt_write_threads(struct ckpt *c, struct img_writer *w);
/* A remote-syscall context in the (stopped) main thread. */
int ckpt_remote_leader(struct ckpt *c, struct remote *r);
/* process.c */
int ckpt_collect_process(struct ckpt *c);
/* mm.c */
int ckpt_collect_mm(struct ckpt *c);
/* The open file behind the mapping [start, end): through map_files when we
 * may (it is the very file, even renamed or deleted), else by path (NULL:
 * none). A descriptor or -errno. */
int ckpt_open_mapped(struct ckpt *c, uint64_t start, uint64_t end, const char *path);
void ckpt_snapshot_drop(struct ckpt *c);
/* The pages of every mapping of c->mm, or of those whose index only[] marks
 * (only NULL: all). */
int ckpt_write_pages(struct ckpt *c, struct img_writer *w, const uint8_t *only);
/* ckpt.c */
int ckpt_write_header(struct ckpt *c, struct img_writer *w, int precopy);
int ckpt_write_platform(struct ckpt *c, struct img_writer *w);
int ckpt_write_meta(struct ckpt *c, struct img_writer *w, int type, const ProtobufCMessage *m);
/* Collects every piece of state of the frozen process into the arena. */
int ckpt_collect_all(struct ckpt *c);
/* precopy.c */
/* ckpt_dump's pre-copy part, after the collection: the final PROCESS, MM,
 * FILES, then only what changed since the last round. */
int ckpt_precopy_final(struct ckpt *c, struct img_writer *w);
void ckpt_precopy_free(struct ckpt *c);
/* files.c */
int ckpt_check_fds(struct ckpt *c);
int ckpt_collect_files(struct ckpt *c);
/* Every descriptor as /proc shows it (link, stat, fdinfo), unclassified. */
struct fd_view;
int ckpt_read_views(struct ckpt *c, struct fd_view **out, size_t *n);
/* The bytes queued in the pipe on fd, into out (pipe_data, pipe_size). */
int ckpt_peek_pipe(struct ckpt *c, int fd, Roamimg__Fd *out);
/* tree.c: fd's shared id in c's tree, 0 when no other process holds it;
 * whether the pipe of inode ino is one between processes of the tree. */
uint64_t ckpt_tree_shared(const struct ckpt *c, int fd);
int ckpt_tree_pipe(const struct ckpt *c, uint64_t ino);

/* One descriptor as /proc shows it, while files.c classifies it. */
struct fd_view {
	int fd;
	char link[PATH_MAX];
	struct stat st;
	struct proc_fdinfo info;
	Roamimg__FdKind kind;
	struct unix_sock_info sock;  /* FD_SOCKPAIR */
	int peer_fd;            /* FD_SOCKPAIR: a descriptor of the other end */
};

/* fdobj.c: the kernel objects a descriptor makes rather than opens
 * (eventfd, signalfd, timerfd, epoll, a socket pair). */
/* f's kind from its anon_inode name, or a refusal naming it. */
int ckpt_classify_anon(struct ckpt *c, struct fd_view *f, const char *name);
/* A socket: one end of a pair (its peer checked by ckpt_check_objects),
 * stdio (fds 0-2: rebound at restore), or a refusal that says why not. */
int ckpt_classify_socket(struct ckpt *c, struct fd_view *f);
/* A copy of the process's descriptor fd (pidfd_getfd), or -errno. */
int ckpt_copy_fd(const struct ckpt *c, int fd);
/* inet.c: 1 when the socket on f is not TCP or UDP; else 0 when it can be
 * carried (its state into d, when given), or a refusal saying why not. */
int ckpt_inet_read(struct ckpt *c, const struct fd_view *f, Roamimg__Fd *d);
/* The connections in repair mode leave it (the process goes on), their
 * network lock goes; or, the process killed, our copies close. */
void ckpt_inet_release(struct ckpt *c, int resumed);
/* What only the whole set tells: a pair's other end is in the process, an
 * epoll's every watched file is still open at the number it was added
 * with, and is no epoll itself. */
int ckpt_check_objects(struct ckpt *c, struct fd_view *v, size_t n);
/* The object's state into d (after the freeze). */
int ckpt_collect_object(struct ckpt *c, const struct fd_view *f, Roamimg__Fd *d);

#define ARENA_NEW(c, type, init) ({ type *_p = arena_alloc(&(c)->arena, sizeof(type)); if (_p) init(_p); _p; })

#endif
