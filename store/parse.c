/* parse.c - parsing and formatting of handles, IP addresses and times.
 *
 * These run on every append from many threads at once, so they allocate
 * nothing, keep no mutable static state, and never call anything that
 * depends on the locale or the time zone: character classes are ASCII
 * arithmetic and calendar maths is done here (days from civil).
 *
 * Every failure returns qli_err(QL_EINVAL, ...) with one line naming the
 * field, the offending value (quoted, escaped, truncated: see qv_quote)
 * and the rule that was broken. The internal parsers return that rule as
 * a static string (NULL on success) so the public wrappers can quote the
 * whole input, not just the part that failed.
 *
 * On failure no output is written: callers never see half a value.
 */
#include "err.h"
#include "querylog.h"

#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* ASCII character classes (no <ctype.h>: it depends on the locale)       */
/* ---------------------------------------------------------------------- */

static inline int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static inline int is_alpha(unsigned char c)
{
	return (unsigned char)((c | 0x20) - 'a') < 26;
}

static inline int is_alnum(unsigned char c)
{
	return is_digit(c) || is_alpha(c);
}

static inline unsigned char to_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Value of a hex digit, or -1. */
static inline int hex_val(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static inline int is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* RFC 5322 atext: letters, digits and !#$%&'*+-/=?^_`{|}~. */
static inline int is_atext(unsigned char c)
{
	if (is_alnum(c))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'':
	case '*': case '+': case '-': case '/': case '=': case '?':
	case '^': case '_': case '`': case '{': case '|': case '}':
	case '~':
		return 1;
	}
	return 0;
}

/* Case-insensitive ASCII prefix test; pfx is lower case. */
static int has_prefix_ci(const char *s, const char *pfx)
{
	for (; *pfx; s++, pfx++)
		if (to_lower((unsigned char)*s) != (unsigned char)*pfx)
			return 0;
	return 1;
}

/* ---------------------------------------------------------------------- */
/* Error messages                                                          */
/* ---------------------------------------------------------------------- */

/* Most characters of a quoted value shown in a message. */
#define QV_SHOWN 80
/* Quote, escapes, the shown text, and "... (N bytes)". */
#define QV_MAX (QV_SHOWN + 48)

/* Writes "... (N bytes)" at q. */
static void qv_append_len(char *q, size_t total)
{
	const char *t = "... (";
	char digits[24];
	int nd = 0;

	while (*t)
		*q++ = *t++;
	do {
		digits[nd++] = (char)('0' + total % 10);
		total /= 10;
	} while (total);
	while (nd)
		*q++ = digits[--nd];
	t = " bytes)";
	while (*t)
		*q++ = *t++;
	*q = '\0';
}

/*
 * Writes v as a quoted, escaped, truncated string into buf so that a
 * hostile value can neither flood the message nor drive the terminal:
 * bytes outside printable ASCII (controls, DEL, anything >= 0x80, which
 * includes the C1 CSI 0x9b) become \xNN; '"' and '\' are backslashed.
 * A longer value is cut after about QV_SHOWN characters and its length
 * is given.
 */
static const char *qv_quote(char buf[QV_MAX], const char *v)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)v;
	size_t n = 0, total;

	/* n - 1: the characters shown so far, without the opening quote. */

	buf[n++] = '"';
	for (; *p; p++) {
		unsigned char c = *p;
		size_t w = (c >= 0x20 && c < 0x7f) ?
			   ((c == '"' || c == '\\') ? 2 : 1) : 4;

		if (n - 1 + w > QV_SHOWN)
			break;
		if (w == 1) {
			buf[n++] = (char)c;
		} else if (w == 2) {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else {
			buf[n++] = '\\';
			buf[n++] = 'x';
			buf[n++] = hex[c >> 4];
			buf[n++] = hex[c & 15];
		}
	}
	buf[n++] = '"';
	buf[n] = '\0';
	if (*p) {
		/* Only on the error path: the strlen of a huge value is
		 * fine. QV_MAX leaves room for "... (<20 digits> bytes)". */
		total = (size_t)(p - (const unsigned char *)v) +
			strlen((const char *)p);
		qv_append_len(buf + n, total);
	}
	return buf;
}

