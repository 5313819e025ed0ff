/* fuzz_audit.c - bytes as the audit trail's month files, through the
 * reader (qli_audit_read: sums, chain, torn tail), the appender's checks
 * of the file it appends to (the integrity check every audited change,
 * and `logtool audit --enforce`, goes through), and audit expiry.
 *
 * Input: one flag byte, then the files.
 *   bit 0  fix each frame's xxh64, as far as the lengths walk;
 *   bit 1  fix each record's chain link: the 16 hex digits after the
 *          first "prev":" of a payload become the previous payload's
 *          hash (then the sums are fixed too);
 *   bit 2  two files: the next two bytes are where to cut the rest into
 *          audit/2026-10.log and audit/2026-11.log; else it is all
 *          audit/2026-11.log.
 * Invariants (a violation aborts):
 *   - every read returns 0 or QL_ECORRUPT (with a message naming the
 *     file); a payload handed out is NUL-terminated, len long, {...};
 *   - a read of the newest file alone agrees with the full read: same
 *     events at the end, and a full read that verifies implies it does;
 *     a read with since = the newest month gives exactly its events;
 *   - where jansson reads a payload (no escaped top-level key, no
 *     duplicate), its ts is the ts handed out, and reading with an
 *     order_id filter returns exactly the events whose order_id jansson
 *     decodes to it;
 *   - the appender appends (twice) exactly when the reader verifies the
 *     file it appends to (and, for one without a valid record, the file
 *     before it); refusing loses no valid record (a torn tail may go);
 *     after appending, the trail reads back as before plus the new
 *     events, each chained to the one before;
 *   - expiring the older month leaves a trail that still verifies.
 * The store directory is a temporary directory (TMPDIR), with fsync
 * turned off through the vfs seam. */
#define _GNU_SOURCE
#include "audit.h"
#include "codec.h"
#include "querylog.h"
#include "fuzz_util.h"
#include "vfs.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW INT64_C(1794700800000000)   /* 2026-11-15T00:00:00Z */
#define NOV_1 INT64_C(1793491200000000) /* 2026-11-01T00:00:00Z */
#define OLD "2026-10.log"
#define NEW "2026-11.log"
#define MAX_EVENTS 4096

static char dir[256];
static int dirfd = -1, adir = -1;
static qli_vfs fast;

static int no_sync(int fd)
{
	(void)fd;
	return 0;
}

static void clear(void)
{
	unlinkat(adir, OLD, 0);
	unlinkat(adir, NEW, 0);
}

static void cleanup(void)
{
	clear();
	close(adir);
	unlinkat(dirfd, QLI_AUDIT_DIR, AT_REMOVEDIR);
	close(dirfd);
	rmdir(dir);
}

static void setup(void)
{
	dirfd = fz_tempdir(dir, sizeof(dir));
	if (mkdirat(dirfd, QLI_AUDIT_DIR, 0700))
		abort();
	adir = openat(dirfd, QLI_AUDIT_DIR, O_RDONLY | O_DIRECTORY);
	if (adir < 0)
		abort();
	atexit(cleanup);
	fast = qli_vfs_posix;
	fast.fsync = no_sync;
	fast.fdatasync = no_sync;
	qli_vfs_cur = &fast;
}

static void write_file(const char *name, const uint8_t *p, size_t n)
{
	fz_write_file(adir, name, p, n);
}

/* 1 if the file holds exactly p[0..n), or with prefix, p[0..k) for some
 * k <= n. */
static int file_is(const char *name, const uint8_t *p, size_t n, int prefix)
{
	int fd = openat(adir, name, O_RDONLY);
	uint8_t *b = malloc(n + 1);
	ssize_t got;

	if (fd < 0 || !b)
		abort();
	got = pread(fd, b, n + 1, 0);
	close(fd);
	got = got >= 0 && (got == (ssize_t)n || (prefix && got < (ssize_t)n)) &&
	      !memcmp(b, p, (size_t)got);
	free(b);
	return (int)got;
}

/* Walks the frames as far as their lengths fit: fixes the chain link
 * (bit 1) and the sum (bits 0 and 1). *prev carries the chain. */
static void fix(uint8_t *f, size_t n, unsigned flags, uint64_t *prev)
{
	static const char key[] = "\"prev\":\"";
	size_t off = 0;

	while (off + QLI_AUDIT_FRAME_HDR <= n) {
		uint32_t len = qli_get32(f + off);
		uint8_t *pl = f + off + QLI_AUDIT_FRAME_HDR;

		if (!len || len > n - off - QLI_AUDIT_FRAME_HDR)
			return;
		if (flags & 2) {
			uint8_t *k = memmem(pl, len, key, sizeof(key) - 1);
			char hex[17];

			if (k && (size_t)(pl + len - k) >= sizeof(key) - 1 + 16) {
				snprintf(hex, sizeof(hex), "%016" PRIx64, *prev);
				memcpy(k + sizeof(key) - 1, hex, 16);
			}
		}
		*prev = qli_hash64(pl, len, 0);
		if (flags & 3)
			qli_put64(f + off + 4, *prev);
		off += QLI_AUDIT_FRAME_HDR + len;
	}
}

