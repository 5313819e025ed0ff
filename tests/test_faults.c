/* test_faults.c - every I/O operation of a store's life fails, one at a
 * time.
 *
 * For each kind of fault (EIO, ENOSPC, a short write that is retried, a
 * short write after which the disk is full) and for N = 1, 2, ... the Nth
 * counted operation (faultvfs.h) fails, during:
 *   ingest    the script of faultvfs_script.h from an empty directory:
 *             creation, appends, syncs, sealing, a clean reopen;
 *   recovery  a reopen of a store that needs every kind of repair (a torn
 *             tail, two unsealed generations of one bucket, an empty
 *             segment, leftover .tmp files), then sealing and appends;
 *   group     two threads appending one record at a time under
 *             QL_SYNC_EVERY_APPEND, sharing fsyncs (group commit): the
 *             order of their operations varies from run to run, so this
 *             loop covers a sample of the interleavings;
 *   holds     the maintenance script of faultvfs_script.h (from the store
 *             the ingest script leaves), failing only the operations of
 *             its hold changes: place, extend (by the period and to a
 *             given expiry), release, and the lapse a change records
 *             first; the steps between (appends, expiries) run clean;
 *   expire    the same script, failing only inside its two ql_expire
 *             calls (sealing what is due, a held and an unheld past-due
 *             segment, the audit events, the renames, unlinks, fsyncs);
 *   reindex   the same script, failing only inside ql_reindex (few
 *             points: LMDB does its own I/O, outside the seam).
 * The loop ends when a run completes without reaching the fault. For every
 * N it checks:
 *   - the failing call returns QL_EIO/QL_ENOSPC (or QL_EFAILED when the
 *     writer thread met the fault first) and its message names the file;
 *   - after a failure of the writer, the store refuses appends, syncs
 *     and maintenance with QL_EFAILED, still naming the cause; after a
 *     hold change, expiry or reindex failed in its own files the writer
 *     goes on (an append is acknowledged and must survive); either way a
 *     cursor still reads every acknowledged record and indexed queries
 *     answer as a scan does;
 *   - reopening with the real vfs, both the directory as the process left
 *     it and the directory after a simulated power cut at that moment,
 *     succeeds with no manual step and passes sc_check: every
 *     acknowledged record exactly once unless legitimately expired,
 *     nothing duplicated or damaged; every acknowledged hold change there,
 *     a failed one whole or absent; what an acknowledged expiry deleted
 *     still gone, nothing young or held deleted; an audit trail that
 *     verifies and records every acknowledged change and every deletion;
 *     indexed queries equal to a brute-force filter of the scan; verify
 *     clean; a new ql_expire finishes any interrupted deletion (no .del
 *     left, no index entry for a gone segment); sealing; appends.
 * QL_FAULT_KINDS=eio,enospc,short,shortfull picks the kinds (default all);
 * QL_FAULT_ONLY=recovery/eio/4 (or holds/shortfull/17, ...) runs one fault
 * point (see selected()).
 * Prints the number of fault points covered; exits 1 on any failure. */
#include "faultvfs_script.h"
#include "segment.h"

#include <pthread.h>

static const struct {
	enum fv_action a;
	const char *name;
} kinds[] = {
	{ FV_EIO, "eio" },
	{ FV_ENOSPC, "enospc" },
	{ FV_SHORT, "short" },
	{ FV_SHORT_NOSPC, "shortfull" },
};

static unsigned absorbed, runs, passed, failed;

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s && s[1] ? s + 1 : p;
}

/* The message names a file an injected failure hit: its name (either
 * name of a rename), or for the store directory and the files directly
 * in it, the store's path ("open lock file /path/to/store: ..."). Not
 * necessarily the first: the store may absorb a failure by design (an
 * audit record of a seal) and report a later one (a disk that is full). */
static int names_file(const sc_ctx *c, const char *msg)
{
	const char *f;

	if (strstr(msg, c->dir))
		return 1;
	for (f = c->failed; *f; f += strlen(f) + 1) {
		char a[300], *b;
		size_t n = strlen(f) < sizeof(a) - 1 ? strlen(f)
						     : sizeof(a) - 1;

		memcpy(a, f, n);
		a[n] = '\0';
		b = strchr(a, ' ');
		if (b)
			*b++ = '\0';
		if (strstr(msg, base_name(a)) || (b && strstr(msg, b)))
			return 1;
	}
	return 0;
}

