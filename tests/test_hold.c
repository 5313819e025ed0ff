/* test_hold.c - court-order holds: every validation rule, extend/release/
 * lapse, the HOLDS file (round trip, damage), the maintenance lock across
 * processes. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "codec.h"
#include "hold.h"
#include "vfs.h"

#define NOW (T_EPOCH + 10 * T_DAY)

typedef struct fx {
	char dir[256];
	int dirfd;
	qli_holdset set;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	t_tmpdir(f->dir, sizeof(f->dir));
	assert_int_equal(mkdir(f->dir, 0700), 0);
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	assert_true(f->dirfd >= 0);
	qli_holds_init(&f->set);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	qli_holds_free(&f->set);
	close(f->dirfd);
	t_cleanup(f->dir);
	free(f);
	return 0;
}

static qli_hold_spec spec(const char *id)
{
	qli_hold_spec s = { 0 };

	s.order_id = id;
	s.from = NOW - 20 * T_DAY;
	s.to = NOW - 5 * T_DAY;
	s.expires = NOW + 30 * T_DAY;
	s.reason = "pen register, case 26-1234";
	s.placed_by = "officer@example.gov";
	return s;
}

static void assert_msg(const char *needle)
{
	const char *m = ql_errmsg(NULL);

	if (!strstr(m, needle))
		fail_msg("message \"%s\" lacks \"%s\"", m, needle);
}

static int place(fx *f, qli_hold_spec s)
{
	return qli_holds_place(&f->set, &s, NOW, NULL);
}

/* ---------------------------------------------------------------------- */

static void test_order_id_rules(void **state)
{
	fx *f = *state;
	char id[200];

	memset(id, 'A', sizeof(id));
	id[128] = '\0';
	assert_int_equal(place(f, spec(id)), 0);
	id[128] = 'A';
	id[129] = '\0';
	assert_int_equal(place(f, spec(id)), QL_EINVAL);
	assert_msg("129 characters (at most 128)");
	assert_int_equal(place(f, spec("")), QL_EINVAL);
	assert_msg("missing");
	assert_int_equal(place(f, spec(NULL)), QL_EINVAL);
	assert_int_equal(place(f, spec("ORD\x01" "1")), QL_EINVAL);
	assert_msg("byte 0x01 at position 3");
	assert_int_equal(place(f, spec("ORD\t1")), QL_EINVAL);
	assert_int_equal(place(f, spec("ORD\x7f")), QL_EINVAL);
	assert_int_equal(place(f, spec("ORD-\xc3\xa9")), QL_EINVAL);
	assert_msg("printable ASCII");
	assert_int_equal(place(f, spec(" ORD-1")), QL_EINVAL);
	assert_msg("leading or trailing space");
	assert_int_equal(place(f, spec("ORD-1 ")), QL_EINVAL);
	assert_int_equal(place(f, spec("Case 26-1234 / ORD #7 (SDNY)")), 0);
	assert_int_equal(place(f, spec("~")), 0);
	assert_int_equal(f->set.n, 3);
}

static void test_duplicate_id(void **state)
{
	fx *f = *state;

	assert_int_equal(place(f, spec("ORD-1")), 0);
	assert_int_equal(place(f, spec("ORD-1")), QL_EEXIST);
	assert_msg("ORD-1");
	assert_msg("already exists");
	/* IDs are never reused, not even after a release. */
	assert_int_equal(qli_holds_release(&f->set, "ORD-1", NOW, "judge"),
			 0);
	assert_int_equal(place(f, spec("ORD-1")), QL_EEXIST);
	assert_msg("released");
	/* case matters: a different order */
	assert_int_equal(place(f, spec("ord-1")), 0);
}

