/*
 * tests/unit.c — unit tests for outreach.c.
 *
 * Built from the repository root with the real code included (one
 * translation unit: `make tests/unit`, or by hand):
 *
 *   cc -std=c11 -D_GNU_SOURCE -DOR_TEST -DOR_NO_MAIN -Wall -Wextra -g \
 *      -o tests/unit tests/unit.c -lcurl -lsqlite3 -lconfig -lsodium -lidn2 -lresolv -lm
 *
 * Run from the repository root: `tests/unit [SUBSTRING]` runs every test (or
 * those whose name contains SUBSTRING).  The warm-up reference table is
 * computed afresh by tests/warmup-reference.py (python3, exact fractions: an
 * independent computation of doc/design.md §10's formula); if python3 or the
 * script cannot be run, that test fails.  The SigV4 vectors are read from
 * tests/data/specs/sigv4 (README.md, "Third-party test data").
 *
 * Harness (Redis testhelp.h style): each test is `test_<section>_<case>`;
 * CHECK(cond) records a failure with file:line and the expression and goes
 * on.  Each test runs in a forked child (so a crash or a hang in the code
 * under test fails that one test, not the run); UNIT_NOFORK=1 runs them in
 * process, for a debugger.  Output: `ok - name` / `not ok - name`, failing
 * checks as `#` lines before it, and finally exactly one line
 * `unit: N passed, N failed` counting tests.  Exit 1 if any test failed.
 */
/* The code under test, in this translation unit: the store's operations and
 * most internal functions are static in outreach.c (outreach.h declares
 * them), so the test and the code are compiled as one file, as the fuzz
 * harnesses are (the Makefile compiles this file alone). */
#include "../outreach.c"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

/* ================================================================ */
/* harness */

static int t_failed_checks;   /* failed CHECKs in the current test */
static int t_reported;        /* detail lines printed in the current test */

static void t_fail(const char *file, int line, const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void t_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
	t_failed_checks++;
	if (++t_reported > 40) {
		if (t_reported == 41)
			printf("#   (further failures in this test not shown)\n");
		return;
	}
	printf("#   %s:%d: CHECK(%s) failed", file, line, expr);
	if (fmt && *fmt) {
		va_list ap;
		printf(": ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	printf("\n");
	fflush(stdout);
}

#define CHECK(c) do { if (!(c)) t_fail(__FILE__, __LINE__, #c, "%s", ""); } while (0)
#define CHECKF(c, ...) do { if (!(c)) t_fail(__FILE__, __LINE__, #c, __VA_ARGS__); } while (0)

/* ================================================================ */
/* helpers */

/* UTC "YYYY-MM-DDTHH:MM:SS" (or "YYYY-MM-DD") to epoch seconds. */
static time_t U(const char *iso)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int n = sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	               &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
	if (n != 3 && n != 6) {
		fprintf(stderr, "bad test time %s\n", iso);
		abort();
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

/* Day number (days since 1970-01-01) of a civil date, computed independently. */
static int D(const char *ymd)
{
	time_t t = U(ymd);
	return (int)((t >= 0 ? t : t - 86399) / 86400);
}

/* Formats t as UTC for messages. */
static const char *ts(time_t t)
{
	static char buf[8][32];
	static int i;
	struct tm tm;
	char *b = buf[i++ % 8];
	gmtime_r(&t, &tm);
	strftime(b, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return b;
}

/* NUL-terminated copy of a buffer (caller frees). */
static char *bdup(const struct or_buf *b)
{
	char *s = malloc(b->len + 1);
	if (b->len)
		memcpy(s, b->s, b->len);
	s[b->len] = 0;
	return s;
}

static int buf_eq(const struct or_buf *b, const char *s)
{
	return b->len == strlen(s) && (b->len == 0 || memcmp(b->s, s, b->len) == 0);
}

/* Printable, escaped form of a string for failure messages. */
static const char *show(const char *s, size_t n)
{
	static char buf[4][600];
	static int i;
	char *o = buf[i++ % 4];
	size_t k = 0;
	if (!s)
		return "(null)";
	for (size_t j = 0; j < n && k < sizeof buf[0] - 8; j++) {
		unsigned char c = (unsigned char)s[j];
		if (c == '\r') { o[k++] = '\\'; o[k++] = 'r'; }
		else if (c == '\n') { o[k++] = '\\'; o[k++] = 'n'; }
		else if (c == '\\') { o[k++] = '\\'; o[k++] = '\\'; }
		else if (c < 32 || c == 127) k += (size_t)sprintf(o + k, "\\x%02x", c);
		else o[k++] = (char)c;
	}
	if (k >= sizeof buf[0] - 8) { o[k++] = '.'; o[k++] = '.'; o[k++] = '.'; }
	o[k] = 0;
	return o;
}
static const char *show_str(const char *s)
{
	return show(s, s ? strlen(s) : 0);
}
#define SHOW(s) show_str(s)
#define SHOWB(b) show((b).s, (b).len)

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* Decodes base64 (CR/LF ignored) appending to out; -1 on a bad character. */
static int b64_decode(const char *in, size_t n, struct or_buf *out)
{
	unsigned acc = 0;
	int bits = 0, pad = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)in[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') { pad++; continue; }
		if (pad)
			return -1;
		int v = b64val(c);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			char ch = (char)((acc >> bits) & 0xff);
			or_buf_add(out, &ch, 1);
		}
	}
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;   /* lower-case hex is refused: the contract says upper case */
}

/*
 * Decodes quoted-printable (RFC 2045) into out, checking the encoder's duties
 * on the way: CRLF line ends only, lines <= 76, no trailing space/tab on a
 * line, only printable ASCII, every '=' is =XX (upper-case hex) or a soft
 * break.  Returns 0, or -1 with why.
 */
static int qp_decode(const char *in, size_t n, struct or_buf *out, char *why, size_t whylen)
{
	size_t i = 0, lineno = 1;
	while (i <= n) {
		size_t e = i;
		while (e < n && in[e] != '\r' && in[e] != '\n')
			e++;
		if (e < n && (in[e] == '\n' || e + 1 >= n || in[e + 1] != '\n')) {
			snprintf(why, whylen, "bare CR or LF on line %zu", lineno);
			return -1;
		}
		size_t len = e - i;
		if (len > 76) {
			snprintf(why, whylen, "line %zu is %zu chars", lineno, len);
			return -1;
		}
		if (len && (in[e - 1] == ' ' || in[e - 1] == '\t')) {
			snprintf(why, whylen, "line %zu ends with unencoded whitespace", lineno);
			return -1;
		}
		int soft = 0;
		for (size_t j = i; j < e; j++) {
			unsigned char c = (unsigned char)in[j];
			if (c == '=') {
				if (j + 1 == e) { soft = 1; break; }
				int h = j + 2 < e ? hexval(in[j + 1]) : -1;
				int l = j + 2 < e ? hexval(in[j + 2]) : -1;
				if (h < 0 || l < 0) {
					snprintf(why, whylen, "bad '=' escape on line %zu", lineno);
					return -1;
				}
				char ch = (char)(h * 16 + l);
				or_buf_add(out, &ch, 1);
				j += 2;
			} else if (c == ' ' || c == '\t' || (c >= 33 && c <= 126)) {
				or_buf_add(out, (const char *)&in[j], 1);
			} else {
				snprintf(why, whylen, "raw byte 0x%02x on line %zu", c, lineno);
				return -1;
			}
		}
		if (e >= n)
			break;
		if (!soft)
			or_buf_add(out, "\r\n", 2);
		i = e + 2;
		lineno++;
	}
	return 0;
}

/* Input text with every lone "\n" made "\r\n" (what or_qp should encode). */
static char *crlf(const char *s)
{
	struct or_buf b = {0};
	for (const char *p = s; *p; p++) {
		if (*p == '\n' && (p == s || p[-1] != '\r'))
			or_buf_add(&b, "\r", 1);
		or_buf_add(&b, p, 1);
	}
	char *r = bdup(&b);
	or_buf_free(&b);
	return r;
}

/* Is [p, p+n) one encoded word "=?charset?B|Q?text?="?  Decodes it into out. */
static int ew_decode(const char *p, size_t n, struct or_buf *out)
{
	if (n < 8 || p[0] != '=' || p[1] != '?' || p[n - 2] != '?' || p[n - 1] != '=')
		return -1;
	const char *q1 = memchr(p + 2, '?', n - 2);
	if (!q1 || q1 + 3 > p + n - 2 || q1[2] != '?')
		return -1;
	if ((size_t)(q1 - (p + 2)) != 5 || strncasecmp(p + 2, "UTF-8", 5) != 0)
		return -1;
	const char *t = q1 + 3, *te = p + n - 2;
	if (q1[1] == 'B' || q1[1] == 'b')
		return b64_decode(t, (size_t)(te - t), out);
	if (q1[1] == 'Q' || q1[1] == 'q') {
		for (const char *c = t; c < te; c++) {
			if (*c == '_') {
				or_buf_add(out, " ", 1);
			} else if (*c == '=') {
				if (c + 2 >= te || hexval(c[1]) < 0 || hexval(c[2]) < 0)
					return -1;
				char ch = (char)(hexval(c[1]) * 16 + hexval(c[2]));
				or_buf_add(out, &ch, 1);
				c += 2;
			} else {
				or_buf_add(out, c, 1);
			}
		}
		return 0;
	}
	return -1;
}

/*
 * Decodes a (possibly folded) RFC 2047 header value into out.  Checks each
 * encoded word is <= 75 chars and decodes to valid UTF-8 on its own; counts
 * words in *nwords.  Whitespace between adjacent encoded words is dropped
 * (RFC 2047 6.2).  Returns 0, or -1 with why.
 */
static int rfc2047_decode(const char *in, size_t n, struct or_buf *out, int *nwords,
                          char *why, size_t whylen)
{
	struct or_buf u = {0};
	int rc = -1;
	*nwords = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\r' || in[i] == '\n') {
			if (in[i] == '\r' && i + 2 < n && in[i + 1] == '\n' &&
			    (in[i + 2] == ' ' || in[i + 2] == '\t')) {
				i++;
				continue;
			}
			snprintf(why, whylen, "CR/LF not part of a fold at offset %zu", i);
			goto out;
		}
		or_buf_add(&u, &in[i], 1);
	}
	size_t i = 0;
	int prev_word = 0;
	while (i < u.len) {
		size_t ws = i;
		while (i < u.len && (u.s[i] == ' ' || u.s[i] == '\t'))
			i++;
		size_t wsn = i - ws;
		if (i >= u.len) {
			or_buf_add(out, u.s + ws, wsn);
			break;
		}
		size_t tok = i;
		while (i < u.len && u.s[i] != ' ' && u.s[i] != '\t')
			i++;
		size_t tn = i - tok;
		struct or_buf w = {0};
		if (tn >= 2 && u.s[tok] == '=' && u.s[tok + 1] == '?' && ew_decode(u.s + tok, tn, &w) == 0) {
			if (tn > 75) {
				snprintf(why, whylen, "encoded word of %zu chars (> 75)", tn);
				or_buf_free(&w);
				goto out;
			}
			if (!or_utf8_valid(w.s ? w.s : "", w.len)) {
				snprintf(why, whylen, "encoded word %d alone is not valid UTF-8", *nwords + 1);
				or_buf_free(&w);
				goto out;
			}
			if (!prev_word)
				or_buf_add(out, u.s + ws, wsn);
			or_buf_add(out, w.s ? w.s : "", w.len);
			prev_word = 1;
			(*nwords)++;
		} else {
			if (tn >= 2 && u.s[tok] == '=' && u.s[tok + 1] == '?') {
				snprintf(why, whylen, "malformed encoded word %.*s", (int)(tn > 80 ? 80 : tn), u.s + tok);
				or_buf_free(&w);
				goto out;
			}
			or_buf_add(out, u.s + ws, wsn);
			or_buf_add(out, u.s + tok, tn);
			prev_word = 0;
		}
		or_buf_free(&w);
	}
	rc = 0;
out:
	or_buf_free(&u);
	return rc;
}

/* Longest line (between CRLFs) of s, and whether it contains a bare CR or LF. */
static size_t max_line(const char *s, size_t n, int *bare)
{
	size_t best = 0, cur = 0;
	*bare = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
			if (cur > best) best = cur;
			cur = 0;
			i++;
		} else if (s[i] == '\r' || s[i] == '\n') {
			*bare = 1;
			cur++;
		} else {
			cur++;
		}
	}
	return cur > best ? cur : best;
}

/*
 * Finds header `name` in a header block (lines separated by CRLF, folded
 * continuation lines allowed); returns a malloc'd value with the folds left
 * in place and leading whitespace dropped, or NULL.  *count gets how many
 * times the header occurs.
 */
static char *hdr_get(const char *head, size_t n, const char *name, int *count)
{
	size_t nl = strlen(name);
	char *found = NULL;
	int cnt = 0;
	size_t i = 0;
	while (i < n) {
		size_t e = i;
		/* one logical header: up to a CRLF not followed by WSP */
		for (;;) {
			while (e < n && !(head[e] == '\r' && e + 1 < n && head[e + 1] == '\n'))
				e++;
			if (e + 2 < n && (head[e + 2] == ' ' || head[e + 2] == '\t')) {
				e += 2;
				continue;
			}
			break;
		}
		if (e - i > nl && head[i + nl] == ':' && strncasecmp(head + i, name, nl) == 0) {
			cnt++;
			if (!found) {
				size_t v = i + nl + 1;
				while (v < e && (head[v] == ' ' || head[v] == '\t'))
					v++;
				found = strndup(head + v, e - v);
			}
		}
		i = e + 2;
	}
	if (count)
		*count = cnt;
	return found;
}

/* Value of parameter `param` (e.g. "boundary") in a Content-Type value. */
static char *ct_param(const char *ct, const char *param)
{
	size_t pl = strlen(param);
	for (const char *p = ct; (p = strcasestr(p, param)) != NULL; p += pl) {
		if (p > ct && p[-1] != ';' && p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n')
			continue;
		const char *v = p + pl;
		while (*v == ' ') v++;
		if (*v != '=')
			continue;
		v++;
		while (*v == ' ') v++;
		if (*v == '"') {
			const char *e = strchr(v + 1, '"');
			return e ? strndup(v + 1, (size_t)(e - v - 1)) : NULL;
		}
		size_t k = strcspn(v, "; \t\r\n");
		return strndup(v, k);
	}
	return NULL;
}

struct part { char *ctype, *cte; struct or_buf body; };  /* body decoded */

static void part_free(struct part *p)
{
	free(p->ctype);
	free(p->cte);
	or_buf_free(&p->body);
}

/* Splits one MIME entity at its blank line and decodes its body. */
static int part_parse(const char *s, size_t n, struct part *pt, char *why, size_t whylen)
{
	memset(pt, 0, sizeof *pt);
	const char *sep = memmem(s, n, "\r\n\r\n", 4);
	if (!sep) {
		snprintf(why, whylen, "no blank line in part");
		return -1;
	}
	size_t hn = (size_t)(sep - s) + 2;
	const char *b = sep + 4;
	size_t bn = n - (size_t)(b - s);
	pt->ctype = hdr_get(s, hn, "Content-Type", NULL);
	pt->cte = hdr_get(s, hn, "Content-Transfer-Encoding", NULL);
	if (!pt->cte || strcasecmp(pt->cte, "7bit") == 0 || strcasecmp(pt->cte, "8bit") == 0) {
		or_buf_add(&pt->body, b, bn);
	} else if (strcasecmp(pt->cte, "quoted-printable") == 0) {
		if (qp_decode(b, bn, &pt->body, why, whylen) < 0)
			return -1;
	} else if (strcasecmp(pt->cte, "base64") == 0) {
		if (b64_decode(b, bn, &pt->body) < 0) {
			snprintf(why, whylen, "bad base64 body");
			return -1;
		}
	} else {
		snprintf(why, whylen, "unknown Content-Transfer-Encoding %s", pt->cte);
		return -1;
	}
	return 0;
}

/* Decoded text with trailing CR/LF removed and CRLF made LF, for comparing. */
static char *norm_text(const struct or_buf *b)
{
	char *s = bdup(b);
	size_t k = 0;
	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '\r' && s[i + 1] == '\n')
			continue;
		s[k++] = s[i];
	}
	while (k && s[k - 1] == '\n')
		k--;
	s[k] = 0;
	return s;
}

/* Value of the number after "NAME:" in err, or -1. */
static int err_line(const char *err, const char *name)
{
	const char *p = strstr(err, name);
	if (!p || p[strlen(name)] != ':' || !isdigit((unsigned char)p[strlen(name) + 1]))
		return -1;
	return atoi(p + strlen(name) + 1);
}

/* A zeroed config on the heap (it is large). */
static struct or_config *cfg_new(void)
{
	struct or_config *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	return c;
}

/* ================================================================ */
/* utilities */

static void test_util_buf(void)
{
	struct or_buf b = {0};
	or_buf_add(&b, "ab", 2);
	or_buf_puts(&b, "cd");
	or_buf_printf(&b, "-%d-%s", 42, "x");
	CHECKF(buf_eq(&b, "abcd-42-x"), "got %s", SHOWB(b));
	for (int i = 0; i < 10000; i++)
		or_buf_add(&b, "y", 1);
	CHECK(b.len == 9 + 10000);
	CHECK(b.cap >= b.len);
	or_buf_free(&b);
	CHECK(b.s == NULL && b.len == 0);
}

static void test_util_utf8_valid(void)
{
	CHECK(or_utf8_valid("", 0));
	CHECK(or_utf8_valid("plain", 5));
	CHECK(or_utf8_valid("Привет", strlen("Привет")));
	CHECK(or_utf8_valid("\xf0\x9f\x98\x80", 4));          /* U+1F600 */
	CHECK(!or_utf8_valid("\xff", 1));
	CHECK(!or_utf8_valid("a\xd0", 2));                     /* truncated */
	CHECK(!or_utf8_valid("\xc0\xaf", 2));                  /* overlong '/' */
	CHECK(!or_utf8_valid("\xe0\x80\xaf", 3));              /* overlong */
	CHECK(!or_utf8_valid("\xed\xa0\x80", 3));              /* surrogate */
	CHECK(!or_utf8_valid("\xf4\x90\x80\x80", 4));          /* > U+10FFFF */
	CHECK(!or_utf8_valid("\x80", 1));                      /* lone continuation */
}

static void test_util_has_ctl_lower(void)
{
	CHECK(or_has_ctl("a\rb"));
	CHECK(or_has_ctl("a\nb"));
	CHECK(or_has_ctl("a\x01"));
	CHECK(or_has_ctl("\x1f"));
	CHECK(!or_has_ctl("a\tb"));
	CHECK(!or_has_ctl("Привет, world"));
	CHECK(!or_has_ctl(""));
	char s[] = "IVAN@Example.COM";
	or_lower(s);
	CHECKF(strcmp(s, "ivan@example.com") == 0, "got %s", s);
}

static void test_util_json_str(void)
{
	struct or_buf b = {0};
	or_json_str(&b, "a\"b\\c\n");
	/* "\n" may be written \n or \u000a: both are JSON */
	CHECKF(buf_eq(&b, "\"a\\\"b\\\\c\\n\"") || buf_eq(&b, "\"a\\\"b\\\\c\\u000a\"") ||
	       buf_eq(&b, "\"a\\\"b\\\\c\\u000A\""), "got %s", SHOWB(b));
	or_buf_free(&b);
	or_json_str(&b, "x\x01y");
	char *s = bdup(&b);
	CHECKF(strcasestr(s, "\\u0001") != NULL, "got %s", SHOW(s));
	free(s);
	or_buf_free(&b);
}

