#!/bin/sh
# tests/e2e/pg-feeds.sh — provider feeds and domain health on the shared PostgreSQL
# ledger: two hosts (two configs and spools, one private PostgreSQL 15 on loopback),
# one SES account served by tests/peers/sqs.py (SendEmail for the sends, SQS for the
# notifications, the account suppression list), notifications built by
# tests/peers/sesnote.py:
#   both hosts send a backlog (sender a for client acme, b for beta); a bounce, a
#   complaint and a delivery pulled by one host are stored once, each joined to its
#   job, the bounced and complained addresses suppressed for every host, the
#   delivered one not, and the account suppression list's entries too;
#   a held job (a host killed after its intent, recovered by the other) is settled
#   as sent by its delivery event, counted once in outreach_sent_total;
#   domain health on the shared figures: three bounces of sender a's ten sends
#   disable it once for both hosts (status on either host gives the reason and the
#   rates, sender_disabled raised once), acme's next jobs wait while beta's go, and
#   a job to a bounced address is suppressed on the other host; sender enable
#   clears the alert;
#   the feed lease: while another run holds a live lease on the account, a pull
#   reads nothing (the peer's receive count stays); once that lease has lapsed (set
#   so in the database: pg-send.sh waits for a real lapse) the pull takes it;
#   a host killed between ReceiveMessage and DeleteMessage (the peer kills it)
#   deletes nothing: its lease keeps the other host off until it lapses, then the
#   messages come back and are stored once; replays change nothing;
#   a bounce whose suppression reason (200 bytes of its text) is cut inside a
#   UTF-8 character: a '?' there (PostgreSQL refuses bytes that are not UTF-8,
#   which would stop the feed at that event for good), and the feed goes on;
#   domain_checks.required against unbound on loopback: both hosts send only
#   through the domain that passes, the verdicts are kept a day for every host,
#   domain_check raised once.
# san: yes
. "$(dirname "$0")/../lib.sh"

PEERS=$TESTS/peers
NOW=1796029200            # 2026-11-30T09:00:00Z, a Monday
export OUTREACH_NOW=$NOW
SECRET='wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
QPATH=/123456789012/ses-feedback

pg_up
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
printf '%s\n' "$SECRET" >"$T/secret"; chmod 600 "$T/secret"
P_SQS=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SQSURL=http://127.0.0.1:$P_SQS
bg sqs python3 "$PEERS/sqs.py" "$P_SQS" "$T/sqs.log" --secret "$SECRET" --visibility 1 --queue-url "$SQSURL$QPATH"
wait_line sqs 'sqs fake listening' 10 || { notok "the SQS/SES fake is up" "$(cat "$T/sqs.out")"; finish; }
sqs_get() { curl -s --max-time 5 "$SQSURL/state" | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
enqueue() { for f in "$@"; do curl -s --max-time 5 -X POST --data-binary @"$f" "$SQSURL/enqueue" >/dev/null || notok "the fake took $f"; done; }
note() { python3 "$PEERS/sesnote.py" "$@" || notok "built notification $1"; }   # note OUT KIND FORM MSGID RCPT KEY TIME [JOB]

for h in hA hB; do
  mkdir -p "$T/$h"
  cat >"$T/$h/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
providers = ( { name = "ses"; type = "ses"; region = "us-east-1"; endpoint = "$SQSURL"; sqs_queue_url = "$SQSURL$QPATH";
  sqs_endpoint = "$SQSURL"; allow_plaintext = true; access_key_id = "AKIDEXAMPLE"; secret_file = "../secret";
  feed_interval = 60; timeout = 5; } );
senders = (
  { name = "a"; from = "Anna <anna@a-mail.example>"; provider = "ses"; daily_limit = 1000; clients = ["acme"]; },
  { name = "b"; from = "Boris <boris@b-mail.example>"; provider = "ses"; daily_limit = 1000; clients = ["beta"]; }
);
health = { window_days = 7; min_sent = 10; max_bounce_rate = 0.05; max_complaint_rate = 0.003; };
store = { type = "postgresql"; conninfo = "$pg_ci"; password_file = "../pw"; host_name = "$h"; lease = 40; };
EOF
  ph "$h" init --key "$T/key" >/dev/null || notok "$h: init"
done
drop() {   # drop HOST NAME JSON
  printf '%s\n' "$3" >"$T/$1/spool/tmp/$2" && mv "$T/$1/spool/tmp/$2" "$T/$1/spool/new/$2"
}
pjob() { printf '{"id": "%s", "client": "%s", "campaign": "%s", "to": "%s", "subject": "Hello", "text": "Hi"}' "$1" "$2" "$2-1" "$3"; }
at() { _o=$1; shift; OUTREACH_NOW=$((NOW + _o)) ph "$@"; }   # at SECONDS HOST ARGS
jid() { pgsql "SELECT id FROM jobs WHERE producer_id = '$1'"; }
pid_of() { pgsql "SELECT provider_id FROM jobs WHERE producer_id = '$1'"; }
state() { pgsql "SELECT state FROM jobs WHERE producer_id = '$1'"; }
js() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# --- a backlog from both hosts; one job held (its host killed after the intent) --------------------------
drop hB held.json "$(pjob held beta held@beta-rcpt.example)"
OUTREACH_FAULT=after-intent "$OR" -c "$T/hB/conf" run >/dev/null 2>&1
eq "hB killed after its intent for one job" "$?" 137
pgsql "UPDATE runs SET lease_until = clock_timestamp() - interval '1 second' WHERE state = 'running'" >/dev/null
i=1
while [ $i -le 10 ]; do
  drop hA "a$i.json" "$(pjob a$i acme lead$i@acme-rcpt.example)"
  [ $i -le 6 ] && drop hB "b$i.json" "$(pjob b$i beta lead$i@beta-rcpt.example)"
  i=$((i + 1))
done
at 1 hA run >/dev/null 2>&1 & p1=$!
at 1 hB run >/dev/null 2>&1 & p2=$!
wait $p1 $p2
at 2 hA run >/dev/null 2>&1
HELD=held
eq "both hosts sent the backlog but the job in doubt: 16 sent, 1 held (SendEmail calls: 16)" \
  "$(pgsql "SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state = 'held') FROM jobs") $(sqs_get sends)" "16|1 16"
