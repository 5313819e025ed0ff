/* index.c - the LMDB index (see index.h for the key layout and why). */
#define _GNU_SOURCE
#include "index.h"

#include "err.h"
#include "vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define IX_DIR "index"
#define IX_MAPSIZE ((size_t)1 << 36) /* 64 GiB of address space, sparse */
#define CHUNK_KEYS 256
/* A chunk stays under half a 4 KiB page: LMDB moves larger values to
 * overflow pages of their own, wasting most of a page each. */
#define CHUNK_BYTES 1800
#define SEGKEY 12
/* An id-keyed chunk fills one overflow page: 4096 less its header. */
#define IDCHUNK_BYTES 4080
/* Class filters: bits per key and probes (a false positive costs one
 * dictionary page decode; 8 and 5 make it about 2%). */
#define FILTER_BITS 8
#define FILTER_PROBES 5
#define FILTER_SEED 0x716c6f6766ULL
#define DIR_FIXED 24
#define BLKENT 48

/* LMDB must not be opened twice in one process (closing the second
 * handle's lock file would drop the first one's POSIX locks), so every
 * ql_store in a process shares one environment per index directory. */
typedef struct envreg {
	struct envreg *next;
	dev_t dev;
	ino_t ino;
	MDB_env *env;
	MDB_dbi dbi;
	int refs;
} envreg;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static envreg *reg_head;

struct qli_index {
	envreg *reg;
	MDB_txn *wtxn;
	int writable;
};

struct qli_ixread {
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
};

typedef struct pair32 {
	uint32_t key, blk;
} pair32;

typedef struct pairip {
	uint8_t key[16];
	uint32_t blk;
} pairip;

/* Keys of a segment with their blocks. Of a .qls file: handle hashes
 * in r and t, addresses in ip. Of a compact file (by_id): dictionary ids
 * in r, t and a (addresses), nh and na ids in all; seen[] remembers the
 * last block (+1) an id was added for, to add each (id, block) once. */
struct qli_segacc {
	pair32 *r, *t, *a;
	pairip *ip;
	size_t nr, nt, na, nip, capr, capt, capa, capip;
	uint32_t last_blk; /* blocks come in order; if not, unordered */
	int unordered;
	int by_id;
	uint32_t nh, nai;
	uint32_t *seen[3];
	/* by_id: the key hash of every handle [0] and address [1] id, for
	 * the class filters; nkh counts the ids given */
	uint64_t *kh[2];
	uint32_t nkh[2];
};

static int mdb_fail(int mrc, const char *what)
{
	int rc;

	switch (mrc) {
	case MDB_CORRUPTED:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_PAGE_NOTFOUND:
		rc = QL_ECORRUPT;
		break;
	case MDB_MAP_FULL:
	case ENOSPC:
		rc = QL_ENOSPC;
		break;
	case ENOMEM:
		rc = QL_ENOMEM;
		break;
	default:
		rc = QL_EIO;
	}
	return qli_err(rc, "index: %s: %s", what, mdb_strerror(mrc));
}

uint32_t qli_handle_hash(const char *h, size_t len)
{
	return (uint32_t)qli_hash64(h, len, 0x716c6f67u);
}

static void segkey(uint8_t out[SEGKEY], int64_t bucket, uint32_t gen)
{
	uint64_t v = (uint64_t)bucket ^ (1ULL << 63);

	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(v >> (56 - 8 * i));
	out[8] = (uint8_t)(gen >> 24);
	out[9] = (uint8_t)(gen >> 16);
	out[10] = (uint8_t)(gen >> 8);
	out[11] = (uint8_t)gen;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* ---- environment ---- */

static int env_open(envreg *r, const char *path, unsigned file_mode)
{
	MDB_txn *txn = NULL;
	int mrc;

	mrc = mdb_env_create(&r->env);
	if (!mrc)
		mrc = mdb_env_set_mapsize(r->env, IX_MAPSIZE);
	if (!mrc)
		mrc = mdb_env_set_maxreaders(r->env, 1022);
	/* NOTLS: a thread may hold several cursors; NOMETASYNC: the index
	 * is derived and checked against the segments on open, so a crash
	 * that undoes its last commit costs a re-index, never data. */
	if (!mrc)
		mrc = mdb_env_open(r->env, path, MDB_NOTLS | MDB_NOMETASYNC,
				   file_mode);
	if (mrc == EACCES || mrc == EROFS)
		mrc = mdb_env_open(r->env, path, MDB_NOTLS | MDB_RDONLY,
				   file_mode);
	if (!mrc)
		mrc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn);
	if (!mrc) {
		mrc = mdb_dbi_open(txn, NULL, 0, &r->dbi);
		mdb_txn_abort(txn);
	}
	if (mrc) {
		mdb_env_close(r->env);
		r->env = NULL;
		return mdb_fail(mrc, path);
	}
	return 0;
}

int qli_index_open(qli_index **out, int dirfd, const char *store_path,
		   int writable, unsigned dir_mode, unsigned file_mode)
{
	char path[4096];
	struct stat st;
	qli_index *ix;
	envreg *r;
	int fd, rc = 0;

	*out = NULL;
	if (writable && qli_vfs_cur->mkdirat(dirfd, IX_DIR, dir_mode) &&
	    errno != EEXIST)
		return qli_errno(errno, "create", IX_DIR);
	fd = qli_vfs_cur->openat(dirfd, IX_DIR, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0) {
		if (errno == ENOENT && !writable)
			return 0; /* no index yet: readers scan */
		if (errno == ELOOP || errno == ENOTDIR)
			return qli_err(QL_EUNSAFE, "%s/%s is not a directory "
				       "(symlink?): refused", store_path,
				       IX_DIR);
		return qli_errno(errno, "open", IX_DIR);
	}
	if (qli_vfs_cur->fstat(fd, &st) < 0) {
		rc = qli_errno(errno, "stat", IX_DIR);
		qli_vfs_cur->close(fd);
		return rc;
	}
	if (!writable && qli_vfs_cur->fstatat(fd, "data.mdb", &st) < 0) {
		qli_vfs_cur->close(fd);
		return 0;
	}
	qli_vfs_cur->fstat(fd, &st);
	qli_vfs_cur->close(fd);
	snprintf(path, sizeof(path), "%s/%s", store_path, IX_DIR);

	ix = calloc(1, sizeof(*ix));
	if (!ix)
		return qli_err(QL_ENOMEM, "out of memory");
	pthread_mutex_lock(&reg_mu);
	for (r = reg_head; r; r = r->next)
		if (r->dev == st.st_dev && r->ino == st.st_ino)
			break;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			rc = qli_err(QL_ENOMEM, "out of memory");
		else if ((rc = env_open(r, path, file_mode))) {
			free(r);
			r = NULL;
		} else {
			r->dev = st.st_dev;
			r->ino = st.st_ino;
			r->next = reg_head;
			reg_head = r;
		}
	}
	if (r)
		r->refs++;
	pthread_mutex_unlock(&reg_mu);
	if (rc) {
		free(ix);
		return rc;
	}
	ix->reg = r;
	ix->writable = writable;
	*out = ix;
	return 0;
}

void qli_index_close(qli_index *ix)
{
	envreg **pp;

	if (!ix)
		return;
	qli_index_abort(ix);
	pthread_mutex_lock(&reg_mu);
	if (--ix->reg->refs == 0) {
		for (pp = &reg_head; *pp; pp = &(*pp)->next)
			if (*pp == ix->reg) {
				*pp = ix->reg->next;
				break;
			}
		mdb_env_close(ix->reg->env);
		free(ix->reg);
	}
	pthread_mutex_unlock(&reg_mu);
	free(ix);
}

int qli_index_destroy(int dirfd)
{
	int fd = qli_vfs_cur->openat(dirfd, IX_DIR, O_RDONLY | O_DIRECTORY, 0);

	if (fd < 0)
		return errno == ENOENT ? 0 : qli_errno(errno, "open", IX_DIR);
	qli_vfs_cur->unlinkat(fd, "data.mdb", 0);
	qli_vfs_cur->unlinkat(fd, "lock.mdb", 0);
	qli_vfs_cur->close(fd);
	return 0;
}

/* ---- summaries ---- */

/* Byte p (0 = least significant) of the key of record r: a native
 * uint32 (mem_key 0) or a byte string of 'passes' bytes in memcmp order. */
