/* test_parse.c - tests of the parsing and formatting helpers (parse.c).
 *
 * Each rule of the contract in querylog.h is checked with accepted and
 * refused inputs; refusals must name the field and the value. Besides
 * fixed cases there are differential checks against the libc (inet_pton,
 * inet_ntop, gmtime_r: independent implementations) and round trips over
 * many random values. Randomness is a fixed-seed PRNG: runs repeat.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "querylog.h"

#define US INT64_C(1000000)
#define DAY_US (86400 * US)

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */
/* ---------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

/* xorshift64*: deterministic, good enough to spread test inputs. */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1du;
}

/* Checks that rc is QL_EINVAL and that the message starts with the field,
 * contains the value (as given: already in its quoted, escaped form when
 * quoted is NULL, else quoted here), contains rule (if not NULL) and is
 * one line of printable ASCII. */
static void check_err(int rc, const char *field, const char *value,
		      const char *rule, int line)
{
	const char *m = ql_errmsg(NULL);
	char q[600];
	const unsigned char *p;

	if (rc != QL_EINVAL)
		fail_msg("line %d: rc %d, want QL_EINVAL (msg: %s)", line, rc,
			 m);
	if (strncmp(m, field, strlen(field)) || m[strlen(field)] != ' ')
		fail_msg("line %d: message does not start with field %s: %s",
			 line, field, m);
	if (value) {
		snprintf(q, sizeof(q), "\"%s\"", value);
		if (!strstr(m, q))
			fail_msg("line %d: message lacks value %s: %s", line,
				 q, m);
	}
	if (rule && !strstr(m, rule))
		fail_msg("line %d: message lacks rule '%s': %s", line, rule,
			 m);
	for (p = (const unsigned char *)m; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			fail_msg("line %d: unprintable byte 0x%02x in message",
				 line, *p);
}

#define ERR(call, field, value, rule) \
	check_err((call), (field), (value), (rule), __LINE__)

/* Parses a handle expecting success and the canonical form want. */
static void handle_ok(const char *in, const char *want, int line)
{
	char out[QL_HANDLE_MAX + 1];
	int rc = ql_handle_parse(out, sizeof(out), in, "requester");

	if (rc != QL_OK)
		fail_msg("line %d: %s: rc %d: %s", line, in, rc,
			 ql_errmsg(NULL));
	if (strcmp(out, want))
		fail_msg("line %d: %s gave %s, want %s", line, in, out, want);
}
#define HANDLE_OK(in, want) handle_ok((in), (want), __LINE__)

/* Refused handle: the value is quoted as is (no escaping expected). */
#define HANDLE_BAD(in, rule) do { \
	char out_[QL_HANDLE_MAX + 1]; \
	ERR(ql_handle_parse(out_, sizeof(out_), (in), "requester"), \
	    "requester", (in), (rule)); \
} while (0)

static void ip_ok(const char *in, const char *want_fmt, int line)
{
	uint8_t ip[16];
	char s[64];
	int rc = ql_ip_parse(ip, in, "ip");

	if (rc != QL_OK)
		fail_msg("line %d: %s: rc %d: %s", line, in, rc,
			 ql_errmsg(NULL));
	ql_ip_format(s, sizeof(s), ip);
	if (strcmp(s, want_fmt))
		fail_msg("line %d: %s formats as %s, want %s", line, in, s,
			 want_fmt);
}
#define IP_OK(in, want) ip_ok((in), (want), __LINE__)

#define IP_BAD(in, rule) do { \
	uint8_t ip_[16]; \
	ERR(ql_ip_parse(ip_, (in), "ip"), "ip", (in), (rule)); \
} while (0)

static void time_ok(const char *in, int64_t now, int64_t want, int line)
{
	int64_t t = -42;
	int rc = ql_time_parse(&t, in, now, "--since");

	if (rc != QL_OK)
		fail_msg("line %d: %s: rc %d: %s", line, in, rc,
			 ql_errmsg(NULL));
	if (t != want)
		fail_msg("line %d: %s gave %" PRId64 ", want %" PRId64, line,
			 in, t, want);
}
#define TIME_OK(in, want) time_ok((in), 0, (want), __LINE__)
#define TIME_NOW_OK(in, now, want) time_ok((in), (now), (want), __LINE__)

#define TIME_BAD(in, rule) do { \
	int64_t t_ = 7; \
	ERR(ql_time_parse(&t_, (in), 0, "--since"), "--since", (in), \
	    (rule)); \
	assert_int_equal(t_, 7); \
} while (0)

/* ---------------------------------------------------------------------- */
/* Handles                                                                 */
/* ---------------------------------------------------------------------- */

static void test_handle_phone_ok(void **state)
{
	(void)state;
	HANDLE_OK("+14155550123", "+14155550123");
	HANDLE_OK("tel:+14155550123", "+14155550123");
	HANDLE_OK("TEL:+14155550123", "+14155550123");
	HANDLE_OK("Tel:+447700900123", "+447700900123");
	HANDLE_OK("+12345678", "+12345678");               /* 8 digits */
	HANDLE_OK("+123456789012345", "+123456789012345"); /* 15 digits */
}

static void test_handle_phone_bad(void **state)
{
	char out[QL_HANDLE_MAX + 1];

	(void)state;
	/* The exact message of the brief. */
	assert_int_equal(ql_handle_parse(out, sizeof(out), "+1415",
					 "requester"), QL_EINVAL);
	assert_string_equal(ql_errmsg(NULL), "requester \"+1415\": phone "
			    "number must be \"+\" and 8 to 15 digits");

	HANDLE_BAD("+1234567", "8 to 15 digits");
	HANDLE_BAD("+1234567890123456", "8 to 15 digits");
	HANDLE_BAD("+", "8 to 15 digits");
	HANDLE_BAD("+04155550123", "first digit");
	HANDLE_BAD("+1 415 555 0123", "without spaces, dashes");
	HANDLE_BAD("+1-415-555-0123", "without spaces, dashes");
	HANDLE_BAD("+1(415)5550123", "parentheses");
	HANDLE_BAD("+1.415.555.0123", "dots");
	HANDLE_BAD("+1415555012x", "8 to 15 digits");
	HANDLE_BAD("tel:+14155550123;ext=1", "8 to 15 digits");
	HANDLE_BAD("14155550123", "must start with \"+\"");
	HANDLE_BAD("(415) 555-0123", "must start with \"+\"");
	HANDLE_BAD("tel:14155550123", "must start with \"+\"");
	HANDLE_BAD("tel:", "nothing after \"tel:\"");
	HANDLE_BAD("tel: +14155550123", "must start with \"+\"");
	HANDLE_BAD("+14155550123 ", "without spaces");
}

