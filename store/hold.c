/* hold.c - court-order holds: rules, the HOLDS file, the maint lock.
 *
 * HOLDS file format, version 1 (all integers little-endian)
 * ---------------------------------------------------------
 * One file in the store directory, replaced whole and atomically
 * (HOLDS.tmp, fsync, rename, fsync directory) on every change, so it is
 * always either the old or the new set. No partial state to recover.
 *
 *	header, 16 bytes
 *	  0   4  magic "QLHD" (0x51 0x4c 0x48 0x44)
 *	  4   4  format version, 1
 *	  8   4  number of holds N
 *	 12   4  body length B in bytes
 *	body, B bytes: N hold records back to back, each
 *	  0   8  from       i64 microseconds since the epoch, UTC
 *	  8   8  to         i64; INT64_MAX = open (prospective hold)
 *	 16   8  expires    i64
 *	 24   8  period_us  i64, > 0
 *	 32   8  placed_at  i64
 *	 40   8  ended_at   i64; 0 while active
 *	 48   1  state      0 active, 1 released, 2 lapsed
 *	 49   1  reserved, 0
 *	 50   2  number of subjects S (u16, <= 1024)
 *	 52      4 + S strings, each a u16 length and that many bytes (no
 *	         NUL): order_id (1..128), reason (<= 1024), placed_by
 *	         (<= 128), ended_by (<= 128), then the S subjects (1..254,
 *	         canonical)
 *	trailer, 8 bytes
 *	  0   8  xxh64, seed 0, of the header and the body
 *
 * The file is exactly 16 + B + 8 bytes. A reader refuses (QL_ECORRUPT)
 * anything else: another size, a bad checksum, a field out of range, a
 * duplicate order ID. A version other than 1 is QL_EVERSION. Any change
 * of layout bumps the version; a reader never guesses. A missing file is
 * an empty set (a new store); an empty or damaged one is never that.
 */
#define _GNU_SOURCE
#include "hold.h"

#include "codec.h"
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

#define HOLDS_HDR 16
#define HOLDS_TRAILER 8
#define HOLD_FIXED 52
#define HOLDS_MAX_FILE (256u << 20)

static const uint8_t holds_magic[4] = { 'Q', 'L', 'H', 'D' };

/* ---------------------------------------------------------------------- */
/* text rules                                                              */
/* ---------------------------------------------------------------------- */

/* Length of the UTF-8 sequence at p (at most rem bytes), or 0 if it is
 * not a well-formed one (overlong, surrogate, beyond U+10FFFF, cut). */
size_t qli_utf8_seq(const uint8_t *p, size_t rem)
{
	uint32_t c;
	size_t n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, c = p[0] & 0x07;
	else
		return 0;
	if (n > rem)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	return n;
}

/* who / reason: 1..max bytes of UTF-8, no control characters, so that
 * listings and audit lines stay one line each. */
static int text_check(const char *s, size_t max, const char *field)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t len, i, n;

	if (!s || !*s)
		return qli_err(QL_EINVAL, "%s: missing (required)", field);
	len = strlen(s);
	if (len > max)
		return qli_err(QL_EINVAL, "%s: %zu bytes (at most %zu)", field,
			       len, max);
	for (i = 0; i < len; i += n) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			return qli_err(QL_EINVAL, "%s: control character "
				       "0x%02x at byte %zu (not allowed)",
				       field, p[i], i);
		n = qli_utf8_seq(p + i, len - i);
		if (!n)
			return qli_err(QL_EINVAL, "%s: invalid UTF-8 at byte "
				       "%zu", field, i);
	}
	return 0;
}

int qli_order_id_check(const char *id, const char *field)
{
	size_t len, i;

	if (!field)
		field = "order_id";
	if (!id || !*id)
		return qli_err(QL_EINVAL, "%s: missing (1 to %d printable "
			       "characters)", field, QLI_ORDER_ID_MAX);
	len = strlen(id);
	if (len > QLI_ORDER_ID_MAX)
		return qli_err(QL_EINVAL, "%s \"%.20s...\": %zu characters (at "
			       "most %d)", field, id, len, QLI_ORDER_ID_MAX);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c < 0x20 || c > 0x7e)
			return qli_err(QL_EINVAL, "%s: byte 0x%02x at position "
				       "%zu: only printable ASCII (0x20-0x7e) "
				       "is allowed", field, c, i);
	}
	if (id[0] == ' ' || id[len - 1] == ' ')
		return qli_err(QL_EINVAL, "%s \"%s\": leading or trailing "
			       "space", field, id);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* subjects                                                                */
