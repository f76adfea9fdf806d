/* tests/unit-mail.c — unit tests of MAIL READING, included by tests/unit.c (one
 * translation unit with outreach.c); UNIT_MAIL_TESTS lists them for its table.
 *
 * The fixtures are written by hand after what each mailer sends: the field
 * order, the folding and the odd fields of a Gmail reply, an Outlook
 * auto-reply, a Postfix bounce and so on, with example.com addresses. */

/* The struct is large (the References ids): one per test, static. */
static struct or_mail t_mail;

static int t_classify(const char *hdr, const char **rule)
{
	CHECK(or_mail_parse(hdr, strlen(hdr), &t_mail) == 0);
	return or_mail_classify(&t_mail, rule);
}

#define MAIL_GMAIL_REPLY \
	"Delivered-To: anna@sender.example\r\n" \
	"Received: by 2002:a05:6a10:9f0b:b0:4e1:1c5f with SMTP id t11csp123456pxn;\r\n" \
	"        Wed, 2 Dec 2026 03:14:15 -0800 (PST)\r\n" \
	"MIME-Version: 1.0\r\n" \
	"References: <a1b2c3d4e5f60718.0001@mail.sender.example>\r\n" \
	" <a1b2c3d4e5f60718.0002@mail.sender.example>\r\n" \
	"\t<a1b2c3d4e5f60718.0003@mail.sender.example>\r\n" \
	"In-Reply-To: <a1b2c3d4e5f60718.0003@mail.sender.example>\r\n" \
	"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <Juergen.Mueller@Example.COM>\r\n" \
	"Date: Wed, 2 Dec 2026 12:14:02 +0100\r\n" \
	"Message-ID: <CAF=xYz+Q1w2e3r4t5y6u7i8o9p0@mail.gmail.com>\r\n" \
	"Subject: Re: =?UTF-8?B?R3LDvMOfZSBhdXMg?=\r\n" \
	" =?UTF-8?B?TcO8bmNoZW4=?=\r\n" \
	"To: Anna Sender <anna@sender.example>\r\n" \
	"Content-Type: multipart/alternative; boundary=\"000000000000a1b2c3d4e5f6\"\r\n" \
	"\r\n"

static void test_mail_gmail_human(void)
{
	const char *rule = NULL;

	CHECKF(t_classify(MAIL_GMAIL_REPLY, &rule) == OR_MAIL_HUMAN, "%s", rule);
	CHECK(rule && !strcmp(rule, "human"));
	CHECKF(!strcmp(t_mail.message_id, "<CAF=xYz+Q1w2e3r4t5y6u7i8o9p0@mail.gmail.com>"), "%s", t_mail.message_id);
	CHECK(!strcmp(t_mail.in_reply_to, "<a1b2c3d4e5f60718.0003@mail.sender.example>"));
	CHECKF(t_mail.nrefs == 3, "%d", t_mail.nrefs);
	CHECK(!strcmp(t_mail.refs[0], "<a1b2c3d4e5f60718.0001@mail.sender.example>"));
	CHECK(!strcmp(t_mail.refs[2], "<a1b2c3d4e5f60718.0003@mail.sender.example>"));
	CHECKF(!strcmp(t_mail.from, "juergen.mueller@example.com"), "%s", t_mail.from);
	/* two adjacent words: the fold between them is no space (RFC 2047 §6.2) */
	CHECKF(!strcmp(t_mail.subject, "Re: Gr\xc3\xbc\xc3\x9f" "e aus M\xc3\xbcnchen"), "%s", t_mail.subject);
	CHECKF(t_mail.date_at == (double)U("2026-12-02T11:14:02"), "%.0f", t_mail.date_at);
	CHECK(!strcmp(t_mail.date, "Wed, 2 Dec 2026 12:14:02 +0100"));
	CHECK(!strcmp(t_mail.content_type, "multipart/alternative") && !t_mail.report_type[0]);
	CHECKF(t_mail.fields == 11, "%d", t_mail.fields);
	CHECK(!t_mail.list_id && !t_mail.return_path_null && !t_mail.x_auto_response_suppress);
}

static void test_mail_outlook_auto_reply(void)
{
	const char *h =
		"Received: from AM9PR07MB7777.eurprd07.prod.outlook.com (2603:10a6:20b:2f4::9) by\r\n"
		" AM9PR07MB8888.eurprd07.prod.outlook.com with HTTPS; Wed, 2 Dec 2026 11:20:31 +0000\r\n"
		"From: Pieter de Vries <p.devries@example.nl>\r\n"
		"To: \"anna@sender.example\" <anna@sender.example>\r\n"
		"Subject: Automatic reply: Quick question about your fleet\r\n"
		"Thread-Topic: Quick question about your fleet\r\n"
		"Thread-Index: AQHZ1a2b3c4d5e6f7g8h9i0==\r\n"
		"Date: Wed, 2 Dec 2026 11:20:30 +0000\r\n"
		"Message-ID: <AM9PR07MB77774E0B1F9D2A3C4D5E6F7A8B9C0@AM9PR07MB7777.eurprd07.prod.outlook.com>\r\n"
		"In-Reply-To: <a1b2c3d4e5f60718.0042@mail.sender.example>\r\n"
		"References: <a1b2c3d4e5f60718.0042@mail.sender.example>\r\n"
		"X-MS-Has-Attach:\r\n"
		"X-Auto-Response-Suppress: All\r\n"
		"X-MS-Exchange-Inbox-Rules-Loop: p.devries@example.nl\r\n"
		"Auto-Submitted: auto-replied\r\n"
		"Content-Type: text/plain; charset=\"us-ascii\"\r\n"
		"MIME-Version: 1.0\r\n\r\n";
	const char *rule = NULL;

	CHECK(t_classify(h, &rule) == OR_MAIL_OOO);
	CHECKF(rule && !strcmp(rule, "auto-submitted=auto-replied"), "%s", rule);
	CHECK(t_mail.x_auto_response_suppress && !strcmp(t_mail.auto_submitted, "auto-replied"));
	CHECK(!strcmp(t_mail.from, "p.devries@example.nl"));
	CHECK(!strcmp(or_mail_class_name(OR_MAIL_OOO), "ooo"));
	/* without Auto-Submitted the subject alone decides */
	char *h2 = strdup(h), *as = strstr(h2, "Auto-Submitted");
	memcpy(as, "X-Nothing-Here", 14);
	CHECK(t_classify(h2, &rule) == OR_MAIL_OOO && !strcmp(rule, "subject:out-of-office"));
	free(h2);
}

