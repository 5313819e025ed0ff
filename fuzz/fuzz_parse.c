/* fuzz_parse.c - the text parsers on arbitrary input, with round trips:
 * whatever is accepted, formatted and parsed again, gives the same value
 * (and canonical handles are a fixed point). A mismatch aborts.
 *
 * The input is used as one NUL-terminated string; its first 8 bytes are
 * also taken as a time for ql_time_format. */
#include "querylog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW INT64_C(1793534400000000) /* 2026-11-01T12:00:00Z */
/* 10000-01-01T00:00:00Z: the formatter's four-digit years end here */
#define YEAR10K INT64_C(253402300800000000)

static void handle(const char *s)
{
	char out[QL_HANDLE_MAX + 1], again[QL_HANDLE_MAX + 1];

	if (ql_handle_parse(out, sizeof(out), s, "handle"))
		return;
	if (strlen(out) > QL_HANDLE_MAX || strlen(out) > strlen(s))
		abort();
	if (ql_handle_parse(again, sizeof(again), out, "handle") ||
	    strcmp(out, again))
		abort();
}

static void ip(const char *s)
{
	uint8_t a[16], b[16];
	char txt[64];

	if (ql_ip_parse(a, s, "ip"))
		return;
	if (ql_ip_format(txt, 46, a) < 0 || ql_ip_parse(b, txt, "ip") ||
	    memcmp(a, b, 16))
		abort();
}

static void cidr(const char *s)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					    0xff, 0xff };
	uint8_t a[16], b[16];
	unsigned pa, pb;
	char addr[64], txt[80];

	if (ql_cidr_parse(a, &pa, s, "cidr"))
		return;
	if (pa > 128 || ql_ip_format(addr, 46, a) < 0)
		abort();
	if (!memcmp(a, mapped, 12) && pa >= 96)
		snprintf(txt, sizeof(txt), "%s/%u", addr, pa - 96);
	else if (!memcmp(a, mapped, 12))
		snprintf(txt, sizeof(txt), "::ffff:%s/%u", addr, pa);
	else
		snprintf(txt, sizeof(txt), "%s/%u", addr, pa);
	if (ql_cidr_parse(b, &pb, txt, "cidr") || pa != pb ||
	    memcmp(a, b, 16))
		abort();
}

static void time_one(const char *s)
{
	char txt[40];
	int64_t t, u;

	if (ql_time_parse(&t, s, NOW, "time"))
		return;
	/* integers and relative times reach any int64; the formatter's
	 * RFC 3339 covers 1970..9999, the parser's too */
	if (t < 0 || t >= YEAR10K)
		return;
	if (ql_time_format(txt, sizeof(txt), t) < 0 ||
	    ql_time_parse(&u, txt, NOW, "time") || t != u)
		abort();
}

static void duration(const char *s)
{
	char txt[40];
	int64_t d, e;

	if (ql_duration_parse(&d, s, "duration"))
		return;
	/* every unit is whole seconds */
	if (d <= 0 || d % 1000000)
		abort();
	snprintf(txt, sizeof(txt), "%" PRId64 "s", d / 1000000);
	if (ql_duration_parse(&e, txt, "duration") || d != e)
		abort();
}

static void format_any(const uint8_t *data, size_t size)
{
	uint8_t b[8] = { 0 };
	char txt[32], small[8];
	int64_t t;
	int n;

	memcpy(b, data, size < 8 ? size : 8);
	memcpy(&t, b, 8);
	n = ql_time_format(txt, sizeof(txt), t);
	if (n < 0 || (size_t)n != strlen(txt))
		abort();
	/* a short buffer is cut and terminated, never overrun */
	if (ql_time_format(small, sizeof(small), t) != -1 ||
	    strlen(small) != sizeof(small) - 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	handle(s);
	ip(s);
	cidr(s);
	time_one(s);
	duration(s);
	format_any(data, size);
	free(s);
	return 0;
}
