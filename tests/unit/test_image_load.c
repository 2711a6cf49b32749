/*
 * Loading an image (src/image/load.c): the sample loads with the right
 * totals; each order rule, header check and metadata check refuses an image
 * that breaks it, naming the record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>

#include "image_sample.h"

#define H IMG_REC_HEADER
#define PL IMG_REC_PLATFORM
#define PR IMG_REC_PROCESS
#define MM IMG_REC_MM
#define FI IMG_REC_FILES
#define PG IMG_REC_PAGES
#define TH IMG_REC_THREADS
#define CO IMG_REC_COMMIT
#define DR IMG_REC_DROP

/* Writes the sample's records in the given order and loads them. */
static int load_steps(struct sample *s, const uint32_t *steps, struct img_fault *f)
{
	struct membuf m = {0};
	struct img_load ld;
	int rc;

	assert_int_equal(sample_write_steps(s, mem_write, &m, steps), 0);
	img_load_init(&ld, IMG_LOAD_TRACK | IMG_LOAD_ZERO);
	rc = img_load_stream(&ld, mem_read, &m, f);
	img_load_fini(&ld);
	membuf_free(&m);
	return rc;
}

static int load_sample(struct sample *s, struct img_fault *f)
{
	return load_steps(s, sample_order, f);
}

static void test_sample_loads(void **state)
{
	struct membuf m = {0};
	struct img_load ld;
	struct img_fault f;

	for (int codec = IMG_CODEC_NONE; codec <= IMG_CODEC_ZSTD; codec++) {
		assert_int_equal(sample_to_mem(&m, codec), 0);
		img_load_init(&ld, IMG_LOAD_TRACK | IMG_LOAD_ZERO);
		assert_int_equal(img_load_stream(&ld, mem_read, &m, &f), 0);
		assert_true(ld.committed);
		assert_int_equal(ld.records, 12);
		assert_int_equal(ld.bytes, m.len);
		assert_int_equal(ld.rec_count[IMG_REC_PAGES], 5);
		assert_int_equal(ld.pages, S_NPAGES);
		assert_int_equal(ld.pages_unique, S_UNIQUE);
		assert_int_equal(ld.pages_zero, S_ZERO);
		if (codec != IMG_CODEC_NONE)
			assert_int_equal(ld.pages_compressed, 5);   /* all but the 2 random pages */
		else
			assert_int_equal(ld.pages_compressed, 0);
		assert_string_equal(ld.header->arch, "x86_64");
		assert_string_equal(ld.header->hostname, "testhost");
		assert_int_equal(ld.process->pid, 4242);
		assert_string_equal(ld.process->cwd, "/tmp/work");
		assert_int_equal(ld.mm->n_vmas, 5);
		assert_int_equal(ld.files->n_fds, 15);
		assert_int_equal(ld.threads->n_threads, 2);
		assert_int_equal(ld.platform->vdso_hash.len, 16);
		/* Per mapping: exe 0, heap 5 copies of 4 pages, shm 1 zero page, stack 1, vdso 0. */
		static const uint64_t pages[5] = {0, 5, 1, 1, 0}, uniq[5] = {0, 4, 1, 1, 0}, zero[5] = {0, 0, 1, 0, 0};
		for (int i = 0; i < 5; i++) {
			assert_int_equal(ld.vma_stat[i].pages, pages[i]);
			assert_int_equal(ld.vma_stat[i].unique, uniq[i]);
			assert_int_equal(ld.vma_stat[i].zero, zero[i]);
		}
		img_load_fini(&ld);
		membuf_free(&m);
	}
}

