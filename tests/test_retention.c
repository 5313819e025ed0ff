/* test_retention.c - the retention planner: a table of cases, the lifetime
 * guarantee, clock jumps, and a property check over random catalogs,
 * holds and clocks. */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "retention.h"

#define W T_DAY
#define R (30 * T_DAY)
/* now: 2026-12-11T12:00Z; due means bucket_end <= 2026-11-11T12:00Z */
#define NOW (T_EPOCH + 40 * T_DAY + 12 * T_HOUR)

static qli_seg_desc seg(int64_t start, uint32_t gen)
{
	qli_seg_desc s;

	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "seg-%lld-g%u",
		 (long long)(start / T_SEC), gen);
	s.bucket_start = start;
	s.bucket_end = start + W;
	s.generation = gen;
	s.records = 1000;
	s.bytes = 50000;
	return s;
}

typedef struct hold_def {
	const char *id;
	int64_t from, to, expires;
	int state; /* QLI_HOLD_*, applied after placing */
} hold_def;

static void make_holds(qli_holdset *set, const hold_def *d, size_t n)
{
	qli_holds_init(set);
	for (size_t i = 0; i < n; i++) {
		qli_hold_spec s = { 0 };
		qli_hold *h;

		s.order_id = d[i].id;
		s.from = d[i].from;
		s.to = d[i].to;
		/* placed long ago so any expiry is valid */
		s.expires = d[i].expires;
		s.reason = "test";
		s.placed_by = "test";
		assert_int_equal(qli_holds_place(set, &s, T_EPOCH - 400 * T_DAY,
						 &h), 0);
		if (d[i].state == QLI_HOLD_RELEASED)
			assert_int_equal(qli_holds_release(
				set, d[i].id, T_EPOCH - 300 * T_DAY, "judge"),
				0);
		if (d[i].state == QLI_HOLD_LAPSED) {
			h->state = QLI_HOLD_LAPSED;
			h->ended_at = h->expires;
		}
	}
}

/* The order IDs of a decision's refs with their reasons, "A:pins B:window". */
static void refs_str(const qli_ret_decision *d, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < d->nrefs && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s:%s",
				      i ? " " : "", d->refs[i].hold->order_id,
				      qli_ret_why_name(d->refs[i].why));
}

typedef struct tcase {
	const char *name;
	int64_t start;     /* the segment's bucket start */
	const hold_def *holds;
	size_t nholds;
	int want;
	const char *refs;
} tcase;

#define DUE_END (NOW - R) /* a bucket ending here is just due */

static const hold_def h_one_of_three[] = {
	{ "A", T_EPOCH - 100 * T_DAY, T_EPOCH - 90 * T_DAY, NOW + T_DAY,
	  QLI_HOLD_ACTIVE },
	{ "B", DUE_END - 2 * T_DAY, DUE_END - 2 * T_DAY, NOW + T_DAY,
	  QLI_HOLD_ACTIVE },
	{ "C", DUE_END - 5 * T_DAY, QLI_HOLD_OPEN, NOW + T_DAY,
	  QLI_HOLD_RELEASED },
};
static const hold_def h_released[] = {
	{ "REL", DUE_END - 10 * T_DAY, DUE_END, NOW + 10 * T_DAY,
	  QLI_HOLD_RELEASED },
	{ "FAR", T_EPOCH - 100 * T_DAY, T_EPOCH - 90 * T_DAY, NOW + T_DAY,
	  QLI_HOLD_ACTIVE },
	{ "OLD", T_EPOCH - 100 * T_DAY, T_EPOCH - 90 * T_DAY, NOW + T_DAY,
	  QLI_HOLD_RELEASED },
};
static const hold_def h_lapsed[] = {
	{ "LAP", DUE_END - 10 * T_DAY, DUE_END, NOW - T_DAY,
	  QLI_HOLD_LAPSED },
	/* expired at now exactly, not yet recorded: no longer pins */
	{ "EXP", DUE_END - 10 * T_DAY, DUE_END, NOW, QLI_HOLD_ACTIVE },
	/* still active one microsecond longer: pins */
	{ "LIVE", DUE_END - 10 * T_DAY, DUE_END, NOW + 1, QLI_HOLD_ACTIVE },
};
static const hold_def h_prospective[] = {
	/* placed while running: from 2026-11-01, open-ended */
	{ "PROS", T_EPOCH, QLI_HOLD_OPEN, NOW + 60 * T_DAY,
	  QLI_HOLD_ACTIVE },
};
static const hold_def h_edges[] = {
	/* to is inclusive: touches the bucket's first instant */
	{ "TO", T_EPOCH - 10 * T_DAY, DUE_END - W, NOW + T_DAY,
	  QLI_HOLD_ACTIVE },
};
static const hold_def h_edges2[] = {
	/* from at the bucket's end: [start, end) is not touched */
	{ "FROM", DUE_END, DUE_END + 5 * T_DAY, NOW + T_DAY,
	  QLI_HOLD_ACTIVE },
};

