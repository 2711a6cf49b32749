/*
 * The restore context shared by the files of restore/: validate.c (may this
 * image run here, as this caller?), spawn.c (the child and what it prepares
 * itself), mm.c (address space and pages), threads.c (threads, signals,
 * credentials, release).
 */
#ifndef ROAM_RESTORE_INTERNAL_H
#define ROAM_RESTORE_INTERNAL_H

#include <limits.h>

#include "arch.h"
#include "image/load.h"
#include "restore/restore.h"
#include "sys/cpus.h"
#include "sys/ptrace.h"

/* The trampoline: one code page (a syscall instruction) and data pages for
 * the arguments of remote syscalls (paths, structs, auxv). */
#define TRAMP_DATA_PAGES 16
#define TRAMP_SIZE ((1 + TRAMP_DATA_PAGES) * ARCH_PAGE_SIZE)

struct shm_master {
	uint64_t shm_id;
	uint64_t addr, size;
};

struct restore {
	struct restore_opts opts;
	struct roam_error *err;
	struct img_load ld;
	const Roamimg__Mm *mm;  /* the layout built in the child: ld.mm, or in a
				 * pre-copy stream the early one until the final
				 * one arrives (restore_mm_update) */
	int bare;               /* pre-copy: spawned before PROCESS/FILES were
				 * final; restore_setup_late does the rest */
	struct restore_stats stats;

	pid_t pid;              /* the child being built, 0 before */
	int memfd;              /* its /proc/PID/mem */
	int prepared;           /* restore_prepare succeeded: built, stopped, traced */
	int released;
	int creds_ours;         /* the image's credentials are the caller's own */
	uint64_t tramp;         /* trampoline address in the child */
	struct remote rem;      /* remote syscalls in the main thread */
	int64_t timens_mono_ns, timens_boot_ns;  /* offsets, when a time namespace is needed */
	int *file_fd;           /* per Mm.files index: fd open in the child, or -1 */
	int *file_fd_rw;
	struct shm_master *shm;  /* sorted by shm_id */
	size_t nshm;
	int mem_image;          /* the image is all in memory (restore_prepare_mem) */
	int image_fd;           /* restore_run_file: the image, read as a stream */
	int lazy_fd;            /* the same when it is a regular file, which page
				 * blocks are read from by whoever places them */
	struct filler *fill;    /* how pages go in (pages.c), from the layout to COMMIT */
	pid_t *tids;            /* per image thread: the live thread, 0 before */
	struct remote *trem;    /* per image thread */
	struct cpu_spread hold; /* from the spawn to the release, the caller
				 * and the child on one CPU (see build) */

	/* A process tree (tree.c): the root's r holds the others, each
	 * forked from its parent's process (restore_fork) before it is built. */
	struct restore *tree_root;  /* a process of the tree but the root: the root */
	struct restore *up;     /* ... and its parent */
	struct restore **members;  /* the root: every other process, in image order */
	size_t nmembers;
	int tree_base;          /* Files.tree_fd_base of the root, 0 outside a tree */
};

/* restore.c: one process's stream, through reader (whose initialisation
 * returned rc), built and filled, all but its finish; 0 or a negative
 * error, the process left for the caller to kill. */
int restore_load(struct restore *r, struct img_reader *reader, int rc);
/* threads.c: clone3's arguments in r's trampoline data (flags, the exit
 * signal, want as the new id when set_tid), their address in *a. */
int restore_clone_args(struct restore *r, uint64_t flags, int exit_signal, pid_t want, int set_tid, uint64_t *a);
/* tree.c */
/* The root of a tree, before its spawn: the tree's descriptor base, checked
 * against its image. 0 outside a tree. */
int restore_tree_begin(struct restore *r);
/* A process of a tree but its root, before its fork: its parent, among
 * those restored before it. */
int restore_tree_parent(struct restore *r);
/* After the root's stream: every other process's stream, from the same
 * source, each forked from its parent and built but not finished (the
 * root's prepare finishes them all once all are in). 0 outside a tree. */
int restore_tree_load(struct restore *root, struct img_reader *rd);
/* validate.c */
int restore_validate(struct restore *r);
/* What may have changed between a pre-copy stream's early and final
 * pictures: credentials, rlimits, files, cwd. */
int restore_validate_final(struct restore *r);
/* spawn.c */
/* With r->bare the child prepares only what does not depend on the final
 * PROCESS and FILES (the trampoline, stdio given by the caller). */
int restore_spawn(struct restore *r);
/* A process of a tree but its root: forked by its parent's process (a
 * remote clone3 there, with its image pid where it is free), a copy of
 * that process until the layout replaces it; restore_setup_late does
 * the rest. */
int restore_fork(struct restore *r);
/* The rest, by remote syscalls, once they are final: session, cwd, umask,
 * personality, descriptors, rlimits. */
int restore_setup_late(struct restore *r);
/* Opens the threads' own /proc files in their threads (restore_finish,
 * once the threads exist). */
int restore_task_files(struct restore *r);
/* The file locks of the image's descriptors (fds_make_locks), in the main
 * thread, once every descriptor is in place for good. */