static const char *fname(const char *field)
{
	return field ? field : "value";
}

/* "<field> <quoted value>: <rule>" */
static int bad(const char *field, const char *in, const char *rule)
{
	char q[QV_MAX];

	return qli_err(QL_EINVAL, "%s %s: %s", fname(field), qv_quote(q, in),
		       rule);
}

/* "<field> is missing" / "<field> is empty" */
static int missing(const char *field, const char *in)
{
	return qli_err(QL_EINVAL, "%s is %s", fname(field),
		       in ? "empty" : "missing");
}

/* ---------------------------------------------------------------------- */
/* Handles                                                                 */
/* ---------------------------------------------------------------------- */

#define PHONE_FORM "phone number must be \"+\" and 8 to 15 digits"
#define HANDLE_FORMS "not a handle: expected a phone number such as " \
	"+14155550123 (optionally \"tel:+...\") or an email address such " \
	"as name@example.com (optionally \"mailto:...\")"

static int out_too_small(const char *field, const char *in, size_t need,
			 size_t outsz)
{
	char q[QV_MAX];

	return qli_err(QL_EINVAL, "%s %s: output buffer too small (%zu bytes, "
		       "need %zu)", fname(field), qv_quote(q, in), outsz, need);
}

/* s points after any "tel:"; checks E.164 and copies it out. */
static int parse_phone(char *out, size_t outsz, const char *s,
		       const char *in, const char *field)
{
	size_t n;

	if (s[0] != '+')
		return bad(field, in, "phone number must start with \"+\" and "
			   "the country code (E.164), e.g. +14155550123");
	for (n = 1; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (is_digit(c))
			continue;
		if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')')
			return bad(field, in, PHONE_FORM ", without spaces, "
				   "dashes, dots or parentheses");
		return bad(field, in, PHONE_FORM);
	}
	n--; /* digits after the '+' */
	if (n < 8 || n > 15)
		return bad(field, in, PHONE_FORM);
	if (s[1] == '0')
		return bad(field, in, PHONE_FORM "; the first digit (country "
			   "code) must be 1-9");
	if (n + 2 > outsz)
		return out_too_small(field, in, n + 2, outsz);
	memmove(out, s, n + 1);
	out[n + 1] = '\0';
	return QL_OK;
}

/* Checks the dot-atom local part [s, s + len). Returns the rule or NULL. */
static const char *check_local(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return "email local part (before \"@\") is empty";
	if (len > 64)
		return "email local part (before \"@\") is longer than 64 "
		       "bytes";
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (i == 0 || i == len - 1 || s[i - 1] == '.')
				return "email local part cannot start or end "
				       "with a dot or have two dots in a row";
			continue;
		}
		if (c == '"')
			return "quoted email local parts are not accepted";
		if (!is_atext(c))
			return "email local part may contain only letters, "
			       "digits, dots and !#$%&'*+-/=?^_`{|}~";
	}
	return NULL;
}

/* Checks the domain d (NUL-terminated). Returns the rule or NULL. */
static const char *check_domain(const char *d)
{
	size_t i, label = 0, labels = 1;

	if (d[0] == '\0')
		return "email domain (after \"@\") is empty";
	if (d[0] == '[')
		return "IP-literal email domains ([...]) are not accepted";
	for (i = 0; d[i]; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (label == 0)
				return "email domain has an empty label "
				       "(leading, trailing or doubled dot)";
			if (d[i - 1] == '-')
				return "email domain label cannot start or "
				       "end with a hyphen";
			label = 0;
			labels++;
			continue;
		}
		if (!is_alnum(c) && c != '-')
			return c >= 0x80 ?
			       "email domain must be ASCII (use the punycode "
			       "xn-- form for internationalised domains)" :
			       "email domain labels may contain only letters, "
			       "digits and hyphens";
		if (c == '-' && label == 0)
			return "email domain label cannot start or end with "
			       "a hyphen";
		if (++label > 63)
			return "email domain label is longer than 63 bytes";
	}
	if (label == 0)
		return "email domain has an empty label (leading, trailing or "
		       "doubled dot)";
	if (d[i - 1] == '-')
		return "email domain label cannot start or end with a hyphen";
	if (labels < 2)
		return "email domain must have at least two labels "
		       "(e.g. example.com)";
	if (i > 253)
		return "email domain is longer than 253 bytes";
	return NULL;
}

