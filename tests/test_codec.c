/* test_codec.c - block encoding: round trips, order, damage detection. */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "codec.h"
#include "dict.h"
#include "err.h"
#include "index.h"

static uint32_t make_recs(qli_rec *r, t_rec *t, uint32_t n, uint64_t seed)
{
	uint64_t rng = seed;

	for (uint32_t i = 0; i < n; i++) {
		t_make(&t[i], &rng, T_EPOCH + (int64_t)(t_rand(&rng) % T_DAY),
		       50 + (unsigned)(seed % 3000));
		r[i].ts = t[i].r.ts;
		r[i].req = t[i].req;
		r[i].tgt = t[i].tgt;
		r[i].req_len = (uint8_t)strlen(t[i].req);
		r[i].tgt_len = (uint8_t)strlen(t[i].tgt);
		memcpy(r[i].ip, t[i].r.ip, 16);
		r[i].svc = t[i].r.service;
		r[i].res = t[i].r.result;
	}
	return n;
}

static void test_roundtrip_sorted_stable(void **state)
{
	static qli_rec r[5000];
	static t_rec t[5000];
	uint32_t sizes[] = { 1, 2, 255, 256, 257, 4096, 5000 };
	qli_encoder *e = qli_encoder_new(3);
	qli_decoder *d = qli_decoder_new();
	qli_block b = { 0 };
	qli_buf out = { 0 };

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
		uint32_t n = make_recs(r, t, sizes[k], k + 1);
		uint64_t want = 0, got = 0;
		qli_frame_hdr h, h2;

		/* force ties: same time for pairs */
		for (uint32_t i = 1; i < n; i += 2)
			r[i].ts = r[i - 1].ts;
		for (uint32_t i = 0; i < n; i++) {
			ql_record x = { r[i].ts, r[i].req, r[i].tgt, { 0 },
					r[i].svc, r[i].res };

			memcpy(x.ip, r[i].ip, 16);
			want += t_hash(&x);
		}
		out.len = 0;
		assert_int_equal(qli_block_encode(e, &out, r, n, &h), 0);
		assert_int_equal(out.len, QLI_FRAME_HDR + h.comp_len);
		assert_int_equal(qli_frame_hdr_read(out.p, &h2), 0);
		assert_int_equal(h2.nrec, n);
		assert_int_equal(qli_frame_verify(out.p, &h2,
						  out.p + QLI_FRAME_HDR), 0);
		assert_int_equal(qli_block_decode(d, &b, &h2,
						  out.p + QLI_FRAME_HDR), 0);
		assert_int_equal(b.n, n);
		for (uint32_t i = 0; i < n; i++) {
			ql_record x = { b.ts[i], b.str[b.req[i]],
					b.str[b.tgt[i]], { 0 }, b.svc[i],
					b.res[i] };

			memcpy(x.ip, b.ips[b.ipi[i]], 16);
			got += t_hash(&x);
			if (i)
				assert_true(b.ts[i - 1] <= b.ts[i]);
		}
		assert_true(got == want);
		assert_int_equal(b.ts[0], h.min_ts);
		assert_int_equal(b.ts[n - 1], h.max_ts);
	}
	qli_block_free(&b);
	qli_buf_free(&out);
	qli_encoder_free(e);
	qli_decoder_free(d);
}

/* The index summary from the encoder's keys equals the one computed from
 * the records, and the payload is the same with or without keys. */
