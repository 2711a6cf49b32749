/*
 * The roam image stream: one format on disk and on the wire.
 *
 * A stream is a 16-byte preamble followed by records:
 *
 *   preamble  "ROAMIMG\0"  u32le format version  u32le reserved (0)
 *   record    u32le type   u32le flags  u64le payload length  u64le check
 *             payload[length]
 *
 * "check" is XXH3-64 over the first 16 header bytes and the payload, so a
 * corrupt length is caught as surely as a corrupt payload. One flag:
 * IMG_RECF_UNCHECKED, a page record whose check is left out (0) because a
 * channel that authenticates every byte carries the stream (a migration's
 * bulk channel): the check would be one more pass over every page on each
 * side, for what the channel's tag already covers. A reader takes such a
 * record only when told the stream came so (img_reader_authenticated);
 * anywhere else (an image file) it is an error. Integers are
 * little-endian, encoded byte by byte: no struct is ever written raw.
 *
 * Metadata payloads are protobuf messages (schema/image.proto). Page payloads
 * are a 16-byte page header (u64le address, u32le page count, u32le codec)
 * followed by the page bytes, raw or compressed as a whole block. A later
 * page record for the same address wins, so pre-copy rounds can append (a
 * pre-copy stream's record order is in load.h).
 * The stream ends with an IMG_REC_COMMIT record; a stream without one is
 * incomplete and is never restored.
 *
 * The writer never seeks, so it works on pipes and sockets. Neither side does
 * I/O of its own: the caller supplies read/write callbacks.
 */
#ifndef ROAM_IMAGE_H
#define ROAM_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "image.pb-c.h"

#define IMG_MAGIC            "ROAMIMG"    /* 7 chars + NUL = 8 bytes */
#define IMG_FORMAT_VERSION   2         /* 2: pre-copy streams (Header.precopy) */
#define IMG_FORMAT_PRECOPY   2         /* first version that may carry pre-copy */
#define IMG_PREAMBLE_SIZE    16
#define IMG_RECORD_HDR_SIZE  24
#define IMG_PAGE_HDR_SIZE    16
#define IMG_MAX_META         (64u << 20)  /* a metadata record larger than this is corrupt */
#define IMG_MAX_PAGES_PER_RECORD 256      /* 1 MiB of 4 KiB pages */

/* Record types. Numbers are part of the format: never reuse one. */
enum img_rec_type {
	IMG_REC_HEADER   = 1,   /* Header: always first */
	IMG_REC_PLATFORM = 2,   /* Platform */
	IMG_REC_PROCESS  = 3,   /* Process */
	IMG_REC_MM       = 4,   /* Mm: the layout; page records follow it */
	IMG_REC_FILES    = 5,   /* Files */
	IMG_REC_PAGES    = 6,   /* raw page block */
	IMG_REC_THREADS  = 7,   /* Threads: registers last, after all pages */
	IMG_REC_COMMIT   = 8,   /* empty payload: the image is complete */
	IMG_REC_DROP     = 9,   /* DropPages: pre-copy only, see load.h */
	IMG_REC_MAX
};

/* Record flags. */
#define IMG_RECF_UNCHECKED 0x1u   /* a page record without its check: see above */

enum img_codec {
	IMG_CODEC_NONE = 0,
	IMG_CODEC_LZ4  = 1,
	IMG_CODEC_ZSTD = 2,     /* zstd level 1: smaller than LZ4, slower; for slow links */
};

/* Vma.madv bits: madvise() state worth carrying. */
#define VMA_MADV_DONTFORK   0x01u
#define VMA_MADV_DONTDUMP   0x02u
#define VMA_MADV_WIPEONFORK 0x04u
#define VMA_MADV_HUGEPAGE   0x08u
#define VMA_MADV_NOHUGEPAGE 0x10u
#define VMA_MADV_MERGEABLE  0x20u
/* Not madvise state: a shared file mapping that may be made writable
 * (VM_MAYWRITE), so restore opens its file for writing. */
#define VMA_SHARED_MAYWRITE 0x100u
/* Not madvise state either: mapped with MAP_NORESERVE (no commit charge). */
#define VMA_NORESERVE       0x200u

