/*
 * libFuzzer: runwire's decoders (roam run's before-libc relay) against the
 * real one. The input is one frame as roamd would send it on a control
 * connection; whatever runwire takes, msg_decode must take too, as the same
 * type and with the same values: runwire may refuse more, never less.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/msg.h"
#include "net/runwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data + MSG_HDR_SIZE, *out;
	ProtobufCMessage *m = NULL;
	unsigned type, mtype, fd;
	size_t fsize, n, len;
	int status;

	if (runwire_frame(data, size, 128u << 10, &type, &fsize) != 1)
		return 0;
	n = fsize - MSG_HDR_SIZE;
	if (type == MSG_STARTED && runwire_started(p, n) == 0) {
		if (msg_decode(data, fsize, MSG_CH_CONTROL, &mtype, &m) || mtype != MSG_STARTED)
			abort();
	} else if (type == MSG_OUTPUT && runwire_output(p, n, &fd, &out, &len) == 0) {
		Roamnet__Output *o;
		if (msg_decode(data, fsize, MSG_CH_CONTROL, &mtype, &m) || mtype != MSG_OUTPUT)
			abort();
		o = (Roamnet__Output *)m;
		if (o->fd != fd || o->data.len != len || (len && memcmp(o->data.data, out, len)))
			abort();
	} else if (type == MSG_EXITED && runwire_exited(p, n, &status) == 0) {
		if (msg_decode(data, fsize, MSG_CH_CONTROL, &mtype, &m) || mtype != MSG_EXITED ||
		    ((Roamnet__Exited *)m)->status != status)
			abort();
	}
	if (m)
		msg_free(m);
	return 0;
}
