/* test_store.c - the public API of the core engine: append, sync, scan,
 * sealing on the clock, late records, reopen, locking, bad input, torn
 * tails, verification. */
#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "codec.h"
#include "segment.h"

typedef struct fx {
	char dir[256];
	int64_t now;
	ql_options opt;
	ql_store *s;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	t_tmpdir(f->dir, sizeof(f->dir));
	t_setclock(&f->now, T_EPOCH + 2 * T_DAY + 12 * T_HOUR); /* 2026-11-03T12:00Z */
	f->opt = (ql_options)QL_OPTIONS_INIT;
	f->opt.flags = QL_OPEN_CREATE;
	f->opt.clock = t_clock;
	f->opt.clock_ctx = &f->now;
	f->opt.maintenance_interval_ms = -1;
	f->opt.block_records = 256;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	ql_close(f->s);
	t_cleanup(f->dir);
	free(f);
	return 0;
}

static void reopen(fx *f)
{
	assert_int_equal(ql_close(f->s), 0);
	f->s = NULL;
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
}

/* Appends n records from ts0 on, step apart, about 2% late by up to 5
 * minutes; returns the sum of their hashes. */
static uint64_t append_stream(fx *f, uint64_t seed, int64_t ts0, int64_t step,
			      unsigned n)
{
	uint64_t rng = seed, sum = 0;
	t_rec t;

	for (unsigned i = 0; i < n; i++) {
		int64_t ts = ts0 + (int64_t)i * step;

		if (t_rand(&rng) % 50 == 0)
			ts -= 1 + (int64_t)(t_rand(&rng) % (5 * T_MIN));
		t_make(&t, &rng, ts, 500);
		assert_int_equal(ql_append(f->s, &t.r, 1, NULL), 0);
		sum += t_hash(&t.r);
	}
	return sum;
}

typedef struct scanres {
	uint64_t n, sum;
	int ordered;
} scanres;

static scanres scan(ql_store *s, int64_t since, int64_t until)
{
	ql_query q = QL_QUERY_INIT;
	scanres r = { 0, 0, 1 };
	const ql_record *rec;
	ql_cursor *c;
	int64_t last = INT64_MIN;
	int rc;

	q.since = since;
	q.until = until;
	assert_int_equal(ql_cursor_open(&c, s, &q), 0);
	while ((rc = ql_cursor_next(c, &rec)) == QL_ROW) {
		if (rec->ts < last)
			r.ordered = 0;
		last = rec->ts;
		r.n++;
		r.sum += t_hash(rec);
	}
	assert_int_equal(rc, QL_DONE);
	ql_cursor_close(c);
	return r;
}

static void test_append_scan_in_time_order(void **state)
{
	fx *f = *state;
	uint64_t sum;
	scanres r;

	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	/* 1.5 days ending at now: spans two buckets */
	sum = append_stream(f, 1, f->now - 36 * T_HOUR, 13 * T_SEC, 9000);
	assert_int_equal(ql_sync(f->s), 0);
	r = scan(f->s, 0, 0);
	assert_int_equal(r.n, 9000);
	assert_true(r.sum == sum);
	assert_true(r.ordered);
	reopen(f);
	r = scan(f->s, 0, 0);
	assert_int_equal(r.n, 9000);
	assert_true(r.sum == sum);
}

static void test_time_window_matches_brute_force(void **state)
{
	fx *f = *state;
	int64_t ts0 = f->now - 30 * T_HOUR;
	uint64_t rng = 7;
	t_rec t;

	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	append_stream(f, 3, ts0, 11 * T_SEC, 8000);
	assert_int_equal(ql_sync(f->s), 0);
	for (int k = 0; k < 20; k++) {
		int64_t a = ts0 + (int64_t)(t_rand(&rng) % (30 * T_HOUR));
		int64_t b = a + (int64_t)(t_rand(&rng) % (4 * T_HOUR));
		uint64_t want = 0, wsum = 0, r2 = 3;
		scanres r;

		/* regenerate the same stream and count what falls inside */
		for (unsigned i = 0; i < 8000; i++) {
			int64_t ts = ts0 + (int64_t)i * 11 * T_SEC;

			if (t_rand(&r2) % 50 == 0)
				ts -= 1 + (int64_t)(t_rand(&r2) % (5 * T_MIN));
			t_make(&t, &r2, ts, 500);
			if (ts >= a && ts < b) {
				want++;
				wsum += t_hash(&t.r);
			}
		}
		r = scan(f->s, a, b);
		assert_int_equal(r.n, want);
		assert_true(r.sum == wsum);
		assert_true(r.ordered);
	}
}