/* Errors beyond -errno, so callers can name what went wrong. */
enum img_error {
	IMG_ERR_BASE      = 5000,
	IMG_ERR_MAGIC     = 5001,   /* not a roam image */
	IMG_ERR_VERSION   = 5002,   /* written by a newer roam */
	IMG_ERR_CHECKSUM  = 5003,   /* a record's check does not match */
	IMG_ERR_TRUNCATED = 5004,   /* the stream ended inside a record or before COMMIT */
	IMG_ERR_TYPE      = 5005,   /* unknown record type */
	IMG_ERR_TOO_BIG   = 5006,   /* a length beyond the limits */
	IMG_ERR_DECODE    = 5007,   /* protobuf refused the payload */
	IMG_ERR_ORDER     = 5008,   /* a record where it may not be */
	IMG_ERR_CODEC     = 5009,   /* a page block failed to decompress */
	IMG_ERR_ARCH      = 5010,   /* image made for another architecture */
	IMG_ERR_UNCHECKED = 5011,   /* a record without its check, where that is not allowed */
	IMG_ERR_LAST      = IMG_ERR_UNCHECKED,
};

/* Whether rc is one of the codes above (negated), not an errno. */
static inline int img_is_error(int rc)
{
	return rc < -IMG_ERR_BASE && rc >= -IMG_ERR_LAST;
}

/* Callbacks. write returns 0 after writing all len bytes or -errno.
 * read returns the number of bytes read (0 at end of stream) or -errno. */
typedef int (*img_write_fn)(void *ctx, const void *buf, size_t len);
typedef ssize_t (*img_read_fn)(void *ctx, void *buf, size_t len);

struct img_writer {
	img_write_fn write;
	void *ctx;
	int codec;              /* enum img_codec for page records */
	uint64_t bytes;         /* written so far, preamble included */
	uint64_t records;
	void *scratch;          /* compression buffer, owned */
	size_t scratch_size;
	void *zstd;             /* ZSTD_CCtx for IMG_CODEC_ZSTD, owned */
	int unchecked;          /* img_writer_unchecked */
};

/* Starts a stream: writes the preamble. codec applies to page records. */
int img_writer_init(struct img_writer *w, img_write_fn fn, void *ctx, int codec);
void img_writer_fini(struct img_writer *w);
/* Page records from now on go without their check (IMG_RECF_UNCHECKED):
 * only for a stream whose every byte an authenticating channel carries to
 * a reader that knows it (img_reader_authenticated). */
void img_writer_unchecked(struct img_writer *w);
/* Writes one record with an opaque payload. */
int img_write_record(struct img_writer *w, uint32_t type, const void *payload, size_t len);
/* Packs a protobuf message and writes it as one record of the given type. */
int img_write_msg(struct img_writer *w, uint32_t type, const ProtobufCMessage *msg);
/* Writes npages pages starting at addr; npages <= IMG_MAX_PAGES_PER_RECORD. */
int img_write_pages(struct img_writer *w, uint64_t addr, const void *data, uint32_t npages);
int img_write_commit(struct img_writer *w);

/* For writers that place page records themselves (several threads writing
 * one regular file at offsets they reserve): the record and page headers of
 * an uncompressed page record, IMG_PAGES_OVERHEAD bytes to put right before
 * the npages pages of data; and the accounting of what they wrote. */
#define IMG_PAGES_OVERHEAD (IMG_RECORD_HDR_SIZE + IMG_PAGE_HDR_SIZE)
void img_encode_raw_pages(uint8_t hdr[IMG_PAGES_OVERHEAD], uint64_t addr, const void *data, uint32_t npages);
void img_writer_account(struct img_writer *w, uint64_t bytes, uint64_t records);

struct img_record {
	uint32_t type;
	uint32_t flags;
	uint64_t len;
	uint8_t *payload;       /* valid until the next img_read_record; owned by the reader */
	/* A page record whose data the reader left in the file
	 * (img_reader_lazy_pages): payload holds its page header only, the data
	 * lies at data_off, and its checksum is still to be checked. */
	int lazy;
	uint64_t data_off;
	uint64_t check;
	uint8_t hdr16[16];
};

