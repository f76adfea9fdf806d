/* tests/unit-seq.c — unit tests of SEQUENCES, included by tests/unit.c (one
 * translation unit with outreach.c); UNIT_SEQ_TESTS lists them for its table.
 *
 * Every expected date and time below was worked out by hand from a calendar
 * (2026-11-27 is a Friday, 2026-11-30 a Monday; Berlin leaves summer time on
 * Sunday 2026-10-25 at 03:00 CEST and enters it on Sunday 2026-03-29; Moscow
 * and Tokyo keep UTC+3 and UTC+9 all year) and is written as RFC 3339 text,
 * so a failure shows the date a user would have seen. */

/* UTC RFC 3339 of a due time, via the code's own formatter. */
static const char *t_seq_utc(double t)
{
	static char buf[8][32];
	static int i;
	char *b = buf[i++ % 8];
	or_fmt_rfc3339((time_t)t, b, 32);
	return b;
}

/* Local RFC 3339 ("2026-10-26T10:00:00+01:00") of t in zone tz, via the
 * code's TZ machinery (or_localtime), with the zone's offset at that moment. */
static const char *t_seq_local(double t, const char *tz)
{
	static char buf[8][64];
	static int i;
	char *b = buf[i++ % 8];
	struct tm tm;
	int off;

	or_localtime((time_t)t, tz, &tm);
	off = (int)(tm.tm_gmtoff < 0 ? -tm.tm_gmtoff : tm.tm_gmtoff) % 86400;
	snprintf(b, 64, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_gmtoff < 0 ? '-' : '+', off / 3600,
	         off % 3600 / 60);
	return b;
}

/* A config in zone tz with a client "acme" (holidays as YYYY-MM-DD, NULL
 * ended) and a client "beta" without holidays. */
static struct or_config *t_seq_cfg(const char *tz, const char *const *holidays)
{
	struct or_config *cfg = cfg_new();
	snprintf(cfg->timezone, sizeof cfg->timezone, "%s", tz);
	cfg->ooo_pause = 3;
	cfg->ooo_max = 30;
	cfg->nclients = 2;
	snprintf(cfg->clients[0].name, sizeof cfg->clients[0].name, "acme");
	snprintf(cfg->clients[1].name, sizeof cfg->clients[1].name, "beta");
	for (int i = 0; holidays && holidays[i]; i++) {
		int d = or_day_of_iso(holidays[i]);
		if (d < 0)
			CHECKF(0, "bad test holiday %s", holidays[i]);
		cfg->clients[0].holidays[cfg->clients[0].nholidays++] = d;
	}
	return cfg;
}

static struct or_window t_seq_win(unsigned days, const char *tz)
{
	struct or_window w;
	memset(&w, 0, sizeof w);
	w.set = 1;
	w.days = days;
	w.start_min = 9 * 60;
	w.end_min = 18 * 60;
	snprintf(w.tz, sizeof w.tz, "%s", tz ? tz : "");
	return w;
}

#define SEQ_EQ(got, want) CHECKF(strcmp((got), (want)) == 0, "got %s, want %s", (got), (want))

static void test_seq_weekday(void)
{
	CHECKF(or_day_weekday(0) == 3, "%d", or_day_weekday(0));                          /* 1970-01-01 Thu */
	CHECKF(or_day_weekday(or_day_of_iso("2026-11-27")) == 4, "%d", or_day_weekday(or_day_of_iso("2026-11-27")));
	CHECK(or_day_weekday(or_day_of_iso("2026-11-28")) == 5);                          /* Sat */
	CHECK(or_day_weekday(or_day_of_iso("2026-11-29")) == 6);                          /* Sun */
	CHECK(or_day_weekday(or_day_of_iso("2026-11-30")) == 0);                          /* Mon */
	CHECK(or_day_weekday(or_day_of_iso("2026-12-01")) == 1);                          /* Tue */
	CHECK(or_day_weekday(or_day_of_iso("2028-02-29")) == 1);                          /* leap day, Tue */
	/* before the epoch: 1969-12-31 was a Wednesday, 1969-12-25 a Thursday */
	CHECKF(or_day_weekday(-1) == 2, "%d", or_day_weekday(-1));
	CHECKF(or_day_weekday(-7) == 3, "%d", or_day_weekday(-7));
}

