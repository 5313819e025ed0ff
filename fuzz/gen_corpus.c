/* gen_corpus.c - writes the seed corpora of the fuzz targets into
 * fuzz/corpus/<target>/ (the checked-in seeds were made by it; run it
 * again after a format change):
 *   gen_corpus OUTDIR
 * block:   frames made by the encoder (flag byte 0: as written, 1: the
 *          checksum fixed up by the target), small and mixed blocks;
 * segment: files of a real store: unsealed, sealed, torn, two
 *          generations; flag bytes that fix headers and frames;
 * parse:   the accepted and refused forms of each parser;
 * ndjson:  import lines in every accepted form, each kind of refusal,
 *          blank lines, several lines in one input;
 * holds:   HOLDS files written by qli_holds_save (active, released,
 *          lapsed holds, subjects), with flag bytes that fix the header
 *          and checksum, and hold specs for the place mode;
 * audit:   month files written by the appender (every kind of event,
 *          order IDs that need escapes), one or two months, torn,
 *          damaged, a broken link, with flag bytes that fix sums and
 *          links;
 * catalog: QLSTORE as a store writes it and variants, and the index's
 *          directory entries of the segment files made for segment. */
#define _GNU_SOURCE
#include "audit.h"
#include "codec.h"
#include "hold.h"
#include "dgroup.h"
#include "minib.h"
#include "querylog.h"
#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEC 1000000LL
#define BUCKET (1793491200LL * SEC) /* 2026-11-01T00:00:00Z */

static const char *outdir;

static void put(const char *target, const char *name, const void *a,
		size_t na, const void *b, size_t nb)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", outdir, target);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/%s/%s", outdir, target, name);
	f = fopen(p, "wb");
	if (!f || fwrite(a, 1, na, f) != na ||
	    (nb && fwrite(b, 1, nb, f) != nb) || fclose(f)) {
		perror(p);
		exit(1);
	}
}

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long len;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)len + 1);
	if (fread(p, 1, (size_t)len, f) != (size_t)len)
		exit(1);
	fclose(f);
	*n = (size_t)len;
	return p;
}

static void make_rec(qli_rec *r, char *req, char *tgt, unsigned i)
{
	sprintf(req, "+1415555%04u", i % 7);
	if (i % 3 == 0)
		sprintf(tgt, "user%u@example.com", i % 5);
	else
		sprintf(tgt, "+4477009%05u", i * 7919 % 100000);
	memset(r, 0, sizeof(*r));
	r->ts = BUCKET + 3600 * SEC + (int64_t)i * SEC - (i % 5 == 4) * 90 *
							   SEC;
	r->req = req;
	r->tgt = tgt;
	r->req_len = (uint8_t)strlen(req);
	r->tgt_len = (uint8_t)strlen(tgt);
	if (i % 2) {
		r->ip[10] = r->ip[11] = 0xff;
		r->ip[12] = 10;
		r->ip[15] = (uint8_t)i;
	} else {
		r->ip[0] = 0x20;
		r->ip[1] = 0x01;
		r->ip[15] = (uint8_t)(i % 3);
	}
	r->svc = (uint8_t)(i % 2);
	r->res = (uint8_t)(i % 4 != 0);
}

static void blocks(void)
{
	static const unsigned sizes[] = { 1, 2, 7, 40 };
	static char req[64][32], tgt[64][48];
	qli_encoder *e = qli_encoder_new(3);
	qli_rec r[64];

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		qli_buf out = { 0 };
		qli_frame_hdr h;
		char name[32];
		uint8_t flag;

		for (unsigned i = 0; i < sizes[k]; i++)
			make_rec(&r[i], req[i], tgt[i], i);
		if (qli_block_encode(e, &out, r, sizes[k], &h))
			exit(1);
		flag = 0;
		snprintf(name, sizeof(name), "block-%u", sizes[k]);
		put("block", name, &flag, 1, out.p, out.len);
		/* the same with a stale checksum the target fixes up */
		flag = 1;
		out.p[32] ^= 0xff;
		snprintf(name, sizeof(name), "block-%u-fix", sizes[k]);
		put("block", name, &flag, 1, out.p, out.len);
		qli_buf_free(&out);
	}
	qli_encoder_free(e);
}

