/* index.h - the LMDB index: which blocks of which segment may hold a
 * handle (as requester or target) or an IP address.
 *
 * The only module that includes lmdb.h. The index is derived data: it can
 * always be rebuilt from the segments, it is committed off the durability
 * path, and readers treat blocks it does not cover yet as candidates. Key
 * layout (docs/FORMAT.md):
 *
 *   'D' seg                      -> the segment's block directory
 *   'B' seg blk                  -> summary of one block (unsealed segment)
 *   'S' seg type firstkey        -> a chunk of a sealed segment's index:
 *                                   of a .qls file keyed by handle hash
 *                                   and address, of a compact one by
 *                                   dictionary id (keys implicit)
 *
 * seg = 8-byte big-endian bucket start (sign bit flipped) + 4-byte
 * generation, so one segment's keys are contiguous (expiry deletes one
 * range) and a lookup is one seek per segment. */
#ifndef QL_INDEX_H
#define QL_INDEX_H

#include "codec.h"
#include "segment.h"

#include <stdint.h>

typedef struct qli_index qli_index;

/* Opens (creating if writable) the index in directory "index" under
 * dirfd. *out is NULL (and 0 returned) for a reader when there is no
 * index yet. A damaged index returns QL_ECORRUPT: the writer then removes
 * and rebuilds it. */
int qli_index_open(qli_index **out, int dirfd, const char *store_path,
		   int writable, unsigned dir_mode, unsigned file_mode);
void qli_index_close(qli_index *ix);
/* Removes the index files (for a rebuild). */
int qli_index_destroy(int dirfd);

/* Distinct keys of one block, sorted. */
typedef struct qli_summary {
	uint32_t nr, nt, ni;
	uint32_t *r, *t;     /* handle hashes as requester, as target */
	uint8_t (*ip)[16];
	size_t cap;
	/* scratch: radix sort buffers, the IP set */
	uint32_t *tmp, *set;
	uint8_t (*tmpip)[16];
	size_t setcap;
} qli_summary;
int qli_summary_from_recs(qli_summary *s, const qli_rec *recs, uint32_t n);
/* The same summary from what the block's encoder found (k->n records):
 * a hash per distinct handle instead of two per record, and the
 * distinct addresses already known. */
int qli_summary_from_keys(qli_summary *s, const qli_block_keys *k);
int qli_summary_from_block(qli_summary *s, const qli_block *b);
void qli_summary_free(qli_summary *s);
uint32_t qli_handle_hash(const char *h, size_t len);

/* Keys of an unsealed segment gathered block by block, for its sealed
 * index. */
typedef struct qli_segacc qli_segacc;
qli_segacc *qli_segacc_new(void);
void qli_segacc_free(qli_segacc *a);

/* Adds one block's keys to acc (no index write). */
int qli_segacc_add(qli_segacc *a, const qli_summary *s, uint32_t blk);

/* A compact segment's keys are its dictionary ids: set_ids turns a new,
 * empty acc into one for nh handle and na address ids; add_ids adds the
 * ids of one block (n records; repeats are fine). */
int qli_segacc_set_ids(qli_segacc *a, uint32_t nh, uint32_t na);
int qli_segacc_add_ids(qli_segacc *a, const uint32_t *req,
		       const uint32_t *tgt, const uint32_t *ip, uint32_t n,
		       uint32_t blk);
/* The key of handle (ip = 0) or address (ip = 1) id, for the class
 * filters; every id's key must be given for them to be written. */
void qli_segacc_key(qli_segacc *a, int ip, uint32_t id, const void *key,
		    size_t len);

/* ---- writer (one thread) ---- */

/* Stages block blk of sf: its summary entry and, unless acc is NULL, the
 * keys in acc. */
int qli_index_put_block(qli_index *ix, const qli_segfile *sf, uint32_t blk,
			const qli_summary *sum, qli_segacc *acc);
/* Stages the segment's directory entry as sf is now. */
int qli_index_put_dir(qli_index *ix, const qli_segfile *sf);
/* Stages the sealed index of sf (built from acc), dropping its block
 * summaries. */
int qli_index_seal(qli_index *ix, const qli_segfile *sf, qli_segacc *acc);
/* Stages removal of every entry of one segment. */
int qli_index_drop(qli_index *ix, int64_t bucket_start, uint32_t gen);
/* Commits what is staged (nothing to do if nothing is). */
int qli_index_commit(qli_index *ix);
void qli_index_abort(qli_index *ix);

