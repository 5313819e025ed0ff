/* minib.c - mini blocks (minib.h). */
#include "minib.h"

#include "bitio.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

static unsigned bitlen64(uint64_t v)
{
	return v ? 64u - (unsigned)__builtin_clzll(v) : 0;
}

int qli_mbtab_init(qli_mbtab *t, uint32_t nh, const uint32_t *cls,
		   uint32_t ncls, uint32_t ni, int64_t span)
{
	memset(t, 0, sizeof(*t));
	if (ncls > QLI_DICT_CLASSES || (nh && !ncls))
		return qli_err(QL_ECORRUPT, "mini block tables: %u handle "
			       "classes for %u handles (at most %u, at least "
			       "one when there are handles)", ncls, nh,
			       QLI_DICT_CLASSES);
	if (nh > QLI_DICT_MAX || ni > QLI_DICT_MAX)
		return qli_err(QL_ECORRUPT, "mini block tables: %u handles, "
			       "%u addresses (at most %u each)", nh, ni,
			       QLI_DICT_MAX);
	if (span <= 0 || span > ((int64_t)1 << 62))
		return qli_err(QL_ECORRUPT, "mini block tables: time span "
			       "%lld us (must be 1 to 2^62)", (long long)span);
	for (uint32_t c = 0; c <= ncls; c++) {
		uint32_t want = c == ncls ? nh : cls[c];

		if ((c == 0 && cls[0] != 0) || cls[c] != want ||
		    (c > 0 && cls[c] <= cls[c - 1]))
			return qli_err(QL_ECORRUPT, "mini block tables: class "
				       "%u starts at id %u (classes start at "
				       "0, grow, and end at %u)", c, cls[c],
				       nh);
		t->cls[c] = cls[c];
	}
	for (uint32_t c = 0; c < ncls; c++)
		t->cwidth[c] = (uint8_t)bitlen64(cls[c + 1] - cls[c] - 1);
	t->nh = nh;
	t->ni = ni;
	t->ncls = ncls;
	t->awidth = (uint8_t)bitlen64(ni ? ni - 1 : 0);
	t->twidth = (uint8_t)bitlen64((uint64_t)span - 1);
	t->span = span;
	return 0;
}

int qli_mbcode_from_lengths(qli_mbcode *c, const uint8_t *len,
			    uint32_t nsym, const char *what)
{
	uint32_t kraft = 0; /* in units of 2^-QLI_MB_MAXLEN */
	uint32_t code = 0;

	if (nsym > QLI_MB_SR)
		return qli_err(QL_ECORRUPT, "%s code: %u symbols (at most %u)",
			       what, nsym, QLI_MB_SR);
	memset(c, 0, sizeof(*c));
	memset(c->tab, 0xff, sizeof(c->tab));
	c->nsym = nsym;
	for (uint32_t s = 0; s < nsym; s++) {
		if (len[s] > QLI_MB_MAXLEN)
			return qli_err(QL_ECORRUPT, "%s code: symbol %u has a "
				       "%u-bit code (at most %u)", what, s,
				       len[s], QLI_MB_MAXLEN);
		if (len[s])
			kraft += 1u << (QLI_MB_MAXLEN - len[s]);
		c->len[s] = len[s];
	}
	if (kraft > (1u << QLI_MB_MAXLEN))
		return qli_err(QL_ECORRUPT, "%s code: the lengths are not a "
			       "prefix code (Kraft sum %u/%u)", what, kraft,
			       1u << QLI_MB_MAXLEN);
	/* canonical: by length, then symbol */
	for (unsigned l = 1; l <= QLI_MB_MAXLEN; l++) {
		for (uint32_t s = 0; s < nsym; s++) {
			uint32_t r = 0;

			if (c->len[s] != l)
				continue;
			for (unsigned b = 0; b < l; b++)
				r |= ((code >> b) & 1u) << (l - 1 - b);
			c->code[s] = (uint16_t)r;
			for (uint32_t x = r; x < (1u << QLI_MB_MAXLEN);
			     x += 1u << l)
				c->tab[x] = (uint16_t)(s << 4 | l);
			code++;
		}
		code <<= 1;
	}
	return 0;
}

