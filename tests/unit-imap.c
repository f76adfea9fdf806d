/* tests/unit-imap.c — unit tests of MAILBOXES, included by tests/unit.c (one
 * translation unit with outreach.c); UNIT_IMAP_TESTS lists them for its table.
 *
 * The transcripts are what libcurl 7.88 hands its header callback for one
 * command on a fresh connection against Dovecot 2.3.19: the greeting and
 * the login's lines first, then the command's answer. */

#define IMAP_LOGIN \
	"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n" \
	"* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN\r\n" \
	"A002 OK Pre-login capabilities listed, post-login capabilities have more.\r\n" \
	"A003 OK [CAPABILITY IMAP4rev1 SASL-IR CONDSTORE QRESYNC] Logged in\r\n"

/* What a FETCH walk saw: each message's uid and header bytes. */
struct t_imap_seen { int n, stop_after; long long uid[8]; char hdr[8][256]; size_t len[8]; };

static int t_imap_collect(const struct or_imap_msg *m, void *arg)
{
	struct t_imap_seen *s = arg;
	if (s->n < 8) {
		s->uid[s->n] = m->uid;
		s->len[s->n] = m->hdr_len;
		snprintf(s->hdr[s->n], sizeof s->hdr[0], "%.*s", (int)(m->hdr_len < 255 ? m->hdr_len : 255), m->hdr);
	}
	s->n++;
	return s->stop_after && s->n >= s->stop_after;
}

static int t_fetch(const char *t, long long above, struct t_imap_seen *s)
{
	memset(s, 0, sizeof *s);
	return or_imap_fetch_parse(t, strlen(t), above, t_imap_collect, s);
}

static void test_imap_examine_dovecot(void)
{
	const char *t = IMAP_LOGIN
		"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
		"* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n"
		"* 3 EXISTS\r\n"
		"* 1 RECENT\r\n"
		"* OK [UNSEEN 2] First unseen.\r\n"
		"* OK [UIDVALIDITY 1796198706] UIDs valid\r\n"
		"* OK [UIDNEXT 42] Predicted next UID\r\n"
		"* OK [HIGHESTMODSEQ 7] Highest\r\n"
		"A004 OK [READ-ONLY] Examine completed (0.001 + 0.000 secs).\r\n";
	struct or_imap_folder f;

	CHECK(or_imap_examine_parse(t, strlen(t), &f) == 0);
	CHECKF(f.uidvalidity == 1796198706, "%lld", f.uidvalidity);
	CHECKF(f.uidnext == 42, "%lld", f.uidnext);
	CHECKF(f.exists == 3, "%lld", f.exists);
}

static void test_imap_examine_refused(void)
{
	const char *no = IMAP_LOGIN "A004 NO Mailbox doesn't exist: Nope (0.001 + 0.000 secs).\r\n";
	const char *cut = IMAP_LOGIN "* 3 EXISTS\r\n* OK [UIDVALIDITY 5] UIDs valid\r\n";
	const char *novalidity = IMAP_LOGIN "* 3 EXISTS\r\nA004 OK [READ-ONLY] Examine completed.\r\n";
	const char *nonext = IMAP_LOGIN "* 0 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\nA004 OK [READ-ONLY] done\r\n";
	struct or_imap_folder f;

	CHECK(or_imap_examine_parse(no, strlen(no), &f) == -1);
	CHECK(or_imap_examine_parse(cut, strlen(cut), &f) == -1);        /* no tagged answer */
	CHECK(or_imap_examine_parse(novalidity, strlen(novalidity), &f) == -1);
	CHECK(or_imap_examine_parse(nonext, strlen(nonext), &f) == 0 && f.uidnext == 0 && f.uidvalidity == 9);
}

/* Three messages: literals holding ")", "{5}" at a line's end and CRLFs, the
 * UID before and after the BODY item, other items around them. */
#define IMAP_FETCH3 \
	"* 1 FETCH (UID 7 BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT)]<0> {37}\r\n" \
	"Subject: a ) b\r\nMessage-ID: <1@x>\r\n\r\n)\r\n" \
	"* 2 FETCH (FLAGS (\\Seen $Label) BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT)]<0> {37}\r\n" \
	"Subject: odd {5}\r\nMessage-ID: <2@x>\r\n)\r\n" \
	"* 3 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT)]<0> {21}\r\n" \
	"Message-ID: <3@x>\r\n\r\n UID 9 MODSEQ (12))\r\n"

