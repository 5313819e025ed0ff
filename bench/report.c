/* report.c - the results: a table on stdout, results.csv, queries.csv,
 * ingest_rate.csv, results.json and ingest.svg (via gnuplot) in --out.
 *
 * Every figure is computed here from the raw measurements the children
 * left in shared memory, by one table of metric descriptors, so the
 * table, the CSV and the JSON cannot disagree.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)

static const struct run *main_run(const struct run *runs, unsigned n,
				  const char *engine)
{
	for (unsigned i = 0; i < n; i++)
		if (runs[i].kind == RUN_MAIN && runs[i].ops &&
		    !strcmp(runs[i].ops->name, engine))
			return &runs[i];
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the class's latencies, ms; NaN if none. */
static double pct(const struct run *r, int cls, double p)
{
	double v[QMAX];
	unsigned n = r->nq[cls];
	size_t k;

	if (!n)
		return NAN;
	memcpy(v, r->q_ms[cls], n * sizeof(double));
	qsort(v, n, sizeof(double), cmp_double);
	k = (size_t)ceil(p / 100.0 * n);
	return v[k ? k - 1 : 0];
}

static double sum_ms(const struct run *r, int cls)
{
	double s = 0;

	for (unsigned i = 0; i < r->nq[cls]; i++)
		s += r->q_ms[cls][i];
	return s;
}

/* ---- metrics ---- */

static double m_rate(const struct run *r)
{
	return (double)r->n / (r->ingest_s + r->finish_s);
}
static double m_rate_calls(const struct run *r)
{
	return (double)r->n / r->ingest_s;
}
static double m_ingest_s(const struct run *r) { return r->ingest_s; }
static double m_finish_s(const struct run *r) { return r->finish_s; }
static double m_bpr(const struct run *r)
{
	return (double)r->disk / (double)r->n;
}
static double m_bpr_alloc(const struct run *r)
{
	return (double)r->disk_alloc / (double)r->n;
}
static double m_disk_mib(const struct run *r) { return r->disk / MIB; }
static double m_hpop50(const struct run *r) { return pct(r, QC_HPOP, 50); }
static double m_hpop99(const struct run *r) { return pct(r, QC_HPOP, 99); }
static double m_hrnd50(const struct run *r) { return pct(r, QC_HRND, 50); }
static double m_hrnd99(const struct run *r) { return pct(r, QC_HRND, 99); }
static double m_ip50(const struct run *r) { return pct(r, QC_IP, 50); }
static double m_ip99(const struct run *r) { return pct(r, QC_IP, 99); }
static double m_cidr50(const struct run *r) { return pct(r, QC_CIDR, 50); }
static double m_cidr99(const struct run *r) { return pct(r, QC_CIDR, 99); }
static double m_scan(const struct run *r)
{
	double s = sum_ms(r, QC_WIN);

	return r->nq[QC_WIN] && s > 0 ? (double)r->q_rows[QC_WIN] / s * 1e3
				      : NAN;
}
static double m_full(const struct run *r)
{
	double s = sum_ms(r, QC_ALL);

	return r->nq[QC_ALL] && s > 0 ? (double)r->q_rows[QC_ALL] / s * 1e3
				      : NAN;
}
static double m_exp_s(const struct run *r)
{
	return r->expire_measured ? r->expire_s : NAN;
}
static double m_exp_mib(const struct run *r)
{
	return r->expire_measured ? r->disk_after / MIB : NAN;
}
static double m_exp_hrnd50(const struct run *r)
{
	return pct(r, QC_HRND_KEPT, 50);
}
static double m_rss(const struct run *r) { return r->maxrss_kb / 1024.0; }
static double m_rss_ingest(const struct run *r)
{
	return r->hwm_ingest_kb > 0 ? r->hwm_ingest_kb / 1024.0 : NAN;
}

struct metric {
	const char *key;    /* CSV/JSON name */
	const char *label;  /* table */
	const char *unit;
	int better;         /* +1 higher is better, -1 lower */
	int prec;           /* decimals in the table */
	double (*fn)(const struct run *r);
};

