/*
 * fuzz-feed — the feedback path on an in-memory ledger: a SES notification
 * (untrusted JSON from SQS) parsed by or_ses_notification into one page's
 * events and recorded by or_store_feed_page (job matching by tag, provider id,
 * Message-ID and last send; suppression; soft-bounce counting; held jobs
 * settled), and the same input as an unsubscribe token (or_unsub_verify with
 * a fixed key).
 *
 * The ledger is ":memory:" with the full schema (or_db_open), made once, with
 * four jobs whose provider ids and recipients match the sample
 * notifications in the seed corpus (one of them held).  Each input is
 * recorded in one transaction, as or_feed_sqs records a message; afterwards events, suppressions and
 * counters are emptied so every input starts from the same ledger.
 *
 * Checked: or_ses_notification returns -1 or the events it parsed, the
 * store records at most those; every stored event has
 * a key and a known type; suppressions hold lower-case addresses without
 * control characters; a settled id is one of the seeded held jobs; a token
 * that verifies gives an address, client and campaign without LF that make
 * a token verifying to the same three again.
 */
#include "../../outreach.c"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz-feed: check failed: %s (line %d)\n", #c, __LINE__); \
	__builtin_trap(); } } while (0)

static const char fuzz_conf[] =
	"spool = \"/nonexistent/outreach-fuzz/spool\";\n"
	"timezone = \"UTC\";\n"
	"providers = ( { name = \"ses\"; type = \"ses\"; region = \"us-east-1\"; access_key_id = \"AKIDEXAMPLE\";\n"
	"                secret_env = \"OUTREACH_FUZZ_SECRET\"; soft_bounce_limit = 2;\n"
	"                sqs_queue_url = \"https://sqs.us-east-1.amazonaws.com/123456789012/ses-events\"; } );\n"
	"senders = ( { name = \"acme-1\"; from = \"Anna <anna@acme-mail.example>\"; provider = \"ses\"; } );\n"
	"unsubscribe = { url = \"https://acme-mail.example/u\"; mailto = \"unsub@acme-mail.example\"; };\n";

static struct or_config *cfg;
static int verbose;   /* FUZZ_FEED_VERBOSE=1: what each input did, to check the seeds reach deep */
static const double fuzz_now = 1796029200;   /* 2026-11-30T09:00:00Z */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];

	(void)argc; (void)argv;
	if (sodium_init() < 0)
		abort();
	or_clock_init();
	or_random_init();
	or_verbosity = 0;
	verbose = getenv("FUZZ_FEED_VERBOSE") != NULL;
	setenv("OUTREACH_FUZZ_SECRET", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	cfg = malloc(sizeof *cfg);
	if (!cfg || or_config_load_string(cfg, fuzz_conf, "fuzz-feed.conf", err, sizeof err)) {
		fprintf(stderr, "fuzz-feed: config: %s\n", cfg ? err : "out of memory");
		abort();
	}
	snprintf(cfg->state, sizeof cfg->state, ":memory:");   /* the loader made it a path */
	if (or_db_open(cfg, 1, err, sizeof err)) {
		fprintf(stderr, "fuzz-feed: ledger: %s\n", err);
		abort();
	}
	/* jobs the sample notifications refer to (tests/fuzz/corpus/feed) */
	or_exec("INSERT INTO jobs(id, producer_id, client, campaign, rcpt, rcpt_domain, state, sender, account, "
	        "provider_id, message_id, sent_at, created_at, updated_at) VALUES "
	        "('0123456789abcdef', 'crm-1', 'acme', 'q4', 'recipient@example.com', 'example.com', 'held', 'acme-1', "
	        " 'ses', 'EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000', "
	        " '<EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000@email.amazonses.com>', NULL, "
	        " 1796000000, 1796000000),"
	        "('1111111111111111', 'crm-2', 'acme', 'q4', 'jane@example.com', 'example.com', 'sent', 'acme-1', 'ses', "
	        " '0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000', '<custom-message-ID>', 1796000100, "
	        " 1796000000, 1796000100),"
	        "('2222222222222222', 'crm-3', 'globex', 'launch', 'richard@example.com', 'example.com', 'sent', 'acme-1', "
	        " 'ses', '00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000', NULL, 1796000200, 1796000000, "
	        " 1796000200),"
	        "('3333333333333333', 'crm-4', 'globex', 'launch', 'bounce@simulator.amazonses.com', 'simulator.amazonses.com', "
	        " 'held', 'acme-1', 'ses', NULL, NULL, NULL, 1796000000, 1796000300)");
	for (size_t i = 0; i < sizeof or_key; i++)
		or_key[i] = (unsigned char)(0x3c ^ (i * 7));
	or_key_loaded = 1;
	return 0;
}

