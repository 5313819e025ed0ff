/* test_allocfail.c - every allocation the library makes fails, one at a
 * time, on every public API path (issue 6).
 *
 * Injection. tests/meson.build links this program against the static
 * internal library with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=free
 * so every reference to those functions from the store's objects (and from
 * this file) resolves to the __wrap_* functions below; the library's own
 * allocation calls are unchanged. Those four allocators are the only
 * allocating libc functions store/ calls (its objects reference no
 * strndup, asprintf, open_memstream, reallocarray, ...: check with
 * `nm libquerylog_internal.a | grep ' U '` when adding one, and wrap it
 * here and in meson.build); free is wrapped to count live allocations.
 * While "armed" the wrappers count allocations and fail the Nth (NULL,
 * errno ENOMEM). Allocations made inside LMDB, zstd and libc (fdopendir,
 * qsort, pthread_create, stdio) are not ours: --wrap does not reach into
 * shared libraries, so they are neither counted nor failed. The writer
 * thread's allocations are counted like the caller's (the counter is
 * atomic); where the writer runs concurrently with the caller the order of
 * the two threads' allocations may differ from run to run, so those loops
 * cover a sample of the interleavings.
 *
 * For each path and N = 1, 2, ... the Nth allocation of the calls under
 * test fails (everything else the run does, its setup and its checks, is
 * disarmed); the loop ends with the first run that completes without
 * reaching N, whose count is the number of allocation points printed.
 * Two modes: "once" fails only the Nth allocation (the ones after it
 * succeed: the code must recover), every N; "from there on" fails the Nth
 * and every later one while armed (error paths of error paths), every
 * 4th N by default.
 * For every N it checks:
 *   - every armed call returns 0 or QL_ENOMEM, with a ql_errmsg that says
 *     "memory", and no error at all before the failure was injected. The
 *     one other code allowed is QL_EFAILED, on the writing paths only,
 *     once the writer disabled itself: when the writer thread met the
 *     failure (creating, encoding or recording a block, sealing, taking
 *     its snapshot of the buckets: the call that waited for it returns
 *     QL_ENOMEM, the later ones QL_EFAILED naming it). A batch that
 *     cannot be taken whole, even after part of it was, is a clean
 *     QL_ENOMEM (ql_append puts the part back): the "append" and "batch"
 *     paths allow no QL_EFAILED. Failures
 *     absorbed by design return 0: in the index (derived data: readers
 *     scan what it does not cover, the next open repairs it), in the audit
 *     event of a seal (counted; the log must go on), in a reader's index
 *     (it scans);
 *   - no crash, and no leak: the wrappers keep the number of live
 *     allocations, which must be back where it was when the run has closed
 *     everything (so a leak fails the plain build too, naming the path and
 *     N); under ASan (scripts/test.sh --sanitize) LeakSanitizer also checks
 *     after each path and at exit;
 *   - what was acknowledged stays: the store reopened without injection
 *     holds every acknowledged record exactly once, nothing that was never
 *     appended and nothing of an append that failed (QL_SYNC_MANUAL: a
 *     failed ql_append took nothing), verifies clean, seals and takes
 *     appends (faultvfs_script.h, sc_check);
 *   - readers give exactly the right answer or a clean error: a cursor
 *     step that failed can be retried and the cursor then yields exactly
 *     the records it still owed; stat, segments, hold list and audit
 *     callbacks saw a prefix of the right answer;
 *   - holds: a change that returned 0 is in force and audited; one that
 *     failed is not in force and not audited (its event is prepared before
 *     the save; only I/O, never injected here, can fail after it);
 *   - expiry: a segment that is gone has its audit event; the next sweep
 *     finishes the job; held and young data stays.
 *
 * Paths: open-new, open-readonly, recovery (a store needing every repair,
 * index stale), rebuild (the same, index deleted), append, append-every,
 * batch, batch-every, group (two threads, group commit; run three times,
 * group-2 and group-3 again: their interleaving differs from run to run,
 * and a leader that synced past a block another leader lost to a failed
 * allocation failed between 1 run of the path in 2 and 1 in 30), sync,
 * maintain
 * (sealing), close, script (the whole faultvfs_script.h run), cursor-*
 * (scan, window, handle, target, none, ip, cidr4, cidr6: index lagging for
 * two segments), stat, segments (verify), hold-list, audit-read,
 * audit-query, hold-place, hold-extend, hold-release, expire, expire-dry,
 * reindex, parse.
 *
 * Environment:
 *   QL_ALLOCFAIL_PATHS=a,b          run only these paths (prefix match)
 *   QL_ALLOCFAIL_ONLY=path/N        one run failing allocation N once;
 *                   path/N/sticky   ... failing N and every later one
 *   QL_ALLOCFAIL_STRIDE=k           "once": fail N = 1, 1+k, 1+2k, ...
 *                                   (default 1: every point; 0: skip)
 *   QL_ALLOCFAIL_STICKY_STRIDE=k    the same for "from there on"
 *                                   (default 4; 0: skip the mode)
 *   QL_ALLOCFAIL_EXHAUSTIVE=1       stride 1 in both modes
 *   QL_ALLOCFAIL_VERBOSE=1          print every failure point's outcome
 * A failing run prints the allocation that failed as an addr2line command.
 * Runtime (default strides, beside the other tests on 2 cores): about 10 s
 * at -O2, 45 s under ASan; QL_ALLOCFAIL_EXHAUSTIVE=1 takes about twice that.
 * Exits 1 on any failure. */
/* room for a bucket of more than 64 blocks of 16 (arrays that grow) */
#define SC_MAXREC 2048
#include "faultvfs_script.h"
#include "segment.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdatomic.h>

#if defined(__SANITIZE_ADDRESS__)
#define AF_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AF_LSAN 1
#endif
#endif
#ifdef AF_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* ---------------------------------------------------------------------- */
/* the wrappers                                                            */
/* ---------------------------------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t nmemb, size_t size);
void *__real_realloc(void *ptr, size_t size);
char *__real_strdup(const char *s);
void __real_free(void *ptr);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t nmemb, size_t size);
void *__wrap_realloc(void *ptr, size_t size);
char *__wrap_strdup(const char *s);
void __wrap_free(void *ptr);

static atomic_int af_armed;
static atomic_ulong af_count; /* allocations seen while armed */
static atomic_ulong af_at;    /* the one to fail (1-based) */
static atomic_uint af_hits;
static atomic_long af_live;   /* allocations not yet freed */
static atomic_int af_sticky;  /* fail every allocation from the Nth on */

#define AF_FRAMES 10
static void *af_site[AF_FRAMES];
static int af_nsite;

static int af_fail(void)
{
	unsigned long k;

	if (!atomic_load(&af_armed))
		return 0;
	k = atomic_fetch_add(&af_count, 1) + 1;
	if (k < atomic_load(&af_at) ||
	    (k > atomic_load(&af_at) && !atomic_load(&af_sticky)))
		return 0;
	if (atomic_fetch_add(&af_hits, 1) == 0)
		af_nsite = backtrace(af_site, AF_FRAMES);
	errno = ENOMEM;
	return 1;
}

void *__wrap_malloc(size_t size)
{
	void *p;

	if (af_fail())
		return NULL;
	p = __real_malloc(size);
	if (p)
		atomic_fetch_add(&af_live, 1);
	return p;
}

void *__wrap_calloc(size_t nmemb, size_t size)
{
	void *p;

	if (af_fail())
		return NULL;
	p = __real_calloc(nmemb, size);
	if (p)
		atomic_fetch_add(&af_live, 1);
	return p;
}

void *__wrap_realloc(void *ptr, size_t size)
{
	void *p;

	if (af_fail())
		return NULL;
	p = __real_realloc(ptr, size);
	if (!ptr && p)
		atomic_fetch_add(&af_live, 1);
	else if (ptr && !p && size == 0)
		atomic_fetch_sub(&af_live, 1); /* glibc: freed */
	return p;
}

char *__wrap_strdup(const char *s)
{
	char *p;

	if (af_fail())
		return NULL;
	p = __real_strdup(s);
	if (p)
		atomic_fetch_add(&af_live, 1);
	return p;
}

void __wrap_free(void *ptr)
{
	if (ptr)
		atomic_fetch_sub(&af_live, 1);
	__real_free(ptr);
}

/* ---------------------------------------------------------------------- */
/* runs                                                                    */
/* ---------------------------------------------------------------------- */

typedef struct run {
	char label[128]; /* SC_FAIL prints it */
	unsigned long n;
	unsigned errors; /* armed calls that returned an error */
} run;

static int verbose;
static char exe[512];
static unsigned long total_points, total_runs, total_absorbed;
static unsigned paths_run;
static unsigned long saved_unaudited;

static void af_start(const run *r)
{
	atomic_store(&af_count, 0);
	atomic_store(&af_hits, 0);
	atomic_store(&af_at, r->n);
	atomic_store(&af_armed, 1);
}

static void af_pause(void)
{
	atomic_store(&af_armed, 0);
}

static void af_resume(void)
{
	atomic_store(&af_armed, 1);
}

static int af_hit(void)
{
	return atomic_load(&af_hits) > 0;
}

/* The failed allocation's call stack, as an addr2line command line. */
static void af_print_site(void)
{
	Dl_info me, di;

	if (!af_nsite || !dladdr((void *)&af_nsite, &me))
		return;
	fprintf(stderr, "  the failed allocation: addr2line -f -i -e %s", exe);
	for (int i = 1; i < af_nsite; i++)
		if (dladdr(af_site[i], &di) && di.dli_fbase == me.dli_fbase)
			fprintf(stderr, " %#lx",
				(unsigned long)((char *)af_site[i] -
						(char *)di.dli_fbase) - 1);
	fputc('\n', stderr);
}

/* Codes an armed call may return besides 0 and QL_ENOMEM. */
#define ALLOW_FAILED 1 /* QL_EFAILED: the writer disabled itself */

/* Checks what an armed call returned, with the calling thread's message
 * (rc < 0 only). */