static void test_mail_exchange_human_suppress(void)
{
	const char *h =
		"From: \"Smith, Jane\" <Jane.Smith@corp.example>\r\n"
		"To: Anna Sender <anna@sender.example>\r\n"
		"Subject: RE: Quick question about your fleet\r\n"
		"Thread-Topic: Quick question about your fleet\r\n"
		"Date: Wed, 2 Dec 2026 09:05:00 -0500\r\n"
		"Message-ID: <BN8PR12MB3456D1E2F3A4B5C6@BN8PR12MB3456.namprd12.prod.outlook.com>\r\n"
		"References: <a1b2c3d4e5f60718.0042@mail.sender.example>\r\n"
		"In-Reply-To: <a1b2c3d4e5f60718.0042@mail.sender.example>\r\n"
		"X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply\r\n"
		"Content-Type: multipart/alternative;\r\n\tboundary=\"_000_BN8PR12MB3456_\"\r\n"
		"MIME-Version: 1.0\r\n\r\n";
	const char *rule = NULL;

	/* Exchange sets X-Auto-Response-Suppress on people's mail: recorded, no verdict */
	CHECKF(t_classify(h, &rule) == OR_MAIL_HUMAN, "%s", rule);
	CHECK(t_mail.x_auto_response_suppress);
	CHECKF(!strcmp(t_mail.from, "jane.smith@corp.example"), "%s", t_mail.from);   /* a comma in quotes */
	CHECK(t_mail.date_at == (double)U("2026-12-02T14:05:00"));
}

#define MAIL_POSTFIX_DSN_HDR \
	"Return-Path: <>\r\n" \
	"Received: by mail.sender.example (Postfix)\r\n\tid 8D1C3E1D4A; Wed,  2 Dec 2026 12:00:05 +0000 (UTC)\r\n" \
	"Date: Wed,  2 Dec 2026 12:00:05 +0000 (UTC)\r\n" \
	"From: MAILER-DAEMON@mail.sender.example (Mail Delivery System)\r\n" \
	"Subject: Undelivered Mail Returned to Sender\r\n" \
	"To: anna@sender.example\r\n" \
	"Auto-Submitted: auto-replied\r\n" \
	"MIME-Version: 1.0\r\n" \
	"Content-Type: multipart/report; report-type=delivery-status;\r\n" \
	"\tboundary=\"8D1C3E1D4A.1796212805/mail.sender.example\"\r\n" \
	"Content-Transfer-Encoding: 8bit\r\n" \
	"Message-Id: <20261202120005.8D1C3E1D4A@mail.sender.example>\r\n\r\n"

static void test_mail_postfix_dsn_header(void)
{
	const char *rule = NULL;

	CHECK(t_classify(MAIL_POSTFIX_DSN_HDR, &rule) == OR_MAIL_BOUNCE);
	CHECKF(rule && !strcmp(rule, "report-type=delivery-status"), "%s", rule);
	CHECK(t_mail.return_path_null && !strcmp(t_mail.from, "mailer-daemon@mail.sender.example"));
	CHECK(!strcmp(t_mail.content_type, "multipart/report") && !strcmp(t_mail.report_type, "delivery-status"));
	CHECK(!strcmp(t_mail.message_id, "<20261202120005.8D1C3E1D4A@mail.sender.example>"));
	CHECK(t_mail.date_at == (double)U("2026-12-02T12:00:05"));   /* two spaces, a comment */
}

static void test_mail_gmail_dsn_failed_recipients(void)
{
	const char *h =
		"Return-Path: <>\r\n"
		"X-Failed-Recipients: nobody.here@example.org\r\n"
		"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
		"To: anna@sender.example\r\n"
		"Auto-Submitted: auto-replied\r\n"
		"Subject: Delivery Status Notification (Failure)\r\n"
		"References: <a1b2c3d4e5f60718.0042@mail.sender.example>\r\n"
		"In-Reply-To: <a1b2c3d4e5f60718.0042@mail.sender.example>\r\n"
		"Message-ID: <6575c8a1.050a0220.1f2b3.0001.GMR@mx.google.com>\r\n"
		"Date: Wed, 02 Dec 2026 04:00:01 -0800 (PST)\r\n"
		"Content-Type: multipart/mixed; boundary=\"000000000000d1e2f3\"\r\n\r\n";
	const char *rule = NULL;

	CHECK(t_classify(h, &rule) == OR_MAIL_BOUNCE && !strcmp(rule, "x-failed-recipients"));
	CHECK(t_mail.x_failed_recipients_present && !strcmp(t_mail.x_failed_recipients, "nobody.here@example.org"));
	CHECK(t_mail.date_at == (double)U("2026-12-02T12:00:01"));
	/* without X-Failed-Recipients: the daemon and its subject */
	char *h2 = strdup(h);
	memcpy(strstr(h2, "X-Failed-Recipients"), "X-Nothing-Here-Atall", 19);
	CHECK(t_classify(h2, &rule) == OR_MAIL_BOUNCE && !strcmp(rule, "mailer-daemon-subject"));
	free(h2);
}