static void test_handle_email_ok(void **state)
{
	char local64[80], dom[300], addr[400];

	(void)state;
	HANDLE_OK("alice@example.com", "alice@example.com");
	/* The local part keeps its case, the domain is lower-cased. */
	HANDLE_OK("Alice.Smith@Example.COM", "Alice.Smith@example.com");
	HANDLE_OK("mailto:bob@example.org", "bob@example.org");
	HANDLE_OK("MAILTO:Bob@EXAMPLE.Org", "Bob@example.org");
	HANDLE_OK("a!#$%&'*+-/=?^_`{|}~z@x.io", "a!#$%&'*+-/=?^_`{|}~z@x.io");
	/* A leading '+' with an '@' is an email, not a phone. */
	HANDLE_OK("+tag@example.com", "+tag@example.com");
	HANDLE_OK("a.b.c@sub.my-host.example", "a.b.c@sub.my-host.example");
	HANDLE_OK("x@1and1.com", "x@1and1.com");
	HANDLE_OK("x@xn--bcher-kva.example", "x@xn--bcher-kva.example");

	/* Local part of exactly 64 bytes. */
	memset(local64, 'l', 64);
	local64[64] = '\0';
	snprintf(addr, sizeof(addr), "%s@x.com", local64);
	HANDLE_OK(addr, addr);

	/* A label of exactly 63 bytes, lower-cased. */
	memset(dom, 'D', 63);
	strcpy(dom + 63, ".COM");
	snprintf(addr, sizeof(addr), "a@%s", dom);
	memset(dom, 'd', 63);
	strcpy(dom + 63, ".com");
	{
		char want[400];

		snprintf(want, sizeof(want), "a@%s", dom);
		HANDLE_OK(addr, want);
	}

	/* Whole address of exactly 254 bytes: "a@" + 252-byte domain. */
	memset(dom, 'a', 252);
	dom[252] = '\0';
	dom[50] = dom[100] = dom[150] = dom[200] = '.';
	snprintf(addr, sizeof(addr), "a@%s", dom);
	assert_int_equal(strlen(addr), 254);
	HANDLE_OK(addr, addr);
}

static void test_handle_email_bad(void **state)
{
	char buf[400];

	(void)state;
	HANDLE_BAD(".a@x.com", "start or end with a dot");
	HANDLE_BAD("a.@x.com", "start or end with a dot");
	HANDLE_BAD("a..b@x.com", "two dots in a row");
	HANDLE_BAD("@x.com", "local part (before \"@\") is empty");
	HANDLE_BAD("a@", "domain (after \"@\") is empty");
	HANDLE_BAD("a@b@c.com", "exactly one \"@\"");
	HANDLE_BAD("a b@x.com", "local part may contain only");
	HANDLE_BAD("a(c)@x.com", "local part may contain only");
	HANDLE_BAD("a,b@x.com", "local part may contain only");
	HANDLE_BAD("a@[192.0.2.1]", "IP-literal");
	HANDLE_BAD("a@[IPv6:2001:db8::1]", "IP-literal");
	HANDLE_BAD("a@localhost", "at least two labels");
	HANDLE_BAD("a@-x.com", "hyphen");
	HANDLE_BAD("a@x-.com", "hyphen");
	HANDLE_BAD("a@x.com-", "hyphen");
	HANDLE_BAD("a@x..com", "empty label");
	HANDLE_BAD("a@.x.com", "empty label");
	HANDLE_BAD("a@x.com.", "empty label");
	HANDLE_BAD("a@x_y.com", "letters, digits and hyphens");
	HANDLE_BAD("a@x.com ", "letters, digits and hyphens");
	HANDLE_BAD("mailto:", "nothing after \"mailto:\"");
	HANDLE_BAD("mailto:abc", "must contain \"@\"");
	HANDLE_BAD("mailto:+14155550123", "must contain \"@\"");

	/* Quoted local parts are refused by name. */
	{
		char out[QL_HANDLE_MAX + 1];

		ERR(ql_handle_parse(out, sizeof(out), "\"a b\"@x.com",
				    "target"), "target", "\\\"a b\\\"@x.com",
		    "quoted");
	}

	/* Non-ASCII: refused, pointing at punycode, value escaped. */
	{
		char out[QL_HANDLE_MAX + 1];

		ERR(ql_handle_parse(out, sizeof(out), "a@b\xc3\xbc" "cher.de",
				    "target"), "target",
		    "a@b\\xc3\\xbccher.de", "punycode");
		ERR(ql_handle_parse(out, sizeof(out), "\xc3\xa9t\xc3\xa9@x.fr",
				    "target"), "target",
		    "\\xc3\\xa9t\\xc3\\xa9@x.fr", "local part may contain");
	}

	/* 65-byte local part. */
	memset(buf, 'l', 65);
	strcpy(buf + 65, "@x.com");
	HANDLE_BAD(buf, "longer than 64");

	/* 64-byte label. */
	strcpy(buf, "a@");
	memset(buf + 2, 'd', 64);
	strcpy(buf + 66, ".com");
	HANDLE_BAD(buf, "longer than 63");

	/* Domain of 254 bytes. */
	strcpy(buf, "a@");
	memset(buf + 2, 'd', 254);
	buf[2 + 254] = '\0';
	buf[2 + 60] = buf[2 + 120] = buf[2 + 180] = buf[2 + 240] = '.';
	{
		char out[QL_HANDLE_MAX + 1];

		/* The value is long: only its start is shown. */
		ERR(ql_handle_parse(out, sizeof(out), buf, "target"),
		    "target", NULL, "longer than 253");
		assert_non_null(strstr(ql_errmsg(NULL), "(256 bytes)"));
	}

	/* Domain of 253 bytes: fine alone, but the whole is 255 > 254. */
	buf[2 + 253] = '\0';
	{
		char out[QL_HANDLE_MAX + 1];

		ERR(ql_handle_parse(out, sizeof(out), buf, "target"),
		    "target", NULL, "longer than 254");
	}
}

