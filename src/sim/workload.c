/*
 * Workloads: how much work a process brings, and traces of real arrivals.
 *
 * Every synthetic work distribution has mean 1, so that a host of speed 1
 * serves one process per second on average and --load is the utilisation.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

/*
 * Bounded Pareto on [k, r*k] with shape a has mean
 *   k * a/(a-1) * (1 - r^(1-a)) / (1 - r^-a)     (a != 1)
 *   k * ln(r) / (1 - 1/r)                         (a == 1)
 * so k is 1 over the factor.
 */
static double bpareto_lo(double a, double r)
{
	double f;

	if (fabs(a - 1) < 1e-12)
		f = log(r) / (1 - 1 / r);
	else
		f = a / (a - 1) * (1 - pow(r, 1 - a)) / (1 - pow(r, -a));
	return 1 / f;
}

int work_parse(struct work_dist *w, const char *spec)
{
	memset(w, 0, sizeof(*w));
	if (strcmp(spec, "exp") == 0) {
		w->kind = WORK_EXP;
		return 0;
	}
	if (strcmp(spec, "det") == 0) {
		w->kind = WORK_DET;
		return 0;
	}
	if (strncmp(spec, "bpareto", 7) == 0 && (spec[7] == '\0' || spec[7] == ':')) {
		const char *p = spec + 7;

		w->kind = WORK_BPARETO;
		w->alpha = 1.1;
		w->ratio = 1e5;
		while (*p) {
			char *end;
			double *dst;

			p++;   /* ':' or ',' */
			if (strncmp(p, "a=", 2) == 0)
				dst = &w->alpha;
			else if (strncmp(p, "r=", 2) == 0)
				dst = &w->ratio;
			else
				return -EINVAL;
			*dst = strtod(p + 2, &end);
			if (end == p + 2 || (*end != ',' && *end != '\0'))
				return -EINVAL;
			p = end;
		}
		if (!(w->alpha > 0 && w->alpha <= 10) || !(w->ratio > 1 && w->ratio <= 1e12))
			return -EINVAL;
		w->lo = bpareto_lo(w->alpha, w->ratio);
		w->hi = w->lo * w->ratio;
		return 0;
	}
	return -EINVAL;
}

void work_format(const struct work_dist *w, char *buf, size_t len)
{
	switch (w->kind) {
	case WORK_EXP:
		snprintf(buf, len, "exp");
		break;
	case WORK_DET:
		snprintf(buf, len, "det");
		break;
	case WORK_BPARETO:
		snprintf(buf, len, "bpareto:a=%g,r=%g", w->alpha, w->ratio);
		break;
	}
}

double work_draw(const struct work_dist *w, struct policy_rng *rng)
{
	double u;

	switch (w->kind) {
	case WORK_DET:
		return 1.0;
	case WORK_BPARETO:
		/* Inverse CDF: x = k / (1 - u (1 - (k/p)^a))^(1/a). */
		u = policy_rng_unit(rng);
		return w->lo / pow(1 - u * (1 - pow(w->lo / w->hi, w->alpha)), 1 / w->alpha);
	default:
		return -log(policy_rng_unit_open0(rng));
	}
}

/* One number ending at ',' or the end of the line. */
static int field(char **p, double *out)
{
	char *end;

	if (**p == '\0' || **p == ',' || **p == ' ' || **p == '"')
		return -1;
	errno = 0;
	*out = strtod(*p, &end);
	if (end == *p || errno || !isfinite(*out) || (*end != ',' && *end != '\0'))
		return -1;
	*p = *end == ',' ? end + 1 : end;
	return 0;
}

int trace_read(struct trace *tr, const char *path, uint32_t nhosts,
               uint64_t *line, const char **why)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	uint64_t lineno = 0, rows_cap = 0;
	double last = 0;
	int rc = -EINVAL;

	memset(tr, 0, sizeof(*tr));
	*line = 0;
	*why = NULL;
	if (!f) {
		*why = "cannot open the trace";
		return -errno;
	}
	while ((len = getline(&buf, &cap, f)) >= 0) {
		char *p = buf;
		double v[4];
		int nf;

		lineno++;
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = '\0';
		if ((size_t)len != strlen(buf)) {
			*why = "a NUL byte in the line";
			goto fail;
		}
		if (lineno == 1) {
			if (strcmp(buf, "arrival,origin,work") == 0) {
				tr->has_mem = false;
			} else if (strcmp(buf, "arrival,origin,work,mem") == 0) {
				tr->has_mem = true;
			} else {
				*why = "the header must be arrival,origin,work or arrival,origin,work,mem";
				goto fail;
			}
			continue;
		}
		if (len == 0) {
			*why = "an empty line";
			goto fail;
		}
		for (nf = 0; nf < 4 && *p; nf++) {
			if (field(&p, &v[nf]) < 0) {
				*why = "a field that is not a number";
				goto fail;
			}
		}
		if (*p || nf != (tr->has_mem ? 4 : 3) || p[-1] == ',') {
			*why = tr->has_mem ? "expected 4 fields" : "expected 3 fields";
			goto fail;
		}
		if (v[0] < 0 || v[0] < last) {
			*why = "arrival times must be >= 0 and non-decreasing";
			goto fail;
		}
		if (v[1] < 0 || v[1] >= nhosts || v[1] != floor(v[1])) {
			*why = "origin must be a host index 0 .. hosts-1";
			goto fail;
		}
		if (!(v[2] > 0)) {
			*why = "work must be > 0";
			goto fail;
		}
		if (tr->has_mem && v[3] < 0) {
			*why = "mem must be >= 0";
			goto fail;
		}
		if (tr->n == rows_cap) {
			uint64_t ncap = rows_cap ? rows_cap * 2 : 1024;
			struct trace_row *r = realloc(tr->rows, ncap * sizeof(*r));

			if (!r) {
				rc = -ENOMEM;
				*why = "out of memory";
				goto fail;
			}
			tr->rows = r;
			rows_cap = ncap;
		}
		tr->rows[tr->n++] = (struct trace_row){
			.arrival = v[0], .origin = (uint32_t)v[1], .work = v[2],
			.mem = tr->has_mem ? v[3] : 0,
		};
		last = v[0];
	}
	if (lineno == 0) {
		*why = "the trace is empty";
		goto fail;
	}
	if (tr->n == 0) {
		lineno++;
		*why = "the trace has no rows";
		goto fail;
	}
	free(buf);
	fclose(f);
	return 0;
fail:
	*line = lineno;
	free(buf);
	fclose(f);
	trace_free(tr);
	return rc;
}

void trace_free(struct trace *tr)
{
	free(tr->rows);
	tr->rows = NULL;
	tr->n = 0;
}
