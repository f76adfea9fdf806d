#!/bin/sh
# tests/e2e/pg-send.sh — two hosts sending from one shared PostgreSQL ledger
# (two configs and spools, each host its own file provider's outbox, one
# private PostgreSQL 15 on loopback), each scenario ending with an audit of
# what the providers received against the ledger:
#   both hosts drain one backlog at once, three ticks each: every job sent at
#   most once across both outboxes, each sent job in exactly one, the senders'
#   caps (100 + 80) and a client's (50) reached exactly and never passed, the
#   day counters equal to the sends; a tick with nothing due writes no runs row;
#   the last unit of a cap raced by both hosts, 20 days over: one send a day;
#   per-minute spacing held across both hosts (the slots of one sender never
#   closer than its gap), min_gap and jitter too (the draw one host makes at its
#   reservation spaces the other's next slot); a job's window judged at its slot, not only at
#   ingest;
#   a host killed after a claim and another after an intent: once their
#   leases lapse (waited for in the database, never slept), the other host
#   recovers them: the claimed job is sent by it, once; the one whose intent
#   was committed is held, sent by nobody, its unit kept; status counts it
#   held, and requeue held on one host gets it sent by the other, once;
#   an unsubscribe link from a message one host sent, clicked through the
#   other host's unsub/: the address suppressed in the shared ledger, a later
#   job to it suppressed, not sent; the CGI writes the suppression into the
#   shared ledger at the click (nothing left in unsub/), and with the
#   database out of reach leaves the request in unsub/ for the next run;
#   unsubscribe TOKEN writes it too;
#   an account's circuit breaker: 500, 503, 503 open it (account_down), no
#   tick sends through it during the cooldown, the probe after it closes it
#   and the rest go;
#   a sender's fallback account: its primary's circuit open, the rest of its
#   jobs go through the fallback at once and the failed ones on the other host's
#   tick, each once, none through the open circuit, spaced by the fallback's rate;
#   recipient groups: a group's per_minute, per_hour and sender_per_minute held
#   by both hosts' claims together, other domains going on meanwhile;
#   the config refuses what this store does not take yet (mailboxes), with
#   one line.
# san: yes
. "$(dirname "$0")/../lib.sh"