static void test_handle_misc(void **state)
{
	char out[QL_HANDLE_MAX + 1], small[16];
	int i;

	(void)state;
	ERR(ql_handle_parse(out, sizeof(out), NULL, "requester"), "requester",
	    NULL, "is missing");
	assert_string_equal(ql_errmsg(NULL), "requester is missing");
	ERR(ql_handle_parse(out, sizeof(out), "", "target"), "target", NULL,
	    "is empty");
	assert_string_equal(ql_errmsg(NULL), "target is empty");

	/* Neither form: the message lists what is accepted. */
	HANDLE_BAD("bob", "expected a phone number");
	HANDLE_BAD("bob", "or an email address");
	HANDLE_BAD("sip:bob", "expected a phone number");

	/* Output buffer too small: refused, output untouched. */
	memset(small, 'X', sizeof(small));
	ERR(ql_handle_parse(small, 12, "+14155550123", "requester"),
	    "requester", "+14155550123", "too small");
	for (i = 0; i < (int)sizeof(small); i++)
		assert_int_equal(small[i], 'X');
	assert_int_equal(ql_handle_parse(small, 13, "+14155550123", "r"),
			 QL_OK);
	assert_string_equal(small, "+14155550123");
	ERR(ql_handle_parse(small, 5, "a@example.com", "target"), "target",
	    "a@example.com", "too small");
	ERR(ql_handle_parse(NULL, 0, "a@example.com", "target"), "target",
	    "a@example.com", "output buffer");

	/* A NULL field name still gives a usable message. */
	ERR(ql_handle_parse(out, sizeof(out), "+1", NULL), "value", "+1",
	    "8 to 15");

	/* A failure leaves out alone. */
	strcpy(out, "previous");
	HANDLE_BAD("a@b", "two labels");
	assert_int_equal(ql_handle_parse(out, sizeof(out), "a@b", "t"),
			 QL_EINVAL);
	assert_string_equal(out, "previous");
}

/* A hostile value cannot put control bytes or a flood into the message. */
static void test_error_quoting(void **state)
{
	char out[QL_HANDLE_MAX + 1], big[5000];
	const char *m;

	(void)state;
	ERR(ql_handle_parse(out, sizeof(out), "\x1b[31mred\x1b[0m\n",
			    "requester"), "requester",
	    "\\x1b[31mred\\x1b[0m\\x0a", NULL);
	ERR(ql_handle_parse(out, sizeof(out), "a\"b\\c", "requester"),
	    "requester", "a\\\"b\\\\c", NULL);
	/* C1 CSI and DEL. */
	ERR(ql_handle_parse(out, sizeof(out), "\x9b" "2J\x7f", "requester"),
	    "requester", "\\x9b2J\\x7f", NULL);

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ERR(ql_handle_parse(out, sizeof(out), big, "requester"), "requester",
	    NULL, "(4999 bytes)");
	m = ql_errmsg(NULL);
	assert_true(strlen(m) < 400);
	assert_non_null(strstr(m, "\"zzzzzzzzzz"));

	/* Escapes count towards the limit: still short. */
	memset(big, '\x01', 1000);
	big[1000] = '\0';
	ERR(ql_handle_parse(out, sizeof(out), big, "requester"), "requester",
	    NULL, "(1000 bytes)");
	assert_true(strlen(ql_errmsg(NULL)) < 400);

	/* Other parsers quote the same way. */
	{
		uint8_t ip[16];
		int64_t t;

		ERR(ql_ip_parse(ip, "1.2.3.4\r\n", "ip"), "ip",
		    "1.2.3.4\\x0d\\x0a", "whitespace");
		ERR(ql_time_parse(&t, "now\x07", 0, "--until"), "--until",
		    "now\\x07", NULL);
		ERR(ql_duration_parse(&t, "\xff" "d", "--retention"),
		    "--retention", "\\xffd", NULL);
	}
}

/* ---------------------------------------------------------------------- */
/* IP addresses                                                            */
/* ---------------------------------------------------------------------- */

static void test_ip_v4(void **state)
{
	static const uint8_t want[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					  0xff, 0xff, 192, 0, 2, 33 };
	uint8_t ip[16], ip2[16];

	(void)state;
	assert_int_equal(ql_ip_parse(ip, "192.0.2.33", "ip"), QL_OK);
	assert_memory_equal(ip, want, 16);
	/* The IPv6 spelling of a mapped address gives the same bytes. */
	assert_int_equal(ql_ip_parse(ip2, "::ffff:192.0.2.33", "ip"), QL_OK);
	assert_memory_equal(ip2, want, 16);
	assert_int_equal(ql_ip_parse(ip2, "::FFFF:c000:0221", "ip"), QL_OK);
	assert_memory_equal(ip2, want, 16);

	IP_OK("0.0.0.0", "0.0.0.0");
	IP_OK("255.255.255.255", "255.255.255.255");
	IP_OK("10.0.0.1", "10.0.0.1");
	IP_OK("1.20.100.0", "1.20.100.0");

	IP_BAD("01.2.3.4", "leading zeros");
	IP_BAD("1.2.3.010", "leading zeros");
	IP_BAD("1.2.3.00", "leading zeros");
	IP_BAD("1.2.3.256", "0 to 255");
	IP_BAD("1.2.3.1000", "0 to 255");
	IP_BAD("1.2.3", "four decimal numbers");
	IP_BAD("1.2.3.4.5", "four decimal numbers");
	IP_BAD("1..2.3", "four decimal numbers");
	IP_BAD("1.2.3.", "four decimal numbers");
	IP_BAD(".1.2.3", "four decimal numbers");
	IP_BAD("1.2.3.4x", "four decimal numbers");
	IP_BAD("0x1.2.3.4", "four decimal numbers");
	IP_BAD("1.2.3.-1", "four decimal numbers");
	IP_BAD("+1.2.3.4", "four decimal numbers");
	IP_BAD("16909060", "four decimal numbers");
	IP_BAD("1.2.3.4 ", "whitespace");
	IP_BAD(" 1.2.3.4", "whitespace");
	ERR(ql_ip_parse(ip, "1.2.\t3.4", "ip"), "ip", "1.2.\\x093.4",
	    "whitespace");
	IP_BAD("1.2.3.0/24", "prefix length");
	ERR(ql_ip_parse(ip, "", "ip"), "ip", NULL, "is empty");
	ERR(ql_ip_parse(ip, NULL, "ip"), "ip", NULL, "is missing");
}

static void test_ip_v6(void **state)
{
	(void)state;
	IP_OK("::", "::");
	IP_OK("::1", "::1");
	IP_OK("2001:db8::1", "2001:db8::1");
	IP_OK("2001:DB8::1", "2001:db8::1");
	IP_OK("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1");
	IP_OK("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8");
	IP_OK("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0");
	IP_OK("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8");
	IP_OK("1::8", "1::8");
	IP_OK("fe80::1:2", "fe80::1:2");
	IP_OK("64:ff9b::192.0.2.33", "64:ff9b::c000:221");
	IP_OK("::1.2.3.4", "::102:304");
	IP_OK("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304");
	IP_OK("::ffff:1.2.3.4", "1.2.3.4");

	IP_BAD("fe80::1%eth0", "zone IDs");
	IP_BAD("fe80::1%1", "zone IDs");
	IP_BAD("1:2:3:4:5:6:7:8:9", "more than 8 groups");
	IP_BAD("1:2:3:4:5:6:7", "8 groups");
	IP_BAD("1::2::3", "only once");
	IP_BAD(":::", "only once");
	IP_BAD(":1::", "single \":\"");
	IP_BAD("1::2:", "single \":\"");
	IP_BAD("12345::", "1 to 4 hex digits");
	IP_BAD("::g", "only hex digits");
	IP_BAD("1:2:3:4:5:6:7:8::", "8 groups and a \"::\"");
	IP_BAD("::1:2:3:4:5:6:7:8", "8 groups and a \"::\"");
	IP_BAD("::ffff:01.2.3.4", "leading zeros");
	IP_BAD("::ffff:1.2.3.256", "0 to 255");
	IP_BAD("::1.2.3.4:5", "four decimal numbers");
	IP_BAD("1:2:3:4:5:6:7:1.2.3.4", "too many groups");
	IP_BAD("[::1]", "only hex digits");
	IP_BAD(":: 1", "whitespace");
	IP_BAD("2001:db8::/32", "prefix length");
}