static void test_summary_from_keys(void **state)
{
	static qli_rec r[5000];
	static t_rec t[5000];
	uint32_t sizes[] = { 1, 2, 17, 256, 4096, 5000 };
	qli_encoder *e = qli_encoder_new(3);
	qli_block_keys k = { 0 };
	qli_summary a = { 0 }, b = { 0 };
	qli_buf o1 = { 0 }, o2 = { 0 };

	(void)state;
	for (size_t z = 0; z < sizeof(sizes) / sizeof(*sizes); z++) {
		uint32_t n = make_recs(r, t, sizes[z], 7 * z + 3);
		qli_frame_hdr h1, h2;

		/* a handle in both roles, and a repeated address */
		if (n > 2) {
			r[1].tgt = r[0].req;
			r[1].tgt_len = r[0].req_len;
			memcpy(r[2].ip, r[0].ip, 16);
		}
		o1.len = o2.len = 0;
		assert_int_equal(qli_block_encode(e, &o1, r, n, &h1), 0);
		assert_int_equal(qli_block_encode_keys(e, &o2, r, n, &h2, &k),
				 0);
		assert_int_equal(o1.len, o2.len);
		assert_memory_equal(o1.p, o2.p, o1.len);
		assert_int_equal(k.n, n);
		assert_int_equal(qli_summary_from_recs(&a, r, n), 0);
		assert_int_equal(qli_summary_from_keys(&b, &k), 0);
		assert_int_equal(a.nr, b.nr);
		assert_int_equal(a.nt, b.nt);
		assert_int_equal(a.ni, b.ni);
		assert_memory_equal(a.r, b.r, a.nr * sizeof(*a.r));
		assert_memory_equal(a.t, b.t, a.nt * sizeof(*a.t));
		assert_memory_equal(a.ip, b.ip, (size_t)a.ni * 16);
	}
	qli_summary_free(&a);
	qli_summary_free(&b);
	qli_block_keys_free(&k);
	qli_buf_free(&o1);
	qli_buf_free(&o2);
	qli_encoder_free(e);
}

static void test_every_bit_flip_detected(void **state)
{
	static qli_rec r[64];
	static t_rec t[64];
	qli_encoder *e = qli_encoder_new(3);
	qli_buf out = { 0 };
	qli_frame_hdr h;

	(void)state;
	make_recs(r, t, 64, 9);
	assert_int_equal(qli_block_encode(e, &out, r, 64, &h), 0);
	for (size_t byte = 0; byte < out.len; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			qli_frame_hdr h2;
			int rc;

			out.p[byte] ^= (uint8_t)(1 << bit);
			rc = qli_frame_hdr_read(out.p, &h2);
			if (!rc && QLI_FRAME_HDR + (size_t)h2.comp_len ==
					   out.len)
				rc = qli_frame_verify(out.p, &h2,
						      out.p + QLI_FRAME_HDR);
			else if (!rc)
				rc = QL_ECORRUPT; /* length no longer fits */
			assert_int_equal(rc, QL_ECORRUPT);
			out.p[byte] ^= (uint8_t)(1 << bit);
		}
	}
	qli_buf_free(&out);
	qli_encoder_free(e);
}

static void test_size_lies_refused(void **state)
{
	static qli_rec r[100];
	static t_rec t[100];
	qli_encoder *e = qli_encoder_new(3);
	qli_decoder *d = qli_decoder_new();
	qli_block b = { 0 };
	qli_buf out = { 0 };
	qli_frame_hdr h;

	(void)state;
	make_recs(r, t, 100, 4);
	assert_int_equal(qli_block_encode(e, &out, r, 100, &h), 0);
	/* a header (checksum made valid) that claims a smaller or larger
	 * raw size must fail cleanly, never overrun */
	h.raw_len -= 1;
	assert_int_equal(qli_block_decode(d, &b, &h, out.p + QLI_FRAME_HDR),
			 QL_ECORRUPT);
	h.raw_len += 2;
	assert_int_equal(qli_block_decode(d, &b, &h, out.p + QLI_FRAME_HDR),
			 QL_ECORRUPT);
	h.raw_len -= 1;
	h.nrec = 99;
	assert_int_equal(qli_block_decode(d, &b, &h, out.p + QLI_FRAME_HDR),
			 QL_ECORRUPT);
	/* limits in the header itself */
	qli_put32(out.p + 8, QLI_MAX_RAW + 1);
	assert_int_equal(qli_frame_hdr_read(out.p, &h), QL_ECORRUPT);
	qli_put32(out.p + 8, 100);
	qli_put32(out.p + 12, 0);
	assert_int_equal(qli_frame_hdr_read(out.p, &h), QL_ECORRUPT);
	qli_block_free(&b);
	qli_buf_free(&out);
	qli_encoder_free(e);
	qli_decoder_free(d);
}

/* An id block payload of 3 records (1 handle, 1 address), framed with
 * a valid checksum, must be refused as damage with a message naming what. */