static int64_t clk_now = BUCKET + 12 * 3600 * SEC;

static int64_t clk(void *ctx)
{
	(void)ctx;
	return clk_now;
}

static void append_some(ql_store *s, unsigned first, unsigned n)
{
	static char req[32], tgt[48];

	for (unsigned i = first; i < first + n; i++) {
		qli_rec q;
		ql_record r = { 0 };

		make_rec(&q, req, tgt, i);
		r.ts = q.ts;
		r.requester = req;
		r.target = tgt;
		memcpy(r.ip, q.ip, 16);
		r.service = q.svc;
		r.result = q.res;
		if (ql_append(s, &r, 1, NULL))
			exit(1);
	}
	if (ql_sync(s))
		exit(1);
}

/* The index's 'D' value of a segment file, encoded as
 * qli_index_put_dir does, as a catalog seed (flag 1). */
static void dir_value(const char *segdir, const char *file, const char *seed)
{
	int fd = open(segdir, O_RDONLY | O_DIRECTORY);
	qli_segfile sf;
	uint8_t *v;
	size_t len;

	if (fd < 0 || qli_segfile_load(&sf, fd, file, 0))
		exit(1);
	len = 24 + (size_t)sf.nblk * 48;
	v = calloc(1, len);
	v[0] = 2;
	v[1] = (uint8_t)sf.sealed;
	qli_put32(v + 4, sf.nblk);
	qli_put64(v + 8, sf.size);
	qli_put64(v + 16, sf.sealed ? sf.seal_checksum : 0);
	for (uint32_t i = 0; i < sf.nblk; i++)
		qli_blkent_pack(v + 24 + (size_t)i * 48, &sf.blk[i]);
	{
		uint8_t flag = 1;

		put("catalog", seed, &flag, 1, v, len);
	}
	free(v);
	qli_segfile_close(&sf);
	close(fd);
}

static void segments(void)
{
	char dir[] = "/tmp/qlgen.XXXXXX", store[64], p[128];
	ql_options o = QL_OPTIONS_INIT;
	uint8_t *g0, *g1, flag;
	size_t n0, n1;
	ql_store *s;

	if (!mkdtemp(dir))
		exit(1);
	snprintf(store, sizeof(store), "%s/store", dir);
	o.flags = QL_OPEN_CREATE;
	o.clock = clk;
	o.clock_ctx = NULL;
	o.maintenance_interval_ms = -1;
	o.block_records = 16;
	o.compaction = QL_COMPACT_OFF; /* the seeds are .qls files */
	if (ql_open(&s, store, &o))
		exit(1);
	append_some(s, 0, 40);
	snprintf(p, sizeof(p), "%s/seg/20261101T000000Z-g0.qls", store);
	g0 = slurp(p, &n0);
	flag = 0;
	put("segment", "unsealed", &flag, 1, g0, n0);
	/* a torn tail: the last block cut in the middle */
	put("segment", "torn", &flag, 1, g0, n0 - 37);
	flag = 4; /* a damaged block the target re-checksums */
	g0[n0 - 20] ^= 0x55;
	put("segment", "damaged-fixed", &flag, 1, g0, n0);
	free(g0);
	/* sealed, then a late record in generation 1 */
	clk_now = BUCKET + 86400 * SEC + 3600 * SEC;
	if (ql_maintain(s))
		exit(1);
	append_some(s, 40, 3);
	if (ql_close(s))
		exit(1);
	g0 = slurp(p, &n0);
	snprintf(p, sizeof(p), "%s/seg/20261101T000000Z-g1.qls", store);
	g1 = slurp(p, &n1);
	flag = 0;
	put("segment", "sealed", &flag, 1, g0, n0);
	{
		/* both generations in one input: flag 1 and the cut */
		uint8_t *both = malloc(n0 + n1 + 2);

		both[0] = (uint8_t)n0;
		both[1] = (uint8_t)(n0 >> 8);
		memcpy(both + 2, g0, n0);
		memcpy(both + 2 + n0, g1, n1);
		flag = 1;
		put("segment", "two-generations", &flag, 1, both, n0 + n1 + 2);
		/* the seal cut off: two unsealed generations */
		both[0] = (uint8_t)(n0 - 16 - 40 - 40 - 3 * 48);
		flag = 1 | 2 | 4;
		put("segment", "two-unsealed-fixed", &flag, 1, both,
		    n0 + n1 + 2);
		free(both);
	}
	flag = 2 | 4;
	put("segment", "header-only-fixed", &flag, 1, g0, 64);
	free(g0);
	free(g1);
	snprintf(p, sizeof(p), "%s/seg", store);
	dir_value(p, "20261101T000000Z-g0.qls", "dir-sealed");
	dir_value(p, "20261101T000000Z-g1.qls", "dir-unsealed");
	snprintf(p, sizeof(p), "%s/QLSTORE", store);
	g0 = slurp(p, &n0);
	flag = 0;
	put("catalog", "meta", &flag, 1, g0, n0);
	free(g0);
	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	if (system(p))
		exit(1);
}

