/*
 * logtool - the command-line tool for querylog stores.
 *
 * It uses the public API (querylog.h) and nothing else of the library, so
 * that it shows what an embedding program can do; only `audit` also looks
 * at the store directory itself (files in seg/ that are not segments) and
 * takes its own AUDIT.lock. Data goes to stdout,
 * diagnostics to stderr; the exit status is documented in logtool(1) and
 * in --help (see enum lt_exit).
 *
 * Adding a subcommand: write a run_*() function, add its options to
 * enum opt_id / opt_specs if they are new, and add one row to commands[].
 * The option parser, --help and the usage errors come from the tables.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* flock(2) for the audit lock */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ndjson.h"
#include "querylog.h"

#if defined(__GNUC__)
#define LT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LT_PRINTF(a, b)
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Exit status, the same for every command (logtool(1), EXIT STATUS). */
enum lt_exit {
	LT_OK = 0,	/* success, something matched */
	LT_NONE = 1,	/* nothing matched, bad input lines, damage found */
	LT_USAGE = 2,	/* usage error */
	LT_ERROR = 3,	/* runtime error: cannot open the store, I/O */
	LT_BUSY = 4,	/* the store is locked by another writer */
};

/* parse_args() result meaning "go on and run the command". */
#define LT_RUN (-1)

#define USEC_PER_SEC INT64_C(1000000)

/* ---------------------------------------------------------------------- */
/* Option table                                                           */
/* ---------------------------------------------------------------------- */

/* Every option of every command. --help lists a command's options in this
 * order, so keep it the order of the synopses. */
enum opt_id {
	OPT_ORDER,
	OPT_FROM,
	OPT_TO,
	OPT_PERIOD,
	OPT_REASON,
	OPT_SUBJECT,
	OPT_BY,
	OPT_DRYRUN,
	OPT_ENFORCE,
	OPT_REPORT,
	OPT_WARN,
	OPT_HANDLE,
	OPT_ROLE,
	OPT_IP,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_OUTPUT,
	OPT_LIMIT,
	OPT_COUNTONLY,
	OPT_NOW,
	OPT_HELP,
	OPT_COUNT
};

#define OPT_BIT(id) (1u << (id))

struct opt_spec {
	const char *name;	/* long name, without "--" */
	char letter;		/* short name, or 0 */
	const char *metavar;	/* name of the value; NULL for a flag */
	const char *help;	/* NULL: generated (see print_option) */
};

static const struct opt_spec opt_specs[OPT_COUNT] = {
	[OPT_ORDER] = { "order", 0, "ID", "the court order's ID" },
	[OPT_FROM] = { "from", 0, "T", "start of the hold's window" },
	[OPT_TO] = { "to", 0, "T",
		     "end of the hold's window, or \"open\" for a "
		     "prospective hold (default: open)" },
	[OPT_PERIOD] = { "period", 0, "D",
			 "the hold's extension period, e.g. 30d, 60d, 90d "
			 "(default 30d)" },
	[OPT_REASON] = { "reason", 0, "TEXT", "why (recorded)" },
	[OPT_SUBJECT] = { "subject", 0, "S",
			  "a handle, IP or CIDR the order names "
			  "(repeatable)" },
	[OPT_BY] = { "by", 0, "WHO",
		     "who acts, for the audit trail (default: $USER)" },
	[OPT_DRYRUN] = { "dry-run", 'n', NULL,
			 "show what would be deleted, delete nothing" },
	[OPT_ENFORCE] = { "enforce", 0, NULL,
			  "delete past-due segments (else read-only)" },
	[OPT_REPORT] = { "report", 0, "FILE",
			 "also write the JSON report to FILE, atomically" },
	[OPT_WARN] = { "warn", 0, "D",
		       "warn of holds expiring within D (default 7d)" },
	[OPT_HANDLE] = { "handle", 0, "H",
			 "records of this handle (E.164 phone or email)" },
	[OPT_ROLE] = { "role", 0, "R",
		       "requester (pen register), target (trap and trace) or "
		       "any (default)" },
	[OPT_IP] = { "ip", 0, "ADDR[/PREFIX]",
		     "records from this address or network (IPv4 or IPv6)" },
	[OPT_SINCE] = { "since", 0, "T",
			"start of the time window, inclusive "
			"(default: oldest)" },
	[OPT_UNTIL] = { "until", 0, "T",
			"end of the time window, exclusive (default: no end); "
			"for hold: the hold's expiry" },
	[OPT_OUTPUT] = { "output", 'o', "FMT", NULL },
	[OPT_LIMIT] = { "limit", 0, "N", "print at most N records" },
	[OPT_COUNTONLY] = { "count", 0, NULL,
			    "print only the number of matching records" },
	[OPT_NOW] = { "now", 0, "T",
		      "take T as the current time (default: the real time)" },
	[OPT_HELP] = { "help", 'h', NULL, "print this help and exit" },
};

#define MAX_POS 4

struct command;

/* What the parser made of one command line. */
struct args {
	const struct command *cmd;
	const char *opt[OPT_COUNT];	/* value, "" for a flag, NULL: absent */
	int used_letter[OPT_COUNT];	/* spelled "-o", not "--output" */
	const char *pos[MAX_POS];
	int npos;
	const char *subjects[64];	/* --subject, repeatable */
	int nsubjects;
	int64_t now;			/* --now, or the real time at start */
	int now_given;
};

struct command {
	const char *name;
	int (*run)(struct args *a);
	unsigned opts;			/* OPT_BIT()s accepted besides --help */
	const char *pos_names[MAX_POS];	/* NULL-terminated */
	int min_pos;
	const char *const *formats;	/* -o values, default first; or NULL */
	const char *usage;		/* synopsis after "logtool " */
	const char *summary;		/* one line for "logtool --help" */
	const char *about;		/* paragraph for "logtool CMD --help" */
	const char *exits;
};

static int run_import(struct args *a);
static int run_scan(struct args *a);
static int run_stat(struct args *a);
static int run_verify(struct args *a);
static int run_query(struct args *a);
static int run_reindex(struct args *a);
static int run_expire(struct args *a);
static const char *who(struct args *a);
static int run_hold(struct args *a);
static int run_audit_log(struct args *a);
static int run_audit(struct args *a);

static const char *const scan_formats[] = { "text", "json", "csv", NULL };
static const char *const info_formats[] = { "text", "json", NULL };

/* Continuation lines of a usage are indented to sit under the first
 * argument when printed after the 7 columns of "usage: " (or of the same
 * number of blanks in the command list). Keep these in step with the
 * SYNOPSIS in docs/logtool.1. */