/* s points after any "mailto:"; checks the address and copies it out with
 * the domain lower-cased (the local part is case-sensitive: RFC 5321). */
static int parse_email(char *out, size_t outsz, const char *s,
		       const char *in, const char *field)
{
	const char *at, *rule;
	size_t llen, len, i;

	if (s[0] == '"')
		return bad(field, in, "quoted email local parts are not "
			   "accepted");
	at = strchr(s, '@');
	if (!at)
		return bad(field, in, "email address must contain \"@\"");
	if (strchr(at + 1, '@'))
		return bad(field, in, "email address must contain exactly "
			   "one \"@\"");
	llen = (size_t)(at - s);
	rule = check_local(s, llen);
	if (!rule)
		rule = check_domain(at + 1);
	if (rule)
		return bad(field, in, rule);
	len = llen + 1 + strlen(at + 1);
	if (len > QL_HANDLE_MAX)
		return bad(field, in, "email address is longer than 254 bytes");
	if (len + 1 > outsz)
		return out_too_small(field, in, len + 1, outsz);
	/* memmove and a forward loop: out may alias in (out <= s). */
	memmove(out, s, llen + 1);
	for (i = llen + 1; i < len; i++)
		out[i] = (char)to_lower((unsigned char)s[i]);
	out[len] = '\0';
	return QL_OK;
}

int ql_handle_parse(char *out, size_t outsz, const char *in,
		    const char *field)
{
	const char *s = in;
	int kind = 0; /* 'p' phone, 'e' email, 0 not yet known */

	if (!in || !*in)
		return missing(field, in);
	if (!out || outsz == 0)
		return bad(field, in, "output buffer is missing");
	if (has_prefix_ci(s, "tel:")) {
		s += 4;
		kind = 'p';
	} else if (has_prefix_ci(s, "mailto:")) {
		s += 7;
		kind = 'e';
	}
	if (!*s)
		return bad(field, in, kind == 'p' ?
			   "nothing after \"tel:\"" :
			   "nothing after \"mailto:\"");
	if (!kind) {
		/* '@' first: "+tag@example.com" is an email, not a phone. */
		if (strchr(s, '@'))
			kind = 'e';
		else if (s[0] == '+')
			kind = 'p';
		else if (is_digit((unsigned char)s[0]) || s[0] == '(')
			return bad(field, in, "phone number must start with "
				   "\"+\" and the country code (E.164), e.g. "
				   "+14155550123");
		else
			return bad(field, in, HANDLE_FORMS);
	}
	if (kind == 'p')
		return parse_phone(out, outsz, s, in, field);
	return parse_email(out, outsz, s, in, field);
}

/* ---------------------------------------------------------------------- */
/* IP addresses                                                            */
/* ---------------------------------------------------------------------- */

#define V4_FORM "IPv4 address must be four decimal numbers 0 to 255 " \
	"separated by dots"

/* Parses a dotted quad spanning exactly [s, e). Returns the rule or
 * NULL. Leading zeros are refused: "010" is 8 to inet_aton and 10 to
 * others, and a log of who asked must not guess. */
static const char *parse_v4(const char *s, const char *e, uint8_t b[4])
{
	int i;

	for (i = 0; i < 4; i++) {
		const char *d = s;
		unsigned v = 0;

		if (i > 0) {
			if (s == e || *s != '.')
				return V4_FORM;
			d = ++s;
		}
		while (s < e && is_digit((unsigned char)*s) && s - d < 4)
			v = v * 10 + (unsigned)(*s++ - '0');
		if (s == d)
			return V4_FORM;
		if (s - d > 1 && *d == '0')
			return "IPv4 address parts must not have leading "
			       "zeros (ambiguous: octal to some tools)";
		if (s - d > 3)
			return V4_FORM; /* e.g. "16909060", not a part */
		if (v > 255)
			return "IPv4 address parts must be 0 to 255";
		b[i] = (uint8_t)v;
	}
	if (s != e)
		return V4_FORM;
	return NULL;
}

