/*
 * roam run's frames by hand (see runwire.h). Nothing here may call a
 * function it does not define: before the C library has started, memcpy
 * and strlen are IFUNCs not yet resolved. Every byte loop holds an empty
 * asm statement so that the compiler cannot turn it into such a call.
 */
#include "net/runwire.h"

#include "net/msg.h"

#define BARRIER() __asm__ volatile("" ::: "memory")

enum { WT_VARINT = 0, WT_LEN = 2 };

static size_t slen(const char *s)
{
	size_t n = 0;

	while (s[n]) {
		BARRIER();
		n++;
	}
	return n;
}

static bool streq(const char *a, const char *b)
{
	for (;; a++, b++) {
		BARRIER();
		if (*a != *b)
			return false;
		if (!*a)
			return true;
	}
}

static bool prefix(const char *s, const char *p)
{
	for (; *p; s++, p++) {
		BARRIER();
		if (*s != *p)
			return false;
	}
	return true;
}

int runwire_strip_control(int argc, char **argv, char **out, const char **path)
{
	int n = 0;

	for (int i = 0; i < argc; i++) {
		if (streq(argv[i], "--")) {
			while (i < argc)
				out[n++] = argv[i++];
			break;
		}
		if (streq(argv[i], "--control") && i + 1 < argc) {
			*path = argv[++i];
			continue;
		}
		if (prefix(argv[i], "--control=")) {
			*path = argv[i] + 10;
			continue;
		}
		out[n++] = argv[i];
	}
	return n;
}

void run_opts_parse(int argc, char **argv, struct run_opts *o)
{
	int i;

	o->status = RUN_OPTS_OK;
	o->bad = o->policy = o->need = o->near = o->on = NULL;
	o->explain = o->detach = o->json = false;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (streq(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (streq(a, "-h") || streq(a, "--help")) {
			o->status = RUN_OPTS_HELP;
			return;
		}
		if (streq(a, "--explain"))
			o->explain = true;
		else if (streq(a, "--detach") || streq(a, "-d"))
			o->detach = true;
		else if (streq(a, "--json"))
			o->json = true;
		else if (i + 1 < argc && streq(a, "--policy"))
			o->policy = argv[++i];
		else if (i + 1 < argc && streq(a, "--need"))
			o->need = argv[++i];
		else if (i + 1 < argc && streq(a, "--near"))
			o->near = argv[++i];
		else if (i + 1 < argc && streq(a, "--on"))
			o->on = argv[++i];
		else {
			o->status = RUN_OPTS_UNKNOWN;
			o->bad = a;
			return;
		}
	}
	o->cmd = i;
	if (i >= argc)
		o->status = RUN_OPTS_NO_CMD;
}

/* ---- encoding, as protobuf-c packs: fields in number order ---- */

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static size_t str_field_size(const char *s)
{
	size_t n = slen(s);

	return 1 + varint_size(n) + n;
}

static uint8_t *put_str(uint8_t *p, unsigned field, const char *s)
{
	size_t n = slen(s);

	*p++ = (uint8_t)(field << 3 | WT_LEN);
	p = put_varint(p, n);
	for (size_t i = 0; i < n; i++) {
		BARRIER();
		p[i] = (uint8_t)s[i];
	}
	return p + n;
}

static size_t limit_size(const struct run_limit *l)
{
	return 3 + varint_size(l->resource) + varint_size(l->soft) + varint_size(l->hard);
}

static size_t payload_size(const struct run_req *r)
{
	const struct run_opts *o = r->o;
	size_t n = 0;

	for (size_t i = 0; i < r->argc; i++)
		n += str_field_size(r->argv[i]);
	for (size_t i = 0; i < r->nenv; i++)
		n += str_field_size(r->env[i]);
	n += str_field_size(r->cwd);
	n += 1 + varint_size(r->umask);
	for (size_t i = 0; i < r->nlim; i++) {
		size_t l = limit_size(&r->lim[i]);
		n += 1 + varint_size(l) + l;
	}
	if (o->policy)
		n += str_field_size(o->policy);
	if (o->need)
		n += str_field_size(o->need);
	if (o->near)
		n += str_field_size(o->near);
	if (o->on)
		n += str_field_size(o->on);
	n += o->detach ? 2 : 0;
	n += o->explain ? 2 : 0;
	return n;
}

static uint8_t *put_header(uint8_t *p, size_t len, unsigned type)
{
	p[0] = (uint8_t)len;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 24);
	p[4] = (uint8_t)type;
	p[5] = (uint8_t)(type >> 8);
	p[6] = p[7] = 0;
	return p + MSG_HDR_SIZE;
}

size_t runwire_run_size(const struct run_req *r)
{
	return MSG_HDR_SIZE + payload_size(r);
}

