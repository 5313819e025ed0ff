/* retention.c - the retention planner (see retention.h for the rule, the
 * lifetime guarantee and clock jumps). Pure: it allocates the plan and
 * does nothing else. */
#include "retention.h"

#include "err.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char *qli_ret_action_name(int action)
{
	switch (action) {
	case QLI_RET_KEEP_YOUNG: return "keep-young";
	case QLI_RET_KEEP_HELD: return "keep-held";
	case QLI_RET_EXPIRE: return "expire";
	default: return "unknown";
	}
}

const char *qli_ret_why_name(int why)
{
	switch (why) {
	case QLI_WHY_PINS: return "pins";
	case QLI_WHY_WINDOW: return "window";
	case QLI_WHY_RELEASED: return "released";
	case QLI_WHY_LAPSED: return "lapsed";
	default: return "unknown";
	}
}

/* now - r, or INT64_MIN when that would underflow (nothing is due). */
static int64_t cutoff(int64_t now, int64_t r)
{
	return now < INT64_MIN + r ? INT64_MIN : now - r;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

int qli_retention_due(const qli_seg_desc *seg, int64_t now,
		      int64_t retention_us)
{
	int64_t c = cutoff(now, retention_us);

	/* With the saturated cutoff INT64_MIN only a degenerate range could
	 * compare due; the planner refuses those. */
	return c != INT64_MIN && seg->bucket_end <= c;
}

static int held(const qli_seg_desc *seg, const qli_holdset *holds,
		int64_t now)
{
	for (size_t i = 0; i < holds->n; i++)
		if (qli_hold_covers(&holds->v[i], seg->bucket_start,
				    seg->bucket_end, now))
			return 1;
	return 0;
}

int qli_retention_visible(const qli_seg_desc *seg, const qli_holdset *holds,
			  int64_t now, int64_t retention_us)
{
	if (!qli_retention_due(seg, now, retention_us))
		return 1;
	return holds && held(seg, holds, now);
}

/* How a hold relates to a segment, or -1 if it is not worth listing. */
static int why_of(const qli_hold *h, const qli_seg_desc *seg, int64_t now)
{
	int overlap = h->from < seg->bucket_end && h->to >= seg->bucket_start;
	int state = qli_hold_state_at(h, now);

	if (state == QLI_HOLD_ACTIVE)
		return overlap ? QLI_WHY_PINS : QLI_WHY_WINDOW;
	if (!overlap)
		return -1;
	return state == QLI_HOLD_RELEASED ? QLI_WHY_RELEASED : QLI_WHY_LAPSED;
}

static int pool_add(qli_ret_plan *p, size_t *cap, const qli_hold *h, int why)
{
	if (p->npool == *cap) {
		size_t nc = *cap ? 2 * *cap : 64;
		qli_ret_ref *np = realloc(p->pool, nc * sizeof(*np));

		if (!np)
			return qli_err(QL_ENOMEM, "out of memory planning "
				       "retention");
		p->pool = np;
		*cap = nc;
	}
	p->pool[p->npool].hold = h;
	p->pool[p->npool].why = why;
	p->npool++;
	return 0;
}

/* Decides one due segment; its refs are appended to the pool and their
 * position kept in d->nrefs / start (refs is fixed up at the end, since
 * the pool may still move). */
static int decide_due(qli_ret_plan *p, size_t *cap, qli_ret_decision *d,
		      const qli_seg_desc *seg, const qli_holdset *holds,
		      int64_t now)
{
	int pinned = holds && held(seg, holds, now);
	size_t i;
	int rc;

	d->action = pinned ? QLI_RET_KEEP_HELD : QLI_RET_EXPIRE;
	for (i = 0; holds && i < holds->n; i++) {
		int why = why_of(&holds->v[i], seg, now);

		if (why < 0 || (pinned && why != QLI_WHY_PINS))
			continue;
		rc = pool_add(p, cap, &holds->v[i], why);
		if (rc)
			return rc;
		d->nrefs++;
	}
	return 0;
}

int qli_retention_plan(qli_ret_plan *out, const qli_seg_desc *segs, size_t n,
		       const qli_holdset *holds, int64_t now,
		       int64_t retention_us)
{
	size_t cap = 0, *start = NULL, i;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (retention_us <= 0)
		return qli_err(QL_EINVAL, "retention %" PRId64 " us: must be "
			       "positive", retention_us);
	for (i = 0; i < n; i++)
		if (segs[i].bucket_end <= segs[i].bucket_start)
			return qli_err(QL_EINVAL, "segment %s: bucket end %"
				       PRId64 " not after its start %" PRId64,
				       segs[i].name, segs[i].bucket_end,
				       segs[i].bucket_start);
	if (!n)
		return 0;
	out->d = calloc(n, sizeof(*out->d));
	start = calloc(n, sizeof(*start));
	if (!out->d || !start) {
		rc = qli_err(QL_ENOMEM, "out of memory planning retention");
		goto out_free;
	}
	out->n = n;
	for (i = 0; i < n && !rc; i++) {
		qli_ret_decision *d = &out->d[i];

		d->due_at = sat_add(segs[i].bucket_end, retention_us);
		start[i] = out->npool;
		if (!qli_retention_due(&segs[i], now, retention_us)) {
			d->action = QLI_RET_KEEP_YOUNG;
			out->n_young++;
			continue;
		}
		rc = decide_due(out, &cap, d, &segs[i], holds, now);
		if (d->action == QLI_RET_KEEP_HELD)
			out->n_held++;
		else
			out->n_expire++;
	}
	for (i = 0; i < n && !rc; i++)
		out->d[i].refs = out->d[i].nrefs ? out->pool + start[i] : NULL;
out_free:
	free(start);
	if (rc)
		qli_ret_plan_free(out);
	return rc;
}

void qli_ret_plan_free(qli_ret_plan *p)
{
	if (!p)
		return;
	free(p->d);
	free(p->pool);
	memset(p, 0, sizeof(*p));
}
