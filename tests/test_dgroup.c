/* test_dgroup.c - dictionary groups (store/dgroup.c): every key of every
 * group read back exactly, for phones, emails with table and literal
 * domains, odd keys (escapes, no '@', a trailing '@', 254 bytes) and
 * addresses; every truncation refused; every bit flip refused or decoded
 * within bounds; bad tables and keys refused. */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "dgroup.h"
#include "err.h"

#define NK 400

static char keys[NK][QL_HANDLE_MAX + 1];
static const char *kp[NK];
static uint8_t kl[NK];

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* nk handles: sorted phones with shared prefixes, emails over a few
 * domains (some not in the table), and odd ones. */
static uint32_t make_keys(uint64_t seed)
{
	static const char *const doms[] = { "gmail.com", "icloud.com",
					    "example.org", "x.y.z.museum" };
	uint64_t rng = seed;
	uint32_t n = 0;

	for (; n < NK - 8; n++) {
		uint64_t x = t_rand(&rng);
		char *k = keys[n];

		if (x % 5 < 3) { /* a phone, + and 8 to 15 digits */
			unsigned nd = 8 + (unsigned)(x >> 8) % 8;

			k[0] = '+';
			for (unsigned d = 0; d < nd; d++)
				k[1 + d] = (char)('0' +
						  (d < 4 ? (x >> 16) % 3
							 : t_rand(&rng) % 10));
			k[1 + nd] = 0;
		} else { /* an email */
			unsigned nl = 1 + (unsigned)(x >> 8) % 20;

			for (unsigned c = 0; c < nl; c++)
				k[c] = "abcdefgh.XY_!#9"[t_rand(&rng) % 15];
			snprintf(k + nl, QL_HANDLE_MAX + 1 - nl, "@%s",
				 doms[(x >> 20) % 4]);
		}
	}
	/* odd ones */
	strcpy(keys[n++], "no-at-sign");
	strcpy(keys[n++], "trailing@");
	strcpy(keys[n++], "two@at@signs.example");
	strcpy(keys[n++], "+12345678901234567"); /* 17 digits: not a phone */
	strcpy(keys[n++], "+12ab");
	strcpy(keys[n++], "\x7f\x01@\xff");
	memset(keys[n], 'q', QL_HANDLE_MAX); /* the longest */
	keys[n][QL_HANDLE_MAX - 12] = '@';
	keys[n++][QL_HANDLE_MAX] = 0;
	strcpy(keys[n++], "+1");
	for (uint32_t i = 0; i < n; i++)
		kp[i] = keys[i];
	qsort(kp, n, sizeof(*kp), cmp_str);
	for (uint32_t i = 0; i < n; i++)
		kl[i] = (uint8_t)strlen(kp[i]);
	return n;
}

typedef struct groups {
	qli_bits bits;
	uint64_t off[NK / 1 + 2];
	uint32_t first[NK + 2], count[NK + 2], ng;
} groups;

static void encode(groups *g, const qli_dgtab *t, uint32_t n, uint32_t gsz)
{
	memset(g, 0, sizeof(*g));
	for (uint32_t s = 0; s < n; s += gsz) {
		uint32_t c = n - s < gsz ? n - s : gsz;

		g->off[g->ng] = g->bits.nbits;
		g->first[g->ng] = s;
		g->count[g->ng] = c;
		assert_int_equal(qli_dg_put_handles(t, &g->bits, kp + s,
						    kl + s, c),
				 0);
		g->ng++;
	}
	g->off[g->ng] = g->bits.nbits;
}

static size_t nbytes(const groups *g)
{
	return (size_t)((g->bits.nbits + 7) / 8);
}

