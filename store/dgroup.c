/* dgroup.c - dictionary groups (dgroup.h). */
#include "dgroup.h"

#include "bitio.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789._-+";
#define NALPHA 40u
#define ESC 63u

int qli_dgtab_init(qli_dgtab *t, const char *const *dom, const uint8_t *len,
		   uint32_t n)
{
	memset(t, 0, sizeof(*t));
	if (n > QLI_DG_DOMAINS)
		return qli_err(QL_ECORRUPT, "domain table: %u domains (at most "
			       "%u)", n, QLI_DG_DOMAINS);
	for (uint32_t i = 0; i < n; i++) {
		if (!len[i])
			return qli_err(QL_ECORRUPT, "domain table: domain %u "
				       "is empty", i);
		if (memchr(dom[i], 0, len[i]))
			return qli_err(QL_ECORRUPT, "domain table: domain %u "
				       "holds a NUL byte", i);
		memcpy(t->dom[i], dom[i], len[i]);
		t->dom[i][len[i]] = 0;
		t->len[i] = len[i];
	}
	t->ndom = n;
	return 0;
}

/* The domain of a non-phone key: the bytes after its last '@', or none
 * (no '@', or nothing after it: the '@' is then part of the local
 * part). */
static const char *domain_of(const char *k, size_t len, size_t *dlen)
{
	size_t at = len;

	while (at > 0 && k[at - 1] != '@')
		at--;
	*dlen = 0;
	if (at == 0 || at == len)
		return NULL;
	*dlen = len - at;
	return k + at;
}

static int is_phone(const char *k, size_t len)
{
	if (len < 2 || len > 16 || k[0] != '+')
		return 0;
	for (size_t i = 1; i < len; i++)
		if (k[i] < '0' || k[i] > '9')
			return 0;
	return 1;
}

typedef struct {
	const char *d;
	size_t len;
	uint32_t n;
} dcount;

static int cmp_dcount(const void *a, const void *b)
{
	const dcount *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->d, y->d, x->len);
}

int qli_dgtab_pick(qli_dgtab *t, const char *const *key, const uint8_t *len,
		   uint32_t n)
{
	dcount *c = malloc((n ? n : 1) * sizeof(*c));
	uint32_t nc = 0;

	memset(t, 0, sizeof(*t));
	if (!c)
		return qli_err(QL_ENOMEM, "out of memory");
	/* few distinct domains in practice: a linear table is enough, but
	 * bounded: past 4,096 distinct ones the rest are not counted */
	for (uint32_t i = 0; i < n; i++) {
		size_t dl;
		const char *d;
		uint32_t j;

		if (is_phone(key[i], len[i]))
			continue;
		d = domain_of(key[i], len[i], &dl);
		if (!d || !dl || dl > QLI_DG_DOMAIN_MAX)
			continue;
		for (j = 0; j < nc; j++)
			if (c[j].len == dl && !memcmp(c[j].d, d, dl))
				break;
		if (j == nc) {
			if (nc == 4096)
				continue;
			c[nc++] = (dcount){ d, dl, 0 };
		}
		c[j].n++;
	}
	qsort(c, nc, sizeof(*c), cmp_dcount);
	for (uint32_t i = 0; i < nc && i < QLI_DG_DOMAINS; i++) {
		memcpy(t->dom[i], c[i].d, c[i].len);
		t->len[i] = (uint8_t)c[i].len;
		t->ndom++;
	}
	free(c);
	return 0;
}

static size_t shared(const char *a, size_t na, const char *b, size_t nb,
		     size_t max)
{
	size_t p = 0;

	while (p < max && p < na && p < nb && a[p] == b[p])
		p++;
	return p;
}

