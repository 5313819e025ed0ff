/* eng_sqlite.c - SQLite as a benchmarked engine.
 *
 * Configured as a competent user would for an append-mostly log: WAL,
 * synchronous=NORMAL (a commit is durable against a process crash, fsync
 * at checkpoints), a 64 MiB page cache, the WAL file truncated back to
 * 64 MiB after checkpoints, one table with indexes on (requester, ts),
 * (target, ts), (ip, ts) and (ts) created up front (a live log cannot
 * build them afterwards), 10,000-row transactions through one prepared
 * INSERT, and DELETE for expiry.
 *
 * The handle query is one statement, requester = ?1 OR target = ?1, which
 * SQLite runs as a MULTI-INDEX OR over the two indexes with a rowid set,
 * so a record is returned once even if both columns matched. IPs are
 * BLOBs of 16 bytes: BLOB comparison is memcmp, so a CIDR prefix is the
 * byte range BETWEEN lo AND hi on the (ip, ts) index.
 */
#define _GNU_SOURCE
#include "engine.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct engine {
	sqlite3 *db;
	sqlite3_stmt *ins, *qh, *qip, *qwin, *del;
};

#define COLS "ts, requester, target, ip, service, result"

static int serr(struct engine *e, const char *what)
{
	bench_seterr("%s: %s", what, e->db ? sqlite3_errmsg(e->db) : "?");
	return -1;
}