static inline unsigned key_byte(const uint8_t *r, unsigned p, int mem_key,
				unsigned passes)
{
	uint32_t k;

	if (mem_key)
		return r[passes - 1 - p];
	memcpy(&k, r, 4);
	return (k >> (8 * p)) & 0xff;
}

/* Stable LSD radix sort, replacing qsort on the writer's hot path (a
 * comparison callback per step was half of the writer thread's time).
 * Records of size sz start with their key; tmp holds n records. A pass
 * whose byte is the same in every key is skipped. The result is in a. */
static void radix_sort_at(void *a, void *tmp, size_t n, size_t sz,
			  unsigned passes, int mem_key, size_t koff)
{
	uint8_t *src = a, *dst = tmp, *t;

	if (n < 2)
		return;
	for (unsigned p = 0; p < passes; p++) {
		size_t cnt[256] = { 0 }, pos = 0;
		int trivial = 0;

		for (size_t i = 0; i < n; i++)
			cnt[key_byte(src + i * sz + koff, p, mem_key,
				     passes)]++;
		for (unsigned b = 0; b < 256; b++) {
			size_t c = cnt[b];

			if (c == n)
				trivial = 1; /* every key has this byte */
			cnt[b] = pos;
			pos += c;
		}
		if (trivial)
			continue;
		for (size_t i = 0; i < n; i++) {
			const uint8_t *r = src + i * sz;

			memcpy(dst + cnt[key_byte(r + koff, p, mem_key,
						  passes)]++ *
					     sz,
			       r, sz);
		}
		t = src;
		src = dst;
		dst = t;
	}
	if (src != (uint8_t *)a)
		memcpy(a, src, n * sz);
}

static void radix_sort(void *a, void *tmp, size_t n, size_t sz,
		       unsigned passes, int mem_key)
{
	radix_sort_at(a, tmp, n, sz, passes, mem_key, 0);
}

/* Records that start with a 16-byte address, in memcmp order. Split
 * first (stably) into those below the IPv4-mapped prefix ::ffff:0:0/96,
 * in it, and above it; the mapped ones (most, in practice) then need 4
 * passes instead of 16, and the others are sorted alone. */
static void radix_sort_ip(void *a, void *tmp, size_t n, size_t sz)
{
	static const uint8_t v4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					0xff, 0xff };
	uint8_t *src = a, *dst = tmp;
	size_t cnt[3] = { 0, 0, 0 }, pos[3];

	if (n < 2)
		return;
	for (size_t i = 0; i < n; i++) {
		int c = memcmp(src + i * sz, v4, 12);

		cnt[c < 0 ? 0 : c == 0 ? 1 : 2]++;
	}
	pos[0] = 0;
	pos[1] = cnt[0];
	pos[2] = cnt[0] + cnt[1];
	for (size_t i = 0; i < n; i++) {
		int c = memcmp(src + i * sz, v4, 12);

		memcpy(dst + pos[c < 0 ? 0 : c == 0 ? 1 : 2]++ * sz,
		       src + i * sz, sz);
	}
	memcpy(src, dst, n * sz);
	radix_sort(src, tmp, cnt[0], sz, 16, 1);
	radix_sort_at(src + cnt[0] * sz, tmp, cnt[1], sz, 4, 1, 12);
	radix_sort(src + (cnt[0] + cnt[1]) * sz, tmp, cnt[2], sz, 16, 1);
}

static uint32_t uniq_u32(uint32_t *v, uint32_t *tmp, uint32_t n)
{
	uint32_t k = 0;

	radix_sort(v, tmp, n, sizeof(*v), 4, 0);
	for (uint32_t i = 0; i < n; i++)
		if (!k || v[k - 1] != v[i])
			v[k++] = v[i];
	return k;
}

/* Distinct IPs first (a block repeats them), through an open-addressing
 * set of 2n slots, then the few left sorted. */
static uint32_t uniq_ip(qli_summary *s, uint32_t n)
{
	uint32_t mask = s->setcap - 1, k = 0;

	memset(s->set, 0, s->setcap * sizeof(*s->set));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = (uint32_t)qli_hash64(s->ip[i], 16, 0) & mask;

		for (;; h = (h + 1) & mask) {
			uint32_t e = s->set[h];

			if (!e) {
				s->set[h] = ++k;
				if (k - 1 != i)
					memcpy(s->ip[k - 1], s->ip[i], 16);
				break;
			}
			if (!memcmp(s->ip[e - 1], s->ip[i], 16))
				break;
		}
	}
	radix_sort_ip(s->ip, s->tmpip, k, 16);
	return k;
}

static int sum_reserve(qli_summary *s, uint32_t n)
{
	if (n <= s->cap)
		return 0;
	uint32_t setcap = 16;

	while (setcap < 2 * n)
		setcap *= 2;
	qli_summary_free(s);
	s->r = malloc(n * sizeof(*s->r));
	s->t = malloc(n * sizeof(*s->t));
	s->tmp = malloc(n * sizeof(*s->tmp));
	s->ip = malloc((size_t)n * 16);
	s->tmpip = malloc((size_t)n * 16);
	s->set = malloc(setcap * sizeof(*s->set));
	if (!s->r || !s->t || !s->tmp || !s->ip || !s->tmpip || !s->set) {
		qli_summary_free(s);
		return qli_err(QL_ENOMEM, "out of memory");
	}
	s->cap = n;
	s->setcap = setcap;
	return 0;
}

int qli_summary_from_recs(qli_summary *s, const qli_rec *recs, uint32_t n)
{
	int rc = sum_reserve(s, n);

	if (rc)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		s->r[i] = qli_handle_hash(recs[i].req, recs[i].req_len);
		s->t[i] = qli_handle_hash(recs[i].tgt, recs[i].tgt_len);
		memcpy(s->ip[i], recs[i].ip, 16);
	}
	s->nr = uniq_u32(s->r, s->tmp, n);
	s->nt = uniq_u32(s->t, s->tmp, n);
	s->ni = uniq_ip(s, n);
	return 0;
}

int qli_summary_from_keys(qli_summary *s, const qli_block_keys *k)
{
	uint32_t nr = 0, nt = 0;
	int rc = sum_reserve(s, k->n);

	if (rc)
		return rc;
	/* a handle is requester of at most n records, target of at most
	 * n: nr, nt <= n; distinct addresses <= n */
	for (uint32_t i = 0; i < k->nstr; i++) {
		uint32_t h;

		/* the handles lie in the block's arena, written a while ago
		 * (summaries wait for a sync to pass): fetch ahead, each was
		 * a cache miss and most of this loop's time */
		if (i + 16 < k->nstr)
			__builtin_prefetch(k->str[i + 16]);
		h = qli_handle_hash(k->str[i], k->len[i]);

		if (k->role[i] & QLI_KEY_REQ)
			s->r[nr++] = h;
		if (k->role[i] & QLI_KEY_TGT)
			s->t[nt++] = h;
	}
	s->nr = uniq_u32(s->r, s->tmp, nr); /* hashes of two may collide */
	s->nt = uniq_u32(s->t, s->tmp, nt);
	for (uint32_t i = 0; i < k->nip; i++)
		memcpy(s->ip[i], k->ip[i], 16);
	radix_sort_ip(s->ip, s->tmpip, k->nip, 16);
	s->ni = k->nip;
	return 0;
}

int qli_summary_from_block(qli_summary *s, const qli_block *b)
{
	int rc = sum_reserve(s, b->n);

	if (rc)
		return rc;
	for (uint32_t i = 0; i < b->n; i++) {
		const char *rq = b->str[b->req[i]], *tg = b->str[b->tgt[i]];

		s->r[i] = qli_handle_hash(rq, strlen(rq));
		s->t[i] = qli_handle_hash(tg, strlen(tg));
		memcpy(s->ip[i], b->ips[b->ipi[i]], 16);
	}
	s->nr = uniq_u32(s->r, s->tmp, b->n);
	s->nt = uniq_u32(s->t, s->tmp, b->n);
	s->ni = uniq_ip(s, b->n);
	return 0;
}

void qli_summary_free(qli_summary *s)
{
	free(s->r);
	free(s->t);
	free(s->tmp);
	free(s->ip);
	free(s->tmpip);
	free(s->set);
	memset(s, 0, sizeof(*s));
}

