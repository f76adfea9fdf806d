/*
 * fuzz-job — a job file (untrusted JSON) through or_job_parse, or_job_ids and
 * or_message_build, as ingest and the send path use them.
 *
 * The config (two file-provider senders, one with a Cyrillic display name,
 * and one-click unsubscribe) is loaded once from a string; the HMAC key is a
 * fixed one.  Input bits pick the sender and whether List-Unsubscribe is
 * added (or_key_loaded).  A job with "thread" is built as a reply.
 *
 * Checked on every message built:
 *   - no NUL, no bare CR or LF, every line at most 998 octets (RFC 5322 2.1.1);
 *   - the header section ends in an empty line; each header line is
 *     "Name:" (printable ASCII name) or a fold starting with SP or TAB;
 *   - Date, Message-ID, From, To, Subject, MIME-Version, X-Outreach-Job once each;
 *   - every encoded word "=?UTF-8?B?...?=" in the headers is at most 75
 *     characters and decodes to valid UTF-8 without NUL (a word never splits
 *     a character and never carries bytes from beyond the value);
 *   - the body is 7-bit (quoted-printable) and the Message-ID has no controls;
 * and on every parsed job: the recipient has an '@' and rcpt_domain points
 * after it; the ledger id is 16 lower-case hex digits and stable.
 */
#include "../../outreach.c"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz-job: check failed: %s (line %d)\n", #c, __LINE__); \
	__builtin_trap(); } } while (0)

static const char fuzz_conf[] =
	"spool = \"/nonexistent/outreach-fuzz/spool\";\n"
	"timezone = \"UTC\";\n"
	"providers = ( { name = \"dry\"; type = \"file\"; dir = \"/nonexistent/outreach-fuzz/outbox\"; } );\n"
	"senders = (\n"
	"  { name = \"acme-1\"; from = \"Анна Смирнова <anna@acme-mail.example>\"; provider = \"dry\"; },\n"
	"  { name = \"shared\"; from = \"Outreach Team <team@agency-mail.example>\"; provider = \"dry\"; }\n"
	");\n"
	"unsubscribe = { url = \"https://acme-mail.example/u\"; mailto = \"unsub@acme-mail.example\"; };\n";

static struct or_config *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];

	(void)argc; (void)argv;
	if (sodium_init() < 0)
		abort();
	or_clock_init();
	or_random_init();
	cfg = malloc(sizeof *cfg);
	if (!cfg || or_config_load_string(cfg, fuzz_conf, "fuzz-job.conf", err, sizeof err)) {
		fprintf(stderr, "fuzz-job: config: %s\n", cfg ? err : "out of memory");
		abort();
	}
	for (size_t i = 0; i < sizeof or_key; i++)
		or_key[i] = (unsigned char)(0xA5 ^ i);
	or_key_loaded = 1;
	return 0;
}

static int count_header(const char *hdr, size_t hlen, const char *name)
{
	size_t nl = strlen(name);
	int n = 0;

	for (size_t i = 0; i < hlen; ) {
		if (hlen - i > nl && !strncasecmp(hdr + i, name, nl) && hdr[i + nl] == ':')
			n++;
		const char *e = memchr(hdr + i, '\n', hlen - i);
		i = e ? (size_t)(e - hdr) + 1 : hlen;
	}
	return n;
}

static void check_words(const char *line, size_t n)
{
	const char *p = line, *end = line + n, *w;

	while (p < end && (w = memmem(p, (size_t)(end - p), "=?UTF-8?B?", 10))) {
		const char *e = memmem(w + 10, (size_t)(end - w - 10), "?=", 2);
		unsigned char raw[64];
		size_t rl = 0;
		CHECK(e != NULL);
		CHECK(e + 2 - w <= 75);
		CHECK(sodium_base642bin(raw, sizeof raw, w + 10, (size_t)(e - w - 10), NULL, &rl, NULL,
		                        sodium_base64_VARIANT_ORIGINAL) == 0);
		CHECK(rl > 0 && !memchr(raw, 0, rl));
		CHECK(or_utf8_valid((const char *)raw, rl));
		p = e + 2;
	}
}

