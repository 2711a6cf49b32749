/*
 * Byte queues (see buf.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/buf.h"

uint8_t *buf_reserve(struct buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return b->p + b->len;
	/* Slide the unconsumed bytes down before growing. */
	if (b->off) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= n)
			return b->p + b->len;
	}
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return NULL;
	b->p = p;
	b->cap = cap;
	return b->p + b->len;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
	uint8_t *dst = buf_reserve(b, n);

	if (!dst)
		return -ENOMEM;
	if (n)
		memcpy(dst, data, n);
	b->len += n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}
