/* bench.c - qlbench: querylog, SQLite and RocksDB side by side on the
 * seeded workload of WORKLOAD.md, every answer checked.
 *
 *   qlbench [--records N] [--days D] [--seed S] [--out DIR] [--data DIR]
 *           [--engines querylog,sqlite,rocksdb] [--threads 1,2,4]
 *           [--sizes N1,N2] [--quick] ...   (see usage below)
 *
 * How a run goes:
 *
 * 1. The parent generates the stream once and computes the ground truth
 *    of every benchmark query (count and wrapping sum of wl_row_hash of
 *    the matching records; whole stream and retained after expiry) and
 *    the zstd-only physical reference, in the same pass.
 * 2. Each measurement runs in its own forked child, one after the other,
 *    so one engine's memory (page cache of its library, arenas) neither
 *    counts against nor helps another: peak RSS is the child's. The
 *    parent is small when it forks (the generator and zstd contexts are
 *    freed), so the inherited part of the RSS is the same few MB for
 *    every engine; the "generator" row measures that baseline.
 * 3. A child regenerates the stream (a pure function of seed, N, D) into
 *    a reusable batch and times only the engine calls, then the finish
 *    (sync/seal, checkpoint, flush+compaction), then every query, then
 *    expiry and the queries again. Results go to shared memory.
 * 4. The parent prints the table, writes CSV, JSON and an SVG chart.
 *
 * Exit status: 0 if every engine ran and every answer matched the truth,
 * 1 otherwise (a FAIL line says which).
 */
#define _GNU_SOURCE
#include "bench.h"

#include "querylog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

static const char usage[] =
	"usage: qlbench [options]\n"
	"\n"
	"Runs the WORKLOAD.md stream through querylog, SQLite and RocksDB,\n"
	"checks every answer against ground truth, prints a table and writes\n"
	"results.csv, results.json, ingest_rate.csv and ingest.svg to --out.\n"
	"\n"
	"  --records N       records in the stream (default 10M; k/M suffix)\n"
	"  --quick           1M records (unless --records is given)\n"
	"  --days D          span in days (default 35)\n"
	"  --seed S          generator seed (default 1)\n"
	"  --out DIR         where results go (default bench/out)\n"
	"  --data DIR        where the engines' stores go (default OUT/data)\n"
	"  --engines LIST    of querylog,sqlite,rocksdb (default all)\n"
	"  --threads LIST    querylog appending threads (default 1,2,4;\n"
	"                    empty string: skip), each append durable on return\n"
	"                    (QL_SYNC_EVERY_APPEND)\n"
	"  --ql-committer LIST  querylog appending threads under QL_SYNC_MANUAL\n"
	"                    with a commit thread calling ql_sync every 1 ms\n"
	"                    (default 1; empty string: skip)\n"
	"  --sizes LIST      querylog ingest at these sizes (default N/10,N;\n"
	"                    a size equal to N reuses the main run)\n"
	"  --sample-every K  ingest-rate sample interval (default N/100)\n"
	"  --handles P,R     popular and random handle queries (100,100)\n"
	"  --ips K           exact IP queries (200)\n"
	"  --cidrs K         CIDR queries (50)\n"
	"  --windows K       1-hour window queries (20)\n"
	"  --z19 N           records compressed at zstd level 19 for the\n"
	"                    reference (default 200k; ~1 MB/s)\n"
	"  --ql-maintenance MS  querylog background maintenance period\n"
	"                    (default 1000, the library's; -1: none, ql_maintain\n"
	"                    once at the end, every bucket open until then)\n"
	"  --commit STR      library commit, printed with the results\n"
	"  --keep            keep the engines' stores after the run\n"
	"  -h, --help        this text\n";

static const char *const cls_name[QC_N] = {
	"handle-popular", "handle-random", "ip", "cidr", "window-1h",
	"full-scan", "handle-random-after-expiry", "window-1h-after-expiry",
	"full-scan-after-expiry",
};

static void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "qlbench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

/* ---------------------------------------------------------------------- */
/* ground truth                                                            */
/* ---------------------------------------------------------------------- */

static uint64_t fnv(const uint8_t *k, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * UINT64_C(0x100000001b3);
	return h;
}

/* At most a few hundred keys per table of TAB_SLOTS: linear probing
 * never fills it. */
static struct tslot *tab_find(struct tslot *tab, const void *key, size_t n,
			      int create)
{
	size_t i = (size_t)fnv(key, n) & (TAB_SLOTS - 1);

	for (;; i = (i + 1) & (TAB_SLOTS - 1)) {
		struct tslot *s = &tab[i];

		if (!s->len) {
			if (!create)
				return NULL;
			s->len = (uint8_t)n;
			memcpy(s->key, key, n);
			s->head = -1;
			return s;
		}
		if (s->len == n && !memcmp(s->key, key, n))
			return s;
	}
}

static void tab_link(struct truth *t, struct tslot *tab, const void *key,
		     size_t n, int qi)
{
	struct tslot *s = tab_find(tab, key, n, 1);

	t->q[qi].next = s->head;
	s->head = qi;
}

