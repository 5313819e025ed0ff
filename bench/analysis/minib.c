/* minib.c - how fast the record-readable layout of layout.py reads: one
 * day of records (`logtool scan -o csv`, see layout.py) sorted by
 * (address, time), coded in mini blocks of 64 records without zstd
 * (docs/ARCHITECTURE.md, "Lookup latency"), then decoded: every block in
 * random order, and the one record a lookup wants. A prototype for
 * measuring, not the store's code: no bounds checks on decode.
 *
 *   cc -O2 -o /tmp/minib bench/analysis/minib.c && /tmp/minib DAY.csv
 *
 * Codes per record, as layout.py counts them: a bit "new address run"
 * (then the address id's gap, Elias gamma, and the time as 37 bits from
 * the day's start; at a block's first record the address id in full),
 * else the time's gap Rice-coded with the block's k; requester: a bit
 * "same as the previous record's" (within the run), else its class
 * (canonical Huffman over the frequency classes) and its offset in the
 * class at fixed width; target: class and offset; service and result:
 * Huffman. Ids as the compactor gives them: handles by frequency class
 * (bit length of the count, busiest first) then key; addresses by key. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define M 64
#define MAXC 40

typedef struct {
	int64_t t;
	uint32_t req, tgt, addr;
	uint8_t sr;
} rec;

typedef struct {
	char *k;
	uint32_t n;
	uint8_t cls;
} key;

/* ---- a string table: key -> index, with counts ---- */
typedef struct {
	key *v;
	uint32_t n, cap;
	uint32_t *slot, ns;
} table;

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h;
}

static uint32_t intern(table *t, const char *s)
{
	if (2 * (t->n + 1) > t->ns) {
		uint32_t ns = t->ns ? 2 * t->ns : 1024;

		free(t->slot);
		t->slot = calloc(ns, sizeof(*t->slot));
		t->ns = ns;
		for (uint32_t i = 0; i < t->n; i++) {
			uint64_t h = hash(t->v[i].k) & (ns - 1);

			while (t->slot[h])
				h = (h + 1) & (ns - 1);
			t->slot[h] = i + 1;
		}
	}
	uint64_t h = hash(s) & (t->ns - 1);

	while (t->slot[h]) {
		if (!strcmp(t->v[t->slot[h] - 1].k, s))
			return t->slot[h] - 1;
		h = (h + 1) & (t->ns - 1);
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 1024;
		t->v = realloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->n] = (key){ strdup(s), 0, 0 };
	t->slot[h] = t->n + 1;
	return t->n++;
}

/* ---- bits, least significant first ---- */
typedef struct {
	uint8_t *p;
	uint64_t pos, cap;
} bw;

static void put(bw *w, uint64_t v, unsigned n) /* n <= 57 */
{
	if ((w->pos + n) / 8 + 16 > w->cap) {
		uint64_t old = w->cap;

		w->cap = 2 * w->cap + 4096;
		w->p = realloc(w->p, w->cap);
		memset(w->p + old, 0, w->cap - old);
	}
	uint64_t cur;

	memcpy(&cur, w->p + w->pos / 8, 8);
	cur |= (v & ((n == 64 ? 0 : 1ull << n) - 1)) << (w->pos % 8);
	memcpy(w->p + w->pos / 8, &cur, 8);
	w->pos += n;
}

static void put_long(bw *w, uint64_t v, unsigned n)
{
	if (n > 32) {
		put(w, v & 0xffffffffu, 32);
		v >>= 32;
		n -= 32;
	}
	put(w, v, n);
}

static inline uint64_t peek(const uint8_t *p, uint64_t pos)
{
	uint64_t v;

	memcpy(&v, p + pos / 8, 8);
	return v >> (pos % 8);
}

static unsigned bitlen(uint64_t v)
{
	return v ? 64 - (unsigned)__builtin_clzll(v) : 0;
}