int qli_dg_put_handles(const qli_dgtab *t, qli_bits *out,
		       const char *const *key, const uint8_t *len,
		       uint32_t n)
{
	if (n == 0 || n > QLI_DG_KEYS)
		return qli_err(QL_EINVAL, "dictionary group of %u keys (1 to "
			       "%u)", n, QLI_DG_KEYS);
	for (uint32_t i = 0; i < n; i++) {
		const char *k = key[i], *prev = i ? key[i - 1] : NULL;
		size_t kl = len[i], pl = i ? len[i - 1] : 0;

		if (!kl || kl > QL_HANDLE_MAX || memchr(k, 0, kl))
			return qli_err(QL_EINVAL, "dictionary group key %u: "
				       "%zu bytes (1 to %u, no NUL)", i, kl,
				       QL_HANDLE_MAX);
		/* every key at its longest: 1 + 5 + 8 + 8 * 255 + 6 + 8 +
		 * 14 * 254 bits */
		if (bits_reserve(out, 6000))
			return QL_ENOMEM;
		if (is_phone(k, kl)) {
			size_t p = prev && is_phone(prev, pl) ?
					   shared(k + 1, kl - 1, prev + 1,
						  pl - 1, 15) :
					   0;

			put(out, 0, 1);
			put(out, p, 4);
			put(out, kl - 1 - p, 4);
			for (size_t d = 1 + p; d < kl; d++)
				put(out, (uint64_t)(k[d] - '0'), 4);
			continue;
		}
		size_t dl, ll, pll = 0, p = 0;
		const char *d = domain_of(k, kl, &dl);
		uint32_t di = QLI_DG_DOMAINS;

		ll = d ? (size_t)(d - 1 - k) : kl;
		for (uint32_t x = 0; d && x < t->ndom; x++)
			if (t->len[x] == dl && !memcmp(t->dom[x], d, dl)) {
				di = x;
				break;
			}
		put(out, 1, 1);
		put(out, di, 5);
		if (di == QLI_DG_DOMAINS) {
			/* 0: no domain; else the length + 1 ('@' + bytes) */
			put(out, d ? dl + 1 : 0, 8);
			for (size_t x = 0; d && x < dl; x++)
				put(out, (uint8_t)d[x], 8);
		}
		if (prev && !is_phone(prev, pl)) {
			size_t pdl;
			const char *pd = domain_of(prev, pl, &pdl);

			pll = pd ? (size_t)(pd - 1 - prev) : pl;
			p = shared(k, ll, prev, pll, 63);
		}
		put(out, p, 6);
		put(out, ll - p, 8);
		for (size_t x = p; x < ll; x++) {
			const char *a = k[x] ? memchr(alpha, k[x], NALPHA)
					     : NULL;

			if (a) {
				put(out, (uint64_t)(a - alpha), 6);
			} else {
				put(out, ESC, 6);
				put(out, (uint8_t)k[x], 8);
			}
		}
	}
	return 0;
}

/* Checks the arguments of a read: 1 if they are sound, else 0 with the
 * error set (QL_ECORRUPT: they come from a file). */
static int group_args(const char *what, size_t len, uint64_t pos,
		      uint64_t end, uint32_t n, uint32_t j)
{
	if (n && n <= QLI_DG_KEYS && j < n && end <= (uint64_t)len * 8 &&
	    pos <= end)
		return 1;
	qli_err(QL_ECORRUPT, "%s group: key %u of %u in bits %llu..%llu of "
		"%zu bytes", what, j, n, (unsigned long long)pos,
		(unsigned long long)end, len);
	return 0;
}