/* Strict JSON: what SQLite 3.40 wrongly accepts is refused before it gets there */
static void test_json_wellformed(void)
{
	static const char *good[] = { "{}", "[]", " {\"a\": [1, -0.5e+3, true, false, null, \"\\u00e9\\n\"]} ",
	                              "\"x\"", "0", "{\"a\":{\"b\":\"x\"},\"c\":2}", "\"\\ud83d\\ude00\"",
	                              "\"\\uD83D\\uDE00 \\u00e9\"" };
	static const char *bad[] = { "", "{", "{\"a\":1,{\"b\":\"x\"}:3}", "{\"a\" 1}", "[1,]", "{\"a\":1,}",
	                             "01", "1.", "-", "1e", "\"\\x\"", "\"\\u12g4\"", "\"a\tb\"", "tru",
	                             "[1] [2]", "{'a':1}", "\"abc", "[1 2]", "{\"a\":}",
	                             /* lone surrogates: SQLite would decode them to bytes that are not UTF-8 */
	                             "\"\\udffb\"", "\"\\ud83d\"", "\"\\ud83dx\"", "\"\\ud83d\\u0041\"", "\"\\ud83d\\ud83d\"" };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		CHECKF(or_json_wellformed(good[i], strlen(good[i])), "refused %s", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		CHECKF(!or_json_wellformed(bad[i], strlen(bad[i])), "accepted %s", bad[i]);
	char deep[2 * OR_JSON_DEPTH + 3];
	memset(deep, '[', OR_JSON_DEPTH + 1);
	memset(deep + OR_JSON_DEPTH + 1, ']', OR_JSON_DEPTH + 1);
	deep[2 * OR_JSON_DEPTH + 2] = 0;
	CHECK(!or_json_wellformed(deep, strlen(deep)));
	CHECK(or_json_wellformed(deep + 1, strlen(deep + 1) - 1));

	struct or_job j;
	char field[128], err[256];
	const char *evil = "{\"to\":\"a@b.c\",{\"b\":\"x\"}:3}";
	memset(&j, 0, sizeof j);
	CHECK(or_job_parse(evil, strlen(evil), &j, field, sizeof field, err, sizeof err) == -1);
	CHECKF(strstr(err, "not valid JSON") != NULL, "err %s", err);
	or_job_free(&j);
}

static void test_log_safe(void)
{
	char out[64];
	CHECK(strcmp(or_safe("plain text", out, sizeof out), "plain text") == 0);
	or_safe("a\r\nBcc: x\x01\x7f", out, sizeof out);
	for (const char *p = out; *p; p++)
		CHECKF((unsigned char)*p >= 0x20 && *p != 0x7f, "control byte left in %s", SHOW(out));
	CHECKF(strstr(out, "Bcc: x") != NULL, "got %s", SHOW(out));
	char small[8];
	or_safe("0123456789abcdef", small, sizeof small);
	CHECK(strlen(small) < sizeof small);
	CHECK(strcmp(or_safe(NULL, out, sizeof out), "") == 0);
	/* a cut falls between UTF-8 characters, never inside one */
	for (size_t n = 6; n < 24; n++) {
		char u[24];
		or_safe("\xd0\x9f\xd1\x80\xd0\xb8\xe2\x82\xac\xf0\x9f\x98\x80 ok", u, n);
		CHECKF(or_utf8_valid(u, strlen(u)), "cut at %zu inside a character: %s", n, SHOW(u));
	}
	char u[12];
	CHECKF(strcmp(or_safe("\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2", u, sizeof u), "\xd0\x9f\xd1\x80\xd0\xb8") == 0, "got %s", SHOW(u));
}

/* ================================================================ */
/* time */

static void test_time_days_from_civil(void)
{
	CHECK(or_days_from_civil(1970, 1, 1) == 0);
	CHECKF(or_days_from_civil(2000, 3, 1) == 11017, "got %d", or_days_from_civil(2000, 3, 1));
	CHECKF(or_days_from_civil(2026, 11, 27) == 20784, "got %d", or_days_from_civil(2026, 11, 27));
	CHECKF(or_days_from_civil(1969, 12, 31) == -1, "got %d", or_days_from_civil(1969, 12, 31));
	CHECK(or_days_from_civil(2024, 2, 29) == D("2024-02-29"));
	CHECK(or_days_from_civil(2024, 3, 1) == or_days_from_civil(2024, 2, 29) + 1);
	CHECK(or_days_from_civil(2026, 3, 1) == or_days_from_civil(2026, 2, 28) + 1);
	CHECK(or_days_from_civil(2100, 3, 1) == or_days_from_civil(2100, 2, 28) + 1);
	CHECK(or_days_from_civil(2038, 1, 20) == D("2038-01-20"));
}

static void test_time_day_number_zones(void)
{
	time_t t = U("2026-11-27T21:30:00");
	CHECKF(or_day_number(t, "Europe/Moscow") == D("2026-11-28"), "got %d want %d",
	       or_day_number(t, "Europe/Moscow"), D("2026-11-28"));
	CHECKF(or_day_number(t, "UTC") == D("2026-11-27"), "got %d", or_day_number(t, "UTC"));
	time_t s = or_day_start(D("2026-11-28"), "Europe/Moscow");
	CHECKF(s == U("2026-11-27T21:00:00"), "got %s", ts(s));
	s = or_day_start(D("2026-11-27"), "UTC");
	CHECKF(s == U("2026-11-27T00:00:00"), "got %s", ts(s));
	/* the zone's own offset: one second before local midnight */
	CHECK(or_day_number(U("2026-11-27T20:59:59"), "Europe/Moscow") == D("2026-11-27"));
	CHECK(or_day_number(U("2026-11-27T21:00:00"), "Europe/Moscow") == D("2026-11-28"));
	/* west of UTC */
	CHECK(or_day_number(U("2026-11-28T03:00:00"), "America/Los_Angeles") == D("2026-11-27"));
}

static void test_time_day_dst_new_york(void)
{
	const char *ny = "America/New_York";
	/* spring forward 2026-03-08 02:00 EST -> 03:00 EDT: a 23-hour day */
	time_t a = or_day_start(D("2026-03-08"), ny), b = or_day_start(D("2026-03-09"), ny);
	CHECKF(a == U("2026-03-08T05:00:00"), "got %s", ts(a));
	CHECKF(b == U("2026-03-09T04:00:00"), "got %s", ts(b));
	CHECK(or_day_number(U("2026-03-08T04:59:59"), ny) == D("2026-03-07"));
	CHECK(or_day_number(U("2026-03-08T05:00:00"), ny) == D("2026-03-08"));
	CHECK(or_day_number(U("2026-03-09T03:59:59"), ny) == D("2026-03-08"));
	CHECK(or_day_number(U("2026-03-09T04:00:00"), ny) == D("2026-03-09"));
	/* fall back 2026-11-01 02:00 EDT -> 01:00 EST: a 25-hour day */
	a = or_day_start(D("2026-11-01"), ny);
	b = or_day_start(D("2026-11-02"), ny);
	CHECKF(a == U("2026-11-01T04:00:00"), "got %s", ts(a));
	CHECKF(b == U("2026-11-02T05:00:00"), "got %s", ts(b));
	CHECK(or_day_number(U("2026-11-02T04:30:00"), ny) == D("2026-11-01"));
	CHECK(or_day_number(U("2026-11-02T05:00:00"), ny) == D("2026-11-02"));
}

static void test_time_parse_rfc3339(void)
{
	time_t t = 0, want = U("2026-11-28T06:00:00");
	CHECK(want == 1795845600);
	CHECK(or_parse_time("2026-11-28T09:00:00+03:00", &t) == 0);
	CHECKF(t == want, "got %s", ts(t));
	t = 0;
	CHECK(or_parse_time("2026-11-28T06:00:00Z", &t) == 0);
	CHECKF(t == want, "got %s", ts(t));
	t = 0;
	CHECK(or_parse_time("2026-11-28T06:00:00.123Z", &t) == 0);
	CHECKF(t == want, "fractional: got %s", ts(t));
	t = 0;
	CHECK(or_parse_time("2026-11-28T01:00:00-05:00", &t) == 0);
	CHECKF(t == want, "got %s", ts(t));
	t = 0;
	CHECK(or_parse_time("2026-11-28T11:30:00.5+05:30", &t) == 0);
	CHECKF(t == want, "got %s", ts(t));
	t = 0;
	CHECK(or_parse_time("1795845600", &t) == 0);
	CHECKF(t == want, "epoch: got %s", ts(t));
	t = 1;
	CHECK(or_parse_time("0", &t) == 0);
	CHECK(t == 0);
	CHECK(or_parse_time("2024-02-29T12:00:00Z", &t) == 0);
	CHECK(t == U("2024-02-29T12:00:00"));
}

static void test_time_parse_rejects(void)
{
	static const char *bad[] = {
		"", "garbage", "2026-13-01T00:00:00Z", "2026-11-28T09:00:00Z junk",
		"2026-11-28T09:00:00+03:00x", "123abc", "2026-11-28T25:00:00Z",
		"2026-11-28T09:61:00Z", "2026-11-32T09:00:00Z", "2026-00-10T09:00:00Z",
		"2026-11-28T09:00:00", "2026-11-28T09:00:00+3", " 1795845600x",
		"2026-11-28T09:00:00Zjunk",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		time_t t = 0;
		int rc = or_parse_time(bad[i], &t);
		CHECKF(rc == -1, "accepted \"%s\" as %s", bad[i], ts(t));
	}
}

static void test_time_parse_rejects_impossible_date(void)
{
	time_t t = 0;
	int rc = or_parse_time("2026-02-30T00:00:00Z", &t);
	CHECKF(rc == -1, "accepted 2026-02-30 as %s", ts(t));
	rc = or_parse_time("2025-02-29T00:00:00Z", &t);
	CHECKF(rc == -1, "accepted 2025-02-29 as %s", ts(t));
}

static void test_time_fmt(void)
{
	char buf[64];
	or_fmt_rfc3339(1795845600, buf, sizeof buf);
	CHECKF(strcmp(buf, "2026-11-28T06:00:00Z") == 0, "got %s", buf);
	or_fmt_rfc5322(1795845600, buf, sizeof buf);
	CHECKF(strcmp(buf, "Sat, 28 Nov 2026 06:00:00 +0000") == 0, "got %s", buf);
	time_t t = 0;
	or_fmt_rfc3339(1234567890, buf, sizeof buf);
	CHECK(or_parse_time(buf, &t) == 0 && t == 1234567890);
}

static void test_time_tz_valid(void)
{
	CHECK(or_tz_valid("Europe/Moscow"));
	CHECK(or_tz_valid("UTC"));
	CHECK(or_tz_valid("America/New_York"));
	CHECK(!or_tz_valid("Mars/Olympus"));
	CHECK(!or_tz_valid("../../../etc/passwd"));
	CHECK(!or_tz_valid("/etc/localtime"));
}

/* ================================================================ */
/* randomness */

static void test_random_seeded_repeatable(void)
{
	setenv("OUTREACH_SEED", "42", 1);
	double a[20], b[20];
	or_random_init();
	for (int i = 0; i < 20; i++) {
		a[i] = or_random_unit();
		CHECKF(a[i] >= 0 && a[i] < 1, "draw %d = %g", i, a[i]);
	}
	or_random_init();
	for (int i = 0; i < 20; i++)
		b[i] = or_random_unit();
	CHECK(memcmp(a, b, sizeof a) == 0);
	int distinct = 0;
	for (int i = 1; i < 20; i++)
		distinct += a[i] != a[0];
	CHECK(distinct > 0);
	/* hex ids stay random even under a seed */
	char h1[33] = {0}, h2[33] = {0};
	or_random_init();
	or_random_hex(h1, 16);
	or_random_init();
	or_random_hex(h2, 16);
	CHECKF(strlen(h1) == 32 && strspn(h1, "0123456789abcdef") == 32, "got %s", h1);
	CHECK(strcmp(h1, h2) != 0);
	unsetenv("OUTREACH_SEED");
}

/* ================================================================ */
/* config */

static const char *VALID_CONF =
	"spool = \"/tmp/x\";\n"
	"providers = ({name=\"dry\"; type=\"file\"; dir=\"/tmp/x/outbox\"; rate = 14;});\n"
	"senders = ({name=\"a\"; from=\"Anna <anna@acme-mail.com>\"; provider=\"dry\";"
	" daily_limit=100; per_minute=10;});\n";

static void test_config_valid_minimal(void)
{
	struct or_config *cfg = cfg_new();
	char err[512] = "";
	int rc = or_config_load_string(cfg, VALID_CONF, "test.conf", err, sizeof err);
	CHECKF(rc == 0, "err=%s", err);
	if (rc == 0) {
		CHECK(cfg->nsenders == 1);
		CHECK(cfg->nproviders == 1);
		CHECKF(strcmp(cfg->spool, "/tmp/x") == 0, "spool=%s", cfg->spool);
		CHECKF(strcmp(cfg->state, "/tmp/x/state.db") == 0, "state=%s", cfg->state);
		CHECKF(strcmp(cfg->senders[0].domain, "acme-mail.com") == 0, "domain=%s", cfg->senders[0].domain);
		CHECKF(strcmp(cfg->senders[0].from_addr, "anna@acme-mail.com") == 0, "from_addr=%s", cfg->senders[0].from_addr);
		CHECKF(strcmp(cfg->senders[0].from_name, "Anna") == 0, "from_name=%s", cfg->senders[0].from_name);
		CHECK(strcmp(cfg->senders[0].name, "a") == 0);
		CHECK(cfg->senders[0].provider == 0);
		CHECK(cfg->senders[0].fallback == -1);
		CHECK(cfg->senders[0].daily_limit == 100);
		CHECK(cfg->senders[0].per_minute == 10.0);
		CHECK(cfg->senders[0].warmup.set == 0);
		CHECK(cfg->senders[0].clients == NULL);
		CHECK(or_sender_serves(&cfg->senders[0], "anyone"));
		CHECKF(cfg->providers[0].rate == 14.0, "rate=%g", cfg->providers[0].rate);
		CHECK(cfg->providers[0].type == OR_PROV_FILE);
		CHECK(strcmp(cfg->providers[0].dir, "/tmp/x/outbox") == 0);
		CHECK(strcmp(cfg->providers[0].name, "dry") == 0);
		CHECK(cfg->rotation == OR_ROT_ROUND_ROBIN);
		CHECK(cfg->retry_first > 0 && cfg->retry_max >= cfg->retry_first);
		CHECK(cfg->max_attempts > 0);
	}
	or_config_free(cfg);
	free(cfg);
}

static void test_config_full(void)
{
	const char *text =
		"spool = \"/tmp/x\";\n"
		"state = \"/tmp/y/state.db\";\n"
		"report_dir = \"/tmp/x/reports\";\n"
		"timezone = \"Europe/Moscow\";\n"
		"rotation = \"quota\";\n"
		"in_doubt = \"resend\";\n"
		"retention_days = 30;\n"
		"run = { max_jobs = 500; deadline = 50; };\n"
		"retry = { first = 60; max = 21600; max_attempts = 8; max_age = 259200; };\n"
		"health = { window_days = 7; min_sent = 50; max_bounce_rate = 0.05; max_complaint_rate = 0.003; };\n"
		"providers = (\n"
		"  { name = \"dry\"; type = \"file\"; dir = \"/tmp/x/outbox\"; },\n"
		"  { name = \"local\"; type = \"exec\"; argv = [\"/bin/cat\", \"-u\"]; timeout = 5; }\n"
		");\n"
		"senders = (\n"
		"  { name = \"acme-1\"; from = \"Anna <anna@Acme-Mail.com>\"; provider = \"local\"; fallback = \"dry\";\n"
		"    daily_limit = 350; per_minute = 10;\n"
		"    warmup = { start = \"2026-11-20\"; first = 15; days = 21; curve = \"geometric\"; };\n"
		"    clients = [\"acme\"]; }\n"
		");\n"
		"clients = ( { name = \"acme\"; daily_limit = 1000; } );\n";
	struct or_config *cfg = cfg_new();
	char err[512] = "";
	int rc = or_config_load_string(cfg, text, "test.conf", err, sizeof err);
	CHECKF(rc == 0, "err=%s", err);
	if (rc == 0) {
		struct or_sender *s = &cfg->senders[0];
		CHECK(strcmp(cfg->state, "/tmp/y/state.db") == 0);
		CHECK(strcmp(cfg->report_dir, "/tmp/x/reports") == 0);
		CHECK(strcmp(cfg->timezone, "Europe/Moscow") == 0);
		CHECK(cfg->rotation == OR_ROT_QUOTA);
		CHECK(cfg->in_doubt_resend == 1);
		CHECK(cfg->retention_days == 30);
		CHECK(cfg->max_jobs == 500);
		CHECK(cfg->deadline == 50);
		CHECK(cfg->retry_first == 60 && cfg->retry_max == 21600);
		CHECK(cfg->max_attempts == 8 && cfg->max_age == 259200);
		CHECK(cfg->health_window_days == 7 && cfg->health_min_sent == 50);
		CHECK(fabs(cfg->max_bounce_rate - 0.05) < 1e-12);
		CHECK(fabs(cfg->max_complaint_rate - 0.003) < 1e-12);
		CHECK(cfg->nproviders == 2);
		CHECK(cfg->providers[1].type == OR_PROV_EXEC);
		CHECK(cfg->providers[1].argv && strcmp(cfg->providers[1].argv[0], "/bin/cat") == 0 &&
		      strcmp(cfg->providers[1].argv[1], "-u") == 0 && cfg->providers[1].argv[2] == NULL);
		CHECK(cfg->providers[1].timeout == 5);
		CHECK(s->provider == 1 && s->fallback == 0);
		CHECKF(strcmp(s->domain, "acme-mail.com") == 0, "domain=%s (lower-cased)", s->domain);
		CHECK(s->daily_limit == 350);
		CHECK(s->warmup.set == 1);
		CHECKF(s->warmup.start_day == D("2026-11-20"), "start_day=%d", s->warmup.start_day);
		CHECK(strcmp(s->warmup.start, "2026-11-20") == 0);
		CHECK(s->warmup.first == 15 && s->warmup.days == 21);
		CHECK(s->warmup.curve == OR_CURVE_GEOMETRIC);
		CHECK(or_sender_serves(s, "acme"));
		CHECK(!or_sender_serves(s, "other"));
		CHECK(cfg->nclients == 1 && strcmp(cfg->clients[0].name, "acme") == 0 &&
		      cfg->clients[0].daily_limit == 1000);
	}
	or_config_free(cfg);
	free(cfg);
}

/* Loads text expecting failure with "test.conf:L" for one of the allowed lines. */
static void expect_conf_error(const char *what, const char *text, int line_a, int line_b,
                              const char *file, int line)
{
	struct or_config *cfg = cfg_new();
	char err[512] = "";
	int rc = or_config_load_string(cfg, text, "test.conf", err, sizeof err);
	if (rc != -1) {
		t_fail(file, line, "rc == -1", "%s: accepted (rc=%d)", what, rc);
	} else {
		int l = err_line(err, "test.conf");
		if (l != line_a && l != line_b)
			t_fail(file, line, "err names test.conf:LINE", "%s: want line %d (or %d), err=\"%s\"",
			       what, line_a, line_b, err);
	}
	or_config_free(cfg);
	free(cfg);
}
#define EXPECT_CONF_ERROR(what, text, la, lb) expect_conf_error(what, text, la, lb, __FILE__, __LINE__)

#define CONF_HEAD "spool = \"/tmp/x\";\n" \
	"providers = ({name=\"dry\"; type=\"file\"; dir=\"/tmp/x/outbox\";});\n"

static void test_config_errors_top_level(void)
{
	EXPECT_CONF_ERROR("unknown top-level key", CONF_HEAD
		"bogus = 1;\n"
		"senders = ({name=\"a\"; from=\"a@acme.com\"; provider=\"dry\"; daily_limit=100;});\n", 3, 0);
	EXPECT_CONF_ERROR("bad timezone", CONF_HEAD
		"timezone = \"Mars/Olympus\";\n"
		"senders = ({name=\"a\"; from=\"a@acme.com\"; provider=\"dry\"; daily_limit=100;});\n", 3, 0);
	EXPECT_CONF_ERROR("rotation random", CONF_HEAD
		"rotation = \"random\";\n"
		"senders = ({name=\"a\"; from=\"a@acme.com\"; provider=\"dry\"; daily_limit=100;});\n", 3, 0);
	EXPECT_CONF_ERROR("syntax error", CONF_HEAD
		"senders = ({name=\"a\"; from=\"a@acme.com\"; provider=\"dry\"; daily_limit=100;});\n"
		"spool2 = ;\n", 4, 0);
}

/* The store group: sqlite is today's ledger (with nothing else in it); on
 * this build, which is made without PG=1 like a plain make, a PostgreSQL
 * store is refused with the way to get one. */
static void test_config_store(void)
{
	const char *senders = "senders = ({name=\"a\"; from=\"a@acme.com\"; provider=\"dry\"; daily_limit=100;});\n";
	char text[1024], err[512] = "";
	struct or_config *cfg = cfg_new();
	int rc;

	snprintf(text, sizeof text, CONF_HEAD "store = { type = \"sqlite\"; };\n%s", senders);
	rc = or_config_load_string(cfg, text, "test.conf", err, sizeof err);
	CHECKF(rc == 0 && !cfg->store_pg, "rc=%d err=%s", rc, err);
	or_config_free(cfg);
	snprintf(text, sizeof text, CONF_HEAD "store = { type = \"postgresql\"; conninfo = \"host=127.0.0.1\"; };\n%s",
	         senders);
	rc = or_config_load_string(cfg, text, "test.conf", err, sizeof err);
	CHECKF(OR_PG || (rc == -1 && strstr(err, "test.conf:3:") && strstr(err, "make PG=1")), "rc=%d err=%s", rc, err);
	or_config_free(cfg);
	free(cfg);
	EXPECT_CONF_ERROR("a PostgreSQL key in a sqlite store", CONF_HEAD
		"store = { type = \"sqlite\";\n lease = 200; };\n"
		"senders = ({name=\"a\"; from=\"a@acme.com\"; provider=\"dry\"; daily_limit=100;});\n", 4, 0);
	EXPECT_CONF_ERROR("an unknown store type", CONF_HEAD
		"store = { type = \"mysql\"; };\n"
		"senders = ({name=\"a\"; from=\"a@acme.com\"; provider=\"dry\"; daily_limit=100;});\n", 3, 0);
	EXPECT_CONF_ERROR("an unknown key in store", CONF_HEAD
		"store = { type = \"sqlite\"; hosts = 2; };\n"
		"senders = ({name=\"a\"; from=\"a@acme.com\"; provider=\"dry\"; daily_limit=100;});\n", 3, 0);
}

static void test_config_errors_sender(void)
{
	EXPECT_CONF_ERROR("unknown key in sender", CONF_HEAD
		"senders = (\n"
		"  { name=\"a\"; from=\"a@acme.com\"; provider=\"dry\";\n"
		"    daily_limit=100;\n"
		"    colour = \"red\"; }\n"
		");\n", 6, 4);
	EXPECT_CONF_ERROR("unknown provider", CONF_HEAD
		"senders = (\n"
		"  { name=\"a\"; from=\"a@acme.com\";\n"
		"    provider=\"nope\";\n"
		"    daily_limit=100; }\n"
		");\n", 5, 4);
	EXPECT_CONF_ERROR("warmup first = 0", CONF_HEAD
		"senders = (\n"
		"  { name=\"a\"; from=\"a@acme.com\"; provider=\"dry\"; daily_limit=100;\n"
		"    warmup = { start = \"2026-11-20\";\n"
		"      first = 0;\n"
		"      days = 10; }; }\n"
		");\n", 6, 5);
	EXPECT_CONF_ERROR("warmup days = 0", CONF_HEAD
		"senders = (\n"
		"  { name=\"a\"; from=\"a@acme.com\"; provider=\"dry\"; daily_limit=100;\n"
		"    warmup = { start = \"2026-11-20\"; first = 5;\n"
		"      days = 0; }; }\n"
		");\n", 6, 5);
}

static void test_config_sender_gap(void)
{
	struct or_config *cfg = cfg_new();
	struct or_sender s;
	memset(&s, 0, sizeof s);
	cfg->nproviders = 1;
	cfg->providers[0].rate = 14;
	s.provider = 0;
	s.per_minute = 10;
	CHECKF(fabs(or_sender_gap(cfg, &s) - 6.0) < 1e-9, "got %g", or_sender_gap(cfg, &s));
	s.per_minute = 0;
	CHECKF(fabs(or_sender_gap(cfg, &s) - 1.0 / 14) < 1e-9, "got %g", or_sender_gap(cfg, &s));
	cfg->providers[0].rate = 0;
	CHECKF(or_sender_gap(cfg, &s) == 0, "no limits: got %g", or_sender_gap(cfg, &s));
	s.min_gap = 30;
	s.per_minute = 10;
	CHECKF(fabs(or_sender_gap(cfg, &s) - 30) < 1e-9, "got %g", or_sender_gap(cfg, &s));
	s.min_gap = 0;
	s.per_minute = 120;
	cfg->providers[0].rate = 1;
	CHECKF(fabs(or_sender_gap(cfg, &s) - 1.0) < 1e-9, "got %g", or_sender_gap(cfg, &s));
	free(cfg);
}

/* ================================================================ */
/* warm-up */

/* The table comes from a pipe, not a file: what is compared is always what
 * the script computes today, never a stale copy. */
static void test_warmup_reference_table(void)
{
	const char *path = "tests/warmup-reference.py";
	FILE *f = popen("python3 tests/warmup-reference.py", "r");
	CHECKF(f != NULL, "cannot run python3 %s: %s (run from the repository root)", path, strerror(errno));
	if (!f)
		return;
	char line[256];
	int rows = 0, bad = 0, lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (lineno == 1) {
			static const char hdr[] = "first\tdaily_limit\tdays\tcurve\tday\tvolume";
			CHECKF(strncmp(line, hdr, sizeof hdr - 1) == 0,
			       "unexpected header %s", line);
			continue;
		}
		double first;
		int limit, days, day, vol;
		char curve[32];
		if (sscanf(line, "%lf\t%d\t%d\t%31s\t%d\t%d", &first, &limit, &days, curve, &day, &vol) != 6) {
			CHECKF(0, "%s output line %d: unparsable row %s", path, lineno, line);
			continue;
		}
		struct or_warmup w;
		memset(&w, 0, sizeof w);
		w.set = 1;
		w.first = first;
		w.days = days;
		w.curve = strcmp(curve, "geometric") == 0 ? OR_CURVE_GEOMETRIC : OR_CURVE_LINEAR;
		int got = or_warmup_volume(&w, limit, day);
		rows++;
		if (got != vol) {
			bad++;
			CHECKF(got == vol, "%s output line %d: first=%g limit=%d days=%d %s day=%d: want %d got %d",
			       path, lineno, first, limit, days, curve, day, vol, got);
		}
	}
	int st = pclose(f);
	CHECKF(st == 0, "python3 %s exited with status %d (run from the repository root)", path, st);
	CHECKF(rows > 1000, "only %d rows read", rows);
	CHECKF(bad == 0, "%d of %d rows differ", bad, rows);
}