/* Parses IPv6 text spanning exactly [s, e), inet_pton rules: groups of
 * 1-4 hex digits, one "::" standing for at least one zero group, an
 * optional dotted quad as the last 32 bits. Written out rather than
 * calling inet_pton so that each refusal gets its own rule and the
 * result does not depend on the libc. */
static const char *parse_v6(const char *s, const char *e, uint8_t out[16])
{
	uint8_t b[16];
	int n = 0, dc = -1; /* bytes written, where "::" stands */

	if (s < e && *s == ':') {
		if (e - s < 2 || s[1] != ':')
			return "IPv6 address cannot start with a single \":\"";
		dc = 0;
		s += 2;
	}
	while (s < e) {
		const char *g = s;
		unsigned v = 0;
		int h;

		while (s < e && (h = hex_val((unsigned char)*s)) >= 0) {
			v = (v << 4 | (unsigned)h) & 0xfffff;
			s++;
		}
		if (s < e && *s == '.') {
			/* The dotted quad must end the address. */
			const char *rule;

			if (n + 4 > 16)
				return "IPv6 address has too many groups";
			rule = parse_v4(g, e, b + n);
			if (rule)
				return rule;
			n += 4;
			break;
		}
		if (s == g)
			return (s < e && *s != ':') ?
			       "IPv6 address may contain only hex digits, "
			       "\":\" and \".\"" :
			       "IPv6 address may contain \"::\" only once";
		if (s - g > 4)
			return "IPv6 address groups must be 1 to 4 hex digits";
		if (n + 2 > 16)
			return "IPv6 address has more than 8 groups";
		b[n++] = (uint8_t)(v >> 8);
		b[n++] = (uint8_t)v;
		if (s == e)
			break;
		if (*s != ':')
			return "IPv6 address may contain only hex digits, "
			       "\":\" and \".\"";
		if (++s == e)
			return "IPv6 address cannot end with a single \":\"";
		if (*s == ':') {
			if (dc >= 0)
				return "IPv6 address may contain \"::\" only "
				       "once";
			dc = n;
			s++;
		}
	}
	if (dc < 0) {
		if (n != 16)
			return "IPv6 address must have 8 groups, or fewer "
			       "with \"::\"";
	} else {
		if (n == 16)
			return "IPv6 address has 8 groups and a \"::\", which "
			       "must stand for at least one";
		memset(out, 0, 16);
		memcpy(out, b, (size_t)dc);
		memcpy(out + 16 - (n - dc), b + dc, (size_t)(n - dc));
		return NULL;
	}
	memcpy(out, b, 16);
	return NULL;
}

/* Parses the address [s, e) into 16 bytes; *v4 says whether it was
 * written as a dotted quad. Returns the rule or NULL. */
static const char *parse_addr(const char *s, const char *e, uint8_t out[16],
			      int *v4)
{
	const char *p;
	int colon = 0;

	if (s == e)
		return "address is empty";
	for (p = s; p < e; p++) {
		colon |= *p == ':';
		if (is_space((unsigned char)*p))
			return "IP address must not contain whitespace";
		if (*p == '%')
			return "IPv6 zone IDs (\"%eth0\") are not accepted";
		if (*p == '/')
			return "a prefix length (\"/N\") is not accepted here";
	}
	*v4 = !colon;
	if (*v4) {
		uint8_t b[4];
		const char *rule = parse_v4(s, e, b);

		if (rule)
			return rule;
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, b, 4);
		return NULL;
	}
	return parse_v6(s, e, out);
}

int ql_ip_parse(uint8_t out[16], const char *in, const char *field)
{
	uint8_t b[16];
	const char *rule;
	int v4;

	if (!in || !*in)
		return missing(field, in);
	rule = parse_addr(in, in + strlen(in), b, &v4);
	if (rule)
		return bad(field, in, rule);
	memcpy(out, b, 16);
	return QL_OK;
}

/* Parses the prefix length after the '/'. Returns the rule or NULL. */
static const char *parse_prefix(const char *p, unsigned max, unsigned *out)
{
	unsigned v = 0;
	const char *d = p;

	while (is_digit((unsigned char)*p) && p - d < 4)
		v = v * 10 + (unsigned)(*p++ - '0');
	if (p == d || *p || (p - d > 1 && *d == '0') || v > max)
		return max == 32 ?
		       "IPv4 prefix length must be a number 0 to 32 without "
		       "sign or leading zeros" :
		       "IPv6 prefix length must be a number 0 to 128 without "
		       "sign or leading zeros";
	*out = v;
	return NULL;
}

