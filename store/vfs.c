/* vfs.c - the POSIX implementation of the file-system seam, and the
 * helpers every module uses on top of it. */
#define _GNU_SOURCE
#include "vfs.h"

#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int px_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	/* The store directory itself (opened by the path the user gave,
	 * relative to AT_FDCWD) may be a symlink: operators move stores to
	 * other disks that way. Nothing inside it may be. */
	if (dirfd != AT_FDCWD)
		flags |= O_NOFOLLOW;
	return openat(dirfd, name, flags | O_CLOEXEC, mode);
}

static int px_fstatat(int dirfd, const char *name, struct stat *st)
{
	return fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW);
}

static int px_flock(int fd, int op)
{
	return flock(fd, op);
}

static int px_listdir(int dirfd, int (*fn)(const char *, void *), void *ctx)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	/* fdopendir takes ownership of the descriptor: give it a copy. */
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = fn(de->d_name, ctx);
		if (rc)
			break;
		errno = 0;
	}
	if (!rc && errno) {
		int e = errno;

		closedir(d);
		errno = e;
		return -1;
	}
	closedir(d);
	return rc;
}

const qli_vfs qli_vfs_posix = {
	.openat = px_openat,
	.close = close,
	.pread = pread,
	.pwrite = pwrite,
	.fsync = fsync,
	.fdatasync = fdatasync,
	.ftruncate = ftruncate,
	.fstat = fstat,
	.fstatat = px_fstatat,
	.renameat = renameat,
	.unlinkat = unlinkat,
	.mkdirat = mkdirat,
	.flock = px_flock,
	.listdir = px_listdir,
};

const qli_vfs *qli_vfs_cur = &qli_vfs_posix;

int qli_write_full(int fd, const void *buf, size_t len, off_t off,
		   const char *path)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = qli_vfs_cur->pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return qli_errno(errno, "write", path);
		}
		if (n == 0)
			return qli_errno(EIO, "write (no progress)", path);
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int qli_read_full(int fd, void *buf, size_t len, off_t off, const char *path)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = qli_vfs_cur->pread(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return qli_errno(errno, "read", path);
		}
		if (n == 0)
			return qli_err(QL_ECORRUPT,
				       "%s: file ends at offset %lld, %zu bytes "
				       "short", path, (long long)off, len);
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int qli_sync_dir(int dirfd, const char *path)
{
	/* The directory entry of a new or renamed file is durable only once
	 * the directory itself is synced (ext4, xfs: rename is otherwise
	 * only ordered, not durable). */
	if (qli_vfs_cur->fsync(dirfd) < 0)
		return qli_errno(errno, "fsync directory", path);
	return 0;
}

int qli_write_atomic(int dirfd, const char *name, const void *buf,
		     size_t len, mode_t mode, const char *what)
{
	char tmp[256];
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = qli_vfs_cur->openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC,
				 mode);
	if (fd < 0)
		return qli_errno(errno, "create", tmp);
	rc = qli_write_full(fd, buf, len, 0, tmp);
	/* The data must be on disk before the rename makes it visible under
	 * the real name, or a crash could leave a named but empty file. */
	if (!rc && qli_vfs_cur->fsync(fd) < 0)
		rc = qli_errno(errno, "fsync", tmp);
	qli_vfs_cur->close(fd);
	if (!rc && qli_vfs_cur->renameat(dirfd, tmp, dirfd, name) < 0)
		rc = qli_errno(errno, "rename to", name);
	if (!rc)
		rc = qli_sync_dir(dirfd, what);
	if (rc)
		qli_vfs_cur->unlinkat(dirfd, tmp, 0);
	return rc;
}
