/*
 * The --need constraint parser (see cluster.h). Pure.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"

const char *need_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case NEED_ERR_SYNTAX: return "expected key=value[,key=value...]";
	case NEED_ERR_KEY: return "unknown key (mem, cpus, arch, tag, feature)";
	case NEED_ERR_VALUE: return "bad value";
	default: return "bad --need";
	}
}

static int parse_size(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0, mul = 1;
	size_t i = 0;

	for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
		if (x > UINT64_MAX / 10 - 10)
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (i == 0)
		return -1;
	if (i < n) {
		switch (v[i]) {
		case 'k': case 'K': mul = 1ull << 10; break;
		case 'm': case 'M': mul = 1ull << 20; break;
		case 'g': case 'G': mul = 1ull << 30; break;
		case 't': case 'T': mul = 1ull << 40; break;
		default: return -1;
		}
		i++;
		if (i < n && (v[i] == 'b' || v[i] == 'B' || v[i] == 'i'))
			i++;
		if (i < n && (v[i] == 'B'))
			i++;
	}
	if (i != n || x > UINT64_MAX / mul)
		return -1;
	*out = x * mul;
	return 0;
}

int need_parse_size(const char *s, uint64_t *out)
{
	return parse_size(s, strlen(s), out) ? -NEED_ERR_VALUE : 0;
}

int need_parse(const char *s, struct members *t, struct policy_request *req, const char **bad)
{
	const char *p = s;

	while (p && *p) {
		const char *end = strchr(p, ',');
		const char *eq = memchr(p, '=', end ? (size_t)(end - p) : strlen(p));
		size_t klen, vlen;
		char val[CL_NAME_MAX];
		uint64_t x;

		*bad = p;
		if (!end)
			end = p + strlen(p);
		if (!eq || eq == p)
			return -NEED_ERR_SYNTAX;
		klen = (size_t)(eq - p);
		vlen = (size_t)(end - eq - 1);
		if (vlen == 0 || vlen >= sizeof(val))
			return -NEED_ERR_VALUE;
		memcpy(val, eq + 1, vlen);
		val[vlen] = 0;
		if (klen == 3 && !memcmp(p, "mem", 3)) {
			if (parse_size(val, vlen, &x))
				return -NEED_ERR_VALUE;
			req->mem = x;
		} else if (klen == 4 && !memcmp(p, "cpus", 4)) {
			if (parse_size(val, vlen, &x) || x > 1u << 20 || strpbrk(val, "kKmMgGtT"))
				return -NEED_ERR_VALUE;
			req->cpus = (uint32_t)x;
		} else if (klen == 4 && !memcmp(p, "arch", 4)) {
			int a = policy_arch_parse(val);
			if (a < 0)
				return -NEED_ERR_VALUE;
			req->arch = (uint32_t)a;
		} else if (klen == 3 && !memcmp(p, "tag", 3)) {
			int bit = members_tag_bit(t, val);
			if (bit < 0)
				return -NEED_ERR_VALUE;
			req->tags |= 1ull << bit;
		} else if (klen == 7 && !memcmp(p, "feature", 7)) {
			unsigned i;
			for (i = 0; i < cl_nfeatures; i++)
				if (!strcmp(cl_features[i], val))
					break;
			if (i == cl_nfeatures)
				return -NEED_ERR_VALUE;
			req->features |= 1ull << i;
		} else {
			return -NEED_ERR_KEY;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}