static void test_warmup_unset_and_edges(void)
{
	struct or_warmup w;
	memset(&w, 0, sizeof w);
	CHECK(or_warmup_volume(&w, 350, 0) == 350);
	CHECK(or_warmup_volume(&w, 350, 7) == 350);
	CHECK(or_warmup_volume(&w, 350, -3) == 350);
	w.set = 1;
	w.first = 15;
	w.days = 21;
	w.curve = OR_CURVE_GEOMETRIC;
	CHECK(or_warmup_volume(&w, 350, 0) == 15);
	/* before the start date the sender is not used (doc/design.md §10) */
	CHECKF(or_warmup_volume(&w, 350, -1) == 0, "day -1: got %d", or_warmup_volume(&w, 350, -1));
	CHECK(or_warmup_volume(&w, 350, 21) == 350);
	CHECK(or_warmup_volume(&w, 350, 1000) == 350);
	/* 15 * (350/15)^(10/21) = 67.6... */
	CHECKF(or_warmup_volume(&w, 350, 10) == (int)floor(15 * pow(350.0 / 15, 10.0 / 21) + 1e-9),
	       "got %d", or_warmup_volume(&w, 350, 10));
	w.curve = OR_CURVE_LINEAR;
	/* 15 + 335 * 10 / 21 = 174.52 */
	CHECKF(or_warmup_volume(&w, 350, 10) == 174, "got %d", or_warmup_volume(&w, 350, 10));
	/* first above the limit: min(L, ...) */
	w.first = 500;
	CHECK(or_warmup_volume(&w, 350, 0) == 350);
}

/* ================================================================ */
/* crypto and spool */

static void test_crypto_sha256_hex(void)
{
	char out[65];
	memset(out, 'x', sizeof out);
	or_sha256_hex("abc", 3, out, sizeof out);
	CHECKF(strncmp(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 64) == 0,
	       "got %.64s", out);
	CHECK(out[64] == 0);
}

static void test_spool_name_ok(void)
{
	char long200[202], long201[203];
	memset(long200, 'a', 200); long200[200] = 0;
	memset(long201, 'a', 201); long201[201] = 0;
	CHECK(or_name_ok("job-1.json"));
	CHECK(or_name_ok("A"));
	CHECK(or_name_ok("x_y.z-1"));
	CHECK(or_name_ok(long200));
	CHECK(!or_name_ok(long201));
	CHECK(!or_name_ok(""));
	CHECK(!or_name_ok(".hidden"));
	CHECK(!or_name_ok("-x"));
	CHECK(!or_name_ok("a/b"));
	CHECK(!or_name_ok("a b"));
	CHECK(!or_name_ok(".."));
	CHECK(!or_name_ok("ж.json"));
}

static void test_job_header_name_ok(void)
{
	static const char *good[] = { "X-Ref", "X-Campaign-Ref", "Precedence", "Organization" };
	static const char *bad[] = { "", "X Ref", "X:Ref", "X-R\xc3\xa9" "f", "From", "bcc",
	                             "content-type", "X-Outreach-Foo", "List-Unsubscribe" };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		char err[256] = "";
		CHECKF(or_header_name_ok(good[i], err, sizeof err) == 0, "refused %s: %s", good[i], err);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char err[256] = "";
		int rc = or_header_name_ok(bad[i], err, sizeof err);
		CHECKF(rc != 0 && err[0], "accepted \"%s\"", SHOW(bad[i]));
	}
}

static void test_spool_init_and_write_atomic(void)
{
	char dir[] = "/tmp/outreach-unit-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char spool[256];
	snprintf(spool, sizeof spool, "%s/spool", dir);
	CHECK(or_spool_init(spool) == 0);
	static const char *sub[] = { "tmp", "new", "defer", "cur", "done", "failed", "bad", "held" };
	for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
		char p[300];
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", spool, sub[i]);
		CHECKF(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "%s missing", p);
	}
	CHECK(or_spool_init(spool) == 0);   /* idempotent */

	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0);
	CHECK(or_write_atomic(dfd, "f.txt", "hello", 5, 1) == 0);
	char p[300], got[32] = "";
	snprintf(p, sizeof p, "%s/f.txt", dir);
	FILE *f = fopen(p, "r");
	CHECK(f != NULL);
	if (f) {
		size_t n = fread(got, 1, sizeof got - 1, f);
		got[n] = 0;
		fclose(f);
	}
	CHECKF(strcmp(got, "hello") == 0, "got %s", got);
	CHECKF(or_write_atomic(dfd, "f.txt", "other", 5, 1) != 0, "noreplace overwrote");
	f = fopen(p, "r");
	if (f) {
		size_t n = fread(got, 1, sizeof got - 1, f);
		got[n] = 0;
		fclose(f);
	}
	CHECK(strcmp(got, "hello") == 0);
	CHECK(or_write_atomic(dfd, "f.txt", "again", 5, 0) == 0);
	f = fopen(p, "r");
	if (f) {
		size_t n = fread(got, 1, sizeof got - 1, f);
		got[n] = 0;
		fclose(f);
	}
	CHECK(strcmp(got, "again") == 0);
	if (dfd >= 0)
		close(dfd);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

/* A process that opened the spool before another run compacted new/ and
 * drained new.old holds a removed folder: a job it moves into new/ must land
 * in the folder "new" names now, never in the removed one (or_rename_into). */
