/*
 * outreach.h — the table of contents of outreach.c.
 *
 * Every struct, enum and constant the program uses, and, one block per
 * section of outreach.c in the file's order, the prototypes of the functions
 * other sections call and the module state each section owns.  tests/unit.c
 * includes this header and links the real code (outreach.c built with
 * -DOR_TEST -DOR_NO_MAIN): the OR_STATIC functions are static in the binary
 * and visible to the tests; the static ones are declared static here, as in
 * outreach.c (one translation unit), and are not for the tests.
 */
/*
 * The sections in the order a run takes them (`outreach run`: main ->
 * or_cmd_run -> or_run_tick), with the entry point of each step; types local
 * to one section live beside its code:
 *
 *   MAIN                options, config, dispatch               main
 *   CONFIG              the key table: every key, default, bound or_config_load
 *   COMMANDS            one handler per command, usage text     or_cmd_run
 *     STORE             operator commands                       or_store_jobs, …
 *   RUN                 one tick, doc/design.md §1              or_run_tick
 *   SPOOL               the folders opened                      or_spool_open
 *   STORE (SQLite)      the ledger opened (schema v17)          or_db_open
 *   STORE (PostgreSQL)  the shared ledger (PG=1): init, ingest or_pg_init
 *   RECOVERY            the run lock                            or_lock_file
 *   CRYPTO              the unsubscribe key                     or_key_load
 *   RECOVERY            dead runs, cancellations, tmp/          or_recover
 *     STORE             ingest and recovery operations          or_store_recover_run
 *   INGEST              new/ -> ledger -> defer/                or_ingest
 *     STORE             ingest and recovery operations          or_store_ingest_batch
 *     JSON              in-memory SQLite, never the ledger      or_json_members
 *     JOB PARSING       addresses, windows, headers             or_job_parse
 *   FEEDBACK            provider feeds, suppression             or_feeds_pull
 *     STORE             feedback operations                     or_store_feed_page
 *   FEEDBACK            unsubscribes taken in                   or_unsub_apply
 *   HEALTH AND ALERTS   domain health judged                    or_health_judge
 *     STORE             health, alerts and housekeeping         or_store_health_judge
 *   VALIDATE            domain checks gate senders              or_domains_gate
 *   SEND                the transfer engine: intents, outcomes  or_send_loop
 *     STORE             send operations                         or_store_send_turn
 *     CLAIM             job, sender, account, slot              or_claim_batch
 *     STORE             claim operations, the run's row         or_store_claim_batch
 *     MESSAGE BUILDING  or_render, or_rfc2047, or_qp            or_message_build
 *     PROVIDERS         file, exec, HTTP/SMTP via libcurl       or_provider_send
 *   RECOVERY            retention: old rows and files go        or_housekeeping
 *     STORE             health, alerts and housekeeping         or_store_housekeep
 *   HEALTH AND ALERTS   alert conditions                        or_alerts_evaluate
 *   REPORTS             status.txt, status.json, outreach.prom  or_write_reports
 *     STORE             the report snapshot                     or_store_snapshot
 *   HEALTH AND ALERTS   alert delivery                          or_alerts_deliver
 *     STORE             health, alerts and housekeeping         or_store_alert_queue
 *
 * The ledger is reached only through STORE: the or_store_* operations of
 * the STORE: … sections, each one whole transaction with its contract
 * (doc/store.md has the map and the conventions).
 *
 * Beneath every step: LIMITS AND GLOBALS (fault seam, verbosity, SIGTERM
 * flag), UTILITIES (struct or_buf, UTF-8, JSON string escaping), TIME (the
 * virtual clock), RANDOMNESS (or_random_unit, seeded under OUTREACH_SEED) and
 * LOGGING (or_log, or_safe).
 */
#ifndef OUTREACH_H
#define OUTREACH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <sys/socket.h>                 /* socklen_t: or_dns_server */
#include <curl/curl.h>                  /* CURLcode (an enum): or_http_classify */
#ifndef OR_PG
#define OR_PG 0                         /* make PG=1: the PostgreSQL store, with libpq */
#endif

#ifdef OR_TEST
#define OR_STATIC
#else
#define OR_STATIC static __attribute__((unused))   /* some are only called by tests */
#endif

#define OR_VERSION "0.1.0"

/* ---- limits and defaults (the invariant each keeps is beside it) ---- */
#define OR_MAX_JOB_BYTES   (1024 * 1024)   /* default job_max_bytes: fstat before read */
#define OR_MAX_NAME        200             /* new/ names: [A-Za-z0-9][A-Za-z0-9._-]{0,199} */
#define OR_MAX_ID          200             /* producer "id" */
#define OR_MAX_LABEL       128             /* client, campaign: they become metric labels */
#define OR_MAX_HEADER      998             /* RFC 5322 line limit for a header value */
#define OR_MAX_ADDR        320             /* 64 local + @ + 255 domain */
#define OR_MAX_SENDERS     64
#define OR_MAX_PROVIDERS   16
#define OR_MAX_CLIENTS     64
#define OR_MAX_MAILBOXES   16
#define OR_MAX_STEPS       10  /* a sequence: the job and at most 9 follow-ups */
#define OR_MAX_HOLIDAYS    64  /* per client */
#define OR_TMP_MAX_AGE     (36 * 3600)     /* tmp/ files older than this are removed */
#define OR_INGEST_BATCH    4096            /* arrivals per ingest transaction */
#define OR_INGEST_BATCH_BYTES (16 << 20)   /* job bodies one batch holds in memory (PostgreSQL store) */
#define OR_SCHEMA_VERSION  17              /* PRAGMA user_version this binary writes */
#define OR_ID_HEX          16              /* ledger ids: 16 lower-case hex digits */

/* sysexits(3) codes, named here so the program needs no <sysexits.h> */
enum { OR_EX_OK = 0, OR_EX_SOFT = 1, OR_EX_USAGE = 64, OR_EX_DATAERR = 65,
       OR_EX_SOFTWARE = 70, OR_EX_IOERR = 74, OR_EX_TEMPFAIL = 75, OR_EX_CONFIG = 78 };

/* One verdict for provider results, validation and store writes. */
enum or_verdict {
	OR_OK = 0,      /* done */
	OR_TEMP,        /* try again later (backoff) */
	OR_PERM,        /* never going to work for this job: failed/ */
	OR_DOUBT        /* the peer may have taken it: held/ (or resent, see in_doubt) */
};

enum or_provider_type { OR_PROV_FILE, OR_PROV_EXEC, OR_PROV_SMTP, OR_PROV_SES,
                        OR_PROV_SENDGRID, OR_PROV_MAILGUN };
enum or_rotation { OR_ROT_ROUND_ROBIN, OR_ROT_QUOTA };
enum or_curve { OR_CURVE_LINEAR, OR_CURVE_GEOMETRIC };

/* ---- utilities: a growable byte buffer (owner frees with or_buf_free) ---- */
struct or_buf { char *s; size_t len, cap; };

/* ---- config ---- */
struct or_warmup {
	int set;              /* 0: the sender is at daily_limit from the start */
	int start_day;        /* calendar day number (days since 1970-01-01) of start */
	char start[16];       /* as written, YYYY-MM-DD */
	double first;         /* >= 1 */
	int days;             /* >= 1 */
	enum or_curve curve;
};

/* An account's price (providers[].price), what plan's money figures come
 * from: over a 30-day period of n sends the account costs
 * monthly + per_1000 * n / 1000 + per_1000_over * max(0, n - included) / 1000,
 * in the config's unit (no currency is assumed). */
struct or_price {
	int set;              /* a price was given: plan shows money (one priced account is enough) */
	double per_1000;      /* per 1,000 sends (SES: 0.10) */
	double monthly;       /* a fee per 30 days, whatever is sent (a plan) */
	int included;         /* sends the fee includes before per_1000_over applies */
	double per_1000_over; /* per 1,000 sends past included */
};

struct or_provider {
	char name[64];
	enum or_provider_type type;
	char dir[4096];       /* file */
	char **argv;          /* exec: NULL-terminated, owned */
	double rate;          /* sends per second for the account; 0 = no limit */
	int concurrency;      /* transfers in flight at once */
	double timeout;       /* seconds a transfer may take */
	char endpoint[512];   /* base URL (https://…, or http:// on loopback with allow_plaintext) */
	int allow_plaintext;
	char ca_file[4096];   /* extra CA bundle for private CAs; verification is always on */
	char region[64];      /* ses; mailgun: "us" or "eu" */
	char access_key_id[128];
	char domain[256];     /* mailgun sending domain */
	char url[512];        /* smtp: smtp://host:port (STARTTLS required) or smtps:// */
	char helo[256];       /* smtp: the EHLO name; "" = the machine's FQDN, else the sender's domain */
	char username[256];
	char configuration_set[128];  /* ses default */
	char secret[512];     /* the API key, SES secret key or SMTP password; zeroed on free */
	char token[2048];     /* ses session token (optional) */
	char secret_source[160];      /* "file /etc/…" or "env NAME": for messages, never the value */
	int circuit_failures; /* consecutive failures that open the circuit */
	double circuit_cooldown;      /* seconds before a probe is allowed */
	int feed;             /* pull its feedback (ses, sendgrid, mailgun; default on) */
	double feed_interval; /* seconds between pulls */
	int soft_bounce_limit;        /* consecutive soft bounces that suppress */
	char sqs_queue_url[512];      /* ses: the SQS queue its SNS topic delivers to */
	char sqs_endpoint[512];
	struct or_price price;        /* price: set 0 = none (it costs 0 and plan names it) */
};

struct or_sender {
	char name[64];
	char from[OR_MAX_HEADER + 1];   /* as configured: "Anna <anna@acme-mail.com>" */
	char from_addr[OR_MAX_ADDR + 1];
	char from_name[256];
	char domain[256];               /* lower-cased: the unit of reputation */
	int provider;                   /* index into cfg->providers */
	int fallback;                   /* index, or -1 */
	int daily_limit;
	char configuration_set[128];    /* ses: overrides the account's default */
	char ip_pool[65];               /* sendgrid: ip_pool_name */
	char mailgun_domain[256];       /* mailgun: sending domain, overrides the account's */
	double jitter;                  /* seconds: a random extra gap up to this */
	double per_minute;              /* 0 = only the account's rate spaces sends */
	double min_gap;                 /* seconds, 0 = none */
	struct or_warmup warmup;
	char **clients;                 /* NULL = serves every client; NULL-terminated */
	char **dkim_selectors;          /* for `domains`; NULL = the provider's default (SendGrid s1, s2) */
	char mailbox_name[64];          /* the mailbox its replies arrive in, "" none */
	int mailbox;                    /* index into cfg->mailboxes, -1 */
	int replies_none;               /* replies = "none": follow-ups stop only on suppression */
};

