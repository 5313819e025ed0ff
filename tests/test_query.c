/* test_query.c - lookups by handle and IP checked against a model.
 *
 * Random records go through the store and are kept in memory; every query
 * (each handle in each role, exact IPs and CIDR prefixes of many lengths,
 * with and without time windows) is answered by the store and by a
 * brute-force scan of the model, and the two must agree in count, content
 * (an order-independent sum of record hashes) and time order. The same
 * queries run with the index lagging the segments, after sealing, after
 * reopening, after the index is deleted (rebuilt on open), after
 * ql_reindex, from a read-only handle, and on a copy of the store taken
 * between block writes and their index commit (what a crash leaves). */
#include "testutil.h"

#include "dict.h"
#include "index.h"
#include "store_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#define NH 40
#define NIP 24
#define NREC 6000

typedef struct model {
	char handles[NH][48];
	uint8_t ips[NIP][16];
	ql_record *recs;
	char (*req)[48], (*tgt)[48];
	size_t n;
} model;

typedef struct fx {
	char dir[256];
	int64_t now;
	ql_options opt;
	ql_store *s;
	model m;
	uint64_t rng;
} fx;

static void make_pool(model *m, uint64_t *rng)
{
	for (int i = 0; i < NH; i++) {
		if (i % 4 == 3)
			snprintf(m->handles[i], 48, "user%d@mail%d.example", i,
				 i % 3);
		else
			snprintf(m->handles[i], 48, "+4479%08u",
				 (unsigned)(t_rand(rng) % 100000000));
	}
	for (int i = 0; i < NIP; i++) {
		memset(m->ips[i], 0, 16);
		if (i < 16) { /* IPv4 in three /24s */
			m->ips[i][10] = m->ips[i][11] = 0xff;
			m->ips[i][12] = 81;
			m->ips[i][13] = 2;
			m->ips[i][14] = (uint8_t)(i % 3);
			m->ips[i][15] = (uint8_t)(t_rand(rng) % 256);
		} else if (i < 20) { /* IPv6 below ::ffff:0:0 (sorted apart) */
			for (int k = 12; k < 16; k++)
				m->ips[i][k] = (uint8_t)t_rand(rng);
			m->ips[i][11] = (uint8_t)(i % 2);
		} else { /* IPv6 in two /48s */
			m->ips[i][0] = 0x2a;
			m->ips[i][1] = 0x01;
			m->ips[i][5] = (uint8_t)(i % 2);
			for (int k = 8; k < 16; k++)
				m->ips[i][k] = (uint8_t)t_rand(rng);
		}
	}
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	t_tmpdir(f->dir, sizeof(f->dir));
	t_setclock(&f->now, T_EPOCH + 12 * T_HOUR);
	f->opt = (ql_options)QL_OPTIONS_INIT;
	f->opt.flags = QL_OPEN_CREATE;
	f->opt.clock = t_clock;
	f->opt.clock_ctx = &f->now;
	f->opt.maintenance_interval_ms = -1;
	f->opt.bucket_width_us = T_HOUR;
	f->opt.seal_grace_us = T_MIN;
	f->opt.block_records = 64;
	f->rng = 42;
	make_pool(&f->m, &f->rng);
	f->m.recs = calloc(2 * NREC, sizeof(*f->m.recs));
	f->m.req = calloc(2 * NREC, 48);
	f->m.tgt = calloc(2 * NREC, 48);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	ql_close(f->s);
	t_cleanup(f->dir);
	free(f->m.recs);
	free(f->m.req);
	free(f->m.tgt);
	free(f);
	return 0;
}

