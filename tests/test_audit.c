/* test_audit.c - the audit trail: JSON escaping, append/read with
 * filters, the chain, torn tails (ignored, then cut), damage reported
 * with its offset, month rotation, clock jumps and audit expiry. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "audit.h"
#include "vfs.h"

#define NOW (T_EPOCH + 10 * T_DAY) /* 2026-11-11 */
#define DEC1 (T_EPOCH + 30 * T_DAY) /* 2026-12-01 */

typedef struct fx {
	char dir[256];
	int dirfd;
	qli_audit *a;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	t_tmpdir(f->dir, sizeof(f->dir));
	assert_int_equal(mkdir(f->dir, 0700), 0);
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	assert_true(f->dirfd >= 0);
	assert_int_equal(qli_audit_open(&f->a, f->dirfd, 0, 0), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	qli_audit_close(f->a);
	close(f->dirfd);
	t_cleanup(f->dir);
	free(f);
	return 0;
}

static void assert_msg(const char *needle)
{
	const char *m = ql_errmsg(NULL);

	if (!strstr(m, needle))
		fail_msg("message \"%s\" lacks \"%s\"", m, needle);
}

/* Everything the read callback saw. */
typedef struct got {
	int n;
	char json[64][2048];
	int64_t ts[64];
} got;

static int collect(const char *json, size_t len, int64_t ts, void *ctx)
{
	got *g = ctx;

	assert_int_equal(strlen(json), len);
	if (g->n < 64) {
		snprintf(g->json[g->n], sizeof(g->json[0]), "%s", json);
		g->ts[g->n] = ts;
	}
	g->n++;
	return 0;
}

static got *read_all(fx *f, int64_t since, const char *order, int want_rc)
{
	static got g;

	memset(&g, 0, sizeof(g));
	assert_int_equal(qli_audit_read(f->dirfd, since, order, collect, &g),
			 want_rc);
	return &g;
}

static void has(const char *json, const char *needle)
{
	if (!strstr(json, needle))
		fail_msg("%s\nlacks %s", json, needle);
}

static void path_of(fx *f, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/audit/%s", f->dir, name);
}

static off_t file_size(fx *f, const char *name)
{
	char p[512];
	struct stat st;

	path_of(f, name, p, sizeof(p));
	if (stat(p, &st))
		return -1;
	return st.st_size;
}

static void raw_append(fx *f, const char *name, const void *buf, size_t len)
{
	char p[512];
	int fd;

	path_of(f, name, p, sizeof(p));
	fd = open(p, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void raw_patch(fx *f, const char *name, off_t off, const void *buf,
		      size_t len)
{
	char p[512];
	int fd;

	path_of(f, name, p, sizeof(p));
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static size_t raw_read(fx *f, const char *name, uint8_t *buf, size_t cap)
{
	char p[512];
	ssize_t n;
	int fd;

	path_of(f, name, p, sizeof(p));
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, cap);
	close(fd);
	assert_true(n >= 0 && (size_t)n < cap);
	return (size_t)n;
}

static void ev(fx *f, int64_t ts, const char *order, const char *q)
{
	assert_int_equal(qli_audit_query(f->a, ts, "analyst", order, q), 0);
}

/* ---------------------------------------------------------------------- */

static void test_escape(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} t[] = {
		{ "plain", 5, "\"plain\"" },
		{ "a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"" },
		{ "\n\r\t\x01\x1f\x7f", 6,
		  "\"\\u000a\\u000d\\u0009\\u0001\\u001f\\u007f\"" },
		{ "nul\0x", 5, "\"nul\\u0000x\"" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
		  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"" },
		/* invalid UTF-8: stray continuation, overlong, surrogate,
		 * cut sequence */
		{ "\x80|\xc0\xaf|\xed\xa0\x80|\xe2\x82", 11,
		  "\"\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|"
		  "\\ufffd\\ufffd\"" },
		{ "", 0, "\"\"" },
	};
	qli_buf b = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		b.len = 0;
		assert_int_equal(qli_json_escape(&b, t[i].in, t[i].len), 0);
		assert_int_equal(b.len, strlen(t[i].out));
		assert_memory_equal(b.p, t[i].out, b.len);
	}
	qli_buf_free(&b);
}

static void test_json_writer(void **state)
{
	fx *f = *state;
	qli_json j;
	got *g;

	qli_json_init(&j);
	qli_json_str(&j, "s", "x");
	qli_json_i64(&j, "i", -5);
	qli_json_u64(&j, "u", UINT64_MAX);
	qli_json_time(&j, "t", T_EPOCH);
	qli_json_time(&j, "open", QLI_HOLD_OPEN);
	qli_json_hex64(&j, "h", 0xabc);
	qli_json_arr_begin(&j, "a");
	qli_json_i64(&j, NULL, 1);
	qli_json_obj_begin(&j, NULL);
	qli_json_str(&j, "k", NULL);
	qli_json_end(&j);
	qli_json_arr_begin(&j, NULL);
	qli_json_end(&j);
	qli_json_end(&j);
	assert_int_equal(j.err, 0);
	assert_int_equal(qli_audit_append(f->a, NOW, "custom_1", "me", NULL,
					  &j), 0);
	qli_json_free(&j);
	g = read_all(f, INT64_MIN, NULL, 0);
	assert_int_equal(g->n, 1);
	has(g->json[0], ",\"s\":\"x\",\"i\":-5,\"u\":18446744073709551615,"
		"\"t\":\"2026-11-01T00:00:00Z\",\"open\":null,"
		"\"h\":\"0000000000000abc\",\"a\":[1,{\"k\":null},[]]}");
	/* misuse is refused at append */
	qli_json_init(&j);
	qli_json_arr_begin(&j, "a");
	qli_json_str(&j, "key", "in an array");
	assert_int_equal(qli_audit_append(f->a, NOW, "x", "me", NULL, &j),
			 QL_EINVAL);
	qli_json_free(&j);
	qli_json_init(&j);
	qli_json_obj_begin(&j, "o");
	assert_int_equal(qli_audit_append(f->a, NOW, "x", "me", NULL, &j),
			 QL_EINVAL);
	assert_msg("open");
	qli_json_free(&j);
	assert_int_equal(qli_audit_append(f->a, NOW, "Bad-Name", "me", NULL,
					  NULL), QL_EINVAL);
	assert_int_equal(qli_audit_append(f->a, NOW, "x", "", NULL, NULL),
			 QL_EINVAL);
	assert_msg("who");
	g = read_all(f, INT64_MIN, NULL, 0);
	assert_int_equal(g->n, 1);
}

static void test_roundtrip_filters(void **state)
{
	fx *f = *state;
	const char *subj[] = { "+14155550123", "10.0.0.0/8" };
	qli_hold_spec s = { 0 };
	qli_ret_decision d = { 0 };
	qli_ret_ref refs[2];
	qli_seg_desc seg = { "20261001T000000Z-g0.qls", T_EPOCH - 31 * T_DAY,
			     T_EPOCH - 30 * T_DAY, 0, 1234, 56789 };
	qli_holdset set;
	qli_hold *h;
	int64_t old, nw;
	got *g;

	qli_holds_init(&set);
	s.order_id = "ORD-\"1\"";
	s.from = T_EPOCH;
	s.to = QLI_HOLD_OPEN;
	s.expires = NOW + 30 * T_DAY;
	s.reason = "pen register";
	s.placed_by = "agent k";
	s.subjects = subj;
	s.nsubjects = 2;
	assert_int_equal(qli_holds_place(&set, &s, NOW, &h), 0);
	assert_int_equal(qli_audit_segment_sealed(f->a, NOW, "store",
						  seg.name, 1234, 56789,
						  0x1122334455667788ULL), 0);
	assert_int_equal(qli_audit_hold(f->a, NOW + 1, QLI_AEV_HOLD_PLACED,
					"agent k", h, 0, h->expires), 0);
	assert_int_equal(qli_holds_extend(&set, s.order_id, 0, NOW + 2,
					  "clerk", &old, &nw), 0);
	assert_int_equal(qli_audit_hold(f->a, NOW + 2, QLI_AEV_HOLD_EXTENDED,
					"clerk", h, old, nw), 0);
	ev(f, NOW + 3, "ORD-\"1\"", "handle +14155550123 role requester");
	ev(f, NOW + 4, "ORD-2", "ip 10.0.0.0/8 \"quoted\"\n");
	assert_int_equal(qli_holds_release(&set, s.order_id, NOW + 5, "judge"),
			 0);
	assert_int_equal(qli_audit_hold(f->a, NOW + 5, QLI_AEV_HOLD_RELEASED,
					"judge", h, h->expires, 0), 0);
	d.action = QLI_RET_EXPIRE;
	d.due_at = seg.bucket_end + 30 * T_DAY;
	refs[0].hold = h;
	refs[0].why = QLI_WHY_RELEASED;
	d.refs = refs;
	d.nrefs = 1;
	assert_int_equal(qli_audit_segment_expired(f->a, NOW + 6, "cron", &seg,
						   &d, 30 * T_DAY), 0);
	d.action = QLI_RET_KEEP_HELD;
	assert_int_equal(qli_audit_segment_expired(f->a, NOW + 7, "cron", &seg,
						   &d, 30 * T_DAY), QL_EINVAL);

	g = read_all(f, INT64_MIN, NULL, 0);
	assert_int_equal(g->n, 7);
	for (int i = 0; i < 7; i++) {
		char t[64];

		assert_true(g->ts[i] == NOW + i);
		snprintf(t, sizeof(t), "{\"ts\":%lld,\"time\":\"2026-11-11T",
			 (long long)(NOW + i));
		assert_memory_equal(g->json[i], t, strlen(t));
	}
	has(g->json[0], "\"event\":\"segment_sealed\",\"who\":\"store\","
		"\"prev\":\"0000000000000000\",\"segment\":\"20261001T000000Z-"
		"g0.qls\",\"records\":1234,\"bytes\":56789,\"checksum\":"
		"\"1122334455667788\"}");
	has(g->json[1], "\"event\":\"hold_placed\",\"who\":\"agent k\","
		"\"order_id\":\"ORD-\\\"1\\\"\"");
	has(g->json[1], "\"state\":\"active\",\"old_expires\":null,"
		"\"new_expires\":\"2026-12-11T00:00:00Z\",\"from\":"
		"\"2026-11-01T00:00:00Z\",\"to\":null,\"period_us\":"
		"2592000000000,\"reason\":\"pen register\",\"placed_by\":"
		"\"agent k\",\"subjects\":[\"+14155550123\",\"10.0.0.0/8\"]}");
	has(g->json[2], "\"old_expires\":\"2026-12-11T00:00:00Z\","
		"\"new_expires\":\"2027-01-10T00:00:00Z\"");
	has(g->json[4], "\"query\":\"ip 10.0.0.0/8 \\\"quoted\\\"\\u000a\"");
	has(g->json[5], "\"event\":\"hold_released\"");
	has(g->json[5], "\"state\":\"released\",\"old_expires\":"
		"\"2027-01-10T00:00:00Z\",\"new_expires\":null,\"ended_at\":");
	has(g->json[5], "\"ended_by\":\"judge\"");
	has(g->json[6], "\"event\":\"segment_expired\",\"who\":\"cron\"");
	has(g->json[6], "\"generation\":0,\"records\":1234,\"bytes\":56789,"
		"\"retention_us\":2592000000000,\"due_at\":"
		"\"2026-11-01T00:00:00Z\",\"why\":");
	has(g->json[6], "\"holds\":[{\"order_id\":\"ORD-\\\"1\\\"\","
		"\"state\":\"released\",\"why\":\"released\"}]}");

	/* filters: by order (decoded, exact), by time, both */
	g = read_all(f, INT64_MIN, "ORD-\"1\"", 0);
	assert_int_equal(g->n, 4);
	assert_true(g->ts[3] == NOW + 5);
	g = read_all(f, INT64_MIN, "ORD-2", 0);
	assert_int_equal(g->n, 1);
	g = read_all(f, INT64_MIN, "ORD-", 0);
	assert_int_equal(g->n, 0);
	g = read_all(f, NOW + 3, NULL, 0);
	assert_int_equal(g->n, 4);
	g = read_all(f, NOW + 3, "ORD-\"1\"", 0);
	assert_int_equal(g->n, 2);
	g = read_all(f, NOW + 100, NULL, 0);
	assert_int_equal(g->n, 0);
	qli_holds_free(&set);
}

/* Every record's prev is the xxh64 of the payload before it. */
static void test_chain(void **state)
{
	fx *f = *state;
	uint8_t buf[16384];
	size_t len, off = 0;
	uint64_t prev = 0;
	int n = 0;

	for (int i = 0; i < 5; i++)
		ev(f, NOW + i, NULL, "q");
	len = raw_read(f, "2026-11.log", buf, sizeof(buf));
	while (off < len) {
		uint32_t l = qli_get32(buf + off);
		char want[40];

		assert_true(qli_get64(buf + off + 4) ==
			    qli_hash64(buf + off + 12, l, 0));
		snprintf(want, sizeof(want), "\"prev\":\"%016llx\"",
			 (unsigned long long)prev);
		assert_non_null(memmem(buf + off + 12, l, want, strlen(want)));
		prev = qli_get64(buf + off + 4);
		off += 12 + l;
		n++;
	}
	assert_int_equal(off, len);
	assert_int_equal(n, 5);
}

static void torn_then_cut(fx *f, const void *junk, size_t jlen, int reopen)
{
	off_t good;
	got *g;

	for (int i = 0; i < 3; i++)
		ev(f, NOW + i, NULL, "before the crash");
	good = file_size(f, "2026-11.log");
	raw_append(f, "2026-11.log", junk, jlen);
	/* readers ignore the torn record */
	g = read_all(f, INT64_MIN, NULL, 0);
	assert_int_equal(g->n, 3);
	if (reopen) {
		qli_audit_close(f->a);
		assert_int_equal(qli_audit_open(&f->a, f->dirfd, 0, 0), 0);
	}
	/* the next append cuts it */
	ev(f, NOW + 10, NULL, "after the crash");
	g = read_all(f, INT64_MIN, NULL, 0);
	assert_int_equal(g->n, 4);
	has(g->json[3], "after the crash");
	assert_true(file_size(f, "2026-11.log") > good);
	assert_true(file_size(f, "2026-11.log") <
		    good + (off_t)jlen + 12 + (off_t)strlen(g->json[3]) + 1);
	assert_true(file_size(f, "2026-11.log") ==
		    good + 12 + (off_t)strlen(g->json[3]));
}

static void test_torn_partial(void **state)
{
	fx *f = *state;
	uint8_t junk[40];

	/* a header claiming 300 bytes, then only part of the payload */
	memset(junk, 'x', sizeof(junk));
	qli_put32(junk, 300);
	qli_put64(junk + 4, 42);
	junk[12] = '{';
	torn_then_cut(f, junk, sizeof(junk), 1);
}

static void test_torn_zeros(void **state)
{
	fx *f = *state;
	uint8_t junk[700] = { 0 };

	/* the size grew but the data never arrived; same handle */
	torn_then_cut(f, junk, sizeof(junk), 0);
}

static void test_torn_header(void **state)
{
	fx *f = *state;
	uint8_t junk[5] = { 9, 0, 0, 0, 1 };

	torn_then_cut(f, junk, sizeof(junk), 1);
}

static void test_torn_full_length_bad_sum(void **state)
{
	fx *f = *state;
	uint8_t junk[12 + 20];

	/* the whole record's length is there, the sum does not match */
	memset(junk, ' ', sizeof(junk));
	qli_put32(junk, 20);
	qli_put64(junk + 4, 7);
	junk[12] = '{';
	junk[31] = '}';
	torn_then_cut(f, junk, sizeof(junk), 1);
}

/* Offsets of the records of a month file. */
static size_t offsets(fx *f, const char *name, size_t *off, size_t max,
		      uint8_t *buf, size_t cap, size_t *len)
{
	size_t n = 0, o = 0;

	*len = raw_read(f, name, buf, cap);
	while (o < *len && n < max) {
		off[n++] = o;
		o += 12 + qli_get32(buf + o);
	}
	return n;
}

static void test_damage_middle(void **state)
{
	fx *f = *state;
	uint8_t buf[16384], b;
	size_t off[8], len;
	char where[64];
	qli_audit *a2;
	got *g;

	for (int i = 0; i < 5; i++)
		ev(f, NOW + i, "ORD", "some query text");
	assert_int_equal(offsets(f, "2026-11.log", off, 8, buf, sizeof(buf),
				 &len), 5);
	/* one flipped byte in record 2's payload */
	b = buf[off[2] + 30] ^ 0x01;
	raw_patch(f, "2026-11.log", (off_t)off[2] + 30, &b, 1);
	g = read_all(f, INT64_MIN, NULL, QL_ECORRUPT);
	assert_int_equal(g->n, 2); /* what came before was delivered */
	snprintf(where, sizeof(where), "audit/2026-11.log: offset %zu: ",
		 off[2]);
	assert_msg(where);
	assert_msg("valid record follows");
	/* a new appender refuses to continue past damage */
	assert_int_equal(qli_audit_open(&a2, f->dirfd, 0, 0), 0);
	assert_int_equal(qli_audit_query(a2, NOW + 9, "x", NULL, "q"),
			 QL_ECORRUPT);
	assert_msg(where);
	qli_audit_close(a2);
	/* restore it; then a length field in the middle claims too much */
	raw_patch(f, "2026-11.log", (off_t)off[2] + 30, buf + off[2] + 30, 1);
	assert_int_equal(read_all(f, INT64_MIN, NULL, 0)->n, 5);
	b = 0x7f;
	raw_patch(f, "2026-11.log", (off_t)off[1] + 1, &b, 1);
	read_all(f, INT64_MIN, NULL, QL_ECORRUPT);
	snprintf(where, sizeof(where), "offset %zu: ", off[1]);
	assert_msg(where);
	/* and one claiming past the end of the file */
	raw_patch(f, "2026-11.log", (off_t)off[1], buf + off[1], 12);
	b = 0x02;
	raw_patch(f, "2026-11.log", (off_t)off[3] + 2, &b, 1);
	read_all(f, INT64_MIN, NULL, QL_ECORRUPT);
	snprintf(where, sizeof(where), "offset %zu: ", off[3]);
	assert_msg(where);
}

/* A frame whose sum is right but whose payload is not what the trail
 * writes is damage, never a tear. */
static void append_frame(fx *f, const char *payload)
{
	uint8_t fr[512];
	size_t n = strlen(payload);

	qli_put32(fr, (uint32_t)n);
	qli_put64(fr + 4, qli_hash64(payload, n, 0));
	memcpy(fr + 12, payload, n);
	raw_append(f, "2026-11.log", fr, 12 + n);
}

static void test_bad_payloads(void **state)
{
	static const struct {
		const char *payload, *msg;
	} t[] = {
		{ "not json", "not a JSON object" },
		{ "{\"ts\":1,\"prev\":\"0000000000000000\"", "not a JSON" },
		{ "{\"ts\":1.5,\"prev\":\"0000000000000000\"}",
		  "integer ts" },
		{ "{\"ts\":99999999999999999999,\"prev\":\"00\"}",
		  "integer ts" },
		{ "{\"ts\":1}", "no valid prev" },
		{ "{\"ts\":1,\"prev\":\"000000000000000G\"}", "no valid prev" },
		{ "{\"ts\":1,\"prev\":\"0\"} x", "not a JSON" },
		{ "[1]", "not a JSON" },
	};
	fx *f = *state;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char p[512], where[64];
		off_t off;

		ev(f, NOW, NULL, "good");
		off = file_size(f, "2026-11.log");
		append_frame(f, t[i].payload);
		read_all(f, INT64_MIN, NULL, QL_ECORRUPT);
		snprintf(where, sizeof(where), "offset %lld: ",
			 (long long)off);
		assert_msg(where);
		assert_msg(t[i].msg);
		path_of(f, "2026-11.log", p, sizeof(p));
		assert_int_equal(truncate(p, off), 0);
	}
	/* nested values, escapes and whitespace are fine */
	{
		qli_json j;

		qli_json_init(&j);
		qli_json_str(&j, "k", "\x01\"\\ \xf0\x9f\x98\x80");
		qli_json_arr_begin(&j, "deep");
		for (int d = 0; d < 14; d++)
			qli_json_arr_begin(&j, NULL);
		for (int d = 0; d < 15; d++)
			qli_json_end(&j);
		assert_int_equal(qli_audit_append(f->a, NOW, "nested", "me",
						  "O\n1", &j), 0);
		qli_json_free(&j);
	}
	assert_int_equal(read_all(f, INT64_MIN, "O\n1", 0)->n, 1);
}

static void test_chain_broken(void **state)
{
	fx *f = *state;
	uint8_t buf[16384];
	size_t off[8], len;
	char where[64], p[512];
	int fd;

	for (int i = 0; i < 4; i++)
		ev(f, NOW + i, NULL, "q");
	assert_int_equal(offsets(f, "2026-11.log", off, 8, buf, sizeof(buf),
				 &len), 4);
	/* remove record 1 whole: every frame is intact, the chain is not */
	path_of(f, "2026-11.log", p, sizeof(p));
	fd = open(p, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, off[1]), (ssize_t)off[1]);
	assert_int_equal(write(fd, buf + off[2], len - off[2]),
			 (ssize_t)(len - off[2]));
	close(fd);
	read_all(f, INT64_MIN, NULL, QL_ECORRUPT);
	snprintf(where, sizeof(where), "offset %zu: chain broken", off[1]);
	assert_msg(where);
}