/* ---- accumulated keys ---- */

qli_segacc *qli_segacc_new(void)
{
	return calloc(1, sizeof(qli_segacc));
}

void qli_segacc_free(qli_segacc *a)
{
	if (!a)
		return;
	free(a->r);
	free(a->t);
	free(a->a);
	free(a->ip);
	for (int i = 0; i < 3; i++)
		free(a->seen[i]);
	free(a->kh[0]);
	free(a->kh[1]);
	free(a);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t c;
	void *np;

	if (need <= *cap)
		return 0;
	c = *cap ? *cap : 1024;
	while (c < need)
		c *= 2;
	np = realloc(*p, c * elem);
	if (!np)
		return qli_err(QL_ENOMEM, "out of memory");
	*p = np;
	*cap = c;
	return 0;
}

int qli_segacc_add(qli_segacc *a, const qli_summary *s, uint32_t blk)
{
	if (grow((void **)&a->r, &a->capr, a->nr + s->nr, sizeof(pair32)) ||
	    grow((void **)&a->t, &a->capt, a->nt + s->nt, sizeof(pair32)) ||
	    grow((void **)&a->ip, &a->capip, a->nip + s->ni, sizeof(pairip)))
		return QL_ENOMEM;
	if (blk < a->last_blk)
		a->unordered = 1;
	a->last_blk = blk;
	for (uint32_t i = 0; i < s->nr; i++)
		a->r[a->nr++] = (pair32){ s->r[i], blk };
	for (uint32_t i = 0; i < s->nt; i++)
		a->t[a->nt++] = (pair32){ s->t[i], blk };
	for (uint32_t i = 0; i < s->ni; i++) {
		memcpy(a->ip[a->nip].key, s->ip[i], 16);
		a->ip[a->nip++].blk = blk;
	}
	return 0;
}

int qli_segacc_set_ids(qli_segacc *a, uint32_t nh, uint32_t na)
{
	if (a->nr || a->nt || a->nip || a->by_id)
		return qli_err(QL_EINVAL, "index: accumulator in use");
	a->by_id = 1;
	a->nh = nh;
	a->nai = na;
	a->seen[0] = calloc(nh ? nh : 1, sizeof(uint32_t));
	a->seen[1] = calloc(nh ? nh : 1, sizeof(uint32_t));
	a->seen[2] = calloc(na ? na : 1, sizeof(uint32_t));
	a->kh[0] = malloc((nh ? nh : 1) * sizeof(uint64_t));
	a->kh[1] = malloc((na ? na : 1) * sizeof(uint64_t));
	if (!a->seen[0] || !a->seen[1] || !a->seen[2] || !a->kh[0] ||
	    !a->kh[1])
		return qli_err(QL_ENOMEM, "out of memory");
	return 0;
}

static uint64_t filter_hash(const void *key, size_t len)
{
	return qli_hash64(key, len, FILTER_SEED);
}

void qli_segacc_key(qli_segacc *a, int ip, uint32_t id, const void *key,
		    size_t len)
{
	if (a->by_id && id < (ip ? a->nai : a->nh)) {
		a->kh[ip][id] = filter_hash(key, len);
		a->nkh[ip]++;
	}
}

int qli_segacc_add_ids(qli_segacc *a, const uint32_t *req,
		       const uint32_t *tgt, const uint32_t *ip, uint32_t n,
		       uint32_t blk)
{
	const uint32_t *col[3] = { req, tgt, ip };
	pair32 **arr[3] = { &a->r, &a->t, &a->a };
	size_t *len[3] = { &a->nr, &a->nt, &a->na };
	size_t *cap[3] = { &a->capr, &a->capt, &a->capa };

	if (!a->by_id)
		return qli_err(QL_EINVAL, "index: id postings for a hash "
			       "accumulator");
	if (blk < a->last_blk)
		a->unordered = 1;
	a->last_blk = blk;
	for (int c = 0; c < 3; c++) {
		uint32_t lim = c == 2 ? a->nai : a->nh;

		if (grow((void **)arr[c], cap[c], *len[c] + n, sizeof(pair32)))
			return QL_ENOMEM;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t id = col[c][i];

			if (id >= lim)
				return qli_err(QL_ECORRUPT, "index: id %u of "
					       "%u out of range", id, lim);
			if (a->seen[c][id] == blk + 1)
				continue;
			a->seen[c][id] = blk + 1;
			(*arr[c])[(*len[c])++] = (pair32){ id, blk };
		}
	}
	return 0;
}

/* ---- writing ---- */

static int wtxn(qli_index *ix, MDB_txn **out)
{
	int mrc;

	if (!ix->writable)
		return qli_err(QL_EREADONLY, "index is read-only");
	if (!ix->wtxn) {
		mrc = mdb_txn_begin(ix->reg->env, NULL, 0, &ix->wtxn);
		if (mrc) {
			ix->wtxn = NULL;
			return mdb_fail(mrc, "begin write");
		}
	}
	*out = ix->wtxn;
	return 0;
}

static int put_flags(qli_index *ix, const void *k, size_t klen,
		     const void *v, size_t vlen, unsigned flags)
{
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	MDB_txn *txn = NULL;
	int rc = wtxn(ix, &txn), mrc;

	if (rc)
		return rc;
	mrc = mdb_put(txn, ix->reg->dbi, &key, &val, flags);
	if (mrc == MDB_KEYEXIST && (flags & MDB_APPEND))
		mrc = mdb_put(txn, ix->reg->dbi, &key, &val, 0);
	return mrc ? mdb_fail(mrc, "put") : 0;
}

static int put(qli_index *ix, const void *k, size_t klen, const void *v,
	       size_t vlen)
{
	return put_flags(ix, k, klen, v, vlen, 0);
}

int qli_index_put_block(qli_index *ix, const qli_segfile *sf, uint32_t blk,
			const qli_summary *s, qli_segacc *acc)
{
	uint8_t key[1 + SEGKEY + 4];
	size_t len = 12 + 4 * (size_t)(s->nr + s->nt) + 16 * (size_t)s->ni;
	uint8_t *v, *p;
	int rc;

	rc = acc ? qli_segacc_add(acc, s, blk) : 0;
	if (rc)
		return rc;
	v = malloc(len);
	if (!v)
		return qli_err(QL_ENOMEM, "out of memory");
	qli_put32(v, s->nr);
	qli_put32(v + 4, s->nt);
	qli_put32(v + 8, s->ni);
	p = v + 12;
	for (uint32_t i = 0; i < s->nr; i++, p += 4)
		qli_put32(p, s->r[i]);
	for (uint32_t i = 0; i < s->nt; i++, p += 4)
		qli_put32(p, s->t[i]);
	memcpy(p, s->ip, 16 * (size_t)s->ni);
	key[0] = 'B';
	segkey(key + 1, sf->bucket_start, sf->gen);
	put_be32(key + 1 + SEGKEY, blk);
	rc = put(ix, key, sizeof(key), v, len);
	free(v);
	return rc;
}

int qli_index_put_dir(qli_index *ix, const qli_segfile *sf)
{
	uint8_t key[1 + SEGKEY];
	size_t len = DIR_FIXED + (size_t)sf->nblk * BLKENT;
	uint8_t *v;
	int rc;

	v = calloc(1, len);
	if (!v)
		return qli_err(QL_ENOMEM, "out of memory");
	/* 2: compact entries have id-keyed chunks; 3: and their segments
	 * may be version 3, whose headers a build that reads only 2 must
	 * see (it treats this entry as absent and loads the file) */
	v[0] = 3;
	v[1] = (uint8_t)sf->sealed;
	v[2] = (uint8_t)sf->compact; /* blocks hold dictionary ids */
	qli_put32(v + 4, sf->nblk);
	qli_put64(v + 8, sf->size);
	qli_put64(v + 16, sf->sealed ? sf->seal_checksum : 0);
	for (uint32_t i = 0; i < sf->nblk; i++)
		qli_blkent_pack(v + DIR_FIXED + (size_t)i * BLKENT,
				&sf->blk[i]);
	key[0] = 'D';
	segkey(key + 1, sf->bucket_start, sf->gen);
	rc = put(ix, key, sizeof(key), v, len);
	free(v);
	return rc;
}

static int cmp_pair32(const void *a, const void *b)
{
	const pair32 *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->blk < y->blk ? -1 : x->blk > y->blk;
}

