/*
 * The image stream: framing, checks and page blocks (format in image.h).
 */
#include "image/image.h"

#include <errno.h>
#include <stdbool.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>
#include <zstd.h>

#include "arch.h"
#include "sys/xxh3_parts.h"

#define PAGE_SZ 4096u
#define ZSTD_LEVEL 1
/* The payload buffer's first size: a whole page record fits at once. */
#define PAYLOAD_STEP (IMG_PAGE_HDR_SIZE + (size_t)IMG_MAX_PAGES_PER_RECORD * PAGE_SZ + 64)

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* The check covers the header's first 16 bytes, then the payload. */
static uint64_t record_check_portable(const uint8_t *hdr16, const void *p1, size_t l1, const void *p2, size_t l2)
{
	return xxh3_parts(hdr16, p1, l1, p2, l2);
}

/* Chosen on the first record, once: the same value either way, so
 * threads racing to choose store the same pointer. */
static uint64_t record_check(const uint8_t *hdr16, const void *p1, size_t l1, const void *p2, size_t l2)
{
	static arch_xxh3_fn impl;
	arch_xxh3_fn f = __atomic_load_n(&impl, __ATOMIC_RELAXED);

	if (!f) {
		if (!(f = arch_xxh3_wide()))
			f = record_check_portable;
		__atomic_store_n(&impl, f, __ATOMIC_RELAXED);
	}
	return f(hdr16, p1, l1, p2, l2);
}

static int emit(struct img_writer *w, const void *buf, size_t len)
{
	int rc = w->write(w->ctx, buf, len);
	if (rc == 0)
		w->bytes += len;
	return rc;
}

int img_writer_init(struct img_writer *w, img_write_fn fn, void *ctx, int codec)
{
	uint8_t pre[IMG_PREAMBLE_SIZE] = {0};

	memset(w, 0, sizeof(*w));
	w->write = fn;
	w->ctx = ctx;
	w->codec = codec;
	memcpy(pre, IMG_MAGIC, 8);
	put_u32(pre + 8, IMG_FORMAT_VERSION);
	return emit(w, pre, sizeof(pre));
}

void img_writer_unchecked(struct img_writer *w)
{
	w->unchecked = 1;
}

void img_writer_fini(struct img_writer *w)
{
	free(w->scratch);
	w->scratch = NULL;
	ZSTD_freeCCtx(w->zstd);
	w->zstd = NULL;
}

static size_t max_payload(uint32_t type)
{
	if (type == IMG_REC_PAGES)
		return IMG_PAGE_HDR_SIZE + (size_t)IMG_MAX_PAGES_PER_RECORD * PAGE_SZ;
	if (type == IMG_REC_COMMIT)
		return 0;
	return IMG_MAX_META;
}

/* A record whose payload comes in two parts (page header + page bytes).
 * The writer refuses what the reader would refuse, so a checkpoint fails
 * with a clear error instead of producing an image nobody can read. */
static int write_record2(struct img_writer *w, uint32_t type, uint32_t flags,
			 const void *p1, size_t l1, const void *p2, size_t l2)
{
	uint8_t hdr[IMG_RECORD_HDR_SIZE];
	int rc;

	if (type == 0 || type >= IMG_REC_MAX)
		return -EINVAL;
	if ((uint64_t)l1 + l2 > max_payload(type))
		return -IMG_ERR_TOO_BIG;
	put_u32(hdr, type);
	put_u32(hdr + 4, flags);
	put_u64(hdr + 8, (uint64_t)l1 + l2);
	put_u64(hdr + 16, (flags & IMG_RECF_UNCHECKED) ? 0 : record_check(hdr, p1, l1, p2, l2));
	if ((rc = emit(w, hdr, sizeof(hdr))) < 0)
		return rc;
	if (l1 && (rc = emit(w, p1, l1)) < 0)
		return rc;
	if (l2 && (rc = emit(w, p2, l2)) < 0)
		return rc;
	w->records++;
	return 0;
}

int img_write_record(struct img_writer *w, uint32_t type, const void *payload, size_t len)
{
	return write_record2(w, type, 0, payload, len, NULL, 0);
}

