/* fuzz_minib.c - mini blocks (store/minib.c) from arbitrary tables and
 * bits: qli_mbtab_init, qli_mbcode_from_lengths, qli_mb_decode.
 *
 * Input:
 *   byte 0        records (1 + b % 64)
 *   byte 1        handle classes (1 + b % 33)
 *   bytes 2-4     handles (24 bits, at least the classes), 5-7 addresses
 *   byte 8        time span: 2^(b % 63) microseconds
 *   then          a code length byte per handle class for the requester,
 *                 the same for the target, 16 for service/result symbols
 *                 0-15 (the others absent), each taken % 16
 *   the rest      the block's bits, handed over in a buffer of exactly
 *                 that many bytes (ASan catches an over-read)
 * Class starts are spread evenly. Tables refused: fine. A decoded block
 * must be in range and in (address, time) order, and encoding it again
 * must give records that decode to the same, or the target aborts. */
#include "err.h"
#include "minib.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const qli_idrec *a, const qli_idrec *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (a[i].ts != b[i].ts || a[i].req != b[i].req ||
		    a[i].tgt != b[i].tgt || a[i].ip != b[i].ip ||
		    a[i].svc != b[i].svc || a[i].res != b[i].res)
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static qli_mbtab t;
	uint32_t cls[QLI_DICT_CLASSES + 1], ncls, nh, ni, n;
	qli_idrec out[QLI_MB_RECORDS], again[QLI_MB_RECORDS];
	uint8_t len[QLI_MB_SR] = { 0 };
	qli_bits bits = { 0 };
	size_t at = 9;
	uint8_t *buf;

	if (size < at)
		return 0;
	n = 1 + data[0] % QLI_MB_RECORDS;
	ncls = 1 + data[1] % QLI_DICT_CLASSES;
	nh = (uint32_t)data[2] | (uint32_t)data[3] << 8 |
	     (uint32_t)data[4] << 16;
	ni = (uint32_t)data[5] | (uint32_t)data[6] << 8 |
	     (uint32_t)data[7] << 16;
	if (nh < ncls)
		nh = ncls;
	for (uint32_t c = 0; c <= ncls; c++)
		cls[c] = (uint32_t)((uint64_t)nh * c / ncls);
	if (qli_mbtab_init(&t, nh, cls, ncls, ni,
			   (int64_t)1 << (data[8] % 63)))
		return 0;
	if (size < at + 2 * ncls + 16)
		return 0;
	for (uint32_t c = 0; c < ncls; c++)
		len[c] = data[at + c] % 16;
	if (qli_mbcode_from_lengths(&t.req, len, ncls, "requester"))
		return 0;
	at += ncls;
	for (uint32_t c = 0; c < ncls; c++)
		len[c] = data[at + c] % 16;
	if (qli_mbcode_from_lengths(&t.tgt, len, ncls, "target"))
		return 0;
	at += ncls;
	memset(len, 0, sizeof(len));
	for (uint32_t s = 0; s < 16; s++)
		len[s] = data[at + s] % 16;
	if (qli_mbcode_from_lengths(&t.sr, len, QLI_MB_SR, "service"))
		return 0;
	at += 16;
	size -= at;
	buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	memcpy(buf, data + at, size);
	if (qli_mb_decode(&t, buf, size, 0, (uint64_t)size * 8, n, out) ==
	    0) {
		for (uint32_t i = 0; i < n; i++) {
			if (out[i].req >= nh || out[i].tgt >= nh ||
			    out[i].ip >= ni || out[i].ts < 0 ||
			    out[i].ts >= t.span || out[i].res > 1)
				abort();
			if (i && (out[i].ip < out[i - 1].ip ||
				  (out[i].ip == out[i - 1].ip &&
				   out[i].ts < out[i - 1].ts)))
				abort();
		}
		/* what decoded encodes (the codes cover it) and reads back */
		if (qli_mb_encode(&t, &bits, out, n) ||
		    qli_mb_decode(&t, bits.p, bits.cap, 0, bits.nbits, n,
				  again) ||
		    !same(out, again, n))
			abort();
	}
	qli_bits_free(&bits);
	free(buf);
	qli_clear_err();
	return 0;
}
