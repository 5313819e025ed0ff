/* cursor.c - reading: time-ordered cursors, statistics, verification.
 *
 * Blocks are sorted inside, but a late record (or an import of history)
 * lands in a later block than records newer than it, so blocks of a bucket
 * overlap in time. A cursor walks one bucket at a time (buckets never
 * overlap) and merges that bucket's blocks with a heap: a block is decoded
 * only once the merge reaches its first time, so memory holds just the
 * blocks that overlap the current time (two or three for the live
 * stream's few minutes of lateness).
 *
 * A cursor takes its segments' block directories when it is created and
 * opens a file when it first reads a block of it. A retention sweep that
 * deletes a segment after that: a file already open keeps its data (the
 * descriptor holds it), one not yet opened makes ql_cursor_next return a
 * clean QL_ENOTFOUND naming the segment - never a torn or silently
 * shorter answer. */
#define _GNU_SOURCE
#include "err.h"
#include "hold.h"
#include "store_int.h"
#include "vfs.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cblock {
	qli_block blk;
	uint32_t *match; /* positions in blk that match the query */
	uint32_t nmatch, mi, matchcap;
	uint32_t seg, bidx; /* write order, for ties */
	uint8_t *ipok;
	uint32_t ipokcap;
	struct cblock *next; /* free list */
} cblock;

typedef struct pend {
	int64_t min_ts;
	uint32_t seg, blk;
} pend;

/* What a cursor keeps of a compact segment (dict.h): decoded dictionary
 * pages (a bucket's worth at most: freed when the cursor leaves the
 * bucket), the query's handle id, or the set of address ids in range. */
typedef struct cseg {
	qli_dpage *hp, *ip;  /* per page; count 0 = not decoded */
	int64_t hid;         /* -2 not looked up, -1 not in the segment */
	uint8_t *ipset;      /* bit per address id, NULL = not built */
	uint64_t mask;       /* classes that may hold the key (index
			      * filters); classes 64 and up always may */
} cseg;

struct ql_cursor {
	ql_store *s;
	ql_query q;
	char handle[QL_HANDLE_MAX + 1];
	uint32_t hash;        /* of handle, for the index */
	uint8_t lo[16], hi[16]; /* the IP range */
	int64_t since, until; /* [since, until) */
	qli_segfile *segs;
	uint8_t **cand;      /* per segment: candidate blocks, NULL = all */
	cseg *cs;            /* per segment: compact segments' state */
	size_t nseg, segpos; /* segpos: first segment of the next bucket */
	pend *pend;
	size_t npend, pendcap, pi;
	cblock **heap;
	size_t nheap, heapcap;
	cblock *freelist, *retire;
	qli_decoder *dec;
	qli_buf buf;
	ql_record rec;
	int done;
};

/* ---- predicate ---- */

static int ip_in(const uint8_t ip[16], const uint8_t net[16], unsigned plen)
{
	unsigned full = plen / 8, rem = plen % 8;

	if (memcmp(ip, net, full))
		return 0;
	if (rem) {
		uint8_t mask = (uint8_t)(0xff << (8 - rem));

		return (ip[full] & mask) == (net[full] & mask);
	}
	return 1;
}

/* The records of a decoded block that are in the window and match: the
 * handle by its table index or dictionary id (hid), an address by its
 * index or id in ipok (a byte per entry, or a bit with bitmap). */
static void match_records(ql_cursor *c, cblock *cb, uint32_t hid,
			  const uint8_t *ipok, int bitmap)
{
	const qli_block *b = &cb->blk;

	for (uint32_t i = 0; i < b->n; i++) {
		uint32_t a = b->ipi[i];
		int ok;

		if (b->ts[i] < c->since || b->ts[i] >= c->until)
			continue;
		switch (c->q.match) {
		case QL_MATCH_HANDLE:
			ok = (c->q.role != QL_ROLE_TARGET && b->req[i] == hid) ||
			     (c->q.role != QL_ROLE_REQUESTER &&
			      b->tgt[i] == hid);
			break;
		case QL_MATCH_IP:
			ok = bitmap ? (ipok[a / 8] >> (a % 8)) & 1 : ipok[a];
			break;
		default:
			ok = 1;
		}
		if (ok)
			cb->match[cb->nmatch++] = i;
	}
}

/* ---- dictionary directories kept across cursors ---- */

#define DCACHE_N 128 /* segments: four months of daily buckets */

typedef struct dcent {
	int64_t bucket;
	uint32_t gen, nblk;
	uint64_t seal_checksum, used;
	qli_dict dh, di;
} dcent;

/* Decoded dictionary pages, direct-mapped by (segment, page): at most
 * PCACHE_N pages of at most 256 keys (~5 KB a handle page). */
#define PCACHE_N 4096

typedef struct pcent {
	int64_t bucket;
	uint32_t gen, k;
	uint64_t seal_checksum;
	int ip;
	qli_dpage pg; /* count 0: empty */
} pcent;

struct qli_dcache {
	dcent e[DCACHE_N];
	size_t n;
	uint64_t clock;
	pcent *pc; /* PCACHE_N, allocated with the first page */
};

/* One lock for every store's cache: held for a copy, never for I/O. */
static pthread_mutex_t dcache_mu = PTHREAD_MUTEX_INITIALIZER;