static void parse(void)
{
	static const char *seeds[] = {
		"+14155550123", "tel:+442071838750",
		"mailto:Alice.B@Example.COM",
		"a.b-c+tag@mail.example.co.uk", "+1-415-555", "user@localhost",
		"192.0.2.1", "10.0.0.0/8", "2001:db8::1", "::ffff:10.1.2.3",
		"2001:db8::/32", "::/0", "fe80::1%eth0", "1.2.3.04",
		"2026-11-01T12:00:00Z", "2026-11-01T12:00:00.000123+05:30",
		"2026-11-01", "1793534400000000", "-2h", "+15m", "now",
		"30d", "2w", "90m", "2024-02-29T23:59:59Z", "2025-02-29",
		"9223372036854775807s",
	};

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		char name[32];

		snprintf(name, sizeof(name), "seed-%02zu", i);
		put("parse", name, seeds[i], strlen(seeds[i]), NULL, 0);
	}
}

static void ndjson(void)
{
	static const char *seeds[] = {
		"{\"ts\":\"2026-11-01T11:00:00Z\",\"requester\":\"+14155550123\","
		"\"target\":\"alice@example.com\",\"ip\":\"192.0.2.1\","
		"\"service\":\"messages\",\"result\":true}\n",
		/* as scan -o json prints it */
		"{\"ts\":1793530800000000,\"requester\":\"+14155550124\","
		"\"target\":\"Bob@example.com\",\"ip\":\"2001:db8::1\","
		"\"service\":1,\"result\":0}\n",
		"{\"result\":false,\"service\":\"facetime\",\"ip\":"
		"\"::ffff:10.1.2.3\",\"target\":\"tel:+442071838750\","
		"\"requester\":\"mailto:A.B@Example.COM\",\"ts\":\"-2h\"}",
		"{\"ts\":\"2026-11-01\",\"requester\":\"caf\\u00e9@example.com\","
		"\"target\":\"+14155550123\",\"ip\":\"10.0.0.1\",\"service\":255,"
		"\"result\":1}",
		"{\"ts\":-9223372036854775808,\"requester\":\"\",\"target\":"
		"\"x\",\"ip\":\"::\",\"service\":0,\"result\":0}",
		/* refused: each rule once */
		"{\"ts\":\"soon\",\"requester\":\"+14155550123\",\"target\":"
		"\"a@b.c\",\"ip\":\"1.2.3.4\",\"service\":0,\"result\":1}",
		"{\"ts\":1.5,\"requester\":\"+14155550123\"}",
		"{\"ts\":1,\"requester\":7,\"target\":\"a@b.c\",\"ip\":"
		"\"1.2.3.4\",\"service\":0,\"result\":1}",
		"{\"ts\":1,\"requester\":\"+1\",\"target\":\"a@b.c\",\"ip\":"
		"\"1.2.3.256\",\"service\":0,\"result\":1}",
		"{\"ts\":1,\"requester\":\"+1\",\"target\":\"a@b.c\",\"ip\":"
		"\"1.2.3.4\",\"service\":256,\"result\":1}",
		"{\"ts\":1,\"requester\":\"+1\",\"target\":\"a@b.c\",\"ip\":"
		"\"1.2.3.4\",\"service\":\"sms\",\"result\":2}",
		"{\"ts\":1,\"requester\":\"+1\",\"target\":\"a@b.c\",\"ip\":"
		"\"1.2.3.4\",\"service\":0}",
		"{\"ts\":1,\"ts\":2}",
		"{\"t\\u0001s\":1}",
		"[{\"ts\":1}]",
		"not json \x1b[2J\r",
		"{\"ts\":1,\"requester\":\"\\u0000\"}",
		" \t\r\n\n",
		"",
		/* several lines: good, bad, blank, good */
		"{\"ts\":\"now\",\"requester\":\"+14155550123\",\"target\":"
		"\"a@b.example\",\"ip\":\"203.0.113.7\",\"service\":0,"
		"\"result\":1}\n{\"ts\":\n\n{\"ts\":0,\"requester\":\"+1\","
		"\"target\":\"+2\",\"ip\":\"fe80::1\",\"service\":3,"
		"\"result\":true}\n",
	};

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		char name[32];

		snprintf(name, sizeof(name), "seed-%02zu", i);
		put("ndjson", name, seeds[i], strlen(seeds[i]), NULL, 0);
	}
}