static const tcase cases[] = {
	{ "young", NOW - 5 * T_DAY, NULL, 0, QLI_RET_KEEP_YOUNG, "" },
	{ "young by 1 us", DUE_END - W + 1, NULL, 0, QLI_RET_KEEP_YOUNG, "" },
	{ "due at the boundary", DUE_END - W, NULL, 0, QLI_RET_EXPIRE, "" },
	{ "long due", T_EPOCH - 200 * T_DAY, NULL, 0, QLI_RET_EXPIRE, "" },
	{ "young, although unheld holds exist", NOW - 2 * T_DAY,
	  h_released, 3, QLI_RET_KEEP_YOUNG, "" },
	{ "held by one of several", DUE_END - 2 * T_DAY, h_one_of_three, 3,
	  QLI_RET_KEEP_HELD, "B:pins" },
	{ "hold released", DUE_END - 3 * T_DAY, h_released, 3,
	  QLI_RET_EXPIRE, "REL:released FAR:window" },
	{ "hold lapsed, one still live", DUE_END - 3 * T_DAY, h_lapsed, 3,
	  QLI_RET_KEEP_HELD, "LIVE:pins" },
	{ "lapsed holds only", DUE_END - 3 * T_DAY, h_lapsed, 2,
	  QLI_RET_EXPIRE, "LAP:lapsed EXP:lapsed" },
	{ "prospective hold pins a later segment", T_EPOCH + 5 * T_DAY,
	  h_prospective, 1, QLI_RET_KEEP_HELD, "PROS:pins" },
	{ "prospective hold: segment before it", T_EPOCH - W,
	  h_prospective, 1, QLI_RET_EXPIRE, "PROS:window" },
	{ "window end inclusive", DUE_END - W, h_edges, 1, QLI_RET_KEEP_HELD,
	  "TO:pins" },
	{ "window start at bucket end", DUE_END - W, h_edges2, 1,
	  QLI_RET_EXPIRE, "FROM:window" },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const tcase *c = &cases[i];
		qli_seg_desc s[2] = { seg(c->start, 0), seg(c->start, 3) };
		qli_holdset set;
		qli_ret_plan p;
		char refs[256];

		make_holds(&set, c->holds, c->nholds);
		assert_int_equal(qli_retention_plan(&p, s, 2, &set, NOW, R), 0);
		assert_int_equal(p.n, 2);
		for (size_t k = 0; k < 2; k++) {
			/* late generations share the fate of the bucket */
			refs_str(&p.d[k], refs, sizeof(refs));
			if (p.d[k].action != c->want || strcmp(refs, c->refs))
				fail_msg("case \"%s\": got %s [%s], want %s "
					 "[%s]", c->name,
					 qli_ret_action_name(p.d[k].action),
					 refs, qli_ret_action_name(c->want),
					 c->refs);
			assert_int_equal(qli_retention_visible(&s[k], &set, NOW,
							       R),
					 c->want != QLI_RET_EXPIRE);
			assert_true(p.d[k].due_at == s[k].bucket_end + R);
		}
		assert_int_equal(p.n_young + p.n_held + p.n_expire, 2);
		qli_ret_plan_free(&p);
		qli_holds_free(&set);
	}
}