static int dict_copy(qli_dict *dst, const qli_dict *src)
{
	*dst = *src;
	dst->page = malloc((src->npage ? src->npage : 1) * sizeof(*src->page));
	dst->cls = malloc((src->ncls + 1) * sizeof(*src->cls));
	dst->keys = malloc(src->keys_len ? src->keys_len : 1);
	if (!dst->page || !dst->cls || !dst->keys) {
		qli_dict_free(dst);
		return qli_err(QL_ENOMEM, "out of memory");
	}
	memcpy(dst->page, src->page, src->npage * sizeof(*src->page));
	memcpy(dst->cls, src->cls, (src->ncls + 1) * sizeof(*src->cls));
	memcpy(dst->keys, src->keys, src->keys_len);
	return 0;
}

void qli_dcache_free(struct qli_dcache *c)
{
	for (size_t i = 0; c && i < c->n; i++) {
		qli_dict_free(&c->e[i].dh);
		qli_dict_free(&c->e[i].di);
	}
	for (size_t i = 0; c && c->pc && i < PCACHE_N; i++)
		qli_dpage_free(&c->pc[i].pg);
	if (c)
		free(c->pc);
	free(c);
}

static pcent *pcache_slot(struct qli_dcache *c, const qli_segfile *sf,
			  int ip, uint32_t k)
{
	uint64_t h = (uint64_t)sf->bucket_start * 0x9e3779b97f4a7c15ULL ^
		     ((uint64_t)sf->gen << 40) ^ ((uint64_t)k << 1) ^
		     (uint64_t)ip ^ sf->seal_checksum;

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return &c->pc[h % PCACHE_N];
}

static int pcent_is(const pcent *e, const qli_segfile *sf, int ip,
		    uint32_t k)
{
	return e->pg.count && e->bucket == sf->bucket_start &&
	       e->gen == sf->gen && e->seal_checksum == sf->seal_checksum &&
	       e->ip == ip && e->k == k;
}

/* Copies page k of sf from the cache into *pg: 1 if it was there. */
static int pcache_get(ql_store *s, const qli_segfile *sf, int ip,
		      uint32_t k, qli_dpage *pg)
{
	int hit = 0;

	pthread_mutex_lock(&dcache_mu);
	if (s->dcache && s->dcache->pc) {
		pcent *e = pcache_slot(s->dcache, sf, ip, k);

		if (pcent_is(e, sf, ip, k)) {
			hit = !qli_dpage_copy(pg, &e->pg);
			if (!hit)
				qli_clear_err();
		}
	}
	pthread_mutex_unlock(&dcache_mu);
	return hit;
}

/* The store's cache, made on first use (dcache_mu held); NULL when out
 * of memory: the caches are best effort. */
static struct qli_dcache *dcache_of(ql_store *s)
{
	if (!s->dcache)
		s->dcache = calloc(1, sizeof(*s->dcache));
	return s->dcache;
}

static void pcache_put(ql_store *s, const qli_segfile *sf, int ip,
		       uint32_t k, const qli_dpage *pg)
{
	struct qli_dcache *c;

	pthread_mutex_lock(&dcache_mu);
	c = dcache_of(s);
	if (c && !c->pc)
		c->pc = calloc(PCACHE_N, sizeof(pcent));
	if (c && c->pc) {
		pcent *e = pcache_slot(c, sf, ip, k);

		qli_dpage_free(&e->pg);
		if (qli_dpage_copy(&e->pg, pg)) {
			memset(&e->pg, 0, sizeof(e->pg));
			qli_clear_err();
		} else {
			e->bucket = sf->bucket_start;
			e->gen = sf->gen;
			e->seal_checksum = sf->seal_checksum;
			e->ip = ip;
			e->k = k;
		}
	}
	pthread_mutex_unlock(&dcache_mu);
}

static int dcent_is(const dcent *e, const qli_segfile *sf)
{
	return e->bucket == sf->bucket_start && e->gen == sf->gen &&
	       e->nblk == sf->nblk && e->seal_checksum == sf->seal_checksum;
}

/* Copies sf's dictionaries from the cache: 1 if they were there. */
static int dcache_get(ql_store *s, qli_segfile *sf)
{
	int rc = 0;

	pthread_mutex_lock(&dcache_mu);
	for (size_t i = 0; s->dcache && i < s->dcache->n; i++) {
		dcent *e = &s->dcache->e[i];

		if (!dcent_is(e, sf))
			continue;
		e->used = ++s->dcache->clock;
		rc = !dict_copy(&sf->dh, &e->dh) && !dict_copy(&sf->di, &e->di);
		if (!rc) {
			qli_dict_free(&sf->dh);
			qli_dict_free(&sf->di);
			qli_clear_err();
		}
		break;
	}
	pthread_mutex_unlock(&dcache_mu);
	return rc;
}

/* Keeps a copy of sf's dictionaries (best effort: a full or failed
 * cache only costs the next cursor a read of the seal). */
static void dcache_put(ql_store *s, const qli_segfile *sf)
{
	struct qli_dcache *c;
	dcent *e = NULL;
	int there = 0;

	pthread_mutex_lock(&dcache_mu);
	c = dcache_of(s);
	for (size_t i = 0; c && i < c->n && !there; i++)
		there = dcent_is(&c->e[i], sf); /* another cursor put it */
	if (c && !there) {
		if (c->n < DCACHE_N) {
			e = &c->e[c->n++];
		} else {
			e = &c->e[0];
			for (size_t i = 1; i < c->n; i++)
				if (c->e[i].used < e->used)
					e = &c->e[i];
			qli_dict_free(&e->dh);
			qli_dict_free(&e->di);
		}
	}
	if (e) {
		e->bucket = sf->bucket_start;
		e->gen = sf->gen;
		e->nblk = sf->nblk;
		e->seal_checksum = sf->seal_checksum;
		e->used = ++c->clock;
		if (dict_copy(&e->dh, &sf->dh) || dict_copy(&e->di, &sf->di)) {
			qli_dict_free(&e->dh);
			qli_dict_free(&e->di);
			e->nblk = UINT32_MAX; /* matches nothing */
			e->seal_checksum = 0;
			qli_clear_err();
		}
	}
	pthread_mutex_unlock(&dcache_mu);
}

