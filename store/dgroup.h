/* dgroup.h - dictionary groups: a sealed segment's keys readable one at a
 * time, without decompressing a page (docs/ARCHITECTURE.md, "Lookup
 * latency", the session 8 plan; not yet written to disk by the store:
 * the next compact version's dictionaries are built on it).
 *
 * A group holds up to QLI_DG_KEYS consecutive keys of a dictionary as a
 * bit string (least significant bit first), each key front-coded against
 * the one before it in the group (the first is whole), so reading key j
 * decodes keys 0..j of its group: a fraction of a microsecond.
 *
 * A handle:
 *   a phone (+ and digits)   bit 0, 4 bits: digits shared with the
 *                            previous key (0 if it is not a phone),
 *                            4 bits: digits that follow, 4 bits a digit
 *   anything else (email)    bit 1, 5 bits: its domain's index in the
 *                            segment's domain table (qli_dgtab), or 31:
 *                            8 bits of length and the domain's bytes;
 *                            6 bits: local-part bytes shared with the
 *                            previous key's (0 if it is a phone), 7 bits:
 *                            bytes that follow, 6 bits a byte of
 *                            [a-z0-9._-+] or 63 and 8 bits for any other
 * An address: 4 bits: bytes shared with the previous one, then the other
 * bytes of its 16, 8 bits each.
 *
 * Decoding checks every read against the group's end and every length
 * against its limit (a handle is 1 to QL_HANDLE_MAX bytes, none of them
 * NUL) and fails
 * with QL_ECORRUPT naming the key: it never writes past its output. */
#ifndef QL_DGROUP_H
#define QL_DGROUP_H

#include "bits.h"
#include "querylog.h"

#include <stddef.h>
#include <stdint.h>

#define QLI_DG_KEYS 16u    /* keys per group, at most */
#define QLI_DG_DOMAINS 31u /* domains with a 5-bit code */
#define QLI_DG_DOMAIN_MAX 255u

/* The segment's commonest email domains. */
typedef struct qli_dgtab {
	uint32_t ndom;
	uint8_t len[QLI_DG_DOMAINS];
	char dom[QLI_DG_DOMAINS][QLI_DG_DOMAIN_MAX + 1];
} qli_dgtab;

/* Sets up t with n (<= QLI_DG_DOMAINS) domains, dom[i] of len[i] bytes
 * (1..QLI_DG_DOMAIN_MAX, no NUL). 0 or QL_ECORRUPT. */
int qli_dgtab_init(qli_dgtab *t, const char *const *dom, const uint8_t *len,
		   uint32_t n);

/* Picks the QLI_DG_DOMAINS commonest domains of n handles (key[i] of
 * len[i] bytes; phones are skipped) into t. QL_ENOMEM. */
int qli_dgtab_pick(qli_dgtab *t, const char *const *key, const uint8_t *len,
		   uint32_t n);

/* Appends one group of n (1..QLI_DG_KEYS) handles. QL_EINVAL if a key is
 * empty or longer than QL_HANDLE_MAX, QL_ENOMEM. */
int qli_dg_put_handles(const qli_dgtab *t, qli_bits *out,
		       const char *const *key, const uint8_t *len,
		       uint32_t n);

/* Decodes handle j of the group of n at bit pos of p[0 .. len) (ending
 * at or before bit end) into out (NUL-terminated), its length in *olen.
 * 0 or QL_ECORRUPT. */
int qli_dg_get_handle(const qli_dgtab *t, const uint8_t *p, size_t len,
		      uint64_t pos, uint64_t end, uint32_t n, uint32_t j,
		      char out[QL_HANDLE_MAX + 1], uint8_t *olen);

/* The same for 16-byte addresses. */
int qli_dg_put_addrs(qli_bits *out, const uint8_t (*key)[16], uint32_t n);
int qli_dg_get_addr(const uint8_t *p, size_t len, uint64_t pos,
		    uint64_t end, uint32_t n, uint32_t j, uint8_t out[16]);

#endif
