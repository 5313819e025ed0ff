/* test_ingest.c - the write path with blocks encoded off the writer
 * thread, for ThreadSanitizer.
 *
 * A frozen memtable is encoded by whichever thread claims it first: the
 * writer, a thread waiting in ql_sync (or in ql_append under
 * QL_SYNC_EVERY_APPEND), or an appending thread when the writer is behind
 * (and while it waits under back-pressure). This drives all of them at
 * once, with small blocks and a small max_pending_bytes so that every
 * path is taken many times:
 *
 *   - appenders under QL_SYNC_MANUAL (batches of 1 to 300 records) and a
 *     commit thread calling ql_sync, then the same under
 *     QL_SYNC_EVERY_APPEND; records spread over several buckets;
 *   - the clock moves, so maintenance seals buckets meanwhile.
 *
 * Then every record appended is there exactly once, and records of one
 * thread with equal times come out in the order they were appended
 * (blocks are written in the order their memtables were frozen, whoever
 * encoded them), before and after a reopen. */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>

#define THREADS 3
#define PER_THREAD 6000

static _Atomic int64_t clock_now;
static atomic_int stop;

static int64_t tclock(void *ctx)
{
	(void)ctx;
	return atomic_load(&clock_now);
}

typedef struct actx {
	ql_store *s;
	unsigned id;
	int err;
	char msg[256];
} actx;

/* Record i of thread id: requester "+1555<id><i>", time from i / 40, so
 * 40 records in a row share a time (and cross block boundaries). */
static void make(t_rec *t, unsigned id, unsigned i, int64_t base)
{
	uint64_t rng = (uint64_t)id * 1000003u + i;

	t_make(t, &rng, base + (int64_t)(i / 40) * 7 * T_MIN +
				(int64_t)(id % 3) * T_HOUR,
	       200);
	snprintf(t->req, sizeof(t->req), "+1555%u%07u", id, i);
}

static int64_t run_base;

static void *appender(void *p)
{
	actx *a = p;
	t_rec *t = calloc(300, sizeof(*t));
	ql_record *r = calloc(300, sizeof(*r));
	uint64_t rng = 77 + a->id;
	unsigned i = 0;

	while (i < PER_THREAD) {
		unsigned k = 1 + (unsigned)(t_rand(&rng) % 300), j;
		int rc;

		if (k > PER_THREAD - i)
			k = PER_THREAD - i;
		for (j = 0; j < k; j++) {
			make(&t[j], a->id, i + j, run_base);
			r[j] = t[j].r;
		}
		rc = ql_append(a->s, r, k, NULL);
		if (rc) {
			a->err = rc;
			snprintf(a->msg, sizeof(a->msg), "%s", ql_errmsg(NULL));
			break;
		}
		i += k;
	}
	free(t);
	free(r);
	return NULL;
}

static void *committer(void *p)
{
	ql_store *s = p;

	while (!atomic_load(&stop)) {
		if (ql_sync(s))
			return (void *)1;
		usleep(200);
	}
	return NULL;
}

static void *clockmover(void *p)
{
	(void)p;
	while (!atomic_load(&stop)) {
		atomic_fetch_add(&clock_now, 10 * T_MIN);
		usleep(2000);
	}
	return NULL;
}

/* Scans the store: every record of every thread once, and per thread
 * equal times in append order. Returns the number of problems. */
