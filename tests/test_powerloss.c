/* test_powerloss.c - simulated power loss at every point of a store's
 * life, and again at every point of the recovery that follows.
 *
 * The disk is the model of faultvfs.h: file data is durable at fsync or
 * fdatasync, directory entries at the directory's fsync, everything else
 * is lost at the cut (and with "torn" variants, an unsynced tail may come
 * back in part, or with sectors of zeros).
 *
 *   create    the store is created from nothing, a record acknowledged,
 *             the power cut: the record must be there. (The directory
 *             that holds the store is the test's: only the store's own
 *             mkdir and its fsyncs make anything durable.)
 *   script    for N = 1, 2, ... the power is cut just before the Nth
 *             counted operation of the script of faultvfs_script.h (in a
 *             store directory made durably beforehand, as an installer
 *             would). Then, for M = 1, 2, ..., the power is cut again
 *             just before the Mth operation of the reopen (recovery, then
 *             sealing what is due) from that state.
 *   maint     the same for the maintenance script of faultvfs_script.h
 *             (hold place/extend/release/lapse, expiry of a held and an
 *             unheld past-due segment, expiry again, reindex, appends
 *             between), from the store the script above leaves (made
 *             durable); the recovery that is cut again at every point is
 *             then open, sealing, and a ql_expire that must finish any
 *             interrupted deletion. Crash points are counted per phase
 *             of the script (holds, expire, reindex, other).
 * After each cut the store is reopened with the real vfs, as an
 * application would (QL_OPEN_CREATE, no manual step), and must hold every
 * acknowledged record exactly once (unless legitimately expired), nothing
 * duplicated or damaged, every acknowledged hold change and deletion,
 * an audit trail that verifies and records them, indexed queries that
 * agree with a scan, verify clean, expire, seal and take appends
 * (sc_check). Each N is run once with no
 * torn data and QL_POWERLOSS_TORN more times (default 1) with torn data
 * from different seeds. A state (tree after the cut, acknowledged set)
 * whose recovery was already crashed at every point is not crashed again. QL_POWERLOSS_ONLY=torn/33 (or clean/33) runs one
 * crash point (FV_TRACE=1 shows its operations); maint/clean/33 one of the
 * maintenance script. Prints the number of
 * crash points covered; exits 1 on any failure. */
#include "faultvfs_script.h"
#include "codec.h"

#include <dirent.h>

static unsigned points, passed, failed, skipped;

/* States whose recovery was already crashed at every point: a hash of
 * the tree after the cut and of the acknowledged set. Between two
 * fsyncs, consecutive cuts leave the same state; its recovery takes the
 * same steps, so crashing it again proves nothing new. */
static uint64_t *seen_states;
static size_t nseen, capseen;

static uint64_t tree_hash(const char *path, uint64_t h)
{
	struct dirent **ents;
	int n = scandir(path, &ents, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		char sub[600];
		struct stat st;

		if (ents[i]->d_name[0] == '.' && (!ents[i]->d_name[1] ||
		    !strcmp(ents[i]->d_name, ".."))) {
			free(ents[i]);
			continue;
		}
		snprintf(sub, sizeof(sub), "%s/%s", path, ents[i]->d_name);
		h = qli_hash64(ents[i]->d_name, strlen(ents[i]->d_name), h);
		if (!lstat(sub, &st) && S_ISDIR(st.st_mode)) {
			h = tree_hash(sub, h ^ 0x2f);
		} else {
			uint8_t buf[65536];
			int fd = open(sub, O_RDONLY);
			ssize_t r;

			while (fd >= 0 && (r = read(fd, buf, sizeof(buf))) > 0)
				h = qli_hash64(buf, (size_t)r, h);
			if (fd >= 0)
				close(fd);
		}
		free(ents[i]);
	}
	if (n >= 0)
		free(ents);
	return h;
}