typedef struct seginfo_acc {
	int n, sealed;
	uint32_t maxgen;
	int damaged;
	char bad[64];
} seginfo_acc;

static int acc_seg(const ql_segment_info *i, void *ctx)
{
	seginfo_acc *a = ctx;

	a->n++;
	a->sealed += i->sealed;
	if (i->generation > a->maxgen)
		a->maxgen = i->generation;
	if (i->status) {
		a->damaged++;
		snprintf(a->bad, sizeof(a->bad), "%s", i->name);
	}
	return 0;
}

static void test_seal_on_clock_and_late_generation(void **state)
{
	fx *f = *state;
	seginfo_acc a = { 0 };
	uint64_t rng = 5;
	t_rec t;
	scanres r;

	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	/* records in today's bucket (day 2), then no record arrives */
	append_stream(f, 9, f->now - T_HOUR, T_SEC, 500);
	assert_int_equal(ql_sync(f->s), 0);
	assert_int_equal(ql_maintain(f->s), 0);
	assert_int_equal(ql_segments(f->s, 0, acc_seg, &a), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.sealed, 0);
	/* the clock passes the bucket's end plus the grace period */
	t_setclock(&f->now, T_EPOCH + 3 * T_DAY + 11 * T_MIN);
	assert_int_equal(ql_maintain(f->s), 0);
	memset(&a, 0, sizeof(a));
	assert_int_equal(ql_segments(f->s, 0, acc_seg, &a), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.sealed, 1);
	/* a late record for the sealed bucket goes to generation 1 */
	t_make(&t, &rng, T_EPOCH + 2 * T_DAY + 5 * T_HOUR, 500);
	assert_int_equal(ql_append(f->s, &t.r, 1, NULL), 0);
	assert_int_equal(ql_sync(f->s), 0);
	memset(&a, 0, sizeof(a));
	assert_int_equal(ql_segments(f->s, 1, acc_seg, &a), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.maxgen, 1);
	r = scan(f->s, 0, 0);
	assert_int_equal(r.n, 501);
	assert_true(r.ordered);
	/* and generation 1 is sealed on the next tick */
	assert_int_equal(ql_maintain(f->s), 0);
	memset(&a, 0, sizeof(a));
	assert_int_equal(ql_segments(f->s, 1, acc_seg, &a), 0);
	assert_int_equal(a.sealed, 2);
	reopen(f);
	r = scan(f->s, 0, 0);
	assert_int_equal(r.n, 501);
}

/* The segments of one bucket: how many, the highest generation, how many
 * sealed. */
typedef struct bucket_acc {
	int64_t start;
	int n, sealed;
	uint32_t maxgen;
} bucket_acc;

static int acc_bucket(const ql_segment_info *i, void *ctx)
{
	bucket_acc *a = ctx;

	if (i->bucket_start != a->start)
		return 0;
	a->n++;
	a->sealed += i->sealed;
	if (i->generation > a->maxgen)
		a->maxgen = i->generation;
	return 0;
}

static bucket_acc bucket_state(fx *f, int64_t start)
{
	bucket_acc a = { start, 0, 0, 0 };

	assert_int_equal(ql_segments(f->s, 0, acc_bucket, &a), 0);
	return a;
}

/* Waits (up to 10 s) for the writer to seal the bucket: sealing by the
 * records' times happens on the writer thread, after the sync that
 * follows the appends is answered. */
static bucket_acc wait_sealed(fx *f, int64_t start)
{
	bucket_acc a = bucket_state(f, start);

	for (int i = 0; i < 1000 && a.sealed < a.n; i++) {
		usleep(10000);
		a = bucket_state(f, start);
	}
	return a;
}