static void test_seq_business_day(void)
{
	const char *const hol[] = { "2026-12-25", "2026-11-30", NULL };
	struct or_config *cfg = t_seq_cfg("UTC", hol);
	const struct or_client *acme = &cfg->clients[0], *beta = &cfg->clients[1];
	int fri = or_day_of_iso("2026-11-27");

	CHECK(or_business_day(acme, 0x1f, fri) == 1);
	CHECK(or_business_day(acme, 0x1f, fri + 1) == 0);                   /* Saturday */
	CHECK(or_business_day(acme, 0x1f, fri + 2) == 0);                   /* Sunday */
	CHECK(or_business_day(acme, 0x1f, fri + 3) == 0);                   /* Monday, acme's holiday */
	CHECK(or_business_day(beta, 0x1f, fri + 3) == 1);                   /* not beta's */
	CHECK(or_business_day(NULL, 0x1f, fri + 3) == 1);                   /* no client: no holidays */
	CHECK(or_business_day(acme, 0x1f, or_day_of_iso("2026-12-25")) == 0);
	CHECK(or_business_day(acme, 0x1f, or_day_of_iso("2026-12-24")) == 1);
	/* a window of Mon, Wed, Fri: Tuesday is none; one with Saturday: it is one */
	CHECK(or_business_day(beta, 0x15, fri + 4) == 0);
	CHECK(or_business_day(beta, 0x15, fri + 5) == 1);
	CHECK(or_business_day(beta, 0x3f, fri + 1) == 1);
	free(cfg);
}

static void test_seq_business_days_add(void)
{
	const char *const hol[] = { "2026-11-30", NULL };
	struct or_config *cfg = t_seq_cfg("UTC", hol);
	const struct or_client *acme = &cfg->clients[0], *beta = &cfg->clients[1];
	int fri = or_day_of_iso("2026-11-27"), got;

	got = or_business_days_add(beta, 0x1f, fri, 1);
	CHECKF(got == or_day_of_iso("2026-11-30"), "got %d", got);          /* Fri +1 = Mon */
	got = or_business_days_add(beta, 0x1f, fri, 5);
	CHECKF(got == or_day_of_iso("2026-12-04"), "got %d", got);          /* a week later, Fri */
	got = or_business_days_add(acme, 0x1f, fri, 1);
	CHECKF(got == or_day_of_iso("2026-12-01"), "got %d", got);          /* Mon a holiday: Tue */
	got = or_business_days_add(acme, 0x1f, fri, 3);
	CHECKF(got == or_day_of_iso("2026-12-03"), "got %d", got);          /* Tue, Wed, Thu */
	/* n = 0: the day itself when it is a business day, else the next one */
	CHECK(or_business_days_add(beta, 0x1f, fri, 0) == fri);
	CHECK(or_business_days_add(beta, 0x1f, fri + 1, 0) == or_day_of_iso("2026-11-30"));
	CHECK(or_business_days_add(acme, 0x1f, fri + 1, 0) == or_day_of_iso("2026-12-01"));
	/* a window naming no day counts Monday to Friday */
	CHECK(or_business_days_add(NULL, 0, fri, 1) == or_day_of_iso("2026-11-30"));
	/* a window of Saturdays only, every Saturday a holiday for over a year:
	 * the walk ends (after a year) instead of looping forever */
	struct or_client sat = { .name = "sat" };
	for (int i = 0; i < 60; i++)
		sat.holidays[sat.nholidays++] = fri + 1 + 7 * i;
	got = or_business_days_add(&sat, 1u << 5, fri, 1);
	CHECKF(got > fri + 365 && got < fri + 400, "got %d (from %d)", got, fri);
	free(cfg);
}

