/*
 * The sample image as a file: the test writes it through a file descriptor
 * and loads it back; with arguments it writes the sample for other tests
 * (tests/integration/image_inspect.sh, the fuzz seeds):
 *
 *   test_image_gen [--raw|--zstd] [--arch NAME] [--records] [--precopy] OUT
 *
 * --raw stores pages uncompressed, --zstd compresses them with zstd, --arch forges the header's architecture,
 * --records writes the framing of tests/fuzz/fuzz_image_reader.c instead,
 * --precopy a pre-copy stream (rounds, a drop, a fresh mapping).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <unistd.h>

#include "image_sample.h"

/* Rewrites a stream as the fuzz target's record list. */
static int to_records(struct membuf *in, struct membuf *out)
{
	struct img_reader r;
	struct img_record rec;
	uint8_t lead, h[4];
	int rc;

	in->pos = 0;
	if ((rc = img_reader_init(&r, mem_read, in)) < 0)
		return rc;
	lead = r.version >= 2;  /* the fuzz target's preamble version: 1 + (lead & 1) */
	rc = mem_write(out, &lead, 1);
	while (rc == 0 && (rc = img_read_record(&r, &rec)) > 0) {
		if (rec.len > 0xffff) {
			rc = -EFBIG;
			break;
		}
		h[0] = (uint8_t)rec.type;
		h[1] = (uint8_t)rec.flags;
		h[2] = (uint8_t)rec.len;
		h[3] = (uint8_t)(rec.len >> 8);
		if ((rc = mem_write(out, h, 4)) == 0)
			rc = mem_write(out, rec.payload, rec.len);
	}
	img_reader_fini(&r);
	return rc;
}

static void test_sample_file(void **state)
{
	char path[] = "/tmp/roam-image-gen-XXXXXX";
	int fd = mkstemp(path);
	struct sample s;
	struct img_load ld;
	struct img_fault f;

	assert_true(fd >= 0);
	unlink(path);
	sample_init(&s, IMG_CODEC_LZ4);
	assert_int_equal(sample_write_steps(&s, img_fd_write, &fd, sample_order), 0);
	sample_fini(&s);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	img_load_init(&ld, IMG_LOAD_TRACK | IMG_LOAD_ZERO);
	assert_int_equal(img_load_stream(&ld, img_fd_read, &fd, &f), 0);
	assert_int_equal(ld.pages, S_NPAGES);
	assert_int_equal(ld.bytes, (uint64_t)lseek(fd, 0, SEEK_END));
	img_load_fini(&ld);
	close(fd);
}

static void test_records_framing(void **state)
{
	struct membuf in = {0}, out = {0};

	assert_int_equal(sample_to_mem(&in, IMG_CODEC_LZ4), 0);
	assert_int_equal(to_records(&in, &out), 0);
	/* 1 lead byte, then 4 bytes of framing per record instead of 24. */
	assert_int_equal(out.len, 1 + in.len - IMG_PREAMBLE_SIZE - 12 * (IMG_RECORD_HDR_SIZE - 4));
	assert_int_equal(out.p[1], IMG_REC_HEADER);
	membuf_free(&in);
	membuf_free(&out);
}

static int write_sample(int argc, char **argv)
{
	struct sample s;
	struct membuf m = {0}, rec = {0};
	int codec = IMG_CODEC_LZ4, records = 0, precopy = 0, fd, rc;
	const char *arch = NULL, *out = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--raw"))
			codec = IMG_CODEC_NONE;
		else if (!strcmp(argv[i], "--zstd"))
			codec = IMG_CODEC_ZSTD;
		else if (!strcmp(argv[i], "--records"))
			records = 1;
		else if (!strcmp(argv[i], "--precopy"))
			precopy = 1;
		else if (!strcmp(argv[i], "--arch") && i + 1 < argc)
			arch = argv[++i];
		else if (argv[i][0] != '-' && !out)
			out = argv[i];
		else
			goto usage;
	}
	if (!out)
		goto usage;
	sample_init(&s, codec);
	if (arch)
		s.hdr.arch = (char *)arch;
	s.hdr.has_precopy = s.hdr.precopy = precopy;
	rc = sample_write_steps(&s, mem_write, &m, precopy ? sample_precopy_order : sample_order);
	sample_fini(&s);
	if (rc == 0 && records)
		rc = to_records(&m, &rec);
	if (rc < 0) {
		fprintf(stderr, "test_image_gen: %s\n", img_strerror(rc));
		return 1;
	}
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror(out);
		return 1;
	}
	rc = records ? img_fd_write(&fd, rec.p, rec.len) : img_fd_write(&fd, m.p, m.len);
	close(fd);
	membuf_free(&m);
	membuf_free(&rec);
	return rc < 0;
usage:
	fprintf(stderr, "usage: test_image_gen [--raw|--zstd] [--arch NAME] [--records] [--precopy] OUT\n");
	return 2;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sample_file),
		cmocka_unit_test(test_records_framing),
	};

	if (argc > 1)
		return write_sample(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
