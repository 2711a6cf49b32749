/*
 * Spec strings: "pod:d=2" and friends, parsed and printed back.
 *
 * The grammar is deliberately narrow (no spaces, no signs, no hex) so that a
 * spec means one thing in roamd's configuration, on roam's command line and
 * in roam-sim, and so that every mistake gets a precise error and offset.
 *
 *	spec  = name [ ":" param *( "," param ) ]
 *	param = key "=" value
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define SPEC_MAX_LEN 256   /* longer than any valid spec: refuse early */
#define T_MAX 1e9

/* Which parameters each kind takes: bit 0 d, bit 1 t, bit 2 lp. */
#define P_D   0x1u
#define P_T   0x2u
#define P_LP  0x4u

static const struct {
	const char *name;
	enum policy_kind kind;
	unsigned params;
} kinds[] = {
	{ "random",       POLICY_KIND_RANDOM,       0 },
	{ "least-loaded", POLICY_KIND_LEAST_LOADED, 0 },
	{ "jsq",          POLICY_KIND_JSQ,          0 },
	{ "pod",          POLICY_KIND_POD,          P_D },
	{ "probe",        POLICY_KIND_PROBE,        P_D },
	{ "threshold",    POLICY_KIND_THRESHOLD,    P_T | P_LP },
};

const char *policy_kind_name(enum policy_kind kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == kind)
			return kinds[i].name;
	return "?";
}

static int fail(struct policy_parse_error *err, int code, size_t off, size_t len)
{
	if (err) {
		err->code = code;
		err->offset = off;
		err->len = len;
	}
	return -code;
}

/* An integer in [1, POLICY_MAX_D], digits only. */
static int parse_count(const char *v, size_t len, uint32_t *out)
{
	uint64_t x = 0;

	if (len == 0)
		return POLICY_ERR_NUMBER;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return POLICY_ERR_NUMBER;
		if (x < 1000000)
			x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (x < 1 || x > POLICY_MAX_D)
		return POLICY_ERR_RANGE;
	*out = (uint32_t)x;
	return 0;
}

/* A decimal number digits[.digits][e[+-]digits] in (0, T_MAX]. */
static int parse_threshold(const char *v, size_t len, double *out)
{
	size_t i = 0, digits = 0;
	char buf[SPEC_MAX_LEN + 1];
	char *end;
	double x;

	while (i < len && v[i] >= '0' && v[i] <= '9')
		i++, digits++;
	if (i < len && v[i] == '.') {
		i++;
		while (i < len && v[i] >= '0' && v[i] <= '9')
			i++, digits++;
	}
	if (digits == 0)
		return POLICY_ERR_NUMBER;
	if (i < len && (v[i] == 'e' || v[i] == 'E')) {
		size_t exp_digits = 0;

		i++;
		if (i < len && (v[i] == '+' || v[i] == '-'))
			i++;
		while (i < len && v[i] >= '0' && v[i] <= '9')
			i++, exp_digits++;
		if (exp_digits == 0)
			return POLICY_ERR_NUMBER;
	}
	if (i != len)
		return POLICY_ERR_NUMBER;
	memcpy(buf, v, len);
	buf[len] = '\0';
	errno = 0;
	x = strtod(buf, &end);
	if (end != buf + len)
		return POLICY_ERR_NUMBER;
	if (!(x > 0) || !(x <= T_MAX) || !isfinite(x))
		return POLICY_ERR_RANGE;
	*out = x;
	return 0;
}

