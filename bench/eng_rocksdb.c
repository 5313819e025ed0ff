/* eng_rocksdb.c - RocksDB as a benchmarked engine.
 *
 * Layout: one column family per UTC day (named dYYYYMMDD-like by day
 * number), so expiry is DropColumnFamily, never a tombstone storm. Each
 * family holds three kinds of keys, all ending in the record's time and a
 * sequence number so that they sort by time and never collide:
 *
 *   'd' ts8 seq4                    -> svc res ip16 rlen req tlen tgt
 *   'h' handle 0x00 ts8 seq4        -> role mask (1 requester, 2 target)
 *   'i' ip16 ts8 seq4               -> ""
 *
 * ts8 is the time big-endian with the sign bit flipped (so it sorts as a
 * signed number), seq4 a big-endian record number. The handle index has
 * one key per (handle, record): a record whose requester and target were
 * the same handle writes one key with mask 3, so a prefix scan returns
 * each record once for "requester or target". Index scans collect primary
 * keys, then fetch the records with one batched MultiGet per family.
 *
 * Options a competent user would set: zstd on every level, 16 KiB blocks
 * with a 10-bit Bloom filter and a 64 MiB block cache, dynamic level
 * sizes, background jobs scaled to the cores, memtables of all families
 * capped at 256 MiB together (a family of a past day is flushed instead
 * of idling in memory), WAL on without fsync per write (like SQLite's
 * synchronous=NORMAL), 10,000-record write batches.
 */
#define _GNU_SOURCE
#include "engine.h"

#include <rocksdb/c.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEY_MAX (1 + 64 + 1 + 8 + 4 + 8)
#define MGET_CHUNK 1024

struct engine {
	rocksdb_t *db;
	rocksdb_options_t *opt;
	rocksdb_block_based_table_options_t *bbo;
	rocksdb_cache_t *cache;
	rocksdb_writeoptions_t *wo;
	rocksdb_readoptions_t *ro;    /* bounded scans: upper bound below */
	rocksdb_readoptions_t *rget;  /* MultiGet */
	rocksdb_writebatch_t *wb;
	rocksdb_column_family_handle_t **cf; /* by day index; NULL: none */
	unsigned ndays;
	int64_t day0; /* day number of cf[0] */
	uint32_t seq;
	char ub[KEY_MAX + 16]; /* the scan's exclusive upper bound */
	/* primary keys collected by an index scan */
	char (*keys)[13];
	size_t nkeys, capkeys;
};

static int rerr(const char *what, char *err)
{
	bench_seterr("%s: %s", what, err ? err : "?");
	rocksdb_free(err);
	return -1;
}

static const char *rk_version(void)
{
#ifdef BENCH_ROCKSDB_VERSION
	return BENCH_ROCKSDB_VERSION;
#else
	return "?";
#endif
}

static int64_t floor_day(int64_t ts)
{
	int64_t d = ts / US_PER_DAY;

	return (ts % US_PER_DAY < 0) ? d - 1 : d;
}

static void put_be64(char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (char)(v & 0xff);
}

static uint64_t get_be64(const char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | (uint8_t)p[i];
	return v;
}

static void put_ts(char *p, int64_t ts)
{
	put_be64(p, (uint64_t)ts ^ UINT64_C(0x8000000000000000));
}

static int64_t get_ts(const char *p)
{
	return (int64_t)(get_be64(p) ^ UINT64_C(0x8000000000000000));
}

static void put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

static void rk_close(struct engine *e)
{
	if (!e)
		return;
	for (unsigned d = 0; d < e->ndays; d++)
		if (e->cf && e->cf[d])
			rocksdb_column_family_handle_destroy(e->cf[d]);
	if (e->db)
		rocksdb_close(e->db);
	if (e->wb)
		rocksdb_writebatch_destroy(e->wb);
	if (e->wo)
		rocksdb_writeoptions_destroy(e->wo);
	if (e->ro)
		rocksdb_readoptions_destroy(e->ro);
	if (e->rget)
		rocksdb_readoptions_destroy(e->rget);
	if (e->opt)
		rocksdb_options_destroy(e->opt);
	if (e->bbo)
		rocksdb_block_based_options_destroy(e->bbo);
	if (e->cache)
		rocksdb_cache_destroy(e->cache);
	free(e->cf);
	free(e->keys);
	free(e);
}

