/*
 * outreach — a run-once mail campaign scheduler with an on-disk spool.
 *
 * Cron (or a systemd timer) runs `outreach run` once a minute.  Producers drop
 * one JSON job file per email into SPOOL/new/.  Each run ingests new arrivals
 * into the ledger (SQLite), claims a bounded slice of due jobs for the send
 * slots its senders have before the run's deadline, sends them, records the
 * outcome and moves each file to its final folder, then writes its reports.
 *
 * The spool state machine (one file per job, every move a rename(2)):
 *
 *     tmp/ --> new/ --ingest--> defer/ --claim--> cur/ --> done/   sent, suppressed, duplicate
 *                   \                  ^           |  \--> failed/ permanent failure (.err)
 *                    \--> bad/ (.err)  \--retry----/   \-> held/   in doubt
 *
 * The ledger (table jobs) is the truth; folders follow it.  Every decision
 * after ingest is an SQL query over the ledger, never a directory scan.
 *
 * Crash model.  A job's state changes in a transaction first and its file is
 * renamed after, so a crash leaves at worst a file in the folder of its
 * previous state; the next run, finding the dead run's lock free, moves each of
 * its files to where the ledger says.  The only email that can go out twice is
 * one whose intent was durable and whose outcome was not: that job is put in
 * held/ (or resent when in_doubt = "resend"), and only transfers that were in
 * flight can be in that state.  Nothing is deleted before its outcome is
 * durable in the ledger.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <idn2.h>
#include <libconfig.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sys/socket.h>
#include <sodium.h>
#include <sqlite3.h>
#if OR_PG                     /* make PG=1 (outreach.h defines it 0 otherwise) */
#include <libpq-fe.h>
#endif

#include "outreach.h"

/* ================================================================
 * LIMITS AND GLOBALS
 *
 * Process-wide state is limited to what a one-shot process naturally has: the
 * verbosity, the virtual clock, the random stream, the fault seam and the
 * SIGTERM flag.  Everything else travels in struct or_config / struct or_run.
 * ================================================================ */

static int or_verbosity = 1;            /* 0 -q, 1 default, 2 -v */
static volatile sig_atomic_t or_stop;   /* SIGTERM/SIGINT: start no new transfer */

/* Fault seam (doc/design.md §9): die as by SIGKILL the N-th time a point is reached. */
static const char *or_fault_point;
static long or_fault_n = 1, or_fault_seen;

static void or_fault(const char *point)
{
	if (or_fault_point && strcmp(or_fault_point, point) == 0 && ++or_fault_seen == or_fault_n)
		kill(getpid(), SIGKILL);
}

/* A durable step (rename, fsync, commit), counted for OUTREACH_FAULT=step:N. */
#define OR_STEP() or_fault("step")

static void or_fault_init(void)
{
	const char *f = getenv("OUTREACH_FAULT");
	static char point[64];
	char *colon;

	if (!f || !*f)
		return;
	snprintf(point, sizeof point, "%s", f);
	if ((colon = strchr(point, ':'))) {
		*colon = 0;
		or_fault_n = strtol(colon + 1, NULL, 10);
		if (or_fault_n < 1)
			or_fault_n = 1;
	}
	or_fault_point = point;
}

/* ================================================================
 * UTILITIES: buffers, strings, UTF-8
 *
 * struct or_buf is always NUL-terminated when non-empty; allocation failure
 * is fatal (a one-shot process has nothing sensible left to do, and every
 * state change already made is durable).
 * ================================================================ */

/* Out of memory is temporary wherever it strikes (ours, SQLite's, libcurl's):
 * the process stops at once with 75, judging nothing.  What it leaves is what
 * a crash at that point leaves (every state change made is durable or rolled
 * back), and the next run recovers it: a job stays where it was. */
static void or_oom(void)
{
	fputs("outreach: out of memory (temporary: nothing was judged; the next run resumes)\n", stderr);
	exit(OR_EX_TEMPFAIL);
}

static void *or_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		or_oom();
	return q;
}

static void *or_curl_malloc(size_t n) { void *p = malloc(n); if (!p && n) or_oom(); return p; }
static void *or_curl_realloc(void *p, size_t n) { void *q = realloc(p, n); if (!q && n) or_oom(); return q; }
static void *or_curl_calloc(size_t k, size_t n) { void *p = calloc(k, n); if (!p && k && n) or_oom(); return p; }
static char *or_curl_strdup(const char *s) { char *p = strdup(s); if (!p) or_oom(); return p; }

/* Before any SQLite call: its allocations fail into or_oom. */
static void or_alloc_init(void) { or_sqlite_alloc_init(); }

/* Before a process's first libcurl handle (or_http_new, or_imap_open, the
 * send loop's multi handle), not at start: libcurl's global init is
 * OpenSSL's, which reads openssl.cnf and loads its providers (2.3 M
 * instructions, a third of an idle tick's own work), and a tick with
 * nothing to send or pull never needs it.  Its allocations fail into
 * or_oom, like ours.  Single-threaded, so the flag needs no lock. */
static void or_curl_init(void)
{
	static int done;

	if (done)
		return;
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, or_curl_malloc, free, or_curl_realloc, or_curl_strdup,
	                         or_curl_calloc) != CURLE_OK)
		or_oom();   /* its only failure that is not a bug */
	done = 1;
}

static char *or_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(or_xrealloc(NULL, n), s, n);
}

static void or_buf_reserve(struct or_buf *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->s = or_xrealloc(b->s, cap);
		b->cap = cap;
	}
}

OR_STATIC void or_buf_add(struct or_buf *b, const void *p, size_t n)
{
	or_buf_reserve(b, n);
	if (n)
		memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = 0;
}

OR_STATIC void or_buf_puts(struct or_buf *b, const char *s) { or_buf_add(b, s, strlen(s)); }

OR_STATIC void or_buf_printf(struct or_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	or_buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

OR_STATIC void or_buf_free(struct or_buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

/* Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
OR_STATIC int or_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + n;

	while (p < e) {
		unsigned c = *p;
		size_t k;
		unsigned cp;

		if (c < 0x80) { p++; continue; }
		if (c >= 0xc2 && c <= 0xdf) { k = 1; cp = c & 0x1f; }
		else if (c >= 0xe0 && c <= 0xef) { k = 2; cp = c & 0x0f; }
		else if (c >= 0xf0 && c <= 0xf4) { k = 3; cp = c & 0x07; }
		else return 0;
		if ((size_t)(e - p) <= k)
			return 0;
		for (size_t i = 1; i <= k; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += k + 1;
	}
	return 1;
}

/* 1 if s holds CR, LF, or another C0 control (TAB is allowed) or DEL. */
OR_STATIC int or_has_ctl(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 1;
	}
	return 0;
}

/* Errors that say the machine, not the file, is short of something (file
 * descriptors, memory): the file is left where it is and tried again later,
 * never judged bad for it. */
static int or_errno_transient(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS || e == EAGAIN;
}

/* The exit code of a file the run cannot do without (config, spool, key,
 * lock, database) failing with errno e: 75 when the machine is short of
 * something (the next tick tries again), else 74. */
static int or_ex_io(int e)
{
	return or_errno_transient(e) ? OR_EX_TEMPFAIL : OR_EX_IOERR;
}

/* The same choice for an input file the user named (a CSV to enqueue, a
 * list to import): 75 when the machine is short of something, else 65. */
static int or_ex_input(int e)
{
	return or_errno_transient(e) ? OR_EX_TEMPFAIL : OR_EX_DATAERR;
}

OR_STATIC void or_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* Appends s as a JSON string literal: the runs that need no escape copied
 * whole (a message body is mostly one), newline, CR and tab as their short
 * escapes, other control characters as \u00XX. */
OR_STATIC void or_json_str(struct or_buf *b, const char *s)
{
	or_buf_add(b, "\"", 1);
	while (*s) {
		size_t run = strcspn(s, "\"\\\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
		                        "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f");
		unsigned char c;

		or_buf_add(b, s, run);
		s += run;
		if (!(c = (unsigned char)*s))
			break;
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			or_buf_add(b, e, 2);
		} else if (c == '\n' || c == '\r' || c == '\t') {
			or_buf_add(b, c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t", 2);
		} else {
			or_buf_printf(b, "\\u%04x", c);
		}
		s++;
	}
	or_buf_add(b, "\"", 1);
}

static int or_streq_ci(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

static int or_ascii_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}


/* ================================================================
 * TIME: the virtual clock and calendar days in a zone
 *
 * With OUTREACH_NOW set, now = OUTREACH_NOW + monotonic time since start +
 * every wait skipped (doc/design.md §9).  Calendar arithmetic runs through the C
 * library's zone database by switching TZ; the current zone is cached so the
 * common case (one zone for the whole run) switches once.
 * ================================================================ */

static double or_clock_base = -1, or_clock_skipped, or_mono_start;

static double or_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

OR_STATIC void or_clock_init(void)
{
	const char *v = getenv("OUTREACH_NOW");
	time_t t;

	or_mono_start = or_mono();
	or_clock_skipped = 0;
	or_clock_base = -1;
	if (v && *v && or_parse_time(v, &t) == 0)
		or_clock_base = (double)t;
}

/* The run's clock: the wall clock read once at start, then advanced by the
 * monotonic clock, so a wall clock stepped back or forward during a run (NTP,
 * an operator) cannot stretch its deadline or disorder its slots; the next
 * run starts from the new wall time. */
OR_STATIC double or_now(void)
{
	static double wall_base = -1;
	struct timespec ts;

	if (or_clock_base >= 0)
		return or_clock_base + (or_mono() - or_mono_start) + or_clock_skipped;
	if (wall_base < 0 || or_mono_start == 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		if (or_mono_start == 0)   /* before or_clock_init (tests): plain wall time */
			return (double)ts.tv_sec + ts.tv_nsec / 1e9;
		wall_base = (double)ts.tv_sec + ts.tv_nsec / 1e9 - (or_mono() - or_mono_start);
	}
	return wall_base + (or_mono() - or_mono_start);
}

/* Waits until virtual time t: skipped under OUTREACH_NOW, else slept (a
 * SIGTERM cuts the sleep short; callers re-check or_stop). */
OR_STATIC void or_sleep_until(double t)
{
	double d = t - or_now();

	if (d <= 0)
		return;
	if (or_clock_base >= 0) {
		or_clock_skipped += d;
		return;
	}
	struct timespec ts = { (time_t)d, (long)((d - floor(d)) * 1e9) };
	while (!or_stop && nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

OR_STATIC int or_days_from_civil(int y, int m, int d)
{
	/* Howard Hinnant's days_from_civil: exact for the proleptic Gregorian calendar. */
	y -= m <= 2;
	int era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int)doe - 719468;
}

static void or_civil_from_days(int z, int *y, int *m, int *d)
{
	z += 719468;
	int era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int yy = (int)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yy + (*m <= 2);
}

static char or_tz_current[128] = "\1";

static void or_tz_use(const char *tz)
{
	if (!tz || !*tz)
		tz = "UTC";
	if (strcmp(tz, or_tz_current) == 0)
		return;
	setenv("TZ", tz, 1);
	tzset();
	snprintf(or_tz_current, sizeof or_tz_current, "%s", tz);
}

/* A zone is valid when the zone database has a regular file for it. */
OR_STATIC int or_tz_valid(const char *tz)
{
	char path[512];
	struct stat st;

	if (!tz || !*tz || strcmp(tz, "UTC") == 0)
		return 1;
	if (tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 100)
		return 0;
	snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void or_localtime(time_t t, const char *tz, struct tm *tm)
{
	or_tz_use(tz);
	localtime_r(&t, tm);
}

OR_STATIC int or_day_number(time_t t, const char *tz)
{
	struct tm tm;
	or_localtime(t, tz, &tm);
	return or_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* Local time y-m-d h:m:00 in tz; where a DST gap skips it, the first valid
 * moment after it (mktime normalises forward). */
static time_t or_local_mktime(int day, int minute, const char *tz)
{
	struct tm tm = { 0 };
	int y, m, d;

	or_civil_from_days(day, &y, &m, &d);
	or_tz_use(tz);
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_hour = minute / 60;
	tm.tm_min = minute % 60;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

OR_STATIC time_t or_day_start(int day, const char *tz) { return or_local_mktime(day, 0, tz); }

/* The day number of a date YYYY-MM-DD (a real one: no 2026-02-30), -1. */
OR_STATIC int or_day_of_iso(const char *s)
{
	int y, m, d, day, y2, m2, d2;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || or_digits(s, 4, &y) || or_digits(s + 5, 2, &m) ||
	    or_digits(s + 8, 2, &d) || m < 1 || m > 12 || d < 1 || d > 31 || y < 1970)
		return -1;
	day = or_days_from_civil(y, m, d);
	or_civil_from_days(day, &y2, &m2, &d2);
	return y2 == y && m2 == m && d2 == d ? day : -1;
}

OR_STATIC void or_fmt_rfc3339(time_t t, char *out, size_t n)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

OR_STATIC void or_fmt_rfc5322(time_t t, char *out, size_t n)
{
	static const char *dn[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *mn[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);   /* locale-independent on purpose: no strftime %a/%b */
	snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d +0000", dn[tm.tm_wday], tm.tm_mday,
	         mn[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int or_digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* RFC 3339 date-time ("2026-11-28T09:00:00+03:00", "...Z", fraction allowed),
 * or integer epoch seconds.  0 on success. */
OR_STATIC int or_parse_time(const char *s, time_t *out)
{
	int Y, M, D, h, m, sec, oh = 0, om = 0, sign = 0;
	const char *p;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (!s || !*s)
		return -1;
	if (strspn(s, "0123456789") == strlen(s)) {
		if (strlen(s) > 12)
			return -1;
		*out = (time_t)strtoll(s, NULL, 10);
		return 0;
	}
	if (strlen(s) < 20 || or_digits(s, 4, &Y) || s[4] != '-' || or_digits(s + 5, 2, &M) ||
	    s[7] != '-' || or_digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    or_digits(s + 11, 2, &h) || s[13] != ':' || or_digits(s + 14, 2, &m) || s[16] != ':' ||
	    or_digits(s + 17, 2, &sec))
		return -1;
	if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || m > 59 || sec > 60)
		return -1;
	if (M == 2 && D == 29 && !((Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0))
		return -1;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (or_digits(p + 1, 2, &oh) || p[3] != ':' || or_digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	if (sec == 60)
		sec = 59;
	*out = (time_t)or_days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec -
	       sign * (oh * 3600 + om * 60);
	return 0;
}

/* ================================================================
 * RANDOMNESS
 *
 * Jitter, backoff spread and rotation ties come from one stream: libsodium's
 * generator, or under OUTREACH_SEED a splitmix64 stream so a test can repeat a
 * run.  Run ids and tokens always come from libsodium.
 * ================================================================ */

static uint64_t or_seed_state;
static int or_seeded;

OR_STATIC void or_random_init(void)
{
	const char *s = getenv("OUTREACH_SEED");

	or_seeded = s && *s;
	if (or_seeded)
		or_seed_state = strtoull(s, NULL, 10) ^ 0x9e3779b97f4a7c15ULL;
}

OR_STATIC double or_random_unit(void)
{
	uint64_t z;

	if (!or_seeded) {
		randombytes_buf(&z, sizeof z);
	} else {
		z = (or_seed_state += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
	}
	return (double)(z >> 11) / 9007199254740992.0;
}

OR_STATIC void or_random_hex(char *out, size_t nbytes)
{
	unsigned char b[64];

	if (nbytes > sizeof b)
		nbytes = sizeof b;
	randombytes_buf(b, nbytes);
	sodium_bin2hex(out, nbytes * 2 + 1, b, nbytes);
}

/* ================================================================
 * LOGGING
 *
 * One line per event on stderr, key=value.  Untrusted values pass through
 * or_safe() first.  Secrets and message bodies are never handed to or_log.
 * Level 0 is an error (always printed), 1 a problem worth a cron mail, 2
 * verbose.
 * ================================================================ */

OR_STATIC void or_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > or_verbosity || (or_verbosity == 0 && level > 0))
		return;
	fputs("outreach: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Copies s into out with control bytes, quotes and backslashes escaped and
 * the result truncated to fit: safe to put in a log line.  A UTF-8
 * character is copied whole or not at all, so a cut never leaves half of
 * one (grep would call the output binary).  Returns out. */
OR_STATIC const char *or_safe(const char *s, char *out, size_t n)
{
	size_t j = 0;

	if (!s)
		s = "";
	while (*s && j + 5 < n) {
		unsigned char c = (unsigned char)*s;
		size_t len = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4, k = 1;
		while (k < len && ((unsigned char)s[k] & 0xc0) == 0x80)
			k++;
		len = k;   /* a lead byte without its continuation bytes goes alone */
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
			j += (size_t)snprintf(out + j, n - j, "\\x%02x", c);
		} else if (j + len + 4 < n) {
			memcpy(out + j, s, len);
			j += len;
		} else {
			break;
		}
		s += len;
	}
	out[j < n ? j : n - 1] = 0;
	return out;
}

/* ================================================================
 * CONFIG
 *
 * Read once with libconfig into struct or_config.  Every key is a row of
 * or_cfg_keys below (its path, type, default, bounds and where it lands), which
 * `check-config --keys` prints and README lists; an unknown key, a value out
 * of range or of the wrong type fails with file:line.  Relative paths are resolved against the
 * config file's folder, so a config works the same from cron and from a shell.
 * Secrets are never inline (doc/design.md §6): only *_file or *_env keys.
 * ================================================================ */

struct or_cfgerr { char *err; size_t len; const char *file; };

static int or_cfg_fail(struct or_cfgerr *e, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int or_cfg_fail(struct or_cfgerr *e, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(e->err, e->len, "%s:%d: ", e->file, s ? (int)config_setting_source_line(s) : 0);

	if (n < 0 || (size_t)n >= e->len)
		return -1;
	va_start(ap, fmt);
	vsnprintf(e->err + n, e->len - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int or_cfg_str(struct or_cfgerr *e, const config_setting_t *g, const char *key,
                      char *out, size_t n, int required)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const char *v;

	if (!s) {
		if (required)
			return or_cfg_fail(e, g, "'%s' is required", key);
		return 0;
	}
	if (!(v = config_setting_get_string(s)) && config_setting_type(s) == CONFIG_TYPE_STRING)
		or_oom();   /* a string setting without its text: libconfig's copy failed */
	if (!v)
		return or_cfg_fail(e, s, "'%s' must be a string", key);
	if (strlen(v) >= n || or_has_ctl(v))
		return or_cfg_fail(e, s, "'%s' is too long or holds control characters", key);
	snprintf(out, n, "%s", v);
	return 0;
}

static int or_cfg_num(struct or_cfgerr *e, const config_setting_t *g, const char *key,
                      double *out, double min, double max)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	double v;

	if (!s)
		return 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT: v = config_setting_get_int(s); break;
	case CONFIG_TYPE_INT64: v = (double)config_setting_get_int64(s); break;
	case CONFIG_TYPE_FLOAT: v = config_setting_get_float(s); break;
	default: return or_cfg_fail(e, s, "'%s' must be a number", key);
	}
	if (!(v >= min && v <= max))
		return or_cfg_fail(e, s, "'%s' = %g is out of range [%g, %g]", key, v, min, max);
	*out = v;
	return 0;
}

static int or_cfg_int(struct or_cfgerr *e, const config_setting_t *g, const char *key,
                      int *out, int min, int max)
{
	double v = *out;

	if (or_cfg_num(e, g, key, &v, min, max))
		return -1;
	if (v != floor(v))
		return or_cfg_fail(e, config_setting_get_member(g, key), "'%s' must be a whole number", key);
	*out = (int)v;
	return 0;
}

static void or_cfg_path(const struct or_config *cfg, char *path, size_t n)
{
	char tmp[8300], dir[4096];
	const char *slash;

	if (!*path || path[0] == '/')
		return;
	char abs[PATH_MAX];

	snprintf(dir, sizeof dir, "%s", cfg->path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else
		dir[slash - dir + (slash == dir)] = 0;
	if (realpath(dir, abs))   /* absolute, so resolving twice changes nothing */
		snprintf(dir, sizeof dir, "%s", abs);
	snprintf(tmp, sizeof tmp, "%s/%s", strcmp(dir, "/") ? dir : "", path);
	if (strlen(tmp) < n)
		memcpy(path, tmp, strlen(tmp) + 1);
}

static int or_cfg_strlist(struct or_cfgerr *e, const config_setting_t *g, const char *key,
                          char ***out)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	int n;

	if (!s)
		return 0;
	if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
		return or_cfg_fail(e, s, "'%s' must be a list of strings", key);
	n = config_setting_length(s);
	*out = or_xrealloc(NULL, sizeof(char *) * (size_t)(n + 1));
	for (int i = 0; i < n; i++) {
		const char *v = config_setting_get_string_elem(s, i);
		if (!v && config_setting_type(config_setting_get_elem(s, (unsigned)i)) == CONFIG_TYPE_STRING)
			or_oom();   /* as in or_cfg_str */
		(*out)[i] = NULL;
		if (!v || or_has_ctl(v))
			return or_cfg_fail(e, s, "'%s' must be a list of strings", key);
		(*out)[i] = or_xstrdup(v);
	}
	(*out)[n] = NULL;
	return 0;
}

/* ---- the keys: one row each, in the order they are read ----
 *
 * The table is the config's contract with the operator: the unknown-key
 * check, the defaults, the bounds and `check-config --keys` (README's key
 * list, kept equal by tests/e2e/docs.sh) all read it.  A row's group is the
 * prefix of its path: "" the top level, "run." a group of it, "providers[]."
 * an entry of a list, "senders[].warmup." a group inside one.  or_cfg_rows
 * reads a row into the group's struct (struct or_config for the top level
 * and its groups; or_provider, or_sender, or_warmup, or_client, or_rgroup
 * for a list's entries) at off; a row marked OR_CFG_CODE (a name, a choice,
 * a secret, a group, a key only some provider types take) is read by its
 * own code, since what it means depends on more than its value. */
enum or_cfg_type { OR_CT_STR, OR_CT_PATH, OR_CT_INT, OR_CT_NUM, OR_CT_LONG, OR_CT_BOOL, OR_CT_STRS,
                   OR_CT_ONEOF, OR_CT_GROUP, OR_CT_LIST };

#define OR_CFG_REQ   1u   /* must be given */
#define OR_CFG_CODE  2u   /* read by its own code, not by or_cfg_rows */
#define OR_CFG_DCODE 4u   /* its default is worked out by code; dflt says how */

struct or_cfg_key {
	const char *group, *key;
	enum or_cfg_type type;
	unsigned flags;
	double def, min, max;   /* a number's default and bounds; a list's most entries (max) */
	const char *dflt;       /* a string's default, or how code works a default out (shown as is) */
	const char *range;      /* what a value may be, when not [min, max] */
	size_t off, size;       /* where or_cfg_rows stores it in the group's struct */
};

#define OR_AT(type, m) offsetof(struct type, m), sizeof ((struct type *)0)->m
#define OR_C(m) OR_AT(or_config, m)
#define OR_P(m) OR_AT(or_provider, m)
#define OR_S(m) OR_AT(or_sender, m)
#define OR_M(m) OR_AT(or_mailbox, m)
#define OR_NOWHERE 0, 0

static const struct or_cfg_key or_cfg_keys[] = {
	{ "", "spool", OR_CT_PATH, 0, 0, 0, 0, "/var/spool/outreach", NULL, OR_C(spool) },
	{ "", "state", OR_CT_PATH, OR_CFG_DCODE, 0, 0, 0, "SPOOL/state.db", NULL, OR_C(state) },
	{ "", "report_dir", OR_CT_PATH, OR_CFG_DCODE, 0, 0, 0, "SPOOL", NULL, OR_C(report_dir) },
	{ "", "timezone", OR_CT_STR, 0, 0, 0, 0, "UTC", "a tz database zone", OR_C(timezone) },
	{ "", "rotation", OR_CT_ONEOF, OR_CFG_CODE, 0, 0, 0, "round-robin", "round-robin | quota", OR_C(rotation) },
	{ "", "in_doubt", OR_CT_ONEOF, OR_CFG_CODE, 0, 0, 0, "hold", "hold | resend", OR_C(in_doubt_resend) },
	{ "", "retention_days", OR_CT_INT, 0, 30, 1, 3650, NULL, NULL, OR_C(retention_days) },
	{ "", "job_max_bytes", OR_CT_LONG, 0, OR_MAX_JOB_BYTES, 1024, 64 * 1024 * 1024, NULL, NULL, OR_C(job_max_bytes) },
	{ "", "busy_timeout", OR_CT_NUM, 0, 30, 0.1, 3600, NULL, NULL, OR_C(busy_timeout) },
	{ "", "max_provider_wait", OR_CT_NUM, 0, 3600, 1, 7 * 86400, NULL, NULL, OR_C(max_provider_wait) },
	{ "", "run", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, NULL, NULL, OR_NOWHERE },
	{ "run.", "max_jobs", OR_CT_INT, 0, 500, 1, 1000000, NULL, NULL, OR_C(max_jobs) },
	{ "run.", "deadline", OR_CT_NUM, 0, 50, 1, 86400, NULL, NULL, OR_C(deadline) },
	{ "", "retry", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, NULL, NULL, OR_NOWHERE },
	{ "retry.", "first", OR_CT_NUM, 0, 60, 1, 86400, NULL, NULL, OR_C(retry_first) },
	{ "retry.", "max", OR_CT_NUM, 0, 21600, 1, 30 * 86400, NULL, NULL, OR_C(retry_max) },
	{ "retry.", "max_attempts", OR_CT_INT, 0, 8, 1, 1000, NULL, NULL, OR_C(max_attempts) },
	{ "retry.", "max_age", OR_CT_NUM, 0, 259200, 60, 365 * 86400.0, NULL, NULL, OR_C(max_age) },
	{ "", "health", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, NULL, NULL, OR_NOWHERE },
	{ "health.", "window_days", OR_CT_INT, 0, 7, 1, 365, NULL, NULL, OR_C(health_window_days) },
	{ "health.", "min_sent", OR_CT_INT, 0, 50, 1, 1000000, NULL, NULL, OR_C(health_min_sent) },
	{ "health.", "max_bounce_rate", OR_CT_NUM, 0, 0.05, 0, 1, NULL, NULL, OR_C(max_bounce_rate) },
	{ "health.", "max_complaint_rate", OR_CT_NUM, 0, 0.003, 0, 1, NULL, NULL, OR_C(max_complaint_rate) },
	{ "", "alerts", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, NULL, NULL, OR_NOWHERE },
	{ "alerts.", "error_share", OR_CT_NUM, 0, 0.2, 0, 1, NULL, NULL, OR_C(alert_error_share) },
	{ "alerts.", "min_attempts", OR_CT_INT, 0, 20, 1, 1000000, NULL, NULL, OR_C(alert_min_attempts) },
	{ "alerts.", "backlog_age", OR_CT_NUM, 0, 6 * 3600, 60, 365 * 86400.0, NULL, NULL, OR_C(alert_backlog_age) },
	{ "", "unsubscribe", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, NULL, NULL, OR_NOWHERE },
	{ "unsubscribe.", "url", OR_CT_STR, OR_CFG_REQ, 0, 0, 0, NULL, "http(s) URL", OR_C(unsub_url) },
	{ "unsubscribe.", "mailto", OR_CT_STR, 0, 0, 0, 0, NULL, NULL, OR_C(unsub_mailto) },
	{ "unsubscribe.", "scope", OR_CT_ONEOF, OR_CFG_CODE, 0, 0, 0, "client", "client | global", OR_C(unsub_global) },
	{ "", "domain_checks", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, NULL, NULL, OR_NOWHERE },
	{ "domain_checks.", "required", OR_CT_STRS, 0, 0, 0, 0, NULL, "spf, dkim, dmarc, mx, blocklist", OR_C(dc_required) },
	{ "domain_checks.", "blocklists", OR_CT_STRS, 0, 0, 0, 0, NULL, "DNS zones", OR_C(dc_blocklists) },
	{ "", "engagement", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, NULL, NULL, OR_NOWHERE },
	{ "engagement.", "inactive_days", OR_CT_INT, 0, 120, 7, 3650, NULL, "days", OR_C(eng_inactive_days) },
	{ "engagement.", "min_sends", OR_CT_INT, 0, 3, 1, 1000, NULL, NULL, OR_C(eng_min_sends) },
	{ "engagement.", "action", OR_CT_ONEOF, OR_CFG_CODE, 0, 0, 0, "report", "report | suppress", OR_C(eng_suppress) },
	{ "", "dns_server", OR_CT_STR, OR_CFG_DCODE, 0, 0, 0, "resolv.conf", "IP[:PORT]", OR_C(dns_server) },
	{ "", "dns_timeout_ms", OR_CT_INT, 0, 2000, 10, 60000, NULL, NULL, OR_C(dns_timeout_ms) },
	{ "", "alert_command", OR_CT_STRS, 0, 0, 0, 0, NULL, "argv, argv[0] an absolute path", OR_C(alert_command) },
	{ "", "alert_webhook", OR_CT_STR, 0, 0, 0, 0, NULL, "https:// (http:// only on loopback)", OR_C(alert_webhook) },
	{ "", "costs", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, NULL, NULL, OR_NOWHERE },
	{ "costs.", "vps_monthly", OR_CT_NUM, 0, 0, 0, 1e9, NULL, NULL, OR_C(cost_vps_monthly) },
	{ "costs.", "other_monthly", OR_CT_NUM, 0, 0, 0, 1e9, NULL, NULL, OR_C(cost_other_monthly) },
	{ "", "replies", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, NULL, NULL, OR_NOWHERE },
	{ "replies.", "interval", OR_CT_NUM, 0, 120, 10, 86400, NULL, NULL, OR_C(reply_interval) },
	{ "replies.", "max_age", OR_CT_NUM, 0, 1800, 60, 7 * 86400, NULL, NULL, OR_C(reply_max_age) },
	{ "replies.", "max_messages", OR_CT_INT, 0, 500, 1, 100000, NULL, NULL, OR_C(reply_max_messages) },
	{ "replies.", "ooo_pause", OR_CT_INT, 0, 5, 1, 60, NULL, "business days", OR_C(ooo_pause) },
	{ "replies.", "ooo_max", OR_CT_INT, 0, 30, 1, 365, NULL, "days", OR_C(ooo_max) },
	{ "", "providers", OR_CT_LIST, OR_CFG_CODE, 0, 0, OR_MAX_PROVIDERS, NULL, NULL, OR_NOWHERE },
	{ "providers[].", "name", OR_CT_STR, OR_CFG_REQ | OR_CFG_CODE, 0, 0, 0, NULL, "letters, digits, . _ -", OR_P(name) },
	{ "providers[].", "type", OR_CT_ONEOF, OR_CFG_REQ | OR_CFG_CODE, 0, 0, 0, NULL,
	  "file | exec | smtp | ses | sendgrid | mailgun", OR_P(type) },
	{ "providers[].", "rate", OR_CT_NUM, 0, 0, 0, 100000, NULL, NULL, OR_P(rate) },
	{ "providers[].", "concurrency", OR_CT_INT, OR_CFG_DCODE, 0, 1, 256, "1 (file, exec), else 4", NULL, OR_P(concurrency) },
	{ "providers[].", "timeout", OR_CT_NUM, 0, 60, 0.1, 3600, NULL, NULL, OR_P(timeout) },
	{ "providers[].", "circuit_failures", OR_CT_INT, 0, 5, 1, 1000, NULL, NULL, OR_P(circuit_failures) },
	{ "providers[].", "circuit_cooldown", OR_CT_NUM, 0, 300, 1, 86400, NULL, NULL, OR_P(circuit_cooldown) },
	{ "providers[].", "allow_plaintext", OR_CT_BOOL, 0, 0, 0, 0, "false", NULL, OR_P(allow_plaintext) },
	{ "providers[].", "ca_file", OR_CT_PATH, 0, 0, 0, 0, NULL, NULL, OR_P(ca_file) },
	{ "providers[].", "region", OR_CT_STR, OR_CFG_DCODE, 0, 0, 0, "ses: required; mailgun: us", NULL, OR_P(region) },
	{ "providers[].", "configuration_set", OR_CT_STR, 0, 0, 0, 0, NULL, NULL, OR_P(configuration_set) },
	{ "providers[].", "endpoint", OR_CT_STR, OR_CFG_CODE | OR_CFG_DCODE, 0, 0, 0, "the provider's API",
	  "https:// (http:// only on loopback with allow_plaintext)", OR_P(endpoint) },
	{ "providers[].", "access_key_id", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, "ses: required", NULL, OR_P(access_key_id) },
	{ "providers[].", "secret_file", OR_CT_PATH, OR_CFG_CODE, 0, 0, 0, "ses: this or secret_env", "mode 600", OR_NOWHERE },
	{ "providers[].", "secret_env", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, NULL, "a variable's name", OR_NOWHERE },
	{ "providers[].", "session_token_file", OR_CT_PATH, OR_CFG_CODE, 0, 0, 0, NULL, "mode 600", OR_NOWHERE },
	{ "providers[].", "session_token_env", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, NULL, "a variable's name", OR_NOWHERE },
	{ "providers[].", "api_key_file", OR_CT_PATH, OR_CFG_CODE, 0, 0, 0, "this or api_key_env",
	  "sendgrid, mailgun; mode 600", OR_NOWHERE },
	{ "providers[].", "api_key_env", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, NULL, "a variable's name", OR_NOWHERE },
	{ "providers[].", "domain", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, "mailgun: required", "a domain", OR_P(domain) },
	{ "providers[].", "url", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, "smtp: required", "smtp://HOST[:PORT] | smtps://HOST[:PORT]",
	  OR_P(url) },
	{ "providers[].", "helo", OR_CT_STR, OR_CFG_CODE | OR_CFG_DCODE, 0, 0, 0, "the FQDN, else From's domain",
	  "a host name", OR_P(helo) },
	{ "providers[].", "username", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, NULL, NULL, OR_P(username) },
	{ "providers[].", "password_file", OR_CT_PATH, OR_CFG_CODE, 0, 0, 0, NULL, "mode 600", OR_NOWHERE },
	{ "providers[].", "password_env", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, NULL, "a variable's name", OR_NOWHERE },
	{ "providers[].", "feed", OR_CT_BOOL, OR_CFG_DCODE, 0, 0, 0, "true (ses, sendgrid, mailgun)", NULL, OR_P(feed) },
	{ "providers[].", "feed_interval", OR_CT_NUM, 0, 300, 10, 86400, NULL, NULL, OR_P(feed_interval) },
	{ "providers[].", "soft_bounce_limit", OR_CT_INT, 0, 3, 1, 100, NULL, NULL, OR_P(soft_bounce_limit) },
	{ "providers[].", "sqs_queue_url", OR_CT_STR, 0, 0, 0, 0, NULL, NULL, OR_P(sqs_queue_url) },
	{ "providers[].", "sqs_endpoint", OR_CT_STR, OR_CFG_DCODE, 0, 0, 0, "ses: sqs.REGION.amazonaws.com",
	  "https:// (http:// only on loopback with allow_plaintext)", OR_P(sqs_endpoint) },
	{ "providers[].", "dir", OR_CT_PATH, OR_CFG_CODE, 0, 0, 0, "file: required", NULL, OR_P(dir) },
	{ "providers[].", "argv", OR_CT_STRS, OR_CFG_CODE, 0, 0, 0, "exec: required", "argv[0] an absolute path", OR_P(argv) },
	{ "providers[].", "price", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, "none (counted as 0)", NULL, OR_P(price) },
	{ "providers[].price.", "per_1000", OR_CT_NUM, 0, 0, 0, 1e6, NULL, NULL, OR_AT(or_price, per_1000) },
	{ "providers[].price.", "monthly", OR_CT_NUM, 0, 0, 0, 1e9, NULL, NULL, OR_AT(or_price, monthly) },
	{ "providers[].price.", "included", OR_CT_INT, 0, 0, 0, 1e9, NULL, NULL, OR_AT(or_price, included) },
	{ "providers[].price.", "per_1000_over", OR_CT_NUM, 0, 0, 0, 1e6, NULL, NULL, OR_AT(or_price, per_1000_over) },
	{ "", "mailboxes", OR_CT_LIST, OR_CFG_CODE, 0, 0, OR_MAX_MAILBOXES, NULL, NULL, OR_NOWHERE },
	{ "mailboxes[].", "name", OR_CT_STR, OR_CFG_REQ | OR_CFG_CODE, 0, 0, 0, NULL, "letters, digits, . _ -", OR_M(name) },
	{ "mailboxes[].", "url", OR_CT_STR, OR_CFG_REQ, 0, 0, 0, NULL,
	  "imaps://HOST[:PORT]/ | imap://HOST[:PORT]/ (STARTTLS)", OR_M(url) },
	{ "mailboxes[].", "username", OR_CT_STR, OR_CFG_REQ, 0, 0, 0, NULL, NULL, OR_M(username) },
	{ "mailboxes[].", "password_file", OR_CT_PATH, OR_CFG_CODE, 0, 0, 0, "this, password_env or token_command",
	  "mode 600", OR_NOWHERE },
	{ "mailboxes[].", "password_env", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, NULL, "a variable's name", OR_NOWHERE },
	{ "mailboxes[].", "token_command", OR_CT_STRS, 0, 0, 0, 0, NULL, "argv printing a bearer token (XOAUTH2)",
	  OR_M(token_command) },
	{ "mailboxes[].", "ca_file", OR_CT_PATH, 0, 0, 0, 0, NULL, NULL, OR_M(ca_file) },
	{ "mailboxes[].", "folders", OR_CT_STRS, OR_CFG_DCODE, 0, 0, 0, "INBOX", "folder names", OR_M(folders) },
	{ "mailboxes[].", "addresses", OR_CT_STRS, 0, 0, 0, 0, NULL, "our own addresses there", OR_M(addresses) },
	{ "mailboxes[].", "timeout", OR_CT_NUM, 0, 30, 1, 600, NULL, NULL, OR_M(timeout) },
	{ "mailboxes[].", "allow_plaintext", OR_CT_BOOL, 0, 0, 0, 0, "false", "imap:// without STARTTLS, loopback only",
	  OR_M(allow_plaintext) },
	{ "", "senders", OR_CT_LIST, OR_CFG_CODE | OR_CFG_REQ, 0, 0, OR_MAX_SENDERS, NULL, NULL, OR_NOWHERE },
	{ "senders[].", "name", OR_CT_STR, OR_CFG_REQ | OR_CFG_CODE, 0, 0, 0, NULL, "letters, digits, . _ -", OR_S(name) },
	{ "senders[].", "from", OR_CT_STR, OR_CFG_REQ, 0, 0, 0, NULL, "a mailbox: \"Name <addr>\" or addr", OR_S(from) },
	{ "senders[].", "provider", OR_CT_STR, OR_CFG_REQ | OR_CFG_CODE, 0, 0, 0, NULL, "a provider's name", OR_S(provider) },
	{ "senders[].", "fallback", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, NULL, "a provider's name", OR_S(fallback) },
	{ "senders[].", "daily_limit", OR_CT_INT, 0, 1000, 1, 10000000, NULL, NULL, OR_S(daily_limit) },
	{ "senders[].", "per_minute", OR_CT_NUM, 0, 0, 0, 60000, NULL, NULL, OR_S(per_minute) },
	{ "senders[].", "min_gap", OR_CT_NUM, 0, 0, 0, 86400, NULL, NULL, OR_S(min_gap) },
	{ "senders[].", "configuration_set", OR_CT_STR, 0, 0, 0, 0, NULL, NULL, OR_S(configuration_set) },
	{ "senders[].", "dkim_selectors", OR_CT_STRS, OR_CFG_DCODE, 0, 0, 0, "sendgrid: s1, s2", NULL, OR_S(dkim_selectors) },
	{ "senders[].", "jitter", OR_CT_NUM, 0, 0, 0, 86400, NULL, NULL, OR_S(jitter) },
	{ "senders[].", "ip_pool", OR_CT_STR, 0, 0, 0, 0, NULL, NULL, OR_S(ip_pool) },
	{ "senders[].", "mailgun_domain", OR_CT_STR, 0, 0, 0, 0, NULL, NULL, OR_S(mailgun_domain) },
	{ "senders[].", "clients", OR_CT_STRS, OR_CFG_DCODE, 0, 0, 0, "every client", "clients' names", OR_S(clients) },
	{ "senders[].", "mailbox", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, NULL, "a mailbox's name", OR_S(mailbox_name) },
	{ "senders[].", "replies", OR_CT_ONEOF, OR_CFG_CODE, 0, 0, 0, "mailbox", "mailbox | none", OR_S(replies_none) },
	{ "senders[].", "warmup", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, "none (daily_limit at once)", NULL, OR_S(warmup) },
	{ "senders[].warmup.", "start", OR_CT_STR, OR_CFG_REQ, 0, 0, 0, NULL, "YYYY-MM-DD", OR_AT(or_warmup, start) },
	{ "senders[].warmup.", "first", OR_CT_NUM, OR_CFG_REQ, 0, 1, 1e9, NULL, NULL, OR_AT(or_warmup, first) },
	{ "senders[].warmup.", "days", OR_CT_INT, OR_CFG_REQ, 0, 1, 3650, NULL, NULL, OR_AT(or_warmup, days) },
	{ "senders[].warmup.", "curve", OR_CT_ONEOF, OR_CFG_CODE, 0, 0, 0, "linear", "linear | geometric", OR_AT(or_warmup, curve) },
	{ "", "clients", OR_CT_LIST, OR_CFG_CODE, 0, 0, OR_MAX_CLIENTS, NULL, NULL, OR_NOWHERE },
	{ "clients[].", "name", OR_CT_STR, OR_CFG_REQ, 0, 0, 0, NULL, NULL, OR_AT(or_client, name) },
	{ "clients[].", "daily_limit", OR_CT_INT, 0, 0, 0, 100000000, "0 (no cap)", NULL, OR_AT(or_client, daily_limit) },
	{ "clients[].", "holidays", OR_CT_STRS, 0, 0, 0, 0, NULL, "YYYY-MM-DD dates: not business days",
	  OR_AT(or_client, holidays_s) },
	{ "", "recipient_domains", OR_CT_LIST, OR_CFG_CODE, 0, 0, OR_MAX_RGROUPS, NULL, NULL, OR_NOWHERE },
	{ "recipient_domains[].", "name", OR_CT_STR, OR_CFG_REQ | OR_CFG_CODE, 0, 0, 0, NULL, "letters, digits, . _ -",
	  OR_AT(or_rgroup, name) },
	{ "recipient_domains[].", "domains", OR_CT_STRS, OR_CFG_REQ, 0, 0, 0, NULL, "domains", OR_AT(or_rgroup, domains) },
	{ "recipient_domains[].", "per_minute", OR_CT_NUM, 0, 0, 0, 1e6, NULL, NULL, OR_AT(or_rgroup, per_minute) },
	{ "recipient_domains[].", "per_hour", OR_CT_NUM, 0, 0, 0, 1e8, NULL, NULL, OR_AT(or_rgroup, per_hour) },
	{ "recipient_domains[].", "sender_per_minute", OR_CT_NUM, 0, 0, 0, 1e6, NULL, NULL, OR_AT(or_rgroup, sender_per_minute) },
	{ "recipient_domains[].", "sender_per_hour", OR_CT_NUM, 0, 0, 0, 1e8, NULL, NULL, OR_AT(or_rgroup, sender_per_hour) },
	{ "", "store", OR_CT_GROUP, OR_CFG_CODE, 0, 0, 0, "sqlite: the ledger at state", NULL, OR_NOWHERE },
	{ "store.", "type", OR_CT_ONEOF, OR_CFG_CODE, 0, 0, 0, "sqlite", "sqlite | postgresql (a PG=1 build)", OR_C(store_pg) },
	{ "store.", "conninfo", OR_CT_STR, OR_CFG_CODE, 0, 0, 0, "postgresql: required",
	  "libpq's conninfo, no password; TLS verify-full off loopback", OR_C(pg_conninfo) },
	{ "store.", "password_file", OR_CT_PATH, OR_CFG_CODE, 0, 0, 0, "libpq's own (PGPASSFILE)", "mode 600", OR_NOWHERE },
	{ "store.", "host_name", OR_CT_STR, OR_CFG_CODE | OR_CFG_DCODE, 0, 0, 0, "the machine's host name",
	  "letters, digits, . _ -; unique per host", OR_C(host_name) },
	{ "store.", "lease", OR_CT_NUM, 0, 180, 30, 86400, NULL, "seconds, at least the largest timeout + 30",
	  OR_C(pg_lease) },
	{ "store.", "connect_timeout", OR_CT_INT, 0, 10, 1, 600, NULL, NULL, OR_C(pg_connect_timeout) },
	{ NULL, NULL, OR_CT_STR, 0, 0, 0, 0, NULL, NULL, OR_NOWHERE }
};

/* Refuses any member of g whose name is not a row of group (what names g in the message). */
static int or_cfg_known(struct or_cfgerr *e, const config_setting_t *g, const char *what, const char *group)
{
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *c = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(c);
		int ok = 0;

		if (!name && config_setting_is_group(g))   /* a group's member has one: libconfig's copy failed */
			or_oom();
		for (const struct or_cfg_key *k = or_cfg_keys; k->key && !ok; k++)
			ok = name && !strcmp(k->group, group) && !strcmp(name, k->key);
		if (!ok)
			return or_cfg_fail(e, c, "unknown key '%s' in %s", name ? name : "?", what);
	}
	return 0;
}

static int or_cfg_bool(struct or_cfgerr *e, const config_setting_t *g, const char *key, int *out)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (s && config_setting_type(s) != CONFIG_TYPE_BOOL)
		return or_cfg_fail(e, s, "'%s' must be true or false", key);
	if (s)
		*out = config_setting_get_bool(s);
	return 0;
}

/* One row read from g into the group's struct at base (absent: what is there stays). */
static int or_cfg_row(struct or_cfgerr *e, const config_setting_t *g, const struct or_cfg_key *k, char *base)
{
	void *at = base + k->off;
	double v;

	switch (k->type) {
	case OR_CT_STR:
	case OR_CT_PATH: return or_cfg_str(e, g, k->key, at, k->size, (k->flags & OR_CFG_REQ) != 0);
	case OR_CT_INT: return or_cfg_int(e, g, k->key, at, (int)k->min, (int)k->max);
	case OR_CT_NUM: return or_cfg_num(e, g, k->key, at, k->min, k->max);
	case OR_CT_LONG:
		v = (double)*(long *)at;
		if (or_cfg_num(e, g, k->key, &v, k->min, k->max))
			return -1;
		*(long *)at = (long)v;
		return 0;
	case OR_CT_BOOL: return or_cfg_bool(e, g, k->key, at);
	case OR_CT_STRS: return or_cfg_strlist(e, g, k->key, at);
	default: return 0;
	}
}

/* Reads group's rows from key first through key last (NULL: from the first,
 * to the last) in the table's order, the OR_CFG_CODE ones left to their code;
 * -1 on the first problem. */
static int or_cfg_rows(struct or_cfgerr *e, const config_setting_t *g, const char *group, void *base,
                       const char *first, const char *last)
{
	int on = !first;

	for (const struct or_cfg_key *k = or_cfg_keys; k->key; k++) {
		if (strcmp(k->group, group))
			continue;
		on |= first && !strcmp(k->key, first);
		if (on && !(k->flags & OR_CFG_CODE) && or_cfg_row(e, g, k, base))
			return -1;
		if (on && last && !strcmp(k->key, last))
			break;
	}
	return 0;
}

/* The table's defaults into the group's struct at base; group NULL: the top
 * level and its groups (struct or_config).  Rows that are required, read by
 * code or defaulted by code are left alone. */
static void or_cfg_defaults(const char *group, void *base)
{
	for (const struct or_cfg_key *k = or_cfg_keys; k->key; k++) {
		void *at = (char *)base + k->off;
		if (group ? strcmp(k->group, group) != 0 : strchr(k->group, '[') != NULL)
			continue;
		if (k->flags & (OR_CFG_REQ | OR_CFG_CODE | OR_CFG_DCODE))
			continue;
		if (k->type == OR_CT_INT || k->type == OR_CT_BOOL)
			*(int *)at = (int)k->def;
		else if (k->type == OR_CT_NUM)
			*(double *)at = k->def;
		else if (k->type == OR_CT_LONG)
			*(long *)at = (long)k->def;
		else if ((k->type == OR_CT_STR || k->type == OR_CT_PATH) && k->dflt)
			snprintf(at, k->size, "%s", k->dflt);
	}
}

/* The table as `check-config --keys` prints it and README lists it: one line
 * a key, its path, type, default and what it may be. */
OR_STATIC void or_cfg_keys_print(FILE *f)
{
	static const char *const tn[] = { "string", "path", "integer", "number", "number", "boolean", "strings",
	                                  "one of", "group", "list" };

	fprintf(f, "%-37s %-8s %-29s %s\n", "KEY", "TYPE", "DEFAULT", "VALUES");
	for (const struct or_cfg_key *k = or_cfg_keys; k->key; k++) {
		char path[64], def[64], range[80], line[256];
		int num = k->type == OR_CT_INT || k->type == OR_CT_NUM || k->type == OR_CT_LONG;
		snprintf(path, sizeof path, "%s%s", k->group, k->key);
		if (k->dflt || (k->flags & OR_CFG_REQ) || !num)
			snprintf(def, sizeof def, "%s", k->dflt ? k->dflt : k->flags & OR_CFG_REQ ? "required" : "-");
		else
			snprintf(def, sizeof def, "%.15g", k->def);
		if (k->range || (!num && k->type != OR_CT_LIST))
			snprintf(range, sizeof range, "%s", k->range ? k->range : "");
		else if (num)
			snprintf(range, sizeof range, "[%.15g, %.15g]", k->min, k->max);
		else
			snprintf(range, sizeof range, "at most %.15g entries", k->max);
		snprintf(line, sizeof line, "%-37s %-8s %-29s %s", path, tn[k->type], def, range);
		for (size_t l = strlen(line); l > 0 && line[l - 1] == ' '; l--)
			line[l - 1] = 0;
		fprintf(f, "%s\n", line);
	}
}

static int or_cfg_name(struct or_cfgerr *e, const config_setting_t *g, char *out, size_t n)
{
	if (or_cfg_str(e, g, "name", out, n, 1))
		return -1;
	for (const char *p = out; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return or_cfg_fail(e, g, "name '%s' may hold only letters, digits, '.', '_' and '-'", out);
	if (!*out)
		return or_cfg_fail(e, g, "name must not be empty");
	return 0;
}

static int or_provider_index(const struct or_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nproviders; i++)
		if (strcmp(cfg->providers[i].name, name) == 0)
			return i;
	return -1;
}

/* A secret from *_file (refused when group or others may read it) or *_env,
 * never inline.  Trailing newlines are dropped. */
static int or_cfg_secret(const struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *g,
                         const char *what, const char *filekey, const char *envkey, char *out, size_t n, int required)
{
	char path[4096] = "", env[128] = "";
	const config_setting_t *s;

	if (or_cfg_str(e, g, filekey, path, sizeof path, 0) || (envkey && or_cfg_str(e, g, envkey, env, sizeof env, 0)))
		return -1;
	out[0] = 0;
	or_cfg_path(cfg, path, sizeof path);   /* relative to the config's folder, like every path */
	if (*path) {
		struct stat st;
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		ssize_t r;
		s = config_setting_get_member(g, filekey);
		if (fd == -1)
			return or_cfg_fail(e, s, "%s: %s: %s", what, path, strerror(errno));
		if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
			close(fd);
			return or_cfg_fail(e, s, "%s: %s is readable by group or others (or not a file); "
			                   "chmod 600 it", what, path);
		}
		r = read(fd, out, n - 1);
		close(fd);
		if (r < 0 || (size_t)r >= n - 1) {
			sodium_memzero(out, n);
			return or_cfg_fail(e, s, "%s: %s: unreadable or longer than %zu bytes", what, path, n - 2);
		}
		out[r] = 0;
	} else if (*env) {
		const char *v = getenv(env);
		if (!v || !*v || strlen(v) >= n)
			return or_cfg_fail(e, config_setting_get_member(g, envkey), "%s: environment variable %s is "
			                   "unset, empty or too long", what, env);
		snprintf(out, n, "%s", v);
	} else if (required) {
		return or_cfg_fail(e, g, "%s: set %s%s%s (secrets are never inline)", what, filekey,
		                   envkey ? " or " : "", envkey ? envkey : "");
	}
	for (size_t l = strlen(out); l > 0 && (out[l - 1] == '\n' || out[l - 1] == '\r'); l--)
		out[l - 1] = 0;
	if (or_has_ctl(out)) {
		sodium_memzero(out, n);
		return or_cfg_fail(e, g, "%s: the secret holds control characters", what);
	}
	return 0;
}

/* 1 when host (of a URL) is a loopback name or address. */
OR_STATIC int or_url_loopback(const char *url)
{
	const char *h = strstr(url, "://"), *end, *at;
	char host[256];
	struct in_addr a4;

	if (!h)
		return 0;
	h += 3;
	end = h + strcspn(h, "/?#");
	at = memchr(h, '@', (size_t)(end - h));   /* userinfo is not the host */
	if (at)
		h = at + 1;
	if (*h == '[') {
		size_t n = strcspn(h + 1, "]");
		snprintf(host, sizeof host, "%.*s", (int)n, h + 1);
	} else {
		size_t n = strcspn(h, ":/?#");
		snprintf(host, sizeof host, "%.*s", (int)n, h);
	}
	if (!strcasecmp(host, "localhost") || !strcmp(host, "::1"))
		return 1;
	/* a dotted-quad literal in 127.0.0.0/8 only: "127.0.0.1.evil.example" is a name */
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* The endpoint of an HTTP provider: https://, or http:// only on loopback
 * and only with allow_plaintext (a key must never cross a network in clear). */
static int or_cfg_endpoint(struct or_cfgerr *e, const config_setting_t *g, struct or_provider *p,
                           const char *def)
{
	if (or_cfg_str(e, g, "endpoint", p->endpoint, sizeof p->endpoint, 0))
		return -1;
	if (!*p->endpoint)
		snprintf(p->endpoint, sizeof p->endpoint, "%s", def);
	for (size_t l = strlen(p->endpoint); l > 0 && p->endpoint[l - 1] == '/'; l--)
		p->endpoint[l - 1] = 0;
	if (!strncmp(p->endpoint, "https://", 8))
		return 0;
	if (!strncmp(p->endpoint, "http://", 7) && p->allow_plaintext && or_url_loopback(p->endpoint))
		return 0;
	return or_cfg_fail(e, g, "provider '%s': endpoint '%s' must be https:// (http:// only on loopback "
	                   "with allow_plaintext = true)", p->name, p->endpoint);
}

/* Where a provider's secret came from, for check-config: the key and its
 * value (a path or a variable name), never the secret.  *_file wins over
 * *_env as in or_cfg_secret. */
static void or_cfg_secret_source(const config_setting_t *g, struct or_provider *p)
{
	static const char *const keys[] = { "secret_file", "api_key_file", "password_file",
	                                    "secret_env", "api_key_env", "password_env" };
	const char *v;

	p->secret_source[0] = 0;
	for (size_t i = 0; i < sizeof keys / sizeof *keys && *p->secret && !p->secret_source[0]; i++)
		if (config_setting_lookup_string(g, keys[i], &v) && *v)
			snprintf(p->secret_source, sizeof p->secret_source, "%s %.*s", keys[i],
			         (int)(sizeof p->secret_source - strlen(keys[i]) - 2), v);
}

static int or_cfg_remote(struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *g,
                         struct or_provider *p)
{
	char def[512], what[160];
	const char *path;

	if (or_cfg_rows(e, g, "providers[].", p, "allow_plaintext", "configuration_set"))
		return -1;
	snprintf(what, sizeof what, "provider '%s'", p->name);
	or_cfg_path(cfg, p->ca_file, sizeof p->ca_file);
	switch (p->type) {
	case OR_PROV_SES:
		if (!*p->region)
			return or_cfg_fail(e, g, "%s: 'region' is required for ses", what);
		snprintf(def, sizeof def, "https://email.%s.amazonaws.com", p->region);
		if (or_cfg_endpoint(e, g, p, def) ||
		    or_cfg_str(e, g, "access_key_id", p->access_key_id, sizeof p->access_key_id, 1) ||
		    or_cfg_secret(cfg, e, g, what, "secret_file", "secret_env", p->secret, sizeof p->secret, 1) ||
		    or_cfg_secret(cfg, e, g, what, "session_token_file", "session_token_env", p->token, sizeof p->token, 0))
			return -1;
		break;
	case OR_PROV_SENDGRID:
		if (or_cfg_endpoint(e, g, p, "https://api.sendgrid.com") ||
		    or_cfg_secret(cfg, e, g, what, "api_key_file", "api_key_env", p->secret, sizeof p->secret, 1))
			return -1;
		break;
	case OR_PROV_MAILGUN:
		if (!*p->region)
			snprintf(p->region, sizeof p->region, "us");
		if (strcmp(p->region, "us") && strcmp(p->region, "eu"))
			return or_cfg_fail(e, g, "%s: mailgun region must be \"us\" or \"eu\"", what);
		if (or_cfg_endpoint(e, g, p, strcmp(p->region, "eu") ? "https://api.mailgun.net" : "https://api.eu.mailgun.net") ||
		    or_cfg_str(e, g, "domain", p->domain, sizeof p->domain, 1) ||
		    or_cfg_secret(cfg, e, g, what, "api_key_file", "api_key_env", p->secret, sizeof p->secret, 1))
			return -1;
		if (!or_domain_ok(p->domain))
			return or_cfg_fail(e, g, "%s: '%s' is not a domain", what, p->domain);
		break;
	case OR_PROV_SMTP:
		if (or_cfg_str(e, g, "url", p->url, sizeof p->url, 1) ||
		    or_cfg_str(e, g, "helo", p->helo, sizeof p->helo, 0) ||
		    or_cfg_str(e, g, "username", p->username, sizeof p->username, 0) ||
		    or_cfg_secret(cfg, e, g, what, "password_file", "password_env", p->secret, sizeof p->secret, 0))
			return -1;
		if (strncmp(p->url, "smtps://", 8) && strncmp(p->url, "smtp://", 7))
			return or_cfg_fail(e, g, "%s: url must be smtp://host[:port] (STARTTLS) or smtps://", what);
		/* libcurl takes the URL's path as the EHLO name: that is 'helo' here */
		path = strstr(p->url, "://") + 3;
		path += strcspn(path, "/?#");
		if (*path && strcmp(path, "/"))
			return or_cfg_fail(e, g, "%s: url must be smtp://host[:port] or smtps://host[:port] with no path "
			                   "(the EHLO name is 'helo')", what);
		if (*p->helo && (strspn(p->helo, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
		                 strlen(p->helo) || strstr(p->helo, "..") || strchr("-.", p->helo[0]) ||
		                 strchr("-.", p->helo[strlen(p->helo) - 1])))
			return or_cfg_fail(e, g, "%s: helo must be a host name (letters, digits, - and .), fully qualified "
			                   "for most relays", what);
		if (*p->username && !*p->secret)
			return or_cfg_fail(e, g, "%s: username without password_file or password_env", what);
		break;
	default:
		break;
	}
	or_cfg_secret_source(g, p);
	return 0;
}

/* An account's price: a group of optional numbers (none negative, each 0
 * unless given); given at all, it turns plan's money figures on. */
static int or_cfg_price(struct or_cfgerr *e, const config_setting_t *g, struct or_provider *p)
{
	if (!config_setting_is_group(g))
		return or_cfg_fail(e, g, "provider '%s': 'price' must be a group { per_1000; monthly; included; "
		                   "per_1000_over; }", p->name);
	or_cfg_defaults("providers[].price.", &p->price);
	if (or_cfg_known(e, g, "price", "providers[].price.") ||
	    or_cfg_rows(e, g, "providers[].price.", &p->price, NULL, NULL))
		return -1;
	p->price.set = 1;
	return 0;
}

static int or_cfg_provider(struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *g,
                           struct or_provider *p)
{
	char type[32] = "";
	static const char *types[] = { "file", "exec", "smtp", "ses", "sendgrid", "mailgun" };
	const config_setting_t *price;
	int t = -1;

	if (!config_setting_is_group(g))
		return or_cfg_fail(e, g, "each provider must be a group { ... }");
	if (or_cfg_known(e, g, "a provider", "providers[].") || or_cfg_name(e, g, p->name, sizeof p->name) ||
	    or_cfg_str(e, g, "type", type, sizeof type, 1))
		return -1;
	for (int i = 0; i < 6; i++)
		if (strcmp(type, types[i]) == 0)
			t = i;
	if (t < 0)
		return or_cfg_fail(e, g, "provider '%s': unknown type '%s'", p->name, type);
	p->type = (enum or_provider_type)t;
	or_cfg_defaults("providers[].", p);
	p->concurrency = p->type == OR_PROV_FILE || p->type == OR_PROV_EXEC ? 1 : 4;
	p->feed = p->type == OR_PROV_SES || p->type == OR_PROV_SENDGRID || p->type == OR_PROV_MAILGUN;
	if (or_cfg_rows(e, g, "providers[].", p, "rate", "circuit_cooldown") ||
	    (p->type != OR_PROV_FILE && p->type != OR_PROV_EXEC && or_cfg_remote(cfg, e, g, p)) ||
	    or_cfg_rows(e, g, "providers[].", p, "feed", "sqs_endpoint"))
		return -1;
	if (p->type == OR_PROV_FILE || p->type == OR_PROV_EXEC || p->type == OR_PROV_SMTP)
		p->feed = 0;   /* only the HTTP APIs have a feed to pull, whatever 'feed' says */
	if (p->type == OR_PROV_SES && *p->sqs_queue_url && !*p->sqs_endpoint) {
		char region[64];
		memcpy(region, p->region, sizeof region);
		snprintf(p->sqs_endpoint, sizeof p->sqs_endpoint, "https://sqs.%s.amazonaws.com", region);
	}
	if (*p->sqs_endpoint && strncmp(p->sqs_endpoint, "https://", 8) &&
	    !(p->allow_plaintext && !strncmp(p->sqs_endpoint, "http://", 7) && or_url_loopback(p->sqs_endpoint)))
		return or_cfg_fail(e, g, "provider '%s': sqs_endpoint must be https:// (http:// only on loopback with "
		                   "allow_plaintext)", p->name);
	if (p->type == OR_PROV_FILE) {
		if (or_cfg_str(e, g, "dir", p->dir, sizeof p->dir, 1))
			return -1;
		or_cfg_path(cfg, p->dir, sizeof p->dir);
	}
	if (p->type == OR_PROV_EXEC) {
		if (!config_setting_get_member(g, "argv"))
			return or_cfg_fail(e, g, "provider '%s': 'argv' is required for type exec", p->name);
		if (or_cfg_strlist(e, g, "argv", &p->argv))
			return -1;
		if (!p->argv[0] || p->argv[0][0] != '/')
			return or_cfg_fail(e, config_setting_get_member(g, "argv"),
			                   "provider '%s': argv[0] must be an absolute path", p->name);
	}
	if ((price = config_setting_get_member(g, "price")) && or_cfg_price(e, price, p))
		return -1;
	if (or_provider_index(cfg, p->name) >= 0)
		return or_cfg_fail(e, g, "provider '%s' is defined twice", p->name);
	return 0;
}

static int or_cfg_warmup(struct or_cfgerr *e, const config_setting_t *g, struct or_warmup *w)
{
	char curve[32] = "linear";
	time_t t;

	if (!config_setting_is_group(g))
		return or_cfg_fail(e, g, "'warmup' must be a group { start; first; days; curve; }");
	if (or_cfg_known(e, g, "warmup", "senders[].warmup.") ||
	    or_cfg_rows(e, g, "senders[].warmup.", w, "start", "start") ||
	    or_cfg_str(e, g, "curve", curve, sizeof curve, 0))
		return -1;
	if (!config_setting_get_member(g, "first") || !config_setting_get_member(g, "days"))
		return or_cfg_fail(e, g, "warmup needs 'first' and 'days'");
	if (or_cfg_rows(e, g, "senders[].warmup.", w, "first", "days"))
		return -1;
	{
		char iso[40];
		snprintf(iso, sizeof iso, "%sT00:00:00Z", w->start);
		if (strlen(w->start) != 10 || or_parse_time(iso, &t))
			return or_cfg_fail(e, g, "warmup start '%s' is not a date YYYY-MM-DD", w->start);
		w->start_day = (int)(t / 86400);
	}
	if (strcmp(curve, "linear") == 0)
		w->curve = OR_CURVE_LINEAR;
	else if (strcmp(curve, "geometric") == 0)
		w->curve = OR_CURVE_GEOMETRIC;
	else
		return or_cfg_fail(e, g, "warmup curve must be \"linear\" or \"geometric\"");
	w->set = 1;
	return 0;
}

/* A mailbox: its name, URL (imaps://, or imap:// which requires STARTTLS
 * unless allow_plaintext on loopback), login and secret. */
static int or_cfg_mailbox(struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *g,
                          struct or_mailbox *m)
{
	char what[100];
	const char *v;

	if (!config_setting_is_group(g))
		return or_cfg_fail(e, g, "each mailbox must be a group { name; url; username; ... }");
	or_cfg_defaults("mailboxes[].", m);
	if (or_cfg_known(e, g, "a mailbox", "mailboxes[].") || or_cfg_name(e, g, m->name, sizeof m->name) ||
	    or_cfg_rows(e, g, "mailboxes[].", m, NULL, NULL))
		return -1;
	snprintf(what, sizeof what, "mailbox '%s'", m->name);
	if (strncmp(m->url, "imaps://", 8) && strncmp(m->url, "imap://", 7))
		return or_cfg_fail(e, g, "%s: url must be imaps://HOST[:PORT]/ or imap://HOST[:PORT]/ (STARTTLS)", what);
	v = strstr(m->url, "://") + 3;
	v += strcspn(v, "/?#");
	if (*v && strcmp(v, "/"))
		return or_cfg_fail(e, g, "%s: url names a server, not a folder (the folders are 'folders')", what);
	if (m->allow_plaintext && !or_url_loopback(m->url))
		return or_cfg_fail(e, g, "%s: allow_plaintext only on loopback (a password must never cross a network "
		                   "in clear)", what);
	or_cfg_path(cfg, m->ca_file, sizeof m->ca_file);
	if (or_cfg_secret(cfg, e, g, what, "password_file", "password_env", m->password, sizeof m->password,
	                  !m->token_command))
		return -1;
	if (m->token_command && (!m->token_command[0] || m->token_command[0][0] != '/'))
		return or_cfg_fail(e, g, "%s: token_command's argv[0] must be an absolute path", what);
	if (config_setting_lookup_string(g, "password_file", &v) && *v)
		snprintf(m->secret_source, sizeof m->secret_source, "password_file %.140s", v);
	else if (config_setting_lookup_string(g, "password_env", &v) && *v)
		snprintf(m->secret_source, sizeof m->secret_source, "password_env %.140s", v);
	if (!m->folders) {
		m->folders = or_xrealloc(NULL, 2 * sizeof *m->folders);
		m->folders[0] = or_xstrdup("INBOX");
		m->folders[1] = NULL;
	}
	for (char **f = m->folders; *f; f++)
		if (!**f || strlen(*f) > 200 || strpbrk(*f, "\"\\"))
			return or_cfg_fail(e, g, "%s: folder '%s' is empty, longer than 200 bytes or holds a quote", what, *f);
	for (char **a = m->addresses; a && *a; a++)
		or_lower(*a);
	for (int i = 0; i < cfg->nmailboxes; i++)
		if (!strcmp(cfg->mailboxes[i].name, m->name))
			return or_cfg_fail(e, g, "mailbox '%s' is defined twice", m->name);
	return 0;
}

/* The index of the mailbox named name, -1. */
OR_STATIC int or_mailbox_index(const struct or_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nmailboxes; i++)
		if (!strcmp(cfg->mailboxes[i].name, name))
			return i;
	return -1;
}

/* A sender's mailbox and replies: which mailbox its replies arrive in, or
 * replies = "none" said on purpose. */
static int or_cfg_sender_replies(struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *g,
                                 struct or_sender *s)
{
	char replies[16] = "mailbox";

	if (or_cfg_str(e, g, "mailbox", s->mailbox_name, sizeof s->mailbox_name, 0) ||
	    or_cfg_str(e, g, "replies", replies, sizeof replies, 0))
		return -1;
	if (strcmp(replies, "mailbox") && strcmp(replies, "none"))
		return or_cfg_fail(e, g, "sender '%s': replies must be \"mailbox\" or \"none\"", s->name);
	s->replies_none = !strcmp(replies, "none");
	s->mailbox = -1;
	if (*s->mailbox_name && (s->mailbox = or_mailbox_index(cfg, s->mailbox_name)) < 0)
		return or_cfg_fail(e, g, "sender '%s': no mailbox named '%s'", s->name, s->mailbox_name);
	if (s->replies_none && s->mailbox >= 0)
		return or_cfg_fail(e, g, "sender '%s': replies = \"none\" and a mailbox contradict each other", s->name);
	return 0;
}

static int or_cfg_sender(struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *g,
                         struct or_sender *s)
{
	char prov[64] = "", fb[64] = "";
	const config_setting_t *w;

	if (!config_setting_is_group(g))
		return or_cfg_fail(e, g, "each sender must be a group { ... }");
	if (or_cfg_known(e, g, "a sender", "senders[].") || or_cfg_name(e, g, s->name, sizeof s->name) ||
	    or_cfg_rows(e, g, "senders[].", s, "from", "from") ||
	    or_cfg_str(e, g, "provider", prov, sizeof prov, 1) ||
	    or_cfg_str(e, g, "fallback", fb, sizeof fb, 0))
		return -1;
	if (or_parse_mailbox(s->from, s->from_addr, sizeof s->from_addr, s->from_name, sizeof s->from_name))
		return or_cfg_fail(e, g, "sender '%s': 'from' is not an address", s->name);
	snprintf(s->domain, sizeof s->domain, "%s", strchr(s->from_addr, '@') + 1);
	if ((s->provider = or_provider_index(cfg, prov)) < 0)
		return or_cfg_fail(e, g, "sender '%s': no provider named '%s'", s->name, prov);
	s->fallback = -1;
	if (*fb && (s->fallback = or_provider_index(cfg, fb)) < 0)
		return or_cfg_fail(e, g, "sender '%s': no provider named '%s' (fallback)", s->name, fb);
	or_cfg_defaults("senders[].", s);
	if (or_cfg_rows(e, g, "senders[].", s, "daily_limit", "clients"))
		return -1;
	if ((w = config_setting_get_member(g, "warmup")) && or_cfg_warmup(e, w, &s->warmup))
		return -1;
	if (or_cfg_sender_replies(cfg, e, g, s))
		return -1;
	for (int i = 0; i < cfg->nsenders; i++)
		if (strcmp(cfg->senders[i].name, s->name) == 0)
			return or_cfg_fail(e, g, "sender '%s' is defined twice", s->name);
	return 0;
}

/* The row of group's key, or NULL. */
static const struct or_cfg_key *or_cfg_row_of(const char *group, const char *key)
{
	for (const struct or_cfg_key *k = or_cfg_keys; k->key; k++)
		if (!strcmp(k->group, group) && !strcmp(k->key, key))
			return k;
	return NULL;
}

/* A list of the top level (providers, senders, clients, recipient_domains),
 * at most its row's max entries; *out NULL when absent. */
static int or_cfg_list(struct or_cfgerr *e, const config_setting_t *root, const char *key,
                       const config_setting_t **out)
{
	int max = (int)or_cfg_row_of("", key)->max;

	*out = config_setting_get_member(root, key);
	if (!*out)
		return 0;
	if (!config_setting_is_list(*out) && !config_setting_is_array(*out))
		return or_cfg_fail(e, *out, "'%s' must be a list ( {...}, {...} )", key);
	if (config_setting_length(*out) > max)
		return or_cfg_fail(e, *out, "'%s' holds more than %d entries", key, max);
	return 0;
}

/* A group of the top level whose rows land in struct or_config (run, retry,
 * health, alerts, unsubscribe, domain_checks): its keys known, its rows
 * read.  *g is the group, NULL when absent (its defaults stand). */
static int or_cfg_group(struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *root,
                        const char *name, const config_setting_t **g)
{
	char group[32];

	snprintf(group, sizeof group, "%s.", name);
	*g = config_setting_get_member(root, name);
	return *g && (or_cfg_known(e, *g, name, group) || or_cfg_rows(e, *g, group, cfg, NULL, NULL)) ? -1 : 0;
}

/* timezone, rotation and in_doubt, once the top level's scalars are read. */
static int or_cfg_choices(struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *root,
                          const char *rot, const char *doubt)
{
	if (!or_tz_valid(cfg->timezone))
		return or_cfg_fail(e, config_setting_get_member(root, "timezone"),
		                   "unknown timezone '%s'", cfg->timezone);
	if (strcmp(rot, "round-robin") == 0)
		cfg->rotation = OR_ROT_ROUND_ROBIN;
	else if (strcmp(rot, "quota") == 0)
		cfg->rotation = OR_ROT_QUOTA;
	else
		return or_cfg_fail(e, config_setting_get_member(root, "rotation"),
		                   "rotation must be \"round-robin\" or \"quota\"");
	if (strcmp(doubt, "hold") && strcmp(doubt, "resend"))
		return or_cfg_fail(e, config_setting_get_member(root, "in_doubt"),
		                   "in_doubt must be \"hold\" or \"resend\"");
	cfg->in_doubt_resend = strcmp(doubt, "resend") == 0;
	return 0;
}

static int or_cfg_unsubscribe(struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *root)
{
	const config_setting_t *g;
	char scope[16] = "client";

	if (or_cfg_group(cfg, e, root, "unsubscribe", &g))
		return -1;
	if (!g)
		return 0;
	if (or_cfg_str(e, g, "scope", scope, sizeof scope, 0))
		return -1;
	if (strncmp(cfg->unsub_url, "https://", 8) && strncmp(cfg->unsub_url, "http://", 7))
		return or_cfg_fail(e, g, "unsubscribe.url must be an http(s) URL");
	if (strchr(cfg->unsub_url, '>') || strchr(cfg->unsub_url, ' ') || strchr(cfg->unsub_mailto, '>'))
		return or_cfg_fail(e, g, "unsubscribe.url and mailto must not hold '>' or spaces");
	if (strcmp(scope, "client") && strcmp(scope, "global"))
		return or_cfg_fail(e, g, "unsubscribe.scope must be \"client\" or \"global\"");
	cfg->unsub_global = !strcmp(scope, "global");
	return 0;
}

/* engagement = { inactive_days; min_sends; action; }: present, each run
 * once a day lists (and with action = "suppress" suppresses) the addresses
 * that stopped engaging; absent, only `outreach engagement` does. */
static int or_cfg_engagement(struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *root)
{
	const config_setting_t *g;
	char action[16] = "report";

	if (or_cfg_group(cfg, e, root, "engagement", &g))
		return -1;
	if (!g)
		return 0;
	if (or_cfg_str(e, g, "action", action, sizeof action, 0))
		return -1;
	if (strcmp(action, "report") && strcmp(action, "suppress"))
		return or_cfg_fail(e, g, "engagement.action must be \"report\" or \"suppress\"");
	cfg->eng_set = 1;
	cfg->eng_suppress = !strcmp(action, "suppress");
	return 0;
}

static int or_cfg_domain_checks(struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *root)
{
	const config_setting_t *g;

	if (or_cfg_group(cfg, e, root, "domain_checks", &g))
		return -1;
	if (!g)
		return 0;
	for (char **r = cfg->dc_required; r && *r; r++)
		if (strcmp(*r, "spf") && strcmp(*r, "dkim") && strcmp(*r, "dmarc") && strcmp(*r, "mx") && strcmp(*r, "blocklist"))
			return or_cfg_fail(e, g, "domain_checks.required: '%s' is not one of spf, dkim, dmarc, mx, blocklist", *r);
	for (char **b = cfg->dc_blocklists; b && *b; b++)
		if (!or_domain_ok(*b))
			return or_cfg_fail(e, g, "domain_checks.blocklists: '%s' is not a DNS zone", *b);
	return 0;
}

static int or_cfg_dns_server(const struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *root)
{
	const char *d = cfg->dns_server;

	if (*d && !(strspn(d, "0123456789.:[]abcdefABCDEF") == strlen(d) && (isdigit((unsigned char)d[0]) || d[0] == '[')))
		return or_cfg_fail(e, config_setting_get_member(root, "dns_server"), "dns_server must be IP[:PORT]");
	return 0;
}

/* alert_command runs without a shell, alert_webhook carries the alerts: neither goes anywhere unsaid. */
static int or_cfg_alerting(const struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *root)
{
	if (cfg->alert_command && (!cfg->alert_command[0] || cfg->alert_command[0][0] != '/'))
		return or_cfg_fail(e, config_setting_get_member(root, "alert_command"),
		                   "alert_command: argv[0] must be an absolute path");
	if (*cfg->alert_webhook && strncmp(cfg->alert_webhook, "https://", 8) &&
	    !(strncmp(cfg->alert_webhook, "http://", 7) == 0 && or_url_loopback(cfg->alert_webhook)))
		return or_cfg_fail(e, config_setting_get_member(root, "alert_webhook"),
		                   "alert_webhook must be https:// (http:// only on loopback)");
	return 0;
}

/* Relative paths against the config's folder; state and report_dir default
 * from the spool, once it is absolute. */
static void or_cfg_paths(struct or_config *cfg)
{
	or_cfg_path(cfg, cfg->spool, sizeof cfg->spool);
	if (!*cfg->state)
		snprintf(cfg->state, sizeof cfg->state, "%.4000s/state.db", cfg->spool);
	if (!*cfg->report_dir)
		snprintf(cfg->report_dir, sizeof cfg->report_dir, "%s", cfg->spool);
	or_cfg_path(cfg, cfg->state, sizeof cfg->state);
	or_cfg_path(cfg, cfg->report_dir, sizeof cfg->report_dir);
}

static int or_int_cmp(const void *a, const void *b)
{
	return *(const int *)a < *(const int *)b ? -1 : *(const int *)a > *(const int *)b;
}

static int or_cfg_client(struct or_cfgerr *e, const config_setting_t *c, struct or_client *cl)
{
	if (!config_setting_is_group(c))
		return or_cfg_fail(e, c, "each client must be a group { name; daily_limit; }");
	or_cfg_defaults("clients[].", cl);
	if (or_cfg_known(e, c, "a client", "clients[].") || or_cfg_rows(e, c, "clients[].", cl, NULL, NULL))
		return -1;
	for (char **h = cl->holidays_s; h && *h; h++) {
		int day = or_day_of_iso(*h);
		if (day < 0)
			return or_cfg_fail(e, c, "client '%s': holiday '%s' is not a date YYYY-MM-DD", cl->name, *h);
		if (cl->nholidays == OR_MAX_HOLIDAYS)
			return or_cfg_fail(e, c, "client '%s': more than %d holidays", cl->name, OR_MAX_HOLIDAYS);
		cl->holidays[cl->nholidays++] = day;
	}
	qsort(cl->holidays, (size_t)cl->nholidays, sizeof *cl->holidays, or_int_cmp);
	return 0;
}


static int or_cfg_rgroup(struct or_cfgerr *e, const config_setting_t *c, struct or_rgroup *rg)
{
	if (!config_setting_is_group(c))
		return or_cfg_fail(e, c, "each recipient_domains entry must be a group { name; domains; ... }");
	or_cfg_defaults("recipient_domains[].", rg);
	if (or_cfg_known(e, c, "recipient_domains", "recipient_domains[].") || or_cfg_name(e, c, rg->name, sizeof rg->name) ||
	    or_cfg_rows(e, c, "recipient_domains[].", rg, "domains", NULL))
		return -1;
	if (!rg->domains || !rg->domains[0])
		return or_cfg_fail(e, c, "recipient group '%s' needs domains", rg->name);
	for (char **d = rg->domains; *d; d++) {
		or_lower(*d);
		if (!or_domain_ok(*d))
			return or_cfg_fail(e, c, "recipient group '%s': '%s' is not a domain", rg->name, *d);
	}
	return 0;
}

/* The store group (after the providers: the lease is judged against their
 * timeouts).  Without it: the SQLite ledger at 'state', and libpq is never
 * called. */
static int or_cfg_store(struct or_config *cfg, struct or_cfgerr *e, const config_setting_t *root)
{
	const config_setting_t *g;
	char type[32] = "sqlite";

	if (or_cfg_group(cfg, e, root, "store", &g) || (g && or_cfg_str(e, g, "type", type, sizeof type, 0)))
		return -1;
	if (!g)
		return 0;
	if (!strcmp(type, "sqlite")) {
		static const char *const pg_only[] = { "conninfo", "password_file", "host_name", "lease", "connect_timeout" };
		for (size_t i = 0; i < sizeof pg_only / sizeof *pg_only; i++)
			if (config_setting_get_member(g, pg_only[i]))
				return or_cfg_fail(e, config_setting_get_member(g, pg_only[i]), "store.%s is only for "
				                   "type = \"postgresql\" (this store is sqlite)", pg_only[i]);
		return 0;
	}
	if (strcmp(type, "postgresql"))
		return or_cfg_fail(e, config_setting_get_member(g, "type"), "store.type must be \"sqlite\" or "
		                   "\"postgresql\"");
#if !OR_PG
	return or_cfg_fail(e, config_setting_get_member(g, "type"), "store.type = \"postgresql\" needs outreach "
	                   "built with PostgreSQL: rebuild with make PG=1 (libpq-dev)");
#else
	double longest = 0;

	cfg->store_pg = 1;
	if (or_cfg_str(e, g, "conninfo", cfg->pg_conninfo, sizeof cfg->pg_conninfo, 1) ||
	    or_cfg_conninfo(e, config_setting_get_member(g, "conninfo"), cfg->pg_conninfo) ||
	    or_cfg_str(e, g, "password_file", cfg->pg_password_file, sizeof cfg->pg_password_file, 0) ||
	    or_cfg_secret(cfg, e, g, "store", "password_file", NULL, cfg->pg_password, sizeof cfg->pg_password, 0) ||
	    or_cfg_str(e, g, "host_name", cfg->host_name, sizeof cfg->host_name, 0))
		return -1;
	or_cfg_path(cfg, cfg->pg_password_file, sizeof cfg->pg_password_file);
	if (!*cfg->host_name && gethostname(cfg->host_name, sizeof cfg->host_name) == -1)
		cfg->host_name[0] = 0;
	cfg->host_name[sizeof cfg->host_name - 1] = 0;
	if (!*cfg->host_name || strspn(cfg->host_name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
	                            != strlen(cfg->host_name))
		return or_cfg_fail(e, g, "store.host_name '%s' may hold only letters, digits, '.', '_' and '-' "
		                   "(set it when the machine's host name does not)", cfg->host_name);
	/* what the send path on the shared ledger does not honour yet is refused, never ignored */
	if (cfg->nmailboxes)
		return or_cfg_fail(e, g, "store.type = \"postgresql\" does not take mailboxes yet (README \"Several hosts\")");
	for (int i = 0; i < cfg->nproviders; i++)
		longest = cfg->providers[i].timeout > longest ? cfg->providers[i].timeout : longest;
	/* a lease shorter than a transfer would let another host take back a
	 * job while its send is still on the wire */
	if (cfg->pg_lease < longest + 30)
		return or_cfg_fail(e, config_setting_get_member(g, "lease") ? config_setting_get_member(g, "lease") : g,
		                   "store.lease = %g s is too short: at least %g (the largest provider timeout, %g s, + 30)",
		                   cfg->pg_lease, longest + 30, longest);
	return 0;
#endif
}

/* Everything from the parsed libconfig tree into cfg, in the table's order;
 * -1 with err on the first problem. */
static int or_cfg_fill(struct or_config *cfg, const config_t *lc, struct or_cfgerr *e)
{
	const config_setting_t *root = config_root_setting(lc), *g, *list;
	char rot[32] = "round-robin", doubt[32] = "hold";

	or_cfg_defaults(NULL, cfg);
	if (or_cfg_known(e, root, "the config", "") || or_cfg_rows(e, root, "", cfg, "spool", "timezone") ||
	    or_cfg_str(e, root, "rotation", rot, sizeof rot, 0) ||
	    or_cfg_str(e, root, "in_doubt", doubt, sizeof doubt, 0) ||
	    or_cfg_rows(e, root, "", cfg, "retention_days", "max_provider_wait") ||
	    or_cfg_choices(cfg, e, root, rot, doubt) ||
	    or_cfg_group(cfg, e, root, "run", &g) || or_cfg_group(cfg, e, root, "retry", &g) ||
	    or_cfg_group(cfg, e, root, "health", &g) || or_cfg_group(cfg, e, root, "alerts", &g) ||
	    or_cfg_group(cfg, e, root, "replies", &g) ||
	    or_cfg_unsubscribe(cfg, e, root) || or_cfg_domain_checks(cfg, e, root) ||
	    or_cfg_rows(e, root, "", cfg, "dns_server", "dns_timeout_ms") || or_cfg_dns_server(cfg, e, root) ||
	    or_cfg_rows(e, root, "", cfg, "alert_command", "alert_webhook") || or_cfg_alerting(cfg, e, root) ||
	    or_cfg_engagement(cfg, e, root))
		return -1;
	or_cfg_paths(cfg);
	if (or_cfg_list(e, root, "providers", &list))
		return -1;
	for (int i = 0; list && i < config_setting_length(list); i++, cfg->nproviders++)
		if (or_cfg_provider(cfg, e, config_setting_get_elem(list, (unsigned)i), &cfg->providers[cfg->nproviders]))
			return -1;
	if (or_cfg_group(cfg, e, root, "costs", &g))   /* the fixed costs beside the accounts' prices */
		return -1;
	if (or_cfg_list(e, root, "mailboxes", &list))
		return -1;
	for (int i = 0; list && i < config_setting_length(list); i++, cfg->nmailboxes++)
		if (or_cfg_mailbox(cfg, e, config_setting_get_elem(list, (unsigned)i), &cfg->mailboxes[cfg->nmailboxes]))
			return -1;
	if (or_cfg_list(e, root, "senders", &list))
		return -1;
	for (int i = 0; list && i < config_setting_length(list); i++, cfg->nsenders++)
		if (or_cfg_sender(cfg, e, config_setting_get_elem(list, (unsigned)i), &cfg->senders[cfg->nsenders]))
			return -1;
	if (or_cfg_list(e, root, "clients", &list))
		return -1;
	for (int i = 0; list && i < config_setting_length(list); i++, cfg->nclients++)
		if (or_cfg_client(e, config_setting_get_elem(list, (unsigned)i), &cfg->clients[cfg->nclients]))
			return -1;
	if (or_cfg_list(e, root, "recipient_domains", &list))
		return -1;
	for (int i = 0; list && i < config_setting_length(list); i++, cfg->nrgroups++)
		if (or_cfg_rgroup(e, config_setting_get_elem(list, (unsigned)i), &cfg->rgroups[cfg->nrgroups]))
			return -1;
	if (or_cfg_store(cfg, e, root))
		return -1;
	if (cfg->nsenders == 0)
		return or_cfg_fail(e, root, "no senders configured");
	return 0;
}

/* libconfig's parser does not check its allocations: out of memory, it
 * dereferences NULL.  Nothing is read or judged yet while it runs, so that
 * crash is made the temporary failure it is (75, and the next tick retries). */
static void or_config_segv(int sig)
{
	static const char m[] = "outreach: the config parser (libconfig) crashed: out of memory? temporary\n";

	(void)sig;
	(void)!write(2, m, sizeof m - 1);   /* nothing to do if stderr is gone: 75 either way */
	_exit(OR_EX_TEMPFAIL);
}

/* Its scanner, out of memory, prints so and calls exit(2): while it parses,
 * an exit handler turns that into 75. */
static int or_config_parsing;

static void or_config_atexit(void)
{
	if (or_config_parsing)
		_exit(OR_EX_TEMPFAIL);
}

static void or_config_guard(int on)
{
	static struct sigaction old;
	static int registered;
	struct sigaction sa;

	if (!registered)
		registered = atexit(or_config_atexit) == 0;
	or_config_parsing = on;
	if (on) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = or_config_segv;
		sigaction(SIGSEGV, &sa, &old);
	} else {
		sigaction(SIGSEGV, &old, NULL);
	}
}

/* libconfig says "memory exhausted" (its bison parser) when an allocation it
 * checks fails: temporary (-2), not a config error. */
static int or_config_finish(struct or_config *cfg, config_t *lc, int ok, const char *name,
                            char *err, size_t errlen)
{
	struct or_cfgerr e = { err, errlen, name };

	if (!ok) {
		snprintf(err, errlen, "%s:%d: %s", config_error_file(lc) ? config_error_file(lc) : name,
		         config_error_line(lc), config_error_text(lc));
		ok = config_error_text(lc) && strstr(config_error_text(lc), "memory") ? -2 : -1;
		config_destroy(lc);
		return ok;
	}
	ok = or_cfg_fill(cfg, lc, &e) == 0;
	config_destroy(lc);
	if (!ok)
		or_config_free(cfg);
	return ok ? 0 : -1;
}

static void or_config_begin(struct or_config *cfg, config_t *lc, const char *path)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->path, sizeof cfg->path, "%s", path);
	config_init(lc);
	config_set_options(lc, CONFIG_OPTION_AUTOCONVERT);
}

/* 0, or -1 with the reason in err; -2 when the file could not be opened for
 * want of descriptors or memory (libconfig would only say "file I/O error",
 * and the config is not what is wrong: a temporary failure, not exit 78). */
OR_STATIC int or_config_load(struct or_config *cfg, const char *path, char *err, size_t errlen)
{
	config_t lc;
	FILE *f;
	int ok;

	or_config_guard(1);
	or_config_begin(cfg, &lc, path);
	if (!(f = fopen(path, "re"))) {
		int e = errno;
		or_config_guard(0);
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		config_destroy(&lc);
		return or_errno_transient(e) ? -2 : -1;
	}
	ok = config_read(&lc, f) == CONFIG_TRUE;
	or_config_guard(0);
	fclose(f);
	return or_config_finish(cfg, &lc, ok, path, err, errlen);
}

OR_STATIC int or_config_load_string(struct or_config *cfg, const char *text, const char *name,
                                    char *err, size_t errlen)
{
	config_t lc;

	or_config_begin(cfg, &lc, name);
	return or_config_finish(cfg, &lc, config_read_string(&lc, text) == CONFIG_TRUE, name, err, errlen);
}

static void or_strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

OR_STATIC void or_config_free(struct or_config *cfg)
{
	sodium_memzero(cfg->pg_password, sizeof cfg->pg_password);
	or_strv_free(cfg->alert_command);
	or_strv_free(cfg->dc_required);
	or_strv_free(cfg->dc_blocklists);
	cfg->alert_command = cfg->dc_required = cfg->dc_blocklists = NULL;
	for (int i = 0; i < OR_MAX_PROVIDERS; i++) {
		or_strv_free(cfg->providers[i].argv);
		cfg->providers[i].argv = NULL;
		sodium_memzero(cfg->providers[i].secret, sizeof cfg->providers[i].secret);
		sodium_memzero(cfg->providers[i].token, sizeof cfg->providers[i].token);
	}
	for (int i = 0; i < OR_MAX_RGROUPS; i++) {
		or_strv_free(cfg->rgroups[i].domains);
		cfg->rgroups[i].domains = NULL;
	}
	for (int i = 0; i < OR_MAX_SENDERS; i++) {
		or_strv_free(cfg->senders[i].clients);
		or_strv_free(cfg->senders[i].dkim_selectors);
		cfg->senders[i].clients = cfg->senders[i].dkim_selectors = NULL;
	}
	for (int i = 0; i < OR_MAX_CLIENTS; i++) {
		or_strv_free(cfg->clients[i].holidays_s);
		cfg->clients[i].holidays_s = NULL;
	}
	for (int i = 0; i < OR_MAX_MAILBOXES; i++) {
		struct or_mailbox *m = &cfg->mailboxes[i];
		or_strv_free(m->folders);
		or_strv_free(m->addresses);
		or_strv_free(m->token_command);
		m->folders = m->addresses = m->token_command = NULL;
		sodium_memzero(m->password, sizeof m->password);
	}
}

OR_STATIC int or_sender_serves(const struct or_sender *s, const char *client)
{
	if (!s->clients)
		return 1;
	for (char **c = s->clients; *c; c++)
		if (strcmp(*c, client) == 0)
			return 1;
	return 0;
}

/* Today's warm-up volume, doc/design.md §10 to the letter.  day is counted from
 * the warm-up start (0 on the start date); before it the sender is unused. */
OR_STATIC int or_warmup_volume(const struct or_warmup *w, int daily_limit, int day)
{
	double v;

	if (!w->set)
		return daily_limit;
	if (day < 0)
		return 0;
	if (day >= w->days)
		return daily_limit;
	if (w->curve == OR_CURVE_LINEAR)
		v = w->first + (daily_limit - w->first) * (double)day / w->days;
	else
		v = w->first * pow(daily_limit / w->first, (double)day / w->days);
	v = floor(v + 1e-9);
	return v < daily_limit ? (int)v : daily_limit;
}

/* Seconds between two of a sender's slots (doc/design.md §10). */
OR_STATIC double or_sender_gap(const struct or_config *cfg, const struct or_sender *s)
{
	double gap = s->min_gap, rate = cfg->providers[s->provider].rate;

	if (s->per_minute > 0 && 60.0 / s->per_minute > gap)
		gap = 60.0 / s->per_minute;
	if (rate > 0 && 1.0 / rate > gap)
		gap = 1.0 / rate;
	return gap;
}

/* 1 when sender i is the first configured sender of its domain: what is
 * judged per domain (its health) is judged once. */
static int or_domain_first(const struct or_config *cfg, int i)
{
	for (int k = 0; k < i; k++)
		if (!strcmp(cfg->senders[k].domain, cfg->senders[i].domain))
			return 0;
	return 1;
}

static const struct or_client *or_client_find(const struct or_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nclients; i++)
		if (strcmp(cfg->clients[i].name, name) == 0)
			return &cfg->clients[i];
	return NULL;
}

/* ================================================================
 * CRYPTO (libsodium)
 * ================================================================ */

/* Hex of SHA-256(p); hexlen = how many hex digits to keep (<= 64). */
OR_STATIC void or_sha256_hex(const void *p, size_t n, char *out, size_t hexlen)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[crypto_hash_sha256_BYTES * 2 + 1];

	crypto_hash_sha256(h, p, n);
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	if (hexlen > 64)
		hexlen = 64;
	memcpy(out, hex, hexlen);
	out[hexlen] = 0;
}

static void or_hmac(unsigned char out[32], const void *key, size_t keylen, const void *msg, size_t n)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, msg, n);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof st);
}

/* URI encoding as SigV4 wants it: A-Z a-z 0-9 - . _ ~ stay, every other byte
 * is %XY (upper-case); '/' stays too when keep_slash. */
OR_STATIC void or_uri_encode(struct or_buf *b, const char *s, size_t n, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
			or_buf_add(b, s + i, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			or_buf_add(b, e, 3);
		}
	}
}

/* Percent-decodes s[0..n) into b ('+' is kept: SigV4 queries use %20). */
static void or_uri_decode(struct or_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2])) {
			char h[3] = { s[i + 1], s[i + 2], 0 };
			char c = (char)strtol(h, NULL, 16);
			or_buf_add(b, &c, 1);
			i += 2;
		} else {
			or_buf_add(b, s + i, 1);
		}
	}
	or_buf_add(b, "", 0);
}

/* The canonical URI: "." and ".." segments resolved, empty segments dropped,
 * each segment URI-encoded; a trailing slash is kept. */
static void or_sigv4_path(struct or_buf *b, const char *path, size_t n)
{
	const char *seg[256];
	size_t len[256];
	int ns = 0, trailing = n > 1 && path[n - 1] == '/';

	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && path[j] != '/')
			j++;
		if (j > i && !(j - i == 1 && path[i] == '.')) {
			if (j - i == 2 && path[i] == '.' && path[i + 1] == '.') {
				if (ns > 0)
					ns--;
			} else if (ns < 256) {
				seg[ns] = path + i;
				len[ns++] = j - i;
			}
		}
		i = j + 1;
	}
	for (int k = 0; k < ns; k++) {
		or_buf_add(b, "/", 1);
		or_uri_encode(b, seg[k], len[k], 0);
	}
	if (ns == 0 || trailing)
		or_buf_add(b, "/", 1);
}

struct or_qparam { char *name, *value; };

static int or_qparam_cmp(const void *a, const void *b)
{
	const struct or_qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

/* The canonical query string: each name and value decoded, re-encoded, sorted. */
static void or_sigv4_query(struct or_buf *b, const char *q)
{
	struct or_qparam *p = NULL;
	int n = 0;

	while (q && *q) {
		const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q), *eq = memchr(q, '=', (size_t)(end - q));
		struct or_buf name = { 0 }, value = { 0 }, dn = { 0 }, dv = { 0 };

		if (end > q) {
			or_uri_decode(&dn, q, (size_t)((eq ? eq : end) - q));
			or_uri_decode(&dv, eq ? eq + 1 : end, eq ? (size_t)(end - eq - 1) : 0);
			or_uri_encode(&name, dn.s, dn.len, 0);
			or_uri_encode(&value, dv.s, dv.len, 0);
			or_buf_add(&name, "", 0);
			or_buf_add(&value, "", 0);
			p = or_xrealloc(p, sizeof *p * (size_t)(n + 1));
			p[n].name = name.s;
			p[n++].value = value.s;
			or_buf_free(&dn);
			or_buf_free(&dv);
		}
		q = amp ? amp + 1 : end;
	}
	if (n > 1)
		qsort(p, (size_t)n, sizeof *p, or_qparam_cmp);
	for (int i = 0; i < n; i++) {
		or_buf_printf(b, "%s%s=%s", i ? "&" : "", p[i].name, p[i].value);
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
}

struct or_hdr { char *name, *value; };

static int or_hdr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct or_hdr *)a)->name, ((const struct or_hdr *)b)->name);
}

/* Adds one "Name:value" line to the canonical header set: lower-case name,
 * whitespace runs folded, a repeated name joined to the first with ','. */
static void or_sigv4_header_add(struct or_hdr **h, int *nh, const char *line)
{
	const char *colon = strchr(line, ':');
	struct or_buf name = { 0 }, val = { 0 };
	int j;

	if (!colon)
		return;
	or_buf_add(&name, line, (size_t)(colon - line));
	or_lower(name.s);
	for (const char *p = colon + 1; *p; p++) {
		if (isspace((unsigned char)*p)) {
			while (isspace((unsigned char)p[1]))
				p++;
			if (val.len && p[1])
				or_buf_add(&val, " ", 1);
			continue;
		}
		or_buf_add(&val, p, 1);
	}
	or_buf_add(&val, "", 0);
	for (j = 0; j < *nh && strcmp((*h)[j].name, name.s); j++)
		;
	if (j < *nh) {
		struct or_buf joined = { 0 };
		or_buf_printf(&joined, "%s,%s", (*h)[j].value, val.s);
		free((*h)[j].value);
		(*h)[j].value = joined.s;
		or_buf_free(&name);
		or_buf_free(&val);
	} else {
		*h = or_xrealloc(*h, sizeof **h * (size_t)(*nh + 1));
		(*h)[*nh].name = name.s;
		(*h)[(*nh)++].value = val.s;
	}
}

/* The request's headers plus x-amz-date (and x-amz-security-token with a
 * token), canonical and sorted by name; returns how many (owner frees). */
static int or_sigv4_headers(const struct or_sigv4_req *r, struct or_hdr **h)
{
	int nh = 0;
	char tmp[4096];

	*h = NULL;
	for (int i = 0; i < r->nheaders; i++)
		or_sigv4_header_add(h, &nh, r->headers[i]);
	snprintf(tmp, sizeof tmp, "x-amz-date:%s", r->amzdate);
	or_sigv4_header_add(h, &nh, tmp);
	if (r->token && *r->token) {
		snprintf(tmp, sizeof tmp, "x-amz-security-token:%s", r->token);
		or_sigv4_header_add(h, &nh, tmp);
	}
	if (nh > 1)
		qsort(*h, (size_t)nh, sizeof **h, or_hdr_cmp);
	return nh;
}

/* The canonical request and the SignedHeaders list. */
static void or_sigv4_canon(const struct or_sigv4_req *r, const struct or_hdr *h, int nh,
                           struct or_buf *canon, struct or_buf *signed_hdrs)
{
	const char *q = strchr(r->path, '?');
	char hash[65];

	or_buf_printf(canon, "%s\n", r->method);
	or_sigv4_path(canon, r->path, q ? (size_t)(q - r->path) : strlen(r->path));
	or_buf_puts(canon, "\n");
	or_sigv4_query(canon, q ? q + 1 : NULL);
	or_buf_puts(canon, "\n");
	for (int i = 0; i < nh; i++) {
		or_buf_printf(canon, "%s:%s\n", h[i].name, h[i].value);
		or_buf_printf(signed_hdrs, "%s%s", i ? ";" : "", h[i].name);
	}
	or_sha256_hex(r->body ? r->body : "", r->bodylen, hash, 64);
	or_buf_printf(canon, "\n%s\n%s", signed_hdrs->s, hash);
}

/* HMAC of the string to sign under the key derived from the secret for the
 * day, region and service; the secret's copies are wiped. */
static void or_sigv4_signature(const struct or_sigv4_req *r, const char *day, const struct or_buf *sts,
                               char sighex[65])
{
	struct or_buf key = { 0 };
	unsigned char k[32], sig[32];

	or_buf_printf(&key, "AWS4%s", r->secret);
	or_hmac(k, key.s, key.len, day, 8);
	or_hmac(k, k, 32, r->region, strlen(r->region));
	or_hmac(k, k, 32, r->service, strlen(r->service));
	or_hmac(k, k, 32, "aws4_request", 12);
	or_hmac(sig, k, 32, sts->s, sts->len);
	sodium_bin2hex(sighex, 65, sig, sizeof sig);
	sodium_memzero(key.s, key.len);
	sodium_memzero(k, sizeof k);
	or_buf_free(&key);
}

/* Signs a request with AWS Signature Version 4 (header form).  headers are
 * "Name:value" lines (values may hold folded whitespace); x-amz-date and,
 * with a token, x-amz-security-token are added.  Fills the canonical
 * request, the string to sign and the Authorization value (any may be NULL
 * but auth).  amzdate is YYYYMMDDTHHMMSSZ. */
OR_STATIC void or_sigv4(const struct or_sigv4_req *r, struct or_buf *canon_out, struct or_buf *sts_out,
                        struct or_buf *auth)
{
	struct or_buf canon = { 0 }, sts = { 0 }, signed_hdrs = { 0 };
	struct or_hdr *h = NULL;
	int nh = or_sigv4_headers(r, &h);
	char hash[65], day[9], sighex[65];

	or_sigv4_canon(r, h, nh, &canon, &signed_hdrs);
	memcpy(day, r->amzdate, 8);
	day[8] = 0;
	or_sha256_hex(canon.s, canon.len, hash, 64);
	or_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", r->amzdate, day, r->region,
	              r->service, hash);
	or_sigv4_signature(r, day, &sts, sighex);
	or_buf_printf(auth, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
	              r->akid, day, r->region, r->service, signed_hdrs.s, sighex);
	for (int i = 0; i < nh; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
	if (canon_out) or_buf_add(canon_out, canon.s, canon.len);
	if (sts_out) or_buf_add(sts_out, sts.s, sts.len);
	or_buf_free(&canon);
	or_buf_free(&sts);
	or_buf_free(&signed_hdrs);
}

/* ---- unsubscribe tokens ----
 *
 * TOKEN = base64url(payload) "." base64url(first 16 bytes of
 * HMAC-SHA-256(key, payload)), payload = "1\n" address "\n" client "\n"
 * campaign.  The key is SPOOL/key, made by `init`; a token verifies without
 * any database, in constant time. */

static unsigned char or_key[32];
static int or_key_loaded;

/* Loads SPOOL/key once; -1 with err (and errno: or_ex_io) when it is
 * missing, unreadable or not 32 bytes. */
OR_STATIC int or_key_load(const char *spool, char *err, size_t errlen)
{
	char path[4200];
	int fd;
	ssize_t r;

	if (or_key_loaded)
		return 0;
	snprintf(path, sizeof path, "%s/key", spool);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		int e = errno;
		snprintf(err, errlen, "%s: %s%s", path, strerror(e), e == ENOENT ? " (run 'outreach init')" : "");
		errno = e;
		return -1;
	}
	r = read(fd, or_key, sizeof or_key);
	close(fd);
	if (r != (ssize_t)sizeof or_key) {
		snprintf(err, errlen, "%s: not a 32-byte key", path);
		errno = EINVAL;
		return -1;
	}
	or_key_loaded = 1;
	return 0;
}

/* A 32-byte key read from path for `init --key`: a regular file no group or
 * other may read (it signs every unsubscribe link), exactly 32 bytes.  -1
 * with err. */
static int or_key_read_file(const char *path, unsigned char key[32], char *err, size_t errlen)
{
	struct stat st;
	unsigned char extra;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t r;

	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		close(fd);
		snprintf(err, errlen, "%s is readable by group or others (or not a file); chmod 600 it", path);
		return -1;
	}
	r = read(fd, key, 32);
	if (r != 32 || read(fd, &extra, 1) != 0) {
		close(fd);
		sodium_memzero(key, 32);
		snprintf(err, errlen, "%s: not a 32-byte key (a copy of another host's SPOOL/key)", path);
		return -1;
	}
	close(fd);
	return 0;
}

static int or_key_present(const char *spool)
{
	char path[4200];

	snprintf(path, sizeof path, "%s/key", spool);
	return faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* SPOOL/key made from key (NULL: 32 random bytes) when there is none:
 * written to a temporary name and synced, then linked into place, so the
 * key is whole or absent after a crash, and an existing key is never
 * replaced (link does not overwrite).  1 when it was there already, 0 when
 * made, -1 with err. */
static int or_key_install(const char *spool, const unsigned char *key, char *err, size_t errlen)
{
	char path[4200], tmp[4200];
	unsigned char k[32];
	int fd, rc = 0;

	snprintf(path, sizeof path, "%s/key", spool);
	if (or_key_present(spool))
		return 1;
	snprintf(tmp, sizeof tmp, "%s/.key.%ld", spool, (long)getpid());
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (key)
		memcpy(k, key, sizeof k);
	else
		randombytes_buf(k, sizeof k);
	if (write(fd, k, sizeof k) != (ssize_t)sizeof k || fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		rc = -1;
	}
	sodium_memzero(k, sizeof k);
	close(fd);
	if (rc == 0 && link(tmp, path) == -1) {
		rc = errno == EEXIST ? 1 : -1;   /* another init made it first: theirs stands */
		if (rc < 0)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
	}
	unlink(tmp);
	if (rc == 0 && (fd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		if (fsync(fd) == -1)
			rc = -1, snprintf(err, errlen, "%s: %s", spool, strerror(errno));
		close(fd);
	}
	return rc;
}

/* SPOOL/key for init: made from keyfile (init --key FILE) or at random
 * when the spool has none; one already there stays, and must then equal
 * keyfile's (replacing it would void every link it signed).  Exit code. */
static int or_init_key(const struct or_config *cfg, const char *keyfile)
{
	unsigned char given[32];
	char err[4400];
	int rc;

	if (keyfile && or_key_read_file(keyfile, given, err, sizeof err)) {
		fprintf(stderr, "outreach: init --key: %s\n", err);
		return OR_EX_CONFIG;
	}
	rc = or_key_install(cfg->spool, keyfile ? given : NULL, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "outreach: %s\n", err);
		sodium_memzero(given, sizeof given);
		return OR_EX_IOERR;
	}
	if (rc == 1 && keyfile) {   /* there already: it must be the same key */
		if (or_key_load(cfg->spool, err, sizeof err)) {
			fprintf(stderr, "outreach: %s\n", err);
			sodium_memzero(given, sizeof given);
			return or_ex_io(errno);
		}
		rc = sodium_memcmp(given, or_key, sizeof given);
		sodium_memzero(given, sizeof given);
		if (rc) {
			fprintf(stderr, "outreach: init --key: %s/key exists and differs from %s: left as it is (remove it "
			        "yourself if no link it signed matters)\n", cfg->spool, keyfile);
			return OR_EX_CONFIG;
		}
	}
	sodium_memzero(given, sizeof given);
	return OR_EX_OK;
}

OR_STATIC void or_unsub_token(const char *addr, const char *client, const char *campaign, struct or_buf *out)
{
	struct or_buf pl = { 0 };
	unsigned char mac[32];
	char *b = NULL;
	size_t bl;

	or_buf_printf(&pl, "1\n%s\n%s\n%s", addr, client, campaign);
	or_hmac(mac, or_key, sizeof or_key, pl.s, pl.len);
	bl = sodium_base64_encoded_len(pl.len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	b = or_xrealloc(NULL, bl);
	sodium_bin2base64(b, bl, (const unsigned char *)pl.s, pl.len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	or_buf_puts(out, b);
	or_buf_puts(out, ".");
	bl = sodium_base64_encoded_len(16, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	b = or_xrealloc(b, bl);
	sodium_bin2base64(b, bl, mac, 16, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	or_buf_puts(out, b);
	free(b);
	or_buf_free(&pl);
}

/* Verifies a token; 0 with its address, client and campaign, else -1. */
OR_STATIC int or_unsub_verify(const char *token, char *addr, size_t an, char *client, size_t cn,
                              char *campaign, size_t kn)
{
	const char *dot = strchr(token ? token : "", '.');
	unsigned char pl[1024], mac[32], want[32];
	size_t pn = 0, mn = 0;
	char *f[4], *save = NULL;

	if (!dot || strlen(token) > 1500 ||
	    sodium_base642bin(pl, sizeof pl - 1, token, (size_t)(dot - token), NULL, &pn, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    sodium_base642bin(mac, sizeof mac, dot + 1, strlen(dot + 1), NULL, &mn, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 || mn != 16)
		return -1;
	or_hmac(want, or_key, sizeof or_key, pl, pn);
	if (sodium_memcmp(want, mac, 16) != 0)
		return -1;
	pl[pn] = 0;
	if (memchr(pl, 0, pn))
		return -1;
	for (int i = 0; i < 4; i++)
		if (!(f[i] = strtok_r(i ? NULL : (char *)pl, "\n", &save)))
			return -1;
	if (strcmp(f[0], "1") || strlen(f[1]) >= an || strlen(f[2]) >= cn || strlen(f[3]) >= kn)
		return -1;
	snprintf(addr, an, "%s", f[1]);
	snprintf(client, cn, "%s", f[2]);
	snprintf(campaign, kn, "%s", f[3]);
	return 0;
}

/* ================================================================
 * SPOOL
 *
 * Folders of doc/design.md §4 under one root, opened once as directory file
 * descriptors; every move is renameat(2) between them, so no path is ever
 * built from input.  Names in new/ are producers' and are matched against
 * [A-Za-z0-9][A-Za-z0-9._-]{0,199} before anything is done with them; every
 * other name is ours (<ledger-id>.json, .err, .json.<run-id>).
 * ================================================================ */

/* inbound/ (v15) is a maildir of its own: mail dropped for REPLIES to read
 * (tmp/, then a rename into new/), moved to cur/ once applied.  Folders
 * from unsub/ on are made on open when an older spool lacks them. */
enum { OR_D_TMP, OR_D_NEW, OR_D_DEFER, OR_D_CUR, OR_D_DONE, OR_D_FAILED, OR_D_BAD,
       OR_D_HELD, OR_D_RUN, OR_D_UNSUB, OR_D_INBOUND, OR_D_IN_TMP, OR_D_IN_NEW, OR_D_IN_CUR, OR_NDIRS };
static const char *const or_dir_names[OR_NDIRS] = { "tmp", "new", "defer", "cur", "done",
	"failed", "bad", "held", "run", "unsub", "inbound", "inbound/tmp", "inbound/new", "inbound/cur" };
static int or_dirfd[OR_NDIRS] = { -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1 };
static int or_spool_root = -1;   /* the spool itself: new/ is exchanged within it (or_drop_compact) */

/* Folders others write into: producers' jobs, the CGI's requests, mail
 * dropped for REPLIES (2770: the spool's group may write). */
static int or_dir_shared(int i)
{
	return i == OR_D_TMP || i == OR_D_NEW || i == OR_D_UNSUB || i == OR_D_IN_TMP || i == OR_D_IN_NEW;
}
static int or_dir_dirty[OR_NDIRS];

OR_STATIC int or_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > OR_MAX_NAME || !isalnum((unsigned char)name[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return 0;
	return 1;
}

/* The modes spool/README documents: the spool 2750 when init makes it (setgid:
 * every folder and file below gets the spool's group), tmp/ and new/ 2770
 * (producers in that group drop jobs there), unsub/ 2770 (the web server's
 * CGI drops requests there), the other folders 2750 (outreach's alone; the
 * group may read).  chmod, not mkdir's mode: the umask would take the
 * group's write bit. */
OR_STATIC int or_spool_init(const char *spool)
{
	if (mkdir(spool, 0750) == 0) {
		if (chmod(spool, 02750) == -1)
			return -1;
	} else if (errno != EEXIST) {
		return -1;
	}
	for (int i = 0; i < OR_NDIRS; i++) {
		char p[4200];
		int shared = or_dir_shared(i), made;
		snprintf(p, sizeof p, "%s/%s", spool, or_dir_names[i]);
		if (!(made = mkdir(p, 0750) == 0) && errno != EEXIST)
			return -1;
		if ((shared || made) && chmod(p, shared ? 02770 : 02750) == -1)
			return -1;
	}
	return 0;
}

/* The reason a spool folder could not be opened, and the exit code it
 * means: 75 when the machine is short of descriptors, else 74. */
static int or_spool_open_failed(const char *spool, const char *dir, char *err, size_t errlen)
{
	int e = errno;

	snprintf(err, errlen, "%s%s%s: %s%s", spool, *dir ? "/" : "", dir, strerror(e),
	         e == ENOENT ? " (run 'outreach init' first?)" : "");
	return or_ex_io(e);
}

/* Opens the spool's folders.  Returns 0, or an exit code with err set. */
static int or_spool_open(const char *spool, char *err, size_t errlen)
{
	int root = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (root == -1)
		return or_spool_open_failed(spool, "", err, errlen);
	for (int i = 0; i < OR_NDIRS; i++) {
		if (or_dirfd[i] >= 0)
			close(or_dirfd[i]);
		/* a spool made before unsub/ or inbound/: made here, group-writable
		 * where others drop files (mkdirat's mode loses the group's write bit
		 * to the umask); a chmod that fails leaves a folder they cannot
		 * write: said, not ignored */
		int mode = or_dir_shared(i) ? 02770 : 02750;
		int made = i >= OR_D_UNSUB && mkdirat(root, or_dir_names[i], (mode_t)mode) == 0;
		or_dirfd[i] = made && fchmodat(root, or_dir_names[i], (mode_t)mode, 0) == -1 ? -1 :
		              openat(root, or_dir_names[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (or_dirfd[i] == -1) {
			int rc = or_spool_open_failed(spool, or_dir_names[i], err, errlen);
			close(root);
			return rc;
		}
	}
	if (or_spool_root >= 0)
		close(or_spool_root);
	or_spool_root = root;
	return 0;
}

/* Whether the descriptor held for folder i is still the folder its name
 * gives: new/ is exchanged for a fresh folder now and then (or_drop_compact),
 * and a process that opened the spool before that holds the old one.
 * Reopens it by name if not; 1 when it did. */
static int or_dir_refresh(int i)
{
	struct stat held, named;
	int fd;

	if (or_spool_root < 0 || fstat(or_dirfd[i], &held) == -1 ||
	    fstatat(or_spool_root, or_dir_names[i], &named, AT_SYMLINK_NOFOLLOW) == -1 ||
	    (held.st_dev == named.st_dev && held.st_ino == named.st_ino))
		return 0;
	if ((fd = openat(or_spool_root, or_dir_names[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return 0;
	close(or_dirfd[i]);
	or_dirfd[i] = fd;
	return 1;
}

/* renameat2 from folder from into folder to.  ENOENT may mean the target is
 * a folder removed since it was opened (the new.old a compaction left, once
 * drained): then the rename goes again into the folder the name gives now,
 * so a long enqueue never drops a job into a folder nobody reads.  ENOENT
 * is returned only when the source is gone; a target that cannot be
 * reopened (out of descriptors) is ESTALE, never taken for "gone". */
static int or_rename_into(int from, const char *fname, int to, const char *tname, unsigned flags)
{
	int rc = renameat2(or_dirfd[from], fname, or_dirfd[to], tname, flags), e = errno;
	struct stat st;

	if (rc == -1 && e == ENOENT) {
		if (or_dir_refresh(to))
			return renameat2(or_dirfd[from], fname, or_dirfd[to], tname, flags);
		if (fstatat(or_dirfd[from], fname, &st, AT_SYMLINK_NOFOLLOW) == 0)
			e = ESTALE;   /* the source is there: the target folder is what went */
	}
	errno = e;
	return rc;
}

/* Renames between spool folders; marks the target folder for the next
 * or_spool_sync().  0, or -1 with errno (ENOENT: the source is gone). */
static int or_move(int from, const char *fname, int to, const char *tname)
{
	if (or_rename_into(from, fname, to, tname, 0) == -1)
		return -1;
	or_dir_dirty[to] = 1;
	OR_STEP();
	return 0;
}

/* Removes a file from a spool folder (a job the PostgreSQL ledger holds
 * now); marks the folder for the next or_spool_sync().  0, or -1 with
 * errno (ENOENT: gone already). */
static int or_unlink_at(int dir, const char *name)
{
	if (unlinkat(or_dirfd[dir], name, 0) == -1)
		return -1;
	or_dir_dirty[dir] = 1;
	OR_STEP();
	return 0;
}

/* fsyncs every folder a rename went into since the last call. */
static int or_spool_sync(void)
{
	int rc = 0;

	for (int i = 0; i < OR_NDIRS; i++) {
		if (!or_dir_dirty[i])
			continue;
		if (fsync(or_dirfd[i]) == -1)
			rc = -1;
		or_dir_dirty[i] = 0;
		OR_STEP();
	}
	return rc;
}

/* ---- drop folders made small again ----
 * A folder never shrinks on ext4 (nor on most file systems): once 100,000
 * jobs have passed through new/, it stays 2.9 MB of empty blocks that every
 * run reads twice (the ingest, the reports' count), 1 ms of an idle tick
 * here, a cost that grows with what went before; inbound/new/, read every
 * run, likewise with mail.  After a run has read one of them to its end and
 * left it empty, a folder over OR_NEW_COMPACT bytes is exchanged for a fresh
 * one made like it (or_retired_like) in one renameat2(RENAME_EXCHANGE):
 * the name "new" is one folder or the other at every instant, so a
 * producer's rename by path always lands in a folder that is read.  The old
 * one stays as new.old beside it until the next run, which moves back
 * whatever raced into it and removes it; by then a process that held it
 * open (an enqueue) has had a minute to finish, and or_rename_into() sends
 * a later rename to the fresh folder.  A crash at any step leaves the folder
 * in place and new.old (fresh and empty, or the old folder with what raced
 * in) for that next run.  new/ is compacted under the ingest lock; two runs
 * at inbound/new/ at once are safe too (mkdirat of new.old fails for the
 * second, a drained entry is moved by one of them, a reply read twice is a
 * no-op by its row). */
#define OR_RETIRED "new.old"
#define OR_NEW_COMPACT 65536   /* bytes: 16 blocks, some 1,500 names */

/* The folder new.old sits in beside drop folder dir (new/ or inbound/new/). */
static int or_retired_parent(int dir) { return dir == OR_D_IN_NEW ? or_dirfd[OR_D_INBOUND] : or_spool_root; }

/* OUTREACH_NEW_COMPACT=BYTES (a test seam, doc/design.md §9) sets the size
 * over which a drop folder is compacted: 0 compacts after every read to the
 * end, so the crash walk goes through each step. */
static long long or_new_compact_bytes(void)
{
	const char *v = getenv("OUTREACH_NEW_COMPACT");
	char *end;
	long long n = v && *v ? strtoll(v, &end, 10) : -1;

	return n >= 0 && v && !*end ? n : OR_NEW_COMPACT;
}

/* Before a run reads drop folder dir: what is in its new.old goes back into
 * it (made durable there first), then new.old goes.  A name the folder
 * holds already stays where it is (said once; nothing is replaced), and so
 * does new.old. */
static void or_retired_drain(int dir)
{
	int parent = or_retired_parent(dir);
	int fd = parent < 0 ? -1 : openat(parent, OR_RETIRED, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	DIR *d = fd == -1 ? NULL : fdopendir(fd);
	struct dirent *de;
	int left = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;   /* ENOENT: the usual case */
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (renameat2(dirfd(d), de->d_name, or_dirfd[dir], de->d_name, RENAME_NOREPLACE) == -1) {
			if (errno != ENOENT && !left++)   /* ENOENT: another run moved it */
				or_log(0, "event=spool error=\"%s" OR_RETIRED ": an entry cannot go back into %s/: %s\"",
				       dir == OR_D_IN_NEW ? "inbound/" : "", or_dir_names[dir], strerror(errno));
			continue;
		}
		or_dir_dirty[dir] = 1;
		OR_STEP();
	}
	closedir(d);
	if (or_spool_sync() == -1) {
		or_log(0, "event=spool error=\"fsync %s/: %s\"", or_dir_names[dir], strerror(errno));
		return;   /* new.old stays until its moves are durable */
	}
	if (!left && unlinkat(parent, OR_RETIRED, AT_REMOVEDIR) == 0)
		OR_STEP();   /* ENOTEMPTY: something raced in since; the next run moves it */
}

/* The extended attributes of folder a made those of b, as far as this
 * process may (an ACL: the owner may; a security label: only privilege):
 * what a has set on b, what b has and a lacks (a default ACL inherited
 * from the parent) removed.  Checked after by or_xattrs_same. */
static void or_xattrs_copy(int a, int b)
{
	char names[4096], value[4096];
	ssize_t n = flistxattr(a, names, sizeof names), v;

	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
		if ((v = fgetxattr(a, names + i, value, sizeof value)) >= 0)
			fsetxattr(b, names + i, value, (size_t)v, 0);
	n = flistxattr(b, names, sizeof names);
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
		if (fgetxattr(a, names + i, NULL, 0) == -1 && errno == ENODATA)
			fremovexattr(b, names + i);
}

/* 1 when folders a and b have the same extended attributes with the same
 * values; 0 when not, or when they cannot be read whole (more than 4 KiB
 * of names or of one value). */
static int or_xattrs_same(int a, int b)
{
	char na[4096], nb[4096], va[4096], vb[4096];
	ssize_t la = flistxattr(a, na, sizeof na), lb = flistxattr(b, nb, sizeof nb);
	int ca = 0, cb = 0;

	if (la == -1 || lb == -1)
		return la == -1 && lb == -1 && errno == ENOTSUP;   /* a file system without any */
	for (ssize_t i = 0; i < lb; i += (ssize_t)strlen(nb + i) + 1)
		cb++;
	for (ssize_t i = 0; i < la; i += (ssize_t)strlen(na + i) + 1, ca++) {
		ssize_t x = fgetxattr(a, na + i, va, sizeof va), y = fgetxattr(b, na + i, vb, sizeof vb);
		if (x == -1 || x != y || memcmp(va, vb, (size_t)x))
			return 0;
	}
	return ca == cb;
}

/* Whether folder fd has what the drop folder old (st) has: owner, group and
 * mode (made so where they differ), the same extended attributes with the
 * same values (an ACL, a security label: copied where they differ, which
 * only privilege may do for a label), the same inode flags (dirsync,
 * casefold) and project id.  A fresh folder that cannot be made alike is
 * never put in the old one's place: producers confined by a label or an
 * ACL would be locked out. */
static int or_retired_like(int fd, int old, const struct stat *st)
{
	struct stat f;
	unsigned fo = 0, ff = 0;
	struct fsxattr xo, xf;

	if (fstat(fd, &f) == -1)
		return 0;
	if ((f.st_uid != st->st_uid || f.st_gid != st->st_gid) && fchown(fd, st->st_uid, st->st_gid) == -1)
		return 0;
	/* chmod may drop the setgid bit (a caller outside the group): checked */
	if (fchmod(fd, st->st_mode & 07777) == -1 || fstat(fd, &f) == -1 || f.st_mode != st->st_mode ||
	    f.st_uid != st->st_uid || f.st_gid != st->st_gid)
		return 0;
	if (!or_xattrs_same(old, fd)) {
		or_xattrs_copy(old, fd);
		if (!or_xattrs_same(old, fd))
			return 0;
	}
	/* the flags an administrator sets (chattr); not those the file system
	 * keeps for itself (a big folder is hash-indexed, a small one inline) */
	const unsigned set = FS_SYNC_FL | FS_IMMUTABLE_FL | FS_APPEND_FL | FS_NODUMP_FL | FS_NOATIME_FL |
	                     FS_DIRSYNC_FL | FS_TOPDIR_FL | FS_NOCOW_FL | FS_PROJINHERIT_FL | FS_CASEFOLD_FL |
	                     FS_ENCRYPT_FL | FS_DAX_FL | FS_COMPR_FL | FS_NOCOMP_FL;
	if (ioctl(old, FS_IOC_GETFLAGS, &fo) == 0 &&
	    (ioctl(fd, FS_IOC_GETFLAGS, &ff) == -1 || (fo & set) != (ff & set)))
		return 0;
	if (ioctl(old, FS_IOC_FSGETXATTR, &xo) == 0 &&
	    (ioctl(fd, FS_IOC_FSGETXATTR, &xf) == -1 || xo.fsx_projid != xf.fsx_projid))
		return 0;
	return 1;
}

/* After a run has read drop folder dir (d) to its end: a folder over the
 * size, and with nothing in it at all (a producer's hidden file or a
 * folder would be moved under its feet), is exchanged for a fresh one. */
static void or_drop_compact(int dir, DIR *d)
{
	int parent = or_retired_parent(dir), fd, e;
	struct stat st, named;
	struct dirent *de;

	if (parent < 0 || fstat(or_dirfd[dir], &st) == -1 || (long long)st.st_size <= or_new_compact_bytes() ||
	    fstatat(parent, "new", &named, AT_SYMLINK_NOFOLLOW) == -1 || named.st_ino != st.st_ino ||
	    named.st_dev != st.st_dev)
		return;   /* small, or the folder named "new" is not the one read (another run exchanged it) */
	rewinddir(d);
	for (;;) {
		errno = 0;
		if (!(de = readdir(d)))
			break;
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return;
	}
	if (errno)
		return;   /* a listing that failed part-way is not an empty folder */
	if (mkdirat(parent, OR_RETIRED, 0700) == -1)
		return;   /* EEXIST: the last one is not drained yet */
	OR_STEP();   /* a crash here leaves an empty new.old: removed by the next run */
	fd = openat(parent, OR_RETIRED, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1 || !or_retired_like(fd, or_dirfd[dir], &st) ||
	    renameat2(parent, OR_RETIRED, parent, "new", RENAME_EXCHANGE) == -1) {
		e = errno;
		if (fd >= 0)
			close(fd);
		unlinkat(parent, OR_RETIRED, AT_REMOVEDIR);
		/* EINVAL: the file system cannot exchange */
		or_log(1, "event=spool %s/ not compacted: %s", or_dir_names[dir], strerror(e));
		return;
	}
	OR_STEP();   /* from here new.old is the old folder: the next run drains it */
	if (fsync(parent) == -1)   /* a power cut may undo the exchange: harmless */
		or_log(0, "event=spool error=\"fsync: %s\"", strerror(errno));
	close(or_dirfd[dir]);
	or_dirfd[dir] = fd;   /* the fresh folder, "new" now */
	or_log(1, "event=spool %s/ compacted: %lld bytes exchanged for a fresh folder", or_dir_names[dir],
	       (long long)st.st_size);
}

/* Writes name in dirfd durably: a hidden temp file, write, fsync, then rename
 * (with noreplace, renameat2 RENAME_NOREPLACE: returns 1 and leaves the
 * existing file alone if name exists), then fsync the folder.  0 / 1 / -1.
 * With OR_W_NOSYNC (derived files) the same without either fsync: a reader
 * or a killed process still sees the old file or the new one whole; after a
 * power loss the file may be the old one (or, on a file system that does not
 * flush a file renamed over another, ext4's auto_da_alloc and btrfs do,
 * empty) until it is written again. */
OR_STATIC int or_write_atomic(int dirfd, const char *name, const void *p, size_t n, int flags)
{
	int noreplace = flags & OR_W_NOREPLACE;
	char tmp[64], hex[17];
	int fd, rc;
	const char *c = p;
	size_t left = n;

	if (or_fault_point && !strcmp(or_fault_point, "enospc") && ++or_fault_seen == or_fault_n) {
		errno = ENOSPC;   /* the seam for a full disk (OUTREACH_FAULT=enospc:N) */
		return -1;
	}
	or_random_hex(hex, 8);
	snprintf(tmp, sizeof tmp, ".tmp-%s", hex);
	if ((fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) == -1)
		return -1;
	while (left > 0) {
		ssize_t w = write(fd, c, left);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		c += w;
		left -= (size_t)w;
	}
	/* OR_W_NOSYNC keeps this step (and the rename's) for the crash walk: a
	 * kill here leaves the temporary file, as with the fsync */
	if (!(flags & OR_W_NOSYNC) && fsync(fd) == -1)
		goto fail;
	OR_STEP();
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	rc = noreplace ? renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE)
	               : renameat(dirfd, tmp, dirfd, name);
	if (rc == -1 && noreplace && errno == EEXIST) {
		unlinkat(dirfd, tmp, 0);
		return 1;
	}
	if (rc == -1)
		goto fail;
	OR_STEP();
	if (!(flags & (OR_W_NODIRSYNC | OR_W_NOSYNC)) && fsync(dirfd) == -1)
		return -1;
	return 0;
fail:
	{
		int e = errno;
		if (fd >= 0)
			close(fd);
		unlinkat(dirfd, tmp, 0);
		errno = e;
	}
	return -1;
}

/* Reads a regular file opened at dirfd/name without following links or
 * blocking on FIFOs, up to max bytes.  Returns 0 with *out (caller frees),
 * -1 with a reason in err (errno ENOENT when the file was not there, or
 * the open's own errno when or_errno_transient() says it may work later). */
static int or_read_file_at(int dirfd, const char *name, long max, char **out, size_t *len,
                           char *err, size_t errlen)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	char *buf = NULL;
	size_t got = 0;

	if (fd == -1) {
		int e = errno;
		snprintf(err, errlen, "cannot open: %s", strerror(e));
		errno = e;   /* callers tell a vanished file (ENOENT) or a short machine from a bad one */
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto fail;
	}
	if (st.st_size > max) {
		snprintf(err, errlen, "file is %lld bytes, over the limit of %ld", (long long)st.st_size, max);
		goto fail;
	}
	buf = or_xrealloc(NULL, (size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "read failed: %s", r ? strerror(errno) : "file shrank");
			goto fail;
		}
		got += (size_t)r;
	}
	buf[got] = 0;
	close(fd);
	*out = buf;
	*len = got;
	return 0;
fail:
	free(buf);
	close(fd);
	errno = EINVAL;   /* ENOENT is kept for "gone before it was opened" */
	return -1;
}

/* ================================================================
 * JSON: an in-memory SQLite connection, never the ledger
 *
 * Job files, provider answers and feeds are JSON, and SQLite's JSON functions
 * (json_each, json_set, ->>) are already linked in and well tested, so JSON is
 * parsed and built by SQL on a private ":memory:" connection (or_json_conn_get)
 * rather than by a second parser.  That connection holds no table and never
 * attaches or opens the state database: nothing done here reads or writes the
 * ledger, takes its lock or joins its transactions, and a crash here leaves
 * nothing behind.  The ledger's connection is STORE's alone (or_db, or_q).
 * Untrusted text passes or_json_wellformed before SQLite parses it.
 * ================================================================ */

/* SQLite's allocator, failing into or_oom: a statement then never returns
 * SQLITE_NOMEM to code that would take it for bad data ("not valid JSON"). */
static sqlite3_mem_methods or_sqlite_mem;

static void *or_sqlite_malloc(int n)
{
	void *p = or_sqlite_mem.xMalloc(n);

	if (!p && n > 0)
		or_oom();
	return p;
}

static void *or_sqlite_realloc(void *p, int n)
{
	void *q = or_sqlite_mem.xRealloc(p, n);

	if (!q && n > 0)
		or_oom();
	return q;
}

/* Before SQLite's first use (or_alloc_init calls it): its allocations, for
 * this connection and the ledger's alike, fail into or_oom.  outreach uses
 * SQLite from one thread only (no connection is shared, no thread is
 * started by this file), so the connection mutexes go (MULTITHREAD); and
 * it never reads sqlite3_memory_used, so the global allocation statistics,
 * a mutex and two counters on every malloc, go too (MEMSTATUS).  Together
 * they were about 12 % of the instructions of a send.  (A lookaside five
 * times SQLite's 1200 x 100 changed nothing measurable: left alone.) */
static void or_sqlite_alloc_init(void)
{
	sqlite3_mem_methods m;

	sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &or_sqlite_mem) == SQLITE_OK) {
		m = or_sqlite_mem;
		m.xMalloc = or_sqlite_malloc;
		m.xRealloc = or_sqlite_realloc;
		sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
	}
}

/* Strict RFC 8259 well-formedness, nesting at most OR_JSON_DEPTH deep.
 * SQLite 3.40's parser (Debian 12) accepts some malformed objects, such as
 * {"a":1,{"b":"x"}:2} (a key that is an object ending in a string), and
 * json_each() then reads a wild pointer: no untrusted text reaches SQLite's
 * JSON functions before it passes this check (SQL: json_strict(X)). */
static size_t or_json_ws(const char *s, size_t n, size_t i)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* The value of the four hex digits at s[i], or -1. */
static long or_json_hex4(const char *s, size_t n, size_t i)
{
	long v = 0;

	for (size_t k = i; k < i + 4; k++) {
		if (k >= n || !isxdigit((unsigned char)s[k]))
			return -1;
		v = v * 16 + (isdigit((unsigned char)s[k]) ? s[k] - '0' : (tolower((unsigned char)s[k]) - 'a' + 10));
	}
	return v;
}

/* The end of the string starting at s[i] == '"', or 0 if it is malformed.
 * A \u escape must name a character: a surrogate only as half of a pair
 * (SQLite would turn a lone one into bytes that are not UTF-8). */
static size_t or_json_string_end(const char *s, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c != '\\')
			continue;
		if (++i >= n)
			return 0;
		if (s[i] == 'u') {
			long v = or_json_hex4(s, n, i + 1);
			if (v >= 0xdc00 && v <= 0xdfff)
				return 0;   /* a low surrogate alone */
			if (v >= 0xd800 && v <= 0xdbff) {   /* a high one: its low one must follow */
				long lo = i + 6 < n && s[i + 5] == '\\' && s[i + 6] == 'u' ? or_json_hex4(s, n, i + 7) : -1;
				if (lo < 0xdc00 || lo > 0xdfff)
					return 0;
				i += 6;
			}
			if (v < 0)
				return 0;
			i += 4;
		} else if (!strchr("\"\\/bfnrt", s[i]) || !s[i]) {
			return 0;
		}
	}
	return 0;
}

/* The end of the number starting at s[i], or 0 if it is malformed. */
static size_t or_json_number_end(const char *s, size_t n, size_t i)
{
	size_t d;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		while (i < n && isdigit((unsigned char)s[i]))
			i++;
	else
		return 0;
	if (i < n && s[i] == '.') {
		for (d = ++i; i < n && isdigit((unsigned char)s[i]); i++)
			;
		if (i == d)
			return 0;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < n && isdigit((unsigned char)s[i]); i++)
			;
		if (i == d)
			return 0;
	}
	return i;
}

/* The end of the value starting at s[i] (after white space), or 0. */
static size_t or_json_value_end(const char *s, size_t n, size_t i, int depth)
{
	i = or_json_ws(s, n, i);
	if (i >= n)
		return 0;
	if (s[i] == '"')
		return or_json_string_end(s, n, i);
	if (s[i] == '-' || isdigit((unsigned char)s[i]))
		return or_json_number_end(s, n, i);
	for (const char *const *w = (const char *const[]){ "true", "false", "null", NULL }; *w; w++)
		if (n - i >= strlen(*w) && memcmp(s + i, *w, strlen(*w)) == 0)
			return i + strlen(*w);
	if ((s[i] != '{' && s[i] != '[') || depth >= OR_JSON_DEPTH)
		return 0;
	char close = s[i] == '{' ? '}' : ']';
	i = or_json_ws(s, n, i + 1);
	if (i < n && s[i] == close)
		return i + 1;
	for (;;) {
		if (close == '}') {   /* a member: string key, colon */
			i = or_json_ws(s, n, i);
			if (i >= n || s[i] != '"' || !(i = or_json_string_end(s, n, i)))
				return 0;
			i = or_json_ws(s, n, i);
			if (i >= n || s[i] != ':')
				return 0;
			i++;
		}
		if (!(i = or_json_value_end(s, n, i, depth + 1)))
			return 0;
		i = or_json_ws(s, n, i);
		if (i < n && s[i] == close)
			return i + 1;
		if (i >= n || s[i] != ',')
			return 0;
		i++;
	}
}

OR_STATIC int or_json_wellformed(const char *s, size_t n)
{
	size_t end = or_json_value_end(s, n, 0, 0);

	return end && or_json_ws(s, n, end) == n;
}

static void or_sql_json_strict(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *s = (const char *)sqlite3_value_text(argv[0]);

	(void)argc;
	sqlite3_result_int(ctx, s && or_json_wellformed(s, (size_t)sqlite3_value_bytes(argv[0])));
}

static sqlite3 *or_json_mem;   /* the JSON section's ":memory:" connection, opened on first use */

static sqlite3 *or_json_conn_get(void)
{
	if (!or_json_mem && (sqlite3_open(":memory:", &or_json_mem) != SQLITE_OK ||
	                sqlite3_create_function(or_json_mem, "json_strict", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
	                                        or_sql_json_strict, NULL, NULL) != SQLITE_OK)) {
		fprintf(stderr, "outreach: sqlite: cannot open an in-memory database\n");
		exit(OR_EX_SOFT);
	}
	return or_json_mem;
}

#ifdef OR_TEST   /* or_json_members_sql's */
/* 1 if the JSON text holds a \u0000 escape.  SQLite's json_each() would cut
 * the value at that NUL, so it is refused before parsing. */
static int or_json_has_nul_escape(const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] != '\\')
			continue;
		if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0)
			return 1;
		i++;   /* skip the escaped character, so "\\u0000" is not a NUL */
	}
	return 0;
}
#endif

struct or_member { char *key; char type[8]; char *val; size_t vlen; int nul; };

/* A cached statement on the JSON connection for a literal sql, reset and
 * unbound; a fresh one (finalized by or_jq_done) when the cached one is in
 * use further up the stack.  Parsing every job would otherwise re-prepare. */
static struct { const char *sql; sqlite3_stmt *st; } or_jstmts[32];

static sqlite3_stmt *or_jq(const char *sql)
{
	sqlite3_stmt *st = NULL;
	size_t i;

	for (i = 0; i < sizeof or_jstmts / sizeof *or_jstmts && or_jstmts[i].sql; i++)
		if (or_jstmts[i].sql == sql) {
			if (sqlite3_stmt_busy(or_jstmts[i].st))
				break;
			sqlite3_reset(or_jstmts[i].st);
			sqlite3_clear_bindings(or_jstmts[i].st);
			return or_jstmts[i].st;
		}
	if (sqlite3_prepare_v3(or_json_conn_get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		return NULL;
	if (i < sizeof or_jstmts / sizeof *or_jstmts && !or_jstmts[i].sql) {
		or_jstmts[i].sql = sql;
		or_jstmts[i].st = st;
	}
	return st;
}

/* Done with a statement from or_jq: reset if cached, else finalized. */
static void or_jq_done(sqlite3_stmt *st)
{
	for (size_t i = 0; i < sizeof or_jstmts / sizeof *or_jstmts && or_jstmts[i].sql; i++)
		if (or_jstmts[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	sqlite3_finalize(st);
}

/* One SQL expression evaluated on the JSON connection; caller frees. */
static char *or_json_sql(const char *sql, const char *const *args, int nargs)
{
	sqlite3_stmt *st = or_jq(sql);
	char *out = NULL;

	if (!st)
		return NULL;
	for (int i = 0; i < nargs; i++)
		sqlite3_bind_text(st, i + 1, args[i] ? args[i] : "", -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = or_xstrdup((const char *)sqlite3_column_text(st, 0));
	or_jq_done(st);
	return out;
}

/* The rows of sql over one JSON text (?1 = json) on the JSON connection,
 * as copies, so that nothing of the statement outlives this call: column c
 * of row r is t[r * ncols + c] (its text, NULL for an SQL NULL) and d[…]
 * (its value as a double).  Rows stop at the first error, as a stepping
 * loop would.  0, or -1 with err (SQLite's message) when sql cannot be
 * prepared.  (struct or_json_rows is in outreach.h.) */
static int or_json_rows_get(const char *sql, const char *json, int ncols, struct or_json_rows *out, char *err,
                            size_t errlen)
{
	sqlite3_stmt *st;

	memset(out, 0, sizeof *out);
	out->ncols = ncols;
	if (sqlite3_prepare_v2(or_json_conn_get(), sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(or_json_conn_get()));
		return -1;
	}
	sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		size_t at = (size_t)out->n * (size_t)ncols;
		out->t = or_xrealloc(out->t, sizeof *out->t * (at + (size_t)ncols));
		out->d = or_xrealloc(out->d, sizeof *out->d * (at + (size_t)ncols));
		for (int c = 0; c < ncols; c++) {
			const char *s = (const char *)sqlite3_column_text(st, c);
			out->t[at + (size_t)c] = s ? or_xstrdup(s) : NULL;
			out->d[at + (size_t)c] = sqlite3_column_double(st, c);
		}
		out->n++;
	}
	sqlite3_finalize(st);
	return 0;
}

static const char *or_json_row_t(const struct or_json_rows *r, int row, int c)
{
	return r->t[(size_t)row * (size_t)r->ncols + (size_t)c];
}

static double or_json_row_d(const struct or_json_rows *r, int row, int c)
{
	return r->d[(size_t)row * (size_t)r->ncols + (size_t)c];
}

static void or_json_rows_free(struct or_json_rows *r)
{
	for (size_t i = 0; i < (size_t)r->n * (size_t)r->ncols; i++)
		free(r->t[i]);
	free(r->t);
	free(r->d);
	memset(r, 0, sizeof *r);
}

/* A set of strings on the in-memory connection (a temp table): validate's
 * duplicate check, which must not grow a hash table of its own for 100,000
 * addresses.  or_mem_seen_add: 1 when s is new, 0 when seen before (also 1
 * when SQLite refuses the statement: a check that cannot run flags nothing). */
static void or_mem_seen_reset(void)
{
	sqlite3_exec(or_json_conn_get(), "CREATE TEMP TABLE IF NOT EXISTS seen(a TEXT PRIMARY KEY)", NULL, NULL, NULL);
	sqlite3_exec(or_json_conn_get(), "DELETE FROM seen", NULL, NULL, NULL);
}

static int or_mem_seen_add(const char *s)
{
	sqlite3 *mem = or_json_conn_get();
	sqlite3_stmt *st;
	int added = 1;

	if (sqlite3_prepare_v2(mem, "INSERT INTO seen(a) VALUES(?1) ON CONFLICT DO NOTHING", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, s, -1, SQLITE_STATIC);
		sqlite3_step(st);
		added = sqlite3_changes(mem) != 0;
		sqlite3_finalize(st);
	}
	return added;
}

static void or_members_free(struct or_member *m, int n)
{
	for (int i = 0; i < n; i++) {
		free(m[i].key);
		free(m[i].val);
	}
	free(m);
}

/* The JSON string s[i, end) (its quotes included) unescaped into b, as
 * SQLite's json_each gives it: the text stops at a \u0000 (returns 1 then).
 * The text is well-formed (or_json_wellformed): every escape is one of
 * JSON's, and a surrogate always comes as a pair. */
static int or_json_unescape(const char *s, size_t i, size_t end, struct or_buf *b)
{
	for (i++, end--; i < end;) {
		size_t run = i;
		unsigned char u[4];
		long v;

		while (run < end && s[run] != '\\')
			run++;
		or_buf_add(b, s + i, run - i);
		if (run >= end)
			break;
		i = run + 2;
		switch (s[run + 1]) {
		case 'b': or_buf_add(b, "\b", 1); continue;
		case 'f': or_buf_add(b, "\f", 1); continue;
		case 'n': or_buf_add(b, "\n", 1); continue;
		case 'r': or_buf_add(b, "\r", 1); continue;
		case 't': or_buf_add(b, "\t", 1); continue;
		case 'u': break;
		default: or_buf_add(b, s + run + 1, 1); continue;   /* " \ / */
		}
		v = or_json_hex4(s, end, i);
		i += 4;
		if (v == 0)
			return 1;
		if (v >= 0xd800 && v <= 0xdbff) {   /* and its low half, \uDC00.. */
			v = 0x10000 + ((v - 0xd800) << 10) + (or_json_hex4(s, end, i + 2) - 0xdc00);
			i += 6;
		}
		if (v < 0x80) {
			u[0] = (unsigned char)v;
			or_buf_add(b, (char *)u, 1);
		} else if (v < 0x800) {
			u[0] = (unsigned char)(0xc0 | (v >> 6)), u[1] = (unsigned char)(0x80 | (v & 0x3f));
			or_buf_add(b, (char *)u, 2);
		} else if (v < 0x10000) {
			u[0] = (unsigned char)(0xe0 | (v >> 12)), u[1] = (unsigned char)(0x80 | ((v >> 6) & 0x3f));
			u[2] = (unsigned char)(0x80 | (v & 0x3f));
			or_buf_add(b, (char *)u, 3);
		} else {
			u[0] = (unsigned char)(0xf0 | (v >> 18)), u[1] = (unsigned char)(0x80 | ((v >> 12) & 0x3f));
			u[2] = (unsigned char)(0x80 | ((v >> 6) & 0x3f)), u[3] = (unsigned char)(0x80 | (v & 0x3f));
			or_buf_add(b, (char *)u, 4);
		}
	}
	return 0;
}

/* The JSON text s[i, end) without the white space between its tokens, as
 * SQLite renders a nested value (its strings and numbers as written). */
static void or_json_minify(const char *s, size_t i, size_t end, struct or_buf *b)
{
	while (i < end) {
		size_t run = i;

		if (s[i] == '"') {
			run = or_json_string_end(s, end, i);
		} else {
			while (run < end && s[run] != '"' && s[run] != ' ' && s[run] != '\t' && s[run] != '\n' &&
			       s[run] != '\r')
				run++;
		}
		or_buf_add(b, s + i, run - i);
		i = or_json_ws(s, end, run);
	}
}

/* A number member's type and text as SQLite gives them ("integer" or
 * "real"; 9.90 reads 9.9, 1e2 reads 100.0): SQLite converts, so the text a
 * template shows stays the one it always was.  Numbers are rare in jobs and
 * feeds; strings, the common case, never come here. */
static void or_json_number(const char *s, size_t i, size_t end, struct or_member *m)
{
	sqlite3_stmt *st = or_jq("SELECT json_type(?1), ?1 ->> '$'");
	const char *t = NULL, *v = NULL;

	if (st) {
		sqlite3_bind_text(st, 1, s + i, (int)(end - i), SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			t = (const char *)sqlite3_column_text(st, 0);
			v = (const char *)sqlite3_column_text(st, 1);
		}
	}
	snprintf(m->type, sizeof m->type, "%s", t ? t : "real");
	m->val = or_xstrdup(v ? v : "");
	m->vlen = strlen(m->val);
	if (st)
		or_jq_done(st);
}

/* One member's value s[i, end) into m: its type as SQLite's json_type
 * names it and its value as json_each gives it (the unescaped text of a
 * string, 1 or 0 for true or false, "" for null, the minified JSON text of
 * an object or array). */
static void or_json_member_value(const char *s, size_t i, size_t end, struct or_member *m)
{
	struct or_buf b = { 0 };
	const char *type = s[i] == '"' ? "text" : s[i] == '{' ? "object" : s[i] == '[' ? "array" :
	                   s[i] == 't' ? "true" : s[i] == 'f' ? "false" : s[i] == 'n' ? "null" : NULL;

	if (!type) {
		or_json_number(s, i, end, m);
		return;
	}
	memcpy(m->type, type, strlen(type) + 1);   /* at most "object": fits type[8] */
	if (s[i] == '"')
		m->nul = or_json_unescape(s, i, end, &b);
	else if (s[i] == '{' || s[i] == '[')
		or_json_minify(s, i, end, &b);
	else if (s[i] != 'n')
		or_buf_puts(&b, s[i] == 't' ? "1" : "0");
	m->vlen = b.len;
	m->val = b.s ? b.s : or_xstrdup("");
}

/* The members of a JSON object (or the elements of an array: key = index)
 * as copies: type is SQLite's json_type ("text", "integer", "object", …) and
 * val the unescaped text or JSON text of nested values; nul is set for a
 * string that held \u0000 (its text stops there).  -1 with err if the
 * input is not JSON of the expected kind ("object" or "array").  Read here,
 * after or_json_wellformed, rather than by json_each: that was 7 % of a
 * send's instructions (each job file is read once to send it), and the
 * grammar is already known good.  What it gives is json_each's, byte for
 * byte (or_json_members_sql; tests/fuzz/fuzz-json.c). */
static int or_json_members(const char *json, size_t n, const char *kind, struct or_member **out,
                           int *nout, char *err, size_t errlen)
{
	struct or_member *m = NULL;
	int nm = 0, cap = 0, obj = strcmp(kind, "object") == 0;
	size_t i;

	*out = NULL;
	*nout = 0;
	if (!or_json_wellformed(json, n)) {
		snprintf(err, errlen, "not valid JSON");
		return -1;
	}
	i = or_json_ws(json, n, 0);
	if (i >= n || json[i] != (obj ? '{' : '[')) {
		snprintf(err, errlen, "expected a JSON %s", kind);
		return -1;
	}
	for (i = or_json_ws(json, n, i + 1); json[i] != (obj ? '}' : ']'); i = or_json_ws(json, n, i + 1)) {
		struct or_member *x;
		size_t end;

		if (nm == cap)
			m = or_xrealloc(m, sizeof *m * (size_t)(cap = cap ? 2 * cap : 16));
		x = memset(&m[nm++], 0, sizeof *m);
		if (obj) {
			struct or_buf k = { 0 };
			end = or_json_string_end(json, n, i);
			or_json_unescape(json, i, end, &k);
			x->key = k.s ? k.s : or_xstrdup("");
			i = or_json_ws(json, n, or_json_ws(json, n, end) + 1);   /* past the colon */
		} else {
			char ix[24];
			snprintf(ix, sizeof ix, "%d", nm - 1);
			x->key = or_xstrdup(ix);
		}
		end = or_json_value_end(json, n, i, 1);
		or_json_member_value(json, i, end, x);
		i = or_json_ws(json, n, end);   /* at the comma or the close */
		if (json[i] != ',')
			break;
	}
	*out = m;
	*nout = nm;
	return 0;
}

#ifdef OR_TEST
/* or_json_members as SQLite's json_each reads it: what the native reader
 * above must agree with, byte for byte (tests/fuzz/fuzz-json.c compares the
 * two on every input; built for tests only). */
static int or_json_members_sql(const char *json, size_t n, const char *kind, struct or_member **out,
                           int *nout, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct or_member *m = NULL;
	int nm = 0, rc;

	*out = NULL;
	*nout = 0;
	if (!or_json_wellformed(json, n)) {
		snprintf(err, errlen, "not valid JSON");
		return -1;
	}
	/* well-formed, so the first character says the type (one parse fewer) */
	size_t first = or_json_ws(json, n, 0);
	if (first >= n || json[first] != (strcmp(kind, "object") == 0 ? '{' : '[')) {
		snprintf(err, errlen, "expected a JSON %s", kind);
		return -1;
	}
	/* SQLite's text stops at a NUL, so a member holding \u0000 is found
	 * in its JSON form; only documents that hold the escape at all pay for
	 * that lookup (it parses the document again for every member). */
	if (!(st = or_json_has_nul_escape(json, n)
	           ? or_jq("SELECT key, type, value, CASE WHEN type = 'text' THEN ?1 -> fullkey END FROM json_each(?1)")
	           : or_jq("SELECT key, type, value, NULL FROM json_each(?1)")))
		goto sqlfail;
	sqlite3_bind_text(st, 1, json, (int)n, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		const char *t = (const char *)sqlite3_column_text(st, 1);
		const char *v = (const char *)sqlite3_column_text(st, 2);
		int vl = sqlite3_column_bytes(st, 2);

		m = or_xrealloc(m, sizeof *m * (size_t)(nm + 1));
		m[nm].key = or_xstrdup(k ? k : "");
		snprintf(m[nm].type, sizeof m[nm].type, "%s", t ? t : "null");
		m[nm].val = or_xrealloc(NULL, (size_t)vl + 1);
		if (v)
			memcpy(m[nm].val, v, (size_t)vl);
		m[nm].val[vl] = 0;
		m[nm].vlen = (size_t)vl;
		m[nm].nul = sqlite3_column_type(st, 3) == SQLITE_TEXT &&
		            or_json_has_nul_escape((const char *)sqlite3_column_text(st, 3),
		                                   (size_t)sqlite3_column_bytes(st, 3));
		nm++;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "not valid JSON");
		goto fail;
	}
	or_jq_done(st);
	*out = m;
	*nout = nm;
	return 0;
sqlfail:
	snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(or_json_conn_get()));
fail:
	if (st)
		or_jq_done(st);
	or_members_free(m, nm);
	return -1;
}
#endif

/* json_patch(json_patch(bottom, middle), top) when top is an object (RFC
 * 7396: top's members win, then middle's), else NULL, as NULL when the
 * connection cannot prepare it.  A new string the caller frees. */
static char *or_json_layer(const char *bottom, const char *middle, const char *top)
{
	sqlite3_stmt *st;
	char *out = NULL;

	if (sqlite3_prepare_v2(or_json_conn_get(), "SELECT CASE WHEN json_type(?3) = 'object' THEN "
	                       "json_patch(json_patch(?2, ?1), ?3) END", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, middle, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, bottom, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, top, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = or_xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

/* json with its "id" member set to id (json_set), a new string; NULL when
 * the connection cannot prepare it. */
static char *or_json_set_id(const char *json, const char *id)
{
	sqlite3_stmt *st;
	char *out = NULL;

	if (sqlite3_prepare_v2(or_json_conn_get(), "SELECT json_set(?1, '$.id', ?2)", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			out = or_xstrdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	return out;
}

/* A sequence's follow-up k (0-based in sequence.steps) as a job of its own:
 * json without sequence and not_before, with id, subject (the step's, ""
 * for a reply in the thread), text and html (the step's; an absent one
 * removed: json_patch drops a member set to null) and thread (NULL: none).
 * A new string; NULL when the connection cannot prepare it. */
static char *or_json_followup(const char *json, size_t n, int k, const char *id, const char *thread)
{
	sqlite3_stmt *st;
	char *out = NULL;

	if (sqlite3_prepare_v2(or_json_conn_get(), "SELECT json_patch(json_remove(?1, '$.sequence', '$.not_before', "
	                       "'$.thread'), json_object('id', ?2, 'subject', coalesce(s ->> 'subject', ''), "
	                       "'text', s -> 'text', 'html', s -> 'html', 'thread', ?3)) "
	                       "FROM (SELECT json_extract(?1, '$.sequence.steps[' || ?4 || ']') AS s)",
	                       -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, json, (int)n, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, thread, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, k);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = or_xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

/* At exit: the cached statements finalized and the ":memory:" connection
 * closed (nothing in it outlives the process anyway; this keeps leak
 * checkers quiet). */
static void or_json_close(void)
{
	for (size_t k = 0; k < sizeof or_jstmts / sizeof *or_jstmts && or_jstmts[k].sql; k++)
		sqlite3_finalize(or_jstmts[k].st);
	if (or_json_mem)
		sqlite3_close(or_json_mem);
}

/* ================================================================
 * JOB PARSING AND VALIDATION
 *
 * Job files are untrusted.  JSON is parsed by the JSON section's connection
 * (above); everything else (addresses, windows, header names, placeholders)
 * is checked here.  A validator returns -1 and names the field and the
 * reason; nothing is ever half-accepted.
 * ================================================================ */

/* dot-atom local part characters (RFC 5322 atext) */
static int or_atext(int c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c)) || c >= 0x80;
}

OR_STATIC int or_domain_ok(const char *d)
{
	size_t n = strlen(d), label = 0;
	int dots = 0;

	if (n == 0 || n > 253)
		return 0;
	if (d[0] == '[')   /* address literal: RFC 5321 allows it; outreach sends to names */
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return 0;
			label = 0;
			dots++;
			continue;
		}
		if (!(isalnum(c) || c == '-' || c >= 0x80))
			return 0;
		if (label == 0 && c == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && d[n - 1] != '-' && dots > 0;
}

static int or_local_ok(const char *l, size_t n)
{
	if (n == 0 || n > 64)
		return 0;
	if (l[0] == '"') {   /* quoted-string: printable ASCII, \ escapes */
		if (n < 2 || l[n - 1] != '"')
			return 0;
		for (size_t i = 1; i < n - 1; i++) {
			unsigned char c = (unsigned char)l[i];
			if (c == '\\') {
				if (++i >= n - 1)
					return 0;
				continue;
			}
			if (c == '"' || c < 0x20 || c == 0x7f)
				return 0;
		}
		return 1;
	}
	if (l[0] == '.' || l[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (l[i] == '.') {
			if (l[i + 1] == '.')
				return 0;
		} else if (!or_atext((unsigned char)l[i])) {
			return 0;
		}
	}
	return 1;
}

/* Whether the local part, as a reader sees it (a quoted string without its
 * quotes and backslashes), holds "=?", the opening of an RFC 2047 encoded word.
 * One must not appear in an addr-spec (RFC 2047 §5): a reader that decodes it
 * shows an address other than the one the mail goes to.  No mailbox needs
 * "=?", so even an opening alone is refused, and every "=?" in a header we
 * write starts an encoded word of ours. */
static int or_local_encoded(const char *l, size_t n)
{
	char plain[72];
	size_t j = 0;

	if (n < 2 || l[0] != '"')
		return memmem(l, n, "=?", 2) != NULL;
	for (size_t i = 1; i + 1 < n && j < sizeof plain; i++)
		plain[j++] = l[i] == '\\' && i + 2 < n ? l[++i] : l[i];
	return memmem(plain, j, "=?", 2) != NULL;
}

/* Parses "Name <addr>", "\"Quoted, Name\" <addr>" or "addr".  addr gets the
 * addr-spec as written with the domain lower-cased: the form that goes on the
 * wire (RFC 5321 §2.4: the local part is case-sensitive); name the display
 * name (unquoted) or "".  An encoded word in the addr-spec is refused.  0 / -1. */
OR_STATIC int or_parse_mailbox(const char *in, char *addr, size_t addrlen, char *name, size_t namelen)
{
	char buf[OR_MAX_HEADER + 1];
	char *a = buf, *lt, *at, *e;
	size_t n;

	if (!in || strlen(in) >= sizeof buf || or_has_ctl(in))
		return -1;
	snprintf(buf, sizeof buf, "%s", in);
	while (*a == ' ' || *a == '\t')
		a++;
	e = a + strlen(a);
	while (e > a && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = 0;
	name[0] = 0;
	if (e > a && e[-1] == '>') {
		if (!(lt = strrchr(a, '<')))
			return -1;
		e[-1] = 0;
		*lt = 0;
		/* display name: trim, unquote */
		char *ns = a, *ne = lt;
		while (*ns == ' ' || *ns == '\t')
			ns++;
		while (ne > ns && (ne[-1] == ' ' || ne[-1] == '\t'))
			ne--;
		if (ne - ns >= 2 && *ns == '"' && ne[-1] == '"') {
			size_t j = 0;
			for (char *p = ns + 1; p < ne - 1; p++) {
				if (*p == '\\' && p + 1 < ne - 1)
					p++;
				if (j + 1 >= namelen)
					return -1;   /* too long: refused, never cut inside a character */
				name[j++] = *p;
			}
			name[j] = 0;
		} else {
			if ((size_t)(ne - ns) >= namelen || memchr(ns, '"', (size_t)(ne - ns)) ||
			    memchr(ns, '<', (size_t)(ne - ns)))
				return -1;
			memcpy(name, ns, (size_t)(ne - ns));
			name[ne - ns] = 0;
		}
		a = lt + 1;
	}
	if ((at = strrchr(a, '@')) == NULL || strchr(a, '<') || strchr(a, '>'))
		return -1;
	n = strlen(a);
	if (n >= addrlen || n > OR_MAX_ADDR)
		return -1;
	*at = 0;
	if (!or_local_ok(a, (size_t)(at - a)) || or_local_encoded(a, (size_t)(at - a)) || !or_domain_ok(at + 1))
		return -1;
	or_lower(at + 1);
	*at = '@';
	snprintf(addr, addrlen, "%s", a);
	return 0;
}

/* or_parse_mailbox with addr lower-cased whole: the form addresses are
 * compared and kept in the ledger in (suppression, duplicates, threads). */
OR_STATIC int or_parse_address(const char *in, char *addr, size_t addrlen, char *name, size_t namelen)
{
	if (or_parse_mailbox(in, addr, addrlen, name, namelen))
		return -1;
	or_lower(addr);
	return 0;
}

/* The form addresses are compared in (doc/design.md §6: lower-cased): the local
 * part lower-cased and the domain as A-labels, so "idn@пример.рф" and
 * "idn@xn--e1afmkfd.xn--p1ai" are one address. */
OR_STATIC void or_addr_canon(const char *addr, char *out, size_t n)
{
	const char *at = strrchr(addr, '@');
	char *ascii = NULL;

	snprintf(out, n, "%s", addr);
	if (at && !or_ascii_printable(at + 1)) {
		int rc = idn2_to_ascii_8z(at + 1, &ascii, IDN2_NONTRANSITIONAL);
		if (rc == IDN2_MALLOC)   /* not the address's fault (and a wrong canon misses suppressions) */
			or_oom();
		if (rc == IDN2_OK) {
			snprintf(out, n, "%.*s@%s", (int)(at - addr), addr, ascii);
			idn2_free(ascii);
		}
	}
	or_lower(out);
}

static int or_weekday(const char *s)
{
	static const char *d[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
	for (int i = 0; i < 7; i++)
		if (strncasecmp(s, d[i], 3) == 0)
			return i;
	return -1;
}

static int or_hhmm(const char *s, int *min)
{
	int h, m;
	if (or_digits(s, 2, &h) || s[2] != ':' || or_digits(s + 3, 2, &m) || h > 24 || m > 59 ||
	    (h == 24 && m != 0))
		return -1;
	*min = h * 60 + m;
	return 0;
}

/* days: "Mon-Fri", "Fri-Mon", "Mon,Wed,Fri" (items may be ranges); hours:
 * "HH:MM-HH:MM", end exclusive, wrapping past midnight when end < start. */
OR_STATIC int or_window_parse(struct or_window *w, const char *days, const char *hours,
                              const char *tz, char *err, size_t errlen)
{
	memset(w, 0, sizeof *w);
	w->days = 0x7f;
	w->start_min = 0;
	w->end_min = 24 * 60;
	if (days && *days) {
		char buf[128], *save = NULL, *item;
		if (strlen(days) >= sizeof buf) {
			snprintf(err, errlen, "days too long");
			return -1;
		}
		snprintf(buf, sizeof buf, "%s", days);
		w->days = 0;
		for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
			while (*item == ' ')
				item++;
			size_t il = strlen(item);
			int a = il >= 3 ? or_weekday(item) : -1, b = a;
			if (a >= 0 && il >= 7 && item[3] == '-') {
				b = or_weekday(item + 4);
				if (il > 7 && item[7] != ' ')
					b = -1;
			} else if (a >= 0 && il > 3 && item[3] != ' ') {
				a = -1;
			}
			if (a < 0 || b < 0) {
				snprintf(err, errlen, "days must be like \"Mon-Fri\" or \"Mon,Wed,Fri\"");
				return -1;
			}
			for (int d = a;; d = (d + 1) % 7) {
				w->days |= 1u << d;
				if (d == b)
					break;
			}
		}
	}
	if (hours && *hours) {
		if (strlen(hours) != 11 || hours[5] != '-' || or_hhmm(hours, &w->start_min) ||
		    or_hhmm(hours + 6, &w->end_min) || w->start_min == w->end_min) {
			snprintf(err, errlen, "hours must be like \"09:00-18:00\" (start != end)");
			return -1;
		}
		if (w->end_min == 0)
			w->end_min = 24 * 60;
		if (w->start_min == 24 * 60) {
			snprintf(err, errlen, "hours start must be before 24:00");
			return -1;
		}
	}
	if (tz && *tz) {
		if (!or_tz_valid(tz) || strlen(tz) >= sizeof w->tz) {
			snprintf(err, errlen, "unknown time zone");
			return -1;
		}
		snprintf(w->tz, sizeof w->tz, "%s", tz);
	}
	w->set = 1;
	return 0;
}

OR_STATIC int or_window_open(const struct or_window *w, time_t t, const char *deftz)
{
	struct tm tm;
	int wd, m;

	if (!w->set)
		return 1;
	or_localtime(t, *w->tz ? w->tz : deftz, &tm);
	wd = (tm.tm_wday + 6) % 7;   /* Monday = 0 */
	m = tm.tm_hour * 60 + tm.tm_min;
	if (!(w->days & (1u << wd)))
		return 0;
	if (w->start_min < w->end_min)
		return m >= w->start_min && m < w->end_min;
	return m >= w->start_min || m < w->end_min;
}

/* The earliest moment >= t the window is open.  Openness can only begin at t,
 * at a local midnight (a new weekday) or at the window's start time, so those
 * are the only candidates to try, over the next 8 days. */
OR_STATIC time_t or_window_next(const struct or_window *w, time_t t, const char *deftz)
{
	const char *tz = *w->tz ? w->tz : deftz;
	time_t best = 0;
	int day;

	if (or_window_open(w, t, deftz))
		return t;
	day = or_day_number(t, tz);
	for (int k = 0; k <= 8; k++) {
		/* when the start time falls in a DST gap, the window opens at the
		 * jump, which is the next whole hour */
		time_t c[3] = { or_local_mktime(day + k, 0, tz), or_local_mktime(day + k, w->start_min, tz),
		                or_local_mktime(day + k, (w->start_min / 60 + 1) * 60, tz) };
		for (int i = 0; i < 3; i++)
			if (c[i] > t && (!best || c[i] < best) && or_window_open(w, c[i], deftz))
				best = c[i];
		if (best)
			return best;
	}
	return t + 86400;   /* unreachable for a valid window; never loop forever */
}

static const char *const or_reserved_headers[] = {
	"From", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID", "MIME-Version", "Reply-To",
	"Return-Path", "Received", "DKIM-Signature", "List-Unsubscribe", "List-Unsubscribe-Post",
	"Sender", NULL };

OR_STATIC int or_header_name_ok(const char *name, char *err, size_t errlen)
{
	size_t n = strlen(name);

	if (n == 0 || n > 76) {
		snprintf(err, errlen, "header name must be 1 to 76 characters");
		return -1;
	}
	for (const char *p = name; *p; p++)
		if (*p < 33 || *p > 126 || *p == ':') {
			snprintf(err, errlen, "header name may hold only printable ASCII without ':'");
			return -1;
		}
	for (const char *const *r = or_reserved_headers; *r; r++)
		if (or_streq_ci(name, *r)) {
			snprintf(err, errlen, "header %s is reserved: outreach sets it", *r);
			return -1;
		}
	if (strncasecmp(name, "Content-", 8) == 0 || strncasecmp(name, "X-Outreach-", 11) == 0) {
		snprintf(err, errlen, "header %s is reserved: outreach sets it", name);
		return -1;
	}
	return 0;
}

static const char *const or_job_fields[] = { "id", "client", "campaign", "to", "subject", "text",
	"html", "vars", "headers", "reply_to", "sender", "not_before", "window", "thread", "sequence", NULL };

OR_STATIC void or_job_free(struct or_job *job)
{
	char **s[] = { &job->id, &job->client, &job->campaign, &job->to, &job->subject, &job->text,
	               &job->html, &job->reply_to, &job->sender, &job->thread, &job->in_reply_to, &job->re_subject,
	               &job->message_id, &job->references };
	for (size_t i = 0; i < sizeof s / sizeof *s; i++)
		free(*s[i]);
	if (job->seq)
		for (int i = 0; i < job->seq->nsteps; i++) {
			struct or_step *st = &job->seq->steps[i];
			free(st->after), free(st->subject), free(st->text), free(st->html);
		}
	free(job->seq);
	for (int i = 0; i < job->nvars; i++) {
		free(job->vars[i].key);
		free(job->vars[i].val);
	}
	for (int i = 0; i < job->nheaders; i++) {
		free(job->headers[i].key);
		free(job->headers[i].val);
	}
	free(job->vars);
	free(job->headers);
	memset(job, 0, sizeof *job);
}

#define OR_FAIL(f, ...) do { if ((f) != field) snprintf(field, fieldlen, "%s", f); \
	snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

/* key/value members of a JSON object of strings (numbers too when numbers). */
static int or_job_kv(const struct or_member *m, const char *what, int numbers, struct or_kv **out,
                     int *nout, char *field, size_t fieldlen, char *err, size_t errlen)
{
	struct or_member *mm = NULL;
	int n = 0;

	if (strcmp(m->type, "object") != 0)
		OR_FAIL(what, "must be an object");
	if (or_json_members(m->val, m->vlen, "object", &mm, &n, err, errlen))
		{ snprintf(field, fieldlen, "%s", what); goto fail; }
	*out = or_xrealloc(NULL, sizeof **out * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++) {
		int isnum = !strcmp(mm[i].type, "integer") || !strcmp(mm[i].type, "real");
		snprintf(field, fieldlen, "%s.%.100s", what, mm[i].key);
		for (int j = 0; j < i; j++)
			if (strcmp(mm[j].key, mm[i].key) == 0) {
				snprintf(err, errlen, "given twice");
				goto failf;
			}
		if (strcmp(mm[i].type, "text") != 0 && !(numbers && isnum)) {
			snprintf(err, errlen, "must be a string%s", numbers ? " or a number" : "");
			goto failf;
		}
		if (mm[i].nul || memchr(mm[i].val, 0, mm[i].vlen)) {
			snprintf(err, errlen, "holds a NUL byte");
			goto failf;
		}
		(*out)[i].key = or_xstrdup(mm[i].key);
		(*out)[i].val = or_xstrdup(mm[i].val);
		(*nout)++;
	}
	or_members_free(mm, n);
	return 0;
failf:
	or_members_free(mm, n);
	return -1;
fail:
	or_members_free(mm, n);
	return -1;
}

static int or_job_window(struct or_job *job, const struct or_member *m, char *field, size_t fieldlen,
                         char *err, size_t errlen)
{
	struct or_kv *kv = NULL;
	int n = 0, rc = -1;
	const char *days = NULL, *hours = NULL, *tz = NULL;

	if (or_job_kv(m, "window", 0, &kv, &n, field, fieldlen, err, errlen))
		goto out;
	for (int i = 0; i < n; i++) {
		if (!strcmp(kv[i].key, "days")) days = kv[i].val;
		else if (!strcmp(kv[i].key, "hours")) hours = kv[i].val;
		else if (!strcmp(kv[i].key, "tz")) tz = kv[i].val;
		else {
			snprintf(field, fieldlen, "window.%.100s", kv[i].key);
			snprintf(err, errlen, "unknown field (days, hours, tz)");
			goto out;
		}
	}
	if (or_window_parse(&job->window, days, hours, tz, err, errlen)) {
		snprintf(field, fieldlen, "window");
		goto out;
	}
	rc = 0;
out:
	for (int i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].val);
	}
	free(kv);
	return rc;
}

/* A step's delay: N then bd (business days), d or h; at most 60 days. */
OR_STATIC int or_step_after_parse(const char *s, int *n, char *unit)
{
	char *end;
	long v;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	v = strtol(s, &end, 10);
	if (!strcmp(end, "bd"))
		*unit = 'b';
	else if (!strcmp(end, "d"))
		*unit = 'd';
	else if (!strcmp(end, "h"))
		*unit = 'h';
	else
		return -1;
	if (v < 0 || v > (*unit == 'h' ? 60 * 24 : 60))
		return -1;
	*n = (int)v;
	return 0;
}

/* One step of sequence.steps (m an object): after, subject, text, html. */
static int or_job_step(struct or_step *st, const struct or_member *m, char *field, size_t fieldlen,
                       char *err, size_t errlen)
{
	struct or_kv *kv = NULL;
	int n = 0, rc = -1;
	char f[64];

	snprintf(f, sizeof f, "%s", field);
	if (or_job_kv(m, f, 0, &kv, &n, field, fieldlen, err, errlen))
		return -1;
	for (int i = 0; i < n; i++) {
		char **slot = !strcmp(kv[i].key, "after") ? &st->after : !strcmp(kv[i].key, "subject") ? &st->subject :
		              !strcmp(kv[i].key, "text") ? &st->text : !strcmp(kv[i].key, "html") ? &st->html : NULL;
		snprintf(field, fieldlen, "%s.%.60s", f, kv[i].key);
		if (!slot) {
			snprintf(err, errlen, "unknown field (after, subject, text, html)");
			goto out;
		}
		*slot = kv[i].val;
		kv[i].val = NULL;
	}
	snprintf(field, fieldlen, "%s.after", f);
	if (or_step_after_parse(st->after, &st->after_n, &st->after_unit)) {
		snprintf(err, errlen, "must be Nbd, Nd or Nh (at most 60 days)");
		goto out;
	}
	snprintf(field, fieldlen, "%s.text", f);
	if (!st->text && !st->html) {
		snprintf(err, errlen, "one of text or html is required");
		goto out;
	}
	snprintf(field, fieldlen, "%s.subject", f);
	if (st->subject && (or_has_ctl(st->subject) || strlen(st->subject) > OR_MAX_HEADER)) {
		snprintf(err, errlen, "at most %d bytes, no CR, LF or control characters", OR_MAX_HEADER);
		goto out;
	}
	rc = 0;
out:
	for (int i = 0; i < n; i++)
		free(kv[i].key), free(kv[i].val);
	free(kv);
	return rc;
}

/* sequence.stop_on: reply, bounce, complaint, unsubscribe, domain_reply. */
static int or_job_stop_on(struct or_sequence *q, const struct or_member *m, char *field, size_t fieldlen,
                          char *err, size_t errlen)
{
	static const char *const names[] = { "reply", "bounce", "complaint", "unsubscribe", "domain_reply" };
	struct or_member *e = NULL;
	int n = 0, rc = -1;

	snprintf(field, fieldlen, "sequence.stop_on");
	if (strcmp(m->type, "array") || or_json_members(m->val, m->vlen, "array", &e, &n, err, errlen)) {
		snprintf(err, errlen, "must be an array of strings");
		goto out;
	}
	q->stop_on = 0;
	for (int i = 0; i < n; i++) {
		unsigned bit = 0;
		for (size_t k = 0; k < sizeof names / sizeof *names; k++)
			if (!strcmp(e[i].type, "text") && !strcmp(e[i].val, names[k]))
				bit = 1u << k;
		if (!bit) {
			snprintf(err, errlen, "each is one of reply, bounce, complaint, unsubscribe, domain_reply");
			goto out;
		}
		q->stop_on |= bit;
	}
	rc = 0;
out:
	or_members_free(e, n);
	return rc;
}

/* "sequence": { steps: [...], stop_on: [...], on_auto_reply }. */
static int or_job_sequence(struct or_job *job, const struct or_member *m, char *field, size_t fieldlen,
                           char *err, size_t errlen)
{
	struct or_member *mm = NULL, *steps = NULL;
	int n = 0, ns = 0, rc = -1;
	struct or_sequence *q = job->seq = or_xrealloc(NULL, sizeof *job->seq);

	memset(q, 0, sizeof *q);
	q->stop_on = OR_STOP_DEFAULT;
	snprintf(q->on_auto, sizeof q->on_auto, "pause");
	snprintf(field, fieldlen, "sequence");
	if (strcmp(m->type, "object") || or_json_members(m->val, m->vlen, "object", &mm, &n, err, errlen)) {
		snprintf(err, errlen, "must be an object { steps, stop_on, on_auto_reply }");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		snprintf(field, fieldlen, "sequence.%.60s", mm[i].key);
		if (!strcmp(mm[i].key, "stop_on")) {
			if (or_job_stop_on(q, &mm[i], field, fieldlen, err, errlen))
				goto out;
		} else if (!strcmp(mm[i].key, "on_auto_reply")) {
			if (strcmp(mm[i].type, "text") || (strcmp(mm[i].val, "pause") && strcmp(mm[i].val, "ignore") &&
			                                   strcmp(mm[i].val, "stop"))) {
				snprintf(err, errlen, "must be \"pause\", \"ignore\" or \"stop\"");
				goto out;
			}
			snprintf(q->on_auto, sizeof q->on_auto, "%s", mm[i].val);
		} else if (!strcmp(mm[i].key, "steps")) {
			if (strcmp(mm[i].type, "array") || or_json_members(mm[i].val, mm[i].vlen, "array", &steps, &ns,
			                                                    err, errlen) || ns < 1 || ns > OR_MAX_STEPS - 1) {
				snprintf(err, errlen, "must be an array of 1 to %d steps", OR_MAX_STEPS - 1);
				goto out;
			}
			for (int k = 0; k < ns; k++, q->nsteps++) {
				snprintf(field, fieldlen, "sequence.steps[%d]", k);
				if (or_job_step(&q->steps[k], &steps[k], field, fieldlen, err, errlen)) {
					q->nsteps++;   /* freed with the job */
					goto out;
				}
			}
		} else {
			snprintf(err, errlen, "unknown field (steps, stop_on, on_auto_reply)");
			goto out;
		}
	}
	snprintf(field, fieldlen, "sequence.steps");
	if (!q->nsteps) {
		snprintf(err, errlen, "is required: at least one follow-up");
		goto out;
	}
	rc = 0;
out:
	or_members_free(mm, n);
	or_members_free(steps, ns);
	return rc;
}

/* Checks every {{ placeholder }} of s against the job's vars. */
static int or_job_placeholders(const struct or_job *job, const char *s, const char *f,
                               char *field, size_t fieldlen, char *err, size_t errlen)
{
	struct or_buf b = { 0 };
	int rc;

	if (!s)
		return 0;
	rc = or_render(s, job, 0, &b, err, errlen);
	or_buf_free(&b);
	if (rc)
		snprintf(field, fieldlen, "%s", f);
	return rc;
}

/* Takes one known member (k indexes or_job_fields) into job: the vars,
 * headers and window objects, or one string field. */
static int or_job_member(struct or_job *job, const struct or_member *m, int k, char *field, size_t fieldlen,
                         char *err, size_t errlen)
{
	if (!strcmp(m->key, "vars"))
		return or_job_kv(m, "vars", 1, &job->vars, &job->nvars, field, fieldlen, err, errlen);
	if (!strcmp(m->key, "headers"))
		return or_job_kv(m, "headers", 0, &job->headers, &job->nheaders, field, fieldlen, err, errlen);
	if (!strcmp(m->key, "window"))
		return or_job_window(job, m, field, fieldlen, err, errlen);
	if (!strcmp(m->key, "sequence"))
		return or_job_sequence(job, m, field, fieldlen, err, errlen);
	if (strcmp(m->type, "text") != 0)
		OR_FAIL(m->key, "must be a string");
	if (m->nul || memchr(m->val, 0, m->vlen))
		OR_FAIL(m->key, "holds a NUL byte");
	char **slot[] = { &job->id, &job->client, &job->campaign, &job->to, &job->subject,
	                  &job->text, &job->html, NULL, NULL, &job->reply_to, &job->sender, NULL, NULL,
	                  &job->thread };
	if (k < (int)(sizeof slot / sizeof *slot) && slot[k]) {
		*slot[k] = or_xstrdup(m->val);
	} else if (!strcmp(m->key, "not_before")) {
		if (or_parse_time(m->val, &job->not_before))
			OR_FAIL("not_before", "not an RFC 3339 time");
	}
	return 0;
fail:
	return -1;
}

/* The fields a job cannot do without; campaign defaults to "default". */
static int or_job_check_required(struct or_job *job, char *field, size_t fieldlen, char *err, size_t errlen)
{
	if (!job->client || !*job->client)
		OR_FAIL("client", "is required");
	if (!job->to || !*job->to)
		OR_FAIL("to", "is required");
	if (!job->subject)
		OR_FAIL("subject", "is required");
	if (!job->text && !job->html)
		OR_FAIL("text", "one of text or html is required");
	if (!job->campaign)
		job->campaign = or_xstrdup("default");
	return 0;
fail:
	return -1;
}

/* Each string field's own rules; parses the recipient into addr, rcpt
 * (lower case) and rcpt_domain. */
static int or_job_check_values(struct or_job *job, char *field, size_t fieldlen, char *err, size_t errlen)
{
	if (strlen(job->client) > OR_MAX_LABEL || or_has_ctl(job->client))
		OR_FAIL("client", "at most %d characters, no control characters", OR_MAX_LABEL);
	if (!*job->campaign || strlen(job->campaign) > OR_MAX_LABEL || or_has_ctl(job->campaign))
		OR_FAIL("campaign", "1 to %d characters, no control characters", OR_MAX_LABEL);
	if (job->id && (!*job->id || strlen(job->id) > OR_MAX_ID || or_has_ctl(job->id)))
		OR_FAIL("id", "1 to %d characters, no control characters", OR_MAX_ID);
	if (or_has_ctl(job->to) ||
	    or_parse_mailbox(job->to, job->addr, sizeof job->addr, job->to_name, sizeof job->to_name))
		OR_FAIL("to", "not a valid address (CR, LF, control characters and encoded words are refused)");
	snprintf(job->rcpt, sizeof job->rcpt, "%s", job->addr);
	or_lower(job->rcpt);
	job->rcpt_domain = strchr(job->rcpt, '@') + 1;
	if (job->reply_to) {
		char a[OR_MAX_ADDR + 1], nm2[256];
		if (or_parse_address(job->reply_to, a, sizeof a, nm2, sizeof nm2))
			OR_FAIL("reply_to", "not a valid address");
	}
	if (job->sender && (!*job->sender || strlen(job->sender) > 255 || or_has_ctl(job->sender)))
		OR_FAIL("sender", "must name a sender or a sender domain");
	if (job->thread && (!*job->thread || strlen(job->thread) > OR_MAX_ID || or_has_ctl(job->thread)))
		OR_FAIL("thread", "must be the id or producer id of an earlier job");
	if (or_has_ctl(job->subject) || strlen(job->subject) > OR_MAX_HEADER)
		OR_FAIL("subject", "at most %d bytes, no CR, LF or control characters", OR_MAX_HEADER);
	return 0;
fail:
	return -1;
}

/* Extra header names and values, and var names. */
static int or_job_check_names(struct or_job *job, char *field, size_t fieldlen, char *err, size_t errlen)
{
	for (int i = 0; i < job->nheaders; i++) {
		snprintf(field, fieldlen, "headers.%.100s", job->headers[i].key);
		if (or_header_name_ok(job->headers[i].key, err, errlen))
			goto fail;
		if (strlen(job->headers[i].val) > OR_MAX_HEADER || or_has_ctl(job->headers[i].val))
			OR_FAIL(field, "value over %d bytes or holds CR, LF or control characters", OR_MAX_HEADER);
	}
	for (int i = 0; i < job->nvars; i++) {
		snprintf(field, fieldlen, "vars.%.100s", job->vars[i].key);
		if (!*job->vars[i].key || strspn(job->vars[i].key,
		    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(job->vars[i].key) ||
		    isdigit((unsigned char)job->vars[i].key[0]))
			OR_FAIL(field, "var names are [A-Za-z_][A-Za-z0-9_]*");
	}
	return 0;
fail:
	return -1;
}

/* Every placeholder of subject, text and html names a var, and the
 * rendered subject holds no control character. */
static int or_job_check_templates(struct or_job *job, char *field, size_t fieldlen, char *err, size_t errlen)
{
	if (or_job_placeholders(job, job->subject, "subject", field, fieldlen, err, errlen) ||
	    or_job_placeholders(job, job->text, "text", field, fieldlen, err, errlen) ||
	    or_job_placeholders(job, job->html, "html", field, fieldlen, err, errlen))
		goto fail;
	for (int k = 0; job->seq && k < job->seq->nsteps; k++) {
		const struct or_step *st = &job->seq->steps[k];
		char f[3][48];
		snprintf(f[0], sizeof f[0], "sequence.steps[%d].subject", k);
		snprintf(f[1], sizeof f[1], "sequence.steps[%d].text", k);
		snprintf(f[2], sizeof f[2], "sequence.steps[%d].html", k);
		if (or_job_placeholders(job, st->subject, f[0], field, fieldlen, err, errlen) ||
		    or_job_placeholders(job, st->text, f[1], field, fieldlen, err, errlen) ||
		    or_job_placeholders(job, st->html, f[2], field, fieldlen, err, errlen))
			goto fail;
	}
	if (job->seq && job->thread)
		OR_FAIL("sequence", "a sequence starts a thread: it cannot also be a reply in one (thread)");
	{	/* a var substituted into the subject must not smuggle a line break in */
		struct or_buf b = { 0 };
		int bad = or_render(job->subject, job, 0, &b, err, errlen) || or_has_ctl(b.s ? b.s : "");
		or_buf_free(&b);
		if (bad)
			OR_FAIL("subject", "a var puts a control character into the subject");
	}
	return 0;
fail:
	return -1;
}

/* Parses and validates one job; 0, or -1 with the offending field and the
 * reason.  On success job owns its strings (or_job_free). */
OR_STATIC int or_job_parse(const char *json, size_t n, struct or_job *job, char *field,
                           size_t fieldlen, char *err, size_t errlen)
{
	struct or_member *m = NULL;
	int nm = 0;
	unsigned seen = 0;

	memset(job, 0, sizeof *job);
	field[0] = 0;
	if (!or_utf8_valid(json, n) || memchr(json, 0, n))
		OR_FAIL("", "invalid UTF-8 or a NUL byte");
	if (or_json_members(json, n, "object", &m, &nm, err, errlen))
		{ field[0] = 0; goto fail; }
	for (int i = 0; i < nm; i++) {
		int k = -1;
		for (int j = 0; or_job_fields[j]; j++)
			if (strcmp(m[i].key, or_job_fields[j]) == 0)
				k = j;
		if (k < 0)
			OR_FAIL(m[i].key, "unknown field");
		if (seen & (1u << k))
			OR_FAIL(m[i].key, "given twice");
		seen |= 1u << k;
		if (or_job_member(job, &m[i], k, field, fieldlen, err, errlen))
			goto fail;
	}
	if (or_job_check_required(job, field, fieldlen, err, errlen) ||
	    or_job_check_values(job, field, fieldlen, err, errlen) ||
	    or_job_check_names(job, field, fieldlen, err, errlen) ||
	    or_job_check_templates(job, field, fieldlen, err, errlen))
		goto fail;
	or_members_free(m, nm);
	field[0] = 0;
	return 0;
fail:
	or_members_free(m, nm);
	or_job_free(job);
	return -1;
}

/* The ledger id of a client's producer id: the first 16 hex digits of
 * SHA-256(client NUL producer). */
static void or_ledger_id_of(const char *client, const char *producer, char ledger[OR_ID_HEX + 1])
{
	struct or_buf b = { 0 };

	or_buf_add(&b, client, strlen(client) + 1);
	or_buf_puts(&b, producer);
	or_sha256_hex(b.s, b.len, ledger, OR_ID_HEX);
	or_buf_free(&b);
}

/* The producer id (given, or derived from the content) and the ledger id
 * (16 hex of SHA-256(client NUL producer id)): enqueueing the same content
 * twice gives the same ledger id, so it is sent once. */
OR_STATIC void or_job_ids(const struct or_job *job, char *producer, size_t plen,
                          char ledger[OR_ID_HEX + 1])
{
	struct or_buf b = { 0 };

	if (job->id) {
		snprintf(producer, plen, "%s", job->id);
	} else {
		char h[25];
		const char *parts[] = { job->client, job->campaign, job->rcpt, job->subject,
		                        job->text ? job->text : "", job->html ? job->html : "" };
		for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
			or_buf_add(&b, parts[i], strlen(parts[i]) + 1);
		for (int i = 0; i < job->nvars; i++) {
			or_buf_add(&b, job->vars[i].key, strlen(job->vars[i].key) + 1);
			or_buf_add(&b, job->vars[i].val, strlen(job->vars[i].val) + 1);
		}
		or_sha256_hex(b.s, b.len, h, 24);
		snprintf(producer, plen, "h-%s", h);
		b.len = 0;
	}
	or_buf_free(&b);
	or_ledger_id_of(job->client, producer, ledger);
}

/* A hash of what the recipient would read: two jobs with the same content
 * hash to the same recipient of one client are duplicates. */
static void or_job_content_hash(const struct or_job *job, char out[17])
{
	struct or_buf b = { 0 };
	const char *parts[] = { job->subject, job->text ? job->text : "", job->html ? job->html : "" };

	for (size_t i = 0; i < 3; i++)
		or_buf_add(&b, parts[i], strlen(parts[i]) + 1);
	for (int i = 0; i < job->nvars; i++) {
		or_buf_add(&b, job->vars[i].key, strlen(job->vars[i].key) + 1);
		or_buf_add(&b, job->vars[i].val, strlen(job->vars[i].val) + 1);
	}
	or_sha256_hex(b.s, b.len, out, 16);
	or_buf_free(&b);
}

/* ---- CSV (RFC 4180) ---- */

OR_STATIC void or_csv_free_fields(char **fields, int n)
{
	for (int i = 0; i < n; i++)
		free(fields[i]);
	free(fields);
}

/* One record: 1 with *fields (caller frees), 0 at the end, -1 on an
 * unterminated quote.  c->line is the line the record started on. */
OR_STATIC int or_csv_next(struct or_csv *c, char ***fields, int *nfields, char *err, size_t errlen)
{
	struct or_buf f = { 0 };
	char **v = NULL;
	int n = 0, quoted = 0, started = 0;

	*fields = NULL;
	*nfields = 0;
	if (c->line == 0)
		c->line = 1;
	while (c->p < c->end && (*c->p == '\n' || (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n'))) {
		c->p += *c->p == '\r' ? 2 : 1;   /* skip blank lines */
		c->line++;
	}
	if (c->p >= c->end)
		return 0;
	for (;;) {
		if (c->p >= c->end) {
			if (quoted) {
				snprintf(err, errlen, "unterminated quoted field");
				or_buf_free(&f);
				or_csv_free_fields(v, n);
				return -1;
			}
			break;
		}
		char ch = *c->p++;
		if (quoted) {
			if (ch == '"') {
				if (c->p < c->end && *c->p == '"') {
					or_buf_add(&f, "\"", 1);
					c->p++;
				} else {
					quoted = 0;
				}
			} else {
				if (ch == '\n')
					c->line++;
				or_buf_add(&f, &ch, 1);
			}
			continue;
		}
		if (ch == '"' && !started) {
			quoted = started = 1;
			or_buf_add(&f, "", 0);
			continue;
		}
		if (ch == ',' || ch == '\n' || (ch == '\r' && (c->p >= c->end || *c->p == '\n'))) {
			v = or_xrealloc(v, sizeof *v * (size_t)(n + 1));
			v[n++] = or_xstrdup(f.s ? f.s : "");
			f.len = 0;
			if (f.s)
				f.s[0] = 0;
			started = 0;
			if (ch == ',')
				continue;
			if (ch == '\r' && c->p < c->end)
				c->p++;
			c->line++;
			or_buf_free(&f);
			*fields = v;
			*nfields = n;
			return 1;
		}
		started = 1;
		or_buf_add(&f, &ch, 1);
	}
	v = or_xrealloc(v, sizeof *v * (size_t)(n + 1));
	v[n++] = or_xstrdup(f.s ? f.s : "");
	or_buf_free(&f);
	*fields = v;
	*nfields = n;
	return 1;
}

/* ================================================================
 * MESSAGE BUILDING
 *
 * RFC 5322 / MIME with CRLF line ends, every line <= 998 octets: headers
 * that need it are RFC 2047 encoded words (B encoding, <= 75 characters each,
 * never split inside a UTF-8 sequence), bodies quoted-printable (lines <= 76).
 * Placeholders are replaced before encoding; a missing var or a malformed
 * "{{" is an error, so no email ever carries "{{first_name}}".
 * ================================================================ */

static const char *or_var(const struct or_job *job, const char *name, size_t n)
{
	for (int i = 0; i < job->nvars; i++)
		if (strlen(job->vars[i].key) == n && memcmp(job->vars[i].key, name, n) == 0)
			return job->vars[i].val;
	return NULL;
}

static void or_html_escape(struct or_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': or_buf_puts(b, "&amp;"); break;
		case '<': or_buf_puts(b, "&lt;"); break;
		case '>': or_buf_puts(b, "&gt;"); break;
		case '"': or_buf_puts(b, "&quot;"); break;
		case '\'': or_buf_puts(b, "&#39;"); break;
		default: or_buf_add(b, s, 1);
		}
	}
}

/* Appends tmpl with each {{ name }} replaced by the job's var (HTML-escaped
 * when html).  -1 with err for a missing var or any "{{" that does not open a
 * valid placeholder. */
OR_STATIC int or_render(const char *tmpl, const struct or_job *job, int html, struct or_buf *out,
                        char *err, size_t errlen)
{
	const char *p = tmpl, *o;

	or_buf_add(out, "", 0);
	while ((o = strstr(p, "{{"))) {
		const char *q = o + 2, *name, *val;
		size_t n;

		or_buf_add(out, p, (size_t)(o - p));
		while (*q == ' ')
			q++;
		name = q;
		if (!(isalpha((unsigned char)*q) || *q == '_')) {
			snprintf(err, errlen, "malformed placeholder at \"%.20s\"", o);
			return -1;
		}
		while (isalnum((unsigned char)*q) || *q == '_')
			q++;
		n = (size_t)(q - name);
		while (*q == ' ')
			q++;
		if (q[0] != '}' || q[1] != '}') {
			snprintf(err, errlen, "malformed placeholder at \"%.20s\"", o);
			return -1;
		}
		if (!(val = or_var(job, name, n))) {
			snprintf(err, errlen, "no var '%.*s' for its placeholder", (int)(n > 64 ? 64 : n), name);
			return -1;
		}
		if (html)
			or_html_escape(out, val);
		else
			or_buf_puts(out, val);
		p = q + 2;
	}
	or_buf_puts(out, p);
	return 0;
}


/* Appends a header value: as it is when printable ASCII that fits the line
 * and has no "=?", else as RFC 2047 B encoded words folded with CRLF SP. */
OR_STATIC void or_rfc2047(struct or_buf *b, const char *s, size_t used)
{
	size_t n = strlen(s), i = 0;
	int first = 1, folded = 0;

	if (or_ascii_printable(s) && !strstr(s, "=?") && used + n <= 998) {
		or_buf_add(b, s, n);
		return;
	}
	while (i < n || first) {
		size_t take = 0;
		char enc[80];

		/* A line holds at most 76 characters (RFC 2047 §2): the first word
		 * shares its line with the field name, the others follow a fold's
		 * space.  12 characters of each word are "=?UTF-8?B?" and "?=". */
		size_t room = first && used > 0 ? (used + 16 < 76 ? 76 - used : 16) : 75;
		size_t max = (room - 12) / 4 * 3;
		while (i + take < n && take < max) {
			size_t k = 1;
			unsigned char c = (unsigned char)s[i + take];
			if (c >= 0xf0) k = 4; else if (c >= 0xe0) k = 3; else if (c >= 0xc0) k = 2;
			if (k > n - i - take)
				k = n - i - take;   /* a sequence cut short by the end: never read past it */
			if (take + k > max)
				break;
			take += k;
		}
		if (take == 0 && i < n && first) {   /* not even one character fits beside the field name */
			first = 0;
			folded = 1;
			or_buf_puts(b, "\r\n ");
			continue;
		}
		if (take == 0 && i < n)
			take = 1;   /* cannot happen with 45 bytes of room; never loop forever */
		sodium_bin2base64(enc, sizeof enc, (const unsigned char *)s + i, take,
		                  sodium_base64_VARIANT_ORIGINAL);
		if (!first && !folded)
			or_buf_puts(b, "\r\n ");
		or_buf_printf(b, "=?UTF-8?B?%s?=", enc);
		i += take;
		first = folded = 0;
	}
}

/* Appends s quoted-printable (RFC 2045 §6.7): "\n" and "\r\n" become hard
 * CRLF breaks, lines are at most 76 characters with "=" soft breaks. */
OR_STATIC void or_qp(struct or_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0, n = strlen(s);
	char *o;

	/* written in place, not a buf call a byte (that was 7 % of a send):
	 * each byte gives at most "=XX", a line at most a soft break "=\r\n"
	 * every 25 of them, so 4 a byte is room enough */
	or_buf_reserve(b, n * 4 + 8);
	o = b->s + b->len;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int eol = *p == '\n' || (*p == '\r' && p[1] == '\n');

		if (eol) {
			if (*p == '\r')
				p++;
			*o++ = '\r', *o++ = '\n';
			col = 0;
			continue;
		}
		int next_eol = p[1] == 0 || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
		int plain = (*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !next_eol);
		size_t tn = plain ? 1 : 3;
		if (col + tn > 75) {
			*o++ = '=', *o++ = '\r', *o++ = '\n';
			col = 0;
		}
		if (plain) {
			*o++ = (char)*p;
		} else {
			*o++ = '=', *o++ = hex[*p >> 4], *o++ = hex[*p & 15];
		}
		col += tn;
	}
	b->len = (size_t)(o - b->s);
	b->s[b->len] = 0;
}

/* "Name <addr>" with the name encoded or quoted as it needs. */
static void or_addr_header(struct or_buf *b, const char *hname, const char *name, const char *addr)
{
	or_buf_printf(b, "%s: ", hname);
	if (*name) {
		int plain = 1;
		for (const char *p = name; *p; p++)
			if (!(isalnum((unsigned char)*p) || strchr(" !#$%&'*+-/=?^_`{|}~", *p)))
				plain = 0;
		if (plain || !or_ascii_printable(name) || strstr(name, "=?")) {
			if (plain && !strstr(name, "=?"))
				or_buf_puts(b, name);
			else
				or_rfc2047(b, name, strlen(hname) + 2);
		} else {
			or_buf_add(b, "\"", 1);
			for (const char *p = name; *p; p++) {
				if (*p == '"' || *p == '\\')
					or_buf_add(b, "\\", 1);
				or_buf_add(b, p, 1);
			}
			or_buf_add(b, "\"", 1);
		}
		or_buf_puts(b, " ");
	}
	or_buf_printf(b, "<%s>\r\n", addr);
}

static void or_part(struct or_buf *m, const char *boundary, const char *type, const char *body)
{
	if (boundary)
		or_buf_printf(m, "--%s\r\n", boundary);
	or_buf_printf(m, "Content-Type: text/%s; charset=utf-8\r\n"
	                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n", type);
	or_qp(m, body);
	or_buf_puts(m, "\r\n");
}

/* Builds the whole message into msg (reset first) and its Message-ID (with
 * angle brackets) into msgid.  -1 with err when a placeholder fails. */
OR_STATIC int or_message_build(const struct or_config *cfg, const struct or_job *job,
                               const struct or_sender *snd, const char *ledger_id, time_t date,
                               struct or_buf *msg, char *msgid, size_t msgidlen,
                               char *err, size_t errlen)
{
	struct or_buf subj = { 0 }, text = { 0 }, html = { 0 };
	char datebuf[64], rnd[17], boundary[48], raddr[OR_MAX_ADDR + 1], rname[256];
	int rc = -1;

	msg->len = 0;
	if (or_render(job->subject, job, 0, &subj, err, errlen) ||
	    (job->text && or_render(job->text, job, 0, &text, err, errlen)) ||
	    (job->html && or_render(job->html, job, 1, &html, err, errlen)))
		goto out;
	if (job->message_id && *job->message_id) {   /* a resend: the receiver can tell it is the same message */
		snprintf(msgid, msgidlen, "%s", job->message_id);
	} else {
		or_random_hex(rnd, 8);
		snprintf(msgid, msgidlen, "<%s.%s@%s>", rnd, ledger_id, snd->domain);
	}
	or_fmt_rfc5322(date, datebuf, sizeof datebuf);
	or_buf_printf(msg, "Date: %s\r\nMessage-ID: %s\r\n", datebuf, msgid);
	or_addr_header(msg, "From", snd->from_name, snd->from_addr);
	or_addr_header(msg, "To", job->to_name, job->addr);
	if (job->reply_to && or_parse_mailbox(job->reply_to, raddr, sizeof raddr, rname, sizeof rname) == 0)
		or_addr_header(msg, "Reply-To", rname, raddr);
	if (job->in_reply_to && *job->in_reply_to)
		or_buf_printf(msg, "In-Reply-To: %s\r\nReferences: %s\r\n", job->in_reply_to,
		              job->references && *job->references ? job->references : job->in_reply_to);
	or_buf_puts(msg, "Subject: ");
	if (!*subj.s && job->re_subject) {   /* a reply that gives no subject of its own */
		subj.len = 0;
		or_buf_printf(&subj, "%s%s", strncasecmp(job->re_subject, "Re:", 3) ? "Re: " : "", job->re_subject);
	}
	or_rfc2047(msg, subj.s, 9);
	or_buf_printf(msg, "\r\nMIME-Version: 1.0\r\nX-Outreach-Job: %s\r\n", ledger_id);
	if (*cfg->unsub_url && or_key_loaded) {   /* RFC 8058 one-click; each URI on its own folded line */
		struct or_buf tok = { 0 };
		or_unsub_token(job->rcpt, job->client, job->campaign, &tok);
		or_buf_printf(msg, "List-Unsubscribe: <%s%st=%s>", cfg->unsub_url, strchr(cfg->unsub_url, '?') ? "&" : "?", tok.s);
		if (*cfg->unsub_mailto)
			or_buf_printf(msg, ",\r\n <mailto:%s?subject=unsubscribe%%20%s>", cfg->unsub_mailto, tok.s);
		or_buf_puts(msg, "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
		or_buf_free(&tok);
	}
	for (int i = 0; i < job->nheaders; i++) {
		or_buf_printf(msg, "%s: ", job->headers[i].key);
		or_rfc2047(msg, job->headers[i].val, strlen(job->headers[i].key) + 2);
		or_buf_puts(msg, "\r\n");
	}
	if (job->text && job->html) {   /* "=_" never occurs in quoted-printable: no need to be random */
		snprintf(boundary, sizeof boundary, "=_or_%s", ledger_id);
		or_buf_printf(msg, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
		                   "This is a multi-part message in MIME format.\r\n\r\n", boundary);
		or_part(msg, boundary, "plain", text.s);
		or_part(msg, boundary, "html", html.s);
		or_buf_printf(msg, "--%s--\r\n", boundary);
	} else {
		or_part(msg, NULL, job->text ? "plain" : "html", job->text ? text.s : html.s);
	}
	rc = 0;
out:
	or_buf_free(&subj);
	or_buf_free(&text);
	or_buf_free(&html);
	return rc;
}

/* ================================================================
 * MAIL READING: message headers, verdicts, return dates, DSNs
 *
 * Untrusted input: a message's header as a server or a forwarder gave it.
 * Everything here is a pure function over bytes, bounded in what it keeps.
 * ================================================================ */

/* Nothing here allocates: every value is read in place or into a bounded
 * buffer on the stack, so a hostile header costs time linear in its size
 * and never memory.  The -1 (out of memory) of the API is kept for the
 * callers' sake and is never returned today. */
#define OR_MAIL_MAX_VALUE 4096   /* bytes of one unfolded value read (a longer one is cut) */
#define OR_OOO_MAX_TEXT   8192   /* bytes of a body read for a return date */

/* ---- header fields: walking, unfolding ---- */

/* One header field: its name and its raw value (folds included), pointing
 * into the caller's bytes. */
struct or_mail_field { const char *name; size_t nlen; const char *val; size_t vlen; };

static int or_mail_ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static void or_mail_lower(char *s)
{
	for (; *s; s++)
		*s = (char)or_mail_ascii_lower((unsigned char)*s);
}

/* The index of the LF ending the line at p, or n. */
static size_t or_mail_eol(const char *h, size_t n, size_t p)
{
	const char *lf = p < n ? memchr(h + p, '\n', n - p) : NULL;
	return lf ? (size_t)(lf - h) : n;
}

/* The end of a line's content (before CR LF or LF). */
static size_t or_mail_line_end(const char *h, size_t p, size_t e)
{
	return e > p && h[e - 1] == '\r' ? e - 1 : e;
}

/* The next field from *pp.  1 with *f; 0 at the blank line ending the
 * header (*pp past it: where a body starts) or at the end of the bytes.
 * A line that is no field (no colon, a name with spaces or control bytes)
 * and a continuation line with no field before it are skipped: junk costs
 * nothing but the time to step over it.  NUL bytes are data. */
static int or_mail_next_field(const char *h, size_t n, size_t *pp, struct or_mail_field *f)
{
	size_t p = *pp;

	while (p < n) {
		size_t e = or_mail_eol(h, n, p), le = or_mail_line_end(h, p, e), next = e < n ? e + 1 : n;
		if (le == p) {
			*pp = next;
			return 0;
		}
		size_t c = p;
		while (c < le && h[c] != ':' && (unsigned char)h[c] > ' ' && (unsigned char)h[c] < 127)
			c++;
		size_t nend = c;
		while (c < le && (h[c] == ' ' || h[c] == '\t'))   /* obsolete syntax: "Subject :" */
			c++;
		if (nend == p || c >= le || h[c] != ':') {
			p = next;
			continue;
		}
		f->name = h + p, f->nlen = nend - p, f->val = h + c + 1;
		size_t ve = le;
		for (p = next; p < n && (h[p] == ' ' || h[p] == '\t'); p = e < n ? e + 1 : n) {
			e = or_mail_eol(h, n, p);
			ve = or_mail_line_end(h, p, e);
		}
		f->vlen = ve - (c + 1);
		*pp = p;
		return 1;
	}
	*pp = n;
	return 0;
}

static int or_mail_is(const struct or_mail_field *f, const char *name)
{
	size_t k = strlen(name);
	return f->nlen == k && strncasecmp(f->name, name, k) == 0;
}

/* The value unfolded into out (cap bytes, cut when longer): line breaks
 * dropped (RFC 5322 §2.2.3), every other control byte (NUL, tab, a bare
 * CR) a space, leading and trailing spaces trimmed.  Its length. */
static size_t or_mail_unfold(const char *v, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '\n' || (c == '\r' && i + 1 < n && v[i + 1] == '\n'))
			continue;
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' && o == 0)
			continue;
		out[o++] = (char)c;
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = 0;
	return o;
}

/* s[0..n) into out (cap bytes), cut to fit, NUL-terminated. */
static void or_mail_copy(char *out, size_t cap, const char *s, size_t n)
{
	if (n > cap - 1)
		n = cap - 1;
	memcpy(out, s, n);
	out[n] = 0;
}

/* The value unfolded, lower-cased, into out (a small field: Precedence…). */
static void or_mail_lower_value(const struct or_mail_field *f, char *out, size_t cap)
{
	char v[256];
	size_t k = or_mail_unfold(f->val, f->vlen, v, sizeof v);
	or_mail_copy(out, cap, v, k);
	or_mail_lower(out);
}

/* ---- msg-ids and addresses ---- */

/* The next msg-id ("<…>" with no space or control byte inside, at most
 * OR_MAX_HEADER bytes) of v[*pp..n) into out with its brackets, *pp past
 * it: 0, or -1 when there is none left.  Folds, comments and junk between
 * ids are stepped over; each byte is looked at at most twice. */
static int or_mail_next_msgid(const char *v, size_t n, size_t *pp, char *out)
{
	size_t p = *pp;
	const char *lt;

	while (p < n && (lt = memchr(v + p, '<', n - p))) {
		size_t s = (size_t)(lt - v), e = s + 1;
		while (e < n && v[e] != '>' && v[e] != '<' && (unsigned char)v[e] > ' ' && v[e] != 0x7f)
			e++;
		if (e < n && v[e] == '>' && e > s + 1 && e - s + 1 <= OR_MAX_HEADER) {
			or_mail_copy(out, OR_MAX_HEADER + 1, v + s, e - s + 1);
			*pp = e + 1;
			return 0;
		}
		p = s + 1;
	}
	*pp = n;
	return -1;
}

/* References: every id counted, then the last OR_MAIL_MAX_REFS kept in
 * their order (a thread's newest ids are at the end). */
static void or_mail_refs(const struct or_mail_field *f, struct or_mail *m)
{
	char id[OR_MAX_HEADER + 1];
	size_t p = 0;
	int total = 0, skip;

	while (or_mail_next_msgid(f->val, f->vlen, &p, id) == 0)
		total++;
	skip = total > OR_MAIL_MAX_REFS ? total - OR_MAIL_MAX_REFS : 0;
	for (p = 0, m->nrefs = 0; m->nrefs < OR_MAIL_MAX_REFS && or_mail_next_msgid(f->val, f->vlen, &p, id) == 0;)
		if (skip-- <= 0)
			memcpy(m->refs[m->nrefs++], id, sizeof id);
}

/* A plain local@domain: one "@", both sides non-empty, no space, control
 * or special byte, no empty domain label.  8-bit bytes pass (SMTPUTF8). */
static int or_mail_addr_ok(const char *a)
{
	const char *at = strchr(a, '@');

	if (!at || at == a || !at[1] || strchr(at + 1, '@') || at[1] == '.' || a[strlen(a) - 1] == '.' ||
	    strstr(at, ".."))
		return 0;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p <= ' ' || *p == 0x7f || strchr("<>()[]\\,;:\"", *p))
			return 0;
	return 1;
}

/* The state of a walk over an address list (RFC 5322 §3.4). */
struct or_mail_addrw { char cand[OR_MAX_ADDR + 1]; size_t len; int over, gap, words, angle; };

/* Ends the current mailbox: 1 with its addr-spec in out when it is one. */
static int or_mail_addr_end(struct or_mail_addrw *w, char *out)
{
	int ok = w->len && !w->over && w->words <= 1;

	w->cand[w->len] = 0;
	if (ok && or_mail_addr_ok(w->cand)) {
		memcpy(out, w->cand, w->len + 1);
		or_mail_lower(out);
		return 1;
	}
	w->len = 0, w->over = w->gap = w->words = w->angle = 0;
	return 0;
}

static void or_mail_addr_put(struct or_mail_addrw *w, char c)
{
	if (w->gap || !w->len)
		w->words++, w->gap = 0;
	if (w->len < OR_MAX_ADDR)
		w->cand[w->len++] = c;
	else
		w->over = 1;
}

/* The first mailbox of an address list whose addr-spec is plain, into out
 * lower-cased ("" none).  Display names, quoted strings and comments are
 * skipped; "<…>" wins over the bare words before it; a group's name and an
 * obsolete route ("<@a,@b:x@y>") are dropped.  The address must be one
 * word: "John x@y" and "<x@ex ample.com>" are none. */
static void or_mail_addr(const char *v, size_t n, char *out)
{
	struct or_mail_addrw w = { .len = 0 };
	int quoted = 0;
	size_t depth = 0;

	*out = 0;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (quoted || depth) {
			if (c == '\\')
				i++;
			else if (quoted && c == '"')
				quoted = 0;
			else if (!quoted && c == '(')
				depth++;
			else if (!quoted && c == ')')
				depth--;
			continue;
		}
		if (c == '"')
			quoted = 1;
		else if (c == '(')
			depth = 1;
		else if (c == '<' && !w.angle)
			w.len = 0, w.over = w.gap = w.words = 0, w.angle = 1;
		else if ((c == '>' && w.angle) || ((c == ',' || c == ';') && !w.angle)) {
			if (or_mail_addr_end(&w, out))
				return;
		} else if (c == ':')
			w.len = 0, w.over = w.gap = w.words = 0;   /* a group's name, or a route */
		else if (c == ',' && w.angle)
			;                                           /* inside a route */
		else if ((unsigned char)c <= ' ' || c == 0x7f)
			w.gap = w.len > 0;
		else
			or_mail_addr_put(&w, c);
	}
	if (!w.angle)
		or_mail_addr_end(&w, out);
}

/* Return-Path: <> (comments and spaces aside): the null reverse-path of a
 * bounce or an auto-reply (RFC 5321 §4.5.5). */
static int or_mail_null_path(const char *v, size_t n)
{
	char s[3];
	size_t k = 0, depth = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '(')
			depth++;
		else if (c == ')' && depth)
			depth--;
		else if (!depth && c > ' ') {
			if (k == 2)
				return 0;
			s[k++] = (char)c;
		}
	}
	return k == 2 && s[0] == '<' && s[1] == '>';
}

/* ---- Subject: RFC 2047 encoded-words ---- */

/* Where decoded bytes go: a bounded buffer that remembers being cut. */
struct or_mail_out { char *s; size_t len, cap; int cut; };

/* A decoded byte: a control byte (a CR or LF in an encoded-word, a NUL)
 * becomes a space, so no decoding can put a line break in a value. */
static void or_mail_put(struct or_mail_out *o, unsigned char c)
{
	if (o->len + 1 >= o->cap) {
		o->cut = 1;
		return;
	}
	o->s[o->len++] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
}

static int or_mail_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = or_mail_ascii_lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int or_mail_b64(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Base64 of t[0..n) decoded; bytes not of the alphabet are skipped, "="
 * ends it. */
static void or_mail_b64_decode(const char *t, size_t n, struct or_mail_out *o)
{
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n && t[i] != '='; i++) {
		int v = or_mail_b64((unsigned char)t[i]);
		if (v < 0)
			continue;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		if ((bits += 6) >= 8) {
			bits -= 8;
			or_mail_put(o, (unsigned char)(acc >> bits));
		}
	}
}

/* An encoded-word at s: "=?charset?B|Q?text?=" with no space or control
 * byte in it.  Its length (0: none), the charset's and the text's spans. */
static size_t or_mail_word(const char *s, const char **cs, size_t *csl, char *enc, const char **tx,
                           size_t *txl)
{
	size_t i = 2, c0;

	if (s[0] != '=' || s[1] != '?')
		return 0;
	for (c0 = i; s[i] && s[i] != '?' && (unsigned char)s[i] > ' ' && i - c0 < 64; i++)
		;
	if (s[i] != '?' || i == c0 || !s[i + 1] || !strchr("BbQq", s[i + 1]) || s[i + 2] != '?')
		return 0;
	*cs = s + c0, *csl = i - c0, *enc = (char)or_mail_ascii_lower((unsigned char)s[i + 1]);
	i += 3;
	*tx = s + i;
	for (; s[i] && s[i] != '?' && (unsigned char)s[i] > ' ' && s[i] != 0x7f; i++)
		;
	if (s[i] != '?' || s[i + 1] != '=')
		return 0;
	*txl = (size_t)(s + i - *tx);
	return i + 2;
}

/* UTF-8 and its subset US-ASCII are the charsets decoded (an RFC 2231
 * language suffix, "utf-8*en", allowed); a word in any other is kept as
 * written rather than guessed at. */
static int or_mail_charset_ok(const char *cs, size_t n)
{
	const char *star = memchr(cs, '*', n);
	if (star)
		n = (size_t)(star - cs);
	return (n == 5 && !strncasecmp(cs, "utf-8", 5)) || (n == 4 && !strncasecmp(cs, "utf8", 4)) ||
	       (n == 8 && !strncasecmp(cs, "us-ascii", 8));
}

static void or_mail_word_decode(char enc, const char *t, size_t n, struct or_mail_out *o)
{
	if (enc == 'b') {
		or_mail_b64_decode(t, n, o);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (t[i] == '_')
			or_mail_put(o, ' ');
		else if (t[i] == '=' && i + 2 < n && (hi = or_mail_hex((unsigned char)t[i + 1])) >= 0 &&
		         (lo = or_mail_hex((unsigned char)t[i + 2])) >= 0)
			or_mail_put(o, (unsigned char)(hi * 16 + lo)), i += 2;
		else
			or_mail_put(o, (unsigned char)t[i]);
	}
}

/* A cut value must not end inside a UTF-8 sequence. */
static void or_mail_utf8_trim(struct or_mail_out *o)
{
	size_t k = o->len, back = 0;

	while (k > 0 && back < 4 && ((unsigned char)o->s[k - 1] & 0xc0) == 0x80)
		k--, back++;
	if (k > 0 && (unsigned char)o->s[k - 1] >= 0xc0) {
		unsigned char lead = (unsigned char)o->s[k - 1];
		size_t need = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : 1;
		if (back < need)
			o->len = k - 1;
	}
}

/* The unfolded subject s decoded into out (OR_MAX_HEADER + 1 bytes).  The
 * space between two adjacent encoded-words is dropped (RFC 2047 §6.2); an
 * unterminated or malformed word stays as written. */
static void or_mail_subject(const char *s, char *out)
{
	struct or_mail_out o = { out, 0, OR_MAX_HEADER + 1, 0 };
	size_t i = 0, mark = 0;
	int after_word = 0;

	while (s[i] && !o.cut) {
		const char *cs, *tx;
		char enc;
		size_t csl, txl, wl = or_mail_word(s + i, &cs, &csl, &enc, &tx, &txl);
		if (wl && or_mail_charset_ok(cs, csl)) {
			if (after_word)
				o.len = mark;
			or_mail_word_decode(enc, tx, txl, &o);
			i += wl;
			after_word = 1, mark = o.len;
			continue;
		}
		if (s[i] != ' ')
			after_word = 0;
		or_mail_put(&o, (unsigned char)s[i++]);
	}
	if (o.cut)
		or_mail_utf8_trim(&o);
	while (o.len && out[o.len - 1] == ' ')
		o.len--;
	out[o.len] = 0;
	size_t lead = strspn(out, " ");   /* a decoded word may start with spaces */
	memmove(out, out + lead, o.len - lead + 1);
}

/* ---- Date ---- */

/* A run of 1..max digits at *pp (none after it): 0 with *v, -1. */
static int or_mail_num(const char *s, size_t *pp, int max, int *v, int *ndig)
{
	size_t p = *pp;
	int d = 0;

	*v = 0;
	while (s[p] >= '0' && s[p] <= '9' && d <= max)
		*v = *v * 10 + (s[p++] - '0'), d++;
	if (!d || d > max)
		return -1;
	if (ndig)
		*ndig = d;
	*pp = p;
	return 0;
}

static void or_mail_skip_space(const char *s, size_t *pp)
{
	while (s[*pp] == ' ' || s[*pp] == ',')
		(*pp)++;
}

/* The month of an English name or its abbreviation ("Dec", "December"), 0. */
static int or_mail_month3(const char *s, size_t *pp)
{
	static const char mon[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	size_t p = *pp, k = 0;
	char a[4];

	while (k < 3 && isalpha((unsigned char)s[p + k]))
		a[k] = (char)or_mail_ascii_lower((unsigned char)s[p + k]), k++;
	if (k < 3)
		return 0;
	a[3] = 0;
	const char *at = strstr(mon, a);
	if (!at || (at - mon) % 3)
		return 0;
	while (isalpha((unsigned char)s[p]))
		p++;
	*pp = p;
	return (int)(at - mon) / 3 + 1;
}

/* A zone's offset east of UTC in minutes: +hhmm/-hhmm, UT, GMT, Z, the
 * US names of RFC 822, a military letter (RFC 5322 §4.3: their signs were
 * defined backwards, so read as -0000) and, leniently, anything else or
 * nothing as UTC.  -1 with *bad for a numeric zone that is not one. */
static int or_mail_zone(const char *s, size_t p, int *bad)
{
	static const struct { const char *name; int hours; } us[] = {
		{ "EST", -5 }, { "EDT", -4 }, { "CST", -6 }, { "CDT", -5 },
		{ "MST", -7 }, { "MDT", -6 }, { "PST", -8 }, { "PDT", -7 },
	};
	*bad = 0;
	if (s[p] == '+' || s[p] == '-') {
		int sign = s[p] == '-' ? -1 : 1, v, d;
		size_t q = p + 1;
		if (or_mail_num(s, &q, 4, &v, &d) || d != 4 || v % 100 > 59)
			return *bad = 1, 0;
		return sign * (v / 100 * 60 + v % 100);
	}
	for (size_t i = 0; i < sizeof us / sizeof *us; i++)
		if (!strncasecmp(s + p, us[i].name, 3) && !isalpha((unsigned char)s[p + 3]))
			return us[i].hours * 60;
	return 0;
}

/* RFC 5322 §3.3 date-time with §4.3's obsolete forms (two- and three-digit
 * years, named zones, no seconds), the day name optional, to epoch seconds;
 * 0 when unreadable or before 1970. */
static double or_mail_date(const char *s)
{
	size_t p = 0;
	int d, m, y, yd, hh, mm, ss = 0, bad;

	while (isalpha((unsigned char)s[p]))   /* "Mon," */
		p++;
	or_mail_skip_space(s, &p);
	if (or_mail_num(s, &p, 2, &d, NULL))
		return 0;
	or_mail_skip_space(s, &p);
	if (s[p] == '-')
		p++;
	if (!(m = or_mail_month3(s, &p)))
		return 0;
	if (s[p] == '-')
		p++;
	or_mail_skip_space(s, &p);
	if (or_mail_num(s, &p, 4, &y, &yd))
		return 0;
	y = yd == 2 ? (y < 50 ? 2000 + y : 1900 + y) : yd == 3 ? 1900 + y : y;
	or_mail_skip_space(s, &p);
	if (or_mail_num(s, &p, 2, &hh, NULL) || s[p++] != ':' || or_mail_num(s, &p, 2, &mm, NULL))
		return 0;
	if (s[p] == ':' && (p++, or_mail_num(s, &p, 2, &ss, NULL)))
		return 0;
	or_mail_skip_space(s, &p);
	int zone = or_mail_zone(s, p, &bad);
	int day = or_days_from_civil(y, m, d), y2, m2, d2;
	or_civil_from_days(day, &y2, &m2, &d2);
	if (bad || y < 1970 || y > 9999 || y2 != y || m2 != m || d2 != d || hh > 23 || mm > 59 || ss > 60)
		return 0;
	return (double)day * 86400 + hh * 3600 + mm * 60 + ss - zone * 60;
}

/* ---- Content-Type ---- */

/* type/subtype and the report-type parameter (RFC 6522), lower-cased. */
static void or_mail_content_type(const struct or_mail_field *f, struct or_mail *m)
{
	char v[OR_MAIL_MAX_VALUE];
	size_t n = or_mail_unfold(f->val, f->vlen, v, sizeof v), p = 0, k = 0;

	or_mail_lower(v);
	while (p < n && v[p] != ';' && k + 1 < sizeof m->content_type)
		if (v[p++] != ' ')
			m->content_type[k++] = v[p - 1];
	m->content_type[k] = 0;
	while (p < n) {   /* each "; name = value" */
		while (p < n && (v[p] == ';' || v[p] == ' '))
			p++;
		size_t ns = p;
		while (p < n && v[p] != '=' && v[p] != ';' && v[p] != ' ')
			p++;
		size_t nl = p - ns;
		while (p < n && v[p] == ' ')
			p++;
		if (p >= n || v[p] != '=')
			continue;
		for (p++; p < n && v[p] == ' '; p++)
			;
		char val[64];
		size_t vl = 0;
		int quoted = p < n && v[p] == '"';
		for (p += (size_t)quoted; p < n && (quoted ? v[p] != '"' : v[p] != ';' && v[p] != ' '); p++) {
			if (quoted && v[p] == '\\' && p + 1 < n)
				p++;
			if (vl + 1 < sizeof val)
				val[vl++] = v[p];
		}
		p += (size_t)(p < n && quoted);
		val[vl] = 0;
		if (nl == 11 && !memcmp(v + ns, "report-type", 11) && !m->report_type[0])
			memcpy(m->report_type, val, vl + 1);
	}
}

/* ---- or_mail_parse ---- */

/* The fields read once: the first occurrence wins (a forwarder or a list
 * adds its own below the author's, or a hostile sender repeats them). */
enum { OR_MF_MSGID = 1, OR_MF_IRT = 2, OR_MF_REFS = 4, OR_MF_FROM = 8, OR_MF_REPLYTO = 16, OR_MF_SUBJECT = 32,
       OR_MF_DATE = 64, OR_MF_CTYPE = 128, OR_MF_AUTOSUB = 256, OR_MF_PREC = 512, OR_MF_XPREC = 1024,
       OR_MF_XFR = 2048, OR_MF_RPATH = 4096 };

/* The first msg-id of a field into out. */
static void or_mail_msgid_field(const struct or_mail_field *f, char *out)
{
	size_t p = 0;
	if (or_mail_next_msgid(f->val, f->vlen, &p, out))
		*out = 0;
}

/* The address fields and Subject, Date: unfolded first. */
static void or_mail_text_field(int which, const struct or_mail_field *f, struct or_mail *m)
{
	char v[OR_MAIL_MAX_VALUE];
	size_t n = or_mail_unfold(f->val, f->vlen, v, sizeof v);

	if (which == OR_MF_FROM)
		or_mail_addr(v, n, m->from);
	else if (which == OR_MF_REPLYTO)
		or_mail_addr(v, n, m->reply_to);
	else if (which == OR_MF_XFR)
		or_mail_addr(v, n, m->x_failed_recipients);
	else if (which == OR_MF_SUBJECT)
		or_mail_subject(v, m->subject);
	else if (which == OR_MF_DATE) {
		or_mail_copy(m->date, sizeof m->date, v, n);
		m->date_at = or_mail_date(v);
	}
}

/* Which single field f is (0: none of them). */
static int or_mail_which(const struct or_mail_field *f)
{
	static const struct { const char *name; int bit; } single[] = {
		{ "message-id", OR_MF_MSGID }, { "in-reply-to", OR_MF_IRT }, { "references", OR_MF_REFS },
		{ "from", OR_MF_FROM }, { "reply-to", OR_MF_REPLYTO }, { "subject", OR_MF_SUBJECT },
		{ "date", OR_MF_DATE }, { "content-type", OR_MF_CTYPE }, { "auto-submitted", OR_MF_AUTOSUB },
		{ "precedence", OR_MF_PREC }, { "x-precedence", OR_MF_XPREC },
		{ "x-failed-recipients", OR_MF_XFR }, { "return-path", OR_MF_RPATH },
	};
	for (size_t i = 0; i < sizeof single / sizeof *single; i++)
		if (or_mail_is(f, single[i].name))
			return single[i].bit;
	return 0;
}

/* The fields only looked for: present or not. */
static void or_mail_flags(const struct or_mail_field *f, struct or_mail *m)
{
	m->x_autoreply |= or_mail_is(f, "x-autoreply");
	m->x_autorespond |= or_mail_is(f, "x-autorespond");
	m->x_autoresponder |= or_mail_is(f, "x-autoresponder");
	m->x_auto_response_suppress |= or_mail_is(f, "x-auto-response-suppress");
	m->list_id |= or_mail_is(f, "list-id");
	m->list_unsubscribe |= or_mail_is(f, "list-unsubscribe");
}

static void or_mail_single(int which, const struct or_mail_field *f, struct or_mail *m)
{
	switch (which) {
	case OR_MF_MSGID: or_mail_msgid_field(f, m->message_id); break;
	case OR_MF_IRT: or_mail_msgid_field(f, m->in_reply_to); break;
	case OR_MF_REFS: or_mail_refs(f, m); break;
	case OR_MF_CTYPE: or_mail_content_type(f, m); break;
	case OR_MF_AUTOSUB: or_mail_lower_value(f, m->auto_submitted, sizeof m->auto_submitted); break;
	case OR_MF_PREC: or_mail_lower_value(f, m->precedence, sizeof m->precedence); break;
	case OR_MF_XPREC: or_mail_lower_value(f, m->x_precedence, sizeof m->x_precedence); break;
	case OR_MF_RPATH: m->return_path_null = or_mail_null_path(f->val, f->vlen); break;
	case OR_MF_XFR: m->x_failed_recipients_present = 1; /* fall through */
	default: or_mail_text_field(which, f, m); break;
	}
}

OR_STATIC int or_mail_parse(const char *hdr, size_t n, struct or_mail *m)
{
	struct or_mail_field f;
	size_t p = 0;
	int seen = 0;

	memset(m, 0, sizeof *m);
	while (or_mail_next_field(hdr, n, &p, &f)) {
		int which = or_mail_which(&f);
		m->fields++;
		or_mail_flags(&f, m);
		if (which && !(seen & which))
			or_mail_single(which, &f, m);
		seen |= which;
	}
	return 0;
}

/* ---- or_mail_classify ---- */

/* The first token of a lower-cased value ("auto-replied; owner=x" ->
 * "auto-replied") equals t. */
static int or_mail_token_is(const char *v, const char *t)
{
	size_t k = strlen(t);
	return !strncmp(v, t, k) && (!v[k] || strchr(" ;(\t", v[k]));
}

/* s starts with p, ASCII letters compared without case (other bytes as
 * they are: "Réponse" needs its "é" as written, in either case form given). */
static int or_mail_starts(const char *s, const char *p)
{
	for (; *p; s++, p++)
		if (or_mail_ascii_lower((unsigned char)*s) != or_mail_ascii_lower((unsigned char)*p))
			return 0;
	return 1;
}

static int or_mail_starts_any(const char *s, const char *const *list)
{
	while (*s == ' ')
		s++;
	for (; *list; list++)
		if (or_mail_starts(s, *list))
			return 1;
	return 0;
}

/* The local part of addr (lower-cased already) is one of list, or with
 * prefix set starts with one and a separator ("noreply-billing@"). */
static int or_mail_local_in(const char *addr, const char *const *list, int prefix)
{
	const char *at = strchr(addr, '@');
	size_t l = at ? (size_t)(at - addr) : 0;

	for (; at && *list; list++) {
		size_t k = strlen(*list);
		if (k <= l && !strncmp(addr, *list, k) && (k == l || (prefix && strchr("-_.+", addr[k]))))
			return 1;
	}
	return 0;
}

/* What a mailer-daemon or postmaster titles a bounce (Postfix, Exim, qmail,
 * sendmail, Exchange, Gmail). */
static int or_mail_bounce_subject(const char *s)
{
	static const char *const subj[] = { "undeliver", "delivery status notification", "failure notice",
		"returned mail", "mail delivery failed", "delivery failure", "mail delivery failure",
		"mail system error", "delivery has failed", NULL };
	return or_mail_starts_any(s, subj);
}

/* Out-of-office subjects (Discourse's and EmailEngine's lists, warmbly's
 * phrases), anchored at the start.  "Auto:" alone is too common a word to
 * trust without In-Reply-To. */
static int or_mail_ooo_subject(const struct or_mail *m)
{
	static const char *const subj[] = { "automatic reply", "automatic response", "autoreply", "auto reply",
		"auto-reply", "auto response", "auto-response", "autoresponse", "out of office", "out of the office",
		"out-of-office", "ooo:", "oof:", "autosvar", "automatisk svar", "automatisch antwoord",
		"abwesenheitsnotiz", "abwesend", "r\xc3\xa9ponse automatique", "R\xc3\x89PONSE AUTOMATIQUE",
		"reponse automatique", "respuesta autom\xc3\xa1tica", "respuesta automatica", "fuori sede",
		"risposta non al computer", "risposta automatica", "fr\xc3\xa5nvaro", "FR\xc3\x85NVARO",
		"\xd0\x90\xd0\xb2\xd1\x82\xd0\xbe\xd0\xbe\xd1\x82\xd0\xb2\xd0\xb5\xd1\x82",    /* Автоответ */
		"\xd0\xb0\xd0\xb2\xd1\x82\xd0\xbe\xd0\xbe\xd1\x82\xd0\xb2\xd0\xb5\xd1\x82",    /* автоответ */
		"on vacation", "on holiday", "away from the office", "away from my desk", NULL };
	static const char *const aut[] = { "auto:", NULL };
	return or_mail_starts_any(m->subject, subj) || (m->in_reply_to[0] && or_mail_starts_any(m->subject, aut));
}

static int or_mail_auto_reply_value(const char *v)
{
	return or_mail_token_is(v, "auto_reply") || or_mail_token_is(v, "auto-reply") ||
	       or_mail_token_is(v, "autoreply");
}

static int or_mail_bulk_value(const char *v)
{
	return or_mail_token_is(v, "bulk") || or_mail_token_is(v, "junk") || or_mail_token_is(v, "list");
}

static const char *const or_mail_daemons[] = { "mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster",
	NULL };
static const char *const or_mail_noreply[] = { "noreply", "no-reply", "no_reply", "donotreply", "do-not-reply",
	"do_not_reply", "mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster", NULL };

/* Rules 1 to 3 of the table (doc: sequences design §2.4): reports. */
static int or_mail_report(const struct or_mail *m, const char **rule)
{
	int report = !strcmp(m->content_type, "multipart/report");

	if (report && !strcmp(m->report_type, "delivery-status"))
		return *rule = "report-type=delivery-status", OR_MAIL_BOUNCE;
	if (m->x_failed_recipients_present)
		return *rule = "x-failed-recipients", OR_MAIL_BOUNCE;
	if (or_mail_local_in(m->from, or_mail_daemons, 0) && or_mail_bounce_subject(m->subject))
		return *rule = "mailer-daemon-subject", OR_MAIL_BOUNCE;
	if (report && !strcmp(m->report_type, "feedback-report"))
		return *rule = "report-type=feedback-report", OR_MAIL_COMPLAINT;
	if (report && !strcmp(m->report_type, "disposition-notification"))
		return *rule = "report-type=disposition-notification", OR_MAIL_RECEIPT;
	return -1;
}

/* Rule 4: an out-of-office (or another auto-reply to a person). */
static int or_mail_ooo(const struct or_mail *m, const char **rule)
{
	if (or_mail_token_is(m->auto_submitted, "auto-replied"))
		*rule = "auto-submitted=auto-replied";
	else if (m->x_autoreply)
		*rule = "x-autoreply";
	else if (m->x_autorespond)
		*rule = "x-autorespond";
	else if (m->x_autoresponder)
		*rule = "x-autoresponder";
	else if (or_mail_auto_reply_value(m->precedence))
		*rule = "precedence=auto_reply";
	else if (or_mail_auto_reply_value(m->x_precedence))
		*rule = "x-precedence=auto_reply";
	else if (or_mail_ooo_subject(m))
		*rule = "subject:out-of-office";
	else
		return 0;
	return 1;
}

/* Rule 5: machine mail that is no answer to anyone. */
static int or_mail_auto(const struct or_mail *m, const char **rule)
{
	const char *as = m->auto_submitted;

	if (as[0] && !or_mail_token_is(as, "no"))
		*rule = or_mail_token_is(as, "auto-generated") ? "auto-submitted=auto-generated" :
		        or_mail_token_is(as, "auto-notified") ? "auto-submitted=auto-notified" : "auto-submitted";
	else if (or_mail_bulk_value(m->precedence))
		*rule = or_mail_token_is(m->precedence, "bulk") ? "precedence=bulk" :
		        or_mail_token_is(m->precedence, "junk") ? "precedence=junk" : "precedence=list";
	else if (or_mail_bulk_value(m->x_precedence))
		*rule = "x-precedence=bulk";
	else if (m->list_id)
		*rule = "list-id";
	else if (m->return_path_null)
		*rule = "return-path-null";
	else if (or_mail_local_in(m->from, or_mail_noreply, 1))
		*rule = "noreply-sender";
	else
		return 0;
	return 1;
}

OR_STATIC int or_mail_classify(const struct or_mail *m, const char **rule)
{
	const char *r = "human";
	int c = or_mail_report(m, &r);

	if (c < 0)
		c = or_mail_ooo(m, &r) ? OR_MAIL_OOO : or_mail_auto(m, &r) ? OR_MAIL_AUTO : OR_MAIL_HUMAN;
	if (rule)
		*rule = r;
	return c;
}

OR_STATIC const char *or_mail_class_name(int c)
{
	static const char *const names[] = { "human", "ooo", "auto", "bounce", "complaint", "receipt" };
	return c >= 0 && c < (int)(sizeof names / sizeof *names) ? names[c] : "unknown";
}

/* ---- MIME parts of a body given without its header ---- */

/* The boundary of a multipart body whose header the caller does not have:
 * the first line "--X" with X of RFC 2046 bchars, 1 to 70 of them, not
 * ending in a space (a signature's "-- " is none).  Its length, 0. */
static size_t or_mime_boundary(const char *b, size_t n, char *out)
{
	static const char bchars[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ";

	for (size_t p = 0; p < n;) {
		size_t e = or_mail_eol(b, n, p), le = or_mail_line_end(b, p, e), k = 0;
		if (le - p >= 3 && b[p] == '-' && b[p + 1] == '-') {
			while (p + 2 + k < le && k <= 70 && b[p + 2 + k] && strchr(bchars, b[p + 2 + k]))
				k++;
			if (p + 2 + k == le && k >= 1 && k <= 70 && b[le - 1] != ' ') {
				memcpy(out, b + p + 2, k);
				out[k] = 0;
				return k;
			}
		}
		p = e < n ? e + 1 : n;
	}
	return 0;
}

/* The line at p is "--boundary" or "--boundary--" (then only spaces):
 * 1, 2 for the closing one, 0 not. */
static int or_mime_is_boundary(const char *b, size_t p, size_t le, const char *bd, size_t bl)
{
	if (le - p < 2 + bl || b[p] != '-' || b[p + 1] != '-' || memcmp(b + p + 2, bd, bl))
		return 0;
	size_t q = p + 2 + bl;
	int close = le - q >= 2 && b[q] == '-' && b[q + 1] == '-';
	for (q += close ? 2 : 0; q < le; q++)
		if (b[q] != ' ' && b[q] != '\t')
			return 0;
	return 1 + close;
}

/* The next part from *pp: [*s, *e) holds its header and body, up to the
 * next boundary line or the end of the bytes (a cut part is read as far as
 * it goes).  0 when no part is left. */
static int or_mime_next_part(const char *b, size_t n, const char *bd, size_t bl, size_t *pp, size_t *s,
                             size_t *e)
{
	size_t p = *pp;
	int open = 0;

	while (p < n && !open) {   /* to the line opening the part */
		size_t eol = or_mail_eol(b, n, p);
		int k = or_mime_is_boundary(b, p, or_mail_line_end(b, p, eol), bd, bl);
		if (k == 2)
			return *pp = n, 0;
		open = k == 1;
		p = eol < n ? eol + 1 : n;
	}
	if (!open)
		return *pp = n, 0;
	*s = p;
	while (p < n) {
		size_t eol = or_mail_eol(b, n, p);
		if (or_mime_is_boundary(b, p, or_mail_line_end(b, p, eol), bd, bl))
			break;
		p = eol < n ? eol + 1 : n;
	}
	*e = *pp = p;
	return 1;
}

/* A part's Content-Type (type/subtype, lower-cased; "text/plain" when it
 * has none, as RFC 2045 says) and Content-Transfer-Encoding; *body where
 * its body starts.  1 when it has either field, 0 when it has neither. */
static int or_mime_part_head(const char *b, size_t s, size_t e, char *type, size_t tcap, char *cte,
                              size_t ccap, size_t *body)
{
	struct or_mail_field f;
	size_t p = 0;
	int have_type = 0;

	or_mail_copy(type, tcap, "text/plain", 10);
	*cte = 0;
	while (or_mail_next_field(b + s, e - s, &p, &f)) {
		char v[256];
		if (!have_type && or_mail_is(&f, "content-type")) {
			or_mail_lower_value(&f, v, sizeof v);
			size_t k = strcspn(v, "; ");
			or_mail_copy(type, tcap, v, k);
			have_type = 1;
		} else if (!*cte && or_mail_is(&f, "content-transfer-encoding")) {
			or_mail_lower_value(&f, v, sizeof v);
			or_mail_copy(cte, ccap, v, strcspn(v, "; "));
		}
	}
	*body = s + p;
	return have_type || *cte;
}

/* ---- or_dsn_parse ---- */

/* The value's first token, lower-cased, into out. */
static void or_dsn_token(const struct or_mail_field *f, char *out, size_t cap)
{
	char v[256];
	or_mail_lower_value(f, v, sizeof v);
	or_mail_copy(out, cap, v, strcspn(v, " ;("));
}

/* "5.1.1": three dot-separated numbers (RFC 3464 §2.3.4), else "". */
static void or_dsn_status(const struct or_mail_field *f, char *out, size_t cap)
{
	int a, b, c, len = 0;
	char v[64];

	or_dsn_token(f, v, sizeof v);
	if (sscanf(v, "%1d.%3d.%3d%n", &a, &b, &c, &len) == 3 && !v[len] && a >= 2 && a <= 5 &&
	    strspn(v, "0123456789.") == (size_t)len)
		or_mail_copy(out, cap, v, (size_t)len);
	else
		*out = 0;
}

/* "rfc822; user@example.com": the address after the type, lower-cased. */
static void or_dsn_rcpt(const struct or_mail_field *f, char *out)
{
	char v[OR_MAIL_MAX_VALUE];
	size_t n = or_mail_unfold(f->val, f->vlen, v, sizeof v);
	const char *semi = memchr(v, ';', n);
	const char *a = semi ? semi + 1 : v;

	or_mail_addr(a, n - (size_t)(a - v), out);
}

/* Diagnostic-Code unfolded, tabs made spaces and other control bytes
 * dropped (it is logged and shown), cut to fit. */
static void or_dsn_diag(const struct or_mail_field *f, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < f->vlen && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)f->val[i];
		if (c == '\t')
			c = ' ';
		if ((c < 0x20 || c == 0x7f) || (c == ' ' && (o == 0 || out[o - 1] == ' ')))
			continue;
		out[o++] = (char)c;
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = 0;
}

/* One block of per-recipient fields (RFC 3464 §2.3); 1 when it names a
 * recipient.  The per-message block before it names none. */
static int or_dsn_block(const char *b, size_t n, size_t *pp, struct or_dsn *d)
{
	char final[OR_MAX_ADDR + 1] = "", orig[OR_MAX_ADDR + 1] = "";
	struct or_dsn x = { .hard = 0 };
	struct or_mail_field f;
	int seen = 0;

	while (or_mail_next_field(b, n, pp, &f)) {
		if (!(seen & 1) && or_mail_is(&f, "final-recipient"))
			or_dsn_rcpt(&f, final), seen |= 1;
		else if (!(seen & 2) && or_mail_is(&f, "original-recipient"))
			or_dsn_rcpt(&f, orig), seen |= 2;
		else if (!(seen & 4) && or_mail_is(&f, "action"))
			or_dsn_token(&f, x.action, sizeof x.action), seen |= 4;
		else if (!(seen & 8) && or_mail_is(&f, "status"))
			or_dsn_status(&f, x.status, sizeof x.status), seen |= 8;
		else if (!(seen & 16) && or_mail_is(&f, "diagnostic-code"))
			or_dsn_diag(&f, x.diag, sizeof x.diag), seen |= 16;
	}
	if (!final[0] && !orig[0])
		return 0;
	memcpy(x.rcpt, final[0] ? final : orig, sizeof x.rcpt);
	memcpy(x.orig_msgid, d->orig_msgid, sizeof x.orig_msgid);
	x.hard = !strcmp(x.action, "failed") && x.status[0] == '5';
	*d = x;
	return 1;
}

/* The delivery-status part's first recipient block: 1 found. */
static int or_dsn_status_part(const char *b, size_t n, struct or_dsn *d)
{
	size_t p = 0;

	while (p < n)   /* each block ends at a blank line; or_mail_next_field steps past it */
		if (or_dsn_block(b, n, &p, d))
			return 1;
	return 0;
}

/* The returned message's header part: its first Message-ID. */
static void or_dsn_headers_part(const char *b, size_t n, struct or_dsn *d)
{
	struct or_mail_field f;
	size_t p = 0;

	while (or_mail_next_field(b, n, &p, &f))
		if (or_mail_is(&f, "message-id")) {
			or_mail_msgid_field(&f, d->orig_msgid);
			return;
		}
}

OR_STATIC int or_dsn_parse(const char *body, size_t n, struct or_dsn *d)
{
	char bd[72], type[64], cte[32];
	size_t bl = or_mime_boundary(body, n, bd), p = 0, s, e, at;
	int found = 0, headers = 0;

	memset(d, 0, sizeof *d);
	while (bl && or_mime_next_part(body, n, bd, bl, &p, &s, &e)) {
		or_mime_part_head(body, s, e, type, sizeof type, cte, sizeof cte, &at);
		if (!found && (!strcmp(type, "message/delivery-status") ||
		               !strcmp(type, "message/global-delivery-status")))
			found = or_dsn_status_part(body + at, e - at, d);
		else if (!headers && (!strcmp(type, "text/rfc822-headers") || !strcmp(type, "message/rfc822") ||
		                      !strcmp(type, "message/global") || !strcmp(type, "message/global-headers"))) {
			or_dsn_headers_part(body + at, e - at, d);
			headers = 1;
		}
	}
	if (!found)
		memset(d, 0, sizeof *d);
	return found;
}

/* ---- or_ooo_return_day: the text ---- */

/* Quoted-printable (RFC 2045 §6.7) decoded: =XX and soft line breaks; a
 * "=" that is neither stays. */
static void or_ooo_qp(const char *t, size_t n, struct or_mail_out *o)
{
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (t[i] != '=')
			or_mail_put(o, (unsigned char)t[i]);
		else if (i + 1 < n && t[i + 1] == '\n')
			i++;
		else if (i + 2 < n && t[i + 1] == '\r' && t[i + 2] == '\n')
			i += 2;
		else if (i + 2 < n && (hi = or_mail_hex((unsigned char)t[i + 1])) >= 0 &&
		         (lo = or_mail_hex((unsigned char)t[i + 2])) >= 0)
			or_mail_put(o, (unsigned char)(hi * 16 + lo)), i += 2;
		else
			or_mail_put(o, '=');
	}
}

/* Base64 and nothing else (people's text has spaces; base64 has none). */
static int or_ooo_looks_base64(const char *t, size_t n)
{
	size_t chars = 0;

	for (size_t i = 0; i < n; i++) {
		if (t[i] == '\r' || t[i] == '\n')
			continue;
		if (or_mail_b64((unsigned char)t[i]) < 0 && t[i] != '=')
			return 0;
		chars++;
	}
	return chars >= 16;
}

/* A soft line break or an upper-case =XX: quoted-printable. */
static int or_ooo_looks_qp(const char *t, size_t n)
{
	for (const char *p = t; (p = memchr(p, '=', n - (size_t)(p - t))) && p + 2 < t + n; p++)
		if (p[1] == '\n' || (p[1] == '\r' && p[2] == '\n') ||
		    (isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]) && !islower((unsigned char)p[1]) &&
		     !islower((unsigned char)p[2])))
			return 1;
	return 0;
}

/* t[0..n) decoded by its transfer encoding; cte NULL when unknown (the
 * caller gave a body without its header): then guessed. */
static void or_ooo_decode(const char *t, size_t n, const char *cte, struct or_mail_out *o)
{
	int b64 = cte ? !strcmp(cte, "base64") : or_ooo_looks_base64(t, n);
	int qp = cte ? !strcmp(cte, "quoted-printable") : !b64 && or_ooo_looks_qp(t, n);

	if (b64)
		or_mail_b64_decode(t, n, o);
	else if (qp)
		or_ooo_qp(t, n, o);
	else
		for (size_t i = 0; i < n; i++)
			or_mail_put(o, (unsigned char)t[i]);
}

/* The text of a body to look for a return date in: a multipart body's
 * first text part (nested multiparts followed, 4 deep), else the body.  A
 * "--" line only counts as a boundary when a Content- field follows it: an
 * "-----Original Message-----" line is no MIME structure. */
static void or_ooo_text(const char *t, size_t n, struct or_mail_out *o)
{
	char bd[72], type[64], cte[32];

	for (int depth = 0; depth < 4; depth++) {
		size_t bl = or_mime_boundary(t, n, bd), p = 0, s, e, at;
		int inner = 0, first = 1;
		while (bl && or_mime_next_part(t, n, bd, bl, &p, &s, &e)) {
			int head = or_mime_part_head(t, s, e, type, sizeof type, cte, sizeof cte, &at);
			if (first && !head)
				break;
			first = 0;
			if (!strncmp(type, "multipart/", 10)) {
				t += at, n = e - at, inner = 1;
				break;
			}
			if (!strncmp(type, "text/", 5)) {
				or_ooo_decode(t + at, e - at, cte, o);
				return;
			}
		}
		if (!inner)
			break;
	}
	or_ooo_decode(t, n, NULL, o);
}

/* Copies the UTF-8 character at s[*i] lower-cased for the Latin-1 and
 * Cyrillic capitals (É é, Д д, Ё ё), the rest as it is. */
static void or_ooo_lower_char(const unsigned char *s, size_t n, size_t *i, struct or_mail_out *o)
{
	unsigned char c = s[*i], d = *i + 1 < n ? s[*i + 1] : 0;

	if (c == 0xc3 && d >= 0x80 && d <= 0x9e && d != 0x97)
		or_mail_put(o, c), or_mail_put(o, d + 0x20), (*i)++;
	else if (c == 0xd0 && d >= 0x90 && d <= 0x9f)
		or_mail_put(o, 0xd0), or_mail_put(o, d + 0x20), (*i)++;
	else if (c == 0xd0 && d >= 0xa0 && d <= 0xaf)
		or_mail_put(o, 0xd1), or_mail_put(o, d - 0x20), (*i)++;
	else if (c == 0xd0 && d == 0x81)
		or_mail_put(o, 0xd1), or_mail_put(o, 0x91), (*i)++;
	else
		or_mail_put(o, (unsigned char)or_mail_ascii_lower(c));
}

/* The text made easy to match: lower-cased, HTML tags and &nbsp; made
 * spaces, a typographic apostrophe made "'", every run of white space
 * (NBSP and control bytes too) one space. */
static size_t or_ooo_normalize(const char *t, size_t n, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)t;
	struct or_mail_out o = { out, 0, cap, 0 };
	int space = 1;

	for (size_t i = 0; i < n && !o.cut; i++) {
		const char *gt;
		size_t ws = 0;
		if (s[i] <= ' ' || s[i] == 0x7f)
			ws = 1;
		else if (s[i] == 0xc2 && i + 1 < n && s[i + 1] == 0xa0)
			ws = 2;
		else if (s[i] == '&' && n - i >= 6 && !strncasecmp(t + i, "&nbsp;", 6))
			ws = 6;
		else if (s[i] == '<' && i + 1 < n && (isalpha(s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '!') &&
		         (gt = memchr(t + i, '>', n - i < 512 ? n - i : 512)))   /* bounded: "<<<<" stays linear */
			ws = (size_t)(gt - (t + i)) + 1;
		if (ws) {
			if (!space)
				or_mail_put(&o, ' ');
			space = 1;
			i += ws - 1;
			continue;
		}
		space = 0;
		if (s[i] == 0xe2 && n - i >= 3 && s[i + 1] == 0x80 && s[i + 2] == 0x99)
			or_mail_put(&o, '\''), i += 2;
		else
			or_ooo_lower_char(s, n, &i, &o);
	}
	out[o.len] = 0;
	return o.len;
}
/* ---- or_ooo_return_day: dates and cues ---- */

/* A letter for word boundaries: ASCII or any byte of a UTF-8 sequence. */
static int or_ooo_letter(unsigned char c) { return isalpha(c) || c >= 0x80; }
static int or_ooo_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* A run of digits at p of min..max of them: its value, *end past it; -1. */
static int or_ooo_num(const char *s, size_t p, int min, int max, size_t *end)
{
	int v = 0, k = 0;

	while (or_ooo_digit((unsigned char)s[p + (size_t)k]) && k <= max)
		v = v * 10 + (s[p + (size_t)k] - '0'), k++;
	if (k < min || k > max)
		return -1;
	*end = p + (size_t)k;
	return v;
}

/* Month names as the normalised text has them (lower case, UTF-8): EN DE
 * FR ES NL, Russian in the genitive a date uses ("8 декабря"). */
static const struct { const char *name; int month; } or_ooo_months[] = {
	{ "january", 1 }, { "jan", 1 }, { "januar", 1 }, { "j\xc3\xa4nner", 1 }, { "janvier", 1 }, { "enero", 1 },
	{ "januari", 1 }, { "\xd1\x8f\xd0\xbd\xd0\xb2\xd0\xb0\xd1\x80\xd1\x8f", 1 },
	{ "february", 2 }, { "feb", 2 }, { "februar", 2 }, { "f\xc3\xa9vrier", 2 }, { "fevrier", 2 },
	{ "febrero", 2 }, { "februari", 2 }, { "\xd1\x84\xd0\xb5\xd0\xb2\xd1\x80\xd0\xb0\xd0\xbb\xd1\x8f", 2 },
	{ "march", 3 }, { "mar", 3 }, { "m\xc3\xa4rz", 3 }, { "maerz", 3 }, { "mars", 3 }, { "marzo", 3 },
	{ "maart", 3 }, { "\xd0\xbc\xd0\xb0\xd1\x80\xd1\x82\xd0\xb0", 3 },
	{ "april", 4 }, { "apr", 4 }, { "avril", 4 }, { "abril", 4 },
	{ "\xd0\xb0\xd0\xbf\xd1\x80\xd0\xb5\xd0\xbb\xd1\x8f", 4 },
	{ "may", 5 }, { "mai", 5 }, { "mayo", 5 }, { "mei", 5 }, { "\xd0\xbc\xd0\xb0\xd1\x8f", 5 },
	{ "june", 6 }, { "jun", 6 }, { "juni", 6 }, { "juin", 6 }, { "junio", 6 },
	{ "\xd0\xb8\xd1\x8e\xd0\xbd\xd1\x8f", 6 },
	{ "july", 7 }, { "jul", 7 }, { "juli", 7 }, { "juillet", 7 }, { "julio", 7 },
	{ "\xd0\xb8\xd1\x8e\xd0\xbb\xd1\x8f", 7 },
	{ "august", 8 }, { "aug", 8 }, { "ao\xc3\xbbt", 8 }, { "aout", 8 }, { "agosto", 8 }, { "augustus", 8 },
	{ "\xd0\xb0\xd0\xb2\xd0\xb3\xd1\x83\xd1\x81\xd1\x82\xd0\xb0", 8 },
	{ "september", 9 }, { "sep", 9 }, { "sept", 9 }, { "septembre", 9 }, { "septiembre", 9 },
	{ "setiembre", 9 }, { "\xd1\x81\xd0\xb5\xd0\xbd\xd1\x82\xd1\x8f\xd0\xb1\xd1\x80\xd1\x8f", 9 },
	{ "october", 10 }, { "oct", 10 }, { "oktober", 10 }, { "okt", 10 }, { "octobre", 10 }, { "octubre", 10 },
	{ "\xd0\xbe\xd0\xba\xd1\x82\xd1\x8f\xd0\xb1\xd1\x80\xd1\x8f", 10 },
	{ "november", 11 }, { "nov", 11 }, { "novembre", 11 }, { "noviembre", 11 },
	{ "\xd0\xbd\xd0\xbe\xd1\x8f\xd0\xb1\xd1\x80\xd1\x8f", 11 },
	{ "december", 12 }, { "dec", 12 }, { "dezember", 12 }, { "dez", 12 }, { "d\xc3\xa9" "cembre", 12 },
	{ "decembre", 12 }, { "diciembre", 12 }, { "\xd0\xb4\xd0\xb5\xd0\xba\xd0\xb0\xd0\xb1\xd1\x80\xd1\x8f", 12 },
};

/* A month name at p (a whole word): its number, *end past it; 0. */
static int or_ooo_month(const char *s, size_t p, size_t *end)
{
	if (p > 0 && or_ooo_letter((unsigned char)s[p - 1]))
		return 0;
	for (size_t i = 0; i < sizeof or_ooo_months / sizeof *or_ooo_months; i++) {
		size_t k = strlen(or_ooo_months[i].name);
		if (!strncmp(s + p, or_ooo_months[i].name, k) && !or_ooo_letter((unsigned char)s[p + k])) {
			*end = p + k + (s[p + k] == '.');
			return or_ooo_months[i].month;
		}
	}
	return 0;
}

/* s at *p starts with w: *p past it. */
static int or_ooo_skip(const char *s, size_t *p, const char *w)
{
	size_t k = strlen(w);
	if (strncmp(s + *p, w, k))
		return 0;
	*p += k;
	return 1;
}

/* A year after a day and month ("8 December 2026", "December 8, 2026",
 * "8 de diciembre de 2026"): four digits, else 0 and *p unchanged. */
static int or_ooo_year(const char *s, size_t *p)
{
	size_t q = *p, e;
	int y;

	or_ooo_skip(s, &q, ",");
	or_ooo_skip(s, &q, " ");
	or_ooo_skip(s, &q, "de ");
	if ((y = or_ooo_num(s, q, 4, 4, &e)) < 0)
		return 0;
	*p = e;
	return y;
}

/* The day's ordinal suffix ("8th", "1er", "8.") skipped. */
static void or_ooo_ordinal(const char *s, size_t *p)
{
	static const char *const suf[] = { "st", "nd", "rd", "th", "er", "e", ".", NULL };
	for (const char *const *x = suf; *x; x++) {
		size_t q = *p;
		if (or_ooo_skip(s, &q, *x) && !or_ooo_letter((unsigned char)s[q])) {
			*p = q;
			return;
		}
	}
}

struct or_ooo_date { int y, m, d; size_t end; };   /* y 0: none written */

/* YYYY-MM-DD, DD.MM.YYYY, DD/MM/YYYY, DD-MM-YYYY, DD.MM.YY and the German
 * "14.12." (no year; the trailing dot tells it from a time "14.30"). */
static int or_ooo_numeric(const char *s, size_t p, struct or_ooo_date *dt)
{
	size_t e, q;
	int a = or_ooo_num(s, p, 1, 4, &e), b, c;
	char sep;

	if (a < 0 || !(sep = s[e]) || !strchr(".-/", sep) || (b = or_ooo_num(s, e + 1, 1, 2, &q)) < 0)
		return 0;
	if (e - p == 4) {   /* ISO order */
		if (sep == '.' || s[q] != sep || (c = or_ooo_num(s, q + 1, 1, 2, &e)) < 0)
			return 0;
		*dt = (struct or_ooo_date){ a, b, c, e };
		return 1;
	}
	if (e - p > 2 || s[q] != sep)
		return 0;
	if ((c = or_ooo_num(s, q + 1, 2, 4, &e)) >= 0 && e - q - 1 != 3) {
		*dt = (struct or_ooo_date){ c < 100 ? 2000 + c : c, b, a, e };
		return 1;
	}
	if (sep == '.' && !or_ooo_digit((unsigned char)s[q + 1])) {
		*dt = (struct or_ooo_date){ 0, b, a, q + 1 };
		return 1;
	}
	return 0;
}

/* "8 December [2026]", "8th of December", "8. Dezember", "8 de diciembre". */
static int or_ooo_day_month(const char *s, size_t p, struct or_ooo_date *dt)
{
	size_t q;
	int d = or_ooo_num(s, p, 1, 2, &q), m;

	if (d < 0)
		return 0;
	or_ooo_ordinal(s, &q);
	or_ooo_skip(s, &q, " ");
	if (!or_ooo_skip(s, &q, "of "))
		or_ooo_skip(s, &q, "de ");
	if (!(m = or_ooo_month(s, q, &q)))
		return 0;
	int y = or_ooo_year(s, &q);
	*dt = (struct or_ooo_date){ y, m, d, q };
	return 1;
}

/* "December 8[, 2026]", "Dec. 8th", "December the 8th". */
static int or_ooo_month_day(const char *s, size_t p, struct or_ooo_date *dt)
{
	size_t q;
	int m = or_ooo_month(s, p, &q), d;

	if (!m)
		return 0;
	or_ooo_skip(s, &q, " ");
	or_ooo_skip(s, &q, "the ");
	if ((d = or_ooo_num(s, q, 1, 2, &q)) < 0 || s[q] == ':')
		return 0;
	or_ooo_ordinal(s, &q);
	int y = or_ooo_year(s, &q);
	*dt = (struct or_ooo_date){ y, m, d, q };
	return 1;
}

/* A date starting at p (at a word's start). */
static int or_ooo_date_at(const char *s, size_t p, struct or_ooo_date *dt)
{
	unsigned char c = (unsigned char)s[p];

	if (p > 0 && (or_ooo_letter((unsigned char)s[p - 1]) || or_ooo_digit((unsigned char)s[p - 1])))
		return 0;
	if (or_ooo_digit(c))
		return or_ooo_numeric(s, p, dt) || or_ooo_day_month(s, p, dt);
	return or_ooo_letter(c) && or_ooo_month_day(s, p, dt);
}

/* The date's day number: a year not written is the next such date after
 * today.  -1 when there is no such date (31 November). */
static int or_ooo_resolve(const struct or_ooo_date *dt, int today)
{
	int ty, tm, td, y = dt->y, y2, m2, d2;

	or_civil_from_days(today, &ty, &tm, &td);
	for (int tries = 0; tries < 2; tries++) {
		int yy = y ? y : ty + tries;
		if (yy < 1970 || yy > 9999 || dt->m < 1 || dt->m > 12 || dt->d < 1 || dt->d > 31)
			return -1;
		int day = or_days_from_civil(yy, dt->m, dt->d);
		or_civil_from_days(day, &y2, &m2, &d2);
		if (y2 == yy && m2 == dt->m && d2 == dt->d && (y || day > today))
			return day;
		if (y)
			return -1;
	}
	return -1;
}

/* The words that say a date is a return: exclusive ("back on 14
 * December": the first day back) or inclusive ("until 11 December": the
 * last day away).  A date and warmbly's window: the cue nearest before it
 * within 48 characters decides. */
static const struct { const char *cue; int inclusive; } or_ooo_cues[] = {
	{ "until", 1 }, { "till", 1 }, { "til", 1 }, { "through", 1 }, { "thru", 1 }, { "after", 1 },
	{ "up to and including", 1 }, { "back", 0 }, { "return", 0 }, { "returning", 0 }, { "returns", 0 },
	{ "again", 0 }, { "resume", 0 }, { "resuming", 0 },
	{ "bis", 1 }, { "bis einschlie\xc3\x9f" "lich", 1 }, { "bis einschliesslich", 1 }, { "bis zum", 1 },
	{ "bis inklusive", 1 }, { "ab", 0 }, { "ab dem", 0 }, { "wieder", 0 }, { "zur\xc3\xbc" "ck", 0 },
	{ "zurueck", 0 },
	{ "jusqu'au", 1 }, { "jusqu'\xc3\xa0", 1 }, { "jusqu'a", 1 }, { "retour", 0 }, { "de retour", 0 },
	{ "\xc3\xa0 partir du", 0 }, { "a partir du", 0 }, { "d\xc3\xa8s le", 0 },
	{ "hasta", 1 }, { "hasta el", 1 }, { "regreso", 0 }, { "regresar\xc3\xa9", 0 }, { "regresare", 0 },
	{ "volver\xc3\xa9", 0 }, { "volvere", 0 }, { "de vuelta", 0 }, { "a partir del", 0 }, { "vuelvo", 0 },
	{ "tot en met", 1 }, { "t/m", 1 }, { "tot", 1 }, { "terug", 0 }, { "vanaf", 0 }, { "weer", 0 },
	{ "\xd0\xb4\xd0\xbe", 1 },                                          /* до */
	{ "\xd0\xbf\xd0\xbe", 1 },                                          /* по */
	{ "\xd0\xbf\xd0\xbe\xd1\x81\xd0\xbb\xd0\xb5", 1 },                  /* после */
	{ "\xd0\xb2\xd0\xb5\xd1\x80\xd0\xbd\xd1\x83\xd1\x81\xd1\x8c", 0 },  /* вернусь */
	{ "\xd0\xb2\xd1\x8b\xd0\xb9\xd0\xb4\xd1\x83", 0 },                  /* выйду */
};

/* The cue nearest before the date at p (its end the latest, within 48
 * characters): 1 with *inclusive, 0 none. */
static int or_ooo_cue(const char *s, size_t p, int *inclusive)
{
	size_t ws = p, best_end = 0;
	int chars = 0, found = 0;

	while (ws > 0 && chars < 48)
		if (((unsigned char)s[--ws] & 0xc0) != 0x80)
			chars++;
	for (size_t q = ws; q < p; q++) {
		if (q > 0 && or_ooo_letter((unsigned char)s[q - 1]))
			continue;
		for (size_t i = 0; i < sizeof or_ooo_cues / sizeof *or_ooo_cues; i++) {
			size_t k = strlen(or_ooo_cues[i].cue), end = q + k;
			if (end <= p && !strncmp(s + q, or_ooo_cues[i].cue, k) && !or_ooo_letter((unsigned char)s[end]) &&
			    end >= best_end) {
				best_end = end, found = 1;
				*inclusive = or_ooo_cues[i].inclusive;
			}
		}
	}
	return found;
}

/* "(inclusive)", "einschließlich", "включительно" just after the date. */
static int or_ooo_inclusive_after(const char *s, size_t e)
{
	static const char *const w[] = { "inclusive", "incl", "inclusief", "inclus", "einschlie\xc3\x9f" "lich",
		"einschliesslich", "inklusive", "incluido", "incluso",
		"\xd0\xb2\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\xd0\xb8\xd1\x82\xd0\xb5\xd0\xbb\xd1\x8c\xd0\xbd\xd0\xbe", NULL };
	while (s[e] == ' ' || s[e] == '(' || s[e] == ',')
		e++;
	for (const char *const *x = w; *x; x++)
		if (!strncmp(s + e, *x, strlen(*x)))
			return 1;
	return 0;
}

OR_STATIC int or_ooo_return_day(const char *text, size_t n, int today, int *day, int *inclusive)
{
	char raw[OR_OOO_MAX_TEXT], norm[OR_OOO_MAX_TEXT];
	struct or_mail_out o = { raw, 0, sizeof raw, 0 };
	struct or_ooo_date dt = { 0, 0, 0, 0 };

	*day = 0, *inclusive = 0;
	or_ooo_text(text, n < OR_OOO_MAX_TEXT ? n : OR_OOO_MAX_TEXT, &o);
	size_t len = or_ooo_normalize(raw, o.len, norm, sizeof norm);
	for (size_t p = 0; p < len; p++) {
		int d, inc = 0;
		if (!or_ooo_date_at(norm, p, &dt) || (d = or_ooo_resolve(&dt, today)) <= today || d > today + 60 ||
		    !or_ooo_cue(norm, p, &inc))
			continue;
		*day = d;
		*inclusive = inc || or_ooo_inclusive_after(norm, dt.end);
		return 1;
	}
	return 0;
}

/* ================================================================
 * SEQUENCES: follow-ups, business days, leads
 *
 * The policy of sequences as pure functions: when a follow-up is due, what
 * a reply does to its lead.  The ledger's side is STORE: sequence and reply
 * operations.
 * ================================================================ */

/* Monday 0 … Sunday 6 of a day number (1970-01-01 was a Thursday). */
OR_STATIC int or_day_weekday(int day)
{
	return ((day % 7) + 7 + 3) % 7;
}

/* The client's configuration, NULL when the config names none. */
static const struct or_client *or_client_conf(const struct or_config *cfg, const char *client)
{
	for (int i = 0; i < cfg->nclients; i++)
		if (!strcmp(cfg->clients[i].name, client))
			return &cfg->clients[i];
	return NULL;
}

/* Whether day is a business day: a day of the window (Monday to Friday
 * without one) that is not one of the client's holidays. */
OR_STATIC int or_business_day(const struct or_client *cl, unsigned wdays, int day)
{
	if (!(wdays & (1u << or_day_weekday(day))))
		return 0;
	for (int i = 0; cl && i < cl->nholidays; i++)
		if (cl->holidays[i] == day)
			return 0;
	return 1;
}

/* The day n business days after day (n = 0: day itself, or the first
 * business day after it when it is none).  A week of no open day (every
 * day a holiday, or no days in the window) ends the walk after a year. */
OR_STATIC int or_business_days_add(const struct or_client *cl, unsigned wdays, int day, int n)
{
	int limit = day + 366 + n * 7;

	if (!(wdays & 0x7f))
		wdays = 0x1f;
	while (n > 0 && day < limit)
		n -= or_business_day(cl, wdays, ++day);
	while (!or_business_day(cl, wdays, day) && day < limit)
		day++;
	return day;
}

/* When a follow-up is due: `after` (Nbd, Nd, Nh) from the previous step's
 * send at `sent`.  Nbd: the same local time (in the window's zone, else
 * the config's) on the Nth business day after the send's day, the window's
 * days and the client's holidays left out; the claim then fits it into the
 * window's hours as for any job. */
OR_STATIC double or_step_due(const struct or_config *cfg, const char *client, double sent, const char *after,
                             const struct or_window *w)
{
	int n = 0, day, minute;
	char unit = 'd';
	const char *tz = w && w->set && *w->tz ? w->tz : cfg->timezone;
	struct tm tm;

	if (or_step_after_parse(after, &n, &unit))
		return sent + 86400;   /* validated at ingest: a changed ledger only */
	if (unit == 'h')
		return sent + n * 3600.0;
	if (unit == 'd')
		return sent + n * 86400.0;
	or_localtime((time_t)sent, tz, &tm);
	minute = tm.tm_hour * 60 + tm.tm_min;
	day = or_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	day = or_business_days_add(or_client_conf(cfg, client), w && w->set ? w->days : 0x1f, day, n);
	return (double)or_local_mktime(day, minute, tz);
}

/* The state a suppression leaves a lead in, by its reason: an event's
 * reason starts with its type (or_event_why); an operator's is free text. */
OR_STATIC const char *or_lead_state_of_suppression(const char *reason)
{
	if (!reason)
		return "stopped";
	if (!strncmp(reason, "bounced", 7) || strstr(reason, "soft bounces"))
		return "bounced";
	if (!strncmp(reason, "complained", 10))
		return "complained";
	if (!strncmp(reason, "unsubscribed", 12))
		return "unsubscribed";
	if (!strncmp(reason, "replied", 7))
		return "replied";
	return "stopped";
}

/* Free-mail domains: a colleague's reply there says nothing about a
 * company (domain_reply never applies to them). */
OR_STATIC int or_freemail(const char *domain)
{
	static const char *const list[] = { "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com",
		"msn.com", "yahoo.com", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me",
		"protonmail.com", "gmx.de", "gmx.net", "gmx.com", "web.de", "t-online.de", "mail.ru", "yandex.ru",
		"yandex.com", "qq.com", "163.com", "126.com", "zoho.com", "mail.com", "orange.fr", "free.fr",
		"libero.it", "hotmail.co.uk", "yahoo.co.uk", "outlook.de", "fastmail.com", "tutanota.com", NULL };

	for (int i = 0; list[i]; i++)
		if (!strcasecmp(domain, list[i]))
			return 1;
	return 0;
}

/* How long an out-of-office holds a lead: to its return day (found in its
 * text, 0 none) plus one business day, else ooo_pause business days; never
 * past ooo_max days from now.  At the lead's local start of that day. */
OR_STATIC double or_ooo_hold_until(const struct or_config *cfg, const char *client, const struct or_window *w,
                                   double now, int return_day)
{
	const char *tz = w && w->set && *w->tz ? w->tz : cfg->timezone;
	const struct or_client *cl = or_client_conf(cfg, client);
	unsigned days = w && w->set ? w->days : 0x1f;
	int today = or_day_number((time_t)now, tz), day;

	day = return_day > today ? or_business_days_add(cl, days, return_day, 1)
	                         : or_business_days_add(cl, days, today, cfg->ooo_pause);
	if (day > today + cfg->ooo_max)
		day = today + cfg->ooo_max;
	return (double)or_day_start(day, tz);
}

/* ================================================================
 * STORE (SQLite): schema, statements, transactions
 *
 * One database in WAL mode with synchronous=FULL: a commit is durable when
 * it returns, which is what lets an intent or an outcome stand for a job's
 * state.  Every write that decides a quota or records an intent runs inside
 * BEGIN IMMEDIATE, so two runs never read the same remaining quota.  Prepared
 * statements are cached by their SQL text's address (the SQL is always a
 * string literal).  An unexpected SQLite error ends the process the way a
 * crash would, which the crash model already covers: exit 75 when the
 * database stayed locked past busy_timeout or the process ran out of
 * descriptors or memory, else 74.
 * ================================================================ */

static sqlite3 *or_db;

static const char or_schema[] =
	"CREATE TABLE IF NOT EXISTS jobs("
	" id TEXT PRIMARY KEY, producer_id TEXT, client TEXT, campaign TEXT, rcpt TEXT,"
	" rcpt_domain TEXT, pin TEXT, content TEXT, not_before REAL,"
	" win_days INTEGER, win_start INTEGER, win_end INTEGER, win_tz TEXT,"
	" state TEXT NOT NULL, arrival TEXT, target TEXT, sender TEXT, account TEXT, run_id TEXT,"
	" slot_at REAL, sent_at REAL, attempts INTEGER NOT NULL DEFAULT 0, next_due REAL,"
	" last_error TEXT, message_id TEXT, provider_id TEXT, dup_of TEXT,"
	" created_at REAL NOT NULL, updated_at REAL NOT NULL, thread TEXT, subject TEXT,"
	/* v15: a sequence's steps.  seq is the lead's (its first step's) id,
	 * step 1.., after its delay from the previous send; a follow-up's own
	 * job (JSON) is body: it has no file in any folder */
	" seq TEXT, step INTEGER, after TEXT, body TEXT);"
	/* a client's jobs in claim order (v14: created_at added): jobs scheduled
	 * for one not_before share next_due, and without created_at every claim
	 * sorted all of them (a run over N of them cost N^2) */
	"CREATE INDEX IF NOT EXISTS jobs_due ON jobs(state, client, next_due, created_at);"
	/* columns a waiting job leaves NULL are indexed only where set (partial
	 * indexes: an arrival writes four index entries fewer; lookups by
	 * x = ? or x >= ? still use them, as they imply x IS NOT NULL) */
	"CREATE INDEX IF NOT EXISTS jobs_run ON jobs(run_id) WHERE run_id IS NOT NULL;"
	/* by recipient first: a feed entry names an address and an account, not a
	 * client (v13; was (client, rcpt)) */
	"CREATE INDEX IF NOT EXISTS jobs_rcpt ON jobs(rcpt, client);"
	"CREATE TABLE IF NOT EXISTS slots("
	" id INTEGER PRIMARY KEY, sender TEXT NOT NULL, account TEXT NOT NULL, client TEXT NOT NULL,"
	" at REAL NOT NULL, day INTEGER NOT NULL, job_id TEXT, run_id TEXT, state TEXT NOT NULL, rgroup TEXT);"
	/* a day's sends per sender and client are counted in day_counts (v11),
	 * so no index by day (v13 dropped two; each cost four writes a send) */
	"CREATE INDEX IF NOT EXISTS slots_sender ON slots(sender, at);"
	"CREATE INDEX IF NOT EXISTS slots_account ON slots(account, at);"
	"CREATE INDEX IF NOT EXISTS slots_job ON slots(job_id);"
	"CREATE INDEX IF NOT EXISTS slots_rgroup ON slots(rgroup, at) WHERE rgroup IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS senders(name TEXT PRIMARY KEY, enabled INTEGER NOT NULL DEFAULT 1,"
	" reason TEXT, since REAL, warmup_start_day INTEGER);"
	"CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value);"
	"CREATE TABLE IF NOT EXISTS runs(id TEXT PRIMARY KEY, pid INTEGER, started_at REAL,"
	" ended_at REAL, state TEXT NOT NULL, claimed INTEGER DEFAULT 0, sent INTEGER DEFAULT 0,"
	" deferred INTEGER DEFAULT 0, failed INTEGER DEFAULT 0, bad INTEGER DEFAULT 0,"
	" held INTEGER DEFAULT 0, ingested INTEGER DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS runs_state ON runs(state);"
	"CREATE TABLE IF NOT EXISTS suppressions(address TEXT NOT NULL, client TEXT NOT NULL DEFAULT '',"
	" reason TEXT, source TEXT, created_at REAL, PRIMARY KEY(address, client));"
	"CREATE TABLE IF NOT EXISTS alerts(name TEXT PRIMARY KEY, since REAL, detail TEXT);"
	"CREATE TABLE IF NOT EXISTS accounts(name TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0,"
	" open_until REAL NOT NULL DEFAULT 0, paused_until REAL NOT NULL DEFAULT 0, reason TEXT,"
	" max_rate REAL, max_24h REAL, limits_at REAL, limits_note TEXT);"
	"CREATE TABLE IF NOT EXISTS attempts(job_id TEXT NOT NULL, at REAL NOT NULL, sender TEXT, account TEXT,"
	" outcome TEXT NOT NULL, provider_id TEXT, message_id TEXT, reason TEXT);"
	"CREATE INDEX IF NOT EXISTS attempts_job ON attempts(job_id, at);"
	"CREATE TABLE IF NOT EXISTS pauses(client TEXT NOT NULL DEFAULT '', campaign TEXT NOT NULL DEFAULT '',"
	" sender TEXT NOT NULL DEFAULT '', since REAL, reason TEXT, PRIMARY KEY(client, campaign, sender));"
	"CREATE TABLE IF NOT EXISTS alert_log(id INTEGER PRIMARY KEY, name TEXT NOT NULL, event TEXT NOT NULL,"
	" at REAL NOT NULL, detail TEXT, delivered INTEGER NOT NULL DEFAULT 0, tries INTEGER NOT NULL DEFAULT 0,"
	" delivered_cmd INTEGER NOT NULL DEFAULT 0, delivered_hook INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, event_key TEXT NOT NULL UNIQUE, account TEXT,"
	" type TEXT NOT NULL, subtype TEXT, at REAL NOT NULL, rcpt TEXT, job_id TEXT, client TEXT, campaign TEXT,"
	" sender TEXT, provider_id TEXT, detail TEXT, pulled_at REAL NOT NULL);"
	"CREATE INDEX IF NOT EXISTS events_job ON events(job_id);"
	"CREATE INDEX IF NOT EXISTS events_rcpt ON events(rcpt, at);"
	"CREATE INDEX IF NOT EXISTS jobs_provider ON jobs(provider_id) WHERE provider_id IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS jobs_msgid ON jobs(message_id) WHERE message_id IS NOT NULL;"
	/* v17: state too, so that domain health's count of a window's sends is
	 * read from the index alone (it looked up every send's row, twice a
	 * tick: 2.7 k instructions a send in the window, ~0.25 s a tick at
	 * 10,000 sends a day) */
	"CREATE INDEX IF NOT EXISTS jobs_sent ON jobs(sender, sent_at, state) WHERE sent_at IS NOT NULL;"
	/* v17: the bounces and complaints alone, by the time they were recorded:
	 * domain health reads the few of its window instead of probing events
	 * for each of the window's sends */
	"CREATE INDEX IF NOT EXISTS events_burn ON events(pulled_at) WHERE type IN ('bounced', 'complained');"
	"CREATE TABLE IF NOT EXISTS counters(kind TEXT NOT NULL, client TEXT NOT NULL, campaign TEXT NOT NULL,"
	" sender TEXT NOT NULL DEFAULT '', n INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(kind, client, campaign, sender));"
	/* per client, campaign and state: reports read these few rows instead of
	 * counting the ledger, so a tick stays cheap at any size.  Kept by
	 * triggers for rows inserted and deleted, and by or_job_move (the one
	 * statement that changes a job's state) for moves: v17 dropped the
	 * trigger on UPDATE, whose program made every move keep a statement
	 * journal (a fifth of a move's cost, three moves a send) */
	"CREATE TABLE IF NOT EXISTS state_counts(client TEXT NOT NULL, campaign TEXT NOT NULL, state TEXT NOT NULL,"
	" n INTEGER NOT NULL, PRIMARY KEY(client, campaign, state));"
	"CREATE TRIGGER IF NOT EXISTS jobs_count_ins AFTER INSERT ON jobs BEGIN"
	" INSERT INTO state_counts VALUES(coalesce(new.client, ''), coalesce(new.campaign, ''), new.state, 1)"
	" ON CONFLICT DO UPDATE SET n = n + 1; END;"
	"CREATE TRIGGER IF NOT EXISTS jobs_count_del AFTER DELETE ON jobs BEGIN"
	" UPDATE state_counts SET n = n - 1 WHERE client = coalesce(old.client, '') AND"
	" campaign = coalesce(old.campaign, '') AND state = old.state; END;"
	/* waiting jobs by due time: only waiting rows are in it, so a job's later
	 * state changes write nothing here (v13; was all rows).  state is a
	 * column too, so that the queries on it are covered by the index. */
	"CREATE INDEX IF NOT EXISTS jobs_next ON jobs(state, next_due, client) WHERE state = 'waiting';"
	/* the sends a sender and a client have on a day (slots not void), kept by
	 * triggers: a claim reads one row instead of counting the day's slots */
	"CREATE TABLE IF NOT EXISTS day_counts(kind TEXT NOT NULL, name TEXT NOT NULL, day INTEGER NOT NULL,"
	" n INTEGER NOT NULL, PRIMARY KEY(kind, name, day));"
	"CREATE TRIGGER IF NOT EXISTS slots_count_ins AFTER INSERT ON slots WHEN new.state != 'void' BEGIN"
	" INSERT INTO day_counts VALUES('s', new.sender, new.day, 1) ON CONFLICT DO UPDATE SET n = n + 1;"
	" INSERT INTO day_counts VALUES('c', new.client, new.day, 1) ON CONFLICT DO UPDATE SET n = n + 1; END;"
	"CREATE TRIGGER IF NOT EXISTS slots_count_del AFTER DELETE ON slots WHEN old.state != 'void' BEGIN"
	" UPDATE day_counts SET n = n - 1 WHERE kind = 's' AND name = old.sender AND day = old.day;"
	" UPDATE day_counts SET n = n - 1 WHERE kind = 'c' AND name = old.client AND day = old.day; END;"
	"CREATE TRIGGER IF NOT EXISTS slots_count_upd AFTER UPDATE OF state ON slots"
	" WHEN (old.state = 'void') != (new.state = 'void') BEGIN"
	" INSERT INTO day_counts VALUES('s', new.sender, new.day, CASE WHEN new.state = 'void' THEN -1 ELSE 1 END)"
	"  ON CONFLICT DO UPDATE SET n = n + excluded.n;"
	" INSERT INTO day_counts VALUES('c', new.client, new.day, CASE WHEN new.state = 'void' THEN -1 ELSE 1 END)"
	"  ON CONFLICT DO UPDATE SET n = n + excluded.n; END;"
	/* v17: the outcome too: the error share of the last hour is read from
	 * the index alone */
	"CREATE INDEX IF NOT EXISTS attempts_at ON attempts(at, outcome);"
	/* arrivals recorded but not yet renamed out of new/ (ingest) */
	"CREATE TABLE IF NOT EXISTS arrivals(id TEXT PRIMARY KEY, arrival TEXT NOT NULL, target TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS dns_cache(domain TEXT PRIMARY KEY, result INTEGER NOT NULL, at REAL NOT NULL);"
	"CREATE TABLE IF NOT EXISTS domain_checks(domain TEXT PRIMARY KEY, ok INTEGER NOT NULL, report TEXT, reason TEXT,"
	" at REAL NOT NULL);"
	"CREATE TABLE IF NOT EXISTS feeds(account TEXT NOT NULL, list TEXT NOT NULL DEFAULT '', cursor TEXT,"
	" last_attempt REAL, last_success REAL, last_error TEXT, PRIMARY KEY(account, list));"
	/* v15: sequences.  A lead is one sequence (seq = its first step's id):
	 * its state, why, since when, and an out-of-office hold */
	"CREATE INDEX IF NOT EXISTS jobs_seq ON jobs(seq, step) WHERE seq IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS leads(seq TEXT PRIMARY KEY, client TEXT NOT NULL, campaign TEXT NOT NULL,"
	" rcpt TEXT NOT NULL, rcpt_domain TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, at REAL NOT NULL,"
	" hold_until REAL, stop_on INTEGER NOT NULL, on_auto TEXT NOT NULL, steps INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS leads_rcpt ON leads(rcpt, client);"
	"CREATE INDEX IF NOT EXISTS leads_domain ON leads(rcpt_domain, client);"
	/* every message read as a possible reply (headers only, never bodies):
	 * source is a mailbox's name or 'inbound'; what it was and what it did */
	"CREATE TABLE IF NOT EXISTS replies(id INTEGER PRIMARY KEY, source TEXT NOT NULL, folder TEXT NOT NULL DEFAULT '',"
	" uid INTEGER, message_id TEXT NOT NULL, at REAL NOT NULL, from_addr TEXT, class TEXT NOT NULL, rule TEXT,"
	" job_id TEXT, seq TEXT, method TEXT, effect TEXT, step INTEGER, client TEXT, campaign TEXT,"
	" rcpt TEXT, UNIQUE(source, message_id));"
	"CREATE INDEX IF NOT EXISTS replies_seq ON replies(seq) WHERE seq IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS replies_at ON replies(at);"
	/* a mailbox folder's cursor, like feeds' */
	"CREATE TABLE IF NOT EXISTS mailbox_cursors(mailbox TEXT NOT NULL, folder TEXT NOT NULL, uidvalidity INTEGER,"
	" last_uid INTEGER, last_attempt REAL, last_success REAL, last_error TEXT, PRIMARY KEY(mailbox, folder));"
	/* v16: engagement per address and client, folded from jobs, events and
	 * replies before retention retires them (or_store_engagement_fold), and
	 * the daily count of those that stopped engaging */
	"CREATE TABLE IF NOT EXISTS engagement(client TEXT NOT NULL, rcpt TEXT NOT NULL, sends INTEGER NOT NULL,"
	" first_sent REAL NOT NULL, last_sent REAL NOT NULL, last_delivered REAL, last_opened REAL, last_clicked REAL,"
	" last_replied REAL, PRIMARY KEY(client, rcpt)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS engagement_counts(client TEXT PRIMARY KEY, inactive INTEGER NOT NULL,"
	" suppressed INTEGER NOT NULL, at REAL NOT NULL) WITHOUT ROWID;";

/* Exits 75 (temporary) when the database is locked or the machine is short
 * of descriptors or memory, else 74. */
static void or_db_die(const char *what)
{
	int rc = or_db ? sqlite3_errcode(or_db) : SQLITE_ERROR, e = or_db ? sqlite3_system_errno(or_db) : 0;

	fprintf(stderr, "outreach: database: %s: %s%s%s%s\n", what, or_db ? sqlite3_errmsg(or_db) : "not open",
	        e ? " (" : "", e ? strerror(e) : "", e ? ")" : "");
	exit(rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_NOMEM ? OR_EX_TEMPFAIL : or_ex_io(e));
}

/* The call sites of or_q that hold a statement, newest first: or_db_close
 * finalizes them.  One slot per call site (the or_q macro in outreach.h), so
 * the cache holds as many statements as the code has call sites, never more. */
static struct or_stmt_site *or_sites;

/* The cached statement of one call site for sql, reset, with the arguments
 * bound by types: 't' text (const char *, NULL binds NULL), 'i' int64, 'd'
 * double.  A site handed another sql than the first time is a bug that would
 * run the wrong statement: it exits 70 saying so. */
OR_STATIC sqlite3_stmt *or_q_at(struct or_stmt_site *site, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = site->st;
	va_list ap;

	if (st && site->sql != sql) {
		fprintf(stderr, "outreach: internal error: one or_q call site given two statements: %s\n", sql);
		exit(OR_EX_SOFTWARE);
	}
	if (!st) {
		if (sqlite3_prepare_v3(or_db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
			or_db_die(sql);
		site->sql = sql;
		site->st = st;
		site->next = or_sites;
		or_sites = site;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	va_start(ap, types);
	for (int k = 0; types[k]; k++) {
		if (types[k] == 't')
			sqlite3_bind_text(st, k + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
		else if (types[k] == 'i')
			sqlite3_bind_int64(st, k + 1, va_arg(ap, long long));
		else
			sqlite3_bind_double(st, k + 1, va_arg(ap, double));
	}
	va_end(ap);
	return st;
}

/* Steps a statement; SQLITE_ROW or SQLITE_DONE, anything else is fatal. */
static int or_step(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		or_db_die(sqlite3_sql(st));
	return rc;
}

static void or_exec(const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(or_db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		sqlite3_free(msg);
		or_db_die(sql);
	}
}

/* The first column of the first row as an integer, or def. */
static long long or_q_int(sqlite3_stmt *st, long long def)
{
	long long v = def;

	if (or_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return v;
}

static double or_q_double(sqlite3_stmt *st, double def)
{
	double v = def;

	if (or_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_double(st, 0);
	sqlite3_reset(st);
	return v;
}

static void or_q_done(sqlite3_stmt *st)
{
	or_step(st);
	sqlite3_reset(st);
}

static unsigned or_tx_gen;   /* counts BEGIN IMMEDIATE (or_account_memo): 0 is none */

static void or_begin(void)
{
	or_exec("BEGIN IMMEDIATE");
	or_tx_gen++;
}

/* A synced commit's duration, smoothed (seconds; 0 before the first): the
 * send loop sizes its turns by it (or_turn_size). */
static double or_commit_s;

static void or_state_counts_flush(void);

static void or_commit(void)
{
	double t = or_mono();

	or_state_counts_flush();
	or_exec("COMMIT");
	t = or_mono() - t;
	or_commit_s = or_commit_s > 0 ? 0.8 * or_commit_s + 0.2 * t : t;
	OR_STEP();
}

static double or_store_commit_time(void) { return or_commit_s; }

/* A transaction whose commit need not reach the disk by itself: BEGIN
 * IMMEDIATE at synchronous=NORMAL, so its COMMIT writes the WAL without an
 * fsync (the next synced commit, or a checkpoint, makes it durable with
 * everything before it), then back to FULL.  For writes a power loss may
 * take without harm (each caller says why); a process crash loses nothing
 * either way, and the commit is still one durable step for the crash walk. */
static void or_begin_unsynced(void)
{
	or_exec("PRAGMA synchronous=NORMAL");
	or_begin();
}

static void or_commit_unsynced(void)
{
	or_commit();
	or_exec("PRAGMA synchronous=FULL");
}

static const char *or_col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	return s ? s : "";
}

static void or_add_column(const char *table, const char *col, const char *decl, const char *fill)
{
	char sql[300];

	if (!or_q_int(or_q("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", "t", table), 0) ||
	    or_q_int(or_q("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", "tt", table, col), 0))
		return;
	snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", table, col, decl);
	or_exec(sql);
	if (fill)
		or_exec(fill);
}

/* Opens (creating if asked) the state database and brings its schema to
 * OR_SCHEMA_VERSION.  A database written by a newer outreach is refused.
 * Returns an exit code (0 when open). */
OR_STATIC int or_db_open(const struct or_config *cfg, int create, char *err, size_t errlen)
{
	int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
	long long ver;

	if (cfg->store_pg) {   /* commands that read a ledger if there is one go on without */
		snprintf(err, errlen, "the ledger is on PostgreSQL (store.type), not at %s", cfg->state);
		return OR_EX_CONFIG;
	}

	if (sqlite3_open_v2(cfg->state, &or_db, flags, NULL) != SQLITE_OK) {
		/* the open's own errno: short of descriptors or memory is 75 (later) */
		int e = or_db ? sqlite3_system_errno(or_db) : ENOMEM;
		snprintf(err, errlen, "%s: %s%s%s%s", cfg->state, or_db ? sqlite3_errmsg(or_db) : "out of memory",
		         e && e != ENOENT ? " (" : "", e && e != ENOENT ? strerror(e) : "",
		         e && e != ENOENT ? ")" : create ? "" : " (run 'outreach init' first?)");
		sqlite3_close(or_db);
		or_db = NULL;
		return or_ex_io(e);
	}
	sqlite3_busy_timeout(or_db, (int)(cfg->busy_timeout * 1000));
	sqlite3_extended_result_codes(or_db, 0);
	or_exec("PRAGMA journal_mode=WAL");
	or_exec("PRAGMA synchronous=FULL");
	/* Statement journals (an INSERT that fires a trigger inside a longer
	 * transaction keeps one) stay in memory: spilled to a temp file they
	 * cost ~18 writes per ingested job. */
	or_exec("PRAGMA temp_store=MEMORY");
	ver = or_q_int(or_q("PRAGMA user_version", ""), 0);
	if (ver > OR_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: schema version %lld is newer than this outreach (%d); "
		         "refusing to touch it", cfg->state, ver, OR_SCHEMA_VERSION);
		return OR_EX_IOERR;
	}
	if (ver == 0)   /* a new database: free pages go back to the file bit by bit */
		or_exec("PRAGMA auto_vacuum=INCREMENTAL");
	if (ver < OR_SCHEMA_VERSION) {
		or_begin();
		long long have = or_q_int(or_q("PRAGMA user_version", ""), 0);
		/* columns added since a table first appeared (CREATE TABLE IF NOT
		 * EXISTS cannot add them): added where the table exists without them */
		or_add_column("jobs", "thread", "TEXT", NULL);
		or_add_column("jobs", "subject", "TEXT", NULL);
		or_add_column("jobs", "seq", "TEXT", NULL);
		or_add_column("jobs", "step", "INTEGER", NULL);
		or_add_column("jobs", "after", "TEXT", NULL);
		or_add_column("jobs", "body", "TEXT", NULL);
		or_add_column("replies", "rcpt", "TEXT", NULL);   /* v16: the send's address, for engagement */
		or_add_column("slots", "rgroup", "TEXT", NULL);
		or_add_column("alert_log", "delivered_cmd", "INTEGER NOT NULL DEFAULT 0",
		              "UPDATE alert_log SET delivered_cmd = delivered");
		or_add_column("alert_log", "delivered_hook", "INTEGER NOT NULL DEFAULT 0",
		              "UPDATE alert_log SET delivered_hook = delivered");
		if (have < OR_SCHEMA_VERSION) {
			char v[64];
			/* every change so far adds tables, indexes and triggers, all IF
			 * NOT EXISTS (and the columns above), so the whole schema brings
			 * any older version forward */
			if (have > 0 && have < 17)   /* v17: jobs_sent and attempts_at cover a column more;
			                              * moves are counted by or_job_move */
				or_exec("DROP INDEX IF EXISTS jobs_sent; DROP INDEX IF EXISTS attempts_at; "
				        "DROP TRIGGER IF EXISTS jobs_count_upd");
			if (have > 0 && have < 14)   /* v14: jobs_due in claim order */
				or_exec("DROP INDEX IF EXISTS jobs_due");
			if (have > 0 && have < 13)   /* v13: indexes partial, reordered or gone */
				or_exec("DROP INDEX IF EXISTS jobs_run; DROP INDEX IF EXISTS jobs_provider; "
				        "DROP INDEX IF EXISTS jobs_msgid; DROP INDEX IF EXISTS jobs_sent; "
				        "DROP INDEX IF EXISTS jobs_next; DROP INDEX IF EXISTS jobs_rcpt; "
				        "DROP INDEX IF EXISTS slots_sender_day; DROP INDEX IF EXISTS slots_client_day; "
				        "DROP INDEX IF EXISTS slots_rgroup");
			or_exec(or_schema);
			/* v12: an unfinished ingest moves to the arrivals list.  Not a
			 * transition of the state machine ('ingest' is no state any
			 * more): the row takes the state its target meant.  SET reads
			 * the old row, so target is still there for the CASE. */
			if (have > 0 && have < 12)
				or_exec("INSERT OR IGNORE INTO arrivals SELECT id, arrival, target FROM jobs WHERE state = 'ingest'; "
				        "UPDATE jobs SET arrival = NULL, target = NULL, state = CASE target WHEN 'defer' THEN "
				        "'waiting' WHEN 'done' THEN 'duplicate' ELSE 'bad' END WHERE state = 'ingest'");
			if (have > 0 && have < 11)   /* v11: day counts start from the slots as they are */
				or_exec("DELETE FROM day_counts; INSERT INTO day_counts SELECT 's', sender, day, count(*) FROM slots "
				        "WHERE state != 'void' GROUP BY 2, 3; INSERT INTO day_counts SELECT 'c', client, day, count(*) "
				        "FROM slots WHERE state != 'void' GROUP BY 2, 3");
			if (have > 0 && have < 17)   /* v9, and v17 (the moves above ran uncounted):
			                              * the counts start from the ledger as it is */
				or_exec("DELETE FROM state_counts; INSERT INTO state_counts SELECT coalesce(client, ''), "
				        "coalesce(campaign, ''), state, count(*) FROM jobs GROUP BY 1, 2, 3");
			snprintf(v, sizeof v, "PRAGMA user_version=%d", OR_SCHEMA_VERSION);
			or_exec(v);
		}
		or_commit();
	}
	return 0;
}

/* OUTREACH_SQL_PROFILE=FILE (a profiling aid, doc/design.md §9): at
 * close, one line per cached statement appended to FILE: runs, virtual
 * machine steps, sorts and automatic indexes (temporary b-trees), full-scan
 * steps, then the SQL.  Counters, not times: the same run gives the same
 * figures whatever else the machine does.  Written before the statements
 * are finalized; a write that fails loses only the profile. */
static void or_db_profile(void)
{
	const char *path = getenv("OUTREACH_SQL_PROFILE");
	FILE *f;

	if (!path || !*path || !(f = fopen(path, "a")))
		return;
	for (struct or_stmt_site *site = or_sites; site; site = site->next) {
		sqlite3_stmt *st = site->st;
		if (!st)
			continue;
		fprintf(f, "%d\t%d\t%d\t%d\t%d\t%s\n", sqlite3_stmt_status(st, SQLITE_STMTSTATUS_RUN, 0),
		        sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0),
		        sqlite3_stmt_status(st, SQLITE_STMTSTATUS_SORT, 0),
		        sqlite3_stmt_status(st, SQLITE_STMTSTATUS_AUTOINDEX, 0),
		        sqlite3_stmt_status(st, SQLITE_STMTSTATUS_FULLSCAN_STEP, 0), sqlite3_sql(st));
	}
	fclose(f);
}

OR_STATIC void or_db_close(void)
{
	or_db_profile();
	for (struct or_stmt_site *site = or_sites, *next; site; site = next) {
		next = site->next;
		sqlite3_finalize(site->st);
		site->st = NULL;
		site->sql = NULL;
		site->next = NULL;
	}
	or_sites = NULL;
	/* every statement is a site's, so the database closes; one that does
	 * not was prepared outside the cache and never finalized: say so */
	if (or_db && sqlite3_close(or_db) != SQLITE_OK) {
		fprintf(stderr, "outreach: internal error: database left open: %s\n", sqlite3_errmsg(or_db));
		exit(OR_EX_SOFTWARE);
	}
	or_db = NULL;
}

/* Whether the ledger is open: validate runs with or without one. */
static int or_store_is_open(void) { return or_db != NULL; }

static void or_kv_set(const char *key, const char *value)
{
	or_q_done(or_q("INSERT INTO kv(key, value) VALUES(?1, ?2) "
	               "ON CONFLICT(key) DO UPDATE SET value = excluded.value", "tt", key, value));
}

static void or_kv_get(const char *key, char *out, size_t n)
{
	sqlite3_stmt *st = or_q("SELECT value FROM kv WHERE key = ?1", "t", key);

	out[0] = 0;
	if (or_step(st) == SQLITE_ROW)
		snprintf(out, n, "%s", or_col(st, 0));
	sqlite3_reset(st);
}

/* Counters for outreach.prom's _total series: only ever incremented, in the
 * transaction that records what they count, so retention and requeue never
 * make a Prometheus counter go down. */
static void or_count(const char *kind, const char *client, const char *campaign, const char *sender)
{
	or_q_done(or_q("INSERT INTO counters(kind, client, campaign, sender, n) VALUES(?1, ?2, ?3, ?4, 1) "
	               "ON CONFLICT DO UPDATE SET n = n + 1", "tttt", kind, client ? client : "", campaign ? campaign : "",
	               sender ? sender : ""));
}

/* ---- budgets: warm-up, caps, slots ---- */

/* Exponential backoff with "equal jitter": first * 2^(attempts-1), capped at
 * max, then a uniform draw from its upper half, so retries of many jobs that
 * failed together spread out. */
OR_STATIC double or_backoff(const struct or_config *cfg, int attempts)
{
	double d = cfg->retry_first * pow(2, attempts > 1 ? attempts - 1 : 0);

	if (d > cfg->retry_max || !isfinite(d))
		d = cfg->retry_max;
	return d * (0.5 + 0.5 * or_random_unit());
}

/* Round-robin: the first eligible sender after rr_last (wrapping); quota:
 * the one with most remaining capacity today (ties: config order). */
OR_STATIC int or_pick_sender(const struct or_config *cfg, const int *eligible, int n,
                             const int *remaining, int rr_last)
{
	int best = 0;

	if (n <= 0)
		return -1;
	if (cfg->rotation == OR_ROT_QUOTA) {
		for (int i = 1; i < n; i++)
			if (remaining[i] > remaining[best])
				best = i;
		return eligible[best];
	}
	for (int i = 0; i < n; i++)
		if (eligible[i] > rr_last)
			return eligible[i];
	return eligible[0];
}

struct or_sender_state { int enabled, paused; char reason[256]; int warmup_start_day; int has_restart; };

static void or_sender_state_get(const struct or_sender *s, struct or_sender_state *out)
{
	sqlite3_stmt *st = or_q("SELECT enabled, reason, warmup_start_day FROM senders WHERE name = ?1",
	                        "t", s->name);

	out->enabled = 1;
	out->reason[0] = 0;
	out->has_restart = 0;
	out->paused = 0;
	if (or_step(st) == SQLITE_ROW) {
		out->enabled = sqlite3_column_int(st, 0);
		snprintf(out->reason, sizeof out->reason, "%s", or_col(st, 1));
		if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
			out->has_restart = 1;
			out->warmup_start_day = sqlite3_column_int(st, 2);
		}
	}
	sqlite3_reset(st);
	if (out->enabled && or_q_int(or_q("SELECT 1 FROM pauses WHERE sender = ?1", "t", s->name), 0)) {
		out->enabled = 0;
		out->paused = 1;
		snprintf(out->reason, sizeof out->reason, "paused by the operator");
	}
	if (out->enabled) {   /* a required DNS check of its domain failed (domains, cached a day) */
		st = or_q("SELECT reason FROM domain_checks WHERE domain = ?1 AND ok = 0", "t", s->domain);
		if (or_step(st) == SQLITE_ROW) {
			out->enabled = 0;
			snprintf(out->reason, sizeof out->reason, "domain check failed: %.220s", or_col(st, 0));
		}
		sqlite3_reset(st);
	}
}

/* The sender's warm-up day (0 on its start date, < 0 before) on a day. */
static int or_sender_warmup_day(const struct or_sender *s, const struct or_sender_state *ss, int day)
{
	if (ss->has_restart)
		return day - ss->warmup_start_day;
	return s->warmup.set ? day - s->warmup.start_day : day - day;
}

/* Today's cap = min(daily_limit, warm-up volume) (doc/design.md §6, §10). */
static int or_sender_cap(const struct or_sender *s, const struct or_sender_state *ss, int day)
{
	struct or_warmup w = s->warmup;

	if (ss->has_restart && !w.set) {   /* re-enabled: back on a default ramp */
		w.set = 1;
		w.first = s->daily_limit < 10 ? 1 : s->daily_limit / 10.0;
		w.days = 14;
		w.curve = OR_CURVE_GEOMETRIC;
	}
	return or_warmup_volume(&w, s->daily_limit, or_sender_warmup_day(s, ss, day));
}

static int or_sender_sent_on(const char *sender, int day)
{
	return (int)or_q_int(or_q("SELECT n FROM day_counts WHERE kind = 's' AND name = ?1 AND day = ?2", "ti",
	                          sender, (long long)day), 0);
}

static int or_client_sent_on(const char *client, int day)
{
	return (int)or_q_int(or_q("SELECT n FROM day_counts WHERE kind = 'c' AND name = ?1 AND day = ?2", "ti",
	                          client, (long long)day), 0);
}

/* ---- provider accounts: circuit breaker, throttling pauses, limits ----
 *
 * Per account, in table accounts: consecutive failures, the circuit's
 * open_until (no send before it; after it the next send is the probe),
 * paused_until (the peer said "slow down"), and the limits the provider
 * reported (SES GetAccount), which can only lower the plan. */

struct or_account { int failures; double open_until, paused_until, max_rate, max_24h, limits_at;
                    char reason[300], note[300]; };

/* The accounts' rows as this process last read them, for a quarter of a
 * second: every transfer's start and every claim asked the ledger, up to
 * four reads a send, and a read outside a transaction takes and drops the
 * WAL's read lock.  This process forgets a row it writes (or_account_forget),
 * so its own outcomes are seen at once; another run's are seen within the
 * quarter second, which is shorter than the transfers they came from.
 * ok_tx: the transaction (or_tx_gen) in which a success was booked on the
 * account; more successes in it have nothing to change (or_account_outcome). */
#define OR_ACCOUNT_MEMO_S 0.25
static struct { char name[OR_MAX_LABEL + 1]; double at; unsigned ok_tx; struct or_account a; }
	or_account_memo[OR_MAX_PROVIDERS];
static int or_account_slot(const char *name)
{
	int free_slot = -1;

	for (int i = 0; i < OR_MAX_PROVIDERS; i++) {
		if (!strcmp(or_account_memo[i].name, name))
			return i;
		if (free_slot < 0 && !or_account_memo[i].name[0])
			free_slot = i;
	}
	return free_slot;
}

static void or_account_forget(const char *name)
{
	int i = or_account_slot(name);

	if (i >= 0)
		or_account_memo[i].name[0] = 0;
}

static void or_account_get(const char *name, struct or_account *a)
{
	int m = or_account_slot(name);
	double now = or_mono();

	if (m >= 0 && or_account_memo[m].name[0] && now - or_account_memo[m].at < OR_ACCOUNT_MEMO_S) {
		*a = or_account_memo[m].a;
		return;
	}
	sqlite3_stmt *st = or_q("SELECT failures, open_until, paused_until, coalesce(max_rate, 0), "
	                        "coalesce(max_24h, -1), coalesce(limits_at, 0), coalesce(reason, ''), "
	                        "coalesce(limits_note, '') FROM accounts WHERE name = ?1", "t", name);

	memset(a, 0, sizeof *a);
	a->max_24h = -1;
	if (or_step(st) == SQLITE_ROW) {
		a->failures = sqlite3_column_int(st, 0);
		a->open_until = sqlite3_column_double(st, 1);
		a->paused_until = sqlite3_column_double(st, 2);
		a->max_rate = sqlite3_column_double(st, 3);
		a->max_24h = sqlite3_column_double(st, 4);
		a->limits_at = sqlite3_column_double(st, 5);
		snprintf(a->reason, sizeof a->reason, "%s", or_col(st, 6));
		snprintf(a->note, sizeof a->note, "%s", or_col(st, 7));
	}
	sqlite3_reset(st);
	if (m >= 0 && strlen(name) < sizeof or_account_memo[m].name) {
		snprintf(or_account_memo[m].name, sizeof or_account_memo[m].name, "%s", name);
		or_account_memo[m].at = now;
		or_account_memo[m].ok_tx = 0;
		or_account_memo[m].a = *a;
	}
}

static void or_account_ensure(const char *name)
{
	or_q_done(or_q("INSERT INTO accounts(name) VALUES(?1) ON CONFLICT DO NOTHING", "t", name));
}

/* The account's rate after what the provider reported (never above config). */
static double or_account_rate(const struct or_provider *p, const struct or_account *a)
{
	if (a->max_rate > 0 && (p->rate <= 0 || a->max_rate < p->rate))
		return a->max_rate;
	return p->rate;
}

/* An account's sends over the last 24 hours (SES Max24HourSend).  Counting
 * that window costs a scan of the day's slots, so the count is taken at
 * most every 5 seconds and the run's own reservations are added meanwhile;
 * the provider's limit is far above any 5 seconds of sending. */
static long long or_account_sent_24h(const char *account, double now)
{
	static struct { char name[64]; double at; long long n, base_slots; } memo[OR_MAX_PROVIDERS];
	long long slots = or_q_int(or_q("SELECT coalesce(max(id), 0) FROM slots", ""), 0);

	for (int i = 0; i < OR_MAX_PROVIDERS; i++) {
		if (memo[i].name[0] && strcmp(memo[i].name, account))
			continue;
		if (!memo[i].name[0] || now - memo[i].at > 5 || now < memo[i].at) {
			snprintf(memo[i].name, sizeof memo[i].name, "%s", account);
			memo[i].at = now;
			memo[i].base_slots = slots;
			memo[i].n = or_q_int(or_q("SELECT count(*) FROM slots WHERE account = ?1 AND at > ?2 AND state != 'void'",
			                          "td", account, now - 86400), 0);
			return memo[i].n;
		}
		return memo[i].n + (slots - memo[i].base_slots);   /* every slot since: an upper bound */
	}
	return 0;
}

/* 0 when the account may take a send at now, else the time it may again. */
static double or_account_blocked(const struct or_provider *p, const struct or_account *a, double now)
{
	double until = 0;

	if (a->open_until > now)
		until = a->open_until;
	if (a->paused_until > now && a->paused_until > until)
		until = a->paused_until;
	if (!until && a->max_24h >= 0 && or_account_sent_24h(p->name, now) >= a->max_24h)
		until = now + 600;
	return until;
}

/* The account a sender uses now: its provider, else its fallback while the
 * provider's circuit is open or it is paused; -1 (and *until) when neither. */
static int or_sender_account(const struct or_config *cfg, const struct or_sender *s, double now, double *until)
{
	int cand[2] = { s->provider, s->fallback };

	*until = 0;
	for (int i = 0; i < 2; i++) {
		struct or_account a;
		double u;
		if (cand[i] < 0)
			continue;
		or_account_get(cfg->providers[cand[i]].name, &a);
		if (!(u = or_account_blocked(&cfg->providers[cand[i]], &a, now)))
			return cand[i];
		if (!*until || u < *until)
			*until = u;
	}
	return -1;
}

/* The earliest time a sender may take its next slot after now, through
 * account acct. */
static double or_sender_next_slot(const struct or_config *cfg, const struct or_sender *s, int acct, double now)
{
	const struct or_provider *p = &cfg->providers[acct];
	struct or_account a;
	double t = now, rate;
	double last = or_q_double(or_q("SELECT max(at) FROM slots WHERE sender = ?1", "t", s->name), -1e18);

	double gap = or_sender_gap(cfg, s);
	if (s->jitter > 0) {   /* drawn when the previous slot was reserved (repeatable under OUTREACH_SEED) */
		char key[96], v[32];
		snprintf(key, sizeof key, "jitter:%s", s->name);
		or_kv_get(key, v, sizeof v);
		gap += atof(v);
	}
	if (last + gap > t)
		t = last + gap;
	or_account_get(p->name, &a);
	if ((rate = or_account_rate(p, &a)) > 0) {
		double la = or_q_double(or_q("SELECT max(at) FROM slots WHERE account = ?1", "t", p->name), -1e18);
		if (la + 1.0 / rate > t)
			t = la + 1.0 / rate;
	}
	return t;
}

/* Alerts change state only on a change (never every minute): raising an
 * active one or clearing an absent one does nothing.  Each change is queued
 * in alert_log for delivery (inside the caller's transaction). */
static void or_alert_raise(const char *name, const char *detail, double now)
{
	char safe[600];

	if (or_q_int(or_q("SELECT 1 FROM alerts WHERE name = ?1", "t", name), 0)) {
		/* still active: no new delivery, but the text the reports show stays true (a count
		 * that changed, as jobs_held's after a requeue) */
		or_q_done(or_q("UPDATE alerts SET detail = ?2 WHERE name = ?1 AND detail IS NOT ?2", "tt", name, detail));
		return;
	}
	or_q_done(or_q("INSERT INTO alerts(name, since, detail) VALUES(?1, ?2, ?3)", "tdt", name, now, detail));
	or_q_done(or_q("INSERT INTO alert_log(name, event, at, detail) VALUES(?1, 'raised', ?2, ?3)", "tdt",
	               name, now, detail));
	or_log(1, "event=alert alert=%s detail=\"%s\"", name, or_safe(detail, safe, sizeof safe));
}

static void or_alert_clear(const char *name)
{
	if (!or_q_int(or_q("SELECT 1 FROM alerts WHERE name = ?1", "t", name), 0))
		return;
	or_q_done(or_q("DELETE FROM alerts WHERE name = ?1", "t", name));
	or_q_done(or_q("INSERT INTO alert_log(name, event, at, detail) VALUES(?1, 'cleared', ?2, 'cleared')", "td",
	               name, or_now()));
}

/* Books an outcome on the account (inside the caller's transaction). */
static void or_account_outcome(const struct or_provider *p, const struct or_send_result *r, double now)
{
	char alert[128], wait_alert[128];

	snprintf(alert, sizeof alert, "account_down:%s", p->name);
	snprintf(wait_alert, sizeof wait_alert, "provider_wait:%s", p->name);
	if (r->v == OR_OK) {
		struct or_account a;
		int m = or_account_slot(p->name);
		if (m >= 0 && or_tx_gen && or_account_memo[m].ok_tx == or_tx_gen && !sqlite3_get_autocommit(or_db))
			return;   /* a success booked in this transaction already left all of it so */
		or_account_ensure(p->name);
		or_q_done(or_q("UPDATE accounts SET failures = 0, open_until = 0, reason = NULL WHERE name = ?1 AND "
		               "(failures != 0 OR open_until != 0)", "t", p->name));
		or_alert_clear(alert);
		or_alert_clear(wait_alert);
		or_account_forget(p->name);
		or_account_get(p->name, &a);   /* read in this transaction: no one else writes it now */
		if ((m = or_account_slot(p->name)) >= 0 && or_account_memo[m].name[0])
			or_account_memo[m].ok_tx = or_tx_gen;
		return;
	}
	or_account_ensure(p->name);
	or_account_forget(p->name);
	if (r->throttled) {
		double wait = r->retry_after > 0 ? r->retry_after : 60;
		or_q_done(or_q("UPDATE accounts SET paused_until = max(paused_until, ?2) WHERE name = ?1", "td",
		               p->name, now + wait));
		or_account_forget(p->name);
		if (r->asked_wait > 0) {   /* a wait past max_provider_wait was cut: say so, once */
			char detail[700];
			snprintf(detail, sizeof detail, "asked to wait %.0f s, waiting max_provider_wait (%.0f s): %s",
			         r->asked_wait, wait, r->why);
			or_alert_raise(wait_alert, detail, now);
		}
	}
	if (r->account || r->transport) {   /* 421 pauses and counts, both */
		struct or_account a;
		or_q_done(or_q("UPDATE accounts SET failures = failures + 1, reason = ?2 WHERE name = ?1", "tt",
		               p->name, r->why));
		or_account_forget(p->name);
		or_account_get(p->name, &a);
		if (r->account || a.failures >= p->circuit_failures) {
			char detail[700];
			or_q_done(or_q("UPDATE accounts SET open_until = ?2 WHERE name = ?1", "td", p->name,
			               now + p->circuit_cooldown));
			or_account_forget(p->name);
			snprintf(detail, sizeof detail, "circuit open after %d failure%s: %s", a.failures,
			         a.failures == 1 ? "" : "s", r->why);
			or_alert_raise(alert, detail, now);
		}
	}
}

/* ================================================================
 * STORE: the job state machine
 *
 * Every change of a job's state is a row of or_transitions, applied by
 * or_job_move, the one statement of the program that sets a job's state,
 * guarded by the state the caller believes the job is in: a job another
 * process moved meanwhile is left alone (the caller sees 0).  A transition
 * not in the table is a bug, never data: exit 70, like a second statement
 * at one or_q site.  The folder column is where the job's file belongs once
 * the row is applied; recovery, SEND and the reports read it (or_state_dir,
 * or_job_dir).  A set-based change (recovery, cancel) reads its ids and
 * applies one transition each, off the hot path.  Ingest inserts rows as
 * waiting, bad or duplicate; the table starts from there.
 * ================================================================ */

static const char *const or_job_state_names[OR_NJOB_STATES] = { "waiting", "claimed", "sending", "sent",
	"held", "failed", "bad", "suppressed", "duplicate", "requeued", "cancelling", "pending", "stopped" };

/* from, to, the slot's effect, the counters row it adds (or NULL), the
 * folder, whether it is how recovery settles `from` after its run died
 * (or_state_dir of an in-flight state) and for which in_doubt_resend */
static const struct or_transition or_transitions[] = {
	{ OR_S_WAITING, OR_S_CLAIMED, "reserved", NULL, OR_D_CUR, -1 },          /* claim */
	{ OR_S_WAITING, OR_S_CANCELLING, "none", NULL, OR_D_DEFER, -1 },        /* cancel, file still in defer/ */
	{ OR_S_CLAIMED, OR_S_SENDING, "none", NULL, OR_D_CUR, -1 },             /* the intent */
	{ OR_S_CLAIMED, OR_S_WAITING, "deleted", NULL, OR_D_DEFER, 2 },         /* recovery, release, not started */
	{ OR_S_CLAIMED, OR_S_FAILED, "void", "failed", OR_D_FAILED, -1 },       /* a problem before any intent */
	{ OR_S_CLAIMED, OR_S_BAD, "deleted", NULL, OR_D_BAD, -1 },              /* released: unreadable, lost */
	{ OR_S_CLAIMED, OR_S_SUPPRESSED, "deleted", NULL, OR_D_DONE, -1 },      /* released: on the list */
	{ OR_S_CLAIMED, OR_S_DUPLICATE, "deleted", NULL, OR_D_DONE, -1 },       /* released: content sent before */
	{ OR_S_SENDING, OR_S_SENT, "sent", "sent", OR_D_DONE, -1 },
	{ OR_S_SENDING, OR_S_WAITING, "void/doubt", NULL, OR_D_DEFER, 1 },      /* account wait, retry; resend */
	{ OR_S_SENDING, OR_S_HELD, "doubt", NULL, OR_D_HELD, 0 },               /* in doubt, not resent */
	{ OR_S_SENDING, OR_S_FAILED, "void", "failed", OR_D_FAILED, -1 },
	{ OR_S_HELD, OR_S_SENT, "sent", NULL, OR_D_DONE, -1 },                  /* an event proved it delivered */
	{ OR_S_HELD, OR_S_WAITING, "none", NULL, OR_D_DEFER, -1 },              /* requeue */
	{ OR_S_FAILED, OR_S_WAITING, "none", NULL, OR_D_DEFER, -1 },            /* requeue, attempts from 0 */
	{ OR_S_BAD, OR_S_REQUEUED, "none", NULL, OR_D_NEW, -1 },                /* requeue: ingested anew */
	{ OR_S_CANCELLING, OR_S_FAILED, "none", "failed", OR_D_FAILED, -1 },    /* cancel finished */
	/* a sequence's follow-ups: held in the ledger (body), no file behind them */
	{ OR_S_PENDING, OR_S_WAITING, "none", NULL, OR_D_DEFER, -1 },           /* the previous step went */
	{ OR_S_PENDING, OR_S_STOPPED, "none", "stopped", OR_D_DONE, -1 },       /* its lead stopped */
	{ OR_S_PENDING, OR_S_CANCELLING, "none", NULL, OR_D_DEFER, -1 },        /* cancel */
	{ OR_S_WAITING, OR_S_STOPPED, "none", "stopped", OR_D_DONE, -1 },       /* its lead stopped */
	{ OR_S_CLAIMED, OR_S_STOPPED, "deleted", "stopped", OR_D_DONE, -1 },    /* released: its lead stopped */
};

/* The name of state s as the ledger spells it ("?" for none). */
OR_STATIC const char *or_job_state_name(int s)
{
	return s >= 0 && s < OR_NJOB_STATES ? or_job_state_names[s] : "?";
}

/* Row i of the table, NULL past its end (for a reader of the whole table). */
OR_STATIC const struct or_transition *or_transition_at(size_t i)
{
	return i < sizeof or_transitions / sizeof *or_transitions ? &or_transitions[i] : NULL;
}

/* The state of a name; -1 for one the table does not know ('ingest' of
 * a ledger older than v12, or none). */
OR_STATIC int or_job_state_of(const char *name)
{
	for (int s = 0; s < OR_NJOB_STATES; s++)
		if (!strcmp(or_job_state_names[s], name))
			return s;
	return -1;
}

/* The row from -> to; a transition not in the table ends the process
 * (exit 70): the caller is wrong, and no ledger write may follow. */
OR_STATIC const struct or_transition *or_transition(int from, int to)
{
	for (size_t i = 0; i < sizeof or_transitions / sizeof *or_transitions; i++)
		if (or_transitions[i].from == from && or_transitions[i].to == to)
			return &or_transitions[i];
	fprintf(stderr, "outreach: internal error: job transition %s -> %s is not in the table\n",
	        or_job_state_name(from), or_job_state_name(to));
	exit(OR_EX_SOFTWARE);
}

/* The folder of a job in this state, as recovery settles it and reports
 * count it: an in-flight state (claimed, sending) by the row recovery
 * applies for this in_doubt_resend, any other by the rows into it;
 * defer/ for a state the table does not know. */
OR_STATIC int or_job_state_dir(int state, int resend)
{
	size_t n = sizeof or_transitions / sizeof *or_transitions;

	for (size_t i = 0; i < n; i++)
		if (or_transitions[i].from == state && (or_transitions[i].recovery == 2 ||
		    or_transitions[i].recovery == (resend != 0)))
			return or_transitions[i].folder;
	for (size_t i = 0; i < n; i++)
		if (or_transitions[i].to == state)
			return or_transitions[i].folder;
	return OR_D_DEFER;
}

/* The folder the file goes to by from -> to (exit 70 if not a transition). */
OR_STATIC int or_job_dir(int from, int to)
{
	return or_transition(from, to)->folder;
}

/* The ids st reads (its first column), all of them, st reset (inside the
 * caller's transaction: a set-based change is these ids, then one
 * transition each). */
static int or_ids_take(sqlite3_stmt *st, char (**ids)[OR_ID_HEX + 1])
{
	int n = 0;

	*ids = NULL;
	while (or_step(st) == SQLITE_ROW) {
		*ids = or_xrealloc(*ids, sizeof **ids * (size_t)(n + 1));
		snprintf((*ids)[n++], sizeof **ids, "%s", or_col(st, 0));
	}
	sqlite3_reset(st);
	return n;
}

/* The per-state counts a transaction changed, kept in memory until its
 * commit writes them (or_state_counts_flush): a send moves its job three
 * times, and three moves of a client's jobs written as they happen were
 * six upserts of one row each; a turn of k sends writes a few rows once.
 * A crash or a rollback loses them with the moves they count. */
struct or_sc_delta { char *client, *campaign; int state; long long n; };
static struct or_sc_delta *or_sc;
static int or_nsc, or_sc_cap;

static void or_sc_add(const char *client, const char *campaign, int state, int n)
{
	int i;

	for (i = 0; i < or_nsc; i++)
		if (or_sc[i].state == state && !strcmp(or_sc[i].client, client) && !strcmp(or_sc[i].campaign, campaign))
			break;
	if (i == or_nsc) {
		if (or_nsc == or_sc_cap) {
			or_sc_cap = or_sc_cap ? 2 * or_sc_cap : 16;
			or_sc = or_xrealloc(or_sc, sizeof *or_sc * (size_t)or_sc_cap);
		}
		or_sc[i] = (struct or_sc_delta){ or_xstrdup(client), or_xstrdup(campaign), state, 0 };
		or_nsc++;
	}
	or_sc[i].n += n;
}

/* Writes the counts the open transaction changed (before its COMMIT, or at
 * once after a move made outside one); a fall goes to the row that exists,
 * as a move's always did. */
static void or_state_counts_flush(void)
{
	for (int i = 0; i < or_nsc; i++) {
		struct or_sc_delta *d = &or_sc[i];
		if (d->n > 0)
			or_q_done(or_q("INSERT INTO state_counts VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET n = n + excluded.n",
			               "ttti", d->client, d->campaign, or_job_state_names[d->state], d->n));
		else if (d->n < 0)
			or_q_done(or_q("UPDATE state_counts SET n = n + ?4 WHERE client = ?1 AND campaign = ?2 AND state = ?3",
			               "ttti", d->client, d->campaign, or_job_state_names[d->state], d->n));
		free(d->client);
		free(d->campaign);
	}
	or_nsc = 0;
}

/* The SET list of or_job_move's one statement, a column to each bit of
 * or_job_set.set (OR_JS_*), in that order; the attempts forms follow. */
static const char *const or_job_set_cols[] = {
	"next_due = ?5", "last_error = ?6", "sent_at = ?7", "sent_at = coalesce(sent_at, updated_at)",
	"provider_id = ?8", "message_id = ?9", "run_id = ?10", "sender = ?11", "account = ?12",
	"slot_at = ?13", "subject = ?14", "created_at = ?15", "updated_at = ?16",
};

/* Applies from -> to to job id with the columns s gives (the others kept),
 * inside the caller's transaction (or as one autocommit statement).
 * Returns 1 when the row changed, 0 when the job was not in `from` (or
 * does not exist).  One statement for every transition, its SET list
 * naming only the columns s gives: a column named there has its index
 * entries rewritten even when the value is kept (jobs_run, jobs_msgid,
 * jobs_provider, jobs_sent ...), so a statement that named every column
 * cost each move all of them.  The text is built once per column mask
 * from the one template below and prepared once (a small cache of its own,
 * one or_q site per mask: a site still prepares one SQL); the masks are
 * the callers' constants, a few dozen at most, so a full cache is a bug
 * (exit 70). */
OR_STATIC int or_job_move(const char *id, int from, int to, const struct or_job_set *s)
{
	static const struct or_job_set none;
	enum { NCOLS = sizeof or_job_set_cols / sizeof *or_job_set_cols, NCACHE = 64 };
	static struct { unsigned key; char *sql; struct or_stmt_site site; } cache[NCACHE];
	static int ncache;
	unsigned set, key;
	int i;

	or_transition(from, to);
	if (!s)
		s = &none;
	set = s->set & ((1u << NCOLS) - 1);
	if (set & OR_JS_SENT_AT)
		set &= ~(unsigned)OR_JS_SENT_AT_KEPT;   /* the given value wins */
	key = set | (unsigned)(s->attempts == OR_JA_ADD ? 1 : s->attempts == OR_JA_GIVE_BACK ? 2 :
	                       s->attempts == OR_JA_RESET ? 3 : 0) << NCOLS;
	for (i = 0; i < ncache && cache[i].key != key; i++)
		;
	if (i == ncache) {
		struct or_buf b = { 0 };

		if (ncache == NCACHE) {
			fprintf(stderr, "outreach: internal error: more than %d column masks in or_job_move\n", NCACHE);
			exit(OR_EX_SOFTWARE);
		}
		or_buf_puts(&b, "UPDATE jobs SET state = ?3");
		for (int k = 0; k < NCOLS; k++)
			if (set & (1u << k)) {
				or_buf_puts(&b, ", ");
				or_buf_puts(&b, or_job_set_cols[k]);
			}
		or_buf_puts(&b, key >> NCOLS == 1 ? ", attempts = attempts + 1" :
		               key >> NCOLS == 2 ? ", attempts = max(attempts - 1, 0)" :
		               key >> NCOLS == 3 ? ", attempts = 0" : "");
		or_buf_puts(&b, " WHERE id = ?1 AND state = ?2");
		cache[i].key = key;
		cache[i].sql = b.s;
		ncache++;
	}
	or_q_done(or_q_at(&cache[i].site, cache[i].sql, "ttti" "dtdttttt" "dtdd", id,
	                  or_job_state_names[from], or_job_state_names[to], (long long)s->set,
	                  s->next_due, s->last_error, s->sent_at, s->provider_id, s->message_id, s->run_id,
	                  s->sender, s->account, s->slot_at, s->subject, s->created_at, s->updated_at));
	if (sqlite3_changes(or_db) == 0)
		return 0;
	/* the row's client and campaign by a read of its key: a RETURNING
	 * clause costs the update a temporary table (more than this read) */
	sqlite3_stmt *st = or_q("SELECT coalesce(client, ''), coalesce(campaign, '') FROM jobs WHERE id = ?1", "t", id);
	if (from != to && or_step(st) == SQLITE_ROW) {
		or_sc_add(or_col(st, 0), or_col(st, 1), from, -1);
		or_sc_add(or_col(st, 0), or_col(st, 1), to, 1);
	}
	sqlite3_reset(st);
	if (sqlite3_get_autocommit(or_db))
		or_state_counts_flush();
	return 1;
}

/* ================================================================
 * STORE: ingest and recovery operations
 *
 * arrivals taken into the ledger, dead runs' claims settled, cancellations finished.
 * ================================================================ */

/* The row of a new waiting job (inside the batch's transaction); 0 (nothing
 * written) when its ledger id is taken already, i.e. the producer sent the
 * same id before.  One statement: the conflict is the duplicate check. */
static int or_arrival_waiting(const struct or_arrival *a)
{
	or_q_done(or_q("INSERT INTO jobs(id, producer_id, client, campaign, rcpt, rcpt_domain, pin, "
	               "content, not_before, win_days, win_start, win_end, win_tz, state, "
	               "next_due, created_at, updated_at, thread) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
	               "CASE WHEN ?17 THEN ?10 END, ?11, ?12, ?13, 'waiting', ?14, ?15, ?15, ?16) "
	               "ON CONFLICT(id) DO NOTHING",
	               "tttttttt" "diiit" "ddti",
	               a->id, a->producer, a->client, a->campaign, a->rcpt, a->rcpt_domain, a->pin,
	               a->content, a->not_before, (long long)a->win_days, (long long)a->win_start,
	               (long long)a->win_end, a->win_tz, a->due, a->now, a->thread, (long long)a->win_set));
	return sqlite3_changes(or_db) > 0;
}

/* Records one arrival and lists it in arrivals (inside the batch's
 * transaction).  Returns 1 when it goes to defer/, else 0 (bad/ counted in
 * *bad, or done/ as a duplicate of the producer id's first job). */
static int or_arrival_record(const struct or_arrival *a, int *bad)
{
	char id[OR_ID_HEX + 1], safe[300], err[300];

	if (a->reason) {
		or_ledger_id_random(a->name, id);
		or_q_done(or_q("INSERT INTO jobs(id, state, last_error, created_at, updated_at) "
		               "VALUES(?1, 'bad', ?2, ?3, ?3)", "ttd", id, a->reason, a->now));
		or_q_done(or_q("INSERT INTO arrivals(id, arrival, target) VALUES(?1, ?2, 'bad')", "tt", id, a->name));
		or_log(1, "event=bad job=%s file=\"%s\" reason=\"%s\"", id, or_safe(a->name, safe, sizeof safe),
		       or_safe(a->reason, err, sizeof err));
		(*bad)++;
		return 0;
	}
	if (or_arrival_waiting(a)) {
		or_q_done(or_q("INSERT INTO arrivals(id, arrival, target) VALUES(?1, ?2, 'defer')", "tt", a->id, a->name));
		if (a->nfollow)
			or_seq_record(a);
		return 1;
	}
	or_ledger_id_random(a->id, id);   /* the same producer id came before: a duplicate of it */
	or_q_done(or_q("INSERT INTO jobs(id, producer_id, client, campaign, rcpt, rcpt_domain, state, "
	               "dup_of, last_error, created_at, updated_at) VALUES(?1, ?2, ?3, ?4, "
	               "?5, ?6, 'duplicate', ?7, 'duplicate of ' || ?7, ?8, ?8)", "tttttttd",
	               id, a->producer, a->client, a->campaign, a->rcpt, a->rcpt_domain, a->id, a->now));
	or_q_done(or_q("INSERT INTO arrivals(id, arrival, target) VALUES(?1, ?2, 'done')", "tt", id, a->name));
	or_log(2, "event=duplicate job=%s dup_of=%s", id, a->id);
	return 0;
}

/* Ingests a batch of arrivals read from new/ (n may be 0: the transaction is
 * still taken, as every batch's is).  BEGIN IMMEDIATE; no quota.  Returns
 * the arrivals bound for defer/, their bad ones counted in *bad.  A crash
 * after it leaves final rows listed in arrivals with their files still in
 * new/: the next ingester's or_ingest_finish moves them (claims skip them). */
static int or_store_ingest_batch(const struct or_arrival *a, int n, int *bad)
{
	int deferred = 0;

	or_begin();
	for (int i = 0; i < n; i++)
		deferred += or_arrival_record(&a[i], bad);
	or_commit();
	return deferred;
}

static void or_listed_free(struct or_listed *l, int n)
{
	for (int i = 0; i < n; i++) {
		free(l[i].arrival);
		free(l[i].error);
	}
	free(l);
}

/* The arrivals listed but not yet moved out of new/, in the listing's order,
 * with a bad one's reason.  A read, no lock. */
static int or_store_arrivals(struct or_listed **out)
{
	sqlite3_stmt *st = or_q("SELECT id, arrival, target FROM arrivals", "");   /* in the order of the listing */
	int n = 0;

	*out = NULL;
	while (or_step(st) == SQLITE_ROW) {
		struct or_listed *l;
		*out = or_xrealloc(*out, sizeof **out * (size_t)(n + 1));
		l = &(*out)[n++];
		snprintf(l->id, sizeof l->id, "%s", or_col(st, 0));
		l->arrival = or_xstrdup(or_col(st, 1));
		snprintf(l->target, sizeof l->target, "%s", or_col(st, 2));
		l->error = NULL;
		if (!strcmp(l->target, "bad")) {
			sqlite3_stmt *why = or_q("SELECT last_error FROM jobs WHERE id = ?1", "t", l->id);
			l->error = or_xstrdup(or_step(why) == SQLITE_ROW ? or_col(why, 0) : "");
			sqlite3_reset(why);
		}
	}
	sqlite3_reset(st);
	return n;
}

/* Forgets the list of arrivals once their files moved and the folders were
 * fsynced.  BEGIN IMMEDIATE at synchronous=NORMAL: forgetting needs no fsync
 * of its own, since a crash before it is durable only leaves the list,
 * which the next ingester finishes again (its moves find nothing left). */
static void or_store_arrivals_done(void)
{
	or_begin_unsynced();
	or_q_done(or_q("DELETE FROM arrivals", ""));
	or_commit_unsynced();
}

/* A run's row, 'running', written inside the first transaction that gives
 * the run something to recover: the claim batch that claims its first job
 * (or_store_claim_batch).  From then on jobs and slots carry the run's id,
 * and recovery finds them through this row; the row commits with them, so
 * no claim is ever durable without it.  No quota.  Before it the run holds
 * nothing a crash could strand (a crash leaves its lock file, swept by
 * or_is_run_stray), and a tick that claims nothing writes no row at all
 * (or_store_run_end): an idle tick commits nothing, so the WAL, which the
 * next process to open the ledger reads whole to rebuild its index, does
 * not grow by a few pages every minute. */
static void or_store_run_row(struct or_run *run)
{
	if (run->row)
		return;
	or_q_done(or_q("INSERT INTO runs(id, pid, started_at, state) VALUES(?1, ?2, ?3, 'running')", "tid", run->id,
	               (long long)getpid(), run->started));
	run->row = 1;
}

/* Whether a run was idle: it claimed, ingested and moved nothing. */
static int or_run_idle(const struct or_run *run)
{
	return !run->claimed && !run->reserved && !run->sent && !run->deferred && !run->failed && !run->bad &&
	       !run->held && !run->suppressed && !run->duplicate && !run->ingested;
}

/* A run ends: 'done' with its figures, after its files were fsynced.
 * BEGIN IMMEDIATE; no quota.  A crash before it leaves the run 'running'
 * (recovered next run, finding every file already in place), or, for a run
 * that claimed nothing, no row at all.  An idle run (it claimed, ingested
 * and moved nothing) has no row and writes none: nothing to recover, and
 * its reports show it.  A run with a row that ended idle all the same
 * commits at synchronous=NORMAL: losing its row to a power loss is the
 * crash before it, and recovering a run that holds nothing changes nothing
 * but the row.  A run that did work without claiming (it ingested, say)
 * writes its finished row here, synced. */
static void or_store_run_end(struct or_run *run, double now)
{
	int idle = or_run_idle(run);

	if (idle && !run->row)
		return;
	if (idle)
		or_begin_unsynced();
	else
		or_begin();
	or_store_run_row(run);
	or_q_done(or_q("UPDATE runs SET state = 'done', ended_at = ?2, claimed = ?3, sent = ?4, deferred = ?5, "
	               "failed = ?6, bad = ?7, held = ?8, ingested = ?9 WHERE id = ?1", "tdiiiiiii", run->id,
	               now, (long long)run->claimed, (long long)run->sent, (long long)run->deferred,
	               (long long)run->failed, (long long)run->bad, (long long)run->held, (long long)run->ingested));
	if (idle)
		or_commit_unsynced();
	else
		or_commit();
}

/* The ledger closes without the checkpoint SQLite makes when its last
 * connection closes, which fsyncs the WAL and the database file (and
 * deletes the WAL).  Never needed for durability: every commit that had to
 * be durable synced the WAL itself, and the next writer's automatic
 * checkpoint (wal_autocheckpoint, 1000 pages) or the next busy run's close
 * moves the frames into the database.  For an idle run, so that it syncs
 * nothing. */
static void or_store_close_lazily(void)
{
	if (or_db)
		sqlite3_db_config(or_db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
}

/* The runs still 'running' other than self (alive or dead: the caller tries
 * their locks).  A read, no lock. */
static int or_store_runs_running(const char *self, char (**ids)[33])
{
	sqlite3_stmt *st = or_q("SELECT id FROM runs WHERE state = 'running' AND id != ?1", "t", self);
	int n = 0;

	*ids = NULL;
	while (or_step(st) == SQLITE_ROW) {
		*ids = or_xrealloc(*ids, sizeof **ids * (size_t)(n + 1));
		snprintf((*ids)[n++], 33, "%s", or_col(st, 0));
	}
	sqlite3_reset(st);
	return n;
}

/* The jobs of run `run` in state `from` each moved to `to` with s (inside
 * the caller's transaction): the ids read first, then one transition each. */
static void or_run_jobs_move(const char *run, int from, int to, const struct or_job_set *s)
{
	char (*ids)[OR_ID_HEX + 1];
	int n = or_ids_take(or_q("SELECT id FROM jobs WHERE run_id = ?1 AND state = ?2", "tt", run,
	                         or_job_state_names[from]), &ids);

	for (int i = 0; i < n; i++)
		or_job_move(ids[i], from, to, s);
	free(ids);
}

/* Settles a dead run's rows: claimed -> waiting (its slots returned),
 * sending -> held, or waiting to be resent (resend), reserved slots ->
 * doubt.  BEGIN IMMEDIATE; gives back the claimed jobs' slots (their daily units).  A crash
 * after it leaves the files in cur/ and the run 'running': recovered again,
 * which finds nothing left to settle and moves them. */
static void or_store_recover_run(const char *dead, int resend, double now)
{
	struct or_job_set back = { .set = OR_JS_UPDATED_AT, .updated_at = now };
	struct or_job_set again = { .set = OR_JS_NEXT_DUE | OR_JS_UPDATED_AT | OR_JS_LAST_ERROR, .next_due = now,
	                            .updated_at = now,
	                            .last_error = "in doubt: the run died during the transfer; resending" };
	struct or_job_set held = { .set = OR_JS_UPDATED_AT | OR_JS_LAST_ERROR, .updated_at = now,
	                           .last_error = "in doubt: the run died during the transfer" };

	or_begin();
	or_q_done(or_q("DELETE FROM slots WHERE job_id IN (SELECT id FROM jobs WHERE run_id = ?1 AND "
	               "state = 'claimed') AND run_id = ?1", "t", dead));
	or_run_jobs_move(dead, OR_S_CLAIMED, OR_S_WAITING, &back);
	or_run_jobs_move(dead, OR_S_SENDING, resend ? OR_S_WAITING : OR_S_HELD, resend ? &again : &held);
	or_q_done(or_q("UPDATE slots SET state = 'doubt' WHERE run_id = ?1 AND state = 'reserved'", "t", dead));
	or_commit();
}

static void or_job_rows_free(struct or_job_row *r, int n)
{
	for (int i = 0; i < n; i++)
		free(r[i].note);
	free(r);
}

/* One row of a job list read by st: id, state, last_error. */
static void or_job_row_take(sqlite3_stmt *st, struct or_job_row **out, int *n, int state_col, int note_col)
{
	struct or_job_row *r;

	*out = or_xrealloc(*out, sizeof **out * (size_t)(*n + 1));
	r = &(*out)[(*n)++];
	snprintf(r->id, sizeof r->id, "%s", or_col(st, 0));
	snprintf(r->state, sizeof r->state, "%s", state_col >= 0 ? or_col(st, state_col) : "");
	r->note = or_xstrdup(note_col >= 0 ? or_col(st, note_col) : "");
	r->no_file = 0;
}

/* Every job a run touched, with its state and last error (where recovery
 * puts its file).  A read, no lock. */
static int or_store_run_jobs(const char *run_id, struct or_job_row **out)
{
	sqlite3_stmt *st = or_q("SELECT id, state, last_error, body IS NOT NULL FROM jobs WHERE run_id = ?1", "t", run_id);
	int n = 0;

	*out = NULL;
	while (or_step(st) == SQLITE_ROW) {
		or_job_row_take(st, out, &n, 1, 2);
		(*out)[n - 1].no_file = sqlite3_column_int(st, 3);
	}
	sqlite3_reset(st);
	return n;
}

/* A dead run is recovered, all its files moved and fsynced.  BEGIN
 * IMMEDIATE; no quota.  A crash before it: recovered again (idempotent). */
static void or_store_run_recovered(const char *dead, double now)
{
	or_begin();
	or_q_done(or_q("UPDATE runs SET state = 'recovered', ended_at = ?2 WHERE id = ?1", "td", dead, now));
	or_commit();
}

/* The jobs being cancelled ('cancelling'), with the reason.  A read, no lock. */
static int or_store_cancelling(struct or_job_row **out)
{
	sqlite3_stmt *st = or_q("SELECT id, last_error FROM jobs WHERE state = 'cancelling'", "");
	int n = 0;

	*out = NULL;
	while (or_step(st) == SQLITE_ROW)
		or_job_row_take(st, out, &n, -1, 1);
	sqlite3_reset(st);
	return n;
}

/* The cancelled jobs, their files in failed/ and fsynced, become 'failed'
 * (counted).  BEGIN IMMEDIATE; no quota (a cancelled job held none).  A
 * crash before it: the next run moves nothing (ENOENT) and finishes it. */
static void or_store_cancel_finish(void)
{
	struct or_job_row *jobs;
	int n;

	or_begin();
	or_q_done(or_q("INSERT INTO counters(kind, client, campaign, sender, n) SELECT 'failed', client, campaign, '', "
	               "count(*) FROM jobs WHERE state = 'cancelling' GROUP BY client, campaign ON CONFLICT DO UPDATE SET "
	               "n = n + excluded.n", ""));
	n = or_store_cancelling(&jobs);   /* the same rows, read inside the transaction */
	for (int i = 0; i < n; i++)
		or_job_move(jobs[i].id, OR_S_CANCELLING, OR_S_FAILED, NULL);   /* updated_at kept: the cancel's */
	or_job_rows_free(jobs, n);
	or_commit();
}

/* ================================================================
 * STORE: claim operations
 *
 * a client's due jobs claimed (job, sender, account, slot), the plan's reads.
 * ================================================================ */

struct or_claim {
	char id[OR_ID_HEX + 1];
	char client[OR_MAX_LABEL + 1];
	int sender;            /* index, -1 when the job's pin matches no sender */
	int account;           /* provider index the send goes through (primary or fallback) */
	double slot;           /* virtual time of the reserved slot */
	int attempts;
	double created_at;
	int held_in_ledger;    /* a follow-up: its job is the ledger's body, no file to move */
	/* read by the claim inside its transaction (or_claim_facts), so that
	 * the send does not open a read transaction of its own for each */
	int suppressed;        /* its recipient is on the suppression list */
	int duplicate;         /* its content went to the recipient already */
	char msgid[512];       /* the Message-ID an earlier intent recorded ("<…>"), or "" */
};

struct or_candidate {   /* what the claim query returns about a job */
	char id[OR_ID_HEX + 1], pin[256];
	struct or_window win;
	int attempts;
	double created_at;
	char rcpt[OR_MAX_ADDR + 1], rdomain[256], thread[OR_MAX_ID + 1];
	int rgroup;             /* index into cfg->rgroups, -1 */
	int sticky_fallback;    /* its sticky sender is gone: rotation picks */
	int held_in_ledger;     /* a follow-up: its job is the ledger's body, no file */
};

/* The next due job of client ?1 at ?2, in claim order: read in jobs_due's
 * order, so a claim costs the same however many jobs wait (tests/unit.c
 * counts its VM steps). */
/* The pause check's "+" keeps pauses' index out of it: the table is a few
 * rows, and a two-value IN that drives an index lookup builds a temporary
 * b-tree for each run of the statement (two a claim, ~4 % of a send),
 * while one that only filters is two comparisons. */
OR_STATIC const char or_claim_sql[] =
	"SELECT id, pin, win_days, win_start, win_end, win_tz, attempts, created_at, rcpt, "
	"rcpt_domain, coalesce(thread, ''), body IS NOT NULL FROM jobs WHERE state = 'waiting' AND client = ?1 "
	"AND next_due <= ?2 AND NOT EXISTS (SELECT 1 FROM pauses p WHERE p.sender = '' AND "
	"+p.client IN ('', jobs.client) AND +p.campaign IN ('', jobs.campaign)) "
	"AND NOT EXISTS (SELECT 1 FROM arrivals a WHERE a.id = jobs.id) "
	"ORDER BY next_due, created_at LIMIT 1";

/* The client's next due job at now into *c: 1, or 0 when none is due (inside
 * the caller's transaction).  With recipient groups, a job of the group
 * claimed last (group_domains, a JSON array) goes behind the others, so a
 * tick interleaves mailbox providers.  c->rgroup is the caller's. */
static int or_claim_next(const struct or_config *cfg, const char *client, double now, const char *group_domains,
                         struct or_candidate *c)
{
	sqlite3_stmt *st = cfg->nrgroups == 0 ?
		or_q(or_claim_sql, "td", client, now) :
		or_q("SELECT id, pin, win_days, win_start, win_end, win_tz, attempts, created_at, rcpt, "
		     "rcpt_domain, coalesce(thread, ''), body IS NOT NULL FROM jobs WHERE state = 'waiting' AND client = ?1 "
		     "AND next_due <= ?2 AND NOT EXISTS (SELECT 1 FROM pauses p WHERE p.sender = '' AND "
		     "+p.client IN ('', jobs.client) AND +p.campaign IN ('', jobs.campaign)) "
		     "AND NOT EXISTS (SELECT 1 FROM arrivals a WHERE a.id = jobs.id) "
		     "ORDER BY (rcpt_domain IN (SELECT value FROM json_each(?3))), next_due, created_at LIMIT 1",
		     "tdt", client, now, group_domains[0] ? group_domains : "[]");

	if (or_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return 0;
	}
	snprintf(c->id, sizeof c->id, "%s", or_col(st, 0));
	snprintf(c->pin, sizeof c->pin, "%s", or_col(st, 1));
	if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		c->win.set = 1;
		c->win.days = (unsigned)sqlite3_column_int(st, 2);
		c->win.start_min = sqlite3_column_int(st, 3);
		c->win.end_min = sqlite3_column_int(st, 4);
		snprintf(c->win.tz, sizeof c->win.tz, "%s", or_col(st, 5));
	}
	c->attempts = sqlite3_column_int(st, 6);
	c->created_at = sqlite3_column_double(st, 7);
	snprintf(c->rcpt, sizeof c->rcpt, "%s", or_col(st, 8));
	snprintf(c->rdomain, sizeof c->rdomain, "%s", or_col(st, 9));
	snprintf(c->thread, sizeof c->thread, "%s", or_col(st, 10));
	c->held_in_ledger = sqlite3_column_int(st, 11);
	sqlite3_reset(st);
	return 1;
}

/* The sender this job should keep: the thread's, else the first one that
 * mailed this recipient for this client (sticky); empty when none.  A read,
 * inside the caller's transaction. */
static void or_sticky_read(const char *client, const char *thread, const char *rcpt, char *out, size_t n)
{
	sqlite3_stmt *st;

	out[0] = 0;
	if (*thread) {
		char alt[OR_ID_HEX + 1];
		or_ledger_id_of(client, thread, alt);
		st = or_q("SELECT sender FROM jobs WHERE client = ?1 AND id IN (?2, ?3) AND sender IS NOT NULL "
		          "AND state IN ('sent', 'held') ORDER BY sent_at DESC LIMIT 1", "ttt", client, thread, alt);
	} else   /* min(), not ORDER BY .. LIMIT 1: no sorter for each claim (SQLite takes the bare
	          * column from the min row; a held send, sent_at NULL, counts when none has one) */
		st = or_q("SELECT sender, min(sent_at) FROM jobs WHERE client = ?1 AND rcpt = ?2 AND state IN "
		          "('sent', 'held') AND sender IS NOT NULL", "tt", client, rcpt);
	if (or_step(st) == SQLITE_ROW)
		snprintf(out, n, "%s", or_col(st, 0));
	sqlite3_reset(st);
}

/* The slots of recipient group `group` (of one sender, unless NULL) strictly
 * between from and to: their count, *first the earliest.  A read, inside
 * the caller's transaction (so it sees the slots this claim batch holds). */
static long long or_rgroup_slots(const char *group, const char *sender, double from, double to, double *first)
{
	sqlite3_stmt *st = or_q("SELECT count(*), min(at) FROM slots WHERE rgroup = ?1 AND (?2 IS NULL OR sender = ?2) "
	                        "AND at > ?3 AND at < ?4", "ttdd", group, sender, from, to);
	long long n = -1;

	*first = 0;
	if (or_step(st) == SQLITE_ROW) {
		n = sqlite3_column_int64(st, 0);
		*first = sqlite3_column_double(st, 1);
	}
	sqlite3_reset(st);
	return n;
}

/* The job waits until `wait` (inside the caller's transaction): nothing is
 * reserved, the client's next job is weighed instead. */
static void or_claim_defer(const char *id, double wait, double now)
{
	or_q_done(or_q("UPDATE jobs SET next_due = ?2, updated_at = ?3 WHERE id = ?1", "tdd", id, wait, now));
}

/* The slot at `slot` of sender `sender` through account `acct` reserved for
 * job c (inside the caller's transaction): the slot row, which is the unit
 * of the sender's and the client's day the job takes; rr_last; the jitter
 * of the sender's next gap, drawn now; the sticky-fallback counter. */
static void or_claim_reserve(const struct or_config *cfg, const struct or_run *run, const char *client,
                             const struct or_candidate *c, int sender, int acct, double slot)
{
	const struct or_sender *s = &cfg->senders[sender];

	or_q_done(or_q("INSERT INTO slots(sender, account, client, at, day, job_id, run_id, state, rgroup) "
	               "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'reserved', ?8)", "tttdittt", s->name,
	               cfg->providers[acct].name, client, slot,
	               (long long)or_day_number((time_t)slot, cfg->timezone), c->id, run->id,
	               c->rgroup >= 0 ? cfg->rgroups[c->rgroup].name : NULL));
	or_kv_set("rr_last", s->name);
	if (s->jitter > 0) {   /* the extra gap before this sender's next slot, drawn now */
		char key[96], v[32];
		snprintf(key, sizeof key, "jitter:%s", s->name);
		snprintf(v, sizeof v, "%.3f", s->jitter * or_random_unit());
		or_kv_set(key, v);
	}
	if (c->sticky_fallback)
		or_count("sticky_fallback", client, "", s->name);
}

/* The job marked claimed by the run with out's sender, account and slot
 * (inside the caller's transaction). */
static void or_claim_mark(const struct or_config *cfg, const struct or_run *run, const struct or_claim *out, double now)
{
	struct or_job_set s = { .set = OR_JS_RUN_ID | OR_JS_SENDER | OR_JS_ACCOUNT | OR_JS_SLOT_AT | OR_JS_UPDATED_AT,
	                        .run_id = run->id, .sender = out->sender >= 0 ? cfg->senders[out->sender].name : NULL,
	                        .account = out->sender >= 0 ? cfg->providers[out->account].name : NULL,
	                        .slot_at = out->slot, .updated_at = now };

	or_job_move(out->id, OR_S_WAITING, OR_S_CLAIMED, &s);
}

/* What the send asks of the ledger about a claimed job before it builds
 * the message, read inside the claim's transaction: three reads there cost
 * less than three read transactions of their own (each takes and drops the
 * WAL's read lock, four fcntl calls).  A suppression or a duplicate's send
 * that commits between the claim and the build is seen by the next claim,
 * as one that commits just after the build always was. */
static void or_claim_facts(const struct or_candidate *c, struct or_claim *out)
{
	char canon[OR_MAX_ADDR * 2 + 1], *mid;

	or_addr_canon(c->rcpt, canon, sizeof canon);
	out->suppressed = or_store_suppressed(canon, out->client);
	out->duplicate = or_store_duplicate(out->id);
	mid = or_store_message_id(out->id);
	snprintf(out->msgid, sizeof out->msgid, "%s", mid && strlen(mid) < sizeof out->msgid ? mid : "");
	free(mid);
}

/* Claims up to max jobs for the run, clients in turn (or_claim_turns, the
 * policy, runs inside): one BEGIN IMMEDIATE transaction, so overlapping runs
 * interleave their slots instead of doubling up.  Decides quotas: each
 * claim reserves a slot, a unit of its sender's and its client's day.  Its
 * commit is not fsynced (synchronous=NORMAL, see below).  A crash right
 * after it leaves jobs claimed by a dead run with their files still in
 * defer/: recovery makes them waiting again and deletes their slots, so the
 * units come back.  Returns how many claims out holds. */
static int or_store_claim_batch(const struct or_config *cfg, struct or_run *run, struct or_turns *rot, int max,
                                struct or_claim *out)
{
	int n;

	/* A claim need not survive a power cut by itself: the intent that
	 * follows it (synchronous=FULL) syncs the log with it, and a process
	 * crash loses nothing either way.  So claims skip their own fsync. */
	or_begin_unsynced();
	n = or_claim_turns(cfg, run, rot, max, out);
	if (n > 0)
		or_store_run_row(run);
	or_commit_unsynced();
	return n;
}

/* ---- plan's reads ---- */

#define OR_PLAN_HORIZON 60
#define OR_PLAN_COST_DAYS 30   /* plan's money: the last 30 days' sends and the next 30 days' forecast */

struct or_pjob { int client, campaign; double due; unsigned wdays; int wstart, wend; char wtz[64]; char pin[128];
                 double at; int paused;
                 int sender; };   /* the sender or_plan_place chose (its primary account pays), -1 */

/* One client's sends through one account in the last 30 days (or_store_plan_sent). */
struct or_psent { char client[OR_MAX_LABEL + 1]; char account[64]; long long n; };

struct or_plan {               /* what plan forecasts from (or_store_plan_load) */
	struct or_pjob *jobs;      /* pending, earliest due first; at: the forecast (-1: none) */
	int nj, ncl, nca;
	char (*cl)[OR_MAX_LABEL * 2 + 2];   /* clients */
	char (*ca)[OR_MAX_LABEL * 2 + 2];   /* campaigns, "client\1campaign" */
	int *ca_client;            /* per campaign, its client */
	int *client_sent;          /* per client, its sends today */
	struct or_sender_state ss[OR_MAX_SENDERS];
	int sent_today[OR_MAX_SENDERS];
	double last_slot[OR_MAX_SENDERS];   /* max(at) of its slots, 0 */
	int cap[OR_MAX_SENDERS][OR_PLAN_HORIZON];   /* per day, what it may send (or_plan_capacity) */
	struct or_psent *sent;     /* the last 30 days' sends by client and account (or_store_plan_sent) */
	int nsent;
};

static int or_name_slot(char (**names)[OR_MAX_LABEL * 2 + 2], int *n, const char *name)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp((*names)[i], name))
			return i;
	*names = or_xrealloc(*names, sizeof **names * (size_t)(*n + 1));
	snprintf((*names)[*n], OR_MAX_LABEL * 2 + 2, "%s", name);
	return (*n)++;
}

/* One job of the forecast: its client and campaign (named once each in
 * p), window (days 0: none), pin ("" none), whether its scope is paused,
 * and when it is due.  Either store's load calls it. */
static struct or_pjob *or_plan_job_put(struct or_plan *p, const char *client, const char *campaign, unsigned wdays,
                                       int wstart, int wend, const char *wtz, const char *pin, int paused, double due)
{
	char key[OR_MAX_LABEL * 2 + 2];
	struct or_pjob *j;

	p->jobs = or_xrealloc(p->jobs, sizeof *p->jobs * (size_t)(p->nj + 1));
	j = memset(&p->jobs[p->nj++], 0, sizeof *j);
	j->client = or_name_slot(&p->cl, &p->ncl, client);
	snprintf(key, sizeof key, "%s%c%s", client, 1, campaign);
	j->campaign = or_name_slot(&p->ca, &p->nca, key);
	p->ca_client = or_xrealloc(p->ca_client, sizeof *p->ca_client * (size_t)p->nca);
	p->ca_client[j->campaign] = j->client;
	j->due = due;
	j->wdays = wdays;
	j->wstart = wstart;
	j->wend = wend;
	snprintf(j->wtz, sizeof j->wtz, "%s", wtz);
	snprintf(j->pin, sizeof j->pin, "%s", pin);
	j->paused = paused;
	j->at = -1;
	j->sender = -1;
	return j;
}

/* One job of the forecast from a row's columns from c on: client,
 * campaign, win_days, win_start, win_end, win_tz, pin, paused. */
static struct or_pjob *or_plan_job_add(struct or_plan *p, sqlite3_stmt *st, int c, double due)
{
	return or_plan_job_put(p, or_col(st, c), or_col(st, c + 1), (unsigned)sqlite3_column_int(st, c + 2),
	                       sqlite3_column_int(st, c + 3), sqlite3_column_int(st, c + 4), or_col(st, c + 5),
	                       or_col(st, c + 6), sqlite3_column_int(st, c + 7), due);
}

static int or_pjob_by_due(const void *a, const void *b)
{
	double x = ((const struct or_pjob *)a)->due, y = ((const struct or_pjob *)b)->due;
	return x < y ? -1 : x > y;
}

/* The follow-ups not yet waiting (pending), each at its earliest: the step
 * before's due time (or send) plus its delay, chained along the lead, never
 * before the lead's hold.  Leads that ended have none left. */
static void or_plan_load_followups(const struct or_config *cfg, struct or_plan *p)
{
	sqlite3_stmt *st = or_q("SELECT f.client, f.campaign, coalesce(f.win_days, 0), coalesce(f.win_start, 0), "
	                        "coalesce(f.win_end, 0), coalesce(f.win_tz, ''), coalesce(f.pin, ''), EXISTS (SELECT 1 FROM "
	                        "pauses x WHERE x.sender = '' AND x.client IN ('', f.client) AND x.campaign IN ('', f.campaign)), "
	                        "f.after, coalesce(b.sent_at, b.next_due, 0), f.seq, f.win_days IS NOT NULL, "
	                        "coalesce(l.hold_until, 0) FROM jobs f JOIN leads l ON l.seq = f.seq AND l.state IN "
	                        "('active', 'paused') JOIN jobs b ON b.seq = f.seq AND b.step = f.step - 1 WHERE "
	                        "f.state = 'pending' ORDER BY f.seq, f.step", "");
	char seq[OR_ID_HEX + 1] = "";
	double prev = 0;

	while (or_step(st) == SQLITE_ROW) {
		double base = sqlite3_column_double(st, 9), hold = sqlite3_column_double(st, 12), due;
		struct or_window w = { 0 };
		if (base <= 0 && !strcmp(seq, or_col(st, 10)))
			base = prev;   /* the step before is pending too: its own estimate */
		snprintf(seq, sizeof seq, "%s", or_col(st, 10));
		if (base <= 0)
			continue;
		if ((w.set = sqlite3_column_int(st, 11))) {
			w.days = (unsigned)sqlite3_column_int(st, 2);
			w.start_min = sqlite3_column_int(st, 3);
			w.end_min = sqlite3_column_int(st, 4);
			snprintf(w.tz, sizeof w.tz, "%s", or_col(st, 5));
		}
		due = or_step_due(cfg, or_col(st, 0), base, or_col(st, 8), &w);
		prev = due = due < hold ? hold : due;
		or_plan_job_add(p, st, 0, due);
	}
	sqlite3_reset(st);
}

/* The jobs plan forecasts (waiting, claimed, sending, and follow-ups at
 * their earliest), earliest due first, with their clients and campaigns
 * named once each. */
static void or_plan_load_jobs(const struct or_config *cfg, struct or_plan *p)
{
	sqlite3_stmt *st = or_q("SELECT client, campaign, coalesce(win_days, 0), coalesce(win_start, 0), coalesce(win_end, 0), "
	                        "coalesce(win_tz, ''), coalesce(pin, ''), EXISTS (SELECT 1 FROM pauses p WHERE p.sender = '' AND "
	                        "+p.client IN ('', jobs.client) AND +p.campaign IN ('', jobs.campaign)), next_due FROM jobs "
	                        "WHERE state IN ('waiting', 'claimed', 'sending') ORDER BY next_due, created_at", "");

	while (or_step(st) == SQLITE_ROW)
		or_plan_job_add(p, st, 0, sqlite3_column_double(st, 8));
	sqlite3_reset(st);
	int before = p->nj;
	or_plan_load_followups(cfg, p);
	if (p->nj > before)   /* merged in due order (the loaded rows already are) */
		qsort(p->jobs, (size_t)p->nj, sizeof *p->jobs, or_pjob_by_due);
}

/* Everything plan forecasts from, into *p (or_plan_free releases it): the
 * pending jobs, each sender's state, its sends today and its last slot, each
 * client's sends today.  A read with no lock, statement by statement as the
 * command always read (a run going meanwhile makes the forecast a moment
 * stale, never wrong about what was committed).  Decides no quota and
 * leaves nothing behind. */
static void or_store_plan_load(const struct or_config *cfg, int today, struct or_plan *p)
{
	memset(p, 0, sizeof *p);
	or_plan_load_jobs(cfg, p);
	for (int i = 0; i < cfg->nsenders; i++) {
		or_sender_state_get(&cfg->senders[i], &p->ss[i]);
		p->sent_today[i] = or_sender_sent_on(cfg->senders[i].name, today);
		p->last_slot[i] = or_q_double(or_q("SELECT max(at) FROM slots WHERE sender = ?1", "t",
		                                   cfg->senders[i].name), 0);
	}
	p->client_sent = or_xrealloc(NULL, sizeof *p->client_sent * (size_t)(p->ncl ? p->ncl : 1));
	for (int c = 0; c < p->ncl; c++)
		p->client_sent[c] = or_client_sent_on(p->cl[c], today);
}

/* The last 30 days' sends, [now - 30 d, now), by client and account (the
 * account column: the one that carried each send, a fallback included), into
 * p->sent.  Jobs sent or held (a held one may well have gone: it is paid
 * for) with sent_at in the period; a held job has none yet and counts at the
 * time it was held (updated_at, the sent_at a settle would give it).  As the
 * ledger holds them: retention removes rows finished more than
 * retention_days ago, so retention_days >= 30 keeps the period whole.  A
 * read, after or_store_plan_load. */
static void or_store_plan_sent(double now, struct or_plan *p)
{
	sqlite3_stmt *st = or_q("SELECT coalesce(client, ''), coalesce(account, ''), count(*) FROM (SELECT client, account, "
	                        "coalesce(sent_at, updated_at) AS t FROM jobs WHERE state IN ('sent', 'held')) WHERE "
	                        "t >= ?1 AND t < ?2 GROUP BY 1, 2 ORDER BY 1, 2", "dd",
	                        now - OR_PLAN_COST_DAYS * 86400.0, now);

	while (or_step(st) == SQLITE_ROW) {
		struct or_psent *r;
		p->sent = or_xrealloc(p->sent, sizeof *p->sent * (size_t)(p->nsent + 1));
		r = &p->sent[p->nsent++];
		snprintf(r->client, sizeof r->client, "%s", or_col(st, 0));
		snprintf(r->account, sizeof r->account, "%s", or_col(st, 1));
		r->n = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
}

static void or_plan_free(struct or_plan *p)
{
	free(p->sent);
	free(p->jobs);
	free(p->cl);
	free(p->ca);
	free(p->ca_client);
	free(p->client_sent);
}

/* ================================================================
 * STORE: send operations
 *
 * the send turn (outcomes and intents in one transaction), records, releases.
 * ================================================================ */

/* ---- an outcome's writes (inside the caller's transaction) ---- */

/* The slot a job's claim in run ?2 reserved (?1 the job): the newest of
 * its slots there still reserved.  By rowid, so that an UPDATE or DELETE of
 * it is one pass (by job and run it collected rowids into a temporary
 * b-tree first, slots' triggers forbidding one pass), and only the live
 * one: a job voided (throttled) or in doubt and claimed again in the same
 * run has an older slot there, which by job and run was set too (a voided
 * one made sent counted the day's send twice). */
#define OR_CLAIM_SLOT "id = (SELECT max(id) FROM slots WHERE job_id = ?1 AND run_id = ?2 AND state = 'reserved')"

/* The attempt row of one outcome. */
static void or_attempt_insert(const struct or_config *cfg, const struct or_store_outcome *o, double now)
{
	static const char *vn[] = { "sent", "temporary", "permanent", "in doubt" };
	const struct or_send_result *r = o->r;

	or_q_done(or_q("INSERT INTO attempts(job_id, at, sender, account, outcome, provider_id, message_id, reason) "
	               "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", "tdtttttt", o->id, now,
	               o->sender >= 0 ? cfg->senders[o->sender].name : NULL,
	               o->account >= 0 ? cfg->providers[o->account].name : NULL,
	               r->throttled ? "throttled" : r->account ? "account refused" : vn[r->v],
	               *r->provider_id ? r->provider_id : NULL, *r->message_id ? r->message_id : o->msgid,
	               r->v == OR_OK ? NULL : r->why));
}

/* Sent: the job, its slot, the day's counter. */
static int or_outcome_sent(const char *run_id, int from, const struct or_store_outcome *o, double now)
{
	const struct or_send_result *r = o->r;
	struct or_job_set s = { .set = OR_JS_SENT_AT | OR_JS_PROVIDER_ID | OR_JS_LAST_ERROR | OR_JS_UPDATED_AT,
	                        .sent_at = now, .provider_id = r->provider_id, .last_error = NULL, .updated_at = now };

	if (*r->message_id && strcmp(r->message_id, o->msgid)) {   /* the provider replaced it (SES) */
		s.set |= OR_JS_MESSAGE_ID;
		s.message_id = r->message_id;
	}   /* else the intent recorded it: kept as it is */
	or_job_move(o->id, from, OR_S_SENT, &s);
	or_q_done(or_q("UPDATE slots SET state = 'sent' WHERE " OR_CLAIM_SLOT, "tt", o->id, run_id));
	or_q_done(or_q("INSERT INTO counters(kind, client, campaign, sender, n) SELECT 'sent', client, campaign, sender, 1 "
	               "FROM jobs WHERE id = ?1 ON CONFLICT DO UPDATE SET n = n + 1", "t", o->id));
	return OR_S_SENT;
}

/* Not the job's fault (throttled, the account refused or is down): no
 * attempt burned; it waits for the account (or goes to the fallback at its
 * next claim). */
static int or_outcome_account_wait(const char *run_id, int from, const struct or_store_outcome *o, double now)
{
	const struct or_send_result *r = o->r;
	struct or_job_set s = { .set = OR_JS_NEXT_DUE | OR_JS_LAST_ERROR | OR_JS_UPDATED_AT,
	                        .next_due = r->throttled ? now + (r->retry_after > 0 ? r->retry_after : 60) : now,
	                        .last_error = r->why, .updated_at = now, .attempts = OR_JA_GIVE_BACK };

	or_job_move(o->id, from, OR_S_WAITING, &s);
	or_q_done(or_q("UPDATE slots SET state = 'void' WHERE " OR_CLAIM_SLOT, "tt", o->id, run_id));
	return OR_S_WAITING;
}

/* A temporary failure with attempts and age left: waits out its backoff. */
static int or_outcome_retry(const struct or_config *cfg, const char *run_id, int from,
                            const struct or_store_outcome *o, double now)
{
	struct or_job_set s = { .set = OR_JS_NEXT_DUE | OR_JS_LAST_ERROR | OR_JS_UPDATED_AT,
	                        .next_due = now + or_backoff(cfg, o->attempts + 1), .last_error = o->r->why,
	                        .updated_at = now };

	or_job_move(o->id, from, OR_S_WAITING, &s);
	or_q_done(or_q("UPDATE slots SET state = 'void' WHERE " OR_CLAIM_SLOT, "tt", o->id, run_id));
	return OR_S_WAITING;
}

/* In doubt, not resent: held for a person (or a provider event). */
static int or_outcome_hold(const char *run_id, int from, const struct or_store_outcome *o, double now)
{
	struct or_job_set s = { .set = OR_JS_LAST_ERROR | OR_JS_UPDATED_AT, .last_error = o->r->why,
	                        .updated_at = now };

	or_job_move(o->id, from, OR_S_HELD, &s);
	or_q_done(or_q("UPDATE slots SET state = 'doubt' WHERE " OR_CLAIM_SLOT, "tt", o->id, run_id));
	return OR_S_HELD;
}

/* In doubt, resent (in_doubt_resend): due again now, its slot kept as doubt. */
static int or_outcome_resend(const char *run_id, int from, const struct or_store_outcome *o, double now)
{
	struct or_job_set s = { .set = OR_JS_NEXT_DUE | OR_JS_LAST_ERROR | OR_JS_UPDATED_AT, .next_due = now,
	                        .last_error = o->r->why, .updated_at = now };

	or_job_move(o->id, from, OR_S_WAITING, &s);
	or_q_done(or_q("UPDATE slots SET state = 'doubt' WHERE " OR_CLAIM_SLOT, "tt", o->id, run_id));
	return OR_S_WAITING;
}

/* Failed for good: the job, its slot, a hard-invalid recipient suppressed,
 * the day's counter. */
static int or_outcome_fail(const char *run_id, int from, const struct or_store_outcome *o, double now)
{
	const struct or_send_result *r = o->r;
	char why[600];
	struct or_job_set s = { .set = OR_JS_LAST_ERROR | OR_JS_UPDATED_AT, .last_error = why, .updated_at = now };

	snprintf(why, sizeof why, "%s%s", r->v == OR_TEMP ? "gave up after temporary errors: " : "", r->why);
	or_job_move(o->id, from, OR_S_FAILED, &s);
	or_q_done(or_q("UPDATE slots SET state = 'void' WHERE " OR_CLAIM_SLOT, "tt", o->id, run_id));
	if (r->suppress)
		or_q_done(or_q("INSERT INTO suppressions(address, client, reason, source, created_at) "
		               "SELECT rcpt, '', ?2, 'provider', ?3 FROM jobs WHERE id = ?1 "
		               "ON CONFLICT DO NOTHING", "ttd", o->id, r->why, now));
	or_q_done(or_q("INSERT INTO counters(kind, client, campaign, sender, n) SELECT 'failed', client, campaign, '', 1 "
	               "FROM jobs WHERE id = ?1 ON CONFLICT DO UPDATE SET n = n + 1", "t", o->id));
	return OR_S_FAILED;
}

/* Ledger, slot and account for one outcome of a job in state `from`
 * (sending, or claimed when no intent was written); the way it goes is
 * SEND's rule (or_outcome_decide), on the account as this outcome left it.
 * Returns the folder the file goes to (the state machine's). */
static int or_outcome_write(const struct or_config *cfg, const char *run_id, int from,
                            const struct or_store_outcome *o)
{
	double now = or_now();
	int account_down = 0, to;

	if (o->account >= 0) {
		struct or_account a;
		or_account_outcome(&cfg->providers[o->account], o->r, now);
		or_account_get(cfg->providers[o->account].name, &a);   /* as the outcome left it */
		account_down = a.open_until > now;
	}
	or_attempt_insert(cfg, o, now);
	switch (or_outcome_decide(cfg, o, account_down, now)) {
	case OR_OUT_SENT:
		to = or_outcome_sent(run_id, from, o, now);
		break;
	case OR_OUT_ACCOUNT_WAIT:
		to = or_outcome_account_wait(run_id, from, o, now);
		break;
	case OR_OUT_RETRY:
		to = or_outcome_retry(cfg, run_id, from, o, now);
		break;
	case OR_OUT_HOLD:
		to = or_outcome_hold(run_id, from, o, now);
		break;
	case OR_OUT_RESEND:
		to = or_outcome_resend(run_id, from, o, now);
		break;
	default:
		to = or_outcome_fail(run_id, from, o, now);
		break;
	}
	if (to == OR_S_SENT)
		or_seq_advance(cfg, o->id, now, now);
	else if (to == OR_S_FAILED)
		or_seq_failed(o->id, o->r->why, now);
	return or_job_dir(from, to);
}

/* A transfer that never started (its account went down or was throttled
 * after the claim): back to waiting, no attempt, no booking. */
static int or_outcome_not_started(const char *run_id, const struct or_store_outcome *o)
{
	struct or_job_set s = { .set = OR_JS_NEXT_DUE | OR_JS_LAST_ERROR | OR_JS_UPDATED_AT,
	                        .next_due = or_now() + (o->r->retry_after > 0 ? o->r->retry_after : 0),
	                        .last_error = o->r->why };

	or_q_done(or_q("DELETE FROM slots WHERE " OR_CLAIM_SLOT, "tt", o->id, run_id));
	s.updated_at = or_now();
	or_job_move(o->id, OR_S_CLAIMED, OR_S_WAITING, &s);
	return or_job_dir(OR_S_CLAIMED, OR_S_WAITING);
}

/* ---- the operations ---- */

/* One send turn, BEGIN IMMEDIATE: the outcomes of the transfers that finished
 * (each one's folder into t->dirs), then the intents of those about to start
 * (chosen by t->pick inside the transaction, on the accounts as the outcomes
 * left them, when it is set), one commit for both (one fsync, not two).
 * Reserves no quota (the slots were taken at the claim) but may return units:
 * a slot voided or deleted leaves the day's count (day_counts' triggers); the
 * accounts' circuits and pauses are booked here.  t->pick only reads the
 * ledger, but it moves the caller's queue: a backend that retries the turn
 * must not call it twice.  A crash after it returns: outcomes durable with
 * their files still in cur/ (recovery moves them by state), intents durable
 * with nothing sent yet (recovery finds them in doubt). */
static void or_store_send_turn(const struct or_config *cfg, const char *run_id, struct or_store_turn *t)
{
	or_begin();
	for (int i = 0; i < t->nout; i++)
		t->dirs[i] = t->out[i].not_started ? or_outcome_not_started(run_id, &t->out[i])
		                                   : or_outcome_write(cfg, run_id, OR_S_SENDING, &t->out[i]);
	if (t->pick)
		t->nin = t->pick(t->ctx, t->in);
	for (int i = 0; i < t->nin; i++) {
		struct or_job_set s = { .set = OR_JS_MESSAGE_ID | OR_JS_UPDATED_AT | OR_JS_SUBJECT,
		                        .message_id = t->in[i].msgid, .updated_at = or_now(),
		                        .subject = t->in[i].subject, .attempts = OR_JA_ADD };
		or_job_move(t->in[i].id, OR_S_CLAIMED, OR_S_SENDING, &s);
	}
	or_commit();
}

/* One outcome alone (a problem found before any intent), BEGIN IMMEDIATE;
 * the folder it goes to.  Reserves no quota; a voided slot returns its
 * unit.  A
 * crash after it returns: the ledger has the outcome, the file is still in
 * cur/ (recovery moves it by state). */
static int or_store_record(const struct or_config *cfg, const char *run_id, const struct or_store_outcome *o)
{
	int dir;

	or_begin();
	dir = or_outcome_write(cfg, run_id, OR_S_CLAIMED, o);
	or_commit();
	return dir;
}

/* A claim that will not be sent after all, BEGIN IMMEDIATE: its slot is
 * deleted (the quota unit returned, never reserved anew) and the job takes
 * state.  A crash after it returns: the file still in cur/ under the run's
 * name (recovery moves it by state). */
static void or_store_release(const char *id, const char *run_id, const char *state, const char *why,
                             double next_due, double now)
{
	struct or_job_set s = { .set = OR_JS_LAST_ERROR | OR_JS_NEXT_DUE | OR_JS_UPDATED_AT, .last_error = why,
	                        .next_due = next_due, .updated_at = now };

	or_begin();
	or_q_done(or_q("DELETE FROM slots WHERE " OR_CLAIM_SLOT, "tt", id, run_id));
	if (or_job_move(id, OR_S_CLAIMED, or_job_state_of(state), &s) && strcmp(state, "waiting"))
		or_seq_failed(id, why, now);   /* a step that will never go: the rest of its sequence stops */
	or_commit();
}

/* A claim whose spool file is in neither defer/ nor cur/, BEGIN IMMEDIATE:
 * its slot deleted (the unit returned), the job waiting a minute when cur/
 * could not be listed now (later), else bad.  A crash after it returns:
 * nothing in the spool to move. */
static void or_store_release_lost(const char *id, const char *run_id, int later)
{
	struct or_job_set wait = { .set = OR_JS_NEXT_DUE | OR_JS_LAST_ERROR, .last_error = "spool file not in "
	                           "defer/ and cur/ not listable now: tried again later" };
	struct or_job_set bad = { .set = OR_JS_LAST_ERROR, .last_error = "spool file missing from defer/" };

	or_begin();
	or_q_done(or_q("DELETE FROM slots WHERE " OR_CLAIM_SLOT, "tt", id, run_id));
	if (later) {
		wait.next_due = or_now() + 60;
		or_job_move(id, OR_S_CLAIMED, OR_S_WAITING, &wait);
	} else {
		or_job_move(id, OR_S_CLAIMED, OR_S_BAD, &bad);
	}
	or_commit();
}

/* Clients with a due job, earliest first (the claims rotate from there): a
 * read, no lock; a crash leaves nothing. */
static int or_store_due_clients(char (**out)[OR_MAX_LABEL + 1], double now)
{
	sqlite3_stmt *st = or_q("SELECT client FROM jobs INDEXED BY jobs_next WHERE state = 'waiting' AND next_due <= ?1 "
	                        "GROUP BY client ORDER BY min(next_due)", "d", now);
	int n = 0;

	*out = NULL;
	while (or_step(st) == SQLITE_ROW) {
		*out = or_xrealloc(*out, sizeof **out * (size_t)(n + 1));
		snprintf((*out)[n++], OR_MAX_LABEL + 1, "%s", or_col(st, 0));
	}
	sqlite3_reset(st);
	return n;
}

/* Whether a canonical address is suppressed for the client (or for all): a
 * read, no lock. */
static int or_store_suppressed(const char *canon, const char *client)
{
	return (int)or_q_int(or_q("SELECT 1 FROM suppressions WHERE address = ?1 AND +client IN ('', ?2)",
	                          "tt", canon, client), 0);
}

/* Whether another job of the client took the same content to the same
 * recipient (sent, sending or held): a read, no lock. */
static int or_store_duplicate(const char *id)
{
	return (int)or_q_int(or_q("SELECT 1 FROM jobs o, jobs j WHERE j.id = ?1 AND o.client = j.client AND "
	                          "o.rcpt = j.rcpt AND o.content = j.content AND o.id != j.id AND "
	                          "(o.state IN ('sent', 'held') OR o.state = 'sending')", "t", id), 0);
}

/* The earlier job a reply's thread names (ledger id thread or alt, never id
 * itself), the one sent last first: a read, no lock.  0 when there is none;
 * else its state, Message-ID and subject as delivered (malloc'd) in p. */
static int or_store_thread_parent(const char *client, const char *thread, const char *id, const char *alt,
                                  struct or_store_parent *p)
{
	sqlite3_stmt *st = or_q("SELECT state, coalesce(message_id, ''), coalesce(subject, '') FROM jobs WHERE client = ?1 "
	                        "AND id IN (?2, ?4) AND id != ?3 ORDER BY (state = 'sent') DESC, sent_at DESC "
	                        "LIMIT 1", "tttt", client, thread, id, alt);
	int found = or_step(st) == SQLITE_ROW;

	if (found) {
		snprintf(p->state, sizeof p->state, "%s", or_col(st, 0));
		p->message_id = or_xstrdup(or_col(st, 1));
		p->subject = or_xstrdup(or_col(st, 2));
	}
	sqlite3_reset(st);
	return found;
}

/* The Message-ID the job's earlier intent recorded, when it looks like one
 * ("<…>"), malloc'd; NULL for none: a read, no lock. */
static char *or_store_message_id(const char *id)
{
	sqlite3_stmt *st = or_q("SELECT message_id FROM jobs WHERE id = ?1 AND message_id LIKE '<%>'", "t", id);
	char *mid = or_step(st) == SQLITE_ROW ? or_xstrdup(or_col(st, 0)) : NULL;

	sqlite3_reset(st);
	return mid;
}

/* ================================================================
 * STORE: feedback operations
 *
 * provider events and suppressions recorded, feed cursors, held jobs settled, unsubscribes.
 * ================================================================ */

/* An address on the suppression list (canonical form), once: the caller's
 * transaction, or one autocommit statement.  Nothing else is touched, so a
 * caller may read sqlite3_changes() right after it. */
static void or_suppress(const char *addr, const char *client, const char *reason, const char *source, double now)
{
	char canon[OR_MAX_ADDR * 2 + 1];

	or_addr_canon(addr, canon, sizeof canon);
	or_q_done(or_q("INSERT INTO suppressions(address, client, reason, source, created_at) VALUES(?1, ?2, ?3, "
	               "?4, ?5) ON CONFLICT DO NOTHING", "ttttd", canon, client ? client : "", reason, source, now));
	or_leads_suppressed(addr, client, reason, now);   /* its sequences stop: a manual stop looks the same */
}

/* The event's row, once (events.event_key); 1 if it was new.  Inside the
 * caller's transaction. */
static int or_event_insert(const struct or_provider *p, const struct or_event *ev, const char *rcpt, double now)
{
	or_q_done(or_q("INSERT INTO events(event_key, account, type, subtype, at, rcpt, provider_id, detail, pulled_at) "
	               "VALUES(?1, ?2, ?3, ?4, ?5, nullif(?6, ''), ?7, ?8, ?9) ON CONFLICT(event_key) DO NOTHING",
	               "ttttdtttd", ev->key, p ? p->name : "local", ev->type, ev->subtype, ev->at, rcpt,
	               ev->provider_id, ev->detail, now));
	return sqlite3_changes(or_db) != 0;
}

/* The first column of a lookup's row into job (left as it is when there is
 * no row). */
static void or_event_job_row(sqlite3_stmt *st, char job[OR_ID_HEX + 1])
{
	if (or_step(st) == SQLITE_ROW)
		snprintf(job, OR_ID_HEX + 1, "%s", or_col(st, 0));
	sqlite3_reset(st);
}

/* Which job an event is about, first match wins: its tags, the provider's
 * id, the Message-ID as delivered, the last send to the address from that
 * account, or (an unsubscribe) the last send of that campaign to it.
 * Inside the caller's transaction; job is "" when none matches. */
static void or_event_job(const struct or_provider *p, const struct or_event *ev, const char *rcpt,
                         char job[OR_ID_HEX + 1])
{
	if (ev->job_hint && *ev->job_hint)
		snprintf(job, OR_ID_HEX + 1, "%s", ev->job_hint);
	if (*job && !or_q_int(or_q("SELECT 1 FROM jobs WHERE id = ?1", "t", job), 0))
		job[0] = 0;
	if (!*job && ev->provider_id && *ev->provider_id)
		or_event_job_row(or_q("SELECT id FROM jobs WHERE provider_id = ?1 AND (?2 = '' OR rcpt = ?2) ORDER BY sent_at DESC LIMIT 1",
		                      "tt", ev->provider_id, rcpt), job);
	if (!*job && ev->msgid && *ev->msgid)
		or_event_job_row(or_q("SELECT id FROM jobs WHERE message_id IN (?1, '<' || ?1 || '>') LIMIT 1", "t", ev->msgid),
		                 job);
	if (!*job && *rcpt && p)
		or_event_job_row(or_q("SELECT id FROM jobs WHERE rcpt = ?1 AND account = ?2 AND state IN ('sent', 'held') "
		                      "ORDER BY coalesce(sent_at, updated_at) DESC LIMIT 1", "tt", rcpt, p->name), job);
	if (!*job && *rcpt && ev->client)
		or_event_job_row(or_q("SELECT id FROM jobs WHERE rcpt = ?1 AND client = ?2 AND (?3 IS NULL OR campaign = ?3) AND state IN "
		                      "('sent', 'held') ORDER BY coalesce(sent_at, updated_at) DESC LIMIT 1", "ttt", rcpt, ev->client,
		                      ev->campaign), job);
}

/* An event of no job that names its client (an unsubscribe token): the
 * client and campaign kept on its row, an unsubscribe counted.  Inside the
 * caller's transaction. */
static void or_event_attach_client(const struct or_event *ev, char *client, size_t cn)
{
	snprintf(client, cn, "%s", ev->client);
	or_q_done(or_q("UPDATE events SET client = ?2, campaign = ?3 WHERE event_key = ?1", "ttt", ev->key, ev->client,
	               ev->campaign));
	if (!strcmp(ev->type, "unsubscribed"))
		or_count("event:unsubscribed", ev->client, ev->campaign ? ev->campaign : "", NULL);
}

/* An event joined to its job: the job's fields copied onto the event's
 * row, the event counted, its client (and the address, when the event had
 * none) taken from the job, and a held job added to settle.  Inside the
 * caller's transaction. */
static void or_event_attach(const struct or_event *ev, const char *job, char *client, size_t cn, char *rcpt, size_t rn,
                            struct or_settle *settle)
{
	sqlite3_stmt *st;

	or_q_done(or_q("UPDATE events SET job_id = j.id, client = j.client, campaign = j.campaign, sender = j.sender, "
	               "rcpt = coalesce(events.rcpt, j.rcpt) FROM jobs j WHERE j.id = ?1 AND events.event_key = ?2",
	               "tt", job, ev->key));
	st = or_q("SELECT client, rcpt, state, campaign FROM jobs WHERE id = ?1", "t", job);
	if (or_step(st) == SQLITE_ROW) {
		char campaign[OR_MAX_LABEL + 1], kind[40];
		snprintf(client, cn, "%s", or_col(st, 0));
		snprintf(campaign, sizeof campaign, "%s", or_col(st, 3));
		if (or_event_count_kind(ev->type, kind, sizeof kind))
			or_count(kind, client, campaign, NULL);
		if (!*rcpt)
			snprintf(rcpt, rn, "%s", or_col(st, 1));
		if (!strcmp(or_col(st, 2), "held") && or_event_settles(ev->type)) {
			settle->ids = or_xrealloc(settle->ids, sizeof *settle->ids * (size_t)(settle->n + 1));
			snprintf(settle->ids[settle->n++], OR_ID_HEX + 1, "%s", job);
		}
	}
	sqlite3_reset(st);
}

/* The event's address suppressed as or_event_suppression says: at once, or
 * after the account's soft_bounce_limit soft bounces since its last
 * delivery.  Inside the caller's transaction. */
static void or_event_suppress(const struct or_config *cfg, const struct or_provider *p, const struct or_event *ev,
                              const char *rcpt, const char *client, double now)
{
	const char *scope, *source;
	char why[400], w2[500];

	or_event_why(ev, why, sizeof why);
	switch (or_event_suppression(cfg, p, ev, client, &scope, &source)) {
	case OR_SUPPRESS_NOW:
		or_suppress(rcpt, scope, why, source, now);
		break;
	case OR_SUPPRESS_SOFT:
		if (or_q_int(or_q("SELECT count(*) FROM events WHERE rcpt = ?1 AND type = 'soft_bounce' AND at > "
		                  "coalesce((SELECT max(at) FROM events WHERE rcpt = ?1 AND type = 'delivered'), 0)",
		                  "t", rcpt), 0) < p->soft_bounce_limit)
			break;
		snprintf(w2, sizeof w2, "%d soft bounces in a row; last: %s", p->soft_bounce_limit, why);
		or_suppress(rcpt, NULL, w2, p->name, now);
		break;
	}
}

/* Stores one event and applies its effects (inside the caller's
 * transaction): the row once, its job found and joined, the address
 * suppressed; held jobs it proves delivered are added to settle for the
 * caller to settle after its commit.  1 if it was new, 0 if seen before. */
static int or_event_record(const struct or_config *cfg, const struct or_provider *p, const struct or_event *ev,
                           struct or_settle *settle, double now)
{
	char rcpt[OR_MAX_ADDR + 1] = "", job[OR_ID_HEX + 1] = "", client[OR_MAX_LABEL + 1] = "";

	or_event_rcpt(ev, rcpt, sizeof rcpt);
	if (!or_event_insert(p, ev, rcpt, now))
		return 0;
	or_event_job(p, ev, rcpt, job);
	if (!*job && ev->client)
		or_event_attach_client(ev, client, sizeof client);
	if (*job)
		or_event_attach(ev, job, client, sizeof client, rcpt, sizeof rcpt, settle);
	if (*rcpt)
		or_event_suppress(cfg, p, ev, rcpt, client, now);
	return 1;
}

/* A feed list's row: the cursor (when one is given), the attempt, and its
 * success or error.  Inside the caller's transaction. */
static void or_feed_mark(const char *account, const char *list, const char *cursor, const char *error, double now)
{
	or_q_done(or_q("INSERT INTO feeds(account, list, cursor, last_attempt, last_success, last_error) "
	               "VALUES(?1, ?2, ?3, ?5, CASE WHEN ?4 IS NULL THEN ?5 END, ?4) ON CONFLICT(account, list) DO UPDATE SET "
	               "cursor = coalesce(?3, cursor), last_attempt = ?5, last_success = CASE WHEN ?4 IS NULL THEN ?5 "
	               "ELSE last_success END, last_error = ?4", "ttttd", account, list, cursor, error, now));
}

/* When the account's feed was last tried (any list), 0 if never: whether it
 * is due.  A read, no lock. */
static double or_store_feed_last_attempt(const char *account)
{
	return or_q_double(or_q("SELECT max(last_attempt) FROM feeds WHERE account = ?1", "t", account), 0);
}

/* A feed list's cursor ("" when none).  A read, no lock: only this run's
 * pull moves it (the run lock). */
static void or_store_feed_cursor(const char *account, const char *list, char *out, size_t n)
{
	sqlite3_stmt *st = or_q("SELECT coalesce(cursor, '') FROM feeds WHERE account = ?1 AND list = ?2", "tt", account, list);

	out[0] = 0;
	if (or_step(st) == SQLITE_ROW)
		snprintf(out, n, "%s", or_col(st, 0));
	sqlite3_reset(st);
}

/* One page of a feed: BEGIN IMMEDIATE, its events recorded (suppressions
 * included), the list's cursor when it moved (newcur not "" nor NULL),
 * COMMIT; always one commit, even for an empty page.  Decides no quota.
 * settle gets the held jobs the page proved delivered, for the caller to
 * settle after.  A crash right after leaves the page durable and those
 * jobs held in held/ (their events, seen again, are duplicates that settle
 * nothing: the operator's requeue is left); an SQS message not yet deleted
 * comes back and is de-duplicated.  Returns how many events were new. */
static int or_store_feed_page(const struct or_config *cfg, const struct or_provider *p, const char *list,
                              const char *newcur, const struct or_events *evs, struct or_settle *settle, double now)
{
	int n = 0;

	or_begin();
	for (int i = 0; i < evs->n; i++)
		n += or_event_record(cfg, p, &evs->v[i], settle, now);
	if (newcur && *newcur)
		or_feed_mark(p->name, list, newcur, NULL, now);
	or_commit();
	return n;
}

/* The end of an account's pull: BEGIN IMMEDIATE, its attempt and its error
 * (NULL: a success) on the account's row, COMMIT.  Decides no quota; a
 * crash before it only makes the feed due again. */
static void or_store_feed_done(const char *account, const char *error, double now)
{
	or_begin();
	or_feed_mark(account, "", NULL, error, now);
	or_commit();
}

/* A held job an event proved delivered: BEGIN IMMEDIATE, the job sent and
 * its doubtful slot counted as sent, COMMIT (nothing when it is no longer
 * held).  Decides no quota (the slot was reserved at the claim).  Ledger
 * first: a crash right after leaves the job sent with its file still in
 * held/, which no later run moves (recovery moves only cur/). */
static void or_store_settle_held(const struct or_config *cfg, const char *id, double now)
{
	struct or_job_set s = { .set = OR_JS_SENT_AT_KEPT | OR_JS_UPDATED_AT | OR_JS_LAST_ERROR, .updated_at = now,
	                        .last_error = "settled: the provider reported an event for it" };

	or_begin();
	if (or_job_move(id, OR_S_HELD, OR_S_SENT, &s))
		or_seq_advance(cfg, id, or_q_double(or_q("SELECT sent_at FROM jobs WHERE id = ?1", "t", id), now), now);
	or_q_done(or_q("UPDATE slots SET state = 'sent' WHERE job_id = ?1 AND state = 'doubt'", "t", id));
	or_commit();
}

/* One unsubscribe (a CGI request or the command): BEGIN IMMEDIATE, its
 * event recorded (suppressing the address), and when the same token was
 * seen before and again is set, the address suppressed once more (an
 * operator may have removed it since); COMMIT.  Decides no quota.  settle
 * as for a feed page.  A crash right after leaves the CGI's request file
 * in unsub/: the next run applies it again, a duplicate.  1 if new. */
static int or_store_unsubscribe(const struct or_config *cfg, const struct or_event *ev, int again,
                                struct or_settle *settle, double now)
{
	int fresh;

	or_begin();
	fresh = or_event_record(cfg, NULL, ev, settle, now);
	if (!fresh && again)
		or_suppress(ev->rcpt, cfg->unsub_global ? NULL : ev->client, "unsubscribed", "unsubscribe", now);
	or_commit();
	return fresh;
}

/* ================================================================
 * STORE: health, alerts and housekeeping operations
 *
 * domain health read and judged, alerts raised, cleared and delivered, retention.
 * ================================================================ */

/* Domain health (doc/design.md §6): hard bounces / sends and complaints / sends
 * of a sender domain, counted by send time over [max(now - window, last
 * enable), now], judged once min_sent sends are in that span.  Entries from
 * an account suppression list do not count (the provider dropped them).
 * A read, no lock of its own (or inside the caller's transaction). */
static void or_domain_health(const struct or_config *cfg, const char *domain, double now, struct or_health *h)
{
	struct or_buf names = { 0 };

	or_buf_puts(&names, "[");
	for (int i = 0; i < cfg->nsenders; i++)
		if (!strcmp(cfg->senders[i].domain, domain)) {
			or_buf_puts(&names, names.len > 1 ? "," : "");
			or_json_str(&names, cfg->senders[i].name);
		}
	or_buf_puts(&names, "]");
	h->since = now - cfg->health_window_days * 86400.0;
	double since = or_q_double(or_q("SELECT max(since) FROM senders WHERE enabled = 1 AND name IN "
	                                "(SELECT value FROM json_each(?1))", "t", names.s), 0);
	if (since > h->since)
		h->since = since;
	/* by sender and time, not by state: 'sent' is most of the ledger */
	h->sends = or_q_int(or_q("SELECT count(*) FROM jobs INDEXED BY jobs_sent WHERE sender IN (SELECT value "
	                         "FROM json_each(?1)) AND state IN ('sent', 'held') AND sent_at >= ?2", "td",
	                         names.s, h->since), 0);
	/* from the burn events recorded since one window before the span: a
	 * bounce is recorded after its send, so the only ones left out belong
	 * to a held job whose send was settled more than a window after its
	 * bounce came in */
	sqlite3_stmt *st = or_q("SELECT sum(e.type = 'bounced'), sum(e.type = 'complained') FROM events e INDEXED BY "
	                        "events_burn JOIN jobs j ON j.id = e.job_id WHERE e.type IN ('bounced', 'complained') "
	                        "AND e.pulled_at >= ?3 AND j.sender IN (SELECT value FROM json_each(?1)) AND "
	                        "j.sent_at >= ?2 AND coalesce(e.subtype, '') NOT IN "
	                        "('OnAccountSuppressionList', 'account-suppression-list')", "tdd", names.s, h->since,
	                        h->since - cfg->health_window_days * 86400.0);
	h->bounces = h->complaints = 0;
	if (or_step(st) == SQLITE_ROW) {
		h->bounces = sqlite3_column_int64(st, 0);
		h->complaints = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	or_buf_free(&names);
}

/* Judges every sender domain's health (or_health_verdict) and disables the
 * senders of one over a threshold, raising its alert once.  BEGIN
 * IMMEDIATE, so the figures and the disabling agree; no quota.  A crash
 * after it leaves the senders disabled, the alert queued for delivery. */
static void or_store_health_judge(const struct or_config *cfg, double now)
{
	or_begin();
	for (int i = 0; i < cfg->nsenders; i++) {
		const char *domain = cfg->senders[i].domain;
		struct or_health h;
		char why[400], alert[320];
		if (!or_domain_first(cfg, i))
			continue;
		or_domain_health(cfg, domain, now, &h);
		if (!or_health_verdict(cfg, &h, why, sizeof why))
			continue;
		for (int k = 0; k < cfg->nsenders; k++)
			if (!strcmp(cfg->senders[k].domain, domain))
				or_q_done(or_q("INSERT INTO senders(name, enabled, reason, since) VALUES(?1, 0, ?2, ?3) ON CONFLICT(name) "
				               "DO UPDATE SET enabled = 0, reason = ?2 WHERE enabled = 1", "ttd",
				               cfg->senders[k].name, why, now));
		snprintf(alert, sizeof alert, "sender_disabled:%s", domain);
		or_alert_raise(alert, why, now);
	}
	or_commit();
}

/* Jobs in doubt wait for a person: raised, its count kept true, or cleared
 * (inside the caller's transaction; after each run and each requeue). */
static void or_alert_held(double now)
{
	long long held = or_q_int(or_q("SELECT count(*) FROM jobs WHERE state = 'held'", ""), 0);
	char detail[160];

	if (held > 0) {
		snprintf(detail, sizeof detail, "%lld job%s in held/: check the provider, then 'outreach requeue held' "
		         "or leave them", held, held == 1 ? "" : "s");
		or_alert_raise("jobs_held", detail, now);
	} else {
		or_alert_clear("jobs_held");
	}
}

/* mailbox_stale:NAME once a mailbox has not been read to its end for ten
 * minutes past replies.max_age: its senders' follow-ups wait (the gate) so
 * no reply is missed, and the operator learns why they do not go (a pull
 * that fails once is no news).  Inside the caller's transaction. */
static void or_alert_mailboxes(const struct or_config *cfg, double now)
{
	for (int i = 0; i < cfg->nmailboxes; i++) {
		const char *name = cfg->mailboxes[i].name;
		double fresh = or_store_mailbox_fresh(&cfg->mailboxes[i]);
		char alert[128], detail[700], when[32] = "never", err[400] = "";
		snprintf(alert, sizeof alert, "mailbox_stale:%s", name);
		if (fresh >= now - cfg->reply_max_age - 600) {
			or_alert_clear(alert);
			continue;
		}
		sqlite3_stmt *st = or_q("SELECT last_error FROM mailbox_cursors WHERE mailbox = ?1 AND last_error IS NOT NULL "
		                        "ORDER BY last_attempt DESC LIMIT 1", "t", name);
		if (or_step(st) == SQLITE_ROW)
			snprintf(err, sizeof err, "; last error: %s", or_col(st, 0));
		sqlite3_reset(st);
		if (fresh > 0)
			or_fmt_rfc3339((time_t)fresh, when, sizeof when);
		snprintf(detail, sizeof detail, "mailbox %s not read in full since %s%s: its senders' follow-ups wait", name,
		         when, err);
		or_alert_raise(alert, detail, now);
	}
}

/* Evaluates the run's alert conditions (senders, error share, backlog, held
 * jobs: the HEALTH AND ALERTS policy) on the figures it reads, raising and
 * clearing on change.  BEGIN IMMEDIATE, so figures and alerts agree; it
 * reads the senders' caps but decides no quota.  A crash after it leaves
 * the changes queued in alert_log, delivered by a later run. */
static void or_store_alerts_evaluate(const struct or_config *cfg, double now)
{
	long long tries, bad;
	sqlite3_stmt *st;

	or_begin();
	or_alert_senders(cfg, now, or_q_int(or_q("SELECT count(*) FROM jobs INDEXED BY jobs_next WHERE state = 'waiting' "
	                                         "AND next_due <= ?1", "d", now), 0));
	/* the error share of the last hour's attempts */
	st = or_q("SELECT count(*), coalesce(sum(outcome NOT IN ('sent', 'throttled')), 0) FROM attempts "
	          "INDEXED BY attempts_at WHERE at > ?1", "d", now - 3600);
	tries = bad = 0;
	if (or_step(st) == SQLITE_ROW) {
		tries = sqlite3_column_int64(st, 0);
		bad = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	or_alert_error_rate(cfg, now, tries, bad);
	/* a due job waiting too long */
	or_alert_backlog(cfg, now, or_q_double(or_q("SELECT min(next_due) FROM jobs INDEXED BY jobs_next WHERE state = "
	                                            "'waiting' AND next_due <= ?1", "d", now), 0));
	or_alert_held(now);
	or_alert_mailboxes(cfg, now);
	or_commit();
}

/* Up to max alert changes a channel (0 alert_command, 1 webhook) has not
 * taken yet, oldest first.  A read, no lock. */
static int or_store_alert_queue(int channel, struct or_alert_entry *q, int max)
{
	sqlite3_stmt *st;
	int n = 0;

	st = channel == 0 ? or_q("SELECT id, name, event, coalesce(detail, ''), at FROM alert_log WHERE delivered_cmd = 0 "
	                         "ORDER BY id LIMIT 32", "")
	                  : or_q("SELECT id, name, event, coalesce(detail, ''), at FROM alert_log WHERE delivered_hook = 0 "
	                         "ORDER BY id LIMIT 32", "");
	while (n < max && or_step(st) == SQLITE_ROW) {
		q[n].id = sqlite3_column_int64(st, 0);
		snprintf(q[n].name, sizeof q[n].name, "%s", or_col(st, 1));
		snprintf(q[n].event, sizeof q[n].event, "%s", or_col(st, 2));
		snprintf(q[n].detail, sizeof q[n].detail, "%s", or_col(st, 3));
		q[n].at = sqlite3_column_double(st, 4);
		n++;
	}
	sqlite3_reset(st);
	return n;
}

/* A channel's try of one alert change: taken (ok) or not, counted; the
 * change is delivered once every configured channel (has_cmd, has_hook)
 * took it.  BEGIN IMMEDIATE; no quota.  A crash before it: the channel is
 * given the change again next run (at least once). */
static void or_store_alert_delivered(int channel, long long id, int ok, int has_cmd, int has_hook)
{
	or_begin();
	if (channel == 0)
		or_q_done(or_q("UPDATE alert_log SET delivered_cmd = ?2, tries = tries + 1 WHERE id = ?1", "ii", id,
		               (long long)ok));
	else
		or_q_done(or_q("UPDATE alert_log SET delivered_hook = ?2, tries = tries + 1 WHERE id = ?1", "ii", id,
		               (long long)ok));
	or_q_done(or_q("UPDATE alert_log SET delivered = 1 WHERE id = ?1 AND (delivered_cmd = 1 OR ?2 = 0) AND "
	               "(delivered_hook = 1 OR ?3 = 0)", "iii", id, (long long)has_cmd, (long long)has_hook));
	or_commit();
}

/* The limits a provider reported for an account (read: MaxSendRate and
 * Max24HourSend, read again in a day) or that it could not be asked (read
 * 0: asked again in an hour), with the note the report shows.  BEGIN
 * IMMEDIATE; it lowers the plan but reserves nothing.  A crash before it:
 * the next run asks again. */
static void or_store_account_limits(const char *account, int read, double max_rate, double max_24h,
                                    const char *note, double now)
{
	or_begin();
	or_account_ensure(account);
	if (read)
		or_q_done(or_q("UPDATE accounts SET max_rate = ?2, max_24h = ?3, limits_at = ?4, limits_note = ?5 "
		               "WHERE name = ?1", "tdddt", account, max_rate, max_24h, now, note));
	else
		or_q_done(or_q("UPDATE accounts SET limits_at = ?2, limits_note = ?3 WHERE name = ?1", "tdt",
		               account, now - 86400 + 3600, note));
	or_account_forget(account);
	or_commit();
}

/* 1 when some sender domain's checks are older than a day (or never ran).
 * Reads, no lock: each sender's domain is looked at. */
static int or_store_domains_stale(const struct or_config *cfg, double now)
{
	int stale = 0;

	for (int i = 0; i < cfg->nsenders; i++)
		stale |= !or_q_int(or_q("SELECT 1 FROM domain_checks WHERE domain = ?1 AND at > ?2", "td",
		                        cfg->senders[i].domain, now - 86400), 0);
	return stale;
}

/* The domain checks' verdicts kept for a day, each domain's alert raised or
 * cleared (a domain the DNS did not answer for is logged and left as it
 * was).  BEGIN IMMEDIATE; no quota (a failed domain keeps its senders out
 * of claims).  A crash before it: the checks run again next run. */
static void or_store_domain_checks(const struct or_domain_verdict *v, int n, double now)
{
	or_begin();
	for (int d = 0; d < n; d++) {
		char alert[320];
		if (v[d].unknown) {   /* the DNS did not answer: judge again next run, keep senders as they are */
			or_log(1, "event=domains domain=%s error=\"the DNS did not answer in time\"", v[d].domain);
			continue;
		}
		or_q_done(or_q("INSERT INTO domain_checks(domain, ok, report, reason, at) VALUES(?1, ?2, ?3, ?4, ?5) "
		               "ON CONFLICT(domain) DO UPDATE SET ok = ?2, report = ?3, reason = ?4, at = ?5", "tittd",
		               v[d].domain, (long long)v[d].ok, v[d].report, v[d].why, now));
		snprintf(alert, sizeof alert, "domain_check:%.255s", v[d].domain);
		if (v[d].ok)
			or_alert_clear(alert);
		else
			or_alert_raise(alert, v[d].why, now);
	}
	or_commit();
}

/* A domain's MX verdict cached since `since`, or -1.  A read, no lock. */
static int or_store_dns_cached(const char *domain, double since)
{
	sqlite3_stmt *c = or_q("SELECT result FROM dns_cache WHERE domain = ?1 AND at > ?2", "td", domain, since);
	int cached = or_step(c) == SQLITE_ROW ? sqlite3_column_int(c, 0) : -1;

	sqlite3_reset(c);
	return cached;
}

/* MX verdicts answered now, cached for a day (n may be 0: the transaction is
 * still taken).  BEGIN IMMEDIATE; no quota.  A crash before it: asked again. */
static void or_store_dns_cache_put(const struct or_dns_answer *a, int n, double now)
{
	or_begin();
	for (int k = 0; k < n; k++)
		or_q_done(or_q("INSERT INTO dns_cache(domain, result, at) VALUES(?1, ?2, ?3) ON CONFLICT(domain) "
		               "DO UPDATE SET result = ?2, at = ?3", "tid", a[k].domain, (long long)a[k].result, now));
	or_commit();
}

/* tmp/ and the stray temporary files were cleaned at `at` (kv).  BEGIN
 * IMMEDIATE; no quota.  A crash before it: cleaned again, harmlessly. */
static void or_store_tmp_cleaned(const char *at)
{
	/* at synchronous=NORMAL: losing the mark to a power loss only cleans again */
	or_begin_unsynced();
	or_kv_set("tmp_cleaned_at", at);
	or_commit_unsynced();
}

/* Up to 2000 finished jobs last updated before cutoff (retention's
 * candidates), with their states.  A read, no lock. */
static int or_store_retired(double cutoff, struct or_job_row **out)
{
	sqlite3_stmt *st = or_q("SELECT id, state FROM jobs WHERE state IN ('sent', 'suppressed', 'duplicate', 'failed', "
	                        "'bad', 'requeued', 'stopped') AND updated_at < ?1 AND (seq IS NULL OR NOT EXISTS "
	                        "(SELECT 1 FROM leads l WHERE l.seq = jobs.seq AND l.state IN ('active', 'paused'))) "
	                        "LIMIT 2000", "d", cutoff);
	int n = 0;

	*out = NULL;
	while (or_step(st) == SQLITE_ROW)
		or_job_row_take(st, out, &n, 1, -1);
	sqlite3_reset(st);
	return n;
}

/* Retention: the retired jobs' attempts and rows go (failed and bad rows
 * stay, as their files do), slots older than three days and day counts
 * older than four, finished runs before cutoff; housekept_at is set to at.
 * BEGIN IMMEDIATE; old slots only (today's caps are untouched).  A crash
 * before it: done again next hour, the done/ files already gone. */
static void or_store_housekeep(const struct or_job_row *jobs, int n, double now, double cutoff, const char *at)
{
	/* with no job retired (no done/ file gone), at synchronous=NORMAL: what
	 * else it deletes and the mark are all done again if a power loss takes them */
	if (n == 0)
		or_begin_unsynced();
	else
		or_begin();
	for (int i = 0; i < n; i++) {
		or_q_done(or_q("DELETE FROM attempts WHERE job_id = ?1", "t", jobs[i].id));
		or_q_done(or_q("DELETE FROM jobs WHERE id = ?1 AND state NOT IN ('failed', 'bad')", "t", jobs[i].id));
	}
	or_q_done(or_q("DELETE FROM slots WHERE at < ?1", "d", now - 3 * 86400.0));
	or_q_done(or_q("DELETE FROM day_counts WHERE day < ?1", "i", (long long)(now / 86400) - 4));
	or_q_done(or_q("DELETE FROM runs WHERE started_at < ?1 AND state != 'running'", "d", cutoff));
	or_q_done(or_q("DELETE FROM replies WHERE at < ?1", "d", cutoff));   /* headers only, kept retention_days */
	or_q_done(or_q("DELETE FROM leads WHERE state NOT IN ('active', 'paused') AND at < ?1 AND NOT EXISTS "
	               "(SELECT 1 FROM jobs j WHERE j.seq = leads.seq)", "d", cutoff));
	or_kv_set("housekept_at", at);
	if (n == 0)
		or_commit_unsynced();
	else
		or_commit();
}

/* Up to 2000 free pages go back to the file.  One autocommit statement. */
static void or_store_vacuum(void)
{
	or_exec("PRAGMA incremental_vacuum(2000)");
}

/* ================================================================
 * STORE: the report snapshot
 *
 * one read of everything status.txt, status.json and outreach.prom show.
 * ================================================================ */

struct or_snap_sender {
	const struct or_sender *s;
	int enabled, sent_today, cap_today, warmup_day;
	int account;             /* provider index in use now, -1 when none is usable */
	double bounce_rate, complaint_rate;   /* of its domain, over the health span (REPORTS fills them) */
	long long health_sends;
	char reason[256];
};

/* A row of a report read that the writers print as it is: up to four text
 * columns and a number (a Prometheus family's labels and value). */
struct or_snap_row { char *col[4]; double v; };
struct or_snap_rows { struct or_snap_row *row; int n; };

struct or_snap_client { char *name; long long sent_today, pending; };
struct or_snap_campaign { char *client, *name; long long sent, failed, pending, held, delivered, bounced, complained,
                          opened, clicked, unsubscribed; };
struct or_snap_alert { char *name, *detail; double since; };
/* A host of a shared ledger (the PostgreSQL store): its last run's start (0
 * none), its heartbeat (epoch seconds, the database's clock), whether that
 * is older than two leases, whether its key is this spool's. */
struct or_snap_host { char *name, *version; double last_run, heartbeat; int down, key_differs; };

struct or_snap {
	double now;
	struct { char id[33]; double started, duration; long long claimed, sent, deferred, failed, bad, held; } run;
	long long folder[OR_NDIRS];
	double oldest_waiting;
	int nsenders;
	struct or_snap_sender senders[OR_MAX_SENDERS];
	struct or_account accounts[OR_MAX_PROVIDERS];   /* one per cfg->providers[], in order */
	struct or_snap_client *clients;      /* configured or with jobs, by name */
	struct or_snap_campaign *campaigns;  /* with jobs, by client and campaign */
	struct or_snap_alert *alerts;        /* active, by name */
	int nclients, ncampaigns, nalerts;
	long long alerts_failing;            /* of them, the ones that make status "FAILING" */
	struct or_snap_rows pauses_text;     /* client, campaign, sender ('*' = any), reason: status.txt's order */
	struct or_snap_rows pauses_json;     /* one JSON object each: status.json's */
	struct or_snap_rows pauses;          /* client, campaign, sender ('' = any), 1 */
	struct or_snap_rows feeds;           /* account, last successful pull */
	struct or_snap_rows client_pending;  /* client, jobs not yet sent (clients with jobs only) */
	struct or_snap_rows sent, failed, events;   /* the counters: labels, n */
	struct or_snap_rows unmatched;       /* one row: events that matched no job */
	struct or_snap_rows replies;         /* client, campaign, step, kind: messages read (counters) */
	struct or_snap_rows leads;           /* client, campaign, state: leads now */
	struct or_snap_rows contacted;       /* client, campaign: leads whose first step went */
	struct or_snap_rows steps_sent;      /* client, campaign, step: sequence steps sent */
	struct or_snap_rows steps_replied;   /* client, campaign, step: human replies to them */
	struct or_snap_rows mailboxes;       /* mailbox: when it was last read in full (0 never) */
	struct or_snap_rows inactive;        /* client, suppressed (0/1): addresses that stopped engaging */
	struct or_snap_host *hosts;          /* the PostgreSQL store's hosts, by name (none on SQLite) */
	int nhosts;
};

/* Room for row n of an array that grows by doubling (n rows in it now). */
static void *or_snap_grow(void *p, int n, size_t size)
{
	if (n & (n - 1))
		return p;
	return or_xrealloc(p, (n ? 2 * (size_t)n : 1) * size);
}

/* Every row of st: the first ncols columns as text, the next (when the
 * statement has one) as the number. */
static void or_snap_rows_read(sqlite3_stmt *st, int ncols, struct or_snap_rows *out)
{
	int has_value = sqlite3_column_count(st) > ncols;

	while (or_step(st) == SQLITE_ROW) {
		struct or_snap_row *r;
		out->row = or_snap_grow(out->row, out->n, sizeof *out->row);
		r = &out->row[out->n++];
		memset(r, 0, sizeof *r);
		for (int i = 0; i < ncols && i < 4; i++)
			r->col[i] = or_xstrdup(or_col(st, i));
		r->v = has_value ? sqlite3_column_double(st, ncols) : 0;
	}
	sqlite3_reset(st);
}

static void or_snap_rows_free(struct or_snap_rows *rows)
{
	for (int k = 0; k < rows->n; k++)
		for (int i = 0; i < 4; i++)
			free(rows->row[k].col[i]);
	free(rows->row);
	rows->row = NULL;
	rows->n = 0;
}

/* The arrays of a snapshot freed, its counts zeroed (a second call frees nothing). */
static void or_snap_free(struct or_snap *sn)
{
	for (int i = 0; i < sn->nclients; i++)
		free(sn->clients[i].name);
	for (int i = 0; i < sn->ncampaigns; i++) {
		free(sn->campaigns[i].client);
		free(sn->campaigns[i].name);
	}
	for (int i = 0; i < sn->nalerts; i++) {
		free(sn->alerts[i].name);
		free(sn->alerts[i].detail);
	}
	for (int i = 0; i < sn->nhosts; i++) {
		free(sn->hosts[i].name);
		free(sn->hosts[i].version);
	}
	free(sn->clients);
	free(sn->campaigns);
	free(sn->alerts);
	free(sn->hosts);
	sn->clients = NULL, sn->campaigns = NULL, sn->alerts = NULL, sn->hosts = NULL;
	sn->nclients = sn->ncampaigns = sn->nalerts = sn->nhosts = 0;
	struct or_snap_rows *rows[] = { &sn->pauses_text, &sn->pauses_json, &sn->pauses, &sn->feeds,
	                                &sn->client_pending, &sn->sent, &sn->failed, &sn->events, &sn->unmatched,
	                                &sn->replies, &sn->leads, &sn->contacted, &sn->steps_sent, &sn->steps_replied, &sn->mailboxes,
	                                &sn->inactive };
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
		or_snap_rows_free(rows[i]);
}

/* The last finished run, the jobs per folder (new/ excepted: not in the
 * ledger yet) and how long the oldest due job has waited. */
static void or_snap_read_spool(int last_run, struct or_snap *sn)
{
	sqlite3_stmt *st;

	if (last_run) {
		st = or_q("SELECT id, started_at, ended_at - started_at, claimed, sent, deferred, failed, bad, held "
		          "FROM runs WHERE state = 'done' ORDER BY started_at DESC, rowid DESC LIMIT 1", "");
		if (or_step(st) == SQLITE_ROW) {
			snprintf(sn->run.id, sizeof sn->run.id, "%s", or_col(st, 0));
			sn->run.started = sqlite3_column_double(st, 1);
			sn->run.duration = sqlite3_column_double(st, 2);
			sn->run.claimed = sqlite3_column_int64(st, 3); sn->run.sent = sqlite3_column_int64(st, 4);
			sn->run.deferred = sqlite3_column_int64(st, 5); sn->run.failed = sqlite3_column_int64(st, 6);
			sn->run.bad = sqlite3_column_int64(st, 7); sn->run.held = sqlite3_column_int64(st, 8);
		}
		sqlite3_reset(st);
	}
	st = or_q("SELECT state, sum(n) FROM state_counts GROUP BY state", "");
	while (or_step(st) == SQLITE_ROW) {
		const char *s = or_col(st, 0);
		long long n = sqlite3_column_int64(st, 1);
		if (!strcmp(s, "claimed") || !strcmp(s, "sending"))
			sn->folder[OR_D_CUR] += n;
		else if (!strcmp(s, "ingest") || !strcmp(s, "requeued"))
			;
		else
			sn->folder[or_state_dir(s, 0)] += n;
	}
	sqlite3_reset(st);
	/* a due job's wait: since it became due (not_before, backoff and
	 * windows excluded), so a campaign scheduled for tomorrow is no backlog */
	double oldest = or_q_double(or_q("SELECT min(next_due) FROM jobs INDEXED BY jobs_next WHERE "
	                                 "state = 'waiting' AND next_due <= ?1", "d", sn->now), -1);
	sn->oldest_waiting = oldest < 0 ? 0 : sn->now - oldest;
}

/* Each sender's state, today's count and cap and the account it uses now
 * (its domain's health is HEALTH's read, taken by REPORTS); then each
 * account's row. */
static void or_snap_read_senders(const struct or_config *cfg, struct or_snap *sn)
{
	int day = or_day_number((time_t)sn->now, cfg->timezone);

	sn->nsenders = cfg->nsenders;
	for (int i = 0; i < cfg->nsenders; i++) {
		struct or_snap_sender *x = &sn->senders[i];
		struct or_sender_state ss;
		x->s = &cfg->senders[i];
		or_sender_state_get(x->s, &ss);
		x->enabled = ss.enabled;
		snprintf(x->reason, sizeof x->reason, "%s", ss.reason);
		x->sent_today = or_sender_sent_on(x->s->name, day);
		x->cap_today = or_sender_cap(x->s, &ss, day);
		x->warmup_day = or_sender_warmup_day(x->s, &ss, day);
		double until;
		x->account = or_sender_account(cfg, x->s, sn->now, &until);
	}
	for (int i = 0; i < cfg->nproviders; i++)
		or_account_get(cfg->providers[i].name, &sn->accounts[i]);
}

/* The per-client rows: every configured client and every client with jobs,
 * today's sends and the jobs not yet sent. */
static void or_snap_read_clients(const struct or_config *cfg, struct or_snap *sn)
{
	struct or_buf names = { 0 };
	sqlite3_stmt *st;

	or_buf_puts(&names, "[");
	for (int i = 0; i < cfg->nclients; i++) {
		or_buf_puts(&names, i ? "," : "");
		or_json_str(&names, cfg->clients[i].name);
	}
	or_buf_puts(&names, "]");
	st = or_q("WITH names(client) AS (SELECT DISTINCT client FROM state_counts WHERE client != '' AND n > 0 "
	            "UNION SELECT value FROM json_each(?1)) "
	            "SELECT n.client, (SELECT coalesce(sum(d.n), 0) FROM day_counts d WHERE d.kind = 'c' AND d.name = n.client "
	            "AND d.day = ?2), (SELECT coalesce(sum(c.n), 0) FROM state_counts c WHERE c.client = n.client AND "
	            "c.state IN ('waiting', 'claimed', 'sending')) FROM names n ORDER BY n.client", "ti",
	            names.s, (long long)or_day_number((time_t)sn->now, cfg->timezone));
	while (or_step(st) == SQLITE_ROW) {
		sn->clients = or_snap_grow(sn->clients, sn->nclients, sizeof *sn->clients);
		struct or_snap_client *c = &sn->clients[sn->nclients++];
		c->name = or_xstrdup(or_col(st, 0));
		c->sent_today = sqlite3_column_int64(st, 1);
		c->pending = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	or_buf_free(&names);
}

/* The per-campaign rows: jobs by state, then the provider events (counters). */
static void or_snap_read_campaigns(struct or_snap *sn)
{
	sqlite3_stmt *st;

	/* columns: client, campaign, sent, failed, pending, held, then the events
	 * delivered, bounced, complained, opened, clicked, unsubscribed (counters) */
	st = or_q("WITH j AS (SELECT client, campaign, sum(CASE WHEN state = 'sent' THEN n END) s, "
	            " sum(CASE WHEN state = 'failed' THEN n END) f, sum(CASE WHEN state IN ('waiting', 'claimed', "
	            " 'sending') THEN n END) p, sum(CASE WHEN state = 'held' THEN n END) h FROM state_counts "
	            " WHERE client != '' AND state NOT IN ('ingest', 'duplicate') GROUP BY client, campaign "
	            " HAVING sum(n) > 0), "
	            "e AS (SELECT client, campaign, sum(CASE kind WHEN 'event:delivered' THEN n END) d, "
	            " sum(CASE kind WHEN 'event:bounced' THEN n END) b, sum(CASE kind WHEN 'event:complained' THEN n END) c, "
	            " sum(CASE kind WHEN 'event:opened' THEN n END) o, sum(CASE kind WHEN 'event:clicked' THEN n END) k, "
	            " sum(CASE kind WHEN 'event:unsubscribed' THEN n END) u FROM counters WHERE kind LIKE 'event:%' "
	            " GROUP BY client, campaign) "
	            "SELECT j.client, j.campaign, coalesce(j.s, 0), coalesce(j.f, 0), coalesce(j.p, 0), coalesce(j.h, 0), "
	            "coalesce(e.d, 0), coalesce(e.b, 0), coalesce(e.c, 0), coalesce(e.o, 0), coalesce(e.k, 0), "
	            "coalesce(e.u, 0) FROM j LEFT JOIN e USING (client, campaign) ORDER BY j.client, j.campaign", "");
	while (or_step(st) == SQLITE_ROW) {
		sn->campaigns = or_snap_grow(sn->campaigns, sn->ncampaigns, sizeof *sn->campaigns);
		struct or_snap_campaign *c = &sn->campaigns[sn->ncampaigns++];
		c->client = or_xstrdup(or_col(st, 0));
		c->name = or_xstrdup(or_col(st, 1));
		long long *v[] = { &c->sent, &c->failed, &c->pending, &c->held, &c->delivered, &c->bounced,
		                   &c->complained, &c->opened, &c->clicked, &c->unsubscribed };
		for (int i = 0; i < 10; i++)
			*v[i] = sqlite3_column_int64(st, 2 + i);
	}
	sqlite3_reset(st);
}

/* The pauses (in each report's form) and the active alerts. */
static void or_snap_read_pauses_alerts(struct or_snap *sn)
{
	sqlite3_stmt *st;

	or_snap_rows_read(or_q("SELECT coalesce(nullif(client, ''), '*'), coalesce(nullif(campaign, ''), '*'), "
	                       "coalesce(nullif(sender, ''), '*'), coalesce(reason, '') FROM pauses ORDER BY 1, 2, 3", ""),
	                  4, &sn->pauses_text);
	or_snap_rows_read(or_q("SELECT json_object('client', nullif(client, ''), 'campaign', nullif(campaign, ''), 'sender', "
	                       "nullif(sender, ''), 'since', strftime('%Y-%m-%dT%H:%M:%SZ', since, 'unixepoch'), 'reason', "
	                       "reason) FROM pauses ORDER BY client, campaign, sender", ""), 1, &sn->pauses_json);
	or_snap_rows_read(or_q("SELECT client, campaign, sender, 1 FROM pauses ORDER BY 1, 2, 3", ""), 3, &sn->pauses);
	st = or_q("SELECT name, since, detail FROM alerts ORDER BY name", "");
	while (or_step(st) == SQLITE_ROW) {
		sn->alerts = or_snap_grow(sn->alerts, sn->nalerts, sizeof *sn->alerts);
		struct or_snap_alert *a = &sn->alerts[sn->nalerts++];
		a->name = or_xstrdup(or_col(st, 0));
		a->since = sqlite3_column_double(st, 1);
		a->detail = or_xstrdup(or_col(st, 2));
	}
	sqlite3_reset(st);
	sn->alerts_failing = or_q_int(or_q("SELECT count(*) FROM alerts WHERE name LIKE 'account_down:%' OR name IN "
	                                   "('senders_exhausted', 'senders_blocked', 'error_rate')", ""), 0);
}

/* The feeds' last successes and the counters that only grow. */
static void or_snap_read_counters(struct or_snap *sn)
{
	or_snap_rows_read(or_q("SELECT account, last_success FROM feeds WHERE list = '' AND last_success IS NOT NULL "
	                       "ORDER BY account", ""), 1, &sn->feeds);
	or_snap_rows_read(or_q("SELECT client, sum(n) FROM state_counts WHERE client != '' AND state IN ('waiting', "
	                       "'claimed', 'sending') GROUP BY client ORDER BY client", ""), 1, &sn->client_pending);
	or_snap_rows_read(or_q("SELECT client, campaign, sender, n FROM counters WHERE kind = 'sent' ORDER BY 1, 2, 3", ""),
	                  3, &sn->sent);
	or_snap_rows_read(or_q("SELECT client, campaign, n FROM counters WHERE kind = 'failed' ORDER BY 1, 2", ""),
	                  2, &sn->failed);
	or_snap_rows_read(or_q("SELECT client, campaign, substr(kind, 7), n FROM counters WHERE kind LIKE 'event:%' "
	                       "ORDER BY 1, 2, 3", ""), 3, &sn->events);
	or_snap_rows_read(or_q("SELECT count(*) FROM events WHERE job_id IS NULL", ""), 0, &sn->unmatched);
	/* reply:KIND:STEP (or_reply_effect) */
	or_snap_rows_read(or_q("SELECT client, campaign, substr(kind, instr(substr(kind, 7), ':') + 7), substr(kind, 7, "
	                       "instr(substr(kind, 7), ':') - 1), n FROM counters WHERE kind LIKE 'reply:%' ORDER BY 1, 2, 3, 4",
	                       ""), 4, &sn->replies);
	/* a grouping over the leads of the retention period (a few thousand
	 * rows at an agency's volume; finished leads are retired with their jobs) */
	or_snap_rows_read(or_q("SELECT client, campaign, state, count(*) FROM leads GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", ""),
	                  3, &sn->leads);
	/* contacted: step 1 went (its row, or a state only a sent lead reaches:
	 * retention may have retired the row of a lead it keeps) */
	or_snap_rows_read(or_q("SELECT l.client, l.campaign, count(*) FROM leads l WHERE l.state IN ('replied', 'bounced', "
	                       "'complained', 'finished') OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = l.seq AND j.state IN "
	                       "('sent', 'held')) GROUP BY 1, 2 ORDER BY 1, 2", ""), 2, &sn->contacted);
	/* per step, the human replies the ledger still holds (the same
	 * retention as the steps sent it is divided by) */
	or_snap_rows_read(or_q("SELECT client, campaign, step, count(DISTINCT message_id) FROM replies WHERE class = 'human' "
	                       "AND step IS NOT NULL AND client IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", ""), 3,
	                  &sn->steps_replied);
	or_snap_rows_read(or_q("SELECT client, campaign, step, count(*) FROM jobs INDEXED BY jobs_seq WHERE seq IS NOT NULL "
	                       "AND state IN ('sent', 'held') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", ""), 3, &sn->steps_sent);
	/* the day's judgement of engagement (or_store_engagement_daily) */
	or_snap_rows_read(or_q("SELECT client, CASE WHEN suppressed > 0 THEN '1' ELSE '0' END, inactive FROM "
	                       "engagement_counts ORDER BY client", ""), 2, &sn->inactive);
}

/* Each mailbox's last full read, in the config's order. */
static void or_snap_read_mailboxes(const struct or_config *cfg, struct or_snap *sn)
{
	for (int i = 0; i < cfg->nmailboxes; i++) {
		struct or_snap_row *r;
		sn->mailboxes.row = or_snap_grow(sn->mailboxes.row, sn->mailboxes.n, sizeof *r);
		r = memset(&sn->mailboxes.row[sn->mailboxes.n++], 0, sizeof *r);
		r->col[0] = or_xstrdup(cfg->mailboxes[i].name);
		r->v = or_store_mailbox_fresh(&cfg->mailboxes[i]);
	}
}

/* or_store_snapshot: everything the three reports show from the ledger, into
 * sn (zeroed first, sn->now = now; the last finished run only when last_run,
 * else sn->run is the caller's; the senders' domain health is REPORTS' to
 * add, as its reader and struct are HEALTH's, defined after STORE).  Free
 * with or_snap_free.  One read transaction (a deferred BEGIN, ended by a
 * COMMIT that writes nothing, so not a durable step): in WAL mode every read
 * sees the same committed ledger, so a run committing meanwhile cannot put
 * a campaign's count one job ahead of the folder counts, and writers are
 * not blocked.  Decides no quota and writes nothing: a crash right after it
 * leaves the ledger and the spool as they were. */
static void or_store_snapshot(const struct or_config *cfg, double now, int last_run, struct or_snap *sn)
{
	memset(sn, 0, sizeof *sn);
	sn->now = now;
	or_exec("BEGIN");
	or_snap_read_spool(last_run, sn);
	or_snap_read_senders(cfg, sn);
	or_snap_read_clients(cfg, sn);
	or_snap_read_campaigns(sn);
	or_snap_read_pauses_alerts(sn);
	or_snap_read_counters(sn);
	or_snap_read_mailboxes(cfg, sn);
	or_exec("COMMIT");
}

/* ================================================================
 * STORE: operator commands
 *
 * one operation per command that reads or changes the ledger.
 * ================================================================ */

/* Common to this section: a read is one autocommit SELECT (no lock, nothing
 * for a crash to leave behind); a change is one BEGIN IMMEDIATE ... COMMIT,
 * one durable step.  No operator command reserves or returns a quota unit
 * (daily, warm-up, per-minute): the claim alone decides those. */

/* sender enable|disable NAME (cfg->senders[idx]).  BEGIN IMMEDIATE; decides
 * no quota, but an enable restarts the domain's warm-up ramp today and
 * clears its sender_disabled alert once no sender of the domain is disabled
 * (read in the same transaction, so a concurrent disable is seen).  A crash
 * after it: the change is committed; nothing in the spool. */
static void or_store_sender_set(const struct or_config *cfg, int idx, int enable, const char *reason, double now)
{
	const char *name = cfg->senders[idx].name;

	or_begin();
	if (enable) {
		/* Back from a disable: the domain restarts its warm-up ramp today. */
		char alert[320];
		or_q_done(or_q("UPDATE senders SET enabled = 1, reason = NULL, since = ?2, warmup_start_day = ?3 "
		               "WHERE name = ?1 AND enabled = 0", "tdi", name, now,
		               (long long)or_day_number((time_t)now, cfg->timezone)));
		/* the domain's health span restarts now; its alert clears once no sender of it is disabled */
		snprintf(alert, sizeof alert, "sender_disabled:%s", cfg->senders[idx].domain);
		int still = 0;
		for (int k = 0; k < cfg->nsenders; k++)
			if (!strcmp(cfg->senders[k].domain, cfg->senders[idx].domain))
				still += (int)or_q_int(or_q("SELECT 1 FROM senders WHERE name = ?1 AND enabled = 0", "t",
				                            cfg->senders[k].name), 0);
		if (!still)
			or_alert_clear(alert);
	} else {
		or_q_done(or_q("INSERT INTO senders(name, enabled, reason, since) VALUES(?1, 0, ?2, ?3) "
		               "ON CONFLICT(name) DO UPDATE SET enabled = 0, reason = ?2, since = ?3",
		               "ttd", name, reason, now));
	}
	or_commit();
}

/* suppress list: every suppression (of client, or all when client is ""),
 * by address, handed to fn one row at a time (created_at as a time; the
 * row's strings live until fn returns).  One read, no lock. */
static void or_store_suppress_list(const char *client, or_suppression_fn fn, void *arg)
{
	sqlite3_stmt *st = or_q("SELECT address, client, reason, source, created_at FROM suppressions "
	                        "WHERE ?1 = '' OR client = ?1 ORDER BY address", "t", client);

	while (or_step(st) == SQLITE_ROW) {
		struct or_suppression r = { or_col(st, 0), or_col(st, 1), or_col(st, 2), or_col(st, 3), NULL,
		                            sqlite3_column_double(st, 4) };
		fn(arg, &r);
	}
	sqlite3_reset(st);
}

/* suppress export: as or_store_suppress_list, by address then client, the
 * time already in RFC 3339 (created) and NULLs as "".  One read, no lock;
 * the rows handed over, not held, so memory does not grow with the list.
 * Returns the number of rows. */
static int or_store_suppress_export(const char *client, or_suppression_fn fn, void *arg)
{
	sqlite3_stmt *st = or_q("SELECT address, client, coalesce(reason, ''), coalesce(source, ''), "
	                        "strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'unixepoch') FROM suppressions "
	                        "WHERE ?1 = '' OR client = ?1 ORDER BY address, client", "t", client);
	int rows = 0;

	while (or_step(st) == SQLITE_ROW) {
		struct or_suppression r = { or_col(st, 0), or_col(st, 1), or_col(st, 2), or_col(st, 3), or_col(st, 4), 0 };
		fn(arg, &r);
		rows++;
	}
	sqlite3_reset(st);
	return rows;
}

/* suppress import: the n rows parsed and checked by the caller, added in
 * one BEGIN IMMEDIATE (all of them or, on a crash, none: the file can be
 * imported again).  An address already suppressed for its client is left
 * as it is.  Decides no quota.  Returns how many were new. */
static int or_store_suppress_import(const struct or_suppress_new *rows, int n, double now)
{
	int added = 0;

	or_begin();
	for (int i = 0; i < n; i++) {
		or_suppress(rows[i].address, rows[i].client, rows[i].reason, rows[i].source, now);
		added += sqlite3_changes(or_db);
	}
	or_commit();
	return added;
}

/* store migrate's read of this host's SQLite ledger at path, opened
 * read-only and closed again (the config names the PostgreSQL store, so
 * or_db is not it): every suppression into *rows (or_suppress_row blocks,
 * which the caller frees), and the jobs a move must know of: n[0] claimed
 * or sending (a run holds them), n[1] held, n[2] waiting.  Writes nothing.
 * An exit code, 0 when read. */
#if OR_PG   /* store migrate is a PostgreSQL store's command */
static int or_store_migrate_read(const char *path, struct or_suppress_new **rows, int *nrows, long long n[3],
                                 char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL, *su = NULL;
	int cap = 0, rc = 0;

	*rows = NULL, *nrows = 0, n[0] = n[1] = n[2] = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT coalesce(sum(state IN ('claimed', 'sending')), 0), coalesce(sum(state = "
	                       "'held'), 0), coalesce(sum(state = 'waiting'), 0) FROM jobs", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT address, client, coalesce(reason, ''), coalesce(source, 'migrate') FROM "
	                       "suppressions ORDER BY address, client", -1, &su, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s (no SQLite ledger to move here?)", path, db ? sqlite3_errmsg(db) : "out of memory");
		rc = OR_EX_IOERR;
	}
	if (!rc && sqlite3_step(st) == SQLITE_ROW)
		for (int k = 0; k < 3; k++)
			n[k] = sqlite3_column_int64(st, k);
	while (!rc && sqlite3_step(su) == SQLITE_ROW) {
		const char *cl = (const char *)sqlite3_column_text(su, 1);
		if (*nrows == cap)
			*rows = or_xrealloc(*rows, sizeof **rows * (size_t)(cap = cap ? 2 * cap : 64));
		or_suppress_row(&(*rows)[(*nrows)++], (const char *)sqlite3_column_text(su, 0), cl && *cl ? cl : NULL,
		                (const char *)sqlite3_column_text(su, 2), (const char *)sqlite3_column_text(su, 3));
	}
	sqlite3_finalize(st);
	sqlite3_finalize(su);
	sqlite3_close(db);
	return rc;
}
#endif

/* suppress add: one address (canonical) for client ("" all), from the
 * operator.  BEGIN IMMEDIATE; no quota; committed when it returns. */
static void or_store_suppress_add(const char *canon, const char *client, const char *reason, double now)
{
	or_begin();
	or_suppress(canon, client, reason, "operator", now);
	or_commit();
}

/* suppress remove: lifts one address's suppression for client exactly (a
 * global one is removed with client "").  BEGIN IMMEDIATE; no quota. */
static void or_store_suppress_remove(const char *canon, const char *client)
{
	or_begin();
	or_q_done(or_q("DELETE FROM suppressions WHERE address = ?1 AND client = ?2", "tt", canon, client));
	or_commit();
}

/* requeue: the ids of the jobs in state, oldest first, handed to fn.  One
 * read, no lock: a job that changes state after it is seen is requeued from
 * the folder its state named (its rename fails, and says so). */
static void or_store_requeue_candidates(const char *state, void (*fn)(void *arg, const char *id), void *arg)
{
	sqlite3_stmt *st = or_q("SELECT id FROM jobs WHERE state = ?1 ORDER BY created_at", "t", state);

	while (or_step(st) == SQLITE_ROW)
		fn(arg, or_col(st, 0));
	sqlite3_reset(st);
}

/* requeue one job whose file the caller has already moved out of from
 * (OR_D_HELD, OR_D_FAILED or OR_D_BAD) and synced: bad becomes requeued
 * (ingest takes the file again), held and failed wait again (failed with
 * its attempts and age started over).  BEGIN IMMEDIATE; no quota.  A crash
 * before it commits leaves the file in defer/ or new/ with the old state:
 * requeue again finishes it. */
static void or_store_requeue(const char *id, int from, double now)
{
	struct or_job_set anew = { .set = OR_JS_UPDATED_AT, .updated_at = now };
	struct or_job_set again = { .set = OR_JS_NEXT_DUE | OR_JS_UPDATED_AT | OR_JS_RUN_ID, .next_due = now,
	                            .updated_at = now, .run_id = NULL };

	if (from == OR_D_FAILED) {   /* its attempts and age start over */
		again.set |= OR_JS_CREATED_AT;
		again.created_at = now;
		again.attempts = OR_JA_RESET;
	}
	or_begin();
	if (from == OR_D_BAD)
		or_job_move(id, OR_S_BAD, OR_S_REQUEUED, &anew);
	else
		or_job_move(id, from == OR_D_FAILED ? OR_S_FAILED : OR_S_HELD, OR_S_WAITING, &again);
	or_commit();
}

/* requeue held: the held-jobs alert follows the new count at once, not at
 * the next run.  BEGIN IMMEDIATE; no quota. */
static void or_store_held_alert(double now)
{
	or_begin();
	or_alert_held(now);
	or_commit();
}

/* pull: each provider account's feed and its last error ("ok"), by
 * account, into *out (or_feed_status_free).  One read, no lock. */
static int or_store_feeds_status(struct or_feed_status **out)
{
	sqlite3_stmt *st = or_q("SELECT account, coalesce(last_error, 'ok') FROM feeds WHERE list = '' ORDER BY account", "");
	int n = 0;

	*out = NULL;
	while (or_step(st) == SQLITE_ROW) {
		*out = or_xrealloc(*out, sizeof **out * (size_t)(n + 1));
		(*out)[n].account = or_xstrdup(or_col(st, 0));
		(*out)[n++].status = or_xstrdup(or_col(st, 1));
	}
	sqlite3_reset(st);
	return n;
}

static void or_feed_status_free(struct or_feed_status *f, int n)
{
	for (int i = 0; i < n; i++) {
		free(f[i].account);
		free(f[i].status);
	}
	free(f);
}

/* pause: a scope ("" for a part not given) is not claimed from the next
 * claim on; pausing it again only replaces its reason.  BEGIN IMMEDIATE; no
 * quota (a claim already made still goes). */
static void or_store_pause(const char *client, const char *campaign, const char *sender, const char *reason,
                           double now)
{
	or_begin();
	or_q_done(or_q("INSERT INTO pauses(client, campaign, sender, since, reason) VALUES(?1, ?2, ?3, ?4, ?5) "
	               "ON CONFLICT DO UPDATE SET reason = excluded.reason", "tttdt", client, campaign, sender, now,
	               reason));
	or_commit();
}

/* resume: lifts the pause of exactly that scope.  BEGIN IMMEDIATE; no
 * quota.  Returns how many pauses it removed (0: there was none). */
static int or_store_resume(const char *client, const char *campaign, const char *sender)
{
	int n;

	or_begin();
	or_q_done(or_q("DELETE FROM pauses WHERE client = ?1 AND campaign = ?2 AND sender = ?3", "ttt",
	               client, campaign, sender));
	n = sqlite3_changes(or_db);
	or_commit();
	return n;
}

/* cancel: the scope's waiting jobs (client, campaign: NULL any) marked
 * cancelling with why; or_cancel_finish then moves their files to failed/.
 * BEGIN IMMEDIATE; no quota (no slot is held by a waiting job).  A crash
 * after it: the jobs stay cancelling and the next run's recovery finishes
 * them.  Returns how many it marked. */
static int or_store_cancel(const char *client, const char *campaign, const char *why, double now)
{
	struct or_job_set s = { .set = OR_JS_LAST_ERROR | OR_JS_UPDATED_AT, .last_error = why, .updated_at = now };
	char (*ids)[OR_ID_HEX + 1];
	int n = 0, k;

	or_begin();
	for (int from = OR_S_WAITING; ; from = OR_S_PENDING) {   /* a sequence's follow-ups not yet due too */
		k = or_ids_take(or_q("SELECT id FROM jobs WHERE state = ?3 AND (?1 IS NULL OR client = ?1) AND "
		                     "(?2 IS NULL OR campaign = ?2)", "ttt", client, campaign, or_job_state_name(from)), &ids);
		for (int i = 0; i < k; i++)
			n += or_job_move(ids[i], from, OR_S_CANCELLING, &s);
		free(ids);
		if (from == OR_S_PENDING)
			break;
	}
	or_commit();
	return n;
}

/* render: the sender the rotation would give client's job c (its pin set)
 * now, as the claim weighs and picks (or_weigh_senders, or_weigh_pick), or
 * -1 when none has a slot.  A deferred BEGIN rolled back: a snapshot read,
 * nothing reserved, no quota decided, nothing to leave behind. */
static int or_store_render_sender(const struct or_config *cfg, const char *client, struct or_candidate *c,
                                  double now)
{
	struct or_run run = { 0 };
	struct or_weighing w;
	char last[80];

	run.deadline = now + 86400;
	or_exec("BEGIN");
	or_weigh_senders(cfg, &run, client, c, now, &w);
	or_kv_get("rr_last", last, sizeof last);
	or_exec("ROLLBACK");
	return w.eligible > 0 ? w.s[or_weigh_pick(cfg, &w, or_sender_index(cfg, last))].sender : -1;
}

/* jobs: the jobs that match f (each of state, client, campaign NULL for
 * any; to "" for any; limit <= 0 for no limit), oldest first, handed to fn
 * one at a time (times in RFC 3339 in json; the row's strings live until fn
 * returns), so a ledger of millions is listed in constant memory.  One
 * read, no lock. */
static void or_store_jobs(const struct or_jobs_filter *f, or_jobs_line_fn fn, void *arg)
{
	sqlite3_stmt *st = or_q("SELECT json_object('id', id, 'state', state, 'client', client, 'campaign', campaign, "
	                        "'to', rcpt, 'sender', sender, 'account', account, 'attempts', attempts, "
	                        "'created_at', strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'unixepoch'), "
	                        "'updated_at', strftime('%Y-%m-%dT%H:%M:%SZ', updated_at, 'unixepoch'), "
	                        "'sent_at', strftime('%Y-%m-%dT%H:%M:%SZ', sent_at, 'unixepoch'), "
	                        "'message_id', message_id, 'provider_id', provider_id, 'last_error', last_error), "
	                        "id, state, coalesce(client, '-'), coalesce(campaign, '-'), coalesce(rcpt, '-'), "
	                        "coalesce(sender, '-'), attempts, updated_at, coalesce(last_error, '') FROM jobs "
	                        "WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR client = ?2) AND "
	                        "(?3 IS NULL OR campaign = ?3) AND (?4 = '' OR rcpt = ?4) AND state != 'ingest' "
	                        "ORDER BY created_at, id LIMIT ?5", "ttttd", f->state, f->client, f->campaign, f->to,
	                        (double)(f->limit > 0 ? f->limit : -1));

	while (or_step(st) == SQLITE_ROW) {
		struct or_jobs_line r = { or_col(st, 0), or_col(st, 1), or_col(st, 2), or_col(st, 3), or_col(st, 4),
		                        or_col(st, 5), or_col(st, 6), or_col(st, 9), sqlite3_column_int(st, 7),
		                        sqlite3_column_double(st, 8) };
		fn(arg, &r);
	}
	sqlite3_reset(st);
}

/* show: one job's ledger row and its attempts, oldest first, as one JSON
 * object (times in RFC 3339), a new string; NULL when there is no such
 * job.  One read, no lock. */
static char *or_store_show(const char *id)
{
	sqlite3_stmt *st;
	char *json = NULL;

	st = or_q("SELECT json_object('id', id, 'producer_id', producer_id, 'state', state, 'client', client, "
	          "'campaign', campaign, 'to', rcpt, 'sender', sender, 'account', account, 'attempts', attempts, "
	          "'created_at', strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'unixepoch'), "
	          "'updated_at', strftime('%Y-%m-%dT%H:%M:%SZ', updated_at, 'unixepoch'), "
	          "'next_due', strftime('%Y-%m-%dT%H:%M:%SZ', next_due, 'unixepoch'), "
	          "'slot_at', strftime('%Y-%m-%dT%H:%M:%SZ', slot_at, 'unixepoch'), "
	          "'sent_at', strftime('%Y-%m-%dT%H:%M:%SZ', sent_at, 'unixepoch'), 'message_id', message_id, "
	          "'provider_id', provider_id, 'last_error', last_error, 'dup_of', dup_of, 'history', "
	          "(SELECT json_group_array(json_object('at', strftime('%Y-%m-%dT%H:%M:%SZ', at, 'unixepoch'), "
	          "'sender', sender, 'account', account, 'outcome', outcome, 'provider_id', provider_id, "
	          "'message_id', message_id, 'reason', reason)) FROM (SELECT * FROM attempts WHERE job_id = jobs.id ORDER BY at))) "
	          "FROM jobs WHERE id = ?1", "t", id);
	if (or_step(st) == SQLITE_ROW)
		json = or_xstrdup(or_col(st, 0));
	sqlite3_reset(st);
	return json;
}

/* backup: a consistent copy of the ledger written to tmp (SQLite's online
 * backup API reads one snapshot, retrying while a writer holds the lock;
 * WAL lets runs go on) and checked with PRAGMA integrity_check.  Takes no
 * write lock, changes nothing in the ledger; the caller renames tmp into
 * place (or removes it).  0 when tmp is a good copy; -1 when tmp could not
 * be opened, 1 when the copy or its check failed: err says why. */
static int or_store_backup(const char *tmp, char *err, size_t errlen)
{
	sqlite3 *dst = NULL;
	sqlite3_backup *bk;
	int rc;

	if (sqlite3_open(tmp, &dst) != SQLITE_OK || !(bk = sqlite3_backup_init(dst, "main", or_db, "main"))) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(dst));
		sqlite3_close(dst);
		return -1;
	}
	while ((rc = sqlite3_backup_step(bk, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
		sqlite3_sleep(50);
	sqlite3_backup_finish(bk);
	if (rc == SQLITE_DONE) {
		sqlite3_stmt *st;
		rc = sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
		     sqlite3_step(st) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "ok") ? SQLITE_DONE : SQLITE_CORRUPT;
		sqlite3_finalize(st);
	}
	sqlite3_close(dst);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s", sqlite3_errstr(rc));
		return 1;
	}
	return 0;
}

/* ================================================================
 * STORE: sequence and reply operations
 *
 * follow-ups released and stopped, leads, replies recorded with their cursor.
 * ================================================================ */

/* ---- a sequence taken in (inside the ingest batch's transaction) ---- */

/* A follow-up's row: pending, due once its previous step is sent; its own
 * job is body (no file).  A follow-up whose id is taken (the same producer
 * id came before) is left as it is. */
static void or_seq_followup_insert(const struct or_arrival *f, const char *seq)
{
	or_q_done(or_q("INSERT INTO jobs(id, producer_id, client, campaign, rcpt, rcpt_domain, pin, content, "
	               "win_days, win_start, win_end, win_tz, state, created_at, updated_at, thread, seq, step, "
	               "after, body) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, CASE WHEN ?13 THEN ?9 END, ?10, ?11, ?12, "
	               "'pending', ?14, ?14, ?15, ?16, ?17, ?18, ?19) ON CONFLICT(id) DO NOTHING",
	               "tttttttt" "iiiti" "dttitt",
	               f->id, f->producer, f->client, f->campaign, f->rcpt, f->rcpt_domain, f->pin, f->content,
	               (long long)f->win_days, (long long)f->win_start, (long long)f->win_end, f->win_tz,
	               (long long)f->win_set, f->now, f->thread, seq, (long long)f->step, f->after, f->body));
}

/* Step 1 of a sequence recorded: its row marked step 1 of its own
 * sequence, the lead (active), and every follow-up pending. */
static void or_seq_record(const struct or_arrival *a)
{
	or_q_done(or_q("UPDATE jobs SET seq = id, step = 1 WHERE id = ?1", "t", a->id));
	or_q_done(or_q("INSERT INTO leads(seq, client, campaign, rcpt, rcpt_domain, state, at, stop_on, on_auto, steps) "
	               "VALUES(?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
	               "tttttditi", a->id, a->client, a->campaign, a->rcpt, a->rcpt_domain ? a->rcpt_domain : "",
	               a->now, (long long)a->stop_on, a->on_auto, (long long)a->nsteps));
	for (int i = 0; i < a->nfollow; i++)
		or_seq_followup_insert(&a->follow[i], a->id);
}

/* ---- steps released and stopped (inside the caller's transaction) ---- */

/* Every step of sequence seq still to go (pending or waiting) stopped,
 * why on each; returns how many.  The follow-ups hold their job in the
 * ledger and stop at once; a first step not sent yet has its file in
 * defer/, so it goes the way of a cancel (cancelling, and or_cancel_finish,
 * at the next run's start or the command's end, moves it to failed/ with
 * the reason). */
static int or_seq_stop_rest(const char *seq, const char *why, double now)
{
	char (*ids)[OR_ID_HEX + 1];
	int n = or_ids_take(or_q("SELECT id FROM jobs WHERE seq = ?1 AND state = 'pending'", "t", seq), &ids), k = 0;
	struct or_job_set s = { .set = OR_JS_LAST_ERROR | OR_JS_UPDATED_AT, .last_error = why, .updated_at = now };

	for (int i = 0; i < n; i++)
		k += or_job_move(ids[i], OR_S_PENDING, OR_S_STOPPED, &s);
	free(ids);
	n = or_ids_take(or_q("SELECT id FROM jobs WHERE seq = ?1 AND state = 'waiting' AND body IS NOT NULL", "t", seq), &ids);
	for (int i = 0; i < n; i++)
		k += or_job_move(ids[i], OR_S_WAITING, OR_S_STOPPED, &s);
	free(ids);
	k += or_job_move(seq, OR_S_WAITING, OR_S_CANCELLING, &s);   /* step 1, when it still waits */
	return k;
}

/* A lead's state changed for good (replied, bounced, complained,
 * unsubscribed, stopped): the row, then every step still to go stopped
 * with the reason.  Only an active or paused lead changes. */
static int or_lead_end(const char *seq, const char *state, const char *why, double now)
{
	char stop[600];

	or_q_done(or_q("UPDATE leads SET state = ?2, reason = ?3, at = ?4, hold_until = NULL WHERE seq = ?1 AND "
	               "state IN ('active', 'paused')", "tttd", seq, state, why, now));
	if (!sqlite3_changes(or_db))
		return 0;
	snprintf(stop, sizeof stop, "stopped: %s%s%.500s", strcmp(state, "stopped") ? state : "",
	         strcmp(state, "stopped") ? ": " : "", why);
	or_seq_stop_rest(seq, stop, now);
	return 1;
}

/* The leads of an address (of one client, or of every client when client
 * is NULL or "") ended by a suppression: state as the reason says. */
static void or_leads_suppressed(const char *addr, const char *client, const char *reason, double now)
{
	sqlite3_stmt *st = or_q("SELECT seq FROM leads WHERE rcpt = ?1 AND (?2 = '' OR client = ?2) AND "
	                        "state IN ('active', 'paused')", "tt", addr, client ? client : "");
	char (*ids)[OR_ID_HEX + 1];
	int n = or_ids_take(st, &ids);

	for (int i = 0; i < n; i++)
		or_lead_end(ids[i], or_lead_state_of_suppression(reason), reason, now);
	free(ids);
}

/* Step id was sent at `at`: its sequence's next step, pending, becomes
 * waiting, due `after` the send (business days on its window and its
 * client's holidays), not before its lead's hold.  A lead that ended
 * meanwhile has no pending steps left (or_lead_end stopped them); a lead
 * whose last step went is finished. */
static void or_seq_advance(const struct or_config *cfg, const char *id, double at, double now)
{
	sqlite3_stmt *st = or_q("SELECT f.id, f.after, f.win_days, f.win_start, f.win_end, f.win_tz, f.client, "
	                        "coalesce(l.hold_until, 0), j.seq, j.step, l.steps FROM jobs j JOIN leads l ON l.seq = j.seq "
	                        "LEFT JOIN jobs f ON f.seq = j.seq AND f.step = j.step + 1 AND f.state = 'pending' "
	                        "WHERE j.id = ?1", "t", id);
	char fid[OR_ID_HEX + 1] = "", after[16] = "", client[OR_MAX_LABEL + 1] = "", seq[OR_ID_HEX + 1] = "";
	struct or_window w = { 0 };
	double hold = 0;
	int last = 0;

	if (or_step(st) == SQLITE_ROW) {
		snprintf(fid, sizeof fid, "%s", or_col(st, 0));
		snprintf(after, sizeof after, "%s", or_col(st, 1));
		if ((w.set = sqlite3_column_type(st, 2) != SQLITE_NULL)) {
			w.days = (unsigned)sqlite3_column_int(st, 2);
			w.start_min = sqlite3_column_int(st, 3);
			w.end_min = sqlite3_column_int(st, 4);
			snprintf(w.tz, sizeof w.tz, "%s", or_col(st, 5));
		}
		snprintf(client, sizeof client, "%s", or_col(st, 6));
		hold = sqlite3_column_double(st, 7);
		snprintf(seq, sizeof seq, "%s", or_col(st, 8));
		last = sqlite3_column_int(st, 9) >= sqlite3_column_int(st, 10);
	}
	sqlite3_reset(st);
	if (!*seq)   /* no sequence (most sends): nothing more to read or write */
		return;
	/* an out-of-office hold that is over: the send shows the lead is active again */
	or_q_done(or_q("UPDATE leads SET state = 'active', hold_until = NULL, at = ?2 WHERE seq = ?1 AND state = 'paused' "
	               "AND hold_until <= ?2", "td", seq, now));
	if (last)
		or_q_done(or_q("UPDATE leads SET state = 'finished', at = ?2 WHERE seq = ?1 AND state = 'active'",
		               "td", seq, now));
	if (!*fid)
		return;
	struct or_job_set s = { .set = OR_JS_NEXT_DUE | OR_JS_UPDATED_AT, .updated_at = now,
	                        .next_due = or_step_due(cfg, client, at, after, &w) };
	if (s.next_due < hold)
		s.next_due = hold;
	or_job_move(fid, OR_S_PENDING, OR_S_WAITING, &s);
}

/* Step id failed for good (or was found bad): the rest of its sequence
 * stops, and its lead with it. */
static void or_seq_failed(const char *id, const char *why, double now)
{
	char seq[OR_ID_HEX + 1] = "", w[600];
	sqlite3_stmt *st = or_q("SELECT seq FROM jobs WHERE id = ?1 AND seq IS NOT NULL", "t", id);

	if (or_step(st) == SQLITE_ROW)
		snprintf(seq, sizeof seq, "%s", or_col(st, 0));
	sqlite3_reset(st);
	if (!*seq)
		return;
	snprintf(w, sizeof w, "previous step failed: %.500s", why ? why : "");
	or_lead_end(seq, "stopped", w, now);
}

/* The References of follow-up id: the Message-IDs, as delivered, of the
 * earlier steps of its sequence in order (RFC 5322 §3.6.4: the parent's
 * References and then the parent), space separated; NULL when it is no
 * follow-up or none has one.  A read. */
static char *or_store_thread_refs(const char *id)
{
	sqlite3_stmt *st = or_q("SELECT p.message_id FROM jobs j JOIN jobs p ON p.seq = j.seq AND p.step < j.step "
	                        "WHERE j.id = ?1 AND j.seq IS NOT NULL AND p.message_id IS NOT NULL AND "
	                        "p.state IN ('sent', 'held') ORDER BY p.step", "t", id);
	struct or_buf b = { 0 };

	while (or_step(st) == SQLITE_ROW && b.len < 8000)
		or_buf_printf(&b, "%s%s", b.len ? " " : "", or_col(st, 0));
	sqlite3_reset(st);
	return b.s;
}

/* A follow-up's job (JSON, malloc'd), NULL when the row has none.  A read. */
static char *or_store_job_body(const char *id)
{
	sqlite3_stmt *st = or_q("SELECT body FROM jobs WHERE id = ?1 AND body IS NOT NULL", "t", id);
	char *b = or_step(st) == SQLITE_ROW ? or_xstrdup(or_col(st, 0)) : NULL;

	sqlite3_reset(st);
	return b;
}

/* ---- just before a follow-up's intent ---- */

/* Whether follow-up id (sent from sender s) may go now: OR_GATE_GO; or
 * OR_GATE_STOP (its lead ended: why says how); or OR_GATE_WAIT until
 * *until (an out-of-office hold, or a mailbox not read lately).  A read,
 * no lock: the claim's transaction is over, and a reply that lands between
 * this read and the intent is the one race left (a pull interval at most,
 * doc/design.md §15). */
static int or_store_followup_gate(const struct or_config *cfg, const char *id, const struct or_sender *s, double now,
                                  double *until, char *why, size_t n)
{
	sqlite3_stmt *st = or_q("SELECT l.state, coalesce(l.reason, ''), coalesce(l.hold_until, 0), j.step FROM jobs j "
	                        "JOIN leads l ON l.seq = j.seq WHERE j.id = ?1", "t", id);
	int step = 1;
	char state[16] = "";
	double hold = 0;

	if (or_step(st) == SQLITE_ROW) {
		snprintf(state, sizeof state, "%s", or_col(st, 0));
		snprintf(why, n, "%s", or_col(st, 1));
		hold = sqlite3_column_double(st, 2);
		step = sqlite3_column_int(st, 3);
	}
	sqlite3_reset(st);
	if (step < 2)
		return OR_GATE_GO;
	if (strcmp(state, "active") && strcmp(state, "paused")) {
		char w[600];
		snprintf(w, sizeof w, "stopped: %s%s%.500s", strcmp(state, "stopped") ? state : "",
		         strcmp(state, "stopped") ? ": " : "", why);
		snprintf(why, n, "%s", w);
		return OR_GATE_STOP;
	}
	if (hold > now) {
		char when[32];
		or_fmt_rfc3339((time_t)hold, when, sizeof when);
		*until = hold;
		snprintf(why, n, "its lead is paused until %s", when);
		return OR_GATE_WAIT;
	}
	if (!strcmp(state, "paused") && hold <= 0) {   /* an operator's pause with no end: until lead resume */
		*until = now + 3600;
		snprintf(why, n, "its lead is paused until resumed (outreach lead resume)");
		return OR_GATE_WAIT;
	}
	if (s && !s->replies_none) {
		double fresh = s->mailbox < 0 ? 0 : or_store_mailbox_fresh(&cfg->mailboxes[s->mailbox]);
		if (fresh < now - cfg->reply_max_age) {
			*until = now + 60;
			snprintf(why, n, s->mailbox < 0 ? "sender %s has no mailbox to read replies from (say replies = \"none\" "
			         "to send follow-ups without one)" : "the mailbox of sender %s was not read lately: a reply could "
			         "be waiting there", s->name);
			return OR_GATE_WAIT;
		}
	}
	return OR_GATE_GO;
}

/* When every folder of a mailbox was last read successfully (the oldest of
 * them), 0 when one never was.  A read, no lock. */
/* The oldest last success (col 0) or last attempt (col 1) over a mailbox's
 * configured folders, 0 when one of them has none yet.  A read, no lock. */
static double or_mailbox_oldest(const struct or_mailbox *mb, int col)
{
	struct or_buf f = { 0 };
	sqlite3_stmt *st;
	double v = 0;

	or_folders_json(mb, &f);
	st = or_q("SELECT CASE WHEN count(*) < json_array_length(?2) OR count(last_success) < count(*) THEN 0 "
	          "ELSE min(last_success) END, CASE WHEN count(*) < json_array_length(?2) OR count(last_attempt) < "
	          "count(*) THEN 0 ELSE min(last_attempt) END FROM mailbox_cursors WHERE mailbox = ?1 AND folder IN "
	          "(SELECT value FROM json_each(?2))", "tt", mb->name, f.s);
	if (or_step(st) == SQLITE_ROW)
		v = sqlite3_column_double(st, col);
	sqlite3_reset(st);
	or_buf_free(&f);
	return v;
}

static double or_store_mailbox_fresh(const struct or_mailbox *mb) { return or_mailbox_oldest(mb, 0); }

/* A mailbox's configured folders as a JSON array: rows of folders the
 * config no longer names neither hold its freshness back nor make it due. */
static void or_folders_json(const struct or_mailbox *mb, struct or_buf *b)
{
	or_buf_puts(b, "[");
	for (int i = 0; mb->folders[i]; i++) {
		or_buf_puts(b, i ? "," : "");
		or_json_str(b, mb->folders[i]);
	}
	or_buf_puts(b, "]");
}

/* ---- replies: cursors, matches, effects ---- */

/* When a mailbox was last tried (the oldest of its folders' attempts), 0
 * when one of its folders has no row yet: whether it is due.  A read. */
static double or_store_mailbox_last_attempt(const struct or_mailbox *mb) { return or_mailbox_oldest(mb, 1); }

/* A folder's cursor: 1 with its UIDVALIDITY and the last UID read, 0 when
 * it has none (never read, or only failed).  A read, no lock: only a run
 * holding the run lock moves it, one at a time (or_store_replies_window). */
static int or_store_mailbox_cursor(const char *mailbox, const char *folder, long long *validity, long long *last)
{
	sqlite3_stmt *st = or_q("SELECT uidvalidity, last_uid FROM mailbox_cursors WHERE mailbox = ?1 AND folder = ?2 "
	                        "AND uidvalidity IS NOT NULL AND last_uid IS NOT NULL", "tt", mailbox, folder);
	int found = or_step(st) == SQLITE_ROW;

	if (found) {
		*validity = sqlite3_column_int64(st, 0);
		*last = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return found;
}

/* The end of a folder's pull: BEGIN IMMEDIATE, its attempt, its error
 * (NULL: none) and, when it read up to the folder's end, its success (what
 * the follow-ups' freshness gate reads), COMMIT.  Decides no quota. */
static void or_store_mailbox_mark(const char *mailbox, const char *folder, const char *error, int caught_up,
                                  double now)
{
	or_begin();
	or_q_done(or_q("INSERT INTO mailbox_cursors(mailbox, folder, last_attempt, last_success, last_error) VALUES(?1, ?2, "
	               "?5, CASE WHEN ?3 IS NULL AND ?4 THEN ?5 END, ?3) ON CONFLICT(mailbox, folder) DO UPDATE SET "
	               "last_attempt = ?5, last_success = CASE WHEN ?3 IS NULL AND ?4 THEN ?5 ELSE last_success END, "
	               "last_error = ?3", "tttid", mailbox, folder, error, (long long)caught_up, now));
	or_commit();
}

/* The send a Message-ID (as delivered: with or without its angle
 * brackets) belongs to, into job; 1 when found.  A read. */
static int or_reply_job_by_msgid(const char *id, char job[OR_ID_HEX + 1])
{
	char bare[OR_MAX_HEADER + 1];
	size_t n = strlen(id);

	snprintf(bare, sizeof bare, "%.*s", (int)(n > 2 && id[0] == '<' && id[n - 1] == '>' ? n - 2 : n),
	         n > 2 && id[0] == '<' ? id + 1 : id);
	or_event_job_row(or_q("SELECT id FROM jobs WHERE message_id IN (?1, ?2, '<' || ?2 || '>') ORDER BY step DESC "
	                      "LIMIT 1", "tt", id, bare), job);
	return *job != 0;
}

/* The last send to addr within OR_REPLY_MATCH_DAYS before the message's
 * date (or now) and not after it, into job; 1 when found.  A read. */
static int or_reply_job_by_addr(const char *addr, double date_at, char job[OR_ID_HEX + 1])
{
	double now = or_now();
	/* the sender's Date, unless it is missing or out of all reason (a
	 * skewed or forged one must not hide a reply): then now */
	double at = date_at > now - OR_REPLY_MATCH_DAYS * 86400.0 && date_at < now + 86400 ? date_at : now;

	or_event_job_row(or_q("SELECT id FROM jobs WHERE rcpt = ?1 AND state IN ('sent', 'held') AND sent_at >= ?2 AND "
	                      "sent_at <= ?3 ORDER BY sent_at DESC LIMIT 1", "tdd", addr,
	                      at - OR_REPLY_MATCH_DAYS * 86400.0, at + 600), job);
	return *job != 0;
}

/* Whether a message's own Message-ID is one we sent: our copy (a Sent
 * folder, a forward of it back to us) is no reply.  A read. */
static int or_store_msgid_ours(const char *id)
{
	char job[OR_ID_HEX + 1] = "";

	return *id && or_reply_job_by_msgid(id, job);
}

/* Which send a message answers (a read, no lock): In-Reply-To, then
 * References newest first, against the Message-IDs as delivered; else its
 * From, then its Reply-To, against the last send to that address.  Sets
 * r->job and r->method, or leaves them empty. */
static void or_store_reply_match(const struct or_config *cfg, const struct or_mail *m, struct or_reply *r)
{
	(void)cfg;
	if (*m->in_reply_to && or_reply_job_by_msgid(m->in_reply_to, r->job)) {
		r->method = "in-reply-to";
		return;
	}
	for (int i = m->nrefs - 1; i >= 0; i--)
		if (or_reply_job_by_msgid(m->refs[i], r->job)) {
			r->method = "references";
			return;
		}
	if (*m->from && or_reply_job_by_addr(m->from, r->date_at, r->job))
		r->method = "from";
	else if (*m->reply_to && strcmp(m->reply_to, m->from) && or_reply_job_by_addr(m->reply_to, r->date_at, r->job))
		r->method = "reply-to";
}

/* A bounce's send: the returned message's Message-ID, else the failed
 * address's last send.  A read. */
static void or_store_bounce_match(struct or_reply *r, const char *orig_msgid)
{
	if (orig_msgid && *orig_msgid && or_reply_job_by_msgid(orig_msgid, r->job))
		r->method = "dsn-message-id";
	else if (*r->rcpt && or_reply_job_by_addr(r->rcpt, 0, r->job))
		r->method = "dsn-recipient";
}

/* What a matched send is, for a reply's effect. */
struct or_reply_job {
	char seq[OR_ID_HEX + 1], client[OR_MAX_LABEL + 1], campaign[OR_MAX_LABEL + 1], rcpt[OR_MAX_ADDR + 1];
	char account[64], lead[16], on_auto[16], domain[256];
	int step;
	unsigned stop_on;
};

static void or_reply_job_read(const char *id, struct or_reply_job *j)
{
	sqlite3_stmt *st = or_q("SELECT coalesce(j.seq, ''), coalesce(j.step, 0), j.client, j.campaign, j.rcpt, "
	                        "coalesce(j.account, ''), coalesce(l.state, ''), coalesce(l.stop_on, 0), "
	                        "coalesce(l.on_auto, 'pause'), coalesce(l.rcpt_domain, j.rcpt_domain, '') FROM jobs j "
	                        "LEFT JOIN leads l ON l.seq = j.seq WHERE j.id = ?1", "t", id);

	memset(j, 0, sizeof *j);
	if (or_step(st) == SQLITE_ROW) {
		snprintf(j->seq, sizeof j->seq, "%s", or_col(st, 0));
		j->step = sqlite3_column_int(st, 1);
		snprintf(j->client, sizeof j->client, "%s", or_col(st, 2));
		snprintf(j->campaign, sizeof j->campaign, "%s", or_col(st, 3));
		snprintf(j->rcpt, sizeof j->rcpt, "%s", or_col(st, 4));
		snprintf(j->account, sizeof j->account, "%s", or_col(st, 5));
		snprintf(j->lead, sizeof j->lead, "%s", or_col(st, 6));
		j->stop_on = (unsigned)sqlite3_column_int(st, 7);
		snprintf(j->on_auto, sizeof j->on_auto, "%s", or_col(st, 8));
		snprintf(j->domain, sizeof j->domain, "%s", or_col(st, 9));
	}
	sqlite3_reset(st);
}

/* Colleagues' leads stopped: every active or paused lead at domain whose
 * stop_on has domain_reply, of client (or, client NULL, of any client whose
 * steps went from a sender in the JSON array senders, or any at all when
 * senders is NULL: inbound/ has no mailbox), but seq's.  Inside
 * the caller's transaction; how many. */
static int or_reply_colleagues(const char *domain, const char *client, const char *senders, const char *seq,
                               const char *from, double now)
{
	char (*ids)[OR_ID_HEX + 1], why[600];
	int n, k = 0;

	if (!*domain || or_freemail(domain))
		return 0;
	n = or_ids_take(or_q("SELECT l.seq FROM leads l WHERE l.rcpt_domain = ?1 AND l.state IN ('active', 'paused') AND "
	                     "(l.stop_on & ?4) != 0 AND l.seq != ?3 AND (?2 IS NOT NULL AND l.client = ?2 OR ?2 IS NULL AND "
	                     "(?5 IS NULL OR EXISTS (SELECT 1 FROM jobs j WHERE j.seq = l.seq AND j.sender IN (SELECT value "
	                     "FROM json_each(?5)))))", "tttit", domain, client, seq ? seq : "", (long long)OR_STOP_DOMAIN_REPLY,
	                     senders), &ids);
	snprintf(why, sizeof why, "a colleague replied (%.400s)", from);
	for (int i = 0; i < n; i++)
		k += or_lead_end(ids[i], "stopped", why, now);
	free(ids);
	return k;
}

/* An out-of-office's hold: the lead paused until its return (or_ooo_hold_until
 * on its first step's window), never shortened by a later one, and its
 * waiting steps moved past it.  Inside the caller's transaction. */
static double or_reply_hold(const struct or_config *cfg, const struct or_reply_job *j, int return_day, double now)
{
	sqlite3_stmt *st = or_q("SELECT win_days, win_start, win_end, win_tz FROM jobs WHERE id = ?1", "t", j->seq);
	struct or_window w = { 0 };
	double hold;

	if (or_step(st) == SQLITE_ROW && (w.set = sqlite3_column_type(st, 0) != SQLITE_NULL)) {
		w.days = (unsigned)sqlite3_column_int(st, 0);
		w.start_min = sqlite3_column_int(st, 1);
		w.end_min = sqlite3_column_int(st, 2);
		snprintf(w.tz, sizeof w.tz, "%s", or_col(st, 3));
	}
	sqlite3_reset(st);
	hold = or_ooo_hold_until(cfg, j->client, &w, now, return_day);
	or_q_done(or_q("UPDATE leads SET state = 'paused', hold_until = max(coalesce(hold_until, 0), ?2), at = ?3 WHERE "
	               "seq = ?1 AND state IN ('active', 'paused')", "tdd", j->seq, hold, now));
	or_q_done(or_q("UPDATE jobs SET next_due = max(coalesce(next_due, 0), ?2), updated_at = ?3 WHERE seq = ?1 AND "
	               "state = 'waiting'", "tdd", j->seq, hold, now));
	return hold;
}

/* A bounce or a complaint read from a mailbox, recorded as a provider
 * event would be (or_event_record: its job joined, the address suppressed
 * on a hard bounce or a complaint, which ends its leads).  Inside the
 * caller's transaction; the effect in out. */
static void or_reply_event(const struct or_config *cfg, const char *source, const struct or_reply *r,
                           const struct or_reply_job *j, struct or_settle *settle, char *out, size_t n)
{
	const char *type = r->cls == OR_MAIL_COMPLAINT ? "complained" : r->hard ? "bounced" : "soft_bounce";
	const char *rcpt = *r->rcpt ? r->rcpt : j->rcpt;
	int p = *j->account ? or_provider_index(cfg, j->account) : -1;
	char key[OR_MAX_HEADER + 200];

	if (!*rcpt) {
		snprintf(out, n, "unmatched: no address to suppress");
		return;
	}
	snprintf(key, sizeof key, "mail:%s:%s", source, r->key);
	struct or_event ev = { type, *r->status ? r->status : NULL, key, rcpt, NULL, NULL, *r->job ? r->job : NULL,
	                       *r->diag ? r->diag : r->rule, r->date_at > 0 ? r->date_at : or_now(), NULL, NULL };
	or_event_record(cfg, p >= 0 ? &cfg->providers[p] : NULL, &ev, settle, or_now());
	snprintf(out, n, "%s %s%s", type, rcpt, !strcmp(type, "soft_bounce") ? " (counted)" : " (suppressed)");
}

/* What a human reply or an out-of-office does to the lead of the send it
 * answers, by its stop_on and on_auto_reply.  Inside the caller's
 * transaction; the effect in out. */
static void or_reply_lead(const struct or_config *cfg, const struct or_reply *r, const struct or_reply_job *j,
                          double now, char *out, size_t n)
{
	char why[900], when[32];
	int ooo = r->cls == OR_MAIL_OOO;

	if (!*j->seq || !*j->lead) {
		snprintf(out, n, "recorded (no sequence)");
		return;
	}
	snprintf(why, sizeof why, "%s %.500s from %.320s (%s, matched by %s)", ooo ? "auto-reply" : "reply", r->key,
	         r->from, r->rule ? r->rule : "", r->method ? r->method : "?");
	if (ooo && strcmp(j->on_auto, "stop")) {
		if (!strcmp(j->on_auto, "ignore") || (strcmp(j->lead, "active") && strcmp(j->lead, "paused"))) {
			snprintf(out, n, "counted (lead %s, on_auto_reply %s)", j->lead, j->on_auto);
			return;
		}
		or_fmt_rfc3339((time_t)or_reply_hold(cfg, j, r->return_day, now), when, sizeof when);
		snprintf(out, n, "paused until %s%s", when, r->return_day ? " (its return date)" : "");
		return;
	}
	if (!(j->stop_on & OR_STOP_REPLY))
		snprintf(out, n, "recorded (stop_on has no reply)");
	else if (or_lead_end(j->seq, "replied", why, now))
		snprintf(out, n, "lead replied: its remaining steps stopped");
	else
		snprintf(out, n, "recorded (lead already %s)", j->lead);
}

/* One message's effect by its class, inside the caller's transaction: a
 * human reply ends its lead (and its colleagues' with domain_reply), an
 * out-of-office pauses it, a bounce or a complaint goes the feeds' way,
 * everything is counted (reply:CLASS:STEP).  The effect in out. */
static void or_reply_effect(const struct or_config *cfg, const char *source, const struct or_reply *r,
                            struct or_settle *settle, double now, char *out, size_t n)
{
	struct or_reply_job j;
	char kind[48];
	const char *dom = strchr(r->from, '@');

	or_reply_job_read(r->job, &j);
	if (r->cls == OR_REPLY_OWN) {
		snprintf(out, n, "ignored (our own mail)");
		return;
	}
	snprintf(kind, sizeof kind, "reply:%s:%d", *r->job ? or_reply_class_name(r->cls) : "unmatched", j.step);
	or_count(kind, j.client, j.campaign, NULL);
	if (r->cls == OR_MAIL_BOUNCE || r->cls == OR_MAIL_COMPLAINT) {
		or_reply_event(cfg, source, r, &j, settle, out, n);
	} else if (r->cls == OR_MAIL_AUTO || r->cls == OR_MAIL_RECEIPT) {
		snprintf(out, n, "counted");
	} else if (*r->job) {
		or_reply_lead(cfg, r, &j, now, out, n);
		if (r->cls == OR_MAIL_HUMAN && or_reply_colleagues(j.domain, j.client, NULL, j.seq, r->from, now))
			snprintf(out + strlen(out), n - strlen(out), "; colleagues' leads stopped");
	} else if (r->cls == OR_MAIL_HUMAN && dom) {
		/* no thread, no known address: perhaps a lead's colleague, writing
		 * from the company's domain to a mailbox our senders use */
		struct or_buf senders = { 0 };
		int mb = or_mailbox_index(cfg, source);
		or_buf_puts(&senders, "[");
		for (int i = 0; mb >= 0 && i < cfg->nsenders; i++)
			if (cfg->senders[i].mailbox == mb) {
				or_buf_puts(&senders, senders.len > 1 ? "," : "");
				or_json_str(&senders, cfg->senders[i].name);
			}
		or_buf_puts(&senders, "]");
		snprintf(out, n, "%s", or_reply_colleagues(dom + 1, NULL, mb >= 0 ? senders.s : NULL, NULL, r->from, now)
		                       ? "colleagues' leads stopped (matched by domain)" : "unmatched");
		or_buf_free(&senders);
	} else {
		snprintf(out, n, "unmatched");
	}
}

/* One message: its row once (replies, unique by source and key), then its
 * effect.  Inside the caller's transaction; 1 if it was new. */
static int or_reply_apply(const struct or_config *cfg, const char *source, const char *folder, const struct or_reply *r,
                          struct or_settle *settle, double now)
{
	char effect[700] = "";

	or_q_done(or_q("INSERT INTO replies(source, folder, uid, message_id, at, from_addr, class, rule, job_id, seq, method, "
	               "step, client, campaign, rcpt) SELECT ?1, ?2, nullif(?3, 0), ?4, ?5, nullif(?6, ''), ?7, ?8, j.id, j.seq, "
	               "?9, j.step, j.client, j.campaign, j.rcpt FROM (SELECT 1) LEFT JOIN jobs j ON j.id = ?10 WHERE 1 "
	               "ON CONFLICT DO NOTHING", "ttitdttttt", source, folder, r->uid, r->key, now, r->from,
	               or_reply_class_name(r->cls), r->rule, r->method, r->job));
	if (!sqlite3_changes(or_db))
		return 0;
	if (r->key[0] == '<' && or_q_int(or_q("SELECT 1 FROM replies WHERE message_id = ?1 AND source != ?2 LIMIT 1", "tt",
	                                      r->key, source), 0))   /* a copy another source read (inbound/, a second mailbox) */
		snprintf(effect, sizeof effect, "a copy of a message read from another source: applied there");
	else
		or_reply_effect(cfg, source, r, settle, now, effect, sizeof effect);
	or_q_done(or_q("UPDATE replies SET effect = ?3 WHERE source = ?1 AND message_id = ?2", "ttt", source, r->key,
	               effect));
	or_log(2, "event=reply source=%s class=%s rule=%s job=%s method=%s effect=\"%s\"", source,
	       or_reply_class_name(r->cls), r->rule ? r->rule : "", *r->job ? r->job : "-", r->method ? r->method : "-",
	       effect);
	return 1;
}

/* A window of messages: BEGIN IMMEDIATE, each message's row and effects
 * (a message seen before does nothing: a window read again after a crash
 * applies nothing twice), the folder's cursor moved to last (last < 0:
 * left alone, an inbound/ file or a backfill), leads whose hold ended made
 * active again, COMMIT; then the held jobs an event proved delivered
 * settled.  Decides no quota.  A crash before the COMMIT leaves the cursor
 * where it was: the window is read again.  How many messages were new. */
static int or_store_replies_window(const struct or_config *cfg, const char *source, const char *folder,
                                   const struct or_replies *w, long long validity, long long last, double now)
{
	struct or_settle settle = { 0 };
	int fresh = 0;

	or_begin();
	for (int i = 0; i < w->n; i++)
		fresh += or_reply_apply(cfg, source, folder, &w->v[i], &settle, now);
	if (last >= 0)
		or_q_done(or_q("INSERT INTO mailbox_cursors(mailbox, folder, uidvalidity, last_uid, last_attempt) VALUES(?1, "
		               "?2, ?3, ?4, ?5) ON CONFLICT(mailbox, folder) DO UPDATE SET last_uid = CASE WHEN uidvalidity = ?3 "
		               "THEN max(coalesce(last_uid, 0), ?4) ELSE ?4 END, uidvalidity = ?3, last_attempt = ?5", "ttiid",
		               source, folder, validity, last, now));
	or_q_done(or_q("UPDATE leads SET state = 'active', hold_until = NULL WHERE state = 'paused' AND hold_until <= ?1",
	               "d", now));
	or_commit();
	or_settle_held(cfg, &settle, now);
	return fresh;
}

/* ---- leads: the operator's view and hand ---- */

/* The leads a filter selects, newest change first, one row each to fn
 * (json: the row as JSON, as leads --json prints it).  A read. */
static void or_store_leads(const struct or_leads_filter *f, or_leads_line_fn fn, void *arg)
{
	sqlite3_stmt *st = or_q("SELECT json_object('lead', l.seq, 'to', l.rcpt, 'client', l.client, 'campaign', "
	                        "l.campaign, 'state', l.state, 'reason', l.reason, 'steps', l.steps, 'sent', "
	                        "(SELECT count(*) FROM jobs j WHERE j.seq = l.seq AND j.state IN ('sent', 'held')), "
	                        "'replies', (SELECT count(*) FROM replies r WHERE r.seq = l.seq), "
	                        "'changed_at', strftime('%Y-%m-%dT%H:%M:%SZ', l.at, 'unixepoch'), "
	                        "'hold_until', strftime('%Y-%m-%dT%H:%M:%SZ', l.hold_until, 'unixepoch')), "
	                        "l.seq, l.state, l.client, l.campaign, l.rcpt, coalesce(l.reason, ''), l.steps, "
	                        "(SELECT count(*) FROM jobs j WHERE j.seq = l.seq AND j.state IN ('sent', 'held')), l.at "
	                        "FROM leads l WHERE (?1 IS NULL OR l.state = ?1) AND (?2 IS NULL OR l.client = ?2) AND "
	                        "(?3 IS NULL OR l.campaign = ?3) AND (?4 = '' OR l.rcpt = ?4) ORDER BY l.at DESC, l.seq "
	                        "LIMIT ?5", "tttti", f->state, f->client, f->campaign, f->to ? f->to : "",
	                        f->limit > 0 ? f->limit : -1LL);

	while (or_step(st) == SQLITE_ROW) {
		struct or_leads_line r = { or_col(st, 0), or_col(st, 1), or_col(st, 2), or_col(st, 3), or_col(st, 4),
		                           or_col(st, 5), or_col(st, 6), sqlite3_column_int(st, 7),
		                           sqlite3_column_int(st, 8), sqlite3_column_double(st, 9) };
		fn(arg, &r);
	}
	sqlite3_reset(st);
}

/* The leads of an address (of one client when client is not NULL), into
 * *ids (the caller frees); how many.  A read. */
static int or_store_lead_seqs(const char *to, const char *client, char (**ids)[OR_ID_HEX + 1])
{
	return or_ids_take(or_q("SELECT seq FROM leads WHERE rcpt = ?1 AND (?2 IS NULL OR client = ?2) ORDER BY at",
	                        "tt", to, client), ids);
}

/* One lead whole, as JSON (malloc'd; NULL when there is none): its row,
 * its steps and every message read that was matched to it.  A read. */
static char *or_store_lead_show(const char *seq)
{
	sqlite3_stmt *st = or_q(
		"SELECT json_object('lead', l.seq, 'to', l.rcpt, 'client', l.client, 'campaign', l.campaign, 'state', "
		"l.state, 'reason', l.reason, 'changed_at', strftime('%Y-%m-%dT%H:%M:%SZ', l.at, 'unixepoch'), "
		"'hold_until', strftime('%Y-%m-%dT%H:%M:%SZ', l.hold_until, 'unixepoch'), 'steps', "
		"(SELECT json_group_array(json_object('step', step, 'id', id, 'state', state, 'after', after, 'sender', "
		"sender, 'due', strftime('%Y-%m-%dT%H:%M:%SZ', next_due, 'unixepoch'), 'sent_at', "
		"strftime('%Y-%m-%dT%H:%M:%SZ', sent_at, 'unixepoch'), 'message_id', message_id, 'last_error', "
		"last_error)) FROM (SELECT * FROM jobs WHERE seq = l.seq ORDER BY step)), 'replies', "
		"(SELECT json_group_array(json_object('at', strftime('%Y-%m-%dT%H:%M:%SZ', at, 'unixepoch'), 'source', "
		"source, 'folder', folder, 'message_id', message_id, 'from', from_addr, 'class', class, 'rule', rule, "
		"'step', step, 'method', method, 'effect', effect)) FROM (SELECT * FROM replies WHERE seq = l.seq ORDER "
		"BY at, id))) FROM leads l WHERE l.seq = ?1", "t", seq);
	char *json = or_step(st) == SQLITE_ROW ? or_xstrdup(or_col(st, 0)) : NULL;

	sqlite3_reset(st);
	return json;
}

/* An operator's pause: BEGIN IMMEDIATE, an active or paused lead paused
 * until `until` (0: until resumed), its waiting steps moved past it,
 * COMMIT.  1 when it changed. */
static int or_store_lead_pause(const char *seq, double until, const char *why, double now)
{
	int n;

	or_begin();
	or_q_done(or_q("UPDATE leads SET state = 'paused', hold_until = nullif(?2, 0), reason = ?3, at = ?4 WHERE "
	               "seq = ?1 AND state IN ('active', 'paused')", "tdtd", seq, until, why, now));
	if ((n = sqlite3_changes(or_db)) && until > 0)
		or_q_done(or_q("UPDATE jobs SET next_due = max(coalesce(next_due, 0), ?2), updated_at = ?3 WHERE seq = ?1 "
		               "AND state = 'waiting'", "tdd", seq, until, now));
	or_commit();
	return n;
}

/* A resume: BEGIN IMMEDIATE, a paused lead active again, each waiting
 * step due when its delay from the step before says (never before now),
 * COMMIT.  1 when it changed. */
static int or_store_lead_resume(const struct or_config *cfg, const char *seq, double now)
{
	sqlite3_stmt *st;
	int n;

	or_begin();
	or_q_done(or_q("UPDATE leads SET state = 'active', hold_until = NULL, reason = NULL, at = ?2 WHERE seq = ?1 AND "
	               "state = 'paused'", "td", seq, now));
	if ((n = sqlite3_changes(or_db))) {
		st = or_q("SELECT f.id, f.after, f.win_days, f.win_start, f.win_end, f.win_tz, f.client, p.sent_at FROM jobs f "
		          "JOIN jobs p ON p.seq = f.seq AND p.step = f.step - 1 WHERE f.seq = ?1 AND f.state = 'waiting' AND "
		          "p.sent_at IS NOT NULL", "t", seq);
		while (or_step(st) == SQLITE_ROW) {
			struct or_window w = { 0 };
			if ((w.set = sqlite3_column_type(st, 2) != SQLITE_NULL)) {
				w.days = (unsigned)sqlite3_column_int(st, 2);
				w.start_min = sqlite3_column_int(st, 3);
				w.end_min = sqlite3_column_int(st, 4);
				snprintf(w.tz, sizeof w.tz, "%s", or_col(st, 5));
			}
			double due = or_step_due(cfg, or_col(st, 6), sqlite3_column_double(st, 7), or_col(st, 1), &w);
			or_q_done(or_q("UPDATE jobs SET next_due = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'waiting'", "tdd",
			               or_col(st, 0), due > now ? due : now, now));
		}
		sqlite3_reset(st);
	}
	or_commit();
	return n;
}

/* An operator's stop: BEGIN IMMEDIATE, the lead stopped with every step
 * still to go, and its first step, when it has not gone yet, cancelling
 * (its file is still in defer/: or_cancel_finish moves it to failed/ with
 * the reason, as for cancel), COMMIT.  1 when it changed. */
static int or_store_lead_stop(const char *seq, const char *why, double now)
{
	struct or_job_set s = { .set = OR_JS_LAST_ERROR | OR_JS_UPDATED_AT, .last_error = why, .updated_at = now };
	int n;

	or_begin();
	n = or_lead_end(seq, "stopped", why, now);
	n |= or_job_move(seq, OR_S_WAITING, OR_S_CANCELLING, &s);   /* a lead already ended: its step 1 still */
	or_commit();
	return n;
}

/* ---- engagement: what each address did with what it was sent ---- */

/* Sends, deliveries, opens, clicks and human replies since the last fold
 * (kv engagement_folded_at) up to five minutes ago, summed into table
 * engagement: BEGIN IMMEDIATE, three grouped statements, the mark, COMMIT.
 * Hourly (housekeeping, before retention retires the rows) and before
 * `outreach engagement`.  Five minutes back, so a send still committing
 * when it reads is folded next time, never lost; a crash before the COMMIT
 * folds the same rows again next time, once.  Rows of addresses sent
 * nothing for 400 days are forgotten.  Decides no quota.  Committed at
 * synchronous=NORMAL: the sums and their mark go together, so a power loss
 * that takes the commit takes both and the next fold does it again, and
 * retention's own commit after it, synced when it retires a row, makes the
 * fold durable first (the WAL is replayed in order).  An hourly tick that
 * retires nothing then syncs nothing. */
static void or_store_engagement_fold(double now)
{
	char mark[32];
	double from, to = now - 300;

	or_begin_unsynced();
	or_kv_get("engagement_folded_at", mark, sizeof mark);
	from = *mark ? atof(mark) : 0;
	if (to > from) {
		or_q_done(or_q("INSERT INTO engagement(client, rcpt, sends, first_sent, last_sent) SELECT client, rcpt, count(*), "
		               "min(sent_at), max(sent_at) FROM jobs WHERE state IN ('sent', 'held') AND sent_at > ?1 AND "
		               "sent_at <= ?2 AND client IS NOT NULL AND rcpt IS NOT NULL GROUP BY 1, 2 ON "
		               "CONFLICT(client, rcpt) DO UPDATE SET sends = sends + excluded.sends, first_sent = "
		               "min(first_sent, excluded.first_sent), last_sent = max(last_sent, excluded.last_sent)",
		               "dd", from, to));
		or_q_done(or_q("UPDATE engagement SET last_delivered = max(coalesce(last_delivered, 0), coalesce(e.d, 0)), "
		               "last_opened = max(coalesce(last_opened, 0), coalesce(e.o, 0)), last_clicked = "
		               "max(coalesce(last_clicked, 0), coalesce(e.c, 0)) FROM (SELECT client, rcpt, max(CASE type WHEN "
		               "'delivered' THEN at END) d, max(CASE type WHEN 'opened' THEN at END) o, max(CASE type WHEN "
		               "'clicked' THEN at END) c FROM events WHERE pulled_at > ?1 AND pulled_at <= ?2 AND type IN "
		               "('delivered', 'opened', 'clicked') AND client IS NOT NULL AND rcpt IS NOT NULL GROUP BY 1, 2) e "
		               "WHERE engagement.client = e.client AND engagement.rcpt = e.rcpt", "dd", from, to));
		/* a reply matched to a send counts for its address and client; one
		 * that matched none (its send retired) for its sender everywhere */
		or_q_done(or_q("UPDATE engagement SET last_replied = max(coalesce(last_replied, 0), r.at) FROM (SELECT "
		               "coalesce(x.client, '') client, coalesce(x.rcpt, x.from_addr) rcpt, max(x.at) at FROM replies x "
		               "WHERE x.class = 'human' AND x.at > ?1 AND x.at <= ?2 GROUP BY 1, 2) r WHERE engagement.rcpt = "
		               "r.rcpt AND r.client IN ('', engagement.client)", "dd", from, to));
		or_q_done(or_q("DELETE FROM engagement WHERE last_sent < ?1", "d", now - 400 * 86400.0));
		snprintf(mark, sizeof mark, "%.17g", to);   /* exact: a row at the mark is folded once */
		or_kv_set("engagement_folded_at", mark);
	}
	or_commit_unsynced();
}

/* The addresses of client (NULL: every client) mailed at least min_sends
 * times, the first time at least `days` ago, with no delivery, open, click
 * or human reply in those days and not suppressed, the longest silent
 * first, one row each to fn; how many.  A read. */
static int or_store_inactive(const char *client, int days, int min_sends, double now, or_inactive_fn fn, void *arg)
{
	sqlite3_stmt *st = or_q("SELECT o.client, o.rcpt, o.sends, o.first_sent, o.last_sent, o.e FROM (SELECT *, max(coalesce("
	                        "last_delivered, 0), coalesce(last_opened, 0), coalesce(last_clicked, 0), coalesce(last_replied, "
	                        "0)) e FROM engagement WHERE (?1 IS NULL OR client = ?1) AND sends >= ?2 AND first_sent <= ?3) o "
	                        "WHERE o.e < ?3 AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address = o.rcpt AND "
	                        "s.client IN ('', o.client)) ORDER BY max(o.e, o.first_sent), o.client, o.rcpt", "tid", client,
	                        (long long)min_sends, now - days * 86400.0);
	int n = 0;

	while (or_step(st) == SQLITE_ROW) {
		struct or_inactive r = { or_col(st, 0), or_col(st, 1), sqlite3_column_int(st, 2), sqlite3_column_double(st, 3),
		                         sqlite3_column_double(st, 4), sqlite3_column_double(st, 5) };
		n++;
		if (fn)
			fn(arg, &r);
	}
	sqlite3_reset(st);
	return n;
}

/* The daily judgement of engagement (each run, once a day, with an
 * engagement group): BEGIN IMMEDIATE, the inactive addresses counted per
 * client and, with action = "suppress", suppressed for their client with
 * reason "inactive: …" (which ends their leads; `suppress remove` undoes
 * it), the counts kept for the reports, the day marked, COMMIT.  A crash
 * before the COMMIT judges the day again next run.  Decides no quota. */
struct or_inactive_day { const struct or_config *cfg; double now; int n; };

static void or_inactive_judge(void *arg, const struct or_inactive *r)
{
	struct or_inactive_day *d = arg;
	char why[300], since[32];

	d->n++;
	or_q_done(or_q("INSERT INTO engagement_counts(client, inactive, suppressed, at) VALUES(?1, 1, ?2, ?3) ON "
	               "CONFLICT(client) DO UPDATE SET inactive = inactive + 1, suppressed = suppressed + ?2, at = ?3",
	               "tid", r->client, (long long)d->cfg->eng_suppress, d->now));
	if (!d->cfg->eng_suppress)
		return;
	or_fmt_rfc3339((time_t)r->first_sent, since, sizeof since);
	snprintf(why, sizeof why, "inactive: %d sends since %.10s, no delivery, open, click or reply in %d days", r->sends,
	         since, d->cfg->eng_inactive_days);
	or_suppress(r->rcpt, r->client, why, "engagement", d->now);
}

static int or_store_engagement_daily(const struct or_config *cfg, double now)
{
	struct or_inactive_day d = { cfg, now, 0 };
	char day[16], today[16];

	snprintf(today, sizeof today, "%d", or_day_number((time_t)now, cfg->timezone));
	or_begin();
	or_kv_get("engagement_day", day, sizeof day);
	if (strcmp(day, today)) {
		or_q_done(or_q("DELETE FROM engagement_counts", ""));
		or_store_inactive(NULL, cfg->eng_inactive_days, cfg->eng_min_sends, now, or_inactive_judge, &d);
		or_kv_set("engagement_day", today);
	}
	or_commit();
	return d.n;
}

/* ================================================================
 * STORE (PostgreSQL): connection, schema, hosts
 *
 * store.type = "postgresql" (a PG=1 build): one ledger that several hosts
 * share (README "Several hosts").  Built so far: the connection (libpq, TLS
 * verified off loopback, the password from store.password_file), the schema
 * and its migrations under an advisory lock, the hosts table, where each
 * host registers with the hash of its unsubscribe key (every host must sign
 * with the same one), ingest into the ledger (each job with its body) and
 * the jobs listing; the send path is SEND (PostgreSQL).  The reports and
 * the other commands are not built on it yet: every command that needs the
 * ledger but run and jobs refuses a PostgreSQL config with one line
 * (or_pg_refuse).  Nothing here runs on a config without a store group:
 * libpq is linked, never called.
 * ================================================================ */
#if OR_PG

static PGconn *or_pg;

/* The schema, one entry a version: entry v-1 brings version v-1 to v.  Each
 * runs inside init's transaction, under the advisory lock, so two hosts
 * initialising at once apply it once. */
static const char *const or_pg_schema[] = {
	/* v1: the hosts sharing the ledger: what each runs and its key's hash */
	"CREATE TABLE hosts (name text PRIMARY KEY, version text NOT NULL, key_sha256 text NOT NULL, "
	"first_seen timestamptz NOT NULL DEFAULT now(), last_seen timestamptz NOT NULL DEFAULT now())",
	/* v2: jobs with their bodies (the ledger is the spool: any host may
	 * send any job), and each host's arrivals recorded but whose files are
	 * not yet removed from its new/.  The columns are SQLite's, typed; host
	 * is the one that ingested the job (a bad job's file is in its bad/). */
	"CREATE TABLE jobs (id text PRIMARY KEY, producer_id text, client text, campaign text, rcpt text, "
	"rcpt_domain text, pin text, content text, not_before double precision, win_days integer, win_start integer, "
	"win_end integer, win_tz text, state text NOT NULL, sender text, account text, run_id text, "
	"slot_at double precision, sent_at double precision, attempts integer NOT NULL DEFAULT 0, "
	"next_due double precision, last_error text, message_id text, provider_id text, dup_of text, "
	"created_at double precision NOT NULL, updated_at double precision NOT NULL, thread text, subject text, "
	"seq text, step integer, after text, body text, host text);"
	"CREATE INDEX jobs_next ON jobs (client, next_due, created_at) WHERE state = 'waiting';"
	"CREATE INDEX jobs_rcpt ON jobs (rcpt, client);"
	"CREATE INDEX jobs_created ON jobs (created_at, id);"
	"CREATE TABLE arrivals (host text NOT NULL, name text NOT NULL, id text NOT NULL, target text NOT NULL, "
	"error text, PRIMARY KEY (host, name))",
	/* v3: sending across hosts (SEND (PostgreSQL)): runs with their leases
	 * by the database's clock, a row per sender (locked by claims; its last
	 * slot spaces its sends), day counters raised only under their caps, the
	 * rotation's position, suppressions and each transfer's attempt; a
	 * claimed job keeps the day its units were taken on */
	"CREATE TABLE runs (id text PRIMARY KEY, host text NOT NULL, pid integer, started_at double precision NOT NULL, "
	"ended_at double precision, state text NOT NULL, lease_until timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL, "
	"claimed integer NOT NULL DEFAULT 0, sent integer NOT NULL DEFAULT 0, deferred integer NOT NULL DEFAULT 0, "
	"failed integer NOT NULL DEFAULT 0, held integer NOT NULL DEFAULT 0, ingested integer NOT NULL DEFAULT 0);"
	"CREATE INDEX runs_running ON runs (lease_until) WHERE state = 'running';"
	"CREATE TABLE senders (name text PRIMARY KEY, last_slot_at double precision NOT NULL DEFAULT 0);"
	"CREATE TABLE day_counts (kind text NOT NULL, name text NOT NULL, day integer NOT NULL, "
	"n integer NOT NULL CHECK (n >= 0), PRIMARY KEY (kind, name, day));"
	"CREATE TABLE kv (key text PRIMARY KEY, value text);"
	"CREATE TABLE suppressions (address text NOT NULL, client text NOT NULL DEFAULT '', reason text, source text, "
	"created_at double precision, PRIMARY KEY (address, client));"
	"CREATE TABLE attempts (job_id text NOT NULL, at double precision NOT NULL, sender text, account text, "
	"outcome text NOT NULL, provider_id text, message_id text, reason text);"
	"CREATE INDEX attempts_job ON attempts (job_id, at);"
	"ALTER TABLE jobs ADD COLUMN slot_day integer;"
	"CREATE INDEX jobs_run ON jobs (run_id) WHERE run_id IS NOT NULL",
	/* v4: the reports (or_pg_snapshot): each host's heartbeat, written by
	 * every tick (idle ones too: a host that is up but has nothing to do is
	 * not down), its runs found by host, and the counters that only grow
	 * (Prometheus _total series), kept by or_pg_job_move and seeded from the
	 * jobs an older schema already settled */
	"ALTER TABLE hosts ADD COLUMN heartbeat_at timestamptz;"
	"CREATE INDEX runs_host ON runs (host, started_at);"
	"CREATE TABLE counters (kind text NOT NULL, client text NOT NULL, campaign text NOT NULL, sender text NOT NULL, "
	"n bigint NOT NULL, PRIMARY KEY (kind, client, campaign, sender));"
	"INSERT INTO counters SELECT state, coalesce(client, ''), coalesce(campaign, ''), CASE state WHEN 'sent' THEN "
	"coalesce(sender, '') ELSE '' END, count(*) FROM jobs WHERE state IN ('sent', 'failed') GROUP BY 1, 2, 3, 4",
	/* v5: the operator's pauses, as SQLite's: a scope ('' any part) whose
	 * waiting jobs no claim takes, or a sender no claim uses */
	"CREATE TABLE pauses (client text NOT NULL DEFAULT '', campaign text NOT NULL DEFAULT '', sender text NOT NULL "
	"DEFAULT '', since double precision NOT NULL, reason text, PRIMARY KEY (client, campaign, sender))",
	/* v6: the alerts this store judges (or_pg_alerts_evaluate) and their
	 * changes queued for alert_command and alert_webhook, as SQLite's */
	"CREATE TABLE alerts (name text PRIMARY KEY, since double precision NOT NULL, detail text NOT NULL);"
	"CREATE TABLE alert_log (id bigserial PRIMARY KEY, name text NOT NULL, event text NOT NULL, detail text NOT NULL, "
	"at double precision NOT NULL, delivered_cmd boolean NOT NULL DEFAULT false, delivered_hook boolean NOT NULL "
	"DEFAULT false, tries integer NOT NULL DEFAULT 0)",
	/* v7: retention (or_pg_housekeep) finds the settled jobs by age */
	"CREATE INDEX jobs_settled ON jobs (updated_at) WHERE state IN ('sent', 'suppressed', 'duplicate', 'requeued')",
	/* v8: the claim's order (next_due, created_at, id) as an index, so a claim
	 * reads the first due rows instead of sorting every waiting one (make
	 * bench: 29 ms a claim at 20,000 jobs, the rate rising as the backlog fell) */
	"CREATE INDEX jobs_due ON jobs (next_due, created_at, id) WHERE state = 'waiting';"
	/* and the last hour's attempts, for the error_rate alert */
	"CREATE INDEX attempts_at ON attempts (at)",
	/* v9: a sender's state, as SQLite's senders rows: disabled by the
	 * operator (with why and since), and the day its warm-up restarted */
	"ALTER TABLE senders ADD COLUMN enabled boolean NOT NULL DEFAULT true, ADD COLUMN reason text, "
	"ADD COLUMN since double precision, ADD COLUMN warmup_start_day integer",
	/* v10: each provider account's circuit breaker and throttling pause, as
	 * SQLite's accounts rows (or_pg_account_outcome) */
	"CREATE TABLE accounts (name text PRIMARY KEY, failures integer NOT NULL DEFAULT 0, open_until double precision "
	"NOT NULL DEFAULT 0, paused_until double precision NOT NULL DEFAULT 0, reason text)",
	/* v11: the provider feeds (STORE (PostgreSQL): provider feeds): the
	 * events once by key, as SQLite's, each list's cursor, a lease per
	 * account so one run of one host pulls it at a time, and the indexes
	 * that find an event's job and a domain's sends and burns */
	"CREATE TABLE events (event_key text PRIMARY KEY, account text, type text NOT NULL, subtype text, "
	"at double precision NOT NULL, rcpt text, job_id text, client text, campaign text, sender text, provider_id text, "
	"detail text, pulled_at double precision NOT NULL);"
	"CREATE INDEX events_job ON events (job_id);"
	"CREATE INDEX events_rcpt ON events (rcpt, at);"
	"CREATE INDEX events_burn ON events (pulled_at) WHERE type IN ('bounced', 'complained');"
	"CREATE TABLE feeds (account text NOT NULL, list text NOT NULL, cursor text, last_attempt double precision, "
	"last_success double precision, last_error text, PRIMARY KEY (account, list));"
	"CREATE TABLE feed_leases (account text PRIMARY KEY, owner text NOT NULL, lease_until timestamptz NOT NULL, "
	"last_attempt double precision NOT NULL);"
	"CREATE INDEX jobs_provider ON jobs (provider_id) WHERE provider_id IS NOT NULL;"
	"CREATE INDEX jobs_msgid ON jobs (message_id) WHERE message_id IS NOT NULL;"
	"CREATE INDEX jobs_sent ON jobs (sender, sent_at) WHERE state IN ('sent', 'held')",
	/* v12: a waiting job the claims passed over (no sender could take it
	 * then: caps spent, senders disabled or paused, accounts down), moved to
	 * when one may; the senders alerts count it due, as SQLite's claim
	 * leaves it due (without it senders_exhausted never rose here) */
	"ALTER TABLE jobs ADD COLUMN passed_over boolean NOT NULL DEFAULT false",
	/* v13: a sender's jitter, drawn when its last slot was reserved (as
	 * SQLite's kv jitter:NAME), so any host's next claim adds the same */
	"ALTER TABLE senders ADD COLUMN jitter_next double precision NOT NULL DEFAULT 0",
	/* v14: recipient groups (recipient_domains): a row per group, locked by
	 * a claim of its job after the rotation's row and before the day
	 * counters, and each slot reserved in a group, counted under that lock */
	"CREATE TABLE rgroups (name text PRIMARY KEY);"
	"CREATE TABLE group_slots (rgroup text NOT NULL, sender text NOT NULL, at double precision NOT NULL, "
	"job_id text NOT NULL);"
	"CREATE INDEX group_slots_at ON group_slots (rgroup, at)",
	/* v15: the sender domains' required DNS checks (domain_checks.required),
	 * kept a day, as SQLite's domain_checks: a failed one keeps the domain's
	 * senders out of every host's claims */
	"CREATE TABLE domain_checks (domain text PRIMARY KEY, ok boolean NOT NULL, report text, reason text, "
	"at double precision NOT NULL)",
};
#define OR_PG_SCHEMA_VERSION ((int)(sizeof or_pg_schema / sizeof *or_pg_schema))
#define OR_PG_INIT_LOCK "8031453545161122664"   /* 'outreach' in ASCII, as a bigint */
#define OR_PG_ALERT_LOCK "8031453545161122665"  /* the next: alert evaluation and delivery */
/* The longest wait for a statement's answer: more than a claim's lock_timeout (20 s),
 * which outlasts the server's end of a cut-off host's transaction (10 s) */
#define OR_PG_ANSWER_S 30

/* 1 when one host of a libpq conninfo is on this machine: a Unix socket's
 * folder, or a loopback name or address. */
static int or_pg_host_local(const char *h)
{
	char url[300];

	if (!*h || h[0] == '/' || h[0] == '@')
		return 1;
	snprintf(url, sizeof url, "postgresql://%s%s%s/", strchr(h, ':') ? "[" : "", h, strchr(h, ':') ? "]" : "");
	return or_url_loopback(url);
}

/* store.conninfo, parsed by libpq itself: its syntax, no password in it
 * (secrets are never inline), and TLS that verifies the server (sslmode
 * verify-full) wherever a host or hostaddr is not on this machine. */
static int or_cfg_conninfo(struct or_cfgerr *e, const config_setting_t *s, const char *ci)
{
	char *perr = NULL, hosts[1100] = "", mode[32] = "";
	PQconninfoOption *o = PQconninfoParse(ci, &perr);
	int local = 1;

	if (!o) {
		char msg[300];
		or_pg_message(perr ? perr : "out of memory", msg, sizeof msg);
		or_cfg_fail(e, s, "store.conninfo: %s", msg);
		PQfreemem(perr);
		return -1;
	}
	for (PQconninfoOption *p = o; p->keyword; p++) {
		if (!p->val)
			continue;
		if (!strcmp(p->keyword, "password")) {
			PQconninfoFree(o);
			return or_cfg_fail(e, s, "store.conninfo holds a password: secrets are never inline "
			                   "(store.password_file, or libpq's PGPASSFILE)");
		}
		if (!strcmp(p->keyword, "host") || !strcmp(p->keyword, "hostaddr"))
			snprintf(hosts + strlen(hosts), sizeof hosts - strlen(hosts), "%s%s", *hosts ? "," : "", p->val);
		if (!strcmp(p->keyword, "sslmode"))
			snprintf(mode, sizeof mode, "%s", p->val);
	}
	PQconninfoFree(o);
	for (char *h = hosts, *next; h; h = next) {
		if ((next = strchr(h, ',')))
			*next++ = 0;
		local &= or_pg_host_local(h);
	}
	if (!local && strcmp(mode, "verify-full"))
		return or_cfg_fail(e, s, "store.conninfo: a host off this machine needs sslmode=verify-full "
		                   "(the ledger's traffic is verified TLS, as every provider's is)");
	return 0;
}
/* libpq's message on one line: its lines joined by "; ", other control
 * bytes (a tab, an escape) made spaces, so a server's text cannot forge or
 * break a log line. */
static void or_pg_message(const char *m, char *out, size_t n)
{
	size_t j = 0;

	for (; m && *m && j + 3 < n; m++) {
		unsigned char c = (unsigned char)*m;
		if (c == '\n') {
			if (m[1] && j)
				out[j++] = ';', out[j++] = ' ';
		} else {
			out[j++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
		}
	}
	out[j] = 0;
}

/* The server's notices (CREATE TABLE IF NOT EXISTS says it skipped) are
 * for -v only: libpq would print each on stderr. */
static void or_pg_notice(void *arg, const char *m)
{
	char line[600];

	(void)arg;
	or_pg_message(m, line, sizeof line);
	or_log(2, "store: PostgreSQL says: %s", line);
}

/* Connects to store.conninfo; an exit code, 0 when connected.  A server
 * that refused the password (or wanted one) is the config's fault (78);
 * any other failure is temporary (75: the database may be starting or
 * failing over, and the next tick retries).  The message is libpq's, which
 * never holds the password. */
static int or_pg_connect(const struct or_config *cfg, char *err, size_t errlen)
{
	const char *keys[12], *vals[12];
	char timeout[16], app[96], msg[1500];
	int k = 0, auth;

	if (or_pg)
		return 0;
	/* a peer cut off (a partition, a dead server) is noticed in seconds, not at TCP's
	 * retransmission limit, so a run never hangs holding its host's ingest lock; before
	 * the conninfo, which overrides any of them */
	keys[k] = "keepalives", vals[k++] = "1";
	keys[k] = "keepalives_idle", vals[k++] = "5";
	keys[k] = "keepalives_interval", vals[k++] = "2";
	keys[k] = "keepalives_count", vals[k++] = "3";
	keys[k] = "tcp_user_timeout", vals[k++] = "15000";
	keys[k] = "dbname", vals[k++] = cfg->pg_conninfo;   /* expanded: a conninfo or URI */
	if (*cfg->pg_password)
		keys[k] = "password", vals[k++] = cfg->pg_password;
	snprintf(timeout, sizeof timeout, "%d", cfg->pg_connect_timeout);
	keys[k] = "connect_timeout", vals[k++] = timeout;
	snprintf(app, sizeof app, "outreach@%s", cfg->host_name);
	keys[k] = "application_name", vals[k++] = app;
	keys[k] = NULL, vals[k] = NULL;
	if (!(or_pg = PQconnectdbParams(keys, vals, 1)))
		or_oom();
	if (PQstatus(or_pg) == CONNECTION_OK) {
		PQsetNoticeProcessor(or_pg, or_pg_notice, NULL);
		/* a host cut off in the middle of a transaction must not keep its row locks: the
		 * server ends a session idle in a transaction after 10 s (ours last milliseconds;
		 * a claim waits up to 20 s for a lock, so it outlasts a dead host's) */
		return or_pg_run("SET idle_in_transaction_session_timeout = '10s'", 0, NULL, err, errlen);
	}
	or_pg_message(PQerrorMessage(or_pg), msg, sizeof msg);
	auth = PQconnectionNeedsPassword(or_pg) || strstr(msg, "authentication failed") ||
	       strstr(msg, "no password supplied");
	snprintf(err, errlen, "store: PostgreSQL: %s%s", msg, auth ? " (the password: store.password_file)" :
	         " (temporary: the next run tries again)");
	PQfinish(or_pg);
	or_pg = NULL;
	return auth ? OR_EX_CONFIG : OR_EX_TEMPFAIL;
}

static void or_pg_close(void)
{
	if (or_pg)
		PQfinish(or_pg);
	or_pg = NULL;
}

/* What a failed statement means for the exit code: a lost connection, a
 * server shutting down or short of resources, a lock or serialization
 * conflict are temporary (75); anything else is the ledger's (74). */
static int or_pg_exit_code(const PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (!or_pg || PQstatus(or_pg) != CONNECTION_OK || !st)
		return OR_EX_TEMPFAIL;
	if (!strncmp(st, "08", 2) || !strncmp(st, "40", 2) || !strncmp(st, "53", 2) || !strncmp(st, "57P", 3) ||
	    !strcmp(st, "55P03") || !strcmp(st, "25006"))
		return OR_EX_TEMPFAIL;
	return OR_EX_IOERR;
}

/* Sends a statement and waits for its answer at most OR_PG_ANSWER_S: a host
 * cut off from the database (or a relay that swallows its bytes: no TCP
 * timer ever fires while the other end acknowledges) gives up instead of
 * waiting forever with its ingest lock held.  The first error result, else
 * the last result; NULL with *late set when no answer came in time (the
 * connection is then unusable: the caller ends the run). */
static PGresult *or_pg_exec(const char *sql, int n, const char *const *v, int *late)
{
	/* no parameters: the simple protocol, which takes several statements (a schema step) */
	int sent = n ? PQsendQueryParams(or_pg, sql, n, NULL, v, NULL, NULL, 0) : PQsendQuery(or_pg, sql);
	double until = or_mono() + OR_PG_ANSWER_S;
	PGresult *r, *keep = NULL;

	*late = 0;
	if (!sent)
		return NULL;
	for (;;) {
		while (PQisBusy(or_pg)) {
			struct pollfd pfd = { PQsocket(or_pg), POLLIN, 0 };
			double left = until - or_mono();
			int k = left > 0 ? poll(&pfd, 1, (int)(left * 1000) + 1) : 0;
			if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
				PQclear(keep);
				*late = 1;
				return NULL;
			}
			if (k > 0 && !PQconsumeInput(or_pg))
				break;   /* the connection broke: PQgetResult says so */
		}
		if (!(r = PQgetResult(or_pg)))
			return keep;
		if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
			PQclear(r);   /* the first error is the answer */
		} else {
			PQclear(keep);
			keep = r;
		}
	}
}

/* One statement with n text parameters.  The result (the caller PQclears
 * it), or NULL with err and *rc set. */
static PGresult *or_pg_q(const char *sql, int n, const char *const *v, int *rc, char *err, size_t errlen)
{
	int late;
	PGresult *r = or_pg_exec(sql, n, v, &late);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	char msg[1500];

	if (late) {
		*rc = OR_EX_TEMPFAIL;
		snprintf(err, errlen, "store: PostgreSQL: no answer in %d s (the database or the way to it is down; "
		         "temporary: the next run tries again)", OR_PG_ANSWER_S);
		return NULL;
	}
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	or_pg_message(r ? PQresultErrorMessage(r) : PQerrorMessage(or_pg), msg, sizeof msg);
	*rc = or_pg_exit_code(r);
	snprintf(err, errlen, "store: PostgreSQL: %s", msg);
	PQclear(r);
	return NULL;
}

/* or_pg_q for a statement whose rows do not matter: 0, or an exit code. */
static int or_pg_run(const char *sql, int n, const char *const *v, char *err, size_t errlen)
{
	int rc = 0;
	PGresult *r = or_pg_q(sql, n, v, &rc, err, errlen);

	PQclear(r);
	return r ? 0 : rc;
}

/* The schema brought to OR_PG_SCHEMA_VERSION inside the caller's
 * transaction, which holds the init lock.  A newer schema is refused (74):
 * this outreach would not know what the other hosts write. */
static int or_pg_migrate(char *err, size_t errlen)
{
	int rc = 0, have;
	PGresult *r;

	if ((rc = or_pg_run("CREATE TABLE IF NOT EXISTS outreach_schema (one boolean PRIMARY KEY DEFAULT true "
	                    "CHECK (one), version integer NOT NULL)", 0, NULL, err, errlen)) ||
	    (rc = or_pg_run("INSERT INTO outreach_schema (version) VALUES (0) ON CONFLICT DO NOTHING", 0, NULL,
	                    err, errlen)) ||
	    !(r = or_pg_q("SELECT version FROM outreach_schema", 0, NULL, &rc, err, errlen)))
		return rc ? rc : OR_EX_IOERR;
	have = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (have > OR_PG_SCHEMA_VERSION) {
		snprintf(err, errlen, "store: the shared ledger's schema is version %d, newer than this outreach's (%d): "
		         "upgrade outreach on this host", have, OR_PG_SCHEMA_VERSION);
		return OR_EX_IOERR;
	}
	for (int v = have; v < OR_PG_SCHEMA_VERSION; v++)
		if ((rc = or_pg_run(or_pg_schema[v], 0, NULL, err, errlen)))
			return rc;
	if (have < OR_PG_SCHEMA_VERSION) {
		char ver[16];
		const char *p[1] = { ver };
		snprintf(ver, sizeof ver, "%d", OR_PG_SCHEMA_VERSION);
		if ((rc = or_pg_run("UPDATE outreach_schema SET version = $1::integer", 1, p, err, errlen)))
			return rc;
	}
	return 0;
}

/* The first other host's name and key hash (the ledger's key: every host
 * must have the same), or *name "" when this is the first host. */
static int or_pg_cluster_key(const struct or_config *cfg, char *name, size_t nn, char *sha, size_t sn,
                             char *err, size_t errlen)
{
	const char *p[1] = { cfg->host_name };
	int rc = 0;
	PGresult *r = or_pg_q("SELECT name, key_sha256 FROM hosts WHERE name <> $1 ORDER BY first_seen, name LIMIT 1",
	                      1, p, &rc, err, errlen);

	if (!r)
		return rc;
	*name = *sha = 0;
	if (PQntuples(r) == 1) {
		snprintf(name, nn, "%s", PQgetvalue(r, 0, 0));
		snprintf(sha, sn, "%s", PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return 0;
}

/* A statement of an operation failed: the transaction is lost with the
 * connection (the server rolls it back), so what a crash at this point
 * leaves is what this leaves: exit rc (75 temporary, 74 else), as
 * or_db_die does for SQLite. */
static void or_pg_die(int rc, const char *err)
{
	fprintf(stderr, "outreach: %s\n", err);
	or_pg_close();
	exit(rc ? rc : OR_EX_IOERR);
}

/* or_pg_q inside an operation: the result, or the process ends. */
static PGresult *or_pg_rows(const char *sql, int n, const char *const *v)
{
	char err[2000];
	int rc = 0;
	PGresult *r = or_pg_q(sql, n, v, &rc, err, sizeof err);

	if (!r)
		or_pg_die(rc, err);
	return r;
}

/* or_pg_rows for a statement whose rows do not matter: the rows it
 * touched (an INSERT … ON CONFLICT DO NOTHING's 0 or 1). */
static int or_pg_must(const char *sql, int n, const char *const *v)
{
	PGresult *r = or_pg_rows(sql, n, v);
	int k = atoi(PQcmdTuples(r));

	PQclear(r);
	return k;
}

/* A double as a parameter's text: exact (%.17g). */
static const char *or_pg_num(char *b, size_t n, double v)
{
	snprintf(b, n, "%.17g", v);
	return b;
}

/* One arrival into the shared ledger (inside the batch's transaction): the
 * rows SQLite's or_arrival_record writes, with the job's body and this
 * host: a waiting job; a duplicate of the producer id's first job, which
 * any host may have ingested (ids are global, so the same file dropped on
 * two hosts is one job); or a bad one.  Listed in arrivals under this
 * host.  1 when it is waiting. */
static int or_pg_arrival(const struct or_config *cfg, const struct or_arrival *a, int *bad)
{
	char id[OR_ID_HEX + 1], now[32], nb[32], due[32], wd[16], ws[16], we[16], safe[300], err[300];
	const char *target = "defer", *error = NULL;

	or_pg_num(now, sizeof now, a->now);
	if (a->reason) {
		const char *p[4] = { id, a->reason, now, cfg->host_name };
		or_ledger_id_random(a->name, id);
		or_pg_must("INSERT INTO jobs (id, state, last_error, created_at, updated_at, host) "
		           "VALUES ($1, 'bad', $2, $3::float8, $3::float8, $4)", 4, p);
		or_log(1, "event=bad job=%s file=\"%s\" reason=\"%s\"", id, or_safe(a->name, safe, sizeof safe),
		       or_safe(a->reason, err, sizeof err));
		(*bad)++;
		target = "bad", error = a->reason;
	} else {
		snprintf(wd, sizeof wd, "%d", a->win_days);
		snprintf(ws, sizeof ws, "%d", a->win_start);
		snprintf(we, sizeof we, "%d", a->win_end);
		const char *p[18] = { a->id, a->producer, a->client, a->campaign, a->rcpt, a->rcpt_domain, a->pin,
		                      a->content, or_pg_num(nb, sizeof nb, a->not_before), a->win_set ? wd : NULL,
		                      a->win_set ? ws : NULL, a->win_set ? we : NULL, a->win_tz,
		                      or_pg_num(due, sizeof due, a->due), now, a->thread, a->body, cfg->host_name };
		snprintf(id, sizeof id, "%s", a->id);
		if (!or_pg_must("INSERT INTO jobs (id, producer_id, client, campaign, rcpt, rcpt_domain, pin, content, "
		                "not_before, win_days, win_start, win_end, win_tz, state, next_due, created_at, updated_at, "
		                "thread, body, host) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::float8, $10::int, $11::int, "
		                "$12::int, $13, 'waiting', $14::float8, $15::float8, $15::float8, $16, $17, $18) "
		                "ON CONFLICT (id) DO NOTHING", 18, p)) {
			const char *d[9] = { id, a->producer, a->client, a->campaign, a->rcpt, a->rcpt_domain, a->id, now,
			                     cfg->host_name };
			or_ledger_id_random(a->id, id);   /* the same producer id came before: a duplicate of it */
			or_pg_must("INSERT INTO jobs (id, producer_id, client, campaign, rcpt, rcpt_domain, state, dup_of, "
			           "last_error, created_at, updated_at, host) VALUES ($1, $2, $3, $4, $5, $6, 'duplicate', $7, "
			           "'duplicate of ' || $7, $8::float8, $8::float8, $9)", 9, d);
			or_log(2, "event=duplicate job=%s dup_of=%s", id, a->id);
			target = "done";
		}
	}
	const char *l[5] = { cfg->host_name, a->name, id, target, error };
	or_pg_must("INSERT INTO arrivals (host, name, id, target, error) VALUES ($1, $2, $3, $4, $5)", 5, l);
	return !strcmp(target, "defer");
}

/* A batch of arrivals read from this host's new/ into the shared ledger, in
 * one transaction (synchronous: once it commits, the files may go).  No
 * quota.  Returns the waiting ones, the bad counted in *bad.  A crash
 * after it leaves the rows final and listed in arrivals under this host,
 * with the files still in new/: this host's next ingester
 * (or_ingest_finish) removes them; no other host touches another's new/. */
static int or_pg_ingest_batch(const struct or_config *cfg, const struct or_arrival *a, int n, int *bad)
{
	int waiting = 0;

	if (n == 0)
		return 0;
	or_pg_must("BEGIN", 0, NULL);
	for (int i = 0; i < n; i++)
		waiting += or_pg_arrival(cfg, &a[i], bad);
	or_pg_must("COMMIT", 0, NULL);
	OR_STEP();
	return waiting;
}

/* This host's arrivals listed but whose files may still be in its new/,
 * with a bad one's reason.  A read. */
static int or_pg_arrivals(const struct or_config *cfg, struct or_listed **out)
{
	const char *p[1] = { cfg->host_name };
	PGresult *r = or_pg_rows("SELECT id, name, target, error FROM arrivals WHERE host = $1 ORDER BY name", 1, p);
	int n = PQntuples(r);

	*out = n ? or_xrealloc(NULL, sizeof **out * (size_t)n) : NULL;
	for (int i = 0; i < n; i++) {
		struct or_listed *l = &(*out)[i];
		snprintf(l->id, sizeof l->id, "%s", PQgetvalue(r, i, 0));
		l->arrival = or_xstrdup(PQgetvalue(r, i, 1));
		snprintf(l->target, sizeof l->target, "%s", PQgetvalue(r, i, 2));
		l->error = PQgetisnull(r, i, 3) ? NULL : or_xstrdup(PQgetvalue(r, i, 3));
	}
	PQclear(r);
	return n;
}

/* Forgets this host's arrivals once their files went and new/ was synced.
 * A crash before it only leaves the list, finished again (the files are
 * gone: nothing happens to them). */
static void or_pg_arrivals_done(const struct or_config *cfg)
{
	const char *p[1] = { cfg->host_name };

	or_pg_must("DELETE FROM arrivals WHERE host = $1", 1, p);
	OR_STEP();
}

/* A time of the ledger as RFC 3339 (seconds, UTC), as SQLite's strftime
 * gives it; SQL NULL stays JSON null. */
#define OR_PG_TIME(col) "to_char(to_timestamp(" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* jobs on the shared ledger: the rows of every host, in SQLite's order and
 * shape (the JSON built here, compact, with the keys in the same order).  A
 * read. */
static void or_pg_jobs(const struct or_config *cfg, const struct or_jobs_filter *f, or_jobs_line_fn fn, void *arg)
{
	static const char *const keys[] = { "id", "state", "client", "campaign", "to", "sender", "account", "attempts",
	                                    "created_at", "updated_at", "sent_at", "message_id", "provider_id",
	                                    "last_error" };
	char limit[32];
	const char *p[5] = { f->state, f->client, f->campaign, f->to ? f->to : "", limit };
	PGresult *r;

	(void)cfg;
	snprintf(limit, sizeof limit, "%lld", f->limit > 0 ? f->limit : (long long)INT64_MAX);
	r = or_pg_rows("SELECT id, state, client, campaign, rcpt, sender, account, attempts, " OR_PG_TIME("created_at")
	               ", " OR_PG_TIME("updated_at") ", " OR_PG_TIME("sent_at") ", message_id, provider_id, last_error, "
	               "updated_at FROM jobs WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR client = $2) "
	               "AND ($3::text IS NULL OR campaign = $3) AND ($4 = '' OR rcpt = $4) "
	               "ORDER BY created_at, id LIMIT $5::bigint", 5, p);
	for (int i = 0; i < PQntuples(r); i++) {
		struct or_buf j = { 0 };
		const char *c[14];
		for (int k = 0; k < 14; k++)
			c[k] = PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k);
		or_buf_puts(&j, "{");
		for (int k = 0; k < 14; k++) {
			or_buf_printf(&j, "%s\"%s\":", k ? "," : "", keys[k]);
			if (!c[k])
				or_buf_puts(&j, "null");
			else if (k == 7)
				or_buf_puts(&j, c[k]);
			else
				or_json_str(&j, c[k]);
		}
		or_buf_puts(&j, "}");
		struct or_jobs_line line = { j.s, c[0], c[1], c[2] ? c[2] : "-", c[3] ? c[3] : "-", c[4] ? c[4] : "-",
		                             c[5] ? c[5] : "-", c[13] ? c[13] : "", atoi(c[7]), atof(PQgetvalue(r, i, 14)) };
		fn(arg, &line);
		or_buf_free(&j);
	}
	PQclear(r);
}

/* A tick on the PostgreSQL store: this host's new/ into the shared ledger
 * (under the same ingest lock as SQLite's), then the send path over every
 * host's jobs (SEND (PostgreSQL)).  No reports yet.  Exit code. */
static int or_pg_tick(const struct or_config *cfg, struct or_run *run)
{
	char err[2000];
	int rc;

	if ((rc = or_pg_connect(cfg, err, sizeof err))) {
		fprintf(stderr, "outreach: %s\n", err);
		return rc;
	}
	if (*cfg->unsub_url && or_key_load(cfg->spool, err, sizeof err)) {
		fprintf(stderr, "outreach: unsubscribe is configured but %s\n", err);
		return or_ex_io(errno);
	}
	if ((rc = or_pg_heartbeat(cfg)))
		return rc;
	if (or_ingest(cfg, run) == -2)
		or_log(2, "event=ingest skipped: another run of this host is ingesting");
	if (or_spool_sync() == -1)
		or_log(0, "event=ingest error=\"fsync: %s\"", strerror(errno));
	or_pg_send_loop(cfg, run);
	or_pg_housekeep(cfg, or_now());
	if ((rc = or_pg_heartbeat(cfg)))
		return rc;
	if (!run->row && or_run_idle(run))
		or_tick_stamp_idle(run, or_now());
	or_pg_alerts_evaluate(cfg, or_now());
	or_write_reports(cfg, run);
	if ((cfg->alert_command || *cfg->alert_webhook) && or_pg_alert_take()) {
		or_alerts_deliver(cfg);
		or_pg_alert_release();
	}
	or_log(2, "event=tick store=postgresql ingested=%d claimed=%d sent=%d deferred=%d held=%d failed=%d bad=%d",
	       run->ingested, run->claimed, run->sent, run->deferred, run->held, run->failed, run->bad);
	return OR_EX_OK;
}

/* check-config --online: the server and what the shared ledger holds, read
 * only (a transaction rolled back): where it connected, whether it is the
 * primary, the schema against this outreach's, and each host with its
 * version and whether its key is this spool's.  Lines "online store: ...";
 * 0 when all is well, else 1 (a key that differs, a schema missing or
 * newer, no connection). */
static int or_pg_probe(const struct or_config *cfg)
{
	char err[2000], sha[65] = "", kerr[300];
	unsigned char h[32];
	int rc = 0, bad = 0, have = -1;
	PGresult *r;

	if (or_key_load(cfg->spool, kerr, sizeof kerr) == 0) {
		crypto_hash_sha256(h, or_key, sizeof or_key);
		sodium_bin2hex(sha, sizeof sha, h, sizeof h);
	}
	if ((rc = or_pg_connect(cfg, err, sizeof err)) || (rc = or_pg_run("BEGIN READ ONLY", 0, NULL, err, sizeof err)) ||
	    !(r = or_pg_q("SELECT current_setting('server_version'), pg_is_in_recovery(), "
	                  "to_regclass('outreach_schema') IS NOT NULL, to_regclass('hosts') IS NOT NULL", 0, NULL, &rc,
	                  err, sizeof err))) {
		printf("online store: %s\n", err);
		return 1;
	}
	printf("online store: PostgreSQL %s at %s:%s, %s\n", PQgetvalue(r, 0, 0), PQhost(or_pg), PQport(or_pg),
	       !strcmp(PQgetvalue(r, 0, 1), "t") ? "a standby (read only: the hosts cannot write here)" : "the primary");
	bad |= !strcmp(PQgetvalue(r, 0, 1), "t");
	if (!strcmp(PQgetvalue(r, 0, 2), "t")) {
		PGresult *v = or_pg_q("SELECT version FROM outreach_schema", 0, NULL, &rc, err, sizeof err);
		have = v && PQntuples(v) == 1 ? atoi(PQgetvalue(v, 0, 0)) : -1;
		PQclear(v);
	}
	if (have != OR_PG_SCHEMA_VERSION)
		bad = 1;
	if (have < 0)
		printf("online store: no schema: run outreach init\n");
	else
		printf("online store: schema %d (this outreach: %d)%s\n", have, OR_PG_SCHEMA_VERSION,
		       have > OR_PG_SCHEMA_VERSION ? ": newer, upgrade outreach here" :
		       have < OR_PG_SCHEMA_VERSION ? ": older, run outreach init" : "");
	if (!strcmp(PQgetvalue(r, 0, 3), "t")) {
		PGresult *hs = or_pg_q("SELECT name, version, key_sha256, to_char(last_seen AT TIME ZONE 'UTC', "
		                       "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM hosts ORDER BY name", 0, NULL, &rc, err, sizeof err);
		int me = 0;
		for (int i = 0; hs && i < PQntuples(hs); i++) {
			int same = *sha && !strcmp(PQgetvalue(hs, i, 2), sha), self = !strcmp(PQgetvalue(hs, i, 0), cfg->host_name);
			me |= self;
			bad |= !same;
			printf("online store: host %s%s: outreach %s, init last %s, key %s\n", PQgetvalue(hs, i, 0),
			       self ? " (this host)" : "", PQgetvalue(hs, i, 1), PQgetvalue(hs, i, 3),
			       !*sha ? "unknown (this spool has none: outreach init --key FILE)" :
			       same ? "the same as this spool's" : "DIFFERS from this spool's: unsubscribe links fail there");
		}
		if (hs && !me)
			printf("online store: this host (%s) is not registered: run outreach init\n", cfg->host_name), bad = 1;
		PQclear(hs);
	}
	PQclear(r);
	or_pg_run("ROLLBACK", 0, NULL, err, sizeof err);
	return bad;
}

/* `init` on the PostgreSQL store, in one transaction under the init lock
 * (a second host's init waits for the first): the schema created or
 * brought forward, SPOOL/key made or taken from keyfile (init --key) and
 * checked against the other hosts', this host's row written.  A crash or
 * a lost connection before COMMIT leaves the ledger as it was (the key
 * file, if made, stays: the next init finds it).  Exit code. */
static int or_pg_init(const struct or_config *cfg, const char *keyfile)
{
	char err[8400], other[80], other_sha[80], sha[65];
	unsigned char h[32];
	int rc;

	if ((rc = or_pg_connect(cfg, err, sizeof err)) ||
	    (rc = or_pg_run("BEGIN", 0, NULL, err, sizeof err)) ||
	    (rc = or_pg_run("SELECT pg_advisory_xact_lock(" OR_PG_INIT_LOCK ")", 0, NULL, err, sizeof err)) ||
	    (rc = or_pg_migrate(err, sizeof err)) ||
	    (rc = or_pg_cluster_key(cfg, other, sizeof other, other_sha, sizeof other_sha, err, sizeof err)))
		goto out;
	if (*other && !keyfile && !or_key_present(cfg->spool)) {
		snprintf(err, sizeof err, "init: the hosts of this ledger sign unsubscribe links with one key, and this "
		         "spool has none: copy %s's SPOOL/key here (mode 600), then outreach init --key FILE", other);
		rc = OR_EX_CONFIG;
		goto out;
	}
	if ((rc = or_init_key(cfg, keyfile)))
		return or_pg_run("ROLLBACK", 0, NULL, err, sizeof err), rc;
	if (or_key_load(cfg->spool, err, sizeof err)) {
		rc = or_ex_io(errno);
		goto out;
	}
	crypto_hash_sha256(h, or_key, sizeof or_key);
	sodium_bin2hex(sha, sizeof sha, h, sizeof h);
	if (*other && strcmp(sha, other_sha)) {
		snprintf(err, sizeof err, "init: %s/key differs from host %s's key: every host of a ledger must sign "
		         "unsubscribe links with the same one (outreach init --key FILE with a copy of %s's SPOOL/key, "
		         "on a spool without a key)", cfg->spool, other, other);
		rc = OR_EX_CONFIG;
		goto out;
	}
	{
		const char *p[3] = { cfg->host_name, OR_VERSION, sha };
		if ((rc = or_pg_run("INSERT INTO hosts (name, version, key_sha256) VALUES ($1, $2, $3) ON CONFLICT (name) "
		                    "DO UPDATE SET version = EXCLUDED.version, key_sha256 = EXCLUDED.key_sha256, "
		                    "last_seen = now()", 3, p, err, sizeof err)) ||
		    (rc = or_pg_run("COMMIT", 0, NULL, err, sizeof err)))
			goto out;
	}
	or_log(2, "init: host %s in the shared ledger (schema %d)", cfg->host_name, OR_PG_SCHEMA_VERSION);
	return OR_EX_OK;
out:
	fprintf(stderr, "outreach: %s\n", err);
	if (or_pg && PQtransactionStatus(or_pg) != PQTRANS_IDLE)
		or_pg_run("ROLLBACK", 0, NULL, err, sizeof err);
	return rc;
}
#endif

/* A command that needs the ledger, on a PostgreSQL config: refused with one
 * line until the operations it needs are built on that store (init, run
 * and jobs are), so nothing half works and nothing is lost.  0 when cmd
 * may go on. */
static int or_pg_refuse(const struct or_config *cfg, const char *cmd)
{
	static const char *const built[] = { "init", "run", "jobs", "status", "senders", "show", "suppress", "requeue",
	                                     "cancel", "backup", "unsubscribe", "pause", "resume", "plan", "sender",
	                                     "pull" };

	for (size_t i = 0; cfg && i < sizeof built / sizeof *built; i++)
		if (!strcmp(cmd, built[i]))
			return 0;
	if (!cfg || !cfg->store_pg)
		return 0;
	fprintf(stderr, "outreach: %s: sequences and replies are not built on it yet: the PostgreSQL store (store.type = "
	        "\"postgresql\") has no leads (README \"Several hosts\"); use store.type = \"sqlite\" for them\n", cmd);
	return OR_EX_CONFIG;
}

/* ================================================================
 * STORE (PostgreSQL): claims, caps and leases across hosts
 *
 * The operations of the send path on the shared ledger (SEND (PostgreSQL)
 * drives them), one transaction each.  Several hosts run them at once on
 * one ledger, so nothing here relies on a lock of this machine:
 *   - a job is claimed with FOR UPDATE SKIP LOCKED (a materialised CTE), so
 *     two hosts never take the same job and never wait for each other's;
 *   - the candidate senders' rows are locked in name order, then the
 *     rotation's row, then the job's recipient group's row, then the day
 *     counters (client, then sender): one global order, so claims never
 *     deadlock;
 *   - a daily cap is a counter row raised only WHERE n < cap: no count(*)
 *     under READ COMMITTED, which two hosts could both pass;
 *   - per-minute spacing comes from the locked sender row's last slot;
 *   - each run holds a lease on its runs row, by the database's clock,
 *     renewed by every claim and intent, and each of those writes only if
 *     the lease still holds (a fenced run writes nothing more and stops);
 *     another host's run recovers a run whose lease lapsed: claimed jobs
 *     back to waiting (their units returned), jobs with a committed intent
 *     held (or waiting under in_doubt = "resend"), as recovery does on one
 *     host;
 *   - every change of a job's state is a row of or_transitions, applied by
 *     or_pg_job_move, this store's one statement that sets it.
 * ================================================================ */
#if OR_PG

static double or_pg_fenced_at;   /* or_mono() when the last fence renewed the lease */

/* The PostgreSQL store's one statement that sets a job's state, as
 * or_job_move is SQLite's: from -> to must be a row of or_transitions (exit
 * 70 if not), and the job must be in from (and, when run is given, this
 * run's) or nothing changes.  sets: more of the SET list, its parameters
 * numbered from $5, in v (n of them).  Inside the caller's transaction.
 * Returns 1 when the job moved. */
static int or_pg_job_move(const char *id, int from, int to, const char *run, const char *sets, int n,
                          const char *const *v)
{
	const char *p[16] = { id, or_job_state_name(from), or_job_state_name(to), run };
	char sql[1200];

	or_transition(from, to);
	for (int i = 0; i < n && i < 12; i++)
		p[4 + i] = v[i];
	snprintf(sql, sizeof sql, "UPDATE jobs SET state = $3%s%s WHERE id = $1 AND state = $2 AND "
	         "($4::text IS NULL OR run_id = $4)", sets ? ", " : "", sets ? sets : "");
	if (!or_pg_must(sql, 4 + n, p))
		return 0;
	/* the counters Prometheus reads as _total series, in the same transaction
	 * as the move (sent by client, campaign and sender; failed by campaign) */
	if (to == OR_S_SENT || to == OR_S_FAILED)
		or_pg_must("INSERT INTO counters SELECT $2::text, coalesce(client, ''), coalesce(campaign, ''), CASE WHEN $2::text = "
		           "'sent' THEN coalesce(sender, '') ELSE '' END, 1 FROM jobs WHERE id = $1 ON CONFLICT (kind, client, "
		           "campaign, sender) DO UPDATE SET n = counters.n + 1", 2, (const char *const[]){ id, p[2] });
	return 1;
}

/* The run's lease renewed, first of every claim and intent: the runs row
 * inserted by the first (so a run that claims nothing writes no row), then
 * renewed only while it holds (lease_until by the database's clock).  0
 * when the lease is lost: the run was recovered by another host, and must
 * write nothing more. */
static int or_pg_fence(const struct or_config *cfg, struct or_run *run)
{
	char lease[32], pid[16], started[32];
	const char *p[5] = { run->id, lease, cfg->host_name, pid, started };
	double sent = or_mono();

	snprintf(lease, sizeof lease, "%.3f", cfg->pg_lease);
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	or_pg_num(started, sizeof started, run->started);
	if (!run->row) {
		or_pg_must("INSERT INTO runs (id, host, pid, started_at, state, lease_until, heartbeat_at) VALUES ($1, $3, "
		           "$4::int, $5::float8, 'running', clock_timestamp() + $2::float8 * interval '1 second', "
		           "clock_timestamp())", 5, p);
		run->row = 1;
	} else if (!or_pg_must("UPDATE runs SET heartbeat_at = clock_timestamp(), lease_until = clock_timestamp() + "
	                       "$2::float8 * interval '1 second' WHERE id = $1 AND state = 'running' AND lease_until > "
	                       "clock_timestamp()", 2, p)) {
		return 0;
	}
	or_pg_fenced_at = sent;
	return 1;
}

/* Seconds of the lease left, by this machine's monotonic clock, counted
 * from when the last fence was sent (so never more than the truth). */
static double or_pg_lease_left(const struct or_config *cfg)
{
	return cfg->pg_lease - (or_mono() - or_pg_fenced_at);
}

/* A unit of a day counter given back (a claim released, a send that did
 * not happen); never below 0. */
static void or_pg_unit_back(const char *kind, const char *name, int day)
{
	char d[16];
	const char *p[3] = { kind, name, d };

	if (!name || !*name)
		return;
	snprintf(d, sizeof d, "%d", day);
	or_pg_must("UPDATE day_counts SET n = n - 1 WHERE kind = $1 AND name = $2 AND day = $3::int AND n > 0", 3, p);
}

/* The units a job's claim took (its sender's and its client's, on its
 * slot's day) given back, inside the caller's transaction. */
static void or_pg_units_back(PGresult *r, int row)
{
	int day = atoi(PQgetvalue(r, row, 2));

	or_pg_unit_back("c", PQgetvalue(r, row, 1), day);
	or_pg_unit_back("s", PQgetvalue(r, row, 0), day);
}

/* Recovers the runs of any host whose lease lapsed, one per transaction
 * (SKIP LOCKED: two hosts recovering at once take different runs).  A
 * claimed job goes back to waiting with its units returned; a job whose
 * intent was committed is held (its unit kept: it may have gone), or
 * waiting again under in_doubt = "resend".  Idempotent: a crash in the
 * middle leaves the run 'running' with its lease lapsed, recovered again. */
static int or_pg_recover(const struct or_config *cfg, double now)
{
	int n = 0;
	char t[32];

	or_pg_num(t, sizeof t, now);
	for (;;) {
		PGresult *r, *j;
		or_pg_must("BEGIN", 0, NULL);
		r = or_pg_rows("SELECT id, host FROM runs WHERE state = 'running' AND lease_until < clock_timestamp() "
		               "ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED", 0, NULL);
		if (PQntuples(r) == 0) {
			PQclear(r);
			or_pg_must("COMMIT", 0, NULL);
			return n;
		}
		const char *p[3] = { PQgetvalue(r, 0, 0), t, cfg->in_doubt_resend ? "waiting, resent" : "held" };
		int back = 0, doubt = 0;
		const char *pt[1] = { t };
		j = or_pg_rows("SELECT sender, client, slot_day, id, state FROM jobs WHERE run_id = $1 AND state IN "
		               "('claimed', 'sending') ORDER BY id FOR UPDATE", 1, p);
		for (int i = 0; i < PQntuples(j); i++) {
			if (!strcmp(PQgetvalue(j, i, 4), "claimed")) {   /* never started: its units back */
				or_pg_units_back(j, i);
				back += or_pg_job_move(PQgetvalue(j, i, 3), OR_S_CLAIMED, OR_S_WAITING, NULL, "run_id = NULL, "
				                       "sender = NULL, account = NULL, slot_at = NULL, slot_day = NULL, "
				                       "updated_at = $5::float8", 1, pt);
			} else {   /* its intent was committed: it may have gone; its unit kept */
				doubt += or_pg_job_move(PQgetvalue(j, i, 3), OR_S_SENDING,
				                        cfg->in_doubt_resend ? OR_S_WAITING : OR_S_HELD, NULL, "next_due = $5::float8, "
				                        "updated_at = $5::float8, last_error = 'its run died during the transfer: "
				                        "the outcome is unknown'", 1, pt);
			}
		}
		PQclear(j);
		or_pg_must("UPDATE runs SET state = 'recovered', ended_at = $2::float8 WHERE id = $1", 2, p);
		or_pg_must("COMMIT", 0, NULL);
		OR_STEP();
		or_log(1, "event=recovered run=%s host=%s claimed=%d in_doubt=%d (%s)", p[0], PQgetvalue(r, 0, 1), back,
		       doubt, p[2]);
		PQclear(r);
		n++;
	}
}

/* Whether rcpt is suppressed for client (or for every client).  A read. */
static int or_pg_suppressed(const char *rcpt, const char *client)
{
	char canon[OR_MAX_ADDR * 2 + 1];
	const char *p[2] = { canon, client ? client : "" };

	or_addr_canon(rcpt, canon, sizeof canon);   /* as every suppression is written */
	PGresult *r = or_pg_rows("SELECT 1 FROM suppressions WHERE address = $1 AND client IN ($2, '') LIMIT 1", 2, p);
	int n = PQntuples(r);

	PQclear(r);
	return n > 0;
}

/* Whether the same content already went (or may have gone) to this
 * recipient of this client, from any host.  A read. */
static int or_pg_duplicate(const char *id)
{
	const char *p[1] = { id };
	PGresult *r = or_pg_rows("SELECT 1 FROM jobs j, jobs o WHERE j.id = $1 AND o.rcpt = j.rcpt AND "
	                         "o.client IS NOT DISTINCT FROM j.client AND o.content = j.content AND o.id <> j.id AND "
	                         "o.state IN ('sent', 'sending', 'held') LIMIT 1", 1, p);
	int n = PQntuples(r);

	PQclear(r);
	return n > 0;
}

/* One unsubscribe (a verified one-click request from unsub/): the address
 * suppressed for the client, or for all under scope = "global".  One
 * autocommit statement, idempotent. */
static void or_pg_unsubscribe(const struct or_config *cfg, const char *addr, const char *client, double now)
{
	char t[32], canon[OR_MAX_ADDR * 2 + 1];
	const char *p[3] = { canon, cfg->unsub_global ? "" : client, or_pg_num(t, sizeof t, now) };

	or_addr_canon(addr, canon, sizeof canon);
	or_pg_must("INSERT INTO suppressions (address, client, reason, source, created_at) VALUES ($1, $2, "
	           "'unsubscribed', 'one-click', $3::float8) ON CONFLICT DO NOTHING", 3, p);
}

/* The candidate senders of a job: those serving its client and matching its
 * pin, in config order.  Returns how many. */
static int or_pg_candidates(const struct or_config *cfg, const char *client, const char *pin, int *out)
{
	int n = 0;

	for (int i = 0; i < cfg->nsenders; i++)
		if (or_sender_serves(&cfg->senders[i], client ? client : "") && or_pin_matches(&cfg->senders[i], pin))
			out[n++] = i;
	return n;
}

/* Every configured sender's state from the shared ledger, as SQLite's
 * or_sender_state_get gives it: disabled by the operator (its reason), or
 * paused (a pause naming it), and the day its warm-up restarted.  A read
 * (inside a claim, after its sender rows are locked). */
static void or_pg_sender_states(const struct or_config *cfg, struct or_sender_state *ss)
{
	/* the senders' rows ('s'), then the domains a required DNS check failed ('d'): one round trip */
	PGresult *r = or_pg_rows("SELECT 's', name, enabled, coalesce(reason, ''), warmup_start_day, EXISTS (SELECT 1 FROM "
	                         "pauses p WHERE p.sender = senders.name) FROM senders UNION ALL SELECT 'd', domain, false, "
	                         "coalesce(reason, ''), NULL, false FROM domain_checks WHERE NOT ok", 0, NULL);

	for (int i = 0; i < cfg->nsenders; i++) {
		struct or_sender_state *x = memset(&ss[i], 0, sizeof ss[i]);
		x->enabled = 1;
		for (int k = 0; k < PQntuples(r); k++) {
			if (*PQgetvalue(r, k, 0) != 's' || strcmp(PQgetvalue(r, k, 1), cfg->senders[i].name))
				continue;
			if (!strcmp(PQgetvalue(r, k, 2), "f"))
				x->enabled = 0, snprintf(x->reason, sizeof x->reason, "%s", PQgetvalue(r, k, 3));
			if (!PQgetisnull(r, k, 4))
				x->has_restart = 1, x->warmup_start_day = atoi(PQgetvalue(r, k, 4));
			if (x->enabled && !strcmp(PQgetvalue(r, k, 5), "t"))
				x->enabled = 0, x->paused = 1, snprintf(x->reason, sizeof x->reason, "paused by the operator");
		}
		for (int k = 0; k < PQntuples(r) && x->enabled; k++)   /* as or_sender_state_get says it */
			if (*PQgetvalue(r, k, 0) == 'd' && !strcmp(PQgetvalue(r, k, 1), cfg->senders[i].domain))
				x->enabled = 0, snprintf(x->reason, sizeof x->reason, "domain check failed: %.220s", PQgetvalue(r, k, 3));
	}
	PQclear(r);
}

/* sender enable|disable on the shared ledger, as or_store_sender_set: a
 * disabled sender takes no claim of any host; enabled again, it restarts
 * its warm-up ramp today.  One statement. */
static void or_pg_sender_set(const struct or_config *cfg, int idx, int enable, const char *reason, double now)
{
	char t[32], d[16];
	const char *pe[3] = { cfg->senders[idx].name, or_pg_num(t, sizeof t, now), d }, *pd[3] = { pe[0], t, reason };

	snprintf(d, sizeof d, "%d", or_day_number((time_t)now, cfg->timezone));
	or_pg_must("BEGIN", 0, NULL);
	or_pg_must("INSERT INTO senders (name) VALUES ($1) ON CONFLICT DO NOTHING", 1, pe);
	if (enable) {
		struct or_buf names = { 0 };
		char alert[320];
		or_pg_must("UPDATE senders SET enabled = true, reason = NULL, since = $2::float8, warmup_start_day = $3::int "
		           "WHERE name = $1 AND NOT enabled", 3, pe);
		/* the domain's sender_disabled alert clears once none of its senders is disabled */
		or_pg_domain_senders(cfg, cfg->senders[idx].domain, &names);
		PGresult *r = or_pg_rows("SELECT 1 FROM senders WHERE NOT enabled AND name = ANY($1::text[])", 1,
		                         (const char *const[]){ names.s });
		snprintf(alert, sizeof alert, "sender_disabled:%s", cfg->senders[idx].domain);
		if (PQntuples(r) == 0)
			or_pg_alert_set(alert, "", 0, now);
		PQclear(r);
		or_buf_free(&names);
	} else {
		or_pg_must("UPDATE senders SET enabled = false, reason = $3, since = $2::float8 WHERE name = $1", 3, pd);
	}
	or_pg_must("COMMIT", 0, NULL);
}

/* A day counter raised by one unit only while it is under cap (inside the
 * caller's transaction): 1 when the unit was taken. */
static int or_pg_unit_take(const char *kind, const char *name, int day, int cap)
{
	char d[16], c[16];
	const char *p[4] = { kind, name, d, c };

	if (cap <= 0)
		return 0;
	snprintf(d, sizeof d, "%d", day);
	snprintf(c, sizeof c, "%d", cap);
	return or_pg_must("INSERT INTO day_counts (kind, name, day, n) VALUES ($1, $2, $3::int, 1) ON CONFLICT (kind, "
	                  "name, day) DO UPDATE SET n = day_counts.n + 1 WHERE day_counts.n < $4::int", 4, p) == 1;
}

/* A waiting job that could not be claimed now: due again at next (it stays
 * waiting), or failed when no configured sender could ever take it.  Inside
 * the claim's transaction, which it commits. */
/* The recipient group of a job's domain, its row locked (the lock order:
 * after the rotation's row, before the day counters), so that two hosts'
 * claims of one group count its slots one after the other; -1 when the
 * domain is in no group. */
static int or_pg_rgroup_lock(const struct or_config *cfg, const char *domain)
{
	int g = or_rgroup_of(cfg, domain);

	if (g >= 0)
		PQclear(or_pg_rows("SELECT 1 FROM rgroups WHERE name = $1 FOR UPDATE", 1,
		                   (const char *const[]){ cfg->rgroups[g].name }));
	return g;
}

/* A recipient group's limits at slot time t (for one sender, unless NULL),
 * as or_rgroup_wait judges them: 0 when a send fits, else the earliest time
 * one may.  Counted over (t - window, t + window) under the group's lock. */
static double or_pg_rgroup_wait(const struct or_rgroup *g, const char *sender, double t)
{
	const double win[2] = { 60, 3600 };
	const double lim[2] = { sender ? g->sender_per_minute : g->per_minute, sender ? g->sender_per_hour : g->per_hour };
	double until = 0;

	for (int k = 0; k < 2; k++) {
		char from[32], to[32];
		if (lim[k] <= 0)
			continue;
		PGresult *r = or_pg_rows("SELECT count(*), coalesce(min(at), 0) FROM group_slots WHERE rgroup = $1 AND ($2::text "
		                         "IS NULL OR sender = $2) AND at > $3::float8 AND at < $4::float8", 4,
		                         (const char *const[]){ g->name, sender, or_pg_num(from, sizeof from, t - win[k]),
		                         or_pg_num(to, sizeof to, t + win[k]) });
		if (atoll(PQgetvalue(r, 0, 0)) >= (long long)lim[k] && atof(PQgetvalue(r, 0, 1)) + win[k] + 0.001 > until)
			until = atof(PQgetvalue(r, 0, 1)) + win[k] + 0.001;
		PQclear(r);
	}
	return until;
}

static void or_pg_claim_later(const char *id, double next, const char *fail, double now)
{
	char t[32], nx[32];
	const char *pf[2] = { fail, or_pg_num(t, sizeof t, now) }, *pw[2] = { id, or_pg_num(nx, sizeof nx, next) };

	if (fail) {   /* failed through claimed, as the table has it (no unit was taken) */
		or_pg_job_move(id, OR_S_WAITING, OR_S_CLAIMED, NULL, NULL, 0, NULL);
		or_pg_job_move(id, OR_S_CLAIMED, OR_S_FAILED, NULL, "last_error = $5, updated_at = $6::float8", 2, pf);
	} else   /* marked: the senders alerts count it due, as SQLite's claim leaves such a job due */
		or_pg_must("UPDATE jobs SET next_due = $2::float8, passed_over = true WHERE id = $1", 2, pw);
	or_pg_must("COMMIT", 0, NULL);
}

/* Claims one due job, in one transaction: the job (SKIP LOCKED), a sender
 * with a unit left today and a slot before the deadline (rotation as on
 * one host), the client's and the sender's day units, the sender's slot.
 * 1 claimed (into c), 0 nothing claimable is due, -1 the lease is lost.  A
 * job no sender may take now is moved to when one may, and the next due one
 * is tried.  A crash after the commit leaves the job claimed by this run:
 * recovered (units returned) once the lease lapses. */
static int or_pg_claim(const struct or_config *cfg, struct or_run *run, double deadline, struct or_pg_claim *c)
{
	while (!or_stop && or_now() < deadline) {
		double now = or_now();
		int day = or_day_number((time_t)now, cfg->timezone), cand[OR_MAX_SENDERS], nc, elig[OR_MAX_SENDERS],
		    left[OR_MAX_SENDERS], ne = 0, rr_last, pick = -1;
		double slot[OR_MAX_SENDERS], soonest = 0;
		char t[32], dy[16], names[OR_MAX_SENDERS * 72] = "{";
		const char *pn[1] = { or_pg_num(t, sizeof t, now) };
		PGresult *j, *s, *k;

		or_pg_must("BEGIN", 0, NULL);
		or_pg_must("SET LOCAL lock_timeout = '20s'", 0, NULL);
		if (run->row && !or_pg_fence(cfg, run)) {
			or_pg_must("ROLLBACK", 0, NULL);
			return -1;
		}
		/* a paused scope's jobs are not taken: they wait, due, until it is resumed */
		j = or_pg_rows("WITH j AS MATERIALIZED (SELECT id FROM jobs WHERE state = 'waiting' AND next_due <= $1::float8 "
		               "AND NOT EXISTS (SELECT 1 FROM pauses p WHERE p.sender = '' AND p.client IN ('', jobs.client) AND "
		               "p.campaign IN ('', coalesce(jobs.campaign, ''))) "
		               "ORDER BY next_due, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) SELECT jobs.id, client, pin, "
		               "attempts, created_at, body, win_days, win_start, win_end, coalesce(win_tz, ''), "
		               "coalesce(rcpt_domain, '') FROM jobs JOIN j USING (id)", 1, pn);
		if (PQntuples(j) == 0) {   /* nothing due: an idle run writes no row (the lease renewed otherwise) */
			PQclear(j);
			or_pg_must("COMMIT", 0, NULL);
			return 0;
		}
		if (!run->row)   /* the run's row comes with its first claimable job, in this transaction */
			or_pg_fence(cfg, run);
		const char *id = PQgetvalue(j, 0, 0), *client = PQgetisnull(j, 0, 1) ? "" : PQgetvalue(j, 0, 1),
		           *pin = PQgetisnull(j, 0, 2) ? NULL : PQgetvalue(j, 0, 2);
		if (!(nc = or_pg_candidates(cfg, client, pin, cand))) {
			char why[400];
			snprintf(why, sizeof why, "no configured sender serves client \"%.100s\"%s%.100s%s", client,
			         pin ? " with the job's sender \"" : "", pin ? pin : "", pin ? "\"" : "");
			or_pg_claim_later(id, 0, why, now);
			run->failed++;
			PQclear(j);
			continue;
		}
		for (int i = 0; i < nc; i++)
			snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? "," : "", cfg->senders[cand[i]].name);
		strcat(names, "}");   /* names are letters, digits, . _ - (or_cfg_name): a safe array literal */
		snprintf(dy, sizeof dy, "%d", day);
		const char *ps[2] = { names, dy };
		/* the lock order: senders by name, the rotation's row, the job's recipient group, the day counters */
		s = or_pg_rows("SELECT name, last_slot_at, coalesce((SELECT n FROM day_counts WHERE kind = 's' AND "
		               "day_counts.name = senders.name AND day = $2::int), 0), jitter_next FROM senders WHERE name = "
		               "ANY($1::text[]) ORDER BY name FOR UPDATE", 2, ps);
		k = or_pg_rows("SELECT value FROM kv WHERE key = 'rr_last' FOR UPDATE", 0, NULL);
		rr_last = PQntuples(k) ? atoi(PQgetvalue(k, 0, 0)) : -1;
		PQclear(k);
		int rg = or_pg_rgroup_lock(cfg, PQgetvalue(j, 0, 10));
		struct or_sender_state st[OR_MAX_SENDERS];   /* disabled or paused ones are passed over */
		double blocked[OR_MAX_PROVIDERS];            /* and those whose account's circuit is open or paused */
		int paused = 0;
		or_pg_sender_states(cfg, st);
		or_pg_accounts_blocked(cfg, now, blocked, NULL);
		struct or_window win = { 0 };   /* the job's window, judged at each sender's slot as on SQLite */
		if (!PQgetisnull(j, 0, 6)) {
			win.set = 1, win.days = (unsigned)atoi(PQgetvalue(j, 0, 6));
			win.start_min = atoi(PQgetvalue(j, 0, 7)), win.end_min = atoi(PQgetvalue(j, 0, 8));
			snprintf(win.tz, sizeof win.tz, "%s", PQgetvalue(j, 0, 9));
		}
		int acct[OR_MAX_SENDERS];   /* each candidate's account now: its provider, else its fallback */
		for (int i = 0; i < nc; i++) {
			const struct or_sender *sd = &cfg->senders[cand[i]];
			const struct or_sender_state *ss = &st[cand[i]];
			int off = !ss->enabled || (acct[cand[i]] = or_pg_sender_account(sd, blocked)) < 0;
			paused += off;
			for (int r = 0; r < PQntuples(s) && !off; r++) {   /* a paused sender is passed over */
				if (strcmp(PQgetvalue(s, r, 0), sd->name))
					continue;
				double last = atof(PQgetvalue(s, r, 1)), gap = or_sender_gap(cfg, sd), open, at;
				double fr = cfg->providers[acct[cand[i]]].rate;   /* a fallback's rate holds too */
				/* and the jitter drawn when its last slot was reserved, on whichever host */
				at = last + (fr > 0 && 1.0 / fr > gap ? 1.0 / fr : gap) + atof(PQgetvalue(s, r, 3));
				int l = or_sender_cap(sd, ss, day) - atoi(PQgetvalue(s, r, 2));
				at = at > now ? at : now;
				open = win.set && !or_window_open(&win, (time_t)at, cfg->timezone) ?
				       (double)or_window_next(&win, (time_t)ceil(at), cfg->timezone) : at;
				if (open == at && rg >= 0) {   /* the mailbox provider's limits, all senders and this one */
					double u = or_pg_rgroup_wait(&cfg->rgroups[rg], NULL, at),
					       v = or_pg_rgroup_wait(&cfg->rgroups[rg], sd->name, at);
					open = u > v ? u : v > 0 ? v : at;
				}
				if (l > 0 && open == at && at <= deadline) {
					slot[ne] = at, left[ne] = l, elig[ne++] = cand[i];
				} else if (l > 0 && open > 0 && (!soonest || open < soonest)) {
					soonest = open;   /* its slot comes after the deadline, or outside the window */
				}
			}
		}
		PQclear(s);
		const struct or_client *cl = or_client_find(cfg, client);
		if (ne)
			pick = or_pick_sender(cfg, elig, ne, left, rr_last);
		if (pick >= 0 && cl && cl->daily_limit > 0 && !or_pg_unit_take("c", client, day, cl->daily_limit))
			pick = -2;   /* the client's day is full, on every host */
		if (pick < 0) {   /* due again when a sender's slot comes (a paused one's: the next tick), else tomorrow */
			double tomorrow = (double)or_day_start(day + 1, cfg->timezone);
			if (pick == -1 && paused && (!soonest || soonest > now + 60))
				soonest = now + 60;
			or_pg_claim_later(id, pick == -1 && soonest > 0 ? soonest : tomorrow, NULL, now);
			PQclear(j);
			continue;
		}
		int at = 0;
		while (elig[at] != pick)
			at++;
		const struct or_sender *sd = &cfg->senders[pick];
		if (!or_pg_unit_take("s", sd->name, day, or_sender_cap(sd, &st[pick], day))) {   /* locked: cannot happen */
			or_pg_must("ROLLBACK", 0, NULL);
			PQclear(j);
			continue;
		}
		char sl[32], rr[16], up[32];
		snprintf(rr, sizeof rr, "%d", pick);
		const char *pc[7] = { id, run->id, sd->name, cfg->providers[acct[pick]].name,
		                      or_pg_num(sl, sizeof sl, slot[at]), dy, or_pg_num(up, sizeof up, now) };
		char jn[32];
		const char *pl[3] = { sd->name, sl, jn }, *pr[1] = { rr };
		snprintf(jn, sizeof jn, "%.3f", sd->jitter > 0 ? sd->jitter * or_random_unit() : 0.0);   /* for its next slot */
		or_pg_must("UPDATE senders SET last_slot_at = $2::float8, jitter_next = $3::float8 WHERE name = $1", 3, pl);
		or_pg_must("UPDATE kv SET value = $1 WHERE key = 'rr_last'", 1, pr);
		if (rg >= 0)   /* a slot given back keeps its place: it only delays the group, never overspends it */
			or_pg_must("INSERT INTO group_slots (rgroup, sender, at, job_id) VALUES ($1, $2, $3::float8, $4)", 4,
			           (const char *const[]){ cfg->rgroups[rg].name, sd->name, sl, id });
		/* the row is locked (SKIP LOCKED chose it); still waiting is checked all the same */
		if (!or_pg_job_move(id, OR_S_WAITING, OR_S_CLAIMED, NULL, "run_id = $5, sender = $6, account = $7, "
		                    "slot_at = $8::float8, slot_day = $9::int, updated_at = $10::float8, passed_over = false", 6, pc + 1)) {
			or_pg_must("ROLLBACK", 0, NULL);
			PQclear(j);
			continue;
		}
		or_pg_must("COMMIT", 0, NULL);
		OR_STEP();
		memset(c, 0, sizeof *c);
		snprintf(c->id, sizeof c->id, "%s", id);
		c->body = or_xstrdup(PQgetisnull(j, 0, 5) ? "" : PQgetvalue(j, 0, 5));
		c->sender = pick, c->account = acct[pick], c->attempts = atoi(PQgetvalue(j, 0, 3));
		c->created_at = atof(PQgetvalue(j, 0, 4)), c->day = day, c->slot = slot[at];
		PQclear(j);
		run->claimed++;
		run->reserved++;
		return 1;
	}
	return 0;
}

/* A claim given back before any intent (suppressed, a duplicate, a job
 * that cannot be built, a lease too short to start): the job to state with
 * why, due again at next when waiting, and its units returned; fenced by
 * the job's row (still claimed by this run).  One transaction. */
static void or_pg_release(const struct or_config *cfg, struct or_run *run, const struct or_pg_claim *c,
                          const char *state, const char *why, double next)
{
	char t[32], nx[32];
	const char *p[1] = { c->id }, *v[3] = { why, or_pg_num(t, sizeof t, or_now()), or_pg_num(nx, sizeof nx, next) };

	or_pg_must("BEGIN", 0, NULL);
	if (or_pg_job_move(c->id, OR_S_CLAIMED, or_job_state_of(state), run->id, "last_error = $5, updated_at = $6::float8, "
	                   "next_due = $7::float8, run_id = NULL, sender = NULL, account = NULL, slot_at = NULL, "
	                   "slot_day = NULL", 3, v)) {
		const struct or_sender *sd = &cfg->senders[c->sender];
		PGresult *r = or_pg_rows("SELECT client FROM jobs WHERE id = $1", 1, p);
		const struct or_client *cl = PQntuples(r) ? or_client_find(cfg, PQgetvalue(r, 0, 0)) : NULL;
		if (cl && cl->daily_limit > 0)
			or_pg_unit_back("c", cl->name, c->day);
		or_pg_unit_back("s", sd->name, c->day);
		PQclear(r);
	}
	or_pg_must("COMMIT", 0, NULL);
	OR_STEP();
}

/* A transfer's outcome booked on its account, as SQLite's or_account_outcome
 * (inside the outcome's transaction, the account's row locked first): a
 * success closes the circuit; a throttle pauses the account; an account
 * refusal opens the circuit at once, and connection or 5xx failures after
 * circuit_failures in a row, for circuit_cooldown (account_down:NAME
 * raised, cleared by the next success).  Every host's claims pass over the
 * account meanwhile.  1 when the circuit is open now. */
static int or_pg_account_outcome(const struct or_provider *p, const struct or_send_result *r, double now)
{
	char t[32], u[32], alert[128], detail[700];
	const char *pn[1] = { p->name };
	PGresult *q;
	int down;

	snprintf(alert, sizeof alert, "account_down:%s", p->name);
	or_pg_must("INSERT INTO accounts (name) VALUES ($1) ON CONFLICT DO NOTHING", 1, pn);
	if (r->v == OR_OK) {
		or_pg_must("UPDATE accounts SET failures = 0, open_until = 0, reason = NULL WHERE name = $1 AND "
		           "(failures <> 0 OR open_until <> 0)", 1, pn);
		or_pg_alert_set(alert, "cleared", 0, now);
		return 0;
	}
	if (r->throttled) {
		const char *pw[2] = { p->name, or_pg_num(u, sizeof u, now + (r->retry_after > 0 ? r->retry_after : 60)) };
		or_pg_must("UPDATE accounts SET paused_until = greatest(paused_until, $2::float8) WHERE name = $1", 2, pw);
	}
	if (r->account || r->transport) {   /* 421 pauses and counts, both */
		const char *pf[2] = { p->name, r->why };
		q = or_pg_rows("UPDATE accounts SET failures = failures + 1, reason = $2 WHERE name = $1 RETURNING failures",
		               2, pf);
		int failures = atoi(PQgetvalue(q, 0, 0));
		PQclear(q);
		if (r->account || failures >= p->circuit_failures) {
			const char *po[2] = { p->name, or_pg_num(u, sizeof u, now + p->circuit_cooldown) };
			or_pg_must("UPDATE accounts SET open_until = $2::float8 WHERE name = $1", 2, po);
			snprintf(detail, sizeof detail, "circuit open after %d failure%s: %s", failures, failures == 1 ? "" : "s",
			         r->why);
			or_pg_alert_set(alert, detail, 1, now);
		}
	}
	const char *pd[2] = { p->name, or_pg_num(t, sizeof t, now) };
	q = or_pg_rows("SELECT open_until > $2::float8 FROM accounts WHERE name = $1", 2, pd);
	down = !strcmp(PQgetvalue(q, 0, 0), "t");
	PQclear(q);
	return down;
}

/* The time until which each configured account takes no send (its circuit
 * open, or paused by a throttle), 0 when it takes them now.  A read. */
static void or_pg_accounts_blocked(const struct or_config *cfg, double now, double *until, int *opened)
{
	PGresult *r = or_pg_rows("SELECT name, open_until, paused_until FROM accounts", 0, NULL);

	for (int i = 0; i < cfg->nproviders; i++) {
		until[i] = 0;
		if (opened)
			opened[i] = 0;
		for (int k = 0; k < PQntuples(r); k++) {
			if (strcmp(PQgetvalue(r, k, 0), cfg->providers[i].name))
				continue;
			double o = atof(PQgetvalue(r, k, 1)), pz = atof(PQgetvalue(r, k, 2));
			until[i] = o > now ? o : 0;
			if (opened)
				opened[i] = o > now;
			if (pz > now && pz > until[i])
				until[i] = pz;
		}
	}
	PQclear(r);
}

/* The account a sender uses now, as or_sender_account: its provider, else
 * its fallback while the provider is blocked (or_pg_accounts_blocked's
 * until, 0 when not); -1 when neither may send. */
static int or_pg_sender_account(const struct or_sender *s, const double *blocked)
{
	if (blocked[s->provider] <= 0)
		return s->provider;
	return s->fallback >= 0 && blocked[s->fallback] <= 0 ? s->fallback : -1;
}

/* The intent, just before the transfer, in one synchronous transaction:
 * fenced by the lease and by the job's row (claimed by this run).  1 when
 * the transfer may start; 0 when the lease or the job was lost (another
 * host recovered this run): never send then.  A COMMIT with no answer ends
 * the process (or_pg_die): unknown, so never sent on.  A crash after the
 * commit leaves the job sending: held by recovery, its unit kept. */
static int or_pg_intent(const struct or_config *cfg, struct or_run *run, const struct or_pg_claim *c,
                        const char *msgid)
{
	char t[32];
	const char *v[2] = { msgid, or_pg_num(t, sizeof t, or_now()) };
	int ok;

	or_pg_must("BEGIN", 0, NULL);
	if (!or_pg_fence(cfg, run)) {
		or_pg_must("ROLLBACK", 0, NULL);
		return 0;
	}
	ok = or_pg_job_move(c->id, OR_S_CLAIMED, OR_S_SENDING, run->id, "message_id = $5, updated_at = $6::float8", 2, v);
	or_pg_must(ok ? "COMMIT" : "ROLLBACK", 0, NULL);
	if (ok)
		OR_STEP();
	return ok;
}

/* A transfer's outcome, in one transaction: the job settled by
 * or_outcome_decide's rule (sent; waiting again after a backoff or an
 * account's wait; held; failed), its unit returned when nothing went, an
 * attempt recorded.  Written where the job is still this run's and sending,
 * or held by a host that recovered this run meanwhile (the late outcome is
 * the truth).  Returns the folder it stands for (OR_D_DONE, OR_D_DEFER,
 * OR_D_HELD, OR_D_FAILED) for the run's tally. */
static int or_pg_outcome(const struct or_config *cfg, struct or_run *run, const struct or_pg_claim *c,
                         const struct or_send_result *r, const char *msgid, int transfer)
{
	struct or_store_outcome o = { c->id, c->sender, c->account, c->attempts, c->created_at, msgid, r, 0 };
	double now = or_now(), next = now;
	/* the account's circuit first (its row, then the job's: one order), so the
	 * outcome is judged with the circuit as this transfer left it */
	or_pg_must("BEGIN", 0, NULL);
	int down = transfer ? or_pg_account_outcome(&cfg->providers[c->account], r, now) : 0;
	enum or_outcome how = or_outcome_decide(cfg, &o, down, now);
	static const char *const state[] = { "sent", "waiting", "waiting", "held", "waiting", "failed" };
	static const char *const outcome[] = { "sent", "deferred", "deferred", "in-doubt", "in-doubt", "failed" };
	static const int dir[] = { OR_D_DONE, OR_D_DEFER, OR_D_DEFER, OR_D_HELD, OR_D_DEFER, OR_D_FAILED };
	int tried = how != OR_OUT_ACCOUNT_WAIT, keep = how == OR_OUT_SENT || how == OR_OUT_HOLD || how == OR_OUT_RESEND;
	char t[32], nx[32], at[16];

	if (how == OR_OUT_RETRY)
		next = now + or_backoff(cfg, c->attempts + 1);
	else if (how == OR_OUT_ACCOUNT_WAIT)
		next = now + (r->retry_after > 0 ? r->retry_after : 60);
	snprintf(at, sizeof at, "%d", c->attempts + tried);
	const char *p[1] = { c->id };
	const char *v[7] = { or_pg_num(t, sizeof t, now), or_pg_num(nx, sizeof nx, next), at,
	                     how == OR_OUT_SENT ? NULL : r->why, *r->provider_id ? r->provider_id : NULL,
	                     *r->message_id ? r->message_id : msgid, how == OR_OUT_SENT ? t : NULL };
	static const char sets[] = "updated_at = $5::float8, next_due = $6::float8, attempts = $7::int, last_error = $8, "
	                           "provider_id = coalesce($9, provider_id), message_id = $10, "
	                           "sent_at = coalesce($11::float8, sent_at)";
	int to = or_job_state_of(state[how]);
	/* a host that recovered this run meanwhile holds the job: a late proof of delivery settles it */
	if (or_pg_job_move(c->id, OR_S_SENDING, to, run->id, sets, 7, v) ||
	    (how == OR_OUT_SENT && or_pg_job_move(c->id, OR_S_HELD, OR_S_SENT, run->id, sets, 7, v))) {
		const char *pa[7] = { c->id, t, cfg->senders[c->sender].name, cfg->providers[c->account].name, outcome[how],
		                      *r->provider_id ? r->provider_id : NULL, *r->why ? r->why : NULL };
		if (!keep) {
			PGresult *cr = or_pg_rows("SELECT client FROM jobs WHERE id = $1", 1, p);
			const struct or_client *cl = PQntuples(cr) ? or_client_find(cfg, PQgetvalue(cr, 0, 0)) : NULL;
			if (cl && cl->daily_limit > 0)
				or_pg_unit_back("c", cl->name, c->day);
			or_pg_unit_back("s", cfg->senders[c->sender].name, c->day);
			PQclear(cr);
		}
		if (tried)
			or_pg_must("INSERT INTO attempts (job_id, at, sender, account, outcome, provider_id, message_id, reason) "
			           "VALUES ($1, $2::float8, $3, $4, $5, $6, NULL, $7)", 7, pa);
		if (r->suppress && how == OR_OUT_FAIL) {
			PGresult *cr = or_pg_rows("SELECT rcpt, coalesce(client, '') FROM jobs WHERE id = $1", 1, p);
			char canon[OR_MAX_ADDR * 2 + 1];
			const char *ps[3] = { canon, PQgetvalue(cr, 0, 1), t };
			or_addr_canon(PQgetvalue(cr, 0, 0), canon, sizeof canon);   /* as every suppression is written */
			or_pg_must("INSERT INTO suppressions (address, client, reason, source, created_at) VALUES ($1, $2, "
			           "'hard bounce at send', 'provider', $3::float8) ON CONFLICT DO NOTHING", 3, ps);
			PQclear(cr);
		}
	}
	or_pg_must("COMMIT", 0, NULL);
	OR_STEP();
	return dir[how];
}

/* This run's senders and the rotation's row made (rows the claim locks),
 * idempotently, each statement on its own. */
static void or_pg_rows_ensure(const struct or_config *cfg)
{
	for (int i = 0; i < cfg->nsenders; i++) {
		const char *p[1] = { cfg->senders[i].name };
		or_pg_must("INSERT INTO senders (name) VALUES ($1) ON CONFLICT DO NOTHING", 1, p);
	}
	or_pg_must("INSERT INTO kv (key, value) VALUES ('rr_last', '-1') ON CONFLICT DO NOTHING", 0, NULL);
	for (int i = 0; i < cfg->nrgroups; i++)
		or_pg_must("INSERT INTO rgroups (name) VALUES ($1) ON CONFLICT DO NOTHING", 1,
		           (const char *const[]){ cfg->rgroups[i].name });
}

/* The run's row closed 'done' with its figures (a run that claimed nothing
 * has none).  A crash before it leaves the row running: its lease lapses
 * and another run recovers it, finding nothing left to do. */
static void or_pg_run_end(struct or_run *run)
{
	char t[32], n[6][16];
	int v[6] = { run->claimed, run->sent, run->deferred, run->failed, run->held, run->ingested };

	if (!run->row)
		return;
	for (int i = 0; i < 6; i++)
		snprintf(n[i], sizeof n[i], "%d", v[i]);
	const char *p[8] = { run->id, or_pg_num(t, sizeof t, or_now()), n[0], n[1], n[2], n[3], n[4], n[5] };
	or_pg_must("UPDATE runs SET state = 'done', ended_at = $2::float8, claimed = $3::int, sent = $4::int, "
	           "deferred = $5::int, failed = $6::int, held = $7::int, ingested = $8::int "
	           "WHERE id = $1 AND state = 'running'", 8, p);
	OR_STEP();
}

#endif

/* ================================================================
 * STORE (PostgreSQL): the reports' snapshot, the hosts' heartbeats, alerts
 *
 * status, status.json and outreach.prom from the shared ledger: the same
 * struct or_snap SQLite's or_store_snapshot fills, with what this store
 * keeps (jobs, day counters, counters, runs) and the hosts sharing it.
 * Every host's reports show the cluster's counts; the run is this host's.
 * The alerts this store judges (host_down:NAME, key_differs:NAME) are
 * judged by every tick under an advisory lock and delivered by one host at
 * a time, so each change goes out once cluster-wide.
 * ================================================================ */
#if OR_PG

/* This host's heartbeat, by the database's clock: every tick writes it,
 * idle ones too (an idle host is not a dead one).  One statement in its
 * own transaction; a crash around it leaves the previous beat.  Exit 78
 * when this host is not registered (init not run here). */
static int or_pg_heartbeat(const struct or_config *cfg)
{
	const char *p[1] = { cfg->host_name };

	if (or_pg_must("UPDATE hosts SET heartbeat_at = now() WHERE name = $1", 1, p) == 1) {
		OR_STEP();
		return OR_EX_OK;
	}
	fprintf(stderr, "outreach: this host (%s) is not in the shared ledger: run outreach init here\n", cfg->host_name);
	return OR_EX_CONFIG;
}

/* The hosts with their last run, heartbeat (the later of the last tick and
 * the running runs' lease renewals), whether that is older than two leases
 * (by the database's clock) and whether the key differs from the ledger's
 * first host's (the key init hands on): columns name, version, last run,
 * heartbeat (epoch), down, key_differs, by name.  The same on every host,
 * so every host judges the same alerts.  A read. */
static PGresult *or_pg_hosts_read(const struct or_config *cfg)
{
	char lease[32];
	const char *p[1] = { or_pg_num(lease, sizeof lease, 2 * cfg->pg_lease) };

	return or_pg_rows("WITH k AS (SELECT key_sha256 FROM hosts ORDER BY first_seen, name LIMIT 1), "
	                  "b AS (SELECT name, version, key_sha256, (SELECT max(started_at) FROM runs WHERE "
	                  "runs.host = hosts.name) last_run, greatest(coalesce(heartbeat_at, last_seen), (SELECT "
	                  "max(heartbeat_at) FROM runs WHERE runs.host = hosts.name AND state = 'running')) beat FROM hosts) "
	                  "SELECT name, version, coalesce(last_run, 0), extract(epoch FROM beat), "
	                  "beat < now() - $1::float8 * interval '1 second', key_sha256 <> (SELECT key_sha256 FROM k) "
	                  "FROM b ORDER BY name COLLATE \"C\"", 1, p);
}

static void or_pg_snap_hosts(const struct or_config *cfg, struct or_snap *sn)
{
	PGresult *r = or_pg_hosts_read(cfg);

	for (int i = 0; i < PQntuples(r); i++) {
		struct or_snap_host *x;
		sn->hosts = or_snap_grow(sn->hosts, sn->nhosts, sizeof *sn->hosts);
		x = &sn->hosts[sn->nhosts++];
		x->name = or_xstrdup(PQgetvalue(r, i, 0));
		x->version = or_xstrdup(PQgetvalue(r, i, 1));
		x->last_run = atof(PQgetvalue(r, i, 2));
		x->heartbeat = atof(PQgetvalue(r, i, 3));
		x->down = !strcmp(PQgetvalue(r, i, 4), "t");
		x->key_differs = !strcmp(PQgetvalue(r, i, 5), "t");
	}
	PQclear(r);
}

/* The active alerts, as the last evaluation (or_pg_alerts_evaluate) left
 * them. */
static void or_pg_snap_alerts(struct or_snap *sn)
{
	PGresult *r = or_pg_rows("SELECT name, since, detail FROM alerts ORDER BY name COLLATE \"C\"", 0, NULL);

	for (int i = 0; i < PQntuples(r); i++) {
		sn->alerts = or_snap_grow(sn->alerts, sn->nalerts, sizeof *sn->alerts);
		struct or_snap_alert *a = &sn->alerts[sn->nalerts++];
		a->name = or_xstrdup(PQgetvalue(r, i, 0));
		a->since = atof(PQgetvalue(r, i, 1));
		a->detail = or_xstrdup(PQgetvalue(r, i, 2));
		/* the ones that make status "FAILING", as SQLite's snapshot counts them */
		sn->alerts_failing += !strcmp(a->name, "senders_exhausted") || !strcmp(a->name, "error_rate") ||
		                      !strncmp(a->name, "account_down:", 13);
	}
	PQclear(r);
}

/* One alert raised (when not active) or cleared (when active), with its
 * change queued in alert_log for delivery; inside the evaluation's
 * transaction. */
static void or_pg_alert_set(const char *name, const char *detail, int on, double now)
{
	char t[32];
	const char *p[3] = { name, detail, or_pg_num(t, sizeof t, now) };

	if (on && or_pg_must("INSERT INTO alerts (name, since, detail) VALUES ($1, $3::float8, $2) ON CONFLICT DO NOTHING",
	                     3, p))
		or_pg_must("INSERT INTO alert_log (name, event, detail, at) VALUES ($1, 'raised', $2, $3::float8)", 3, p);
	else if (on)   /* still active: no new delivery, but the text the reports show stays true (a count) */
		or_pg_must("UPDATE alerts SET detail = $2 WHERE name = $1 AND detail <> $2", 2, p);
	else if (!on && or_pg_must("DELETE FROM alerts WHERE name = $1", 1, p))
		or_pg_must("INSERT INTO alert_log (name, event, detail, at) VALUES ($1, 'cleared', $2, $3::float8)", 3, p);
}

/* The job alerts SQLite's or_store_alerts_evaluate judges that this store
 * has the rows for, with SQLite's words: jobs_held, backlog_old (a due job
 * waiting past alerts.backlog_age), error_rate (the last hour's failed
 * share of attempts) and senders_exhausted (every sender's cap spent while
 * jobs are due).  Inside the evaluation's transaction. */
static void or_pg_alerts_jobs(const struct or_config *cfg, double now)
{
	char t[32], h[32], detail[300], dy[16];
	const char *p[2] = { or_pg_num(t, sizeof t, now), or_pg_num(h, sizeof h, now - 3600) }, *pd[1] = { dy };
	int day = or_day_number((time_t)now, cfg->timezone), capped = 0, usable = 0, opened[OR_MAX_PROVIDERS];
	struct or_sender_state st[OR_MAX_SENDERS];
	struct or_buf why = { 0 }, blocked = { 0 };
	double until[OR_MAX_PROVIDERS];
	PGresult *r = or_pg_rows("SELECT (SELECT count(*) FROM jobs WHERE state = 'held'), (SELECT min(next_due) FROM jobs "
	                         "WHERE state = 'waiting' AND next_due <= $1::float8), (SELECT count(*) FROM jobs WHERE "
	                         "state = 'waiting' AND (next_due <= $1::float8 OR passed_over)), (SELECT count(*) FROM attempts WHERE at > "
	                         "$2::float8), (SELECT count(*) FROM attempts WHERE at > $2::float8 AND outcome <> 'sent')",
	                         2, p);
	long long held = atoll(PQgetvalue(r, 0, 0)), due = atoll(PQgetvalue(r, 0, 2)), tries = atoll(PQgetvalue(r, 0, 3)),
	          bad = atoll(PQgetvalue(r, 0, 4));
	double oldest = PQgetisnull(r, 0, 1) ? 0 : atof(PQgetvalue(r, 0, 1));

	PQclear(r);
	snprintf(detail, sizeof detail, "%lld job%s held: check the provider, then 'outreach requeue held' or leave them",
	         held, held == 1 ? "" : "s");
	or_pg_alert_set("jobs_held", detail, held > 0, now);
	snprintf(detail, sizeof detail, "a due job has waited %.0f min (limit %.0f min)", (now - oldest) / 60,
	         cfg->alert_backlog_age / 60);
	or_pg_alert_set("backlog_old", detail, oldest > 0 && now - oldest > cfg->alert_backlog_age, now);
	snprintf(detail, sizeof detail, "%lld of %lld attempts in the last hour failed (over %.0f%%)", bad, tries,
	         cfg->alert_error_share * 100);
	or_pg_alert_set("error_rate", detail, tries >= cfg->alert_min_attempts && bad > cfg->alert_error_share * (double)tries,
	                now);
	snprintf(dy, sizeof dy, "%d", day);
	or_pg_sender_states(cfg, st);
	or_pg_accounts_blocked(cfg, now, until, opened);
	r = or_pg_rows("SELECT name, n FROM day_counts WHERE kind = 's' AND day = $1::int", 1, pd);
	for (int i = 0; i < cfg->nsenders; i++) {
		const struct or_sender *s = &cfg->senders[i];
		char w[300] = "", when[40];
		int sent = 0, cap = or_sender_cap(s, &st[i], day);
		for (int k = 0; k < PQntuples(r); k++)
			if (!strcmp(PQgetvalue(r, k, 0), s->name))
				sent = atoi(PQgetvalue(r, k, 1));
		/* SQLite's or_sender_why_not, in its order and words */
		if (!st[i].enabled) {
			snprintf(w, sizeof w, "%s%.200s", st[i].paused || !strncmp(st[i].reason, "domain check", 12) ? "" :
			         "disabled: ", st[i].reason);
		} else if (or_pg_sender_account(s, until) < 0) {   /* named by its primary, as SQLite names it */
			double u = s->fallback >= 0 && until[s->fallback] < until[s->provider] ? until[s->fallback] :
			           until[s->provider];
			or_fmt_rfc3339((time_t)u, when, sizeof when);
			snprintf(w, sizeof w, "account %s %s until %s", cfg->providers[s->provider].name,
			         opened[s->provider] ? "down (circuit open)" : "paused", when);
		} else if (sent >= cap) {
			snprintf(w, sizeof w, "cap %d spent", cap);
			capped++;
		}
		usable += !*w;
		if (*w && why.len < 600)
			or_buf_printf(&why, "%s%s: %s", why.len ? "; " : "", s->name, w);
	}
	PQclear(r);
	snprintf(detail, sizeof detail, "%lld jobs are due and no sender has capacity left today", due);
	or_pg_alert_set("senders_exhausted", detail, due > 0 && !usable && capped == cfg->nsenders, now);
	or_buf_printf(&blocked, "%lld jobs are due and no sender can send: %s%s", due, why.s ? why.s : "",
	              why.len >= 600 ? "; ..." : "");
	or_pg_alert_set("senders_blocked", blocked.s, due > 0 && !usable && capped < cfg->nsenders, now);
	or_buf_free(&why);
	or_buf_free(&blocked);
}

/* The alerts this store judges, once per tick of any host, one host at a
 * time (a transaction-scoped advisory lock): host_down:NAME for a host
 * whose heartbeat is older than two leases, key_differs:NAME for a host
 * whose key is not the ledger's first host's; each raised or cleared on
 * change, so a change is queued once cluster-wide whichever host sees it
 * first.  A crash before COMMIT changes nothing: the next tick judges
 * again. */
static void or_pg_alerts_evaluate(const struct or_config *cfg, double now)
{
	PGresult *h, *a;

	or_pg_must("BEGIN", 0, NULL);
	or_pg_must("SELECT pg_advisory_xact_lock(" OR_PG_ALERT_LOCK ")", 0, NULL);
	h = or_pg_hosts_read(cfg);
	for (int i = 0; i < PQntuples(h); i++) {
		const char *name = PQgetvalue(h, i, 0);
		char an[100], detail[400], t[40];
		or_fmt_rfc3339((time_t)atof(PQgetvalue(h, i, 3)), t, sizeof t);
		snprintf(an, sizeof an, "host_down:%s", name);
		snprintf(detail, sizeof detail, "host %s has not run since %s (more than two leases, %.0f s): the other "
		         "hosts recover its claims", name, t, 2 * cfg->pg_lease);
		or_pg_alert_set(an, detail, !strcmp(PQgetvalue(h, i, 4), "t"), now);
		snprintf(an, sizeof an, "key_differs:%s", name);
		snprintf(detail, sizeof detail, "host %s signs unsubscribe links with another key than the ledger's first "
		         "host: its links fail on the others (README \"Several hosts\")", name);
		or_pg_alert_set(an, detail, !strcmp(PQgetvalue(h, i, 5), "t"), now);
	}
	or_pg_alerts_jobs(cfg, now);
	/* a host removed from the ledger: its alerts go with it */
	a = or_pg_rows("SELECT name, detail FROM alerts WHERE (name LIKE 'host\\_down:%' OR name LIKE 'key\\_differs:%') "
	               "AND substr(name, strpos(name, ':') + 1) NOT IN (SELECT name FROM hosts)", 0, NULL);
	for (int i = 0; i < PQntuples(a); i++)
		or_pg_alert_set(PQgetvalue(a, i, 0), PQgetvalue(a, i, 1), 0, now);
	PQclear(a);
	PQclear(h);
	or_pg_must("COMMIT", 0, NULL);
	OR_STEP();
}

/* Alert changes not yet taken by a channel (0 alert_command, 1 the
 * webhook), oldest first, as SQLite's or_store_alert_queue.  A read. */
static int or_pg_alert_queue(int channel, struct or_alert_entry *q, int max)
{
	PGresult *r = or_pg_rows(channel == 0 ? "SELECT id, name, event, detail, at FROM alert_log WHERE NOT delivered_cmd "
	                                      "ORDER BY id LIMIT 32"
	                                      : "SELECT id, name, event, detail, at FROM alert_log WHERE NOT delivered_hook "
	                                      "ORDER BY id LIMIT 32", 0, NULL);
	int n = 0;

	for (; n < max && n < PQntuples(r); n++) {
		q[n].id = atoll(PQgetvalue(r, n, 0));
		snprintf(q[n].name, sizeof q[n].name, "%s", PQgetvalue(r, n, 1));
		snprintf(q[n].event, sizeof q[n].event, "%s", PQgetvalue(r, n, 2));
		snprintf(q[n].detail, sizeof q[n].detail, "%s", PQgetvalue(r, n, 3));
		q[n].at = atof(PQgetvalue(r, n, 4));
	}
	PQclear(r);
	return n;
}

/* A channel's try of one change: taken or not, counted.  One statement. */
static void or_pg_alert_delivered(int channel, long long id, int ok)
{
	char i[32];
	const char *p[2] = { i, ok ? "t" : "f" };

	snprintf(i, sizeof i, "%lld", id);
	or_pg_must(channel == 0 ? "UPDATE alert_log SET delivered_cmd = $2::boolean, tries = tries + 1 WHERE id = $1::bigint"
	                        : "UPDATE alert_log SET delivered_hook = $2::boolean, tries = tries + 1 WHERE id = $1::bigint",
	           2, p);
	OR_STEP();
}

/* Whether this host delivers the queued changes now: one host at a time
 * (a session's advisory lock, let go with the connection if the host
 * dies), so a change goes to each channel once, as on one host (at least
 * once: a host killed between a channel's call and its record gives that
 * change again).  1 when taken; or_pg_alert_release lets it go. */
static int or_pg_alert_take(void)
{
	PGresult *r = or_pg_rows("SELECT pg_try_advisory_lock(" OR_PG_ALERT_LOCK ")", 0, NULL);
	int mine = !strcmp(PQgetvalue(r, 0, 0), "t");

	PQclear(r);
	return mine;
}

static void or_pg_alert_release(void)
{
	PQclear(or_pg_rows("SELECT pg_advisory_unlock(" OR_PG_ALERT_LOCK ")", 0, NULL));
}

/* This host's last finished run, the jobs per state (as folders) and the
 * oldest due job's wait. */
static void or_pg_snap_spool(const struct or_config *cfg, int last_run, struct or_snap *sn)
{
	char t[32];
	const char *p[1] = { cfg->host_name }, *pn[1] = { or_pg_num(t, sizeof t, sn->now) };
	PGresult *r;

	if (last_run) {
		r = or_pg_rows("SELECT id, started_at, coalesce(ended_at, started_at) - started_at, claimed, sent, deferred, "
		               "failed, 0, held FROM runs WHERE host = $1 AND state = 'done' ORDER BY started_at DESC LIMIT 1",
		               1, p);
		if (PQntuples(r)) {
			snprintf(sn->run.id, sizeof sn->run.id, "%s", PQgetvalue(r, 0, 0));
			sn->run.started = atof(PQgetvalue(r, 0, 1));
			sn->run.duration = atof(PQgetvalue(r, 0, 2));
			long long *v[] = { &sn->run.claimed, &sn->run.sent, &sn->run.deferred, &sn->run.failed, &sn->run.bad,
			                   &sn->run.held };
			for (int i = 0; i < 6; i++)
				*v[i] = atoll(PQgetvalue(r, 0, 3 + i));
		}
		PQclear(r);
	}
	/* a count over the jobs the ledger keeps: no retention runs on this store yet */
	r = or_pg_rows("SELECT state, count(*) FROM jobs WHERE state NOT IN ('requeued', 'ingest') GROUP BY state", 0, NULL);
	for (int i = 0; i < PQntuples(r); i++)
		sn->folder[or_state_dir(PQgetvalue(r, i, 0), 0)] += atoll(PQgetvalue(r, i, 1));
	PQclear(r);
	r = or_pg_rows("SELECT coalesce(min(next_due), -1) FROM jobs WHERE state = 'waiting' AND next_due <= $1::float8",
	               1, pn);
	double oldest = atof(PQgetvalue(r, 0, 0));
	sn->oldest_waiting = oldest < 0 ? 0 : sn->now - oldest;
	PQclear(r);
}

static int or_pg_client_cmp(const void *a, const void *b)
{
	return strcmp(((const struct or_snap_client *)a)->name, ((const struct or_snap_client *)b)->name);
}

/* A client's row: its sends today and pending jobs from r (client, today,
 * pending), 0 when r has no row for it. */
static void or_pg_snap_client(struct or_snap *sn, const char *name, PGresult *r)
{
	struct or_snap_client *c;

	sn->clients = or_snap_grow(sn->clients, sn->nclients, sizeof *sn->clients);
	c = memset(&sn->clients[sn->nclients++], 0, sizeof *sn->clients);
	c->name = or_xstrdup(name);
	for (int k = 0; k < PQntuples(r); k++)
		if (!strcmp(PQgetvalue(r, k, 0), name))
			c->sent_today = atoll(PQgetvalue(r, k, 1)), c->pending = atoll(PQgetvalue(r, k, 2));
}

/* Every row of a query: ncols text columns, then the number. */
static void or_pg_snap_rows(const char *sql, int ncols, struct or_snap_rows *out)
{
	PGresult *r = or_pg_rows(sql, 0, NULL);

	for (int i = 0; i < PQntuples(r); i++) {
		out->row = or_snap_grow(out->row, out->n, sizeof *out->row);
		struct or_snap_row *row = memset(&out->row[out->n++], 0, sizeof *out->row);
		for (int k = 0; k < ncols && k < 4; k++)
			row->col[k] = or_xstrdup(PQgetvalue(r, i, k));
		row->v = atof(PQgetvalue(r, i, ncols));
	}
	PQclear(r);
}

/* Each sender's count and cap today (this store has no sender states: a
 * sender is enabled, on its primary account), the clients' and the
 * campaigns' rows, the counters. */
static void or_pg_snap_senders_clients(const struct or_config *cfg, struct or_snap *sn)
{
	int day = or_day_number((time_t)sn->now, cfg->timezone);
	struct or_sender_state st[OR_MAX_SENDERS];
	char dy[16];
	const char *p[1] = { dy };
	PGresult *r;

	snprintf(dy, sizeof dy, "%d", day);
	sn->nsenders = cfg->nsenders;
	or_pg_sender_states(cfg, st);
	r = or_pg_rows("SELECT name, failures, open_until, paused_until, coalesce(reason, '') FROM accounts", 0, NULL);
	for (int i = 0; i < cfg->nproviders; i++)
		for (int k = 0; k < PQntuples(r); k++)
			if (!strcmp(PQgetvalue(r, k, 0), cfg->providers[i].name)) {
				struct or_account *a = &sn->accounts[i];
				a->failures = atoi(PQgetvalue(r, k, 1));
				a->open_until = atof(PQgetvalue(r, k, 2));
				a->paused_until = atof(PQgetvalue(r, k, 3));
				snprintf(a->reason, sizeof a->reason, "%s", PQgetvalue(r, k, 4));
			}
	PQclear(r);
	r = or_pg_rows("SELECT name, n FROM day_counts WHERE kind = 's' AND day = $1::int", 1, p);
	for (int i = 0; i < cfg->nsenders; i++) {
		struct or_snap_sender *x = &sn->senders[i];
		x->s = &cfg->senders[i];
		x->enabled = st[i].enabled;
		snprintf(x->reason, sizeof x->reason, "%s", st[i].reason);
		double blocked[OR_MAX_PROVIDERS];
		for (int k = 0; k < cfg->nproviders; k++) {
			const struct or_account *a = &sn->accounts[k];
			blocked[k] = a->open_until > sn->now || a->paused_until > sn->now;
		}
		x->account = or_pg_sender_account(x->s, blocked);
		x->cap_today = or_sender_cap(x->s, &st[i], day);
		x->warmup_day = or_sender_warmup_day(x->s, &st[i], day);
		for (int k = 0; k < PQntuples(r); k++)
			if (!strcmp(PQgetvalue(r, k, 0), x->s->name))
				x->sent_today = atoi(PQgetvalue(r, k, 1));
	}
	PQclear(r);
	/* today's sends per client: the jobs holding a unit of today (the
	 * client counter, where a client has a cap, counts the same ones) */
	r = or_pg_rows("SELECT client, count(*) FILTER (WHERE state IN ('claimed', 'sending', 'sent', 'held') AND "
	               "slot_day = $1::int), count(*) FILTER (WHERE state IN ('waiting', 'claimed', 'sending')) FROM jobs "
	               "WHERE client IS NOT NULL AND client <> '' GROUP BY client", 1, p);
	for (int i = 0; i < cfg->nclients; i++)
		or_pg_snap_client(sn, cfg->clients[i].name, r);
	for (int i = 0; i < PQntuples(r); i++)
		if (!or_client_find(cfg, PQgetvalue(r, i, 0)))
			or_pg_snap_client(sn, PQgetvalue(r, i, 0), r);
	PQclear(r);
	qsort(sn->clients, (size_t)sn->nclients, sizeof *sn->clients, or_pg_client_cmp);
	for (int i = 0; i < sn->nclients; i++) {
		if (sn->clients[i].pending <= 0)
			continue;
		struct or_snap_rows *cp = &sn->client_pending;
		cp->row = or_snap_grow(cp->row, cp->n, sizeof *cp->row);
		struct or_snap_row *row = memset(&cp->row[cp->n++], 0, sizeof *cp->row);
		row->col[0] = or_xstrdup(sn->clients[i].name);
		row->v = (double)sn->clients[i].pending;
	}
}

/* The campaigns' jobs by state (no provider events on this store yet) and
 * the counters; in SQLite's byte order (COLLATE "C"), as its reports are. */
static void or_pg_snap_campaigns(struct or_snap *sn)
{
	/* the job counts, then the provider events counted per campaign (SQLite's columns) */
	PGresult *r = or_pg_rows("WITH j AS (SELECT client, coalesce(campaign, '') AS campaign, count(*) FILTER (WHERE state "
	                         "= 'sent') s, count(*) FILTER (WHERE state = 'failed') f, count(*) FILTER (WHERE state IN "
	                         "('waiting', 'claimed', 'sending')) p, count(*) FILTER (WHERE state = 'held') h FROM jobs "
	                         "WHERE client <> '' AND state NOT IN ('duplicate', 'bad') GROUP BY 1, 2), e AS (SELECT "
	                         "client, campaign, sum(n) FILTER (WHERE kind = 'event:delivered') d, sum(n) FILTER (WHERE "
	                         "kind = 'event:bounced') b, sum(n) FILTER (WHERE kind = 'event:complained') c, sum(n) "
	                         "FILTER (WHERE kind = 'event:opened') o, sum(n) FILTER (WHERE kind = 'event:clicked') k, "
	                         "sum(n) FILTER (WHERE kind = 'event:unsubscribed') u FROM counters WHERE kind LIKE "
	                         "'event:%' GROUP BY 1, 2) SELECT j.client, j.campaign, s, f, p, h, coalesce(d, 0), "
	                         "coalesce(b, 0), coalesce(c, 0), coalesce(o, 0), coalesce(k, 0), coalesce(u, 0) FROM j "
	                         "LEFT JOIN e USING (client, campaign) ORDER BY j.client COLLATE \"C\", j.campaign "
	                         "COLLATE \"C\"", 0, NULL);

	for (int i = 0; i < PQntuples(r); i++) {
		sn->campaigns = or_snap_grow(sn->campaigns, sn->ncampaigns, sizeof *sn->campaigns);
		struct or_snap_campaign *c = memset(&sn->campaigns[sn->ncampaigns++], 0, sizeof *sn->campaigns);
		long long *v[] = { &c->sent, &c->failed, &c->pending, &c->held, &c->delivered, &c->bounced,
		                   &c->complained, &c->opened, &c->clicked, &c->unsubscribed };
		c->client = or_xstrdup(PQgetvalue(r, i, 0));
		c->name = or_xstrdup(PQgetvalue(r, i, 1));
		for (int k = 0; k < 10; k++)
			*v[k] = atoll(PQgetvalue(r, i, 2 + k));
	}
	PQclear(r);
	or_pg_snap_rows("SELECT client, campaign, sender, n FROM counters WHERE kind = 'sent' ORDER BY client COLLATE "
	                "\"C\", campaign COLLATE \"C\", sender COLLATE \"C\"", 3, &sn->sent);
	or_pg_snap_rows("SELECT client, campaign, n FROM counters WHERE kind = 'failed' ORDER BY client COLLATE \"C\", "
	                "campaign COLLATE \"C\"", 2, &sn->failed);
	or_pg_snap_rows("SELECT client, campaign, substr(kind, 7), n FROM counters WHERE kind LIKE 'event:%' ORDER BY "
	                "client COLLATE \"C\", campaign COLLATE \"C\", kind COLLATE \"C\"", 3, &sn->events);
	or_pg_snap_rows("SELECT count(*) FROM events WHERE job_id IS NULL", 0, &sn->unmatched);
	or_pg_snap_rows("SELECT account, last_success FROM feeds WHERE list = '' AND last_success IS NOT NULL ORDER BY "
	                "account COLLATE \"C\"", 1, &sn->feeds);
}

/* The pauses in each report's form, as SQLite's or_snap_read_pauses_alerts
 * gives them: status.txt's ('*' any), status.json's objects, the
 * Prometheus rows ('' any). */
static void or_pg_snap_pauses(struct or_snap *sn)
{
	PGresult *r = or_pg_rows("SELECT client, campaign, sender, reason, " OR_PG_TIME("since") " FROM pauses ORDER BY "
	                         "client COLLATE \"C\", campaign COLLATE \"C\", sender COLLATE \"C\"", 0, NULL);

	for (int i = 0; i < PQntuples(r); i++) {
		struct or_snap_rows *set[3] = { &sn->pauses_text, &sn->pauses_json, &sn->pauses };
		struct or_snap_row *row[3];
		for (int k = 0; k < 3; k++) {
			set[k]->row = or_snap_grow(set[k]->row, set[k]->n, sizeof *set[k]->row);
			row[k] = memset(&set[k]->row[set[k]->n++], 0, sizeof *row[k]);
		}
		struct or_buf j = { 0 };
		static const char *const key[] = { "client", "campaign", "sender" };
		for (int c = 0; c < 3; c++) {
			const char *v = PQgetvalue(r, i, c);
			row[0]->col[c] = or_xstrdup(*v ? v : "*");
			row[2]->col[c] = or_xstrdup(v);
			or_buf_printf(&j, "%s\"%s\":", c ? "," : "{", key[c]);
			if (*v)
				or_json_str(&j, v);
			else
				or_buf_puts(&j, "null");
		}
		row[0]->col[3] = or_xstrdup(PQgetvalue(r, i, 3));
		row[2]->v = 1;
		or_buf_printf(&j, ",\"since\":\"%s\",\"reason\":", PQgetvalue(r, i, 4));
		if (PQgetisnull(r, i, 3))
			or_buf_puts(&j, "null}");
		else
			or_json_str(&j, PQgetvalue(r, i, 3)), or_buf_puts(&j, "}");
		row[1]->col[0] = j.s;
	}
	PQclear(r);
}

/* or_store_snapshot on the shared ledger (see there): one read-only
 * transaction at REPEATABLE READ, so every count is of the same committed
 * ledger while other hosts commit.  Writes nothing. */
static void or_pg_snapshot(const struct or_config *cfg, double now, int last_run, struct or_snap *sn)
{
	memset(sn, 0, sizeof *sn);
	sn->now = now;
	or_pg_must("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
	or_pg_snap_spool(cfg, last_run, sn);
	or_pg_snap_senders_clients(cfg, sn);
	or_pg_snap_campaigns(sn);
	or_pg_snap_pauses(sn);
	or_pg_snap_hosts(cfg, sn);
	or_pg_snap_alerts(sn);
	or_pg_must("COMMIT", 0, NULL);
}
#endif

/* ================================================================
 * STORE (PostgreSQL): operator commands and retention
 *
 * show, suppress, requeue, cancel, pause and resume on the shared ledger,
 * from any host (requeue bad only on the host whose bad/ holds the file),
 * and the hourly retention one host does for all.  Each write is one
 * transaction; every job's state changes through or_pg_job_move.
 * ================================================================ */
#if OR_PG

/* show: the job's row and its attempts as one JSON object, SQLite's keys in
 * SQLite's order and form (PostgreSQL builds it, the JSON connection makes
 * it compact); NULL when there is no such job.  A read. */
static char *or_pg_show(const char *id)
{
	const char *p[1] = { id };
	char *json = NULL;
	PGresult *r = or_pg_rows("SELECT json_build_object('id', id, 'producer_id', producer_id, 'state', state, "
	                         "'client', client, 'campaign', campaign, 'to', rcpt, 'sender', sender, 'account', account, "
	                         "'attempts', attempts, 'created_at', " OR_PG_TIME("created_at") ", 'updated_at', "
	                         OR_PG_TIME("updated_at") ", 'next_due', " OR_PG_TIME("next_due") ", 'slot_at', "
	                         OR_PG_TIME("slot_at") ", 'sent_at', " OR_PG_TIME("sent_at") ", 'message_id', message_id, "
	                         "'provider_id', provider_id, 'last_error', last_error, 'dup_of', dup_of, 'history', "
	                         "(SELECT coalesce(json_agg(json_build_object('at', " OR_PG_TIME("a.at") ", 'sender', "
	                         "a.sender, 'account', a.account, 'outcome', a.outcome, 'provider_id', a.provider_id, "
	                         "'message_id', a.message_id, 'reason', a.reason) ORDER BY a.at), '[]') FROM attempts a "
	                         "WHERE a.job_id = jobs.id)) FROM jobs WHERE id = $1", 1, p);

	if (PQntuples(r) == 1) {
		const char *j[1] = { PQgetvalue(r, 0, 0) };
		json = or_json_sql("SELECT json(?1)", j, 1);
	}
	PQclear(r);
	return json;
}

/* plan's inputs from the shared ledger, as or_store_plan_load reads them
 * from SQLite: the jobs not yet sent (follow-ups are not on this store),
 * each sender's state (a paused sender is not enabled), its units today
 * and its last slot, each client's sends today.  A read, statement by
 * statement; decides no quota. */
static void or_pg_plan_load(const struct or_config *cfg, int today, struct or_plan *p)
{
	char dy[16];
	const char *pd[1] = { dy };
	PGresult *r;

	memset(p, 0, sizeof *p);
	snprintf(dy, sizeof dy, "%d", today);
	r = or_pg_rows("SELECT coalesce(client, ''), coalesce(campaign, ''), coalesce(win_days, 0), coalesce(win_start, 0), "
	               "coalesce(win_end, 0), coalesce(win_tz, ''), coalesce(pin, ''), EXISTS (SELECT 1 FROM pauses x WHERE "
	               "x.sender = '' AND x.client IN ('', jobs.client) AND x.campaign IN ('', coalesce(jobs.campaign, ''))), "
	               "next_due FROM jobs WHERE state IN ('waiting', 'claimed', 'sending') ORDER BY next_due, created_at",
	               0, NULL);
	for (int i = 0; i < PQntuples(r); i++)
		or_plan_job_put(p, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), (unsigned)atoi(PQgetvalue(r, i, 2)),
		                atoi(PQgetvalue(r, i, 3)), atoi(PQgetvalue(r, i, 4)), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6),
		                !strcmp(PQgetvalue(r, i, 7), "t"), atof(PQgetvalue(r, i, 8)));
	PQclear(r);
	or_pg_sender_states(cfg, p->ss);
	r = or_pg_rows("SELECT s.name, s.last_slot_at, coalesce(d.n, 0) FROM senders s LEFT JOIN day_counts d ON d.kind = "
	               "'s' AND d.name = s.name AND d.day = $1::int", 1, pd);
	for (int i = 0; i < cfg->nsenders; i++)
		for (int k = 0; k < PQntuples(r); k++)
			if (!strcmp(PQgetvalue(r, k, 0), cfg->senders[i].name)) {
				p->last_slot[i] = atof(PQgetvalue(r, k, 1));
				p->sent_today[i] = atoi(PQgetvalue(r, k, 2));
			}
	PQclear(r);
	p->client_sent = or_xrealloc(NULL, sizeof *p->client_sent * (size_t)(p->ncl ? p->ncl : 1));
	r = or_pg_rows("SELECT client, count(*) FROM jobs WHERE state IN ('claimed', 'sending', 'sent', 'held') AND "
	               "slot_day = $1::int GROUP BY client", 1, pd);
	for (int c = 0; c < p->ncl; c++) {
		p->client_sent[c] = 0;
		for (int k = 0; k < PQntuples(r); k++)
			if (!strcmp(PQgetvalue(r, k, 0), p->cl[c]))
				p->client_sent[c] = atoi(PQgetvalue(r, k, 1));
	}
	PQclear(r);
}

/* The last 30 days' sends by client and account, as or_store_plan_sent. */
static void or_pg_plan_sent(double now, struct or_plan *p)
{
	char a[32], b[32];
	const char *pr[2] = { or_pg_num(a, sizeof a, now - OR_PLAN_COST_DAYS * 86400.0), or_pg_num(b, sizeof b, now) };
	PGresult *r = or_pg_rows("SELECT coalesce(client, ''), coalesce(account, ''), count(*) FROM jobs WHERE state IN "
	                         "('sent', 'held') AND coalesce(sent_at, updated_at) >= $1::float8 AND coalesce(sent_at, "
	                         "updated_at) < $2::float8 GROUP BY 1, 2 ORDER BY coalesce(client, '') COLLATE \"C\", coalesce(account, '') COLLATE \"C\"", 2, pr);

	for (int i = 0; i < PQntuples(r); i++) {
		struct or_psent *x;
		p->sent = or_xrealloc(p->sent, sizeof *p->sent * (size_t)(p->nsent + 1));
		x = &p->sent[p->nsent++];
		snprintf(x->client, sizeof x->client, "%s", PQgetvalue(r, i, 0));
		snprintf(x->account, sizeof x->account, "%s", PQgetvalue(r, i, 1));
		x->n = atoll(PQgetvalue(r, i, 2));
	}
	PQclear(r);
}

/* render JOB_ID: the job's body (its file's bytes, as ingested on any
 * host), a new string; NULL when there is no such job or it has none.  A
 * read. */
static char *or_pg_job_body(const char *id)
{
	const char *p[1] = { id };
	PGresult *r = or_pg_rows("SELECT body FROM jobs WHERE id = $1 AND body IS NOT NULL", 1, p);
	char *body = PQntuples(r) ? or_xstrdup(PQgetvalue(r, 0, 0)) : NULL;

	PQclear(r);
	return body;
}

/* suppress list (created_at as a number) or export (as RFC 3339): every
 * suppression of client ("" all), by address then client, in byte order
 * as SQLite sorts.  A read.  Returns the number of rows. */
static int or_pg_suppress_rows(const char *client, int export, or_suppression_fn fn, void *arg)
{
	const char *p[1] = { client };
	PGresult *r = or_pg_rows("SELECT address, client, coalesce(reason, ''), coalesce(source, ''), "
	                         OR_PG_TIME("created_at") ", coalesce(created_at, 0) FROM suppressions WHERE $1 = '' OR "
	                         "client = $1 ORDER BY address COLLATE \"C\", client COLLATE \"C\"", 1, p);
	int n = PQntuples(r);

	for (int i = 0; i < n; i++) {
		struct or_suppression s = { PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
		                            PQgetvalue(r, i, 3), export ? PQgetvalue(r, i, 4) : NULL,
		                            export ? 0 : atof(PQgetvalue(r, i, 5)) };
		fn(arg, &s);
	}
	PQclear(r);
	return n;
}

/* suppress add and import: the rows (addresses canonicalised here, as
 * SQLite's or_suppress does) in one transaction, all or none; an address
 * already suppressed for its client is left as it is.  Returns how many
 * were new. */
static int or_pg_suppress_add(const struct or_suppress_new *rows, int n, double now)
{
	char t[32], canon[OR_MAX_ADDR * 2 + 1];
	int added = 0;

	or_pg_num(t, sizeof t, now);
	or_pg_must("BEGIN", 0, NULL);
	for (int i = 0; i < n; i++) {
		or_addr_canon(rows[i].address, canon, sizeof canon);
		const char *p[5] = { canon, rows[i].client ? rows[i].client : "", rows[i].reason, rows[i].source, t };
		added += or_pg_must("INSERT INTO suppressions (address, client, reason, source, created_at) VALUES ($1, $2, "
		                    "$3, $4, $5::float8) ON CONFLICT DO NOTHING", 5, p);
	}
	or_pg_must("COMMIT", 0, NULL);
	return added;
}

/* suppress remove: one address's suppression for client exactly. */
static void or_pg_suppress_remove(const char *canon, const char *client)
{
	const char *p[2] = { canon, client };

	or_pg_must("DELETE FROM suppressions WHERE address = $1 AND client = $2", 2, p);
}

/* requeue: the ids of the jobs in state, oldest first, handed to fn; bad
 * ones only of this host (their files are in its bad/).  A read. */
static void or_pg_requeue_candidates(const struct or_config *cfg, const char *state,
                                     void (*fn)(void *arg, const char *id), void *arg)
{
	const char *p[2] = { state, cfg->host_name };
	PGresult *r = or_pg_rows("SELECT id FROM jobs WHERE state = $1 AND ($1 <> 'bad' OR host = $2) "
	                         "ORDER BY created_at, id", 2, p);

	for (int i = 0; i < PQntuples(r); i++)
		fn(arg, PQgetvalue(r, i, 0));
	PQclear(r);
}

/* requeue one job: held and failed wait again, due now, with no sender
 * or slot (failed with its attempts and age started over); bad becomes
 * requeued, its file already moved back to this host's new/ by the
 * caller.  One statement; a job that changed state meanwhile is left. */
static void or_pg_requeue(const char *id, int from, double now)
{
	char t[32];
	const char *v[1] = { or_pg_num(t, sizeof t, now) };

	if (from == OR_D_BAD)
		or_pg_job_move(id, OR_S_BAD, OR_S_REQUEUED, NULL, "updated_at = $5::float8", 1, v);
	else
		or_pg_job_move(id, from == OR_D_FAILED ? OR_S_FAILED : OR_S_HELD, OR_S_WAITING, NULL,
		               from == OR_D_FAILED ? "updated_at = $5::float8, next_due = $5::float8, run_id = NULL, "
		               "sender = NULL, account = NULL, slot_at = NULL, slot_day = NULL, created_at = $5::float8, "
		               "attempts = 0" : "updated_at = $5::float8, next_due = $5::float8, run_id = NULL, sender = NULL, "
		               "account = NULL, slot_at = NULL, slot_day = NULL", 1, v);
}

/* Retention on the shared ledger, at most once an hour cluster-wide: the
 * host whose UPDATE of kv's housekept_at passes its WHERE first does it (a
 * second host's UPDATE waits on the row, then finds it moved and matches
 * nothing), in that one transaction: jobs settled (sent, suppressed,
 * duplicate, requeued) before retention_days go with their attempts, 5,000
 * an hour at most (failed and bad rows stay, as on SQLite, until a person
 * looks); day counters older than four days, finished runs and alert
 * changes before the cutoff.  The counters Prometheus reads are rows of
 * their own, so no _total goes back.  A crash before COMMIT deletes
 * nothing: done again at the next tick. */
static void or_pg_housekeep(const struct or_config *cfg, double now)
{
	char t[32], h[32], c[32], d[16];
	const char *p[2] = { or_pg_num(t, sizeof t, now), or_pg_num(h, sizeof h, now - 3600) };
	const char *pc[1] = { or_pg_num(c, sizeof c, now - cfg->retention_days * 86400.0) }, *pd[1] = { d };

	snprintf(d, sizeof d, "%d", or_day_number((time_t)now, cfg->timezone) - 4);
	or_pg_must("INSERT INTO kv (key, value) VALUES ('housekept_at', '0') ON CONFLICT DO NOTHING", 0, NULL);
	or_pg_must("BEGIN", 0, NULL);
	if (!or_pg_must("UPDATE kv SET value = $1 WHERE key = 'housekept_at' AND value::float8 < $2::float8", 2, p)) {
		or_pg_must("ROLLBACK", 0, NULL);
		return;
	}
	or_pg_must("WITH r AS (SELECT id FROM jobs WHERE state IN ('sent', 'suppressed', 'duplicate', 'requeued') AND "
	           "updated_at < $1::float8 ORDER BY updated_at LIMIT 5000), a AS (DELETE FROM attempts WHERE job_id IN "
	           "(SELECT id FROM r)) DELETE FROM jobs WHERE id IN (SELECT id FROM r)", 1, pc);
	or_pg_must("DELETE FROM day_counts WHERE day < $1::int", 1, pd);
	or_pg_must("DELETE FROM group_slots WHERE at < $1::float8 - 7200", 1, p);   /* past every group's window */
	or_pg_must("DELETE FROM runs WHERE started_at < $1::float8 AND state <> 'running'", 1, pc);
	or_pg_must("DELETE FROM alert_log WHERE at < $1::float8", 1, pc);
	or_pg_must("COMMIT", 0, NULL);
	OR_STEP();
}

/* pause: a scope ("" for a part not given) that no claim of any host takes
 * from its next claim on; pausing it again only replaces the reason.
 * resume: that scope's pause lifted; how many it removed (0: none). */
static void or_pg_pause(const char *client, const char *campaign, const char *sender, const char *reason, double now)
{
	char t[32];
	const char *p[5] = { client, campaign, sender, or_pg_num(t, sizeof t, now), reason };

	or_pg_must("INSERT INTO pauses (client, campaign, sender, since, reason) VALUES ($1, $2, $3, $4::float8, $5) "
	           "ON CONFLICT (client, campaign, sender) DO UPDATE SET reason = EXCLUDED.reason", 5, p);
}

static int or_pg_resume(const char *client, const char *campaign, const char *sender)
{
	const char *p[3] = { client, campaign, sender };

	return or_pg_must("DELETE FROM pauses WHERE client = $1 AND campaign = $2 AND sender = $3", 3, p);
}

/* cancel: the scope's waiting jobs (client, campaign: NULL any) failed
 * with why, through cancelling as the table has it, in one transaction.
 * A job a claim holds right now is skipped (SKIP LOCKED): that claim wins,
 * as a claim made before a cancel on SQLite does.  Returns how many. */
static int or_pg_cancel(const char *client, const char *campaign, const char *why, double now)
{
	char t[32];
	const char *p[2] = { client, campaign }, *v[2] = { why, or_pg_num(t, sizeof t, now) };
	PGresult *r;
	int n = 0;

	or_pg_must("BEGIN", 0, NULL);
	r = or_pg_rows("SELECT id FROM jobs WHERE state = 'waiting' AND ($1::text IS NULL OR client = $1) AND "
	               "($2::text IS NULL OR campaign = $2) ORDER BY id FOR UPDATE SKIP LOCKED", 2, p);
	for (int i = 0; i < PQntuples(r); i++) {
		const char *id = PQgetvalue(r, i, 0);
		if (or_pg_job_move(id, OR_S_WAITING, OR_S_CANCELLING, NULL, "last_error = $5, updated_at = $6::float8", 2, v))
			n += or_pg_job_move(id, OR_S_CANCELLING, OR_S_FAILED, NULL, NULL, 0, NULL);
	}
	PQclear(r);
	or_pg_must("COMMIT", 0, NULL);
	return n;
}
#endif

/* ================================================================
 * STORE (PostgreSQL): provider feeds and domain health
 *
 * The FEEDBACK section's store operations on the shared ledger.  An
 * account's feed is pulled by one run of one host at a time: a lease row
 * per account (feed_leases), taken by the database's clock together with
 * the due check, so two hosts never pull the same account at once, and a
 * host that died mid-pull holds it only until its lease lapses.  Every
 * page commits only while the lease still holds (the page's first
 * statement renews it and locks its row): a run whose lease passed to
 * another writes nothing more, and an SQS message it did not delete comes
 * back.  Events are stored once by key whoever pulled them; a held job an
 * event proves delivered is settled in the page's transaction (no file
 * stands behind it).  Domain health is judged from the ledger's sends and
 * events under the alert lock, once for every host.
 * ================================================================ */
#if OR_PG

static char or_pg_feed_owner[OR_MAX_LABEL + 40];   /* "host:pid": whose lease a pull holds */
static double or_pg_feed_lease_s;                   /* how long each renewal holds it */

/* Text from a provider made safe for a text column (PostgreSQL refuses
 * bytes that are not UTF-8, which would stop the feed at that event for
 * good): at most n - 1 bytes, each byte of an invalid sequence a '?'.
 * NULL stays NULL. */
static const char *or_pg_text(const char *s, char *out, size_t n)
{
	size_t j = 0;

	if (!s)
		return NULL;
	while (*s && j + 1 < n) {
		unsigned char c = (unsigned char)*s;
		size_t k = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (k > 1 && !or_utf8_valid(s, k)) {   /* reads no further than the first byte that breaks it (a NUL does) */
			out[j++] = '?';
			s++;
			continue;
		}
		if (j + k >= n)
			break;
		memcpy(out + j, s, k);
		j += k, s += k;
	}
	out[j] = 0;
	return out;
}

/* The account's feed lease for this run when its feed is due (force: due
 * now): one statement, so two hosts that both see it due cannot both take
 * it, and the attempt is stamped as the lease is taken (a pull that dies
 * leaves the feed due again an interval later).  seconds: the pull's
 * budget; the lease holds that, plus the longest wait for a statement.
 * 1 when this run may pull it. */
static int or_pg_feed_take(const struct or_config *cfg, const struct or_provider *p, int force, double seconds,
                           double now)
{
	char s[32], t[32], iv[32];
	const char *v[6] = { p->name, or_pg_feed_owner, s, force ? "true" : "false", t, iv };

	if (!*or_pg_feed_owner)
		snprintf(or_pg_feed_owner, sizeof or_pg_feed_owner, "%s:%ld", cfg->host_name, (long)getpid());
	or_pg_feed_lease_s = seconds + OR_PG_ANSWER_S;
	snprintf(s, sizeof s, "%.3f", or_pg_feed_lease_s);
	or_pg_num(t, sizeof t, now);
	or_pg_num(iv, sizeof iv, p->feed_interval);
	return or_pg_must("INSERT INTO feed_leases (account, owner, lease_until, last_attempt) VALUES ($1, $2, "
	                  "clock_timestamp() + $3::float8 * interval '1 second', $5::float8) ON CONFLICT (account) DO "
	                  "UPDATE SET owner = $2, lease_until = excluded.lease_until, last_attempt = $5::float8 WHERE "
	                  "feed_leases.lease_until <= clock_timestamp() AND ($4::boolean OR feed_leases.last_attempt <= "
	                  "$5::float8 - $6::float8)", 6, v) == 1;
}

/* When the account's feed was last taken by any host (0 never): whether
 * it looks due.  A read; or_pg_feed_take decides. */
static double or_pg_feed_last_attempt(const char *account)
{
	PGresult *r = or_pg_rows("SELECT last_attempt FROM feed_leases WHERE account = $1", 1,
	                         (const char *const[]){ account });
	double t = PQntuples(r) ? atof(PQgetvalue(r, 0, 0)) : 0;

	PQclear(r);
	return t;
}

/* The lease renewed and its row locked, first in a page's transaction: 0
 * when it lapsed (another host may hold it now). */
static int or_pg_feed_fence(const char *account)
{
	char s[32];
	const char *v[3] = { account, or_pg_feed_owner, s };

	snprintf(s, sizeof s, "%.3f", or_pg_feed_lease_s);
	return or_pg_must("UPDATE feed_leases SET lease_until = clock_timestamp() + $3::float8 * interval '1 second' "
	                  "WHERE account = $1 AND owner = $2 AND lease_until > clock_timestamp()", 3, v) == 1;
}

/* The first column of a lookup's first row into job (left as it is when
 * there is no row). */
static void or_pg_event_job_row(const char *sql, int n, const char *const *v, char job[OR_ID_HEX + 1])
{
	PGresult *r = or_pg_rows(sql, n, v);

	if (PQntuples(r) > 0)
		snprintf(job, OR_ID_HEX + 1, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
}

/* Which job an event is about, in or_event_job's order: its tags, the
 * provider's id, the Message-ID as delivered, the last send to the address
 * from that account, or the last send of that campaign to it.  Strings
 * already made safe (or_pg_text); job "" when none matches. */
static void or_pg_event_job(const struct or_provider *p, const struct or_event *ev, const char *rcpt,
                            const char *hint, const char *pid, const char *msgid, char job[OR_ID_HEX + 1])
{
	if (hint && *hint) {
		const char *v[1] = { hint };
		or_pg_event_job_row("SELECT id FROM jobs WHERE id = $1", 1, v, job);
	}
	if (!*job && pid && *pid)
		or_pg_event_job_row("SELECT id FROM jobs WHERE provider_id = $1 AND ($2 = '' OR rcpt = $2) ORDER BY sent_at "
		                    "DESC NULLS LAST LIMIT 1", 2, (const char *const[]){ pid, rcpt }, job);
	if (!*job && msgid && *msgid)
		or_pg_event_job_row("SELECT id FROM jobs WHERE message_id IN ($1, '<' || $1 || '>') LIMIT 1", 1,
		                    (const char *const[]){ msgid }, job);
	if (!*job && *rcpt && p)
		or_pg_event_job_row("SELECT id FROM jobs WHERE rcpt = $1 AND account = $2 AND state IN ('sent', 'held') "
		                    "ORDER BY coalesce(sent_at, updated_at) DESC LIMIT 1", 2,
		                    (const char *const[]){ rcpt, p->name }, job);
	if (!*job && *rcpt && ev->client)
		or_pg_event_job_row("SELECT id FROM jobs WHERE rcpt = $1 AND client = $2 AND ($3::text IS NULL OR campaign = "
		                    "$3) AND state IN ('sent', 'held') ORDER BY coalesce(sent_at, updated_at) DESC LIMIT 1", 3,
		                    (const char *const[]){ rcpt, ev->client, ev->campaign }, job);
}

/* One to a counter row (kind, client, campaign; no sender), as or_count. */
static void or_pg_count(const char *kind, const char *client, const char *campaign)
{
	or_pg_must("INSERT INTO counters VALUES ($1, $2, $3, '', 1) ON CONFLICT (kind, client, campaign, sender) DO "
	           "UPDATE SET n = counters.n + 1", 3, (const char *const[]){ kind, client ? client : "",
	           campaign ? campaign : "" });
}

/* An event joined to its job, as or_event_attach: the job's fields onto
 * the event's row, the event counted, the client (and the address, when
 * the event had none) taken from the job, and a held job the event proves
 * delivered settled as sent here, in the page's transaction. */
static void or_pg_event_attach(const struct or_event *ev, const char *key, const char *job, char *client, size_t cn,
                               char *rcpt, size_t rn, double now)
{
	char kind[40], t[32];
	PGresult *r;

	/* the job's fields onto the event and back to the caller, in one statement */
	r = or_pg_rows("UPDATE events e SET job_id = j.id, client = j.client, campaign = j.campaign, sender = j.sender, "
	               "rcpt = coalesce(e.rcpt, j.rcpt) FROM jobs j WHERE j.id = $1 AND e.event_key = $2 RETURNING "
	               "coalesce(j.client, ''), j.rcpt, j.state, coalesce(j.campaign, '')", 2, (const char *const[]){ job, key });
	if (PQntuples(r) == 1) {
		snprintf(client, cn, "%s", PQgetvalue(r, 0, 0));
		if (or_event_count_kind(ev->type, kind, sizeof kind))
			or_pg_count(kind, client, PQgetvalue(r, 0, 3));
		if (!*rcpt)
			snprintf(rcpt, rn, "%s", PQgetvalue(r, 0, 1));
		if (!strcmp(PQgetvalue(r, 0, 2), "held") && or_event_settles(ev->type) &&
		    or_pg_job_move(job, OR_S_HELD, OR_S_SENT, NULL, "updated_at = $5::float8, sent_at = coalesce(sent_at, "
		                   "$5::float8), last_error = $6", 2, (const char *const[]){ or_pg_num(t, sizeof t, now),
		                   "settled: the provider reported an event for it" }))
			or_log(2, "event=settled job=%s", job);
	}
	PQclear(r);
}

/* One address onto the suppression list (canonical form) for client (""
 * every client), once.  Inside the caller's transaction. */
static void or_pg_suppress(const char *addr, const char *client, const char *why, const char *source, double now)
{
	char canon[OR_MAX_ADDR * 2 + 1], t[32];

	or_addr_canon(addr, canon, sizeof canon);
	or_pg_must("INSERT INTO suppressions (address, client, reason, source, created_at) VALUES ($1, $2, $3, $4, "
	           "$5::float8) ON CONFLICT DO NOTHING", 5, (const char *const[]){ canon, client ? client : "", why,
	           source, or_pg_num(t, sizeof t, now) });
}

/* The event's address suppressed as or_event_suppression says: at once,
 * or after the account's soft_bounce_limit soft bounces since its last
 * delivery. */
static void or_pg_event_suppress(const struct or_config *cfg, const struct or_provider *p, const struct or_event *ev,
                                 const char *rcpt, const char *client, double now)
{
	const char *scope, *source;
	char why[400], safe[400], w2[500];
	PGresult *r;
	int soft;

	or_event_why(ev, why, sizeof why);
	or_pg_text(why, safe, sizeof safe);
	switch (or_event_suppression(cfg, p, ev, client, &scope, &source)) {
	case OR_SUPPRESS_NOW:
		or_pg_suppress(rcpt, scope, safe, source, now);
		break;
	case OR_SUPPRESS_SOFT:
		r = or_pg_rows("SELECT count(*) FROM events WHERE rcpt = $1 AND type = 'soft_bounce' AND at > coalesce((SELECT "
		               "max(at) FROM events WHERE rcpt = $1 AND type = 'delivered'), 0)", 1, (const char *const[]){ rcpt });
		soft = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
		if (soft < p->soft_bounce_limit)
			break;
		snprintf(w2, sizeof w2, "%d soft bounces in a row; last: %s", p->soft_bounce_limit, safe);
		or_pg_suppress(rcpt, NULL, w2, p->name, now);
		break;
	}
}

/* Stores one event and applies its effects, as or_event_record, inside the
 * page's transaction: the row once (by key, whichever host pulled it), its
 * job found and joined, the address suppressed.  1 if it was new. */
static int or_pg_event_record(const struct or_config *cfg, const struct or_provider *p, const struct or_event *ev,
                              double now)
{
	char rcpt[OR_MAX_ADDR + 1] = "", job[OR_ID_HEX + 1] = "", client[OR_MAX_LABEL + 1] = "", at[32], t[32];
	char key[600], sub[200], pid[300], detail[1200], msgid[1000], hint[80];
	const char *k = or_pg_text(ev->key, key, sizeof key), *pi = or_pg_text(ev->provider_id, pid, sizeof pid);

	or_event_rcpt(ev, rcpt, sizeof rcpt);
	if (!or_pg_must("INSERT INTO events (event_key, account, type, subtype, at, rcpt, provider_id, detail, pulled_at) "
	                "VALUES ($1, $2, $3, $4, $5::float8, nullif($6, ''), $7, $8, $9::float8) ON CONFLICT DO NOTHING", 9,
	                (const char *const[]){ k, p ? p->name : "local", ev->type, or_pg_text(ev->subtype, sub, sizeof sub),
	                or_pg_num(at, sizeof at, ev->at), rcpt, pi, or_pg_text(ev->detail, detail, sizeof detail),
	                or_pg_num(t, sizeof t, now) }))
		return 0;
	or_pg_event_job(p, ev, rcpt, or_pg_text(ev->job_hint, hint, sizeof hint), pi,
	                or_pg_text(ev->msgid, msgid, sizeof msgid), job);
	if (!*job && ev->client) {   /* an unsubscribe token's client: kept, the unsubscribe counted */
		snprintf(client, sizeof client, "%s", ev->client);
		or_pg_must("UPDATE events SET client = $2, campaign = $3 WHERE event_key = $1", 3,
		           (const char *const[]){ k, ev->client, ev->campaign });
		if (!strcmp(ev->type, "unsubscribed"))
			or_pg_count("event:unsubscribed", ev->client, ev->campaign);
	}
	if (*job)
		or_pg_event_attach(ev, k, job, client, sizeof client, rcpt, sizeof rcpt, now);
	if (*rcpt)
		or_pg_event_suppress(cfg, p, ev, rcpt, client, now);
	return 1;
}

/* A feed list's row, as or_feed_mark: the cursor (when given), the
 * attempt, its success or error.  Inside the caller's transaction. */
static void or_pg_feed_mark(const char *account, const char *list, const char *cursor, const char *error, double now)
{
	char t[32], e[700];

	or_pg_must("INSERT INTO feeds (account, list, cursor, last_attempt, last_success, last_error) VALUES ($1, $2, $3, "
	           "$5::float8, CASE WHEN $4::text IS NULL THEN $5::float8 END, $4) ON CONFLICT (account, list) DO UPDATE SET "
	           "cursor = coalesce($3, feeds.cursor), last_attempt = $5::float8, last_success = CASE WHEN $4::text IS "
	           "NULL THEN $5::float8 ELSE feeds.last_success END, last_error = $4", 5,
	           (const char *const[]){ account, list, cursor, or_pg_text(error, e, sizeof e), or_pg_num(t, sizeof t, now) });
}

/* One page of a feed, as or_store_feed_page: BEGIN, the lease renewed (or
 * the page dropped, -1: the lease lapsed), the events recorded, the list's
 * cursor when it moved, COMMIT.  A crash before the COMMIT leaves nothing:
 * an SQS message not yet deleted comes back, a cursor feed is read again
 * from its old cursor, and the events are stored once either way.  The
 * new events' count. */
static int or_pg_feed_page(const struct or_config *cfg, const struct or_provider *p, const char *list,
                           const char *newcur, const struct or_events *evs, double now)
{
	int n = 0;

	or_pg_must("BEGIN", 0, NULL);
	if (!or_pg_feed_fence(p->name)) {
		or_pg_must("ROLLBACK", 0, NULL);
		or_log(0, "event=feed account=%s error=\"the feed's lease lapsed (another host may pull it): page dropped, "
		       "read again later\"", p->name);
		return -1;
	}
	for (int i = 0; i < evs->n; i++)
		n += or_pg_event_record(cfg, p, &evs->v[i], now);
	if (newcur && *newcur)
		or_pg_feed_mark(p->name, list, newcur, NULL, now);
	or_pg_must("COMMIT", 0, NULL);
	OR_STEP();
	return n;
}

/* The end of an account's pull: its attempt and error (NULL a success) on
 * its row, and the lease let go, in one transaction.  A crash before it
 * leaves the lease to lapse. */
static void or_pg_feed_done(const char *account, const char *error, double now)
{
	or_pg_must("BEGIN", 0, NULL);
	or_pg_feed_mark(account, "", NULL, error, now);
	or_pg_must("UPDATE feed_leases SET lease_until = clock_timestamp() WHERE account = $1 AND owner = $2", 2,
	           (const char *const[]){ account, or_pg_feed_owner });
	or_pg_must("COMMIT", 0, NULL);
}

/* A feed list's cursor ("" when none).  A read: only the lease's holder
 * moves it. */
static void or_pg_feed_cursor(const char *account, const char *list, char *out, size_t n)
{
	PGresult *r = or_pg_rows("SELECT coalesce(cursor, '') FROM feeds WHERE account = $1 AND list = $2", 2,
	                         (const char *const[]){ account, list });

	out[0] = 0;
	if (PQntuples(r) == 1)
		snprintf(out, n, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
}

/* pull's lines: each account's last feed error ("ok"), whichever host
 * pulled it.  A read. */
static int or_pg_feeds_status(struct or_feed_status **out)
{
	PGresult *r = or_pg_rows("SELECT account, coalesce(last_error, 'ok') FROM feeds WHERE list = '' ORDER BY account "
	                         "COLLATE \"C\"", 0, NULL);
	int n = PQntuples(r);

	*out = n ? or_xrealloc(NULL, sizeof **out * (size_t)n) : NULL;
	for (int i = 0; i < n; i++) {
		(*out)[i].account = or_xstrdup(PQgetvalue(r, i, 0));
		(*out)[i].status = or_xstrdup(PQgetvalue(r, i, 1));
	}
	PQclear(r);
	return n;
}

/* The senders of a domain as a PostgreSQL text[] literal ({"a","b"}). */
static void or_pg_domain_senders(const struct or_config *cfg, const char *domain, struct or_buf *b)
{
	or_buf_puts(b, "{");
	for (int i = 0; i < cfg->nsenders; i++) {
		if (strcmp(cfg->senders[i].domain, domain))
			continue;
		or_buf_puts(b, b->len > 1 ? ",\"" : "\"");
		for (const char *c = cfg->senders[i].name; *c; c++)
			or_buf_printf(b, "%s%c", *c == '"' || *c == '\\' ? "\\" : "", *c);
		or_buf_puts(b, "\"");
	}
	or_buf_puts(b, "}");
}

/* Domain health as or_domain_health judges it, from the shared ledger:
 * hard bounces / sends and complaints / sends of the domain's senders, by
 * send time over [max(now - window, last enable), now], an account
 * suppression list's entries left out.  Reads. */
static void or_pg_domain_health(const struct or_config *cfg, const char *domain, double now, struct or_health *h)
{
	struct or_buf names = { 0 };
	char since[32], from[32];
	PGresult *r;

	or_pg_domain_senders(cfg, domain, &names);
	h->since = now - cfg->health_window_days * 86400.0;
	r = or_pg_rows("SELECT coalesce(max(since), 0) FROM senders WHERE enabled AND name = ANY($1::text[])", 1,
	               (const char *const[]){ names.s });
	if (atof(PQgetvalue(r, 0, 0)) > h->since)
		h->since = atof(PQgetvalue(r, 0, 0));
	PQclear(r);
	or_pg_num(since, sizeof since, h->since);
	or_pg_num(from, sizeof from, h->since - cfg->health_window_days * 86400.0);
	r = or_pg_rows("SELECT (SELECT count(*) FROM jobs WHERE sender = ANY($1::text[]) AND state IN ('sent', 'held') AND "
	               "sent_at >= $2::float8), count(*) FILTER (WHERE e.type = 'bounced'), count(*) FILTER (WHERE e.type "
	               "= 'complained') FROM events e JOIN jobs j ON j.id = e.job_id WHERE e.type IN ('bounced', "
	               "'complained') AND e.pulled_at >= $3::float8 AND j.sender = ANY($1::text[]) AND j.sent_at >= "
	               "$2::float8 AND coalesce(e.subtype, '') NOT IN ('OnAccountSuppressionList', "
	               "'account-suppression-list')", 3, (const char *const[]){ names.s, since, from });
	h->sends = atoll(PQgetvalue(r, 0, 0));
	h->bounces = atoll(PQgetvalue(r, 0, 1));
	h->complaints = atoll(PQgetvalue(r, 0, 2));
	PQclear(r);
	or_buf_free(&names);
}

/* Judges every sender domain's health (or_health_verdict) and disables the
 * senders of one over a threshold, raising sender_disabled:DOMAIN once for
 * all hosts: one transaction under the alert lock, so the figures and the
 * disabling agree and two hosts never judge at once.  A crash after it
 * leaves the senders disabled, the alert queued for delivery. */
static void or_pg_health_judge(const struct or_config *cfg, double now)
{
	or_pg_must("BEGIN", 0, NULL);
	or_pg_must("SELECT pg_advisory_xact_lock(" OR_PG_ALERT_LOCK ")", 0, NULL);
	for (int i = 0; i < cfg->nsenders; i++) {
		const char *domain = cfg->senders[i].domain;
		struct or_health h;
		char why[400], alert[320], t[32];
		if (!or_domain_first(cfg, i))
			continue;
		or_pg_domain_health(cfg, domain, now, &h);
		if (!or_health_verdict(cfg, &h, why, sizeof why))
			continue;
		for (int k = 0; k < cfg->nsenders; k++)
			if (!strcmp(cfg->senders[k].domain, domain))
				or_pg_must("INSERT INTO senders (name, enabled, reason, since) VALUES ($1, false, $2, $3::float8) ON "
				           "CONFLICT (name) DO UPDATE SET enabled = false, reason = $2 WHERE senders.enabled", 3,
				           (const char *const[]){ cfg->senders[k].name, why, or_pg_num(t, sizeof t, now) });
		snprintf(alert, sizeof alert, "sender_disabled:%s", domain);
		or_pg_alert_set(alert, why, 1, now);
	}
	or_pg_must("COMMIT", 0, NULL);
	OR_STEP();
}

/* 1 when some sender domain's required checks are older than a day (or
 * never ran) on the shared ledger.  Reads. */
static int or_pg_domains_stale(const struct or_config *cfg, double now)
{
	char t[32];
	int stale = 0;

	or_pg_num(t, sizeof t, now - 86400);
	for (int i = 0; i < cfg->nsenders && !stale; i++) {
		PGresult *r = or_pg_rows("SELECT 1 FROM domain_checks WHERE domain = $1 AND at > $2::float8", 2,
		                         (const char *const[]){ cfg->senders[i].domain, t });
		stale = PQntuples(r) == 0;
		PQclear(r);
	}
	return stale;
}

/* The domain checks' verdicts kept for a day, each domain's domain_check
 * alert raised or cleared, as or_store_domain_checks: one transaction under
 * the alert lock, so two hosts that checked at once record one change.  A
 * domain the DNS did not answer for is left as it was.  A crash before the
 * COMMIT: the checks run again at the next tick. */
static void or_pg_domain_checks(const struct or_domain_verdict *v, int n, double now)
{
	char t[32], why[700];

	or_pg_num(t, sizeof t, now);
	or_pg_must("BEGIN", 0, NULL);
	or_pg_must("SELECT pg_advisory_xact_lock(" OR_PG_ALERT_LOCK ")", 0, NULL);
	for (int d = 0; d < n; d++) {
		char alert[320];
		if (v[d].unknown) {   /* the DNS did not answer: judge again next run, keep senders as they are */
			or_log(1, "event=domains domain=%s error=\"the DNS did not answer in time\"", v[d].domain);
			continue;
		}
		or_pg_text(v[d].why ? v[d].why : "", why, sizeof why);   /* from the DNS: untrusted text */
		size_t rn = v[d].report ? strlen(v[d].report) + 1 : 1;
		char *rep = or_xrealloc(NULL, rn);   /* whole: the report is JSON */
		or_pg_must("INSERT INTO domain_checks (domain, ok, report, reason, at) VALUES ($1, $2::boolean, $3, $4, "
		           "$5::float8) ON CONFLICT (domain) DO UPDATE SET ok = excluded.ok, report = excluded.report, reason = "
		           "excluded.reason, at = excluded.at", 5, (const char *const[]){ v[d].domain, v[d].ok ? "true" : "false",
		           v[d].report ? or_pg_text(v[d].report, rep, rn) : NULL, why, t });
		free(rep);
		snprintf(alert, sizeof alert, "domain_check:%.255s", v[d].domain);
		or_pg_alert_set(alert, why, !v[d].ok, now);
	}
	or_pg_must("COMMIT", 0, NULL);
}
#endif

/* ================================================================
 * PROVIDERS
 *
 * A provider takes one built message and answers with a verdict: OR_OK with
 * the provider's message id, OR_TEMP (try later), OR_PERM (never), or
 * OR_DOUBT (the peer may have taken it: held).  `why` gets a one-line reason.
 * ================================================================ */


/* file: the message as DIR/<ledger-id>.eml; a resend of the same job never
 * overwrites an earlier copy (<id>.2.eml, …), so duplicates stay visible. */
static void or_file_send(const struct or_provider *p, const char *id, const struct or_buf *msg,
                         struct or_send_result *r)
{
	int dfd, rc = 1;
	char name[64];

	if (mkdir(p->dir, 0750) == -1 && errno != EEXIST) {
		r->v = OR_TEMP;
		snprintf(r->why, sizeof r->why, "%.400s: %s", p->dir, strerror(errno));
		return;
	}
	if ((dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		r->v = OR_TEMP;
		snprintf(r->why, sizeof r->why, "%.400s: %s", p->dir, strerror(errno));
		return;
	}
	for (int k = 1; rc == 1 && k < 1000; k++) {
		if (k == 1)
			snprintf(name, sizeof name, "%s.eml", id);
		else
			snprintf(name, sizeof name, "%s.%d.eml", id, k);
		rc = or_write_atomic(dfd, name, msg->s, msg->len, OR_W_NOREPLACE);
	}
	close(dfd);
	if (rc != 0) {
		r->v = OR_TEMP;
		snprintf(r->why, sizeof r->why, "%.400s: %s", p->dir, rc < 0 ? strerror(errno) : "too many copies");
		return;
	}
	r->v = OR_OK;
	snprintf(r->provider_id, sizeof r->provider_id, "%s", name);
}

/* Keeps the first line (up to n-1 bytes) of a stream read in pieces. */
static void or_first_line(char *dst, size_t n, size_t *have, int *done, const char *p, size_t len)
{
	for (size_t i = 0; i < len && !*done; i++) {
		if (p[i] == '\n' || p[i] == '\r') {
			*done = *have > 0;
			continue;
		}
		if (*have + 1 < n)
			dst[(*have)++] = p[i];
		dst[*have] = 0;
	}
}

/* An exec provider's child while it runs: its three pipes (-1 once
 * closed), how much of the message went in, the first lines it wrote. */
struct or_exec_io {
	int in[2], out[2], errp[2];
	size_t off, oh, eh;
	int od, ed;
	char errline[512];
};

/* Pipes and the child, which runs argv with them as stdin, stdout and
 * stderr; its pid, or -1 with the reason in r (a temporary failure). */
static pid_t or_exec_spawn(const struct or_provider *p, struct or_exec_io *io, struct or_send_result *r)
{
	pid_t pid;

	if (pipe2(io->in, O_CLOEXEC) || pipe2(io->out, O_CLOEXEC) || pipe2(io->errp, O_CLOEXEC)) {
		r->v = OR_TEMP;
		snprintf(r->why, sizeof r->why, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		r->v = OR_TEMP;
		snprintf(r->why, sizeof r->why, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		dup2(io->in[0], 0);
		dup2(io->out[1], 1);
		dup2(io->errp[1], 2);
		signal(SIGPIPE, SIG_DFL);
		execv(p->argv[0], p->argv);
		fprintf(stderr, "cannot run %s: %s\n", p->argv[0], strerror(errno));
		_exit(127);
	}
	close(io->in[0]); close(io->out[1]); close(io->errp[1]);
	io->in[0] = io->out[1] = io->errp[1] = -1;
	fcntl(io->in[1], F_SETFL, O_NONBLOCK);
	return pid;
}

/* One ready pipe: more of the message into stdin, or a piece of stdout
 * (the provider id) or stderr (the reason); a pipe at its end is closed. */
static void or_exec_ready(struct or_exec_io *io, int fd, const struct or_buf *msg, struct or_send_result *r)
{
	char buf[4096];
	ssize_t k;

	if (fd == io->in[1]) {
		k = write(io->in[1], msg->s + io->off, msg->len - io->off);
		if (k > 0)
			io->off += (size_t)k;
		if ((k < 0 && errno != EAGAIN && errno != EINTR) || io->off == msg->len) {
			close(io->in[1]);
			io->in[1] = -1;
		}
		return;
	}
	k = read(fd, buf, sizeof buf);
	if (k <= 0 && !(k < 0 && errno == EINTR)) {
		close(fd);
		if (fd == io->out[0]) io->out[0] = -1; else io->errp[0] = -1;
		return;
	}
	if (k > 0 && fd == io->out[0])
		or_first_line(r->provider_id, sizeof r->provider_id, &io->oh, &io->od, buf, (size_t)k);
	else if (k > 0)
		or_first_line(io->errline, sizeof io->errline, &io->eh, &io->ed, buf, (size_t)k);
}

/* Feeds and reads the child until it closes stdout and stderr; 1 when it
 * was killed for running past until, 0 otherwise. */
static int or_exec_pump(struct or_exec_io *io, pid_t pid, double until, const struct or_buf *msg,
                        struct or_send_result *r)
{
	while (io->out[0] >= 0 || io->errp[0] >= 0) {
		struct pollfd pf[3];
		int n = 0, left = (int)((until - or_mono()) * 1000);

		if (left <= 0) {
			kill(pid, SIGKILL);
			return 1;
		}
		if (io->in[1] >= 0)
			pf[n++] = (struct pollfd){ io->in[1], POLLOUT, 0 };
		if (io->out[0] >= 0)
			pf[n++] = (struct pollfd){ io->out[0], POLLIN, 0 };
		if (io->errp[0] >= 0)
			pf[n++] = (struct pollfd){ io->errp[0], POLLIN, 0 };
		if (poll(pf, (nfds_t)n, left) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++)
			if (pf[i].revents)
				or_exec_ready(io, pf[i].fd, msg, r);
	}
	return 0;
}

/* The verdict from how the child ended (see or_exec_send). */
static void or_exec_verdict(const struct or_provider *p, const struct or_exec_io *io, int status, int killed,
                            const struct or_buf *msg, struct or_send_result *r)
{
	if (killed) {
		r->v = OR_DOUBT;
		snprintf(r->why, sizeof r->why, "%s did not finish within %.0f s (killed; it may have "
		         "queued the message)", p->argv[0], p->timeout);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		r->v = OR_OK;
	} else if (WIFEXITED(status)) {
		r->v = WEXITSTATUS(status) == OR_EX_TEMPFAIL ? OR_TEMP : OR_PERM;
		snprintf(r->why, sizeof r->why, "%.200s exit %d%s%.250s", p->argv[0], WEXITSTATUS(status),
		         *io->errline ? ": " : "", io->errline);
	} else {
		r->v = io->off == msg->len ? OR_DOUBT : OR_TEMP;
		snprintf(r->why, sizeof r->why, "%.200s killed by signal %d%s%.250s", p->argv[0],
		         WTERMSIG(status), *io->errline ? ": " : "", io->errline);
	}
}

/* exec: the message on the command's stdin (argv, no shell).  Exit 0 sent
 * (first stdout line = provider id), 75 temporary, else permanent; first
 * stderr line is the reason.  Killed after the provider timeout: in doubt,
 * since it may already have queued the message. */
static void or_exec_send(const struct or_provider *p, const struct or_buf *msg,
                         struct or_send_result *r)
{
	struct or_exec_io io = { .in = { -1, -1 }, .out = { -1, -1 }, .errp = { -1, -1 } };
	int status = 0, killed;
	pid_t pid;
	double until = or_mono() + p->timeout;

	r->provider_id[0] = 0;
	if ((pid = or_exec_spawn(p, &io, r)) != -1) {
		killed = or_exec_pump(&io, pid, until, msg, r);
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		or_exec_verdict(p, &io, status, killed, msg, r);
	}
	for (int *fd = (int[]){ io.in[0], io.in[1], io.out[0], io.out[1], io.errp[0], io.errp[1], -2 }; *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
}

/* ---- HTTP and SMTP through libcurl ----
 *
 * Every request body goes out through a read callback whose seek callback
 * refuses to rewind once a byte was handed over: libcurl would otherwise
 * resend a POST on its own when a reused connection turns out dead, which
 * could deliver an email twice without the ledger knowing.  A failure after
 * the first body byte left (HTTP) or after DATA was accepted (SMTP) is in
 * doubt.  Responses are read up to OR_MAX_RESPONSE; redirects are never
 * followed; TLS is always verified. */

#define OR_MAX_RESPONSE (1024 * 1024)

struct or_http {
	CURL *easy;
	struct curl_slist *hdrs, *rcpt;
	struct or_buf body, resp, rhdr;
	size_t off;              /* body bytes handed to libcurl */
	int capped;              /* the response was cut at OR_MAX_RESPONSE */
	char errbuf[CURL_ERROR_SIZE];
	char url[1024];
};

static size_t or_http_read(char *dst, size_t size, size_t n, void *arg)
{
	struct or_http *h = arg;
	size_t k = h->body.len - h->off;

	if (k > size * n)
		k = size * n;
	memcpy(dst, h->body.s + h->off, k);
	h->off += k;
	return k;
}

static int or_http_seek(void *arg, curl_off_t offset, int origin)
{
	struct or_http *h = arg;

	if (origin == SEEK_SET && offset == 0 && h->off == 0)
		return CURL_SEEKFUNC_OK;
	return CURL_SEEKFUNC_CANTSEEK;   /* never resend a body that may have arrived */
}

static size_t or_http_write(char *p, size_t size, size_t n, void *arg)
{
	struct or_http *h = arg;

	if (h->resp.len + size * n > OR_MAX_RESPONSE) {
		h->capped = 1;
		return 0;   /* abort: an answer this large is not one we asked for */
	}
	or_buf_add(&h->resp, p, size * n);
	return size * n;
}

static size_t or_http_header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct or_http *h = arg;

	if (h->rhdr.len + size * n <= 65536)
		or_buf_add(&h->rhdr, p, size * n);
	return size * n;
}

static void or_http_free(struct or_http *h)
{
	if (!h)
		return;
	if (h->easy)
		curl_easy_cleanup(h->easy);
	curl_slist_free_all(h->hdrs);
	curl_slist_free_all(h->rcpt);
	or_buf_free(&h->body);
	or_buf_free(&h->resp);
	or_buf_free(&h->rhdr);
	free(h);
}

/* The value of the last response header `name` (case-insensitive). */
static int or_http_header(const struct or_http *h, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);
	const char *p = h->rhdr.s, *found = NULL;

	out[0] = 0;
	for (; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncasecmp(p, name, nl) && p[nl] == ':')
			found = p + nl + 1;
	if (!found)
		return -1;
	while (*found == ' ' || *found == '\t')
		found++;
	size_t k = strcspn(found, "\r\n");
	snprintf(out, n, "%.*s", (int)(k < n ? k : n - 1), found);
	return 0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" -> epoch seconds; -1 if not that form. */
OR_STATIC time_t or_parse_http_date(const char *s)
{
	struct tm tm = { 0 };
	const char *end;

	or_tz_use("UTC");
	end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return -1;
	return timegm(&tm);
}

/* A peer's "wait until" as a duration: absolute times are taken against the
 * response's own Date header (doc/design.md §9), so a skewed local clock or the
 * virtual clock does not distort them. */
static double or_http_wait(const struct or_http *h, time_t until)
{
	char date[128];
	time_t base = or_http_header(h, "Date", date, sizeof date) == 0 ? or_parse_http_date(date) : -1;

	if (base < 0)
		base = time(NULL);
	return until > base ? (double)(until - base) : 1;
}

/* Retry-After as seconds or an HTTP date; 0 when absent or unreadable. */
static double or_http_retry_after(const struct or_http *h)
{
	char v[128];
	time_t t;

	if (or_http_header(h, "Retry-After", v, sizeof v))
		return 0;
	if (*v && strspn(v, "0123456789") == strlen(v))
		return atof(v);
	if ((t = or_parse_http_date(v)) > 0)
		return or_http_wait(h, t);
	return 0;
}

static struct or_http *or_http_new(const struct or_provider *p, const char *url)
{
	struct or_http *h = or_xrealloc(NULL, sizeof *h);

	memset(h, 0, sizeof *h);
	snprintf(h->url, sizeof h->url, "%s", url);
	or_curl_init();
	if (!(h->easy = curl_easy_init()))
		or_oom();   /* its one failure: memory */
	curl_easy_setopt(h->easy, CURLOPT_URL, h->url);
	curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long)(p->timeout * 1000));
	curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(p->timeout < 10 ? p->timeout * 1000 : 10000));
	curl_easy_setopt(h->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (*p->ca_file)
		curl_easy_setopt(h->easy, CURLOPT_CAINFO, p->ca_file);
	curl_easy_setopt(h->easy, CURLOPT_PROTOCOLS_STR, p->type == OR_PROV_SMTP ? "smtp,smtps" : "http,https");
	curl_easy_setopt(h->easy, CURLOPT_READFUNCTION, or_http_read);
	curl_easy_setopt(h->easy, CURLOPT_READDATA, h);
	curl_easy_setopt(h->easy, CURLOPT_SEEKFUNCTION, or_http_seek);
	curl_easy_setopt(h->easy, CURLOPT_SEEKDATA, h);
	curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, or_http_write);
	curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(h->easy, CURLOPT_HEADERFUNCTION, or_http_header_cb);
	curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(h->easy, CURLOPT_USERAGENT, "outreach/" OR_VERSION);
	curl_easy_setopt(h->easy, CURLOPT_PRIVATE, h);
	return h;
}

/* A POST of h->body (Content-Length, never chunked) with the given headers. */
static void or_http_post(struct or_http *h)
{
	h->hdrs = curl_slist_append(h->hdrs, "Expect:");
	curl_easy_setopt(h->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->body.len);
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->hdrs);
	curl_easy_setopt(h->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
}

static void or_http_addheader(struct or_http *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void or_http_addheader(struct or_http *h, const char *fmt, ...)
{
	char line[8192];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	h->hdrs = curl_slist_append(h->hdrs, line);
	/* it may have held a key: the bytes written, not all 8 KiB (three
	 * headers a send zeroed 24 KiB, 2 % of its instructions) */
	sodium_memzero(line, n < 0 ? sizeof line : (size_t)n >= sizeof line ? sizeof line : (size_t)n + 1);
}

/* A tag value the provider accepts: ASCII letters, digits, '_' and '-'
 * (SES EmailTags' rule, the strictest of the three); others become '_'. */
static void or_tag_value(const char *in, char *out, size_t n)
{
	size_t j = 0;

	for (; *in && j + 1 < n && j < 250; in++)
		out[j++] = isalnum((unsigned char)*in) || *in == '-' || *in == '_' ? *in : '_';
	out[j] = 0;
	if (!j)
		snprintf(out, n, "_");
}

struct or_send_ctx {            /* what a provider needs to build one request */
	const struct or_config *cfg;
	const struct or_provider *p;
	const struct or_sender *snd;
	const struct or_job *job;
	const char *id;              /* ledger id */
	const struct or_buf *msg;    /* the whole MIME message */
	const char *msgid;
};

/* The wall clock as X-Amz-Date (never the virtual clock: AWS checks it). */
static void or_amz_date(char out[17])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* host[:port] of a URL, as the Host header carries it. */
static void or_url_host(const char *url, char *out, size_t n)
{
	const char *h = strstr(url, "://");

	h = h ? h + 3 : url;
	snprintf(out, n, "%.*s", (int)strcspn(h, "/?#"), h);
}

/* Signs h (a POST of h->body, or a GET when get) for an AWS service. */
static void or_aws_sign(const struct or_provider *p, struct or_http *h, const char *method, const char *path,
                        const char *service, const char *content_type)
{
	char host[300], date[17], hh[320], ct[128];
	const char *headers[2];
	int nh = 0;
	struct or_buf auth = { 0 };

	or_url_host(h->url, host, sizeof host);
	or_amz_date(date);
	snprintf(hh, sizeof hh, "host:%s", host);
	headers[nh++] = hh;
	if (content_type) {
		snprintf(ct, sizeof ct, "content-type:%s", content_type);
		headers[nh++] = ct;
		or_http_addheader(h, "Content-Type: %s", content_type);
	}
	struct or_sigv4_req r = { method, path, headers, nh, h->body.s ? h->body.s : "", h->body.len,
	                          p->region, service, p->access_key_id, p->secret, *p->token ? p->token : NULL, date };
	or_sigv4(&r, NULL, NULL, &auth);
	or_http_addheader(h, "X-Amz-Date: %s", date);
	or_http_addheader(h, "Authorization: %s", auth.s);
	if (*p->token)
		or_http_addheader(h, "X-Amz-Security-Token: %s", p->token);
	sodium_memzero(auth.s, auth.len);
	or_buf_free(&auth);
}

/* SES v2 SendEmail with the Raw message (SES keeps our MIME; it replaces
 * Message-ID), client/campaign/job as EmailTags, the configuration set. */
static struct or_http *or_ses_request(const struct or_send_ctx *x)
{
	char url[1024], tc[256], tk[256], *b64, *json;
	size_t b64len = sodium_base64_encoded_len(x->msg->len, sodium_base64_VARIANT_ORIGINAL);
	const char *cs = *x->snd->configuration_set ? x->snd->configuration_set : x->p->configuration_set;
	struct or_http *h;

	snprintf(url, sizeof url, "%s/v2/email/outbound-emails", x->p->endpoint);
	h = or_http_new(x->p, url);
	b64 = or_xrealloc(NULL, b64len);
	sodium_bin2base64(b64, b64len, (const unsigned char *)x->msg->s, x->msg->len, sodium_base64_VARIANT_ORIGINAL);
	or_tag_value(x->job->client, tc, sizeof tc);
	or_tag_value(x->job->campaign, tk, sizeof tk);
	const char *args[] = { b64, x->snd->from_addr, x->job->addr, tc, tk, x->id, cs };
	json = or_json_sql("SELECT json_object('FromEmailAddress', ?2, 'Destination', json_object('ToAddresses', "
	                   "json_array(?3)), 'Content', json_object('Raw', json_object('Data', ?1)), 'EmailTags', "
	                   "json_array(json_object('Name', 'client', 'Value', ?4), json_object('Name', 'campaign', "
	                   "'Value', ?5), json_object('Name', 'job', 'Value', ?6))) AS j", args, 7);
	free(b64);
	if (json && *cs) {
		const char *a2[] = { json, cs };
		char *j2 = or_json_sql("SELECT json_set(?1, '$.ConfigurationSetName', ?2)", a2, 2);
		free(json);
		json = j2;
	}
	if (!json) {
		or_http_free(h);
		return NULL;
	}
	or_buf_puts(&h->body, json);
	free(json);
	or_aws_sign(x->p, h, "POST", "/v2/email/outbound-emails", "ses", "application/json");
	or_http_post(h);
	return h;
}

/* The rendered subject, text and html of a job (for APIs that build the MIME
 * themselves).  Each buffer may stay empty. */
static int or_job_parts(const struct or_job *job, struct or_buf *subj, struct or_buf *text, struct or_buf *html)
{
	char err[200];

	if (or_render(job->subject, job, 0, subj, err, sizeof err) ||
	    (job->text && or_render(job->text, job, 0, text, err, sizeof err)) ||
	    (job->html && or_render(job->html, job, 1, html, err, sizeof err)))
		return -1;
	if (!*subj->s && job->re_subject) {   /* a reply without a subject of its own */
		subj->len = 0;
		or_buf_printf(subj, "%s%s", strncasecmp(job->re_subject, "Re:", 3) ? "Re: " : "", job->re_subject);
	}
	return 0;
}

/* The RFC 8058 pair as members of SendGrid's "headers" object (SendGrid
 * builds the MIME, so the one-click headers travel this way). */
static void or_sendgrid_unsub(const struct or_send_ctx *x, struct or_buf *hdrs)
{
	struct or_buf tok = { 0 }, v = { 0 };

	or_unsub_token(x->job->rcpt, x->job->client, x->job->campaign, &tok);
	or_buf_printf(&v, "<%s%st=%s>", x->cfg->unsub_url, strchr(x->cfg->unsub_url, '?') ? "&" : "?", tok.s);
	if (*x->cfg->unsub_mailto)
		or_buf_printf(&v, ", <mailto:%s?subject=unsubscribe%%20%s>", x->cfg->unsub_mailto, tok.s);
	or_buf_puts(hdrs, ",\"List-Unsubscribe\":");
	or_json_str(hdrs, v.s);
	or_buf_puts(hdrs, ",\"List-Unsubscribe-Post\":\"List-Unsubscribe=One-Click\"");
	or_buf_free(&tok);
	or_buf_free(&v);
}

/* SendGrid's "headers" object: the job id, our Message-ID, a reply's
 * threading, the job's own headers and the unsubscribe pair. */
static void or_sendgrid_headers(const struct or_send_ctx *x, struct or_buf *hdrs)
{
	or_buf_puts(hdrs, "{\"X-Outreach-Job\":");
	or_json_str(hdrs, x->id);
	or_buf_puts(hdrs, ",\"Message-ID\":");
	or_json_str(hdrs, x->msgid);
	if (x->job->in_reply_to && *x->job->in_reply_to) {
		or_buf_puts(hdrs, ",\"In-Reply-To\":");
		or_json_str(hdrs, x->job->in_reply_to);
		or_buf_puts(hdrs, ",\"References\":");
		or_json_str(hdrs, x->job->references && *x->job->references ? x->job->references : x->job->in_reply_to);
	}
	for (int i = 0; i < x->job->nheaders; i++) {
		or_buf_puts(hdrs, ",");
		or_json_str(hdrs, x->job->headers[i].key);
		or_buf_puts(hdrs, ":");
		or_json_str(hdrs, x->job->headers[i].val);
	}
	if (*x->cfg->unsub_url && or_key_loaded)
		or_sendgrid_unsub(x, hdrs);
	or_buf_puts(hdrs, "}");
}

/* {"email": addr, "name": name} with the name left out when empty. */
static void or_json_email(struct or_buf *b, const char *addr, const char *name)
{
	or_buf_puts(b, "{\"email\":");
	or_json_str(b, addr);
	if (name && *name) {
		or_buf_puts(b, ",\"name\":");
		or_json_str(b, name);
	}
	or_buf_puts(b, "}");
}

/* The mail/send body (malloc'd): the message object, with the sender's IP
 * pool and the job's Reply-To when there are any.  Built here rather than
 * by SQLite's json_object (it was 5 % of a send's instructions): every
 * string goes through or_json_str, hdrs is the object
 * or_sendgrid_headers built the same way. */
static char *or_sendgrid_body(const struct or_send_ctx *x, const struct or_buf *subj, const struct or_buf *text,
                              const struct or_buf *html, const struct or_buf *hdrs, const char *raddr,
                              const char *rname)
{
	struct or_buf b = { 0 };
	int parts = 0;

	or_buf_puts(&b, "{\"personalizations\":[{\"to\":[");
	or_json_email(&b, x->job->addr, x->job->to_name);
	or_buf_puts(&b, "],\"custom_args\":{\"client\":");
	or_json_str(&b, x->job->client ? x->job->client : "");
	or_buf_puts(&b, ",\"campaign\":");
	or_json_str(&b, x->job->campaign ? x->job->campaign : "");
	or_buf_puts(&b, ",\"job_id\":");
	or_json_str(&b, x->id ? x->id : "");
	or_buf_puts(&b, "}}],\"from\":");
	or_json_email(&b, x->snd->from_addr, x->snd->from_name);
	or_buf_puts(&b, ",\"subject\":");
	or_json_str(&b, subj->s ? subj->s : "");
	or_buf_puts(&b, ",\"content\":[");
	if (text->s && *text->s) {
		or_buf_puts(&b, "{\"type\":\"text/plain\",\"value\":");
		or_json_str(&b, text->s);
		or_buf_puts(&b, "}");
		parts++;
	}
	if (html->s && *html->s) {
		or_buf_puts(&b, parts ? ",{\"type\":\"text/html\",\"value\":" : "{\"type\":\"text/html\",\"value\":");
		or_json_str(&b, html->s);
		or_buf_puts(&b, "}");
	}
	or_buf_puts(&b, "],\"headers\":");
	or_buf_puts(&b, hdrs->s);
	or_buf_puts(&b, ",\"categories\":[");
	or_json_str(&b, x->job->client ? x->job->client : "");
	or_buf_puts(&b, ",");
	or_json_str(&b, x->job->campaign ? x->job->campaign : "");
	or_buf_puts(&b, "]");
	if (*x->snd->ip_pool) {
		or_buf_puts(&b, ",\"ip_pool_name\":");
		or_json_str(&b, x->snd->ip_pool);
	}
	if (*raddr) {
		or_buf_puts(&b, ",\"reply_to\":");
		or_json_email(&b, raddr, rname);
	}
	or_buf_puts(&b, "}");
	return b.s;
}

/* SendGrid v3 mail/send: JSON built by or_sendgrid_body; the
 * Message-ID we made travels as a header so the delivered one is ours. */
static struct or_http *or_sendgrid_request(const struct or_send_ctx *x)
{
	char url[1024], *json, raddr[OR_MAX_ADDR + 1] = "", rname[256] = "";
	struct or_buf subj = { 0 }, text = { 0 }, html = { 0 }, hdrs = { 0 };
	struct or_http *h = NULL;

	if (or_job_parts(x->job, &subj, &text, &html))
		goto out;
	if (x->job->reply_to)
		or_parse_mailbox(x->job->reply_to, raddr, sizeof raddr, rname, sizeof rname);
	or_sendgrid_headers(x, &hdrs);
	if (!(json = or_sendgrid_body(x, &subj, &text, &html, &hdrs, raddr, rname)))
		goto out;
	snprintf(url, sizeof url, "%s/v3/mail/send", x->p->endpoint);
	h = or_http_new(x->p, url);
	or_buf_puts(&h->body, json);
	free(json);
	or_http_addheader(h, "Authorization: Bearer %s", x->p->secret);
	or_http_addheader(h, "Content-Type: application/json");
	or_http_addheader(h, "Accept: application/json");
	or_http_post(h);
out:
	or_buf_free(&subj);
	or_buf_free(&text);
	or_buf_free(&html);
	or_buf_free(&hdrs);
	return h;
}

static void or_form_field(struct or_buf *b, const char *boundary, const char *name, const char *value)
{
	or_buf_printf(b, "--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n", boundary, name, value);
}

/* Mailgun messages.mime: our MIME as the "message" file part, client and
 * campaign as o:tag, the job as v: variables; basic auth api:KEY. */
static struct or_http *or_mailgun_request(const struct or_send_ctx *x)
{
	char url[1024], boundary[48], rnd[17], tc[256], tk[256];
	struct or_http *h;

	snprintf(url, sizeof url, "%s/v3/%s/messages.mime", x->p->endpoint,
	         *x->snd->mailgun_domain ? x->snd->mailgun_domain : x->p->domain);
	h = or_http_new(x->p, url);
	or_random_hex(rnd, 8);
	snprintf(boundary, sizeof boundary, "----outreach%s", rnd);
	or_tag_value(x->job->client, tc, sizeof tc);
	or_tag_value(x->job->campaign, tk, sizeof tk);
	or_form_field(&h->body, boundary, "to", x->job->addr);
	or_form_field(&h->body, boundary, "o:tag", tc);
	or_form_field(&h->body, boundary, "o:tag", tk);
	or_form_field(&h->body, boundary, "v:job_id", x->id);
	or_form_field(&h->body, boundary, "v:client", tc);
	or_form_field(&h->body, boundary, "v:campaign", tk);
	or_buf_printf(&h->body, "--%s\r\nContent-Disposition: form-data; name=\"message\"; filename=\"message.eml\"\r\n"
	              "Content-Type: message/rfc822\r\n\r\n", boundary);
	or_buf_add(&h->body, x->msg->s, x->msg->len);
	or_buf_printf(&h->body, "\r\n--%s--\r\n", boundary);
	or_http_addheader(h, "Content-Type: multipart/form-data; boundary=%s", boundary);
	or_http_addheader(h, "Accept: application/json");
	curl_easy_setopt(h->easy, CURLOPT_USERNAME, "api");
	curl_easy_setopt(h->easy, CURLOPT_PASSWORD, x->p->secret);
	or_http_post(h);
	return h;
}

/* The machine's fully qualified name: the host name when it has a dot, else
 * its canonical name from the resolver (/etc/hosts first); "" when neither has
 * one.  Looked up once: the name does not change while the process lives. */
static const char *or_system_fqdn(void)
{
	static char fqdn[256];
	static int looked;
	struct addrinfo hints = { .ai_flags = AI_CANONNAME }, *ai = NULL;
	char host[256] = "";

	if (looked)
		return fqdn;
	looked = 1;
	if (gethostname(host, sizeof host - 1))
		return fqdn;
	if (!strchr(host, '.') && getaddrinfo(host, NULL, &hints, &ai) == 0 && ai && ai->ai_canonname)
		snprintf(host, sizeof host, "%s", ai->ai_canonname);
	if (ai)
		freeaddrinfo(ai);
	if (strchr(host, '.') && or_ascii_printable(host) && or_domain_ok(host))
		snprintf(fqdn, sizeof fqdn, "%s", host);
	return fqdn;
}

/* The URL libcurl is given for an SMTP account: its path is the name sent
 * with EHLO (else libcurl sends the short host name, which relays with
 * reject_non_fqdn_helo_hostname refuse): 'helo', else the machine's FQDN,
 * else the sender's domain (domain may be NULL: then libcurl's default). */
static void or_smtp_url(const struct or_provider *p, const char *domain, char *out, size_t n)
{
	const char *name = *p->helo ? p->helo : *or_system_fqdn() ? or_system_fqdn() : domain ? domain : "";
	size_t len = strlen(p->url);

	if (len && p->url[len - 1] == '/')
		len--;
	snprintf(out, n, "%.*s/%s", (int)len, p->url, name);
}

/* SMTP: STARTTLS required on smtp:// (unless allow_plaintext on loopback),
 * AUTH when a username is set, one RCPT, the message as DATA. */
static struct or_http *or_smtp_request(const struct or_send_ctx *x)
{
	char from[OR_MAX_ADDR + 3], rcpt[OR_MAX_ADDR + 3], url[sizeof x->p->url + sizeof x->p->helo + 2];
	struct or_http *h;

	or_smtp_url(x->p, x->snd->domain, url, sizeof url);
	h = or_http_new(x->p, url);
	or_buf_add(&h->body, x->msg->s, x->msg->len);
	snprintf(from, sizeof from, "<%s>", x->snd->from_addr);
	snprintf(rcpt, sizeof rcpt, "<%s>", x->job->addr);
	h->rcpt = curl_slist_append(NULL, rcpt);
	curl_easy_setopt(h->easy, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h->easy, CURLOPT_MAIL_RCPT, h->rcpt);
	curl_easy_setopt(h->easy, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)h->body.len);
	curl_easy_setopt(h->easy, CURLOPT_USE_SSL,
	                 x->p->allow_plaintext && or_url_loopback(x->p->url) ? (long)CURLUSESSL_TRY : (long)CURLUSESSL_ALL);
	if (*x->p->username) {
		curl_easy_setopt(h->easy, CURLOPT_USERNAME, x->p->username);
		curl_easy_setopt(h->easy, CURLOPT_PASSWORD, x->p->secret);
	}
	return h;
}

/* The error code and message of an AWS JSON error answer. */
static void or_aws_error(const struct or_http *h, char *code, size_t cn, char *msg, size_t mn)
{
	char t[256];
	const char *args[] = { h->resp.s ? h->resp.s : "" };
	char *v;

	code[0] = msg[0] = 0;
	if (or_http_header(h, "x-amzn-ErrorType", t, sizeof t) == 0)
		snprintf(code, cn, "%.*s", (int)strcspn(t, ":"), t);
	if (!*code && (v = or_json_sql("SELECT coalesce(json_extract(?1, '$.__type'), json_extract(?1, '$.code'), "
	                                "json_extract(?1, '$.Code')) WHERE json_strict(?1)", args, 1))) {
		const char *hash = strrchr(v, '#');
		snprintf(code, cn, "%s", hash ? hash + 1 : v);
		free(v);
	}
	if ((v = or_json_sql("SELECT coalesce(json_extract(?1, '$.message'), json_extract(?1, '$.Message')) "
	                     "WHERE json_strict(?1)", args, 1))) {
		snprintf(msg, mn, "%s", v);
		free(v);
	}
}

static int or_contains_ci(const char *hay, const char *needle) { return strcasestr(hay, needle) != NULL; }

/* The RFC 3463 enhanced code after the basic one ("554 5.1.1 …"): class,
 * subject and detail; 0 when the reply has none, or one of another class. */
static int or_smtp_enhanced(long status, const char *msg, int *subject, int *detail)
{
	const char *e = msg + strspn(msg, "0123456789");
	char *end;
	long v[3];

	e += *e == ' ' || *e == '-';
	for (int i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)*e))
			return 0;
		v[i] = strtol(e, &end, 10);
		if (end - e > 3 || (i < 2 && *end != '.') || (i == 2 && *end && *end != ' '))
			return 0;
		e = end + (i < 2);
	}
	if (v[0] != status / 100)
		return 0;
	*subject = (int)v[1];
	*detail = (int)v[2];
	return (int)v[0];
}

/* An SMTP failure reply (4xx/5xx), by its enhanced code when it has one and
 * it says more than "undefined" (X.0.0), else by the basic code:
 *   5.1.1 bad mailbox, 5.1.2 bad domain, 5.1.3 bad address syntax, 5.1.6
 *   moved, 5.1.10 null MX, 5.2.1 disabled: the address is dead, suppressed;
 *   other 5.x.x (5.7.x policy, 5.2.2 full, 5.3.4 too big): failed, not
 *   suppressed; without one, 550/551/553 suppress.
 *   421 (the server sheds load and closes): the account is paused like 454
 *   and it counts toward the circuit, no attempt burned; 451 and other 4xx
 *   (greylisting, a local error at the server): the job retries. */
static void or_smtp_judge(long status, const char *msg, struct or_send_result *r)
{
	int subject = 0, detail = 0, cls = or_smtp_enhanced(status, msg, &subject, &detail);
	const char *after;

	r->v = status >= 500 ? OR_PERM : OR_TEMP;
	if (cls == 5 && (subject || detail))
		r->suppress = (subject == 1 && (detail == 1 || detail == 2 || detail == 3 || detail == 6 || detail == 10)) ||
		              (subject == 2 && detail == 1);
	else
		r->suppress = status == 550 || status == 551 || status == 553;
	r->throttled = status == 421 || status == 454 || or_contains_ci(msg, "throttl");
	r->transport = status == 421;
	if (r->throttled && (after = strcasestr(msg, "try again after ")))
		r->retry_after = atof(after + 16);
}

/* The SMTP reply that decided: the last line carrying the response code
 * (the QUIT reply "221 Bye" may come after it). */
static void or_smtp_reply_line(const struct or_http *h, CURLcode cc, long status, char *msg, size_t n)
{
	const char *l = h->rhdr.s ? h->rhdr.s : "", *line = "";
	char code3[8];

	snprintf(code3, sizeof code3, "%ld", status);
	for (; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (isdigit((unsigned char)*l) && (status <= 0 || !strncmp(l, code3, 3) || (cc == CURLE_OK && !strncmp(l, "250", 3))))
			line = l;
	snprintf(msg, n, "%.*s", (int)strcspn(line, "\r\n"), line);
}

/* The verdict for a finished SMTP transfer: sent, the account refused
 * (login, TLS, greeting, EHLO), the relay's 4xx/5xx, or no answer. */
static void or_smtp_classify(struct or_http *h, CURLcode cc, long status, struct or_send_result *r)
{
	char msg[300] = "", safe[300];

	or_smtp_reply_line(h, cc, status, msg, sizeof msg);
	or_safe(msg, safe, sizeof safe);
	if (cc == CURLE_OK) {
		const char *q = strcasestr(msg, "queued as ");
		r->v = OR_OK;
		if (q)
			snprintf(r->provider_id, sizeof r->provider_id, "%.*s", (int)strcspn(q + 10, " \r\n"), q + 10);
		if (or_has_ctl(r->provider_id))
			r->provider_id[0] = 0;
		return;
	}
	if (cc == CURLE_LOGIN_DENIED || status == 530 || status == 534 || status == 535 || status == 538 ||
	    or_contains_ci(msg, "not verified") || cc == CURLE_USE_SSL_FAILED) {
		r->v = OR_TEMP;
		r->account = 1;
		snprintf(r->why, sizeof r->why, "smtp account refused: %s (%s)", *safe ? safe : curl_easy_strerror(cc),
		         curl_easy_strerror(cc));
		return;
	}
	/* libcurl's code for a greeting that is not 2xx; the response code is the relay's */
	int greeting = cc == CURLE_WEIRD_SERVER_REPLY && status >= 500 && status < 600;
	if (greeting || cc == CURLE_REMOTE_ACCESS_DENIED || or_contains_ci(msg, "Helo command rejected")) {
		/* the relay refused our connection ("554 No SMTP service here"
		 * before EHLO) or our EHLO/HELO (libcurl's code for it; Postfix
		 * gives its HELO verdict at RCPT): every job of the account meets it */
		r->v = OR_TEMP;
		r->account = 1;
		snprintf(r->why, sizeof r->why, "%s: %s", greeting ? "smtp greeting refused (the relay does not serve this "
		         "client)" : "smtp EHLO/HELO refused (set the account's helo to a fully qualified name)",
		         *safe ? safe : curl_easy_strerror(cc));
		return;
	}
	if (status >= 400 && status < 600 && cc != CURLE_OPERATION_TIMEDOUT) {
		or_smtp_judge(status, msg, r);
		snprintf(r->why, sizeof r->why, "smtp %ld: %s", status, safe);
		return;
	}
	r->v = h->off > 0 ? OR_DOUBT : OR_TEMP;
	r->transport = 1;
	snprintf(r->why, sizeof r->why, "smtp: %s%s%s", curl_easy_strerror(cc), *h->errbuf ? ": " : "",
	         or_safe(h->errbuf, safe, sizeof safe));
}

/* The provider's own words for an answer: SES's error code (made safe) and
 * message, or the JSON body's message; msg stays "" without one. */
static void or_http_error_text(const struct or_provider *p, struct or_http *h, char *code, size_t cn,
                               char *msg, size_t mn)
{
	if (p->type == OR_PROV_SES) {
		char raw[128];
		or_aws_error(h, raw, sizeof raw, msg, mn);
		or_safe(raw, code, cn);   /* a peer's text: never raw into .err files or alerts */
	}
	else if (h->resp.s) {
		const char *args[] = { h->resp.s };
		char *v = or_json_sql("SELECT coalesce(json_extract(?1, '$.errors[0].message'), json_extract(?1, '$.message')) "
		                      "WHERE json_strict(?1)", args, 1);
		if (v) {
			snprintf(msg, mn, "%s", v);
			free(v);
		}
	}
}

/* A 2xx: sent, with the provider's id for the message where it gives one. */
static void or_http_accepted(const struct or_provider *p, struct or_http *h, struct or_send_result *r)
{
	char *v = NULL;
	const char *args[] = { h->resp.s ? h->resp.s : "" };

	r->v = OR_OK;
	if (p->type == OR_PROV_SES && (v = or_json_sql("SELECT json_extract(?1, '$.MessageId') WHERE json_strict(?1)", args, 1))) {
		snprintf(r->provider_id, sizeof r->provider_id, "%.200s", v);
		/* SES replaces Message-ID with its own id on the region's domain */
		snprintf(r->message_id, sizeof r->message_id, "<%.200s@%s.amazonses.com>", v,
		         strcmp(p->region, "us-east-1") ? p->region : "email");
		if (or_has_ctl(r->message_id) || strpbrk(v, "<> "))   /* it goes into replies' headers */
			r->message_id[0] = r->provider_id[0] = 0;
	} else if (p->type == OR_PROV_SENDGRID) {
		or_http_header(h, "X-Message-Id", r->provider_id, sizeof r->provider_id);
	} else if (p->type == OR_PROV_MAILGUN && (v = or_json_sql("SELECT json_extract(?1, '$.id') WHERE json_strict(?1)", args, 1))) {
		snprintf(r->provider_id, sizeof r->provider_id, "%.*s", (int)strcspn(v + (*v == '<'), ">"), v + (*v == '<'));
	}
	free(v);
	if (or_has_ctl(r->provider_id))
		r->provider_id[0] = 0;
}

/* Throttled: try later, after the wait the answer names (Retry-After,
 * X-RateLimit-Reset, "try again after N"), an hour for a daily quota. */
static void or_http_throttled(struct or_http *h, long status, const char *code, const char *msg,
                              const char *safe, struct or_send_result *r)
{
	char v[64];
	const char *after;

	r->v = OR_TEMP;
	r->throttled = 1;
	r->retry_after = or_http_retry_after(h);
	if (!r->retry_after && or_http_header(h, "X-RateLimit-Reset", v, sizeof v) == 0 && atoll(v) > 0)
		r->retry_after = or_http_wait(h, (time_t)atoll(v));
	if (!r->retry_after && (after = strcasestr(msg, "try again after ")))
		r->retry_after = atof(after + 16);
	if (or_contains_ci(msg, "daily message quota"))
		r->retry_after = r->retry_after > 3600 ? r->retry_after : 3600;
	snprintf(r->why, sizeof r->why, "throttled (%ld%s%s): %s", status, *code ? " " : "", code, safe);
}

/* An answer that is not 2xx: throttled, the account refused, the
 * provider's trouble or a redirect (all temporary), else rejected. */
static void or_http_refused(const struct or_provider *p, struct or_http *h, long status, const char *code,
                            const char *msg, const char *safe, struct or_send_result *r)
{
	int throttle_code = *code && (strstr(code, "Throttl") || !strcmp(code, "TooManyRequestsException") ||
	                              !strcmp(code, "RequestLimitExceeded") || !strcmp(code, "SlowDown"));
	int account_code = !strcmp(code, "AccountSuspendedException") || !strcmp(code, "SendingPausedException") ||
	                   !strcmp(code, "MailFromDomainNotVerifiedException") || !strcmp(code, "InvalidClientTokenId") ||
	                   !strcmp(code, "SignatureDoesNotMatch") || !strcmp(code, "AccessDeniedException") ||
	                   !strcmp(code, "UnrecognizedClientException") || or_contains_ci(msg, "not verified");
	if (status == 429 || throttle_code) {
		or_http_throttled(h, status, code, msg, safe, r);
	} else if (status == 401 || status == 403 || account_code || (p->type == OR_PROV_MAILGUN && status == 402)) {
		r->v = OR_TEMP;
		r->account = 1;
		snprintf(r->why, sizeof r->why, "account refused (%ld%s%s): %s", status, *code ? " " : "", code, safe);
	} else if (status >= 500) {
		r->v = OR_TEMP;
		r->transport = 1;
		snprintf(r->why, sizeof r->why, "provider error %ld%s%s: %s", status, *code ? " " : "", code, safe);
	} else if (status >= 300 && status < 400) {
		r->v = OR_TEMP;
		r->account = 1;
		snprintf(r->why, sizeof r->why, "endpoint answered with a redirect (%ld), not followed: check 'endpoint'", status);
	} else {
		r->v = OR_PERM;
		snprintf(r->why, sizeof r->why, "rejected (%ld%s%s): %s", status, *code ? " " : "", code, safe);
	}
}

/* Outcome of a finished HTTP or SMTP transfer, one table for every provider
 * (README has it in words).  Account-level refusals are judged before the
 * generic 4xx/5xx rules. */
OR_STATIC void or_http_classify(const struct or_provider *p, struct or_http *h, CURLcode cc, long status,
                                struct or_send_result *r)
{
	char code[128] = "", msg[300] = "", safe[300];

	if (cc == CURLE_OUT_OF_MEMORY)   /* the job's fault it is not: left in flight, as by a crash */
		or_oom();
	if (p->type == OR_PROV_SMTP) {
		or_smtp_classify(h, cc, status, r);
		return;
	}
	if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && h->capped && status > 0)) {
		/* no answer: before the body left it is safe to retry, after it is in doubt */
		r->v = h->off > 0 ? OR_DOUBT : OR_TEMP;
		r->transport = 1;
		snprintf(r->why, sizeof r->why, "%s%s%s%s", curl_easy_strerror(cc), *h->errbuf ? ": " : "",
		         or_safe(h->errbuf, safe, sizeof safe), h->off > 0 ? " (after the request was sent)" : "");
		return;
	}
	or_http_error_text(p, h, code, sizeof code, msg, sizeof msg);
	or_safe(msg, safe, sizeof safe);
	if (status >= 200 && status < 300)
		or_http_accepted(p, h, r);
	else
		or_http_refused(p, h, status, code, msg, safe, r);
}

/* A blocking request for the few calls outside the send path (GetAccount,
 * check-config --online).  Returns the HTTP status (or SMTP code), 0 when
 * there was no answer; the body is in h->resp, the reason in why. */
static long or_http_perform(struct or_http *h, char *why, size_t n)
{
	long status = 0;
	CURLcode cc = curl_easy_perform(h->easy);

	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && status > 0)) {
		char safe[300];
		snprintf(why, n, "%s%s%s", curl_easy_strerror(cc), *h->errbuf ? ": " : "", or_safe(h->errbuf, safe, sizeof safe));
		return cc == CURLE_LOGIN_DENIED ? 535 : 0;
	}
	snprintf(why, n, "HTTP %ld", status);
	return status;
}

/* SES GetAccount: what the account may send (MaxSendRate, Max24HourSend),
 * read at most once a day; it can only lower the plan.  When it cannot be
 * read the run plans with the configured rate and the report says so. */
static void or_ses_limits(const struct or_provider *p, double now)
{
	struct or_account a;
	struct or_http *h;
	char url[1024], why[400], note[600];
	long status;

	or_account_get(p->name, &a);
	if (a.limits_at > now - 86400)
		return;
	snprintf(url, sizeof url, "%s/v2/email/account", p->endpoint);
	h = or_http_new(p, url);
	curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long)(p->timeout < 10 ? p->timeout * 1000 : 10000));
	or_aws_sign(p, h, "GET", "/v2/email/account", "ses", NULL);
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->hdrs);
	status = or_http_perform(h, why, sizeof why);
	if (status == 200 && h->resp.s) {
		const char *args[] = { h->resp.s };
		char *rate = or_json_sql("SELECT json_extract(?1, '$.SendQuota.MaxSendRate') WHERE json_strict(?1)", args, 1);
		char *day = or_json_sql("SELECT json_extract(?1, '$.SendQuota.Max24HourSend') WHERE json_strict(?1)", args, 1);
		snprintf(note, sizeof note, "GetAccount: MaxSendRate %s/s, Max24HourSend %s", rate ? rate : "?", day ? day : "?");
		or_store_account_limits(p->name, 1, rate ? atof(rate) : 0.0, day ? atof(day) : -1.0, note, now);
		free(rate);
		free(day);
	} else {
		snprintf(note, sizeof note, "GetAccount failed (%s): planning with the configured rate", why);
		or_log(2, "event=limits account=%s note=\"%s\"", p->name, note);
		or_store_account_limits(p->name, 0, 0, 0, note, now);   /* try again in an hour, not every minute */
	}
	or_http_free(h);
}

/* A harmless call that proves an account works (check-config --online);
 * domain is a sender's of the account, or NULL. */
static int or_probe(const struct or_provider *p, const char *domain, char *out, size_t n)
{
	struct or_http *h = NULL;
	char url[1024], why[400];
	long status;

	switch (p->type) {
	case OR_PROV_FILE:
		if (mkdir(p->dir, 0750) == -1 && errno != EEXIST)
			return snprintf(out, n, "%s: %s", p->dir, strerror(errno)), -1;
		return snprintf(out, n, "%s is writable", p->dir), access(p->dir, W_OK) == 0 ? 0 : -1;
	case OR_PROV_EXEC:
		return snprintf(out, n, "%s %s", p->argv[0], access(p->argv[0], X_OK) == 0 ? "is executable" :
		                "is not executable"), access(p->argv[0], X_OK) == 0 ? 0 : -1;
	case OR_PROV_SES:
		snprintf(url, sizeof url, "%s/v2/email/account", p->endpoint);
		h = or_http_new(p, url);
		or_aws_sign(p, h, "GET", "/v2/email/account", "ses", NULL);
		curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->hdrs);
		break;
	case OR_PROV_SENDGRID:
		snprintf(url, sizeof url, "%s/v3/scopes", p->endpoint);
		h = or_http_new(p, url);
		or_http_addheader(h, "Authorization: Bearer %s", p->secret);
		or_http_addheader(h, "Accept: application/json");
		curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->hdrs);
		break;
	case OR_PROV_MAILGUN:
		snprintf(url, sizeof url, "%s/v4/domains/%s", p->endpoint, p->domain);
		h = or_http_new(p, url);
		curl_easy_setopt(h->easy, CURLOPT_USERNAME, "api");
		curl_easy_setopt(h->easy, CURLOPT_PASSWORD, p->secret);
		break;
	case OR_PROV_SMTP:
		or_smtp_url(p, domain, url, sizeof url);
		h = or_http_new(p, url);
		curl_easy_setopt(h->easy, CURLOPT_CUSTOMREQUEST, "NOOP");
		curl_easy_setopt(h->easy, CURLOPT_USE_SSL, p->allow_plaintext && or_url_loopback(p->url) ?
		                 (long)CURLUSESSL_TRY : (long)CURLUSESSL_ALL);
		if (*p->username) {
			curl_easy_setopt(h->easy, CURLOPT_USERNAME, p->username);
			curl_easy_setopt(h->easy, CURLOPT_PASSWORD, p->secret);
		}
		break;
	}
	curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long)(p->timeout < 15 ? p->timeout * 1000 : 15000));
	status = or_http_perform(h, why, sizeof why);
	if (status >= 200 && status < 300) {
		const char *args[] = { h->resp.s ? h->resp.s : "" };
		char *detail = p->type == OR_PROV_SES ?
			or_json_sql("SELECT 'sending ' || CASE json_extract(?1, '$.SendingEnabled') WHEN 1 THEN 'enabled' "
			            "ELSE 'DISABLED' END || ', MaxSendRate ' || json_extract(?1, '$.SendQuota.MaxSendRate') || "
			            "'/s, Max24HourSend ' || json_extract(?1, '$.SendQuota.Max24HourSend') WHERE json_strict(?1)", args, 1) :
			p->type == OR_PROV_SENDGRID ?
			or_json_sql("SELECT CASE WHEN EXISTS(SELECT 1 FROM json_each(?1, '$.scopes') WHERE value = 'mail.send') "
			            "THEN 'key has mail.send' ELSE 'key LACKS the mail.send scope' END WHERE json_strict(?1)", args, 1) :
			NULL;
		snprintf(out, n, "ok (%s)%s%s", why, detail ? ": " : "", detail ? detail : "");
		int bad = detail && (strstr(detail, "DISABLED") || strstr(detail, "LACKS"));
		free(detail);
		or_http_free(h);
		return bad ? -1 : 0;
	}
	snprintf(out, n, "FAILED: %s", why);
	or_http_free(h);
	return -1;
}

/* Builds the request for a remote provider, or NULL with r filled. */
static struct or_http *or_remote_request(const struct or_send_ctx *x, struct or_send_result *r)
{
	struct or_http *h = NULL;

	switch (x->p->type) {
	case OR_PROV_SES: h = or_ses_request(x); break;
	case OR_PROV_SENDGRID: h = or_sendgrid_request(x); break;
	case OR_PROV_MAILGUN: h = or_mailgun_request(x); break;
	case OR_PROV_SMTP: h = or_smtp_request(x); break;
	default: break;
	}
	if (!h) {
		r->v = OR_TEMP;
		snprintf(r->why, sizeof r->why, "cannot build the request for %s", x->p->name);
	}
	return h;
}

static void or_provider_send(const struct or_provider *p, const char *id, const struct or_buf *msg,
                             struct or_send_result *r)
{
	memset(r, 0, sizeof *r);
	switch (p->type) {
	case OR_PROV_FILE: or_file_send(p, id, msg, r); break;
	case OR_PROV_EXEC: or_exec_send(p, msg, r); break;
	default:
		r->v = OR_PERM;
		snprintf(r->why, sizeof r->why, "provider type not supported by this build");
	}
}

/* ================================================================
 * INGEST: new/ -> ledger -> defer/ (or bad/, or done/ as a duplicate)
 *
 * One ingester at a time (a lock on run/ingest.lock; a run that cannot take
 * it skips ingest).  Arrivals are recorded in batches, their rows final,
 * each listed in table arrivals with its name in new/ and its folder; after
 * the commit the files are renamed, the folders fsynced, and the list
 * cleared.  Claims skip listed jobs, and a crash in between is finished by
 * the next ingester from the list, so no arrival is read twice or lost.
 * ================================================================ */

static void or_err_file(int dir, const char *id, const char *reason)
{
	char name[64];
	struct or_buf b = { 0 };

	snprintf(name, sizeof name, "%s.err", id);
	or_buf_printf(&b, "%s\n", reason);
	if (or_write_atomic(or_dirfd[dir], name, b.s, b.len, 0) == -1)
		or_log(0, "event=error-file job=%s error=\"%s\"", id, strerror(errno));
	or_buf_free(&b);
}

static int or_dir_index(const char *target)
{
	for (int i = 0; i < OR_NDIRS; i++)
		if (strcmp(or_dir_names[i], target) == 0)
			return i;
	return OR_D_BAD;
}

/* Renames every arrival still listed in table arrivals to its folder, then
 * forgets the list.  Used after each batch and to finish a dead ingester's
 * batch.  Rows of listed jobs are already final; claims skip them until
 * their file has moved. */
static int or_ingest_finish(const struct or_config *cfg)
{
	struct or_listed *l;
	int n;

#if OR_PG
	n = cfg->store_pg ? or_pg_arrivals(cfg, &l) : or_store_arrivals(&l);
#else
	(void)cfg;
	n = or_store_arrivals(&l);
#endif
	for (int i = 0; i < n; i++) {
		char to[64];
		int dir = or_dir_index(l[i].target), rc;

		snprintf(to, sizeof to, "%s.json", l[i].id);
		if (dir == OR_D_BAD)
			or_err_file(OR_D_BAD, l[i].id, l[i].error);
		/* the PostgreSQL ledger holds a job's body: its file goes (a bad one to bad/, as ever) */
		rc = cfg->store_pg && dir != OR_D_BAD ? or_unlink_at(OR_D_NEW, l[i].arrival)
		                                      : or_move(OR_D_NEW, l[i].arrival, dir, to);
		if (rc == -1 && errno != ENOENT)
			or_log(0, "event=ingest-move job=%s error=\"%s\"", l[i].id, strerror(errno));
	}
	or_listed_free(l, n);
	if (n == 0)
		return 0;
	if (or_spool_sync() == -1)
		return -1;
#if OR_PG
	if (cfg->store_pg)
		or_pg_arrivals_done(cfg);
	else
#endif
		or_store_arrivals_done();
	return n;
}

static void or_ledger_id_random(const char *salt, char id[OR_ID_HEX + 1])
{
	char r[33];
	struct or_buf b = { 0 };

	or_random_hex(r, 16);
	or_buf_printf(&b, "%s/%s", salt, r);
	or_sha256_hex(b.s, b.len, id, OR_ID_HEX);
	or_buf_free(&b);
}

static char *or_dup_or_null(const char *s) { return s ? or_xstrdup(s) : NULL; }

static void or_arrival_free(struct or_arrival *a)
{
	free(a->name);
	free(a->reason);
	free(a->client);
	free(a->campaign);
	free(a->rcpt);
	free(a->rcpt_domain);
	free(a->pin);
	free(a->thread);
	free(a->win_tz);
	free(a->body);
	free(a->after);
	for (int i = 0; i < a->nfollow; i++)
		or_arrival_free(&a->follow[i]);
	free(a->follow);
	memset(a, 0, sizeof *a);
}


/* The ledger fields of a parsed job, with the time it is due. */
static void or_ingest_waiting(const struct or_config *cfg, const struct or_job *job, double now, struct or_arrival *a)
{
	double due = job->not_before > now ? (double)job->not_before : now;

	/* from the second due is in, not the next one: a job ingested at 09:00:00.4
	 * by the run of a window opening at 09:00 is due now, not at 09:00:01,
	 * after that run has looked (it then waited for the next run) */
	if (job->window.set) {
		double open = (double)or_window_next(&job->window, (time_t)floor(due), cfg->timezone);
		due = open > due ? open : due;
	}
	or_job_ids(job, a->producer, sizeof a->producer, a->id);
	or_job_content_hash(job, a->content);
	a->client = or_dup_or_null(job->client);
	a->campaign = or_dup_or_null(job->campaign);
	a->rcpt = or_xstrdup(job->rcpt);
	a->rcpt_domain = or_dup_or_null(job->rcpt_domain);
	a->pin = or_dup_or_null(job->sender);
	a->thread = or_dup_or_null(job->thread);
	a->win_tz = job->window.set ? or_xstrdup(job->window.tz) : NULL;
	a->not_before = (double)job->not_before;
	a->due = due;
	a->win_set = job->window.set;
	a->win_days = job->window.set ? (int)job->window.days : 0;
	a->win_start = job->window.start_min;
	a->win_end = job->window.end_min;
}

/* A sequence's follow-ups as arrivals of their own: each step's job is the
 * first one's JSON with the step's subject, text and html (or_json_followup),
 * parsed and validated like any job; a bad step makes the whole job bad
 * (why in reason, 0 returned -1).  Ids: the producer id with "#2", "#3" … */
static int or_ingest_followups(const struct or_config *cfg, const char *data, size_t len, const struct or_job *job,
                               double now, struct or_arrival *a, char *reason, size_t rlen)
{
	const struct or_sequence *q = job->seq;
	char prev[OR_ID_HEX + 1];

	snprintf(prev, sizeof prev, "%s", a->id);
	a->step = 1;
	a->nsteps = q->nsteps + 1;
	a->stop_on = q->stop_on;
	snprintf(a->on_auto, sizeof a->on_auto, "%s", q->on_auto);
	a->follow = or_xrealloc(NULL, sizeof *a->follow * (size_t)q->nsteps);
	for (int k = 0; k < q->nsteps; k++) {
		struct or_arrival *f = &a->follow[k];
		char pid[OR_MAX_ID + 16], field[128], err[300];
		int reply = !q->steps[k].subject || !*q->steps[k].subject;
		struct or_job fj;

		memset(f, 0, sizeof *f);
		a->nfollow++;
		snprintf(pid, sizeof pid, "%s#%d", a->producer, k + 2);
		f->body = or_json_followup(data, len, k, pid, reply ? prev : NULL);
		if (!f->body || or_job_parse(f->body, strlen(f->body), &fj, field, sizeof field, err, sizeof err)) {
			snprintf(reason, rlen, "sequence.steps[%d]: %s%s%s", k, f->body ? field : "", f->body ? ": " : "",
			         f->body ? err : "could not be composed");
			return -1;
		}
		or_ingest_waiting(cfg, &fj, now, f);
		or_job_free(&fj);
		f->name = NULL;
		f->now = now;
		f->step = k + 2;
		f->after = or_xstrdup(q->steps[k].after);
		snprintf(prev, sizeof prev, "%s", f->id);
	}
	return 0;
}

/* Reads one arrival into *a, a job or a bad file, for the batch to record.
 * Returns 1 when it is to be recorded, 0 when it is gone (nothing to do), -1
 * when it could not be opened for want of file descriptors or memory (left
 * in new/ unrecorded, the line to log in stop; ingest stops). */
static int or_ingest_one(const struct or_config *cfg, const char *name, unsigned char d_type, double now,
                         struct or_arrival *a, char *stop, size_t stoplen)
{
	struct stat st;
	char *data = NULL, field[128], err[300], reason[512];
	size_t len = 0;
	struct or_job job;
	int good = 0;

	reason[0] = 0;
	/* the listing's file type saves a lookup in a large new/; lstat only
	 * where the file system does not say */
	int regular = d_type == DT_REG;
	if (d_type == DT_UNKNOWN) {
		if (fstatat(or_dirfd[OR_D_NEW], name, &st, AT_SYMLINK_NOFOLLOW) == -1 || S_ISDIR(st.st_mode))
			return 0;   /* gone, or a directory: never ours to move (as DT_DIR in or_ingest) */
		regular = S_ISREG(st.st_mode);
	}
	if (!regular)
		snprintf(reason, sizeof reason, "not a regular file (a link, FIFO or device): not opened");
	else if (!or_name_ok(name))
		snprintf(reason, sizeof reason, "file name is not [A-Za-z0-9][A-Za-z0-9._-]{0,199}: not opened");
	else if (or_read_file_at(or_dirfd[OR_D_NEW], name, cfg->job_max_bytes, &data, &len, err, sizeof err)) {
		if (errno == ENOENT)
			return 0;   /* gone since the listing (its producer took it back) */
		if (or_errno_transient(errno)) {
			char safe[300];
			snprintf(stop, stoplen, "event=ingest file=\"%s\" error=\"%s: left in new/ for the next run\"",
			         or_safe(name, safe, sizeof safe), err);
			return -1;
		}
		snprintf(reason, sizeof reason, "%s", err);
	} else if (or_job_parse(data, len, &job, field, sizeof field, err, sizeof err))
		snprintf(reason, sizeof reason, "%s%s%s", field, *field ? ": " : "", err);
	else
		good = 1;

	memset(a, 0, sizeof *a);
	a->name = or_xstrdup(name);
	a->now = now;
	if (good && cfg->store_pg && job.seq) {   /* so far: nothing lost, the file waits in bad/ */
		snprintf(reason, sizeof reason, "sequences (follow-ups) are not built on the PostgreSQL store yet: "
		         "requeue bad once they are");
		or_job_free(&job);
		good = 0;
	}
	if (good) {
		or_ingest_waiting(cfg, &job, now, a);
		if (job.seq && or_ingest_followups(cfg, data, len, &job, now, a, reason, sizeof reason)) {
			char *keep = a->name;
			a->name = NULL;
			or_arrival_free(a);
			a->name = keep;
			a->now = now;
			good = 0;
		}
		or_job_free(&job);
		if (good && cfg->store_pg)   /* the shared ledger holds the job itself */
			a->body = data, data = NULL;
	}
	free(data);
	if (!good)
		a->reason = or_xstrdup(reason);
	return 1;
}

/* Waits (until the run's deadline) for another run's ingest to finish, so
 * an overlapping run can share the jobs it brought in.  1 when it did. */
static int or_ingest_wait(const struct or_run *run)
{
	int fd = openat(or_dirfd[OR_D_RUN], "ingest.lock", O_RDWR | O_CLOEXEC);

	if (fd == -1)
		return 0;
	while (!or_stop && or_now() < run->deadline && flock(fd, LOCK_EX | LOCK_NB) == -1)
		usleep(20000);   /* real time: the other run ingests in real time */
	close(fd);   /* released at once: nothing to ingest here */
	return !or_stop && or_now() < run->deadline;
}

/* Reads the next batch of new/ into *batch (grown as needed): returns the
 * entries seen, *n of them to record; *short_of when the rest must wait. */
static int or_ingest_read(const struct or_config *cfg, DIR *d, struct or_arrival **batch, int *cap, int *n,
                          int *short_of, char *stop, size_t stoplen)
{
	struct dirent *de;
	int inbatch = 0, r;
	size_t bytes = 0;   /* the bodies a batch holds (the PostgreSQL store's): bounded */

	*n = 0;
	while (inbatch < OR_INGEST_BATCH && bytes < OR_INGEST_BATCH_BYTES && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;   /* ".", "..", and producers' hidden temp files */
		if (de->d_type == DT_DIR)
			continue;   /* never ours to move; ignored */
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 64;
			*batch = or_xrealloc(*batch, sizeof **batch * (size_t)*cap);
		}
		if ((r = or_ingest_one(cfg, de->d_name, de->d_type, or_now(), &(*batch)[*n], stop, stoplen)) < 0) {
			*short_of = 1;   /* the rest waits in new/ for a run with descriptors to spare */
			break;
		}
		if (r && (*batch)[*n].body)
			bytes += strlen((*batch)[*n].body);
		*n += r;
		inbatch++;
	}
	return inbatch;
}

/* Ingests everything in new/.  Returns the number of arrivals seen, -2 when
 * another run holds the ingest lock. */
static int or_ingest(const struct or_config *cfg, struct or_run *run)
{
	int lockfd, total = 0, cap = 0;
	DIR *d;
	struct or_arrival *batch = NULL;

	lockfd = openat(or_dirfd[OR_D_RUN], "ingest.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (lockfd == -1 || flock(lockfd, LOCK_EX | LOCK_NB) == -1) {
		if (lockfd >= 0)
			close(lockfd);
		return -2;   /* another run is ingesting: it will take what is there */
	}
	or_dir_refresh(OR_D_NEW);   /* opened before another run compacted it */
	/* a dead ingester's list first, against new/ as it left it; then what
	 * raced into new.old comes back to be read with the rest */
	int unfinished = or_ingest_finish(cfg) < 0;
	or_retired_drain(OR_D_NEW);
	int nfd = dup(or_dirfd[OR_D_NEW]);
	if (nfd == -1 || !(d = fdopendir(nfd))) {
		or_log(0, "event=ingest error=\"cannot list new/: %s\"", strerror(errno));
		if (nfd >= 0)
			close(nfd);
		close(lockfd);
		return -1;
	}
	rewinddir(d);
	int short_of = 0;
	while (!short_of) {
		char stop[700] = "";
		int n, inbatch = or_ingest_read(cfg, d, &batch, &cap, &n, &short_of, stop, sizeof stop);
#if OR_PG
		if (cfg->store_pg)
			run->ingested += or_pg_ingest_batch(cfg, batch, n, &run->bad);
		else
#endif
			run->ingested += or_store_ingest_batch(batch, n, &run->bad);
		if (*stop)
			or_log(0, "%s", stop);
		for (int i = 0; i < n; i++)
			or_arrival_free(&batch[i]);
		if (inbatch == 0)
			break;
		total += inbatch;
		unfinished |= or_ingest_finish(cfg) < 0;
	}
	free(batch);
	if (!short_of && !unfinished)   /* a list left to finish names files in this new/ */
		or_drop_compact(OR_D_NEW, d);
	closedir(d);
	close(lockfd);
	return total;
}

/* ================================================================
 * RECOVERY: claims of runs that died
 *
 * A run holds an OFD lock on run/<run-id>.lock while it lives.  A run row
 * still 'running' whose lock can be taken belongs to a dead run: each of its
 * jobs is put where the ledger says (claimed -> defer/, intent without
 * outcome -> held/ or resent, final states -> their folder).  Recovery is
 * idempotent, and the dead run stays 'running' until all its files moved, so
 * a crash during recovery is recovered again.
 * ================================================================ */

static int or_lock_file(const char *run_id, int create)
{
	char name[64];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd;

	snprintf(name, sizeof name, "%s.lock", run_id);
	fd = openat(or_dirfd[OR_D_RUN], name, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0640);
	if (fd == -1)
		return create || errno != ENOENT ? -1 : -2;
	if (fcntl(fd, F_OFD_SETLK, &fl) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The folder of a job in `state` (by name), from the state machine's table. */
static int or_state_dir(const char *state, int resend)
{
	return or_job_state_dir(or_job_state_of(state), resend);
}

/* Settles the ledger rows of a dead run (claimed -> waiting, sending -> held
 * or waiting) in one transaction, then moves its files. */
static void or_recover_run(const struct or_config *cfg, const char *dead)
{
	double now = or_now();
	struct or_job_row *jobs;
	int n;

	or_store_recover_run(dead, cfg->in_doubt_resend, now);
	n = or_store_run_jobs(dead, &jobs);
	for (int i = 0; i < n; i++) {
		const char *id = jobs[i].id;
		char from[80], to[64];
		int dir = or_state_dir(jobs[i].state, cfg->in_doubt_resend);

		if (jobs[i].no_file)   /* a follow-up: its row is all there is */
			continue;
		snprintf(from, sizeof from, "%s.json.%s", id, dead);
		snprintf(to, sizeof to, "%s.json", id);
		if (dir == OR_D_FAILED || dir == OR_D_BAD) {   /* written again if the crash came before it */
			char err[64];
			struct stat est;
			snprintf(err, sizeof err, "%s.err", id);
			if (fstatat(or_dirfd[dir], err, &est, 0) == -1)
				or_err_file(dir, id, jobs[i].note);
		}
		if (or_move(OR_D_CUR, from, dir, to) == 0 && dir == OR_D_HELD)
			or_log(1, "event=held job=%s reason=\"in doubt after a crash\"", id);
	}
	or_job_rows_free(jobs, n);
	or_spool_sync();
	or_store_run_recovered(dead, now);
}

static void or_recover(const struct or_config *cfg, const char *self)
{
	char (*dead)[33];
	int n = or_store_runs_running(self, &dead);

	for (int i = 0; i < n; i++) {
		char name[64];
		int fd = or_lock_file(dead[i], 0);
		if (fd == -1)
			continue;   /* alive */
		or_log(2, "event=recover run=%s", dead[i]);
		or_recover_run(cfg, dead[i]);
		snprintf(name, sizeof name, "%s.lock", dead[i]);
		unlinkat(or_dirfd[OR_D_RUN], name, 0);
		if (fd >= 0)
			close(fd);
	}
	free(dead);
}

/* Finishes cancellations: each 'cancelling' job's file goes defer/ ->
 * failed/ with its .err, then the rows become 'failed'.  Idempotent: a run
 * calls it too, so a cancel interrupted by a crash completes. */
static int or_cancel_finish(void)
{
	struct or_job_row *jobs;
	int n = or_store_cancelling(&jobs);

	for (int i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof name, "%s.json", jobs[i].id);
		or_err_file(OR_D_FAILED, jobs[i].id, jobs[i].note);
		if (or_move(OR_D_DEFER, name, OR_D_FAILED, name) == -1 && errno != ENOENT)
			or_log(0, "event=cancel job=%s error=\"%s\"", jobs[i].id, strerror(errno));
	}
	or_job_rows_free(jobs, n);
	if (n == 0)
		return 0;
	or_spool_sync();
	or_store_cancel_finish();
	return n;
}

/* A name or_write_atomic gives its temporary files: .tmp- and 16 hex digits. */
static int or_is_own_tmp(const char *name)
{
	return !strncmp(name, ".tmp-", 5) && strlen(name) == 5 + 16 && strspn(name + 5, "0123456789abcdef") == 16;
}

/* The lock file of a run that is gone, or one of our own temporary files
 * (run/idle's).  A run that crashed before its first claim has no row
 * (or_store_run_row) for recovery to find it by, so its run/ID.lock stays;
 * one whose lock is free goes (or_stray_clean lets only old ones get here).
 * A live run holds its lock from an instant after creating the file until
 * it unlinks it at its end; the age keeps the sweep off that instant.  A
 * dead run that has a row is recovered first (or_recover, earlier in the
 * tick), and a recovery that finds no lock file takes the run for dead. */
static int or_is_run_stray(const char *name)
{
	char id[33];
	int lk;

	if (or_is_own_tmp(name))
		return 1;
	if (strlen(name) != 32 + 5 || strspn(name, "0123456789abcdef") != 32 || strcmp(name + 32, ".lock"))
		return 0;
	snprintf(id, sizeof id, "%.32s", name);
	if ((lk = or_lock_file(id, 0)) < 0)
		return 0;   /* held: alive, or being recovered */
	close(lk);
	return 1;
}

/* Removes the files of dirfd older than OR_TMP_MAX_AGE: all of them, or
 * only those stray says may go (our own temporary files, which a crash
 * between their fsync and their rename leaves behind; a dead run's lock). */
static void or_stray_clean(int dirfd, double now, int (*stray)(const char *name))
{
	DIR *d;
	struct dirent *de;
	int fd;

	if (dirfd < 0 || (fd = dup(dirfd)) == -1 || !(d = fdopendir(fd))) {
		if (dirfd >= 0 && fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);   /* the dup shares its offset with dirfd's, which a listing may have moved */
	while ((de = readdir(d))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
		    now - (double)st.st_mtime > OR_TMP_MAX_AGE && (!stray || stray(de->d_name)))
			unlinkat(dirfd, de->d_name, 0);
	}
	closedir(d);
}

static void or_stray_clean_path(const char *path, double now)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		or_stray_clean(fd, now, or_is_own_tmp);
		close(fd);
	}
}

/* tmp/ holds producers' files being written; one older than 36 hours was
 * abandoned.  The folders outreach itself writes with or_write_atomic (bad/,
 * failed/, unsub/ and run/, report_dir, the file providers' folders) can
 * hold its own temporary files left by a crash: those go at the same age,
 * and so does the free lock file of a run that died (or_is_run_stray).  Listing
 * them is the one exception to "only new/ is listed", so it is done at most
 * once an hour. */
static void or_tmp_clean(const struct or_config *cfg, double now)
{
	char last[32];

	or_kv_get("tmp_cleaned_at", last, sizeof last);
	if (*last && now - atof(last) < 3600)
		return;
	or_stray_clean(or_dirfd[OR_D_TMP], now, NULL);
	or_stray_clean(or_dirfd[OR_D_RUN], now, or_is_run_stray);
	or_stray_clean(or_dirfd[OR_D_BAD], now, or_is_own_tmp);
	or_stray_clean(or_dirfd[OR_D_FAILED], now, or_is_own_tmp);
	or_stray_clean(or_dirfd[OR_D_UNSUB], now, or_is_own_tmp);
	or_stray_clean_path(cfg->report_dir, now);
	for (int k = 0; k < cfg->nproviders; k++)
		if (cfg->providers[k].type == OR_PROV_FILE)
			or_stray_clean_path(cfg->providers[k].dir, now);
	snprintf(last, sizeof last, "%.0f", now);
	or_store_tmp_cleaned(last);
}

/* Housekeeping, at most once an hour, in small batches so a run never
 * stalls on it: jobs finished more than retention_days ago lose their done/
 * file, then their ledger rows and attempts (so "the same job enqueued twice
 * is sent once" holds within retention_days); slots older than three days go
 * (spacing and caps only look at today); freed pages go back to the file. */
static void or_housekeeping(const struct or_config *cfg, double now)
{
	char last[32];
	double cutoff = now - cfg->retention_days * 86400.0;
	struct or_job_row *jobs;
	int n;

	or_kv_get("housekept_at", last, sizeof last);
	if (*last && now - atof(last) < 3600)
		return;
	/* engagement first: it sums the rows retention is about to retire */
	or_store_engagement_fold(now);
	if (cfg->eng_set && (n = or_store_engagement_daily(cfg, now)) > 0)
		or_log(1, "event=engagement inactive=%d action=%s", n, cfg->eng_suppress ? "suppressed" : "report");
	n = or_store_retired(cutoff, &jobs);
	for (int i = 0; i < n; i++)
		if (or_state_dir(jobs[i].state, 0) == OR_D_DONE) {   /* failed/ and bad/ files stay until a person looks */
			char name[64];
			snprintf(name, sizeof name, "%s.json", jobs[i].id);
			unlinkat(or_dirfd[OR_D_DONE], name, 0);
		}
	or_inbound_prune(cutoff);
	snprintf(last, sizeof last, "%.0f", now);
	or_store_housekeep(jobs, n, now, cutoff, last);
	or_job_rows_free(jobs, n);
	or_store_vacuum();
}

/* ================================================================
 * CLAIM: choose a job, a sender and a slot, in one transaction
 *
 * Jobs are taken per client in turn (so a 5,000-job campaign of one client
 * never starves another client's ten), each client's earliest due first.
 * For a job, every sender that may serve it is weighed: enabled, serving the
 * client, matching the job's pin, under today's cap (warm-up included) and
 * the client's cap, with a slot before the run's deadline at which the job's
 * window is open.  The rotation rule picks among those; the slot is reserved
 * in the same transaction that marks the job claimed, so overlapping runs
 * interleave their slots instead of doubling up.  This section is the
 * policy; its reads and writes are STORE: claim operations', and it runs
 * inside their one transaction (or_store_claim_batch).  Which sender may
 * take a job on a day is one rule, or_sender_may_take, which plan
 * forecasts with too.
 * ================================================================ */

enum { OR_CLAIM_NONE, OR_CLAIM_BLOCKED, OR_CLAIM_OK };

static int or_pin_matches(const struct or_sender *s, const char *pin)
{
	return !pin || !*pin || or_streq_ci(pin, s->name) || or_streq_ci(pin, s->domain);
}

static int or_sender_index(const struct or_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nsenders; i++)
		if (strcmp(cfg->senders[i].name, name) == 0)
			return i;
	return -1;
}

static int or_rgroup_of(const struct or_config *cfg, const char *domain)
{
	for (int i = 0; i < cfg->nrgroups; i++)
		for (char **d = cfg->rgroups[i].domains; *d; d++)
			if (!strcmp(*d, domain))
				return i;
	return -1;
}

/* ---- which sender may take a job on a day: the claim's and the plan's rule ---- */

struct or_sender_day {   /* what the ledger says of one sender on one day, for or_sender_may_take */
	int enabled;         /* not disabled, not paused, its domain checks pass */
	int up;              /* one of its accounts takes sends now (the plan assumes so) */
	int left;            /* its cap that day (warm-up included) minus its sends that day */
	int client_left;     /* the job's client's daily_limit minus its sends that day, INT_MAX */
};

enum { OR_TAKE_YES, OR_TAKE_NOT_SERVING, OR_TAKE_OFF, OR_TAKE_DOWN, OR_TAKE_FULL, OR_TAKE_NOT_PINNED };

/* Whether the job names sender s: its pin (the sender's name or domain), or
 * without one the sticky sender (by name) when it has one. */
static int or_sender_pinned(const struct or_sender *s, const char *pin, const char *sticky)
{
	return sticky && *sticky ? !strcmp(s->name, sticky) : or_pin_matches(s, pin);
}

/* Which sender may take a job of `client` on a day: the one rule the claim
 * (or_weigh_senders) and the forecast (plan) share, so the two never
 * disagree.  OR_TAKE_YES when s serves the client, is enabled, one of its
 * accounts takes sends, it and the client both have sends left that day,
 * and the job names it (or_sender_pinned); else the first of those that
 * fails, in that order: the claim reads the ledger in the same order, so it
 * reads no more than the verdict needs.  The time of day (the slot, the
 * run's deadline, the job's window, recipient groups) is the caller's.
 * Pure. */
static int or_sender_may_take(const struct or_sender *s, const char *client, const char *pin, const char *sticky,
                              const struct or_sender_day *d)
{
	if (!or_sender_serves(s, client))
		return OR_TAKE_NOT_SERVING;
	if (!d->enabled)
		return OR_TAKE_OFF;
	if (!d->up)
		return OR_TAKE_DOWN;
	if (d->left <= 0 || d->client_left <= 0)
		return OR_TAKE_FULL;
	return or_sender_pinned(s, pin, sticky) ? OR_TAKE_YES : OR_TAKE_NOT_PINNED;
}

/* ---- weighing the senders for one job ---- */

/* struct or_sender_cand and struct or_weighing are in outreach.h (CLAIM's block):
 * the render's store read weighs with them too. */

/* A recipient group's limits at slot time t (optionally for one sender):
 * 0 when a send fits, else the earliest time one may.  The count is over
 * (t - window, t + window), so every window holding t stays under the limit
 * even with slots reserved ahead by other runs. */
static double or_rgroup_wait(const struct or_rgroup *g, const char *sender, double t)
{
	const double win[2] = { 60, 3600 };
	const double lim[2] = { sender ? g->sender_per_minute : g->per_minute, sender ? g->sender_per_hour : g->per_hour };
	double until = 0, first;

	for (int k = 0; k < 2; k++) {
		if (lim[k] <= 0)
			continue;
		if (or_rgroup_slots(g->name, sender, t - win[k], t + win[k], &first) >= (long long)lim[k]) {
			double u = first + win[k] + 0.001;
			if (u > until)
				until = u;
		}
	}
	return until;
}

/* The sender the job should keep (its thread's, else its recipient's first)
 * into sticky, while that sender exists, serves the client and is enabled
 * or only paused; else empty, and c->sticky_fallback says rotation picks. */
static void or_sticky_keep(const struct or_config *cfg, const char *client, struct or_candidate *c,
                           char *sticky, size_t n)
{
	int k = -1;   /* set before each read; the initialiser quiets GCC's inliner */

	or_sticky_read(client, c->thread, c->rcpt, sticky, n);
	if (*sticky && ((k = or_sender_index(cfg, sticky)) < 0 || !or_sender_serves(&cfg->senders[k], client))) {
		c->sticky_fallback = 1;
		sticky[0] = 0;
	} else if (*sticky) {
		struct or_sender_state st0;
		or_sender_state_get(&cfg->senders[k], &st0);
		if (!st0.enabled && !st0.paused) {
			c->sticky_fallback = 1;
			sticky[0] = 0;
		}
	}
}

/* What the client may still send on day: its daily_limit minus its sends
 * that day, INT_MAX without one. */
static int or_client_left(const struct or_config *cfg, const char *client, int day)
{
	const struct or_client *cl = or_client_find(cfg, client);

	return cl && cl->daily_limit > 0 ? cl->daily_limit - or_client_sent_on(client, day) : INT_MAX;
}

/* For the job's own sender s with a slot at t before the deadline: 0 when
 * the job may go at t, else the earliest it might: the next opening of its
 * window, else the recipient group's limits (all senders, and this one). */
static double or_slot_wait(const struct or_config *cfg, const struct or_sender *s, const struct or_candidate *c,
                           double t)
{
	double w = 0;

	if (c->win.set && !or_window_open(&c->win, (time_t)t, cfg->timezone))
		w = (double)or_window_next(&c->win, (time_t)ceil(t), cfg->timezone);
	if (!w && c->rgroup >= 0) {   /* the mailbox provider's limits, all senders and this one */
		double u = or_rgroup_wait(&cfg->rgroups[c->rgroup], NULL, t), v = or_rgroup_wait(&cfg->rgroups[c->rgroup], s->name, t);
		w = u > v ? u : v;
	}
	return w;
}

/* Sender i weighed for job c at now into *sc (one step of or_weigh_senders):
 * the rule's verdict on the day of its next slot, then the time of day. */
static void or_weigh_one(const struct or_config *cfg, const struct or_run *run, const char *client,
                         const struct or_candidate *c, const char *sticky, int i, double now,
                         struct or_sender_cand *sc)
{
	const struct or_sender *s = &cfg->senders[i];
	struct or_sender_state ss;
	struct or_sender_day d = { 0, 0, 0, 0 };
	double t = now, down = 0, w = 0;
	int day = 0, verdict;

	memset(sc, 0, sizeof *sc);
	sc->sender = i;
	sc->pinned = or_sender_pinned(s, c->pin, sticky);
	or_sender_state_get(s, &ss);
	d.enabled = ss.enabled;
	sc->account = d.enabled ? or_sender_account(cfg, s, now, &down) : -1;
	d.up = sc->account >= 0;
	if (d.enabled && d.up) {   /* read in the rule's order: the client's count only when the sender has room */
		t = or_sender_next_slot(cfg, s, sc->account, now);
		day = or_day_number((time_t)t, cfg->timezone);
		d.left = or_sender_cap(s, &ss, day) - or_sender_sent_on(s->name, day);
		d.client_left = d.left > 0 ? or_client_left(cfg, client, day) : 0;
	}
	verdict = or_sender_may_take(s, client, c->pin, sticky, &d);
	if (verdict == OR_TAKE_OFF)          /* a pinned job waits for its sender to come back */
		w = now + 60;
	else if (verdict == OR_TAKE_DOWN)    /* its accounts are down or paused: wait for the earlier */
		w = down;
	else if (verdict == OR_TAKE_FULL)    /* its cap or the client's: the next local day */
		w = (double)or_day_start(day + 1, cfg->timezone);
	else if (t >= run->deadline)
		w = t;
	else {
		sc->client_ok = 1;
		if (sc->pinned)
			w = or_slot_wait(cfg, s, c, t);
	}
	sc->slot = t;
	sc->remaining = d.left;
	sc->wait = w;
	sc->eligible = verdict == OR_TAKE_YES && w == 0;
}

/* Weighs every sender for one job at now into *w: one candidate per sender
 * serving the client, in config order, each either eligible (it may take the
 * job now: account, slot and remaining set) or with the earliest time it
 * might (wait).  w->wait folds the waits of the senders the job names, so a
 * job no one can take now is deferred to the first moment one could;
 * w->client_ok says whether any sender could serve the client at all this
 * run (pin and window aside), w->pin_any whether the job names any.  The
 * day's rule is or_sender_may_take, the one plan forecasts with.  Reads the
 * ledger (sender state, accounts, slots, day counts) inside the caller's
 * transaction and reserves nothing; may set c->sticky_fallback. */
static void or_weigh_senders(const struct or_config *cfg, const struct or_run *run, const char *client,
                             struct or_candidate *c, double now, struct or_weighing *w)
{
	char sticky[64] = "";

	memset(w, 0, sizeof *w);
	/* an explicit pin wins; else the thread's sender, else the sticky one,
	 * while it is enabled and serves the client (else rotation, counted) */
	if (!*c->pin && (*c->thread || *c->rcpt))
		or_sticky_keep(cfg, client, c, sticky, sizeof sticky);
	for (int i = 0; i < cfg->nsenders; i++) {
		struct or_sender_cand *sc = &w->s[w->n];
		if (!or_sender_serves(&cfg->senders[i], client))   /* the rule's first check, before any read */
			continue;
		or_weigh_one(cfg, run, client, c, sticky, i, now, sc);
		w->n++;
		w->pin_any |= sc->pinned;
		w->client_ok |= sc->client_ok;
		w->eligible += sc->eligible;
		if (sc->pinned && !sc->eligible && (w->wait == 0 || sc->wait < w->wait))
			w->wait = sc->wait;
	}
}

/* The rotation's pick among w's eligible senders (rr_last: the index of the
 * sender picked last, -1): its index into w->s, -1 when none is eligible. */
static int or_weigh_pick(const struct or_config *cfg, const struct or_weighing *w, int rr_last)
{
	int elig[OR_MAX_SENDERS], rem[OR_MAX_SENDERS], at[OR_MAX_SENDERS], n = 0, pick;

	for (int k = 0; k < w->n; k++)
		if (w->s[k].eligible) {
			elig[n] = w->s[k].sender;
			rem[n] = w->s[k].remaining;
			at[n++] = k;
		}
	if ((pick = or_pick_sender(cfg, elig, n, rem, rr_last)) < 0)
		return -1;
	for (int k = 0; k < n; k++)
		if (elig[k] == pick)
			return at[k];
	return -1;
}

/* ---- claiming ---- */

/* The group of job c remembered for interleaving (a JSON array of its
 * domains in run->last_group_domains, "[]" without one). */
static void or_claim_remember_group(const struct or_config *cfg, struct or_run *run, const struct or_candidate *c)
{
	struct or_buf gd = { 0 };

	or_buf_puts(&gd, "[");
	for (char **d = c->rgroup >= 0 ? cfg->rgroups[c->rgroup].domains : NULL; d && *d; d++) {
		or_buf_puts(&gd, gd.len > 1 ? "," : "");
		or_json_str(&gd, *d);
	}
	or_buf_puts(&gd, "]");
	snprintf(run->last_group_domains, sizeof run->last_group_domains, "%s", gd.len < sizeof run->last_group_domains ? gd.s : "[]");
	or_buf_free(&gd);
}

/* Job c claimed into *out (inside the caller's transaction): the rotation's
 * pick among the eligible senders with its slot reserved, or, when none is
 * eligible (a job whose pin names no sender serving it), with none, for the
 * send to settle. */
static void or_claim_take(const struct or_config *cfg, struct or_run *run, const char *client,
                          const struct or_candidate *c, const struct or_weighing *w, double now,
                          struct or_claim *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->id, sizeof out->id, "%s", c->id);
	snprintf(out->client, sizeof out->client, "%s", client);
	out->attempts = c->attempts;
	out->created_at = c->created_at;
	out->held_in_ledger = c->held_in_ledger;
	out->sender = -1;
	out->account = -1;
	out->slot = now;
	if (w->eligible > 0) {
		char last[80];
		or_kv_get("rr_last", last, sizeof last);
		const struct or_sender_cand *sc = &w->s[or_weigh_pick(cfg, w, or_sender_index(cfg, last))];
		out->sender = sc->sender;
		out->account = sc->account;
		out->slot = sc->slot;
		or_claim_reserve(cfg, run, client, c, sc->sender, sc->account, sc->slot);
		or_claim_remember_group(cfg, run, c);
	}
	or_claim_mark(cfg, run, out, now);
	or_claim_facts(c, out);
}

/* Claims the next job of one client: OR_CLAIM_OK with *out filled,
 * OR_CLAIM_NONE when the client has no due job, OR_CLAIM_BLOCKED when no
 * sender can serve the client before the deadline.  A job no sender it
 * names can take now is deferred and the client's next one weighed (at most
 * 64).  Inside the caller's transaction. */
static int or_claim_one(const struct or_config *cfg, struct or_run *run, const char *client,
                        struct or_claim *out)
{
	for (int tries = 0; tries < 64; tries++) {
		double now = or_now();
		struct or_candidate c = { 0 };
		struct or_weighing w;

		if (!or_claim_next(cfg, client, now, run->last_group_domains, &c))
			break;
		c.rgroup = or_rgroup_of(cfg, c.rdomain);
		or_weigh_senders(cfg, run, client, &c, now, &w);
		if (w.eligible == 0 && !w.client_ok)
			return OR_CLAIM_BLOCKED;
		if (w.eligible == 0 && w.pin_any) {   /* this job waits; look at the client's next one */
			or_claim_defer(c.id, w.wait, now);
			continue;
		}
		or_claim_take(cfg, run, client, &c, &w, now, out);
		return OR_CLAIM_OK;
	}
	return OR_CLAIM_NONE;
}

/* Claims for one transaction (or_store_claim_batch's policy, inside it): up
 * to max jobs, clients in turn, stopping after the first claim whose slot
 * lies ahead (a run holds at most one future slot, so it never sits on
 * capacity another run could use).  A client with nothing more to claim
 * this run is dropped from the rotation. */
static int or_claim_turns(const struct or_config *cfg, struct or_run *run, struct or_turns *rot, int max,
                          struct or_claim *out)
{
	int n = 0;

	while (n < max && rot->n > 0 && run->reserved < run->max_jobs) {
		if (or_claim_one(cfg, run, rot->clients[rot->i], &out[n]) == OR_CLAIM_OK) {
			run->reserved++;
			rot->i = (rot->i + 1) % rot->n;
			if (out[n++].slot > or_now() + 0.001)
				break;
		} else {
			memmove(rot->clients[rot->i], rot->clients[rot->i + 1], sizeof *rot->clients * (size_t)(rot->n - rot->i - 1));
			if (--rot->n > 0)
				rot->i %= rot->n;
		}
	}
	return n;
}

/* Claims up to max jobs in one transaction (or_store_claim_batch). */
static int or_claim_batch(const struct or_config *cfg, struct or_run *run, struct or_turns *rot, int max,
                          struct or_claim *out)
{
	return or_store_claim_batch(cfg, run, rot, max, out);
}

/* ================================================================
 * SEND: claimed jobs through their transfers, many in flight
 *
 * claim (committed) -> rename defer/ -> cur/ -> checks -> build -> wait for
 * the slot -> intent (committed) -> transfer -> outcome (committed) -> rename
 * to the final folder.  A crash between any two steps is settled by
 * recovery.  Remote transfers run on one libcurl multi handle (connections
 * reused), up to each account's `concurrency`; the file and exec providers
 * complete as they start.  At most one claim waits for its slot at a time,
 * so a run never holds slots it is not about to use.
 * ================================================================ */

#define OR_MAX_INFLIGHT 256
#define OR_BATCH 64            /* claims or intents in one transaction at most */

struct or_xfer {
	struct or_claim c;
	struct or_job job;
	struct or_buf msg;
	char msgid[512];
	struct or_http *h;         /* remote transfers */
	struct or_send_result r;
	int done;
	int not_started;           /* settled before any intent: no attempt, no circuit booking */
};

/* Which way an outcome goes, on data only: account_down is the account's
 * circuit as this outcome left it (the store reads it inside the turn). */
static enum or_outcome or_outcome_decide(const struct or_config *cfg, const struct or_store_outcome *o,
                                         int account_down, double now)
{
	const struct or_send_result *r = o->r;

	if (r->v == OR_OK)
		return OR_OUT_SENT;
	if (r->v == OR_TEMP && (r->throttled || r->account || (r->transport && account_down)))
		return OR_OUT_ACCOUNT_WAIT;   /* not the job's fault: no attempt burned */
	if (r->v == OR_TEMP && o->attempts + 1 < cfg->max_attempts &&
	    (now - o->created_at < cfg->max_age || account_down))
		return OR_OUT_RETRY;
	if (r->v == OR_DOUBT && !cfg->in_doubt_resend)
		return OR_OUT_HOLD;
	if (r->v == OR_DOUBT)
		return OR_OUT_RESEND;
	return OR_OUT_FAIL;
}

/* The ledger's view of a claim's outcome. */
static struct or_store_outcome or_outcome_of(const struct or_claim *c, const struct or_send_result *r,
                                             const char *msgid, int not_started)
{
	struct or_store_outcome o = { c->id, c->sender, c->account, c->attempts, c->created_at, msgid, r,
	                              not_started };
	return o;
}

/* The run's tally of an outcome, by the folder its file goes to. */
static void or_run_count(struct or_run *run, int dir)
{
	if (dir == OR_D_DONE)
		run->sent++;
	else if (dir == OR_D_DEFER)
		run->deferred++;
	else if (dir == OR_D_HELD)
		run->held++;
	else if (dir == OR_D_FAILED)
		run->failed++;
}

static int or_record(const struct or_config *cfg, struct or_run *run, const struct or_claim *c,
                     const struct or_send_result *r, const char *msgid)
{
	struct or_store_outcome o = or_outcome_of(c, r, msgid, 0);
	int dir = or_store_record(cfg, run->id, &o);

	or_run_count(run, dir);
	or_fault("after-record");
	return dir;
}

/* Moves the claimed file to its folder (writing .err beside a failure). */
static void or_settle_file(const struct or_claim *c, const char *run_id, int dir, const char *why)
{
	char from[80], to[64];

	if (c->held_in_ledger)   /* a follow-up has no file: its state is all there is */
		return;
	snprintf(from, sizeof from, "%s.json.%s", c->id, run_id);
	snprintf(to, sizeof to, "%s.json", c->id);
	if (dir == OR_D_FAILED || dir == OR_D_BAD)   /* the reason first: a job never sits there without it */
		or_err_file(dir, c->id, why);
	if (or_move(OR_D_CUR, from, dir, to) == -1)
		or_log(0, "event=move job=%s error=\"%s\"", c->id, strerror(errno));
}

/* A claim that will not be sent after all (suppressed, duplicate, stopped,
 * unreadable): its slot is released and the job takes `state`. */
static void or_release(struct or_run *run, const struct or_claim *c, const char *state, const char *why,
                       double next_due)
{
	or_store_release(c->id, run->id, state, why, next_due, or_now());
	or_settle_file(c, run->id, or_state_dir(state, 0), why ? why : "");
}

static int or_is_suppressed(const char *rcpt, const char *client)
{
	char canon[OR_MAX_ADDR * 2 + 1];

	or_addr_canon(rcpt, canon, sizeof canon);
	return or_store_suppressed(canon, client);
}

/* The Message-ID of the job's earlier intent (a resend of a job in doubt, a
 * retry: stored, as the claim read it), so that every copy of one job carries
 * one Message-ID and a receiver can de-duplicate them; NULL for a first
 * attempt or a stored value that is not a well-formed id shorter than max.
 * A malloc'd copy. */
static char *or_earlier_message_id(const char *stored, size_t max)
{
	if (!*stored || or_has_ctl(stored) || strlen(stored) >= max)
		return NULL;
	return or_xstrdup(stored);
}

static void or_xfer_free(struct or_xfer *x)
{
	or_job_free(&x->job);
	or_buf_free(&x->msg);
	or_http_free(x->h);
	free(x);
}

/* Settles a permanent problem found before the transfer (no intent yet). */
static void or_xfer_fail_early(const struct or_config *cfg, struct or_run *run, struct or_xfer *x, const char *why)
{
	struct or_send_result pr;

	memset(&pr, 0, sizeof pr);
	pr.v = OR_PERM;
	snprintf(pr.why, sizeof pr.why, "%s", why);
	or_settle_file(&x->c, run->id, or_record(cfg, run, &x->c, &pr, NULL), pr.why);
}

/* After a power cut a claim may be gone from the ledger while its rename
 * into cur/ stayed: the job is waiting again but its file sits in cur/
 * under the old run's name.  Such a file is taken back (cur/ holds only the
 * transfers in flight, so listing it is cheap).  0 when found. */
static int or_adopt_from_cur(const char *id, const char *to)
{
	DIR *d;
	struct dirent *de;
	int fd = dup(or_dirfd[OR_D_CUR]), rc = -1;
	size_t n = strlen(id);

	if (fd == -1 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rewinddir(d);
	while (rc && (de = readdir(d)))
		if (!strncmp(de->d_name, id, n) && !strncmp(de->d_name + n, ".json.", 6) && strcmp(de->d_name, to))
			rc = or_move(OR_D_CUR, de->d_name, OR_D_CUR, to);
	closedir(d);
	return rc;
}

/* A reply (job->thread names an earlier job of its client, by ledger or
 * producer id): In-Reply-To and the subject of that message as delivered are
 * set on the job.  1 when that message is known and has not gone yet (the
 * reply waits for it), else 0.  id is the reply's own ledger id. */
static int or_job_thread(struct or_job *job, const char *id)
{
	char alt[OR_ID_HEX + 1];   /* thread names a ledger id or a producer id: two key lookups */
	struct or_store_parent p;
	int found, sent;

	if (!job->thread)
		return 0;
	or_ledger_id_of(job->client, job->thread, alt);
	found = or_store_thread_parent(job->client, job->thread, id, alt, &p);
	sent = found && (!strcmp(p.state, "sent") || !strcmp(p.state, "held"));
	if (sent) {
		job->in_reply_to = p.message_id;
		job->re_subject = p.subject;
		job->references = or_store_thread_refs(id);
	} else if (found) {
		free(p.message_id);
		free(p.subject);
	}
	return found && !sent;
}

/* A follow-up's last look before its intent (or_store_followup_gate): its
 * lead ended (stopped, no slot spent), or it waits (an out-of-office hold,
 * a mailbox not read lately).  1 when it was settled so. */
static int or_xfer_gate(const struct or_config *cfg, struct or_run *run, const struct or_claim *c)
{
	char why[700], safe[800];
	double until = 0;
	int gate;

	if (!c->held_in_ledger)   /* step 1 and plain jobs have a file: only follow-ups are gated */
		return 0;
	gate = or_store_followup_gate(cfg, c->id, c->sender >= 0 ? &cfg->senders[c->sender] : NULL, or_now(),
	                                  &until, why, sizeof why);

	if (gate == OR_GATE_GO)
		return 0;
	or_release(run, c, gate == OR_GATE_STOP ? "stopped" : "waiting", why, until);
	or_log(2, "event=%s job=%s reason=\"%s\"", gate == OR_GATE_STOP ? "stopped" : "followup-waits", c->id,
	       or_safe(why, safe, sizeof safe));
	return 1;
}

/* From a fresh claim to a message ready to go: the file into cur/, the
 * checks, the build.  NULL when the job was settled on the way. */
static struct or_xfer *or_xfer_prepare(const struct or_config *cfg, struct or_run *run, const struct or_claim *c)
{
	char from[80], cur[80], *data = NULL, field[128], err[300];
	size_t len;
	struct or_xfer *x = or_xrealloc(NULL, sizeof *x);

	memset(x, 0, sizeof *x);
	x->c = *c;
	/* the precisions are the ids' own lengths: they only tell GCC's inliner so */
	snprintf(from, sizeof from, "%.*s.json", OR_ID_HEX, c->id);
	snprintf(cur, sizeof cur, "%.*s.json.%.*s", OR_ID_HEX, c->id, (int)sizeof run->id - 1, run->id);
	if (c->held_in_ledger) {
		run->claimed++;
		if (!(data = or_store_job_body(c->id))) {
			run->bad++;
			or_release(run, c, "bad", "follow-up's job is missing from the ledger", 0);
			goto settled;
		}
		len = strlen(data);
	} else if (or_move(OR_D_DEFER, from, OR_D_CUR, cur) == -1 && or_adopt_from_cur(c->id, cur) == -1) {
		int later = or_errno_transient(errno);   /* cur/ could not even be listed: look again later */
		or_log(0, "event=claim job=%s error=\"defer/%s: %s\"", c->id, from, strerror(errno));
		or_store_release_lost(c->id, run->id, later);
		free(x);
		return NULL;
	}
	if (!c->held_in_ledger)
		run->claimed++;
	or_fault("after-claim");
	if (!c->held_in_ledger && or_read_file_at(or_dirfd[OR_D_CUR], cur, cfg->job_max_bytes, &data, &len, err, sizeof err) &&
	    or_errno_transient(errno)) {
		char why[400];
		snprintf(why, sizeof why, "job file could not be opened now (%s): tried again later", err);
		or_log(0, "event=claim job=%s error=\"%s\"", c->id, why);
		or_release(run, c, "waiting", why, or_now() + 60);
		goto settled;
	}
	if (!data || or_job_parse(data, len, &x->job, field, sizeof field, err, sizeof err)) {
		char why[512];
		snprintf(why, sizeof why, "job file changed after ingest: %s", err);
		run->bad++;
		or_release(run, c, "bad", why, 0);
		goto settled;
	}
	if (or_xfer_gate(cfg, run, c))
		goto settled;
	if (c->suppressed) {
		or_release(run, c, "suppressed", "recipient is on the suppression list", 0);
		or_log(2, "event=suppressed job=%s", c->id);
		goto settled;
	}
	if (c->duplicate) {
		or_release(run, c, "duplicate", "the same content already went to this recipient", 0);
		goto settled;
	}
	if (or_job_thread(&x->job, c->id)) {   /* the first message has not gone yet: the reply waits for it */
		or_release(run, c, "waiting", "waiting for the first message of its thread", or_now() + 600);
		goto settled;
	}
	if (c->sender < 0) {
		char why[400];
		snprintf(why, sizeof why, "no configured sender matches the job's sender \"%.200s\"",
		         x->job.sender ? x->job.sender : "");
		or_xfer_fail_early(cfg, run, x, why);
		goto settled;
	}
	x->job.message_id = or_earlier_message_id(c->msgid, sizeof x->msgid);
	if (or_message_build(cfg, &x->job, &cfg->senders[c->sender], c->id, (time_t)c->slot, &x->msg, x->msgid,
	                     sizeof x->msgid, err, sizeof err)) {
		char why[400];
		snprintf(why, sizeof why, "cannot build the message: %s", err);
		or_xfer_fail_early(cfg, run, x, why);
		goto settled;
	}
	free(data);
	return x;
settled:
	free(data);
	or_xfer_free(x);
	return NULL;
}

/* Whether a transfer may begin now: the account may have gone down or been
 * throttled since the claim.  If not, the job is settled as not started
 * (no intent, no attempt, no transfer) and 0 returned. */
static int or_xfer_may_start(const struct or_config *cfg, struct or_xfer *x)
{
	const struct or_provider *p = &cfg->providers[x->c.account];
	struct or_account a;
	double now = or_now();

	or_account_get(p->name, &a);
	if (!or_account_blocked(p, &a, now))
		return 1;
	memset(&x->r, 0, sizeof x->r);
	x->r.v = OR_TEMP;
	x->r.throttled = a.paused_until > now;
	x->r.account = !x->r.throttled;
	x->r.retry_after = x->r.throttled ? a.paused_until - now : 0;
	snprintf(x->r.why, sizeof x->r.why, "account %s is %s; not tried", p->name,
	         x->r.throttled ? "throttled" : "down (circuit open)");
	x->done = 1;
	x->not_started = 1;
	return 0;
}

/* The intent of one transfer, as the store writes it: from its commit on a
 * crash leaves the job in doubt. */
static void or_xfer_intent(struct or_xfer *x, struct or_store_intent *in)
{
	char e2[100];
	struct or_buf rs = { 0 };

	in->id = x->c.id;
	in->msgid = x->msgid;
	*in->subject = 0;
	if (x->job.subject && or_render(x->job.subject, &x->job, 0, &rs, e2, sizeof e2) == 0)
		snprintf(in->subject, sizeof in->subject, "%s", *rs.s || !x->job.re_subject ? rs.s : x->job.re_subject);
	or_buf_free(&rs);
}

/* The transfer, once its intent is durable: local providers finish here,
 * remote ones are added to the multi handle. */
static void or_xfer_start(const struct or_config *cfg, struct or_xfer *x, CURLM **multi)
{
	const struct or_provider *p = &cfg->providers[x->c.account];

	if (p->type == OR_PROV_FILE || p->type == OR_PROV_EXEC) {
		or_provider_send(p, x->c.id, &x->msg, &x->r);
		x->done = 1;
		return;
	}
	struct or_send_ctx ctx = { cfg, p, &cfg->senders[x->c.sender], &x->job, x->c.id, &x->msg, x->msgid };
	memset(&x->r, 0, sizeof x->r);
	or_curl_init();
	if (!*multi && !(*multi = curl_multi_init()))
		or_oom();   /* its one failure: memory */
	if (!(x->h = or_remote_request(&ctx, &x->r))) {
		x->done = 1;
		return;
	}
	curl_easy_setopt(x->h->easy, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(*multi, x->h->easy) != CURLM_OK) {
		x->r.v = OR_TEMP;
		snprintf(x->r.why, sizeof x->r.why, "libcurl: cannot start the transfer");
		x->done = 1;
	}
}

/* Logs finished transfers (before their outcomes are written). */
static void or_xfers_log(const struct or_config *cfg, struct or_xfer **xs, int n)
{
	char safe[600];

	for (int i = 0; i < n; i++) {
		struct or_xfer *x = xs[i];
		if (x->not_started)
			continue;
		or_fault("after-send");
		if (x->r.v != OR_OK)
			or_log(x->r.v == OR_TEMP ? 2 : 1, "event=%s job=%s sender=%s account=%s reason=\"%s\"",
			       x->r.throttled ? "throttled" : x->r.v == OR_TEMP ? "deferred" : x->r.v == OR_DOUBT ? "in-doubt" : "failed",
			       x->c.id, cfg->senders[x->c.sender].name, cfg->providers[x->c.account].name,
			       or_safe(x->r.why, safe, sizeof safe));
	}
}

/* Once their outcomes are durable: the files move to their folders. */
static void or_xfers_settle(struct or_run *run, struct or_xfer **xs, int n, const int *dirs)
{
	for (int i = 0; i < n; i++)
		if (!xs[i]->not_started)
			or_fault("after-record");
	for (int i = 0; i < n; i++) {
		or_settle_file(&xs[i]->c, run->id, dirs[i], xs[i]->not_started ? "" : xs[i]->r.why);
		or_xfer_free(xs[i]);
	}
}

/* ---- the send loop: claims, slots and transfers in flight ---- */

struct or_flight {
	struct or_xfer *x[OR_MAX_INFLIGHT];
	int n;
	int per_account[OR_MAX_PROVIDERS];
	CURLM *multi;
	struct or_xfer *done[OR_MAX_INFLIGHT + OR_BATCH];   /* finished, outcome not yet recorded */
	int ndone;
	double turn_s;             /* a turn's work per transfer, commit aside, smoothed (or_turn_size) */
};

/* A provider's "wait N seconds" (Retry-After, X-RateLimit-Reset, "try again
 * after") is at most max_provider_wait: a peer's 10^9 s would otherwise
 * stop the account for decades.  What it asked is kept for the alert. */
static void or_wait_clamp(const struct or_config *cfg, struct or_send_result *r)
{
	if (r->retry_after > cfg->max_provider_wait) {
		r->asked_wait = r->retry_after;
		r->retry_after = cfg->max_provider_wait;
	}
}

/* Collects every finished remote transfer with its verdict. */
static void or_flight_reap(const struct or_config *cfg, struct or_flight *f)
{
	CURLMsg *m;
	int left;

	if (!f->multi)
		return;
	while ((m = curl_multi_info_read(f->multi, &left))) {
		struct or_xfer *x = NULL;
		long status = 0;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		CURLcode cc = m->data.result;
		curl_multi_remove_handle(f->multi, m->easy_handle);
		or_http_classify(&cfg->providers[x->c.account], x->h, cc, status, &x->r);
		or_wait_clamp(cfg, &x->r);
		f->per_account[x->c.account]--;
		for (int i = 0; i < f->n; i++)
			if (f->x[i] == x) {
				f->x[i] = f->x[--f->n];
				break;
			}
		f->done[f->ndone++] = x;
	}
}

/* One libcurl turn without waiting: the transfers just added write their
 * requests now (a handle added to the multi does nothing until the next
 * perform), not after the claims and builds that follow.  Returns whether
 * a transfer finished meanwhile. */
static int or_flight_kick(struct or_flight *f)
{
	int running = f->n;

	return f->multi && f->n > 0 && curl_multi_perform(f->multi, &running) == CURLM_OK && running < f->n;
}

/* Drives transfers for up to ms milliseconds of real time (0: just a turn). */
static void or_flight_turn(struct or_flight *f, int ms)
{
	int running = f->n;

	if (!f->multi || f->n == 0) {
		if (ms > 0)
			or_sleep_until(or_now() + ms / 1000.0);
		return;
	}
	if (or_flight_kick(f))
		return;   /* answers came in while we were busy: record them before waiting */
	if (ms > 0)
		curl_multi_poll(f->multi, NULL, 0, ms, NULL);
	curl_multi_perform(f->multi, &running);
}

/* The queued transfers whose slot has come and whose account has room
 * (into go; those whose account went down meanwhile into f->done). */
static int or_flight_pick(const struct or_config *cfg, struct or_flight *f, struct or_xfer **queue, int *nqueue,
                          struct or_xfer **go)
{
	int ngo = 0, keep = 0, room[OR_MAX_PROVIDERS];
	double now = or_now();

	for (int k = 0; k < cfg->nproviders; k++)
		room[k] = cfg->providers[k].concurrency - f->per_account[k];
	for (int i = 0; i < *nqueue; i++) {
		struct or_xfer *x = queue[i];
		if (x->c.slot <= now && room[x->c.account] > 0 && f->n + ngo < OR_MAX_INFLIGHT && ngo < OR_BATCH) {
			if (or_xfer_may_start(cfg, x)) {
				go[ngo++] = x;
				room[x->c.account]--;
			} else {
				f->done[f->ndone++] = x;
			}
		} else {
			queue[keep++] = x;
		}
	}
	*nqueue = keep;
	return ngo;
}

/* What the send turn asks between its outcomes and its intents: the pick,
 * on the accounts as the outcomes left them. */
struct or_turn_pick {
	const struct or_config *cfg;
	struct or_flight *f;
	struct or_xfer **queue, **go;
	int *nqueue, ngo;
};

static int or_turn_pick(void *ctx, struct or_store_intent *in)
{
	struct or_turn_pick *p = ctx;

	p->ngo = or_flight_pick(p->cfg, p->f, p->queue, p->nqueue, p->go);
	for (int i = 0; i < p->ngo; i++)
		or_xfer_intent(p->go[i], &in[i]);
	return p->ngo;
}

/* How many of the n finished transfers one turn records.  Answers come back
 * in waves (transfers started in one turn are answered together a latency
 * later); recorded and restarted in one turn, a wave stays one wave and
 * every transfer of it waits for the whole turn (15 ms at 64 in flight).
 * Turns of k spread it: the first successors start after a short turn, the
 * next wave comes back spread out, at the price of n/k commits instead of
 * one.  With c the cost of one transfer's turn work and F a commit's, the
 * mean wait over the wave, about (n c + n F / k + k c + F) / 2, is least at
 * k = sqrt(n F / c): 6 for 64 at F = 0.15 ms, c = 0.25 ms; 32 at F = 4 ms.
 * At least OR_TURN_MIN; all n when any beyond the first k is not a plain
 * success (a success takes no account down, so the pick after k outcomes
 * reads the accounts as all n would leave them). */
#define OR_TURN_MIN 8
static int or_turn_size(const struct or_flight *f)
{
	int k = f->ndone;

	if (f->turn_s > 0 && or_store_commit_time() > 0)
		k = (int)ceil(sqrt(f->ndone * or_store_commit_time() / f->turn_s));
	if (k < OR_TURN_MIN)
		k = OR_TURN_MIN;
	if (k >= f->ndone)
		return f->ndone;
	for (int i = k; i < f->ndone; i++)
		if (f->done[i]->r.v != OR_OK || f->done[i]->not_started)
			return f->ndone;
	return k;
}

/* One turn's durable step: the outcomes of the transfers that finished and
 * the intents of those about to start share one transaction (one fsync, not
 * two; never a whole slice).  The pick reads the accounts after the
 * outcomes, so a transfer never starts on an account they just took down.
 * Then the transfers start at once, and only then do finished files move:
 * an intent stays durable-but-unsent no longer than before. */
static void or_flight_step(const struct or_config *cfg, struct or_run *run, struct or_flight *f,
                           struct or_xfer **queue, int *nqueue)
{
	struct or_xfer *fin[OR_MAX_INFLIGHT + OR_BATCH], *go[OR_BATCH];
	struct or_store_outcome out[OR_MAX_INFLIGHT + OR_BATCH];
	struct or_store_intent in[OR_BATCH];
	int nfin = or_turn_size(f), ngo, dirs[OR_MAX_INFLIGHT + OR_BATCH];
	struct or_turn_pick pk = { cfg, f, queue, go, nqueue, 0 };
	struct or_store_turn t = { out, nfin, dirs, in, 0, NULL, &pk };

	memcpy(fin, f->done, sizeof *fin * (size_t)nfin);
	f->ndone -= nfin;
	memmove(f->done, f->done + nfin, sizeof *fin * (size_t)f->ndone);
	or_xfers_log(cfg, fin, nfin);
	if (nfin == 0 && (t.nin = or_turn_pick(&pk, in)) == 0)
		return;
	for (int i = 0; i < nfin; i++)
		out[i] = or_outcome_of(&fin[i]->c, &fin[i]->r, fin[i]->msgid, fin[i]->not_started);
	if (nfin > 0)
		t.pick = or_turn_pick;
	double t0 = or_mono();
	or_store_send_turn(cfg, run->id, &t);
	for (int i = 0; i < nfin; i++)
		or_run_count(run, dirs[i]);
	ngo = pk.ngo;
	for (int i = 0; i < ngo; i++)
		or_fault("after-intent");
	for (int i = 0; i < ngo; i++) {
		or_xfer_start(cfg, go[i], &f->multi);
		if (go[i]->done) {
			f->done[f->ndone++] = go[i];
		} else {
			f->x[f->n++] = go[i];
			f->per_account[go[i]->c.account]++;
		}
	}
	if (ngo > 0)
		or_flight_kick(f);
	or_xfers_settle(run, fin, nfin, dirs);
	if (nfin > 0) {   /* this turn's work per outcome, its commit aside */
		double c = (or_mono() - t0 - or_store_commit_time()) / nfin;
		c = c > 1e-6 ? c : 1e-6;
		f->turn_s = f->turn_s > 0 ? 0.8 * f->turn_s + 0.2 * c : c;
	}
}

static void or_send_loop(const struct or_config *cfg, struct or_run *run)
{
	struct or_turns rot = { NULL, 0, 0 };
	struct or_flight f;
	struct or_xfer *queue[OR_BATCH];   /* claimed and built, waiting for their slot or room */
	int nqueue = 0, capacity = 0;

	rot.n = or_store_due_clients(&rot.clients, or_now());
	memset(&f, 0, sizeof f);
	for (int k = 0; k < cfg->nproviders; k++)
		capacity += cfg->providers[k].concurrency;
	if (capacity > OR_BATCH)
		capacity = OR_BATCH;
	/* claimed ahead: jobs claimed and built while transfers fly, so that a
	 * turn's commit starts the next ones at once; without them a finished
	 * transfer's successor waited for a claim, a build and a second commit
	 * (latency hiding 83-91 % at 100 ms).  Half a batch at most, and never
	 * past a claim still waiting for its slot (below): a per-minute limit
	 * claims no further ahead than it did. */
	capacity += capacity / 2 > 0 ? capacity / 2 : 1;
	if (rot.n > 0)   /* about to send: learn what SES accounts may (once a day) */
		for (int k = 0; k < cfg->nproviders; k++)
			if (cfg->providers[k].type == OR_PROV_SES)
				or_ses_limits(&cfg->providers[k], or_now());
	for (;;) {
		or_flight_reap(cfg, &f);
		if (or_stop && nqueue) {   /* SIGTERM before their transfers started: back to defer/ */
			for (int i = 0; i < nqueue; i++) {
				or_release(run, &queue[i]->c, "waiting", NULL, or_now());
				or_xfer_free(queue[i]);
			}
			nqueue = 0;
		}
		or_flight_step(cfg, run, &f, queue, &nqueue);
		if (f.ndone)
			continue;   /* local providers finished: record them first */
		/* answers waiting while claims are queued: record them and start
		 * their successors first (a claim and its build cost more than the
		 * turn, and every answer waits for them: at 64 in flight a wave of
		 * answers queued behind them added 15 ms a transfer) */
		if (nqueue > 0 && or_flight_kick(&f))
			continue;
		/* claim more while no claim waits for a future slot and there is room */
		if (rot.n > 0 && !or_stop && or_now() < run->deadline && run->reserved < run->max_jobs &&
		    (nqueue == 0 || queue[nqueue - 1]->c.slot <= or_now()) && nqueue + f.n < capacity) {
			struct or_claim c[OR_BATCH];
			int want = capacity - nqueue - f.n;
			if (want > OR_BATCH - nqueue)   /* the queue holds a batch */
				want = OR_BATCH - nqueue;
			if (want > OR_TURN_MIN && nqueue > 0 && f.n > 0)
				want = OR_TURN_MIN;   /* short, so answers coming in meanwhile wait no longer than a turn */
			/* with none queued, no more than are in flight (8, 8, 16, 32, 64 from
			 * the start): the first transfers start after 8 builds, not 64 (the
			 * first send of a run at c = 64 came 14 ms later), and the first wave
			 * comes back spread */
			if (nqueue == 0 && want > (f.n > OR_TURN_MIN ? f.n : OR_TURN_MIN))
				want = f.n > OR_TURN_MIN ? f.n : OR_TURN_MIN;
			int got = want > 0 ? or_claim_batch(cfg, run, &rot, want, c) : 0;
			for (int i = 0; i < got; i++) {
				struct or_xfer *x = or_xfer_prepare(cfg, run, &c[i]);
				if (x)
					queue[nqueue++] = x;
			}
			if (got > 0)
				continue;
		}
		if (nqueue == 0 && f.n == 0)
			break;
		if (nqueue > 0 && queue[0]->c.slot > or_now() && f.per_account[queue[0]->c.account] <
		    cfg->providers[queue[0]->c.account].concurrency) {
			/* waiting for a slot: keep transfers moving, then sleep (or skip) to it */
			or_flight_turn(&f, 0);
			if (or_clock_base >= 0 || f.n == 0)
				or_sleep_until(queue[0]->c.slot);
			else
				or_flight_turn(&f, (int)ceil((queue[0]->c.slot - or_now()) * 1000));
		} else {
			or_flight_turn(&f, 100);
		}
	}
	if (f.multi)
		curl_multi_cleanup(f.multi);
	free(rot.clients);
}

/* ================================================================
 * SEND (PostgreSQL): one job at a time across hosts
 *
 * The PostgreSQL store's send path (a PG=1 build): a claim, its checks and
 * message, the wait for its slot, the intent, the transfer and its
 * outcome, through the operations of STORE (PostgreSQL): claims, caps and
 * leases.  A transfer never starts when less of the lease is left than the
 * provider's timeout and a margin, and an intent whose COMMIT got no
 * answer is never sent on (the process ends: unknown).
 * What it honours of the config and the job: senders (serving clients, pins,
 * daily_limit, warm-up, per_minute, min_gap, the account's rate), clients'
 * daily_limit, the job's window at its slot, rotation, in_doubt, retries
 * and their limits, suppression
 * (unsubscribes through unsub/, hard bounces at send), duplicates of
 * content.  What is not built on it yet is refused by the config
 * (or_cfg_store): recipient groups, mailboxes, fallback accounts, jitter.
 * Not yet either: the accounts' circuit breakers and throttling pauses,
 * feeds, pauses, domain health.
 * ================================================================ */
#if OR_PG
/* The transfer, once its intent is durable, and waited for: local providers
 * at once, HTTP and SMTP through libcurl, one at a time. */
static void or_pg_transfer(const struct or_config *cfg, const struct or_pg_claim *c, const struct or_job *job,
                           const struct or_buf *msg, const char *msgid, struct or_send_result *r)
{
	const struct or_provider *p = &cfg->providers[c->account];
	struct or_send_ctx ctx = { cfg, p, &cfg->senders[c->sender], job, c->id, msg, msgid };
	struct or_http *h;
	long status = 0;

	memset(r, 0, sizeof *r);
	if (p->type == OR_PROV_FILE || p->type == OR_PROV_EXEC) {
		or_provider_send(p, c->id, msg, r);
		return;
	}
	or_curl_init();
	if (!(h = or_remote_request(&ctx, r)))
		return;
	CURLcode cc = curl_easy_perform(h->easy);
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
	or_http_classify(p, h, cc, status, r);
	or_wait_clamp(cfg, r);
	or_http_free(h);
}

/* One claimed job through: its checks, its message, the wait for its slot,
 * the intent, the transfer and its outcome. */
static void or_pg_send_one(const struct or_config *cfg, struct or_run *run, struct or_pg_claim *c)
{
	struct or_job job;
	struct or_buf msg = { 0 };
	struct or_send_result r;
	char field[128], err[300], why[512], msgid[300];

	if (or_job_parse(c->body, strlen(c->body), &job, field, sizeof field, err, sizeof err)) {
		snprintf(why, sizeof why, "job changed after ingest: %s%s%s", field, *field ? ": " : "", err);
		or_pg_release(cfg, run, c, "bad", why, 0);
		run->bad++;
		return;
	}
	if (or_pg_suppressed(job.rcpt, job.client)) {
		or_pg_release(cfg, run, c, "suppressed", "recipient is on the suppression list", 0);
		run->suppressed++;
	} else if (or_pg_duplicate(c->id)) {
		or_pg_release(cfg, run, c, "duplicate", "the same content already went to this recipient", 0);
		run->duplicate++;
	} else if (or_message_build(cfg, &job, &cfg->senders[c->sender], c->id, (time_t)c->slot, &msg, msgid,
	                            sizeof msgid, err, sizeof err)) {
		snprintf(why, sizeof why, "cannot build the message: %s", err);
		or_pg_release(cfg, run, c, "failed", why, 0);
		run->failed++;
	} else {
		or_sleep_until(c->slot);   /* its slot: the per-minute spacing the claim reserved */
		if (or_pg_intent(cfg, run, c, msgid)) {
			or_fault("after-intent");
			/* the intent renewed the lease; a transfer outlasting what is left of it could be
			 * recovered, and so sent again, while still on the wire (only a commit slower than
			 * the margin gets here) */
			if (or_pg_lease_left(cfg) < cfg->providers[c->account].timeout + 15) {
				memset(&r, 0, sizeof r);
				r.v = OR_TEMP, r.account = 1;   /* not the job's fault: no attempt burned */
				snprintf(r.why, sizeof r.why, "the run's lease was too short to start the transfer; not tried");
				run->deferred += or_pg_outcome(cfg, run, c, &r, msgid, 0) == OR_D_DEFER;
				goto done;
			}
			or_pg_transfer(cfg, c, &job, &msg, msgid, &r);
			or_fault("after-send");
			int d = or_pg_outcome(cfg, run, c, &r, msgid, 1);
			or_fault("after-record");
			run->sent += d == OR_D_DONE, run->deferred += d == OR_D_DEFER, run->held += d == OR_D_HELD,
			run->failed += d == OR_D_FAILED;
			if (r.v != OR_OK)
				or_log(r.v == OR_TEMP ? 2 : 1, "event=%s job=%s sender=%s reason=\"%s\"", d == OR_D_HELD ? "in-doubt" :
				       d == OR_D_FAILED ? "failed" : "deferred", c->id, cfg->senders[c->sender].name,
				       or_safe(r.why, err, sizeof err));
		} else {
			or_log(0, "event=fenced run=%s job=%s: the lease was lost; not sent", run->id, c->id);
			or_stop = 1;
		}
	}
done:
	or_buf_free(&msg);
	or_job_free(&job);
}

/* The send half of a tick on the PostgreSQL store: dead runs of any host
 * recovered, unsubscribes taken in, then claims until the deadline, the
 * run's max or nothing due; the run's row closed. */
static void or_pg_send_loop(const struct or_config *cfg, struct or_run *run)
{
	struct or_pg_claim c;

	or_pg_recover(cfg, or_now());
	or_unsub_apply(cfg, or_now());
	/* a quarter of the deadline at most, as on SQLite; then the domains that
	 * burn are disabled before any claim */
	or_feeds_pull(cfg, 0, (run->deadline - run->started) / 4 < 15 ? (run->deadline - run->started) / 4 : 15);
	or_pg_health_judge(cfg, or_now());
	or_domains_gate(cfg, or_now());   /* domain_checks.required, a day's verdicts shared by every host */
	or_pg_rows_ensure(cfg);
	while (!or_stop && run->reserved < run->max_jobs && or_now() < run->deadline &&
	       or_pg_claim(cfg, run, run->deadline, &c) == 1) {
		or_fault("after-claim");
		or_pg_send_one(cfg, run, &c);
		free(c.body);
	}
	or_pg_run_end(run);
}
#endif

/* ================================================================
 * FEEDBACK: provider events, suppression, held jobs settled
 *
 * Each account's feed is pulled when due (feed_interval), bounded in pages
 * and time, resuming from a cursor in table feeds.  Every event is stored
 * once (events.event_key: the provider's event id, or a hash of its
 * fields), mapped to its job through the tags, the provider message id, the
 * Message-ID as delivered, or the last send to that address from that
 * account; events that match nothing are kept and counted.  Hard bounces
 * and complaints suppress the address everywhere, unsubscribes per client
 * (or everywhere), soft bounces after soft_bounce_limit in a row.  Any event
 * for a held job proves the provider had it: it moves to done/.  A feed that
 * errors, hangs or answers garbage is recorded and never stops sending.
 * ================================================================ */

#define OR_FEED_PAGES 20          /* pages per list per pull */

/* The event's address, if it is a valid one: a feed's address is untrusted,
 * so only a valid one is kept (and ever suppressed); "" otherwise. */
static void or_event_rcpt(const struct or_event *ev, char *rcpt, size_t n)
{
	char nm[256];

	if (!ev->rcpt || or_parse_address(ev->rcpt, rcpt, n, nm, sizeof nm))
		rcpt[0] = 0;
}

/* The counter an event of its job adds to ("event:delivered", …); 0 for
 * the kinds not counted (soft bounces count only when they suppress). */
static int or_event_count_kind(const char *type, char *kind, size_t n)
{
	if (!strcmp(type, "unparsed") || !strcmp(type, "rejected") || !strcmp(type, "delayed") ||
	    !strcmp(type, "soft_bounce"))
		return 0;
	snprintf(kind, n, "event:%s", type);
	return 1;
}

/* Whether an event proves the provider had the message (a held job it
 * names is then settled as sent): all but a rejection or an unparsed one. */
static int or_event_settles(const char *type)
{
	return strcmp(type, "rejected") && strcmp(type, "unparsed");
}

/* The reason a suppression keeps: "type (subtype): detail". */
static void or_event_why(const struct or_event *ev, char *why, size_t n)
{
	snprintf(why, n, "%s%s%s%s%s", ev->type, ev->subtype && *ev->subtype ? " (" : "",
	         ev->subtype ? ev->subtype : "", ev->subtype && *ev->subtype ? ")" : "",
	         ev->detail && *ev->detail ? ": " : "");
	if (ev->detail)
		snprintf(why + strlen(why), n - strlen(why), "%.200s", ev->detail);
}

/* What an event does to its address: hard bounces and complaints suppress
 * it everywhere, unsubscribes for the job's client (or everywhere with
 * unsub_global, or when no client is known), a provider's soft bounce
 * only after soft_bounce_limit in a row (OR_SUPPRESS_SOFT: the store
 * counts).  scope: the client, NULL for everywhere; source: who said so. */
static int or_event_suppression(const struct or_config *cfg, const struct or_provider *p, const struct or_event *ev,
                                const char *client, const char **scope, const char **source)
{
	*scope = NULL;
	*source = p ? p->name : "local";
	if (!strcmp(ev->type, "bounced") || !strcmp(ev->type, "complained"))
		return OR_SUPPRESS_NOW;
	if (!strcmp(ev->type, "unsubscribed")) {
		*scope = cfg->unsub_global || !*client ? NULL : client;
		*source = p ? p->name : "unsubscribe";
		return OR_SUPPRESS_NOW;
	}
	return !strcmp(ev->type, "soft_bounce") && p ? OR_SUPPRESS_SOFT : OR_SUPPRESS_NONE;
}

static const char *or_events_keep(struct or_events *l, const char *s)
{
	if (!s)
		return NULL;
	l->own = or_xrealloc(l->own, sizeof *l->own * (size_t)(l->nown + 1));
	return l->own[l->nown++] = or_xstrdup(s);
}

/* A copy of ev (its strings too) at the end of the page's list: the
 * parser's rows do not outlive its statement. */
static void or_events_add(struct or_events *l, const struct or_event *ev)
{
	struct or_event *e;

	l->v = or_xrealloc(l->v, sizeof *l->v * (size_t)(l->n + 1));
	e = &l->v[l->n++];
	*e = *ev;
	e->type = or_events_keep(l, ev->type);
	e->subtype = or_events_keep(l, ev->subtype);
	e->key = or_events_keep(l, ev->key);
	e->rcpt = or_events_keep(l, ev->rcpt);
	e->provider_id = or_events_keep(l, ev->provider_id);
	e->msgid = or_events_keep(l, ev->msgid);
	e->job_hint = or_events_keep(l, ev->job_hint);
	e->detail = or_events_keep(l, ev->detail);
	e->client = or_events_keep(l, ev->client);
	e->campaign = or_events_keep(l, ev->campaign);
}

static void or_events_free(struct or_events *l)
{
	for (int i = 0; i < l->nown; i++)
		free(l->own[i]);
	free(l->own);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Held jobs an event proved delivered: ledger first, then the file. */
static void or_settle_held(const struct or_config *cfg, struct or_settle *st, double now)
{
	for (int i = 0; i < st->n; i++) {
		char name[64];
		or_store_settle_held(cfg, st->ids[i], now);
		snprintf(name, sizeof name, "%s.json", st->ids[i]);
		if (or_move(OR_D_HELD, name, OR_D_DONE, name) == -1 && errno != ENOENT)
			or_log(0, "event=settle job=%s error=\"%s\"", st->ids[i], strerror(errno));
		or_log(2, "event=settled job=%s", st->ids[i]);
	}
	free(st->ids);
	st->ids = NULL;
	st->n = 0;
}

/* The end of one page of a feed: the list's cursor (when it moved) is
 * committed with the page's events, then the held jobs those events proved
 * delivered are settled.  Returns how many events were new. */
/* Set when a page found the account's feed lease lapsed (the PostgreSQL
 * store: another host may pull it now): this pull stops, deleting nothing. */
static int or_feed_lost;

static int or_feed_page_end(const struct or_config *cfg, const struct or_provider *p, const char *list,
                            const char *newcur, struct or_events *evs, double now)
{
	struct or_settle settle = { 0 };
	int n;

#if OR_PG
	if (cfg->store_pg) {   /* held jobs are settled in the page's transaction */
		n = or_pg_feed_page(cfg, p, list, newcur, evs, now);
		or_feed_lost |= n < 0;
		n = n < 0 ? 0 : n;
	} else
#endif
		n = or_store_feed_page(cfg, p, list, newcur, evs, &settle, now);
	or_events_free(evs);
	or_settle_held(cfg, &settle, now);
	return n;
}

/* A feed list's cursor ("" when none), from this tick's store. */
static void or_feed_cursor(const struct or_config *cfg, const char *account, const char *list, char *out, size_t n)
{
	(void)cfg;   /* a PG=0 build has one store */
#if OR_PG
	if (cfg->store_pg)
		or_pg_feed_cursor(account, list, out, n);
	else
#endif
		or_store_feed_cursor(account, list, out, n);
}

/* Feeds share a time budget per run, so a slow or hanging peer costs at
 * most that much of the run's sending time; each request's timeout is cut
 * to what is left. */
static double or_feed_until;

static struct or_http *or_feed_http(const struct or_provider *p, const char *url, char *err, size_t errlen)
{
	double left = or_feed_until - or_now();
	struct or_http *h;

	if (left <= 0.05) {
		snprintf(err, errlen, "feed time budget used up");
		return NULL;
	}
	if (or_feed_lost) {
		snprintf(err, errlen, "the feed's lease lapsed: another host may pull it now");
		return NULL;
	}
	h = or_http_new(p, url);
	curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long)(left < 15 ? left * 1000 : 15000));
	curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(left < 5 ? left * 1000 : 5000));
	return h;
}

/* 0 when body is JSON of the expected type ("object" or "array"). */
static int or_feed_json(const struct or_http *h, const char *type, const char *what, char *err, size_t errlen)
{
	const char *args[] = { h->resp.s ? h->resp.s : "", type };
	char *ok = or_json_sql("SELECT 1 WHERE json_strict(?1) AND json_type(?1) = ?2", args, 2);

	free(ok);
	if (ok)
		return 0;
	snprintf(err, errlen, "%s: the answer is not a JSON %s", what, type);
	return -1;
}

/* Performs a feed request, checks that the answer is JSON of the expected
 * type and runs sql over it (?1 = the body, ncols columns).  0 with *rows
 * (the caller frees them); -1 with err. */
static int or_feed_fetch(struct or_http *h, const char *type, const char *what, const char *sql, int ncols,
                         struct or_json_rows *rows, char *err, size_t errlen)
{
	char why[300];
	long status = or_http_perform(h, why, sizeof why);

	memset(rows, 0, sizeof *rows);
	if (status != 200 || !h->resp.s) {
		snprintf(err, errlen, "%s: %s", what, why);
		return -1;
	}
	if (or_feed_json(h, type, what, err, errlen))
		return -1;
	if (or_json_rows_get(sql, h->resp.s, ncols, rows, why, sizeof why)) {
		snprintf(err, errlen, "%s: %s", what, why);
		return -1;
	}
	return 0;
}

/* One JSON row per event of a SES notification (event publishing or
 * identity notification): t, subtype, key, rcpt, at, detail. */
static const char or_ses_events_sql[] =
	"WITH n(j) AS (SELECT ?1), k(t) AS (SELECT coalesce(json_extract(j, '$.eventType'), json_extract(j, '$.notificationType')) FROM n) "
	"SELECT CASE json_extract(j, '$.bounce.bounceType') WHEN 'Permanent' THEN 'bounced' ELSE 'soft_bounce' END, "
	" json_extract(j, '$.bounce.bounceSubType'), 'ses:b:' || coalesce(json_extract(j, '$.bounce.feedbackId'), "
	" json_extract(j, '$.mail.messageId')) || ':' || (r.value ->> 'emailAddress'), r.value ->> 'emailAddress', "
	" json_extract(j, '$.bounce.timestamp'), r.value ->> 'diagnosticCode' "
	" FROM n, k, json_each(j, '$.bounce.bouncedRecipients') r WHERE k.t = 'Bounce' "
	"UNION ALL SELECT 'complained', json_extract(j, '$.complaint.complaintFeedbackType'), 'ses:c:' || "
	" coalesce(json_extract(j, '$.complaint.feedbackId'), json_extract(j, '$.mail.messageId')) || ':' || "
	" (r.value ->> 'emailAddress'), r.value ->> 'emailAddress', json_extract(j, '$.complaint.timestamp'), NULL "
	" FROM n, k, json_each(j, '$.complaint.complainedRecipients') r WHERE k.t = 'Complaint' "
	"UNION ALL SELECT 'delivered', NULL, 'ses:d:' || json_extract(j, '$.mail.messageId') || ':' || r.value, r.value, "
	" json_extract(j, '$.delivery.timestamp'), json_extract(j, '$.delivery.smtpResponse') "
	" FROM n, k, json_each(j, '$.delivery.recipients') r WHERE k.t = 'Delivery' "
	"UNION ALL SELECT CASE k.t WHEN 'Open' THEN 'opened' WHEN 'Click' THEN 'clicked' WHEN 'Reject' THEN 'rejected' "
	" WHEN 'DeliveryDelay' THEN 'delayed' ELSE 'unsubscribed' END, NULL, 'ses:' || k.t || ':' || "
	" json_extract(j, '$.mail.messageId') || ':' || coalesce(json_extract(j, '$.open.timestamp'), "
	" json_extract(j, '$.click.timestamp'), json_extract(j, '$.deliveryDelay.timestamp'), "
	" json_extract(j, '$.subscription.timestamp'), '') || coalesce(json_extract(j, '$.click.link'), ''), "
	" json_extract(j, '$.mail.destination[0]'), coalesce(json_extract(j, '$.open.timestamp'), "
	" json_extract(j, '$.click.timestamp'), json_extract(j, '$.deliveryDelay.timestamp'), "
	" json_extract(j, '$.subscription.timestamp'), json_extract(j, '$.mail.timestamp')), "
	" coalesce(json_extract(j, '$.click.link'), json_extract(j, '$.reject.reason')) "
	" FROM n, k WHERE k.t IN ('Open', 'Click', 'Reject', 'DeliveryDelay', 'Subscription')";

static double or_event_time(const char *s, double now)
{
	time_t t;
	return s && or_parse_time(s, &t) == 0 ? (double)t : now;
}

/* The events of one SES notification (JSON text) added to evs; returns
 * how many, -1 when the text is not a SES notification. */
static int or_ses_notification(const char *json, struct or_events *evs, double now)
{
	struct or_json_rows r;
	char *mid, *job, why[300];
	const char *args[] = { json };
	int n = 0;

	mid = or_json_sql("SELECT json_extract(?1, '$.mail.messageId') WHERE json_strict(?1)", args, 1);
	if (!mid)
		return -1;
	job = or_json_sql("SELECT json_extract(?1, '$.mail.tags.job[0]') WHERE json_strict(?1)", args, 1);
	if (or_json_rows_get(or_ses_events_sql, json, 6, &r, why, sizeof why)) {
		free(mid);
		free(job);
		return -1;
	}
	for (int i = 0; i < r.n; i++) {
		struct or_event ev = { or_json_row_t(&r, i, 0), or_json_row_t(&r, i, 1), or_json_row_t(&r, i, 2), or_json_row_t(&r, i, 3),
		                       mid, NULL, job, or_json_row_t(&r, i, 5), or_event_time(or_json_row_t(&r, i, 4), now), NULL, NULL };
		if (ev.key && ev.type) {
			or_events_add(evs, &ev);
			n++;
		}
	}
	or_json_rows_free(&r);
	free(mid);
	free(job);
	return n;
}

/* An AWS JSON-protocol call (SQS): POST / with X-Amz-Target. */
static long or_aws_json_call(const struct or_provider *p, const char *endpoint, const char *target, const char *body,
                             struct or_http **out, char *why, size_t wn)
{
	char url[1024];
	struct or_http *h;

	snprintf(url, sizeof url, "%s/", endpoint);
	if (!(h = or_feed_http(p, url, why, wn)))
		return 0;
	or_buf_puts(&h->body, body);
	or_http_addheader(h, "X-Amz-Target: %s", target);
	{	/* X-Amz-Target is not signed by botocore either; host, content-type and date are */
		char host[300], date[17], hh[320], ct[80] = "content-type:application/x-amz-json-1.0";
		const char *hdrs[] = { hh, ct };
		struct or_buf auth = { 0 };
		or_url_host(h->url, host, sizeof host);
		or_amz_date(date);
		snprintf(hh, sizeof hh, "host:%s", host);
		struct or_sigv4_req r = { "POST", "/", hdrs, 2, h->body.s, h->body.len, p->region, "sqs", p->access_key_id,
		                          p->secret, *p->token ? p->token : NULL, date };
		or_sigv4(&r, NULL, NULL, &auth);
		or_http_addheader(h, "Content-Type: application/x-amz-json-1.0");
		or_http_addheader(h, "X-Amz-Date: %s", date);
		or_http_addheader(h, "Authorization: %s", auth.s);
		if (*p->token)
			or_http_addheader(h, "X-Amz-Security-Token: %s", p->token);
		sodium_memzero(auth.s, auth.len);
		or_buf_free(&auth);
	}
	or_http_post(h);
	curl_easy_setopt(h->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	*out = h;
	return or_http_perform(h, why, wn);
}

/* SES feed part 1: SQS ReceiveMessage (10 at a time), SNS envelope or raw
 * delivery, events committed, then DeleteMessage for what was committed. */
static int or_feed_sqs(const struct or_config *cfg, const struct or_provider *p, double now, char *err, size_t errlen)
{
	int total = 0;

	for (int page = 0; page < OR_FEED_PAGES; page++) {
		struct or_http *h = NULL;
		char why[300];
		const char *qa[] = { p->sqs_queue_url };
		char *body = or_json_sql("SELECT json_object('QueueUrl', ?1, 'MaxNumberOfMessages', 10, 'WaitTimeSeconds', 0, "
		                         "'VisibilityTimeout', 60)", qa, 1);
		long status = or_aws_json_call(p, p->sqs_endpoint, "AmazonSQS.ReceiveMessage", body, &h, why, sizeof why);
		free(body);
		if (status != 200 || !h->resp.s || or_feed_json(h, "object", "sqs ReceiveMessage", err, errlen)) {
			if (status != 200 || !h->resp.s)
				snprintf(err, errlen, "sqs ReceiveMessage: %s", why);
			or_http_free(h);
			return -1;
		}
		struct or_json_rows m;
		struct or_events evs = { 0 };
		char (*handles)[1024] = NULL;
		int nh = 0, msgs = 0;
		if (or_json_rows_get("SELECT m.value ->> 'ReceiptHandle', m.value ->> 'Body', m.value ->> 'MessageId', "
		                 "CASE WHEN json_strict(m.value ->> 'Body') AND json_extract(m.value ->> 'Body', '$.Type') = "
		                 "'Notification' THEN json_extract(m.value ->> 'Body', '$.Message') ELSE m.value ->> 'Body' END "
		                 "FROM json_each(?1, '$.Messages') m WHERE json_strict(?1)", h->resp.s, 4, &m, why, sizeof why)) {
			or_http_free(h);
			return -1;
		}
		for (int r = 0; r < m.n; r++) {
			const char *rh = or_json_row_t(&m, r, 0), *inner = or_json_row_t(&m, r, 3);
			msgs++;
			if (or_ses_notification(inner ? inner : "", &evs, now) < 0) {
				char key[300];
				const char *mid = or_json_row_t(&m, r, 2);
				snprintf(key, sizeof key, "sqs:unparsed:%.200s", mid ? mid : "");
				struct or_event ev = { "unparsed", NULL, key, NULL, NULL, NULL, NULL, "not a SES notification", now, NULL, NULL };
				or_events_add(&evs, &ev);
			}
			if (rh && strlen(rh) < 1024) {
				handles = or_xrealloc(handles, sizeof *handles * (size_t)(nh + 1));
				snprintf(handles[nh++], 1024, "%s", rh);
			}
		}
		or_json_rows_free(&m);
		or_feed_page_end(cfg, p, NULL, NULL, &evs, now);   /* the events are durable: only now may the queue forget them */
		or_http_free(h);
		for (int i = 0; i < nh && !or_feed_lost; i++) {
			const char *da[] = { p->sqs_queue_url, handles[i] };
			char *db = or_json_sql("SELECT json_object('QueueUrl', ?1, 'ReceiptHandle', ?2)", da, 2);
			struct or_http *d = NULL;
			if (or_aws_json_call(p, p->sqs_endpoint, "AmazonSQS.DeleteMessage", db, &d, why, sizeof why) != 200)
				or_log(1, "event=feed account=%s error=\"sqs DeleteMessage: %s\"", p->name, why);
			free(db);
			or_http_free(d);
		}
		free(handles);
		total += msgs;
		if (msgs == 0)
			break;
	}
	return total;
}

/* SES feed part 2: the account-level suppression list, from a StartDate cursor. */
static int or_feed_ses_suppressed(const struct or_config *cfg, const struct or_provider *p, double now, char *err,
                                  size_t errlen)
{
	char cursor[64], token[1024] = "", newcur[64] = "";
	int total = 0;

	or_feed_cursor(cfg, p->name, "suppressed", cursor, sizeof cursor);
	for (int page = 0; page < OR_FEED_PAGES; page++) {
		struct or_buf path = { 0 };
		char url[2048];
		struct or_http *h;
		or_buf_puts(&path, "/v2/email/suppression/addresses?PageSize=100");
		if (*cursor) {
			or_buf_puts(&path, "&StartDate=");
			or_uri_encode(&path, cursor, strlen(cursor), 0);
		}
		if (*token) {
			or_buf_puts(&path, "&NextToken=");
			or_uri_encode(&path, token, strlen(token), 0);
		}
		snprintf(url, sizeof url, "%s%s", p->endpoint, path.s);
		if (!(h = or_feed_http(p, url, err, errlen))) {
			or_buf_free(&path);
			return -1;
		}
		or_aws_sign(p, h, "GET", path.s, "ses", NULL);
		curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->hdrs);
		or_buf_free(&path);
		struct or_json_rows r;
		struct or_events evs = { 0 };
		if (or_feed_fetch(h, "object", "ses ListSuppressedDestinations",
		                  "SELECT lower(v.value ->> 'EmailAddress'), v.value ->> 'Reason', v.value ->> 'LastUpdateTime', "
		                  "strftime('%Y-%m-%dT%H:%M:%SZ', v.value ->> 'LastUpdateTime', 'unixepoch') "
		                  "FROM json_each(?1, '$.SuppressedDestinationSummaries') v", 4, &r, err, errlen)) {
			or_http_free(h);
			return -1;
		}
		for (int i = 0; i < r.n; i++) {
			char key[600];
			const char *addr = or_json_row_t(&r, i, 0), *iso = or_json_row_t(&r, i, 3);
			const char *reason = or_json_row_t(&r, i, 1), *upd = or_json_row_t(&r, i, 2);
			if (!addr)
				continue;
			snprintf(key, sizeof key, "ses:sup:%.300s:%.40s", addr, upd ? upd : "");
			struct or_event ev = { strcmp(reason ? reason : "", "COMPLAINT") ? "bounced" : "complained",
			                       "account-suppression-list", key, addr, NULL, NULL, NULL,
			                       "on the SES account suppression list", or_json_row_d(&r, i, 2), NULL, NULL };
			or_events_add(&evs, &ev);
			if (iso && strcmp(iso, newcur) > 0)
				snprintf(newcur, sizeof newcur, "%s", iso);
		}
		or_json_rows_free(&r);
		total += or_feed_page_end(cfg, p, "suppressed", newcur, &evs, now);
		const char *ta[] = { h->resp.s };
		char *next = or_json_sql("SELECT json_extract(?1, '$.NextToken') WHERE json_strict(?1)", ta, 1);
		or_http_free(h);
		if (!next || !*next || strlen(next) >= sizeof token) {
			free(next);
			break;
		}
		snprintf(token, sizeof token, "%s", next);
		free(next);
	}
	return total;
}

/* SendGrid: the five suppression lists, start_time cursor, offset paging.
 * They carry no message id: each entry goes to the last send to that
 * address from this account. */
static int or_feed_sendgrid(const struct or_config *cfg, const struct or_provider *p, double now, char *err, size_t errlen)
{
	static const char *lists[][2] = { { "bounces", "bounced" }, { "blocks", "soft_bounce" },
	                                  { "spam_reports", "complained" }, { "invalid_emails", "bounced" },
	                                  { "unsubscribes", "unsubscribed" } };
	int total = 0;

	for (int l = 0; l < 5; l++) {
		char cursor[32], newcur[32] = "";
		or_feed_cursor(cfg, p->name, lists[l][0], cursor, sizeof cursor);
		for (int page = 0, offset = 0; page < OR_FEED_PAGES; page++, offset += 500) {
			char url[1024];
			struct or_http *h;
			struct or_json_rows r;
			struct or_events evs = { 0 };
			int items = 0;
			snprintf(url, sizeof url, "%s/v3/suppression/%s?limit=500&offset=%d%s%s", p->endpoint, lists[l][0], offset,
			         *cursor ? "&start_time=" : "", cursor);
			if (!(h = or_feed_http(p, url, err, errlen)))
				return -1;
			or_http_addheader(h, "Authorization: Bearer %s", p->secret);
			or_http_addheader(h, "Accept: application/json");
			curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->hdrs);
			char what[80];
			snprintf(what, sizeof what, "sendgrid %s", lists[l][0]);
			if (or_feed_fetch(h, "array", what, "SELECT lower(v.value ->> 'email'), v.value ->> 'created', "
			                  "coalesce(v.value ->> 'reason', '') || coalesce(' ' || (v.value ->> 'status'), '') "
			                  "FROM json_each(?1) v", 3, &r, err, errlen)) {
				or_http_free(h);
				return -1;
			}
			for (int i = 0; i < r.n; i++) {
				char key[600];
				const char *addr = or_json_row_t(&r, i, 0), *created = or_json_row_t(&r, i, 1);
				items++;
				if (!addr)
					continue;
				snprintf(key, sizeof key, "sg:%s:%.300s:%s", lists[l][0], addr, created ? created : "");
				struct or_event ev = { lists[l][1], lists[l][0], key, addr, NULL, NULL, NULL,
				                       or_json_row_t(&r, i, 2), created ? atof(created) : now, NULL, NULL };
				or_events_add(&evs, &ev);
				if (created && atoll(created) > atoll(newcur))
					snprintf(newcur, sizeof newcur, "%lld", atoll(created));
			}
			or_json_rows_free(&r);
			total += or_feed_page_end(cfg, p, lists[l][0], newcur, &evs, now);
			or_http_free(h);
			if (items < 500)
				break;
		}
	}
	return total;
}

/* Mailgun: the Events API of the sending domain, ascending from the cursor
 * less 30 minutes (Mailgun's newest events are not final), following
 * paging.next on the same host; events de-duplicated by their id. */
static int or_feed_mailgun(const struct or_config *cfg, const struct or_provider *p, double now, char *err, size_t errlen)
{
	char cursor[32], url[2048];
	double newcur = 0;
	int total = 0;

	or_feed_cursor(cfg, p->name, "events", cursor, sizeof cursor);
	snprintf(url, sizeof url, "%s/v3/%s/events?ascending=yes&limit=300&begin=%.0f", p->endpoint, p->domain,
	         *cursor ? atof(cursor) - 1800 : now - 3 * 86400);
	for (int page = 0; page < OR_FEED_PAGES; page++) {
		struct or_http *h;
		struct or_json_rows r;
		struct or_events evs = { 0 };
		int items = 0;
		if (!(h = or_feed_http(p, url, err, errlen)))
			return -1;
		curl_easy_setopt(h->easy, CURLOPT_USERNAME, "api");
		curl_easy_setopt(h->easy, CURLOPT_PASSWORD, p->secret);
		if (or_feed_fetch(h, "object", "mailgun events",
		                       "SELECT CASE v.value ->> 'event' WHEN 'delivered' THEN 'delivered' WHEN 'complained' THEN "
		                       "'complained' WHEN 'unsubscribed' THEN 'unsubscribed' WHEN 'opened' THEN 'opened' WHEN "
		                       "'clicked' THEN 'clicked' WHEN 'rejected' THEN 'rejected' WHEN 'failed' THEN CASE "
		                       "v.value ->> 'severity' WHEN 'permanent' THEN 'bounced' ELSE 'delayed' END END, "
		                       "v.value ->> 'reason', 'mg:' || (v.value ->> 'id'), lower(v.value ->> 'recipient'), "
		                       "v.value ->> 'timestamp', json_extract(v.value, '$.message.headers.message-id'), "
		                       "json_extract(v.value, '$.user-variables.job_id'), "
		                       "json_extract(v.value, '$.delivery-status.message') "
		                       "FROM json_each(?1, '$.items') v", 8, &r, err, errlen)) {
			or_http_free(h);
			return -1;
		}
		for (int i = 0; i < r.n; i++) {
			double at = or_json_row_d(&r, i, 4);
			items++;
			if (!or_json_row_t(&r, i, 0) || !or_json_row_t(&r, i, 2))
				continue;   /* accepted, stored, …: nothing to learn */
			struct or_event ev = { or_json_row_t(&r, i, 0), or_json_row_t(&r, i, 1), or_json_row_t(&r, i, 2), or_json_row_t(&r, i, 3),
			                       NULL, or_json_row_t(&r, i, 5), or_json_row_t(&r, i, 6), or_json_row_t(&r, i, 7),
			                       at > 0 ? at : now, NULL, NULL };
			or_events_add(&evs, &ev);
			if (at > newcur)
				newcur = at;
		}
		or_json_rows_free(&r);
		char c[32] = "";
		if (newcur > 0)
			snprintf(c, sizeof c, "%.0f", newcur);
		total += or_feed_page_end(cfg, p, "events", c, &evs, now);
		const char *na[] = { h->resp.s };
		char *next = or_json_sql("SELECT json_extract(?1, '$.paging.next') WHERE json_strict(?1)", na, 1);
		or_http_free(h);
		/* follow only our own endpoint: a page must not send the key elsewhere */
		if (items == 0 || !next || strncmp(next, p->endpoint, strlen(p->endpoint)) || strlen(next) >= sizeof url) {
			free(next);
			break;
		}
		snprintf(url, sizeof url, "%s", next);
		free(next);
	}
	return total;
}

/* Unsubscribe requests the CGI dropped into unsub/: verified again, applied,
 * then removed. */
static int or_unsub_apply(const struct or_config *cfg, double now)
{
	DIR *d;
	struct dirent *de;
	int fd, n = 0;

	if (!*cfg->unsub_url || !or_key_loaded || (fd = dup(or_dirfd[OR_D_UNSUB])) == -1)
		return 0;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		char *data = NULL, err[200], addr[OR_MAX_ADDR + 1], client[OR_MAX_LABEL + 1], campaign[OR_MAX_LABEL + 1], key[80];
		size_t len;
		if (!or_name_ok(de->d_name) || !strstr(de->d_name, ".req"))
			continue;
		if (or_read_file_at(or_dirfd[OR_D_UNSUB], de->d_name, 4096, &data, &len, err, sizeof err) &&
		    or_errno_transient(errno)) {   /* kept for the next run, as a job file would be */
			or_log(0, "event=unsubscribe error=\"%s: left in unsub/ for the next run\"", err);
			break;
		}
		if (data) {
			data[strcspn(data, "\r\n")] = 0;
			if (or_unsub_verify(data, addr, sizeof addr, client, sizeof client, campaign, sizeof campaign) == 0) {
				struct or_settle settle = { 0 };
				or_sha256_hex(data, strlen(data), key + 6, 32);
				memcpy(key, "unsub:", 6);
				struct or_event ev = { "unsubscribed", "one-click", key, addr, NULL, NULL, NULL, campaign, now, client, campaign };
#if OR_PG
				if (cfg->store_pg)
					or_pg_unsubscribe(cfg, addr, client, now);
				else
#endif
				{
					or_store_unsubscribe(cfg, &ev, 0, &settle, now);
					or_settle_held(cfg, &settle, now);
				}
				n++;
			}
		}
		free(data);
		unlinkat(or_dirfd[OR_D_UNSUB], de->d_name, 0);   /* applied, or not a valid request */
	}
	closedir(d);
	return n;
}

/* Pulls every account's feed that is due (all of them when force), within
 * budget seconds for all of them together. */
static void or_feeds_pull(const struct or_config *cfg, int force, double budget)
{
	double until = or_now() + budget;
	int due[OR_MAX_PROVIDERS], ndue = 0;

	for (int i = 0; i < cfg->nproviders; i++) {
		double last;
		if (!cfg->providers[i].feed)
			continue;
#if OR_PG
		if (cfg->store_pg)
			last = or_pg_feed_last_attempt(cfg->providers[i].name);
		else
#endif
			last = or_store_feed_last_attempt(cfg->providers[i].name);
		if (force || or_now() - last >= cfg->providers[i].feed_interval)
			due[ndue++] = i;
	}
	for (int k = 0; k < ndue; k++) {
		const struct or_provider *p = &cfg->providers[due[k]];
		double now = or_now(), share = (until - now) / (ndue - k);
		char err[600] = "";
		int rc = 0;
		/* each account its share of what is left: one hanging peer cannot starve the others */
		or_feed_until = now + (share > 2 ? share : 2);
		or_feed_lost = 0;
#if OR_PG
		if (cfg->store_pg && !or_pg_feed_take(cfg, p, force, or_feed_until - now, now)) {
			or_log(1, "event=feed account=%s skipped: another run holds its lease, or it is not due", p->name);
			continue;
		}
#endif
		if (p->type == OR_PROV_SES) {
			if (*p->sqs_queue_url)
				rc = or_feed_sqs(cfg, p, now, err, sizeof err);
			if (rc >= 0 && or_feed_ses_suppressed(cfg, p, now, err, sizeof err) < 0)
				rc = -1;
		} else if (p->type == OR_PROV_SENDGRID) {
			rc = or_feed_sendgrid(cfg, p, now, err, sizeof err);
		} else if (p->type == OR_PROV_MAILGUN) {
			rc = or_feed_mailgun(cfg, p, now, err, sizeof err);
		}
#if OR_PG
		if (cfg->store_pg && !or_feed_lost)   /* a lapsed lease: the row is its new holder's */
			or_pg_feed_done(p->name, rc < 0 ? err : NULL, now);
		else if (!cfg->store_pg)
#endif
			or_store_feed_done(p->name, rc < 0 ? err : NULL, now);
		if (rc < 0)
			or_log(2, "event=feed account=%s error=\"%s\"", p->name, err);
	}
}

/* ================================================================
 * MAILBOXES: IMAP, read-only (EXAMINE, BODY.PEEK, a UID cursor)
 *
 * libcurl's IMAP with custom commands and no mailbox in the URL, so the
 * server only ever sees EXAMINE (read-only) and BODY.PEEK (never \Seen):
 * the people who read these mailboxes find their mail as they left it.
 * UIDs are read in bounded windows (UID FETCH a:b); a range past the last
 * UID still returns the last message (the n:* rule), so the caller's cursor
 * ("above") drops every UID at or below it.  Every answer is held whole
 * (at most OR_IMAP_MAX_TRANSCRIPT) and parsed with every length checked
 * against what arrived.  A failure here is always temporary: a mailbox down
 * is never a verdict on anyone's mail.
 * ================================================================ */

/* The session.  One libcurl easy handle keeps one connection: the first
 * command connects and logs in, the EXAMINE leaves the folder selected
 * read-only, and the UID FETCHes after it reuse both.  libcurl hands the
 * literals of an answer only to the header callback (with every other line
 * the server sends), so that callback keeps the transcript of the current
 * command and the parsers below read it whole; the write callback, which
 * sees only the untagged first lines, is ignored. */
struct or_imap {
	CURL *easy;
	const struct or_mailbox *mb;
	char url[600];                  /* scheme://host[:port]/: never a mailbox (that would SELECT) */
	char folder[256];               /* the folder EXAMINEd ("" = none yet) */
	long long uidvalidity;          /* of that folder, checked again after a reconnect */
	int fresh;                      /* the connection may be out of step: a new one next command */
	int over;                       /* the current answer passed OR_IMAP_MAX_TRANSCRIPT */
	struct or_buf t;                /* the current command's transcript */
	char errbuf[CURL_ERROR_SIZE];
};

/* ---- the transcript parsers (pure: unit-tested on real transcripts) ---- */

/* A literal at *pp ("{N}" or "{N+}", CRLF, N bytes): its bytes in *s, *len,
 * *pp past it; -1 when malformed or when the N bytes are not all in t (a
 * claimed length is never trusted beyond the buffer). */
static int or_imap_literal(const char *t, size_t n, size_t *pp, const char **s, size_t *len)
{
	size_t p = *pp + 1, d = 0;
	unsigned long long v = 0;

	if (*pp >= n || t[*pp] != '{')
		return -1;
	while (p < n && t[p] >= '0' && t[p] <= '9' && d < 18)
		v = v * 10 + (unsigned)(t[p++] - '0'), d++;
	if (p < n && t[p] == '+')
		p++;
	if (!d || n - p < 3 || t[p] != '}' || t[p + 1] != '\r' || t[p + 2] != '\n')
		return -1;
	p += 3;
	if (v > n - p)
		return -1;
	if (s)
		*s = t + p, *len = (size_t)v;
	*pp = p + (size_t)v;
	return 0;
}

/* A quoted string at *pp, unescaped into out when out is not NULL; -1 when
 * it does not end on its line. */
static int or_imap_quoted(const char *t, size_t n, size_t *pp, struct or_buf *out)
{
	size_t p = *pp + 1;

	for (; p < n && t[p] != '"'; p++) {
		if (t[p] == '\r' || t[p] == '\n')
			return -1;
		if (t[p] == '\\' && p + 1 < n)
			p++;
		if (out)
			or_buf_add(out, t + p, 1);
	}
	if (p >= n)
		return -1;
	*pp = p + 1;
	return 0;
}

/* A number at *pp; -1 when there is none or it has more than 18 digits. */
static int or_imap_number(const char *t, size_t n, size_t *pp, long long *v)
{
	size_t p = *pp, d = 0;

	*v = 0;
	while (p < n && t[p] >= '0' && t[p] <= '9' && d < 19)
		*v = *v * 10 + (t[p++] - '0'), d++;
	if (!d || d > 18)
		return -1;
	*pp = p;
	return 0;
}

/* Skips one value at *pp: an atom or number, NIL, a quoted string, a
 * literal, or a parenthesised list of them (nested at most
 * OR_IMAP_MAX_DEPTH deep, walked without recursion). */
static int or_imap_skip_value(const char *t, size_t n, size_t *pp)
{
	size_t p = *pp;
	int depth = 0;

	for (;;) {
		if (p >= n)
			return -1;
		if (t[p] == '(') {
			if (++depth > OR_IMAP_MAX_DEPTH)
				return -1;
			p++;
			continue;
		}
		if (t[p] == ')' && depth > 0) {
			depth--;
			p++;
		} else if (t[p] == '"') {
			if (or_imap_quoted(t, n, &p, NULL))
				return -1;
		} else if (t[p] == '{') {
			if (or_imap_literal(t, n, &p, NULL, NULL))
				return -1;
		} else {
			size_t s = p;
			while (p < n && t[p] && !strchr(" ()\"{\r\n", t[p]))
				p++;
			if (p == s)
				return -1;
		}
		if (depth == 0)
			break;
		if (p < n && t[p] == ' ')
			p++;   /* between the items of a list */
	}
	*pp = p;
	return 0;
}

/* Skips the line at *pp to just past its CRLF, and the literals it holds
 * (a line ending in {N} goes on after N bytes); -1 when it is cut short. */
static int or_imap_skip_line(const char *t, size_t n, size_t *pp)
{
	size_t p = *pp;

	for (;;) {
		const char *nl = p < n ? memchr(t + p, '\n', n - p) : NULL;
		size_t e, b;

		if (!nl)
			return -1;
		e = (size_t)(nl - t);
		if (e - p < 4 || t[e - 1] != '\r' || t[e - 2] != '}') {   /* "{N}" needs 3 bytes at least */
			*pp = e + 1;
			return 0;
		}
		b = e - 2;
		while (b > p && b + 24 > e && t[b] != '{')
			b--;
		if (t[b] != '{') {
			*pp = e + 1;
			return 0;
		}
		p = b;
		if (or_imap_literal(t, n, &p, NULL, NULL))
			return -1;
	}
}

/* The line at p: 1 a tagged OK, 0 a tagged NO or BAD (or anything else
 * tagged), -2 untagged or a continuation. */
static int or_imap_line_status(const char *t, size_t n, size_t p)
{
	const char *sp;

	if (n - p >= 2 && (t[p] == '*' || t[p] == '+') && t[p + 1] == ' ')
		return -2;
	sp = memchr(t + p, ' ', n - p < 64 ? n - p : 64);
	if (!sp || (size_t)(t + n - sp) < 4)
		return 0;
	return !strncasecmp(sp + 1, "OK", 2) && (sp[3] == ' ' || sp[3] == '\r');
}

/* The untagged "* N KEYWORD" at p: its number and *pp past the keyword and
 * the space after it; -1 when the line is not one. */
static int or_imap_untagged_num(const char *t, size_t n, size_t *pp, const char *kw, long long *v)
{
	size_t p = *pp + 2, k = strlen(kw);

	if (n - *pp < 2 || t[*pp] != '*' || t[*pp + 1] != ' ' || or_imap_number(t, n, &p, v) ||
	    n - p < k + 1 || t[p] != ' ' || strncasecmp(t + p + 1, kw, k))
		return -1;
	*pp = p + 1 + k;
	return 0;
}

/* A response code "* OK [NAME n]" at p: n, or -1 when the line is not one. */
static long long or_imap_code_num(const char *t, size_t n, size_t p, const char *name)
{
	size_t k = strlen(name), q;
	long long v;

	if (n - p < 6 + k || strncasecmp(t + p, "* OK [", 6) || strncasecmp(t + p + 6, name, k) ||
	    t[p + 6 + k] != ' ')
		return -1;
	q = p + 7 + k;
	return or_imap_number(t, n, &q, &v) ? -1 : v;
}

OR_STATIC int or_imap_examine_parse(const char *t, size_t n, struct or_imap_folder *f)
{
	size_t p = 0;
	int status = -1;

	memset(f, 0, sizeof *f);
	f->uidvalidity = f->uidnext = -1;
	while (p < n) {
		size_t q = p;
		long long v;

		if ((status = or_imap_line_status(t, n, p)) == -2) {
			if (or_imap_untagged_num(t, n, &q, "EXISTS", &v) == 0)
				f->exists = v;
			else if ((v = or_imap_code_num(t, n, p, "UIDVALIDITY")) >= 0)
				f->uidvalidity = v;
			else if ((v = or_imap_code_num(t, n, p, "UIDNEXT")) >= 0)
				f->uidnext = v;
		}
		if (or_imap_skip_line(t, n, &p))
			return -1;
	}
	/* RFC 3501 requires UIDVALIDITY; UIDNEXT is 0 when a server leaves it out */
	if (status != 1 || f->uidvalidity <= 0)
		return -1;
	if (f->uidnext < 0)
		f->uidnext = 0;
	return 0;
}

/* The name of a FETCH item at *pp ("UID", "FLAGS", "BODY[HEADER.FIELDS (A
 * B)]<0>": a section in brackets may hold spaces), *pp past it. */
static int or_imap_item_name(const char *t, size_t n, size_t *pp, size_t *len)
{
	size_t p = *pp;

	while (p < n && !strchr(" ()\r\n", t[p])) {
		if (t[p] == '[') {
			const char *e = memchr(t + p, ']', n - p);
			if (!e || memchr(t + p, '\n', (size_t)(e - (t + p))))
				return -1;
			p = (size_t)(e - t);
		}
		p++;
	}
	if (p == *pp)
		return -1;
	*len = p - *pp;
	*pp = p;
	return 0;
}

/* A string value at *pp (a literal, a quoted string or NIL) into m->hdr:
 * a literal points into t, a quoted string into q (unescaped). */
static int or_imap_string(const char *t, size_t n, size_t *pp, struct or_imap_msg *m, struct or_buf *q)
{
	if (*pp < n && t[*pp] == '{')
		return or_imap_literal(t, n, pp, &m->hdr, &m->hdr_len);
	if (*pp < n && t[*pp] == '"') {
		q->len = 0;
		or_buf_add(q, "", 0);
		if (or_imap_quoted(t, n, pp, q))
			return -1;
		m->hdr = q->s, m->hdr_len = q->len;
		return 0;
	}
	if (n - *pp >= 3 && !strncasecmp(t + *pp, "NIL", 3)) {
		*pp += 3;
		m->hdr = "", m->hdr_len = 0;
		return 0;
	}
	return -1;
}

/* The items of one "* N FETCH (" answer, *pp just after its "(": UID into
 * m->uid, a BODY[...] into m->hdr (*body = 1), the rest skipped; *pp past
 * the CRLF that closes it. */
static int or_imap_fetch_items(const char *t, size_t n, size_t *pp, struct or_imap_msg *m, int *body,
                               struct or_buf *q)
{
	size_t p = *pp, k;

	for (int items = 0;; items++) {
		size_t name;
		if (items && p < n && t[p] == ' ')
			p++;
		if (p < n && t[p] == ')')
			break;
		name = p;
		if (items > OR_IMAP_MAX_ITEMS || or_imap_item_name(t, n, &p, &k) || p >= n || t[p++] != ' ')
			return -1;
		if (k == 3 && !strncasecmp(t + name, "UID", 3)) {
			if (or_imap_number(t, n, &p, &m->uid))
				return -1;
		} else if (k >= 5 && !strncasecmp(t + name, "BODY[", 5)) {
			if (or_imap_string(t, n, &p, m, q))
				return -1;
			*body = 1;
		} else if (or_imap_skip_value(t, n, &p)) {
			return -1;
		}
	}
	if (n - p < 3 || t[p + 1] != '\r' || t[p + 2] != '\n')
		return -1;
	*pp = p + 3;
	return 0;
}

/* One pass over a FETCH transcript: with fn NULL it only checks the whole
 * answer (every line well formed, the tagged answer OK); with fn it hands
 * over each message above `above`.  Messages handed over, -1. */
static int or_imap_fetch_walk(const char *t, size_t n, long long above, or_imap_msg_fn fn, void *arg)
{
	struct or_buf q = { 0 };
	size_t p = 0;
	int count = 0, status = -1;

	while (p < n) {
		size_t s = p;
		long long seq;

		if (or_imap_untagged_num(t, n, &s, "FETCH", &seq) == 0 && s < n && t[s] == ' ' && s + 1 < n &&
		    t[s + 1] == '(') {
			struct or_imap_msg m = { 0, NULL, 0 };
			int body = 0;
			s += 2;
			if (or_imap_fetch_items(t, n, &s, &m, &body, &q))
				goto bad;
			p = s;
			status = -2;
			/* the n:* rule: a range past the last UID still returns the last message */
			if (body && m.uid > above && fn && (count++, fn(&m, arg)))
				break;
			continue;
		}
		status = or_imap_line_status(t, n, p);
		if (or_imap_skip_line(t, n, &p))
			goto bad;
	}
	if (!fn && status != 1)
		goto bad;
	or_buf_free(&q);
	return count;
bad:
	or_buf_free(&q);
	return -1;
}

OR_STATIC int or_imap_fetch_parse(const char *t, size_t n, long long above, or_imap_msg_fn fn, void *arg)
{
	/* checked whole first: a NO after some messages hands none over */
	if (or_imap_fetch_walk(t, n, above, NULL, NULL) < 0)
		return -1;
	return fn ? or_imap_fetch_walk(t, n, above, fn, arg) : 0;
}

static int or_imap_cmp_uid(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

/* The UIDs of "* SEARCH n n ..." lines, at most OR_IMAP_MAX_SEARCH of them
 * (the highest: older ones fall out of a ring), ascending, in *uids (caller
 * frees) and *nu; -1 when the answer is malformed or not OK. */
OR_STATIC int or_imap_search_parse(const char *t, size_t n, long long **uids, int *nu)
{
	long long *ring = NULL, v;
	size_t p = 0, seen = 0;
	int status = -1;

	*uids = NULL, *nu = 0;
	while (p < n) {
		size_t s = p;
		if ((status = or_imap_line_status(t, n, p)) == -2 && n - p >= 8 && !strncasecmp(t + p, "* SEARCH", 8)) {
			for (s = p + 8; s < n && t[s] == ' ';) {
				s++;
				if (or_imap_number(t, n, &s, &v))
					break;   /* "* SEARCH " and then CRLF, or ESEARCH-style extras: the line ends */
				if (!ring)
					ring = or_xrealloc(NULL, OR_IMAP_MAX_SEARCH * sizeof *ring);
				ring[seen++ % OR_IMAP_MAX_SEARCH] = v;
			}
		}
		if (or_imap_skip_line(t, n, &p)) {
			status = -1;
			break;
		}
	}
	if (status != 1) {
		free(ring);
		return -1;
	}
	*nu = (int)(seen < OR_IMAP_MAX_SEARCH ? seen : OR_IMAP_MAX_SEARCH);
	if (ring)
		qsort(ring, (size_t)*nu, sizeof *ring, or_imap_cmp_uid);
	*uids = ring;
	return 0;
}

/* ---- the session (libcurl) ---- */

/* Runs the mailbox's token_command (execv, no shell, stdin /dev/null) and
 * keeps the first line of its stdout, at most OR_IMAP_MAX_TOKEN bytes, in
 * tok; it must exit 0 within the mailbox's timeout.  The token is a
 * secret: never in a message; the caller zeroes tok.  0, -1 with err. */
static int or_imap_token(const struct or_mailbox *mb, char *tok, size_t tokn, char *err, size_t errn)
{
	int fds[2], st = 0, rc = -1;
	size_t have = 0;
	double until = or_mono() + mb->timeout;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		return snprintf(err, errn, "mailbox %s: pipe: %s", mb->name, strerror(errno)), -1;
	if ((pid = fork()) == -1) {
		close(fds[0]), close(fds[1]);
		return snprintf(err, errn, "mailbox %s: fork: %s", mb->name, strerror(errno)), -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(fds[1], 1);
		signal(SIGPIPE, SIG_DFL);
		execv(mb->token_command[0], mb->token_command);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd pf = { fds[0], POLLIN, 0 };
		int left = (int)((until - or_mono()) * 1000);
		ssize_t k;
		if (left <= 0 || poll(&pf, 1, left) == 0) {
			snprintf(err, errn, "mailbox %s: token_command timed out after %gs", mb->name, mb->timeout);
			kill(pid, SIGKILL);
			goto out;
		}
		if ((k = read(fds[0], tok + have, tokn - 1 - have)) < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		if ((have += (size_t)k) >= tokn - 1) {
			snprintf(err, errn, "mailbox %s: token_command printed more than %zu bytes", mb->name, tokn - 2);
			kill(pid, SIGKILL);
			goto out;
		}
	}
	tok[have] = 0;
	tok[strcspn(tok, "\r\n")] = 0;
	rc = 0;
out:
	close(fds[0]);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (rc == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !*tok)) {
		snprintf(err, errn, "mailbox %s: token_command %s", mb->name,
		         !WIFEXITED(st) || WEXITSTATUS(st) ? "failed" : "printed no token");
		rc = -1;
	}
	return rc;
}

/* The header callback: the transcript, kept up to OR_IMAP_MAX_TRANSCRIPT;
 * past that the answer is read to its end (so the connection stays in step)
 * and dropped, and s->over says so. */
static size_t or_imap_header_cb(char *p, size_t sz, size_t nm, void *u)
{
	struct or_imap *s = u;
	size_t n = sz * nm;

	if (s->over || s->t.len + n > OR_IMAP_MAX_TRANSCRIPT)
		s->over = 1;
	else
		or_buf_add(&s->t, p, n);
	return n;
}

/* The write callback gets the untagged first lines again: not needed. */
static size_t or_imap_discard(char *p, size_t sz, size_t nm, void *u)
{
	(void)p, (void)u;
	return sz * nm;
}

/* The handle's TLS and login settings, the discipline of the SMTP provider:
 * verification always on, ca_file for a private CA, STARTTLS required on
 * imap:// unless allow_plaintext (loopback only, the config checked). */
static int or_imap_setup(struct or_imap *s, char *err, size_t errn)
{
	const struct or_mailbox *mb = s->mb;
	CURL *h = s->easy;

	curl_easy_setopt(h, CURLOPT_URL, s->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "imap,imaps");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(mb->timeout * 1000));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(mb->timeout < 10 ? mb->timeout * 1000 : 10000));
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (*mb->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, mb->ca_file);
	curl_easy_setopt(h, CURLOPT_USE_SSL,
	                 mb->allow_plaintext && or_url_loopback(mb->url) ? (long)CURLUSESSL_TRY : (long)CURLUSESSL_ALL);
	/* a long SEARCH line or header line is cut by libcurl at half this size */
	if (curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)OR_IMAP_BUFFERSIZE) != CURLE_OK)
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, or_imap_header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, or_imap_discard);
	curl_easy_setopt(h, CURLOPT_USERNAME, mb->username);
	if (mb->token_command) {
		char tok[OR_IMAP_MAX_TOKEN + 2];
		int rc = or_imap_token(mb, tok, sizeof tok, err, errn);
		if (rc == 0) {
			curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
			curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, tok);   /* libcurl keeps its own copy */
		}
		sodium_memzero(tok, sizeof tok);
		return rc;
	}
	curl_easy_setopt(h, CURLOPT_PASSWORD, mb->password);
	return 0;
}

OR_STATIC struct or_imap *or_imap_open(const struct or_mailbox *mb, char *err, size_t errn)
{
	struct or_imap *s = or_xrealloc(NULL, sizeof *s);
	size_t u = strlen(mb->url);

	memset(s, 0, sizeof *s);
	s->mb = mb;
	snprintf(s->url, sizeof s->url, "%s%s", mb->url, u && mb->url[u - 1] == '/' ? "" : "/");
	or_curl_init();
	if (!(s->easy = curl_easy_init()))
		or_oom();   /* its one failure: memory */
	if (or_imap_setup(s, err, errn)) {
		or_imap_close(s);
		return NULL;
	}
	return s;
}

OR_STATIC void or_imap_close(struct or_imap *s)
{
	if (!s)
		return;
	if (s->easy)
		curl_easy_cleanup(s->easy);   /* sends LOGOUT on a live connection */
	or_buf_free(&s->t);
	free(s);
}

/* The server's own words for a refused command: its tagged line, escaped,
 * into out.  That is the transcript's last tagged line, unless libcurl
 * closed the connection after it: LOGOUT's answer (after a "* BYE") is
 * passed over. */
static const char *or_imap_said(const struct or_imap *s, char *out, size_t n)
{
	const char *t = s->t.s ? s->t.s : "";
	size_t p = 0, ours = 0, k = s->t.len, len;
	int bye = 0;
	char line[300];

	while (p < k) {
		const char *nl = memchr(t + p, '\n', k - p);
		if (or_imap_line_status(t, k, p) != -2 && !bye)
			ours = p;
		bye = k - p >= 5 && !strncasecmp(t + p, "* BYE", 5);
		p = nl ? (size_t)(nl - t) + 1 : k;
	}
	len = k ? strcspn(t + ours, "\r\n") : 0;
	snprintf(line, sizeof line, "%.*s", (int)(len < 250 ? len : 250), t + ours);
	return or_safe(line, out, n);
}

/* One libcurl failure as one line naming the mailbox (never a secret: the
 * error buffer and the server's answer hold none). */
static void or_imap_why(struct or_imap *s, CURLcode rc, const char *what, char *err, size_t errn)
{
	char said[400], eb[300];
	const char *mb = s->mb->name;

	or_safe(*s->errbuf ? s->errbuf : curl_easy_strerror(rc), eb, sizeof eb);
	if (rc == CURLE_LOGIN_DENIED)
		snprintf(err, errn, "mailbox %s: login refused", mb);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(err, errn, "mailbox %s: %s: timed out after %gs", mb, what, s->mb->timeout);
	else if (rc == CURLE_USE_SSL_FAILED)
		snprintf(err, errn, "mailbox %s: the server offers no STARTTLS (imap:// requires it)", mb);
	else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CONNECT_ERROR)
		snprintf(err, errn, "mailbox %s: TLS refused: %s", mb, eb);
	else if (rc == CURLE_QUOTE_ERROR)
		snprintf(err, errn, "mailbox %s: %s: %s", mb, what, or_imap_said(s, said, sizeof said));
	else
		snprintf(err, errn, "mailbox %s: %s: %s", mb, what, eb);
}

/* Sends cmd as a custom command on the session's connection and keeps its
 * transcript in s->t; what names it in messages.  0, -1 with err (and the
 * next command then opens a new connection). */
static int or_imap_send(struct or_imap *s, const char *cmd, const char *what, char *err, size_t errn)
{
	CURLcode rc;

	s->t.len = 0;
	s->over = 0;
	*s->errbuf = 0;
	curl_easy_setopt(s->easy, CURLOPT_CUSTOMREQUEST, cmd);
	curl_easy_setopt(s->easy, CURLOPT_FRESH_CONNECT, (long)s->fresh);
	rc = curl_easy_perform(s->easy);
	s->fresh = rc != CURLE_OK;
	/* libcurl (7.88.1 as patched for CVE-2023-38039) caps the response
	 * lines of one transfer near 300 KiB: too big, as our own cap is */
	if (rc == CURLE_RECV_ERROR && strstr(s->errbuf, "Too large response headers"))
		s->over = 1;
	if (rc != CURLE_OK) {
		or_imap_why(s, rc, what, err, errn);
		return -1;
	}
	if (s->over) {
		snprintf(err, errn, "mailbox %s: %s: the answer is over %d MiB", s->mb->name, what,
		         OR_IMAP_MAX_TRANSCRIPT >> 20);
		return -1;
	}
	return 0;
}

/* EXAMINE of the folder (read-only: nothing the tool does can mark mail
 * read or expunge it), its numbers into f. */
static int or_imap_select(struct or_imap *s, const char *folder, struct or_imap_folder *f, char *err,
                          size_t errn)
{
	char cmd[300], what[300];

	snprintf(cmd, sizeof cmd, "EXAMINE \"%s\"", folder);   /* the config refuses quotes and backslashes */
	or_safe(cmd, what, sizeof what);
	if (or_imap_send(s, cmd, what, err, errn))
		return -1;
	if (or_imap_examine_parse(s->t.s, s->t.len, f)) {
		char said[400];
		s->fresh = 1;
		snprintf(err, errn, "mailbox %s: %s: %s", s->mb->name, what, or_imap_said(s, said, sizeof said));
		return -1;
	}
	return 0;
}

OR_STATIC int or_imap_examine(struct or_imap *s, const char *folder, struct or_imap_folder *f, char *err,
                              size_t errn)
{
	*s->folder = 0;
	if (strlen(folder) >= sizeof s->folder || strpbrk(folder, "\"\\\r\n")) {
		snprintf(err, errn, "mailbox %s: bad folder name", s->mb->name);
		return -1;
	}
	if (or_imap_select(s, folder, f, err, errn))
		return -1;
	snprintf(s->folder, sizeof s->folder, "%s", folder);
	s->uidvalidity = f->uidvalidity;
	return 0;
}

/* A command on the EXAMINEd folder: on a new connection (after a failure)
 * the folder is EXAMINEd again first, and a changed UIDVALIDITY fails the
 * command (the caller's UIDs would name other messages). */
static int or_imap_run(struct or_imap *s, const char *cmd, const char *what, char *err, size_t errn)
{
	struct or_imap_folder f;

	if (!*s->folder) {
		snprintf(err, errn, "mailbox %s: %s before EXAMINE", s->mb->name, what);
		return -1;
	}
	if (s->fresh) {
		if (or_imap_select(s, s->folder, &f, err, errn))
			return -1;
		if (f.uidvalidity != s->uidvalidity) {
			snprintf(err, errn, "mailbox %s: UIDVALIDITY of %s changed from %lld to %lld", s->mb->name,
			         s->folder, s->uidvalidity, f.uidvalidity);
			return -1;
		}
	}
	return or_imap_send(s, cmd, what, err, errn);
}

/* The fields a reply, a bounce or an auto-reply is told by (doc: REPLIES). */
#define OR_IMAP_FIELDS "MESSAGE-ID IN-REPLY-TO REFERENCES FROM REPLY-TO SENDER TO SUBJECT DATE RETURN-PATH " \
	"CONTENT-TYPE AUTO-SUBMITTED PRECEDENCE X-PRECEDENCE X-AUTOREPLY X-AUTORESPOND X-AUTORESPONDER " \
	"X-FAILED-RECIPIENTS LIST-ID LIST-UNSUBSCRIBE X-AUTO-RESPONSE-SUPPRESS"

/* A walk over windows that may be split: the caller's fn stops all of it. */
struct or_imap_walk { or_imap_msg_fn fn; void *arg; int stopped; };

static int or_imap_walk_msg(const struct or_imap_msg *m, void *arg)
{
	struct or_imap_walk *w = arg;
	return (w->stopped = w->fn(m, w->arg) != 0);
}

/* UID FETCH from:to of the header fields (to <= 0: "*").  An answer over
 * OR_IMAP_MAX_TRANSCRIPT is fetched again in two halves, down to one
 * message (depth <= 64: the range halves each time), so a window of large
 * headers is read, never a poison that stops the mailbox. */
static int or_imap_fetch_range(struct or_imap *s, long long from, long long to, long long above,
                               struct or_imap_walk *w, char *err, size_t errn)
{
	char cmd[600], what[80], range[48];
	int n, m;

	if (to > 0)
		snprintf(range, sizeof range, "%lld:%lld", from, to);
	else
		snprintf(range, sizeof range, "%lld:*", from);
	snprintf(cmd, sizeof cmd, "UID FETCH %s (UID BODY.PEEK[HEADER.FIELDS (" OR_IMAP_FIELDS ")]<0.%d>)", range,
	         OR_IMAP_MAX_HEADER);
	snprintf(what, sizeof what, "UID FETCH %s", range);
	if (or_imap_run(s, cmd, what, err, errn) == 0) {
		if ((n = or_imap_fetch_parse(s->t.s, s->t.len, above, or_imap_walk_msg, w)) >= 0)
			return n;
		s->fresh = 1;   /* a cut answer may leave the connection out of step */
		snprintf(err, errn, "mailbox %s: %s: a malformed or refused answer", s->mb->name, what);
		return -1;
	}
	if (!s->over || to <= from)
		return -1;
	long long mid = from + (to - from) / 2;
	if ((n = or_imap_fetch_range(s, from, mid, above, w, err, errn)) < 0 || w->stopped)
		return n;
	if ((m = or_imap_fetch_range(s, mid + 1, to, above, w, err, errn)) < 0)
		return -1;
	return n + m;
}

OR_STATIC int or_imap_fetch_headers(struct or_imap *s, long long from_uid, long long to_uid, long long above,
                                    or_imap_msg_fn fn, void *arg, char *err, size_t errn)
{
	struct or_imap_walk w = { fn, arg, 0 };

	if (from_uid < 1)
		from_uid = 1;
	if (to_uid > 0 && to_uid < from_uid)
		return 0;   /* IMAP would read b:a as a:b */
	return or_imap_fetch_range(s, from_uid, to_uid, above, &w, err, errn);
}

/* The text of the one message fetched, into the caller's buffer. */
struct or_imap_text { long long uid; struct or_buf *out; int found; };

static int or_imap_text_msg(const struct or_imap_msg *m, void *arg)
{
	struct or_imap_text *x = arg;

	if (m->uid != x->uid)
		return 0;
	or_buf_add(x->out, m->hdr, m->hdr_len);
	return (x->found = 1);
}

/* 0 with the first 4096 bytes of the text in out, 1 when the message is
 * gone (expunged), -1 with err. */
OR_STATIC int or_imap_fetch_text(struct or_imap *s, long long uid, struct or_buf *out, char *err, size_t errn)
{
	struct or_imap_text x = { uid, out, 0 };
	char cmd[120], what[60];

	snprintf(cmd, sizeof cmd, "UID FETCH %lld (UID BODY.PEEK[TEXT]<0.4096>)", uid);
	snprintf(what, sizeof what, "UID FETCH %lld text", uid);
	if (uid < 1 || or_imap_run(s, cmd, what, err, errn))
		return uid < 1 ? (snprintf(err, errn, "mailbox %s: uid %lld", s->mb->name, uid), -1) : -1;
	out->len = 0;
	or_buf_add(out, "", 0);
	/* a body line that looks like libcurl's tag ends its read early: the
	 * literal is then cut, the answer refused here, and the session recovers */
	if (or_imap_fetch_parse(s->t.s, s->t.len, uid - 1, or_imap_text_msg, &x) < 0) {
		s->fresh = 1;
		snprintf(err, errn, "mailbox %s: %s: a malformed or refused answer", s->mb->name, what);
		return -1;
	}
	return x.found ? 0 : 1;
}

OR_STATIC int or_imap_search_since(struct or_imap *s, int day, long long **uids, int *n, char *err, size_t errn)
{
	static const char mon[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
	                                 "Nov", "Dec" };
	time_t t = (time_t)day * 86400;
	char cmd[64];
	struct tm tm;

	*uids = NULL, *n = 0;
	gmtime_r(&t, &tm);
	snprintf(cmd, sizeof cmd, "UID SEARCH SINCE %d-%s-%d", tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900);
	if (or_imap_run(s, cmd, cmd, err, errn))
		return -1;
	if (or_imap_search_parse(s->t.s, s->t.len, uids, n)) {
		char said[400];
		snprintf(err, errn, "mailbox %s: %s: %s", s->mb->name, cmd, or_imap_said(s, said, sizeof said));
		return -1;
	}
	return 0;
}

/* ---- mailbox-dump: the test seam ---- */

/* One message as the dump prints it: "uid=U bytes=B", then the literal's
 * lines indented, control bytes and backslashes as \xHH. */
static int or_imap_dump_msg(const struct or_imap_msg *m, void *arg)
{
	size_t i = 0;

	(void)arg;
	printf("uid=%lld bytes=%zu\n", m->uid, m->hdr_len);
	while (i < m->hdr_len) {
		size_t e = i;
		while (e < m->hdr_len && m->hdr[e] != '\n')
			e++;
		size_t end = e > i && m->hdr[e - 1] == '\r' ? e - 1 : e;
		if (end > i || e + 1 < m->hdr_len) {   /* the blank line that ends the fields is left out */
			fputs("  ", stdout);
			for (size_t k = i; k < end; k++) {
				unsigned char c = (unsigned char)m->hdr[k];
				if (c < 0x20 || c == 0x7f || c == '\\')
					printf("\\x%02x", c);
				else
					putchar(c);
			}
			putchar('\n');
		}
		i = e + 1;
	}
	return 0;
}

/* Every message of the folder above `above`, in windows of at most
 * OR_IMAP_WINDOW UIDs up to UIDNEXT-1, then one window to "*" (all of it
 * when the server gave no UIDNEXT).  0, -1 with err. */
static int or_imap_dump_folder(struct or_imap *s, const char *folder, long long above, char *err, size_t errn)
{
	struct or_imap_folder f;
	char safe[600];

	if (or_imap_examine(s, folder, &f, err, errn))
		return -1;
	printf("folder=%s uidvalidity=%lld uidnext=%lld exists=%lld\n", or_safe(folder, safe, sizeof safe),
	       f.uidvalidity, f.uidnext, f.exists);
	long long from = above + 1;
	for (; from < f.uidnext; from += OR_IMAP_WINDOW) {
		long long to = from + OR_IMAP_WINDOW - 1 < f.uidnext - 1 ? from + OR_IMAP_WINDOW - 1 : f.uidnext - 1;
		if (or_imap_fetch_headers(s, from, to, above, or_imap_dump_msg, NULL, err, errn) < 0)
			return -1;
	}
	/* and from:* for what arrived since the EXAMINE: the server answers it
	 * with the last message even when there is none past it (the n:* rule) */
	if (or_imap_fetch_headers(s, from, 0, from - 1, or_imap_dump_msg, NULL, err, errn) < 0)
		return -1;
	return fflush(stdout) ? -1 : 0;
}

OR_STATIC int or_cmd_mailbox_dump(const struct or_config *cfg, int argc, char **argv)
{
	char err[1200] = "", *end;
	long long above = 0;
	struct or_imap *s;
	int i, rc;

	if (argc < 2 || argc > 3 || (argc == 3 && ((above = strtoll(argv[2], &end, 10)) < 0 || *end || !*argv[2]))) {
		fputs("usage: outreach mailbox-dump NAME FOLDER [ABOVE_UID]\n", stderr);
		return OR_EX_USAGE;
	}
	if ((i = or_mailbox_index(cfg, argv[0])) < 0) {
		char safe[200];
		fprintf(stderr, "outreach: mailbox-dump: no mailbox named '%s'\n", or_safe(argv[0], safe, sizeof safe));
		return OR_EX_USAGE;
	}
	/* a mailbox down, a login refused or a timeout is never a verdict: 75 */
	if (!(s = or_imap_open(&cfg->mailboxes[i], err, sizeof err)))
		return fprintf(stderr, "outreach: %s\n", err), OR_EX_TEMPFAIL;
	rc = or_imap_dump_folder(s, argv[1], above, err, sizeof err);
	or_imap_close(s);
	if (rc)
		fprintf(stderr, "outreach: %s\n", *err ? err : "mailbox-dump: writing stdout failed");
	return rc ? OR_EX_TEMPFAIL : OR_EX_OK;
}

/* ================================================================
 * REPLIES: inbound/ and mailboxes, matched to sends
 *
 * Each tick, before the claim: every due mailbox read and SPOOL/inbound/
 * taken in; each message classified, matched and applied to its lead.
 * ================================================================ */

/* The name a class is stored and counted by. */
static const char *or_reply_class_name(int cls)
{
	return cls == OR_REPLY_OWN ? "own" : or_mail_class_name(cls);
}

/* Whether addr is one of ours: an address of the mailbox, or a sender's. */
static int or_reply_own_addr(const struct or_config *cfg, const struct or_mailbox *mb, const char *addr)
{
	if (!*addr)
		return 0;
	for (int i = 0; mb && mb->addresses && mb->addresses[i]; i++)
		if (!strcasecmp(mb->addresses[i], addr))
			return 1;
	for (int i = 0; i < cfg->nsenders; i++)
		if (!strcasecmp(cfg->senders[i].from_addr, addr))
			return 1;
	return 0;
}

/* One message's header (untrusted, at most OR_IMAP_MAX_HEADER bytes read)
 * into r: its key, class and rule, and the send it answers.  Our own mail
 * (from one of our addresses, or bearing a Message-ID we sent) is OWN and
 * matches nothing.  Reads the ledger, writes nothing. */
static void or_reply_read(const struct or_config *cfg, const struct or_mailbox *mb, const char *hdr, size_t n,
                          struct or_reply *r)
{
	struct or_mail *m = or_xrealloc(NULL, sizeof *m);

	if (or_mail_parse(hdr, n < OR_IMAP_MAX_HEADER ? n : OR_IMAP_MAX_HEADER, m) < 0)
		or_oom();   /* exits 75: the message is read again next run */
	r->cls = or_mail_classify(m, &r->rule);
	snprintf(r->key, sizeof r->key, "%s", m->message_id);
	snprintf(r->from, sizeof r->from, "%s", m->from);
	r->date_at = m->date_at;
	if (or_reply_own_addr(cfg, mb, m->from) || or_store_msgid_ours(m->message_id)) {
		r->cls = OR_REPLY_OWN;
		r->rule = "own";
	} else if (r->cls != OR_MAIL_RECEIPT) {
		if (r->cls == OR_MAIL_BOUNCE) {
			snprintf(r->rcpt, sizeof r->rcpt, "%s", m->x_failed_recipients);
			r->hard = m->x_failed_recipients_present;
		}
		or_store_reply_match(cfg, m, r);
		if (r->cls == OR_MAIL_BOUNCE && !*r->job && *r->rcpt)
			or_store_bounce_match(r, NULL);
		r->need_text = r->cls == OR_MAIL_OOO || r->cls == OR_MAIL_BOUNCE;
	}
	free(m);
}

/* The start of a message's text (untrusted, at most OR_REPLY_TEXT bytes
 * read): an out-of-office's return day, a bounce's DSN (its address,
 * status, and the returned message's Message-ID, which names the send). */
static void or_reply_text(const struct or_config *cfg, struct or_reply *r, const char *text, size_t n)
{
	int day = 0, inclusive = 0;
	struct or_dsn d;

	if (n > OR_REPLY_TEXT)
		n = OR_REPLY_TEXT;
	if (r->cls == OR_MAIL_OOO &&
	    or_ooo_return_day(text, n, or_day_number((time_t)or_now(), cfg->timezone), &day, &inclusive) == 1)
		r->return_day = day + (inclusive != 0);
	if (r->cls != OR_MAIL_BOUNCE || or_dsn_parse(text, n, &d) != 1)
		return;
	snprintf(r->rcpt, sizeof r->rcpt, "%s", d.rcpt);
	snprintf(r->status, sizeof r->status, "%s", d.status);
	snprintf(r->diag, sizeof r->diag, "%s", d.diag);
	r->hard = d.hard;
	if (!r->method || strncmp(r->method, "dsn-", 4)) {   /* the DSN's own figures name the send best */
		char keep[OR_ID_HEX + 1];
		snprintf(keep, sizeof keep, "%s", r->job);
		const char *how = r->method;
		r->job[0] = 0;
		r->method = NULL;
		or_store_bounce_match(r, d.orig_msgid);
		if (!*r->job) {
			snprintf(r->job, sizeof r->job, "%s", keep);
			r->method = how;
		}
	}
}

/* ---- mailboxes ---- */

/* What a FETCH walk collects: each message read as it arrives. */
struct or_reply_walk {
	const struct or_config *cfg;
	const struct or_mailbox *mb;
	const char *folder;
	long long validity;
	struct or_replies w;
};

static int or_reply_collect(const struct or_imap_msg *msg, void *arg)
{
	struct or_reply_walk *x = arg;
	struct or_reply *r;

	x->w.v = or_xrealloc(x->w.v, sizeof *x->w.v * (size_t)(x->w.n + 1));
	r = memset(&x->w.v[x->w.n++], 0, sizeof *r);
	r->uid = msg->uid;
	or_reply_read(x->cfg, x->mb, msg->hdr, msg->hdr_len, r);
	if (!*r->key)   /* no Message-ID: the folder's own name for it */
		snprintf(r->key, sizeof r->key, "uid:%.300s:%lld:%lld", x->folder, x->validity, msg->uid);
	return 0;
}

/* The texts a window's messages need (BODY.PEEK[TEXT]<0.4096>: still
 * never \Seen).  0, or -1 with err (the window is read again next time). */
static int or_reply_texts(const struct or_config *cfg, struct or_imap *s, struct or_replies *w, char *err,
                          size_t errn)
{
	for (int i = 0; i < w->n; i++) {
		struct or_buf b = { 0 };
		int rc;
		if (!w->v[i].need_text)
			continue;
		if ((rc = or_imap_fetch_text(s, w->v[i].uid, &b, err, errn)) == 0)
			or_reply_text(cfg, &w->v[i], b.s ? b.s : "", b.len);
		or_buf_free(&b);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* One window: UIDs from:to read above `above`, their texts, then their
 * effects and the cursor (last >= 0) in one transaction.  The count read,
 * or -1 with err. */
static int or_mailbox_window(const struct or_config *cfg, struct or_imap *s, const struct or_mailbox *mb,
                             const char *folder, long long validity, long long from, long long to, long long above,
                             long long last, char *err, size_t errn)
{
	struct or_reply_walk x = { cfg, mb, folder, validity, { 0 } };
	int n = or_imap_fetch_headers(s, from, to, above, or_reply_collect, &x, err, errn);

	if (n >= 0 && or_reply_texts(cfg, s, &x.w, err, errn) == 0)
		or_store_replies_window(cfg, mb->name, folder, &x.w, validity, last, or_now());
	else
		n = -1;
	free(x.w.v);
	return n < 0 ? -1 : x.w.n;
}

/* A folder's cursor checked against its UIDVALIDITY: the last UID read,
 * or (never read, or the server renumbered the folder) a new baseline at
 * its last UID now, committed: mail already there answers nothing we are
 * about to send, and a renumbered folder must not be read twice. */
static long long or_mailbox_baseline(const struct or_config *cfg, const struct or_mailbox *mb, const char *folder,
                                     const struct or_imap_folder *f, int *renumbered)
{
	long long validity = 0, last = 0;
	struct or_replies none = { NULL, 0 };

	int known = or_store_mailbox_cursor(mb->name, folder, &validity, &last);

	*renumbered = known && validity != f->uidvalidity;
	if (known && !*renumbered)
		return last;
	or_log(2, "event=mailbox mailbox=%s folder=\"%s\" baseline=%lld%s", mb->name, folder, f->uidnext - 1,
	       validity ? " reason=uidvalidity-changed" : "");
	or_store_replies_window(cfg, mb->name, folder, &none, f->uidvalidity, f->uidnext - 1, or_now());
	return f->uidnext - 1;
}

/* One folder: EXAMINE, then windows of OR_IMAP_WINDOW UIDs above the cursor
 * up to the last UID EXAMINE saw, each committed with its effects, while
 * *left messages and the time last.  *caught_up when it reached the end.
 * 0, or -1 with err. */
static int or_mailbox_folder(const struct or_config *cfg, struct or_imap *s, const struct or_mailbox *mb,
                             const char *folder, double until, int *left, int *caught_up, char *err, size_t errn)
{
	struct or_imap_folder f;
	long long last, top;
	int renumbered = 0;

	*caught_up = 0;
	if (or_imap_examine(s, folder, &f, err, errn))
		return -1;
	if (f.uidnext < 1) {
		snprintf(err, errn, "mailbox %s: folder %s: the server gave no UIDNEXT", mb->name, folder);
		return -1;
	}
	double since = or_store_mailbox_fresh(mb);
	last = or_mailbox_baseline(cfg, mb, folder, &f, &renumbered);
	/* renumbered: what came since the last full read is read again by
	 * date (UID SEARCH SINCE), and what was applied before is not again */
	if (renumbered && since > 0 &&
	    or_mailbox_backfill(cfg, s, mb, folder, or_day_number((time_t)since, cfg->timezone), until, left, err, errn))
		return -1;
	top = f.uidnext - 1;
	while (last < top) {
		if (*left <= 0 || or_now() >= until || or_stop)
			return 0;
		long long to = last + (*left < OR_IMAP_WINDOW ? *left : OR_IMAP_WINDOW);
		int n = or_mailbox_window(cfg, s, mb, folder, f.uidvalidity, last + 1, to < top ? to : top, last,
		                          to < top ? to : top, err, errn);
		if (n < 0)
			return -1;
		*left -= n;
		last = to < top ? to : top;
	}
	*caught_up = 1;
	return 0;
}

/* A backfill (pull --since): the folder's messages since day, by UID
 * SEARCH, read in windows of nearby UIDs; the cursor is left where it is
 * (a baseline made first when there is none), replies seen before are
 * not applied twice.  0, or -1 with err. */
static int or_mailbox_backfill(const struct or_config *cfg, struct or_imap *s, const struct or_mailbox *mb,
                               const char *folder, int day, double until, int *left, char *err, size_t errn)
{
	struct or_imap_folder f;
	long long *uids = NULL;
	int nu = 0, rc = 0, renumbered;

	if (or_imap_examine(s, folder, &f, err, errn) || or_imap_search_since(s, day, &uids, &nu, err, errn))
		return -1;
	if (f.uidnext >= 1)
		or_mailbox_baseline(cfg, mb, folder, &f, &renumbered);
	for (int i = 0, j; i < nu && *left > 0 && or_now() < until && !or_stop && rc == 0; i = j + 1) {
		for (j = i; j + 1 < nu && j - i + 1 < OR_IMAP_WINDOW && uids[j + 1] - uids[i] < OR_IMAP_WINDOW * 4; j++)
			;
		int n = or_mailbox_window(cfg, s, mb, folder, f.uidvalidity, uids[i], uids[j], uids[i] - 1, -1, err, errn);
		if (n < 0)
			rc = -1;
		else
			*left -= n;
	}
	free(uids);
	return rc;
}

/* One mailbox: one session, each folder in turn (since_day > 0: a
 * backfill), each folder's attempt and error recorded.  A failure is never
 * a verdict on anyone's mail: logged, and its follow-ups wait (the gate)
 * until a pull succeeds.  0, or -1 when a folder failed. */
static int or_mailbox_pull(const struct or_config *cfg, const struct or_mailbox *mb, int since_day, double until,
                           int *left)
{
	char err[800] = "";
	struct or_imap *s = or_imap_open(mb, err, sizeof err);
	int bad = 0;

	for (int i = 0; mb->folders[i]; i++) {
		int caught_up = 0, rc = -1;
		if (s && since_day > 0)
			rc = or_mailbox_backfill(cfg, s, mb, mb->folders[i], since_day, until, left, err, sizeof err);
		else if (s)
			rc = or_mailbox_folder(cfg, s, mb, mb->folders[i], until, left, &caught_up, err, sizeof err);
		if (rc < 0) {
			bad++;
			or_log(1, "event=mailbox mailbox=%s error=\"%s\"", mb->name, err);
		}
		if (since_day <= 0)
			or_store_mailbox_mark(mb->name, mb->folders[i], rc < 0 ? err : NULL, caught_up, or_now());
	}
	or_imap_close(s);
	return bad ? -1 : 0;
}

/* Pulls every mailbox that is due (all of them when force), within budget
 * seconds for all of them together, each its share of what is left and at
 * most replies.max_messages messages.  How many could not be read. */
static int or_replies_pull(const struct or_config *cfg, int force, double budget)
{
	double until = or_now() + budget;
	int due[OR_MAX_MAILBOXES], ndue = 0, bad = 0;

	for (int i = 0; i < cfg->nmailboxes; i++)
		if (force || or_now() - or_store_mailbox_last_attempt(&cfg->mailboxes[i]) >= cfg->reply_interval)
			due[ndue++] = i;
	for (int k = 0; k < ndue && !or_stop; k++) {
		double now = or_now(), share = (until - now) / (ndue - k);
		int left = cfg->reply_max_messages;
		bad += or_mailbox_pull(cfg, &cfg->mailboxes[due[k]], 0, now + (share > 2 ? share : 2), &left) < 0;
	}
	return bad;
}

/* ---- inbound/ ---- */

/* The first OR_INBOUND_MAX bytes of inbound/new/NAME, NUL-terminated, in
 * *out; 0, or -1 with errno (ENOENT: gone; not a regular file: EINVAL). */
static int or_inbound_read(const char *name, char **out, size_t *len)
{
	int fd = openat(or_dirfd[OR_D_IN_NEW], name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), e;
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fd == -1)
		return -1;
	if ((e = fstat(fd, &st) == -1 ? errno : 0) || !S_ISREG(st.st_mode)) {   /* st is read only when set */
		e = e ? e : EINVAL;
		close(fd);
		return errno = e, -1;
	}
	buf = or_xrealloc(NULL, OR_INBOUND_MAX + 1);
	while (got < OR_INBOUND_MAX) {
		ssize_t r = read(fd, buf + got, OR_INBOUND_MAX - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == -1) {
				e = errno;
				free(buf);
				close(fd);
				return errno = e, -1;
			}
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	buf[got] = 0;
	*out = buf;
	*len = got;
	return 0;
}

/* Where a message's header ends: the offset of its blank line's start
 * (CRLF CRLF or LF LF), or n when it has none; *body past the blank line. */
static size_t or_inbound_split(const char *p, size_t n, size_t *body)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] == '\n' && p[i + 1] == '\n')
			return *body = i + 2, i + 1;
		if (p[i] == '\n' && p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
			return *body = i + 3, i + 1;
	}
	return *body = n, n;
}

/* inbound/cur/'s files older than cutoff removed (housekeeping, hourly):
 * they were applied; the ledger's replies rows tell what they did. */
static void or_inbound_prune(double cutoff)
{
	int fd = dup(or_dirfd[OR_D_IN_CUR]);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	struct stat st;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)))
		if (or_name_ok(de->d_name) && fstatat(or_dirfd[OR_D_IN_CUR], de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && (double)st.st_mtime < cutoff)
			unlinkat(or_dirfd[OR_D_IN_CUR], de->d_name, 0);
	closedir(d);
}

/* Mail dropped into inbound/new/ (a Sieve or procmail rule, a provider's
 * inbound route, a CRM): each file read as a mailbox's message would be,
 * applied in its own transaction (source "inbound", keyed by Message-ID,
 * else by file name), then moved to inbound/cur/.  A crash between the
 * commit and the rename reads the file again next run, and its row makes
 * that a no-op.  A file that cannot be read now stays for the next run;
 * names outside [A-Za-z0-9][A-Za-z0-9._-]* are left alone.  How many. */
static int or_inbound_take(const struct or_config *cfg, double now)
{
	DIR *d;
	struct dirent *de;
	int fd, n = 0, end = 0;

	or_dir_refresh(OR_D_IN_NEW);   /* compacted by another run since this one opened it */
	or_retired_drain(OR_D_IN_NEW);
	if ((fd = dup(or_dirfd[OR_D_IN_NEW])) == -1)
		return 0;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	rewinddir(d);
	while (n < OR_INBOUND_PER_TICK && !or_stop) {
		if (!(de = readdir(d))) {
			end = 1;   /* read to its end: or_drop_compact may make it small again */
			break;
		}
		char *data = NULL;
		size_t len = 0, body = 0, hlen;
		struct or_reply r;
		struct or_replies w = { &r, 1 };
		if (!or_name_ok(de->d_name))
			continue;
		if (or_inbound_read(de->d_name, &data, &len)) {
			if (errno != ENOENT)
				or_log(1, "event=inbound file=%s error=\"%s: left in inbound/new\"", de->d_name, strerror(errno));
			continue;
		}
		memset(&r, 0, sizeof r);
		hlen = or_inbound_split(data, len, &body);
		or_reply_read(cfg, NULL, data, hlen, &r);
		if (!*r.key)
			snprintf(r.key, sizeof r.key, "file:%s", de->d_name);
		if (r.need_text)
			or_reply_text(cfg, &r, data + body, len - body);
		free(data);
		or_store_replies_window(cfg, "inbound", "", &w, 0, -1, now);
		if (or_move(OR_D_IN_NEW, de->d_name, OR_D_IN_CUR, de->d_name) == -1 && errno != ENOENT)
			or_log(0, "event=inbound file=%s error=\"%s\"", de->d_name, strerror(errno));
		n++;
	}
	if (end)
		or_drop_compact(OR_D_IN_NEW, d);
	closedir(d);
	return n;
}

/* ================================================================
 * HEALTH AND ALERTS
 *
 * After each run the conditions the binary can judge itself are evaluated
 * and alerts raised or cleared on change (account circuits are judged where
 * the outcome is recorded).  Changes queued in alert_log are delivered to
 * alert_command (argv, no shell, details in OUTREACH_ALERT_* variables) and
 * alert_webhook (JSON with a Slack-compatible "text"); a channel that fails
 * is logged and retried next run, and never holds up sending.
 * ================================================================ */

/* Whether a domain's figures put it over a threshold (1, with the reason
 * and figures in why), judged once min_sent sends are in its window. */
static int or_health_verdict(const struct or_config *cfg, const struct or_health *h, char *why, size_t n)
{
	if (h->sends < cfg->health_min_sent)
		return 0;
	double br = (double)h->bounces / (double)h->sends, cr = (double)h->complaints / (double)h->sends;
	if (br <= cfg->max_bounce_rate && cr <= cfg->max_complaint_rate)
		return 0;
	snprintf(why, n, "auto-disabled: %s rate %.2f%% (%lld of %lld sends) over %.2f%%",
	         br > cfg->max_bounce_rate ? "bounce" : "complaint", 100 * (br > cfg->max_bounce_rate ? br : cr),
	         br > cfg->max_bounce_rate ? h->bounces : h->complaints, h->sends,
	         100 * (br > cfg->max_bounce_rate ? cfg->max_bounce_rate : cfg->max_complaint_rate));
	return 1;
}

/* Disables the senders of every domain over a threshold, with the reason and
 * figures, and raises an alert once. */
static void or_health_judge(const struct or_config *cfg, double now)
{
	or_store_health_judge(cfg, now);
}

/* Why a sender cannot take a job now, into why (empty when it can): its cap
 * spent (*capped set), or another block (disabled, paused, a failed domain
 * check, its accounts' circuits open or paused). */
static void or_sender_why_not(const struct or_config *cfg, const struct or_sender *s, double now, int day,
                              char *why, size_t n, int *capped)
{
	struct or_sender_state ss;
	struct or_account a;
	double until;
	int cap;
	char t[40];

	*capped = 0;
	why[0] = 0;
	or_sender_state_get(s, &ss);
	if (!ss.enabled) {   /* the reason says paused, domain check failed, or the operator's/auto-disable's words */
		snprintf(why, n, "%s%.200s", ss.paused || !strncmp(ss.reason, "domain check", 12) ? "" : "disabled: ",
		         ss.reason);
		return;
	}
	if (or_sender_account(cfg, s, now, &until) < 0) {
		or_account_get(cfg->providers[s->provider].name, &a);
		or_fmt_rfc3339((time_t)until, t, sizeof t);
		snprintf(why, n, "account %s %s until %s", cfg->providers[s->provider].name,
		         a.open_until > now ? "down (circuit open)" : a.paused_until > now ? "paused" : "at its 24 h limit", t);
		return;
	}
	if (or_sender_sent_on(s->name, day) >= (cap = or_sender_cap(s, &ss, day))) {
		snprintf(why, n, "cap %d spent", cap);
		*capped = 1;
	}
}

/* senders_exhausted when every sender's cap for today is spent while jobs
 * are due; senders_blocked, naming each sender's block, when none can send
 * for another reason (so an account down is not reported as caps spent). */
static void or_alert_senders(const struct or_config *cfg, double now, long long due)
{
	int day = or_day_number((time_t)now, cfg->timezone), usable = 0, capped = 0;
	struct or_buf why = { 0 };

	for (int i = 0; i < cfg->nsenders && due > 0; i++) {
		char w[300];
		int c;
		or_sender_why_not(cfg, &cfg->senders[i], now, day, w, sizeof w, &c);
		usable += !*w;
		capped += c;
		if (*w && why.len < 600)
			or_buf_printf(&why, "%s%s: %s", why.len ? "; " : "", cfg->senders[i].name, w);
	}
	if (due > 0 && !usable && capped == cfg->nsenders) {
		char detail[160];
		snprintf(detail, sizeof detail, "%lld jobs are due and no sender has capacity left today", due);
		or_alert_raise("senders_exhausted", detail, now);
		or_alert_clear("senders_blocked");
	} else if (due > 0 && !usable) {
		struct or_buf d = { 0 };
		or_buf_printf(&d, "%lld jobs are due and no sender can send: %s%s", due, why.s,
		              why.len >= 600 ? "; ..." : "");
		or_alert_raise("senders_blocked", d.s, now);
		or_alert_clear("senders_exhausted");
		or_buf_free(&d);
	} else {
		or_alert_clear("senders_exhausted");
		or_alert_clear("senders_blocked");
	}
	or_buf_free(&why);
}

/* error_rate: the failed share of the last hour's attempts over
 * alerts.error_share, once alerts.min_attempts were made. */
static void or_alert_error_rate(const struct or_config *cfg, double now, long long tries, long long bad)
{
	char detail[300];

	if (tries >= cfg->alert_min_attempts && bad > cfg->alert_error_share * (double)tries) {
		snprintf(detail, sizeof detail, "%lld of %lld attempts in the last hour failed (over %.0f%%)", bad, tries,
		         cfg->alert_error_share * 100);
		or_alert_raise("error_rate", detail, now);
	} else if (tries < cfg->alert_min_attempts || bad <= cfg->alert_error_share * (double)tries) {
		or_alert_clear("error_rate");
	}
}

/* backlog_old: the oldest due job (oldest, 0 when none) waited past
 * alerts.backlog_age. */
static void or_alert_backlog(const struct or_config *cfg, double now, double oldest)
{
	char detail[300];

	if (oldest > 0 && now - oldest > cfg->alert_backlog_age) {
		snprintf(detail, sizeof detail, "a due job has waited %.0f min (limit %.0f min)", (now - oldest) / 60,
		         cfg->alert_backlog_age / 60);
		or_alert_raise("backlog_old", detail, now);
	} else {
		or_alert_clear("backlog_old");
	}
}

static void or_alerts_evaluate(const struct or_config *cfg, double now)
{
	or_store_alerts_evaluate(cfg, now);
}

/* Runs alert_command with the alert in its environment; 0 on exit 0. */
static int or_alert_exec(const struct or_config *cfg, const char *name, const char *event, const char *detail,
                         const char *at)
{
	pid_t pid = fork();
	int status = 0;
	double until = or_mono() + 10;

	if (pid == -1)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		setenv("OUTREACH_ALERT", name, 1);
		setenv("OUTREACH_ALERT_EVENT", event, 1);
		setenv("OUTREACH_ALERT_DETAIL", detail, 1);
		setenv("OUTREACH_ALERT_AT", at, 1);
		signal(SIGPIPE, SIG_DFL);
		execv(cfg->alert_command[0], cfg->alert_command);
		_exit(127);
	}
	for (;;) {   /* at most 10 s: an alert channel never holds up a run */
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w == -1 && errno != EINTR)
			return -1;
		if (or_mono() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(10000);
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int or_alert_post(const struct or_config *cfg, const char *name, const char *event, const char *detail,
                         const char *at)
{
	struct or_provider p;
	struct or_http *h;
	char why[300], text[800];
	long status;
	char *json;

	memset(&p, 0, sizeof p);
	p.type = OR_PROV_SENDGRID;   /* any HTTP type: only the transport settings matter */
	p.timeout = 10;
	h = or_http_new(&p, cfg->alert_webhook);
	snprintf(text, sizeof text, "outreach: %s %s: %s", name, event, detail);
	const char *args[] = { text, name, event, detail, at };
	json = or_json_sql("SELECT json_object('text', ?1, 'alert', ?2, 'event', ?3, 'detail', ?4, 'at', ?5)", args, 5);
	or_buf_puts(&h->body, json ? json : "{}");
	free(json);
	or_http_addheader(h, "Content-Type: application/json");
	or_http_post(h);
	status = or_http_perform(h, why, sizeof why);
	or_http_free(h);
	if (status < 200 || status >= 300) {
		or_log(1, "event=alert-webhook alert=%s error=\"%s\"", name, why);
		return -1;
	}
	return 0;
}

/* Delivers queued alert changes in order, each channel on its own: a
 * change is done for a channel once that channel took it, so a failing
 * webhook never makes alert_command run twice.  A channel stops at its first
 * failure (keeping the order) and tries again next run. */
static void or_alerts_deliver(const struct or_config *cfg)
{
	for (int ch = 0; ch < 2; ch++) {
		struct or_alert_entry q[32];
		int n;
		if ((ch == 0 && !cfg->alert_command) || (ch == 1 && !*cfg->alert_webhook))
			continue;
#if OR_PG
		n = cfg->store_pg ? or_pg_alert_queue(ch, q, 32) : or_store_alert_queue(ch, q, 32);
#else
		n = or_store_alert_queue(ch, q, 32);
#endif
		for (int i = 0; i < n; i++) {
			char at[40];
			or_fmt_rfc3339((time_t)q[i].at, at, sizeof at);
			int ok = ch == 0 ? or_alert_exec(cfg, q[i].name, q[i].event, q[i].detail, at) == 0
			                 : or_alert_post(cfg, q[i].name, q[i].event, q[i].detail, at) == 0;
			if (!ok && ch == 0)
				or_log(1, "event=alert-command alert=%s error=\"%s failed\"", q[i].name, cfg->alert_command[0]);
#if OR_PG
			if (cfg->store_pg)
				or_pg_alert_delivered(ch, q[i].id, ok);
			else
#endif
				or_store_alert_delivered(ch, q[i].id, ok, cfg->alert_command != NULL, *cfg->alert_webhook != 0);
			if (!ok)
				break;
		}
	}
}

/* ================================================================
 * REPORTS: status.txt, status.json, outreach.prom
 *
 * One snapshot is read from the ledger (or_store_snapshot) and rendered
 * three ways; the writers only format what it holds.  Each file is written
 * to a temp name and renamed, so a reader (or a crash) only ever sees a
 * whole report; never fsynced (derived data: the next tick rewrites it).
 * Every count comes from the ledger; only new/ is counted from the folder,
 * since arrivals are not in the ledger yet.
 * ================================================================ */

/* Files in new/: the arrivals, not in the ledger until ingested. */
static long long or_snap_count_new(void)
{
	long long n = 0;
	DIR *d;
	struct dirent *de;
	int fd;

	or_dir_refresh(OR_D_NEW);   /* compacted by another run since this one opened it */
	if ((fd = dup(or_dirfd[OR_D_NEW])) >= 0 && (d = fdopendir(fd))) {
		rewinddir(d);
		while ((de = readdir(d)))
			if (de->d_name[0] != '.' && de->d_type != DT_DIR)
				n++;
		closedir(d);
	}
	return n;
}

/* run/idle: the last idle tick (or_tick_stamp_idle), for a snapshot with no
 * run of its own, which would show the last run in the ledger: the later
 * of the two is the last run.  A missing or malformed stamp is none. */
static void or_snap_idle_tick(struct or_snap *sn)
{
	char b[128], id[33];
	double started, duration;
	int fd = or_dirfd[OR_D_RUN] >= 0 ? openat(or_dirfd[OR_D_RUN], "idle", O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	ssize_t n = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	b[n] = 0;
	if (sscanf(b, "%32[0-9a-f] %lf %lf", id, &started, &duration) != 3 || started <= sn->run.started)
		return;
	memset(&sn->run, 0, sizeof sn->run);
	snprintf(sn->run.id, sizeof sn->run.id, "%s", id);
	sn->run.started = started;
	sn->run.duration = duration;
}

/* The whole snapshot: the ledger's, this run's figures when run is given
 * (else the last finished run's, or the last idle tick's), new/ and each
 * sender's domain health.
 * The caller frees it with or_snap_free. */
static void or_snap_collect(const struct or_config *cfg, const struct or_run *run, struct or_snap *sn)
{
#if OR_PG
	if (cfg->store_pg)
		or_pg_snapshot(cfg, or_now(), !run, sn);
	else
#endif
		or_store_snapshot(cfg, or_now(), !run, sn);
	if (run) {
		snprintf(sn->run.id, sizeof sn->run.id, "%s", run->id);
		sn->run.started = run->started;
		sn->run.duration = sn->now - run->started;
		sn->run.claimed = run->claimed; sn->run.sent = run->sent; sn->run.deferred = run->deferred;
		sn->run.failed = run->failed; sn->run.bad = run->bad; sn->run.held = run->held;
	} else {
		or_snap_idle_tick(sn);
	}
	sn->folder[OR_D_NEW] = or_snap_count_new();
	for (int i = 0; i < sn->nsenders; i++) {
		struct or_snap_sender *x = &sn->senders[i];
		struct or_health h;
#if OR_PG
		if (cfg->store_pg)
			or_pg_domain_health(cfg, x->s->domain, sn->now, &h);
		else
#endif
			or_domain_health(cfg, x->s->domain, sn->now, &h);
		x->health_sends = h.sends;
		x->bounce_rate = h.sends ? (double)h.bounces / (double)h.sends : 0;
		x->complaint_rate = h.sends ? (double)h.complaints / (double)h.sends : 0;
	}
}

/* The snapshot for callers that print it and exit (status, senders): its
 * arrays belong to this function and live until its next call, which frees
 * them, so such a caller has nothing to free. */
static void or_snap_take(const struct or_config *cfg, const struct or_run *run, struct or_snap *sn)
{
	static struct or_snap kept;

	or_snap_free(&kept);
	or_snap_collect(cfg, run, sn);
	kept = *sn;
}

static const char *const or_report_folders[] = { "new", "cur", "defer", "done", "failed", "bad", "held" };
static const int or_report_dirs[] = { OR_D_NEW, OR_D_CUR, OR_D_DEFER, OR_D_DONE, OR_D_FAILED, OR_D_BAD, OR_D_HELD };

/* status.json: the last run and the spool. */
static void or_json_run(const struct or_snap *sn, struct or_buf *b)
{
	char t[40], t2[40];

	or_fmt_rfc3339((time_t)sn->now, t, sizeof t);
	or_fmt_rfc3339((time_t)sn->run.started, t2, sizeof t2);
	or_buf_printf(b, "{\"generated_at\":\"%s\",\"run\":{\"id\":\"%s\",\"started_at\":%s%s%s,"
	              "\"duration_s\":%.3f,\"claimed\":%lld,\"sent\":%lld,\"deferred\":%lld,\"failed\":%lld,"
	              "\"bad\":%lld,\"held\":%lld},\"spool\":{", t, sn->run.id, sn->run.started ? "\"" : "",
	              sn->run.started ? t2 : "null", sn->run.started ? "\"" : "", sn->run.duration,
	              sn->run.claimed, sn->run.sent, sn->run.deferred, sn->run.failed, sn->run.bad, sn->run.held);
	for (size_t i = 0; i < 7; i++)
		or_buf_printf(b, "\"%s\":%lld,", or_report_folders[i], sn->folder[or_report_dirs[i]]);
	or_buf_printf(b, "\"oldest_waiting_s\":%.0f}", sn->oldest_waiting);
}

/* status.json: the senders and the accounts. */
static void or_json_senders(const struct or_config *cfg, const struct or_snap *sn, struct or_buf *b)
{
	or_buf_puts(b, ",\"senders\":[");
	for (int i = 0; i < sn->nsenders; i++) {
		const struct or_snap_sender *x = &sn->senders[i];
		or_buf_printf(b, "%s{\"name\":", i ? "," : "");
		or_json_str(b, x->s->name);
		or_buf_puts(b, ",\"domain\":");
		or_json_str(b, x->s->domain);
		or_buf_puts(b, ",\"provider\":");
		or_json_str(b, cfg->providers[x->s->provider].name);
		or_buf_printf(b, ",\"enabled\":%s,\"disabled_reason\":", x->enabled ? "true" : "false");
		if (x->enabled)
			or_buf_puts(b, "null");
		else
			or_json_str(b, x->reason);
		or_buf_printf(b, ",\"sent_today\":%d,\"cap_today\":%d,\"warmup_day\":%d,\"bounce_rate\":%.6f,"
		              "\"complaint_rate\":%.6f,\"health_sends\":%lld,\"account\":", x->sent_today, x->cap_today,
		              x->warmup_day, x->bounce_rate, x->complaint_rate, x->health_sends);
		if (x->account >= 0)
			or_json_str(b, cfg->providers[x->account].name);
		else
			or_buf_puts(b, "null");
		or_buf_puts(b, ",\"account_reason\":");
		or_json_str(b, x->account == x->s->provider ? "primary" : x->account >= 0 ?
		            "fallback: the primary account's circuit is open or it is throttled" :
		            "no usable account: circuit open or throttled");
		or_buf_puts(b, "}");
	}
	or_buf_puts(b, "],\"accounts\":[");
	for (int i = 0; i < cfg->nproviders; i++) {
		const struct or_provider *p = &cfg->providers[i];
		const struct or_account *a = &sn->accounts[i];
		or_buf_printf(b, "%s{\"name\":", i ? "," : "");
		or_json_str(b, p->name);
		or_buf_printf(b, ",\"circuit_open\":%s,\"failures\":%d,\"paused_until\":%.0f,\"rate\":%g,\"reason\":",
		              a->open_until > sn->now ? "true" : "false", a->failures, a->paused_until, or_account_rate(p, a));
		or_json_str(b, a->reason);
		or_buf_puts(b, ",\"limits\":");
		or_json_str(b, *a->note ? a->note : a->limits_at > 0 ? "as reported by the provider" : "as configured");
		or_buf_puts(b, "}");
	}
	or_buf_puts(b, "]");
}

/* status.json: the clients and the campaigns. */
static void or_json_clients(const struct or_config *cfg, const struct or_snap *sn, struct or_buf *b)
{
	or_buf_puts(b, ",\"clients\":[");
	for (int i = 0; i < sn->nclients; i++) {
		const struct or_snap_client *c = &sn->clients[i];
		const struct or_client *cl = or_client_find(cfg, c->name);
		or_buf_printf(b, "%s{\"name\":", i ? "," : "");
		or_json_str(b, c->name);
		or_buf_printf(b, ",\"sent_today\":%lld,\"cap_today\":", c->sent_today);
		if (cl && cl->daily_limit > 0)
			or_buf_printf(b, "%d", cl->daily_limit);
		else
			or_buf_puts(b, "null");
		or_buf_printf(b, ",\"pending\":%lld}", c->pending);
	}
	or_buf_puts(b, "],\"campaigns\":[");
	for (int i = 0; i < sn->ncampaigns; i++) {
		const struct or_snap_campaign *c = &sn->campaigns[i];
		or_buf_printf(b, "%s{\"client\":", i ? "," : "");
		or_json_str(b, c->client);
		or_buf_puts(b, ",\"name\":");
		or_json_str(b, c->name);
		or_buf_printf(b, ",\"sent\":%lld,\"delivered\":%lld,\"bounced\":%lld,\"complained\":%lld,\"opened\":%lld,"
		              "\"clicked\":%lld,\"unsubscribed\":%lld,\"failed\":%lld,\"pending\":%lld,\"held\":%lld}",
		              c->sent, c->delivered, c->bounced, c->complained, c->opened, c->clicked, c->unsubscribed,
		              c->failed, c->pending, c->held);
	}
	or_buf_puts(b, "]");
}

/* One campaign's sequences, summed from the snapshot's leads rows. */
struct or_seq_sum { const char *client, *campaign; long long leads, contacted, replied, paused, active; };

/* The i-th campaign of sn->leads (rows sorted by client, campaign) summed
 * from row *k on; 0 when none is left. */
static int or_seq_sum_next(const struct or_snap *sn, int *k, struct or_seq_sum *s)
{
	const struct or_snap_rows *L = &sn->leads;

	if (*k >= L->n)
		return 0;
	memset(s, 0, sizeof *s);
	s->client = L->row[*k].col[0];
	s->campaign = L->row[*k].col[1];
	for (; *k < L->n && !strcmp(L->row[*k].col[0], s->client) && !strcmp(L->row[*k].col[1], s->campaign); (*k)++) {
		long long n = (long long)L->row[*k].v;
		const char *state = L->row[*k].col[2];
		s->leads += n;
		s->replied += !strcmp(state, "replied") ? n : 0;
		s->paused += !strcmp(state, "paused") ? n : 0;
		s->active += !strcmp(state, "active") ? n : 0;
	}
	for (int i = 0; i < sn->contacted.n; i++)
		if (!strcmp(sn->contacted.row[i].col[0], s->client) && !strcmp(sn->contacted.row[i].col[1], s->campaign))
			s->contacted = (long long)sn->contacted.row[i].v;
	return 1;
}

/* The human replies the ledger holds for a campaign's step. */
static long long or_seq_step_replies(const struct or_snap *sn, const char *client, const char *campaign, const char *step)
{
	for (int i = 0; i < sn->steps_replied.n; i++) {
		char *const *c = sn->steps_replied.row[i].col;
		if (!strcmp(c[0], client) && !strcmp(c[1], campaign) && !strcmp(c[2], step))
			return (long long)sn->steps_replied.row[i].v;
	}
	return 0;
}

/* status.json's sequences, replies and mailboxes. */
static void or_json_sequences(const struct or_snap *sn, struct or_buf *b)
{
	struct or_seq_sum s;
	char t[40];
	int k = 0, first = 1;

	or_buf_puts(b, ",\"sequences\":[");
	while (or_seq_sum_next(sn, &k, &s)) {
		or_buf_puts(b, first ? "{\"client\":" : ",{\"client\":");
		first = 0;
		or_json_str(b, s.client);
		or_buf_puts(b, ",\"campaign\":");
		or_json_str(b, s.campaign);
		or_buf_printf(b, ",\"leads\":%lld,\"contacted\":%lld,\"replied\":%lld,\"reply_rate\":%.4f,\"active\":%lld,"
		              "\"paused\":%lld,\"steps\":[", s.leads, s.contacted, s.replied,
		              s.contacted ? (double)s.replied / (double)s.contacted : 0.0, s.active, s.paused);
		for (int i = 0, k2 = 0; i < sn->steps_sent.n; i++) {
			char *const *c = sn->steps_sent.row[i].col;
			if (strcmp(c[0], s.client) || strcmp(c[1], s.campaign))
				continue;
			long long sent = (long long)sn->steps_sent.row[i].v, rep = or_seq_step_replies(sn, c[0], c[1], c[2]);
			or_buf_printf(b, "%s{\"step\":%d,\"sent\":%lld,\"replies\":%lld,\"reply_rate\":%.4f}", k2++ ? "," : "",
			              atoi(c[2]), sent, rep, sent ? (double)rep / (double)sent : 0.0);
		}
		or_buf_puts(b, "]}");
	}
	or_buf_puts(b, "],\"replies\":[");
	for (int i = 0; i < sn->replies.n; i++) {
		char *const *c = sn->replies.row[i].col;
		or_buf_puts(b, i ? ",{\"client\":" : "{\"client\":");
		or_json_str(b, c[0]);
		or_buf_puts(b, ",\"campaign\":");
		or_json_str(b, c[1]);
		or_buf_printf(b, ",\"step\":%d,\"kind\":", atoi(c[2]));
		or_json_str(b, c[3]);
		or_buf_printf(b, ",\"n\":%.0f}", sn->replies.row[i].v);
	}
	or_buf_puts(b, "],\"engagement\":[");
	for (int i = 0; i < sn->inactive.n; i++) {
		or_buf_puts(b, i ? ",{\"client\":" : "{\"client\":");
		or_json_str(b, sn->inactive.row[i].col[0]);
		or_buf_printf(b, ",\"inactive\":%.0f,\"suppressed\":%s}", sn->inactive.row[i].v,
		              strcmp(sn->inactive.row[i].col[1], "1") ? "false" : "true");
	}
	or_buf_puts(b, "],\"mailboxes\":[");
	for (int i = 0; i < sn->mailboxes.n; i++) {
		or_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		or_json_str(b, sn->mailboxes.row[i].col[0]);
		if (sn->mailboxes.row[i].v > 0) {
			or_fmt_rfc3339((time_t)sn->mailboxes.row[i].v, t, sizeof t);
			or_buf_printf(b, ",\"last_success\":\"%s\"}", t);
		} else {
			or_buf_puts(b, ",\"last_success\":null}");
		}
	}
	or_buf_puts(b, "]");
}

/* status.txt's sequences table (only when there are leads). */
static void or_text_sequences(const struct or_snap *sn, struct or_buf *b)
{
	struct or_seq_sum s;
	int k = 0;

	for (int i = 0; i < sn->inactive.n; i++)
		or_buf_printf(b, "%sinactive addresses: client %s: %.0f (%s)\n", i ? "" : "\n", sn->inactive.row[i].col[0],
		              sn->inactive.row[i].v, strcmp(sn->inactive.row[i].col[1], "1") ? "reported: outreach engagement "
		              "lists them" : "suppressed as inactive");
	if (!sn->leads.n)
		return;
	or_buf_printf(b, "\n%-20s %-20s %8s %9s %8s %7s %8s %8s\n", "CLIENT", "CAMPAIGN", "LEADS", "CONTACTED", "REPLIED",
	              "REPLY%", "ACTIVE", "PAUSED");
	while (or_seq_sum_next(sn, &k, &s)) {
		or_buf_printf(b, "%-20.20s %-20.20s %8lld %9lld %8lld %6.1f%% %8lld %8lld\n", s.client, s.campaign, s.leads,
		              s.contacted, s.replied, s.contacted ? 100.0 * (double)s.replied / (double)s.contacted : 0.0,
		              s.active, s.paused);
		for (int i = 0, first = 1; i < sn->steps_sent.n; i++) {   /* per step: sent, replies, rate */
			char *const *c = sn->steps_sent.row[i].col;
			if (strcmp(c[0], s.client) || strcmp(c[1], s.campaign))
				continue;
			long long sent = (long long)sn->steps_sent.row[i].v, rep = or_seq_step_replies(sn, c[0], c[1], c[2]);
			or_buf_printf(b, "%s step %s: %lld sent, %lld replied (%.1f%%)", first ? "   " : ";", c[2], sent, rep,
			              sent ? 100.0 * (double)rep / (double)sent : 0.0);
			first = 0;
		}
		or_buf_puts(b, "\n");
	}
}

/* status.json's hosts (the PostgreSQL store only, so SQLite's report stays
 * as it was): name, version, last run (null: none), heartbeat, down. */
static void or_json_hosts(const struct or_snap *sn, struct or_buf *b)
{
	char t[40], t2[40];

	or_buf_puts(b, ",\"hosts\":[");
	for (int i = 0; i < sn->nhosts; i++) {
		const struct or_snap_host *x = &sn->hosts[i];
		or_fmt_rfc3339((time_t)x->last_run, t, sizeof t);
		or_fmt_rfc3339((time_t)x->heartbeat, t2, sizeof t2);
		or_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		or_json_str(b, x->name);
		or_buf_puts(b, ",\"version\":");
		or_json_str(b, x->version);
		or_buf_printf(b, ",\"last_run\":%s%s%s,\"heartbeat\":\"%s\",\"down\":%s,\"key_differs\":%s}",
		              x->last_run > 0 ? "\"" : "", x->last_run > 0 ? t : "null", x->last_run > 0 ? "\"" : "", t2,
		              x->down ? "true" : "false", x->key_differs ? "true" : "false");
	}
	or_buf_puts(b, "]");
}

static void or_report_json(const struct or_config *cfg, const struct or_snap *sn, struct or_buf *b)
{
	char t[40];

	or_json_run(sn, b);
	or_json_senders(cfg, sn, b);
	or_json_clients(cfg, sn, b);
	or_json_sequences(sn, b);
	or_buf_puts(b, ",\"paused\":[");
	for (int i = 0; i < sn->pauses_json.n; i++)
		or_buf_printf(b, "%s%s", i ? "," : "", sn->pauses_json.row[i].col[0]);
	or_buf_puts(b, "]");
	if (cfg->store_pg)
		or_json_hosts(sn, b);
	or_buf_puts(b, ",\"alerts\":[");
	for (int i = 0; i < sn->nalerts; i++) {
		or_fmt_rfc3339((time_t)sn->alerts[i].since, t, sizeof t);
		or_buf_printf(b, "%s{\"name\":", i ? "," : "");
		or_json_str(b, sn->alerts[i].name);
		or_buf_printf(b, ",\"since\":\"%s\",\"detail\":", t);
		or_json_str(b, sn->alerts[i].detail);
		or_buf_puts(b, "}");
	}
	or_buf_puts(b, "]}\n");
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void or_prom_label(struct or_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			or_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			or_buf_puts(b, "\\n");
		else
			or_buf_add(b, s, 1);
	}
}

static void or_prom_head(struct or_buf *b, const char *name, const char *type, const char *help)
{
	or_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: name{label="value",...} number, label values escaped. */
static void or_prom_sample(struct or_buf *b, const char *name, const char *const *labels, const char *const *values,
                           int nlabels, double v)
{
	or_buf_puts(b, name);
	for (int i = 0; i < nlabels; i++) {
		or_buf_printf(b, "%s%s=\"", i ? "," : "{", labels[i]);
		or_prom_label(b, values[i] ? values[i] : "");
		or_buf_puts(b, "\"");
	}
	or_buf_printf(b, "%s %.17g\n", nlabels ? "}" : "", v);
}

/* A whole metric from rows of the snapshot: the first nlabels columns are
 * the label values, the number the value. */
static void or_prom_rows(struct or_buf *b, const char *name, const char *type, const char *help,
                         const char *const *labels, int nlabels, const struct or_snap_rows *rows)
{
	or_prom_head(b, name, type, help);
	for (int k = 0; k < rows->n; k++)
		or_prom_sample(b, name, labels, (const char *const *)rows->row[k].col, nlabels, rows->row[k].v);
}

/* outreach.prom: the build, the last run and the spool. */
static void or_prom_run(const struct or_snap *sn, struct or_buf *b)
{
	static const char *const L_outcome[] = { "outcome" }, *const L_folder[] = { "folder" },
		*const L_ver[] = { "version" };
	const char *outcomes[] = { "sent", "deferred", "failed", "bad", "held" };
	long long ov[] = { sn->run.sent, sn->run.deferred, sn->run.failed, sn->run.bad, sn->run.held };
	const char *ver[] = { OR_VERSION };

	or_prom_head(b, "outreach_build_info", "gauge", "Always 1; the version as a label.");
	or_prom_sample(b, "outreach_build_info", L_ver, ver, 1, 1);
	or_prom_head(b, "outreach_last_run_timestamp_seconds", "gauge", "Start of the last run.");
	or_prom_sample(b, "outreach_last_run_timestamp_seconds", NULL, NULL, 0, sn->run.started);
	or_prom_head(b, "outreach_run_duration_seconds", "gauge", "Duration of the last run.");
	or_prom_sample(b, "outreach_run_duration_seconds", NULL, NULL, 0, sn->run.duration);
	or_prom_head(b, "outreach_run_jobs", "gauge", "Jobs of the last run by outcome.");
	for (int i = 0; i < 5; i++)
		or_prom_sample(b, "outreach_run_jobs", L_outcome, &outcomes[i], 1, (double)ov[i]);
	or_prom_head(b, "outreach_spool_jobs", "gauge", "Jobs per spool folder, from the ledger.");
	for (int i = 0; i < 7; i++)
		or_prom_sample(b, "outreach_spool_jobs", L_folder, &or_report_folders[i], 1, (double)sn->folder[or_report_dirs[i]]);
	or_prom_head(b, "outreach_oldest_waiting_job_age_seconds", "gauge", "How long the oldest due job has waited.");
	or_prom_sample(b, "outreach_oldest_waiting_job_age_seconds", NULL, NULL, 0, floor(sn->oldest_waiting));
}

/* outreach.prom: per sender, the health thresholds, per account. */
static void or_prom_senders(const struct or_config *cfg, const struct or_snap *sn, struct or_buf *b)
{
	static const char *const L_sender[] = { "sender" }, *const L_account[] = { "account" },
		*const L_sat[] = { "sender", "account", "type" };
	static const struct { const char *name, *help; } sm[] = {
		{ "outreach_sender_sent_today", "Sends today per sender." },
		{ "outreach_sender_cap_today", "Today's cap per sender (warm-up included)." },
		{ "outreach_sender_warmup_day", "Warm-up day per sender (0 = start date)." },
		{ "outreach_sender_enabled", "1 if the sender is enabled." },
		{ "outreach_sender_bounce_rate", "Hard bounces per send of its domain over the health window." },
		{ "outreach_sender_complaint_rate", "Complaints per send of its domain over the health window." } };
	for (size_t k = 0; k < sizeof sm / sizeof *sm; k++) {
		or_prom_head(b, sm[k].name, "gauge", sm[k].help);
		for (int i = 0; i < sn->nsenders; i++) {
			const struct or_snap_sender *x = &sn->senders[i];
			double v[] = { x->sent_today, x->cap_today, x->warmup_day, x->enabled, x->bounce_rate, x->complaint_rate };
			const char *name = x->s->name;
			or_prom_sample(b, sm[k].name, L_sender, &name, 1, v[k]);
		}
	}
	or_prom_head(b, "outreach_sender_account", "gauge", "1 for the account a sender uses now (primary or fallback).");
	for (int i = 0; i < sn->nsenders; i++) {
		const struct or_snap_sender *x = &sn->senders[i];
		if (x->account < 0)
			continue;
		const char *v[] = { x->s->name, cfg->providers[x->account].name,
		                    x->account == x->s->provider ? "primary" : "fallback" };
		or_prom_sample(b, "outreach_sender_account", L_sat, v, 3, 1);
	}
	or_prom_head(b, "outreach_health_max_bounce_rate", "gauge", "The bounce rate that disables a domain.");
	or_prom_sample(b, "outreach_health_max_bounce_rate", NULL, NULL, 0, cfg->max_bounce_rate);
	or_prom_head(b, "outreach_health_max_complaint_rate", "gauge", "The complaint rate that disables a domain.");
	or_prom_sample(b, "outreach_health_max_complaint_rate", NULL, NULL, 0, cfg->max_complaint_rate);

	for (int k = 0; k < 2; k++) {   /* each family's samples together, as the text format wants */
		const char *m = k ? "outreach_account_paused" : "outreach_account_circuit_open";
		or_prom_head(b, m, "gauge", k ? "1 while the provider asked an account to slow down." :
		             "1 while a provider account's circuit is open.");
		for (int i = 0; i < cfg->nproviders; i++) {
			const struct or_account *a = &sn->accounts[i];
			const char *name = cfg->providers[i].name;
			or_prom_sample(b, m, L_account, &name, 1, k ? a->paused_until > sn->now : a->open_until > sn->now);
		}
	}
}

/* outreach.prom's hosts (the PostgreSQL store only): each host's last run,
 * heartbeat and whether it is up, the same on every host's file. */
static void or_prom_hosts(const struct or_snap *sn, struct or_buf *b)
{
	static const char *const L_host[] = { "host" };
	static const struct { const char *name, *help; } hm[] = {
		{ "outreach_host_last_run_timestamp_seconds", "Start of each host's last run that claimed a job (0: none)." },
		{ "outreach_host_heartbeat_timestamp_seconds", "Each host's last tick or lease renewal." },
		{ "outreach_host_up", "0 when a host's heartbeat is older than two leases." } };

	for (size_t k = 0; k < sizeof hm / sizeof *hm; k++) {
		or_prom_head(b, hm[k].name, "gauge", hm[k].help);
		for (int i = 0; i < sn->nhosts; i++) {
			const struct or_snap_host *x = &sn->hosts[i];
			double v[] = { x->last_run, floor(x->heartbeat), !x->down };
			const char *name = x->name;
			or_prom_sample(b, hm[k].name, L_host, &name, 1, v[k]);
		}
	}
}

static void or_report_prom(const struct or_config *cfg, const struct or_snap *sn, struct or_buf *b)
{
	static const char *const L_account[] = { "account" }, *const L_client[] = { "client" },
		*const L_ccs[] = { "client", "campaign", "sender" }, *const L_cc[] = { "client", "campaign" },
		*const L_cct[] = { "client", "campaign", "type" }, *const L_alert[] = { "alert" },
		*const L_ccsk[] = { "client", "campaign", "step", "kind" }, *const L_ccst[] = { "client", "campaign", "state" },
		*const L_mailbox[] = { "mailbox" };

	or_prom_run(sn, b);
	or_prom_senders(cfg, sn, b);
	or_prom_rows(b, "outreach_feed_last_success_timestamp_seconds", "gauge", "Last successful feedback pull per account.",
	             L_account, 1, &sn->feeds);

	/* per client and campaign: _total series from counters that only grow */
	or_prom_head(b, "outreach_client_sent_today", "gauge", "Sends today per client.");
	for (int i = 0; i < sn->nclients; i++) {
		const char *name = sn->clients[i].name;
		or_prom_sample(b, "outreach_client_sent_today", L_client, &name, 1, (double)sn->clients[i].sent_today);
	}
	or_prom_rows(b, "outreach_client_pending_jobs", "gauge", "Jobs not yet sent per client.", L_client, 1,
	             &sn->client_pending);
	or_prom_rows(b, "outreach_sent_total", "counter", "Emails sent, by client, campaign and sender.", L_ccs, 3,
	             &sn->sent);
	or_prom_rows(b, "outreach_failed_total", "counter", "Jobs failed permanently (or cancelled), by client and campaign.",
	             L_cc, 2, &sn->failed);
	or_prom_rows(b, "outreach_events_total", "counter", "Provider events by client, campaign and type.", L_cct, 3,
	             &sn->events);
	or_prom_rows(b, "outreach_events_unmatched_total", "counter", "Provider events that matched no job.", NULL, 0,
	             &sn->unmatched);
	or_prom_rows(b, "outreach_paused", "gauge", "1 for each paused scope (empty label = any).", L_ccs, 3, &sn->pauses);
	or_prom_rows(b, "outreach_replies_total", "counter", "Messages read from mailboxes and inbound/, by the step they "
	             "answer and kind (human, ooo, auto, bounce, complaint, receipt, unmatched).", L_ccsk, 4, &sn->replies);
	or_prom_rows(b, "outreach_leads", "gauge", "Sequences (leads) by state.", L_ccst, 3, &sn->leads);
	or_prom_rows(b, "outreach_inactive_addresses", "gauge", "Addresses mailed engagement.min_sends times with no "
	             "delivery, open, click or reply in engagement.inactive_days (judged daily).", L_client, 1, &sn->inactive);
	or_prom_rows(b, "outreach_mailbox_last_success_timestamp_seconds", "gauge", "Last time every folder of a mailbox "
	             "was read to its end (0: never).", L_mailbox, 1, &sn->mailboxes);
	if (cfg->store_pg)
		or_prom_hosts(sn, b);
	or_prom_head(b, "outreach_alert_active", "gauge", "1 while an alert is active.");
	for (int i = 0; i < sn->nalerts; i++) {
		const char *name = sn->alerts[i].name;
		or_prom_sample(b, "outreach_alert_active", L_alert, &name, 1, 1);
	}
}

/* Appends text in lines of at most width columns (UTF-8 characters), broken
 * at spaces, the first line going on from column col, the others indented
 * by indent: an alert's text is shown whole, never cut.  A word wider than
 * a line is broken between characters; control bytes count as spaces. */
static void or_buf_wrap(struct or_buf *b, const char *text, int col, int indent, int width)
{
	const unsigned char *p = (const unsigned char *)text;

	while (*p) {
		while (*p && *p <= ' ')
			p++;
		size_t wl = 0;
		int wc = 0;
		while (p[wl] > ' ')
			wc += (p[wl++] & 0xc0) != 0x80;
		if (!wl)
			break;
		if (col > indent && col + 1 + wc > width) {
			or_buf_printf(b, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			or_buf_puts(b, " ");
			col++;
		}
		for (size_t k = 0; k < wl;) {   /* one character at a time */
			size_t cl = 1;
			while (k + cl < wl && (p[k + cl] & 0xc0) == 0x80)
				cl++;
			if (col >= width) {
				or_buf_printf(b, "\n%*s", indent, "");
				col = indent;
			}
			or_buf_add(b, (const char *)p + k, cl);
			col++;
			k += cl;
		}
		p += wl;
	}
	or_buf_puts(b, "\n");
}

static void or_report_text(const struct or_config *cfg, const struct or_snap *sn, struct or_buf *b)
{
	char t[40];

	or_fmt_rfc3339((time_t)sn->now, t, sizeof t);
	or_buf_printf(b, "outreach status at %s: %s\n\n", t, sn->alerts_failing ? "FAILING (see alerts)" :
	              sn->nalerts || sn->folder[OR_D_HELD] ? "attention (see alerts)" : "healthy");
	or_fmt_rfc3339((time_t)sn->run.started, t, sizeof t);
	or_buf_printf(b, "last run   %s  %.1f s  claimed %lld  sent %lld  deferred %lld  failed %lld  "
	              "bad %lld  held %lld\n", sn->run.started ? t : "never", sn->run.duration, sn->run.claimed,
	              sn->run.sent, sn->run.deferred, sn->run.failed, sn->run.bad, sn->run.held);
	or_buf_puts(b, "spool     ");
	for (int i = 0; i < 7; i++)
		or_buf_printf(b, " %s %lld", or_report_folders[i], sn->folder[or_report_dirs[i]]);
	or_buf_printf(b, "  oldest waiting %.0f s\n\n", sn->oldest_waiting);
	for (int i = 0; i < sn->nhosts; i++) {   /* the PostgreSQL store's hosts */
		const struct or_snap_host *x = &sn->hosts[i];
		char lr[40], hb[40];
		or_fmt_rfc3339((time_t)x->last_run, lr, sizeof lr);
		or_fmt_rfc3339((time_t)x->heartbeat, hb, sizeof hb);
		or_buf_printf(b, "host       %-20.20s %-10.10s last run %-20s heartbeat %s%s\n%s", x->name, x->version,
		              x->last_run > 0 ? lr : "never", hb, x->down ? "  DOWN" : "", i + 1 == sn->nhosts ? "\n" : "");
	}
	or_buf_printf(b, "%-20s %-24s %-10s %-8s %11s %6s\n", "SENDER", "DOMAIN", "PROVIDER", "ENABLED",
	              "SENT/CAP", "WARMUP");
	for (int i = 0; i < sn->nsenders; i++) {
		const struct or_snap_sender *x = &sn->senders[i];
		char sc[32];
		snprintf(sc, sizeof sc, "%d/%d", x->sent_today, x->cap_today);
		or_buf_printf(b, "%-20.20s %-24.24s %-10.10s %-8s %11s %6d\n", x->s->name, x->s->domain,
		              cfg->providers[x->s->provider].name, x->enabled ? "yes" : "NO", sc, x->warmup_day);
		if (!x->enabled)
			or_buf_printf(b, "    disabled: %.90s\n", x->reason);
	}
	or_buf_printf(b, "\n%-20s %-20s %8s %8s %8s %8s\n", "CLIENT", "CAMPAIGN", "SENT", "FAILED", "PENDING", "HELD");
	for (int i = 0; i < sn->ncampaigns; i++) {
		const struct or_snap_campaign *c = &sn->campaigns[i];
		or_buf_printf(b, "%-20.20s %-20.20s %8lld %8lld %8lld %8lld\n", c->client, c->name, c->sent, c->failed,
		              c->pending, c->held);
	}
	or_text_sequences(sn, b);
	for (int i = 0; i < sn->pauses_text.n; i++) {
		/* each cut between UTF-8 characters (or_safe), never inside one: an
		 * operator's reason is free text, and half a character makes grep call
		 * status.txt binary */
		char *const *col = sn->pauses_text.row[i].col;
		char cl[35], ca[35], sd[25], why[45];
		or_buf_printf(b, "%spaused: client %s campaign %s sender %s: %s\n", i ? "" : "\n",
		              or_safe(col[0], cl, sizeof cl), or_safe(col[1], ca, sizeof ca),
		              or_safe(col[2], sd, sizeof sd), or_safe(col[3], why, sizeof why));
	}
	or_buf_printf(b, "\nalerts:%s\n", sn->nalerts ? "" : " none");
	for (int i = 0; i < sn->nalerts; i++) {   /* the name whole, then its text wrapped within 100 columns */
		const char *name = sn->alerts[i].name;
		or_buf_printf(b, "  %-24s ", name);
		or_buf_wrap(b, sn->alerts[i].detail, strlen(name) > 24 ? (int)strlen(name) + 3 : 27, 27, 100);
	}
}

static void or_write_reports(const struct or_config *cfg, const struct or_run *run)
{
	struct or_snap sn;
	struct or_buf b[3] = { { 0 }, { 0 }, { 0 } };
	const char *names[3] = { "status.txt", "status.json", "outreach.prom" };
	int dfd;

	if (mkdir(cfg->report_dir, 0755) == -1 && errno != EEXIST) {
		or_log(0, "event=report dir=\"%s\" error=\"%s\"", cfg->report_dir, strerror(errno));
		return;
	}
	if ((dfd = open(cfg->report_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		or_log(0, "event=report dir=\"%s\" error=\"%s\"", cfg->report_dir, strerror(errno));
		return;
	}
	or_snap_collect(cfg, run, &sn);
	or_report_text(cfg, &sn, &b[0]);
	or_report_json(cfg, &sn, &b[1]);
	or_report_prom(cfg, &sn, &b[2]);
	or_snap_free(&sn);
	/* Derived data, rewritten by every run and computed afresh by `status`:
	 * atomic by rename (a reader never sees half a report) but not fsynced,
	 * neither the files nor the folder, so a tick pays no sync for them.
	 * Nothing reads them back, so a power loss that keeps the previous
	 * report protects nothing the ledger does not hold. */
	for (int i = 0; i < 3; i++) {
		if (or_write_atomic(dfd, names[i], b[i].s, b[i].len, OR_W_NOSYNC) == -1)
			or_log(0, "event=report file=%s error=\"%s\"", names[i], strerror(errno));
		or_buf_free(&b[i]);
	}
	close(dfd);
}

/* ================================================================
 * VALIDATE: list hygiene (doc/design.md §13)
 *
 * Syntax as mail servers accept it (RFC 5321/5322 in practice), IDNs to
 * A-labels with libidn2, MX look-ups on our own UDP sockets (res_nmkquery
 * to build, poll to wait many at once with a per-query timeout, ns_initparse
 * to read; each domain once per run, cached in SQLite for a day), the
 * compiled-in disposable list, role local parts, typos of big mailbox
 * providers, duplicates and the suppression list.  invalid: syntax, no_mx,
 * null_mx; risky: disposable, role, typo, duplicate, suppressed; unknown:
 * the DNS did not answer in time.
 * ================================================================ */

static const char *const or_disposable[] = {
#ifdef OR_FUZZ   /* fuzz builds skip the 121k-entry list: instrumenting it costs minutes */
	"mailinator.com",
#else
#include "disposable.inc"
#endif
};

static int or_strcmp_p(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* 1 when the domain or any parent domain is on the disposable list. */
OR_STATIC int or_is_disposable(const char *domain)
{
	for (const char *d = domain; d; d = strchr(d, '.') ? strchr(d, '.') + 1 : NULL) {
		if (!strchr(d, '.'))
			break;   /* a bare TLD is never on the list */
		if (bsearch(&d, or_disposable, sizeof or_disposable / sizeof *or_disposable, sizeof *or_disposable, or_strcmp_p))
			return 1;
	}
	return 0;
}

OR_STATIC int or_is_role(const char *local)
{
	static const char *roles[] = { "abuse", "accounting", "accounts", "admin", "administrator", "billing", "careers",
		"contact", "enquiries", "finance", "ftp", "hello", "help", "hostmaster", "hr", "info", "inquiries", "jobs",
		"legal", "mail", "mailer-daemon", "marketing", "media", "newsletter", "no-reply", "noreply", "office",
		"postmaster", "press", "privacy", "root", "sales", "security", "service", "support", "team", "webmaster", "www" };
	char l[OR_MAX_ADDR + 1];

	snprintf(l, sizeof l, "%s", local);
	or_lower(l);
	for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
		if (!strcmp(l, roles[i]))
			return 1;
	return 0;
}

/* Damerau-Levenshtein distance, capped: 0, 1 or 2 (= "2 or more"). */
static int or_edit_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	int d[72][72];

	if (n > 70 || m > 70 || (n > m ? n - m : m - n) > 1)
		return 2;
	for (size_t i = 0; i <= n; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= n; i++)
		for (size_t j = 1; j <= m; j++) {
			int c = a[i - 1] != b[j - 1], v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + c < v) v = d[i - 1][j - 1] + c;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[n][m] > 2 ? 2 : d[n][m];
}

/* A likely misspelling of a big mailbox provider: 1 with the correction. */
OR_STATIC int or_typo(const char *domain, char *fix, size_t n)
{
	static const char *big[] = { "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com",
		"icloud.com", "aol.com", "msn.com", "protonmail.com", "proton.me", "gmx.de", "gmx.net", "web.de", "mail.ru",
		"yandex.ru", "comcast.net", "hotmail.co.uk", "yahoo.co.uk", "mail.com", "zoho.com", "ya.ru", "ymail.com",
		"email.com", "gmx.com", "rocketmail.com", "me.com", "mac.com", "fastmail.com", "hey.com", "yandex.com",
		"hotmail.de", "hotmail.fr", "outlook.de", "live.co.uk", "t-online.de", "orange.fr", "free.fr", "libero.it",
		"qq.com", "163.com", "rambler.ru", "bk.ru", "inbox.ru", "list.ru", "aol.co.uk", "att.net", "verizon.net" };
	static const char *tld[][2] = { { ".con", ".com" }, { ".cmo", ".com" }, { ".comm", ".com" }, { ".om", ".com" },
		{ ".cm", ".com" }, { ".co", ".com" }, { ".nte", ".net" }, { ".ne", ".net" } };

	for (size_t i = 0; i < sizeof big / sizeof *big; i++)
		if (!strcmp(domain, big[i]))
			return 0;
	for (size_t i = 0; i < sizeof big / sizeof *big; i++)
		if (strlen(domain) >= 6 && or_edit_distance(domain, big[i]) == 1) {
			snprintf(fix, n, "%s", big[i]);
			return 1;
		}
	for (size_t i = 0; i < sizeof tld / sizeof *tld; i++) {
		size_t dl = strlen(domain), tl = strlen(tld[i][0]);
		if (dl > tl && !strcmp(domain + dl - tl, tld[i][0])) {
			char cand[300];
			snprintf(cand, sizeof cand, "%.*s%s", (int)(dl - tl), domain, tld[i][1]);
			for (size_t k = 0; k < sizeof big / sizeof *big; k++)
				if (!strcmp(cand, big[k]) || or_edit_distance(cand, big[k]) == 1) {
					snprintf(fix, n, "%s", big[k]);
					return 1;
				}
		}
	}
	return 0;
}

/* What validation found out about one address. */
enum { OR_R_SYNTAX, OR_R_NO_MX, OR_R_NULL_MX, OR_R_DISPOSABLE, OR_R_ROLE, OR_R_TYPO, OR_R_DUPLICATE,
       OR_R_SUPPRESSED, OR_R_SMTPUTF8, OR_R_DNS_TIMEOUT, OR_NREASONS };
static const char *const or_reason_names[OR_NREASONS] = { "syntax", "no_mx", "null_mx", "disposable", "role", "typo",
	"duplicate", "suppressed", "smtputf8", "dns_timeout" };

struct or_vres {
	const char *input;                 /* the line as given (the caller's) */
	char address[OR_MAX_ADDR * 2 + 1];   /* normalised: local@a-label-domain, lower-cased */
	char domain[256];
	unsigned reasons;
	char suggestion[OR_MAX_ADDR + 1];
};

/* Syntax and the checks that need no network.  Fills r->address and
 * r->domain (A-labels) when the syntax is right. */
OR_STATIC void or_validate_syntax(const char *in, struct or_vres *r)
{
	char addr[OR_MAX_ADDR + 1], name[256], *at, *ascii = NULL, fix[300];

	memset(r, 0, sizeof *r);
	r->input = in;
	/* IDN: the domain part to A-labels first, so the ASCII grammar applies */
	char raw[1024];
	snprintf(raw, sizeof raw, "%s", in);
	{
		char *lt = strrchr(raw, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		char *a = lt && gt ? lt + 1 : raw;
		char *e = gt ? gt : raw + strlen(raw);
		while (*a == ' ' || *a == '\t') a++;
		while (e > a && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
		char spec[OR_MAX_ADDR + 1];
		snprintf(spec, sizeof spec, "%.*s", (int)(e - a), a);
		at = strrchr(spec, '@');
		if (at && !or_ascii_printable(at + 1) && or_utf8_valid(at + 1, strlen(at + 1))) {
			int rc = idn2_to_ascii_8z(at + 1, &ascii, IDN2_NONTRANSITIONAL);
			if (rc == IDN2_MALLOC)
				or_oom();
			if (rc != IDN2_OK) {
				r->reasons |= 1u << OR_R_SYNTAX;
				return;
			}
			char rebuilt[1024];
			snprintf(rebuilt, sizeof rebuilt, "%.*s%.*s@%s%s", (int)(a - raw), raw, (int)(at - spec), spec, ascii,
			         gt ? gt : "");
			idn2_free(ascii);
			snprintf(raw, sizeof raw, "%s", rebuilt);
		}
	}
	if (or_parse_address(raw, addr, sizeof addr, name, sizeof name)) {
		r->reasons |= 1u << OR_R_SYNTAX;
		return;
	}
	at = strrchr(addr, '@');
	if (!or_ascii_printable(at + 1)) {   /* a raw UTF-8 domain that IDNA rejected */
		r->reasons |= 1u << OR_R_SYNTAX;
		return;
	}
	*at = 0;
	if (!or_ascii_printable(addr))
		r->reasons |= 1u << OR_R_SMTPUTF8;
	if (or_is_role(addr))
		r->reasons |= 1u << OR_R_ROLE;
	snprintf(r->domain, sizeof r->domain, "%s", at + 1);
	*at = '@';
	snprintf(r->address, sizeof r->address, "%s", addr);
	if (or_is_disposable(r->domain))
		r->reasons |= 1u << OR_R_DISPOSABLE;
	if (or_typo(r->domain, fix, sizeof fix)) {
		r->reasons |= 1u << OR_R_TYPO;
		snprintf(r->suggestion, sizeof r->suggestion, "%.*s@%s", (int)(at - addr), addr, fix);
	}
}

OR_STATIC const char *or_verdict_of(unsigned reasons)
{
	if (reasons & ((1u << OR_R_SYNTAX) | (1u << OR_R_NO_MX) | (1u << OR_R_NULL_MX)))
		return "invalid";
	if (reasons & ((1u << OR_R_DISPOSABLE) | (1u << OR_R_ROLE) | (1u << OR_R_TYPO) | (1u << OR_R_DUPLICATE) |
	               (1u << OR_R_SUPPRESSED)))
		return "risky";
	if (reasons & (1u << OR_R_DNS_TIMEOUT))
		return "unknown";
	return "ok";
}

/* ---- DNS: MX (then A/AAAA, RFC 5321 §5.1) for many domains at once ---- */

enum { OR_DNS_PENDING, OR_DNS_OK, OR_DNS_NO_MX, OR_DNS_NULL_MX, OR_DNS_TIMEOUT };

struct or_dnsq {
	char domain[256];
	int mode;             /* 0: MX, then A, then AAAA (a verdict); 1: TXT; 2: A (records collected) */
	int stage;            /* mode 0: 0 MX, 1 A, 2 AAAA */
	int result;
	uint16_t id;
	double sent_at;
	int tries, inflight;
	struct or_buf rr;     /* modes 1, 2: one record a line (TXT strings joined, A as dotted quad) */
	int cname;            /* the answer went through a CNAME */
	int cached;           /* the verdict came from dns_cache */
};

/* The resolver address: "IP" or "IP:port" or "[IPv6]:port"; empty = the
 * first nameserver of /etc/resolv.conf. */
static int or_dns_server(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128] = "";
	int port = 53;

	memset(ss, 0, sizeof *ss);
	if (spec && *spec) {
		if (spec[0] == '[') {
			const char *e = strchr(spec, ']');
			if (!e)
				return -1;
			snprintf(host, sizeof host, "%.*s", (int)(e - spec - 1), spec + 1);
			if (e[1] == ':')
				port = atoi(e + 2);
		} else {
			const char *c = strchr(spec, ':');
			snprintf(host, sizeof host, "%.*s", c ? (int)(c - spec) : (int)strlen(spec), spec);
			if (c && !strchr(c + 1, ':'))
				port = atoi(c + 1);
		}
	} else {
		struct __res_state rs;
		memset(&rs, 0, sizeof rs);
		if (res_ninit(&rs) == 0 && rs.nscount > 0) {
			memcpy(ss, &rs.nsaddr_list[0], sizeof rs.nsaddr_list[0]);
			*len = sizeof(struct sockaddr_in);
			res_nclose(&rs);
			return 0;
		}
		snprintf(host, sizeof host, "127.0.0.1");
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (port <= 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof *s4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof *s6;
		return 0;
	}
	return -1;
}

static int or_dns_send(int fd, struct __res_state *rs, struct or_dnsq *q)
{
	unsigned char pkt[512];
	static const int types[] = { ns_t_mx, ns_t_a, ns_t_aaaa };
	int type = q->mode == 1 ? ns_t_txt : q->mode == 2 ? ns_t_a : types[q->stage];
	int n = res_nmkquery(rs, ns_o_query, q->domain, ns_c_in, type, NULL, 0, NULL, pkt, sizeof pkt);

	if (n < 0)
		return -1;
	q->id = (uint16_t)((pkt[0] << 8) | pkt[1]);
	q->sent_at = or_mono();
	q->tries++;
	q->inflight = 1;
	return send(fd, pkt, (size_t)n, 0) == n ? 0 : -1;
}

/* Reads one answer into its query: a verdict, or the next stage. */
static void or_dns_answer(struct or_dnsq *qs, int nq, const unsigned char *buf, int len, int fd, struct __res_state *rs)
{
	ns_msg msg;
	ns_rr rr;
	char qname[NS_MAXDNAME];
	int mx = 0, addr = 0, nullmx = 0;

	if (ns_initparse(buf, len, &msg) < 0 || ns_msg_count(msg, ns_s_qd) != 1 || ns_parserr(&msg, ns_s_qd, 0, &rr) < 0)
		return;
	snprintf(qname, sizeof qname, "%s", ns_rr_name(rr));
	for (int i = 0; i < nq; i++) {
		struct or_dnsq *q = &qs[i];
		if (!q->inflight || q->id != ns_msg_id(msg) || strcasecmp(q->domain, qname))
			continue;
		q->inflight = 0;
		int rcode = ns_msg_getflag(msg, ns_f_rcode);
		if (rcode == ns_r_nxdomain) {
			q->result = OR_DNS_NO_MX;
			return;
		}
		if (rcode != ns_r_noerror) {   /* SERVFAIL, REFUSED: no verdict to be had */
			q->result = OR_DNS_TIMEOUT;
			return;
		}
		if (q->mode != 0) {   /* TXT or A: collect the records */
			for (int k = 0; k < ns_msg_count(msg, ns_s_an); k++) {
				if (ns_parserr(&msg, ns_s_an, k, &rr) < 0)
					break;
				const unsigned char *d = ns_rr_rdata(rr);
				int dl = ns_rr_rdlen(rr);
				if (ns_rr_type(rr) == ns_t_cname)
					q->cname = 1;
				if (ns_rr_type(rr) == ns_t_txt && q->mode == 1) {
					for (int o = 0; o < dl && o + 1 + d[o] <= dl; o += 1 + d[o])   /* character-strings */
						or_buf_add(&q->rr, d + o + 1, d[o]);
					or_buf_add(&q->rr, "\n", 1);
				} else if (ns_rr_type(rr) == ns_t_a && q->mode == 2 && dl == 4) {
					or_buf_printf(&q->rr, "%u.%u.%u.%u\n", d[0], d[1], d[2], d[3]);
				}
			}
			q->result = q->rr.len || q->cname ? OR_DNS_OK : OR_DNS_NO_MX;
			return;
		}
		for (int k = 0; k < ns_msg_count(msg, ns_s_an); k++) {
			if (ns_parserr(&msg, ns_s_an, k, &rr) < 0)
				break;
			if (ns_rr_type(rr) == ns_t_mx && ns_rr_rdlen(rr) >= 3) {
				char host[NS_MAXDNAME];
				int pref = (ns_rr_rdata(rr)[0] << 8) | ns_rr_rdata(rr)[1];
				if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr) + 2, host, sizeof host) < 0)
					continue;
				mx++;
				nullmx += pref == 0 && (!*host || !strcmp(host, "."));
			} else if (ns_rr_type(rr) == ns_t_a || ns_rr_type(rr) == ns_t_aaaa) {
				addr++;
			}
		}
		if (q->stage == 0 && mx > 0) {
			q->result = mx == 1 && nullmx ? OR_DNS_NULL_MX : OR_DNS_OK;   /* RFC 7505 */
		} else if (q->stage > 0 && addr > 0) {
			q->result = OR_DNS_OK;   /* no MX: the A/AAAA is the implicit MX */
		} else if (q->stage < 2) {
			q->stage++;
			q->tries = 0;
			if (or_dns_send(fd, rs, q))
				q->result = OR_DNS_TIMEOUT;
		} else {
			q->result = OR_DNS_NO_MX;
		}
		return;
	}
}

/* Resolves every query: up to 64 in flight, timeout_ms each, one retry. */
static int or_dns_resolve(struct or_dnsq *qs, int nq, const char *server, int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	struct __res_state rs;
	int fd, next = 0, left = nq;

	if (or_dns_server(server, &ss, &sl)) {
		snprintf(err, errlen, "dns_server '%s' is not IP[:port]", server ? server : "");
		return -1;
	}
	memset(&rs, 0, sizeof rs);
	res_ninit(&rs);
	if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&ss, sl) == -1) {
		snprintf(err, errlen, "dns: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		res_nclose(&rs);
		return -1;
	}
	while (left > 0) {
		int inflight = 0;
		double now = or_mono();
		for (int i = 0; i < nq; i++) {
			struct or_dnsq *q = &qs[i];
			if (q->result != OR_DNS_PENDING)
				continue;
			if (q->inflight && now - q->sent_at > timeout_ms / 1000.0) {
				q->inflight = 0;
				if (q->tries >= 2)
					q->result = OR_DNS_TIMEOUT;
				else if (or_dns_send(fd, &rs, q))
					q->result = OR_DNS_TIMEOUT;
			}
			inflight += q->inflight;
		}
		for (; next < nq && inflight < 64; next++)
			if (qs[next].result == OR_DNS_PENDING && !qs[next].inflight && qs[next].tries == 0) {
				if (or_dns_send(fd, &rs, &qs[next]))
					qs[next].result = OR_DNS_TIMEOUT;
				else
					inflight++;
			}
		left = 0;
		for (int i = 0; i < nq; i++)
			left += qs[i].result == OR_DNS_PENDING;
		if (!left)
			break;
		struct pollfd pf = { fd, POLLIN, 0 };
		if (poll(&pf, 1, 20) > 0) {
			unsigned char buf[4096];
			int n;
			while ((n = (int)recv(fd, buf, sizeof buf, 0)) > 0)
				or_dns_answer(qs, nq, buf, n, fd, &rs);
		}
	}
	close(fd);
	res_nclose(&rs);
	return 0;
}

/* ---- domains: is each sender domain set up to send? (doc/design.md §14) ---- */

struct or_check { const char *name; int ok, required, unknown; char detail[400]; };
struct or_domain_report { char domain[256]; int ok, required_ok, unknown; int nchecks; struct or_check checks[5]; };

static int or_dc_required(const struct or_config *cfg, const char *name)
{
	for (char **r = cfg->dc_required; r && *r; r++)
		if (!strcmp(*r, name))
			return 1;
	return 0;
}

/* The provider's sending service, which SPF must include, and its
 * return-path domain, which must not be blocklisted. */
static const char *or_provider_spf(enum or_provider_type t)
{
	return t == OR_PROV_SES ? "amazonses.com" : t == OR_PROV_SENDGRID ? "sendgrid.net" :
	       t == OR_PROV_MAILGUN ? "mailgun.org" : NULL;
}

static int or_dnsq_add(struct or_dnsq **qs, int *nq, const char *name, int mode)
{
	for (int i = 0; i < *nq; i++)
		if ((*qs)[i].mode == mode && !strcasecmp((*qs)[i].domain, name))
			return i;
	*qs = or_xrealloc(*qs, sizeof **qs * (size_t)(*nq + 1));
	memset(&(*qs)[*nq], 0, sizeof **qs);
	snprintf((*qs)[*nq].domain, sizeof (*qs)[0].domain, "%s", name);
	(*qs)[*nq].mode = mode;
	return (*nq)++;
}

/* 1 when a query of name (mode: 0 MX, 1 TXT, 2 A) got no answer: a check
 * that needs it has no verdict (unknown), never a "fix". */
static int or_dnsq_unanswered(const struct or_dnsq *qs, int nq, const char *name, int mode)
{
	for (int i = 0; i < nq; i++)
		if (qs[i].mode == mode && !strcasecmp(qs[i].domain, name))
			return qs[i].result == OR_DNS_TIMEOUT || qs[i].result == OR_DNS_PENDING;
	return 0;
}

static const char *or_dnsq_txt(struct or_dnsq *qs, int nq, const char *name)
{
	for (int i = 0; i < nq; i++)
		if (qs[i].mode == 1 && !strcasecmp(qs[i].domain, name))
			return qs[i].result == OR_DNS_OK && qs[i].rr.s ? qs[i].rr.s : "";
	return "";
}

/* The SPF record(s) among TXT lines: count, and the first one. */
static int or_spf_records(const char *txt, char *first, size_t n)
{
	int count = 0;

	first[0] = 0;
	for (const char *l = txt; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
		size_t len = strcspn(l, "\n");
		if (len >= 6 && !strncasecmp(l, "v=spf1", 6) && (len == 6 || l[6] == ' ')) {
			if (!count++)
				snprintf(first, n, "%.*s", (int)len, l);
		}
	}
	return count;
}

/* Each SPF term that costs a DNS look-up (RFC 7208 §4.6.4); the include and
 * redirect targets are appended to targets (one a line). */
static int or_spf_lookups(const char *rec, struct or_buf *targets)
{
	int n = 0;
	char buf[2048], *save = NULL, *t;

	snprintf(buf, sizeof buf, "%s", rec);
	for (t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		char *m = t + (*t == '+' || *t == '-' || *t == '~' || *t == '?');
		if (!strncasecmp(m, "include:", 8) || !strncasecmp(m, "redirect=", 9)) {
			n++;
			or_buf_printf(targets, "%s\n", strchr(m, ':') ? strchr(m, ':') + 1 : strchr(m, '=') + 1);
		} else if (!strcasecmp(m, "a") || !strncasecmp(m, "a:", 2) || !strncasecmp(m, "a/", 2) || !strcasecmp(m, "mx") ||
		           !strncasecmp(m, "mx:", 3) || !strncasecmp(m, "mx/", 3) || !strncasecmp(m, "ptr", 3) ||
		           !strncasecmp(m, "exists:", 7)) {
			n++;
		}
	}
	return n;
}

static void or_check_set(struct or_domain_report *r, const char *name, int ok, int required, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void or_check_set(struct or_domain_report *r, const char *name, int ok, int required, const char *fmt, ...)
{
	struct or_check *c = &r->checks[r->nchecks++];
	va_list ap;

	c->name = name;
	c->ok = ok;
	c->required = required;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof c->detail, fmt, ap);
	va_end(ap);
	if (!ok)
		r->ok = 0;
	if (!ok && required)
		r->required_ok = 0;
}

/* A check the DNS did not answer for: no verdict, the reason kept; the
 * domain is unknown (neither passed nor failed). */
static void or_check_unknown(struct or_domain_report *r, const char *name, int required, const char *what)
{
	struct or_check *c = &r->checks[r->nchecks++];

	c->name = name;
	c->ok = 0;
	c->required = required;
	c->unknown = 1;
	snprintf(c->detail, sizeof c->detail, "the DNS did not answer in time for %.300s: no verdict", what);
	r->ok = 0;
	r->unknown = 1;
}

/* dom's parent (its first label off) when it has three labels or more, else
 * dom itself: where DMARC is looked for when dom has no record. */
static const char *or_dmarc_parent(const char *dom)
{
	return strchr(dom, '.') && strchr(strchr(dom, '.') + 1, '.') ? strchr(dom, '.') + 1 : dom;
}

/* A sender's DKIM selectors: its own, else SendGrid's defaults (s1, s2),
 * else none (NULL). */
static char **or_dkim_selectors(const struct or_config *cfg, const struct or_sender *sd)
{
	static const char *sg_default[] = { "s1", "s2", NULL };

	return sd->dkim_selectors ? sd->dkim_selectors :
	       cfg->providers[sd->provider].type == OR_PROV_SENDGRID ? (char **)sg_default : NULL;
}

static void or_dnsq_free(struct or_dnsq *qs, int nq)
{
	for (int i = 0; i < nq; i++)
		or_buf_free(&qs[i].rr);
	free(qs);
}

/* The distinct sender domains into out, in the senders' order; their count. */
static int or_domains_list(const struct or_config *cfg, struct or_domain_report *out)
{
	int nd = 0;

	for (int i = 0; i < cfg->nsenders; i++) {
		int seen = 0;
		for (int k = 0; k < nd; k++)
			seen |= !strcmp(out[k].domain, cfg->senders[i].domain);
		if (!seen)
			snprintf(out[nd++].domain, sizeof out[0].domain, "%s", cfg->senders[i].domain);
	}
	return nd;
}

/* The first round of queries, asked together: each domain's TXT, its two
 * DMARC names, its MX, every selector's key, and each blocklist's entry for
 * the domain and for its providers' return-path domains. */
static void or_domains_plan(const struct or_config *cfg, const struct or_domain_report *out, int nd,
                            struct or_dnsq **qs, int *nq)
{
	for (int d = 0; d < nd; d++) {
		char name[600];
		const char *dom = out[d].domain;
		or_dnsq_add(qs, nq, dom, 1);
		snprintf(name, sizeof name, "_dmarc.%s", dom);
		or_dnsq_add(qs, nq, name, 1);
		snprintf(name, sizeof name, "_dmarc.%s", or_dmarc_parent(dom));
		or_dnsq_add(qs, nq, name, 1);
		or_dnsq_add(qs, nq, dom, 0);
		for (int i = 0; i < cfg->nsenders; i++) {
			const struct or_sender *sd = &cfg->senders[i];
			const char *rp = or_provider_spf(cfg->providers[sd->provider].type);
			if (strcmp(sd->domain, dom))
				continue;
			for (char **sel = or_dkim_selectors(cfg, sd); sel && *sel; sel++) {
				snprintf(name, sizeof name, "%s._domainkey.%s", *sel, dom);
				or_dnsq_add(qs, nq, name, 1);
			}
			for (char **z = cfg->dc_blocklists; z && *z; z++) {
				snprintf(name, sizeof name, "%s.%s", dom, *z);
				or_dnsq_add(qs, nq, name, 2);
				if (rp) {
					snprintf(name, sizeof name, "%s.%s", rp, *z);
					or_dnsq_add(qs, nq, name, 2);
				}
			}
		}
	}
}

/* SPF includes, level by level, until none is new (at most 10 rounds).  A
 * round the resolver fails ends the walk: its queries stay unanswered, and
 * the checks that need them have no verdict. */
static void or_spf_expand(struct or_dnsq **qs, int *nq, const char *server, int timeout_ms,
                          char *err, size_t errlen)
{
	for (int round = 0; round < 10; round++) {
		int before = *nq;
		for (int i = 0; i < before; i++) {
			char rec[2048];
			struct or_buf t = { 0 };
			if ((*qs)[i].mode != 1 || (*qs)[i].result != OR_DNS_OK ||
			    !or_spf_records((*qs)[i].rr.s ? (*qs)[i].rr.s : "", rec, sizeof rec))
				continue;
			or_spf_lookups(rec, &t);
			for (char *l = t.s; l && *l; l = strchr(l, '\n') + 1) {
				char target[300];
				snprintf(target, sizeof target, "%.*s", (int)strcspn(l, "\n"), l);
				if (or_domain_ok(target))
					or_dnsq_add(qs, nq, target, 1);
			}
			or_buf_free(&t);
		}
		if (*nq == before)
			break;
		if (or_dns_resolve(*qs + before, *nq - before, server, timeout_ms, err, errlen))
			break;
	}
}

/* The includes rec lacks that dom's senders' providers need, as
 * "include:a, include:b" into missing (n bytes). */
static void or_spf_missing(const struct or_config *cfg, const char *dom, const char *rec, char *missing, size_t n)
{
	for (int i = 0; i < cfg->nsenders; i++) {
		const char *inc = or_provider_spf(cfg->providers[cfg->senders[i].provider].type);
		char want[300];
		if (strcmp(cfg->senders[i].domain, dom) || !inc)
			continue;
		snprintf(want, sizeof want, "include:%s", inc);
		if (!strcasestr(rec, want) && !strstr(missing, inc))
			snprintf(missing + strlen(missing), n - strlen(missing), "%s%.200s", *missing ? ", " : "", want);
	}
}

/* The DNS look-ups rec costs through its include tree, each target counted
 * once (at most 40 of them); the first include the DNS did not answer for
 * into unanswered (n bytes), which then makes the count unknown. */
static int or_spf_count(struct or_dnsq *qs, int nq, const char *rec, char *unanswered, size_t n)
{
	struct or_buf pending = { 0 }, seen = { 0 };
	int lookups = or_spf_lookups(rec, &pending);

	for (int guard = 0; pending.s && *pending.s && guard < 40; guard++) {
		char target[300], r2[2048];
		snprintf(target, sizeof target, "%.*s", (int)strcspn(pending.s, "\n"), pending.s);
		memmove(pending.s, pending.s + strcspn(pending.s, "\n") + 1, strlen(pending.s + strcspn(pending.s, "\n") + 1) + 1);
		pending.len = strlen(pending.s);
		char line[310];
		snprintf(line, sizeof line, "\n%s\n", target);
		if (seen.s && strstr(seen.s, line))
			continue;
		if (!seen.len)
			or_buf_puts(&seen, "\n");
		or_buf_printf(&seen, "%s\n", target);
		if (or_dnsq_unanswered(qs, nq, target, 1) && !*unanswered)
			snprintf(unanswered, n, "TXT %.290s (an SPF include)", target);
		if (or_spf_records(or_dnsq_txt(qs, nq, target), r2, sizeof r2))
			lookups += or_spf_lookups(r2, &pending);
	}
	or_buf_free(&pending);
	or_buf_free(&seen);
	return lookups;
}

/* spf: one record at the domain, including every provider its senders use,
 * within the limit of 10 look-ups (RFC 7208 §4.6.4). */
static void or_check_spf(const struct or_config *cfg, struct or_domain_report *r, struct or_dnsq *qs, int nq)
{
	const char *dom = r->domain;
	char rec[2048], name[700];   /* a query name (600) with its type */
	int req = or_dc_required(cfg, "spf"), nspf = or_spf_records(or_dnsq_txt(qs, nq, dom), rec, sizeof rec);

	snprintf(name, sizeof name, "TXT %s", dom);
	if (or_dnsq_unanswered(qs, nq, dom, 1)) {
		or_check_unknown(r, "spf", req, name);
	} else if (nspf == 0) {
		or_check_set(r, "spf", 0, req, "no SPF record: publish one TXT \"v=spf1 ... -all\" at %s", dom);
	} else if (nspf > 1) {
		or_check_set(r, "spf", 0, req, "%d SPF records at %s: merge them into one", nspf, dom);
	} else {
		char missing[300] = "", unanswered[320] = "";
		int lookups;
		or_spf_missing(cfg, dom, rec, missing, sizeof missing);
		lookups = or_spf_count(qs, nq, rec, unanswered, sizeof unanswered);
		if (*unanswered && !*missing)   /* the look-up count is not known */
			or_check_unknown(r, "spf", req, unanswered);
		else if (*missing)
			or_check_set(r, "spf", 0, req, "SPF does not include the provider: add %s", missing);
		else if (lookups > 10)
			or_check_set(r, "spf", 0, req, "SPF needs %d DNS look-ups, over the limit of 10: flatten it", lookups);
		else
			or_check_set(r, "spf", 1, req, "one SPF record, %d look-ups: %.200s", lookups, rec);
	}
}

/* dkim: a key (or a CNAME to one) at every selector of the domain's senders. */
static void or_check_dkim(const struct or_config *cfg, struct or_domain_report *r, struct or_dnsq *qs, int nq)
{
	const char *dom = r->domain;
	char found[300] = "", missing[300] = "", unanswered[600] = "", name[700];
	int nsel = 0, req = or_dc_required(cfg, "dkim");

	for (int i = 0; i < cfg->nsenders; i++) {
		const struct or_sender *sd = &cfg->senders[i];
		if (strcmp(sd->domain, dom))
			continue;
		for (char **sel = or_dkim_selectors(cfg, sd); sel && *sel; sel++) {
			struct or_dnsq *q = NULL;
			snprintf(name, sizeof name, "%s._domainkey.%s", *sel, dom);
			for (int k = 0; k < nq; k++)
				if (qs[k].mode == 1 && !strcasecmp(qs[k].domain, name))
					q = &qs[k];
			if (or_dnsq_unanswered(qs, nq, name, 1) && !*unanswered)
				snprintf(unanswered, sizeof unanswered, "TXT %.300s", name);
			int ok = q && q->result == OR_DNS_OK && (q->cname || (q->rr.s && strstr(q->rr.s, "p=")));
			char *dst = ok ? found : missing;
			if (!strstr(dst, *sel)) {
				snprintf(dst + strlen(dst), 300 - strlen(dst), "%s%s", *dst ? ", " : "", *sel);
				nsel++;
			}
		}
	}
	if (!nsel)
		or_check_set(r, "dkim", 0, req, "no DKIM selectors to check: set dkim_selectors "
		             "for this domain's senders (SES Easy DKIM tokens come from the SES console)");
	else if (*unanswered)
		or_check_unknown(r, "dkim", req, unanswered);
	else if (*missing)
		or_check_set(r, "dkim", 0, req, "no DKIM key at selector %s (SELECTOR._domainkey.%s)", missing, dom);
	else
		or_check_set(r, "dkim", 1, req, "DKIM keys at selector %s", found);
}

/* dmarc: a record at _dmarc of the domain, else of its parent, with a valid policy. */
static void or_check_dmarc(const struct or_config *cfg, struct or_domain_report *r, struct or_dnsq *qs, int nq)
{
	const char *dom = r->domain;
	char d1[600], d2[600], txt[2048] = "", where[600] = "", name[700], policy[32] = "";
	int n = 0, req = or_dc_required(cfg, "dmarc");

	snprintf(d1, sizeof d1, "_dmarc.%s", dom);
	snprintf(d2, sizeof d2, "_dmarc.%s", or_dmarc_parent(dom));
	for (int pass = 0; pass < 2 && !n; pass++) {
		const char *all = or_dnsq_txt(qs, nq, pass ? d2 : d1);
		for (const char *l = all; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
			if (!strncasecmp(l, "v=DMARC1", 8) && !n++) {
				snprintf(txt, sizeof txt, "%.*s", (int)strcspn(l, "\n"), l);
				snprintf(where, sizeof where, "%s", pass ? d2 : d1);
			}
		if (!strcmp(d1, d2))
			break;
	}
	const char *pol = strcasestr(txt, "p=");
	while (pol && pol > txt && pol[-1] != ';' && pol[-1] != ' ')
		pol = strcasestr(pol + 2, "p=");
	if (pol)
		snprintf(policy, sizeof policy, "%.*s", (int)strcspn(pol + 2, "; "), pol + 2);
	if (!n && (or_dnsq_unanswered(qs, nq, d1, 1) || or_dnsq_unanswered(qs, nq, d2, 1))) {
		snprintf(name, sizeof name, "TXT %s", or_dnsq_unanswered(qs, nq, d1, 1) ? d1 : d2);
		or_check_unknown(r, "dmarc", req, name);
	} else if (!n)
		or_check_set(r, "dmarc", 0, req, "no DMARC record at _dmarc.%s: publish "
		             "\"v=DMARC1; p=none; rua=mailto:...\" and tighten later", dom);
	else if (strcasecmp(policy, "none") && strcasecmp(policy, "quarantine") && strcasecmp(policy, "reject"))
		or_check_set(r, "dmarc", 0, req, "DMARC at %s has no valid policy (p=none, "
		             "quarantine or reject)", where);
	else
		or_check_set(r, "dmarc", 1, req, "DMARC p=%s at %s covers the From domain", policy, where);
}

/* mx: the domain takes mail (MX, or an address), so replies and bounces arrive. */
static void or_check_mx(const struct or_config *cfg, struct or_domain_report *r, struct or_dnsq *qs, int nq)
{
	const char *dom = r->domain;
	char name[700];

	for (int k = 0; k < nq; k++)
		if (qs[k].mode == 0 && !strcasecmp(qs[k].domain, dom)) {
			int res = qs[k].result;
			snprintf(name, sizeof name, "MX %s", dom);
			if (or_dnsq_unanswered(qs, nq, dom, 0)) {
				or_check_unknown(r, "mx", or_dc_required(cfg, "mx"), name);
				continue;
			}
			or_check_set(r, "mx", res == OR_DNS_OK, or_dc_required(cfg, "mx"), "%s",
			             res == OR_DNS_OK ? "MX (or an address) present: replies and bounces can arrive" :
			             res == OR_DNS_NULL_MX ? "null MX: the domain says it takes no mail; replies and bounces bounce" :
			             "no MX and no address: replies and bounces cannot arrive");
		}
}

/* 1 when the blocklist query q is about dom or a return-path domain of dom's
 * senders' providers. */
static int or_blocklist_ours(const struct or_config *cfg, const char *dom, const struct or_dnsq *q)
{
	size_t dl = strlen(dom);
	int ours = !strncasecmp(q->domain, dom, dl) && q->domain[dl] == '.';
	int rp = 0;

	for (int i = 0; i < cfg->nsenders && !ours && !rp; i++) {
		const char *inc = or_provider_spf(cfg->providers[cfg->senders[i].provider].type);
		rp = !strcmp(cfg->senders[i].domain, dom) && inc && !strncasecmp(q->domain, inc, strlen(inc)) &&
		     q->domain[strlen(inc)] == '.';
	}
	return ours || rp;
}

/* blocklist: neither the domain nor its return-path domains listed (an answer
 * in 127.0.0.0/8 outside 127.255.255.x, which are the lists' own errors). */
static void or_check_blocklist(const struct or_config *cfg, struct or_domain_report *r, struct or_dnsq *qs, int nq)
{
	const char *dom = r->domain;
	char listed[400] = "", unanswered[320] = "";

	for (int k = 0; k < nq; k++) {
		if (qs[k].mode != 2)
			continue;
		int mine = or_blocklist_ours(cfg, dom, &qs[k]);
		if (mine && or_dnsq_unanswered(qs, nq, qs[k].domain, 2) && !*unanswered)
			snprintf(unanswered, sizeof unanswered, "A %.300s", qs[k].domain);
		if (qs[k].result != OR_DNS_OK || !qs[k].rr.s)
			continue;
		if (mine && !strncmp(qs[k].rr.s, "127.", 4) && strncmp(qs[k].rr.s, "127.255.255.", 12))
			snprintf(listed + strlen(listed), sizeof listed - strlen(listed), "%s%s (%.*s)", *listed ? ", " : "",
			         qs[k].domain, (int)strcspn(qs[k].rr.s, "\n"), qs[k].rr.s);
	}
	if (*listed)
		or_check_set(r, "blocklist", 0, or_dc_required(cfg, "blocklist"), "listed: %s", listed);
	else if (*unanswered)
		or_check_unknown(r, "blocklist", or_dc_required(cfg, "blocklist"), unanswered);
	else
		or_check_set(r, "blocklist", 1, or_dc_required(cfg, "blocklist"), "not listed on the configured blocklists");
}

/* Checks every distinct sender domain in DNS: the queries planned and asked
 * at once, SPF includes followed, then one verdict per check in the order
 * spf, dkim, dmarc, mx, blocklist (the last only with blocklists
 * configured).  Returns the count of domains, -1 with err when the resolver
 * could not be used. */
static int or_domains_check(const struct or_config *cfg, const char *server, int timeout_ms,
                            struct or_domain_report *out, char *err, size_t errlen)
{
	struct or_dnsq *qs = NULL;
	int nq = 0, nd = or_domains_list(cfg, out);

	or_domains_plan(cfg, out, nd, &qs, &nq);
	if (or_dns_resolve(qs, nq, server, timeout_ms, err, errlen)) {
		or_dnsq_free(qs, nq);
		return -1;
	}
	or_spf_expand(&qs, &nq, server, timeout_ms, err, errlen);
	for (int d = 0; d < nd; d++) {
		struct or_domain_report *r = &out[d];
		r->ok = r->required_ok = 1;
		r->nchecks = 0;
		r->unknown = 0;
		for (int k = 0; k < nq; k++)   /* a query of this domain that got no answer: no verdict today */
			r->unknown |= qs[k].result == OR_DNS_TIMEOUT && strcasestr(qs[k].domain, r->domain) != NULL;
		or_check_spf(cfg, r, qs, nq);
		or_check_dkim(cfg, r, qs, nq);
		or_check_dmarc(cfg, r, qs, nq);
		or_check_mx(cfg, r, qs, nq);
		if (cfg->dc_blocklists)
			or_check_blocklist(cfg, r, qs, nq);
	}
	or_dnsq_free(qs, nq);
	return nd;
}

static void or_domain_json(struct or_buf *b, const struct or_domain_report *r)
{
	or_buf_puts(b, "{\"domain\":");
	or_json_str(b, r->domain);
	or_buf_printf(b, ",\"ok\":%s,\"checks\":[", r->ok ? "true" : "false");
	for (int k = 0; k < r->nchecks; k++) {
		or_buf_printf(b, "%s{\"name\":\"%s\",\"ok\":%s,\"required\":%s,\"detail\":", k ? "," : "", r->checks[k].name,
		              r->checks[k].ok ? "true" : "false", r->checks[k].required ? "true" : "false");
		or_json_str(b, r->checks[k].detail);
		or_buf_puts(b, "}");
	}
	or_buf_puts(b, "]}");
}

/* Before sending: each sender domain's required checks, cached for a day.
 * A domain failing one keeps its senders out, with the reason in the report
 * and an alert. */
static void or_domains_gate(const struct or_config *cfg, double now)
{
	struct or_domain_report rep[OR_MAX_SENDERS];
	struct or_domain_verdict v[OR_MAX_SENDERS];
	struct or_buf j[OR_MAX_SENDERS], why[OR_MAX_SENDERS];
	char err[300];
	int nd;

	if (!cfg->dc_required)
		return;
#if OR_PG
	if (cfg->store_pg ? !or_pg_domains_stale(cfg, now) : !or_store_domains_stale(cfg, now))
		return;
#else
	if (!or_store_domains_stale(cfg, now))
		return;
#endif
	memset(rep, 0, sizeof rep);
	if ((nd = or_domains_check(cfg, cfg->dns_server, cfg->dns_timeout_ms, rep, err, sizeof err)) < 0) {
		or_log(1, "event=domains error=\"%s\"", err);
		return;
	}
	memset(j, 0, sizeof j);
	memset(why, 0, sizeof why);
	for (int d = 0; d < nd; d++) {
		v[d] = (struct or_domain_verdict){ .domain = rep[d].domain, .unknown = rep[d].unknown,
		                                   .ok = rep[d].required_ok };
		if (rep[d].unknown)
			continue;
		or_domain_json(&j[d], &rep[d]);
		for (int k = 0; k < rep[d].nchecks; k++)
			if (rep[d].checks[k].required && !rep[d].checks[k].ok)
				or_buf_printf(&why[d], "%s%s: %s", why[d].len ? "; " : "", rep[d].checks[k].name,
				              rep[d].checks[k].detail);
		v[d].report = j[d].s;
		v[d].why = why[d].s;
	}
#if OR_PG
	if (cfg->store_pg)
		or_pg_domain_checks(v, nd, now);
	else
#endif
		or_store_domain_checks(v, nd, now);
	for (int d = 0; d < nd; d++) {
		or_buf_free(&j[d]);
		or_buf_free(&why[d]);
	}
}

struct or_vopts { int mx, json, csv; const char *column, *client, *dns_server; int timeout_ms; };

/* Whether an input's first line is a CSV header: a field named email or to. */
static int or_vin_csv_header(const char *data)
{
	size_t l = strcspn(data, "\r\n");
	char first[1024], *save = NULL, *f;
	int csv = 0;

	snprintf(first, sizeof first, "%.*s", (int)(l < sizeof first - 1 ? l : sizeof first - 1), data);
	or_lower(first);
	for (f = strtok_r(first, ",", &save); f && !csv; f = strtok_r(NULL, ",", &save)) {
		while (*f == ' ' || *f == '"')
			f++;
		size_t fl = strlen(f);
		while (fl && (f[fl - 1] == ' ' || f[fl - 1] == '"'))
			f[--fl] = 0;
		csv = !strcmp(f, "email") || !strcmp(f, "to");
	}
	return csv;
}

/* An input's kind, from its name, then its first byte, --column, its header:
 * sets *csv or *jsonl (neither: text, one address a line). */
static void or_vin_kind(const char *data, size_t n, const char *path, const char *column, int *csv, int *jsonl)
{
	const char *dot = strrchr(path, '.');
	int k = 0;

	*csv = dot && !strcasecmp(dot, ".csv");
	*jsonl = dot && (!strcasecmp(dot, ".jsonl") || !strcasecmp(dot, ".ndjson"));
	while (k < (int)n && (data[k] == ' ' || data[k] == '\t'))
		k++;
	if (!*csv && !*jsonl && k < (int)n && data[k] == '{')
		*jsonl = 1;
	if (!*csv && !*jsonl && column)
		*csv = 1;
	if (!*csv && !*jsonl)
		*csv = or_vin_csv_header(data);
}

/* Appends one input line and its address (both malloc'd, now the lists'). */
static void or_vin_add(char ***lines, char ***addrs, int *count, char *line, char *addr)
{
	*lines = or_xrealloc(*lines, sizeof **lines * (size_t)(*count + 1));
	*addrs = or_xrealloc(*addrs, sizeof **addrs * (size_t)(*count + 1));
	(*lines)[*count] = line;
	(*addrs)[*count] = addr;
	(*count)++;
}

/* The index of the address column in a CSV header row, or -1. */
static int or_vin_csv_column(char **f, int nf, const char *column)
{
	int col = -1;

	for (int i = 0; i < nf; i++) {
		char h[128];
		snprintf(h, sizeof h, "%s", f[i]);
		or_lower(h);
		if ((column && !strcmp(f[i], column)) || (!column && col < 0 && (!strcmp(h, "email") || !strcmp(h, "to"))))
			col = i;
	}
	return col;
}

/* A CSV input: the header row names the column, each later row gives its
 * line as written (a quoted cell may span lines) and that column's cell. */
static int or_vin_csv(const char *data, size_t n, const char *path, const char *column, char ***lines,
                      char ***addrs, int *count, char *err, size_t errlen)
{
	struct or_csv c = { data, data + n, 1 };
	char **f;
	int nf, rc, col = -1;
	const char *start = c.p;

	for (int row = 0; (rc = or_csv_next(&c, &f, &nf, err, errlen)) == 1; row++) {
		if (row == 0) {
			col = or_vin_csv_column(f, nf, column);
			or_csv_free_fields(f, nf);
			if (col < 0) {
				snprintf(err, errlen, "%s: no column named %s", path, column ? column : "email or to");
				return -1;
			}
			start = c.p;
			continue;
		}
		const char *end = c.p;
		while (end > start && (end[-1] == '\n' || end[-1] == '\r'))
			end--;
		char *line = or_xrealloc(NULL, (size_t)(end - start) + 1);
		memcpy(line, start, (size_t)(end - start));
		line[end - start] = 0;
		or_vin_add(lines, addrs, count, line, or_xstrdup(col < nf ? f[col] : ""));
		or_csv_free_fields(f, nf);
		start = c.p;
	}
	return rc < 0 ? -1 : 0;
}

/* A text or JSON Lines input: one address (or job, its "to") a line,
 * blank lines skipped. */
static void or_vin_lines(const char *data, size_t n, int jsonl, char ***lines, char ***addrs, int *count)
{
	for (const char *p = data, *e = data + n; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p)), *le = nl ? nl : e;
		size_t l = (size_t)(le - p);
		if (l && p[l - 1] == '\r')
			l--;
		char *line = or_xrealloc(NULL, l + 1), *addr;
		memcpy(line, p, l);
		line[l] = 0;
		p = nl ? nl + 1 : e;
		if (strspn(line, " \t") == l) {
			free(line);
			continue;
		}
		if (jsonl) {
			const char *a[] = { line };
			addr = or_json_sql("SELECT json_extract(?1, '$.to') WHERE json_strict(?1)", a, 1);
			if (!addr)
				addr = or_xstrdup("");
		} else {
			addr = or_xstrdup(line);
		}
		or_vin_add(lines, addrs, count, line, addr);
	}
}

/* The addresses of an input: text (one a line), CSV (column email, to or
 * --column) or JSON Lines jobs ("to").  Each with its line as given. */
static int or_validate_inputs(const char *data, size_t n, const char *path, const char *column, char ***lines,
                              char ***addrs, int *count, char *err, size_t errlen)
{
	int csv, jsonl;

	or_vin_kind(data, n, path, column, &csv, &jsonl);
	*count = 0;
	*lines = *addrs = NULL;
	if (csv)
		return or_vin_csv(data, n, path, column, lines, addrs, count, err, errlen);
	or_vin_lines(data, n, jsonl, lines, addrs, count);
	return 0;
}

/* Validates addrs[0..n): syntax and local checks, duplicates in input
 * order, the suppression list (when the ledger is open), MX when asked. */
static void or_validate_all(const struct or_config *cfg, const struct or_vopts *o, char **addrs, int n, struct or_vres *res)
{
	struct or_dnsq *qs = NULL;
	int nq = 0;
	double now = or_now();
	int ledger = or_store_is_open();

	or_mem_seen_reset();
	for (int i = 0; i < n; i++) {
		or_validate_syntax(addrs[i], &res[i]);
		if (!*res[i].address)
			continue;
		if (or_mem_seen_add(res[i].address) == 0)
			res[i].reasons |= 1u << OR_R_DUPLICATE;
		if (ledger && or_is_suppressed(res[i].address, o->client ? o->client : ""))
			res[i].reasons |= 1u << OR_R_SUPPRESSED;
		if (!o->mx)
			continue;
		int known = 0;
		for (int k = 0; k < nq && !known; k++)
			known = !strcmp(qs[k].domain, res[i].domain);
		if (known)
			continue;
		if (ledger) {   /* cached for a day */
			int cached = or_store_dns_cached(res[i].domain, now - 86400);
			if (cached > 0) {
				qs = or_xrealloc(qs, sizeof *qs * (size_t)(nq + 1));
				memset(&qs[nq], 0, sizeof *qs);
				snprintf(qs[nq].domain, sizeof qs[nq].domain, "%s", res[i].domain);
				qs[nq].cached = 1;   /* keeps its original time: the cache lasts a day from the answer */
				qs[nq++].result = cached;
				continue;
			}
		}
		qs = or_xrealloc(qs, sizeof *qs * (size_t)(nq + 1));
		memset(&qs[nq], 0, sizeof *qs);
		snprintf(qs[nq++].domain, sizeof qs[0].domain, "%s", res[i].domain);
	}
	if (o->mx && nq > 0) {
		char err[300];
		if (or_dns_resolve(qs, nq, o->dns_server, o->timeout_ms, err, sizeof err)) {
			fprintf(stderr, "outreach: %s\n", err);
			for (int k = 0; k < nq; k++)
				if (qs[k].result == OR_DNS_PENDING)
					qs[k].result = OR_DNS_TIMEOUT;
		}
		if (ledger) {
			struct or_dns_answer *a = or_xrealloc(NULL, sizeof *a * (size_t)nq);
			int na = 0;
			for (int k = 0; k < nq; k++)
				if (!qs[k].cached && qs[k].result != OR_DNS_TIMEOUT && qs[k].result != OR_DNS_PENDING)
					a[na++] = (struct or_dns_answer){ qs[k].domain, qs[k].result };
			or_store_dns_cache_put(a, na, now);
			free(a);
		}
		for (int i = 0; i < n; i++)
			for (int k = 0; k < nq; k++)
				if (*res[i].domain && !strcmp(qs[k].domain, res[i].domain)) {
					if (qs[k].result == OR_DNS_NO_MX) res[i].reasons |= 1u << OR_R_NO_MX;
					if (qs[k].result == OR_DNS_NULL_MX) res[i].reasons |= 1u << OR_R_NULL_MX;
					if (qs[k].result == OR_DNS_TIMEOUT || qs[k].result == OR_DNS_PENDING)
						res[i].reasons |= 1u << OR_R_DNS_TIMEOUT;
				}
	}
	free(qs);
	(void)cfg;
}

static void or_vres_json(struct or_buf *b, const struct or_vres *r)
{
	or_buf_puts(b, "{\"input\":");
	or_json_str(b, r->input);
	or_buf_puts(b, ",\"address\":");
	or_json_str(b, r->address);
	or_buf_printf(b, ",\"verdict\":\"%s\",\"reasons\":[", or_verdict_of(r->reasons));
	for (int k = 0, first = 1; k < OR_NREASONS; k++)
		if (r->reasons & (1u << k)) {
			or_buf_printf(b, "%s\"%s\"", first ? "" : ",", or_reason_names[k]);
			first = 0;
		}
	or_buf_puts(b, "],\"suggestion\":");
	if (*r->suggestion)
		or_json_str(b, r->suggestion);
	else
		or_buf_puts(b, "null");
	or_buf_puts(b, "}\n");
}

static void or_csv_cell(struct or_buf *b, const char *v)
{
	if (strpbrk(v, ",\"\r\n")) {
		or_buf_puts(b, "\"");
		for (; *v; v++)
			or_buf_add(b, *v == '"' ? "\"\"" : v, *v == '"' ? 2 : 1);
		or_buf_puts(b, "\"");
	} else {
		or_buf_puts(b, v);
	}
}

/* ================================================================
 * RUN: one tick (doc/design.md §1)
 *
 * Config and spool are open; the run takes its lock, recovers the dead,
 * ingests, sends, evaluates alerts, writes its reports and delivers alerts.
 * ================================================================ */

static void or_on_signal(int sig) { (void)sig; or_stop = 1; }

/* An idle tick leaves no row in the ledger (or_store_run_row), so that it
 * writes nothing there; run/idle records it instead, for `status` (or_snap_
 * idle_tick): "ID STARTED DURATION".  Derived data, by rename, never
 * fsynced: a crash or a power loss loses at most the time of a tick that
 * did nothing. */
static void or_tick_stamp_idle(const struct or_run *run, double now)
{
	char b[128];
	int n = snprintf(b, sizeof b, "%s %.3f %.3f\n", run->id, run->started, now - run->started);

	or_write_atomic(or_dirfd[OR_D_RUN], "idle", b, (size_t)n, OR_W_NOSYNC);
}

/* One tick (doc/design.md §1).  Returns an exit code. */
static int or_run_tick(const struct or_config *cfg, int max_jobs, double deadline)
{
	struct or_run run = { 0 };
	char err[8400];
	int rc;

	if ((rc = or_spool_open(cfg->spool, err, sizeof err))) {
		fprintf(stderr, "outreach: %s\n", err);
		return rc;
	}
	if (!cfg->store_pg && (rc = or_db_open(cfg, 0, err, sizeof err))) {
		fprintf(stderr, "outreach: %s\n", err);
		return rc;
	}
	signal(SIGTERM, or_on_signal);
	signal(SIGINT, or_on_signal);
	or_random_hex(run.id, 16);
	run.started = or_now();
	run.deadline = run.started + (deadline > 0 ? deadline : cfg->deadline);
	run.max_jobs = max_jobs > 0 ? max_jobs : cfg->max_jobs;
#if OR_PG
	if (cfg->store_pg)
		return or_pg_tick(cfg, &run);
#endif
	if ((run.lockfd = or_lock_file(run.id, 1)) < 0) {
		int e = errno;
		fprintf(stderr, "outreach: %s/run/%s.lock: %s\n", cfg->spool, run.id, strerror(e));
		return or_ex_io(e);
	}

	if (*cfg->unsub_url && or_key_load(cfg->spool, err, sizeof err)) {
		fprintf(stderr, "outreach: unsubscribe is configured but %s\n", err);
		return or_ex_io(errno);
	}
	or_recover(cfg, run.id);
	or_cancel_finish();
	or_tmp_clean(cfg, run.started);
	int ingest_busy = or_ingest(cfg, &run) == -2;
	/* a quarter of the deadline at most (15 s at the default 50 s), so the
	 * feeds never eat the sending time */
	or_feeds_pull(cfg, 0, (run.deadline - run.started) / 4 < 15 ? (run.deadline - run.started) / 4 : 15);
	or_unsub_apply(cfg, or_now());
	/* replies before the claim, so no follow-up goes to a lead who answered
	 * (the same budget as the feeds) */
	or_replies_pull(cfg, 0, (run.deadline - run.started) / 4 < 15 ? (run.deadline - run.started) / 4 : 15);
	or_inbound_take(cfg, or_now());
	or_health_judge(cfg, or_now());
	or_domains_gate(cfg, or_now());
	or_send_loop(cfg, &run);
	if (ingest_busy && or_ingest_wait(&run))   /* another run was ingesting: send what it brought in */
		or_send_loop(cfg, &run);
	or_housekeeping(cfg, or_now());

	or_spool_sync();
	or_store_run_end(&run, or_now());
	if (!run.row && or_run_idle(&run))
		or_tick_stamp_idle(&run, or_now());
	{
		char name[64];
		snprintf(name, sizeof name, "%s.lock", run.id);
		unlinkat(or_dirfd[OR_D_RUN], name, 0);
		close(run.lockfd);
	}
	or_alerts_evaluate(cfg, or_now());
	or_write_reports(cfg, &run);
	or_alerts_deliver(cfg);
	if (or_run_idle(&run))   /* its row and the ledger's close sync nothing (reports never do) */
		or_store_close_lazily();
	return OR_EX_OK;
}

/* ================================================================
 * COMMANDS
 *
 * Each command takes its own arguments after the command word, returns a
 * sysexits code, and prints errors as one line each on stderr.
 * ================================================================ */

static const char or_usage[] =
	"usage: outreach [-c CONFIG] [-v|-q] COMMAND [ARGS]\n"
	"  init [--key FILE]         create the spool folders, the state database and the key file\n"
	"                            (--key: the key is a copy of another host's, in FILE)\n"
	"  enqueue [--client C] [--campaign K] [--format json|jsonl|csv] [--template T.json]\n"
	"          [--validate [--strict] [--mx]] [--dry-run] [--allow-repeat] FILE...|-\n"
	"                            check jobs and drop each into the spool atomically; prints\n"
	"                            one job id per line; a recipient repeated in one client and\n"
	"                            campaign is enqueued once unless --allow-repeat\n"
	"  run [--max N] [--deadline SECONDS]\n"
	"                            one tick (what cron calls)\n"
	"  status [--json]           the current state, computed afresh\n"
	"  senders                   per sender: domain, provider, enabled, sent today / cap today,\n"
	"                            warm-up day, rate\n"
	"  sender enable|disable NAME [--reason TEXT]\n"
	"  suppress add|remove|list|import|export [ADDRESS|FILE|-] [--client C] [--reason TEXT]\n"
	"          [--skip-invalid]  import: all or nothing unless --skip-invalid; export: to stdout\n"
	"                            (no FILE, or -) or into FILE\n"
	"  pull [--mailbox NAME [--since YYYY-MM-DD]]\n"
	"                            pull provider feedback and read replies now, then judge\n"
	"                            domain health; --since reads a mailbox's mail since then again\n"
	"  leads [--state S] [--client C] [--campaign K] [--to ADDRESS] [--limit N] [--json]\n"
	"                            sequences, one line per lead: state, steps sent, why\n"
	"  lead show|pause|resume|stop ADDRESS [--client C] [--until YYYY-MM-DD] [--reason TEXT]\n"
	"          [--json]          one lead's steps and replies; hold, release or end it\n"
	"  engagement [--client C] [--inactive-days N] [--min-sends N] [--json|--csv] [--export FILE]\n"
	"                            addresses mailed again and again with no delivery, open,\n"
	"                            click or reply in N days (120), the longest silent first\n"
	"  unsubscribe TOKEN         verify a one-click token and suppress its address\n"
	"  cgi                       the one-click unsubscribe endpoint, as a CGI program\n"
	"  requeue held|failed|bad [JOB_ID...]\n"
	"  pause|resume [--client C] [--campaign K] [--sender NAME] [--reason TEXT]\n"
	"                            stop claiming a scope's jobs (they wait), or let them go again\n"
	"  cancel [--client C] [--campaign K] [--reason TEXT]\n"
	"                            move a scope's waiting jobs to failed/ as cancelled\n"
	"  render JOB_ID|FILE [--part raw|headers|text|html]\n"
	"                            the exact message that would go out, via the sender picked now\n"
	"  jobs [--state S] [--client C] [--campaign K] [--to ADDRESS] [--limit N] [--json]\n"
	"  show JOB_ID [--json]      one job's whole history from the ledger\n"
	"  backup FILE               a consistent copy of the state database, taken live\n"
	"  store migrate             this host's SQLite ledger onto the PostgreSQL store the config names\n"
	"  validate [--mx] [--json|--csv] [--column NAME] [--client C] [--dns-server IP[:PORT]] FILE|-\n"
	"                            list hygiene: syntax, MX, disposable, role, typo, duplicate,\n"
	"                            suppressed; one verdict per input line\n"
	"  domains [--json] [--dns-server IP[:PORT]]\n"
	"                            each sender domain's SPF, DKIM, DMARC, MX and blocklist checks\n"
	"  plan [--json] [--days N]  forecast: when each campaign's pending jobs will have gone out\n"
	"                            at today's caps and warm-up ramps (warn beyond N days, 7)\n"
	"  check-config [--online|--keys]\n"
	"                            validate the config and say what it understood; --online\n"
	"                            also tries each provider account with a harmless call;\n"
	"                            --keys lists every config key with its default and range\n"
	"  version | help\n"
	"Config: -c, else $OUTREACH_CONF, else /etc/outreach/outreach.conf.\n";

/* A word the command cannot take: named on one line (an operator who typed
 * --statee sees which word), then the usage.  Exit 64.  cmd NULL: a global
 * option, before the command. */
static int or_bad_arg(const char *cmd, const char *arg)
{
	char safe[100];

	fprintf(stderr, "outreach: %s%s%s '%s'\n", cmd ? cmd : "", cmd ? ": " : "", arg[0] == '-' && arg[1] ?
	        "unknown option, or one without its value:" : "unexpected argument", or_safe(arg, safe, 80));
	fputs(or_usage, stderr);
	return OR_EX_USAGE;
}

/* An enumerated option's value that is none of the valid ones (NULL-ended
 * list): the value and the list, exit 64.  0 when val is valid. */
static int or_bad_value(const char *cmd, const char *opt, const char *val, const char *const *valid)
{
	char safe[100];

	for (const char *const *v = valid; *v; v++)
		if (!strcmp(val, *v))
			return 0;
	fprintf(stderr, "outreach: %s: %s'%s' is not one of:", cmd, opt, or_safe(val, safe, 80));
	for (const char *const *v = valid; *v; v++)
		fprintf(stderr, "%s %s", v == valid ? "" : ",", *v);
	fputc('\n', stderr);
	return OR_EX_USAGE;
}

/* The job states of the ledger, as `jobs --state` takes them (README and the
 * man page list them too). */
static const char *const or_job_states[] = { "waiting", "claimed", "sending", "held", "sent", "suppressed",
                                             "duplicate", "failed", "bad", "requeued", "pending", "stopped", NULL };

static int or_open_state(const struct or_config *cfg, int create)
{
	char err[8400];
	int rc;

	if ((rc = or_spool_open(cfg->spool, err, sizeof err))) {
		fprintf(stderr, "outreach: %s\n", err);
		return rc;
	}
#if OR_PG
	if (cfg->store_pg)
		rc = or_pg_connect(cfg, err, sizeof err);
	else
#endif
		rc = or_db_open(cfg, create, err, sizeof err);
	if (rc)
		fprintf(stderr, "outreach: %s\n", err);
	return rc;
}

static int or_cmd_init(const struct or_config *cfg, const char *keyfile)
{
	char err[8400];
	int rc;

	if (or_spool_init(cfg->spool) == -1) {
		fprintf(stderr, "outreach: %s: %s\n", cfg->spool, strerror(errno));
		return OR_EX_IOERR;
	}
	/* report_dir as a run makes it (0755 less the umask: 0750), so it is
	 * there, with its owner, before the first run */
	if (mkdir(cfg->report_dir, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "outreach: %s: %s\n", cfg->report_dir, strerror(errno));
		return or_ex_io(errno);
	}
	if ((rc = or_spool_open(cfg->spool, err, sizeof err))) {
		fprintf(stderr, "outreach: %s\n", err);
		return rc;
	}
#if OR_PG
	if (cfg->store_pg)   /* the shared ledger, and no SQLite one beside it */
		return or_pg_init(cfg, keyfile);
#endif
	if ((rc = or_db_open(cfg, 1, err, sizeof err))) {
		fprintf(stderr, "outreach: %s\n", err);
		return rc;
	}
	/* The HMAC key for unsubscribe tokens: created once, never replaced. */
	return or_init_key(cfg, keyfile);
}

/* ---- enqueue ---- */

struct or_input { char *json; char where[300]; };

struct or_enq {
	const char *client, *campaign, *format, *template_path;
	int validate, strict, dry_run, mx, allow_repeat;
	char *tmpl;                       /* template JSON text, or NULL */
	struct or_input *in;
	int nin;
	int nproblems;
};

static void or_enq_add(struct or_enq *e, const char *json, size_t n, const char *file, int line)
{
	e->in = or_xrealloc(e->in, sizeof *e->in * (size_t)(e->nin + 1));
	e->in[e->nin].json = or_xrealloc(NULL, n + 1);
	memcpy(e->in[e->nin].json, json, n);
	e->in[e->nin].json[n] = 0;
	snprintf(e->in[e->nin].where, sizeof e->in[e->nin].where, "%s:%d", file, line);
	e->nin++;
}

static void or_problem(struct or_enq *e, const char *where, const char *field, const char *why)
{
	char a[300], b[200];

	fprintf(stderr, "%s: %s%s%s\n", or_safe(where, a, sizeof a), or_safe(field, b, sizeof b),
	        *field ? ": " : "", why);
	e->nproblems++;
}

static const char *const or_csv_fields[] = { "to", "email", "subject", "text", "html", "client",
	"campaign", "id", "reply_to", "sender", "not_before", NULL };

/* CSV rows as job JSON: known columns fill fields, the rest become vars. */
static void or_enq_csv(struct or_enq *e, const char *data, size_t n, const char *file)
{
	struct or_csv c = { data, data + n, 1 };
	char **hdr = NULL, **row, err[200];
	int nh = 0, nr, rc, line;

	if ((rc = or_csv_next(&c, &hdr, &nh, err, sizeof err)) <= 0) {
		char w[300];
		snprintf(w, sizeof w, "%s:1", file);
		or_problem(e, w, "", rc == 0 ? "empty CSV: a header row is required" : err);
		return;
	}
	for (;;) {
		struct or_buf j = { 0 }, vars = { 0 };
		line = c.line;
		if ((rc = or_csv_next(&c, &row, &nr, err, sizeof err)) == 0)
			break;
		if (rc < 0) {
			char w[300];
			snprintf(w, sizeof w, "%s:%d", file, line);
			or_problem(e, w, "", err);
			break;
		}
		or_buf_puts(&j, "{");
		for (int i = 0; i < nh && i < nr; i++) {
			int known = 0;
			for (int k = 0; or_csv_fields[k]; k++)
				known |= strcmp(hdr[i], or_csv_fields[k]) == 0;
			if (known && !*row[i])
				continue;
			struct or_buf *dst = known ? &j : &vars;
			or_buf_puts(dst, dst->len > 1 ? "," : "");
			or_json_str(dst, strcmp(hdr[i], "email") ? hdr[i] : "to");
			or_buf_puts(dst, ":");
			or_json_str(dst, row[i]);
		}
		if (vars.len) {
			or_buf_printf(&j, "%s\"vars\":{%s}", j.len > 1 ? "," : "", vars.s);
		}
		or_buf_puts(&j, "}");
		if (nr != nh) {
			char w[300], why[100];
			snprintf(w, sizeof w, "%s:%d", file, line);
			snprintf(why, sizeof why, "row has %d fields, the header has %d", nr, nh);
			or_problem(e, w, "", why);
		} else {
			or_enq_add(e, j.s, j.len, file, line);
		}
		or_buf_free(&j);
		or_buf_free(&vars);
		or_csv_free_fields(row, nr);
	}
	or_csv_free_fields(hdr, nh);
}

static void or_enq_parse(struct or_enq *e, const char *data, size_t n, const char *file, const char *fmt)
{
	if (!strcmp(fmt, "csv")) {
		or_enq_csv(e, data, n, file);
	} else if (!strcmp(fmt, "jsonl")) {
		const char *p = data, *end = data + n;
		for (int line = 1; p < end; line++) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			const char *q = p;
			while (q < le && isspace((unsigned char)*q))
				q++;
			if (q < le)
				or_enq_add(e, p, (size_t)(le - p), file, line);
			p = nl ? nl + 1 : end;
		}
	} else {
		struct or_member *m = NULL;
		int nm = 0;
		char err[200];
		if (or_json_members(data, n, "array", &m, &nm, err, sizeof err) == 0) {
			for (int i = 0; i < nm; i++) {
				char w[300];
				snprintf(w, sizeof w, "%s[%d]", file, i);
				or_enq_add(e, m[i].val, m[i].vlen, w, 1);
				e->in[e->nin - 1].where[strlen(e->in[e->nin - 1].where) - 2] = 0;   /* drop ":1" */
			}
			or_members_free(m, nm);
		} else {
			or_enq_add(e, data, n, file, 1);
		}
	}
}

/* Reads a whole input file (or "-": stdin) of at most max bytes. Returns 0,
 * or the exit code its failure calls for, with err saying why: 75 when the
 * machine is short of descriptors or memory (the same file is good once
 * they return: nothing may be judged for it), 65 when the file itself is
 * missing, unreadable, not a regular file or too big. */
static int or_read_all(const char *path, long max, char **out, size_t *len, char *err, size_t errlen)
{
	struct or_buf b = { 0 };
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : 0;
	int rc = OR_EX_DATAERR;
	struct stat st;

	if (fd == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		return or_ex_input(errno);
	}
	if (fd > 0 && (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))) {
		snprintf(err, errlen, "not a regular file");
		close(fd);
		return OR_EX_DATAERR;
	}
	if (fd > 0)
		fcntl(fd, F_SETFL, 0);
	for (;;) {
		char buf[65536];
		ssize_t r = read(fd, buf, sizeof buf);
		if (r == -1 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = or_ex_input(errno);
			snprintf(err, errlen, "%s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		if ((long)(b.len + (size_t)r) > max) {
			snprintf(err, errlen, "input larger than %ld bytes", max);
			goto fail;
		}
		or_buf_add(&b, buf, (size_t)r);
	}
	if (fd > 0)
		close(fd);
	or_buf_add(&b, "", 0);
	if (b.len >= 3 && !memcmp(b.s, "\xef\xbb\xbf", 3)) {   /* a UTF-8 BOM, as spreadsheet exports write */
		memmove(b.s, b.s + 3, b.len - 2);
		b.len -= 3;
	}
	*out = b.s;
	*len = b.len;
	return 0;
fail:
	if (fd > 0)
		close(fd);
	or_buf_free(&b);
	return rc;
}

/* Applies --template and --client/--campaign to a job's JSON (the job's own
 * fields win, vars merge), with SQLite's json_patch (RFC 7396). */
static char *or_enq_merge(const struct or_enq *e, const char *json)
{
	struct or_buf d = { 0 };
	char *out;

	if (!e->tmpl && !e->client && !e->campaign)
		return or_xstrdup(json);
	or_buf_puts(&d, "{");
	if (e->client) {
		or_buf_puts(&d, "\"client\":");
		or_json_str(&d, e->client);
	}
	if (e->campaign) {
		or_buf_puts(&d, e->client ? ",\"campaign\":" : "\"campaign\":");
		or_json_str(&d, e->campaign);
	}
	or_buf_puts(&d, "}");
	/* precedence: the job's own fields, then --client/--campaign, then the template */
	out = or_json_layer(e->tmpl ? e->tmpl : "{}", d.s, json);
	or_buf_free(&d);
	return out ? out : or_xstrdup(json);
}

/* The job as it is written to the spool: the merged JSON with its id set. */
static char *or_enq_final(const char *json, const char *producer)
{
	return or_json_set_id(json, producer);
}

static int or_enq_opts(struct or_enq *e, int argc, char **argv, int *first)
{
	int i;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char **val = !strcmp(a, "--client") ? &e->client : !strcmp(a, "--campaign") ? &e->campaign :
		                   !strcmp(a, "--format") ? &e->format : !strcmp(a, "--template") ? &e->template_path : NULL;
		if (val) {
			if (++i >= argc)
				return or_bad_arg("enqueue", a);
			*val = argv[i];
		} else if (!strcmp(a, "--validate")) e->validate = 1;
		else if (!strcmp(a, "--strict")) e->strict = 1;
		else if (!strcmp(a, "--mx")) e->mx = 1;
		else if (!strcmp(a, "--dry-run")) e->dry_run = 1;
		else if (!strcmp(a, "--allow-repeat")) e->allow_repeat = 1;
		else if (!strcmp(a, "--")) { i++; break; }
		else if (a[0] == '-' && a[1]) return or_bad_arg("enqueue", a);
		else break;
	}
	*first = i;
	static const char *const formats[] = { "json", "jsonl", "csv", NULL };
	if (e->format && or_bad_value("enqueue", "--format ", e->format, formats))
		return OR_EX_USAGE;
	if ((e->strict || e->mx) && !e->validate) {
		fprintf(stderr, "outreach: enqueue: '%s' goes with --validate\n", e->strict ? "--strict" : "--mx");
		return OR_EX_USAGE;
	}
	return i < argc ? 0 : (fputs(or_usage, stderr), OR_EX_USAGE);
}

static const char *or_enq_format(const struct or_enq *e, const char *path)
{
	const char *dot = strrchr(path, '.');

	if (e->format)
		return e->format;
	if (!strcmp(path, "-"))
		return "jsonl";
	if (dot && !strcasecmp(dot, ".csv"))
		return "csv";
	if (dot && (!strcasecmp(dot, ".jsonl") || !strcasecmp(dot, ".ndjson")))
		return "jsonl";
	return "json";
}

/* One recipient of one client and campaign, as a sort key: "client NUL
 * campaign NUL address" compared case-insensitively (or_addr_canon). */
struct or_enq_rkey { char *key; size_t len; int i; };

static int or_enq_rkey_cmp(const void *a, const void *b)
{
	const struct or_enq_rkey *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);

	return c ? c : x->len != y->len ? (x->len < y->len ? -1 : 1) : (x->i > y->i) - (x->i < y->i);
}

/* A repeated recipient within one client and campaign in one input is a
 * duplicate (the same person mailed once per row otherwise): the first row
 * is kept, each later one named and skipped.  Jobs with their own id are
 * the producer's decision and are not keyed here; a row identical to an
 * earlier one has its job id, which the ledger already sends once.
 * Returns the count skipped. */
static int or_enq_repeats(const struct or_enq *e, struct or_enq_rkey *k, int nk, int *keep,
                          char (*ids)[OR_ID_HEX + 1])
{
	int n = 0;

	if (nk < 2)   /* nothing to compare (and k may be NULL: qsort must not see it) */
		return 0;
	qsort(k, (size_t)nk, sizeof *k, or_enq_rkey_cmp);
	for (int a = 0, b; a < nk; a = b) {
		for (b = a + 1; b < nk && k[b].len == k[a].len && !memcmp(k[b].key, k[a].key, k[a].len); b++) {
			if (!strcmp(ids[k[b].i], ids[k[a].i]))
				continue;
			fprintf(stderr, "%s: duplicate: the same recipient as %s in this client and campaign "
			        "(give each row an id, or --allow-repeat): skipped\n", e->in[k[b].i].where, e->in[k[a].i].where);
			keep[k[b].i] = 0;
			n++;
		}
	}
	return n;
}

/* enqueue's jobs as checked: per input row its id, its final text and
 * whether it is kept; the keys compared for repeats and, with --validate,
 * the recipients for the hygiene gate (ridx: their rows). */
struct or_enq_jobs {
	char (*ids)[OR_ID_HEX + 1];
	char **texts, **rcpts;
	int *keep, *ridx, nr, nskipped, nk, nrepeat;
	struct or_enq_rkey *rk;
};

/* --template: read and checked to be a JSON object (0), or the exit code. */
static int or_enq_template(const struct or_config *cfg, struct or_enq *e)
{
	char err[300];
	size_t n;
	struct or_member *m;
	int nm, rc;

	if ((rc = or_read_all(e->template_path, cfg->job_max_bytes, &e->tmpl, &n, err, sizeof err)) ||
	    or_json_members(e->tmpl, n, "object", &m, &nm, err, sizeof err)) {
		fprintf(stderr, "outreach: %s: %s\n", e->template_path, err);
		free(e->tmpl);
		return rc ? rc : OR_EX_DATAERR;
	}
	or_members_free(m, nm);
	return OR_EX_OK;
}

/* Every input file parsed into e's rows; the exit code of the worst that
 * could not be read (0: all were). */
static int or_enq_read_inputs(struct or_enq *e, int argc, char **argv, int first)
{
	char err[300];
	int rc = OR_EX_OK;

	for (int i = first; i < argc; i++) {
		char *data;
		size_t n;
		int rrc = or_read_all(argv[i], 256L * 1024 * 1024, &data, &n, err, sizeof err);
		if (rrc) {   /* a shortage (75) outranks a bad file (65): the input is tried again */
			fprintf(stderr, "outreach: %s: %s\n", argv[i], err);
			if (rc != OR_EX_TEMPFAIL)
				rc = rrc;
			continue;
		}
		or_enq_parse(e, data, n, strcmp(argv[i], "-") ? argv[i] : "stdin", or_enq_format(e, argv[i]));
		free(data);
	}
	return rc;
}

/* Row i's repeat key: client, campaign and the canonical recipient. */
static void or_enq_rkey_add(struct or_enq_jobs *s, const struct or_job *job, int i)
{
	char canon[OR_MAX_ADDR * 2 + 1];
	struct or_buf kb = { 0 };

	or_addr_canon(job->rcpt, canon, sizeof canon);
	or_buf_add(&kb, job->client, strlen(job->client) + 1);
	or_buf_add(&kb, job->campaign, strlen(job->campaign) + 1);
	or_buf_puts(&kb, canon);
	s->rk = or_xrealloc(s->rk, sizeof *s->rk * (size_t)(s->nk + 1));
	s->rk[s->nk++] = (struct or_enq_rkey){ kb.s, kb.len, i };
}

/* Row i merged with the template and checked: kept with its final text, a
 * problem, or (--validate, a bad "to") skipped. */
static void or_enq_check_job(const struct or_config *cfg, struct or_enq *e, struct or_enq_jobs *s, int i)
{
	struct or_job job;
	char field[128], producer[OR_MAX_ID + 8], err[300];
	char *merged = or_enq_merge(e, e->in[i].json);

	s->texts[i] = NULL;
	s->keep[i] = 0;
	if ((long)strlen(merged) > cfg->job_max_bytes) {
		or_problem(e, e->in[i].where, "", "job larger than job_max_bytes");
	} else if (or_job_parse(merged, strlen(merged), &job, field, sizeof field, err, sizeof err)) {
		if (e->validate && !strcmp(field, "to")) {
			char w[400];
			snprintf(w, sizeof w, "%s: invalid (syntax): skipped", e->in[i].where);
			fprintf(stderr, "%s\n", w);
			s->nskipped++;
		} else {
			or_problem(e, e->in[i].where, field, err);
		}
	} else {
		or_job_ids(&job, producer, sizeof producer, s->ids[i]);
		s->texts[i] = or_enq_final(merged, producer);
		s->keep[i] = s->texts[i] != NULL;
		if (s->keep[i] && !job.id && !e->allow_repeat)
			or_enq_rkey_add(s, &job, i);
		if (e->validate) {
			s->rcpts = or_xrealloc(s->rcpts, sizeof *s->rcpts * (size_t)(s->nr + 1));
			s->ridx = or_xrealloc(s->ridx, sizeof *s->ridx * (size_t)(s->nr + 1));
			s->rcpts[s->nr] = or_xstrdup(job.to);
			s->ridx[s->nr++] = i;
		}
		or_job_free(&job);
	}
	free(merged);
}

/* Every row checked, then repeated recipients skipped. */
static void or_enq_check(const struct or_config *cfg, struct or_enq *e, struct or_enq_jobs *s)
{
	s->ids = or_xrealloc(NULL, sizeof *s->ids * (size_t)(e->nin + 1));
	s->texts = or_xrealloc(NULL, sizeof *s->texts * (size_t)(e->nin + 1));
	s->keep = or_xrealloc(NULL, sizeof *s->keep * (size_t)(e->nin + 1));
	for (int i = 0; i < e->nin; i++)
		or_enq_check_job(cfg, e, s, i);
	s->nrepeat = or_enq_repeats(e, s->rk, s->nk, s->keep, s->ids);
	s->nskipped += s->nrepeat;
	for (int k = 0; k < s->nk; k++)
		free(s->rk[k].key);
	free(s->rk);
}

/* The list-hygiene gate: invalid addresses (and risky ones with --strict)
 * are listed and skipped, the rest enqueued. */
static void or_enq_hygiene(const struct or_config *cfg, const struct or_enq *e, struct or_enq_jobs *s)
{
	struct or_vopts vo = { e->mx, 0, 0, NULL, e->client, cfg->dns_server, cfg->dns_timeout_ms };
	struct or_vres *vr = or_xrealloc(NULL, sizeof *vr * (size_t)s->nr);
	char verr[8400];

	if (or_spool_open(cfg->spool, verr, sizeof verr) || or_db_open(cfg, 0, verr, sizeof verr))
		or_db_close();
	or_validate_all(cfg, &vo, s->rcpts, s->nr, vr);
	for (int k = 0; k < s->nr; k++) {
		const char *v = or_verdict_of(vr[k].reasons);
		if (s->keep[s->ridx[k]] && (!strcmp(v, "invalid") || (e->strict && !strcmp(v, "risky")))) {
			struct or_buf rs = { 0 };
			for (int r = 0; r < OR_NREASONS; r++)
				if (vr[k].reasons & (1u << r))
					or_buf_printf(&rs, "%s%s", rs.len ? "," : "", or_reason_names[r]);
			fprintf(stderr, "%s: %s (%s): skipped\n", e->in[s->ridx[k]].where, v, rs.s ? rs.s : "");
			or_buf_free(&rs);
			s->keep[s->ridx[k]] = 0;
			s->nskipped++;
		}
		free(s->rcpts[k]);
	}
	free(vr);
}

/* The kept jobs written to tmp/ and fsynced (0), or the exit code of the
 * first that could not be: root gives each file the spool owner's ids. */
static int or_enq_to_tmp(const struct or_config *cfg, const struct or_enq *e, const struct or_enq_jobs *s)
{
	/* root enqueueing into another user's spool: each file is given to the
	 * spool's owner and group, as if that user had written it (0640 root:root,
	 * its runs could not read it and would judge it bad); tmp/ has them */
	struct stat sst;
	int give = geteuid() == 0 && fstat(or_dirfd[OR_D_TMP], &sst) == 0 && sst.st_uid != 0;

	for (int i = 0; i < e->nin; i++) {
		char name[80];
		if (!s->keep[i])
			continue;
		snprintf(name, sizeof name, "%s.json.%ld", s->ids[i], (long)getpid());
		if (or_write_atomic(or_dirfd[OR_D_TMP], name, s->texts[i], strlen(s->texts[i]), OR_W_NODIRSYNC) == -1 ||
		    (give && fchownat(or_dirfd[OR_D_TMP], name, sst.st_uid, sst.st_gid, AT_SYMLINK_NOFOLLOW) == -1)) {
			fprintf(stderr, "outreach: %s/tmp/%s: %s\n", cfg->spool, name, strerror(errno));
			return OR_EX_IOERR;
		}
	}
	return OR_EX_OK;
}

/* The kept jobs into the spool: every one to tmp/ first (written and
 * fsynced), then all renamed into new/; a crash in between leaves tmp/
 * files, which a run removes by age.  Their ids on stdout when all went. */
static int or_enq_spool(const struct or_config *cfg, const struct or_enq *e, const struct or_enq_jobs *s)
{
	char err[300];
	int rc;

	if ((rc = or_spool_open(cfg->spool, err, sizeof err))) {
		fprintf(stderr, "outreach: %s\n", err);
		return rc;
	}
	rc = or_enq_to_tmp(cfg, e, s);
	for (int i = 0; i < e->nin; i++) {
		char name[80], to[64];
		if (!s->keep[i])
			continue;
		snprintf(name, sizeof name, "%s.json.%ld", s->ids[i], (long)getpid());
		snprintf(to, sizeof to, "%s.json", s->ids[i]);
		if (rc) {
			unlinkat(or_dirfd[OR_D_TMP], name, 0);
			continue;
		}
		if (or_rename_into(OR_D_TMP, name, OR_D_NEW, to, RENAME_NOREPLACE) == -1) {
			if (errno != EEXIST && errno != ENOENT) {
				fprintf(stderr, "outreach: %s/new/%s: %s\n", cfg->spool, to, strerror(errno));
				rc = OR_EX_IOERR;
			}
			unlinkat(or_dirfd[OR_D_TMP], name, 0);   /* the same job already waits in new/ */
		}
	}
	if (!rc && fsync(or_dirfd[OR_D_NEW]) == -1)
		rc = OR_EX_IOERR;
	if (!rc)
		for (int i = 0; i < e->nin; i++)
			if (s->keep[i])
				printf("%s\n", s->ids[i]);
	return rc;
}

static void or_enq_free(struct or_enq *e, struct or_enq_jobs *s)
{
	for (int i = 0; i < e->nin; i++) {
		free(e->in[i].json);
		if (s->texts)
			free(s->texts[i]);
	}
	free(e->in);
	free(s->texts);
	free(s->keep);
	free(s->ids);
	free(e->tmpl);
}

static int or_cmd_enqueue(const struct or_config *cfg, int argc, char **argv)
{
	struct or_enq e = { 0 };
	struct or_enq_jobs s = { 0 };
	int first = 0, rc;

	if (or_enq_opts(&e, argc, argv, &first))
		return OR_EX_USAGE;
	if (e.template_path && (rc = or_enq_template(cfg, &e)))
		return rc;
	if ((rc = or_enq_read_inputs(&e, argc, argv, first))) {
		e.nproblems++;
		goto out;
	}
	or_enq_check(cfg, &e, &s);
	if (e.validate && s.nr > 0 && !e.nproblems)
		or_enq_hygiene(cfg, &e, &s);
	free(s.rcpts);
	free(s.ridx);
	if (e.validate)
		fprintf(stderr, "outreach: %d job%s checked, %d skipped\n", e.nin, e.nin == 1 ? "" : "s", s.nskipped);
	else if (s.nrepeat)
		fprintf(stderr, "outreach: %d repeated recipient%s skipped\n", s.nrepeat, s.nrepeat == 1 ? "" : "s");
	if (e.nproblems) {
		fprintf(stderr, "outreach: %d problem%s; nothing enqueued\n", e.nproblems, e.nproblems == 1 ? "" : "s");
		rc = OR_EX_DATAERR;
		goto out;
	}
	if (e.dry_run) {
		for (int i = 0; i < e.nin; i++)
			if (s.keep[i])
				printf("%s\n", s.ids[i]);
		goto out;
	}
	rc = or_enq_spool(cfg, &e, &s);
out:
	or_enq_free(&e, &s);
	return rc;
}

/* ---- run, status, senders ---- */

static int or_cmd_run(const struct or_config *cfg, int argc, char **argv)
{
	int max = 0;
	double deadline = 0;

	for (int i = 0; i < argc; i++) {
		char *end, safe[100];
		if (!strcmp(argv[i], "--max") && i + 1 < argc) {
			long v = strtol(argv[++i], &end, 10);
			if (*end || end == argv[i] || v < 1 || v > INT_MAX) {
				fprintf(stderr, "outreach: run: '--max' takes a whole number of 1 or more, not '%s'\n",
				        or_safe(argv[i], safe, 80));
				return OR_EX_USAGE;
			}
			max = (int)v;
		} else if (!strcmp(argv[i], "--deadline") && i + 1 < argc) {
			deadline = strtod(argv[++i], &end);
			if (*end || end == argv[i] || !(deadline > 0) || !isfinite(deadline)) {
				fprintf(stderr, "outreach: run: '--deadline' takes a number of seconds above 0, not '%s'\n",
				        or_safe(argv[i], safe, 80));
				return OR_EX_USAGE;
			}
		} else {
			return or_bad_arg("run", argv[i]);
		}
	}
	return or_run_tick(cfg, max, deadline);
}

static int or_cmd_status(const struct or_config *cfg, int argc, char **argv)
{
	int json = argc == 1 && !strcmp(argv[0], "--json"), rc;
	struct or_snap sn;
	struct or_buf b = { 0 };

	if (argc > 1 || (argc == 1 && !json))
		return or_bad_arg("status", argv[strcmp(argv[0], "--json") ? 0 : 1]);
	if ((rc = or_open_state(cfg, 0)))
		return rc;
	or_snap_take(cfg, NULL, &sn);
	if (json)
		or_report_json(cfg, &sn, &b);
	else
		or_report_text(cfg, &sn, &b);
	fwrite(b.s, 1, b.len, stdout);
	or_buf_free(&b);
	return OR_EX_OK;
}

static int or_cmd_senders(const struct or_config *cfg)
{
	struct or_snap sn;
	int rc;

	if ((rc = or_open_state(cfg, 0)))
		return rc;
	or_snap_take(cfg, NULL, &sn);
	printf("%-20s %-24s %-10s %-8s %11s %6s %9s %7s %9s\n", "SENDER", "DOMAIN", "PROVIDER", "ENABLED",
	       "SENT/CAP", "WARMUP", "GAP_S", "BOUNCE", "COMPLAINT");
	for (int i = 0; i < sn.nsenders; i++) {
		const struct or_snap_sender *x = &sn.senders[i];
		char sc[32];
		snprintf(sc, sizeof sc, "%d/%d", x->sent_today, x->cap_today);
		printf("%-20s %-24s %-10s %-8s %11s %6d %9.2f %6.2f%% %8.3f%%\n", x->s->name, x->s->domain,
		       cfg->providers[x->s->provider].name, x->enabled ? "yes" : "NO", sc, x->warmup_day,
		       or_sender_gap(cfg, x->s), 100 * x->bounce_rate, 100 * x->complaint_rate);
		if (*x->s->configuration_set || *x->s->ip_pool || *x->s->mailgun_domain || x->account != x->s->provider)
			printf("    account %s%s%s%s%s%s%s\n", x->account >= 0 ? cfg->providers[x->account].name : "none usable",
			       *x->s->configuration_set ? ", configuration set " : "", x->s->configuration_set,
			       *x->s->ip_pool ? ", ip pool " : "", x->s->ip_pool,
			       *x->s->mailgun_domain ? ", mailgun domain " : "", x->s->mailgun_domain);
		if (!x->enabled)
			printf("    disabled: %s\n", x->reason);
	}
	return OR_EX_OK;
}

static int or_cmd_sender(const struct or_config *cfg, int argc, char **argv)
{
	const char *reason = "disabled by the operator";
	int enable, rc, idx;
	double now = or_now();

	static const char *const verbs[] = { "enable", "disable", NULL };

	if (argc >= 1 && (rc = or_bad_value("sender", "", argv[0], verbs)))
		return rc;
	if (argc < 2)
		return fputs(or_usage, stderr), OR_EX_USAGE;
	enable = !strcmp(argv[0], "enable");
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--reason") && i + 1 < argc && !or_has_ctl(argv[i + 1]))
			reason = argv[++i];
		else
			return or_bad_arg("sender", argv[i]);
	}
	if ((idx = or_sender_index(cfg, argv[1])) < 0) {
		fprintf(stderr, "outreach: no sender named '%s' in %s\n", argv[1], cfg->path);
		return OR_EX_DATAERR;
	}
	if ((rc = or_open_state(cfg, 0)))
		return rc;
#if OR_PG
	if (cfg->store_pg)
		or_pg_sender_set(cfg, idx, enable, reason, now);
	else
#endif
		or_store_sender_set(cfg, idx, enable, reason, now);
	return OR_EX_OK;
}

/* suppress export [FILE|-]: the list as CSV (address, client, reason,
 * source, time), on stdout or into FILE written whole (a temp file renamed:
 * a crash leaves the old FILE or the new one, never half of one). */
static void or_suppress_export_row(void *arg, const struct or_suppression *row)
{
	struct or_buf *r = arg;
	const char *cell[] = { row->address, row->client, row->reason, row->source, row->created };

	for (int i = 0; i < 5; i++) {   /* RFC 4180 quoting */
		or_buf_puts(r, i ? "," : "");
		or_csv_cell(r, cell[i]);
	}
	or_buf_puts(r, "\n");
}

/* A file the operator named (export, engagement --export) written whole:
 * a temp file renamed into place, so a crash leaves the old file or the new
 * one, never half of one.  An exit code, the error on one line naming cmd. */
static int or_write_user_file(const char *cmd, const char *file, const struct or_buf *b)
{
	char dir[4200];
	const char *slash = strrchr(file, '/'), *base = slash ? slash + 1 : file;
	int dfd, rc = OR_EX_OK;

	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - file) + (slash == file) : 1, slash ? file : ".");
	if (!*base || (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		int e = errno;   /* before fprintf, which may change it: EMFILE is 75, not 74 */
		fprintf(stderr, "outreach: %s: %s: %s\n", cmd, file, *base ? strerror(e) : "not a file name");
		return *base ? or_ex_io(e) : OR_EX_USAGE;
	}
	if (or_write_atomic(dfd, base, b->s ? b->s : "", b->len, 0) == -1) {
		int e = errno;
		fprintf(stderr, "outreach: %s: %s: %s\n", cmd, file, strerror(e));
		rc = or_ex_io(e);
	}
	close(dfd);
	return rc;
}

static int or_suppress_export(const struct or_config *cfg, const char *file, const char *client)
{
#if !OR_PG
	(void)cfg;   /* which store gives the rows */
#endif
	struct or_buf r = { 0 };
	int rows, rc = OR_EX_OK;

	or_buf_puts(&r, "address,client,reason,source,created_at\n");
#if OR_PG
	if (cfg->store_pg)
		rows = or_pg_suppress_rows(client, 1, or_suppress_export_row, &r);
	else
#endif
		rows = or_store_suppress_export(client, or_suppress_export_row, &r);
	if (!file || !strcmp(file, "-")) {
		if (fwrite(r.s, 1, r.len, stdout) != r.len || fflush(stdout) == EOF)
			rc = or_ex_io(errno);
	} else if ((rc = or_write_user_file("suppress export", file, &r)) == OR_EX_OK) {
		fprintf(stderr, "outreach: %d address%s exported to %s\n", rows, rows == 1 ? "" : "es", file);
	}
	or_buf_free(&r);
	return rc;
}

/* One import row, its four strings in one block (rows can be millions):
 * address is the block, freed alone. */
static void or_suppress_row(struct or_suppress_new *r, const char *addr, const char *client, const char *reason,
                            const char *source)
{
	size_t la = strlen(addr) + 1, lc = client ? strlen(client) + 1 : 0, lr = strlen(reason) + 1;
	char *b = or_xrealloc(NULL, la + lc + lr + strlen(source) + 1);

	r->address = memcpy(b, addr, la);
	r->client = client ? memcpy(b + la, client, lc) : NULL;
	r->reason = memcpy(b + la + lc, reason, lr);
	r->source = strcpy(b + la + lc + lr, source);
}

/* suppress import FILE|-: CSV with a header naming "address" (or "email")
 * and optionally client, reason, source; or one address per line.  All or
 * nothing, as enqueue: one bad line and nothing is added (the transaction
 * is rolled back), unless skip_invalid adds the good lines and names the
 * rest. */
static int or_suppress_import(const struct or_config *cfg, const char *file, const char *client, const char *reason,
                              int skip_invalid)
{
#if !OR_PG
	(void)cfg;   /* which store takes the rows */
#endif
	int added = 0, bad = 0, good = 0, nf, col = -1, ccol = -1, rcol = -1, scol = -1, line, more;
	double now = or_now();
	char *data, err[300], **f;
	size_t n;

	int rc = file ? or_read_all(file, 64L * 1024 * 1024, &data, &n, err, sizeof err) : OR_EX_DATAERR;
	if (rc) {
		fprintf(stderr, "outreach: suppress import: %s: %s\n", file ? file : "(no file)", file ? err : "give FILE or -");
		return rc;
	}
	struct or_csv c = { data, data + n, 1 };
	struct or_suppress_new *rows = NULL;
	int cap = 0;
	for (int first = 1; (line = c.line, more = or_csv_next(&c, &f, &nf, err, sizeof err)) == 1; first = 0) {
		if (first)
			for (int i = 0; i < nf; i++) {
				or_lower(f[i]);
				if (!strcmp(f[i], "address") || !strcmp(f[i], "email")) col = i;
				else if (!strcmp(f[i], "client")) ccol = i;
				else if (!strcmp(f[i], "reason")) rcol = i;
				else if (!strcmp(f[i], "source")) scol = i;
			}
		if (first && col >= 0) {   /* a header row */
			or_csv_free_fields(f, nf);
			continue;
		}
		char a[OR_MAX_ADDR + 1], nm[256];
		const char *v = nf > (col < 0 ? 0 : col) ? f[col < 0 ? 0 : col] : "";
		const char *cl = ccol >= 0 && ccol < nf ? f[ccol] : client;
		if (or_parse_address(v, a, sizeof a, nm, sizeof nm) || or_has_ctl(cl)) {
			fprintf(stderr, "%s:%d: %s%s\n", strcmp(file, "-") ? file : "stdin", line,
			        or_has_ctl(cl) ? "a control character in the client" : "not an address",
			        skip_invalid ? ": skipped" : "");
			bad++;
		} else {
			if (good == cap)
				rows = or_xrealloc(rows, sizeof *rows * (size_t)(cap = cap ? 2 * cap : 64));
			or_suppress_row(&rows[good++], a, cl, rcol >= 0 && rcol < nf && *f[rcol] ? f[rcol] : reason,
			                scol >= 0 && scol < nf && *f[scol] ? f[scol] : "import");
		}
		or_csv_free_fields(f, nf);
	}
	free(data);
	if (!(more < 0) && !(bad && !skip_invalid))   /* all the good lines in one transaction */
#if OR_PG
		added = cfg->store_pg ? or_pg_suppress_add(rows, good, now) : or_store_suppress_import(rows, good, now);
#else
		added = or_store_suppress_import(rows, good, now);
#endif
	for (int i = 0; i < good; i++)
		free(rows[i].address);   /* the row's one block */
	free(rows);
	if (more < 0) {   /* an unterminated quote: the rest of the file cannot be read, so nothing is */
		fprintf(stderr, "%s:%d: %s; nothing imported\n", strcmp(file, "-") ? file : "stdin", line, err);
		return OR_EX_DATAERR;
	}
	if (bad && !skip_invalid) {
		fprintf(stderr, "outreach: %d bad line%s; nothing imported (--skip-invalid adds the %d good one%s)\n",
		        bad, bad == 1 ? "" : "s", good, good == 1 ? "" : "s");
		return OR_EX_DATAERR;
	}
	printf("%d address%s added", added, added == 1 ? "" : "es");
	if (good > added)
		printf(", %d already suppressed", good - added);
	if (bad)
		printf(", %d bad line%s skipped", bad, bad == 1 ? "" : "s");
	printf("\n");
	return OR_EX_OK;
}

static void or_suppress_list_row(void *arg, const struct or_suppression *row)
{
	char t[40];

	(void)arg;
	or_fmt_rfc3339((time_t)row->created_at, t, sizeof t);
	printf("%s,%s,\"%s\",%s,%s\n", row->address, row->client, row->reason, row->source, t);
}

static int or_cmd_suppress(const struct or_config *cfg, int argc, char **argv)
{
	const char *client = "", *reason = "added by the operator", *addr = NULL;

	char a[OR_MAX_ADDR + 1], nm[256];
	int rc, skip_invalid = 0;
	static const char *const verbs[] = { "add", "remove", "list", "import", "export", NULL };

	if (argc < 1)
		return fputs(or_usage, stderr), OR_EX_USAGE;
	if ((rc = or_bad_value("suppress", "", argv[0], verbs)))
		return rc;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--client") && i + 1 < argc)
			client = argv[++i];
		else if (!strcmp(argv[i], "--reason") && i + 1 < argc)
			reason = argv[++i];
		else if (!strcmp(argv[i], "--skip-invalid") && !strcmp(argv[0], "import"))
			skip_invalid = 1;
		else if (!addr && (argv[i][0] != '-' || !strcmp(argv[i], "-")))
			addr = argv[i];
		else
			return or_bad_arg("suppress", argv[i]);
	}
	if (!strcmp(argv[0], "import") || !strcmp(argv[0], "export")) {
		if ((rc = or_open_state(cfg, 0)))
			return rc;
		return !strcmp(argv[0], "export") ? or_suppress_export(cfg, addr, client)
		                                  : or_suppress_import(cfg, addr, client, reason, skip_invalid);
	}
	if (strcmp(argv[0], "list") && (!addr || or_parse_address(addr, a, sizeof a, nm, sizeof nm))) {
		fprintf(stderr, "outreach: suppress %s needs a valid address\n", argv[0]);
		return OR_EX_DATAERR;
	}
	if (or_has_ctl(client) || or_has_ctl(reason))
		return fputs(or_usage, stderr), OR_EX_USAGE;
	if ((rc = or_open_state(cfg, 0)))
		return rc;
	if (!strcmp(argv[0], "list")) {
		printf("address,client,reason,source,created_at\n");
#if OR_PG
		if (cfg->store_pg)
			or_pg_suppress_rows(client, 0, or_suppress_list_row, NULL);
		else
#endif
			or_store_suppress_list(client, or_suppress_list_row, NULL);
		return OR_EX_OK;
	}
	char canon[OR_MAX_ADDR * 2 + 1];
	or_addr_canon(a, canon, sizeof canon);
#if OR_PG
	if (cfg->store_pg) {   /* the shared ledger's suppressions: every host's claims read them */
		struct or_suppress_new row = { a, (char *)client, (char *)reason, "operator" };
		if (!strcmp(argv[0], "add"))
			or_pg_suppress_add(&row, 1, or_now());
		else
			or_pg_suppress_remove(canon, client);
		return OR_EX_OK;
	}
#endif
	if (!strcmp(argv[0], "add"))
		or_store_suppress_add(canon, client, reason, or_now());
	else if (!strcmp(argv[0], "remove"))
		or_store_suppress_remove(canon, client);
	else
		return fputs(or_usage, stderr), OR_EX_USAGE;
	return OR_EX_OK;
}

/* requeue: held/failed -> defer/ (attempts start over for failed), bad ->
 * new/ (ingested again, so a fixed file gets its proper id).  The rename
 * comes first: a crash leaves the file in its new folder with the old state,
 * and running requeue again finishes the change. */
static int or_requeue_one(const struct or_config *cfg, const char *from, const char *id, double now)
{
	int src = !strcmp(from, "held") ? OR_D_HELD : !strcmp(from, "failed") ? OR_D_FAILED : OR_D_BAD;
	int dst = src == OR_D_BAD ? OR_D_NEW : OR_D_DEFER;
	char name[64], err[64];
	struct stat st;

#if OR_PG
	if (cfg->store_pg && src != OR_D_BAD) {   /* the ledger holds the job: no file to move */
		or_pg_requeue(id, src, now);
		return 0;
	}
#else
	(void)cfg;
#endif
	snprintf(name, sizeof name, "%s.json", id);
	if (or_move(src, name, dst, name) == -1 &&
	    !(errno == ENOENT && fstatat(or_dirfd[dst], name, &st, 0) == 0)) {
		fprintf(stderr, "outreach: requeue %s: %s/%s: %s\n", id, from, name, strerror(errno));
		return -1;
	}
	or_spool_sync();
#if OR_PG
	if (cfg->store_pg)
		or_pg_requeue(id, src, now);
	else
#endif
		or_store_requeue(id, src, now);
	snprintf(err, sizeof err, "%s.err", id);
	unlinkat(or_dirfd[src], err, 0);
	return 0;
}

/* The ids requeue was asked for (all of its state when none is named), as
 * or_store_requeue_candidates hands them over. */
struct or_requeue_pick { int argc; char **argv; char (*ids)[OR_ID_HEX + 1]; int n; };

static void or_requeue_pick(void *arg, const char *id)
{
	struct or_requeue_pick *p = arg;
	int want = p->argc == 1;

	for (int i = 1; i < p->argc && !want; i++)
		want = !strcmp(p->argv[i], id);
	if (!want)
		return;
	p->ids = or_xrealloc(p->ids, sizeof *p->ids * (size_t)(p->n + 1));
	snprintf(p->ids[p->n++], OR_ID_HEX + 1, "%s", id);
}

static int or_cmd_requeue(const struct or_config *cfg, int argc, char **argv)
{
	int rc, bad = 0;
	double now = or_now();
	struct or_requeue_pick pick = { argc, argv, NULL, 0 };

	static const char *const from[] = { "held", "failed", "bad", NULL };

	if (argc < 1)
		return fputs(or_usage, stderr), OR_EX_USAGE;
	if (or_bad_value("requeue", "", argv[0], from))
		return OR_EX_USAGE;
	if ((rc = or_open_state(cfg, 0)))
		return rc;
#if OR_PG
	if (cfg->store_pg)
		or_pg_requeue_candidates(cfg, argv[0], or_requeue_pick, &pick);
	else
#endif
		or_store_requeue_candidates(argv[0], or_requeue_pick, &pick);
	for (int i = 1; i < argc; i++) {
		int found = 0;
		for (int k = 0; k < pick.n && !found; k++)
			found = !strcmp(pick.ids[k], argv[i]);
		if (!found) {
			char s[80];
			fprintf(stderr, "outreach: requeue: no %s job '%s'\n", argv[0], or_safe(argv[i], s, sizeof s));
			bad = 1;
		}
	}
	for (int k = 0; k < pick.n; k++)
		if (or_requeue_one(cfg, argv[0], pick.ids[k], now))
			bad = 1;
	if (!strcmp(argv[0], "held") && !cfg->store_pg)   /* the alert's count follows at once, not at the next run */
		or_store_held_alert(now);
	free(pick.ids);
	return bad ? OR_EX_DATAERR : OR_EX_OK;
}

/* ---- validate ---- */

/* validate's options into *o and *path (0), or the exit code of a bad one. */
static int or_validate_opts(int argc, char **argv, struct or_vopts *o, const char **path)
{
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--mx")) o->mx = 1;
		else if (!strcmp(argv[i], "--json")) o->json = 1;
		else if (!strcmp(argv[i], "--csv")) o->csv = 1;
		else if (!strcmp(argv[i], "--column") && i + 1 < argc) o->column = argv[++i];
		else if (!strcmp(argv[i], "--client") && i + 1 < argc) o->client = argv[++i];
		else if (!strcmp(argv[i], "--dns-server") && i + 1 < argc) o->dns_server = argv[++i];
		else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc && atoi(argv[i + 1]) > 0) o->timeout_ms = atoi(argv[++i]);
		else if (!*path && (argv[i][0] != '-' || !strcmp(argv[i], "-"))) *path = argv[i];
		else return or_bad_arg("validate", argv[i]);
	}
	if (!*path || (o->json && o->csv))
		return fputs(or_usage, stderr), OR_EX_USAGE;
	struct sockaddr_storage ss;
	socklen_t sl;
	if (o->dns_server && *o->dns_server && or_dns_server(o->dns_server, &ss, &sl)) {
		fprintf(stderr, "outreach: --dns-server '%s' is not IP[:PORT]\n", o->dns_server);
		return OR_EX_USAGE;
	}
	return OR_EX_OK;
}

/* The input file read (UTF-8 text only) into its lines and addresses. */
static int or_validate_load(const char *path, const char *column, char ***lines, char ***addrs, int *count)
{
	char *data, err[8400];
	size_t n;

	err[0] = 0;
	int rc = or_read_all(path, 256L * 1024 * 1024, &data, &n, err, sizeof err);
	if (rc) {
		fprintf(stderr, "outreach: %s: %s\n", path, err);
		return rc;
	}
	if (!or_utf8_valid(data, n)) {
		fprintf(stderr, "outreach: %s: not UTF-8 text\n", path);
		free(data);
		return OR_EX_DATAERR;
	}
	if (or_validate_inputs(data, n, path, column, lines, addrs, count, err, sizeof err)) {
		fprintf(stderr, "outreach: %s\n", err);
		free(data);
		return OR_EX_DATAERR;
	}
	free(data);
	return OR_EX_OK;
}

/* One address's row in the CSV or the table (JSON has its own, or_vres_json). */
static void or_validate_row(struct or_buf *out, const struct or_vopts *o, const struct or_vres *r, const char *v,
                            const char *addr)
{
	struct or_buf rs = { 0 };

	for (int k = 0; k < OR_NREASONS; k++)
		if (r->reasons & (1u << k))
			or_buf_printf(&rs, "%s%s", rs.len ? ";" : "", or_reason_names[k]);
	if (o->csv) {
		or_csv_cell(out, r->input);
		or_buf_puts(out, ",");
		or_csv_cell(out, r->address);
		or_buf_printf(out, ",%s,%s,", v, rs.s ? rs.s : "");
		or_csv_cell(out, r->suggestion);
		or_buf_puts(out, "\n");
	} else {
		char safe[200];   /* the address, not the whole row: a CSV line's other columns are not ours to print */
		or_buf_printf(out, "%-40s %-8s %s%s%s\n", or_safe(*r->address ? r->address : addr, safe, 60),
		              v, rs.s ? rs.s : "", *r->suggestion ? " -> " : "", r->suggestion);
	}
	or_buf_free(&rs);
}

/* The summary: on stdout for people, stderr for the machine formats. */
static void or_validate_summary(const struct or_vopts *o, int count, const int *byv, const int *byr)
{
	FILE *f = o->json || o->csv ? stderr : stdout;

	fprintf(f, "%s%d addresses: %d ok, %d risky, %d invalid, %d unknown", o->json || o->csv ? "outreach: " : "\n",
	        count, byv[0], byv[1], byv[2], byv[3]);
	for (int k = 0; k < OR_NREASONS; k++)
		if (byr[k])
			fprintf(f, "%s%s %d", k ? "; " : "; ", or_reason_names[k], byr[k]);
	fputc('\n', f);
}

static int or_cmd_validate(const struct or_config *cfg, int argc, char **argv)
{
	struct or_vopts o = { 0, 0, 0, NULL, NULL, NULL, 2000 };
	const char *path = NULL;
	char err[8400], **lines = NULL, **addrs = NULL;
	int rc, count = 0, byv[4] = { 0 }, byr[OR_NREASONS] = { 0 };
	struct or_vres *res;
	struct or_buf out = { 0 };

	o.dns_server = cfg->dns_server;
	o.timeout_ms = cfg->dns_timeout_ms;
	if ((rc = or_validate_opts(argc, argv, &o, &path)) || (rc = or_validate_load(path, o.column, &lines, &addrs, &count)))
		return rc;
	/* the ledger gives the suppression list and the DNS cache; without one, neither */
	if (or_spool_open(cfg->spool, err, sizeof err) || or_db_open(cfg, 0, err, sizeof err))
		or_db_close();
	res = or_xrealloc(NULL, sizeof *res * (size_t)(count ? count : 1));
	or_validate_all(cfg, &o, addrs, count, res);
	if (o.csv)
		or_buf_puts(&out, "input,address,verdict,reasons,suggestion\n");
	else if (!o.json)
		or_buf_printf(&out, "%-40s %-8s %s\n", "ADDRESS", "VERDICT", "REASONS");
	for (int i = 0; i < count; i++) {
		const char *v = or_verdict_of(res[i].reasons);
		res[i].input = lines[i];
		byv[!strcmp(v, "ok") ? 0 : !strcmp(v, "risky") ? 1 : !strcmp(v, "invalid") ? 2 : 3]++;
		for (int k = 0; k < OR_NREASONS; k++)
			byr[k] += (res[i].reasons >> k) & 1;
		if (o.json)
			or_vres_json(&out, &res[i]);
		else
			or_validate_row(&out, &o, &res[i], v, addrs[i]);
	}
	if (out.len)
		fwrite(out.s, 1, out.len, stdout);
	or_buf_free(&out);
	or_validate_summary(&o, count, byv, byr);
	for (int i = 0; i < count; i++) {
		free(lines[i]);
		free(addrs[i]);
	}
	free(lines);
	free(addrs);
	free(res);
	return OR_EX_OK;
}

/* ---- domains ---- */

static int or_cmd_domains(const struct or_config *cfg, int argc, char **argv)
{
	struct or_domain_report rep[OR_MAX_SENDERS];
	const char *server = cfg->dns_server;
	int json = 0, nd, timeout = cfg->dns_timeout_ms, unknown = 0;
	char err[300];

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) json = 1;
		else if (!strcmp(argv[i], "--dns-server") && i + 1 < argc) server = argv[++i];
		else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc && atoi(argv[i + 1]) > 0) timeout = atoi(argv[++i]);
		else return or_bad_arg("domains", argv[i]);
	}
	memset(rep, 0, sizeof rep);
	if ((nd = or_domains_check(cfg, server, timeout, rep, err, sizeof err)) < 0) {
		fprintf(stderr, "outreach: domains: %s\n", err);
		return OR_EX_TEMPFAIL;
	}
	for (int d = 0; d < nd; d++) {
		unknown |= rep[d].unknown;
		if (json) {
			struct or_buf b = { 0 };
			or_domain_json(&b, &rep[d]);
			puts(b.s);
			or_buf_free(&b);
			continue;
		}
		printf("%s%s: %s\n", d ? "\n" : "", rep[d].domain, rep[d].unknown ? "UNKNOWN (the DNS did not answer in time)" :
		       rep[d].ok ? "ok" : rep[d].required_ok ? "attention" : "FAILING a required check (its senders are kept out)");
		for (int k = 0; k < rep[d].nchecks; k++)
			printf("  %-9s %-7s%s %s\n", rep[d].checks[k].name, rep[d].checks[k].ok ? "ok" :
			       rep[d].checks[k].unknown ? "unknown" : "FIX", rep[d].checks[k].required ? " (required)" : "",
			       rep[d].checks[k].detail);
	}
	if (unknown)   /* no verdict is not a pass: cron or a script must not read "all set" */
		fprintf(stderr, "outreach: domains: the DNS did not answer every query: run again later\n");
	return unknown ? OR_EX_TEMPFAIL : OR_EX_OK;
}

/* ---- feedback commands: pull, unsubscribe, cgi ---- */

/* The lead states, as `leads --state` takes them. */
static const char *const or_lead_states[] = { "active", "paused", "replied", "bounced", "complained", "unsubscribed",
                                              "stopped", "finished", NULL };

static void or_leads_json_row(void *arg, const struct or_leads_line *r)
{
	(void)arg;
	puts(r->json);
}

static void or_leads_table_row(void *arg, const struct or_leads_line *r)
{
	char at[32], safe[5][200];

	(void)arg;
	or_fmt_rfc3339((time_t)r->at, at, sizeof at);
	printf("%-16.16s %-12s %-12s %-14s %-30s %2d/%-2d %-20s %s\n", r->seq, r->state, or_safe(r->client, safe[0], 60),
	       or_safe(r->campaign, safe[1], 60), or_safe(r->to, safe[2], 120), r->sent, r->steps, at,
	       or_safe(r->reason, safe[3], 190));
}

/* outreach leads [--state S] [--client C] [--campaign K] [--to ADDRESS] [--limit N] [--json] */
static int or_cmd_leads(const struct or_config *cfg, int argc, char **argv)
{
	struct or_leads_filter f = { NULL, NULL, NULL, NULL, 1000 };
	char addr[OR_MAX_ADDR + 1] = "", nm[256];
	int json = 0, rc;

	for (int i = 0; i < argc; i++) {
		const char **v = !strcmp(argv[i], "--state") ? &f.state : !strcmp(argv[i], "--client") ? &f.client :
		                 !strcmp(argv[i], "--campaign") ? &f.campaign : !strcmp(argv[i], "--to") ? &f.to : NULL;
		if (v && i + 1 < argc)
			*v = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
			char *end;
			if ((f.limit = strtoll(argv[++i], &end, 10)) < 1 || *end) {
				fprintf(stderr, "outreach: leads: --limit takes a positive number\n");
				return OR_EX_USAGE;
			}
		} else
			return or_bad_arg("leads", argv[i]);
	}
	if (f.state && (rc = or_bad_value("leads", "--state ", f.state, or_lead_states)))
		return rc;
	if (f.to && or_parse_address(f.to, addr, sizeof addr, nm, sizeof nm)) {
		char safe[200];
		fprintf(stderr, "outreach: leads: '%s' is not an address\n", or_safe(f.to, safe, sizeof safe));
		return OR_EX_DATAERR;
	}
	f.to = addr;
	if ((rc = or_open_state(cfg, 0)))
		return rc;
	if (!json)
		printf("%-16s %-12s %-12s %-14s %-30s %5s %-20s %s\n", "LEAD", "STATE", "CLIENT", "CAMPAIGN", "TO", "SENT",
		       "CHANGED", "REASON");
	or_store_leads(&f, json ? or_leads_json_row : or_leads_table_row, NULL);
	return OR_EX_OK;
}

/* lead show's text: the lead's fields, its steps, the messages read. */
static void or_lead_print(const char *json)
{
	const char *args[] = { json };
	char *text = or_json_sql(
		"SELECT group_concat(line, char(10)) FROM ("
		" SELECT printf('%-12s %s', key || ':', CASE WHEN type = 'null' THEN '-' ELSE value END) AS line"
		" FROM json_each(?1) WHERE key NOT IN ('steps', 'replies')"
		" UNION ALL SELECT 'steps:'"
		" UNION ALL SELECT printf('  %d  %-9s %-5s %-20s %-20s %s', json_extract(value, '$.step'),"
		"   json_extract(value, '$.state'), coalesce(json_extract(value, '$.after'), '-'),"
		"   coalesce(json_extract(value, '$.sent_at'), '-'), coalesce(json_extract(value, '$.due'), '-'),"
		"   coalesce(json_extract(value, '$.last_error'), '')) FROM json_each(?1, '$.steps')"
		" UNION ALL SELECT 'replies:'"
		" UNION ALL SELECT printf('  %s  %-6s %-30s step %s, %s by %s: %s', json_extract(value, '$.at'),"
		"   json_extract(value, '$.class'), coalesce(json_extract(value, '$.from'), '-'),"
		"   coalesce(json_extract(value, '$.step'), '-'), coalesce(json_extract(value, '$.rule'), '-'),"
		"   coalesce(json_extract(value, '$.method'), '-'), coalesce(json_extract(value, '$.effect'), ''))"
		" FROM json_each(?1, '$.replies'))", args, 1);

	if (!text)
		return;
	for (char *p = text; *p; p++)   /* keep the lines, mask other control bytes */
		if ((unsigned char)*p < 0x20 && *p != '\n')
			*p = '?';
	puts(text);
	free(text);
}

/* One action on one lead; 1 when it changed it. */
static int or_lead_act(const struct or_config *cfg, const char *verb, const char *seq, double until, const char *why,
                       int json)
{
	double now = or_now();
	char *show;

	if (!strcmp(verb, "pause"))
		return or_store_lead_pause(seq, until, why, now);
	if (!strcmp(verb, "resume"))
		return or_store_lead_resume(cfg, seq, now);
	if (!strcmp(verb, "stop"))
		return or_store_lead_stop(seq, why, now);
	if ((show = or_store_lead_show(seq))) {
		if (json)
			puts(show);
		else
			or_lead_print(show);
		free(show);
	}
	return 1;
}

/* outreach lead show|pause|resume|stop ADDRESS [--client C] [--until YYYY-MM-DD] [--reason TEXT] [--json]:
 * every lead of the address (of the client), one at a time. */
static int or_cmd_lead(const struct or_config *cfg, int argc, char **argv)
{
	static const char *const verbs[] = { "show", "pause", "resume", "stop", NULL };
	const char *client = NULL, *reason = NULL, *until_s = NULL;
	char addr[OR_MAX_ADDR + 1], nm[256], why[600], (*ids)[OR_ID_HEX + 1];
	double until = 0;
	int json = 0, rc, n, changed = 0;

	if (argc < 2)
		return fputs(or_usage, stderr), OR_EX_USAGE;
	if ((rc = or_bad_value("lead", "", argv[0], verbs)))
		return rc;
	for (int i = 2; i < argc; i++) {
		const char **v = !strcmp(argv[i], "--client") ? &client : !strcmp(argv[i], "--reason") ? &reason :
		                 !strcmp(argv[i], "--until") ? &until_s : NULL;
		if (v && i + 1 < argc)
			*v = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else
			return or_bad_arg("lead", argv[i]);
	}
	if (or_parse_address(argv[1], addr, sizeof addr, nm, sizeof nm)) {
		char safe[200];
		fprintf(stderr, "outreach: lead: '%s' is not an address\n", or_safe(argv[1], safe, sizeof safe));
		return OR_EX_DATAERR;
	}
	if (until_s && (strcmp(argv[0], "pause") || or_day_of_iso(until_s) < 0)) {
		fprintf(stderr, "outreach: lead: --until takes a date (YYYY-MM-DD) and only with pause\n");
		return OR_EX_USAGE;
	}
	if (until_s)
		until = (double)or_day_start(or_day_of_iso(until_s), cfg->timezone);
	snprintf(why, sizeof why, "operator: %.500s", reason ? reason : argv[0]);
	if ((rc = or_open_state(cfg, 0)))
		return rc;
	if (!(n = or_store_lead_seqs(addr, client, &ids))) {
		char safe[200];
		fprintf(stderr, "outreach: lead: no lead for %s%s%s\n", addr, client ? " of client " : "",
		        client ? or_safe(client, safe, sizeof safe) : "");
		free(ids);
		return OR_EX_DATAERR;
	}
	for (int i = 0; i < n; i++)
		changed += or_lead_act(cfg, argv[0], ids[i], until, why, json);
	free(ids);
	if (!strcmp(argv[0], "stop"))
		or_cancel_finish();   /* a first step not yet sent: its file to failed/, as cancel does */
	if (strcmp(argv[0], "show"))
		printf("%s: %d of %d lead%s of %s changed\n", argv[0], changed, n, n == 1 ? "" : "s", addr);
	return OR_EX_OK;
}

/* outreach pull [--mailbox NAME [--since YYYY-MM-DD]]: every provider feed
 * and every mailbox now (or one mailbox), inbound/ taken in, then domain
 * health judged.  --since reads the mailbox's mail since that day again
 * (UID SEARCH SINCE): a backfill after a first read, which starts from now. */
static int or_cmd_pull(const struct or_config *cfg, int argc, char **argv)
{
	const char *name = NULL, *since = NULL;
	int rc, mb = -1, day = 0, bad = 0;

	for (int i = 0; i < argc; i++) {
		const char **v = !strcmp(argv[i], "--mailbox") ? &name : !strcmp(argv[i], "--since") ? &since : NULL;
		if (v && i + 1 < argc)
			*v = argv[++i];
		else
			return or_bad_arg("pull", argv[i]);
	}
	if (name && (mb = or_mailbox_index(cfg, name)) < 0) {
		char safe[200];
		fprintf(stderr, "outreach: pull: no mailbox named '%s'\n", or_safe(name, safe, sizeof safe));
		return OR_EX_USAGE;
	}
	if (since && (!name || (day = or_day_of_iso(since)) < 0)) {
		fprintf(stderr, "outreach: pull: --since takes a date (YYYY-MM-DD) and needs --mailbox\n");
		return OR_EX_USAGE;
	}
	/* older than the ledger's memory of what it read (replies retire with
	 * retention_days), a backfill could apply old mail a second time */
	if (since && day < or_day_number((time_t)(or_now() - cfg->retention_days * 86400.0), cfg->timezone)) {
		fprintf(stderr, "outreach: pull: --since %s is older than retention_days (%d): the ledger no longer knows "
		        "what it read then\n", since, cfg->retention_days);
		return OR_EX_USAGE;
	}
	if ((rc = or_open_state(cfg, 0)))
		return rc;
	if (mb < 0) {
		struct or_feed_status *f;
		int n;
		or_feeds_pull(cfg, 1, 120);
#if OR_PG
		if (cfg->store_pg) {   /* no mailboxes on it (check-config refuses them), so no replies */
			or_pg_health_judge(cfg, or_now());
			n = or_pg_feeds_status(&f);
		} else
#endif
		{
			bad = or_replies_pull(cfg, 1, 120) > 0;
			or_inbound_take(cfg, or_now());
			or_spool_sync();
			or_health_judge(cfg, or_now());
			n = or_store_feeds_status(&f);
		}
		for (int i = 0; i < n; i++)
			printf("feed %s: %s\n", f[i].account, f[i].status);
		or_feed_status_free(f, n);
	} else {
		int left = cfg->reply_max_messages * (day > 0 ? 20 : 1);
		bad = or_mailbox_pull(cfg, &cfg->mailboxes[mb], day, or_now() + 600, &left) < 0;
	}
	for (int i = 0; i < cfg->nmailboxes; i++)
		if (mb < 0 || i == mb) {
			double fresh = or_store_mailbox_fresh(&cfg->mailboxes[i]);
			char when[32] = "never";
			if (fresh > 0)
				or_fmt_rfc3339((time_t)fresh, when, sizeof when);
			printf("mailbox %s: last read in full %s\n", cfg->mailboxes[i].name, when);
		}
	return bad ? OR_EX_TEMPFAIL : OR_EX_OK;
}

static int or_cmd_unsubscribe(const struct or_config *cfg, int argc, char **argv)
{
	char err[4400], addr[OR_MAX_ADDR + 1], client[OR_MAX_LABEL + 1], campaign[OR_MAX_LABEL + 1], key[80];
	int rc;

	if (argc != 1)
		return fputs(or_usage, stderr), OR_EX_USAGE;
	if (or_key_load(cfg->spool, err, sizeof err)) {
		fprintf(stderr, "outreach: %s\n", err);
		return or_ex_io(errno);
	}
	if (or_unsub_verify(argv[0], addr, sizeof addr, client, sizeof client, campaign, sizeof campaign)) {
		fprintf(stderr, "outreach: unsubscribe: the token is not valid\n");
		return OR_EX_DATAERR;
	}
	if ((rc = or_open_state(cfg, 0)))
		return rc;
#if OR_PG
	if (cfg->store_pg)   /* a shared suppression: every host's next claim sees it */
		or_pg_unsubscribe(cfg, addr, client, or_now());
	else
#endif
	{
		struct or_settle settle = { 0 };
		double now = or_now();
		or_sha256_hex(argv[0], strlen(argv[0]), key + 6, 32);
		memcpy(key, "unsub:", 6);
		struct or_event ev = { "unsubscribed", "command", key, addr, NULL, NULL, NULL, campaign, now, client, campaign };
		or_store_unsubscribe(cfg, &ev, 1, &settle, now);   /* ev.rcpt is addr, ev.client client */
		or_settle_held(cfg, &settle, now);
	}
	printf("unsubscribed %s%s%s\n", addr, cfg->unsub_global ? "" : " from client ", cfg->unsub_global ? "" : client);
	return OR_EX_OK;
}

static void or_html_page(const char *status, const char *title, const char *body)
{
	struct or_buf b = { 0 };

	or_buf_puts(&b, "<!doctype html><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">"
	                "<title>");
	or_html_escape(&b, title);
	or_buf_puts(&b, "</title><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\"><h1>");
	or_html_escape(&b, title);
	or_buf_printf(&b, "</h1>%s</body>\n", body);
	printf("Status: %s\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
	       "Content-Length: %zu\r\n\r\n%s", status, b.len, b.s);
	or_buf_free(&b);
}

/* The token from a query string "t=TOKEN" (tokens are base64url and '.'). */
static int or_cgi_token(const char *qs, char *out, size_t n)
{
	const char *t = qs;

	while (t && *t) {
		if (!strncmp(t, "t=", 2)) {
			size_t k = strspn(t + 2, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");
			if (k == 0 || k >= n)
				return -1;
			snprintf(out, n, "%.*s", (int)k, t + 2);
			return 0;
		}
		t = strchr(t, '&');
		t = t ? t + 1 : NULL;
	}
	return -1;
}

#if OR_PG
/* The CGI on the PostgreSQL store, once the request file is written and the
 * page sent: the suppression straight into the shared ledger, so an opt-out
 * does not wait for this host's next run (nor for the host, if it dies
 * first), then the file removed.  A database it cannot reach leaves the
 * file for the next run: the page is already out either way.  A crash
 * between the insert and the unlink leaves the file: applied again, which
 * changes nothing. */
static void or_cgi_pg(const struct or_config *cfg, const char *addr, const char *client, const char *file)
{
	char err[2000], dir[4200];
	int dfd;

	fflush(stdout);   /* the page is the answer, whatever the database does */
	if (or_pg_connect(cfg, err, sizeof err)) {
		or_log(1, "event=cgi store=postgresql error=\"%s\": the request waits in unsub/ for the next run", err);
		return;
	}
	or_pg_unsubscribe(cfg, addr, client, or_now());
	snprintf(dir, sizeof dir, "%s/unsub", cfg->spool);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 || (unlinkat(dfd, file, 0) == -1 && errno != ENOENT))
		or_log(0, "event=cgi file=unsub/%s error=\"%s\"", file, strerror(errno));
	if (dfd >= 0)
		close(dfd);
}
#endif

/* outreach cgi: the one-click endpoint for any web server (CGI/1.1).  GET
 * shows a confirmation page with a button; POST (RFC 8058's one-click, or
 * the button) verifies the token and drops a request file into unsub/ for
 * the next run.  It needs only the key and unsub/, never the database
 * (on the PostgreSQL store it also writes the suppression itself, or_cgi_pg,
 * when it can reach the database). */
static int or_cmd_cgi(const struct or_config *cfg)
{
	const char *method = getenv("REQUEST_METHOD"), *qs = getenv("QUERY_STRING");
	char token[1600], err[4400], addr[OR_MAX_ADDR + 1], client[OR_MAX_LABEL + 1], campaign[OR_MAX_LABEL + 1];

	if (!method) {
		fprintf(stderr, "outreach: cgi: run me from a web server (REQUEST_METHOD is not set)\n");
		return OR_EX_USAGE;
	}
	if (or_key_load(cfg->spool, err, sizeof err)) {
		or_log(0, "event=cgi error=\"%s\"", err);
		or_html_page("500 Internal Server Error", "Unsubscribe", "<p>This link cannot be handled right now. Please try again later.</p>");
		return OR_EX_OK;
	}
	if (or_cgi_token(qs, token, sizeof token) ||
	    or_unsub_verify(token, addr, sizeof addr, client, sizeof client, campaign, sizeof campaign)) {
		or_html_page("400 Bad Request", "Unsubscribe", "<p>This unsubscribe link is not valid.</p>");
		return OR_EX_OK;
	}
	if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) {
		struct or_buf b = { 0 };
		or_buf_puts(&b, "<p>Stop emails to <b>");
		or_html_escape(&b, addr);
		or_buf_puts(&b, "</b>?</p><form method=\"post\" action=\"?t=");
		or_html_escape(&b, token);
		or_buf_puts(&b, "\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
		                "<button type=\"submit\">Unsubscribe</button></form>");
		or_html_page("200 OK", "Unsubscribe", b.s);
		or_buf_free(&b);
		return OR_EX_OK;
	}
	if (strcmp(method, "POST")) {
		or_html_page("405 Method Not Allowed", "Unsubscribe", "<p>Use the link in the email.</p>");
		return OR_EX_OK;
	}
	{
		char dir[4200], name[80], hex[33];
		int dfd;
		snprintf(dir, sizeof dir, "%s/unsub", cfg->spool);
		or_sha256_hex(token, strlen(token), hex, 32);
		snprintf(name, sizeof name, "%s.req", hex);
		if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
		    or_write_atomic(dfd, name, token, strlen(token), 0) == -1) {
			or_log(0, "event=cgi error=\"%s: %s\"", dir, strerror(errno));
			if (dfd >= 0)
				close(dfd);
			or_html_page("500 Internal Server Error", "Unsubscribe", "<p>This link cannot be handled right now. Please try again later.</p>");
			return OR_EX_OK;
		}
		close(dfd);
		or_html_page("200 OK", "Unsubscribed", "<p>You will not receive these emails any more.</p>");
#if OR_PG
		if (cfg->store_pg)
			or_cgi_pg(cfg, addr, client, name);
#endif
	}
	return OR_EX_OK;
}

/* ---- plan: when will each campaign be done? ----
 *
 * A day-by-day simulation from the ledger, documented in README so that it
 * can be checked by hand: day 0 is today (config timezone) from now, with
 * what senders and clients have left today; later days start at local
 * midnight with the warm-up cap of that day.  Each day, clients take turns
 * one job at a time (as claims do), each client's jobs earliest due first;
 * a job goes to the eligible sender (enabled, not paused, serving the client,
 * matching its pin, with capacity left) that is free earliest, at
 * max(that sender's next free time, not_before, the window's opening that
 * day), if that is before the day (or the window) ends; the sender is then
 * busy for its gap.  Client caps apply per day.  Paused scopes are listed,
 * not forecast.  Which sender may take a job on a day is the claim's own
 * rule (or_sender_may_take), so the forecast and the claim never disagree;
 * the forecast takes every account as up and knows no sticky sender. */

/* The earliest moment in [from, to) on local day `day` a job's window
 * allows, or -1. */
static double or_plan_window(const struct or_pjob *j, int day, double from, double to, const char *deftz)
{
	struct or_window w = { 1, j->wdays, j->wstart, j->wend, "" };
	time_t t;

	if (!j->wdays)
		return from;
	snprintf(w.tz, sizeof w.tz, "%s", j->wtz);
	t = or_window_next(&w, (time_t)ceil(from), deftz);
	(void)day;
	return (double)t < to ? (double)t : -1;
}

/* What each sender may send per day of the horizon: 0 while it is not
 * enabled, else its cap that day (warm-up included), today less what it
 * has sent. */
static void or_plan_capacity(const struct or_config *cfg, struct or_plan *p, int today)
{
	for (int i = 0; i < cfg->nsenders; i++)
		for (int d = 0; d < OR_PLAN_HORIZON; d++) {
			p->cap[i][d] = p->ss[i].enabled ? or_sender_cap(&cfg->senders[i], &p->ss[i], today + d) : 0;
			if (d == 0 && p->cap[i][d] > 0) {
				p->cap[i][d] -= p->sent_today[i];
				if (p->cap[i][d] < 0)
					p->cap[i][d] = 0;
			}
		}
}

struct or_plan_day {   /* one simulated day: what senders and clients have left */
	int day;           /* the local day number */
	double start, end;
	double free_at[OR_MAX_SENDERS];
	int rem[OR_MAX_SENDERS];
	int *crem;         /* per client */
};

/* Job j placed on the simulated day: with the sender or_sender_may_take
 * allows (the claim's rule) that is free earliest, at max(its free time,
 * the job's due time, its window's opening), if before the day ends.
 * 1 when placed. */
static int or_plan_place(const struct or_config *cfg, const struct or_plan *p, struct or_plan_day *pd,
                         struct or_pjob *j)
{
	int best = -1;
	double bt = 0;

	for (int i = 0; i < cfg->nsenders; i++) {
		const struct or_sender *sd = &cfg->senders[i];
		struct or_sender_day sday = { p->ss[i].enabled, 1, pd->rem[i], pd->crem[j->client] };
		double t = pd->free_at[i];
		if (or_sender_may_take(sd, p->cl[j->client], j->pin, NULL, &sday) != OR_TAKE_YES)
			continue;
		if (j->due > t)
			t = j->due;
		if (t >= pd->end || (t = or_plan_window(j, pd->day, t, pd->end, cfg->timezone)) < 0)
			continue;
		if (best < 0 || t < bt) {
			best = i;
			bt = t;
		}
	}
	if (best < 0)
		return 0;
	j->at = bt;
	j->sender = best;
	pd->free_at[best] = bt + or_sender_gap(cfg, &cfg->senders[best]);
	pd->rem[best]--;
	pd->crem[j->client]--;
	return 1;
}

/* Day d of the simulation (0: today from now): clients take turns one job
 * at a time, each its earliest due first, until none can place one or no
 * job is left.  Returns how many are left after it. */
static int or_plan_day(const struct or_config *cfg, struct or_plan *p, int d, double now, int today, int left)
{
	struct or_plan_day pd = { today + d, d == 0 ? now : (double)or_day_start(today + d, cfg->timezone),
	                          (double)or_day_start(today + d + 1, cfg->timezone), { 0 }, { 0 }, NULL };
	int n = p->ncl ? p->ncl : 1, active = p->ncl;
	int *next = or_xrealloc(NULL, sizeof *next * (size_t)n), *done = or_xrealloc(NULL, sizeof *done * (size_t)n);

	/* what each client found in the ledger may still send today: one
	 * counter per client, however many clients there are */
	pd.crem = or_xrealloc(NULL, sizeof *pd.crem * (size_t)n);
	for (int i = 0; i < cfg->nsenders; i++) {
		double last = d == 0 ? p->last_slot[i] + or_sender_gap(cfg, &cfg->senders[i]) : 0;
		pd.free_at[i] = last > pd.start ? last : pd.start;
		pd.rem[i] = p->cap[i][d];
	}
	for (int c = 0; c < p->ncl; c++) {
		const struct or_client *oc = or_client_find(cfg, p->cl[c]);
		int lim = oc && oc->daily_limit > 0 ? oc->daily_limit - (d == 0 ? p->client_sent[c] : 0) : INT_MAX;
		pd.crem[c] = lim < 0 ? 0 : lim;
		next[c] = 0;
		done[c] = 0;
	}
	while (active > 0 && left > 0) {
		active = 0;
		for (int c = 0; c < p->ncl; c++) {
			int placed = 0;
			if (done[c])
				continue;
			for (; next[c] < p->nj && !placed; next[c]++) {
				struct or_pjob *j = &p->jobs[next[c]];
				if (j->client == c && !j->paused && j->at < 0)
					placed = or_plan_place(cfg, p, &pd, j);
			}
			left -= placed;
			done[c] = !placed;
			active += placed;
		}
	}
	free(next);
	free(done);
	free(pd.crem);
	return left;
}

/* The simulation: each unpaused job's forecast send time into its at (-1:
 * not within the horizon), day by day from today. */
static void or_plan_simulate(const struct or_config *cfg, struct or_plan *p, double now, int today)
{
	int left = 0;

	for (int k = 0; k < p->nj; k++)
		left += !p->jobs[k].paused;
	for (int d = 0; d < OR_PLAN_HORIZON && left > 0; d++)
		left = or_plan_day(cfg, p, d, now, today, left);
}

/* One campaign's line (or JSON object) of plan's report. */
static void or_plan_print_campaign(struct or_buf *b, const struct or_plan *p, int k, double now, int warn_days,
                                   int json)
{
	int pending = 0, unsched = 0, paused = 0;
	double fin = -1;
	char f[40] = "-", note[120] = "";
	const char *sep = strchr(p->ca[k], 1);

	for (int i = 0; i < p->nj; i++) {
		if (p->jobs[i].campaign != k)
			continue;
		pending++;
		paused |= p->jobs[i].paused;
		if (p->jobs[i].paused)
			continue;
		if (p->jobs[i].at < 0)
			unsched++;
		else if (p->jobs[i].at > fin)
			fin = p->jobs[i].at;
	}
	if (fin > 0)
		or_fmt_rfc3339((time_t)fin, f, sizeof f);
	if (paused)
		snprintf(note, sizeof note, "paused");
	else if (unsched)
		snprintf(note, sizeof note, "WARNING: %d not within %d d", unsched, OR_PLAN_HORIZON);
	else if (fin > now + warn_days * 86400.0)
		snprintf(note, sizeof note, "WARNING: after %d days", warn_days);
	if (json) {
		or_buf_printf(b, "%s{\"client\":", k ? "," : "");
		or_json_str(b, p->cl[p->ca_client[k]]);
		or_buf_puts(b, ",\"name\":");
		or_json_str(b, sep + 1);
		or_buf_printf(b, ",\"pending\":%d,\"paused\":%s,\"unscheduled\":%d,\"finish\":%s%s%s,\"warning\":%s}",
		              pending, paused ? "true" : "false", unsched, fin > 0 ? "\"" : "", fin > 0 ? f : "null",
		              fin > 0 ? "\"" : "", !paused && *note ? "true" : "false");
	} else {
		or_buf_printf(b, "%-16.16s %-20.20s %8d %-22s %s\n", p->cl[p->ca_client[k]], sep + 1, pending, f, note);
	}
}

/* The senders' capacity over the next 14 days: numbers in JSON, a bar per
 * day in text. */
static void or_plan_print_capacity(struct or_buf *b, const struct or_config *cfg, const struct or_plan *p, int json)
{
	if (json) {
		or_buf_puts(b, "],\"senders\":[");
		for (int i = 0; i < cfg->nsenders; i++) {
			or_buf_printf(b, "%s{\"name\":", i ? "," : "");
			or_json_str(b, cfg->senders[i].name);
			or_buf_puts(b, ",\"capacity\":[");
			for (int d = 0; d < 14; d++)
				or_buf_printf(b, "%s%d", d ? "," : "", p->cap[i][d]);
			or_buf_puts(b, "]}");
		}
		or_buf_puts(b, "]");   /* the object is closed by or_plan_print, after the costs */
		return;
	}
	int top = 1;
	for (int i = 0; i < cfg->nsenders; i++)
		for (int d = 0; d < 14; d++)
			if (p->cap[i][d] > top)
				top = p->cap[i][d];
	or_buf_printf(b, "\ncapacity per sender, next 14 days (each column a day, full block = %d)\n", top);
	for (int i = 0; i < cfg->nsenders; i++) {
		static const char *bars[] = { " ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588" };
		or_buf_printf(b, "  %-16.16s ", cfg->senders[i].name);
		for (int d = 0; d < 14; d++)
			or_buf_puts(b, bars[(p->cap[i][d] * 8 + top - 1) / top]);
		or_buf_printf(b, "  today %d, in 13 days %d\n", p->cap[i][0], p->cap[i][13]);
	}
}

/* ---- plan's money: the last 30 days' sends and the next 30 days' forecast ----
 *
 * Documented in README, so that it can be checked by hand.  An account's
 * cost over a 30-day period of n sends is monthly + per_1000 * n / 1000 +
 * per_1000_over * max(0, n - included) / 1000 (or_price); an account with no
 * price costs 0 and is named in a note; with no price on any account there
 * are no money figures at all, never a made-up default.  The last 30 days are
 * the ledger's sends in [now - 30 d, now) by their account
 * (or_store_plan_sent); the next 30 the forecast's jobs placed before
 * now + 30 d, by the placed sender's primary account (follow-ups are in the
 * forecast).  A client pays each account's cost in proportion to its share
 * of that account's sends, and the fixed costs (costs.*, and the fee of an
 * account with no sends in the period) in proportion to its share of all
 * sends; with no sends at all they are in the total only. */

struct or_cost_fig { long long n[2]; double cost[2]; };   /* [0] the last 30 days, [1] the next 30 */
struct or_costs {
	int priced, ncl, nac;
	char (*cl)[OR_MAX_LABEL * 2 + 2];   /* clients, by name */
	char (*ac)[OR_MAX_LABEL * 2 + 2];   /* accounts: the configured ones, then others the ledger names */
	long long *n;                       /* n[(c * nac + a) * 2 + k]: client c's sends through a in period k */
	struct or_cost_fig *client, *account, total;
	double fixed;                       /* costs.vps_monthly + costs.other_monthly */
};

static int or_cost_name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* An account's price, NULL when it has none (or is no longer configured). */
static const struct or_price *or_cost_price(const struct or_config *cfg, const char *account)
{
	int i = or_provider_index(cfg, account);

	return i >= 0 && cfg->providers[i].price.set ? &cfg->providers[i].price : NULL;
}

/* The account that pays for forecast job j when it goes before now + 30 d, else NULL. */
static const char *or_cost_next(const struct or_config *cfg, const struct or_pjob *j, double now)
{
	if (j->at < 0 || j->sender < 0 || j->at >= now + OR_PLAN_COST_DAYS * 86400.0)
		return NULL;
	return cfg->providers[cfg->senders[j->sender].provider].name;
}

/* Period k's figures: the accounts' sends and costs, the total, then each
 * client's share. */
static void or_cost_period(const struct or_config *cfg, struct or_costs *c, int k)
{
	long long all = 0;
	double spread = c->fixed;   /* what clients share by their share of all sends */

	for (int a = 0; a < c->nac; a++) {
		const struct or_price *pr = or_cost_price(cfg, c->ac[a]);
		long long n = 0;
		double cost;
		for (int i = 0; i < c->ncl; i++)
			n += c->n[(i * c->nac + a) * 2 + k];
		cost = !pr ? 0 : pr->monthly + pr->per_1000 * (double)n / 1000 +
		       pr->per_1000_over * (double)(n > pr->included ? n - pr->included : 0) / 1000;
		c->account[a].n[k] = n;
		c->account[a].cost[k] = cost;
		c->total.cost[k] += cost;
		all += n;
		if (!n)
			spread += cost;   /* an idle account's fee */
	}
	c->total.n[k] = all;
	c->total.cost[k] += c->fixed;
	for (int i = 0; i < c->ncl; i++) {
		long long mine = 0;
		double cost = 0;
		for (int a = 0; a < c->nac; a++) {
			long long n = c->n[(i * c->nac + a) * 2 + k];
			mine += n;
			if (n)
				cost += c->account[a].cost[k] * (double)n / (double)c->account[a].n[k];
		}
		c->client[i].n[k] = mine;
		c->client[i].cost[k] = cost + (all ? spread * (double)mine / (double)all : 0);
	}
}

/* The money figures of both periods into *c (or_cost_free releases them). */
static void or_plan_costs(const struct or_config *cfg, const struct or_plan *p, double now, struct or_costs *c)
{
	const char *acct;
	size_t cells;

	memset(c, 0, sizeof *c);
	for (int i = 0; i < cfg->nproviders; i++) {
		or_name_slot(&c->ac, &c->nac, cfg->providers[i].name);
		c->priced |= cfg->providers[i].price.set;
	}
	for (int i = 0; i < p->nsent; i++) {
		or_name_slot(&c->cl, &c->ncl, p->sent[i].client);
		or_name_slot(&c->ac, &c->nac, p->sent[i].account);
	}
	for (int i = 0; i < p->nj; i++)
		if (or_cost_next(cfg, &p->jobs[i], now))
			or_name_slot(&c->cl, &c->ncl, p->cl[p->jobs[i].client]);
	if (c->ncl > 1)
		qsort(c->cl, (size_t)c->ncl, sizeof *c->cl, or_cost_name_cmp);
	cells = (size_t)(c->ncl ? c->ncl : 1) * (size_t)(c->nac ? c->nac : 1) * 2;
	c->n = memset(or_xrealloc(NULL, sizeof *c->n * cells), 0, sizeof *c->n * cells);
	c->client = memset(or_xrealloc(NULL, sizeof *c->client * (size_t)(c->ncl + 1)), 0,
	                   sizeof *c->client * (size_t)(c->ncl + 1));
	c->account = memset(or_xrealloc(NULL, sizeof *c->account * (size_t)(c->nac + 1)), 0,
	                    sizeof *c->account * (size_t)(c->nac + 1));
	for (int i = 0; i < p->nsent; i++)   /* the slots exist: found, not added */
		c->n[(or_name_slot(&c->cl, &c->ncl, p->sent[i].client) * c->nac +
		      or_name_slot(&c->ac, &c->nac, p->sent[i].account)) * 2] += p->sent[i].n;
	for (int i = 0; i < p->nj; i++)
		if ((acct = or_cost_next(cfg, &p->jobs[i], now)))
			c->n[(or_name_slot(&c->cl, &c->ncl, p->cl[p->jobs[i].client]) * c->nac +
			      or_name_slot(&c->ac, &c->nac, acct)) * 2 + 1]++;
	c->fixed = cfg->cost_vps_monthly + cfg->cost_other_monthly;
	or_cost_period(cfg, c, 0);
	or_cost_period(cfg, c, 1);
}

static void or_cost_free(struct or_costs *c)
{
	free(c->cl);
	free(c->ac);
	free(c->n);
	free(c->client);
	free(c->account);
}

/* A money figure: 2 decimals, or JSON null / '-' when no price is configured. */
static void or_cost_money(struct or_buf *b, const struct or_costs *c, double v, int json, int width)
{
	if (json && c->priced)
		or_buf_printf(b, "%.2f", v);
	else if (json)
		or_buf_puts(b, "null");
	else if (c->priced)
		or_buf_printf(b, " %*.2f", width, v);
	else
		or_buf_printf(b, " %*s", width, "-");
}

/* A figure's four members (JSON, the object's closing brace too), or its four columns (text). */
static void or_cost_fig_print(struct or_buf *b, const struct or_costs *c, const struct or_cost_fig *f, int json)
{
	if (json) {
		or_buf_printf(b, "\"sent_30d\":%lld,\"cost_30d\":", f->n[0]);
		or_cost_money(b, c, f->cost[0], 1, 0);
		or_buf_printf(b, ",\"forecast_30d\":%lld,\"cost_next_30d\":", f->n[1]);
		or_cost_money(b, c, f->cost[1], 1, 0);
		or_buf_puts(b, "}");
		return;
	}
	or_buf_printf(b, " %9lld", f->n[0]);
	or_cost_money(b, c, f->cost[0], 0, 10);
	or_buf_printf(b, " %13lld", f->n[1]);
	or_cost_money(b, c, f->cost[1], 0, 14);
	or_buf_puts(b, "\n");
}

/* plan's money: "costs" in JSON, a table per client with a TOTAL row in text. */
static void or_plan_print_costs(struct or_buf *b, const struct or_config *cfg, const struct or_plan *p, double now,
                                int json)
{
	struct or_costs c;
	char since[40], until[40];
	int nun = 0, col = 0;

	or_plan_costs(cfg, p, now, &c);
	or_fmt_rfc3339((time_t)(now - OR_PLAN_COST_DAYS * 86400.0), since, sizeof since);
	or_fmt_rfc3339((time_t)(now + OR_PLAN_COST_DAYS * 86400.0), until, sizeof until);
	if (json) {
		or_buf_printf(b, ",\"costs\":{\"currency_free\":true,\"priced\":%s,\"period_days\":%d,\"sent_since\":\"%s\","
		              "\"forecast_until\":\"%s\",\"fixed_30d\":", c.priced ? "true" : "false", OR_PLAN_COST_DAYS,
		              since, until);
		or_cost_money(b, &c, c.fixed, 1, 0);
		or_buf_puts(b, ",\"clients\":[");
		for (int i = 0; i < c.ncl; i++) {
			or_buf_puts(b, i ? ",{\"client\":" : "{\"client\":");
			or_json_str(b, c.cl[i]);
			or_buf_puts(b, ",");
			or_cost_fig_print(b, &c, &c.client[i], 1);
		}
		or_buf_puts(b, "],\"accounts\":[");
		for (int a = 0; a < c.nac; a++) {
			or_buf_puts(b, a ? ",{\"account\":" : "{\"account\":");
			or_json_str(b, c.ac[a]);
			or_buf_printf(b, ",\"priced\":%s,", or_cost_price(cfg, c.ac[a]) ? "true" : "false");
			or_cost_fig_print(b, &c, &c.account[a], 1);
		}
		or_buf_puts(b, "],\"total\":{");
		or_cost_fig_print(b, &c, &c.total, 1);
		or_buf_puts(b, ",\"unpriced\":[");
		for (int a = 0; c.priced && a < c.nac; a++)
			if (!or_cost_price(cfg, c.ac[a])) {
				or_buf_puts(b, nun++ ? "," : "");
				or_json_str(b, c.ac[a]);
			}
		or_buf_puts(b, "]}");
		or_cost_free(&c);
		return;
	}
	or_buf_printf(b, "\ncosts, the last %d days' sends and the next %d days' forecast (in the config's unit)\n"
	              "%-16s %9s %10s %13s %14s\n", OR_PLAN_COST_DAYS, OR_PLAN_COST_DAYS, "CLIENT", "SENT 30D", "COST 30D",
	              "FORECAST 30D", "COST NEXT 30D");
	for (int i = 0; i < c.ncl; i++) {
		or_buf_printf(b, "%-16.16s", c.cl[i]);
		or_cost_fig_print(b, &c, &c.client[i], 0);
	}
	or_buf_printf(b, "%-16s", "TOTAL");
	or_cost_fig_print(b, &c, &c.total, 0);
	if (!c.priced) {
		or_buf_puts(b, "  no money figures: no account has a price (providers[].price)\n");
	} else {
		if (c.fixed > 0)
			or_buf_printf(b, "  fixed costs %.2f per %d days, shared by each client's part of the sends\n", c.fixed,
			              OR_PLAN_COST_DAYS);
		for (int a = 0; a < c.nac; a++) {
			if (or_cost_price(cfg, c.ac[a]))
				continue;
			if (!col || col + 1 + (int)strlen(c.ac[a]) > 96) {   /* lines of at most 96 columns */
				or_buf_puts(b, col ? "\n  note: no price, counted as 0:" : "  note: no price, counted as 0:");
				col = 31;
			}
			or_buf_printf(b, " %s", c.ac[a]);
			col += 1 + (int)strlen(c.ac[a]);
		}
		if (col)
			or_buf_puts(b, "\n");
	}
	or_cost_free(&c);
}

/* plan's report on stdout: a line per campaign, the costs, then the senders'
 * capacity (in JSON: campaigns, senders, costs). */
static void or_plan_print(const struct or_config *cfg, const struct or_plan *p, double now, int json, int warn_days)
{
	struct or_buf b = { 0 };
	char t[40];

	or_fmt_rfc3339((time_t)now, t, sizeof t);
	if (json)
		or_buf_printf(&b, "{\"generated_at\":\"%s\",\"horizon_days\":%d,\"warn_days\":%d,\"campaigns\":[", t,
		              OR_PLAN_HORIZON, warn_days);
	else
		or_buf_printf(&b, "plan at %s (timezone %s; warn beyond %d days)\n\n%-16s %-20s %8s %-22s %s\n", t,
		              cfg->timezone, warn_days, "CLIENT", "CAMPAIGN", "PENDING", "LAST SEND (forecast)", "NOTE");
	for (int k = 0; k < p->nca; k++)
		or_plan_print_campaign(&b, p, k, now, warn_days, json);
	if (!json)
		or_plan_print_costs(&b, cfg, p, now, 0);
	or_plan_print_capacity(&b, cfg, p, json);
	if (json) {
		or_plan_print_costs(&b, cfg, p, now, 1);
		or_buf_puts(&b, "}\n");
	}
	fwrite(b.s, 1, b.len, stdout);
	or_buf_free(&b);
}

static int or_cmd_plan(const struct or_config *cfg, int argc, char **argv)
{
	int json = 0, warn_days = 7, rc;
	double now = or_now();
	int today = or_day_number((time_t)now, cfg->timezone);
	struct or_plan *p;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--days") && i + 1 < argc && atoi(argv[i + 1]) > 0)
			warn_days = atoi(argv[++i]);
		else
			return or_bad_arg("plan", argv[i]);
	}
	if ((rc = or_open_state(cfg, 0)))
		return rc;
	p = or_xrealloc(NULL, sizeof *p);
#if OR_PG
	if (cfg->store_pg) {
		or_pg_plan_load(cfg, today, p);
		or_pg_plan_sent(now, p);
	} else
#endif
	{
		or_store_plan_load(cfg, today, p);
		or_store_plan_sent(now, p);
	}
	or_plan_capacity(cfg, p, today);
	or_plan_simulate(cfg, p, now, today);
	or_plan_print(cfg, p, now, json, warn_days);
	or_plan_free(p);
	free(p);
	return OR_EX_OK;
}

/* ---- operator controls: pause, resume, cancel, render, jobs, show, backup ---- */

struct or_scope { const char *client, *campaign, *sender, *reason; };

/* The scope of pause, resume (allow_sender) or cancel (cmd).  0, or 64 with
 * the word it cannot take named (or the usage, when no scope is given). */
static int or_scope_opts(const char *cmd, int argc, char **argv, struct or_scope *sc, int allow_sender)
{
	memset(sc, 0, sizeof *sc);
	for (int i = 0; i < argc; i++) {
		const char **v = !strcmp(argv[i], "--client") ? &sc->client : !strcmp(argv[i], "--campaign") ? &sc->campaign :
		                 !strcmp(argv[i], "--sender") && allow_sender ? &sc->sender :
		                 !strcmp(argv[i], "--reason") ? &sc->reason : NULL;
		if (!v || i + 1 >= argc)
			return or_bad_arg(cmd, argv[i]);
		if (or_has_ctl(argv[i + 1])) {
			fprintf(stderr, "outreach: %s: %s: control characters (CR, LF, ...) are refused\n", cmd, argv[i]);
			return OR_EX_USAGE;
		}
		*v = argv[++i];
	}
	return sc->client || sc->campaign || sc->sender ? 0 : (fputs(or_usage, stderr), OR_EX_USAGE);
}

/* pause: the scope's jobs are not claimed (checked at every claim, so it
 * takes effect inside a run already going); resume lifts it. */
static int or_cmd_pause(const struct or_config *cfg, int argc, char **argv, int pause)
{
	struct or_scope sc;
	int rc;

	if ((rc = or_scope_opts(pause ? "pause" : "resume", argc, argv, &sc, 1)))
		return rc;
	if (sc.sender && or_sender_index(cfg, sc.sender) < 0) {
		fprintf(stderr, "outreach: no sender named '%s'\n", sc.sender);
		return OR_EX_DATAERR;
	}
	if ((rc = or_open_state(cfg, 0)))
		return rc;
	const char *cl = sc.client ? sc.client : "", *ca = sc.campaign ? sc.campaign : "", *se = sc.sender ? sc.sender : "";
	const char *why = sc.reason ? sc.reason : "paused by the operator";
#if OR_PG
	if (cfg->store_pg && pause)
		or_pg_pause(cl, ca, se, why, or_now());
	else if (cfg->store_pg) {
		if (or_pg_resume(cl, ca, se) == 0) {
			fprintf(stderr, "outreach: resume: no such pause\n");
			return OR_EX_DATAERR;
		}
	} else
#endif
	if (pause)
		or_store_pause(cl, ca, se, why, or_now());
	else if (or_store_resume(cl, ca, se) == 0) {
		fprintf(stderr, "outreach: resume: no such pause\n");
		return OR_EX_DATAERR;
	}
	return OR_EX_OK;
}

static int or_cmd_cancel(const struct or_config *cfg, int argc, char **argv)
{
	struct or_scope sc;
	char why[600], t[40];
	double now = or_now();
	int rc, n;

	if ((rc = or_scope_opts("cancel", argc, argv, &sc, 0)))
		return rc;
	if ((rc = or_open_state(cfg, 0)))
		return rc;
	or_fmt_rfc3339((time_t)now, t, sizeof t);
	snprintf(why, sizeof why, "cancelled%s%s at %s", sc.reason ? ": " : "", sc.reason ? sc.reason : "", t);
#if OR_PG
	if (cfg->store_pg)
		n = or_pg_cancel(sc.client, sc.campaign, why, now);   /* no files: the ledger holds the jobs */
	else
#endif
	{
		n = or_store_cancel(sc.client, sc.campaign, why, now);
		or_cancel_finish();
	}
	printf("%d job%s cancelled\n", n, n == 1 ? "" : "s");
	return OR_EX_OK;
}

/* The sender the rotation would pick for a job now (nothing reserved), or
 * the first that serves its client when none has a slot. */
static int or_render_sender(const struct or_config *cfg, const struct or_job *job)
{
	struct or_candidate c = { 0 };
	int k;

	if (or_store_is_open()) {
		snprintf(c.pin, sizeof c.pin, "%s", job->sender ? job->sender : "");
		if ((k = or_store_render_sender(cfg, job->client, &c, or_now())) >= 0)
			return k;
	}
	for (int i = 0; i < cfg->nsenders; i++)
		if (or_sender_serves(&cfg->senders[i], job->client) && or_pin_matches(&cfg->senders[i], job->sender))
			return i;
	return -1;
}

/* render's job: a job id is looked up in the spool's folders (the spool is
 * open), anything else is a file name. */
static int or_render_read(const struct or_config *cfg, const char *arg, char **data, size_t *len)
{
	char err[8400];
	int rc;

#if OR_PG
	if (cfg->store_pg && strlen(arg) == OR_ID_HEX && strspn(arg, "0123456789abcdef") == OR_ID_HEX) {
		if (!or_pg && (rc = or_pg_connect(cfg, err, sizeof err))) {   /* the ledger holds the job, not the spool */
			fprintf(stderr, "outreach: %s\n", err);
			return rc;
		}
		if (!(*data = or_pg_job_body(arg))) {
			fprintf(stderr, "outreach: render: no job %s in the shared ledger\n", arg);
			return OR_EX_DATAERR;
		}
		*len = strlen(*data);
		return OR_EX_OK;
	}
#endif
	if (strlen(arg) == OR_ID_HEX && strspn(arg, "0123456789abcdef") == OR_ID_HEX && or_dirfd[OR_D_DEFER] >= 0) {
		static const int dirs[] = { OR_D_DEFER, OR_D_HELD, OR_D_FAILED, OR_D_DONE, OR_D_NEW };
		char name[64];
		snprintf(name, sizeof name, "%s.json", arg);
		for (size_t i = 0; i < sizeof dirs / sizeof *dirs && !*data; i++)
			if (or_read_file_at(or_dirfd[dirs[i]], name, cfg->job_max_bytes, data, len, err, sizeof err))
				*data = NULL;
		if (!*data) {
			fprintf(stderr, "outreach: render: no job file for %s in the spool\n", arg);
			return OR_EX_DATAERR;
		}
	} else if ((rc = or_read_all(arg, cfg->job_max_bytes, data, len, err, sizeof err))) {
		fprintf(stderr, "outreach: %s: %s\n", arg, err);
		return rc;
	}
	return OR_EX_OK;
}

/* The asked part on stdout: one body rendered, or the whole message (or its
 * headers) as sender snd would send it now. */
static int or_render_part(const struct or_config *cfg, const struct or_job *job, int snd, const char *id,
                          const char *part)
{
	char err[8400], msgid[512];
	struct or_buf msg = { 0 };
	int rc = OR_EX_OK;

	if (!strcmp(part, "text") || !strcmp(part, "html")) {
		struct or_buf out = { 0 };
		const char *t = !strcmp(part, "text") ? job->text : job->html;
		if (t && or_render(t, job, !strcmp(part, "html"), &out, err, sizeof err) == 0)
			fwrite(out.s, 1, out.len, stdout);
		else if (!t)
			fprintf(stderr, "outreach: render: the job has no %s part\n", part), rc = OR_EX_DATAERR;
		or_buf_free(&out);
	} else if (or_message_build(cfg, job, &cfg->senders[snd], id, (time_t)or_now(), &msg, msgid, sizeof msgid,
	                            err, sizeof err) == 0) {
		const char *end = strstr(msg.s, "\r\n\r\n");
		fwrite(msg.s, 1, !strcmp(part, "headers") && end ? (size_t)(end - msg.s) + 2 : msg.len, stdout);
		fprintf(stderr, "outreach: job %s via sender %s (%s)\n", id, cfg->senders[snd].name,
		        cfg->providers[cfg->senders[snd].provider].name);
	} else {
		fprintf(stderr, "outreach: render: %s\n", err);
		rc = OR_EX_DATAERR;
	}
	or_buf_free(&msg);
	return rc;
}

static int or_cmd_render(const struct or_config *cfg, int argc, char **argv)
{
	const char *part = "raw", *arg = NULL;
	char *data = NULL, field[128], err[8400], id[OR_ID_HEX + 1], producer[OR_MAX_ID + 8];
	size_t len = 0;
	struct or_job job;
	int snd, rc = OR_EX_OK;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--part") && i + 1 < argc)
			part = argv[++i];
		else if (!arg)
			arg = argv[i];
		else
			return or_bad_arg("render", argv[i]);
	}
	static const char *const parts[] = { "raw", "headers", "text", "html", NULL };
	if ((rc = or_bad_value("render", "--part ", part, parts)))
		return rc;
	if (!arg)
		return fputs(or_usage, stderr), OR_EX_USAGE;
	if (or_spool_open(cfg->spool, err, sizeof err) == 0 && or_db_open(cfg, 0, err, sizeof err) != 0)
		or_db_close();
	if ((rc = or_render_read(cfg, arg, &data, &len)))
		return rc;
	if (or_job_parse(data, len, &job, field, sizeof field, err, sizeof err)) {
		fprintf(stderr, "outreach: %s: %s%s%s\n", arg, field, *field ? ": " : "", err);
		free(data);
		return OR_EX_DATAERR;
	}
	free(data);
	or_job_ids(&job, producer, sizeof producer, id);
	/* what a send adds: the one-click headers (with the key) and a reply's In-Reply-To */
	if (*cfg->unsub_url && or_key_load(cfg->spool, err, sizeof err)) {
		int e = errno;   /* or_key_load's, before fprintf may change it */
		fprintf(stderr, "outreach: unsubscribe is configured but %s\n", err);
		or_job_free(&job);
		return or_ex_io(e);
	}
	if (or_db && or_job_thread(&job, id))
		fprintf(stderr, "outreach: render: the first message of its thread has not gone yet: the reply waits for it\n");
	if ((snd = or_render_sender(cfg, &job)) < 0) {
		fprintf(stderr, "outreach: render: no configured sender serves client '%s'\n", job.client);
		or_job_free(&job);
		return OR_EX_DATAERR;
	}
	rc = or_render_part(cfg, &job, snd, id, part);
	or_job_free(&job);
	return rc;
}

static void or_jobs_json_row(void *arg, const struct or_jobs_line *r)
{
	(void)arg;
	puts(r->json);
}

static void or_jobs_table_row(void *arg, const struct or_jobs_line *r)
{
	char t[40], e[200];

	(void)arg;
	or_fmt_rfc3339((time_t)r->updated_at, t, sizeof t);
	printf("%-16s %-10s %-12.12s %-14.14s %-30.30s %-10.10s %3d %-20s %s\n", r->id, r->state, r->client,
	       r->campaign, r->to, r->sender, r->attempts, t, or_safe(r->last_error, e, 80));
}

static int or_cmd_jobs(const struct or_config *cfg, int argc, char **argv)
{
	const char *state = NULL, *client = NULL, *campaign = NULL, *to = NULL;
	int json = 0, rc;
	long long limit = 1000;
	char addr[OR_MAX_ADDR + 1] = "", nm[256];

	for (int i = 0; i < argc; i++) {
		const char **v = !strcmp(argv[i], "--state") ? &state : !strcmp(argv[i], "--client") ? &client :
		                 !strcmp(argv[i], "--campaign") ? &campaign : !strcmp(argv[i], "--to") ? &to : NULL;
		if (v && i + 1 < argc)
			*v = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--limit") && i + 1 < argc)
			limit = atoll(argv[++i]);
		else
			return or_bad_arg("jobs", argv[i]);
	}
	if (state && (rc = or_bad_value("jobs", "--state ", state, or_job_states)))
		return rc;
	if (to && or_parse_address(to, addr, sizeof addr, nm, sizeof nm)) {
		fprintf(stderr, "outreach: jobs: '%s' is not an address\n", to);
		return OR_EX_DATAERR;
	}
	if ((rc = or_open_state(cfg, 0)))
		return rc;
	/* times in RFC 3339, as status.json, plan --json and validate --json give them */
	struct or_jobs_filter f = { state, client, campaign, addr, limit };
	if (!json)
		printf("%-16s %-10s %-12s %-14s %-30s %-10s %3s %-20s %s\n", "ID", "STATE", "CLIENT", "CAMPAIGN", "TO",
		       "SENDER", "TRY", "UPDATED", "LAST ERROR");
#if OR_PG
	if (cfg->store_pg)
		or_pg_jobs(cfg, &f, json ? or_jobs_json_row : or_jobs_table_row, NULL);
	else
#endif
		or_store_jobs(&f, json ? or_jobs_json_row : or_jobs_table_row, NULL);
	return OR_EX_OK;
}

static int or_cmd_show(const struct or_config *cfg, int argc, char **argv)
{
	int rc, json = argc == 2 && !strcmp(argv[1], "--json");
	char *job;

	if (argc > 2 || (argc == 2 && !json))
		return or_bad_arg("show", argv[argc == 2 ? 1 : 2]);
	if (argc < 1)
		return fputs(or_usage, stderr), OR_EX_USAGE;
	if ((rc = or_open_state(cfg, 0)))
		return rc;
#if OR_PG
	if (cfg->store_pg)
		job = or_pg_show(argv[0]);
	else
#endif
		job = or_store_show(argv[0]);
	if (!job) {
		fprintf(stderr, "outreach: show: no job '%s'\n", argv[0]);
		return OR_EX_DATAERR;
	}
	if (json) {
		puts(job);
	} else {
		const char *args[] = { job };
		char *text = or_json_sql(
			"SELECT group_concat(line, char(10)) FROM ("
			" SELECT printf('%-12s %s', key || ':', CASE WHEN type = 'null' THEN '-' ELSE value END) AS line"
			" FROM json_each(?1) WHERE key != 'history'"
			" UNION ALL SELECT 'history:' "
			" UNION ALL SELECT printf('  %s  %-10s %-10s %-16s %s %s', json_extract(value, '$.at'),"
			"   coalesce(json_extract(value, '$.sender'), '-'), coalesce(json_extract(value, '$.account'), '-'),"
			"   json_extract(value, '$.outcome'), coalesce(json_extract(value, '$.provider_id'), ''),"
			"   coalesce(json_extract(value, '$.reason'), '')) FROM json_each(?1, '$.history'))", args, 1);
		if (text) {
			for (char *p = text; *p; p++)   /* keep the lines, mask other control bytes */
				if ((unsigned char)*p < 0x20 && *p != '\n')
					*p = '?';
			puts(text);
			free(text);
		}
	}
	free(job);
	return OR_EX_OK;
}

/* backup FILE: a consistent copy while runs go on (SQLite's online backup
 * API reads one snapshot; WAL lets writers continue), checked, then renamed
 * into place. */
static int or_cmd_backup(const struct or_config *cfg, int argc, char **argv)
{
	char tmp[4200], err[300];
	int rc;

	if (argc != 1)
		return fputs(or_usage, stderr), OR_EX_USAGE;
	if (cfg->store_pg) {
		fprintf(stderr, "outreach: backup: the PostgreSQL store's ledger is the database: back it up with "
		        "pg_dump (or the managed service's backups); each host's spool holds only new/, bad/ and unsub/\n");
		return OR_EX_CONFIG;
	}
	if ((rc = or_open_state(cfg, 0)))
		return rc;
	snprintf(tmp, sizeof tmp, "%s.tmp-%ld", argv[0], (long)getpid());
	if ((rc = or_store_backup(tmp, err, sizeof err)) < 0) {
		fprintf(stderr, "outreach: backup: %s: %s\n", tmp, err);
		unlink(tmp);
		return OR_EX_IOERR;
	}
	if (rc || rename(tmp, argv[0]) == -1) {
		fprintf(stderr, "outreach: backup: %s failed: %s\n", argv[0], rc ? err : strerror(errno));
		unlink(tmp);
		return OR_EX_IOERR;
	}
	return OR_EX_OK;
}

/* The files of the waiting jobs (defer/) renamed back into new/, where this
 * host's next tick takes them into the shared ledger (the same ids: they
 * carry the same producer ids), new/ then fsynced.  A crash midway leaves
 * some in each folder: running it again moves the rest.  How many moved. */
#if OR_PG
static int or_migrate_defer(void)
{
	int fd = dup(or_dirfd[OR_D_DEFER]), n = 0;
	DIR *d = fd == -1 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!d) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)))
		if (or_name_ok(de->d_name) && strlen(de->d_name) > 5 && !strcmp(de->d_name + strlen(de->d_name) - 5, ".json"))
			n += or_move(OR_D_DEFER, de->d_name, OR_D_NEW, de->d_name) == 0;
	closedir(d);
	return or_spool_sync() == -1 ? -1 : n;
}
#endif

/* outreach store migrate: this host's SQLite ledger onto the PostgreSQL
 * store the config now names (README "Several hosts"): every suppression
 * copied into the shared ledger, the waiting jobs' files moved from defer/
 * back into new/ for the next tick to take in.  Refused while the SQLite
 * ledger has jobs a run holds (claimed, sending); held jobs are left in
 * held/ for the operator.  Idempotent: run again, it adds and moves nothing
 * twice.  The SQLite ledger is only read, and stays as an archive. */
static int or_cmd_store(const struct or_config *cfg, int argc, char **argv)
{
	if (argc != 1 || strcmp(argv[0], "migrate"))
		return fputs(or_usage, stderr), OR_EX_USAGE;
	if (!cfg->store_pg) {
		fprintf(stderr, "outreach: store migrate: this config's store is SQLite: add the store group (type = "
		        "\"postgresql\") and run init first (README \"Several hosts\")\n");
		return OR_EX_CONFIG;
	}
#if OR_PG
	struct or_suppress_new *rows;
	long long n[3];
	char err[4800];
	int rc, nrows, added, moved;

	if ((rc = or_open_state(cfg, 0)) || (rc = or_pg_heartbeat(cfg)))   /* 78: init was not run on this host */
		return rc;
	if ((rc = or_store_migrate_read(cfg->state, &rows, &nrows, n, err, sizeof err))) {
		fprintf(stderr, "outreach: store migrate: %s\n", err);
		return rc;
	}
	if (n[0] > 0) {
		fprintf(stderr, "outreach: store migrate: %lld job%s of %s %s claimed or sending: a run of the SQLite store is "
		        "under way or died; let it end (or recover it with one more tick on the SQLite config) first\n",
		        n[0], n[0] == 1 ? "" : "s", cfg->state, n[0] == 1 ? "is" : "are");
		for (int i = 0; i < nrows; i++)
			free(rows[i].address);
		free(rows);
		return OR_EX_TEMPFAIL;
	}
	added = or_pg_suppress_add(rows, nrows, or_now());
	for (int i = 0; i < nrows; i++)
		free(rows[i].address);   /* the row's one block */
	free(rows);
	if ((moved = or_migrate_defer()) < 0) {
		fprintf(stderr, "outreach: store migrate: %s/defer: %s\n", cfg->spool, strerror(errno));
		return or_ex_io(errno);
	}
	printf("store migrate: %d of %d suppressions added; %d waiting job%s moved from defer/ to new/ (the next tick "
	       "takes %s in); %lld held job%s left in held/; %s stays as an archive\n", added, nrows, moved,
	       moved == 1 ? "" : "s", moved == 1 ? "it" : "them", n[1], n[1] == 1 ? "" : "s", cfg->state);
	return OR_EX_OK;
#else
	(void)argv;
	return OR_EX_CONFIG;   /* a plain build refuses a PostgreSQL config when it reads it */
#endif
}

/* What engagement prints a row with. */
struct or_eng_out { int json, csv; struct or_buf *to; };   /* to: the CSV for --export, else stdout */

static void or_engagement_row(void *arg, const struct or_inactive *r)
{
	struct or_eng_out *o = arg;
	char first[32], last[32], eng[32] = "-", safe[2][200];
	struct or_buf b = { 0 };

	or_fmt_rfc3339((time_t)r->first_sent, first, sizeof first);
	or_fmt_rfc3339((time_t)r->last_sent, last, sizeof last);
	if (r->engaged > 0)
		or_fmt_rfc3339((time_t)r->engaged, eng, sizeof eng);
	if (o->json) {
		or_buf_puts(&b, "{\"address\":");
		or_json_str(&b, r->rcpt);
		or_buf_puts(&b, ",\"client\":");
		or_json_str(&b, r->client);
		or_buf_printf(&b, ",\"sends\":%d,\"first_sent\":\"%s\",\"last_sent\":\"%s\",\"last_engaged\":", r->sends, first,
		              last);
		if (r->engaged > 0)
			or_buf_printf(&b, "\"%s\"}", eng);
		else
			or_buf_puts(&b, "null}");
		puts(b.s);
	} else if (o->csv) {   /* what suppress import takes back: address, client, reason */
		or_csv_cell(&b, r->rcpt);
		or_buf_puts(&b, ",");
		or_csv_cell(&b, r->client);
		or_buf_printf(&b, ",inactive: %d sends since %.10s,%s,%s\n", r->sends, first, last, r->engaged > 0 ? eng : "");
		if (o->to)
			or_buf_add(o->to, b.s, b.len);
		else
			fwrite(b.s, 1, b.len, stdout);
	} else {
		printf("%-40s %-14s %5d %-20s %-20s %s\n", or_safe(r->rcpt, safe[0], 120), or_safe(r->client, safe[1], 60),
		        r->sends, first, last, eng);
	}
	or_buf_free(&b);
}

/* outreach engagement [--client C] [--inactive-days N] [--min-sends N] [--json|--csv] [--export FILE]:
 * the addresses that stopped engaging (the ledger folded first), the
 * longest silent first; --export writes them as CSV into FILE (written
 * whole, then renamed into place) for suppress import or a CRM. */
static int or_cmd_engagement(const struct or_config *cfg, int argc, char **argv)
{
	const char *client = NULL, *export = NULL;
	int days = cfg->eng_inactive_days, min = cfg->eng_min_sends, rc, n;
	struct or_eng_out o = { 0, 0, NULL };
	char *end;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--client") && i + 1 < argc)
			client = argv[++i];
		else if (!strcmp(argv[i], "--export") && i + 1 < argc)
			export = argv[++i];
		else if ((!strcmp(argv[i], "--inactive-days") || !strcmp(argv[i], "--min-sends")) && i + 1 < argc) {
			long v = strtol(argv[i + 1], &end, 10);
			if (*end || v < 1 || v > 3650) {
				fprintf(stderr, "outreach: engagement: %s takes a number from 1 to 3650\n", argv[i]);
				return OR_EX_USAGE;
			}
			*(!strcmp(argv[i], "--min-sends") ? &min : &days) = (int)v;
			i++;
		} else if (!strcmp(argv[i], "--json"))
			o.json = 1;
		else if (!strcmp(argv[i], "--csv"))
			o.csv = 1;
		else
			return or_bad_arg("engagement", argv[i]);
	}
	if (o.json && (o.csv || export)) {
		fprintf(stderr, "outreach: engagement: --json goes to stdout alone (--csv and --export write CSV)\n");
		return OR_EX_USAGE;
	}
	if ((rc = or_open_state(cfg, 0)))
		return rc;
	or_store_engagement_fold(or_now());
	if (export) {
		struct or_buf b = { 0 };
		o.csv = 1;
		o.to = &b;
		or_buf_puts(&b, "address,client,reason,last_sent,last_engaged\n");
		n = or_store_inactive(client, days, min, or_now(), or_engagement_row, &o);
		rc = or_write_user_file("engagement", export, &b);
		or_buf_free(&b);
		if (rc == OR_EX_OK)
			printf("%d address%s written to %s\n", n, n == 1 ? "" : "es", export);
		return rc;
	}
	if (o.csv)
		puts("address,client,reason,last_sent,last_engaged");
	else if (!o.json)
		printf("%-40s %-14s %5s %-20s %-20s %s\n", "ADDRESS", "CLIENT", "SENDS", "FIRST SENT", "LAST SENT",
		       "LAST ENGAGED");
	n = or_store_inactive(client, days, min, or_now(), or_engagement_row, &o);
	if (!o.json && !o.csv)
		printf("%d address%s mailed %d+ times with no delivery, open, click or reply in %d days\n", n,
		       n == 1 ? "" : "es", min, days);
	return OR_EX_OK;
}

static int or_cmd_check_config(const struct or_config *cfg, int argc, char **argv)
{
	int online = argc == 1 && !strcmp(argv[0], "--online"), failed = 0, priced = 0;

	if (argc == 1 && !strcmp(argv[0], "--keys"))
		return or_cfg_keys_print(stdout), OR_EX_OK;
	if (argc > 1 || (argc == 1 && !online))
		return or_bad_arg("check-config", argv[strcmp(argv[0], "--online") ? 0 : 1]);
	double now = or_now();
	int day = or_day_number((time_t)now, cfg->timezone);

	printf("config %s: ok\n", cfg->path);
	if (cfg->store_pg)   /* the conninfo holds no password (or_cfg_conninfo) */
		printf("store postgresql: host %s, lease %.0f s, connect_timeout %d s, conninfo %s, password %s%s\n",
		       cfg->host_name, cfg->pg_lease, cfg->pg_connect_timeout, cfg->pg_conninfo,
		       *cfg->pg_password_file ? "from password_file " : "libpq's own (PGPASSFILE, ~/.pgpass)",
		       cfg->pg_password_file);
	printf("spool %s\n%s %s\nreport_dir %s\ntimezone %s\nrotation %s\nin_doubt %s\n", cfg->spool,
	       cfg->store_pg ? "state (not used: the ledger is on PostgreSQL)" : "state", cfg->state, cfg->report_dir,
	       cfg->timezone,
	       cfg->rotation == OR_ROT_QUOTA ? "quota" : "round-robin", cfg->in_doubt_resend ? "resend" : "hold");
	printf("run: max_jobs %d, deadline %.0f s; retry: first %.0f s, max %.0f s, max_attempts %d, max_age %.0f s\n",
	       cfg->max_jobs, cfg->deadline, cfg->retry_first, cfg->retry_max, cfg->max_attempts, cfg->max_age);
	for (int i = 0; i < cfg->nproviders; i++) {
		const struct or_provider *p = &cfg->providers[i];
		static const char *tn[] = { "file", "exec", "smtp", "ses", "sendgrid", "mailgun" };
		printf("provider %s: %s", p->name, tn[p->type]);
		if (p->type == OR_PROV_FILE)
			printf(", writes %s/<job-id>.eml", p->dir);
		else if (p->type == OR_PROV_EXEC)
			printf(", runs %s", p->argv[0]);
		else
			printf(", %s%s%s, concurrency %d, secret %s%s", p->type == OR_PROV_SMTP ? p->url : p->endpoint,
			       *p->domain ? " domain " : "", p->domain, p->concurrency, *p->secret_source ? "from " : "none",
			       p->secret_source);
		printf(", rate %s%.3g/s, timeout %.0f s", p->rate > 0 ? "" : "unlimited ", p->rate, p->timeout);
		if (p->price.set) {   /* the price's terms that are not 0, as README's formula has them */
			const struct or_price *pr = &p->price;
			const char *plus = "";
			printf(", price");
			if (pr->monthly > 0)
				printf(" %g monthly (per 30 days)", pr->monthly), plus = " +";
			if (pr->per_1000 > 0)
				printf("%s %g per 1000", plus, pr->per_1000), plus = " +";
			if (pr->per_1000_over > 0)
				printf("%s %g per 1000 past %d included", plus, pr->per_1000_over, pr->included), plus = " +";
			printf("%s", *plus ? "" : " 0");
		}
		printf("\n");
		priced |= p->price.set;
	}
	if (priced || cfg->cost_vps_monthly > 0 || cfg->cost_other_monthly > 0)
		printf("costs: vps_monthly %.2f, other_monthly %.2f per 30 days; %s\n", cfg->cost_vps_monthly,
		       cfg->cost_other_monthly, priced ? "plan shows money" :
		       "no account has a price, so plan shows no money figures");
	for (int i = 0; i < cfg->nsenders; i++) {
		const struct or_sender *s = &cfg->senders[i];
		struct or_sender_state ss = { 1, 0, "", 0, 0 };
		printf("sender %s: from %s (domain %s) via %s%s%s, cap today %d of daily_limit %d, a send every %.2f s",
		       s->name, s->from_addr, s->domain, cfg->providers[s->provider].name,
		       s->fallback >= 0 ? ", fallback " : "", s->fallback >= 0 ? cfg->providers[s->fallback].name : "",
		       or_sender_cap(s, &ss, day), s->daily_limit, or_sender_gap(cfg, s));
		if (s->warmup.set)
			printf(", warm-up from %s (%s, %.0f to %d over %d days, day %d)", s->warmup.start,
			       s->warmup.curve == OR_CURVE_LINEAR ? "linear" : "geometric", s->warmup.first,
			       s->daily_limit, s->warmup.days, day - s->warmup.start_day);
		if (s->clients) {
			printf(", clients:");
			for (char **c = s->clients; *c; c++)
				printf(" %s", *c);
		}
		printf(", replies %s\n", s->mailbox >= 0 ? cfg->mailboxes[s->mailbox].name :
		       s->replies_none ? "none: WARNING: no mailbox is read for it, so its sequences stop only on a "
		       "suppression (a feed's bounce or complaint, an unsubscribe, suppress add ... --reason replied) or "
		       "on mail dropped into inbound/" :
		       "nowhere: WARNING: its follow-ups wait until it has a mailbox (or says replies = \"none\")");
	}
	for (int i = 0; i < cfg->nmailboxes; i++) {
		const struct or_mailbox *m = &cfg->mailboxes[i];
		printf("mailbox %s: %s as %s, secret %s%s, folders", m->name, m->url, m->username,
		       m->token_command ? "from token_command " : "from ", m->token_command ? m->token_command[0] : m->secret_source);
		for (char **f = m->folders; *f; f++)
			printf(" %s", *f);
		printf(", read every %.0f s\n", cfg->reply_interval);
	}
	for (int i = 0; i < cfg->nclients; i++)
		printf("client %s: daily_limit %d\n", cfg->clients[i].name, cfg->clients[i].daily_limit);
	if (cfg->eng_set) {
		int feeds = 0;   /* accounts whose feed brings deliveries or opens (SES, Mailgun) */
		for (int i = 0; i < cfg->nproviders; i++)
			feeds += cfg->providers[i].feed && (cfg->providers[i].type == OR_PROV_SES ||
			                                    cfg->providers[i].type == OR_PROV_MAILGUN);
		printf("engagement: inactive after %d days and %d sends, %s%s\n", cfg->eng_inactive_days, cfg->eng_min_sends,
		       cfg->eng_suppress ? "suppressed" : "reported",
		       feeds ? "" : "; WARNING: no account's feed brings deliveries or opens (SES, Mailgun), so only "
		       "replies count as engagement");
	}
	for (int i = 0; online && i < cfg->nproviders; i++) {
		char out[700];
		const char *domain = NULL;   /* a sender's, for the EHLO name when the machine has no FQDN */
		for (int k = 0; k < cfg->nsenders && !domain; k++)
			if (cfg->senders[k].provider == i)
				domain = cfg->senders[k].domain;
		int rc = or_probe(&cfg->providers[i], domain, out, sizeof out);
		printf("online %s: %s\n", cfg->providers[i].name, out);
		failed |= rc != 0;
	}
	for (int i = 0; online && i < cfg->nmailboxes; i++) {   /* a login and an EXAMINE of each folder: read-only */
		char err[800] = "";
		struct or_imap *s = or_imap_open(&cfg->mailboxes[i], err, sizeof err);
		for (char **f = cfg->mailboxes[i].folders; s && *f; f++) {
			struct or_imap_folder fo;
			if (or_imap_examine(s, *f, &fo, err, sizeof err) == 0)
				printf("online mailbox %s: folder %s: ok, %lld messages\n", cfg->mailboxes[i].name, *f, fo.exists);
			else
				printf("online mailbox %s: %s\n", cfg->mailboxes[i].name, err), failed = 1;
		}
		if (!s)
			printf("online mailbox %s: %s\n", cfg->mailboxes[i].name, err), failed = 1;
		or_imap_close(s);
	}
#if OR_PG
	if (online && cfg->store_pg)
		failed |= or_pg_probe(cfg) != 0;
#endif
	return failed ? OR_EX_SOFT : OR_EX_OK;
}

/* ================================================================
 * MAIN
 * ================================================================ */

/* ---- the command table ----
 *
 * One row per command word: its handler, all of one signature (a thin
 * adapter below for a command that takes less, or shares a handler), and
 * what it needs before it runs.  main dispatches through it; the hidden
 * command `outreach commands` lists it (one "NAME NEEDS" line per visible
 * row, in usage()'s order, no config read), and tests/e2e/docs.sh checks
 * that the table, usage() (outreach --help) and outreach.1 name the same
 * commands, so a command cannot be added to one and forgotten in another. */

enum or_needs {
	OR_NEEDS_NOTHING,   /* runs before the config is read (cfg is NULL) */
	OR_NEEDS_CONFIG,    /* the config; the ledger only if it is there, or not at all */
	OR_NEEDS_LEDGER     /* the config and the ledger (the handler opens it once its arguments are checked) */
};

struct or_command {
	const char *name;
	int (*run)(const struct or_config *cfg, int argc, char **argv);
	enum or_needs needs;
	int hidden;         /* not in usage() or the man page */
};

/* init and senders take no argument: any is a usage error, with the usage */
/* init [--key FILE] */
static int or_main_init(const struct or_config *cfg, int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[0], "--key"))
		return or_cmd_init(cfg, argv[1]);
	if (argc)
		return or_bad_arg("init", argv[0]);
	return or_cmd_init(cfg, NULL);
}

static int or_main_senders(const struct or_config *cfg, int argc, char **argv)
{
	int rc = argc ? OR_EX_USAGE : or_cmd_senders(cfg);

	(void)argv;
	if (rc == OR_EX_USAGE)
		fputs(or_usage, stderr);
	return rc;
}

static int or_main_cgi(const struct or_config *cfg, int argc, char **argv)
{
	(void)argc, (void)argv;
	return or_cmd_cgi(cfg);
}

static int or_main_pause(const struct or_config *cfg, int argc, char **argv)
{
	return or_cmd_pause(cfg, argc, argv, 1);
}

static int or_main_resume(const struct or_config *cfg, int argc, char **argv)
{
	return or_cmd_pause(cfg, argc, argv, 0);
}

static int or_main_version(const struct or_config *cfg, int argc, char **argv)
{
	(void)cfg, (void)argc, (void)argv;
	return puts("outreach " OR_VERSION), OR_EX_OK;
}

static int or_main_help(const struct or_config *cfg, int argc, char **argv)
{
	(void)cfg, (void)argc, (void)argv;
	return fputs(or_usage, stdout), OR_EX_OK;
}

static int or_main_commands(const struct or_config *cfg, int argc, char **argv);

static const struct or_command or_commands[] = {
	{ "init", or_main_init, OR_NEEDS_LEDGER, 0 },
	{ "enqueue", or_cmd_enqueue, OR_NEEDS_CONFIG, 0 },
	{ "run", or_cmd_run, OR_NEEDS_LEDGER, 0 },
	{ "status", or_cmd_status, OR_NEEDS_LEDGER, 0 },
	{ "senders", or_main_senders, OR_NEEDS_LEDGER, 0 },
	{ "sender", or_cmd_sender, OR_NEEDS_LEDGER, 0 },
	{ "suppress", or_cmd_suppress, OR_NEEDS_LEDGER, 0 },
	{ "pull", or_cmd_pull, OR_NEEDS_LEDGER, 0 },
	{ "leads", or_cmd_leads, OR_NEEDS_LEDGER, 0 },
	{ "lead", or_cmd_lead, OR_NEEDS_LEDGER, 0 },
	{ "engagement", or_cmd_engagement, OR_NEEDS_LEDGER, 0 },
	{ "unsubscribe", or_cmd_unsubscribe, OR_NEEDS_LEDGER, 0 },
	{ "cgi", or_main_cgi, OR_NEEDS_CONFIG, 0 },
	{ "requeue", or_cmd_requeue, OR_NEEDS_LEDGER, 0 },
	{ "pause", or_main_pause, OR_NEEDS_LEDGER, 0 },
	{ "resume", or_main_resume, OR_NEEDS_LEDGER, 0 },
	{ "cancel", or_cmd_cancel, OR_NEEDS_LEDGER, 0 },
	{ "render", or_cmd_render, OR_NEEDS_CONFIG, 0 },
	{ "jobs", or_cmd_jobs, OR_NEEDS_LEDGER, 0 },
	{ "show", or_cmd_show, OR_NEEDS_LEDGER, 0 },
	{ "backup", or_cmd_backup, OR_NEEDS_LEDGER, 0 },
	{ "store", or_cmd_store, OR_NEEDS_CONFIG, 0 },
	{ "validate", or_cmd_validate, OR_NEEDS_CONFIG, 0 },
	{ "domains", or_cmd_domains, OR_NEEDS_CONFIG, 0 },
	{ "plan", or_cmd_plan, OR_NEEDS_LEDGER, 0 },
	{ "check-config", or_cmd_check_config, OR_NEEDS_CONFIG, 0 },
	{ "mailbox-dump", or_cmd_mailbox_dump, OR_NEEDS_CONFIG, 1 },
	{ "version", or_main_version, OR_NEEDS_NOTHING, 0 },
	{ "help", or_main_help, OR_NEEDS_NOTHING, 0 },
	{ "commands", or_main_commands, OR_NEEDS_NOTHING, 1 },
};

/* outreach commands: the table, for the docs check (hidden rows left out) */
static int or_main_commands(const struct or_config *cfg, int argc, char **argv)
{
	static const char *const needs[] = { "nothing", "config", "ledger" };

	(void)cfg, (void)argc, (void)argv;
	for (size_t k = 0; k < sizeof or_commands / sizeof *or_commands; k++)
		if (!or_commands[k].hidden)
			printf("%s %s\n", or_commands[k].name, needs[or_commands[k].needs]);
	return OR_EX_OK;
}

static const struct or_command *or_command_find(const char *name)
{
	for (size_t k = 0; k < sizeof or_commands / sizeof *or_commands; k++)
		if (!strcmp(or_commands[k].name, name))
			return &or_commands[k];
	return NULL;
}

#ifndef OR_NO_MAIN
int main(int argc, char **argv)
{
	const char *conf = getenv("OUTREACH_CONF"), *cmd;
	const struct or_command *c;
	struct or_config *cfg;
	char err[1024];
	int i, rc;

	if (!conf || !*conf)
		conf = "/etc/outreach/outreach.conf";
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc)
			conf = argv[++i];
		else if (!strcmp(argv[i], "-v"))
			or_verbosity = 2;
		else if (!strcmp(argv[i], "-q"))
			or_verbosity = 0;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return fputs(or_usage, stdout), OR_EX_OK;
		else if (!strcmp(argv[i], "--version"))
			return puts("outreach " OR_VERSION), OR_EX_OK;
		else
			return or_bad_arg(NULL, argv[i]);
	}
	if (i >= argc)
		return fputs(or_usage, stderr), OR_EX_USAGE;
	cmd = argv[i++];
	if ((c = or_command_find(cmd)) && c->needs == OR_NEEDS_NOTHING)
		return c->run(NULL, argc - i, argv + i);

	/* fds 0-2 must exist, or a file we open could become "stderr" */
	for (int fd; (fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2;)
		;
	signal(SIGPIPE, SIG_IGN);
	or_alloc_init();
	if (sodium_init() < 0) {
		fprintf(stderr, "outreach: libsodium failed to initialise\n");
		return OR_EX_SOFT;
	}
	umask(027);
	or_clock_init();
	or_random_init();
	or_fault_init();
	cfg = or_xrealloc(NULL, sizeof *cfg);
	if ((rc = or_config_load(cfg, conf, err, sizeof err))) {
		fprintf(stderr, "outreach: %s\n", err);
		free(cfg);
		return rc == -2 ? OR_EX_TEMPFAIL : OR_EX_CONFIG;
	}
	argc -= i;
	argv += i;
	if (c && c->needs == OR_NEEDS_LEDGER && (rc = or_pg_refuse(cfg, c->name))) {
		or_config_free(cfg);
		free(cfg);
		return rc;
	}
	if (c) {
		rc = c->run(cfg, argc, argv);
	} else {
		fprintf(stderr, "outreach: unknown command '%s'\n", cmd);
		rc = OR_EX_USAGE;
	}
	or_db_close();
#if OR_PG
	or_pg_close();
#endif
	or_json_close();
	or_config_free(cfg);
	free(cfg);
	return rc;
}
#endif