/* Returns whether (tree, acked) was seen before; remembers it. */
static int state_seen(const sc_ctx *c, const char *dir)
{
	uint64_t h = qli_hash64(c->acked, c->nrec, 0);

	/* what acknowledged calls promised is part of the state */
	h = qli_hash64(c->hm, sizeof(c->hm), h);
	h = qli_hash64(c->gone, sizeof(c->gone), h);
	h = tree_hash(dir, h);

	for (size_t i = 0; i < nseen; i++)
		if (seen_states[i] == h)
			return 1;
	if (nseen == capseen) {
		capseen = capseen ? 2 * capseen : 256;
		seen_states = realloc(seen_states,
				      capseen * sizeof(*seen_states));
		if (!seen_states)
			abort();
	}
	seen_states[nseen++] = h;
	return 0;
}

static void tally(unsigned before)
{
	if (sc_failures > before)
		failed++;
	else
		passed++;
}

/* The store's own creation: is the store directory itself durable? */
static void create_from_nothing(void)
{
	static sc_ctx c;
	unsigned before = sc_failures;

	memset(&c, 0, sizeof(c));
	sc_fresh(&c, 0);
	snprintf(c.label, sizeof(c.label), "create");
	sc_reset(&c);
	fv_install();
	if (fv_track(c.root, 0))
		abort();
	c.now = SC_A + 50 * T_MIN;
	if (sc_open(&c, 0) || sc_append(&c, SC_A + T_MIN, T_SEC, 5, 5) ||
	    sc_sync(&c))
		SC_FAIL(&c, "%s: %s: %s", c.where, ql_strerror(c.rc), c.msg);
	if (c.s) {
		ql_close(c.s);
		c.s = NULL;
	}
	/* the power goes after the acknowledgement */
	if (fv_power_cut(0, 0))
		abort();
	fv_uninstall();
	if (access(c.dir, F_OK))
		SC_FAIL(&c, "the store directory %s is gone after the power "
			"cut: its entry in the parent was never synced", c.dir);
	sc_check(&c, c.dir, "after power cut");
	points++;
	tally(before);
	t_rmrf(c.root);
}

/* The harness itself: on a disk whose fsyncs do nothing, the script's
 * acknowledged records must be found lost. A test that cannot fail proves
 * nothing. */
static void lying_disk_is_noticed(void)
{
	static sc_ctx c;
	unsigned f0 = sc_failures, p0 = sc_printed;

	memset(&c, 0, sizeof(c));
	sc_fresh(&c, 1);
	snprintf(c.label, sizeof(c.label), "self-check (expected to fail)");
	fv_install();
	if (fv_track(c.root, FV_LYING_DISK))
		abort();
	sc_printed = 1000; /* quiet: these failures are wanted */
	sc_run(&c);
	if (fv_power_cut(0, 0))
		abort();
	fv_uninstall();
	sc_check(&c, c.dir, "lying disk");
	sc_printed = p0;
	if (sc_failures == f0) {
		SC_FAIL(&c, "a disk that ignores fsync lost nothing: the "
			"model or the checks are broken");
		failed++;
	} else {
		sc_failures = f0;
		passed++;
	}
	t_rmrf(c.root);
}

/* Reopens the crashed store in tmpl with the power cut before the mth
 * operation of the reopen; checks. Returns whether the cut was reached. */
static int crash_recovery(sc_ctx *c, const char *tmpl, unsigned long m,
			  int torn, uint64_t seed)
{
	int64_t now = c->check_now ? c->check_now : SC_CHECK_NOW;
	ql_options o = sc_opts(&now, 0);
	ql_store *s = NULL;
	int hit;

	t_rmrf(c->dir);
	if (sc_copytree(tmpl, c->dir))
		abort();
	fv_install();
	if (fv_track(c->root, 0))
		abort();
	fv_arm(m, FV_CRASH);
	if (!ql_open(&s, c->dir, &o)) {
		if (!ql_maintain(s) && c->maint)
			ql_expire(s, 0, "recovery", NULL, NULL);
		ql_close(s);
	}
	hit = fv_hit();
	if (fv_power_cut(torn, seed))
		abort();
	fv_uninstall();
	if (hit)
		sc_check(c, c->dir, "after a power cut in recovery");
	return hit;
}

/* The store the ingest script leaves (durable: closed cleanly) and its
 * records: where every run of the maintenance script starts. */
static sc_ctx maint_start;
static char maint_tmpl[300];

