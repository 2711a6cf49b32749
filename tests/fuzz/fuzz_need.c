/*
 * libFuzzer target for the --need parser (src/cluster/need.c): the string
 * comes from any local user through the control socket. Any bytes must give
 * a request or a refusal that names the offending part, never a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct members t;
	static int ready;
	struct policy_request req;
	const char *bad = NULL;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	if (!ready) {
		members_init(&t, "h1", "127.0.0.1:7070");
		ready = 1;
	}
	memcpy(s, data, size);
	s[size] = '\0';
	policy_request_init(&req, 0, 0);
	int rc = need_parse(s, &t, &req, &bad);
	if (rc < 0 && (!need_strerror(rc) || !bad))
		__builtin_trap();  /* a refusal must say what and where */
	free(s);
	return 0;
}
