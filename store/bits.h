/* bits.h - a growing bit string (least significant bit first), the
 * output of the bit-coded formats (minib.h, dgroup.h). Their writing and
 * reading helpers are in bitio.h. */
#ifndef QL_BITS_H
#define QL_BITS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A growing bit string. */
typedef struct qli_bits {
	uint8_t *p;
	uint64_t nbits;  /* written */
	size_t cap;      /* bytes; always 8 zero bytes past nbits */
} qli_bits;

static inline void qli_bits_free(qli_bits *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

#endif
