/* audit.h - the append-only audit trail inside the store.
 *
 * Every deletion, every hold change and every query run under an order is
 * written as one event, durable when the call returns. The trail lives in
 * the store directory, in audit/YYYY-MM.log, one file per UTC month, so
 * that its own retention (much longer than the data's, default 2 years)
 * deletes whole months and nothing else ever rewrites a file.
 *
 * Record framing (all integers little-endian), back to back in a file:
 *
 *	0   4  payload length L (1 .. QLI_AUDIT_MAX_PAYLOAD)
 *	4   8  xxh64 (seed 0) of the payload
 *	12  L  payload: one JSON object on one line (UTF-8, no newline)
 *
 * The payload always starts with these members, in this order:
 *
 *	{"ts":<int64 microseconds, UTC>,"time":"<RFC 3339>",
 *	 "event":"<name>","who":"<actor>",["order_id":"<id>",]
 *	 "prev":"<16 lowercase hex digits>", <event fields>...}
 *
 * prev is the xxh64 of the previous record's payload: in the same file,
 * or for a file's first record the last record of the newest earlier file
 * that has one (0 for the very first record of the store). The chain makes
 * a removed, inserted or reordered record detectable. xxh64 is not a MAC:
 * anyone who can write the files can recompute the chain; tamper evidence
 * (a keyed or signed chain, external anchoring) is later work.
 *
 * Crash safety. A crash mid-append leaves at most one torn record at the
 * end of a file. Readers ignore it; the next append to that file cuts it
 * first. A bad record followed by any valid record is damage, not a tear:
 * QL_ECORRUPT naming the file and offset, for readers and appenders alike
 * (the trail does not silently continue past damage).
 *
 * Clock jumps. Events go to the file of the month of now, or to the newest
 * existing file when that is later (a clock that jumped back never writes
 * into an older month, so files stay in order and the chain linear); ts
 * records the clock as it was. Hence a file never holds an event later
 * than its month.
 *
 * Concurrency. Appends from many processes to the same file are
 * serialised by an exclusive flock on the file (through the vfs) held from
 * reading the chain's tail to the fdatasync. Readers take no lock: they
 * may see a record being written as a torn tail and ignore it.
 */
#ifndef QL_AUDIT_H
#define QL_AUDIT_H

#include "codec.h"
#include "hold.h"
#include "retention.h"

#include <stddef.h>
#include <stdint.h>

#define QLI_AUDIT_DIR "audit"
#define QLI_AUDIT_FRAME_HDR 12
#define QLI_AUDIT_MAX_PAYLOAD (1u << 20)
/* Default retention of the audit trail itself: 2 years (730 days). */
#define QLI_AUDIT_RETENTION_DEFAULT (730 * QLI_HOLD_US_PER_DAY)

/* Event names. */
#define QLI_AEV_SEGMENT_SEALED "segment_sealed"
#define QLI_AEV_SEGMENT_EXPIRED "segment_expired"
#define QLI_AEV_HOLD_PLACED "hold_placed"
#define QLI_AEV_HOLD_EXTENDED "hold_extended"
#define QLI_AEV_HOLD_RELEASED "hold_released"
#define QLI_AEV_HOLD_LAPSED "hold_lapsed"
#define QLI_AEV_QUERY "query"

/* ---------------------------------------------------------------------- */
/* JSON text                                                               */
/* ---------------------------------------------------------------------- */

/* Appends s[0..len) to out as a JSON string (RFC 8259), quotes included:
 * '"' and '\' escaped with a backslash, control characters U+0000-U+001F
 * and DEL as \u00XX; valid UTF-8 is copied as is and each byte of an
 * invalid sequence becomes \ufffd, so the output is always valid JSON.
 * 0 or QL_ENOMEM. */
int qli_json_escape(qli_buf *out, const char *s, size_t len);

/* A small writer for the members of one JSON object (the event fields):
 * it starts inside an object whose braces the audit adds. Errors are
 * sticky in err (QL_ENOMEM, or QL_EINVAL for misuse such as nesting
 * deeper than 16) and reported by qli_audit_append. */
typedef struct qli_json {
	qli_buf b;
	int err;
	unsigned depth;
	uint32_t nonempty; /* bit d: the container at depth d has a member */
	uint32_t is_arr;   /* bit d: the container at depth d is an array */
} qli_json;

void qli_json_init(qli_json *j);
void qli_json_free(qli_json *j);
/* key is a member name inside objects and must be NULL inside arrays. */
void qli_json_str(qli_json *j, const char *key, const char *v); /* NULL:
								   null */
void qli_json_i64(qli_json *j, const char *key, int64_t v);
void qli_json_u64(qli_json *j, const char *key, uint64_t v);
/* RFC 3339 text (ql_time_format); QLI_HOLD_OPEN gives null. */
void qli_json_time(qli_json *j, const char *key, int64_t t);
/* 16 lowercase hex digits, as a string. */
void qli_json_hex64(qli_json *j, const char *key, uint64_t v);
void qli_json_obj_begin(qli_json *j, const char *key);
void qli_json_arr_begin(qli_json *j, const char *key);
void qli_json_end(qli_json *j); /* closes the innermost object or array */

/* ---------------------------------------------------------------------- */
/* Appending                                                               */
/* ---------------------------------------------------------------------- */

typedef struct qli_audit qli_audit;

