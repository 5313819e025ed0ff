/* workload.c - seeded generator of the identity-lookup query log.
 *
 * The stream follows WORKLOAD.md literally; where it leaves a detail open
 * the choice is noted at the place it is made. Layout of the work:
 *
 *   wl_new   builds everything that is O(U): account handles (unique, kept
 *            in a hash set so random "unknown" phones can avoid them), the
 *            IP pool, each account's home IPs, the two Zipf laws as alias
 *            tables over ranks already mapped through their random
 *            permutations, one alias table per contact-list length, and
 *            the cumulative per-minute rate curve.
 *   wl_next  hands out records made in O(1) each, in batches (see
 *            fill_batch): requester, position j, contact j (re-derived
 *            from hash(seed, account, j)), IP, service, time.
 *
 * Independent parts draw from independent streams (xoshiro256** seeded by
 * splitmix64 from seed and a per-part tag), so e.g. the samples do not
 * depend on how many records were generated before.
 *
 * Floating point is only + - * / (no libm): x^0.1 is a Newton root and the
 * cosine a Taylor series after exact integer range reduction, so the stream
 * is bit-identical wherever doubles are IEEE without excess precision and
 * a * b + c is not fused: GCC fuses nothing in ISO mode (-std=c11; with
 * -std=gnu11 on an FMA target add -ffp-contract=off), clang is told below.
 */
#include "workload.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <stdlib.h>
#include <string.h>

#define US_PER_S INT64_C(1000000)
#define US_PER_MIN (60 * US_PER_S)
#define US_PER_HOUR (3600 * US_PER_S)
#define US_PER_DAY (86400 * US_PER_S)

#define MIN_POP 10000u
#define MAX_POP (1u << 30)
#define MIN_CONTACTS 20u
#define MAX_CONTACTS 200u
#define V4_BLOCKS 300u
#define V4_SUBNETS 16u           /* consecutive /24s used in a /16 */
#define V6_PREFIXES 300u
#define LATE_MAX_US 300000000u   /* 5 minutes */
#define SAMPLE_TRIES 4096u       /* rejection draws before a sweep */
#define CIDR_TRIES 256u          /* draws for a new prefix, then a repeat */

/* Stream tags: one independent stream (or hash key) per purpose. */
enum {
	TAG_HANDLES = 1,
	TAG_POOL,
	TAG_HOME,
	TAG_PERM,
	TAG_RECORDS,
	TAG_CONTACT,
	TAG_NCONTACTS,
	TAG_S_POPULAR,
	TAG_S_RANDOM,
	TAG_S_IPS,
	TAG_S_CIDRS,
	TAG_S_WINDOWS,
};

/* ---------------------------------------------------------------------- */
/* Random numbers                                                          */
/* ---------------------------------------------------------------------- */

#define GOLDEN UINT64_C(0x9e3779b97f4a7c15)

/* splitmix64's output function: a bijective 64-bit mixer. */
static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static inline uint64_t sm_next(uint64_t *state)
{
	return mix64(*state += GOLDEN);
}