static void holds(void)
{
	static const char *subj[] = { "+14155550123", "tel:+442071838750",
				      "Alice@Example.COM", "10.1.2.3",
				      "2001:db8::/32", "192.0.2.0/24" };
	char dir[] = "/tmp/qlgen.XXXXXX", p[128];
	qli_holdset set;
	qli_hold_spec sp = { 0 };
	uint8_t *f, flag;
	size_t n;
	int dfd;

	if (!mkdtemp(dir) || (dfd = open(dir, O_RDONLY | O_DIRECTORY)) < 0)
		exit(1);
	qli_holds_init(&set);
	if (qli_holds_save(dfd, &set))
		exit(1);
	snprintf(p, sizeof(p), "%s/HOLDS", dir);
	f = slurp(p, &n);
	flag = 0;
	put("holds", "empty", &flag, 1, f, n);
	free(f);

	sp.order_id = "ORD-2026-0001";
	sp.from = BUCKET - 10 * 86400 * SEC;
	sp.to = BUCKET;
	sp.expires = BUCKET + 30 * 86400 * SEC;
	sp.reason = "grand jury subpoena 26-114, caf\xc3\xa9";
	sp.placed_by = "legal@example.com";
	sp.subjects = subj;
	sp.nsubjects = 6;
	if (qli_holds_place(&set, &sp, BUCKET, NULL))
		exit(1);
	sp.order_id = "ORD 2";
	sp.to = QLI_HOLD_OPEN;
	sp.period_us = 7 * 86400 * SEC;
	sp.nsubjects = 0;
	if (qli_holds_place(&set, &sp, BUCKET, NULL) ||
	    qli_holds_release(&set, "ORD 2", BUCKET + SEC, "ops"))
		exit(1);
	sp.order_id = "ORD-3";
	sp.expires = BUCKET + SEC;
	if (qli_holds_place(&set, &sp, BUCKET, NULL) ||
	    qli_holds_lapse(&set, BUCKET + 2 * SEC, NULL, NULL) != 1 ||
	    qli_holds_save(dfd, &set))
		exit(1);
	f = slurp(p, &n);
	flag = 0;
	put("holds", "three", &flag, 1, f, n);
	/* text that breaks the writers' rules, which readers do not check
	 * (FORMAT.md, HOLDS); flag 1 gives them a valid checksum */
	{
		uint8_t *q = memmem(f, n, "caf\xc3\xa9", 5);

		flag = 1;
		q[3] = 0x1b;
		put("holds", "reason-control-char", &flag, 1, f, n);
		q[3] = 0xc3;
		q[4] = '(';
		put("holds", "reason-not-utf8", &flag, 1, f, n);
		q[4] = 0xa9;
		q = memmem(f, n, "+14155550123", 12);
		q[11] = 'x';
		put("holds", "subject-not-canonical", &flag, 1, f, n);
		q[11] = '3';
	}
	/* the fuzzer's fix-ups: a stale checksum, a damaged header */
	f[n - 1] ^= 0x5a;
	flag = 1;
	put("holds", "three-fix-sum", &flag, 1, f, n);
	f[5] = 7;
	f[12] ^= 1;
	flag = 3;
	put("holds", "three-fix-header", &flag, 1, f, n);
	free(f);
	qli_holds_free(&set);
	unlinkat(dfd, "HOLDS", 0);
	close(dfd);
	rmdir(dir);

	/* place mode: order ID, placed_by, reason, subjects */
	{
		static const char spec[] = "ORD-9\0judge@example.org\0"
					   "order 9\0+14155550123\0"
					   "10.0.0.0/8\0::ffff:10.0.0.1";

		flag = 4;
		put("holds", "place", &flag, 1, spec, sizeof(spec) - 1);
		flag = 4 | 1 | 16 | 64;
		put("holds", "place-open-release", &flag, 1, spec,
		    sizeof(spec) - 1);
	}
}