static int rk_open(struct engine **out, const char *dir,
		   const struct eng_conf *c)
{
	struct engine *e = calloc(1, sizeof(*e));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	char *err = NULL;

	if (!e) {
		bench_seterr("out of memory");
		return -1;
	}
	e->day0 = floor_day(c->start_us);
	e->ndays = (unsigned)(floor_day(c->end_us - 1) - e->day0 + 1);
	e->cf = calloc(e->ndays, sizeof(*e->cf));
	if (!e->cf) {
		bench_seterr("out of memory");
		goto fail;
	}

	e->opt = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(e->opt, 1);
	rocksdb_options_set_create_missing_column_families(e->opt, 1);
	rocksdb_options_increase_parallelism(e->opt, ncpu > 0 ? (int)ncpu : 2);
	rocksdb_options_set_compression(e->opt, rocksdb_zstd_compression);
	rocksdb_options_set_bottommost_compression(e->opt,
						   rocksdb_zstd_compression);
	rocksdb_options_set_level_compaction_dynamic_level_bytes(e->opt, 1);
	rocksdb_options_set_write_buffer_size(e->opt, 64u << 20);
	rocksdb_options_set_db_write_buffer_size(e->opt, 256u << 20);
	rocksdb_options_set_max_total_wal_size(e->opt, 256u << 20);
	/* the info LOG is diagnostics, not data: keep it small */
	rocksdb_options_set_info_log_level(e->opt, 2 /* WARN */);
	rocksdb_options_set_keep_log_file_num(e->opt, 1);

	e->bbo = rocksdb_block_based_options_create();
	e->cache = rocksdb_cache_create_lru(64u << 20);
	rocksdb_block_based_options_set_block_cache(e->bbo, e->cache);
	rocksdb_block_based_options_set_block_size(e->bbo, 16u << 10);
	rocksdb_block_based_options_set_filter_policy(
		e->bbo, rocksdb_filterpolicy_create_bloom_full(10));
	rocksdb_options_set_block_based_table_factory(e->opt, e->bbo);

	if (mkdir_p(dir))
		goto fail;
	e->db = rocksdb_open(e->opt, dir, &err);
	if (!e->db) {
		rerr("rocksdb_open", err);
		goto fail;
	}
	e->wo = rocksdb_writeoptions_create();
	e->ro = rocksdb_readoptions_create();
	e->rget = rocksdb_readoptions_create();
	e->wb = rocksdb_writebatch_create();
	*out = e;
	return 0;
fail:
	rk_close(e);
	return -1;
}

/* The family of day index d, created on first use. */
static rocksdb_column_family_handle_t *day_cf(struct engine *e, int64_t ts,
					      int create)
{
	int64_t d = floor_day(ts) - e->day0;
	char name[32], *err = NULL;

	if (d < 0 || d >= e->ndays) {
		bench_seterr("ts %lld outside the span", (long long)ts);
		return NULL;
	}
	if (e->cf[d] || !create)
		return e->cf[d];
	snprintf(name, sizeof(name), "day%lld", (long long)(d + e->day0));
	e->cf[d] = rocksdb_create_column_family(e->db, e->opt, name, &err);
	if (!e->cf[d])
		rerr("rocksdb_create_column_family", err);
	return e->cf[d];
}

