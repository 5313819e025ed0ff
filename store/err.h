/* err.h - result codes and the per-thread error message.
 *
 * Every failing path sets the message with qli_err() and returns the code
 * it gives back, so that a caller can write `return qli_err(QL_EINVAL,
 * "requester %s: ...", v);`. */
#ifndef QL_ERR_H
#define QL_ERR_H

#include "querylog.h"

#if defined(__GNUC__)
#define QLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QLI_PRINTF(a, b)
#endif

/* Sets the calling thread's message and returns rc. */
int qli_err(int rc, const char *fmt, ...) QLI_PRINTF(2, 3);

/* Maps an errno value from a failed system call to a QL_E* code and sets
 * the message "<what> <path>: <strerror(errnum)>". */
int qli_errno(int errnum, const char *what, const char *path);

/* Clears the calling thread's message. */
void qli_clear_err(void);

/* Prefixes the current message with more context ("segment X: "). */
void qli_err_prefix(const char *fmt, ...) QLI_PRINTF(1, 2);

#endif