/* Checks of a store whose script call just failed (c->s may be NULL). A
 * failure of the writer (a write, an fsync, sealing) disables it; a hold
 * change, an expiry or a reindex that fails in its own files leaves the
 * writer working: appends go on and are durable as before. */
static void after_failure(sc_ctx *c)
{
	sc_rec t;
	int rc, alive = 0;

	if (c->rc != QL_EIO && c->rc != QL_ENOSPC && c->rc != QL_EFAILED)
		SC_FAIL(c, "%s returned %s (%s), expected an I/O error",
			c->where, ql_strerror(c->rc), c->msg);
	if (!names_file(c, c->msg))
		SC_FAIL(c, "%s message does not name %s: \"%s\"", c->where,
			c->hit_name, c->msg);
	if (!c->s)
		return;
	if (c->maint) {
		rc = ql_sync(c->s);
		if (rc && rc != QL_EFAILED)
			SC_FAIL(c, "sync after a failed %s: %s", c->where,
				ql_strerror(rc));
		alive = rc == 0;
	}
	/* (in the maintenance script, now may be a bucket's first second) */
	sc_make(&t, c->nrec, c->maint ? c->now : c->now - T_SEC, 0);
	if (alive) {
		/* the record is the next id: the checks then expect it */
		uint32_t id = c->nrec++;

		c->ts[id] = t.r.ts;
		c->tried[id] = 1;
		rc = ql_append(c->s, &t.r, 1, NULL);
		if (!rc && !c->every)
			rc = ql_sync(c->s);
		alive = rc ? 1 : 2;
		if (!rc)
			c->accepted[id] = c->acked[id] = 1;
		else if (rc != QL_ENOSPC && rc != QL_EIO)
			SC_FAIL(c, "append after a failed %s (writer not "
				"disabled): %s: %s", c->where,
				ql_strerror(rc), ql_errmsg(NULL));
	} else {
		rc = ql_append(c->s, &t.r, 1, NULL);
		if (rc != QL_EFAILED)
			SC_FAIL(c, "append after failure: %s",
				ql_strerror(rc));
		else if (!names_file(c, ql_errmsg(NULL)))
			SC_FAIL(c, "QL_EFAILED message does not name %s: "
				"\"%s\"", c->hit_name, ql_errmsg(NULL));
		rc = ql_sync(c->s);
		if (rc != QL_EFAILED)
			SC_FAIL(c, "sync after failure: %s", ql_strerror(rc));
		rc = ql_maintain(c->s);
		if (rc != QL_EFAILED)
			SC_FAIL(c, "maintain after failure: %s",
				ql_strerror(rc));
	}
	/* reads answer exactly, the index in whatever state it was left */
	sc_vis_load(c, c->s, c->now);
	sc_scan(c, c->s, "cursor after failure");
	sc_queries(c, c->s, "queries after failure");
	rc = ql_close(c->s);
	c->s = NULL;
	if (!alive && rc == 0)
		SC_FAIL(c, "ql_close of a failed store returned 0");
	if (alive == 2 && rc)
		SC_FAIL(c, "ql_close after a failed %s: %s: %s", c->where,
			ql_strerror(rc), ql_errmsg(NULL));
}

/* After a run: the directory as left, and after a power cut. Tracking
 * must be on; it is off afterwards. */
static void check_both(sc_ctx *c)
{
	char asis[300];

	snprintf(asis, sizeof(asis), "%s.asis", c->root);
	if (sc_copytree(c->dir, asis) && access(c->dir, F_OK) == 0)
		SC_FAIL(c, "cannot copy %s", c->dir);
	if (fv_power_cut(0, 0))
		SC_FAIL(c, "power cut: %s", strerror(errno));
	fv_uninstall();
	if (access(asis, F_OK) == 0)
		sc_check(c, asis, "as left");
	sc_check(c, c->dir, "after power cut");
	t_rmrf(asis);
}

