/* segment.c - segment files: create, load (recover), append, seal, read.
 *
 * A segment is written strictly append-only. Its durable prefix is what
 * the last fdatasync covered; anything after may be torn by a crash, which
 * is why loading an unsealed segment walks its frames and stops at the
 * first one that is incomplete or fails its checksum. A sealed segment is
 * immutable and carries its block directory in the seal frame, so readers
 * load it with two small reads. */
#define _GNU_SOURCE
#include "segment.h"

#include "err.h"
#include "vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const uint8_t seg_magic[8] = { 'Q', 'L', 'O', 'G', 'S', 'E', 'G', 0 };
static const uint8_t end_magic[8] = { 'Q', 'L', 'S', 'E', 'A', 'L', 'E', 0 };

#define SEAL_FIXED 40 /* seal payload before the entries */
#define SEAL_ENTRY 48

void qli_seg_name(char out[QLI_SEG_NAME_MAX], int64_t bucket_start,
		  uint32_t gen)
{
	char t[40], c[40];
	size_t j = 0;

	/* "2026-11-01T00:00:00Z" -> "20261101T000000Z": sortable, readable,
	 * no characters that need quoting in a shell. */
	ql_time_format(t, sizeof(t), bucket_start);
	for (size_t i = 0; t[i] && j < sizeof(c) - 1; i++)
		if (t[i] != '-' && t[i] != ':')
			c[j++] = t[i];
	c[j] = '\0';
	snprintf(out, QLI_SEG_NAME_MAX, "%s-g%u.qls", c, gen);
}

int qli_seg_name_parse(const char *name, int64_t *bucket_start,
		       uint32_t *gen)
{
	char t[32];
	unsigned g;
	int n = 0;
	char chk[QLI_SEG_NAME_MAX];

	/* YYYYMMDDTHHMMSSZ-gN.qls */
	if (strlen(name) < 23 || name[8] != 'T' || name[15] != 'Z' ||
	    name[16] != '-' || name[17] != 'g')
		return -1;
	if (sscanf(name + 18, "%u.qls%n", &g, &n) != 1 || name[18 + n])
		return -1;
	snprintf(t, sizeof(t), "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", name,
		 name + 4, name + 6, name + 9, name + 11, name + 13);
	if (ql_time_parse(bucket_start, t, 0, "segment name"))
		return -1;
	*gen = g;
	/* Round trip: refuse names that are not canonical ("g01"). */
	qli_seg_name(chk, *bucket_start, g);
	return strcmp(chk, name) ? -1 : 0;
}

void qli_blkent_pack(uint8_t *p, const qli_blkent *e)
{
	qli_put64(p, e->off);
	qli_put64(p + 8, (uint64_t)e->min_ts);
	qli_put64(p + 16, (uint64_t)e->max_ts);
	qli_put32(p + 24, e->nrec);
	qli_put32(p + 28, e->frame_len);
	qli_put32(p + 32, e->raw_len);
	qli_put32(p + 36, 0);
	qli_put64(p + 40, e->checksum);
}

void qli_blkent_unpack(qli_blkent *e, const uint8_t *p)
{
	e->off = qli_get64(p);
	e->min_ts = (int64_t)qli_get64(p + 8);
	e->max_ts = (int64_t)qli_get64(p + 16);
	e->nrec = qli_get32(p + 24);
	e->frame_len = qli_get32(p + 28);
	e->raw_len = qli_get32(p + 32);
	e->checksum = qli_get64(p + 40);
}

static void hdr_pack(uint8_t out[QLI_SEG_HDR], const qli_segfile *sf)
{
	memset(out, 0, QLI_SEG_HDR);
	memcpy(out, seg_magic, 8);
	out[8] = QLI_SEG_VERSION;
	out[10] = QLI_SEG_HDR;
	qli_put64(out + 16, (uint64_t)sf->bucket_start);
	qli_put64(out + 24, (uint64_t)sf->bucket_width);
	qli_put32(out + 32, sf->gen);
	qli_put64(out + 56, qli_hash64(out, 56, 0));
}