static uint64_t count_handle(ql_store *s, const char *handle, int64_t ts,
			     uint64_t hash)
{
	ql_query q = QL_QUERY_INIT;
	const ql_record *rec;
	ql_cursor *c;
	uint64_t n = 0;
	int rc;

	q.match = QL_MATCH_HANDLE;
	q.handle = handle;
	assert_int_equal(ql_cursor_open(&c, s, &q), 0);
	while ((rc = ql_cursor_next(c, &rec)) == QL_ROW)
		n += rec->ts == ts && t_hash(rec) == hash;
	assert_int_equal(rc, QL_DONE);
	ql_cursor_close(c);
	return n;
}

/* An import of history: the store's clock is far ahead of the records,
 * no maintenance tick runs after the one at open (an hourly interval),
 * and records arrive faster than a bucket can go idle for a second. A bucket is sealed once the records
 * are an hour past its end and it has taken none of the last
 * block_records records: in one generation (its late records, up to 5
 * minutes late, arrived before), while the bucket being filled stays
 * open, even after one record far ahead of the others. Late records after
 * the seal go to a new generation and are found. */
static void test_import_seals_behind_stream(void **state)
{
	fx *f = *state;
	int64_t day0 = T_EPOCH, day1 = T_EPOCH + T_DAY;
	uint64_t sum, rng = 17;
	bucket_acc a;
	t_rec t, late;
	scanres r;

	f->opt.maintenance_interval_ms = 3600 * 1000;
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	/* day 0 and the first 3 hours of day 1, every 20 s, 2% late */
	sum = append_stream(f, 11, day0, 20 * T_SEC, 27 * 180);
	assert_int_equal(ql_sync(f->s), 0);
	a = wait_sealed(f, day0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.sealed, 1);
	assert_int_equal(a.maxgen, 0);
	/* day 1 is 3 hours in: not past by the records' times */
	a = bucket_state(f, day1);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.sealed, 0);

	/* one record at the clock's time (an outlier in an import) moves
	 * the stream far past day 1, which keeps taking records: it is not
	 * sealed under them */
	t_make(&t, &rng, f->now, 500);
	assert_int_equal(ql_append(f->s, &t.r, 1, NULL), 0);
	sum += t_hash(&t.r);
	sum += append_stream(f, 12, day1 + 3 * T_HOUR, 20 * T_SEC, 300);
	assert_int_equal(ql_sync(f->s), 0);
	a = bucket_state(f, day1);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.sealed, 0);
	assert_int_equal(a.maxgen, 0);

	/* a record for day 0 after its seal: generation 1, found by time
	 * and through the index */
	t_make(&late, &rng, day0 + 5 * T_HOUR + 7, 500);
	assert_int_equal(ql_append(f->s, &late.r, 1, NULL), 0);
	sum += t_hash(&late.r);
	assert_int_equal(ql_sync(f->s), 0);
	a = bucket_state(f, day0);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.maxgen, 1);
	r = scan(f->s, 0, 0);
	assert_int_equal(r.n, 27 * 180 + 1 + 300 + 1);
	assert_true(r.sum == sum);
	assert_true(r.ordered);
	assert_int_equal(count_handle(f->s, late.req, late.r.ts,
				      t_hash(&late.r)), 1);

	/* ql_maintain seals what is over; everything is there once after
	 * a reopen */
	assert_int_equal(ql_maintain(f->s), 0);
	a = bucket_state(f, day1);
	assert_int_equal(a.sealed, a.n);
	reopen(f);
	r = scan(f->s, 0, 0);
	assert_int_equal(r.n, 27 * 180 + 1 + 300 + 1);
	assert_true(r.sum == sum);
	assert_int_equal(count_handle(f->s, late.req, late.r.ts,
				      t_hash(&late.r)), 1);
}

/* Without background maintenance (a negative interval) the caller seals,
 * with ql_maintain: records far past a bucket do not seal it. */