static void cidr_key(uint8_t key[17], const uint8_t ip[16], unsigned plen)
{
	uint8_t hi[16];

	ip_range(ip, plen, key, hi);
	key[16] = (uint8_t)plen;
}

int truth_init(struct truth *t, const wl_gen *g, const struct bconf *bc,
	       int64_t start_us, int64_t end_us)
{
	unsigned k[QC_N] = { 0 };
	uint32_t acc[QMAX];
	uint8_t ips[QMAX][16];
	unsigned plens[QMAX];
	int64_t t0[QMAX];
	unsigned qi = 0;

	memset(t, 0, sizeof(*t));
	k[QC_HPOP] = bc->k_pop;
	k[QC_HRND] = bc->k_rnd;
	k[QC_IP] = bc->k_ip;
	k[QC_CIDR] = bc->k_cidr;
	k[QC_WIN] = bc->k_win;
	k[QC_ALL] = 1;
	for (int c = 0; c < QC_N; c++)
		t->nq += k[c];
	t->q = calloc(t->nq, sizeof(*t->q));
	t->handles = calloc(TAB_SLOTS, sizeof(struct tslot));
	t->ips = calloc(TAB_SLOTS, sizeof(struct tslot));
	t->cidrs = calloc(TAB_SLOTS, sizeof(struct tslot));
	if (!t->q || !t->handles || !t->ips || !t->cidrs)
		return -1;
	/* expiry removes whole days older than 30 days before the end */
	t->cutoff = end_us - 30 * US_PER_DAY;

	for (int c = 0; c < QC_N; c++) {
		t->first[c] = qi;
		t->count[c] = k[c];
		switch (c) {
		case QC_HPOP:
		case QC_HRND:
			if (c == QC_HPOP)
				wl_sample_popular(g, acc, k[c]);
			else
				wl_sample_random(g, acc, k[c]);
			for (unsigned i = 0; i < k[c]; i++, qi++) {
				struct bquery *q = &t->q[qi];

				q->cls = c;
				wl_account_handle(g, acc[i], q->handle);
				tab_link(t, t->handles, q->handle,
					 strlen(q->handle), (int)qi);
			}
			break;
		case QC_IP:
			wl_sample_ips(g, ips, k[c]);
			for (unsigned i = 0; i < k[c]; i++, qi++) {
				t->q[qi].cls = c;
				memcpy(t->q[qi].net, ips[i], 16);
				t->q[qi].plen = 128;
				tab_link(t, t->ips, ips[i], 16, (int)qi);
			}
			break;
		case QC_CIDR:
			wl_sample_cidrs(g, ips, plens, k[c]);
			for (unsigned i = 0; i < k[c]; i++, qi++) {
				uint8_t key[17];
				unsigned j;

				t->q[qi].cls = c;
				memcpy(t->q[qi].net, ips[i], 16);
				t->q[qi].plen = plens[i];
				cidr_key(key, ips[i], plens[i]);
				tab_link(t, t->cidrs, key, 17, (int)qi);
				for (j = 0; j < t->nplens; j++)
					if (t->plens[j] == plens[i])
						break;
				if (j == t->nplens) {
					if (t->nplens == 4)
						return -1;
					t->plens[t->nplens++] = plens[i];
				}
			}
			break;
		case QC_WIN:
			wl_sample_windows(g, t0, k[c]);
			for (unsigned i = 0; i < k[c]; i++, qi++) {
				t->q[qi].cls = c;
				t->q[qi].t0 = t0[i];
				t->q[qi].t1 = t0[i] + US_PER_HOUR;
			}
			break;
		case QC_ALL:
			t->q[qi].cls = c;
			t->q[qi].t0 = start_us;
			t->q[qi].t1 = end_us;
			qi++;
			break;
		default:
			/* the _KEPT classes reuse their source's queries */
			t->first[c] = c == QC_HRND_KEPT ? t->first[QC_HRND] :
				      c == QC_WIN_KEPT ? t->first[QC_WIN] :
				      t->first[QC_ALL];
			t->count[c] = c == QC_HRND_KEPT ? t->count[QC_HRND] :
				      c == QC_WIN_KEPT ? t->count[QC_WIN] : 1;
			break;
		}
	}
	return 0;
}

static void hit(struct bquery *q, uint64_t h, int kept)
{
	q->truth.count++;
	q->truth.sum += h;
	if (kept) {
		q->kept.count++;
		q->kept.sum += h;
	}
}

static void hit_chain(struct truth *t, const struct tslot *s, uint64_t h,
		      int kept)
{
	if (!s)
		return;
	for (int i = s->head; i >= 0; i = t->q[i].next)
		hit(&t->q[i], h, kept);
}