eq "outreach_sent_total before any event: 16" "$(pgsql "SELECT sum(n) FROM counters WHERE kind = 'sent'")" 16

# --- the notifications, pulled by one host ------------------------------------------------------------------
N=$T/n
note "$N-1.json" bounce sns "$(pid_of a1)" lead1@acme-rcpt.example fb-1 $((NOW + 60))
note "$N-2.json" bounce raw "$(pid_of a2)" LEAD2@ACME-RCPT.EXAMPLE fb-2 $((NOW + 61))
note "$N-3.json" bounce sns-event "$(pid_of a3)" lead3@acme-rcpt.example fb-3 $((NOW + 62))
note "$N-4.json" complaint sns "$(pid_of a4)" lead4@acme-rcpt.example fc-4 $((NOW + 63))
note "$N-5.json" delivery raw "$(pid_of b1)" lead1@beta-rcpt.example d-b1 $((NOW + 64))
# the held job was never given to SES by its dead host's run... as far as the ledger knows:
# its delivery event (the `job` tag) proves it was
note "$N-6.json" delivery raw-event unknown-to-us "$(pgsql "SELECT rcpt FROM jobs WHERE producer_id = '$HELD'")" d-held \
  $((NOW + 65)) "$(jid "$HELD")"
enqueue "$N-1.json" "$N-2.json" "$N-3.json" "$N-4.json" "$N-5.json" "$N-6.json"

# the lease: another run's live lease on the account keeps this pull off it
pgsql "UPDATE feed_leases SET owner = 'hB:1', lease_until = clock_timestamp() + interval '300 seconds' WHERE account = 'ses'" >/dev/null
r0=$(sqs_get receives)
at 120 hA pull >"$T/pull0.out" 2>&1
eq "a pull while another run holds the account's lease reads nothing (receives stay $r0, notification events 0)" \
  "$(sqs_get receives) $(pgsql "SELECT count(*) FROM events WHERE event_key NOT LIKE 'ses:sup:%'")" "$r0 0"
pgsql "UPDATE feed_leases SET lease_until = clock_timestamp() - interval '1 second' WHERE account = 'ses'" >/dev/null
at 120 hA pull >"$T/pull1.out" 2>&1
eq "once that lease has lapsed, hA's pull takes it and says the feed is ok" "$?:$(cat "$T/pull1.out")" "0:feed ses: ok"
eq "... the lease is hA's, let go" \
  "$(pgsql "SELECT owner LIKE 'hA:%', lease_until <= clock_timestamp() FROM feed_leases WHERE account = 'ses'")" "t|t"
