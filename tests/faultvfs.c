/* faultvfs.c - counted I/O, injected faults and a simulated disk for the
 * store's tests. The rules of the model are in faultvfs.h. */
#define _GNU_SOURCE
#include "faultvfs.h"

#include "vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FV_MAXFD 4096
#define SECTOR 512

/* ---------------------------------------------------------------------- */
/* state                                                                   */
/* ---------------------------------------------------------------------- */

typedef struct fv_obj fv_obj;

typedef struct fv_dent {
	char *name;
	fv_obj *obj;
} fv_dent;

/* One file or directory as the model sees it. An object outlives its
 * inode: an unlinked file stays alive while a durable directory entry
 * still names it, and its inode number may meanwhile be reused. */
struct fv_obj {
	fv_obj *next_all;
	int dir;
	mode_t mode;
	dev_t dev;
	ino_t ino;
	int live;          /* (dev, ino) on the real disk is this object */
	uint8_t *dur;      /* regular: durable content */
	size_t dur_len;
	fv_dent *ents;     /* directory: durable entries */
	size_t nents;
	uint8_t *vol;      /* regular: real content at power cut */
	size_t vol_len;
	int have_vol;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int trace = -1;
static unsigned long count, arm_n;
static enum fv_action armed;
static int hit, dead, disk_full, paused;
static char hit_op[32], hit_name[PATH_MAX];
static char *fd_name[FV_MAXFD];
#define FV_MAXFAILED 16
static char failed_names[FV_MAXFAILED][NAME_MAX + 1];
static int nfailed;

static int tracking, root_durable, lying;
static char root_path[PATH_MAX];
static fv_obj *all_objs, *root_obj;

/* ---------------------------------------------------------------------- */
/* helpers                                                                 */
/* ---------------------------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static const char *fdname(int fd)
{
	if (fd >= 0 && fd < FV_MAXFD && fd_name[fd])
		return fd_name[fd];
	return "?";
}

static void set_fdname(int fd, const char *name)
{
	if (fd < 0 || fd >= FV_MAXFD)
		return;
	free(fd_name[fd]);
	fd_name[fd] = strdup(name);
}

static int action_errno(enum fv_action a)
{
	switch (a) {
	case FV_ENOSPC:
	case FV_SHORT:
	case FV_SHORT_NOSPC:
		return ENOSPC;
	default:
		return EIO;
	}
}

/* Notes a failure handed to the store. mu held. */
static void note_failed(const char *name)
{
	if (nfailed < FV_MAXFAILED)
		snprintf(failed_names[nfailed], sizeof(failed_names[0]), "%s",
			 name);
	nfailed++;
}

/* Counts one operation; returns the action to apply to it. mu held. */
static enum fv_action gate(const char *op, const char *name)
{
	unsigned long n;

