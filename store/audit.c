/* audit.c - the append-only audit trail (format and rules in audit.h).
 *
 * Audit record framing, all integers little-endian:
 *
 *	0   4  payload length L, 1 .. 1048576
 *	4   8  xxh64, seed 0, of the payload
 *	12  L  payload: a one-line JSON object, beginning
 *	       {"ts":N,"time":"...","event":"...","who":"...",
 *	        ["order_id":"...",]"prev":"<hex16>",...}
 *
 * Files: audit/YYYY-MM.log (UTC month of the append, or the newest
 * existing file if later). prev chains every record to the one before it,
 * across files. A file holds nothing else: no header, so that a month file
 * is a plain concatenation of records and a torn append is always at the
 * end.
 *
 * Torn or damaged? A record that is incomplete, fails its sum or has an
 * impossible length is a torn tail when nothing valid follows it (a crash
 * during the one write of an append can leave only that), and damage
 * otherwise. A tear cannot be longer than one record, so a bad record more
 * than one maximal record before the end is damage without looking.
 */
#define _GNU_SOURCE
#include "audit.h"

#include "err.h"
#include "vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define HDR QLI_AUDIT_FRAME_HDR
#define MAXP QLI_AUDIT_MAX_PAYLOAD
#define WINDOW (256u << 10) /* read-ahead of the record walker */
#define NAME_LEN 11         /* "YYYY-MM.log" */
#define JSON_DEPTH 16

/* ---------------------------------------------------------------------- */
/* JSON text out                                                           */
/* ---------------------------------------------------------------------- */

static int put(qli_buf *b, const void *p, size_t n)
{
	int rc = qli_buf_reserve(b, n);

	if (rc)
		return rc;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static int puts_(qli_buf *b, const char *s)
{
	return put(b, s, strlen(s));
}

int qli_json_escape(qli_buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, n;
	int rc;

	/* Worst case 6 bytes per input byte, and the quotes. */
	rc = qli_buf_reserve(out, 6 * len + 2);
	if (rc)
		return rc;
	out->p[out->len++] = '"';
	while (i < len) {
		uint8_t c = p[i];
		uint8_t *o = out->p + out->len;

		if (c == '"' || c == '\\') {
			o[0] = '\\';
			o[1] = c;
			out->len += 2;
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(o, "\\u00", 4);
			o[4] = (uint8_t)hex[c >> 4];
			o[5] = (uint8_t)hex[c & 15];
			out->len += 6;
			i++;
		} else if (c < 0x80) {
			o[0] = c;
			out->len++;
			i++;
		} else if ((n = qli_utf8_seq(p + i, len - i)) != 0) {
			memcpy(o, p + i, n);
			out->len += n;
			i += n;
		} else {
			/* Not UTF-8: keep the text valid JSON and visible. */
			memcpy(o, "\\ufffd", 6);
			out->len += 6;
			i++;
		}
	}
	out->p[out->len++] = '"';
	return 0;
}

void qli_json_init(qli_json *j)
{
	memset(j, 0, sizeof(*j));
}

void qli_json_free(qli_json *j)
{
	if (j)
		qli_buf_free(&j->b);
}

static void jw_put(qli_json *j, const char *s, size_t n)
{
	if (!j->err)
		j->err = put(&j->b, s, n);
}

/* Writes the separator and the key of the next member or element. */
static int jw_sep(qli_json *j, const char *key)
{
	uint32_t bit = 1u << j->depth;
	int arr = !!(j->is_arr & bit);

	if (j->err)
		return j->err;
	if (arr != !key) {
		j->err = qli_err(QL_EINVAL, "audit fields: %s", arr ?
				 "a key inside an array" :
				 "an object member without a key");
		return j->err;
	}
	if (j->nonempty & bit)
		jw_put(j, ",", 1);
	j->nonempty |= bit;
	if (key && !j->err) {
		j->err = qli_json_escape(&j->b, key, strlen(key));
		jw_put(j, ":", 1);
	}
	return j->err;
}

void qli_json_str(qli_json *j, const char *key, const char *v)
{
	if (jw_sep(j, key))
		return;
	if (!v)
		jw_put(j, "null", 4);
	else
		j->err = qli_json_escape(&j->b, v, strlen(v));
}

void qli_json_i64(qli_json *j, const char *key, int64_t v)
{
	char t[24];

	if (!jw_sep(j, key))
		jw_put(j, t, (size_t)snprintf(t, sizeof(t), "%" PRId64, v));
}

void qli_json_u64(qli_json *j, const char *key, uint64_t v)
{
	char t[24];

	if (!jw_sep(j, key))
		jw_put(j, t, (size_t)snprintf(t, sizeof(t), "%" PRIu64, v));
}

void qli_json_time(qli_json *j, const char *key, int64_t t)
{
	char s[40];

	if (t == QLI_HOLD_OPEN) {
		qli_json_str(j, key, NULL);
		return;
	}
	ql_time_format(s, sizeof(s), t);
	qli_json_str(j, key, s);
}

void qli_json_hex64(qli_json *j, const char *key, uint64_t v)
{
	char s[20];

	snprintf(s, sizeof(s), "%016" PRIx64, v);
	qli_json_str(j, key, s);
}

static void jw_open(qli_json *j, const char *key, int arr)
{
	if (jw_sep(j, key))
		return;
	if (j->depth + 1 >= JSON_DEPTH) {
		j->err = qli_err(QL_EINVAL, "audit fields: nested deeper "
				 "than %d", JSON_DEPTH - 1);
		return;
	}
	jw_put(j, arr ? "[" : "{", 1);
	j->depth++;
	j->nonempty &= ~(1u << j->depth);
	if (arr)
		j->is_arr |= 1u << j->depth;
	else
		j->is_arr &= ~(1u << j->depth);
}

void qli_json_obj_begin(qli_json *j, const char *key)
{
	jw_open(j, key, 0);
}

void qli_json_arr_begin(qli_json *j, const char *key)
{
	jw_open(j, key, 1);
}

void qli_json_end(qli_json *j)
{
	if (j->err)
		return;
	if (!j->depth) {
		j->err = qli_err(QL_EINVAL, "audit fields: end without begin");
		return;
	}
	jw_put(j, (j->is_arr >> j->depth) & 1 ? "]" : "}", 1);
	j->depth--;
}

/* ---------------------------------------------------------------------- */
/* JSON text in: just enough to check a payload and pick three members     */
/* ---------------------------------------------------------------------- */

typedef struct jspan {
	const char *p, *e; /* raw value text; p NULL if absent */
} jspan;

typedef struct jinfo {
	jspan ts, prev, order_id;
} jinfo;

static const char *j_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* p at '"'; returns the position after the closing quote, or NULL. */
static const char *j_str(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c != '\\')
			continue;
		if (++p >= e)
			return NULL;
		if (*p == 'u') {
			if (e - p < 5 || !is_hex(p[1]) || !is_hex(p[2]) ||
			    !is_hex(p[3]) || !is_hex(p[4]))
				return NULL;
			p += 4;
		} else if (!strchr("\"\\/bfnrt", *p) || !*p) {
			return NULL;
		}
	}
	return NULL;
}