/* How far the index agrees with the segment on disk: *nblk gets the
 * number of leading blocks indexed consistently (their checksums match),
 * *sealed_ok whether the sealed index matches the sealed file. */
int qli_index_check(qli_index *ix, const qli_segfile *sf, uint32_t *nblk,
		    int *sealed_ok);
/* Loads the keys of sf's first nblk block summaries into acc. */
int qli_index_load_acc(qli_index *ix, const qli_segfile *sf, uint32_t nblk,
		       qli_segacc *acc);
/* Calls fn for every segment the index has an entry for. */
int qli_index_segments(qli_index *ix,
		       int (*fn)(int64_t bucket_start, uint32_t gen, void *),
		       void *ctx);

/* ---- readers (any thread, any process) ---- */

typedef struct qli_ixread qli_ixread;
int qli_index_begin(qli_index *ix, qli_ixread **out);
void qli_index_end(qli_ixread *rt);

/* Parses the value of a directory entry ('D', docs/FORMAT.md §6) into
 * sf: sealed, size, seal_checksum, the block directory (sf->blk is freed
 * and replaced), nrec, raw_bytes, and min_ts/max_ts when it has blocks.
 * QL_ECORRUPT, QL_ENOMEM. For fuzz/fuzz_catalog.c. */
int qli_index_dir_parse(const void *p, size_t len, qli_segfile *sf);

/* Fills sf (name, bucket, gen, sealed, block directory; fd = -1) from the
 * segment's directory entry. QL_ENOTFOUND if the index has none. */
int qli_index_get_dir(qli_ixread *rt, int64_t bucket_start, uint32_t gen,
		      int64_t bucket_width, qli_segfile *sf);

#define QLI_LOOK_REQ 1
#define QLI_LOOK_TGT 2
/* Marks in bits (one per block of sf, sf->nblk bits, zeroed by the
 * caller) every block that may hold the handle hash in the given roles
 * (QLI_LOOK_* or both), or an IP in [lo, hi]. */
int qli_index_lookup_handle(qli_ixread *rt, const qli_segfile *sf,
			    uint32_t hash, int roles, uint8_t *bits);
int qli_index_lookup_ip(qli_ixread *rt, const qli_segfile *sf,
			const uint8_t lo[16], const uint8_t hi[16],
			uint8_t *bits);
/* The same for a compact segment indexed by id (sf->ix_byid): handle
 * id hid, or every address id set in the bitmap idset (nid ids). */
int qli_index_lookup_hid(qli_ixread *rt, const qli_segfile *sf,
			 uint32_t hid, int roles, uint8_t *bits);
int qli_index_lookup_aids(qli_ixread *rt, const qli_segfile *sf,
			  const uint8_t *idset, uint32_t nid, uint8_t *bits);
/* The frequency classes of a compact segment's handle (ip = 0) or
 * address (ip = 1) dictionary that may hold key: bit c of *mask for class
 * c (classes 64 and up are never excluded by the caller); *ncls gets the
 * filter's class count, which the caller checks against the dictionary
 * (a mismatch: use no filter). QL_ENOTFOUND when the index has no filter
 * (then every class may). */
int qli_index_filter(qli_ixread *rt, const qli_segfile *sf, int ip,
		     const void *key, size_t len, uint64_t *mask,
		     uint32_t *ncls);

/* The parsers behind the two, on a value's bytes (fuzz/fuzz_catalog.c):
 * 0 or QL_ECORRUPT, never a read outside [val, val + len). The chunk
 * scan marks, in bits (nblk bits), the blocks of the ids it is asked for
 * (want: a bitmap of ids up to last; NULL: id one) from the chunk whose
 * first id is first; *past = 1 once it went past last. */
int qli_index_idchunk_scan(uint32_t first, const void *val, size_t len,
			   char type, const uint8_t *want, uint32_t one,
			   uint32_t last, int roles, uint8_t *bits,
			   uint32_t nblk, int *past);
int qli_index_filter_test(const void *val, size_t len, int ip,
			  const void *key, size_t klen, uint64_t *mask,
			  uint32_t *ncls);

#endif