/* ---- canonical Huffman ---- */
typedef struct {
	unsigned n;
	uint8_t len[MAXC];
	uint32_t code[MAXC]; /* bit-reversed, for LSB-first writing */
	uint16_t tab[1 << 12]; /* peek 12 bits -> symbol << 4 | length */
} huff;

static void huff_build(huff *h, const uint64_t *cnt, unsigned n)
{
	uint64_t w[2 * MAXC];
	int parent[2 * MAXC], live[2 * MAXC];
	unsigned m = n;

	memset(h, 0, sizeof(*h));
	h->n = n;
	for (unsigned i = 0; i < n; i++) {
		w[i] = cnt[i] ? cnt[i] : 1;
		live[i] = 1;
	}
	for (;;) {
		int a = -1, b = -1;

		for (unsigned i = 0; i < m; i++) {
			if (!live[i])
				continue;
			if (a < 0 || w[i] < w[a]) {
				b = a;
				a = (int)i;
			} else if (b < 0 || w[i] < w[b])
				b = (int)i;
		}
		if (b < 0)
			break;
		w[m] = w[a] + w[b];
		live[a] = live[b] = 0;
		live[m] = 1;
		parent[a] = parent[b] = (int)m;
		parent[m] = -1;
		m++;
	}
	for (unsigned i = 0; i < n; i++) {
		unsigned d = 0;

		for (int j = (int)i; parent[j] >= 0 && (unsigned)j != m - 1;
		     j = parent[j])
			d++;
		h->len[i] = (uint8_t)(n == 1 ? 1 : d);
	}
	/* canonical codes by (length, symbol) */
	uint32_t code = 0;

	for (unsigned l = 1; l <= 12; l++) {
		for (unsigned i = 0; i < n; i++) {
			if (h->len[i] != l)
				continue;
			uint32_t r = 0;

			for (unsigned b = 0; b < l; b++)
				r |= ((code >> b) & 1) << (l - 1 - b);
			h->code[i] = r;
			for (uint32_t x = r; x < (1u << 12); x += 1u << l)
				h->tab[x] = (uint16_t)(i << 4 | l);
			code++;
		}
		code <<= 1;
	}
	for (unsigned i = 0; i < n; i++)
		if (h->len[i] > 12) {
			fprintf(stderr, "code longer than 12 bits\n");
			exit(1);
		}
}

/* ---- the day ---- */
static rec *R;
static uint32_t N;
static table H, A;
static uint32_t *hid, *aid;     /* table index -> id */
static uint32_t cbase[MAXC + 1], cwidth[MAXC];
static unsigned ncls;
static uint8_t *idcls;          /* handle id -> class index */
static int64_t day0;
static key **hord;               /* id -> handle */

static int cmp_hkey(const void *a, const void *b)
{
	const key *x = *(key *const *)a, *y = *(key *const *)b;

	if (x->cls != y->cls)
		return x->cls > y->cls ? -1 : 1;
	return strcmp(x->k, y->k);
}

static int cmp_akey(const void *a, const void *b)
{
	return memcmp((*(key *const *)a)->k, (*(key *const *)b)->k, 16);
}

static int cmp_rec(const void *a, const void *b)
{
	const rec *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->t < y->t ? -1 : x->t > y->t;
}

static int64_t parse_ts(const char *s)
{
	struct tm tm = { 0 };
	long us = 0;
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	if (p && *p == '.') {
		int d = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, d++)
			us = us * 10 + (*p - '0');
		for (; d < 6; d++)
			us *= 10;
	}
	return (int64_t)timegm(&tm) * 1000000 + us;
}

