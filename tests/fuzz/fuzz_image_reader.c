/*
 * libFuzzer target: arbitrary bytes through the image reader, the loader's
 * checks and the protobuf unpacking (src/image/stream.c, load.c).
 *
 * An input that starts with the image magic is fed to the reader as it is.
 * A fuzzer rarely forges an XXH3 check, so any other input is read as a list
 * of records that this target frames itself with correct checks, letting the
 * fuzzer reach the protobuf decoder and every rule of the loader:
 *
 *   input   := 1 byte (keeps the magic away; its low bit picks the format
 *              version of the preamble, 1 or 2: pre-copy streams) record*
 *   record  := u8 type, u8 flags (the record's flags: IMG_RECF_UNCHECKED
 *              leaves the check 0), u16le length, payload[length]
 *
 * tests/unit/test_image_gen.c writes seeds of both kinds.
 *
 * Each stream is also read from a file by a lazy reader (img_reader_lazy_pages,
 * as `roam restore FILE` reads), which leaves raw page data in the file for
 * img_pages_check: it must accept exactly the streams the plain reader
 * accepts; and as a migration's destination reads it (img_reader_authenticated:
 * page records may come without their checks), which must accept every
 * stream the plain reader accepts, and fail only with a known error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "image/image.h"
#include "image/load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct cursor {
	const uint8_t *p;
	size_t len, pos;
	uint8_t *out;
	size_t out_len, out_cap;
};

static ssize_t cur_read(void *ctx, void *buf, size_t len)
{
	struct cursor *c = ctx;
	size_t n = c->len - c->pos;

	/* Short reads on purpose, as a pipe gives them. */
	if (n > len)
		n = len;
	if (n > 3000)
		n = 3000;
	memcpy(buf, c->p + c->pos, n);
	c->pos += n;
	return (ssize_t)n;
}

static int cur_write(void *ctx, const void *buf, size_t len)
{
	struct cursor *c = ctx;

	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len)
			cap *= 2;
		uint8_t *n = realloc(c->out, cap);
		if (!n)
			return -12;
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	return 0;
}

/* Frames the structured input as a real stream: any type, any length field
 * the payload supports, always a correct check (XXH3 over the first 16
 * header bytes and the payload, as one run). */
static int frame(const uint8_t *data, size_t size, struct cursor *c)
{
	uint8_t preamble[IMG_PREAMBLE_SIZE] = "ROAMIMG\0\1\0\0\0\0\0\0\0";
	uint8_t *rec = malloc(IMG_RECORD_HDR_SIZE + 0x10000);
	size_t pos = 1;
	int rc;

	if (!rec)
		return -1;
	preamble[8] = (uint8_t)(1 + (data[0] & 1));
	rc = cur_write(c, preamble, sizeof(preamble));
	while (rc == 0 && pos + 4 <= size) {
		uint32_t type = data[pos], flags = data[pos + 1];
		size_t len = (size_t)data[pos + 2] | (size_t)data[pos + 3] << 8;
		uint64_t check;

		pos += 4;
		if (len > size - pos)
			len = size - pos;
		memset(rec, 0, 16);
		rec[0] = (uint8_t)type;
		rec[4] = (uint8_t)flags;
		rec[8] = (uint8_t)len;
		rec[9] = (uint8_t)(len >> 8);
		memcpy(rec + 16, data + pos, len);
		check = (flags & IMG_RECF_UNCHECKED) ? 0 : XXH3_64bits(rec, 16 + len);
		memmove(rec + IMG_RECORD_HDR_SIZE, rec + 16, len);
		for (int i = 0; i < 8; i++)
			rec[16 + i] = (uint8_t)(check >> (8 * i));
		rc = cur_write(c, rec, IMG_RECORD_HDR_SIZE + len);
		pos += len;
	}
	free(rec);
	return rc;
}

/* The lazy reading of the stream: 0 when it is complete and every block
 * left in the file passes its check, else the first error. */
static int load_lazy(const uint8_t *p, size_t len)
{
	static int fd = -1;
	static uint8_t *data;
	struct img_reader r;
	struct img_load ld;
	struct img_record rec;
	struct img_pages pg;
	int rc;

	if (fd < 0 && (fd = memfd_create("image", MFD_CLOEXEC)) < 0)
		abort();
	if (!data && !(data = malloc((size_t)IMG_MAX_PAGES_PER_RECORD * IMG_PAGE_SIZE)))
		abort();
	if (ftruncate(fd, 0) < 0 || pwrite(fd, p, len, 0) != (ssize_t)len || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	img_load_init(&ld, IMG_LOAD_TRACK | IMG_LOAD_ZERO);
	if ((rc = img_reader_init(&r, img_fd_read, &fd)) == 0) {
		if (img_reader_lazy_pages(&r, fd) < 0)
			abort();
		while ((rc = img_load_next(&ld, &r, &rec, &pg, NULL)) > 0) {
			if (rec.type != IMG_REC_PAGES || !pg.lazy)
				continue;
			size_t raw = (size_t)pg.npages * IMG_PAGE_SIZE;
			if (pread(fd, data, raw, (off_t)pg.data_off) != (ssize_t)raw)
				abort();  /* the reader said it lies in the file */
			if ((rc = img_pages_check(&pg, data)) < 0)
				break;
		}
	}
	img_reader_fini(&r);
	img_load_fini(&ld);
	return rc;
}

/* The stream as a migration's destination reads it: 0 when complete,
 * else the first error. */
static int load_authenticated(const uint8_t *p, size_t len)
{
	struct cursor c = {.p = p, .len = len};
	struct img_reader r;
	struct img_load ld;
	struct img_record rec;
	struct img_pages pg;
	int rc;

	img_load_init(&ld, IMG_LOAD_TRACK | IMG_LOAD_ZERO);
	if ((rc = img_reader_init(&r, cur_read, &c)) == 0) {
		img_reader_authenticated(&r);
		while ((rc = img_load_next(&ld, &r, &rec, &pg, NULL)) > 0)
			;
	}
	img_reader_fini(&r);
	img_load_fini(&ld);
	return rc;
}

static void load(const uint8_t *p, size_t len)
{
	struct cursor c = {.p = p, .len = len};
	struct img_load ld;
	struct img_fault f;
	int rc;

	img_load_init(&ld, IMG_LOAD_TRACK | IMG_LOAD_ZERO);
	rc = img_load_stream(&ld, cur_read, &c, &f);
	/* The contract the CLI relies on: an error always names a rule or a code
	 * img_strerror knows, and success means a complete image. */
	if (rc < 0 && !img_strerror(rc))
		abort();
	if (rc == 0 && (!ld.committed || !ld.header || !ld.mm || !ld.threads || !ld.process ||
			!ld.files || !ld.platform || ld.pages_unique > ld.pages))
		abort();
	/* A complete pre-copy stream has both pictures; a plain one, one. */
	if (rc == 0 && (ld.precopy != (ld.mm_early != NULL) || (ld.process_early && !ld.precopy)))
		abort();
	img_load_fini(&ld);
	int lazy = load_lazy(p, len);
	if ((rc == 0) != (lazy == 0) || (lazy < 0 && !img_strerror(lazy)))
		abort();
	int auth = load_authenticated(p, len);
	if ((rc == 0 && auth != 0) || (auth < 0 && !img_strerror(auth)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cursor c = {0};

	if (size >= 7 && memcmp(data, IMG_MAGIC, 7) == 0) {
		load(data, size);
		return 0;
	}
	if (size == 0 || frame(data, size, &c) < 0) {
		free(c.out);
		return 0;
	}
	load(c.out, c.out_len);
	free(c.out);
	return 0;
}