static void test_seq_step_due_friday_to_monday(void)
{
	struct or_config *cfg = t_seq_cfg("Europe/Moscow", NULL);
	/* Friday 14:30 Moscow = 11:30Z: 1bd is Monday 14:30 Moscow, 3bd Wednesday */
	double sent = (double)U("2026-11-27T11:30:00"), due;

	due = or_step_due(cfg, "beta", sent, "1bd", NULL);
	SEQ_EQ(t_seq_utc(due), "2026-11-30T11:30:00Z");
	SEQ_EQ(t_seq_local(due, "Europe/Moscow"), "2026-11-30T14:30:00+03:00");
	due = or_step_due(cfg, "beta", sent, "3bd", NULL);
	SEQ_EQ(t_seq_utc(due), "2026-12-02T11:30:00Z");
	due = or_step_due(cfg, "beta", sent, "5bd", NULL);
	SEQ_EQ(t_seq_utc(due), "2026-12-04T11:30:00Z");

	/* the send's day is the local one: Friday 22:30Z is already Saturday
	 * 01:30 in Moscow, so 1bd is Monday 01:30 Moscow (Sunday 22:30Z)... */
	sent = (double)U("2026-11-27T22:30:00");
	due = or_step_due(cfg, "beta", sent, "1bd", NULL);
	SEQ_EQ(t_seq_local(due, "Europe/Moscow"), "2026-11-30T01:30:00+03:00");
	SEQ_EQ(t_seq_utc(due), "2026-11-29T22:30:00Z");
	/* ...while in UTC that send was on Friday: Monday 22:30Z */
	snprintf(cfg->timezone, sizeof cfg->timezone, "UTC");
	due = or_step_due(cfg, "beta", sent, "1bd", NULL);
	SEQ_EQ(t_seq_utc(due), "2026-11-30T22:30:00Z");
	free(cfg);
}

static void test_seq_step_due_client_holiday(void)
{
	const char *const hol[] = { "2026-11-30", NULL };
	struct or_config *cfg = t_seq_cfg("UTC", hol);
	double sent = (double)U("2026-11-27T14:30:00");   /* Friday */

	/* acme's Monday is a holiday: Tuesday at the same time */
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "acme", sent, "1bd", NULL)), "2026-12-01T14:30:00Z");
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "acme", sent, "2bd", NULL)), "2026-12-02T14:30:00Z");
	/* another client's holidays are not beta's, and an unknown client has none */
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "beta", sent, "1bd", NULL)), "2026-11-30T14:30:00Z");
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "nobody", sent, "1bd", NULL)), "2026-11-30T14:30:00Z");
	/* two holidays in a row (Monday and Tuesday): Wednesday */
	cfg->clients[0].holidays[cfg->clients[0].nholidays++] = or_day_of_iso("2026-12-01");
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "acme", sent, "1bd", NULL)), "2026-12-02T14:30:00Z");
	/* Nd and Nh ignore holidays */
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "acme", sent, "3d", NULL)), "2026-11-30T14:30:00Z");
	free(cfg);
}

static void test_seq_step_due_window_days_and_zone(void)
{
	struct or_config *cfg = t_seq_cfg("Asia/Tokyo", NULL);
	/* Mon, Wed, Fri; the window names no zone: the config's (Tokyo, UTC+9) */
	struct or_window mwf = t_seq_win(0x15, NULL);
	double fri = (double)U("2026-11-27T01:00:00");   /* Friday 10:00 Tokyo */
	double mon = (double)U("2026-11-30T01:00:00");   /* Monday 10:00 Tokyo */

	SEQ_EQ(t_seq_local(or_step_due(cfg, "beta", fri, "1bd", &mwf), "Asia/Tokyo"), "2026-11-30T10:00:00+09:00");
	SEQ_EQ(t_seq_local(or_step_due(cfg, "beta", mon, "1bd", &mwf), "Asia/Tokyo"), "2026-12-02T10:00:00+09:00");
	SEQ_EQ(t_seq_local(or_step_due(cfg, "beta", mon, "3bd", &mwf), "Asia/Tokyo"), "2026-12-07T10:00:00+09:00");
	/* a window with Saturday: Friday's 1bd is Saturday */
	struct or_window six = t_seq_win(0x3f, NULL);
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "beta", fri, "1bd", &six)), "2026-11-28T01:00:00Z");
	/* a window's own zone wins over the config's: Friday 10:00 Tokyo is
	 * Thursday 20:00 in New York, so 1bd is Friday 20:00 New York */
	struct or_window ny = t_seq_win(0x1f, "America/New_York");
	double due = or_step_due(cfg, "beta", fri, "1bd", &ny);
	SEQ_EQ(t_seq_local(due, "America/New_York"), "2026-11-27T20:00:00-05:00");
	SEQ_EQ(t_seq_utc(due), "2026-11-28T01:00:00Z");
	/* a window not set is no window: its days and zone are not used */
	struct or_window unset = t_seq_win(0x3f, "America/New_York");
	unset.set = 0;
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "beta", fri, "1bd", &unset)), "2026-11-30T01:00:00Z");
	free(cfg);
}

