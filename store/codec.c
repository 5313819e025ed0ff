/* codec.c - block encoding and decoding.
 *
 * A block's payload, before compression, is columnar (docs/FORMAT.md):
 *
 *   u32 n, u32 nstr, u32 nip, u8 wstr, u8 wip, u16 0
 *   nstr handles: u8 len, bytes           (first-appearance order)
 *   nip addresses: u8 kind (4|16), bytes  (4 = IPv4-mapped)
 *   times: zigzag varint of the first, then n-1 varint deltas (sorted)
 *   requester column: n x wstr bytes (index into the handle table)
 *   target column:    n x wstr bytes
 *   ip column:        n x wip bytes
 *   service column:   n bytes
 *   result column:    n bytes
 *
 * Handles repeat heavily (a requester looks up the same contacts, popular
 * targets are looked up by many), so a per-block table plus narrow index
 * columns gives zstd far less to chew on than row-wise text; columns of
 * like values compress better than interleaved rows. */
#include "codec.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zstd.h>

static const uint8_t v4_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				       0xff, 0xff };

uint64_t qli_hash64(const void *p, size_t len, uint64_t seed)
{
	return XXH64(p, len, seed);
}

uint64_t qli_hash_mem(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

int qli_buf_reserve(qli_buf *b, size_t extra)
{
	size_t want = b->len + extra, cap;
	uint8_t *np;

	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < want)
		cap *= 2;
	np = realloc(b->p, cap);
	if (!np)
		return qli_err(QL_ENOMEM, "out of memory (%zu bytes)", cap);
	b->p = np;
	b->cap = cap;
	return 0;
}

void qli_buf_free(qli_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- frame header ---- */

static void hdr_pack(uint8_t out[QLI_FRAME_HDR], const qli_frame_hdr *h)
{
	qli_put32(out, h->magic);
	qli_put32(out + 4, h->comp_len);
	qli_put32(out + 8, h->raw_len);
	qli_put32(out + 12, h->nrec);
	qli_put64(out + 16, (uint64_t)h->min_ts);
	qli_put64(out + 24, (uint64_t)h->max_ts);
	qli_put64(out + 32, h->checksum);
}

static uint64_t frame_checksum(const uint8_t hdr[QLI_FRAME_HDR],
			       const uint8_t *payload, uint32_t len)
{
	XXH64_state_t st;

	XXH64_reset(&st, 0);
	XXH64_update(&st, hdr, 32);
	if (len)
		XXH64_update(&st, payload, len);
	return XXH64_digest(&st);
}

void qli_frame_hdr_write(uint8_t out[QLI_FRAME_HDR], qli_frame_hdr *h,
			 const uint8_t *payload)
{
	h->checksum = 0;
	hdr_pack(out, h);
	h->checksum = frame_checksum(out, payload, h->comp_len);
	qli_put64(out + 32, h->checksum);
}

int qli_frame_hdr_read(const uint8_t in[QLI_FRAME_HDR], qli_frame_hdr *h)
{
	h->magic = qli_get32(in);
	h->comp_len = qli_get32(in + 4);
	h->raw_len = qli_get32(in + 8);
	h->nrec = qli_get32(in + 12);
	h->min_ts = (int64_t)qli_get64(in + 16);
	h->max_ts = (int64_t)qli_get64(in + 24);
	h->checksum = qli_get64(in + 32);
	if (h->magic != QLI_MAGIC_BLOCK && h->magic != QLI_MAGIC_SEAL &&
	    h->magic != QLI_MAGIC_HPAGE_ && h->magic != QLI_MAGIC_IPAGE_ &&
	    h->magic != QLI_MAGIC_SYNC)
		return qli_err(QL_ECORRUPT, "bad frame magic 0x%08x",
			       h->magic);
	if (h->magic == QLI_MAGIC_SYNC &&
	    (h->comp_len || h->raw_len || h->nrec || h->min_ts <= 0 ||
	     h->max_ts))
		return qli_err(QL_ECORRUPT, "sync mark header out of range");
	if ((h->magic == QLI_MAGIC_HPAGE_ || h->magic == QLI_MAGIC_IPAGE_) &&
	    (h->nrec == 0 || h->nrec > 256 || h->raw_len > (1u << 20) ||
	     h->comp_len == 0 || h->comp_len > ZSTD_compressBound(1u << 20) ||
	     h->min_ts < 0 || h->max_ts < h->min_ts ||
	     h->max_ts - h->min_ts != (int64_t)h->nrec - 1))
		return qli_err(QL_ECORRUPT,
			       "dictionary page header out of range (entries "
			       "%u, raw %u, compressed %u)", h->nrec,
			       h->raw_len, h->comp_len);
	if (h->magic == QLI_MAGIC_BLOCK &&
	    (h->nrec == 0 || h->nrec > QLI_MAX_BLOCK_RECORDS ||
	     h->raw_len > QLI_MAX_RAW || h->comp_len == 0 ||
	     h->comp_len > ZSTD_compressBound(QLI_MAX_RAW) ||
	     h->min_ts > h->max_ts))
		return qli_err(QL_ECORRUPT,
			       "block header out of range (records %u, raw %u, "
			       "compressed %u)", h->nrec, h->raw_len,
			       h->comp_len);
	if (h->magic == QLI_MAGIC_SEAL && h->comp_len > (64u << 20))
		return qli_err(QL_ECORRUPT, "seal frame too large (%u)",
			       h->comp_len);
	return 0;
}

int qli_frame_verify(const uint8_t hdr[QLI_FRAME_HDR], const qli_frame_hdr *h,
		     const uint8_t *payload)
{
	uint8_t tmp[QLI_FRAME_HDR];

	memcpy(tmp, hdr, sizeof(tmp));
	memset(tmp + 32, 0, 8);
	if (frame_checksum(tmp, payload, h->comp_len) != h->checksum)
		return qli_err(QL_ECORRUPT, "frame checksum mismatch");
	return 0;
}

/* ---- varints ---- */

size_t qli_put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

int qli_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t r = 0;
	unsigned shift = 0;

	while (p < end && shift < 64) {
		uint8_t b = *p++;

		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*pp = p;
			*v = r;
			return 0;
		}
		shift += 7;
	}
	return -1;
}