/* ---- compact segments ---- */

static void cseg_release(cseg *cs, const qli_segfile *sf)
{
	for (uint32_t k = 0; cs->hp && k < sf->dh.npage; k++)
		qli_dpage_free(&cs->hp[k]);
	for (uint32_t k = 0; cs->ip && k < sf->di.npage; k++)
		qli_dpage_free(&cs->ip[k]);
	free(cs->hp);
	free(cs->ip);
	free(cs->ipset);
	cs->hp = cs->ip = NULL;
	cs->ipset = NULL;
	cs->hid = -2;
	cs->mask = ~0ULL;
}

/* Opens a segment file for reading once (lazily). */
static int seg_open(ql_cursor *c, qli_segfile *sf)
{
	if (sf->fd >= 0)
		return 0;
	sf->fd = qli_vfs_cur->openat(c->s->segdir, sf->name, O_RDONLY, 0);
	if (sf->fd < 0 && errno == ENOENT)
		/* deleted by expiry after this cursor started: a clean
		 * error, never a silently shorter answer */
		return qli_err(QL_ENOTFOUND, "segment %s was expired while "
			       "this cursor read; open a new cursor",
			       sf->name);
	if (sf->fd < 0)
		return qli_errno(errno, "open segment", sf->name);
	return 0;
}

/* Page k of a compact segment's handle (ip = 0) or address dictionary,
 * decoded once. */
static int cs_page(ql_cursor *c, size_t seg, int ip, uint32_t k,
		   const qli_dpage **out)
{
	qli_segfile *sf = &c->segs[seg];
	cseg *cs = &c->cs[seg];
	const qli_dict *d = ip ? &sf->di : &sf->dh;
	qli_dpage **arr = ip ? &cs->ip : &cs->hp;
	qli_frame_hdr h;
	int rc;

	if (!*arr && !(*arr = calloc(d->npage ? d->npage : 1,
				     sizeof(**arr))))
		return qli_err(QL_ENOMEM, "out of memory");
	if (!(*arr)[k].count && !pcache_get(c->s, sf, ip, k, &(*arr)[k])) {
		rc = qli_segfile_read_page(sf, ip, k, &c->buf, &h);
		if (!rc)
			rc = qli_dpage_decode(c->dec, &(*arr)[k], &h,
					      c->buf.p + QLI_FRAME_HDR,
					      d->page[k].first);
		if (rc)
			return rc;
		pcache_put(c->s, sf, ip, k, &(*arr)[k]);
	}
	*out = &(*arr)[k];
	return 0;
}

static int cs_ready(ql_cursor *c, size_t seg)
{
	qli_segfile *sf = &c->segs[seg];
	int rc = seg_open(c, sf);

	if (rc || sf->dh.page || sf->di.page || !sf->compact)
		return rc;
	if (dcache_get(c->s, sf))
		return 0;
	rc = qli_segfile_load_dicts(sf);
	if (!rc)
		dcache_put(c->s, sf);
	return rc;
}

