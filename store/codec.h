/* codec.h - block encoding: records <-> one checksummed, compressed frame.
 *
 * The only module that includes zstd.h and xxhash.h. A frame is a 40-byte
 * header followed by a zstd frame holding the block's columns; the bytes
 * are documented in docs/FORMAT.md. */
#ifndef QL_CODEC_H
#define QL_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QLI_FRAME_HDR 40
#define QLI_MAGIC_BLOCK 0x4b424c51u /* "QLBK" little-endian */
#define QLI_MAGIC_SEAL 0x4c534c51u  /* "QLSL" */
#define QLI_MAGIC_SYNC 0x59534c51u  /* "QLSY": a sync mark, segment.c */
#define QLI_MAGIC_HPAGE_ 0x48444c51u /* "QLDH", see dict.h */
#define QLI_MAGIC_IPAGE_ 0x49444c51u /* "QLDI" */
#define QLI_MAX_BLOCK_RECORDS 65536u
#define QLI_MAX_RAW (64u << 20)     /* refuse larger blocks: bomb guard */
/* No frame of a block within QLI_MAX_RAW is longer (zstd's bound for
 * incompressible input is the input plus 1/256 plus a few bytes): a
 * directory entry claiming more is damage, refused before any
 * allocation of that size. */
#define QLI_MAX_FRAME (QLI_MAX_RAW + (QLI_MAX_RAW >> 7) + 4096u)

/* An in-memory record: handles are canonical and NUL-terminated. */
typedef struct qli_rec {
	int64_t ts;
	const char *req;
	const char *tgt;
	uint8_t ip[16];
	uint8_t svc;
	uint8_t res;
	uint8_t req_len;
	uint8_t tgt_len;
} qli_rec;

typedef struct qli_frame_hdr {
	uint32_t magic;
	uint32_t comp_len; /* bytes of payload after the header */
	uint32_t raw_len;  /* decompressed payload bytes (0 for a seal) */
	uint32_t nrec;
	int64_t min_ts;
	int64_t max_ts;
	uint64_t checksum; /* xxh64 of header bytes 0..31 and the payload */
} qli_frame_hdr;

/* Copies n bytes (a handle, with or without its NUL) with a few
 * fixed-size moves: the handles are short, and an inlined memcpy of a variable length ("rep movs") costs
 * more to start than to copy them. */
static inline void qli_copy_short(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	if (n >= 16) {
		size_t i;

		for (i = 0; i + 16 < n; i += 16)
			memcpy(d + i, s + i, 16);
		memcpy(d + n - 16, s + n - 16, 16);
	} else if (n >= 8) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		memcpy(d, s, 4);
		memcpy(d + n - 4, s + n - 4, 4);
	} else {
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
	}
}

/* Growable byte buffer. */
typedef struct qli_buf {
	uint8_t *p;
	size_t len, cap;
} qli_buf;
int qli_buf_reserve(qli_buf *b, size_t extra);
void qli_buf_free(qli_buf *b);

/* Little-endian helpers. */
/* Inline: every parser of the formats calls them per field (a block
 * directory entry is seven), and an out-of-line call per field was a
 * tenth of an absent handle's lookup. */
static inline void qli_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void qli_put64(uint8_t *p, uint64_t v)
{
	qli_put32(p, (uint32_t)v);
	qli_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t qli_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t qli_get64(const uint8_t *p)
{
	return (uint64_t)qli_get32(p) | (uint64_t)qli_get32(p + 4) << 32;
}

uint64_t qli_hash64(const void *p, size_t len, uint64_t seed);
/* A faster hash for tables in memory only (XXH3): never stored, so it
 * may change between versions, unlike qli_hash64's values. */
uint64_t qli_hash_mem(const void *p, size_t len);

/* LEB128 unsigned varints: 7 bits a byte, low first. put returns the
 * bytes written (at most 10); get returns 0 and advances *pp, or -1 if
 * the input ends or the value overflows 64 bits. */
size_t qli_put_varint(uint8_t *p, uint64_t v);
int qli_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v);

/* Writes a frame header (computing the checksum over it and payload). */
void qli_frame_hdr_write(uint8_t out[QLI_FRAME_HDR], qli_frame_hdr *h,
			 const uint8_t *payload);