static void test_bad_input(void **state)
{
	qli_seg_desc s = seg(T_EPOCH, 0);
	qli_ret_plan p;

	(void)state;
	assert_int_equal(qli_retention_plan(&p, &s, 1, NULL, NOW, 0),
			 QL_EINVAL);
	assert_non_null(strstr(ql_errmsg(NULL), "retention"));
	s.bucket_end = s.bucket_start;
	assert_int_equal(qli_retention_plan(&p, &s, 1, NULL, NOW, R),
			 QL_EINVAL);
	assert_non_null(strstr(ql_errmsg(NULL), s.name));
	assert_null(p.d);
	/* an empty catalog and no holds */
	assert_int_equal(qli_retention_plan(&p, NULL, 0, NULL, NOW, R), 0);
	assert_int_equal(p.n, 0);
	qli_ret_plan_free(&p);
	qli_ret_plan_free(NULL);
	/* extreme clocks do not overflow */
	s = seg(T_EPOCH, 0);
	assert_false(qli_retention_due(&s, INT64_MIN + 5, R));
	assert_true(qli_retention_due(&s, INT64_MAX, R));
}

/* The guarantee written in retention.h, for record times all over a few
 * buckets and several widths: not due (and visible) at t + R, due (and
 * invisible) at t + R + W. */
static void test_lifetime_guarantee(void **state)
{
	static const int64_t widths[] = { 15 * T_MIN, T_HOUR, T_DAY,
					  7 * T_DAY };
	uint64_t rng = 7;

	(void)state;
	for (size_t wi = 0; wi < 4; wi++) {
		int64_t w = widths[wi];

		for (int i = 0; i < 2000; i++) {
			int64_t t = T_EPOCH + (int64_t)(t_rand(&rng) %
							(uint64_t)(20 * w));
			int64_t start = t - ((t % w) + w) % w;
			qli_seg_desc s = seg(start, 0);

			if (i < 2)
				t = i ? start + w - 1 : start; /* the edges */
			s.bucket_end = start + w;
			assert_false(qli_retention_due(&s, t + R, R));
			assert_true(qli_retention_visible(&s, NULL, t + R, R));
			assert_true(qli_retention_due(&s, t + R + w, R));
			assert_false(qli_retention_visible(&s, NULL,
							   t + R + w, R));
		}
	}
}

/* The plan sees only now: a clock that goes back expires nothing that was
 * not due at the later time; one that goes forward expires what is due
 * then. */
static void test_clock_jumps(void **state)
{
	qli_seg_desc s[60];
	qli_ret_plan a, b;
	qli_holdset set;
	const hold_def hd[] = {
		{ "H", T_EPOCH - 10 * T_DAY, T_EPOCH - 5 * T_DAY,
		  NOW + 3 * T_DAY, QLI_HOLD_ACTIVE },
	};

	(void)state;
	for (int i = 0; i < 60; i++)
		s[i] = seg(T_EPOCH - 30 * T_DAY + i * T_DAY, 0);
	make_holds(&set, hd, 1);
	assert_int_equal(qli_retention_plan(&a, s, 60, &set, NOW, R), 0);
	/* backwards by 10 days: a subset of what expires at NOW */
	assert_int_equal(qli_retention_plan(&b, s, 60, &set, NOW - 10 * T_DAY,
					    R), 0);
	assert_true(b.n_expire < a.n_expire);
	for (int i = 0; i < 60; i++)
		if (b.d[i].action == QLI_RET_EXPIRE)
			assert_int_equal(a.d[i].action, QLI_RET_EXPIRE);
	qli_ret_plan_free(&b);
	/* forwards by 10 days: more is due, and the hold (expiring at
	 * NOW + 3 days) no longer pins: the documented risk. */
	assert_int_equal(qli_retention_plan(&b, s, 60, &set, NOW + 10 * T_DAY,
					    R), 0);
	assert_true(b.n_expire > a.n_expire);
	assert_true(a.n_held > 0);
	assert_int_equal(b.n_held, 0);
	qli_ret_plan_free(&a);
	qli_ret_plan_free(&b);
	qli_holds_free(&set);
}

/* ---------------------------------------------------------------------- */
/* property check                                                          */
/* ---------------------------------------------------------------------- */

static int64_t rnd(uint64_t *rng, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(t_rand(rng) % (uint64_t)(hi - lo + 1));
}

