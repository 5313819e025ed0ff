/* fuzz_util.h - the file chores the fuzz targets share: a private
 * temporary directory and writing an input out as a whole file. Any
 * failure aborts: it is the harness, not the code under test, that broke. */
#ifndef QL_FUZZ_UTIL_H
#define QL_FUZZ_UTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Makes $TMPDIR/qlfuzz.XXXXXX (TMPDIR=/dev/shm runs faster) into dir and
 * returns a descriptor of it. */
static inline int fz_tempdir(char *dir, size_t sz)
{
	const char *base = getenv("TMPDIR");
	int fd;

	snprintf(dir, sz, "%s/qlfuzz.XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(dir))
		abort();
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		abort();
	return fd;
}

/* Writes p[0..n) as the whole file 'name' under dirfd (AT_FDCWD: a
 * path). */
static inline void fz_write_file(int dirfd, const char *name,
				 const uint8_t *p, size_t n)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		abort();
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			abort();
		p += w;
		n -= (size_t)w;
	}
	close(fd);
}

#endif
