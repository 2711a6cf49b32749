/*
 * The control socket's client end (see control_client.h).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/control_client.h"
#include "net/runwire.h"

const char *cc_control_path(int *argc, char **argv)
{
	const char *path = getenv("ROAM_CONTROL");

	*argc = runwire_strip_control(*argc, argv, argv, &path);
	argv[*argc] = NULL;
	return path && *path ? path : ROAM_CONTROL_DEFAULT;
}

int cc_open(struct cc *c, const char *cmd, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(c, 0, sizeof(*c));
	c->cmd = cmd;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		cli_error(cmd, "control socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		cli_error(cmd, "cannot reach roamd at %s: %s (is roamd running? --control PATH or ROAM_CONTROL)",
			  path, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

void cc_close(struct cc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
}

int cc_send(struct cc *c, unsigned type, const ProtobufCMessage *m)
{
	size_t n = msg_frame_size(m), off = 0;
	uint8_t *b = malloc(n);
	long w;

	if (!b)
		return -1;
	w = msg_encode(type, m, b, n);
	if (w < 0) {
		cli_error(c->cmd, "cannot encode request: %s", msg_strerror((int)w));
		free(b);
		return -1;
	}
	while (off < (size_t)w) {
		ssize_t k = send(c->fd, b + off, (size_t)w - off, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			cli_error(c->cmd, "roamd connection: %s", strerror(errno));
			free(b);
			return -1;
		}
		off += (size_t)k;
	}
	free(b);
	return 0;
}

/* Takes a frame out of the buffer if one is whole: 1, 0 or -1. */
static int take(struct cc *c, unsigned *type, ProtobufCMessage **m)
{
	size_t used;
	int err = msg_take(buf_data(&c->in), buf_used(&c->in), MSG_CH_CONTROL, type, m, &used);

	if (err < 0) {
		cli_error(c->cmd, "bad frame from roamd: %s", msg_strerror(err));
		return -1;
	}
	if (err > 0)
		buf_consume(&c->in, used);
	return err;
}

static int fill(struct cc *c, bool block)
{
	uint8_t *dst = buf_reserve(&c->in, 65536);
	ssize_t n;

	if (!dst)
		return -1;
	do
		n = recv(c->fd, dst, 65536, block ? 0 : MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0) {
		cli_error(c->cmd, "roamd closed the connection%s%s", n < 0 ? ": " : "",
			  n < 0 ? strerror(errno) : "");
		return -1;
	}
	buf_commit(&c->in, (size_t)n);
	return 1;
}

int cc_recv(struct cc *c, unsigned *type, ProtobufCMessage **m)
{
	for (;;) {
		int r = take(c, type, m);
		if (r)
			return r < 0 ? -1 : 0;
		if (fill(c, true) < 0)
			return -1;
	}
}

int cc_poll_frame(struct cc *c, unsigned *type, ProtobufCMessage **m)
{
	int r = take(c, type, m);

	if (r)
		return r;
	r = fill(c, false);
	if (r <= 0)
		return r;
	return take(c, type, m);
}

int cc_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return CLI_EXIT_FAILURE;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;   /* a closed stdout: the job's output has nowhere to go */
		p += w;
		n -= (size_t)w;
	}
}

int cc_relay(struct cc *c, bool forward_stdin)
{
	static const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
	struct pollfd pf[3];
	sigset_t mask;
	int sfd, code = CLI_EXIT_FAILURE;
	bool in_open = forward_stdin;
	/* Stdin is read only when the socket to roamd has room: roamd stops
	 * reading us when the job's input queue is full (its back-pressure),
	 * and a send blocked on that would stop us printing the job's output
	 * too, which the job may be waiting on. */
	bool room = false;

	sigemptyset(&mask);
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++) {
		/* A shell starts background commands with SIGINT ignored; the
		 * job should still get the user's Ctrl-C or kill -INT. */
		signal(fwd[i], SIG_DFL);
		sigaddset(&mask, fwd[i]);
	}
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGPIPE);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	for (;;) {
		ProtobufCMessage *m;
		unsigned type;
		int r;

		/* Frames already buffered first: poll says nothing about them. */
		while ((r = cc_poll_frame(c, &type, &m)) == 1) {
			switch (type) {
			case MSG_OUTPUT: {
				Roamnet__Output *o = (Roamnet__Output *)m;
				write_all((int)o->fd, o->data.data, o->data.len);
				break;
			}
			case MSG_EXITED:
				code = cc_exit_code(((Roamnet__Exited *)m)->status);
				msg_free(m);
				goto out;
			case MSG_FAILED: {
				Roamnet__Failed *f = (Roamnet__Failed *)m;
				cli_error(c->cmd, "%s: %s", f->id, f->reason);
				code = f->code;
				msg_free(m);
				goto out;
			}
			case MSG_RESULT: {
				Roamnet__Result *res = (Roamnet__Result *)m;
				if (res->code) {
					cli_error(c->cmd, "%s", res->reason ? res->reason : "refused");
					code = CLI_EXIT_FAILURE;
					msg_free(m);
					goto out;
				}
				break;
			}
			default:
				break;
			}
			msg_free(m);
		}
		if (r < 0)
			goto out;
		pf[0] = (struct pollfd){.fd = c->fd, .events = POLLIN | (in_open && !room ? POLLOUT : 0)};
		pf[1] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pf[2] = (struct pollfd){.fd = in_open && room ? 0 : -1, .events = POLLIN};
		if (poll(pf, 3, -1) < 0 && errno != EINTR)
			goto out;
		if (pf[0].revents & POLLOUT)
			room = true;
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				Roamnet__Signal s = ROAMNET__SIGNAL__INIT;
				s.id = "";
				s.sig = (int32_t)si.ssi_signo;
				if (cc_send(c, MSG_SIGNAL, &s.base) < 0)
					goto out;
			}
		}
		if (pf[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint8_t data[65536];
			ssize_t n = read(0, data, sizeof(data));
			Roamnet__Input in = ROAMNET__INPUT__INIT;
			in.id = "";
			if (n > 0) {
				in.has_data = 1;
				in.data.data = data;
				in.data.len = (size_t)n;
			} else if (n == 0 || errno != EINTR) {
				in.has_eof = in.eof = 1;
				in_open = false;
			}
			if ((in.has_data || in.has_eof) && cc_send(c, MSG_INPUT, &in.base) < 0)
				goto out;
			room = false;   /* asked again before the next read */
		}
	}
out:
	if (sfd >= 0)
		close(sfd);
	return code;
}

void cc_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}
