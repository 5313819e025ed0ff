/* compact.c - rewriting a sealed segment into its compact form.
 *
 * The writer seals a bucket as a ".qls" file of self-contained blocks
 * (each with its own handle and address tables: written as records
 * arrive, durable at once). Once sealed the segment can no longer grow,
 * so its handles and addresses can be counted and stored once: the
 * compactor reads it whole, builds one dictionary of its handles and one
 * of its addresses (dict.h), sorts its records by time and writes
 * "X-gN.qlc" (docs/FORMAT.md §5.9) with blocks that hold only ids. The
 * swap is crash-safe and never loses or doubles a record:
 *
 *   1. write seg/X-gN.qlc.tmp, seal it, fdatasync;
 *   2. under MAINT.lock (so an expiry cannot interleave): if X-gN.qls is
 *      still there, rename the .tmp to X-gN.qlc and fsync seg/, then
 *      unlink X-gN.qls and fsync seg/ again;
 *   3. the writer thread replaces the segment's index entries (same
 *      segment id) with ones for the compact blocks.
 * A crash after 2's rename leaves both files: the .qlc is complete (it
 * was synced before it got its name), so every lister prefers it and the
 * next writer open unlinks the .qls. A reader that opened the .qls keeps
 * reading it through its descriptor. The index lags safely: a directory
 * entry that does not say "compact" for a .qlc is not used (readers load
 * the file's own seal; the writer rebuilds the entry).
 *
 * Memory: the records of one segment (~32 bytes each) and its distinct
 * handles; narrower buckets bound it for very large volumes. */
#define _GNU_SOURCE
#include "dict.h"
#include "err.h"
#include "hold.h"
#include "index.h"
#include "store_int.h"
#include "vfs.h"

#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- distinct keys with counts ---- */

typedef struct ckey {
	const uint8_t *key;
	uint32_t count;
	uint32_t id;
	uint32_t hash; /* qli_hash_mem's low half: the table's probe and tag */
	uint8_t len;
	uint8_t cls; /* bit length of count */
} ckey;

/* Open addressing, linear probing. A slot holds the entry's hash in its
 * high half and the entry's index + 1 in its low half (0 = empty), so a
 * probe that meets another key is decided without touching the entry or
 * its bytes (both are cache misses once a day's 140k handles are in). */
typedef struct ctab {
	ckey *e;
	uint32_t n, cap;
	uint64_t *slot;
	uint32_t nslot; /* power of two */
	/* key bytes (handles NUL-terminated), in chunks that never move */
	struct chunk {
		struct chunk *next;
		size_t used;
		uint8_t b[65536 - 32];
	} *chunks;
} ctab;

static void ctab_free(ctab *t)
{
	struct chunk *c, *n;

	for (c = t->chunks; c; c = n) {
		n = c->next;
		free(c);
	}
	free(t->e);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

static int ctab_grow(ctab *t)
{
	uint32_t ns = t->nslot ? 2 * t->nslot : 4096;
	uint64_t *slot = calloc(ns, sizeof(*slot));

	if (!slot)
		return qli_err(QL_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t h = t->e[i].hash;

		while (slot[h & (ns - 1)])
			h++;
		slot[h & (ns - 1)] = (uint64_t)t->e[i].hash << 32 | (i + 1);
	}
	free(t->slot);
	t->slot = slot;
	t->nslot = ns;
	return 0;
}

/* Counts w occurrences of key, whose qli_hash_mem is hash; *idx gets its
 * entry. */
static int ctab_add(ctab *t, const uint8_t *key, uint8_t len, uint32_t hash,
		    uint32_t w, uint32_t *idx)
{
	uint32_t h;
	int rc;

	if (2 * (t->n + 1) > t->nslot && (rc = ctab_grow(t)))
		return rc;
	for (h = hash;; h++) {
		uint64_t s = t->slot[h & (t->nslot - 1)];
		ckey *e;

		if (!s)
			break;
		if ((uint32_t)(s >> 32) != hash)
			continue;
		e = &t->e[(uint32_t)s - 1];
		if (e->len == len && !memcmp(e->key, key, len)) {
			e->count += w;
			*idx = (uint32_t)s - 1;
			return 0;
		}
	}
	if (t->n >= QLI_DICT_MAX)
		return qli_err(QL_EINVAL, "more than %u distinct keys in one "
			       "segment: use narrower buckets", QLI_DICT_MAX);
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? 2 * t->cap : 4096;
		ckey *e = realloc(t->e, cap * sizeof(*e));

		if (!e)
			return qli_err(QL_ENOMEM, "out of memory");
		t->e = e;
		t->cap = cap;
	}
	if (!t->chunks || t->chunks->used + len + 1 > sizeof(t->chunks->b)) {
		struct chunk *c = malloc(sizeof(*c));

		if (!c)
			return qli_err(QL_ENOMEM, "out of memory");
		c->next = t->chunks;
		c->used = 0;
		t->chunks = c;
	}
	uint8_t *k = t->chunks->b + t->chunks->used;

	memcpy(k, key, len);
	k[len] = 0;
	t->chunks->used += (size_t)len + 1;
	t->e[t->n] = (ckey){ k, w, 0, hash, len, 0 };
	t->slot[h & (t->nslot - 1)] = (uint64_t)hash << 32 | (t->n + 1);
	*idx = t->n++;
	return 0;
}

