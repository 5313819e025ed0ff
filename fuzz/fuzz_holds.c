/* fuzz_holds.c - bytes as the HOLDS file of a store directory, through
 * qli_holds_load; and holds placed from bytes, through save and load.
 *
 * Input: one flag byte, then the rest.
 *   bit 2 clear: the rest is the HOLDS file.
 *     bit 0  fix the trailer: the xxh64 of everything before it;
 *     bit 1  fix the header: magic, version 1, and the body length as
 *            the size says (the hold count is left to the fuzzer).
 *     The load must fail with QL_ECORRUPT or QL_EVERSION, a message
 *     naming HOLDS and an empty set; or give a set whose every hold keeps
 *     the reader's rules (docs/FORMAT.md, HOLDS), that saves back to the
 *     very same bytes (one encoding per set), and that the pure
 *     operations (lapse, extend, covers, the retention plan) take
 *     without a sanitizer complaint, after which it saves and loads back
 *     identical.
 *   bit 2 set: the rest is NUL-separated strings: order ID, placed_by,
 *     reason, then subjects; the next flag bits pick times. Whatever
 *     qli_holds_place accepts (then released, or extended, then lapsed)
 *     keeps the writers' rules too, and saves and loads back identical:
 *     the loader never refuses what the store wrote.
 * The store directory is a temporary directory (TMPDIR), with fsync
 * turned off through the vfs seam (durability is not under test). */
#define _GNU_SOURCE
#include "codec.h"
#include "hold.h"
#include "querylog.h"
#include "fuzz_util.h"
#include "retention.h"
#include "vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DAY (86400LL * 1000000LL)
#define NOW INT64_C(1793534400000000) /* 2026-11-01T12:00:00Z */

static char dir[256];
static int dirfd = -1;
static qli_vfs fast;

static int no_sync(int fd)
{
	(void)fd;
	return 0;
}

static void cleanup(void)
{
	unlinkat(dirfd, QLI_HOLDS_FILE, 0);
	unlinkat(dirfd, QLI_HOLDS_FILE ".tmp", 0);
	close(dirfd);
	rmdir(dir);
}

static void setup(void)
{
	dirfd = fz_tempdir(dir, sizeof(dir));
	atexit(cleanup);
	fast = qli_vfs_posix;
	fast.fsync = no_sync;
	fast.fdatasync = no_sync;
	qli_vfs_cur = &fast;
}

static void write_holds(const uint8_t *p, size_t n)
{
	fz_write_file(dirfd, QLI_HOLDS_FILE, p, n);
}

static uint8_t *read_holds(size_t *n)
{
	int fd = openat(dirfd, QLI_HOLDS_FILE, O_RDONLY);
	struct stat st;
	uint8_t *p;

	if (fd < 0 || fstat(fd, &st))
		abort();
	p = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!p || pread(fd, p, (size_t)st.st_size, 0) != st.st_size)
		abort();
	close(fd);
	*n = (size_t)st.st_size;
	return p;
}

static void same_set(const qli_holdset *a, const qli_holdset *b)
{
	if (a->n != b->n)
		abort();
	for (size_t i = 0; i < a->n; i++) {
		const qli_hold *x = &a->v[i], *y = &b->v[i];

		if (strcmp(x->order_id, y->order_id) || x->from != y->from ||
		    x->to != y->to || x->expires != y->expires ||
		    x->period_us != y->period_us ||
		    strcmp(x->reason, y->reason) ||
		    strcmp(x->placed_by, y->placed_by) ||
		    x->placed_at != y->placed_at ||
		    x->nsubjects != y->nsubjects || x->state != y->state ||
		    x->ended_at != y->ended_at ||
		    strcmp(x->ended_by, y->ended_by))
			abort();
		for (size_t j = 0; j < x->nsubjects; j++)
			if (strcmp(x->subjects[j], y->subjects[j]))
				abort();
	}
}