static void check_message(const struct or_buf *m, const char *msgid)
{
	const char *s = m->s;
	size_t n = m->len, hend = 0;

	CHECK(s && n > 0 && strlen(s) == n);                       /* no NUL */
	for (size_t i = 0, start = 0; i < n; i++) {
		if (s[i] == '\r')
			CHECK(i + 1 < n && s[i + 1] == '\n');           /* no bare CR */
		if (s[i] != '\n')
			continue;
		CHECK(i > 0 && s[i - 1] == '\r');                     /* no bare LF */
		size_t len = i - 1 - start;
		CHECK(len <= 998);
		if (!hend) {
			const char *l = s + start;
			if (len == 0) {
				hend = start;                                   /* the blank line */
			} else if (*l == ' ' || *l == '\t') {
				CHECK(start > 0);                               /* a fold continues a field */
			} else {
				size_t k = 0;
				while (k < len && l[k] >= 33 && l[k] <= 126 && l[k] != ':')
					k++;
				CHECK(k > 0 && k < len && l[k] == ':');         /* "Name:" */
			}
			if (len) {   /* the value: after "Name:" (a field name may hold "=?") */
				const char *v = (*l == ' ' || *l == '\t') ? l : memchr(l, ':', len) + 1;
				check_words(v, len - (size_t)(v - l));
			}
		} else {
			for (size_t k = start; k < i - 1; k++)             /* quoted-printable body */
				CHECK((s[k] >= 32 && s[k] <= 126) || s[k] == '\t');
		}
		start = i + 1;
	}
	CHECK(hend > 0);
	CHECK(n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n');
	static const char *const once[] = { "Date", "Message-ID", "From", "To", "Subject", "MIME-Version",
	                                    "X-Outreach-Job" };
	for (size_t i = 0; i < sizeof once / sizeof *once; i++)
		CHECK(count_header(s, hend, once[i]) == 1);
	CHECK(msgid[0] == '<' && msgid[strlen(msgid) - 1] == '>' && strchr(msgid, '@') && !or_has_ctl(msgid));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct or_job job;
	char field[160], err[512];

#ifdef FUZZ_SKIP_KNOWN   /* window.days near 128 bytes: the or_window_parse over-read */
	{
		char *copy = strndup((const char *)data, size), *days;
		const char *args[] = { copy };
		days = or_json_sql("SELECT json_extract(?1, '$.window.days') WHERE json_valid(?1)", args, 1);
		int known = days && strlen(days) >= 120;
		free(days);
		free(copy);
		if (known)
			return 0;
	}
#endif
	if (or_job_parse((const char *)data, size, &job, field, sizeof field, err, sizeof err)) {
		CHECK(memchr(err, 0, sizeof err) && memchr(field, 0, sizeof field) && *err);
		return 0;
	}
	CHECK(job.client && *job.client && job.to && job.subject && job.campaign && (job.text || job.html));
	CHECK(strchr(job.rcpt, '@') && job.rcpt_domain == strrchr(job.rcpt, '@') + 1 && *job.rcpt_domain);

	char producer[OR_MAX_ID + 8], ledger[OR_ID_HEX + 1], producer2[OR_MAX_ID + 8], ledger2[OR_ID_HEX + 1];
	or_job_ids(&job, producer, sizeof producer, ledger);
	or_job_ids(&job, producer2, sizeof producer2, ledger2);
	CHECK(strlen(ledger) == OR_ID_HEX && strspn(ledger, "0123456789abcdef") == OR_ID_HEX);
	CHECK(*producer && !strcmp(producer, producer2) && !strcmp(ledger, ledger2));

#ifdef FUZZ_SKIP_KNOWN   /* exploring past reported bugs (see corpus/README): build by hand with this */
	int known = strlen(job.to) > 250 || (job.reply_to && strlen(job.reply_to) > 250);
	for (int i = 0; i < job.nheaders; i++)
		known |= strlen(job.headers[i].key) >= 55 && !or_ascii_printable(job.headers[i].val);
	if (known) {
		or_job_free(&job);
		return 0;
	}
#endif
	if (job.thread) {   /* as the send path sets them for a reply */
		job.in_reply_to = or_xstrdup("<0123456789abcdef.fedcba9876543210@acme-mail.example>");
		struct or_buf first = { 0 };   /* the first message's subject, as rendered */
		CHECK(or_render(job.subject, &job, 0, &first, err, sizeof err) == 0);
		job.re_subject = or_xstrdup(first.s);
		or_buf_free(&first);
	}
	unsigned pick = 0;
	for (size_t i = 0; i < size; i++)
		pick = pick * 31 + data[i];
	or_key_loaded = (int)(pick & 1);
	const struct or_sender *snd = &cfg->senders[(pick >> 1) % (unsigned)cfg->nsenders];
	time_t date = job.not_before ? job.not_before : (time_t)1796029200;
	struct or_buf msg = { 0 };
	char msgid[512];
	if (or_message_build(cfg, &job, snd, ledger, date, &msg, msgid, sizeof msgid, err, sizeof err) == 0)
		check_message(&msg, msgid);
	else
		CHECK(0);   /* or_job_parse checked every placeholder: building cannot fail */
	or_key_loaded = 1;
	or_buf_free(&msg);
	or_job_free(&job);
	return 0;
}