struct or_client {
	char name[OR_MAX_LABEL + 1];
	int daily_limit;
	char **holidays_s;              /* as written, YYYY-MM-DD; NULL-terminated */
	int holidays[OR_MAX_HOLIDAYS];  /* day numbers, ascending: not business days */
	int nholidays;
};

/* A mailbox outreach reads replies from (IMAP, read-only: EXAMINE and
 * BODY.PEEK, so the user's mail stays unread). */
struct or_mailbox {
	char name[64];
	char url[512];                  /* imaps://HOST[:PORT]/ or imap://HOST[:PORT]/ (STARTTLS) */
	char username[256];
	char password[512];             /* zeroed on free; "" with token_command */
	char secret_source[160];        /* "file …" or "env …": for messages, never the value */
	char ca_file[4096];
	char **folders;                 /* NULL-terminated; default INBOX */
	char **addresses;               /* our own addresses: mail from them is never a reply */
	char **token_command;           /* argv printing an OAuth2 bearer token (XOAUTH2), or NULL */
	double timeout;                 /* seconds an IMAP command may take */
	int allow_plaintext;            /* imap:// without STARTTLS, loopback only */
};

/* A recipient group (mailbox provider): limits across all senders, and per sender. */
struct or_rgroup {
	char name[64];
	char **domains;                 /* NULL-terminated, lower-case */
	double per_minute, per_hour;    /* 0 = no limit */
	double sender_per_minute, sender_per_hour;
};
#define OR_MAX_RGROUPS 32

struct or_config {
	char path[4096];
	char spool[4096];
	char state[4096];
	char report_dir[4096];
	char timezone[128];
	enum or_rotation rotation;
	int in_doubt_resend;            /* in_doubt = "resend" */
	int retention_days;
	double cost_vps_monthly;        /* costs.vps_monthly: fixed, per 30 days (plan's money figures) */
	double cost_other_monthly;      /* costs.other_monthly: fixed, per 30 days */
	int max_jobs;                   /* run.max_jobs */
	double deadline;                /* run.deadline, seconds */
	double retry_first, retry_max;  /* seconds */
	double max_provider_wait;       /* seconds: the longest wait a provider's answer may impose */
	int max_attempts;
	double max_age;                 /* seconds */
	long job_max_bytes;
	double busy_timeout;            /* seconds SQLite waits for a lock before exit 75 */
	int health_window_days, health_min_sent;
	double max_bounce_rate, max_complaint_rate;
	char **dc_required;             /* domain_checks.required: checks that keep a sender out */
	char **dc_blocklists;           /* domain_checks.blocklists: DNS blocklist zones */
	char dns_server[128];           /* "IP[:port]" for validate and domains; "" = resolv.conf */
	int dns_timeout_ms;             /* per DNS query */
	char unsub_url[512];            /* unsubscribe.url: one-click endpoint (the CGI) */
	char unsub_mailto[256];         /* unsubscribe.mailto */
	int unsub_global;               /* unsubscribe.scope = "global" (default: per client) */
	char **alert_command;           /* argv, NULL-terminated; NULL = none */
	char alert_webhook[512];
	double alert_error_share;       /* alerts.error_share: failed share of the last hour's attempts */
	int alert_min_attempts;         /* alerts.min_attempts before that share is judged */
	double alert_backlog_age;       /* alerts.backlog_age: seconds a due job may wait */
	double reply_interval;          /* replies.interval: seconds between pulls of one mailbox */
	double reply_max_age;           /* replies.max_age: a follow-up waits when its mailbox is older */
	int reply_max_messages;         /* replies.max_messages: read per mailbox and tick */
	int ooo_pause;                  /* replies.ooo_pause: business days an out-of-office holds */
	int ooo_max;                    /* replies.ooo_max: calendar days a hold may reach */
	int eng_set;                    /* an engagement group: the daily report (and suppression) runs */
	int eng_inactive_days;          /* engagement.inactive_days: no delivery, open, click or reply */
	int eng_min_sends;              /* engagement.min_sends: sends before an address is judged */
	int eng_suppress;               /* engagement.action = "suppress" */
	int store_pg;                   /* store.type = "postgresql" (README "Several hosts") */
	char pg_conninfo[1024];         /* store.conninfo: libpq's, never with a password in it */
	char pg_password[256];          /* from store.password_file; zeroed on free; "" = libpq's own */
	char pg_password_file[4096];    /* where it came from, for check-config */
	char host_name[64];             /* store.host_name: this host in a shared ledger */
	double pg_lease;                /* store.lease, seconds */
	int pg_connect_timeout;         /* store.connect_timeout, seconds */
	int nproviders, nsenders, nclients, nrgroups, nmailboxes;
	struct or_mailbox mailboxes[OR_MAX_MAILBOXES];
	struct or_rgroup rgroups[OR_MAX_RGROUPS];
	struct or_provider providers[OR_MAX_PROVIDERS];
	struct or_sender senders[OR_MAX_SENDERS];
	struct or_client clients[OR_MAX_CLIENTS];
};

/* ---- jobs ---- */
struct or_window {
	int set;
	unsigned days;        /* bit 0 = Monday … bit 6 = Sunday */
	int start_min, end_min;  /* minutes after local midnight; end exclusive, may wrap */
	char tz[128];         /* empty: the config's timezone */
};

struct or_kv { char *key, *val; };

/* A sequence (doc/design.md §15): the job is step 1, steps[] the follow-ups. */
enum { OR_STOP_REPLY = 1, OR_STOP_BOUNCE = 2, OR_STOP_COMPLAINT = 4, OR_STOP_UNSUBSCRIBE = 8,
       OR_STOP_DOMAIN_REPLY = 16, OR_STOP_DEFAULT = 15 };
struct or_step {
	char *after;          /* as written: "3bd", "2d", "36h" */
	int after_n;          /* its number */
	char after_unit;      /* 'b' business days, 'd' days, 'h' hours */
	char *subject, *text, *html;   /* subject NULL or "": a reply in the thread */
};
struct or_sequence {
	struct or_step steps[OR_MAX_STEPS - 1];
	int nsteps;
	unsigned stop_on;     /* OR_STOP_* */
	char on_auto[8];      /* on_auto_reply: "pause" (default), "ignore", "stop" */
};

/* A parsed, validated job.  Every string is owned by the job (or_job_free). */
struct or_job {
	char *id, *client, *campaign, *to, *subject, *text, *html, *reply_to, *sender, *thread;
	char *in_reply_to, *re_subject;  /* set before building a reply in a thread (owned) */
	char *message_id;                /* set before building a resend: its earlier intent's (owned) */
	char *references;                /* set before building a follow-up: the thread's ids (owned) */
	struct or_sequence *seq;         /* "sequence", NULL none (owned) */
	char rcpt[OR_MAX_ADDR + 1];     /* addr-spec of to, lower-cased: compared, kept in the ledger */
	char addr[OR_MAX_ADDR + 1];     /* addr-spec of to as written, domain lower-cased: sent */
	char to_name[256];              /* display name of to, may be empty */
	char *rcpt_domain;              /* points into rcpt */
	time_t not_before;              /* 0 = none */
	struct or_window window;
	struct or_kv *vars;   int nvars;
	struct or_kv *headers; int nheaders;
};

/* What a provider answered for one message. */
struct or_send_result {
	enum or_verdict v;
	char provider_id[256];
	char why[512];
	int throttled;          /* the account said "slow down": no attempt burned, account paused */
	int account;            /* the account is unusable (auth, suspended, unverified): circuit opens */
	int transport;          /* connection-level or 5xx: counts toward the circuit */
	int suppress;           /* the recipient is hard-invalid: suppress it */
	double retry_after;     /* seconds, when the peer said (at most max_provider_wait) */
	double asked_wait;      /* what the peer asked, when that was more than max_provider_wait */
	char message_id[512];   /* the Message-ID as delivered, when the provider replaces ours */
};

/* ---- run state (one tick) ---- */
struct or_run {
	char id[33];                   /* random hex */
	double started;                /* virtual time */
	double deadline;               /* virtual time after which no slot is taken */
	int max_jobs;
	int claimed, sent, deferred, failed, bad, held, suppressed, duplicate, ingested;
	int lockfd;
	char last_group_domains[2048];   /* JSON array: the recipient group claimed last */
	int reserved;                    /* slots claimed (<= max_jobs) */
	int row;                         /* its runs row is written (or_store_run_row) */
};

/* Clients with due jobs, taken in turn by the claims of one run. */
struct or_turns { char (*clients)[OR_MAX_LABEL + 1]; int n, i; };

/* ================================================================ */
/*
 * Prototypes, one block per section of outreach.c in the file's order: every
 * function another section calls (static ones too: outreach.c is one
 * translation unit) and every OR_STATIC one.  Functions a section keeps to
 * itself are not listed.
 *
 * Module state: the mutable file-scope statics, each owned (written) by one
 * section; the others read them, if at all, through that section's functions.
 *
 *   LIMITS AND GLOBALS  or_verbosity (-q/-v), or_stop (SIGTERM/SIGINT seen),
 *                       or_fault_point, or_fault_n, or_fault_seen (OUTREACH_FAULT)
 *   TIME                or_clock_base, or_clock_skipped, or_mono_start (the
 *                       virtual clock), or_tz_current (the zone TZ is set to)
 *   UTILITIES           or_curl_init's done (libcurl's global init made, lazily)
 *   RANDOMNESS          or_seed_state, or_seeded (the OUTREACH_SEED stream)
 *   CONFIG              or_config_parsing (libconfig errors go to the loader)
 *   CRYPTO              or_key, or_key_loaded (the unsubscribe key)
 *   SPOOL               or_dirfd, or_dir_dirty (open folders, fsyncs owed),
 *                       or_spool_root (the spool itself: new/ is exchanged in it)
 *   JSON                or_json_mem, or_jstmts (the JSON connection, its statements),
 *                       or_sqlite_mem (SQLite's own allocator, wrapped by or_oom)
 *   STORE               or_db (the ledger's connection), or_sites (or_q's cache),
 *                       or_commit_s (a synced commit's time, smoothed)
 *   STORE (PostgreSQL)  or_pg (the shared ledger's connection, PG=1 builds)
 *                       or_pg_fenced_at (when the run's lease was last renewed)
 *   FEEDBACK            or_feed_until (when a pull must stop)
 */