static void test_mail_arf_complaint(void)
{
	const char *h =
		"Return-Path: <>\r\n"
		"From: <staff@hotmail.com>\r\n"
		"Date: Wed, 2 Dec 2026 10:10:10 -0800\r\n"
		"Subject: complaint about message from 203.0.113.7\r\n"
		"To: <fbl@sender.example>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/report; report-type=\"Feedback-Report\";\r\n"
		"    boundary=\"part1_13d.2e68ed54_boundary\"\r\n"
		"Message-ID: <abuse-20261202-1@hotmail.com>\r\n\r\n";
	const char *rule = NULL;

	CHECK(t_classify(h, &rule) == OR_MAIL_COMPLAINT && !strcmp(rule, "report-type=feedback-report"));
	CHECK(!strcmp(t_mail.report_type, "feedback-report"));   /* quoted, lower-cased */
}

static void test_mail_read_receipt(void)
{
	const char *h =
		"From: Jane Smith <jane.smith@corp.example>\r\n"
		"To: anna@sender.example\r\n"
		"Subject: Read: Quick question about your fleet\r\n"
		"Date: Wed, 2 Dec 2026 15:00:00 +0000\r\n"
		"Message-ID: <MDN-1@corp.example>\r\n"
		"In-Reply-To: <a1b2c3d4e5f60718.0042@mail.sender.example>\r\n"
		"Content-Type: multipart/report; boundary=\"mdn\"; report-type=disposition-notification\r\n"
		"MIME-Version: 1.0\r\n\r\n";
	const char *rule = NULL;

	CHECK(t_classify(h, &rule) == OR_MAIL_RECEIPT && !strcmp(rule, "report-type=disposition-notification"));
	CHECK(!strcmp(or_mail_class_name(OR_MAIL_RECEIPT), "receipt") && !strcmp(or_mail_class_name(99), "unknown"));
}

static void test_mail_list_message(void)
{
	const char *h =
		"From: Weekly Digest <digest@news.example>\r\n"
		"Reply-To: Digest Team <team@news.example>, other@news.example\r\n"
		"To: anna@sender.example\r\n"
		"Subject: Re: your question on the list\r\n"
		"List-Id: Fleet managers <fleet.lists.example>\r\n"
		"List-Unsubscribe: <mailto:leave-fleet@lists.example>, <https://lists.example/u/1>\r\n"
		"Precedence: list\r\n"
		"Message-ID: <list-1@lists.example>\r\n\r\n";
	const char *rule = NULL;

	CHECK(t_classify(h, &rule) == OR_MAIL_AUTO && !strcmp(rule, "precedence=list"));
	CHECK(t_mail.list_id && t_mail.list_unsubscribe && !strcmp(t_mail.reply_to, "team@news.example"));
	char *h2 = strdup(h);
	memcpy(strstr(h2, "Precedence"), "X-Nothing-", 10);
	CHECK(t_classify(h2, &rule) == OR_MAIL_AUTO && !strcmp(rule, "list-id"));
	free(h2);
}

static void test_mail_helpdesk_ack(void)
{
	const char *h =
		"From: Support <support@vendor.example>\r\n"
		"To: anna@sender.example\r\n"
		"Subject: [#48213] We received your request\r\n"
		"Auto-Submitted: auto-generated\r\n"
		"X-Auto-Response-Suppress: All\r\n"
		"In-Reply-To: <a1b2c3d4e5f60718.0042@mail.sender.example>\r\n"
		"Message-ID: <ticket-48213@vendor.example>\r\n\r\n";
	const char *rule = NULL;

	CHECK(t_classify(h, &rule) == OR_MAIL_AUTO && !strcmp(rule, "auto-submitted=auto-generated"));
	/* and the other rule-5 signals, one at a time */
	CHECK(t_classify("From: x@y.example\r\nReturn-Path: < > (null)\r\n\r\n", &rule) == OR_MAIL_AUTO &&
	      !strcmp(rule, "return-path-null"));
	CHECK(t_classify("From: Billing <NoReply-Billing@shop.example>\r\n\r\n", &rule) == OR_MAIL_AUTO &&
	      !strcmp(rule, "noreply-sender"));
	CHECK(t_classify("From: noreplyanna@shop.example\r\n\r\n", &rule) == OR_MAIL_HUMAN);
	CHECK(t_classify("From: a@b.example\r\nAuto-Submitted: No\r\n\r\n", &rule) == OR_MAIL_HUMAN);
	CHECK(t_classify("From: a@b.example\r\nPrecedence: BULK\r\n\r\n", &rule) == OR_MAIL_AUTO &&
	      !strcmp(rule, "precedence=bulk"));
	CHECK(t_classify("From: a@b.example\r\nX-Autoreply: yes\r\n\r\n", &rule) == OR_MAIL_OOO &&
	      !strcmp(rule, "x-autoreply"));
	CHECK(t_classify("From: a@b.example\r\nPrecedence: auto_reply\r\n\r\n", &rule) == OR_MAIL_OOO &&
	      !strcmp(rule, "precedence=auto_reply"));
	/* "Auto:" only with In-Reply-To */
	CHECK(t_classify("From: a@b.example\r\nSubject: Auto: Your mail\r\n\r\n", &rule) == OR_MAIL_HUMAN);
	CHECK(t_classify("From: a@b.example\r\nSubject: Auto: Your mail\r\nIn-Reply-To: <1@x>\r\n\r\n", &rule) ==
	      OR_MAIL_OOO);
	CHECK(t_classify("Subject: =?utf-8?q?R=C3=A9ponse_automatique=A0:_absent?=\r\n\r\n", &rule) == OR_MAIL_OOO);
	CHECK(t_classify("Subject: \xd0\x90\xd0\xb2\xd1\x82\xd0\xbe\xd0\xbe\xd1\x82\xd0\xb2\xd0\xb5\xd1\x82: Re\r\n\r\n",
	                 &rule) == OR_MAIL_OOO);
	CHECK(t_classify("Subject: Re: Out of office plans\r\n\r\n", &rule) == OR_MAIL_HUMAN);   /* anchored */
}