pg_up
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
# host NAME SENDERS [EXTRA] [LEASE]: a host's config; its outbox is $T/NAME/outbox
host() {
  mkdir -p "$T/$1"
  cat >"$T/$1/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
unsubscribe = { url = "https://unsub.example/u"; };
providers = ( { name = "dry"; type = "file"; dir = "outbox"; timeout = 1; } );
senders = ( $2 );
${3:-}
store = { type = "postgresql"; conninfo = "$pg_ci"; password_file = "../pw"; host_name = "$1"; lease = ${4:-60}; };
EOF
  "$OR" -c "$T/$1/conf" init --key "$T/key" || notok "$1: init"
}
drop() {   # drop HOST NAME JSON
  printf '%s\n' "$3" >"$T/$1/spool/tmp/$2" && mv "$T/$1/spool/tmp/$2" "$T/$1/spool/new/$2"
}
job() {    # job ID CLIENT [TO]
  printf '{"id": "%s", "client": "%s", "to": "%s", "subject": "Hello", "text": "Hi %s"}' "$1" "$2" "${3:-$1@example.org}" "$1"
}
# audit: no job id in two .eml files across both hosts' outboxes (or twice in one), and
# every .eml's job is 'sent' in the ledger: prints "emls dup notsent"
audit() {
  ls "$T"/hA/outbox "$T"/hB/outbox 2>/dev/null | grep '\.eml$' | sed 's/\.eml$//' | sort >"$T/emls"
  pgsql "SELECT id FROM jobs WHERE state = 'sent' ORDER BY id" | sort >"$T/sent"
  echo "$(wc -l <"$T/emls") $(uniq -d <"$T/emls" | wc -l) $(comm -23 "$T/emls" "$T/sent" | wc -l)"
}
ticks() {   # ticks N: both hosts run N ticks each, at the same time
  for h in hA hB; do
    (for i in $(seq 1 "$1"); do OUTREACH_NOW=${NOW:-} "$OR" -c "$T/$h/conf" run >>"$T/$h.log" 2>&1 || echo "rc=$?" >>"$T/$h.log"; done) &
  done
  wait
}
reset_ledger() {
  pgsql "TRUNCATE jobs, arrivals, runs, day_counts, attempts, suppressions, counters; UPDATE senders SET last_slot_at = 0"
  rm -rf "$T"/hA/outbox/* "$T"/hB/outbox/* "$T"/hA.log "$T"/hB.log
}

# --- one backlog, both hosts at once, caps shared and exact ---------------------------------------------------
senders='{ name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 100; },
         { name = "s2"; from = "Two <two@s2.example>"; provider = "dry"; daily_limit = 80; }'
clients='clients = ( { name = "acme"; daily_limit = 50; } );'
host hA "$senders" "$clients"; host hB "$senders" "$clients"
for i in $(seq 1 75); do drop hA "a$i.json" "$(job "a$i" acme)"; drop hB "b$i.json" "$(job "b$i" beta)"; done
for i in $(seq 76 150); do drop hA "a$i.json" "$(job "a$i" beta)"; drop hB "b$i.json" "$(job "b$i" acme)"; done
NOW=2026-12-01T10:00:00Z ticks 3
if grep -q 'rc=' "$T/hA.log" "$T/hB.log"; then notok "every tick exits 0" "$(grep -h -B3 'rc=' "$T/hA.log" "$T/hB.log" | head -20)"
else ok "every tick of both hosts exits 0"; fi
set -- $(audit)
eq "180 messages in the two outboxes, none twice, each one a sent job" "$1 $2 $3" "180 0 0"
eq "sent 180 = 100 + 80: the senders' caps exact" \
  "$(pgsql "SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state = 'sent' AND sender = 's1'), count(*) FILTER (WHERE state = 'sent' AND sender = 's2') FROM jobs")" "180|100|80"
eq "acme's cap exact: 50 of its 150 sent, beta the other 130" \
  "$(pgsql "SELECT count(*) FILTER (WHERE client = 'acme'), count(*) FILTER (WHERE client = 'beta') FROM jobs WHERE state = 'sent'")" "50|130"
eq "the day counters are the sends: s1 100, s2 80, acme 50" \
  "$(pgsql "SELECT string_agg(kind || ':' || name || '=' || n, ' ' ORDER BY kind, name) FROM day_counts")" "c:acme=50 s:s1=100 s:s2=80"
eq "the other 120 wait for tomorrow, none claimed or sending" \
  "$(pgsql "SELECT count(*) FILTER (WHERE state = 'waiting' AND next_due >= extract(epoch FROM timestamptz '2026-12-02 00:00:00+00')), count(*) FILTER (WHERE state IN ('claimed', 'sending')) FROM jobs")" "120|0"
eq "each sent job has one attempt" "$(pgsql "SELECT count(*) FROM attempts a JOIN jobs j ON j.id = a.job_id AND j.state = 'sent'")" 180
both=$(for h in hA hB; do ls "$T/$h/outbox" | grep -c eml; done | tr '\n' ' ')
echo "# sends per host: $both"

# --- status, status.json and outreach.prom on the shared ledger ---------------------------------------------------
# js FILE EXPR: a Python expression over the JSON document d
js() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
OUTREACH_NOW=2026-12-01T10:30:00Z "$OR" -c "$T/hB/conf" status --json >"$T/st.json"; rc=$?
eq "status --json on hB: the cluster's spool (done 180, waiting 120, nothing held or claimed)" \
  "$rc:$(js "$T/st.json" "' '.join(str(d['spool'][k]) for k in ('done', 'defer', 'cur', 'held', 'failed'))")" "0:180 120 0 0 0"
eq "... the senders' counts and caps today, across both hosts" \
  "$(js "$T/st.json" "' '.join('%s=%d/%d' % (s['name'], s['sent_today'], s['cap_today']) for s in d['senders'])")" "s1=100/100 s2=80/80"
eq "... the clients: acme 50 of its cap 50 with 100 pending, beta 130 with 20" \
  "$(js "$T/st.json" "' '.join('%s=%d/%s/%d' % (c['name'], c['sent_today'], c['cap_today'], c['pending']) for c in d['clients'])")" \
  "acme=50/50/100 beta=130/None/20"
eq "... both hosts, each with its last run and a heartbeat, none down, no alert" \
  "$(js "$T/st.json" "' '.join('%s:%s:%s' % (h['name'], h['last_run'] is not None and h['heartbeat'] >= h['last_run'], h['down']) for h in d['hosts'])")" \
  "hA:True:False hB:True:False"
eq "... one alert: senders_exhausted, in SQLite's words (the jobs the claims passed over count as due)" \
  "$(js "$T/st.json" "[(a['name'], a['detail']) for a in d['alerts']]")" \
  "[('senders_exhausted', '120 jobs are due and no sender has capacity left today')]"
for h in hA hB; do [ -s "$T/$h/reports/outreach.prom" ] || notok "$h's tick wrote its reports"; done
prom=$T/hA/reports/outreach.prom
if command -v promtool >/dev/null 2>&1; then
  check "promtool check metrics accepts the PostgreSQL store's outreach.prom" sh -c 'promtool check metrics <"$1"' sh "$prom"
else notok "promtool installed" "apt-get install prometheus"; fi
eq "outreach.prom: the sent counters sum to 180 across both hosts, both hosts up" \
  "$(awk '/^outreach_sent_total/ { s += $2 } /^outreach_host_up/ { u += $2 } END { print s, u }' "$prom")" "180 2"
# a host that stops ticking: its heartbeat aged past two leases, by the database's clock;
# both hosts deliver alerts to one log (alert_command), so a change delivered twice shows
printf '#!/bin/sh\necho "$OUTREACH_ALERT $OUTREACH_ALERT_EVENT" >>"%s"\n' "$T/alerts.log" >"$T/alert.sh"; chmod 755 "$T/alert.sh"
for h in hA hB; do printf 'alert_command = ["%s"];\n' "$T/alert.sh" >>"$T/$h/conf"; done
pgsql "UPDATE hosts SET heartbeat_at = now() - interval '121 seconds' WHERE name = 'hB'"
"$OR" -c "$T/hA/conf" status --json >"$T/st.json"
eq "hB silent for more than two leases: down in hA's status --json" "$(js "$T/st.json" "[h['name'] for h in d['hosts'] if h['down']]")" "['hB']"
OUTREACH_NOW=2026-12-01T10:30:30Z "$OR" -c "$T/hA/conf" run >/dev/null 2>&1 &
OUTREACH_NOW=2026-12-01T10:30:30Z "$OR" -c "$T/hA/conf" run >/dev/null 2>&1; wait
"$OR" -c "$T/hA/conf" status --json >"$T/st.json"
eq "... hA's ticks raise host_down:hB" "$(js "$T/st.json" "[a['name'] for a in d['alerts']]")" "['host_down:hB', 'senders_exhausted']"
out=$("$OR" -c "$T/hA/conf" status)
if printf '%s' "$out" | grep -q "^host  *hB .* DOWN$" && printf '%s' "$out" | grep -q "^  host_down:hB  .*has not run since"; then
  ok "... status names it DOWN, and the alert says since when"
else notok "... status names it DOWN, and the alert says since when" "$out"; fi
OUTREACH_NOW=2026-12-01T10:31:00Z "$OR" -c "$T/hB/conf" run >/dev/null 2>&1
OUTREACH_NOW=2026-12-01T10:31:00Z "$OR" -c "$T/hA/conf" run >/dev/null 2>&1
"$OR" -c "$T/hA/conf" status --json >"$T/st.json"
eq "... and up again after its next tick (an idle one), the alert cleared" "$(js "$T/st.json" "[h['name'] for h in d['hosts'] if h['down']] + [a['name'] for a in d['alerts']]")" "['senders_exhausted']"
eq "the raise and the clear each delivered once across both hosts' ticks" "$(cat "$T/alerts.log" 2>/dev/null | grep host_down | tr '\n' ';')" "host_down:hB raised;host_down:hB cleared;"
pgsql "INSERT INTO hosts (name, version, key_sha256) VALUES ('hZ', 'x', repeat('0', 64))"
OUTREACH_NOW=2026-12-01T10:32:00Z "$OR" -c "$T/hA/conf" run >/dev/null 2>&1
eq "a host whose key is not the ledger's: key_differs:hZ" \
  "$("$OR" -c "$T/hB/conf" status --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print([a["name"] for a in d["alerts"] if a["name"].startswith("key")], [h["key_differs"] for h in d["hosts"]])')" \
  "['key_differs:hZ'] [False, False, True]"
pgsql "DELETE FROM hosts WHERE name = 'hZ'"
OUTREACH_NOW=2026-12-01T10:33:00Z "$OR" -c "$T/hB/conf" run >/dev/null 2>&1
eq "... its alerts go with its row" "$(pgsql "SELECT count(*) FROM alerts WHERE name LIKE 'key%'")" 0
for h in hA hB; do sed -i '/^alert_command/d' "$T/$h/conf"; done

before=$(pgsql "SELECT count(*) FROM runs")
OUTREACH_NOW=2026-12-01T10:30:00Z "$OR" -c "$T/hA/conf" run; rc=$?
eq "a tick with nothing due (the rest is tomorrow's) exits 0 and writes no runs row" "$rc:$(pgsql "SELECT count(*) FROM runs")" "0:$before"

# --- the last unit raced, 20 days over ---------------------------------------------------------------------------------
reset_ledger
one='{ name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1; }'
host hA "$one"; host hB "$one"
for d in $(seq 10 29); do
  drop hA "ra$d.json" "$(job "ra$d" acme)"; drop hB "rb$d.json" "$(job "rb$d" acme)"
  NOW=2027-01-${d}T12:00:00Z ticks 1
done
set -- $(audit)
eq "20 days, both hosts racing for one unit a day: 20 sends, none twice" "$1 $2 $3" "20 0 0"
# by the jobs' slot days (retention keeps only the last days' counters)
eq "... one a day, every day" "$(pgsql "SELECT count(*), min(n), max(n) FROM (SELECT slot_day, count(*) n FROM jobs WHERE state = 'sent' GROUP BY slot_day) d")" "20|1|1"
eq "... the day counters of the days retention keeps: one each" "$(pgsql "SELECT count(*) > 0 AND max(n) = 1 FROM day_counts WHERE kind = 's'")" t

# --- per-minute spacing across hosts -------------------------------------------------------------------------------
reset_ledger
paced='{ name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; per_minute = 30; }'
host hA "$paced"; host hB "$paced"
for i in $(seq 1 6); do drop hA "pa$i.json" "$(job "pa$i" acme)"; drop hB "pb$i.json" "$(job "pb$i" acme)"; done
NOW=2027-02-01T09:00:00Z ticks 1
gaps=$(pgsql "SELECT coalesce(min(g), 999), count(*) FROM (SELECT slot_at - lag(slot_at) OVER (ORDER BY slot_at) AS g FROM jobs WHERE state = 'sent') s WHERE g IS NOT NULL")
if [ "${gaps#*|}" -ge 5 ] && awk -v g="${gaps%|*}" 'BEGIN { exit !(g >= 1.999) }'; then
  ok "per_minute = 30 across both hosts: no two slots closer than 2 s (smallest gap ${gaps%|*} s over ${gaps#*|})"
else notok "per_minute = 30 across both hosts: no two slots closer than 2 s" "smallest gap and count: $gaps"; fi


# --- recipient groups across hosts: a group's limits held by both hosts' claims together --------------------------------
reset_ledger
grp='{ name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; },
     { name = "s2"; from = "Two <two@s2.example>"; provider = "dry"; daily_limit = 1000; }'
rgc='recipient_domains = ( { name = "gm"; domains = ["gmail.test"]; per_minute = 5; sender_per_minute = 3; per_hour = 8; } );'
host hA "$grp" "$rgc"; host hB "$grp" "$rgc"
for i in $(seq 1 7); do drop hA "ga$i.json" "$(job "ga$i" acme "ga$i@gmail.test")"; drop hB "gb$i.json" "$(job "gb$i" acme "gb$i@gmail.test")"; done
for i in 1 2 3; do drop hA "oa$i.json" "$(job "oa$i" acme "oa$i@other.test")"; drop hB "ob$i.json" "$(job "ob$i" acme "ob$i@other.test")"; done
NOW=2027-02-03T09:00:00Z ticks 1
T9=1801645200   # 2027-02-03T09:00:00Z
eq "both hosts' first ticks: the group's per_minute 5 across both, each sender at most its 3, the other domain's six all sent" \
  "$(pgsql "SELECT count(*) FILTER (WHERE rcpt LIKE '%@gmail.test'), max(n) FILTER (WHERE true), (SELECT count(*) FROM jobs WHERE state = 'sent' AND rcpt LIKE '%@other.test') FROM (SELECT rcpt, count(*) OVER (PARTITION BY sender) n FROM jobs WHERE state = 'sent' AND rcpt LIKE '%@gmail.test') x")" \
  "5|3|6"
eq "... the other nine gmail jobs wait for the window to move (due a minute after its first slot)" \
  "$(pgsql "SELECT count(*) FROM jobs WHERE state = 'waiting' AND rcpt LIKE '%@gmail.test' AND next_due > $T9 + 60")" 9
NOW=2027-02-03T09:01:05Z ticks 1
NOW=2027-02-03T09:02:10Z ticks 1
NOW=2027-02-03T09:03:15Z ticks 1
python3 - "$(pgsql "SELECT string_agg(slot_at::text || ':' || sender, ' ' ORDER BY slot_at) FROM jobs WHERE state = 'sent' AND rcpt LIKE '%@gmail.test'")" <<'PYEOF'
import sys
s = [(float(x.split(":")[0]), x.split(":")[1]) for x in sys.argv[1].split()]
def most(w, who=None):
    t = [a for a, b in s if who is None or b == who]
    return max([sum(1 for u in t if x <= u < x + w) for x in t] or [0])
def res(name, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + name)
    if not cond: print("#   %s" % (detail,))
res("... over four minutes of both hosts' ticks: 8 gmail sends, the group's per_hour", len(s) == 8, len(s))
res("... no 60 s window holds more than 5 of the group's slots", most(60) <= 5, most(60))
res("... nor more than 3 of one sender's", max(most(60, "s1"), most(60, "s2")) <= 3, (most(60, "s1"), most(60, "s2")))
PYEOF
[ $? -eq 0 ] || nfail=$((nfail + 1))

# --- min_gap and jitter across hosts: the draw made at one host's reservation spaces the other's next slot --------------
reset_ledger
jit='{ name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; min_gap = 0.2; jitter = 0.4; }'
host hA "$jit"; host hB "$jit"
for i in $(seq 1 8); do drop hA "ja$i.json" "$(job "ja$i" acme)"; drop hB "jb$i.json" "$(job "jb$i" acme)"; done
NOW=2027-02-02T09:00:00Z ticks 1
pgsql "SELECT slot_at - lag(slot_at) OVER (ORDER BY slot_at) FROM jobs WHERE state = 'sent'" | sed '/^$/d' >"$T/gaps"
python3 - "$T/gaps" <<'PYEOF'
import sys
g = [float(x) for x in open(sys.argv[1])]
ex = [x - 0.2 for x in g]
def res(name, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + name)
    if not cond: print("#   %s" % (detail,))
res("jitter across hosts: 16 slots, 15 gaps", len(g) == 15, len(g))
res("... every gap >= min_gap 0.2 s", g and min(g) >= 0.2 - 1e-6, sorted(g)[:3])
res("... every (gap - min_gap) within [0, 0.4] (drawn at the last slot's reservation, whichever host made it)",
    ex and min(ex) >= -1e-6 and max(ex) <= 0.4 + 0.002, sorted(ex)[-3:])
res("... the draws differ (spread %.3f s) and their mean is near 0.2 (got %.3f)" % (max(ex) - min(ex), sum(ex) / len(ex)),
    max(ex) - min(ex) > 0.05 and 0.08 <= sum(ex) / len(ex) <= 0.32, ex)
PYEOF
[ $? -eq 0 ] || nfail=$((nfail + 1))
# --- a job's window, judged at its slot ----------------------------------------------------------------------------
reset_ledger
windowed='{ name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; per_minute = 4; }'
host hA "$windowed"
for i in 1 2 3; do
  drop hA "w$i.json" "{\"id\": \"w$i\", \"client\": \"acme\", \"to\": \"w$i@example.org\", \"subject\": \"Hi\", \"text\": \"Hi\", \"window\": {\"hours\": \"09:00-09:01\"}}"
done
# slots 15 s apart from 09:00:30: 09:00:30, 09:00:45, then 09:01:00, outside the window (its end is exclusive)
OUTREACH_NOW=2027-03-01T09:00:30Z "$OR" -c "$T/hA/conf" run >/dev/null 2>&1
eq "a window 09:00-09:01 and slots 15 s apart from 09:00:30: two sent inside it, the third waits for tomorrow's 09:00" \
  "$(pgsql "SELECT count(*) FILTER (WHERE state = 'sent' AND slot_at < extract(epoch FROM timestamptz '2027-03-01 09:01:00+00')), count(*) FILTER (WHERE state = 'waiting' AND next_due = extract(epoch FROM timestamptz '2027-03-02 09:00:00+00')) FROM jobs")" "2|1"

# --- hosts killed after a claim and after an intent: recovered by the other -------------------------------------------------
reset_ledger
host hA "$senders" "" 31; host hB "$senders" "" 31
drop hA k1.json "$(job k1 acme)"
OUTREACH_FAULT=after-claim "$OR" -c "$T/hA/conf" run >/dev/null 2>&1; rc1=$?
drop hA k2.json "$(job k2 acme)"
OUTREACH_FAULT=after-intent "$OR" -c "$T/hA/conf" run >/dev/null 2>&1; rc2=$?
eq "hA killed after a claim, then after an intent" "$rc1 $rc2" "137 137"
eq "... leaving one job claimed and one sending" \
  "$(pgsql "SELECT count(*) FILTER (WHERE state = 'claimed'), count(*) FILTER (WHERE state = 'sending') FROM jobs")" "1|1"
"$OR" -c "$T/hB/conf" run >/dev/null 2>&1
eq "hB's run before the leases lapse takes neither" \
  "$(pgsql "SELECT count(*) FILTER (WHERE state = 'claimed'), count(*) FILTER (WHERE state = 'sending') FROM jobs")" "1|1"
# wait on the condition itself: both of hA's runs' leases lapsed by the database's clock
i=0
until [ "$(pgsql "SELECT count(*) FROM runs WHERE state = 'running' AND lease_until > clock_timestamp()")" = 0 ]; do
  i=$((i + 1)); [ $i -gt 900 ] && break; sleep 0.1
done
"$OR" -c "$T/hB/conf" run >"$T/recover.log" 2>&1; rc=$?
eq "hB's next run exits 0 and recovers both runs" "$rc:$(pgsql "SELECT count(*) FROM runs WHERE state = 'recovered' AND host = 'hA'")" "0:2"
k1=$(pgsql "SELECT id FROM jobs WHERE producer_id LIKE '%k1'"); k2=$(pgsql "SELECT id FROM jobs WHERE producer_id LIKE '%k2'")
eq "the claimed job is sent, by hB, once" "$(pgsql "SELECT state FROM jobs WHERE id = '$k1'"):$(ls "$T/hB/outbox" | grep -c "^$k1.eml$"):$(ls "$T/hA/outbox" 2>/dev/null | grep -c "^$k1.eml$")" "sent:1:0"
eq "the job whose intent was committed is held, sent by nobody" "$(pgsql "SELECT state FROM jobs WHERE id = '$k2'"):$(ls "$T/hA/outbox" "$T/hB/outbox" 2>/dev/null | grep -c "^$k2.eml$")" "held:0"
eq "the day counters: the send and the held job's kept unit" "$(pgsql "SELECT sum(n) FROM day_counts WHERE kind = 's'")" 2
out=$("$OR" -c "$T/hB/conf" status --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["spool"]["held"], [a["name"] for a in d["alerts"]])')
eq "status on hB counts the held job, and the tick that held it raised jobs_held" "$out" "1 ['jobs_held']"
"$OR" -c "$T/hB/conf" requeue held; rc=$?
eq "requeue held on hB (the operator found it did not go): waiting again" "$rc:$(pgsql "SELECT state FROM jobs WHERE id = '$k2'")" "0:waiting"
"$OR" -c "$T/hA/conf" run >/dev/null 2>&1
eq "... and sent by hA's next tick, once" "$(pgsql "SELECT state FROM jobs WHERE id = '$k2'"):$(ls "$T/hA/outbox" "$T/hB/outbox" 2>/dev/null | grep -c "^$k2.eml$")" "sent:1"
eq "... which cleared jobs_held" "$(pgsql "SELECT count(*) FROM alerts")" 0

# --- an unsubscribe across hosts ------------------------------------------------------------------------------------------
reset_ledger
host hA "$senders"; host hB "$senders"
drop hA u1.json "$(job u1 acme lead@example.net)"
"$OR" -c "$T/hA/conf" run >/dev/null 2>&1
u1=$(pgsql "SELECT id FROM jobs WHERE producer_id LIKE '%u1'")
token=$(sed -n 's/^List-Unsubscribe:.*?t=\([A-Za-z0-9_.-]*\)>.*/\1/p' "$T/hA/outbox/$u1.eml" | head -1)
if [ -n "$token" ]; then ok "the message hA sent carries an unsubscribe token"; else notok "the message hA sent carries an unsubscribe token" "$(head -20 "$T/hA/outbox/$u1.eml")"; fi
printf '%s\n' "$token" >"$T/hB/spool/unsub/click1.req"
drop hB u2.json '{"id": "u2", "client": "acme", "to": "lead@example.net", "subject": "Again", "text": "Hi again"}'
"$OR" -c "$T/hB/conf" run >/dev/null 2>&1
eq "hB took the click in: the address suppressed for acme in the shared ledger" \
  "$(pgsql "SELECT address, client, reason FROM suppressions")" "lead@example.net|acme|unsubscribed"
eq "... and the later job to it is suppressed, not sent" \
  "$(pgsql "SELECT state FROM jobs WHERE producer_id LIKE '%u2'"):$(ls "$T/hB/outbox" 2>/dev/null | grep -c eml)" "suppressed:0"
# the CGI: the suppression written at the click, before any run; with the database out of reach, left in unsub/
pgsql "TRUNCATE suppressions"
sed "s/port=$pg_port/port=1/" "$T/hA/conf" >"$T/hA/conf-nodb"
out=$(REQUEST_METHOD=POST QUERY_STRING="t=$token" "$OR" -c "$T/hA/conf-nodb" cgi 2>/dev/null)
eq "the CGI with the database out of reach: the page says unsubscribed, the request waits in unsub/" \
  "$(printf '%s' "$out" | grep -c '^Status: 200 OK'):$(ls "$T/hA/spool/unsub" | grep -c '\.req$'):$(pgsql "SELECT count(*) FROM suppressions")" "1:1:0"
rm -f "$T"/hA/spool/unsub/*.req
out=$(REQUEST_METHOD=POST QUERY_STRING="t=$token" "$OR" -c "$T/hA/conf" cgi 2>&1)
eq "the CGI with the database up: unsubscribed in the shared ledger at the click, no request left for a run" \
  "$(printf '%s' "$out" | grep -c '^Status: 200 OK'):$(pgsql "SELECT address, client, reason FROM suppressions"):$(ls "$T/hA/spool/unsub" | grep -c '\.req$')" \
  "1:lead@example.net|acme|unsubscribed:0"
pgsql "TRUNCATE suppressions"
"$OR" -c "$T/hB/conf" unsubscribe "$token" >/dev/null; rc=$?
eq "outreach unsubscribe TOKEN on hB writes it to the shared ledger" "$rc:$(pgsql "SELECT count(*) FROM suppressions")" "0:1"

# --- an account's circuit breaker across the cluster -------------------------------------------------------
faulty_peer "$T/peer.log" 5xx || notok "the 5xx peer starts" "$(cat "$T/peer.log.err")"
pids="$pids $PEERPID"
printf 'SG.test-key\n' >"$T/sg.key"; chmod 600 "$T/sg.key"
mkdir -p "$T/hC"
cat >"$T/hC/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
providers = ( { name = "sg"; type = "sendgrid"; endpoint = "http://127.0.0.1:$PORT"; allow_plaintext = true;
                api_key_file = "../sg.key"; timeout = 2; feed = false; circuit_failures = 3; circuit_cooldown = 120; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "sg"; daily_limit = 1000; } );
store = { type = "postgresql"; conninfo = "$pg_ci"; password_file = "../pw"; host_name = "hC"; lease = 60; };
EOF
"$OR" -c "$T/hC/conf" init --key "$T/key" || notok "hC: init"
reset_ledger
for i in 1 2 3 4 5; do drop hC "cb$i.json" "$(job "cb$i" acme)"; done
reqs() { grep -c '"event": "request"' "$T/peer.log"; }
OUTREACH_NOW=2027-05-03T10:00:00Z "$OR" -c "$T/hC/conf" run >/dev/null 2>&1
eq "500, 503, 503: three requests, then the circuit opens (account_down:sg) and the other two wait" \
  "$(reqs):$(pgsql "SELECT string_agg(name, ' ') FROM alerts WHERE name LIKE 'account%'"):$(pgsql "SELECT count(*) FROM jobs WHERE state = 'waiting'")" "3:account_down:sg:5"
eq "... the failure that opened it burned no attempt (not the job's fault)" \
  "$(pgsql "SELECT string_agg(attempts::text, ' ' ORDER BY attempts) FROM jobs")" "0 0 0 1 1"
out=$("$OR" -c "$T/hC/conf" status --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["accounts"][0]["circuit_open"], d["senders"][0]["account"])')
eq "... status: the circuit open, the sender with no usable account" "$out" "True None"
OUTREACH_NOW=2027-05-03T10:01:00Z "$OR" -c "$T/hC/conf" run >/dev/null 2>&1
eq "a tick inside the cooldown sends nothing (no host probes early)" "$(reqs)" 3
eq "... senders_blocked names the sender and its account's open circuit, as SQLite says it" \
  "$(pgsql "SELECT regexp_replace(detail, '^[0-9]+ ', 'N ') FROM alerts WHERE name = 'senders_blocked'")" \
  "N jobs are due and no sender can send: s1: account sg down (circuit open) until 2027-05-03T10:02:00Z"
OUTREACH_NOW=2027-05-03T10:02:30Z "$OR" -c "$T/hC/conf" run >/dev/null 2>&1
eq "after the cooldown: the probe goes (202), the circuit closes, all five are sent" \
  "$(reqs):$(pgsql "SELECT count(*) FROM jobs WHERE state = 'sent'"):$(pgsql "SELECT count(*) FROM alerts WHERE name LIKE 'account%'")" "8:5:0"
eq "... the account's row: no failures, the circuit closed" "$(pgsql "SELECT failures, open_until FROM accounts WHERE name = 'sg'")" "0|0"
eq "... and senders_blocked cleared" "$(pgsql "SELECT count(*) FROM alerts WHERE name = 'senders_blocked'")" 0

# --- a sender's fallback account: its primary's circuit open, its jobs go through the other, on any host -----------------
faulty_peer "$T/peer2.log" 5xx || notok "the second 5xx peer starts" "$(cat "$T/peer2.log.err")"
pids="$pids $PEERPID"
for h in hD hE; do
  mkdir -p "$T/$h"
  cat >"$T/$h/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
providers = ( { name = "sg"; type = "sendgrid"; endpoint = "http://127.0.0.1:$PORT"; allow_plaintext = true;
                api_key_file = "../sg.key"; timeout = 2; feed = false; circuit_failures = 3; circuit_cooldown = 600; },
              { name = "spare"; type = "file"; dir = "outbox"; rate = 4; timeout = 5; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "sg"; fallback = "spare"; daily_limit = 1000; } );
store = { type = "postgresql"; conninfo = "$pg_ci"; password_file = "../pw"; host_name = "$h"; lease = 60; };
EOF
  "$OR" -c "$T/$h/conf" init --key "$T/key" >/dev/null || notok "$h: init"
done
reset_ledger
pgsql "TRUNCATE accounts, alerts" >/dev/null
for i in 1 2 3 4 5 6; do drop hD "fb$i.json" "$(job "fb$i" acme)"; done
OUTREACH_NOW=2027-05-04T10:00:00Z "$OR" -c "$T/hD/conf" run >/dev/null 2>&1
OUTREACH_NOW=2027-05-04T10:00:00Z "$OR" -c "$T/hE/conf" run >/dev/null 2>&1
eq "the primary (sg) failed three times and its circuit opened; the other three went through the fallback (spare) at once" \
  "$(grep -c '"event": "request"' "$T/peer2.log"):$(pgsql "SELECT count(*) FROM jobs WHERE state = 'sent' AND account = 'spare'"):$(pgsql "SELECT string_agg(name, ' ') FROM alerts WHERE name LIKE 'account%'")" \
  "3:3:account_down:sg"
out=$("$OR" -c "$T/hE/conf" status --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["senders"][0]["account"])')
eq "... status on the other host: the sender on its fallback account" "$out" "spare"
OUTREACH_NOW=2027-05-04T10:05:00Z "$OR" -c "$T/hE/conf" run >/dev/null 2>&1
eq "... the two the primary failed are retried through the fallback by the other host: all six sent, once each, none through the open circuit" \
  "$(pgsql "SELECT count(*) FROM jobs WHERE state = 'sent'"):$(( $(ls "$T/hD/outbox" "$T/hE/outbox" 2>/dev/null | grep -c eml) )):$(grep -c '"event": "request"' "$T/peer2.log")" "6:6:3"
eq "... no senders_blocked while the fallback can send" "$(pgsql "SELECT count(*) FROM alerts WHERE name = 'senders_blocked'")" 0
eq "... the fallback's rate (4/s) spaces the sender's slots" \
  "$(pgsql "SELECT count(*) FROM (SELECT slot_at - lag(slot_at) OVER (ORDER BY slot_at) AS d FROM jobs WHERE account = 'spare' AND slot_at < 1809424800 + 60) x WHERE d < 0.25")" 0

# --- what the config refuses on this store --------------------------------------------------------------------------------
for extra in 'mailboxes = ( { name = "m"; url = "imaps://127.0.0.1/"; username = "u"; password_file = "../pw"; } );'; do
  cat >"$T/hA/conf2" <<EOF
spool = "spool";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; } );
$extra
store = { type = "postgresql"; conninfo = "$pg_ci"; };
EOF
  out=$("$OR" -c "$T/hA/conf2" check-config 2>&1); rc=$?
  what=${extra%% *}
  if [ $rc -eq 78 ] && printf '%s' "$out" | grep -q "does not take $what yet"; then ok "refused on this store: $what"
  else notok "refused on this store: $what" "rc=$rc $out"; fi
done
exit $nfail