int img_write_msg(struct img_writer *w, uint32_t type, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;
	int rc;

	if (len > IMG_MAX_META)
		return -IMG_ERR_TOO_BIG;
	if (!(buf = malloc(len ? len : 1)))
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	rc = img_write_record(w, type, buf, len);
	free(buf);
	return rc;
}

static int scratch_reserve(struct img_writer *w, size_t size)
{
	if (w->scratch_size >= size)
		return 0;
	void *n = realloc(w->scratch, size);
	if (!n)
		return -ENOMEM;
	w->scratch = n;
	w->scratch_size = size;
	return 0;
}

/* Compresses raw bytes into w->scratch with the writer's codec. Returns the
 * compressed length, or 0 when the block is better stored raw (or the codec
 * failed: raw is always a correct fallback). */
static size_t compress_block(struct img_writer *w, const void *data, size_t raw)
{
	if (w->codec == IMG_CODEC_LZ4) {
		int bound = LZ4_compressBound((int)raw);
		if (scratch_reserve(w, (size_t)bound) < 0)
			return 0;
		int clen = LZ4_compress_default(data, w->scratch, (int)raw, bound);
		return clen > 0 ? (size_t)clen : 0;
	}
	if (w->codec == IMG_CODEC_ZSTD) {
		size_t bound = ZSTD_compressBound(raw);
		if (scratch_reserve(w, bound) < 0)
			return 0;
		if (!w->zstd && !(w->zstd = ZSTD_createCCtx()))
			return 0;
		size_t clen = ZSTD_compressCCtx(w->zstd, w->scratch, bound, data, raw, ZSTD_LEVEL);
		return ZSTD_isError(clen) ? 0 : clen;
	}
	return 0;
}

int img_write_pages(struct img_writer *w, uint64_t addr, const void *data, uint32_t npages)
{
	uint8_t ph[IMG_PAGE_HDR_SIZE];
	size_t raw = (size_t)npages * PAGE_SZ, clen;
	uint32_t flags = w->unchecked ? IMG_RECF_UNCHECKED : 0;

	if (npages == 0 || npages > IMG_MAX_PAGES_PER_RECORD || (addr & (PAGE_SZ - 1)))
		return -EINVAL;
	put_u64(ph, addr);
	put_u32(ph + 8, npages);
	clen = compress_block(w, data, raw);
	/* Incompressible blocks go raw: the reader never pays for nothing. */
	if (clen > 0 && clen < raw) {
		put_u32(ph + 12, (uint32_t)w->codec);
		return write_record2(w, IMG_REC_PAGES, flags, ph, sizeof(ph), w->scratch, clen);
	}
	put_u32(ph + 12, IMG_CODEC_NONE);
	return write_record2(w, IMG_REC_PAGES, flags, ph, sizeof(ph), data, raw);
}

void img_encode_raw_pages(uint8_t hdr[IMG_PAGES_OVERHEAD], uint64_t addr, const void *data, uint32_t npages)
{
	uint8_t *ph = hdr + IMG_RECORD_HDR_SIZE;
	size_t raw = (size_t)npages * PAGE_SZ;

	put_u64(ph, addr);
	put_u32(ph + 8, npages);
	put_u32(ph + 12, IMG_CODEC_NONE);
	put_u32(hdr, IMG_REC_PAGES);
	put_u32(hdr + 4, 0);
	put_u64(hdr + 8, (uint64_t)IMG_PAGE_HDR_SIZE + raw);
	put_u64(hdr + 16, record_check(hdr, ph, IMG_PAGE_HDR_SIZE, data, raw));
}

void img_writer_account(struct img_writer *w, uint64_t bytes, uint64_t records)
{
	w->bytes += bytes;
	w->records += records;
}

int img_write_commit(struct img_writer *w)
{
	return img_write_record(w, IMG_REC_COMMIT, NULL, 0);
}

/* Reads exactly len bytes. A short stream is IMG_ERR_TRUNCATED, except that
 * an end before the first byte is reported as 0 when at_boundary is set. */
static int read_full(struct img_reader *r, void *buf, size_t len, int at_boundary)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = r->read(r->ctx, (uint8_t *)buf + got, len - got);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return (got == 0 && at_boundary) ? 0 : -IMG_ERR_TRUNCATED;
		got += (size_t)n;
	}
	r->bytes += len;
	return 1;
}