/* The first occurrence of a single field wins; names in any case; an
 * obsolete "Name :"; junk lines skipped. */
static void test_mail_fields_first_wins(void)
{
	const char *h =
		"from: <first@a.example>\r\n"
		"FROM: <second@b.example>\r\n"
		"Message-ID : <one@x>\r\n"
		"message-id: <two@x>\r\n"
		"this line is no field\r\n"
		"Subject: =?iso-8859-1?q?caf=E9?= and =?UTF-8?Q?caf=C3=A9?=\r\n"
		"Subject: second\r\n"
		"From a@b Wed Dec  2 12:00:00 2026\r\n"
		"Date: Tue, 1 Dec 26 23:59 EST\r\n\r\n"
		"Subject: in the body\r\n";

	CHECK(or_mail_parse(h, strlen(h), &t_mail) == 0);
	CHECK(!strcmp(t_mail.from, "first@a.example") && !strcmp(t_mail.message_id, "<one@x>"));
	/* another charset is kept as written, not guessed at */
	CHECKF(!strcmp(t_mail.subject, "=?iso-8859-1?q?caf=E9?= and caf\xc3\xa9"), "%s", t_mail.subject);
	CHECKF(t_mail.fields == 7, "%d", t_mail.fields);
	CHECKF(t_mail.date_at == (double)U("2026-12-02T04:59:00"), "%.0f", t_mail.date_at);
	const char *bad[] = { "Date: 31 Feb 2026 10:00 +0000\r\n", "Date: yesterday\r\n", "Date: 2 Dec 2026 25:00 +0000\r\n",
	                      "Date: 2 Dec 1969 10:00 +0000\r\n", "Date: 2 Dec 2026 10:00 +01\r\n" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CHECK(or_mail_parse(bad[i], strlen(bad[i]), &t_mail) == 0);
		CHECKF(t_mail.date_at == 0, "%s", bad[i]);
	}
	const char *mil = "Date: 2 Dec 2026 10:00:00 Z\r\n";   /* a military zone: -0000 */
	CHECK(or_mail_parse(mil, strlen(mil), &t_mail) == 0 && t_mail.date_at == (double)U("2026-12-02T10:00:00"));
}

static void test_mail_addresses(void)
{
	static const char *const in[][2] = {
		{ "From: Anna <ANNA@Example.COM>\r\n", "anna@example.com" },
		{ "From: anna@example.com (Anna <not@this>)\r\n", "anna@example.com" },
		{ "From: \"a <b@c> d\" <real@example.com>\r\n", "real@example.com" },
		{ "From: <@relay.example:route@example.com>\r\n", "route@example.com" },
		{ "From: Friends: <f@example.com>;\r\n", "f@example.com" },
		{ "From: John anna@example.com\r\n", "" },
		{ "From: anna@@example.com\r\n", "" },
		{ "From: <anna@example..com>\r\n", "" },
		{ "From: <>\r\n", "" },
		{ "From: \"Anna\"\r\n", "" },
		{ "From: <anna@exa\r\n mple.com>\r\n", "" },
	};
	for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
		CHECK(or_mail_parse(in[i][0], strlen(in[i][0]), &t_mail) == 0);
		CHECKF(!strcmp(t_mail.from, in[i][1]), "%s -> '%s'", in[i][0], t_mail.from);
	}
	const char *rt = "Reply-To: undisclosed-recipients:;, Bob <bob@example.com>\r\n";
	CHECK(or_mail_parse(rt, strlen(rt), &t_mail) == 0 && !strcmp(t_mail.reply_to, "bob@example.com"));
}

/* ---- hostile headers ---- */

/* No string of m holds a CR or LF, and each ends inside its array. */
static int t_mail_sane(const struct or_mail *m)
{
	const char *s[] = { m->message_id, m->in_reply_to, m->from, m->reply_to, m->subject, m->date };
	size_t cap[] = { sizeof m->message_id, sizeof m->in_reply_to, sizeof m->from, sizeof m->reply_to,
	                 sizeof m->subject, sizeof m->date };
	for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
		size_t k = strnlen(s[i], cap[i]);
		if (k == cap[i] || memchr(s[i], '\r', k) || memchr(s[i], '\n', k))
			return 0;
	}
	return m->nrefs >= 0 && m->nrefs <= OR_MAIL_MAX_REFS;
}