/* Clears the bits of b beyond the first plen. */
static void mask_bits(uint8_t b[16], unsigned plen)
{
	unsigned i;

	for (i = plen / 8; i < 16; i++) {
		unsigned keep = plen > i * 8 ? plen - i * 8 : 0;

		b[i] &= (uint8_t)(0xff00u >> keep);
	}
}

/* The host-bits error, suggesting the masked network in the form it was
 * written in (a v6-written mapped network keeps its "::ffff:"). */
static int host_bits_err(const char *field, const char *in,
			 const uint8_t net[16], unsigned shown, int v4)
{
	char q[QV_MAX], a[64];
	int mapped = !v4 && net[10] == 0xff && net[11] == 0xff &&
		     !memcmp(net, "\0\0\0\0\0\0\0\0\0\0", 10);

	ql_ip_format(a, sizeof(a), net);
	return qli_err(QL_EINVAL, "%s %s: host bits set beyond /%u; did you "
		       "mean %s%s/%u?", fname(field), qv_quote(q, in), shown,
		       mapped ? "::ffff:" : "", a, shown);
}

int ql_cidr_parse(uint8_t out[16], unsigned *prefix_len, const char *in,
		  const char *field)
{
	uint8_t b[16], net[16];
	const char *slash, *rule;
	unsigned p = 128, shown = 0;
	int v4;

	if (!in || !*in)
		return missing(field, in);
	slash = strchr(in, '/');
	rule = parse_addr(in, slash ? slash : in + strlen(in), b, &v4);
	if (!rule && slash) {
		rule = parse_prefix(slash + 1, v4 ? 32 : 128, &shown);
		p = v4 ? 96 + shown : shown;
	}
	if (rule)
		return bad(field, in, rule);
	memcpy(net, b, 16);
	mask_bits(net, p);
	if (memcmp(net, b, 16))
		return host_bits_err(field, in, net, shown, v4);
	memcpy(out, b, 16);
	*prefix_len = p;
	return QL_OK;
}

/* Copies the formatted text into out. When it does not fit, writes what
 * fits (NUL-terminated) and returns -1; otherwise returns the length. */
static int put_out(char *out, size_t outsz, const char *s, size_t len)
{
	if (!out || outsz == 0)
		return -1;
	if (len >= outsz) {
		memcpy(out, s, outsz - 1);
		out[outsz - 1] = '\0';
		return -1;
	}
	memcpy(out, s, len + 1);
	return (int)len;
}

static size_t put_dec(char *p, unsigned v)
{
	char d[10];
	size_t n = 0, i;

	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		p[i] = d[n - 1 - i];
	return n;
}

/* RFC 5952 section 4: lower-case hex without leading zeros; the longest
 * run of two or more zero groups (the first on a tie) becomes "::". */
static size_t format_v6(char *p, const uint8_t ip[16])
{
	static const char hex[] = "0123456789abcdef";
	unsigned g[8];
	int i, best = -1, blen = 1, run = 0;
	size_t n = 0;

	for (i = 0; i < 8; i++) {
		g[i] = (unsigned)ip[2 * i] << 8 | ip[2 * i + 1];
		run = g[i] ? 0 : run + 1;
		if (run > blen) {
			blen = run;
			best = i - run + 1;
		}
	}
	for (i = 0; i < 8; i++) {
		int sh, started = 0;

		if (i == best) {
			p[n++] = ':';
			p[n++] = ':';
			i += blen - 1;
			continue;
		}
		if (i > 0 && i != best + blen)
			p[n++] = ':';
		for (sh = 12; sh >= 0; sh -= 4) {
			unsigned h = g[i] >> sh & 15;

			if (h || started || sh == 0) {
				p[n++] = hex[h];
				started = 1;
			}
		}
	}
	p[n] = '\0';
	return n;
}