/* ---------------------------------------------------------------------- */

static int looks_like_handle(const char *s)
{
	return strchr(s, '@') || s[0] == '+' || !strncasecmp(s, "tel:", 4) ||
	       !strncasecmp(s, "mailto:", 7);
}

static int is_v4_mapped(const uint8_t ip[16])
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					 0xff, 0xff };

	return !memcmp(ip, pfx, sizeof(pfx));
}

int qli_hold_subject_parse(char out[QLI_SUBJECT_MAX + 1], const char *in)
{
	char addr[64];
	uint8_t ip[16];
	unsigned plen;
	int rc;

	if (!in || !*in)
		return qli_err(QL_EINVAL, "subject: empty (a handle, an IP "
			       "address or a CIDR prefix)");
	if (looks_like_handle(in))
		return ql_handle_parse(out, QLI_SUBJECT_MAX + 1, in,
				       "subject");
	if (!strchr(in, '.') && !strchr(in, ':'))
		return qli_err(QL_EINVAL, "subject \"%.64s\": not a handle "
			       "(+ and digits, or an email address), an IP "
			       "address or a CIDR prefix", in);
	rc = ql_cidr_parse(ip, &plen, in, "subject");
	if (rc)
		return rc;
	ql_ip_format(addr, sizeof(addr), ip);
	/* Host bits are zero, so a mapped address always has plen >= 96:
	 * show IPv4 networks with an IPv4 prefix length. */
	if (is_v4_mapped(ip) && plen >= 96)
		plen -= 96;
	snprintf(out, QLI_SUBJECT_MAX + 1, "%s/%u", addr, plen);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the set                                                                 */
/* ---------------------------------------------------------------------- */

void qli_holds_init(qli_holdset *set)
{
	memset(set, 0, sizeof(*set));
}

static void hold_free(qli_hold *h)
{
	free(h->subjects);
	h->subjects = NULL;
	h->nsubjects = 0;
}

void qli_holds_free(qli_holdset *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		hold_free(&set->v[i]);
	free(set->v);
	memset(set, 0, sizeof(*set));
}

qli_hold *qli_holds_find(const qli_holdset *set, const char *order_id)
{
	if (!order_id)
		return NULL;
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->v[i].order_id, order_id))
			return &set->v[i];
	return NULL;
}

static int holds_grow(qli_holdset *set)
{
	size_t cap;
	qli_hold *v;

	if (set->n < set->cap)
		return 0;
	cap = set->cap ? 2 * set->cap : 16;
	v = realloc(set->v, cap * sizeof(*v));
	if (!v)
		return qli_err(QL_ENOMEM, "out of memory for %zu holds", cap);
	set->v = v;
	set->cap = cap;
	return 0;
}

const char *qli_hold_state_name(int state)
{
	switch (state) {
	case QLI_HOLD_ACTIVE: return "active";
	case QLI_HOLD_RELEASED: return "released";
	case QLI_HOLD_LAPSED: return "lapsed";
	default: return "unknown";
	}
}

int qli_hold_state_at(const qli_hold *h, int64_t now)
{
	if (h->state == QLI_HOLD_ACTIVE && now >= h->expires)
		return QLI_HOLD_LAPSED;
	return h->state;
}

int qli_hold_covers(const qli_hold *h, int64_t seg_lo, int64_t seg_hi,
		    int64_t now)
{
	if (qli_hold_state_at(h, now) != QLI_HOLD_ACTIVE)
		return 0;
	/* [from, to] against [lo, hi): to is inclusive, hi is not. */
	return h->from < seg_hi && h->to >= seg_lo;
}

/* ---------------------------------------------------------------------- */
/* place                                                                   */
/* ---------------------------------------------------------------------- */

static int fmt_time(char *buf, size_t len, int64_t t)
{
	if (t == QLI_HOLD_OPEN)
		return snprintf(buf, len, "open");
	return ql_time_format(buf, len, t);
}