static int rk_ingest(struct engine *e, const wl_record *r, size_t n)
{
	char key[KEY_MAX], val[2 + 16 + 2 * 64];
	char *err = NULL;

	rocksdb_writebatch_clear(e->wb);
	for (size_t i = 0; i < n; i++) {
		rocksdb_column_family_handle_t *cf = day_cf(e, r[i].ts, 1);
		size_t rl = strlen(r[i].requester), tl = strlen(r[i].target);
		uint32_t seq = e->seq++;
		int same = !strcmp(r[i].requester, r[i].target);
		char role;
		size_t vl = 0;

		if (!cf)
			return -1;
		/* primary */
		key[0] = 'd';
		put_ts(key + 1, r[i].ts);
		put_be32(key + 9, seq);
		val[vl++] = (char)r[i].service;
		val[vl++] = (char)r[i].result;
		memcpy(val + vl, r[i].ip, 16);
		vl += 16;
		val[vl++] = (char)rl;
		memcpy(val + vl, r[i].requester, rl);
		vl += rl;
		val[vl++] = (char)tl;
		memcpy(val + vl, r[i].target, tl);
		vl += tl;
		rocksdb_writebatch_put_cf(e->wb, cf, key, 13, val, vl);

		/* handle index: requester, then target */
		key[0] = 'h';
		memcpy(key + 1, r[i].requester, rl);
		key[1 + rl] = '\0';
		put_ts(key + 2 + rl, r[i].ts);
		put_be32(key + 10 + rl, seq);
		role = same ? 3 : 1;
		rocksdb_writebatch_put_cf(e->wb, cf, key, 14 + rl, &role, 1);
		if (!same) {
			memcpy(key + 1, r[i].target, tl);
			key[1 + tl] = '\0';
			put_ts(key + 2 + tl, r[i].ts);
			put_be32(key + 10 + tl, seq);
			role = 2;
			rocksdb_writebatch_put_cf(e->wb, cf, key, 14 + tl,
						  &role, 1);
		}

		/* ip index */
		key[0] = 'i';
		memcpy(key + 1, r[i].ip, 16);
		put_ts(key + 17, r[i].ts);
		put_be32(key + 25, seq);
		rocksdb_writebatch_put_cf(e->wb, cf, key, 29, "", 0);
	}
	rocksdb_write(e->db, e->wo, e->wb, &err);
	if (err)
		return rerr("rocksdb_write", err);
	return 0;
}

static int prop_busy(struct engine *e, uint64_t *busy)
{
	uint64_t v = 0;

	*busy = 0;
	if (rocksdb_property_int(e->db, "rocksdb.num-running-compactions",
				 &v) == 0)
		*busy += v;
	if (rocksdb_property_int(e->db, "rocksdb.num-running-flushes",
				 &v) == 0)
		*busy += v;
	for (unsigned d = 0; d < e->ndays; d++) {
		if (!e->cf[d])
			continue;
		if (rocksdb_property_int_cf(e->db, e->cf[d],
					    "rocksdb.compaction-pending",
					    &v) == 0)
			*busy += v;
	}
	return 0;
}

