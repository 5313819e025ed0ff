/* faultvfs.h - a test implementation of the store's file-system seam
 * (qli_vfs): counted I/O, injected faults, and a simulated disk that
 * loses what was never made durable.
 *
 * Install it with fv_install() while no store is open; fv_uninstall()
 * puts the POSIX table back. Everything is process-global and guarded by
 * one mutex, so the store's writer thread and the test thread may both
 * call through it.
 *
 * Counted operations
 * ------------------
 * pwrite, fsync, fdatasync, ftruncate, renameat, unlinkat, mkdirat, and
 * openat with O_CREAT. These are the calls that change the disk or its
 * durability; reads, stats, listings and plain opens are never counted so
 * that the numbering of a scripted run does not depend on how often a
 * reader looked. fv_count() gives the number counted since the last
 * fv_arm()/fv_reset(): a loop arms N = 1, 2, ... until a run ends with
 * fv_hit() false, and has then covered every fault point of the run.
 *
 * Faults (fv_arm)
 * ---------------
 *   FV_EIO, FV_ENOSPC  the Nth counted operation fails with that errno and
 *                      has no effect (an fsync that fails syncs nothing).
 *   FV_SHORT           if it is a pwrite of more than one byte, it writes
 *                      the first half and returns that count (a legal
 *                      short write: the caller must retry); any other
 *                      operation fails with ENOSPC.
 *   FV_SHORT_NOSPC     as FV_SHORT, and from then on the disk is full:
 *                      every later pwrite fails with ENOSPC. This is what
 *                      a real short write usually announces.
 *   FV_CRASH           power is cut just before the Nth operation: it and
 *                      every later call (other than close) fail with EIO,
 *                      and nothing more reaches the disk. fv_power_cut()
 *                      then turns the tree into what a reboot would find.
 *
 * The power-loss model (fv_track / fv_power_cut)
 * ----------------------------------------------
 * fv_track(root) takes the tree under root, as it is, as the durable
 * state, and from then on follows every file and directory created under
 * it through this vfs. The real files always hold the volatile state
 * (what the page cache holds); the model keeps, beside them, what a crash
 * would leave:
 *   1. A file's data is durable as of its last successful fsync or
 *      fdatasync (the whole content and size at that moment). Writes and
 *      truncations after it are volatile.
 *   2. A directory's entries (create, mkdir, rename, unlink) are durable
 *      as of its last successful fsync. Syncing a file does not make its
 *      name durable, and syncing a directory does not make the data of
 *      the files in it durable.
 *   3. A file whose name is durable but whose data never was is found
 *      empty. A name created (or a rename done) after the directory's
 *      last fsync is gone (reverted); an unlink not followed by a
 *      directory fsync is undone.
 *   4. The root directory itself is not followed by anyone's fsync: its
 *      own entries are durable only if something fsyncs root.
 *   5. With torn set, the volatile part of a file may partly survive,
 *      chosen at random per file: when the volatile content extends the
 *      durable content (append-only), the file comes back as the durable
 *      part followed by nothing, by all of the unsynced tail, by a random
 *      prefix of it, or by a random prefix in which a run of 512-byte
 *      sectors reads as zeros (pages written back out of order); when the
 *      volatile content differs from the durable one in place (truncate,
 *      rewrite), the file comes back as either the one or the other.
 *      Without torn, every file comes back exactly as durable.
 * fsync and fdatasync are not passed to the kernel while tracking: the
 * model decides what survives, and the tests run much faster.
 * fv_power_cut() deletes everything under root and rebuilds it from the
 * durable state (file modes kept), then stops tracking. All descriptors
 * into the tree must be closed first (close the store). Files created
 * under root behind the vfs's back while tracking are treated as never
 * durable: that includes the LMDB index, which does its own I/O (neither
 * its faults nor its fsyncs are seen here), so after a cut its files are
 * empty or gone and the store must rebuild it.
 */
#ifndef QL_FAULTVFS_H
#define QL_FAULTVFS_H

#include <stdint.h>

enum fv_action {
	FV_NONE = 0,
	FV_EIO,
	FV_ENOSPC,
	FV_SHORT,
	FV_SHORT_NOSPC,
	FV_CRASH,
};

/* Swaps qli_vfs_cur to the fault vfs / back to POSIX. No store may be
 * open. Installing resets counters, faults and tracking. */
void fv_install(void);
void fv_uninstall(void);

/* Clears the armed fault, the counter and the disk-full state. */
void fv_reset(void);

/* Arms action on the nth counted operation from now (n >= 1); resets the
 * counter. */
void fv_arm(unsigned long n, enum fv_action action);

/* Counted operations since the last fv_arm() or fv_reset(). */
unsigned long fv_count(void);

/* While paused, operations are neither counted nor faulted, and a full
 * disk (FV_SHORT_NOSPC) takes writes again: a fault loop can then cover
 * the operations of one phase of a script (say, hold changes) while the
 * steps between run clean. fv_reset, fv_install and fv_uninstall end a
 * pause; fv_arm does not. A power cut (FV_CRASH) is not lifted. */
void fv_pause(int on);

/* Whether the armed action has fired, and on what: the operation
 * ("fdatasync") and the name of the file or directory as the store gave
 * it to openat/mkdirat (a single name, or the path for the store dir);
 * for a rename "old new". Valid until the next fv_arm/fv_reset. */
int fv_hit(void);
const char *fv_hit_op(void);
const char *fv_hit_name(void);

/* Every operation that failed by injection since the last fv_arm (the
 * armed one, and with FV_SHORT_NOSPC each later pwrite refused for the
 * full disk): how many, and the ith file name (first 16 kept). A store
 * may absorb a failure by design and report a later one. */
int fv_failed_count(void);
const char *fv_failed_name(int i);

/* Whether power was cut (FV_CRASH fired): the machine is "off". */
int fv_dead(void);

/* Starts the power-loss model on the tree under root (see above).
 * FV_ROOT_DURABLE lifts rule 4: changes to root's own entries are
 * durable at once (as if root were fsynced after each), for tests that
 * let the store create its directory and are not about that step.
 * Returns 0, or -1 with errno. */
#define FV_ROOT_DURABLE 1
/* FV_LYING_DISK: fsync and fdatasync succeed and make nothing durable.
 * Only for checking that a test notices lost data at all. */
#define FV_LYING_DISK 2
int fv_track(const char *root, unsigned flags);
void fv_untrack(void);

/* Rebuilds the tree under root from its durable state and stops
 * tracking. torn != 0 lets unsynced data partly survive, drawn from
 * seed. Also clears the dead state. Returns 0, or -1 with errno. */
int fv_power_cut(int torn, uint64_t seed);

/* Prints each counted operation to stderr (also: FV_TRACE=1). */
void fv_trace(int on);

#endif