static void load(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	uint32_t cap = 0;

	if (!f || !fgets(line, sizeof(line), f)) {
		perror(path);
		exit(1);
	}
	while (fgets(line, sizeof(line), f)) {
		char *fld[6], *p = line;

		for (int i = 0; i < 6; i++) {
			fld[i] = p;
			p = strpbrk(p, ",\n");
			if (p)
				*p++ = 0;
		}
		if (N == cap) {
			cap = cap ? 2 * cap : 1 << 16;
			R = realloc(R, cap * sizeof(*R));
		}
		/* addresses as hex of their 16-byte form: order = byte order */
		char ak[40];
		unsigned char b16[16] = { 0 };
		unsigned x[4];

		if (sscanf(fld[3], "%u.%u.%u.%u", &x[0], &x[1], &x[2],
			   &x[3]) == 4) {
			b16[10] = b16[11] = 0xff;
			for (int i = 0; i < 4; i++)
				b16[12 + i] = (unsigned char)x[i];
		} else {
			inet_pton(AF_INET6, fld[3], b16);
		}
		for (int i = 0; i < 16; i++)
			sprintf(ak + 2 * i, "%02x", b16[i]);
		R[N].t = parse_ts(fld[0]);
		R[N].req = intern(&H, fld[1]);
		R[N].tgt = intern(&H, fld[2]);
		R[N].addr = intern(&A, ak);
		R[N].sr = (uint8_t)(atoi(fld[4]) * 2 + atoi(fld[5]));
		H.v[R[N].req].n++;
		H.v[R[N].tgt].n++;
		A.v[R[N].addr].n++;
		N++;
	}
	fclose(f);
}

static void assign_ids(void)
{
	key **o = malloc(H.n * sizeof(*o));

	for (uint32_t i = 0; i < H.n; i++) {
		H.v[i].cls = (uint8_t)bitlen(H.v[i].n);
		o[i] = &H.v[i];
	}
	qsort(o, H.n, sizeof(*o), cmp_hkey);
	hid = malloc(H.n * sizeof(*hid));
	idcls = malloc(H.n);
	for (uint32_t i = 0; i < H.n; i++) {
		hid[o[i] - H.v] = i;
		if (i == 0 || o[i]->cls != o[i - 1]->cls)
			cbase[ncls++] = i;
		idcls[i] = (uint8_t)(ncls - 1);
	}
	cbase[ncls] = H.n;
	for (unsigned c = 0; c < ncls; c++)
		cwidth[c] = bitlen(cbase[c + 1] - cbase[c] - 1);
	hord = o;
	o = malloc(A.n * sizeof(*o));
	for (uint32_t i = 0; i < A.n; i++)
		o[i] = &A.v[i];
	qsort(o, A.n, sizeof(*o), cmp_akey);
	aid = malloc(A.n * sizeof(*aid));
	for (uint32_t i = 0; i < A.n; i++)
		aid[o[i] - A.v] = i;
	free(o);
	day0 = R[0].t;
	for (uint32_t i = 0; i < N; i++) {
		R[i].req = hid[R[i].req];
		R[i].tgt = hid[R[i].tgt];
		R[i].addr = aid[R[i].addr];
		if (R[i].t < day0)
			day0 = R[i].t;
	}
	qsort(R, N, sizeof(*R), cmp_rec);
}

static huff hreq, htgt, hsr;
static unsigned awidth;

static void put_huff(bw *w, const huff *h, unsigned s)
{
	put(w, h->code[s], h->len[s]);
}

static void put_handle(bw *w, const huff *h, uint32_t id)
{
	unsigned c = idcls[id];

	put_huff(w, h, c);
	put(w, id - cbase[c], cwidth[c]);
}

