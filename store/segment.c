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

static void seg_name(char out[QLI_SEG_NAME_MAX], int64_t bucket_start,
		     uint32_t gen, const char *ext)
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
	snprintf(out, QLI_SEG_NAME_MAX, "%s-g%u.%s", c, gen, ext);
}

void qli_seg_name(char out[QLI_SEG_NAME_MAX], int64_t bucket_start,
		  uint32_t gen)
{
	seg_name(out, bucket_start, gen, "qls");
}

void qli_seg_cname(char out[QLI_SEG_NAME_MAX], int64_t bucket_start,
		   uint32_t gen)
{
	seg_name(out, bucket_start, gen, "qlc");
}

int qli_seg_name_parse(const char *name, int64_t *bucket_start,
		       uint32_t *gen)
{
	return qli_seg_name_parse2(name, bucket_start, gen, NULL);
}

int qli_seg_name_parse2(const char *name, int64_t *bucket_start,
			uint32_t *gen, int *compact)
{
	char t[32];
	unsigned g;
	int n = 0, c;
	size_t len = strlen(name);
	char chk[QLI_SEG_NAME_MAX];

	/* YYYYMMDDTHHMMSSZ-gN.qls or .qlc */
	if (len < 23 || name[8] != 'T' || name[15] != 'Z' ||
	    name[16] != '-' || name[17] != 'g')
		return -1;
	if (!strcmp(name + len - 4, ".qls"))
		c = 0;
	else if (!strcmp(name + len - 4, ".qlc"))
		c = 1;
	else
		return -1;
	if (sscanf(name + 18, "%u%n", &g, &n) != 1 || (size_t)(18 + n) !=
							      len - 4)
		return -1;
	snprintf(t, sizeof(t), "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", name,
		 name + 4, name + 6, name + 9, name + 11, name + 13);
	if (ql_time_parse(bucket_start, t, 0, "segment name"))
		return -1;
	*gen = g;
	if (compact)
		*compact = c;
	/* Round trip: refuse names that are not canonical ("g01"). */
	seg_name(chk, *bucket_start, g, c ? "qlc" : "qls");
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
	out[8] = (uint8_t)sf->version;
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
	if ((in[8] != QLI_SEG_VERSION && in[8] != QLI_SEG_VERSION1 &&
	     in[8] != QLI_SEG_VERSION_COMPACT &&
	     in[8] != QLI_SEG_VERSION_COMPACT2) || in[9] != 0)
		return qli_err(QL_EVERSION,
			       "segment format version %u (this build reads "
			       "%u to %u)", in[8] | in[9] << 8,
			       QLI_SEG_VERSION1, QLI_SEG_VERSION);
	sf->compact = in[8] == QLI_SEG_VERSION_COMPACT ||
		      in[8] == QLI_SEG_VERSION_COMPACT2;
	sf->version = in[8];
	sf->bucket_start = (int64_t)qli_get64(in + 16);
	sf->bucket_width = (int64_t)qli_get64(in + 24);
	sf->gen = qli_get32(in + 32);
	if (sf->bucket_width <= 0)
		return qli_err(QL_ECORRUPT, "segment bucket width %lld",
			       (long long)sf->bucket_width);
	return 0;
}

int qli_compact_version = QLI_SEG_VERSION_COMPACT;

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
	sf->version = QLI_SEG_VERSION;
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