/* Appends n records with times in [t0, t0 + span), recording them. */
static void add(fx *f, size_t n, int64_t t0, int64_t span)
{
	model *m = &f->m;
	size_t first = m->n;

	for (size_t i = 0; i < n; i++) {
		ql_record *r = &m->recs[m->n];
		unsigned a = (unsigned)(t_rand(&f->rng) % NH);
		unsigned b = (unsigned)(t_rand(&f->rng) % NH);

		snprintf(m->req[m->n], 48, "%s", m->handles[a]);
		snprintf(m->tgt[m->n], 48, "%s", m->handles[b]);
		r->ts = t0 + (int64_t)(t_rand(&f->rng) % (uint64_t)span);
		r->requester = m->req[m->n];
		r->target = m->tgt[m->n];
		memcpy(r->ip, m->ips[t_rand(&f->rng) % NIP], 16);
		r->service = (uint8_t)(t_rand(&f->rng) % 2);
		r->result = (uint8_t)(t_rand(&f->rng) % 2);
		m->n++;
	}
	for (size_t i = first; i < m->n; i += 50) {
		size_t k = m->n - i < 50 ? m->n - i : 50;

		assert_int_equal(ql_append(f->s, &m->recs[i], k, NULL), 0);
	}
}

static int ip_in(const uint8_t *ip, const uint8_t *net, unsigned plen)
{
	for (unsigned bit = 0; bit < plen; bit++) {
		unsigned byte = bit / 8, sh = 7 - bit % 8;

		if (((ip[byte] >> sh) & 1) != ((net[byte] >> sh) & 1))
			return 0;
	}
	return 1;
}

static int model_match(const ql_query *q, const ql_record *r)
{
	if (q->since && r->ts < q->since)
		return 0;
	if (q->until && r->ts >= q->until)
		return 0;
	switch (q->match) {
	case QL_MATCH_HANDLE:
		return (q->role != QL_ROLE_TARGET &&
			!strcmp(r->requester, q->handle)) ||
		       (q->role != QL_ROLE_REQUESTER &&
			!strcmp(r->target, q->handle));
	case QL_MATCH_IP:
		return ip_in(r->ip, q->ip, q->prefix_len);
	default:
		return 1;
	}
}

static void check_query(ql_store *s, const model *m, const ql_query *q)
{
	uint64_t want = 0, wsum = 0, got = 0, gsum = 0;
	const ql_record *rec;
	int64_t last = INT64_MIN;
	ql_cursor *c;
	int rc;

	for (size_t i = 0; i < m->n; i++)
		if (model_match(q, &m->recs[i])) {
			want++;
			wsum += t_hash(&m->recs[i]);
		}
	assert_int_equal(ql_cursor_open(&c, s, q), 0);
	while ((rc = ql_cursor_next(c, &rec)) == QL_ROW) {
		assert_true(model_match(q, rec));
		assert_true(rec->ts >= last);
		last = rec->ts;
		got++;
		gsum += t_hash(rec);
	}
	assert_int_equal(rc, QL_DONE);
	ql_cursor_close(c);
	if (got != want || gsum != wsum)
		fail_msg("query match=%d role=%d handle=%s prefix=%u "
			 "window=[%lld,%lld): got %llu want %llu",
			 q->match, q->role, q->handle ? q->handle : "-",
			 q->prefix_len, (long long)q->since,
			 (long long)q->until, (unsigned long long)got,
			 (unsigned long long)want);
}

/* Every query of the model, with and without a few windows. */
static unsigned check_all(ql_store *s, const model *m, uint64_t seed)
{
	static const unsigned v4pre[] = { 96, 104, 112, 118, 120, 124, 128 };
	static const unsigned v6pre[] = { 0, 1, 16, 47, 48, 63, 64, 127,
					  128 };
	int64_t windows[4][2] = { { 0, 0 } };
	uint64_t rng = seed;
	unsigned nq = 0;

	for (int w = 1; w < 4; w++) {
		windows[w][0] = T_EPOCH + (int64_t)(t_rand(&rng) % (12 * T_HOUR));
		windows[w][1] = windows[w][0] + (int64_t)(t_rand(&rng) %
							  (3 * T_HOUR));
	}
	windows[3][1] = 0; /* open-ended */
	for (int w = 0; w < 4; w++) {
		ql_query q = QL_QUERY_INIT;

		q.since = windows[w][0];
		q.until = windows[w][1];
		check_query(s, m, &q), nq++;
		q.match = QL_MATCH_HANDLE;
		for (int h = 0; h < NH; h++)
			for (int role = 0; role < 3; role++) {
				q.handle = m->handles[h];
				q.role = role;
				check_query(s, m, &q), nq++;
			}
		/* a handle that is nowhere */
		q.handle = "+19995550000";
		q.role = QL_ROLE_ANY;
		check_query(s, m, &q), nq++;
		q.match = QL_MATCH_IP;
		for (int i = 0; i < NIP; i++) {
			const unsigned *pre = i < 16 ? v4pre : v6pre;
			size_t np = i < 16 ? 7 : 9;

			memcpy(q.ip, m->ips[i], 16);
			for (size_t k = 0; k < np; k++) {
				q.prefix_len = pre[k];
				check_query(s, m, &q), nq++;
			}
			q.prefix_len = (unsigned)(t_rand(&rng) % 129);
			check_query(s, m, &q), nq++;
		}
		/* ::ffff:0:0/96 = every IPv4 address */
		memset(q.ip, 0, 16);
		q.ip[10] = q.ip[11] = 0xff;
		q.prefix_len = 96;
		check_query(s, m, &q), nq++;
	}
	return nq;
}