static void test_spool_move_into_replaced_new(void)
{
	char dir[] = "/tmp/outreach-unit-XXXXXX", spool[256], p[400], err[300];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(spool, sizeof spool, "%s/spool", dir);
	CHECK(or_spool_init(spool) == 0);
	CHECKF(or_spool_open(spool, err, sizeof err) == 0, "%s", err);
	snprintf(p, sizeof p, "%s/tmp/a.json", spool);
	FILE *f = fopen(p, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	/* what or_new_compact then or_new_retired_drain do, from outside */
	char from[400], to[400];
	snprintf(from, sizeof from, "%s/new", spool);
	snprintf(to, sizeof to, "%s/new.gone", spool);
	CHECK(rename(from, to) == 0 && mkdir(from, 0770) == 0 && rmdir(to) == 0);
	CHECKF(or_move(OR_D_TMP, "a.json", OR_D_NEW, "a.json") == 0, "%s", strerror(errno));
	snprintf(p, sizeof p, "%s/new/a.json", spool);
	CHECKF(access(p, F_OK) == 0, "%s missing", p);
	CHECK(or_dir_refresh(OR_D_NEW) == 0);   /* the fresh folder's descriptor now */
	/* a source that is gone is still ENOENT */
	CHECK(or_move(OR_D_TMP, "none.json", OR_D_NEW, "none.json") == -1 && errno == ENOENT);
	/* a target folder gone for good (nothing named new/ to reopen): ESTALE,
	 * never ENOENT, which enqueue would take for "already there" */
	snprintf(p, sizeof p, "%s/tmp/b.json", spool);
	f = fopen(p, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	char a[420];
	snprintf(a, sizeof a, "%s/a.json", to);
	CHECK(rename(from, to) == 0 && unlink(a) == 0 && rmdir(to) == 0);
	CHECKF(or_move(OR_D_TMP, "b.json", OR_D_NEW, "b.json") == -1 && errno == ESTALE, "errno %s", strerror(errno));
	CHECKF(access(p, F_OK) == 0, "%s gone", p);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

/* ================================================================ */
/* addresses, windows, CSV */

static void test_job_parse_address_ok(void)
{
	char a[OR_MAX_ADDR + 1], n[256];
	CHECK(or_parse_address("Ivan Petrov <ivan@example.com>", a, sizeof a, n, sizeof n) == 0);
	CHECKF(strcmp(a, "ivan@example.com") == 0, "addr=%s", a);
	CHECKF(strcmp(n, "Ivan Petrov") == 0, "name=%s", n);
	CHECK(or_parse_address("\"Petrov, Ivan\" <ivan@example.com>", a, sizeof a, n, sizeof n) == 0);
	CHECKF(strcmp(a, "ivan@example.com") == 0, "addr=%s", a);
	CHECKF(strcmp(n, "Petrov, Ivan") == 0, "name=%s", n);
	strcpy(n, "junk");
	CHECK(or_parse_address("ivan@example.com", a, sizeof a, n, sizeof n) == 0);
	CHECK(strcmp(a, "ivan@example.com") == 0);
	CHECKF(n[0] == 0, "name=%s", n);
	CHECK(or_parse_address("Ivan <IVAN@Example.COM>", a, sizeof a, n, sizeof n) == 0);
	CHECKF(strcmp(a, "ivan@example.com") == 0, "addr=%s (lower-cased)", a);
	CHECK(or_parse_address("Иван Петров <ivan.petrov+x@mail.example.co.uk>", a, sizeof a, n, sizeof n) == 0);
	CHECKF(strcmp(a, "ivan.petrov+x@mail.example.co.uk") == 0, "addr=%s", a);
	CHECKF(strcmp(n, "Иван Петров") == 0, "name=%s", n);
}

static void test_job_parse_address_bad(void)
{
	static const char *bad[] = { "ivan", "@x.com", "a@", "a b@c.com", "<a@b.com", "a@b..com",
	                             "", "a@@b.com", "a@b.com\r\nBcc: c@d.com", "Ivan <a@b.com" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char a[OR_MAX_ADDR + 1] = "", n[256] = "";
		int rc = or_parse_address(bad[i], a, sizeof a, n, sizeof n);
		CHECKF(rc == -1, "accepted \"%s\" as addr=%s name=%s", SHOW(bad[i]), a, n);
	}
}

static void test_window_parse_ok(void)
{
	struct or_window w;
	char err[256];
	memset(&w, 0, sizeof w);
	CHECK(or_window_parse(&w, "Mon-Fri", "09:00-18:00", "Europe/Moscow", err, sizeof err) == 0);
	CHECK(w.set == 1);
	CHECKF(w.days == 0x1f, "days=%#x", w.days);
	CHECK(w.start_min == 9 * 60 && w.end_min == 18 * 60);
	CHECK(strcmp(w.tz, "Europe/Moscow") == 0);
	memset(&w, 0, sizeof w);
	CHECK(or_window_parse(&w, "Mon,Wed,Fri", "22:00-06:00", NULL, err, sizeof err) == 0);
	CHECKF(w.days == 0x15, "days=%#x", w.days);
	CHECK(w.start_min == 22 * 60 && w.end_min == 6 * 60);
	CHECK(w.tz[0] == 0);
	memset(&w, 0, sizeof w);
	CHECK(or_window_parse(&w, "Sat-Sun", "00:00-23:59", "", err, sizeof err) == 0);
	CHECKF(w.days == 0x60, "days=%#x", w.days);
	CHECK(w.tz[0] == 0);
	memset(&w, 0, sizeof w);
	CHECK(or_window_parse(&w, "Fri-Mon", "09:30-10:45", "UTC", err, sizeof err) == 0);
	CHECKF(w.days == 0x71, "wrapping range: days=%#x", w.days);
	CHECK(w.start_min == 9 * 60 + 30 && w.end_min == 10 * 60 + 45);
	memset(&w, 0, sizeof w);
	CHECK(or_window_parse(&w, "Sun", "08:00-09:00", NULL, err, sizeof err) == 0);
	CHECKF(w.days == 0x40, "days=%#x", w.days);
}

static void test_window_parse_bad(void)
{
	static const struct { const char *days, *hours, *tz; } bad[] = {
		{ "Mon-Funday", "09:00-18:00", NULL },
		{ "Xyz", "09:00-18:00", NULL },
		{ "Mon-Fri", "25:00-26:00", NULL },
		{ "Mon-Fri", "09:00", NULL },
		{ "Mon-Fri", "09:00-09:00", NULL },
		{ "Mon-Fri", "18:60-19:00", NULL },
		{ "Mon-Fri", "09:00-18:00x", NULL },
		{ "Mon-Fri", "09:00-18:00", "Mars/Olympus" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct or_window w;
		char err[256] = "";
		memset(&w, 0, sizeof w);
		int rc = or_window_parse(&w, bad[i].days, bad[i].hours, bad[i].tz, err, sizeof err);
		CHECKF(rc == -1, "accepted days=%s hours=%s tz=%s", bad[i].days, bad[i].hours,
		       bad[i].tz ? bad[i].tz : "(null)");
		CHECKF(rc != -1 || err[0], "no reason for days=%s hours=%s", bad[i].days, bad[i].hours);
	}
}

static struct or_window mkwin(const char *days, const char *hours, const char *tz)
{
	struct or_window w;
	char err[256] = "";
	memset(&w, 0, sizeof w);
	if (or_window_parse(&w, days, hours, tz, err, sizeof err) != 0)
		CHECKF(0, "window %s %s %s refused: %s", days, hours, tz ? tz : "", err);
	return w;
}

static void test_window_open_business_hours(void)
{
	/* 2026-11-27 is a Friday; Moscow is UTC+3 */
	struct or_window w = mkwin("Mon-Fri", "09:00-18:00", "Europe/Moscow");
	CHECK(or_window_open(&w, U("2026-11-27T06:00:00"), "UTC") == 1);   /* Fri 09:00 */
	CHECK(or_window_open(&w, U("2026-11-27T05:59:00"), "UTC") == 0);   /* Fri 08:59 */
	CHECK(or_window_open(&w, U("2026-11-27T14:59:59"), "UTC") == 1);   /* Fri 17:59:59 */
	CHECK(or_window_open(&w, U("2026-11-27T15:00:00"), "UTC") == 0);   /* Fri 18:00 */
	CHECK(or_window_open(&w, U("2026-11-28T07:00:00"), "UTC") == 0);   /* Sat 10:00 */
	CHECK(or_window_open(&w, U("2026-11-30T06:00:00"), "UTC") == 1);   /* Mon 09:00 */
	/* Sun 22:00 UTC is Mon 01:00 in Moscow: the day is judged in the window's zone */
	struct or_window m = mkwin("Mon", "00:00-02:00", "Europe/Moscow");
	CHECK(or_window_open(&m, U("2026-11-29T22:00:00"), "UTC") == 1);
}

static void test_window_open_default_tz(void)
{
	struct or_window w = mkwin("Mon-Fri", "09:00-18:00", NULL);
	time_t t = U("2026-11-27T06:30:00");   /* Fri: 09:30 Moscow, 06:30 UTC */
	CHECK(or_window_open(&w, t, "Europe/Moscow") == 1);
	CHECK(or_window_open(&w, t, "UTC") == 0);
}

static void test_window_open_wraps_midnight(void)
{
	/* 2026-11-25 Wednesday, 2026-11-28 Saturday, 2026-11-30 Monday */
	struct or_window w = mkwin("Mon-Fri", "22:00-06:00", "UTC");
	CHECK(or_window_open(&w, U("2026-11-25T23:00:00"), NULL) == 1);
	CHECK(or_window_open(&w, U("2026-11-26T05:59:00"), NULL) == 1);
	CHECK(or_window_open(&w, U("2026-11-26T06:00:00"), NULL) == 0);
	CHECK(or_window_open(&w, U("2026-11-25T21:59:00"), NULL) == 0);
	CHECK(or_window_open(&w, U("2026-11-25T22:00:00"), NULL) == 1);
	CHECK(or_window_open(&w, U("2026-11-27T23:00:00"), NULL) == 1);   /* Fri 23:00 */
	CHECK(or_window_open(&w, U("2026-11-28T01:00:00"), NULL) == 0);   /* Sat 01:00: not in days */
	CHECK(or_window_open(&w, U("2026-11-29T23:00:00"), NULL) == 0);   /* Sun 23:00 */
	CHECK(or_window_open(&w, U("2026-11-30T01:00:00"), NULL) == 1);   /* Mon 01:00 */
}

static void test_window_next(void)
{
	struct or_window w = mkwin("Mon-Fri", "09:00-18:00", "Europe/Moscow");
	time_t t, n;
	/* Friday 18:30 Moscow -> Monday 09:00 Moscow */
	t = U("2026-11-27T15:30:00");
	n = or_window_next(&w, t, "UTC");
	CHECKF(n == U("2026-11-30T06:00:00"), "got %s", ts(n));
	/* open: t itself, seconds kept */
	t = U("2026-11-27T07:00:30");
	n = or_window_next(&w, t, "UTC");
	CHECKF(n == t, "got %s", ts(n));
	/* Friday 08:00:17 -> Friday 09:00:00 */
	t = U("2026-11-27T05:00:17");
	n = or_window_next(&w, t, "UTC");
	CHECKF(n == U("2026-11-27T06:00:00"), "got %s", ts(n));
	/* Mon,Wed,Fri 09:00-10:00 UTC, Wednesday noon -> Friday 09:00 */
	struct or_window v = mkwin("Mon,Wed,Fri", "09:00-10:00", NULL);
	n = or_window_next(&v, U("2026-11-25T12:00:00"), "UTC");
	CHECKF(n == U("2026-11-27T09:00:00"), "got %s", ts(n));
	/* wrapping hours: Saturday 03:00 -> Monday 00:00 (Monday is in days) */
	struct or_window x = mkwin("Mon-Fri", "22:00-06:00", "UTC");
	n = or_window_next(&x, U("2026-11-28T03:00:00"), "UTC");
	CHECKF(n == U("2026-11-30T00:00:00"), "got %s", ts(n));
	CHECK(or_window_open(&x, n, "UTC") == 1);
}

static void test_window_next_dst(void)
{
	struct or_window w = mkwin("Mon-Fri", "09:00-17:00", "America/New_York");
	/* Saturday noon EST before spring forward -> Monday 09:00 EDT */
	time_t n = or_window_next(&w, U("2026-03-07T17:00:00"), "UTC");
	CHECKF(n == U("2026-03-09T13:00:00"), "got %s", ts(n));
	/* Saturday noon EDT before fall back -> Monday 09:00 EST */
	n = or_window_next(&w, U("2026-10-31T16:00:00"), "UTC");
	CHECKF(n == U("2026-11-02T14:00:00"), "got %s", ts(n));
}

static void test_window_next_dst_gap(void)
{
	/* 02:30-03:30 on the Sunday clocks jump 02:00 EST -> 03:00 EDT: the window
	 * first opens at 03:00 EDT = 07:00Z (local 02:30 never happens) */
	struct or_window w = mkwin("Sun", "02:30-03:30", "America/New_York");
	CHECK(or_window_open(&w, U("2026-03-08T06:59:00"), NULL) == 0);
	CHECK(or_window_open(&w, U("2026-03-08T07:00:00"), NULL) == 1);
	time_t n = or_window_next(&w, U("2026-03-08T05:00:00"), NULL);
	CHECKF(n == U("2026-03-08T07:00:00"), "got %s", ts(n));
}

static void test_csv_rfc4180(void)
{
	const char *in =
		"a,b,c\r\n"
		"1,\"x,y\",\"he said \"\"hi\"\"\"\n"
		"\"multi\nline\",,last";
	struct or_csv c = { in, in + strlen(in), 1 };
	char **f = NULL, err[256] = "";
	int n = 0;
	CHECK(or_csv_next(&c, &f, &n, err, sizeof err) == 1);
	CHECKF(n == 3, "n=%d", n);
	if (n == 3)
		CHECK(strcmp(f[0], "a") == 0 && strcmp(f[1], "b") == 0 && strcmp(f[2], "c") == 0);
	int line1 = c.line;
	or_csv_free_fields(f, n);
	f = NULL;
	CHECK(or_csv_next(&c, &f, &n, err, sizeof err) == 1);
	CHECKF(n == 3, "n=%d", n);
	if (n == 3) {
		CHECKF(strcmp(f[0], "1") == 0, "f0=%s", SHOW(f[0]));
		CHECKF(strcmp(f[1], "x,y") == 0, "f1=%s", SHOW(f[1]));
		CHECKF(strcmp(f[2], "he said \"hi\"") == 0, "f2=%s", SHOW(f[2]));
	}
	or_csv_free_fields(f, n);
	f = NULL;
	CHECK(or_csv_next(&c, &f, &n, err, sizeof err) == 1);
	CHECKF(n == 3, "n=%d", n);
	if (n == 3) {
		CHECKF(strcmp(f[0], "multi\nline") == 0, "f0=%s", SHOW(f[0]));
		CHECKF(strcmp(f[1], "") == 0, "f1=%s", SHOW(f[1]));
		CHECKF(strcmp(f[2], "last") == 0, "f2=%s", SHOW(f[2]));
	}
	CHECKF(c.line > line1, "line did not advance: %d then %d", line1, c.line);
	or_csv_free_fields(f, n);
	f = NULL;
	CHECK(or_csv_next(&c, &f, &n, err, sizeof err) == 0);
	CHECK(or_csv_next(&c, &f, &n, err, sizeof err) == 0);
}

static void test_csv_edges(void)
{
	char **f = NULL, err[256] = "";
	int n = 0;
	const char *in = "only\n";
	struct or_csv c = { in, in + strlen(in), 1 };
	CHECK(or_csv_next(&c, &f, &n, err, sizeof err) == 1);
	CHECK(n == 1 && strcmp(f[0], "only") == 0);
	or_csv_free_fields(f, n);
	f = NULL;
	CHECKF(or_csv_next(&c, &f, &n, err, sizeof err) == 0, "a trailing newline is no extra record");

	struct or_csv e = { "", "", 1 };
	CHECK(or_csv_next(&e, &f, &n, err, sizeof err) == 0);

	in = "x,y\n\"abc,d\n";
	struct or_csv u = { in, in + strlen(in), 1 };
	CHECK(or_csv_next(&u, &f, &n, err, sizeof err) == 1);
	or_csv_free_fields(f, n);
	f = NULL;
	err[0] = 0;
	CHECKF(or_csv_next(&u, &f, &n, err, sizeof err) == -1, "unterminated quote accepted");
	CHECK(err[0] != 0);

	in = "\"q\"\"\",\"\"\r\nz,\"a\r\nb\"\r\n";
	struct or_csv q = { in, in + strlen(in), 1 };
	CHECK(or_csv_next(&q, &f, &n, err, sizeof err) == 1);
	CHECKF(n == 2 && strcmp(f[0], "q\"") == 0 && strcmp(f[1], "") == 0, "n=%d", n);
	or_csv_free_fields(f, n);
	f = NULL;
	CHECK(or_csv_next(&q, &f, &n, err, sizeof err) == 1);
	CHECKF(n == 2 && strcmp(f[0], "z") == 0 && f[1][0] == 'a' && f[1][strlen(f[1]) - 1] == 'b' &&
	       strchr(f[1], '\n'), "n=%d", n);
	or_csv_free_fields(f, n);
	f = NULL;
	CHECK(or_csv_next(&q, &f, &n, err, sizeof err) == 0);
}

/* ================================================================ */
/* rendering */

static struct or_kv RVARS[] = {
	{ "first_name", "Иван" },
	{ "n", "5" },
	{ "x", "<a & 'b'> \"c\"" },
};

static struct or_job rjob(void)
{
	struct or_job j;
	memset(&j, 0, sizeof j);
	j.vars = RVARS;
	j.nvars = 3;
	return j;
}

static void expect_render(const char *tmpl, int html, const char *want, const char *file, int line)
{
	struct or_job j = rjob();
	struct or_buf b = {0};
	char err[256] = "";
	int rc = or_render(tmpl, &j, html, &b, err, sizeof err);
	if (rc != 0)
		t_fail(file, line, "or_render == 0", "\"%s\": rc=%d err=%s", tmpl, rc, err);
	else if (!buf_eq(&b, want))
		t_fail(file, line, "rendered as expected", "\"%s\": want \"%s\" got \"%s\"", tmpl, want, SHOWB(b));
	or_buf_free(&b);
}
#define EXPECT_RENDER(t, h, w) expect_render(t, h, w, __FILE__, __LINE__)

static void test_render_placeholders(void)
{
	EXPECT_RENDER("Hi {{first_name}}!", 0, "Hi Иван!");
	EXPECT_RENDER("Hi {{ first_name }}!", 0, "Hi Иван!");
	EXPECT_RENDER("Hi {{first_name }}{{ n}}", 0, "Hi Иван5");
	EXPECT_RENDER("{{n}}{{n}} and {{x}}", 0, "55 and <a & 'b'> \"c\"");
	EXPECT_RENDER("no placeholders", 0, "no placeholders");
	EXPECT_RENDER("", 0, "");
	EXPECT_RENDER("a { b } c }} d {x}", 0, "a { b } c }} d {x}");
	EXPECT_RENDER("<p>{{first_name}}</p>", 1, "<p>Иван</p>");
}

static void test_render_html_escapes(void)
{
	struct or_job j = rjob();
	struct or_buf b = {0};
	char err[256] = "";
	CHECK(or_render("<b>{{x}}</b>", &j, 1, &b, err, sizeof err) == 0);
	char *s = bdup(&b);
	CHECKF(strncmp(s, "<b>", 3) == 0 && strlen(s) > 7 && strcmp(s + strlen(s) - 4, "</b>") == 0, "got %s", s);
	if (strlen(s) > 7) {
		/* the value between the tags: no raw specials, and it unescapes back */
		char *v = strndup(s + 3, strlen(s) - 7);
		CHECKF(strpbrk(v, "<>\"'") == NULL, "raw special in %s", v);
		struct or_buf u = {0};
		for (char *p = v; *p; p++) {
			static const struct { const char *e, *c; } ent[] = {
				{ "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" }, { "&quot;", "\"" },
				{ "&#39;", "'" }, { "&#x27;", "'" }, { "&apos;", "'" }, { "&#34;", "\"" },
			};
			size_t k;
			for (k = 0; k < sizeof ent / sizeof *ent; k++)
				if (strncmp(p, ent[k].e, strlen(ent[k].e)) == 0)
					break;
			if (*p == '&' && k < sizeof ent / sizeof *ent) {
				or_buf_puts(&u, ent[k].c);
				p += strlen(ent[k].e) - 1;
			} else {
				CHECKF(*p != '&', "unescaped & in %s", v);
				or_buf_add(&u, p, 1);
			}
		}
		CHECKF(buf_eq(&u, "<a & 'b'> \"c\""), "unescaped to %s", SHOWB(u));
		or_buf_free(&u);
		free(v);
	}
	free(s);
	or_buf_free(&b);
	EXPECT_RENDER("{{x}}", 0, "<a & 'b'> \"c\"");
}

static void test_render_errors(void)
{
	static const char *bad[] = {
		"Hi {{missing}}", "{{ }}", "{{}}", "{{1abc}}", "Hi {{name", "{{na-me}}",
		"{{ first_name", "{{first name}}", "x {{ first_name }", "{{",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct or_job j = rjob();
		struct or_buf b = {0};
		char err[256] = "";
		int rc = or_render(bad[i], &j, 0, &b, err, sizeof err);
		CHECKF(rc == -1, "\"%s\" rendered as \"%s\"", bad[i], SHOWB(b));
		CHECKF(rc != -1 || err[0], "\"%s\": no reason", bad[i]);
		or_buf_free(&b);
	}
}

/* ================================================================ */
/* RFC 2047 and quoted-printable */

static void check_2047(const char *s, size_t used, const char *file, int line)
{
	struct or_buf b = {0}, d = {0};
	char why[200] = "";
	int nw = 0;
	or_rfc2047(&b, s, used);
	if (rfc2047_decode(b.s ? b.s : "", b.len, &d, &nw, why, sizeof why) != 0) {
		t_fail(file, line, "valid RFC 2047", "%s in %s", why, SHOWB(b));
	} else {
		if (!buf_eq(&d, s))
			t_fail(file, line, "decodes back", "want %s got %s", SHOW(s), SHOWB(d));
		if (nw == 0)
			t_fail(file, line, "encoded", "no encoded words in %s", SHOWB(b));
	}
	/* folding: lines after the first start with a space; no line over 76 */
	for (size_t i = 0, ln = 0, start = 0; i <= b.len; i++) {
		if (i == b.len || (b.s[i] == '\r' && i + 1 < b.len && b.s[i + 1] == '\n')) {
			size_t len = i - start + (ln == 0 ? used : 0);
			if (len > 76)
				t_fail(file, line, "line <= 76", "line %zu is %zu chars (used=%zu)", ln + 1, len, used);
			if (ln > 0 && (start >= b.len || b.s[start] != ' '))
				t_fail(file, line, "fold with CRLF SP", "line %zu does not start with a space", ln + 1);
			ln++;
			start = i + 2;
			i++;
		}
	}
	or_buf_free(&b);
	or_buf_free(&d);
}
#define CHECK_2047(s, used) check_2047(s, used, __FILE__, __LINE__)

static void test_mime_rfc2047_ascii_as_is(void)
{
	struct or_buf b = {0};
	or_rfc2047(&b, "Hello, world", 9);
	CHECKF(buf_eq(&b, "Hello, world"), "got %s", SHOWB(b));
	or_buf_free(&b);
	or_buf_puts(&b, "X");
	or_rfc2047(&b, "appended", 9);
	CHECKF(buf_eq(&b, "Xappended"), "appends: got %s", SHOWB(b));
	or_buf_free(&b);
}

static void test_mime_rfc2047_short(void)
{
	struct or_buf b = {0};
	or_rfc2047(&b, "Привет", 9);
	char *s = bdup(&b);
	CHECKF(strncasecmp(s, "=?UTF-8?", 8) == 0, "got %s", s);
	CHECKF(strchr(s, '\r') == NULL, "one short word needs no fold: %s", SHOW(s));
	free(s);
	or_buf_free(&b);
	CHECK_2047("Привет", 9);
	CHECK_2047("Привет, Иван", 9);
	CHECK_2047("Re: café", 9);
}

static void test_mime_rfc2047_long_cyrillic(void)
{
	char s[1024] = "";
	for (int i = 0; i < 10; i++)
		strcat(s, "Привет, Иван! ");
	CHECK_2047(s, strlen("Subject: "));
	CHECK_2047(s, 0);
	struct or_buf b = {0};
	or_rfc2047(&b, s, 9);
	char *o = bdup(&b);
	CHECKF(strstr(o, "\r\n ") != NULL, "a long value must be folded: %s", SHOW(o));
	/* every folded piece is exactly one encoded word */
	for (char *save = NULL, *w = strtok_r(o, "\r\n", &save); w; w = strtok_r(NULL, "\r\n", &save)) {
		if (*w == ' ')
			w++;
		size_t wl = strlen(w);
		CHECKF(wl >= 8 && strncasecmp(w, "=?UTF-8?B?", 10) == 0 && strcmp(w + wl - 2, "?=") == 0 &&
		       !strchr(w, ' '), "piece %s", SHOW(w));
	}
	free(o);
	or_buf_free(&b);
}

static void test_mime_rfc2047_emoji(void)
{
	char s[1024] = "";
	for (int i = 0; i < 30; i++)
		strcat(s, "😀é");
	CHECK_2047(s, 9);
	char t[512] = "";
	for (int i = 0; i < 5; i++)
		strcat(t, "abc Привет xyz ");
	CHECK_2047(t, 9);
}

static void check_qp(const char *s, const char *file, int line)
{
	struct or_buf b = {0}, d = {0};
	char why[200] = "";
	or_qp(&b, s);
	char *want = crlf(s);
	if (qp_decode(b.s ? b.s : "", b.len, &d, why, sizeof why) != 0)
		t_fail(file, line, "valid quoted-printable", "%s in %s", why, SHOWB(b));
	else if (!buf_eq(&d, want))
		t_fail(file, line, "decodes back", "want %s got %s", SHOW(want), SHOWB(d));
	free(want);
	or_buf_free(&b);
	or_buf_free(&d);
}
#define CHECK_QP(s) check_qp(s, __FILE__, __LINE__)

static void test_mime_qp_basic(void)
{
	struct or_buf b = {0};
	or_qp(&b, "a=b");
	CHECKF(buf_eq(&b, "a=3Db"), "got %s", SHOWB(b));
	or_buf_free(&b);
	or_qp(&b, "é");
	CHECKF(buf_eq(&b, "=C3=A9"), "got %s", SHOWB(b));
	or_buf_free(&b);
	or_qp(&b, "x\ny");
	CHECKF(buf_eq(&b, "x\r\ny"), "got %s", SHOWB(b));
	or_buf_free(&b);
	CHECK_QP("");
	CHECK_QP("Hello = world\n");
	CHECK_QP("line one\r\nline two\nline three");
	CHECK_QP("Привет, Иван!\nВторая строка.\n");
	CHECK_QP("tab\there\n\n\nblank lines above\n");
}

static void test_mime_qp_long_lines(void)
{
	char s[4096];
	memset(s, 'a', 200);
	s[200] = 0;
	CHECK_QP(s);
	memset(s, '=', 300);
	s[300] = 0;
	CHECK_QP(s);
	memset(s, 'b', 76);
	s[76] = '\n';
	s[77] = 0;
	CHECK_QP(s);
	memset(s, 'c', 75);
	s[75] = '=';
	s[76] = 'd';
	s[77] = 0;
	CHECK_QP(s);
	s[0] = 0;
	for (int i = 0; i < 40; i++)
		strcat(s, "Привет, мир! ");
	CHECK_QP(s);
	s[0] = 0;
	for (int i = 0; i < 60; i++)
		strcat(s, "ab ");
	CHECK_QP(s);   /* spaces at every possible soft-break position */
}

static void test_mime_qp_trailing_whitespace(void)
{
	CHECK_QP("trailing space \nnext");
	CHECK_QP("trailing tab\t\r\nnext");
	CHECK_QP("two  \n\n");
	struct or_buf b = {0};
	or_qp(&b, "x \ny");
	CHECKF(buf_eq(&b, "x=20\r\ny"), "got %s", SHOWB(b));
	or_buf_free(&b);
}

static void test_mime_qp_trailing_space_at_end(void)
{
	/* the body's last line is followed by CRLF in the message: encode it too */
	CHECK_QP("ends with a space ");
}

/* ================================================================ */
/* job parsing */

static int parse_job(const char *json, struct or_job *job, char *field, size_t fl, char *err, size_t el)
{
	memset(job, 0, sizeof *job);
	field[0] = 0;
	err[0] = 0;
	return or_job_parse(json, strlen(json), job, field, fl, err, el);
}

/* RFC 2047 §5: an encoded word must not appear in an addr-spec (a reader that
 * decodes it shows another address); in a display name it is only text. */
static void test_job_parse_address_encoded_word(void)
{
	static const char *bad[] = { "=?utf-8?B?YWRtaW4=?=@example.org", "\"=?utf-8?B?YQ==?=\"@example.org",
	                             "Admin <=?utf-8?q?admin?=@example.org>", "a.=?UTF-8?Q?x?=.b@example.org",
	                             "\"=\\?utf-8?B?YQ==?=\"@example.org" };
	char a[OR_MAX_ADDR + 1], n[256];
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CHECKF(or_parse_address(bad[i], a, sizeof a, n, sizeof n) == -1, "accepted %s", bad[i]);
		CHECKF(or_parse_mailbox(bad[i], a, sizeof a, n, sizeof n) == -1, "accepted %s (mailbox)", bad[i]);
	}
	/* '=' and '?' apart are atext: still addresses; "=?" opens an encoded word: refused */
	CHECK(or_parse_address("a=b?c@example.org", a, sizeof a, n, sizeof n) == 0);
	CHECK(or_parse_address("=?UTF-8?B?long@example.org", a, sizeof a, n, sizeof n) == -1);
	CHECK(or_parse_address("=?utf-8?B?SXZhbg==?= <ivan@example.org>", a, sizeof a, n, sizeof n) == 0);
	struct or_job j;
	char field[128], err[256];
	CHECK(parse_job("{\"client\":\"acme\",\"to\":\"=?utf-8?B?YWRtaW4=?=@example.org\",\"subject\":\"Hi\","
	                "\"text\":\"x\"}", &j, field, sizeof field, err, sizeof err) != 0);
	CHECKF(strcmp(field, "to") == 0, "field=%s", field);
	or_job_free(&j);
	struct or_config *cfg = cfg_new();
	CHECK(or_config_load_string(cfg, "spool = \"/tmp/s\"; providers = ( { name = \"p\"; type = \"file\"; dir = \"/tmp/o\"; } );\n"
	                            "senders = ( { name = \"s\"; from = \"=?utf-8?B?YWRtaW4=?=@example.org\"; provider = \"p\"; } );\n",
	                            "t.conf", err, sizeof err) != 0);
	CHECKF(strstr(err, "'from' is not an address") != NULL, "err=%s", err);
	or_config_free(cfg);
	free(cfg);
}

/* RFC 5321 §2.4: the local part is case-sensitive.  The wire form keeps it as
 * written (the domain may be lower-cased); comparisons use the lower-cased one. */
static void test_job_parse_address_case_kept(void)
{
	char a[OR_MAX_ADDR + 1], n[256];
	CHECK(or_parse_mailbox("John <John.Smith@Example.ORG>", a, sizeof a, n, sizeof n) == 0);
	CHECKF(strcmp(a, "John.Smith@example.org") == 0, "addr=%s", a);
	CHECK(or_parse_mailbox("\"Mixed Case\"@Example.ORG", a, sizeof a, n, sizeof n) == 0);
	CHECKF(strcmp(a, "\"Mixed Case\"@example.org") == 0, "addr=%s", a);
	struct or_job j;
	char field[128], err[256];
	int rc = parse_job("{\"client\":\"acme\",\"to\":\"John <John.Smith@Example.ORG>\",\"subject\":\"Hi\",\"text\":\"x\"}",
	                   &j, field, sizeof field, err, sizeof err);
	CHECKF(rc == 0, "field=%s err=%s", field, err);
	if (rc == 0) {
		CHECKF(strcmp(j.addr, "John.Smith@example.org") == 0, "addr=%s", j.addr);
		CHECKF(strcmp(j.rcpt, "john.smith@example.org") == 0, "rcpt=%s", j.rcpt);
		CHECKF(strcmp(j.rcpt_domain, "example.org") == 0, "rcpt_domain=%s", j.rcpt_domain);
		struct or_config *cfg = cfg_new();
		CHECK(or_config_load_string(cfg, "spool = \"/tmp/s\"; providers = ( { name = \"p\"; type = \"file\"; dir = \"/tmp/o\"; } );\n"
		                            "senders = ( { name = \"s\"; from = \"Anna <Anna.K@Acme-Mail.COM>\"; provider = \"p\"; } );\n",
		                            "t.conf", err, sizeof err) == 0);
		CHECKF(strcmp(cfg->senders[0].from_addr, "Anna.K@acme-mail.com") == 0, "from_addr=%s", cfg->senders[0].from_addr);
		CHECKF(strcmp(cfg->senders[0].domain, "acme-mail.com") == 0, "domain=%s", cfg->senders[0].domain);
		struct or_buf msg = { 0 };
		char msgid[512];
		CHECK(or_message_build(cfg, &j, &cfg->senders[0], "0123456789abcdef", 1796029200, &msg, msgid, sizeof msgid,
		                       err, sizeof err) == 0);
		CHECKF(msg.s && strstr(msg.s, "\r\nTo: John <John.Smith@example.org>\r\n"), "%s", SHOW(msg.s));
		CHECKF(msg.s && strstr(msg.s, "\r\nFrom: Anna <Anna.K@acme-mail.com>\r\n"), "%s", SHOW(msg.s));
		or_buf_free(&msg);
		or_config_free(cfg);
		free(cfg);
	}
	or_job_free(&j);
}

static void test_job_parse_minimal(void)
{
	struct or_job j;
	char field[128], err[256];
	int rc = parse_job("{\"client\":\"acme\",\"to\":\"Ivan <IVAN@Example.com>\",\"subject\":\"Hi\",\"text\":\"x\"}",
	                   &j, field, sizeof field, err, sizeof err);
	CHECKF(rc == 0, "field=%s err=%s", field, err);
	if (rc == 0) {
		CHECKF(strcmp(j.rcpt, "ivan@example.com") == 0, "rcpt=%s", j.rcpt);
		CHECKF(strcmp(j.to_name, "Ivan") == 0, "to_name=%s", j.to_name);
		CHECKF(j.campaign && strcmp(j.campaign, "default") == 0, "campaign=%s", SHOW(j.campaign));
		CHECK(j.client && strcmp(j.client, "acme") == 0);
		CHECK(j.subject && strcmp(j.subject, "Hi") == 0);
		CHECK(j.text && strcmp(j.text, "x") == 0);
		CHECK(j.html == NULL);
		CHECK(j.id == NULL);
		CHECKF(j.rcpt_domain && strcmp(j.rcpt_domain, "example.com") == 0, "rcpt_domain=%s", SHOW(j.rcpt_domain));
		CHECK(j.not_before == 0);
		CHECK(j.window.set == 0);
		CHECK(j.nvars == 0 && j.nheaders == 0);
	}
	or_job_free(&j);
}

static const char *FULL_JOB =
	"{\n"
	"  \"id\": \"crm-4711\",\n"
	"  \"client\": \"acme\", \"campaign\": \"q4-fintech\",\n"
	"  \"to\": \"Ivan Petrov <ivan@example.com>\",\n"
	"  \"subject\": \"Привет, {{first_name}}\",\n"
	"  \"text\": \"plain part\", \"html\": \"<p>html part</p>\",\n"
	"  \"vars\": {\"first_name\": \"Иван\", \"n\": 5},\n"
	"  \"headers\": {\"X-Ref\": \"42\"},\n"
	"  \"reply_to\": \"sales@acme.com\",\n"
	"  \"sender\": \"acme-mail.com\",\n"
	"  \"not_before\": \"2026-11-28T09:00:00+03:00\",\n"
	"  \"window\": {\"days\": \"Mon-Fri\", \"hours\": \"09:00-18:00\", \"tz\": \"Europe/Moscow\"}\n"
	"}\n";

static const char *kv_get(const struct or_kv *kv, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (kv[i].key && strcmp(kv[i].key, key) == 0)
			return kv[i].val;
	return NULL;
}

static void test_job_parse_full(void)
{
	struct or_job j;
	char field[128], err[256];
	int rc = parse_job(FULL_JOB, &j, field, sizeof field, err, sizeof err);
	CHECKF(rc == 0, "field=%s err=%s", field, err);
	if (rc == 0) {
		CHECK(j.id && strcmp(j.id, "crm-4711") == 0);
		CHECK(j.campaign && strcmp(j.campaign, "q4-fintech") == 0);
		CHECK(strcmp(j.rcpt, "ivan@example.com") == 0);
		CHECK(strcmp(j.to_name, "Ivan Petrov") == 0);
		CHECK(j.subject && strcmp(j.subject, "Привет, {{first_name}}") == 0);
		CHECK(j.html && strcmp(j.html, "<p>html part</p>") == 0);
		CHECK(j.nvars == 2);
		const char *v = kv_get(j.vars, j.nvars, "first_name");
		CHECKF(v && strcmp(v, "Иван") == 0, "first_name=%s", SHOW(v));
		v = kv_get(j.vars, j.nvars, "n");
		CHECKF(v && strcmp(v, "5") == 0, "n=%s", SHOW(v));
		CHECK(j.nheaders == 1);
		v = kv_get(j.headers, j.nheaders, "X-Ref");
		CHECKF(v && strcmp(v, "42") == 0, "X-Ref=%s", SHOW(v));
		CHECK(j.reply_to && strcmp(j.reply_to, "sales@acme.com") == 0);
		CHECK(j.sender && strcmp(j.sender, "acme-mail.com") == 0);
		CHECKF(j.not_before == 1795845600, "not_before=%s", ts(j.not_before));
		CHECK(j.window.set == 1 && j.window.days == 0x1f);
		CHECK(j.window.start_min == 540 && j.window.end_min == 1080);
		CHECK(strcmp(j.window.tz, "Europe/Moscow") == 0);
	}
	or_job_free(&j);
}

static void test_job_parse_valid_variants(void)
{
	char big[1200], json[1500];
	memset(big, 'v', 998);
	big[998] = 0;
	static const char *ok[] = {
		/* html only, a number var used in the subject */
		"{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"You have {{ n }} new\",\"html\":\"<p>{{n}}</p>\",\"vars\":{\"n\":5}}",
		/* a lone { and }} are fine */
		"{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"a { b }} c\",\"text\":\"{ }\"}",
		/* quoted display name with a comma */
		"{\"client\":\"acme\",\"to\":\"\\\"Petrov, Ivan\\\" <ivan@example.com>\",\"subject\":\"Hi\",\"text\":\"x\"}",
		/* epoch not_before */
		"{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi\",\"text\":\"x\",\"not_before\":\"1795845600\"}",
		/* non-reserved header, multi-line text */
		"{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi\",\"text\":\"a\\nb\\r\\nc\",\"headers\":{\"X-Campaign-Ref\":\"q4\"}}",
	};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		struct or_job j;
		char field[128], err[256];
		int rc = parse_job(ok[i], &j, field, sizeof field, err, sizeof err);
		CHECKF(rc == 0, "refused %s: field=%s err=%s", ok[i], field, err);
		or_job_free(&j);
	}
	snprintf(json, sizeof json,
	         "{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi\",\"text\":\"x\",\"headers\":{\"X-Long\":\"%s\"}}", big);
	struct or_job j;
	char field[128], err[256];
	int rc = parse_job(json, &j, field, sizeof field, err, sizeof err);
	CHECKF(rc == 0, "998-byte header value refused: field=%s err=%s", field, err);
	or_job_free(&j);
}

/* Does field match spec: alternatives split by '|', a trailing '*' is a prefix
 * match, "-" stands for an empty field (invalid bytes found before parsing). */
static int field_match(const char *field, const char *spec)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", spec);
	for (char *save = NULL, *alt = strtok_r(buf, "|", &save); alt; alt = strtok_r(NULL, "|", &save)) {
		size_t n = strlen(alt);
		if (strcmp(alt, "-") == 0) {
			if (!*field)
				return 1;
		} else if (n && alt[n - 1] == '*') {
			if (strncasecmp(field, alt, n - 1) == 0)
				return 1;
		} else if (strcasecmp(field, alt) == 0) {
			return 1;
		}
	}
	return 0;
}

