/* store_int.h - the ql_store structure, shared by store.c and cursor.c. */
#ifndef QL_STORE_INT_H
#define QL_STORE_INT_H

#include "codec.h"
#include "index.h"
#include "querylog.h"
#include "segment.h"

#include <pthread.h>
#include <stdatomic.h>

#define QLI_META_FILE "QLSTORE"
#define QLI_LOCK_FILE "LOCK"
#define QLI_US_PER_S 1000000LL
#define QLI_US_PER_DAY (86400LL * QLI_US_PER_S)

/* A frozen memtable's block (qli_memtable.state, under mu). */
#define QLI_MT_RAW 0     /* not encoded; any thread may claim it */
#define QLI_MT_OWNED 1   /* a thread is encoding it */
#define QLI_MT_ENCODED 2 /* frame and hdr hold the block */

/* Records accepted but not yet written, for one bucket: one block's worth
 * at most. Handles are copied into arena chunks that never move, so
 * qli_rec pointers stay valid until the memtable is recycled. Written
 * memtables are kept for reuse (a few), with their arrays, chunks and
 * frame buffer: fresh memory costs a page fault per page. */
typedef struct qli_memtable {
	struct qli_memtable *next;  /* in the write queue, or spare */
	struct qli_bucket *bucket;
	qli_rec *recs;
	uint32_t n, cap;
	struct qli_chunk *chunks;   /* in use, newest first */
	struct qli_chunk *spare;    /* chunks of an earlier use */
	size_t bytes;       /* accounted against max_pending_bytes */
	uint64_t first_seq; /* seq of its first record */
	int state;          /* QLI_MT_* */
	qli_buf frame;      /* the encoded block (header + payload) */
	qli_frame_hdr hdr;
	qli_block_keys keys; /* its distinct keys, for the index summary */
	qli_segfile *sf;    /* writer: written as block blk of sf */
	uint32_t blk;
} qli_memtable;

#define QLI_SPARE_MT 2  /* written memtables kept for reuse */
#define QLI_ENC_POOL 4  /* encoders kept for reuse */
/* An appending thread that does not wait for a sync encodes a block
 * itself once this many wait unclaimed (the writer is behind). */
#define QLI_HELP_BACKLOG 2
/* Written blocks whose index summaries may wait while syncs are asked
 * for (writer_main); beyond this the writer indexes before syncing. */
#define QLI_IX_DEFER 16

/* A time bucket the writer knows of. */
typedef struct qli_bucket {
	int64_t start;
	uint32_t next_gen;    /* generation for the next segment file */
	qli_segfile *active;  /* open, unsealed segment (writer thread) */
	int dirty;            /* active has unsynced writes */
	qli_memtable *mt;     /* collecting records, or NULL */
	int sealing;          /* due: maintenance seals it */
	int64_t last_append;  /* monotonic us of the last record taken */
	uint64_t last_seq;    /* store seq after its last record taken */
	qli_segacc *acc;      /* index keys of active, for its seal */
	int ix_dirty;         /* active's directory entry is stale */
	/* as the append that is taking records found it (take_records):
	 * restored if that append fails */
	uint64_t undo_gen;
	qli_memtable *undo_mt;
	uint32_t undo_n;
	size_t undo_bytes;
	uint64_t undo_last_seq;
} qli_bucket;

/* Compact segments' dictionary directories, kept across cursors
 * (cursor.c): a .qlc file never changes once it has its name. */
struct qli_dcache;
void qli_dcache_free(struct qli_dcache *c);

struct ql_store {
	char *path;
	int dirfd, segdir, lockfd;
	int readonly;
	ql_options opt;

	pthread_mutex_t mu;
	pthread_cond_t work;   /* writer thread: something to do */
	pthread_cond_t done;   /* callers: a cycle finished */
	pthread_t thread;
	int thread_started;
	int stop;
	int final_maint;       /* the closing maintenance pass has run */

	qli_bucket **buckets;
	size_t nbuckets, capbuckets;
	qli_bucket *last_bucket; /* cache for the append path */
	qli_memtable *qhead, *qtail; /* frozen, waiting for the writer */
	qli_memtable *wlist;    /* frozen, taken by the writer's cycle */
	/* The write path (queue to files to fdatasync, and every field the
	 * writer thread owns) belongs to one thread at a time: the writer's
	 * cycle, or a thread waiting for a sync that writes and syncs
	 * itself (lead_sync in store.c) */
	int wbusy;
	size_t nsyncwait;       /* threads in sync_wait */
	/* written, their index summaries not staged yet (writer_main) */
	qli_memtable *ixq, *ixq_tail;
	size_t nixq;
	struct qli_install *wsealed; /* writer: sealed, index entry to write */
	size_t nraw;            /* unclaimed memtables in those lists */
	size_t pending_bytes;
	pthread_cond_t encoded; /* a memtable was encoded by a thread */
	qli_memtable *spare_mt; /* written, kept for reuse */
	size_t nspare_mt;
	qli_encoder *encpool[QLI_ENC_POOL]; /* for every encoding thread */
	size_t nenc;
	/* ql_append's scratch for a batch's canonical handles, kept for the
	 * next call (taken and put back without the mutex) */
	_Atomic(struct qli_scratch *) scratch;