static void test_window_and_expiry(void **state)
{
	fx *f = *state;
	qli_hold_spec s = spec("W1");
	qli_hold *h;

	s.from = NOW;
	s.to = NOW - 1;
	assert_int_equal(place(f, s), QL_EINVAL);
	assert_msg("reversed");
	s.to = NOW; /* one instant */
	assert_int_equal(place(f, s), 0);
	s = spec("W2");
	s.expires = NOW;
	assert_int_equal(place(f, s), QL_EINVAL);
	assert_msg("not in the future");
	s.expires = NOW - T_DAY;
	assert_int_equal(place(f, s), QL_EINVAL);
	s.expires = NOW + 1;
	s.to = QLI_HOLD_OPEN;
	s.from = NOW + T_DAY; /* prospective, starting tomorrow */
	assert_int_equal(qli_holds_place(&f->set, &s, NOW, &h), 0);
	assert_true(h->to == QLI_HOLD_OPEN);
	assert_true(h->period_us == QLI_HOLD_PERIOD_DEFAULT);
	assert_true(h->placed_at == NOW);
	assert_int_equal(h->state, QLI_HOLD_ACTIVE);
	s = spec("W3");
	s.period_us = -1;
	assert_int_equal(place(f, s), QL_EINVAL);
	assert_msg("period");
	s.period_us = 90 * T_DAY;
	assert_int_equal(qli_holds_place(&f->set, &s, NOW, &h), 0);
	assert_true(h->period_us == 90 * T_DAY);
}

static void test_who_and_reason(void **state)
{
	fx *f = *state;
	qli_hold_spec s = spec("R1");
	char big[1100];

	s.placed_by = "";
	assert_int_equal(place(f, s), QL_EINVAL);
	assert_msg("placed_by: missing");
	s.placed_by = NULL;
	assert_int_equal(place(f, s), QL_EINVAL);
	s = spec("R1");
	s.reason = NULL;
	assert_int_equal(place(f, s), QL_EINVAL);
	assert_msg("reason");
	s.reason = "line one\nline two";
	assert_int_equal(place(f, s), QL_EINVAL);
	assert_msg("control character 0x0a");
	s.reason = "bad \xff utf-8";
	assert_int_equal(place(f, s), QL_EINVAL);
	assert_msg("invalid UTF-8 at byte 4");
	memset(big, 'x', sizeof(big));
	big[1025] = '\0';
	s.reason = big;
	assert_int_equal(place(f, s), QL_EINVAL);
	assert_msg("1025 bytes (at most 1024)");
	s.reason = "Gerichtsbeschluss \xc3\xbc" "ber 90 Tage";
	assert_int_equal(place(f, s), 0);
	assert_int_equal(f->set.n, 1);
}

static void test_subjects(void **state)
{
	fx *f = *state;
	const char *in[] = { "tel:+14155550123", "Alice@Example.COM",
			     "10.1.2.3", "10.0.0.0/8", "2001:DB8::/32",
			     "::ffff:192.168.0.0/112", "+14155550123",
			     "2001:db8::1" };
	const char *want[] = { "+14155550123", "Alice@example.com",
			       "10.1.2.3/32", "10.0.0.0/8", "2001:db8::/32",
			       "192.168.0.0/16", "2001:db8::1/128" };
	const char *bad1[] = { "10.0.0.1/8" };
	const char *bad2[] = { "+1415", "hello" };
	qli_hold_spec s = spec("S1");
	qli_hold *h;

	s.subjects = in;
	s.nsubjects = 8;
	assert_int_equal(qli_holds_place(&f->set, &s, NOW, &h), 0);
	/* the duplicate (+14155550123 twice) is kept once */
	assert_int_equal(h->nsubjects, 7);
	for (size_t i = 0; i < 7; i++)
		assert_string_equal(h->subjects[i], want[i]);
	s = spec("S2");
	s.subjects = bad1;
	s.nsubjects = 1;
	assert_int_equal(place(f, s), QL_EINVAL);
	assert_msg("host bits");
	assert_msg("hold S2");
	s.subjects = bad2;
	s.nsubjects = 2;
	assert_int_equal(place(f, s), QL_EINVAL);
	s.subjects = bad2 + 1;
	s.nsubjects = 1;
	assert_int_equal(place(f, s), QL_EINVAL);
	assert_msg("subject");
	assert_int_equal(f->set.n, 1); /* nothing changed on failure */
}