static void make_maint_template(void)
{
	sc_ctx *c = &maint_start;
	char root[256];

	memset(c, 0, sizeof(*c));
	sc_fresh(c, 1);
	snprintf(c->label, sizeof(c->label), "maint-template");
	if (sc_run(c)) {
		fprintf(stderr, "maint template: %s: %s\n", c->where, c->msg);
		exit(2);
	}
	memcpy(root, c->root, sizeof(root));
	snprintf(maint_tmpl, sizeof(maint_tmpl), "%s.mtmpl", root);
	if (sc_copytree(c->dir, maint_tmpl))
		abort();
	t_rmrf(root);
	c->root[0] = '\0';
}

/* A fresh scratch root whose store is the maintenance template, durable
 * (as an installer or an earlier life of the store left it). */
static void maint_fresh(sc_ctx *c)
{
	char root[256], label[128];

	sc_fresh(c, 1);
	memcpy(root, c->root, sizeof(root));
	memcpy(label, c->label, sizeof(label));
	*c = maint_start;
	memcpy(c->root, root, sizeof(root));
	memcpy(c->label, label, sizeof(label));
	snprintf(c->dir, sizeof(c->dir), "%s/store", c->root);
	if (sc_copytree(maint_tmpl, c->dir))
		abort();
}

/* The maintenance script on a lying disk: acknowledged hold changes and
 * deletions must be found missing. */
static void maint_lying_disk_is_noticed(void)
{
	static sc_ctx c;
	unsigned f0 = sc_failures, p0 = sc_printed;

	memset(&c, 0, sizeof(c));
	snprintf(c.label, sizeof(c.label), "self-check maint (expected to "
		 "fail)");
	maint_fresh(&c);
	fv_install();
	if (fv_track(c.root, FV_LYING_DISK))
		abort();
	sc_printed = 1000;
	sc_run_maint(&c, -1);
	if (fv_power_cut(0, 0))
		abort();
	fv_uninstall();
	sc_check(&c, c.dir, "lying disk");
	sc_printed = p0;
	if (sc_failures == f0) {
		SC_FAIL(&c, "a disk that ignores fsync lost no hold change: "
			"the model or the checks are broken");
		failed++;
	} else {
		sc_failures = f0;
		passed++;
	}
	t_rmrf(c.root);
}

/* Crash points per phase of the maintenance script: where the script was
 * cut, and the recovery cuts that followed. */
static unsigned ph_points[SC_NPH], ph_rec[SC_NPH];

/* Cuts the power before the nth operation of the script (with maint, of
 * the maintenance script), then checks the store, and the store after a
 * cut at every point of its recovery. Returns whether the script reached
 * the nth operation. */
static int crash_script(unsigned long n, int torn, uint64_t seed, int maint)
{
	static sc_ctx c;
	char tmpl[300], chk[300];
	const char *scen = maint ? "maint" : "script";
	unsigned long m;
	unsigned before = sc_failures, rec = 0;
	int hit, again, ph = SC_PH_OTHER;

	memset(&c, 0, sizeof(c));
	snprintf(c.label, sizeof(c.label), "%s/%s/N=%lu", scen,
		 torn ? "torn" : "clean", n);
	if (maint)
		maint_fresh(&c);
	else
		sc_fresh(&c, 1);
	fv_install();
	if (fv_track(c.root, 0))
		abort();
	fv_arm(n, FV_CRASH);
	if (maint)
		sc_run_maint(&c, -1);
	else
		sc_run(&c);
	hit = fv_hit();
	if (maint && hit)
		ph = c.hit_phase >= 0 ? c.hit_phase : SC_PH_OTHER;
	snprintf(c.hit_op, sizeof(c.hit_op), "%s", fv_hit_op());
	snprintf(c.hit_name, sizeof(c.hit_name), "%s", fv_hit_name());
	if (c.rc && !hit)
		SC_FAIL(&c, "%s failed with no crash: %s: %s", c.where,
			ql_strerror(c.rc), c.msg);
	if (maint && !hit && !c.rc)
		sc_maint_sanity(&c);
	if (c.s) {
		ql_close(c.s);
		c.s = NULL;
	}
	if (fv_power_cut(torn, seed))
		abort();
	fv_uninstall();
	snprintf(tmpl, sizeof(tmpl), "%s.tmpl", c.root);
	snprintf(chk, sizeof(chk), "%s.chk", c.root);
	if (sc_copytree(c.dir, tmpl) || sc_copytree(c.dir, chk))
		abort();
	sc_check(&c, chk, "after the power cut");
	t_rmrf(chk);
	points++;
	if (hit)
		ph_points[ph]++;
	tally(before);
	if (sc_failures > before && sc_printed <= 40)
		fprintf(stderr, "  (cut before: %s %s%s%s)\n", c.hit_op,
			c.hit_name, maint ? ", phase " : "",
			maint ? sc_phase_name[ph] : "");
	/* the same state, with the power cut again during its recovery */
	again = hit;
	if (again && state_seen(&c, tmpl)) {
		skipped++;
		again = 0;
	}
	for (m = 1; again; m++) {
		unsigned b2 = sc_failures;
		int h2;

		snprintf(c.label, sizeof(c.label),
			 "%s/%s/N=%lu/recovery M=%lu", scen,
			 torn ? "torn" : "clean", n, m);
		h2 = crash_recovery(&c, tmpl, m, torn, seed ^ (m << 32));
		if (!h2)
			break;
		points++;
		rec++;
		tally(b2);
	}
	if (maint)
		ph_rec[ph] += rec;
	t_rmrf(tmpl);
	t_rmrf(c.root);
	return hit;
}

