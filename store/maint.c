/* maint.c - retention, court-order holds and the audit trail, as the
 * public API: composes the pure planner (retention.c), the hold model and
 * its file (hold.c) and the audit trail (audit.c) with the store.
 *
 * Every change - a hold placed, extended or released, a segment expired -
 * runs under the store's maintenance lock (MAINT.lock), not the writer
 * lock, so `logtool hold` and `logtool expire` work from another process
 * while the server writes. The pattern: lock, load HOLDS, record lapses,
 * change, save, audit, unlock.
 *
 * Expiry of one segment, crash-safe (plan, mark, unlink, forget):
 *   1. audit "segment_expired" (durable before anything is removed: the
 *      trail never misses a deletion; after a crash before step 2 the next
 *      sweep records it again, so an event may repeat, never be missing);
 *   2. rename seg/X.qls -> seg/X.qls.del, fsync seg/ (the decision is on
 *      disk: readers stop seeing the segment, a restart finishes it);
 *   3. drop the segment's index entries;
 *   4. unlink X.qls.del, fsync seg/.
 * A reader that opened the file before step 2 keeps reading it (the
 * descriptor holds the data); one that comes later does not list it. */
#define _GNU_SOURCE
#include "audit.h"
#include "err.h"
#include "hold.h"
#include "retention.h"
#include "store_int.h"
#include "vfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEL_SUFFIX ".del"

static const char *who_or(const char *who)
{
	return who && *who ? who : "querylog";
}

/* ---- holds ---- */

/* Replaces HOLDS; a failure names the store, since HOLDS's own messages
 * ("fsync directory of HOLDS") cannot say which store's directory. */
static int holds_save(ql_store *s, const qli_holdset *set)
{
	int rc = qli_holds_save(s->dirfd, set);

	if (rc)
		qli_err_prefix("store %s: ", s->path);
	return rc;
}

typedef struct lapse_ctx {
	ql_store *s;
	qli_audit *a;
	int64_t now;
	int rc;
} lapse_ctx;

static int audit_lapse(const qli_hold *h, void *p)
{
	lapse_ctx *l = p;

	l->rc = qli_audit_hold(l->a, l->now, QLI_AEV_HOLD_LAPSED, "querylog",
			       h, h->expires, h->expires);
	return l->rc;
}

/* Locks, loads HOLDS and, with record_lapses, marks holds whose expiry
 * passed as lapsed, audits each once and saves. A read-only pass (a dry
 * run) records nothing: the planner treats a hold past its expiry as
 * lapsed anyway. On success the caller owns *lockfd, *set and *a. */
static int hold_begin(ql_store *s, int64_t now, int *lockfd,
		      qli_holdset *set, qli_audit **a, int record_lapses)
{
	lapse_ctx l = { s, NULL, now, 0 };
	int rc, n;

	qli_holds_init(set);
	*a = NULL;
	rc = qli_maint_lock(s->dirfd, lockfd);
	if (rc)
		return rc;
	rc = qli_holds_load(s->dirfd, set);
	if (!rc)
		rc = qli_audit_open(a, s->dirfd, s->opt.file_mode,
				    s->opt.dir_mode);
	if (rc)
		goto fail;
	l.a = *a;
	if (!record_lapses)
		return 0;
	n = qli_holds_lapse(set, now, audit_lapse, &l);
	if (n < 0 || l.rc) {
		rc = n < 0 ? n : l.rc;
		goto fail;
	}
	if (n > 0 && (rc = holds_save(s, set)))
		goto fail;
	return 0;
fail:
	qli_audit_close(*a);
	*a = NULL;
	qli_holds_free(set);
	qli_maint_unlock(*lockfd);
	return rc;
}

/* Saves a hold change whose audit event is prepared (qli_audit_prepare),
 * then writes the event: saved first, then audited, so a crash (or an I/O
 * error) between leaves a hold whose change the trail lacks, never a
 * recorded change that is not in force (the safer side for a legal
 * obligation); and everything that can fail for want of memory happened
 * before the save, so that a change that failed for it is not in
 * force. */
