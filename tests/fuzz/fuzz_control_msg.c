/*
 * libFuzzer: the control message parser. The input is a byte stream as it
 * arrives on a control connection; it is split into frames and each frame
 * decoded and checked exactly as roamd does it, until the first refusal.
 */
#include <stddef.h>
#include <stdint.h>

#include "net/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	while (size > 0) {
		ProtobufCMessage *m;
		unsigned type;
		uint32_t plen;
		size_t flen;

		if (msg_peek(data, size, MSG_CH_CONTROL, &type, &plen))
			break;
		flen = MSG_HDR_SIZE + (size_t)plen;
		if (flen > size)
			break;
		if (msg_decode(data, flen, MSG_CH_CONTROL, &type, &m))
			break;
		(void)msg_type_name(type);
		msg_free(m);
		data += flen;
		size -= flen;
	}
	return 0;
}