static void expect_job_invalid(const char *what, const char *json, const char *field_spec,
                               const char *file, int line)
{
	struct or_job j;
	char field[128], err[256];
	int rc = parse_job(json, &j, field, sizeof field, err, sizeof err);
	if (rc != -1)
		t_fail(file, line, "invalid", "%s: accepted (rc=%d): %s", what, rc, show(json, strlen(json) > 300 ? 300 : strlen(json)));
	else {
		if (!err[0])
			t_fail(file, line, "err given", "%s: no reason in err", what);
		if (field_spec && !field_match(field, field_spec))
			t_fail(file, line, "field named", "%s: want field %s, got \"%s\" (err=%s)", what, field_spec, field, err);
	}
	or_job_free(&j);
}
#define EXPECT_JOB_INVALID(what, json, spec) expect_job_invalid(what, json, spec, __FILE__, __LINE__)

#define J_BASE "\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi\",\"text\":\"x\""

static void test_job_parse_invalid_structure(void)
{
	EXPECT_JOB_INVALID("not JSON", "not json", NULL);
	EXPECT_JOB_INVALID("truncated", "{\"client\":\"acme\"", NULL);
	EXPECT_JOB_INVALID("array", "[1,2]", NULL);
	EXPECT_JOB_INVALID("array of a job", "[{" J_BASE "}]", NULL);
	EXPECT_JOB_INVALID("string", "\"hello\"", NULL);
	EXPECT_JOB_INVALID("empty", "", NULL);
	EXPECT_JOB_INVALID("trailing junk", "{" J_BASE "} x", NULL);
	EXPECT_JOB_INVALID("unknown field cc", "{" J_BASE ",\"cc\":\"x@y.com\"}", "cc");
	EXPECT_JOB_INVALID("missing client", "{\"to\":\"a@b.com\",\"subject\":\"Hi\",\"text\":\"x\"}", "client");
	EXPECT_JOB_INVALID("missing to", "{\"client\":\"acme\",\"subject\":\"Hi\",\"text\":\"x\"}", "to");
	EXPECT_JOB_INVALID("missing subject", "{\"client\":\"acme\",\"to\":\"a@b.com\",\"text\":\"x\"}", "subject");
	EXPECT_JOB_INVALID("neither text nor html", "{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi\"}", "text|html");
	EXPECT_JOB_INVALID("client a number", "{\"client\":5,\"to\":\"a@b.com\",\"subject\":\"Hi\",\"text\":\"x\"}", "client");
	EXPECT_JOB_INVALID("vars value an object", "{" J_BASE ",\"vars\":{\"first_name\":{\"a\":1}}}", "vars*");
	EXPECT_JOB_INVALID("vars an array", "{" J_BASE ",\"vars\":[1]}", "vars*");
	EXPECT_JOB_INVALID("headers an array", "{" J_BASE ",\"headers\":[\"X-A: b\"]}", "headers*");
}

static void test_job_parse_invalid_addresses(void)
{
	EXPECT_JOB_INVALID("to with CRLF",
		"{\"client\":\"acme\",\"to\":\"a@b.com\\r\\nBcc: x@y.com\",\"subject\":\"Hi\",\"text\":\"x\"}", "to");
	EXPECT_JOB_INVALID("to with LF",
		"{\"client\":\"acme\",\"to\":\"a@b.com\\nBcc: x@y.com\",\"subject\":\"Hi\",\"text\":\"x\"}", "to");
	EXPECT_JOB_INVALID("to not an address",
		"{\"client\":\"acme\",\"to\":\"ivan\",\"subject\":\"Hi\",\"text\":\"x\"}", "to");
	EXPECT_JOB_INVALID("reply_to not an address", "{" J_BASE ",\"reply_to\":\"nope\"}", "reply_to");
	EXPECT_JOB_INVALID("subject with CRLF",
		"{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi\\r\\nBcc: x@y.com\",\"text\":\"x\"}", "subject");
}

static void test_job_parse_invalid_headers(void)
{
	static const char *reserved[] = {
		"From", "Bcc", "Content-Type", "content-transfer-encoding", "X-Outreach-Job",
		"List-Unsubscribe", "DKIM-Signature", "To", "Cc", "Subject", "Date", "Message-ID",
		"MIME-Version", "Reply-To", "Return-Path", "Received", "List-Unsubscribe-Post",
		"X-Outreach-Anything",
	};
	char json[2600], spec[128];
	for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) {
		snprintf(json, sizeof json, "{" J_BASE ",\"headers\":{\"%s\":\"v\"}}", reserved[i]);
		snprintf(spec, sizeof spec, "headers.%s", reserved[i]);
		EXPECT_JOB_INVALID(reserved[i], json, spec);
	}
	char big[1000];
	memset(big, 'v', 999);
	big[999] = 0;
	snprintf(json, sizeof json, "{" J_BASE ",\"headers\":{\"X-Long\":\"%s\"}}", big);
	EXPECT_JOB_INVALID("header value of 999 bytes", json, "headers.X-Long");
	EXPECT_JOB_INVALID("header name with space", "{" J_BASE ",\"headers\":{\"X Ref\":\"1\"}}", "headers.X Ref|headers*");
	EXPECT_JOB_INVALID("header name with colon", "{" J_BASE ",\"headers\":{\"X:Ref\":\"1\"}}", "headers.X:Ref|headers*");
	EXPECT_JOB_INVALID("empty header name", "{" J_BASE ",\"headers\":{\"\":\"1\"}}", "headers*");
	EXPECT_JOB_INVALID("header value with CRLF",
		"{" J_BASE ",\"headers\":{\"X-Ref\":\"1\\r\\nBcc: x@y.com\"}}", "headers.X-Ref");
}

static void test_job_parse_invalid_content(void)
{
	EXPECT_JOB_INVALID("invalid UTF-8 in subject",
		"{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi \xff\xfe\",\"text\":\"x\"}", "subject|-");
	EXPECT_JOB_INVALID("invalid UTF-8 in text",
		"{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi\",\"text\":\"x \xc0\xaf\"}", "text|-");
	EXPECT_JOB_INVALID("NUL in text via \\u0000",
		"{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi\",\"text\":\"a\\u0000b\"}", "text");
	EXPECT_JOB_INVALID("window with bad days",
		"{" J_BASE ",\"window\":{\"days\":\"Mon-Funday\",\"hours\":\"09:00-18:00\"}}", "window*");
	EXPECT_JOB_INVALID("window with bad hours",
		"{" J_BASE ",\"window\":{\"days\":\"Mon-Fri\",\"hours\":\"09:00-09:00\"}}", "window*");
	EXPECT_JOB_INVALID("not_before garbage", "{" J_BASE ",\"not_before\":\"soon\"}", "not_before");
	EXPECT_JOB_INVALID("missing var in subject",
		"{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi {{first_name}}\",\"text\":\"x\"}", "subject");
	EXPECT_JOB_INVALID("bad placeholder in subject",
		"{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi {{ bad\",\"text\":\"x\"}", "subject");
	EXPECT_JOB_INVALID("missing var in html",
		"{\"client\":\"acme\",\"to\":\"a@b.com\",\"subject\":\"Hi\",\"html\":\"<p>{{x}}</p>\"}", "html");
	char json[600], longc[200];
	memset(longc, 'c', OR_MAX_LABEL + 1);
	longc[OR_MAX_LABEL + 1] = 0;
	snprintf(json, sizeof json, "{\"client\":\"%s\",\"to\":\"a@b.com\",\"subject\":\"Hi\",\"text\":\"x\"}", longc);
	EXPECT_JOB_INVALID("client longer than OR_MAX_LABEL", json, "client");
}

static void test_job_ids(void)
{
	struct or_job j;
	char field[128], err[256], prod[OR_MAX_ID + 64], led[OR_ID_HEX + 1];
	CHECK(parse_job(FULL_JOB, &j, field, sizeof field, err, sizeof err) == 0);
	memset(led, 0, sizeof led);
	or_job_ids(&j, prod, sizeof prod, led);
	CHECKF(strcmp(prod, "crm-4711") == 0, "producer=%s", prod);
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)"acme\0crm-4711", 13);
	char want[OR_ID_HEX + 1];
	for (int i = 0; i < OR_ID_HEX / 2; i++)
		sprintf(want + 2 * i, "%02x", h[i]);
	CHECKF(strcmp(led, want) == 0, "ledger=%s want %s", led, want);
	or_job_free(&j);

	/* no id: "h-" + 24 hex, case of the recipient does not matter, content does */
	char p1[OR_MAX_ID + 64], p2[OR_MAX_ID + 64], p3[OR_MAX_ID + 64], l1[17], l2[17], l3[17];
	CHECK(parse_job("{\"client\":\"acme\",\"to\":\"IVAN@Example.com\",\"subject\":\"Hi\",\"text\":\"x\"}",
	                &j, field, sizeof field, err, sizeof err) == 0);
	or_job_ids(&j, p1, sizeof p1, l1);
	or_job_free(&j);
	CHECK(parse_job("{\"client\":\"acme\",\"to\":\"ivan@example.com\",\"subject\":\"Hi\",\"text\":\"x\"}",
	                &j, field, sizeof field, err, sizeof err) == 0);
	or_job_ids(&j, p2, sizeof p2, l2);
	or_job_free(&j);
	CHECK(parse_job("{\"client\":\"acme\",\"to\":\"ivan@example.com\",\"subject\":\"Hi!\",\"text\":\"x\"}",
	                &j, field, sizeof field, err, sizeof err) == 0);
	or_job_ids(&j, p3, sizeof p3, l3);
	or_job_free(&j);
	CHECKF(strncmp(p1, "h-", 2) == 0 && strlen(p1) == 26 && strspn(p1 + 2, "0123456789abcdef") == 24,
	       "producer=%s", p1);
	CHECKF(strcmp(p1, p2) == 0 && strcmp(l1, l2) == 0, "recipient case changed the id: %s %s", p1, p2);
	CHECK(strcmp(p1, p3) != 0 && strcmp(l1, l3) != 0);
	CHECK(strlen(l1) == OR_ID_HEX && strspn(l1, "0123456789abcdef") == OR_ID_HEX);
}

/* ================================================================ */
/* message building */

struct msg {
	struct or_buf m;
	char *head, *body;    /* copies: head (with final CRLF), body */
	size_t headlen, bodylen;
	char msgid[512];
	int rc;
	char err[256];
};

static void msg_free(struct msg *m)
{
	or_buf_free(&m->m);
	free(m->head);
	free(m->body);
}

/* Builds the message of a job (JSON) from sender 0 of VALID_CONF. */
static int build(const char *json, struct msg *out, time_t date)
{
	struct or_config *cfg = cfg_new();
	struct or_job j;
	char field[128], err[256];
	memset(out, 0, sizeof *out);
	out->rc = -2;
	if (or_config_load_string(cfg, VALID_CONF, "test.conf", err, sizeof err) != 0) {
		CHECKF(0, "config: %s", err);
		free(cfg);
		return -1;
	}
	if (parse_job(json, &j, field, sizeof field, err, sizeof err) != 0) {
		CHECKF(0, "job refused: field=%s err=%s", field, err);
		or_job_free(&j);
		or_config_free(cfg);
		free(cfg);
		return -1;
	}
	out->rc = or_message_build(cfg, &j, &cfg->senders[0], "0123456789abcdef", date, &out->m,
	                           out->msgid, sizeof out->msgid, out->err, sizeof out->err);
	or_job_free(&j);
	or_config_free(cfg);
	free(cfg);
	CHECKF(out->rc == 0, "or_message_build: %s", out->err);
	if (out->rc != 0)
		return -1;
	const char *sep = out->m.s ? memmem(out->m.s, out->m.len, "\r\n\r\n", 4) : NULL;
	CHECKF(sep != NULL, "no blank line between header and body");
	if (!sep)
		return -1;
	out->headlen = (size_t)(sep - out->m.s) + 2;
	out->head = strndup(out->m.s, out->headlen);
	out->bodylen = out->m.len - out->headlen - 2;
	out->body = malloc(out->bodylen + 1);
	memcpy(out->body, sep + 4, out->bodylen);
	out->body[out->bodylen] = 0;
	return 0;
}

/* The shape every message must have. */
static void check_wire(const struct msg *m, const char *file, int line)
{
	int bare = 0;
	size_t ml = max_line(m->m.s, m->m.len, &bare);
	if (ml > 998)
		t_fail(file, line, "lines <= 998", "longest line %zu octets", ml);
	if (bare)
		t_fail(file, line, "CRLF only", "bare CR or LF in message");
	for (size_t i = 0; i < m->headlen; i++)
		if ((unsigned char)m->head[i] >= 128) {
			t_fail(file, line, "7-bit header", "8-bit byte in header at %zu", i);
			break;
		}
	static const char *must[] = { "Date", "Message-ID", "From", "To", "Subject", "MIME-Version", "X-Outreach-Job" };
	for (size_t i = 0; i < sizeof must / sizeof *must; i++) {
		int cnt = 0;
		char *v = hdr_get(m->head, m->headlen, must[i], &cnt);
		if (cnt != 1)
			t_fail(file, line, "header once", "%s occurs %d times", must[i], cnt);
		free(v);
	}
}
#define CHECK_WIRE(m) check_wire(m, __FILE__, __LINE__)