static void check_msg(run *r, const char *what, int rc, const char *msg,
		      unsigned allow)
{
	if (rc >= 0)
		return;
	r->errors++;
	if (verbose)
		fprintf(stderr, "  [%s] %s: %s: %s\n", r->label, what,
			ql_strerror(rc), msg);
	if (!af_hit()) {
		SC_FAIL(r, "%s returned %s before any allocation failed: %s",
			what, ql_strerror(rc), msg);
		return;
	}
	if (rc != QL_ENOMEM && !((allow & ALLOW_FAILED) && rc == QL_EFAILED)) {
		SC_FAIL(r, "%s returned %s, expected QL_ENOMEM%s: %s", what,
			ql_strerror(rc),
			(allow & ALLOW_FAILED) ? " or QL_EFAILED" : "", msg);
		return;
	}
	if (!strstr(msg, "memory"))
		SC_FAIL(r, "%s: %s with a message that does not say so: "
			"\"%s\"", what, ql_strerror(rc), msg);
}

static void check_rc(run *r, const char *what, int rc, unsigned allow)
{
	check_msg(r, what, rc, ql_errmsg(NULL), allow);
}

/* ---------------------------------------------------------------------- */
/* stores and models                                                       */
/* ---------------------------------------------------------------------- */

static void ctx_new(sc_ctx *c, const run *r)
{
	char root[256];

	/* keep nothing but the scratch root (removed here) */
	snprintf(root, sizeof(root), "%s", c->root);
	if (root[0])
		t_rmrf(root);
	memset(c, 0, sizeof(*c));
	sc_fresh(c, 0);
	sc_reset(c);
	snprintf(c->label, sizeof(c->label), "%s", r ? r->label : "setup");
}

/* A fresh scratch directory holding a copy of tmpl, with tmpl's model. */
static void ctx_copy(sc_ctx *c, const run *r, const sc_ctx *model,
		     const char *tmpl)
{
	char root[256], dir[300], label[128];

	ctx_new(c, r);
	memcpy(root, c->root, sizeof(root));
	memcpy(dir, c->dir, sizeof(dir));
	memcpy(label, c->label, sizeof(label));
	if (model)
		*c = *model;
	memcpy(c->root, root, sizeof(root));
	memcpy(c->dir, dir, sizeof(dir));
	memcpy(c->label, label, sizeof(label));
	c->s = NULL;
	c->rc = 0;
	if (sc_copytree(tmpl, c->dir)) {
		fprintf(stderr, "cannot copy %s\n", tmpl);
		abort();
	}
}

static void ctx_done(sc_ctx *c)
{
	if (c->root[0])
		t_rmrf(c->root);
	c->root[0] = '\0';
}

static int af_open(sc_ctx *c, int every, unsigned block_records)
{
	ql_options o = sc_opts(&c->now, every);

	o.block_records = block_records;
	c->every = every;
	return ql_open(&c->s, c->dir, &o);
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "setup: %s: %s: %s\n", what, ql_strerror(rc),
		ql_errmsg(NULL));
	exit(2);
}

/* base + suffix into out; a name that does not fit is a test bug. */
static void name_cat(char *out, size_t n, const char *base,
		     const char *suffix)
{
	if (snprintf(out, n, "%s%s", base, suffix) >= (int)n)
		abort();
}

/* One ql_append of k records (ids from c->nrec on, times ts0 + i * step),
 * armed or not; records the outcome in the model. */
static int ap_batch(sc_ctx *c, run *r, int64_t ts0, int64_t step, unsigned k,
		    unsigned allow)
{
	sc_rec t[64];
	ql_record rr[64];
	uint32_t first = c->nrec;
	int rc;

	if (k > 64 || c->nrec + k > SC_MAXREC)
		abort();
	for (unsigned i = 0; i < k; i++) {
		uint32_t id = c->nrec++;

		c->ts[id] = ts0 + (int64_t)i * step;
		c->tried[id] = 1;
		sc_make(&t[i], id, c->ts[id], 0);
		rr[i] = t[i].r;
	}
	rc = ql_append(c->s, rr, k, NULL);
	if (r)
		check_rc(r, "ql_append", rc, allow);
	for (unsigned i = 0; i < k; i++) {
		if (!rc) {
			c->accepted[first + i] = 1;
			if (c->every)
				c->acked[first + i] = 1;
		} else if (!c->every) {
			/* QL_SYNC_MANUAL: a failed append took nothing (or
			 * disabled the writer before anything of it could be
			 * written) */
			c->refused[first + i] = 1;
		}
	}
	return rc;
}

static int ap_sync(sc_ctx *c, run *r)
{
	int rc = ql_sync(c->s);

	if (r)
		check_rc(r, "ql_sync", rc, ALLOW_FAILED);
	if (!rc)
		sc_ack_accepted(c);
	return rc;
}

/* Closes the store (disarmed) if open, then reopens the directory without
 * injection and checks it (faultvfs_script.h). */
static void finish(sc_ctx *c, run *r)
{
	if (c->s) {
		int rc = ql_close(c->s);

		c->s = NULL;
		if (!rc)
			sc_ack_accepted(c);
		else
			check_rc(r, "ql_close (disarmed, after the run)", rc,
				 ALLOW_FAILED);
	}
	sc_check(c, c->dir, "reopened");
	ctx_done(c);
}

