/* vfs.h - the one seam through which the store touches the file system.
 *
 * Every file-system call of the store goes through the function table
 * qli_vfs (LMDB does its own I/O and is the one exception). Tests replace
 * the table to inject errors (EIO, ENOSPC, short writes, fsync failures)
 * and to simulate power loss. The functions have POSIX semantics: -1 and
 * errno on failure. Paths are always relative to a directory descriptor
 * and are single names (no "/"), and opens relative to a store directory
 * use O_NOFOLLOW, so a symlink inside the store is refused and no name
 * leads out of the store directory. The store directory itself may be a
 * symlink. */
#ifndef QL_VFS_H
#define QL_VFS_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct qli_vfs {
	int (*openat)(int dirfd, const char *name, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	int (*fsync)(int fd);
	int (*fdatasync)(int fd);
	int (*ftruncate)(int fd, off_t len);
	int (*fstat)(int fd, struct stat *st);
	int (*fstatat)(int dirfd, const char *name, struct stat *st);
	int (*renameat)(int olddirfd, const char *oldname, int newdirfd,
			const char *newname);
	int (*unlinkat)(int dirfd, const char *name, int flags);
	int (*mkdirat)(int dirfd, const char *name, mode_t mode);
	int (*flock)(int fd, int op);
	/* Lists the names in directory dirfd (not "." or ".."): calls fn for
	 * each; returns -1 and errno on failure, or fn's non-zero result. */
	int (*listdir)(int dirfd, int (*fn)(const char *name, void *ctx),
		       void *ctx);
} qli_vfs;

/* The table in use. Tests may swap it while no store is open. */
extern const qli_vfs *qli_vfs_cur;
/* The real one. */
extern const qli_vfs qli_vfs_posix;

/* Writes all of buf at off (retrying short writes and EINTR). Returns 0,
 * or a QL_E* code with the message naming path. */
int qli_write_full(int fd, const void *buf, size_t len, off_t off,
		   const char *path);
/* Reads exactly len bytes at off. Returns 0, QL_ECORRUPT if the file is
 * shorter (message names path and offset), or QL_EIO. */
int qli_read_full(int fd, void *buf, size_t len, off_t off, const char *path);
/* Makes the directory's entries durable (after create, rename, unlink). */
int qli_sync_dir(int dirfd, const char *path);
/* Writes a small file atomically: name.tmp, fsync, rename, fsync dir. */
int qli_write_atomic(int dirfd, const char *name, const void *buf,
		     size_t len, mode_t mode, const char *what);

#endif
