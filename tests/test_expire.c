/* test_expire.c - retention and holds over 120 simulated days.
 *
 * A fake clock walks day by day; every day records arrive for that day,
 * buckets are sealed and ql_expire sweeps. After each sweep, against a
 * model of every record appended:
 *   - no unheld record older than retention + one bucket is readable;
 *   - every record younger than the retention period is readable (nothing
 *     was deleted early);
 *   - every record in a segment that an active hold covers is readable.
 * Holds: a retrospective order placed on day 40 for days 20-25, extended
 * twice and then released; a prospective, open-ended order placed on day
 * 60 that lapses on day 90. The clock also jumps back 3 days and forward
 * 10 days, as documented: a backward jump resurrects nothing, a forward
 * jump expires what is due at the new time. The audit trail must hold an
 * event for every deletion and every hold change. */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define DAYS 120
#define PER_DAY 60
#define R_DAYS 30

typedef struct fx {
	char dir[256];
	int64_t now;
	ql_options opt;
	ql_store *s;
	int64_t *ts;
	size_t n;
} fx;

typedef struct seen {
	int64_t *ts;
	size_t n;
} seen;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	t_tmpdir(f->dir, sizeof(f->dir));
	t_setclock(&f->now, T_EPOCH);
	f->opt = (ql_options)QL_OPTIONS_INIT;
	f->opt.flags = QL_OPEN_CREATE;
	f->opt.clock = t_clock;
	f->opt.clock_ctx = &f->now;
	f->opt.maintenance_interval_ms = -1;
	f->opt.retention_us = R_DAYS * T_DAY;
	f->ts = calloc(DAYS * PER_DAY + 100, sizeof(*f->ts));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	ql_close(f->s);
	t_cleanup(f->dir);
	free(f->ts);
	free(f);
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static seen scan_all(ql_store *s)
{
	ql_query q = QL_QUERY_INIT;
	const ql_record *r;
	seen v = { calloc(DAYS * PER_DAY + 100, sizeof(int64_t)), 0 };
	ql_cursor *c;

	assert_int_equal(ql_cursor_open(&c, s, &q), 0);
	while (ql_cursor_next(c, &r) == QL_ROW)
		v.ts[v.n++] = r->ts;
	ql_cursor_close(c);
	return v;
}

static int present(const seen *v, int64_t ts)
{
	return bsearch(&ts, v->ts, v->n, sizeof(*v->ts), cmp_i64) != NULL;
}

/* Holds as the test placed them, to know what must stay. */
typedef struct mhold {
	int64_t from, to, expires;
	int released;
} mhold;

static int covered(const mhold *h, size_t nh, int64_t ts, int64_t now)
{
	int64_t b = ts - (ts % T_DAY);

	for (size_t i = 0; i < nh; i++)
		if (!h[i].released && now < h[i].expires &&
		    h[i].from < b + T_DAY && h[i].to >= b)
			return 1;
	return 0;
}

typedef struct counts {
	unsigned expired, placed, extended, released, lapsed, sealed;
} counts;

static int count_event(const char *json, size_t len, void *ctx)
{
	counts *c = ctx;
	char buf[256];

	snprintf(buf, sizeof(buf), "%.*s", (int)(len < 255 ? len : 255), json);
	if (strstr(buf, "\"segment_expired\""))
		c->expired++;
	else if (strstr(buf, "\"hold_placed\""))
		c->placed++;
	else if (strstr(buf, "\"hold_extended\""))
		c->extended++;
	else if (strstr(buf, "\"hold_released\""))
		c->released++;
	else if (strstr(buf, "\"hold_lapsed\""))
		c->lapsed++;
	else if (strstr(buf, "\"segment_sealed\""))
		c->sealed++;
	return 0;
}

static int count_deleted(const ql_expiry *e, void *ctx)
{
	if (e->action == QL_EXPIRE_DELETE)
		++*(unsigned *)ctx;
	return 0;
}

