/* test_compact.c - compaction (store/compact.c): the compact form answers
 * exactly as the sealed form did, and a power cut at every counted I/O
 * operation of a compaction loses and doubles nothing.
 *
 * A store with four sealed one-hour buckets (one with a late second
 * generation) is written with compaction off; its answers (a full scan in
 * order, handle and IP/CIDR queries) are the reference. Then, for N = 1,
 * 2, ... until a run completes: a fresh copy is opened with
 * QL_COMPACT_INLINE under the fault vfs, power is cut before the Nth
 * counted operation of ql_maintain's compactions, the tree is rebuilt as
 * a reboot would find it (clean, and torn: unsynced bytes partly kept),
 * and the reopened store must give the reference answers, verify clean,
 * and, compacted again to the end, still give them. */
#define _GNU_SOURCE
#include "testutil.h"

#include "faultvfs.h"
#include "segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NB 4
#define PER 300

static char g_tmpl[512];
static int64_t g_now;
static unsigned g_fail, g_pass;

typedef struct answers {
	uint64_t scan_n, scan_h; /* order-sensitive hash of the full scan */
	uint64_t q_n[6], q_h[6];
} answers;

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "FAIL: " __VA_ARGS__);              \
			fprintf(stderr, "\n");                              \
			g_fail++;                                           \
			return -1;                                          \
		}                                                           \
	} while (0)

static ql_options opts(int compaction)
{
	ql_options o = QL_OPTIONS_INIT;

	o.flags = QL_OPEN_CREATE;
	o.bucket_width_us = T_HOUR;
	o.seal_grace_us = T_MIN;
	o.block_records = 64;
	o.maintenance_interval_ms = -1;
	o.clock = t_clock;
	o.clock_ctx = &g_now;
	o.compaction = compaction;
	return o;
}

static int run_query(ql_store *s, const ql_query *q, uint64_t *n,
		     uint64_t *h)
{
	ql_cursor *c;
	const ql_record *r;
	int rc = ql_cursor_open(&c, s, q);

	*n = 0;
	*h = 1;
	if (rc)
		return rc;
	while ((rc = ql_cursor_next(c, &r)) == QL_ROW) {
		(*n)++;
		*h = (*h * 0x100000001b3ULL) ^ t_hash(r);
	}
	ql_cursor_close(c);
	return rc == QL_DONE ? 0 : rc;
}

static int answer(ql_store *s, answers *a)
{
	ql_query q = QL_QUERY_INIT;
	static const char *const handles[] = { "+14155550007",
					       "user15@example.com",
					       "+447700900012" };
	int rc = run_query(s, &q, &a->scan_n, &a->scan_h);

	for (int i = 0; i < 3 && !rc; i++) {
		ql_query h = QL_QUERY_INIT;

		h.match = QL_MATCH_HANDLE;
		h.handle = handles[i];
		h.role = i == 2 ? QL_ROLE_TARGET : QL_ROLE_ANY;
		rc = run_query(s, &h, &a->q_n[i], &a->q_h[i]);
	}
	for (int i = 0; i < 3 && !rc; i++) {
		ql_query p = QL_QUERY_INIT;
		static const char *const ips[] = { "10.0.7.3", "10.0.0.0",
						   "2601::" };
		static const unsigned plen[] = { 128, 104 + 8, 16 };

		p.match = QL_MATCH_IP;
		if (ql_ip_parse(p.ip, ips[i], "ip"))
			return -1;
		p.prefix_len = plen[i];
		rc = run_query(s, &p, &a->q_n[3 + i], &a->q_h[3 + i]);
	}
	return rc;
}