void truth_add(struct truth *t, const wl_record *r)
{
	uint64_t h = wl_row_hash(r);
	int kept = r->ts >= t->cutoff;
	size_t rl = strlen(r->requester), tl = strlen(r->target);
	unsigned w0 = t->first[QC_WIN], w1 = w0 + t->count[QC_WIN];

	t->all.count++;
	t->all.sum += h;
	if (kept) {
		t->kept.count++;
		t->kept.sum += h;
	}
	/* requester or target, each record once: a handle's queries are
	 * hit once even if it is both requester and target */
	hit_chain(t, tab_find(t->handles, r->requester, rl, 0), h, kept);
	if (rl != tl || memcmp(r->requester, r->target, rl))
		hit_chain(t, tab_find(t->handles, r->target, tl, 0), h, kept);
	hit_chain(t, tab_find(t->ips, r->ip, 16, 0), h, kept);
	for (unsigned j = 0; j < t->nplens; j++) {
		uint8_t key[17];

		cidr_key(key, r->ip, t->plens[j]);
		hit_chain(t, tab_find(t->cidrs, key, 17, 0), h, kept);
	}
	for (unsigned i = w0; i < w1; i++)
		if (r->ts >= t->q[i].t0 && r->ts < t->q[i].t1)
			hit(&t->q[i], h, kept);
	hit(&t->q[t->first[QC_ALL]], h, kept);
}

