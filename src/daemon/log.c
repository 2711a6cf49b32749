/*
 * roamd's log: one line per event on stderr, prefixed with the host name, so
 * that several daemons logging to one terminal (the tests) stay readable.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "daemon/roamd.h"

static char log_name[CL_NAME_MAX] = "roamd";
static int log_verbose;

void log_init(const char *name, int verbose)
{
	snprintf(log_name, sizeof(log_name), "%s", name);
	log_verbose = verbose;
}

__attribute__((format(printf, 2, 0)))
static void vlog(const char *level, const char *fmt, va_list ap)
{
	struct timespec ts;
	char line[1024];

	clock_gettime(CLOCK_REALTIME, &ts);
	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "%ld.%03ld roamd[%s] %s%s\n", (long)ts.tv_sec % 100000, ts.tv_nsec / 1000000,
		log_name, level, line);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	vlog("debug: ", fmt, ap);
	va_end(ap);
}
