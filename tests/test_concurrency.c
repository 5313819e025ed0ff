/* test_concurrency.c - everything at once, for ThreadSanitizer.
 *
 * Four threads append (group commit) while the clock moves a day at a
 * time; a fifth thread seals and expires; a sixth opens cursors (scans and
 * handle lookups) in the same process; and a forked reader process scans
 * and verifies through its own read-only handle. At the end every record
 * younger than the retention period must be there exactly once. Run under
 * TSan in CI (scripts/test.sh --tsan); in the normal suite it checks the
 * same invariants without the race detector. */
#include "testutil.h"

#include <pthread.h>
#include <unistd.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define THREADS 4
#define PER_THREAD 3000
#define DAYS 40

static _Atomic int64_t clock_now;
static atomic_int stop;

static int64_t tclock(void *ctx)
{
	(void)ctx;
	return atomic_load(&clock_now);
}

typedef struct wctx {
	ql_store *s;
	unsigned id;
	int64_t *ts;
	size_t n;
	int err;
} wctx;

static void *writer(void *p)
{
	wctx *w = p;
	uint64_t rng = 1000 + w->id;
	t_rec t;

	for (unsigned i = 0; i < PER_THREAD; i++) {
		int64_t now = atomic_load(&clock_now);
		int64_t ts = now - (int64_t)(t_rand(&rng) % (6 * T_HOUR));
		int rc;

		t_make(&t, &rng, ts, 300);
		snprintf(t.req, sizeof(t.req), "+1555%u%07u", w->id, i);
		rc = ql_append(w->s, &t.r, 1, NULL);
		if (rc == QL_ERANGE)
			continue; /* the clock moved past it: refused */
		if (rc) {
			w->err = rc;
			return NULL;
		}
		w->ts[w->n++] = ts;
		if (i % 500 == 0) {
			/* the day turns */
			atomic_fetch_add(&clock_now, T_DAY / 8);
		}
	}
	return NULL;
}

static void *sweeper(void *p)
{
	ql_store *s = p;

	while (!atomic_load(&stop)) {
		int rc = ql_maintain(s);

		if (!rc)
			rc = ql_expire(s, 0, "test", NULL, NULL);
		if (rc) {
			fprintf(stderr, "sweeper: %s: %s\n", ql_strerror(rc),
				ql_errmsg(NULL));
			return (void *)1;
		}
		usleep(2000);
	}
	return NULL;
}

static void *reader(void *p)
{
	ql_store *s = p;
	uint64_t rng = 77;

	while (!atomic_load(&stop)) {
		ql_query q = QL_QUERY_INIT;
		const ql_record *r;
		ql_cursor *c;
		char h[32];
		int rc;

		if (t_rand(&rng) % 2) {
			snprintf(h, sizeof(h), "+1415555%04u",
				 (unsigned)(t_rand(&rng) % 300));
			q.match = QL_MATCH_HANDLE;
			q.handle = h;
		}
		if ((rc = ql_cursor_open(&c, s, &q))) {
			fprintf(stderr, "reader open: %s: %s\n",
				ql_strerror(rc), ql_errmsg(NULL));
			return (void *)1;
		}
		while ((rc = ql_cursor_next(c, &r)) == QL_ROW)
			;
		ql_cursor_close(c);
		/* a sweep may delete a segment under the cursor: that must be
		 * the clean QL_ENOTFOUND, nothing else */
		if (rc != QL_DONE && rc != QL_ENOTFOUND) {
			fprintf(stderr, "reader: %s: %s\n", ql_strerror(rc),
				ql_errmsg(NULL));
			return (void *)1;
		}
	}
	return NULL;
}

/* A separate process scanning through its own read-only handle. It is
 * forked before the writer opens the store (a fork after the store's
 * threads started could inherit a lock one of them held: glibc's malloc
 * is safe across fork, ASan's allocator is not) and waits on go for the
 * store to exist. */
