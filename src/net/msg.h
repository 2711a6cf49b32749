/*
 * Typed, size-checked messages: the frames roamd peers and the roam CLI
 * exchange. Pure code: no I/O, no globals beyond the constant type table.
 *
 * A frame is an 8-byte header followed by its payload:
 *
 *   u32le payload length   u16le type   u16le flags (0)   payload[length]
 *
 * The payload is the protobuf message the type names (schema/wire.proto).
 * Every type has its own size limit and a channel (peer link, control socket
 * or both); a frame that is short, too long, of an unknown type, of a type
 * not allowed on its channel, with flags set, or whose payload does not decode
 * or fails the semantic checks, is refused with a typed error and the
 * receiver drops the connection (as OpenBSD's imsg does).
 */
#ifndef ROAM_NET_MSG_H
#define ROAM_NET_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "wire.pb-c.h"

/* Where roam and roamd meet when neither --control nor ROAM_CONTROL says. */
#define ROAM_CONTROL_DEFAULT "/run/roam/control.sock"

#define MSG_HDR_SIZE 8
#define MSG_MAX_PAYLOAD (1u << 20)   /* no type may exceed this */

/* Frame types. Numbers are part of the protocol: never reuse one. */
enum msg_type {
	MSG_HEARTBEAT = 1,
	MSG_PROBE_REQ = 2,
	MSG_PROBE_REP = 3,
	MSG_SPAWN     = 4,
	MSG_STARTED   = 5,
	MSG_FAILED    = 6,
	MSG_OUTPUT    = 7,
	MSG_INPUT     = 8,
	MSG_SIGNAL    = 9,
	MSG_EXITED    = 10,
	MSG_PS_REQ    = 11,
	MSG_PS_REP    = 12,
	MSG_FLOW      = 13,
	/* control socket only */
	MSG_RUN       = 32,
	MSG_ATTACH    = 33,
	MSG_WAIT      = 34,
	MSG_PS        = 35,
	MSG_PS_LIST   = 36,
	MSG_HOSTS     = 37,
	MSG_HOST_LIST = 38,
	MSG_KILL      = 39,
	MSG_RESULT    = 40,
	/* migration (peer) */
	MSG_MIG_PREPARE = 100,
	MSG_MIG_DATA    = 101,
	MSG_MIG_CTL     = 102,
	MSG_MIG_REPLY   = 103,
	MSG_MIG_HOME    = 104,
	/* migration (control; drain also between peers) */
	MSG_MIGRATE     = 110,
	MSG_MIG_PROGRESS = 111,
	MSG_DRAIN       = 112,
	MSG_MIG_DONE    = 113,
	/* a job whose home is gone finds a new one (peer) */
	MSG_REHOME_REQ  = 120,
	MSG_REHOME_REP  = 121,
	/* peer, types 200 and up */
	MSG_KILL_REQ  = 200,
	MSG_KILL_REP  = 201,
	MSG_LOCATE_REQ = 202,
	MSG_LOCATE_REP = 203,
	MSG_TYPE_MAX
};

/* Channels a type may travel on. */
#define MSG_CH_PEER    0x1u
#define MSG_CH_CONTROL 0x2u

/* Errors beyond -errno. */
enum msg_error {
	MSG_ERR_BASE     = 6300,
	MSG_ERR_SHORT    = 6301,   /* fewer bytes than the header or the length says */
	MSG_ERR_TYPE     = 6302,   /* unknown type, or not allowed on this channel */
	MSG_ERR_TOO_BIG  = 6303,   /* length beyond the type's limit */
	MSG_ERR_FLAGS    = 6304,   /* reserved bits set */
	MSG_ERR_DECODE   = 6305,   /* protobuf refused the payload */
	MSG_ERR_INVALID  = 6306,   /* decoded, but a field is out of range */
};

/* Limits the semantic checks enforce. */
#define MSG_MAX_ARGS    4096
#define MSG_MAX_ENV     4096
#define MSG_MAX_STR     65536    /* any single string */
#define MSG_MAX_ID      128      /* job ids and host names */
#define MSG_MAX_MEMBERS 1024
#define MSG_MIG_CHUNK   (256u << 10)  /* image bytes in one MigData */
#define MSG_MAX_FILES   4096     /* files a migrating process depends on */

/* MigCtl ops, MigReply steps, MigHome ops (wire.proto). */
enum { MIG_OP_COMMIT = 1, MIG_OP_ABORT = 2, MIG_OP_RESOLVE = 3 };
enum { MIG_STEP_READY = 1, MIG_STEP_BUILT = 2, MIG_STEP_COMMITTED = 3, MIG_STEP_OUTCOME = 4,
       MIG_STEP_ACK = 5 };
enum { MIG_HOME_HOLD = 1, MIG_HOME_HELD = 2, MIG_HOME_MOVED = 3, MIG_HOME_STAYED = 4, MIG_HOME_ARRIVED = 5 };

/* Returns a static human-readable name for a type, or "unknown". */
const char *msg_type_name(unsigned type);

/* Returns a static description of a msg_error (or strerror for -errno). */
const char *msg_strerror(int err);

/*
 * Reads a frame header from buf[0..len). Returns 0 and fills *type and *plen
 * when a header is there and acceptable on channel ch (the payload may still
 * be incomplete: the caller waits for MSG_HDR_SIZE + *plen bytes);
 * -MSG_ERR_SHORT when len < MSG_HDR_SIZE; another -MSG_ERR_* when the header
 * is bad and the connection must be dropped.
 */
int msg_peek(const uint8_t *buf, size_t len, unsigned ch, unsigned *type, uint32_t *plen);

/*
 * Decodes and checks one complete frame buf[0..len) (header included, exactly
 * one frame). On success returns 0 and stores the message (free it with
 * msg_free) in *out and its type in *type.
 */
int msg_decode(const uint8_t *buf, size_t len, unsigned ch, unsigned *type, ProtobufCMessage **out);

/*
 * Takes the first frame off a byte stream buf[0..len): 1 with the message in
 * *out, its type in *type and the bytes it used in *used; 0 when the frame is
 * not whole yet (wait for more); a negative -MSG_ERR_* when the stream is bad
 * and the connection must be dropped. Every reader of a stream calls this.
 */
int msg_take(const uint8_t *buf, size_t len, unsigned ch, unsigned *type, ProtobufCMessage **out,
	     size_t *used);

void msg_free(ProtobufCMessage *m);

/* The payload limit of a type (0: no such type). */
size_t msg_type_max(unsigned type);

/* Size of the frame msg_encode would write for m. */
size_t msg_frame_size(const ProtobufCMessage *m);

/*
 * Encodes m as a frame of the given type into out (at least msg_frame_size
 * bytes). Returns the frame length, or -MSG_ERR_TYPE if m is not the type's
 * message, -MSG_ERR_TOO_BIG beyond the type's limit.
 */
long msg_encode(unsigned type, const ProtobufCMessage *m, uint8_t *out, size_t cap);

/*
 * The semantic checks msg_decode applies after protobuf accepted a payload:
 * ids and names short and printable, argv non-empty, counts bounded, output
 * fds 1 or 2, signals 1..64. Exposed for tests.
 */
int msg_check(unsigned type, const ProtobufCMessage *m);

/* Job ids: "HOST.SEQ". Returns 0 and splits into host (NUL-terminated,
 * at most hostcap bytes with the NUL) and seq, or -EINVAL. */
int msg_parse_job_id(const char *id, char *host, size_t hostcap, uint64_t *seq);

/* A host name or tag: 1..63 bytes of [A-Za-z0-9_-]. */
int msg_valid_name(const char *s);

#endif