static void test_no_maintenance_no_seal_by_records(void **state)
{
	fx *f = *state;
	bucket_acc a;

	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	append_stream(f, 13, T_EPOCH, 20 * T_SEC, 27 * 180);
	assert_int_equal(ql_sync(f->s), 0);
	usleep(50000);
	a = bucket_state(f, T_EPOCH);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.sealed, 0);
	assert_int_equal(ql_maintain(f->s), 0);
	a = bucket_state(f, T_EPOCH);
	assert_int_equal(a.sealed, 1);
}

static void test_second_writer_busy_reader_ok(void **state)
{
	fx *f = *state;
	ql_options ro = f->opt;
	ql_store *s2 = NULL;

	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	append_stream(f, 2, f->now - T_HOUR, T_SEC, 100);
	assert_int_equal(ql_sync(f->s), 0);
	assert_int_equal(ql_open(&s2, f->dir, &f->opt), QL_EBUSY);
	assert_null(s2);
	assert_non_null(strstr(ql_errmsg(NULL), "another process"));
	ro.flags = QL_OPEN_READONLY;
	assert_int_equal(ql_open(&s2, f->dir, &ro), 0);
	assert_int_equal(scan(s2, 0, 0).n, 100);
	{
		t_rec t;
		uint64_t rng = 1;

		t_make(&t, &rng, f->now, 10);
		assert_int_equal(ql_append(s2, &t.r, 1, NULL), QL_EREADONLY);
	}
	assert_int_equal(ql_close(s2), 0);
}

static void test_bad_input_names_field_value_rule(void **state)
{
	fx *f = *state;
	uint64_t rng = 4;
	t_rec t[8];
	size_t bad = 99;

	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	for (int i = 0; i < 8; i++)
		t_make(&t[i], &rng, f->now - T_MIN, 100);

	t[0].r.requester = "+1-415-555";
	assert_int_equal(ql_append(f->s, &t[0].r, 1, NULL), QL_EINVAL);
	assert_non_null(strstr(ql_errmsg(NULL), "requester"));
	assert_non_null(strstr(ql_errmsg(NULL), "+1-415-555"));
	t[0].r.requester = t[0].req;

	t[0].r.target = "not a handle";
	assert_int_equal(ql_append(f->s, &t[0].r, 1, NULL), QL_EINVAL);
	assert_non_null(strstr(ql_errmsg(NULL), "target"));
	t[0].r.target = t[0].tgt;

	t[0].r.ts = f->now + 6 * T_MIN;
	assert_int_equal(ql_append(f->s, &t[0].r, 1, NULL), QL_ERANGE);
	assert_non_null(strstr(ql_errmsg(NULL), "future"));
	t[0].r.ts = f->now - 31 * T_DAY;
	assert_int_equal(ql_append(f->s, &t[0].r, 1, NULL), QL_ERANGE);
	assert_non_null(strstr(ql_errmsg(NULL), "retention"));
	t[0].r.ts = f->now;

	t[0].r.result = 2;
	assert_int_equal(ql_append(f->s, &t[0].r, 1, NULL), QL_EINVAL);
	assert_non_null(strstr(ql_errmsg(NULL), "result"));
	t[0].r.result = 1;

	/* all or nothing: record 5 of 8 is bad, none goes in */
	{
		ql_record batch[8];

		for (int i = 0; i < 8; i++)
			batch[i] = t[i].r;
		batch[5].target = "mailto:";
		assert_int_equal(ql_append(f->s, batch, 8, &bad), QL_EINVAL);
		assert_int_equal(bad, 5);
		assert_non_null(strstr(ql_errmsg(NULL), "target"));
		assert_int_equal(ql_sync(f->s), 0);
		assert_int_equal(scan(f->s, 0, 0).n, 0);
		batch[5].target = "tel:+442071838750";
		assert_int_equal(ql_append(f->s, batch, 8, &bad), 0);
		assert_int_equal(ql_sync(f->s), 0);
		assert_int_equal(scan(f->s, 0, 0).n, 8);
	}
}

