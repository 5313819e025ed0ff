/* err.c - result code names and the per-thread error message. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define QLI_MSG_MAX 512

static _Thread_local char qli_msg[QLI_MSG_MAX];

const char *ql_strerror(int rc)
{
	switch (rc) {
	case QL_OK: return "QL_OK: success";
	case QL_ROW: return "QL_ROW: a record is available";
	case QL_EINVAL: return "QL_EINVAL: invalid argument or record field";
	case QL_ENOMEM: return "QL_ENOMEM: out of memory";
	case QL_EIO: return "QL_EIO: input/output error";
	case QL_ENOSPC: return "QL_ENOSPC: no space left on device";
	case QL_ECORRUPT: return "QL_ECORRUPT: damaged data on disk";
	case QL_EBUSY: return "QL_EBUSY: store is locked by another writer";
	case QL_ENOTFOUND: return "QL_ENOTFOUND: not found";
	case QL_EVERSION: return "QL_EVERSION: unsupported format version";
	case QL_EREADONLY: return "QL_EREADONLY: store is open read-only";
	case QL_EEXIST: return "QL_EEXIST: already exists";
	case QL_ERANGE: return "QL_ERANGE: time outside the accepted window";
	case QL_EUNSAFE: return "QL_EUNSAFE: refused for safety";
	case QL_EFAILED:
		return "QL_EFAILED: writer disabled by an earlier error; reopen";
	default: return "unknown querylog result code";
	}
}

const char *ql_errmsg(const struct ql_store *store)
{
	(void)store;
	return qli_msg;
}

const char *ql_version(void)
{
	return QL_VERSION_STRING;
}

int qli_err(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(qli_msg, sizeof(qli_msg), fmt, ap);
	va_end(ap);
	return rc;
}

void qli_err_prefix(const char *fmt, ...)
{
	char old[QLI_MSG_MAX];
	va_list ap;
	int n;

	memcpy(old, qli_msg, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(qli_msg, sizeof(qli_msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(qli_msg))
		snprintf(qli_msg + n, sizeof(qli_msg) - (size_t)n, "%s", old);
}

int qli_errno(int errnum, const char *what, const char *path)
{
	int rc;

	switch (errnum) {
	case ENOSPC:
	case EDQUOT: rc = QL_ENOSPC; break;
	case ENOMEM: rc = QL_ENOMEM; break;
	case ENOENT: rc = QL_ENOTFOUND; break;
	case EEXIST: rc = QL_EEXIST; break;
	case EWOULDBLOCK: rc = QL_EBUSY; break;
	case ELOOP: rc = QL_EUNSAFE; break;
	default: rc = QL_EIO; break;
	}
	snprintf(qli_msg, sizeof(qli_msg), "%s %s: %s", what,
		 path ? path : "", strerror(errnum));
	return rc;
}

void qli_clear_err(void)
{
	qli_msg[0] = '\0';
}