eq "six notification events, each stored once" "$(pgsql "SELECT count(*) FROM events WHERE event_key NOT LIKE 'ses:sup:%'")" 6
for p in a1 a2 a3 a4 b1 "$HELD"; do
  eq "the event about $p is joined to its job (client, campaign, sender)" \
    "$(pgsql "SELECT count(*) FROM events e JOIN jobs j ON j.id = e.job_id WHERE j.producer_id = '$p' AND e.client = j.client AND e.campaign = j.campaign AND e.sender = j.sender")" 1
done
eq "the kinds: 3 bounced, 1 complained, 2 delivered" \
  "$(pgsql "SELECT string_agg(type || '=' || n, ' ' ORDER BY type) FROM (SELECT type, count(*) n FROM events WHERE event_key NOT LIKE 'ses:sup:%' GROUP BY type) x")" \
  "bounced=3 complained=1 delivered=2"
ph hB suppress list >"$T/supp.csv"
for a in lead1@acme-rcpt.example lead2@acme-rcpt.example lead3@acme-rcpt.example lead4@acme-rcpt.example \
         old-bounce@example.net old-complaint@example.net; do
  check "hB lists $a (bounced, complained, or on the account suppression list) suppressed for every client" grep -q "^$a,," "$T/supp.csv"
done
check "the delivered lead1@beta-rcpt.example is not suppressed" sh -c "! grep -q '^lead1@beta-rcpt.example,' '$T/supp.csv'"
eq "the held job is settled as sent by its delivery event" "$(state "$HELD")" sent
eq "... and counted once: outreach_sent_total 17, the sent jobs 17" \
  "$(pgsql "SELECT (SELECT sum(n) FROM counters WHERE kind = 'sent'), (SELECT count(*) FROM jobs WHERE state = 'sent')")" "17|17"

# --- domain health, judged once for both hosts -----------------------------------------------------------------------------
ph hB senders >"$T/senders.txt" 2>&1
sed 's/^/# senders: /' "$T/senders.txt"
check "senders on hB: a disabled" grep -Eq '^a +a-mail\.example +ses +NO ' "$T/senders.txt"
check "... with the bounce rate and its figures (3 of 10)" grep -Eq '^ +disabled: auto-disabled: bounce rate 30\.00% \(3 of 10 sends\)' "$T/senders.txt"
check "... a's bounce rate 30.00% and complaint rate 10.000%" grep -Eq '^a +.* 30\.00% +10\.000%$' "$T/senders.txt"
check "... b enabled" grep -Eq '^b +b-mail\.example +ses +yes ' "$T/senders.txt"
ph hA status --json >"$T/st.json"
eq "status --json on hA: a not enabled, bounce_rate 0.3, complaint_rate 0.1" \
  "$(js '[(s["enabled"], s["bounce_rate"], s["complaint_rate"]) for s in d["senders"] if s["name"] == "a"]' <"$T/st.json")" \
  "[(False, 0.3, 0.1)]"
eq "... the campaigns' events: acme bounced 3, complained 1; beta delivered 2" \
  "$(js '[(c["client"], c["bounced"], c["complained"], c["delivered"]) for c in d["campaigns"]]' <"$T/st.json")" \
  "[('acme', 3, 1, 0), ('beta', 0, 0, 2)]"
eq "sender_disabled:a-mail.example raised once" \
  "$(pgsql "SELECT count(*) FROM alert_log WHERE name = 'sender_disabled:a-mail.example' AND event = 'raised'")" 1
drop hB a11.json "$(pjob a11 acme lead11@acme-rcpt.example)"
drop hB b7.json "$(pjob b7 beta lead7@beta-rcpt.example)"
drop hB b8.json "$(pjob b8 beta lead3@acme-rcpt.example)"
at 180 hB run >/dev/null 2>&1
eq "hB's next tick: acme's job waits (its only sender is disabled), beta's goes, the bounced address is suppressed" \
  "$(state a11) $(state b7) $(state b8)" "waiting sent suppressed"
at 181 hA run >/dev/null 2>&1
eq "... and hA's tick does not send acme's job either" "$(state a11)" waiting
eq "no host disabled it twice: one raise in the alert log" \
  "$(pgsql "SELECT count(*) FROM alert_log WHERE name LIKE 'sender_disabled:%'")" 1
