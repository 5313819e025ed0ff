/* fuzz_block.c - one block frame (header + payload) through the reader's
 * path: qli_frame_hdr_read, qli_frame_verify, qli_block_decode.
 *
 * Input: one flag byte, then the frame.
 *   bit 0  fix the checksum (recompute it over the header and payload) so
 *          the fuzzer reaches the decoder instead of dying on xxh64;
 *   bit 1  fix comp_len to the number of payload bytes given.
 * The payload is handed over in a buffer of exactly comp_len bytes, so an
 * over-read is caught by ASan. A decoded block is walked (every index
 * dereferenced) and re-encoded: the re-encoded block must decode to the
 * same records, or the target aborts. */
#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static qli_decoder *dec;
static qli_encoder *enc;

static void check_same(const qli_block *a, const qli_block *b)
{
	if (a->n != b->n)
		abort();
	for (uint32_t i = 0; i < a->n; i++)
		if (a->ts[i] != b->ts[i] ||
		    strcmp(a->str[a->req[i]], b->str[b->req[i]]) ||
		    strcmp(a->str[a->tgt[i]], b->str[b->tgt[i]]) ||
		    memcmp(a->ips[a->ipi[i]], b->ips[b->ipi[i]], 16) ||
		    a->svc[i] != b->svc[i] || a->res[i] != b->res[i])
			abort();
}

/* Encodes the decoded records again and decodes the result. */
static void roundtrip(const qli_block *blk)
{
	qli_block again = { 0 };
	qli_buf out = { 0 };
	qli_frame_hdr h;
	qli_rec *r;

	for (uint32_t i = 0; i < blk->nstr; i++)
		if (!blk->str[i][0])
			return; /* a NUL inside a handle: not a store record */
	r = calloc(blk->n, sizeof(*r));
	if (!r)
		return;
	for (uint32_t i = 0; i < blk->n; i++) {
		r[i].ts = blk->ts[i];
		r[i].req = blk->str[blk->req[i]];
		r[i].tgt = blk->str[blk->tgt[i]];
		r[i].req_len = (uint8_t)strlen(r[i].req);
		r[i].tgt_len = (uint8_t)strlen(r[i].tgt);
		memcpy(r[i].ip, blk->ips[blk->ipi[i]], 16);
		r[i].svc = blk->svc[i];
		r[i].res = blk->res[i];
	}
	if (qli_block_encode(enc, &out, r, blk->n, &h) == 0) {
		qli_frame_hdr h2;

		if (qli_frame_hdr_read(out.p, &h2) ||
		    qli_frame_verify(out.p, &h2, out.p + QLI_FRAME_HDR) ||
		    qli_block_decode(dec, &again, &h2, out.p + QLI_FRAME_HDR))
			abort(); /* the encoder wrote what the decoder
				  * refuses */
		check_same(blk, &again);
	}
	qli_block_free(&again);
	qli_buf_free(&out);
	free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hdr[QLI_FRAME_HDR], flags;
	qli_block blk = { 0 };
	qli_frame_hdr h;
	uint8_t *payload;
	size_t plen;

	if (!dec) {
		dec = qli_decoder_new();
		enc = qli_encoder_new(1);
		if (!dec || !enc)
			abort();
	}
	if (size < 1 + QLI_FRAME_HDR)
		return 0;
	flags = data[0];
	memcpy(hdr, data + 1, QLI_FRAME_HDR);
	plen = size - 1 - QLI_FRAME_HDR;
	if (flags & 2)
		qli_put32(hdr + 4, (uint32_t)plen);
	if (qli_frame_hdr_read(hdr, &h) || h.magic != QLI_MAGIC_BLOCK ||
	    h.comp_len > plen)
		return 0;
	payload = malloc(h.comp_len ? h.comp_len : 1);
	if (!payload)
		return 0;
	memcpy(payload, data + 1 + QLI_FRAME_HDR, h.comp_len);
	if (flags & 1) {
		qli_frame_hdr_write(hdr, &h, payload);
		if (qli_frame_hdr_read(hdr, &h))
			abort();
	}
	if (qli_frame_verify(hdr, &h, payload) == 0 &&
	    qli_block_decode(dec, &blk, &h, payload) == 0) {
		size_t sum = 0;

		if (blk.n != h.nrec || blk.ts[0] != h.min_ts ||
		    blk.ts[blk.n - 1] != h.max_ts)
			abort();
		for (uint32_t i = 0; i < blk.n; i++) {
			if (i && blk.ts[i] < blk.ts[i - 1])
				abort(); /* a block is sorted by time */
			sum += strlen(blk.str[blk.req[i]]) +
			       strlen(blk.str[blk.tgt[i]]) +
			       blk.ips[blk.ipi[i]][15] + blk.svc[i] +
			       blk.res[i];
		}
		if (sum == (size_t)-1)
			abort(); /* keeps the walk from being optimised out */
		roundtrip(&blk);
	}
	qli_block_free(&blk);
	free(payload);
	return 0;
}
