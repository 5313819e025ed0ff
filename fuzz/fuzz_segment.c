/* fuzz_segment.c - bytes as a segment file in a store: writer open (the
 * recovery walk, truncation, sealing of older generations), a full scan,
 * ql_segments(verify=1), close.
 *
 * Input: one flag byte, then the file.
 *   bit 0  split the rest in two files at the offset in the next two
 *          bytes: generations 0 and 1 of the same bucket (the recovery of
 *          two unsealed generations);
 *   bit 1  fix every file's header: magic, version, bucket start, width
 *          and generation as the file name says, and the header checksum;
 *   bit 2  fix the checksums of the frames as far as they parse, and the
 *          chained checksum inside a seal, so the fuzzer gets past xxh64;
 *   bit 3  name the files .qlc (compact segments, docs/FORMAT.md §5.9;
 *          bit 1 then writes version 3, else 4). Compaction runs inline,
 *          so a sealed .qls input is also rewritten and read back
 *          compact.
 * The store is day-bucketed, named seg/20261101T000000Z-gN.qls, on a fixed
 * clock inside that bucket so no record is refused for its time. Nothing
 * may crash; a scan may fail only with QL_ECORRUPT. After the writer
 * open recovered the files, a second scan and verification must agree
 * with the first (recovery leaves a consistent store). */
#define _GNU_SOURCE
#include "codec.h"
#include "querylog.h"
#include "fuzz_util.h"
#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DAY_US (86400LL * 1000000LL)
#define BUCKET (1793491200LL * 1000000LL) /* 2026-11-01T00:00:00Z */

static char dir[256], segdir[300];
static int64_t now = BUCKET + 12 * 3600LL * 1000000LL;

static int64_t fixed_clock(void *ctx)
{
	(void)ctx;
	return now;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	fz_write_file(AT_FDCWD, path, p, n);
}

static void clear_segdir(void)
{
	DIR *d = opendir(segdir);
	struct dirent *de;
	char p[600];

	if (!d)
		abort();
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", segdir, de->d_name);
		unlink(p);
	}
	closedir(d);
}