static void test_canonical_handles_stored(void **state)
{
	fx *f = *state;
	ql_query q = QL_QUERY_INIT;
	const ql_record *rec;
	ql_record r = { 0 };
	ql_cursor *c;

	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	r.ts = f->now;
	r.requester = "tel:+14155550123";
	r.target = "mailto:Alice.B@Example.COM";
	r.ip[10] = r.ip[11] = 0xff;
	r.result = 1;
	assert_int_equal(ql_append(f->s, &r, 1, NULL), 0);
	assert_int_equal(ql_sync(f->s), 0);
	assert_int_equal(ql_cursor_open(&c, f->s, &q), 0);
	assert_int_equal(ql_cursor_next(c, &rec), QL_ROW);
	assert_string_equal(rec->requester, "+14155550123");
	assert_string_equal(rec->target, "Alice.B@example.com");
	assert_int_equal(ql_cursor_next(c, &rec), QL_DONE);
	ql_cursor_close(c);
}

static void test_options_validated(void **state)
{
	fx *f = *state;
	ql_options o = f->opt;

	o.bucket_width_us = 7 * T_MIN;
	assert_int_equal(ql_open(&f->s, f->dir, &o), QL_EINVAL);
	assert_non_null(strstr(ql_errmsg(NULL), "bucket_width_us"));
	o = f->opt;
	o.block_records = 3;
	assert_int_equal(ql_open(&f->s, f->dir, &o), QL_EINVAL);
	o = f->opt;
	o.version = 99;
	assert_int_equal(ql_open(&f->s, f->dir, &o), QL_EINVAL);
	o = f->opt;
	o.flags = 0;
	assert_int_equal(ql_open(&f->s, f->dir, &o), QL_ENOTFOUND);
	/* the bucket width is fixed at creation */
	o = f->opt;
	o.bucket_width_us = T_HOUR;
	assert_int_equal(ql_open(&f->s, f->dir, &o), 0);
	assert_int_equal(ql_close(f->s), 0);
	f->s = NULL;
	o.bucket_width_us = 2 * T_HOUR;
	assert_int_equal(ql_open(&f->s, f->dir, &o), QL_EINVAL);
	o.bucket_width_us = 0; /* 0 = whatever the store has */
	assert_int_equal(ql_open(&f->s, f->dir, &o), 0);
}

static void test_symlink_inside_store_refused(void **state)
{
	fx *f = *state;
	char link[300], path[400];

	/* the store directory itself may be a symlink (stores are moved to
	 * other disks that way) */
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	assert_int_equal(ql_close(f->s), 0);
	f->s = NULL;
	snprintf(link, sizeof(link), "%s.link", f->dir);
	assert_int_equal(symlink(f->dir, link), 0);
	assert_int_equal(ql_open(&f->s, link, &f->opt), 0);
	assert_int_equal(ql_close(f->s), 0);
	f->s = NULL;
	unlink(link);
	/* a segment that is a symlink (to anything) is refused */
	snprintf(path, sizeof(path), "%s/seg/20261103T000000Z-g0.qls",
		 f->dir);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), QL_EUNSAFE);
	assert_non_null(strstr(ql_errmsg(NULL), "20261103T000000Z-g0.qls"));
	unlink(path);
	/* and so is a seg directory that is a symlink */
	snprintf(path, sizeof(path), "%s/seg", f->dir);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(symlink("/tmp", path), 0);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), QL_EUNSAFE);
}

