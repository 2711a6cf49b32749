/*
 * libFuzzer: the control message parser. The input is a byte stream as it
 * arrives on a control connection; frames are taken off it with msg_take, as
 * every reader in roam does, until the first refusal or an incomplete frame.
 */
#include <stddef.h>
#include <stdint.h>

#include "net/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCMessage *m;
	unsigned type;
	size_t used;

	while (size > 0 && msg_take(data, size, MSG_CH_CONTROL, &type, &m, &used) > 0) {
		(void)msg_type_name(type);
		msg_free(m);
		data += used;
		size -= used;
	}
	return 0;
}
