/*
 * fuzz-mail — MAIL READING: or_mail_parse and or_mail_classify (a header),
 * or_ooo_return_day (an out-of-office body), or_dsn_parse (a report's body).
 *
 * Input: the whole of it is given to each function as a header and as a
 * body, copied into a heap block of exactly its size (no NUL after it), so
 * a read past n is an ASan report; NUL bytes inside are data.  "today" is
 * 2026-12-02 plus the input's size modulo 800 days.
 *
 * Checked: every string of struct or_mail and struct or_dsn ends inside
 * its array and holds no CR or LF; message_id, in_reply_to and each ref
 * are "" or "<…>" with no space; from, reply_to, x_failed_recipients and
 * rcpt are "" or hold one "@" and no ASCII capital; nrefs in 0..32; the
 * class is one of the six with a rule and a name; a return day found lies
 * in (today, today + 60] with inclusive 0 or 1, and nothing found leaves
 * both 0; or_dsn_parse gives 1 only with a recipient, hard only for a
 * failed 5.x.x, and all of it empty with 0.
 */
#include "../../outreach.c"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz-mail: check failed: %s (line %d)\n", #c, __LINE__); \
	__builtin_trap(); } } while (0)

static struct or_mail m;
static struct or_dsn d;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	return 0;
}

/* NUL-terminated inside its array, no CR or LF. */
static void check_str(const char *s, size_t cap)
{
	size_t k = strnlen(s, cap);
	CHECK(k < cap);
	CHECK(!memchr(s, '\r', k) && !memchr(s, '\n', k));
}

static void check_msgid(const char *s, size_t cap)
{
	size_t k;
	check_str(s, cap);
	if (!(k = strlen(s)))
		return;
	CHECK(k >= 3 && s[0] == '<' && s[k - 1] == '>');
	for (size_t i = 0; i < k; i++)
		CHECK((unsigned char)s[i] > ' ' && s[i] != 0x7f);
}

static void check_addr(const char *s, size_t cap)
{
	check_str(s, cap);
	if (!*s)
		return;
	const char *at = strchr(s, '@');
	CHECK(at && at != s && at[1] && !strchr(at + 1, '@'));
	for (const char *p = s; *p; p++)
		CHECK(!(*p >= 'A' && *p <= 'Z') && (unsigned char)*p > ' ');
}

static void check_mail(const char *h, size_t n)
{
	const char *rule = NULL;

	CHECK(or_mail_parse(h, n, &m) == 0);
	check_msgid(m.message_id, sizeof m.message_id);
	check_msgid(m.in_reply_to, sizeof m.in_reply_to);
	CHECK(m.nrefs >= 0 && m.nrefs <= OR_MAIL_MAX_REFS);
	for (int i = 0; i < m.nrefs; i++) {
		CHECK(m.refs[i][0]);
		check_msgid(m.refs[i], sizeof m.refs[i]);
	}
	check_addr(m.from, sizeof m.from);
	check_addr(m.reply_to, sizeof m.reply_to);
	check_addr(m.x_failed_recipients, sizeof m.x_failed_recipients);
	check_str(m.subject, sizeof m.subject);
	for (const char *p = m.subject; *p; p++)
		CHECK((unsigned char)*p >= ' ' && *p != 0x7f);   /* control bytes made spaces */
	check_str(m.date, sizeof m.date);
	check_str(m.content_type, sizeof m.content_type);
	check_str(m.report_type, sizeof m.report_type);
	check_str(m.auto_submitted, sizeof m.auto_submitted);
	check_str(m.precedence, sizeof m.precedence);
	check_str(m.x_precedence, sizeof m.x_precedence);
	CHECK(m.date_at >= -360000.0 && m.date_at < 253402300800.0 + 360000);   /* 1970..9999, a zone of ±99:59 */
	CHECK(m.fields >= 0 && (size_t)m.fields <= n / 2 + 1);   /* a field is at least "x:" and a line end */
	int c = or_mail_classify(&m, &rule);
	CHECK(c >= OR_MAIL_HUMAN && c <= OR_MAIL_RECEIPT);
	CHECK(rule && *rule && strcmp(or_mail_class_name(c), "unknown"));
	CHECK((c == OR_MAIL_HUMAN) == !strcmp(rule, "human"));
}

static void check_ooo(const char *t, size_t n, int today)
{
	int day = -7, inc = -7;
	int rc = or_ooo_return_day(t, n, today, &day, &inc);

	CHECK(rc == 0 || rc == 1);
	if (rc == 1)
		CHECK(day > today && day <= today + 60 && (inc == 0 || inc == 1));
	else
		CHECK(day == 0 && inc == 0);
}

static void check_dsn(const char *b, size_t n)
{
	int rc = or_dsn_parse(b, n, &d);

	CHECK(rc == 0 || rc == 1);
	check_addr(d.rcpt, sizeof d.rcpt);
	check_str(d.action, sizeof d.action);
	check_str(d.status, sizeof d.status);
	check_str(d.diag, sizeof d.diag);
	for (const char *p = d.diag; *p; p++)
		CHECK((unsigned char)*p >= ' ' && *p != 0x7f);
	check_msgid(d.orig_msgid, sizeof d.orig_msgid);
	if (rc == 1)
		CHECK(d.rcpt[0]);
	else
		CHECK(!d.rcpt[0] && !d.action[0] && !d.status[0] && !d.diag[0] && !d.orig_msgid[0] && !d.hard);
	if (d.hard)
		CHECK(!strcmp(d.action, "failed") && d.status[0] == '5');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	int today = or_days_from_civil(2026, 12, 2) + (int)(size % 800);

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	check_mail(buf, size);
	check_ooo(buf, size, today);
	check_dsn(buf, size);
	free(buf);
	return 0;
}
