/* bench.h - shared between the driver (bench.c), the report (report.c)
 * and the physical reference (zref.c). */
#ifndef QL_BENCH_BENCH_H
#define QL_BENCH_BENCH_H

#include "engine.h"

#include <stdint.h>

/* Query classes. The _KEPT classes re-run a class after expiry against
 * the retained truth. QC_ALL is one whole-span scan: it checks every
 * record the engine holds, once. */
enum {
	QC_HPOP,
	QC_HRND,
	QC_IP,
	QC_CIDR,
	QC_WIN,
	QC_ALL,
	QC_HRND_KEPT,
	QC_WIN_KEPT,
	QC_ALL_KEPT,
	QC_N
};

#define QMAX 256     /* queries per class */
#define SMAX 2048    /* ingest-rate samples per run */

struct bquery {
	int cls;
	char handle[64];
	uint8_t net[16];
	unsigned plen;
	int64_t t0, t1;
	struct qsum truth;  /* over the whole stream */
	struct qsum kept;   /* records with ts >= cutoff */
	int next;           /* next query with the same lookup key */
};

#define TAB_SLOTS 1024

struct tslot {
	uint8_t len;   /* 0 = empty */
	uint8_t key[64];
	int head;      /* first query with this key */
};

struct truth {
	struct bquery *q;
	unsigned nq;
	unsigned first[QC_N], count[QC_N];
	int64_t cutoff;        /* expiry: ts < cutoff goes */
	struct qsum all, kept; /* every record; retained records */
	/* lookup: record field -> queries it answers */
	struct tslot *handles, *ips, *cidrs;
	unsigned plens[4], nplens;
};

struct bconf;
int truth_init(struct truth *t, const wl_gen *g, const struct bconf *bc,
	       int64_t start_us, int64_t end_us);
void truth_add(struct truth *t, const wl_record *r);
void truth_free(struct truth *t);

struct sample {
	uint64_t records;  /* written so far */
	double secs;       /* engine time so far */
};

enum { RUN_GEN, RUN_MAIN, RUN_THREADS, RUN_SIZE };

/* One child process's results, in memory shared with the parent. */
struct run {
	/* set by the parent */
	int kind;
	const struct engine_ops *ops; /* NULL for RUN_GEN */
	uint64_t n;
	unsigned threads;
	/* querylog threads runs: appends under QL_SYNC_MANUAL, made durable
	 * by a commit thread (eng_querylog_threads) */
	int committer;
	/* set by the child */
	int done;          /* reached the end */
	int status;        /* wait status */
	unsigned nchecked, nfail;
	char err[512];     /* engine error, or the first wrong answer */
	double gen_s;      /* generation (not counted in ingest) */
	double ingest_s;   /* engine calls only */
	double finish_s;
	uint64_t disk, disk_alloc;
	char detail[256];  /* ops->disk_detail after ingest */
	unsigned nq[QC_N];
	double q_ms[QC_N][QMAX];
	uint64_t q_rows[QC_N];
	int expire_measured;
	double expire_s;
	uint64_t disk_after, disk_after_alloc;
	long hwm_kb;       /* VmHWM read by the child at its end */
	long hwm_ingest_kb; /* VmHWM after ingest and finish */
	long anon_kb, file_kb; /* RssAnon, RssFile after the queries */
	long maxrss_kb;    /* ru_maxrss from wait4 */
	unsigned nsamples;
	struct sample s[SMAX];
};

struct bconf {
	uint64_t n;
	unsigned days;
	uint64_t seed;
	const char *out;
	const char *data;
	const char *commit;
	const struct engine_ops *engines[3];
	unsigned nengines;
	unsigned threads[8], nthreads;
	unsigned cthreads[8], ncthreads; /* --ql-committer */
	uint64_t sizes[8];
	unsigned nsizes;
	uint64_t sample_every;
	unsigned k_pop, k_rnd, k_ip, k_cidr, k_win;
	uint64_t z19_records;
	int ql_maint_ms;
	int keep;
	int quick;
};

/* The physical reference: the raw records, row-wise, through zstd. */
struct zref {
	void *cc[4];        /* ZSTD_CCtx: packed 3, packed 19, json 3; [3]
			     * (json 19) stays NULL: too slow to be worth it */
	char *stage[2];     /* staged bytes: packed, json */
	size_t slen[2];
	char *obuf;
	size_t ocap;
	uint64_t n, lim19;
	uint64_t raw[2], raw19[2];
	uint64_t z[4];
	double secs;
	int err;
};

int zref_init(struct zref *z, uint64_t lim19);
void zref_add(struct zref *z, const wl_record *r);
int zref_finish(struct zref *z);

/* Machine and version facts printed beside the figures. */
struct machine {
	long ncpu;
	char cpu[128];
	char kernel[256];
	char date[64];
	long mem_mb;
	char fs[32];
	char v_ql[32], v_sqlite[32], v_rocksdb[32], v_zstd[32];
};

void report(const struct bconf *bc, const struct machine *m,
	    const struct truth *t, const struct zref *z,
	    const struct run *runs, unsigned nruns, double truth_s);

#endif