/* The flag byte and, for two files, the cut. */
static void put_audit(const char *name, uint8_t flag, const uint8_t *oct,
		      size_t noct, const uint8_t *nov, size_t nnov)
{
	uint8_t *b = malloc(3 + noct + nnov);
	size_t n = 0;

	b[n++] = flag;
	if (flag & 4) {
		b[n++] = (uint8_t)noct;
		b[n++] = (uint8_t)(noct >> 8);
		memcpy(b + n, oct, noct);
		n += noct;
	}
	memcpy(b + n, nov, nnov);
	n += nnov;
	put("audit", name, b, n, NULL, 0);
	free(b);
}

static void audit(void)
{
	const int64_t oct = 1792454400LL * SEC; /* 2026-10-20T00:00:00Z */
	const int64_t nov = 1794700800LL * SEC; /* 2026-11-15T00:00:00Z */
	static const char *subj[] = { "+14155550123", "10.0.0.0/8" };
	char dir[] = "/tmp/qlgen.XXXXXX", p[128];
	qli_hold_spec sp = { 0 };
	qli_holdset set;
	qli_hold *h;
	qli_audit *a;
	uint8_t *o, *v;
	size_t no, nv, first;
	int dfd;

	if (!mkdtemp(dir) || (dfd = open(dir, O_RDONLY | O_DIRECTORY)) < 0 ||
	    qli_audit_open(&a, dfd, 0, 0))
		exit(1);
	qli_holds_init(&set);
	sp.order_id = "ORD \"7\" \\ x";
	sp.from = oct - 86400 * SEC;
	sp.to = QLI_HOLD_OPEN;
	sp.expires = nov + 30 * 86400 * SEC;
	sp.reason = "subpoena \"7\", caf\xc3\xa9";
	sp.placed_by = "legal";
	sp.subjects = subj;
	sp.nsubjects = 2;
	if (qli_holds_place(&set, &sp, oct, &h) ||
	    qli_audit_hold(a, oct, QLI_AEV_HOLD_PLACED, "legal", h, 0,
			   h->expires) ||
	    qli_audit_segment_sealed(a, oct + SEC, "server",
				     "20261019T000000Z-g0.qls", 1234, 56789,
				     0x0123456789abcdefULL) ||
	    qli_audit_query(a, oct + 2 * SEC, "analyst", "ORD-1",
			    "handle +14155550123 role any"))
		exit(1);
	if (qli_audit_query(a, nov, "analyst", sp.order_id, "ip 10.0.0.0/8") ||
	    qli_holds_release(&set, sp.order_id, nov + SEC, "legal") ||
	    qli_audit_hold(a, nov + SEC, QLI_AEV_HOLD_RELEASED, "legal",
			   &set.v[0], set.v[0].expires, 0) ||
	    qli_audit_query(a, nov + 2 * SEC, "analyst", NULL, "stat"))
		exit(1);
	qli_audit_close(a);
	qli_holds_free(&set);
	snprintf(p, sizeof(p), "%s/audit/2026-10.log", dir);
	o = slurp(p, &no);
	unlink(p);
	snprintf(p, sizeof(p), "%s/audit/2026-11.log", dir);
	v = slurp(p, &nv);
	unlink(p);
	snprintf(p, sizeof(p), "%s/audit", dir);
	rmdir(p);
	close(dfd);
	rmdir(dir);

	put_audit("nov", 0, NULL, 0, v, nv);
	put_audit("two-months", 4, o, no, v, nv);
	put_audit("oct-only", 4, o, no, NULL, 0);
	put_audit("torn", 4, o, no, v, nv - 9);
	/* the first record of November, then the rest */
	first = 12 + (size_t)(v[0] | v[1] << 8 | v[2] << 16);
	put_audit("nov-first-only", 0, NULL, 0, v, first);
	/* a broken link: the second record's prev; flags 3 mend it */
	v[first + 12 + (size_t)((uint8_t *)memmem(v + first + 12, nv - first -
						  12, "\"prev\":\"", 8) -
				 (v + first + 12)) + 8] ^= 1;
	put_audit("broken-link", 4 | 1, o, no, v, nv);
	put_audit("broken-link-fix", 4 | 3, o, no, v, nv);
	/* a damaged middle record, its sum fixed */
	v[first + 20] ^= 0x20;
	put_audit("damaged", 4, o, no, v, nv);
	put_audit("damaged-fix", 4 | 3, o, no, v, nv);
	/* October damaged, November only a torn header: the appender cuts
	 * the tear, then refuses to chain to October */
	o[40] ^= 0x20;
	put_audit("oct-damaged-nov-torn", 4, o, no, v, 9);
	free(o);
	free(v);
	/* escapes in order IDs and keys, frames made here (flag 3 fixes
	 * sums and links) */
	{
		static const char *pl[] = {
			"{\"ts\":1794700800000000,\"event\":\"query\",\"who\":"
			"\"a\",\"order_id\":\"ORD\\u002d1\",\"prev\":"
			"\"0000000000000000\"}",
			"{\"ts\":1794700800000001, \"order_id\" : \"\\ud83d"
			"\\ude00 \\u00e9 \\\\ \\\" \\/ \\b\\f\\n\\r\\t\","
			"\"prev\":\"0000000000000000\",\"x\":[1,{\"order_id\":"
			"\"ORD-1\"},-0.5e+3,true,false,null]}",
			"{\"ts\":1794700800000002,\"order_id\":\"ORD-1\",\"prev\":"
			"\"0000000000000000\",\"order\\u005fid\":\"x\"}",
			"{\"ts\":-0,\"prev\":\"0000000000000000\",\"order_id\":"
			"\"\\ud800\"}",
		};
		uint8_t buf[1024];
		size_t n = 0;

		for (size_t i = 0; i < sizeof(pl) / sizeof(pl[0]); i++) {
			size_t len = strlen(pl[i]);

			qli_put32(buf + n, (uint32_t)len);
			qli_put64(buf + n + 4, 0);
			memcpy(buf + n + 12, pl[i], len);
			n += 12 + len;
		}
		put_audit("escapes", 3, NULL, 0, buf, n);
	}
}