static uint64_t seed_of(int maint, unsigned v, unsigned long n)
{
	return (maint ? 0x6eed0000ULL : 0x5eed0000ULL) * (v + 1) + n;
}

int main(void)
{
	const char *env = getenv("QL_POWERLOSS_TORN");
	const char *only = getenv("QL_POWERLOSS_ONLY");
	unsigned variants = env ? (unsigned)atoi(env) : 1;
	unsigned long n, last = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sc_pick_tmpdir();
	if (only && *only) {
		/* QL_POWERLOSS_ONLY=[maint/]clean/N or torn/N (seed 1): one
		 * point, with its recovery crashes */
		int maint = !strncmp(only, "maint/", 6);
		const char *o = maint ? only + 6 : only;
		int torn = !strncmp(o, "torn/", 5);

		n = strtoul(strchr(o, '/') ? strchr(o, '/') + 1 : o, NULL, 10);
		if (maint)
			make_maint_template();
		crash_script(n, torn, seed_of(maint, torn ? 1 : 0, n), maint);
		if (maint)
			t_rmrf(maint_tmpl);
		printf("powerloss: %u passed, %u failed\n", passed, failed);
		return failed ? 1 : 0;
	}
	lying_disk_is_noticed();
	create_from_nothing();
	make_maint_template();
	maint_lying_disk_is_noticed();
	for (int maint = 0; maint < 2; maint++) {
		for (unsigned v = 0; v <= variants; v++) {
			unsigned p0 = points;

			memset(ph_points, 0, sizeof(ph_points));
			memset(ph_rec, 0, sizeof(ph_rec));
			for (n = 1;; n++)
				if (!crash_script(n, v > 0,
						  seed_of(maint, v, n), maint))
					break;
			last = n - 1;
			if (!maint) {
				printf("powerloss: %s%u: %lu crash points in "
				       "the script, %u with recovery "
				       "crashes\n", v ? "torn seed " : "clean",
				       v ? v : 0, last, points - p0);
				continue;
			}
			printf("powerloss: maint %s%u: %lu crash points in the "
			       "maintenance script, %u with recovery crashes\n",
			       v ? "torn seed " : "clean", v ? v : 0, last,
			       points - p0);
			for (int ph = 1; ph <= SC_NPH; ph++) {
				int k = ph % SC_NPH; /* other last */

				printf("powerloss: maint %s%u:   %-7s %4u crash "
				       "points, %4u with recovery crashes\n",
				       v ? "torn seed " : "clean", v ? v : 0,
				       sc_phase_name[k], ph_points[k],
				       ph_points[k] + ph_rec[k]);
			}
		}
	}
	t_rmrf(maint_tmpl);
	printf("powerloss: %u crash points covered (%u states already "
	       "crashed in recovery skipped)\n", points, skipped);
	printf("powerloss: %u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