static void test_extend(void **state)
{
	fx *f = *state;
	qli_hold_spec s = spec("E1");
	int64_t old, nw, exp0 = s.expires;
	qli_hold *h;

	s.period_us = 60 * T_DAY;
	assert_int_equal(qli_holds_place(&f->set, &s, NOW, &h), 0);
	/* by the period, twice: counted from the expiry, not from now */
	assert_int_equal(qli_holds_extend(&f->set, "E1", 0, NOW + T_DAY,
					  "clerk", &old, &nw), 0);
	assert_true(old == exp0 && nw == exp0 + 60 * T_DAY);
	assert_int_equal(qli_holds_extend(&f->set, "E1", 0, NOW + 2 * T_DAY,
					  "clerk", &old, &nw), 0);
	assert_true(old == exp0 + 60 * T_DAY);
	assert_true(h->expires == exp0 + 120 * T_DAY);
	/* to a given time: later only */
	assert_int_equal(qli_holds_extend(&f->set, "E1", exp0 + 200 * T_DAY,
					  NOW, "clerk", NULL, NULL), 0);
	assert_true(h->expires == exp0 + 200 * T_DAY);
	assert_int_equal(qli_holds_extend(&f->set, "E1", exp0 + 199 * T_DAY,
					  NOW, "clerk", NULL, NULL),
			 QL_EINVAL);
	assert_msg("never shortened");
	assert_int_equal(qli_holds_extend(&f->set, "E1", exp0 + 200 * T_DAY,
					  NOW, "clerk", NULL, NULL),
			 QL_EINVAL);
	assert_msg("nothing to extend");
	assert_int_equal(qli_holds_extend(&f->set, "E1", NOW - 1, NOW,
					  "clerk", NULL, NULL), QL_EINVAL);
	assert_true(h->expires == exp0 + 200 * T_DAY);
	assert_int_equal(qli_holds_extend(&f->set, "E9", 0, NOW, "clerk",
					  NULL, NULL), QL_ENOTFOUND);
	assert_msg("E9: no such order");
	assert_int_equal(qli_holds_extend(&f->set, "E1", 0, NOW, "", NULL,
					  NULL), QL_EINVAL);
	assert_int_equal(qli_holds_extend(&f->set, "E\n", 0, NOW, "clerk",
					  NULL, NULL), QL_EINVAL);
}

static void test_release(void **state)
{
	fx *f = *state;
	qli_hold *h;

	assert_int_equal(place(f, spec("L1")), 0);
	assert_int_equal(qli_holds_release(&f->set, "L1", NOW + T_DAY,
					   "judge smith"), 0);
	h = qli_holds_find(&f->set, "L1");
	assert_int_equal(h->state, QLI_HOLD_RELEASED);
	assert_true(h->ended_at == NOW + T_DAY);
	assert_string_equal(h->ended_by, "judge smith");
	assert_false(qli_hold_covers(h, h->from, h->to + 1, NOW + T_DAY));
	assert_int_equal(qli_holds_extend(&f->set, "L1", 0, NOW + T_DAY,
					  "clerk", NULL, NULL), QL_EINVAL);
	assert_msg("released at");
	assert_msg("judge smith");
	assert_int_equal(qli_holds_release(&f->set, "L1", NOW + T_DAY,
					   "judge"), QL_EINVAL);
	assert_int_equal(qli_holds_release(&f->set, "L2", NOW, "judge"),
			 QL_ENOTFOUND);
	assert_int_equal(qli_holds_release(&f->set, "L1", NOW, NULL),
			 QL_EINVAL);
}

typedef struct lapses {
	int n;
	char last[QLI_ORDER_ID_MAX + 1];
} lapses;

static int on_lapse(const qli_hold *h, void *ctx)
{
	lapses *l = ctx;

	l->n++;
	snprintf(l->last, sizeof(l->last), "%s", h->order_id);
	return 0;
}