static unsigned width_for(uint32_t count)
{
	if (count <= 0x100)
		return 1;
	if (count <= 0x10000)
		return 2;
	if (count <= 0x1000000)
		return 3;
	return 4;
}

static void put_idx(uint8_t *p, uint32_t v, unsigned w)
{
	for (unsigned i = 0; i < w; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_idx(const uint8_t *p, unsigned w)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < w; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

/* ---- encoder ---- */

/* A record's time and its index in the block: the sort key. */
typedef struct tkey {
	int64_t ts;
	uint32_t i;
} tkey;

struct qli_encoder {
	int level;
	ZSTD_CCtx *cctx;
	qli_buf raw;
	/* dedup tables: open addressing, sized to a power of two */
	uint32_t *slot; /* id + 1, 0 = empty */
	uint64_t *slot_hash;
	size_t nslot;
	const qli_rec **order; /* records sorted by time */
	tkey *keys, *ktmp;     /* their times, sorted; merge scratch */
	uint32_t *sid_req, *sid_tgt, *iid;
	const char **strs;
	uint8_t *strl, *role;
	const uint8_t **ipv;
	size_t cols_cap;
};

int qli_zstd_fastest_level(void)
{
	return ZSTD_minCLevel();
}

qli_encoder *qli_encoder_new(int level)
{
	qli_encoder *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->level = level;
	e->cctx = ZSTD_createCCtx();
	if (!e->cctx) {
		free(e);
		return NULL;
	}
	return e;
}

void qli_encoder_free(qli_encoder *e)
{
	if (!e)
		return;
	ZSTD_freeCCtx(e->cctx);
	qli_buf_free(&e->raw);
	free(e->slot);
	free(e->slot_hash);
	free(e->order);
	free(e->keys);
	free(e->ktmp);
	free(e->sid_req);
	free(e->sid_tgt);
	free(e->iid);
	free(e->strs);
	free(e->strl);
	free(e->role);
	free(e->ipv);
	free(e);
}

static int enc_reserve(qli_encoder *e, uint32_t n)
{
	size_t want = n, ns = 16;

	if (want > e->cols_cap) {
		void *p[10];

		p[0] = realloc(e->order, want * sizeof(*e->order));
		if (p[0])
			e->order = p[0];
		p[1] = realloc(e->keys, want * sizeof(*e->keys));
		if (p[1])
			e->keys = p[1];
		p[8] = realloc(e->ktmp, want * sizeof(*e->ktmp));
		if (p[8])
			e->ktmp = p[8];
		p[9] = realloc(e->role, 2 * want);
		if (p[9])
			e->role = p[9];
		p[2] = realloc(e->sid_req, want * sizeof(uint32_t));
		if (p[2])
			e->sid_req = p[2];
		p[3] = realloc(e->sid_tgt, want * sizeof(uint32_t));
		if (p[3])
			e->sid_tgt = p[3];
		p[4] = realloc(e->iid, want * sizeof(uint32_t));
		if (p[4])
			e->iid = p[4];
		p[5] = realloc(e->strs, 2 * want * sizeof(*e->strs));
		if (p[5])
			e->strs = p[5];
		p[6] = realloc(e->strl, 2 * want);
		if (p[6])
			e->strl = p[6];
		p[7] = realloc(e->ipv, want * sizeof(*e->ipv));
		if (p[7])
			e->ipv = p[7];
		for (int i = 0; i < 10; i++)
			if (!p[i])
				return qli_err(QL_ENOMEM, "out of memory "
					       "encoding a block of %u", n);
		e->cols_cap = want;
	}
	while (ns < 4 * want)
		ns *= 2;
	if (ns > e->nslot) {
		free(e->slot);
		free(e->slot_hash);
		e->slot = malloc(ns * sizeof(*e->slot));
		e->slot_hash = malloc(ns * sizeof(*e->slot_hash));
		if (!e->slot || !e->slot_hash) {
			free(e->slot);
			free(e->slot_hash);
			e->slot = NULL;
			e->slot_hash = NULL;
			e->nslot = 0;
			return qli_err(QL_ENOMEM, "out of memory");
		}
		e->nslot = ns;
	}
	return 0;
}

/* Stable merge sort of the records' times (with their indexes: keys in
 * one array, not pointers to chase). Records arrive nearly sorted (2% a
 * few minutes late), so the run check makes most merges a single
 * comparison. */
static void sort_by_time(tkey *a, tkey *tmp, uint32_t n)
{
	uint32_t w, i;

	for (w = 1; w < n; w *= 2) {
		for (i = 0; i < n; i += 2 * w) {
			uint32_t mid = i + w, hi = i + 2 * w, l, r, k;

			if (mid >= n)
				continue;
			if (hi > n)
				hi = n;
			if (a[mid - 1].ts <= a[mid].ts)
				continue;
			memcpy(tmp + i, a + i, (hi - i) * sizeof(*a));
			l = i, r = mid, k = i;
			while (l < mid && r < hi)
				a[k++] = tmp[r].ts < tmp[l].ts ? tmp[r++]
							       : tmp[l++];
			while (l < mid)
				a[k++] = tmp[l++];
			while (r < hi)
				a[k++] = tmp[r++];
		}
	}
}


/* Writes an index column: n values of w bytes, little-endian. */
static uint8_t *put_col(uint8_t *p, const uint32_t *v, uint32_t n,
			unsigned w)
{
	uint32_t i;

	switch (w) {
	case 1:
		for (i = 0; i < n; i++)
			p[i] = (uint8_t)v[i];
		break;
	case 2:
		for (i = 0; i < n; i++) {
			p[2 * i] = (uint8_t)v[i];
			p[2 * i + 1] = (uint8_t)(v[i] >> 8);
		}
		break;
	default:
		for (i = 0; i < n; i++)
			put_idx(p + (size_t)i * w, v[i], w);
		break;
	}
	return p + (size_t)n * w;
}

/* Interns a byte string; returns its id. */
static uint32_t intern(qli_encoder *e, const void *s, uint8_t len,
		       uint32_t *count, int is_ip)
{
	uint64_t h = XXH3_64bits(s, len) ^ (is_ip ? 0x9e3779b97f4a7c15u : 0);
	size_t mask = e->nslot - 1, i = (size_t)h & mask;

	for (;; i = (i + 1) & mask) {
		uint32_t id = e->slot[i];

		if (!id)
			break;
		if (e->slot_hash[i] != h)
			continue;
		id--;
		if (is_ip ? !memcmp(e->ipv[id], s, 16)
			  : (e->strl[id] == len &&
			     !memcmp(e->strs[id], s, len)))
			return id;
	}
	e->slot[i] = *count + 1;
	e->slot_hash[i] = h;
	if (is_ip)
		e->ipv[*count] = s;
	else {
		e->strs[*count] = s;
		e->strl[*count] = len;
		e->role[*count] = 0;
	}
	return (*count)++;
}

void qli_block_keys_free(qli_block_keys *k)
{
	free(k->str);
	free(k->len);
	free(k->role);
	free(k->ip);
	memset(k, 0, sizeof(*k));
}

/* Copies the encoder's distinct handles and addresses to k. */
static void keys_fill(const qli_encoder *e, qli_block_keys *k, uint32_t n,
		      uint32_t nstr, uint32_t nip)
{
	size_t want = nstr > nip ? nstr : nip;

	k->n = 0;
	if (want > k->cap) {
		void *a = realloc(k->str, want * sizeof(*k->str));
		void *b, *c, *d;

		if (a)
			k->str = a;
		b = a ? realloc(k->len, want) : NULL;
		if (b)
			k->len = b;
		c = b ? realloc(k->role, want) : NULL;
		if (c)
			k->role = c;
		d = c ? realloc(k->ip, want * sizeof(*k->ip)) : NULL;
		if (!d)
			return; /* the summary is computed from the records */
		k->ip = d;
		k->cap = want;
	}
	memcpy(k->str, e->strs, nstr * sizeof(*k->str));
	memcpy(k->len, e->strl, nstr);
	memcpy(k->role, e->role, nstr);
	memcpy(k->ip, e->ipv, nip * sizeof(*k->ip));
	k->nstr = nstr;
	k->nip = nip;
	k->n = n;
}

int qli_block_encode(qli_encoder *e, qli_buf *out, const qli_rec *recs,
		     uint32_t n, qli_frame_hdr *hdr)
{
	return qli_block_encode_keys(e, out, recs, n, hdr, NULL);
}

int qli_block_encode_keys(qli_encoder *e, qli_buf *out, const qli_rec *recs,
			  uint32_t n, qli_frame_hdr *hdr, qli_block_keys *keys)
{
	uint32_t nstr = 0, nip = 0, i;
	unsigned ws, wi;
	size_t bound, csz, strbytes = 0;
	uint8_t *p;
	int rc;

	if (n == 0 || n > QLI_MAX_BLOCK_RECORDS)
		return qli_err(QL_EINVAL, "block of %u records", n);
	rc = enc_reserve(e, n);
	if (rc)
		return rc;
	for (i = 0; i < n; i++) {
		e->keys[i].ts = recs[i].ts;
		e->keys[i].i = i;
	}
	sort_by_time(e->keys, e->ktmp, n);
	for (i = 0; i < n; i++)
		e->order[i] = &recs[e->keys[i].i];

	memset(e->slot, 0, e->nslot * sizeof(*e->slot));
	for (i = 0; i < n; i++) {
		const qli_rec *r = e->order[i];

		e->sid_req[i] = intern(e, r->req, r->req_len, &nstr, 0);
		e->role[e->sid_req[i]] |= QLI_KEY_REQ;
		e->sid_tgt[i] = intern(e, r->tgt, r->tgt_len, &nstr, 0);
		e->role[e->sid_tgt[i]] |= QLI_KEY_TGT;
	}
	memset(e->slot, 0, e->nslot * sizeof(*e->slot));
	for (i = 0; i < n; i++)
		e->iid[i] = intern(e, e->order[i]->ip, 16, &nip, 1);
	for (i = 0; i < nstr; i++)
		strbytes += 1u + e->strl[i];
	if (keys)
		keys_fill(e, keys, n, nstr, nip);

	ws = width_for(nstr);
	wi = width_for(nip);
	e->raw.len = 0;
	rc = qli_buf_reserve(&e->raw, 16 + strbytes + 17 * (size_t)nip +
					      10 * (size_t)n +
					      (2 * ws + wi + 2) * (size_t)n);
	if (rc)
		return rc;
	p = e->raw.p;
	qli_put32(p, n);
	qli_put32(p + 4, nstr);
	qli_put32(p + 8, nip);
	p[12] = (uint8_t)ws;
	p[13] = (uint8_t)wi;
	p[14] = p[15] = 0;
	p += 16;
	for (i = 0; i < nstr; i++) {
		*p++ = e->strl[i];
		qli_copy_short(p, e->strs[i], e->strl[i]);
		p += e->strl[i];
	}
	for (i = 0; i < nip; i++) {
		if (!memcmp(e->ipv[i], v4_prefix, 12)) {
			*p++ = 4;
			memcpy(p, e->ipv[i] + 12, 4);
			p += 4;
		} else {
			*p++ = 16;
			memcpy(p, e->ipv[i], 16);
			p += 16;
		}
	}
	{
		int64_t first = e->keys[0].ts;
		uint64_t zz = ((uint64_t)first << 1) ^ (uint64_t)(first >> 63);

		p += qli_put_varint(p, zz);
		for (i = 1; i < n; i++)
			p += qli_put_varint(p, (uint64_t)(e->keys[i].ts -
						      e->keys[i - 1].ts));
	}
	p = put_col(p, e->sid_req, n, ws);
	p = put_col(p, e->sid_tgt, n, ws);
	p = put_col(p, e->iid, n, wi);
	for (i = 0; i < n; i++)
		*p++ = e->order[i]->svc;
	for (i = 0; i < n; i++)
		*p++ = e->order[i]->res;
	e->raw.len = (size_t)(p - e->raw.p);
	if (e->raw.len > QLI_MAX_RAW)
		return qli_err(QL_EINVAL, "block too large (%zu bytes)",
			       e->raw.len);

	bound = ZSTD_compressBound(e->raw.len);
	rc = qli_buf_reserve(out, QLI_FRAME_HDR + bound);
	if (rc)
		return rc;
	csz = ZSTD_compressCCtx(e->cctx, out->p + out->len + QLI_FRAME_HDR,
				bound, e->raw.p, e->raw.len, e->level);
	if (ZSTD_isError(csz))
		return qli_err(QL_EIO, "zstd compression failed: %s",
			       ZSTD_getErrorName(csz));
	hdr->magic = QLI_MAGIC_BLOCK;
	hdr->comp_len = (uint32_t)csz;
	hdr->raw_len = (uint32_t)e->raw.len;
	hdr->nrec = n;
	hdr->min_ts = e->order[0]->ts;
	hdr->max_ts = e->order[n - 1]->ts;
	qli_frame_hdr_write(out->p + out->len, hdr,
			    out->p + out->len + QLI_FRAME_HDR);
	out->len += QLI_FRAME_HDR + csz;
	return 0;
}

int qli_frame_compress(qli_encoder *e, qli_buf *out, const uint8_t *raw,
		       size_t len, qli_frame_hdr *hdr)
{
	size_t bound, csz;
	int rc;

	if (len > QLI_MAX_RAW)
		return qli_err(QL_EINVAL, "frame too large (%zu bytes)", len);
	bound = ZSTD_compressBound(len);
	rc = qli_buf_reserve(out, QLI_FRAME_HDR + bound);
	if (rc)
		return rc;
	csz = ZSTD_compressCCtx(e->cctx, out->p + out->len + QLI_FRAME_HDR,
				bound, raw, len, e->level);
	if (ZSTD_isError(csz))
		return qli_err(QL_EIO, "zstd compression failed: %s",
			       ZSTD_getErrorName(csz));
	hdr->comp_len = (uint32_t)csz;
	hdr->raw_len = (uint32_t)len;
	qli_frame_hdr_write(out->p + out->len, hdr,
			    out->p + out->len + QLI_FRAME_HDR);
	out->len += QLI_FRAME_HDR + csz;
	return 0;
}

/* ---- decoder ---- */

struct qli_decoder {
	ZSTD_DCtx *dctx;
};

qli_decoder *qli_decoder_new(void)
{
	qli_decoder *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->dctx = ZSTD_createDCtx();
	if (!d->dctx) {
		free(d);
		return NULL;
	}
	return d;
}

void qli_decoder_free(qli_decoder *d)
{
	if (!d)
		return;
	ZSTD_freeDCtx(d->dctx);
	free(d);
}

int qli_frame_decompress(qli_decoder *d, const qli_frame_hdr *h,
			 const uint8_t *payload, void **buf, size_t *cap)
{
	size_t got;

	if (h->raw_len > *cap || !*buf) {
		void *nr = realloc(*buf, h->raw_len ? h->raw_len : 1);

		if (!nr)
			return qli_err(QL_ENOMEM, "out of memory decoding");
		*buf = nr;
		*cap = h->raw_len;
	}
	/* exactly raw_len bytes: the bomb guard */
	got = ZSTD_decompressDCtx(d->dctx, *buf, h->raw_len, payload,
				  h->comp_len);
	if (ZSTD_isError(got))
		return qli_err(QL_ECORRUPT, "zstd: %s", ZSTD_getErrorName(got));
	if (got != h->raw_len)
		return qli_err(QL_ECORRUPT, "decompressed size differs from "
			       "the frame header");
	return 0;
}

void qli_block_free(qli_block *blk)
{
	if (!blk)
		return;
	free(blk->mem);
	free(blk->raw);
	memset(blk, 0, sizeof(*blk));
}

static int corrupt(const char *what)
{
	return qli_err(QL_ECORRUPT, "block payload: %s", what);
}

#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

/* Lays out the decoded arrays in one allocation. */
int qli_block_layout(qli_block *b, uint32_t n, uint32_t nstr, uint32_t nip,
		     size_t strbytes)
{
	size_t need = ALIGN8(n * sizeof(int64_t)) +
		      3 * ALIGN8(n * sizeof(uint32_t)) + 2 * ALIGN8(n) +
		      ALIGN8(nstr * sizeof(char *)) + ALIGN8(nip * 16) +
		      ALIGN8(strbytes);
	uint8_t *m;

	if (need > b->memcap) {
		void *nm = realloc(b->mem, need);

		if (!nm)
			return qli_err(QL_ENOMEM, "out of memory decoding");
		b->mem = nm;
		b->memcap = need;
	}
	m = b->mem;
	b->ts = (int64_t *)m;
	m += ALIGN8(n * sizeof(int64_t));
	b->req = (uint32_t *)m;
	m += ALIGN8(n * sizeof(uint32_t));
	b->tgt = (uint32_t *)m;
	m += ALIGN8(n * sizeof(uint32_t));
	b->ipi = (uint32_t *)m;
	m += ALIGN8(n * sizeof(uint32_t));
	b->svc = m;
	m += ALIGN8(n);
	b->res = m;
	m += ALIGN8(n);
	b->str = (char **)m;
	m += ALIGN8(nstr * sizeof(char *));
	b->ips = (uint8_t(*)[16])m;
	m += ALIGN8(nip * 16);
	/* handle bytes follow at m */
	if (nstr)
		b->str[0] = (char *)m;
	return 0;
}

static int dec_columns(qli_block *b, const uint8_t *p, const uint8_t *end,
		       unsigned ws, unsigned wi)
{
	uint32_t n = b->n, i;
	uint64_t v;
	int64_t t;

	if (qli_get_varint(&p, end, &v))
		return corrupt("time column truncated");
	t = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
	b->ts[0] = t;
	for (i = 1; i < n; i++) {
		if (qli_get_varint(&p, end, &v) || v > (uint64_t)INT64_MAX ||
		    t > INT64_MAX - (int64_t)v)
			return corrupt("time column truncated or overflows");
		t += (int64_t)v;
		b->ts[i] = t;
	}
	if ((size_t)(end - p) != (size_t)n * (2 * ws + wi + 2))
		return corrupt("column sizes do not add up");
	for (i = 0; i < n; i++, p += ws)
		if ((b->req[i] = get_idx(p, ws)) >= b->nstr)
			return corrupt("requester index out of range");
	for (i = 0; i < n; i++, p += ws)
		if ((b->tgt[i] = get_idx(p, ws)) >= b->nstr)
			return corrupt("target index out of range");
	for (i = 0; i < n; i++, p += wi)
		if ((b->ipi[i] = get_idx(p, wi)) >= b->nip)
			return corrupt("ip index out of range");
	memcpy(b->svc, p, n);
	memcpy(b->res, p + n, n);
	return 0;
}

int qli_block_decode(qli_decoder *d, qli_block *b, const qli_frame_hdr *h,
		     const uint8_t *payload)
{
	const uint8_t *p, *end;
	uint32_t n, nstr, nip, i;
	unsigned ws, wi;
	size_t got;
	char *sp;
	int rc;

	if (h->raw_len > b->rawcap) {
		void *nr = realloc(b->raw, h->raw_len);

		if (!nr)
			return qli_err(QL_ENOMEM, "out of memory decoding");
		b->raw = nr;
		b->rawcap = h->raw_len;
	}
	/* Decompressing into a buffer of exactly raw_len bytes bounds the
	 * memory a hostile frame can make us use (decompression bomb). */
	got = ZSTD_decompressDCtx(d->dctx, b->raw, h->raw_len, payload,
				  h->comp_len);
	if (ZSTD_isError(got))
		return qli_err(QL_ECORRUPT, "zstd: %s",
			       ZSTD_getErrorName(got));
	if (got != h->raw_len || got < 16)
		return corrupt("decompressed size differs from header");
	p = b->raw;
	end = p + got;
	n = qli_get32(p);
	nstr = qli_get32(p + 4);
	nip = qli_get32(p + 8);
	ws = p[12];
	wi = p[13];
	if (n != h->nrec || n == 0 || nstr > 2 * n || nip > n || nip == 0 ||
	    nstr == 0 || ws != width_for(nstr) || wi != width_for(nip))
		return corrupt("counts out of range");
	p += 16;
	rc = qli_block_layout(b, n, nstr, nip, (size_t)(end - p) + nstr);
	if (rc)
		return rc;
	b->n = n;
	b->nstr = nstr;
	b->nip = nip;
	b->ids = 0;
	sp = b->str[0];
	for (i = 0; i < nstr; i++) {
		uint8_t len;

		if (p >= end || (size_t)(end - p) < 1u + p[0] || p[0] == 0)
			return corrupt("handle table truncated");
		len = *p++;
		memcpy(sp, p, len);
		sp[len] = '\0';
		b->str[i] = sp;
		sp += len + 1;
		p += len;
	}
	for (i = 0; i < nip; i++) {
		if (p >= end)
			return corrupt("address table truncated");
		if (*p == 4 && end - p >= 5) {
			memcpy(b->ips[i], v4_prefix, 12);
			memcpy(b->ips[i] + 12, p + 1, 4);
			p += 5;
		} else if (*p == 16 && end - p >= 17) {
			memcpy(b->ips[i], p + 1, 16);
			p += 17;
		} else {
			return corrupt("address table entry malformed");
		}
	}
	rc = dec_columns(b, p, end, ws, wi);
	if (rc)
		return rc;
	if (b->ts[0] != h->min_ts || b->ts[n - 1] != h->max_ts)
		return corrupt("times differ from the frame header");
	return 0;
}
