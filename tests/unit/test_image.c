/*
 * The image stream (src/image/stream.c): records of every type round-trip
 * over memory and over a pipe, page blocks raw and LZ4, and every way a
 * stream can be damaged gives an error, never a success or a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sys/mman.h>
#include <stdio.h>
#include <unistd.h>
#include <zstd.h>

#include "image_sample.h"

/* Reads every record of a stream and decodes its page blocks, as a restore
 * would; authenticated: as one from a migration's bulk channel. Returns 0
 * after COMMIT, else the first error. */
static int read_all_as(struct membuf *m, uint64_t *records, int authenticated)
{
	struct img_reader r;
	struct img_record rec;
	struct img_pages pg;
	int rc;

	m->pos = 0;
	if ((rc = img_reader_init(&r, mem_read, m)) < 0)
		goto out;
	if (authenticated)
		img_reader_authenticated(&r);
	while ((rc = img_read_record(&r, &rec)) > 0)
		if (rec.type == IMG_REC_PAGES && (rc = img_decode_pages(&r, &rec, &pg)) < 0)
			break;
	if (records)
		*records = r.records;
out:
	img_reader_fini(&r);
	return rc;
}

static int read_all(struct membuf *m, uint64_t *records)
{
	return read_all_as(m, records, 0);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A preamble plus one record header with any fields (check left zero). */
static void raw_header(struct membuf *m, uint32_t type, uint64_t len)
{
	struct img_writer w;
	uint8_t h[IMG_RECORD_HDR_SIZE] = {0};

	assert_int_equal(img_writer_init(&w, mem_write, m, IMG_CODEC_NONE), 0);
	img_writer_fini(&w);
	put32(h, type);
	put64(h + 8, len);
	assert_int_equal(mem_write(m, h, sizeof(h)), 0);
}

/* --- round trips ------------------------------------------------------- */

/* Every record type in turn, COMMIT last (nothing is read after it). */
static uint32_t rt_type(uint32_t i)
{
	if (i == IMG_REC_MAX - 1)
		return IMG_REC_COMMIT;
	return i >= IMG_REC_COMMIT ? i + 1 : i;
}

static void test_roundtrip_every_type(void **state)
{
	static const char *payloads[IMG_REC_MAX] = {
		[IMG_REC_HEADER] = "h", [IMG_REC_PLATFORM] = "platform bytes",
		[IMG_REC_PROCESS] = "", [IMG_REC_MM] = "mm", [IMG_REC_FILES] = "files!",
		[IMG_REC_THREADS] = "registers", [IMG_REC_DROP] = "drop",
	};
	struct membuf m = {0};
	struct img_writer w;
	uint8_t page[4096];

	memset(page, 0xab, sizeof(page));
	assert_int_equal(img_writer_init(&w, mem_write, &m, IMG_CODEC_NONE), 0);
	for (uint32_t i = IMG_REC_HEADER; i < IMG_REC_MAX; i++) {
		uint32_t t = rt_type(i);
		if (t == IMG_REC_PAGES)
			assert_int_equal(img_write_pages(&w, 0x10000, page, 1), 0);
		else if (t == IMG_REC_COMMIT)
			assert_int_equal(img_write_commit(&w), 0);
		else
			assert_int_equal(img_write_record(&w, t, payloads[t], strlen(payloads[t])), 0);
	}
	assert_int_equal(w.records, IMG_REC_MAX - 1);
	assert_int_equal(w.bytes, m.len);
	img_writer_fini(&w);

	/* Read it back whole, then one byte per read call: short reads are normal on pipes. */
	for (size_t chunk = 0; chunk <= 1; chunk++) {
		struct img_reader r;
		struct img_record rec;
		struct img_pages pg;

		m.pos = 0;
		m.chunk = chunk;
		assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
		assert_int_equal(r.version, IMG_FORMAT_VERSION);
		for (uint32_t i = IMG_REC_HEADER; i < IMG_REC_MAX; i++) {
			uint32_t t = rt_type(i);
			assert_int_equal(img_read_record(&r, &rec), 1);
			assert_int_equal(rec.type, t);
			assert_int_equal(rec.flags, 0);
			if (t == IMG_REC_PAGES) {
				assert_int_equal(img_decode_pages(&r, &rec, &pg), 0);
				assert_int_equal(pg.addr, 0x10000);
				assert_int_equal(pg.npages, 1);
				assert_memory_equal(pg.data, page, sizeof(page));
			} else if (t == IMG_REC_COMMIT) {
				assert_int_equal(rec.len, 0);
			} else {
				assert_int_equal(rec.len, strlen(payloads[t]));
				assert_memory_equal(rec.payload, payloads[t], rec.len);
			}
		}
		/* After COMMIT the reader reports a clean end and reads no further. */
		size_t pos = m.pos;
		assert_int_equal(img_read_record(&r, &rec), 0);
		assert_int_equal(m.pos, pos);
		assert_int_equal(r.bytes, m.len);
		img_reader_fini(&r);
	}
	membuf_free(&m);
}

struct pipe_job {
	int fd;
	int rc;
	uint8_t *big;
};

/* The writer side of a pipe: the sample plus a 1 MiB block, more than any
 * pipe buffer, so writes block and return short. */
static void *pipe_writer(void *arg)
{
	struct pipe_job *j = arg;
	struct sample s;
	struct img_writer w;
	static const uint32_t head[] = {IMG_REC_HEADER, IMG_REC_PLATFORM, IMG_REC_PROCESS,
					 IMG_REC_MM, IMG_REC_FILES, IMG_REC_PAGES, 0};

	sample_init(&s, IMG_CODEC_LZ4);
	s.vma[1].end = S_HEAP + (IMG_MAX_PAGES_PER_RECORD + 4) * 4096ull;
	j->rc = img_writer_init(&w, img_fd_write, &j->fd, IMG_CODEC_LZ4);
	for (const uint32_t *t = head; j->rc == 0 && *t; t++)
		j->rc = sample_write_one(&w, &s, *t);
	if (j->rc == 0)
		j->rc = img_write_pages(&w, S_HEAP, j->big, IMG_MAX_PAGES_PER_RECORD);
	if (j->rc == 0)
		j->rc = sample_write_one(&w, &s, IMG_REC_THREADS);
	if (j->rc == 0)
		j->rc = img_write_commit(&w);
	img_writer_fini(&w);
	sample_fini(&s);
	close(j->fd);
	return NULL;
}

static void test_roundtrip_pipe(void **state)
{
	int p[2];
	pthread_t t;
	struct pipe_job j;
	struct img_load ld;
	struct img_fault f;
	size_t big = (size_t)IMG_MAX_PAGES_PER_RECORD * 4096;
	uint32_t x = 1;

	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(pipe(p), 0);
	/* A pipe cannot seek: a writer that tried would fail here. */
	assert_int_equal(lseek(p[1], 0, SEEK_SET), -1);
	assert_int_equal(errno, ESPIPE);
	j.fd = p[1];
	j.big = malloc(big);
	assert_non_null(j.big);
	for (size_t i = 0; i < big; i++) {
		x = x * 1103515245u + 12345u;
		j.big[i] = (uint8_t)(x >> 16);
	}
	assert_int_equal(pthread_create(&t, NULL, pipe_writer, &j), 0);
	img_load_init(&ld, IMG_LOAD_TRACK);
	int rc = img_load_stream(&ld, img_fd_read, &p[0], &f);
	/* Closing the read end first unblocks a writer the reader gave up on. */
	close(p[0]);
	pthread_join(t, NULL);
	assert_int_equal(j.rc, 0);
	assert_int_equal(rc, 0);
	assert_true(ld.committed);
	assert_int_equal(ld.pages, S_NPAGES + IMG_MAX_PAGES_PER_RECORD);
	assert_int_equal(ld.pages_unique, IMG_MAX_PAGES_PER_RECORD + 2);  /* + the shm and stack pages */
	assert_int_equal(ld.threads->n_threads, 2);
	img_load_fini(&ld);
	free(j.big);
}

/* --- page blocks ------------------------------------------------------- */

static uint32_t page_codec(const struct membuf *m, size_t rec_off)
{
	const uint8_t *ph = m->p + rec_off + IMG_RECORD_HDR_SIZE;
	return ph[12] | ph[13] << 8 | ph[14] << 16 | (uint32_t)ph[15] << 24;
}

static void test_lz4_pages(void **state)
{
	uint8_t *data = malloc(4 * 4096);
	struct sample_block comp = {0, 4, 1, 'x'}, rnd = {0, 4, 2, 3};

	assert_non_null(data);
	for (int codec = IMG_CODEC_NONE; codec <= IMG_CODEC_ZSTD; codec++) {
		for (int kind = 0; kind < 2; kind++) {
			struct membuf m = {0};
			struct img_writer w;
			struct img_reader r;
			struct img_record rec;
			struct img_pages pg;
			uint8_t *want = malloc(4 * 4096);

			assert_non_null(want);
			sample_fill(want, kind ? &rnd : &comp);
			memcpy(data, want, 4 * 4096);
			assert_int_equal(img_writer_init(&w, mem_write, &m, codec), 0);
			assert_int_equal(img_write_record(&w, IMG_REC_HEADER, "h", 1), 0);
			size_t off = m.len;
			assert_int_equal(img_write_pages(&w, 0x7f0000001000, data, 4), 0);
			size_t reclen = m.len - off - IMG_RECORD_HDR_SIZE;
			assert_int_equal(img_write_commit(&w), 0);
			img_writer_fini(&w);
			/* The writer must not have touched the caller's pages. */
			assert_memory_equal(data, want, 4 * 4096);

			if (codec != IMG_CODEC_NONE && kind == 0) {
				/* Compressible: stored compressed, much smaller. */
				assert_int_equal(page_codec(&m, off), codec);
				assert_true(reclen < 4096);
			} else {
				/* Raw writer, or incompressible data: stored raw. */
				assert_int_equal(page_codec(&m, off), IMG_CODEC_NONE);
				assert_int_equal(reclen, IMG_PAGE_HDR_SIZE + 4 * 4096);
			}
			assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
			assert_int_equal(img_read_record(&r, &rec), 1);
			assert_int_equal(img_read_record(&r, &rec), 1);
			assert_int_equal(img_decode_pages(&r, &rec, &pg), 0);
			assert_int_equal(pg.addr, 0x7f0000001000);
			assert_int_equal(pg.npages, 4);
			assert_memory_equal(pg.data, want, 4 * 4096);
			assert_int_equal(img_read_record(&r, &rec), 1);
			assert_int_equal(rec.type, IMG_REC_COMMIT);
			img_reader_fini(&r);
			membuf_free(&m);
			free(want);
		}
	}
	free(data);
}

/* The next record is a page block of len bytes at addr, holding data. */
static void expect_pages(struct img_reader *r, uint64_t addr, const void *data, size_t len)
{
	struct img_record rec;
	struct img_pages pg;

	assert_int_equal(img_read_record(r, &rec), 1);
	assert_int_equal(img_decode_pages(r, &rec, &pg), 0);
	assert_int_equal(pg.addr, addr);
	assert_memory_equal(pg.data, data, len);
}

static void test_later_page_record(void **state)
{
	struct membuf m = {0};
	struct img_writer w;
	struct img_reader r;
	struct img_record rec;
	uint8_t a[4096], b[4096];

	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	assert_int_equal(img_writer_init(&w, mem_write, &m, IMG_CODEC_LZ4), 0);
	assert_int_equal(img_write_record(&w, IMG_REC_HEADER, "h", 1), 0);
	assert_int_equal(img_write_pages(&w, 0x5000, a, 1), 0);
	assert_int_equal(img_write_pages(&w, 0x5000, b, 1), 0);
	assert_int_equal(img_write_commit(&w), 0);
	img_writer_fini(&w);

	/* Both copies arrive, in the order written, so the later one can win. */
	assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
	assert_int_equal(img_read_record(&r, &rec), 1);
	expect_pages(&r, 0x5000, a, sizeof(a));
	expect_pages(&r, 0x5000, b, sizeof(b));
	img_reader_fini(&r);
	membuf_free(&m);
}

/* Page records without their checks (img_writer_unchecked, a migration's
 * stream): only a reader told the stream came over an authenticating
 * channel takes them, and only as page records whose check field is 0;
 * every other record keeps its check, and it is still checked. */
static void test_unchecked_pages(void **state)
{
	struct membuf m = {0};
	struct img_writer w;
	struct img_reader r;
	struct img_record rec;
	uint8_t a[2 * 4096];
	size_t hdr_at = IMG_PREAMBLE_SIZE, pages_at;

	(void)state;
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(img_writer_init(&w, mem_write, &m, IMG_CODEC_NONE), 0);
	img_writer_unchecked(&w);
	assert_int_equal(img_write_record(&w, IMG_REC_HEADER, "h", 1), 0);
	pages_at = m.len;
	assert_int_equal(img_write_pages(&w, 0x5000, a, 2), 0);
	assert_int_equal(img_write_commit(&w), 0);
	img_writer_fini(&w);

	/* The page record is flagged, its check 0; the header record is not. */
	assert_int_equal(m.p[pages_at + 4], IMG_RECF_UNCHECKED);
	for (int i = 16; i < 24; i++)
		assert_int_equal(m.p[pages_at + i], 0);
	assert_int_equal(m.p[hdr_at + 4], 0);

	/* A reader not told (an image file, say) refuses it, by name. */
	assert_int_equal(read_all(&m, NULL), -IMG_ERR_UNCHECKED);
	assert_non_null(strstr(img_strerror(-IMG_ERR_UNCHECKED), "authenticated"));

	/* Told: the pages come as written. */
	m.pos = 0;
	assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
	img_reader_authenticated(&r);
	assert_int_equal(img_read_record(&r, &rec), 1);
	expect_pages(&r, 0x5000, a, sizeof(a));
	assert_int_equal(img_read_record(&r, &rec), 1);
	assert_int_equal(rec.type, IMG_REC_COMMIT);
	assert_int_equal(img_read_record(&r, &rec), 0);
	img_reader_fini(&r);

	/* Told, yet refused: a check left in the flagged record, the flag on a
	 * record other than pages; and the header record's check still holds. */
	m.p[pages_at + 20] ^= 1;
	assert_int_equal(read_all_as(&m, NULL, 1), -IMG_ERR_UNCHECKED);
	m.p[pages_at + 20] ^= 1;
	m.p[hdr_at + 4] |= IMG_RECF_UNCHECKED;
	assert_int_equal(read_all_as(&m, NULL, 1), -IMG_ERR_UNCHECKED);
	m.p[hdr_at + 4] &= (uint8_t)~IMG_RECF_UNCHECKED;
	m.p[hdr_at + IMG_RECORD_HDR_SIZE] ^= 0x20;   /* the header's payload */
	assert_int_equal(read_all_as(&m, NULL, 1), -IMG_ERR_CHECKSUM);
	m.p[hdr_at + IMG_RECORD_HDR_SIZE] ^= 0x20;
	assert_int_equal(read_all_as(&m, NULL, 1), 0);
	membuf_free(&m);
}

/* The same over a file with lazy page records (img_reader_lazy_pages): each
 * raw block comes with its page header and where its data lies, and is then
 * read and checked as a restore's filling thread does. Returns 0 after
 * COMMIT, else the first error; *lazy counts the blocks left in the file. */
static int read_all_lazy(const struct membuf *m, int *lazy)
{
	struct img_reader r;
	struct img_record rec;
	struct img_pages pg;
	uint8_t *data = malloc((size_t)IMG_MAX_PAGES_PER_RECORD * 4096);
	int fd = memfd_create("image", MFD_CLOEXEC), rc;

	assert_non_null(data);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, m->p, m->len), (ssize_t)m->len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	*lazy = 0;
	if ((rc = img_reader_init(&r, img_fd_read, &fd)) < 0)
		goto out;
	assert_int_equal(img_reader_lazy_pages(&r, fd), 0);
	while ((rc = img_read_record(&r, &rec)) > 0) {
		if (rec.type != IMG_REC_PAGES)
			continue;
		if ((rc = img_decode_pages(&r, &rec, &pg)) < 0)
			break;
		if (!pg.lazy)
			continue;
		++*lazy;
		assert_null(pg.data);
		size_t len = (size_t)pg.npages * 4096;
		if (pread(fd, data, len, (off_t)pg.data_off) != (ssize_t)len) {
			rc = -IMG_ERR_TRUNCATED;
			break;
		}
		if ((rc = img_pages_check(&pg, data)) < 0)
			break;
	}
out:
	img_reader_fini(&r);
	close(fd);
	free(data);
	return rc;
}