/* The id of a record of the script, and whether it is intact. */
static int rec_id(run *r, const sc_ctx *m, const ql_record *rec, uint32_t *id)
{
	unsigned long long v;
	char *end;
	sc_rec t;

	v = strtoull(rec->requester + 2, &end, 10);
	if (strncmp(rec->requester, "+1", 2) || *end || v >= m->nrec ||
	    !m->tried[v]) {
		SC_FAIL(r, "a record that was never appended (requester %s)",
			rec->requester);
		return -1;
	}
	*id = (uint32_t)v;
	sc_make(&t, *id, m->ts[*id], 1);
	if (rec->ts != t.r.ts || strcmp(rec->target, t.tgt) ||
	    memcmp(rec->ip, t.r.ip, 16) || rec->service != t.r.service ||
	    rec->result != t.r.result) {
		SC_FAIL(r, "record %u differs from what was appended", *id);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* queries, answered by brute force from a model                           */
/* ---------------------------------------------------------------------- */

typedef struct qdef {
	const char *name;
	ql_query q;
	const char *canon; /* the handle, canonical */
	uint32_t *want[2]; /* ids in order: [0] the template, [1] shared */
	size_t nwant[2];
} qdef;

static qdef queries[8];
static size_t nqueries;

static int ip_in(const uint8_t ip[16], const uint8_t net[16], unsigned plen)
{
	unsigned full = plen / 8, rem = plen % 8;

	if (memcmp(ip, net, full))
		return 0;
	return !rem || ((ip[full] ^ net[full]) & (uint8_t)(0xff << (8 - rem))) ==
			       0;
}

static int q_match(const qdef *d, const sc_rec *t)
{
	const ql_query *q = &d->q;

	if ((q->since && t->r.ts < q->since) || (q->until && t->r.ts >= q->until))
		return 0;
	switch (q->match) {
	case QL_MATCH_HANDLE:
		return (q->role != QL_ROLE_TARGET &&
			!strcmp(t->req, d->canon)) ||
		       (q->role != QL_ROLE_REQUESTER &&
			!strcmp(t->tgt, d->canon));
	case QL_MATCH_IP:
		return ip_in(t->r.ip, q->ip, q->prefix_len);
	default:
		return 1;
	}
}

/* The ids of m's acknowledged records that q matches, in time order (the
 * script's times are distinct). */
static void q_expect(qdef *d, int which, const sc_ctx *m)
{
	uint32_t *v = calloc(m->nrec ? m->nrec : 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		abort();
	for (uint32_t id = 0; id < m->nrec; id++) {
		sc_rec t;

		if (!m->acked[id])
			continue;
		sc_make(&t, id, m->ts[id], 1);
		if (!q_match(d, &t))
			continue;
		size_t j = n++;

		while (j > 0 && m->ts[v[j - 1]] > m->ts[id]) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = id;
	}
	d->want[which] = v;
	d->nwant[which] = n;
}

static void q_add(const char *name, const ql_query *q, const char *canon)
{
	qdef *d = &queries[nqueries++];

	d->name = name;
	d->q = *q;
	d->canon = canon;
}

static void q_define(void)
{
	static char req37[24], tgt42[48];
	ql_query q = QL_QUERY_INIT;
	sc_rec t;

	q_add("scan", &q, NULL);
	q.since = SC_A + 15 * T_MIN;
	q.until = SC_B + 10 * T_MIN;
	q_add("window", &q, NULL);

	q = (ql_query)QL_QUERY_INIT;
	sc_make(&t, 37, 0, 1);
	memcpy(req37, t.req, sizeof(req37));
	q.match = QL_MATCH_HANDLE;
	q.role = QL_ROLE_ANY;
	q.handle = req37;
	q_add("handle", &q, req37);
	sc_make(&t, 42, 0, 1);
	memcpy(tgt42, t.tgt, sizeof(tgt42));
	q.role = QL_ROLE_TARGET;
	q.handle = tgt42;
	q_add("target", &q, tgt42);
	q.role = QL_ROLE_REQUESTER;
	q.handle = "tel:+19999999998";
	q_add("none", &q, "+19999999998");

	q = (ql_query)QL_QUERY_INIT;
	q.match = QL_MATCH_IP;
	sc_make(&t, 51, 0, 1);
	memcpy(q.ip, t.r.ip, 16);
	q.prefix_len = 128;
	q_add("ip", &q, NULL);
	memset(q.ip, 0, 16);
	q.ip[10] = q.ip[11] = 0xff;
	q.ip[12] = 10;
	q.prefix_len = 104; /* 10.0.0.0/8 */
	q_add("cidr4", &q, NULL);
	memset(q.ip, 0, 16);
	q.ip[0] = 0x20;
	q.ip[1] = 0x01;
	q.prefix_len = 16; /* 2001::/16 */
	q_add("cidr6", &q, NULL);
}

/* Runs query d on s without injection: exactly the expected ids. */
static void q_check(run *r, ql_store *s, const qdef *d, int which,
		    const sc_ctx *m, const char *what)
{
	ql_cursor *cur;
	const ql_record *rec;
	size_t got = 0;
	int rc;

	rc = ql_cursor_open(&cur, s, &d->q);
	if (rc) {
		SC_FAIL(r, "%s: query %s: open: %s: %s", what, d->name,
			ql_strerror(rc), ql_errmsg(NULL));
		return;
	}
	while ((rc = ql_cursor_next(cur, &rec)) == QL_ROW) {
		uint32_t id;

		if (rec_id(r, m, rec, &id))
			break;
		if (got >= d->nwant[which] || d->want[which][got] != id) {
			SC_FAIL(r, "%s: query %s: record %u at position %zu "
				"is not the expected one", what, d->name, id,
				got);
			break;
		}
		got++;
	}
	if (rc < 0)
		SC_FAIL(r, "%s: query %s: %s: %s", what, d->name,
			ql_strerror(rc), ql_errmsg(NULL));
	else if (rc == QL_DONE && got != d->nwant[which])
		SC_FAIL(r, "%s: query %s: %zu records, expected %zu", what,
			d->name, got, d->nwant[which]);
	ql_cursor_close(cur);
}

/* ---------------------------------------------------------------------- */
/* templates                                                               */
/* ---------------------------------------------------------------------- */

/* The read template: the whole faultvfs script (sealed segments, a late
 * generation, an unsealed bucket) and a hold. The shared store is a copy
 * of it, opened for the whole test, with 20 more records in the unsealed
 * bucket and 1088 in a new one (68 blocks: the arrays that grow by
 * doubling from 64 do), written after the index's last commit (so the
 * index lags for those segments, unless a second passed meanwhile). */
static sc_ctx rd_base, rd;
static char rd_tmpl[300];
static sc_ctx shared;
#define SHARED_NOW SC_CHECK_NOW

static const char *const read_subjects[] = { "+14155550123",
					     "10.1.2.0/24", "2001:db8::1" };

static void make_read_template(void)
{
	sc_ctx *c = &rd_base;
	ql_hold h = QL_HOLD_INIT;
	int rc;

	ctx_new(c, NULL);
	snprintf(c->label, sizeof(c->label), "read-template");
	if ((rc = sc_run(c)))
		die("read template script", rc);
	t_setclock(&c->now, SC_C + 3 * T_MIN);
	if ((rc = sc_open(c, 0)))
		die("read template open", rc);
	h.order_id = "ORD-READ";
	h.from = SC_A;
	h.to = SC_A + T_HOUR;
	h.expires = SC_CHECK_NOW + 5 * T_DAY;
	h.reason = "court order 1/2026";
	h.placed_by = "clerk";
	h.subjects = read_subjects;
	h.nsubjects = 3;
	if ((rc = ql_hold_place(c->s, &h)))
		die("read template hold", rc);
	if ((rc = sc_close(c)))
		die("read template close", rc);
	name_cat(rd_tmpl, sizeof(rd_tmpl), c->root, ".read");
	if (sc_copytree(c->dir, rd_tmpl))
		die("read template copy", 0);
	ctx_done(c);

	/* the shared store */
	ctx_copy(&shared, NULL, c, rd_tmpl);
	rd = rd_base;
	t_setclock(&shared.now, SHARED_NOW);
	if ((rc = af_open(&shared, 0, 16)))
		die("shared open", rc);
	/* 20 records into the unsealed bucket C and 1088 into a new one:
	 * written and synced, and (unless a second passed meanwhile) not
	 * all committed to the index, which commits about once a second;
	 * the writer is idle from here on */
	rd.s = shared.s;
	rd.every = 0;
	if (ap_batch(&rd, NULL, SC_C + 30 * T_MIN, T_SEC, 20, 0))
		die("shared appends", QL_EINVAL);
	for (int k = 0; k < 17; k++)
		if (ap_batch(&rd, NULL, SC_C + T_HOUR + k * 64 * 3 * T_SEC,
			     3 * T_SEC, 64, 0))
			die("shared appends", QL_EINVAL);
	if (ap_sync(&rd, NULL))
		die("shared sync", QL_EINVAL);
	rd.s = NULL;
}

/* The recovery template (as in test_faults.c): A has two unsealed
 * generations, B a torn tail, C an empty segment, plus leftover .tmp
 * files. Its index is stale; the rebuild template has none. */
static sc_ctx rec_start;
static char rec_tmpl[300], rebuild_tmpl[300];

static void path_in(char *out, size_t n, const char *dir, const char *rel)
{
	if (snprintf(out, n, "%s/%s", dir, rel) >= (int)n)
		abort();
}

static void make_recovery_template(void)
{
	sc_ctx *c = &rec_start;
	char p[600];
	uint8_t tr[16];
	qli_segfile sf;
	int fd, segdir;
	uint64_t soff;

	ctx_new(c, NULL);
	snprintf(c->label, sizeof(c->label), "recovery-template");
	t_setclock(&c->now, SC_A + 50 * T_MIN);
	if (sc_open(c, 0) ||
	    sc_append(c, SC_A + 10 * T_MIN, 10 * T_SEC, 40, 16) ||
	    sc_sync(c))
		die("recovery template A", c->rc);
	t_setclock(&c->now, SC_B + 5 * T_MIN);
	if (sc_maintain(c) || sc_append(c, SC_A + 55 * T_MIN, 1, 5, 5) ||
	    sc_append(c, SC_B, 5 * T_SEC, 40, 16) || sc_close(c))
		die("recovery template B", c->rc);

	path_in(p, sizeof(p), c->dir, "seg/20261101T100000Z-g0.qls");
	fd = open(p, O_RDWR);
	if (fd < 0 || pread(fd, tr, 16, lseek(fd, 0, SEEK_END) - 16) != 16)
		die("read trailer", 0);
	soff = qli_get64(tr);
	if (ftruncate(fd, (off_t)soff))
		die("truncate seal", 0);
	close(fd);
	path_in(p, sizeof(p), c->dir, "seg/20261101T110000Z-g0.qls");
	fd = open(p, O_WRONLY | O_APPEND);
	if (fd < 0 || write(fd, "QLBK torn tail torn tail torn tail torn "
			    "tail", 44) != 44)
		die("torn tail", 0);
	close(fd);
	path_in(p, sizeof(p), c->dir, "seg");
	segdir = open(p, O_RDONLY | O_DIRECTORY);
	if (segdir < 0 ||
	    qli_segfile_create(&sf, segdir, SC_C, T_HOUR, 0, 0600))
		die("empty segment", 0);
	qli_segfile_close(&sf);
	close(segdir);
	path_in(p, sizeof(p), c->dir, "QLSTORE.tmp");
	close(open(p, O_WRONLY | O_CREAT, 0600));
	path_in(p, sizeof(p), c->dir, "seg/x.tmp");
	close(open(p, O_WRONLY | O_CREAT, 0600));

	name_cat(rec_tmpl, sizeof(rec_tmpl), c->root, ".recovery");
	name_cat(rebuild_tmpl, sizeof(rebuild_tmpl), c->root, ".rebuild");
	if (sc_copytree(c->dir, rec_tmpl))
		die("recovery template copy", 0);
	path_in(p, sizeof(p), c->dir, "index");
	t_rmrf(p);
	if (sc_copytree(c->dir, rebuild_tmpl))
		die("rebuild template copy", 0);
	ctx_done(c);
}

/* The holds template: 10 records, an active hold with subjects, one
 * that lapses before HOLD_NOW, one released. */
static sc_ctx hold_model;
static char hold_tmpl[300];
#define HOLD_NOW (SC_A + 3 * T_HOUR)

static void make_hold_template(void)
{
	static const char *const subj[] = { "+14155550123", "10.1.2.0/24" };
	sc_ctx *c = &hold_model;
	ql_hold h = QL_HOLD_INIT;
	int rc;

	ctx_new(c, NULL);
	t_setclock(&c->now, SC_A + 30 * T_MIN);
	if ((rc = sc_open(c, 0)) ||
	    (rc = sc_append(c, SC_A, T_MIN, 10, 10)) || (rc = sc_sync(c)))
		die("hold template", rc);
	h.order_id = "ORD-ACTIVE";
	h.from = SC_A;
	h.to = SC_A + T_HOUR;
	h.expires = SC_A + 10 * T_DAY;
	h.period_us = 7 * T_DAY;
	h.reason = "pen register, order 17";
	h.placed_by = "judge";
	h.subjects = subj;
	h.nsubjects = 2;
	if ((rc = ql_hold_place(c->s, &h)))
		die("hold ORD-ACTIVE", rc);
	h.order_id = "ORD-LAPSE";
	h.expires = SC_A + 2 * T_HOUR;
	h.nsubjects = 0;
	if ((rc = ql_hold_place(c->s, &h)))
		die("hold ORD-LAPSE", rc);
	h.order_id = "ORD-REL";
	h.expires = SC_A + 20 * T_DAY;
	if ((rc = ql_hold_place(c->s, &h)) ||
	    (rc = ql_hold_release(c->s, "ORD-REL", "clerk")))
		die("hold ORD-REL", rc);
	if ((rc = sc_close(c)))
		die("hold template close", rc);
	name_cat(hold_tmpl, sizeof(hold_tmpl), c->root, ".hold");
	if (sc_copytree(c->dir, hold_tmpl))
		die("hold template copy", 0);
	ctx_done(c);
}

/* The expiry template (1-hour buckets, 30 days' retention): A, C and E
 * are due at EXP_NOW; B is held by ORD-B; C's hold ORD-C lapses before
 * EXP_NOW; D is young. Every run renames E to E.qls.del first (an expiry
 * that another process started and did not finish). */
static sc_ctx exp_model;
static char exp_tmpl[300];
#define EXP_DAY0 (T_EPOCH + 10 * T_HOUR)
#define EXP_NOW (T_EPOCH + 31 * T_DAY + 2 * T_HOUR)
#define EXP_D (T_EPOCH + 31 * T_DAY + T_HOUR)
static const char *const exp_names[5] = {
	"20261101T100000Z-g0.qls", /* A */
	"20261101T110000Z-g0.qls", /* B */
	"20261101T120000Z-g0.qls", /* C */
	"20261101T130000Z-g0.qls", /* E */
	"20261202T010000Z-g0.qls", /* D */
};

static void make_expire_template(void)
{
	sc_ctx *c = &exp_model;
	ql_hold h = QL_HOLD_INIT;
	int rc;

	ctx_new(c, NULL);
	t_setclock(&c->now, EXP_DAY0 + 4 * T_HOUR);
	if ((rc = sc_open(c, 0)))
		die("expire template open", rc);
	for (int b = 0; b < 4; b++)
		if ((rc = sc_append(c, EXP_DAY0 + b * T_HOUR, T_MIN, 20, 10)))
			die("expire template append", rc);
	if ((rc = sc_sync(c)))
		die("expire template sync", rc);
	h.order_id = "ORD-B";
	h.from = EXP_DAY0 + T_HOUR;
	h.to = EXP_DAY0 + T_HOUR + 30 * T_MIN;
	h.expires = T_EPOCH + 60 * T_DAY;
	h.reason = "held";
	h.placed_by = "judge";
	if ((rc = ql_hold_place(c->s, &h)))
		die("hold ORD-B", rc);
	h.order_id = "ORD-C";
	h.from = EXP_DAY0 + 2 * T_HOUR;
	h.to = EXP_DAY0 + 2 * T_HOUR + 30 * T_MIN;
	h.expires = EXP_NOW - T_HOUR;
	if ((rc = ql_hold_place(c->s, &h)))
		die("hold ORD-C", rc);
	if ((rc = sc_close(c)))
		die("expire template close", rc);
	t_setclock(&c->now, EXP_NOW);
	if ((rc = sc_open(c, 0)) ||
	    (rc = sc_append(c, EXP_D, T_MIN, 20, 10)) || (rc = sc_close(c)))
		die("expire template D", rc);
	/* after the sweep only B (held) and D (young) are readable */
	for (uint32_t id = 0; id < c->nrec; id++)
		c->acked[id] = (id >= 20 && id < 40) || id >= 80;
	name_cat(exp_tmpl, sizeof(exp_tmpl), c->root, ".expire");
	if (sc_copytree(c->dir, exp_tmpl))
		die("expire template copy", 0);
	ctx_done(c);
}

/* ---------------------------------------------------------------------- */
/* expected answers of the read paths, taken without injection             */
/* ---------------------------------------------------------------------- */

static ql_stats want_stats;

#define MAXSEG 16
typedef struct seglist {
	size_t n;
	ql_segment_info v[MAXSEG];
} seglist;
static seglist want_segs;

static int seg_collect(const ql_segment_info *i, void *ctx)
{
	seglist *l = ctx;

	if (l->n < MAXSEG)
		l->v[l->n] = *i;
	l->n++;
	return 0;
}

static int seg_same(const ql_segment_info *a, const ql_segment_info *b)
{
	return !strcmp(a->name, b->name) &&
	       a->bucket_start == b->bucket_start &&
	       a->bucket_end == b->bucket_end &&
	       a->generation == b->generation && a->sealed == b->sealed &&
	       a->blocks == b->blocks && a->records == b->records &&
	       a->raw_bytes == b->raw_bytes &&
	       a->disk_bytes == b->disk_bytes && a->min_ts == b->min_ts &&
	       a->max_ts == b->max_ts && a->indexed == b->indexed &&
	       a->status == b->status && a->bad_offset == b->bad_offset;
}

/* A hold as ql_hold_list gives it, copied (no allocation: callbacks run
 * armed). */
#define MAXHOLD 8
typedef struct hsnap {
	char id[129], reason[64], placed_by[32],
		ended_by[32];
	int state;
	int64_t from, to, expires, period, placed_at, ended_at;
	size_t nsub;
	char sub[6][64];
} hsnap;
typedef struct hlist {
	size_t n;
	hsnap v[MAXHOLD];
} hlist;

static int hold_collect(const ql_hold *h, void *ctx)
{
	hlist *l = ctx;
	hsnap *s;

	if (l->n >= MAXHOLD) {
		l->n++;
		return 0;
	}
	s = &l->v[l->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->id, sizeof(s->id), "%s", h->order_id);
	snprintf(s->reason, sizeof(s->reason), "%s", h->reason);
	snprintf(s->placed_by, sizeof(s->placed_by), "%s", h->placed_by);
	snprintf(s->ended_by, sizeof(s->ended_by), "%s",
		 h->ended_by ? h->ended_by : "");
	s->state = h->state;
	s->from = h->from;
	s->to = h->to;
	s->expires = h->expires;
	s->period = h->period_us;
	s->placed_at = h->placed_at;
	s->ended_at = h->ended_at;
	s->nsub = h->nsubjects;
	for (size_t i = 0; i < h->nsubjects && i < 6; i++)
		snprintf(s->sub[i], sizeof(s->sub[i]), "%s", h->subjects[i]);
	return 0;
}

static int hold_same(const hsnap *a, const hsnap *b)
{
	if (strcmp(a->id, b->id) || strcmp(a->reason, b->reason) ||
	    strcmp(a->placed_by, b->placed_by) ||
	    strcmp(a->ended_by, b->ended_by) || a->state != b->state ||
	    a->from != b->from || a->to != b->to || a->expires != b->expires ||
	    a->period != b->period || a->placed_at != b->placed_at ||
	    a->ended_at != b->ended_at || a->nsub != b->nsub)
		return 0;
	for (size_t i = 0; i < a->nsub && i < 6; i++)
		if (strcmp(a->sub[i], b->sub[i]))
			return 0;
	return 1;
}

/* n holds of a equal to the first n of b */
static int holds_prefix(const hlist *a, const hlist *b)
{
	if (a->n > b->n || a->n > MAXHOLD)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (!hold_same(&a->v[i], &b->v[i]))
			return 0;
	return 1;
}

static int holds_equal(const hlist *a, const hlist *b)
{
	return a->n == b->n && holds_prefix(a, b);
}

static hlist want_holds;

/* Audit events: the expected ones are kept (strdup, disarmed); the armed
 * callback compares without allocating. */
#define MAXEV 64
typedef struct evlist {
	size_t n;
	char *v[MAXEV];
} evlist;
static evlist want_events, want_events_order;

static int ev_collect(const char *json, size_t len, void *ctx)
{
	evlist *l = ctx;

	if (l->n < MAXEV) {
		l->v[l->n] = malloc(len + 1);
		if (!l->v[l->n])
			abort();
		memcpy(l->v[l->n], json, len);
		l->v[l->n][len] = '\0';
	}
	l->n++;
	return 0;
}

static void ev_free(evlist *l)
{
	for (size_t i = 0; i < l->n && i < MAXEV; i++)
		free(l->v[i]);
	l->n = 0;
}

typedef struct evcmp {
	const evlist *want;
	size_t n;
	int bad;
} evcmp;

static int ev_compare(const char *json, size_t len, void *ctx)
{
	evcmp *e = ctx;

	if (e->n >= e->want->n || e->n >= MAXEV ||
	    strlen(e->want->v[e->n]) != len ||
	    memcmp(e->want->v[e->n], json, len))
		e->bad = 1;
	e->n++;
	return 0;
}

/* Counts the events containing a string. */
typedef struct evcount {
	const char *needle;
	const char *needle2;
	unsigned n;
} evcount;

static int ev_count(const char *json, size_t len, void *ctx)
{
	evcount *e = ctx;

	(void)len;
	if (strstr(json, e->needle) && (!e->needle2 || strstr(json, e->needle2)))
		e->n++;
	return 0;
}

static unsigned events_with(ql_store *s, const char *order_id,
			    const char *needle, const char *needle2, int *rc)
{
	evcount e = { needle, needle2, 0 };

	*rc = ql_audit_read(s, 0, order_id, ev_count, &e);
	return e.n;
}

static void take_expected(void)
{
	ql_store *s = shared.s;
	int rc;

	for (size_t i = 0; i < nqueries; i++) {
		q_expect(&queries[i], 0, &rd_base);
		q_expect(&queries[i], 1, &rd);
	}
	if ((rc = ql_stat(s, &want_stats)))
		die("expected stat", rc);
	if ((rc = ql_segments(s, 1, seg_collect, &want_segs)) ||
	    want_segs.n > MAXSEG)
		die("expected segments", rc);
	if ((rc = ql_hold_list(s, hold_collect, &want_holds)) ||
	    want_holds.n > MAXHOLD)
		die("expected holds", rc);
	if ((rc = ql_audit_read(s, 0, NULL, ev_collect, &want_events)) ||
	    want_events.n > MAXEV || want_events.n < 4)
		die("expected audit events", rc);
	if ((rc = ql_audit_read(s, 0, "ORD-READ", ev_collect,
				&want_events_order)) ||
	    want_events_order.n != 1)
		die("expected audit events of ORD-READ", rc);
	/* the reference answers themselves, through the store */
	for (size_t i = 0; i < nqueries; i++) {
		run r = { "expected", 0, 0 };
		unsigned before = sc_failures;

		q_check(&r, s, &queries[i], 1, &rd, "shared store");
		if (sc_failures != before)
			exit(2);
	}
}

/* ---------------------------------------------------------------------- */
/* writing paths                                                           */
/* ---------------------------------------------------------------------- */

static sc_ctx wc; /* the store of the current writing run */

static void body_open_new(run *r)
{
	sc_ctx *c = &wc;
	int rc;

	ctx_new(c, r);
	t_setclock(&c->now, SC_A + 50 * T_MIN);
	af_start(r);
	rc = af_open(c, 0, 16);
	af_pause();
	check_rc(r, "ql_open (new store)", rc, 0);
	if (rc && c->s)
		SC_FAIL(r, "ql_open failed but set *out");
	finish(c, r);
}

static void body_open_recovery(run *r, const char *tmpl)
{
	sc_ctx *c = &wc;
	int rc;

	ctx_copy(c, r, &rec_start, tmpl);
	t_setclock(&c->now, SC_C + 2 * T_MIN);
	af_start(r);
	rc = af_open(c, 0, 16);
	af_pause();
	check_rc(r, "ql_open (recovery)", rc, 0);
	if (!rc && (sc_maintain(c) ||
		    sc_append(c, SC_C + T_MIN, T_SEC, 20, 16) || sc_sync(c)))
		SC_FAIL(r, "%s after a successful open: %s: %s", c->where,
			ql_strerror(c->rc), c->msg);
	finish(c, r);
}

static void body_recovery(run *r)
{
	body_open_recovery(r, rec_tmpl);
}

static void body_rebuild(run *r)
{
	body_open_recovery(r, rebuild_tmpl);
}

/* Single records into three buckets under QL_SYNC_MANUAL (blocks of 4096:
 * only the appending thread allocates), then a disarmed sync. A record
 * that could not be taken is a clean QL_ENOMEM: no QL_EFAILED after it. */
static void body_append(run *r)
{
	sc_ctx *c = &wc;
	int rc;

	ctx_new(c, r);
	t_setclock(&c->now, SC_C + 2 * T_MIN);
	if ((rc = af_open(c, 0, 4096)))
		die("open", rc);
	af_start(r);
	for (int k = 0; k < 30; k++)
		ap_batch(c, r, SC_A + (k % 3) * T_HOUR + k * 10 * T_SEC, 1, 1,
			 0);
	af_pause();
	/* a single record that could not be taken is a clean error: the
	 * store goes on */
	if ((rc = ap_sync(c, NULL)))
		SC_FAIL(r, "ql_sync after the appends: %s: %s",
			ql_strerror(rc), ql_errmsg(NULL));
	finish(c, r);
}

/* Single records under QL_SYNC_EVERY_APPEND, blocks of 16: the writer
 * encodes, writes and syncs inside every call. */
static void body_append_every(run *r)
{
	sc_ctx *c = &wc;
	int rc;

	ctx_new(c, r);
	t_setclock(&c->now, SC_C + 2 * T_MIN);
	if ((rc = af_open(c, 1, 16)))
		die("open", rc);
	af_start(r);
	for (int k = 0; k < 40; k++)
		ap_batch(c, r, SC_A + (k % 2) * T_HOUR + k * 10 * T_SEC, 1, 1,
			 ALLOW_FAILED);
	af_pause();
	finish(c, r);
}

/* Batches of 24 spanning two buckets under QL_SYNC_MANUAL (blocks of
 * 4096): a failure at the second bucket's memtable comes after the
 * first half of the batch was taken, and must still be a clean
 * QL_ENOMEM (the half is put back): no QL_EFAILED, and the sync after
 * succeeds. */
static void body_batch(run *r)
{
	sc_ctx *c = &wc;
	int rc;

	ctx_new(c, r);
	t_setclock(&c->now, SC_C + 2 * T_MIN);
	if ((rc = af_open(c, 0, 4096)))
		die("open", rc);
	af_start(r);
	for (int b = 0; b < 5; b++)
		/* 12 records in one bucket, 12 in the next */
		ap_batch(c, r, SC_A + (b % 2) * T_HOUR + 54 * T_MIN +
				       b * 13 * T_SEC,
			 5 * T_MIN / 12, 24, 0);
	af_pause();
	rc = ql_sync(c->s);
	if (!rc)
		sc_ack_accepted(c);
	else
		SC_FAIL(r, "ql_sync after the batches: %s: %s",
			ql_strerror(rc), ql_errmsg(NULL));
	finish(c, r);
}

/* Batches of 40 over two buckets, blocks of 16: memtables freeze in the
 * middle of a batch. Under QL_SYNC_EVERY_APPEND ("batch-every") the writer
 * encodes, writes and syncs inside every call. Under QL_SYNC_MANUAL
 * ("batch-freeze") a batch that fails after freezing some must take them
 * back off the write queue (a failed append took nothing: its records
 * must never appear). The writer encodes the frozen blocks meanwhile, so
 * its own failures may disable it (QL_EFAILED) in both. */
static void batches_of_40(run *r, int every)
{
	sc_ctx *c = &wc;
	int rc;

	ctx_new(c, r);
	t_setclock(&c->now, SC_C + 2 * T_MIN);
	if ((rc = af_open(c, every, 16)))
		die("open", rc);
	af_start(r);
	for (int b = 0; b < 4; b++)
		ap_batch(c, r, SC_A + 50 * T_MIN + b * 41 * T_SEC,
			 T_HOUR / 40, 40, ALLOW_FAILED);
	af_pause();
	if (!every) {
		rc = ql_sync(c->s);
		if (!rc)
			sc_ack_accepted(c);
		else
			check_rc(r, "ql_sync (disarmed)", rc, ALLOW_FAILED);
	}
	finish(c, r);
}

static void body_batch_every(run *r)
{
	batches_of_40(r, 1);
}

static void body_batch_freeze(run *r)
{
	batches_of_40(r, 0);
}

/* Two threads appending one record at a time under QL_SYNC_EVERY_APPEND
 * (group commit): the interleaving varies from run to run. */
#define GROUP_THREADS 2
#define GROUP_APPENDS 16

typedef struct gworker {
	sc_ctx *c;
	unsigned t;
	int rc;
	char msg[512];
} gworker;

static void *group_worker(void *p)
{
	gworker *g = p;
	sc_ctx *c = g->c;

	for (unsigned k = 0; k < GROUP_APPENDS; k++) {
		uint32_t id = g->t * GROUP_APPENDS + k;
		sc_rec t;
		int rc;

		sc_make(&t, id, c->ts[id], 0);
		rc = ql_append(c->s, &t.r, 1, NULL);
		if (rc) {
			g->rc = rc;
			snprintf(g->msg, sizeof(g->msg), "%s",
				 ql_errmsg(NULL));
			return NULL;
		}
		c->accepted[id] = 1;
		c->acked[id] = 1;
	}
	return NULL;
}

static void body_group(run *r)
{
	sc_ctx *c = &wc;
	gworker g[GROUP_THREADS];
	pthread_t th[GROUP_THREADS];
	int rc;

	ctx_new(c, r);
	t_setclock(&c->now, SC_A + 30 * T_MIN);
	if ((rc = af_open(c, 1, 16)))
		die("open", rc);
	c->nrec = GROUP_THREADS * GROUP_APPENDS;
	for (uint32_t id = 0; id < c->nrec; id++) {
		c->ts[id] = SC_A + (int64_t)id * T_SEC;
		c->tried[id] = 1;
	}
	af_start(r);
	for (unsigned t = 0; t < GROUP_THREADS; t++) {
		g[t] = (gworker){ c, t, 0, "" };
		if (pthread_create(&th[t], NULL, group_worker, &g[t]))
			abort();
	}
	for (unsigned t = 0; t < GROUP_THREADS; t++)
		pthread_join(th[t], NULL);
	af_pause();
	for (unsigned t = 0; t < GROUP_THREADS; t++)
		check_msg(r, "ql_append (thread)", g[t].rc, g[t].msg,
			  ALLOW_FAILED);
	finish(c, r);
}

/* Rounds of 15 records into three buckets (disarmed: less than a block,
 * so the writer is idle), then an armed ql_sync: the writer thread
 * creates, encodes, writes, indexes and syncs while the caller waits. */
static void body_sync(run *r)
{
	sc_ctx *c = &wc;
	int rc;

	ctx_new(c, r);
	t_setclock(&c->now, SC_C + 2 * T_MIN);
	if ((rc = af_open(c, 0, 16)))
		die("open", rc);
	af_start(r);
	for (int round = 0; round < 4; round++) {
		af_pause();
		for (int b = 0; b < 3; b++) {
			rc = ap_batch(c, NULL, SC_A + b * T_HOUR +
						       round * 15 * T_SEC,
				      T_SEC, 15, 0);
			if (rc && !(af_hit() && rc == QL_EFAILED))
				SC_FAIL(r, "disarmed append: %s: %s",
					ql_strerror(rc), ql_errmsg(NULL));
		}
		af_resume();
		if (ap_sync(c, r))
			break;
	}
	af_pause();
	finish(c, r);
}

/* Sealing: A is due; then a late record for A (generation 1) and B due. */
static void body_maintain(run *r)
{
	sc_ctx *c = &wc;
	int rc;

	ctx_new(c, r);
	t_setclock(&c->now, SC_A + 50 * T_MIN);
	if ((rc = af_open(c, 0, 16)) ||
	    ap_batch(c, NULL, SC_A + 10 * T_MIN, 5 * T_SEC, 40, 0) ||
	    ap_sync(c, NULL))
		die("maintain setup", rc);
	t_setclock(&c->now, SC_B + 5 * T_MIN);
	if (ap_batch(c, NULL, SC_B, 5 * T_SEC, 40, 0) || ap_sync(c, NULL))
		die("maintain setup B", QL_EINVAL);
	af_start(r);
	rc = ql_maintain(c->s);
	af_pause();
	check_rc(r, "ql_maintain (seals A)", rc, ALLOW_FAILED);
	if (!rc) {
		if (ap_batch(c, NULL, SC_A + 59 * T_MIN, 1, 3, 0) ||
		    ap_sync(c, NULL))
			SC_FAIL(r, "late records after a good maintain: %s",
				ql_errmsg(NULL));
		t_setclock(&c->now, SC_C + 2 * T_MIN);
		af_resume();
		rc = ql_maintain(c->s);
		af_pause();
		check_rc(r, "ql_maintain (seals A g1 and B)", rc,
			 ALLOW_FAILED);
	}
	finish(c, r);
}

/* Closing with unsynced records in two buckets, one of them due for
 * sealing: the final sync and seal happen inside ql_close. */
static void body_close(run *r)
{
	sc_ctx *c = &wc;
	int rc;

	ctx_new(c, r);
	t_setclock(&c->now, SC_A + 50 * T_MIN);
	if ((rc = af_open(c, 0, 4096)) ||
	    ap_batch(c, NULL, SC_A + 10 * T_MIN, 5 * T_SEC, 40, 0) ||
	    ap_sync(c, NULL))
		die("close setup", rc);
	t_setclock(&c->now, SC_B + 5 * T_MIN);
	if (ap_batch(c, NULL, SC_A + 50 * T_MIN, T_SEC, 5, 0) ||
	    ap_batch(c, NULL, SC_B, 5 * T_SEC, 30, 0))
		die("close setup B", QL_EINVAL);
	af_start(r);
	rc = ql_close(c->s);
	af_pause();
	c->s = NULL;
	check_rc(r, "ql_close", rc, ALLOW_FAILED);
	if (!rc)
		sc_ack_accepted(c);
	finish(c, r);
}

/* The whole faultvfs script armed: open, appends, syncs, sealing, late
 * records, close, reopen under QL_SYNC_EVERY_APPEND, more. */
static void body_script(run *r)
{
	sc_ctx *c = &wc;

	ctx_new(c, r);
	af_start(r);
	sc_run(c);
	af_pause();
	check_msg(r, c->where[0] ? c->where : "script", c->rc, c->msg,
		  ALLOW_FAILED);
	finish(c, r);
}

/* ---------------------------------------------------------------------- */
/* reading paths (the shared store)                                        */
/* ---------------------------------------------------------------------- */

static void body_cursor(run *r, const qdef *d)
{
	const ql_record *rec;
	ql_cursor *cur = NULL;
	size_t got = 0;
	unsigned errs = 0;
	int rc;

	af_start(r);
	rc = ql_cursor_open(&cur, shared.s, &d->q);
	if (rc) {
		af_pause();
		check_rc(r, "ql_cursor_open", rc, 0);
		if (cur)
			SC_FAIL(r, "ql_cursor_open failed but set *out");
		return;
	}
	for (;;) {
		uint32_t id;

		rc = ql_cursor_next(cur, &rec);
		if (rc == QL_DONE)
			break;
		if (rc < 0) {
			af_pause();
			check_rc(r, "ql_cursor_next", rc, 0);
			if (rec)
				SC_FAIL(r, "ql_cursor_next failed but set "
					"*rec");
			/* a step that failed can be retried */
			if (++errs > 2)
				break;
			continue;
		}
		if (rec_id(r, &rd, rec, &id))
			break;
		if (got >= d->nwant[1] || d->want[1][got] != id) {
			SC_FAIL(r, "cursor %s: record %u at position %zu is "
				"not the expected one (after %u failed "
				"steps)", d->name, id, got, errs);
			break;
		}
		got++;
	}
	af_pause();
	if (rc == QL_DONE && got != d->nwant[1])
		SC_FAIL(r, "cursor %s: %zu records, expected %zu (after %u "
			"failed steps)", d->name, got, d->nwant[1], errs);
	ql_cursor_close(cur);
}

#define CURSOR_BODY(i)                                                       \
	static void body_cursor_##i(run *r)                                  \
	{                                                                    \
		body_cursor(r, &queries[i]);                                 \
	}
CURSOR_BODY(0)
CURSOR_BODY(1)
CURSOR_BODY(2)
CURSOR_BODY(3)
CURSOR_BODY(4)
CURSOR_BODY(5)
CURSOR_BODY(6)
CURSOR_BODY(7)

static void body_open_readonly(run *r)
{
	ql_options o = sc_opts(&shared.now, 0);
	ql_store *s = NULL;
	int rc;

	o.flags = QL_OPEN_READONLY;
	af_start(r);
	rc = ql_open(&s, shared.dir, &o);
	af_pause();
	check_rc(r, "ql_open (read-only)", rc, 0);
	if (rc) {
		if (s)
			SC_FAIL(r, "ql_open failed but set *out");
		return;
	}
	/* a reader without its index still answers exactly */
	q_check(r, s, &queries[0], 1, &rd, "read-only store");
	q_check(r, s, &queries[6], 1, &rd, "read-only store");
	rc = ql_close(s);
	if (rc)
		SC_FAIL(r, "ql_close of a reader: %s", ql_strerror(rc));
}

static void body_stat(run *r)
{
	ql_stats st;
	int rc;

	af_start(r);
	rc = ql_stat(shared.s, &st);
	af_pause();
	check_rc(r, "ql_stat", rc, 0);
	if (!rc && memcmp(&st, &want_stats, sizeof(st)))
		SC_FAIL(r, "ql_stat: statistics differ from the expected");
}

static void body_segments(run *r)
{
	static seglist got;
	int rc;

	got.n = 0;
	af_start(r);
	rc = ql_segments(shared.s, 1, seg_collect, &got);
	af_pause();
	check_rc(r, "ql_segments (verify)", rc, 0);
	if (got.n > want_segs.n || (!rc && got.n != want_segs.n)) {
		SC_FAIL(r, "ql_segments: %zu segments, expected %zu", got.n,
			want_segs.n);
		return;
	}
	for (size_t i = 0; i < got.n; i++)
		if (!seg_same(&got.v[i], &want_segs.v[i]))
			SC_FAIL(r, "ql_segments: %s differs from the expected "
				"(status %s)", got.v[i].name,
				ql_strerror(got.v[i].status));
}

static void body_hold_list(run *r)
{
	static hlist got;
	int rc;

	got.n = 0;
	af_start(r);
	rc = ql_hold_list(shared.s, hold_collect, &got);
	af_pause();
	check_rc(r, "ql_hold_list", rc, 0);
	if (rc ? !holds_prefix(&got, &want_holds)
	       : !holds_equal(&got, &want_holds))
		SC_FAIL(r, "ql_hold_list: holds differ from the expected");
}

static void body_audit_read(run *r)
{
	evcmp e = { &want_events, 0, 0 }, o = { &want_events_order, 0, 0 };
	int rc;

	af_start(r);
	rc = ql_audit_read(shared.s, 0, NULL, ev_compare, &e);
	af_pause();
	check_rc(r, "ql_audit_read", rc, 0);
	if (e.bad || (!rc && e.n != want_events.n))
		SC_FAIL(r, "ql_audit_read: %zu events, not the expected %zu",
			e.n, want_events.n);
	af_resume();
	rc = ql_audit_read(shared.s, 0, "ORD-READ", ev_compare, &o);
	af_pause();
	check_rc(r, "ql_audit_read (one order)", rc, 0);
	if (o.bad || (!rc && o.n != want_events_order.n))
		SC_FAIL(r, "ql_audit_read (ORD-READ): %zu events, not the "
			"expected %zu", o.n, want_events_order.n);
}

/* The parsers allocate nothing: a run must not reach N = 1. */
static void body_parse(run *r)
{
	static const char *const handles[] = {
		"+14155550123", "tel:+4915112345678", "Bob@Example.COM",
		"mailto:a.b@c.example.org", "+1-415-555", "x@y", "",
	};
	static const char *const ips[] = {
		"203.0.113.7", "2001:db8::1", "::ffff:10.0.0.1", "1.2.3",
		"10.0.0.0/8", "2001:db8::/32", "10.0.0.1/8", "fe80::1%eth0",
	};
	static const char *const times[] = {
		"2026-11-01T12:00:00Z", "2026-11-01", "-2h", "now",
		"2026-11-01T12:00:00.123456+02:00", "yesterday",
	};
	char out[QL_HANDLE_MAX + 1];
	uint8_t ip[16];
	unsigned plen;
	int64_t t;
	unsigned long sum = 0;

	af_start(r);
	for (size_t i = 0; i < sizeof(handles) / sizeof(*handles); i++)
		sum += (unsigned)ql_handle_parse(out, sizeof(out), handles[i],
						 "h");
	for (size_t i = 0; i < sizeof(ips) / sizeof(*ips); i++) {
		sum += (unsigned)ql_ip_parse(ip, ips[i], "ip");
		sum += (unsigned)ql_cidr_parse(ip, &plen, ips[i], "net");
		sum += (unsigned)ql_ip_format(out, sizeof(out), ip);
	}
	for (size_t i = 0; i < sizeof(times) / sizeof(*times); i++) {
		sum += (unsigned)ql_time_parse(&t, times[i], T_EPOCH, "t");
		sum += (unsigned)ql_duration_parse(&t, times[i], "d");
		sum += (unsigned)ql_time_format(out, sizeof(out), T_EPOCH + 7);
	}
	af_pause();
	(void)sum;
	if (af_hit())
		SC_FAIL(r, "a parser allocated");
}

/* ---------------------------------------------------------------------- */
/* audit, holds, expiry, reindex (each run on its own copy)                */
/* ---------------------------------------------------------------------- */

static void body_audit_query(run *r)
{
	sc_ctx *c = &wc;
	char text[64];
	unsigned n;
	int rc, rrc;

	ctx_copy(c, r, &hold_model, hold_tmpl);
	t_setclock(&c->now, HOLD_NOW);
	if ((rc = af_open(c, 0, 16)))
		die("open", rc);
	snprintf(text, sizeof(text), "handle +14155550123 run %lu", r->n);
	af_start(r);
	rc = ql_audit_query(c->s, "inspector", "ORD-ACTIVE", text);
	af_pause();
	check_rc(r, "ql_audit_query", rc, 0);
	n = events_with(c->s, "ORD-ACTIVE", text, NULL, &rrc);
	if (rrc)
		SC_FAIL(r, "audit trail unreadable after ql_audit_query: %s: "
			"%s", ql_strerror(rrc), ql_errmsg(NULL));
	else if (n != (rc ? 0u : 1u))
		SC_FAIL(r, "ql_audit_query returned %s and the trail has %u "
			"such events", ql_strerror(rc), n);
	if ((rc = ql_close(c->s)))
		SC_FAIL(r, "close: %s", ql_strerror(rc));
	c->s = NULL;
	ctx_done(c);
}

static hlist hold_before, hold_after[3];
static unsigned hold_ev_before[3];
static const char *const hold_events[3] = { "\"event\":\"hold_placed\"",
					    "\"event\":\"hold_extended\"",
					    "\"event\":\"hold_released\"" };
static const char *const hold_orders[3] = { "ORD-NEW", "ORD-ACTIVE",
					    "ORD-ACTIVE" };

static int hold_op(ql_store *s, int op)
{
	static const char *const subj[] = { "tel:+4915112345678",
					    "mailto:Bob@Example.org",
					    "2001:db8::/32", "192.0.2.1" };
	ql_hold h = QL_HOLD_INIT;

	switch (op) {
	case 0:
		h.order_id = "ORD-NEW";
		h.from = SC_A;
		h.to = QL_HOLD_OPEN_END;
		h.expires = HOLD_NOW + 5 * T_DAY;
		h.reason = "trap and trace, order 18";
		h.placed_by = "judge";
		h.subjects = subj;
		h.nsubjects = 4;
		return ql_hold_place(s, &h);
	case 1:
		return ql_hold_extend(s, "ORD-ACTIVE", 0, "judge");
	default:
		return ql_hold_release(s, "ORD-ACTIVE", "clerk");
	}
}

/* The hold list before and after each operation, without injection. */
static void take_hold_expected(void)
{
	static sc_ctx c;
	int rc;

	for (int op = 0; op < 3; op++) {
		ctx_copy(&c, NULL, &hold_model, hold_tmpl);
		c.now = HOLD_NOW;
		if ((rc = af_open(&c, 0, 16)))
			die("hold expected open", rc);
		if (op == 0 &&
		    (rc = ql_hold_list(c.s, hold_collect, &hold_before)))
			die("hold list before", rc);
		hold_ev_before[op] = events_with(c.s, hold_orders[op],
						 hold_events[op], NULL, &rc);
		if (rc || (rc = hold_op(c.s, op)) ||
		    (rc = ql_hold_list(c.s, hold_collect, &hold_after[op])))
			die("hold expected op", rc);
		if (events_with(c.s, hold_orders[op], hold_events[op], NULL,
				&rc) != hold_ev_before[op] + 1 || rc)
			die("hold expected event", rc);
		if ((rc = ql_close(c.s)))
			die("hold expected close", rc);
		ctx_done(&c);
	}
}

static void body_hold(run *r, int op)
{
	static const char *const what[3] = { "ql_hold_place",
					     "ql_hold_extend",
					     "ql_hold_release" };
	static hlist got;
	sc_ctx *c = &wc;
	unsigned n;
	int rc, lrc, arc;

	ctx_copy(c, r, &hold_model, hold_tmpl);
	t_setclock(&c->now, HOLD_NOW);
	if ((rc = af_open(c, 0, 16)))
		die("open", rc);
	af_start(r);
	rc = hold_op(c->s, op);
	af_pause();
	check_rc(r, what[op], rc, 0);
	got.n = 0;
	lrc = ql_hold_list(c->s, hold_collect, &got);
	n = events_with(c->s, hold_orders[op], hold_events[op], NULL, &arc);
	if (lrc || arc) {
		SC_FAIL(r, "after %s: holds or audit unreadable: %s / %s",
			what[op], ql_strerror(lrc), ql_strerror(arc));
	} else if (!rc) {
		if (!holds_equal(&got, &hold_after[op]))
			SC_FAIL(r, "%s returned 0 but the holds are not as "
				"expected", what[op]);
		if (n != hold_ev_before[op] + 1)
			SC_FAIL(r, "%s returned 0 but its audit event is "
				"missing", what[op]);
	} else if (holds_equal(&got, &hold_before)) {
		if (n != hold_ev_before[op])
			SC_FAIL(r, "%s failed and changed nothing, but was "
				"audited", what[op]);
	} else if (holds_equal(&got, &hold_after[op])) {
		/* saved, then its audit event failed: what a crash between
		 * the two leaves, but an allocation failure must not (the
		 * event is built before the save) */
		SC_FAIL(r, "%s failed for want of memory after saving the "
			"change (%s audited)", what[op],
			n != hold_ev_before[op] ? "and" : "not");
		saved_unaudited++;
	} else {
		SC_FAIL(r, "%s failed and left the holds neither as before "
			"nor as after", what[op]);
	}
	if ((rc = ql_close(c->s)))
		SC_FAIL(r, "close: %s", ql_strerror(rc));
	c->s = NULL;
	ctx_done(c);
}

static void body_hold_place(run *r)
{
	body_hold(r, 0);
}

static void body_hold_extend(run *r)
{
	body_hold(r, 1);
}

static void body_hold_release(run *r)
{
	body_hold(r, 2);
}

/* What a segment of the expiry template is now: 0 gone, 1 there, 2 marked
 * for deletion (.del). */
static int seg_state(const sc_ctx *c, int i)
{
	char p[600];

	snprintf(p, sizeof(p), "%s/seg/%s", c->dir, exp_names[i]);
	if (access(p, F_OK) == 0)
		return 1;
	snprintf(p, sizeof(p), "%s/seg/%s.del", c->dir, exp_names[i]);
	return access(p, F_OK) == 0 ? 2 : 0;
}

#define EXP_A 0
#define EXP_B 1
#define EXP_C 2
#define EXP_E 3
#define EXP_DD 4

typedef struct expdec {
	size_t n;
	char name[8][64];
	int action[8];
} expdec;
static expdec exp_want;

static int exp_collect(const ql_expiry *e, void *ctx)
{
	expdec *d = ctx;

	if (d->n < 8) {
		snprintf(d->name[d->n], sizeof(d->name[d->n]), "%s", e->name);
		d->action[d->n] = e->action;
	}
	d->n++;
	return 0;
}

static void take_expire_expected(void)
{
	static sc_ctx c;
	int rc;

	ctx_copy(&c, NULL, &exp_model, exp_tmpl);
	c.now = EXP_NOW;
	if ((rc = af_open(&c, 0, 16)) ||
	    (rc = ql_expire(c.s, 1, "cron", exp_collect, &exp_want)) ||
	    exp_want.n != 5 || exp_want.action[EXP_A] != QL_EXPIRE_DELETE ||
	    exp_want.action[EXP_B] != QL_EXPIRE_HELD ||
	    exp_want.action[EXP_C] != QL_EXPIRE_DELETE ||
	    exp_want.action[EXP_E] != QL_EXPIRE_DELETE ||
	    exp_want.action[EXP_DD] != QL_EXPIRE_YOUNG)
		die("expected expiry plan", rc);
	if ((rc = ql_close(c.s)))
		die("expected expiry close", rc);
	ctx_done(&c);
}

static void body_expire(run *r)
{
	sc_ctx *c = &wc;
	char a[600], b[600];
	static hlist got;
	int rc, rrc, st;

	ctx_copy(c, r, &exp_model, exp_tmpl);
	t_setclock(&c->now, EXP_NOW);
	if ((rc = af_open(c, 0, 16)))
		die("open", rc);
	/* another process's expiry of E stopped after the rename */
	path_in(b, sizeof(b), c->dir, "seg/");
	name_cat(a, sizeof(a), b, exp_names[EXP_E]);
	name_cat(b, sizeof(b), a, ".del");
	if (rename(a, b))
		die("rename E", 0);
	af_start(r);
	rc = ql_expire(c->s, 0, "cron", NULL, NULL);
	af_pause();
	check_rc(r, "ql_expire", rc, 0);
	/* the trail never misses a deletion */
	for (int i = EXP_A; i <= EXP_C; i += 2) {
		if (seg_state(c, i) == 1)
			continue;
		if (!events_with(c->s, NULL, "\"event\":\"segment_expired\"",
				 exp_names[i], &rrc) || rrc)
			SC_FAIL(r, "%s was deleted without its audit event "
				"(%s)", exp_names[i], ql_strerror(rrc));
	}
	if (seg_state(c, EXP_B) != 1 || seg_state(c, EXP_DD) != 1)
		SC_FAIL(r, "a held or young segment was deleted");
	rc = ql_close(c->s);
	c->s = NULL;
	check_rc(r, "ql_close (disarmed, after the run)", rc, ALLOW_FAILED);

	/* the next sweep, without injection, finishes the job */
	if ((rc = af_open(c, 0, 16))) {
		SC_FAIL(r, "reopen: %s: %s", ql_strerror(rc), ql_errmsg(NULL));
		ctx_done(c);
		return;
	}
	rc = ql_expire(c->s, 0, "cron", NULL, NULL);
	if (rc)
		SC_FAIL(r, "the next sweep: %s: %s", ql_strerror(rc),
			ql_errmsg(NULL));
	for (int i = 0; i < 5; i++) {
		st = seg_state(c, i);
		if (st != (i == EXP_B || i == EXP_DD))
			SC_FAIL(r, "after the next sweep %s is %s", exp_names[i],
				st == 2 ? "marked .del" : st ? "there" : "gone");
		if ((i == EXP_A || i == EXP_C) &&
		    (!events_with(c->s, NULL, "\"event\":\"segment_expired\"",
				  exp_names[i], &rrc) || rrc))
			SC_FAIL(r, "no audit event for the expiry of %s",
				exp_names[i]);
	}
	got.n = 0;
	rc = ql_hold_list(c->s, hold_collect, &got);
	if (rc || got.n != 2 || got.v[0].state != QL_HOLD_ACTIVE ||
	    got.v[1].state != QL_HOLD_LAPSED)
		SC_FAIL(r, "holds after expiry: %s, %zu holds", ql_strerror(rc),
			got.n);
	sc_scan(c, c->s, "after expiry");
	if ((rc = ql_close(c->s)))
		SC_FAIL(r, "close: %s", ql_strerror(rc));
	c->s = NULL;
	ctx_done(c);
}

static void body_expire_dry(run *r)
{
	sc_ctx *c = &wc;
	static expdec got;
	int rc;

	ctx_copy(c, r, &exp_model, exp_tmpl);
	t_setclock(&c->now, EXP_NOW);
	if ((rc = af_open(c, 0, 16)))
		die("open", rc);
	got.n = 0;
	af_start(r);
	rc = ql_expire(c->s, 1, "cron", exp_collect, &got);
	af_pause();
	check_rc(r, "ql_expire (dry run)", rc, 0);
	if (got.n > exp_want.n || (!rc && got.n != exp_want.n))
		SC_FAIL(r, "dry run: %zu decisions, expected %zu", got.n,
			exp_want.n);
	for (size_t i = 0; i < got.n && i < exp_want.n; i++)
		if (strcmp(got.name[i], exp_want.name[i]) ||
		    got.action[i] != exp_want.action[i])
			SC_FAIL(r, "dry run: decision %zu differs", i);
	for (int i = 0; i < 5; i++)
		if (seg_state(c, i) != 1)
			SC_FAIL(r, "a dry run changed %s", exp_names[i]);
	if ((rc = ql_close(c->s)))
		SC_FAIL(r, "close: %s", ql_strerror(rc));
	c->s = NULL;
	ctx_done(c);
}

static int seg_indexed(const ql_segment_info *i, void *ctx)
{
	run *r = ctx;

	if (!i->indexed)
		SC_FAIL(r, "%s is not indexed after reopening", i->name);
	return 0;
}

static void body_reindex(run *r)
{
	sc_ctx *c = &wc;
	ql_stats st;
	int rc;

	ctx_copy(c, r, &rd_base, rd_tmpl);
	t_setclock(&c->now, SHARED_NOW);
	if ((rc = af_open(c, 0, 16)))
		die("open", rc);
	af_start(r);
	rc = ql_reindex(c->s);
	af_pause();
	check_rc(r, "ql_reindex", rc, 0);
	/* the index is derived: queries stay exact whatever became of it */
	for (size_t i = 0; i < nqueries; i++)
		q_check(r, c->s, &queries[i], 0, &rd_base, "after reindex");
	rc = ql_close(c->s);
	c->s = NULL;
	check_rc(r, "ql_close (disarmed, after the run)", rc, ALLOW_FAILED);
	/* reopening repairs whatever the failure left of the index */
	if ((rc = af_open(c, 0, 16))) {
		SC_FAIL(r, "reopen: %s: %s", ql_strerror(rc), ql_errmsg(NULL));
		ctx_done(c);
		return;
	}
	if ((rc = ql_stat(c->s, &st)) || st.index_error)
		SC_FAIL(r, "after reopening: stat %s, index error %d",
			ql_strerror(rc), st.index_error);
	if ((rc = ql_segments(c->s, 0, seg_indexed, r)))
		SC_FAIL(r, "after reopening: segments: %s", ql_strerror(rc));
	for (size_t i = 0; i < nqueries; i++)
		q_check(r, c->s, &queries[i], 0, &rd_base, "reopened");
	if ((rc = ql_close(c->s)))
		SC_FAIL(r, "close: %s", ql_strerror(rc));
	c->s = NULL;
	ctx_done(c);
}

/* ---------------------------------------------------------------------- */
/* the loop                                                                */
/* ---------------------------------------------------------------------- */

static const struct apath {
	const char *name;
	void (*body)(run *r);
} paths[] = {
	{ "open-new", body_open_new },
	{ "open-readonly", body_open_readonly },
	{ "recovery", body_recovery },
	{ "rebuild", body_rebuild },
	{ "append", body_append },
	{ "append-every", body_append_every },
	{ "batch", body_batch },
	{ "batch-every", body_batch_every },
	{ "batch-freeze", body_batch_freeze },
	{ "group", body_group },
	{ "group-2", body_group },
	{ "group-3", body_group },
	{ "sync", body_sync },
	{ "maintain", body_maintain },
	{ "close", body_close },
	{ "script", body_script },
	{ "cursor-scan", body_cursor_0 },
	{ "cursor-window", body_cursor_1 },
	{ "cursor-handle", body_cursor_2 },
	{ "cursor-target", body_cursor_3 },
	{ "cursor-none", body_cursor_4 },
	{ "cursor-ip", body_cursor_5 },
	{ "cursor-cidr4", body_cursor_6 },
	{ "cursor-cidr6", body_cursor_7 },
	{ "stat", body_stat },
	{ "segments", body_segments },
	{ "hold-list", body_hold_list },
	{ "audit-read", body_audit_read },
	{ "audit-query", body_audit_query },
	{ "hold-place", body_hold_place },
	{ "hold-extend", body_hold_extend },
	{ "hold-release", body_hold_release },
	{ "expire", body_expire },
	{ "expire-dry", body_expire_dry },
	{ "reindex", body_reindex },
	{ "parse", body_parse },
};

/* QL_ALLOCFAIL_ONLY=path/N[/sticky] selects one run; QL_ALLOCFAIL_PATHS a
 * list of path name prefixes. */
static int wanted(const char *name, int sticky, unsigned long *only_n)
{
	const char *only = getenv("QL_ALLOCFAIL_ONLY");
	const char *list = getenv("QL_ALLOCFAIL_PATHS");
	size_t len = strlen(name);
	char *end;

	*only_n = 0;
	if (only && *only) {
		if (strncmp(only, name, len) || only[len] != '/')
			return 0;
		*only_n = strtoul(only + len + 1, &end, 10);
		return *only_n > 0 && sticky == !strcmp(end, "/sticky");
	}
	if (!list || !*list)
		return 1;
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");

		if (n && !strncmp(p, name, n))
			return 1;
		p += n + (p[n] == ',');
	}
	return 0;
}

typedef struct loopstat {
	int ran;
	unsigned long points, covered, absorbed, failed, stride;
} loopstat;

/* N = only_n, or 1, 1 + stride, ... until a run does not reach N. */
static void path_loop(const struct apath *p, int sticky, unsigned long stride,
		      unsigned long only_n, loopstat *st)
{
	unsigned long n, last_hit = 0;

	memset(st, 0, sizeof(*st));
	st->ran = 1;
	st->stride = stride;
	atomic_store(&af_sticky, sticky);
	for (n = only_n ? only_n : 1;; n += stride) {
		run r;
		long live0 = atomic_load(&af_live);
		unsigned before = sc_failures;
		int hit;

		memset(&r, 0, sizeof(r));
		r.n = n;
		snprintf(r.label, sizeof(r.label), "%s/%lu%s", p->name, n,
			 sticky ? "/sticky" : "");
		af_nsite = 0;
		p->body(&r);
		af_pause();
		hit = af_hit();
		total_runs++;
		if (atomic_load(&af_live) != live0)
			SC_FAIL(&r, "%ld allocations were not freed by the "
				"end of the run", atomic_load(&af_live) - live0);
		if (hit) {
			st->covered++;
			last_hit = n;
			if (!r.errors)
				st->absorbed++;
		}
		if (sc_failures > before) {
			st->failed++;
			if (hit && sc_printed <= 60)
				af_print_site();
		} else if (verbose && hit) {
			fprintf(stderr, "  [%s] %s\n", r.label,
				r.errors ? "clean error" : "absorbed");
			af_print_site();
		}
		if (!hit || only_n) {
			/* the allocations of a run that did not reach N (the
			 * writer thread may make the count vary a little) */
			st->points = atomic_load(&af_count);
			if (st->points < last_hit)
				st->points = last_hit;
			break;
		}
		if (n > 1000000)
			abort(); /* the count must end somewhere */
	}
	atomic_store(&af_sticky, 0);
#ifdef AF_LSAN
	if (__lsan_do_recoverable_leak_check())
		SC_FAIL(&(run){ .label = "leak check" }, "LeakSanitizer found "
			"leaks after path %s (report above)", p->name);
#endif
	if (only_n)
		printf("allocfail: %s/%lu%s: %s\n", p->name, only_n,
		       sticky ? "/sticky" : "",
		       st->covered ? (st->failed ? "FAILED" : "ok")
				   : "not reached");
}

static void path_run(const struct apath *p, unsigned long stride_once,
		     unsigned long stride_sticky)
{
	loopstat once, sticky;
	unsigned long only_once, only_sticky;
	int want_once = wanted(p->name, 0, &only_once);
	int want_sticky = wanted(p->name, 1, &only_sticky);

	memset(&once, 0, sizeof(once));
	memset(&sticky, 0, sizeof(sticky));
	if (stride_once && want_once)
		path_loop(p, 0, stride_once, only_once, &once);
	if (stride_sticky && want_sticky)
		path_loop(p, 1, stride_sticky, only_sticky, &sticky);
	if (only_once || only_sticky || (!once.ran && !sticky.ran))
		return;
	paths_run++;
	total_points += once.ran ? once.points : sticky.points;
	total_absorbed += once.absorbed + sticky.absorbed;
	printf("allocfail: %-14s %4lu allocation points: %4lu failed once",
	       p->name, once.ran ? once.points : sticky.points,
	       once.covered);
	if (once.ran && once.stride > 1)
		printf(" (stride %lu)", once.stride);
	printf(", %4lu from there on", sticky.covered);
	if (sticky.ran && sticky.stride > 1)
		printf(" (stride %lu)", sticky.stride);
	printf("%s\n", once.failed || sticky.failed ? "  FAILED" : "");
}

/* The --wrap options must reach the library's objects: an open of a new
 * store allocates. */
static void check_wrap(void)
{
	run r = { "wrap-check", (unsigned long)-1, 0 };
	sc_ctx *c = &wc;
	int rc;

	ctx_new(c, &r);
	t_setclock(&c->now, SC_A);
	af_start(&r);
	rc = af_open(c, 0, 16);
	af_pause();
	if (rc)
		die("wrap check open", rc);
	if (atomic_load(&af_count) == 0) {
		fprintf(stderr, "allocfail: the library's allocations do not "
			"go through __wrap_malloc: check the link options\n");
		exit(2);
	}
	ql_close(c->s);
	c->s = NULL;
	ctx_done(c);
}

static unsigned long env_ul(const char *name, unsigned long dflt)
{
	const char *e = getenv(name);

	return e && *e ? strtoul(e, NULL, 10) : dflt;
}

int main(void)
{
	unsigned long stride_once, stride_sticky;
	ssize_t k;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[k > 0 ? k : 0] = '\0';
	verbose = getenv("QL_ALLOCFAIL_VERBOSE") != NULL;
	stride_once = env_ul("QL_ALLOCFAIL_STRIDE", 1);
	stride_sticky = env_ul("QL_ALLOCFAIL_STICKY_STRIDE", 4);
	if (env_ul("QL_ALLOCFAIL_EXHAUSTIVE", 0))
		stride_once = stride_sticky = 1;
	{
		/* load the unwinder now, not inside an allocation */
		void *f[2];

		backtrace(f, 2);
	}
	sc_pick_tmpdir();
	check_wrap();
	q_define();
	make_read_template();
	make_recovery_template();
	make_hold_template();
	make_expire_template();
	take_expected();
	take_hold_expected();
	take_expire_expected();

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		path_run(&paths[i], stride_once, stride_sticky);

	rc = ql_close(shared.s);
	shared.s = NULL;
	if (rc)
		SC_FAIL(&shared, "close of the shared store: %s",
			ql_strerror(rc));
	ctx_done(&shared);
	t_rmrf(rd_tmpl);
	t_rmrf(rec_tmpl);
	t_rmrf(rebuild_tmpl);
	t_rmrf(hold_tmpl);
	t_rmrf(exp_tmpl);
	for (size_t i = 0; i < nqueries; i++) {
		free(queries[i].want[0]);
		free(queries[i].want[1]);
	}
	ev_free(&want_events);
	ev_free(&want_events_order);
	printf("allocfail: %lu allocation points on %u paths, %lu runs (%lu "
	       "failures absorbed without an error, %lu hold changes saved "
	       "but not audited)\n", total_points, paths_run, total_runs,
	       total_absorbed, saved_unaudited);
	printf("allocfail: %s\n", sc_failures ? "FAILED" : "all passed");
	return sc_failures ? 1 : 0;
}
