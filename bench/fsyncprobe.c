/* fsyncprobe.c - the disk's own cost of one durable append: appends
 * SIZE bytes (default 45,000: one 4,096-record .qls block) to a new file
 * COUNT times (default 1,000), each followed by fdatasync, as the store's
 * group commit does when nothing else writes; prints the mean per append.
 * The ingest figures of bench/ vary with this disk latency (on this
 * project's VM it moved from 0.28 to 0.39 ms within an hour), so print it
 * beside them. Usage: fsyncprobe FILE [SIZE [COUNT]] (FILE is removed). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 45000;
	long count = argc > 3 ? strtol(argv[3], NULL, 10) : 1000;
	char *buf;
	double t0;
	off_t off = 0;
	int fd;

	if (argc < 2 || size == 0 || count <= 0) {
		fprintf(stderr, "usage: fsyncprobe FILE [SIZE [COUNT]]\n");
		return 2;
	}
	buf = malloc(size);
	if (!buf)
		return 1;
	memset(buf, 'x', size);
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	t0 = now_s();
	for (long i = 0; i < count; i++) {
		if (pwrite(fd, buf, size, off) != (ssize_t)size ||
		    fdatasync(fd) < 0) {
			perror(argv[1]);
			unlink(argv[1]);
			return 1;
		}
		off += (off_t)size;
	}
	printf("fsyncprobe: %zu-byte append + fdatasync: %.3f ms each "
	       "(%ld appends to a new file)\n", size,
	       (now_s() - t0) * 1e3 / (double)count, count);
	close(fd);
	unlink(argv[1]);
	free(buf);
	return 0;
}
