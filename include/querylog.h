/*
 * querylog.h - embedded storage engine for the query log of an identity
 * lookup service.
 *
 * This header is the whole public API and its contract. Anything not
 * declared here is not API.
 *
 * Conventions
 * -----------
 * - Every function that can fail returns an int: 0 (QL_OK) on success, a
 *   negative QL_E* code on failure. Cursor steps return QL_ROW (1) with a
 *   record, QL_DONE (0) at the end, or a negative code.
 * - ql_strerror(rc) names a code; ql_errmsg() gives the one-line detail of
 *   the last failure *of the calling thread* (which field, which value,
 *   which rule; which file and errno text). The message is kept per thread
 *   so that many appending threads never read each other's messages.
 * - Out-parameters come first; the caller owns what an **out receives and
 *   frees it with the matching _close or _free function, all of which accept
 *   NULL.
 * - Options structs are versioned: declare them with the _INIT macro; a
 *   zero field means "the documented default".
 * - Strings are NUL-terminated UTF-8/ASCII. Data returned by a cursor is
 *   borrowed: it stays valid until the next step or close of that cursor.
 *
 * Threading
 * ---------
 * A ql_store may be used from many threads at once: ql_append, ql_sync,
 * ql_maintain and cursor creation are thread-safe. A single ql_cursor must
 * be used by one thread at a time.
 *
 * Processes
 * ---------
 * One writer process per store directory (a second writer gets QL_EBUSY),
 * any number of reader processes (QL_OPEN_READONLY) at the same time.
 *
 * Durability
 * ----------
 * A record is durable - it survives a crash of the process or the machine -
 * once one of these has returned 0 after the ql_append() that took it:
 *   - ql_sync() on the same store (from any thread), or
 *   - ql_append() itself, when the store was opened with
 *     sync_mode = QL_SYNC_EVERY_APPEND (group commit: concurrent appenders
 *     share one fsync).
 * Before that, ql_append() returning 0 means only "accepted and buffered":
 * a crash may lose it, and it is not acknowledged. After a failed write or
 * fsync the store refuses every further append and sync (with the original
 * error code) until it is closed and reopened; reads keep working.
 */
#ifndef QUERYLOG_H
#define QUERYLOG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) || !defined(__GNUC__)
#define QL_API
#else
#define QL_API __attribute__((visibility("default")))
#endif

#define QL_VERSION_MAJOR 0
#define QL_VERSION_MINOR 1
#define QL_VERSION_PATCH 0
#define QL_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------------- */
/* Result codes. The list is pinned: codes are never renumbered.          */
/* ---------------------------------------------------------------------- */
#define QL_OK 0
#define QL_DONE 0       /* cursor: no more records */
#define QL_ROW 1        /* cursor: a record is available */
#define QL_EINVAL (-1)  /* bad argument or record field (see ql_errmsg) */
#define QL_ENOMEM (-2)  /* out of memory */
#define QL_EIO (-3)     /* an I/O call failed (file and errno in errmsg) */
#define QL_ENOSPC (-4)  /* no space left on the device, or quota */
#define QL_ECORRUPT (-5) /* checksum mismatch or malformed on-disk data */
#define QL_EBUSY (-6)   /* another process holds the writer lock */
#define QL_ENOTFOUND (-7) /* no such store, hold or object */
#define QL_EVERSION (-8) /* on-disk format version not supported */
#define QL_EREADONLY (-9) /* store opened read-only */
#define QL_EEXIST (-10) /* already exists (e.g. a hold's order ID) */
#define QL_ERANGE (-11) /* timestamp outside the accepted window */
#define QL_EUNSAFE (-12) /* refused for safety: symlink, path escape */
#define QL_EFAILED (-13) /* writer disabled by an earlier write/fsync error */

/* The name and meaning of a result code, e.g. "QL_EINVAL: invalid
 * argument". Never NULL; a static string. */
QL_API const char *ql_strerror(int rc);

/* The detail of the last failure of the calling thread: a static,
 * thread-local, NUL-terminated line (empty if none). The store argument
 * may be NULL; it is accepted so that call sites read like SQLite's. */
struct ql_store;
QL_API const char *ql_errmsg(const struct ql_store *store);

/* Library version as a string, e.g. "0.1.0". */
QL_API const char *ql_version(void);

