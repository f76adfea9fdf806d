/*
 * fuzz-http — or_http_classify, the one table that turns a finished transfer
 * (libcurl result, status, response headers and body) into a verdict, for
 * each provider type; and or_parse_http_date.
 *
 * Input layout:
 *   byte 0   bit 0: h->capped (the body was cut at 1 MiB); bits 1..7: h->off
 *            (body bytes handed to libcurl; 0 = nothing sent)
 *   byte 1,2 the status: byte 2 < 0x80 picks a common one from a table by
 *            byte 1, else ((byte 1 << 8 | byte 2) & 0x7fff) % 700 - 10
 *   byte 3   the CURLcode: < 0x60 CURLE_OK, else byte 3 - 0x60 (past CURL_LAST too;
 *            CURLE_OUT_OF_MEMORY is skipped: it ends the process with 75 by design)
 *   byte 4   bit 0: h->errbuf gets the first line of the body
 *   rest     response headers, "\n\n", response body (no "\n\n": all headers)
 * The struct or_http is built by hand (its easy handle made once and reused).
 *
 * Checked for SES, SendGrid, Mailgun and SMTP: the verdict is one of the four;
 * why, provider_id and message_id are NUL-terminated; provider_id and
 * message_id hold no control characters and why none but TAB (it goes to
 * logs, .err files and `show` as one line); OR_DOUBT only when body bytes
 * went out (README: only transfers in flight can be in doubt); sent only on
 * 2xx or an SMTP transfer libcurl finished; a throttle wait is not infinite.
 * or_parse_http_date: a parsed date formats back and parses to the same time.
 */
#include "../../outreach.c"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz-http: check failed: %s (line %d)\n", #c, __LINE__); \
	__builtin_trap(); } } while (0)

static CURL *easy;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	if (sodium_init() < 0)
		abort();
	or_clock_init();
	or_random_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	easy = curl_easy_init();
	if (!easy)
		abort();
	return 0;
}

static const long statuses[] = { 200, 201, 202, 204, 250, 301, 302, 400, 401, 402, 403, 404, 413, 421, 429,
	450, 451, 452, 454, 500, 502, 503, 504, 530, 534, 535, 538, 550, 551, 552, 553, 554, 0, -1 };

static void check_date(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char back[128];
	struct tm tm;

	memcpy(s, data, size);
	s[size] = 0;
	time_t t = or_parse_http_date(s);
	if (t != -1 && gmtime_r(&t, &tm) && tm.tm_year >= -1900 && tm.tm_year <= 9999 - 1900) {
		strftime(back, sizeof back, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		CHECK(or_parse_http_date(back) == t);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum or_provider_type types[] = { OR_PROV_SES, OR_PROV_SENDGRID, OR_PROV_MAILGUN, OR_PROV_SMTP };

	check_date(data, size);
	if (size < 5)
		return 0;

	struct or_http h;
	memset(&h, 0, sizeof h);
	h.easy = easy;
	h.capped = data[0] & 1;
	h.off = data[0] >> 1;
	long status = data[2] < 0x80 ? statuses[data[1] % (sizeof statuses / sizeof *statuses)]
	                             : (long)((((unsigned)data[1] << 8) | data[2]) & 0x7fff) % 700 - 10;
	CURLcode cc = data[3] < 0x60 ? CURLE_OK : (CURLcode)(data[3] - 0x60);
	if (cc == CURLE_OUT_OF_MEMORY)   /* by design the process exits 75 there (or_oom; the oom walk tests it) */
		return 0;
	const char *rest = (const char *)data + 5, *end = (const char *)data + size;
	const char *sep = memmem(rest, (size_t)(end - rest), "\n\n", 2);
	if (sep) {
		or_buf_add(&h.rhdr, rest, (size_t)(sep - rest) + 1);
		if (end - (sep + 2) > 0)
			or_buf_add(&h.resp, sep + 2, (size_t)(end - (sep + 2)));
	} else if (end > rest) {
		or_buf_add(&h.rhdr, rest, (size_t)(end - rest));
	}
	if ((data[4] & 1) && h.resp.s)
		snprintf(h.errbuf, sizeof h.errbuf, "%.*s", (int)strcspn(h.resp.s, "\n"), h.resp.s);

	for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
		struct or_provider p;
		struct or_send_result r;
		memset(&p, 0, sizeof p);
		memset(&r, 0, sizeof r);
		p.type = types[i];
		snprintf(p.name, sizeof p.name, "fuzz");
		snprintf(p.region, sizeof p.region, "%s", data[4] & 2 ? "us-east-1" : "eu-west-1");
		or_http_classify(&p, &h, cc, status, &r);
		CHECK(r.v == OR_OK || r.v == OR_TEMP || r.v == OR_PERM || r.v == OR_DOUBT);
		CHECK(memchr(r.why, 0, sizeof r.why) && memchr(r.provider_id, 0, sizeof r.provider_id) &&
		      memchr(r.message_id, 0, sizeof r.message_id));
#ifdef FUZZ_SKIP_KNOWN
		if (p.type != OR_PROV_SMTP)
#endif
		CHECK(!or_has_ctl(r.provider_id));
#ifdef FUZZ_SKIP_KNOWN
		if (p.type != OR_PROV_SES)
#endif
		CHECK(!or_has_ctl(r.message_id));
#ifdef FUZZ_SKIP_KNOWN   /* exploring past reported bugs (see corpus/README): build by hand with this */
		if (p.type != OR_PROV_SES)
#endif
		CHECK(!or_has_ctl(r.why));
		CHECK(r.v != OR_DOUBT || h.off > 0);
		if (r.v == OR_OK)
			CHECK(p.type == OR_PROV_SMTP ? cc == CURLE_OK : status >= 200 && status < 300);
		else
			CHECK(*r.why);
		CHECK(!isinf(r.retry_after));
	}
	h.easy = NULL;
	or_buf_free(&h.rhdr);
	or_buf_free(&h.resp);
	return 0;
}