static int rk_finish(struct engine *e)
{
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	struct timespec ts = { 0, 20 * 1000000L };
	char *err = NULL;
	uint64_t busy;

	/* Flush every family's memtable (so the data is in SST files, as
	 * it will be for all but the newest day), then wait until
	 * compaction has caught up: the debt a write leaves behind is part
	 * of its cost, and queries then run on a settled tree. */
	rocksdb_flushoptions_set_wait(fo, 1);
	for (unsigned d = 0; d < e->ndays && !err; d++)
		if (e->cf[d])
			rocksdb_flush_cf(e->db, fo, e->cf[d], &err);
	rocksdb_flushoptions_destroy(fo);
	if (err)
		return rerr("rocksdb_flush_cf", err);
	for (;;) {
		prop_busy(e, &busy);
		if (!busy)
			break;
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int decode(const char *key, const char *v, size_t vl,
		  struct qsum *out)
{
	wl_record w;
	size_t rl, tl;

	if (vl < 20)
		goto bad;
	w.ts = get_ts(key + 1);
	w.service = (uint8_t)v[0];
	w.result = (uint8_t)v[1];
	memcpy(w.ip, v + 2, 16);
	rl = (uint8_t)v[18];
	if (19 + rl + 1 > vl)
		goto bad;
	tl = (uint8_t)v[19 + rl];
	if (20 + rl + tl != vl)
		goto bad;
	if (put_field(w.requester, v + 19, rl) ||
	    put_field(w.target, v + 20 + rl, tl))
		return -1;
	qsum_add(out, &w);
	return 0;
bad:
	bench_seterr("malformed record value (%zu bytes)", vl);
	return -1;
}

/* Scans [lo, ub) in one family, calling fn on each key and value. */
static int scan(struct engine *e, rocksdb_column_family_handle_t *cf,
		const char *lo, size_t lol, size_t ubl,
		int (*fn)(struct engine *e, const char *k, size_t kl,
			  const char *v, size_t vl, void *ctx),
		void *ctx)
{
	rocksdb_iterator_t *it;
	char *err = NULL;
	int rc = 0;

	rocksdb_readoptions_set_iterate_upper_bound(e->ro, e->ub, ubl);
	it = rocksdb_create_iterator_cf(e->db, e->ro, cf);
	for (rocksdb_iter_seek(it, lo, lol); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl);
		const char *v = rocksdb_iter_value(it, &vl);

		rc = fn(e, k, kl, v, vl, ctx);
		if (rc)
			break;
	}
	if (!rc) {
		rocksdb_iter_get_error(it, &err);
		if (err)
			rc = rerr("iterator", err);
	}
	rocksdb_iter_destroy(it);
	return rc;
}

/* Index key -> primary key 'd' ts8 seq4: the last 12 bytes. */
static int collect(struct engine *e, const char *k, size_t kl,
		   const char *v, size_t vl, void *ctx)
{
	if (kl < 13) {
		bench_seterr("short index key");
		return -1;
	}
	if (e->nkeys == e->capkeys) {
		size_t cap = e->capkeys ? 2 * e->capkeys : 4096;
		char (*nk)[13] = realloc(e->keys, cap * sizeof(*nk));

		if (!nk) {
			bench_seterr("out of memory");
			return -1;
		}
		e->keys = nk;
		e->capkeys = cap;
	}
	e->keys[e->nkeys][0] = 'd';
	memcpy(e->keys[e->nkeys] + 1, k + kl - 12, 12);
	e->nkeys++;
	return 0;
}

static int fetch(struct engine *e, rocksdb_column_family_handle_t *cf,
		 int sorted, struct qsum *out)
{
	const char *kp[MGET_CHUNK];
	size_t ks[MGET_CHUNK];
	rocksdb_pinnableslice_t *vals[MGET_CHUNK];
	char *errs[MGET_CHUNK];
	int rc = 0;

	for (size_t off = 0; off < e->nkeys && !rc; off += MGET_CHUNK) {
		size_t k = e->nkeys - off < MGET_CHUNK ? e->nkeys - off
							: MGET_CHUNK;

		for (size_t i = 0; i < k; i++) {
			kp[i] = e->keys[off + i];
			ks[i] = 13;
		}
		rocksdb_batched_multi_get_cf(e->db, e->rget, cf, k, kp, ks,
					     vals, errs, sorted);
		for (size_t i = 0; i < k; i++) {
			size_t vl;
			const char *v;

			if (errs[i]) {
				if (!rc)
					rc = rerr("multi_get", errs[i]);
				else
					rocksdb_free(errs[i]);
			} else if (!vals[i]) {
				if (!rc) {
					bench_seterr("index points at a "
						     "missing record");
					rc = -1;
				}
			} else if (!rc) {
				v = rocksdb_pinnableslice_value(vals[i], &vl);
				rc = decode(kp[i], v, vl, out);
			}
			if (vals[i])
				rocksdb_pinnableslice_destroy(vals[i]);
		}
	}
	e->nkeys = 0;
	return rc;
}

static int rk_handle(struct engine *e, const char *h, struct qsum *out)
{
	size_t hl = strlen(h);

	if (hl > 64) {
		bench_seterr("handle too long");
		return -1;
	}
	/* [ 'h' h 0x00, 'h' h 0x01 ) */
	e->ub[0] = 'h';
	memcpy(e->ub + 1, h, hl);
	e->ub[1 + hl] = 1;
	for (unsigned d = 0; d < e->ndays; d++) {
		char lo[KEY_MAX];

		if (!e->cf[d])
			continue;
		memcpy(lo, e->ub, 1 + hl);
		lo[1 + hl] = 0;
		e->nkeys = 0;
		if (scan(e, e->cf[d], lo, 2 + hl, 2 + hl, collect, NULL))
			return -1;
		/* index order is (ts, seq): the primary keys are sorted */
		if (fetch(e, e->cf[d], 1, out))
			return -1;
	}
	return 0;
}

static int rk_ip(struct engine *e, const uint8_t net[16], unsigned plen,
		 struct qsum *out)
{
	uint8_t lo[16], hi[16];
	char lok[17];

	ip_range(net, plen, lo, hi);
	lok[0] = 'i';
	memcpy(lok + 1, lo, 16);
	/* exclusive bound above every key 'i' hi ts8 seq4 (29 bytes) */
	e->ub[0] = 'i';
	memcpy(e->ub + 1, hi, 16);
	memset(e->ub + 17, 0xff, 13);
	for (unsigned d = 0; d < e->ndays; d++) {
		if (!e->cf[d])
			continue;
		e->nkeys = 0;
		if (scan(e, e->cf[d], lok, 17, 30, collect, NULL))
			return -1;
		/* several addresses: keys are not in primary order */
		if (fetch(e, e->cf[d], 0, out))
			return -1;
	}
	return 0;
}

static int emit(struct engine *e, const char *k, size_t kl, const char *v,
		size_t vl, void *ctx)
{
	if (kl != 13) {
		bench_seterr("bad primary key length %zu", kl);
		return -1;
	}
	return decode(k, v, vl, ctx);
}

static int rk_window(struct engine *e, int64_t t0, int64_t t1,
		     struct qsum *out)
{
	char lo[9];

	if (t1 <= t0)
		return 0;
	lo[0] = 'd';
	put_ts(lo + 1, t0);
	e->ub[0] = 'd';
	put_ts(e->ub + 1, t1);
	for (int64_t d = floor_day(t0); d <= floor_day(t1 - 1); d++) {
		int64_t i = d - e->day0;

		if (i < 0 || i >= e->ndays || !e->cf[i])
			continue;
		if (scan(e, e->cf[i], lo, 9, 9, emit, out))
			return -1;
	}
	return 0;
}

static int rk_expire(struct engine *e, int64_t before)
{
	for (unsigned d = 0; d < e->ndays; d++) {
		char *err = NULL;

		if (!e->cf[d] || (e->day0 + d + 1) * US_PER_DAY > before)
			continue;
		rocksdb_drop_column_family(e->db, e->cf[d], &err);
		if (err)
			return rerr("rocksdb_drop_column_family", err);
		rocksdb_column_family_handle_destroy(e->cf[d]);
		e->cf[d] = NULL;
	}
	return 0;
}

const struct engine_ops eng_rocksdb = {
	.name = "rocksdb",
	.batch = 10000,
	.config = "column family per day (dropped for expiry), zstd all "
		  "levels, 16 KiB blocks, bloom 10 bits, 64 MiB block cache, "
		  "memtables 64 MiB/family 256 MiB total, WAL without fsync, "
		  "handle+ip index keys, 10000-record write batches, flush and "
		  "wait for compaction at end",
	.version = rk_version,
	.open = rk_open,
	.ingest = rk_ingest,
	.finish = rk_finish,
	.q_handle = rk_handle,
	.q_ip = rk_ip,
	.q_window = rk_window,
	.expire = rk_expire,
	.close = rk_close,
};