static int spec_check_times(const qli_hold_spec *sp, int64_t now)
{
	char a[40], b[40];

	if (sp->from > sp->to) {
		fmt_time(a, sizeof(a), sp->from);
		fmt_time(b, sizeof(b), sp->to);
		return qli_err(QL_EINVAL, "hold %s: window from %s to %s is "
			       "reversed (from must not be after to)",
			       sp->order_id, a, b);
	}
	if (sp->expires <= now) {
		fmt_time(a, sizeof(a), sp->expires);
		fmt_time(b, sizeof(b), now);
		return qli_err(QL_EINVAL, "hold %s: expiry %s is not in the "
			       "future (now is %s)", sp->order_id, a, b);
	}
	if (sp->period_us < 0)
		return qli_err(QL_EINVAL, "hold %s: extension period %" PRId64
			       " us: must be positive (0 = 30 days)",
			       sp->order_id, sp->period_us);
	return 0;
}

/* A subjects block for n strings of total bytes (NULs included): the
 * pointers, then the strings. */
static char **subjects_alloc(size_t n, size_t total)
{
	return malloc(n * sizeof(char *) + (total ? total : 1));
}

/* Canonicalises the subjects into a new array, dropping duplicates. */
static int spec_subjects(const qli_hold_spec *sp, qli_hold *h)
{
	char (*one)[QLI_SUBJECT_MAX + 1];
	size_t i, j, n = 0, total = 0;
	char *q;
	int rc = 0;

	if (sp->nsubjects > QLI_SUBJECTS_MAX)
		return qli_err(QL_EINVAL, "hold %s: %zu subjects (at most %d)",
			       sp->order_id, sp->nsubjects, QLI_SUBJECTS_MAX);
	if (!sp->nsubjects)
		return 0;
	one = malloc(sp->nsubjects * sizeof(*one));
	if (!one)
		return qli_err(QL_ENOMEM, "out of memory for subjects");
	for (i = 0; i < sp->nsubjects && !rc; i++) {
		rc = qli_hold_subject_parse(one[n], sp->subjects[i]);
		if (rc) {
			qli_err_prefix("hold %s: ", sp->order_id);
			break;
		}
		for (j = 0; j < n; j++)
			if (!strcmp(one[j], one[n]))
				break;
		if (j == n)
			total += strlen(one[n++]) + 1;
	}
	if (!rc && !(h->subjects = subjects_alloc(n, total)))
		rc = qli_err(QL_ENOMEM, "out of memory for subjects");
	if (!rc) {
		q = (char *)(h->subjects + n);
		for (i = 0; i < n; i++) {
			size_t l = strlen(one[i]) + 1;

			memcpy(q, one[i], l);
			h->subjects[i] = q;
			q += l;
		}
		h->nsubjects = n;
	}
	free(one);
	return rc;
}

