/* segment.h - one segment file: a header, block frames, and (once sealed)
 * a seal frame with the block directory and a trailer pointing at it.
 * Bytes in docs/FORMAT.md. */
#ifndef QL_SEGMENT_H
#define QL_SEGMENT_H

#include "codec.h"
#include "dict.h"

#include <stdint.h>

#define QLI_SEG_HDR 64
#define QLI_SEG_TRAILER 16
#define QLI_SEG_VERSION 4 /* .qls files: blocks and sync marks */
#define QLI_SEG_VERSION1 1 /* .qls files before the sync marks: still
			    * read */
#define QLI_SEG_VERSION_COMPACT 3 /* .qlc files: dictionaries + id blocks,
				    * times Rice-coded */
#define QLI_SEG_VERSION_COMPACT2 2 /* .qlc files before the Rice-coded
				     * times: still read */
/* The version the compactor writes: QLI_SEG_VERSION_COMPACT; tests set
 * QLI_SEG_VERSION_COMPACT2 to make segments as an older build did. */
extern int qli_compact_version;
#define QLI_SEG_NAME_MAX 64
#define QLI_SEG_DIR "seg"

typedef struct qli_blkent {
	uint64_t off;      /* offset of the frame header */
	int64_t min_ts, max_ts;
	uint32_t nrec;
	uint32_t frame_len; /* header + payload */
	uint32_t raw_len;
	uint64_t checksum;
} qli_blkent;

typedef struct qli_segfile {
	char name[QLI_SEG_NAME_MAX]; /* relative to the seg directory */
	int fd;
	int64_t bucket_start, bucket_width;
	uint32_t gen;
	int sealed;
	int damaged;        /* a bad frame with valid frames after it */
	int torn_create;    /* load failed: shorter than the header */
	uint64_t size;      /* end of the valid data (incl. seal if sealed) */
	uint64_t file_size; /* size on disk when loaded */
	qli_blkent *blk;
	uint32_t nblk, blkcap;
	uint64_t nrec, raw_bytes;
	int64_t min_ts, max_ts;
	uint64_t seal_checksum; /* chained over the frames' checksums */
	int compact;        /* a .qlc file (version 2 or 3): blocks hold ids */
	int version;        /* the header's: 1 or 4 (.qls), 2 or 3 (.qlc) */
	qli_dict dh, di;    /* compact: handle and address dictionaries */
	int ix_byid;        /* from the index: its postings are keyed by
			     * dictionary id (compact, directory version 2) */
} qli_segfile;

/* The 48-byte form of a block directory entry (seal frame and index). */
void qli_blkent_pack(uint8_t *p, const qli_blkent *e);
void qli_blkent_unpack(qli_blkent *e, const uint8_t *p);

/* Builds the canonical file name for a bucket and generation. */
void qli_seg_name(char out[QLI_SEG_NAME_MAX], int64_t bucket_start,
		  uint32_t gen);
/* The name of the compact form of a segment: "...-gN.qlc". */
void qli_seg_cname(char out[QLI_SEG_NAME_MAX], int64_t bucket_start,
		   uint32_t gen);
/* Parses a file name ("X-gN.qls" or "X-gN.qlc"); returns 0 if it is a
 * segment name, and sets *compact (may be NULL) to 1 for ".qlc". */
int qli_seg_name_parse(const char *name, int64_t *bucket_start,
		       uint32_t *gen);
int qli_seg_name_parse2(const char *name, int64_t *bucket_start,
			uint32_t *gen, int *compact);

/* Creates a new segment file (header written, not synced). */
int qli_segfile_create(qli_segfile *sf, int segdir, int64_t bucket_start,
		       int64_t bucket_width, uint32_t gen, unsigned mode);

#define QLI_LOAD_VERIFY 1 /* read and checksum every block payload */
#define QLI_LOAD_WRITE 2  /* open read-write */
/* Opens a segment and loads its block directory: from the seal when the
 * file is sealed, else by walking the frames, stopping at the first frame
 * that is incomplete (or, with QLI_LOAD_VERIFY, fails its checksum): sf->size
 * is then the end of the valid prefix. */
int qli_segfile_load(qli_segfile *sf, int segdir, const char *name,
		     int flags);
void qli_segfile_close(qli_segfile *sf);

/* Records a block written at sf->size. */
int qli_segfile_add_block(qli_segfile *sf, const qli_frame_hdr *h);
/* Call right after an fdatasync of sf (a .qls of version 4) succeeded:
 * appends a sync mark at sf->size, a frame that says everything before
 * it is durable (it is not synced itself: any later sync carries it).
 * Recovery tells a torn tail from damage by it (docs/FORMAT.md §5.8). */
int qli_segfile_mark(qli_segfile *sf);
/* Writes the seal frame and trailer at sf->size and fdatasyncs. For a
 * compact file (sf->compact) the seal also carries the dictionaries'
 * page directories (sf->dh, sf->di). */
int qli_segfile_seal(qli_segfile *sf);
/* Creates name (a temporary name in segdir) with a compact header. */
int qli_segfile_create_compact(qli_segfile *sf, int segdir, const char *name,
			       int64_t bucket_start, int64_t bucket_width,
			       uint32_t gen, unsigned mode);
/* Loads a compact file's dictionary directories into sf->dh and sf->di
 * (sf opened, with fd, from an index directory entry). */
int qli_segfile_load_dicts(qli_segfile *sf);
/* Reads the frame of dictionary page k (of sf->dh, or sf->di when ip)
 * into buf and verifies it. */
int qli_segfile_read_page(const qli_segfile *sf, int ip, uint32_t k,
			  qli_buf *buf, qli_frame_hdr *h);
/* Reads block i's frame into buf and verifies its checksum. */
int qli_segfile_read_block(const qli_segfile *sf, uint32_t i, qli_buf *buf,
			   qli_frame_hdr *h);
/* Checks every block: checksum and full decode. *bad_off gets the offset
 * of the first damaged frame. */
int qli_segfile_verify(const qli_segfile *sf, qli_decoder *d, qli_block *b,
		       uint64_t *bad_off);

#endif