void truth_free(struct truth *t)
{
	free(t->q);
	free(t->handles);
	free(t->ips);
	free(t->cidrs);
	memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------------- */
/* running one engine (in a child process)                                 */
/* ---------------------------------------------------------------------- */

static void span(const struct bconf *bc, struct eng_conf *ec, uint64_t n)
{
	*ec = (struct eng_conf){ 0 }; /* ql_manual_sync 0 unless a run sets it */
	ec->n = n;
	ec->days = bc->days;
	ec->end_us = WL_DEFAULT_END_US;
	ec->start_us = ec->end_us - (int64_t)bc->days * US_PER_DAY;
	ec->now_us = ec->end_us + US_PER_HOUR;
	ec->ql_maint_ms = bc->ql_maint_ms;
}

/* A "Name:  123 kB" line of /proc/self/status; -1 if absent. */
static long proc_status_kb(const char *name)
{
	FILE *f = fopen("/proc/self/status", "r");
	size_t nl = strlen(name);
	char line[256];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, nl) && line[nl] == ':') {
			kb = strtol(line + nl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

static const char *run_label(const struct run *r, char *buf, size_t sz)
{
	if (r->kind == RUN_GEN)
		snprintf(buf, sz, "generator");
	else if (r->kind == RUN_THREADS)
		snprintf(buf, sz, "%s-t%u%s", r->ops->name, r->threads,
			 r->committer ? "c" : "");
	else if (r->kind == RUN_SIZE)
		snprintf(buf, sz, "%s-n%llu", r->ops->name,
			 (unsigned long long)r->n);
	else
		snprintf(buf, sz, "%s", r->ops->name);
	return buf;
}

static void describe(char *buf, size_t sz, const struct bquery *q)
{
	char a[64], b[64];

	switch (q->cls) {
	case QC_HPOP:
	case QC_HRND:
		snprintf(buf, sz, "%s", q->handle);
		break;
	case QC_IP:
	case QC_CIDR:
		ql_ip_format(a, sizeof(a), q->net);
		snprintf(buf, sz, "%s/%u", a, q->plen);
		break;
	default:
		ql_time_format(a, sizeof(a), q->t0);
		ql_time_format(b, sizeof(b), q->t1);
		snprintf(buf, sz, "[%s, %s)", a, b);
		break;
	}
}

static void check(struct run *r, const char *who, int cls, unsigned i,
		  const struct bquery *q, const struct qsum *got,
		  const struct qsum *want)
{
	char d[160], msg[512];

	r->nchecked++;
	if (got->count == want->count && got->sum == want->sum)
		return;
	describe(d, sizeof(d), q);
	snprintf(msg, sizeof(msg), "FAIL %s %s #%u %s: %llu rows, hashsum "
		 "%016llx; truth %llu rows, hashsum %016llx", who,
		 cls_name[cls], i, d, (unsigned long long)got->count,
		 (unsigned long long)got->sum,
		 (unsigned long long)want->count,
		 (unsigned long long)want->sum);
	if (r->nfail < 10)
		fprintf(stderr, "%s\n", msg);
	if (!r->nfail)
		snprintf(r->err, sizeof(r->err), "%s", msg + 5);
	r->nfail++;
}

/* Runs the queries of class src, records them as class dst, checks them
 * against the whole-stream or the retained truth. */
static int run_class(struct run *r, const char *who, struct engine *e,
		     const struct truth *t, int src, int dst, int kept)
{
	const struct engine_ops *ops = r->ops;

	for (unsigned i = 0; i < t->count[src] && i < QMAX; i++) {
		const struct bquery *q = &t->q[t->first[src] + i];
		struct qsum got = { 0, 0 };
		double t0 = now_s(), dt;
		int rc;

		switch (q->cls) {
		case QC_HPOP:
		case QC_HRND:
			rc = ops->q_handle(e, q->handle, &got);
			break;
		case QC_IP:
		case QC_CIDR:
			rc = ops->q_ip(e, q->net, q->plen, &got);
			break;
		default:
			rc = ops->q_window(e, q->t0, q->t1, &got);
			break;
		}
		dt = now_s() - t0;
		if (rc) {
			char d[160];

			describe(d, sizeof(d), q);
			snprintf(r->err, sizeof(r->err), "%s %s #%u %s: %s",
				 who, cls_name[dst], i, d, bench_err());
			return -1;
		}
		r->q_ms[dst][i] = dt * 1e3;
		r->nq[dst] = i + 1;
		r->q_rows[dst] += got.count;
		check(r, who, dst, i, q, &got, kept ? &q->kept : &q->truth);
	}
	return 0;
}

static void sample(struct run *r, uint64_t written)
{
	if (r->nsamples < SMAX) {
		r->s[r->nsamples].records = written;
		r->s[r->nsamples].secs = r->ingest_s;
		r->nsamples++;
	}
}

static int settle(struct run *r, struct engine *e, const char *dir,
		  const char *who)
{
	double t0 = now_s();

	if (r->ops->finish(e)) {
		snprintf(r->err, sizeof(r->err), "%s finish: %s", who,
			 bench_err());
		return -1;
	}
	r->finish_s = now_s() - t0;
	if (dir_usage(dir, &r->disk, &r->disk_alloc)) {
		snprintf(r->err, sizeof(r->err), "%s: %s", who, bench_err());
		return -1;
	}
	if (r->ops->disk_detail)
		r->ops->disk_detail(e, r->n, r->detail, sizeof(r->detail));
	r->hwm_ingest_kb = proc_status_kb("VmHWM");
	fprintf(stderr, "[%s] ingest %.1f s + finish %.1f s: %.0f rec/s, "
		"%.1f B/rec\n", who, r->ingest_s, r->finish_s,
		(double)r->n / (r->ingest_s + r->finish_s),
		(double)r->disk / (double)r->n);
	return 0;
}

/* Generates the stream batch by batch, timing only the engine calls. */
static int feed_engine(struct run *r, const struct bconf *bc,
		       struct engine *e, struct truth *local,
		       const char *who)
{
	wl_config wc = { bc->seed, r->n, bc->days, 0 };
	size_t batch = r->ops->batch;
	wl_record *buf = malloc(batch * sizeof(*buf));
	wl_gen *g = wl_new(&wc);
	uint64_t written = 0, next = bc->sample_every, tenth = r->n / 10;
	int rc = -1;

	if (!buf || !g) {
		snprintf(r->err, sizeof(r->err), "%s: generator: out of "
			 "memory", who);
		goto out;
	}
	sample(r, 0);
	for (;;) {
		double t0 = now_s(), t1;
		size_t k = 0;

		while (k < batch && wl_next(g, &buf[k])) {
			if (local)
				truth_add(local, &buf[k]);
			k++;
		}
		t1 = now_s();
		r->gen_s += t1 - t0;
		if (!k)
			break;
		if (r->ops->ingest(e, buf, k)) {
			snprintf(r->err, sizeof(r->err), "%s ingest at record "
				 "%llu: %s", who, (unsigned long long)written,
				 bench_err());
			goto out;
		}
		r->ingest_s += now_s() - t1;
		written += k;
		if (written >= next || written == r->n) {
			sample(r, written);
			while (next <= written)
				next += bc->sample_every;
		}
		if (tenth && written / tenth != (written - k) / tenth)
			fprintf(stderr, "[%s] %3.0f%% %llu records, %.0f rec/s"
				"\n", who, 100.0 * (double)written /
				(double)r->n, (unsigned long long)written,
				(double)written / r->ingest_s);
	}
	if (written != r->n) {
		snprintf(r->err, sizeof(r->err), "%s: generator gave %llu "
			 "records, expected %llu", who,
			 (unsigned long long)written,
			 (unsigned long long)r->n);
		goto out;
	}
	rc = 0;
out:
	wl_free(g);
	free(buf);
	return rc;
}

static int child_engine(struct run *r, const struct bconf *bc,
			const struct truth *parent_truth, const char *dir)
{
	const struct engine_ops *ops = r->ops;
	struct truth local;
	const struct truth *t = parent_truth;
	struct eng_conf ec;
	struct engine *e = NULL;
	char who[64];
	int rc = -1;

	run_label(r, who, sizeof(who));
	span(bc, &ec, r->n);
	if (r->kind == RUN_SIZE) {
		/* another N is another stream: its own truth, computed in
		 * the ingest pass (untimed) */
		wl_config wc = { bc->seed, r->n, bc->days, 0 };
		wl_gen *g = wl_new(&wc);

		if (!g || truth_init(&local, g, bc, ec.start_us, ec.end_us)) {
			snprintf(r->err, sizeof(r->err), "%s: out of memory",
				 who);
			wl_free(g);
			return -1;
		}
		wl_free(g);
		t = &local;
	}
	if (rm_tree(dir) || ops->open(&e, dir, &ec)) {
		snprintf(r->err, sizeof(r->err), "%s open: %s", who,
			 bench_err());
		goto out;
	}
	if (feed_engine(r, bc, e, r->kind == RUN_SIZE ? &local : NULL, who) ||
	    settle(r, e, dir, who))
		goto out;

	if (r->kind == RUN_SIZE) {
		/* cost of ingest at this size: check the data, no latency
		 * figures */
		if (run_class(r, who, e, t, QC_WIN, QC_WIN, 0) ||
		    run_class(r, who, e, t, QC_ALL, QC_ALL, 0))
			goto out;
		rc = 0;
		goto out;
	}
	fprintf(stderr, "[%s] queries\n", who);
	if (run_class(r, who, e, t, QC_HPOP, QC_HPOP, 0) ||
	    run_class(r, who, e, t, QC_HRND, QC_HRND, 0) ||
	    run_class(r, who, e, t, QC_IP, QC_IP, 0) ||
	    run_class(r, who, e, t, QC_CIDR, QC_CIDR, 0) ||
	    run_class(r, who, e, t, QC_WIN, QC_WIN, 0) ||
	    run_class(r, who, e, t, QC_ALL, QC_ALL, 0))
		goto out;
	/* anonymous memory against mapped files (an mmap'd index counts in
	 * RSS once touched, but the kernel can drop it at will) */
	r->anon_kb = proc_status_kb("RssAnon");
	r->file_kb = proc_status_kb("RssFile");
	if (ops->expire) {
		double t0 = now_s();

		fprintf(stderr, "[%s] expiry\n", who);
		if (ops->expire(e, t->cutoff)) {
			snprintf(r->err, sizeof(r->err), "%s expire: %s", who,
				 bench_err());
			goto out;
		}
		r->expire_s = now_s() - t0;
		r->expire_measured = 1;
		if (dir_usage(dir, &r->disk_after, &r->disk_after_alloc))
			goto out;
		if (run_class(r, who, e, t, QC_HRND, QC_HRND_KEPT, 1) ||
		    run_class(r, who, e, t, QC_WIN, QC_WIN_KEPT, 1) ||
		    run_class(r, who, e, t, QC_ALL, QC_ALL_KEPT, 1))
			goto out;
	} else {
		fprintf(stderr, "[%s] expiry: N/A (no retention API yet)\n",
			who);
	}
	rc = 0;
out:
	if (e)
		ops->close(e);
	if (t == &local)
		truth_free(&local);
	return rc;
}

/* Strings of pre-generated records: chunks that never move. */
struct arena {
	char **chunk;
	size_t n, cap, used;
};

#define ARENA_CHUNK (64u << 20)

static const char *arena_str(struct arena *a, const char *s)
{
	size_t len = strlen(s) + 1;
	char *p;

	if (!a->n || a->used + len > ARENA_CHUNK) {
		if (a->n == a->cap) {
			size_t cap = a->cap ? 2 * a->cap : 16;
			char **c = realloc(a->chunk, cap * sizeof(*c));

			if (!c)
				return NULL;
			a->chunk = c;
			a->cap = cap;
		}
		a->chunk[a->n] = malloc(ARENA_CHUNK);
		if (!a->chunk[a->n])
			return NULL;
		a->n++;
		a->used = 0;
	}
	p = a->chunk[a->n - 1] + a->used;
	memcpy(p, s, len);
	a->used += len;
	return p;
}

/* querylog with several appending threads: the whole stream is generated
 * into memory first, so that generation is not on the clock (with 2 cores
 * a generator thread would take a core from the appenders). */
static int child_threads(struct run *r, const struct bconf *bc,
			 const struct truth *t, const char *dir)
{
	wl_config wc = { bc->seed, r->n, bc->days, 0 };
	struct arena a = { 0 };
	struct eng_conf ec;
	struct engine *e = NULL;
	ql_record *recs = malloc(r->n * sizeof(*recs));
	wl_gen *g = wl_new(&wc);
	wl_record w;
	char who[64];
	double t0;
	int rc = -1;

	run_label(r, who, sizeof(who));
	span(bc, &ec, r->n);
	ec.ql_manual_sync = r->committer;
	if (!recs || !g)
		goto oom;
	t0 = now_s();
	for (uint64_t i = 0; i < r->n; i++) {
		if (!wl_next(g, &w))
			goto oom;
		recs[i].ts = w.ts;
		recs[i].requester = arena_str(&a, w.requester);
		recs[i].target = arena_str(&a, w.target);
		if (!recs[i].requester || !recs[i].target)
			goto oom;
		memcpy(recs[i].ip, w.ip, 16);
		recs[i].service = w.service;
		recs[i].result = w.result;
	}
	r->gen_s = now_s() - t0;
	wl_free(g);
	g = NULL;
	if (rm_tree(dir) || r->ops->open(&e, dir, &ec)) {
		snprintf(r->err, sizeof(r->err), "%s open: %s", who,
			 bench_err());
		goto out;
	}
	t0 = now_s();
	if (eng_querylog_threads(e, recs, r->n, r->threads, r->ops->batch,
				 r->committer)) {
		snprintf(r->err, sizeof(r->err), "%s: %s", who, bench_err());
		goto out;
	}
	r->ingest_s = now_s() - t0;
	sample(r, r->n);
	if (settle(r, e, dir, who) ||
	    run_class(r, who, e, t, QC_WIN, QC_WIN, 0) ||
	    run_class(r, who, e, t, QC_ALL, QC_ALL, 0))
		goto out;
	rc = 0;
	goto out;
oom:
	snprintf(r->err, sizeof(r->err), "%s: pre-generation failed (out of "
		 "memory?)", who);
out:
	if (e)
		r->ops->close(e);
	wl_free(g);
	free(recs);
	for (size_t i = 0; i < a.n; i++)
		free(a.chunk[i]);
	free(a.chunk);
	return rc;
}

/* The generator alone: its rate, and the RSS every child starts from. */
static int child_gen(struct run *r, const struct bconf *bc)
{
	wl_config wc = { bc->seed, r->n, bc->days, 0 };
	wl_gen *g;
	wl_record *buf = malloc(4096 * sizeof(*buf));
	double t0 = now_s();
	uint64_t n = 0;
	size_t k;

	g = wl_new(&wc);
	if (!g || !buf) {
		snprintf(r->err, sizeof(r->err), "generator: out of memory");
		free(buf);
		return -1;
	}
	do {
		for (k = 0; k < 4096 && wl_next(g, &buf[k]); k++)
			;
		n += k;
	} while (k);
	r->gen_s = now_s() - t0;
	wl_free(g);
	free(buf);
	return n == r->n ? 0 : -1;
}

static int child(struct run *r, const struct bconf *bc, const struct truth *t)
{
	char dir[4096], who[64];
	int rc;

	if (r->kind == RUN_GEN) {
		rc = child_gen(r, bc);
	} else {
		snprintf(dir, sizeof(dir), "%s/%s", bc->data,
			 run_label(r, who, sizeof(who)));
		if (r->kind == RUN_THREADS)
			rc = child_threads(r, bc, t, dir);
		else
			rc = child_engine(r, bc, t, dir);
		if (!bc->keep)
			rm_tree(dir);
	}
	r->hwm_kb = proc_status_kb("VmHWM");
	r->done = rc == 0;
	if (rc && r->err[0])
		fprintf(stderr, "qlbench: %s\n", r->err);
	return rc ? 1 : r->nfail ? 2 : 0;
}

/* ---------------------------------------------------------------------- */
/* machine facts                                                           */
/* ---------------------------------------------------------------------- */

static void machine_info(struct machine *m, const char *data)
{
	struct utsname u;
	struct statfs sf;
	time_t now = time(NULL);
	char line[512];
	FILE *f;

	memset(m, 0, sizeof(*m));
	m->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(m->cpu, sizeof(m->cpu), "?");
	f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && p) {
			p += 1 + strspn(p + 1, " \t");
			p[strcspn(p, "\n")] = '\0';
			/* it goes into quoted strings (JSON, gnuplot) */
			for (char *q = p; *q; q++)
				if (*q == '"' || *q == '\\' || *q == '\'')
					*q = ' ';
			snprintf(m->cpu, sizeof(m->cpu), "%s", p);
			break;
		}
	}
	if (f)
		fclose(f);
	f = fopen("/proc/meminfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		long kb;

		if (sscanf(line, "MemTotal: %ld kB", &kb) == 1) {
			m->mem_mb = kb / 1024;
			break;
		}
	}
	if (f)
		fclose(f);
	if (!uname(&u))
		snprintf(m->kernel, sizeof(m->kernel), "%s %s %s", u.sysname,
			 u.release, u.machine);
	strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ",
		 gmtime(&now));
	snprintf(m->fs, sizeof(m->fs), "?");
	if (!statfs(data, &sf)) {
		switch ((unsigned long)sf.f_type) {
		case 0xEF53: snprintf(m->fs, sizeof(m->fs), "ext4"); break;
		case 0x58465342: snprintf(m->fs, sizeof(m->fs), "xfs"); break;
		case 0x9123683E: snprintf(m->fs, sizeof(m->fs), "btrfs"); break;
		case 0x01021994: snprintf(m->fs, sizeof(m->fs), "tmpfs"); break;
		case 0x794c7630: snprintf(m->fs, sizeof(m->fs), "overlay");
			break;
		default:
			snprintf(m->fs, sizeof(m->fs), "0x%lx",
				 (unsigned long)sf.f_type);
		}
	}
	snprintf(m->v_ql, sizeof(m->v_ql), "%s", ql_version());
	snprintf(m->v_sqlite, sizeof(m->v_sqlite), "%s",
		 eng_sqlite.version());
	snprintf(m->v_rocksdb, sizeof(m->v_rocksdb), "%s",
		 eng_rocksdb.version());
	snprintf(m->v_zstd, sizeof(m->v_zstd), "%s", ZSTD_versionString());
}