#define CTAB_BATCH 32

/* ctab_add for n keys (n <= CTAB_BATCH) with counts w, entries to idx.
 * Once a day's keys are in, each add misses the cache on its slot, its
 * entry and the entry's bytes, one after the other; here every key's
 * slot is fetched, then every entry, then every key's bytes, so the
 * misses of a batch overlap. */
static int ctab_add_batch(ctab *t, const uint8_t *const *key,
			  const uint8_t *len, const uint32_t *w, uint32_t n,
			  uint32_t *idx)
{
	uint32_t hash[CTAB_BATCH], mask;
	int rc;

	while (2 * (t->n + n) > t->nslot)
		if ((rc = ctab_grow(t)))
			return rc;
	mask = t->nslot - 1;
	for (uint32_t i = 0; i < n; i++) {
		hash[i] = (uint32_t)qli_hash_mem(key[i], len[i]);
		__builtin_prefetch(&t->slot[hash[i] & mask]);
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t sl = t->slot[hash[i] & mask];

		if (sl && (uint32_t)(sl >> 32) == hash[i])
			__builtin_prefetch(&t->e[(uint32_t)sl - 1]);
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t sl = t->slot[hash[i] & mask];

		if (sl && (uint32_t)(sl >> 32) == hash[i])
			__builtin_prefetch(t->e[(uint32_t)sl - 1].key);
	}
	for (uint32_t i = 0; i < n; i++)
		if ((rc = ctab_add(t, key[i], len[i], hash[i], w[i], &idx[i])))
			return rc;
	return 0;
}

static unsigned bitlen(uint32_t v)
{
	unsigned b = 0;

	while (v) {
		b++;
		v >>= 1;
	}
	return b;
}