int restore_file_locks(struct restore *r);
/* fds.c */
/* Runs the system calls that make descriptors in the new process: the
 * child's own (fd_maker_local) or remote ones in thread in. */
struct fd_maker {
	/* The call's result, or -errno. */
	long (*sys)(struct fd_maker *m, long nr, long a0, long a1, long a2, long a3, long a4, long a5);
	/* Makes len bytes at p readable (and writable) by the next call: their
	 * address there, 0 if that failed. */
	uint64_t (*put)(struct fd_maker *m, const void *p, size_t len);
	/* What the call left at addr, back into p. */
	int (*get)(struct fd_maker *m, uint64_t addr, void *p, size_t len);
	struct restore *r;
	struct remote *in;
	int tree_base;          /* in a tree: where the root's tree objects are
				 * (Files.tree_fd_base), 0 otherwise */
	int tree_root;          /* the maker works in the root (which makes them) */
	int undriven;           /* a remote call could not be made */
	char what[PATH_MAX + 64];  /* the step that failed */
};
void fd_maker_local(struct fd_maker *m, struct restore *r);
void fd_maker_remote(struct fd_maker *m, struct restore *r, struct remote *in);
/* rc as an error of r, worded with the step that failed. */
int fd_maker_fail(struct fd_maker *m, int rc);
/* One above the image's highest descriptor: temporaries live there. */
int fds_high(const Roamimg__Files *fs);
/* Every descriptor of fs at its number, but stdio kept from the caller
 * (kept[fd]) and the threads' own files; temporaries at >= fds_high.
 * 0, or -errno with m->what saying what failed. */
int fds_make_all(struct fd_maker *m, const Roamimg__Files *fs, const int kept[3]);
/* In a tree's root, before its own descriptors: every shared description
 * of the tree (Files.tree_objects) at tree_fd_base + its index, but stdio;
 * after them, fds_make_tree_stdio: the root's stdio that children share. */
int fds_make_tree_objects(struct fd_maker *m, const Roamimg__Files *fs);
int fds_make_tree_stdio(struct fd_maker *m, const Roamimg__Files *fs);
/* The file locks of fs, taken again through their descriptors (stdio the
 * caller passed excepted: kept[fd]). Last, once nothing closes a
 * descriptor any more: closing any descriptor of a file drops the
 * process's POSIX locks on it. 0, or -errno with m->what saying which lock,
 * and whether another process holds it. */
int fds_make_locks(struct fd_maker *m, const Roamimg__Files *fs, const int kept[3]);
/* d's file opened at its offset, at >= high. */
int fds_open_one(struct fd_maker *m, const Roamimg__Fd *d, int high, long *out);
/* mm.c */
/* The master of shared memory object id (mm.c), or NULL. */
struct shm_master *restore_find_master(const struct restore *r, uint64_t id);
int restore_find_hole(const Roamimg__Mm *mm, const uint64_t (*extra)[2], size_t nextra, uint64_t size,
		      uint64_t *out);
/* A hole of size bytes that neither the layout mm, nor the layout other,
 * nor occ's trampoline and shared memory masters (but the skip-th) use. */
int restore_hole_beside(const Roamimg__Mm *mm, const Roamimg__Mm *other, const struct restore *occ, size_t skip,
			uint64_t size, uint64_t *out);
int restore_layout(struct restore *r);
/* Pre-copy: from the early layout (r->mm) to the final one (r->ld.mm):
 * unmaps what went, maps the fresh mappings anew. */
int restore_mm_update(struct restore *r);
/* Closes the files opened in the child to map them (a bare child opened
 * them at the lowest numbers, which its own descriptors may need). */
void restore_close_files(struct restore *r);
/* Pre-copy: a DROP record. */
int restore_drop(struct restore *r, const struct img_record *rec);
int restore_mm_finish(struct restore *r);
/* pages.c */
/* After the layout: the child's private anonymous mappings registered with a
 * userfaultfd for the fill, and helper threads to copy. */
int restore_fill_open(struct restore *r);
/* A page block; rd, the reader it came from, may hand its payload buffer
 * over to the copy (NULL: it may not). */
int restore_pages(struct restore *r, const struct img_pages *pg, struct img_reader *rd);
/* Every page in, every mapping unregistered: before anything runs. With
 * abort, pages not yet written are left. */
int restore_fill_close(struct restore *r, int abort);
/* threads.c */
/* Everything but the release: every thread exists, stopped and traced by
 * the calling thread, with its registers and mask in place. */
int restore_finish(struct restore *r);
/* Detaches every thread: the process runs. */
int restore_let_go(struct restore *r);

/* A remote syscall in the main thread whose failure names what it did. */
int rsys(struct restore *r, long *ret, const char *what, long nr, long a0, long a1, long a2, long a3,
	 long a4, long a5);
/* The same in the thread in. */
int rsys_in(struct restore *r, struct remote *in, long *ret, const char *what, long nr, long a0, long a1, long a2,
	    long a3, long a4, long a5);
/* Copies len bytes into the trampoline's data area at offset off; returns
 * the address in the child. */
int tramp_put(struct restore *r, size_t off, const void *data, size_t len, uint64_t *addr);

#endif