/* The record-by-record interface hands page blocks to the caller. */
static void test_incremental_pages(void **state)
{
	struct membuf m = {0};
	struct img_load ld;
	struct img_reader r;
	struct img_record rec;
	struct img_pages pg;
	struct img_fault f;
	int rc, blocks = 0;

	assert_int_equal(sample_to_mem(&m, IMG_CODEC_LZ4), 0);
	img_load_init(&ld, 0);
	assert_int_equal(img_reader_init(&r, mem_read, &m), 0);
	while ((rc = img_load_next(&ld, &r, &rec, &pg, &f)) > 0) {
		if (rec.type != IMG_REC_PAGES)
			continue;
		const struct sample_block *b = &sample_blocks[blocks++];
		uint8_t want[2 * 4096];
		sample_fill(want, b);
		assert_int_equal(pg.addr, b->addr);
		assert_int_equal(pg.npages, b->npages);
		assert_memory_equal(pg.data, want, b->npages * 4096);
		/* Random bytes do not compress, so the writer stored them raw. */
		assert_int_equal(pg.codec, b->fill == 2 ? IMG_CODEC_NONE : IMG_CODEC_LZ4);
	}
	assert_int_equal(rc, 0);
	assert_true(ld.committed);
	assert_int_equal(blocks, 5);
	assert_int_equal(ld.pages, S_NPAGES);
	assert_int_equal(ld.pages_unique, 0);   /* not tracked without IMG_LOAD_TRACK */
	assert_int_equal(ld.pages_zero, 0);
	/* Past the end it stays at the end. */
	assert_int_equal(img_load_next(&ld, &r, &rec, &pg, &f), 0);
	img_reader_fini(&r);
	img_load_fini(&ld);
	membuf_free(&m);
}

static void test_other_orders_accepted(void **state)
{
	static const uint32_t late_meta[] = {H, MM, PG, PR, FI, PL, TH, CO, 0};
	static const uint32_t no_pages[] = {H, FI, MM, PR, PL, TH, CO, 0};
	struct sample s;
	struct img_fault f;

	sample_init(&s, IMG_CODEC_LZ4);
	assert_int_equal(load_steps(&s, late_meta, &f), 0);
	assert_int_equal(load_steps(&s, no_pages, &f), 0);
	sample_fini(&s);
}

static void test_order_rules(void **state)
{
	static const struct {
		uint32_t steps[12];
		int err;
		uint64_t record;    /* 1-based index of the record blamed */
		uint32_t type;
	} cases[] = {
		{{PL, H, CO}, -IMG_ERR_ORDER, 1, PL},
		{{H, PL, PR, PG, MM}, -IMG_ERR_ORDER, 4, PG},                      /* pages before mm */
		{{H, PL, PR, MM, FI, PG, TH, PG}, -IMG_ERR_ORDER, 12, PG},          /* pages after threads */
		{{H, PL, PR, MM, MM}, -IMG_ERR_ORDER, 5, MM},
		{{H, H}, -IMG_ERR_ORDER, 2, H},
		{{H, PL, PR, MM, TH}, -IMG_ERR_ORDER, 5, TH},                       /* files missing */
		{{H, PL, PR, MM, FI, TH, TH}, -IMG_ERR_ORDER, 7, TH},
		{{H, PL, PR, MM, FI, TH, FI}, -IMG_ERR_ORDER, 7, FI},
		{{H, PL, PR, MM, FI, CO}, -IMG_ERR_ORDER, 6, CO},                   /* commit before threads */
		{{H, PL, PR, MM, FI, TH}, -IMG_ERR_TRUNCATED, 7, 0},                /* no commit */
		{{H, PL, PR, MM, FI, TH, 42}, -IMG_ERR_TYPE, 7, 42},
	};
	struct sample s;

	sample_init(&s, IMG_CODEC_NONE);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct img_fault f;
		int rc = load_steps(&s, cases[i].steps, &f);

		if (rc != cases[i].err || f.record != cases[i].record || f.type != cases[i].type)
			fail_msg("case %zu: rc %d record %" PRIu64 " type %u (%s)", i, rc, f.record, f.type,
				 f.what ? f.what : "-");
	}
	sample_fini(&s);
}