/* ---- LIMITS AND GLOBALS ---- */
static void or_fault(const char *point);
static void or_fault_init(void);

/* ---- UTILITIES: buffers, strings, UTF-8 ---- */
static void or_oom(void);
static void *or_xrealloc(void *p, size_t n);
static void or_alloc_init(void);
static void or_curl_init(void);
static char *or_xstrdup(const char *s);
OR_STATIC void or_buf_add(struct or_buf *b, const void *p, size_t n);
OR_STATIC void or_buf_puts(struct or_buf *b, const char *s);
OR_STATIC void or_buf_printf(struct or_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
OR_STATIC void or_buf_free(struct or_buf *b);
OR_STATIC int or_utf8_valid(const char *s, size_t n);
OR_STATIC int or_has_ctl(const char *s);           /* CR, LF or other C0 except TAB */
static int or_errno_transient(int e);
static int or_ex_io(int e);
static int or_ex_input(int e);
OR_STATIC void or_lower(char *s);
OR_STATIC void or_json_str(struct or_buf *b, const char *s);  /* quoted, escaped */
static int or_streq_ci(const char *a, const char *b);
static int or_ascii_printable(const char *s);

/* ---- TIME: the virtual clock and calendar days in a zone ---- */
static double or_mono(void);
OR_STATIC void or_clock_init(void);
OR_STATIC double or_now(void);
OR_STATIC void or_sleep_until(double t);
OR_STATIC int or_days_from_civil(int y, int m, int d);
static void or_tz_use(const char *tz);
OR_STATIC int or_tz_valid(const char *tz);
static void or_localtime(time_t t, const char *tz, struct tm *tm);
OR_STATIC int or_day_number(time_t t, const char *tz);     /* days since 1970-01-01, local */
static time_t or_local_mktime(int day, int minute, const char *tz);
OR_STATIC time_t or_day_start(int day, const char *tz);    /* local midnight of that day */
OR_STATIC int or_day_of_iso(const char *s);                /* YYYY-MM-DD -> day number, -1 */
static int or_digits(const char *s, int n, int *out);
static void or_civil_from_days(int z, int *y, int *m, int *d);
OR_STATIC void or_fmt_rfc3339(time_t t, char *out, size_t n);   /* UTC, "Z" */
OR_STATIC void or_fmt_rfc5322(time_t t, char *out, size_t n);   /* UTC, "+0000" */
static int or_digits(const char *s, int n, int *out);
OR_STATIC int or_parse_time(const char *s, time_t *out);   /* RFC 3339 or epoch */

/* ---- RANDOMNESS ---- */
OR_STATIC void or_random_init(void);
OR_STATIC double or_random_unit(void);             /* [0, 1) */
OR_STATIC void or_random_hex(char *out, size_t nbytes);   /* always truly random */

/* ---- LOGGING ---- */
OR_STATIC void or_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
OR_STATIC const char *or_safe(const char *s, char *out, size_t n);  /* log-safe copy */

/* ---- CONFIG ---- */
OR_STATIC int or_url_loopback(const char *url);
OR_STATIC void or_cfg_keys_print(FILE *f);    /* check-config --keys: the key table, as README lists it */
OR_STATIC int or_config_load(struct or_config *cfg, const char *path,
                             char *err, size_t errlen);
OR_STATIC int or_config_load_string(struct or_config *cfg, const char *text,
                                    const char *name, char *err, size_t errlen);
OR_STATIC void or_config_free(struct or_config *cfg);
OR_STATIC int or_sender_serves(const struct or_sender *s, const char *client);
OR_STATIC int or_warmup_volume(const struct or_warmup *w, int daily_limit, int day);
OR_STATIC double or_sender_gap(const struct or_config *cfg, const struct or_sender *s);
static int or_rgroup_of(const struct or_config *cfg, const char *domain);   /* a domain's recipient group, -1 */
static int or_domain_first(const struct or_config *cfg, int i);   /* judge a domain once */
static const struct or_client *or_client_find(const struct or_config *cfg, const char *name);

OR_STATIC int or_mailbox_index(const struct or_config *cfg, const char *name);

/* ---- CRYPTO (libsodium) ---- */
struct or_sigv4_req {
	const char *method;
	const char *path;            /* "/path?query" as sent */
	const char *const *headers;  /* "Name:value" lines, host included */
	int nheaders;
	const char *body; size_t bodylen;
	const char *region, *service, *akid, *secret, *token;   /* token may be NULL */
	const char *amzdate;         /* YYYYMMDDTHHMMSSZ */
};
OR_STATIC void or_sha256_hex(const void *p, size_t n, char *out, size_t hexlen);
OR_STATIC void or_uri_encode(struct or_buf *b, const char *s, size_t n, int keep_slash);
OR_STATIC void or_sigv4(const struct or_sigv4_req *r, struct or_buf *canon, struct or_buf *sts,
                        struct or_buf *auth);
OR_STATIC int or_key_load(const char *spool, char *err, size_t errlen);
static int or_key_present(const char *spool);
static int or_init_key(const struct or_config *cfg, const char *keyfile);   /* init [--key FILE] */
OR_STATIC void or_unsub_token(const char *addr, const char *client, const char *campaign, struct or_buf *out);
OR_STATIC int or_unsub_verify(const char *token, char *addr, size_t an, char *client, size_t cn,
                              char *campaign, size_t kn);

/* ---- SPOOL ---- */
/* or_write_atomic flags; OR_W_NOSYNC: neither the file nor the folder fsynced (derived
 * files only, such as the reports: atomic by rename, not durable) */
enum { OR_W_NOREPLACE = 1, OR_W_NODIRSYNC = 2, OR_W_NOSYNC = 4 };
OR_STATIC int or_name_ok(const char *name);
static int or_dir_shared(int i);                  /* 2770: others drop files there */
OR_STATIC int or_spool_init(const char *spool);
static int or_spool_open(const char *spool, char *err, size_t errlen);
static int or_dir_refresh(int i);                 /* reopened if new/ was exchanged since */
static int or_rename_into(int from, const char *fname, int to, const char *tname, unsigned flags);
static int or_move(int from, const char *fname, int to, const char *tname);
static int or_spool_sync(void);
static void or_retired_drain(int dir);            /* new.old/ back into new/ (or inbound/new/), removed */
static void or_drop_compact(int dir, DIR *d);     /* an emptied drop folder over OR_NEW_COMPACT: a fresh one */
OR_STATIC int or_write_atomic(int dirfd, const char *name, const void *p, size_t n, int flags);
static int or_read_file_at(int dirfd, const char *name, long max, char **out, size_t *len,
                           char *err, size_t errlen);

/* ---- JSON: an in-memory SQLite connection, never the ledger ---- */
typedef struct sqlite3 sqlite3;
struct or_member;                                  /* one member of an object, or_json_members */
#define OR_JSON_DEPTH 64                           /* nesting or_json_wellformed allows */
static void or_sqlite_alloc_init(void);                   /* before SQLite's first use: allocations fail into or_oom */
OR_STATIC int or_json_wellformed(const char *s, size_t n);    /* strict RFC 8259 */
static sqlite3 *or_json_conn_get(void);
static char *or_json_sql(const char *sql, const char *const *args, int nargs);
struct or_json_rows { int n, ncols; char **t; double *d; };   /* rows copied out of one JSON query */
static int or_json_rows_get(const char *sql, const char *json, int ncols, struct or_json_rows *out, char *err,
                            size_t errlen);
static const char *or_json_row_t(const struct or_json_rows *r, int row, int c);
static double or_json_row_d(const struct or_json_rows *r, int row, int c);
static void or_json_rows_free(struct or_json_rows *r);
static void or_mem_seen_reset(void);                       /* a set of strings: validate's duplicates */
static int or_mem_seen_add(const char *s);
static void or_members_free(struct or_member *m, int n);
static int or_json_members(const char *json, size_t n, const char *kind, struct or_member **out,
                           int *nout, char *err, size_t errlen);
static char *or_json_layer(const char *bottom, const char *middle, const char *top);
static char *or_json_set_id(const char *json, const char *id);
static void or_json_close(void);

static char *or_json_followup(const char *json, size_t n, int k, const char *id, const char *thread);

/* ---- JOB PARSING AND VALIDATION ---- */
OR_STATIC int or_domain_ok(const char *domain);
OR_STATIC int or_parse_mailbox(const char *in, char *addr, size_t addrlen,
                               char *name, size_t namelen);   /* addr as written */
OR_STATIC int or_parse_address(const char *in, char *addr, size_t addrlen,
                               char *name, size_t namelen);   /* addr lower-cased */
OR_STATIC void or_addr_canon(const char *addr, char *out, size_t n);
OR_STATIC int or_window_parse(struct or_window *w, const char *days, const char *hours,
                              const char *tz, char *err, size_t errlen);
OR_STATIC int or_window_open(const struct or_window *w, time_t t, const char *deftz);
OR_STATIC time_t or_window_next(const struct or_window *w, time_t t, const char *deftz);
OR_STATIC int or_header_name_ok(const char *name, char *err, size_t errlen);
OR_STATIC void or_job_free(struct or_job *job);
OR_STATIC int or_job_parse(const char *json, size_t n, struct or_job *job,
                           char *field, size_t fieldlen, char *err, size_t errlen);
static void or_ledger_id_of(const char *client, const char *producer, char ledger[OR_ID_HEX + 1]);
OR_STATIC void or_job_ids(const struct or_job *job, char *producer, size_t plen,
                          char ledger[OR_ID_HEX + 1]);
static void or_job_content_hash(const struct or_job *job, char out[17]);
/* CSV (RFC 4180): one record per call; returns 1 record, 0 end, -1 error */
struct or_csv { const char *p, *end; int line; };
OR_STATIC void or_csv_free_fields(char **fields, int n);
OR_STATIC int or_csv_next(struct or_csv *c, char ***fields, int *nfields,
                          char *err, size_t errlen);

OR_STATIC int or_step_after_parse(const char *s, int *n, char *unit);

/* ---- MESSAGE BUILDING ---- */
static void or_html_escape(struct or_buf *b, const char *s);
OR_STATIC int or_render(const char *tmpl, const struct or_job *job, int html,
                        struct or_buf *out, char *err, size_t errlen);
OR_STATIC void or_rfc2047(struct or_buf *b, const char *s, size_t used);
OR_STATIC void or_qp(struct or_buf *b, const char *s);
OR_STATIC int or_message_build(const struct or_config *cfg, const struct or_job *job,
                               const struct or_sender *snd, const char *ledger_id,
                               time_t date, struct or_buf *msg, char *msgid, size_t msgidlen,
                               char *err, size_t errlen);

/* ---- MAIL READING: message headers, verdicts, return dates, DSNs ---- */
/* One message's header as the REPLIES section reads it: what threads it to a
 * send, who wrote it, and the fields an auto-reply, a bounce or a list is
 * told by.  Every string is NUL-terminated, "" when the field is absent or
 * unreadable, never holding a CR or LF. */
#define OR_MAIL_MAX_REFS 32   /* References ids kept: the last 32 (the newest are at the end) */
struct or_mail {
	char message_id[OR_MAX_HEADER + 1];   /* "<x@y>" as written (angle brackets kept), "" none */
	char in_reply_to[OR_MAX_HEADER + 1];  /* the first msg-id of In-Reply-To, "<…>", "" none */
	char refs[OR_MAIL_MAX_REFS][OR_MAX_HEADER + 1]; int nrefs;   /* References' msg-ids, oldest first */
	char from[OR_MAX_ADDR + 1];           /* From's addr-spec, lower-cased; "" none or unparsable */
	char reply_to[OR_MAX_ADDR + 1];       /* Reply-To's first addr-spec, lower-cased */
	char subject[OR_MAX_HEADER + 1];      /* unfolded, RFC 2047 encoded-words decoded (UTF-8, B and Q; other
	                                         charsets: kept encoded), control chars made spaces */
	char date[64];                        /* raw Date value, truncated */
	double date_at;                       /* Date parsed (RFC 5322 incl. obsolete zones), 0 unparsable */
	char content_type[256];               /* lower-cased type/subtype, e.g. "multipart/report" */
	char report_type[64];                 /* lower-cased report-type= parameter, "" none */
	char auto_submitted[64], precedence[64], x_precedence[64];   /* lower-cased, trimmed */
	int x_autoreply, x_autorespond, x_autoresponder;  /* the field is present */
	int x_auto_response_suppress, list_id, list_unsubscribe, x_failed_recipients_present;
	char x_failed_recipients[OR_MAX_ADDR + 1];   /* first address in it */
	int return_path_null;                 /* Return-Path: <> */
	int fields;                           /* header fields seen (for tests) */
};
OR_STATIC int or_mail_parse(const char *hdr, size_t n, struct or_mail *m);
enum { OR_MAIL_HUMAN, OR_MAIL_OOO, OR_MAIL_AUTO, OR_MAIL_BOUNCE, OR_MAIL_COMPLAINT, OR_MAIL_RECEIPT };
OR_STATIC int or_mail_classify(const struct or_mail *m, const char **rule);
OR_STATIC const char *or_mail_class_name(int c);
OR_STATIC int or_ooo_return_day(const char *text, size_t n, int today, int *day, int *inclusive);
struct or_dsn {
	char rcpt[OR_MAX_ADDR + 1];      /* Final-Recipient (rfc822;addr), else Original-Recipient, lower-cased */
	char action[32];                 /* failed delayed delivered relayed expanded, lower-cased */
	char status[32];                 /* e.g. "5.1.1" */
	char diag[256];                  /* Diagnostic-Code, control chars removed, truncated */
	char orig_msgid[OR_MAX_HEADER + 1];   /* Message-ID of the returned message's headers part, "<…>" */
	int hard;                        /* action failed and status 5.x.x */
};
OR_STATIC int or_dsn_parse(const char *body, size_t n, struct or_dsn *d);

/* ---- SEQUENCES: follow-ups, business days, leads ---- */
OR_STATIC int or_day_weekday(int day);
static const struct or_client *or_client_conf(const struct or_config *cfg, const char *client);
OR_STATIC int or_business_day(const struct or_client *cl, unsigned wdays, int day);
OR_STATIC int or_business_days_add(const struct or_client *cl, unsigned wdays, int day, int n);
OR_STATIC double or_step_due(const struct or_config *cfg, const char *client, double sent, const char *after,
                             const struct or_window *w);
OR_STATIC const char *or_lead_state_of_suppression(const char *reason);
OR_STATIC int or_freemail(const char *domain);
OR_STATIC double or_ooo_hold_until(const struct or_config *cfg, const char *client, const struct or_window *w,
                                   double now, int return_day);

/* ---- STORE (SQLite): schema, statements, transactions ---- */
/* or_q(sql, types, args...): the statement of this call site, prepared once
 * per open database and kept in the site's own slot (a static, so the cache
 * grows with the code, never with the calls: a GNU statement expression). */
typedef struct sqlite3_stmt sqlite3_stmt;
struct or_stmt_site { const char *sql; sqlite3_stmt *st; struct or_stmt_site *next; };
#define or_q(...) __extension__ ({ static struct or_stmt_site or_q_site_; or_q_at(&or_q_site_, __VA_ARGS__); })
struct or_sender_state;
struct or_account;
OR_STATIC sqlite3_stmt *or_q_at(struct or_stmt_site *site, const char *sql, const char *types, ...);
static int or_step(sqlite3_stmt *st);
static void or_exec(const char *sql);
static long long or_q_int(sqlite3_stmt *st, long long def);
static double or_q_double(sqlite3_stmt *st, double def);
static void or_q_done(sqlite3_stmt *st);
static void or_begin(void);
static void or_commit(void);
static double or_store_commit_time(void);
static void or_begin_unsynced(void);      /* a commit a power loss may take: synchronous=NORMAL */
static void or_commit_unsynced(void);
static const char *or_col(sqlite3_stmt *st, int i);
OR_STATIC int or_db_open(const struct or_config *cfg, int create, char *err, size_t errlen);
OR_STATIC void or_db_close(void);
static int or_store_is_open(void);
static void or_kv_set(const char *key, const char *value);
static void or_kv_get(const char *key, char *out, size_t n);
static void or_count(const char *kind, const char *client, const char *campaign, const char *sender);
OR_STATIC double or_backoff(const struct or_config *cfg, int attempts);
OR_STATIC int or_pick_sender(const struct or_config *cfg, const int *eligible, int n,
                             const int *remaining, int rr_last);
static void or_sender_state_get(const struct or_sender *s, struct or_sender_state *out);
static int or_sender_warmup_day(const struct or_sender *s, const struct or_sender_state *ss, int day);
static int or_sender_cap(const struct or_sender *s, const struct or_sender_state *ss, int day);
static int or_sender_sent_on(const char *sender, int day);
static int or_client_sent_on(const char *client, int day);
static void or_account_get(const char *name, struct or_account *a);
static void or_account_ensure(const char *name);
static double or_account_rate(const struct or_provider *p, const struct or_account *a);
static double or_account_blocked(const struct or_provider *p, const struct or_account *a, double now);
static int or_sender_account(const struct or_config *cfg, const struct or_sender *s, double now, double *until);
static double or_sender_next_slot(const struct or_config *cfg, const struct or_sender *s, int acct, double now);
static void or_alert_raise(const char *name, const char *detail, double now);
static void or_alert_clear(const char *name);
static void or_account_outcome(const struct or_provider *p, const struct or_send_result *r, double now);

/* ---- STORE: the job state machine ---- */
/* A job's states (or_job_state_names spells them as the ledger does). */
enum { OR_S_WAITING, OR_S_CLAIMED, OR_S_SENDING, OR_S_SENT, OR_S_HELD, OR_S_FAILED, OR_S_BAD,
       OR_S_SUPPRESSED, OR_S_DUPLICATE, OR_S_REQUEUED, OR_S_CANCELLING, OR_S_PENDING, OR_S_STOPPED,
       OR_NJOB_STATES };
/* One allowed transition: the slot's effect, the counters row it adds
 * (NULL: none), the folder the file goes to, and recovery: 2 when it is
 * how recovery settles `from`, 0/1 when only for that in_doubt_resend,
 * -1 when recovery never applies it. */
struct or_transition { int from, to; const char *slot, *counter; int folder, recovery; };
/* The columns a transition sets besides state (or_job_move): set's bits
 * name the ones given, the others are kept. */
enum { OR_JS_NEXT_DUE = 1, OR_JS_LAST_ERROR = 2, OR_JS_SENT_AT = 4, OR_JS_SENT_AT_KEPT = 8,
       OR_JS_PROVIDER_ID = 16, OR_JS_MESSAGE_ID = 32, OR_JS_RUN_ID = 64, OR_JS_SENDER = 128,
       OR_JS_ACCOUNT = 256, OR_JS_SLOT_AT = 512, OR_JS_SUBJECT = 1024, OR_JS_CREATED_AT = 2048,
       OR_JS_UPDATED_AT = 4096 };
/* attempts: OR_JA_ADD one more, OR_JA_GIVE_BACK one fewer (not below 0),
 * OR_JA_RESET 0, 0 kept.  OR_JS_SENT_AT_KEPT: sent_at as it was, else the
 * row's last update (a held job proved delivered).  NULL strings set NULL. */
enum { OR_JA_ADD = 1, OR_JA_GIVE_BACK = -1, OR_JA_RESET = -2 };
struct or_job_set {
	unsigned set;
	double next_due, sent_at, slot_at, created_at, updated_at;
	const char *last_error, *provider_id, *message_id, *run_id, *sender, *account, *subject;
	int attempts;
};
OR_STATIC const char *or_job_state_name(int s);
OR_STATIC const struct or_transition *or_transition_at(size_t i);
OR_STATIC int or_job_state_of(const char *name);
OR_STATIC const struct or_transition *or_transition(int from, int to);
OR_STATIC int or_job_state_dir(int state, int resend);
OR_STATIC int or_job_dir(int from, int to);
static int or_ids_take(sqlite3_stmt *st, char (**ids)[OR_ID_HEX + 1]);
OR_STATIC int or_job_move(const char *id, int from, int to, const struct or_job_set *s);

/* ---- STORE: ingest and recovery operations ---- */
/* (arrivals taken into the ledger, dead runs' claims settled, cancellations finished) */
/* One arrival of new/ as INGEST read it: a job's ledger fields, or why it is bad. */
struct or_arrival {
	char *name;                      /* its name in new/ (owned) */
	char *reason;                    /* NULL: a job; else why it is bad (owned) */
	double now;                      /* when it was read: created_at */
	char id[OR_ID_HEX + 1], producer[OR_MAX_ID + 8], content[17];
	char *client, *campaign, *rcpt, *rcpt_domain, *pin, *thread, *win_tz;   /* owned; NULL binds NULL */
	double not_before, due;
	int win_set, win_days, win_start, win_end;
	/* a sequence: step 1 carries its follow-ups (nfollow), each of which
	 * holds its own job as JSON (body) and its step's delay (after) */
	struct or_arrival *follow;
	int nfollow, step, nsteps;
	char *body, *after;
	unsigned stop_on;
	char on_auto[8];
};
/* An arrival listed in the ledger whose file may still be in new/. */
struct or_listed { char id[OR_ID_HEX + 1]; char target[8]; char *arrival, *error; };
/* A job of a list (a dead run's, the cancelled, the retired): note is its last_error. */
struct or_job_row { char id[OR_ID_HEX + 1]; char state[16]; char *note; int no_file; };
static int or_store_ingest_batch(const struct or_arrival *a, int n, int *bad);
static int or_store_arrivals(struct or_listed **out);
static void or_listed_free(struct or_listed *l, int n);
static void or_store_arrivals_done(void);
static void or_store_run_row(struct or_run *run);
static int or_run_idle(const struct or_run *run);
static void or_store_run_end(struct or_run *run, double now);
static void or_store_close_lazily(void);
static int or_store_runs_running(const char *self, char (**ids)[33]);
static void or_store_recover_run(const char *dead, int resend, double now);
static void or_job_rows_free(struct or_job_row *r, int n);
static int or_store_run_jobs(const char *run_id, struct or_job_row **out);
static void or_store_run_recovered(const char *dead, double now);
static int or_store_cancelling(struct or_job_row **out);
static void or_store_cancel_finish(void);

/* ---- STORE: claim operations ---- */
/* (a client's due jobs claimed (job, sender, account, slot), the plan's reads) */
struct or_claim;
struct or_candidate;
struct or_plan;
#ifdef OR_TEST
extern const char or_claim_sql[];   /* a client's next due job */
#endif
static int or_store_claim_batch(const struct or_config *cfg, struct or_run *run, struct or_turns *rot, int max,
                                struct or_claim *out);
struct or_pjob;   /* one job of the forecast */
static struct or_pjob *or_plan_job_put(struct or_plan *p, const char *client, const char *campaign, unsigned wdays,
                                       int wstart, int wend, const char *wtz, const char *pin, int paused, double due);
static struct or_pjob *or_plan_job_add(struct or_plan *p, sqlite3_stmt *st, int c, double due);
static int or_pjob_by_due(const void *a, const void *b);
static void or_plan_load_followups(const struct or_config *cfg, struct or_plan *p);
static void or_plan_load_jobs(const struct or_config *cfg, struct or_plan *p);
static void or_store_plan_load(const struct or_config *cfg, int today, struct or_plan *p);
static void or_store_plan_sent(double now, struct or_plan *p);   /* the last 30 days' sends */
static void or_plan_free(struct or_plan *p);

/* ---- STORE: send operations ---- */
/* (the send turn (outcomes and intents in one transaction), records, releases) */
/* A finished transfer as the ledger records it: the claim's fields by value,
 * so that a second backend needs no SEND struct. */
struct or_store_outcome {
	const char *id;                    /* ledger id */
	int sender, account;               /* cfg indexes; -1: none */
	int attempts;                      /* before this transfer */
	double created_at;
	const char *msgid;                 /* the Message-ID it carried; NULL before a build */
	const struct or_send_result *r;
	int not_started;                   /* its account went down first: no attempt, no booking */
};
struct or_store_intent {               /* a transfer about to start */
	const char *id, *msgid;
	char subject[1000];                /* as rendered (a reply's Re: when empty) */
};
/* One send turn: nout outcomes (each one's folder into dirs), then the
 * intents: chosen by pick inside the transaction when it is set (into in,
 * at most OR_BATCH), else the nin already in in. */
struct or_store_turn {
	const struct or_store_outcome *out;
	int nout;
	int *dirs;
	struct or_store_intent *in;
	int nin;
	int (*pick)(void *ctx, struct or_store_intent *in);
	void *ctx;
};
struct or_store_parent {               /* the job a reply's thread names */
	char state[24];
	char *message_id, *subject;        /* malloc'd */
};
static void or_store_send_turn(const struct or_config *cfg, const char *run_id, struct or_store_turn *t);
static int or_store_record(const struct or_config *cfg, const char *run_id, const struct or_store_outcome *o);
static void or_store_release(const char *id, const char *run_id, const char *state, const char *why,
                             double next_due, double now);
static void or_store_release_lost(const char *id, const char *run_id, int later);
static int or_store_due_clients(char (**out)[OR_MAX_LABEL + 1], double now);
static int or_store_suppressed(const char *canon, const char *client);
static int or_store_duplicate(const char *id);
static int or_store_thread_parent(const char *client, const char *thread, const char *id, const char *alt,
                                  struct or_store_parent *p);
static char *or_store_message_id(const char *id);

/* ---- STORE: feedback operations ---- */
/* (provider events and suppressions recorded, feed cursors, held jobs settled, unsubscribes) */
struct or_event {
	const char *type;           /* delivered bounced soft_bounce complained opened clicked unsubscribed rejected delayed unparsed */
	const char *subtype, *key, *rcpt, *provider_id, *msgid, *job_hint, *detail;
	double at;
	const char *client, *campaign;   /* known from an unsubscribe token */
};
struct or_events { struct or_event *v; char **own; int n, nown; };   /* one page's, strings owned (or_events_add) */
struct or_settle { char (*ids)[OR_ID_HEX + 1]; int n; };           /* held jobs to settle after the commit */
static void or_suppress(const char *addr, const char *client, const char *reason, const char *source, double now);
static int or_event_record(const struct or_config *cfg, const struct or_provider *p, const struct or_event *ev,
                           struct or_settle *settle, double now);
static double or_store_feed_last_attempt(const char *account);
static void or_store_feed_cursor(const char *account, const char *list, char *out, size_t n);
static int or_store_feed_page(const struct or_config *cfg, const struct or_provider *p, const char *list,
                              const char *newcur, const struct or_events *evs, struct or_settle *settle, double now);
static void or_store_feed_done(const char *account, const char *error, double now);
static void or_store_settle_held(const struct or_config *cfg, const char *id, double now);
static int or_store_unsubscribe(const struct or_config *cfg, const struct or_event *ev, int again,
                                struct or_settle *settle, double now);

/* ---- STORE: health, alerts and housekeeping operations ---- */
/* (domain health read and judged, alerts raised, cleared and delivered, retention) */
/* A sender domain's figures over its health window (or_domain_health). */
struct or_health { long long sends, bounces, complaints; double since; };
/* One queued alert change, as a channel is given it. */
struct or_alert_entry { long long id; char name[128], event[16], detail[600]; double at; };
/* A domain's checks as the gate judged them (strings the caller's). */
struct or_domain_verdict { const char *domain, *report, *why; int unknown, ok; };
/* An MX verdict to cache (OR_DNS_*). */
struct or_dns_answer { const char *domain; int result; };
static void or_domain_health(const struct or_config *cfg, const char *domain, double now, struct or_health *h);
static void or_store_health_judge(const struct or_config *cfg, double now);
static void or_alert_held(double now);
static void or_alert_mailboxes(const struct or_config *cfg, double now);
static void or_store_alerts_evaluate(const struct or_config *cfg, double now);
static int or_store_alert_queue(int channel, struct or_alert_entry *q, int max);
static void or_store_alert_delivered(int channel, long long id, int ok, int has_cmd, int has_hook);
static void or_store_account_limits(const char *account, int read, double max_rate, double max_24h,
                                    const char *note, double now);
static int or_store_domains_stale(const struct or_config *cfg, double now);
static void or_store_domain_checks(const struct or_domain_verdict *v, int n, double now);
static int or_store_dns_cached(const char *domain, double since);
static void or_store_dns_cache_put(const struct or_dns_answer *a, int n, double now);
static void or_store_tmp_cleaned(const char *at);
static int or_store_retired(double cutoff, struct or_job_row **out);
static void or_store_housekeep(const struct or_job_row *jobs, int n, double now, double cutoff, const char *at);
static void or_store_vacuum(void);

/* ---- STORE: the report snapshot ---- */
/* (one read of everything status.txt, status.json and outreach.prom show) */
struct or_snap;          /* plain values and malloc'd arrays: or_snap_free */
struct or_snap_sender;
static void or_store_snapshot(const struct or_config *cfg, double now, int last_run, struct or_snap *sn);
static void or_snap_free(struct or_snap *sn);

/* ---- STORE: operator commands ---- */
/* (one operation per command that reads or changes the ledger) */
struct or_event;                        /* FEEDBACK's, CLAIM's */
struct or_settle;
struct or_candidate;
struct or_suppression {                 /* one row of suppress list / export */
	const char *address, *client, *reason, *source;
	const char *created;                /* export: RFC 3339; list: NULL */
	double created_at;                  /* list: the time; export: 0 */
};
typedef void (*or_suppression_fn)(void *arg, const struct or_suppression *row);
struct or_suppress_new { char *address, *client, *reason, *source; };   /* one import row (the caller's) */
struct or_feed_status { char *account, *status; };                      /* pull's per-account line */
struct or_jobs_filter { const char *state, *client, *campaign, *to; long long limit; };
struct or_jobs_line {                     /* one row of jobs: json, or the columns of the table */
	const char *json, *id, *state, *client, *campaign, *to, *sender, *last_error;
	int attempts;
	double updated_at;
};
typedef void (*or_jobs_line_fn)(void *arg, const struct or_jobs_line *row);
static void or_store_sender_set(const struct or_config *cfg, int idx, int enable, const char *reason, double now);
static void or_store_suppress_list(const char *client, or_suppression_fn fn, void *arg);
static int or_store_suppress_export(const char *client, or_suppression_fn fn, void *arg);
static int or_store_suppress_import(const struct or_suppress_new *rows, int n, double now);
static void or_suppress_row(struct or_suppress_new *r, const char *addr, const char *client, const char *reason,
                            const char *source);   /* one block: free(r->address) */
#if OR_PG
static int or_store_migrate_read(const char *path, struct or_suppress_new **rows, int *nrows, long long n[3],
                                 char *err, size_t errlen);   /* store migrate: a SQLite ledger, read only */
#endif
static void or_store_suppress_add(const char *canon, const char *client, const char *reason, double now);
static void or_store_suppress_remove(const char *canon, const char *client);
static void or_store_requeue_candidates(const char *state, void (*fn)(void *arg, const char *id), void *arg);
static void or_store_requeue(const char *id, int from, double now);
static void or_store_held_alert(double now);
static int or_store_feeds_status(struct or_feed_status **out);
static void or_feed_status_free(struct or_feed_status *f, int n);
static void or_store_pause(const char *client, const char *campaign, const char *sender, const char *reason,
                           double now);
static int or_store_resume(const char *client, const char *campaign, const char *sender);
static int or_store_cancel(const char *client, const char *campaign, const char *why, double now);
static int or_store_render_sender(const struct or_config *cfg, const char *client, struct or_candidate *c,
                                  double now);
static void or_store_jobs(const struct or_jobs_filter *f, or_jobs_line_fn fn, void *arg);
static char *or_store_show(const char *id);
static int or_store_backup(const char *tmp, char *err, size_t errlen);

/* ---- STORE: sequence and reply operations ---- */
struct or_reply;     /* REPLIES: one message read */
struct or_replies;   /* REPLIES: a window of them */
enum { OR_GATE_GO, OR_GATE_STOP, OR_GATE_WAIT };
static void or_seq_record(const struct or_arrival *a);
static int or_seq_stop_rest(const char *seq, const char *why, double now);
static int or_lead_end(const char *seq, const char *state, const char *why, double now);
static void or_leads_suppressed(const char *addr, const char *client, const char *reason, double now);
static void or_seq_advance(const struct or_config *cfg, const char *id, double at, double now);
static void or_seq_failed(const char *id, const char *why, double now);
static int or_store_followup_gate(const struct or_config *cfg, const char *id, const struct or_sender *s, double now,
                                  double *until, char *why, size_t n);
static double or_store_mailbox_fresh(const struct or_mailbox *mb);
static void or_folders_json(const struct or_mailbox *mb, struct or_buf *b);
static double or_store_mailbox_last_attempt(const struct or_mailbox *mb);
static int or_store_mailbox_cursor(const char *mailbox, const char *folder, long long *validity, long long *last);
static void or_store_mailbox_mark(const char *mailbox, const char *folder, const char *error, int caught_up,
                                  double now);
static void or_store_reply_match(const struct or_config *cfg, const struct or_mail *m, struct or_reply *r);
static void or_store_bounce_match(struct or_reply *r, const char *orig_msgid);
static int or_store_replies_window(const struct or_config *cfg, const char *source, const char *folder,
                                   const struct or_replies *w, long long validity, long long last, double now);
	/* the window's effects and (last >= 0) the folder's cursor, one transaction; how many were new */
struct or_leads_filter { const char *state, *client, *campaign, *to; long long limit; };
struct or_leads_line {                    /* one row of leads: json, or the columns of the table */
	const char *json, *seq, *state, *client, *campaign, *to, *reason;
	int steps, sent;
	double at;
};
typedef void (*or_leads_line_fn)(void *arg, const struct or_leads_line *row);
static void or_store_leads(const struct or_leads_filter *f, or_leads_line_fn fn, void *arg);
static int or_store_lead_seqs(const char *to, const char *client, char (**ids)[OR_ID_HEX + 1]);
static char *or_store_lead_show(const char *seq);
static int or_store_lead_pause(const char *seq, double until, const char *why, double now);
static int or_store_lead_resume(const struct or_config *cfg, const char *seq, double now);
static int or_store_lead_stop(const char *seq, const char *why, double now);
struct or_inactive {                      /* an address that stopped engaging */
	const char *client, *rcpt;
	int sends;
	double first_sent, last_sent, engaged;   /* engaged: its last delivery, open, click or reply (0 none) */
};
typedef void (*or_inactive_fn)(void *arg, const struct or_inactive *row);
static void or_store_engagement_fold(double now);
static int or_store_inactive(const char *client, int days, int min_sends, double now, or_inactive_fn fn, void *arg);
struct or_inactive_day;
static void or_inactive_judge(void *arg, const struct or_inactive *r);
static int or_store_engagement_daily(const struct or_config *cfg, double now);
static int or_reply_job_by_msgid(const char *id, char job[OR_ID_HEX + 1]);
static int or_reply_job_by_addr(const char *addr, double date_at, char job[OR_ID_HEX + 1]);
static int or_store_msgid_ours(const char *id);
struct or_reply_job;   /* a matched send and its lead, as an effect needs them */
static void or_reply_job_read(const char *id, struct or_reply_job *j);
static int or_reply_colleagues(const char *domain, const char *client, const char *senders, const char *seq,
                               const char *from, double now);
static double or_reply_hold(const struct or_config *cfg, const struct or_reply_job *j, int return_day, double now);
static void or_reply_event(const struct or_config *cfg, const char *source, const struct or_reply *r,
                           const struct or_reply_job *j, struct or_settle *settle, char *out, size_t n);
static void or_reply_lead(const struct or_config *cfg, const struct or_reply *r, const struct or_reply_job *j,
                          double now, char *out, size_t n);
static void or_reply_effect(const struct or_config *cfg, const char *source, const struct or_reply *r,
                            struct or_settle *settle, double now, char *out, size_t n);
static int or_reply_apply(const struct or_config *cfg, const char *source, const char *folder, const struct or_reply *r,
                          struct or_settle *settle, double now);
static char *or_store_job_body(const char *id);
static char *or_store_thread_refs(const char *id);

/* ---- STORE (PostgreSQL): connection, schema, hosts ---- */
#if OR_PG
struct or_cfgerr;
typedef struct config_setting_t config_setting_t;
static int or_cfg_conninfo(struct or_cfgerr *e, const config_setting_t *s, const char *ci);   /* CONFIG's check */
static void or_pg_message(const char *m, char *out, size_t n);   /* libpq's text on one safe line */
static int or_pg_connect(const struct or_config *cfg, char *err, size_t errlen);
static int or_pg_run(const char *sql, int n, const char *const *v, char *err, size_t errlen);
static void or_pg_close(void);
static int or_pg_init(const struct or_config *cfg, const char *keyfile);
static int or_pg_probe(const struct or_config *cfg);   /* check-config --online */
static int or_pg_ingest_batch(const struct or_config *cfg, const struct or_arrival *a, int n, int *bad);
static int or_pg_arrivals(const struct or_config *cfg, struct or_listed **out);
static void or_pg_arrivals_done(const struct or_config *cfg);
static void or_pg_jobs(const struct or_config *cfg, const struct or_jobs_filter *f, or_jobs_line_fn fn, void *arg);
static int or_pg_tick(const struct or_config *cfg, struct or_run *run);
#endif

static int or_pg_refuse(const struct or_config *cfg, const char *cmd);   /* commands not built on it yet */

/* ---- STORE (PostgreSQL): claims, caps and leases across hosts ---- */
#if OR_PG
/* A claimed job, as the send path carries it. */
struct or_pg_claim {
	char id[OR_ID_HEX + 1];
	char *body;                      /* the job's JSON (owned) */
	int sender, account, attempts, day;
	double slot, created_at;
};
static int or_pg_recover(const struct or_config *cfg, double now);
static void or_pg_unsubscribe(const struct or_config *cfg, const char *addr, const char *client, double now);
static void or_pg_sender_states(const struct or_config *cfg, struct or_sender_state *ss);   /* per configured sender */
static void or_pg_sender_set(const struct or_config *cfg, int idx, int enable, const char *reason, double now);
static int or_pg_claim(const struct or_config *cfg, struct or_run *run, double deadline, struct or_pg_claim *c);
static void or_pg_release(const struct or_config *cfg, struct or_run *run, const struct or_pg_claim *c,
                          const char *state, const char *why, double next);
static int or_pg_intent(const struct or_config *cfg, struct or_run *run, const struct or_pg_claim *c,
                        const char *msgid);
static int or_pg_outcome(const struct or_config *cfg, struct or_run *run, const struct or_pg_claim *c,
                         const struct or_send_result *r, const char *msgid, int transfer);
static int or_pg_account_outcome(const struct or_provider *p, const struct or_send_result *r, double now);
static void or_pg_accounts_blocked(const struct or_config *cfg, double now, double *until, int *opened);
static int or_pg_sender_account(const struct or_sender *s, const double *blocked);   /* primary, else fallback */
static double or_pg_lease_left(const struct or_config *cfg);
static int or_pg_suppressed(const char *rcpt, const char *client);
static int or_pg_duplicate(const char *id);
static void or_pg_rows_ensure(const struct or_config *cfg);
static void or_pg_run_end(struct or_run *run);
#endif

/* ---- STORE (PostgreSQL): the reports' snapshot, the hosts' heartbeats, alerts ---- */
#if OR_PG
static int or_pg_heartbeat(const struct or_config *cfg);   /* every tick; 78 when init was not run here */
static void or_pg_snapshot(const struct or_config *cfg, double now, int last_run, struct or_snap *sn);
static void or_pg_alerts_evaluate(const struct or_config *cfg, double now);   /* host_down, key_differs, jobs */
static void or_pg_alert_set(const char *name, const char *detail, int on, double now);   /* raise or clear, on change */
static int or_pg_alert_queue(int channel, struct or_alert_entry *q, int max);
static void or_pg_alert_delivered(int channel, long long id, int ok);
static int or_pg_alert_take(void);   /* one host delivers at a time */
static void or_pg_alert_release(void);
#endif

/* ---- STORE (PostgreSQL): operator commands and retention ---- */
#if OR_PG
static char *or_pg_show(const char *id);
static char *or_pg_job_body(const char *id);   /* render JOB_ID */
static void or_pg_plan_load(const struct or_config *cfg, int today, struct or_plan *p);
static void or_pg_plan_sent(double now, struct or_plan *p);
static int or_pg_suppress_rows(const char *client, int export, or_suppression_fn fn, void *arg);
static int or_pg_suppress_add(const struct or_suppress_new *rows, int n, double now);
static void or_pg_suppress_remove(const char *canon, const char *client);
static void or_pg_requeue_candidates(const struct or_config *cfg, const char *state,
                                     void (*fn)(void *arg, const char *id), void *arg);
static void or_pg_requeue(const char *id, int from, double now);
static int or_pg_cancel(const char *client, const char *campaign, const char *why, double now);
static void or_pg_housekeep(const struct or_config *cfg, double now);   /* retention, hourly, one host */
static void or_pg_pause(const char *client, const char *campaign, const char *sender, const char *reason, double now);
static int or_pg_resume(const char *client, const char *campaign, const char *sender);
#endif

/* ---- STORE (PostgreSQL): provider feeds and domain health ---- */
#if OR_PG
static int or_pg_feed_take(const struct or_config *cfg, const struct or_provider *p, int force, double seconds,
                           double now);   /* the account's lease, when due: one run of one host pulls it */
static double or_pg_feed_last_attempt(const char *account);
static int or_pg_feed_page(const struct or_config *cfg, const struct or_provider *p, const char *list,
                           const char *newcur, const struct or_events *evs, double now);   /* -1: lease lapsed */
static void or_pg_feed_done(const char *account, const char *error, double now);
static void or_pg_feed_cursor(const char *account, const char *list, char *out, size_t n);
static int or_pg_feeds_status(struct or_feed_status **out);
static void or_pg_domain_senders(const struct or_config *cfg, const char *domain, struct or_buf *b);   /* text[] */
static void or_pg_domain_health(const struct or_config *cfg, const char *domain, double now, struct or_health *h);
static void or_pg_health_judge(const struct or_config *cfg, double now);   /* once for all hosts */
static int or_pg_domains_stale(const struct or_config *cfg, double now);
static void or_pg_domain_checks(const struct or_domain_verdict *v, int n, double now);   /* a day's verdicts */
#endif

/* ---- PROVIDERS ---- */
struct or_http;
struct or_send_ctx;
static void or_http_free(struct or_http *h);
OR_STATIC time_t or_parse_http_date(const char *s);
static struct or_http *or_http_new(const struct or_provider *p, const char *url);
static void or_http_post(struct or_http *h);
static void or_http_addheader(struct or_http *h, const char *fmt, ...);
static void or_amz_date(char out[17]);
static void or_url_host(const char *url, char *out, size_t n);
static void or_aws_sign(const struct or_provider *p, struct or_http *h, const char *method, const char *path,
                        const char *service, const char *content_type);
OR_STATIC void or_http_classify(const struct or_provider *p, struct or_http *h, CURLcode cc, long status,
                                struct or_send_result *r);
static long or_http_perform(struct or_http *h, char *why, size_t n);
static void or_ses_limits(const struct or_provider *p, double now);
static int or_probe(const struct or_provider *p, const char *domain, char *out, size_t n);
static struct or_http *or_remote_request(const struct or_send_ctx *x, struct or_send_result *r);
static void or_provider_send(const struct or_provider *p, const char *id, const struct or_buf *msg,
                             struct or_send_result *r);

/* ---- INGEST: new/ -> ledger -> defer/ (or bad/, or done/ as a duplicate) ---- */
static void or_err_file(int dir, const char *id, const char *reason);
static void or_ledger_id_random(const char *salt, char id[OR_ID_HEX + 1]);
static int or_ingest_wait(const struct or_run *run);
static int or_ingest(const struct or_config *cfg, struct or_run *run);

/* ---- RECOVERY: claims of runs that died ---- */
static int or_lock_file(const char *run_id, int create);
static int or_state_dir(const char *state, int resend);
static void or_recover(const struct or_config *cfg, const char *self);
static int or_cancel_finish(void);
static void or_tmp_clean(const struct or_config *cfg, double now);
static void or_housekeeping(const struct or_config *cfg, double now);

/* ---- CLAIM: choose a job, a sender and a slot, in one transaction ---- */
struct or_sender_day;
struct or_sender_cand;
struct or_sender_cand {   /* one sender weighed for one job (or_weigh_senders) */
	int sender;           /* index into cfg->senders */
	int eligible;         /* may take the job now, at slot through account */
	int pinned;           /* the job names it (or_sender_pinned) */
	int client_ok;        /* it could serve the client before the deadline (pin and window aside) */
	int account;          /* the provider it sends through, -1 */
	double slot;          /* its next slot */
	int remaining;        /* its cap that slot's day minus its sends */
	double wait;          /* not eligible: the earliest it might take the job (meant for pinned ones) */
};

struct or_weighing {      /* every sender serving the client, weighed for one job */
	struct or_sender_cand s[OR_MAX_SENDERS];   /* in config order */
	int n, eligible;      /* how many weighed, how many of them eligible */
	int client_ok;        /* some sender could serve the client this run (pin and window aside) */
	int pin_any;          /* some sender serving the client is one the job names */
	double wait;          /* none eligible: the earliest this job could go (0: none named) */
};
static int or_pin_matches(const struct or_sender *s, const char *pin);
static int or_sender_index(const struct or_config *cfg, const char *name);
static int or_sender_pinned(const struct or_sender *s, const char *pin, const char *sticky);
static int or_sender_may_take(const struct or_sender *s, const char *client, const char *pin, const char *sticky,
                              const struct or_sender_day *d);
static void or_weigh_senders(const struct or_config *cfg, const struct or_run *run, const char *client,
                             struct or_candidate *c, double now, struct or_weighing *w);
static int or_weigh_pick(const struct or_config *cfg, const struct or_weighing *w, int rr_last);
static int or_claim_turns(const struct or_config *cfg, struct or_run *run, struct or_turns *rot, int max,
                          struct or_claim *out);
static int or_claim_batch(const struct or_config *cfg, struct or_run *run, struct or_turns *rot, int max,
                          struct or_claim *out);

/* ---- SEND: claimed jobs through their transfers, many in flight ---- */
/* The way an outcome goes (or_outcome_decide: SEND's rule, which the store's
 * send turn applies). */
enum or_outcome { OR_OUT_SENT, OR_OUT_ACCOUNT_WAIT, OR_OUT_RETRY, OR_OUT_HOLD, OR_OUT_RESEND, OR_OUT_FAIL };
static enum or_outcome or_outcome_decide(const struct or_config *cfg, const struct or_store_outcome *o,
                                         int account_down, double now);
static int or_is_suppressed(const char *rcpt, const char *client);
static int or_job_thread(struct or_job *job, const char *id);
static void or_send_loop(const struct or_config *cfg, struct or_run *run);

/* ---- SEND (PostgreSQL): one job at a time across hosts ---- */
#if OR_PG
static void or_pg_send_loop(const struct or_config *cfg, struct or_run *run);
#endif

/* ---- FEEDBACK: provider events, suppression, held jobs settled ---- */
enum { OR_SUPPRESS_NONE, OR_SUPPRESS_NOW, OR_SUPPRESS_SOFT };   /* or_event_suppression */
static void or_event_rcpt(const struct or_event *ev, char *rcpt, size_t n);
static int or_event_count_kind(const char *type, char *kind, size_t n);
static int or_event_settles(const char *type);
static void or_event_why(const struct or_event *ev, char *why, size_t n);
static int or_event_suppression(const struct or_config *cfg, const struct or_provider *p, const struct or_event *ev,
                                const char *client, const char **scope, const char **source);
static void or_events_add(struct or_events *l, const struct or_event *ev);
static void or_events_free(struct or_events *l);
static void or_settle_held(const struct or_config *cfg, struct or_settle *st, double now);
static int or_unsub_apply(const struct or_config *cfg, double now);
static void or_feeds_pull(const struct or_config *cfg, int force, double budget);

/* ---- MAILBOXES: IMAP, read-only (EXAMINE, BODY.PEEK, a UID cursor) ---- */
/* Bounds of what a server's answer may make the tool hold.  The header
 * fields of one message are fetched as a partial <0.OR_IMAP_MAX_HEADER>, so
 * no literal line libcurl sees is longer than that, and libcurl cuts a line
 * at half of OR_IMAP_BUFFERSIZE: 4 MiB leaves room for the header partial
 * and for a SEARCH line of OR_IMAP_MAX_SEARCH ten-digit UIDs.  libcurl
 * 7.88.1 (Debian's, with the CVE-2023-38039 fix) also refuses a transfer
 * whose lines pass about 300 KiB: a window that does is fetched again in
 * halves, as one past OR_IMAP_MAX_TRANSCRIPT is, and one message's fields
 * stay well under it. */
#define OR_IMAP_MAX_TRANSCRIPT (16 * 1024 * 1024)  /* one command's answer; past it the window is split */
#define OR_IMAP_BUFFERSIZE     (4L * 1024 * 1024)  /* CURLOPT_BUFFERSIZE (libcurl >= 7.88 allows 10 MB) */
#define OR_IMAP_MAX_HEADER     (64 * 1024)         /* bytes of header fields per message */
#define OR_IMAP_MAX_SEARCH     100000              /* UIDs a SEARCH keeps (the highest) */
#define OR_IMAP_MAX_TOKEN      8192                /* bytes of a token_command's output */
#define OR_IMAP_MAX_DEPTH      32                  /* nested lists in a FETCH item */
#define OR_IMAP_MAX_ITEMS      64                  /* items in one FETCH answer */
#define OR_IMAP_WINDOW         200                 /* UIDs per UID FETCH of a walk */

struct or_imap_folder { long long uidvalidity, uidnext, exists; };   /* uidnext 0: not given */
/* One message handed over by a FETCH walk: hdr points into the session's
 * transcript (valid during the callback only), the literal's bytes. */
struct or_imap_msg { long long uid; const char *hdr; size_t hdr_len; };
typedef int (*or_imap_msg_fn)(const struct or_imap_msg *m, void *arg);   /* nonzero stops the walk */
struct or_imap;   /* one session: a libcurl easy handle, logged in lazily, the transcript */

/* The transcript parsers (pure). */
OR_STATIC int or_imap_examine_parse(const char *t, size_t n, struct or_imap_folder *f);  /* 0, -1 */
OR_STATIC int or_imap_fetch_parse(const char *t, size_t n, long long above, or_imap_msg_fn fn, void *arg);
	/* messages with uid > above handed to fn; -1 on a malformed/NO/BAD answer (then none are) */
OR_STATIC int or_imap_search_parse(const char *t, size_t n, long long **uids, int *nu);  /* caller frees */
/* The session: every function gives one line naming the mailbox in err (no
 * secret in it); each failure is temporary. */
OR_STATIC struct or_imap *or_imap_open(const struct or_mailbox *mb, char *err, size_t errn);  /* NULL */
OR_STATIC int or_imap_examine(struct or_imap *s, const char *folder, struct or_imap_folder *f, char *err,
                              size_t errn);
OR_STATIC int or_imap_fetch_headers(struct or_imap *s, long long from_uid, long long to_uid, long long above,
                                    or_imap_msg_fn fn, void *arg, char *err, size_t errn);
	/* to_uid <= 0: from:*; the count handed over, -1 */
OR_STATIC int or_imap_fetch_text(struct or_imap *s, long long uid, struct or_buf *out, char *err, size_t errn);
	/* 0 with BODY.PEEK[TEXT]<0.4096> in out, 1 when the message is gone, -1 */
OR_STATIC int or_imap_search_since(struct or_imap *s, int day, long long **uids, int *n, char *err, size_t errn);
	/* UID SEARCH SINCE (day number): ascending, at most OR_IMAP_MAX_SEARCH; caller frees *uids */
OR_STATIC void or_imap_close(struct or_imap *s);
OR_STATIC int or_cmd_mailbox_dump(const struct or_config *cfg, int argc, char **argv);
	/* hidden: outreach mailbox-dump NAME FOLDER [ABOVE_UID] */

/* ---- REPLIES: inbound/ and mailboxes, matched to sends ---- */
#define OR_REPLY_MATCH_DAYS 120            /* a reply told only by its From answers a send at most this old */
#define OR_REPLY_TEXT       4096           /* bytes of a message's text read for a return date or a DSN */
#define OR_INBOUND_MAX      (256 * 1024)   /* bytes of an inbound/ file read (its header, its text's start) */
#define OR_INBOUND_PER_TICK 500            /* inbound/ files taken per tick */
enum { OR_REPLY_OWN = 100 };               /* a class past OR_MAIL_*: our own mail (Sent, a copy), ignored */
/* One message read: what it is, what it answers, what it will do. */
struct or_reply {
	long long uid;                         /* in its folder; 0 for an inbound/ file */
	char key[OR_MAX_HEADER + 1];           /* its Message-ID, else "uid:VALIDITY:UID" or "file:NAME" */
	char from[OR_MAX_ADDR + 1];
	double date_at;                        /* its Date, 0 unreadable */
	int cls;                               /* OR_MAIL_*, OR_REPLY_OWN */
	const char *rule;                      /* the classifier's rule (static) */
	char job[OR_ID_HEX + 1];               /* the send it answers, "" none */
	const char *method;                    /* how it was matched (static), NULL none */
	char rcpt[OR_MAX_ADDR + 1];            /* a bounce's address */
	char status[32], diag[256];            /* a bounce's DSN figures */
	int hard;                              /* a bounce that is final (5.x.x failed, or X-Failed-Recipients) */
	int return_day;                        /* an out-of-office's first day back, 0 none */
	int need_text;                         /* its text is to be read (an out-of-office, a bounce) */
};
struct or_replies { struct or_reply *v; int n; };   /* one window's, in UID order */
static const char *or_reply_class_name(int cls);
static int or_reply_own_addr(const struct or_config *cfg, const struct or_mailbox *mb, const char *addr);
static void or_reply_read(const struct or_config *cfg, const struct or_mailbox *mb, const char *hdr, size_t n,
                          struct or_reply *r);
static void or_reply_text(const struct or_config *cfg, struct or_reply *r, const char *text, size_t n);
struct or_reply_walk;   /* a FETCH walk's messages, read as they arrive */
static int or_reply_collect(const struct or_imap_msg *msg, void *arg);
static int or_reply_texts(const struct or_config *cfg, struct or_imap *s, struct or_replies *w, char *err,
                          size_t errn);
static int or_mailbox_window(const struct or_config *cfg, struct or_imap *s, const struct or_mailbox *mb,
                             const char *folder, long long validity, long long from, long long to, long long above,
                             long long last, char *err, size_t errn);
static long long or_mailbox_baseline(const struct or_config *cfg, const struct or_mailbox *mb, const char *folder,
                                     const struct or_imap_folder *f, int *renumbered);
static int or_mailbox_folder(const struct or_config *cfg, struct or_imap *s, const struct or_mailbox *mb,
                             const char *folder, double until, int *left, int *caught_up, char *err, size_t errn);
static int or_mailbox_backfill(const struct or_config *cfg, struct or_imap *s, const struct or_mailbox *mb,
                               const char *folder, int day, double until, int *left, char *err, size_t errn);
static int or_mailbox_pull(const struct or_config *cfg, const struct or_mailbox *mb, int since_day, double until,
                           int *left);
static int or_replies_pull(const struct or_config *cfg, int force, double budget);
static int or_inbound_read(const char *name, char **out, size_t *len);
static size_t or_inbound_split(const char *p, size_t n, size_t *body);
static void or_inbound_prune(double cutoff);
static int or_inbound_take(const struct or_config *cfg, double now);

/* ---- HEALTH AND ALERTS ---- */
static int or_health_verdict(const struct or_config *cfg, const struct or_health *h, char *why, size_t n);
static void or_health_judge(const struct or_config *cfg, double now);
static void or_alert_senders(const struct or_config *cfg, double now, long long due);
static void or_alert_error_rate(const struct or_config *cfg, double now, long long tries, long long bad);
static void or_alert_backlog(const struct or_config *cfg, double now, double oldest);
static void or_alerts_evaluate(const struct or_config *cfg, double now);
static void or_alerts_deliver(const struct or_config *cfg);

/* ---- REPORTS: status.txt, status.json, outreach.prom ---- */
static void or_snap_take(const struct or_config *cfg, const struct or_run *run, struct or_snap *sn);
struct or_seq_sum;   /* one campaign's sequences in a report */
static int or_seq_sum_next(const struct or_snap *sn, int *k, struct or_seq_sum *s);
static long long or_seq_step_replies(const struct or_snap *sn, const char *client, const char *campaign, const char *step);
static void or_json_sequences(const struct or_snap *sn, struct or_buf *b);
static void or_text_sequences(const struct or_snap *sn, struct or_buf *b);
static void or_report_json(const struct or_config *cfg, const struct or_snap *sn, struct or_buf *b);
static void or_report_text(const struct or_config *cfg, const struct or_snap *sn, struct or_buf *b);
static void or_write_reports(const struct or_config *cfg, const struct or_run *run);

/* ---- VALIDATE: list hygiene (doc/design.md §13) ---- */
struct or_domain_report;
struct or_vopts;
struct or_vres;
OR_STATIC int or_is_disposable(const char *domain);
OR_STATIC int or_is_role(const char *local);
OR_STATIC int or_typo(const char *domain, char *fix, size_t n);
OR_STATIC void or_validate_syntax(const char *in, struct or_vres *r);
OR_STATIC const char *or_verdict_of(unsigned reasons);
static int or_dns_server(const char *spec, struct sockaddr_storage *ss, socklen_t *len);
static int or_domains_check(const struct or_config *cfg, const char *server, int timeout_ms,
                            struct or_domain_report *out, char *err, size_t errlen);
static void or_domain_json(struct or_buf *b, const struct or_domain_report *r);
static void or_domains_gate(const struct or_config *cfg, double now);
static int or_validate_inputs(const char *data, size_t n, const char *path, const char *column, char ***lines,
                              char ***addrs, int *count, char *err, size_t errlen);
static void or_validate_all(const struct or_config *cfg, const struct or_vopts *o, char **addrs, int n, struct or_vres *res);
static void or_vres_json(struct or_buf *b, const struct or_vres *r);
static void or_csv_cell(struct or_buf *b, const char *v);

/* ---- RUN: one tick (doc/design.md §1) ---- */
static int or_run_tick(const struct or_config *cfg, int max_jobs, double deadline);
static void or_tick_stamp_idle(const struct or_run *run, double now);   /* run/idle, for status */

/* ---- COMMANDS ---- */
static int or_bad_arg(const char *cmd, const char *arg);
static int or_cmd_init(const struct or_config *cfg, const char *keyfile);
static int or_cmd_enqueue(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_run(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_status(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_senders(const struct or_config *cfg);
static int or_cmd_sender(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_suppress(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_requeue(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_validate(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_domains(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_pull(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_leads(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_lead(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_engagement(const struct or_config *cfg, int argc, char **argv);
static int or_write_user_file(const char *cmd, const char *file, const struct or_buf *b);
static int or_cmd_unsubscribe(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_cgi(const struct or_config *cfg);
static int or_cmd_plan(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_pause(const struct or_config *cfg, int argc, char **argv, int pause);
static int or_cmd_cancel(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_render(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_jobs(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_show(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_backup(const struct or_config *cfg, int argc, char **argv);
static int or_cmd_check_config(const struct or_config *cfg, int argc, char **argv);

/* ---- MAIN ---- */
/* main only: options, the config, the command dispatched through the table
 * or_commands (name, handler, what it needs; `outreach commands` lists it,
 * tests/e2e/docs.sh checks it against usage() and outreach.1) */

#endif
