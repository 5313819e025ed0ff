/* test_crash.c - kill -9 of a writing process at random moments.
 *
 * A child process appends from two threads (group commit: every append
 * waits until durable, or an explicit ql_sync), with a clock that moves
 * so buckets are sealed while it runs, and reports each acknowledged batch
 * through a pipe only after the call returned. The parent kills it with
 * SIGKILL at a random moment, then opens the store (no manual step) and
 * checks that every acknowledged record is there exactly once and that no
 * record appears twice. Trials: QL_CRASH_TRIALS (default 200); every tenth
 * trial starts a fresh store, the others pile onto the crashed one. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

typedef struct ack {
	uint64_t id;
	uint32_t n;
	uint32_t pad;
} ack;

static _Atomic int64_t child_now;
static _Atomic uint64_t child_tick;
static int ack_fd;
static int64_t child_base;

static int64_t child_clock(void *ctx)
{
	(void)ctx;
	return atomic_load(&child_now);
}

typedef struct worker {
	ql_store *s;
	unsigned thread, trial;
	int manual;
	uint64_t seed;
} worker;

static void *child_worker(void *p)
{
	worker *w = p;
	uint64_t rng = w->seed, next = 0;
	char req[32][32], tgt[32][32];
	ql_record r[32];

	for (;;) {
		uint32_t n = 1 + (uint32_t)(t_rand(&rng) % 32);
		uint64_t first = (uint64_t)w->trial * 100000000ULL +
				 (uint64_t)w->thread * 10000000ULL + next;
		ack a = { first, n, 0 };

		for (uint32_t i = 0; i < n; i++) {
			uint64_t tick = atomic_fetch_add(&child_tick, 1);
			int64_t ts = child_base + (int64_t)tick * 50000;

			snprintf(req[i], sizeof(req[i]), "+1%012llu",
				 (unsigned long long)(first + i));
			snprintf(tgt[i], sizeof(tgt[i]), "+4420%07u",
				 (unsigned)(t_rand(&rng) % 10000000));
			memset(&r[i], 0, sizeof(r[i]));
			r[i].ts = ts;
			r[i].requester = req[i];
			r[i].target = tgt[i];
			r[i].ip[10] = r[i].ip[11] = 0xff;
			r[i].ip[15] = (uint8_t)i;
			r[i].result = 1;
			if (ts + T_SEC > atomic_load(&child_now))
				atomic_store(&child_now, ts + T_SEC);
		}
		if (ql_append(w->s, r, n, NULL))
			_exit(3);
		if (w->manual && ql_sync(w->s))
			_exit(4);
		/* acknowledged: only now may the parent rely on it */
		if (write(ack_fd, &a, sizeof(a)) != sizeof(a))
			_exit(5);
		next += n;
	}
	return NULL;
}

static void child_main(const char *dir, unsigned trial, int64_t base,
		       int manual, uint64_t seed)
{
	ql_options o = QL_OPTIONS_INIT;
	pthread_t th[2];
	worker w[2];
	ql_store *s;

	child_base = base;
	atomic_store(&child_now, base);
	o.flags = QL_OPEN_CREATE;
	o.bucket_width_us = T_MIN;
	o.seal_grace_us = T_SEC;
	o.block_records = 64;
	o.clock = child_clock;
	o.maintenance_interval_ms = 1; /* on the moving fake clock */
	o.sync_mode = manual ? QL_SYNC_MANUAL : QL_SYNC_EVERY_APPEND;
	if (ql_open(&s, dir, &o)) {
		fprintf(stderr, "child open: %s\n", ql_errmsg(NULL));
		_exit(2);
	}
	for (unsigned i = 0; i < 2; i++) {
		w[i] = (worker){ s, i, trial, manual, seed * 31 + i };
		pthread_create(&th[i], NULL, child_worker, &w[i]);
	}
	for (;;)
		pause();
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

typedef struct idset {
	uint64_t *v;
	size_t n, cap;
} idset;

static void idset_add(idset *s, uint64_t id)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4096;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			abort();
	}
	s->v[s->n++] = id;
}

/* Opens the store as a writer (recovery), scans it, checks the acks.
 * Returns the number of problems and the latest time seen. */
