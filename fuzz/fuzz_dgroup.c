/* fuzz_dgroup.c - dictionary groups (store/dgroup.c) from arbitrary
 * tables and bits: qli_dgtab_init, qli_dg_get_handle, qli_dg_get_addr.
 *
 * Input:
 *   byte 0        bit 7: an address group, else handles; keys in the
 *                 group 1 + b % 16
 *   byte 1        domains in the table (b % 32; 32 and up are refused)
 *   then          per domain a length byte and that many bytes
 *   the rest      the group's bits, in a buffer of exactly that many
 *                 bytes (ASan catches an over-read)
 * Every key of the group is read. A key that reads must be 1 to
 * QL_HANDLE_MAX bytes with no NUL; when all of them read, encoding them
 * again must read back the same keys, or the target aborts. */
#include "dgroup.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static qli_dgtab t;
	static char keys[QLI_DG_KEYS][QL_HANDLE_MAX + 1];
	static uint8_t addrs[QLI_DG_KEYS][16];
	const char *dom[32], *kp[QLI_DG_KEYS];
	uint8_t dlen[32], klen[QLI_DG_KEYS];
	char out[QL_HANDLE_MAX + 1];
	qli_bits bits = { 0 };
	uint32_t n, nd, all = 1;
	size_t at = 2;
	uint8_t *buf, olen;
	int ip;

	if (size < 2)
		return 0;
	ip = data[0] >> 7;
	n = 1 + (data[0] & 0x7f) % QLI_DG_KEYS;
	nd = data[1] % 32;
	for (uint32_t i = 0; i < nd; i++) {
		if (at >= size || size - at - 1 < data[at])
			return 0;
		dlen[i] = data[at];
		dom[i] = (const char *)data + at + 1;
		at += 1 + (size_t)data[at];
	}
	if (qli_dgtab_init(&t, dom, dlen, nd)) {
		qli_clear_err();
		return 0;
	}
	size -= at;
	buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	memcpy(buf, data + at, size);
	for (uint32_t j = 0; j < n; j++) {
		int rc = ip ? qli_dg_get_addr(buf, size, 0, (uint64_t)size * 8,
					      n, j, addrs[j])
			    : qli_dg_get_handle(&t, buf, size, 0,
						(uint64_t)size * 8, n, j,
						keys[j], &klen[j]);

		if (rc) {
			all = 0;
			continue;
		}
		if (!ip && (klen[j] < 1 || klen[j] > QL_HANDLE_MAX ||
			    strlen(keys[j]) != klen[j]))
			abort();
		kp[j] = keys[j];
	}
	if (all) {
		/* what read back encodes and reads back the same */
		if (ip ? qli_dg_put_addrs(&bits,
					  (const uint8_t(*)[16])addrs, n)
		       : qli_dg_put_handles(&t, &bits, kp, klen, n))
			abort();
		for (uint32_t j = 0; j < n; j++) {
			uint8_t a[16];

			if (ip) {
				if (qli_dg_get_addr(bits.p, bits.cap, 0,
						    bits.nbits, n, j, a) ||
				    memcmp(a, addrs[j], 16))
					abort();
			} else if (qli_dg_get_handle(&t, bits.p, bits.cap, 0,
						     bits.nbits, n, j, out,
						     &olen) ||
				   strcmp(out, keys[j])) {
				abort();
			}
		}
	}
	qli_bits_free(&bits);
	free(buf);
	qli_clear_err();
	return 0;
}