static void encode_block(bw *w, const rec *r, unsigned n)
{
	unsigned best = 0;
	uint64_t bestbits = UINT64_MAX;

	for (unsigned k = 0; k < 40; k++) {
		uint64_t b = 0;

		for (unsigned i = 1; i < n; i++)
			if (r[i].addr == r[i - 1].addr)
				b += ((uint64_t)(r[i].t - r[i - 1].t) >> k) + 1 + k;
		if (b < bestbits) {
			bestbits = b;
			best = k;
		}
	}
	put(w, best, 6);
	for (unsigned i = 0; i < n; i++) {
		if (i == 0) {
			put(w, r[i].addr, awidth);
			put_long(w, (uint64_t)(r[i].t - day0), 37);
		} else if (r[i].addr != r[i - 1].addr) {
			uint64_t d = r[i].addr - r[i - 1].addr;
			unsigned l = bitlen(d);

			put(w, 1, 1);
			put(w, 1ull << (l - 1), l); /* l-1 zeros, then a one */
			put(w, d, l - 1);           /* low bits (top one implied) */
			put_long(w, (uint64_t)(r[i].t - day0), 37);
		} else {
			uint64_t g = (uint64_t)(r[i].t - r[i - 1].t), q = g >> best;

			put(w, 0, 1);
			while (q >= 56) {
				put(w, 0, 56);
				q -= 56;
			}
			put(w, 1ull << q, (unsigned)q + 1);
			put_long(w, g, best);
		}
		int same = i > 0 && r[i].addr == r[i - 1].addr &&
			   r[i].req == r[i - 1].req;

		put(w, (uint64_t)same, 1);
		if (!same)
			put_handle(w, &hreq, r[i].req);
		put_handle(w, &htgt, r[i].tgt);
		put_huff(w, &hsr, r[i].sr);
	}
}

static inline unsigned get_huff(const uint8_t *p, uint64_t *pos,
				const huff *h)
{
	uint16_t e = h->tab[peek(p, *pos) & 0xfff];

	*pos += e & 15;
	return e >> 4;
}

static inline uint64_t get(const uint8_t *p, uint64_t *pos, unsigned n)
{
	uint64_t v = n ? peek(p, *pos) & ((n == 64 ? 0 : 1ull << n) - 1) : 0;

	*pos += n;
	return v;
}

static inline uint64_t get37(const uint8_t *p, uint64_t *pos)
{
	uint64_t lo = get(p, pos, 32);

	return lo | get(p, pos, 5) << 32;
}

static inline uint32_t get_handle(const uint8_t *p, uint64_t *pos,
				  const huff *h)
{
	unsigned c = get_huff(p, pos, h);

	return cbase[c] + (uint32_t)get(p, pos, cwidth[c]);
}

static unsigned decode_block(const uint8_t *p, uint64_t pos, unsigned n,
			     rec *out)
{
	unsigned k = (unsigned)get(p, &pos, 6);

	for (unsigned i = 0; i < n; i++) {
		rec *o = &out[i];

		if (i == 0) {
			o->addr = (uint32_t)get(p, &pos, awidth);
			o->t = day0 + (int64_t)get37(p, &pos);
		} else if (get(p, &pos, 1)) {
			unsigned z = (unsigned)__builtin_ctzll(peek(p, pos));

			pos += z + 1;
			o->addr = out[i - 1].addr +
				  (uint32_t)((1ull << z) | get(p, &pos, z));
			o->t = day0 + (int64_t)get37(p, &pos);
		} else {
			uint64_t q = 0, v;

			while (!(v = peek(p, pos) & ((1ull << 56) - 1))) {
				q += 56;
				pos += 56;
			}
			unsigned z = (unsigned)__builtin_ctzll(v);

			q += z;
			pos += z + 1;
			uint64_t lo = get(p, &pos, k > 32 ? 32 : k);

			if (k > 32)
				lo |= get(p, &pos, k - 32) << 32;
			o->addr = out[i - 1].addr;
			o->t = out[i - 1].t + (int64_t)(q << k | lo);
		}
		if (get(p, &pos, 1))
			o->req = out[i - 1].req;
		else
			o->req = get_handle(p, &pos, &hreq);
		o->tgt = get_handle(p, &pos, &htgt);
		o->sr = (uint8_t)get_huff(p, &pos, &hsr);
	}
	return n;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}


/* ---- handles readable key by key: groups of G in id order ---- */
#define G 16
static char dom[31][64];
static unsigned ndom;
static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789._-+";

static unsigned shared(const char *a, const char *b, unsigned max)
{
	unsigned p = 0;

	while (p < max && a[p] && a[p] == b[p])
		p++;
	return p;
}