static void test_lazy_pages(void **state)
{
	for (int codec = IMG_CODEC_NONE; codec <= IMG_CODEC_LZ4; codec++) {
		struct membuf m = {0};
		int lazy;

		assert_int_equal(sample_to_mem(&m, codec), 0);
		assert_int_equal(read_all_lazy(&m, &lazy), 0);
		/* Raw blocks stay in the file; compressed ones are read whole. */
		if (codec == IMG_CODEC_NONE)
			assert_true(lazy > 0);
		/* Every damage is found, by the reader or by the check. */
		for (size_t i = 0; i < m.len; i++) {
			m.p[i] ^= 0x10;
			if (read_all_lazy(&m, &lazy) == 0)
				fail_msg("codec %d: flipping byte %zu went unnoticed", codec, i);
			m.p[i] ^= 0x10;
		}
		size_t len = m.len;
		for (m.len = 0; m.len < len; m.len += 97)
			if (read_all_lazy(&m, &lazy) == 0)
				fail_msg("codec %d: truncated at %zu went unnoticed", codec, m.len);
		m.len = len;
		membuf_free(&m);
	}
	/* Not a regular file: the reader stays a stream reader. */
	int p[2];
	struct img_reader r = {0};
	assert_int_equal(pipe(p), 0);
	assert_int_equal(img_reader_lazy_pages(&r, p[0]), -1);
	assert_int_equal(r.lazy, 0);
	close(p[0]);
	close(p[1]);
}