static const char *j_num(const char *p, const char *e)
{
	const char *s;

	if (p < e && *p == '-')
		p++;
	s = p;
	while (p < e && *p >= '0' && *p <= '9')
		p++;
	if (p == s)
		return NULL;
	if (p < e && *p == '.') {
		s = ++p;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
		if (p == s)
			return NULL;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		s = p;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
		if (p == s)
			return NULL;
	}
	return p;
}

static const char *j_val(const char *p, const char *e, int depth);

/* p at '{' or '['; returns the position after the closing bracket. */
static const char *j_container(const char *p, const char *e, int depth)
{
	char close = *p == '{' ? '}' : ']';
	int obj = *p == '{', first = 1;

	if (depth > 32)
		return NULL;
	for (p++;; first = 0) {
		p = j_ws(p, e);
		if (p < e && *p == close && first)
			return p + 1;
		if (!first) {
			if (p >= e || (*p != ',' && *p != close))
				return NULL;
			if (*p == close)
				return p + 1;
			p = j_ws(p + 1, e);
		}
		if (obj) {
			if (p >= e || *p != '"' || !(p = j_str(p, e)))
				return NULL;
			p = j_ws(p, e);
			if (p >= e || *p != ':')
				return NULL;
			p++;
		}
		p = j_val(p, e, depth + 1);
		if (!p)
			return NULL;
	}
}

static const char *j_val(const char *p, const char *e, int depth)
{
	p = j_ws(p, e);
	if (p >= e)
		return NULL;
	switch (*p) {
	case '"': return j_str(p, e);
	case '{':
	case '[': return j_container(p, e, depth);
	case 't': return e - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
	case 'f': return e - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
	case 'n': return e - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
	default: return j_num(p, e);
	}
}

static int key_is(const char *k, const char *ke, const char *name)
{
	size_t n = strlen(name);

	return (size_t)(ke - k) == n + 2 && !memcmp(k + 1, name, n);
}

/* Checks that the payload is one JSON object and finds the members the
 * trail itself needs. 0 or -1. */
static int j_parse(const char *p, size_t len, jinfo *ji)
{
	const char *e = p + len, *k, *ke, *v, *ve;
	int first = 1;

	memset(ji, 0, sizeof(*ji));
	p = j_ws(p, e);
	if (p >= e || *p != '{')
		return -1;
	/* Validate the whole object first; then walk its top level. */
	if (!(ve = j_container(p, e, 0)) || j_ws(ve, e) != e)
		return -1;
	for (p++;; first = 0) {
		p = j_ws(p, e);
		if (*p == '}')
			return 0;
		if (!first)
			p = j_ws(p + 1, e);
		k = p;
		ke = j_str(p, e);
		v = j_ws(j_ws(ke, e) + 1, e);
		ve = j_val(v, e, 1);
		if (key_is(k, ke, "ts"))
			ji->ts = (jspan){ v, ve };
		else if (key_is(k, ke, "prev"))
			ji->prev = (jspan){ v, ve };
		else if (key_is(k, ke, "order_id"))
			ji->order_id = (jspan){ v, ve };
		p = ve;
	}
}