static void test_mail_hostile_nul_and_bare_lf(void)
{
	static const char h[] = "Subject: a\0b\r\nFrom: x@y.example\nMessage-ID: <m\0@x>\n"
	                        "Message-ID: <ok@x>\nX-Autoreply: yes\r\n\nX-Failed-Recipients: z@y\n";
	const char *rule = NULL;

	CHECK(or_mail_parse(h, sizeof h - 1, &t_mail) == 0);
	CHECK(t_mail_sane(&t_mail));
	CHECKF(!strcmp(t_mail.subject, "a b"), "%s", t_mail.subject);   /* the NUL is data, made a space */
	CHECK(!strcmp(t_mail.from, "x@y.example"));
	CHECK(!t_mail.message_id[0]);   /* the first Message-ID won, and had no id that is one */
	CHECK(t_mail.x_autoreply && !t_mail.x_failed_recipients_present);   /* the body is not read */
	CHECK(or_mail_classify(&t_mail, &rule) == OR_MAIL_OOO);
	/* never past n: the same bytes cut before the X-Autoreply line */
	size_t cut = (size_t)((const char *)memmem(h, sizeof h - 1, "X-Auto", 6) - h) + 3;
	CHECK(or_mail_parse(h, cut, &t_mail) == 0 && !t_mail.x_autoreply && t_mail.fields == 4);
}

static void test_mail_hostile_large(void)
{
	struct or_buf b = { 0 };
	const char *rule;

	/* one 64 KiB field, folded every 70 bytes, then a Subject */
	or_buf_puts(&b, "X-Junk: ");
	for (int i = 0; b.len < 64 * 1024; i++)
		or_buf_puts(&b, i % 70 == 69 ? "\r\n x" : "x");
	or_buf_puts(&b, "\r\nSubject:");
	for (int i = 0; i < 100; i++)   /* 72-byte words of 45 bytes each, folded */
		or_buf_puts(&b, "\r\n =?UTF-8?B?QUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJD?=");
	or_buf_puts(&b, "\r\n\r\n");
	CHECK(or_mail_parse(b.s, b.len, &t_mail) == 0 && t_mail.fields == 2 && t_mail_sane(&t_mail));
	CHECKF(strlen(t_mail.subject) > 900 && strlen(t_mail.subject) <= OR_MAX_HEADER, "%zu", strlen(t_mail.subject));
	CHECK(!strncmp(t_mail.subject, "ABCABC", 6));
	/* a 64 KiB Subject line: cut, not overrun */
	b.len = 0;
	or_buf_puts(&b, "Subject: x");   /* odd: the cut falls inside a character */
	while (b.len < 64 * 1024)
		or_buf_puts(&b, "\xc3\xa9");
	CHECK(or_mail_parse(b.s, b.len, &t_mail) == 0 && strlen(t_mail.subject) <= OR_MAX_HEADER);
	CHECK(or_utf8_valid(t_mail.subject, strlen(t_mail.subject)));   /* not cut inside a character */
	/* 5,000 short fields */
	b.len = 0;
	for (int i = 0; i < 5000; i++)
		or_buf_printf(&b, "X-F%d: %d\r\n", i, i);
	or_buf_puts(&b, "From: last@example.com\r\n\r\n");
	CHECK(or_mail_parse(b.s, b.len, &t_mail) == 0 && t_mail.fields == 5001 && !strcmp(t_mail.from, "last@example.com"));
	CHECK(or_mail_classify(&t_mail, &rule) == OR_MAIL_HUMAN);
	or_buf_free(&b);
}

static void test_mail_hostile_references(void)
{
	struct or_buf b = { 0 };

	or_buf_puts(&b, "References:");
	for (int i = 1; i <= 500; i++)
		or_buf_printf(&b, " <id%d@x.example>%s", i, i % 3 ? "" : "\r\n");
	or_buf_puts(&b, " <unterminated@x\r\nIn-Reply-To: junk <irt@x> <second@x>\r\n\r\n");
	CHECK(or_mail_parse(b.s, b.len, &t_mail) == 0 && t_mail_sane(&t_mail));
	CHECKF(t_mail.nrefs == OR_MAIL_MAX_REFS, "%d", t_mail.nrefs);
	CHECKF(!strcmp(t_mail.refs[0], "<id469@x.example>"), "%s", t_mail.refs[0]);   /* the last 32, in order */
	CHECK(!strcmp(t_mail.refs[OR_MAIL_MAX_REFS - 1], "<id500@x.example>"));
	CHECK(!strcmp(t_mail.in_reply_to, "<irt@x>"));
	or_buf_free(&b);
}

static void test_mail_hostile_encoded_words(void)
{
	static const char *const in[][2] = {
		{ "Subject: =?UTF-8?B?SGVsbG8", "=?UTF-8?B?SGVsbG8" },                 /* unterminated */
		{ "Subject: =?UTF-8?Q?a=0D=0Ab?=", "a  b" },                            /* CR LF in Q */
		{ "Subject: =?UTF-8?B?YQ0KYg==?=", "a  b" },                            /* CR LF in B */
		{ "Subject: =?UTF-8?B?AA==?= x", "x" },                                 /* a NUL */
		{ "Subject: =?UTF-8?X?abc?=", "=?UTF-8?X?abc?=" },
		{ "Subject: =??Q?abc?=", "=??Q?abc?=" },
		{ "Subject: =?UTF-8?Q?a b?=", "=?UTF-8?Q?a b?=" },
		{ "Subject: =?UTF-8?Q?=?=", "=" },
		{ "Subject: =?UTF-8?Q?=4?=", "=4" },
		{ "Subject: =?utf-8*en?q?hi?= =?UTF-8?Q?_there?=", "hi there" },
		{ "Subject: =?UTF-8?Q?a?=  x  =?UTF-8?Q?b?=", "a  x  b" },
	};
	for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
		CHECK(or_mail_parse(in[i][0], strlen(in[i][0]), &t_mail) == 0 && t_mail_sane(&t_mail));
		CHECKF(!strcmp(t_mail.subject, in[i][1]), "%s -> '%s'", in[i][0], t_mail.subject);
	}
}