static void test_precopy(void **state)
{
	static const struct {
		uint32_t steps[14];
		int precopy, err;
		uint64_t record;
		uint32_t type;
	} cases[] = {
		{{H, PL, PR, MM, FI, DR}, 0, -IMG_ERR_ORDER, 6, DR},               /* drop in a plain image */
		{{H, PL, PR, SAMPLE_MM_FINAL}, 0, -IMG_ERR_DECODE, 4, MM},         /* fresh in a plain image */
		{{H, PL, PR, SAMPLE_MM_FINAL}, 1, -IMG_ERR_DECODE, 4, MM},         /* fresh in the early MM */
		{{H, PL, FI}, 1, -IMG_ERR_ORDER, 3, FI},                           /* files before the early mm */
		{{H, PL, PR, PG}, 1, -IMG_ERR_ORDER, 4, PG},                       /* rounds before the early mm */
		{{H, PL, PR, MM, PR, PG}, 1, -IMG_ERR_ORDER, 6, PG},               /* pages among the final records */
		{{H, PL, PR, MM, PG, TH}, 1, -IMG_ERR_ORDER, 10, TH},              /* threads before the final records */
		{{H, PL, PR, MM, PR, SAMPLE_MM_BADKEEP}, 1, -IMG_ERR_DECODE, 6, MM}, /* changed but not fresh */
		{{H, PL, PR, MM, SAMPLE_DROP_SHM}, 1, -IMG_ERR_ORDER, 5, DR},      /* drop in a shared mapping */
		{{H, PL, PR, MM, PR, MM, FI, MM}, 1, -IMG_ERR_ORDER, 8, MM},       /* a third mm */
		{{H, PL, PR, MM, PR, MM, FI, PL}, 1, -IMG_ERR_ORDER, 8, PL},       /* platform twice */
		{{H, PL, PR, MM, PR, MM, FI, TH, CO}, 1, 0, 0, 0},                 /* no round at all */
	};
	struct sample s;
	struct membuf m = {0};
	struct img_load ld;
	struct img_fault f;

	sample_init(&s, IMG_CODEC_NONE);
	s.hdr.has_precopy = s.hdr.precopy = 1;
	assert_int_equal(sample_write_steps(&s, mem_write, &m, sample_precopy_order), 0);
	img_load_init(&ld, IMG_LOAD_TRACK | IMG_LOAD_ZERO);
	assert_int_equal(img_load_stream(&ld, mem_read, &m, &f), 0);
	assert_true(ld.precopy);
	assert_non_null(ld.mm_early);
	assert_non_null(ld.process_early);
	assert_true(ld.mm->vmas[1]->fresh);
	assert_false(ld.mm_early->vmas[1]->fresh);
	assert_int_equal(ld.pages_dropped, 4);
	assert_int_equal(ld.pages, S_NPAGES + 1);
	img_load_fini(&ld);
	membuf_free(&m);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s.hdr.has_precopy = s.hdr.precopy = cases[i].precopy;
		int rc = load_steps(&s, cases[i].steps, &f);
		if (rc != cases[i].err || (rc && (f.record != cases[i].record || f.type != cases[i].type)))
			fail_msg("case %zu: rc %d record %" PRIu64 " type %u (%s)", i, rc, f.record, f.type,
				 f.what ? f.what : "-");
	}
	/* A pre-copy header needs a format version that knows pre-copy. */
	s.hdr.has_precopy = s.hdr.precopy = 1;
	s.hdr.version = 1;
	assert_int_equal(load_steps(&s, sample_precopy_order, &f), -IMG_ERR_VERSION);
	sample_fini(&s);
}