/* Mutations of valid addresses give near-valid strings: acceptance and
 * bytes must agree with the libc's inet_pton (a separate implementation)
 * on every one. */
static void test_ip_vs_inet_pton(void **state)
{
	static const char alpha[] = "0123456789abcdefABCDEF:.:.g";
	static const char *fixed[] = {
		"::", ":", ":::", "::1", "1::", "1:2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8::",
		"::1.2.3.4", "::ffff:1.2.3.4", "1.2.3.4", "1.2.3.04",
		"::1.2.3", "::1.2.3.4.5", "1:2:3:4:5:6:1.2.3.4",
		"1:2:3:4:5:6:7:1.2.3.4", "1:2:3:4:5::1.2.3.4",
		"1:2:3:4:5:6::1.2.3.4", "00000::", "0000::", "1::2::3",
		"::1:", ":1::", "1.2.3.4::", "::0.0.0.0", "255.255.255.255",
		"256.1.1.1", "1:2:3:4:5:6:7:8:", ":1:2:3:4:5:6:7:8",
		"abcd:EF01::", "::a.b.c.d", "1..2.3", "",
	};
	uint8_t a[16], b[16];
	char s[80], m[80];
	unsigned i, k, agree = 0;

	(void)state;
	for (i = 0; i < 40000; i++) {
		const char *in;
		int ra, rb, v4;

		if (i < sizeof(fixed) / sizeof(fixed[0])) {
			in = fixed[i];
		} else {
			/* Random address with some zero groups, printed
			 * by inet_ntop, then 0-3 random edits. */
			for (k = 0; k < 16; k++)
				a[k] = (uint8_t)rnd();
			for (k = 0; k < 8; k++)
				if (rnd() % 3 == 0)
					a[2 * k] = a[2 * k + 1] = 0;
			if (rnd() % 4 == 0) {
				memset(a, 0, 10);
				a[10] = a[11] = 0xff;
			}
			if (rnd() % 8 == 0)
				inet_ntop(AF_INET, a + 12, m, sizeof(m));
			else
				inet_ntop(AF_INET6, a, m, sizeof(m));
			for (k = rnd() % 4; k > 0; k--) {
				size_t len = strlen(m), at;
				unsigned op = (unsigned)(rnd() % 3);

				at = len ? (size_t)(rnd() % (len + 1)) : 0;
				if (op == 0 && at < len) {        /* delete */
					memmove(m + at, m + at + 1, len - at);
				} else if (op == 1 && len < 60) { /* insert */
					memmove(m + at + 1, m + at,
						len - at + 1);
					m[at] = alpha[rnd() %
						      (sizeof(alpha) - 1)];
				} else if (at < len) {            /* replace */
					m[at] = alpha[rnd() %
						      (sizeof(alpha) - 1)];
				}
			}
			in = m;
		}
		v4 = !strchr(in, ':');
		ra = ql_ip_parse(a, in, "ip");
		if (v4) {
			memset(b, 0, 10);
			b[10] = b[11] = 0xff;
			rb = inet_pton(AF_INET, in, b + 12);
		} else {
			rb = inet_pton(AF_INET6, in, b);
		}
		snprintf(s, sizeof(s), "%s", in);
		if ((ra == QL_OK) != (rb == 1))
			fail_msg("\"%s\": ql_ip_parse %d, inet_pton %d (%s)",
				 s, ra, rb, ql_errmsg(NULL));
		if (ra == QL_OK) {
			assert_memory_equal(a, b, 16);
			agree++;
		} else {
			check_err(ra, "ip", NULL, NULL, __LINE__);
		}
	}
	/* Make sure the mutations left enough valid inputs to matter. */
	assert_true(agree > 10000);
}

static void test_ip_format(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		/* RFC 5952 section 4 and its examples. */
		{ "2001:db8:0:0:0:0:2:1", "2001:db8::2:1" },
		{ "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1" },
		{ "2001:0:0:1:0:0:0:1", "2001:0:0:1::1" },
		{ "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1" },
		{ "2001:DB8::AbCd", "2001:db8::abcd" },
		{ "0:0:0:0:0:0:0:0", "::" },
		{ "0:0:0:0:0:0:0:1", "::1" },
		{ "1:0:0:0:0:0:0:0", "1::" },
		{ "0:1:0:1:0:1:0:1", "0:1:0:1:0:1:0:1" },
		{ "1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0" },
		{ "0:0:1:0:0:1:0:0", "::1:0:0:1:0:0" },
		{ "1:0:0:2:0:0:0:3", "1:0:0:2::3" },
		{ "0000:0000:0000:0000:0000:ffff:0102:0304", "1.2.3.4" },
		{ "::ffff:0:0", "0.0.0.0" },
		{ "::fffe:1.2.3.4", "::fffe:102:304" },
		{ "0:0:0:0:1:ffff:1.2.3.4", "::1:ffff:102:304" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
		{ "1:22:333:4444::", "1:22:333:4444::" },
	};
	uint8_t ip[16];
	char out[64];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(ql_ip_parse(ip, cases[i].in, "ip"), QL_OK);
		n = ql_ip_format(out, sizeof(out), ip);
		assert_string_equal(out, cases[i].want);
		assert_int_equal(n, (int)strlen(cases[i].want));
	}

	/* Short buffers: cut, NUL-terminated, -1. Exactly enough: fits. */
	assert_int_equal(ql_ip_parse(ip, "2001:db8::1", "ip"), QL_OK);
	memset(out, 'X', sizeof(out));
	assert_int_equal(ql_ip_format(out, 5, ip), -1);
	assert_string_equal(out, "2001");
	assert_int_equal(out[5], 'X');
	assert_int_equal(ql_ip_format(out, 11, ip), -1);
	assert_int_equal(ql_ip_format(out, 12, ip), 11);
	assert_string_equal(out, "2001:db8::1");
	assert_int_equal(ql_ip_format(NULL, 0, ip), -1);
	/* The longest text fits in 46. */
	assert_int_equal(ql_ip_parse(ip, "1111:2222:3333:4444:5555:6666:7777:"
				     "8888", "ip"), QL_OK);
	assert_int_equal(ql_ip_format(out, 46, ip), 39);
}

