/*
 * One sock_diag request (NETLINK_SOCK_DIAG, family AF_UNIX) for one inode,
 * and its one answer.
 */
#include "sys/unixdiag.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void read_attrs(const struct unix_diag_msg *m, size_t len, struct unix_sock_info *out)
{
	const struct nlattr *a = (const struct nlattr *)(m + 1);
	size_t left = len - NLMSG_ALIGN(sizeof(*m));

	while (left >= sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= left) {
		const void *v = (const char *)a + NLA_HDRLEN;
		size_t vl = a->nla_len - NLA_HDRLEN;
		switch (a->nla_type) {
		case UNIX_DIAG_NAME:
			out->named = 1;
			break;
		case UNIX_DIAG_PEER:
			if (vl >= sizeof(uint32_t))
				out->peer = *(const uint32_t *)v;
			break;
		case UNIX_DIAG_RQLEN:
			if (vl >= sizeof(struct unix_diag_rqlen))
				out->rqueue = ((const struct unix_diag_rqlen *)v)->udiag_rqueue;
			break;
		case UNIX_DIAG_SHUTDOWN:
			if (vl >= 1)
				out->shutdown = *(const uint8_t *)v;
			break;
		}
		size_t step = NLA_ALIGN(a->nla_len);
		if (step >= left)
			break;
		left -= step;
		a = (const struct nlattr *)((const char *)a + step);
	}
}

int unix_sock_query(uint64_t ino, struct unix_sock_info *out)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST },
		.r = { .sdiag_family = AF_UNIX, .udiag_ino = (uint32_t)ino,
		       .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN,  /* the shutdown bits come always */
		       .udiag_cookie = { ~0u, ~0u } },
	};
	union {
		struct nlmsghdr h;
		char buf[8192];
	} ans;
	int rc = 0, s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	memset(out, 0, sizeof(*out));
	if (s < 0)
		return -errno;
	if (ino > UINT32_MAX)
		rc = -ENOENT;
	else if (send(s, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
		rc = -errno;
	ssize_t n = rc ? 0 : recv(s, &ans, sizeof(ans), 0);
	if (rc == 0 && n < 0)
		rc = -errno;
	else if (rc == 0 && (n < (ssize_t)sizeof(struct nlmsghdr) || !NLMSG_OK(&ans.h, (size_t)n)))
		rc = -EPROTO;
	else if (rc == 0 && ans.h.nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(&ans.h);
		rc = ans.h.nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error ? e->error : -EPROTO;
	} else if (rc == 0 && (ans.h.nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			       ans.h.nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg))))
		rc = -EPROTO;
	if (rc == 0) {
		const struct unix_diag_msg *m = NLMSG_DATA(&ans.h);
		if (m->udiag_ino != ino)
			rc = -EPROTO;
		out->type = m->udiag_type;
		out->state = m->udiag_state;
		read_attrs(m, ans.h.nlmsg_len - NLMSG_HDRLEN, out);
	}
	close(s);
	return rc;
}