int qli_holds_place(qli_holdset *set, const qli_hold_spec *sp, int64_t now,
		    qli_hold **out)
{
	qli_hold h;
	qli_hold *old;
	int rc;

	rc = qli_order_id_check(sp->order_id, "order_id");
	if (rc)
		return rc;
	old = qli_holds_find(set, sp->order_id);
	if (old)
		return qli_err(QL_EEXIST, "hold %s: an order with this ID "
			       "already exists (%s); order IDs are never "
			       "reused", sp->order_id,
			       qli_hold_state_name(old->state));
	rc = spec_check_times(sp, now);
	if (!rc)
		rc = text_check(sp->placed_by, QLI_WHO_MAX, "placed_by");
	if (!rc)
		rc = text_check(sp->reason, QLI_REASON_MAX, "reason");
	if (rc)
		return rc;
	memset(&h, 0, sizeof(h));
	rc = spec_subjects(sp, &h);
	if (!rc)
		rc = holds_grow(set);
	if (rc) {
		hold_free(&h);
		return rc;
	}
	snprintf(h.order_id, sizeof(h.order_id), "%s", sp->order_id);
	snprintf(h.reason, sizeof(h.reason), "%s", sp->reason);
	snprintf(h.placed_by, sizeof(h.placed_by), "%s", sp->placed_by);
	h.from = sp->from;
	h.to = sp->to;
	h.expires = sp->expires;
	h.period_us = sp->period_us ? sp->period_us : QLI_HOLD_PERIOD_DEFAULT;
	h.placed_at = now;
	h.state = QLI_HOLD_ACTIVE;
	set->v[set->n] = h;
	if (out)
		*out = &set->v[set->n];
	set->n++;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* extend, release, lapse                                                  */
/* ---------------------------------------------------------------------- */

/* The common refusals for a hold that is no longer active. */
static int not_active(const qli_hold *h, const char *what)
{
	char t[40];

	if (h->state == QLI_HOLD_RELEASED) {
		ql_time_format(t, sizeof(t), h->ended_at);
		return qli_err(QL_EINVAL, "hold %s: cannot %s: it was released "
			       "at %s by %s", h->order_id, what, t,
			       h->ended_by);
	}
	ql_time_format(t, sizeof(t), h->expires);
	return qli_err(QL_EINVAL, "hold %s: cannot %s: it lapsed at %s (its "
		       "expiry passed without extension); a lapsed hold cannot "
		       "be revived, place a new hold under a new order ID",
		       h->order_id, what, t);
}

static qli_hold *find_or_err(const qli_holdset *set, const char *id, int *rc)
{
	qli_hold *h;

	*rc = qli_order_id_check(id, "order_id");
	if (*rc)
		return NULL;
	h = qli_holds_find(set, id);
	if (!h)
		*rc = qli_err(QL_ENOTFOUND, "hold %s: no such order", id);
	return h;
}

int qli_holds_extend(qli_holdset *set, const char *order_id,
		     int64_t new_expires, int64_t now, const char *who,
		     int64_t *old_expires, int64_t *new_exp)
{
	char a[40], b[40];
	qli_hold *h;
	int64_t to;
	int rc;

	h = find_or_err(set, order_id, &rc);
	if (!h)
		return rc;
	rc = text_check(who, QLI_WHO_MAX, "who");
	if (rc)
		return rc;
	if (qli_hold_state_at(h, now) != QLI_HOLD_ACTIVE)
		return not_active(h, "extend");
	if (new_expires) {
		to = new_expires;
	} else if (h->expires > INT64_MAX - h->period_us) {
		return qli_err(QL_EINVAL, "hold %s: extending by the period "
			       "overflows the time range", h->order_id);
	} else {
		to = h->expires + h->period_us;
	}
	ql_time_format(a, sizeof(a), to);
	ql_time_format(b, sizeof(b), h->expires);
	if (to < h->expires)
		return qli_err(QL_EINVAL, "hold %s: new expiry %s is before "
			       "the current expiry %s: a hold is never "
			       "shortened (release it instead)", h->order_id,
			       a, b);
	if (to == h->expires)
		return qli_err(QL_EINVAL, "hold %s: new expiry %s is the "
			       "current expiry: nothing to extend",
			       h->order_id, a);
	if (old_expires)
		*old_expires = h->expires;
	if (new_exp)
		*new_exp = to;
	h->expires = to;
	return 0;
}

int qli_holds_release(qli_holdset *set, const char *order_id, int64_t now,
		      const char *who)
{
	qli_hold *h;
	int rc;

	h = find_or_err(set, order_id, &rc);
	if (!h)
		return rc;
	rc = text_check(who, QLI_WHO_MAX, "who");
	if (rc)
		return rc;
	if (qli_hold_state_at(h, now) != QLI_HOLD_ACTIVE)
		return not_active(h, "release");
	h->state = QLI_HOLD_RELEASED;
	h->ended_at = now;
	snprintf(h->ended_by, sizeof(h->ended_by), "%s", who);
	return 0;
}

int qli_holds_lapse(qli_holdset *set, int64_t now,
		    int (*fn)(const qli_hold *h, void *ctx), void *ctx)
{
	int n = 0, rc;

	for (size_t i = 0; i < set->n; i++) {
		qli_hold *h = &set->v[i];

		if (h->state != QLI_HOLD_ACTIVE || now < h->expires)
			continue;
		h->state = QLI_HOLD_LAPSED;
		h->ended_at = h->expires;
		h->ended_by[0] = '\0';
		n++;
		if (fn) {
			rc = fn(h, ctx);
			if (rc)
				return rc;
		}
	}
	return n;
}

/* ---------------------------------------------------------------------- */
/* encoding                                                                */
/* ---------------------------------------------------------------------- */

static size_t hold_size(const qli_hold *h)
{
	size_t n = HOLD_FIXED + 4 * 2 + strlen(h->order_id) +
		   strlen(h->reason) + strlen(h->placed_by) +
		   strlen(h->ended_by);

	for (size_t i = 0; i < h->nsubjects; i++)
		n += 2 + strlen(h->subjects[i]);
	return n;
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s);

	p[0] = (uint8_t)n;
	p[1] = (uint8_t)(n >> 8);
	memcpy(p + 2, s, n);
	return p + 2 + n;
}

