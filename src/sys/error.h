/*
 * Errors of the engine layers: a code, and the object it concerns.
 *
 * Library code returns a negative code (-errno, or one of the ROAM_E_* codes
 * below) and, where the caller would otherwise not know which fd, mapping or
 * record failed, names the object in the context's roam_error. Only cli/ and
 * daemon/ turn it into text (roam_error_text).
 */
#ifndef ROAM_SYS_ERROR_H
#define ROAM_SYS_ERROR_H

#include <stddef.h>

enum roam_errcode {
	ROAM_E_BASE = 6000,
	ROAM_E_REFUSED = 6001,    /* state outside the supported list: "what" names it */
	ROAM_E_INCOMPAT = 6002,   /* the image cannot run on this host (CPU, vDSO, file identity) */
	ROAM_E_PERM = 6003,       /* the caller may not do this (credentials, capabilities) */
	ROAM_E_IMAGE = 6004,      /* the image is malformed: "what" names the record */
	ROAM_E_TARGET = 6005,     /* the process did something unexpected while being handled */
	ROAM_E_PIDTAKEN = 6006,   /* --same-pid and the pid is in use */
};

struct roam_error {
	int code;                 /* negative, as returned */
	char what[320];           /* the object: "socket on fd 3", "mapping 7f00-7f10 /lib/x.so" */
};

/* Records code and a description of the object; returns code, so that
 * "return roam_fail(e, -EIO, "fd %d", fd);" reads naturally. Keeps the first
 * error recorded: later ones are consequences. */
int roam_fail(struct roam_error *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "refused: socket on fd 3" / "Input/output error: reading pages of ..." */
const char *roam_error_text(const struct roam_error *e, char *buf, size_t size);

#endif