static const struct metric metrics[] = {
	{ "ingest_rate", "ingest (incl. finish)", "rec/s", 1, 0, m_rate },
	{ "ingest_rate_calls", "ingest (calls only)", "rec/s", 1, 0,
	  m_rate_calls },
	{ "ingest_s", "ingest time", "s", -1, 1, m_ingest_s },
	{ "finish_s", "finish (sync/flush)", "s", -1, 2, m_finish_s },
	{ "bytes_per_record", "disk per record", "B", -1, 1, m_bpr },
	{ "bytes_per_record_alloc", "disk per record (alloc)", "B", -1, 1,
	  m_bpr_alloc },
	{ "disk_mib", "disk after ingest", "MiB", -1, 1, m_disk_mib },
	{ "handle_popular_p50_ms", "handle popular p50", "ms", -1, 3,
	  m_hpop50 },
	{ "handle_popular_p99_ms", "handle popular p99", "ms", -1, 3,
	  m_hpop99 },
	{ "handle_random_p50_ms", "handle random p50", "ms", -1, 3,
	  m_hrnd50 },
	{ "handle_random_p99_ms", "handle random p99", "ms", -1, 3,
	  m_hrnd99 },
	{ "ip_p50_ms", "IP exact p50", "ms", -1, 3, m_ip50 },
	{ "ip_p99_ms", "IP exact p99", "ms", -1, 3, m_ip99 },
	{ "cidr_p50_ms", "CIDR p50", "ms", -1, 3, m_cidr50 },
	{ "cidr_p99_ms", "CIDR p99", "ms", -1, 3, m_cidr99 },
	{ "scan_1h_rows_per_s", "1-hour scan", "rows/s", 1, 0, m_scan },
	{ "full_scan_rows_per_s", "full-span scan", "rows/s", 1, 0, m_full },
	{ "expire_s", "expire > 30 days", "s", -1, 3, m_exp_s },
	{ "disk_after_expire_mib", "disk after expiry", "MiB", -1, 1,
	  m_exp_mib },
	{ "handle_random_p50_after_expire_ms", "handle random p50 after exp.",
	  "ms", -1, 3, m_exp_hrnd50 },
	{ "peak_rss_ingest_mib", "peak RSS after ingest", "MiB", -1, 1,
	  m_rss_ingest },
	{ "peak_rss_mib", "peak RSS (whole run)", "MiB", -1, 1, m_rss },
};
#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

static void fmt(char *buf, size_t sz, double v, int prec)
{
	if (isnan(v))
		snprintf(buf, sz, "n/a");
	else
		snprintf(buf, sz, "%.*f", prec, v);
}

static const char *run_name(const struct run *r, char *buf, size_t sz)
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

static const char *kind_name(int k)
{
	return k == RUN_GEN ? "generator" : k == RUN_MAIN ? "main" :
	       k == RUN_THREADS ? "threads" : "size";
}

static int run_ok(const struct run *r)
{
	return r->done && !r->nfail;
}

/* Whether a metric applies to a kind of run (the others print n/a). */
static int applies(const struct metric *mt, const struct run *r)
{
	if (!r->done)
		return 0;
	if (r->kind == RUN_GEN)
		return mt->fn == m_rss;
	if (r->kind == RUN_MAIN)
		return 1;
	return mt->fn == m_rate || mt->fn == m_rate_calls ||
	       mt->fn == m_ingest_s || mt->fn == m_finish_s ||
	       mt->fn == m_bpr || mt->fn == m_bpr_alloc ||
	       mt->fn == m_disk_mib || mt->fn == m_rss ||
	       mt->fn == m_rss_ingest;
}

static double value(const struct metric *mt, const struct run *r)
{
	return r && applies(mt, r) ? mt->fn(r) : NAN;
}

/* ---- stdout ---- */