static const struct command commands[] = {
	{
		.name = "import",
		.run = run_import,
		.opts = OPT_BIT(OPT_NOW),
		.pos_names = { "DIR", "FILE", NULL },
		.min_pos = 1,
		.usage = "import DIR [FILE] [--now T]",
		.summary = "append NDJSON records to a store, creating it "
			   "if needed",
		.about = "Reads one JSON object per line from FILE (or "
			 "standard input when FILE\nis missing or \"-\") and "
			 "appends the records to the store in DIR. The\n"
			 "store is created when DIR does not exist or is an "
			 "empty directory.\n"
			 "Keys: ts, requester, target, ip, service, result "
			 "(see logtool(1)).\nA bad line is reported as "
			 "FILE:LINE: MESSAGE and skipped.",
		.exits = "0 every line imported, 1 some lines were bad, "
			 "2 usage error,\n3 error, 4 store locked by another "
			 "writer",
	},
	{
		.name = "scan",
		.run = run_scan,
		.opts = OPT_BIT(OPT_SINCE) | OPT_BIT(OPT_UNTIL) |
			OPT_BIT(OPT_OUTPUT) | OPT_BIT(OPT_LIMIT) |
			OPT_BIT(OPT_NOW),
		.pos_names = { "DIR", NULL },
		.min_pos = 1,
		.formats = scan_formats,
		.usage = "scan DIR [--since T] [--until T] [-o text|json|csv] "
			 "[--limit N]\n"
			 "                    [--now T]",
		.summary = "print records in time order",
		.about = "Prints the records of the store in DIR whose time is "
			 "in [since, until),\nin time order. The store is "
			 "opened read-only; a writer may be running.\n"
			 "-o json prints the NDJSON that import reads.",
		.exits = "0 records printed, 1 no record matched, "
			 "2 usage error, 3 error",
	},
	{
		.name = "query",
		.run = run_query,
		.opts = OPT_BIT(OPT_HANDLE) | OPT_BIT(OPT_ROLE) |
			OPT_BIT(OPT_IP) | OPT_BIT(OPT_SINCE) |
			OPT_BIT(OPT_ORDER) | OPT_BIT(OPT_BY) |
			OPT_BIT(OPT_UNTIL) | OPT_BIT(OPT_OUTPUT) |
			OPT_BIT(OPT_LIMIT) | OPT_BIT(OPT_COUNTONLY) |
			OPT_BIT(OPT_NOW),
		.pos_names = { "DIR", NULL },
		.min_pos = 1,
		.formats = scan_formats,
		.usage = "query DIR (--handle H [--role requester|target|any] |"
			 " --ip ADDR[/PREFIX])\n"
			 "                    [--since T] [--until T] "
			 "[-o text|json|csv] [--count]\n"
			 "                    [--limit N] [--order ID [--by WHO]] "
			 "[--now T]",
		.summary = "records of one handle, address or network",
		.about = "Prints, in time order, the records of the store in DIR "
			 "that match one\nsubject: a handle as requester (pen "
			 "register), as target (trap and\ntrace) or either, or "
			 "an IP address or CIDR network. Uses the index;\nthe "
			 "store is opened read-only and a writer may be running.",
		.exits = "0 something matched, 1 nothing matched, "
			 "2 usage error, 3 error",
	},
	{
		.name = "reindex",
		.run = run_reindex,
		.opts = OPT_BIT(OPT_NOW),
		.pos_names = { "DIR", NULL },
		.min_pos = 1,
		.usage = "reindex DIR [--now T]",
		.summary = "rebuild the index from the segments",
		.about = "Rebuilds the index of the store in DIR from its "
			 "segment files. The index is\nderived data: queries "
			 "answer the same before and after. Needs the writer\n"
			 "lock: stop the server first (exit 4 otherwise).",
		.exits = "0 success, 2 usage error, 3 error, 4 store locked "
			 "by another writer",
	},
	{
		.name = "expire",
		.run = run_expire,
		.opts = OPT_BIT(OPT_DRYRUN) | OPT_BIT(OPT_OUTPUT) |
			OPT_BIT(OPT_BY) | OPT_BIT(OPT_NOW),
		.pos_names = { "DIR", NULL },
		.min_pos = 1,
		.formats = info_formats,
		.usage = "expire DIR [--dry-run] [-o text|json] [--by WHO] "
			 "[--now T]",
		.summary = "delete segments past retention and not held",
		.about = "Deletes every segment of the store in DIR whose whole "
			 "time range is older\nthan the retention period and "
			 "that no active hold covers, recording each\n"
			 "deletion in the audit trail; marks lapsed holds. "
			 "Runs beside a writing server.\nPrints one line per "
			 "segment deleted (or, with --dry-run, to delete) or "
			 "held.",
		.exits = "0 success, 2 usage error, 3 error",
	},
	{
		.name = "hold",
		.run = run_hold,
		.opts = OPT_BIT(OPT_ORDER) | OPT_BIT(OPT_FROM) |
			OPT_BIT(OPT_TO) | OPT_BIT(OPT_UNTIL) |
			OPT_BIT(OPT_PERIOD) | OPT_BIT(OPT_REASON) |
			OPT_BIT(OPT_SUBJECT) | OPT_BIT(OPT_BY) |
			OPT_BIT(OPT_OUTPUT) | OPT_BIT(OPT_NOW),
		.pos_names = { "ACTION", "DIR", NULL },
		.min_pos = 2,
		.formats = info_formats,
		.usage = "hold place DIR --order ID --from T [--to T] "
			 "[--until T] [--period D]\n"
			 "                    --reason TEXT [--subject S]... "
			 "[--by WHO] [--now T]\n"
			 "       logtool hold extend DIR --order ID [--until T] "
			 "[--by WHO] [--now T]\n"
			 "       logtool hold release DIR --order ID [--by WHO] "
			 "[--now T]\n"
			 "       logtool hold list DIR [-o text|json] [--now T]\n"
			 "       logtool hold show DIR --order ID [-o text|json] "
			 "[--now T]",
		.summary = "place, extend, release, list or show court-order "
			   "holds",
		.about = "A hold keeps the segments its window [from, to] "
			 "overlaps past retention,\nuntil it expires (--until, "
			 "default now + period) or is released. extend\n"
			 "moves the expiry to --until or by the hold's period; "
			 "it never shortens.\nEvery change is recorded in the "
			 "audit trail. Runs beside a writing server.",
		.exits = "0 success, 1 no such order (show), 2 usage error or "
			 "refused change,\n3 error",
	},
	{
		.name = "audit-log",
		.run = run_audit_log,
		.opts = OPT_BIT(OPT_SINCE) | OPT_BIT(OPT_ORDER) |
			OPT_BIT(OPT_OUTPUT) | OPT_BIT(OPT_NOW),
		.pos_names = { "DIR", NULL },
		.min_pos = 1,
		.formats = info_formats,
		.usage = "audit-log DIR [--since T] [--order ID] "
			 "[-o text|json] [--now T]",
		.summary = "print the audit trail",
		.about = "Prints the audit trail of the store in DIR, oldest "
			 "first: segments sealed\nand expired, holds placed, "
			 "extended, released and lapsed, queries run\nunder an "
			 "order. -o json prints one JSON object per line.",
		.exits = "0 events printed, 1 none, 2 usage error, 3 error",
	},
	{
		.name = "audit",
		.run = run_audit,
		.opts = OPT_BIT(OPT_ENFORCE) | OPT_BIT(OPT_OUTPUT) |
			OPT_BIT(OPT_REPORT) | OPT_BIT(OPT_WARN) |
			OPT_BIT(OPT_NOW),
		.pos_names = { "DIR", NULL },
		.min_pos = 1,
		.formats = info_formats,
		.usage = "audit DIR [--enforce] [-o text|json] [--report FILE] "
			 "[--warn D] [--now T]",
		.summary = "retention audit for cron: check, report, enforce",
		.about = "Checks the store in DIR: segments past due (a "
			 "violation; --enforce deletes\nthem), holds expiring "
			 "soon or lapsed (warnings), every block's checksum,\n"
			 "files in seg/ that are not segments, and index lag. "
			 "Read-only unless\n--enforce. Quiet when all is well "
			 "(cron mails any output). Two audits\nnever run at "
			 "once (AUDIT.lock).",
		.exits = "0 all well, 1 violations found, 2 usage error, "
			 "3 error,\n4 another audit or writer holds the lock",
	},
	{
		.name = "stat",
		.run = run_stat,
		.opts = OPT_BIT(OPT_OUTPUT) | OPT_BIT(OPT_NOW),
		.pos_names = { "DIR", NULL },
		.min_pos = 1,
		.formats = info_formats,
		.usage = "stat DIR [-o text|json] [--now T]",
		.summary = "show the size, shape and settings of a store",
		.about = "Prints the totals of the store in DIR (segments, "
			 "records, blocks, bytes,\ncompression, time span, "
			 "bucket width, retention) and one line per segment.",
		.exits = "0 success, 2 usage error, 3 error",
	},
	{
		.name = "verify",
		.run = run_verify,
		.opts = OPT_BIT(OPT_OUTPUT) | OPT_BIT(OPT_NOW),
		.pos_names = { "DIR", NULL },
		.min_pos = 1,
		.formats = info_formats,
		.usage = "verify DIR [-o text|json] [--now T]",
		.summary = "check every block of every segment",
		.about = "Reads and checks every block of the store in DIR "
			 "(checksum, decompression,\nstructure) without "
			 "changing anything. Prints one line per damaged "
			 "segment\nand a summary.",
		.exits = "0 no damage, 1 damage found, 2 usage error, 3 error",
	},
};

static const char time_help[] =
	"T is a time: RFC 3339 (2026-11-01T12:00:00Z), a date (2026-11-01),\n"
	"integer microseconds since the epoch, \"now\", or relative to now\n"
	"(-2h, +15m, -30d; units s m h d w).\n";

/* ---------------------------------------------------------------------- */
/* Messages                                                               */
/* ---------------------------------------------------------------------- */

static const char *lib_msg(int rc)
{
	const char *m = ql_errmsg(NULL);

	return m[0] ? m : ql_strerror(rc);
}

/* A failed library call: "logtool: <code>: <detail>". */
static int lib_error(int rc)
{
	const char *m = ql_errmsg(NULL);

	if (m[0])
		fprintf(stderr, "logtool: %s: %s\n", ql_strerror(rc), m);
	else
		fprintf(stderr, "logtool: %s\n", ql_strerror(rc));
	return rc == QL_EBUSY ? LT_BUSY : LT_ERROR;
}

static int LT_PRINTF(2, 3)
usage_error(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "logtool%s%s: ", cmd ? " " : "", cmd ? cmd->name : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\ntry 'logtool%s%s --help'\n", cmd ? " " : "",
		cmd ? cmd->name : "");
	return LT_USAGE;
}

/* The option as the user spelled it, for messages. */
static const char *opt_name(const struct args *a, int id)
{
	static char buf[32];

	if (a->used_letter[id])
		snprintf(buf, sizeof(buf), "-%c", opt_specs[id].letter);
	else
		snprintf(buf, sizeof(buf), "--%s", opt_specs[id].name);
	return buf;
}

/* ---------------------------------------------------------------------- */
/* Help                                                                   */
/* ---------------------------------------------------------------------- */

static void print_option(FILE *f, const struct command *cmd, int id)
{
	const struct opt_spec *o = &opt_specs[id];
	char left[40];
	int i;

	snprintf(left, sizeof(left), "%c%c%s--%s%s%s",
		 o->letter ? '-' : ' ', o->letter ? o->letter : ' ',
		 o->letter ? ", " : "  ", o->name, o->metavar ? " " : "",
		 o->metavar ? o->metavar : "");
	fprintf(f, "  %-20s ", left);
	if (o->help) {
		fprintf(f, "%s\n", o->help);
		return;
	}
	/* -o: the list of formats differs per command. */
	fputs("output format:", f);
	for (i = 0; cmd->formats[i]; i++)
		fprintf(f, "%s %s%s", i == 0 ? "" : cmd->formats[i + 1] ?
			"," : " or", cmd->formats[i],
			i == 0 ? " (default)" : "");
	fputc('\n', f);
}

static void print_command_help(FILE *f, const struct command *cmd)
{
	int id;

	fprintf(f, "usage: logtool %s\n\n%s\n\noptions:\n", cmd->usage,
		cmd->about);
	for (id = 0; id < OPT_COUNT; id++)
		if ((cmd->opts | OPT_BIT(OPT_HELP)) & OPT_BIT(id))
			print_option(f, cmd, id);
	if (cmd->opts & (OPT_BIT(OPT_SINCE) | OPT_BIT(OPT_UNTIL) |
			 OPT_BIT(OPT_NOW)))
		fprintf(f, "\n%s", time_help);
	fprintf(f, "\nexit status: %s\n", cmd->exits);
}