static void test_files_private(void **state)
{
	fx *f = *state;
	char p[400];
	struct stat st;

	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	append_stream(f, 1, f->now - T_MIN, T_SEC, 10);
	assert_int_equal(ql_sync(f->s), 0);
	assert_int_equal(stat(f->dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(p, sizeof(p), "%s/seg/20261103T000000Z-g0.qls", f->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* Path of the only segment of the test store. */
static void seg_path(fx *f, char *out, size_t len)
{
	snprintf(out, len, "%s/seg/20261103T000000Z-g0.qls", f->dir);
}

/* In blocks of 16: appends 32 records (seed), syncs, notes the file's
 * size in *s1 and the records' sum in *sum1, appends n2 more (seed + 1),
 * closes the store; returns the file's bytes (*full of them), to free. */
static char *two_syncs(fx *f, uint64_t seed, unsigned n2, char *path,
		       size_t plen, uint64_t *sum1, off_t *s1, off_t *full)
{
	struct stat st;
	char *orig;
	int fd;

	f->opt.block_records = 16;
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	*sum1 = append_stream(f, seed, f->now - T_HOUR, T_SEC, 32);
	assert_int_equal(ql_sync(f->s), 0);
	seg_path(f, path, plen);
	assert_int_equal(stat(path, &st), 0);
	*s1 = st.st_size;
	append_stream(f, seed + 1, f->now - 30 * T_MIN, T_SEC, n2);
	assert_int_equal(ql_close(f->s), 0);
	f->s = NULL;
	assert_int_equal(stat(path, &st), 0);
	*full = st.st_size;
	assert_true(*full > *s1);
	orig = malloc((size_t)*full);
	assert_non_null(orig);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, orig, (size_t)*full), *full);
	close(fd);
	return orig;
}

static void test_torn_tail_cut_at_every_offset(void **state)
{
	fx *f = *state;
	char path[400];
	struct stat st;
	uint64_t sum_kept;
	off_t full, last_start, mark;
	char *orig;
	int fd;

	/* three blocks of 16 synced one by one: the file ends with a block
	 * whose start we know from the size before it */
	orig = two_syncs(f, 11, 16, path, sizeof(path), &sum_kept,
			 &last_start, &full);

	/* the file ends with the last block and the sync mark written
	 * after its fsync (docs/FORMAT.md §5.8): a cut inside the block
	 * loses it, a cut inside the mark only the mark */
	mark = full - QLI_FRAME_HDR;
	assert_int_equal(qli_get32((const uint8_t *)orig + mark),
			 QLI_MAGIC_SYNC);
	for (off_t cut = last_start; cut < full; cut++) {
		off_t keep = cut < mark ? last_start : mark;
		ql_stats stt;
		scanres r;

		fd = open(path, O_WRONLY | O_TRUNC);
		assert_int_equal(write(fd, orig, (size_t)cut), cut);
		close(fd);
		assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
		assert_int_equal(ql_stat(f->s, &stt), 0);
		assert_int_equal(stt.recovered_bytes, (uint64_t)(cut - keep));
		r = scan(f->s, 0, 0);
		assert_int_equal(r.n, cut < mark ? 32 : 48);
		if (cut < mark)
			assert_true(r.sum == sum_kept);
		assert_int_equal(ql_close(f->s), 0);
		f->s = NULL;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, keep);
	}
	/* garbage after the last block is cut too */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, orig, (size_t)full), full);
	assert_int_equal(write(fd, "garbage!garbage!garbage!garbage!garbage!"
				   "garbage!", 48), 48);
	close(fd);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	assert_int_equal(scan(f->s, 0, 0).n, 48);
	free(orig);
}

/* Copies the n bytes of a segment file to out, without the sync marks
 * at offsets >= from; returns the length, and in *at_out where the frame
 * at offset at went. */
static off_t strip_marks(const char *in, off_t n, off_t from, char *out,
			 off_t at, off_t *at_out)
{
	off_t len = QLI_SEG_HDR;

	memcpy(out, in, QLI_SEG_HDR);
	for (off_t off = QLI_SEG_HDR; off < n;) {
		const uint8_t *fr = (const uint8_t *)in + off;
		off_t fl = QLI_FRAME_HDR + (off_t)qli_get32(fr + 4);

		if (off == at)
			*at_out = len;
		if (off < from || qli_get32(fr) != QLI_MAGIC_SYNC) {
			memcpy(out + len, fr, (size_t)fl);
			len += fl;
		}
		off += fl;
	}
	return len;
}

/* Pages written back out of order can leave valid blocks behind a torn
 * one. The sync marks tell that tail from damage: with no mark after the
 * bad frame, nothing after it was proven durable, so it is cut; with a
 * mark after it, the bad frame was synced and is damage, kept and
 * reported. The files are made as a crash would leave them: the blocks
 * written after the first sync without any mark (whatever syncs the
 * store did meanwhile), the first of them torn; then the same with a
 * mark after them. */