typedef struct xo {
	uint64_t s[4];
} xo;

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** 1.0 (Blackman & Vigna). */
static inline uint64_t xo_next(xo *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Per-purpose splitmix64 starting point: seed salted by the tag. */
static uint64_t tag_key(uint64_t seed, unsigned tag)
{
	return seed ^ mix64(GOLDEN * tag);
}

static void xo_seed(xo *r, uint64_t seed, unsigned tag)
{
	uint64_t sm = tag_key(seed, tag);

	for (int i = 0; i < 4; i++)
		r->s[i] = sm_next(&sm);
}

/* Uniform in [0, n) from the high 32 bits of x (bias below n / 2^32). */
static inline uint32_t bound32(uint64_t x, uint32_t n)
{
	return (uint32_t)(((x >> 32) * n) >> 32);
}

/* Uniform double in [0, 1). */
static inline double unit(uint64_t x)
{
	return (double)(x >> 11) * 0x1.0p-53;
}

/* ---------------------------------------------------------------------- */
/* Alias tables (Vose)                                                     */
/* ---------------------------------------------------------------------- */

/* Slot i of an n-slot table is picked by the high 32 bits of a draw; it
 * yields hit if the low 32 bits are below thr, else miss. Values are
 * stored already mapped (account numbers, positions), so a draw touches
 * one 12-byte entry. */
typedef struct alias {
	uint32_t thr;
	uint32_t hit;
	uint32_t miss;
} alias;

static inline uint32_t alias_draw(const alias *t, uint32_t n, uint64_t x)
{
	const alias *e = &t[bound32(x, n)];

	return (uint32_t)x < e->thr ? e->hit : e->miss;
}

/* Builds t[0..n) for weights w[0..n); slot i stands for val[i] (or i if
 * val is NULL). Returns -1 when out of memory. */
static int alias_build(alias *t, const double *w, uint32_t n,
		       const uint32_t *val)
{
	double *p = malloc(n * sizeof *p);
	uint32_t *small = malloc(n * sizeof *small);
	uint32_t *large = malloc(n * sizeof *large);
	uint32_t ns = 0, nl = 0, i;
	double sum = 0;

	if (!p || !small || !large) {
		free(p);
		free(small);
		free(large);
		return -1;
	}
	for (i = 0; i < n; i++)
		sum += w[i];
	for (i = 0; i < n; i++) {
		p[i] = w[i] * n / sum;
		if (p[i] < 1.0)
			small[ns++] = i;
		else
			large[nl++] = i;
		t[i].hit = val ? val[i] : i;
		t[i].thr = UINT32_MAX;
		t[i].miss = t[i].hit;
	}
	while (ns && nl) {
		uint32_t s = small[--ns], l = large[nl - 1];

		t[s].thr = (uint32_t)(p[s] * 4294967296.0);
		t[s].miss = t[l].hit;
		p[l] = (p[l] + p[s]) - 1.0;
		if (p[l] < 1.0) {
			nl--;
			small[ns++] = l;
		}
	}
	/* Leftovers (either list) are full up to rounding: thr stays max. */
	free(p);
	free(small);
	free(large);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Deterministic maths (no libm)                                           */
/* ---------------------------------------------------------------------- */

/* x^(1/10) by Newton's method from a guess y (the root of a nearby x,
 * which makes it converge in a few steps). Stops on a fixed point or a
 * 2-cycle of the last ulp. */
static double root10(double x, double y)
{
	double prev = 0;

	for (int it = 0; it < 100; it++) {
		double y2 = y * y, y4 = y2 * y2, y8 = y4 * y4;
		double ny = (9.0 * y + x / (y8 * y)) / 10.0;

		if (ny == y || ny == prev)
			break;
		prev = y;
		y = ny;
	}
	return y;
}

/* Zipf weights (rank + 1)^-s for s in {0.9, 1.0, 1.1}, ranks 0..n-1. */
static void zipf_weights(double *w, uint32_t n, int s_tenths)
{
	double r = 1.0;

	for (uint32_t i = 0; i < n; i++) {
		double x = (double)i + 1.0;

		if (s_tenths == 10) {
			w[i] = 1.0 / x;
			continue;
		}
		r = root10(x, r);
		w[i] = s_tenths == 9 ? r / x : 1.0 / (x * r);
	}
}

/* cos(2 pi k / 86400) for integer seconds k: exact reduction to
 * [0, pi/2], then a Taylor series to x^24 (error < 1e-16 there). */
static double cos_day(int64_t k)
{
	double sign = 1.0, x, x2, term, sum;

	k %= 86400;
	if (k < 0)
		k += 86400;
	if (k > 43200)
		k = 86400 - k;
	if (k > 21600) {
		k = 43200 - k;
		sign = -1.0;
	}
	x = (double)k * (6.283185307179586 / 86400.0);
	x2 = x * x;
	term = 1.0;
	sum = 1.0;
	for (int i = 1; i <= 12; i++) {
		term *= -x2 / (double)((2 * i - 1) * (2 * i));
		sum += term;
	}
	return sign * sum;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Query rate of the minute starting at t_us: 1 + 0.6 cos(2 pi (h - 19) /
 * 24) with h the UTC hour (fractional, at the minute's start), x0.9 on
 * Saturdays and Sundays. */
static double minute_rate(int64_t t_us)
{
	int64_t sec = floor_div(t_us, US_PER_S);
	int64_t day = floor_div(sec, 86400);
	int64_t sod = sec - day * 86400;
	int64_t dow = ((day % 7) + 7 + 4) % 7;  /* 1970-01-01 was a Thursday */
	double r = 1.0 + 0.6 * cos_day(sod - 19 * 3600);

	return (dow == 0 || dow == 6) ? r * 0.9 : r;
}

/* ---------------------------------------------------------------------- */
/* Generator state                                                         */
/* ---------------------------------------------------------------------- */

#define HANDLE_CAP 50

/* Everything a record needs about an account, in one cache line. The
 * handle is zero-padded so it is copied with a fixed-size memcpy. */
struct wl_account {
	char handle[HANDLE_CAP];
	uint8_t len;
	uint32_t home[3];       /* pool index for IP choice 0, 1, 2 */
};

_Static_assert(sizeof(struct wl_account) == 64, "account is a cache line");

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

#define BATCH 64

/* The record stream's draws for one record, in this order. */
enum { D_REQ, D_POS, D_IP, D_SERVICE, D_TIME, D_LATE, D_LATE_BY, REC_DRAWS };

/* A record of the current batch, between the phases of fill_batch. */
struct pending {
	uint64_t x[REC_DRAWS];
	uint64_t s;             /* contact slot stream */
	uint64_t y;             /* popularity draw, or hash of phone */
	uint32_t a;             /* requester */
	uint32_t b;             /* target account if known */
	uint8_t known;          /* target is in the population */
	uint8_t plen;
	char phone[22];         /* target otherwise */
};

struct wl_gen {
	wl_config cfg;          /* end_us resolved */
	int64_t start_us;
	uint32_t U;
	uint32_t P;
	struct wl_account *acc;
	uint8_t (*pool)[16];
	uint32_t *set;          /* open addressing: account + 1, 0 = empty */
	uint32_t set_mask;
	alias *act;             /* requester law, yields accounts */
	alias *pop;             /* popularity law, yields accounts */
	alias *pos;             /* contact position laws, all lengths */
	uint32_t pos_off[MAX_CONTACTS + 1];
	uint64_t k_contact;     /* hash key of contact slots */
	uint64_t k_ncontacts;   /* hash key of contact counts */
	double *cum;            /* cum[m]: rate mass before minute m */
	uint32_t minutes;
	/* position in the stream */
	xo rng;
	uint64_t i;
	uint32_t m;             /* minute of the last nominal time */
	unsigned bpos, blen;
	struct pending batch[BATCH];
};

/* ---------------------------------------------------------------------- */
/* Handles                                                                 */
/* ---------------------------------------------------------------------- */

/* Little-endian load of n <= 8 bytes, zero-extended. */
static inline uint64_t load_le(const char *p, size_t n)
{
	uint64_t w = 0;

	for (size_t i = 0; i < n; i++)
		w |= (uint64_t)(unsigned char)p[i] << (8 * i);
	return w;
}

static uint64_t str_hash(uint64_t h, const char *s, size_t len)
{
	h = mix64(h ^ (len * GOLDEN));
	for (size_t i = 0; i < len; i += 8)
		h = mix64(h ^ load_le(s + i, len - i < 8 ? len - i : 8));
	return h;
}

/* Account holding handle s (of hash h = str_hash(0, s, len)), or -1. */
static int64_t set_find(const wl_gen *g, const char *s, size_t len,
			uint64_t h)
{
	uint32_t i = (uint32_t)h & g->set_mask;

	for (; g->set[i]; i = (i + 1) & g->set_mask) {
		const struct wl_account *a = &g->acc[g->set[i] - 1];

		if (a->len == len && !memcmp(a->handle, s, len))
			return g->set[i] - 1;
	}
	return -1;
}

/* Adds account a unless its handle is taken; 0 if added. */
static int set_add(wl_gen *g, uint32_t a)
{
	const struct wl_account *acc = &g->acc[a];
	uint32_t i = (uint32_t)str_hash(0, acc->handle, acc->len) & g->set_mask;

	for (; g->set[i]; i = (i + 1) & g->set_mask) {
		const struct wl_account *b = &g->acc[g->set[i] - 1];

		if (b->len == acc->len && !memcmp(b->handle, acc->handle,
						  acc->len))
			return -1;
	}
	g->set[i] = a + 1;
	return 0;
}

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

/* n decimal digits taken from *v (19 are available per 64-bit word). */
static char *put_digits(char *p, uint64_t *v, int n)
{
	while (n--) {
		*p++ = (char)('0' + *v % 10);
		*v /= 10;
	}
	return p;
}

/* An E.164 number drawn from the WORKLOAD.md country mix, using r1 for
 * the country and the constrained digits, r2 for the free digits. Writes
 * at most 16 bytes and a NUL; returns the length. */
static size_t gen_phone(char *out, uint64_t r1, uint64_t r2)
{
	uint32_t c = bound32(r1, 100), lo = (uint32_t)r1;
	char *p = out;

	if (c < 60) {           /* +1 NANP: NXX NXX XXXX, N = 2-9 */
		p = put_str(p, "+1");
		*p++ = (char)('2' + lo % 8);
		p = put_digits(p, &r2, 2);
		*p++ = (char)('2' + lo / 8 % 8);
		p = put_digits(p, &r2, 6);
	} else if (c < 68) {    /* +44 7xxxxxxxxx */
		p = put_str(p, "+447");
		p = put_digits(p, &r2, 9);
	} else if (c < 74) {    /* +33 6/7 + 8 digits */
		p = put_str(p, "+33");
		*p++ = (char)('6' + lo % 2);
		p = put_digits(p, &r2, 8);
	} else if (c < 82) {    /* +49 15x/16x/17x + 7-8 digits */
		p = put_str(p, "+491");
		*p++ = (char)('5' + lo % 3);
		p = put_digits(p, &r2, 1 + 7 + (int)(lo / 3 % 2));
	} else if (c < 87) {    /* +81 70/80/90 + 8 digits */
		p = put_str(p, "+81");
		*p++ = (char)('7' + lo % 3);
		*p++ = '0';
		p = put_digits(p, &r2, 8);
	} else if (c < 95) {    /* +91 [6-9] + 9 digits */
		p = put_str(p, "+91");
		*p++ = (char)('6' + lo % 4);
		p = put_digits(p, &r2, 9);
	} else {                /* +55 area (11-99, no 0) + 9 + 8 digits */
		p = put_str(p, "+55");
		*p++ = (char)('1' + lo % 9);
		*p++ = (char)('1' + lo / 9 % 9);
		*p++ = '9';
		p = put_digits(p, &r2, 8);
	}
	*p = '\0';
	return (size_t)(p - out);
}

static const char *const other_domains[17] = {
	"outlook.com", "hotmail.com", "aol.com", "proton.me", "gmx.de",
	"web.de", "mail.ru", "yandex.ru", "qq.com", "163.com", "orange.fr",
	"free.fr", "yahoo.co.jp", "live.com", "me.com", "comcast.net",
	"btinternet.com",
};

/* A lower-case address: local part of 5-12 chars, a letter first, then
 * [a-z0-9] with an occasional (6%) '.' or '_' never first, last or next to
 * another one (so a valid dot-atom); domain gmail 30%, icloud 18%, yahoo
 * 12%, the other 17 uniform over the remaining 40%. At most 27 bytes. */
static size_t gen_email(char *out, xo *r)
{
	static const char an[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint32_t len = 5 + bound32(xo_next(r), 8), d;
	char *p = out;

	*p++ = (char)('a' + bound32(xo_next(r), 26));
	for (uint32_t i = 1; i < len; i++) {
		uint64_t x = xo_next(r);

		if (i + 1 < len && p[-1] != '.' && p[-1] != '_' &&
		    bound32(x, 100) < 6)
			*p++ = (x & 1) ? '.' : '_';
		else
			*p++ = an[bound32(x, 36)];
	}
	*p++ = '@';
	d = bound32(xo_next(r), 100);
	if (d < 30)
		p = put_str(p, "gmail.com");
	else if (d < 48)
		p = put_str(p, "icloud.com");
	else if (d < 60)
		p = put_str(p, "yahoo.com");
	else
		p = put_str(p, other_domains[bound32(xo_next(r), 17)]);
	*p = '\0';
	return (size_t)(p - out);
}

/* Unique handles for all accounts: 20% emails, 80% phones, each account
 * an independent draw (WORKLOAD.md gives shares, not exact counts). */
static void build_handles(wl_gen *g)
{
	xo r;

	xo_seed(&r, g->cfg.seed, TAG_HANDLES);
	for (uint32_t a = 0; a < g->U; a++) {
		struct wl_account *acc = &g->acc[a];
		int email = bound32(xo_next(&r), 5) == 0;

		do {
			memset(acc->handle, 0, sizeof acc->handle);
			if (email) {
				acc->len = (uint8_t)gen_email(acc->handle, &r);
			} else {
				uint64_t r1 = xo_next(&r), r2 = xo_next(&r);

				acc->len = (uint8_t)gen_phone(acc->handle, r1,
							      r2);
			}
		} while (set_add(g, a));
	}
}

/* ---------------------------------------------------------------------- */
/* IP pool and home IPs                                                    */
/* ---------------------------------------------------------------------- */

static int v4_first_octet_ok(uint32_t a)
{
	/* Public-looking: no 0/8, 10/8, 100/8 (CGN), loopback, link-local,
	 * 172/8, 192/8 (private ranges live there) or class D/E. */
	return a >= 1 && a <= 223 && a != 10 && a != 100 && a != 127 &&
	       a != 169 && a != 172 && a != 192;
}

/* Common RIR allocations the /48s are placed under. */
static const uint16_t v6_top[12] = {
	0x2600, 0x2601, 0x2603, 0x2607, 0x2a00, 0x2a01, 0x2a02, 0x2409,
	0x240e, 0x2406, 0x2804, 0x2001,
};

static uint64_t ip_hash(const uint8_t *ip)
{
	return mix64(load_le((const char *)ip, 8) ^
		     mix64(load_le((const char *)ip + 8, 8)));
}

/* P distinct addresses (70% IPv4): v4 from 300 /16 blocks, each using 16
 * consecutive /24s at a random offset, host 1-254; v6 from 300 /48s,
 * subnet 0-3, random interface id. A duplicate is redrawn; an entry that
 * finds no free IPv4 host in 64 draws becomes IPv6 (that takes a pool of
 * more than the 1.2M IPv4 hosts: over 700M records). */
static int build_pool(wl_gen *g)
{
	uint32_t blk[V4_BLOCKS];   /* a << 16 | b << 8 | first /24 */
	uint8_t pfx[V6_PREFIXES][6];
	uint32_t mask, *seen, n, i;
	xo r;

	for (mask = 1; mask < 2 * g->P; mask <<= 1)
		;
	seen = calloc(mask, sizeof *seen);
	if (!seen)
		return -1;
	mask--;
	xo_seed(&r, g->cfg.seed, TAG_POOL);
	for (n = 0; n < V4_BLOCKS;) {
		uint32_t a = 1 + bound32(xo_next(&r), 223);
		uint32_t b = bound32(xo_next(&r), 256);
		uint32_t c = bound32(xo_next(&r), 256 - V4_SUBNETS + 1);

		if (!v4_first_octet_ok(a))
			continue;
		for (i = 0; i < n && blk[i] >> 8 != (a << 8 | b); i++)
			;
		if (i == n)
			blk[n++] = a << 16 | b << 8 | c;
	}
	for (n = 0; n < V6_PREFIXES;) {
		uint64_t x = xo_next(&r);
		uint16_t top = v6_top[bound32(xo_next(&r), 12)];
		uint8_t *q = pfx[n];

		q[0] = (uint8_t)(top >> 8);
		q[1] = (uint8_t)top;
		for (i = 2; i < 6; i++)
			q[i] = (uint8_t)(x >> (8 * i));
		for (i = 0; i < n && memcmp(pfx[i], q, 6); i++)
			;
		if (i == n)
			n++;
	}
	for (uint32_t k = 0; k < g->P; k++) {
		uint8_t *ip = g->pool[k];
		int v4 = bound32(xo_next(&r), 10) < 7;

		for (unsigned tries = 0;; tries++) {
			uint64_t x = xo_next(&r);

			memset(ip, 0, 16);
			if (v4) {
				uint32_t bk = blk[bound32(x, V4_BLOCKS)];

				ip[10] = ip[11] = 0xff;
				ip[12] = (uint8_t)(bk >> 16);
				ip[13] = (uint8_t)(bk >> 8);
				/* bits: 63-32 block, 31-12 host, 11-8 /24 */
				ip[14] = (uint8_t)((bk & 0xff) +
						   (x >> 8) % V4_SUBNETS);
				ip[15] = (uint8_t)(1 + (x >> 12 & 0xfffff) %
						   254);
			} else {
				uint64_t iid = xo_next(&r);

				memcpy(ip, pfx[bound32(x, V6_PREFIXES)], 6);
				ip[7] = (uint8_t)(x % 4);
				for (i = 0; i < 8; i++)
					ip[8 + i] = (uint8_t)(iid >> (8 * i));
			}
			for (i = (uint32_t)ip_hash(ip) & mask; seen[i];
			     i = (i + 1) & mask)
				if (!memcmp(g->pool[seen[i] - 1], ip, 16))
					break;
			if (!seen[i]) {
				seen[i] = k + 1;
				break;
			}
			if (tries >= 64)
				v4 = 0;
		}
	}
	free(seen);
	return 0;
}

/* 1-3 home IPs per account (uniform count), pool index u^2 * P so the
 * density falls as 1/sqrt(index); choice k = 0, 1, 2 maps to home IP
 * k mod count. */
static void build_homes(wl_gen *g)
{
	xo r;

	xo_seed(&r, g->cfg.seed, TAG_HOME);
	for (uint32_t a = 0; a < g->U; a++) {
		struct wl_account *acc = &g->acc[a];
		uint32_t home[3], cnt = 1 + bound32(xo_next(&r), 3);

		for (uint32_t k = 0; k < cnt; k++) {
			double u = unit(xo_next(&r));
			uint32_t idx = (uint32_t)(u * u * g->P);

			home[k] = idx < g->P ? idx : g->P - 1;
		}
		for (uint32_t k = 0; k < 3; k++)
			acc->home[k] = home[k % cnt];
	}
}

/* ---------------------------------------------------------------------- */
/* Zipf laws and the rate curve                                            */
/* ---------------------------------------------------------------------- */

static void shuffle(uint32_t *v, uint32_t n, xo *r)
{
	for (uint32_t i = 0; i < n; i++)
		v[i] = i;
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = bound32(xo_next(r), i + 1), t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

/* Requester law (s = 0.9) and popularity law (s = 1.1), each over its own
 * random permutation of the accounts (rank -> account). */
static int build_laws(wl_gen *g)
{
	double *w = calloc(g->U, sizeof *w); /* calloc: gcc -O3 warns otherwise */
	uint32_t *perm = malloc((size_t)g->U * sizeof *perm);
	int rc = -1;
	xo r;

	if (!w || !perm)
		goto out;
	xo_seed(&r, g->cfg.seed, TAG_PERM);
	shuffle(perm, g->U, &r);
	zipf_weights(w, g->U, 9);
	if (alias_build(g->act, w, g->U, perm))
		goto out;
	shuffle(perm, g->U, &r);
	zipf_weights(w, g->U, 11);
	if (alias_build(g->pop, w, g->U, perm))
		goto out;

	/* Contact position j, Zipf s = 1.0, one table per list length. */
	zipf_weights(w, MAX_CONTACTS, 10);
	for (uint32_t len = MIN_CONTACTS, off = 0; len <= MAX_CONTACTS;
	     off += len, len++) {
		g->pos_off[len] = off;
		if (alias_build(g->pos + off, w, len, NULL))
			goto out;
	}
	rc = 0;
out:
	free(w);
	free(perm);
	return rc;
}

static void build_rates(wl_gen *g)
{
	double sum = 0;

	g->cum[0] = 0;
	for (uint32_t m = 0; m < g->minutes; m++) {
		sum += minute_rate(g->start_us + (int64_t)m * US_PER_MIN);
		g->cum[m + 1] = sum;
	}
}

/* ---------------------------------------------------------------------- */
/* Lifecycle                                                               */
/* ---------------------------------------------------------------------- */

static void *alloc_array(size_t n, size_t size)
{
	return n ? calloc(n, size) : NULL;
}

wl_gen *wl_new(const wl_config *cfg)
{
	uint64_t u;
	size_t npos = 0;
	wl_gen *g;

	if (!cfg || cfg->days < 1 || cfg->days > WL_MAX_DAYS)
		return NULL;
	u = cfg->n / 50 > MIN_POP ? cfg->n / 50 : MIN_POP;
	if (u > MAX_POP)
		return NULL;
	g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->cfg = *cfg;
	if (!g->cfg.end_us)
		g->cfg.end_us = WL_DEFAULT_END_US;
	if (g->cfg.end_us < INT64_MIN + (int64_t)cfg->days * US_PER_DAY) {
		free(g);
		return NULL;
	}
	g->start_us = g->cfg.end_us - (int64_t)cfg->days * US_PER_DAY;
	g->U = (uint32_t)u;
	g->P = g->U / 8;
	g->minutes = cfg->days * 1440;
	for (uint32_t len = MIN_CONTACTS; len <= MAX_CONTACTS; len++)
		npos += len;
	for (g->set_mask = 1; g->set_mask < 2 * g->U; g->set_mask <<= 1)
		;

#if SIZE_MAX <= UINT32_MAX
	if (g->U > SIZE_MAX / sizeof *g->acc)
		goto fail;
#endif
	g->acc = aligned_alloc(64, g->U * sizeof *g->acc);
	g->pool = alloc_array(g->P, sizeof *g->pool);
	g->set = alloc_array(g->set_mask, sizeof *g->set);
	g->act = alloc_array(g->U, sizeof *g->act);
	g->pop = alloc_array(g->U, sizeof *g->pop);
	g->pos = alloc_array(npos, sizeof *g->pos);
	g->cum = alloc_array((size_t)g->minutes + 1, sizeof *g->cum);
	if (!g->acc || !g->pool || !g->set || !g->act || !g->pop ||
	    !g->pos || !g->cum)
		goto fail;
	g->set_mask--;
	memset(g->acc, 0, g->U * sizeof *g->acc);

	build_handles(g);
	if (build_pool(g))
		goto fail;
	build_homes(g);
	if (build_laws(g))
		goto fail;
	build_rates(g);
	g->k_contact = tag_key(g->cfg.seed, TAG_CONTACT);
	g->k_ncontacts = tag_key(g->cfg.seed, TAG_NCONTACTS);
	xo_seed(&g->rng, g->cfg.seed, TAG_RECORDS);
	return g;
fail:
	wl_free(g);
	return NULL;
}

void wl_free(wl_gen *g)
{
	if (!g)
		return;
	free(g->acc);
	free(g->pool);
	free(g->set);
	free(g->act);
	free(g->pop);
	free(g->pos);
	free(g->cum);
	free(g);
}

uint32_t wl_population(const wl_gen *g)
{
	return g->U;
}

void wl_account_handle(const wl_gen *g, uint32_t account, char out[64])
{
	memset(out, 0, 64);
	if (account < g->U)
		memcpy(out, g->acc[account].handle, HANDLE_CAP);
}

/* ---------------------------------------------------------------------- */
/* Records                                                                 */
/* ---------------------------------------------------------------------- */

/* Records are made in batches, phase by phase, so that the cache misses
 * of different records overlap: a record's own chain (requester law ->
 * requester -> popularity law -> target) is four dependent misses into
 * tables of U entries, and one record at a time spends most of its time
 * waiting on them. Every record consumes exactly REC_DRAWS values of the
 * record stream, in record order, and contact slots are pure functions of
 * (seed, account, position), so the stream does not depend on BATCH. */

/* Contact count of account a: 20 + h(a) % 181. */
static inline uint32_t ncontacts(const wl_gen *g, uint32_t a)
{
	return MIN_CONTACTS + (uint32_t)(mix64(g->k_ncontacts ^ a) %
					 (MAX_CONTACTS - MIN_CONTACTS + 1));
}

/* Home IP choice 0/1/2 with probability 70/20/10. */
static inline uint32_t home_choice(uint64_t x)
{
	uint32_t k = bound32(x, 10);

	return k < 7 ? 0 : k < 9 ? 1 : 2;
}

/* Next candidate phone outside the population for a contact slot. */
static void slot_phone(const wl_gen *g, struct pending *p)
{
	uint64_t r1 = sm_next(&p->s), r2 = sm_next(&p->s);

	p->plen = (uint8_t)gen_phone(p->phone, r1, r2);
	p->y = str_hash(0, p->phone, p->plen);
	PREFETCH(&g->set[p->y & g->set_mask]);
}

/* Contact at position j of p->a's list, first half. The slot is derived
 * from hash(seed, a, j) every time it is drawn: with probability 25% a
 * phone that is not in the population (redrawn while it collides with a
 * handle), else an account by the popularity law (redrawn while it is a
 * itself). This half makes the first draw and prefetches what it needs. */
static void contact_begin(const wl_gen *g, struct pending *p)
{
	uint32_t len = ncontacts(g, p->a);
	uint32_t j = alias_draw(g->pos + g->pos_off[len], len, p->x[D_POS]);

	p->s = mix64(g->k_contact ^ ((uint64_t)p->a << 32 | j));
	p->known = sm_next(&p->s) >> 62 != 0;
	if (p->known) {
		p->y = sm_next(&p->s);
		PREFETCH(&g->pop[bound32(p->y, g->U)]);
	} else {
		slot_phone(g, p);
	}
}

/* Second half: resolves the draw, redrawing if needed. */
static void contact_end(const wl_gen *g, struct pending *p)
{
	if (p->known) {
		p->b = alias_draw(g->pop, g->U, p->y);
		while (p->b == p->a)
			p->b = alias_draw(g->pop, g->U, sm_next(&p->s));
		PREFETCH(&g->acc[p->b]);
	} else {
		while (set_find(g, p->phone, p->plen, p->y) >= 0)
			slot_phone(g, p);
	}
}

static void fill_batch(wl_gen *g)
{
	uint64_t left = g->cfg.n - g->i;
	unsigned n = left < BATCH ? (unsigned)left : BATCH, i;

	for (i = 0; i < n; i++) {
		struct pending *p = &g->batch[i];

		for (int d = 0; d < REC_DRAWS; d++)
			p->x[d] = xo_next(&g->rng);
		PREFETCH(&g->act[bound32(p->x[D_REQ], g->U)]);
	}
	for (i = 0; i < n; i++) {
		struct pending *p = &g->batch[i];

		p->a = alias_draw(g->act, g->U, p->x[D_REQ]);
		PREFETCH(&g->acc[p->a]);
		contact_begin(g, p);
	}
	for (i = 0; i < n; i++) {
		struct pending *p = &g->batch[i];
		const struct wl_account *acc = &g->acc[p->a];

		contact_end(g, p);
		PREFETCH(g->pool[acc->home[home_choice(p->x[D_IP])]]);
	}
	g->bpos = 0;
	g->blen = n;
}

/* Nominal time of record i: the rate curve's inverse CDF at (i + u) / n.
 * The quantile never decreases, so the minute cursor only moves forward. */
static int64_t nominal_ts(wl_gen *g, double u)
{
	double q = ((double)g->i + u) / (double)g->cfg.n;
	double t = q * g->cum[g->minutes], f;
	uint32_t m = g->m;
	int64_t off;

	while (m + 1 < g->minutes && g->cum[m + 1] <= t)
		m++;
	g->m = m;
	f = (t - g->cum[m]) / (g->cum[m + 1] - g->cum[m]);
	off = (int64_t)(f * (double)US_PER_MIN);
	if (off < 0)
		off = 0;
	if (off >= US_PER_MIN)
		off = US_PER_MIN - 1;
	return g->start_us + (int64_t)m * US_PER_MIN + off;
}

int wl_next(wl_gen *g, wl_record *out)
{
	const struct wl_account *acc;
	const struct pending *p;
	int64_t ts;

	if (g->i >= g->cfg.n)
		return 0;
	if (g->bpos == g->blen)
		fill_batch(g);
	p = &g->batch[g->bpos++];
	acc = &g->acc[p->a];

	memset(out, 0, sizeof *out);
	memcpy(out->requester, acc->handle, HANDLE_CAP);
	if (p->known) {
		memcpy(out->target, g->acc[p->b].handle, HANDLE_CAP);
		out->result = 1;
	} else {
		memcpy(out->target, p->phone, p->plen);
	}
	memcpy(out->ip, g->pool[acc->home[home_choice(p->x[D_IP])]], 16);
	out->service = bound32(p->x[D_SERVICE], 5) == 0;

	ts = nominal_ts(g, unit(p->x[D_TIME]));
	if (bound32(p->x[D_LATE], 50) == 0) {           /* 2% late */
		ts -= 1 + bound32(p->x[D_LATE_BY], LATE_MAX_US);
		if (ts < g->start_us)
			ts = g->start_us;
	}
	out->ts = ts;
	g->i++;
	return 1;
}

/* ---------------------------------------------------------------------- */
/* Benchmark samples                                                       */
/* ---------------------------------------------------------------------- */

/* Distinct picks among candidates 0 .. n-1 (accounts, pool entries),
 * stored as uint32 at base + i * stride (so the IP sample can keep the
 * picks in its output array until it turns them into addresses). Taken
 * candidates are marked in a bitmap or, if that cannot be allocated,
 * found by a scan of the picks. A pick is drawn up to SAMPLE_TRIES times,
 * then the first free candidate upward from the last draw is taken, so a
 * k close to n (or a Zipf law whose head is used up) still ends. */
struct picks {
	uint8_t *bits;
	uint32_t n;
	unsigned char *base;
	size_t stride;
	unsigned i;             /* picks made */
};

static uint32_t pick_get(const struct picks *pk, unsigned j)
{
	uint32_t x;

	memcpy(&x, pk->base + j * pk->stride, sizeof x);
	return x;
}

static int picked(const struct picks *pk, uint32_t x)
{
	if (pk->bits)
		return pk->bits[x >> 3] >> (x & 7) & 1;
	for (unsigned j = 0; j < pk->i; j++)
		if (pick_get(pk, j) == x)
			return 1;
	return 0;
}

/* One pick: from the popularity law if law is set, else uniform. */
static void pick(struct picks *pk, xo *r, const alias *law)
{
	uint32_t x = 0;

	for (unsigned t = 0; t < SAMPLE_TRIES; t++) {
		uint64_t d = xo_next(r);

		x = law ? alias_draw(law, pk->n, d) : bound32(d, pk->n);
		if (!picked(pk, x))
			break;
	}
	while (picked(pk, x))
		x = x + 1 < pk->n ? x + 1 : 0;
	if (pk->bits)
		pk->bits[x >> 3] |= (uint8_t)(1u << (x & 7));
	memcpy(pk->base + pk->i++ * pk->stride, &x, sizeof x);
}

/* Picks min(k, n) distinct candidates; the rest repeat them. */
static void pick_k(void *base, size_t stride, unsigned k, uint32_t n,
		   xo *r, const alias *law)
{
	struct picks pk = { calloc(n / 8 + 1, 1), n, base, stride, 0 };

	for (unsigned i = 0; i < k; i++) {
		if (i < n)
			pick(&pk, r, law);
		else
			memcpy(pk.base + i * stride,
			       pk.base + i % n * stride, sizeof(uint32_t));
	}
	free(pk.bits);
}

void wl_sample_popular(const wl_gen *g, uint32_t *accounts, unsigned k)
{
	xo r;

	xo_seed(&r, g->cfg.seed, TAG_S_POPULAR);
	pick_k(accounts, sizeof *accounts, k, g->U, &r, g->pop);
}

void wl_sample_random(const wl_gen *g, uint32_t *accounts, unsigned k)
{
	xo r;

	xo_seed(&r, g->cfg.seed, TAG_S_RANDOM);
	pick_k(accounts, sizeof *accounts, k, g->U, &r, NULL);
}

/* Pool addresses are distinct (build_pool), so distinct entries give
 * distinct addresses. */
void wl_sample_ips(const wl_gen *g, uint8_t (*ips)[16], unsigned k)
{
	xo r;

	xo_seed(&r, g->cfg.seed, TAG_S_IPS);
	pick_k(ips, sizeof *ips, k, g->P, &r, NULL);
	for (unsigned i = 0; i < k; i++) {
		uint32_t x;

		memcpy(&x, ips[i], sizeof x);
		memcpy(ips[i], g->pool[x], 16);
	}
}

int wl_ip_is_v4(const uint8_t *ip)
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					 0xff, 0xff };

	return !memcmp(ip, pfx, 12);
}

void wl_sample_cidrs(const wl_gen *g, uint8_t (*net)[16],
		     unsigned *prefix_len, unsigned k)
{
	xo r;

	xo_seed(&r, g->cfg.seed, TAG_S_CIDRS);
	for (unsigned i = 0; i < k; i++) {
		unsigned dup = 1;

		/* There may be fewer distinct prefixes than k: after
		 * CIDR_TRIES a repeat is accepted. */
		for (unsigned t = 0; dup && t < CIDR_TRIES; t++) {
			const uint8_t *ip = g->pool[bound32(xo_next(&r),
							    g->P)];
			unsigned bytes = wl_ip_is_v4(ip) ? 15 : 6;

			memset(net[i], 0, 16);
			memcpy(net[i], ip, bytes);
			prefix_len[i] = bytes * 8;
			dup = 0;
			for (unsigned p = 0; p < i && !dup; p++)
				dup = prefix_len[p] == prefix_len[i] &&
				      !memcmp(net[p], net[i], 16);
		}
	}
}

void wl_sample_windows(const wl_gen *g, int64_t *t0, unsigned k)
{
	uint64_t range = (uint64_t)(g->cfg.end_us - g->start_us) -
			 (uint64_t)US_PER_HOUR + 1;
	xo r;

	xo_seed(&r, g->cfg.seed, TAG_S_WINDOWS);
	for (unsigned i = 0; i < k; i++)
		t0[i] = g->start_us + (int64_t)(xo_next(&r) % range);
}

static size_t len64(const char *s)
{
	size_t n = 0;

	while (n < 64 && s[n])
		n++;
	return n;
}

uint64_t wl_row_hash(const wl_record *r)
{
	uint64_t h = mix64((uint64_t)r->ts ^ UINT64_C(0x5157a7c0ffee1e55));

	h = str_hash(h, r->requester, len64(r->requester));
	h = str_hash(h, r->target, len64(r->target));
	h = mix64(h ^ load_le((const char *)r->ip, 8));
	h = mix64(h ^ load_le((const char *)r->ip + 8, 8));
	return mix64(h ^ ((uint64_t)r->service | (uint64_t)r->result << 8));
}

/* ---------------------------------------------------------------------- */
/* NDJSON (qlgen's output, and the zstd reference's input)                  */
/* ---------------------------------------------------------------------- */

static char *nd_lit(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *nd_u64(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *nd_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return nd_u64(p, -(uint64_t)v);
	}
	return nd_u64(p, (uint64_t)v);
}

/* A JSON string. Generated handles never need escaping; this still
 * escapes '"', '\\' and control bytes so the output is JSON whatever the
 * record holds. */
static char *nd_str(char *p, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	*p++ = '"';
	for (size_t i = 0; i < 64 && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20) {
			p = nd_lit(p, "\\u00");
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	*p++ = '"';
	return p;
}

/* Dotted quad for ::ffff:a.b.c.d, else RFC 5952: lower-case hex groups
 * without leading zeros, the longest run (first on a tie) of two or more
 * zero groups as "::". */
static char *nd_ip(char *p, const uint8_t *ip)
{
	static const char hex[] = "0123456789abcdef";
	unsigned g[8];
	int bs = -1, bl = 0;

	if (wl_ip_is_v4(ip)) {
		for (int i = 12; i < 16; i++) {
			if (i > 12)
				*p++ = '.';
			p = nd_u64(p, ip[i]);
		}
		return p;
	}
	for (int i = 0; i < 8; i++)
		g[i] = (unsigned)ip[2 * i] << 8 | ip[2 * i + 1];
	for (int i = 0; i < 8;) {
		int j = i;

		while (j < 8 && !g[j])
			j++;
		if (j - i > bl && j - i >= 2) {
			bs = i;
			bl = j - i;
		}
		i = j > i ? j : i + 1;
	}
	for (int i = 0; i < 8; i++) {
		int shift = 12;

		if (i == bs) {
			p = nd_lit(p, "::");
			i += bl - 1;
			continue;
		}
		if (i > 0 && i != bs + bl)
			*p++ = ':';
		while (shift > 0 && !(g[i] >> shift))
			shift -= 4;
		for (; shift >= 0; shift -= 4)
			*p++ = hex[g[i] >> shift & 15];
	}
	return p;
}

size_t wl_ndjson(char *out, const wl_record *r)
{
	char *p = out;

	p = nd_lit(p, "{\"ts\":");
	p = nd_i64(p, r->ts);
	p = nd_lit(p, ",\"requester\":");
	p = nd_str(p, r->requester);
	p = nd_lit(p, ",\"target\":");
	p = nd_str(p, r->target);
	p = nd_lit(p, ",\"ip\":\"");
	p = nd_ip(p, r->ip);
	p = nd_lit(p, "\",\"service\":");
	p = nd_u64(p, r->service);
	p = nd_lit(p, ",\"result\":");
	p = nd_u64(p, r->result);
	p = nd_lit(p, "}\n");
	return (size_t)(p - out);
}