static void seal_some(fx *f)
{
	/* the clock passes the first hours: their buckets are sealed */
	t_setclock(&f->now, T_EPOCH + 13 * T_HOUR);
	assert_int_equal(ql_maintain(f->s), 0);
}

static void copy_dir(const char *from, const char *to)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

static void test_queries_match_model_in_every_phase(void **state)
{
	fx *f = *state;
	ql_options ro;
	ql_store *r;
	char copy[300], path[400];
	unsigned nq = 0;

	/* history in hours 0-7 (sealed at the first maintenance) and the
	 * open hours 11-12 */
	t_setclock(&f->now, T_EPOCH + 8 * T_HOUR);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	add(f, NREC / 2, T_EPOCH, 8 * T_HOUR);
	assert_int_equal(ql_sync(f->s), 0);
	/* phase 1: just synced, the index may lag: answers still exact */
	nq += check_all(f->s, &f->m, 1);
	seal_some(f);
	add(f, NREC / 2, T_EPOCH + 11 * T_HOUR, T_HOUR + 30 * T_MIN);
	/* late records into sealed buckets: a new generation */
	add(f, 300, T_EPOCH + 2 * T_HOUR, 3 * T_HOUR);
	assert_int_equal(ql_sync(f->s), 0);
	/* a copy now is what a crash between block writes and their index
	 * commit leaves behind */
	snprintf(copy, sizeof(copy), "%s.crashcopy", f->dir);
	copy_dir(f->dir, copy);
	nq += check_all(f->s, &f->m, 2);
	assert_int_equal(ql_maintain(f->s), 0);
	nq += check_all(f->s, &f->m, 3);

	/* reopen */
	assert_int_equal(ql_close(f->s), 0);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	nq += check_all(f->s, &f->m, 4);
	/* a read-only handle in the same process */
	ro = f->opt;
	ro.flags = QL_OPEN_READONLY;
	assert_int_equal(ql_open(&r, f->dir, &ro), 0);
	nq += check_all(r, &f->m, 5);
	assert_int_equal(ql_close(r), 0);
	/* ql_reindex */
	assert_int_equal(ql_reindex(f->s), 0);
	nq += check_all(f->s, &f->m, 6);
	/* the index deleted: rebuilt on open */
	assert_int_equal(ql_close(f->s), 0);
	f->s = NULL;
	snprintf(path, sizeof(path), "%s/index/data.mdb", f->dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	{
		ql_stats st;

		assert_int_equal(ql_stat(f->s, &st), 0);
		assert_true(st.reindexed_segments > 0);
		assert_int_equal(st.index_error, 0);
	}
	nq += check_all(f->s, &f->m, 7);
	/* the crash copy opens, catches its index up, answers the same */
	assert_int_equal(ql_close(f->s), 0);
	assert_int_equal(ql_open(&f->s, copy, &f->opt), 0);
	nq += check_all(f->s, &f->m, 8);
	assert_int_equal(ql_close(f->s), 0);
	f->s = NULL;
	t_rmrf(copy);
	print_message("%u queries checked against the model\n", nq);
}

/* A compact segment's index, checked against the file itself: for every
 * handle and address id, the blocks the id-keyed chunks give are exactly
 * the blocks that hold the id, and the class filter of its key admits its
 * frequency class (a Bloom filter may admit more, never less). */
static void check_compact_index(fx *f, qli_index *ix, int segdir,
				const char *name, unsigned *nids,
				unsigned *extra)
{
	qli_segfile sf;
	qli_ixread *rt = NULL;
	qli_decoder *d = qli_decoder_new();
	qli_block blk = { 0 };
	qli_buf buf = { 0 };
	qli_frame_hdr h;
	uint8_t **truth[2];
	int64_t start;
	uint32_t gen;

	(void)f;
	assert_int_equal(qli_segfile_load(&sf, segdir, name, 0), 0);
	assert_int_equal(qli_segfile_load_dicts(&sf), 0);
	/* truth[ip][id]: bitmap of the blocks that hold the id (handles:
	 * as requester or target) */
	for (int ip = 0; ip < 2; ip++) {
		uint32_t n = ip ? sf.di.n : sf.dh.n;

		truth[ip] = calloc(n, sizeof(uint8_t *));
		for (uint32_t i = 0; i < n; i++)
			truth[ip][i] = calloc(sf.nblk / 8 + 1, 1);
	}
	for (uint32_t b = 0; b < sf.nblk; b++) {
		assert_int_equal(qli_segfile_read_block(&sf, b, &buf, &h), 0);
		assert_int_equal(qli_idblock_decode(d, &blk, &h,
						    buf.p + QLI_FRAME_HDR,
						    sf.dh.n, sf.di.n), 0);
		for (uint32_t i = 0; i < blk.n; i++) {
			truth[0][blk.req[i]][b / 8] |= (uint8_t)(1 << (b % 8));
			truth[0][blk.tgt[i]][b / 8] |= (uint8_t)(1 << (b % 8));
			truth[1][blk.ipi[i]][b / 8] |= (uint8_t)(1 << (b % 8));
		}
	}
	assert_int_equal(qli_seg_name_parse(name, &start, &gen), 0);
	assert_int_equal(qli_index_begin(ix, &rt), 0);
	{
		qli_segfile dir;

		memset(&dir, 0, sizeof(dir));
		assert_int_equal(qli_index_get_dir(rt, start, gen,
						   sf.bucket_width, &dir), 0);
		assert_true(dir.compact && dir.ix_byid);
		qli_segfile_close(&dir);
	}
	for (int ip = 0; ip < 2; ip++) {
		const qli_dict *dc = ip ? &sf.di : &sf.dh;
		uint32_t n = dc->n;
		uint8_t *set = calloc(n / 8 + 1, 1);

		for (uint32_t k = 0; k < dc->npage; k++) {
			qli_dpage pg = { 0 };
			uint32_t cls = 0;

			assert_int_equal(qli_segfile_read_page(&sf, ip, k, &buf,
							       &h), 0);
			assert_int_equal(qli_dpage_decode(d, &pg, &h,
							  buf.p + QLI_FRAME_HDR,
							  dc->page[k].first), 0);
			while (dc->cls[cls + 1] <= pg.first)
				cls++;
			for (uint32_t i = 0; i < pg.count; i++) {
				uint32_t id = pg.first + i;
				uint8_t *bits = calloc(sf.nblk / 8 + 1, 1);
				uint64_t mask = 0;
				uint32_t ncls = 0;

				if (ip) {
					set[id / 8] = (uint8_t)(1 << (id % 8));
					assert_int_equal(qli_index_lookup_aids(
						rt, &sf, set, n, bits), 0);
					set[id / 8] = 0;
				} else {
					assert_int_equal(qli_index_lookup_hid(
						rt, &sf, id,
						QLI_LOOK_REQ | QLI_LOOK_TGT,
						bits), 0);
				}
				assert_memory_equal(bits, truth[ip][id],
						    sf.nblk / 8 + 1);
				assert_int_equal(qli_index_filter(
					rt, &sf, ip,
					ip ? (const void *)pg.ip[i]
					   : (const void *)pg.key[i],
					ip ? 16 : pg.len[i], &mask, &ncls),
						 0);
				assert_int_equal(ncls, dc->ncls);
				assert_true((mask >> cls) & 1);
				*extra += (unsigned)__builtin_popcountll(mask) - 1;
				(*nids)++;
				free(bits);
			}
			qli_dpage_free(&pg);
		}
		for (uint32_t i = 0; i < n; i++)
			free(truth[ip][i]);
		free(truth[ip]);
		free(set);
	}
	qli_index_end(rt);
	qli_block_free(&blk);
	qli_buf_free(&buf);
	qli_decoder_free(d);
	qli_segfile_close(&sf);
}

static void test_compact_index_matches_files(void **state)
{
	fx *f = *state;
	qli_index *ix = NULL;
	char path[400];
	int dirfd, segdir;
	unsigned nseg = 0, nids = 0, extra = 0;
	struct dirent *e;
	DIR *dh;

	t_setclock(&f->now, T_EPOCH + 8 * T_HOUR);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	add(f, NREC, T_EPOCH, 6 * T_HOUR);
	/* one hour of 40,000 more: 20 compact blocks, so the pool's
	 * handles and addresses have dense block lists (bitmaps) */
	for (int i = 0; i < 40000; i++) {
		ql_record r = f->m.recs[i % NREC];

		r.ts = T_EPOCH + (int64_t)i * (T_HOUR / 40000);
		assert_int_equal(ql_append(f->s, &r, 1, NULL), 0);
	}
	/* and handles seen once: sparse block lists */
	for (int i = 0; i < 300; i++) {
		ql_record r = f->m.recs[i];
		char tgt[32];

		snprintf(tgt, sizeof(tgt), "+1555%07d", i);
		r.target = tgt;
		r.ts = T_EPOCH + (int64_t)i * (6 * T_HOUR / 300);
		assert_int_equal(ql_append(f->s, &r, 1, NULL), 0);
	}
	t_setclock(&f->now, T_EPOCH + 13 * T_HOUR);
	assert_int_equal(ql_maintain(f->s), 0); /* seals and compacts */
	dirfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	snprintf(path, sizeof(path), "%s/seg", f->dir);
	segdir = open(path, O_RDONLY | O_DIRECTORY);
	assert_true(dirfd >= 0 && segdir >= 0);
	assert_int_equal(qli_index_open(&ix, dirfd, f->dir, 0, 0, 0), 0);
	assert_non_null(ix);
	dh = opendir(path);
	while ((e = readdir(dh))) {
		size_t l = strlen(e->d_name);

		if (l > 4 && !strcmp(e->d_name + l - 4, ".qlc")) {
			check_compact_index(f, ix, segdir, e->d_name, &nids,
					    &extra);
			nseg++;
		}
	}
	closedir(dh);
	qli_index_close(ix);
	close(segdir);
	close(dirfd);
	assert_true(nseg >= 6);
	print_message("%u compact segments, %u ids: postings exact, every "
		      "key admitted by its class filter (%u extra classes "
		      "admitted)\n", nseg, nids, extra);
}

static void test_bad_queries_refused(void **state)
{
	fx *f = *state;
	ql_query q = QL_QUERY_INIT;
	ql_cursor *c = NULL;

	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	q.match = QL_MATCH_HANDLE;
	q.handle = "+1 415";
	assert_int_equal(ql_cursor_open(&c, f->s, &q), QL_EINVAL);
	assert_null(c);
	assert_non_null(strstr(ql_errmsg(NULL), "handle"));
	q.handle = "+14155550123";
	q.role = 7;
	assert_int_equal(ql_cursor_open(&c, f->s, &q), QL_EINVAL);
	q = (ql_query)QL_QUERY_INIT;
	q.match = QL_MATCH_IP;
	q.prefix_len = 129;
	assert_int_equal(ql_cursor_open(&c, f->s, &q), QL_EINVAL);
	assert_non_null(strstr(ql_errmsg(NULL), "129"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_queries_match_model_in_every_phase, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_compact_index_matches_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_queries_refused,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