static void reader_process(const char *dir, int go)
{
	ql_options o = QL_OPTIONS_INIT;
	ql_store *s;
	char b;

	if (read(go, &b, 1) != 1)
		_exit(5);

	o.flags = QL_OPEN_READONLY;
	o.clock = tclock;
	o.maintenance_interval_ms = -1;
	/* (the clock stays where the fork left it: everything written later
	 * is younger, so all of it is visible) */
	for (int i = 0; i < 50; i++) {
		ql_query q = QL_QUERY_INIT;
		const ql_record *r;
		ql_cursor *c;
		int rc;

		if (ql_open(&s, dir, &o))
			_exit(2);
		if (ql_cursor_open(&c, s, &q))
			_exit(3);
		while ((rc = ql_cursor_next(c, &r)) == QL_ROW)
			;
		ql_cursor_close(c);
		ql_close(s);
		if (rc != QL_DONE && rc != QL_ENOTFOUND)
			_exit(4);
		usleep(5000);
	}
	_exit(0);
}

int main(void)
{
	pthread_t th[THREADS], sw, rd;
	wctx w[THREADS];
	ql_options o = QL_OPTIONS_INIT;
	char dir[256];
	ql_store *s;
	void *ret;
	pid_t pid;
	int status, fail = 0, go[2];
	uint64_t want = 0, got = 0;

	t_tmpdir(dir, sizeof(dir));
	atomic_store(&clock_now, T_EPOCH);
	o.flags = QL_OPEN_CREATE;
	o.clock = tclock;
	o.sync_mode = QL_SYNC_EVERY_APPEND;
	o.bucket_width_us = 6 * T_HOUR;
	o.block_records = 64;
	o.retention_us = 3 * T_DAY;
	if (pipe(go))
		return 1;
	pid = fork();
	if (pid == 0)
		reader_process(dir, go[0]);
	if (ql_open(&s, dir, &o)) {
		fprintf(stderr, "open: %s\n", ql_errmsg(NULL));
		return 1;
	}
	if (write(go[1], "g", 1) != 1)
		return 1;
	for (int i = 0; i < THREADS; i++) {
		w[i] = (wctx){ s, (unsigned)i, calloc(PER_THREAD, 8), 0, 0 };
		pthread_create(&th[i], NULL, writer, &w[i]);
	}
	pthread_create(&sw, NULL, sweeper, s);
	pthread_create(&rd, NULL, reader, s);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		if (w[i].err) {
			fprintf(stderr, "writer %d: %s\n", i,
				ql_strerror(w[i].err));
			fail++;
		}
	}
	atomic_store(&stop, 1);
	pthread_join(sw, &ret);
	fail += ret != NULL;
	pthread_join(rd, &ret);
	fail += ret != NULL;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "reader process failed (%d)\n", status);
		fail++;
	}
	/* every record younger than retention is there, once */
	{
		int64_t now = atomic_load(&clock_now);
		ql_query q = QL_QUERY_INIT;
		const ql_record *r;
		ql_cursor *c;

		for (int i = 0; i < THREADS; i++)
			for (size_t k = 0; k < w[i].n; k++)
				want += w[i].ts[k] >= now - o.retention_us;
		q.since = now - o.retention_us;
		if (ql_cursor_open(&c, s, &q) == 0) {
			while (ql_cursor_next(c, &r) == QL_ROW)
				got++;
			ql_cursor_close(c);
		}
		if (got != want) {
			fprintf(stderr, "young records: got %llu want %llu\n",
				(unsigned long long)got,
				(unsigned long long)want);
			fail++;
		}
	}
	ql_close(s);
	for (int i = 0; i < THREADS; i++)
		free(w[i].ts);
	t_cleanup(dir);
	printf("concurrency: %llu young records checked, %d problems\n",
	       (unsigned long long)want, fail);
	return fail ? 1 : 0;
}