static void test_month_rotation(void **state)
{
	fx *f = *state;
	uint8_t a[8192], b[8192];
	size_t la, lb, off[8], o;
	char want[40];
	got *g;

	ev(f, DEC1 - T_MIN, NULL, "november");
	ev(f, DEC1 - 1, NULL, "november, last microsecond");
	ev(f, DEC1, NULL, "december");
	ev(f, DEC1 + 40 * T_DAY, NULL, "january");
	assert_true(file_size(f, "2026-11.log") > 0);
	assert_true(file_size(f, "2026-12.log") > 0);
	assert_true(file_size(f, "2027-01.log") > 0);
	/* december's first record links to november's last */
	assert_int_equal(offsets(f, "2026-11.log", off, 8, a, sizeof(a), &la),
			 2);
	o = off[1];
	lb = raw_read(f, "2026-12.log", b, sizeof(b));
	assert_true(lb > 12);
	snprintf(want, sizeof(want), "\"prev\":\"%016llx\"",
		 (unsigned long long)qli_get64(a + o + 4));
	assert_non_null(memmem(b + 12, qli_get32(b), want, strlen(want)));

	/* the clock jumps back to november: the event goes to the newest
	 * file, january, so files stay in order */
	ev(f, NOW, NULL, "clock went back");
	assert_true(file_size(f, "2026-11.log") == (off_t)la);
	g = read_all(f, INT64_MIN, NULL, 0);
	assert_int_equal(g->n, 5);
	has(g->json[4], "clock went back");
	assert_true(g->ts[4] == NOW);
	/* since december: november's file is skipped unread, the jump-back
	 * event is filtered by its time */
	g = read_all(f, DEC1, NULL, 0);
	assert_int_equal(g->n, 2);
	has(g->json[0], "\"december\"");

	/* a torn tail in january is cut by whoever begins february, and the
	 * chain still holds */
	{
		uint8_t junk[7] = { 50, 0, 0, 0, 0, 0, 0 };
		off_t jan = file_size(f, "2027-01.log");

		raw_append(f, "2027-01.log", junk, sizeof(junk));
		ev(f, DEC1 + 70 * T_DAY, NULL, "february");
		assert_true(file_size(f, "2027-01.log") == jan);
	}
	g = read_all(f, INT64_MIN, NULL, 0);
	assert_int_equal(g->n, 6);
}

