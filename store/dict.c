/* dict.c - dictionary pages and id blocks of compact segments (dict.h,
 * docs/FORMAT.md §5.9).
 *
 * A page, before compression, is its keys front-coded in id order:
 *   count x { u8 shared, u8 suffix_len, suffix bytes }
 * (shared = bytes in common with the previous key; 0 for the first).
 * An id block, before compression:
 *   u32 n, u8 wh, u8 wi, u16 0
 *   times: zigzag varint of the first, n-1 varint deltas (sorted)
 *   requester ids: wh byte planes of n bytes (byte 0 of every id, then
 *   byte 1, ...), target ids: wh planes, address ids: wi planes,
 *   service: n bytes, result: n bytes.
 * Byte planes put the (mostly zero) high bytes of small, frequent ids
 * together, which zstd compresses to almost nothing. */
#include "dict.h"

#include "err.h"
#include "querylog.h"

#include <stdlib.h>
#include <string.h>

static unsigned width_of(uint32_t count)
{
	return count <= 0x100 ? 1 : count <= 0x10000 ? 2
				   : count <= 0x1000000 ? 3 : 4;
}

static int corrupt(const char *what)
{
	return qli_err(QL_ECORRUPT, "%s", what);
}

void qli_dict_free(qli_dict *d)
{
	free(d->page);
	free(d->cls);
	free(d->keys);
	memset(d, 0, sizeof(*d));
}

void qli_dpage_free(qli_dpage *p)
{
	free(p->mem);
	memset(p, 0, sizeof(*p));
}

int qli_dpage_copy(qli_dpage *dst, const qli_dpage *src)
{
	uint8_t *m = malloc(src->mem_len ? src->mem_len : 1);

	memset(dst, 0, sizeof(*dst));
	if (!m)
		return qli_err(QL_ENOMEM, "out of memory");
	memcpy(m, src->mem, src->mem_len);
	*dst = *src;
	dst->mem = m;
	if (src->ip) {
		dst->ip = (void *)m;
	} else {
		dst->key = (char **)(void *)m;
		dst->len = (uint8_t *)(dst->key + src->count);
		for (uint32_t i = 0; i < src->count; i++)
			dst->key[i] = (char *)m +
				      (src->key[i] - (const char *)src->mem);
	}
	return 0;
}

int qli_dpage_encode(qli_encoder *e, qli_buf *out, int ip,
		     const uint8_t *const *key, const uint8_t *len,
		     uint32_t count, uint32_t first, qli_frame_hdr *h)
{
	uint8_t raw[QLI_DICT_PAGE * (2 + 255)], *p = raw;
	const uint8_t *prev = NULL;
	size_t plen = 0;

	if (count == 0 || count > QLI_DICT_PAGE)
		return qli_err(QL_EINVAL, "dictionary page of %u entries",
			       count);
	for (uint32_t i = 0; i < count; i++) {
		size_t l = ip ? 16 : len[i], k = 0;

		while (prev && k < l && k < plen && k < 255 &&
		       key[i][k] == prev[k])
			k++;
		*p++ = (uint8_t)k;
		*p++ = (uint8_t)(l - k);
		memcpy(p, key[i] + k, l - k);
		p += l - k;
		prev = key[i];
		plen = l;
	}
	memset(h, 0, sizeof(*h));
	h->magic = ip ? QLI_MAGIC_IPAGE : QLI_MAGIC_HPAGE;
	h->nrec = count;
	h->min_ts = first;
	h->max_ts = (int64_t)first + count - 1;
	return qli_frame_compress(e, out, raw, (size_t)(p - raw), h);
}