static int hdr_unpack(const uint8_t in[QLI_SEG_HDR], qli_segfile *sf)
{
	if (memcmp(in, seg_magic, 8))
		return qli_err(QL_ECORRUPT, "not a querylog segment (magic)");
	if (qli_get64(in + 56) != qli_hash64(in, 56, 0))
		return qli_err(QL_ECORRUPT, "segment header checksum mismatch");
	if (in[8] != QLI_SEG_VERSION || in[9] != 0)
		return qli_err(QL_EVERSION,
			       "segment format version %u (this build reads "
			       "%u)", in[8] | in[9] << 8, QLI_SEG_VERSION);
	sf->bucket_start = (int64_t)qli_get64(in + 16);
	sf->bucket_width = (int64_t)qli_get64(in + 24);
	sf->gen = qli_get32(in + 32);
	if (sf->bucket_width <= 0)
		return qli_err(QL_ECORRUPT, "segment bucket width %lld",
			       (long long)sf->bucket_width);
	return 0;
}

static void sf_init(qli_segfile *sf)
{
	memset(sf, 0, sizeof(*sf));
	sf->fd = -1;
}

int qli_segfile_create(qli_segfile *sf, int segdir, int64_t bucket_start,
		       int64_t bucket_width, uint32_t gen, unsigned mode)
{
	uint8_t hdr[QLI_SEG_HDR];
	int rc;

	sf_init(sf);
	qli_seg_name(sf->name, bucket_start, gen);
	sf->bucket_start = bucket_start;
	sf->bucket_width = bucket_width;
	sf->gen = gen;
	sf->fd = qli_vfs_cur->openat(segdir, sf->name,
				     O_RDWR | O_CREAT | O_EXCL, mode);
	if (sf->fd < 0)
		return qli_errno(errno, "create segment", sf->name);
	hdr_pack(hdr, sf);
	rc = qli_write_full(sf->fd, hdr, sizeof(hdr), 0, sf->name);
	/* The header is made durable before the file's name can be (any
	 * later fsync of seg/ may make the name durable): otherwise a power
	 * cut could leave a named file with a zeroed header, which recovery
	 * must treat as damage. Once per bucket: cheap. */
	if (!rc && qli_vfs_cur->fdatasync(sf->fd) < 0)
		rc = qli_errno(errno, "fdatasync", sf->name);
	if (rc) {
		qli_segfile_close(sf);
		qli_vfs_cur->unlinkat(segdir, sf->name, 0);
		return rc;
	}
	sf->size = sf->file_size = QLI_SEG_HDR;
	return 0;
}

void qli_segfile_close(qli_segfile *sf)
{
	if (sf->fd >= 0)
		qli_vfs_cur->close(sf->fd);
	sf->fd = -1;
	free(sf->blk);
	sf->blk = NULL;
	sf->nblk = sf->blkcap = 0;
}

static int push_blk(qli_segfile *sf, const qli_blkent *e)
{
	if (sf->nblk == sf->blkcap) {
		uint32_t cap = sf->blkcap ? 2 * sf->blkcap : 64;
		qli_blkent *nb = realloc(sf->blk, cap * sizeof(*nb));

		if (!nb)
			return qli_err(QL_ENOMEM, "out of memory");
		sf->blk = nb;
		sf->blkcap = cap;
	}
	sf->blk[sf->nblk++] = *e;
	if (sf->nrec == 0 || e->min_ts < sf->min_ts)
		sf->min_ts = e->min_ts;
	if (sf->nrec == 0 || e->max_ts > sf->max_ts)
		sf->max_ts = e->max_ts;
	sf->nrec += e->nrec;
	sf->raw_bytes += e->raw_len;
	return 0;
}

int qli_segfile_add_block(qli_segfile *sf, const qli_frame_hdr *h)
{
	qli_blkent e = {
		.off = sf->size,
		.min_ts = h->min_ts,
		.max_ts = h->max_ts,
		.nrec = h->nrec,
		.frame_len = QLI_FRAME_HDR + h->comp_len,
		.raw_len = h->raw_len,
		.checksum = h->checksum,
	};
	int rc = push_blk(sf, &e);

	if (!rc)
		sf->size += e.frame_len;
	return rc;
}

static uint64_t chain_checksum(const qli_segfile *sf)
{
	uint64_t h = qli_hash64(&sf->bucket_start, 8, sf->gen);

	/* Each frame's checksum covers its bytes; chaining them gives one
	 * number for the whole segment, cheap to recompute by verify. */
	for (uint32_t i = 0; i < sf->nblk; i++) {
		uint8_t b[16];

		qli_put64(b, h);
		qli_put64(b + 8, sf->blk[i].checksum);
		h = qli_hash64(b, 16, 0);
	}
	return h;
}