/* ---------------------------------------------------------------------- */
/* arguments                                                               */
/* ---------------------------------------------------------------------- */

static uint64_t parse_count(const char *s, const char *opt)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0)
		die("bad number for %s", opt);
	if (*end == 'k' || *end == 'K')
		v *= 1e3, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1e6, end++;
	if (*end)
		die("bad number for %s", opt);
	return (uint64_t)(v + 0.5);
}

static unsigned parse_list(const char *s, uint64_t *out, unsigned max,
			   const char *opt)
{
	char buf[256], *save = NULL, *tok;
	unsigned n = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			die("too many values for %s", opt);
		out[n++] = parse_count(tok, opt);
	}
	return n;
}

static const struct engine_ops *find_engine(const char *name)
{
	static const struct engine_ops *const all[] = {
		&eng_querylog, &eng_sqlite, &eng_rocksdb,
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (!strcmp(all[i]->name, name))
			return all[i];
	die("unknown engine %s (querylog, sqlite, rocksdb)", name);
}

static void parse_args(struct bconf *bc, int argc, char **argv)
{
	static char outbuf[4096], databuf[4096];
	const char *engines = "querylog,sqlite,rocksdb";
	const char *threads = "1,2,4", *cthreads = "1", *sizes = NULL;
	int have_n = 0;
	uint64_t v[8];

	memset(bc, 0, sizeof(*bc));
	bc->n = 10000000;
	bc->days = 35;
	bc->seed = 1;
	bc->out = "bench/out";
	bc->k_pop = bc->k_rnd = 100;
	bc->k_ip = 200;
	bc->k_cidr = 50;
	bc->k_win = 20;
	bc->z19_records = 200000;
	bc->ql_maint_ms = 1000; /* the library's default, as a server runs */
	bc->commit = "unknown";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage, stdout);
			exit(0);
		} else if (!strcmp(a, "--quick")) {
			bc->quick = 1;
			continue;
		} else if (!strcmp(a, "--keep")) {
			bc->keep = 1;
			continue;
		}
		if (!val)
			die("%s needs a value (see --help)", a);
		i++;
		if (!strcmp(a, "--records")) {
			bc->n = parse_count(val, a);
			have_n = 1;
		} else if (!strcmp(a, "--days")) {
			bc->days = (unsigned)parse_count(val, a);
		} else if (!strcmp(a, "--seed")) {
			bc->seed = strtoull(val, NULL, 0);
		} else if (!strcmp(a, "--out")) {
			bc->out = val;
		} else if (!strcmp(a, "--data")) {
			bc->data = val;
		} else if (!strcmp(a, "--engines")) {
			engines = val;
		} else if (!strcmp(a, "--threads")) {
			threads = val;
		} else if (!strcmp(a, "--sizes")) {
			sizes = val;
		} else if (!strcmp(a, "--ql-committer")) {
			cthreads = val;
		} else if (!strcmp(a, "--sample-every")) {
			bc->sample_every = parse_count(val, a);
		} else if (!strcmp(a, "--handles")) {
			if (parse_list(val, v, 2, a) != 2)
				die("%s wants P,R", a);
			bc->k_pop = (unsigned)v[0];
			bc->k_rnd = (unsigned)v[1];
		} else if (!strcmp(a, "--ips")) {
			bc->k_ip = (unsigned)parse_count(val, a);
		} else if (!strcmp(a, "--cidrs")) {
			bc->k_cidr = (unsigned)parse_count(val, a);
		} else if (!strcmp(a, "--windows")) {
			bc->k_win = (unsigned)parse_count(val, a);
		} else if (!strcmp(a, "--z19")) {
			bc->z19_records = parse_count(val, a);
		} else if (!strcmp(a, "--ql-maintenance")) {
			bc->ql_maint_ms = atoi(val);
			if (!bc->ql_maint_ms)
				die("--ql-maintenance: -1 (off) or a period in "
				    "ms");
		} else if (!strcmp(a, "--commit")) {
			bc->commit = val;
		} else {
			die("unknown option %s (see --help)", a);
		}
	}
	if (bc->quick && !have_n)
		bc->n = 1000000;
	if (bc->n < 1000 || bc->n > UINT32_MAX)
		die("%s: records must be 1000 .. 2^32-1", "--records");
	if (bc->days < 31 || bc->days > WL_MAX_DAYS)
		die("%s: days must be 31 .. 3660 (expiry keeps 30)", "--days");
	if (bc->k_pop > QMAX || bc->k_rnd > QMAX || bc->k_ip > QMAX ||
	    bc->k_cidr > QMAX || bc->k_win > QMAX)
		die("at most 256 queries per class");
	if (!bc->sample_every)
		bc->sample_every = bc->n / 100 > 10000 ? bc->n / 100 : 10000;
	if (!bc->data) {
		snprintf(databuf, sizeof(databuf), "%s/data", bc->out);
		bc->data = databuf;
	}
	snprintf(outbuf, sizeof(outbuf), "%s", bc->out);
	bc->out = outbuf;

	{
		char buf[256], *save = NULL, *tok;

		snprintf(buf, sizeof(buf), "%s", engines);
		for (tok = strtok_r(buf, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			if (bc->nengines == 3)
				die("too many engines");
			bc->engines[bc->nengines++] = find_engine(tok);
		}
	}
	bc->nthreads = parse_list(threads, v, 8, "--threads");
	for (unsigned i = 0; i < bc->nthreads; i++) {
		if (v[i] < 1 || v[i] > 64)
			die("%s: 1 .. 64 threads", "--threads");
		bc->threads[i] = (unsigned)v[i];
	}
	bc->ncthreads = parse_list(cthreads, v, 8, "--ql-committer");
	for (unsigned i = 0; i < bc->ncthreads; i++) {
		if (v[i] < 1 || v[i] > 64)
			die("%s: 1 .. 64 threads", "--ql-committer");
		bc->cthreads[i] = (unsigned)v[i];
	}
	if (sizes) {
		bc->nsizes = parse_list(sizes, bc->sizes, 8, "--sizes");
	} else {
		bc->sizes[0] = bc->n / 10;
		bc->sizes[1] = bc->n;
		bc->nsizes = 2;
	}
	for (unsigned i = 0; i < bc->nsizes; i++)
		if (bc->sizes[i] < 1000 || bc->sizes[i] > UINT32_MAX)
			die("%s: sizes must be 1000 .. 2^32-1", "--sizes");
}