/* ---- reading ---- */

typedef struct event {
	uint64_t hash;
	int64_t ts;
	int known;       /* jansson read it: the fields below are meaningful */
	int has_oid, has_link;
	char oid[QLI_ORDER_ID_MAX + 1];
	uint64_t link;   /* prev */
} event;

typedef struct events {
	event v[MAX_EVENTS];
	size_t n;
	int rc;
	int64_t since;
} events;

/* Whether every top-level key of the JSON object text p[0..n) (valid,
 * as jansson found) is written without a backslash, so that the keys
 * jansson decodes are the raw keys the audit reader matches. */
static int plain_keys(const char *p, size_t n)
{
	int depth = 0, in_str = 0, want_key = 0, is_key = 0;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (in_str) {
			if (c == '\\') {
				if (is_key)
					return 0;
				i++;
			} else if (c == '"') {
				in_str = 0;
			}
			continue;
		}
		switch (c) {
		case '"':
			in_str = 1;
			is_key = depth == 1 && want_key;
			want_key = 0;
			break;
		case '{':
		case '[':
			depth++;
			want_key = c == '{' && depth == 1;
			break;
		case '}':
		case ']':
			depth--;
			break;
		case ',':
			want_key = depth == 1;
			break;
		}
	}
	return 1;
}