/* One run with the fault at n. Returns whether the fault was reached. */
static int one_run(sc_ctx *c, const sc_ctx *start, const char *tmpl,
		   int (*body)(sc_ctx *), unsigned long n, enum fv_action a)
{
	int hit;

	if (start) {
		char root[256], label[128];

		/* keep our scratch paths, take the template's records */
		snprintf(root, sizeof(root), "%s", c->root);
		snprintf(label, sizeof(label), "%s", c->label);
		*c = *start;
		snprintf(c->root, sizeof(c->root), "%s", root);
		snprintf(c->label, sizeof(c->label), "%s", label);
		snprintf(c->dir, sizeof(c->dir), "%s/store", root);
		t_rmrf(c->dir);
		if (sc_copytree(tmpl, c->dir))
			abort();
	}
	fv_install();
	if (fv_track(c->root, FV_ROOT_DURABLE))
		abort();
	fv_arm(n, a);
	runs++;
	body(c);
	hit = fv_hit();
	snprintf(c->hit_op, sizeof(c->hit_op), "%s", fv_hit_op());
	snprintf(c->hit_name, sizeof(c->hit_name), "%s", fv_hit_name());
	{
		size_t off = 0;

		/* a NUL-separated list, ending in an empty name */
		memset(c->failed, 0, sizeof(c->failed));
		for (int i = 0; i < fv_failed_count() && i < 16; i++) {
			const char *f = fv_failed_name(i);

			if (off + strlen(f) + 2 > sizeof(c->failed))
				break;
			memcpy(c->failed + off, f, strlen(f));
			off += strlen(f) + 1;
		}
	}
	if (c->rc) {
		if (!hit)
			SC_FAIL(c, "%s failed with no fault: %s: %s", c->where,
				ql_strerror(c->rc), c->msg);
		after_failure(c);
	} else if (hit) {
		/* e.g. a short write retried, a failed unlink of a .tmp */
		absorbed++;
		if (getenv("QL_FAULT_VERBOSE"))
			fprintf(stderr, "absorbed [%s]: %s %s\n", c->label,
				c->hit_op, c->hit_name);
	}
	if (c->s) {
		ql_close(c->s);
		c->s = NULL;
	}
	check_both(c);
	return hit;
}

/* QL_FAULT_ONLY=scenario/kind/N runs that one fault point (to reproduce
 * a failure under a debugger or FV_TRACE=1); scenario/kind runs that
 * loop. Returns whether scen/kind runs at all; *only_n gets N or 0. */
static int selected(const char *scen, const char *kname, unsigned long *only_n)
{
	const char *only = getenv("QL_FAULT_ONLY");
	char want[64];
	size_t len;

	*only_n = 0;
	if (!only || !*only)
		return 1;
	len = (size_t)snprintf(want, sizeof(want), "%s/%s", scen, kname);
	if (strncmp(only, want, len) || (only[len] && only[len] != '/'))
		return 0;
	if (only[len] == '/')
		*only_n = strtoul(only + len + 1, NULL, 10);
	return 1;
}

static unsigned long fault_loop(const char *scen, int (*body)(sc_ctx *),
				const sc_ctx *start, const char *tmpl,
				enum fv_action a, const char *kname)
{
	static sc_ctx c;
	unsigned long n, only_n;

	if (!selected(scen, kname, &only_n))
		return 0;
	memset(&c, 0, sizeof(c));
	for (n = only_n ? only_n : 1;; n++) {
		unsigned before = sc_failures;
		int hit;

		sc_fresh(&c, 0);
		snprintf(c.label, sizeof(c.label), "%s/%s/N=%lu", scen, kname,
			 n);
		hit = one_run(&c, start, tmpl, body, n, a);
		if (sc_failures > before) {
			failed++;
			if (sc_printed <= 40)
				fprintf(stderr, "  (fault: %s %s; call %s: "
					"%s)\n", c.hit_op, c.hit_name,
					c.where, c.msg);
		} else {
			passed++;
		}
		if (!hit || only_n)
			break;
		if (n > 100000)
			abort(); /* the counter must end somewhere */
	}
	t_rmrf(c.root);
	if (only_n)
		n = 2; /* one point */
	printf("faults: %-9s %-9s %4lu fault points\n", scen, kname, n - 1);
	return n - 1;
}

/* ---------------------------------------------------------------------- */
/* recovery: a store that needs every repair                               */
/* ---------------------------------------------------------------------- */

static sc_ctx rec_start;
static char rec_tmpl[300];

