/*
 * fuzz-config — or_config_load_string on the input (libconfig syntax, as
 * check-config and every command read the config), then or_config_free.
 *
 * The config struct is large: it is allocated once.  The loader may open
 * files the input names (secret_file, api_key_file, password_file: opened
 * O_NOFOLLOW and refused unless a private regular file) and read environment
 * variables (*_env); it never writes.  Inputs holding "@include" are skipped:
 * libconfig would read the named file as config, and a FIFO or /dev/zero there
 * would hang the run rather than find a bug in outreach.
 *
 * Checked: a failure leaves a NUL-terminated message naming the place; a
 * success gives at least one sender, every sender's provider and fallback
 * index in range, a from address with '@' and a non-empty lower-case domain,
 * NUL-terminated names, a state path, counts within their array bounds.
 * ASan/LSan catch leaks and overruns in the loader and in or_config_free.
 */
#include "../../outreach.c"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz-config: check failed: %s (line %d)\n", #c, __LINE__); \
	__builtin_trap(); } } while (0)

static struct or_config *cfg;

/* libconfig 1.5 (Debian 12) leaks its scanner's string buffers on some syntax
 * errors (a string left open, or adjacent strings, before a later error): not
 * outreach's memory, and shown with a program that only calls
 * config_read_string and config_destroy.  Only the scanner's allocations are
 * ignored: a config_t never destroyed still leaks its settings (parser). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:strbuf_append\nleak:libconfig_yylex\n"; }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	if (sodium_init() < 0)
		abort();
	or_clock_init();
	or_random_init();
	cfg = malloc(sizeof *cfg);
	if (!cfg)
		abort();
	setenv("OUTREACH_FUZZ_SECRET", "fuzz-secret-value", 1);
	return 0;
}

static int terminated(const char *s, size_t n) { return memchr(s, 0, n) != NULL; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	char *text;

	if (memmem(data, size, "@include", 8))
		return 0;
	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	memset(err, 0x5a, sizeof err);
	if (or_config_load_string(cfg, text, "fuzz.conf", err, sizeof err)) {
		CHECK(terminated(err, sizeof err) && *err);
		free(text);
		return 0;
	}
	CHECK(cfg->nsenders >= 1 && cfg->nsenders <= OR_MAX_SENDERS);
	CHECK(cfg->nproviders >= 1 && cfg->nproviders <= OR_MAX_PROVIDERS);
	CHECK(cfg->nclients >= 0 && cfg->nclients <= OR_MAX_CLIENTS);
	CHECK(cfg->nrgroups >= 0 && cfg->nrgroups <= OR_MAX_RGROUPS);
	CHECK(*cfg->state && terminated(cfg->state, sizeof cfg->state) && terminated(cfg->spool, sizeof cfg->spool));
	CHECK(or_tz_valid(cfg->timezone));
	for (int i = 0; i < cfg->nproviders; i++) {
		const struct or_provider *p = &cfg->providers[i];
		CHECK(*p->name && terminated(p->name, sizeof p->name) && !or_has_ctl(p->secret));
		CHECK(p->type != OR_PROV_EXEC || (p->argv && p->argv[0] && p->argv[0][0] == '/'));
		CHECK(p->concurrency >= 1 && p->timeout > 0);
	}
	for (int i = 0; i < cfg->nsenders; i++) {
		const struct or_sender *s = &cfg->senders[i];
		CHECK(*s->name && terminated(s->name, sizeof s->name));
		CHECK(s->provider >= 0 && s->provider < cfg->nproviders);
		CHECK(s->fallback >= -1 && s->fallback < cfg->nproviders);
		CHECK(strchr(s->from_addr, '@') && *s->domain && !strcmp(s->domain, strrchr(s->from_addr, '@') + 1));
		CHECK(s->daily_limit >= 1);
		CHECK(!s->warmup.set || (s->warmup.first >= 1 && s->warmup.days >= 1));
	}
	for (int i = 0; i < cfg->nclients; i++)
		CHECK(*cfg->clients[i].name);
	for (int i = 0; i < cfg->nrgroups; i++)
		CHECK(cfg->rgroups[i].domains && cfg->rgroups[i].domains[0]);
	or_config_free(cfg);
	free(text);
	return 0;
}