/* Reads and checks the preamble of a reader whose source is set. */
static int read_preamble(struct img_reader *r)
{
	uint8_t pre[IMG_PREAMBLE_SIZE];
	int rc;

	rc = read_full(r, pre, sizeof(pre), 0);
	if (rc < 0)
		return rc == -IMG_ERR_TRUNCATED ? -IMG_ERR_MAGIC : rc;
	/* The reserved word is part of the magic until a version gives it a use:
	 * a flipped bit there is corruption, not something to ignore. */
	if (memcmp(pre, IMG_MAGIC, 8) != 0 || get_u32(pre + 12) != 0)
		return -IMG_ERR_MAGIC;
	r->version = get_u32(pre + 8);
	if (r->version == 0 || r->version > IMG_FORMAT_VERSION)
		return -IMG_ERR_VERSION;
	return 0;
}

int img_reader_init(struct img_reader *r, img_read_fn fn, void *ctx)
{
	memset(r, 0, sizeof(*r));
	r->read = fn;
	r->ctx = ctx;
	return read_preamble(r);
}

void img_reader_authenticated(struct img_reader *r)
{
	r->authenticated = 1;
}

void img_reader_fini(struct img_reader *r)
{
	free(r->buf);
	free(r->pages);
	r->buf = r->pages = NULL;
	ZSTD_freeDCtx(r->zstd);
	r->zstd = NULL;
}

uint8_t *img_reader_swap_payload(struct img_reader *r, uint8_t *spare, size_t spare_size, size_t *size)
{
	uint8_t *b = r->buf;

	if (r->mem)
		return NULL;
	*size = r->buf_size;
	r->buf = spare;
	r->buf_size = spare ? spare_size : 0;
	return b;
}

/*
 * Reads a payload of len bytes into r->buf. The buffer grows as the bytes
 * arrive rather than as the length claims: a peer that sends a 24-byte
 * header announcing 64 MiB gets a truncation error, not 64 MiB of our memory.
 */
static int read_payload_rest(struct img_reader *r, size_t got, size_t len)
{
	int rc;

	while (got < len) {
		size_t chunk = len - got;

		if (got + chunk + 1 > r->buf_size) {
			size_t cap = r->buf_size * 2;
			if (cap < PAYLOAD_STEP)
				cap = PAYLOAD_STEP;
			if (cap > len + 1)
				cap = len + 1;
			if (cap > r->buf_size) {
				void *n = realloc(r->buf, cap);
				if (!n)
					return -ENOMEM;
				r->buf = n;
				r->buf_size = cap;
			}
			if (chunk > r->buf_size - 1 - got)
				chunk = r->buf_size - 1 - got;
		}
		if ((rc = read_full(r, r->buf + got, chunk, 0)) < 0)
			return rc;
		got += chunk;
	}
	return 0;
}

static int read_payload(struct img_reader *r, size_t len)
{
	return read_payload_rest(r, 0, len);
}

int img_reader_lazy_pages(struct img_reader *r, int fd)
{
	struct stat st;
	off_t pos = lseek(fd, 0, SEEK_CUR);

	if (r->mem || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || pos < 0 || (uint64_t)pos < r->bytes)
		return -1;
	r->lazy = 1;
	r->lazy_fd = fd;
	r->lazy_base = (uint64_t)pos - r->bytes;
	r->lazy_size = (uint64_t)st.st_size;
	return 0;
}

/*
 * Lazy mode: reads a page record's page header and skips its data. Returns
 * 1 when the data was left in the file, 0 when the record was read whole
 * after all (a compressed block: its data is needed to know its pages), or
 * a negative error. A file too short for the record is truncated now, as a
 * read would have found.
 */
static int skip_page_data(struct img_reader *r, struct img_record *rec, const uint8_t *hdr)
{
	int rc;

	if ((rc = read_payload(r, IMG_PAGE_HDR_SIZE)) < 0)
		return rc;
	if (get_u32(r->buf + 12) != IMG_CODEC_NONE) {
		if ((rc = read_payload_rest(r, IMG_PAGE_HDR_SIZE, (size_t)rec->len)) < 0)
			return rc;
		return 0;
	}
	uint64_t data_len = rec->len - IMG_PAGE_HDR_SIZE, off = r->lazy_base + r->bytes;
	if (off > r->lazy_size || data_len > r->lazy_size - off)
		return -IMG_ERR_TRUNCATED;
	if (lseek(r->lazy_fd, (off_t)data_len, SEEK_CUR) < 0)
		return -errno;
	r->bytes += data_len;
	rec->lazy = 1;
	rec->data_off = off;
	rec->check = get_u64(hdr + 16);
	memcpy(rec->hdr16, hdr, 16);
	return 1;
}