static void die(const char *what)
{
	fprintf(stderr, "recovery template: %s: %s / %s\n", what,
		strerror(errno), ql_errmsg(NULL));
	exit(2);
}

/* dir/rel into out; a path that does not fit is a test bug. */
static void path_in(char *out, size_t n, const char *dir, const char *rel)
{
	if (snprintf(out, n, "%s/%s", dir, rel) >= (int)n)
		abort();
}

static void make_recovery_template(void)
{
	sc_ctx *c = &rec_start;
	char p[600], root[256];
	uint8_t tr[16];
	qli_segfile sf;
	int fd, segfd;
	uint64_t soff;

	memset(c, 0, sizeof(*c));
	sc_fresh(c, 0);
	snprintf(c->label, sizeof(c->label), "recovery-template");
	sc_reset(c);
	c->now = SC_A + 50 * T_MIN;
	if (sc_open(c, 0) ||
	    sc_append(c, SC_A + 10 * T_MIN, 10 * T_SEC, 40, 16) ||
	    sc_sync(c))
		die("A");
	c->now = SC_B + 5 * T_MIN;
	if (sc_maintain(c) || sc_append(c, SC_A + 55 * T_MIN, 1, 5, 5) ||
	    sc_append(c, SC_B, 5 * T_SEC, 40, 16) || sc_close(c))
		die("B");

	/* A's generation 0 loses its seal: two unsealed generations */
	path_in(p, sizeof(p), c->dir, "seg/20261101T100000Z-g0.qls");
	fd = open(p, O_RDWR);
	if (fd < 0 || pread(fd, tr, 16, lseek(fd, 0, SEEK_END) - 16) != 16)
		die("read trailer");
	soff = qli_get64(tr);
	if (ftruncate(fd, (off_t)soff))
		die("truncate seal");
	close(fd);
	/* B gets a torn tail */
	path_in(p, sizeof(p), c->dir, "seg/20261101T110000Z-g0.qls");
	fd = open(p, O_WRONLY | O_APPEND);
	if (fd < 0 || write(fd, "QLBK torn tail torn tail torn tail torn "
			    "tail", 44) != 44)
		die("torn tail");
	close(fd);
	/* C has a segment that never got a block */
	path_in(p, sizeof(p), c->dir, "seg");
	segfd = open(p, O_RDONLY | O_DIRECTORY);
	if (segfd < 0 || qli_segfile_create(&sf, segfd, SC_C, T_HOUR, 0,
					    0600))
		die("empty segment");
	qli_segfile_close(&sf);
	close(segfd);
	/* leftovers of interrupted atomic writes */
	path_in(p, sizeof(p), c->dir, "QLSTORE.tmp");
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	close(fd);
	path_in(p, sizeof(p), c->dir, "seg/x.tmp");
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	close(fd);

	/* move it out of the scratch root that runs will wipe */
	memcpy(root, c->root, sizeof(root));
	snprintf(rec_tmpl, sizeof(rec_tmpl), "%s.tmpl", root);
	if (sc_copytree(c->dir, rec_tmpl))
		die("copy");
	t_rmrf(root);
	c->root[0] = '\0';
}

static int recovery_body(sc_ctx *c)
{
	int rc;

	c->now = SC_C + 2 * T_MIN;
	if ((rc = sc_open(c, 0)) || (rc = sc_maintain(c)) ||
	    (rc = sc_append(c, SC_C + T_MIN, T_SEC, 20, 16)) ||
	    (rc = sc_sync(c)))
		return rc;
	return sc_close(c);
}

/* ---------------------------------------------------------------------- */
/* group commit                                                            */
/* ---------------------------------------------------------------------- */

#define GROUP_THREADS 2
#define GROUP_APPENDS 24

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
			/* ql_errmsg is per thread: keep it for the checks */
			g->rc = rc;
			snprintf(g->msg, sizeof(g->msg), "%s",
				 ql_errmsg(NULL));
			return NULL;
		}
		/* each thread writes only its own ids' flags */
		c->accepted[id] = 1;
		c->acked[id] = 1;
	}
	return NULL;
}

