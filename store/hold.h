/* hold.h - court-order holds: the model, its rules, its durable file, and
 * the maintenance lock that serialises changes across processes.
 *
 * A hold is a named order that keeps data past the retention period. The
 * store keeps a *set* of them (qli_holdset): a segment stays while any
 * active hold covers it, so releasing one order never frees data another
 * order still pins. Released and lapsed holds stay in the set for the
 * record; they never pin anything again.
 *
 * States and transitions (nothing ever goes back to ACTIVE):
 *
 *	place ──> ACTIVE ──release──> RELEASED
 *	            │  ^
 *	            │  └─ extend (later expiry only)
 *	            └──expiry passes──> LAPSED
 *
 * A hold is *effectively* lapsed as soon as now >= expires, even before
 * qli_holds_lapse() has recorded it: qli_hold_covers() and the planner
 * never let such a hold pin, so a missed maintenance run cannot keep data
 * longer than the order allows.
 *
 * Everything in this header except qli_holds_load/save and the maint lock
 * is pure: no I/O, no clock (now is always an argument), so the rules are
 * unit-testable and the same in every process.
 *
 * Changing holds, from any process (logtool, the server, cron):
 *
 *	qli_maint_lock(dirfd, &lk);         serialise with other processes
 *	qli_holds_load(dirfd, &set);        the current set, under the lock
 *	qli_holds_lapse(&set, now, fn, c);  record lapses (fn: audit events)
 *	qli_holds_place/extend/release(&set, ...);
 *	qli_holds_save(dirfd, &set);        atomic replace of HOLDS
 *	qli_audit_hold(...);                one event per change (audit.h)
 *	qli_maint_unlock(lk);
 *
 * Readers (list, show, the planner in another process) need no lock: HOLDS
 * is replaced by rename, so they see the old or the new set, never a mix.
 *
 * Errors follow querylog.h: 0 or a negative QL_E* code with the thread's
 * message naming the field, the value and the rule. */
#ifndef QL_HOLD_H
#define QL_HOLD_H

#include "querylog.h"

#include <stddef.h>
#include <stdint.h>

#define QLI_HOLDS_FILE "HOLDS"
#define QLI_MAINT_LOCK_FILE "MAINT.lock"
#define QLI_HOLDS_VERSION 1

#define QLI_HOLD_US_PER_DAY (86400LL * 1000000LL)
/* An open window end: the hold is prospective and pins every segment
 * written after from for as long as it is active. */
#define QLI_HOLD_OPEN INT64_MAX
/* Extension period when the order gives none: 30 days. */
#define QLI_HOLD_PERIOD_DEFAULT (30 * QLI_HOLD_US_PER_DAY)

#define QLI_ORDER_ID_MAX 128  /* bytes, printable ASCII */
#define QLI_WHO_MAX 128       /* bytes of placed_by / released_by, UTF-8 */
#define QLI_REASON_MAX 1024   /* bytes of reason, UTF-8 */
#define QLI_SUBJECT_MAX QL_HANDLE_MAX /* a canonical handle or ip/prefix */
#define QLI_SUBJECTS_MAX 1024 /* subjects per hold */

#define QLI_HOLD_ACTIVE 0
#define QLI_HOLD_RELEASED 1
#define QLI_HOLD_LAPSED 2