static const char *MSG_JOB =
	"{\"client\":\"acme\",\"to\":\"Иван Петров <IVAN@Example.com>\","
	"\"subject\":\"Привет, {{first_name}}\","
	"\"text\":\"Привет, {{first_name}}!\\nВторая строка = ok\\n\","
	"\"html\":\"<p>Привет, {{first_name}} &amp; {{co}}</p>\","
	"\"vars\":{\"first_name\":\"Иван\",\"co\":\"A&B\"},"
	"\"headers\":{\"X-Ref\":\"42\"},"
	"\"reply_to\":\"sales@acme.com\"}";

static void test_mime_message_headers(void)
{
	struct msg m;
	time_t date = 1795845600;
	if (build(MSG_JOB, &m, date) != 0) {
		msg_free(&m);
		return;
	}
	CHECK_WIRE(&m);
	char *v, dbuf[64];
	or_fmt_rfc5322(date, dbuf, sizeof dbuf);
	v = hdr_get(m.head, m.headlen, "Date", NULL);
	CHECKF(v && strcmp(v, dbuf) == 0, "Date: %s want %s", SHOW(v), dbuf);
	free(v);
	v = hdr_get(m.head, m.headlen, "Message-ID", NULL);
	CHECKF(v && v[0] == '<' && strlen(v) > 16 && strcmp(v + strlen(v) - 15, "@acme-mail.com>") == 0,
	       "Message-ID: %s", SHOW(v));
	CHECKF(v && strcmp(m.msgid, v) == 0, "msgid %s != header %s", m.msgid, SHOW(v));
	free(v);
	v = hdr_get(m.head, m.headlen, "From", NULL);
	CHECKF(v && strstr(v, "anna@acme-mail.com") && strstr(v, "Anna"), "From: %s", SHOW(v));
	free(v);
	v = hdr_get(m.head, m.headlen, "To", NULL);
	CHECKF(v && strcasestr(v, "ivan@example.com"), "To: %s", SHOW(v));
	if (v) {
		struct or_buf d = {0};
		char why[200] = "";
		int nw = 0;
		int rc = rfc2047_decode(v, strlen(v), &d, &nw, why, sizeof why);
		char *ds = bdup(&d);
		CHECKF(rc == 0 && strstr(ds, "Иван Петров"), "To decodes to %s (%s)", SHOW(ds), why);
		free(ds);
		or_buf_free(&d);
	}
	free(v);
	v = hdr_get(m.head, m.headlen, "Subject", NULL);
	CHECKF(v && strncasecmp(v, "=?UTF-8?", 8) == 0, "Subject: %s", SHOW(v));
	if (v) {
		struct or_buf d = {0};
		char why[200] = "";
		int nw = 0;
		int rc = rfc2047_decode(v, strlen(v), &d, &nw, why, sizeof why);
		CHECKF(rc == 0 && buf_eq(&d, "Привет, Иван"), "Subject decodes to %s (%s)", SHOWB(d), why);
		or_buf_free(&d);
	}
	free(v);
	v = hdr_get(m.head, m.headlen, "MIME-Version", NULL);
	CHECKF(v && strcmp(v, "1.0") == 0, "MIME-Version: %s", SHOW(v));
	free(v);
	v = hdr_get(m.head, m.headlen, "X-Outreach-Job", NULL);
	CHECKF(v && strcmp(v, "0123456789abcdef") == 0, "X-Outreach-Job: %s", SHOW(v));
	free(v);
	v = hdr_get(m.head, m.headlen, "X-Ref", NULL);
	CHECKF(v && strcmp(v, "42") == 0, "X-Ref: %s", SHOW(v));
	free(v);
	v = hdr_get(m.head, m.headlen, "Reply-To", NULL);
	CHECKF(v && strstr(v, "sales@acme.com"), "Reply-To: %s", SHOW(v));
	free(v);
	msg_free(&m);
}

static void test_mime_message_alternative(void)
{
	struct msg m;
	if (build(MSG_JOB, &m, 1795845600) != 0) {
		msg_free(&m);
		return;
	}
	char *ct = hdr_get(m.head, m.headlen, "Content-Type", NULL);
	CHECKF(ct && strcasestr(ct, "multipart/alternative"), "Content-Type: %s", SHOW(ct));
	char *bnd = ct ? ct_param(ct, "boundary") : NULL;
	CHECKF(bnd && *bnd, "no boundary in %s", SHOW(ct));
	int seen_text = 0, seen_html = 0, nparts = 0;
	if (bnd && *bnd) {
		char delim[300];
		snprintf(delim, sizeof delim, "--%s", bnd);
		size_t dl = strlen(delim);
		/* the boundary must not occur inside the parts' content */
		const char *p = m.body, *end = m.body + m.bodylen;
		const char *cur = memmem(p, m.bodylen, delim, dl);
		CHECK(cur != NULL);
		while (cur) {
			const char *after = cur + dl;
			if (after + 2 <= end && after[0] == '-' && after[1] == '-')
				break;   /* closing delimiter */
			CHECKF(after + 2 <= end && after[0] == '\r' && after[1] == '\n', "delimiter not followed by CRLF");
			const char *ps = after + 2;
			const char *next = NULL;
			for (const char *q = ps; q + dl + 2 <= end; q++)
				if (q[0] == '\r' && q[1] == '\n' && memcmp(q + 2, delim, dl) == 0) { next = q; break; }
			CHECKF(next != NULL, "unterminated part %d", nparts + 1);
			if (!next)
				break;
			struct part pt;
			char why[200] = "";
			nparts++;
			if (part_parse(ps, (size_t)(next - ps), &pt, why, sizeof why) != 0) {
				CHECKF(0, "part %d: %s", nparts, why);
			} else {
				char *txt = norm_text(&pt.body);
				if (pt.ctype && strcasestr(pt.ctype, "text/plain")) {
					seen_text++;
					CHECKF(strcasestr(pt.ctype, "charset=utf-8") || strcasestr(pt.ctype, "charset=\"utf-8\""),
					       "text part: %s", pt.ctype);
					CHECKF(strcmp(txt, "Привет, Иван!\nВторая строка = ok") == 0, "text part decodes to %s", SHOW(txt));
				} else if (pt.ctype && strcasestr(pt.ctype, "text/html")) {
					seen_html++;
					CHECKF(strcasestr(pt.ctype, "charset=utf-8") || strcasestr(pt.ctype, "charset=\"utf-8\""),
					       "html part: %s", pt.ctype);
					CHECKF(strcmp(txt, "<p>Привет, Иван &amp; A&amp;B</p>") == 0, "html part decodes to %s", SHOW(txt));
				} else {
					CHECKF(0, "unexpected part type %s", SHOW(pt.ctype));
				}
				free(txt);
			}
			part_free(&pt);
			cur = next + 2;
		}
	}
	CHECKF(nparts == 2 && seen_text == 1 && seen_html == 1, "parts=%d text=%d html=%d", nparts, seen_text, seen_html);
	free(bnd);
	free(ct);
	msg_free(&m);
}

static void test_mime_message_text_only(void)
{
	struct msg m;
	if (build("{\"client\":\"acme\",\"to\":\"ivan@example.com\",\"subject\":\"Hi there\",\"text\":\"Hello\\nworld é\"}",
	          &m, 1795845600) != 0) {
		msg_free(&m);
		return;
	}
	CHECK_WIRE(&m);
	char *ct = hdr_get(m.head, m.headlen, "Content-Type", NULL);
	CHECKF(ct && strcasestr(ct, "text/plain") && !strcasestr(ct, "multipart"), "Content-Type: %s", SHOW(ct));
	CHECKF(ct && (strcasestr(ct, "charset=utf-8") || strcasestr(ct, "charset=\"utf-8\"")), "Content-Type: %s", SHOW(ct));
	char *s = hdr_get(m.head, m.headlen, "Subject", NULL);
	CHECKF(s && strcmp(s, "Hi there") == 0, "ASCII subject as is: %s", SHOW(s));
	free(s);
	char *rt = hdr_get(m.head, m.headlen, "Reply-To", NULL);
	CHECKF(rt == NULL, "Reply-To without reply_to: %s", rt);
	free(rt);
	/* decode the single part with the top-level headers */
	struct part pt;
	char why[200] = "";
	if (part_parse(m.m.s, m.m.len, &pt, why, sizeof why) != 0) {
		CHECKF(0, "body: %s", why);
	} else {
		char *txt = norm_text(&pt.body);
		CHECKF(strcmp(txt, "Hello\nworld é") == 0, "body decodes to %s", SHOW(txt));
		free(txt);
	}
	part_free(&pt);
	free(ct);
	msg_free(&m);
}

static void test_mime_message_long_lines(void)
{
	/* a 3000-character text line without spaces, a long header value with spaces */
	struct or_buf j = {0};
	or_buf_puts(&j, "{\"client\":\"acme\",\"to\":\"ivan@example.com\",\"subject\":\"");
	for (int i = 0; i < 30; i++)
		or_buf_puts(&j, "Длинная тема ");
	or_buf_puts(&j, "\",\"text\":\"");
	for (int i = 0; i < 3000; i++)
		or_buf_puts(&j, i % 2 ? "ж" : "x");
	or_buf_puts(&j, "\",\"html\":\"<p>");
	for (int i = 0; i < 3000; i++)
		or_buf_puts(&j, "y");
	or_buf_puts(&j, "</p>\",\"headers\":{\"X-Long\":\"");
	for (int i = 0; i < 199; i++)
		or_buf_puts(&j, "word ");
	or_buf_puts(&j, "end\"}}");
	char *json = bdup(&j);
	or_buf_free(&j);
	struct msg m;
	if (build(json, &m, 1795845600) == 0) {
		CHECK_WIRE(&m);
		char *v = hdr_get(m.head, m.headlen, "X-Long", NULL);
		CHECK(v != NULL);
		if (v) {
			/* folded and/or RFC 2047 encoded, it decodes to the value given */
			struct or_buf u = {0}, want = {0};
			char why[200] = "";
			int nw = 0;
			for (int i = 0; i < 199; i++)
				or_buf_puts(&want, "word ");
			or_buf_puts(&want, "end");
			int rc = rfc2047_decode(v, strlen(v), &u, &nw, why, sizeof why);
			/* a plain fold keeps the space it breaks at: drop CRLF only */
			if (rc == 0 && nw == 0) {
				or_buf_free(&u);
				for (char *p = v; *p; p++) {
					if (p[0] == '\r' && p[1] == '\n') { p++; continue; }
					or_buf_add(&u, p, 1);
				}
			}
			CHECKF(rc == 0 && u.len == want.len && memcmp(u.s, want.s, u.len) == 0,
			       "X-Long decodes to %s (%s)", SHOWB(u), why);
			or_buf_free(&u);
			or_buf_free(&want);
		}
		free(v);
	}
	free(json);
	msg_free(&m);
}

/* ================================================================ */
/* store: the statement cache and the claim query */

/* A fresh ledger under a temporary directory; *dir gets its path. */
static sqlite3 *store_open(char *dir)
{
	struct or_config *cfg = cfg_new();
	char conf[512], err[512] = "";
	if (!mkdtemp(dir))
		return NULL;
	snprintf(conf, sizeof conf, "spool = \"%s\";\n%s", dir, strchr(VALID_CONF, '\n') + 1);
	int rc = or_config_load_string(cfg, conf, "test.conf", err, sizeof err);
	if (rc == 0) {
		rc = or_db_open(cfg, 1, err, sizeof err);
		or_config_free(cfg);
	}
	free(cfg);
	if (rc != 0) {
		printf("#   %s\n", err);
		return NULL;
	}
	return sqlite3_db_handle(or_q("SELECT 1", ""));
}

static void store_rm(const char *dir)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("#   could not remove %s\n", dir);
}

static int store_nstmts(sqlite3 *db)
{
	int n = 0;
	for (sqlite3_stmt *p = sqlite3_next_stmt(db, NULL); p; p = sqlite3_next_stmt(db, p))
		n++;
	return n;
}

/* 130 call sites, more than the old cache's 96 slots: each keeps one
 * statement however often it is called, and closing finalizes them all. */
#define Q1(s) n += or_q("SELECT " s, "") != NULL;
#define Q10(s) Q1(s "0") Q1(s "1") Q1(s "2") Q1(s "3") Q1(s "4") Q1(s "5") Q1(s "6") Q1(s "7") Q1(s "8") Q1(s "9")
static void test_store_stmt_cache_per_site(void)
{
	char dir[] = "/tmp/outreach-unit-XXXXXX";
	sqlite3 *db = store_open(dir);
	int n = 0, before;
	CHECK(db != NULL);
	if (!db)
		return;
	before = store_nstmts(db);
	for (int round = 0; round < 3; round++) {
		Q10("1") Q10("2") Q10("3") Q10("4") Q10("5") Q10("6") Q10("7")
		Q10("8") Q10("9") Q10("10") Q10("11") Q10("12") Q10("13")
	}
	CHECK(n == 3 * 130);
	CHECKF(store_nstmts(db) - before == 130, "%d statements for 130 call sites", store_nstmts(db) - before);
	or_db_close();   /* exits 70 if a statement were left unfinalized */
	store_rm(dir);
}
#undef Q10
#undef Q1

/* Jobs scheduled for one not_before share next_due: the claim query still
 * reads its job straight from the index, no sort over all of them (a run over
 * N such jobs used to cost N^2). */
static void test_store_claim_reads_index_order(void)
{
	char dir[] = "/tmp/outreach-unit-XXXXXX";
	sqlite3 *db = store_open(dir);
	CHECK(db != NULL);
	if (!db)
		return;
	CHECK(sqlite3_exec(db, "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 3000) "
	                   "INSERT INTO jobs(id, client, campaign, rcpt, rcpt_domain, state, next_due, created_at, updated_at) "
	                   "SELECT printf('%016x', i), 'c', 'k', 'r' || i || '@x.example', 'x.example', 'waiting', 1000, "
	                   "5000 - i, 0 FROM k", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_stmt *st = or_q(or_claim_sql, "td", "c", 2000.0);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECKF(strcmp((const char *)sqlite3_column_text(st, 0), "0000000000000bb8") == 0, "claimed %s, not the oldest",
	       (const char *)sqlite3_column_text(st, 0));
	int sorts = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_SORT, 0);
	int steps = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0);
	CHECKF(sorts == 0, "%d sorts", sorts);
	CHECKF(steps < 300, "%d VM steps for one claim among 3000 waiting", steps);
	sqlite3_reset(st);
	or_db_close();
	store_rm(dir);
}

/* ================================================================ */
/* store: backoff and rotation */

static void test_store_backoff_bounds(void)
{
	struct or_config *cfg = cfg_new();
	cfg->retry_first = 60;
	cfg->retry_max = 21600;
	cfg->max_attempts = 8;
	setenv("OUTREACH_SEED", "42", 1);
	or_random_init();
	for (int k = 0; k < 200; k++) {
		double d1 = or_backoff(cfg, 1), d2 = or_backoff(cfg, 2), d3 = or_backoff(cfg, 3);
		double d20 = or_backoff(cfg, 20), d64 = or_backoff(cfg, 64), d1000 = or_backoff(cfg, 1000);
		CHECKF(d1 >= 30 && d1 <= 60, "attempt 1: %g", d1);
		CHECKF(d2 >= 60 && d2 <= 120, "attempt 2: %g", d2);
		CHECKF(d3 >= 120 && d3 <= 240, "attempt 3: %g", d3);
		CHECKF(d20 >= 10800 && d20 <= 21600, "attempt 20: %g", d20);
		CHECKF(d64 >= 10800 && d64 <= 21600, "attempt 64: %g", d64);
		CHECKF(d1000 >= 10800 && d1000 <= 21600, "attempt 1000: %g", d1000);
		if (t_failed_checks)
			break;
	}
	unsetenv("OUTREACH_SEED");
	free(cfg);
}

static void test_store_backoff_seeded(void)
{
	struct or_config *cfg = cfg_new();
	cfg->retry_first = 60;
	cfg->retry_max = 21600;
	double a[12], b[12];
	setenv("OUTREACH_SEED", "42", 1);
	or_random_init();
	for (int i = 0; i < 12; i++)
		a[i] = or_backoff(cfg, i % 6 + 1);
	or_random_init();
	for (int i = 0; i < 12; i++)
		b[i] = or_backoff(cfg, i % 6 + 1);
	CHECK(memcmp(a, b, sizeof a) == 0);
	/* the jitter actually varies */
	CHECK(a[0] != a[6] || a[1] != a[7] || a[2] != a[8]);
	setenv("OUTREACH_SEED", "43", 1);
	or_random_init();
	int same = 0;
	for (int i = 0; i < 12; i++)
		same += or_backoff(cfg, i % 6 + 1) == a[i];
	CHECKF(same < 12, "seed 43 gave the same sequence as 42");
	unsetenv("OUTREACH_SEED");
	free(cfg);
}

static void test_store_pick_round_robin(void)
{
	struct or_config *cfg = cfg_new();
	cfg->rotation = OR_ROT_ROUND_ROBIN;
	int el[] = { 0, 2, 5 }, rem[] = { 10, 10, 10 };
	CHECKF(or_pick_sender(cfg, el, 3, rem, 2) == 5, "got %d", or_pick_sender(cfg, el, 3, rem, 2));
	CHECKF(or_pick_sender(cfg, el, 3, rem, 5) == 0, "wrap: got %d", or_pick_sender(cfg, el, 3, rem, 5));
	CHECKF(or_pick_sender(cfg, el, 3, rem, -1) == 0, "got %d", or_pick_sender(cfg, el, 3, rem, -1));
	CHECKF(or_pick_sender(cfg, el, 3, rem, 3) == 5, "got %d", or_pick_sender(cfg, el, 3, rem, 3));
	CHECKF(or_pick_sender(cfg, el, 3, rem, 0) == 2, "got %d", or_pick_sender(cfg, el, 3, rem, 0));
	CHECKF(or_pick_sender(cfg, el, 3, rem, 9) == 0, "got %d", or_pick_sender(cfg, el, 3, rem, 9));
	int one[] = { 4 }, r1[] = { 1 };
	CHECK(or_pick_sender(cfg, one, 1, r1, 4) == 4);
	/* a full cycle visits every eligible sender once */
	int last = -1, seen[6] = {0};
	for (int i = 0; i < 3; i++) {
		last = or_pick_sender(cfg, el, 3, rem, last);
		if (last >= 0 && last < 6)
			seen[last]++;
	}
	CHECK(seen[0] == 1 && seen[2] == 1 && seen[5] == 1);
	free(cfg);
}

static void test_store_pick_quota(void)
{
	struct or_config *cfg = cfg_new();
	cfg->rotation = OR_ROT_QUOTA;
	int el[] = { 1, 3, 4 };
	int r1[] = { 5, 9, 9 }, r2[] = { 10, 2, 3 }, r3[] = { 0, 0, 7 }, r4[] = { 4, 4, 4 };
	CHECKF(or_pick_sender(cfg, el, 3, r1, -1) == 3, "tie to lowest: got %d", or_pick_sender(cfg, el, 3, r1, -1));
	CHECKF(or_pick_sender(cfg, el, 3, r2, 1) == 1, "got %d", or_pick_sender(cfg, el, 3, r2, 1));
	CHECKF(or_pick_sender(cfg, el, 3, r3, 4) == 4, "got %d", or_pick_sender(cfg, el, 3, r3, 4));
	CHECKF(or_pick_sender(cfg, el, 3, r4, 1) == 1, "got %d", or_pick_sender(cfg, el, 3, r4, 1));
	free(cfg);
}


/* ================================================================ */
/* SigV4 against AWS's signing test suite and the SES/SQS vectors */

static char *t_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct or_buf b = { 0 };
	char buf[4096];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		or_buf_add(&b, buf, n);
	fclose(f);
	or_buf_add(&b, "", 0);
	if (len)
		*len = b.len;
	return b.s;
}

static const char *t_sigv4_dir(void)
{
	return "tests/data/specs/sigv4";
}

/* Signs the case in dir (request.txt + context.json) and compares the
 * canonical request, string to sign and signature with the expected files.
 * Returns 1 when all three match. */