/* --- damaged streams --------------------------------------------------- */

static void test_bad_magic(void **state)
{
	struct membuf m = {0};

	assert_int_equal(sample_to_mem(&m, IMG_CODEC_LZ4), 0);
	assert_int_equal(read_all(&m, NULL), 0);
	m.p[0] = 'X';
	assert_int_equal(read_all(&m, NULL), -IMG_ERR_MAGIC);
	m.p[0] = 'R';
	m.p[7] = 'x';   /* the magic's NUL */
	assert_int_equal(read_all(&m, NULL), -IMG_ERR_MAGIC);
	m.p[7] = 0;
	m.p[13] = 1;    /* reserved word */
	assert_int_equal(read_all(&m, NULL), -IMG_ERR_MAGIC);
	m.p[13] = 0;
	assert_int_equal(read_all(&m, NULL), 0);
	/* An empty stream, and something else entirely. */
	size_t len = m.len;
	m.len = 0;
	assert_int_equal(read_all(&m, NULL), -IMG_ERR_MAGIC);
	memcpy(m.p, "\x7f" "ELF\2\1\1\0\0\0\0\0\0\0\0\0", 16);
	m.len = len;
	assert_int_equal(read_all(&m, NULL), -IMG_ERR_MAGIC);
	membuf_free(&m);
}