static int j_i64(jspan s, int64_t *out)
{
	const char *p = s.p;
	int neg = 0;
	uint64_t v = 0, lim;

	if (!p)
		return -1;
	if (*p == '-')
		neg = 1, p++;
	if (p == s.e)
		return -1;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; p < s.e; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (v > (lim - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static int j_hex64(jspan s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s.p || s.e - s.p != 18 || s.p[0] != '"')
		return -1;
	for (const char *p = s.p + 1; p < s.e - 1; p++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

static unsigned hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (unsigned)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (unsigned)(c - 'a' + 10);
	return (unsigned)(c - 'A' + 10);
}

static unsigned j_u4(const char *p)
{
	return hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 |
	       hexval(p[3]);
}

static size_t put_utf8(char *o, uint32_t c)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | c >> 12);
		o[1] = (char)(0x80 | (c >> 6 & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | c >> 18);
	o[1] = (char)(0x80 | (c >> 12 & 0x3f));
	o[2] = (char)(0x80 | (c >> 6 & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Whether a checked JSON string value (raw, with quotes) decodes to s. */
static int j_str_eq(jspan v, const char *s)
{
	char out[4 * QLI_ORDER_ID_MAX + 8];
	const char *p;
	size_t n = 0;

	if (!v.p || *v.p != '"')
		return 0;
	for (p = v.p + 1; p < v.e - 1; p++) {
		uint32_t c;

		if (n + 4 >= sizeof(out))
			return 0; /* longer than any order ID */
		if (*p != '\\') {
			out[n++] = *p;
			continue;
		}
		p++;
		switch (*p) {
		case 'b': out[n++] = '\b'; continue;
		case 'f': out[n++] = '\f'; continue;
		case 'n': out[n++] = '\n'; continue;
		case 'r': out[n++] = '\r'; continue;
		case 't': out[n++] = '\t'; continue;
		case 'u': break;
		default: out[n++] = *p; continue;
		}
		c = j_u4(p + 1);
		p += 4;
		if (c >= 0xd800 && c <= 0xdbff && v.e - 1 - p > 6 &&
		    p[1] == '\\' && p[2] == 'u') {
			uint32_t lo = j_u4(p + 3);

			if (lo >= 0xdc00 && lo <= 0xdfff) {
				c = 0x10000 + ((c - 0xd800) << 10) +
				    (lo - 0xdc00);
				p += 6;
			}
		}
		n += put_utf8(out + n, c);
	}
	return n == strlen(s) && !memcmp(out, s, n);
}

/* ---------------------------------------------------------------------- */
/* month files                                                             */
/* ---------------------------------------------------------------------- */

/* "YYYY-MM.log" for the UTC month of t. QL_ERANGE outside 0000-9999. */
static int month_name(char out[16], int64_t t)
{
	char s[40];

	ql_time_format(s, sizeof(s), t);
	if (s[0] == '-' || s[4] != '-')
		return qli_err(QL_ERANGE, "audit: time %" PRId64 " is outside "
			       "the years 0000-9999", t);
	snprintf(out, 16, "%.7s.log", s);
	return 0;
}

/* The month [start, end) a file name stands for; -1 if it is not one. */
static int month_range(const char *name, int64_t *start, int64_t *end)
{
	char s[32];
	int y = 0, m = 0, i;

	if (strlen(name) != NAME_LEN || name[4] != '-' ||
	    strcmp(name + 7, ".log"))
		return -1;
	for (i = 0; i < 7; i++) {
		if (i == 4)
			continue;
		if (name[i] < '0' || name[i] > '9')
			return -1;
		if (i < 4)
			y = y * 10 + (name[i] - '0');
		else
			m = m * 10 + (name[i] - '0');
	}
	if (m < 1 || m > 12)
		return -1;
	snprintf(s, sizeof(s), "%04d-%02d-01", y, m);
	if (ql_time_parse(start, s, 0, "audit file"))
		return -1;
	if (m == 12)
		y++, m = 1;
	else
		m++;
	if (y > 9999) {
		*end = INT64_MAX;
		return 0;
	}
	snprintf(s, sizeof(s), "%04d-%02d-01", y, m);
	return ql_time_parse(end, s, 0, "audit file") ? -1 : 0;
}

typedef struct names {
	char (*v)[16];
	size_t n, cap;
} names;

static int names_add(const char *name, void *ctx)
{
	names *l = ctx;
	int64_t a, b;

	if (month_range(name, &a, &b))
		return 0; /* not ours: ignored */
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		void *v = realloc(l->v, cap * sizeof(*l->v));

		if (!v)
			return -2;
		l->v = v;
		l->cap = cap;
	}
	snprintf(l->v[l->n++], 16, "%s", name);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The month files in adir, ascending (the names sort as the months). */
static int names_list(int adir, names *l)
{
	int rc;

	memset(l, 0, sizeof(*l));
	rc = qli_vfs_cur->listdir(adir, names_add, l);
	if (rc) {
		free(l->v);
		memset(l, 0, sizeof(*l));
		if (rc == -2)
			return qli_err(QL_ENOMEM, "out of memory listing %s",
				       QLI_AUDIT_DIR);
		return qli_errno(errno, "list", QLI_AUDIT_DIR);
	}
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), name_cmp);
	return 0;
}

static int newest_name(int adir, char out[16])
{
	names l;
	int rc = names_list(adir, &l);

	if (rc)
		return rc;
	snprintf(out, 16, "%s", l.n ? l.v[l.n - 1] : "");
	free(l.v);
	return 0;
}

static int open_adir(int dirfd, int *adir)
{
	*adir = qli_vfs_cur->openat(dirfd, QLI_AUDIT_DIR,
				    O_RDONLY | O_DIRECTORY, 0);
	if (*adir >= 0)
		return 0;
	if (errno == ELOOP || errno == ENOTDIR)
		return qli_err(QL_EUNSAFE, "%s is a symbolic link or not a "
			       "directory: refused", QLI_AUDIT_DIR);
	return qli_errno(errno, "open", QLI_AUDIT_DIR);
}

/* ---------------------------------------------------------------------- */
/* the record walker                                                       */
/* ---------------------------------------------------------------------- */

typedef struct walk {
	int fd;
	char path[32];   /* "audit/YYYY-MM.log", for messages */
	uint64_t size;
	uint64_t off;    /* the next record; at the end, the valid end */
	uint64_t prev;   /* hash of the last valid payload */
	int have_prev;   /* prev is known: check the next record's link */
	int torn;        /* stopped at a torn tail at off */
	uint8_t *buf;
	size_t cap, blen;
	uint64_t boff;
	/* the record just read */
	const char *payload;
	size_t len;
	int64_t ts;
	jinfo ji;
} walk;

static void walk_init(walk *w, int fd, const char *name, uint64_t size,
		      uint64_t off, uint64_t prev, int have_prev)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	snprintf(w->path, sizeof(w->path), "%s/%s", QLI_AUDIT_DIR, name);
	w->size = size;
	w->off = off;
	w->prev = prev;
	w->have_prev = have_prev;
}

static void walk_done(walk *w)
{
	free(w->buf);
	w->buf = NULL;
}

/* Makes [off, off + len) available at *p. 0; 1 if the file ends sooner
 * (it shrank under us: treated like a tear); or a QL_E* code. */
static int wread(walk *w, uint64_t off, size_t len, const uint8_t **p)
{
	size_t want = len, got = 0;

	if (off >= w->boff && off + len <= w->boff + w->blen) {
		*p = w->buf + (off - w->boff);
		return 0;
	}
	if (want < WINDOW)
		want = WINDOW;
	if (want > w->size - off)
		want = (size_t)(w->size - off);
	if (want < len)
		return 1;
	if (want > w->cap) {
		uint8_t *nb = realloc(w->buf, want);

		if (!nb)
			return qli_err(QL_ENOMEM, "out of memory reading %s",
				       w->path);
		w->buf = nb;
		w->cap = want;
	}
	w->blen = 0;
	while (got < want) {
		ssize_t n = qli_vfs_cur->pread(w->fd, w->buf + got, want - got,
					       (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return qli_errno(errno, "read", w->path);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	w->boff = off;
	w->blen = got;
	if (got < len)
		return 1;
	*p = w->buf;
	return 0;
}

static int damaged(const walk *w, uint64_t off, const char *what)
{
	return qli_err(QL_ECORRUPT, "%s: offset %" PRIu64 ": %s", w->path,
		       off, what);
}

/* Whether a valid record starts at p[0..r). */
static int frame_ok(const uint8_t *p, uint64_t r)
{
	uint32_t len;

	if (r < HDR + 2)
		return 0;
	len = qli_get32(p);
	if (len < 2 || len > MAXP || len > r - HDR || p[HDR] != '{' ||
	    p[HDR + len - 1] != '}')
		return 0;
	return qli_hash64(p + HDR, len, 0) == qli_get64(p + 4);
}

/* The record at w->off is bad: a torn tail if nothing valid follows. */
static int tail(walk *w)
{
	uint64_t r = w->size - w->off;
	const uint8_t *p;
	char msg[96];
	int rc;

	if (r > HDR + MAXP)
		return damaged(w, w->off, "damaged record (bad length or "
			       "checksum) in the middle of the file");
	rc = wread(w, w->off, (size_t)r, &p);
	if (rc < 0)
		return rc;
	for (uint64_t o = 1; !rc && o + HDR < r; o++) {
		if (!frame_ok(p + o, r - o))
			continue;
		snprintf(msg, sizeof(msg), "damaged record (a valid record "
			 "follows at offset %" PRIu64 ")", w->off + o);
		return damaged(w, w->off, msg);
	}
	w->torn = 1;
	return 0;
}

static int check_payload(walk *w, uint64_t hash)
{
	uint64_t link;

	if (j_parse(w->payload, w->len, &w->ji) || j_i64(w->ji.ts, &w->ts))
		return damaged(w, w->off, "record is not a JSON object with an "
			       "integer ts");
	if (j_hex64(w->ji.prev, &link))
		return damaged(w, w->off, "record has no valid prev link");
	if (w->have_prev && link != w->prev) {
		char msg[128];

		snprintf(msg, sizeof(msg), "chain broken: prev %016" PRIx64
			 ", the record before has %016" PRIx64 " (a record "
			 "is missing or out of order)", link, w->prev);
		return damaged(w, w->off, msg);
	}
	w->prev = hash;
	w->have_prev = 1;
	return 0;
}

/* Reads the next record: 1 with w->payload/len/ts set, 0 at the end (w->off
 * is then the valid end, w->torn set if a torn tail follows), or an
 * error. */
static int walk_next(walk *w)
{
	const uint8_t *p;
	uint64_t hash;
	uint32_t len;
	int rc;

	if (w->torn || w->off >= w->size)
		return 0;
	if (w->size - w->off < HDR)
		return tail(w);
	rc = wread(w, w->off, HDR, &p);
	if (rc)
		return rc < 0 ? rc : tail(w);
	len = qli_get32(p);
	hash = qli_get64(p + 4);
	if (len == 0 || len > MAXP || len > w->size - w->off - HDR)
		return tail(w);
	rc = wread(w, w->off + HDR, len, &p);
	if (rc)
		return rc < 0 ? rc : tail(w);
	if (qli_hash64(p, len, 0) != hash)
		return tail(w);
	w->payload = (const char *)p;
	w->len = len;
	rc = check_payload(w, hash);
	if (rc)
		return rc;
	w->off += HDR + len;
	return 1;
}

/* Walks to the end; with cut, removes a torn tail (the caller holds the
 * file's lock; the cut is made durable by the caller's next fdatasync). */
static int walk_all(walk *w, int cut)
{
	int rc;

	while ((rc = walk_next(w)) == 1)
		;
	if (rc)
		return rc;
	if (w->torn && cut && qli_vfs_cur->ftruncate(w->fd,
						     (off_t)w->off) < 0)
		return qli_errno(errno, "cut torn tail of", w->path);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the appender                                                            */
/* ---------------------------------------------------------------------- */

struct qli_audit {
	int dirfd, adir;
	unsigned file_mode;
	int fd;          /* the month file, or -1 */
	char name[16];
	uint64_t end;    /* everything before is checked and chained */
	uint64_t prev;   /* hash of the record ending at end */
	int known;       /* end and prev are valid for fd */
	qli_buf frame;
};

int qli_audit_open(qli_audit **out, int dirfd, unsigned file_mode,
		   unsigned dir_mode)
{
	qli_audit *a;
	int rc = 0;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return qli_err(QL_ENOMEM, "out of memory");
	a->dirfd = dirfd;
	a->fd = -1;
	a->file_mode = file_mode ? file_mode : 0600;
	if (qli_vfs_cur->mkdirat(dirfd, QLI_AUDIT_DIR,
				 dir_mode ? dir_mode : 0700) == 0)
		rc = qli_sync_dir(dirfd, QLI_AUDIT_DIR);
	else if (errno != EEXIST)
		rc = qli_errno(errno, "create", QLI_AUDIT_DIR);
	if (!rc)
		rc = open_adir(dirfd, &a->adir);
	if (rc) {
		free(a);
		return rc;
	}
	*out = a;
	return 0;
}

static void drop_file(qli_audit *a)
{
	if (a->fd >= 0)
		qli_vfs_cur->close(a->fd);
	a->fd = -1;
	a->known = 0;
	a->name[0] = '\0';
}

void qli_audit_close(qli_audit *a)
{
	if (!a)
		return;
	drop_file(a);
	qli_vfs_cur->close(a->adir);
	qli_buf_free(&a->frame);
	free(a);
}

static int flock_ex(int fd, const char *path)
{
	int r;

	do
		r = qli_vfs_cur->flock(fd, LOCK_EX);
	while (r < 0 && errno == EINTR);
	return r < 0 ? qli_errno(errno, "lock", path) : 0;
}

static void unlock(int fd)
{
	qli_vfs_cur->flock(fd, LOCK_UN);
}

/* Opens and locks the file to append to: the month of now, or the newest
 * file if later. Re-checks after locking, since the file may have been
 * expired (unlinked) or a newer month begun while we waited. */
static int lock_target(qli_audit *a, int64_t now)
{
	char target[16], newest[16];
	struct stat st;
	int rc, tries;

	rc = month_name(target, now);
	for (tries = 0; !rc && tries < 16; tries++) {
		rc = newest_name(a->adir, newest);
		if (rc)
			break;
		if (strcmp(newest, target) > 0)
			memcpy(target, newest, sizeof(target));
		if (a->fd >= 0 && strcmp(a->name, target))
			drop_file(a);
		if (a->fd < 0) {
			a->fd = qli_vfs_cur->openat(a->adir, target,
						    O_RDWR | O_CREAT,
						    a->file_mode);
			if (a->fd < 0)
				return qli_errno(errno, "open audit file",
						 target);
			memcpy(a->name, target, sizeof(a->name));
			a->known = 0;
		}
		rc = flock_ex(a->fd, a->name);
		if (rc)
			break;
		if (qli_vfs_cur->fstat(a->fd, &st) < 0) {
			rc = qli_errno(errno, "stat", a->name);
		} else if (!(rc = newest_name(a->adir, newest)) &&
			   st.st_nlink > 0 && strcmp(newest, a->name) <= 0) {
			return 0; /* locked, linked and newest */
		}
		unlock(a->fd);
		drop_file(a);
	}
	return rc ? rc : qli_err(QL_EIO, "%s: the month file kept changing "
				 "while locking it", QLI_AUDIT_DIR);
}

/* A new (empty) month file: its first record links to the last record of
 * the newest earlier file that has one. Each is locked while read, so no
 * append to it can follow (appenders re-check for newer files after
 * locking); a torn tail found there is cut. */
static int chain_from_previous(qli_audit *a)
{
	names l;
	size_t i;
	int rc, fd;

	a->prev = 0;
	rc = names_list(a->adir, &l);
	for (i = l.n; !rc && i-- > 0;) {
		struct stat st;
		walk w;

		if (strcmp(l.v[i], a->name) >= 0)
			continue;
		fd = qli_vfs_cur->openat(a->adir, l.v[i], O_RDWR, 0);
		if (fd < 0 && errno == ENOENT)
			continue; /* expired meanwhile */
		if (fd < 0)
			rc = qli_errno(errno, "open audit file", l.v[i]);
		else if (!(rc = flock_ex(fd, l.v[i])) &&
			 qli_vfs_cur->fstat(fd, &st) < 0)
			rc = qli_errno(errno, "stat", l.v[i]);
		if (!rc) {
			walk_init(&w, fd, l.v[i], (uint64_t)st.st_size, 0, 0,
				  0);
			rc = walk_all(&w, 1);
			if (!rc && w.torn && qli_vfs_cur->fdatasync(fd) < 0)
				rc = qli_errno(errno, "fdatasync", w.path);
			walk_done(&w);
			if (!rc && w.have_prev) {
				a->prev = w.prev;
				qli_vfs_cur->close(fd);
				break;
			}
		}
		if (fd >= 0)
			qli_vfs_cur->close(fd);
	}
	free(l.v);
	return rc;
}

/* Brings end and prev up to date with the locked file: checks what other
 * writers appended since this handle last looked, cuts a torn tail. */
static int sync_tail(qli_audit *a)
{
	struct stat st;
	walk w;
	int rc, from_start;

	if (qli_vfs_cur->fstat(a->fd, &st) < 0)
		return qli_errno(errno, "stat", a->name);
	if (a->known && (uint64_t)st.st_size == a->end)
		return 0;
	from_start = !a->known || (uint64_t)st.st_size < a->end;
	walk_init(&w, a->fd, a->name, (uint64_t)st.st_size,
		  from_start ? 0 : a->end, from_start ? 0 : a->prev,
		  !from_start);
	rc = walk_all(&w, 1);
	walk_done(&w);
	if (rc)
		return rc;
	a->end = w.off;
	a->prev = w.prev;
	a->known = 1;
	if (a->end == 0)
		return chain_from_previous(a);
	return 0;
}

static int name_ok(const char *ev)
{
	size_t n = ev ? strlen(ev) : 0;

	if (n < 1 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((ev[i] >= 'a' && ev[i] <= 'z') ||
		      (ev[i] >= '0' && ev[i] <= '9') || ev[i] == '_'))
			return 0;
	return 1;
}

/* Builds the whole frame in a->frame: header, then the payload. */
static int build(qli_audit *a, int64_t now, const char *event,
		 const char *who, const char *order_id, const qli_json *f)
{
	qli_buf *b = &a->frame;
	char t[64];
	int rc;

	b->len = 0;
	rc = qli_buf_reserve(b, HDR);
	if (rc)
		return rc;
	b->len = HDR;
	snprintf(t, sizeof(t), "{\"ts\":%" PRId64 ",\"time\":", now);
	rc = puts_(b, t);
	ql_time_format(t, sizeof(t), now);
	rc = rc ? rc : qli_json_escape(b, t, strlen(t));
	rc = rc ? rc : puts_(b, ",\"event\":");
	rc = rc ? rc : qli_json_escape(b, event, strlen(event));
	rc = rc ? rc : puts_(b, ",\"who\":");
	rc = rc ? rc : qli_json_escape(b, who, strlen(who));
	if (order_id) {
		rc = rc ? rc : puts_(b, ",\"order_id\":");
		rc = rc ? rc : qli_json_escape(b, order_id, strlen(order_id));
	}
	snprintf(t, sizeof(t), ",\"prev\":\"%016" PRIx64 "\"", a->prev);
	rc = rc ? rc : puts_(b, t);
	if (f && f->b.len) {
		rc = rc ? rc : puts_(b, ",");
		rc = rc ? rc : put(b, f->b.p, f->b.len);
	}
	rc = rc ? rc : puts_(b, "}");
	if (rc)
		return rc;
	if (b->len - HDR > MAXP)
		return qli_err(QL_EINVAL, "audit event %s: %zu bytes (at most "
			       "%u)", event, b->len - HDR, MAXP);
	qli_put32(b->p, (uint32_t)(b->len - HDR));
	qli_put64(b->p + 4, qli_hash64(b->p + HDR, b->len - HDR, 0));
	return 0;
}

static int write_frame(qli_audit *a)
{
	char path[32];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", QLI_AUDIT_DIR, a->name);
	rc = qli_write_full(a->fd, a->frame.p, a->frame.len, (off_t)a->end,
			    path);
	/* fdatasync covers the data and the new size, and also a torn tail
	 * cut just before (a size change). */
	if (!rc && qli_vfs_cur->fdatasync(a->fd) < 0)
		rc = qli_errno(errno, "fdatasync", path);
	/* The first record of a month makes the file's name matter. */
	if (!rc && a->end == 0)
		rc = qli_sync_dir(a->adir, QLI_AUDIT_DIR);
	if (rc) {
		/* Best effort: leave no half record for the next append to
		 * find; it would cut it anyway. */
		qli_vfs_cur->ftruncate(a->fd, (off_t)a->end);
		a->known = 0;
		return rc;
	}
	a->prev = qli_get64(a->frame.p + 4);
	a->end += a->frame.len;
	return 0;
}

int qli_audit_prepare(qli_audit *a, int64_t now, const char *event,
		      const char *who, const char *order_id,
		      const qli_json *fields)
{
	int rc;

	if (!name_ok(event))
		return qli_err(QL_EINVAL, "audit event name \"%s\": 1 to 32 of "
			       "a-z, 0-9, _", event ? event : "");
	if (!who || !*who)
		return qli_err(QL_EINVAL, "audit event %s: who is missing "
			       "(required)", event);
	if (fields && (fields->err || fields->depth))
		return fields->err ? fields->err :
		       qli_err(QL_EINVAL, "audit event %s: fields left an "
			       "object or array open", event);
	rc = lock_target(a, now);
	if (rc)
		return rc;
	rc = sync_tail(a);
	if (!rc)
		rc = build(a, now, event, who, order_id, fields);
	if (rc)
		unlock(a->fd);
	return rc;
}

int qli_audit_commit(qli_audit *a)
{
	int rc = write_frame(a);

	unlock(a->fd);
	return rc;
}

void qli_audit_abort(qli_audit *a)
{
	unlock(a->fd);
}

int qli_audit_append(qli_audit *a, int64_t now, const char *event,
		     const char *who, const char *order_id,
		     const qli_json *fields)
{
	int rc = qli_audit_prepare(a, now, event, who, order_id, fields);

	return rc ? rc : qli_audit_commit(a);
}

/* ---------------------------------------------------------------------- */
/* the events                                                              */
/* ---------------------------------------------------------------------- */

static int append_fields(qli_audit *a, int64_t now, const char *event,
			 const char *who, const char *order_id, qli_json *j)
{
	int rc = qli_audit_append(a, now, event, who, order_id, j);

	qli_json_free(j);
	return rc;
}

int qli_audit_segment_sealed(qli_audit *a, int64_t now, const char *who,
			     const char *segment, uint64_t records,
			     uint64_t bytes, uint64_t checksum)
{
	qli_json j;

	qli_json_init(&j);
	qli_json_str(&j, "segment", segment);
	qli_json_u64(&j, "records", records);
	qli_json_u64(&j, "bytes", bytes);
	qli_json_hex64(&j, "checksum", checksum);
	return append_fields(a, now, QLI_AEV_SEGMENT_SEALED, who, NULL, &j);
}

int qli_audit_segment_expired(qli_audit *a, int64_t now, const char *who,
			      const qli_seg_desc *seg,
			      const qli_ret_decision *d,
			      int64_t retention_us)
{
	qli_json j;

	if (d->action != QLI_RET_EXPIRE)
		return qli_err(QL_EINVAL, "segment %s: audit of an expiry the "
			       "plan did not decide (%s)", seg->name,
			       qli_ret_action_name(d->action));
	qli_json_init(&j);
	qli_json_str(&j, "segment", seg->name);
	qli_json_time(&j, "bucket_start", seg->bucket_start);
	qli_json_time(&j, "bucket_end", seg->bucket_end);
	qli_json_u64(&j, "generation", seg->generation);
	qli_json_u64(&j, "records", seg->records);
	qli_json_u64(&j, "bytes", seg->bytes);
	qli_json_i64(&j, "retention_us", retention_us);
	qli_json_time(&j, "due_at", d->due_at);
	qli_json_str(&j, "why", "its whole time range is older than the "
		     "retention period and no active hold covers it");
	qli_json_arr_begin(&j, "holds");
	for (size_t i = 0; i < d->nrefs; i++) {
		const qli_hold *h = d->refs[i].hold;

		qli_json_obj_begin(&j, NULL);
		qli_json_str(&j, "order_id", h->order_id);
		qli_json_str(&j, "state", qli_hold_state_name(
					 qli_hold_state_at(h, now)));
		qli_json_str(&j, "why", qli_ret_why_name(d->refs[i].why));
		qli_json_end(&j);
	}
	qli_json_end(&j);
	return append_fields(a, now, QLI_AEV_SEGMENT_EXPIRED, who, NULL, &j);
}

static void hold_details(qli_json *j, const qli_hold *h)
{
	qli_json_time(j, "from", h->from);
	qli_json_time(j, "to", h->to);
	qli_json_i64(j, "period_us", h->period_us);
	qli_json_str(j, "reason", h->reason);
	qli_json_str(j, "placed_by", h->placed_by);
	qli_json_arr_begin(j, "subjects");
	for (size_t i = 0; i < h->nsubjects; i++)
		qli_json_str(j, NULL, h->subjects[i]);
	qli_json_end(j);
}

int qli_audit_hold_prepare(qli_audit *a, int64_t now, const char *event,
			   const char *who, const qli_hold *h,
			   int64_t old_expires, int64_t new_expires)
{
	int placed = !strcmp(event, QLI_AEV_HOLD_PLACED);
	int extended = !strcmp(event, QLI_AEV_HOLD_EXTENDED);
	int ended = !strcmp(event, QLI_AEV_HOLD_RELEASED) ||
		    !strcmp(event, QLI_AEV_HOLD_LAPSED);
	qli_json j;
	int rc;

	if (!placed && !extended && !ended)
		return qli_err(QL_EINVAL, "audit: %s is not a hold event",
			       event);
	qli_json_init(&j);
	qli_json_str(&j, "state", qli_hold_state_name(h->state));
	if (placed)
		qli_json_str(&j, "old_expires", NULL);
	else
		qli_json_time(&j, "old_expires", old_expires);
	if (ended)
		qli_json_str(&j, "new_expires", NULL);
	else
		qli_json_time(&j, "new_expires", new_expires);
	if (placed)
		hold_details(&j, h);
	if (ended) {
		qli_json_time(&j, "ended_at", h->ended_at);
		if (h->ended_by[0])
			qli_json_str(&j, "ended_by", h->ended_by);
	}
	rc = qli_audit_prepare(a, now, event, who, h->order_id, &j);
	qli_json_free(&j);
	return rc;
}

int qli_audit_hold(qli_audit *a, int64_t now, const char *event,
		   const char *who, const qli_hold *h, int64_t old_expires,
		   int64_t new_expires)
{
	int rc = qli_audit_hold_prepare(a, now, event, who, h, old_expires,
					new_expires);

	return rc ? rc : qli_audit_commit(a);
}

int qli_audit_query(qli_audit *a, int64_t now, const char *who,
		    const char *order_id, const char *query)
{
	qli_json j;

	qli_json_init(&j);
	qli_json_str(&j, "query", query ? query : "");
	return append_fields(a, now, QLI_AEV_QUERY, who, order_id, &j);
}

/* ---------------------------------------------------------------------- */
/* reading                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct reader {
	int64_t since;
	const char *order_id;
	qli_audit_fn fn;
	void *ctx;
	qli_buf copy;    /* NUL-terminated payload for fn */
	uint64_t prev;   /* chain carried from the previous file */
	int have_prev;
} reader;

static int emit(reader *r, walk *w)
{
	int rc;

	if (w->ts < r->since)
		return 0;
	if (r->order_id && !j_str_eq(w->ji.order_id, r->order_id))
		return 0;
	r->copy.len = 0;
	rc = qli_buf_reserve(&r->copy, w->len + 1);
	if (rc)
		return rc;
	memcpy(r->copy.p, w->payload, w->len);
	r->copy.p[w->len] = '\0';
	return r->fn((const char *)r->copy.p, w->len, w->ts, r->ctx);
}

static int read_file(reader *r, int adir, const char *name)
{
	struct stat st;
	walk w;
	int fd, rc;

	fd = qli_vfs_cur->openat(adir, name, O_RDONLY, 0);
	if (fd < 0 && errno == ENOENT) {
		r->have_prev = 0; /* expired while we read: no link */
		return 0;
	}
	if (fd < 0)
		return qli_errno(errno, "open audit file", name);
	if (qli_vfs_cur->fstat(fd, &st) < 0) {
		rc = qli_errno(errno, "stat", name);
		goto out_close;
	}
	walk_init(&w, fd, name, (uint64_t)st.st_size, 0, r->prev,
		  r->have_prev);
	while ((rc = walk_next(&w)) == 1) {
		rc = emit(r, &w);
		if (rc)
			break;
	}
	r->prev = w.prev;
	r->have_prev = w.have_prev;
	walk_done(&w);
out_close:
	qli_vfs_cur->close(fd);
	return rc;
}

int qli_audit_read(int dirfd, int64_t since, const char *order_id,
		   qli_audit_fn fn, void *ctx)
{
	reader r = { since, order_id, fn, ctx, { 0 }, 0, 0 };
	int adir, rc;
	names l;

	rc = open_adir(dirfd, &adir);
	if (rc == QL_ENOTFOUND)
		return 0; /* no event was ever written */
	if (rc)
		return rc;
	rc = names_list(adir, &l);
	for (size_t i = 0; !rc && i < l.n; i++) {
		int64_t start, end;

		month_range(l.v[i], &start, &end);
		if (end <= since) {
			/* No event in it is that late (see audit.h). */
			r.have_prev = 0;
			continue;
		}
		rc = read_file(&r, adir, l.v[i]);
	}
	free(l.v);
	qli_buf_free(&r.copy);
	qli_vfs_cur->close(adir);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* expiry                                                                  */
/* ---------------------------------------------------------------------- */

int qli_audit_expire(int dirfd, int64_t now, int64_t retention_us,
		     int (*fn)(const char *name, void *ctx), void *ctx)
{
	int64_t cut = now < INT64_MIN + retention_us ? INT64_MIN :
		      now - retention_us;
	int adir, rc, removed = 0;
	names l;

	if (retention_us <= 0)
		return qli_err(QL_EINVAL, "audit retention %" PRId64 " us: "
			       "must be positive", retention_us);
	rc = open_adir(dirfd, &adir);
	if (rc == QL_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	rc = names_list(adir, &l);
	/* The newest file is never removed: appends go there. */
	for (size_t i = 0; !rc && i + 1 < l.n; i++) {
		int64_t start, end;

		month_range(l.v[i], &start, &end);
		if (end > cut)
			break; /* ascending: the rest are younger */
		if (fn && (rc = fn(l.v[i], ctx)) != 0)
			break;
		if (qli_vfs_cur->unlinkat(adir, l.v[i], 0) < 0 &&
		    errno != ENOENT) {
			rc = qli_errno(errno, "remove audit file", l.v[i]);
			break;
		}
		removed++;
	}
	if (removed) {
		int src = qli_sync_dir(adir, QLI_AUDIT_DIR);

		rc = rc ? rc : src;
	}
	free(l.v);
	qli_vfs_cur->close(adir);
	return rc ? rc : removed;
}