static void refused(qli_encoder *e, qli_decoder *d, qli_block *b,
		    const uint8_t *raw, size_t len, const char *what)
{
	qli_buf out = { 0 };
	qli_frame_hdr hh = { 0 };

	hh.magic = QLI_MAGIC_BLOCK;
	hh.nrec = 3;
	assert_int_equal(qli_frame_compress(e, &out, raw, len, &hh), 0);
	assert_int_equal(qli_frame_hdr_read(out.p, &hh), 0);
	assert_int_equal(qli_idblock_decode(d, b, &hh, out.p + QLI_FRAME_HDR,
					    1, 1),
			 QL_ECORRUPT);
	assert_non_null(strstr(ql_errmsg(NULL), what));
	qli_buf_free(&out);
}

/* Id blocks of compact segments: both time codings round-trip times with
 * any gaps (none, small, ones that need the Rice escape, the largest an
 * int64 allows), and a cut time column is damage, never a crash. */
static void test_idblock_times(void **state)
{
	static qli_idrec r[2048];
	static const uint32_t sizes[] = { 1, 2, 100, 2048 };
	qli_encoder *e = qli_encoder_new(3);
	qli_decoder *d = qli_decoder_new();
	qli_block b = { 0 };
	qli_buf out = { 0 };
	qli_frame_hdr h;
	uint64_t rng = 99;

	(void)state;
	for (int shape = 0; shape < 5; shape++) {
		for (unsigned si = 0; si < 4; si++) {
			uint32_t n = sizes[si];
			int64_t t = shape == 4 ? INT64_MIN / 2 : T_EPOCH;

			for (uint32_t i = 0; i < n; i++) {
				uint64_t x = t_rand(&rng);
				int64_t gap;

				switch (shape) {
				case 0: gap = 0; break;            /* equal */
				case 1: gap = (int64_t)(x % 4); break;
				case 2: gap = (int64_t)(x % 600000); break;
				case 3: /* mostly small, some huge */
					gap = x % 50 ? (int64_t)(x % 1000)
						     : (int64_t)(x >> 24);
					break;
				default: /* the whole int64 range */
					gap = i == n / 2 ? INT64_MAX / 2 + 7
							 : (int64_t)(x % 9);
				}
				if (i)
					t += gap;
				r[i] = (qli_idrec){ t, (uint32_t)(x % 300),
						    (uint32_t)(x >> 9) % 300,
						    (uint32_t)(x >> 20) % 70,
						    (uint8_t)(x >> 40) & 1,
						    (uint8_t)(x >> 41) & 1 };
			}
			for (int rice = 0; rice < 2; rice++) {
				out.len = 0;
				assert_int_equal(qli_idblock_encode(e, &out, r,
								    n, 300, 70,
								    rice, &h),
						 0);
				assert_int_equal(qli_frame_hdr_read(out.p, &h),
						 0);
				assert_int_equal(
					qli_idblock_decode(d, &b, &h,
							   out.p +
								   QLI_FRAME_HDR,
							   300, 70),
					0);
				assert_int_equal(b.n, n);
				for (uint32_t i = 0; i < n; i++) {
					assert_true(b.ts[i] == r[i].ts);
					assert_int_equal(b.req[i], r[i].req);
					assert_int_equal(b.tgt[i], r[i].tgt);
					assert_int_equal(b.ipi[i], r[i].ip);
					assert_int_equal(b.svc[i], r[i].svc);
					assert_int_equal(b.res[i], r[i].res);
				}
			}
		}
	}
	/* a Rice time column cut short, re-framed with a valid checksum */
	{
		uint8_t raw[64], *p = raw;

		qli_put32(p, 3);
		p[4] = 1, p[5] = 1, p[6] = QLI_TIME_RICE, p[7] = 0;
		p += 8;
		*p++ = 0;  /* first time 0 (zigzag) */
		*p++ = 10; /* k */
		*p++ = 0x01; /* one quotient bit, then nothing */
		refused(e, d, &b, raw, (size_t)(p - raw), "time column");
		raw[6] = 2; /* an unknown time coding */
		refused(e, d, &b, raw, (size_t)(p - raw), "time coding");
	}
	qli_block_free(&b);
	qli_buf_free(&out);
	qli_encoder_free(e);
	qli_decoder_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_sorted_stable),
		cmocka_unit_test(test_summary_from_keys),
		cmocka_unit_test(test_every_bit_flip_detected),
		cmocka_unit_test(test_size_lies_refused),
		cmocka_unit_test(test_idblock_times),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