static void test_seq_step_due_berlin_dst(void)
{
	struct or_config *cfg = t_seq_cfg("UTC", NULL);
	struct or_window w = t_seq_win(0x1f, "Europe/Berlin");
	/* Friday 10:00 CEST (08:00Z); summer time ends Sunday: Monday 10:00 CET
	 * is 09:00Z, three days and one hour later */
	double due = or_step_due(cfg, "beta", (double)U("2026-10-23T08:00:00"), "1bd", &w);
	SEQ_EQ(t_seq_local(due, "Europe/Berlin"), "2026-10-26T10:00:00+01:00");
	SEQ_EQ(t_seq_utc(due), "2026-10-26T09:00:00Z");
	/* and into summer time: Friday 09:15 CET (08:15Z) -> Monday 09:15 CEST (07:15Z) */
	due = or_step_due(cfg, "beta", (double)U("2026-03-27T08:15:00"), "1bd", &w);
	SEQ_EQ(t_seq_local(due, "Europe/Berlin"), "2026-03-30T09:15:00+02:00");
	SEQ_EQ(t_seq_utc(due), "2026-03-30T07:15:00Z");
	/* the same window zone given by the config instead */
	snprintf(cfg->timezone, sizeof cfg->timezone, "Europe/Berlin");
	due = or_step_due(cfg, "beta", (double)U("2026-10-23T08:00:00"), "1bd", NULL);
	SEQ_EQ(t_seq_utc(due), "2026-10-26T09:00:00Z");
	free(cfg);
}

static void test_seq_step_due_calendar_offsets(void)
{
	const char *const hol[] = { "2026-11-28", "2026-11-29", NULL };
	struct or_config *cfg = t_seq_cfg("Europe/Berlin", hol);
	double fri = (double)U("2026-11-27T14:30:00");

	/* Nd is N times 24 hours, weekends and holidays included */
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "acme", fri, "1d", NULL)), "2026-11-28T14:30:00Z");
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "acme", fri, "2d", NULL)), "2026-11-29T14:30:00Z");
	CHECK(or_step_due(cfg, "acme", fri, "2d", NULL) == fri + 2 * 86400.0);
	/* Nh is N hours, seconds kept */
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "acme", fri + 17, "12h", NULL)), "2026-11-28T02:30:17Z");
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "acme", fri, "36h", NULL)), "2026-11-29T02:30:00Z");
	/* plain offsets do not follow the zone's clock: 2d from Friday 10:00
	 * CEST across the change of 2026-10-25 is Sunday 09:00 CET */
	struct or_window w = t_seq_win(0x1f, "Europe/Berlin");
	double due = or_step_due(cfg, "acme", (double)U("2026-10-23T08:00:00"), "2d", &w);
	SEQ_EQ(t_seq_local(due, "Europe/Berlin"), "2026-10-25T09:00:00+01:00");
	/* an after the ledger holds but that does not parse: one day */
	CHECK(or_step_due(cfg, "acme", fri, "soon", NULL) == fri + 86400.0);
	free(cfg);
}

static void test_seq_lead_state_of_suppression(void)
{
	/* the reasons or_event_why and the soft-bounce limit write */
	SEQ_EQ(or_lead_state_of_suppression("bounced (hard): 550 5.1.1 user unknown"), "bounced");
	SEQ_EQ(or_lead_state_of_suppression("bounced"), "bounced");
	SEQ_EQ(or_lead_state_of_suppression("5 soft bounces in a row; last: bounced (soft): mailbox full"), "bounced");
	SEQ_EQ(or_lead_state_of_suppression("complained (abuse): feedback loop"), "complained");
	SEQ_EQ(or_lead_state_of_suppression("unsubscribed: one-click"), "unsubscribed");
	SEQ_EQ(or_lead_state_of_suppression("replied: Re: our call"), "replied");
	/* an operator's free text, or none */
	SEQ_EQ(or_lead_state_of_suppression("asked us by phone"), "stopped");
	SEQ_EQ(or_lead_state_of_suppression("not bounced, just remove"), "stopped");
	SEQ_EQ(or_lead_state_of_suppression("Replied by phone"), "stopped");   /* prefixes are exact */
	SEQ_EQ(or_lead_state_of_suppression(""), "stopped");
	SEQ_EQ(or_lead_state_of_suppression(NULL), "stopped");
}