static void test_newer_version(void **state)
{
	struct membuf m = {0};

	assert_int_equal(sample_to_mem(&m, IMG_CODEC_LZ4), 0);
	m.p[8] = IMG_FORMAT_VERSION + 1;
	assert_int_equal(read_all(&m, NULL), -IMG_ERR_VERSION);
	m.p[8] = 0;
	m.p[11] = 0x80;
	assert_int_equal(read_all(&m, NULL), -IMG_ERR_VERSION);
	m.p[11] = 0;
	assert_int_equal(read_all(&m, NULL), -IMG_ERR_VERSION);   /* version 0 */
	membuf_free(&m);
}

static void test_truncated_everywhere(void **state)
{
	for (int codec = IMG_CODEC_NONE; codec <= IMG_CODEC_ZSTD; codec++) {
	struct membuf m = {0};
	size_t full;

	assert_int_equal(sample_to_mem(&m, codec), 0);
	full = m.len;
	for (size_t len = 0; len < full; len++) {
		struct img_load ld;
		struct img_fault f;
		int want = len < IMG_PREAMBLE_SIZE ? -IMG_ERR_MAGIC : -IMG_ERR_TRUNCATED;

		m.len = len;
		assert_int_equal(read_all(&m, NULL), want);
		m.pos = 0;
		img_load_init(&ld, IMG_LOAD_TRACK | IMG_LOAD_ZERO);
		assert_int_equal(img_load_stream(&ld, mem_read, &m, &f), want);
		/* The fault names the record the stream ended in, never a stale page address. */
		assert_false(f.has_addr);
		if (len < IMG_PREAMBLE_SIZE) {
			assert_int_equal(f.record, 0);
		} else {
			assert_non_null(f.what);
			assert_true(f.record >= 1 && f.record <= 12);
			assert_true(f.offset >= IMG_PREAMBLE_SIZE && f.offset <= len);
		}
		img_load_fini(&ld);
	}
	m.len = full;
	assert_int_equal(read_all(&m, NULL), 0);
	membuf_free(&m);
	}
}