static void print_synopsis(FILE *f)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "%s logtool %s\n", i == 0 ? "usage:" : "      ",
			commands[i].usage);
	fputs("       logtool COMMAND -h|--help\n"
	      "       logtool -h|--help\n"
	      "       logtool --version\n", f);
}

static void print_global_help(FILE *f)
{
	size_t i;

	print_synopsis(f);
	fputs("\nA tool for querylog stores: query-log records of an identity "
	      "lookup service.\n\ncommands:\n", f);
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f, "\n%s", time_help);
	fputs("\nexit status:\n"
	      "  0  success: the command did its work, something matched\n"
	      "  1  nothing matched, some input lines were bad, or damage "
	      "was found\n"
	      "  2  usage error\n"
	      "  3  runtime error: cannot open the store, I/O error\n"
	      "  4  the store is locked by another writer\n"
	      "\nSee logtool(1).\n", f);
}

/* ---------------------------------------------------------------------- */
/* Argument parsing                                                       */
/* ---------------------------------------------------------------------- */

static int find_long(const char *name, size_t len)
{
	int id;

	for (id = 0; id < OPT_COUNT; id++)
		if (strlen(opt_specs[id].name) == len &&
		    memcmp(opt_specs[id].name, name, len) == 0)
			return id;
	return -1;
}

static int find_letter(char c)
{
	int id;

	for (id = 0; id < OPT_COUNT; id++)
		if (opt_specs[id].letter && opt_specs[id].letter == c)
			return id;
	return -1;
}

static int count_pos_names(const struct command *cmd)
{
	int n = 0;

	while (n < MAX_POS && cmd->pos_names[n])
		n++;
	return n;
}

/* Takes one option at argv[*i]; may consume the next word as its value.
 * Accepts "--name value", "--name=value", "-x value" and "-xvalue". */
static int take_option(struct args *a, int argc, char **argv, int *i)
{
	const struct command *cmd = a->cmd;
	const char *s = argv[*i], *val = NULL;
	int id, letter = s[1] != '-';
	size_t len;

	if (letter) {
		len = 2;
		id = find_letter(s[1]);
		if (s[2])
			val = s + 2;
	} else {
		const char *eq = strchr(s + 2, '=');

		len = eq ? (size_t)(eq - s) : strlen(s);
		id = find_long(s + 2, len - 2);
		if (eq)
			val = eq + 1;
	}
	if (id < 0 || !((cmd->opts | OPT_BIT(OPT_HELP)) & OPT_BIT(id)))
		return usage_error(cmd, "unknown option '%.*s'", (int)len, s);
	a->used_letter[id] = letter;
	if (id == OPT_SUBJECT && a->opt[id]) {
		if (*i + 1 >= argc && !val)
			return usage_error(cmd, "option '--subject' needs a "
					   "value S");
		if (a->nsubjects == 64)
			return usage_error(cmd, "at most 64 --subject");
		a->subjects[a->nsubjects++] = val ? val : argv[++*i];
		return LT_RUN;
	}
	if (a->opt[id])
		return usage_error(cmd, "option '%s' given twice",
				   opt_name(a, id));
	if (!opt_specs[id].metavar) {
		if (val)
			return usage_error(cmd, "option '%s' takes no value",
					   opt_name(a, id));
		val = "";
	} else if (!val) {
		if (*i + 1 >= argc)
			return usage_error(cmd, "option '%s' needs a value %s",
					   opt_name(a, id),
					   opt_specs[id].metavar);
		val = argv[++*i];
	}
	a->opt[id] = val;
	if (id == OPT_SUBJECT)
		a->subjects[a->nsubjects++] = val;
	return LT_RUN;
}

static int check_format(struct args *a)
{
	const char *const *f;
	char list[64] = "";

	if (!a->opt[OPT_OUTPUT])
		return LT_RUN;
	for (f = a->cmd->formats; *f; f++) {
		if (strcmp(*f, a->opt[OPT_OUTPUT]) == 0)
			return LT_RUN;
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%s%s", f == a->cmd->formats ? "" : ", ", *f);
	}
	return usage_error(a->cmd, "option '%s' must be one of %s (got '%s')",
			   opt_name(a, OPT_OUTPUT), list, a->opt[OPT_OUTPUT]);
}

static int64_t real_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* Returns LT_RUN to go on, or the exit status (help printed, usage
 * error). */
static int parse_args(struct args *a, const struct command *cmd, int argc,
		      char **argv)
{
	int i, rc, only_pos = 0, npos_max = count_pos_names(cmd);

	memset(a, 0, sizeof(*a));
	a->cmd = cmd;
	for (i = 0; i < argc; i++) {
		const char *s = argv[i];

		if (!only_pos && strcmp(s, "--") == 0) {
			only_pos = 1;
		} else if (only_pos || s[0] != '-' || s[1] == '\0') {
			if (a->npos == npos_max)
				return usage_error(cmd,
						   "unexpected argument '%s'",
						   s);
			a->pos[a->npos++] = s;
		} else {
			rc = take_option(a, argc, argv, &i);
			if (rc != LT_RUN)
				return rc;
		}
	}
	/* --help wins over missing arguments: "logtool scan --help". */
	if (a->opt[OPT_HELP]) {
		print_command_help(stdout, cmd);
		return LT_OK;
	}
	if (a->npos < cmd->min_pos)
		return usage_error(cmd, "missing argument %s",
				   cmd->pos_names[a->npos]);
	for (i = 0; i < a->npos; i++)
		if (a->pos[i][0] == '\0')
			return usage_error(cmd, "argument %s must not be empty",
					   cmd->pos_names[i]);
	rc = check_format(a);
	if (rc != LT_RUN)
		return rc;

	/* --now is relative to the real time; the other times to --now. */
	a->now = real_now();
	if (a->opt[OPT_NOW]) {
		if (ql_time_parse(&a->now, a->opt[OPT_NOW], a->now,
				  "--now") != QL_OK)
			return usage_error(cmd, "%s", lib_msg(QL_EINVAL));
		a->now_given = 1;
	}
	return LT_RUN;
}

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Store, output and formatting helpers                                   */
/* ---------------------------------------------------------------------- */

/* The store's clock under --now: time stands still at that moment. */
static int64_t fixed_clock(void *ctx)
{
	return *(const int64_t *)ctx;
}

static int open_store(ql_store **out, struct args *a, unsigned flags)
{
	ql_options o = QL_OPTIONS_INIT;
	int rc;

	o.flags = flags;
	if (a->now_given) {
		o.clock = fixed_clock;
		o.clock_ctx = &a->now;
	}
	/* A reader seals nothing: no need for the maintenance thread. */
	if (flags & QL_OPEN_READONLY)
		o.maintenance_interval_ms = -1;
	rc = ql_open(out, a->pos[0], &o);
	if (rc != QL_OK) {
		*out = NULL;
		return lib_error(rc);
	}
	return LT_OK;
}

/* The first write error on stdout; EPIPE (a closed pipe, as in "logtool
 * scan | head") is not reported: the reader has all it wanted. */
static int out_errno;

static int out_failed(void)
{
	if (!ferror(stdout))
		return 0;
	if (!out_errno)
		out_errno = errno ? errno : EIO;
	return 1;
}

static int finish_stdout(int status)
{
	if (fflush(stdout) != 0 && !out_errno)
		out_errno = errno ? errno : EIO;
	if (!out_errno && ferror(stdout))
		out_errno = EIO;
	if (!out_errno || out_errno == EPIPE)
		return status;
	fprintf(stderr, "logtool: write error: %s\n", strerror(out_errno));
	return status == LT_OK || status == LT_NONE ? LT_ERROR : status;
}

/* Writes s for a terminal: control and non-ASCII bytes as \xNN, so that
 * no stored byte can drive the terminal; pads to width columns. */
static void put_text(const char *s, int width)
{
	int n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			putchar(c);
			n++;
		} else {
			n += printf("\\x%02x", c);
		}
	}
	while (n++ < width)
		putchar(' ');
}