int policy_parse(struct policy *p, const char *spec, struct policy_parse_error *err)
{
	size_t len, name_len, i;
	const char *colon;
	unsigned params = 0, seen = 0;
	struct policy out;
	int rc;

	if (err)
		err->code = 0, err->offset = 0, err->len = 0;
	if (!spec || !*spec)
		return fail(err, POLICY_ERR_EMPTY, 0, 0);
	len = strnlen(spec, SPEC_MAX_LEN + 1);
	if (len > SPEC_MAX_LEN)
		return fail(err, POLICY_ERR_TOO_LONG, SPEC_MAX_LEN, 1);

	colon = memchr(spec, ':', len);
	name_len = colon ? (size_t)(colon - spec) : len;
	memset(&out, 0, sizeof(out));
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strlen(kinds[i].name) == name_len &&
		    memcmp(kinds[i].name, spec, name_len) == 0) {
			out.kind = kinds[i].kind;
			params = kinds[i].params;
			break;
		}
	}
	if (!out.kind)
		return fail(err, POLICY_ERR_NAME, 0, name_len ? name_len : 1);
	if (params & P_D)
		out.d = 2;
	if (params & P_T)
		out.t = 2;
	if (params & P_LP)
		out.lp = 3;

	if (colon) {
		size_t at = name_len + 1;

		if (at == len)
			return fail(err, POLICY_ERR_SYNTAX, name_len, 1);
		while (at <= len) {
			const char *item = spec + at;
			const char *comma = memchr(item, ',', len - at);
			size_t item_len = comma ? (size_t)(comma - item) : len - at;
			const char *eq = memchr(item, '=', item_len);
			size_t key_len, val_len;
			unsigned bit;

			if (item_len == 0)
				return fail(err, POLICY_ERR_SYNTAX, at, 1);
			if (!eq)
				return fail(err, POLICY_ERR_SYNTAX, at, item_len);
			key_len = (size_t)(eq - item);
			val_len = item_len - key_len - 1;
			if (key_len == 1 && item[0] == 'd')
				bit = P_D;
			else if (key_len == 1 && item[0] == 't')
				bit = P_T;
			else if (key_len == 2 && item[0] == 'l' && item[1] == 'p')
				bit = P_LP;
			else
				bit = 0;
			if (!(bit & params))
				return fail(err, POLICY_ERR_PARAM, at, key_len ? key_len : 1);
			if (seen & bit)
				return fail(err, POLICY_ERR_DUPLICATE, at, key_len);
			seen |= bit;
			if (bit == P_D)
				rc = parse_count(eq + 1, val_len, &out.d);
			else if (bit == P_LP)
				rc = parse_count(eq + 1, val_len, &out.lp);
			else
				rc = parse_threshold(eq + 1, val_len, &out.t);
			if (rc)
				return fail(err, rc, at + key_len + 1, val_len ? val_len : 1);
			if (!comma)
				break;
			at += item_len + 1;
			if (at == len)   /* trailing comma */
				return fail(err, POLICY_ERR_SYNTAX, at - 1, 1);
		}
	}
	*p = out;
	return 0;
}

/* The shortest %g form of x that reads back as exactly x. */
static void shortest(double x, char *buf, size_t len)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			return;
	}
}

int policy_format(const struct policy *p, char *buf, size_t len)
{
	char t[40];
	int n;

	switch (p->kind) {
	case POLICY_KIND_RANDOM:
	case POLICY_KIND_LEAST_LOADED:
	case POLICY_KIND_JSQ:
		n = snprintf(buf, len, "%s", policy_kind_name(p->kind));
		break;
	case POLICY_KIND_POD:
	case POLICY_KIND_PROBE:
		n = snprintf(buf, len, "%s:d=%u", policy_kind_name(p->kind), p->d);
		break;
	case POLICY_KIND_THRESHOLD:
		shortest(p->t, t, sizeof(t));
		n = snprintf(buf, len, "threshold:t=%s,lp=%u", t, p->lp);
		break;
	default:
		return -POLICY_ERR_KIND;
	}
	return n;
}

const char *policy_strerror(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
	case POLICY_ERR_EMPTY:     return "empty policy spec";
	case POLICY_ERR_NAME:      return "unknown policy (known: random, least-loaded, jsq, pod:d=D, probe:d=D, threshold:t=T,lp=L)";
	case POLICY_ERR_PARAM:     return "this policy has no such parameter";
	case POLICY_ERR_SYNTAX:    return "expected NAME or NAME:KEY=VALUE[,KEY=VALUE]";
	case POLICY_ERR_NUMBER:    return "not a number";
	case POLICY_ERR_RANGE:     return "value out of range (d and lp: 1..64; t: > 0 and <= 1e9)";
	case POLICY_ERR_DUPLICATE: return "parameter given twice";
	case POLICY_ERR_MISSING:   return "a required parameter is missing";
	case POLICY_ERR_TOO_LONG:  return "policy spec too long";
	case POLICY_ERR_HOST:      return "host index outside the host view";
	case POLICY_ERR_SESSION:   return "probe answers do not match the probes asked";
	case POLICY_ERR_ORIGIN:    return "the threshold policy needs the origin host";
	case POLICY_ERR_KIND:      return "not a valid policy";
	default:                   return "unknown policy error";
	}
}