static void test_bitflip_everywhere(void **state)
{
	for (int codec = IMG_CODEC_LZ4; codec <= IMG_CODEC_ZSTD; codec++) {
	struct membuf m = {0};

	assert_int_equal(sample_to_mem(&m, codec), 0);
	for (size_t i = 0; i < m.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int rc;

			m.p[i] ^= (uint8_t)(1u << bit);
			rc = read_all(&m, NULL);
			if (rc == 0)
				fail_msg("flipping bit %d of byte %zu went unnoticed", bit, i);
			assert_true(rc < 0);
			m.p[i] ^= (uint8_t)(1u << bit);
		}
	}
	assert_int_equal(read_all(&m, NULL), 0);
	membuf_free(&m);
	}
}

static void test_oversize_lengths(void **state)
{
	static const struct {
		uint32_t type;
		uint64_t len;
	} cases[] = {
		{IMG_REC_HEADER, IMG_MAX_META + 1ull},
		{IMG_REC_THREADS, UINT64_MAX},
		{IMG_REC_PAGES, IMG_PAGE_HDR_SIZE + IMG_MAX_PAGES_PER_RECORD * 4096ull + 1},
		{IMG_REC_COMMIT, 1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct membuf m = {0};
		struct img_reader r;
		struct img_record rec;

		raw_header(&m, cases[i].type, cases[i].len);
		assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
		assert_int_equal(img_read_record(&r, &rec), -IMG_ERR_TOO_BIG);
		assert_int_equal(rec.type, cases[i].type);
		img_reader_fini(&r);
		membuf_free(&m);
	}
	/* The largest legal metadata length is not refused for its size: the
	 * stream just ends inside it. */
	struct membuf m = {0};
	struct img_reader r;
	struct img_record rec;
	raw_header(&m, IMG_REC_MM, IMG_MAX_META);
	assert_int_equal(mem_write(&m, "0123456789", 10), 0);
	assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
	assert_int_equal(img_read_record(&r, &rec), -IMG_ERR_TRUNCATED);
	/* ... and the 10 bytes sent did not buy 64 MiB of buffer. */
	assert_true(r.buf_size <= (2u << 20));
	img_reader_fini(&r);
	membuf_free(&m);
}

/* After an error the framing is lost: the reader never resumes mid-record. */
static void test_errors_are_sticky(void **state)
{
	struct membuf m = {0};
	struct img_reader r;
	struct img_record rec;

	assert_int_equal(sample_to_mem(&m, IMG_CODEC_LZ4), 0);
	m.p[IMG_PREAMBLE_SIZE + IMG_RECORD_HDR_SIZE + 2] ^= 1;   /* the header's payload */
	assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
	assert_int_equal(img_read_record(&r, &rec), -IMG_ERR_CHECKSUM);
	size_t pos = m.pos;
	for (int i = 0; i < 3; i++)
		assert_int_equal(img_read_record(&r, &rec), -IMG_ERR_CHECKSUM);
	assert_int_equal(m.pos, pos);
	img_reader_fini(&r);
	membuf_free(&m);
}

static void test_unknown_types(void **state)
{
	static const uint32_t types[] = {0, IMG_REC_MAX, 99, UINT32_MAX};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct membuf m = {0};
		struct img_writer w;
		struct img_reader r;
		struct img_record rec;

		/* A well-formed record (right check) of a type nobody defined. */
		assert_int_equal(img_writer_init(&w, mem_write, &m, IMG_CODEC_NONE), 0);
		assert_int_equal(img_write_record(&w, IMG_REC_HEADER, "h", 1), 0);
		img_writer_fini(&w);
		assert_int_equal(raw_record(&m, types[i], 0, "xyz", 3), 0);
		assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
		assert_int_equal(img_read_record(&r, &rec), 1);
		assert_int_equal(img_read_record(&r, &rec), -IMG_ERR_TYPE);
		img_reader_fini(&r);
		membuf_free(&m);
	}
}