static void test_header_checks(void **state)
{
	struct sample s;
	struct img_fault f;

	sample_init(&s, IMG_CODEC_LZ4);
	s.hdr.arch = (char *)"aarch64";
	assert_int_equal(load_sample(&s, &f), -IMG_ERR_ARCH);
	assert_int_equal(f.record, 1);
	assert_int_equal(f.type, IMG_REC_HEADER);
	s.hdr.arch = (char *)"x86_64";
	s.hdr.page_size = 65536;
	assert_int_equal(load_sample(&s, &f), -IMG_ERR_ARCH);
	s.hdr.page_size = 4096;
	s.hdr.version = IMG_FORMAT_VERSION + 1;
	assert_int_equal(load_sample(&s, &f), -IMG_ERR_VERSION);
	s.hdr.version = 0;
	assert_int_equal(load_sample(&s, &f), -IMG_ERR_VERSION);
	s.hdr.version = IMG_FORMAT_VERSION;
	assert_int_equal(load_sample(&s, &f), 0);
	sample_fini(&s);
}

static void test_pages_inside_mappings(void **state)
{
	struct sample s;
	struct img_fault f;

	sample_init(&s, IMG_CODEC_LZ4);
	/* The heap shrinks to 2 pages: the block at heap+2 pages lies outside. */
	s.vma[1].end = S_HEAP + 0x2000;
	assert_int_equal(load_sample(&s, &f), -IMG_ERR_ORDER);
	assert_int_equal(f.record, 7);
	assert_int_equal(f.type, IMG_REC_PAGES);
	assert_true(f.has_addr);
	assert_int_equal(f.addr, S_HEAP + 0x2000);
	/* The heap shrinks to 3 pages: that block now starts inside and runs out. */
	s.vma[1].end = S_HEAP + 0x3000;
	assert_int_equal(load_sample(&s, &f), -IMG_ERR_ORDER);
	assert_string_equal(f.what, "page block runs past its mapping");
	/* Split into two adjacent mappings: a block may span both. */
	sample_fini(&s);
	sample_init(&s, IMG_CODEC_LZ4);
	Roamimg__Vma split;
	sample_vma(&split, S_HEAP + 0x3000, S_HEAP + 0x4000, PROT_READ, ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE, NULL);
	s.vma[1].end = S_HEAP + 0x3000;
	Roamimg__Vma *vmas[6] = {&s.vma[0], &s.vma[1], &split, &s.vma[2], &s.vma[3], &s.vma[4]};
	s.mm.vmas = vmas;
	s.mm.n_vmas = 6;
	struct membuf m = {0};
	struct img_load ld;
	assert_int_equal(sample_write_steps(&s, mem_write, &m, sample_order), 0);
	img_load_init(&ld, IMG_LOAD_TRACK);
	assert_int_equal(img_load_stream(&ld, mem_read, &m, &f), 0);
	assert_int_equal(ld.vma_stat[1].pages, 4);
	assert_int_equal(ld.vma_stat[1].unique, 3);
	assert_int_equal(ld.vma_stat[2].pages, 1);
	assert_int_equal(ld.vma_stat[2].unique, 1);
	img_load_fini(&ld);
	membuf_free(&m);
	sample_fini(&s);
}

/* A metadata record that protobuf refuses is blamed by number and type. */
static void test_undecodable_records(void **state)
{
	static const uint32_t types[] = {H, PL, PR, MM, FI, TH};
	static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct membuf m = {0};
		struct img_writer w;
		struct sample s;
		struct img_load ld;
		struct img_fault f;

		sample_init(&s, IMG_CODEC_NONE);
		assert_int_equal(img_writer_init(&w, mem_write, &m, IMG_CODEC_NONE), 0);
		for (const uint32_t *t = sample_order; *t; t++) {
			if (*t == types[i])
				assert_int_equal(img_write_record(&w, *t, junk, sizeof(junk)), 0);
			else
				assert_int_equal(sample_write_one(&w, &s, *t), 0);
		}
		img_writer_fini(&w);
		img_load_init(&ld, 0);
		assert_int_equal(img_load_stream(&ld, mem_read, &m, &f), -IMG_ERR_DECODE);
		assert_int_equal(f.type, types[i]);
		assert_int_equal(f.record, i < 5 ? i + 1 : 11);
		img_load_fini(&ld);
		membuf_free(&m);
		sample_fini(&s);
	}
	/* An empty payload lacks the header's required fields. */
	struct img_record rec = {.type = IMG_REC_HEADER, .len = 0, .payload = (uint8_t *)""};
	Roamimg__Header *h;
	assert_int_equal(img_unpack_header(&rec, &h), -IMG_ERR_DECODE);
	assert_null(h);
}