int qli_dpage_decode(qli_decoder *d, qli_dpage *pg, const qli_frame_hdr *h,
		     const uint8_t *payload, uint32_t first)
{
	int ip = h->magic == QLI_MAGIC_IPAGE;
	uint32_t n = h->nrec;
	void *raw = NULL;
	size_t cap = 0, need;
	const uint8_t *p, *end;
	uint8_t prev[256];
	size_t plen = 0;
	char *sp;
	int rc;

	if ((h->magic != QLI_MAGIC_HPAGE && !ip) || n == 0 ||
	    n > QLI_DICT_PAGE || h->min_ts != (int64_t)first)
		return corrupt("dictionary page: header does not match its "
			       "directory entry");
	rc = qli_frame_decompress(d, h, payload, &raw, &cap);
	if (rc) {
		free(raw);
		return rc;
	}
	/* handles: pointers, lengths and the keys with their NULs */
	need = ip ? (size_t)n * 16 : (size_t)n * (sizeof(char *) + 1);
	if (!ip) {
		const uint8_t *q = raw, *qe = q + h->raw_len;

		for (uint32_t i = 0; i < n && qe - q >= 2; i++) {
			need += (size_t)q[0] + q[1] + 1;
			if ((size_t)(qe - q - 2) < q[1])
				break;
			q += 2 + q[1];
		}
	}
	qli_dpage_free(pg);
	pg->mem = malloc(need ? need : 1);
	pg->mem_len = need;
	if (!pg->mem) {
		free(raw);
		return qli_err(QL_ENOMEM, "out of memory");
	}
	pg->first = first;
	pg->count = n;
	if (ip) {
		pg->ip = pg->mem;
	} else {
		pg->key = pg->mem;
		pg->len = (uint8_t *)(pg->key + n);
	}
	sp = ip ? NULL : (char *)(pg->len + n);
	p = raw;
	end = p + h->raw_len;
	rc = 0;
	for (uint32_t i = 0; i < n && !rc; i++) {
		size_t k, s, l;

		if (end - p < 2) {
			rc = corrupt("dictionary page truncated");
			break;
		}
		k = p[0];
		s = p[1];
		p += 2;
		l = k + s;
		if (k > plen || (size_t)(end - p) < s || l == 0 ||
		    (ip ? l != 16 : l > QL_HANDLE_MAX) ||
		    (i == 0 && k != 0)) {
			rc = corrupt("dictionary page entry malformed");
			break;
		}
		memcpy(prev + k, p, s);
		p += s;
		plen = l;
		if (ip) {
			memcpy(pg->ip[i], prev, 16);
		} else {
			memcpy(sp, prev, l);
			sp[l] = '\0';
			pg->key[i] = sp;
			pg->len[i] = (uint8_t)l;
			sp += l + 1;
		}
	}
	if (!rc && p != end)
		rc = corrupt("dictionary page: bytes after the last entry");
	/* keys ascend strictly inside a page (the searches rely on it) */
	for (uint32_t i = 1; i < n && !rc; i++) {
		int c;

		if (ip) {
			c = memcmp(pg->ip[i - 1], pg->ip[i], 16);
		} else {
			size_t a = pg->len[i - 1], b = pg->len[i];

			c = memcmp(pg->key[i - 1], pg->key[i], a < b ? a : b);
			if (!c)
				c = a < b ? -1 : a > b;
		}
		if (c >= 0)
			rc = corrupt("dictionary page: keys out of order");
	}
	free(raw);
	if (rc)
		qli_dpage_free(pg);
	return rc;
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : al < bl ? -1 : al > bl;
}