/* ---------------------------------------------------------------------- */
/* Records                                                                 */
/* ---------------------------------------------------------------------- */

/* Longest canonical handle, in bytes, without the NUL: an email address
 * (RFC 5321: 254). Phone numbers are at most 16 ("+" and 15 digits). */
#define QL_HANDLE_MAX 254

/* Services. Other values 2..255 are accepted and stored as numbers. */
#define QL_SERVICE_MESSAGES 0
#define QL_SERVICE_FACETIME 1

typedef struct ql_record {
	int64_t ts;            /* microseconds since the Unix epoch, UTC */
	const char *requester; /* handle of the account that asked */
	const char *target;    /* handle that was looked up */
	uint8_t ip[16];        /* requester IP; IPv4 as ::ffff:a.b.c.d */
	uint8_t service;       /* QL_SERVICE_* or another number */
	uint8_t result;        /* 1 = target registered, 0 = not */
} ql_record;

/* ---------------------------------------------------------------------- */
/* Opening a store                                                         */
/* ---------------------------------------------------------------------- */

#define QL_SYNC_MANUAL 0       /* durable at ql_sync() (default) */
#define QL_SYNC_EVERY_APPEND 1 /* ql_append() returns once durable */

#define QL_OPEN_READONLY 0x1 /* reader: no lock, no recovery writes */
#define QL_OPEN_CREATE 0x2   /* create the store directory if missing */

/* A clock: returns "now" in microseconds since the epoch, UTC. */
typedef int64_t (*ql_clock_fn)(void *ctx);

#define QL_OPTIONS_VERSION 2
typedef struct ql_options {
	unsigned version; /* QL_OPTIONS_VERSION */
	unsigned flags;   /* QL_OPEN_* */

	/* Width of a time bucket (one segment per bucket), microseconds.
	 * Default 1 day. Must be a whole number of minutes that divides a
	 * day, or a whole number of days (at most 7). Fixed at creation;
	 * a later open with a different non-zero value is QL_EINVAL. */
	int64_t bucket_width_us;
	/* Retention period, microseconds. Default 30 days. A writer that
	 * sets it records it in the store, so every reader (logtool) applies
	 * the same period; 0 = the store's recorded value (30 days if none). */
	int64_t retention_us;
	/* How far in the future a record's time may be, microseconds.
	 * Default 5 minutes. */
	int64_t max_future_skew_us;
	/* How long after its end a bucket stays open for late records before
	 * it is sealed, microseconds. Default 10 minutes. */
	int64_t seal_grace_us;
	/* QL_SYNC_MANUAL (default) or QL_SYNC_EVERY_APPEND. */
	int sync_mode;
	/* Records per block before it is compressed and written. Default
	 * 4096; 16..65536. */
	unsigned block_records;
	/* zstd level of what is kept: the compact segments, or every block
	 * when compaction is off. Default 3; 1..19. (With compaction on, the
	 * blocks of a bucket still open are written at zstd's fastest level:
	 * compaction rewrites them.) */
	int compression_level;
	/* Most bytes of accepted-but-unwritten records held in memory before
	 * ql_append() waits for the background writer (back-pressure),
	 * compressing pending blocks meanwhile. Default 64 MiB. */
	size_t max_pending_bytes;
	/* Period of the background maintenance (sealing buckets on the
	 * clock; during an import, also as soon as the records are an hour
	 * past a bucket: docs/ARCHITECTURE.md), milliseconds. Default 1000.
	 * Negative disables both: the caller then calls ql_maintain(). */
	int maintenance_interval_ms;
	/* The store's clock. NULL = the system's real-time clock. Tests and
	 * imports use it to run at a chosen "now". */
	ql_clock_fn clock;
	void *clock_ctx;
	/* Permissions of files and directories the store creates. Default
	 * 0600 and 0700: the log is personal data. */
	unsigned file_mode;
	unsigned dir_mode;
	/* Retention of the audit trail, microseconds. Default 730 days. */
	int64_t audit_retention_us;
	/* What happens to a sealed segment (docs/ARCHITECTURE.md,
	 * "Compaction"): QL_COMPACT_BACKGROUND (default) rewrites it into
	 * the compact form (one dictionary per segment, about half the
	 * bytes) on a thread of its own at the lowest CPU priority;
	 * QL_COMPACT_INLINE does it inside ql_maintain() and ql_close() on
	 * the calling thread (deterministic: tests, batch imports);
	 * QL_COMPACT_OFF leaves sealed segments as they are. */
	int compaction;
} ql_options;