static void print_header(const struct bconf *bc, const struct machine *m,
			 const struct truth *t, double truth_s)
{
	printf("querylog benchmark: %llu records over %u days, seed %llu "
	       "(WORKLOAD.md)\n", (unsigned long long)bc->n, bc->days,
	       (unsigned long long)bc->seed);
	printf("machine:  %ld cores, %s, %ld MiB RAM, %s, data on %s\n",
	       m->ncpu, m->cpu, m->mem_mb, m->kernel, m->fs);
	printf("date:     %s\n", m->date);
	printf("versions: querylog %s (commit %s), SQLite %s, RocksDB %s, "
	       "zstd %s\n", m->v_ql, bc->commit, m->v_sqlite, m->v_rocksdb,
	       m->v_zstd);
	printf("queries:  %u popular + %u random handles (requester or "
	       "target), %u IPs, %u CIDRs, %u 1-hour windows, 1 full scan;"
	       "\n          expiry: ts < end - 30 days (%llu of %llu records "
	       "kept), then %u random handles, %u windows, full scan again\n",
	       bc->k_pop, bc->k_rnd, bc->k_ip, bc->k_cidr, bc->k_win,
	       (unsigned long long)t->kept.count,
	       (unsigned long long)t->all.count, bc->k_rnd, bc->k_win);
	printf("method:   each engine in its own process, one after another; "
	       "generation not timed;\n          ingest rate = N / (engine "
	       "calls + finish); latency includes rebuilding and hashing\n"
	       "          each returned row; disk = apparent size (st_size) "
	       "of every file in the engine's directory;\n          peak RSS = "
	       "ru_maxrss of the engine's process (generator baseline "
	       "below)\n");
	printf("truth:    computed while generating (%.1f s)\n\n", truth_s);
}

static void print_main(const struct bconf *bc, const struct run *runs,
		       unsigned nruns)
{
	const struct run *ql = main_run(runs, nruns, "querylog");
	const struct run *cols[3];
	unsigned nc = 0;
	char buf[64];

	for (unsigned i = 0; i < bc->nengines; i++)
		cols[nc++] = main_run(runs, nruns, bc->engines[i]->name);
	printf("%-30s %-7s", "metric", "unit");
	for (unsigned c = 0; c < nc; c++)
		printf(" %12s", cols[c]->ops->name);
	if (ql)
		for (unsigned c = 0; c < nc; c++)
			if (cols[c] != ql) {
				snprintf(buf, sizeof(buf), "ql/%s",
					 cols[c]->ops->name);
				printf(" %11s", buf);
			}
	printf("\n");
	for (size_t k = 0; k < NMETRICS; k++) {
		const struct metric *mt = &metrics[k];

		printf("%-30s %-7s", mt->label, mt->unit);
		for (unsigned c = 0; c < nc; c++) {
			fmt(buf, sizeof(buf), value(mt, cols[c]), mt->prec);
			printf(" %12s", buf);
		}
		for (unsigned c = 0; ql && c < nc; c++) {
			double a, b;

			if (cols[c] == ql)
				continue;
			a = value(mt, ql);
			b = value(mt, cols[c]);
			if (isnan(a) || isnan(b) || b == 0)
				snprintf(buf, sizeof(buf), "n/a");
			else
				snprintf(buf, sizeof(buf), "%.3gx", a / b);
			printf(" %11s", buf);
		}
		printf("\n");
	}
	printf("(ratios are querylog / peer; for rec/s and rows/s higher is "
	       "better, for the rest lower)\n");
	for (unsigned c = 0; c < nc; c++) {
		const struct run *r = cols[c];

		printf("  %-9s rows returned: popular %llu, random %llu, ip "
		       "%llu, cidr %llu, windows %llu\n", r->ops->name,
		       (unsigned long long)r->q_rows[QC_HPOP],
		       (unsigned long long)r->q_rows[QC_HRND],
		       (unsigned long long)r->q_rows[QC_IP],
		       (unsigned long long)r->q_rows[QC_CIDR],
		       (unsigned long long)r->q_rows[QC_WIN]);
		if (r->detail[0])
			printf("  %-9s disk: %s\n", r->ops->name, r->detail);
		if (r->anon_kb >= 0 && r->file_kb >= 0 && r->done)
			printf("  %-9s RSS after the queries: %.1f MiB "
			       "anonymous, %.1f MiB mapped files\n",
			       r->ops->name, r->anon_kb / 1024.0,
			       r->file_kb / 1024.0);
		if (r->done && !r->expire_measured)
			printf("  %-9s expiry: N/A (no retention API in "
			       "querylog.h yet)\n", r->ops->name);
	}
	printf("\nconfiguration:\n");
	for (unsigned c = 0; c < nc; c++)
		printf("  %-9s %s\n", cols[c]->ops->name, cols[c]->ops->config);
	if (ql && bc->ql_maint_ms < 0)
		printf("  %-9s no maintenance during the load: every bucket "
		       "stays open until the end\n", "");
	else if (ql)
		printf("  %-9s background maintenance every %d ms: buckets "
		       "sealed during the load (idle, or an hour behind "
		       "the records)\n", "", bc->ql_maint_ms);
}