/* Random bytes with a zero run at every position and of every length:
 * format must agree with inet_ntop (where glibc does not use its own
 * ::a.b.c.d spelling), parse back to the same bytes, and keep to
 * RFC 5952 ("::" at most once, never for a single group). */
static void test_ip_roundtrip(void **state)
{
	uint8_t ip[16], back[16];
	char s[64], ref[64];
	int start, len, rep;

	(void)state;
	for (start = 0; start < 8; start++) {
		for (len = 0; start + len <= 8; len++) {
			for (rep = 0; rep < 200; rep++) {
				int k, n, tokens = 0;
				const char *p;

				for (k = 0; k < 16; k++)
					ip[k] = (uint8_t)rnd();
				/* Sometimes more zero groups elsewhere,
				 * and sometimes tiny groups (leading 0s). */
				for (k = 0; k < 8; k++) {
					if (rnd() % 5 == 0)
						ip[2 * k] = ip[2 * k + 1] = 0;
					else if (rnd() % 4 == 0)
						ip[2 * k] = 0;
				}
				memset(ip + 2 * start, 0, (size_t)(2 * len));
				n = ql_ip_format(s, sizeof(s), ip);
				assert_int_equal(n, (int)strlen(s));
				assert_int_equal(ql_ip_parse(back, s, "ip"),
						 QL_OK);
				assert_memory_equal(ip, back, 16);
				if (memcmp(ip, "\0\0\0\0\0\0\0\0\0\0", 10)) {
					inet_ntop(AF_INET6, ip, ref,
						  sizeof(ref));
					assert_string_equal(s, ref);
				}
				p = strstr(s, "::");
				if (p) {
					assert_null(strstr(p + 1, "::"));
				}
				for (p = s; *p; p++) {
					assert_false(*p >= 'A' && *p <= 'F');
					tokens += *p != ':' &&
						  (p == s || p[-1] == ':');
				}
				/* "::" only replaces two or more groups. */
				if (strstr(s, "::"))
					assert_true(tokens <= 6);
				else if (!strchr(s, '.'))
					assert_int_equal(tokens, 8);
			}
		}
	}
}

static void test_cidr(void **state)
{
	static const uint8_t mapped0[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					     0xff, 0xff, 0, 0, 0, 0 };
	uint8_t ip[16], want[16];
	unsigned p;

	(void)state;
	assert_int_equal(ql_cidr_parse(ip, &p, "10.0.0.0/8", "ip"), QL_OK);
	assert_int_equal(p, 104);
	assert_int_equal(ql_ip_parse(want, "10.0.0.0", "ip"), QL_OK);
	assert_memory_equal(ip, want, 16);
	assert_int_equal(ql_cidr_parse(ip, &p, "10.1.2.3", "ip"), QL_OK);
	assert_int_equal(p, 128);
	assert_int_equal(ql_cidr_parse(ip, &p, "10.1.2.3/32", "ip"), QL_OK);
	assert_int_equal(p, 128);
	assert_int_equal(ql_cidr_parse(ip, &p, "0.0.0.0/0", "ip"), QL_OK);
	assert_int_equal(p, 96);
	assert_memory_equal(ip, mapped0, 16);
	assert_int_equal(ql_cidr_parse(ip, &p, "2001:db8::/32", "ip"), QL_OK);
	assert_int_equal(p, 32);
	assert_int_equal(ql_cidr_parse(ip, &p, "::/0", "ip"), QL_OK);
	assert_int_equal(p, 0);
	assert_int_equal(ql_cidr_parse(ip, &p, "2001:db8::1", "ip"), QL_OK);
	assert_int_equal(p, 128);
	/* The mapped prefix itself. */
	assert_int_equal(ql_cidr_parse(ip, &p, "::ffff:0:0/96", "ip"), QL_OK);
	assert_int_equal(p, 96);
	assert_memory_equal(ip, mapped0, 16);
	/* An IPv6-written prefix over mapped space counts in IPv6 bits. */
	assert_int_equal(ql_cidr_parse(ip, &p, "::ffff:10.0.0.0/104", "ip"),
			 QL_OK);
	assert_int_equal(p, 104);

	/* Host bits: refused with the masked network suggested. */
	assert_int_equal(ql_cidr_parse(ip, &p, "10.1.2.3/24", "ip"),
			 QL_EINVAL);
	assert_string_equal(ql_errmsg(NULL), "ip \"10.1.2.3/24\": host bits "
			    "set beyond /24; did you mean 10.1.2.0/24?");
	ERR(ql_cidr_parse(ip, &p, "2001:db8::1/32", "net"), "net",
	    "2001:db8::1/32", "did you mean 2001:db8::/32?");
	ERR(ql_cidr_parse(ip, &p, "::ffff:1.2.3.4/112", "net"), "net",
	    "::ffff:1.2.3.4/112", "did you mean ::ffff:1.2.0.0/112?");
	ERR(ql_cidr_parse(ip, &p, "1.2.3.4/0", "net"), "net", "1.2.3.4/0",
	    "did you mean 0.0.0.0/0?");
	ERR(ql_cidr_parse(ip, &p, "10.0.0.1/31", "net"), "net",
	    "10.0.0.1/31", "did you mean 10.0.0.0/31?");

	/* Bad prefixes. */
	ERR(ql_cidr_parse(ip, &p, "10.0.0.0/33", "net"), "net",
	    "10.0.0.0/33", "0 to 32");
	ERR(ql_cidr_parse(ip, &p, "10.0.0.0/08", "net"), "net",
	    "10.0.0.0/08", "leading zeros");
	ERR(ql_cidr_parse(ip, &p, "10.0.0.0/+8", "net"), "net",
	    "10.0.0.0/+8", "without sign");
	ERR(ql_cidr_parse(ip, &p, "10.0.0.0/", "net"), "net", "10.0.0.0/",
	    "0 to 32");
	ERR(ql_cidr_parse(ip, &p, "10.0.0.0/8/8", "net"), "net",
	    "10.0.0.0/8/8", "0 to 32");
	ERR(ql_cidr_parse(ip, &p, "10.0.0.0/ 8", "net"), "net",
	    "10.0.0.0/ 8", "0 to 32");
	ERR(ql_cidr_parse(ip, &p, "10.0.0.0/1000", "net"), "net",
	    "10.0.0.0/1000", "0 to 32");
	ERR(ql_cidr_parse(ip, &p, "::/129", "net"), "net", "::/129",
	    "0 to 128");
	ERR(ql_cidr_parse(ip, &p, "::/-1", "net"), "net", "::/-1",
	    "0 to 128");
	ERR(ql_cidr_parse(ip, &p, "/8", "net"), "net", "/8",
	    "address is empty");
	ERR(ql_cidr_parse(ip, &p, "10.0.0/8", "net"), "net", "10.0.0/8",
	    "four decimal numbers");
	ERR(ql_cidr_parse(ip, &p, "fe80::%eth0/64", "net"), "net",
	    "fe80::%eth0/64", "zone IDs");
	ERR(ql_cidr_parse(ip, &p, "", "net"), "net", NULL, "is empty");
	ERR(ql_cidr_parse(ip, &p, NULL, "net"), "net", NULL, "is missing");
}

