/*
 * Host identity and the compatibility rule of migration (see ident.h).
 */
#include "cluster/ident.h"

#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <xxhash.h>

#include "cluster/cluster.h"

/* The size of our own vDSO mapping, from /proc/self/maps. */
static size_t vdso_size(uint64_t base)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	size_t size = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		if (sscanf(line, "%llx-%llx", &s, &e) == 2 && s == base && strstr(line, "[vdso]")) {
			size = (size_t)(e - s);
			break;
		}
	}
	fclose(f);
	return size;
}

void ident_self(struct host_ident *id, const char (*hide)[64], unsigned nhide, const char *vdso_id)
{
	struct host_load l;
	uint64_t base = getauxval(AT_SYSINFO_EHDR);
	size_t vsz = base ? vdso_size(base) : 0;
	XXH128_canonical_t canon;

	memset(id, 0, sizeof(*id));
	load_machine(&l);
	memcpy(id->arch, l.arch, sizeof(id->arch));
	id->features = l.features;
	for (unsigned i = 0; i < nhide; i++)
		for (unsigned k = 0; k < cl_nfeatures; k++)
			if (!strcmp(hide[i], cl_features[k]))
				id->features &= ~(1ull << k);
	arch_cpuid_features(id->cpuid);
	id->xfeatures = arch_xfeatures();
	id->xsave_size = arch_xsave_size();
	if (vdso_id && vdso_id[0]) {
		XXH128_canonicalFromHash(&canon, XXH3_128bits(vdso_id, strlen(vdso_id)));
		id->has_vdso = true;
	} else if (vsz) {
		XXH128_canonicalFromHash(&canon, XXH3_128bits((const void *)(uintptr_t)base, vsz));
		id->has_vdso = true;
	}
	if (id->has_vdso)
		memcpy(id->vdso, canon.digest, 16);
}

int ident_check(const struct host_ident *src, const struct host_ident *dst, char *why, size_t cap)
{
	uint64_t missing;

	if (strcmp(src->arch, dst->arch)) {
		snprintf(why, cap, "architecture %s, the process runs on %s", dst->arch[0] ? dst->arch : "?",
			 src->arch);
		return -1;
	}
	if ((missing = src->features & ~dst->features)) {
		size_t n = (size_t)snprintf(why, cap, "CPU lacks features the source offers:");
		for (unsigned k = 0; k < cl_nfeatures && n < cap; k++)
			if (missing & (1ull << k))
				n += (size_t)snprintf(why + n, cap - n, " %s", cl_features[k]);
		return -1;
	}
	for (unsigned i = 0; i < ARCH_CPUID_WORDS; i++)
		if (src->cpuid[i] & ~dst->cpuid[i]) {
			snprintf(why, cap, "CPU lacks features the source offers (CPUID word %u: %08x)", i,
				 src->cpuid[i] & ~dst->cpuid[i]);
			return -1;
		}
	if (src->xfeatures & ~dst->xfeatures) {
		snprintf(why, cap, "XSAVE features %#llx missing (the source has %#llx)",
			 (unsigned long long)(src->xfeatures & ~dst->xfeatures),
			 (unsigned long long)src->xfeatures);
		return -1;
	}
	if (src->xfeatures == dst->xfeatures && src->xsave_size != dst->xsave_size) {
		snprintf(why, cap, "XSAVE layout differs (%u bytes here, %u at the source)", dst->xsave_size,
			 src->xsave_size);
		return -1;
	}
	if (src->has_vdso != dst->has_vdso || (src->has_vdso && memcmp(src->vdso, dst->vdso, 16))) {
		snprintf(why, cap, "vDSO differs from the source's (another kernel build)");
		return -1;
	}
	return 0;
}
