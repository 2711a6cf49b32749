/*
 * /proc parsing: the views of a process that the kernel offers as text.
 * Every function takes a descriptor of the process's /proc/PID directory,
 * so that a recycled PID cannot switch processes under the caller.
 */
#ifndef ROAM_SYS_PROC_H
#define ROAM_SYS_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int proc_open(pid_t pid);
/* Reads a whole /proc file (relative to dirfd) into a NUL-terminated malloc'd
 * buffer. */
int proc_read_file(int dirfd, const char *name, char **buf, size_t *len);
/* The value after "key:" in a "Key:\tvalue" file such as status, into out. */
int proc_status_value(const char *text, const char *key, char *out, size_t size);
uint64_t proc_status_hex(const char *text, const char *key);

struct proc_stat {
	char state;
	int ppid, pgrp, session, tty_nr;
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk;
	uint64_t arg_start, arg_end, env_start, env_end;
	int exit_signal;
	int processor;          /* the CPU it last ran on */
};
int proc_parse_stat(int dirfd, struct proc_stat *st);

/* VmFlags of smaps, the ones the engine cares about. */
enum {
	PV_GROWSDOWN = 1u << 0, PV_DONTCOPY = 1u << 1, PV_DONTDUMP = 1u << 2,
	PV_WIPEONFORK = 1u << 3, PV_HUGEPAGE = 1u << 4, PV_NOHUGEPAGE = 1u << 5,
	PV_MERGEABLE = 1u << 6, PV_MAYWRITE = 1u << 7, PV_MAYREAD = 1u << 8,
	PV_IO = 1u << 9, PV_PFNMAP = 1u << 10, PV_HUGETLB = 1u << 11,
	PV_LOCKED = 1u << 12, PV_MAYSHARE = 1u << 13, PV_UFFD = 1u << 14,
	PV_NORESERVE = 1u << 15,
};

struct proc_vma {
	uint64_t start, end, pgoff;
	uint32_t prot;          /* PROT_* */
	int shared;             /* 's' in maps */
	unsigned dev_major, dev_minor;
	uint64_t ino;
	uint32_t vmflags;       /* PV_* */
	uint64_t rss_kb, swap_kb;
	char *path;             /* "" for anonymous memory; owned */
};
int proc_read_vmas(int dirfd, struct proc_vma **out, size_t *n);
/* The same from maps: no page counts, no VmFlags (all 0), but no walk of
 * every page table either, which smaps costs (~10 ms per GiB present). */
int proc_read_maps(int dirfd, struct proc_vma **out, size_t *n);
void proc_free_vmas(struct proc_vma *v, size_t n);
/* The mapping of v[0..n) that starts at start, or NULL: a binary search,
 * the kernel listing mappings in address order. */
const struct proc_vma *proc_vma_at(const struct proc_vma *v, size_t n, uint64_t start);

/* Thread ids of the process, sorted, the thread group leader first. */
int proc_list_tasks(int dirfd, pid_t **out, size_t *n);

/* Moves this PID namespace's last allocated pid past the highest of ids,
 * when it is below: the processes and threads made next then take pids
 * above, and a process being restored can have its own pid and thread ids
 * back (clone3 set_tid), which its C library has cached. Only root may
 * (ns_last_pid): -errno otherwise. A best effort, since any other process
 * may fork meanwhile. */
int proc_keep_pids_free(const int32_t *ids, size_t n);
/* A POSIX timer (timer_create) as /proc/PID/timers shows it. */
struct proc_posix_timer {
	int id, signo, clockid;
	int notify;             /* SIGEV_SIGNAL or SIGEV_NONE, | SIGEV_THREAD_ID */
	pid_t tid;              /* SIGEV_THREAD_ID: the thread it signals */
	uint64_t sigev_value;
};
/* The process's POSIX timers (none where the kernel shows none); -EPROTO
 * when the file does not read as expected. */
int proc_read_posix_timers(int dirfd, struct proc_posix_timer **out, size_t *n);

/* prctl PR_TIMER_CREATE_RESTORE_IDS (Linux 6.17+): timer_create takes the
 * id it is asked for, as restore needs. Newer than the installed headers. */
#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#define PR_TIMER_CREATE_RESTORE_IDS_GET 2
#endif
/* Whether this kernel has it. */
int proc_timer_ids_restorable(void);
/* Number of children of all the process's threads; *first gets one (the
 * lowest pid). */
int proc_count_children(int dirfd, pid_t *first);
/* The children of all the process's threads, by pid (malloc'd). */
int proc_list_children(int dirfd, pid_t **out, size_t *n);

struct proc_fdinfo {
	uint64_t pos;
	uint32_t flags;         /* open flags, including O_CLOEXEC */
	int mnt_id;
	uint64_t ino;
	int locks;              /* number of "lock:" lines */
};
int proc_read_fdinfo(int dirfd, int fd, struct proc_fdinfo *fi);

/* A file lock, from a "lock:" line of /proc/PID/fdinfo/N: the locks held
 * through that descriptor's open file description (flock, OFD), and the
 * process's own record locks taken through it (POSIX). */
enum proc_lock_kind { PROC_LOCK_OTHER, PROC_LOCK_FLOCK, PROC_LOCK_POSIX, PROC_LOCK_OFD };
struct proc_lock {
	int kind;               /* enum proc_lock_kind; OTHER: a lease, a
				 * delegation, or what this parser does not know */
	int write;              /* exclusive (WRITE); shared (READ) otherwise */
	uint64_t start, end;    /* bytes; end UINT64_MAX: to the end of the file */
	char what[16];          /* the kind as the kernel printed it ("LEASE") */
};
/* line: the text after "lock:". 0, or -EINVAL when it is not a lock line. */
int proc_parse_lock(const char *line, struct proc_lock *out);
/* Every lock of fdinfo/fd, in *out (malloc'd, the caller frees). */
int proc_read_locks(int dirfd, int fd, struct proc_lock **out, size_t *n);
/* Resource limits from /proc/PID/limits, indexed by RLIMIT_*: unlike
 * prlimit(2) on another process, this needs no CAP_SYS_RESOURCE when the
 * process changed its ids. Returns the number of limits read. */
int proc_read_limits(int dirfd, uint64_t cur[], uint64_t max[], int n);
/* The CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets (ns) of the process's time
 * namespace, from the host's clocks (timens_offsets); 0 where the kernel has
 * no time namespaces. AT_FDCWD stands for the caller itself (/proc/self). */
int proc_timens_offsets(int dirfd, int64_t *mono, int64_t *boot);
/* The fd numbers open in the process, sorted. */
int proc_list_fds(int dirfd, int **out, size_t *n);

#endif