static void print_reference(const struct bconf *bc, const struct zref *z,
			    const struct run *runs, unsigned nruns)
{
	const struct run *ql = main_run(runs, nruns, "querylog");
	double n = (double)bc->n, n19 = (double)(bc->n < z->lim19 ? bc->n
							       : z->lim19);

	printf("\nphysical reference (raw records row-wise, zstd alone, one "
	       "stream):\n");
	printf("  packed binary: raw %.1f B/rec, zstd-3 %.1f B/rec",
	       (double)z->raw[0] / n, (double)z->z[0] / n);
	if (n19 > 0)
		printf(", zstd-19 %.1f B/rec (first %.0f records)",
		       (double)z->z[1] / n19, n19);
	printf("\n");
	printf("  NDJSON:        raw %.1f B/rec, zstd-3 %.1f B/rec\n",
	       (double)z->raw[1] / n, (double)z->z[2] / n);
	if (ql && ql->done && n19 > 0)
		printf("  querylog:      %.1f B/rec on disk = %.2fx packed "
		       "zstd-3, %.2fx packed zstd-19\n", m_bpr(ql),
		       m_bpr(ql) / ((double)z->z[0] / n),
		       m_bpr(ql) / ((double)z->z[1] / n19));
}

static void print_scaling(const struct bconf *bc, const struct run *runs,
			  unsigned nruns)
{
	const struct run *ql = main_run(runs, nruns, "querylog");
	const struct run *t1 = NULL;
	char a[32], b[32];

	if (!ql)
		return;
	for (unsigned i = 0; i < nruns; i++)
		if (runs[i].kind == RUN_THREADS && runs[i].threads == 1 &&
		    !runs[i].committer)
			t1 = &runs[i];
	if (bc->nthreads || bc->ncthreads) {
		printf("\nquerylog ingest with concurrent appenders (one "
		       "store, group commit, %zu-record appends,\nstream "
		       "pre-generated in memory, batches dealt round-robin to "
		       "the threads;\nN: every ql_append returns once durable "
		       "(QL_SYNC_EVERY_APPEND);\nN+c: QL_SYNC_MANUAL appends, "
		       "a commit thread calls ql_sync() every 1 ms, the rate "
		       "counts\nuntil the final ql_sync() returns):\n",
		       eng_querylog.batch);
		printf("  %-8s %12s %10s %10s\n", "threads", "rec/s",
		       "vs 1", "B/rec");
		for (unsigned i = 0; i < nruns; i++) {
			const struct run *r = &runs[i];

			if (r->kind != RUN_THREADS)
				continue;
			fmt(a, sizeof(a), value(&metrics[0], r), 0);
			if (t1 && t1->done && r->done)
				snprintf(b, sizeof(b), "%.2fx",
					 m_rate(r) / m_rate(t1));
			else
				snprintf(b, sizeof(b), "n/a");
			char tn[16];

			snprintf(tn, sizeof(tn), "%u%s", r->threads,
				 r->committer ? "+c" : "");
			printf("  %-8s %12s %10s %10.1f%s\n", tn, a, b,
			       r->done ? m_bpr(r) : NAN,
			       r->done ? "" : "  FAILED");
		}
	}
	if (bc->nsizes) {
		printf("\nquerylog ingest by stream size (each a full stream "
		       "of that size over %u days):\n", bc->days);
		printf("  %-12s %12s %10s %10s %12s\n", "records", "rec/s",
		       "ingest s", "B/rec", "RSS MiB (*)");
		for (unsigned s = 0; s < bc->nsizes; s++) {
			const struct run *r = NULL;

			for (unsigned i = 0; i < nruns; i++)
				if ((runs[i].kind == RUN_SIZE ||
				     runs[i].kind == RUN_MAIN) &&
				    runs[i].ops == &eng_querylog &&
				    runs[i].n == bc->sizes[s])
					r = &runs[i];
			if (!r || !r->done) {
				printf("  %-12llu FAILED\n",
				       (unsigned long long)bc->sizes[s]);
				continue;
			}
			printf("  %-12llu %12.0f %10.1f %10.1f %12.1f\n",
			       (unsigned long long)r->n, m_rate(r),
			       r->ingest_s + r->finish_s, m_bpr(r),
			       m_rss_ingest(r));
		}
		printf("  (*) peak RSS once ingest and finish are done\n");
	}
}

