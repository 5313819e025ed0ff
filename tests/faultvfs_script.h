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
 * QL_SYNC_EVERY_APPEND. The script stops at the first call that fails. */
#ifndef QL_FAULTVFS_SCRIPT_H
#define QL_FAULTVFS_SCRIPT_H

#include "testutil.h"

#include "faultvfs.h"
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
	c->now = SC_A + 50 * T_MIN;
	if ((rc = sc_open(c, 0)))
		return rc;
	for (int b = 0; b < 4; b++) {
		if ((rc = sc_append(c, SC_A + (10 + 10 * b) * T_MIN,
				    10 * T_SEC, 40, 13)) ||
		    (rc = sc_sync(c)))
			return rc;
	}
	c->now = SC_B + 5 * T_MIN;
	if ((rc = sc_append(c, SC_B, 5 * T_SEC, 40, 16)) ||
	    (rc = sc_maintain(c)) ||
	    (rc = sc_append(c, SC_A + 55 * T_MIN, 1, 3, 3)) ||
	    (rc = sc_sync(c)))
		return rc;
	for (int b = 0; b < 3; b++) {
		c->now = SC_B + (10 + 5 * b) * T_MIN;
		if ((rc = sc_append(c, SC_B + (5 + 5 * b) * T_MIN, 5 * T_SEC,
				    40, 7)) ||
		    (rc = sc_sync(c)))
			return rc;
	}
	if ((rc = sc_close(c)))
		return rc;

	c->now = SC_B + 40 * T_MIN;
	if ((rc = sc_open(c, 1)))
		return rc;
	for (int k = 0; k < 10; k++)
		if ((rc = sc_append(c, SC_B + 30 * T_MIN + k * 10 * T_SEC,
				    T_SEC, 1 + k % 3, 3)))
			return rc;
	c->now = SC_C + 2 * T_MIN;
	if ((rc = sc_maintain(c)))
		return rc;
	for (int k = 0; k < 10; k++)
		if ((rc = sc_append(c, SC_C + k * 10 * T_SEC, T_SEC,
				    1 + k % 3, 3)))
			return rc;
	return sc_close(c);
}

/* ---------------------------------------------------------------------- */
/* checks                                                                  */
/* ---------------------------------------------------------------------- */

/* Scans s: every acknowledged record once, nothing duplicated, nothing
 * that was never appended, every record intact, time order. Returns the
 * number of records seen (the probe excluded). */
static unsigned sc_scan(sc_ctx *c, ql_store *s, const char *what)
{
	static uint8_t seen[SC_MAXREC];
	ql_query q = QL_QUERY_INIT;
	const ql_record *rec;
	int64_t last = INT64_MIN;
	unsigned n = 0, lost = 0, nacked = 0;
	ql_cursor *cur;
	int rc;

	memset(seen, 0, sizeof(seen));
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
		if (seen[id]++) {
			SC_FAIL(c, "%s: record %llu appears twice", what,
				(unsigned long long)id);
			continue;
		}
		if (c->refused[id])
			SC_FAIL(c, "%s: record %llu appears although its "
				"ql_append failed", what,
				(unsigned long long)id);
		n++;
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
		nacked += c->acked[i];
		if (c->acked[i] && !seen[i])
			lost++;
	}
	if (lost)
		SC_FAIL(c, "%s: %u acknowledged records lost (of %u)", what,
			lost, nacked);
	return n;
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
 * (QL_OPEN_CREATE, no manual step) and checks it: the records, a full
 * verification, sealing of what is due, and that it takes appends. */
static void sc_check(sc_ctx *c, const char *dir, const char *what)
{
	int64_t now = SC_CHECK_NOW;
	ql_options o = sc_opts(&now, 0);
	const qli_vfs *saved = qli_vfs_cur;
	unsigned n1, n2;
	ql_store *s;
	sc_rec t;
	int rc;

	qli_vfs_cur = &qli_vfs_posix;
	rc = ql_open(&s, dir, &o);
	if (rc) {
		SC_FAIL(c, "%s: reopen failed: %s: %s", what, ql_strerror(rc),
			ql_errmsg(NULL));
		qli_vfs_cur = saved;
		return;
	}
	n1 = sc_scan(c, s, what);
	rc = ql_segments(s, 1, sc_seg_ok, c);
	if (rc)
		SC_FAIL(c, "%s: ql_segments(verify): %s: %s", what,
			ql_strerror(rc), ql_errmsg(NULL));
	rc = ql_maintain(s);
	if (rc)
		SC_FAIL(c, "%s: maintain after reopen: %s: %s", what,
			ql_strerror(rc), ql_errmsg(NULL));
	n2 = sc_scan(c, s, what);
	if (n1 != n2)
		SC_FAIL(c, "%s: %u records before sealing, %u after", what,
			n1, n2);
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
	qli_vfs_cur = saved;
}

#endif