/* For every prefix length: all-ones with that prefix is refused with a
 * suggestion, and the suggestion itself parses back to the masked
 * network with the same prefix (IPv6 and IPv4). */
static void test_cidr_every_prefix(void **state)
{
	uint8_t ip[16], net[16];
	char in[80], text[64];
	const char *m, *sug;
	unsigned plen, got;

	(void)state;
	for (plen = 0; plen <= 128; plen++) {
		snprintf(in, sizeof(in), "ffff:ffff:ffff:ffff:ffff:ffff:"
			 "ffff:ffff/%u", plen);
		if (plen == 128) {
			assert_int_equal(ql_cidr_parse(ip, &got, in, "n"),
					 QL_OK);
			continue;
		}
		ERR(ql_cidr_parse(ip, &got, in, "n"), "n", in, "host bits");
		m = ql_errmsg(NULL);
		sug = strstr(m, "did you mean ");
		assert_non_null(sug);
		snprintf(text, sizeof(text), "%s", sug + 13);
		text[strlen(text) - 1] = '\0'; /* the '?' */
		assert_int_equal(ql_cidr_parse(net, &got, text, "n"), QL_OK);
		assert_int_equal(got, plen);
		/* The network has exactly plen leading one bits. */
		{
			unsigned bit;

			for (bit = 0; bit < 128; bit++) {
				int one = net[bit / 8] >> (7 - bit % 8) & 1;

				assert_int_equal(one, bit < plen);
			}
		}
	}
	for (plen = 0; plen < 32; plen++) {
		snprintf(in, sizeof(in), "255.255.255.255/%u", plen);
		ERR(ql_cidr_parse(ip, &got, in, "n"), "n", in, "host bits");
		sug = strstr(ql_errmsg(NULL), "did you mean ");
		assert_non_null(sug);
		snprintf(text, sizeof(text), "%s", sug + 13);
		text[strlen(text) - 1] = '\0';
		assert_null(strchr(text, ':'));
		assert_int_equal(ql_cidr_parse(net, &got, text, "n"), QL_OK);
		assert_int_equal(got, 96 + plen);
	}
}

/* ---------------------------------------------------------------------- */
/* Times                                                                   */
/* ---------------------------------------------------------------------- */

static void test_time_rfc3339(void **state)
{
	(void)state;
	TIME_OK("1970-01-01T00:00:00Z", 0);
	TIME_OK("2026-11-01T12:00:00Z", INT64_C(1793534400000000));
	TIME_OK("2026-11-01t12:00:00z", INT64_C(1793534400000000));
	TIME_OK("2026-11-01 12:00:00Z", INT64_C(1793534400000000));
	TIME_OK("2026-11-01T14:00:00+02:00", INT64_C(1793534400000000));
	TIME_OK("2026-11-01T07:30:00-04:30", INT64_C(1793534400000000));
	TIME_OK("2026-11-01T12:00:00-00:00", INT64_C(1793534400000000));
	TIME_OK("2026-11-01T12:00:00.5Z", INT64_C(1793534400500000));
	TIME_OK("2026-11-01T12:00:00.000123Z", INT64_C(1793534400000123));
	TIME_OK("2026-11-01T12:00:00.123456Z", INT64_C(1793534400123456));
	TIME_OK("2026-11-01T12:00:00.10+00:00", INT64_C(1793534400100000));
	TIME_OK("2026-11-01", INT64_C(1793491200000000));
	TIME_OK("2024-02-29", INT64_C(1709164800000000));
	TIME_OK("2000-02-29T00:00:00Z", INT64_C(951782400000000));
	TIME_OK("2100-03-01", INT64_C(4107542400000000));
	TIME_OK("2038-01-19T03:14:08Z", INT64_C(2147483648000000));
	TIME_OK("9999-12-31T23:59:59.999999Z", INT64_C(253402300799999999));
	/* An offset may take a 1970 time just before the epoch. */
	TIME_OK("1970-01-01T00:00:00+01:00", -3600 * US);
}

static void test_time_rfc3339_bad(void **state)
{
	(void)state;
	TIME_BAD("2026-02-29", "leap years");
	TIME_BAD("2100-02-29", "leap years");
	TIME_BAD("2026-04-31", "does not exist");
	TIME_BAD("2026-02-30T00:00:00Z", "does not exist");
	TIME_BAD("2026-13-01", "month must be 01 to 12");
	TIME_BAD("2026-00-10", "month must be 01 to 12");
	TIME_BAD("2026-11-00", "does not exist");
	TIME_BAD("2026-11-32", "does not exist");
	TIME_BAD("2026-11-01T24:00:00Z", "hour must be 00 to 23");
	TIME_BAD("2026-11-01T12:60:00Z", "minute must be 00 to 59");
	TIME_BAD("2016-12-31T23:59:60Z", "leap seconds");
	TIME_BAD("2026-11-01T12:00:61Z", "second must be 00 to 59");
	TIME_BAD("1969-12-31T23:59:59Z", "year must be 1970 to 9999");
	TIME_BAD("0000-01-01", "year must be 1970 to 9999");
	TIME_BAD("2026-11-01T12:00:00.1234567Z", "more than 6 digits");
	TIME_BAD("2026-11-01T12:00:00.Z", "1 to 6 digits");
	TIME_BAD("2026-11-01T12:00:00", "needs a time zone");
	TIME_BAD("2026-11-01T12:00:00+2:00", "+hh:mm");
	TIME_BAD("2026-11-01T12:00:00+0200", "+hh:mm");
	TIME_BAD("2026-11-01T12:00:00+24:00", "at most 23:59");
	TIME_BAD("2026-11-01T12:00:00+02:60", "at most 23:59");
	TIME_BAD("2026-11-01T12:00:00Zx", "after the time zone");
	TIME_BAD("2026-11-01T12:00:00+02:00x", "after the time zone");
	TIME_BAD("2026-11-01T12:00:00,5Z", "\"Z\" or +hh:mm");
	TIME_BAD("2026-11-01T12:00Z", "HH:MM:SS");
	TIME_BAD("2026-11-01T1:00:00Z", "HH:MM:SS");
	TIME_BAD("2026-11-01X12:00:00Z", "separated by \"T\"");
	TIME_BAD("2026-11-01T", "HH:MM:SS");
	TIME_BAD("2026-1-01", "YYYY-MM-DD");
	TIME_BAD("2026-11-1", "YYYY-MM-DD");
	TIME_BAD("2026-11-01x", "separated by \"T\"");
	TIME_BAD(" 2026-11-01", "expected an RFC 3339 time");
	TIME_BAD("12345-01-01", "expected an RFC 3339 time");
	TIME_BAD("yesterday", "expected an RFC 3339 time");
	TIME_BAD("nowish", "expected an RFC 3339 time");
}