static void catalog(void)
{
	static const char *meta[] = {
		"querylog-store 1\nbucket_width_us 3600000000\n",
		"querylog-store 1\nbucket_width_us 604800000000\n"
		"retention_us 9223372036854775807\n",
		"querylog-store 1 bucket_width_us 60000000 retention_us -1",
		"querylog-store\t 001\n\n\nbucket_width_us +86400000000\n"
		"retention_us 0x10\ntrailing",
		"querylog-store 2\nbucket_width_us 86400000000\n",
		"querylog-store 1\nbucket_width_us 7200000001\n",
		"querylog-store 1\nbucket_width_us 99999999999999999999\n",
		"querylog-store 1\nbucket_width_us 691200000000\n",
		"querylog-store 1\nbucket_width_us 25200000000\n",
		"QLSTORE",
		"",
	};
	uint8_t flag = 0;
	uint8_t v[24 + 48] = { 7, 1, 0, 0, 1 };

	for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++) {
		char name[32];

		snprintf(name, sizeof(name), "meta-%02zu", i);
		put("catalog", name, &flag, 1, meta[i], strlen(meta[i]));
	}
	/* a wrong version byte and an empty entry; flag 3 mends the first */
	flag = 1;
	put("catalog", "dir-bad-version", &flag, 1, v, sizeof(v));
	flag = 3;
	put("catalog", "dir-bad-version-fix", &flag, 1, v, sizeof(v) - 5);
	v[0] = 1;
	v[4] = 0;
	flag = 1;
	put("catalog", "dir-empty", &flag, 1, v, 24);
	/* a compact segment's id chunks and class filters (FORMAT.md §6):
	 * flag 4 handle chunk, 4|16 address chunk, 4|8 handle filter */
	{
		static const uint8_t hc[] = {
			3, 0, 'h', 0,
			4, 5,             /* id 0: requester in block 5 */
			1, 7,             /* id 1: target in block 7 */
			11, 1, 0, 3, 1, 0, 0, 1, /* id 2: 2 + 4 blocks */
		};
		static const uint8_t ac[] = {
			2, 0, 'a', 0, 2, 0, 1, 1, 0xab, 2,
		};
		uint8_t fl[4 + 8 + 8 + 8] = { 'h', 5, 2, 0, 8, 0, 0, 0,
					       8, 0, 0, 0 };

		memset(fl + 12, 0xff, 8); /* class 0 admits every key */
		flag = 4;
		put("catalog", "idchunk-h", &flag, 1, hc, sizeof(hc));
		flag = 4 | 16;
		put("catalog", "idchunk-a", &flag, 1, ac, sizeof(ac));
		flag = 4 | 8;
		put("catalog", "filter-h", &flag, 1, fl, 4 + 8 + 16);
	}
}