/* First page of a dictionary whose first id is >= id. */
static uint32_t page_at(const qli_dict *d, uint32_t id)
{
	uint32_t lo = 0, hi = d->npage;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (d->page[mid].first < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The id of the query's handle in a compact segment: in each frequency
 * class, the one page whose key range may hold it. The classes of rare
 * keys come first: they hold most keys, so a handle that is there is
 * found after the fewest page decodes. */
static int cs_handle_id(ql_cursor *c, size_t seg)
{
	qli_segfile *sf = &c->segs[seg];
	cseg *cs = &c->cs[seg];
	const qli_dict *d = &sf->dh;
	const uint8_t *key = (const uint8_t *)c->handle;
	size_t len = strlen(c->handle);

	if (cs->hid != -2)
		return 0;
	cs->hid = -1;
	for (uint32_t k = d->ncls; k-- > 0;) {
		uint32_t lo = page_at(d, d->cls[k]), hi = page_at(d, d->cls[k + 1]);
		const qli_dpage *pg;
		int rc, at;

		/* last page of [lo, hi) whose first key <= key */
		if ((k < 64 && !((cs->mask >> k) & 1)) || lo >= hi ||
		    qli_dict_cmp_first(d, lo, key, len) > 0)
			continue;
		while (hi - lo > 1) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (qli_dict_cmp_first(d, mid, key, len) <= 0)
				lo = mid;
			else
				hi = mid;
		}
		rc = cs_page(c, seg, 0, lo, &pg);
		if (rc)
			return rc;
		at = qli_dpage_find(pg, key, len);
		if (at >= 0) {
			cs->hid = (int64_t)pg->first + at;
			return 0;
		}
	}
	return 0;
}

/* The address ids of a compact segment inside [lo, hi]. */
static int cs_ip_set(ql_cursor *c, size_t seg)
{
	qli_segfile *sf = &c->segs[seg];
	cseg *cs = &c->cs[seg];
	const qli_dict *d = &sf->di;
	uint32_t p0 = 0;

	if (cs->ipset)
		return 0;
	cs->ipset = calloc(d->n / 8 + 1, 1);
	if (!cs->ipset)
		return qli_err(QL_ENOMEM, "out of memory");
	for (uint32_t k = 0; k < d->ncls; k++) {
		uint32_t lo = p0, hi = p0, p;

		while (hi < d->npage && d->page[hi].first < d->cls[k + 1])
			hi++;
		p0 = hi;
		if (lo == hi || (k < 64 && !((cs->mask >> k) & 1)))
			continue;
		/* from the last page whose first key <= lo (or the class's
		 * first page) while a page's first key <= hi */
		p = lo;
		while (p + 1 < hi &&
		       qli_dict_cmp_first(d, p + 1, c->lo, 16) <= 0)
			p++;
		for (; p < hi && qli_dict_cmp_first(d, p, c->hi, 16) <= 0;
		     p++) {
			const qli_dpage *pg;
			int rc = cs_page(c, seg, 1, p, &pg);

			if (rc) {
				free(cs->ipset);
				cs->ipset = NULL;
				return rc;
			}
			for (uint32_t i = 0; i < pg->count; i++)
				if (memcmp(pg->ip[i], c->lo, 16) >= 0 &&
				    memcmp(pg->ip[i], c->hi, 16) <= 0) {
					uint32_t id = pg->first + i;

					cs->ipset[id / 8] |=
						(uint8_t)(1u << (id % 8));
				}
		}
	}
	return 0;
}

/* Fills cb->match with the positions of matching records of an id
 * block: integer compares, no string is touched. */
static int compute_matches_ids(ql_cursor *c, cblock *cb)
{
	cseg *cs = &c->cs[cb->seg];
	uint32_t hid = 0;
	int rc;

	if (c->q.match == QL_MATCH_HANDLE) {
		rc = cs_handle_id(c, cb->seg);
		if (rc)
			return rc;
		if (cs->hid < 0)
			return 0;
		hid = (uint32_t)cs->hid;
	} else if (c->q.match == QL_MATCH_IP) {
		rc = cs_ip_set(c, cb->seg);
		if (rc)
			return rc;
	}
	match_records(c, cb, hid, cs->ipset, 1);
	return 0;
}

/* Fills cb->match with the positions of matching records. */
static int compute_matches(ql_cursor *c, cblock *cb)
{
	qli_block *b = &cb->blk;
	uint32_t sid = UINT32_MAX;

	cb->nmatch = cb->mi = 0;
	if (b->n > cb->matchcap) {
		uint32_t *m = realloc(cb->match, b->n * sizeof(*m));

		if (!m)
			return qli_err(QL_ENOMEM, "out of memory");
		cb->match = m;
		cb->matchcap = b->n;
	}
	if (b->ids)
		return compute_matches_ids(c, cb);
	if (c->q.match == QL_MATCH_HANDLE) {
		for (uint32_t i = 0; i < b->nstr; i++)
			if (!strcmp(b->str[i], c->handle)) {
				sid = i;
				break;
			}
		if (sid == UINT32_MAX)
			return 0;
	} else if (c->q.match == QL_MATCH_IP) {
		if (b->nip > cb->ipokcap) {
			uint8_t *m = realloc(cb->ipok, b->nip);

			if (!m)
				return qli_err(QL_ENOMEM, "out of memory");
			cb->ipok = m;
			cb->ipokcap = b->nip;
		}
		for (uint32_t i = 0; i < b->nip; i++)
			cb->ipok[i] = (uint8_t)ip_in(b->ips[i], c->q.ip,
						     c->q.prefix_len);
	}
	match_records(c, cb, sid, cb->ipok, 0);
	return 0;
}

/* ---- heap of blocks by (time of current match, write order) ---- */

static int cb_less(const cblock *a, const cblock *b)
{
	int64_t ta = a->blk.ts[a->match[a->mi]];
	int64_t tb = b->blk.ts[b->match[b->mi]];

	if (ta != tb)
		return ta < tb;
	if (a->seg != b->seg)
		return a->seg < b->seg;
	return a->bidx < b->bidx;
}

static void heap_down(ql_cursor *c, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		cblock *t;

		if (l < c->nheap && cb_less(c->heap[l], c->heap[m]))
			m = l;
		if (r < c->nheap && cb_less(c->heap[r], c->heap[m]))
			m = r;
		if (m == i)
			return;
		t = c->heap[i];
		c->heap[i] = c->heap[m];
		c->heap[m] = t;
		i = m;
	}
}

