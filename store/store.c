/* store.c - opening a store, the write path, group commit, sealing.
 *
 * Threads. Appending threads validate their records without any lock,
 * then copy them into the memtable of their time bucket under the store
 * mutex; a full memtable is frozen onto the write queue. One writer
 * thread owns every segment file: it appends the frozen memtables' blocks
 * in queue order, fsyncs for ql_sync() (one fsync per file for every
 * caller waiting: group commit), then stages the index summaries of what
 * it wrote and seals buckets when their time is over. Encoding a frozen
 * memtable into a block (sorting, interning, zstd: the heaviest step) is
 * done by whichever thread claims it first: a thread waiting for a sync
 * (ql_sync, or ql_append under QL_SYNC_EVERY_APPEND) while it waits, an
 * appending thread when the writer is behind, else the writer. Appenders
 * therefore never wait on the disk unless more than max_pending_bytes are
 * waiting to be written (back-pressure) or they asked for durability.
 *
 * Durability. A record is durable once the writer has written the block
 * holding it, fdatasync'd that segment file, and fsync'd the seg directory
 * if the file is new; only then does durable_seq move past it. Whoever
 * encoded the block, only the writer writes and syncs it, and nothing is
 * acknowledged before its sync. */
#define _GNU_SOURCE
#include "store_int.h"

#include "err.h"
#include "vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_SIZE (64 * 1024)

struct qli_chunk {
	struct qli_chunk *next;
	size_t used;
	char data[CHUNK_SIZE];
};

/* ql_append's scratch space (canon entries and handle bytes). */
#define SCRATCH_KEEP (4u << 20) /* larger ones are not kept */
struct qli_scratch {
	size_t cap;
	max_align_t data[];
};

/* ---------------------------------------------------------------------- */
/* clock and options                                                       */
/* ---------------------------------------------------------------------- */

static int64_t real_clock(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * QLI_US_PER_S + ts.tv_nsec / 1000;
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * QLI_US_PER_S + ts.tv_nsec / 1000;
}

int64_t qli_now(const ql_store *s)
{
	return s->opt.clock(s->opt.clock_ctx);
}

int64_t ql_now(const ql_store *s)
{
	return s ? qli_now(s) : real_clock(NULL);
}

static int check_width(int64_t w)
{
	const int64_t min = 60 * QLI_US_PER_S;

	if (w >= QLI_US_PER_DAY)
		return (w % QLI_US_PER_DAY == 0 && w <= 7 * QLI_US_PER_DAY)
			       ? 0 : -1;
	return (w > 0 && w % min == 0 && QLI_US_PER_DAY % w == 0) ? 0 : -1;
}