static int t_sigv4_case(const char *dir, const char *region, const char *service, const char *token)
{
	char path[1024], *req, *want_canon, *want_sts, *want_sig, *p, *body;
	const char *headers[64];
	char method[16] = "", target[2048] = "", *owned[8];
	int nh = 0, ok, nj = 0;
	struct or_buf canon = { 0 }, sts = { 0 }, auth = { 0 };

	snprintf(path, sizeof path, "%s/request.txt", dir);
	if (!(req = t_slurp(path, NULL)))
		return 0;
	/* request line, header lines (continuations folded), blank line, body */
	p = strchr(req, '\n');
	*p = 0;
	sscanf(req, "%15s %2047[^\n]", method, target);
	char *sp = strrchr(target, ' ');
	if (sp)
		*sp = 0;   /* drop " HTTP/1.1" */
	p++;
	body = NULL;
	while (*p) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = 0;
		if (*p == 0) {
			body = nl ? nl + 1 : p;
			break;
		}
		if ((*p == ' ' || *p == '\t') && nh > 0) {
			char *joined = malloc(strlen(headers[nh - 1]) + strlen(p) + 2);
			sprintf(joined, "%s %s", headers[nh - 1], p);
			headers[nh - 1] = joined;
			if (nj < 8)
				owned[nj++] = joined;   /* freed below (LeakSanitizer watches) */
		} else if (nh < 64) {
			headers[nh++] = p;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	struct or_sigv4_req r = { method, target, headers, nh, body ? body : "", body ? strlen(body) : 0,
	                          region, service, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	                          token, "20150830T123600Z" };
	or_sigv4(&r, &canon, &sts, &auth);
	snprintf(path, sizeof path, "%s/header-canonical-request.txt", dir);
	want_canon = t_slurp(path, NULL);
	snprintf(path, sizeof path, "%s/header-string-to-sign.txt", dir);
	want_sts = t_slurp(path, NULL);
	snprintf(path, sizeof path, "%s/header-signature.txt", dir);
	want_sig = t_slurp(path, NULL);
	ok = want_canon && want_sts && want_sig && !strcmp(canon.s, want_canon) && !strcmp(sts.s, want_sts) &&
	     strstr(auth.s, want_sig) != NULL;
	if (!ok)
		printf("#   %s:\n#   canonical:\n%s\n#   want:\n%s\n", dir, canon.s, want_canon ? want_canon : "(none)");
	free(req);
	for (int i = 0; i < nj; i++)
		free(owned[i]);
	free(want_canon);
	free(want_sts);
	free(want_sig);
	or_buf_free(&canon);
	or_buf_free(&sts);
	or_buf_free(&auth);
	return ok;
}

static void test_crypto_sigv4_aws_suite(void)
{
	char path[1024];
	DIR *d;
	struct dirent *de;
	int cases = 0;

	snprintf(path, sizeof path, "%s/v4", t_sigv4_dir());
	CHECKF((d = opendir(path)) != NULL, "cannot open %s", path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char dir[1400], *ctx;
		if (de->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof dir, "%s/%s", path, de->d_name);
		snprintf(path + strlen(path), sizeof path - strlen(path), "%s", "");
		char cpath[1500];
		snprintf(cpath, sizeof cpath, "%s/context.json", dir);
		if (!(ctx = t_slurp(cpath, NULL)))
			continue;
		/* the plain header cases: no body signing, normalised paths, token signed */
		/* the header cases a SES/SQS signer must pass: no body signing (an S3
		 * habit), normalised paths; omit_session_token means the token is
		 * added after signing, so it is signed without one */
		int plain = !strstr(ctx, "\"sign_body\": true") && !strstr(ctx, "\"normalize\": false");
		int omit = strstr(ctx, "\"omit_session_token\": true") != NULL;
		const char *tok = strstr(ctx, "\"token\"");
		char token[1024] = "";
		if (tok)
			sscanf(tok, "\"token\": \"%1023[^\"]\"", token);
		free(ctx);
		if (!plain)
			continue;
		cases++;
		CHECKF(t_sigv4_case(dir, "us-east-1", "service", *token && !omit ? token : NULL), "vector %s", de->d_name);
	}
	closedir(d);
	/* 38 cases less 7 S3-style unnormalised and 2 that sign the body (the 28
	 * "plain" ones of providers.md plus post-sts-header-after) */
	CHECKF(cases == 29, "expected 29 header cases, found %d", cases);
}

static void test_crypto_sigv4_ses_sqs(void)
{
	const char *cases[][3] = { { "ses-v2-sendemail", "ses" }, { "ses-v2-listsuppresseddestinations", "ses" },
	                           { "sqs-json-receivemessage", "sqs" } };
	for (size_t i = 0; i < 3; i++) {
		char dir[1024];
		snprintf(dir, sizeof dir, "%s/%s", t_sigv4_dir(), cases[i][0]);
		CHECKF(t_sigv4_case(dir, "us-east-1", cases[i][1], NULL), "vector %s", cases[i][0]);
	}
}

/* ================================================================ */
/* the stateful half: store operations on a temp ledger (issue 15 item 6) */

#define SX_NOW "2030-03-04T10:00:00Z"   /* a Monday, 10:00 UTC: every slot of a test falls on one day */

struct sx { char dir[40]; struct or_config *cfg; double now; int day; };

/* A fresh spool directory and ledger with the virtual clock at SX_NOW;
 * `body` is the config after its spool line (senders, clients, ...). */
static int sx_open(struct sx *x, const char *body)
{
	char conf[4096], err[512] = "";
	snprintf(x->dir, sizeof x->dir, "/tmp/outreach-unit-XXXXXX");
	x->cfg = cfg_new();
	if (!mkdtemp(x->dir))
		return 0;
	setenv("OUTREACH_NOW", SX_NOW, 1);
	or_clock_init();
	x->now = or_now();
	snprintf(conf, sizeof conf, "spool = \"%s\";\ntimezone = \"UTC\";\n"
	         "providers = ({name=\"dry\"; type=\"file\"; dir=\"%s/outbox\";});\n%s", x->dir, x->dir, body);
	int rc = or_config_load_string(x->cfg, conf, "test.conf", err, sizeof err);
	if (rc == 0)
		rc = or_db_open(x->cfg, 1, err, sizeof err);
	if (rc != 0)
		printf("#   %s\n", err);
	x->day = or_day_number((time_t)x->now, "UTC");
	return rc == 0;
}

static void sx_close(struct sx *x)
{
	or_db_close();
	or_config_free(x->cfg);
	free(x->cfg);
	store_rm(x->dir);
	unsetenv("OUTREACH_NOW");
}

/* n jobs of client (campaign "k") arrive, due now: ledger ids base+i as 16
 * hex digits, created in that order, recipients r<base+i>@<client>.example;
 * the arrivals list is then finished, as an ingester does once the files
 * moved (claims skip listed arrivals). */
static void sx_ingest(const struct sx *x, const char *client, int base, int n)
{
	struct or_arrival *a = calloc((size_t)n, sizeof *a);
	int bad = 0, deferred;
	for (int i = 0; i < n; i++) {
		char s[128];
		snprintf(s, sizeof s, "job-%d", base + i);
		a[i].name = strdup(s);
		a[i].now = x->now - 1000 + base + i;   /* created in id order: claims take them so */
		snprintf(a[i].id, sizeof a[i].id, "%016x", base + i);
		snprintf(a[i].producer, sizeof a[i].producer, "p%d", base + i);
		snprintf(a[i].content, sizeof a[i].content, "%016x", 7u);
		a[i].client = strdup(client);
		a[i].campaign = strdup("k");
		snprintf(s, sizeof s, "r%d@%s.example", base + i, client);
		a[i].rcpt = strdup(s);
		snprintf(s, sizeof s, "%s.example", client);
		a[i].rcpt_domain = strdup(s);
		a[i].due = x->now - 1;
	}
	deferred = or_store_ingest_batch(a, n, &bad);
	CHECKF(deferred == n && bad == 0, "ingested %d of %d, %d bad", deferred, n, bad);
	or_store_arrivals_done();
	for (int i = 0; i < n; i++) {
		free(a[i].name);
		free(a[i].client);
		free(a[i].campaign);
		free(a[i].rcpt);
		free(a[i].rcpt_domain);
	}
	free(a);
}

static void sx_run(const struct sx *x, struct or_run *run, const char *id)
{
	memset(run, 0, sizeof *run);
	snprintf(run->id, sizeof run->id, "%s", id);
	run->started = x->now;
	run->deadline = x->now + 600;
	run->max_jobs = 1000;
	run->lockfd = -1;
}

/* Claims until the run has want claims or nothing more can be claimed, as
 * the send loop does (a batch stops at a slot ahead); returns how many. */
static int sx_claim(const struct sx *x, struct or_run *run, int want, struct or_claim *out)
{
	int n = 0;
	while (n < want) {
		struct or_turns rot = { 0 };
		rot.n = or_store_due_clients(&rot.clients, or_now());
		int got = rot.n ? or_claim_batch(x->cfg, run, &rot, want - n, out + n) : 0;
		free(rot.clients);
		if (got == 0)
			break;
		n += got;
	}
	return n;
}

/* The intents of claims c[0..n-1], through one send turn (no outcomes). */
static void sx_intents(const struct sx *x, const char *run_id, const struct or_claim *c, int n)
{
	struct or_store_intent in[8];
	char msgid[8][64];
	struct or_store_turn t = { 0 };
	for (int i = 0; i < n; i++) {
		memset(&in[i], 0, sizeof in[i]);
		snprintf(msgid[i], sizeof msgid[i], "<%s@unit.example>", c[i].id);
		in[i].id = c[i].id;
		in[i].msgid = msgid[i];
		snprintf(in[i].subject, sizeof in[i].subject, "hello %d", i);
	}
	t.in = in;
	t.nin = n;
	or_store_send_turn(x->cfg, run_id, &t);
}

/* One outcome of claim c through a send turn; the folder it goes to. */
static int sx_outcome(const struct sx *x, const char *run_id, const struct or_claim *c, const struct or_send_result *r)
{
	char msgid[64];
	int dir = -1;
	snprintf(msgid, sizeof msgid, "<%s@unit.example>", c->id);
	struct or_store_outcome o = or_outcome_of(c, r, msgid, 0);
	struct or_store_turn t = { &o, 1, &dir, NULL, 0, NULL, NULL };
	or_store_send_turn(x->cfg, run_id, &t);
	return dir;
}

static void sx_job(const char *id, char *state, size_t n)
{
	sqlite3_stmt *st = or_q("SELECT state FROM jobs WHERE id = ?1", "t", id);
	snprintf(state, n, "%s", or_step(st) == SQLITE_ROW ? or_col(st, 0) : "(none)");
	sqlite3_reset(st);
}

/* The states of a job's slots, comma-separated ("" when it has none). */
static void sx_slots(const char *id, char *out, size_t n)
{
	sqlite3_stmt *st = or_q("SELECT coalesce(group_concat(state, ','), '') FROM (SELECT state FROM slots "
	                        "WHERE job_id = ?1 ORDER BY id)", "t", id);
	snprintf(out, n, "%s", or_step(st) == SQLITE_ROW ? or_col(st, 0) : "?");
	sqlite3_reset(st);
}

#define SX_STATE(id, want) do { char s_[32]; sx_job(id, s_, sizeof s_); \
	CHECKF(!strcmp(s_, want), "job %s is %s, not %s", id, s_, want); } while (0)
#define SX_SLOTS(id, want) do { char s_[256]; sx_slots(id, s_, sizeof s_); \
	CHECKF(!strcmp(s_, want), "job %s has slots [%s], not [%s]", id, s_, want); } while (0)

/* Claim -> intent -> crash -> recover: a run claims four jobs and writes the
 * intents of two, then dies; recovery gives the two claimed ones back
 * (waiting, slots deleted, the sender's and the client's day counts back
 * where they were) and keeps the two in doubt with their units: held, or
 * (in_doubt = "resend") waiting to go again.  What recovery left is then
 * claimable by the next run, and only that. */
static void test_store_claim_intent_crash_recover(void)
{
	for (int resend = 0; resend < 2; resend++) {
		struct sx x;
		struct or_run r0, r1, r2;
		struct or_claim c0[1], c1[8], c2[8];
		struct or_send_result ok = { 0 };
		char body[512];
		snprintf(body, sizeof body, "in_doubt = \"%s\";\n"
		         "senders = ({name=\"a\"; from=\"a@acme-mail.com\"; provider=\"dry\"; daily_limit=100;});\n"
		         "clients = ({name=\"c1\"; daily_limit=50;});\n", resend ? "resend" : "hold");
		CHECK(sx_open(&x, body));
		if (t_failed_checks)
			return;
		sx_ingest(&x, "c1", 1, 6);
		/* one job sent whole first, so the counts start from 1, not 0 */
		sx_run(&x, &r0, "run0");
		CHECK(sx_claim(&x, &r0, 1, c0) == 1);
		sx_intents(&x, r0.id, c0, 1);
		snprintf(ok.provider_id, sizeof ok.provider_id, "prov-1");
		CHECK(sx_outcome(&x, r0.id, &c0[0], &ok) == OR_D_DONE);
		or_store_run_end(&r0, x.now);
		CHECK(or_sender_sent_on("a", x.day) == 1 && or_client_sent_on("c1", x.day) == 1);

		sx_run(&x, &r1, "run1");
		/* a run's row comes with its first claim (an idle run writes none) */
		CHECK(or_q_int(or_q("SELECT count(*) FROM runs WHERE id = 'run1'", ""), -1) == 0);
		int n = sx_claim(&x, &r1, 4, c1);
		CHECKF(n == 4, "claimed %d", n);
		CHECK(or_q_int(or_q("SELECT count(*) FROM runs WHERE id = 'run1' AND state = 'running'", ""), -1) == 1);
		if (n != 4) {
			sx_close(&x);
			return;
		}
		CHECKF(or_sender_sent_on("a", x.day) == 5, "sender a: %d after 4 claims", or_sender_sent_on("a", x.day));
		sx_intents(&x, r1.id, c1, 2);   /* c1[0], c1[1] sending; c1[2], c1[3] only claimed */
		SX_STATE(c1[0].id, "sending");
		SX_STATE(c1[2].id, "claimed");
		/* run1 dies here */
		double rt = or_now();
		or_store_recover_run(r1.id, resend, rt);
		for (int i = 2; i < 4; i++) {
			SX_STATE(c1[i].id, "waiting");
			SX_SLOTS(c1[i].id, "");
		}
		for (int i = 0; i < 2; i++) {
			SX_STATE(c1[i].id, resend ? "waiting" : "held");
			SX_SLOTS(c1[i].id, "doubt");
			CHECK(or_q_int(or_q("SELECT attempts FROM jobs WHERE id = ?1", "t", c1[i].id), -1) == 1);
			CHECK(or_q_int(or_q("SELECT last_error LIKE 'in doubt: the run died during the transfer%' "
			                    "FROM jobs WHERE id = ?1", "t", c1[i].id), 0) == 1);
			if (resend)
				CHECK(or_q_double(or_q("SELECT next_due FROM jobs WHERE id = ?1", "t", c1[i].id), 0) == rt);
		}
		/* the sent one's unit, the two in doubt's: the claimed ones' came back */
		CHECKF(or_sender_sent_on("a", x.day) == 3, "sender a: %d", or_sender_sent_on("a", x.day));
		CHECKF(or_client_sent_on("c1", x.day) == 3, "client c1: %d", or_client_sent_on("c1", x.day));
		CHECK(or_q_int(or_q("SELECT count(*) FROM slots WHERE state = 'reserved'", ""), -1) == 0);
		or_store_run_recovered(r1.id, rt);
		CHECK(or_q_int(or_q("SELECT count(*) FROM runs WHERE state = 'running'", ""), -1) == 0);

		/* recovery is idempotent: again, nothing changes */
		or_store_recover_run(r1.id, resend, or_now());
		CHECK(or_sender_sent_on("a", x.day) == 3);
		SX_SLOTS(c1[0].id, "doubt");

		/* the next run claims what recovery made waiting: two (hold) or four (resend) */
		sx_run(&x, &r2, "run2");
		n = sx_claim(&x, &r2, 8, c2);
		CHECKF(n == (resend ? 4 : 2) + 1, "next run claimed %d", n);   /* + the fifth job, never claimed */
		for (int i = 0; i < n && !resend; i++)
			CHECKF(strcmp(c2[i].id, c1[0].id) && strcmp(c2[i].id, c1[1].id), "held job %s claimed again", c2[i].id);
		sx_close(&x);
	}
}

/* Caps under a race: four processes claim from one ledger at once, each in
 * a loop until nothing more can be claimed.  Sender a's daily_limit is 7,
 * sender b's warm-up allows 5 today (day 2 of 10, from 2 to 20, linear),
 * client c1's daily_limit is 4; 30 jobs of c1 and 30 of c2 wait.  No job may
 * be claimed twice, no sender or client go past its cap, and together they
 * claim exactly the senders' 12. */