/* A phone: bit 0, 4-bit shared prefix with the previous key of the
 * group (if a phone), 4-bit suffix length, 4 bits a digit. An email:
 * bit 1, 5-bit domain (31: 6-bit length and 8 bits a character), 4-bit
 * shared prefix of the local part, 6-bit suffix length, 6 bits a
 * character (63: an escape, then 8 bits). */
static void put_key(bw *w, const char *k, const char *prev)
{
	if (k[0] == '+') {
		unsigned p = prev && prev[0] == '+' ?
				     shared(k + 1, prev + 1, 15) : 0;
		const char *d = k + 1 + p;

		put(w, 0, 1);
		put(w, p, 4);
		put(w, strlen(d), 4);
		for (; *d; d++)
			put(w, (uint64_t)(*d - '0'), 4);
		return;
	}
	const char *at = strrchr(k, '@');
	unsigned dl = (unsigned)strlen(at + 1), di, ll = (unsigned)(at - k);

	for (di = 0; di < ndom; di++)
		if (!strcmp(dom[di], at + 1))
			break;
	put(w, 1, 1);
	put(w, di < ndom ? di : 31, 5);
	if (di >= ndom) {
		put(w, dl, 6);
		for (unsigned i = 0; i < dl; i++)
			put(w, (uint8_t)at[1 + i], 8);
	}
	unsigned p = 0;

	if (prev && prev[0] != '+') {
		const char *pat = strrchr(prev, '@');

		while (p < 15 && p < ll && prev + p < pat && prev[p] == k[p])
			p++;
	}
	put(w, p, 4);
	put(w, ll - p, 6);
	for (unsigned i = p; i < ll; i++) {
		const char *c = strchr(alpha, k[i]);

		if (c && k[i])
			put(w, (uint64_t)(c - alpha), 6);
		else {
			put(w, 63, 6);
			put(w, (uint8_t)k[i], 8);
		}
	}
}

/* Decodes key j (0 <= j < G) of the group at pos into out. */
/* Decodes keys 0..j of the group at pos into out in turn; with want,
 * stops at the first key i >= from equal to it and returns i (-1 if
 * none up to j); without, returns j with key j in out. */
static int walk_group(const uint8_t *p, uint64_t pos, unsigned j,
		      const char *want, unsigned from, char *out)
{
	char prev[300] = "";

	for (unsigned i = 0; i <= j; i++) {
		char *o = out;

		if (!get(p, &pos, 1)) {
			unsigned sp = (unsigned)get(p, &pos, 4);
			unsigned n = (unsigned)get(p, &pos, 4);

			*o++ = '+';
			memcpy(o, prev + 1, sp);
			o += sp;
			for (unsigned d = 0; d < n; d++)
				*o++ = (char)('0' + get(p, &pos, 4));
			*o = 0;
		} else {
			unsigned di = (unsigned)get(p, &pos, 5);
			char dbuf[64];
			const char *d = di < 31 ? dom[di] : dbuf;

			if (di == 31) {
				unsigned dl = (unsigned)get(p, &pos, 6);

				for (unsigned c = 0; c < dl; c++)
					dbuf[c] = (char)get(p, &pos, 8);
				dbuf[dl] = 0;
			}
			unsigned sp = (unsigned)get(p, &pos, 4);
			unsigned n = (unsigned)get(p, &pos, 6);

			memcpy(o, prev, sp);
			o += sp;
			for (unsigned c = 0; c < n; c++) {
				unsigned v = (unsigned)get(p, &pos, 6);

				*o++ = v == 63 ? (char)get(p, &pos, 8)
					       : alpha[v];
			}
			*o++ = '@';
			strcpy(o, d);
		}
		if (want && i >= from && !strcmp(out, want))
			return (int)i;
		if (i < j)
			strcpy(prev, out);
	}
	return want ? -1 : (int)j;
}

static void get_key(const uint8_t *p, uint64_t pos, unsigned j, char *out)
{
	walk_group(p, pos, j, NULL, 0, out);
}