int img_pages_check(const struct img_pages *pg, const void *data)
{
	size_t raw = (size_t)pg->npages * PAGE_SZ;

	return record_check(pg->hdr16, pg->page_hdr, IMG_PAGE_HDR_SIZE, data, raw) == pg->check ? 0
												 : -IMG_ERR_CHECKSUM;
}

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
	struct img_reader *r = ctx;
	size_t left = r->mem_len - r->mem_off;

	if (len > left)
		len = left;
	memcpy(buf, r->mem + r->mem_off, len);
	r->mem_off += len;
	return (ssize_t)len;
}

int img_reader_init_mem(struct img_reader *r, const void *data, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->mem = data;
	r->mem_len = len;
	r->read = mem_read;
	r->ctx = r;
	return read_preamble(r);
}

static int read_record(struct img_reader *r, struct img_record *rec)
{
	uint8_t hdr[IMG_RECORD_HDR_SIZE];
	int rc;

	rc = read_full(r, hdr, sizeof(hdr), 1);
	if (rc == 0)
		return -IMG_ERR_TRUNCATED;  /* the stream ended before COMMIT */
	if (rc < 0)
		return rc;
	rec->type = get_u32(hdr);
	rec->flags = get_u32(hdr + 4);
	rec->len = get_u64(hdr + 8);
	if (rec->type == 0 || rec->type >= IMG_REC_MAX)
		return -IMG_ERR_TYPE;
	if (rec->len > max_payload(rec->type))
		return -IMG_ERR_TOO_BIG;
	/* Only a page record may come without its check, only on a stream an
	 * authenticating channel carried, and then its check field is 0. */
	int unchecked = (rec->flags & IMG_RECF_UNCHECKED) != 0;
	if (unchecked && (!r->authenticated || rec->type != IMG_REC_PAGES || get_u64(hdr + 16) != 0))
		return -IMG_ERR_UNCHECKED;
	if (!r->buf) {
		/* Even an empty payload gets a valid pointer. */
		if (!(r->buf = malloc(1)))
			return -ENOMEM;
		r->buf_size = 1;
	}
	if (r->mem) {
		/* In memory: the payload is checked and used where it lies. */
		if (rec->len > r->mem_len - r->mem_off)
			return -IMG_ERR_TRUNCATED;
		rec->payload = (uint8_t *)(uintptr_t)(r->mem + r->mem_off);
		r->mem_off += rec->len;
		r->bytes += rec->len;
	} else if (r->lazy && rec->type == IMG_REC_PAGES && rec->len > IMG_PAGE_HDR_SIZE) {
		if ((rc = skip_page_data(r, rec, hdr)) < 0)
			return rc;
		rec->payload = r->buf;
	} else {
		if ((rc = read_payload(r, (size_t)rec->len)) < 0)
			return rc;
		rec->payload = r->buf;
	}
	if (!rec->lazy && !unchecked && record_check(hdr, rec->payload, rec->len, NULL, 0) != get_u64(hdr + 16))
		return -IMG_ERR_CHECKSUM;
	r->records++;
	if (r->records == 1 && rec->type != IMG_REC_HEADER)
		return -IMG_ERR_ORDER;
	if (rec->type == IMG_REC_COMMIT)
		r->committed = 1;
	return 1;
}

int img_read_record(struct img_reader *r, struct img_record *rec)
{
	int rc;

	/* A caller naming a failed record must not see the previous one's type. */
	memset(rec, 0, sizeof(*rec));
	if (r->error)
		return r->error;
	if (r->committed)
		return 0;
	rc = read_record(r, rec);
	if (rc < 0)
		r->error = rc;
	return rc;
}