#define QL_COMPACT_BACKGROUND 0
#define QL_COMPACT_OFF 1
#define QL_COMPACT_INLINE 2

#define QL_OPTIONS_INIT { QL_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, \
			  NULL, NULL, 0, 0, 0, 0 }

typedef struct ql_store ql_store;

/* Opens (with QL_OPEN_CREATE, creates) the store in directory dir. A
 * writer takes the store's lock (QL_EBUSY if another process holds it)
 * and recovers: unsealed segments are validated block by block and a torn
 * tail (a partial block from a crash) is cut; what was cut is reported in
 * ql_stats.recovered_*. opts may be NULL for all defaults.
 * Errors: QL_EINVAL (bad option), QL_ENOTFOUND (no store and no
 * QL_OPEN_CREATE), QL_EBUSY, QL_EVERSION, QL_ECORRUPT, QL_EIO, QL_ENOMEM,
 * QL_EUNSAFE (dir or a file in it is a symlink). */
QL_API int ql_open(ql_store **out, const char *dir, const ql_options *opts);

/* Flushes buffered records, syncs them, stops the background thread and
 * frees the store. Returns the result of that final sync (the store is
 * freed either way). NULL is accepted and returns 0. */
QL_API int ql_close(ql_store *store);

/* ---------------------------------------------------------------------- */
/* Writing                                                                 */
/* ---------------------------------------------------------------------- */

/* Appends n records, all or nothing: every record is validated first and
 * if any is invalid none is taken; *bad_index (if not NULL) receives the
 * index of the first invalid record, and ql_errmsg names the field, the
 * value and the rule. Handles are canonicalised (a "tel:" or "mailto:"
 * prefix stripped, an email's domain lower-cased). A time more than
 * max_future_skew_us after now, or already older than the retention
 * period, is QL_ERANGE. Thread-safe. Under QL_SYNC_MANUAL returns once the
 * records are buffered (when the writer is behind it first compresses a
 * block itself, and may wait for back-pressure); under
 * QL_SYNC_EVERY_APPEND once they are durable (compressing pending blocks
 * while it waits).
 * Errors: QL_EINVAL, QL_ERANGE, QL_EREADONLY, QL_EFAILED (an earlier write
 * or sync failed: reopen), QL_EIO, QL_ENOSPC, QL_ENOMEM. Under
 * QL_SYNC_MANUAL a QL_ENOMEM took none of the batch and the store goes
 * on; under QL_SYNC_EVERY_APPEND it may also come from the sync the call
 * waited for (the writer is then disabled, as after a failed write). */
QL_API int ql_append(ql_store *store, const ql_record *recs, size_t n,
		     size_t *bad_index);

/* Makes every record whose ql_append() returned before this call durable.
 * Concurrent callers share one write and one fsync (group commit).
 * Errors: QL_EIO, QL_ENOSPC (the store is then disabled: QL_EFAILED on
 * every later append or sync), QL_EFAILED, QL_EREADONLY. */
QL_API int ql_sync(ql_store *store);

/* Runs due maintenance now: seals buckets whose time is over (even when
 * no record arrives). The background thread calls it periodically; call it
 * yourself when maintenance_interval_ms < 0. Errors as ql_sync. */
QL_API int ql_maintain(ql_store *store);

/* Rebuilds the index from the segment files (it is derived data). The
 * writer also does this by itself on open for whatever the index lacks
 * (after a crash, or if it was deleted or damaged). Queries answer the
 * same before and after. Needs the writer: run it while the server is
 * stopped, or call it from the server. */
QL_API int ql_reindex(ql_store *store);

/* ---------------------------------------------------------------------- */
/* Reading                                                                 */
/* ---------------------------------------------------------------------- */

#define QL_MATCH_ALL 0    /* every record in the time window */
#define QL_MATCH_HANDLE 1 /* records where handle has role */
#define QL_MATCH_IP 2     /* records whose ip is inside ip/prefix_len */

#define QL_ROLE_ANY 0       /* requester or target (each record once) */
#define QL_ROLE_REQUESTER 1 /* pen register: whom did it look up */
#define QL_ROLE_TARGET 2    /* trap and trace: who looked it up */

