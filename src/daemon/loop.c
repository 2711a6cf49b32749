/*
 * The event loop's registration helpers and clock. The loop itself is in
 * main.c: epoll_wait, dispatch, then reap the connections killed this turn.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <time.h>

#include "daemon/roamd.h"
#include "sys/clock.h"

int loop_add(struct ev *ev, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};

	return epoll_ctl(roamd->epfd, EPOLL_CTL_ADD, ev->fd, &e) < 0 ? -errno : 0;
}

int loop_mod(struct ev *ev, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};

	return epoll_ctl(roamd->epfd, EPOLL_CTL_MOD, ev->fd, &e) < 0 ? -errno : 0;
}

void loop_del(struct ev *ev)
{
	if (ev->fd >= 0)
		epoll_ctl(roamd->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
}

int strfmt(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}