static uint8_t *hold_encode(uint8_t *p, const qli_hold *h)
{
	qli_put64(p, (uint64_t)h->from);
	qli_put64(p + 8, (uint64_t)h->to);
	qli_put64(p + 16, (uint64_t)h->expires);
	qli_put64(p + 24, (uint64_t)h->period_us);
	qli_put64(p + 32, (uint64_t)h->placed_at);
	qli_put64(p + 40, (uint64_t)h->ended_at);
	p[48] = (uint8_t)h->state;
	p[49] = 0;
	p[50] = (uint8_t)h->nsubjects;
	p[51] = (uint8_t)(h->nsubjects >> 8);
	p += HOLD_FIXED;
	p = put_str(p, h->order_id);
	p = put_str(p, h->reason);
	p = put_str(p, h->placed_by);
	p = put_str(p, h->ended_by);
	for (size_t i = 0; i < h->nsubjects; i++)
		p = put_str(p, h->subjects[i]);
	return p;
}

int qli_holds_save(int dirfd, const qli_holdset *set)
{
	size_t body = 0, len;
	uint8_t *buf, *p;
	int rc;

	for (size_t i = 0; i < set->n; i++)
		body += hold_size(&set->v[i]);
	len = HOLDS_HDR + body + HOLDS_TRAILER;
	if (len > HOLDS_MAX_FILE)
		return qli_err(QL_EINVAL, "%s: %zu bytes of holds (at most %u)",
			       QLI_HOLDS_FILE, len, HOLDS_MAX_FILE);
	buf = malloc(len);
	if (!buf)
		return qli_err(QL_ENOMEM, "out of memory writing %s",
			       QLI_HOLDS_FILE);
	memcpy(buf, holds_magic, 4);
	qli_put32(buf + 4, QLI_HOLDS_VERSION);
	qli_put32(buf + 8, (uint32_t)set->n);
	qli_put32(buf + 12, (uint32_t)body);
	p = buf + HOLDS_HDR;
	for (size_t i = 0; i < set->n; i++)
		p = hold_encode(p, &set->v[i]);
	qli_put64(p, qli_hash64(buf, HOLDS_HDR + body, 0));
	/* what names the directory whose fsync makes the rename durable:
	 * the store's, which holds HOLDS (not a directory "HOLDS") */
	rc = qli_write_atomic(dirfd, QLI_HOLDS_FILE, buf, len, 0600,
			      "of " QLI_HOLDS_FILE);
	free(buf);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* decoding                                                                */
/* ---------------------------------------------------------------------- */

typedef struct rdr {
	const uint8_t *p, *end;
	size_t index; /* hold being read, for messages */
} rdr;

static int corrupt(const rdr *r, const char *what)
{
	return qli_err(QL_ECORRUPT, "%s: hold record %zu: %s (the file is "
		       "damaged; holds are not dropped silently: restore it "
		       "from a backup)", QLI_HOLDS_FILE, r->index, what);
}

static int get_str(rdr *r, char *out, size_t max, const char *what)
{
	size_t n;

	if (r->end - r->p < 2)
		return corrupt(r, "truncated string length");
	n = (size_t)r->p[0] | (size_t)r->p[1] << 8;
	r->p += 2;
	if (n > max || (size_t)(r->end - r->p) < n)
		return corrupt(r, what);
	if (memchr(r->p, '\0', n))
		return corrupt(r, "NUL inside a string");
	memcpy(out, r->p, n);
	out[n] = '\0';
	r->p += n;
	return 0;
}

static int hold_check(rdr *r, const qli_hold *h)
{
	if (qli_order_id_check(h->order_id, "order_id"))
		return corrupt(r, "invalid order ID");
	if (h->state < QLI_HOLD_ACTIVE || h->state > QLI_HOLD_LAPSED)
		return corrupt(r, "unknown state");
	if (h->from > h->to)
		return corrupt(r, "window reversed");
	if (h->period_us <= 0)
		return corrupt(r, "extension period not positive");
	if (!h->placed_by[0])
		return corrupt(r, "placed_by empty");
	for (size_t i = 0; i < h->nsubjects; i++)
		if (!h->subjects[i][0])
			return corrupt(r, "empty subject");
	return 0;
}

static int hold_decode(rdr *r, qli_hold *h)
{
	const uint8_t *p = r->p;
	size_t ns;
	int rc;

	memset(h, 0, sizeof(*h));
	if (r->end - r->p < HOLD_FIXED)
		return corrupt(r, "truncated");
	h->from = (int64_t)qli_get64(p);
	h->to = (int64_t)qli_get64(p + 8);
	h->expires = (int64_t)qli_get64(p + 16);
	h->period_us = (int64_t)qli_get64(p + 24);
	h->placed_at = (int64_t)qli_get64(p + 32);
	h->ended_at = (int64_t)qli_get64(p + 40);
	h->state = p[48];
	ns = (size_t)p[50] | (size_t)p[51] << 8;
	if (p[49] || ns > QLI_SUBJECTS_MAX)
		return corrupt(r, "bad fixed fields");
	r->p += HOLD_FIXED;
	rc = get_str(r, h->order_id, QLI_ORDER_ID_MAX, "order ID too long");
	if (!rc)
		rc = get_str(r, h->reason, QLI_REASON_MAX, "reason too long");
	if (!rc)
		rc = get_str(r, h->placed_by, QLI_WHO_MAX,
			     "placed_by too long");
	if (!rc)
		rc = get_str(r, h->ended_by, QLI_WHO_MAX, "ended_by too long");
	if (!rc && ns) {
		/* the subjects' sizes first: the block is allocated for what
		 * the file holds, not for what its count claims */
		const uint8_t *q = r->p;
		size_t total = 0;
		char *at;

		for (size_t i = 0; i < ns; i++) {
			size_t n;

			if (r->end - q < 2)
				return corrupt(r, "truncated string length");
			n = (size_t)q[0] | (size_t)q[1] << 8;
			if (n > QLI_SUBJECT_MAX || (size_t)(r->end - q - 2) < n)
				return corrupt(r, "subject too long");
			q += 2 + n;
			total += n + 1;
		}
		h->subjects = subjects_alloc(ns, total);
		if (!h->subjects)
			return qli_err(QL_ENOMEM, "out of memory reading %s",
				       QLI_HOLDS_FILE);
		at = (char *)(h->subjects + ns);
		for (size_t i = 0; !rc && i < ns; i++) {
			rc = get_str(r, at, QLI_SUBJECT_MAX,
				     "subject too long");
			if (rc)
				break;
			h->subjects[h->nsubjects++] = at;
			at += strlen(at) + 1;
		}
	}
	return rc ? rc : hold_check(r, h);
}

static int holds_parse(const uint8_t *buf, size_t len, qli_holdset *out)
{
	uint32_t version, n, body;
	rdr r;
	int rc;

	if (len < HOLDS_HDR + HOLDS_TRAILER || memcmp(buf, holds_magic, 4))
		return qli_err(QL_ECORRUPT, "%s: not a holds file (%zu bytes, "
			       "bad magic or too short)", QLI_HOLDS_FILE, len);
	version = qli_get32(buf + 4);
	n = qli_get32(buf + 8);
	body = qli_get32(buf + 12);
	if ((uint64_t)body + HOLDS_HDR + HOLDS_TRAILER != len)
		return qli_err(QL_ECORRUPT, "%s: %zu bytes, header says %llu",
			       QLI_HOLDS_FILE, len,
			       (unsigned long long)body + HOLDS_HDR +
				       HOLDS_TRAILER);
	if (qli_get64(buf + len - HOLDS_TRAILER) !=
	    qli_hash64(buf, len - HOLDS_TRAILER, 0))
		return qli_err(QL_ECORRUPT, "%s: checksum mismatch (the file "
			       "is damaged; restore it from a backup)",
			       QLI_HOLDS_FILE);
	/* Checked after the checksum: a damaged version field is damage,
	 * not a newer format. */
	if (version != QLI_HOLDS_VERSION)
		return qli_err(QL_EVERSION, "%s: format version %u (this build "
			       "reads %d)", QLI_HOLDS_FILE, version,
			       QLI_HOLDS_VERSION);
	r.p = buf + HOLDS_HDR;
	r.end = buf + HOLDS_HDR + body;
	for (r.index = 0; r.index < n; r.index++) {
		rc = holds_grow(out);
		if (rc)
			return rc;
		rc = hold_decode(&r, &out->v[out->n]);
		out->n++; /* owned by the set even when invalid: freed there */
		if (rc)
			return rc;
		if (qli_holds_find(out, out->v[out->n - 1].order_id) !=
		    &out->v[out->n - 1])
			return corrupt(&r, "duplicate order ID");
	}
	if (r.p != r.end)
		return qli_err(QL_ECORRUPT, "%s: %zu bytes after the last hold",
			       QLI_HOLDS_FILE, (size_t)(r.end - r.p));
	return 0;
}

int qli_holds_load(int dirfd, qli_holdset *out)
{
	struct stat st;
	uint8_t *buf = NULL;
	int fd, rc;

	qli_holds_init(out);
	fd = qli_vfs_cur->openat(dirfd, QLI_HOLDS_FILE, O_RDONLY, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* no hold was ever placed */
		return qli_errno(errno, "open", QLI_HOLDS_FILE);
	}
	if (qli_vfs_cur->fstat(fd, &st) < 0) {
		rc = qli_errno(errno, "stat", QLI_HOLDS_FILE);
		goto out_close;
	}
	if (st.st_size > (off_t)HOLDS_MAX_FILE) {
		rc = qli_err(QL_ECORRUPT, "%s: %lld bytes: larger than any "
			     "holds file", QLI_HOLDS_FILE,
			     (long long)st.st_size);
		goto out_close;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		rc = qli_err(QL_ENOMEM, "out of memory reading %s",
			     QLI_HOLDS_FILE);
		goto out_close;
	}
	rc = qli_read_full(fd, buf, (size_t)st.st_size, 0, QLI_HOLDS_FILE);
	if (!rc)
		rc = holds_parse(buf, (size_t)st.st_size, out);
	free(buf);
out_close:
	qli_vfs_cur->close(fd);
	if (rc)
		qli_holds_free(out);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* the maintenance lock                                                    */
/* ---------------------------------------------------------------------- */

static int maint_lock(int dirfd, int *lockfd, int op)
{
	int fd, r;

	*lockfd = -1;
	fd = qli_vfs_cur->openat(dirfd, QLI_MAINT_LOCK_FILE, O_RDWR | O_CREAT,
				 0600);
	if (fd < 0)
		return qli_errno(errno, "open lock file", QLI_MAINT_LOCK_FILE);
	do
		r = qli_vfs_cur->flock(fd, op);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		int e = errno;

		qli_vfs_cur->close(fd);
		if (e == EWOULDBLOCK)
			return qli_err(QL_EBUSY, "%s: another process is "
				       "running maintenance (hold change, "
				       "retention or audit) on this store",
				       QLI_MAINT_LOCK_FILE);
		return qli_errno(e, "lock", QLI_MAINT_LOCK_FILE);
	}
	*lockfd = fd;
	return 0;
}

int qli_maint_lock(int dirfd, int *lockfd)
{
	return maint_lock(dirfd, lockfd, LOCK_EX);
}

int qli_maint_trylock(int dirfd, int *lockfd)
{
	return maint_lock(dirfd, lockfd, LOCK_EX | LOCK_NB);
}

void qli_maint_unlock(int lockfd)
{
	/* Closing the only descriptor of the open file drops the flock. */
	if (lockfd >= 0)
		qli_vfs_cur->close(lockfd);
}