static void test_lapse(void **state)
{
	fx *f = *state;
	qli_hold_spec s = spec("P1");
	lapses l = { 0, "" };
	qli_hold *h;

	s.expires = NOW + T_DAY;
	assert_int_equal(place(f, s), 0);
	s = spec("P2");
	s.expires = NOW + 3 * T_DAY;
	assert_int_equal(place(f, s), 0);
	assert_int_equal(qli_holds_lapse(&f->set, NOW + T_DAY - 1, on_lapse,
					 &l), 0);
	assert_int_equal(l.n, 0);
	h = qli_holds_find(&f->set, "P1");
	/* Past its expiry it stops pinning even before the lapse is
	 * recorded, and cannot be extended any more. */
	assert_true(qli_hold_covers(h, h->from, h->from + 1,
				    NOW + T_DAY - 1));
	assert_false(qli_hold_covers(h, h->from, h->from + 1, NOW + T_DAY));
	assert_int_equal(qli_hold_state_at(h, NOW + T_DAY), QLI_HOLD_LAPSED);
	assert_int_equal(qli_holds_extend(&f->set, "P1", 0, NOW + T_DAY,
					  "clerk", NULL, NULL), QL_EINVAL);
	assert_msg("cannot be revived");
	/* reported once */
	assert_int_equal(qli_holds_lapse(&f->set, NOW + T_DAY, on_lapse, &l),
			 1);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.last, "P1");
	assert_int_equal(h->state, QLI_HOLD_LAPSED);
	assert_true(h->ended_at == h->expires);
	assert_int_equal(qli_holds_lapse(&f->set, NOW + 2 * T_DAY, on_lapse,
					 &l), 0);
	assert_int_equal(l.n, 1);
	/* a lapsed hold is never revived, not even by a clock going back */
	assert_int_equal(qli_holds_extend(&f->set, "P1", 0, NOW, "clerk",
					  NULL, NULL), QL_EINVAL);
	assert_msg("lapsed at");
	assert_false(qli_hold_covers(h, h->from, h->from + 1, NOW));
	assert_int_equal(qli_holds_release(&f->set, "P1", NOW, "judge"),
			 QL_EINVAL);
	assert_int_equal(qli_holds_lapse(&f->set, NOW + 5 * T_DAY, NULL,
					 NULL), 1);
	assert_int_equal(qli_holds_find(&f->set, "P2")->state,
			 QLI_HOLD_LAPSED);
}

static void test_covers(void **state)
{
	fx *f = *state;
	qli_hold_spec s = spec("C1");
	qli_hold *h;
	int64_t a = T_EPOCH, b = T_EPOCH + T_DAY;

	s.from = a;
	s.to = b;
	assert_int_equal(qli_holds_place(&f->set, &s, NOW, &h), 0);
	assert_true(qli_hold_covers(h, a - T_DAY, a + 1, NOW));
	assert_false(qli_hold_covers(h, a - T_DAY, a, NOW)); /* [lo, hi) */
	assert_true(qli_hold_covers(h, b, b + T_DAY, NOW));  /* [from, to] */
	assert_false(qli_hold_covers(h, b + 1, b + T_DAY, NOW));
	/* prospective */
	s = spec("C2");
	s.from = NOW;
	s.to = QLI_HOLD_OPEN;
	assert_int_equal(qli_holds_place(&f->set, &s, NOW, &h), 0);
	assert_true(qli_hold_covers(h, NOW + 20 * T_DAY, NOW + 21 * T_DAY,
				    NOW + 20 * T_DAY));
	assert_false(qli_hold_covers(h, NOW - T_DAY, NOW, NOW));
}

/* ---------------------------------------------------------------------- */
/* the file                                                                */
/* ---------------------------------------------------------------------- */

static void fill(fx *f)
{
	const char *subj[] = { "+14155550123", "10.0.0.0/8",
			       "user@example.com" };
	qli_hold_spec s = spec("F-1");

	s.subjects = subj;
	s.nsubjects = 3;
	assert_int_equal(place(f, s), 0);
	s = spec("F-2 \"quoted\" \\ back");
	s.to = QLI_HOLD_OPEN;
	s.period_us = 90 * T_DAY;
	s.reason = "preservation request \xe2\x80\x94 18 USC 2703(f)";
	assert_int_equal(place(f, s), 0);
	assert_int_equal(place(f, spec("F-3")), 0);
	assert_int_equal(qli_holds_release(&f->set, "F-3", NOW + 1, "dana"),
			 0);
	s = spec("F-4");
	s.expires = NOW + 1;
	assert_int_equal(place(f, s), 0);
	assert_int_equal(qli_holds_lapse(&f->set, NOW + 2, NULL, NULL), 1);
}

static void assert_same(const qli_hold *a, const qli_hold *b)
{
	assert_string_equal(a->order_id, b->order_id);
	assert_true(a->from == b->from && a->to == b->to);
	assert_true(a->expires == b->expires);
	assert_true(a->period_us == b->period_us);
	assert_true(a->placed_at == b->placed_at);
	assert_true(a->ended_at == b->ended_at);
	assert_int_equal(a->state, b->state);
	assert_string_equal(a->reason, b->reason);
	assert_string_equal(a->placed_by, b->placed_by);
	assert_string_equal(a->ended_by, b->ended_by);
	assert_int_equal(a->nsubjects, b->nsubjects);
	for (size_t i = 0; i < a->nsubjects; i++)
		assert_string_equal(a->subjects[i], b->subjects[i]);
}

