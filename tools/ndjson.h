/*
 * ndjson.h - logtool's record line format, both ways: one NDJSON line
 * (what `logtool import` reads) to a ql_record, and a ql_record to the
 * line `scan -o json` / `query -o json` print, so that an export imports
 * back unchanged. Kept apart from logtool.c so that fuzz/fuzz_ndjson.c
 * can drive it.
 *
 * A line is one JSON object with exactly the keys ts, requester, target,
 * ip, service, result (docs/logtool.1: import, OUTPUT FORMATS).
 */
#ifndef LT_NDJSON_H
#define LT_NDJSON_H

#include <stddef.h>
#include <stdint.h>

#include "querylog.h"

struct json_t; /* jansson's */

/* Room for any message of ndjson_parse_line. */
#define NDJSON_MSG_MAX 512

/* ndjson_parse_line results */
#define NDJSON_BAD (-1)   /* msg says why */
#define NDJSON_BLANK 0    /* only spaces, tabs, CR, LF: no record */
#define NDJSON_RECORD 1   /* *r filled, *owner set */

/*
 * Parses one line: buf[0..len), without its line end, NUL not needed.
 * now is the time relative times in ts count from.
 *
 * NDJSON_RECORD: *r is the record. r->requester and r->target point into
 * *owner: keep it until r is no longer used, then ndjson_release() it.
 * The handles are taken as they are (ql_append validates and
 * canonicalises them); ts, ip, service and result are checked here, and
 * result is 0 or 1.
 * NDJSON_BAD: msg (sz bytes) holds one line naming the key or field, the
 * value where there is one, and the rule; nothing to release.
 */
int ndjson_parse_line(ql_record *r, struct json_t **owner, const char *buf,
		      size_t len, int64_t now, char *msg, size_t sz);
/* Releases what ndjson_parse_line returned in *owner. NULL is fine. */
void ndjson_release(struct json_t *owner);

/*
 * r as one line with the keys and value forms ndjson_parse_line reads
 * (ts as integer microseconds, service and result as numbers), without a
 * line end, NUL-terminated. Returns buf (sz bytes) when it fits, else a
 * string from malloc that the caller frees; *len is its length. NULL when
 * r cannot be encoded (a handle that is not UTF-8) or memory ran out.
 */
char *ndjson_format(const ql_record *r, char *buf, size_t sz, size_t *len);

#endif