/* Parses a header and checks magic and length limits (not the checksum).
 * Returns 0 or QL_ECORRUPT (message says what is wrong, no path). */
int qli_frame_hdr_read(const uint8_t in[QLI_FRAME_HDR], qli_frame_hdr *h);
/* Checks the checksum of a header + its payload. 0 or QL_ECORRUPT. */
int qli_frame_verify(const uint8_t hdr[QLI_FRAME_HDR], const qli_frame_hdr *h,
		     const uint8_t *payload);

typedef struct qli_encoder qli_encoder;
qli_encoder *qli_encoder_new(int level);
/* zstd's fastest level (negative: hardly more than a copy). */
int qli_zstd_fastest_level(void);
void qli_encoder_free(qli_encoder *e);
/* Encodes n (1..QLI_MAX_BLOCK_RECORDS) records into a whole frame
 * (header + payload) appended to out. Records are stored sorted by time
 * (stable: ties keep their order). On return *hdr describes the frame and
 * *raw_len the uncompressed size. */
int qli_block_encode(qli_encoder *e, qli_buf *out, const qli_rec *recs,
		     uint32_t n, qli_frame_hdr *hdr);

/* The distinct handles and addresses of a block as its encoder found
 * them, for the block's index summary (qli_summary_from_keys), which then
 * need not find them again. Pointers are into the records encoded. */
#define QLI_KEY_REQ 1 /* role: seen as requester */
#define QLI_KEY_TGT 2 /* seen as target */
typedef struct qli_block_keys {
	uint32_t n;           /* records of the block; 0: not filled */
	uint32_t nstr, nip;
	const char **str;     /* nstr distinct handles */
	uint8_t *len, *role;  /* their lengths, their QLI_KEY_* roles */
	const uint8_t **ip;   /* nip distinct addresses (16 bytes) */
	size_t cap;           /* entries the arrays have room for */
} qli_block_keys;
void qli_block_keys_free(qli_block_keys *k);
/* qli_block_encode, and with keys not NULL fills *keys as well (or sets
 * keys->n to 0 when it cannot allocate them: the encoding still
 * succeeds). */
int qli_block_encode_keys(qli_encoder *e, qli_buf *out, const qli_rec *recs,
			  uint32_t n, qli_frame_hdr *hdr,
			  qli_block_keys *keys);

/* A decoded block. Arrays have n entries; handles index str[]. */
typedef struct qli_block {
	uint32_t n;
	int64_t *ts;
	uint32_t *req, *tgt, *ipi;
	uint8_t *svc, *res;
	uint32_t nstr, nip;
	int ids;             /* req, tgt, ipi are segment dictionary ids
				* (dict.h): str and ips are not filled */
	char **str;          /* NUL-terminated handles */
	uint8_t (*ips)[16];
	/* owned storage */
	void *mem;
	size_t memcap;
	void *raw;
	size_t rawcap;
} qli_block;

typedef struct qli_decoder qli_decoder;
qli_decoder *qli_decoder_new(void);
void qli_decoder_free(qli_decoder *d);
/* Decodes a verified frame's payload into blk (reusing its storage).
 * Returns 0, QL_ECORRUPT (structure or size mismatch) or QL_ENOMEM. */
int qli_block_decode(qli_decoder *d, qli_block *blk, const qli_frame_hdr *h,
		     const uint8_t *payload);
void qli_block_free(qli_block *blk);

/* Sizes blk's storage for n records, nstr handles (strbytes bytes with
 * their NULs) and nip addresses; sets the column pointers. */
int qli_block_layout(qli_block *b, uint32_t n, uint32_t nstr, uint32_t nip,
		     size_t strbytes);
/* Compresses len raw bytes into a whole frame appended to out; hdr has
 * magic, nrec, min_ts, max_ts set, the rest is filled. */
int qli_frame_compress(qli_encoder *e, qli_buf *out, const uint8_t *raw,
		       size_t len, qli_frame_hdr *hdr);
/* Decompresses a frame's payload into *buf (grown to raw_len). */
int qli_frame_decompress(qli_decoder *d, const qli_frame_hdr *h,
			 const uint8_t *payload, void **buf, size_t *cap);

#endif