static int check(ql_store *s, const char *when)
{
	unsigned char *seen = calloc(THREADS * PER_THREAD, 1);
	int64_t last_ts[THREADS];
	long last_i[THREADS];
	ql_query q = QL_QUERY_INIT;
	const ql_record *r;
	ql_cursor *c;
	uint64_t got = 0;
	int fail = 0, rc;

	for (int k = 0; k < THREADS; k++) {
		last_ts[k] = INT64_MIN;
		last_i[k] = -1;
	}
	rc = ql_cursor_open(&c, s, &q);
	if (rc) {
		fprintf(stderr, "%s: cursor: %s\n", when, ql_errmsg(NULL));
		free(seen);
		return 1;
	}
	while ((rc = ql_cursor_next(c, &r)) == QL_ROW) {
		unsigned id, i;

		if (sscanf(r->requester, "+1555%1u%7u", &id, &i) != 2 ||
		    id >= THREADS || i >= PER_THREAD) {
			fprintf(stderr, "%s: stray record %s\n", when,
				r->requester);
			fail++;
			continue;
		}
		if (seen[id * PER_THREAD + i]++) {
			fprintf(stderr, "%s: record %u/%u twice\n", when, id,
				i);
			fail++;
		}
		if (r->ts == last_ts[id] && (long)i < last_i[id]) {
			fprintf(stderr, "%s: thread %u: record %u after %ld at "
				"the same time\n", when, id, i, last_i[id]);
			fail++;
		}
		last_ts[id] = r->ts;
		last_i[id] = i;
		got++;
	}
	if (rc < 0) {
		fprintf(stderr, "%s: cursor: %s\n", when, ql_errmsg(NULL));
		fail++;
	}
	ql_cursor_close(c);
	if (got != THREADS * PER_THREAD) {
		fprintf(stderr, "%s: %llu records, want %d\n", when,
			(unsigned long long)got, THREADS * PER_THREAD);
		fail++;
	}
	free(seen);
	return fail;
}

static int run(int mode)
{
	pthread_t th[THREADS], ct, mv;
	actx a[THREADS];
	ql_options o = QL_OPTIONS_INIT;
	char dir[256];
	ql_store *s;
	void *ret;
	int fail = 0;

	t_tmpdir(dir, sizeof(dir));
	run_base = T_EPOCH - 2 * T_DAY;
	atomic_store(&clock_now, T_EPOCH);
	atomic_store(&stop, 0);
	o.flags = QL_OPEN_CREATE;
	o.clock = tclock;
	o.sync_mode = mode;
	o.bucket_width_us = 6 * T_HOUR;
	o.block_records = 50;
	o.max_pending_bytes = 64 * 1024;
	o.maintenance_interval_ms = 5;
	o.seal_grace_us = T_MIN;
	o.max_future_skew_us = 30 * T_DAY;
	o.retention_us = 60 * T_DAY;
	if (ql_open(&s, dir, &o)) {
		fprintf(stderr, "open: %s\n", ql_errmsg(NULL));
		return 1;
	}
	for (int i = 0; i < THREADS; i++) {
		a[i] = (actx){ .s = s, .id = (unsigned)i };
		pthread_create(&th[i], NULL, appender, &a[i]);
	}
	pthread_create(&ct, NULL, committer, s);
	pthread_create(&mv, NULL, clockmover, NULL);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		if (a[i].err) {
			fprintf(stderr, "appender %d: %s: %s\n", i,
				ql_strerror(a[i].err), a[i].msg);
			fail++;
		}
	}
	atomic_store(&stop, 1);
	pthread_join(ct, &ret);
	fail += ret != NULL;
	pthread_join(mv, NULL);
	if (ql_sync(s) || ql_maintain(s)) {
		fprintf(stderr, "sync: %s\n", ql_errmsg(NULL));
		fail++;
	}
	fail += check(s, "live");
	if (ql_close(s)) {
		fprintf(stderr, "close: %s\n", ql_errmsg(NULL));
		fail++;
	}
	o.flags = 0;
	if (ql_open(&s, dir, &o)) {
		fprintf(stderr, "reopen: %s\n", ql_errmsg(NULL));
		fail++;
	} else {
		fail += check(s, "reopened");
		ql_close(s);
	}
	t_cleanup(dir);
	printf("ingest (%s): %d problems\n", mode == QL_SYNC_MANUAL ?
	       "manual + commit thread" : "every append", fail);
	return fail;
}

int main(void)
{
	int fail = run(QL_SYNC_MANUAL);

	fail += run(QL_SYNC_EVERY_APPEND);
	return fail ? 1 : 0;
}