static int resolve_options(ql_options *o, const ql_options *in)
{
	if (in && in->version != QL_OPTIONS_VERSION)
		return qli_err(QL_EINVAL, "options version %u (expected %u): "
			       "declare with QL_OPTIONS_INIT", in->version,
			       QL_OPTIONS_VERSION);
	if (in)
		*o = *in;
	else
		*o = (ql_options)QL_OPTIONS_INIT;
	if (o->bucket_width_us && check_width(o->bucket_width_us))
		return qli_err(QL_EINVAL, "bucket_width_us %lld: must be whole "
			       "minutes dividing a day, or 1 to 7 whole days",
			       (long long)o->bucket_width_us);
	if (!o->audit_retention_us)
		o->audit_retention_us = 730 * QLI_US_PER_DAY;
	if (!o->retention_us)
		o->retention_us = 30 * QLI_US_PER_DAY;
	if (o->retention_us < 0)
		return qli_err(QL_EINVAL, "retention_us %lld: must be positive",
			       (long long)o->retention_us);
	if (!o->max_future_skew_us)
		o->max_future_skew_us = 5 * 60 * QLI_US_PER_S;
	if (o->max_future_skew_us < 0)
		return qli_err(QL_EINVAL, "max_future_skew_us %lld: must be "
			       "positive", (long long)o->max_future_skew_us);
	if (!o->seal_grace_us)
		o->seal_grace_us = 10 * 60 * QLI_US_PER_S;
	if (o->seal_grace_us < 0)
		return qli_err(QL_EINVAL, "seal_grace_us %lld: must be "
			       "positive", (long long)o->seal_grace_us);
	if (o->sync_mode != QL_SYNC_MANUAL &&
	    o->sync_mode != QL_SYNC_EVERY_APPEND)
		return qli_err(QL_EINVAL, "sync_mode %d: must be QL_SYNC_MANUAL"
			       " or QL_SYNC_EVERY_APPEND", o->sync_mode);
	if (!o->block_records)
		o->block_records = 4096;
	if (o->block_records < 16 || o->block_records > QLI_MAX_BLOCK_RECORDS)
		return qli_err(QL_EINVAL, "block_records %u: must be 16 to "
			       "65536", o->block_records);
	if (!o->compression_level)
		o->compression_level = 3;
	if (o->compression_level < 1 || o->compression_level > 19)
		return qli_err(QL_EINVAL, "compression_level %d: must be 1 to "
			       "19", o->compression_level);
	if (!o->max_pending_bytes)
		o->max_pending_bytes = 64u << 20;
	if (!o->maintenance_interval_ms)
		o->maintenance_interval_ms = 1000;
	if (!o->clock)
		o->clock = real_clock;
	if (!o->file_mode)
		o->file_mode = 0600;
	if (!o->dir_mode)
		o->dir_mode = 0700;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the store's meta file                                                   */
/* ---------------------------------------------------------------------- */

/* QLSTORE is a few lines of text so an operator can read it:
 *   querylog-store 1
 *   bucket_width_us 86400000000
 */
static int meta_write(ql_store *s)
{
	char buf[160];
	int n = snprintf(buf, sizeof(buf), "querylog-store 1\n"
			 "bucket_width_us %lld\nretention_us %lld\n",
			 (long long)s->opt.bucket_width_us,
			 (long long)s->opt.retention_us);

	return qli_write_atomic(s->dirfd, QLI_META_FILE, buf, (size_t)n,
				s->opt.file_mode, s->path);
}

int qli_meta_parse(const char *text, size_t len, const char *path,
		   int64_t *width, int64_t *retention)
{
	char buf[QLI_META_MAX + 1] = { 0 };
	long long w = 0, r = 0;
	int version = 0;

	memcpy(buf, text, len < QLI_META_MAX ? len : QLI_META_MAX);
	if (sscanf(buf, "querylog-store %d\nbucket_width_us %lld\n"
		   "retention_us %lld", &version, &w, &r) < 2)
		return qli_err(QL_ECORRUPT, "%s/%s: not a querylog store file",
			       path, QLI_META_FILE);
	if (version != 1)
		return qli_err(QL_EVERSION, "%s: store format %d (this build "
			       "reads 1)", path, version);
	if (check_width(w))
		return qli_err(QL_ECORRUPT, "%s/%s: bucket width %lld", path,
			       QLI_META_FILE, w);
	*width = w;
	*retention = r;
	return 0;
}

static int meta_read(ql_store *s)
{
	char buf[QLI_META_MAX];
	int64_t w, r;
	int fd, rc;
	ssize_t n;

	fd = qli_vfs_cur->openat(s->dirfd, QLI_META_FILE, O_RDONLY, 0);
	if (fd < 0)
		return qli_errno(errno, "open", QLI_META_FILE);
	n = qli_vfs_cur->pread(fd, buf, sizeof(buf), 0);
	rc = n < 0 ? qli_errno(errno, "read", QLI_META_FILE) : 0;
	qli_vfs_cur->close(fd);
	if (!rc)
		rc = qli_meta_parse(buf, (size_t)n, s->path, &w, &r);
	if (rc)
		return rc;
	if (s->opt.bucket_width_us && s->opt.bucket_width_us != w)
		return qli_err(QL_EINVAL, "bucket_width_us %lld: the store at "
			       "%s was created with %lld, which is fixed",
			       (long long)s->opt.bucket_width_us, s->path,
			       (long long)w);
	s->opt.bucket_width_us = w;
	/* The retention period is the store's: readers apply what the
	 * writer set, and a writer that sets a new one records it. */
	if (!s->retention_given && r > 0)
		s->opt.retention_us = r;
	else if (s->retention_given && r != s->opt.retention_us &&
		 !s->readonly)
		return meta_write(s);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* segment listing                                                         */
/* ---------------------------------------------------------------------- */

static int seglist_add(const char *name, void *ctx)
{
	qli_seglist *l = ctx;
	int64_t start;
	uint32_t gen;

	if (qli_seg_name_parse(name, &start, &gen))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		void *a = realloc(l->names, cap * sizeof(*l->names));
		void *b = a ? realloc(l->start, cap * sizeof(*l->start)) : NULL;
		void *c = b ? realloc(l->gen, cap * sizeof(*l->gen)) : NULL;

		if (a)
			l->names = a;
		if (b)
			l->start = b;
		if (!c)
			return -2;
		l->gen = c;
		l->cap = cap;
	}
	snprintf(l->names[l->n], QLI_SEG_NAME_MAX, "%s", name);
	l->start[l->n] = start;
	l->gen[l->n] = gen;
	l->n++;
	return 0;
}

static void seglist_sort(qli_seglist *l)
{
	/* insertion sort: a few hundred names at most, mostly in order */
	for (size_t i = 1; i < l->n; i++) {
		for (size_t j = i; j > 0; j--) {
			char tn[QLI_SEG_NAME_MAX];
			int64_t ts;
			uint32_t tg;

			if (l->start[j - 1] < l->start[j] ||
			    (l->start[j - 1] == l->start[j] &&
			     l->gen[j - 1] <= l->gen[j]))
				break;
			memcpy(tn, l->names[j], sizeof(tn));
			memcpy(l->names[j], l->names[j - 1], sizeof(tn));
			memcpy(l->names[j - 1], tn, sizeof(tn));
			ts = l->start[j];
			l->start[j] = l->start[j - 1];
			l->start[j - 1] = ts;
			tg = l->gen[j];
			l->gen[j] = l->gen[j - 1];
			l->gen[j - 1] = tg;
		}
	}
}

int qli_seglist_read(int segdir, qli_seglist *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = qli_vfs_cur->listdir(segdir, seglist_add, out);
	if (rc == -2) {
		qli_seglist_free(out);
		return qli_err(QL_ENOMEM, "out of memory listing segments");
	}
	if (rc) {
		qli_seglist_free(out);
		return qli_errno(errno, "list", QLI_SEG_DIR);
	}
	seglist_sort(out);
	/* X-gN.qls and X-gN.qlc both exist only after a crash in the middle
	 * of a compaction's swap: the .qlc is complete (synced before it got
	 * its name), the .qls is the superseded copy */
	size_t k = 0;

	for (size_t i = 0; i < out->n; i++) {
		if (k && out->start[k - 1] == out->start[i] &&
		    out->gen[k - 1] == out->gen[i]) {
			size_t len = strlen(out->names[i]);
			size_t keep = !strcmp(out->names[i] + len - 4, ".qlc")
					      ? i : k - 1;
			size_t drop = keep == i ? k - 1 : i;

			if (out->nshadow < sizeof(out->shadow) /
						   sizeof(out->shadow[0]))
				memcpy(out->shadow[out->nshadow++],
				       out->names[drop], QLI_SEG_NAME_MAX);
			if (keep == i)
				memcpy(out->names[k - 1], out->names[i],
				       QLI_SEG_NAME_MAX);
			continue;
		}
		if (k != i) {
			memcpy(out->names[k], out->names[i], QLI_SEG_NAME_MAX);
			out->start[k] = out->start[i];
			out->gen[k] = out->gen[i];
		}
		k++;
	}
	out->n = k;
	return 0;
}

void qli_seglist_free(qli_seglist *l)
{
	free(l->names);
	free(l->start);
	free(l->gen);
	memset(l, 0, sizeof(*l));
}

/* ---------------------------------------------------------------------- */
/* buckets and memtables                                                   */
/* ---------------------------------------------------------------------- */

static int64_t bucket_of(const ql_store *s, int64_t ts)
{
	int64_t w = s->opt.bucket_width_us, q = ts / w;

	if (ts % w < 0)
		q--;
	return q * w;
}

static qli_bucket *bucket_find(ql_store *s, int64_t start, int create)
{
	qli_bucket *b;

	if (s->last_bucket && s->last_bucket->start == start)
		return s->last_bucket;
	for (size_t i = 0; i < s->nbuckets; i++)
		if (s->buckets[i]->start == start)
			return s->last_bucket = s->buckets[i];
	if (!create)
		return NULL;
	if (s->nbuckets == s->capbuckets) {
		size_t cap = s->capbuckets ? 2 * s->capbuckets : 16;
		qli_bucket **nb = realloc(s->buckets, cap * sizeof(*nb));

		if (!nb)
			return NULL;
		s->buckets = nb;
		s->capbuckets = cap;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->start = start;
	s->buckets[s->nbuckets++] = b;
	return s->last_bucket = b;
}

static void memtable_free(qli_memtable *mt)
{
	struct qli_chunk *c, *next;

	if (!mt)
		return;
	for (c = mt->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	for (c = mt->spare; c; c = next) {
		next = c->next;
		free(c);
	}
	qli_buf_free(&mt->frame);
	qli_block_keys_free(&mt->keys);
	free(mt->recs);
	free(mt);
}

/* A memtable for bucket b, a spare one if there is one. Caller holds mu. */
static qli_memtable *memtable_get(ql_store *s, qli_bucket *b)
{
	qli_memtable *mt = s->spare_mt;

	if (mt) {
		s->spare_mt = mt->next;
		s->nspare_mt--;
	} else {
		mt = calloc(1, sizeof(*mt));
		if (!mt)
			return NULL;
		mt->cap = s->opt.block_records;
		mt->recs = malloc(mt->cap * sizeof(*mt->recs));
		if (!mt->recs) {
			free(mt);
			return NULL;
		}
	}
	mt->next = NULL;
	mt->bucket = b;
	mt->n = 0;
	mt->bytes = 0;
	mt->first_seq = s->seq + 1;
	mt->state = QLI_MT_RAW;
	mt->keys.n = 0;
	mt->sf = NULL;
	return mt;
}

/* Keeps a written (or dropped) memtable for reuse, or frees it. Caller
 * holds mu; nobody encodes mt any more. */
static void memtable_put(ql_store *s, qli_memtable *mt)
{
	struct qli_chunk *c, *next;

	if (s->nspare_mt >= QLI_SPARE_MT) {
		memtable_free(mt);
		return;
	}
	for (c = mt->chunks; c; c = next) {
		next = c->next;
		c->next = mt->spare;
		mt->spare = c;
	}
	mt->chunks = NULL;
	mt->frame.len = 0;
	mt->next = s->spare_mt;
	s->spare_mt = mt;
	s->nspare_mt++;
}

static const char *arena_copy(qli_memtable *mt, const char *str, size_t len)
{
	struct qli_chunk *c = mt->chunks;
	char *p;

	if (!c || c->used + len + 1 > CHUNK_SIZE) {
		c = mt->spare;
		if (c)
			mt->spare = c->next;
		else if (!(c = malloc(sizeof(*c))))
			return NULL;
		c->used = 0;
		c->next = mt->chunks;
		mt->chunks = c;
	}
	p = c->data + c->used;
	qli_copy_short(p, str, len + 1); /* str is NUL-terminated */
	c->used += len + 1;
	return p;
}

/* Moves a bucket's memtable to the write queue, unclaimed: the writer
 * encodes it unless another thread claims it first (steal_one). Caller
 * holds mu. */
static void freeze(ql_store *s, qli_bucket *b)
{
	qli_memtable *mt = b->mt;

	if (!mt)
		return;
	b->mt = NULL;
	mt->next = NULL;
	if (s->qtail)
		s->qtail->next = mt;
	else
		s->qhead = mt;
	s->qtail = mt;
	s->nraw++;
	pthread_cond_signal(&s->work);
}

/* Claims mt for encoding by the calling thread. Caller holds mu. */
static int claim(ql_store *s, qli_memtable *mt)
{
	if (mt->state != QLI_MT_RAW)
		return 0;
	mt->state = QLI_MT_OWNED;
	s->nraw--;
	return 1;
}

/* Publishes the result of encoding a claimed memtable: encoded, or (ok
 * 0) unclaimed again, for the writer. Locks mu. */
static void encoded(ql_store *s, qli_memtable *mt, int ok)
{
	pthread_mutex_lock(&s->mu);
	mt->state = ok ? QLI_MT_ENCODED : QLI_MT_RAW;
	if (!ok)
		s->nraw++;
	pthread_cond_broadcast(&s->encoded);
	pthread_mutex_unlock(&s->mu);
}

/* An encoder from the store's pool, or a new one (NULL when out of
 * memory). Caller holds mu; it is released. Every thread that encodes
 * takes one for the block and gives it back: one appending thread and the
 * writer thus share one (zstd's context and the scratch arrays, about
 * 2 MB). */
/* The zstd level of .qls blocks. With compaction on they live until
 * their bucket is sealed and compacted (the compact form is written at
 * compression_level), so they are written at zstd's fastest level: the
 * encoding is on the appender's way to durability (ql_append waits for
 * it), and at level 1 zstd took as long as the rest of the encoding
 * (10M records: 1.95 s of encoding at level 1, 0.87 s at the fastest;
 * the open bucket's file is about 1.5 times larger for the day). */
static int qls_level(const ql_store *s)
{
	return s->opt.compaction == QL_COMPACT_OFF ? s->opt.compression_level
						   : qli_zstd_fastest_level();
}

static qli_encoder *enc_take(ql_store *s)
{
	qli_encoder *e = s->nenc ? s->encpool[--s->nenc] : NULL;

	pthread_mutex_unlock(&s->mu);
	if (!e)
		e = qli_encoder_new(qls_level(s));
	return e;
}

/* Gives e back to the pool (or frees it when the pool is full). Locks
 * mu. */
static void enc_give(ql_store *s, qli_encoder *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->nenc < QLI_ENC_POOL) {
		s->encpool[s->nenc++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	qli_encoder_free(e);
}

/* Encodes one unclaimed memtable of the queue (the newest: the writer
 * works from the oldest) on the calling thread, which is not the writer:
 * an appending thread when the writer is behind, or a thread that waits
 * for a sync anyway. Block encoding (sorting, interning, zstd) is the
 * heaviest step of the write path; done here it runs in parallel with
 * the writer's writes, fsyncs and index work. A failure (memory) leaves
 * the memtable to the writer, which encodes every memtable nobody
 * claims and fails as it always did if it cannot. Returns whether it
 * encoded one. Caller holds mu; it is released while encoding. */
static int steal_one(ql_store *s)
{
	qli_memtable *mt, *pick = NULL;
	qli_encoder *e = NULL;
	int ok = 0;

	if (!s->nraw || s->failed)
		return 0;
	for (mt = s->wlist; mt; mt = mt->next)
		if (mt->state == QLI_MT_RAW)
			pick = mt;
	for (mt = s->qhead; mt; mt = mt->next)
		if (mt->state == QLI_MT_RAW)
			pick = mt;
	if (!pick || !claim(s, pick))
		return 0;
	e = enc_take(s);
	if (e) {
		pick->frame.len = 0;
		ok = !qli_block_encode_keys(e, &pick->frame, pick->recs,
					    pick->n, &pick->hdr, &pick->keys);
	}
	if (!ok)
		qli_clear_err(); /* the writer's to report, if any */
	encoded(s, pick, ok); /* pick is the writer's from here on */
	enc_give(s, e);
	pthread_mutex_lock(&s->mu);
	return 1;
}

/* Waits until no other thread is encoding mt. Caller holds mu. */
static void wait_encoded(ql_store *s, qli_memtable *mt)
{
	while (mt->state == QLI_MT_OWNED)
		pthread_cond_wait(&s->encoded, &s->mu);
}

/* The highest seq such that every record up to it is in the queue or
 * already written: what a write of the queue and a sync make durable.
 * Caller holds mu. */
static uint64_t frozen_upto(const ql_store *s)
{
	uint64_t f = s->seq;

	for (size_t i = 0; i < s->nbuckets; i++) {
		const qli_memtable *mt = s->buckets[i]->mt;

		if (mt && mt->first_seq - 1 < f)
			f = mt->first_seq - 1;
	}
	return f;
}

/* ---------------------------------------------------------------------- */
/* the writer thread                                                       */
/* ---------------------------------------------------------------------- */

static void fail(ql_store *s, int rc)
{
	/* After a failed write or fsync we cannot know what reached the
	 * disk (fsync errors may even have dropped dirty pages: the
	 * "fsyncgate" lesson), so the writer stops for good; reopening
	 * recovers from what is really on disk. */
	if (!s->failed) {
		s->failed = rc;
		snprintf(s->failmsg, sizeof(s->failmsg), "%s",
			 ql_errmsg(NULL));
	}
}

/* The index is derived data: when it fails, indexing stops for this
 * session but appends go on; readers scan what it does not cover and the
 * next open (or ql_reindex) rebuilds it. */
static void ix_fail(ql_store *s, int rc)
{
	if (!s->ix_err) {
		s->ix_err = rc;
		snprintf(s->ix_errmsg, sizeof(s->ix_errmsg), "%s",
			 ql_errmsg(NULL));
	}
	qli_index_abort(s->ix);
}

/* Stages the index summary of a written memtable: block mt->blk of
 * mt->sf, the active segment of its bucket. */
static void index_memtable(ql_store *s, const qli_memtable *mt)
{
	qli_bucket *b = mt->bucket;
	int rc;

	if (!s->ix || s->ix_err || !mt->sf)
		return;
	/* the keys of the whole segment, for its sealed index: not kept
	 * when it is compacted once sealed (see seal_bucket) */
	if (s->opt.compaction == QL_COMPACT_OFF && !b->acc &&
	    !(b->acc = qli_segacc_new())) {
		ix_fail(s, qli_err(QL_ENOMEM, "out of memory"));
		return;
	}
	rc = mt->keys.n == mt->n ? qli_summary_from_keys(&s->sum, &mt->keys)
				 : qli_summary_from_recs(&s->sum, mt->recs, mt->n);
	if (!rc)
		rc = qli_index_put_block(s->ix, mt->sf, mt->blk, &s->sum,
					 b->acc);
	if (rc)
		ix_fail(s, rc);
	else
		b->ix_dirty = 1;
}

/* Is the index commit due (a second since the last)? */
static int commit_due(const ql_store *s)
{
	return s->ix && !s->ix_err &&
	       mono_us() - s->ix_last_commit >= QLI_US_PER_S;
}

/* Stages the directory entries of the active segments written since the
 * last commit. They describe files being written: the caller owns the
 * write path (wbusy). */
static void index_put_dirs(ql_store *s)
{
	int rc = 0;

	if (!s->ix || s->ix_err)
		return;
	for (size_t i = 0; i < s->nwb && !rc; i++) {
		qli_bucket *b = s->wb[i];

		if (b->active && b->ix_dirty) {
			rc = qli_index_put_dir(s->ix, b->active);
			b->ix_dirty = 0;
		}
	}
	if (rc)
		ix_fail(s, rc);
}

/* Commits what is staged (LMDB syncs its file): no segment file is
 * touched, so the write path may be in other hands meanwhile. A block
 * summary committed before its segment's directory entry is harmless:
 * readers and the next open trust the entry's blocks only, and treat
 * later blocks as not indexed. */
static void index_commit_txn(ql_store *s)
{
	int rc;

	if (!s->ix || s->ix_err)
		return;
	rc = qli_index_commit(s->ix);
	if (rc)
		ix_fail(s, rc);
	s->ix_last_commit = mono_us();
}

/* Commits the index if a second has passed (or force): the directory
 * entries of segments written since, then the transaction. The caller
 * owns the write path. */
static void index_commit(ql_store *s, int force)
{
	if (!force && !commit_due(s))
		return;
	index_put_dirs(s);
	index_commit_txn(s);
}

/* Reads every block of sf from 'from' on, adds its keys to acc and, with
 * put, stages its block summary. */
static int index_from_file(ql_store *s, const qli_segfile *sf, uint32_t from,
			   qli_segacc *acc, int put)
{
	qli_decoder *d;
	qli_block blk = { 0 };
	qli_buf buf = { 0 };
	qli_frame_hdr h;
	int rc;

	if (sf->compact) /* sealed: never put block summaries */
		return qli_compact_acc(sf, acc);
	d = qli_decoder_new();
	rc = d ? 0 : qli_err(QL_ENOMEM, "out of memory");
	for (uint32_t i = from; i < sf->nblk && !rc; i++) {
		rc = qli_segfile_read_block(sf, i, &buf, &h);
		if (!rc)
			rc = qli_block_decode(d, &blk, &h,
					      buf.p + QLI_FRAME_HDR);
		if (!rc)
			rc = qli_summary_from_block(&s->sum, &blk);
		if (!rc)
			rc = put ? qli_index_put_block(s->ix, sf, i, &s->sum,
						       acc)
				 : qli_segacc_add(acc, &s->sum, i);
	}
	qli_block_free(&blk);
	qli_buf_free(&buf);
	qli_decoder_free(d);
	return rc;
}

/* Brings the index of one segment in line with the file. b is the bucket
 * when sf is its active (unsealed) segment, else NULL. */
static int reconcile(ql_store *s, qli_segfile *sf, qli_bucket *b)
{
	qli_segacc *acc = NULL;
	uint32_t nb;
	int ok, rc;

	rc = qli_index_check(s->ix, sf, &nb, &ok);
	if (rc)
		return rc;
	if (sf->sealed && ok)
		return 0;
	if (sf->sealed && !sf->compact) {
		pthread_mutex_lock(&s->mu);
		ok = qli_compact_queued(s, sf->name);
		pthread_mutex_unlock(&s->mu);
		if (ok) /* its compact form brings its entries (seal_bucket) */
			return qli_index_drop(s->ix, sf->bucket_start, sf->gen);
	}
	if (!sf->sealed && !b) /* damaged: readers scan it */
		return qli_index_drop(s->ix, sf->bucket_start, sf->gen);
	acc = qli_segacc_new();
	if (!acc)
		return qli_err(QL_ENOMEM, "out of memory");
	if (!sf->sealed && nb == sf->nblk) {
		/* consistent: only the seal needs the keys again */
		rc = qli_index_load_acc(s->ix, sf, nb, acc);
	} else {
		s->reindexed_segments++;
		rc = qli_index_drop(s->ix, sf->bucket_start, sf->gen);
		if (!rc)
			rc = index_from_file(s, sf, 0, acc, !sf->sealed);
		if (!rc)
			rc = sf->sealed ? qli_index_seal(s->ix, sf, acc)
					: qli_index_put_dir(s->ix, sf);
	}
	if (!rc && b) {
		qli_segacc_free(b->acc);
		b->acc = acc;
		acc = NULL;
	}
	qli_segacc_free(acc);
	return rc;
}

/* Encodes mt on the writer thread unless another thread did, or does
 * (then, with wait, waits for it; without, leaves it). */
static int encode_memtable(ql_store *s, qli_memtable *mt, int wait)
{
	qli_encoder *e;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (wait)
		wait_encoded(s, mt);
	if (!claim(s, mt)) {
		pthread_mutex_unlock(&s->mu);
		return 0; /* encoded */
	}
	e = enc_take(s);
	if (e) {
		mt->frame.len = 0;
		rc = qli_block_encode_keys(e, &mt->frame, mt->recs, mt->n,
					   &mt->hdr, &mt->keys);
	} else {
		rc = qli_err(QL_ENOMEM, "out of memory");
	}
	encoded(s, mt, !rc);
	enc_give(s, e);
	return rc;
}

/* Appends mt's block to its bucket's active segment (creating one if
 * needed), encoding it first unless another thread did. */
static int write_memtable(ql_store *s, qli_memtable *mt)
{
	qli_bucket *b = mt->bucket;
	int rc;

	if (!b->active) {
		qli_segfile *sf = calloc(1, sizeof(*sf));

		if (!sf)
			return qli_err(QL_ENOMEM, "out of memory");
		rc = qli_segfile_create(sf, s->segdir, b->start,
					s->opt.bucket_width_us, b->next_gen,
					s->opt.file_mode);
		if (rc) {
			free(sf);
			return rc;
		}
		b->next_gen++;
		b->active = sf;
		s->dir_dirty = 1;
	}
	rc = encode_memtable(s, mt, 1);
	if (rc)
		return rc;
	rc = qli_write_full(b->active->fd, mt->frame.p, mt->frame.len,
			    (off_t)b->active->size, b->active->name);
	if (rc)
		return rc;
	rc = qli_segfile_add_block(b->active, &mt->hdr);
	if (rc)
		return rc;
	b->dirty = 1;
	mt->sf = b->active;
	mt->blk = b->active->nblk - 1;
	return 0;
}

/* Encodes what no other thread claimed, then writes every block of list
 * in order (waiting for blocks other threads are encoding). The caller
 * owns the write path. */
static int write_list(ql_store *s, qli_memtable *list)
{
	qli_memtable *mt;
	int rc = 0;

	for (mt = list; mt && !rc; mt = mt->next)
		rc = encode_memtable(s, mt, 0);
	for (mt = list; mt && !rc; mt = mt->next)
		rc = write_memtable(s, mt);
	return rc;
}

static int sync_all(ql_store *s)
{
	int rc;

	for (size_t i = 0; i < s->nwb; i++) {
		qli_bucket *b = s->wb[i];

		if (!b->active || !b->dirty)
			continue;
		if (qli_vfs_cur->fdatasync(b->active->fd) < 0)
			return qli_errno(errno, "fdatasync", b->active->name);
		b->dirty = 0;
		/* the durable point, for recovery to tell a torn tail from
		 * damage; not synced now (it does not make b dirty) */
		rc = qli_segfile_mark(b->active);
		if (rc)
			return rc;
	}
	if (s->dir_dirty) {
		rc = qli_sync_dir(s->segdir, QLI_SEG_DIR);

		if (rc)
			return rc;
		s->dir_dirty = 0;
	}
	return 0;
}

static int seal_bucket(ql_store *s, qli_bucket *b)
{
	int rc;

	if (!b->active)
		return 0;
	/* A new file's directory entry must be durable before the seal
	 * promises the file is complete. */
	if (s->dir_dirty) {
		rc = qli_sync_dir(s->segdir, QLI_SEG_DIR);
		if (rc)
			return rc;
		s->dir_dirty = 0;
	}
	if (b->active->nblk == 0) {
		/* Nothing was ever written: an empty file only after a crash
		 * right after creation. Remove it instead of sealing. */
		qli_vfs_cur->unlinkat(s->segdir, b->active->name, 0);
		s->dir_dirty = 1;
		if (s->ix && !s->ix_err &&
		    (rc = qli_index_drop(s->ix, b->start, b->active->gen)))
			ix_fail(s, rc);
	} else {
		int queued;

		rc = qli_segfile_seal(b->active);
		if (rc)
			return rc;
		pthread_mutex_lock(&s->mu);
		if (qli_compact_enqueue(s, b->active->name))
			qli_clear_err(); /* stays a valid .qls; next open */
		queued = qli_compact_queued(s, b->active->name);
		pthread_mutex_unlock(&s->mu);
		/* the trail records every seal; failing to write it must not
		 * stop the log itself (counted, reported by the audit) */
		if (qli_audit_sealed(s, b->active))
			s->audit_err++;
		if (s->ix && !s->ix_err) {
			/* its index entries are written by index_sealed, once
			 * the write path is free again. A segment queued for
			 * compaction gets none: its block summaries are
			 * dropped and readers scan it until its compact form
			 * is installed (a day's sealed .qls entries cost the
			 * writer a sort of all its keys and the index file
			 * their pages, to be replaced seconds later). */
			qli_install *in = malloc(sizeof(*in));

			if (!in) {
				ix_fail(s, qli_err(QL_ENOMEM, "out of memory"));
			} else {
				in->sf = b->active;
				in->drop = queued;
				in->acc = queued ? NULL : b->acc; /* NULL: from
								   * the file */
				in->next = s->wsealed;
				s->wsealed = in;
				b->active = NULL;
				if (in->acc)
					b->acc = NULL; /* moved */
			}
		}
	}
	qli_segacc_free(b->acc);
	b->acc = NULL;
	b->ix_dirty = 0;
	if (b->active) {
		qli_segfile_close(b->active);
		free(b->active);
		b->active = NULL;
	}
	b->dirty = 0;
	return 0;
}

/* Frees one finished compaction or sealed segment waiting for its index
 * entries (its segment closed). */
static void install_free(qli_install *in)
{
	qli_segfile_close(in->sf);
	free(in->sf);
	qli_segacc_free(in->acc);
	free(in);
}

/* Does in's index work (see qli_install). */
static int install_one(ql_store *s, qli_install *in)
{
	qli_segacc *acc;
	int rc;

	if (in->drop)
		return qli_index_drop(s->ix, in->sf->bucket_start,
				      in->sf->gen);
	if (in->acc)
		return qli_index_seal(s->ix, in->sf, in->acc);
	acc = qli_segacc_new();
	if (!acc)
		return qli_err(QL_ENOMEM, "out of memory");
	rc = index_from_file(s, in->sf, 0, acc, 0);
	if (!rc)
		rc = qli_index_seal(s->ix, in->sf, acc);
	qli_segacc_free(acc);
	return rc;
}

/* Writes the index entries of the segments sealed by do_seals: each
 * segment's keys by block, built from its accumulator (the heavy part of a
 * seal: sorting every key of the day), or drops them (see seal_bucket).
 * The files are sealed and no longer the write path's, so this runs while
 * a leader writes. */
static void index_sealed(ql_store *s)
{
	qli_install *in = s->wsealed, *next;

	s->wsealed = NULL;
	/* in the order sealed (the list is newest first) */
	qli_install *rev = NULL;

	for (; in; in = next) {
		next = in->next;
		in->next = rev;
		rev = in;
	}
	for (in = rev; in; in = next) {
		int rc;

		next = in->next;
		if (s->ix && !s->ix_err) {
			rc = install_one(s, in);
			if (rc)
				ix_fail(s, rc);
		}
		install_free(in);
	}
}

/* How far the records' own times must have moved past a bucket's end
 * before an import may seal it without the idle second (plan_seals): an
 * hour, or seal_grace_us if that is longer. WORKLOAD.md's late records
 * are at most 5 minutes late; an hour covers sources merged with tens of
 * minutes of drift, and costs an import little: the bucket keeps its
 * per-block index summaries for one more hour of records. */
#define QLI_STREAM_MARGIN_US (3600 * QLI_US_PER_S)

static int64_t stream_margin(const ql_store *s)
{
	return s->opt.seal_grace_us > QLI_STREAM_MARGIN_US
		       ? s->opt.seal_grace_us
		       : QLI_STREAM_MARGIN_US;
}

/* Decides, under mu, which buckets are due for sealing and freezes their
 * memtables so their records are written before the seal. A bucket is due
 * once the store's clock has passed its end plus the grace period, and
 * either no record has arrived for it for a second of real time, or the
 * records themselves have moved on: a record at least stream_margin()
 * past the bucket's end has been taken, and the bucket has taken none of
 * the last block_records records. Live, the clock decides (records carry
 * about the clock's time); an import of history (a clock far ahead of the
 * records) seals a day as soon as the stream is an hour past it, and does
 * not seal the bucket it is still filling, which would only scatter it
 * over generations. Late records into a sealed bucket go to a new
 * generation. Closing and ql_maintain seal every bucket whose time is
 * over. Run at each maintenance tick and, during an import, as soon as
 * the stream passes s->seal_due (the earliest time at which an open
 * bucket may become due by its records). */
static int plan_seals(ql_store *s, int64_t now)
{
	int64_t mono = mono_us(), margin = stream_margin(s);
	int64_t due = INT64_MAX;
	int any = 0;

	for (size_t i = 0; i < s->nbuckets; i++) {
		qli_bucket *b = s->buckets[i];
		int64_t end = b->start + s->opt.bucket_width_us;

		if (!b->active && !b->mt)
			continue;
		if (end + s->opt.seal_grace_us > now)
			goto later;
		if (!s->stop && s->maint_req == s->maint_done &&
		    b->last_append && mono - b->last_append < QLI_US_PER_S &&
		    (s->stream_ts < end + margin ||
		     s->seq - b->last_seq < s->opt.block_records))
			goto later;
		freeze(s, b);
		b->sealing = 1;
		any = 1;
		continue;
later:
		if (end + margin < due)
			due = end + margin;
	}
	s->seal_due = due;
	s->seal_check_seq = s->seq;
	return any;
}

/* Should the writer run plan_seals for the records' times (mu held)?
 * Once per batch of new records at most, so that a bucket that stays
 * open (it still takes records) is not checked in a loop. Part of the
 * background maintenance: without it (a negative interval) the caller
 * seals, with ql_maintain. */
static int stream_seal_check(const ql_store *s)
{
	return s->opt.maintenance_interval_ms > 0 &&
	       s->stream_ts >= s->seal_due && s->seq != s->seal_check_seq;
}

static int do_seals(ql_store *s)
{
	for (size_t i = 0; i < s->nwb; i++) {
		qli_bucket *b = s->wb[i];
		int rc;

		if (!b->sealing)
			continue;
		rc = seal_bucket(s, b);
		if (rc)
			return rc;
		b->sealing = 0;
	}
	return 0;
}

/* Is (bucket, gen) one of the listed segments? */
typedef struct orphan_ctx {
	ql_store *s;
	const qli_seglist *l;
	int rc;
} orphan_ctx;

static int drop_orphan(int64_t bucket, uint32_t gen, void *p)
{
	orphan_ctx *o = p;

	for (size_t i = 0; i < o->l->n; i++)
		if (o->l->start[i] == bucket && o->l->gen[i] == gen)
			return 0;
	o->rc = qli_index_drop(o->s->ix, bucket, gen);
	return o->rc;
}

/* Makes the index agree with every segment file: the active ones in
 * memory, the others loaded from disk. With rebuild, starts from an empty
 * index. Called at open and for ql_reindex (writer thread). */
static int reindex_all(ql_store *s, int rebuild)
{
	orphan_ctx o = { s, NULL, 0 };
	qli_seglist l;
	int rc;

	if (rebuild || !s->ix) {
		qli_index_close(s->ix);
		s->ix = NULL;
		if (rebuild)
			qli_index_destroy(s->dirfd);
		rc = qli_index_open(&s->ix, s->dirfd, s->path, 1,
				    s->opt.dir_mode, s->opt.file_mode);
		if (rc == QL_ECORRUPT) {
			/* derived data: a damaged index is rebuilt */
			qli_index_destroy(s->dirfd);
			rc = qli_index_open(&s->ix, s->dirfd, s->path, 1,
					    s->opt.dir_mode, s->opt.file_mode);
		}
		if (rc)
			return rc;
	}
	s->ix_err = 0;
	s->reindexed_segments = 0;
	rc = qli_seglist_read(s->segdir, &l);
	if (rc)
		return rc;
	for (size_t i = 0; i < l.n && !rc; i++) {
		qli_bucket *b = NULL;
		qli_segfile sf;

		for (size_t k = 0; k < s->nwb; k++)
			if (s->wb[k]->start == l.start[i])
				b = s->wb[k];

		if (b && b->active && b->active->gen == l.gen[i]) {
			rc = reconcile(s, b->active, b);
			b->ix_dirty = 1;
			continue;
		}
		rc = qli_segfile_load(&sf, s->segdir, l.names[i],
				      QLI_LOAD_VERIFY);
		if (rc == QL_ENOTFOUND) {
			rc = 0;
			continue;
		}
		if (!rc)
			rc = reconcile(s, &sf, NULL);
		qli_segfile_close(&sf);
	}
	o.l = &l;
	if (!rc)
		rc = qli_index_segments(s->ix, drop_orphan, &o);
	if (!rc)
		rc = o.rc;
	qli_seglist_free(&l);
	if (!rc)
		index_commit(s, 1);
	if (!rc && s->ix_err)
		rc = qli_err(s->ix_err, "%s", s->ix_errmsg);
	if (rc)
		qli_index_abort(s->ix);
	return rc;
}

/* Indexes compacted segments (writer thread, or ql_close once it has
 * stopped): the segment id is the same, its entries are replaced. */
static void install_all(ql_store *s, qli_install *in)
{
	while (in) {
		qli_install *next = in->next;
		int rc;

		if (s->ix && !s->ix_err) {
			rc = install_one(s, in);
			if (rc)
				ix_fail(s, rc);
			/* the .qls entries it replaced become free pages only
			 * once committed: the next one reuses them instead of
			 * growing the file (after an import, many are
			 * installed at once) */
			if (in->next)
				index_commit_txn(s);
		}
		install_free(in);
		in = next;
	}
}

/* The writer thread works on its own copy of the bucket list, taken
 * under mu: appenders may grow (realloc) s->buckets at any time. The
 * buckets themselves never move, and their file-side fields (active,
 * dirty, acc, ix_dirty) belong to the writer thread. */
static int snapshot_buckets(ql_store *s)
{
	if (s->nbuckets > s->capwb) {
		size_t cap = s->capwb ? s->capwb : 16;
		qli_bucket **n;

		while (cap < s->nbuckets)
			cap *= 2;
		n = realloc(s->wb, cap * sizeof(*n));
		if (!n)
			return qli_err(QL_ENOMEM, "out of memory");
		s->wb = n;
		s->capwb = cap;
	}
	if (s->nbuckets)
		memcpy(s->wb, s->buckets, s->nbuckets * sizeof(*s->wb));
	s->nwb = s->nbuckets;
	return 0;
}

/* Recycles a list taken off the write queue (written, or dropped after a
 * failure), waiting for any memtable another thread is still encoding;
 * returns the bytes it held. Caller holds mu. */
static size_t drop_list(ql_store *s, qli_memtable *list)
{
	qli_memtable *next;
	size_t freed = 0;

	for (; list; list = next) {
		wait_encoded(s, list);
		if (list->state == QLI_MT_RAW)
			s->nraw--;
		next = list->next;
		freed += list->bytes;
		memtable_put(s, list);
	}
	return freed;
}

/* Is there work that makes records durable: a sync asked for, or
 * records waiting to be written? Caller holds mu. */
static int durable_work(const ql_store *s)
{
	return s->qhead || s->sync_req > s->durable_seq;
}

/* The blocks written (by the writer or a leader) whose index summaries
 * the writer has not staged yet, oldest first (s->ixq, under mu). */
static void ixq_push(ql_store *s, qli_memtable *list)
{
	qli_memtable *mt;

	if (!list)
		return;
	for (mt = list;; mt = mt->next) {
		s->nixq++;
		if (!mt->next)
			break;
	}
	if (s->ixq_tail)
		s->ixq_tail->next = list;
	else
		s->ixq = list;
	s->ixq_tail = mt;
}

/* Takes the whole queue (to drop it after a failure). Caller holds mu. */
static qli_memtable *ixq_take(ql_store *s)
{
	qli_memtable *list = s->ixq;

	s->ixq = s->ixq_tail = NULL;
	s->nixq = 0;
	return list;
}

/* Stages the queued block summaries, oldest first, onto *done (for
 * drop_list). With may_defer they give way to a sync asked for meanwhile
 * (the next cycle serves it first) as long as no more than QLI_IX_DEFER
 * blocks wait. Returns whether blocks are left. */
static int index_queued(ql_store *s, int may_defer, qli_memtable **done)
{
	for (;;) {
		qli_memtable *mt;

		pthread_mutex_lock(&s->mu);
		mt = s->ixq;
		if (mt && may_defer && s->nixq <= QLI_IX_DEFER &&
		    durable_work(s)) {
			pthread_mutex_unlock(&s->mu);
			return 1;
		}
		if (mt) {
			s->ixq = mt->next;
			if (!s->ixq)
				s->ixq_tail = NULL;
			s->nixq--;
		}
		pthread_mutex_unlock(&s->mu);
		if (!mt)
			return 0;
		index_memtable(s, mt);
		mt->next = *done;
		*done = mt;
	}
}

/* Takes the write path for the calling thread, waiting for a leader
 * (lead_sync) to finish; gives it back. Caller holds mu. */
static void wtake(ql_store *s)
{
	while (s->wbusy)
		pthread_cond_wait(&s->done, &s->mu);
	s->wbusy = 1;
}

static void wgive(ql_store *s)
{
	s->wbusy = 0;
	s->wlist = NULL;
	pthread_cond_broadcast(&s->done);
}

/* One cycle of the writer: take the queue, encode what no other thread
 * claimed, write it in queue order (waiting for blocks other threads are
 * encoding), sync if asked and release the callers waiting for it, then
 * what does not make anything durable: the index summaries of the blocks
 * written (its own and the leaders'), sealing, the index commit. */
static void *writer_main(void *arg)
{
	ql_store *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		qli_memtable *list, *done = NULL;
		uint64_t upto;
		int do_sync, do_maint, do_seal, sealing = 0, queued = 0;
		int own = 0, rc = 0;
		int64_t now = qli_now(s);

		if (s->wbusy) {
			/* a leader is writing: it signals when done */
			pthread_cond_wait(&s->work, &s->mu);
			continue;
		}
		/* a sync asked for by threads that wait in sync_wait is
		 * theirs to write (lead_sync): no hand-over to this thread
		 * and back */
		do_sync = (s->sync_req > s->durable_seq && !s->nsyncwait) ||
			  (s->stop && s->seq > s->durable_seq);
		do_maint = s->maint_req > s->maint_done ||
			   s->reindex_req > s->reindex_done ||
			   (s->stop && !s->final_maint) ||
			   (s->opt.maintenance_interval_ms > 0 &&
			    mono_us() >= s->next_maint);
		do_seal = do_maint || stream_seal_check(s);
		/* index work waits while threads wait for a sync they write
		 * themselves, unless too much of it waits or the commit is
		 * due (the leader signals work when it is done) */
		int ix_now = s->ixq && (!s->nsyncwait ||
					s->nixq > QLI_IX_DEFER ||
					commit_due(s));

		if ((!s->qhead || s->nsyncwait) && !do_sync && !do_seal &&
		    !ix_now) {
			struct timespec ts;

			if (s->stop)
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000000L; /* wake for the clock */
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&s->work, &s->mu, &ts);
			continue;
		}
		if (s->failed) {
			/* drain: nothing more is written once failed */
			list = s->qhead;
			s->qhead = s->qtail = NULL;
			s->pending_bytes -= drop_list(s, list);
			s->pending_bytes -= drop_list(s, ixq_take(s));
			s->maint_done = s->maint_req;
			pthread_cond_broadcast(&s->done);
			if (s->stop)
				break;
			pthread_cond_wait(&s->work, &s->mu);
			continue;
		}
		if (do_sync)
			for (size_t i = 0; i < s->nbuckets; i++)
				freeze(s, s->buckets[i]);
		if (do_maint) {
			if (s->stop)
				s->final_maint = 1;
			sealing = plan_seals(s, now);
			s->next_maint = mono_us() + (int64_t)s->opt
				.maintenance_interval_ms * 1000;
		} else if (do_seal) {
			/* the records' times moved past an open bucket: seal
			 * it now rather than at the next tick (a fast import
			 * crosses several buckets a second) */
			do_seal = sealing = plan_seals(s, now);
		}
		uint64_t maint_target = s->maint_req;
		uint64_t reindex_target = s->reindex_req;
		int stopping = s->stop;
		int snap = snapshot_buckets(s);

		if (snap) {
			/* without a complete list a sync could miss a file:
			 * stop rather than acknowledge what is not durable */
			fail(s, snap);
			continue;
		}
		s->wbusy = 1; /* this cycle owns the write path */
		own = 1;
		list = s->wlist = s->qhead;
		s->qhead = s->qtail = NULL;
		qli_install *inst = s->inst;

		s->inst = NULL;
		upto = frozen_upto(s);
		pthread_mutex_unlock(&s->mu);

		rc = write_list(s, list);
		if (!rc && !do_sync) {
			/* a caller may have asked for a sync while we waited
			 * for the encoding: answer it before the index work */
			pthread_mutex_lock(&s->mu);
			do_sync = s->sync_req > s->durable_seq &&
				  upto > s->durable_seq;
			pthread_mutex_unlock(&s->mu);
		}
		if (!rc && do_sync) {
			rc = sync_all(s);
			pthread_mutex_lock(&s->mu);
			if (!rc && upto > s->durable_seq)
				s->durable_seq = upto;
			pthread_cond_broadcast(&s->done);
			pthread_mutex_unlock(&s->mu);
		}
		pthread_mutex_lock(&s->mu);
		s->wlist = NULL; /* written: nothing left in it to encode */
		if (rc) { /* before a leader could sync past the failure */
			fail(s, rc);
		} else {
			/* the written blocks wait for their summaries */
			ixq_push(s, list);
			queued = 1;
		}
		if (!sealing && !stopping &&
		    reindex_target == s->reindex_done) {
			/* what follows is index work (LMDB): the write path
			 * is free for a leader (lead_sync) meanwhile */
			wgive(s);
			own = 0;
		}
		pthread_mutex_unlock(&s->mu);
		install_all(s, inst);
		/* Index summaries. Sealing, a rebuild and closing need them
		 * all (this cycle holds the path then: none can be added);
		 * otherwise they may give way to a sync. */
		if (!rc)
			index_queued(s, !do_seal && !stopping &&
					     reindex_target == s->reindex_done,
				     &done);
		if (!rc && sealing) /* the path is still this cycle's */
			rc = do_seals(s);
		if (own && !stopping && reindex_target == s->reindex_done) {
			pthread_mutex_lock(&s->mu);
			if (rc)
				fail(s, rc);
			wgive(s);
			pthread_mutex_unlock(&s->mu);
			own = 0;
		}
		index_sealed(s);
		if (!rc && (do_seal || commit_due(s))) {
			/* the directory entries describe the files being
			 * written and must not name a block without its
			 * summary: they need the write path (so that no leader
			 * adds blocks meanwhile) and every queued summary; the
			 * commit needs neither */
			if (!own) {
				pthread_mutex_lock(&s->mu);
				wtake(s);
				pthread_mutex_unlock(&s->mu);
				own = 1;
			}
			index_queued(s, 0, &done);
			index_put_dirs(s);
			if (!stopping && reindex_target == s->reindex_done) {
				pthread_mutex_lock(&s->mu);
				wgive(s);
				pthread_mutex_unlock(&s->mu);
				own = 0;
			}
			index_commit_txn(s);
		}
		if (!rc && reindex_target > s->reindex_done &&
		    (rc = reindex_all(s, 1))) {
			ix_fail(s, rc); /* the index, not the data, failed */
			rc = 0;
		}

		pthread_mutex_lock(&s->mu);
		if (rc) /* first: drop_list below may release mu */
			fail(s, rc);
		if (own)
			wgive(s);
		s->pending_bytes -= drop_list(s, done);
		if (rc) {
			if (!queued) /* else it is in s->ixq or done */
				s->pending_bytes -= drop_list(s, list);
			s->pending_bytes -= drop_list(s, ixq_take(s));
		}
		if (do_maint && maint_target > s->maint_done)
			s->maint_done = maint_target;
		if (reindex_target > s->reindex_done)
			s->reindex_done = reindex_target;
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->mu);
	/* A failure can leave index changes staged (uncommitted: the index
	 * is derived, the next open reconciles it). LMDB's write transaction
	 * holds a lock that only the thread that began it may release, so it
	 * is aborted here, not by ql_close's thread. */
	qli_index_abort(s->ix);
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* open and recovery                                                       */
/* ---------------------------------------------------------------------- */

/* The new store directory's own entry is durable only once its parent
 * is synced; without this a power cut could lose a whole new store and
 * the records acknowledged in it. */
static int sync_parent(const char *path)
{
	char parent[4096];
	char *slash;
	int fd, rc;

	snprintf(parent, sizeof(parent), "%s", path);
	while ((slash = strrchr(parent, '/')) && slash[1] == '\0' &&
	       slash != parent)
		*slash = '\0'; /* "dir/" */
	slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	fd = qli_vfs_cur->openat(AT_FDCWD, parent, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return qli_errno(errno, "open parent of", path);
	rc = qli_sync_dir(fd, parent);
	qli_vfs_cur->close(fd);
	return rc;
}

static int open_dirs(ql_store *s, unsigned flags)
{
	int rc;

	s->dirfd = qli_vfs_cur->openat(AT_FDCWD, s->path,
				       O_RDONLY | O_DIRECTORY, 0);
	if (s->dirfd < 0 && errno == ENOENT && (flags & QL_OPEN_CREATE) &&
	    !s->readonly) {
		if (qli_vfs_cur->mkdirat(AT_FDCWD, s->path, s->opt.dir_mode) &&
		    errno != EEXIST)
			return qli_errno(errno, "create store directory",
					 s->path);
		rc = sync_parent(s->path);
		if (rc)
			return rc;
		s->dirfd = qli_vfs_cur->openat(AT_FDCWD, s->path,
					       O_RDONLY | O_DIRECTORY, 0);
	}
	if (s->dirfd < 0) {
		if (errno == ENOENT)
			return qli_err(QL_ENOTFOUND, "no store at %s (create "
				       "it with QL_OPEN_CREATE)", s->path);
		return qli_errno(errno, "open store directory", s->path);
	}
	if (!s->readonly) {
		s->lockfd = qli_vfs_cur->openat(s->dirfd, QLI_LOCK_FILE,
						O_RDWR | O_CREAT,
						s->opt.file_mode);
		if (s->lockfd < 0)
			return qli_errno(errno, "open lock file", s->path);
		if (qli_vfs_cur->flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
			if (errno == EWOULDBLOCK)
				return qli_err(QL_EBUSY, "store %s is open for "
					       "writing by another process",
					       s->path);
			return qli_errno(errno, "lock", s->path);
		}
	}
	rc = meta_read(s);
	if (rc == QL_ENOTFOUND && !s->readonly && (flags & QL_OPEN_CREATE)) {
		if (!s->opt.bucket_width_us)
			s->opt.bucket_width_us = QLI_US_PER_DAY;
		if (qli_vfs_cur->mkdirat(s->dirfd, QLI_SEG_DIR,
					 s->opt.dir_mode) &&
		    errno != EEXIST)
			return qli_errno(errno, "create", QLI_SEG_DIR);
		/* The meta file is written last and atomically: its presence
		 * means the store is complete. */
		rc = meta_write(s);
	} else if (rc == QL_ENOTFOUND) {
		rc = qli_err(QL_ENOTFOUND, "%s is not a querylog store (no %s)",
			     s->path, QLI_META_FILE);
	}
	if (rc)
		return rc;
	s->segdir = qli_vfs_cur->openat(s->dirfd, QLI_SEG_DIR,
					O_RDONLY | O_DIRECTORY, 0);
	if (s->segdir < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			return qli_err(QL_EUNSAFE, "%s/%s is a symbolic link: "
				       "refused", s->path, QLI_SEG_DIR);
		return qli_errno(errno, "open", QLI_SEG_DIR);
	}
	return 0;
}

/* In seg/: leftovers of a crash. A *.tmp was never renamed into place; a
 * *.del was decided for deletion (its expiry is in the audit trail): both
 * go; their index entries are dropped as orphans by reindex_all. */
static int remove_leftover(const char *name, void *ctx)
{
	int dirfd = *(int *)ctx;
	size_t n = strlen(name);

	if ((n > 4 && !strcmp(name + n - 4, ".tmp")) ||
	    (n > 4 && !strcmp(name + n - 4, ".del")))
		qli_vfs_cur->unlinkat(dirfd, name, 0);
	return 0;
}

/* Writer recovery: every unsealed segment is checked block by block and
 * cut back to its last whole, valid block. Those blocks were written
 * after the last fsync the writer completed, or they were acknowledged
 * and are intact: either way nothing acknowledged is cut. */
static int recover(ql_store *s)
{
	qli_seglist l;
	int rc;

	/* (only the writer writes QLSTORE; HOLDS.tmp may be another
	 * process's save in progress under the maintenance lock) */
	qli_vfs_cur->unlinkat(s->dirfd, QLI_META_FILE ".tmp", 0);
	qli_vfs_cur->listdir(s->segdir, remove_leftover, &s->segdir);
	rc = qli_seglist_read(s->segdir, &l);
	if (rc)
		return rc;
	for (size_t i = 0; i < l.nshadow && !rc; i++) {
		/* finish a compaction's swap a crash interrupted */
		if (qli_vfs_cur->unlinkat(s->segdir, l.shadow[i], 0) ||
		    qli_sync_dir(s->segdir, QLI_SEG_DIR))
			rc = qli_errno(errno, "remove superseded segment",
				       l.shadow[i]);
		s->recovered_segments++;
	}
	for (size_t i = 0; i < l.n && !rc; i++) {
		qli_segfile *sf = calloc(1, sizeof(*sf));
		qli_bucket *b;

		if (!sf) {
			rc = qli_err(QL_ENOMEM, "out of memory");
			break;
		}
		rc = qli_segfile_load(sf, s->segdir, l.names[i],
				      QLI_LOAD_WRITE | QLI_LOAD_VERIFY);
		if (rc && sf->torn_create) {
			s->recovered_segments++;
			if (qli_vfs_cur->unlinkat(s->segdir, l.names[i], 0) ||
			    qli_sync_dir(s->segdir, QLI_SEG_DIR))
				rc = qli_errno(errno, "remove torn segment",
					       l.names[i]);
			else
				rc = 0;
			free(sf);
			continue;
		}
		if (rc) {
			free(sf);
			break;
		}
		b = bucket_find(s, sf->bucket_start, 1);
		if (!b) {
			qli_segfile_close(sf);
			free(sf);
			rc = qli_err(QL_ENOMEM, "out of memory");
			break;
		}
		if (sf->gen + 1 > b->next_gen)
			b->next_gen = sf->gen + 1;
		if (sf->sealed && !sf->compact &&
		    qli_compact_enqueue(s, sf->name))
			qli_clear_err(); /* tried again at the next open */
		if (sf->sealed || sf->damaged) {
			/* a damaged unsealed segment is left as it is for the
			 * operator (verify names it); appends for its bucket
			 * go to a new generation */
			qli_segfile_close(sf);
			free(sf);
			continue;
		}
		if (sf->file_size > sf->size) {
			s->recovered_segments++;
			s->recovered_bytes += sf->file_size - sf->size;
			if (qli_vfs_cur->ftruncate(sf->fd, (off_t)sf->size) ||
			    qli_vfs_cur->fdatasync(sf->fd))
				rc = qli_errno(errno, "truncate torn tail of",
					       sf->name);
			sf->file_size = sf->size;
		}
		if (!rc && b->active) {
			/* an older unsealed generation: seal it now, only the
			 * newest one takes appends */
			qli_bucket tmp = *b;

			rc = seal_bucket(s, &tmp); /* closes tmp.active */
			index_sealed(s);
			b->active = tmp.active;
		}
		if (rc) {
			qli_segfile_close(sf);
			free(sf);
			break;
		}
		b->active = sf;
	}
	qli_seglist_free(&l);
	return rc;
}

static void store_free(ql_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		qli_bucket *b = s->buckets[i];

		if (b->active) {
			qli_segfile_close(b->active);
			free(b->active);
		}
		memtable_free(b->mt);
		qli_segacc_free(b->acc);
		free(b);
	}
	while (s->qhead) {
		qli_memtable *n = s->qhead->next;

		memtable_free(s->qhead);
		s->qhead = n;
	}
	while (s->ixq) {
		qli_memtable *n = s->ixq->next;

		memtable_free(s->ixq);
		s->ixq = n;
	}
	while (s->wsealed) {
		qli_install *n = s->wsealed->next;

		install_free(s->wsealed);
		s->wsealed = n;
	}
	while (s->spare_mt) {
		qli_memtable *n = s->spare_mt->next;

		memtable_free(s->spare_mt);
		s->spare_mt = n;
	}
	while (s->nenc)
		qli_encoder_free(s->encpool[--s->nenc]);
	free(atomic_load(&s->scratch));
	free(s->buckets);
	free(s->wb);
	qli_index_close(s->ix);
	qli_summary_free(&s->sum);
	qli_dcache_free(s->dcache);
	if (s->segdir >= 0)
		qli_vfs_cur->close(s->segdir);
	if (s->lockfd >= 0)
		qli_vfs_cur->close(s->lockfd); /* releases the flock */
	if (s->dirfd >= 0)
		qli_vfs_cur->close(s->dirfd);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->done);
	pthread_cond_destroy(&s->cwork);
	while (s->inst) {
		qli_install *n = s->inst->next;

		install_free(s->inst);
		s->inst = n;
	}
	free(s->cq);
	pthread_cond_destroy(&s->encoded);
	free(s->path);
	free(s);
}

int ql_open(ql_store **out, const char *dir, const ql_options *opts)
{
	ql_store *s;
	int rc;

	if (!out)
		return qli_err(QL_EINVAL, "ql_open: out is NULL");
	*out = NULL;
	if (!dir || !*dir)
		return qli_err(QL_EINVAL, "ql_open: store directory is empty");
	s = calloc(1, sizeof(*s));
	if (!s)
		return qli_err(QL_ENOMEM, "out of memory");
	s->dirfd = s->segdir = s->lockfd = -1;
	/* no record yet, no bucket due by the records' times: a bucket
	 * recovered open is sealed on the clock, unless it takes records */
	s->stream_ts = INT64_MIN;
	s->seal_due = INT64_MAX;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->done, NULL);
	pthread_cond_init(&s->cwork, NULL);
	pthread_cond_init(&s->encoded, NULL);
	s->retention_given = opts && opts->retention_us;
	rc = resolve_options(&s->opt, opts);
	if (rc)
		goto fail;
	s->readonly = !!(s->opt.flags & QL_OPEN_READONLY);
	s->path = strdup(dir);
	if (!s->path) {
		rc = qli_err(QL_ENOMEM, "out of memory");
		goto fail;
	}
	rc = open_dirs(s, s->opt.flags);
	if (rc)
		goto fail;
	if (!s->readonly) {
		/* the first encoder of the pool: a store that cannot have one
		 * does not open */
		s->encpool[0] = qli_encoder_new(qls_level(s));
		if (!s->encpool[0]) {
			rc = qli_err(QL_ENOMEM, "out of memory");
			goto fail;
		}
		s->nenc = 1;
		rc = recover(s);
		if (!rc)
			rc = snapshot_buckets(s);
		if (rc)
			goto fail;
		rc = reindex_all(s, 0);
		if (rc && rc != QL_ENOMEM) {
			/* the store opens: queries scan what is not indexed */
			ix_fail(s, rc);
			rc = 0;
		}
		if (rc)
			goto fail;
		s->next_maint = mono_us();
		if (pthread_create(&s->thread, NULL, writer_main, s)) {
			rc = qli_err(QL_ENOMEM, "cannot start writer thread");
			goto fail;
		}
		s->thread_started = 1;
		rc = qli_compact_start(s);
		if (rc)
			goto fail;
	} else {
		rc = qli_index_open(&s->ix, s->dirfd, s->path, 0, 0, 0);
		if (rc) {
			/* a reader can answer without the index */
			s->ix = NULL;
			rc = 0;
		}
	}
	qli_clear_err();
	*out = s;
	return 0;
fail:
	store_free(s);
	return rc;
}

int ql_close(ql_store *s)
{
	int rc = 0;

	if (!s)
		return 0;
	/* a compaction in progress finishes; queued ones wait for the next
	 * open (their .qls files are complete) */
	qli_compact_stop(s);
	if (s->thread_started) {
		pthread_mutex_lock(&s->mu);
		if (s->failed) {
			rc = QL_EFAILED;
		} else {
			s->sync_req = s->seq;
		}
		s->stop = 1;
		pthread_cond_signal(&s->work);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
		if (!rc && s->failed)
			rc = qli_err(s->failed, "%s", s->failmsg);
		else if (rc)
			qli_err(QL_EFAILED, "store was disabled earlier: %s",
				s->failmsg);
		if (!rc && s->opt.compaction == QL_COMPACT_INLINE) {
			/* the writer thread is gone: this thread compacts
			 * what the last pass sealed and indexes it */
			qli_install *in;

			pthread_mutex_lock(&s->mu);
			qli_compact_drain(s);
			in = s->inst;
			s->inst = NULL;
			pthread_mutex_unlock(&s->mu);
			install_all(s, in);
			index_commit(s, 1);
		}
	}
	store_free(s);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* append and sync                                                         */
/* ---------------------------------------------------------------------- */

static int check_ts(const ql_store *s, int64_t ts, int64_t now)
{
	char a[40], b[40];

	if (ts > now + s->opt.max_future_skew_us) {
		ql_time_format(a, sizeof(a), ts);
		ql_time_format(b, sizeof(b), now);
		return qli_err(QL_ERANGE, "ts %s (%lld): more than %llds in "
			       "the future of the store's clock (%s)", a,
			       (long long)ts,
			       (long long)(s->opt.max_future_skew_us /
					   QLI_US_PER_S), b);
	}
	if (ts < now - s->opt.retention_us) {
		ql_time_format(a, sizeof(a), ts);
		ql_time_format(b, sizeof(b), now);
		return qli_err(QL_ERANGE, "ts %s (%lld): older than the "
			       "retention period (%lld days before %s)", a,
			       (long long)ts,
			       (long long)(s->opt.retention_us /
					   QLI_US_PER_DAY), b);
	}
	return 0;
}

/* Validated, canonical form of one record. */
typedef struct canon {
	char *req, *tgt;
	uint8_t req_len, tgt_len;
} canon;

/* Validates r and writes its canonical handles at *space, which has room
 * for QL_HANDLE_MAX + 1 bytes more than the canonical forms take. */
static int canon_one(const ql_store *s, const ql_record *r, int64_t now,
		     canon *c, char **space)
{
	size_t len;
	int rc;

	if (r->result > 1)
		return qli_err(QL_EINVAL, "result %u: must be 0 (not "
			       "registered) or 1 (registered)", r->result);
	rc = check_ts(s, r->ts, now);
	if (rc)
		return rc;
	rc = ql_handle_parse(*space, QL_HANDLE_MAX + 1, r->requester,
			     "requester");
	if (rc)
		return rc;
	len = strlen(*space);
	c->req = *space;
	c->req_len = (uint8_t)len;
	*space += len + 1;
	rc = ql_handle_parse(*space, QL_HANDLE_MAX + 1, r->target, "target");
	if (rc)
		return rc;
	len = strlen(*space);
	c->tgt = *space;
	c->tgt_len = (uint8_t)len;
	*space += len + 1;
	return 0;
}

/* Copies the records into their buckets' memtables; a memtable this
 * fills is frozen. Caller holds mu. */
/* What take_records changes outside the buckets, as it found it. */
typedef struct take_state {
	uint64_t gen, seq;
	size_t pending, nraw;
	int64_t stream_ts, seal_due;
	qli_memtable *qtail;
} take_state;

/* Puts everything take_records changed back as it found it: the records
 * it took go, and so do the memtables it made; the ones it froze leave
 * the write queue (no other thread can have touched them: the caller
 * has held mu throughout). Strings it copied stay in their memtables'
 * arenas as unused bytes until the memtable is recycled. */
static void take_undo(ql_store *s, const take_state *u)
{
	qli_memtable *mt = u->qtail ? u->qtail->next : s->qhead, *next;

	for (; mt; mt = next) {
		next = mt->next;
		mt->next = NULL;
		if (mt != mt->bucket->undo_mt) /* made by this call */
			memtable_put(s, mt);
	}
	if (u->qtail)
		u->qtail->next = NULL;
	else
		s->qhead = NULL;
	s->qtail = u->qtail;
	s->nraw = u->nraw;
	for (size_t i = 0; i < s->nbuckets; i++) {
		qli_bucket *b = s->buckets[i];

		if (b->undo_gen != u->gen)
			continue;
		if (b->mt && b->mt != b->undo_mt)
			memtable_put(s, b->mt);
		b->mt = b->undo_mt;
		if (b->mt) {
			b->mt->n = b->undo_n;
			b->mt->bytes = b->undo_bytes;
		}
		b->last_seq = b->undo_last_seq;
	}
	s->seq = u->seq;
	s->pending_bytes = u->pending;
	s->stream_ts = u->stream_ts;
	s->seal_due = u->seal_due;
}

/* Copies a batch into its buckets' memtables (caller holds mu), all of
 * it or, when an allocation fails, none of it: a clean QL_ENOMEM. */
static int take_records(ql_store *s, const ql_record *recs, size_t n,
			const canon *c)
{
	int64_t mono = mono_us(), margin = stream_margin(s);
	take_state u = { ++s->take_gen, s->seq, s->pending_bytes, s->nraw,
			 s->stream_ts, s->seal_due, s->qtail };

	for (size_t i = 0; i < n; i++) {
		int64_t bs = bucket_of(s, recs[i].ts);
		qli_bucket *b = bucket_find(s, bs, 1);
		qli_memtable *mt;
		qli_rec *r;

		if (!b)
			goto nomem;
		if (b->undo_gen != u.gen) {
			b->undo_gen = u.gen;
			b->undo_mt = b->mt;
			b->undo_n = b->mt ? b->mt->n : 0;
			b->undo_bytes = b->mt ? b->mt->bytes : 0;
			b->undo_last_seq = b->last_seq;
		}
		b->last_append = mono;
		mt = b->mt;
		if (!mt) {
			int64_t due = bs + s->opt.bucket_width_us + margin;

			mt = memtable_get(s, b);
			if (!mt)
				goto nomem;
			b->mt = mt;
			if (due < s->seal_due)
				s->seal_due = due;
		}
		if (recs[i].ts > s->stream_ts)
			s->stream_ts = recs[i].ts;
		r = &mt->recs[mt->n];
		r->ts = recs[i].ts;
		r->req = arena_copy(mt, c[i].req, c[i].req_len);
		r->tgt = arena_copy(mt, c[i].tgt, c[i].tgt_len);
		if (!r->req || !r->tgt)
			goto nomem;
		r->req_len = c[i].req_len;
		r->tgt_len = c[i].tgt_len;
		memcpy(r->ip, recs[i].ip, 16);
		r->svc = recs[i].service;
		r->res = recs[i].result;
		mt->n++;
		mt->bytes += sizeof(*r) + c[i].req_len + c[i].tgt_len + 2;
		s->pending_bytes += sizeof(*r) + c[i].req_len + c[i].tgt_len +
				    2;
		s->seq++;
		b->last_seq = s->seq;
		if (mt->n == mt->cap)
			freeze(s, b);
	}
	if (stream_seal_check(s))
		pthread_cond_signal(&s->work);
	return 0;
nomem:
	take_undo(s, &u);
	return qli_err(QL_ENOMEM, "out of memory (taking %zu records)", n);
}

static uint64_t sync_request(ql_store *s);
static int sync_wait(ql_store *s, uint64_t target);

/* Compaction help: when this many sealed segments wait for the
 * background compactor (besides the one it is working on), an appending
 * thread compacts one itself, at its own priority, before it returns.
 * Only an import seals buckets faster than the compactor keeps up (live,
 * a bucket a day; the thread runs at nice 19), and until a segment is
 * compacted it has no index entries (readers scan it, see seal_bucket),
 * so the backlog would otherwise grow for the whole import, slow every
 * lookup meanwhile, and be left to the final ql_maintain. */
#define QLI_COMPACT_HELP 2

/* Caller holds mu (released while compacting). */
static void compact_help(ql_store *s)
{
	if (s->opt.compaction == QL_COMPACT_BACKGROUND &&
	    s->ncq >= QLI_COMPACT_HELP && !s->failed)
		qli_compact_step(s);
}

static int writable(ql_store *s)
{
	if (s->readonly)
		return qli_err(QL_EREADONLY, "store %s is open read-only",
			       s->path);
	if (s->failed)
		return qli_err(QL_EFAILED, "store %s: writer disabled by an "
			       "earlier error (%s); close and reopen it",
			       s->path, s->failmsg);
	return 0;
}

int ql_append(ql_store *s, const ql_record *recs, size_t n,
	      size_t *bad_index)
{
	char stackspace[16 * 2 * (QL_HANDLE_MAX + 1)];
	canon stackc[16], *c = stackc;
	char *space = stackspace;
	struct qli_scratch *heap = NULL;
	int64_t now;
	size_t i;
	int rc = 0;

	if (bad_index)
		*bad_index = 0;
	if (!s || (!recs && n))
		return qli_err(QL_EINVAL, "ql_append: store or records NULL");
	if (n == 0)
		return 0;
	if (s->readonly)
		return writable(s);
	if (n > 16) {
		size_t bytes = 0;

		for (i = 0; i < n; i++) {
			size_t a = recs[i].requester ?
					   strnlen(recs[i].requester, 4096) : 0;
			size_t b = recs[i].target ?
					   strnlen(recs[i].target, 4096) : 0;

			/* the canonical form is never longer than the input,
			 * and an overlong input is refused before copying */
			bytes += (a < QL_HANDLE_MAX ? a : QL_HANDLE_MAX) +
				 (b < QL_HANDLE_MAX ? b : QL_HANDLE_MAX) + 2;
		}
		bytes += n * sizeof(canon) + QL_HANDLE_MAX + 1;
		heap = atomic_exchange(&s->scratch, NULL);
		if (heap && heap->cap < bytes) {
			free(heap);
			heap = NULL;
		}
		if (!heap) {
			heap = malloc(sizeof(*heap) + bytes);
			if (!heap)
				return qli_err(QL_ENOMEM, "out of memory (%zu "
					       "records)", n);
			heap->cap = bytes;
		}
		c = (canon *)heap->data;
		space = (char *)(c + n);
	}
	now = qli_now(s);
	for (i = 0; i < n; i++) {
		rc = canon_one(s, &recs[i], now, &c[i], &space);
		if (rc) {
			if (bad_index)
				*bad_index = i;
			goto out;
		}
	}
	pthread_mutex_lock(&s->mu);
	rc = writable(s);
	if (!rc)
		rc = take_records(s, recs, n, c); /* all or nothing */
	if (!rc && s->opt.sync_mode == QL_SYNC_EVERY_APPEND) {
		/* sync_wait encodes what it can while it waits */
		rc = sync_wait(s, sync_request(s));
	} else if (!rc) {
		/* the writer is behind: encode a block here */
		if (s->nraw >= QLI_HELP_BACKLOG)
			steal_one(s);
		while (s->pending_bytes > s->opt.max_pending_bytes &&
		       !s->failed)
			if (!steal_one(s))
				pthread_cond_wait(&s->done, &s->mu);
	}
	if (!rc)
		compact_help(s);
	pthread_mutex_unlock(&s->mu);
out:
	if (heap && heap->cap <= SCRATCH_KEEP)
		heap = atomic_exchange(&s->scratch, heap);
	free(heap);
	return rc;
}

/* Asks the writer to make every record accepted so far durable; returns
 * the seq to wait for. Caller holds mu. */
static uint64_t sync_request(ql_store *s)
{
	uint64_t target = s->seq;

	if (target > s->sync_req)
		s->sync_req = target;
	pthread_cond_signal(&s->work);
	return target;
}

/* Group commit led by a waiting thread: when no other thread is on the
 * write path, the caller takes it, writes every frozen block (its own and
 * other appenders') and fdatasyncs, as the writer's cycle would. With one
 * appending thread this saves two hand-overs between threads per append
 * (to the writer and back), each a wake-up that costs as much as a small
 * fdatasync on a busy two-core machine. The index summaries of what it
 * wrote go to the writer thread (LMDB's write transaction is the
 * writer's). Caller holds mu; it is released while writing. Returns
 * whether it led. */
static int lead_sync(ql_store *s)
{
	qli_memtable *list;
	uint64_t upto;
	int rc;

	if (s->wbusy || s->failed || !s->thread_started)
		return 0;
	for (size_t i = 0; i < s->nbuckets; i++)
		freeze(s, s->buckets[i]);
	rc = snapshot_buckets(s);
	if (rc) {
		fail(s, rc);
		return 1;
	}
	s->wbusy = 1;
	list = s->wlist = s->qhead;
	s->qhead = s->qtail = NULL;
	upto = frozen_upto(s);
	pthread_mutex_unlock(&s->mu);

	rc = write_list(s, list);
	if (!rc)
		rc = sync_all(s);

	pthread_mutex_lock(&s->mu);
	/* a failure is recorded before the path is given back, and before
	 * drop_list, which may wait (releasing mu) for a block another
	 * thread encodes: no leader may sync past what this one lost */
	if (rc)
		fail(s, rc);
	wgive(s);
	if (rc) {
		s->pending_bytes -= drop_list(s, list);
	} else {
		if (upto > s->durable_seq)
			s->durable_seq = upto;
		ixq_push(s, list); /* summaries: the writer's */
	}
	pthread_cond_signal(&s->work); /* index work, or its turn */
	return 1;
}

/* Waits until every record up to target is durable, encoding unclaimed
 * blocks meanwhile, and writing them itself when no thread is writing
 * (lead_sync). Caller holds mu. */
static int sync_wait(ql_store *s, uint64_t target)
{
	int rc = writable(s);

	if (rc)
		return rc;
	s->nsyncwait++;
	while (s->durable_seq < target && !s->failed)
		if (!lead_sync(s) && !steal_one(s))
			pthread_cond_wait(&s->done, &s->mu);
	if (--s->nsyncwait == 0)
		pthread_cond_signal(&s->work); /* the writer's turn */
	if (s->durable_seq < target)
		rc = qli_err(s->failed, "%s", s->failmsg);
	return rc;
}

int ql_sync(ql_store *s)
{
	int rc;

	if (!s)
		return qli_err(QL_EINVAL, "ql_sync: store is NULL");
	pthread_mutex_lock(&s->mu);
	rc = writable(s);
	if (!rc)
		rc = sync_wait(s, sync_request(s));
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int ql_maintain(ql_store *s)
{
	uint64_t target;
	int rc;

	if (!s)
		return qli_err(QL_EINVAL, "ql_maintain: store is NULL");
	pthread_mutex_lock(&s->mu);
	rc = writable(s);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	target = ++s->maint_req;
	pthread_cond_signal(&s->work);
	while (s->maint_done < target && !s->failed)
		pthread_cond_wait(&s->done, &s->mu);
	if (!s->failed && s->opt.compaction != QL_COMPACT_OFF) {
		/* what was sealed is compacted, then indexed by the writer
		 * (one more pass, which commits the index) */
		qli_compact_drain(s);
		target = ++s->maint_req;
		pthread_cond_signal(&s->work);
		while (s->maint_done < target && !s->failed)
			pthread_cond_wait(&s->done, &s->mu);
	}
	if (s->failed)
		rc = qli_err(s->failed, "%s", s->failmsg);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int ql_reindex(ql_store *s)
{
	uint64_t target;
	int rc;

	if (!s)
		return qli_err(QL_EINVAL, "ql_reindex: store is NULL");
	pthread_mutex_lock(&s->mu);
	rc = writable(s);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	target = ++s->reindex_req;
	pthread_cond_signal(&s->work);
	while (s->reindex_done < target && !s->failed)
		pthread_cond_wait(&s->done, &s->mu);
	if (s->failed)
		rc = qli_err(s->failed, "%s", s->failmsg);
	else if (s->ix_err)
		rc = qli_err(s->ix_err, "reindex: %s", s->ix_errmsg);
	pthread_mutex_unlock(&s->mu);
	return rc;
}