static int save_audited(ql_store *s, qli_holdset *set, qli_audit *a)
{
	int rc = holds_save(s, set);

	if (rc) {
		qli_audit_abort(a);
		return rc;
	}
	return qli_audit_commit(a);
}

static void hold_end(int lockfd, qli_holdset *set, qli_audit *a)
{
	qli_audit_close(a);
	qli_holds_free(set);
	qli_maint_unlock(lockfd);
}

int ql_hold_place(ql_store *s, const ql_hold *h)
{
	int64_t now;
	qli_holdset set;
	qli_hold *placed;
	qli_audit *a;
	qli_hold_spec spec;
	int lockfd, rc;

	if (!s || !h)
		return qli_err(QL_EINVAL, "ql_hold_place: NULL argument");
	if (h->version != QL_HOLD_VERSION)
		return qli_err(QL_EINVAL, "hold version %u (expected %u): "
			       "declare with QL_HOLD_INIT", h->version,
			       QL_HOLD_VERSION);
	now = qli_now(s);
	spec = (qli_hold_spec){
		.order_id = h->order_id,
		.from = h->from,
		.to = h->to,
		.expires = h->expires,
		.period_us = h->period_us,
		.reason = h->reason,
		.placed_by = h->placed_by,
		.subjects = h->subjects,
		.nsubjects = h->nsubjects,
	};
	rc = hold_begin(s, now, &lockfd, &set, &a, 1);
	if (rc)
		return rc;
	rc = qli_holds_place(&set, &spec, now, &placed);
	if (!rc)
		rc = qli_audit_hold_prepare(a, now, QLI_AEV_HOLD_PLACED,
					    h->placed_by, placed, 0,
					    placed->expires);
	if (!rc)
		rc = save_audited(s, &set, a);
	hold_end(lockfd, &set, a);
	return rc;
}

int ql_hold_extend(ql_store *s, const char *order_id, int64_t new_expires,
		   const char *who)
{
	int64_t now, old_exp = 0, new_exp = 0;
	qli_holdset set;
	qli_audit *a;
	int lockfd, rc;

	if (!s)
		return qli_err(QL_EINVAL, "ql_hold_extend: store is NULL");
	now = qli_now(s);
	rc = hold_begin(s, now, &lockfd, &set, &a, 1);
	if (rc)
		return rc;
	rc = qli_holds_extend(&set, order_id, new_expires, now, who_or(who),
			      &old_exp, &new_exp);
	if (!rc)
		rc = qli_audit_hold_prepare(a, now, QLI_AEV_HOLD_EXTENDED,
					    who_or(who),
					    qli_holds_find(&set, order_id),
					    old_exp, new_exp);
	if (!rc)
		rc = save_audited(s, &set, a);
	hold_end(lockfd, &set, a);
	return rc;
}

int ql_hold_release(ql_store *s, const char *order_id, const char *who)
{
	qli_holdset set;
	qli_audit *a;
	qli_hold *h;
	int64_t now;
	int lockfd, rc;

	if (!s)
		return qli_err(QL_EINVAL, "ql_hold_release: store is NULL");
	now = qli_now(s);
	rc = hold_begin(s, now, &lockfd, &set, &a, 1);
	if (rc)
		return rc;
	rc = qli_holds_release(&set, order_id, now, who_or(who));
	if (!rc && !(h = qli_holds_find(&set, order_id)))
		rc = qli_err(QL_ENOTFOUND, "hold %s: gone after its release",
			     order_id);
	if (!rc)
		rc = qli_audit_hold_prepare(a, now, QLI_AEV_HOLD_RELEASED,
					    who_or(who), h, h->expires,
					    h->expires);
	if (!rc)
		rc = save_audited(s, &set, a);
	hold_end(lockfd, &set, a);
	return rc;
}

