/*
 * ndjson.c - logtool's record line format (see ndjson.h): parsing one
 * NDJSON line into a ql_record, and printing a ql_record as one.
 */
#include "ndjson.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#if defined(__GNUC__)
#define ND_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ND_PRINTF(a, b)
#endif

enum field {
	F_TS,
	F_REQUESTER,
	F_TARGET,
	F_IP,
	F_SERVICE,
	F_RESULT,
	F_COUNT
};

static const char *const field_names[F_COUNT] = {
	"ts", "requester", "target", "ip", "service", "result"
};

static const char *lib_msg(int rc)
{
	const char *m = ql_errmsg(NULL);

	return m[0] ? m : ql_strerror(rc);
}

static int ND_PRINTF(3, 4) fail(char *msg, size_t sz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sz, fmt, ap);
	va_end(ap);
	return -1;
}

/* A key from the input, quoted for a message: printable ASCII as is,
 * anything else as \xNN, cut after 40 bytes. */
static void quote_key(char *out, size_t sz, const char *key)
{
	size_t o = 0, i;

	out[o++] = '"';
	for (i = 0; key[i] && i < 40 && o + 8 < sz; i++) {
		unsigned char c = (unsigned char)key[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sz - o, "\\x%02x", c);
	}
	if (key[i] && o + 5 < sz) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = '\0';
}

static int parse_ts(ql_record *r, json_t *v, int64_t now, char *msg,
		    size_t sz)
{
	int rc;

	if (json_is_integer(v)) {
		r->ts = (int64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return fail(msg, sz, "ts: must be an integer of microseconds "
			    "or a time string");
	rc = ql_time_parse(&r->ts, json_string_value(v), now, "ts");
	if (rc != QL_OK)
		return fail(msg, sz, "%s", lib_msg(rc));
	return 0;
}

static int parse_service(ql_record *r, json_t *v, char *msg, size_t sz)
{
	const char *s;

	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= 255) {
		r->service = (uint8_t)json_integer_value(v);
		return 0;
	}
	s = json_is_string(v) ? json_string_value(v) : "";
	if (strcmp(s, "messages") == 0) {
		r->service = QL_SERVICE_MESSAGES;
		return 0;
	}
	if (strcmp(s, "facetime") == 0) {
		r->service = QL_SERVICE_FACETIME;
		return 0;
	}
	return fail(msg, sz, "service: must be a number 0..255, "
		    "\"messages\" or \"facetime\"");
}

static int parse_result(ql_record *r, json_t *v, char *msg, size_t sz)
{
	if (json_is_boolean(v)) {
		r->result = json_is_true(v);
		return 0;
	}
	if (json_is_integer(v) && (json_integer_value(v) == 0 ||
				   json_integer_value(v) == 1)) {
		r->result = (uint8_t)json_integer_value(v);
		return 0;
	}
	return fail(msg, sz, "result: must be true, false, 0 or 1");
}

static int parse_field(ql_record *r, enum field f, json_t *v, int64_t now,
		       char *msg, size_t sz)
{
	int rc;

	switch (f) {
	case F_TS:
		return parse_ts(r, v, now, msg, sz);
	case F_REQUESTER:
	case F_TARGET:
		if (!json_is_string(v))
			return fail(msg, sz, "%s: must be a string",
				    field_names[f]);
		/* Validated and canonicalised by ql_append. */
		if (f == F_REQUESTER)
			r->requester = json_string_value(v);
		else
			r->target = json_string_value(v);
		return 0;
	case F_IP:
		if (!json_is_string(v))
			return fail(msg, sz, "ip: must be a string");
		rc = ql_ip_parse(r->ip, json_string_value(v), "ip");
		if (rc != QL_OK)
			return fail(msg, sz, "%s", lib_msg(rc));
		return 0;
	case F_SERVICE:
		return parse_service(r, v, msg, sz);
	case F_RESULT:
		return parse_result(r, v, msg, sz);
	default:
		return fail(msg, sz, "internal error: field %d", (int)f);
	}
}

static int record_from_json(ql_record *r, json_t *obj, int64_t now,
			    char *msg, size_t sz)
{
	const char *key;
	json_t *v;
	unsigned seen = 0;
	int f;

	if (!json_is_object(obj))
		return fail(msg, sz, "not a JSON object");
	memset(r, 0, sizeof(*r));
	json_object_foreach(obj, key, v) {
		for (f = 0; f < F_COUNT; f++)
			if (strcmp(key, field_names[f]) == 0)
				break;
		if (f == F_COUNT) {
			char q[200];

			quote_key(q, sizeof(q), key);
			return fail(msg, sz, "unknown key %s", q);
		}
		if (parse_field(r, (enum field)f, v, now, msg, sz) < 0)
			return -1;
		seen |= 1u << f;
	}
	for (f = 0; f < F_COUNT; f++)
		if (!(seen & (1u << f)))
			return fail(msg, sz, "missing key \"%s\"",
				    field_names[f]);
	return 0;
}

/* jansson's message, for one printable line: it quotes the input near the
 * error as is, control characters included; those, and any byte that is
 * not printable ASCII, become \xNN (as in quote_key). */
static void printable(char *out, size_t sz, const char *in)
{
	size_t o = 0;

	for (; *in && o + 5 < sz; in++) {
		unsigned char c = (unsigned char)*in;

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sz - o, "\\x%02x", c);
	}
	out[o] = '\0';
}

static int blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!strchr(" \t\r\n", s[i]) || s[i] == '\0')
			return 0;
	return 1;
}

int ndjson_parse_line(ql_record *r, json_t **owner, const char *buf,
		      size_t len, int64_t now, char *msg, size_t sz)
{
	json_error_t jerr;
	json_t *obj;

	*owner = NULL;
	if (blank(buf, len))
		return NDJSON_BLANK;
	obj = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj) {
		char text[4 * JSON_ERROR_TEXT_LENGTH];

		printable(text, sizeof(text), jerr.text);
		snprintf(msg, sz, "invalid JSON at column %d: %s",
			 jerr.column, text);
		return NDJSON_BAD;
	}
	if (record_from_json(r, obj, now, msg, sz) < 0) {
		json_decref(obj);
		return NDJSON_BAD;
	}
	*owner = obj;
	return NDJSON_RECORD;
}

void ndjson_release(json_t *owner)
{
	json_decref(owner);
}

char *ndjson_format(const ql_record *r, char *buf, size_t sz, size_t *len)
{
	const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
	char ip[64], *s = NULL;
	json_t *o;
	size_t n;

	ql_ip_format(ip, sizeof(ip), r->ip);
	o = json_pack("{s:I,s:s,s:s,s:s,s:i,s:i}",
		      "ts", (json_int_t)r->ts,
		      "requester", r->requester,
		      "target", r->target,
		      "ip", ip,
		      "service", (int)r->service,
		      "result", (int)r->result);
	if (!o)
		return NULL;
	n = sz ? json_dumpb(o, buf, sz - 1, flags) : 0;
	if (n > 0 && n < sz) {
		buf[n] = '\0';
		s = buf;
	} else {
		/* Only with very long escaped handles. */
		s = json_dumps(o, flags);
		n = s ? strlen(s) : 0;
	}
	json_decref(o);
	*len = n;
	return s;
}
