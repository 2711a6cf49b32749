/*
 * A host's identity as far as a running process can tell: what it may have
 * picked at start-up (CPU features, the XSAVE layout) and what it holds
 * addresses into (the vDSO). A process moves only to a host that offers all
 * of the source's: ident_check is the rule, pure, shared by roamd and tests.
 */
#ifndef ROAM_CLUSTER_IDENT_H
#define ROAM_CLUSTER_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h"

struct host_ident {
	char arch[72];
	uint64_t features;              /* bits of cl_features */
	uint32_t cpuid[ARCH_CPUID_WORDS];
	uint64_t xfeatures;
	uint32_t xsave_size;
	uint8_t vdso[16];               /* XXH3-128 of the vDSO image */
	bool has_vdso;
};

/* This machine's identity. hide lists cl_features names to advertise as
 * missing and vdso_id, when non-empty, replaces the vDSO's hash by the hash
 * of that string: test-only overrides, so that refusals can be tested on
 * one machine. */
void ident_self(struct host_ident *id, const char (*hide)[64], unsigned nhide, const char *vdso_id);

/* 0 when a process started under src may run under dst; otherwise -1 and
 * why says which difference forbids it. */
int ident_check(const struct host_ident *src, const struct host_ident *dst, char *why, size_t cap);

#endif