int img_decode_pages(struct img_reader *r, const struct img_record *rec, struct img_pages *out)
{
	const uint8_t *p = rec->payload;
	size_t raw;
	uint32_t codec;

	if (rec->type != IMG_REC_PAGES || rec->len < IMG_PAGE_HDR_SIZE)
		return -IMG_ERR_TOO_BIG;
	out->addr = get_u64(p);
	out->npages = get_u32(p + 8);
	codec = get_u32(p + 12);
	out->codec = codec;
	if (out->npages == 0 || out->npages > IMG_MAX_PAGES_PER_RECORD || (out->addr & (PAGE_SZ - 1)))
		return -IMG_ERR_TOO_BIG;
	raw = (size_t)out->npages * PAGE_SZ;
	out->lazy = rec->lazy;
	if (codec == IMG_CODEC_NONE) {
		if (rec->len - IMG_PAGE_HDR_SIZE != raw)
			return -IMG_ERR_TOO_BIG;
		out->data = rec->lazy ? NULL : p + IMG_PAGE_HDR_SIZE;
		if (rec->lazy) {
			out->data_off = rec->data_off;
			out->check = rec->check;
			memcpy(out->hdr16, rec->hdr16, 16);
			memcpy(out->page_hdr, p, IMG_PAGE_HDR_SIZE);
		}
		return 0;
	}
	if (codec != IMG_CODEC_LZ4 && codec != IMG_CODEC_ZSTD)
		return -IMG_ERR_CODEC;
	if (r->pages_size < raw) {
		void *n = realloc(r->pages, raw);
		if (!n)
			return -ENOMEM;
		r->pages = n;
		r->pages_size = raw;
	}
	const uint8_t *src = p + IMG_PAGE_HDR_SIZE;
	size_t srclen = rec->len - IMG_PAGE_HDR_SIZE;
	if (codec == IMG_CODEC_LZ4) {
		int n = LZ4_decompress_safe((const char *)src, (char *)r->pages, (int)srclen, (int)raw);
		if (n < 0 || (size_t)n != raw)
			return -IMG_ERR_CODEC;
	} else {
		if (!r->zstd && !(r->zstd = ZSTD_createDCtx()))
			return -ENOMEM;
		/* One whole frame that fills the block exactly, nothing more. */
		if (ZSTD_findFrameCompressedSize(src, srclen) != srclen)
			return -IMG_ERR_CODEC;
		size_t n = ZSTD_decompressDCtx(r->zstd, r->pages, raw, src, srclen);
		if (ZSTD_isError(n) || n != raw)
			return -IMG_ERR_CODEC;
	}
	out->data = r->pages;
	return 0;
}

const char *img_rec_name(uint32_t type)
{
	static const char *const names[IMG_REC_MAX] = {
		[IMG_REC_HEADER] = "header", [IMG_REC_PLATFORM] = "platform",
		[IMG_REC_PROCESS] = "process", [IMG_REC_MM] = "mm",
		[IMG_REC_FILES] = "files", [IMG_REC_PAGES] = "pages",
		[IMG_REC_THREADS] = "threads", [IMG_REC_COMMIT] = "commit",
		[IMG_REC_DROP] = "drop",
	};
	return (type < IMG_REC_MAX && names[type]) ? names[type] : "unknown";
}

const char *img_strerror(int err)
{
	switch (-err) {
	case IMG_ERR_MAGIC: return "not a roam image (bad magic or preamble)";
	case IMG_ERR_VERSION: return "image written by a newer roam (unsupported format version)";
	case IMG_ERR_CHECKSUM: return "record checksum mismatch (corrupt image)";
	case IMG_ERR_TRUNCATED: return "image truncated (stream ended before the commit record)";
	case IMG_ERR_TYPE: return "unknown record type (corrupt image)";
	case IMG_ERR_TOO_BIG: return "record length out of bounds (corrupt image)";
	case IMG_ERR_DECODE: return "record payload does not decode (corrupt image)";
	case IMG_ERR_ORDER: return "record out of order (corrupt image)";
	case IMG_ERR_CODEC: return "page block does not decompress (corrupt image)";
	case IMG_ERR_ARCH: return "image made for another architecture";
	case IMG_ERR_UNCHECKED: return "a record without its checksum outside an authenticated stream";
	default: return strerror(-err);
	}
}

int img_fd_write(void *ctx, const void *buf, size_t len)
{
	int fd = *(int *)ctx;
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t img_fd_read(void *ctx, void *buf, size_t len)
{
	int fd = *(int *)ctx;
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}