	struct qli_dcache *dcache; /* cursor.c */
	uint64_t seq;          /* records accepted */
	uint64_t take_gen;     /* appends that took records (undo marks) */
	uint64_t sync_req;     /* highest seq a caller wants durable */
	uint64_t durable_seq;  /* all records <= this are durable */
	uint64_t maint_req, maint_done;
	int64_t next_maint;    /* monotonic us of the next periodic run */
	/* sealing by the records' own times (plan_seals): the newest
	 * record time taken, the earliest time at which an open bucket
	 * may be due by it, and s->seq at the last check */
	int64_t stream_ts, seal_due;
	uint64_t seal_check_seq;
	int dir_dirty;         /* segdir has unsynced entries */

	int failed;            /* sticky error of the writer, or 0 */
	char failmsg[512];

	/* writer thread only */
	qli_bucket **wb;       /* snapshot of buckets, taken under mu each
				* cycle: appenders may grow the array */
	size_t nwb, capwb;

	uint64_t recovered_segments, recovered_bytes;

	/* the index: derived, committed about once a second and at seals;
	 * a failure stops indexing for this session (readers then scan the
	 * blocks it does not cover; the next open rebuilds) */
	qli_index *ix;
	qli_summary sum;        /* writer thread scratch */
	int64_t ix_last_commit; /* monotonic microseconds */
	int ix_err;
	char ix_errmsg[256];
	uint64_t reindex_req, reindex_done;
	uint64_t reindexed_segments; /* by the last open or ql_reindex */
	/* compaction (compact.c): names of sealed .qls segments to
	 * rewrite, under mu; finished ones wait in inst for the writer
	 * thread to index them */
	char (*cq)[QLI_SEG_NAME_MAX];
	size_t ncq, capcq;
	int cbusy, cstop, cthread_started;
	pthread_t cthread;
	pthread_cond_t cwork;
	struct qli_install *inst;
	uint64_t compacted, compact_fail;
	char compact_errmsg[256];
	int retention_given;   /* the caller set retention_us */
	int audit_err;         /* a seal could not be audited (counted) */
};

int64_t qli_now(const ql_store *s);

/* compact.c */
/* Index work for one sealed segment, done by the writer: sf's entries are
 * replaced by those of acc; or, with drop, removed (a .qls queued for
 * compaction: its compact form brings its own, and until then readers
 * scan it); or, with neither, built from the file (a .qls whose
 * compaction failed). */
typedef struct qli_install {
	struct qli_install *next;
	qli_segfile *sf;  /* the segment (closed unless built from the file) */
	qli_segacc *acc;  /* its index keys, or NULL */
	int drop;
} qli_install;
int qli_compact_one(ql_store *s, const char *name, qli_segfile **out,
		    qli_segacc **acc);
int qli_compact_enqueue(ql_store *s, const char *name); /* mu held */
int qli_compact_queued(const ql_store *s, const char *name); /* mu held */
int qli_compact_step(ql_store *s);                      /* mu held */
void qli_compact_drain(ql_store *s);                    /* mu held */
int qli_compact_start(ql_store *s);
void qli_compact_stop(ql_store *s);
/* The index keys of a compact segment's blocks, from the file. */
int qli_compact_acc(const qli_segfile *sf, qli_segacc *acc);

/* maint.c: which segments readers may see (not past due, or held), and
 * the audit event of a seal. */
struct qli_holdset;
int qli_visible_begin(ql_store *s, struct qli_holdset *set);
int qli_visible(ql_store *s, const struct qli_holdset *set,
		int64_t bucket_start, int64_t now);
int qli_audit_sealed(ql_store *s, const qli_segfile *sf);

/* Lists segment names in the seg directory, sorted by (bucket, gen); of
 * X-gN.qls and X-gN.qlc only the .qlc is listed (see shadow). */
typedef struct qli_seglist {
	char (*names)[QLI_SEG_NAME_MAX];
	int64_t *start;
	uint32_t *gen;
	size_t n, cap;
	/* superseded X-gN.qls files whose X-gN.qlc exists (a crash during
	 * a compaction's swap); the writer's open unlinks them */
	char shadow[8][QLI_SEG_NAME_MAX];
	size_t nshadow;
} qli_seglist;
int qli_seglist_read(int segdir, qli_seglist *out);
void qli_seglist_free(qli_seglist *l);

/* Parses the text of QLSTORE (docs/FORMAT.md §3; only its first
 * QLI_META_MAX bytes count): *width, and *retention (0 when the file has
 * none). 0, or QL_ECORRUPT / QL_EVERSION with the message naming path.
 * Apart from the file read so that fuzz/fuzz_catalog.c can drive it. */
#define QLI_META_MAX 255
int qli_meta_parse(const char *text, size_t len, const char *path,
		   int64_t *width, int64_t *retention);

#endif