static void test_unpack_helpers(void **state)
{
	struct sample s;
	uint8_t buf[4096];
	struct img_record rec = {.payload = buf};
	Roamimg__Process *p;
	Roamimg__Header *h;
	ProtobufCMessage *msg;

	sample_init(&s, IMG_CODEC_NONE);
	rec.type = IMG_REC_PROCESS;
	rec.len = protobuf_c_message_pack(&s.proc.base, buf);
	assert_int_equal(img_unpack_process(&rec, &p), 0);
	assert_int_equal(p->pid, 4242);
	assert_int_equal(p->n_sigactions, 2);
	roamimg__process__free_unpacked(p, NULL);
	/* Asking for the wrong message is refused before decoding. */
	assert_int_equal(img_unpack_header(&rec, &h), -IMG_ERR_TYPE);
	assert_int_equal(img_unpack(&rec, IMG_REC_PAGES, &msg), -IMG_ERR_TYPE);
	assert_int_equal(img_unpack(&rec, IMG_REC_COMMIT, &msg), -IMG_ERR_TYPE);
	assert_null(img_rec_descriptor(IMG_REC_PAGES));
	assert_ptr_equal(img_rec_descriptor(IMG_REC_MM), &roamimg__mm__descriptor);
	assert_string_equal(img_vma_kind_name(ROAMIMG__VMA_KIND__VMA_VDSO), "vdso");
	assert_string_equal(img_fd_kind_name(ROAMIMG__FD_KIND__FD_PIPE), "pipe");
	assert_string_equal(img_fd_kind_name(99), "?");
	sample_fini(&s);
}

static void test_find_vma(void **state)
{
	struct sample s;

	sample_init(&s, IMG_CODEC_NONE);
	assert_int_equal(img_find_vma(&s.mm, 0), -1);
	assert_int_equal(img_find_vma(&s.mm, S_EXE), 0);
	assert_int_equal(img_find_vma(&s.mm, S_EXE + 0xfff), 0);
	assert_int_equal(img_find_vma(&s.mm, S_EXE + 0x1000), -1);
	assert_int_equal(img_find_vma(&s.mm, S_HEAP + 0x3fff), 1);
	assert_int_equal(img_find_vma(&s.mm, S_STACK + 0x20000), 3);
	assert_int_equal(img_find_vma(&s.mm, S_VDSO), 4);
	assert_int_equal(img_find_vma(&s.mm, UINT64_MAX), -1);
	sample_fini(&s);
}

