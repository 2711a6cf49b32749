/*
 * floor_memcpy: the floor the benchmark compares checkpoint and restore
 * with. It copies SIZE bytes of random data into freshly mapped pages, which
 * is the least any checkpointer must do to move a process's memory once (a
 * restore at least writes every page into new memory). On this VM fresh
 * pages are slow to fault in, so the absolute figure says little by itself;
 * the ratio to it does.
 *
 *   floor_memcpy SIZE REPS       (SIZE: bytes, or with K/M/G)
 *
 * Prints one line per repetition: "floor_us N", the time of mmap + memcpy
 * (page faults included) + munmap excluded. The source is filled once and
 * stays mapped, like a running process's memory.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "cluster/cluster.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	uint64_t size;
	long reps;
	uint64_t *src, x = 0x243f6a8885a308d3ull;
	volatile unsigned char sink = 0;

	if (argc != 3 || need_parse_size(argv[1], &size) || !size || (reps = strtol(argv[2], NULL, 10)) < 1) {
		fprintf(stderr, "usage: floor_memcpy SIZE REPS\n");
		return 2;
	}
	size = (size + 4095) & ~(size_t)4095;
	src = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED) {
		perror("floor_memcpy: mmap");
		return 1;
	}
	(void)madvise(src, size, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < size / sizeof(*src); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		src[i] = x;
	}

	for (long r = 0; r < reps; r++) {
		uint64_t t0 = mono_ns();
		unsigned char *dst = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (dst == MAP_FAILED) {
			perror("floor_memcpy: mmap");
			return 1;
		}
		(void)madvise(dst, size, MADV_NOHUGEPAGE);
		memcpy(dst, src, size);
		uint64_t t1 = mono_ns();

		/* The copy is observed, so it cannot be elided. */
		__asm__ volatile("" : : "r"(dst) : "memory");
		sink ^= dst[size - 1];
		munmap(dst, size);
		printf("floor_us %llu\n", (unsigned long long)((t1 - t0) / 1000));
	}
	(void)sink;
	fflush(stdout);
	return 0;
}
