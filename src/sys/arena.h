/*
 * A bump allocator: the image messages of one checkpoint or restore are
 * many small objects with one lifetime, freed together.
 */
#ifndef ROAM_SYS_ARENA_H
#define ROAM_SYS_ARENA_H

#include <stddef.h>

struct arena_chunk;
struct arena {
	struct arena_chunk *head;
};

/* Zeroed memory, aligned for any type; NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
void *arena_memdup(struct arena *a, const void *p, size_t size);
void arena_free(struct arena *a);

#endif