static int count_removed(const char *name, void *ctx)
{
	got *g = ctx;

	snprintf(g->json[g->n++], sizeof(g->json[0]), "%s", name);
	return 0;
}

static void test_expiry(void **state)
{
	fx *f = *state;
	static got rm;
	int64_t jan24 = T_EPOCH - 1035 * T_DAY; /* 2024-01-02 */
	int64_t now;

	ev(f, jan24, NULL, "2024-01");
	ev(f, jan24 + 31 * T_DAY, NULL, "2024-02");
	ev(f, jan24 + 60 * T_DAY, NULL, "2024-03");
	ev(f, NOW, NULL, "2026-11");
	assert_true(file_size(f, "2024-01.log") > 0);
	assert_true(file_size(f, "2024-02.log") > 0);
	assert_true(file_size(f, "2024-03.log") > 0);
	/* 2026-03-15 with 730 days: cut at 2024-03-15, so january and
	 * february 2024 have ended before it, march has not */
	assert_int_equal(qli_audit_expire(f->dirfd, 0, 0, NULL, NULL),
			 QL_EINVAL);
	now = T_EPOCH - 231 * T_DAY; /* 2026-03-15 */
	memset(&rm, 0, sizeof(rm));
	assert_int_equal(qli_audit_expire(f->dirfd, now,
					  QLI_AUDIT_RETENTION_DEFAULT,
					  count_removed, &rm), 2);
	assert_int_equal(rm.n, 2);
	assert_string_equal(rm.json[0], "2024-01.log");
	assert_string_equal(rm.json[1], "2024-02.log");
	assert_int_equal(file_size(f, "2024-01.log"), -1);
	assert_int_equal(file_size(f, "2024-02.log"), -1);
	assert_true(file_size(f, "2024-03.log") > 0);
	/* the rest still reads, the chain starting at the oldest left */
	assert_int_equal(read_all(f, INT64_MIN, NULL, 0)->n, 2);
	/* nothing more is due; then far in the future, all but the newest
	 * go (appends go there) */
	assert_int_equal(qli_audit_expire(f->dirfd, now,
					  QLI_AUDIT_RETENTION_DEFAULT, NULL,
					  NULL), 0);
	assert_int_equal(qli_audit_expire(f->dirfd, NOW + 3000 * T_DAY,
					  QLI_AUDIT_RETENTION_DEFAULT, NULL,
					  NULL), 1);
	assert_true(file_size(f, "2026-11.log") > 0);
	ev(f, NOW + 1, NULL, "still appending");
	assert_int_equal(read_all(f, INT64_MIN, NULL, 0)->n, 2);
}