static void print_checks(const struct run *runs, unsigned nruns)
{
	char name[64];

	printf("\nverification against ground truth:\n");
	for (unsigned i = 0; i < nruns; i++) {
		const struct run *r = &runs[i];

		run_name(r, name, sizeof(name));
		if (r->kind == RUN_GEN) {
			printf("  %-20s %.0f rec/s generation, peak RSS "
			       "%.1f MiB (baseline of every run)\n", name,
			       (double)r->n / r->gen_s, m_rss(r));
			continue;
		}
		if (!r->done)
			printf("FAIL %-15s did not finish: %s\n", name, r->err);
		else if (r->nfail)
			printf("FAIL %-15s %u of %u answers wrong; first: %s\n",
			       name, r->nfail, r->nchecked, r->err);
		else
			printf("  %-20s OK, %u answers match\n", name,
			       r->nchecked);
	}
}

/* ---- files ---- */

static FILE *open_out(const struct bconf *bc, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", bc->out, name);
	f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "qlbench: %s: %s\n", path, strerror(errno));
	return f;
}

static void write_csv(const struct bconf *bc, const struct run *runs,
		      unsigned nruns, const struct zref *z)
{
	FILE *f = open_out(bc, "results.csv");
	uint64_t n19 = bc->n < z->lim19 ? bc->n : z->lim19;
	char name[64];

	if (!f)
		return;
	fprintf(f, "run,engine,kind,records,threads,ok,metric,unit,value\n");
	for (unsigned i = 0; i < nruns; i++) {
		const struct run *r = &runs[i];

		run_name(r, name, sizeof(name));
		for (size_t k = 0; k < NMETRICS; k++) {
			double v = value(&metrics[k], r);

			if (isnan(v))
				continue;
			fprintf(f, "%s,%s,%s,%llu,%u,%d,%s,%s,%.6g\n", name,
				r->ops ? r->ops->name : "generator",
				kind_name(r->kind), (unsigned long long)r->n,
				r->threads, run_ok(r), metrics[k].key,
				metrics[k].unit, v);
		}
	}
	fprintf(f, "zstd-reference,zstd,reference,%llu,0,1,packed_zstd3_bpr,"
		"B,%.6g\n", (unsigned long long)bc->n,
		(double)z->z[0] / (double)bc->n);
	if (n19)
		fprintf(f, "zstd-reference,zstd,reference,%llu,0,1,"
			"packed_zstd19_bpr,B,%.6g\n", (unsigned long long)n19,
			(double)z->z[1] / (double)n19);
	fprintf(f, "zstd-reference,zstd,reference,%llu,0,1,ndjson_zstd3_bpr,"
		"B,%.6g\n", (unsigned long long)bc->n,
		(double)z->z[2] / (double)bc->n);
	fclose(f);

	f = open_out(bc, "queries.csv");
	if (!f)
		return;
	fprintf(f, "engine,class,index,ms\n");
	for (unsigned i = 0; i < nruns; i++) {
		static const char *const cn[QC_N] = {
			"handle-popular", "handle-random", "ip", "cidr",
			"window-1h", "full-scan", "handle-random-after-expiry",
			"window-1h-after-expiry", "full-scan-after-expiry",
		};
		const struct run *r = &runs[i];

		if (r->kind != RUN_MAIN)
			continue;
		for (int c = 0; c < QC_N; c++)
			for (unsigned q = 0; q < r->nq[c]; q++)
				fprintf(f, "%s,%s,%u,%.6f\n", r->ops->name,
					cn[c], q, r->q_ms[c][q]);
	}
	fclose(f);

	f = open_out(bc, "ingest_rate.csv");
	if (!f)
		return;
	fprintf(f, "run,records_written,interval_rate,cumulative_rate\n");
	for (unsigned i = 0; i < nruns; i++) {
		const struct run *r = &runs[i];

		if (r->kind != RUN_MAIN && r->kind != RUN_SIZE)
			continue;
		run_name(r, name, sizeof(name));
		for (unsigned s = 1; s < r->nsamples; s++) {
			double dr = (double)(r->s[s].records -
					     r->s[s - 1].records);
			double dt = r->s[s].secs - r->s[s - 1].secs;

			if (dt <= 0)
				continue;
			fprintf(f, "%s,%llu,%.1f,%.1f\n", name,
				(unsigned long long)r->s[s].records, dr / dt,
				(double)r->s[s].records / r->s[s].secs);
		}
	}
	fclose(f);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static void write_json(const struct bconf *bc, const struct machine *m,
		       const struct truth *t, const struct zref *z,
		       const struct run *runs, unsigned nruns)
{
	FILE *f = open_out(bc, "results.json");
	const struct run *ql = main_run(runs, nruns, "querylog");
	double n19 = (double)(bc->n < z->lim19 ? bc->n : z->lim19);
	char name[64];

	if (!f)
		return;
	fprintf(f, "{\n  \"config\": {\"records\": %llu, \"days\": %u, "
		"\"seed\": %llu, \"handles_popular\": %u, \"handles_random\": "
		"%u, \"ips\": %u, \"cidrs\": %u, \"windows\": %u, "
		"\"expiry_cutoff_us\": %lld, \"kept_records\": %llu, "
		"\"ql_maintenance_ms\": %d},\n",
		(unsigned long long)bc->n, bc->days,
		(unsigned long long)bc->seed, bc->k_pop, bc->k_rnd, bc->k_ip,
		bc->k_cidr, bc->k_win, (long long)t->cutoff,
		(unsigned long long)t->kept.count, bc->ql_maint_ms);
	fprintf(f, "  \"machine\": {\"cores\": %ld, \"cpu\": ", m->ncpu);
	json_str(f, m->cpu);
	fprintf(f, ", \"mem_mib\": %ld, \"kernel\": ", m->mem_mb);
	json_str(f, m->kernel);
	fprintf(f, ", \"fs\": ");
	json_str(f, m->fs);
	fprintf(f, ", \"date\": ");
	json_str(f, m->date);
	fprintf(f, "},\n  \"versions\": {\"querylog\": ");
	json_str(f, m->v_ql);
	fprintf(f, ", \"commit\": ");
	json_str(f, bc->commit);
	fprintf(f, ", \"sqlite\": ");
	json_str(f, m->v_sqlite);
	fprintf(f, ", \"rocksdb\": ");
	json_str(f, m->v_rocksdb);
	fprintf(f, ", \"zstd\": ");
	json_str(f, m->v_zstd);
	fprintf(f, "},\n  \"reference\": {\"packed_raw_bpr\": ");
	json_num(f, (double)z->raw[0] / (double)bc->n);
	fprintf(f, ", \"packed_zstd3_bpr\": ");
	json_num(f, (double)z->z[0] / (double)bc->n);
	fprintf(f, ", \"packed_zstd19_bpr\": ");
	json_num(f, (double)z->z[1] / n19);
	fprintf(f, ", \"ndjson_raw_bpr\": ");
	json_num(f, (double)z->raw[1] / (double)bc->n);
	fprintf(f, ", \"ndjson_zstd3_bpr\": ");
	json_num(f, (double)z->z[2] / (double)bc->n);
	fprintf(f, ", \"zstd19_records\": %.0f},\n  \"runs\": [\n", n19);
	for (unsigned i = 0; i < nruns; i++) {
		const struct run *r = &runs[i];
		int first = 1;

		run_name(r, name, sizeof(name));
		fprintf(f, "    {\"run\": ");
		json_str(f, name);
		fprintf(f, ", \"engine\": ");
		json_str(f, r->ops ? r->ops->name : "generator");
		fprintf(f, ", \"kind\": \"%s\", \"records\": %llu, "
			"\"threads\": %u, \"ok\": %s, \"checked\": %u, "
			"\"wrong\": %u, \"error\": ", kind_name(r->kind),
			(unsigned long long)r->n, r->threads,
			run_ok(r) ? "true" : "false", r->nchecked, r->nfail);
		json_str(f, r->err);
		fprintf(f, ", \"config\": ");
		json_str(f, r->ops ? r->ops->config : "");
		fprintf(f, ", \"expiry_measured\": %s,\n     \"metrics\": {",
			r->expire_measured ? "true" : "false");
		for (size_t k = 0; k < NMETRICS; k++) {
			double v = value(&metrics[k], r);

			if (isnan(v))
				continue;
			fprintf(f, "%s\"%s\": ", first ? "" : ", ",
				metrics[k].key);
			json_num(f, v);
			first = 0;
		}
		fprintf(f, "},\n     \"ingest_samples\": [");
		for (unsigned s = 0; s < r->nsamples; s++)
			fprintf(f, "%s[%llu, %.6f]", s ? ", " : "",
				(unsigned long long)r->s[s].records,
				r->s[s].secs);
		fprintf(f, "]}%s\n", i + 1 < nruns ? "," : "");
	}
	fprintf(f, "  ],\n  \"ratios_querylog_over\": {");
	for (unsigned c = 0, first = 1; ql && c < bc->nengines; c++) {
		const struct run *p = main_run(runs, nruns,
					       bc->engines[c]->name);
		int f2 = 1;

		if (p == ql || !p)
			continue;
		fprintf(f, "%s\"%s\": {", first ? "" : ", ", p->ops->name);
		first = 0;
		for (size_t k = 0; k < NMETRICS; k++) {
			double a = value(&metrics[k], ql);
			double b = value(&metrics[k], p);

			if (isnan(a) || isnan(b) || b == 0)
				continue;
			fprintf(f, "%s\"%s\": ", f2 ? "" : ", ",
				metrics[k].key);
			json_num(f, a / b);
			f2 = 0;
		}
		fprintf(f, "}");
	}
	fprintf(f, "}\n}\n");
	fclose(f);
}

/* The chart: a gnuplot script with the data inline, run in --out. */
static int write_chart(const struct bconf *bc, const struct machine *m,
		       const struct run *runs, unsigned nruns)
{
	FILE *f = open_out(bc, "ingest.gp");
	unsigned nplot = 0;
	pid_t pid;
	int st;

	if (!f)
		return -1;
	fprintf(f, "# ingest rate against records written, per engine "
		"(written by qlbench)\n");
	for (unsigned i = 0; i < nruns; i++) {
		const struct run *r = &runs[i];

		if (r->kind != RUN_MAIN || !r->done)
			continue;
		fprintf(f, "$%s << EOD\n", r->ops->name);
		for (unsigned s = 1; s < r->nsamples; s++) {
			double dt = r->s[s].secs - r->s[s - 1].secs;

			if (dt > 0)
				fprintf(f, "%.6f %.1f\n",
					(double)r->s[s].records / 1e6,
					(double)(r->s[s].records -
						 r->s[s - 1].records) / dt);
		}
		fprintf(f, "EOD\n");
	}
	fprintf(f, "set terminal svg size 900,540 dynamic font 'sans,12'\n"
		"set output 'ingest.svg'\n"
		"set title \"ingest rate vs records written: %llu records, "
		"%u days, seed %llu\\n%ld cores, %s\"\n"
		"set xlabel 'records written (millions)'\n"
		"set ylabel 'records/s (interval of %llu records)'\n"
		"set logscale y\nset grid\nset key outside right top\n"
		"set format y '%%.0s%%c'\n",
		(unsigned long long)bc->n, bc->days,
		(unsigned long long)bc->seed, m->ncpu, m->cpu,
		(unsigned long long)bc->sample_every);
	fprintf(f, "plot ");
	for (unsigned i = 0; i < nruns; i++) {
		const struct run *r = &runs[i];

		if (r->kind != RUN_MAIN || !r->done)
			continue;
		fprintf(f, "%s$%s using 1:2 with lines lw 2 title '%s'",
			nplot++ ? ", \\\n     " : "", r->ops->name,
			r->ops->name);
	}
	fprintf(f, "\n");
	fclose(f);
	if (!nplot)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (chdir(bc->out) < 0)
			_exit(127);
		execlp("gnuplot", "gnuplot", "ingest.gp", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		fprintf(stderr, "qlbench: gnuplot failed or missing: the chart"
			" script is %s/ingest.gp\n", bc->out);
		return -1;
	}
	return 0;
}

void report(const struct bconf *bc, const struct machine *m,
	    const struct truth *t, const struct zref *z,
	    const struct run *runs, unsigned nruns, double truth_s)
{
	int chart;

	write_csv(bc, runs, nruns, z);
	write_json(bc, m, t, z, runs, nruns);
	chart = write_chart(bc, m, runs, nruns);

	print_header(bc, m, t, truth_s);
	print_main(bc, runs, nruns);
	print_reference(bc, z, runs, nruns);
	print_scaling(bc, runs, nruns);
	print_checks(runs, nruns);
	printf("\nfiles: %s/results.csv, queries.csv, ingest_rate.csv, "
	       "results.json, %s\n", bc->out,
	       chart ? "ingest.gp (gnuplot failed: no SVG)" :
		       "ingest.svg (ingest.gp)");
	fflush(stdout);
}
