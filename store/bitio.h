/* bitio.h - writing and reading bit strings (bits.h), least significant
 * bit first: room is reserved, then put; every get is checked against
 * the end it is given. Short static names: include it from the .c files
 * of the bit-coded formats only (minib.c, dgroup.c), never a header. */
#ifndef QL_BITIO_H
#define QL_BITIO_H

#include "bits.h"
#include "err.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- writing: reserve room (bits_reserve), then put ---- */

static inline int bits_reserve(qli_bits *b, uint64_t more)
{
	size_t need = (size_t)((b->nbits + more + 7) / 8) + 8;

	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;

	while (cap < need)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);

	if (!p)
		return qli_err(QL_ENOMEM, "out of memory");
	memset(p + b->cap, 0, cap - b->cap);
	b->p = p;
	b->cap = cap;
	return 0;
}

/* n <= 57; room reserved */
static inline void put(qli_bits *b, uint64_t v, unsigned n)
{
	uint64_t cur;
	uint8_t *q = b->p + b->nbits / 8;

	if (!n)
		return;
	memcpy(&cur, q, 8);
	cur |= (v & (UINT64_MAX >> (64 - n))) << (b->nbits % 8);
	memcpy(q, &cur, 8);
	b->nbits += n;
}

static inline void put_wide(qli_bits *b, uint64_t v, unsigned n) /* n <= 64 */
{
	if (n > 32) {
		put(b, v & 0xffffffffu, 32);
		v >>= 32;
		n -= 32;
	}
	put(b, v, n);
}

/* ---- reading: every get is checked against end ---- */

typedef struct {
	const uint8_t *p;
	size_t len;
	uint64_t pos, end;
} rd;

/* The next 57+ bits at pos (zeros past the end of the bytes). */
static inline uint64_t peek(const rd *d)
{
	size_t at = (size_t)(d->pos / 8);
	uint64_t v = 0;

	if (at + 8 <= d->len) {
		memcpy(&v, d->p + at, 8);
	} else if (at < d->len) {
		memcpy(&v, d->p + at, d->len - at);
	}
	return v >> (d->pos % 8);
}

static inline int get(rd *d, unsigned n, uint64_t *v) /* n <= 57 */
{
	if (d->end - d->pos < n)
		return -1;
	*v = n ? peek(d) & (UINT64_MAX >> (64 - n)) : 0;
	d->pos += n;
	return 0;
}

static inline int get_wide(rd *d, unsigned n, uint64_t *v)
{
	uint64_t hi;

	if (n <= 32)
		return get(d, n, v);
	if (get(d, 32, v) || get(d, n - 32, &hi))
		return -1;
	*v |= hi << 32;
	return 0;
}

/* Zero bits up to the next one (which is consumed); at most max zeros. */
static inline int get_unary(rd *d, uint64_t max, uint64_t *q)
{
	*q = 0;
	for (;;) {
		uint64_t v = peek(d) & (UINT64_MAX >> 7); /* 57 bits */
		uint64_t avail = d->end - d->pos;

		if (v) {
			unsigned z = (unsigned)__builtin_ctzll(v);

			if (z >= avail || *q + z > max)
				return -1;
			*q += z;
			d->pos += z + 1;
			return 0;
		}
		if (avail <= 57 || *q + 57 > max)
			return -1;
		*q += 57;
		d->pos += 57;
	}
}

#endif