#define QL_QUERY_VERSION 1
typedef struct ql_query {
	unsigned version; /* QL_QUERY_VERSION */
	int match;        /* QL_MATCH_* */
	/* Time window [since, until) in microseconds; since = 0 means no
	 * lower bound and until = 0 no upper bound. */
	int64_t since;
	int64_t until;
	const char *handle; /* QL_MATCH_HANDLE: any accepted handle form */
	int role;           /* QL_MATCH_HANDLE: QL_ROLE_* */
	uint8_t ip[16];     /* QL_MATCH_IP: address (IPv4 mapped) */
	unsigned prefix_len; /* QL_MATCH_IP: 0..128 over the 16 bytes */
} ql_query;
#define QL_QUERY_INIT { QL_QUERY_VERSION, QL_MATCH_ALL, 0, 0, NULL, 0, \
			{ 0 }, 128 }

typedef struct ql_cursor ql_cursor;

/* Opens a cursor over the matching records, in time order (ties in the
 * order they were written), each record once. Memory is bounded by the
 * blocks that overlap in time (normally two or three). The cursor sees the
 * segments and blocks that were written when it was opened, at least
 * every record made durable before; a block being written concurrently by
 * another process is never returned torn: blocks are checked against
 * their checksum as they are read.
 * Errors: QL_EINVAL (bad query), QL_ENOMEM, QL_EIO. */
QL_API int ql_cursor_open(ql_cursor **out, ql_store *store,
			  const ql_query *query);

/* Steps the cursor. Returns QL_ROW with *rec pointing at a record that is
 * valid until the next step or close, QL_DONE at the end, or a negative
 * code: QL_ECORRUPT names the segment and offset in ql_errmsg;
 * QL_ENOTFOUND means a segment the cursor had planned to read was deleted
 * by expiry meanwhile (open a new cursor: it no longer plans it); after
 * QL_ENOMEM the cursor is where it was and the step can be retried. */
QL_API int ql_cursor_next(ql_cursor *cur, const ql_record **rec);

/* Frees the cursor. NULL is accepted. */
QL_API void ql_cursor_close(ql_cursor *cur);

/* ---------------------------------------------------------------------- */
/* Statistics and verification                                             */
/* ---------------------------------------------------------------------- */

typedef struct ql_stats {
	uint64_t segments;      /* segment files */
	uint64_t sealed_segments;
	uint64_t blocks;
	uint64_t records;       /* records in written blocks */
	uint64_t raw_bytes;     /* uncompressed block payloads */
	uint64_t disk_bytes;    /* bytes of segment files */
	int64_t min_ts, max_ts; /* time span of the records; 0 if none */
	int64_t bucket_width_us;
	int64_t retention_us;
	/* What this handle's open cut as torn tails (writer only; a later
	 * reader sees 0: the audit trail keeps the record). */
	uint64_t recovered_segments;
	uint64_t recovered_bytes;
	/* Segments whose index this handle's open (or ql_reindex) rebuilt. */
	uint64_t reindexed_segments;
	/* Non-zero when the index failed during this session (queries still
	 * answer exactly, scanning what the index does not cover). */
	int index_error;
} ql_stats;

/* Fills *out from the segment files as they are now. */
QL_API int ql_stat(ql_store *store, ql_stats *out);

typedef struct ql_segment_info {
	char name[64];        /* file name inside the store, e.g. seg/... */
	int64_t bucket_start; /* microseconds */
	int64_t bucket_end;
	uint32_t generation;  /* 0, or >0 for late records after sealing */
	int sealed;
	uint64_t blocks, records, raw_bytes, disk_bytes;
	int64_t min_ts, max_ts;
	int indexed;          /* the index covers every block of it */
	int status;           /* ql_verify: QL_OK or the damage found */
	uint64_t bad_offset;  /* ql_verify: where the damage starts */
} ql_segment_info;

/* Calls fn once per segment file in time order. With verify non-zero,
 * every block is read and checked (checksum, decompression, structure) and
 * info->status tells the result; the function then returns QL_ECORRUPT if
 * any segment is damaged (after visiting all of them). fn returning
 * non-zero stops the walk and that value is returned. */
QL_API int ql_segments(ql_store *store, int verify,
		       int (*fn)(const ql_segment_info *info, void *ctx),
		       void *ctx);

