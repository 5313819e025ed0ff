/* testutil.h - helpers shared by the test programs (header-only). */
#ifndef QL_TESTUTIL_H
#define QL_TESTUTIL_H

#define _GNU_SOURCE
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "querylog.h"

#define T_SEC 1000000LL
#define T_MIN (60 * T_SEC)
#define T_HOUR (60 * T_MIN)
#define T_DAY (24 * T_HOUR)
/* 2026-11-01T00:00:00Z */
#define T_EPOCH (1793491200LL * T_SEC)

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static inline void t_rmrf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh scratch directory under TMPDIR (or /tmp); returns a static
 * path to a not-yet-existing store directory inside it. */
static inline const char *t_tmpdir(char *buf, size_t len)
{
	const char *base = getenv("TMPDIR");

	snprintf(buf, len, "%s/qltest.XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(buf)) {
		perror("mkdtemp");
		abort();
	}
	strncat(buf, "/store", len - strlen(buf) - 1);
	return buf;
}

static inline void t_cleanup(const char *store)
{
	char parent[512];
	char *slash;

	snprintf(parent, sizeof(parent), "%s", store);
	slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	t_rmrf(parent);
}

/* A settable clock for ql_options.clock. The store calls it from its
 * own threads at any time, so it is read and set atomically. */
static inline int64_t t_clock(void *ctx)
{
	return __atomic_load_n((int64_t *)ctx, __ATOMIC_RELAXED);
}

static inline void t_setclock(int64_t *clock, int64_t v)
{
	__atomic_store_n(clock, v, __ATOMIC_RELAXED);
}

static inline uint64_t t_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A test record with handles kept in caller buffers. */
typedef struct t_rec {
	ql_record r;
	char req[32], tgt[48];
} t_rec;

static inline void t_make(t_rec *t, uint64_t *rng, int64_t ts, unsigned nh)
{
	uint64_t a = t_rand(rng) % nh, b = t_rand(rng) % nh;

	snprintf(t->req, sizeof(t->req), "+1415555%04u", (unsigned)a);
	if (b % 5 == 0)
		snprintf(t->tgt, sizeof(t->tgt), "user%u@example.com",
			 (unsigned)b);
	else
		snprintf(t->tgt, sizeof(t->tgt), "+4477009%05u", (unsigned)b);
	memset(&t->r, 0, sizeof(t->r));
	t->r.ts = ts;
	t->r.requester = t->req;
	t->r.target = t->tgt;
	if (a % 3) {
		t->r.ip[10] = t->r.ip[11] = 0xff;
		t->r.ip[12] = 10;
		t->r.ip[13] = (uint8_t)(a >> 8);
		t->r.ip[14] = (uint8_t)a;
		t->r.ip[15] = (uint8_t)(b & 7);
	} else {
		t->r.ip[0] = 0x26;
		t->r.ip[1] = 0x01;
		t->r.ip[7] = (uint8_t)a;
		t->r.ip[15] = (uint8_t)b;
	}
	t->r.service = (uint8_t)(b % 5 == 1);
	t->r.result = (uint8_t)(a % 4 != 0);
}

/* Hash of a record's content, for multiset comparisons. */
static inline uint64_t t_hash(const ql_record *r)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)r->ts;
	const char *p;

	for (p = r->requester; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	h = (h ^ '|') * 1099511628211ULL;
	for (p = r->target; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	for (int i = 0; i < 16; i++)
		h = (h ^ r->ip[i]) * 1099511628211ULL;
	h = (h ^ r->service) * 1099511628211ULL;
	h = (h ^ r->result) * 1099511628211ULL;
	h ^= h >> 29;
	return h * 0x94d049bb133111ebULL;
}

#endif