static int check_store(const char *dir, idset *acked, int64_t *max_ts)
{
	ql_options o = QL_OPTIONS_INIT;
	ql_query q = QL_QUERY_INIT;
	const ql_record *rec;
	idset seen = { 0 };
	ql_cursor *c;
	ql_store *s;
	int64_t now = *max_ts + T_MIN;
	int bad = 0, rc;

	o.clock = t_clock;
	o.clock_ctx = &now;
	o.maintenance_interval_ms = -1;
	/* as a server does: the kill may have come while the store itself
	 * was being created, before anything was acknowledged */
	o.flags = QL_OPEN_CREATE;
	o.bucket_width_us = T_MIN; /* as the child creates it */
	if ((rc = ql_open(&s, dir, &o))) {
		fprintf(stderr, "reopen failed: %s: %s\n", ql_strerror(rc),
			ql_errmsg(NULL));
		return 1;
	}
	if ((rc = ql_cursor_open(&c, s, &q))) {
		fprintf(stderr, "cursor: %s\n", ql_errmsg(NULL));
		ql_close(s);
		return 1;
	}
	while ((rc = ql_cursor_next(c, &rec)) == QL_ROW) {
		idset_add(&seen, strtoull(rec->requester + 2, NULL, 10));
		if (rec->ts > *max_ts)
			*max_ts = rec->ts;
	}
	if (rc != QL_DONE) {
		fprintf(stderr, "scan: %s: %s\n", ql_strerror(rc),
			ql_errmsg(NULL));
		bad++;
	}
	ql_cursor_close(c);
	ql_close(s);
	if (seen.n)
		qsort(seen.v, seen.n, sizeof(*seen.v), cmp_u64);
	for (size_t i = 1; i < seen.n; i++)
		if (seen.v[i] == seen.v[i - 1]) {
			fprintf(stderr, "record %llu appears twice\n",
				(unsigned long long)seen.v[i]);
			bad++;
			break;
		}
	for (size_t i = 0; i < acked->n; i++)
		if (!seen.n || !bsearch(&acked->v[i], seen.v, seen.n,
					sizeof(*seen.v), cmp_u64)) {
			fprintf(stderr, "acknowledged record %llu is lost\n",
				(unsigned long long)acked->v[i]);
			bad++;
			break;
		}
	free(seen.v);
	return bad;
}

int main(void)
{
	const char *env = getenv("QL_CRASH_TRIALS");
	unsigned trials = env ? (unsigned)atoi(env) : 200;
	uint64_t rng = (uint64_t)time(NULL), acks_total = 0;
	unsigned passed = 0, failed = 0;
	char dir[256] = "";
	idset acked = { 0 };
	int64_t max_ts = 0;

	if (getenv("QL_CRASH_SEED"))
		rng = strtoull(getenv("QL_CRASH_SEED"), NULL, 10);
	printf("crash: %u trials, seed %llu\n", trials,
	       (unsigned long long)rng);
	for (unsigned trial = 1; trial <= trials; trial++) {
		int pfd[2], status, manual = (int)(t_rand(&rng) % 3 == 0);
		long delay_us = 2000 + (long)(t_rand(&rng) % 60000);
		struct timespec d = { 0, delay_us * 1000 };
		int64_t base;
		pid_t pid;
		ack a;

		if (trial % 10 == 1) {
			if (*dir)
				t_cleanup(dir);
			t_tmpdir(dir, sizeof(dir));
			acked.n = 0;
			max_ts = T_EPOCH;
		}
		base = max_ts + T_SEC;
		if (pipe(pfd))
			return 2;
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			ack_fd = pfd[1];
			child_main(dir, trial, base, manual, t_rand(&rng));
		}
		close(pfd[1]);
		nanosleep(&d, NULL);
		kill(pid, SIGKILL);
		while (read(pfd[0], &a, sizeof(a)) == sizeof(a)) {
			for (uint32_t i = 0; i < a.n; i++)
				idset_add(&acked, a.id + i);
			acks_total += a.n;
		}
		close(pfd[0]);
		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status)) {
			fprintf(stderr, "trial %u: child exited %d before the "
				"kill\n", trial, WEXITSTATUS(status));
			failed++;
			continue;
		}
		if (check_store(dir, &acked, &max_ts)) {
			fprintf(stderr, "trial %u FAILED (store %s kept)\n",
				trial, dir);
			failed++;
			*dir = '\0'; /* keep it for inspection */
			trial += 9 - (trial - 1) % 10; /* next fresh store */
			continue;
		}
		passed++;
	}
	if (*dir)
		t_cleanup(dir);
	free(acked.v);
	printf("crash: %llu acknowledged records checked\n",
	       (unsigned long long)acks_total);
	printf("crash: %u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
