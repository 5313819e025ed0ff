/* faultvfs_script.h - the scripted store run shared by test_faults.c,
 * test_powerloss.c and test_allocfail.c, and the checks of what a reopen
 * finds (header-only).
 *
 * Every record carries its id in the requester ("+1" and 12 digits), and
 * everything else in it is a function of the id and a time kept here, so
 * a scan can tell for each record whether it was appended, whether it was
 * acknowledged, and whether it came back intact.
 *
 * The script, on a fake clock with one-hour buckets A, B, C and blocks of
 * 16 records (so the writer thread writes blocks between syncs):
 *   open (QL_OPEN_CREATE, QL_SYNC_MANUAL)
 *   4 x { 40 records into A; ql_sync }
 *   40 records into B, not synced (the writer writes full blocks)
 *   the clock passes A's end and grace: ql_maintain seals A
 *   3 late records for A (generation 1), ql_sync
 *   3 x { 40 records into B; ql_sync }
 *   ql_close
 *   open again with QL_SYNC_EVERY_APPEND (a recovery on a clean store)
 *   10 appends of 1-3 records into B
 *   the clock passes B: ql_maintain seals A's generation 1 and B
 *   10 appends of 1-3 records into C
 *   ql_close
 * A record is acknowledged when ql_sync or ql_close returned 0 after the
 * ql_append that took it returned 0, or when its ql_append returned 0 under
 * QL_SYNC_EVERY_APPEND. The script stops at the first call that fails.
 *
 * The maintenance script (sc_run_maint) continues from the store the
 * script above leaves (A g0, A g1 and B sealed, C unsealed), with the
 * store's retention R = 30 days (the default), under QL_SYNC_EVERY_APPEND,
 * and holds H1 (window over B and C), H2 (over C, short expiry) and H3
 * (over B):
 *   T0 = C + 3h:  open; appends into bucket D;
 *                 place H1, place H2, extend H1 by its period
 *   T1 = C's due time + 30 min (A, B, C all past due):
 *                 ql_expire: A g0, A g1 deleted, B and C held (H1; H1, H2)
 *                 appends into bucket E; place H3
 *   T3 = H2's expiry + 10 min:
 *                 release H1 (its hold_begin records H2's lapse first),
 *                 extend H3 to a given expiry;
 *                 ql_expire: C deleted (H1 released, H2 lapsed), B held
 *                 (H3); appends; ql_reindex; appends; ql_close
 * A hold change or an expiry is acknowledged when its call returned 0;
 * each step belongs to a phase (holds, expire, reindex, or other: opens,
 * appends, clock moves, close), so that test_faults can fail only the
 * operations of one phase and test_powerloss can say where a cut fell.
 * The checks (sc_check) know what each acknowledged step promised. */
#ifndef QL_FAULTVFS_SCRIPT_H
#define QL_FAULTVFS_SCRIPT_H

#include "testutil.h"

#include "faultvfs.h"
#include "hold.h"
#include "index.h"
#include "segment.h"
#include "vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#ifndef SC_MAXREC
#define SC_MAXREC 1024
#endif
#define SC_A (T_EPOCH + 10 * T_HOUR)
#define SC_B (SC_A + T_HOUR)
#define SC_C (SC_B + T_HOUR)
/* The clock of every check: all buckets due for sealing, all records
 * inside the retention period. */
#define SC_CHECK_NOW (T_EPOCH + T_DAY)
#define SC_PROBE "+19999999999"

/* The maintenance script's clock (see above). */
#define SC_R (30 * T_DAY)
#define SC_M_T0 (SC_C + 3 * T_HOUR)
#define SC_M_T1 (SC_C + T_HOUR + SC_R + 30 * T_MIN)
#define SC_M_T2 (SC_M_T1 + 90 * T_MIN) /* H2 expires */
#define SC_M_T3 (SC_M_T2 + 10 * T_MIN)
#define SC_M_CHECK (SC_M_T3 + 20 * T_MIN)

#define SC_NHOLDS 3
#define SC_MAXSEG 32

/* Not every test that includes this header runs the maintenance script. */
#if defined(__GNUC__)
#define SC_MAYBE_UNUSED __attribute__((unused))
#else
#define SC_MAYBE_UNUSED
#endif

/* Phases of the maintenance script. */
enum { SC_PH_OTHER, SC_PH_HOLDS, SC_PH_EXPIRE, SC_PH_REINDEX, SC_NPH };
static const char *const sc_phase_name[SC_NPH] = { "other", "holds",
						   "expire", "reindex" };

/* What the script did to one hold: each change not tried, tried (the
 * call failed), or acknowledged (it returned 0). */
enum { SC_NOT = 0, SC_TRIED, SC_ACKED };
typedef struct sc_hm {
	uint8_t placed, released;
	uint8_t lapse_acked;   /* a call that records lapses returned 0 at
				* or after its expiry */
	uint8_t nextend_acked;
	int64_t exp;           /* expiry set by the last acknowledged change */
	int64_t exp_maybe;     /* a failed extension's expiry, or 0 */
	int64_t period;
} sc_hm;

typedef struct sc_ctx {
	char root[256]; /* scratch directory, the power-loss root */
	char dir[300];  /* root/store */
	char label[128];
	int precreate;  /* the test made dir itself (durably) */
	ql_store *s;
	int64_t now;
	int every; /* current store is QL_SYNC_EVERY_APPEND */
	uint32_t nrec;
	int64_t ts[SC_MAXREC];
	uint8_t tried[SC_MAXREC];    /* given to ql_append */
	uint8_t accepted[SC_MAXREC]; /* ql_append returned 0 */
	uint8_t acked[SC_MAXREC];    /* durable by the contract */
	uint8_t refused[SC_MAXREC];  /* its ql_append failed before taking
				      * anything: it must never appear */
	/* the first failure the script saw */
	int rc;
	char where[64];
	char msg[512];
	/* the fault that fired, if any: operation and file name(s), and
	 * every file an injected failure was handed for (NUL-separated) */
	char hit_op[32], hit_name[300];
	char failed[1024];
	/* the maintenance script */
	int maint;           /* it ran (or runs) on this store */
	int64_t check_now;   /* clock of the checks; 0 = SC_CHECK_NOW */
	int fault_phase;     /* count only this phase's operations; -1 all */
	int cur_phase, hit_phase; /* hit_phase: where the fault fired, -1 */
	sc_hm hm[SC_NHOLDS];
	/* the segments before it began; gone: an expiry reported it deleted
	 * (the deletion is then complete and durable) */
	unsigned nsegs0;
	char segs0[SC_MAXSEG][QLI_SEG_NAME_MAX];
	uint8_t gone[SC_MAXSEG];
	unsigned nexpire;    /* ql_expire calls that returned 0 */
	unsigned ndel[2], nheld[2]; /* per expiry: segments deleted, held */
	/* holds the store lists at the time of a check (visibility) */
	unsigned nvis;
	struct { int64_t from, to; } vis[8];
	int64_t vis_now;
	/* the holds the last check listed: state (-1: absent) and expiry */
	int hl_state[SC_NHOLDS];
	int64_t hl_exp[SC_NHOLDS];
} sc_ctx;

static unsigned sc_failures, sc_printed;

/* The scratch stores go under TMPDIR; when it is not set, under /dev/shm
 * if there is one. The disk under the tests only ever holds the volatile
 * state (faultvfs decides what is durable), and the real fsyncs of the
 * checks then cost nothing: the runs stay fast on a busy disk. */