/* The id of key k, known to be in class c (what a class filter probe
 * names): a binary search over the first keys of the class's groups,
 * then a walk of one group. -1 if absent. */
static int64_t find_key(const uint8_t *p, const uint64_t *goff, unsigned c,
			const char *k)
{
	uint32_t lo = cbase[c], hi = cbase[c + 1];
	uint32_t glo = (lo + G - 1) / G, ghi = (hi - 1) / G + 1, a, b;
	char out[300];
	int j;

	/* groups glo .. ghi-1 start inside the class (the last may run
	 * past it); find the last whose first key is <= k */
	for (a = glo, b = ghi; a < b;) {
		uint32_t m = a + (b - a) / 2;

		if (m * G >= hi)
			b = m;
		else {
			get_key(p, goff[m], 0, out);
			if (strcmp(out, k) <= 0)
				a = m + 1;
			else
				b = m;
		}
	}
	uint32_t first = a > glo ? (a - 1) * G : lo; /* first id to look at */
	uint32_t g = first / G, last = g * G + G - 1;

	if (last >= hi)
		last = hi - 1;
	if (last >= H.n)
		last = H.n - 1;
	j = walk_group(p, goff[g], last - g * G, k, first - g * G, out);
	return j < 0 ? -1 : (int64_t)g * G + j;
}

static int cmp_count(const void *a, const void *b)
{
	const uint32_t *x = a, *y = b;

	return x[1] < y[1] ? 1 : x[1] > y[1] ? -1 : 0;
}

static void dictionary(void)
{
	/* the 31 commonest email domains get 5-bit codes */
	table D = { 0 };

	for (uint32_t i = 0; i < H.n; i++) {
		const char *at = strrchr(H.v[i].k, '@');

		if (at) {
			uint32_t j = intern(&D, at + 1);

			D.v[j].n++;
		}
	}
	uint32_t (*dc)[2] = malloc((D.n ? D.n : 1) * sizeof(*dc));

	for (uint32_t i = 0; i < D.n; i++) {
		dc[i][0] = i;
		dc[i][1] = D.v[i].n;
	}
	qsort(dc, D.n, sizeof(*dc), cmp_count);
	for (ndom = 0; ndom < 31 && ndom < D.n; ndom++)
		snprintf(dom[ndom], sizeof(dom[0]), "%s", D.v[dc[ndom][0]].k);

	bw w = { 0 };
	uint32_t ng = (H.n + G - 1) / G;
	uint64_t *goff = malloc(ng * sizeof(*goff));

	for (uint32_t g = 0; g < ng; g++) {
		goff[g] = w.pos;
		for (uint32_t i = g * G; i < H.n && i < (g + 1) * G; i++)
			put_key(&w, hord[i]->k, i > g * G ? hord[i - 1]->k
							  : NULL);
	}
	printf("handles readable key by key, groups of %d: %.2f bytes/record "
	       "(+ 4-byte group offsets: %.2f)\n", G, (double)w.pos / 8 / N,
	       ((double)w.pos / 8 + 4.0 * ng) / N);
	char out[300];

	for (uint32_t i = 0; i < H.n; i++) {
		get_key(w.p, goff[i / G], i % G, out);
		if (strcmp(out, hord[i]->k)) {
			fprintf(stderr, "key %u: %s, not %s\n", i, out,
				hord[i]->k);
			exit(1);
		}
	}
	uint64_t x = 88172645463325252ull, sink = 0;

	for (int run = 0; run < 3; run++) {
		int reps = 1000000;
		double t0 = now_s();

		for (int r = 0; r < reps; r++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			uint32_t i = (uint32_t)(x % H.n);

			get_key(w.p, goff[i / G], i % G, out);
			sink += (uint8_t)out[3];
		}
		printf("one handle by id, random ids: %.3f us\n",
		       (now_s() - t0) * 1e6 / reps);
	}
	/* every key is found at its id */
	for (uint32_t i = 0; i < H.n; i++)
		if (find_key(w.p, goff, idcls[i], hord[i]->k) != (int64_t)i) {
			fprintf(stderr, "find %s: not id %u\n", hord[i]->k, i);
			exit(1);
		}
	for (int run = 0; run < 3; run++) {
		int reps = 300000;
		double t0 = now_s();

		for (int r = 0; r < reps; r++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			uint32_t i = (uint32_t)(x % H.n);

			sink += (uint64_t)find_key(w.p, goff, idcls[i],
						   hord[i]->k);
		}
		printf("one handle's id from its key (its class known), random "
		       "keys: %.3f us\n", (now_s() - t0) * 1e6 / reps);
	}
	if (sink == 42)
		exit(3);
}

