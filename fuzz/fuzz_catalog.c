/* fuzz_catalog.c - what the store knows of itself, from bytes: the
 * QLSTORE meta file (qli_meta_parse, and ql_open of a store holding it)
 * and a segment's directory entry in the index (qli_index_dir_parse).
 *
 * Input: one flag byte, then the bytes.
 *   bit 0 clear: the bytes are QLSTORE. The parse gives 0, QL_ECORRUPT
 *     or QL_EVERSION with a message naming the store; what it accepts is
 *     a width the format allows (whole minutes dividing a day, or 1 to 7
 *     whole days), and, written back the way the store writes QLSTORE
 *     (with and without the retention line), parses to the same values.
 *     A read-only ql_open of a store with that file agrees with the
 *     parse, and its ql_stat reports the width and the retention
 *     (the file's when positive, else the default).
 *   bit 0 set: the bytes are a 'D' value; bit 1 makes the version byte
 *     1 and the length 24 + 48 * nblk (cutting what is left over). The
 *     parse gives 0 or QL_ECORRUPT; what it accepts has exactly the size
 *     its count says, fields as the bytes say, the totals and time range
 *     of its blocks, and encoded again as the index writes it, parses
 *     to the same.
 *   bit 2 set (checked first): the bytes are a compact segment's index
 *     value: with bit 3 clear an id chunk (bit 4: of addresses, else of
 *     handles), scanned for one id and for every id up to 2,047; with
 *     bit 3 set a class filter (bit 4: of addresses), tested with a
 *     key. Either gives 0 or QL_ECORRUPT, marks only blocks below the
 *     block count, and admits only classes the filter has.
 * The store for ql_open is a temporary directory (TMPDIR). */
#define _GNU_SOURCE
#include "codec.h"
#include "index.h"
#include "querylog.h"
#include "fuzz_util.h"
#include "segment.h"
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PATH "/fuzz/store"
#define MIN_US (60LL * 1000000LL)
#define DAY_US (86400LL * 1000000LL)

static char dir[256];
static int dirfd = -1;

static void cleanup(void)
{
	unlinkat(dirfd, QLI_META_FILE, 0);
	unlinkat(dirfd, QLI_SEG_DIR, AT_REMOVEDIR);
	close(dirfd);
	rmdir(dir);
}

static void setup(void)
{
	dirfd = fz_tempdir(dir, sizeof(dir));
	if (mkdirat(dirfd, QLI_SEG_DIR, 0700))
		abort();
	atexit(cleanup);
}

static void write_meta(const uint8_t *p, size_t n)
{
	fz_write_file(dirfd, QLI_META_FILE, p, n);
}

/* FORMAT.md §3: a whole number of minutes dividing a day, or 1 to 7
 * whole days. */
static int width_ok(int64_t w)
{
	if (w >= DAY_US)
		return w % DAY_US == 0 && w <= 7 * DAY_US;
	return w > 0 && w % MIN_US == 0 && DAY_US % w == 0;
}

static void meta(const uint8_t *data, size_t size)
{
	ql_options o = QL_OPTIONS_INIT;
	int64_t w = 0, r = 0, w2, r2;
	char txt[160];
	ql_store *s;
	ql_stats st;
	int rc, orc, n;

	rc = qli_meta_parse((const char *)data, size, PATH, &w, &r);
	if (rc) {
		if ((rc != QL_ECORRUPT && rc != QL_EVERSION) ||
		    !strstr(ql_errmsg(NULL), PATH))
			abort();
	} else {
		if (!width_ok(w))
			abort();
		/* as meta_write writes it */
		n = snprintf(txt, sizeof(txt), "querylog-store 1\n"
			     "bucket_width_us %lld\nretention_us %lld\n",
			     (long long)w, (long long)r);
		if (qli_meta_parse(txt, (size_t)n, PATH, &w2, &r2) ||
		    w2 != w || r2 != r)
			abort();
		/* a store written before the retention line */
		n = snprintf(txt, sizeof(txt), "querylog-store 1\n"
			     "bucket_width_us %lld\n", (long long)w);
		if (qli_meta_parse(txt, (size_t)n, PATH, &w2, &r2) ||
		    w2 != w || r2 != 0)
			abort();
	}

	/* ql_open reads the file through the same parse */
	write_meta(data, size);
	o.flags = QL_OPEN_READONLY;
	orc = ql_open(&s, dir, &o);
	if ((orc == 0) != (rc == 0) || (rc && orc != rc))
		abort();
	if (orc)
		return;
	if (ql_stat(s, &st) || st.bucket_width_us != w ||
	    st.retention_us != (r > 0 ? r : 30 * DAY_US))
		abort();
	ql_close(s);
}