static void test_handles_roundtrip(void **state)
{
	static groups g;
	qli_dgtab t;
	char out[QL_HANDLE_MAX + 1];
	uint8_t olen;

	(void)state;
	for (int s = 0; s < 6; s++) {
		uint32_t n = make_keys(50 + (uint64_t)s);
		uint32_t gsz = s == 0 ? 1 : s == 1 ? 7 : QLI_DG_KEYS;

		if (s % 3 == 2)
			memset(&t, 0, sizeof(t)); /* no table: literals */
		else
			assert_int_equal(qli_dgtab_pick(&t, kp, kl, n), 0);
		if (s % 3 != 2)
			assert_true(t.ndom >= 1);
		encode(&g, &t, n, gsz);
		for (uint32_t k = 0; k < g.ng; k++)
			for (uint32_t j = 0; j < g.count[k]; j++) {
				assert_int_equal(
					qli_dg_get_handle(&t, g.bits.p,
							  nbytes(&g), g.off[k],
							  g.off[k + 1],
							  g.count[k], j, out,
							  &olen),
					0);
				assert_string_equal(out, kp[g.first[k] + j]);
				assert_int_equal(olen, kl[g.first[k] + j]);
			}
		print_message("shape %d: %u keys, %.2f bytes a key\n", s, n,
			      (double)g.bits.nbits / 8 / n);
		qli_bits_free(&g.bits);
	}
}

static int cmp16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

static void test_addrs_roundtrip_and_truncations(void **state)
{
	static uint8_t a[NK][16];
	qli_bits b = { 0 };
	uint64_t rng = 5, off[NK / QLI_DG_KEYS + 2];
	uint8_t out[16];
	uint32_t ng = 0;

	(void)state;
	for (uint32_t i = 0; i < NK; i++) {
		uint64_t x = t_rand(&rng);

		memset(a[i], 0, 16);
		if (x % 3) { /* IPv4-mapped */
			a[i][10] = a[i][11] = 0xff;
			a[i][12] = (uint8_t)(x >> 8) % 4;
			a[i][13] = (uint8_t)(x >> 16);
			a[i][14] = (uint8_t)(x >> 24);
			a[i][15] = (uint8_t)(x >> 32);
		} else {
			for (int k = 0; k < 16; k++)
				a[i][k] = (uint8_t)(k < 4 ? 0x26 : t_rand(&rng));
		}
	}
	qsort(a, NK, 16, cmp16);
	for (uint32_t s = 0; s < NK; s += QLI_DG_KEYS) {
		off[ng++] = b.nbits;
		assert_int_equal(qli_dg_put_addrs(&b, (const uint8_t(*)[16])&a[s],
						  QLI_DG_KEYS),
				 0);
	}
	off[ng] = b.nbits;
	for (uint32_t k = 0; k < ng; k++) {
		for (uint32_t j = 0; j < QLI_DG_KEYS; j++) {
			assert_int_equal(qli_dg_get_addr(b.p, b.cap, off[k],
							 off[k + 1],
							 QLI_DG_KEYS, j, out),
					 0);
			assert_memory_equal(out, a[k * QLI_DG_KEYS + j], 16);
		}
		for (uint64_t end = off[k]; end < off[k + 1]; end++)
			assert_int_equal(qli_dg_get_addr(b.p, b.cap, off[k],
							 end, QLI_DG_KEYS,
							 QLI_DG_KEYS - 1, out),
					 QL_ECORRUPT);
	}
	qli_bits_free(&b);
}

/* The last key of a group needs every bit of it. */
static void test_handle_truncations_refused(void **state)
{
	static groups g;
	qli_dgtab t;
	char out[QL_HANDLE_MAX + 1];
	uint8_t olen;
	uint32_t n = make_keys(9);

	(void)state;
	assert_int_equal(qli_dgtab_pick(&t, kp, kl, n), 0);
	encode(&g, &t, n, QLI_DG_KEYS);
	for (uint32_t k = 0; k < g.ng; k++)
		for (uint64_t end = g.off[k]; end < g.off[k + 1]; end++) {
			assert_int_equal(
				qli_dg_get_handle(&t, g.bits.p, nbytes(&g),
						  g.off[k], end, g.count[k],
						  g.count[k] - 1, out, &olen),
				QL_ECORRUPT);
			assert_non_null(strstr(ql_errmsg(NULL),
					       "dictionary group"));
		}
	qli_bits_free(&g.bits);
}