static void test_seq_freemail(void)
{
	CHECK(or_freemail("gmail.com") == 1);
	CHECK(or_freemail("GMail.COM") == 1);
	CHECK(or_freemail("yahoo.co.uk") == 1);
	CHECK(or_freemail("t-online.de") == 1);
	CHECK(or_freemail("proton.me") == 1);
	CHECK(or_freemail("corp.example") == 0);
	CHECK(or_freemail("mail.gmail.com") == 0);   /* whole names only */
	CHECK(or_freemail("gmail.co") == 0);
	CHECK(or_freemail("gmail.com.example") == 0);
	CHECK(or_freemail("") == 0);
}

static void test_seq_ooo_return_day(void)
{
	const char *const hol[] = { "2026-11-30", NULL };
	struct or_config *cfg = t_seq_cfg("Europe/Berlin", hol);
	double now = (double)U("2026-11-25T09:00:00");   /* Wednesday 10:00 Berlin */
	double h;

	/* back on Friday: held to the next business day, Monday, from local midnight */
	h = or_ooo_hold_until(cfg, "beta", NULL, now, or_day_of_iso("2026-11-27"));
	SEQ_EQ(t_seq_local(h, "Europe/Berlin"), "2026-11-30T00:00:00+01:00");
	SEQ_EQ(t_seq_utc(h), "2026-11-29T23:00:00Z");
	/* acme's Monday is a holiday: Tuesday */
	h = or_ooo_hold_until(cfg, "acme", NULL, now, or_day_of_iso("2026-11-27"));
	SEQ_EQ(t_seq_utc(h), "2026-11-30T23:00:00Z");
	/* back on Thursday: Friday */
	h = or_ooo_hold_until(cfg, "beta", NULL, now, or_day_of_iso("2026-11-26"));
	SEQ_EQ(t_seq_local(h, "Europe/Berlin"), "2026-11-27T00:00:00+01:00");
	/* the window's zone and days: New York midnight; Mon-Sat makes Saturday one */
	struct or_window ny = t_seq_win(0x1f, "America/New_York");
	h = or_ooo_hold_until(cfg, "beta", &ny, now, or_day_of_iso("2026-11-27"));
	SEQ_EQ(t_seq_utc(h), "2026-11-30T05:00:00Z");
	struct or_window six = t_seq_win(0x3f, NULL);
	h = or_ooo_hold_until(cfg, "beta", &six, now, or_day_of_iso("2026-11-27"));
	SEQ_EQ(t_seq_local(h, "Europe/Berlin"), "2026-11-28T00:00:00+01:00");
	free(cfg);
}

static void test_seq_ooo_no_return_day(void)
{
	struct or_config *cfg = t_seq_cfg("Europe/Berlin", NULL);
	double now = (double)U("2026-11-25T09:00:00");   /* Wednesday 10:00 Berlin */
	int today = or_day_of_iso("2026-11-25");
	double h;

	/* no return day: ooo_pause (3) business days, Thu, Fri, Mon */
	h = or_ooo_hold_until(cfg, "beta", NULL, now, 0);
	SEQ_EQ(t_seq_local(h, "Europe/Berlin"), "2026-11-30T00:00:00+01:00");
	/* a return day that is today or past counts as none */
	SEQ_EQ(t_seq_utc(or_ooo_hold_until(cfg, "beta", NULL, now, today)), "2026-11-29T23:00:00Z");
	SEQ_EQ(t_seq_utc(or_ooo_hold_until(cfg, "beta", NULL, now, today - 10)), "2026-11-29T23:00:00Z");
	/* today is Berlin's: 23:30Z Wednesday is already Thursday there, so Fri, Mon, Tue */
	h = or_ooo_hold_until(cfg, "beta", NULL, (double)U("2026-11-25T23:30:00"), 0);
	SEQ_EQ(t_seq_local(h, "Europe/Berlin"), "2026-12-01T00:00:00+01:00");
	/* across the change of 2026-10-25: Friday + 1 business day is Monday, 00:00 CET */
	cfg->ooo_pause = 1;
	h = or_ooo_hold_until(cfg, "beta", NULL, (double)U("2026-10-23T08:00:00"), 0);
	SEQ_EQ(t_seq_local(h, "Europe/Berlin"), "2026-10-26T00:00:00+01:00");
	SEQ_EQ(t_seq_utc(h), "2026-10-25T23:00:00Z");
	free(cfg);
}