/* Opens an appender on the store directory dirfd (borrowed: keep it open
 * while the handle lives). Creates audit/ if missing (and syncs the store
 * directory). file_mode/dir_mode 0 mean 0600/0700. A handle is not
 * thread-safe: use one per thread or a mutex; handles in different
 * threads or processes exclude each other per append.
 * Errors: QL_EIO, QL_ENOSPC, QL_ENOMEM, QL_EUNSAFE (audit is a symlink). */
int qli_audit_open(qli_audit **out, int dirfd, unsigned file_mode,
		   unsigned dir_mode);
/* NULL is fine. */
void qli_audit_close(qli_audit *a);

/* Appends one event and returns once it is durable (fdatasync; the
 * directory too when the append created a month file). event is a name
 * of 1-32 characters [a-z0-9_]; who is required (1 or more bytes);
 * order_id may be NULL; fields may be NULL or the event's members.
 * The first append of a handle to a file checks that file whole (sums,
 * chain, torn tail); later ones check only what other writers added.
 * Errors: QL_EINVAL (bad name, who missing, payload over 1 MiB, fields
 * misused), QL_ERANGE (now outside years 0000-9999), QL_ECORRUPT (the
 * month file is damaged: message names file and offset), QL_EIO,
 * QL_ENOSPC, QL_ENOMEM. After a failure nothing was promised durable;
 * the event may still appear (as with any failed fsync). */
int qli_audit_append(qli_audit *a, int64_t now, const char *event,
		     const char *who, const char *order_id,
		     const qli_json *fields);

/* qli_audit_append in two steps, for a caller that changes state it
 * audits between them (a hold change: the event is prepared, HOLDS is
 * saved, the event is written). qli_audit_prepare locks the trail and
 * builds the event: every allocation, and every check of the trail, is
 * done here, so a failure leaves nothing to undo. qli_audit_commit then
 * writes and syncs it (it can fail only for I/O) and unlocks;
 * qli_audit_abort unlocks without writing. Exactly one of them follows a
 * successful prepare. Errors as qli_audit_append. */
int qli_audit_prepare(qli_audit *a, int64_t now, const char *event,
		      const char *who, const char *order_id,
		      const qli_json *fields);
int qli_audit_commit(qli_audit *a);
void qli_audit_abort(qli_audit *a);

/* segment_sealed: fields segment, records, bytes, checksum (hex). */
int qli_audit_segment_sealed(qli_audit *a, int64_t now, const char *who,
			     const char *segment, uint64_t records,
			     uint64_t bytes, uint64_t checksum);

/* segment_expired, for a segment the plan decided to EXPIRE: fields
 * segment, bucket_start, bucket_end, generation, records, bytes,
 * retention_us, due_at, why (the rule in words), and holds: an array of
 * {order_id, state, why} for every hold considered (d->refs). */
int qli_audit_segment_expired(qli_audit *a, int64_t now, const char *who,
			      const qli_seg_desc *seg,
			      const qli_ret_decision *d,
			      int64_t retention_us);

/* hold_placed / hold_extended / hold_released / hold_lapsed (event is one
 * of QLI_AEV_HOLD_*), describing h after the change: order_id, state,
 * old_expires and new_expires (null when not applicable: placed has no
 * old one, released and lapsed no new one); placed adds from, to (null =
 * open), period_us, reason, placed_by, subjects; released and lapsed add
 * ended_at. who is the actor (for a lapse, the process noticing it). */
int qli_audit_hold(qli_audit *a, int64_t now, const char *event,
		   const char *who, const qli_hold *h, int64_t old_expires,
		   int64_t new_expires);
/* The same event, prepared only (qli_audit_prepare). */
int qli_audit_hold_prepare(qli_audit *a, int64_t now, const char *event,
			   const char *who, const qli_hold *h,
			   int64_t old_expires, int64_t new_expires);

/* query: who ran what under which order; query is a description of the
 * query (e.g. "handle +14155550123 role requester since ... until ..."). */
int qli_audit_query(qli_audit *a, int64_t now, const char *who,
		    const char *order_id, const char *query);

/* ---------------------------------------------------------------------- */
/* Reading and expiry                                                      */
/* ---------------------------------------------------------------------- */

/* Called once per event: json is the payload (NUL-terminated, len bytes
 * without the NUL), valid during the call; ts its time. Non-zero stops
 * the walk and is returned by qli_audit_read. */
typedef int (*qli_audit_fn)(const char *json, size_t len, int64_t ts,
			    void *ctx);

/* Calls fn for every event with ts >= since (INT64_MIN: all) and, if
 * order_id is not NULL, whose top-level order_id equals it, in file order
 * (months ascending, append order within a month). Verifies sums and the
 * chain of everything it reads (months wholly before since are skipped
 * unread). No audit directory = no events. A torn last record of a file
 * is ignored. Errors: QL_ECORRUPT (file and offset in the message),
 * QL_EIO, QL_ENOMEM, or fn's value. */
int qli_audit_read(int dirfd, int64_t since, const char *order_id,
		   qli_audit_fn fn, void *ctx);

/* Removes the month files whose whole month ends at or before now -
 * retention_us (> 0), never the newest file (appends go there). Run it
 * under the maint lock. fn (may be NULL) is told each name ("YYYY-MM.log")
 * before it is unlinked, e.g. to log it; non-zero from fn stops there and
 * is returned. Returns the number removed, or QL_EINVAL, QL_EIO. */
int qli_audit_expire(int dirfd, int64_t now, int64_t retention_us,
		     int (*fn)(const char *name, void *ctx), void *ctx);

#endif