static void sc_pick_tmpdir(void)
{
	if (!getenv("TMPDIR") && access("/dev/shm", W_OK | X_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
}

#define SC_FAIL(c, ...)                                                      \
	do {                                                                 \
		sc_failures++;                                               \
		if (sc_printed++ < 40) {                                     \
			fprintf(stderr, "FAIL [%s] ", (c)->label);           \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

/* ---------------------------------------------------------------------- */
/* records                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct sc_rec {
	ql_record r;
	char req[24], tgt[48];
} sc_rec;

static uint64_t sc_mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	return x ^ (x >> 33);
}

/* The record with this id; canonical says whether to give the target
 * as stored (lower-cased domain) or as appended. */
static void sc_make(sc_rec *t, uint32_t id, int64_t ts, int canonical)
{
	uint64_t h = sc_mix(id + 1);

	memset(&t->r, 0, sizeof(t->r));
	snprintf(t->req, sizeof(t->req), "+1%012u", id);
	if (id % 4 == 0)
		snprintf(t->tgt, sizeof(t->tgt), "u%u@%s", id,
			 canonical ? "example.com" : "Example.COM");
	else
		snprintf(t->tgt, sizeof(t->tgt), "+44%010llu",
			 (unsigned long long)(h % 10000000000ULL));
	t->r.ts = ts;
	t->r.requester = t->req;
	t->r.target = t->tgt;
	if (id % 2) {
		t->r.ip[10] = t->r.ip[11] = 0xff;
		t->r.ip[12] = 10;
		t->r.ip[13] = (uint8_t)(h >> 8);
		t->r.ip[14] = (uint8_t)(h >> 16);
		t->r.ip[15] = (uint8_t)(h >> 24);
	} else {
		t->r.ip[0] = 0x20;
		t->r.ip[1] = 0x01;
		memcpy(t->r.ip + 8, &h, 8);
	}
	t->r.service = (uint8_t)(id % 3);
	t->r.result = (uint8_t)((id / 3) & 1);
}

/* ---------------------------------------------------------------------- */
/* file trees                                                              */
/* ---------------------------------------------------------------------- */

static int sc_copytree(const char *src, const char *dst)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = 0;

	if (lstat(src, &st) || !S_ISDIR(st.st_mode))
		return -1;
	if (mkdir(dst, st.st_mode & 07777) && errno != EEXIST)
		return -1;
	d = opendir(src);
	if (!d)
		return -1;
	while (!rc && (de = readdir(d)) != NULL) {
		char a[600], b[600];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(a, sizeof(a), "%s/%s", src, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", dst, de->d_name);
		if (lstat(a, &st)) {
			rc = -1;
		} else if (S_ISDIR(st.st_mode)) {
			rc = sc_copytree(a, b);
		} else if (S_ISREG(st.st_mode)) {
			char buf[65536];
			int in = open(a, O_RDONLY), out;
			ssize_t n;

			out = open(b, O_WRONLY | O_CREAT | O_TRUNC,
				   st.st_mode & 07777);
			if (in < 0 || out < 0)
				rc = -1;
			while (!rc && (n = read(in, buf, sizeof(buf))) > 0)
				if (write(out, buf, (size_t)n) != n)
					rc = -1;
			if (in >= 0)
				close(in);
			if (out >= 0)
				close(out);
		}
	}
	closedir(d);
	return rc;
}

/* Makes c->root (a fresh scratch directory) and c->dir inside it; with
 * precreate, creates dir and makes its entry durable as an installer
 * would (mkdir, fsync of the parent). */
static void sc_fresh(sc_ctx *c, int precreate)
{
	char tmp[256];

	if (c->root[0])
		t_rmrf(c->root);
	t_tmpdir(tmp, sizeof(tmp));
	*strrchr(tmp, '/') = '\0';
	snprintf(c->root, sizeof(c->root), "%s", tmp);
	snprintf(c->dir, sizeof(c->dir), "%s/store", c->root);
	c->precreate = precreate;
	if (precreate) {
		int fd;

		if (mkdir(c->dir, 0700))
			abort();
		fd = open(c->root, O_RDONLY | O_DIRECTORY);
		if (fd < 0 || fsync(fd))
			abort();
		close(fd);
	}
}

static void sc_reset(sc_ctx *c)
{
	c->s = NULL;
	c->nrec = 0;
	c->every = 0;
	c->rc = 0;
	c->where[0] = c->msg[0] = '\0';
	memset(c->tried, 0, sizeof(c->tried));
	memset(c->accepted, 0, sizeof(c->accepted));
	memset(c->acked, 0, sizeof(c->acked));
	memset(c->refused, 0, sizeof(c->refused));
	c->maint = 0;
	c->check_now = 0;
	c->fault_phase = -1;
	c->cur_phase = SC_PH_OTHER;
	c->hit_phase = -1;
	memset(c->hm, 0, sizeof(c->hm));
	c->nsegs0 = 0;
	memset(c->gone, 0, sizeof(c->gone));
	c->nexpire = 0;
	memset(c->ndel, 0, sizeof(c->ndel));
	memset(c->nheld, 0, sizeof(c->nheld));
	/* no holds loaded: at vis_now 0 nothing is past due */
	c->nvis = 0;
	c->vis_now = 0;
}

/* ---------------------------------------------------------------------- */
/* the script                                                              */
/* ---------------------------------------------------------------------- */

static ql_options sc_opts(int64_t *now, int every)
{
	ql_options o = QL_OPTIONS_INIT;

	o.flags = QL_OPEN_CREATE;
	o.bucket_width_us = T_HOUR;
	o.seal_grace_us = T_MIN;
	o.block_records = 16;
	o.maintenance_interval_ms = -1;
	o.clock = t_clock;
	o.clock_ctx = now;
	o.sync_mode = every ? QL_SYNC_EVERY_APPEND : QL_SYNC_MANUAL;
	/* the loops number I/O operations and need them deterministic:
	 * no background thread; the scripts that cover compaction set
	 * QL_COMPACT_INLINE themselves */
	o.compaction = QL_COMPACT_OFF;
	return o;
}

static int sc_fail(sc_ctx *c, int rc, const char *where)
{
	c->rc = rc;
	snprintf(c->where, sizeof(c->where), "%s", where);
	snprintf(c->msg, sizeof(c->msg), "%s", ql_errmsg(NULL));
	return rc;
}

static int sc_open(sc_ctx *c, int every)
{
	ql_options o = sc_opts(&c->now, every);
	int rc = ql_open(&c->s, c->dir, &o);

	c->every = every;
	return rc ? sc_fail(c, rc, "ql_open") : 0;
}

static void sc_ack_accepted(sc_ctx *c)
{
	for (uint32_t i = 0; i < c->nrec; i++)
		if (c->accepted[i])
			c->acked[i] = 1;
}

/* n records from ts0, step apart, in ql_append calls of chunk. */
static int sc_append(sc_ctx *c, int64_t ts0, int64_t step, unsigned n,
		     unsigned chunk)
{
	sc_rec t[16];
	ql_record r[16];

	while (n > 0) {
		unsigned k = n < chunk ? n : chunk, i;
		uint32_t first = c->nrec;
		int rc;

		for (i = 0; i < k; i++) {
			uint32_t id = c->nrec++;

			c->ts[id] = ts0;
			c->tried[id] = 1;
			sc_make(&t[i], id, ts0, 0);
			r[i] = t[i].r;
			ts0 += step;
		}
		rc = ql_append(c->s, r, k, NULL);
		if (rc)
			return sc_fail(c, rc, "ql_append");
		for (i = 0; i < k; i++) {
			c->accepted[first + i] = 1;
			if (c->every)
				c->acked[first + i] = 1;
		}
		n -= k;
	}
	return 0;
}

static int sc_sync(sc_ctx *c)
{
	int rc = ql_sync(c->s);

	if (rc)
		return sc_fail(c, rc, "ql_sync");
	sc_ack_accepted(c);
	return 0;
}

static int sc_maintain(sc_ctx *c)
{
	int rc = ql_maintain(c->s);

	return rc ? sc_fail(c, rc, "ql_maintain") : 0;
}

static int sc_close(sc_ctx *c)
{
	int rc = ql_close(c->s);

	c->s = NULL;
	if (rc)
		return sc_fail(c, rc, "ql_close");
	sc_ack_accepted(c);
	return 0;
}

/* Runs the script; returns 0 or the first failure (c->s is then the
 * failed store, still open, or NULL if the failure was an open or a
 * close). */
static int sc_run(sc_ctx *c)
{
	int rc;

	sc_reset(c);
	t_setclock(&c->now, SC_A + 50 * T_MIN);
	if ((rc = sc_open(c, 0)))
		return rc;
	for (int b = 0; b < 4; b++) {
		if ((rc = sc_append(c, SC_A + (10 + 10 * b) * T_MIN,
				    10 * T_SEC, 40, 13)) ||
		    (rc = sc_sync(c)))
			return rc;
	}
	t_setclock(&c->now, SC_B + 5 * T_MIN);
	if ((rc = sc_append(c, SC_B, 5 * T_SEC, 40, 16)) ||
	    (rc = sc_maintain(c)) ||
	    (rc = sc_append(c, SC_A + 55 * T_MIN, 1, 3, 3)) ||
	    (rc = sc_sync(c)))
		return rc;
	for (int b = 0; b < 3; b++) {
		t_setclock(&c->now, SC_B + (10 + 5 * b) * T_MIN);
		if ((rc = sc_append(c, SC_B + (5 + 5 * b) * T_MIN, 5 * T_SEC,
				    40, 7)) ||
		    (rc = sc_sync(c)))
			return rc;
	}
	if ((rc = sc_close(c)))
		return rc;

	t_setclock(&c->now, SC_B + 40 * T_MIN);
	if ((rc = sc_open(c, 1)))
		return rc;
	for (int k = 0; k < 10; k++)
		if ((rc = sc_append(c, SC_B + 30 * T_MIN + k * 10 * T_SEC,
				    T_SEC, 1 + k % 3, 3)))
			return rc;
	t_setclock(&c->now, SC_C + 2 * T_MIN);
	if ((rc = sc_maintain(c)))
		return rc;
	for (int k = 0; k < 10; k++)
		if ((rc = sc_append(c, SC_C + k * 10 * T_SEC, T_SEC,
				    1 + k % 3, 3)))
			return rc;
	return sc_close(c);
}

/* ---------------------------------------------------------------------- */
/* the maintenance script                                                  */
/* ---------------------------------------------------------------------- */

static const struct {
	const char *id;
	int64_t from, to;
} sc_hold_spec[SC_NHOLDS] = {
	{ "H1", SC_B, SC_C + 30 * T_MIN },               /* B and C */
	{ "H2", SC_C + 10 * T_MIN, SC_C + 20 * T_MIN },  /* C */
	{ "H3", SC_B + 10 * T_MIN, SC_B + 20 * T_MIN },  /* B */
};
#define SC_HOLD_REASON "court order 2026-0815, fault test"
#define SC_HOLD_BY "judge"
#define SC_HOLD_SUBJECT "+14155550123"

static int64_t sc_bucket(int64_t ts)
{
	int64_t r = (ts - T_EPOCH) % T_HOUR;

	return ts - (r < 0 ? r + T_HOUR : r);
}

/* Enters phase ph: notes in which phase a fault fired, and when the test
 * fails only one phase's operations, pauses the counting outside it. */
static void sc_phase(sc_ctx *c, int ph)
{
	if (c->hit_phase < 0 && fv_hit())
		c->hit_phase = c->cur_phase;
	c->cur_phase = ph;
	if (c->fault_phase >= 0)
		fv_pause(ph != c->fault_phase);
}

/* Whether the acknowledged holds pin bucket b at now (what the script
 * knows for sure: it stops at the first failed change). */
static int sc_model_held(const sc_ctx *c, int64_t b, int64_t now, char *ids,
			 size_t idlen)
{
	int held = 0;

	if (ids)
		ids[0] = '\0';
	for (int k = 0; k < SC_NHOLDS; k++) {
		const sc_hm *h = &c->hm[k];

		if (h->placed != SC_ACKED || h->released == SC_ACKED ||
		    now >= h->exp || sc_hold_spec[k].from >= b + T_HOUR ||
		    sc_hold_spec[k].to < b)
			continue;
		held = 1;
		if (ids)
			snprintf(ids + strlen(ids), idlen - strlen(ids),
				 "%s%s", ids[0] ? "," : "", sc_hold_spec[k].id);
	}
	return held;
}

/* A call that records lapses (every hold change, an expiry) returned 0
 * at now: the holds whose expiry passed are recorded as lapsed. */
static void sc_lapses_acked(sc_ctx *c)
{
	for (int k = 0; k < SC_NHOLDS; k++)
		if (c->hm[k].placed == SC_ACKED &&
		    c->hm[k].released != SC_ACKED && c->now >= c->hm[k].exp)
			c->hm[k].lapse_acked = 1;
}

static int sc_place(sc_ctx *c, int k, int64_t expires)
{
	const char *subj[1] = { SC_HOLD_SUBJECT };
	ql_hold h = QL_HOLD_INIT;
	char where[64];
	int rc;

	h.order_id = sc_hold_spec[k].id;
	h.from = sc_hold_spec[k].from;
	h.to = sc_hold_spec[k].to;
	h.expires = expires;
	h.reason = SC_HOLD_REASON;
	h.placed_by = SC_HOLD_BY;
	h.subjects = subj;
	h.nsubjects = k == 0;
	c->hm[k].placed = SC_TRIED;
	c->hm[k].exp = expires;
	c->hm[k].period = 30 * T_DAY;
	rc = ql_hold_place(c->s, &h);
	snprintf(where, sizeof(where), "ql_hold_place(%s)", h.order_id);
	if (rc)
		return sc_fail(c, rc, where);
	c->hm[k].placed = SC_ACKED;
	sc_lapses_acked(c);
	return 0;
}

/* new_expires 0: by the hold's period. */
static int sc_extend(sc_ctx *c, int k, int64_t new_expires)
{
	char where[64];
	int rc;

	c->hm[k].exp_maybe = new_expires ? new_expires
					 : c->hm[k].exp + c->hm[k].period;
	rc = ql_hold_extend(c->s, sc_hold_spec[k].id, new_expires, "clerk");
	snprintf(where, sizeof(where), "ql_hold_extend(%s)",
		 sc_hold_spec[k].id);
	if (rc)
		return sc_fail(c, rc, where);
	c->hm[k].exp = c->hm[k].exp_maybe;
	c->hm[k].exp_maybe = 0;
	c->hm[k].nextend_acked++;
	sc_lapses_acked(c);
	return 0;
}

static int sc_release(sc_ctx *c, int k)
{
	char where[64];
	int rc;

	c->hm[k].released = SC_TRIED;
	rc = ql_hold_release(c->s, sc_hold_spec[k].id, "clerk");
	snprintf(where, sizeof(where), "ql_hold_release(%s)",
		 sc_hold_spec[k].id);
	if (rc)
		return sc_fail(c, rc, where);
	c->hm[k].released = SC_ACKED;
	sc_lapses_acked(c);
	return 0;
}

static int sc_seg0_index(const sc_ctx *c, const char *name)
{
	for (unsigned i = 0; i < c->nsegs0; i++)
		if (!strcmp(c->segs0[i], name))
			return (int)i;
	return -1;
}

/* Every decision of an expiry against the acknowledged holds; a deletion
 * reported is complete (ql_expire calls fn after the last fsync). */
static int sc_expiry_seen(const ql_expiry *e, void *p)
{
	sc_ctx *c = p;
	const char *name = strchr(e->name, '/') ? strchr(e->name, '/') + 1
						: e->name;
	int64_t b = e->bucket_start;
	int due = b + T_HOUR <= c->now - SC_R, want, k;
	char ids[64];
	int held = sc_model_held(c, b, c->now, ids, sizeof(ids));

	want = !due ? QL_EXPIRE_YOUNG : held ? QL_EXPIRE_HELD
					     : QL_EXPIRE_DELETE;
	if (e->action != want)
		SC_FAIL(c, "ql_expire at +%llds: %s: action %d, expected %d "
			"(due %d, held by \"%s\")",
			(long long)((c->now - T_EPOCH) / T_SEC), e->name,
			e->action, want, due, ids);
	if (e->action == QL_EXPIRE_HELD &&
	    (!e->held_by || strcmp(e->held_by, ids)))
		SC_FAIL(c, "ql_expire: %s held by \"%s\", expected \"%s\"",
			e->name, e->held_by ? e->held_by : "(null)", ids);
	k = sc_seg0_index(c, name);
	if (e->action == QL_EXPIRE_DELETE) {
		if (k < 0)
			SC_FAIL(c, "ql_expire deleted %s, a segment made after "
				"the script began", e->name);
		else
			c->gone[k] = 1;
	}
	if (c->nexpire < 2) {
		c->ndel[c->nexpire] += e->action == QL_EXPIRE_DELETE;
		c->nheld[c->nexpire] += e->action == QL_EXPIRE_HELD;
	}
	return 0;
}

/* The names in dir/seg that are segments (or, with del, *.del files). */
static unsigned sc_list_segs(const char *dir, char (*out)[QLI_SEG_NAME_MAX],
			     unsigned max, int del)
{
	char p[600];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	snprintf(p, sizeof(p), "%s/seg", dir);
	d = opendir(p);
	while (d && (de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		int64_t b;
		uint32_t g;

		if (del ? len < 4 || strcmp(de->d_name + len - 4, ".del")
			: qli_seg_name_parse(de->d_name, &b, &g) != 0)
			continue;
		if (n < max)
			snprintf(out[n], QLI_SEG_NAME_MAX, "%.*s",
				 QLI_SEG_NAME_MAX - 1, de->d_name);
		n++;
	}
	if (d)
		closedir(d);
	return n;
}

static int sc_seg_exists(const char *dir, const char *name)
{
	char p[700];

	snprintf(p, sizeof(p), "%s/seg/%s", dir, name);
	return access(p, F_OK) == 0;
}

static int sc_expire(sc_ctx *c)
{
	unsigned call = c->nexpire;
	int rc;

	if (call < 2)
		c->ndel[call] = c->nheld[call] = 0;
	rc = ql_expire(c->s, 0, "cron", sc_expiry_seen, c);
	if (rc)
		return sc_fail(c, rc, "ql_expire");
	c->nexpire++;
	sc_lapses_acked(c);
	/* what it reported is what the directory holds */
	for (unsigned i = 0; i < c->nsegs0; i++)
		if (sc_seg_exists(c->dir, c->segs0[i]) == c->gone[i])
			SC_FAIL(c, "after ql_expire: %s is %s", c->segs0[i],
				c->gone[i] ? "reported deleted but still there"
					   : "gone but not reported deleted");
	return 0;
}

/* Reads every record through queries that use the index, against the
 * scan (defined with the checks below). */
static void sc_queries(sc_ctx *c, ql_store *s, const char *what);
static void sc_vis_load(sc_ctx *c, ql_store *s, int64_t now);
static unsigned sc_scan(sc_ctx *c, ql_store *s, const char *what);

static int sc_reindex(sc_ctx *c)
{
	int rc = ql_reindex(c->s);

	if (rc)
		return sc_fail(c, rc, "ql_reindex");
	/* the index is new: indexed queries answer as the scan does */
	if (!fv_dead()) {
		sc_vis_load(c, c->s, c->now);
		sc_scan(c, c->s, "after ql_reindex");
		sc_queries(c, c->s, "after ql_reindex");
	}
	return 0;
}

static int sc_maint_body(sc_ctx *c)
{
	int rc;

	t_setclock(&c->now, SC_M_T0);
	if ((rc = sc_open(c, 1)))
		return rc;
	for (int k = 0; k < 3; k++)
		if ((rc = sc_append(c, SC_M_T0 + k * 10 * T_SEC, T_SEC,
				    1 + k % 3, 3)))
			return rc;
	sc_phase(c, SC_PH_HOLDS);
	if ((rc = sc_place(c, 0, SC_M_T0 + 40 * T_DAY)) ||
	    (rc = sc_place(c, 1, SC_M_T2)) || (rc = sc_extend(c, 0, 0)))
		return rc;
	sc_phase(c, SC_PH_OTHER);
	t_setclock(&c->now, SC_M_T1);
	sc_phase(c, SC_PH_EXPIRE);
	if ((rc = sc_expire(c)))
		return rc;
	sc_phase(c, SC_PH_OTHER);
	for (int k = 0; k < 3; k++)
		if ((rc = sc_append(c, SC_M_T1 + k * 10 * T_SEC, T_SEC,
				    1 + k % 3, 3)))
			return rc;
	sc_phase(c, SC_PH_HOLDS);
	if ((rc = sc_place(c, 2, SC_M_T1 + 40 * T_DAY)))
		return rc;
	sc_phase(c, SC_PH_OTHER);
	t_setclock(&c->now, SC_M_T3);
	sc_phase(c, SC_PH_HOLDS);
	if ((rc = sc_release(c, 0)) ||
	    (rc = sc_extend(c, 2, SC_M_T1 + 50 * T_DAY)))
		return rc;
	sc_phase(c, SC_PH_EXPIRE);
	if ((rc = sc_expire(c)))
		return rc;
	sc_phase(c, SC_PH_OTHER);
	if ((rc = sc_append(c, SC_M_T3 - 2 * T_MIN, T_SEC, 2, 2)))
		return rc;
	sc_phase(c, SC_PH_REINDEX);
	if ((rc = sc_reindex(c)))
		return rc;
	sc_phase(c, SC_PH_OTHER);
	if ((rc = sc_append(c, SC_M_T3 - T_MIN, T_SEC, 3, 3)))
		return rc;
	return sc_close(c);
}

/* Runs the maintenance script on the store c->dir that sc_run left (c
 * holds its records). fault_phase: -1, or the only phase whose
 * operations the fault vfs counts. */
SC_MAYBE_UNUSED static int sc_run_maint(sc_ctx *c, int fault_phase)
{
	int rc;

	c->maint = 1;
	c->check_now = SC_M_CHECK;
	c->rc = 0;
	c->where[0] = c->msg[0] = '\0';
	c->fault_phase = fault_phase;
	c->hit_phase = -1;
	memset(c->hm, 0, sizeof(c->hm));
	memset(c->gone, 0, sizeof(c->gone));
	c->nexpire = 0;
	c->nsegs0 = sc_list_segs(c->dir, c->segs0, SC_MAXSEG, 0);
	if (c->nsegs0 > SC_MAXSEG)
		abort();
	c->cur_phase = -1;
	sc_phase(c, SC_PH_OTHER);
	rc = sc_maint_body(c);
	sc_phase(c, SC_PH_OTHER);
	if (c->fault_phase >= 0)
		fv_pause(0);
	return rc;
}

/* After a run with no failure: the scenario is the one described above
 * (the store decided as the model, and the model is what it claims). */
SC_MAYBE_UNUSED static void sc_maint_sanity(sc_ctx *c)
{
	if (c->nexpire != 2 || c->ndel[0] != 2 || c->nheld[0] != 2 ||
	    c->ndel[1] != 1 || c->nheld[1] != 1)
		SC_FAIL(c, "maintenance script: %u expiries, deleted %u then "
			"%u, held %u then %u (expected 2, 2 then 1, 2 then 1)",
			c->nexpire, c->ndel[0], c->ndel[1], c->nheld[0],
			c->nheld[1]);
	if (!c->hm[1].lapse_acked || c->hm[0].released != SC_ACKED ||
	    c->hm[2].nextend_acked != 1 || c->hm[0].nextend_acked != 1)
		SC_FAIL(c, "maintenance script: hold model off (H2 lapse %d, "
			"H1 released %d)", c->hm[1].lapse_acked,
			c->hm[0].released);
}

/* ---------------------------------------------------------------------- */
/* checks                                                                  */
/* ---------------------------------------------------------------------- */

/* ql_hold_list into c->vis (the holds in force at now): which buckets
 * reads may show. */
static int sc_vis_one(const ql_hold *h, void *p)
{
	sc_ctx *c = p;

	if (h->state == QL_HOLD_ACTIVE && c->nvis < 8) {
		c->vis[c->nvis].from = h->from;
		c->vis[c->nvis].to = h->to;
		c->nvis++;
	}
	return 0;
}

static void sc_vis_load(sc_ctx *c, ql_store *s, int64_t now)
{
	int rc;

	c->nvis = 0;
	c->vis_now = now;
	rc = ql_hold_list(s, sc_vis_one, c);
	if (rc)
		SC_FAIL(c, "ql_hold_list: %s: %s", ql_strerror(rc),
			ql_errmsg(NULL));
}

/* Whether reads at vis_now may return the records of bucket b: it is not
 * past due, or a hold in force covers it. */
static int sc_visible(const sc_ctx *c, int64_t b)
{
	if (b + T_HOUR > c->vis_now - SC_R)
		return 1;
	for (unsigned i = 0; i < c->nvis; i++)
		if (c->vis[i].from < b + T_HOUR && c->vis[i].to >= b)
			return 1;
	return 0;
}

/* Scans s: every acknowledged record of a visible bucket once (the
 * others are legitimately expired: never returned), nothing duplicated,
 * nothing that was never appended, every record intact, time order.
 * Call sc_vis_load first. Returns the number of records seen (the probe
 * excluded); sc_seen marks them. */
static uint8_t sc_seen[SC_MAXREC];

static unsigned sc_scan(sc_ctx *c, ql_store *s, const char *what)
{
	ql_query q = QL_QUERY_INIT;
	const ql_record *rec;
	int64_t last = INT64_MIN;
	unsigned n = 0, lost = 0, nacked = 0;
	ql_cursor *cur;
	int rc;

	memset(sc_seen, 0, sizeof(sc_seen));
	rc = ql_cursor_open(&cur, s, &q);
	if (rc) {
		SC_FAIL(c, "%s: cursor_open: %s: %s", what, ql_strerror(rc),
			ql_errmsg(NULL));
		return 0;
	}
	while ((rc = ql_cursor_next(cur, &rec)) == QL_ROW) {
		uint64_t id;
		char *end;
		sc_rec t;

		if (rec->ts < last)
			SC_FAIL(c, "%s: records out of time order", what);
		last = rec->ts;
		if (!strcmp(rec->requester, SC_PROBE))
			continue;
		id = strtoull(rec->requester + 2, &end, 10);
		if (strncmp(rec->requester, "+1", 2) || *end ||
		    id >= c->nrec || !c->tried[id]) {
			SC_FAIL(c, "%s: a record that was never appended "
				"(requester %s)", what, rec->requester);
			continue;
		}
		if (sc_seen[id]++) {
			SC_FAIL(c, "%s: record %llu appears twice", what,
				(unsigned long long)id);
			continue;
		}
		if (c->refused[id])
			SC_FAIL(c, "%s: record %llu appears although its "
				"ql_append failed", what,
				(unsigned long long)id);
		n++;
		if (!sc_visible(c, sc_bucket(c->ts[id])))
			SC_FAIL(c, "%s: record %llu returned, but its segment "
				"is past due and no hold covers it", what,
				(unsigned long long)id);
		sc_make(&t, (uint32_t)id, c->ts[id], 1);
		if (rec->ts != t.r.ts || strcmp(rec->target, t.tgt) ||
		    memcmp(rec->ip, t.r.ip, 16) ||
		    rec->service != t.r.service || rec->result != t.r.result)
			SC_FAIL(c, "%s: record %llu differs from what was "
				"appended", what, (unsigned long long)id);
	}
	if (rc != QL_DONE)
		SC_FAIL(c, "%s: scan: %s: %s", what, ql_strerror(rc),
			ql_errmsg(NULL));
	ql_cursor_close(cur);
	for (uint32_t i = 0; i < c->nrec; i++) {
		if (!c->acked[i] || !sc_visible(c, sc_bucket(c->ts[i])))
			continue;
		nacked++;
		if (!sc_seen[i])
			lost++;
	}
	if (lost)
		SC_FAIL(c, "%s: %u acknowledged records lost (of %u)", what,
			lost, nacked);
	return n;
}

/* ---- queries through the index, against the scan ---- */

typedef struct sc_query {
	ql_query q;
	char h[QL_HANDLE_MAX + 1]; /* canonical handle */
	char desc[96];
} sc_query;

static int sc_query_match(const sc_query *sq, uint32_t id, int64_t ts)
{
	const ql_query *q = &sq->q;
	sc_rec t;

	if ((q->since && ts < q->since) || (q->until && ts >= q->until))
		return 0;
	sc_make(&t, id, ts, 1);
	if (q->match == QL_MATCH_HANDLE)
		return ((q->role != QL_ROLE_TARGET && !strcmp(t.req, sq->h)) ||
			(q->role != QL_ROLE_REQUESTER &&
			 !strcmp(t.tgt, sq->h)));
	if (q->match == QL_MATCH_IP) {
		for (unsigned b = 0; b < q->prefix_len; b++) {
			unsigned m = 0x80u >> (b % 8);

			if ((t.r.ip[b / 8] & m) != (q->ip[b / 8] & m))
				return 0;
		}
	}
	return 1;
}

static void sc_query_run(sc_ctx *c, ql_store *s, const sc_query *sq,
			 const char *what)
{
	static uint8_t got[SC_MAXREC];
	const ql_record *rec;
	int64_t last = INT64_MIN;
	unsigned missing = 0, extra = 0, want = 0;
	ql_cursor *cur;
	int rc;

	memset(got, 0, sizeof(got));
	rc = ql_cursor_open(&cur, s, &sq->q);
	if (rc) {
		SC_FAIL(c, "%s: query %s: %s: %s", what, sq->desc,
			ql_strerror(rc), ql_errmsg(NULL));
		return;
	}
	while ((rc = ql_cursor_next(cur, &rec)) == QL_ROW) {
		uint64_t id;
		char *end;

		if (!strcmp(rec->requester, SC_PROBE))
			continue;
		if (rec->ts < last)
			SC_FAIL(c, "%s: query %s: out of time order", what,
				sq->desc);
		last = rec->ts;
		id = strtoull(rec->requester + 2, &end, 10);
		if (*end || id >= c->nrec || !sc_seen[id] ||
		    !sc_query_match(sq, (uint32_t)id, c->ts[id]) ||
		    got[id]++)
			extra++;
	}
	if (rc != QL_DONE)
		SC_FAIL(c, "%s: query %s: %s: %s", what, sq->desc,
			ql_strerror(rc), ql_errmsg(NULL));
	ql_cursor_close(cur);
	for (uint32_t id = 0; id < c->nrec; id++) {
		if (!sc_seen[id] || !sc_query_match(sq, id, c->ts[id]))
			continue;
		want++;
		if (!got[id])
			missing++;
	}
	if (missing || extra)
		SC_FAIL(c, "%s: query %s: %u of %u records missing, %u "
			"returned that the scan does not match", what,
			sq->desc, missing, want, extra);
}

/* Queries that use the index (handles in each role, addresses, prefixes,
 * time windows) answer exactly as a brute-force filter of the scan that
 * sc_scan just did. */
static void sc_queries(sc_ctx *c, ql_store *s, const char *what)
{
	uint32_t pick[4] = { 0, 0, 0, 0 }, nseen = 0, id;
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	sc_query sq;
	sc_rec t;

	for (id = 0; id < c->nrec; id++) {
		if (!sc_seen[id])
			continue;
		/* ids spread over what is there: first, 1/3, 2/3, last */
		if (!nseen)
			pick[0] = id;
		pick[3] = id;
		nseen++;
		if (c->ts[id] < lo)
			lo = c->ts[id];
		if (c->ts[id] > hi)
			hi = c->ts[id];
	}
	if (nseen) {
		uint32_t k = 0;

		for (id = 0; id < c->nrec; id++) {
			if (!sc_seen[id])
				continue;
			if (k == nseen / 3)
				pick[1] = id;
			if (k == 2 * nseen / 3)
				pick[2] = id;
			k++;
		}
	}
	for (int i = 0; i < 4; i++) {
		/* as requester, as the handle was appended */
		memset(&sq, 0, sizeof(sq));
		sq.q = (ql_query)QL_QUERY_INIT;
		sc_make(&t, pick[i], 0, 0);
		sq.q.match = QL_MATCH_HANDLE;
		sq.q.role = i % 2 ? QL_ROLE_ANY : QL_ROLE_REQUESTER;
		snprintf(sq.h, sizeof(sq.h), "%s", t.req);
		sq.q.handle = t.req;
		snprintf(sq.desc, sizeof(sq.desc), "handle %s role %d", t.req,
			 sq.q.role);
		sc_query_run(c, s, &sq, what);
		/* as target: an email appended in mixed case, or a phone */
		sc_make(&t, pick[i] & ~3u, 0, 0);
		sq.q.role = i % 2 ? QL_ROLE_TARGET : QL_ROLE_ANY;
		sq.q.handle = t.tgt;
		{
			sc_rec canon;

			sc_make(&canon, pick[i] & ~3u, 0, 1);
			snprintf(sq.h, sizeof(sq.h), "%s", canon.tgt);
		}
		snprintf(sq.desc, sizeof(sq.desc), "handle %s role %d", t.tgt,
			 sq.q.role);
		sc_query_run(c, s, &sq, what);
		/* one address */
		memset(&sq, 0, sizeof(sq));
		sq.q = (ql_query)QL_QUERY_INIT;
		sc_make(&t, pick[i] | (uint32_t)(i % 2), 0, 0);
		sq.q.match = QL_MATCH_IP;
		memcpy(sq.q.ip, t.r.ip, 16);
		sq.q.prefix_len = 128;
		snprintf(sq.desc, sizeof(sq.desc), "ip of record %u",
			 pick[i] | (uint32_t)(i % 2));
		sc_query_run(c, s, &sq, what);
	}
	/* every IPv4 (10/8), every IPv6 (2001::/16), a narrow IPv4 prefix,
	 * and a window over the middle of the time range */
	memset(&sq, 0, sizeof(sq));
	sq.q = (ql_query)QL_QUERY_INIT;
	sq.q.match = QL_MATCH_IP;
	sq.q.ip[10] = sq.q.ip[11] = 0xff;
	sq.q.ip[12] = 10;
	sq.q.prefix_len = 104;
	snprintf(sq.desc, sizeof(sq.desc), "10.0.0.0/8");
	sc_query_run(c, s, &sq, what);
	sc_make(&t, pick[2] | 1u, 0, 0);
	memcpy(sq.q.ip, t.r.ip, 16);
	sq.q.ip[15] = 0;
	sq.q.prefix_len = 120;
	snprintf(sq.desc, sizeof(sq.desc), "a /24 of record %u", pick[2] | 1u);
	sc_query_run(c, s, &sq, what);
	memset(sq.q.ip, 0, 16);
	sq.q.ip[0] = 0x20;
	sq.q.ip[1] = 0x01;
	sq.q.prefix_len = 16;
	if (nseen) {
		sq.q.since = lo + (hi - lo) / 4;
		sq.q.until = hi - (hi - lo) / 4;
	}
	snprintf(sq.desc, sizeof(sq.desc), "2001::/16 in a window");
	sc_query_run(c, s, &sq, what);
	/* a record that is gone (expired, or lost unacknowledged) */
	for (id = 0; id < c->nrec && sc_seen[id]; id++)
		;
	if (id < c->nrec) {
		memset(&sq, 0, sizeof(sq));
		sq.q = (ql_query)QL_QUERY_INIT;
		sc_make(&t, id, 0, 0);
		sq.q.match = QL_MATCH_HANDLE;
		sq.q.role = QL_ROLE_ANY;
		snprintf(sq.h, sizeof(sq.h), "%s", t.req);
		sq.q.handle = t.req;
		snprintf(sq.desc, sizeof(sq.desc), "handle %s (not there)",
			 t.req);
		sc_query_run(c, s, &sq, what);
	}
}

/* ---- holds ---- */

typedef struct sc_hlist {
	sc_ctx *c;
	const char *what;
	int64_t now;
	uint8_t found[SC_NHOLDS];
} sc_hlist;

static int sc_hold_listed(const ql_hold *h, void *p)
{
	sc_hlist *l = p;
	sc_ctx *c = l->c;
	const sc_hm *m;
	int k, ok_state;

	for (k = 0; k < SC_NHOLDS; k++)
		if (!strcmp(h->order_id, sc_hold_spec[k].id))
			break;
	if (k == SC_NHOLDS) {
		SC_FAIL(c, "%s: a hold nobody placed: %s", l->what,
			h->order_id);
		return 0;
	}
	m = &c->hm[k];
	l->found[k] = 1;
	c->hl_state[k] = h->state;
	c->hl_exp[k] = h->expires;
	if (m->placed == SC_NOT)
		SC_FAIL(c, "%s: hold %s is there, but was never placed",
			l->what, h->order_id);
	if (h->from != sc_hold_spec[k].from || h->to != sc_hold_spec[k].to ||
	    h->period_us != m->period || strcmp(h->reason, SC_HOLD_REASON) ||
	    strcmp(h->placed_by, SC_HOLD_BY) || h->nsubjects != (k == 0) ||
	    (k == 0 && strcmp(h->subjects[0], SC_HOLD_SUBJECT)))
		SC_FAIL(c, "%s: hold %s differs from what was placed", l->what,
			h->order_id);
	if (h->expires != m->exp &&
	    (!m->exp_maybe || h->expires != m->exp_maybe))
		SC_FAIL(c, "%s: hold %s expires at +%llds, expected +%llds%s",
			l->what, h->order_id,
			(long long)((h->expires - T_EPOCH) / T_SEC),
			(long long)((m->exp - T_EPOCH) / T_SEC),
			m->exp_maybe ? " or a failed extension's expiry" : "");
	/* released: as acknowledged; a failed release either way */
	if (h->state == QL_HOLD_RELEASED)
		ok_state = m->released != SC_NOT;
	else
		ok_state = m->released != SC_ACKED &&
			   h->state == (l->now >= h->expires ? QL_HOLD_LAPSED
							     : QL_HOLD_ACTIVE);
	if (!ok_state)
		SC_FAIL(c, "%s: hold %s in state %d (release %s)", l->what,
			h->order_id, h->state,
			m->released == SC_ACKED ? "acknowledged" :
			m->released == SC_TRIED ? "failed" : "never asked");
	return 0;
}

/* The holds a reopened store lists: every acknowledged change there, a
 * failed one whole or not at all; a lapse an acknowledged call recorded
 * is recorded in HOLDS. */
static void sc_holds_check(sc_ctx *c, ql_store *s, const char *dir,
			   int64_t now, const char *what)
{
	sc_hlist l = { c, what, now, { 0 } };
	qli_holdset set;
	int rc, dfd;

	for (int k = 0; k < SC_NHOLDS; k++)
		c->hl_state[k] = -1;
	rc = ql_hold_list(s, sc_hold_listed, &l);
	if (rc) {
		SC_FAIL(c, "%s: ql_hold_list: %s: %s", what, ql_strerror(rc),
			ql_errmsg(NULL));
		return;
	}
	for (int k = 0; k < SC_NHOLDS; k++)
		if (!l.found[k] && c->hm[k].placed == SC_ACKED)
			SC_FAIL(c, "%s: hold %s was placed (acknowledged) and "
				"is gone", what, sc_hold_spec[k].id);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || qli_holds_load(dfd, &set)) {
		SC_FAIL(c, "%s: cannot load HOLDS: %s", what, ql_errmsg(NULL));
	} else {
		for (int k = 0; k < SC_NHOLDS; k++) {
			const qli_hold *h = qli_holds_find(&set,
							   sc_hold_spec[k].id);

			if (c->hm[k].lapse_acked &&
			    (!h || h->state != QLI_HOLD_LAPSED))
				SC_FAIL(c, "%s: hold %s: its lapse was "
					"recorded by an acknowledged call, "
					"HOLDS says state %d", what,
					sc_hold_spec[k].id, h ? h->state : -1);
		}
		qli_holds_free(&set);
	}
	if (dfd >= 0)
		close(dfd);
}

/* ---- the audit trail ---- */

typedef struct sc_tally {
	sc_ctx *c;
	const char *what;
	unsigned hold[SC_NHOLDS][4]; /* placed, extended, released, lapsed */
	int64_t ext_max[SC_NHOLDS];  /* latest expiry an extension names */
	uint8_t expired[SC_MAXSEG];
	unsigned n;
} sc_tally;

/* The string value of "key" at top level (first occurrence), into out. */
static int sc_json_str(const char *json, const char *key, char *out,
		       size_t len)
{
	char pat[40];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(json, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	e = strchr(p, '"');
	if (!e || (size_t)(e - p) >= len)
		return -1;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return 0;
}

static int sc_audit_one(const char *json, size_t len, void *p)
{
	static const char *const hev[4] = { "hold_placed", "hold_extended",
					    "hold_released", "hold_lapsed" };
	sc_tally *t = p;
	char ev[40], v[80], tb[48];

	(void)len;
	t->n++;
	if (sc_json_str(json, "event", ev, sizeof(ev))) {
		SC_FAIL(t->c, "%s: audit event without a name: %.80s",
			t->what, json);
		return 0;
	}
	if (!strcmp(ev, "segment_expired")) {
		int k;

		int64_t b;
		uint32_t g;

		/* one the script began with, or one made later (a record
		 * appended after a failure) that is past due and unheld */
		if (sc_json_str(json, "segment", v, sizeof(v)) ||
		    qli_seg_name_parse(v, &b, &g))
			SC_FAIL(t->c, "%s: audit: expiry of no segment: %.80s",
				t->what, json);
		else if ((k = sc_seg0_index(t->c, v)) >= 0)
			t->expired[k] = 1;
		else if (sc_visible(t->c, b))
			SC_FAIL(t->c, "%s: audit: expiry of %s, which is "
				"young or held", t->what, v);
		return 0;
	}
	for (int e = 0; e < 4; e++) {
		if (strcmp(ev, hev[e]))
			continue;
		if (sc_json_str(json, "order_id", v, sizeof(v)))
			break;
		for (int k = 0; k < SC_NHOLDS; k++) {
			int64_t x;

			if (strcmp(v, sc_hold_spec[k].id))
				continue;
			t->hold[k][e]++;
			if (e == 1 && !sc_json_str(json, "new_expires", tb,
						   sizeof(tb)) &&
			    !ql_time_parse(&x, tb, 0, "new_expires") &&
			    x > t->ext_max[k])
				t->ext_max[k] = x;
		}
	}
	return 0;
}

/* The trail reads back whole (every checksum and link verified; a torn
 * last record after a cut is skipped, as audit.h promises) and holds an
 * event for each acknowledged change; with final, also one for every
 * segment that is gone, and none for a segment that is still there. */
static void sc_audit_check(sc_ctx *c, ql_store *s, const char *dir,
			   const char *what, int final)
{
	sc_tally t;
	int rc;

	memset(&t, 0, sizeof(t));
	t.c = c;
	t.what = what;
	rc = ql_audit_read(s, 0, NULL, sc_audit_one, &t);
	if (rc) {
		SC_FAIL(c, "%s: audit trail: %s: %s", what, ql_strerror(rc),
			ql_errmsg(NULL));
		return;
	}
	for (int k = 0; k < SC_NHOLDS; k++) {
		const sc_hm *m = &c->hm[k];
		const char *id = sc_hold_spec[k].id;

		if ((m->placed == SC_ACKED && !t.hold[k][0]) ||
		    t.hold[k][0] > 1 || (m->placed == SC_NOT && t.hold[k][0]))
			SC_FAIL(c, "%s: audit: %u hold_placed events for %s "
				"(placement %s)", what, t.hold[k][0], id,
				m->placed == SC_ACKED ? "acknowledged" :
				m->placed ? "failed" : "never asked");
		if (t.hold[k][1] < m->nextend_acked)
			SC_FAIL(c, "%s: audit: %u hold_extended events for %s, "
				"%u extensions acknowledged", what,
				t.hold[k][1], id, m->nextend_acked);
		if (m->released == SC_ACKED && !t.hold[k][2])
			SC_FAIL(c, "%s: audit: release of %s acknowledged, not "
				"recorded", what, id);
		if (m->lapse_acked && !t.hold[k][3])
			SC_FAIL(c, "%s: audit: lapse of %s recorded in HOLDS by "
				"an acknowledged call, not in the trail", what,
				id);
		/* a change is saved before it is audited: the trail never
		 * records one that is not in force (sc_holds_check listed
		 * the holds) */
		if (t.hold[k][0] && c->hl_state[k] < 0)
			SC_FAIL(c, "%s: audit: %s recorded as placed, but "
				"HOLDS does not have it", what, id);
		if (t.hold[k][2] && c->hl_state[k] != QL_HOLD_RELEASED)
			SC_FAIL(c, "%s: audit: %s recorded as released, but "
				"HOLDS has it in state %d", what, id,
				c->hl_state[k]);
		if (t.hold[k][1] && c->hl_state[k] >= 0 &&
		    t.ext_max[k] > c->hl_exp[k])
			SC_FAIL(c, "%s: audit: %s recorded as extended to "
				"+%llds, HOLDS has +%llds", what, id,
				(long long)((t.ext_max[k] - T_EPOCH) / T_SEC),
				(long long)((c->hl_exp[k] - T_EPOCH) / T_SEC));
	}
	for (unsigned i = 0; final && i < c->nsegs0; i++) {
		int there = sc_seg_exists(dir, c->segs0[i]);

		if (!there && !t.expired[i])
			SC_FAIL(c, "%s: %s is gone and the audit trail does "
				"not record its expiry", what, c->segs0[i]);
		if (there && t.expired[i])
			SC_FAIL(c, "%s: the audit trail records the expiry of "
				"%s, which is still there", what,
				c->segs0[i]);
	}
}

/* ---- files and the index ---- */

/* Before reopening: what an acknowledged expiry deleted stays deleted. */
static void sc_gone_check(sc_ctx *c, const char *dir, const char *what)
{
	for (unsigned i = 0; i < c->nsegs0; i++) {
		char del[QLI_SEG_NAME_MAX + 8];

		if (!c->gone[i])
			continue;
		snprintf(del, sizeof(del), "%s.del", c->segs0[i]);
		if (sc_seg_exists(dir, c->segs0[i]) || sc_seg_exists(dir, del))
			SC_FAIL(c, "%s: %s is back: its deletion was "
				"reported done", what, c->segs0[i]);
	}
}

/* After the check's own ql_expire: no deletion left half done, nothing
 * left that is past due and unheld. */
static void sc_files_check(sc_ctx *c, const char *dir, const char *what)
{
	char names[SC_MAXSEG][QLI_SEG_NAME_MAX];
	unsigned n = sc_list_segs(dir, names, SC_MAXSEG, 1);

	if (n)
		SC_FAIL(c, "%s: after ql_expire, %u .del files are left "
			"(%s)", what, n, names[0]);
	n = sc_list_segs(dir, names, SC_MAXSEG, 0);
	for (unsigned i = 0; i < n && i < SC_MAXSEG; i++) {
		int64_t b;
		uint32_t g;

		if (!qli_seg_name_parse(names[i], &b, &g) && !sc_visible(c, b))
			SC_FAIL(c, "%s: after ql_expire, %s is past due and "
				"unheld but still there", what, names[i]);
	}
}

typedef struct sc_ixctx {
	sc_ctx *c;
	const char *dir, *what;
} sc_ixctx;

static int sc_ix_seg(int64_t b, uint32_t g, void *p)
{
	sc_ixctx *x = p;
	char name[QLI_SEG_NAME_MAX];

	qli_seg_name(name, b, g);
	if (!sc_seg_exists(x->dir, name))
		SC_FAIL(x->c, "%s: the index still has entries for %s, which "
			"is gone", x->what, name);
	return 0;
}

/* After closing: the index has entries only for segments that exist. */
static void sc_index_check(sc_ctx *c, const char *dir, const char *what)
{
	sc_ixctx x = { c, dir, what };
	qli_index *ix = NULL;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY), rc;

	if (dfd < 0)
		return;
	rc = qli_index_open(&ix, dfd, dir, 0, 0, 0);
	if (rc)
		SC_FAIL(c, "%s: index: %s: %s", what, ql_strerror(rc),
			ql_errmsg(NULL));
	if (!rc && ix && (rc = qli_index_segments(ix, sc_ix_seg, &x)))
		SC_FAIL(c, "%s: index: %s: %s", what, ql_strerror(rc),
			ql_errmsg(NULL));
	qli_index_close(ix);
	close(dfd);
}

static int sc_seg_ok(const ql_segment_info *i, void *ctx)
{
	sc_ctx *c = ctx;

	if (i->status)
		SC_FAIL(c, "verify: %s damaged at %llu: %s", i->name,
			(unsigned long long)i->bad_offset,
			ql_strerror(i->status));
	return 0;
}

/* Reopens dir with the real vfs as an application would after a crash
 * (QL_OPEN_CREATE, no manual step) at the check's clock and checks it:
 * what acknowledged calls promised (records, holds, deletions, audit
 * events), indexed queries against the scan, a full verification, that
 * ql_expire finishes any interrupted deletion and leaves the index
 * without entries for what is gone, sealing of what is due, and that it
 * takes appends. */
static void sc_check(sc_ctx *c, const char *dir, const char *what)
{
	int64_t now = c->check_now ? c->check_now : SC_CHECK_NOW;
	ql_options o = sc_opts(&now, 0);
	const qli_vfs *saved = qli_vfs_cur;
	unsigned n1, n2;
	ql_store *s;
	sc_rec t;
	int rc;

	qli_vfs_cur = &qli_vfs_posix;
	sc_gone_check(c, dir, what);
	rc = ql_open(&s, dir, &o);
	if (rc) {
		SC_FAIL(c, "%s: reopen failed: %s: %s", what, ql_strerror(rc),
			ql_errmsg(NULL));
		qli_vfs_cur = saved;
		return;
	}
	sc_holds_check(c, s, dir, now, what);
	sc_vis_load(c, s, now);
	n1 = sc_scan(c, s, what);
	sc_queries(c, s, what);
	sc_audit_check(c, s, dir, what, 0);
	rc = ql_segments(s, 1, sc_seg_ok, c);
	if (rc)
		SC_FAIL(c, "%s: ql_segments(verify): %s: %s", what,
			ql_strerror(rc), ql_errmsg(NULL));
	rc = ql_maintain(s);
	if (rc)
		SC_FAIL(c, "%s: maintain after reopen: %s: %s", what,
			ql_strerror(rc), ql_errmsg(NULL));
	rc = ql_expire(s, 0, "check", NULL, NULL);
	if (rc)
		SC_FAIL(c, "%s: ql_expire after reopen: %s: %s", what,
			ql_strerror(rc), ql_errmsg(NULL));
	n2 = sc_scan(c, s, what);
	if (n1 != n2)
		SC_FAIL(c, "%s: %u records before sealing and expiry, %u "
			"after", what, n1, n2);
	sc_files_check(c, dir, what);
	sc_audit_check(c, s, dir, what, 1);
	sc_make(&t, 0, now - T_MIN, 0);
	t.r.requester = SC_PROBE;
	rc = ql_append(s, &t.r, 1, NULL);
	if (!rc)
		rc = ql_sync(s);
	if (rc)
		SC_FAIL(c, "%s: append after reopen: %s: %s", what,
			ql_strerror(rc), ql_errmsg(NULL));
	rc = ql_close(s);
	if (rc)
		SC_FAIL(c, "%s: close after reopen: %s: %s", what,
			ql_strerror(rc), ql_errmsg(NULL));
	sc_index_check(c, dir, what);
	qli_vfs_cur = saved;
}

#endif
