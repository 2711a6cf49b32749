#include "sys/fileid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

int file_hash(int fd, uint8_t out[16], uint64_t *size)
{
	XXH3_state_t *st = XXH3_createState();
	const size_t bufsz = 1 << 20;
	char *buf = malloc(bufsz);
	off_t off = 0;
	int rc = 0;

	if (!st || !buf) {
		rc = -ENOMEM;
		goto out;
	}
	XXH3_128bits_reset(st);
	for (;;) {
		ssize_t n = pread(fd, buf, bufsz, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		XXH3_128bits_update(st, buf, (size_t)n);
		off += n;
	}
	XXH128_canonical_t canon;
	XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(st));
	memcpy(out, canon.digest, 16);
	*size = (uint64_t)off;
out:
	free(buf);
	XXH3_freeState(st);
	return rc;
}
