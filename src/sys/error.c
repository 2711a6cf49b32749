#include "sys/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int roam_fail(struct roam_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e || e->code)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->what, sizeof(e->what), fmt, ap);
	va_end(ap);
	return code;
}

static const char *code_text(int code)
{
	switch (-code) {
	case ROAM_E_REFUSED: return "refused";
	case ROAM_E_INCOMPAT: return "incompatible with this host";
	case ROAM_E_PERM: return "not permitted";
	case ROAM_E_IMAGE: return "bad image";
	case ROAM_E_TARGET: return "target process failed";
	case ROAM_E_PIDTAKEN: return "pid in use";
	default: return strerror(-code);
	}
}

const char *roam_error_text(const struct roam_error *e, char *buf, size_t size)
{
	if (e->what[0])
		snprintf(buf, size, "%s: %s", code_text(e->code), e->what);
	else
		snprintf(buf, size, "%s", code_text(e->code));
	return buf;
}