/* ---- DSNs ---- */

/* A Postfix bounce's body (bounce(8)'s template, a 5.1.1 from the remote). */
#define MAIL_POSTFIX_DSN_BODY \
	"This is a MIME-encapsulated message.\r\n\r\n" \
	"--8D1C3E1D4A.1796212805/mail.sender.example\r\n" \
	"Content-Description: Notification\r\n" \
	"Content-Type: text/plain; charset=us-ascii\r\n\r\n" \
	"This is the mail system at host mail.sender.example.\r\n\r\n" \
	"I'm sorry to have to inform you that your message could not\r\n" \
	"be delivered to one or more recipients.\r\n\r\n" \
	"--8D1C3E1D4A.1796212805/mail.sender.example-not-this\r\n" \
	"Final-Recipient: rfc822; decoy@example.org\r\n\r\n" \
	"<nobody@example.org>: host mx.example.org[198.51.100.25] said: 550 5.1.1\r\n" \
	"    <nobody@example.org>: Recipient address rejected: User unknown\r\n\r\n" \
	"--8D1C3E1D4A.1796212805/mail.sender.example\r\n" \
	"Content-Description: Delivery report\r\n" \
	"Content-Type: message/delivery-status\r\n\r\n" \
	"Reporting-MTA: dns; mail.sender.example\r\n" \
	"X-Postfix-Queue-ID: 8D1C3E1D4A\r\n" \
	"X-Postfix-Sender: rfc822; anna@sender.example\r\n" \
	"Arrival-Date: Wed,  2 Dec 2026 12:00:01 +0000 (UTC)\r\n\r\n" \
	"Final-Recipient: rfc822; Nobody@Example.org\r\n" \
	"Original-Recipient: rfc822;info@example.org\r\n" \
	"Action: failed\r\n" \
	"Status: 5.1.1\r\n" \
	"Remote-MTA: dns; mx.example.org\r\n" \
	"Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address\r\n" \
	"    rejected:\tUser unknown in virtual mailbox table\r\n\r\n" \
	"--8D1C3E1D4A.1796212805/mail.sender.example\r\n" \
	"Content-Description: Undelivered Message Headers\r\n" \
	"Content-Type: text/rfc822-headers\r\n\r\n" \
	"Return-Path: <anna@sender.example>\r\n" \
	"From: Anna Sender <anna@sender.example>\r\n" \
	"To: nobody@example.org\r\n" \
	"Subject: Quick question about your fleet\r\n" \
	"Message-ID: <a1b2c3d4e5f60718.0042@mail.sender.example>\r\n\r\n" \
	"--8D1C3E1D4A.1796212805/mail.sender.example--\r\n"

static void test_mail_dsn_postfix(void)
{
	static struct or_dsn d;
	const char *b = MAIL_POSTFIX_DSN_BODY;

	CHECK(or_dsn_parse(b, strlen(b), &d) == 1);
	CHECKF(!strcmp(d.rcpt, "nobody@example.org"), "%s", d.rcpt);   /* Final-Recipient, not the alias */
	CHECK(!strcmp(d.action, "failed") && !strcmp(d.status, "5.1.1") && d.hard);
	CHECKF(!strcmp(d.diag, "smtp; 550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in "
	                       "virtual mailbox table"), "%s", d.diag);
	CHECKF(!strcmp(d.orig_msgid, "<a1b2c3d4e5f60718.0042@mail.sender.example>"), "%s", d.orig_msgid);
	/* the first 4 KiB only, cut inside the headers part: the recipient still read */
	size_t cut = (size_t)(strstr(b, "Subject: Quick") - b);
	CHECK(or_dsn_parse(b, cut, &d) == 1 && d.hard && !d.orig_msgid[0]);
	/* cut inside the delivery-status part, before Status */
	cut = (size_t)(strstr(b, "Status: 5.1.1") - b);
	CHECK(or_dsn_parse(b, cut, &d) == 1 && !strcmp(d.action, "failed") && !d.status[0] && !d.hard);
	/* cut before any recipient: none */
	cut = (size_t)(strstr(b, "Final-Recipient: rfc822; Nobody") - b);
	CHECK(or_dsn_parse(b, cut, &d) == 0 && !d.rcpt[0]);
}