static void test_seq_ooo_capped(void)
{
	struct or_config *cfg = t_seq_cfg("Europe/Berlin", NULL);
	double now = (double)U("2026-11-25T09:00:00");   /* Wednesday 10:00 Berlin */
	double h;

	/* back in January, ooo_max 10: held to Saturday 2026-12-05 (ten calendar
	 * days, the cap is not moved to a business day) */
	cfg->ooo_max = 10;
	h = or_ooo_hold_until(cfg, "beta", NULL, now, or_day_of_iso("2027-01-15"));
	SEQ_EQ(t_seq_local(h, "Europe/Berlin"), "2026-12-05T00:00:00+01:00");
	/* ooo_pause 20 business days, ooo_max 7: Wednesday 2026-12-02 */
	cfg->ooo_pause = 20;
	cfg->ooo_max = 7;
	h = or_ooo_hold_until(cfg, "beta", NULL, now, 0);
	SEQ_EQ(t_seq_local(h, "Europe/Berlin"), "2026-12-02T00:00:00+01:00");
	/* a hold exactly at the cap stands: back Friday -> Monday, today + 5 */
	cfg->ooo_max = 5;
	h = or_ooo_hold_until(cfg, "beta", NULL, now, or_day_of_iso("2026-11-27"));
	SEQ_EQ(t_seq_local(h, "Europe/Berlin"), "2026-11-30T00:00:00+01:00");
	cfg->ooo_max = 4;
	h = or_ooo_hold_until(cfg, "beta", NULL, now, or_day_of_iso("2026-11-27"));
	SEQ_EQ(t_seq_local(h, "Europe/Berlin"), "2026-11-29T00:00:00+01:00");
	free(cfg);
}

static void test_seq_step_after_parse(void)
{
	static const struct { const char *s; int n; char unit; } ok[] = {
		{ "3bd", 3, 'b' }, { "2d", 2, 'd' }, { "12h", 12, 'h' },
		{ "0bd", 0, 'b' },   /* accepted: see below */
		{ "60d", 60, 'd' }, { "60bd", 60, 'b' }, { "1440h", 1440, 'h' }, { "007d", 7, 'd' },
	};
	static const char *const bad[] = {
		"61d", "61bd", "1441h", "soon", "", "3 bd", "-1d", "+1d", " 3d", "3bd ", "3BD", "3D",
		"bd", "d", "3", "3w", "3b", "3dd", "1.5d", "99999999999999999999d",
	};
	int n;
	char unit;

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		n = -1;
		unit = 0;
		CHECKF(or_step_after_parse(ok[i].s, &n, &unit) == 0, "%s refused", ok[i].s);
		CHECKF(n == ok[i].n && unit == ok[i].unit, "%s: n %d unit %c", ok[i].s, n, unit ? unit : '?');
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECKF(or_step_after_parse(bad[i], &n, &unit) != 0, "\"%s\" accepted", bad[i]);
	CHECK(or_step_after_parse(NULL, &n, &unit) != 0);

	/* 0bd is a delay of its own: the send's time on a business day, else
	 * that time on the next one (Friday stays Friday, Saturday is Monday) */
	struct or_config *cfg = t_seq_cfg("UTC", NULL);
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "beta", (double)U("2026-11-27T10:00:00"), "0bd", NULL)),
	       "2026-11-27T10:00:00Z");
	SEQ_EQ(t_seq_utc(or_step_due(cfg, "beta", (double)U("2026-11-28T10:00:00"), "0bd", NULL)),
	       "2026-11-30T10:00:00Z");
	free(cfg);
}

#define UNIT_SEQ_TESTS T(test_seq_weekday), T(test_seq_business_day), T(test_seq_business_days_add), \
	T(test_seq_step_due_friday_to_monday), T(test_seq_step_due_client_holiday), \
	T(test_seq_step_due_window_days_and_zone), T(test_seq_step_due_berlin_dst), \
	T(test_seq_step_due_calendar_offsets), \
	T(test_seq_lead_state_of_suppression), T(test_seq_freemail), T(test_seq_ooo_return_day), \
	T(test_seq_ooo_no_return_day), T(test_seq_ooo_capped), T(test_seq_step_after_parse),