static int ckey_cmp(const void *a, const void *b)
{
	const ckey *x = *(const ckey *const *)a, *y = *(const ckey *const *)b;
	int c;

	if (x->cls != y->cls)
		return x->cls > y->cls ? -1 : 1; /* busiest class first */
	c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* A key with its sort order in two integers: the class (busiest first)
 * and the first 15 bytes, big-endian, zero-padded. Handles hold no NUL
 * and addresses are all 16 bytes, so the integers order as ckey_cmp
 * does; only keys equal in them need ckey_cmp. */
typedef struct skey {
	uint64_t a, b;
	ckey *k;
} skey;

static void skey_make(skey *s, ckey *k)
{
	uint8_t x[15] = { 0 };

	memcpy(x, k->key, k->len < 15 ? k->len : 15);
	s->a = (uint64_t)(255 - k->cls) << 56;
	for (int i = 0; i < 7; i++)
		s->a |= (uint64_t)x[i] << (48 - 8 * i);
	s->b = 0;
	for (int i = 0; i < 8; i++)
		s->b |= (uint64_t)x[7 + i] << (56 - 8 * i);
	s->k = k;
}

static int skey_cmp(const void *pa, const void *pb)
{
	const skey *x = pa, *y = pb;

	if (x->a != y->a)
		return x->a < y->a ? -1 : 1;
	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	return ckey_cmp(&x->k, &y->k);
}

/* Sorts by a with a stable byte-wise radix sort (a pass is skipped when
 * every key has the same byte there), then each run of equal a by
 * skey_cmp: a decides almost every pair, a qsort of all of them compared
 * most pairs through memcmp. 0 or -1 (no memory). */
static int skey_sort(skey *v, uint32_t n)
{
	skey *tmp = malloc((n ? n : 1) * sizeof(*tmp)), *src = v, *dst = tmp;
	size_t cnt[256];

	if (!tmp)
		return -1;
	for (unsigned byte = 0; byte < 8; byte++) {
		unsigned sh = 8 * byte;

		memset(cnt, 0, sizeof(cnt));
		for (uint32_t i = 0; i < n; i++)
			cnt[(src[i].a >> sh) & 0xff]++;
		if (n && cnt[(src[0].a >> sh) & 0xff] == n)
			continue; /* all alike */
		for (size_t k = 0, sum = 0; k < 256; k++) {
			size_t c = cnt[k];

			cnt[k] = sum;
			sum += c;
		}
		for (uint32_t i = 0; i < n; i++)
			dst[cnt[(src[i].a >> sh) & 0xff]++] = src[i];
		skey *sw = src;

		src = dst;
		dst = sw;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
	free(tmp);
	for (uint32_t i = 0; i < n;) {
		uint32_t e = i + 1;

		while (e < n && v[e].a == v[i].a)
			e++;
		if (e - i > 16) {
			qsort(v + i, e - i, sizeof(*v), skey_cmp);
		} else {
			/* most runs are a few keys (phone numbers that share
			 * their first 7 bytes): no qsort set-up for them */
			for (uint32_t j = i + 1; j < e; j++) {
				skey x = v[j];
				uint32_t k = j;

				for (; k > i && skey_cmp(&v[k - 1], &x) > 0; k--)
					v[k] = v[k - 1];
				v[k] = x;
			}
		}
		i = e;
	}
	return 0;
}

/* Orders t's keys (class, then key) and assigns ids; *order gets them in
 * id order. */
static int ctab_order(ctab *t, ckey ***order)
{
	ckey **o = malloc((t->n ? t->n : 1) * sizeof(*o));
	skey *sk = malloc((t->n ? t->n : 1) * sizeof(*sk));

	if (!o || !sk) {
		free(o);
		free(sk);
		return qli_err(QL_ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < t->n; i++) {
		t->e[i].cls = (uint8_t)bitlen(t->e[i].count);
		skey_make(&sk[i], &t->e[i]);
	}
	if (skey_sort(sk, t->n)) {
		free(o);
		free(sk);
		return qli_err(QL_ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < t->n; i++) {
		if (i + 16 < t->n)
			__builtin_prefetch(sk[i + 16].k, 1);
		o[i] = sk[i].k;
		o[i]->id = i;
	}
	free(sk);
	*order = o;
	return 0;
}

/* ---- the rewrite ---- */

typedef struct crec {
	int64_t ts;
	uint32_t seq;
	uint32_t req, tgt, ip; /* ctab entries, then ids */
	uint8_t svc, res;
} crec;

/* Each .qls block is sorted by time already (and ties keep write order,
 * which seq follows): merging the blocks' runs with a heap costs
 * n log(blocks) comparisons where a general sort costs n log n calls. */
static int less_rec(const crec *a, const crec *b)
{
	return a->ts != b->ts ? a->ts < b->ts : a->seq < b->seq;
}

static int merge_runs(crec **rp, uint64_t n, const uint32_t *run_start,
		      uint32_t nrun)
{
	crec *r = *rp, *out = malloc((n ? n : 1) * sizeof(*out));
	uint32_t *heap = malloc((nrun ? nrun : 1) * sizeof(*heap));
	uint32_t *pos = malloc((nrun ? nrun : 1) * sizeof(*pos));
	uint32_t nh = 0;

	if (!out || !heap || !pos) {
		free(out);
		free(heap);
		free(pos);
		return qli_err(QL_ENOMEM, "out of memory");
	}
#define RUN_END(k) ((k) + 1 < nrun ? run_start[(k) + 1] : (uint32_t)n)
#define HLESS(a, b) less_rec(&r[pos[a]], &r[pos[b]])
	for (uint32_t k = 0; k < nrun; k++) {
		pos[k] = run_start[k];
		if (pos[k] < RUN_END(k)) {
			uint32_t i = nh++;

			heap[i] = k;
			while (i && HLESS(heap[i], heap[(i - 1) / 2])) {
				uint32_t t = heap[i];

				heap[i] = heap[(i - 1) / 2];
				heap[(i - 1) / 2] = t;
				i = (i - 1) / 2;
			}
		}
	}
	for (uint64_t o = 0; nh; o++) {
		uint32_t k = heap[0], i = 0;

		out[o] = r[pos[k]++];
		if (pos[k] == RUN_END(k))
			heap[0] = heap[--nh];
		for (;;) {
			uint32_t l = 2 * i + 1, m = i;

			if (l < nh && HLESS(heap[l], heap[m]))
				m = l;
			if (l + 1 < nh && HLESS(heap[l + 1], heap[m]))
				m = l + 1;
			if (m == i)
				break;
			uint32_t t = heap[i];

			heap[i] = heap[m];
			heap[m] = t;
			i = m;
		}
	}
#undef RUN_END
#undef HLESS
	free(heap);
	free(pos);
	free(r);
	*rp = out;
	return 0;
}

/* Sorts r, whose runs are each in order, merging each run into the
 * sorted records before it. Records arrive nearly in time order, so a run
 * overlaps the end of what precedes it by a few records (a bench day:
 * none at all, or a handful a block), and only those move: no copy of
 * the segment's records as the heap merge makes. Runs that overlap much
 * (more records moved than the segment holds) go to merge_runs. */
static int sort_runs(crec **rp, uint64_t n, const uint32_t *run_start,
		     uint32_t nrun)
{
	crec *r = *rp, *tmp = NULL;
	uint64_t moved = 0, tcap = 0;
	int rc = 0;

	for (uint32_t k = 1; k < nrun && !rc; k++) {
		uint64_t s = run_start[k], e = k + 1 < nrun ? run_start[k + 1]
							     : n;
		uint64_t p, q, lo, hi, i, j, w;

		if (s == 0 || s >= e || !less_rec(&r[s], &r[s - 1]))
			continue;
		/* p: the first record before s that r[s] precedes; q: the
		 * first of the run that r[s - 1] precedes (ties cannot
		 * happen: seq is unique) */
		for (lo = 0, hi = s - 1; lo < hi;) {
			uint64_t m = lo + (hi - lo) / 2;

			if (less_rec(&r[s], &r[m]))
				hi = m;
			else
				lo = m + 1;
		}
		p = lo;
		for (lo = s + 1, hi = e; lo < hi;) {
			uint64_t m = lo + (hi - lo) / 2;

			if (less_rec(&r[m], &r[s - 1]))
				lo = m + 1;
			else
				hi = m;
		}
		q = lo;
		moved += q - p;
		if (moved > n) {
			uint32_t *rs = malloc((nrun - k + 1) * sizeof(*rs));

			if (!rs) {
				rc = qli_err(QL_ENOMEM, "out of memory");
				break;
			}
			rs[0] = 0;
			memcpy(rs + 1, run_start + k, (nrun - k) * sizeof(*rs));
			rc = merge_runs(rp, n, rs, nrun - k + 1);
			free(rs);
			break;
		}
		if (s - p > tcap) {
			free(tmp);
			tcap = s - p;
			if (!(tmp = malloc(tcap * sizeof(*tmp)))) {
				rc = qli_err(QL_ENOMEM, "out of memory");
				break;
			}
		}
		/* the left part waits in tmp; the merge writes behind j */
		memcpy(tmp, r + p, (s - p) * sizeof(*tmp));
		for (i = 0, j = s, w = p; i < s - p && j < q; w++)
			r[w] = less_rec(&r[j], &tmp[i]) ? r[j++] : tmp[i++];
		memcpy(r + w, tmp + i, (s - p - i) * sizeof(*tmp));
	}
	free(tmp);
	return rc;
}

typedef struct wctx {
	qli_segfile *sf;
	qli_buf out;   /* frames not yet written; they end at sf->size */
	qli_encoder *enc;
} wctx;

static int flush(wctx *w, int force)
{
	int rc;

	if (!w->out.len || (!force && w->out.len < (1u << 20)))
		return 0;
	rc = qli_write_full(w->sf->fd, w->out.p, w->out.len,
			    (off_t)(w->sf->size - w->out.len), w->sf->name);
	w->out.len = 0;
	return rc;
}

/* Writes one dictionary's pages (a page never spans two classes), fills
 * its directory in d and gives acc (if any) every key's filter hash. The
 * entries and key bytes are read in id order, which is not the order they
 * were added in: each is a cache miss, so they are fetched ahead and used
 * once for the page and the hash. */
static int write_dict(wctx *w, qli_dict *d, ckey **o, uint32_t n, int ip,
		      qli_segacc *acc)
{
	const uint8_t *keys[QLI_DICT_PAGE];
	uint8_t lens[QLI_DICT_PAGE];
	uint32_t i = 0, ncls = 0, npage = 0;
	size_t klen = 0;
	int rc = 0;

	d->n = n;
	/* pages: full ones, plus one partial page per class at most */
	uint32_t maxpage = n / QLI_DICT_PAGE + QLI_DICT_CLASSES + 1;

	d->page = calloc(maxpage, sizeof(*d->page));
	d->cls = calloc(QLI_DICT_CLASSES + 1, sizeof(*d->cls));
	d->keys = malloc((size_t)maxpage * (ip ? 16 : 255));
	if (!d->page || !d->cls || !d->keys)
		return qli_err(QL_ENOMEM, "out of memory");
	while (i < n && !rc) {
		uint32_t c = 0, first = i;
		size_t before = w->out.len;
		qli_frame_hdr h;

		if (i == 0 || o[i]->cls != o[i - 1]->cls)
			d->cls[ncls++] = i;
		while (i < n && c < QLI_DICT_PAGE &&
		       (c == 0 || o[i]->cls == o[first]->cls)) {
			if (i + 16 < n)
				__builtin_prefetch(o[i + 16]);
			if (i + 8 < n)
				__builtin_prefetch(o[i + 8]->key);
			keys[c] = o[i]->key;
			lens[c] = o[i]->len;
			if (acc)
				qli_segacc_key(acc, ip, i, keys[c],
					       ip ? 16 : lens[c]);
			c++;
			i++;
		}
		rc = qli_dpage_encode(w->enc, &w->out, ip, keys, lens, c,
				      first, &h);
		if (rc)
			break;
		d->page[npage] = (struct qli_dpent){
			.off = w->sf->size,
			.frame_len = QLI_FRAME_HDR + h.comp_len,
			.raw_len = h.raw_len,
			.first = first,
			.count = c,
			.checksum = h.checksum,
			.key_off = (uint32_t)klen,
			.key_len = ip ? 16 : lens[0],
		};
		d->raw += h.raw_len;
		w->sf->raw_bytes += h.raw_len;
		memcpy(d->keys + klen, keys[0], ip ? 16 : lens[0]);
		klen += ip ? 16 : lens[0];
		npage++;
		w->sf->size += w->out.len - before;
		rc = flush(w, 0);
	}
	d->npage = npage;
	d->ncls = ncls;
	d->cls[ncls] = n;
	d->keys_len = klen;
	return rc;
}

/* Reads every record of src (sealed, not compact) into recs, counting
 * keys in th and ti: each block's uses are counted in its own small
 * arrays first, so a key costs one table access a block, not one a use. */
static int read_all(const qli_segfile *src, ctab *th, ctab *ti, crec **out,
		    uint64_t *nout, uint32_t *run_start)
{
	qli_decoder *d = qli_decoder_new();
	qli_block blk = { 0 };
	qli_buf buf = { 0 };
	uint32_t *smap = NULL, *imap = NULL, *scnt = NULL, *icnt = NULL;
	size_t scap = 0, icap = 0;
	const uint8_t *kp[CTAB_BATCH];
	uint8_t kl[CTAB_BATCH];
	crec *r = NULL;
	uint64_t n = 0;
	qli_frame_hdr h;
	int rc = d ? 0 : qli_err(QL_ENOMEM, "out of memory");

	if (!rc && src->nrec > (uint64_t)UINT32_MAX)
		rc = qli_err(QL_EINVAL, "segment %s: too many records to "
			     "compact", src->name);
	if (!rc && !(r = malloc((src->nrec ? src->nrec : 1) * sizeof(*r))))
		rc = qli_err(QL_ENOMEM, "out of memory");
	for (uint32_t b = 0; b < src->nblk && !rc; b++) {
		rc = qli_segfile_read_block(src, b, &buf, &h);
		if (!rc)
			rc = qli_block_decode(d, &blk, &h,
					      buf.p + QLI_FRAME_HDR);
		if (!rc && n + blk.n > src->nrec)
			rc = qli_err(QL_ECORRUPT, "segment %s: blocks hold "
				     "more records than the seal says",
				     src->name);
		if (!rc && blk.nstr > scap) {
			free(smap);
			free(scnt);
			scap = blk.nstr;
			smap = malloc(scap * sizeof(*smap));
			scnt = malloc(scap * sizeof(*scnt));
			if (!smap || !scnt)
				rc = qli_err(QL_ENOMEM, "out of memory");
		}
		if (!rc && blk.nip > icap) {
			free(imap);
			free(icnt);
			icap = blk.nip;
			imap = malloc(icap * sizeof(*imap));
			icnt = malloc(icap * sizeof(*icnt));
			if (!imap || !icnt)
				rc = qli_err(QL_ENOMEM, "out of memory");
		}
		if (rc)
			break;
		/* qli_block_decode checked every index against the tables */
		memset(scnt, 0, blk.nstr * sizeof(*scnt));
		memset(icnt, 0, blk.nip * sizeof(*icnt));
		for (uint32_t i = 0; i < blk.n; i++) {
			scnt[blk.req[i]]++;
			scnt[blk.tgt[i]]++;
			icnt[blk.ipi[i]]++;
		}
		for (uint32_t i = 0; i < blk.nstr && !rc; i += CTAB_BATCH) {
			uint32_t k = blk.nstr - i < CTAB_BATCH ? blk.nstr - i
							       : CTAB_BATCH;

			for (uint32_t j = 0; j < k; j++) {
				kp[j] = (const uint8_t *)blk.str[i + j];
				kl[j] = (uint8_t)strlen(blk.str[i + j]);
			}
			rc = ctab_add_batch(th, kp, kl, scnt + i, k, smap + i);
		}
		for (uint32_t i = 0; i < blk.nip && !rc; i += CTAB_BATCH) {
			uint32_t k = blk.nip - i < CTAB_BATCH ? blk.nip - i
							      : CTAB_BATCH;

			for (uint32_t j = 0; j < k; j++) {
				kp[j] = blk.ips[i + j];
				kl[j] = 16;
			}
			rc = ctab_add_batch(ti, kp, kl, icnt + i, k, imap + i);
		}
		if (!rc)
			run_start[b] = (uint32_t)n;
		for (uint32_t i = 0; i < blk.n && !rc; i++, n++)
			r[n] = (crec){ blk.ts[i], (uint32_t)n,
				       smap[blk.req[i]], smap[blk.tgt[i]],
				       imap[blk.ipi[i]], blk.svc[i],
				       blk.res[i] };
	}
	if (!rc && n != src->nrec)
		rc = qli_err(QL_ECORRUPT, "segment %s: blocks hold %llu "
			     "records, the seal says %llu", src->name,
			     (unsigned long long)n,
			     (unsigned long long)src->nrec);
	free(smap);
	free(imap);
	free(scnt);
	free(icnt);
	qli_block_free(&blk);
	qli_buf_free(&buf);
	qli_decoder_free(d);
	if (rc) {
		free(r);
		return rc;
	}
	*out = r;
	*nout = n;
	return 0;
}

/* Writes the compact form of src as tmp (complete, sealed, synced) into
 * dst, and the index keys of its blocks into acc. */
static int rewrite(ql_store *s, const qli_segfile *src, const char *tmp,
		   qli_segfile *dst, qli_segacc *acc)
{
	ctab th = { 0 }, ti = { 0 };
	ckey **oh = NULL, **oi = NULL;
	crec *r = NULL;
	uint64_t n = 0;
	qli_idrec *ir = NULL;
	uint32_t *col = NULL; /* the block's ids by role, for acc */
	uint32_t *hid = NULL, *iid = NULL;
	wctx w = { dst, { 0 }, NULL };
	uint32_t *runs = NULL;
	int rc;

	runs = malloc((src->nblk ? src->nblk : 1) * sizeof(*runs));
	rc = runs ? read_all(src, &th, &ti, &r, &n, runs)
		  : qli_err(QL_ENOMEM, "out of memory");
	if (!rc)
		rc = ctab_order(&th, &oh);
	if (!rc)
		rc = ctab_order(&ti, &oi);
	if (!rc)
		rc = sort_runs(&r, n, runs, src->nblk);
	if (rc)
		goto out;
	w.enc = qli_encoder_new(s->opt.compression_level);
	ir = malloc(QLI_IDBLOCK * sizeof(*ir));
	col = malloc(3 * QLI_IDBLOCK * sizeof(*col));
	/* entry -> id in flat arrays: 4 bytes a key stay in cache where the
	 * 24-byte entries do not */
	hid = malloc((th.n ? th.n : 1) * sizeof(*hid));
	iid = malloc((ti.n ? ti.n : 1) * sizeof(*iid));
	if (!w.enc || !ir || !col || !hid || !iid) {
		rc = qli_err(QL_ENOMEM, "out of memory");
		goto out;
	}
	rc = qli_segfile_create_compact(dst, s->segdir, tmp, src->bucket_start,
					src->bucket_width, src->gen,
					s->opt.file_mode);
	if (!rc && acc)
		rc = qli_segacc_set_ids(acc, th.n, ti.n);
	if (rc)
		goto out;
	rc = write_dict(&w, &dst->dh, oh, th.n, 0, acc);
	if (!rc)
		rc = write_dict(&w, &dst->di, oi, ti.n, 1, acc);
	for (uint32_t i = 0; i < th.n; i++)
		hid[i] = th.e[i].id;
	for (uint32_t i = 0; i < ti.n; i++)
		iid[i] = ti.e[i].id;
	for (uint64_t off = 0; off < n && !rc; off += QLI_IDBLOCK) {
		uint32_t k = n - off < QLI_IDBLOCK ? (uint32_t)(n - off)
						    : QLI_IDBLOCK;
		qli_frame_hdr h;

		for (uint32_t i = 0; i < k; i++) {
			const crec *c = &r[off + i];
			uint32_t rq = hid[c->req], tg = hid[c->tgt],
				 ip = iid[c->ip];

			ir[i] = (qli_idrec){ c->ts, rq, tg, ip, c->svc,
					     c->res };
			col[i] = rq;
			col[QLI_IDBLOCK + i] = tg;
			col[2 * QLI_IDBLOCK + i] = ip;
		}
		rc = qli_idblock_encode(w.enc, &w.out, ir, k, th.n, ti.n,
					dst->version >= QLI_SEG_VERSION_COMPACT,
					&h);
		if (rc)
			break;
		/* the frame starts at sf->size: add_block records it there
		 * and moves size past it */
		rc = qli_segfile_add_block(dst, &h);
		if (!rc && acc)
			rc = qli_segacc_add_ids(acc, col, col + QLI_IDBLOCK,
						col + 2 * QLI_IDBLOCK, k,
						dst->nblk - 1);
		if (!rc)
			rc = flush(&w, 0);
	}
	if (!rc)
		rc = flush(&w, 1);
	if (!rc && dst->nrec != src->nrec)
		rc = qli_err(QL_EINVAL, "compaction of %s wrote %llu records "
			     "of %llu", src->name,
			     (unsigned long long)dst->nrec,
			     (unsigned long long)src->nrec);
	if (!rc)
		rc = qli_segfile_seal(dst); /* fdatasyncs */
out:
	free(runs);
	qli_buf_free(&w.out);
	qli_encoder_free(w.enc);
	free(ir);
	free(col);
	free(hid);
	free(iid);
	free(oh);
	free(oi);
	free(r);
	ctab_free(&th);
	ctab_free(&ti);
	return rc;
}

/* Steps 2 of the header comment: the swap, under MAINT.lock. */
static int swap_in(ql_store *s, const char *tmp, const qli_segfile *src,
		   const qli_segfile *dst)
{
	struct stat st;
	int lk, rc;

	rc = qli_maint_lock(s->dirfd, &lk);
	if (rc)
		return rc;
	if (qli_vfs_cur->fstatat(s->segdir, src->name, &st) < 0) {
		/* expired (or removed) while we worked: nothing to swap */
		rc = errno == ENOENT
			     ? qli_err(QL_ENOTFOUND, "segment %s went away "
				       "during its compaction", src->name)
			     : qli_errno(errno, "stat", src->name);
		goto out;
	}
	if (qli_vfs_cur->renameat(s->segdir, tmp, s->segdir, dst->name)) {
		rc = qli_errno(errno, "rename", tmp);
		goto out;
	}
	rc = qli_sync_dir(s->segdir, QLI_SEG_DIR);
	if (rc)
		goto out;
	if (qli_vfs_cur->unlinkat(s->segdir, src->name, 0) && errno != ENOENT) {
		rc = qli_errno(errno, "unlink", src->name);
		goto out;
	}
	rc = qli_sync_dir(s->segdir, QLI_SEG_DIR);
out:
	qli_maint_unlock(lk);
	return rc;
}

int qli_compact_one(ql_store *s, const char *name, qli_segfile **out,
		    qli_segacc **acc_out)
{
	char tmp[QLI_SEG_NAME_MAX + 8];
	qli_segfile src, *dst = calloc(1, sizeof(*dst));
	qli_segacc *acc = qli_segacc_new();
	int rc;

	*out = NULL;
	*acc_out = NULL;
	if (!dst || !acc) {
		free(dst);
		qli_segacc_free(acc);
		return qli_err(QL_ENOMEM, "out of memory");
	}
	dst->fd = -1;
	rc = qli_segfile_load(&src, s->segdir, name, 0);
	if (!rc && (!src.sealed || src.compact || src.nblk == 0))
		rc = qli_err(QL_EINVAL, "segment %s: only a sealed, "
			     "non-empty .qls segment is compacted", name);
	if (rc) {
		if (src.fd >= 0 || src.blk)
			qli_segfile_close(&src);
		free(dst);
		qli_segacc_free(acc);
		return rc;
	}
	qli_seg_cname(tmp, src.bucket_start, src.gen);
	strcat(tmp, ".tmp");
	rc = rewrite(s, &src, tmp, dst, acc);
	if (!rc)
		rc = swap_in(s, tmp, &src, dst);
	if (rc)
		qli_vfs_cur->unlinkat(s->segdir, tmp, 0);
	qli_segfile_close(&src);
	if (rc) {
		qli_segfile_close(dst);
		free(dst);
		qli_segacc_free(acc);
		return rc;
	}
	if (dst->fd >= 0) {
		qli_vfs_cur->close(dst->fd);
		dst->fd = -1;
	}
	/* the trail records the compact file as a seal of its own (same
	 * bucket and records, new name and checksum) */
	if (qli_audit_sealed(s, dst))
		s->audit_err++;
	*out = dst;
	*acc_out = acc;
	return 0;
}

/* ---- the queue and the thread ---- */

int qli_compact_enqueue(ql_store *s, const char *name)
{
	/* under s->mu */
	if (s->opt.compaction == QL_COMPACT_OFF || qli_compact_queued(s, name))
		return 0;
	if (s->ncq == s->capcq) {
		size_t cap = s->capcq ? 2 * s->capcq : 16;
		char(*n)[QLI_SEG_NAME_MAX] = realloc(s->cq, cap * sizeof(*n));

		if (!n)
			return qli_err(QL_ENOMEM, "out of memory");
		s->cq = n;
		s->capcq = cap;
	}
	snprintf(s->cq[s->ncq++], QLI_SEG_NAME_MAX, "%s", name);
	pthread_cond_broadcast(&s->cwork);
	return 0;
}

int qli_compact_queued(const ql_store *s, const char *name)
{
	for (size_t i = 0; i < s->ncq; i++)
		if (!strcmp(s->cq[i], name))
			return 1;
	return 0;
}

/* Takes the next name (under mu); 0 if there is none. */
static int take(ql_store *s, char name[QLI_SEG_NAME_MAX])
{
	if (!s->ncq)
		return 0;
	memcpy(name, s->cq[0], QLI_SEG_NAME_MAX);
	memmove(s->cq, s->cq + 1, (s->ncq - 1) * sizeof(*s->cq));
	s->ncq--;
	return 1;
}

/* Returns freed memory to the system. A compaction allocates and frees a
 * segment's worth (records, key tables, buffers: ~25 MB for a day of the
 * bench's records); glibc keeps freed large blocks (its mmap threshold
 * grows) unless asked to give them back (malloc_trim walks every arena:
 * call it without mu). Not under a sanitizer: its malloc is not glibc's,
 * and glibc's trim of arenas it never set up crashed under TSan. */
static void give_back_memory(void)
{
#if defined(__GLIBC__) && !defined(__SANITIZE_THREAD__) && \
	!defined(__SANITIZE_ADDRESS__)
	malloc_trim(0);
#endif
}

/* Compacts one queued segment (mu held on entry and exit; released while
 * working). Returns 1 if there was one. background: called by the
 * background thread, which gives memory back when idle. */
static int compact_step(ql_store *s, int background)
{
	char name[QLI_SEG_NAME_MAX];
	qli_segfile *sf = NULL;
	qli_segacc *acc = NULL;
	int rc;

	if (!take(s, name))
		return 0;
	s->cbusy++;
	pthread_mutex_unlock(&s->mu);
	rc = qli_compact_one(s, name, &sf, &acc);
	if (rc && rc != QL_ENOTFOUND) {
		/* the .qls stays, complete and valid, and the next open tries
		 * again; its index entries were dropped when it was queued,
		 * so the writer builds them from the file meanwhile */
		char msg[sizeof(s->compact_errmsg)];

		snprintf(msg, sizeof(msg), "%s", ql_errmsg(NULL));
		sf = calloc(1, sizeof(*sf));
		if (sf && qli_segfile_load(sf, s->segdir, name, 0)) {
			if (sf->fd >= 0 || sf->blk)
				qli_segfile_close(sf);
			free(sf);
			sf = NULL;
		}
		qli_clear_err();
		qli_err(rc, "%s", msg);
	}
	/* a compaction allocates and frees a segment's worth of memory,
	 * which glibc keeps for the next one unless asked to give it back;
	 * the background thread gives it back once it has been idle a while
	 * (compactor_main), any other caller when the queue is empty */
	if (!background) {
		pthread_mutex_lock(&s->mu);
		int last = s->ncq == 0;
		pthread_mutex_unlock(&s->mu);
		if (last)
			give_back_memory();
	}
	pthread_mutex_lock(&s->mu);
	s->cbusy--;
	if (rc == 0) {
		qli_install *in = malloc(sizeof(*in));

		if (in) {
			in->sf = sf;
			in->acc = acc;
			in->drop = 0;
			in->next = s->inst;
			s->inst = in;
			s->compacted++;
			pthread_cond_broadcast(&s->work);
		} else {
			/* the file is swapped; its index entry is rebuilt at
			 * the next open (readers use the file meanwhile) */
			qli_segfile_close(sf);
			free(sf);
			qli_segacc_free(acc);
		}
	} else if (rc != QL_ENOTFOUND) {
		qli_install *in = sf ? malloc(sizeof(*in)) : NULL;

		s->compact_fail++;
		snprintf(s->compact_errmsg, sizeof(s->compact_errmsg), "%s",
			 ql_errmsg(NULL));
		if (in) {
			in->sf = sf; /* loaded: built from the file */
			in->acc = NULL;
			in->drop = 0;
			in->next = s->inst;
			s->inst = in;
			pthread_cond_broadcast(&s->work);
		} else if (sf) {
			qli_segfile_close(sf);
			free(sf);
		}
	}
	qli_clear_err();
	pthread_cond_broadcast(&s->done);
	return 1;
}

/* Seconds the background compactor stays idle before it gives its
 * working memory back. */
#define QLI_COMPACT_TRIM_IDLE_S 1

int qli_compact_step(ql_store *s)
{
	return compact_step(s, 0);
}

static void *compactor_main(void *arg)
{
	ql_store *s = arg;
	int idle_trim = 0;

#ifdef SYS_gettid
	/* background work: never compete with appends for a CPU */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
#endif
	pthread_mutex_lock(&s->mu);
	while (!s->cstop) {
		struct timespec ts;

		if (compact_step(s, 1)) {
			idle_trim = 1;
			continue;
		}
		if (!idle_trim) {
			pthread_cond_wait(&s->cwork, &s->mu);
			continue;
		}
		/* Memory goes back once nothing was queued for a second, not
		 * after each segment: during an import (a segment every
		 * ~0.15 s at 2M records/s) the compactor keeps up, so the
		 * queue was empty after nearly every segment and the next
		 * compaction faulted it all back in (the bench's 10M ingest:
		 * 207k minor faults and 2.7 s of system time before, 74k and
		 * 1.5 s now). Live, a bucket seals a day, and its memory is
		 * back a second after its compaction. */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += QLI_COMPACT_TRIM_IDLE_S;
		if (pthread_cond_timedwait(&s->cwork, &s->mu, &ts) ==
			    ETIMEDOUT &&
		    !s->ncq && !s->cstop) {
			pthread_mutex_unlock(&s->mu);
			give_back_memory();
			pthread_mutex_lock(&s->mu);
			idle_trim = 0;
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (idle_trim)
		give_back_memory();
	return NULL;
}

int qli_compact_start(ql_store *s)
{
	int rc;

	if (s->opt.compaction != QL_COMPACT_BACKGROUND)
		return 0;
	rc = pthread_create(&s->cthread, NULL, compactor_main, s);
	if (rc)
		return qli_err(QL_ENOMEM, "cannot start the compaction thread "
			       "(%s)", strerror(rc));
	s->cthread_started = 1;
	return 0;
}

void qli_compact_stop(ql_store *s)
{
	if (!s->cthread_started)
		return;
	pthread_mutex_lock(&s->mu);
	s->cstop = 1;
	pthread_cond_broadcast(&s->cwork);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->cthread, NULL);
	s->cthread_started = 0;
}

/* Waits (mu held) until nothing is queued or being compacted. The caller
 * works through the queue itself, at its own priority (the background
 * thread runs at nice 19 and would make a waiting caller wait on any
 * other load of the machine), then waits for the one in progress. */
void qli_compact_drain(ql_store *s)
{
	while (qli_compact_step(s))
		;
	while (s->cbusy)
		pthread_cond_wait(&s->done, &s->mu);
}
/* ---- the index keys of a compact file (reindex) ---- */

int qli_compact_acc(const qli_segfile *sf, qli_segacc *acc)
{
	qli_decoder *d = qli_decoder_new();
	qli_dpage pg = { 0 };
	qli_block blk = { 0 };
	qli_buf buf = { 0 };
	qli_frame_hdr h;
	int rc = d ? 0 : qli_err(QL_ENOMEM, "out of memory");

	if (!rc)
		rc = qli_segacc_set_ids(acc, sf->dh.n, sf->di.n);
	/* the keys, for the class filters */
	for (int ip = 0; ip < 2 && !rc; ip++) {
		const qli_dict *dc = ip ? &sf->di : &sf->dh;

		for (uint32_t k = 0; k < dc->npage && !rc; k++) {
			rc = qli_segfile_read_page(sf, ip, k, &buf, &h);
			if (!rc)
				rc = qli_dpage_decode(d, &pg, &h,
						      buf.p + QLI_FRAME_HDR,
						      dc->page[k].first);
			for (uint32_t i = 0; !rc && i < pg.count; i++)
				qli_segacc_key(acc, ip, pg.first + i,
					       ip ? (const void *)pg.ip[i]
						  : (const void *)pg.key[i],
					       ip ? 16 : pg.len[i]);
			qli_dpage_free(&pg);
		}
	}
	for (uint32_t b = 0; b < sf->nblk && !rc; b++) {
		rc = qli_segfile_read_block(sf, b, &buf, &h);
		if (!rc)
			rc = qli_idblock_decode(d, &blk, &h,
						buf.p + QLI_FRAME_HDR,
						sf->dh.n, sf->di.n);
		if (!rc)
			rc = qli_segacc_add_ids(acc, blk.req, blk.tgt,
						blk.ipi, blk.n, b);
	}
	qli_block_free(&blk);
	qli_buf_free(&buf);
	qli_decoder_free(d);
	return rc;
}