static void test_mail_dsn_variants(void)
{
	static struct or_dsn d;
	/* Exchange-style: the delayed warning, Original-Recipient only, LF line ends */
	const char *delayed =
		"--b1\nContent-Type: text/plain\n\nDelayed.\n"
		"--b1\nContent-Type: Message/Delivery-Status ; charset=x\n\n"
		"Reporting-MTA: dns;mx.corp.example\n\n"
		"Original-Recipient: rfc822;<Late@Corp.Example>\nAction: Delayed\nStatus: 4.4.7\n\n"
		"--b1\nContent-Type: message/rfc822\n\nFrom: a@b\nMessage-Id: <orig@sender.example>\n\nbody\n--b1--\n";
	CHECK(or_dsn_parse(delayed, strlen(delayed), &d) == 1);
	CHECK(!strcmp(d.rcpt, "late@corp.example") && !strcmp(d.action, "delayed") && !strcmp(d.status, "4.4.7"));
	CHECK(!d.hard && !strcmp(d.orig_msgid, "<orig@sender.example>"));
	/* a 5.x.x that was delivered, and a status that is none */
	const char *odd = "--x\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\n"
	                  "Action: relayed\r\nStatus: 5.1.1x\r\n";
	CHECK(or_dsn_parse(odd, strlen(odd), &d) == 1 && !d.hard && !d.status[0]);
	/* no delivery-status part, no boundary, a signature line: 0 */
	const char *none[] = { "--x\r\nContent-Type: text/plain\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\n",
	                       "Final-Recipient: rfc822; a@b.example\r\nAction: failed\r\n",
	                       "hello\r\n-- \r\nFinal-Recipient: rfc822; a@b.example\r\n", "", "--" };
	for (size_t i = 0; i < sizeof none / sizeof *none; i++)
		CHECKF(or_dsn_parse(none[i], strlen(none[i]), &d) == 0 && !d.rcpt[0], "%zu", i);
	/* NULs and junk inside, a boundary of 71 characters (none) */
	static const char nul[] = "--q\r\nContent-Type: message/delivery-status\r\n\r\n\0\0junk\r\n"
	                          "Final-Recipient: rfc822; x\0y@b.example\r\nFinal-Recipient: rfc822; z@b.example\r\n";
	CHECK(or_dsn_parse(nul, sizeof nul - 1, &d) == 0);   /* the first Final-Recipient wins, and is none */
	char longb[200];
	snprintf(longb, sizeof longb, "--%071d\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: "
	         "rfc822; a@b.example\r\n", 0);
	CHECK(or_dsn_parse(longb, strlen(longb), &d) == 0);
}

/* ---- return dates ---- */

/* or_ooo_return_day on a string; *day as YYYY-MM-DD in iso. */
static int t_ooo(const char *text, const char *today, char *iso, int *inclusive)
{
	int day = -1, y, m, d;
	int rc = or_ooo_return_day(text, strlen(text), or_day_of_iso(today), &day, inclusive);

	*iso = 0;
	if (rc == 1) {
		or_civil_from_days(day, &y, &m, &d);
		snprintf(iso, 11, "%04d-%02d-%02d", y, m, d);
	} else if (day != 0 || *inclusive != 0) {
		return -2;   /* nothing found must leave 0s */
	}
	return rc;
}

static void test_mail_ooo_dates(void)
{
	static const struct { const char *text, *today; int rc; const char *day; int inclusive; } c[] = {
		{ "Thank you for your message. I am out of the office and will be back on 14 December.\r\n"
		  "For urgent matters please contact sales@example.com.", "2026-12-02", 1, "2026-12-14", 0 },
		{ "Vielen Dank f\xc3\xbcr Ihre Nachricht. Ich bin bis einschlie\xc3\x9flich 11.12.2026 nicht im B\xc3\xbcro "
		  "und habe keinen Zugriff auf E-Mails.", "2026-12-02", 1, "2026-12-11", 1 },
		{ "I'm travelling until December 8 with limited access to email.", "2026-12-02", 1, "2026-12-08", 1 },
		{ "Out of office. Returning 2026-12-21.", "2026-12-02", 1, "2026-12-21", 0 },
		{ "I will be back on 2026-11-20.", "2026-12-02", 0, "", 0 },                   /* past */
		{ "I will be back on 2027-03-02.", "2026-12-02", 0, "", 0 },                   /* 90 days out */
		{ "I am away on holiday with no access to email.", "2026-12-02", 0, "", 0 },   /* no date */
		{ "Back on 14 December.", "2026-12-14", 0, "", 0 },                            /* today: not after it */
		{ "Back on 31 January.", "2026-12-02", 1, "2027-01-31", 0 },                   /* no year: the next one */
		{ "Back on 1 February 2027.", "2026-12-02", 0, "", 0 },                        /* 61 days */
		{ "Back on 31 January 2027.", "2026-12-02", 1, "2027-01-31", 0 },              /* 60 days */
		{ "On 14 December I will answer.", "2026-12-02", 0, "", 0 },                   /* a date, no cue */
		{ "Back on 31 November.", "2026-11-02", 0, "", 0 },                            /* no such day */
		{ "Je suis absent jusqu\xe2\x80\x99" "au 18 d\xc3\xa9" "cembre inclus.", "2026-12-02", 1, "2026-12-18", 1 },
		{ "Estar\xc3\xa9 fuera hasta el 9 de diciembre de 2026.", "2026-12-02", 1, "2026-12-09", 1 },
		{ "Ik ben afwezig tot en met 10-12-2026.", "2026-12-02", 1, "2026-12-10", 1 },
		{ "Ik ben vanaf maandag 14 december weer aanwezig.", "2026-12-02", 1, "2026-12-14", 0 },
		{ "\xd0\xaf \xd0\xb2 \xd0\xbe\xd1\x82\xd0\xbf\xd1\x83\xd1\x81\xd0\xba\xd0\xb5 \xd0\x94\xd0\x9e 15 "
		  "\xd0\x94\xd0\x95\xd0\x9a\xd0\x90\xd0\x91\xd0\xa0\xd0\xaf 2026.", "2026-12-02", 1, "2026-12-15", 1 },  /* ДО 15 ДЕКАБРЯ */
		{ "Ab dem 14.12. bin ich wieder erreichbar.", "2026-12-02", 1, "2026-12-14", 0 },
		{ "Out until Friday 11/12/2026, back Monday.", "2026-12-02", 1, "2026-12-11", 1 },  /* day first */
		{ "Out from 1 December, back on December 9th, 2026.", "2026-12-02", 1, "2026-12-09", 0 },
		{ "Away until Friday, back on 14 December.", "2026-12-02", 1, "2026-12-14", 0 },   /* the nearest cue */
		{ "Until 14.30 today only.", "2026-12-02", 0, "", 0 },                         /* a time */
		{ "I am away until <b>14&nbsp;December</b>.", "2026-12-02", 1, "2026-12-14", 1 },
	};
	char iso[16];
	int inc;

	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		int rc = t_ooo(c[i].text, c[i].today, iso, &inc);
		CHECKF(rc == c[i].rc && !strcmp(iso, c[i].day) && (rc == 0 || inc == c[i].inclusive),
		       "%zu: rc %d day %s inclusive %d", i, rc, iso, inc);
	}
}