int main(int argc, char **argv)
{
	uint64_t creq[MAXC] = { 0 }, ctgt[MAXC] = { 0 }, csr[4] = { 0 };
	bw w = { 0 };

	if (argc < 2) {
		fprintf(stderr, "usage: minib DAY.csv\n");
		return 2;
	}
	load(argv[1]);
	assign_ids();
	awidth = bitlen(A.n - 1);
	for (uint32_t i = 0; i < N; i++) {
		if (!(i % M) || R[i].addr != R[i - 1].addr ||
		    R[i].req != R[i - 1].req)
			creq[idcls[R[i].req]]++;
		ctgt[idcls[R[i].tgt]]++;
		csr[R[i].sr]++;
	}
	huff_build(&hreq, creq, ncls);
	huff_build(&htgt, ctgt, ncls);
	huff_build(&hsr, csr, 4);

	uint32_t nb = (N + M - 1) / M;
	uint64_t *boff = malloc(nb * sizeof(*boff));

	for (uint32_t b = 0; b < nb; b++) {
		boff[b] = w.pos;
		encode_block(&w, R + (size_t)b * M,
			     b + 1 < nb ? M : N - b * M);
	}
	printf("%u records, %u handles in %u classes, %u addresses: %u mini "
	       "blocks of %d, %.2f bytes/record (+ 4-byte offsets: %.2f)\n",
	       N, H.n, ncls, A.n, nb, M, (double)w.pos / 8 / N,
	       ((double)w.pos / 8 + 4.0 * nb) / N);

	/* every block back, checked against the records */
	rec out[M];

	for (uint32_t b = 0; b < nb; b++) {
		unsigned n = b + 1 < nb ? M : N - b * M;

		decode_block(w.p, boff[b], n, out);
		for (unsigned i = 0; i < n; i++) {
			const rec *x = &R[(size_t)b * M + i];

			if (out[i].t != x->t || out[i].req != x->req ||
			    out[i].tgt != x->tgt || out[i].addr != x->addr ||
			    out[i].sr != x->sr) {
				fprintf(stderr, "block %u record %u differs\n",
					b, i);
				return 1;
			}
		}
	}
	/* timing: blocks in a random order (a lookup's access pattern) */
	uint32_t *ord = malloc(nb * sizeof(*ord));
	uint64_t x = 88172645463325252ull, sink = 0;

	for (uint32_t b = 0; b < nb; b++)
		ord[b] = b;
	for (uint32_t b = nb - 1; b > 0; b--) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint32_t j = (uint32_t)(x % (b + 1)), t = ord[b];

		ord[b] = ord[j];
		ord[j] = t;
	}
	for (int run = 0; run < 3; run++) {
		double t0 = now_s();
		int reps = 20;

		for (int r = 0; r < reps; r++)
			for (uint32_t b = 0; b < nb; b++) {
				uint32_t k = ord[b];

				decode_block(w.p, boff[k],
					     k + 1 < nb ? M : N - k * M, out);
				sink += out[M / 2].tgt;
			}
		double dt = now_s() - t0;

		printf("decode a whole mini block, random order: %.3f us "
		       "(%.1f ns/record)\n",
		       dt * 1e6 / (reps * (double)nb),
		       dt * 1e9 / (reps * (double)N));
	}
	dictionary();
	return sink == 42 ? 3 : 0;
}