static void put_csv(const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (; *s; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
}

static const char *service_name(unsigned service, char *buf, size_t sz)
{
	if (service == QL_SERVICE_MESSAGES)
		return "messages";
	if (service == QL_SERVICE_FACETIME)
		return "facetime";
	snprintf(buf, sz, "%u", service);
	return buf;
}

/* "1d", "30d", "6h", "90m": the largest unit that divides exactly, as
 * ql_duration_parse reads it back. */
static void format_duration(char *out, size_t sz, int64_t us)
{
	static const struct {
		char unit;
		int64_t us;
	} units[] = {
		{ 'd', 86400 * USEC_PER_SEC },
		{ 'h', 3600 * USEC_PER_SEC },
		{ 'm', 60 * USEC_PER_SEC },
		{ 's', USEC_PER_SEC },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(units); i++) {
		if (us != 0 && us % units[i].us == 0) {
			snprintf(out, sz, "%" PRId64 "%c", us / units[i].us,
				 units[i].unit);
			return;
		}
	}
	snprintf(out, sz, "%" PRId64 "us", us);
}

/* ---------------------------------------------------------------------- */
/* import                                                                 */
/* ---------------------------------------------------------------------- */

/* Records per ql_append call. */
#define BATCH 4096

/* A bad line found while parsing, held back until the records before it
 * have been appended, so that messages come out in line order. */
struct line_error {
	uint64_t line;
	char *msg;
};

struct importer {
	ql_store *store;
	const char *name;	/* of the input, for messages */
	int64_t now;
	uint64_t imported, bad;

	size_t n;		/* records in the batch */
	ql_record recs[BATCH];
	json_t *objs[BATCH];	/* own the strings that recs point at */
	uint64_t lines[BATCH];
	unsigned char rejected[BATCH];

	size_t nerr, next_err;
	struct line_error errs[BATCH];
};

static void print_line_error(const struct importer *im, uint64_t line,
			     const char *msg)
{
	fprintf(stderr, "%s:%" PRIu64 ": %s\n", im->name, line, msg);
}

/* Prints the held-back parse errors of lines before line. */
static void release_errors(struct importer *im, uint64_t line)
{
	while (im->next_err < im->nerr &&
	       im->errs[im->next_err].line < line) {
		struct line_error *e = &im->errs[im->next_err++];

		print_line_error(im, e->line, e->msg);
		free(e->msg);
	}
	if (im->next_err == im->nerr)
		im->nerr = im->next_err = 0;
}

static void hold_error(struct importer *im, uint64_t line, const char *msg)
{
	char *copy = strdup(msg);

	im->bad++;
	if (!copy) {
		/* Out of order beats lost. */
		print_line_error(im, line, msg);
		return;
	}
	im->errs[im->nerr].line = line;
	im->errs[im->nerr].msg = copy;
	im->nerr++;
}

/* ql_append's message starts with "record N: ", N the index in that call;
 * next to FILE:LINE it only misleads, so it goes - when it is exactly
 * that prefix. */
static const char *skip_record_index(const char *msg, size_t index)
{
	char prefix[40];
	int n = snprintf(prefix, sizeof(prefix), "record %zu: ", index);

	if (n > 0 && strncmp(msg, prefix, (size_t)n) == 0)
		return msg + n;
	return msg;
}

/* Appends the batch. ql_append takes all or nothing and names the first
 * bad record: report it, mark it rejected, and go on with the longest run
 * of records that are not rejected - the good prefix first, then what
 * follows the bad one. Each record is validated about twice, however many
 * are bad. */
static int import_flush(struct importer *im)
{
	size_t lo = 0, hi, bad, i;
	int rc = QL_OK;

	memset(im->rejected, 0, im->n);
	while (lo < im->n) {
		if (im->rejected[lo]) {
			lo++;
			continue;
		}
		for (hi = lo; hi < im->n && !im->rejected[hi]; hi++)
			;
		bad = SIZE_MAX;
		rc = ql_append(im->store, im->recs + lo, hi - lo, &bad);
		if (rc == QL_OK) {
			im->imported += hi - lo;
			lo = hi;
			continue;
		}
		if ((rc != QL_EINVAL && rc != QL_ERANGE) || bad >= hi - lo)
			break;
		release_errors(im, im->lines[lo + bad]);
		print_line_error(im, im->lines[lo + bad],
				 skip_record_index(lib_msg(rc), bad));
		im->rejected[lo + bad] = 1;
		im->bad++;
		rc = QL_OK;
	}
	release_errors(im, UINT64_MAX);
	for (i = 0; i < im->n; i++)
		ndjson_release(im->objs[i]);
	im->n = 0;
	return rc == QL_OK ? LT_OK : lib_error(rc);
}

static int import_line(struct importer *im, uint64_t line, const char *buf,
		       size_t len)
{
	char msg[NDJSON_MSG_MAX];
	json_t *obj;

	switch (ndjson_parse_line(&im->recs[im->n], &obj, buf, len, im->now,
				  msg, sizeof(msg))) {
	case NDJSON_BLANK:
		return LT_OK;
	case NDJSON_BAD:
		hold_error(im, line, msg);
		break;
	default:
		im->objs[im->n] = obj;
		im->lines[im->n] = line;
		im->n++;
	}
	if (im->n == BATCH || im->nerr == BATCH)
		return import_flush(im);
	return LT_OK;
}

/* Reads the input to its end. LT_OK, or the exit status of a fatal
 * error (which has been reported). */
static int import_stream(struct importer *im, FILE *in, uint64_t *line)
{
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = LT_OK;

	while ((len = getline(&buf, &cap, in)) >= 0) {
		++*line;
		if (len > 0 && buf[len - 1] == '\n')
			len--;
		rc = import_line(im, *line, buf, (size_t)len);
		if (rc != LT_OK)
			goto free_buf;
	}
	if (ferror(in)) {
		fprintf(stderr, "logtool: %s: read error: %s\n", im->name,
			strerror(errno));
		rc = LT_ERROR;
		goto free_buf;
	}
	rc = import_flush(im);
free_buf:
	free(buf);
	return rc;
}

/* import is how a store is born: create it when DIR does not exist, or is
 * an empty directory (made by a service manager, a fresh mount), but never
 * lay a new store over a directory that holds something else. */
static int import_open_flags(const char *dir, unsigned *flags)
{
	struct stat st;
	struct dirent *de;
	DIR *d;

	*flags = 0;
	if (lstat(dir, &st) < 0) {
		if (errno == ENOENT) {
			*flags = QL_OPEN_CREATE;
			return LT_OK;
		}
		fprintf(stderr, "logtool: %s: %s\n", dir, strerror(errno));
		return LT_ERROR;
	}
	/* A symlink is left to ql_open, which refuses it. */
	if (!S_ISDIR(st.st_mode))
		return LT_OK;
	d = opendir(dir);
	if (!d)
		return LT_OK;	/* ql_open will say why */
	*flags = QL_OPEN_CREATE;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			*flags = 0;
			break;
		}
	}
	closedir(d);
	return LT_OK;
}

/* fopen() takes a directory, and reading it fails only later: refuse it
 * before a store is created for nothing. */
static int check_input(FILE *in, const char *file)
{
	struct stat st;

	if (fstat(fileno(in), &st) == 0 && S_ISDIR(st.st_mode)) {
		fprintf(stderr, "logtool: %s: %s\n", file, strerror(EISDIR));
		return LT_ERROR;
	}
	return LT_OK;
}

static double mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Only the handle of the writer open that cut torn tails knows it (a
 * later "logtool stat" opens anew and sees zeros): say it here. */
static void report_recovery(ql_store *store)
{
	ql_stats st;

	if (ql_stat(store, &st) != QL_OK)
		return;
	if (st.recovered_segments || st.recovered_bytes)
		fprintf(stderr, "logtool: recovery cut %" PRIu64 " bytes of "
			"torn tails from %" PRIu64 " segments\n",
			st.recovered_bytes, st.recovered_segments);
}

static int import_finish(struct importer *im, double t0)
{
	int rc, rc2;
	double secs;

	rc = ql_sync(im->store);
	/* seal what is due and compact it now: this process is the writer,
	 * and the server that opens the store next should not have to */
	if (rc == QL_OK)
		rc = ql_maintain(im->store);
	rc2 = ql_close(im->store);
	im->store = NULL;
	if (rc == QL_OK)
		rc = rc2;
	if (rc != QL_OK)
		return lib_error(rc);
	secs = mono_seconds() - t0;
	fprintf(stderr, "imported %" PRIu64 " records, %" PRIu64
		" bad lines, in %.2f s (%.0f records/s)\n", im->imported,
		im->bad, secs, (double)im->imported / (secs > 1e-6 ? secs
								   : 1e-6));
	return im->bad ? LT_NONE : LT_OK;
}

static int run_import(struct args *a)
{
	const char *file = a->npos > 1 ? a->pos[1] : "-";
	int use_stdin = strcmp(file, "-") == 0;
	struct importer *im;
	uint64_t line = 0;
	unsigned flags;
	double t0 = mono_seconds();
	FILE *in;
	int rc;

	/* Open the input first: a missing file must not create a store. */
	in = use_stdin ? stdin : fopen(file, "r");
	if (!in) {
		fprintf(stderr, "logtool: %s: %s\n", file, strerror(errno));
		return LT_ERROR;
	}
	rc = check_input(in, file);
	if (rc != LT_OK)
		goto close_input;
	im = calloc(1, sizeof(*im));
	if (!im) {
		fprintf(stderr, "logtool: out of memory\n");
		rc = LT_ERROR;
		goto close_input;
	}
	im->name = use_stdin ? "<stdin>" : file;
	im->now = a->now;
	rc = import_open_flags(a->pos[0], &flags);
	if (rc != LT_OK)
		goto free_importer;
	rc = open_store(&im->store, a, flags);
	if (rc != LT_OK)
		goto free_importer;
	report_recovery(im->store);

	rc = import_stream(im, in, &line);
	if (rc != LT_OK) {
		if (line > 0)
			fprintf(stderr, "logtool: import stopped at %s:%"
				PRIu64 "\n", im->name, line);
		goto close_store;
	}
	rc = import_finish(im, t0);
close_store:
	/* After a fatal error: the error has been reported; what close says
	 * about the same broken store would only repeat it. */
	ql_close(im->store);
	release_errors(im, UINT64_MAX);
	while (im->n > 0)
		ndjson_release(im->objs[--im->n]);
free_importer:
	free(im);
close_input:
	if (!use_stdin)
		fclose(in);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* scan                                                                   */
/* ---------------------------------------------------------------------- */

/* Row printers return 0, or -1 when the record cannot be printed (already
 * reported). Write errors are found through ferror(stdout). */
struct printer {
	const char *name;
	void (*header)(void);
	int (*row)(const ql_record *r);
};

static int text_row(const ql_record *r)
{
	char t[40], ip[64], svc[8];

	ql_time_format(t, sizeof(t), r->ts);
	ql_ip_format(ip, sizeof(ip), r->ip);
	/* 27 = with microseconds: whole and fractional seconds align. */
	put_text(t, 27);
	fputs("  ", stdout);
	put_text(r->requester, 24);
	fputs("  ", stdout);
	put_text(r->target, 24);
	fputs("  ", stdout);
	put_text(ip, 15);
	printf("  %-8s  %s\n", service_name(r->service, svc, sizeof(svc)),
	       r->result ? "registered" : "unregistered");
	return 0;
}

/* One NDJSON line with the keys and value forms import reads. */
static int json_row(const ql_record *r)
{
	char buf[2048], *s;
	size_t len;

	s = ndjson_format(r, buf, sizeof(buf), &len);
	if (!s) {
		fprintf(stderr, "logtool: the record at %" PRId64 " cannot be "
			"encoded as JSON\n", r->ts);
		return -1;
	}
	fwrite(s, 1, len, stdout);
	putchar('\n');
	if (s != buf)
		free(s);
	return 0;
}

static void csv_header(void)
{
	fputs("ts,requester,target,ip,service,result\r\n", stdout);
}

/* RFC 4180: CRLF line ends, a field with , " CR or LF quoted and its
 * quotes doubled. ts as RFC 3339 so that spreadsheets read it. */
static int csv_row(const ql_record *r)
{
	char t[40], ip[64];

	ql_time_format(t, sizeof(t), r->ts);
	ql_ip_format(ip, sizeof(ip), r->ip);
	fputs(t, stdout);
	putchar(',');
	put_csv(r->requester);
	putchar(',');
	put_csv(r->target);
	printf(",%s,%u,%u\r\n", ip, (unsigned)r->service,
	       (unsigned)r->result);
	return 0;
}

static const struct printer printers[] = {
	{ "text", NULL, text_row },
	{ "json", NULL, json_row },
	{ "csv", csv_header, csv_row },
};

static const struct printer *find_printer(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(printers); i++)
		if (strcmp(printers[i].name, name) == 0)
			return &printers[i];
	return &printers[0];
}