void runwire_run_encode(const struct run_req *r, uint8_t *out)
{
	const struct run_opts *o = r->o;
	uint8_t *p = put_header(out, payload_size(r), MSG_RUN);

	for (size_t i = 0; i < r->argc; i++)
		p = put_str(p, 1, r->argv[i]);
	for (size_t i = 0; i < r->nenv; i++)
		p = put_str(p, 2, r->env[i]);
	p = put_str(p, 3, r->cwd);
	*p++ = 4 << 3 | WT_VARINT;
	p = put_varint(p, r->umask);
	for (size_t i = 0; i < r->nlim; i++) {
		const struct run_limit *l = &r->lim[i];
		*p++ = 5 << 3 | WT_LEN;
		p = put_varint(p, limit_size(l));
		*p++ = 1 << 3 | WT_VARINT;
		p = put_varint(p, l->resource);
		*p++ = 2 << 3 | WT_VARINT;
		p = put_varint(p, l->soft);
		*p++ = 3 << 3 | WT_VARINT;
		p = put_varint(p, l->hard);
	}
	if (o->policy)
		p = put_str(p, 6, o->policy);
	if (o->need)
		p = put_str(p, 7, o->need);
	if (o->near)
		p = put_str(p, 8, o->near);
	if (o->on)
		p = put_str(p, 9, o->on);
	if (o->detach) {
		*p++ = 10 << 3 | WT_VARINT;
		*p++ = 1;
	}
	if (o->explain) {
		*p++ = 11 << 3 | WT_VARINT;
		*p++ = 1;
	}
}

void runwire_eof_encode(uint8_t out[RUNWIRE_EOF_SIZE])
{
	uint8_t *p = put_header(out, 4, MSG_INPUT);

	p[0] = 1 << 3 | WT_LEN;   /* id: "" (its own job) */
	p[1] = 0;
	p[2] = 3 << 3 | WT_VARINT;   /* eof: true */
	p[3] = 1;
}

/* ---- decoding ---- */

int runwire_frame(const uint8_t *p, size_t n, size_t max, unsigned *type, size_t *size)
{
	uint32_t len;

	if (n < MSG_HDR_SIZE)
		return 0;
	len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	if (p[6] || p[7] || len > max)
		return -1;
	*type = (unsigned)p[4] | (unsigned)p[5] << 8;
	*size = MSG_HDR_SIZE + (size_t)len;
	return n >= *size ? 1 : 0;
}

/* One field of a payload: its number and wire type, and its value (a
 * varint, or the bytes of a length-delimited field). */
struct field {
	unsigned num;
	unsigned wt;
	uint64_t v;
	const uint8_t *data;
	size_t len;
};

/* Reads a varint at *p (bounded by end); false when malformed. */
static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* The next field at *p: 1, 0 at the end, -1 when malformed (or a wire type
 * no message here uses). */
static int next_field(const uint8_t **p, const uint8_t *end, struct field *f)
{
	uint64_t tag;

	if (*p >= end)
		return 0;
	if (!get_varint(p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 15)
		return -1;
	f->num = (unsigned)(tag >> 3);
	f->wt = (unsigned)(tag & 7);
	if (f->wt == WT_VARINT)
		return get_varint(p, end, &f->v) ? 1 : -1;
	if (f->wt != WT_LEN || !get_varint(p, end, &f->v) || f->v > (uint64_t)(end - *p))
		return -1;
	f->data = *p;
	f->len = (size_t)f->v;
	*p += f->len;
	return 1;
}

static bool name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-';
}

/* A host name (msg_valid_name): 1 to 63 of [A-Za-z0-9_-]. */
static bool valid_name(const uint8_t *s, size_t n)
{
	if (n < 1 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		BARRIER();
		if (!name_char(s[i]))
			return false;
	}
	return true;
}

/* A job id as msg_parse_job_id takes it: HOST.SEQ. */
static bool valid_id(const uint8_t *s, size_t n)
{
	size_t dot = n;
	uint64_t v = 0;

	if (n >= MSG_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		BARRIER();
		if (s[i] == '.')
			dot = i;
	}
	if (dot == n || dot + 1 == n || !valid_name(s, dot))
		return false;
	for (size_t i = dot + 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > UINT64_MAX / 10 - 1)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return true;
}

int runwire_started(const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	bool id = false, host = false;
	struct field f;
	int r;

	while ((r = next_field(&p, end, &f)) == 1) {
		if (f.num == 1 && f.wt == WT_LEN)
			id = valid_id(f.data, f.len);
		else if (f.num == 2 && f.wt == WT_LEN)
			host = valid_name(f.data, f.len);
		else if (f.num == 3 && f.wt == WT_VARINT)
			;
		else if (!(f.num == 4 && f.wt == WT_LEN && f.len < MSG_MAX_STR))
			return -1;
	}
	return r == 0 && id && host ? 0 : -1;
}

int runwire_output(const uint8_t *p, size_t n, unsigned *fd, const uint8_t **data, size_t *len)
{
	const uint8_t *end = p + n;
	bool id = false, has_fd = false, has_data = false;
	struct field f;
	int r;

	while ((r = next_field(&p, end, &f)) == 1) {
		if (f.num == 1 && f.wt == WT_LEN) {
			id = valid_id(f.data, f.len);
		} else if (f.num == 2 && f.wt == WT_VARINT) {
			has_fd = f.v == 1 || f.v == 2;
			*fd = (unsigned)f.v;
		} else if (f.num == 3 && f.wt == WT_LEN) {
			has_data = true;
			*data = f.data;
			*len = f.len;
		} else {
			return -1;
		}
	}
	return r == 0 && id && has_fd && has_data ? 0 : -1;
}

int runwire_exited(const uint8_t *p, size_t n, int *status)
{
	const uint8_t *end = p + n;
	bool id = false, has_status = false;
	struct field f;
	int r;

	while ((r = next_field(&p, end, &f)) == 1) {
		if (f.num == 1 && f.wt == WT_LEN) {
			id = valid_id(f.data, f.len);
		} else if (f.num == 2 && f.wt == WT_VARINT) {
			has_status = f.v <= 0xffff;
			*status = (int)f.v;
		} else {
			return -1;
		}
	}
	return r == 0 && id && has_status ? 0 : -1;
}