static void build_template(answers *ref)
{
	ql_options o = opts(QL_COMPACT_OFF);
	uint64_t rng = 7;
	ql_store *s;
	t_rec t;

	t_tmpdir(g_tmpl, sizeof(g_tmpl));
	t_setclock(&g_now, T_EPOCH + 10 * T_HOUR);
	if (ql_open(&s, g_tmpl, &o))
		abort();
	for (int b = 0; b < NB; b++) {
		for (int i = 0; i < PER; i++) {
			t_make(&t, &rng, T_EPOCH + b * T_HOUR + i * 7 * T_SEC +
						 (i % 13 == 0 ? -3 * T_SEC : 0),
			       60);
			if (ql_append(s, &t.r, 1, 0))
				abort();
		}
	}
	if (ql_sync(s) || ql_maintain(s))
		abort();
	/* a late record for bucket 1, sealed already: generation 1 */
	t_make(&t, &rng, T_EPOCH + T_HOUR + 5 * T_MIN, 60);
	if (ql_append(s, &t.r, 1, 0) || ql_sync(s) || ql_maintain(s))
		abort();
	if (answer(s, ref) || ql_close(s))
		abort();
	if (ref->scan_n != NB * PER + 1)
		abort();
}

static int copy_tree(const char *dst)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", dst,
		 g_tmpl, dst);
	return system(cmd);
}