static void test_torn_tail_vs_damage(void **state)
{
	fx *f = *state;
	char path[400];
	struct stat st;
	uint64_t sum_kept;
	off_t s1, full, base, b3;
	char *orig, *img;
	int fd;

	/* blocks 1-2 and their mark end at s1, blocks 3-5 follow */
	orig = two_syncs(f, 21, 48, path, sizeof(path), &sum_kept, &s1,
			 &full);
	assert_int_equal(qli_get32((const uint8_t *)orig + s1 -
				   QLI_FRAME_HDR),
			 QLI_MAGIC_SYNC);
	img = malloc((size_t)full + QLI_FRAME_HDR);
	assert_non_null(img);
	b3 = -1;
	base = strip_marks(orig, full, s1, img, s1, &b3);
	assert_true(base > s1 && b3 == s1 &&
		    qli_get32((uint8_t *)img + s1) == QLI_MAGIC_BLOCK);
	memset(img + s1, 0, 8); /* block 3's header torn */
	{
		qli_frame_hdr h = { 0 }; /* the mark a later sync would add */

		h.magic = QLI_MAGIC_SYNC;
		h.min_ts = (int64_t)base;
		qli_frame_hdr_write((uint8_t *)img + base, &h, NULL);
	}

	for (int with_mark = 0; with_mark < 2; with_mark++) {
		off_t len = with_mark ? base + QLI_FRAME_HDR : base;
		seginfo_acc a = { 0 };
		ql_stats stt;
		scanres r;

		fd = open(path, O_WRONLY | O_TRUNC);
		assert_int_equal(write(fd, img, (size_t)len), len);
		close(fd);
		assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
		assert_int_equal(ql_stat(f->s, &stt), 0);
		if (!with_mark) {
			/* a torn tail: cut, blocks 4-5 with it */
			assert_int_equal(stt.recovered_bytes,
					 (uint64_t)(len - s1));
			r = scan(f->s, 0, 0);
			assert_int_equal(r.n, 32);
			assert_true(r.sum == sum_kept);
			assert_int_equal(ql_segments(f->s, 1, acc_seg, &a),
					 0);
			assert_int_equal(a.damaged, 0);
		} else {
			/* damage to synced data: kept as it is, reported */
			assert_int_equal(stt.recovered_bytes, 0);
			assert_int_equal(ql_segments(f->s, 1, acc_seg, &a),
					 QL_ECORRUPT);
			assert_int_equal(a.damaged, 1);
			assert_string_equal(a.bad,
					    "seg/20261103T000000Z-g0.qls");
		}
		assert_int_equal(ql_close(f->s), 0);
		f->s = NULL;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, with_mark ? len : s1);
	}

	/* The same file as a build before the marks wrote it (version 1,
	 * no marks): read whole, and a torn block with valid ones behind it
	 * is reported as damage (kept), as such builds always did. */
	for (int torn = 0; torn < 2; torn++) {
		off_t len = strip_marks(orig, full, 0, img, s1, &b3);

		assert_int_equal(qli_get32((uint8_t *)img + b3),
				 QLI_MAGIC_BLOCK);
		if (torn)
			memset(img + b3, 0, 8); /* block 3 */
		img[8] = 1;
		qli_put64((uint8_t *)img + 56,
			  qli_hash64((const uint8_t *)img, 56, 0));
		fd = open(path, O_WRONLY | O_TRUNC);
		assert_int_equal(write(fd, img, (size_t)len), len);
		close(fd);
		assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
		{
			seginfo_acc a = { 0 };

			if (!torn) {
				assert_int_equal(scan(f->s, 0, 0).n, 80);
				assert_int_equal(
					ql_segments(f->s, 1, acc_seg, &a), 0);
			} else {
				assert_int_equal(
					ql_segments(f->s, 1, acc_seg, &a),
					QL_ECORRUPT);
				assert_int_equal(a.damaged, 1);
			}
		}
		assert_int_equal(ql_close(f->s), 0);
		f->s = NULL;
	}
	free(img);
	free(orig);
}