#define SX_KIDS 4
static void test_store_claim_caps_race(void)
{
	struct sx x;
	int gate[2], kid_ok = 1;
	pid_t kids[SX_KIDS];
	CHECK(sx_open(&x, "senders = ({name=\"a\"; from=\"a@acme-mail.com\"; provider=\"dry\"; daily_limit=7;},\n"
	                  " {name=\"b\"; from=\"b@beta-mail.com\"; provider=\"dry\"; daily_limit=20;\n"
	                  "  warmup = { start = \"2030-03-02\"; first = 2; days = 10; curve = \"linear\"; };});\n"
	                  "clients = ({name=\"c1\"; daily_limit=4;});\n"));
	if (t_failed_checks)
		return;
	CHECKF(or_warmup_volume(&x.cfg->senders[1].warmup, 20, 2) == 5, "warm-up day 2: %d",
	       or_warmup_volume(&x.cfg->senders[1].warmup, 20, 2));
	sx_ingest(&x, "c1", 1, 30);
	sx_ingest(&x, "c2", 101, 30);
	or_db_close();   /* no connection crosses a fork */
	CHECK(pipe(gate) == 0);
	for (int k = 0; k < SX_KIDS; k++) {
		if ((kids[k] = fork()) == 0) {
			char err[300], path[80], b;
			struct or_run run;
			struct or_claim c[64];
			int n = 0, got;
			close(gate[1]);
			if (or_db_open(x.cfg, 0, err, sizeof err))
				_exit(3);
			if (read(gate[0], &b, 1) != 0)   /* all start together: the parent closes the gate */
				_exit(4);
			char rid[16];
			snprintf(rid, sizeof rid, "kid%d", k);
			sx_run(&x, &run, rid);
			while (n < 60 && (got = sx_claim(&x, &run, 1 + k % 3, c + n)) > 0)
				n += got;
			snprintf(path, sizeof path, "%s/claims.%d", x.dir, k);
			FILE *f = fopen(path, "w");
			for (int i = 0; f && i < n; i++)
				fprintf(f, "%s\n", c[i].id);
			if (!f || fclose(f))
				_exit(5);
			or_db_close();
			_exit(0);
		}
		CHECK(kids[k] > 0);
	}
	close(gate[0]);
	close(gate[1]);
	for (int k = 0; k < SX_KIDS; k++) {
		int st = 0;
		while (kids[k] > 0 && waitpid(kids[k], &st, 0) < 0 && errno == EINTR)
			;
		CHECKF(kids[k] > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "claimer %d: status %#x", k, st);
		kid_ok &= kids[k] > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	char err[300];
	CHECK(or_db_open(x.cfg, 0, err, sizeof err) == 0);
	/* what the claimers got: no id twice */
	char ids[SX_KIDS * 64][OR_ID_HEX + 2];
	int nid = 0, dup = 0;
	for (int k = 0; kid_ok && k < SX_KIDS; k++) {
		char path[80], line[64];
		snprintf(path, sizeof path, "%s/claims.%d", x.dir, k);
		FILE *f = fopen(path, "r");
		CHECK(f != NULL);
		while (f && nid < SX_KIDS * 64 && fgets(line, sizeof line, f)) {
			line[strcspn(line, "\n")] = 0;
			for (int j = 0; j < nid; j++)
				dup += !strcmp(ids[j], line);
			snprintf(ids[nid++], sizeof ids[0], "%.17s", line);
		}
		if (f)
			fclose(f);
	}
	CHECKF(dup == 0, "%d jobs claimed twice", dup);
	CHECKF(nid == 12, "%d claims in all, not min(7 + 5, 60) = 12", nid);
	/* and what the ledger says */
	CHECK(or_q_int(or_q("SELECT count(*) FROM jobs WHERE state = 'claimed'", ""), -1) == nid);
	CHECK(or_q_int(or_q("SELECT count(*) FROM (SELECT job_id FROM slots GROUP BY job_id HAVING count(*) > 1)", ""), -1) == 0);
	CHECK(or_q_int(or_q("SELECT count(*) FROM slots", ""), -1) == nid);
	long long sa = or_q_int(or_q("SELECT count(*) FROM slots WHERE sender = 'a'", ""), -1);
	long long sb = or_q_int(or_q("SELECT count(*) FROM slots WHERE sender = 'b'", ""), -1);
	long long sc1 = or_q_int(or_q("SELECT count(*) FROM slots WHERE client = 'c1'", ""), -1);
	CHECKF(sa == 7, "sender a: %lld slots (daily_limit 7)", sa);
	CHECKF(sb == 5, "sender b: %lld slots (warm-up 5)", sb);
	CHECKF(sc1 <= 4, "client c1: %lld slots (daily_limit 4)", sc1);
	CHECKF(sc1 == 4, "client c1: %lld slots: it had room and jobs", sc1);
	CHECK(or_sender_sent_on("a", x.day) == sa && or_sender_sent_on("b", x.day) == sb);
	CHECK(or_client_sent_on("c1", x.day) == sc1 && or_client_sent_on("c2", x.day) == nid - sc1);
	CHECK(or_q_int(or_q("SELECT count(*) FROM slots s JOIN jobs j ON j.id = s.job_id WHERE j.state != 'claimed' "
	                    "OR j.run_id IS NOT s.run_id OR j.sender IS NOT s.sender", ""), -1) == 0);
	sx_close(&x);
}
#undef SX_KIDS

/* Release and record: a released claim gives its unit back and takes the
 * state asked; a permanent failure recorded before any transfer lands in
 * failed with its reason (slot void, its unit back, counted failed); a
 * transfer's outcome "sent" books its slot sent, keeping its unit. */
static void test_store_release_and_record(void)
{
	struct sx x;
	struct or_run run;
	struct or_claim c[4];
	CHECK(sx_open(&x, "senders = ({name=\"a\"; from=\"a@acme-mail.com\"; provider=\"dry\"; daily_limit=100;});\n"));
	if (t_failed_checks)
		return;
	sx_ingest(&x, "c1", 1, 3);
	sx_run(&x, &run, "run1");
	CHECK(sx_claim(&x, &run, 3, c) == 3);
	CHECK(or_sender_sent_on("a", x.day) == 3 && or_client_sent_on("c1", x.day) == 3);
	if (t_failed_checks) {
		sx_close(&x);
		return;
	}

	or_store_release(c[0].id, run.id, "waiting", "released by the test", x.now + 60, x.now);
	SX_STATE(c[0].id, "waiting");
	SX_SLOTS(c[0].id, "");
	CHECK(or_q_double(or_q("SELECT next_due FROM jobs WHERE id = ?1", "t", c[0].id), 0) == x.now + 60);
	CHECK(or_sender_sent_on("a", x.day) == 2 && or_client_sent_on("c1", x.day) == 2);

	struct or_send_result perm = { .v = OR_PERM };
	snprintf(perm.why, sizeof perm.why, "recipient domain has no MX");
	struct or_store_outcome o = or_outcome_of(&c[1], &perm, NULL, 0);
	CHECK(or_store_record(x.cfg, run.id, &o) == OR_D_FAILED);
	SX_STATE(c[1].id, "failed");
	SX_SLOTS(c[1].id, "void");
	CHECK(or_q_int(or_q("SELECT last_error = 'recipient domain has no MX' FROM jobs WHERE id = ?1", "t", c[1].id), 0) == 1);
	CHECK(or_q_int(or_q("SELECT count(*) FROM attempts WHERE job_id = ?1 AND outcome = 'permanent'", "t", c[1].id), 0) == 1);
	CHECK(or_q_int(or_q("SELECT n FROM counters WHERE kind = 'failed' AND client = 'c1'", ""), 0) == 1);
	CHECK(or_sender_sent_on("a", x.day) == 1 && or_client_sent_on("c1", x.day) == 1);

	struct or_send_result ok = { .v = OR_OK };
	snprintf(ok.provider_id, sizeof ok.provider_id, "prov-42");
	sx_intents(&x, run.id, &c[2], 1);
	SX_STATE(c[2].id, "sending");
	CHECK(sx_outcome(&x, run.id, &c[2], &ok) == OR_D_DONE);
	SX_STATE(c[2].id, "sent");
	SX_SLOTS(c[2].id, "sent");
	CHECK(or_q_int(or_q("SELECT provider_id = 'prov-42' AND sent_at > 0 AND last_error IS NULL FROM jobs "
	                    "WHERE id = ?1", "t", c[2].id), 0) == 1);
	CHECK(or_q_int(or_q("SELECT n FROM counters WHERE kind = 'sent' AND client = 'c1' AND sender = 'a'", ""), 0) == 1);
	CHECK(or_sender_sent_on("a", x.day) == 1 && or_client_sent_on("c1", x.day) == 1);

	/* the released job is not due before its next_due, then claimable again */
	CHECK(sx_claim(&x, &run, 3, c + 3) == 0);
	or_clock_skipped += 61;
	CHECK(sx_claim(&x, &run, 3, c + 3) == 1 && !strcmp(c[3].id, c[0].id));
	sx_close(&x);
}

/* A held job settled by a feed page: an in-doubt outcome holds the job with
 * its slot in doubt (its unit kept); a "delivered" event naming its
 * Message-ID, recorded with the page's cursor in one transaction, lists it
 * to settle, and settling makes it sent with its slot sent, the day's count
 * unchanged.  The same page seen again is a duplicate that settles nothing;
 * a settled job is not settled twice. */
static void test_store_feed_settles_held(void)
{
	struct sx x;
	struct or_run run;
	struct or_claim c[2];
	char cur[64], msgid[64];
	CHECK(sx_open(&x, "senders = ({name=\"a\"; from=\"a@acme-mail.com\"; provider=\"dry\"; daily_limit=100;});\n"));
	if (t_failed_checks)
		return;
	sx_ingest(&x, "c1", 1, 2);
	sx_run(&x, &run, "run1");
	CHECK(sx_claim(&x, &run, 2, c) == 2);
	if (t_failed_checks) {
		sx_close(&x);
		return;
	}
	sx_intents(&x, run.id, c, 2);
	struct or_send_result doubt = { .v = OR_DOUBT };
	snprintf(doubt.why, sizeof doubt.why, "timeout after DATA");
	CHECK(sx_outcome(&x, run.id, &c[0], &doubt) == OR_D_HELD);
	CHECK(sx_outcome(&x, run.id, &c[1], &doubt) == OR_D_HELD);
	SX_STATE(c[0].id, "held");
	SX_SLOTS(c[0].id, "doubt");
	CHECK(or_sender_sent_on("a", x.day) == 2);

	snprintf(msgid, sizeof msgid, "%s@unit.example", c[0].id);   /* as a feed gives it, no <> */
	struct or_event ev = { .type = "delivered", .key = "dry:ev-1", .rcpt = "r1@c1.example", .msgid = msgid,
	                       .at = x.now + 30 };
	struct or_events evs = { &ev, NULL, 1, 0 };
	struct or_settle st = { 0 };
	CHECK(or_store_feed_page(x.cfg, &x.cfg->providers[0], "", "cursor-1", &evs, &st, x.now + 40) == 1);
	CHECKF(st.n == 1 && !strcmp(st.ids[0], c[0].id), "%d to settle", st.n);
	or_store_feed_cursor("dry", "", cur, sizeof cur);
	CHECKF(!strcmp(cur, "cursor-1"), "cursor %s", cur);
	CHECK(or_q_int(or_q("SELECT job_id = ?1 FROM events WHERE event_key = 'dry:ev-1'", "t", c[0].id), 0) == 1);
	SX_STATE(c[0].id, "held");   /* the page only lists it: settling is the caller's next step */
	for (int i = 0; i < st.n; i++)
		or_store_settle_held(x.cfg, st.ids[i], x.now + 41);
	free(st.ids);
	SX_STATE(c[0].id, "sent");
	SX_SLOTS(c[0].id, "sent");
	SX_STATE(c[1].id, "held");
	SX_SLOTS(c[1].id, "doubt");
	CHECK(or_sender_sent_on("a", x.day) == 2 && or_client_sent_on("c1", x.day) == 2);

	struct or_settle st2 = { 0 };
	CHECK(or_store_feed_page(x.cfg, &x.cfg->providers[0], "", "", &evs, &st2, x.now + 50) == 0);
	CHECK(st2.n == 0);
	free(st2.ids);
	CHECK(or_q_int(or_q("SELECT count(*) FROM events", ""), -1) == 1);
	or_store_feed_cursor("dry", "", cur, sizeof cur);
	CHECK(!strcmp(cur, "cursor-1"));
	or_store_settle_held(x.cfg, c[0].id, x.now + 60);   /* no longer held: nothing */
	CHECK(or_q_int(or_q("SELECT updated_at FROM jobs WHERE id = ?1", "t", c[0].id), 0) == (long long)(x.now + 41));
	sx_close(&x);
}

/* Cancel -> cancelling -> failed: the cancelled jobs are listed with their
 * reason, then become failed, counted once per client and campaign; the
 * others are left alone, and finishing again counts nothing more. */
static void test_store_cancel_finish(void)
{
	struct sx x;
	struct or_job_row *rows = NULL;
	CHECK(sx_open(&x, "senders = ({name=\"a\"; from=\"a@acme-mail.com\"; provider=\"dry\"; daily_limit=100;});\n"));
	if (t_failed_checks)
		return;
	sx_ingest(&x, "c1", 1, 4);
	/* what `outreach cancel` leaves (COMMANDS' statement, not yet a store operation) */
	or_q_done(or_q("UPDATE jobs SET state = 'cancelling', last_error = 'cancelled by the operator' "
	               "WHERE id IN ('0000000000000001', '0000000000000003')", ""));
	int n = or_store_cancelling(&rows);
	CHECKF(n == 2, "%d cancelling", n);
	for (int i = 0; i < n; i++)
		CHECKF(!strcmp(rows[i].note, "cancelled by the operator"), "note %s", rows[i].note);
	or_job_rows_free(rows, n);
	or_store_cancel_finish();
	SX_STATE("0000000000000001", "failed");
	SX_STATE("0000000000000003", "failed");
	SX_STATE("0000000000000002", "waiting");
	CHECK(or_q_int(or_q("SELECT n FROM counters WHERE kind = 'failed' AND client = 'c1' AND campaign = 'k'", ""), 0) == 2);
	CHECK(or_q_int(or_q("SELECT n FROM state_counts WHERE client = 'c1' AND state = 'failed'", ""), 0) == 2);
	CHECK(or_store_cancelling(&rows) == 0);
	or_job_rows_free(rows, 0);
	or_store_cancel_finish();
	CHECK(or_q_int(or_q("SELECT n FROM counters WHERE kind = 'failed' AND client = 'c1' AND campaign = 'k'", ""), 0) == 2);
	sx_close(&x);
}

#undef SX_STATE
#undef SX_SLOTS

/* ================================================================ */
/* store: the job state machine */

/* Each state by its name; every row of the table once, between known
 * states; the folders recovery and reports see, state by state (the
 * folder numbers are the spool's: compared with each other). */
static void test_store_state_table(void)
{
	const struct or_transition *t;
	for (int s = 0; s < OR_NJOB_STATES; s++)
		CHECKF(or_job_state_of(or_job_state_name(s)) == s, "state %d", s);
	CHECK(or_job_state_of("ingest") == -1);
	for (size_t i = 0; (t = or_transition_at(i)); i++) {
		CHECKF(t->from >= 0 && t->from < OR_NJOB_STATES && t->to >= 0 && t->to < OR_NJOB_STATES &&
		       t->from != t->to, "row %zu", i);
		CHECKF(or_transition(t->from, t->to) == t, "row %zu is not the first %d -> %d", i, t->from, t->to);
		CHECKF(t->slot && *t->slot, "row %zu: no slot effect", i);
	}
	int defer = or_job_state_dir(OR_S_WAITING, 0), done = or_job_state_dir(OR_S_SENT, 0);
	int held = or_job_state_dir(OR_S_HELD, 0), failed = or_job_state_dir(OR_S_FAILED, 0);
	int bad = or_job_state_dir(OR_S_BAD, 0), requeued = or_job_state_dir(OR_S_REQUEUED, 0);
	CHECK(defer != done && defer != held && defer != failed && defer != bad && defer != requeued);
	CHECK(done != held && done != failed && done != bad && held != failed && held != bad && failed != bad);
	for (int resend = 0; resend < 2; resend++) {
		CHECK(or_job_state_dir(OR_S_CLAIMED, resend) == defer);
		CHECK(or_job_state_dir(OR_S_CANCELLING, resend) == defer);
		CHECK(or_job_state_dir(-1, resend) == defer);   /* a state the table does not know */
		CHECK(or_job_state_dir(OR_S_SUPPRESSED, resend) == done);
		CHECK(or_job_state_dir(OR_S_DUPLICATE, resend) == done);
		CHECK(or_job_state_dir(OR_S_HELD, resend) == held);
	}
	CHECK(or_job_state_dir(OR_S_SENDING, 0) == held);   /* in doubt: held, or resent */
	CHECK(or_job_state_dir(OR_S_SENDING, 1) == defer);
	CHECK(or_job_dir(OR_S_SENDING, OR_S_SENT) == done);
	CHECK(or_job_dir(OR_S_CLAIMED, OR_S_SUPPRESSED) == done);
	CHECK(or_job_dir(OR_S_CANCELLING, OR_S_FAILED) == failed);
	CHECK(or_job_dir(OR_S_SENDING, OR_S_HELD) == held);
}

/* A transition not in the table ends the process with 70 before any
 * write (here in a child, with no ledger open). */
static void test_store_state_refused(void)
{
	static const int bad[][2] = { { OR_S_WAITING, OR_S_SENT }, { OR_S_SENT, OR_S_WAITING },
	                              { OR_S_HELD, OR_S_CLAIMED }, { OR_S_WAITING, -1 } };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		fflush(stdout);
		pid_t pid = fork();
		int st = 0;
		CHECK(pid >= 0);
		if (pid == 0) {
			if (!freopen("/dev/null", "w", stderr))
				_exit(3);
			or_transition(bad[i][0], bad[i][1]);
			_exit(0);
		}
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == OR_EX_SOFTWARE, "%d -> %d: status %d", bad[i][0], bad[i][1], st);
	}
}

static void t_job_row(sqlite3 *db, const char *id, char *state, size_t n, int *attempts, char *extra, size_t m)
{
	sqlite3_stmt *st;
	char sql[200];
	snprintf(sql, sizeof sql, "SELECT state, attempts, coalesce(run_id, '-') || ' ' || coalesce(last_error, '-') "
	         "|| ' ' || coalesce(message_id, '-') || ' ' || updated_at FROM jobs WHERE id = '%s'", id);
	*state = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(state, n, "%s", (const char *)sqlite3_column_text(st, 0));
		*attempts = sqlite3_column_int(st, 1);
		snprintf(extra, m, "%s", (const char *)sqlite3_column_text(st, 2));
	}
	sqlite3_finalize(st);
}

/* or_job_move: guarded by the state the caller names (0 when the job is
 * elsewhere, the row untouched); the columns given set, the others kept;
 * attempts counted up and given back. */
static void test_store_job_move(void)
{
	char dir[] = "/tmp/outreach-unit-XXXXXX", state[16], extra[200];
	sqlite3 *db = store_open(dir);
	int attempts = -1;
	CHECK(db != NULL);
	if (!db)
		return;
	CHECK(sqlite3_exec(db, "INSERT INTO jobs(id, client, campaign, rcpt, rcpt_domain, state, next_due, last_error, "
	                   "created_at, updated_at) VALUES('j1', 'c', 'k', 'r@x.example', 'x.example', 'waiting', 10, "
	                   "'before', 1, 1)", NULL, NULL, NULL) == SQLITE_OK);
	struct or_job_set claim = { .set = OR_JS_RUN_ID | OR_JS_UPDATED_AT, .run_id = "run1", .updated_at = 5 };
	CHECK(or_job_move("j1", OR_S_WAITING, OR_S_CLAIMED, &claim) == 1);
	t_job_row(db, "j1", state, sizeof state, &attempts, extra, sizeof extra);
	CHECKF(!strcmp(state, "claimed") && attempts == 0 && !strcmp(extra, "run1 before - 5.0"), "%s %d %s", state,
	       attempts, extra);
	CHECK(or_job_move("j1", OR_S_WAITING, OR_S_CLAIMED, &claim) == 0);   /* not waiting any more */
	CHECK(or_job_move("nope", OR_S_WAITING, OR_S_CLAIMED, &claim) == 0);
	struct or_job_set intent = { .set = OR_JS_MESSAGE_ID, .message_id = "<m@x>", .attempts = OR_JA_ADD };
	CHECK(or_job_move("j1", OR_S_CLAIMED, OR_S_SENDING, &intent) == 1);
	t_job_row(db, "j1", state, sizeof state, &attempts, extra, sizeof extra);
	CHECKF(!strcmp(state, "sending") && attempts == 1 && !strcmp(extra, "run1 before <m@x> 5.0"), "%s %d %s",
	       state, attempts, extra);
	struct or_job_set wait = { .set = OR_JS_LAST_ERROR, .last_error = NULL, .attempts = OR_JA_GIVE_BACK };
	CHECK(or_job_move("j1", OR_S_SENDING, OR_S_WAITING, &wait) == 1);
	t_job_row(db, "j1", state, sizeof state, &attempts, extra, sizeof extra);
	CHECKF(!strcmp(state, "waiting") && attempts == 0 && !strcmp(extra, "run1 - <m@x> 5.0"), "%s %d %s", state,
	       attempts, extra);
	CHECK(or_job_move("j1", OR_S_WAITING, OR_S_CLAIMED, NULL) == 1);
	CHECK(or_job_move("j1", OR_S_CLAIMED, OR_S_SENDING, NULL) == 1);
	CHECK(or_job_move("j1", OR_S_SENDING, OR_S_WAITING, &wait) == 1);   /* not below 0 */
	t_job_row(db, "j1", state, sizeof state, &attempts, extra, sizeof extra);
	CHECKF(attempts == 0, "attempts %d", attempts);
	or_db_close();
	store_rm(dir);
}

/* ================================================================ */
/* runner */

#include "unit-mail.c"    /* MAIL READING: headers, verdicts, dates, DSNs */
#include "unit-imap.c"    /* MAILBOXES: IMAP answers parsed */
#include "unit-seq.c"     /* SEQUENCES and their store operations */

#define T(name) { #name, name }
static const struct { const char *name; void (*fn)(void); } tests[] = {
	T(test_util_buf),
	T(test_util_utf8_valid),
	T(test_util_has_ctl_lower),
	T(test_util_json_str),
	T(test_json_wellformed),
	T(test_log_safe),
	T(test_time_days_from_civil),
	T(test_time_day_number_zones),
	T(test_time_day_dst_new_york),
	T(test_time_parse_rfc3339),
	T(test_time_parse_rejects),
	T(test_time_parse_rejects_impossible_date),
	T(test_time_fmt),
	T(test_time_tz_valid),
	T(test_random_seeded_repeatable),
	T(test_config_valid_minimal),
	T(test_config_full),
	T(test_config_errors_top_level),
	T(test_config_store),
	T(test_config_errors_sender),
	T(test_config_sender_gap),
	T(test_warmup_reference_table),
	T(test_warmup_unset_and_edges),
	T(test_crypto_sha256_hex),
	T(test_spool_name_ok),
	T(test_spool_init_and_write_atomic),
	T(test_spool_move_into_replaced_new),
	T(test_job_header_name_ok),
	T(test_job_parse_address_ok),
	T(test_job_parse_address_bad),
	T(test_job_parse_address_encoded_word),
	T(test_job_parse_address_case_kept),
	T(test_window_parse_ok),
	T(test_window_parse_bad),
	T(test_window_open_business_hours),
	T(test_window_open_default_tz),
	T(test_window_open_wraps_midnight),
	T(test_window_next),
	T(test_window_next_dst),
	T(test_window_next_dst_gap),
	T(test_csv_rfc4180),
	T(test_csv_edges),
	T(test_render_placeholders),
	T(test_render_html_escapes),
	T(test_render_errors),
	T(test_mime_rfc2047_ascii_as_is),
	T(test_mime_rfc2047_short),
	T(test_mime_rfc2047_long_cyrillic),
	T(test_mime_rfc2047_emoji),
	T(test_mime_qp_basic),
	T(test_mime_qp_long_lines),
	T(test_mime_qp_trailing_whitespace),
	T(test_mime_qp_trailing_space_at_end),
	T(test_job_parse_minimal),
	T(test_job_parse_full),
	T(test_job_parse_valid_variants),
	T(test_job_parse_invalid_structure),
	T(test_job_parse_invalid_addresses),
	T(test_job_parse_invalid_headers),
	T(test_job_parse_invalid_content),
	T(test_job_ids),
	T(test_mime_message_headers),
	T(test_mime_message_alternative),
	T(test_mime_message_text_only),
	T(test_mime_message_long_lines),
	T(test_store_stmt_cache_per_site),
	T(test_store_claim_reads_index_order),
	T(test_store_backoff_bounds),
	T(test_store_backoff_seeded),
	T(test_store_pick_round_robin),
	T(test_store_pick_quota),
	T(test_crypto_sigv4_aws_suite),
	T(test_crypto_sigv4_ses_sqs),
	/* the stateful half: store operations on a temp ledger (issue 15 item 6) */
	T(test_store_claim_intent_crash_recover),
	T(test_store_claim_caps_race),
	T(test_store_release_and_record),
	T(test_store_feed_settles_held),
	T(test_store_cancel_finish),
	T(test_store_state_table),
	T(test_store_state_refused),
	T(test_store_job_move),
	UNIT_MAIL_TESTS
	UNIT_IMAP_TESTS
	UNIT_SEQ_TESTS
};

/* Runs one test; returns 1 if it passed. */
static int run_one(size_t i, int nofork)
{
	t_failed_checks = 0;
	t_reported = 0;
	if (nofork) {
		tests[i].fn();
		printf("%s - %s\n", t_failed_checks ? "not ok" : "ok", tests[i].name);
		fflush(stdout);
		return t_failed_checks == 0;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		alarm(30);   /* a hang in the code under test fails this test only */
		tests[i].fn();
		fflush(stdout);
		exit(t_failed_checks ? 1 : 0);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(st))
		printf("#   crashed: signal %d (%s)\n", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else if (WIFEXITED(st) && WEXITSTATUS(st) > 1)
		printf("#   exited with status %d\n", WEXITSTATUS(st));
	int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	printf("%s - %s\n", ok ? "ok" : "not ok", tests[i].name);
	fflush(stdout);
	return ok;
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	const char *nf = getenv("UNIT_NOFORK");
	int nofork = nf && *nf && strcmp(nf, "0") != 0;
	int passed = 0, failed = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
		if (only && !strstr(tests[i].name, only))
			continue;
		if (run_one(i, nofork))
			passed++;
		else
			failed++;
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