static void test_save_load(void **state)
{
	fx *f = *state;
	qli_holdset got;
	struct stat st;

	/* no file: an empty set */
	assert_int_equal(qli_holds_load(f->dirfd, &got), 0);
	assert_int_equal(got.n, 0);
	qli_holds_free(&got);
	fill(f);
	assert_int_equal(qli_holds_save(f->dirfd, &f->set), 0);
	assert_int_equal(fstatat(f->dirfd, "HOLDS", &st, 0), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(fstatat(f->dirfd, "HOLDS.tmp", &st, 0), -1);
	assert_int_equal(qli_holds_load(f->dirfd, &got), 0);
	assert_int_equal(got.n, f->set.n);
	for (size_t i = 0; i < got.n; i++)
		assert_same(&got.v[i], &f->set.v[i]);
	/* and once more: load, change, save, load */
	assert_int_equal(qli_holds_extend(&got, "F-1", 0, NOW, "x", NULL,
					  NULL), 0);
	assert_int_equal(qli_holds_save(f->dirfd, &got), 0);
	qli_holds_free(&f->set);
	assert_int_equal(qli_holds_load(f->dirfd, &f->set), 0);
	assert_true(qli_holds_find(&f->set, "F-1")->expires ==
		    spec("F-1").expires + QLI_HOLD_PERIOD_DEFAULT);
	qli_holds_free(&got);
	/* an empty set saves as a valid file, not a missing one */
	qli_holds_free(&got);
	assert_int_equal(qli_holds_save(f->dirfd, &got), 0);
	assert_int_equal(qli_holds_load(f->dirfd, &got), 0);
	assert_int_equal(got.n, 0);
}

static size_t read_file(fx *f, uint8_t *buf, size_t cap)
{
	int fd = openat(f->dirfd, "HOLDS", O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap);
	close(fd);
	assert_true(n > 0 && (size_t)n < cap);
	return (size_t)n;
}

static void write_file(fx *f, const uint8_t *buf, size_t len)
{
	int fd = openat(f->dirfd, "HOLDS", O_WRONLY | O_TRUNC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void expect_load(fx *f, int rc, const char *msg)
{
	qli_holdset got;

	assert_int_equal(qli_holds_load(f->dirfd, &got), rc);
	assert_int_equal(got.n, 0); /* never a partial or empty success */
	assert_null(got.v);
	assert_msg(msg);
}

static void test_corrupt_file(void **state)
{
	fx *f = *state;
	uint8_t buf[8192], bad[8192];
	size_t len;

	fill(f);
	assert_int_equal(qli_holds_save(f->dirfd, &f->set), 0);
	len = read_file(f, buf, sizeof(buf));
	/* one flipped bit anywhere */
	for (size_t off = 0; off < len; off += 7) {
		memcpy(bad, buf, len);
		bad[off] ^= 0x10;
		write_file(f, bad, len);
		expect_load(f, QL_ECORRUPT, "HOLDS");
	}
	/* truncated, empty, extended */
	write_file(f, buf, len - 1);
	expect_load(f, QL_ECORRUPT, "HOLDS");
	write_file(f, buf, 0);
	expect_load(f, QL_ECORRUPT, "not a holds file");
	memcpy(bad, buf, len);
	bad[len] = 0;
	write_file(f, bad, len + 1);
	expect_load(f, QL_ECORRUPT, "HOLDS");
	/* valid checksum, a newer version */
	memcpy(bad, buf, len);
	qli_put32(bad + 4, 2);
	qli_put64(bad + len - 8, qli_hash64(bad, len - 8, 0));
	write_file(f, bad, len);
	expect_load(f, QL_EVERSION, "format version 2");
	/* valid checksum, a record that breaks the rules (state 7) */
	memcpy(bad, buf, len);
	bad[16 + 48] = 7;
	qli_put64(bad + len - 8, qli_hash64(bad, len - 8, 0));
	write_file(f, bad, len);
	expect_load(f, QL_ECORRUPT, "unknown state");
	/* valid checksum, window reversed */
	memcpy(bad, buf, len);
	qli_put64(bad + 16, (uint64_t)INT64_MAX);
	qli_put64(bad + 24, 0);
	qli_put64(bad + len - 8, qli_hash64(bad, len - 8, 0));
	write_file(f, bad, len);
	expect_load(f, QL_ECORRUPT, "window reversed");
	/* the original still loads */
	write_file(f, buf, len);
	qli_holds_free(&f->set);
	assert_int_equal(qli_holds_load(f->dirfd, &f->set), 0);
	assert_int_equal(f->set.n, 4);
}

static void test_duplicate_in_file(void **state)
{
	fx *f = *state;
	uint8_t buf[8192];
	size_t len;

	assert_int_equal(place(f, spec("D1")), 0);
	assert_int_equal(place(f, spec("D2")), 0);
	assert_int_equal(qli_holds_save(f->dirfd, &f->set), 0);
	len = read_file(f, buf, sizeof(buf));
	/* rename D2 to D1 in the file, fix the checksum */
	for (size_t i = len - 9; i > 16; i--) {
		if (buf[i] == '2' && buf[i - 1] == 'D') {
			buf[i] = '1';
			break;
		}
	}
	qli_put64(buf + len - 8, qli_hash64(buf, len - 8, 0));
	write_file(f, buf, len);
	expect_load(f, QL_ECORRUPT, "duplicate order ID");
}

static int fail_rename, fail_write;
static qli_vfs faulty;

static int f_renameat(int a, const char *b, int c, const char *d)
{
	if (fail_rename) {
		errno = EIO;
		return -1;
	}
	return qli_vfs_posix.renameat(a, b, c, d);
}

static ssize_t f_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (fail_write) {
		errno = ENOSPC;
		return -1;
	}
	return qli_vfs_posix.pwrite(fd, buf, len, off);
}

/* A failed save leaves the previous set in place, and no temp file. */
static void test_save_faults(void **state)
{
	fx *f = *state;
	qli_holdset got;
	struct stat st;

	assert_int_equal(place(f, spec("OLD")), 0);
	assert_int_equal(qli_holds_save(f->dirfd, &f->set), 0);
	assert_int_equal(place(f, spec("NEW")), 0);
	faulty = qli_vfs_posix;
	faulty.renameat = f_renameat;
	faulty.pwrite = f_pwrite;
	qli_vfs_cur = &faulty;
	fail_rename = 1;
	assert_int_equal(qli_holds_save(f->dirfd, &f->set), QL_EIO);
	assert_msg("rename");
	fail_rename = 0;
	fail_write = 1;
	assert_int_equal(qli_holds_save(f->dirfd, &f->set), QL_ENOSPC);
	fail_write = 0;
	qli_vfs_cur = &qli_vfs_posix;
	assert_int_equal(fstatat(f->dirfd, "HOLDS.tmp", &st, 0), -1);
	assert_int_equal(qli_holds_load(f->dirfd, &got), 0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.v[0].order_id, "OLD");
	qli_holds_free(&got);
}

/* ---------------------------------------------------------------------- */
/* the maintenance lock                                                    */
/* ---------------------------------------------------------------------- */

static void test_maint_lock(void **state)
{
	fx *f = *state;
	int go[2], done[2], lk = -1, lk2 = -1, status;
	char c;
	pid_t pid;

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(done), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int l;

		if (qli_maint_lock(f->dirfd, &l))
			_exit(2);
		if (write(go[1], "x", 1) != 1)
			_exit(3);
		/* hold it until the parent says so */
		if (read(done[0], &c, 1) != 1)
			_exit(4);
		qli_maint_unlock(l);
		_exit(0);
	}
	assert_int_equal(read(go[0], &c, 1), 1);
	assert_int_equal(qli_maint_trylock(f->dirfd, &lk), QL_EBUSY);
	assert_int_equal(lk, -1);
	assert_msg("MAINT.lock");
	assert_int_equal(write(done[1], "x", 1), 1);
	/* the blocking variant waits for the child to let go */
	assert_int_equal(qli_maint_lock(f->dirfd, &lk), 0);
	assert_true(lk >= 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* another open file in the same process is excluded too */
	assert_int_equal(qli_maint_trylock(f->dirfd, &lk2), QL_EBUSY);
	qli_maint_unlock(lk);
	assert_int_equal(qli_maint_trylock(f->dirfd, &lk2), 0);
	qli_maint_unlock(lk2);
	qli_maint_unlock(-1);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_id_rules, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_id, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_window_and_expiry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_who_and_reason, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_subjects, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_extend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lapse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_covers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_load, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_in_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_save_faults, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_maint_lock, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