static int parse_time_opt(struct args *a, int id, int64_t *out)
{
	char field[32];

	snprintf(field, sizeof(field), "%s", opt_name(a, id));
	if (ql_time_parse(out, a->opt[id], a->now, field) != QL_OK)
		return usage_error(a->cmd, "%s", lib_msg(QL_EINVAL));
	return LT_RUN;
}

/* [since, until); ql_query takes both 0 as "everything", so a missing
 * bound is the far end of the time line. */
static int parse_window(struct args *a, ql_query *q)
{
	int rc;

	if (!a->opt[OPT_SINCE] && !a->opt[OPT_UNTIL])
		return LT_RUN;
	q->since = INT64_MIN;
	q->until = INT64_MAX;
	if (a->opt[OPT_SINCE]) {
		rc = parse_time_opt(a, OPT_SINCE, &q->since);
		if (rc != LT_RUN)
			return rc;
	}
	if (a->opt[OPT_UNTIL]) {
		rc = parse_time_opt(a, OPT_UNTIL, &q->until);
		if (rc != LT_RUN)
			return rc;
	}
	if (q->since >= q->until)
		return usage_error(a->cmd, "--since must be earlier than "
				   "--until");
	return LT_RUN;
}

static int parse_limit(struct args *a, uint64_t *limit)
{
	const char *s = a->opt[OPT_LIMIT];
	char *end;

	*limit = UINT64_MAX;
	if (!s)
		return LT_RUN;
	errno = 0;
	if (s[0] >= '0' && s[0] <= '9') {
		unsigned long long v = strtoull(s, &end, 10);

		if (!errno && !*end && v >= 1) {
			*limit = v;
			return LT_RUN;
		}
	}
	return usage_error(a->cmd, "option '--limit' must be a whole number "
			   "of at least 1 (got '%s')", s);
}

static int scan_rows(ql_cursor *cur, const struct printer *p,
		     uint64_t limit, uint64_t *printed)
{
	const ql_record *r;
	int rc = QL_DONE;

	if (p->header)
		p->header();
	while (*printed < limit && (rc = ql_cursor_next(cur, &r)) == QL_ROW) {
		if (p->row(r) < 0)
			return LT_ERROR;
		if (out_failed())
			return LT_OK; /* reported by finish_stdout */
		++*printed;
	}
	if (*printed < limit && rc < 0)
		return lib_error(rc);
	return LT_OK;
}

static int run_scan(struct args *a)
{
	const char *fmt = a->opt[OPT_OUTPUT] ? a->opt[OPT_OUTPUT] : "text";
	ql_query q = QL_QUERY_INIT;
	ql_store *store;
	ql_cursor *cur;
	uint64_t limit, printed = 0;
	int rc;

	rc = parse_window(a, &q);
	if (rc != LT_RUN)
		return rc;
	rc = parse_limit(a, &limit);
	if (rc != LT_RUN)
		return rc;
	rc = open_store(&store, a, QL_OPEN_READONLY);
	if (rc != LT_OK)
		return rc;
	rc = ql_cursor_open(&cur, store, &q);
	if (rc != QL_OK) {
		rc = lib_error(rc);
		goto close_store;
	}
	rc = scan_rows(cur, find_printer(fmt), limit, &printed);
	if (rc == LT_OK && printed == 0)
		rc = LT_NONE;
	ql_cursor_close(cur);
close_store:
	ql_close(store);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* query, reindex                                                         */
/* ---------------------------------------------------------------------- */

static int parse_subject(struct args *a, ql_query *q)
{
	const char *role = a->opt[OPT_ROLE];

	if (!a->opt[OPT_HANDLE] == !a->opt[OPT_IP])
		return usage_error(a->cmd, "give exactly one of --handle and "
				   "--ip");
	if (a->opt[OPT_IP]) {
		if (role)
			return usage_error(a->cmd, "--role goes with --handle");
		q->match = QL_MATCH_IP;
		if (ql_cidr_parse(q->ip, &q->prefix_len, a->opt[OPT_IP],
				  "--ip") != QL_OK)
			return usage_error(a->cmd, "%s", lib_msg(QL_EINVAL));
		return LT_RUN;
	}
	q->match = QL_MATCH_HANDLE;
	q->handle = a->opt[OPT_HANDLE];
	if (!role || !strcmp(role, "any"))
		q->role = QL_ROLE_ANY;
	else if (!strcmp(role, "requester"))
		q->role = QL_ROLE_REQUESTER;
	else if (!strcmp(role, "target"))
		q->role = QL_ROLE_TARGET;
	else
		return usage_error(a->cmd, "--role \"%s\": must be requester, "
				   "target or any", role);
	return LT_RUN;
}

static int run_query(struct args *a)
{
	const char *fmt = a->opt[OPT_OUTPUT] ? a->opt[OPT_OUTPUT] : "text";
	ql_query q = QL_QUERY_INIT;
	ql_store *store;
	ql_cursor *cur;
	uint64_t limit, printed = 0;
	int rc;

	rc = parse_subject(a, &q);
	if (rc == LT_RUN)
		rc = parse_window(a, &q);
	if (rc == LT_RUN)
		rc = parse_limit(a, &limit);
	if (rc != LT_RUN)
		return rc;
	rc = open_store(&store, a, QL_OPEN_READONLY);
	if (rc != LT_OK)
		return rc;
	rc = ql_cursor_open(&cur, store, &q);
	if (rc != QL_OK) {
		/* a malformed handle is the user's: say so as usage */
		rc = rc == QL_EINVAL ? usage_error(a->cmd, "%s",
						   lib_msg(QL_EINVAL))
				     : lib_error(rc);
		goto close_store;
	}
	if (a->opt[OPT_ORDER]) {
		/* who asked what, under which order: recorded once the query
		 * is known to be valid, before the answer is given */
		char desc[512];

		snprintf(desc, sizeof(desc), "%s %s%s%s since %s until %s",
			 q.match == QL_MATCH_IP ? "ip" : "handle",
			 q.match == QL_MATCH_IP ? a->opt[OPT_IP] : q.handle,
			 q.match == QL_MATCH_IP ? "" : " role ",
			 q.match == QL_MATCH_IP ? "" :
			 (a->opt[OPT_ROLE] ? a->opt[OPT_ROLE] : "any"),
			 a->opt[OPT_SINCE] ? a->opt[OPT_SINCE] : "-",
			 a->opt[OPT_UNTIL] ? a->opt[OPT_UNTIL] : "-");
		rc = ql_audit_query(store, who(a), a->opt[OPT_ORDER], desc);
		if (rc != QL_OK) {
			rc = lib_error(rc);
			ql_cursor_close(cur);
			goto close_store;
		}
	}
	if (a->opt[OPT_COUNTONLY]) {
		const ql_record *r;

		while (printed < limit &&
		       (rc = ql_cursor_next(cur, &r)) == QL_ROW)
			printed++;
		rc = rc < 0 ? lib_error(rc) : LT_OK;
		if (rc == LT_OK)
			printf("%" PRIu64 "\n", printed);
	} else {
		rc = scan_rows(cur, find_printer(fmt), limit, &printed);
	}
	if (rc == LT_OK && printed == 0)
		rc = LT_NONE;
	ql_cursor_close(cur);
close_store:
	ql_close(store);
	return rc;
}

static int run_reindex(struct args *a)
{
	ql_store *store;
	ql_stats st;
	int rc;

	rc = open_store(&store, a, 0);
	if (rc != LT_OK)
		return rc;
	rc = ql_reindex(store);
	if (rc == QL_OK)
		rc = ql_stat(store, &st);
	if (rc != QL_OK) {
		rc = lib_error(rc);
		ql_close(store);
		return rc;
	}
	fprintf(stderr, "logtool: reindexed %" PRIu64 " segments, %" PRIu64
		" records\n", st.reindexed_segments, st.records);
	rc = ql_close(store);
	return rc == QL_OK ? LT_OK : lib_error(rc);
}

/* ---------------------------------------------------------------------- */
/* expire, hold, audit-log, audit                                          */
/* ---------------------------------------------------------------------- */

static const char *who(struct args *a)
{
	const char *u = getenv("USER");

	if (a->opt[OPT_BY])
		return a->opt[OPT_BY];
	return u && *u ? u : "logtool";
}

static const char *action_name(int action)
{
	return action == QL_EXPIRE_DELETE ? "delete"
	       : action == QL_EXPIRE_HELD ? "held" : "young";
}

struct expire_out {
	int json, dry;
	uint64_t n[3], records[3], bytes[3];
};

static int expire_row(const ql_expiry *e, void *ctx)
{
	struct expire_out *o = ctx;
	char b[40], d[40];

	o->n[e->action]++;
	o->records[e->action] += e->records;
	o->bytes[e->action] += e->bytes;
	if (e->action == QL_EXPIRE_YOUNG)
		return 0;
	ql_time_format(b, sizeof(b), e->bucket_start);
	ql_time_format(d, sizeof(d), e->due_at);
	if (o->json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s?}",
				      "segment", e->name, "action",
				      e->action == QL_EXPIRE_DELETE && o->dry
					      ? "would-delete"
					      : action_name(e->action),
				      "bucket", b, "records",
				      (json_int_t)e->records, "bytes",
				      (json_int_t)e->bytes, "due_at", d,
				      "held_by", e->held_by);

		if (j) {
			json_dumpf(j, stdout, JSON_COMPACT);
			putchar('\n');
			json_decref(j);
		}
		return 0;
	}
	printf("%-12s %s  %8" PRIu64 " records  due %s%s%s\n",
	       e->action == QL_EXPIRE_DELETE
		       ? (o->dry ? "would delete" : "deleted") : "held",
	       e->name, e->records, d, e->held_by ? "  by " : "",
	       e->held_by ? e->held_by : "");
	return 0;
}