static void test_first_record_not_header(void **state)
{
	for (uint32_t t = IMG_REC_PLATFORM; t < IMG_REC_MAX; t++) {
		struct membuf m = {0};
		struct img_writer w;
		struct img_reader r;
		struct img_record rec;

		assert_int_equal(img_writer_init(&w, mem_write, &m, IMG_CODEC_NONE), 0);
		assert_int_equal(img_write_record(&w, t, NULL, 0), 0);
		img_writer_fini(&w);
		assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
		assert_int_equal(img_read_record(&r, &rec), -IMG_ERR_ORDER);
		img_reader_fini(&r);
		membuf_free(&m);
	}
}

/* A page record with a hand-made 16-byte page header and body. */
static int bad_pages(uint64_t addr, uint32_t npages, uint32_t codec, size_t body)
{
	struct membuf m = {0};
	struct img_writer w;
	struct img_reader r;
	struct img_record rec;
	struct img_pages pg;
	uint8_t *p = calloc(1, IMG_PAGE_HDR_SIZE + body + 1);
	int rc;

	assert_non_null(p);
	put64(p, addr);
	put32(p + 8, npages);
	put32(p + 12, codec);
	memset(p + IMG_PAGE_HDR_SIZE, 0x33, body);
	assert_int_equal(img_writer_init(&w, mem_write, &m, IMG_CODEC_NONE), 0);
	assert_int_equal(img_write_record(&w, IMG_REC_HEADER, "h", 1), 0);
	assert_int_equal(img_write_record(&w, IMG_REC_PAGES, p, IMG_PAGE_HDR_SIZE + body), 0);
	img_writer_fini(&w);
	assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
	assert_int_equal(img_read_record(&r, &rec), 1);
	assert_int_equal(img_read_record(&r, &rec), 1);
	rc = img_decode_pages(&r, &rec, &pg);
	img_reader_fini(&r);
	membuf_free(&m);
	free(p);
	return rc;
}

