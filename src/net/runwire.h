/*
 * The frames of a plain `roam run` conversation, encoded and decoded by
 * hand, calling no function of the C library at all: the CLI speaks them
 * before the C library has started (src/cli/run_early.c), where glibc's
 * start-up (some 40 CPUID instructions, each a trap to the hypervisor on a
 * VM) would otherwise delay every remote run by a quarter of a millisecond.
 *
 * The bytes are exactly what msg_encode writes for the same messages
 * (tests/unit/test_net_runwire.c checks it), so roamd cannot tell the two
 * apart. The decoders accept only what they fully understand: a frame they
 * refuse is left to the real decoder (msg.c), which is the judge.
 *
 * The option rules of roam run (and --control) live here too, so that the
 * early path and cmd_run read a command line the same way by construction.
 */
#ifndef ROAM_NET_RUNWIRE_H
#define ROAM_NET_RUNWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Copies argv[0..argc) to out (which may be argv itself) without the
 * "--control PATH" and "--control=PATH" arguments that come before "--";
 * *path becomes the last such PATH (it is left alone when there is none).
 * Returns the new count; out[count] is not written.
 */
int runwire_strip_control(int argc, char **argv, char **out, const char **path);

enum run_opts_status {
	RUN_OPTS_OK,
	RUN_OPTS_HELP,      /* -h / --help */
	RUN_OPTS_UNKNOWN,   /* an unknown option (or one missing its value): bad */
	RUN_OPTS_NO_CMD,    /* no command after the options */
};

/* roam run's options; argv[0] is "run". */
struct run_opts {
	enum run_opts_status status;
	const char *bad;
	const char *policy, *need, *near, *on;   /* NULL when not given */
	bool explain, detach, json;
	int cmd;                                 /* argv index of CMD */
};

void run_opts_parse(int argc, char **argv, struct run_opts *o);

struct run_limit {
	uint32_t resource;
	uint64_t soft, hard;
};

/* Everything a Run frame carries. */
struct run_req {
	const struct run_opts *o;
	char **argv;           /* the command */
	size_t argc;
	char **env;
	size_t nenv;
	const char *cwd;
	uint32_t umask;
	const struct run_limit *lim;
	size_t nlim;
};

/* The whole Run frame (header included): its size, then the bytes. */
size_t runwire_run_size(const struct run_req *r);
void runwire_run_encode(const struct run_req *r, uint8_t *out);

/* Input{id "", eof}: the EOF of an empty stdin, sent behind the Run. */
#define RUNWIRE_EOF_SIZE 12
void runwire_eof_encode(uint8_t out[RUNWIRE_EOF_SIZE]);

/*
 * A frame at the head of p[0..n): 1 and its type and whole size (header
 * included) when it is all there, 0 when more bytes are needed, -1 for a
 * header this module does not take (flags set, a payload over max).
 */
int runwire_frame(const uint8_t *p, size_t n, size_t max, unsigned *type, size_t *size);

/* Payload decoders: 0, or -1 for anything not plainly valid. */
int runwire_started(const uint8_t *p, size_t n);
int runwire_output(const uint8_t *p, size_t n, unsigned *fd, const uint8_t **data, size_t *len);
int runwire_exited(const uint8_t *p, size_t n, int *status);

#endif