static int run_expire(struct args *a)
{
	struct expire_out o = { 0 };
	ql_store *store;
	int rc;

	o.json = a->opt[OPT_OUTPUT] && !strcmp(a->opt[OPT_OUTPUT], "json");
	o.dry = a->opt[OPT_DRYRUN] != NULL;
	/* the writer lock is not needed: expiry takes the maintenance lock
	 * and deletes only sealed segments, so it runs beside a server */
	rc = open_store(&store, a, QL_OPEN_READONLY);
	if (rc != LT_OK)
		return rc;
	rc = ql_expire(store, o.dry, who(a), expire_row, &o);
	if (rc != QL_OK) {
		rc = lib_error(rc);
	} else {
		if (!o.json)
			fprintf(stderr, "logtool: %s %" PRIu64 " segments (%"
				PRIu64 " records), %" PRIu64 " held, %" PRIu64
				" young\n", o.dry ? "would delete" : "deleted",
				o.n[QL_EXPIRE_DELETE],
				o.records[QL_EXPIRE_DELETE],
				o.n[QL_EXPIRE_HELD], o.n[QL_EXPIRE_YOUNG]);
		rc = LT_OK;
	}
	ql_close(store);
	return finish_stdout(rc);
}

static int parse_duration_opt(struct args *a, int id, int64_t *out)
{
	if (ql_duration_parse(out, a->opt[id], opt_name(a, id)) != QL_OK)
		return usage_error(a->cmd, "%s", lib_msg(QL_EINVAL));
	return LT_RUN;
}

static const char *state_name(int st)
{
	return st == QL_HOLD_ACTIVE ? "active"
	       : st == QL_HOLD_RELEASED ? "released" : "lapsed";
}

struct hold_out {
	const char *order;
	int json, found;
};

static int hold_row(const ql_hold *h, void *ctx)
{
	struct hold_out *o = ctx;
	char f[40], t[40], e[40], p[40];

	if (o->order && strcmp(o->order, h->order_id))
		return 0;
	o->found++;
	ql_time_format(f, sizeof(f), h->from);
	if (h->to == QL_HOLD_OPEN_END)
		snprintf(t, sizeof(t), "open");
	else
		ql_time_format(t, sizeof(t), h->to);
	ql_time_format(e, sizeof(e), h->expires);
	ql_time_format(p, sizeof(p), h->placed_at);
	if (o->json) {
		json_t *subj = json_array();
		json_t *j;

		for (size_t i = 0; i < h->nsubjects; i++)
			json_array_append_new(subj,
					      json_string(h->subjects[i]));
		j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:o}",
			      "order_id", h->order_id, "state",
			      state_name(h->state), "from", f, "to", t,
			      "expires", e, "period_us",
			      (json_int_t)h->period_us, "reason", h->reason,
			      "placed_by", h->placed_by, "placed_at", p,
			      "subjects", subj);
		if (j) {
			json_dumpf(j, stdout, JSON_COMPACT);
			putchar('\n');
			json_decref(j);
		}
		return 0;
	}
	printf("%-24s %-8s window %s .. %s  expires %s\n", h->order_id,
	       state_name(h->state), f, t, e);
	if (o->order) {
		printf("  placed %s by %s: %s\n", p, h->placed_by, h->reason);
		for (size_t i = 0; i < h->nsubjects; i++)
			printf("  subject %s\n", h->subjects[i]);
	}
	return 0;
}

static int hold_place(struct args *a, ql_store *store)
{
	ql_hold h = QL_HOLD_INIT;
	int64_t period = 0;
	int rc = LT_RUN;

	if (!a->opt[OPT_ORDER] || !a->opt[OPT_FROM] || !a->opt[OPT_REASON])
		return usage_error(a->cmd, "hold place needs --order, --from "
				   "and --reason");
	h.order_id = a->opt[OPT_ORDER];
	rc = parse_time_opt(a, OPT_FROM, &h.from);
	h.to = QL_HOLD_OPEN_END;
	if (rc == LT_RUN && a->opt[OPT_TO] && strcmp(a->opt[OPT_TO], "open"))
		rc = parse_time_opt(a, OPT_TO, &h.to);
	if (rc == LT_RUN && a->opt[OPT_PERIOD])
		rc = parse_duration_opt(a, OPT_PERIOD, &period);
	if (rc != LT_RUN)
		return rc;
	h.period_us = period;
	h.expires = a->now + (period ? period : 30 * 86400 * USEC_PER_SEC);
	if (a->opt[OPT_UNTIL] &&
	    (rc = parse_time_opt(a, OPT_UNTIL, &h.expires)) != LT_RUN)
		return rc;
	h.reason = a->opt[OPT_REASON];
	h.placed_by = who(a);
	h.subjects = a->subjects;
	h.nsubjects = (size_t)a->nsubjects;
	rc = ql_hold_place(store, &h);
	if (rc == QL_EINVAL || rc == QL_EEXIST)
		return usage_error(a->cmd, "%s", lib_msg(rc));
	return rc == QL_OK ? LT_OK : lib_error(rc);
}

static int run_hold(struct args *a)
{
	const char *action = a->pos[0];
	struct hold_out o = { 0 };
	ql_store *store;
	int64_t until = 0;
	int rc;

	a->pos[0] = a->pos[1]; /* open_store takes DIR from pos[0] */
	o.json = a->opt[OPT_OUTPUT] && !strcmp(a->opt[OPT_OUTPUT], "json");
	if (strcmp(action, "place") && strcmp(action, "extend") &&
	    strcmp(action, "release") && strcmp(action, "list") &&
	    strcmp(action, "show"))
		return usage_error(a->cmd, "hold ACTION \"%s\": must be place, "
				   "extend, release, list or show", action);
	if (strcmp(action, "list") && strcmp(action, "place") &&
	    !a->opt[OPT_ORDER])
		return usage_error(a->cmd, "hold %s needs --order", action);
	if (!strcmp(action, "extend") && a->opt[OPT_UNTIL] &&
	    (rc = parse_time_opt(a, OPT_UNTIL, &until)) != LT_RUN)
		return rc;
	rc = open_store(&store, a, QL_OPEN_READONLY);
	if (rc != LT_OK)
		return rc;
	if (!strcmp(action, "place")) {
		rc = hold_place(a, store);
	} else if (!strcmp(action, "extend") || !strcmp(action, "release")) {
		rc = !strcmp(action, "extend")
			     ? ql_hold_extend(store, a->opt[OPT_ORDER], until,
					      who(a))
			     : ql_hold_release(store, a->opt[OPT_ORDER],
					       who(a));
		if (rc == QL_EINVAL)
			rc = usage_error(a->cmd, "%s", lib_msg(rc));
		else
			rc = rc == QL_OK ? LT_OK : lib_error(rc);
	} else {
		o.order = !strcmp(action, "show") ? a->opt[OPT_ORDER] : NULL;
		rc = ql_hold_list(store, hold_row, &o);
		rc = rc == QL_OK ? (o.order && !o.found ? LT_NONE : LT_OK)
				 : lib_error(rc);
		if (rc == LT_NONE)
			fprintf(stderr, "logtool: no order \"%s\"\n", o.order);
	}
	ql_close(store);
	return finish_stdout(rc);
}

struct log_out {
	int json;
	uint64_t n;
};

static int log_row(const char *js, size_t len, void *ctx)
{
	struct log_out *o = ctx;

	o->n++;
	if (o->json) {
		fwrite(js, 1, len, stdout);
		putchar('\n');
		return 0;
	}
	{
		json_error_t err;
		json_t *j = json_loadb(js, len, 0, &err);
		const char *time = NULL, *ev = NULL, *w = NULL, *ord = NULL;

		if (!j || json_unpack(j, "{s?s,s?s,s?s,s?s}", "time", &time,
				      "event", &ev, "who", &w, "order_id",
				      &ord)) {
			fwrite(js, 1, len, stdout);
			putchar('\n');
		} else {
			printf("%-28s %-16s %-12s %s  %.*s\n",
			       time ? time : "?", ev ? ev : "?", w ? w : "?",
			       ord ? ord : "-", (int)len, js);
		}
		json_decref(j);
	}
	return 0;
}

