/*
 * libFuzzer target: the policy spec parser. Spec strings come from roamd's
 * configuration, roam's command line and the peers' requests. Any input
 * either fails with a known error whose offset lies inside it, or parses to
 * a policy whose canonical form fits POLICY_SPEC_MAX and parses back equal.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec = malloc(size + 1);
	struct policy p, q;
	struct policy_parse_error err;
	char buf[POLICY_SPEC_MAX];
	int rc, n;

	if (!spec)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	rc = policy_parse(&p, spec, &err);
	if (rc < 0) {
		if (-rc != err.code || err.code <= POLICY_ERR_BASE || err.code > POLICY_ERR_TOO_LONG)
			abort();
		if (err.offset > strlen(spec))
			abort();
		if (strcmp(policy_strerror(rc), "unknown policy error") == 0)
			abort();
	} else {
		n = policy_format(&p, buf, sizeof(buf));
		if (n <= 0 || n >= (int)sizeof(buf))
			abort();
		if (policy_parse(&q, buf, NULL) != 0 || memcmp(&p, &q, sizeof(p)) != 0)
			abort();
	}
	free(spec);
	return 0;
}