/* Output contract: outsz >= 46 always fits (INET6_ADDRSTRLEN). With a
 * smaller buffer the text is cut, NUL-terminated, and -1 returned. */
int ql_ip_format(char *out, size_t outsz, const uint8_t ip[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					    0xff, 0xff };
	char buf[48];
	size_t n = 0;
	int i;

	if (!memcmp(ip, mapped, 12)) {
		for (i = 12; i < 16; i++) {
			if (i > 12)
				buf[n++] = '.';
			n += put_dec(buf + n, ip[i]);
		}
		buf[n] = '\0';
	} else {
		n = format_v6(buf, ip);
	}
	return put_out(out, outsz, buf, n);
}

/* ---------------------------------------------------------------------- */
/* Times and durations                                                     */
/* ---------------------------------------------------------------------- */

#define US_PER_S INT64_C(1000000)
#define US_PER_DAY (86400 * US_PER_S)

#define TIME_FORMS "expected an RFC 3339 time (2026-11-01T12:00:00Z), a " \
	"date (2026-11-01), microseconds since the epoch, \"now\", or a " \
	"time relative to now such as -2h (units s m h d w)"
#define UNITS "a unit s, m, h, d or w"

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil: exact for any year, no table, no time zone). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse: the date of day z since 1970-01-01. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned char dim[12] = { 31, 28, 31, 30, 31, 30,
					       31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return dim[m - 1] + (m == 2 && leap);
}

/* Reads exactly n digits at s into *v. Returns 0 if they are not all
 * digits (a NUL stops it, so it never reads past the string). */
static int fixed_digits(const char *s, int n, unsigned *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return 0;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return 1;
}

/* a + b into *r, or 0 on int64 overflow. */
static int add_i64(int64_t a, int64_t b, int64_t *r)
{
	if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b))
		return 0;
	*r = a + b;
	return 1;
}

/* Microseconds in one unit s m h d w, or 0. */
static int64_t unit_us(char c)
{
	switch (c) {
	case 's': return US_PER_S;
	case 'm': return 60 * US_PER_S;
	case 'h': return 3600 * US_PER_S;
	case 'd': return US_PER_DAY;
	case 'w': return 7 * US_PER_DAY;
	}
	return 0;
}

/* Parses "N<unit>" (digits, then one unit, then the end) at s into
 * microseconds: 0 on success, AMT_FORM if the shape is wrong, AMT_BIG if
 * it overflows 64 bits. */
#define AMT_FORM 1
#define AMT_BIG 2
static int parse_amount(const char *s, int64_t *out)
{
	uint64_t n = 0;
	int64_t u;
	const char *d = s;

	while (is_digit((unsigned char)*s)) {
		if (n > (uint64_t)INT64_MAX / 10)
			return AMT_BIG; /* any further digit overflows */
		n = n * 10 + (uint64_t)(*s++ - '0');
	}
	if (s == d || !s[0] || s[1])
		return AMT_FORM;
	u = unit_us(*s);
	if (!u)
		return AMT_FORM;
	if (n > (uint64_t)(INT64_MAX / u))
		return AMT_BIG;
	*out = (int64_t)n * u;
	return 0;
}

/* Parses an optionally negative decimal integer (the whole string) into
 * *out. Returns the rule or NULL. */
static const char *parse_int_us(const char *s, int64_t *out)
{
	int neg = *s == '-';
	uint64_t n = 0, lim = (uint64_t)INT64_MAX + (uint64_t)neg;

	for (s += neg; *s; s++) {
		unsigned dg = (unsigned)(*s - '0');

		if (n > (lim - dg) / 10)
			return "microseconds since the epoch overflow 64 bits";
		n = n * 10 + dg;
	}
	/* Negate in unsigned: -(INT64_MIN) does not fit an int64. */
	*out = neg ? (int64_t)(0 - n) : (int64_t)n;
	return NULL;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!is_digit((unsigned char)*s))
			return 0;
	return 1;
}

/* Checks the time-zone suffix at p ("Z" or +hh:mm / -hh:mm, then the end)
 * and gives its offset east of UTC in seconds. Returns the rule or NULL. */