int ql_hold_list(ql_store *s, int (*fn)(const ql_hold *h, void *ctx),
		 void *ctx)
{
	qli_holdset set;
	int64_t now;
	int rc;

	if (!s || !fn)
		return qli_err(QL_EINVAL, "ql_hold_list: NULL argument");
	now = qli_now(s);
	/* HOLDS is replaced atomically: reading needs no lock */
	qli_holds_init(&set);
	rc = qli_holds_load(s->dirfd, &set);
	for (size_t i = 0; !rc && i < set.n; i++) {
		const qli_hold *q = &set.v[i];
		const char *subj[QLI_SUBJECTS_MAX];
		ql_hold h = QL_HOLD_INIT;

		for (size_t k = 0; k < q->nsubjects; k++)
			subj[k] = q->subjects[k];
		h.order_id = q->order_id;
		h.from = q->from;
		h.to = q->to;
		h.expires = q->expires;
		h.period_us = q->period_us;
		h.reason = q->reason;
		h.placed_by = q->placed_by;
		h.subjects = subj;
		h.nsubjects = q->nsubjects;
		/* a hold past its expiry is lapsed even before a sweep has
		 * recorded it */
		h.state = qli_hold_state_at(q, now);
		h.placed_at = q->placed_at;
		h.ended_at = h.state == QL_HOLD_LAPSED ? q->expires
						       : q->ended_at;
		h.ended_by = q->ended_by;
		rc = fn(&h, ctx);
	}
	qli_holds_free(&set);
	return rc;
}

/* ---- reads: which segments are visible ---- */

int qli_visible_begin(ql_store *s, qli_holdset *set)
{
	qli_holds_init(set);
	return qli_holds_load(s->dirfd, set);
}

int qli_visible(ql_store *s, const qli_holdset *set, int64_t bucket_start,
		int64_t now)
{
	qli_seg_desc d = { .bucket_start = bucket_start,
			   .bucket_end = bucket_start +
					 s->opt.bucket_width_us };

	return qli_retention_visible(&d, set, now, s->opt.retention_us);
}

/* ---- expiry ---- */

/* Finishes deletions a crash interrupted: every X.qls.del. */
typedef struct del_ctx {
	ql_store *s;
	qli_index *ix;
	int rc, n;
} del_ctx;

static int finish_one(const char *name, void *p)
{
	del_ctx *d = p;
	size_t n = strlen(name), k = strlen(DEL_SUFFIX);
	char seg[QLI_SEG_NAME_MAX];
	int64_t start;
	uint32_t gen;

	if (n <= k || strcmp(name + n - k, DEL_SUFFIX) ||
	    n - k >= sizeof(seg))
		return 0;
	memcpy(seg, name, n - k);
	seg[n - k] = '\0';
	if (d->ix && !qli_seg_name_parse(seg, &start, &gen) &&
	    (d->rc = qli_index_drop(d->ix, start, gen)))
		return d->rc;
	if (qli_vfs_cur->unlinkat(d->s->segdir, name, 0) && errno != ENOENT) {
		d->rc = qli_errno(errno, "unlink", name);
		return d->rc;
	}
	d->n++;
	return 0;
}

static int finish_deletes(ql_store *s, qli_index *ix)
{
	del_ctx d = { s, ix, 0, 0 };
	int rc = qli_vfs_cur->listdir(s->segdir, finish_one, &d);

	if (rc && !d.rc)
		return qli_errno(errno, "list", QLI_SEG_DIR);
	if (!d.rc && ix)
		d.rc = qli_index_commit(ix);
	if (!d.rc && d.n)
		d.rc = qli_sync_dir(s->segdir, QLI_SEG_DIR);
	return d.rc;
}