/* ---------------------------------------------------------------------- */
/* Parsing and formatting helpers (also used on every append)              */
/* ---------------------------------------------------------------------- */

/* Canonicalises a handle into out (outsz >= QL_HANDLE_MAX + 1).
 * Phones: E.164, "+" then 8 to 15 digits, first digit 1-9; "tel:" prefix
 * stripped. Emails: "mailto:" stripped; local@domain with a dot-atom local
 * part of at most 64 bytes, a domain of LDH labels (at least two, each
 * 1-63 bytes, total <= 253) lower-cased, the whole at most 254 bytes.
 * QL_EINVAL with the rule in ql_errmsg, naming field (e.g. "requester"). */
QL_API int ql_handle_parse(char *out, size_t outsz, const char *in,
			   const char *field);

/* Parses IPv4 dotted-quad or IPv6 text (inet_pton rules: no octal or
 * leading zeros, no trailing garbage, no zone IDs) into 16 bytes, IPv4 as
 * ::ffff:a.b.c.d. QL_EINVAL naming field. */
QL_API int ql_ip_parse(uint8_t out[16], const char *in, const char *field);

/* Parses ADDR or ADDR/PREFIX. An IPv4 prefix p (0..32) becomes 96 + p over
 * the mapped form; IPv6 0..128. Host bits beyond the prefix must be zero.
 * No prefix means a single address (128). */
QL_API int ql_cidr_parse(uint8_t out[16], unsigned *prefix_len,
			 const char *in, const char *field);

/* Formats 16 bytes: a dotted quad for IPv4-mapped, RFC 5952 otherwise.
 * outsz >= 46. Returns the length. */
QL_API int ql_ip_format(char *out, size_t outsz, const uint8_t ip[16]);

/* Parses a time: RFC 3339 ("2026-11-01T12:00:00Z", fraction up to 6
 * digits, "Z" or +hh:mm), a date ("2026-11-01" = midnight UTC), an integer
 * of microseconds since the epoch, "now", or relative to now: "-2h",
 * "+15m", "-30d" (units s m h d w). */
QL_API int ql_time_parse(int64_t *out, const char *in, int64_t now,
			 const char *field);

/* Parses a duration such as "30d", "12h", "90m", "45s", "2w" (a whole
 * number and one unit) into microseconds. */
QL_API int ql_duration_parse(int64_t *out, const char *in,
			     const char *field);

/* Formats a time as RFC 3339 UTC with microseconds when not whole seconds,
 * e.g. "2026-11-01T12:00:00Z" or "2026-11-01T12:00:00.000123Z".
 * outsz >= 32. Returns the length. */
QL_API int ql_time_format(char *out, size_t outsz, int64_t ts);

/* The current time of the store's clock (option clock), microseconds. */
QL_API int64_t ql_now(const ql_store *store);

/* ---------------------------------------------------------------------- */
/* Retention                                                               */
/* ---------------------------------------------------------------------- */
/*
 * Lifetime guarantee. A segment (one bucket) is deleted whole once its
 * whole time range is older than the retention period R and no active
 * hold covers it. A record with time t therefore
 *   - is never deleted before t + R (its bucket ends after t), and
 *   - is gone - unlinked and unreadable - by t + R + W + S, where W is the
 *     bucket width and S the sweep interval (how often ql_expire runs).
 * Reads never return records of a segment that is past due and unheld,
 * even before the sweep has deleted it.
 */

#define QL_EXPIRE_YOUNG 0   /* not due yet */
#define QL_EXPIRE_HELD 1    /* due, but an active hold covers it */
#define QL_EXPIRE_DELETE 2  /* due and unheld: deleted (or, dry run, to be) */

typedef struct ql_expiry {
	char name[64];        /* segment file, e.g. seg/... */
	int64_t bucket_start, bucket_end;
	uint32_t generation;
	uint64_t records, bytes;
	int action;           /* QL_EXPIRE_* */
	int64_t due_at;       /* bucket_end + retention */
	const char *held_by;  /* QL_EXPIRE_HELD: order IDs, comma-separated */
} ql_expiry;

