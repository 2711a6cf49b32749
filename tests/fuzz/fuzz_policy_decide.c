/*
 * libFuzzer target: policy decisions on arbitrary host views, requests and
 * probe answers. roamd feeds policy_decide() with what peers publish and
 * answer, so no view may crash it, and every answer must keep the contract:
 *   - a decided host is in the view and meets every constraint;
 *   - pinned (--on) and --near requests go to that host or are refused;
 *   - probes ask distinct, eligible hosts, never more than the policy's d
 *     (or one at a time, never the origin, at most lp, for threshold);
 *   - a refusal names a need, and no host is eligible when it is not a
 *     refusal of the probes themselves.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t byte(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static const char *const specs[] = {
	"random", "least-loaded", "jsq", "pod:d=1", "pod:d=2", "pod:d=3", "pod:d=64",
	"probe:d=1", "probe:d=3", "threshold:t=1,lp=1", "threshold:t=2,lp=3",
	"threshold:t=0.5,lp=64",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct policy_host hosts[24];
	struct policy_view view = { hosts, 0 };
	struct policy_request req;
	struct policy_result res;
	struct policy_session s;
	struct policy p;
	struct policy_rng rng;
	uint32_t asked_total = 0;
	uint8_t asked[24] = { 0 };
	bool any_eligible = false;
	int v, rounds = 0;

	if (policy_parse(&p, specs[byte(&in) % (sizeof(specs) / sizeof(specs[0]))], NULL))
		abort();
	view.n = byte(&in) % 25;
	for (uint32_t i = 0; i < view.n; i++) {
		uint8_t a = byte(&in), b = byte(&in);

		hosts[i] = (struct policy_host){
			.id = i, .flags = a & 3, .load = (b & 15) / 4.0,
			.mem_free = (uint64_t)(a >> 2 & 3) << 30, .ncpus = (b >> 4 & 3) + 1,
			.arch = (a >> 4) & 3, .features = (a >> 6) & 3, .tags = (b >> 6) & 3,
		};
	}
	{
		uint8_t a = byte(&in), b = byte(&in), c = byte(&in), d = byte(&in);
		int32_t origin = view.n ? (int32_t)(c % view.n) : POLICY_NO_HOST;

		policy_request_init(&req, (c & 0x80) ? POLICY_NO_HOST : origin, (d & 15) / 4.0);
		req.mem = (uint64_t)(a & 3) << 30;
		req.cpus = (a >> 2) & 3;
		req.arch = (a >> 4) & 3;
		req.features = (a >> 6) & 3;
		req.tags = b & 3;
		if (view.n && (b & 0x10))
			req.on = (int32_t)((b >> 5) % view.n);
		if (view.n && (d & 0x10))
			req.near = (int32_t)((d >> 5) % view.n);
	}
	for (uint32_t i = 0; i < view.n; i++)
		any_eligible |= policy_host_eligible(&hosts[i], &req);
	policy_rng_seed(&rng, (uint64_t)byte(&in) << 8 | byte(&in));

	policy_session_start(&s);
	while ((v = policy_decide(&p, &view, &req, &rng, NULL, &s, &res)) == POLICY_PROBE) {
		if (++rounds > POLICY_MAX_D + 1)
			abort();
		if (res.nprobe == 0)
			abort();
		if (p.kind == POLICY_KIND_THRESHOLD && res.nprobe != 1)
			abort();
		for (uint32_t i = 0; i < res.nprobe; i++) {
			uint32_t h = res.probe[i];

			if (h >= view.n || asked[h] || !policy_host_eligible(&hosts[h], &req))
				abort();
			if (p.kind == POLICY_KIND_THRESHOLD && (int32_t)h == req.origin)
				abort();
			asked[h] = 1;
			asked_total++;
		}
		/* Deciding before answering is a contract error, not a decision. */
		if (policy_decide(&p, &view, &req, &rng, NULL, &s, &res) != -POLICY_ERR_SESSION)
			abort();
		for (uint32_t i = 0; i < view.n; i++) {
			uint8_t a;

			if (!asked[i] || asked[i] == 2)
				continue;
			a = byte(&in);
			if (a & 1) {
				if (policy_answer_lost(&s, i))
					abort();
			} else if (policy_answer(&s, i, (a >> 1) / 8.0)) {
				abort();
			}
			asked[i] = 2;
		}
	}
	if ((p.kind == POLICY_KIND_PROBE && asked_total > p.d) ||
	    (p.kind == POLICY_KIND_THRESHOLD && asked_total > p.lp))
		abort();
	switch (v) {
	case POLICY_DECIDED:
		if (res.host >= view.n || !policy_host_eligible(&hosts[res.host], &req))
			abort();
		if (req.on != POLICY_NO_HOST && res.host != (uint32_t)req.on)
			abort();
		if (req.near != POLICY_NO_HOST && res.host != (uint32_t)req.near)
			abort();
		if (res.reason <= POLICY_R_NONE || res.reason >= POLICY_R_MAX)
			abort();
		break;
	case POLICY_REFUSED:
		if (res.unmet <= POLICY_UNMET_NONE || res.unmet >= POLICY_UNMET_MAX)
			abort();
		if (res.unmet != POLICY_UNMET_NO_ANSWER && res.unmet != POLICY_UNMET_CONFLICT &&
		    req.on == POLICY_NO_HOST && req.near == POLICY_NO_HOST && any_eligible)
			abort();
		break;
	case -POLICY_ERR_ORIGIN:
		if (p.kind != POLICY_KIND_THRESHOLD || req.origin != POLICY_NO_HOST)
			abort();
		break;
	default:
		abort();
	}
	return 0;
}
