/* test_minib.c - mini blocks (store/minib.c): exact round trips over
 * segments of many shapes, every truncation and every bit flip of a block
 * refused or decoded within range, bad tables refused with a message
 * that names the value, length-limited codes. */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "err.h"
#include "minib.h"

#define NMAX 3000

typedef struct seg {
	qli_mbtab t;
	qli_idrec r[NMAX];
	uint32_t n;
	qli_bits bits;
	uint64_t off[NMAX / QLI_MB_RECORDS + 2];
	uint32_t nb;
} seg;

static int cmp_rec(const void *a, const void *b)
{
	const qli_idrec *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* A segment of shape s: nh handles in ncls classes, ni addresses, times
 * below span, records sorted by (address, time), tables built from their
 * counts, encoded in mini blocks. */
static void make(seg *g, int s, uint64_t seed)
{
	uint64_t rng = seed, creq[QLI_DICT_CLASSES] = { 0 },
		 ctgt[QLI_DICT_CLASSES] = { 0 }, csr[QLI_MB_SR] = { 0 };
	uint32_t cls[QLI_DICT_CLASSES + 1], ncls, nh, ni;
	uint8_t len[QLI_MB_SR];
	int64_t span;

	memset(g, 0, sizeof(*g));
	switch (s % 5) {
	case 0: /* the smallest: one handle, one address, span 1 */
		nh = 1, ni = 1, span = 1, ncls = 1;
		break;
	case 1: /* a day, few addresses: long runs */
		nh = 500, ni = 3, span = 86400000000LL, ncls = 7;
		break;
	case 2: /* many addresses: short runs */
		nh = 2000, ni = 1500, span = 86400000000LL, ncls = 12;
		break;
	case 3: /* huge span and ids (gaps past 32 bits) */
		nh = 1u << 20, ni = 1u << 20, span = (int64_t)1 << 61,
		ncls = QLI_DICT_CLASSES;
		break;
	default: /* an hour, one class */
		nh = 40, ni = 10, span = 3600000000LL, ncls = 1;
	}
	cls[0] = 0;
	for (uint32_t c = 1; c < ncls; c++) /* random increasing starts */
		cls[c] = cls[c - 1] + 1 +
			 (uint32_t)(t_rand(&rng) %
				    ((nh - cls[c - 1] - (ncls - c)) /
					     (ncls - c + 1) +
				     1));
	cls[ncls] = nh;
	assert_int_equal(qli_mbtab_init(&g->t, nh, cls, ncls, ni, span), 0);
	g->n = 1 + (uint32_t)(t_rand(&rng) % NMAX);
	for (uint32_t i = 0; i < g->n; i++) {
		uint64_t x = t_rand(&rng);
		qli_idrec *r = &g->r[i];

		r->ip = (uint32_t)(x % ni);
		r->req = (uint32_t)((x >> 20) % nh);
		r->tgt = (uint32_t)(t_rand(&rng) % nh);
		r->svc = (uint8_t)(x >> 40) % (s % 2 ? 2 : 256);
		r->res = (uint8_t)(x >> 50) & 1;
		switch ((x >> 52) % 4) {
		case 0: r->ts = 0; break;
		case 1: r->ts = span - 1; break;
		default: r->ts = (int64_t)(t_rand(&rng) % (uint64_t)span);
		}
		if (i && (x >> 60) % 3 == 0) { /* repeats: same run, same req */
			r->ip = g->r[i - 1].ip;
			r->req = g->r[i - 1].req;
		}
	}
	qsort(g->r, g->n, sizeof(*g->r), cmp_rec);
	qli_mb_count(&g->t, g->r, g->n, creq, ctgt, csr);
	qli_mbcode_lengths(creq, ncls, len);
	assert_int_equal(qli_mbcode_from_lengths(&g->t.req, len, ncls, "r"),
			 0);
	qli_mbcode_lengths(ctgt, ncls, len);
	assert_int_equal(qli_mbcode_from_lengths(&g->t.tgt, len, ncls, "t"),
			 0);
	qli_mbcode_lengths(csr, QLI_MB_SR, len);
	assert_int_equal(qli_mbcode_from_lengths(&g->t.sr, len, QLI_MB_SR,
						 "s"),
			 0);
	for (uint32_t b = 0; b * QLI_MB_RECORDS < g->n; b++) {
		uint32_t k = g->n - b * QLI_MB_RECORDS;

		g->off[b] = g->bits.nbits;
		assert_int_equal(qli_mb_encode(&g->t, &g->bits,
					       g->r + b * QLI_MB_RECORDS,
					       k < QLI_MB_RECORDS ?
						       k :
						       QLI_MB_RECORDS),
				 0);
		g->nb = b + 1;
	}
	g->off[g->nb] = g->bits.nbits;
}

static uint32_t blk_n(const seg *g, uint32_t b)
{
	uint32_t k = g->n - b * QLI_MB_RECORDS;

	return k < QLI_MB_RECORDS ? k : QLI_MB_RECORDS;
}

static size_t nbytes(const seg *g)
{
	return (size_t)((g->bits.nbits + 7) / 8);
}

static void test_roundtrip(void **state)
{
	static seg g;
	qli_idrec out[QLI_MB_RECORDS];

	(void)state;
	for (int s = 0; s < 40; s++) {
		make(&g, s, 1000 + (uint64_t)s);
		for (uint32_t b = 0; b < g.nb; b++) {
			uint32_t n = blk_n(&g, b);

			assert_int_equal(qli_mb_decode(&g.t, g.bits.p,
						       nbytes(&g), g.off[b],
						       g.off[b + 1], n, out),
					 0);
			for (uint32_t i = 0; i < n; i++) {
				const qli_idrec *w =
					&g.r[b * QLI_MB_RECORDS + i];

				assert_true(out[i].ts == w->ts);
				assert_int_equal(out[i].req, w->req);
				assert_int_equal(out[i].tgt, w->tgt);
				assert_int_equal(out[i].ip, w->ip);
				assert_int_equal(out[i].svc, w->svc);
				assert_int_equal(out[i].res, w->res);
			}
		}
		qli_bits_free(&g.bits);
	}
}

/* A block cut short by any number of bits is refused: its last field
 * always has a bit. */
static void test_every_truncation_refused(void **state)
{
	static seg g;
	qli_idrec out[QLI_MB_RECORDS];

	(void)state;
	for (int s = 0; s < 10; s++) {
		make(&g, s, 7 + (uint64_t)s);
		for (uint32_t b = 0; b < g.nb; b += 1 + g.nb / 4) {
			for (uint64_t end = g.off[b]; end < g.off[b + 1];
			     end++) {
				assert_int_equal(qli_mb_decode(&g.t, g.bits.p,
							       nbytes(&g),
							       g.off[b], end,
							       blk_n(&g, b),
							       out),
						 QL_ECORRUPT);
				assert_non_null(strstr(ql_errmsg(NULL),
						       "mini block"));
			}
		}
		qli_bits_free(&g.bits);
	}
}

/* Every single bit flip: refused, or records within the tables' ranges
 * (a flip can turn a block into another valid one; the frame checksum
 * around it is what detects damage). Memory safety under ASan. */
static void test_bit_flips_stay_in_range(void **state)
{
	static seg g;
	qli_idrec out[QLI_MB_RECORDS];
	unsigned refused = 0, decoded = 0;

	(void)state;
	for (int s = 0; s < 5; s++) {
		make(&g, s, 300 + (uint64_t)s);
		uint32_t b = g.nb / 2;

		for (uint64_t bit = g.off[b]; bit < g.off[b + 1]; bit++) {
			int rc;

			g.bits.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			rc = qli_mb_decode(&g.t, g.bits.p, nbytes(&g),
					   g.off[b], g.off[b + 1],
					   blk_n(&g, b), out);
			g.bits.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			if (rc) {
				assert_int_equal(rc, QL_ECORRUPT);
				refused++;
				continue;
			}
			decoded++;
			for (uint32_t i = 0; i < blk_n(&g, b); i++) {
				assert_true(out[i].req < g.t.nh);
				assert_true(out[i].tgt < g.t.nh);
				assert_true(out[i].ip < g.t.ni);
				assert_true(out[i].ts >= 0 &&
					    out[i].ts < g.t.span);
				assert_true(out[i].res <= 1);
				if (i)
					assert_true(cmp_rec(&out[i - 1],
							    &out[i]) <= 0);
			}
		}
		qli_bits_free(&g.bits);
	}
	assert_true(refused > 0);
	print_message("bit flips: %u refused, %u decoded in range\n", refused,
		      decoded);
}

static void expect_refused(int rc, const char *needle)
{
	assert_int_equal(rc, QL_ECORRUPT);
	if (!strstr(ql_errmsg(NULL), needle))
		fail_msg("message \"%s\" lacks \"%s\"", ql_errmsg(NULL),
			 needle);
}

static void test_bad_tables_refused(void **state)
{
	qli_mbtab t;
	qli_mbcode c;
	uint32_t ok[] = { 0, 5, 10 }, dup[] = { 0, 5, 5 }, off[] = { 1, 5, 10 },
		 end[] = { 0, 5, 9 };
	uint8_t len[4] = { 1, 1, 1, 0 }, big[2] = { 13, 1 };

	(void)state;
	assert_int_equal(qli_mbtab_init(&t, 10, ok, 2, 4, 1000), 0);
	expect_refused(qli_mbtab_init(&t, 10, dup, 2, 4, 1000),
		       "class 2 starts at id 5");
	expect_refused(qli_mbtab_init(&t, 10, off, 2, 4, 1000),
		       "class 0 starts at id 1");
	expect_refused(qli_mbtab_init(&t, 10, end, 2, 4, 1000),
		       "class 2 starts at id 9");
	expect_refused(qli_mbtab_init(&t, 10, ok, 2, 4, 0), "time span 0");
	expect_refused(qli_mbtab_init(&t, 10, ok, 40, 4, 10), "40 handle "
			"classes");
	expect_refused(qli_mbcode_from_lengths(&c, len, 4, "target"),
		       "target code: the lengths are not a prefix code");
	expect_refused(qli_mbcode_from_lengths(&c, big, 2, "requester"),
		       "requester code: symbol 0 has a 13-bit code");
}

static void test_encode_refuses(void **state)
{
	static seg g;
	qli_idrec r[2];

	(void)state;
	make(&g, 2, 5);
	r[0] = g.r[0];
	r[0].ts = 5;
	r[1] = r[0];
	r[1].ts = 4; /* same address, earlier time */
	assert_int_equal(qli_mb_encode(&g.t, &g.bits, r, 2), QL_EINVAL);
	assert_non_null(strstr(ql_errmsg(NULL), "order"));
	r[1].ts = 5; /* the same time is in order */
	assert_int_equal(qli_mb_encode(&g.t, &g.bits, r, 2), 0);
	r[1] = r[0];
	r[1].tgt = g.t.nh;
	assert_int_equal(qli_mb_encode(&g.t, &g.bits, r, 2), QL_EINVAL);
	r[1] = r[0];
	r[1].ts = g.t.span;
	assert_int_equal(qli_mb_encode(&g.t, &g.bits, r, 2), QL_EINVAL);
	assert_int_equal(qli_mb_encode(&g.t, &g.bits, r, 0), QL_EINVAL);
	assert_int_equal(qli_mb_encode(&g.t, &g.bits, g.r,
				       QLI_MB_RECORDS + 1),
			 QL_EINVAL);
	qli_bits_free(&g.bits);
}

/* Skewed counts (a Fibonacci run over 40 symbols) give Huffman lengths
 * far past the limit; the limited ones stay within it and a prefix
 * code, and every present symbol gets a code. */
static void test_lengths_limited(void **state)
{
	uint64_t cnt[QLI_MB_SR] = { 0 };
	uint8_t len[QLI_MB_SR];
	qli_mbcode c;
	unsigned max = 0;

	(void)state;
	cnt[0] = cnt[1] = 1;
	for (int i = 2; i < 40; i++)
		cnt[i] = cnt[i - 1] + cnt[i - 2];
	cnt[300] = 5;
	qli_mbcode_lengths(cnt, QLI_MB_SR, len);
	for (int i = 0; i < (int)QLI_MB_SR; i++) {
		assert_true(len[i] <= QLI_MB_MAXLEN);
		assert_true((len[i] != 0) == (cnt[i] != 0));
		if (len[i] > max)
			max = len[i];
	}
	assert_true(max > 6 && max <= QLI_MB_MAXLEN);
	assert_int_equal(qli_mbcode_from_lengths(&c, len, QLI_MB_SR, "x"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_every_truncation_refused),
		cmocka_unit_test(test_bit_flips_stay_in_range),
		cmocka_unit_test(test_bad_tables_refused),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_lengths_limited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