/* Huffman lengths of the nonzero counts (O(n^2) merging: n <= 512, once
 * per segment). Returns the longest. */
static unsigned huffman(const uint64_t *count, uint32_t nsym, uint8_t *len)
{
	uint64_t w[2 * QLI_MB_SR];
	int32_t parent[2 * QLI_MB_SR];
	uint8_t live[2 * QLI_MB_SR];
	uint32_t m = nsym, used = 0, last = 0;
	unsigned max = 0;

	for (uint32_t s = 0; s < nsym; s++) {
		w[s] = count[s];
		live[s] = count[s] != 0;
		parent[s] = -1;
		len[s] = 0;
		if (live[s]) {
			used++;
			last = s;
		}
	}
	if (used == 1) {
		len[last] = 1;
		return 1;
	}
	for (;;) {
		int32_t a = -1, b = -1;

		for (uint32_t i = 0; i < m; i++) {
			if (!live[i])
				continue;
			if (a < 0 || w[i] < w[a]) {
				b = a;
				a = (int32_t)i;
			} else if (b < 0 || w[i] < w[b]) {
				b = (int32_t)i;
			}
		}
		if (b < 0)
			break;
		w[m] = w[a] + w[b];
		live[a] = live[b] = 0;
		live[m] = 1;
		parent[a] = parent[b] = (int32_t)m;
		parent[m] = -1;
		m++;
	}
	for (uint32_t s = 0; s < nsym; s++) {
		unsigned d = 0;

		if (!count[s])
			continue;
		for (int32_t j = (int32_t)s; parent[j] >= 0; j = parent[j])
			d++;
		len[s] = (uint8_t)(d > 255 ? 255 : d);
		if (d > max)
			max = d;
	}
	return max;
}

void qli_mbcode_lengths(const uint64_t *count, uint32_t nsym, uint8_t *len)
{
	uint64_t c[QLI_MB_SR];

	memcpy(c, count, nsym * sizeof(*c));
	while (huffman(c, nsym, len) > QLI_MB_MAXLEN)
		for (uint32_t s = 0; s < nsym; s++)
			if (c[s])
				c[s] = (c[s] + 1) / 2;
}