static int run_audit_log(struct args *a)
{
	struct log_out o = { 0 };
	ql_store *store;
	int64_t since = 0;
	int rc;

	o.json = a->opt[OPT_OUTPUT] && !strcmp(a->opt[OPT_OUTPUT], "json");
	if (a->opt[OPT_SINCE] &&
	    (rc = parse_time_opt(a, OPT_SINCE, &since)) != LT_RUN)
		return rc;
	rc = open_store(&store, a, QL_OPEN_READONLY);
	if (rc != LT_OK)
		return rc;
	rc = ql_audit_read(store, since, a->opt[OPT_ORDER], log_row, &o);
	rc = rc == QL_OK ? (o.n ? LT_OK : LT_NONE) : lib_error(rc);
	ql_close(store);
	return finish_stdout(rc);
}

/* The cron audit. Findings go into one JSON report; text output lists
 * them one a line, and nothing at all when all is well. */
struct audit {
	ql_store *store;
	json_t *findings;
	int64_t now, warn;
	uint64_t violations, warnings, segments, held;
	char **names;
	size_t nnames, capnames;
};

static void finding(struct audit *au, const char *level, const char *check,
		    const char *subject, const char *detail)
{
	json_array_append_new(au->findings,
			      json_pack("{s:s,s:s,s:s,s:s}", "level", level,
					"check", check, "subject", subject,
					"detail", detail));
	if (!strcmp(level, "violation"))
		au->violations++;
	else
		au->warnings++;
}

static int audit_expiry(const ql_expiry *e, void *ctx)
{
	struct audit *au = ctx;
	char d[40], msg[160];

	if (e->action == QL_EXPIRE_HELD)
		au->held++;
	if (e->action != QL_EXPIRE_DELETE)
		return 0;
	ql_time_format(d, sizeof(d), e->due_at);
	snprintf(msg, sizeof(msg), "past due since %s, not held (%" PRIu64
		 " records)", d, e->records);
	finding(au, "violation", "retention", e->name, msg);
	return 0;
}

static int audit_enforced(const ql_expiry *e, void *ctx)
{
	struct audit *au = ctx;
	char msg[160];

	if (e->action == QL_EXPIRE_HELD)
		au->held++;
	if (e->action != QL_EXPIRE_DELETE)
		return 0;
	snprintf(msg, sizeof(msg), "deleted (past due, not held, %" PRIu64
		 " records)", e->records);
	finding(au, "enforced", "retention", e->name, msg);
	return 0;
}

static int audit_hold(const ql_hold *h, void *ctx)
{
	struct audit *au = ctx;
	char e[40], msg[200];

	ql_time_format(e, sizeof(e), h->expires);
	if (h->state == QL_HOLD_ACTIVE && h->expires - au->now <= au->warn) {
		snprintf(msg, sizeof(msg), "expires %s: extend it or let it "
			 "lapse", e);
		finding(au, "warning", "hold-expiring", h->order_id, msg);
	} else if (h->state == QL_HOLD_LAPSED &&
		   au->now - h->expires <= au->warn) {
		snprintf(msg, sizeof(msg), "lapsed at %s without extension",
			 e);
		finding(au, "warning", "hold-lapsed", h->order_id, msg);
	}
	return 0;
}

static int audit_segment(const ql_segment_info *i, void *ctx)
{
	struct audit *au = ctx;
	char msg[200];

	au->segments++;
	if (au->nnames == au->capnames) {
		size_t cap = au->capnames ? 2 * au->capnames : 64;
		char **n = realloc(au->names, cap * sizeof(*n));

		if (!n)
			return QL_ENOMEM;
		au->names = n;
		au->capnames = cap;
	}
	au->names[au->nnames++] = strdup(i->name);
	if (i->status) {
		snprintf(msg, sizeof(msg), "%s at offset %" PRIu64,
			 ql_strerror(i->status), i->bad_offset);
		finding(au, "violation", "integrity", i->name, msg);
	} else if (i->sealed && !i->indexed) {
		finding(au, "warning", "index-lag", i->name,
			"sealed but not fully indexed: run logtool reindex");
	}
	return 0;
}

static void audit_orphans(struct audit *au, const char *dir)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/seg", dir);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char name[300];
		size_t k;

		if (de->d_name[0] == '.')
			continue;
		k = strlen(de->d_name);
		if (k > 8 && !strcmp(de->d_name + k - 8, ".qlc.tmp"))
			continue; /* a compaction in progress (its writer) */
		snprintf(name, sizeof(name), "seg/%s", de->d_name);
		for (k = 0; k < au->nnames; k++)
			if (au->names[k] && !strcmp(au->names[k], name))
				break;
		if (k == au->nnames)
			finding(au, "warning", "orphan-file", name,
				"in seg/ but not a segment of this store");
	}
	closedir(d);
}