int qli_segfile_seal(qli_segfile *sf)
{
	size_t plen = SEAL_FIXED + (size_t)sf->nblk * SEAL_ENTRY;
	size_t total = QLI_FRAME_HDR + plen + QLI_SEG_TRAILER;
	qli_frame_hdr h = { 0 };
	uint8_t *buf, *p;
	int rc;

	buf = calloc(1, total);
	if (!buf)
		return qli_err(QL_ENOMEM, "out of memory sealing %s",
			       sf->name);
	sf->seal_checksum = chain_checksum(sf);
	p = buf + QLI_FRAME_HDR;
	qli_put32(p, sf->nblk);
	qli_put64(p + 8, sf->nrec);
	qli_put64(p + 16, sf->raw_bytes);
	qli_put64(p + 24, sf->seal_checksum);
	qli_put64(p + 32, sf->size);
	p += SEAL_FIXED;
	for (uint32_t i = 0; i < sf->nblk; i++, p += SEAL_ENTRY)
		qli_blkent_pack(p, &sf->blk[i]);
	h.magic = QLI_MAGIC_SEAL;
	h.comp_len = (uint32_t)plen;
	h.nrec = (uint32_t)(sf->nrec > UINT32_MAX ? UINT32_MAX : sf->nrec);
	h.min_ts = sf->min_ts;
	h.max_ts = sf->max_ts;
	qli_frame_hdr_write(buf, &h, buf + QLI_FRAME_HDR);
	qli_put64(p, sf->size);
	memcpy(p + 8, end_magic, 8);
	rc = qli_write_full(sf->fd, buf, total, (off_t)sf->size, sf->name);
	free(buf);
	/* The seal is a promise that the file will not change again: make
	 * it durable before anyone relies on it. */
	if (!rc && qli_vfs_cur->fdatasync(sf->fd) < 0)
		rc = qli_errno(errno, "fdatasync", sf->name);
	if (!rc) {
		sf->size += total;
		sf->file_size = sf->size;
		sf->sealed = 1;
	}
	return rc;
}

/* Loads the block directory from a seal; returns 1 if the file is not
 * (validly) sealed, 0 on success, or a negative error. */
static int load_seal(qli_segfile *sf)
{
	uint8_t tr[QLI_SEG_TRAILER], fh[QLI_FRAME_HDR], *pl = NULL, *p;
	qli_frame_hdr h;
	uint64_t soff, dsize;
	uint32_t nblk;
	int rc;

	if (sf->file_size < QLI_SEG_HDR + QLI_FRAME_HDR + QLI_SEG_TRAILER)
		return 1;
	rc = qli_read_full(sf->fd, tr, sizeof(tr),
			   (off_t)(sf->file_size - QLI_SEG_TRAILER), sf->name);
	if (rc)
		return rc;
	if (memcmp(tr + 8, end_magic, 8))
		return 1;
	soff = qli_get64(tr);
	if (soff < QLI_SEG_HDR || soff > sf->file_size - QLI_SEG_TRAILER -
						   QLI_FRAME_HDR)
		return 1;
	rc = qli_read_full(sf->fd, fh, sizeof(fh), (off_t)soff, sf->name);
	if (rc)
		return rc;
	if (qli_frame_hdr_read(fh, &h) || h.magic != QLI_MAGIC_SEAL ||
	    soff + QLI_FRAME_HDR + h.comp_len + QLI_SEG_TRAILER !=
		    sf->file_size || h.comp_len < SEAL_FIXED)
		return 1;
	pl = malloc(h.comp_len);
	if (!pl)
		return qli_err(QL_ENOMEM, "out of memory");
	rc = qli_read_full(sf->fd, pl, h.comp_len, (off_t)soff + QLI_FRAME_HDR,
			   sf->name);
	if (rc || qli_frame_verify(fh, &h, pl)) {
		free(pl);
		return rc ? rc : 1;
	}
	nblk = qli_get32(pl);
	dsize = qli_get64(pl + 32);
	if ((uint64_t)h.comp_len != SEAL_FIXED + (uint64_t)nblk * SEAL_ENTRY ||
	    dsize != soff) {
		free(pl);
		return qli_err(QL_ECORRUPT, "seal directory inconsistent");
	}
	p = pl + SEAL_FIXED;
	for (uint32_t i = 0; i < nblk; i++, p += SEAL_ENTRY) {
		qli_blkent e;

		qli_blkent_unpack(&e, p);
		if (e.off < QLI_SEG_HDR || e.off > soff ||
		    e.frame_len > soff - e.off ||
		    e.frame_len <= QLI_FRAME_HDR) {
			free(pl);
			return qli_err(QL_ECORRUPT,
				       "seal entry %u out of range", i);
		}
		rc = push_blk(sf, &e);
		if (rc) {
			free(pl);
			return rc;
		}
	}
	sf->seal_checksum = qli_get64(pl + 24);
	free(pl);
	sf->sealed = 1;
	sf->size = sf->file_size;
	return 0;
}

