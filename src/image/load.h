/*
 * Loading an image: unpacking its protobuf records, and checking, record by
 * record as the stream arrives, that the image as a whole makes sense before
 * anything acts on it.
 *
 * The order a complete image follows (IMG_ERR_ORDER otherwise):
 *
 *   HEADER                          first, exactly once
 *   PLATFORM PROCESS MM FILES       each exactly once, in any order
 *   PAGES*                          after MM, before THREADS; every block
 *                                   inside the mappings MM lists
 *   THREADS                         once, after every page
 *   COMMIT                          last
 *
 * A pre-copy stream (Header.precopy, format version 2 or later) copies the
 * memory while the process runs, then the rest at the freeze:
 *
 *   HEADER
 *   PLATFORM PROCESS MM             each once, any order: the early picture,
 *                                   taken when the copy began
 *   PAGES* DROP*                    the rounds, inside the early MM
 *   PROCESS MM FILES                each once more (FILES once), any order:
 *                                   the final picture, at the freeze
 *   PAGES* DROP*                    after all three, inside the final MM
 *   THREADS
 *   COMMIT
 *
 * Records apply in order: a later page or drop of the same page wins. In
 * the final MM a mapping either is "fresh" (made anew; its pages follow in
 * full) or is identical to a mapping of the early MM (img_vma_same), whose
 * pages it keeps. DROP ranges lie each inside one private mapping. Fresh
 * mappings and DROP records exist only in pre-copy streams.
 *
 * The header must name this format version (IMG_ERR_VERSION) and x86_64
 * with 4 KiB pages (IMG_ERR_ARCH). Metadata is checked for what restore would
 * otherwise trust blindly: mappings sorted, aligned and disjoint, file and fd
 * references in range, signal and resource numbers in range, one thread at
 * least (IMG_ERR_DECODE, with the rule in img_fault.what).
 *
 * Pure: no I/O of its own. The loader keeps every metadata message it
 * unpacked (not the pages), so a reader gets the whole picture at COMMIT.
 */
#ifndef ROAM_IMAGE_LOAD_H
#define ROAM_IMAGE_LOAD_H

#include "image/image.h"

#define IMG_ARCH      "x86_64"
#define IMG_PAGE_SIZE 4096u

/* Where loading failed: enough for a message that names the record. */
struct img_fault {
	uint64_t record;   /* 1-based index of the record at fault; 0 = the preamble */
	uint32_t type;     /* its type as read, 0 when its header was not read */
	uint64_t offset;   /* byte offset of the record (or preamble) in the stream */
	const char *what;  /* static text naming the broken rule, or NULL */
	uint64_t addr;     /* page records: the block's address */
	int has_addr;
};

/* Pages one mapping carries. */
struct img_vma_stat {
	uint64_t pages;    /* page copies carried, later rounds included */
	uint64_t unique;   /* distinct pages (IMG_LOAD_TRACK only) */
	uint64_t zero;     /* all-zero page copies (IMG_LOAD_ZERO only) */
};

/* img_load_init flags. Both cost time or memory a restore need not pay. */
#define IMG_LOAD_TRACK 0x1u  /* keep page extents, to count distinct pages */
#define IMG_LOAD_ZERO  0x2u  /* scan pages for all-zero ones */

struct img_extent {
	uint64_t addr;
	uint64_t npages;
};

struct img_load {
	unsigned flags;
	uint32_t seen;              /* bit (1 << type) for every record type read */
	int committed;
	int finished;               /* img_load_finish passed */

	/* Metadata, owned; NULL until its record is read. */
	Roamimg__Header *header;
	Roamimg__Platform *platform;
	Roamimg__Process *process;
	Roamimg__Mm *mm;
	Roamimg__Files *files;
	Roamimg__Threads *threads;

	/* Pre-copy streams. mm and process above are always the current ones:
	 * the early ones until the final records replace them, kept here. */
	int precopy;                /* Header.precopy */
	uint32_t final_seen;        /* bits of the final PROCESS, MM, FILES read */
	Roamimg__Mm *mm_early;      /* once the final MM was read */
	Roamimg__Process *process_early;

	struct img_vma_stat *vma_stat;  /* one per mm->vmas[i], same index */

