/* qlcompact.c - the CPU cost of compaction alone, per record.
 *
 * The import in qlbench is bound by the CPU of two cores, and compaction
 * (store/compact.c) is the largest part of it; its share there moves with
 * the host's disk and scheduling. This measures it on its own: a store of
 * the WORKLOAD.md stream is written with compaction off (every bucket a
 * sealed .qls segment), then, run after run, a fresh copy of it is opened
 * with QL_COMPACT_INLINE and ql_maintain() compacts every segment on the
 * calling thread, and the writer thread indexes them. Printed per record:
 * the calling thread's CPU time (the compaction itself), the process's
 * (with the writer's index work) and the wall time.
 *
 *   qlcompact [--records N] [--days D] [--runs R] [--level L] [--dir DIR]
 *
 * Also printed: the segment files' bytes per record after the
 * compaction. --level sets the store's compression_level (what the
 * compact segments are written at; default 3).
 *
 * Defaults: 3M records over 35 days, 5 runs, DIR /tmp/qlcompact.<pid>
 * (removed at the end). The .qls blocks are written at the store's
 * default level here; with compaction on they are written at zstd's
 * fastest level, which decodes at about the same speed. */
#define _GNU_SOURCE
#include "querylog.h"
#include "workload.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static _Atomic int64_t g_now;

static int64_t fixed_clock(void *ctx)
{
	(void)ctx;
	return atomic_load(&g_now);
}

static double secs(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double proc_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "qlcompact: %s: %s (%d)\n", what, ql_errmsg(NULL), rc);
	exit(1);
}

static int g_level = 3;

static ql_options options(int compaction, int64_t retention)
{
	ql_options o = QL_OPTIONS_INIT;

	o.compression_level = g_level;
	o.flags = QL_OPEN_CREATE;
	o.sync_mode = QL_SYNC_MANUAL;
	o.maintenance_interval_ms = -1;
	o.retention_us = retention;
	o.clock = fixed_clock;
	o.compaction = compaction;
	return o;
}

/* rm -rf dst, then (with src) cp -a src dst */
static int fresh(const char *dst, const char *src)
{
	char cmd[4400];

	if (src)
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'",
			 dst, src, dst);
	else
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'",
			 dst, dst);
	return system(cmd);
}

int main(int argc, char **argv)
{
	wl_config cfg = { 1, 3000000, 35, 0 };
	unsigned runs = 5;
	char dir[1024] = "", base[1100], copy[1100];

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--records"))
			cfg.n = strtoull(argv[++i], NULL, 10);
		else if (i + 1 < argc && !strcmp(argv[i], "--days"))
			cfg.days = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (i + 1 < argc && !strcmp(argv[i], "--runs"))
			runs = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (i + 1 < argc && !strcmp(argv[i], "--level"))
			g_level = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--dir"))
			snprintf(dir, sizeof(dir), "%s", argv[++i]);
		else {
			fprintf(stderr, "usage: qlcompact [--records N] "
				"[--days D] [--runs R] [--level L] "
				"[--dir DIR]\n");
			return 2;
		}
	}
	if (!dir[0])
		snprintf(dir, sizeof(dir), "/tmp/qlcompact.%ld", (long)getpid());
	snprintf(base, sizeof(base), "%s/base", dir);
	snprintf(copy, sizeof(copy), "%s/copy", dir);
	if (fresh(dir, NULL))
		return 1;

	int64_t end = WL_DEFAULT_END_US, day = INT64_C(86400000000);
	int64_t retention = (int64_t)(cfg.days + 1) * day;
	wl_gen *g = wl_new(&cfg);
	ql_record *q = malloc(4096 * sizeof(*q));
	wl_record *w = malloc(4096 * sizeof(*w));
	ql_options o = options(QL_COMPACT_OFF, retention);
	ql_store *s;
	size_t k, bad;
	int rc;

	if (!g || !q || !w)
		return 1;
	atomic_store(&g_now, end + 3600 * INT64_C(1000000));
	if ((rc = ql_open(&s, base, &o)))
		die("ql_open", rc);
	do {
		for (k = 0; k < 4096 && wl_next(g, &w[k]); k++) {
			q[k].ts = w[k].ts;
			q[k].requester = w[k].requester;
			q[k].target = w[k].target;
			memcpy(q[k].ip, w[k].ip, 16);
			q[k].service = w[k].service;
			q[k].result = w[k].result;
		}
		if (k && (rc = ql_append(s, q, k, &bad)))
			die("ql_append", rc);
	} while (k == 4096);
	if ((rc = ql_sync(s)) || (rc = ql_maintain(s)) || (rc = ql_close(s)))
		die("building the store", rc);
	wl_free(g);
	free(q);
	free(w);

	printf("configuration: %llu records over %u days (WORKLOAD.md, seed "
	       "%llu), default bucket (1 day), compression_level %d; "
	       "QL_COMPACT_INLINE\n", (unsigned long long)cfg.n, cfg.days,
	       (unsigned long long)cfg.seed, g_level);
	printf("%4s %14s %14s %14s %14s\n", "run", "thread us/rec",
	       "process us/rec", "wall us/rec", "segments B/rec");
	for (unsigned r = 1; r <= runs; r++) {
		double t0, p0, w0, t1, p1, w1;
		ql_stats st;

		if (fresh(copy, base))
			return 1;
		o = options(QL_COMPACT_INLINE, retention);
		o.flags = 0;
		if ((rc = ql_open(&s, copy, &o)))
			die("ql_open (copy)", rc);
		t0 = secs(CLOCK_THREAD_CPUTIME_ID);
		p0 = proc_cpu();
		w0 = secs(CLOCK_MONOTONIC);
		if ((rc = ql_maintain(s)))
			die("ql_maintain", rc);
		t1 = secs(CLOCK_THREAD_CPUTIME_ID);
		p1 = proc_cpu();
		w1 = secs(CLOCK_MONOTONIC);
		if ((rc = ql_stat(s, &st)))
			die("ql_stat", rc);
		if (st.records != cfg.n) {
			fprintf(stderr, "qlcompact: %llu records after "
				"compaction, want %llu\n",
				(unsigned long long)st.records,
				(unsigned long long)cfg.n);
			return 1;
		}
		if ((rc = ql_close(s)))
			die("ql_close", rc);
		printf("%4u %14.3f %14.3f %14.3f %14.2f\n", r,
		       (t1 - t0) * 1e6 / (double)cfg.n,
		       (p1 - p0) * 1e6 / (double)cfg.n,
		       (w1 - w0) * 1e6 / (double)cfg.n,
		       (double)st.disk_bytes / (double)cfg.n);
		fflush(stdout);
	}
	snprintf(copy, sizeof(copy), "rm -rf '%s'", dir);
	return system(copy) ? 1 : 0;
}