static void check_day(fx *f, const mhold *h, size_t nh, int64_t now_max)
{
	seen v = scan_all(f->s);
	const int64_t R = R_DAYS * T_DAY;

	qsort(v.ts, v.n, sizeof(*v.ts), cmp_i64);
	for (size_t i = 0; i < f->n; i++) {
		int64_t t = f->ts[i];
		int held = covered(h, nh, t, f->now);
		int here = present(&v, t);

		/* young (by the latest time the clock ever showed: a
		 * backward jump does not bring back what was deleted) */
		if (t >= now_max - R && !here)
			fail_msg("day %lld: record at %lld younger than "
				 "retention is gone",
				 (long long)((f->now - T_EPOCH) / T_DAY),
				 (long long)t);
		if (held && !here)
			fail_msg("held record at %lld is gone", (long long)t);
		if (!held && t < f->now - R - T_DAY && here)
			fail_msg("day %lld: unheld record at %lld older than "
				 "retention + one bucket is readable",
				 (long long)((f->now - T_EPOCH) / T_DAY),
				 (long long)t);
	}
	free(v.ts);
}

static void test_120_days(void **state)
{
	fx *f = *state;
	mhold h[2] = { { 0 } };
	size_t nh = 0;
	uint64_t rng = 9;
	unsigned deleted = 0;
	int64_t now_max = f->now;
	counts c = { 0 };

	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	for (int day = 0; day < DAYS; day++) {
		t_rec t;

		/* the day's records, all within the day just begun */
		t_setclock(&f->now, f->now + T_DAY);
		for (int i = 0; i < PER_DAY; i++) {
			int64_t ts = f->now - T_DAY +
				     (int64_t)(t_rand(&rng) % (T_DAY - T_MIN));

			if (ts > f->now)
				continue;
			t_make(&t, &rng, ts, 200);
			t.r.ts = ts;
			if (ql_append(f->s, &t.r, 1, NULL) == 0)
				f->ts[f->n++] = ts;
		}
		assert_int_equal(ql_sync(f->s), 0);
		if (day == 40) {
			/* retrospective: days 20-25, 30 days */
			ql_hold o = QL_HOLD_INIT;

			o.order_id = "SDNY-2026-0142";
			o.from = T_EPOCH + 20 * T_DAY;
			o.to = T_EPOCH + 25 * T_DAY;
			o.expires = f->now + 30 * T_DAY;
			o.reason = "preservation request 18 USC 2703(f)";
			o.placed_by = "legal@example";
			assert_int_equal(ql_hold_place(f->s, &o), 0);
			h[nh++] = (mhold){ o.from, o.to, o.expires, 0 };
			/* the same ID again is refused */
			assert_int_equal(ql_hold_place(f->s, &o), QL_EEXIST);
		}
		if (day == 60) {
			ql_hold o = QL_HOLD_INIT;

			o.order_id = "PRR-7";
			o.from = f->now;
			o.to = QL_HOLD_OPEN_END;
			o.expires = T_EPOCH + 90 * T_DAY;
			o.reason = "pen register order";
			o.placed_by = "legal@example";
			assert_int_equal(ql_hold_place(f->s, &o), 0);
			h[nh++] = (mhold){ o.from, INT64_MAX, o.expires, 0 };
		}
		if (day == 65 || day == 85) {
			/* extend by the period (30 days) */
			assert_int_equal(ql_hold_extend(f->s,
							"SDNY-2026-0142", 0,
							"legal@example"), 0);
			h[0].expires += 30 * T_DAY;
		}
		if (day == 100) {
			assert_int_equal(ql_hold_release(f->s,
							 "SDNY-2026-0142",
							 "legal@example"), 0);
			h[0].released = 1;
			assert_int_equal(ql_hold_extend(f->s,
							"SDNY-2026-0142", 0,
							"x"), QL_EINVAL);
		}
		if (day == 70) {
			/* the clock jumps back three days, then on */
			t_setclock(&f->now, f->now - 3 * T_DAY);
		}
		if (day == 75) {
			/* and forward ten */
			t_setclock(&f->now, f->now + 10 * T_DAY);
		}
		assert_int_equal(ql_maintain(f->s), 0);
		assert_int_equal(ql_expire(f->s, 0, "test", count_deleted,
					   &deleted), 0);
		if (f->now > now_max)
			now_max = f->now;
		check_day(f, h, nh, now_max);
	}
	assert_true(deleted > 60);
	assert_int_equal(ql_audit_read(f->s, 0, NULL, count_event, &c), 0);
	assert_int_equal(c.expired, deleted);
	assert_int_equal(c.placed, 2);
	assert_int_equal(c.extended, 2);
	assert_int_equal(c.released, 1);
	assert_int_equal(c.lapsed, 1);
	assert_true(c.sealed >= 60);
	/* the order's own trail */
	memset(&c, 0, sizeof(c));
	assert_int_equal(ql_audit_read(f->s, 0, "SDNY-2026-0142", count_event,
				       &c), 0);
	assert_int_equal(c.placed + c.extended + c.released, 4);
	print_message("%u segments expired over %d days\n", deleted, DAYS);
}