static void test_imap_fetch_three(void)
{
	const char *t = IMAP_FETCH3 "A005 OK Fetch completed (0.001 + 0.000 secs).\r\n";
	struct t_imap_seen s;
	int n = t_fetch(t, 0, &s);

	CHECKF(n == 2, "%d", n);   /* the second has no UID: nothing a cursor could hold */
	CHECK(s.uid[0] == 7 && s.uid[1] == 9);
	CHECKF(!strcmp(s.hdr[0], "Subject: a ) b\r\nMessage-ID: <1@x>\r\n\r\n"), "%s", show(s.hdr[0], s.len[0]));
	CHECK(s.len[0] == 37);
	CHECKF(!strcmp(s.hdr[1], "Message-ID: <3@x>\r\n\r\n"), "%s", show(s.hdr[1], s.len[1]));
}

static void test_imap_fetch_uid_after_body(void)
{
	/* the second message of IMAP_FETCH3 has no UID: take one where it comes last */
	const char *t = "* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {11}\r\nSubject: x\r UID 12)\r\n"
	                "A005 OK Fetch completed.\r\n";
	struct t_imap_seen s;

	CHECK(t_fetch(t, 0, &s) == 1 && s.uid[0] == 12 && s.len[0] == 11);
}

static void test_imap_fetch_n_star_rule(void)
{
	/* UID FETCH 10:* when 9 is the last UID: the server still sends 9 */
	const char *t = "* 3 FETCH (UID 9 BODY[HEADER.FIELDS (SUBJECT)] {14}\r\nSubject: x\r\n\r\n)\r\n"
	                "A005 OK Fetch completed.\r\n";
	const char *two = IMAP_FETCH3 "A005 OK Fetch completed.\r\n";
	struct t_imap_seen s;

	CHECK(t_fetch(t, 9, &s) == 0 && s.n == 0);
	CHECK(t_fetch(t, 8, &s) == 1 && s.uid[0] == 9);
	CHECK(t_fetch(two, 7, &s) == 1 && s.uid[0] == 9);   /* 7 and the UID-less one dropped */
}

static void test_imap_fetch_strings(void)
{
	const char *t = "* 1 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)] NIL)\r\n"
	                "* 2 FETCH (UID 4 BODY[HEADER.FIELDS (SUBJECT)] \"Subject: \\\"q\\\"\")\r\n"
	                "* 3 FETCH (UID 5 FLAGS (\\Seen))\r\n"        /* an unsolicited flag change: no body */
	                "A005 OK Fetch completed.\r\n";
	struct t_imap_seen s;

	CHECK(t_fetch(t, 0, &s) == 2);
	CHECK(s.uid[0] == 3 && s.len[0] == 0);
	CHECKF(s.uid[1] == 4 && !strcmp(s.hdr[1], "Subject: \"q\""), "%s", s.hdr[1]);
}

static void test_imap_fetch_refused(void)
{
	const char *no = IMAP_FETCH3 "A005 NO Some messages could not be FETCHed (0.001 + 0.000 secs).\r\n";
	const char *bad = "A005 BAD Error in IMAP command UID FETCH: Invalid uidset\r\n";
	const char *untagged = IMAP_FETCH3;
	struct t_imap_seen s;

	CHECK(t_fetch(no, 0, &s) == -1 && s.n == 0);   /* checked whole: none handed over */
	CHECK(t_fetch(bad, 0, &s) == -1);
	CHECK(t_fetch(untagged, 0, &s) == -1);
}