static int cmp_pairip(const void *a, const void *b)
{
	const pairip *x = a, *y = b;
	int c = memcmp(x->key, y->key, 16);

	if (c)
		return c;
	return x->blk < y->blk ? -1 : x->blk > y->blk;
}

/* Varints come from codec.c; postings are block numbers: 32 bits. */
static int get_varint(const uint8_t **pp, const uint8_t *end, uint32_t *v)
{
	uint64_t r;

	if (qli_get_varint(pp, end, &r) || r > UINT32_MAX)
		return -1;
	*v = (uint32_t)r;
	return 0;
}

/* Key bytes (big-endian for hashes, so byte order is numeric order) and
 * block of pair j of an array of pair32 (ksize 4) or pairip (ksize 16). */
static const uint8_t *pair_key(const void *pairs, size_t j, size_t ksize,
			       uint8_t tmp[4])
{
	if (ksize == 16)
		return ((const pairip *)pairs)[j].key;
	put_be32(tmp, ((const pair32 *)pairs)[j].key);
	return tmp;
}

static uint32_t pair_blk(const void *pairs, size_t j, size_t ksize)
{
	return ksize == 16 ? ((const pairip *)pairs)[j].blk
			   : ((const pair32 *)pairs)[j].blk;
}

/* End of the run of pairs with the same key as pair j. */
static size_t key_run(const void *pairs, size_t j, size_t n, size_t ksize)
{
	uint8_t a[4], b[4];
	const uint8_t *kj = pair_key(pairs, j, ksize, a);
	size_t e = j + 1;

	while (e < n && !memcmp(pair_key(pairs, e, ksize, b), kj, ksize))
		e++;
	return e;
}

/* Writes the chunks of one key type. Pairs are sorted by (key, blk). A
 * chunk: u16 nkeys, u8 keysize, u8 0, the keys, then per key: varint
 * count, varint first block, varint deltas. */
static int put_chunks(qli_index *ix, const uint8_t seg[SEGKEY], char type,
		      const void *pairs, size_t n, size_t ksize)
{
	uint8_t key[2 + SEGKEY + 16], tmp[4];
	qli_buf v = { 0 };
	size_t i = 0;
	int rc = 0;

	while (i < n && !rc) {
		size_t nkeys = 0, j = i, kn = 0;

		size_t est = 4;

		while (j < n && nkeys < CHUNK_KEYS) {
			size_t e = key_run(pairs, j, n, ksize);

			/* worst case 5 bytes a varint */
			est += ksize + 5 * (1 + e - j);
			if (nkeys && est > CHUNK_BYTES)
				break;
			j = e;
			nkeys++;
		}
		v.len = 0;
		rc = qli_buf_reserve(&v, 4 + nkeys * (ksize + 5) +
						 (j - i) * 5);
		if (rc)
			break;
		v.p[0] = (uint8_t)nkeys;
		v.p[1] = (uint8_t)(nkeys >> 8);
		v.p[2] = (uint8_t)ksize;
		v.p[3] = 0;
		v.len = 4 + nkeys * ksize;
		for (size_t k = i; k < j; kn++) {
			size_t e = key_run(pairs, k, j, ksize);
			uint32_t prev = 0;

			memcpy(v.p + 4 + kn * ksize,
			       pair_key(pairs, k, ksize, tmp), ksize);
			v.len += qli_put_varint(v.p + v.len, e - k);
			for (size_t q = k; q < e; q++) {
				uint32_t b = pair_blk(pairs, q, ksize);

				v.len += qli_put_varint(v.p + v.len, b - prev);
				prev = b;
			}
			k = e;
		}
		key[0] = 'S';
		memcpy(key + 1, seg, SEGKEY);
		key[1 + SEGKEY] = (uint8_t)type;
		memcpy(key + 2 + SEGKEY, v.p + 4, ksize);
		/* sealing goes in time order, so a segment's chunks are
		 * mostly the largest keys yet: appending fills pages fully
		 * instead of splitting them in halves */
		rc = put_flags(ix, key, 2 + SEGKEY + ksize, v.p, v.len,
			       MDB_APPEND);
		i = j;
	}
	qli_buf_free(&v);
	return rc;
}

static int drop_prefix(qli_index *ix, const uint8_t *prefix, size_t plen)
{
	MDB_cursor *cur;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	int rc = wtxn(ix, &txn), mrc;

	if (rc)
		return rc;
	mrc = mdb_cursor_open(txn, ix->reg->dbi, &cur);
	if (mrc)
		return mdb_fail(mrc, "cursor");
	for (;;) {
		k.mv_size = plen;
		k.mv_data = (void *)prefix;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (mrc == MDB_NOTFOUND)
			break;
		if (mrc)
			break;
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen))
			break;
		mrc = mdb_cursor_del(cur, 0);
		if (mrc)
			break;
	}
	mdb_cursor_close(cur);
	if (mrc && mrc != MDB_NOTFOUND)
		return mdb_fail(mrc, "delete");
	return 0;
}

/* Sorts the pairs by (key, block). Blocks are added in order, so a
 * stable sort by key is enough; should they ever not be, qsort with the
 * full comparison keeps the result right. */
static int sort_pairs(qli_segacc *acc)
{
	size_t big = acc->nr > acc->nt ? acc->nr : acc->nt;
	size_t bytes;
	void *tmp;

	if (acc->na > big)
		big = acc->na;
	bytes = big * sizeof(pair32);
	if (acc->nip * sizeof(pairip) > bytes)
		bytes = acc->nip * sizeof(pairip);
	if (!bytes)
		return 0;
	tmp = malloc(bytes);
	if (!tmp)
		return qli_err(QL_ENOMEM, "out of memory (sorting %zu keys)",
			       big > acc->nip ? big : acc->nip);
	if (acc->unordered) {
		/* (qsort of an empty, NULL array is undefined behaviour) */
		if (acc->nr)
			qsort(acc->r, acc->nr, sizeof(pair32), cmp_pair32);
		if (acc->nt)
			qsort(acc->t, acc->nt, sizeof(pair32), cmp_pair32);
		if (acc->na)
			qsort(acc->a, acc->na, sizeof(pair32), cmp_pair32);
		if (acc->nip)
			qsort(acc->ip, acc->nip, sizeof(pairip), cmp_pairip);
	} else {
		radix_sort(acc->r, tmp, acc->nr, sizeof(pair32), 4, 0);
		radix_sort(acc->t, tmp, acc->nt, sizeof(pair32), 4, 0);
		radix_sort(acc->a, tmp, acc->na, sizeof(pair32), 4, 0);
		radix_sort_ip(acc->ip, tmp, acc->nip, sizeof(pairip));
	}
	free(tmp);
	return 0;
}

/* Appends the blocks of one id taken from the sorted pairs p[*i..] (the
 * first, then differences) to v and moves *i past them; no count. */
/* Bytes of a block bitmap of a segment of nblk blocks. A list of more
 * blocks than that is written as the bitmap (FORMAT.md §6): the rule
 * depends only on the count and nblk, so it needs no flag. */
static size_t dense_bytes(uint32_t nblk)
{
	return ((size_t)nblk + 7) / 8;
}

static void put_blocks(qli_buf *v, const pair32 *p, size_t *i, size_t e,
		       uint32_t nblk)
{
	uint32_t prev = 0;

	if (e - *i > dense_bytes(nblk)) {
		uint8_t *m = v->p + v->len;

		memset(m, 0, dense_bytes(nblk));
		for (size_t q = *i; q < e; q++)
			m[p[q].blk / 8] |= (uint8_t)(1u << (p[q].blk % 8));
		v->len += dense_bytes(nblk);
		*i = e;
		return;
	}
	for (size_t q = *i; q < e; q++) {
		v->len += qli_put_varint(v->p + v->len, p[q].blk - prev);
		prev = p[q].blk;
	}
	*i = e;
}

/* One id's entry: of an address, varint count and the blocks; of a
 * handle (p2: its target pairs), varint 4·nr + min(nt, 3), varint nt - 3
 * if nt >= 3, then nr blocks as requester and nt as target. Most ids are
 * of rare handles seen in one role: one byte of counts. */