/* A zstd page record whose frame holds frame_pages pages, claimed as
 * npages, the frame repeated frames times. */
static int zstd_pages(uint32_t frame_pages, uint32_t npages, int frames)
{
	size_t raw = (size_t)frame_pages * 4096, bound = ZSTD_compressBound(raw);
	uint8_t *src = calloc(1, raw), *p = malloc(IMG_PAGE_HDR_SIZE + 2 * bound);
	struct membuf m = {0};
	struct img_writer w;
	struct img_reader r;
	struct img_record rec;
	struct img_pages pg;
	int rc;

	assert_non_null(src);
	assert_non_null(p);
	size_t clen = ZSTD_compress(p + IMG_PAGE_HDR_SIZE, bound, src, raw, 1);
	assert_false(ZSTD_isError(clen));
	if (frames == 2) {
		memcpy(p + IMG_PAGE_HDR_SIZE + clen, p + IMG_PAGE_HDR_SIZE, clen);
		clen *= 2;
	}
	put64(p, 0x1000);
	put32(p + 8, npages);
	put32(p + 12, IMG_CODEC_ZSTD);
	assert_int_equal(img_writer_init(&w, mem_write, &m, IMG_CODEC_NONE), 0);
	assert_int_equal(img_write_record(&w, IMG_REC_HEADER, "h", 1), 0);
	assert_int_equal(img_write_record(&w, IMG_REC_PAGES, p, IMG_PAGE_HDR_SIZE + clen), 0);
	img_writer_fini(&w);
	assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
	assert_int_equal(img_read_record(&r, &rec), 1);
	assert_int_equal(img_read_record(&r, &rec), 1);
	rc = img_decode_pages(&r, &rec, &pg);
	if (rc == 0)
		assert_memory_equal(pg.data, src, raw);
	img_reader_fini(&r);
	membuf_free(&m);
	free(src);
	free(p);
	return rc;
}

static void test_bad_page_blocks(void **state)
{
	assert_int_equal(bad_pages(0x1000, 1, IMG_CODEC_NONE, 4096), 0);   /* the control */
	assert_true(bad_pages(0x1000, 0, IMG_CODEC_NONE, 0) < 0);
	assert_true(bad_pages(0x1000, IMG_MAX_PAGES_PER_RECORD + 1, IMG_CODEC_NONE, 4096) < 0);
	assert_true(bad_pages(0x1000, UINT32_MAX, IMG_CODEC_LZ4, 64) < 0);
	assert_true(bad_pages(0x1001, 1, IMG_CODEC_NONE, 4096) < 0);
	assert_true(bad_pages(0x1800, 1, IMG_CODEC_NONE, 4096) < 0);
	assert_true(bad_pages(0x1000, 1, IMG_CODEC_NONE, 4095) < 0);
	assert_true(bad_pages(0x1000, 2, IMG_CODEC_NONE, 4096) < 0);
	assert_int_equal(bad_pages(0x1000, 1, 7, 4096), -IMG_ERR_CODEC);
	assert_int_equal(bad_pages(0x1000, 1, IMG_CODEC_LZ4, 100), -IMG_ERR_CODEC);
	assert_int_equal(bad_pages(0x1000, 1, IMG_CODEC_LZ4, 0), -IMG_ERR_CODEC);
	assert_int_equal(bad_pages(0x1000, 1, IMG_CODEC_ZSTD, 100), -IMG_ERR_CODEC);
	assert_int_equal(bad_pages(0x1000, 1, IMG_CODEC_ZSTD, 0), -IMG_ERR_CODEC);
	assert_int_equal(zstd_pages(1, 1, 1), 0);                   /* the control */
	assert_int_equal(zstd_pages(1, 2, 1), -IMG_ERR_CODEC);      /* a frame too short for the block */
	assert_int_equal(zstd_pages(2, 1, 1), -IMG_ERR_CODEC);      /* a frame too long */
	assert_int_equal(zstd_pages(1, 1, 2), -IMG_ERR_CODEC);      /* two frames */
	/* A payload shorter than its page header. */
	struct membuf m = {0};
	struct img_writer w;
	struct img_reader r;
	struct img_record rec;
	struct img_pages pg;
	assert_int_equal(img_writer_init(&w, mem_write, &m, IMG_CODEC_NONE), 0);
	assert_int_equal(img_write_record(&w, IMG_REC_HEADER, "h", 1), 0);
	assert_int_equal(img_write_record(&w, IMG_REC_PAGES, "short", 5), 0);
	img_writer_fini(&w);
	assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
	assert_int_equal(img_read_record(&r, &rec), 1);
	assert_int_equal(img_read_record(&r, &rec), 1);
	assert_true(img_decode_pages(&r, &rec, &pg) < 0);
	/* And a record of another type is no page block. */
	rec.type = IMG_REC_HEADER;
	assert_true(img_decode_pages(&r, &rec, &pg) < 0);
	img_reader_fini(&r);
	membuf_free(&m);
}