static const char *parse_zone(const char *p, int64_t *off)
{
	unsigned hh, mm;

	*off = 0;
	if (*p == 'Z' || *p == 'z')
		return p[1] ? "unexpected characters after the time zone" :
			      NULL;
	if (*p == '\0')
		return "RFC 3339 time needs a time zone: \"Z\" or +hh:mm";
	if (*p != '+' && *p != '-')
		return "RFC 3339 time must end in \"Z\" or +hh:mm";
	if (!fixed_digits(p + 1, 2, &hh) || p[3] != ':' ||
	    !fixed_digits(p + 4, 2, &mm))
		return "time zone offset must be +hh:mm or -hh:mm";
	if (p[6])
		return "unexpected characters after the time zone";
	if (hh > 23 || mm > 59)
		return "time zone offset must be at most 23:59";
	*off = (int64_t)(hh * 3600 + mm * 60);
	if (*p == '-')
		*off = -*off;
	return NULL;
}

/* Checks the fraction of a second at *pp (after the '.'), 1 to 6 digits,
 * into microseconds and moves *pp past it. Returns the rule or NULL. */
static const char *parse_frac(const char **pp, int64_t *us)
{
	const char *p = *pp;
	int n = 0, i;

	*us = 0;
	while (is_digit((unsigned char)p[n]) && n < 7)
		n++;
	if (n == 0)
		return "fraction of a second needs 1 to 6 digits after \".\"";
	if (n > 6)
		return "fraction of a second has more than 6 digits (the "
		       "precision is one microsecond)";
	for (i = 0; i < 6; i++)
		*us = *us * 10 + (i < n ? p[i] - '0' : 0);
	*pp = p + n;
	return NULL;
}

/* Checks the date YYYY-MM-DD at s (already known to start with 4 digits
 * and '-') into days since the epoch. Returns the rule or NULL. */
static const char *parse_date(const char *s, int64_t *days)
{
	unsigned y, m, d;

	if (!fixed_digits(s, 4, &y) || s[4] != '-' ||
	    !fixed_digits(s + 5, 2, &m) || s[7] != '-' ||
	    !fixed_digits(s + 8, 2, &d))
		return "date must be YYYY-MM-DD with 2-digit month and day";
	if (y < 1970)
		return "year must be 1970 to 9999";
	if (m < 1 || m > 12)
		return "month must be 01 to 12";
	if (d < 1 || d > days_in_month(y, m))
		return m == 2 && d == 29 ?
		       "February 29 exists only in leap years" :
		       "day does not exist in that month";
	*days = days_from_civil(y, m, d);
	return NULL;
}

/* Parses RFC 3339 or a bare date at s. Returns the rule or NULL. */
static const char *parse_rfc3339(const char *s, int64_t *out)
{
	const char *p, *rule;
	unsigned hh, mi, ss;
	int64_t days, frac, off;

	rule = parse_date(s, &days);
	if (rule)
		return rule;
	if (s[10] == '\0') {
		*out = days * US_PER_DAY;
		return NULL;
	}
	if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
		return "date and time must be separated by \"T\" "
		       "(YYYY-MM-DDTHH:MM:SSZ)";
	if (!fixed_digits(s + 11, 2, &hh) || s[13] != ':' ||
	    !fixed_digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !fixed_digits(s + 17, 2, &ss))
		return "time of day must be HH:MM:SS";
	if (hh > 23)
		return "hour must be 00 to 23";
	if (mi > 59)
		return "minute must be 00 to 59";
	if (ss == 60)
		return "leap seconds (:60) are not accepted";
	if (ss > 59)
		return "second must be 00 to 59";
	p = s + 19;
	frac = 0;
	if (*p == '.') {
		p++;
		rule = parse_frac(&p, &frac);
		if (rule)
			return rule;
	}
	rule = parse_zone(p, &off);
	if (rule)
		return rule;
	/* Years 1970..9999 keep all of this far inside int64. */
	*out = (days * 86400 + hh * 3600 + mi * 60 + ss - off) * US_PER_S +
	       frac;
	return NULL;
}