static void put_entry(qli_buf *v, const pair32 *p1, size_t n1, size_t *i1,
		      const pair32 *p2, size_t n2, size_t *i2, uint32_t id,
		      uint32_t nblk)
{
	size_t e1 = *i1, e2 = i2 ? *i2 : 0, nr, nt;

	while (e1 < n1 && p1[e1].key == id)
		e1++;
	nr = e1 - *i1;
	if (!p2) {
		v->len += qli_put_varint(v->p + v->len, nr);
		put_blocks(v, p1, i1, e1, nblk);
		return;
	}
	while (e2 < n2 && p2[e2].key == id)
		e2++;
	nt = e2 - *i2;
	v->len += qli_put_varint(v->p + v->len,
				 4 * (uint64_t)nr + (nt < 3 ? nt : 3));
	if (nt >= 3)
		v->len += qli_put_varint(v->p + v->len, nt - 3);
	put_blocks(v, p1, i1, e1, nblk);
	put_blocks(v, p2, i2, e2, nblk);
}

/* Writes the id-keyed chunks of a compact segment (docs/FORMAT.md §6):
 * type 'h' for ids 0..nid-1 of the handle dictionary (postings as
 * requester, then as target), 'a' for the address dictionary (p2 NULL).
 * The key ends with the chunk's first id; the ids themselves are
 * implicit. A chunk is filled up to one LMDB overflow page. */
static int put_idchunks(qli_index *ix, const uint8_t seg[SEGKEY], char type,
			uint32_t nid, const pair32 *p1, size_t n1,
			const pair32 *p2, size_t n2, uint32_t nblk)
{
	uint8_t key[2 + SEGKEY + 4];
	qli_buf v = { 0 }, e = { 0 };
	size_t i1 = 0, i2 = 0;
	uint32_t id = 0;
	int rc = 0;

	key[0] = 'S';
	memcpy(key + 1, seg, SEGKEY);
	key[1 + SEGKEY] = (uint8_t)type;
	while (id < nid && !rc) {
		uint32_t first = id, k = 0;

		v.len = 0;
		rc = qli_buf_reserve(&v, IDCHUNK_BYTES);
		if (rc)
			break;
		v.p[2] = (uint8_t)type;
		v.p[3] = 0;
		v.len = 4;
		while (id < nid && k < 0xffff) {
			size_t b1 = i1, b2 = i2, s1 = i1, s2 = i2;

			/* the id's entry, sized before it is written */
			while (s1 < n1 && p1[s1].key == id)
				s1++;
			while (p2 && s2 < n2 && p2[s2].key == id)
				s2++;
			rc = qli_buf_reserve(&e, 10 + 5 * (s1 - i1 + s2 - i2));
			if (rc)
				break;
			e.len = 0;
			put_entry(&e, p1, n1, &i1, p2, n2, p2 ? &i2 : NULL,
				  id, nblk);
			if (k && v.len + e.len > IDCHUNK_BYTES) {
				/* the id starts the next chunk */
				i1 = b1;
				i2 = b2;
				break;
			}
			rc = qli_buf_reserve(&v, v.len + e.len);
			if (rc)
				break;
			memcpy(v.p + v.len, e.p, e.len);
			v.len += e.len;
			id++;
			k++;
		}
		if (rc)
			break;
		v.p[0] = (uint8_t)k;
		v.p[1] = (uint8_t)(k >> 8);
		put_be32(key + 2 + SEGKEY, first);
		rc = put_flags(ix, key, sizeof(key), v.p, v.len, MDB_APPEND);
	}
	qli_buf_free(&v);
	qli_buf_free(&e);
	return rc;
}

static uint32_t filter_bytes(uint32_t nkeys)
{
	uint64_t b = ((uint64_t)nkeys * FILTER_BITS + 7) / 8;

	return b < 8 ? 8 : b > UINT32_MAX / 8 ? UINT32_MAX / 8 : (uint32_t)b;
}

static void filter_bit(uint64_t h, uint32_t i, uint32_t nbits, uint32_t *at)
{
	uint32_t h1 = (uint32_t)h, h2 = (uint32_t)(h >> 32) | 1;

	*at = (uint32_t)(((uint64_t)h1 + (uint64_t)i * h2) % nbits);
}

/* Writes the class filters of one dictionary of a compact segment
 * (docs/FORMAT.md §6): a Bloom filter per frequency class, so that a
 * lookup decodes the one page of the one class that holds its key. */
static int put_filter(qli_index *ix, const uint8_t seg[SEGKEY], int ip,
		      const qli_dict *d, const uint64_t *kh)
{
	uint8_t key[2 + SEGKEY + 4];
	size_t len = 4 + 4 * (size_t)d->ncls;
	uint8_t *v, *p;
	int rc;

	for (uint32_t c = 0; c < d->ncls; c++)
		len += filter_bytes(d->cls[c + 1] - d->cls[c]);
	v = calloc(1, len);
	if (!v)
		return qli_err(QL_ENOMEM, "out of memory");
	v[0] = ip ? 'a' : 'h';
	v[1] = FILTER_PROBES;
	v[2] = (uint8_t)d->ncls;
	v[3] = (uint8_t)(d->ncls >> 8);
	p = v + 4 + 4 * (size_t)d->ncls;
	for (uint32_t c = 0; c < d->ncls; c++) {
		uint32_t nb = filter_bytes(d->cls[c + 1] - d->cls[c]);

		qli_put32(v + 4 + 4 * (size_t)c, nb);
		for (uint32_t id = d->cls[c]; id < d->cls[c + 1]; id++)
			for (uint32_t i = 0; i < FILTER_PROBES; i++) {
				uint32_t at;

				filter_bit(kh[id], i, nb * 8, &at);
				p[at / 8] |= (uint8_t)(1u << (at % 8));
			}
		p += nb;
	}
	key[0] = 'S';
	memcpy(key + 1, seg, SEGKEY);
	key[1 + SEGKEY] = 'f';
	put_be32(key + 2 + SEGKEY, (uint32_t)ip);
	rc = put(ix, key, sizeof(key), v, len);
	free(v);
	return rc;
}

int qli_index_seal(qli_index *ix, const qli_segfile *sf, qli_segacc *acc)
{
	uint8_t seg[SEGKEY], pre[1 + SEGKEY];
	int rc;

	segkey(seg, sf->bucket_start, sf->gen);
	pre[0] = 'B';
	memcpy(pre + 1, seg, SEGKEY);
	rc = drop_prefix(ix, pre, sizeof(pre));
	pre[0] = 'S';
	if (!rc)
		rc = drop_prefix(ix, pre, sizeof(pre));
	if (!rc && acc->by_id != sf->compact)
		rc = qli_err(QL_EINVAL, "index: %s keys for a %s segment",
			     acc->by_id ? "id" : "hash",
			     sf->compact ? "compact" : ".qls");
	if (!rc)
		rc = sort_pairs(acc);
	if (!rc && acc->by_id) {
		rc = put_idchunks(ix, seg, 'a', acc->nai, acc->a, acc->na,
				  NULL, 0, sf->nblk);
		if (!rc)
			rc = put_idchunks(ix, seg, 'h', acc->nh, acc->r,
					  acc->nr, acc->t, acc->nt, sf->nblk);
		/* without every key's hash (never expected), no filter:
		 * lookups then try every class */
		if (!rc && acc->nkh[0] == acc->nh && sf->dh.n == acc->nh)
			rc = put_filter(ix, seg, 0, &sf->dh, acc->kh[0]);
		if (!rc && acc->nkh[1] == acc->nai && sf->di.n == acc->nai)
			rc = put_filter(ix, seg, 1, &sf->di, acc->kh[1]);
	} else {
		if (!rc)
			rc = put_chunks(ix, seg, 'i', acc->ip, acc->nip, 16);
		if (!rc)
			rc = put_chunks(ix, seg, 'r', acc->r, acc->nr, 4);
		if (!rc)
			rc = put_chunks(ix, seg, 't', acc->t, acc->nt, 4);
	}
	if (!rc)
		rc = qli_index_put_dir(ix, sf);
	return rc;
}

int qli_index_drop(qli_index *ix, int64_t bucket_start, uint32_t gen)
{
	static const char types[] = "BDS";
	uint8_t pre[1 + SEGKEY];
	int rc = 0;

	segkey(pre + 1, bucket_start, gen);
	for (int i = 0; i < 3 && !rc; i++) {
		pre[0] = (uint8_t)types[i];
		rc = drop_prefix(ix, pre, sizeof(pre));
	}
	return rc;
}