static void test_mail_ooo_encodings(void)
{
	/* quoted-printable, soft breaks inside the cue and the date, as the caller fetched it */
	const char *qp = "Guten Tag,=0D=0A=0D=0Aich bin bis einschlie=C3=9F=\r\nlich 11.=\r\n12.2026 nicht im B=C3=BCro.\r\n";
	/* a multipart/alternative body (text part in QP, html after it) */
	const char *mp =
		"This is a multi-part message in MIME format.\r\n\r\n"
		"--_000_AM9PR07MB_\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"I=E2=80=99m out of the office until Wednesday, December 9, 2026. Reg=\r\nards\r\n\r\n"
		"--_000_AM9PR07MB_\r\nContent-Type: text/html; charset=\"utf-8\"\r\n\r\n"
		"<p>I am back on 1 December</p>\r\n--_000_AM9PR07MB_--\r\n";
	/* base64 of "I will be back on 17 December 2026." with no header given */
	const char *b64 = "SSB3aWxsIGJlIGJhY2sgb24gMTcgRGVjZW1iZXIgMjAyNi4=\r\n";
	/* an "-----Original Message-----" line is no boundary */
	const char *orig = "Back on 16 December.\r\n\r\n-----Original Message-----\r\nFrom: Anna\r\n";
	/* a mixed body whose first part is an alternative, whose first is text */
	const char *nested =
		"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
		"--inner\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
		"VW50aWwgMTAgRGVjZW1iZXIu\r\n--inner--\r\n--outer--\r\n";
	char iso[16];
	int inc;

	CHECK(t_ooo(qp, "2026-12-02", iso, &inc) == 1 && !strcmp(iso, "2026-12-11") && inc);
	CHECKF(t_ooo(mp, "2026-12-02", iso, &inc) == 1 && !strcmp(iso, "2026-12-09") && inc, "%s", iso);
	CHECKF(t_ooo(b64, "2026-12-02", iso, &inc) == 1 && !strcmp(iso, "2026-12-17") && !inc, "%s", iso);
	CHECKF(t_ooo(orig, "2026-12-02", iso, &inc) == 1 && !strcmp(iso, "2026-12-16"), "%s", iso);
	CHECKF(t_ooo(nested, "2026-12-02", iso, &inc) == 1 && !strcmp(iso, "2026-12-10") && inc, "%s", iso);
}

static void test_mail_ooo_hostile(void)
{
	struct or_buf b = { 0 };
	char iso[16];
	int inc, day = 7;

	CHECK(or_ooo_return_day("", 0, or_day_of_iso("2026-12-02"), &day, &inc) == 0 && day == 0);
	/* NULs, junk and a date past the first 8 KiB read */
	or_buf_add(&b, "back on \0\0 ", 11);
	for (int i = 0; i < 1000; i++)
		or_buf_puts(&b, "9.9.9 =ZZ <a\xff\xfe ");
	or_buf_puts(&b, "back on 14 December.");
	CHECK(t_ooo(b.s, "2026-12-02", iso, &inc) == 0);
	/* the same date inside the first 4 KiB is found through the junk */
	b.len = 0;
	or_buf_add(&b, "\0\0\xff=\r\n", 6);
	or_buf_puts(&b, "  back\r\n\ton 14 December.");
	CHECK(or_ooo_return_day(b.s, b.len, or_day_of_iso("2026-12-02"), &day, &inc) == 1 &&
	      day == or_day_of_iso("2026-12-14"));
	or_buf_free(&b);
}

#define UNIT_MAIL_TESTS T(test_mail_gmail_human), T(test_mail_outlook_auto_reply), \
	T(test_mail_exchange_human_suppress), T(test_mail_postfix_dsn_header), \
	T(test_mail_gmail_dsn_failed_recipients), T(test_mail_arf_complaint), T(test_mail_read_receipt), \
	T(test_mail_list_message), T(test_mail_helpdesk_ack), T(test_mail_fields_first_wins), \
	T(test_mail_addresses), T(test_mail_hostile_nul_and_bare_lf), T(test_mail_hostile_large), \
	T(test_mail_hostile_references), T(test_mail_hostile_encoded_words), \
	T(test_mail_dsn_postfix), T(test_mail_dsn_variants), \
	T(test_mail_ooo_dates), T(test_mail_ooo_encodings), T(test_mail_ooo_hostile),