static int describe(ql_store *s, const qli_seglist *l, qli_seg_desc *descs,
		    int *sealed)
{
	for (size_t i = 0; i < l->n; i++) {
		qli_segfile sf;
		int rc = qli_segfile_load(&sf, s->segdir, l->names[i], 0);

		memset(&descs[i], 0, sizeof(descs[i]));
		snprintf(descs[i].name, sizeof(descs[i].name), "%s",
			 l->names[i]);
		descs[i].bucket_start = l->start[i];
		descs[i].bucket_end = l->start[i] + s->opt.bucket_width_us;
		descs[i].generation = l->gen[i];
		sealed[i] = 0;
		if (rc && sf.torn_create) {
			/* being created by the writer right now (or a crash
			 * leftover its next open removes): no record in it,
			 * nothing to decide */
			sealed[i] = -1;
			qli_clear_err();
			continue;
		}
		if (rc == QL_ENOTFOUND)
			continue;
		if (rc)
			return rc;
		descs[i].records = sf.nrec;
		descs[i].bytes = sf.file_size;
		sealed[i] = sf.sealed;
		qli_segfile_close(&sf);
	}
	return 0;
}

static int expire_one(ql_store *s, qli_index *ix, qli_audit *a,
		      const char *who, int64_t now, const qli_seg_desc *d,
		      const qli_ret_decision *dec)
{
	char del[QLI_SEG_NAME_MAX + 8];
	int rc;

	rc = qli_audit_segment_expired(a, now, who, d, dec,
				       s->opt.retention_us);
	if (rc)
		return rc;
	snprintf(del, sizeof(del), "%s%s", d->name, DEL_SUFFIX);
	if (qli_vfs_cur->renameat(s->segdir, d->name, s->segdir, del))
		return qli_errno(errno, "rename for deletion", d->name);
	rc = qli_sync_dir(s->segdir, QLI_SEG_DIR);
	if (!rc && ix)
		rc = qli_index_drop(ix, d->bucket_start, d->generation);
	if (!rc && ix)
		rc = qli_index_commit(ix);
	if (!rc && qli_vfs_cur->unlinkat(s->segdir, del, 0))
		rc = qli_errno(errno, "unlink", del);
	if (!rc)
		rc = qli_sync_dir(s->segdir, QLI_SEG_DIR);
	return rc;
}

static void held_by(char *out, size_t len, const qli_ret_decision *dec)
{
	size_t k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < dec->nrefs && k + 1 < len; i++) {
		int n = snprintf(out + k, len - k, "%s%s", k ? "," : "",
				 dec->refs[i].hold->order_id);

		if (n < 0)
			break;
		k += (size_t)n;
	}
}