int qli_index_commit(qli_index *ix)
{
	int mrc;

	if (!ix || !ix->wtxn)
		return 0;
	mrc = mdb_txn_commit(ix->wtxn);
	ix->wtxn = NULL;
	return mrc ? mdb_fail(mrc, "commit") : 0;
}

void qli_index_abort(qli_index *ix)
{
	if (ix && ix->wtxn) {
		mdb_txn_abort(ix->wtxn);
		ix->wtxn = NULL;
	}
}

/* ---- reading ---- */

static int rtxn_get(MDB_txn *txn, MDB_dbi dbi, const uint8_t *k, size_t klen,
		    MDB_val *v)
{
	MDB_val key = { klen, (void *)k };
	int mrc = mdb_get(txn, dbi, &key, v);

	if (mrc == MDB_NOTFOUND)
		return QL_ENOTFOUND;
	return mrc ? mdb_fail(mrc, "get") : 0;
}

static int dir_parse(const MDB_val *v, qli_segfile *sf)
{
	const uint8_t *p = v->mv_data;
	uint32_t n;

	if (v->mv_size < DIR_FIXED || p[0] < 1 || p[0] > 3 || p[2] > 1 ||
	    (p[2] && !p[1]))
		return qli_err(QL_ECORRUPT, "index: bad directory entry");
	sf->compact = p[2];
	/* version 1 (before 0.1.0's id-keyed chunks) indexed compact
	 * segments by hash too: still read that way */
	sf->ix_byid = p[2] && p[0] >= 2;
	n = qli_get32(p + 4);
	if (v->mv_size != DIR_FIXED + (size_t)n * BLKENT)
		return qli_err(QL_ECORRUPT, "index: directory size");
	sf->sealed = p[1];
	sf->size = qli_get64(p + 8);
	sf->seal_checksum = qli_get64(p + 16);
	free(sf->blk);
	sf->blk = malloc((n ? n : 1) * sizeof(*sf->blk));
	if (!sf->blk)
		return qli_err(QL_ENOMEM, "out of memory");
	sf->nblk = sf->blkcap = n;
	sf->nrec = sf->raw_bytes = 0;
	for (uint32_t i = 0; i < n; i++) {
		qli_blkent_unpack(&sf->blk[i], p + DIR_FIXED +
						       (size_t)i * BLKENT);
		if (!i || sf->blk[i].min_ts < sf->min_ts)
			sf->min_ts = sf->blk[i].min_ts;
		if (!i || sf->blk[i].max_ts > sf->max_ts)
			sf->max_ts = sf->blk[i].max_ts;
		sf->nrec += sf->blk[i].nrec;
		sf->raw_bytes += sf->blk[i].raw_len;
	}
	return 0;
}

int qli_index_dir_parse(const void *p, size_t len, qli_segfile *sf)
{
	MDB_val v = { len, (void *)p };

	return dir_parse(&v, sf);
}

int qli_index_check(qli_index *ix, const qli_segfile *sf, uint32_t *nblk,
		    int *sealed_ok)
{
	uint8_t key[1 + SEGKEY];
	qli_segfile d;
	MDB_txn *txn = NULL;
	MDB_val v;
	int rc, mrc;

	*nblk = 0;
	*sealed_ok = 0;
	memset(&d, 0, sizeof(d));
	mrc = mdb_txn_begin(ix->reg->env, NULL, MDB_RDONLY, &txn);
	if (mrc)
		return mdb_fail(mrc, "begin");
	key[0] = 'D';
	segkey(key + 1, sf->bucket_start, sf->gen);
	rc = rtxn_get(txn, ix->reg->dbi, key, sizeof(key), &v);
	if (!rc)
		rc = dir_parse(&v, &d);
	mdb_txn_abort(txn);
	if (rc == QL_ENOTFOUND || rc == QL_ECORRUPT) {
		free(d.blk);
		qli_clear_err();
		return 0;
	}
	if (rc)
		return rc;
	if (d.sealed) {
		*sealed_ok = sf->sealed && d.nblk == sf->nblk &&
			     d.compact == sf->compact &&
			     d.ix_byid == sf->compact &&
			     d.seal_checksum == sf->seal_checksum;
		*nblk = *sealed_ok ? sf->nblk : 0;
	} else {
		uint32_t i = 0;

		while (i < d.nblk && i < sf->nblk &&
		       d.blk[i].checksum == sf->blk[i].checksum &&
		       d.blk[i].off == sf->blk[i].off)
			i++;
		*nblk = i;
	}
	free(d.blk);
	return 0;
}

static int summary_parse(const MDB_val *v, uint32_t *nr, uint32_t *nt,
			 uint32_t *ni)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size < 12)
		return -1;
	*nr = qli_get32(p);
	*nt = qli_get32(p + 4);
	*ni = qli_get32(p + 8);
	if (v->mv_size != 12 + 4 * ((size_t)*nr + *nt) + 16 * (size_t)*ni)
		return -1;
	return 0;
}

int qli_index_load_acc(qli_index *ix, const qli_segfile *sf, uint32_t nblk,
		       qli_segacc *acc)
{
	uint8_t key[1 + SEGKEY + 4];
	qli_summary s = { 0 };
	MDB_txn *txn = NULL;
	int rc = 0, mrc;

	mrc = mdb_txn_begin(ix->reg->env, NULL, MDB_RDONLY, &txn);
	if (mrc)
		return mdb_fail(mrc, "begin");
	key[0] = 'B';
	segkey(key + 1, sf->bucket_start, sf->gen);
	for (uint32_t b = 0; b < nblk && !rc; b++) {
		uint32_t nr = 0, nt = 0, ni = 0;
		const uint8_t *p;
		MDB_val v;

		put_be32(key + 1 + SEGKEY, b);
		rc = rtxn_get(txn, ix->reg->dbi, key, sizeof(key), &v);
		if (!rc && summary_parse(&v, &nr, &nt, &ni))
			rc = qli_err(QL_ECORRUPT, "index: bad block summary");
		if (!rc)
			rc = sum_reserve(&s, nr > nt ? (nr > ni ? nr : ni)
						     : (nt > ni ? nt : ni));
		if (rc)
			break;
		p = (const uint8_t *)v.mv_data + 12;
		for (uint32_t i = 0; i < nr; i++, p += 4)
			s.r[i] = qli_get32(p);
		for (uint32_t i = 0; i < nt; i++, p += 4)
			s.t[i] = qli_get32(p);
		memcpy(s.ip, p, 16 * (size_t)ni);
		s.nr = nr;
		s.nt = nt;
		s.ni = ni;
		rc = qli_segacc_add(acc, &s, b);
	}
	mdb_txn_abort(txn);
	qli_summary_free(&s);
	return rc;
}

int qli_index_segments(qli_index *ix,
		       int (*fn)(int64_t bucket_start, uint32_t gen, void *),
		       void *ctx)
{
	MDB_cursor *cur;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	uint8_t pre = 'D';
	int mrc, rc = 0;

	mrc = mdb_txn_begin(ix->reg->env, NULL, MDB_RDONLY, &txn);
	if (!mrc)
		mrc = mdb_cursor_open(txn, ix->reg->dbi, &cur);
	if (mrc)
		return mdb_fail(mrc, "begin");
	k.mv_size = 1;
	k.mv_data = &pre;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     !mrc && !rc; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *p = k.mv_data;
		uint64_t u = 0;

		if (k.mv_size != 1 + SEGKEY || p[0] != 'D')
			break;
		for (int i = 0; i < 8; i++)
			u = u << 8 | p[1 + i];
		rc = fn((int64_t)(u ^ (1ULL << 63)), get_be32(p + 9), ctx);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc;
}

int qli_index_begin(qli_index *ix, qli_ixread **out)
{
	qli_ixread *rt = calloc(1, sizeof(*rt));
	int mrc;

	*out = NULL;
	if (!rt)
		return qli_err(QL_ENOMEM, "out of memory");
	mrc = mdb_txn_begin(ix->reg->env, NULL, MDB_RDONLY, &rt->txn);
	if (!mrc)
		mrc = mdb_cursor_open(rt->txn, ix->reg->dbi, &rt->cur);
	if (mrc) {
		if (rt->txn)
			mdb_txn_abort(rt->txn);
		free(rt);
		return mdb_fail(mrc, "begin read");
	}
	rt->dbi = ix->reg->dbi;
	*out = rt;
	return 0;
}