static int heap_push(ql_cursor *c, cblock *cb)
{
	size_t i;

	if (c->nheap == c->heapcap) {
		size_t cap = c->heapcap ? 2 * c->heapcap : 8;
		cblock **h = realloc(c->heap, cap * sizeof(*h));

		if (!h)
			return qli_err(QL_ENOMEM, "out of memory");
		c->heap = h;
		c->heapcap = cap;
	}
	i = c->nheap++;
	c->heap[i] = cb;
	while (i > 0 && cb_less(c->heap[i], c->heap[(i - 1) / 2])) {
		cblock *t = c->heap[i];

		c->heap[i] = c->heap[(i - 1) / 2];
		c->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
	return 0;
}

static void cb_recycle(ql_cursor *c, cblock *cb)
{
	cb->next = c->freelist;
	c->freelist = cb;
}

static void cb_destroy(cblock *cb)
{
	qli_block_free(&cb->blk);
	free(cb->match);
	free(cb->ipok);
	free(cb);
}

/* ---- opening ---- */

static int overlaps(const ql_cursor *c, int64_t lo, int64_t hi_incl)
{
	return hi_incl >= c->since && lo < c->until;
}

/* Candidate blocks of one segment from the index. sealed is what the
 * index knows: a segment sealed on disk after the index's last commit is
 * still looked up through its block summaries (and blocks without one are
 * candidates), never through a sealed index that does not exist yet. */
static int index_candidates(ql_cursor *c, qli_ixread *rt, size_t seg,
			    int ix_sealed, uint8_t **out)
{
	qli_segfile *sf = &c->segs[seg];
	uint8_t *bits = calloc(sf->nblk / 8 + 1, 1);
	int file_sealed = sf->sealed, rc;
	int roles = c->q.role == QL_ROLE_REQUESTER ? QLI_LOOK_REQ
		    : c->q.role == QL_ROLE_TARGET ? QLI_LOOK_TGT
		    : QLI_LOOK_REQ | QLI_LOOK_TGT;

	if (!bits)
		return qli_err(QL_ENOMEM, "out of memory");
	if (sf->compact && sf->ix_byid) {
		/* postings by dictionary id: the query's ids first */
		cseg *cs = &c->cs[seg];
		int ip = c->q.match != QL_MATCH_HANDLE;
		uint32_t ncls = 0;

		/* exact keys: the classes the filters allow; none, and the
		 * segment's file is not even opened */
		rc = 0;
		if (!ip || !memcmp(c->lo, c->hi, 16)) {
			rc = qli_index_filter(rt, sf, ip,
					      ip ? (const void *)c->lo
						 : (const void *)c->handle,
					      ip ? 16 : strlen(c->handle),
					      &cs->mask, &ncls);
			if (rc == QL_ENOTFOUND) {
				qli_clear_err();
				cs->mask = ~0ULL;
				ncls = UINT32_MAX;
				rc = 0;
			}
		}
		if (!rc && !cs->mask && ncls) {
			*out = bits; /* no candidate */
			if (!ip)
				cs->hid = -1;
			return 0;
		}
		if (!rc)
			rc = cs_ready(c, seg);
		if (!rc && ncls != UINT32_MAX && ncls &&
		    ncls != (ip ? sf->di.ncls : sf->dh.ncls))
			cs->mask = ~0ULL; /* not this file's classes */
		if (!rc && !ip) {
			rc = cs_handle_id(c, seg);
			if (!rc && cs->hid >= 0)
				rc = qli_index_lookup_hid(rt, sf,
							  (uint32_t)cs->hid,
							  roles, bits);
		} else if (!rc) {
			rc = cs_ip_set(c, seg);
			if (!rc)
				rc = qli_index_lookup_aids(rt, sf, cs->ipset,
							   sf->di.n, bits);
		}
	} else {
		sf->sealed = ix_sealed;
		if (c->q.match == QL_MATCH_HANDLE)
			rc = qli_index_lookup_handle(rt, sf, c->hash, roles,
						     bits);
		else
			rc = qli_index_lookup_ip(rt, sf, c->lo, c->hi, bits);
		sf->sealed = file_sealed;
	}
	if (rc) {
		free(bits);
		return rc;
	}
	*out = bits;
	return 0;
}

/* Sets up one segment: its block directory from the index when the index
 * covers the file, else from the file itself, scanning all of it.
 *
 * A compact file (.qlc) never changes: it is opened when a block of it is
 * first read. A .qls file may be replaced by its compact form at any time
 * (compact.c), so it is opened now: the descriptor keeps the planned
 * bytes readable whatever happens to the name. If the name is already
 * gone, the .qlc has taken its place. */
static int plan_segment(ql_cursor *c, qli_ixread *rt, const char *name,
			int64_t start, uint32_t gen)
{
	qli_segfile *sf = &c->segs[c->nseg];
	uint8_t *bits = NULL;
	int rc = QL_ENOTFOUND, ix_sealed = 0, compact = 0, fd = -1;
	char cname[QLI_SEG_NAME_MAX];
	struct stat st;

	memset(&st, 0, sizeof(st));
	c->cs[c->nseg].hid = -2;
	c->cs[c->nseg].mask = ~0ULL;
	qli_seg_name_parse2(name, &start, &gen, &compact);
	if (!compact) {
		fd = qli_vfs_cur->openat(c->s->segdir, name, O_RDONLY, 0);
		if (fd < 0 && errno != ENOENT)
			return qli_errno(errno, "open segment", name);
		if (fd < 0) {
			qli_seg_cname(cname, start, gen);
			name = cname;
			compact = 1;
		} else if (qli_vfs_cur->fstat(fd, &st) < 0) {
			rc = qli_errno(errno, "stat", name);
			qli_vfs_cur->close(fd);
			return rc;
		}
	}
	if (rt)
		rc = qli_index_get_dir(rt, start, gen,
				       c->s->opt.bucket_width_us, sf);
	if (!rc && sf->compact != compact) {
		/* the index lags a compaction: the file decides */
		qli_segfile_close(sf);
		rc = QL_ENOTFOUND;
	}
	if (!rc) {
		snprintf(sf->name, sizeof(sf->name), "%s", name);
		sf->fd = fd;
		fd = -1;
		ix_sealed = sf->sealed;
		if (!ix_sealed && (uint64_t)st.st_size != sf->size) {
			/* the index lags the file: take the file's blocks;
			 * the lookups mark blocks they have no summary for */
			qli_segfile_close(sf);
			rc = qli_segfile_load(sf, c->s->segdir, name, 0);
		}
		if (!rc && c->q.match != QL_MATCH_ALL)
			rc = index_candidates(c, rt, c->nseg, ix_sealed,
					      &bits);
	} else if (rc == QL_ENOTFOUND) {
		qli_clear_err();
		rc = qli_segfile_load(sf, c->s->segdir, name, 0);
		if (rc == QL_ENOTFOUND && !compact) {
			/* compacted between our open and this load */
			qli_clear_err();
			qli_seg_cname(cname, start, gen);
			rc = qli_segfile_load(sf, c->s->segdir, cname, 0);
		}
	}
	if (fd >= 0)
		qli_vfs_cur->close(fd);
	if (rc) {
		int torn = sf->torn_create;

		qli_segfile_close(sf);
		/* expired between the listing and now; or a file whose
		 * creation a crash or a failed write tore (shorter than a
		 * header: it holds no record) */
		if (rc == QL_ENOTFOUND || torn) {
			qli_clear_err();
			return 0;
		}
		return rc;
	}
	c->cand[c->nseg++] = bits;
	return 0;
}

static int load_segments(ql_cursor *c)
{
	int64_t w = c->s->opt.bucket_width_us, now;
	qli_ixread *rt = NULL;
	qli_holdset holds;
	qli_seglist l;
	int rc;

	rc = qli_seglist_read(c->s->segdir, &l);
	if (rc)
		return rc;
	c->segs = calloc(l.n ? l.n : 1, sizeof(*c->segs));
	c->cand = calloc(l.n ? l.n : 1, sizeof(*c->cand));
	c->cs = calloc(l.n ? l.n : 1, sizeof(*c->cs));
	if (!c->segs || !c->cand || !c->cs) {
		qli_seglist_free(&l);
		return qli_err(QL_ENOMEM, "out of memory");
	}
	/* reads never return a segment that is past due and unheld, even
	 * before the sweep deletes it */
	rc = qli_visible_begin(c->s, &holds);
	if (rc) {
		qli_seglist_free(&l);
		return rc;
	}
	now = qli_now(c->s);
	if (c->s->ix && qli_index_begin(c->s->ix, &rt))
		rt = NULL; /* answer without the index */
	for (size_t i = 0; i < l.n && !rc; i++) {
		if (!overlaps(c, l.start[i], l.start[i] + w - 1) ||
		    !qli_visible(c->s, &holds, l.start[i], now))
			continue;
		rc = plan_segment(c, rt, l.names[i], l.start[i], l.gen[i]);
	}
	qli_index_end(rt);
	qli_holds_free(&holds);
	qli_seglist_free(&l);
	return rc;
}

int ql_cursor_open(ql_cursor **out, ql_store *s, const ql_query *q)
{
	ql_cursor *c;
	int rc;

	if (!out)
		return qli_err(QL_EINVAL, "ql_cursor_open: out is NULL");
	*out = NULL;
	if (!s || !q)
		return qli_err(QL_EINVAL, "ql_cursor_open: store or query "
			       "is NULL");
	if (q->version != QL_QUERY_VERSION)
		return qli_err(QL_EINVAL, "query version %u (expected %u): "
			       "declare with QL_QUERY_INIT", q->version,
			       QL_QUERY_VERSION);
	if (q->match < QL_MATCH_ALL || q->match > QL_MATCH_IP)
		return qli_err(QL_EINVAL, "query match %d: must be "
			       "QL_MATCH_ALL, _HANDLE or _IP", q->match);
	if (q->match == QL_MATCH_HANDLE &&
	    (q->role < QL_ROLE_ANY || q->role > QL_ROLE_TARGET))
		return qli_err(QL_EINVAL, "query role %d: must be "
			       "QL_ROLE_ANY, _REQUESTER or _TARGET", q->role);
	if (q->match == QL_MATCH_IP && q->prefix_len > 128)
		return qli_err(QL_EINVAL, "query prefix_len %u: must be 0 to "
			       "128", q->prefix_len);
	c = calloc(1, sizeof(*c));
	if (!c)
		return qli_err(QL_ENOMEM, "out of memory");
	c->s = s;
	c->q = *q;
	c->q.handle = NULL;
	c->since = q->since ? q->since : INT64_MIN;
	c->until = q->until ? q->until : INT64_MAX;
	if (q->match == QL_MATCH_HANDLE) {
		rc = ql_handle_parse(c->handle, sizeof(c->handle), q->handle,
				     "handle");
		if (rc)
			goto fail;
		c->hash = qli_handle_hash(c->handle, strlen(c->handle));
	} else if (q->match == QL_MATCH_IP) {
		for (unsigned i = 0; i < 16; i++) {
			unsigned bits = q->prefix_len > 8 * i ?
						q->prefix_len - 8 * i : 0;
			uint8_t m = bits >= 8 ? 0xff
					      : (uint8_t)(0xff << (8 - bits));

			c->lo[i] = q->ip[i] & m;
			c->hi[i] = (uint8_t)(q->ip[i] | (uint8_t)~m);
		}
	}
	c->dec = qli_decoder_new();
	if (!c->dec) {
		rc = qli_err(QL_ENOMEM, "out of memory");
		goto fail;
	}
	if (c->since < c->until) {
		rc = load_segments(c);
		if (rc)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	ql_cursor_close(c);
	return rc;
}

void ql_cursor_close(ql_cursor *c)
{
	cblock *cb, *next;

	if (!c)
		return;
	for (size_t i = 0; i < c->nseg; i++) {
		cseg_release(&c->cs[i], &c->segs[i]);
		qli_segfile_close(&c->segs[i]);
		free(c->cand[i]);
	}
	free(c->segs);
	free(c->cand);
	free(c->cs);
	for (size_t i = 0; i < c->nheap; i++)
		cb_destroy(c->heap[i]);
	for (cb = c->freelist; cb; cb = next) {
		next = cb->next;
		cb_destroy(cb);
	}
	if (c->retire)
		cb_destroy(c->retire);
	free(c->heap);
	free(c->pend);
	qli_decoder_free(c->dec);
	qli_buf_free(&c->buf);
	free(c);
}

/* ---- stepping ---- */

static int pend_cmp(const void *a, const void *b)
{
	const pend *x = a, *y = b;

	if (x->min_ts != y->min_ts)
		return x->min_ts < y->min_ts ? -1 : 1;
	if (x->seg != y->seg)
		return x->seg < y->seg ? -1 : 1;
	return x->blk < y->blk ? -1 : (x->blk > y->blk);
}

/* Collects the blocks of the next bucket that overlap the window.
 * Returns 0, or 1 when there is no bucket left. */
static int next_bucket(ql_cursor *c)
{
	size_t lo = c->segpos, hi = lo;

	/* the previous bucket's dictionary pages are no longer needed (the
	 * records handed out point into them until this step: none is
	 * pending now) */
	for (size_t i = 0; i < lo; i++)
		if (c->cs[i].hp || c->cs[i].ip || c->cs[i].ipset)
			cseg_release(&c->cs[i], &c->segs[i]);
	if (lo >= c->nseg)
		return 1;
	while (hi < c->nseg && c->segs[hi].bucket_start ==
				       c->segs[lo].bucket_start)
		hi++;
	c->npend = c->pi = 0;
	for (size_t i = lo; i < hi; i++) {
		qli_segfile *sf = &c->segs[i];

		const uint8_t *cand = c->cand[i];

		for (uint32_t j = 0; j < sf->nblk; j++) {
			if (!overlaps(c, sf->blk[j].min_ts, sf->blk[j].max_ts))
				continue;
			if (cand && !(cand[j / 8] & (1u << (j % 8))))
				continue;
			if (c->npend == c->pendcap) {
				size_t cap = c->pendcap ? 2 * c->pendcap : 64;
				pend *p = realloc(c->pend, cap * sizeof(*p));

				if (!p) {
					c->npend = 0; /* retried whole */
					return qli_err(QL_ENOMEM,
						       "out of memory");
				}
				c->pend = p;
				c->pendcap = cap;
			}
			c->pend[c->npend++] = (pend){ sf->blk[j].min_ts,
						      (uint32_t)i, j };
		}
	}
	if (c->npend)
		qsort(c->pend, c->npend, sizeof(*c->pend), pend_cmp);
	c->segpos = hi;
	return 0;
}

static int load_block(ql_cursor *c, const pend *p)
{
	qli_segfile *sf = &c->segs[p->seg];
	qli_frame_hdr h;
	cblock *cb;
	int rc;

	/* opened on first use: most segments hold no match */
	rc = sf->compact ? cs_ready(c, p->seg) : seg_open(c, sf);
	if (rc)
		return rc;

	rc = qli_segfile_read_block(sf, p->blk, &c->buf, &h);
	if (rc == QL_ECORRUPT && !sf->sealed && p->blk == sf->nblk - 1) {
		/* The last block of a segment still being written may be
		 * in flight: the writer's pwrite is not atomic for readers.
		 * It is not acknowledged data; skip it. */
		qli_clear_err();
		return 0;
	}
	if (rc)
		return rc;
	cb = c->freelist;
	if (cb)
		c->freelist = cb->next;
	else if (!(cb = calloc(1, sizeof(*cb))))
		return qli_err(QL_ENOMEM, "out of memory");
	rc = sf->compact ? qli_idblock_decode(c->dec, &cb->blk, &h,
					      c->buf.p + QLI_FRAME_HDR,
					      sf->dh.n, sf->di.n)
			 : qli_block_decode(c->dec, &cb->blk, &h,
					    c->buf.p + QLI_FRAME_HDR);
	if (rc) {
		qli_err_prefix("segment %s block %u: ", sf->name, p->blk);
		cb_recycle(c, cb);
		return rc;
	}
	cb->seg = p->seg;
	cb->bidx = p->blk;
	rc = compute_matches(c, cb);
	if (!rc && cb->nmatch && !(rc = heap_push(c, cb)))
		return 0;
	cb_recycle(c, cb); /* no match, or failed: not in the heap */
	return rc;
}

int ql_cursor_next(ql_cursor *c, const ql_record **rec)
{
	cblock *top;
	uint32_t i;
	int rc;

	if (!c || !rec)
		return qli_err(QL_EINVAL, "ql_cursor_next: NULL argument");
	*rec = NULL;
	if (c->retire) {
		cb_recycle(c, c->retire);
		c->retire = NULL;
	}
	if (c->done)
		return QL_DONE;
	for (;;) {
		if (c->nheap == 0 && c->pi == c->npend) {
			rc = next_bucket(c);
			if (rc == 1) {
				c->done = 1;
				return QL_DONE;
			}
			if (rc)
				return rc;
			continue;
		}
		/* Decode every block that may hold a record no later than
		 * the earliest one in hand. */
		while (c->pi < c->npend &&
		       (c->nheap == 0 ||
			c->pend[c->pi].min_ts <=
				c->heap[0]->blk.ts[c->heap[0]->match
							   [c->heap[0]->mi]])) {
			/* advance only once loaded: a step that failed
			 * (QL_ENOMEM) is retried, not skipped */
			rc = load_block(c, &c->pend[c->pi]);
			if (rc)
				return rc;
			c->pi++;
		}
		if (c->nheap)
			break;
	}
	top = c->heap[0];
	i = top->match[top->mi];
	if (top->blk.ids) {
		/* resolve the ids (pages stay until the bucket is done) */
		qli_segfile *sf = &c->segs[top->seg];
		const qli_dpage *pr, *pt, *pi;
		uint32_t r = top->blk.req[i], t = top->blk.tgt[i],
			 a = top->blk.ipi[i];

		rc = cs_page(c, top->seg, 0, qli_dict_page_of(&sf->dh, r), &pr);
		if (!rc)
			rc = cs_page(c, top->seg, 0,
				     qli_dict_page_of(&sf->dh, t), &pt);
		if (!rc)
			rc = cs_page(c, top->seg, 1,
				     qli_dict_page_of(&sf->di, a), &pi);
		if (rc)
			return rc; /* retried: mi has not moved */
		c->rec.requester = pr->key[r - pr->first];
		c->rec.target = pt->key[t - pt->first];
		memcpy(c->rec.ip, pi->ip[a - pi->first], 16);
	} else {
		c->rec.requester = top->blk.str[top->blk.req[i]];
		c->rec.target = top->blk.str[top->blk.tgt[i]];
		memcpy(c->rec.ip, top->blk.ips[top->blk.ipi[i]], 16);
	}
	top->mi++;
	c->rec.ts = top->blk.ts[i];
	c->rec.service = top->blk.svc[i];
	c->rec.result = top->blk.res[i];
	if (top->mi == top->nmatch) {
		/* keep the block alive until the next step: rec points in */
		c->heap[0] = c->heap[--c->nheap];
		c->retire = top;
	}
	if (c->nheap)
		heap_down(c, 0);
	*rec = &c->rec;
	return QL_ROW;
}

/* ---- statistics and verification ---- */

int ql_segments(ql_store *s, int verify,
		int (*fn)(const ql_segment_info *info, void *ctx), void *ctx)
{
	qli_decoder *dec = NULL;
	qli_block blk = { 0 };
	qli_seglist l;
	int rc, damaged = 0;

	if (!s || !fn)
		return qli_err(QL_EINVAL, "ql_segments: NULL argument");
	rc = qli_seglist_read(s->segdir, &l);
	if (rc)
		return rc;
	if (verify && !(dec = qli_decoder_new())) {
		qli_seglist_free(&l);
		return qli_err(QL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < l.n && !rc; i++) {
		ql_segment_info info = { 0 };
		qli_segfile sf;
		int st;

		snprintf(info.name, sizeof(info.name), "%s/%s", QLI_SEG_DIR,
			 l.names[i]);
		st = qli_segfile_load(&sf, s->segdir, l.names[i],
				      verify ? QLI_LOAD_VERIFY : 0);
		if (st == QL_ENOTFOUND || (st && sf.torn_create))
			continue; /* expired meanwhile; torn creation */
		info.bucket_start = l.start[i];
		info.bucket_end = l.start[i] + s->opt.bucket_width_us;
		info.generation = l.gen[i];
		if (!st) {
			info.sealed = sf.sealed;
			info.blocks = sf.nblk;
			info.records = sf.nrec;
			info.raw_bytes = sf.raw_bytes;
			info.disk_bytes = sf.file_size;
			info.min_ts = sf.min_ts;
			info.max_ts = sf.max_ts;
			if (s->ix) {
				uint32_t nb;
				int ok, irc;

				irc = qli_index_check(s->ix, &sf, &nb, &ok);
				if (!irc)
					info.indexed = sf.sealed
							       ? ok
							       : nb == sf.nblk;
				else if (irc == QL_ENOMEM)
					st = irc; /* not "unindexed" */
			}
			if (verify && !st) {
				st = qli_segfile_verify(&sf, dec, &blk,
							&info.bad_offset);
				if (!st && sf.file_size > sf.size) {
					/* a torn tail: blocks after the valid
					 * prefix that fail their checksum */
					info.bad_offset = sf.size;
					st = qli_err(QL_ECORRUPT,
						     "segment %s: %llu bytes "
						     "after offset %llu are not "
						     "valid blocks (torn tail)",
						     l.names[i],
						     (unsigned long long)(
							     sf.file_size -
							     sf.size),
						     (unsigned long long)
							     sf.size);
				}
			}
			qli_segfile_close(&sf);
		}
		if (st == QL_ENOMEM) {
			/* our failure, not the segment's damage */
			rc = st;
			break;
		}
		info.status = st;
		if (st)
			damaged = 1;
		rc = fn(&info, ctx);
	}
	qli_block_free(&blk);
	qli_decoder_free(dec);
	qli_seglist_free(&l);
	if (!rc && damaged)
		rc = QL_ECORRUPT;
	return rc;
}

static int stat_one(const ql_segment_info *info, void *ctx)
{
	ql_stats *st = ctx;

	st->segments++;
	st->sealed_segments += info->sealed ? 1 : 0;
	st->blocks += info->blocks;
	st->raw_bytes += info->raw_bytes;
	st->disk_bytes += info->disk_bytes;
	if (info->records) {
		if (!st->records || info->min_ts < st->min_ts)
			st->min_ts = info->min_ts;
		if (!st->records || info->max_ts > st->max_ts)
			st->max_ts = info->max_ts;
	}
	st->records += info->records;
	return 0;
}

int ql_stat(ql_store *s, ql_stats *out)
{
	int rc;

	if (!s || !out)
		return qli_err(QL_EINVAL, "ql_stat: NULL argument");
	memset(out, 0, sizeof(*out));
	rc = ql_segments(s, 0, stat_one, out);
	out->bucket_width_us = s->opt.bucket_width_us;
	out->retention_us = s->opt.retention_us;
	out->recovered_segments = s->recovered_segments;
	out->recovered_bytes = s->recovered_bytes;
	out->reindexed_segments = s->reindexed_segments;
	out->index_error = s->ix_err;
	return rc;
}