/* Each metadata rule, broken one at a time on an otherwise good sample. */
static void test_metadata_checks(void **state)
{
	struct sample s;
	struct img_fault f;
	Roamimg__Vma *swapped[5];

#define EXPECT_DECODE(type_, change, undo)                                     \
	do {                                                                   \
		change;                                                        \
		assert_int_equal(load_sample(&s, &f), -IMG_ERR_DECODE);       \
		assert_int_equal(f.type, type_);                               \
		assert_non_null(f.what);                                       \
		undo;                                                          \
		assert_int_equal(load_sample(&s, &f), 0);                     \
	} while (0)

	sample_init(&s, IMG_CODEC_LZ4);
	assert_int_equal(load_sample(&s, &f), 0);
	/* process */
	EXPECT_DECODE(PR, s.proc.cwd = (char *)"relative", s.proc.cwd = (char *)"/tmp/work");
	EXPECT_DECODE(PR, s.proc.umask = 01000, s.proc.umask = 022);
	EXPECT_DECODE(PR, (s.proc.has_pdeath_signal = 1, s.proc.pdeath_signal = 65), s.proc.has_pdeath_signal = 0);
	EXPECT_DECODE(PR, s.rl[0].resource = 99, s.rl[0].resource = RLIMIT_NOFILE);
	EXPECT_DECODE(PR, s.rl[0].cur = 5000, s.rl[0].cur = 1024);
	EXPECT_DECODE(PR, s.sa[0].signo = SIGKILL, s.sa[0].signo = SIGUSR1);
	EXPECT_DECODE(PR, s.sa[0].signo = 0, s.sa[0].signo = SIGUSR1);
	EXPECT_DECODE(PR, s.sa[0].signo = 65, s.sa[0].signo = SIGUSR1);
	EXPECT_DECODE(PR, s.it.which = 3, s.it.which = ITIMER_REAL);
	EXPECT_DECODE(PR, s.pt[1].id = 0, s.pt[1].id = 3);
	EXPECT_DECODE(PR, s.pt[0].id = -1, s.pt[0].id = 0);
	EXPECT_DECODE(PR, s.pt[0].notify = SIGEV_THREAD, s.pt[0].notify = SIGEV_SIGNAL);
	EXPECT_DECODE(PR, s.pt[1].has_tid = 0, s.pt[1].has_tid = 1);
	EXPECT_DECODE(PR, s.pt[0].signo = 0, s.pt[0].signo = SIGUSR1);
	EXPECT_DECODE(PR, s.pt[0].signo = 65, s.pt[0].signo = SIGUSR1);
	EXPECT_DECODE(PR, s.spend.raw.len = 100, s.spend.raw.len = 128);
	/* mm */
	EXPECT_DECODE(MM, s.vma[1].start = S_HEAP + 1, s.vma[1].start = S_HEAP);
	EXPECT_DECODE(MM, s.vma[1].end = S_HEAP, s.vma[1].end = S_HEAP + 0x4000);
	EXPECT_DECODE(MM, s.vma[0].end = S_HEAP + 0x1000, s.vma[0].end = S_EXE + 0x1000);
	EXPECT_DECODE(MM, s.vma[2].kind = 9, s.vma[2].kind = ROAMIMG__VMA_KIND__VMA_ANON_SHARED);
	EXPECT_DECODE(MM, s.vma[2].prot = 0x10, s.vma[2].prot = PROT_READ | PROT_WRITE);
	EXPECT_DECODE(MM, s.vma[0].file_id = 1, s.vma[0].file_id = 0);
	EXPECT_DECODE(MM, s.vma[0].has_file_id = 0, s.vma[0].has_file_id = 1);
	EXPECT_DECODE(MM, s.vma[0].pgoff = 100, s.vma[0].pgoff = 0);
	EXPECT_DECODE(MM, s.mm.exe_file_id = 1, s.mm.exe_file_id = 0);
	memcpy(swapped, s.vmap, sizeof(swapped));
	EXPECT_DECODE(MM, (swapped[0] = s.vmap[1], swapped[1] = s.vmap[0], s.mm.vmas = swapped), s.mm.vmas = s.vmap);
	/* files */
	EXPECT_DECODE(FI, s.fd[4].fd = 3, s.fd[4].fd = 4);
	EXPECT_DECODE(FI, s.fd[4].kind = 0, s.fd[4].kind = ROAMIMG__FD_KIND__FD_DIR);
	EXPECT_DECODE(FI, s.fd[4].fd = 1u << 31, s.fd[4].fd = 4);
	EXPECT_DECODE(FI, s.fd[4].kind = 13, s.fd[4].kind = ROAMIMG__FD_KIND__FD_DIR);
	/* TCP and UDP sockets */
	EXPECT_DECODE(FI, s.fd[13].inet = NULL, s.fd[13].inet = &s.inet[0]);
	EXPECT_DECODE(FI, s.fd[4].inet = &s.inet[0], s.fd[4].inet = NULL);
	EXPECT_DECODE(FI, s.inet[0].family = 1, s.inet[0].family = 2);
	EXPECT_DECODE(FI, s.inet[0].type = 5, s.inet[0].type = 1);
	EXPECT_DECODE(FI, s.inet[0].addr.len = 16, s.inet[0].addr.len = 4);
	EXPECT_DECODE(FI, s.inet[0].port = 65536, s.inet[0].port = 8000);
	EXPECT_DECODE(FI, s.inet[0].type = 2, s.inet[0].type = 1);          /* a UDP socket listening */
	EXPECT_DECODE(FI, s.inet[0].has_scope_id = 1, s.inet[0].has_scope_id = 0);
	EXPECT_DECODE(FI, s.inet[1].peer_port = 0, s.inet[1].peer_port = 51000);
	EXPECT_DECODE(FI, s.inet[1].tcp = NULL, s.inet[1].tcp = &s.tcp);  /* TCP with a peer, no connection */
	EXPECT_DECODE(FI, s.inet[1].port = 0, s.inet[1].port = 8000);
	EXPECT_DECODE(FI, s.tcp.snd_wscale = 15, s.tcp.snd_wscale = 7);
	EXPECT_DECODE(FI, s.inet[1].has_backlog = 1, s.inet[1].has_backlog = 0);
	EXPECT_DECODE(FI, s.fd[8].timer = NULL, s.fd[8].timer = &s.timer);
	EXPECT_DECODE(FI, s.fd[10].has_pair_id = 0, s.fd[10].has_pair_id = 1);
	EXPECT_DECODE(FI, s.fd[11].pair_end = 2, s.fd[11].pair_end = 1);
	EXPECT_DECODE(FI, s.fd[11].has_sock_type = 0, s.fd[11].has_sock_type = 1);
	EXPECT_DECODE(FI, s.watch[1].fd = 1u << 30, s.watch[1].fd = 10);
	EXPECT_DECODE(FI, s.iw[1].wd = 2, s.iw[1].wd = 5);
	EXPECT_DECODE(FI, s.iw[0].wd = 0, s.iw[0].wd = 2);
	EXPECT_DECODE(FI, s.iw[1].path = (char *)"relative", s.iw[1].path = (char *)"/tmp/work/in");
	EXPECT_DECODE(FI, s.lock[0].kind = 4, s.lock[0].kind = ROAMIMG__LOCK_KIND__LOCK_POSIX);
	EXPECT_DECODE(FI, s.lock[0].end = 9, s.lock[0].end = 19);
	EXPECT_DECODE(FI, s.lock[1].start = 1ull << 63, s.lock[1].start = 100);
	EXPECT_DECODE(FI, s.lock[2].start = 5, s.lock[2].start = 0);
	EXPECT_DECODE(FI, s.lock[2].has_end = 1, s.lock[2].has_end = 0);
	EXPECT_DECODE(FI, (s.fd[5].n_locks = 1, s.fd[5].locks = s.lockp), s.fd[5].n_locks = 0);
	/* threads */
	EXPECT_DECODE(TH, s.threads.n_threads = 0, s.threads.n_threads = 2);
	EXPECT_DECODE(TH, s.th[1].tid = 4242, s.th[1].tid = 4243);
	EXPECT_DECODE(TH, s.th[1].tid = 0, s.th[1].tid = 4243);
	EXPECT_DECODE(TH, s.tpend.signo = 0, s.tpend.signo = SIGUSR1);
	sample_fini(&s);
#undef EXPECT_DECODE
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sample_loads),
		cmocka_unit_test(test_incremental_pages),
		cmocka_unit_test(test_other_orders_accepted),
		cmocka_unit_test(test_order_rules),
		cmocka_unit_test(test_header_checks),
		cmocka_unit_test(test_precopy),
		cmocka_unit_test(test_pages_inside_mappings),
		cmocka_unit_test(test_undecodable_records),
		cmocka_unit_test(test_unpack_helpers),
		cmocka_unit_test(test_find_vma),
		cmocka_unit_test(test_metadata_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