static void test_imap_fetch_truncated(void)
{
	const char *cut = "* 1 FETCH (UID 7 BODY[HEADER.FIELDS (SUBJECT)] {40}\r\nSubject: only part\r\n";
	const char *huge = "* 1 FETCH (UID 7 BODY[HEADER.FIELDS (SUBJECT)] {10485760}\r\nSubject: x\r\n\r\n)\r\n"
	                   "A005 OK Fetch completed.\r\n";
	const char *noclose = "* 1 FETCH (UID 7 BODY[HEADER.FIELDS (SUBJECT)] {3}\r\nabc\r\nA005 OK done\r\n";
	const char *digits = "* 1 FETCH (UID 7 BODY[X] {99999999999999999999}\r\nA005 OK done\r\n";
	struct t_imap_seen s;
	/* a copy in a buffer of exactly its size: ASan sees any read past it */
	size_t n = strlen(huge);
	char *h = malloc(n);

	memcpy(h, huge, n);
	CHECK(t_fetch(cut, 0, &s) == -1);
	CHECK(or_imap_fetch_parse(h, n, 0, t_imap_collect, &s) == -1);
	CHECK(t_fetch(noclose, 0, &s) == -1);
	CHECK(t_fetch(digits, 0, &s) == -1);
	for (size_t k = 0; k < n; k++)       /* every prefix: refused, never read past */
		CHECK(or_imap_fetch_parse(h, k, 0, t_imap_collect, &s) == -1);
	free(h);
}

static void test_imap_fetch_stop(void)
{
	const char *t = "* 1 FETCH (UID 1 BODY[X] {0}\r\n)\r\n* 2 FETCH (UID 2 BODY[X] {0}\r\n)\r\n"
	                "* 3 FETCH (UID 3 BODY[X] {0}\r\n)\r\nA005 OK done\r\n";
	struct t_imap_seen s;

	memset(&s, 0, sizeof s);
	s.stop_after = 2;
	CHECK(or_imap_fetch_parse(t, strlen(t), 0, t_imap_collect, &s) == 2 && s.n == 2);
}

static void test_imap_fetch_nesting_bounded(void)
{
	struct or_buf b = { 0 };
	struct t_imap_seen s;

	or_buf_puts(&b, "* 1 FETCH (UID 1 X ");
	for (int i = 0; i < 10000; i++)
		or_buf_puts(&b, "(");
	or_buf_puts(&b, ")\r\nA005 OK done\r\n");
	CHECK(or_imap_fetch_parse(b.s, b.len, 0, t_imap_collect, &s) == -1);
	or_buf_free(&b);
}

static void test_imap_search(void)
{
	const char *t = IMAP_LOGIN "* SEARCH 5 3 99\r\nA004 OK Search completed (0.001 + 0.000 secs).\r\n";
	const char *none = "* SEARCH\r\nA004 OK Search completed.\r\n";
	const char *no = "A004 BAD Error in IMAP command UID SEARCH: Unknown argument\r\n";
	long long *u;
	int n;

	CHECK(or_imap_search_parse(t, strlen(t), &u, &n) == 0 && n == 3 && u && u[0] == 3 && u[1] == 5 && u[2] == 99);
	free(u);
	CHECK(or_imap_search_parse(none, strlen(none), &u, &n) == 0 && n == 0);
	free(u);
	CHECK(or_imap_search_parse(no, strlen(no), &u, &n) == -1 && !u);
}

static void test_imap_search_bounded(void)
{
	struct or_buf b = { 0 };
	long long *u;
	int n;

	or_buf_puts(&b, "* SEARCH");
	for (int i = 1; i <= OR_IMAP_MAX_SEARCH + 500; i++)
		or_buf_printf(&b, " %d", i);
	or_buf_puts(&b, "\r\nA004 OK Search completed.\r\n");
	CHECK(or_imap_search_parse(b.s, b.len, &u, &n) == 0 && n == OR_IMAP_MAX_SEARCH);
	CHECK(u && u[0] == 501 && u[n - 1] == OR_IMAP_MAX_SEARCH + 500);   /* the newest kept */
	free(u);
	or_buf_free(&b);
}

#define UNIT_IMAP_TESTS T(test_imap_examine_dovecot), T(test_imap_examine_refused), T(test_imap_fetch_three), \
	T(test_imap_fetch_uid_after_body), T(test_imap_fetch_n_star_rule), T(test_imap_fetch_strings), \
	T(test_imap_fetch_refused), T(test_imap_fetch_truncated), T(test_imap_fetch_stop), \
	T(test_imap_fetch_nesting_bounded), T(test_imap_search), T(test_imap_search_bounded),