static void check_ledger(void)
{
	sqlite3_stmt *st;

	st = or_q("SELECT count(*) FROM events WHERE event_key IS NULL OR event_key = '' OR type NOT IN ('delivered', "
	          "'bounced', 'soft_bounce', 'complained', 'opened', 'clicked', 'unsubscribed', 'rejected', 'delayed', "
	          "'unparsed')", "");
	CHECK(or_q_int(st, -1) == 0);
	st = or_q("SELECT address FROM suppressions", "");
	while (or_step(st) == SQLITE_ROW) {
		const char *a = or_col(st, 0);
		for (const char *p = a; *p; p++)
			CHECK(!(*p >= 'A' && *p <= 'Z'));
#ifndef FUZZ_SKIP_KNOWN   /* exploring past reported bugs (see corpus/README): build by hand with -D */
		CHECK(!or_has_ctl(a));
#endif
	}
	sqlite3_reset(st);
}

static void check_token(const char *s)
{
	char addr[OR_MAX_ADDR + 1], client[OR_MAX_LABEL + 1], campaign[OR_MAX_LABEL + 1];
	char a2[OR_MAX_ADDR + 1], c2[OR_MAX_LABEL + 1], k2[OR_MAX_LABEL + 1];
	struct or_buf tok = { 0 };

	if (or_unsub_verify(s, addr, sizeof addr, client, sizeof client, campaign, sizeof campaign))
		return;
	if (verbose)
		fprintf(stderr, "fuzz-feed: token verified: %s / %s / %s\n", addr, client, campaign);
	CHECK(*addr && *client && *campaign);
	CHECK(!strchr(addr, '\n') && !strchr(client, '\n') && !strchr(campaign, '\n'));
	or_unsub_token(addr, client, campaign, &tok);
	CHECK(or_unsub_verify(tok.s, a2, sizeof a2, c2, sizeof c2, k2, sizeof k2) == 0);
	CHECK(!strcmp(addr, a2) && !strcmp(client, c2) && !strcmp(campaign, k2));
	or_buf_free(&tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = malloc(size + 1);
	struct or_settle settle = { 0 };

	memcpy(json, data, size);
	json[size] = 0;

	/* parsed into one page's events, then recorded in one transaction by the
	 * store, as or_feed_sqs does for each message */
	struct or_events evs = { 0 };
	int parsed = or_ses_notification(json, &evs, fuzz_now);
	CHECK(parsed >= -1 && (parsed < 0 || parsed == evs.n));
	int n = or_store_feed_page(cfg, &cfg->providers[0], "", NULL, &evs, &settle, fuzz_now);
	CHECK(n >= 0 && n <= evs.n);
	or_events_free(&evs);
	check_ledger();
	if (verbose)
		fprintf(stderr, "fuzz-feed: notification: %d new events, %lld matched a job, %lld suppressions, %d held settled\n",
		        n, or_q_int(or_q("SELECT count(*) FROM events WHERE job_id IS NOT NULL", ""), 0),
		        or_q_int(or_q("SELECT count(*) FROM suppressions", ""), 0), settle.n);
	CHECK(settle.n >= 0 && (settle.n == 0 || settle.ids));
	for (int i = 0; i < settle.n; i++)
		CHECK(!strcmp(settle.ids[i], "0123456789abcdef") || !strcmp(settle.ids[i], "3333333333333333"));
	free(settle.ids);
	or_exec("DELETE FROM events; DELETE FROM suppressions; DELETE FROM counters;");

	check_token(json);
	free(json);
	return 0;
}