static void test_half_done_deletion_finished(void **state)
{
	fx *f = *state;
	char from[400], to[410];
	uint64_t rng = 3;
	t_rec t;

	t_setclock(&f->now, T_EPOCH + 2 * T_DAY);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	t_make(&t, &rng, T_EPOCH + T_DAY + T_HOUR, 10);
	assert_int_equal(ql_append(f->s, &t.r, 1, NULL), 0);
	assert_int_equal(ql_close(f->s), 0);
	f->s = NULL;
	/* a crash after the mark (rename) and before the unlink */
	snprintf(from, sizeof(from), "%s/seg/20261102T000000Z-g0.qls", f->dir);
	snprintf(to, sizeof(to), "%s.del", from);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	assert_int_equal(access(to, F_OK), -1);
	assert_int_equal(access(from, F_OK), -1);
	{
		seen v = scan_all(f->s);

		assert_int_equal(v.n, 0);
		free(v.ts);
	}
}

static int count_action(const ql_expiry *e, void *ctx)
{
	((unsigned *)ctx)[e->action]++;
	return 0;
}

static void test_past_due_hidden_before_sweep(void **state)
{
	fx *f = *state;
	unsigned act[3] = { 0 };
	uint64_t rng = 5;
	t_rec t;

	t_setclock(&f->now, T_EPOCH + 2 * T_DAY);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	for (int i = 0; i < 10; i++) {
		t_make(&t, &rng, T_EPOCH + T_DAY + i * T_HOUR, 10);
		assert_int_equal(ql_append(f->s, &t.r, 1, NULL), 0);
	}
	assert_int_equal(ql_sync(f->s), 0);
	{
		seen v = scan_all(f->s);

		assert_int_equal(v.n, 10);
		free(v.ts);
	}
	/* 31 days later the bucket is past due: no sweep has run, yet
	 * reads no longer return it */
	t_setclock(&f->now, f->now + 31 * T_DAY);
	{
		seen v = scan_all(f->s);

		assert_int_equal(v.n, 0);
		free(v.ts);
	}
	/* a dry run reports it, deletes nothing */
	assert_int_equal(ql_expire(f->s, 1, "test", count_action, act), 0);
	assert_int_equal(act[QL_EXPIRE_DELETE], 1);
	t_setclock(&f->now, f->now - 31 * T_DAY);
	{
		seen v = scan_all(f->s);

		assert_int_equal(v.n, 10); /* still there */
		free(v.ts);
	}
}