static void test_time_other_forms(void **state)
{
	int64_t now = INT64_C(1793534400000000), t;

	(void)state;
	/* Integers of microseconds. */
	TIME_OK("0", 0);
	TIME_OK("1793534400000000", now);
	TIME_OK("-1", -1);
	TIME_OK("-0", 0);
	TIME_OK("9223372036854775807", INT64_MAX);
	TIME_OK("-9223372036854775808", INT64_MIN);
	TIME_BAD("9223372036854775808", "overflow 64 bits");
	TIME_BAD("-9223372036854775809", "overflow 64 bits");
	TIME_BAD("99999999999999999999999", "overflow 64 bits");
	TIME_BAD("12a", "expected an RFC 3339 time");
	TIME_BAD("1e6", "expected an RFC 3339 time");

	/* now */
	TIME_NOW_OK("now", now, now);
	TIME_NOW_OK("NOW", now, now);

	/* Relative to now. */
	TIME_NOW_OK("-2h", now, now - 2 * 3600 * US);
	TIME_NOW_OK("+15m", now, now + 15 * 60 * US);
	TIME_NOW_OK("-30d", now, now - 30 * DAY_US);
	TIME_NOW_OK("+1w", now, now + 7 * DAY_US);
	TIME_NOW_OK("-45s", now, now - 45 * US);
	TIME_NOW_OK("-0s", now, now);
	TIME_NOW_OK("-1w", INT64_MIN + 7 * DAY_US, INT64_MIN);
	TIME_BAD("+2", "relative time must be");
	TIME_BAD("-2x", "relative time must be");
	TIME_BAD("-h", "relative time must be");
	TIME_BAD("-2hh", "relative time must be");
	TIME_BAD("--2h", "relative time must be");
	TIME_BAD("-2 h", "relative time must be");
	TIME_BAD("+2H", "relative time must be");
	TIME_BAD("-1.5h", "relative time must be");
	TIME_BAD("-", "relative time must be");
	TIME_BAD("+9223372036854775807s", "overflows");
	TIME_BAD("+99999999999999999999999s", "overflows");
	ERR(ql_time_parse(&t, "+1s", INT64_MAX, "--until"), "--until", "+1s",
	    "overflows");
	ERR(ql_time_parse(&t, "-1w", INT64_MIN + 1, "--until"), "--until",
	    "-1w", "overflows");

	ERR(ql_time_parse(&t, "", 0, "--since"), "--since", NULL, "is empty");
	ERR(ql_time_parse(&t, NULL, 0, "--since"), "--since", NULL,
	    "is missing");
}

static void test_duration(void **state)
{
	int64_t d = 0;

	(void)state;
	assert_int_equal(ql_duration_parse(&d, "30d", "--retention"), QL_OK);
	assert_int_equal(d, 30 * DAY_US);
	assert_int_equal(ql_duration_parse(&d, "12h", "x"), QL_OK);
	assert_int_equal(d, 12 * 3600 * US);
	assert_int_equal(ql_duration_parse(&d, "90m", "x"), QL_OK);
	assert_int_equal(d, 90 * 60 * US);
	assert_int_equal(ql_duration_parse(&d, "45s", "x"), QL_OK);
	assert_int_equal(d, 45 * US);
	assert_int_equal(ql_duration_parse(&d, "2w", "x"), QL_OK);
	assert_int_equal(d, 14 * DAY_US);
	assert_int_equal(ql_duration_parse(&d, "1s", "x"), QL_OK);
	assert_int_equal(d, US);
	assert_int_equal(ql_duration_parse(&d, "15250284w", "x"), QL_OK);
	assert_int_equal(d, INT64_C(15250284) * 7 * DAY_US);
	assert_int_equal(ql_duration_parse(&d, "9223372036854s", "x"), QL_OK);

	d = 5;
	ERR(ql_duration_parse(&d, "0d", "--retention"), "--retention", "0d",
	    "must be positive");
	ERR(ql_duration_parse(&d, "0s", "--retention"), "--retention", "0s",
	    "must be positive");
	ERR(ql_duration_parse(&d, "-1d", "--retention"), "--retention", "-1d",
	    "must not have a sign");
	ERR(ql_duration_parse(&d, "+1d", "--retention"), "--retention", "+1d",
	    "must not have a sign");
	ERR(ql_duration_parse(&d, "1", "--retention"), "--retention", "1",
	    "a whole number and a unit");
	ERR(ql_duration_parse(&d, "d", "--retention"), "--retention", "d",
	    "a whole number and a unit");
	ERR(ql_duration_parse(&d, "1.5h", "--retention"), "--retention",
	    "1.5h", "a whole number and a unit");
	ERR(ql_duration_parse(&d, "1d2h", "--retention"), "--retention",
	    "1d2h", "a whole number and a unit");
	ERR(ql_duration_parse(&d, "1 d", "--retention"), "--retention", "1 d",
	    "a whole number and a unit");
	ERR(ql_duration_parse(&d, "1D", "--retention"), "--retention", "1D",
	    "a whole number and a unit");
	ERR(ql_duration_parse(&d, "1ms", "--retention"), "--retention", "1ms",
	    "a whole number and a unit");
	ERR(ql_duration_parse(&d, "15250285w", "--retention"), "--retention",
	    "15250285w", "overflows");
	ERR(ql_duration_parse(&d, "9223372036855s", "--retention"),
	    "--retention", "9223372036855s", "overflows");
	ERR(ql_duration_parse(&d, "99999999999999999999999s", "--retention"),
	    "--retention", "99999999999999999999999s", "overflows");
	ERR(ql_duration_parse(&d, "", "--retention"), "--retention", NULL,
	    "is empty");
	ERR(ql_duration_parse(&d, NULL, "--retention"), "--retention", NULL,
	    "is missing");
	assert_int_equal(d, 5);
}