void qli_index_end(qli_ixread *rt)
{
	if (!rt)
		return;
	mdb_cursor_close(rt->cur);
	mdb_txn_abort(rt->txn);
	free(rt);
}

int qli_index_get_dir(qli_ixread *rt, int64_t bucket_start, uint32_t gen,
		      int64_t bucket_width, qli_segfile *sf)
{
	uint8_t key[1 + SEGKEY];
	MDB_val v;
	int rc;

	memset(sf, 0, sizeof(*sf));
	sf->fd = -1;
	key[0] = 'D';
	segkey(key + 1, bucket_start, gen);
	rc = rtxn_get(rt->txn, rt->dbi, key, sizeof(key), &v);
	if (rc)
		return rc;
	qli_seg_name(sf->name, bucket_start, gen);
	sf->bucket_start = bucket_start;
	sf->bucket_width = bucket_width;
	sf->gen = gen;
	rc = dir_parse(&v, sf);
	sf->file_size = sf->size;
	return rc;
}

static void mark(uint8_t *bits, uint32_t blk, uint32_t nblk)
{
	if (blk < nblk)
		bits[blk / 8] |= (uint8_t)(1u << (blk % 8));
}

/* Marks the blocks of every key in [lo, hi] (big-endian byte keys). */
static int chunk_scan(const MDB_val *v, const uint8_t *lo, const uint8_t *hi,
		      size_t ksize, uint8_t *bits, uint32_t nblk)
{
	const uint8_t *p = v->mv_data, *end = p + v->mv_size, *q;
	uint32_t nkeys;

	if (v->mv_size < 4 || p[2] != ksize)
		return qli_err(QL_ECORRUPT, "index: bad chunk");
	nkeys = (uint32_t)p[0] | (uint32_t)p[1] << 8;
	if (v->mv_size < 4 + (size_t)nkeys * ksize)
		return qli_err(QL_ECORRUPT, "index: chunk truncated");
	q = p + 4 + (size_t)nkeys * ksize;
	for (uint32_t k = 0; k < nkeys; k++) {
		const uint8_t *key = p + 4 + (size_t)k * ksize;
		int in = memcmp(key, lo, ksize) >= 0 &&
			 memcmp(key, hi, ksize) <= 0;
		uint32_t cnt, b = 0, d;

		if (get_varint(&q, end, &cnt))
			return qli_err(QL_ECORRUPT, "index: chunk postings");
		for (uint32_t i = 0; i < cnt; i++) {
			if (get_varint(&q, end, &d))
				return qli_err(QL_ECORRUPT,
					       "index: chunk postings");
			b += d;
			if (in)
				mark(bits, b, nblk);
		}
		if (memcmp(key, hi, ksize) > 0)
			break;
	}
	return 0;
}

/* Positions rt->cur on the chunk of sf's keys of this type that may
 * hold first (ksize bytes, as in the key): the last chunk whose first key
 * is <= first, or the type's first chunk when first comes before it
 * (a range may still reach into it). QL_ENOTFOUND: no chunk of the type.
 * Hash-, address- and id-keyed chunks alike. */
static int chunk_seek(qli_ixread *rt, const qli_segfile *sf, char type,
		      const uint8_t *first, size_t ksize, MDB_val *k,
		      MDB_val *v)
{
	uint8_t key[2 + SEGKEY + 16];
	size_t plen = 2 + SEGKEY;
	int mrc;

	key[0] = 'S';
	segkey(key + 1, sf->bucket_start, sf->gen);
	key[1 + SEGKEY] = (uint8_t)type;
	memcpy(key + plen, first, ksize);
	k->mv_size = plen + ksize;
	k->mv_data = key;
	mrc = mdb_cursor_get(rt->cur, k, v, MDB_SET_RANGE);
	/* the chunk holding first starts at or before it: step back one
	 * unless we landed on a chunk that starts exactly there */
	if (mrc == MDB_NOTFOUND)
		mrc = mdb_cursor_get(rt->cur, k, v, MDB_LAST);
	else if (!mrc && (k->mv_size != plen + ksize ||
			  memcmp(k->mv_data, key, plen + ksize)))
		mrc = mdb_cursor_get(rt->cur, k, v, MDB_PREV);
	if (mrc == MDB_NOTFOUND || (!mrc && (k->mv_size != plen + ksize ||
					     memcmp(k->mv_data, key, plen)))) {
		/* before the first chunk of this type: start at it */
		k->mv_size = plen;
		k->mv_data = key;
		mrc = mdb_cursor_get(rt->cur, k, v, MDB_SET_RANGE);
	}
	if (mrc == MDB_NOTFOUND)
		return QL_ENOTFOUND;
	if (mrc)
		return mdb_fail(mrc, "lookup");
	if (k->mv_size != plen + ksize || memcmp(k->mv_data, key, plen))
		return QL_ENOTFOUND;
	return 0;
}

static int sealed_lookup(qli_ixread *rt, const qli_segfile *sf, char type,
			 const uint8_t *lo, const uint8_t *hi, size_t ksize,
			 uint8_t *bits)
{
	uint8_t pre[2 + SEGKEY];
	size_t plen = sizeof(pre);
	MDB_val k, v;
	int mrc = 0, rc;

	pre[0] = 'S';
	segkey(pre + 1, sf->bucket_start, sf->gen);
	pre[1 + SEGKEY] = (uint8_t)type;
	rc = chunk_seek(rt, sf, type, lo, ksize, &k, &v);
	if (rc == QL_ENOTFOUND)
		return 0;
	for (; !rc && !mrc; mrc = mdb_cursor_get(rt->cur, &k, &v, MDB_NEXT)) {
		const uint8_t *kp = k.mv_data;

		if (k.mv_size != plen + ksize || memcmp(kp, pre, plen) ||
		    memcmp(kp + plen, hi, ksize) > 0)
			break;
		rc = chunk_scan(&v, lo, hi, ksize, bits, sf->nblk);
	}
	if (!rc && mrc && mrc != MDB_NOTFOUND)
		return mdb_fail(mrc, "lookup");
	return rc;
}

/* In an unsealed segment: every block whose summary holds a key in
 * range, or that has no summary (not indexed yet: a candidate). */
static int summary_lookup(qli_ixread *rt, const qli_segfile *sf, int roles,
			  uint32_t hash, const uint8_t *lo, const uint8_t *hi,
			  uint8_t *bits)
{
	uint8_t key[1 + SEGKEY + 4];

	key[0] = 'B';
	segkey(key + 1, sf->bucket_start, sf->gen);
	for (uint32_t b = 0; b < sf->nblk; b++) {
		uint32_t nr, nt, ni, lo_i, hi_i;
		const uint8_t *p;
		MDB_val v;
		int rc;

		put_be32(key + 1 + SEGKEY, b);
		rc = rtxn_get(rt->txn, rt->dbi, key, sizeof(key), &v);
		if (rc == QL_ENOTFOUND || (!rc && summary_parse(&v, &nr, &nt,
								&ni))) {
			mark(bits, b, sf->nblk);
			continue;
		}
		if (rc)
			return rc;
		p = (const uint8_t *)v.mv_data + 12;
		if (lo) {
			/* lower bound of lo among the sorted addresses */
			const uint8_t *ips = p + 4 * ((size_t)nr + nt);

			lo_i = 0;
			hi_i = ni;
			while (lo_i < hi_i) {
				uint32_t m = (lo_i + hi_i) / 2;

				if (memcmp(ips + 16 * (size_t)m, lo, 16) < 0)
					lo_i = m + 1;
				else
					hi_i = m;
			}
			if (lo_i < ni &&
			    memcmp(ips + 16 * (size_t)lo_i, hi, 16) <= 0)
				mark(bits, b, sf->nblk);
			continue;
		}
		for (int role = 0; role < 2; role++) {
			const uint8_t *arr = role ? p + 4 * (size_t)nr : p;
			uint32_t n = role ? nt : nr;

			if (!(roles & (role ? QLI_LOOK_TGT : QLI_LOOK_REQ)))
				continue;
			lo_i = 0;
			hi_i = n;
			while (lo_i < hi_i) {
				uint32_t m = (lo_i + hi_i) / 2;

				if (qli_get32(arr + 4 * (size_t)m) < hash)
					lo_i = m + 1;
				else
					hi_i = m;
			}
			if (lo_i < n && qli_get32(arr + 4 * (size_t)lo_i) ==
						hash)
				mark(bits, b, sf->nblk);
		}
	}
	return 0;
}