at 200 hA sender enable a >/dev/null
eq "sender enable a on hA clears the alert" \
  "$(pgsql "SELECT (SELECT count(*) FROM alerts WHERE name LIKE 'sender_disabled:%'), (SELECT count(*) FROM alert_log WHERE name = 'sender_disabled:a-mail.example' AND event = 'cleared')")" "0|1"
at 300 hB run >/dev/null 2>&1
eq "... and acme's job goes (a's health span restarts at the enable)" "$(state a11)" sent

# --- a host killed between receive and delete: nothing deleted, stored once after its lease ---------------------------
note "$N-7.json" delivery sns "$(pid_of b2)" lead2@beta-rcpt.example d-b2 $((NOW + 300))
note "$N-8.json" softbounce raw "$(pid_of b3)" lead3@beta-rcpt.example fs-b3 $((NOW + 301))
enqueue "$N-7.json" "$N-8.json"
d0=$(sqs_get deleted)
K7="event_key LIKE 'ses:d:$(pid_of b2):%' OR event_key LIKE 'ses:b:fs-b3:%'"
curl -s -X POST --data "{\"kill_on_receive\": \"$T/pull.pid\"}" "$SQSURL/control" >/dev/null
OUTREACH_NOW=$((NOW + 360)) "$OR" -c "$T/hA/conf" pull >/dev/null 2>&1 & echo $! >"$T/pull.pid"; kp=$!
{ wait $kp; } 2>/dev/null
eq "hA killed by the peer after ReceiveMessage answered" "$?" 137
eq "... nothing deleted, nothing stored" \
  "$(sqs_get deleted) $(pgsql "SELECT count(*) FROM events WHERE $K7")" "$d0 0"
at 361 hB pull >/dev/null 2>&1
eq "hB's pull while the dead run's lease holds: nothing more received from the queue" \
  "$(pgsql "SELECT count(*) FROM events WHERE $K7")" 0
pgsql "UPDATE feed_leases SET lease_until = clock_timestamp() - interval '1 second' WHERE account = 'ses'" >/dev/null
i=0
until [ "$(sqs_get visible)" = 2 ] || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done   # the visibility timeout (1 s)
at 362 hB pull >/dev/null 2>&1
eq "once it lapsed, hB's pull stores both, once, and deletes them" \
  "$(pgsql "SELECT count(*) FROM events WHERE $K7") $(sqs_get visible) $(sqs_get inflight)" "2 0 0"
check "... a soft bounce suppresses nothing (one of soft_bounce_limit)" sh -c "! '$OR' -c '$T/hB/conf' suppress list | grep -q '^lead3@beta-rcpt.example,'"

# --- replays and hostile text -----------------------------------------------------------------------------------------------
e0=$(pgsql "SELECT count(*) FROM events"); s0=$(pgsql "SELECT count(*) FROM suppressions")
enqueue "$N-1.json" "$N-4.json" "$N-5.json" "$N-7.json"
at 420 hA pull >/dev/null 2>&1
eq "replayed notifications pulled by the other host: no new event, no new suppression, all deleted" \
  "$(pgsql "SELECT count(*) FROM events") $(pgsql "SELECT count(*) FROM suppressions") $(sqs_get visible)" "$e0 $s0 0"