/* fuzz_minib's input (its header comment): tables, then one mini block
 * encoded from records with those tables. */
static void minib_seed(const char *name, uint32_t n, uint32_t ncls,
		       uint32_t nh, uint32_t ni, unsigned span_log2,
		       uint64_t seed)
{
	qli_idrec r[QLI_MB_RECORDS];
	uint64_t creq[QLI_DICT_CLASSES] = { 0 }, ctgt[QLI_DICT_CLASSES] = { 0 },
		 csr[QLI_MB_SR] = { 0 }, x = seed;
	uint32_t cls[QLI_DICT_CLASSES + 1];
	uint8_t hdr[9 + 2 * QLI_DICT_CLASSES + 16], len[QLI_MB_SR];
	qli_bits bits = { 0 };
	qli_mbtab t;
	size_t at = 9;

	for (uint32_t c = 0; c <= ncls; c++)
		cls[c] = (uint32_t)((uint64_t)nh * c / ncls);
	if (qli_mbtab_init(&t, nh, cls, ncls, ni, (int64_t)1 << span_log2))
		exit(1);
	for (uint32_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		r[i].ip = (uint32_t)((x >> 33) % ni) / 4 * 4 % ni;
		r[i].ts = (int64_t)((x >> 11) % ((uint64_t)1 << span_log2));
		r[i].req = (uint32_t)((x >> 7) % nh);
		r[i].tgt = (uint32_t)((x >> 29) % nh);
		r[i].svc = (uint8_t)((x >> 50) % 3);
		r[i].res = (uint8_t)((x >> 60) & 1);
	}
	for (uint32_t i = 1; i < n; i++) /* insertion sort by (ip, ts) */
		for (uint32_t j = i; j > 0 && (r[j].ip < r[j - 1].ip ||
					       (r[j].ip == r[j - 1].ip &&
						r[j].ts < r[j - 1].ts));
		     j--) {
			qli_idrec tmp = r[j];

			r[j] = r[j - 1];
			r[j - 1] = tmp;
		}
	qli_mb_count(&t, r, n, creq, ctgt, csr);
	hdr[0] = (uint8_t)(n - 1);
	hdr[1] = (uint8_t)(ncls - 1);
	for (int b = 0; b < 3; b++) {
		hdr[2 + b] = (uint8_t)(nh >> (8 * b));
		hdr[5 + b] = (uint8_t)(ni >> (8 * b));
	}
	hdr[8] = (uint8_t)span_log2;
	qli_mbcode_lengths(creq, ncls, len);
	memcpy(hdr + at, len, ncls);
	if (qli_mbcode_from_lengths(&t.req, len, ncls, "r"))
		exit(1);
	at += ncls;
	qli_mbcode_lengths(ctgt, ncls, len);
	memcpy(hdr + at, len, ncls);
	if (qli_mbcode_from_lengths(&t.tgt, len, ncls, "t"))
		exit(1);
	at += ncls;
	qli_mbcode_lengths(csr, QLI_MB_SR, len);
	memcpy(hdr + at, len, 16);
	if (qli_mbcode_from_lengths(&t.sr, len, QLI_MB_SR, "s"))
		exit(1);
	at += 16;
	if (qli_mb_encode(&t, &bits, r, n))
		exit(1);
	put("minib", name, hdr, at, bits.p, (size_t)((bits.nbits + 7) / 8));
	qli_bits_free(&bits);
}

