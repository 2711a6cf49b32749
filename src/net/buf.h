/*
 * A growable byte queue: bytes are appended at the tail and consumed from
 * the head. Connections keep one for input and one for output.
 */
#ifndef ROAM_NET_BUF_H
#define ROAM_NET_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *p;
	size_t off;   /* first unconsumed byte */
	size_t len;   /* end of data */
	size_t cap;
};

static inline size_t buf_used(const struct buf *b) { return b->len - b->off; }
static inline uint8_t *buf_data(const struct buf *b) { return b->p ? b->p + b->off : NULL; }

/* Makes room for n more bytes at the tail; returns a pointer to it or NULL. */
uint8_t *buf_reserve(struct buf *b, size_t n);

/* Appends n bytes. Returns 0 or -ENOMEM. */
int buf_append(struct buf *b, const void *data, size_t n);

/* Marks n reserved bytes as written. */
static inline void buf_commit(struct buf *b, size_t n) { b->len += n; }

/* Drops n bytes from the head. */
void buf_consume(struct buf *b, size_t n);

void buf_free(struct buf *b);

#endif