typedef struct qli_hold {
	char order_id[QLI_ORDER_ID_MAX + 1];
	/* Window [from, to], both inclusive, microseconds; to may be
	 * QLI_HOLD_OPEN. */
	int64_t from, to;
	int64_t expires;   /* stops pinning at this instant (exclusive) */
	int64_t period_us; /* what one "extend" adds to expires */
	char reason[QLI_REASON_MAX + 1];
	char placed_by[QLI_WHO_MAX + 1];
	int64_t placed_at;
	/* Canonical subjects: a handle as ql_handle_parse gives it, or
	 * "ADDR/PREFIX" (IPv4 "10.0.0.0/8", IPv6 "2001:db8::/32"; a single
	 * address gets /32 or /128). Recorded now; a hold pins whole
	 * segments whatever its subjects (narrow holds are later work).
	 * One allocation: the pointers, then the strings back to back, so
	 * what a HOLDS file makes the loader allocate is bounded by the
	 * file's size. */
	char **subjects;
	size_t nsubjects;
	int state;          /* QLI_HOLD_* */
	/* RELEASED: when and by whom. LAPSED: ended_at = expires (the
	 * moment it stopped pinning, not when the lapse was noticed),
	 * ended_by empty. ACTIVE: 0 and empty. */
	int64_t ended_at;
	char ended_by[QLI_WHO_MAX + 1];
} qli_hold;

/* Every hold ever placed in the store, in placement order. Pointers into
 * v are invalidated by qli_holds_place (it may grow the array). */
typedef struct qli_holdset {
	qli_hold *v;
	size_t n, cap;
} qli_holdset;

/* What an order asks for; the strings are the caller's. */
typedef struct qli_hold_spec {
	const char *order_id;
	int64_t from, to;     /* to = QLI_HOLD_OPEN for a prospective hold */
	int64_t expires;
	int64_t period_us;    /* 0 = QLI_HOLD_PERIOD_DEFAULT */
	const char *reason;
	const char *placed_by;
	const char *const *subjects; /* any form ql_handle_parse or
				      * ql_cidr_parse accepts */
	size_t nsubjects;
} qli_hold_spec;

/* ---------------------------------------------------------------------- */
/* Pure operations                                                         */
/* ---------------------------------------------------------------------- */

void qli_holds_init(qli_holdset *set);
/* Frees the holds' memory; the set is empty afterwards. NULL is fine. */
void qli_holds_free(qli_holdset *set);

/* The hold with this order ID (any state), or NULL. */
qli_hold *qli_holds_find(const qli_holdset *set, const char *order_id);

/* Checks an order ID: 1 to 128 bytes of printable ASCII (0x20-0x7e), no
 * leading or trailing space. QL_EINVAL naming field and the rule. */
int qli_order_id_check(const char *id, const char *field);

/* Length of the UTF-8 sequence at p (at most rem bytes): 1 for ASCII, 0
 * if it is not well formed (overlong, surrogate, beyond U+10FFFF, cut).
 * Shared by the hold text rules and the audit trail's JSON escaper. */
size_t qli_utf8_seq(const uint8_t *p, size_t rem);

/* Canonicalises one subject into out: a handle (anything with '@', or
 * starting with '+', "tel:" or "mailto:") through ql_handle_parse, else an
 * address or CIDR prefix through ql_cidr_parse, written "ADDR/PREFIX".
 * QL_EINVAL with the parser's message. */
int qli_hold_subject_parse(char out[QLI_SUBJECT_MAX + 1], const char *in);

/* Places a new hold at now. Rules, in this order, each QL_EINVAL unless
 * said: order ID as qli_order_id_check; the ID must not exist in the set
 * in any state (QL_EEXIST: IDs are never reused, so the audit trail of an
 * order is unambiguous; a renewed order needs a new ID); from <= to;
 * expires > now; period_us >= 0 (0 = 30 days); placed_by 1 to 128 and
 * reason 1 to 1024 bytes of UTF-8 without control characters; at most
 * 1024 subjects, each valid (duplicates after canonicalisation are kept
 * once). On success *out (if not NULL) points at the new hold inside the
 * set. QL_ENOMEM. Nothing changes on failure. */
int qli_holds_place(qli_holdset *set, const qli_hold_spec *spec, int64_t now,
		    qli_hold **out);