note "$N-9.json" bounce raw "$(pid_of b4)" lead4@beta-rcpt.example fb-b4 $((NOW + 480))
python3 - "$N-9.json" <<'PYEOF'
import json, sys
n = json.load(open(sys.argv[1]))
# valid UTF-8, but the suppression's reason keeps 200 bytes of it: the cut falls inside an "é"
n["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = "x" + "\u00e9" * 150
open(sys.argv[1], "w").write(json.dumps(n))
PYEOF
enqueue "$N-9.json"
at 480 hB pull >"$T/pull9.out" 2>&1
eq "a bounce whose reason is cut inside a UTF-8 character: the pull goes on and says ok" "$?:$(cat "$T/pull9.out")" "0:feed ses: ok"
eq "... the event stored whole (151 characters), its address suppressed" \
  "$(pgsql "SELECT length(detail) FROM events WHERE event_key LIKE 'ses:b:fb-b4:%'") $(pgsql "SELECT count(*) FROM suppressions WHERE address = 'lead4@beta-rcpt.example'")" "151 1"
eq "... the reason ends in '?' where the cut character was" \
  "$(pgsql "SELECT right(reason, 2) FROM suppressions WHERE address = 'lead4@beta-rcpt.example'")" "é?"
# --- domain_checks.required on the shared ledger: the DNS gate's verdict kept for every host --------------------------
UNBOUND=${UNBOUND:-/usr/sbin/unbound}
if [ ! -x "$UNBOUND" ]; then notok "unbound installed at $UNBOUND"; finish; fi
for try in 1 2 3 4 5; do
  UPORT=$(free_port)
  cat >"$T/unbound.conf" <<EOF
server:
  interface: 127.0.0.1
  port: $UPORT
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$T"
  pidfile: "$T/unbound.pid"
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  use-syslog: no
  logfile: "$T/unbound.log"
  num-threads: 1
  module-config: "iterator"
  local-zone: "test." static
  local-data: "ready.test. A 127.0.0.1"
  local-data: 'good2.test. TXT "v=spf1 ip4:192.0.2.0/24 -all"'
  local-data: 'twospf.test. TXT "v=spf1 ip4:192.0.2.1 -all"'
  local-data: 'twospf.test. TXT "v=spf1 ip4:192.0.2.2 -all"'
EOF
  "$UNBOUND" -d -c "$T/unbound.conf" >"$T/unbound.out" 2>&1 & UB=$!
  python3 "$PEERS/dns_ready.py" "$UPORT" ready.test "$UB" && break
  kill "$UB" 2>/dev/null; UB=
done
[ -n "$UB" ] || { notok "unbound answers on 127.0.0.1:$UPORT" "$(tail -5 "$T/unbound.out")"; finish; }
pids="$pids $UB"
for h in hC hD; do
  mkdir -p "$T/$h"
  cat >"$T/$h/conf" <<EOF
spool = "spool";
timezone = "UTC";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; timeout = 5; } );
senders = (
  { name = "good"; from = "Good <g@good2.test>"; provider = "dry"; daily_limit = 100; },
  { name = "broken"; from = "Broken <b@twospf.test>"; provider = "dry"; daily_limit = 100; }
);
dns_server = "127.0.0.1:$UPORT";
domain_checks = { required = ["spf"]; };
store = { type = "postgresql"; conninfo = "$pg_ci"; password_file = "../pw"; host_name = "$h"; lease = 40; };
EOF
  ph "$h" init --key "$T/key" >/dev/null || notok "$h: init"
done
pgsql "TRUNCATE jobs, alerts, alert_log" >/dev/null
for i in 1 2 3 4 5 6; do drop hC "gc$i.json" "$(pjob gc$i acme gc$i@rcpt.example)"; drop hD "gd$i.json" "$(pjob gd$i acme gd$i@rcpt.example)"; done
at 600 hC run >/dev/null 2>&1 & p1=$!
at 600 hD run >/dev/null 2>&1 & p2=$!
wait $p1 $p2
at 660 hC run >/dev/null 2>&1
eq "the gate on both hosts: all 12 sent, every one through 'good', none through the domain that fails spf" \
  "$(pgsql "SELECT count(*), string_agg(DISTINCT sender, ',') FROM jobs WHERE state = 'sent'")" "12|good"
eq "... the verdicts kept for the day: good2.test ok, twospf.test not, with why" \
  "$(pgsql "SELECT string_agg(domain || '=' || ok || ':' || (reason LIKE 'spf:%'), ' ' ORDER BY domain) FROM domain_checks")" \
  "good2.test=true:false twospf.test=false:true"
eq "... domain_check:twospf.test raised once for both hosts, none for the good domain" \
  "$(pgsql "SELECT string_agg(name || ' ' || event, ';') FROM alert_log WHERE name LIKE 'domain_check:%'")" "domain_check:twospf.test raised"
ph hD senders >"$T/senders-gate.txt" 2>&1
check "senders on the other host: broken held out by its domain check" grep -q 'domain check failed: spf' "$T/senders-gate.txt"
checked=$(pgsql "SELECT string_agg(at::text, ',' ORDER BY domain) FROM domain_checks")
at 720 hD run >/dev/null 2>&1
eq "... not checked again within the day by either host" "$(pgsql "SELECT string_agg(at::text, ',' ORDER BY domain) FROM domain_checks")" "$checked"
finish