static int count_files(const char *dir, const char *ext)
{
	char cmd[700];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls '%s/seg' | grep -c '%s$'", dir, ext);
	p = popen(cmd, "r");
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

/* The set of format versions (bit v) of the .qlc files in dir/seg. */
static unsigned seg_versions(const char *dir)
{
	char cmd[700], name[600];
	unsigned set = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls '%s/seg' | grep 'qlc$'", dir);
	p = popen(cmd, "r");
	while (p && fscanf(p, "%511s", name) == 1) {
		char path[1400];
		uint8_t h[16];
		FILE *f;

		snprintf(path, sizeof(path), "%s/seg/%s", dir, name);
		f = fopen(path, "rb");
		if (f && fread(h, 1, sizeof(h), f) == sizeof(h) && h[8] < 32)
			set |= 1u << h[8];
		if (f)
			fclose(f);
	}
	if (p)
		pclose(p);
	return set;
}

static int seg_ok(const ql_segment_info *i, void *ctx)
{
	(void)i;
	(void)ctx;
	return 0;
}

static int check_store(const char *dir, const answers *ref, int compaction,
		       const char *what)
{
	ql_options o = opts(compaction);
	answers a;
	ql_store *s;
	int rc;

	rc = ql_open(&s, dir, &o);
	CHECK(rc == 0, "%s: reopen: %s", what, ql_errmsg(NULL));
	rc = answer(s, &a);
	CHECK(rc == 0, "%s: queries: %s", what, ql_errmsg(NULL));
	CHECK(a.scan_n == ref->scan_n && a.scan_h == ref->scan_h,
	      "%s: full scan %llu records, want %llu (or order/content "
	      "differs)", what, (unsigned long long)a.scan_n,
	      (unsigned long long)ref->scan_n);
	for (int i = 0; i < 6; i++)
		CHECK(a.q_n[i] == ref->q_n[i] && a.q_h[i] == ref->q_h[i],
		      "%s: query %d: %llu rows, want %llu", what, i,
		      (unsigned long long)a.q_n[i],
		      (unsigned long long)ref->q_n[i]);
	rc = ql_segments(s, 1, seg_ok, NULL);
	CHECK(rc == 0, "%s: verify: %s", what, ql_errmsg(NULL));
	if (compaction == QL_COMPACT_INLINE) {
		rc = ql_maintain(s);
		CHECK(rc == 0, "%s: ql_maintain: %s", what, ql_errmsg(NULL));
		rc = answer(s, &a);
		CHECK(rc == 0 && a.scan_n == ref->scan_n &&
			      a.scan_h == ref->scan_h,
		      "%s: after compacting again: %llu records", what,
		      (unsigned long long)a.scan_n);
		for (int i = 0; i < 6; i++)
			CHECK(a.q_n[i] == ref->q_n[i] &&
				      a.q_h[i] == ref->q_h[i],
			      "%s: after compacting again, query %d", what,
			      i);
	}
	rc = ql_close(s);
	CHECK(rc == 0, "%s: close: %s", what, ql_errmsg(NULL));
	g_pass++;
	return 0;
}

/* Blocks whose times overlap: compaction orders a segment's records by
 * time whatever the order of its blocks (store/compact.c, sort_runs).
 * Bucket 5: each block overlaps the next by 4 records (merged where they
 * are); bucket 6: random times (the heap merge takes over); bucket 7:
 * blocks in reverse time order (merged in place, then the heap merge). */
static void check_overlap(void)
{
	ql_options o = opts(QL_COMPACT_OFF);
	char dir[512];
	answers ref;
	uint64_t rng = 11;
	ql_store *s;
	static t_rec t[64];
	ql_record recs[64];

	t_tmpdir(dir, sizeof(dir));
	t_setclock(&g_now, T_EPOCH + 10 * T_HOUR);
	if (ql_open(&s, dir, &o))
		abort();
	for (int b = 0; b < 3; b++) {
		int64_t base = T_EPOCH + (5 + b) * T_HOUR;

		for (int j = 0; j < 12; j++) {
			for (int i = 0; i < 64; i++) {
				int64_t off =
					b == 0	 ? (j * 60 + i) * T_SEC
					: b == 1 ? (int64_t)(t_rand(&rng) %
							     (T_HOUR - T_SEC))
						 : ((11 - j) * 64 + i) * T_SEC;

				t_make(&t[i], &rng, base + off, 60);
				recs[i] = t[i].r;
			}
			if (ql_append(s, recs, 64, 0) || ql_sync(s))
				abort();
		}
	}
	if (ql_maintain(s) || answer(s, &ref) || ql_close(s))
		abort();
	if (ref.scan_n != 3 * 12 * 64)
		abort();
	check_store(dir, &ref, QL_COMPACT_INLINE, "overlapping blocks");
	if (count_files(dir, ".qlc") != 3 || count_files(dir, ".qls") != 0) {
		fprintf(stderr, "FAIL: overlapping blocks: %d .qlc and %d "
			".qls files, want 3 and 0\n", count_files(dir, ".qlc"),
			count_files(dir, ".qls"));
		g_fail++;
	}
	t_cleanup(dir);
}

/* ql_segments callback: the first segment's name, sealed, indexed. */
typedef struct seginfo {
	char name[64];
	int sealed, indexed, n;
} seginfo;

static int seg_first(const ql_segment_info *i, void *ctx)
{
	seginfo *g = ctx;

	if (!g->n++) {
		snprintf(g->name, sizeof(g->name), "%s", i->name);
		g->sealed = i->sealed;
		g->indexed = i->indexed;
	}
	return 0;
}

/* A sealed segment queued for compaction has no index entries (readers
 * scan it until its compact form is installed with its own). When the
 * compaction fails, the writer builds them from the .qls instead, so the
 * segment is not left unindexed for the rest of the session. For N = 1,
 * 2, ... the Nth counted operation of ql_maintain fails with EIO until it
 * is the creation of the compaction's .qlc.tmp. */
static void check_compact_failure(void)
{
	ql_options o = opts(QL_COMPACT_INLINE);
	int found = 0;

	for (unsigned long n = 1; n < 200 && !found; n++) {
		char dir[512];
		uint64_t rng = 5;
		answers want, got;
		seginfo g = { { 0 }, 0, 0, 0 };
		ql_store *s;
		t_rec t;
		int rc;

		t_tmpdir(dir, sizeof(dir));
		t_setclock(&g_now, T_EPOCH + 10 * T_HOUR);
		fv_install();
		fv_pause(1);
		if (ql_open(&s, dir, &o))
			abort();
		for (int i = 0; i < PER; i++) {
			t_make(&t, &rng, T_EPOCH + i * 7 * T_SEC, 60);
			if (ql_append(s, &t.r, 1, 0))
				abort();
		}
		if (ql_sync(s) || answer(s, &want))
			abort();
		fv_pause(0);
		fv_arm(n, FV_EIO);
		rc = ql_maintain(s);
		found = fv_hit() && strstr(fv_hit_name(), ".qlc.tmp") != NULL;
		fv_pause(1);
		if (found) {
			if (rc)
				fprintf(stderr, "FAIL: failed compaction: "
					"ql_maintain: %s\n", ql_errmsg(NULL));
			rc = rc ? rc : ql_segments(s, 0, seg_first, &g);
			if (!rc && (g.n != 1 || !g.sealed || !g.indexed ||
				    !strstr(g.name, ".qls"))) {
				fprintf(stderr, "FAIL: failed compaction: %d "
					"segments, the first %s (sealed %d, "
					"indexed %d); want one sealed, indexed "
					".qls\n", g.n, g.name, g.sealed,
					g.indexed);
				rc = -1;
			}
			if (!rc && (answer(s, &got) ||
				    memcmp(&got, &want, sizeof(got)))) {
				fprintf(stderr, "FAIL: failed compaction: "
					"answers differ\n");
				rc = -1;
			}
			if (rc)
				g_fail++;
			else
				g_pass++;
		}
		ql_close(s);
		fv_uninstall();
		t_cleanup(dir);
	}
	if (!found) {
		fprintf(stderr, "FAIL: no counted operation of ql_maintain "
			"created a .qlc.tmp\n");
		g_fail++;
	}
}

int main(void)
{
	answers ref;
	char dir[600];
	unsigned long n, points = 0;
	int done = 0, nseg;

	check_overlap();
	check_compact_failure();
	build_template(&ref);
	snprintf(dir, sizeof(dir), "%s.run", g_tmpl);

	/* without faults: everything compacted, same answers */
	if (copy_tree(dir))
		abort();
	nseg = count_files(dir, ".qls");
	check_store(dir, &ref, QL_COMPACT_INLINE, "compaction");
	if (nseg < NB + 1 || count_files(dir, ".qlc") != nseg ||
	    count_files(dir, ".qls") != 0) {
		fprintf(stderr, "FAIL: compaction of %d segments left %d .qlc "
			"and %d .qls files\n", nseg, count_files(dir, ".qlc"),
			count_files(dir, ".qls"));
		g_fail++;
	}

	/* segments compacted as the build before segment version 3 did
	 * (times as varints): this build reads them, with the same answers,
	 * from the file and from the index */
	{
		char old[700];

		snprintf(old, sizeof(old), "%s.v2", g_tmpl);
		if (copy_tree(old))
			abort();
		qli_compact_version = QLI_SEG_VERSION_COMPACT2;
		check_store(old, &ref, QL_COMPACT_INLINE, "version 2");
		qli_compact_version = QLI_SEG_VERSION_COMPACT;
		if (seg_versions(old) != (1u << 2) ||
		    seg_versions(dir) != (1u << 3)) {
			fprintf(stderr, "FAIL: segment versions: old store "
				"%#x, new store %#x\n", seg_versions(old),
				seg_versions(dir));
			g_fail++;
		}
		check_store(old, &ref, QL_COMPACT_OFF, "version 2, reread");
		t_rmrf(old);
	}

	for (n = 1; !done && n < 100000; n++) {
		for (int torn = 0; torn < 2; torn++) {
			ql_options o = opts(QL_COMPACT_INLINE);
			char what[96];
			ql_store *s;
			int rc;

			if (copy_tree(dir))
				abort();
			fv_install();
			if (fv_track(dir, 0)) {
				perror("fv_track");
				abort();
			}
			rc = ql_open(&s, dir, &o);
			if (rc) {
				fprintf(stderr, "FAIL: open before the cut: "
					"%s\n", ql_errmsg(NULL));
				g_fail++;
				fv_power_cut(0, 0);
				fv_uninstall();
				done = 1;
				break;
			}
			fv_arm(n, FV_CRASH);
			rc = ql_maintain(s);
			ql_close(s);
			if (!fv_hit()) {
				fv_untrack();
				fv_uninstall();
				if (rc) {
					fprintf(stderr, "FAIL: ql_maintain "
						"without a fault: %s\n",
						ql_errmsg(NULL));
					g_fail++;
				}
				done = 1;
				break;
			}
			if (fv_power_cut(torn, n * 2 + (unsigned)torn)) {
				perror("fv_power_cut");
				abort();
			}
			fv_uninstall();
			points += !torn;
			snprintf(what, sizeof(what), "cut before op %lu (%s)",
				 n, torn ? "torn" : "clean");
			check_store(dir, &ref, torn ? QL_COMPACT_INLINE
						    : QL_COMPACT_OFF, what);
		}
	}
	t_cleanup(dir);
	t_cleanup(g_tmpl);
	printf("compact: %lu crash points covered\n", points);
	printf("compact: %u passed, %u failed\n", g_pass, g_fail);
	return g_fail ? 1 : 0;
}
