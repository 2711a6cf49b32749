/*
 * libFuzzer target for roam-sim's trace reader (src/sim/workload.c): a trace
 * is a user's CSV file, so any bytes must give a trace or a clear error,
 * never a crash. The reader takes a path: the bytes go through a memfd.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sim/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct trace tr;
	uint64_t line;
	const char *why;

	if (fd < 0) {
		fd = memfd_create("trace", 0);
		if (fd < 0)
			return 0;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	if (trace_read(&tr, path, 16, &line, &why) == 0) {
		/* A trace that was accepted must hold what the reader promises. */
		for (uint64_t i = 0; i < tr.n; i++)
			if (tr.rows[i].origin >= 16 || !(tr.rows[i].work > 0))
				__builtin_trap();
		trace_free(&tr);
	} else if (!why) {
		__builtin_trap();  /* every refusal says why */
	}
	return 0;
}
