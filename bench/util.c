/* util.c - small helpers shared by the benchmark driver and engines. */
#define _GNU_SOURCE
#include "engine.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char errbuf[1024];

void bench_seterr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
}

const char *bench_err(void)
{
	return errbuf;
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void ip_range(const uint8_t net[16], unsigned plen, uint8_t lo[16],
	      uint8_t hi[16])
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = plen > 8 * i ? plen - 8 * i : 0;
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff00u >> bits);

		lo[i] = net[i] & mask;
		hi[i] = (uint8_t)(net[i] | (uint8_t)~mask);
	}
}

int put_field(char dst[64], const char *src, size_t len)
{
	if (len > 63) {
		bench_seterr("returned a %zu-byte handle (at most 63 exist)",
			     len);
		return -1;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/* nftw has no context argument: the walk is single-threaded, so statics
 * are enough. */
static uint64_t walk_app, walk_alloc;

static int usage_cb(const char *path, const struct stat *st, int flag,
		    struct FTW *f)
{
	if (flag == FTW_F && S_ISREG(st->st_mode)) {
		walk_app += (uint64_t)st->st_size;
		walk_alloc += (uint64_t)st->st_blocks * 512;
	}
	return 0;
}

int dir_usage(const char *dir, uint64_t *apparent, uint64_t *allocated)
{
	walk_app = walk_alloc = 0;
	if (nftw(dir, usage_cb, 32, FTW_PHYS) < 0) {
		bench_seterr("walk %s: %s", dir, strerror(errno));
		return -1;
	}
	*apparent = walk_app;
	*allocated = walk_alloc;
	return 0;
}

static int rm_cb(const char *path, const struct stat *st, int flag,
		 struct FTW *f)
{
	if (remove(path) < 0 && errno != ENOENT) {
		bench_seterr("remove %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int rm_tree(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	return nftw(dir, rm_cb, 32, FTW_DEPTH | FTW_PHYS) ? -1 : 0;
}

int mkdir_p(const char *dir)
{
	char tmp[4096];
	size_t len = strlen(dir);

	if (len >= sizeof(tmp)) {
		bench_seterr("path too long: %s", dir);
		return -1;
	}
	memcpy(tmp, dir, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		goto fail;
	return 0;
fail:
	bench_seterr("mkdir %s: %s", tmp, strerror(errno));
	return -1;
}
