/* qlgen.c - writes the seeded query-log workload (WORKLOAD.md) as NDJSON.
 *
 *   qlgen [--seed S] [--records N] [--days D] [--end UNIX_SECONDS] [--stats]
 *
 * One object per line on stdout:
 *   {"ts":..,"requester":"..","target":"..","ip":"..","service":..,
 *    "result":..}
 * ts in integer microseconds, ip a dotted quad for IPv4-mapped addresses
 * and RFC 5952 text otherwise. Lines are formatted by hand into a 1 MiB
 * buffer: printf would cost more than generating the record.
 *
 * --stats writes no records; it measures the figures WORKLOAD.md quotes on
 * the stream and prints them to stderr.
 */
#include "workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_SIZE (1u << 20)

static const char usage[] =
	"usage: qlgen [--seed S] [--records N] [--days D] "
	"[--end UNIX_SECONDS] [--stats]\n"
	"\n"
	"Writes the seeded query-log workload as NDJSON to stdout.\n"
	"\n"
	"  --seed S        PRNG seed (default 1)\n"
	"  --records N     number of records (default 1000000)\n"
	"  --days D        span length in days, 1..3660 (default 35)\n"
	"  --end SECONDS   span end, Unix seconds (default 1793491200,\n"
	"                  2026-11-01T00:00:00Z)\n"
	"  --stats         print stream statistics to stderr, no records\n"
	"  -h, --help      this text\n";

static char out[OUT_SIZE];
static size_t out_len;

static void die(const char *what)
{
	fprintf(stderr, "qlgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void flush_out(void)
{
	if (out_len && fwrite(out, 1, out_len, stdout) != out_len)
		die("write error");
	out_len = 0;
}

/* ---------------------------------------------------------------------- */
/* Formatting                                                              */
/* ---------------------------------------------------------------------- */

static void write_record(const wl_record *r)
{
	if (OUT_SIZE - out_len < WL_NDJSON_MAX)
		flush_out();
	out_len += wl_ndjson(out + out_len, r);
}

/* ---------------------------------------------------------------------- */
/* --stats                                                                 */
/* ---------------------------------------------------------------------- */

/* Handle -> count, keyed by a 64-bit hash of the handle (a collision
 * between two of a few million handles has odds ~ 1e-7: fine for
 * statistics). Open addressing, grown at half load. */
struct count {
	uint64_t key;           /* 0 = empty */
	uint32_t n;
	uint32_t email;
};

struct counter {
	struct count *t;
	size_t cap;
	size_t used;
	uint32_t max;           /* largest n so far */
	char max_handle[64];    /* a handle with that count */
};

static uint64_t handle_key(const char *s)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);      /* FNV-1a */

	for (size_t i = 0; i < 64 && s[i]; i++)
		h = (h ^ (unsigned char)s[i]) * UINT64_C(0x100000001b3);
	h ^= h >> 32;
	return h ? h : 1;
}

static struct count *slot(struct count *t, size_t cap, uint64_t key)
{
	size_t i = (size_t)key & (cap - 1);