static uint32_t class_of(const qli_mbtab *t, uint32_t id)
{
	uint32_t lo = 0, hi = t->ncls - 1;

	while (lo < hi) {
		uint32_t mid = (lo + hi + 1) / 2;

		if (t->cls[mid] <= id)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static int same_req(const qli_idrec *r, size_t i, size_t first)
{
	return i > first && r[i].ip == r[i - 1].ip &&
	       r[i].req == r[i - 1].req;
}

void qli_mb_count(const qli_mbtab *t, const qli_idrec *r, size_t n,
		  uint64_t *req, uint64_t *tgt, uint64_t *sr)
{
	for (size_t i = 0; i < n; i++) {
		size_t first = i - i % QLI_MB_RECORDS;

		if (!same_req(r, i, first) && r[i].req < t->nh)
			req[class_of(t, r[i].req)]++;
		if (r[i].tgt < t->nh)
			tgt[class_of(t, r[i].tgt)]++;
		sr[((unsigned)r[i].svc << 1 | (r[i].res & 1u)) % QLI_MB_SR]++;
	}
}

/* ---- writing ---- */

static void put_code(qli_bits *b, const qli_mbcode *c, uint32_t s)
{
	put(b, c->code[s], c->len[s]);
}

static int put_handle(const qli_mbtab *t, qli_bits *b, const qli_mbcode *c,
		      uint32_t id, const char *what)
{
	uint32_t k = class_of(t, id);

	if (!c->len[k])
		return qli_err(QL_EINVAL, "mini block: %s id %u: class %u has "
			       "no code", what, id, k);
	put_code(b, c, k);
	put(b, id - t->cls[k], t->cwidth[k]);
	return 0;
}

int qli_mb_encode(const qli_mbtab *t, qli_bits *out, const qli_idrec *r,
		  uint32_t n)
{
	unsigned k = 0;
	uint64_t best = UINT64_MAX, bound = 6;

	if (n == 0 || n > QLI_MB_RECORDS)
		return qli_err(QL_EINVAL, "mini block of %u records (1 to %u)",
			       n, QLI_MB_RECORDS);
	for (uint32_t i = 0; i < n; i++) {
		unsigned sr = (unsigned)r[i].svc << 1 | (r[i].res & 1u);

		if (r[i].req >= t->nh || r[i].tgt >= t->nh ||
		    r[i].ip >= t->ni || r[i].ts < 0 || r[i].ts >= t->span ||
		    r[i].res > 1 || !t->sr.len[sr])
			return qli_err(QL_EINVAL, "mini block record %u: ids "
				       "%u/%u/%u, time %lld, result %u out of "
				       "the tables' range", i, r[i].req,
				       r[i].tgt, r[i].ip,
				       (long long)r[i].ts, r[i].res);
		if (i && (r[i].ip < r[i - 1].ip ||
			  (r[i].ip == r[i - 1].ip && r[i].ts < r[i - 1].ts)))
			return qli_err(QL_EINVAL, "mini block record %u: not "
				       "in (address, time) order", i);
	}
	/* the Rice parameter with the fewest bits for the block's gaps
	 * (those inside address runs): the best is within a couple of
	 * bits of the mean gap's length, so only those are tried */
	uint64_t sum = 0, ngap = 0;

	for (uint32_t i = 1; i < n; i++)
		if (r[i].ip == r[i - 1].ip) {
			sum += (uint64_t)(r[i].ts - r[i - 1].ts);
			ngap++;
		}
	unsigned k0 = ngap ? bitlen64(sum / ngap) : 0;

	for (unsigned kk = k0 > 2 ? k0 - 2 : 0; kk <= k0 + 1 && kk < 63;
	     kk++) {
		uint64_t bits = 0;

		for (uint32_t i = 1; i < n; i++)
			if (r[i].ip == r[i - 1].ip)
				bits += ((uint64_t)(r[i].ts - r[i - 1].ts) >>
					 kk) + 1 + kk;
		if (bits < best) {
			best = bits;
			k = kk;
		}
	}
	/* room: everything at its longest */
	bound += best + (uint64_t)n * (1 + 2 * 25 + 64 + 1 +
				       2 * (QLI_MB_MAXLEN + 24) +
				       QLI_MB_MAXLEN);
	if (bits_reserve(out, bound))
		return QL_ENOMEM;
	put(out, k, 6);
	for (uint32_t i = 0; i < n; i++) {
		int rc;

		if (i == 0) {
			put(out, r[i].ip, t->awidth);
			put_wide(out, (uint64_t)r[i].ts, t->twidth);
		} else if (r[i].ip != r[i - 1].ip) {
			uint32_t d = r[i].ip - r[i - 1].ip;
			unsigned l = bitlen64(d);

			put(out, 1, 1);
			put(out, (uint64_t)1 << (l - 1), l);
			put(out, d, l - 1);
			put_wide(out, (uint64_t)r[i].ts, t->twidth);
		} else {
			uint64_t g = (uint64_t)(r[i].ts - r[i - 1].ts);
			uint64_t q = g >> k;

			put(out, 0, 1);
			for (; q >= 32; q -= 32)
				put(out, 0, 32);
			put(out, (uint64_t)1 << q, (unsigned)q + 1);
			put_wide(out, g, k);
		}
		if (same_req(r, i, 0)) {
			put(out, 1, 1);
		} else {
			put(out, 0, 1);
			if ((rc = put_handle(t, out, &t->req, r[i].req,
					     "requester")))
				return rc;
		}
		if ((rc = put_handle(t, out, &t->tgt, r[i].tgt, "target")))
			return rc;
		put_code(out, &t->sr, (unsigned)r[i].svc << 1 | r[i].res);
	}
	return 0;
}

/* ---- reading ---- */

static inline int get_code(rd *d, const qli_mbcode *c, uint32_t *s)
{
	uint16_t e = c->tab[peek(d) & ((1u << QLI_MB_MAXLEN) - 1)];

	if (e == 0xffff || d->end - d->pos < (e & 15u))
		return -1;
	d->pos += e & 15u;
	*s = e >> 4;
	return 0;
}

static inline int get_handle(const qli_mbtab *t, rd *d, const qli_mbcode *c,
			     uint32_t *id)
{
	uint32_t k;
	uint64_t off;

	if (get_code(d, c, &k) || k >= t->ncls ||
	    get(d, t->cwidth[k], &off) ||
	    off >= (uint64_t)(t->cls[k + 1] - t->cls[k]))
		return -1;
	*id = t->cls[k] + (uint32_t)off;
	return 0;
}

int qli_mb_decode(const qli_mbtab *t, const uint8_t *p, size_t len,
		  uint64_t pos, uint64_t end, uint32_t n, qli_idrec *out)
{
	rd d = { p, len, pos, end };
	uint64_t k, v;
	const char *what = "Rice parameter";

	if (n == 0 || n > QLI_MB_RECORDS || end > (uint64_t)len * 8 ||
	    pos > end)
		return qli_err(QL_ECORRUPT, "mini block: %u records in bits "
			       "%llu..%llu of %zu bytes", n,
			       (unsigned long long)pos,
			       (unsigned long long)end, len);
	if (get(&d, 6, &k) || k > 62)
		return qli_err(QL_ECORRUPT, "mini block at bit %llu: bad %s",
			       (unsigned long long)pos, what);
	for (uint32_t i = 0; i < n; i++) {
		qli_idrec *o = &out[i];
		uint32_t s;
		int run = 0;

		what = "address and time";
		if (i == 0) {
			if (get(&d, t->awidth, &v) || v >= t->ni)
				goto bad;
			o->ip = (uint32_t)v;
		} else {
			if (get(&d, 1, &v))
				goto bad;
			run = v == 0;
		}
		if (i > 0 && !run) {
			uint64_t z;

			/* gamma: l - 1 zeros, a one, l - 1 low bits */
			if (get_unary(&d, 31, &z) || get(&d, (unsigned)z, &v))
				goto bad;
			v |= (uint64_t)1 << z;
			if (v >= (uint64_t)t->ni - out[i - 1].ip)
				goto bad;
			o->ip = out[i - 1].ip + (uint32_t)v;
		}
		if (run) {
			uint64_t q, lo;
			uint64_t room = (uint64_t)(t->span - 1 -
						   out[i - 1].ts);

			if (get_unary(&d, room >> k, &q) ||
			    get_wide(&d, (unsigned)k, &lo))
				goto bad;
			v = q << k | lo;
			if (v > room)
				goto bad;
			o->ip = out[i - 1].ip;
			o->ts = out[i - 1].ts + (int64_t)v;
		} else {
			if (get_wide(&d, t->twidth, &v) ||
			    v >= (uint64_t)t->span)
				goto bad;
			o->ts = (int64_t)v;
		}
		what = "requester";
		if (get(&d, 1, &v))
			goto bad;
		if (v) {
			if (!run)
				goto bad; /* only within a run */
			o->req = out[i - 1].req;
		} else if (get_handle(t, &d, &t->req, &o->req)) {
			goto bad;
		}
		what = "target";
		if (get_handle(t, &d, &t->tgt, &o->tgt))
			goto bad;
		what = "service and result";
		if (get_code(&d, &t->sr, &s))
			goto bad;
		o->svc = (uint8_t)(s >> 1);
		o->res = (uint8_t)(s & 1u);
		continue;
bad:
		return qli_err(QL_ECORRUPT, "mini block at bit %llu: record "
			       "%u: bad %s at bit %llu", (unsigned long long)pos,
			       i, what, (unsigned long long)d.pos);
	}
	return 0;
}