static void test_bit_flips_bounded(void **state)
{
	static groups g;
	qli_dgtab t;
	char out[QL_HANDLE_MAX + 1];
	uint8_t olen;
	unsigned refused = 0, decoded = 0;
	uint32_t n = make_keys(77);

	(void)state;
	assert_int_equal(qli_dgtab_pick(&t, kp, kl, n), 0);
	encode(&g, &t, n, QLI_DG_KEYS);
	for (uint32_t k = 0; k < g.ng; k += 3)
		for (uint64_t bit = g.off[k]; bit < g.off[k + 1]; bit++) {
			int rc;

			g.bits.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			rc = qli_dg_get_handle(&t, g.bits.p, nbytes(&g),
					       g.off[k], g.off[k + 1],
					       g.count[k], g.count[k] - 1, out,
					       &olen);
			g.bits.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			if (rc) {
				assert_int_equal(rc, QL_ECORRUPT);
				refused++;
				continue;
			}
			decoded++;
			assert_true(olen >= 1 && olen <= QL_HANDLE_MAX);
			assert_int_equal(strlen(out), olen);
		}
	qli_bits_free(&g.bits);
	assert_true(refused > 0 && decoded > 0);
	print_message("bit flips: %u refused, %u decoded within bounds\n",
		      refused, decoded);
}

static void test_bad_input_refused(void **state)
{
	static const char *const d[] = { "a.com", "" };
	static const uint8_t dl[] = { 5, 0 };
	const char *const two[] = { "x@a.com", "" };
	const uint8_t twol[] = { 7, 0 };
	qli_dgtab t;
	qli_bits b = { 0 };
	char out[QL_HANDLE_MAX + 1];
	uint8_t olen;

	(void)state;
	assert_int_equal(qli_dgtab_init(&t, d, dl, 1), 0);
	assert_int_equal(qli_dgtab_init(&t, d, dl, 2), QL_ECORRUPT);
	assert_non_null(strstr(ql_errmsg(NULL), "domain 1 is empty"));
	assert_int_equal(qli_dgtab_init(&t, d, dl, 40), QL_ECORRUPT);
	assert_non_null(strstr(ql_errmsg(NULL), "40 domains"));
	assert_int_equal(qli_dgtab_init(&t, d, dl, 1), 0);
	assert_int_equal(qli_dg_put_handles(&t, &b, two, twol, 2), QL_EINVAL);
	assert_non_null(strstr(ql_errmsg(NULL), "key 1: 0 bytes"));
	assert_int_equal(qli_dg_put_handles(&t, &b, two, twol, 0), QL_EINVAL);
	assert_int_equal(qli_dg_put_handles(&t, &b, two, twol, 1), 0);
	/* a domain index past the table: "x@a.com" read with no table */
	memset(&t, 0, sizeof(t));
	assert_int_equal(qli_dg_get_handle(&t, b.p, b.cap, 0, b.nbits, 1, 0,
					   out, &olen),
			 QL_ECORRUPT);
	/* j past n, n past the limit */
	assert_int_equal(qli_dg_get_handle(&t, b.p, b.cap, 0, b.nbits, 1, 1,
					   out, &olen),
			 QL_ECORRUPT);
	assert_int_equal(qli_dg_get_handle(&t, b.p, b.cap, 0, b.nbits, 17, 0,
					   out, &olen),
			 QL_ECORRUPT);
	qli_bits_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handles_roundtrip),
		cmocka_unit_test(test_addrs_roundtrip_and_truncations),
		cmocka_unit_test(test_handle_truncations_refused),
		cmocka_unit_test(test_bit_flips_bounded),
		cmocka_unit_test(test_bad_input_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