static int group_body(sc_ctx *c)
{
	gworker g[GROUP_THREADS];
	pthread_t th[GROUP_THREADS];
	int rc;

	sc_reset(c);
	c->now = SC_A + 30 * T_MIN;
	if ((rc = sc_open(c, 1)))
		return rc;
	c->nrec = GROUP_THREADS * GROUP_APPENDS;
	for (uint32_t id = 0; id < c->nrec; id++) {
		c->ts[id] = SC_A + (int64_t)id * T_SEC;
		c->tried[id] = 1;
	}
	for (unsigned t = 0; t < GROUP_THREADS; t++) {
		g[t] = (gworker){ c, t, 0, "" };
		if (pthread_create(&th[t], NULL, group_worker, &g[t]))
			abort();
	}
	for (unsigned t = 0; t < GROUP_THREADS; t++)
		pthread_join(th[t], NULL);
	for (unsigned t = 0; t < GROUP_THREADS && !c->rc; t++) {
		if (!g[t].rc)
			continue;
		c->rc = g[t].rc;
		snprintf(c->where, sizeof(c->where), "ql_append (thread %u)",
			 t);
		snprintf(c->msg, sizeof(c->msg), "%s", g[t].msg);
	}
	if (c->rc)
		return c->rc;
	return sc_close(c);
}

/* ---------------------------------------------------------------------- */
/* holds, expire, reindex: the maintenance script, one phase at a time     */
/* ---------------------------------------------------------------------- */

static sc_ctx maint_start;
static char maint_tmpl[300];

/* The store the ingest script leaves, with its records: where every run
 * of the maintenance script starts. The script is also run once here
 * without a fault: it must do what it claims and pass its own checks. */
static void make_maint_template(void)
{
	static sc_ctx probe;
	sc_ctx *c = &maint_start;
	char root[256];

	memset(c, 0, sizeof(*c));
	sc_fresh(c, 0);
	snprintf(c->label, sizeof(c->label), "maint-template");
	if (sc_run(c))
		die("ingest script");
	memcpy(root, c->root, sizeof(root));
	snprintf(maint_tmpl, sizeof(maint_tmpl), "%s.mtmpl", root);
	if (sc_copytree(c->dir, maint_tmpl))
		die("copy");
	/* a clean run of the whole maintenance script */
	probe = *c;
	snprintf(probe.label, sizeof(probe.label), "maint/no fault");
	if (sc_run_maint(&probe, -1))
		SC_FAIL(&probe, "%s: %s: %s", probe.where,
			ql_strerror(probe.rc), probe.msg);
	else
		sc_maint_sanity(&probe);
	sc_check(&probe, probe.dir, "after a clean run");
	t_rmrf(root);
	c->root[0] = '\0';
}

static int holds_body(sc_ctx *c)
{
	return sc_run_maint(c, SC_PH_HOLDS);
}

static int expire_body(sc_ctx *c)
{
	return sc_run_maint(c, SC_PH_EXPIRE);
}

static int reindex_body(sc_ctx *c)
{
	return sc_run_maint(c, SC_PH_REINDEX);
}

int main(void)
{
	const char *want = getenv("QL_FAULT_KINDS");
	unsigned long total = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sc_pick_tmpdir();
	make_recovery_template();
	make_maint_template();
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		if (want && !strstr(want, kinds[k].name))
			continue;
		total += fault_loop("ingest", sc_run, NULL, NULL, kinds[k].a,
				    kinds[k].name);
		total += fault_loop("recovery", recovery_body, &rec_start,
				    rec_tmpl, kinds[k].a, kinds[k].name);
		total += fault_loop("group", group_body, NULL, NULL,
				    kinds[k].a, kinds[k].name);
		total += fault_loop("holds", holds_body, &maint_start,
				    maint_tmpl, kinds[k].a, kinds[k].name);
		total += fault_loop("expire", expire_body, &maint_start,
				    maint_tmpl, kinds[k].a, kinds[k].name);
		total += fault_loop("reindex", reindex_body, &maint_start,
				    maint_tmpl, kinds[k].a, kinds[k].name);
	}
	t_rmrf(rec_tmpl);
	t_rmrf(maint_tmpl);
	printf("faults: %lu fault points covered in %u runs (%u absorbed "
	       "without an error)\n", total, runs, absorbed);
	printf("faults: %u passed, %u failed\n", passed, failed);
	return sc_failures ? 1 : 0;
}
