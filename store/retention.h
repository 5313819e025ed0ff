/* retention.h - the retention planner: which segments are due, which are
 * held, which may go. Pure code: no I/O, no clock, no globals. The caller
 * gives it the catalog (segment descriptors), the holds and now, and
 * carries the plan out (expire = plan; mark; unlink; forget, so that a
 * restart finishes a half-done deletion by planning again: the plan is a
 * function of its inputs, and an unlinked segment is simply no longer in
 * the catalog).
 *
 * The rule
 * --------
 * A segment holds records with times in its bucket [bucket_start,
 * bucket_end). It is *due* once its whole range is older than the
 * retention period R:
 *
 *	due(seg, now)  <=>  bucket_end <= now - R
 *
 * A due segment is kept while any active hold covers it
 * (qli_hold_covers: active, not past its expiry, window overlapping the
 * bucket); otherwise it is expired whole. Late generations (g1, g2, ...)
 * of a bucket have the same range and so the same fate.
 *
 * The lifetime guarantee (bucket width W, sweep interval I)
 * ---------------------------------------------------------
 * A record with time t lies in a bucket [s, s + W) with s <= t < s + W.
 *  - Never deleted before t + R: deletion needs now >= s + W + R, and
 *    s + W > t, so now > t + R. Reads see it until then too
 *    (qli_retention_visible is true while not due).
 *  - Gone by t + R + W + I: s + W <= t + W, so the segment is due at the
 *    latest at now = t + W + R, from which instant reads no longer return
 *    it (unless held), and the next sweep, at most I later, unlinks it.
 *    (Plus the time the sweep itself takes to unlink; a held segment is
 *    gone by the same bound counted from the moment the last hold that
 *    covers it is released or lapses.)
 * These bounds assume a correct clock and R > seal grace, so that a due
 * bucket is always sealed before it is due (the bucket closes at its end
 * plus the grace; the caller checks R against the options, and never hands
 * the planner a segment the writer still has open).
 *
 * Clock jumps
 * -----------
 * The plan uses only the now it is given; it cannot tell a jump.
 *  - Forward: whatever is due at the new time is expired at once, and holds
 *    whose expiry the new time passes stop pinning. A wrong jump of days
 *    deletes data early and irreversibly. That risk is the caller's to
 *    guard (e.g. refuse a sweep when now is far ahead of the newest record
 *    or of the last sweep's time, and audit the refusal).
 *  - Backward: nothing deleted comes back (deleted is deleted) and nothing
 *    is expired that was not already due at the earlier time; expiry is
 *    merely delayed until the clock catches up. A hold recorded as lapsed
 *    stays lapsed.
 */
#ifndef QL_RETENTION_H
#define QL_RETENTION_H

#include "hold.h"
#include "segment.h"

#include <stddef.h>
#include <stdint.h>

/* One segment file as the catalog knows it. */
typedef struct qli_seg_desc {
	char name[QLI_SEG_NAME_MAX];
	int64_t bucket_start, bucket_end; /* records lie in [start, end) */
	uint32_t generation;
	uint64_t records, bytes;
} qli_seg_desc;

#define QLI_RET_KEEP_YOUNG 0 /* not due yet */
#define QLI_RET_KEEP_HELD 1  /* due, pinned by at least one hold */
#define QLI_RET_EXPIRE 2     /* due and no active hold covers it */

/* Why a hold does or does not pin a segment. */
#define QLI_WHY_PINS 0     /* active and its window overlaps the bucket */
#define QLI_WHY_WINDOW 1   /* active, but its window misses the bucket */
#define QLI_WHY_RELEASED 2 /* window overlaps, but it was released */
#define QLI_WHY_LAPSED 3   /* window overlaps, but its expiry passed */

typedef struct qli_ret_ref {
	const qli_hold *hold; /* borrowed from the holdset given to the plan */
	int why;              /* QLI_WHY_* */
} qli_ret_ref;

typedef struct qli_ret_decision {
	int action; /* QLI_RET_* */
	/* KEEP_HELD: the holds that pin it (why = PINS), at least one.
	 * EXPIRE: the holds considered and why none pins it: every hold
	 * active at now (why = WINDOW), and every released or lapsed hold
	 * whose window overlaps the bucket (it would have pinned it).
	 * Released or lapsed holds that never covered the bucket are not
	 * listed. KEEP_YOUNG: none. */
	const qli_ret_ref *refs;
	size_t nrefs;
	int64_t due_at; /* bucket_end + R: when it became or becomes due */
} qli_ret_decision;

typedef struct qli_ret_plan {
	qli_ret_decision *d; /* one per input segment, in input order */
	size_t n;
	size_t n_young, n_held, n_expire;
	qli_ret_ref *pool; /* storage of the refs lists */
	size_t npool;
} qli_ret_plan;

/* Decides the fate of n segments at now under retention period
 * retention_us (> 0). The plan borrows the holds: keep holds unchanged
 * and alive while using it. Free with qli_ret_plan_free (also after a
 * failure; the plan is zeroed first).
 * Errors: QL_EINVAL (retention <= 0, a segment with bucket_end <=
 * bucket_start, naming it), QL_ENOMEM. */
int qli_retention_plan(qli_ret_plan *out, const qli_seg_desc *segs, size_t n,
		       const qli_holdset *holds, int64_t now,
		       int64_t retention_us);
void qli_ret_plan_free(qli_ret_plan *p);

/* 1 if the segment is due at now (bucket_end <= now - retention_us),
 * else 0. Saturating: never overflows. */
int qli_retention_due(const qli_seg_desc *seg, int64_t now,
		      int64_t retention_us);

/* Whether reads may return records of this segment at now: 1 when it is
 * not due or an active hold covers it, 0 when it is due and unheld (it is
 * deleted by the next sweep and must already be invisible: "reads never
 * return records from a segment that is past due and unheld"). */
int qli_retention_visible(const qli_seg_desc *seg, const qli_holdset *holds,
			  int64_t now, int64_t retention_us);

/* "keep-young", "keep-held", "expire"; and "pins", "window", "released",
 * "lapsed". For reports and audit events. */
const char *qli_ret_action_name(int action);
const char *qli_ret_why_name(int why);

#endif