/* --- the writer's own errors ------------------------------------------- */

static void test_writer_errors(void **state)
{
	struct membuf m = {0};
	struct img_writer w;
	uint8_t page[4096] = {0};
	size_t full;

	assert_int_equal(img_writer_init(&w, mem_write, &m, IMG_CODEC_LZ4), 0);
	assert_int_equal(img_write_pages(&w, 0x1000, page, 0), -EINVAL);
	assert_int_equal(img_write_pages(&w, 0x1000, page, IMG_MAX_PAGES_PER_RECORD + 1), -EINVAL);
	assert_int_equal(img_write_pages(&w, 0x1800, page, 1), -EINVAL);
	/* What the reader would refuse is never written. */
	size_t before = m.len;
	assert_int_equal(img_write_record(&w, 0, "x", 1), -EINVAL);
	assert_int_equal(img_write_record(&w, IMG_REC_MAX, "x", 1), -EINVAL);
	assert_int_equal(img_write_record(&w, IMG_REC_COMMIT, "x", 1), -IMG_ERR_TOO_BIG);
	assert_int_equal(img_write_record(&w, IMG_REC_PAGES, page, IMG_PAGE_HDR_SIZE + (IMG_MAX_PAGES_PER_RECORD + 1) * 4096ull),
			 -IMG_ERR_TOO_BIG);
	assert_int_equal(img_write_record(&w, IMG_REC_MM, page, IMG_MAX_META + 1ull), -IMG_ERR_TOO_BIG);
	assert_int_equal(m.len, before);
	img_writer_fini(&w);
	membuf_free(&m);

	/* A failing sink (a full disk) fails the write at every point. */
	assert_int_equal(sample_to_mem(&m, IMG_CODEC_LZ4), 0);
	full = m.len;
	membuf_free(&m);
	for (size_t limit = 1; limit < full; limit += 97) {
		m.limit = limit;
		assert_int_equal(sample_to_mem(&m, IMG_CODEC_LZ4), -ENOSPC);
		membuf_free(&m);
	}
}

static void test_names(void **state)
{
	for (int e = IMG_ERR_MAGIC; e <= IMG_ERR_LAST; e++)
		assert_true(strlen(img_strerror(-e)) > 10);
	assert_string_equal(img_rec_name(IMG_REC_PAGES), "pages");
	assert_string_equal(img_rec_name(IMG_REC_COMMIT), "commit");
	assert_string_equal(img_rec_name(0), "unknown");
	assert_string_equal(img_rec_name(UINT32_MAX), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_type),
		cmocka_unit_test(test_roundtrip_pipe),
		cmocka_unit_test(test_lz4_pages),
		cmocka_unit_test(test_later_page_record),
		cmocka_unit_test(test_unchecked_pages),
		cmocka_unit_test(test_lazy_pages),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_newer_version),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_bitflip_everywhere),
		cmocka_unit_test(test_oversize_lengths),
		cmocka_unit_test(test_errors_are_sticky),
		cmocka_unit_test(test_unknown_types),
		cmocka_unit_test(test_first_record_not_header),
		cmocka_unit_test(test_bad_page_blocks),
		cmocka_unit_test(test_writer_errors),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
