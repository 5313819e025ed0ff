/* fuzz_ndjson.c - logtool's NDJSON line parser (tools/ndjson.c) on
 * arbitrary bytes, and its printer on what the parser accepts.
 *
 * The input is cut into lines at '\n' as `logtool import` does, and, when
 * it has more than one, is also given whole as one line. For each line:
 *   - blank (only space, tab, CR, LF) exactly when the parser says so;
 *   - refused: a message that is one non-empty line of printable text
 *     (import prints it as "FILE:LINE: message");
 *   - accepted: a record ql_append could take in shape: both handles
 *     present, result 0 or 1; a handle that ql_handle_parse accepts has a
 *     canonical form that is its own canonical form;
 *   - round trip: the accepted record printed as `scan -o json` prints it
 *     (ndjson_format) parses back to the identical record, and prints
 *     identically again; so does the record with canonical handles, which
 *     is what an export of the store holds.
 * A failed invariant aborts. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "ndjson.h"
#include "querylog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW INT64_C(1793534400000000) /* 2026-11-01T12:00:00Z */

static void check_msg(const char *msg, size_t sz)
{
	size_t n = strnlen(msg, sz);

	if (n == 0 || n == sz)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			abort();
}

static int blank(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' &&
		    p[i] != '\n')
			return 0;
	return 1;
}

static void same(const ql_record *a, const ql_record *b)
{
	if (a->ts != b->ts || strcmp(a->requester, b->requester) ||
	    strcmp(a->target, b->target) || memcmp(a->ip, b->ip, 16) ||
	    a->service != b->service || a->result != b->result)
		abort();
}

/* Prints r, parses the line back, compares, prints again. */
static void round_trip(const ql_record *r)
{
	char b1[256], b2[256], msg[NDJSON_MSG_MAX];
	char *s1, *s2;
	size_t n1, n2;
	struct json_t *own;
	ql_record back;

	s1 = ndjson_format(r, b1, sizeof(b1), &n1);
	if (!s1 || strlen(s1) != n1 || memchr(s1, '\n', n1))
		abort();
	if (ndjson_parse_line(&back, &own, s1, n1, NOW, msg, sizeof(msg)) !=
	    NDJSON_RECORD)
		abort();
	same(r, &back);
	s2 = ndjson_format(&back, b2, sizeof(b2), &n2);
	if (!s2 || n1 != n2 || memcmp(s1, s2, n1))
		abort();
	ndjson_release(own);
	if (s1 != b1)
		free(s1);
	if (s2 != b2)
		free(s2);
}

static void one_line(const uint8_t *p, size_t n)
{
	char msg[NDJSON_MSG_MAX];
	char req[QL_HANDLE_MAX + 1], tgt[QL_HANDLE_MAX + 1];
	char again[QL_HANDLE_MAX + 1];
	struct json_t *own = NULL;
	ql_record r;
	int rc, ok_req, ok_tgt;

	memset(msg, 0x55, sizeof(msg));
	rc = ndjson_parse_line(&r, &own, (const char *)p, n, NOW, msg,
			       sizeof(msg));
	if ((rc == NDJSON_BLANK) != blank(p, n))
		abort();
	if (rc == NDJSON_BLANK)
		return;
	if (rc == NDJSON_BAD) {
		if (own)
			abort();
		check_msg(msg, sizeof(msg));
		return;
	}
	if (rc != NDJSON_RECORD || !own || !r.requester || !r.target ||
	    r.result > 1)
		abort();

	/* The checks ql_append makes on the handles, as it makes them. */
	ok_req = !ql_handle_parse(req, sizeof(req), r.requester, "requester");
	ok_tgt = !ql_handle_parse(tgt, sizeof(tgt), r.target, "target");
	if (ok_req && (strlen(req) > QL_HANDLE_MAX ||
		       ql_handle_parse(again, sizeof(again), req, "requester") ||
		       strcmp(req, again)))
		abort();
	if (ok_tgt && (strlen(tgt) > QL_HANDLE_MAX ||
		       ql_handle_parse(again, sizeof(again), tgt, "target") ||
		       strcmp(tgt, again)))
		abort();

	round_trip(&r);
	if (ok_req && ok_tgt) {
		/* what the store keeps, and an export prints */
		ql_record c = r;

		c.requester = req;
		c.target = tgt;
		round_trip(&c);
	}
	ndjson_release(own);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size, *nl;
	int lines = 0;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		one_line(p, (size_t)((nl ? nl : end) - p));
		lines++;
		if (!nl)
			break;
		p = nl + 1;
	}
	if (lines > 1)
		one_line(data, size);
	return 0;
}