/* Extends an active hold: to new_expires, or, when new_expires is 0, by
 * its own period from its current expiry (so two extensions add two
 * periods, whenever they are made). Never shortens: a new expiry before
 * the current one, or equal to it, is QL_EINVAL. QL_ENOTFOUND for an
 * unknown ID. A released hold is QL_EINVAL. A hold whose expiry has passed
 * (recorded as lapsed or not) is QL_EINVAL and is not revived: it stopped
 * pinning at its expiry and data may already be gone; place a new order.
 * who is checked like placed_by (the audit event needs it; the hold keeps
 * only the latest expiry). *old_expires and *new_exp (if not NULL) get
 * the expiry before and after. */
int qli_holds_extend(qli_holdset *set, const char *order_id,
		     int64_t new_expires, int64_t now, const char *who,
		     int64_t *old_expires, int64_t *new_exp);

/* Releases an active hold now: its segments fall back to normal
 * retention. QL_ENOTFOUND, or QL_EINVAL when already released or lapsed
 * (the message says when and by whom). */
int qli_holds_release(qli_holdset *set, const char *order_id, int64_t now,
		      const char *who);

/* Marks every ACTIVE hold with expires <= now as LAPSED and calls fn (may
 * be NULL) once for each: a later call does not report it again, because
 * its state is recorded (persist with qli_holds_save). If fn returns
 * non-zero, the walk stops and that value is returned; holds marked so
 * far stay marked. Otherwise returns the number of holds that lapsed. */
int qli_holds_lapse(qli_holdset *set, int64_t now,
		    int (*fn)(const qli_hold *h, void *ctx), void *ctx);

/* 1 if the hold pins a segment whose records lie in [seg_lo, seg_hi) at
 * time now: ACTIVE, now < expires, and the window [from, to] overlaps
 * [seg_lo, seg_hi) (from < seg_hi and to >= seg_lo). Else 0. */
int qli_hold_covers(const qli_hold *h, int64_t seg_lo, int64_t seg_hi,
		    int64_t now);

/* The state as of now: ACTIVE turns LAPSED once now >= expires even if
 * not yet recorded. For list/show. */
int qli_hold_state_at(const qli_hold *h, int64_t now);
/* "active", "released", "lapsed". */
const char *qli_hold_state_name(int state);

/* ---------------------------------------------------------------------- */
/* Persistence (through the vfs)                                           */
/* ---------------------------------------------------------------------- */

/* Reads HOLDS in the store directory dirfd into *out (initialised here;
 * free with qli_holds_free, also after a failure). A missing file is an
 * empty set. A damaged file (bad magic, checksum, structure, or a record
 * that breaks the rules) is QL_ECORRUPT naming the file: never an empty
 * set, since holds are legal obligations. A newer format is QL_EVERSION.
 * QL_EIO, QL_ENOMEM. */
int qli_holds_load(int dirfd, qli_holdset *out);

/* Replaces HOLDS atomically (write HOLDS.tmp, fsync, rename, fsync the
 * directory) with mode 0600: after a crash the file is the old or the new
 * set. Call with the maint lock held. QL_EIO, QL_ENOSPC, QL_ENOMEM. */
int qli_holds_save(int dirfd, const qli_holdset *set);

/* ---------------------------------------------------------------------- */
/* The maintenance lock                                                    */
/* ---------------------------------------------------------------------- */

/* Takes the store's maintenance lock (an exclusive flock on MAINT.lock in
 * dirfd, created 0600 if missing), waiting as long as another holder has
 * it. Hold changes, retention sweeps and audits take it, so two of them
 * never interleave, in one process or many (flock belongs to the open
 * file, so two threads with their own qli_maint_lock also exclude each
 * other). It is separate from the writer's LOCK: logtool changes holds
 * while the server writes. *lockfd gets the descriptor to unlock. */
int qli_maint_lock(int dirfd, int *lockfd);
/* The same without waiting: QL_EBUSY when someone holds it ("two audits
 * never run at once"). */
int qli_maint_trylock(int dirfd, int *lockfd);
/* Releases the lock (closing the descriptor). A negative fd is ignored. */
void qli_maint_unlock(int lockfd);

#endif