int qli_dpage_find(const qli_dpage *p, const uint8_t *key, size_t len)
{
	uint32_t lo = 0, hi = p->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = p->ip ? key_cmp(p->ip[mid], 16, key, len)
			      : key_cmp((const uint8_t *)p->key[mid],
					p->len[mid], key, len);

		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int qli_dict_cmp_first(const qli_dict *d, uint32_t k, const uint8_t *key,
		       size_t len)
{
	return key_cmp(d->keys + d->page[k].key_off, d->page[k].key_len, key,
		       len);
}

/* ---- time column: Rice-coded deltas ---- */

static unsigned bitlen64(uint64_t v)
{
	return v ? 64u - (unsigned)__builtin_clzll(v) : 0;
}

#define RICE_ESC 40u /* a quotient this long is followed by the raw delta */

typedef struct bitw {
	uint8_t *p;
	uint64_t acc;
	unsigned nb;
} bitw;

static void bw_put(bitw *w, uint64_t v, unsigned nbits)
{
	/* nbits <= 32 */
	w->acc |= v << w->nb;
	w->nb += nbits;
	while (w->nb >= 8) {
		*w->p++ = (uint8_t)w->acc;
		w->acc >>= 8;
		w->nb -= 8;
	}
}

/* The nbits (<= 64) low bits of v, in pieces of at most 32. */
static void bw_put_long(bitw *w, uint64_t v, unsigned nbits)
{
	while (nbits > 32) {
		bw_put(w, v & 0xffffffffu, 32);
		v >>= 32;
		nbits -= 32;
	}
	if (nbits)
		bw_put(w, v & (~0ull >> (64 - nbits)), nbits);
}

static unsigned rice_k(const qli_idrec *r, uint32_t n)
{
	uint64_t sum = 0, best = UINT64_MAX;
	unsigned k0, kb = 0;

	for (uint32_t i = 1; i < n; i++)
		sum += (uint64_t)(r[i].ts - r[i - 1].ts);
	k0 = n > 1 ? bitlen64(sum / (n - 1)) : 0;
	for (unsigned k = k0 > 2 ? k0 - 2 : 0; k <= k0 + 1 && k < 63; k++) {
		uint64_t bits = 0;

		for (uint32_t i = 1; i < n; i++) {
			uint64_t q = (uint64_t)(r[i].ts - r[i - 1].ts) >> k;

			bits += q < RICE_ESC ? q + 1 + k : RICE_ESC + 1 + 64;
		}
		if (bits < best)
			best = bits, kb = k;
	}
	return kb;
}

static size_t rice_put(uint8_t *out, const qli_idrec *r, uint32_t n)
{
	unsigned k = rice_k(r, n);
	bitw w = { out + 1, 0, 0 };

	out[0] = (uint8_t)k;
	for (uint32_t i = 1; i < n; i++) {
		uint64_t d = (uint64_t)(r[i].ts - r[i - 1].ts), q = d >> k;

		if (q < RICE_ESC) {
			/* q ones, a zero, k low bits */
			while (q >= 32) {
				bw_put(&w, 0xffffffffu, 32);
				q -= 32;
			}
			bw_put(&w, (1ull << q) - 1, (unsigned)q + 1);
			bw_put_long(&w, d, k); /* k <= 62 */
		} else {
			bw_put(&w, 0xffffffffu, 32);
			bw_put(&w, (1ull << (RICE_ESC - 32)) - 1, RICE_ESC - 32);
			bw_put(&w, 0, 1);
			bw_put_long(&w, d, 64);
		}
	}
	if (w.nb)
		*w.p++ = (uint8_t)w.acc;
	return (size_t)(w.p - out);
}

static inline uint64_t load64le(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* Decodes the n - 1 gaps after ts[0]. The bit buffer is refilled a byte
 * to 56-63 bits (it may read ahead of the stream's end; *pp is set from
 * the bits actually used). */
static int rice_get(const uint8_t **pp, const uint8_t *end, int64_t *ts,
		    uint32_t n)
{
	const uint8_t *start = *pp, *p = start;
	uint64_t acc = 0, used, mask;
	unsigned nb = 0, k;
	int64_t t = ts[0];

	if (p >= end || (k = *p++) > 62)
		return -1;
	start = p;
#define REFILL()                                                           \
	do {                                                               \
		if (end - p >= 8) {                                        \
			acc |= load64le(p) << nb;                          \
			p += (63 - nb) >> 3;                               \
			nb |= 56;                                          \
		} else                                                     \
			while (nb <= 48 && p < end) {                      \
				acc |= (uint64_t)*p++ << nb;               \
				nb += 8;                                   \
			}                                                  \
	} while (0)
	mask = k ? ~0ull >> (64 - k) : 0;
	for (uint32_t i = 1; i < n; i++) {
		uint64_t q = 0, d;
		unsigned ones;

		REFILL();
		ones = (unsigned)__builtin_ctzll(~acc);
		if (ones < RICE_ESC && ones + 1 + k <= nb) {
			/* the whole gap is in the buffer (nb <= 63) */
			acc >>= ones + 1;
			d = (uint64_t)ones << k | (acc & mask);
			acc >>= k;
			nb -= ones + 1 + k;
			goto add;
		}
		for (;;) { /* the unary quotient: ones up to a zero */
			REFILL();
			if (!nb)
				return -1;
			ones = (unsigned)__builtin_ctzll(~acc);
			if (ones < nb) {
				q += ones;
				/* ones < nb <= 63 */
				if (ones < 63)
					acc >>= ones + 1;
				else
					acc = 0;
				nb -= ones + 1;
				break;
			}
			q += nb;
			acc = 0;
			nb = 0;
			if (q > RICE_ESC)
				return -1;
		}
		if (q > RICE_ESC)
			return -1;
		if (q < RICE_ESC) {
			uint64_t lo = 0;

			for (unsigned got = 0; got < k;) {
				unsigned take = k - got > 32 ? 32 : k - got;

				REFILL();
				if (nb < take)
					return -1;
				lo |= (acc & ((1ull << take) - 1)) << got;
				acc >>= take;
				nb -= take;
				got += take;
			}
			d = q << k | lo;
		} else {
			d = 0;
			for (unsigned got = 0; got < 64; got += 32) {
				REFILL();
				if (nb < 32)
					return -1;
				d |= (acc & 0xffffffffu) << got;
				acc >>= 32;
				nb -= 32;
			}
		}
add:
		if (d > (uint64_t)INT64_MAX || t > INT64_MAX - (int64_t)d)
			return -1;
		t += (int64_t)d;
		ts[i] = t;
	}
#undef REFILL
	used = (uint64_t)(p - start) * 8 - nb;
	*pp = start + (used + 7) / 8;
	return 0;
}

int qli_idblock_encode(qli_encoder *e, qli_buf *out, const qli_idrec *r,
		       uint32_t n, uint32_t nh, uint32_t ni, int rice,
		       qli_frame_hdr *h)
{
	unsigned wh = width_of(nh), wi = width_of(ni);
	size_t cap = 32 + (size_t)n * (14 + 2 * wh + wi + 2);
	uint8_t *raw = malloc(cap), *p;
	int rc;

	if (!raw)
		return qli_err(QL_ENOMEM, "out of memory");
	p = raw;
	qli_put32(p, n);
	p[4] = (uint8_t)wh;
	p[5] = (uint8_t)wi;
	p[6] = (uint8_t)(rice ? QLI_TIME_RICE : QLI_TIME_VARINT);
	p[7] = 0;
	p += 8;
	p += qli_put_varint(p, ((uint64_t)r[0].ts << 1) ^
				       (uint64_t)(r[0].ts >> 63));
	if (rice)
		p += rice_put(p, r, n);
	else
		for (uint32_t i = 1; i < n; i++)
			p += qli_put_varint(p, (uint64_t)(r[i].ts -
							  r[i - 1].ts));
	for (unsigned b = 0; b < wh; b++)
		for (uint32_t i = 0; i < n; i++)
			*p++ = (uint8_t)(r[i].req >> (8 * b));
	for (unsigned b = 0; b < wh; b++)
		for (uint32_t i = 0; i < n; i++)
			*p++ = (uint8_t)(r[i].tgt >> (8 * b));
	for (unsigned b = 0; b < wi; b++)
		for (uint32_t i = 0; i < n; i++)
			*p++ = (uint8_t)(r[i].ip >> (8 * b));
	for (uint32_t i = 0; i < n; i++)
		*p++ = r[i].svc;
	for (uint32_t i = 0; i < n; i++)
		*p++ = r[i].res;
	memset(h, 0, sizeof(*h));
	h->magic = QLI_MAGIC_BLOCK;
	h->nrec = n;
	h->min_ts = r[0].ts;
	h->max_ts = r[n - 1].ts;
	rc = qli_frame_compress(e, out, raw, (size_t)(p - raw), h);
	free(raw);
	return rc;
}

int qli_idblock_decode(qli_decoder *d, qli_block *b, const qli_frame_hdr *h,
		       const uint8_t *payload, uint32_t nh, uint32_t ni)
{
	const uint8_t *p, *end;
	unsigned wh, wi, tcode;
	uint32_t n;
	uint64_t v;
	int64_t t;
	int rc;

	rc = qli_frame_decompress(d, h, payload, &b->raw, &b->rawcap);
	if (rc)
		return rc;
	if (h->raw_len < 8)
		return corrupt("id block: shorter than its header");
	p = b->raw;
	end = p + h->raw_len;
	n = qli_get32(p);
	wh = p[4];
	wi = p[5];
	tcode = p[6];
	if (n != h->nrec || n == 0 || wh != width_of(nh) || wi != width_of(ni))
		return corrupt("id block: counts or widths out of range");
	if (tcode > QLI_TIME_RICE || p[7])
		return corrupt("id block: unknown time coding");
	p += 8;
	rc = qli_block_layout(b, n, 0, 0, 0);
	if (rc)
		return rc;
	b->n = n;
	b->nstr = nh;
	b->nip = ni;
	b->ids = 1;
	if (qli_get_varint(&p, end, &v))
		return corrupt("id block: time column truncated");
	t = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
	b->ts[0] = t;
	if (tcode == QLI_TIME_RICE) {
		if (rice_get(&p, end, b->ts, n))
			return corrupt("id block: time column truncated or "
				       "overflows");
	} else
		for (uint32_t i = 1; i < n; i++) {
			if (qli_get_varint(&p, end, &v) ||
			    v > (uint64_t)INT64_MAX ||
			    t > INT64_MAX - (int64_t)v)
				return corrupt("id block: time column "
					       "truncated or overflows");
			t += (int64_t)v;
			b->ts[i] = t;
		}
	if ((size_t)(end - p) != (size_t)n * (2 * wh + wi + 2))
		return corrupt("id block: column sizes do not add up");
	memset(b->req, 0, n * sizeof(uint32_t));
	memset(b->tgt, 0, n * sizeof(uint32_t));
	memset(b->ipi, 0, n * sizeof(uint32_t));
	for (unsigned k = 0; k < wh; k++)
		for (uint32_t i = 0; i < n; i++)
			b->req[i] |= (uint32_t)*p++ << (8 * k);
	for (unsigned k = 0; k < wh; k++)
		for (uint32_t i = 0; i < n; i++)
			b->tgt[i] |= (uint32_t)*p++ << (8 * k);
	for (unsigned k = 0; k < wi; k++)
		for (uint32_t i = 0; i < n; i++)
			b->ipi[i] |= (uint32_t)*p++ << (8 * k);
	for (uint32_t i = 0; i < n; i++)
		if (b->req[i] >= nh || b->tgt[i] >= nh || b->ipi[i] >= ni)
			return corrupt("id block: id out of the dictionary");
	memcpy(b->svc, p, n);
	memcpy(b->res, p + n, n);
	if (b->ts[0] != h->min_ts || b->ts[n - 1] != h->max_ts)
		return corrupt("id block: times differ from the frame header");
	return 0;
}

uint32_t qli_dict_page_of(const qli_dict *d, uint32_t id)
{
	const struct qli_dpent *base = d->page;
	uint32_t n = d->npage;

	/* the last page whose first id <= id (page 0 if none), without
	 * branches on the data: a scan asks this three times a record, for
	 * ids in no order, and a mispredicted step cost more than the
	 * step */
	while (n > 1) {
		uint32_t half = n / 2;

		base = base[half].first <= id ? base + half : base;
		n -= half;
	}
	return (uint32_t)(base - d->page);
}
