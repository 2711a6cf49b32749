/*
 * roam run before the C library starts (run_early.c): what the early part
 * did, for cmd_run to carry on from.
 */
#ifndef ROAM_CLI_RUN_EARLY_H
#define ROAM_CLI_RUN_EARLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct run_early {
	bool sent;          /* the Run frame (and the EOF, when null_in) went on fd */
	bool null_in;       /* stdin is /dev/null: its EOF went behind the Run */
	bool started;       /* Started was read: the relay has begun */
	int fd;             /* the control connection, when sent */
	int err;            /* errno of a send that failed (the connection is useless) */
	const uint8_t *rest;   /* bytes read from roamd and not handled */
	size_t nrest;
};

/* Zero (nothing sent) unless the early part took the run. */
extern struct run_early run_early;

#endif