	if (paused)
		return FV_NONE; /* outside the phase under test */
	n = ++count;
	if (trace < 0)
		trace = getenv("FV_TRACE") && *getenv("FV_TRACE") == '1';
	if (trace)
		fprintf(stderr, "fv %4lu %-9s %s%s\n", n, op, name,
			armed && n == arm_n && !hit ? "   <== fault" : "");
	if (armed == FV_NONE || hit || n != arm_n)
		return FV_NONE;
	hit = 1;
	snprintf(hit_op, sizeof(hit_op), "%s", op);
	snprintf(hit_name, sizeof(hit_name), "%s", name);
	note_failed(name);
	if (armed == FV_CRASH)
		dead = 1;
	return armed;
}

static int read_all(int fd, uint8_t **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	uint8_t *p = malloc(cap);

	if (!p)
		return -1;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			uint8_t *np = realloc(p, cap *= 2);

			if (!np) {
				free(p);
				return -1;
			}
			p = np;
		}
		r = pread(fd, p + n, cap - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(p);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*out = p;
	*len = n;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the model                                                               */
/* ---------------------------------------------------------------------- */

static fv_obj *obj_new(int dir, const struct stat *st)
{
	fv_obj *o = calloc(1, sizeof(*o));

	if (!o)
		abort();
	o->dir = dir;
	o->mode = st->st_mode & 07777;
	o->dev = st->st_dev;
	o->ino = st->st_ino;
	o->live = 1;
	o->next_all = all_objs;
	all_objs = o;
	return o;
}

static fv_obj *find_live(dev_t dev, ino_t ino)
{
	for (fv_obj *o = all_objs; o; o = o->next_all)
		if (o->live && o->dev == dev && o->ino == ino)
			return o;
	return NULL;
}

static void unbind(dev_t dev, ino_t ino)
{
	fv_obj *o = find_live(dev, ino);

	if (o)
		o->live = 0;
}

static void dents_free(fv_obj *o)
{
	for (size_t i = 0; i < o->nents; i++)
		free(o->ents[i].name);
	free(o->ents);
	o->ents = NULL;
	o->nents = 0;
}

static void dent_add(fv_obj *d, const char *name, fv_obj *o)
{
	fv_dent *ne = realloc(d->ents, (d->nents + 1) * sizeof(*ne));

	if (!ne)
		abort();
	d->ents = ne;
	d->ents[d->nents].name = strdup(name);
	d->ents[d->nents].obj = o;
	d->nents++;
}

static void objs_free(void)
{
	fv_obj *o, *next;

	for (o = all_objs; o; o = next) {
		next = o->next_all;
		dents_free(o);
		free(o->dur);
		free(o->vol);
		free(o);
	}
	all_objs = root_obj = NULL;
}

/* The object of directory dirfd (or of the parent of path when dirfd is
 * AT_FDCWD), if the model follows it. */
static fv_obj *parent_obj(int dirfd, const char *name)
{
	struct stat st;
	fv_obj *o;

	if (dirfd == AT_FDCWD) {
		char parent[PATH_MAX];
		const char *slash = strrchr(name, '/');

		if (!slash)
			snprintf(parent, sizeof(parent), ".");
		else if (slash == name)
			snprintf(parent, sizeof(parent), "/");
		else
			snprintf(parent, sizeof(parent), "%.*s",
				 (int)(slash - name), name);
		if (stat(parent, &st))
			return NULL;
	} else if (fstat(dirfd, &st)) {
		return NULL;
	}
	o = find_live(st.st_dev, st.st_ino);
	return o && o->dir ? o : NULL;
}

/* A name just created (file or directory) becomes a new object. */
static void track_created(int dirfd, const char *name, int dir)
{
	struct stat st;
	fv_obj *o;

	if (!parent_obj(dirfd, name))
		return;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return;
	/* a stale binding: that inode number belonged to a removed file */
	unbind(st.st_dev, st.st_ino);
	o = obj_new(dir, &st);
	(void)o;
}

/* Takes the tree under path as durable. */
static fv_obj *snapshot(const char *path)
{
	struct stat st;
	fv_obj *o;

	if (lstat(path, &st))
		return NULL;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;

		o = obj_new(1, &st);
		if (!d)
			return o;
		while ((de = readdir(d)) != NULL) {
			char sub[PATH_MAX];
			fv_obj *c;

			if (!strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			c = snapshot(sub);
			if (c)
				dent_add(o, de->d_name, c);
		}
		closedir(d);
		return o;
	}
	if (S_ISREG(st.st_mode)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);

		o = obj_new(0, &st);
		if (fd >= 0) {
			if (read_all(fd, &o->dur, &o->dur_len))
				o->dur_len = 0;
			close(fd);
		}
		return o;
	}
	return NULL; /* symlinks and the like are not modelled */
}

/* fsync/fdatasync succeeded on fd: its data (file) or its entries
 * (directory) are now durable. */
static void make_durable(int fd)
{
	struct stat st;
	fv_obj *o;

	if (fstat(fd, &st))
		return;
	o = find_live(st.st_dev, st.st_ino);
	if (!o)
		return;
	if (o->dir) {
		int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct dirent *de;
		DIR *d;

		if (dfd < 0)
			return;
		d = fdopendir(dfd);
		if (!d) {
			close(dfd);
			return;
		}
		dents_free(o);
		while ((de = readdir(d)) != NULL) {
			struct stat cs;
			fv_obj *c;

			if (!strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			if (fstatat(dirfd(d), de->d_name, &cs,
				    AT_SYMLINK_NOFOLLOW))
				continue;
			if (!S_ISDIR(cs.st_mode) && !S_ISREG(cs.st_mode))
				continue;
			c = find_live(cs.st_dev, cs.st_ino);
			/* made behind our back: its data was never synced */
			if (!c)
				c = obj_new(S_ISDIR(cs.st_mode), &cs);
			dent_add(o, de->d_name, c);
		}
		closedir(d);
	} else {
		char proc[64];
		uint8_t *p;
		size_t n;
		int rfd;

		/* the store's fd may be write-only (a .tmp file) */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		rfd = open(proc, O_RDONLY | O_CLOEXEC);
		if (rfd < 0)
			return;
		if (!read_all(rfd, &p, &n)) {
			free(o->dur);
			o->dur = p;
			o->dur_len = n;
		}
		close(rfd);
	}
}

/* FV_ROOT_DURABLE: root's entries follow the real directory at once. */
static void root_changed(void)
{
	int fd;

	if (!tracking || !root_durable)
		return;
	fd = open(root_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		make_durable(fd);
		close(fd);
	}
}

/* Records the real (volatile) content of every live file under path. */
static void collect_vol(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char sub[PATH_MAX];
		struct stat st;
		fv_obj *o;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (lstat(sub, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			collect_vol(sub);
			continue;
		}
		o = find_live(st.st_dev, st.st_ino);
		if (o && !o->dir && S_ISREG(st.st_mode)) {
			int fd = open(sub, O_RDONLY | O_CLOEXEC);

			if (fd >= 0) {
				free(o->vol);
				o->vol = NULL;
				o->have_vol = !read_all(fd, &o->vol,
							&o->vol_len);
				close(fd);
			}
		}
	}
	closedir(d);
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *f)
{
	(void)st;
	(void)flag;
	if (f->level == 0)
		return 0; /* keep root itself */
	return remove(p);
}

/* What a reboot finds in a regular file (rule 5 of the header). */
static const uint8_t *pick_content(fv_obj *o, int torn, uint64_t *rng,
				   size_t *len, uint8_t **tmp)
{
	*tmp = NULL;
	*len = o->dur_len;
	if (!torn || !o->have_vol)
		return o->dur;
	if (o->vol_len > o->dur_len &&
	    (!o->dur_len || !memcmp(o->vol, o->dur, o->dur_len))) {
		size_t tail = o->vol_len - o->dur_len, l, a, b;

		switch (rnd(rng) % 4) {
		case 0:
			return o->dur;
		case 1:
			*len = o->vol_len;
			return o->vol;
		case 2:
			*len = o->dur_len + rnd(rng) % tail;
			return o->vol;
		default:
			l = o->dur_len + 1 + rnd(rng) % tail;
			*tmp = malloc(l);
			if (!*tmp)
				abort();
			memcpy(*tmp, o->vol, l);
			a = o->dur_len + rnd(rng) % (l - o->dur_len);
			a = (a + SECTOR - 1) / SECTOR * SECTOR;
			if (a >= l)
				a = o->dur_len;
			b = a + SECTOR * (1 + rnd(rng) % 4);
			if (b > l)
				b = l;
			memset(*tmp + a, 0, b - a);
			*len = l;
			return *tmp;
		}
	}
	if (o->vol_len != o->dur_len ||
	    (o->dur_len && memcmp(o->vol, o->dur, o->dur_len))) {
		if (rnd(rng) % 2) {
			*len = o->vol_len;
			return o->vol;
		}
	}
	return o->dur;
}

static int rebuild(const char *path, fv_obj *d, int torn, uint64_t *rng)
{
	for (size_t i = 0; i < d->nents; i++) {
		fv_obj *o = d->ents[i].obj;
		char sub[PATH_MAX];

		snprintf(sub, sizeof(sub), "%s/%s", path, d->ents[i].name);
		if (o->dir) {
			if (mkdir(sub, 0700) || chmod(sub, o->mode) ||
			    rebuild(sub, o, torn, rng))
				return -1;
		} else {
			const uint8_t *p;
			uint8_t *tmp;
			size_t len, off = 0;
			int fd;

			p = pick_content(o, torn, rng, &len, &tmp);
			fd = open(sub, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				  0600);
			if (fd < 0) {
				free(tmp);
				return -1;
			}
			while (off < len) {
				ssize_t w = write(fd, p + off, len - off);

				if (w <= 0) {
					free(tmp);
					close(fd);
					return -1;
				}
				off += (size_t)w;
			}
			free(tmp);
			if (fchmod(fd, o->mode)) {
				close(fd);
				return -1;
			}
			close(fd);
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the vfs table                                                           */
/* ---------------------------------------------------------------------- */

#define LOCK() pthread_mutex_lock(&mu)
#define UNLOCK() pthread_mutex_unlock(&mu)
#define FAIL(e) do { UNLOCK(); errno = (e); return -1; } while (0)

static int fv_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	int fd, existed = 1;

	LOCK();
	if (dead)
		FAIL(EIO);
	if (flags & O_CREAT) {
		enum fv_action a = gate("create", name);
		struct stat st;

		if (a)
			FAIL(action_errno(a));
		if (tracking)
			existed = !fstatat(dirfd, name, &st,
					   AT_SYMLINK_NOFOLLOW);
	}
	fd = qli_vfs_posix.openat(dirfd, name, flags, mode);
	if (fd >= 0) {
		set_fdname(fd, name);
		if (tracking && !existed) {
			track_created(dirfd, name, 0);
			root_changed();
		}
	}
	UNLOCK();
	return fd;
}

static int fv_close(int fd)
{
	LOCK();
	if (fd >= 0 && fd < FV_MAXFD) {
		free(fd_name[fd]);
		fd_name[fd] = NULL;
	}
	UNLOCK();
	/* even a dead machine lets the process free its descriptors */
	return qli_vfs_posix.close(fd);
}

static ssize_t fv_pread(int fd, void *buf, size_t len, off_t off)
{
	LOCK();
	if (dead)
		FAIL(EIO);
	UNLOCK();
	return qli_vfs_posix.pread(fd, buf, len, off);
}

static ssize_t fv_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	enum fv_action a;
	ssize_t n;

	LOCK();
	if (dead)
		FAIL(EIO);
	a = gate("pwrite", fdname(fd));
	if ((a == FV_SHORT || a == FV_SHORT_NOSPC) && len > 1) {
		n = qli_vfs_posix.pwrite(fd, buf, len / 2, off);
		if (a == FV_SHORT_NOSPC)
			disk_full = 1;
		UNLOCK();
		return n;
	}
	if (a)
		FAIL(action_errno(a));
	if (disk_full && !paused) {
		note_failed(fdname(fd));
		FAIL(ENOSPC);
	}
	n = qli_vfs_posix.pwrite(fd, buf, len, off);
	UNLOCK();
	return n;
}

static int do_sync(int fd, const char *op, int (*real)(int))
{
	enum fv_action a;
	int rc = 0;

	LOCK();
	if (dead)
		FAIL(EIO);
	a = gate(op, fdname(fd));
	/* a failed fsync syncs nothing: the durable state stays as it was */
	if (a)
		FAIL(action_errno(a));
	if (tracking) {
		if (!lying)
			make_durable(fd);
	} else
		rc = real(fd);
	UNLOCK();
	return rc;
}

static int fv_fsync(int fd)
{
	return do_sync(fd, "fsync", qli_vfs_posix.fsync);
}

static int fv_fdatasync(int fd)
{
	return do_sync(fd, "fdatasync", qli_vfs_posix.fdatasync);
}

static int fv_ftruncate(int fd, off_t len)
{
	enum fv_action a;
	int rc;

	LOCK();
	if (dead)
		FAIL(EIO);
	a = gate("ftruncate", fdname(fd));
	if (a)
		FAIL(action_errno(a));
	rc = qli_vfs_posix.ftruncate(fd, len);
	UNLOCK();
	return rc;
}

static int fv_fstat(int fd, struct stat *st)
{
	LOCK();
	if (dead)
		FAIL(EIO);
	UNLOCK();
	return qli_vfs_posix.fstat(fd, st);
}

static int fv_fstatat(int dirfd, const char *name, struct stat *st)
{
	LOCK();
	if (dead)
		FAIL(EIO);
	UNLOCK();
	return qli_vfs_posix.fstatat(dirfd, name, st);
}

static int fv_renameat(int od, const char *on, int nd, const char *nn)
{
	struct stat src, dst;
	int have_dst = 0, rc;
	enum fv_action a;

	LOCK();
	if (dead)
		FAIL(EIO);
	{
		char both[2 * NAME_MAX + 2];

		snprintf(both, sizeof(both), "%s %s", on, nn);
		a = gate("rename", both);
	}
	if (a)
		FAIL(action_errno(a));
	if (tracking)
		have_dst = !fstatat(nd, nn, &dst, AT_SYMLINK_NOFOLLOW) &&
			   !fstatat(od, on, &src, AT_SYMLINK_NOFOLLOW) &&
			   src.st_ino != dst.st_ino;
	rc = qli_vfs_posix.renameat(od, on, nd, nn);
	/* the replaced file lives on only in durable entries */
	if (!rc && have_dst)
		unbind(dst.st_dev, dst.st_ino);
	if (!rc)
		root_changed();
	UNLOCK();
	return rc;
}

static int fv_unlinkat(int dirfd, const char *name, int flags)
{
	struct stat st;
	int have = 0, rc;
	enum fv_action a;

	LOCK();
	if (dead)
		FAIL(EIO);
	a = gate("unlink", name);
	if (a)
		FAIL(action_errno(a));
	if (tracking)
		have = !fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW);
	rc = qli_vfs_posix.unlinkat(dirfd, name, flags);
	if (!rc && have)
		unbind(st.st_dev, st.st_ino);
	if (!rc)
		root_changed();
	UNLOCK();
	return rc;
}

static int fv_mkdirat(int dirfd, const char *name, mode_t mode)
{
	enum fv_action a;
	int rc;

	LOCK();
	if (dead)
		FAIL(EIO);
	a = gate("mkdir", name);
	if (a)
		FAIL(action_errno(a));
	rc = qli_vfs_posix.mkdirat(dirfd, name, mode);
	if (!rc && tracking) {
		track_created(dirfd, name, 1);
		root_changed();
	}
	UNLOCK();
	return rc;
}

static int fv_flock(int fd, int op)
{
	LOCK();
	if (dead)
		FAIL(EIO);
	UNLOCK();
	return qli_vfs_posix.flock(fd, op);
}

static int fv_listdir(int dirfd, int (*fn)(const char *, void *), void *ctx)
{
	LOCK();
	if (dead)
		FAIL(EIO);
	UNLOCK();
	return qli_vfs_posix.listdir(dirfd, fn, ctx);
}

static const qli_vfs fv_vfs = {
	.openat = fv_openat,
	.close = fv_close,
	.pread = fv_pread,
	.pwrite = fv_pwrite,
	.fsync = fv_fsync,
	.fdatasync = fv_fdatasync,
	.ftruncate = fv_ftruncate,
	.fstat = fv_fstat,
	.fstatat = fv_fstatat,
	.renameat = fv_renameat,
	.unlinkat = fv_unlinkat,
	.mkdirat = fv_mkdirat,
	.flock = fv_flock,
	.listdir = fv_listdir,
};

/* ---------------------------------------------------------------------- */
/* control                                                                 */
/* ---------------------------------------------------------------------- */

void fv_reset(void)
{
	LOCK();
	count = arm_n = 0;
	armed = FV_NONE;
	hit = dead = disk_full = paused = 0;
	nfailed = 0;
	hit_op[0] = hit_name[0] = '\0';
	UNLOCK();
}

void fv_pause(int on)
{
	LOCK();
	paused = on;
	UNLOCK();
}

void fv_install(void)
{
	fv_untrack();
	fv_reset();
	qli_vfs_cur = &fv_vfs;
}

void fv_uninstall(void)
{
	qli_vfs_cur = &qli_vfs_posix;
	fv_untrack();
	fv_reset();
}

void fv_arm(unsigned long n, enum fv_action action)
{
	LOCK();
	count = 0;
	arm_n = n;
	armed = action;
	hit = dead = disk_full = 0;
	nfailed = 0;
	hit_op[0] = hit_name[0] = '\0';
	UNLOCK();
}

unsigned long fv_count(void)
{
	unsigned long n;

	LOCK();
	n = count;
	UNLOCK();
	return n;
}

int fv_hit(void)
{
	int h;

	LOCK();
	h = hit;
	UNLOCK();
	return h;
}

const char *fv_hit_op(void)
{
	return hit_op;
}

const char *fv_hit_name(void)
{
	return hit_name;
}

int fv_failed_count(void)
{
	int n;

	LOCK();
	n = nfailed;
	UNLOCK();
	return n;
}

const char *fv_failed_name(int i)
{
	return i >= 0 && i < nfailed && i < FV_MAXFAILED ? failed_names[i]
							  : "";
}

int fv_dead(void)
{
	int d;

	LOCK();
	d = dead;
	UNLOCK();
	return d;
}

void fv_trace(int on)
{
	LOCK();
	trace = on;
	UNLOCK();
}

int fv_track(const char *root, unsigned flags)
{
	LOCK();
	objs_free();
	root_durable = !!(flags & FV_ROOT_DURABLE);
	lying = !!(flags & FV_LYING_DISK);
	if (!realpath(root, root_path)) {
		tracking = 0;
		UNLOCK();
		return -1;
	}
	root_obj = snapshot(root_path);
	tracking = root_obj && root_obj->dir;
	UNLOCK();
	if (!tracking) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

void fv_untrack(void)
{
	LOCK();
	tracking = 0;
	objs_free();
	UNLOCK();
}

int fv_power_cut(int torn, uint64_t seed)
{
	uint64_t rng = seed;
	int rc;

	LOCK();
	if (!tracking) {
		UNLOCK();
		errno = EINVAL;
		return -1;
	}
	collect_vol(root_path);
	nftw(root_path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	rc = rebuild(root_path, root_obj, torn, &rng);
	tracking = 0;
	objs_free();
	dead = 0;
	disk_full = 0;
	armed = FV_NONE;
	UNLOCK();
	return rc;
}