static void test_cursor_across_deletion_clean(void **state)
{
	fx *f = *state;
	ql_query q = QL_QUERY_INIT;
	const ql_record *r;
	uint64_t rng = 8;
	ql_cursor *c;
	int rc;
	t_rec t;

	t_setclock(&f->now, T_EPOCH + 2 * T_DAY);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	for (int i = 0; i < 10; i++) {
		t_make(&t, &rng, T_EPOCH + T_DAY + i * T_HOUR, 10);
		assert_int_equal(ql_append(f->s, &t.r, 1, NULL), 0);
	}
	t_setclock(&f->now, f->now + T_DAY); /* sealed (and indexed) */
	assert_int_equal(ql_maintain(f->s), 0);
	/* a cursor plans the segment, then a sweep deletes it */
	assert_int_equal(ql_cursor_open(&c, f->s, &q), 0);
	t_setclock(&f->now, f->now + 31 * T_DAY);
	assert_int_equal(ql_expire(f->s, 0, "test", NULL, NULL), 0);
	rc = ql_cursor_next(c, &r);
	/* a clean error naming the segment, or (if the file was already
	 * open) the whole snapshot: never a silently shorter answer */
	if (rc == QL_ROW) {
		int n = 1;

		while ((rc = ql_cursor_next(c, &r)) == QL_ROW)
			n++;
		assert_int_equal(rc, QL_DONE);
		assert_int_equal(n, 10);
	} else {
		assert_int_equal(rc, QL_ENOTFOUND);
		assert_non_null(strstr(ql_errmsg(NULL), "20261102T000000Z"));
	}
	ql_cursor_close(c);
}

static void test_bad_holds_refused(void **state)
{
	fx *f = *state;
	ql_hold o = QL_HOLD_INIT;

	t_setclock(&f->now, T_EPOCH + 10 * T_DAY);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	o.order_id = "A-1";
	o.from = f->now;
	o.to = f->now - T_DAY; /* reversed */
	o.expires = f->now + T_DAY;
	o.reason = "r";
	o.placed_by = "p";
	assert_int_equal(ql_hold_place(f->s, &o), QL_EINVAL);
	o.to = f->now + T_DAY;
	o.expires = f->now - 1; /* in the past */
	assert_int_equal(ql_hold_place(f->s, &o), QL_EINVAL);
	o.expires = f->now + T_DAY;
	o.order_id = "";
	assert_int_equal(ql_hold_place(f->s, &o), QL_EINVAL);
	o.order_id = "A-1";
	assert_int_equal(ql_hold_place(f->s, &o), 0);
	assert_int_equal(ql_hold_release(f->s, "nope", "x"), QL_ENOTFOUND);
	/* extending never shortens */
	assert_int_equal(ql_hold_extend(f->s, "A-1", f->now + 1, "x"),
			 QL_EINVAL);
}

/* A sweep that also trims the audit trail (its own retention, whole
 * months) succeeds: ql_expire returns 0, not the number of month files
 * it removed. */
static void test_audit_trim_is_success(void **state)
{
	fx *f = *state;
	unsigned act[3] = { 0 };
	uint64_t rng = 11;
	char nov[300];
	t_rec t;

	f->opt.audit_retention_us = T_DAY;
	t_setclock(&f->now, T_EPOCH + 2 * T_DAY);
	assert_int_equal(ql_open(&f->s, f->dir, &f->opt), 0);
	t_make(&t, &rng, T_EPOCH + T_DAY + T_HOUR, 10);
	assert_int_equal(ql_append(f->s, &t.r, 1, NULL), 0);
	t_setclock(&f->now, T_EPOCH + 3 * T_DAY);
	assert_int_equal(ql_maintain(f->s), 0); /* sealed: November's file */
	snprintf(nov, sizeof(nov), "%s/audit/2026-11.log", f->dir);
	assert_int_equal(access(nov, F_OK), 0);
	/* December 5: the segment is due (its expiry goes to December's
	 * file) and November's file is past the audit trail's retention */
	t_setclock(&f->now, T_EPOCH + 34 * T_DAY);
	assert_int_equal(ql_expire(f->s, 0, "test", count_action, act), 0);
	assert_int_equal(act[QL_EXPIRE_DELETE], 1);
	assert_int_equal(access(nov, F_OK), -1);
	assert_int_equal(ql_expire(f->s, 0, "test", NULL, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_120_days, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_half_done_deletion_finished, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_past_due_hidden_before_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_cursor_across_deletion_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_holds_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_audit_trim_is_success,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