/* "-2h", "+15m": now plus or minus an amount. Returns the rule or NULL. */
static const char *parse_relative(const char *s, int64_t now, int64_t *out)
{
	int64_t d;
	int rc = parse_amount(s + 1, &d);

	if (rc == AMT_FORM)
		return "relative time must be + or -, a whole number and "
		       UNITS " (e.g. -2h)";
	if (rc == AMT_BIG || !add_i64(now, s[0] == '-' ? -d : d, out))
		return "relative time overflows 64-bit microseconds";
	return NULL;
}

int ql_time_parse(int64_t *out, const char *in, int64_t now,
		  const char *field)
{
	const char *rule;
	unsigned year;
	int64_t t = 0;

	if (!in || !*in)
		return missing(field, in);
	if (has_prefix_ci(in, "now") && !in[3]) {
		*out = now;
		return QL_OK;
	}
	if (all_digits(in) || (in[0] == '-' && all_digits(in + 1)))
		rule = parse_int_us(in, &t);
	else if (in[0] == '+' || in[0] == '-')
		rule = parse_relative(in, now, &t);
	else if (fixed_digits(in, 4, &year) && in[4] == '-')
		rule = parse_rfc3339(in, &t);
	else
		rule = TIME_FORMS;
	if (rule)
		return bad(field, in, rule);
	*out = t;
	return QL_OK;
}

int ql_duration_parse(int64_t *out, const char *in, const char *field)
{
	int64_t d;
	int rc;

	if (!in || !*in)
		return missing(field, in);
	if (in[0] == '+' || in[0] == '-')
		return bad(field, in, "duration must not have a sign "
			   "(a whole number and " UNITS ", e.g. 30d)");
	rc = parse_amount(in, &d);
	if (rc == AMT_FORM)
		return bad(field, in, "duration must be a whole number and "
			   UNITS " (e.g. 30d)");
	if (rc == AMT_BIG)
		return bad(field, in, "duration overflows 64-bit microseconds");
	if (d == 0)
		return bad(field, in, "duration must be positive");
	*out = d;
	return QL_OK;
}

/* Floor division by a positive b with a remainder in [0, b), so that
 * times before 1970 come out right (-1 us is 23:59:59.999999). Written
 * as quotient-then-fix-up: q * b never leaves int64, even for
 * INT64_MIN. */
static int64_t floor_divmod(int64_t a, int64_t b, int64_t *rem)
{
	int64_t q = a / b, r = a % b;

	if (r < 0) {
		r += b;
		q--;
	}
	*rem = r;
	return q;
}

/* Writes n digits of v, zero-padded, at p. */
static size_t put_fixed(char *p, uint64_t v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return (size_t)n;
}

/* Output contract: outsz >= 32 always fits, even for INT64_MIN (year
 * -290308: years outside 0..9999 get a sign and as many digits as
 * needed, which is not RFC 3339 but never wrong). With a smaller buffer
 * the text is cut, NUL-terminated, and -1 returned. */
int ql_time_format(char *out, size_t outsz, int64_t ts)
{
	char buf[40];
	int64_t us, sod, y;
	int64_t days = floor_divmod(floor_divmod(ts, US_PER_S, &us), 86400,
				    &sod);
	unsigned m, d;
	size_t n = 0;

	civil_from_days(days, &y, &m, &d);
	if (y < 0) {
		buf[n++] = '-';
		y = -y;
	}
	if (y > 9999) {
		char t[20];
		size_t k = 0;

		while (y) {
			t[k++] = (char)('0' + y % 10);
			y /= 10;
		}
		while (k)
			buf[n++] = t[--k];
	} else {
		n += put_fixed(buf + n, (uint64_t)y, 4);
	}
	buf[n++] = '-';
	n += put_fixed(buf + n, m, 2);
	buf[n++] = '-';
	n += put_fixed(buf + n, d, 2);
	buf[n++] = 'T';
	n += put_fixed(buf + n, (uint64_t)(sod / 3600), 2);
	buf[n++] = ':';
	n += put_fixed(buf + n, (uint64_t)(sod / 60 % 60), 2);
	buf[n++] = ':';
	n += put_fixed(buf + n, (uint64_t)(sod % 60), 2);
	if (us) {
		buf[n++] = '.';
		n += put_fixed(buf + n, (uint64_t)us, 6);
	}
	buf[n++] = 'Z';
	buf[n] = '\0';
	return put_out(out, outsz, buf, n);
}