static void test_time_format(void **state)
{
	static const struct {
		int64_t ts;
		const char *want;
	} cases[] = {
		{ 0, "1970-01-01T00:00:00Z" },
		{ 1, "1970-01-01T00:00:00.000001Z" },
		{ -1, "1969-12-31T23:59:59.999999Z" },
		{ -1000000, "1969-12-31T23:59:59Z" },
		{ -1000001, "1969-12-31T23:59:58.999999Z" },
		{ -86400 * US, "1969-12-31T00:00:00Z" },
		{ INT64_C(951782400000000), "2000-02-29T00:00:00Z" },
		{ INT64_C(1793534400123456), "2026-11-01T12:00:00.123456Z" },
		{ INT64_C(1793534400500000), "2026-11-01T12:00:00.500000Z" },
		{ INT64_C(253402300799999999), "9999-12-31T23:59:59.999999Z" },
		{ INT64_C(-62135596800000000), "0001-01-01T00:00:00Z" },
		{ INT64_C(-62167219200000000), "0000-01-01T00:00:00Z" },
		{ INT64_C(-62167219200000001), "-0001-12-31T23:59:59.999999Z" },
		{ INT64_C(253402300800000000), "10000-01-01T00:00:00Z" },
		{ INT64_MAX, "294247-01-10T04:00:54.775807Z" },
		{ INT64_MIN, "-290308-12-21T19:59:05.224192Z" },
	};
	char out[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = ql_time_format(out, sizeof(out), cases[i].ts);

		assert_string_equal(out, cases[i].want);
		assert_int_equal(n, (int)strlen(cases[i].want));
	}
	/* Short buffer: cut, NUL-terminated, -1. */
	memset(out, 'X', sizeof(out));
	assert_int_equal(ql_time_format(out, 11, 0), -1);
	assert_string_equal(out, "1970-01-01");
	assert_int_equal(out[11], 'X');
	assert_int_equal(ql_time_format(out, 20, 0), -1);
	assert_int_equal(ql_time_format(out, 21, 0), 20);
	assert_int_equal(ql_time_format(NULL, 0, 0), -1);
}

/* The expected text from gmtime_r, an independent implementation of the
 * calendar, in ql_time_format's layout. */
static void ref_format(char *buf, size_t n, int64_t ts)
{
	int64_t secs = ts / US, us = ts % US;
	long long y;
	time_t tt;
	struct tm tm;
	int k;

	if (us < 0) {
		us += US;
		secs--;
	}
	tt = (time_t)secs;
	assert_non_null(gmtime_r(&tt, &tm));
	y = (long long)tm.tm_year + 1900;
	k = snprintf(buf, n, "%s%0*lld-%02d-%02dT%02d:%02d:%02d",
		     y < 0 ? "-" : "", 4, y < 0 ? -y : y, tm.tm_mon + 1,
		     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (us)
		k += snprintf(buf + k, n - (size_t)k, ".%06lld",
			      (long long)us);
	snprintf(buf + k, n - (size_t)k, "Z");
}

/* Random times over the whole int64 range, most of them near or before
 * the epoch, against gmtime_r. */
static void test_time_format_vs_gmtime(void **state)
{
	char got[32], want[48];
	int i;

	(void)state;
	if (sizeof(time_t) < 8)
		skip();
	for (i = 0; i < 100000; i++) {
		int64_t ts = (int64_t)rnd();

		switch (i % 4) {
		case 0: break;                                   /* anywhere */
		case 1: ts %= INT64_C(100) * 366 * DAY_US; break;  /* +-100y */
		case 2: ts %= 3 * DAY_US; break;                 /* +-3 days */
		case 3: ts = ts % (INT64_C(4000) * 366 * DAY_US); /* whole s */
			ts -= ts % US; break;
		}
		ql_time_format(got, sizeof(got), ts);
		ref_format(want, sizeof(want), ts);
		if (strcmp(got, want))
			fail_msg("%" PRId64 ": got %s, want %s", ts, got,
				 want);
	}
}

/* Format then parse gives the value back: every day of 1970..9999, and
 * random times with and without fractions over that range. Before 1970
 * the RFC 3339 text is refused (the year rule), so negative times round
 * trip through their integer form. */
static void test_time_roundtrip(void **state)
{
	const int64_t max = INT64_C(253402300799999999);
	char s[32];
	int64_t day, t, ts;
	int i;

	(void)state;
	for (day = 0; day * DAY_US <= max; day++) {
		ql_time_format(s, sizeof(s), day * DAY_US);
		assert_int_equal(ql_time_parse(&t, s, 0, "t"), QL_OK);
		assert_int_equal(t, day * DAY_US);
		/* The date alone is the same midnight. */
		s[10] = '\0';
		assert_int_equal(ql_time_parse(&t, s, 0, "t"), QL_OK);
		assert_int_equal(t, day * DAY_US);
	}
	for (i = 0; i < 200000; i++) {
		ts = (int64_t)(rnd() % (uint64_t)(max + 1));
		if (i % 3 == 0)
			ts -= ts % US;          /* whole seconds */
		else if (i % 3 == 1)
			ts -= ts % 1000;        /* milliseconds */
		ql_time_format(s, sizeof(s), ts);
		if (ql_time_parse(&t, s, 0, "t") != QL_OK || t != ts)
			fail_msg("%" PRId64 " -> %s -> %" PRId64 " (%s)", ts,
				 s, t, ql_errmsg(NULL));
	}
	for (i = 0; i < 20000; i++) {
		ts = -(int64_t)(rnd() % (uint64_t)INT64_MAX) - (i & 1);
		ql_time_format(s, sizeof(s), ts);
		ERR(ql_time_parse(&t, s, 0, "t"), "t", s, NULL);
		snprintf(s, sizeof(s), "%" PRId64, ts);
		assert_int_equal(ql_time_parse(&t, s, 0, "t"), QL_OK);
		assert_int_equal(t, ts);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handle_phone_ok),
		cmocka_unit_test(test_handle_phone_bad),
		cmocka_unit_test(test_handle_email_ok),
		cmocka_unit_test(test_handle_email_bad),
		cmocka_unit_test(test_handle_misc),
		cmocka_unit_test(test_error_quoting),
		cmocka_unit_test(test_ip_v4),
		cmocka_unit_test(test_ip_v6),
		cmocka_unit_test(test_ip_vs_inet_pton),
		cmocka_unit_test(test_ip_format),
		cmocka_unit_test(test_ip_roundtrip),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_cidr_every_prefix),
		cmocka_unit_test(test_time_rfc3339),
		cmocka_unit_test(test_time_rfc3339_bad),
		cmocka_unit_test(test_time_other_forms),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_time_format_vs_gmtime),
		cmocka_unit_test(test_time_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