/* What jansson makes of the payload; checks its ts against the reader's. */
static void decode(event *e, const char *js, size_t len)
{
	json_error_t err;
	json_t *o, *ts, *oid, *link;

	o = json_loadb(js, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	if (!o)
		return;
	if (!json_is_object(o) || !plain_keys(js, len)) {
		json_decref(o);
		return;
	}
	ts = json_object_get(o, "ts");
	if (!json_is_integer(ts) || json_integer_value(ts) != e->ts)
		abort(); /* the reader took a ts that is not the payload's */
	oid = json_object_get(o, "order_id");
	link = json_object_get(o, "prev");
	e->known = 1;
	if (json_is_string(link) && json_string_length(link) == 16 &&
	    sscanf(json_string_value(link), "%16" SCNx64, &e->link) == 1)
		e->has_link = 1;
	if (json_is_string(oid) && json_string_length(oid) <= QLI_ORDER_ID_MAX &&
	    strlen(json_string_value(oid)) == json_string_length(oid)) {
		e->has_oid = 1;
		memcpy(e->oid, json_string_value(oid),
		       json_string_length(oid) + 1);
	} else if (oid && json_is_string(oid)) {
		e->known = 0; /* too long or with a NUL: no filter matches */
	}
	json_decref(o);
}

static int collect(const char *json, size_t len, int64_t ts, void *ctx)
{
	events *ev = ctx;
	event *e;

	if (strlen(json) != len || len < 2 || json[0] != '{' ||
	    json[len - 1] != '}' || ts < ev->since)
		abort();
	if (ev->n == MAX_EVENTS)
		return 1;
	e = &ev->v[ev->n++];
	memset(e, 0, sizeof(*e));
	e->hash = qli_hash64(json, len, 0);
	e->ts = ts;
	decode(e, json, len);
	return 0;
}

static void read_all(events *ev, int64_t since, const char *order_id)
{
	ev->n = 0;
	ev->since = since;
	ev->rc = qli_audit_read(dirfd, since, order_id, collect, ev);
	if (ev->rc == 1)
		return; /* more events than we keep: no comparison */
	if (ev->rc && (ev->rc != QL_ECORRUPT ||
		       !strstr(ql_errmsg(NULL), QLI_AUDIT_DIR "/")))
		abort();
}

/* b is the end of a */
static int ends_with(const events *a, const events *b)
{
	if (b->n > a->n)
		return 0;
	for (size_t i = 0; i < b->n; i++)
		if (a->v[a->n - b->n + i].hash != b->v[i].hash)
			return 0;
	return 1;
}

/* Reading with an order_id filter: exactly the events jansson says have
 * it (events jansson could not read may go either way). */
static void check_filter(const events *all, const char *oid)
{
	static events f;
	size_t j = 0;

	read_all(&f, INT64_MIN, oid);
	if (f.rc != all->rc)
		abort();
	for (size_t i = 0; i < all->n; i++) {
		const event *e = &all->v[i];
		int in = j < f.n && f.v[j].hash == e->hash;

		if (e->known && in != (e->has_oid && !strcmp(e->oid, oid)))
			abort();
		j += in;
	}
	if (j != f.n)
		abort();
}

/* ---- appending ---- */

static int append(qli_audit *a, int64_t now)
{
	return qli_audit_query(a, now, "fuzz", "ORD-1", "handle +14155550123");
}

/* after is before plus the two events appended, the first chained to
 * first_prev, the second to the first. */
static void check_appended(const events *before, const events *after,
			   uint64_t first_prev)
{
	const event *e;

	if (after->rc || after->n != before->n + 2)
		abort();
	for (size_t i = 0; i < before->n; i++)
		if (after->v[i].hash != before->v[i].hash)
			abort();
	e = &after->v[before->n];
	if (!e[0].known || !e[0].has_link || e[0].link != first_prev ||
	    !e[1].known || !e[1].has_link || e[1].link != e[0].hash ||
	    e[0].ts != NOW || e[1].ts != NOW + 1 || !e[0].has_oid ||
	    strcmp(e[0].oid, "ORD-1"))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static events full, nov, since, again;
	uint8_t *f, *old = NULL, *cur;
	size_t nold = 0, ncur;
	uint64_t prev = 0;
	unsigned flags;
	qli_audit *a;
	int rc, expect_ok;

	if (dirfd < 0)
		setup();
	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	clear();
	f = malloc(size ? size : 1);
	if (!f)
		abort();
	memcpy(f, data, size);
	cur = f;
	ncur = size;
	if ((flags & 4) && size >= 2) {
		size_t cut = (size_t)(f[0] | f[1] << 8);

		if (cut > size - 2)
			cut = size - 2;
		old = f + 2;
		nold = cut;
		cur = f + 2 + cut;
		ncur = size - 2 - cut;
		fix(old, nold, flags, &prev);
	}
	fix(cur, ncur, flags, &prev);

	/* the newest file alone, then with the one before it */
	write_file(NEW, cur, ncur);
	read_all(&nov, INT64_MIN, NULL);
	if (old)
		write_file(OLD, old, nold);
	read_all(&full, INT64_MIN, NULL);
	if (nov.rc == 1 || full.rc == 1)
		goto out;
	if (full.rc == 0 && (nov.rc || !ends_with(&full, &nov)))
		abort();
	read_all(&since, NOV_1, NULL);
	if (since.rc != nov.rc)
		abort();
	{
		size_t j = 0;

		for (size_t i = 0; i < nov.n; i++)
			if (nov.v[i].ts >= NOV_1) {
				if (j >= since.n || since.v[j].hash != nov.v[i].hash)
					abort();
				j++;
			}
		if (j != since.n)
			abort();
	}
	/* order_id filters: a fixed one and the first two seen */
	check_filter(&full, "ORD-1");
	for (size_t i = 0, k = 0; i < full.n && k < 2; i++)
		if (full.v[i].has_oid && strcmp(full.v[i].oid, "ORD-1")) {
			check_filter(&full, full.v[i].oid);
			k++;
		}

	/* the appender checks the file it appends to, and, when that has
	 * no valid record, the file before it */
	expect_ok = nov.rc == 0 && (nov.n > 0 || full.rc == 0);
	if (qli_audit_open(&a, dirfd, 0, 0))
		abort();
	rc = append(a, NOW);
	if (!rc)
		rc = append(a, NOW + 1);
	qli_audit_close(a);
	if (!expect_ok) {
		/* refused, and nothing lost: the file appended to may have
		 * lost a torn tail (cut first), the one before it nothing */
		if (rc != QL_ECORRUPT || !file_is(NEW, cur, ncur, 1) ||
		    (old && !file_is(OLD, old, nold, 0)))
			abort();
		read_all(&again, NOV_1, NULL);
		if (again.rc != since.rc || again.n != since.n ||
		    !ends_with(&again, &since))
			abort();
		goto out;
	}
	if (rc)
		abort();
	/* read back: as before, plus two events chained to the last one */
	prev = nov.n ? nov.v[nov.n - 1].hash :
	       full.n ? full.v[full.n - 1].hash : 0;
	if (full.rc == 0) {
		read_all(&again, INT64_MIN, NULL);
		check_appended(&full, &again, prev);
	}
	read_all(&again, NOV_1, NULL);
	check_appended(&since, &again, prev);
	/* expiry takes the older month; what stays still verifies */
	rc = qli_audit_expire(dirfd, NOW, 86400LL * 1000000LL, NULL, NULL);
	if (rc != (old ? 1 : 0))
		abort();
	read_all(&again, INT64_MIN, NULL);
	if (again.rc || again.n != nov.n + 2)
		abort();
out:
	free(f);
	return 0;
}