/* ---------------------------------------------------------------------- */
/* main                                                                    */
/* ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct bconf bc;
	struct machine m;
	struct truth t;
	struct zref z;
	struct run *runs;
	struct eng_conf ec;
	unsigned nruns = 0, max_runs;
	int have_ql = 0, bad = 0;
	wl_config wc;
	wl_gen *g;
	wl_record rec;
	double t0, truth_s;

	parse_args(&bc, argc, argv);
	if (mkdir_p(bc.out) || mkdir_p(bc.data))
		die("%s", bench_err());
	machine_info(&m, bc.data);
	span(&bc, &ec, bc.n);

	/* 1. ground truth and the physical reference, one pass */
	fprintf(stderr, "qlbench: generating %llu records (seed %llu, %u "
		"days): ground truth and zstd reference\n",
		(unsigned long long)bc.n, (unsigned long long)bc.seed,
		bc.days);
	wc = (wl_config){ bc.seed, bc.n, bc.days, 0 };
	g = wl_new(&wc);
	if (!g || truth_init(&t, g, &bc, ec.start_us, ec.end_us) ||
	    zref_init(&z, bc.z19_records))
		die("%s", "out of memory");
	t0 = now_s();
	while (wl_next(g, &rec)) {
		truth_add(&t, &rec);
		zref_add(&z, &rec);
	}
	if (zref_finish(&z))
		die("%s", "zstd failed");
	truth_s = now_s() - t0;
	wl_free(g);
	if (t.all.count != bc.n)
		die("%s", "the generator gave a short stream");
	fprintf(stderr, "qlbench: truth pass %.1f s\n", truth_s);

	/* 2. the runs, each in its own child */
	max_runs = 1 + bc.nengines + bc.nthreads + bc.ncthreads + bc.nsizes;
	runs = mmap(NULL, max_runs * sizeof(*runs), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (runs == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(runs, 0, max_runs * sizeof(*runs));
	runs[nruns++] = (struct run){ .kind = RUN_GEN, .n = bc.n };
	for (unsigned i = 0; i < bc.nengines; i++) {
		runs[nruns++] = (struct run){ .kind = RUN_MAIN, .n = bc.n,
					      .ops = bc.engines[i] };
		have_ql |= bc.engines[i] == &eng_querylog;
	}
	for (unsigned i = 0; have_ql && i < bc.nthreads; i++)
		runs[nruns++] = (struct run){ .kind = RUN_THREADS, .n = bc.n,
					      .ops = &eng_querylog,
					      .threads = bc.threads[i] };
	for (unsigned i = 0; have_ql && i < bc.ncthreads; i++)
		runs[nruns++] = (struct run){ .kind = RUN_THREADS, .n = bc.n,
					      .ops = &eng_querylog,
					      .threads = bc.cthreads[i],
					      .committer = 1 };
	for (unsigned i = 0; have_ql && i < bc.nsizes; i++)
		if (bc.sizes[i] != bc.n)
			runs[nruns++] = (struct run){ .kind = RUN_SIZE,
						      .n = bc.sizes[i],
						      .ops = &eng_querylog };

	for (unsigned i = 0; i < nruns; i++) {
		struct run *r = &runs[i];
		struct rusage ru;
		char who[64];
		pid_t pid;

		run_label(r, who, sizeof(who));
		fprintf(stderr, "qlbench: run %u/%u: %s, %llu records\n",
			i + 1, nruns, who, (unsigned long long)r->n);
		fflush(NULL); /* or the child would flush our buffers too */
		pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0)
			_exit(child(r, &bc, &t));
		if (wait4(pid, &r->status, 0, &ru) < 0)
			die("wait4: %s", strerror(errno));
		r->maxrss_kb = ru.ru_maxrss;
		if (!r->done && !r->err[0] && WIFSIGNALED(r->status))
			snprintf(r->err, sizeof(r->err), "%s: killed by signal "
				 "%d", who, WTERMSIG(r->status));
		else if (!r->done && !r->err[0])
			snprintf(r->err, sizeof(r->err), "%s: exit status %d",
				 who, WEXITSTATUS(r->status));
		if (!r->done || r->nfail)
			bad = 1;
	}

	/* 3. the report */
	report(&bc, &m, &t, &z, runs, nruns, truth_s);
	truth_free(&t);
	munmap(runs, max_runs * sizeof(*runs));
	return bad;
}