static void test_no_audit_dir(void **state)
{
	fx *f = *state;
	char p[512];

	/* the handle's directory goes away: reopen it at the end */
	qli_audit_close(f->a);
	f->a = NULL;
	snprintf(p, sizeof(p), "%s/audit", f->dir);
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(read_all(f, INT64_MIN, NULL, 0)->n, 0);
	assert_int_equal(qli_audit_expire(f->dirfd, NOW, T_DAY, NULL, NULL),
			 0);
	/* a symlink in its place is refused */
	assert_int_equal(symlink("/tmp", p), 0);
	read_all(f, INT64_MIN, NULL, QL_EUNSAFE);
	/* other names in audit/ are ignored */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/audit/notes.txt", f->dir);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	snprintf(p, sizeof(p), "%s/audit/2026-13.log", f->dir);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	assert_int_equal(qli_audit_open(&f->a, f->dirfd, 0, 0), 0);
	ev(f, NOW, NULL, "q");
	assert_int_equal(read_all(f, INT64_MIN, NULL, 0)->n, 1);
}

/* Processes appending at once, with clocks on both sides of a month
 * boundary: every event arrives once and the chain holds across files. */
static void test_concurrent_appends(void **state)
{
	fx *f = *state;
	enum { PROCS = 6, EVENTS = 40 };
	pid_t pid[PROCS];
	got *g;

	for (int p = 0; p < PROCS; p++) {
		pid[p] = fork();
		assert_true(pid[p] >= 0);
		if (pid[p] == 0) {
			qli_audit *a;
			char q[32];

			if (qli_audit_open(&a, f->dirfd, 0, 0))
				_exit(2);
			for (int i = 0; i < EVENTS; i++) {
				/* odd processes cross into december */
				int64_t t = DEC1 - 20 * T_MIN +
					    (p % 2 ? i * T_MIN : 0);

				snprintf(q, sizeof(q), "p%d-%d", p, i);
				if (qli_audit_query(a, t, "proc", NULL, q))
					_exit(3);
			}
			qli_audit_close(a);
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int st;

		assert_int_equal(waitpid(pid[p], &st, 0), pid[p]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	g = read_all(f, INT64_MIN, NULL, 0);
	assert_int_equal(g->n, PROCS * EVENTS);
	assert_true(file_size(f, "2026-12.log") > 0);
}

/* ---------------------------------------------------------------------- */
/* injected faults                                                         */
/* ---------------------------------------------------------------------- */

static int fail_sync, fail_write_after;
static qli_vfs faulty;

static int f_fdatasync(int fd)
{
	if (fail_sync) {
		fail_sync = 0;
		errno = EIO;
		return -1;
	}
	return qli_vfs_posix.fdatasync(fd);
}

/* Writes at most 10 bytes, then fails with ENOSPC once armed. */
static ssize_t f_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (fail_write_after == 1) {
		fail_write_after = 2;
		return qli_vfs_posix.pwrite(fd, buf, len < 10 ? len : 10, off);
	}
	if (fail_write_after == 2) {
		fail_write_after = 0;
		errno = ENOSPC;
		return -1;
	}
	return qli_vfs_posix.pwrite(fd, buf, len, off);
}

static void test_faults(void **state)
{
	fx *f = *state;
	off_t good;
	got *g;

	faulty = qli_vfs_posix;
	faulty.fdatasync = f_fdatasync;
	faulty.pwrite = f_pwrite;
	qli_vfs_cur = &faulty;
	ev(f, NOW, NULL, "one");
	good = file_size(f, "2026-11.log");
	fail_sync = 1;
	assert_int_equal(qli_audit_query(f->a, NOW + 1, "x", NULL, "lost"),
			 QL_EIO);
	assert_msg("fdatasync audit/2026-11.log");
	/* not promised, and taken back where possible */
	assert_true(file_size(f, "2026-11.log") == good);
	fail_write_after = 1;
	assert_int_equal(qli_audit_query(f->a, NOW + 2, "x", NULL, "lost"),
			 QL_ENOSPC);
	assert_true(file_size(f, "2026-11.log") == good);
	ev(f, NOW + 3, NULL, "two");
	qli_vfs_cur = &qli_vfs_posix;
	g = read_all(f, INT64_MIN, NULL, 0);
	assert_int_equal(g->n, 2);
	has(g->json[1], "\"two\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test_setup_teardown(test_json_writer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_filters, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_partial, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torn_zeros, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torn_header, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torn_full_length_bad_sum,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_middle, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_chain_broken, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_payloads, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_month_rotation, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_audit_dir, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_appends, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