/* Reads and checks the frame at off. Returns 1 if it is a whole, valid
 * block frame (filling *h), 0 if not, or a negative error. */
static int frame_ok(qli_segfile *sf, uint64_t off, int verify, qli_buf *buf,
		    qli_frame_hdr *h)
{
	uint8_t fh[QLI_FRAME_HDR];
	int rc;

	if (off + QLI_FRAME_HDR > sf->file_size)
		return 0;
	rc = qli_read_full(sf->fd, fh, sizeof(fh), (off_t)off, sf->name);
	if (rc)
		return rc;
	if (qli_frame_hdr_read(fh, h) || h->magic != QLI_MAGIC_BLOCK ||
	    off + QLI_FRAME_HDR + h->comp_len > sf->file_size)
		return 0;
	if (!verify)
		return 1;
	buf->len = 0;
	rc = qli_buf_reserve(buf, h->comp_len);
	if (!rc)
		rc = qli_read_full(sf->fd, buf->p, h->comp_len,
				   (off_t)(off + QLI_FRAME_HDR), sf->name);
	if (rc)
		return rc;
	return qli_frame_verify(fh, h, buf->p) ? 0 : 1;
}

/* After a bad frame: is there a valid frame further on? A crash tears
 * only the tail written after the last fsync, so garbage followed by a
 * valid frame is damage to data that may have been acknowledged, which
 * must be reported, never cut. */
static int valid_frame_after(qli_segfile *sf, uint64_t off, qli_buf *buf)
{
	uint8_t win[4096];
	qli_frame_hdr h;

	for (off++; off + QLI_FRAME_HDR <= sf->file_size;) {
		uint64_t n = sf->file_size - off;
		int rc;

		if (n > sizeof(win))
			n = sizeof(win);
		rc = qli_read_full(sf->fd, win, (size_t)n, (off_t)off,
				   sf->name);
		if (rc)
			return rc;
		for (uint64_t i = 0; i + 4 <= n; i++) {
			if (qli_get32(win + i) != QLI_MAGIC_BLOCK)
				continue;
			rc = frame_ok(sf, off + i, 1, buf, &h);
			if (rc)
				return rc;
		}
		off += n > 3 ? n - 3 : n;
	}
	return 0;
}

/* Walks frames from the header on; stops at the first incomplete or (with
 * verify) damaged one. */
static int walk_frames(qli_segfile *sf, int verify)
{
	uint64_t off = QLI_SEG_HDR;
	qli_buf buf = { 0 };
	qli_frame_hdr h;
	int rc;

	while ((rc = frame_ok(sf, off, verify, &buf, &h)) == 1) {
		sf->size = off;
		rc = qli_segfile_add_block(sf, &h);
		if (rc)
			break;
		off = sf->size;
	}
	if (rc == 0 && verify && off < sf->file_size) {
		rc = valid_frame_after(sf, off, &buf);
		if (rc == 1) {
			sf->damaged = 1;
			rc = 0;
		}
	}
	qli_buf_free(&buf);
	if (rc >= 0 && sf->nblk == 0)
		sf->size = QLI_SEG_HDR;
	if (rc >= 0)
		qli_clear_err();
	return rc < 0 ? rc : 0;
}