int qli_dg_get_handle(const qli_dgtab *t, const uint8_t *p, size_t len,
		      uint64_t pos, uint64_t end, uint32_t n, uint32_t j,
		      char out[QL_HANDLE_MAX + 1], uint8_t *olen)
{
	rd d = { p, len, pos, end };
	char prev[QL_HANDLE_MAX + 1];
	size_t pl = 0, pll = 0; /* previous key, its local part */
	int prev_phone = 0;
	uint32_t i;
	uint64_t v;

	if (!group_args("dictionary", len, pos, end, n, j))
		return QL_ECORRUPT;
	for (i = 0; i <= j; i++) {
		size_t o = 0, sh, ll;
		uint64_t kind;

		if (get(&d, 1, &kind))
			goto bad;
		if (kind == 0) { /* a phone */
			uint64_t nd;

			if (get(&d, 4, &v) || get(&d, 4, &nd) ||
			    (v && (!i || !prev_phone || v > pl - 1)) ||
			    v + nd == 0 || v + nd > 15)
				goto bad;
			out[o++] = '+';
			memcpy(out + o, prev + 1, (size_t)v);
			o += (size_t)v;
			for (uint64_t x = 0; x < nd; x++) {
				if (get(&d, 4, &v) || v > 9)
					goto bad;
				out[o++] = (char)('0' + v);
			}
			pll = 0;
			prev_phone = 1;
		} else {
			char dom[QLI_DG_DOMAIN_MAX + 2];
			size_t dl = 0;
			uint64_t di;

			if (get(&d, 5, &di))
				goto bad;
			if (di < QLI_DG_DOMAINS) {
				if (di >= t->ndom)
					goto bad;
				dom[0] = '@';
				memcpy(dom + 1, t->dom[di], t->len[di]);
				dl = 1 + (size_t)t->len[di];
			} else {
				if (get(&d, 8, &v))
					goto bad;
				dl = (size_t)v; /* '@' + bytes, or 0 */
				if (dl == 1)
					goto bad;
				if (dl)
					dom[0] = '@';
				for (size_t x = 1; x < dl; x++) {
					if (get(&d, 8, &v) || !v)
						goto bad; /* keys hold no NUL */
					dom[x] = (char)v;
				}
			}
			uint64_t nl;

			if (get(&d, 6, &v) || get(&d, 8, &nl) ||
			    (v && (!i || prev_phone || v > pll)))
				goto bad;
			sh = (size_t)v;
			ll = sh + (size_t)nl;
			if (!ll || ll + dl > QL_HANDLE_MAX)
				goto bad;
			memcpy(out, prev, sh);
			o = sh;
			for (uint64_t x = 0; x < nl; x++) {
				if (get(&d, 6, &v))
					goto bad;
				if (v == ESC) {
					if (get(&d, 8, &v) || !v)
						goto bad;
					out[o++] = (char)v;
				} else if (v < NALPHA) {
					out[o++] = alpha[v];
				} else {
					goto bad;
				}
			}
			memcpy(out + o, dom, dl);
			o += dl;
			pll = ll;
			prev_phone = 0;
		}
		out[o] = 0;
		pl = o;
		if (i < j)
			memcpy(prev, out, o + 1);
	}
	*olen = (uint8_t)pl;
	return 0;
bad:
	return qli_err(QL_ECORRUPT, "dictionary group at bit %llu: key %u: "
		       "bad code at bit %llu", (unsigned long long)pos, i,
		       (unsigned long long)d.pos);
}

int qli_dg_put_addrs(qli_bits *out, const uint8_t (*key)[16], uint32_t n)
{
	if (n == 0 || n > QLI_DG_KEYS)
		return qli_err(QL_EINVAL, "dictionary group of %u keys (1 to "
			       "%u)", n, QLI_DG_KEYS);
	if (bits_reserve(out, (uint64_t)n * (4 + 128)))
		return QL_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		unsigned p = 0;

		while (i && p < 15 && key[i][p] == key[i - 1][p])
			p++;
		put(out, p, 4);
		for (unsigned x = p; x < 16; x++)
			put(out, key[i][x], 8);
	}
	return 0;
}

int qli_dg_get_addr(const uint8_t *p, size_t len, uint64_t pos,
		    uint64_t end, uint32_t n, uint32_t j, uint8_t out[16])
{
	rd d = { p, len, pos, end };
	uint32_t i;
	uint64_t v;

	if (!group_args("address", len, pos, end, n, j))
		return QL_ECORRUPT;
	for (i = 0; i <= j; i++) {
		if (get(&d, 4, &v) || (v && !i))
			goto bad;
		for (unsigned x = (unsigned)v; x < 16; x++) {
			uint64_t b;

			if (get(&d, 8, &b))
				goto bad;
			out[x] = (uint8_t)b;
		}
	}
	return 0;
bad:
	return qli_err(QL_ECORRUPT, "address group at bit %llu: key %u: bad "
		       "code at bit %llu", (unsigned long long)pos, i,
		       (unsigned long long)d.pos);
}