struct img_pages {
	uint64_t addr;
	uint32_t npages;
	const uint8_t *data;    /* npages * page size bytes, decompressed; NULL when lazy */
	uint32_t codec;         /* enum img_codec the block was stored with */
	/* Lazy (see img_record): where the data lies in the file, and what
	 * img_pages_check needs to check it once read. */
	int lazy;
	uint64_t data_off;
	uint64_t check;
	uint8_t hdr16[16];
	uint8_t page_hdr[16];
};

struct img_reader {
	img_read_fn read;
	void *ctx;
	uint32_t version;       /* from the preamble */
	uint64_t bytes;         /* consumed so far */
	uint64_t records;
	uint8_t *buf;           /* payload buffer, owned */
	size_t buf_size;
	uint8_t *pages;         /* decompression buffer, owned */
	size_t pages_size;
	int committed;          /* IMG_REC_COMMIT was read */
	int error;              /* first error of img_read_record: sticky, the stream is lost */
	void *zstd;             /* ZSTD_DCtx, made on the first zstd page block, owned */
	const uint8_t *mem;     /* img_reader_init_mem: the whole stream in memory */
	size_t mem_len, mem_off;
	int lazy;               /* img_reader_lazy_pages */
	int lazy_fd;
	uint64_t lazy_base;     /* the file offset of the stream's first byte */
	uint64_t lazy_size;     /* the file's size */
	int authenticated;      /* img_reader_authenticated */
};

/* Reads and checks the preamble. */
int img_reader_init(struct img_reader *r, img_read_fn fn, void *ctx);
/* The same over a stream that is all in memory (a mapped image file):
 * payloads are then not copied, record pointers point into data, which must
 * outlive the reader. */
int img_reader_init_mem(struct img_reader *r, const void *data, size_t len);
void img_reader_fini(struct img_reader *r);
/* The stream comes over a channel that authenticated every byte of it
 * from its writer: page records without their check are taken (and their
 * pages not hashed). Without this call they are -IMG_ERR_UNCHECKED. */
void img_reader_authenticated(struct img_reader *r);
/* A reader over a regular file (fd, which its read function reads) may
 * leave the data of uncompressed page records in the file: the record
 * comes with its page header and where its data lies (img_record.lazy),
 * the rest of the file is skipped, and whoever reads the data later checks
 * it with img_pages_check. So several threads can read and place blocks at
 * once. -1 (and nothing changes) when fd is not a regular file. */
int img_reader_lazy_pages(struct img_reader *r, int fd);
/* 0 when data (npages pages, read from pg->data_off) is what the record's
 * checksum says, else -IMG_ERR_CHECKSUM. */
int img_pages_check(const struct img_pages *pg, const void *data);
/* Reads the next record. Returns 1 with *rec filled, 0 at a clean end of
 * stream (after COMMIT only; an end before it is IMG_ERR_TRUNCATED), or a
 * negative error. After an error the framing is lost: every later call
 * returns the same error. The payload buffer grows as bytes arrive, never
 * ahead of them, so a forged length costs no memory the sender did not send. */
int img_read_record(struct img_reader *r, struct img_record *rec);
/* Hands the buffer that holds the last record's payload to the caller (who
 * frees it, or gives it back through a later call) and takes spare, of
 * spare_size bytes from malloc (or NULL), as the reader's own: the payload
 * then outlives the next record. NULL from a reader over memory, whose
 * payloads stay where they are anyway. */
uint8_t *img_reader_swap_payload(struct img_reader *r, uint8_t *spare, size_t spare_size, size_t *size);
/* Decodes a IMG_REC_PAGES payload; data points into reader-owned memory. */
int img_decode_pages(struct img_reader *r, const struct img_record *rec, struct img_pages *out);

/* Human-readable text of an error returned by this module (negative). */
const char *img_strerror(int err);
const char *img_rec_name(uint32_t type);

/* File-descriptor callbacks, for the common case. ctx points to an int fd. */
int img_fd_write(void *ctx, const void *buf, size_t len);
ssize_t img_fd_read(void *ctx, void *buf, size_t len);

#endif