int qli_segfile_load(qli_segfile *sf, int segdir, const char *name,
		     int flags)
{
	uint8_t hdr[QLI_SEG_HDR];
	struct stat st;
	int64_t bstart;
	uint32_t gen;
	int rc;

	sf_init(sf);
	snprintf(sf->name, sizeof(sf->name), "%s", name);
	sf->fd = qli_vfs_cur->openat(segdir, name, (flags & QLI_LOAD_WRITE) ?
							   O_RDWR : O_RDONLY,
				     0);
	if (sf->fd < 0)
		return qli_errno(errno, "open segment", name);
	if (qli_vfs_cur->fstat(sf->fd, &st) < 0) {
		rc = qli_errno(errno, "stat", name);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = qli_err(QL_EUNSAFE, "%s: not a regular file", name);
		goto fail;
	}
	sf->file_size = (uint64_t)st.st_size;
	if (sf->file_size < QLI_SEG_HDR) {
		/* a crash between creating the file and writing its header:
		 * no block can be in it, so nothing was acknowledged */
		rc = qli_err(QL_ECORRUPT, "%s: %llu bytes, shorter than a "
			     "segment header (torn creation)", name,
			     (unsigned long long)sf->file_size);
		sf->torn_create = 1;
		goto fail_keep;
	}
	rc = qli_read_full(sf->fd, hdr, sizeof(hdr), 0, name);
	if (!rc)
		rc = hdr_unpack(hdr, sf);
	if (rc)
		goto fail;
	if (qli_seg_name_parse(name, &bstart, &gen) || bstart !=
	    sf->bucket_start || gen != sf->gen) {
		rc = qli_err(QL_ECORRUPT, "%s: header names another bucket",
			     name);
		goto fail;
	}
	rc = load_seal(sf);
	if (rc == 1)
		rc = walk_frames(sf, flags & QLI_LOAD_VERIFY);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	qli_err_prefix("segment %s: ", name);
fail_keep:
	qli_segfile_close(sf);
	return rc;
}

int qli_segfile_read_block(const qli_segfile *sf, uint32_t i, qli_buf *buf,
			   qli_frame_hdr *h)
{
	const qli_blkent *e = &sf->blk[i];
	int rc;

	buf->len = 0;
	if (e->frame_len < QLI_FRAME_HDR || e->frame_len > QLI_MAX_FRAME ||
	    (sf->size && e->off + e->frame_len > sf->size))
		return qli_err(QL_ECORRUPT, "segment %s block %u: directory "
			       "says %u bytes at offset %llu; a frame is %u to "
			       "%u bytes and within the file (%llu bytes)",
			       sf->name, i, e->frame_len,
			       (unsigned long long)e->off, QLI_FRAME_HDR,
			       QLI_MAX_FRAME, (unsigned long long)sf->size);
	rc = qli_buf_reserve(buf, e->frame_len);
	if (rc)
		return rc;
	rc = qli_read_full(sf->fd, buf->p, e->frame_len, (off_t)e->off,
			   sf->name);
	if (rc)
		return rc;
	buf->len = e->frame_len;
	rc = qli_frame_hdr_read(buf->p, h);
	if (!rc && (h->magic != QLI_MAGIC_BLOCK ||
		    QLI_FRAME_HDR + h->comp_len != e->frame_len ||
		    h->checksum != e->checksum))
		rc = qli_err(QL_ECORRUPT, "frame differs from the directory");
	if (!rc)
		rc = qli_frame_verify(buf->p, h, buf->p + QLI_FRAME_HDR);
	if (rc)
		qli_err_prefix("segment %s block %u at offset %llu: ",
			       sf->name, i, (unsigned long long)e->off);
	return rc;
}

int qli_segfile_verify(const qli_segfile *sf, qli_decoder *d, qli_block *b,
		       uint64_t *bad_off)
{
	qli_buf buf = { 0 };
	qli_frame_hdr h;
	int rc = 0;

	for (uint32_t i = 0; i < sf->nblk && !rc; i++) {
		rc = qli_segfile_read_block(sf, i, &buf, &h);
		if (!rc) {
			rc = qli_block_decode(d, b, &h, buf.p + QLI_FRAME_HDR);
			if (rc)
				qli_err_prefix("segment %s block %u at offset "
					       "%llu: ", sf->name, i,
					       (unsigned long long)sf->blk[i]
						       .off);
		}
		if (rc)
			*bad_off = sf->blk[i].off;
	}
	if (!rc && sf->sealed && chain_checksum(sf) != sf->seal_checksum) {
		*bad_off = sf->size;
		rc = qli_err(QL_ECORRUPT, "segment %s: seal checksum mismatch",
			     sf->name);
	}
	qli_buf_free(&buf);
	return rc;
}