/* Plans and (unless dry_run) carries out expiry at the store's now: every
 * due, unheld segment is recorded in the audit trail, then unlinked, then
 * forgotten by the index; a crash at any point leaves each segment fully
 * there or fully gone, and the next open or sweep finishes a half-done
 * deletion. Also marks holds whose expiry passed as lapsed and trims the
 * audit trail to its own retention. fn (may be NULL) sees every segment's
 * decision. who names the actor for the audit trail ("cron", "server").
 * Works from any process (it takes the store's maintenance lock, not the
 * writer lock), so `logtool expire` runs beside a writing server.
 * Errors: QL_EIO, QL_ENOSPC, QL_ECORRUPT (HOLDS or audit damaged: nothing
 * is deleted), QL_EINVAL. */
QL_API int ql_expire(ql_store *store, int dry_run, const char *who,
		     int (*fn)(const ql_expiry *e, void *ctx), void *ctx);

/* ---------------------------------------------------------------------- */
/* Court-order holds                                                       */
/* ---------------------------------------------------------------------- */

#define QL_HOLD_ACTIVE 0
#define QL_HOLD_RELEASED 1
#define QL_HOLD_LAPSED 2
#define QL_HOLD_OPEN_END INT64_MAX /* "to" of a prospective hold */

#define QL_HOLD_VERSION 1
typedef struct ql_hold {
	unsigned version;      /* QL_HOLD_VERSION */
	const char *order_id;  /* unique, 1-128 printable ASCII characters */
	int64_t from, to;      /* window [from, to]; to may be QL_HOLD_OPEN_END
				* (a prospective hold: pins what is written
				* while it runs) */
	int64_t expires;       /* stops pinning then (must be in the future) */
	int64_t period_us;     /* one extension; 0 = 30 days */
	const char *reason;    /* required */
	const char *placed_by; /* required */
	const char *const *subjects; /* handles, IPs, CIDRs (recorded; a hold
				      * pins whole segments for now) */
	size_t nsubjects;
	/* filled by ql_hold_list: */
	int state;             /* QL_HOLD_* */
	int64_t placed_at, ended_at;
	const char *ended_by;
} ql_hold;
#define QL_HOLD_INIT { QL_HOLD_VERSION, NULL, 0, 0, 0, 0, NULL, NULL, NULL, \
		       0, 0, 0, 0, NULL }

/* Places a hold. A segment stays while any active hold's window overlaps
 * its time range, past its retention. The change and who made it go to
 * the audit trail. Works from any process (maintenance lock).
 * Errors: QL_EEXIST (order ID used before, even if released), QL_EINVAL
 * (bad ID, window reversed, expiry not in the future, ...). */
QL_API int ql_hold_place(ql_store *store, const ql_hold *hold);

/* Extends a hold: to new_expires, or by its period when new_expires is 0.
 * Never shortens (QL_EINVAL). A released or lapsed hold cannot be
 * extended (QL_EINVAL); an unknown order is QL_ENOTFOUND. */
QL_API int ql_hold_extend(ql_store *store, const char *order_id,
			  int64_t new_expires, const char *who);

/* Releases a hold: its segments fall back to normal retention and go at
 * the next sweep if due. QL_ENOTFOUND, or QL_EINVAL if not active. */
QL_API int ql_hold_release(ql_store *store, const char *order_id,
			   const char *who);

/* Calls fn for every hold ever placed (released and lapsed ones too), in
 * the order placed; the ql_hold is valid during the call only. */
QL_API int ql_hold_list(ql_store *store,
			int (*fn)(const ql_hold *h, void *ctx), void *ctx);

/* ---------------------------------------------------------------------- */
/* Audit trail                                                             */
/* ---------------------------------------------------------------------- */

/* Calls fn for every audit event with time >= since (0: all) and, if
 * order_id is not NULL, about that order, oldest first. json is one JSON
 * object (not NUL-terminated, valid during the call). The events: segment
 * sealed and expired, hold placed, extended, released, lapsed, and queries
 * run under an order. QL_ECORRUPT names the file and offset of damage. */
QL_API int ql_audit_read(ql_store *store, int64_t since,
			 const char *order_id,
			 int (*fn)(const char *json, size_t len, void *ctx),
			 void *ctx);

/* Records in the audit trail that who ran query (a description) under
 * order_id. Durable when it returns. */
QL_API int ql_audit_query(ql_store *store, const char *who,
			  const char *order_id, const char *query);

#ifdef __cplusplus
}
#endif
#endif /* QUERYLOG_H */
