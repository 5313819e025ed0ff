/* minib.h - mini blocks: records of a sealed segment readable a few at a
 * time, without decompressing anything (docs/ARCHITECTURE.md, "Lookup
 * latency", the session 8 plan; not yet written to disk by the store:
 * this is the codec the next compact version is built on).
 *
 * A mini block holds up to QLI_MB_RECORDS records, sorted by (address
 * id, time), as a bit string (least significant bit first) read with the
 * segment's code tables (qli_mbtab):
 *   k                    6 bits: the block's Rice parameter
 * then per record:
 *   first record         address id (awidth bits), time (twidth bits)
 *   a new address run    bit 1, the address id's gap (Elias gamma: l-1
 *                        zero bits, a one, the gap's l-1 low bits), time
 *                        (twidth bits)
 *   the same address     bit 0, the time's gap from the previous record,
 *                        Rice-coded (q zero bits, a one, k low bits)
 *   requester            bit 1: the previous record's (same run only),
 *                        bit 0: its class (Huffman) and its offset in
 *                        the class (the class's width)
 *   target               its class (Huffman) and offset
 *   service and result   Huffman over service * 2 + result
 * Times are offsets from the segment's bucket start, below its width.
 * Handle ids are those of the segment's dictionary: classes of ids
 * [cls[c], cls[c + 1]); address ids are in key order, so a run's gap is
 * positive and a CIDR range is a range of ids.
 *
 * Codes are canonical Huffman codes, at most QLI_MB_MAXLEN bits, stored
 * as code lengths (0: symbol absent). Decoding checks every read against
 * the block's end, every code against the tables, every id and time
 * against its range, and fails with QL_ECORRUPT: it never reads past
 * what it was given. */
#ifndef QL_MINIB_H
#define QL_MINIB_H

#include "bits.h"
#include "dict.h"

#include <stddef.h>
#include <stdint.h>

#define QLI_MB_RECORDS 64u  /* records per mini block, at most */
#define QLI_MB_MAXLEN 12u   /* longest code */
#define QLI_MB_SR 512u      /* service * 2 + result symbols */

/* A canonical code: lengths in, decoding table and codes built. */
typedef struct qli_mbcode {
	uint32_t nsym;
	uint8_t len[QLI_MB_SR];
	uint16_t code[QLI_MB_SR];           /* bit-reversed, LSB first */
	uint16_t tab[1u << QLI_MB_MAXLEN];  /* symbol << 4 | length; 0xffff:
					     * no code starts so */
} qli_mbcode;

typedef struct qli_mbtab {
	uint32_t nh, ni;       /* dictionary sizes */
	uint32_t ncls;
	uint32_t cls[QLI_DICT_CLASSES + 1]; /* class starts; cls[ncls] = nh */
	uint8_t cwidth[QLI_DICT_CLASSES];
	uint8_t awidth, twidth;
	int64_t span;          /* time offsets are below it (bucket width) */
	qli_mbcode req, tgt, sr;
} qli_mbtab;

/* Sets up t for nh handles in ncls classes starting at cls[0..ncls]
 * (cls[0] = 0, increasing, cls[ncls] = nh), ni addresses and times below
 * span, with no codes yet. 0 or QL_ECORRUPT (the message names the
 * value). */
int qli_mbtab_init(qli_mbtab *t, uint32_t nh, const uint32_t *cls,
		   uint32_t ncls, uint32_t ni, int64_t span);

/* Builds a code from lengths (len[s] for s < nsym; 0: absent): checks
 * that they are at most QLI_MB_MAXLEN and form a prefix code (Kraft sum
 * at most 1). 0 or QL_ECORRUPT. */
int qli_mbcode_from_lengths(qli_mbcode *c, const uint8_t *len,
			    uint32_t nsym, const char *what);

/* Optimal code lengths for counts (symbols with count 0 get none),
 * limited to QLI_MB_MAXLEN bits (counts are halved until they fit). */
void qli_mbcode_lengths(const uint64_t *count, uint32_t nsym, uint8_t *len);

/* Counts what the codes of t must cover for n records sorted as a mini
 * block sequence (blocks of QLI_MB_RECORDS from r[0]): requester classes
 * (where not the previous record's), target classes, service/result.
 * The arrays are added to (ncls, ncls and QLI_MB_SR entries). */
void qli_mb_count(const qli_mbtab *t, const qli_idrec *r, size_t n,
		  uint64_t *req, uint64_t *tgt, uint64_t *sr);

/* Appends one mini block of n (1..QLI_MB_RECORDS) records, sorted by
 * (address id, time), times relative to the bucket start. QL_EINVAL if
 * they are not in order or out of the tables' ranges, QL_ENOMEM. */
int qli_mb_encode(const qli_mbtab *t, qli_bits *out, const qli_idrec *r,
		  uint32_t n);

/* Decodes the n records of the mini block at bit offset pos of
 * p[0 .. len) (it must end at or before bit end <= 8 * len) into out.
 * 0 or QL_ECORRUPT. */
int qli_mb_decode(const qli_mbtab *t, const uint8_t *p, size_t len,
		  uint64_t pos, uint64_t end, uint32_t n, qli_idrec *out);

#endif
