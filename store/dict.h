/* dict.h - the compact layout of a sealed segment (docs/FORMAT.md §5.9):
 * one dictionary of the segment's handles and one of its addresses, and
 * blocks that hold only dictionary ids.
 *
 * A per-block table repeats every handle in every block it appears in; a
 * day repeats its handles far more often than a block does, so one table
 * per segment, written once the segment is sealed and can no longer
 * grow, stores each handle once. Entries are ordered by frequency class
 * (the bit length of their count, most frequent class first) and by key
 * within a class: ids of busy handles are small numbers (narrow,
 * compressible id columns), and a key is still found by a binary search
 * in each class. Keys are front-coded in pages of QLI_DICT_PAGE entries,
 * each a zstd frame, so a lookup decompresses one page. */
#ifndef QL_DICT_H
#define QL_DICT_H
#include "codec.h"
#include <stdint.h>

#define QLI_MAGIC_HPAGE 0x48444c51u /* "QLDH": handle dictionary page */
#define QLI_MAGIC_IPAGE 0x49444c51u /* "QLDI": address dictionary page */
#define QLI_DICT_PAGE 256u          /* entries per page, at most */
#define QLI_DICT_MAX (1u << 24)     /* entries per dictionary, at most */
#define QLI_IDBLOCK 2048u           /* records per id block */
#define QLI_DICT_CLASSES 33u        /* bit lengths 1..32 (+ spare) */

/* One dictionary as the seal describes it. Class k holds ids
 * [cls[k], cls[k+1]) (cls[ncls] = n); pages never span two classes. */
typedef struct qli_dict {
	uint32_t n;          /* entries */
	uint32_t npage;
	struct qli_dpent {
		uint64_t off;       /* frame header offset */
		uint32_t frame_len; /* 40 + comp_len */
		uint32_t raw_len;
		uint32_t first;     /* first id */
		uint32_t count;     /* entries, 1..QLI_DICT_PAGE */
		uint64_t checksum;
		uint32_t key_off;   /* first key: in keys[] */
		uint8_t key_len;
	} *page;
	uint32_t ncls;
	uint32_t *cls;       /* ncls + 1 entries */
	uint8_t *keys;       /* first keys of the pages, back to back */
	size_t keys_len;
	uint64_t raw;        /* the pages' uncompressed bytes */
} qli_dict;

void qli_dict_free(qli_dict *d);

/* A decoded page: count keys (handles NUL-terminated; addresses 16
 * bytes), ids first .. first + count - 1. */
typedef struct qli_dpage {
	uint32_t first, count;
	char **key;          /* handle pages */
	uint8_t (*ip)[16];   /* address pages */
	uint8_t *len;        /* handle lengths */
	void *mem;
	size_t mem_len;
} qli_dpage;

void qli_dpage_free(qli_dpage *p);
/* A deep copy of a decoded page (dst is overwritten, not freed). */
int qli_dpage_copy(qli_dpage *dst, const qli_dpage *src);

/* Decodes a verified page frame (magic tells the kind). 0, QL_ECORRUPT,
 * QL_ENOMEM. */
int qli_dpage_decode(qli_decoder *d, qli_dpage *pg, const qli_frame_hdr *h,
		     const uint8_t *payload, uint32_t first);

/* Encodes count keys (front-coded) into a whole page frame appended to
 * out. Handle keys: key[i] of len[i] bytes; address keys: 16 bytes. */
int qli_dpage_encode(qli_encoder *e, qli_buf *out, int ip,
		     const uint8_t *const *key, const uint8_t *len,
		     uint32_t count, uint32_t first, qli_frame_hdr *h);

/* An id block's records: ids into the segment's dictionaries. */
typedef struct qli_idrec {
	int64_t ts;
	uint32_t req, tgt, ip;
	uint8_t svc, res;
} qli_idrec;

/* How an id block codes its time column (byte 6 of its payload). */
#define QLI_TIME_VARINT 0 /* deltas as varints (segment version 2) */
#define QLI_TIME_RICE 1   /* deltas Rice-coded (segment version 3) */

/* Encodes n time-sorted records into a whole block frame appended to
 * out. nh and ni are the dictionaries' sizes (they fix the id widths);
 * rice picks the time coding (nonzero in version 3 segments). */
int qli_idblock_encode(qli_encoder *e, qli_buf *out, const qli_idrec *r,
		       uint32_t n, uint32_t nh, uint32_t ni, int rice,
		       qli_frame_hdr *h);

/* Decodes an id block into blk: ts, req, tgt, ipi (dictionary ids, each
 * checked < nh or < ni), svc, res; blk->ids is set, str and ips are not
 * filled. */
int qli_idblock_decode(qli_decoder *d, qli_block *blk, const qli_frame_hdr *h,
		       const uint8_t *payload, uint32_t nh, uint32_t ni);

/* In a page: the index of key (handles: len bytes; addresses: 16), or -1. */
int qli_dpage_find(const qli_dpage *p, const uint8_t *key, size_t len);

/* The page that holds id (id < d->n). */
uint32_t qli_dict_page_of(const qli_dict *d, uint32_t id);

/* Compares a key with page k's first key (memcmp order, shorter first). */
int qli_dict_cmp_first(const qli_dict *d, uint32_t k, const uint8_t *key,
		       size_t len);
#endif