static void minib(void)
{
	minib_seed("runs-40", 40, 3, 300, 20, 36, 1);
	minib_seed("full-64", 64, 12, 5000, 900, 37, 2);
	minib_seed("one-record", 1, 1, 1, 1, 0, 3);
}

/* fuzz_dgroup's input (its header comment): a domain table, then one
 * group encoded with it. */
static void dgroup(void)
{
	static const char *const hk[] = { "+14155550100", "+14155550123",
					  "+442071234567", "alice@gmail.com",
					  "alicia@gmail.com", "bob@x.example",
					  "no-at", "Q!#x@gmail.com" };
	static const char *const dom[] = { "gmail.com" };
	uint8_t hl[8], dl[1] = { 9 }, hdr[2 + 1 + 9];
	uint8_t a[3][16] = { { 0 }, { 0 }, { 0x26, 0x00, 0x01 } };
	qli_bits b = { 0 };
	qli_dgtab t;

	for (int i = 0; i < 8; i++)
		hl[i] = (uint8_t)strlen(hk[i]);
	if (qli_dgtab_init(&t, dom, dl, 1) ||
	    qli_dg_put_handles(&t, &b, hk, hl, 8))
		exit(1);
	hdr[0] = 8 - 1;
	hdr[1] = 1;
	hdr[2] = 9;
	memcpy(hdr + 3, "gmail.com", 9);
	put("dgroup", "handles-8", hdr, sizeof(hdr), b.p,
	    (size_t)((b.nbits + 7) / 8));
	qli_bits_free(&b);
	a[0][10] = a[0][11] = a[1][10] = a[1][11] = 0xff;
	a[0][12] = 10, a[1][12] = 10, a[1][15] = 7;
	if (qli_dg_put_addrs(&b, (const uint8_t(*)[16])a, 3))
		exit(1);
	hdr[0] = 0x80 | (3 - 1);
	hdr[1] = 0;
	put("dgroup", "addrs-3", hdr, 2, b.p, (size_t)((b.nbits + 7) / 8));
	qli_bits_free(&b);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);
	blocks();
	segments();
	parse();
	ndjson();
	holds();
	audit();
	catalog();
	minib();
	dgroup();
	return 0;
}