static void cleanup(void)
{
	char p[400];

	clear_segdir();
	rmdir(segdir);
	snprintf(p, sizeof(p), "%s/QLSTORE", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/LOCK", dir);
	unlink(p);
	rmdir(dir);
}

/* FUZZ_SEGMENT_DIR=path keeps the store of the last input there, to look
 * at a crash with logtool; otherwise a temporary directory is used and
 * removed at exit. */
static void setup(void)
{
	const char *base = getenv("TMPDIR"), *keep = getenv("FUZZ_SEGMENT_DIR");
	static const char meta[] = "querylog-store 1\n"
				   "bucket_width_us 86400000000\n";
	char p[400];

	if (keep) {
		snprintf(dir, sizeof(dir), "%s", keep);
		if (mkdir(dir, 0700) && errno != EEXIST)
			abort();
	} else {
		snprintf(dir, sizeof(dir), "%s/qlfuzz.XXXXXX",
			 base ? base : "/tmp");
		if (!mkdtemp(dir))
			abort();
		atexit(cleanup);
	}
	snprintf(segdir, sizeof(segdir), "%s/seg", dir);
	if (mkdir(segdir, 0700) && errno != EEXIST)
		abort();
	snprintf(p, sizeof(p), "%s/QLSTORE", dir);
	write_file(p, (const uint8_t *)meta, sizeof(meta) - 1);
}

static int g_compact;

static void fix_header(uint8_t *f, size_t n, uint32_t gen)
{
	static const uint8_t magic[8] = { 'Q', 'L', 'O', 'G', 'S', 'E', 'G',
					  0 };

	if (n < QLI_SEG_HDR)
		return;
	memcpy(f, magic, 8);
	f[8] = g_compact ? QLI_SEG_VERSION_COMPACT : QLI_SEG_VERSION;
	f[9] = 0;
	qli_put64(f + 16, (uint64_t)BUCKET);
	qli_put64(f + 24, (uint64_t)DAY_US);
	qli_put32(f + 32, gen);
	qli_put64(f + 56, qli_hash64(f, 56, 0));
}

/* Walks the frames as the loader does and recomputes their checksums;
 * a seal also gets the chained checksum of the blocks before it. */
static void fix_frames(uint8_t *f, size_t n, uint32_t gen)
{
	int64_t bs = BUCKET;
	uint64_t chain = qli_hash64(&bs, 8, gen), off = QLI_SEG_HDR;

	while (off + QLI_FRAME_HDR <= n) {
		qli_frame_hdr h;

		if (qli_frame_hdr_read(f + off, &h) ||
		    off + QLI_FRAME_HDR + h.comp_len > n)
			return;
		if (h.magic == QLI_MAGIC_SEAL && h.comp_len >= 32)
			qli_put64(f + off + QLI_FRAME_HDR + 24, chain);
		if (h.magic == QLI_MAGIC_SYNC) /* a mark names its offset */
			h.min_ts = (int64_t)off;
		qli_frame_hdr_write(f + off, &h, f + off + QLI_FRAME_HDR);
		if (h.magic == QLI_MAGIC_SEAL)
			return;
		if (h.magic == QLI_MAGIC_SYNC) { /* not in the chain */
			off += QLI_FRAME_HDR;
			continue;
		}
		{
			uint8_t b[16];

			qli_put64(b, chain);
			qli_put64(b + 8, h.checksum);
			chain = qli_hash64(b, 16, 0);
		}
		off += QLI_FRAME_HDR + h.comp_len;
	}
}

static void put_segment(uint32_t gen, const uint8_t *p, size_t n,
			unsigned flags)
{
	char path[400];
	uint8_t *f = malloc(n ? n : 1);

	if (!f)
		abort();
	memcpy(f, p, n);
	if (flags & 2)
		fix_header(f, n, gen);
	if (flags & 4)
		fix_frames(f, n, gen);
	snprintf(path, sizeof(path), "%s/20261101T000000Z-g%u.%s", segdir,
		 gen, g_compact ? "qlc" : "qls");
	write_file(path, f, n);
	free(f);
}

typedef struct scan_res {
	int rc;
	uint64_t n;
} scan_res;

static scan_res scan(ql_store *s)
{
	ql_query q = QL_QUERY_INIT;
	const ql_record *r;
	scan_res res = { 0, 0 };
	ql_cursor *c;
	int64_t last = INT64_MIN;

	res.rc = ql_cursor_open(&c, s, &q);
	if (res.rc)
		return res;
	while ((res.rc = ql_cursor_next(c, &r)) == QL_ROW) {
		if (r->ts < last || !r->requester || !r->target)
			abort();
		last = r->ts;
		res.n += strlen(r->requester) + strlen(r->target) > 0;
	}
	ql_cursor_close(c);
	return res;
}

static int count_seg(const ql_segment_info *i, void *ctx)
{
	(void)i;
	++*(int *)ctx;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ql_options o = QL_OPTIONS_INIT;
	unsigned flags;
	scan_res a, b;
	ql_store *s;
	int n = 0, v1, v2;

	if (!dir[0])
		setup();
	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	g_compact = !!(flags & 8);
	clear_segdir();
	if ((flags & 1) && size >= 2) {
		size_t cut = (size_t)(data[0] | data[1] << 8);

		data += 2;
		size -= 2;
		if (cut > size)
			cut = size;
		put_segment(0, data, cut, flags);
		put_segment(1, data + cut, size - cut, flags);
	} else {
		put_segment(0, data, size, flags);
	}

	o.clock = fixed_clock;
	o.maintenance_interval_ms = -1;
	o.compaction = QL_COMPACT_INLINE;
	if (ql_open(&s, dir, &o))
		return 0; /* refusing a damaged store is allowed */
	a = scan(s);
	if (a.rc != QL_DONE && a.rc != QL_ECORRUPT)
		abort();
	v1 = ql_segments(s, 1, count_seg, &n);
	if (v1 != 0 && v1 != QL_ECORRUPT)
		abort();
	b = scan(s);
	v2 = ql_segments(s, 1, count_seg, &n);
	/* reading changes nothing */
	if (a.rc != b.rc || a.n != b.n || v1 != v2)
		abort();
	/* compaction of a sealed .qls that read cleanly keeps every record */
	if (ql_maintain(s) == 0 && a.rc == QL_DONE && v1 == 0) {
		scan_res c = scan(s);

		if (c.rc != QL_DONE || c.n != a.n ||
		    ql_segments(s, 1, count_seg, &n) != 0)
			abort();
	}
	ql_close(s);
	return 0;
}