static void random_holds(qli_holdset *set, uint64_t *rng, int64_t now)
{
	unsigned n = (unsigned)(t_rand(rng) % 6);

	qli_holds_init(set);
	for (unsigned i = 0; i < n; i++) {
		qli_hold_spec s = { 0 };
		char id[16];
		qli_hold *h;
		int st = (int)(t_rand(rng) % 4);

		snprintf(id, sizeof(id), "H%u", i);
		s.order_id = id;
		s.from = rnd(rng, now - 120 * T_DAY, now);
		s.to = t_rand(rng) % 4 ? rnd(rng, s.from, now + 10 * T_DAY)
				       : QLI_HOLD_OPEN;
		s.expires = rnd(rng, now - 20 * T_DAY, now + 20 * T_DAY);
		s.reason = "r";
		s.placed_by = "p";
		assert_int_equal(qli_holds_place(set, &s, INT64_MIN, &h), 0);
		if (st == 1)
			assert_int_equal(qli_holds_release(set, id, INT64_MIN,
							   "j"), 0);
		if (st == 2 && h->expires <= now)
			qli_holds_lapse(set, h->expires, NULL, NULL);
	}
}

/* An independent statement of the rule. */
static int covered(const qli_holdset *set, const qli_seg_desc *s,
		   int64_t now)
{
	for (size_t i = 0; i < set->n; i++) {
		const qli_hold *h = &set->v[i];

		if (h->state == QLI_HOLD_ACTIVE && now < h->expires &&
		    h->from < s->bucket_end && h->to >= s->bucket_start)
			return 1;
	}
	return 0;
}

static void test_property(void **state)
{
	uint64_t rng = 12345;
	unsigned iters = 3000;

	(void)state;
	for (unsigned it = 0; it < iters; it++) {
		int64_t now = rnd(&rng, T_EPOCH, T_EPOCH + 400 * T_DAY);
		int64_t ret = rnd(&rng, 1, 60) * T_DAY;
		int64_t w = t_rand(&rng) % 2 ? T_DAY : T_HOUR;
		size_t n = (size_t)(t_rand(&rng) % 40);
		qli_seg_desc s[40];
		qli_holdset set;
		qli_ret_plan p;

		for (size_t i = 0; i < n; i++) {
			int64_t start = now - rnd(&rng, 0, 100) * w;

			s[i] = seg(start - start % w, (uint32_t)(i % 2));
			s[i].bucket_end = s[i].bucket_start + w;
		}
		random_holds(&set, &rng, now);
		assert_int_equal(qli_retention_plan(&p, s, n, &set, now, ret),
				 0);
		assert_int_equal(p.n_young + p.n_held + p.n_expire, n);
		for (size_t i = 0; i < n; i++) {
			const qli_ret_decision *d = &p.d[i];
			int due = s[i].bucket_end <= now - ret;
			int cov = covered(&set, &s[i], now);

			/* never expire what is young or held */
			if (s[i].bucket_end > now - ret || cov)
				assert_int_not_equal(d->action,
						     QLI_RET_EXPIRE);
			/* and always expire what is due and unheld */
			assert_int_equal(d->action,
					 !due ? QLI_RET_KEEP_YOUNG :
					 cov ? QLI_RET_KEEP_HELD :
					       QLI_RET_EXPIRE);
			assert_int_equal(qli_retention_visible(&s[i], &set,
							       now, ret),
					 d->action != QLI_RET_EXPIRE);
			/* the refs explain the decision */
			if (d->action == QLI_RET_KEEP_HELD)
				assert_true(d->nrefs > 0);
			for (size_t k = 0; k < d->nrefs; k++) {
				const qli_hold *h = d->refs[k].hold;
				int pins = qli_hold_covers(h,
							   s[i].bucket_start,
							   s[i].bucket_end,
							   now);

				assert_int_equal(pins, d->refs[k].why ==
						 QLI_WHY_PINS);
				if (d->action == QLI_RET_KEEP_HELD)
					assert_true(pins);
			}
			if (d->action == QLI_RET_KEEP_YOUNG)
				assert_int_equal(d->nrefs, 0);
		}
		qli_ret_plan_free(&p);
		qli_holds_free(&set);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_lifetime_guarantee),
		cmocka_unit_test(test_clock_jumps),
		cmocka_unit_test(test_property),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