int qli_index_lookup_handle(qli_ixread *rt, const qli_segfile *sf,
			    uint32_t hash, int roles, uint8_t *bits)
{
	uint8_t k[4];
	int rc = 0;

	if (!sf->sealed)
		return summary_lookup(rt, sf, roles, hash, NULL, NULL, bits);
	put_be32(k, hash);
	if (roles & QLI_LOOK_REQ)
		rc = sealed_lookup(rt, sf, 'r', k, k, 4, bits);
	if (!rc && (roles & QLI_LOOK_TGT))
		rc = sealed_lookup(rt, sf, 't', k, k, 4, bits);
	return rc;
}

int qli_index_lookup_ip(qli_ixread *rt, const qli_segfile *sf,
			const uint8_t lo[16], const uint8_t hi[16],
			uint8_t *bits)
{
	if (!sf->sealed)
		return summary_lookup(rt, sf, 0, 0, lo, hi, bits);
	return sealed_lookup(rt, sf, 'i', lo, hi, 16, bits);
}

/* Walks one id-keyed chunk: for each id whose bit is set in want (or
 * that equals one, when want is NULL), marks its postings in the roles
 * asked for (a 'h' chunk has two lists an id, a 'a' chunk one). Stops
 * with *past = 1 once an id above last is reached. */
int qli_index_idchunk_scan(uint32_t first, const void *val, size_t len,
			   char type, const uint8_t *want, uint32_t one,
			   uint32_t last, int roles, uint8_t *bits,
			   uint32_t nblk, int *past)
{
	const uint8_t *p = val, *end = p + len;
	uint32_t n, id, cnt[2] = { 0, 0 }, extra;
	int lists = type == 'h' ? 2 : 1;

	if (len < 4 || p[2] != (uint8_t)type)
		return qli_err(QL_ECORRUPT, "index: bad id chunk");
	n = (uint32_t)p[0] | (uint32_t)p[1] << 8;
	id = first;
	p += 4;
	for (uint32_t j = 0; j < n; j++, id++) {
		int in;

		if (id > last || id == UINT32_MAX) {
			*past = 1;
			return 0;
		}
		in = want ? (want[id / 8] >> (id % 8)) & 1 : id == one;
		if (get_varint(&p, end, &cnt[0]))
			return qli_err(QL_ECORRUPT, "index: id chunk counts");
		if (type == 'h') {
			cnt[1] = cnt[0] & 3;
			cnt[0] >>= 2;
			if (cnt[1] == 3) {
				if (get_varint(&p, end, &extra) ||
				    extra > UINT32_MAX - 3)
					return qli_err(QL_ECORRUPT, "index: id "
						       "chunk counts");
				cnt[1] += extra;
			}
		}
		for (int l = 0; l < lists; l++) {
			int use = in && (type == 'a' ||
					 (roles & (l ? QLI_LOOK_TGT
						     : QLI_LOOK_REQ)));
			uint32_t b = 0, d;

			if (cnt[l] > dense_bytes(nblk)) {
				/* a bitmap of the segment's blocks */
				size_t nb = dense_bytes(nblk);

				if ((size_t)(end - p) < nb)
					return qli_err(QL_ECORRUPT, "index: id "
						       "chunk bitmap");
				for (size_t x = 0; use && x < nb; x++)
					for (unsigned k = 0; k < 8; k++)
						if ((p[x] >> k) & 1)
							mark(bits,
							     (uint32_t)(8 * x +
									k),
							     nblk);
				p += nb;
				continue;
			}
			for (uint32_t i = 0; i < cnt[l]; i++) {
				if (get_varint(&p, end, &d))
					return qli_err(QL_ECORRUPT,
						       "index: id chunk "
						       "postings");
				b += d;
				if (use)
					mark(bits, b, nblk);
			}
		}
	}
	return 0;
}

static int id_lookup(qli_ixread *rt, const qli_segfile *sf, char type,
		     const uint8_t *want, uint32_t first, uint32_t last,
		     int roles, uint8_t *bits)
{
	MDB_val k, v;
	int past = 0, rc, mrc = 0;
	uint8_t pre[2 + SEGKEY], be[4];

	put_be32(be, first);
	rc = chunk_seek(rt, sf, type, be, 4, &k, &v);
	if (rc == QL_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	pre[0] = 'S';
	segkey(pre + 1, sf->bucket_start, sf->gen);
	pre[1 + SEGKEY] = (uint8_t)type;
	while (!rc && !past) {
		rc = qli_index_idchunk_scan(
			get_be32((const uint8_t *)k.mv_data + 2 + SEGKEY),
			v.mv_data, v.mv_size, type, want, first, last, roles,
			bits, sf->nblk, &past);
		if (rc || past)
			break;
		mrc = mdb_cursor_get(rt->cur, &k, &v, MDB_NEXT);
		if (mrc || k.mv_size != sizeof(pre) + 4 ||
		    memcmp(k.mv_data, pre, sizeof(pre)) ||
		    get_be32((const uint8_t *)k.mv_data + sizeof(pre)) > last)
			break;
	}
	if (mrc && mrc != MDB_NOTFOUND)
		return mdb_fail(mrc, "lookup");
	return rc;
}

int qli_index_lookup_hid(qli_ixread *rt, const qli_segfile *sf,
			 uint32_t hid, int roles, uint8_t *bits)
{
	return id_lookup(rt, sf, 'h', NULL, hid, hid, roles, bits);
}

int qli_index_lookup_aids(qli_ixread *rt, const qli_segfile *sf,
			  const uint8_t *idset, uint32_t nid, uint8_t *bits)
{
	uint32_t first = 0, last;

	while (first < nid && !((idset[first / 8] >> (first % 8)) & 1))
		first++;
	if (first == nid)
		return 0;
	last = nid - 1;
	while (!((idset[last / 8] >> (last % 8)) & 1))
		last--;
	return id_lookup(rt, sf, 'a', idset, first, last, 0, bits);
}

int qli_index_filter_test(const void *val, size_t len, int ip,
			  const void *key, size_t klen, uint64_t *mask,
			  uint32_t *ncls_out)
{
	const uint8_t *p = val, *bits;
	uint64_t h = filter_hash(key, klen);
	uint32_t ncls, probes;
	size_t need;

	if (len < 4 || p[0] != (ip ? 'a' : 'h'))
		return qli_err(QL_ECORRUPT, "index: bad class filter");
	probes = p[1];
	ncls = (uint32_t)p[2] | (uint32_t)p[3] << 8;
	need = 4 + 4 * (size_t)ncls;
	if (len < need)
		return qli_err(QL_ECORRUPT, "index: bad class filter");
	bits = p + need;
	*mask = 0;
	for (uint32_t c = 0; c < ncls; c++) {
		uint32_t nb = qli_get32(p + 4 + 4 * (size_t)c), i;

		if (!nb || nb > len - need || nb > UINT32_MAX / 8)
			return qli_err(QL_ECORRUPT, "index: bad class filter");
		for (i = 0; i < probes; i++) {
			uint32_t at;

			filter_bit(h, i, nb * 8, &at);
			if (!((bits[at / 8] >> (at % 8)) & 1))
				break;
		}
		if (i == probes && c < 64)
			*mask |= 1ULL << c;
		bits += nb;
		need += nb;
	}
	*ncls_out = ncls;
	return 0;
}

int qli_index_filter(qli_ixread *rt, const qli_segfile *sf, int ip,
		     const void *key, size_t len, uint64_t *mask,
		     uint32_t *ncls_out)
{
	uint8_t k[2 + SEGKEY + 4];
	MDB_val v;
	int rc;

	k[0] = 'S';
	segkey(k + 1, sf->bucket_start, sf->gen);
	k[1 + SEGKEY] = 'f';
	put_be32(k + 2 + SEGKEY, (uint32_t)ip);
	rc = rtxn_get(rt->txn, rt->dbi, k, sizeof(k), &v);
	if (rc)
		return rc;
	return qli_index_filter_test(v.mv_data, v.mv_size, ip, key, len, mask,
				     ncls_out);
}
