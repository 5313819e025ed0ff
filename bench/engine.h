/* engine.h - the small interface every benchmarked engine implements.
 *
 * The driver (bench.c) feeds each engine the same records from the seeded
 * generator and asks it the same questions; an engine only translates.
 * Answers are not returned row by row to the driver: the engine rebuilds
 * each row it found as a wl_record (the normal form: ts, requester, target,
 * ip16, service, result) and folds it into a qsum, a count and an
 * order-independent sum of wl_row_hash. The driver compares that against
 * the ground truth computed while generating, so a fast wrong answer, a
 * lost row or a duplicated row all fail.
 */
#ifndef QL_BENCH_ENGINE_H
#define QL_BENCH_ENGINE_H

#include "workload.h"

#include <stddef.h>
#include <stdint.h>

#define US_PER_S INT64_C(1000000)
#define US_PER_HOUR (3600 * US_PER_S)
#define US_PER_DAY (86400 * US_PER_S)

struct qsum {
	uint64_t count;
	uint64_t sum; /* wrapping sum of wl_row_hash: order-independent */
};

static inline void qsum_add(struct qsum *q, const wl_record *r)
{
	q->count++;
	q->sum += wl_row_hash(r);
}

/* What an engine is told about the stream when it is opened. */
struct eng_conf {
	uint64_t n;        /* records that will be written */
	unsigned days;     /* span length */
	int64_t start_us;  /* span [start_us, end_us) */
	int64_t end_us;
	int64_t now_us;    /* a fixed "now": end_us + 1 h */
	/* querylog only: maintenance_interval_ms (-1: none, ql_maintain
	 * once at the end) */
	int ql_maint_ms;
	/* querylog only: open under QL_SYNC_MANUAL (a commit thread makes
	 * the appends durable) instead of QL_SYNC_EVERY_APPEND */
	int ql_manual_sync;
};

struct engine; /* each eng_*.c defines its own */

struct engine_ops {
	const char *name;
	/* Records per ingest call: the engine's natural unit of commit. */
	size_t batch;
	/* One line: how the engine is configured (printed with results). */
	const char *config;
	const char *(*version)(void);

	/* Every function returns 0 or -1 with bench_err() set. */
	int (*open)(struct engine **out, const char *dir,
		    const struct eng_conf *c);
	int (*ingest)(struct engine *e, const wl_record *r, size_t n);
	/* Makes everything written durable and settled (sync and seal,
	 * checkpoint, flush and wait for compactions). Timed as part of
	 * ingest. */
	int (*finish)(struct engine *e);
	/* requester == h OR target == h, each record once. */
	int (*q_handle)(struct engine *e, const char *h, struct qsum *out);
	/* ip inside net/plen over the 16 bytes (128 = one address). */
	int (*q_ip)(struct engine *e, const uint8_t net[16], unsigned plen,
		    struct qsum *out);
	/* t0 <= ts < t1. */
	int (*q_window)(struct engine *e, int64_t t0, int64_t t1,
			struct qsum *out);
	/* Removes every record with ts < before (day aligned). NULL when the
	 * engine has no way to do it yet: expiry is then reported as N/A. */
	int (*expire)(struct engine *e, int64_t before);
	/* Optional: one line on where the disk bytes are (e.g. data vs
	 * index), printed under the table. NULL if nothing to say. */
	void (*disk_detail)(struct engine *e, uint64_t n, char *buf,
			    size_t sz);
	void (*close)(struct engine *e);
};

extern const struct engine_ops eng_querylog;
extern const struct engine_ops eng_sqlite;
extern const struct engine_ops eng_rocksdb;

/* querylog only: appends recs[0..n) from nthreads threads at once, thread
 * t taking batches t, t + nthreads, ... of `batch` records, so concurrent
 * appenders interleave in time as live servers would. recs is an array of
 * ql_record (void here so this header needs no querylog.h).
 * committer: the store was opened with ql_manual_sync; a commit thread
 * calls ql_sync() back to back (1 ms apart) while the appenders run, so
 * every record is durable within one commit of its append, and the
 * call returns once the final ql_sync() has made all of them durable. */
int eng_querylog_threads(struct engine *e, const void *recs, size_t n,
			 unsigned nthreads, size_t batch, int committer);

/* ---- helpers shared by the engines and the driver (util.c) ---- */

/* Sets / reads the message of the last failure (one per process: the
 * driver runs each engine in its own child process). */
void bench_seterr(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
const char *bench_err(void);

double now_s(void);

/* The byte range net/plen covers: lo = host bits zero, hi = host bits
 * one. */
void ip_range(const uint8_t net[16], unsigned plen, uint8_t lo[16],
	      uint8_t hi[16]);

/* Copies a string of at most 63 bytes into a wl_record field; -1 if it is
 * longer (an engine returned something the generator cannot have
 * written). */
int put_field(char dst[64], const char *src, size_t len);

/* Sum of the sizes of the regular files under dir: apparent (st_size) and
 * allocated (st_blocks * 512). 0 on success. */
int dir_usage(const char *dir, uint64_t *apparent, uint64_t *allocated);

/* rm -rf dir (no error if it does not exist). */
int rm_tree(const char *dir);
int mkdir_p(const char *dir);

#endif
