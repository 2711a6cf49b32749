/*
 * The client end of the control socket, shared by the cluster commands:
 * finding and connecting to the local roamd, blocking frame I/O, the
 * stdio/signal relay of roam run and roam attach, and JSON string output.
 */
#ifndef ROAM_CLI_CONTROL_CLIENT_H
#define ROAM_CLI_CONTROL_CLIENT_H

#include <stdbool.h>
#include <stdio.h>

#include "net/buf.h"
#include "net/msg.h"

struct cc {
	int fd;
	const char *cmd;     /* subcommand name, for messages */
	struct buf in;
};

/*
 * Removes "--control PATH" / "--control=PATH" from argv (in place, updating
 * *argc) and returns the socket path: that, else $ROAM_CONTROL, else
 * ROAM_CONTROL_DEFAULT.
 */
const char *cc_control_path(int *argc, char **argv);

/* Connects; prints the problem and returns -1 on failure. */
int cc_open(struct cc *c, const char *cmd, const char *path);
void cc_close(struct cc *c);

/* Sends one frame; -1 (printed) on failure. */
int cc_send(struct cc *c, unsigned type, const ProtobufCMessage *m);

/* Waits for one frame; 0, or -1 (printed) on EOF or a bad frame. */
int cc_recv(struct cc *c, unsigned *type, ProtobufCMessage **m);

/* Reads one frame if a whole one is buffered or can be read without
 * blocking: 1 got one, 0 need more, -1 failure (printed). */
int cc_poll_frame(struct cc *c, unsigned *type, ProtobufCMessage **m);

/*
 * Relays a running job: Output frames to stdout/stderr, stdin (when
 * forward_stdin; else the caller has sent its EOF) as Input frames, SIGINT/TERM/HUP/QUIT/USR1/USR2 as Signal
 * frames, until Exited or Failed. Returns the exit status roam run should
 * exit with: the job's, 128+signal, 127 cannot-exec, 255 roam failure.
 */
int cc_relay(struct cc *c, bool forward_stdin);

/* The shell's view of a wait status. */
int cc_exit_code(int status);

/* Prints s as a JSON string literal. */
void cc_json_str(FILE *f, const char *s);

#endif
