/* workload.h - seeded generator of the identity-lookup query log.
 *
 * Implements the record stream specified in WORKLOAD.md, a pure function
 * of (seed, n, days, end_us): the same configuration yields the same
 * records, byte for byte, on every run, and on every machine whose doubles
 * are IEEE without excess precision or fused multiply-add (see the note
 * in workload.c). Nothing here calls libm or libc rand.
 *
 * Memory is O(U + minutes in the span); contact lists are not stored but
 * re-derived from a hash of (seed, account, slot) on every draw.
 *
 * A wl_gen is not thread-safe for wl_next; the const functions may be
 * called from several threads at once.
 */
#ifndef QL_BENCH_WORKLOAD_H
#define QL_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Default end of the span: 2026-11-01T00:00:00Z. */
#define WL_DEFAULT_END_US INT64_C(1793491200000000)

/* Longest span accepted, in days (the rate table is per minute). */
#define WL_MAX_DAYS 3660u

typedef struct wl_config {
	uint64_t seed;
	uint64_t n;      /* records in the stream (0 gives an empty stream) */
	unsigned days;   /* span length in days, 1 .. WL_MAX_DAYS */
	int64_t end_us;  /* span end (exclusive); 0 = WL_DEFAULT_END_US */
} wl_config;

/* One record. wl_next zeroes the whole record (padding included) before
 * filling it, so strings are NUL-terminated and zero-padded and records
 * it wrote compare with memcmp. ip is IPv4-mapped for IPv4. */
typedef struct wl_record {
	int64_t ts;            /* microseconds since the epoch, UTC */
	char requester[64];
	char target[64];
	uint8_t ip[16];
	uint8_t service;       /* 0 = messages, 1 = facetime */
	uint8_t result;        /* 1 = target is in the population */
} wl_record;

typedef struct wl_gen wl_gen;

/* NULL on a bad configuration (cfg NULL, days 0 or too large, a span that
 * overflows int64, a population beyond 2^30) or out of memory. */
wl_gen *wl_new(const wl_config *cfg);

/* 1 = a record written to *out, 0 = the stream has ended. */
int wl_next(wl_gen *g, wl_record *out);

/* NULL-safe. */
void wl_free(wl_gen *g);

/* U, the number of accounts. Accounts are numbered 0 .. U-1. */
uint32_t wl_population(const wl_gen *g);

/* Handle of an account ("" for an out-of-range account). */
void wl_account_handle(const wl_gen *g, uint32_t account, char out[64]);

/* Benchmark query samples. Each is a pure function of the configuration
 * and k (not of calls made before), drawn from its own seeded stream. If k
 * exceeds what exists (k > U accounts, k > P pool addresses), the surplus
 * entries repeat earlier ones. */

/* k distinct accounts drawn by the popularity Zipf law (s = 1.1), so the
 * heavy hitters are included. */
void wl_sample_popular(const wl_gen *g, uint32_t *accounts, unsigned k);

/* k distinct accounts, uniform. */
void wl_sample_random(const wl_gen *g, uint32_t *accounts, unsigned k);

/* k distinct addresses of the IP pool, uniform over the pool. */
void wl_sample_ips(const wl_gen *g, uint8_t (*ips)[16], unsigned k);

/* k CIDR prefixes taken from uniform pool addresses: /24 for IPv4
 * (prefix_len 120 over the mapped form), /48 for IPv6; host bits zeroed,
 * so the range is net .. net with the host bits set. Distinct while the
 * pool has enough prefixes (checked by a scan: O(k^2), fine for the
 * dozens the benchmark asks for). */
void wl_sample_cidrs(const wl_gen *g, uint8_t (*net)[16],
		     unsigned *prefix_len, unsigned k);

/* k one-hour windows [t0, t0 + 3600000000) placed uniformly so that they
 * lie inside the span. */
void wl_sample_windows(const wl_gen *g, int64_t *t0, unsigned k);

/* A 64-bit hash of every field of r (strings up to their NUL), the same on
 * every host, for order-independent sums over query answers. */
/* One record as a line of NDJSON (ts as integer microseconds, ip as a
 * dotted quad for IPv4-mapped addresses, RFC 5952 otherwise), the form
 * `logtool import` reads; out must hold WL_NDJSON_MAX bytes. Returns the
 * length, newline included (no NUL). */
#define WL_NDJSON_MAX 1024
/* Whether ip is IPv4-mapped (::ffff:a.b.c.d). */
int wl_ip_is_v4(const uint8_t *ip);
size_t wl_ndjson(char *out, const wl_record *r);

uint64_t wl_row_hash(const wl_record *r);

#endif