int qli_segfile_create_compact(qli_segfile *sf, int segdir, const char *name,
			       int64_t bucket_start, int64_t bucket_width,
			       uint32_t gen, unsigned mode)
{
	uint8_t hdr[QLI_SEG_HDR];
	int rc;

	sf_init(sf);
	qli_seg_cname(sf->name, bucket_start, gen);
	sf->bucket_start = bucket_start;
	sf->bucket_width = bucket_width;
	sf->gen = gen;
	sf->compact = 1;
	sf->version = qli_compact_version;
	sf->fd = qli_vfs_cur->openat(segdir, name,
				     O_RDWR | O_CREAT | O_TRUNC, mode);
	if (sf->fd < 0)
		return qli_errno(errno, "create segment", name);
	hdr_pack(hdr, sf);
	rc = qli_write_full(sf->fd, hdr, sizeof(hdr), 0, name);
	if (rc) {
		qli_segfile_close(sf);
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
	qli_dict_free(&sf->dh);
	qli_dict_free(&sf->di);
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

int qli_segfile_mark(qli_segfile *sf)
{
	uint8_t f[QLI_FRAME_HDR];
	qli_frame_hdr h = { 0 };
	int rc;

	if (sf->version != QLI_SEG_VERSION || sf->compact)
		return 0;
	h.magic = QLI_MAGIC_SYNC;
	h.min_ts = (int64_t)sf->size; /* where it lies: [0, here) is durable */
	qli_frame_hdr_write(f, &h, f + QLI_FRAME_HDR);
	rc = qli_write_full(sf->fd, f, sizeof(f), (off_t)sf->size, sf->name);
	if (!rc) {
		sf->size += QLI_FRAME_HDR;
		if (sf->file_size < sf->size)
			sf->file_size = sf->size;
	}
	return rc;
}

static uint64_t chain_one(uint64_t h, uint64_t c)
{
	uint8_t b[16];

	qli_put64(b, h);
	qli_put64(b + 8, c);
	return qli_hash64(b, 16, 0);
}

static uint64_t chain_checksum(const qli_segfile *sf)
{
	uint64_t h = qli_hash64(&sf->bucket_start, 8, sf->gen);

	/* Each frame's checksum covers its bytes; chaining them gives one
	 * number for the whole segment, cheap to recompute by verify. A
	 * compact file chains its dictionary pages after its blocks. */
	for (uint32_t i = 0; i < sf->nblk; i++)
		h = chain_one(h, sf->blk[i].checksum);
	for (uint32_t i = 0; sf->compact && i < sf->dh.npage; i++)
		h = chain_one(h, sf->dh.page[i].checksum);
	for (uint32_t i = 0; sf->compact && i < sf->di.npage; i++)
		h = chain_one(h, sf->di.page[i].checksum);
	return h;
}

#define SEAL_COMPACT 72 /* seal payload of a compact file before entries */

static size_t dict_dir_len(const qli_dict *d)
{
	return (size_t)d->npage * SEAL_ENTRY + 4 * ((size_t)d->ncls + 1) +
	       d->npage + d->keys_len;
}

static uint8_t *put_dict_pages(uint8_t *p, const qli_dict *d)
{
	for (uint32_t i = 0; i < d->npage; i++, p += SEAL_ENTRY) {
		qli_blkent e = {
			.off = d->page[i].off,
			.min_ts = d->page[i].first,
			.max_ts = (int64_t)d->page[i].first +
				  d->page[i].count - 1,
			.nrec = d->page[i].count,
			.frame_len = d->page[i].frame_len,
			.raw_len = d->page[i].raw_len,
			.checksum = d->page[i].checksum,
		};

		qli_blkent_pack(p, &e);
	}
	return p;
}

static uint8_t *put_dict_rest(uint8_t *p, const qli_dict *d)
{
	for (uint32_t i = 0; i <= d->ncls; i++, p += 4)
		qli_put32(p, d->cls[i]);
	return p;
}

static uint8_t *put_dict_keys(uint8_t *p, const qli_dict *d)
{
	for (uint32_t i = 0; i < d->npage; i++) {
		*p++ = d->page[i].key_len;
		memcpy(p, d->keys + d->page[i].key_off, d->page[i].key_len);
		p += d->page[i].key_len;
	}
	return p;
}

int qli_segfile_seal(qli_segfile *sf)
{
	size_t plen = (sf->compact ? SEAL_COMPACT : SEAL_FIXED) +
		      (size_t)sf->nblk * SEAL_ENTRY +
		      (sf->compact ? dict_dir_len(&sf->dh) +
					     dict_dir_len(&sf->di)
				   : 0);
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
	if (sf->compact) {
		qli_put32(p + 40, sf->dh.n);
		qli_put32(p + 44, sf->di.n);
		qli_put32(p + 48, sf->dh.npage);
		qli_put32(p + 52, sf->di.npage);
		qli_put32(p + 56, sf->dh.ncls);
		qli_put32(p + 60, sf->di.ncls);
		qli_put32(p + 64, (uint32_t)(sf->dh.keys_len +
					     sf->di.keys_len));
		p += SEAL_COMPACT;
	} else {
		p += SEAL_FIXED;
	}
	for (uint32_t i = 0; i < sf->nblk; i++, p += SEAL_ENTRY)
		qli_blkent_pack(p, &sf->blk[i]);
	if (sf->compact) {
		p = put_dict_pages(p, &sf->dh);
		p = put_dict_pages(p, &sf->di);
		p = put_dict_rest(p, &sf->dh);
		p = put_dict_rest(p, &sf->di);
		p = put_dict_keys(p, &sf->dh);
		p = put_dict_keys(p, &sf->di);
	}
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

static int bad_seal(const char *what)
{
	return qli_err(QL_ECORRUPT, "compact seal: %s", what);
}

static int entry_ok(const qli_blkent *e, uint64_t soff)
{
	return e->off >= QLI_SEG_HDR && e->off <= soff &&
	       e->frame_len <= soff - e->off && e->frame_len > QLI_FRAME_HDR;
}

/* Reads one dictionary's directory: pages (contiguous ids from 0, each
 * inside one class), class starts, first keys. */
static int parse_dict(qli_dict *d, uint32_t n, uint32_t npage, uint32_t ncls,
		      const uint8_t *pages, const uint8_t *cls, uint64_t soff,
		      int ip)
{
	uint32_t next = 0, c = 0;

	if (n > QLI_DICT_MAX || npage > n || ncls > QLI_DICT_CLASSES ||
	    (n && (!npage || !ncls)) || (!n && (npage || ncls)))
		return bad_seal("dictionary counts out of range");
	d->n = n;
	d->npage = npage;
	d->ncls = ncls;
	d->page = calloc(npage ? npage : 1, sizeof(*d->page));
	d->cls = calloc((size_t)ncls + 1, sizeof(*d->cls));
	if (!d->page || !d->cls)
		return qli_err(QL_ENOMEM, "out of memory");
	for (uint32_t i = 0; i <= ncls; i++) {
		d->cls[i] = qli_get32(cls + 4 * i);
		if ((i == 0 && d->cls[i] != 0) ||
		    (i > 0 && d->cls[i] <= d->cls[i - 1]) ||
		    (i == ncls && d->cls[i] != n))
			return bad_seal("class table out of order");
	}
	for (uint32_t i = 0; i < npage; i++) {
		qli_blkent e;

		qli_blkent_unpack(&e, pages + (size_t)i * SEAL_ENTRY);
		if (!entry_ok(&e, soff) || e.nrec == 0 ||
		    e.nrec > QLI_DICT_PAGE || e.min_ts != (int64_t)next ||
		    e.max_ts != (int64_t)next + e.nrec - 1)
			return bad_seal("page entry out of range");
		/* a page lies inside one class */
		while (c < ncls && d->cls[c + 1] <= next)
			c++;
		if (next + e.nrec > d->cls[c + 1])
			return bad_seal("page spans two classes");
		d->page[i].off = e.off;
		d->page[i].frame_len = e.frame_len;
		d->page[i].raw_len = e.raw_len;
		d->page[i].first = next;
		d->page[i].count = e.nrec;
		d->page[i].checksum = e.checksum;
		next += e.nrec;
		d->raw += e.raw_len;
	}
	for (uint32_t i = 1; i < ncls; i++) {
		/* every class starts a page */
		uint32_t lo = 0, hi = npage;

		while (lo < hi) {
			uint32_t m = lo + (hi - lo) / 2;

			if (d->page[m].first < d->cls[i])
				lo = m + 1;
			else
				hi = m;
		}
		if (lo >= npage || d->page[lo].first != d->cls[i])
			return bad_seal("class starts inside a page");
	}
	if (next != n)
		return bad_seal("pages do not cover the dictionary");
	(void)ip;
	return 0;
}

static int parse_keys(qli_dict *d, const uint8_t **pp, const uint8_t *end,
		      int ip)
{
	const uint8_t *p = *pp, *start = p;

	for (uint32_t i = 0; i < d->npage; i++) {
		if (p >= end || (size_t)(end - p) < 1u + p[0] || p[0] == 0 ||
		    (ip && p[0] != 16))
			return bad_seal("first keys truncated");
		d->page[i].key_len = p[0];
		d->page[i].key_off = (uint32_t)(p + 1 - start);
		p += 1 + p[0];
	}
	d->keys_len = (size_t)(p - start);
	d->keys = malloc(d->keys_len ? d->keys_len : 1);
	if (!d->keys)
		return qli_err(QL_ENOMEM, "out of memory");
	memcpy(d->keys, start, d->keys_len);
	*pp = p;
	return 0;
}

static int parse_compact(qli_segfile *sf, const uint8_t *pl, uint32_t len,
			 uint64_t soff)
{
	uint32_t nblk = qli_get32(pl), nh, ni, nhp, nip, nhc, nic, klen;
	const uint8_t *p, *end = pl + len;
	uint64_t need;
	int rc;

	if (len < SEAL_COMPACT || qli_get64(pl + 32) != soff)
		return bad_seal("inconsistent");
	nh = qli_get32(pl + 40);
	ni = qli_get32(pl + 44);
	nhp = qli_get32(pl + 48);
	nip = qli_get32(pl + 52);
	nhc = qli_get32(pl + 56);
	nic = qli_get32(pl + 60);
	klen = qli_get32(pl + 64);
	need = SEAL_COMPACT + ((uint64_t)nblk + nhp + nip) * SEAL_ENTRY +
	       4 * ((uint64_t)nhc + nic + 2) + nhp + nip + (uint64_t)klen;
	if (need != len || nblk == 0 || nhc > QLI_DICT_CLASSES ||
	    nic > QLI_DICT_CLASSES)
		return bad_seal("sizes do not add up");
	p = pl + SEAL_COMPACT;
	for (uint32_t i = 0; i < nblk; i++, p += SEAL_ENTRY) {
		qli_blkent e;

		qli_blkent_unpack(&e, p);
		if (!entry_ok(&e, soff) || e.nrec == 0)
			return qli_err(QL_ECORRUPT, "seal entry %u out of "
				       "range", i);
		rc = push_blk(sf, &e);
		if (rc)
			return rc;
	}
	rc = parse_dict(&sf->dh, nh, nhp, nhc, p,
			p + (size_t)(nhp + nip) * SEAL_ENTRY, soff, 0);
	if (!rc)
		rc = parse_dict(&sf->di, ni, nip, nic,
				p + (size_t)nhp * SEAL_ENTRY,
				p + (size_t)(nhp + nip) * SEAL_ENTRY +
					4 * ((size_t)nhc + 1),
				soff, 1);
	if (rc)
		return rc;
	/* uncompressed bytes: the blocks' and the dictionaries' */
	sf->raw_bytes += sf->dh.raw + sf->di.raw;
	p += (size_t)(nhp + nip) * SEAL_ENTRY + 4 * ((size_t)nhc + nic + 2);
	rc = parse_keys(&sf->dh, &p, end, 0);
	if (!rc)
		rc = parse_keys(&sf->di, &p, end, 1);
	if (!rc && p != end)
		rc = bad_seal("bytes after the first keys");
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
	if (sf->compact) {
		rc = parse_compact(sf, pl, h.comp_len, soff);
		sf->seal_checksum = qli_get64(pl + 24);
		free(pl);
		if (rc)
			return rc;
		goto done;
	}
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
done:
	sf->sealed = 1;
	sf->size = sf->file_size;
	return 0;
}

/* Reads and checks the frame at off. Returns 1 if it is a whole, valid
 * block frame (filling *h), 2 if it is a valid sync mark (version 4
 * files; always checked in full: it is only a header), 0 if neither, or
 * a negative error. */
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
	if (qli_frame_hdr_read(fh, h))
		return 0;
	if (h->magic == QLI_MAGIC_SYNC) /* a header alone, names its offset */
		return sf->version == QLI_SEG_VERSION &&
		       h->min_ts == (int64_t)off &&
		       !qli_frame_verify(fh, h, NULL) ? 2 : 0;
	if (h->magic != QLI_MAGIC_BLOCK ||
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

/* After a bad frame: is the data at off proven synced? A crash tears
 * only the tail written after the last fsync; what came before it is
 * damage if it is bad, and must be reported, never cut.
 *   Version 4: a valid sync mark after off proves it (a mark is written
 * only once everything before it is durable). Anything else after the
 * bad frame, valid blocks included, was written after the last fsync
 * that completed with its mark written, and pages written back out of
 * order can leave valid frames behind a torn one: a torn tail, cut.
 *   Version 1 (no marks): any valid block after off counts as proof, so
 * such a tail is reported as damage (and kept) although it may be torn.
 * Returns 1 if proven, 0 if not, or a negative error. */
static int valid_frame_after(qli_segfile *sf, uint64_t off, qli_buf *buf)
{
	const uint32_t want = sf->version == QLI_SEG_VERSION ? QLI_MAGIC_SYNC
							     : QLI_MAGIC_BLOCK;
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
			if (qli_get32(win + i) != want)
				continue;
			rc = frame_ok(sf, off + i, 1, buf, &h);
			if (rc)
				return rc < 0 ? rc : 1;
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

	while ((rc = frame_ok(sf, off, verify, &buf, &h)) >= 1) {
		sf->size = off;
		if (rc == 2) { /* a sync mark */
			sf->size += QLI_FRAME_HDR;
			rc = 0;
		} else
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
	int rc, compact = 0;

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
	if (qli_seg_name_parse2(name, &bstart, &gen, &compact) || bstart !=
	    sf->bucket_start || gen != sf->gen) {
		rc = qli_err(QL_ECORRUPT, "%s: header names another bucket",
			     name);
		goto fail;
	}
	if (compact != sf->compact) {
		rc = qli_err(QL_ECORRUPT, "%s: format version %d does not "
			     "match the name (.qlc files are version %d or "
			     "%d)", name, hdr[8], QLI_SEG_VERSION_COMPACT2,
			     QLI_SEG_VERSION_COMPACT);
		goto fail;
	}
	rc = load_seal(sf);
	if (rc == 1 && sf->compact)
		/* a compact file is renamed into place complete and synced:
		 * without its seal it is damage, never a torn tail */
		rc = qli_err(QL_ECORRUPT, "%s: compact segment without a "
			     "valid seal", name);
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

int qli_segfile_load_dicts(qli_segfile *sf)
{
	qli_segfile t;
	struct stat st;
	int rc;

	if (sf->dh.page || sf->di.page || !sf->compact)
		return 0;
	if (qli_vfs_cur->fstat(sf->fd, &st) < 0)
		return qli_errno(errno, "stat", sf->name);
	sf_init(&t);
	memcpy(t.name, sf->name, sizeof(t.name));
	t.fd = sf->fd;
	t.compact = 1;
	t.bucket_start = sf->bucket_start;
	t.gen = sf->gen;
	t.file_size = (uint64_t)st.st_size;
	rc = load_seal(&t);
	if (rc == 1)
		rc = qli_err(QL_ECORRUPT, "segment %s: compact segment "
			     "without a valid seal", sf->name);
	if (!rc && (t.nblk != sf->nblk || t.seal_checksum != sf->seal_checksum))
		rc = qli_err(QL_ECORRUPT, "segment %s: seal differs from the "
			     "index's directory entry", sf->name);
	if (!rc) {
		sf->dh = t.dh;
		sf->di = t.di;
		memset(&t.dh, 0, sizeof(t.dh));
		memset(&t.di, 0, sizeof(t.di));
	}
	t.fd = -1;
	qli_segfile_close(&t);
	return rc;
}

int qli_segfile_read_page(const qli_segfile *sf, int ip, uint32_t k,
			  qli_buf *buf, qli_frame_hdr *h)
{
	const qli_dict *d = ip ? &sf->di : &sf->dh;
	const struct qli_dpent *e = &d->page[k];
	int rc;

	buf->len = 0;
	if (e->frame_len > (2u << 20))
		return qli_err(QL_ECORRUPT, "segment %s: dictionary page %u "
			       "of %u bytes", sf->name, k, e->frame_len);
	rc = qli_buf_reserve(buf, e->frame_len);
	if (!rc)
		rc = qli_read_full(sf->fd, buf->p, e->frame_len, (off_t)e->off,
				   sf->name);
	if (rc)
		return rc;
	buf->len = e->frame_len;
	rc = qli_frame_hdr_read(buf->p, h);
	if (!rc && (h->magic != (ip ? QLI_MAGIC_IPAGE : QLI_MAGIC_HPAGE) ||
		    QLI_FRAME_HDR + h->comp_len != e->frame_len ||
		    h->checksum != e->checksum || h->nrec != e->count ||
		    h->min_ts != (int64_t)e->first))
		rc = qli_err(QL_ECORRUPT, "frame differs from the directory");
	if (!rc)
		rc = qli_frame_verify(buf->p, h, buf->p + QLI_FRAME_HDR);
	if (rc)
		qli_err_prefix("segment %s %s page %u at offset %llu: ",
			       sf->name, ip ? "address" : "handle", k,
			       (unsigned long long)e->off);
	return rc;
}

/* A compact file's dictionaries: every page decodes, keys ascend inside
 * each class and the first keys match. */
static int verify_dicts(const qli_segfile *sf, qli_decoder *d,
			uint64_t *bad_off)
{
	qli_buf buf = { 0 };
	qli_dpage pg = { 0 };
	qli_frame_hdr h;
	int rc = 0;

	for (int ip = 0; ip < 2 && !rc; ip++) {
		const qli_dict *dd = ip ? &sf->di : &sf->dh;

		for (uint32_t k = 0; k < dd->npage && !rc; k++) {
			rc = qli_segfile_read_page(sf, ip, k, &buf, &h);
			if (!rc)
				rc = qli_dpage_decode(d, &pg, &h,
						      buf.p + QLI_FRAME_HDR,
						      dd->page[k].first);
			if (!rc && qli_dict_cmp_first(dd, k,
					ip ? pg.ip[0]
					   : (const uint8_t *)pg.key[0],
					ip ? 16 : pg.len[0]))
				rc = qli_err(QL_ECORRUPT, "first key differs "
					     "from the seal");
			if (rc) {
				qli_err_prefix("segment %s %s page %u: ",
					       sf->name,
					       ip ? "address" : "handle", k);
				*bad_off = dd->page[k].off;
			}
		}
	}
	qli_dpage_free(&pg);
	qli_buf_free(&buf);
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
			rc = sf->compact
				? qli_idblock_decode(d, b, &h,
						     buf.p + QLI_FRAME_HDR,
						     sf->dh.n, sf->di.n)
				: qli_block_decode(d, b, &h,
						   buf.p + QLI_FRAME_HDR);
			if (rc)
				qli_err_prefix("segment %s block %u at offset "
					       "%llu: ", sf->name, i,
					       (unsigned long long)sf->blk[i]
						       .off);
		}
		if (rc)
			*bad_off = sf->blk[i].off;
	}
	if (!rc && sf->compact)
		rc = verify_dicts(sf, d, bad_off);
	if (!rc && sf->sealed && chain_checksum(sf) != sf->seal_checksum) {
		*bad_off = sf->size;
		rc = qli_err(QL_ECORRUPT, "segment %s: seal checksum mismatch",
			     sf->name);
	}
	qli_buf_free(&buf);
	return rc;
}