int ql_expire(ql_store *s, int dry_run, const char *who,
	      int (*fn)(const ql_expiry *e, void *ctx), void *ctx)
{
	qli_seg_desc *descs = NULL;
	qli_ret_plan plan = { 0 };
	qli_index *ix = NULL;
	qli_holdset set;
	qli_seglist l = { 0 };
	qli_audit *a;
	char holders[1024];
	int *sealed = NULL, lockfd, rc;
	int64_t now;

	if (!s)
		return qli_err(QL_EINVAL, "ql_expire: store is NULL");
	who = who_or(who);
	/* the writer seals what is due first, so what it deletes is
	 * normally sealed */
	if (!s->readonly && (rc = ql_maintain(s)))
		return rc;
	now = qli_now(s);
	rc = hold_begin(s, now, &lockfd, &set, &a, !dry_run);
	if (rc)
		return rc;
	if (!dry_run) {
		/* a separate handle: the writer thread's transaction is its
		 * own; LMDB serialises the two writers */
		if (qli_index_open(&ix, s->dirfd, s->path, 1, s->opt.dir_mode,
				   s->opt.file_mode))
			ix = NULL; /* orphans are dropped at the next open */
		rc = finish_deletes(s, ix);
	}
	if (!rc)
		rc = qli_seglist_read(s->segdir, &l);
	for (size_t i = 0; !rc && !dry_run && i < l.nshadow; i++)
		/* a .qls whose compact .qlc exists: a crash interrupted the
		 * swap (which runs under this lock); finish it */
		if (qli_vfs_cur->unlinkat(s->segdir, l.shadow[i], 0) &&
		    errno != ENOENT)
			rc = qli_errno(errno, "unlink", l.shadow[i]);
	if (!rc && l.n) {
		descs = calloc(l.n, sizeof(*descs));
		sealed = calloc(l.n, sizeof(*sealed));
		rc = descs && sealed ? describe(s, &l, descs, sealed)
				     : qli_err(QL_ENOMEM, "out of memory");
	}
	if (!rc)
		rc = qli_retention_plan(&plan, descs, l.n, &set, now,
					s->opt.retention_us);
	for (size_t i = 0; !rc && i < l.n; i++) {
		const qli_ret_decision *dec = &plan.d[i];
		ql_expiry e;

		if (sealed[i] < 0)
			continue;
		memset(&e, 0, sizeof(e));
		snprintf(e.name, sizeof(e.name), "%s/%.58s", QLI_SEG_DIR,
			 descs[i].name);
		e.bucket_start = descs[i].bucket_start;
		e.bucket_end = descs[i].bucket_end;
		e.generation = descs[i].generation;
		e.records = descs[i].records;
		e.bytes = descs[i].bytes;
		e.due_at = dec->due_at;
		e.action = dec->action == QLI_RET_EXPIRE ? QL_EXPIRE_DELETE
			   : dec->action == QLI_RET_KEEP_HELD ? QL_EXPIRE_HELD
							      : QL_EXPIRE_YOUNG;
		/* (an unsealed segment that is due is deleted too: records
		 * that old are refused on append, so no writer can still be
		 * adding to it; left alone it would outlive its retention) */
		if (e.action == QL_EXPIRE_HELD) {
			held_by(holders, sizeof(holders), dec);
			e.held_by = holders;
		}
		if (e.action == QL_EXPIRE_DELETE && !dry_run)
			rc = expire_one(s, ix, a, who, now, &descs[i], dec);
		if (!rc && fn)
			rc = fn(&e, ctx);
	}
	if (!rc && !dry_run && s->opt.audit_retention_us > 0) {
		rc = qli_audit_expire(s->dirfd, now, s->opt.audit_retention_us,
				      NULL, NULL);
		if (rc > 0)
			rc = 0; /* that many month files removed: success */
	}
	qli_ret_plan_free(&plan);
	qli_index_close(ix);
	free(descs);
	free(sealed);
	qli_seglist_free(&l);
	hold_end(lockfd, &set, a);
	return rc;
}

/* ---- audit ---- */

typedef struct read_ctx {
	int (*fn)(const char *json, size_t len, void *ctx);
	void *ctx;
} read_ctx;

static int read_one(const char *json, size_t len, int64_t ts, void *p)
{
	read_ctx *r = p;

	(void)ts;
	return r->fn(json, len, r->ctx);
}

int ql_audit_read(ql_store *s, int64_t since, const char *order_id,
		  int (*fn)(const char *json, size_t len, void *ctx),
		  void *ctx)
{
	read_ctx r = { fn, ctx };

	if (!s || !fn)
		return qli_err(QL_EINVAL, "ql_audit_read: NULL argument");
	return qli_audit_read(s->dirfd, since ? since : INT64_MIN, order_id,
			      read_one, &r);
}

int ql_audit_query(ql_store *s, const char *who, const char *order_id,
		   const char *query)
{
	qli_audit *a;
	int rc;

	if (!s || !query)
		return qli_err(QL_EINVAL, "ql_audit_query: NULL argument");
	rc = qli_audit_open(&a, s->dirfd, s->opt.file_mode, s->opt.dir_mode);
	if (rc)
		return rc;
	rc = qli_audit_query(a, qli_now(s), who_or(who), order_id, query);
	qli_audit_close(a);
	return rc;
}

int qli_audit_sealed(ql_store *s, const qli_segfile *sf)
{
	qli_audit *a;
	int rc;

	rc = qli_audit_open(&a, s->dirfd, s->opt.file_mode, s->opt.dir_mode);
	if (rc)
		return rc;
	rc = qli_audit_segment_sealed(a, qli_now(s), "querylog", sf->name,
				      sf->nrec, sf->file_size,
				      sf->seal_checksum);
	qli_audit_close(a);
	return rc;
}
