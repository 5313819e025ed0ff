/* zref.c - the physical reference: what zstd alone makes of the raw
 * records, serialised row by row, with no index and no columnar layout.
 *
 * Two serialisations: "packed" (ts 8 bytes little-endian, requester and
 * target as length byte + bytes, ip 16, service, result: the record with
 * nothing added) and NDJSON (the text form of WORKLOAD.md, as qlgen writes
 * it). Each goes through one streaming zstd frame at level 3 (what
 * querylog and RocksDB use) over the whole stream. The packed form also
 * goes through level 19 over the first lim19 records only: level 19 runs
 * at about 1 MB/s here (NDJSON at 19 would double that cost and says
 * nothing the packed form does not), and with its 8 MiB window the ratio
 * of a prefix larger than the window is close to that of the whole.
 */
#define _GNU_SOURCE
#include "bench.h"

#include "querylog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define STAGE (4u << 20)

int zref_init(struct zref *z, uint64_t lim19)
{
	static const int lvl[3] = { 3, 19, 3 };

	memset(z, 0, sizeof(*z));
	z->lim19 = lim19;
	z->ocap = ZSTD_CStreamOutSize();
	z->obuf = malloc(z->ocap);
	for (int k = 0; k < 2; k++)
		z->stage[k] = malloc(STAGE);
	if (!z->obuf || !z->stage[0] || !z->stage[1])
		return -1;
	for (int i = 0; i < 3; i++) {
		z->cc[i] = ZSTD_createCCtx();
		if (!z->cc[i] ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(z->cc[i],
							ZSTD_c_compressionLevel,
							lvl[i])))
			return -1;
	}
	return 0;
}

/* Feeds in[0..len) to context i; mode ZSTD_e_end closes its frame. */
static void feed(struct zref *z, int i, const char *in, size_t len,
		 ZSTD_EndDirective mode)
{
	ZSTD_inBuffer ib = { in, len, 0 };
	size_t left;

	do {
		ZSTD_outBuffer ob = { z->obuf, z->ocap, 0 };

		left = ZSTD_compressStream2(z->cc[i], &ob, &ib, mode);
		if (ZSTD_isError(left)) {
			z->err = 1;
			return;
		}
		z->z[i] += ob.pos;
	} while (mode == ZSTD_e_end ? left != 0 : ib.pos < ib.size);
}

/* Level 19 sees the first lim19 records only. */
static int want19(const struct zref *z)
{
	return z->n <= z->lim19;
}

static void flush_stage(struct zref *z, int k)
{
	if (!z->slen[k])
		return;
	feed(z, 2 * k, z->stage[k], z->slen[k], ZSTD_e_continue);
	if (want19(z) && z->cc[2 * k + 1]) {
		feed(z, 2 * k + 1, z->stage[k], z->slen[k], ZSTD_e_continue);
		z->raw19[k] += z->slen[k];
	}
	z->raw[k] += z->slen[k];
	z->slen[k] = 0;
}

/* Closes the level-19 frames once their prefix is complete. */
static void end19(struct zref *z)
{
	for (int k = 0; k < 2; k++) {
		flush_stage(z, k);
		if (z->cc[2 * k + 1]) {
			feed(z, 2 * k + 1, "", 0, ZSTD_e_end);
			ZSTD_freeCCtx(z->cc[2 * k + 1]);
			z->cc[2 * k + 1] = NULL;
		}
	}
}

void zref_add(struct zref *z, const wl_record *r)
{
	char line[WL_NDJSON_MAX], *p;
	size_t rl = strlen(r->requester), tl = strlen(r->target);

	if (z->n == z->lim19)
		end19(z);
	z->n++;

	/* packed */
	if (z->slen[0] + 8 + 2 + rl + tl + 18 > STAGE)
		flush_stage(z, 0);
	p = z->stage[0] + z->slen[0];
	for (int i = 0; i < 8; i++)
		*p++ = (char)((uint64_t)r->ts >> (8 * i));
	*p++ = (char)rl;
	memcpy(p, r->requester, rl);
	p += rl;
	*p++ = (char)tl;
	memcpy(p, r->target, tl);
	p += tl;
	memcpy(p, r->ip, 16);
	p += 16;
	*p++ = (char)r->service;
	*p++ = (char)r->result;
	z->slen[0] = (size_t)(p - z->stage[0]);

	/* NDJSON: exactly the lines qlgen writes */
	p = line + wl_ndjson(line, r);
	if (z->slen[1] + (size_t)(p - line) > STAGE)
		flush_stage(z, 1);
	memcpy(z->stage[1] + z->slen[1], line, (size_t)(p - line));
	z->slen[1] += (size_t)(p - line);
}

int zref_finish(struct zref *z)
{
	/* a stream shorter than lim19 ends its level-19 frames here */
	end19(z);
	for (int k = 0; k < 2; k++) {
		flush_stage(z, k);
		feed(z, 2 * k, "", 0, ZSTD_e_end);
	}
	for (int i = 0; i < 4; i++) {
		ZSTD_freeCCtx(z->cc[i]);
		z->cc[i] = NULL;
	}
	free(z->obuf);
	free(z->stage[0]);
	free(z->stage[1]);
	z->obuf = z->stage[0] = z->stage[1] = NULL;
	return z->err ? -1 : 0;
}