static void dir_entry(unsigned flags, const uint8_t *data, size_t size)
{
	qli_segfile sf, again;
	uint8_t *v, *enc;
	size_t len = size;
	uint64_t nrec = 0, raw = 0;
	int rc;

	v = malloc(size ? size : 1);
	if (!v)
		abort();
	memcpy(v, data, size);
	if ((flags & 2) && size >= 24) {
		v[0] = 1;
		qli_put32(v + 4, (uint32_t)((size - 24) / 48));
		len = 24 + (size - 24) / 48 * 48;
	}
	memset(&sf, 0, sizeof(sf));
	rc = qli_index_dir_parse(v, len, &sf);
	if (rc) {
		if (rc != QL_ECORRUPT || !ql_errmsg(NULL)[0])
			abort();
		free(sf.blk);
		free(v);
		return;
	}
	if (len != 24 + (size_t)sf.nblk * 48 || v[0] < 1 || v[0] > 3 ||
	    sf.sealed != v[1] || sf.compact != v[2] ||
	    sf.ix_byid != (v[2] && v[0] >= 2) ||
	    sf.nblk != qli_get32(v + 4) ||
	    sf.size != qli_get64(v + 8) ||
	    sf.seal_checksum != qli_get64(v + 16) || !sf.blk)
		abort();
	for (uint32_t i = 0; i < sf.nblk; i++) {
		const qli_blkent *e = &sf.blk[i];
		uint8_t b[48];

		qli_blkent_pack(b, e);
		/* bytes 36..39 are reserved: written 0, not read */
		if (memcmp(b, v + 24 + 48 * (size_t)i, 36) ||
		    memcmp(b + 40, v + 24 + 48 * (size_t)i + 40, 8))
			abort();
		nrec += e->nrec;
		raw += e->raw_len;
		if (e->min_ts < sf.min_ts || e->max_ts > sf.max_ts)
			abort();
	}
	if (sf.nrec != nrec || sf.raw_bytes != raw)
		abort();

	/* encoded as qli_index_put_dir encodes it */
	enc = calloc(1, len);
	if (!enc)
		abort();
	enc[0] = 3;
	enc[1] = (uint8_t)sf.sealed;
	enc[2] = (uint8_t)sf.compact;
	qli_put32(enc + 4, sf.nblk);
	qli_put64(enc + 8, sf.size);
	qli_put64(enc + 16, sf.sealed ? sf.seal_checksum : 0);
	for (uint32_t i = 0; i < sf.nblk; i++)
		qli_blkent_pack(enc + 24 + 48 * (size_t)i, &sf.blk[i]);
	memset(&again, 0, sizeof(again));
	if (qli_index_dir_parse(enc, len, &again) ||
	    again.sealed != sf.sealed || again.nblk != sf.nblk ||
	    again.compact != sf.compact || again.ix_byid != sf.compact ||
	    again.size != sf.size ||
	    again.seal_checksum != (sf.sealed ? sf.seal_checksum : 0) ||
	    again.nrec != sf.nrec || again.raw_bytes != sf.raw_bytes ||
	    (sf.nblk && (again.min_ts != sf.min_ts ||
			 again.max_ts != sf.max_ts)))
		abort();
	for (uint32_t i = 0; i < sf.nblk; i++) {
		const qli_blkent *x = &sf.blk[i], *y = &again.blk[i];

		if (x->off != y->off || x->min_ts != y->min_ts ||
		    x->max_ts != y->max_ts || x->nrec != y->nrec ||
		    x->frame_len != y->frame_len || x->raw_len != y->raw_len ||
		    x->checksum != y->checksum)
			abort();
	}
	free(again.blk);
	free(enc);
	free(sf.blk);
	free(v);
}

#define FZ_NBLK 300

static void id_value(unsigned flags, const uint8_t *data, size_t size)
{
	static uint8_t all[2048 / 8];
	uint8_t bits[FZ_NBLK / 8 + 2];
	int ip = (flags >> 4) & 1, past = 0, rc;

	if (flags & 8) {
		static const char h[] = "+14155550123";
		uint8_t a[16] = { 0 };
		uint64_t mask = 0;
		uint32_t ncls = 0;

		rc = qli_index_filter_test(data, size, ip, ip ? (void *)a
							      : (void *)h,
					   ip ? 16 : strlen(h), &mask, &ncls);
		if (rc != 0 && rc != QL_ECORRUPT)
			abort();
		if (!rc && ncls < 64 && (mask >> ncls))
			abort(); /* a class it does not have */
		return;
	}
	memset(all, 0xff, sizeof(all));
	for (int pass = 0; pass < 2; pass++) {
		memset(bits, 0, sizeof(bits));
		rc = qli_index_idchunk_scan(
			0, data, size, ip ? 'a' : 'h', pass ? all : NULL,
			size ? data[size - 1] : 0,
			pass ? 2047 : (size ? data[size - 1] : 0),
			QLI_LOOK_REQ | QLI_LOOK_TGT, bits, FZ_NBLK, &past);
		if (rc != 0 && rc != QL_ECORRUPT)
			abort();
		/* nothing at or past FZ_NBLK (300 = 37 bytes + 4 bits) */
		if ((bits[FZ_NBLK / 8] >> (FZ_NBLK % 8)) ||
		    bits[FZ_NBLK / 8 + 1])
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dirfd < 0)
		setup();
	if (size < 1)
		return 0;
	if (data[0] & 4)
		id_value(data[0], data + 1, size - 1);
	else if (data[0] & 1)
		dir_entry(data[0], data + 1, size - 1);
	else
		meta(data + 1, size - 1);
	return 0;
}