static int exec(struct engine *e, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(e->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		bench_seterr("%s: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int prep(struct engine *e, sqlite3_stmt **st, const char *sql)
{
	if (sqlite3_prepare_v2(e->db, sql, -1, st, NULL) != SQLITE_OK)
		return serr(e, sql);
	return 0;
}

/* Prints the plan once to stderr, so a run's log shows which index each
 * query used (a bad plan would explain a bad figure). */
static void show_plan(struct engine *e, const char *name, const char *sql)
{
	char buf[1024];
	sqlite3_stmt *st;

	snprintf(buf, sizeof(buf), "EXPLAIN QUERY PLAN %s", sql);
	if (sqlite3_prepare_v2(e->db, buf, -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW)
		fprintf(stderr, "[sqlite] plan %s: %s\n", name,
			(const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
}

static const char *sq_version(void)
{
	return sqlite3_libversion();
}

static const char sql_handle[] =
	"SELECT " COLS " FROM q WHERE requester = ?1 OR target = ?1";
static const char sql_ip[] =
	"SELECT " COLS " FROM q WHERE ip BETWEEN ?1 AND ?2";
static const char sql_win[] =
	"SELECT " COLS " FROM q WHERE ts >= ?1 AND ts < ?2";

static void sq_close(struct engine *e)
{
	if (!e)
		return;
	sqlite3_finalize(e->ins);
	sqlite3_finalize(e->qh);
	sqlite3_finalize(e->qip);
	sqlite3_finalize(e->qwin);
	sqlite3_finalize(e->del);
	sqlite3_close(e->db);
	free(e);
}

static int sq_open(struct engine **out, const char *dir,
		   const struct eng_conf *c)
{
	struct engine *e = calloc(1, sizeof(*e));
	char path[4096];

	if (!e) {
		bench_seterr("out of memory");
		return -1;
	}
	if (mkdir_p(dir))
		goto fail;
	snprintf(path, sizeof(path), "%s/q.db", dir);
	if (sqlite3_open_v2(path, &e->db, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		serr(e, path);
		goto fail;
	}
	if (exec(e, "PRAGMA journal_mode=WAL") ||
	    exec(e, "PRAGMA synchronous=NORMAL") ||
	    exec(e, "PRAGMA cache_size=-65536") ||
	    exec(e, "PRAGMA journal_size_limit=67108864") ||
	    exec(e, "CREATE TABLE q(ts INTEGER NOT NULL, "
		    "requester TEXT NOT NULL, target TEXT NOT NULL, "
		    "ip BLOB NOT NULL, service INTEGER NOT NULL, "
		    "result INTEGER NOT NULL)") ||
	    exec(e, "CREATE INDEX q_req ON q(requester, ts)") ||
	    exec(e, "CREATE INDEX q_tgt ON q(target, ts)") ||
	    exec(e, "CREATE INDEX q_ip ON q(ip, ts)") ||
	    exec(e, "CREATE INDEX q_ts ON q(ts)"))
		goto fail;
	if (prep(e, &e->ins, "INSERT INTO q(" COLS ") VALUES(?,?,?,?,?,?)") ||
	    prep(e, &e->qh, sql_handle) || prep(e, &e->qip, sql_ip) ||
	    prep(e, &e->qwin, sql_win) ||
	    prep(e, &e->del, "DELETE FROM q WHERE ts < ?1"))
		goto fail;
	show_plan(e, "handle", sql_handle);
	show_plan(e, "ip", sql_ip);
	show_plan(e, "window", sql_win);
	*out = e;
	return 0;
fail:
	sq_close(e);
	return -1;
}

static int sq_ingest(struct engine *e, const wl_record *r, size_t n)
{
	sqlite3_stmt *st = e->ins;

	if (exec(e, "BEGIN"))
		return -1;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, r[i].ts);
		sqlite3_bind_text(st, 2, r[i].requester, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r[i].target, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, r[i].ip, 16, SQLITE_STATIC);
		sqlite3_bind_int(st, 5, r[i].service);
		sqlite3_bind_int(st, 6, r[i].result);
		if (sqlite3_step(st) != SQLITE_DONE) {
			serr(e, "INSERT");
			sqlite3_reset(st);
			exec(e, "ROLLBACK");
			return -1;
		}
		sqlite3_reset(st);
	}
	return exec(e, "COMMIT");
}

static int sq_finish(struct engine *e)
{
	/* Copy the WAL into the database and truncate it: the on-disk size
	 * is then the database's, not a transient log's. */
	return exec(e, "PRAGMA wal_checkpoint(TRUNCATE)");
}

static int drain(struct engine *e, sqlite3_stmt *st, struct qsum *out)
{
	wl_record w;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *ip = sqlite3_column_blob(st, 3);

		w.ts = sqlite3_column_int64(st, 0);
		if (put_field(w.requester,
			      (const char *)sqlite3_column_text(st, 1),
			      (size_t)sqlite3_column_bytes(st, 1)) ||
		    put_field(w.target,
			      (const char *)sqlite3_column_text(st, 2),
			      (size_t)sqlite3_column_bytes(st, 2)))
			goto fail;
		if (sqlite3_column_bytes(st, 3) != 16 || !ip) {
			bench_seterr("ip column is not 16 bytes");
			goto fail;
		}
		memcpy(w.ip, ip, 16);
		w.service = (uint8_t)sqlite3_column_int(st, 4);
		w.result = (uint8_t)sqlite3_column_int(st, 5);
		qsum_add(out, &w);
	}
	if (rc != SQLITE_DONE) {
		serr(e, "SELECT");
		goto fail;
	}
	sqlite3_reset(st);
	return 0;
fail:
	sqlite3_reset(st);
	return -1;
}

static int sq_handle(struct engine *e, const char *h, struct qsum *out)
{
	sqlite3_bind_text(e->qh, 1, h, -1, SQLITE_STATIC);
	return drain(e, e->qh, out);
}

static int sq_ip(struct engine *e, const uint8_t net[16], unsigned plen,
		 struct qsum *out)
{
	uint8_t lo[16], hi[16];

	ip_range(net, plen, lo, hi);
	sqlite3_bind_blob(e->qip, 1, lo, 16, SQLITE_STATIC);
	sqlite3_bind_blob(e->qip, 2, hi, 16, SQLITE_STATIC);
	return drain(e, e->qip, out);
}

static int sq_window(struct engine *e, int64_t t0, int64_t t1,
		     struct qsum *out)
{
	sqlite3_bind_int64(e->qwin, 1, t0);
	sqlite3_bind_int64(e->qwin, 2, t1);
	return drain(e, e->qwin, out);
}

static int sq_expire(struct engine *e, int64_t before)
{
	int rc;

	sqlite3_bind_int64(e->del, 1, before);
	rc = sqlite3_step(e->del);
	sqlite3_reset(e->del);
	if (rc != SQLITE_DONE)
		return serr(e, "DELETE");
	/* The deleted pages go to the free list (reused by later inserts;
	 * the file does not shrink without VACUUM); the checkpoint moves
	 * the DELETE's WAL into the database, which is part of its cost. */
	return exec(e, "PRAGMA wal_checkpoint(TRUNCATE)");
}

const struct engine_ops eng_sqlite = {
	.name = "sqlite",
	.batch = 10000,
	.config = "WAL, synchronous=NORMAL, cache_size 64 MiB, "
		  "journal_size_limit 64 MiB, indexes (requester,ts) "
		  "(target,ts) (ip,ts) (ts), 10000-row transactions, "
		  "checkpoint(TRUNCATE) at end, DELETE for expiry",
	.version = sq_version,
	.open = sq_open,
	.ingest = sq_ingest,
	.finish = sq_finish,
	.q_handle = sq_handle,
	.q_ip = sq_ip,
	.q_window = sq_window,
	.expire = sq_expire,
	.close = sq_close,
};