	/* Totals. */
	uint64_t records;
	uint64_t bytes;                 /* payload + record headers + preamble */
	uint64_t rec_count[IMG_REC_MAX];
	uint64_t rec_bytes[IMG_REC_MAX];  /* payload bytes per type */
	uint64_t pages;                 /* page copies carried */
	uint64_t pages_unique;          /* IMG_LOAD_TRACK */
	uint64_t pages_zero;            /* IMG_LOAD_ZERO */
	uint64_t pages_compressed;             /* page copies stored compressed */
	uint64_t pages_dropped;         /* pages DROP records named */

	struct img_extent *ext;         /* IMG_LOAD_TRACK: every page block */
	size_t n_ext, cap_ext;
};

void img_load_init(struct img_load *ld, unsigned flags);
/* Frees every message and table the loader holds. */
void img_load_fini(struct img_load *ld);

/*
 * Checks and absorbs one record that img_read_record just returned. For a
 * page record the decoded block goes to *pages when pages is non-NULL (valid
 * until the reader's next call). Returns 0 or a negative error; on error *f
 * names the record and the rule.
 */
int img_load_record(struct img_load *ld, struct img_reader *r, const struct img_record *rec,
		    struct img_pages *pages, struct img_fault *f);

/* After COMMIT: checks the image is complete and computes the totals. */
int img_load_finish(struct img_load *ld, struct img_fault *f);

/*
 * The usual loop body: reads the next record through r and checks it.
 * Returns 1 with *rec filled (and *pages, when non-NULL, for a page record),
 * 0 once COMMIT was read and img_load_finish passed, or a negative error with
 * *f naming the record, whether the reader or the checks refused it. A
 * restore reads an image as:
 *
 *	while ((rc = img_load_next(&ld, &r, &rec, &pg, &f)) > 0)
 *		if (rec.type == IMG_REC_PAGES)
 *			copy pg.npages pages from pg.data to pg.addr;
 */
int img_load_next(struct img_load *ld, struct img_reader *r, struct img_record *rec, struct img_pages *pages,
		  struct img_fault *f);

/*
 * Reads a whole stream through fn/ctx, checking every record, and leaves the
 * metadata and statistics in ld (img_load_init first, img_load_fini after,
 * even on error). Page contents are checked and dropped.
 */
int img_load_stream(struct img_load *ld, img_read_fn fn, void *ctx, struct img_fault *f);

/*
 * Unpack helpers: 0 with *out set (free it with the matching
 * roamimg__*__free_unpacked, or protobuf_c_message_free_unpacked), or
 * -IMG_ERR_TYPE when the record is of another type, -IMG_ERR_DECODE when the
 * payload does not decode.
 */
int img_unpack(const struct img_record *rec, uint32_t type, ProtobufCMessage **out);
int img_unpack_header(const struct img_record *rec, Roamimg__Header **out);
int img_unpack_platform(const struct img_record *rec, Roamimg__Platform **out);
int img_unpack_process(const struct img_record *rec, Roamimg__Process **out);
int img_unpack_mm(const struct img_record *rec, Roamimg__Mm **out);
int img_unpack_files(const struct img_record *rec, Roamimg__Files **out);
int img_unpack_threads(const struct img_record *rec, Roamimg__Threads **out);
int img_unpack_drop(const struct img_record *rec, Roamimg__DropPages **out);

/* Whether two mappings (of mm a and mm b) are the same mapping: range,
 * protection, kind, offset, flags, name and file identity; Vma.fresh aside. */
int img_vma_same(const Roamimg__Mm *a, const Roamimg__Vma *va, const Roamimg__Mm *b, const Roamimg__Vma *vb);

/* The protobuf message of a record type; NULL for PAGES and COMMIT. */
const ProtobufCMessageDescriptor *img_rec_descriptor(uint32_t type);

/* Index in mm->vmas of the mapping holding addr, or -1. */
ssize_t img_find_vma(const Roamimg__Mm *mm, uint64_t addr);

/* Whether a list of queued signals holds signal signo. */
int img_siginfo_has(Roamimg__SigInfo *const *v, size_t n, uint32_t signo);

/* Names for the schema's enums ("anon-private", "reg", ...; "?" if unknown). */
const char *img_vma_kind_name(int kind);
const char *img_fd_kind_name(int kind);

#endif