static int write_report(const char *file, json_t *report)
{
	char tmp[4096];
	FILE *f;
	int ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	ok = json_dumpf(report, f, JSON_INDENT(2)) == 0 && fputc('\n', f) >= 0;
	ok = fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	/* atomic for monitoring: a reader sees the old or the new report */
	if (!ok || rename(tmp, file)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int run_audit(struct args *a)
{
	struct audit au = { 0 };
	json_t *report;
	char lockpath[4096];
	int lockfd, rc, status;

	au.now = a->now;
	au.warn = 7 * 86400 * USEC_PER_SEC;
	if (a->opt[OPT_WARN] &&
	    (rc = parse_duration_opt(a, OPT_WARN, &au.warn)) != LT_RUN)
		return rc;
	snprintf(lockpath, sizeof(lockpath), "%s/AUDIT.lock", a->pos[0]);
	lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0600);
	if (lockfd < 0) {
		fprintf(stderr, "logtool: %s: %s\n", lockpath,
			strerror(errno));
		return errno == ENOENT ? LT_ERROR : LT_ERROR;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB)) {
		fprintf(stderr, "logtool: another audit of %s is running "
			"(%s is locked)\n", a->pos[0], lockpath);
		close(lockfd);
		return LT_BUSY;
	}
	rc = open_store(&au.store, a, QL_OPEN_READONLY);
	if (rc != LT_OK) {
		close(lockfd);
		return rc;
	}
	au.findings = json_array();
	rc = ql_expire(au.store, 1, "audit", audit_expiry, &au);
	if (rc == QL_OK && a->opt[OPT_ENFORCE] && au.violations) {
		/* what is enforced is reported, and is no longer a
		 * violation */
		json_array_clear(au.findings);
		au.violations = au.warnings = au.held = 0;
		rc = ql_expire(au.store, 0, "audit --enforce", audit_enforced,
			       &au);
		au.warnings = 0; /* "enforced" lines are not warnings */
	}
	if (rc == QL_OK)
		rc = ql_hold_list(au.store, audit_hold, &au);
	if (rc == QL_OK) {
		rc = ql_segments(au.store, 1, audit_segment, &au);
		if (rc == QL_ECORRUPT)
			rc = QL_OK; /* reported per segment */
	}
	if (rc == QL_OK)
		audit_orphans(&au, a->pos[0]);
	if (rc != QL_OK) {
		status = lib_error(rc);
		goto out;
	}
	status = au.violations ? LT_NONE : LT_OK;
	report = json_pack("{s:s,s:I,s:I,s:I,s:I,s:b,s:O}", "store",
			   a->pos[0], "segments", (json_int_t)au.segments,
			   "held_segments", (json_int_t)au.held,
			   "violations", (json_int_t)au.violations,
			   "warnings", (json_int_t)au.warnings, "ok",
			   !au.violations, "findings", au.findings);
	if (a->opt[OPT_REPORT] && write_report(a->opt[OPT_REPORT], report)) {
		fprintf(stderr, "logtool: cannot write report %s: %s\n",
			a->opt[OPT_REPORT], strerror(errno));
		status = LT_ERROR;
	}
	if (a->opt[OPT_OUTPUT] && !strcmp(a->opt[OPT_OUTPUT], "json")) {
		json_dumpf(report, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		size_t i;
		json_t *f;

		json_array_foreach(au.findings, i, f) printf(
			"%-9s %-14s %s: %s\n",
			json_string_value(json_object_get(f, "level")),
			json_string_value(json_object_get(f, "check")),
			json_string_value(json_object_get(f, "subject")),
			json_string_value(json_object_get(f, "detail")));
	}
	json_decref(report);
out:
	for (size_t i = 0; i < au.nnames; i++)
		free(au.names[i]);
	free(au.names);
	json_decref(au.findings);
	ql_close(au.store);
	close(lockfd);
	return finish_stdout(status);
}

/* ---------------------------------------------------------------------- */
/* stat                                                                   */
/* ---------------------------------------------------------------------- */

static json_t *json_u64(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *json_time(int64_t ts)
{
	char t[40];

	ql_time_format(t, sizeof(t), ts);
	return json_string(t);
}

static json_t *json_duration(int64_t us)
{
	char d[32];

	format_duration(d, sizeof(d), us);
	return json_string(d);
}

static json_t *json_ratio(uint64_t num, uint64_t den)
{
	return den ? json_real((double)num / (double)den) : json_null();
}

static int stat_segment_json(const ql_segment_info *s, void *ctx)
{
	json_t *seg = json_object();
	int have = s->records > 0;

	json_object_set_new(seg, "name", json_stringn(s->name,
				strnlen(s->name, sizeof(s->name))));
	json_object_set_new(seg, "bucket_start", json_integer(s->bucket_start));
	json_object_set_new(seg, "bucket_end", json_integer(s->bucket_end));
	json_object_set_new(seg, "generation", json_integer(s->generation));
	json_object_set_new(seg, "sealed", json_boolean(s->sealed));
	json_object_set_new(seg, "blocks", json_u64(s->blocks));
	json_object_set_new(seg, "records", json_u64(s->records));
	json_object_set_new(seg, "raw_bytes", json_u64(s->raw_bytes));
	json_object_set_new(seg, "disk_bytes", json_u64(s->disk_bytes));
	json_object_set_new(seg, "min_ts", have ? json_integer(s->min_ts)
						: json_null());
	json_object_set_new(seg, "max_ts", have ? json_integer(s->max_ts)
						: json_null());
	return json_array_append_new(ctx, seg) == 0 ? 0 : QL_ENOMEM;
}

static int stat_json(ql_store *store, const ql_stats *st)
{
	json_t *o = json_object(), *segs = json_array();
	int have = st->records > 0, rc;

	json_object_set_new(o, "segments", json_u64(st->segments));
	json_object_set_new(o, "sealed_segments",
			    json_u64(st->sealed_segments));
	json_object_set_new(o, "records", json_u64(st->records));
	json_object_set_new(o, "blocks", json_u64(st->blocks));
	json_object_set_new(o, "raw_bytes", json_u64(st->raw_bytes));
	json_object_set_new(o, "disk_bytes", json_u64(st->disk_bytes));
	json_object_set_new(o, "bytes_per_record",
			    json_ratio(st->disk_bytes, st->records));
	json_object_set_new(o, "compression_ratio",
			    json_ratio(st->raw_bytes, st->disk_bytes));
	json_object_set_new(o, "min_ts", have ? json_integer(st->min_ts)
					      : json_null());
	json_object_set_new(o, "max_ts", have ? json_integer(st->max_ts)
					      : json_null());
	json_object_set_new(o, "first", have ? json_time(st->min_ts)
					     : json_null());
	json_object_set_new(o, "last", have ? json_time(st->max_ts)
					    : json_null());
	json_object_set_new(o, "bucket_width",
			    json_duration(st->bucket_width_us));
	json_object_set_new(o, "bucket_width_us",
			    json_integer(st->bucket_width_us));
	json_object_set_new(o, "retention", json_duration(st->retention_us));
	json_object_set_new(o, "retention_us", json_integer(st->retention_us));
	json_object_set_new(o, "recovered_segments",
			    json_u64(st->recovered_segments));
	json_object_set_new(o, "recovered_bytes",
			    json_u64(st->recovered_bytes));
	rc = ql_segments(store, 0, stat_segment_json, segs);
	json_object_set_new(o, "segment_list", segs);
	if (rc == QL_OK) {
		json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER |
			   JSON_REAL_PRECISION(6));
		putchar('\n');
	}
	json_decref(o);
	return rc == QL_OK ? LT_OK : lib_error(rc);
}

static int stat_segment_text(const ql_segment_info *s, void *ctx)
{
	char start[40];

	(void)ctx;
	ql_time_format(start, sizeof(start), s->bucket_start);
	printf("  %-32.*s %-20s %-6s %3" PRIu32 " %10" PRIu64 " %7" PRIu64
	       " %12" PRIu64 "\n", (int)sizeof(s->name), s->name, start,
	       s->sealed ? "sealed" : "open", s->generation, s->records,
	       s->blocks, s->disk_bytes);
	return 0;
}

static void print_ratio(const char *label, uint64_t num, uint64_t den)
{
	if (den)
		printf("%-19s%.2f\n", label, (double)num / (double)den);
	else
		printf("%-19s-\n", label);
}

static int stat_text(ql_store *store, const ql_stats *st)
{
	char a[40], b[40];
	int rc;

	printf("%-19s%" PRIu64 " (%" PRIu64 " sealed)\n", "segments:",
	       st->segments, st->sealed_segments);
	printf("%-19s%" PRIu64 "\n", "records:", st->records);
	printf("%-19s%" PRIu64 "\n", "blocks:", st->blocks);
	printf("%-19s%" PRIu64 "\n", "raw bytes:", st->raw_bytes);
	printf("%-19s%" PRIu64 "\n", "disk bytes:", st->disk_bytes);
	print_ratio("bytes per record:", st->disk_bytes, st->records);
	print_ratio("compression ratio:", st->raw_bytes, st->disk_bytes);
	if (st->records) {
		ql_time_format(a, sizeof(a), st->min_ts);
		ql_time_format(b, sizeof(b), st->max_ts);
		printf("%-19s%s .. %s\n", "time span:", a, b);
	} else {
		printf("%-19s-\n", "time span:");
	}
	format_duration(a, sizeof(a), st->bucket_width_us);
	printf("%-19s%s\n", "bucket width:", a);
	format_duration(a, sizeof(a), st->retention_us);
	printf("%-19s%s\n", "retention:", a);
	if (st->recovered_segments || st->recovered_bytes)
		printf("%-19s%" PRIu64 " bytes cut from %" PRIu64
		       " segments (torn tails)\n", "recovered:",
		       st->recovered_bytes, st->recovered_segments);
	if (!st->segments)
		return LT_OK;
	printf("\n  %-32s %-20s %-6s %3s %10s %7s %12s\n", "segment",
	       "bucket", "state", "gen", "records", "blocks", "disk bytes");
	rc = ql_segments(store, 0, stat_segment_text, NULL);
	return rc == QL_OK ? LT_OK : lib_error(rc);
}

static int run_stat(struct args *a)
{
	ql_store *store;
	ql_stats st;
	int rc;

	rc = open_store(&store, a, QL_OPEN_READONLY);
	if (rc != LT_OK)
		return rc;
	memset(&st, 0, sizeof(st));
	rc = ql_stat(store, &st);
	if (rc != QL_OK)
		rc = lib_error(rc);
	else if (a->opt[OPT_OUTPUT] && strcmp(a->opt[OPT_OUTPUT], "json") == 0)
		rc = stat_json(store, &st);
	else
		rc = stat_text(store, &st);
	ql_close(store);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* verify                                                                 */
/* ---------------------------------------------------------------------- */

struct verify_ctx {
	uint64_t segments, blocks, records, damaged;
	json_t *list;		/* -o json: the damaged segments */
};

static int verify_segment(const ql_segment_info *s, void *ctx)
{
	struct verify_ctx *v = ctx;
	int len = (int)strnlen(s->name, sizeof(s->name));

	v->segments++;
	v->blocks += s->blocks;
	v->records += s->records;
	if (s->status == QL_OK)
		return 0;
	v->damaged++;
	if (!v->list) {
		printf("%.*s: %s at offset %" PRIu64 "\n", len, s->name,
		       ql_strerror(s->status), s->bad_offset);
		return 0;
	}
	return json_array_append_new(v->list,
		json_pack("{s:s%,s:i,s:s,s:I}", "name", s->name, (size_t)len,
			  "status", s->status, "error",
			  ql_strerror(s->status), "bad_offset",
			  (json_int_t)s->bad_offset)) == 0 ? 0 : QL_ENOMEM;
}

static void verify_report(const struct verify_ctx *v)
{
	json_t *o;

	if (!v->list) {
		printf("verified %" PRIu64 " segments, %" PRIu64 " blocks, %"
		       PRIu64 " records: ", v->segments, v->blocks,
		       v->records);
		if (v->damaged)
			printf("%" PRIu64 " damaged\n", v->damaged);
		else
			printf("OK\n");
		return;
	}
	o = json_pack("{s:I,s:I,s:I,s:I,s:b,s:O}",
		      "segments", (json_int_t)v->segments,
		      "blocks", (json_int_t)v->blocks,
		      "records", (json_int_t)v->records,
		      "damaged", (json_int_t)v->damaged,
		      "ok", v->damaged == 0,
		      "damaged_segments", v->list);
	json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER |
			   JSON_REAL_PRECISION(6));
	putchar('\n');
	json_decref(o);
}

static int run_verify(struct args *a)
{
	struct verify_ctx v = { 0, 0, 0, 0, NULL };
	ql_store *store;
	int rc;

	if (a->opt[OPT_OUTPUT] && strcmp(a->opt[OPT_OUTPUT], "json") == 0) {
		v.list = json_array();
		if (!v.list) {
			fprintf(stderr, "logtool: out of memory\n");
			return LT_ERROR;
		}
	}
	rc = open_store(&store, a, QL_OPEN_READONLY);
	if (rc != LT_OK)
		goto free_list;
	rc = ql_segments(store, 1, verify_segment, &v);
	if (rc == QL_OK || (rc == QL_ECORRUPT && v.damaged)) {
		verify_report(&v);
		rc = v.damaged ? LT_NONE : LT_OK;
	} else {
		rc = lib_error(rc);
	}
	ql_close(store);
free_list:
	json_decref(v.list);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* main                                                                   */
/* ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static char outbuf[256 * 1024];
	const struct command *cmd;
	struct args a;
	int rc;

	/* A closed pipe shows as EPIPE on write, handled quietly. */
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, outbuf, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF,
		sizeof(outbuf));

	if (argc < 2) {
		print_synopsis(stderr);
		fputs("try 'logtool --help'\n", stderr);
		return LT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		print_global_help(stdout);
		return finish_stdout(LT_OK);
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("logtool (querylog) %s\n", ql_version());
		return finish_stdout(LT_OK);
	}
	cmd = find_command(argv[1]);
	if (!cmd)
		return usage_error(NULL, "unknown %s '%s'",
				   argv[1][0] == '-' ? "option" : "command",
				   argv[1]);
	rc = parse_args(&a, cmd, argc - 2, argv + 2);
	if (rc == LT_RUN)
		rc = cmd->run(&a);
	return finish_stdout(rc);
}