	while (t[i].key && t[i].key != key)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

static void tally(struct counter *c, const char *handle)
{
	uint64_t key = handle_key(handle);
	struct count *e;

	if (2 * (c->used + 1) > c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 1u << 16;
		struct count *t = calloc(cap, sizeof *t);

		if (!t)
			die("out of memory");
		for (size_t i = 0; i < c->cap; i++)
			if (c->t[i].key)
				*slot(t, cap, c->t[i].key) = c->t[i];
		free(c->t);
		c->t = t;
		c->cap = cap;
	}
	e = slot(c->t, c->cap, key);
	if (!e->key) {
		e->key = key;
		e->email = strchr(handle, '@') != NULL;
		c->used++;
	}
	if (++e->n > c->max) {
		c->max = e->n;
		memcpy(c->max_handle, handle, sizeof c->max_handle);
	}
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void stats(wl_gen *g, const wl_config *cfg)
{
	struct counter req = { 0 }, tgt = { 0 };
	uint64_t n = 0, ooo = 0, res0 = 0, v4 = 0, ft = 0, email = 0;
	uint64_t email_req = 0;
	int64_t prev = INT64_MIN;
	wl_record r;

	while (wl_next(g, &r)) {
		n++;
		ooo += r.ts < prev;
		prev = r.ts;
		res0 += r.result == 0;
		v4 += wl_ip_is_v4(r.ip);
		ft += r.service == 1;
		email += strchr(r.requester, '@') != NULL;
		tally(&req, r.requester);
		tally(&tgt, r.target);
	}
	for (size_t i = 0; i < req.cap; i++)
		email_req += req.t[i].key && req.t[i].email;

	fprintf(stderr,
		"seed %llu, %llu records, %u days, population %u\n"
		"out-of-order       %6.2f%%  (ts below the previous record's)\n"
		"result=0           %6.2f%%\n"
		"IPv4               %6.2f%%\n"
		"facetime           %6.2f%%\n"
		"email requesters   %6.2f%%  of records; %.2f%% of the %zu "
		"distinct requesters\n"
		"top target         %6.2f%%  of records look up %s\n"
		"top requester      %6.2f%%  of records made by %s\n",
		(unsigned long long)cfg->seed, (unsigned long long)n,
		cfg->days, wl_population(g), pct(ooo, n), pct(res0, n),
		pct(v4, n), pct(ft, n), pct(email, n),
		pct(email_req, req.used), req.used, pct(tgt.max, n),
		tgt.max_handle, pct(req.max, n), req.max_handle);
	free(req.t);
	free(tgt.t);
}

/* ---------------------------------------------------------------------- */
/* Arguments                                                               */
/* ---------------------------------------------------------------------- */

static void bad_arg(const char *opt, const char *val, const char *why)
{
	if (val)
		fprintf(stderr, "qlgen: %s '%s': %s\n", opt, val, why);
	else
		fprintf(stderr, "qlgen: %s: %s\n", opt, why);
	fprintf(stderr, "Try 'qlgen --help'.\n");
	exit(2);
}

/* Decimal digits only, no sign, no overflow. */
static uint64_t parse_u64(const char *opt, const char *s)
{
	uint64_t v = 0;

	if (!*s)
		bad_arg(opt, s, "expected a decimal number");
	for (const char *p = s; *p; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (d > 9)
			bad_arg(opt, s, "expected a decimal number");
		if (v > (UINT64_MAX - d) / 10)
			bad_arg(opt, s, "too large");
		v = v * 10 + d;
	}
	return v;
}

int main(int argc, char **argv)
{
	wl_config cfg = { .seed = 1, .n = 1000000, .days = 35 };
	int want_stats = 0;
	wl_gen *g;
	wl_record r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		char opt[32];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 0;
		}
		if (!strcmp(a, "--stats")) {
			want_stats = 1;
			continue;
		}
		/* --opt VALUE or --opt=VALUE */
		eq = strchr(a, '=');
		if (eq && (size_t)(eq - a) < sizeof opt) {
			memcpy(opt, a, (size_t)(eq - a));
			opt[eq - a] = '\0';
			val = eq + 1;
		} else if (strlen(a) < sizeof opt) {
			strcpy(opt, a);
		} else {
			bad_arg(a, NULL, "unknown argument");
		}
		if (strcmp(opt, "--seed") && strcmp(opt, "--records") &&
		    strcmp(opt, "--days") && strcmp(opt, "--end"))
			bad_arg(a, NULL, "unknown argument");
		if (!val) {
			if (i + 1 >= argc)
				bad_arg(opt, NULL, "missing value");
			val = argv[++i];
		}
		if (!strcmp(opt, "--seed")) {
			cfg.seed = parse_u64(opt, val);
		} else if (!strcmp(opt, "--records")) {
			cfg.n = parse_u64(opt, val);
		} else if (!strcmp(opt, "--days")) {
			uint64_t d = parse_u64(opt, val);

			if (d < 1 || d > WL_MAX_DAYS)
				bad_arg(opt, val, "must be 1..3660");
			cfg.days = (unsigned)d;
		} else {
			uint64_t s = parse_u64(opt, val);

			if (s < 1 || s > (uint64_t)(INT64_MAX / 1000000))
				bad_arg(opt, val, "must be 1..9223372036854");
			cfg.end_us = (int64_t)s * 1000000;
		}
	}

	g = wl_new(&cfg);
	if (!g) {
		/* The other arguments were range-checked: what is left is a
		 * population beyond 2^30 accounts, or out of memory. */
		if (cfg.n / 50 > (UINT64_C(1) << 30))
			bad_arg("--records", NULL, "too many records");
		errno = ENOMEM;
		die("cannot set up the generator");
	}
	if (want_stats) {
		stats(g, &cfg);
	} else {
		while (wl_next(g, &r))
			write_record(&r);
		flush_out();
		if (fflush(stdout) || ferror(stdout))
			die("write error");
	}
	wl_free(g);
	return 0;
}