static void test_verify_names_damaged_segment(void **state)
{
	fx *f = *state;
	seginfo_acc a = { 0 };
	char path[400];
	int fd;
	char b;

	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	append_stream(f, 1, f->now - 26 * T_HOUR, 30 * T_SEC, 3000);
	assert_int_equal(ql_sync(f->s), 0);
	t_setclock(&f->now, f->now + T_DAY); /* seal both buckets */
	assert_int_equal(ql_maintain(f->s), 0);
	assert_int_equal(ql_segments(f->s, 1, acc_seg, &a), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.sealed, 2);
	assert_int_equal(a.damaged, 0);
	/* flip one bit in the middle of the day-2 segment (compacted by
	 * ql_maintain: the .qlc form) */
	snprintf(path, sizeof(path), "%s/seg/20261103T000000Z-g0.qlc", f->dir);
	fd = open(path, O_RDWR);
	assert_int_equal(pread(fd, &b, 1, 700), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, 700), 1);
	close(fd);
	memset(&a, 0, sizeof(a));
	assert_int_equal(ql_segments(f->s, 1, acc_seg, &a), QL_ECORRUPT);
	assert_int_equal(a.damaged, 1);
	assert_string_equal(a.bad, "seg/20261103T000000Z-g0.qlc");
	/* a scan through the damage reports it, naming the segment */
	{
		ql_query q = QL_QUERY_INIT;
		const ql_record *rec;
		ql_cursor *c;
		int rc;

		assert_int_equal(ql_cursor_open(&c, f->s, &q), 0);
		while ((rc = ql_cursor_next(c, &rec)) == QL_ROW)
			;
		assert_int_equal(rc, QL_ECORRUPT);
		assert_non_null(strstr(ql_errmsg(NULL), "20261103T000000Z"));
		ql_cursor_close(c);
	}
}

typedef struct thr_arg {
	ql_store *s;
	int64_t now;
	uint64_t seed, sum;
	unsigned n;
} thr_arg;

static void *appender(void *p)
{
	thr_arg *a = p;
	uint64_t rng = a->seed;
	t_rec t;

	for (unsigned i = 0; i < a->n; i++) {
		t_make(&t, &rng, a->now - (int64_t)(t_rand(&rng) % T_HOUR),
		       1000);
		if (ql_append(a->s, &t.r, 1, NULL))
			return (void *)1;
		a->sum += t_hash(&t.r);
		if (i % 997 == 0 && ql_sync(a->s))
			return (void *)1;
	}
	return NULL;
}

static void test_many_threads_append(void **state)
{
	fx *f = *state;
	pthread_t th[4];
	thr_arg arg[4];
	uint64_t sum = 0;
	scanres r;

	f->opt.sync_mode = QL_SYNC_EVERY_APPEND;
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	for (int i = 0; i < 4; i++) {
		arg[i] = (thr_arg){ f->s, f->now, (uint64_t)i + 100, 0, 3000 };
		assert_int_equal(pthread_create(&th[i], NULL, appender,
						&arg[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;

		pthread_join(th[i], &ret);
		assert_null(ret);
		sum += arg[i].sum;
	}
	r = scan(f->s, 0, 0);
	assert_int_equal(r.n, 12000);
	assert_true(r.sum == sum);
	assert_true(r.ordered);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_append_scan_in_time_order),
		T(test_time_window_matches_brute_force),
		T(test_seal_on_clock_and_late_generation),
		T(test_import_seals_behind_stream),
		T(test_no_maintenance_no_seal_by_records),
		T(test_second_writer_busy_reader_ok),
		T(test_bad_input_names_field_value_rule),
		T(test_canonical_handles_stored),
		T(test_options_validated),
		T(test_symlink_inside_store_refused),
		T(test_files_private),
		T(test_torn_tail_cut_at_every_offset),
		T(test_torn_tail_vs_damage),
		T(test_verify_names_damaged_segment),
		T(test_many_threads_append),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