/* text_check of hold.c: 1..max bytes of UTF-8, no control character. */
static int text_ok(const char *s, size_t max)
{
	size_t len = strlen(s), n;

	if (!len || len > max)
		return 0;
	for (size_t i = 0; i < len; i += n) {
		if ((uint8_t)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
		n = qli_utf8_seq((const uint8_t *)s + i, len - i);
		if (!n)
			return 0;
	}
	return 1;
}

/* The reader's rules (docs/FORMAT.md, HOLDS): what any loaded set keeps.
 * With writer set, also the rules writers enforce (qli_holds_place,
 * release, lapse): text fields are UTF-8 without control characters,
 * subjects canonical. Readers do not check those (FORMAT.md says so). */
static void check_rules(const qli_holdset *set, int writer)
{
	char canon[QLI_SUBJECT_MAX + 1];

	for (size_t i = 0; i < set->n; i++) {
		const qli_hold *h = &set->v[i];

		if (qli_order_id_check(h->order_id, "order_id") ||
		    qli_holds_find(set, h->order_id) != h)
			abort();
		if (h->from > h->to || h->period_us <= 0 ||
		    h->state < QLI_HOLD_ACTIVE || h->state > QLI_HOLD_LAPSED)
			abort();
		if (!h->placed_by[0] || strlen(h->placed_by) > QLI_WHO_MAX ||
		    strlen(h->reason) > QLI_REASON_MAX ||
		    strlen(h->ended_by) > QLI_WHO_MAX ||
		    h->nsubjects > QLI_SUBJECTS_MAX)
			abort();
		for (size_t j = 0; j < h->nsubjects; j++)
			if (!h->subjects[j][0] ||
			    strlen(h->subjects[j]) > QLI_SUBJECT_MAX)
				abort();
		if (!writer)
			continue;
		if (!text_ok(h->placed_by, QLI_WHO_MAX) ||
		    !text_ok(h->reason, QLI_REASON_MAX) ||
		    (h->ended_by[0] && !text_ok(h->ended_by, QLI_WHO_MAX)))
			abort();
		if (h->state == QLI_HOLD_ACTIVE &&
		    (h->ended_at || h->ended_by[0]))
			abort();
		if (h->state == QLI_HOLD_LAPSED &&
		    (h->ended_at != h->expires || h->ended_by[0]))
			abort();
		for (size_t j = 0; j < h->nsubjects; j++)
			if (qli_hold_subject_parse(canon, h->subjects[j]) ||
			    strcmp(canon, h->subjects[j]))
				abort();
	}
}

/* Saves set, loads it back: identical. */
static void save_load(const qli_holdset *set)
{
	qli_holdset again;

	if (qli_holds_save(dirfd, set))
		abort();
	if (qli_holds_load(dirfd, &again))
		abort();
	same_set(set, &again);
	qli_holds_free(&again);
}

static int lapse_seen(const qli_hold *h, void *ctx)
{
	++*(int *)ctx;
	return h->state == QLI_HOLD_LAPSED ? 0 : -1;
}

/* What the store does with a loaded set: none of it may trip UBSan. */
static void operate(qli_holdset *set, int64_t now)
{
	qli_seg_desc seg[2] = { { "a", NOW - 40 * DAY, NOW - 39 * DAY, 0, 1,
				  1 },
				{ "b", INT64_MIN, INT64_MIN + DAY, 0, 1, 1 } };
	qli_ret_plan plan;
	int n = 0, lapsed;

	for (size_t i = 0; i < set->n; i++) {
		qli_hold_covers(&set->v[i], seg[0].bucket_start,
				seg[0].bucket_end, now);
		qli_hold_state_at(&set->v[i], now);
	}
	if (qli_retention_plan(&plan, seg, 2, set, now, 30 * DAY) == 0)
		qli_ret_plan_free(&plan);
	lapsed = qli_holds_lapse(set, now, lapse_seen, &n);
	if (lapsed < 0 || lapsed != n)
		abort();
	for (size_t i = 0; i < set->n; i++) {
		if (set->v[i].state != QLI_HOLD_ACTIVE)
			continue;
		/* by its period, which may overflow: refused, not wrapped */
		if (qli_holds_extend(set, set->v[i].order_id, 0, now, "fuzz",
				     NULL, NULL) == 0 &&
		    set->v[i].expires <= now)
			abort();
		break;
	}
}

static void load_file(unsigned flags, const uint8_t *p, size_t n)
{
	uint8_t *f = malloc(n ? n : 1), *saved;
	qli_holdset set;
	size_t sn;
	int rc;

	if (!f)
		abort();
	memcpy(f, p, n);
	if ((flags & 2) && n >= 24) {
		memcpy(f, "QLHD", 4);
		qli_put32(f + 4, QLI_HOLDS_VERSION);
		qli_put32(f + 12, (uint32_t)(n - 24));
	}
	if ((flags & 1) && n >= 8)
		qli_put64(f + n - 8, qli_hash64(f, n - 8, 0));
	write_holds(f, n);

	rc = qli_holds_load(dirfd, &set);
	if (rc) {
		const char *m = ql_errmsg(NULL);

		if ((rc != QL_ECORRUPT && rc != QL_EVERSION) ||
		    !strstr(m, QLI_HOLDS_FILE) || set.n || set.v)
			abort();
		free(f);
		return;
	}
	check_rules(&set, 0);
	/* one encoding per set: it saves back to the bytes it came from */
	if (qli_holds_save(dirfd, &set))
		abort();
	saved = read_holds(&sn);
	if (sn != n || memcmp(saved, f, n))
		abort();
	free(saved);
	operate(&set, NOW + (int64_t)(flags >> 4) * 7 * DAY);
	save_load(&set);
	qli_holds_free(&set);
	free(f);
}

/* NUL-separated strings: the next one, or "" at the end. */
static const char *next_str(const char **p, const char *end)
{
	const char *s = *p, *z;

	if (s >= end)
		return "";
	z = memchr(s, '\0', (size_t)(end - s));
	*p = z ? z + 1 : end;
	return s;
}

static void place(unsigned flags, const uint8_t *data, size_t n)
{
	char *buf = malloc(n + 1);
	const char *p = buf, *end = buf + n;
	const char *subj[16];
	qli_hold_spec sp = { 0 };
	qli_holdset set;
	qli_hold *h;

	if (!buf)
		abort();
	memcpy(buf, data, n);
	buf[n] = '\0';
	sp.order_id = next_str(&p, end);
	sp.placed_by = next_str(&p, end);
	sp.reason = next_str(&p, end);
	while (p < end && sp.nsubjects < 16)
		subj[sp.nsubjects++] = next_str(&p, end);
	sp.subjects = subj;
	sp.from = (flags & 8) ? NOW - 60 * DAY : INT64_MIN;
	sp.to = (flags & 16) ? QLI_HOLD_OPEN : NOW;
	sp.expires = (flags & 32) ? INT64_MAX : NOW + 7 * DAY;
	sp.period_us = (flags & 64) ? INT64_MAX : 0;
	qli_holds_init(&set);
	if (qli_holds_place(&set, &sp, NOW, &h) == 0) {
		check_rules(&set, 1);
		save_load(&set);
		if (flags & 1) {
			if (qli_holds_release(&set, sp.order_id, NOW + 1,
					      sp.placed_by))
				abort();
		} else {
			qli_holds_extend(&set, sp.order_id, 0, NOW + 1,
					 sp.placed_by, NULL, NULL);
		}
		check_rules(&set, 1);
		save_load(&set);
		qli_holds_lapse(&set, INT64_MAX, NULL, NULL);
		check_rules(&set, 1);
		save_load(&set);
	}
	qli_holds_free(&set);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned flags;

	if (dirfd < 0)
		setup();
	if (size < 1)
		return 0;
	flags = data[0];
	if (flags & 4)
		place(flags, data + 1, size - 1);
	else
		load_file(flags, data + 1, size - 1);
	return 0;
}
