#!/bin/sh
# tests/e2e/pg-ops.sh — the operator commands on the shared PostgreSQL ledger,
# each given on the host that did not do the work (two hosts, one private
# PostgreSQL 15 on loopback, an exec provider that records each recipient and
# refuses, permanently, the ones listed in $T/refuse), and the same commands on
# a SQLite spool beside them, so that both stores answer alike:
#   suppress add on one host stops the other host's send to that address;
#   suppress list, export and import print what SQLite prints (created_at
#   aside); an import with a bad line adds nothing, --skip-invalid the rest;
#   remove lifts one;
#   requeue failed after the refusal is lifted: waiting again with its
#   attempts started over, then sent once by the other host; show --json has
#   SQLite's keys, in SQLite's order, and both attempts in its history; show
#   names an unknown id with 65; render JOB_ID on the other host builds the
#   message from the body in the ledger;
#   requeue bad only on the host whose bad/ holds the file: elsewhere "no bad
#   job"; there, the fixed file back in new/, ingested anew and sent;
#   cancel from one host fails a campaign's waiting jobs as cancelled, the
#   other host's tick sends only the rest, and outreach_failed_total counts them;
#   pause on one host stops the other host's claims of that scope (status and
#   outreach.prom list it as SQLite does), resume lets them go; a paused
#   sender leaves its jobs due again at the next tick, not tomorrow;
#   sender disable on one host keeps the other's claims off that sender (status
#   gives the reason), enable lets them go again and restarts its warm-up;
#   plan on one host forecasts what SQLite's plan forecasts for the same jobs;
#   backup says to use pg_dump (78);
#   the job alerts on the shared ledger: error_rate raised by failed attempts
#   and cleared an hour on, backlog_old by a due job waiting past backlog_age;
#   retention: two hosts ticking past retention_days retire the sent jobs with
#   their attempts and the old runs (failed rows stay), outreach_sent_total
#   does not go back, and no host does it again within the hour.
# san: yes
. "$(dirname "$0")/../lib.sh"

pg_up
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
cat >"$T/send.sh" <<EOF
#!/bin/sh
to=\$(sed -n 's/^To: .*<\\(.*\\)>.*/\\1/p; s/^To: \\([^<]*@[^ ]*\\)\$/\\1/p' | tr -d '\\r' | head -1)
if [ -f "$T/refuse" ] && grep -qxF "\$to" "$T/refuse"; then echo "550 no such user" >&2; exit 1; fi
echo "\$to" >>"$T/got"
echo "id-\$\$"
EOF
chmod 755 "$T/send.sh"
common='timezone = "UTC";
providers = ( { name = "x"; type = "exec"; argv = ["'"$T"'/send.sh"]; timeout = 5; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "x"; daily_limit = 1000; } );'
for h in hA hB; do
  mkdir -p "$T/$h"
  printf 'spool = "spool";\nreport_dir = "reports";\n%s\nstore = { type = "postgresql"; conninfo = "%s"; password_file = "../pw"; host_name = "%s"; lease = 60; };\n' \
    "$common" "$pg_ci" "$h" >"$T/$h/conf"
  ph "$h" init --key "$T/key" || notok "$h: init"
done
mkdir -p "$T/lite"
printf 'spool = "spool";\nreport_dir = "reports";\n%s\n' "$common" >"$T/lite/conf"
orc lite init || notok "the SQLite spool: init"
drop() {   # drop HOST NAME JSON
  printf '%s\n' "$3" >"$T/$1/spool/tmp/$2" && mv "$T/$1/spool/tmp/$2" "$T/$1/spool/new/$2"
}
pjob() {   # pjob ID TO [CAMPAIGN]
  printf '{"id": "%s", "client": "acme", "campaign": "%s", "to": "%s", "subject": "Hello", "text": "Hi"}' "$1" "${3:-main}" "$2"
}
state() { pgsql "SELECT state FROM jobs WHERE producer_id = '$1'"; }
js() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
cut4() { cut -d, -f1-4; }   # suppress list/export rows without created_at

# --- suppress, on both stores ------------------------------------------------------------------
for s in hB lite; do
  "$OR" -c "$T/$s/conf" suppress add Lead.One@Example.ORG --client acme --reason "asked to stop" || notok "$s: suppress add"
  "$OR" -c "$T/$s/conf" suppress add everyone@example.org || notok "$s: suppress add (all clients)"
  "$OR" -c "$T/$s/conf" suppress add lead@bücher.example --client acme || notok "$s: suppress add (an IDN domain)"
done
eq "suppress list on hA shows what hB added, as SQLite lists it (created_at aside)" \
  "$(ph hA suppress list | cut4)" "$(orc lite suppress list | cut4)"
ph hA suppress list | grep -q ',acme,"asked to stop",operator,20[0-9-]*T' &&
  ok "... with its reason, its source and its time" || notok "... with its reason, its source and its time" "$(ph hA suppress list)"
drop hA s1.json "$(pjob s1 lead.one@example.org)"
drop hA s2.json "$(pjob s2 lead@bücher.example)"
ph hA run >/dev/null 2>&1
eq "hA's tick does not send to the addresses hB suppressed (an IDN domain's by its A-label)" \
  "$(cat "$T/got" 2>/dev/null | wc -l):$(state s1):$(state s2)" "0:suppressed:suppressed"
printf 'address,client,reason\nok1@example.org,acme,bounced elsewhere\nnot an address,acme,x\nok2@example.org,,\n' >"$T/imp.csv"
for s in hA lite; do
  "$OR" -c "$T/$s/conf" suppress import "$T/imp.csv" >"$T/$s.imp1" 2>&1; echo "rc=$?" >>"$T/$s.imp1"
  "$OR" -c "$T/$s/conf" suppress import "$T/imp.csv" --skip-invalid >"$T/$s.imp2" 2>&1; echo "rc=$?" >>"$T/$s.imp2"
  "$OR" -c "$T/$s/conf" suppress import "$T/imp.csv" --skip-invalid >"$T/$s.imp3" 2>&1; echo "rc=$?" >>"$T/$s.imp3"
done
eq "an import with a bad line: nothing added, the same words and exit as SQLite" "$(cat "$T/hA.imp1")" "$(cat "$T/lite.imp1")"
grep -q "rc=65" "$T/hA.imp1" || notok "... exit 65" "$(cat "$T/hA.imp1")"
eq "--skip-invalid adds the two good ones, then finds them there, as SQLite does" \
  "$(cat "$T/hA.imp2" "$T/hA.imp3")" "$(cat "$T/lite.imp2" "$T/lite.imp3")"
grep -q "^2 addresses added" "$T/hA.imp2" || notok "... 2 added" "$(cat "$T/hA.imp2")"
ph hB suppress export "$T/pg.csv" 2>/dev/null; orc lite suppress export "$T/lite.csv" 2>/dev/null
eq "suppress export from hB: SQLite's file (created_at aside), five addresses" \
  "$(cut4 <"$T/pg.csv"):$(($(wc -l <"$T/pg.csv") - 1))" "$(cut4 <"$T/lite.csv"):5"
ph hB suppress remove ok2@example.org; orc lite suppress remove ok2@example.org
eq "suppress remove lifts one, on both alike" "$(ph hA suppress list | cut4)" "$(orc lite suppress list | cut4)"
ph hA suppress list | grep -q '^ok2@' && notok "... ok2 is gone" "$(ph hA suppress list)"

# --- requeue failed, show -------------------------------------------------------------------------
echo f1@example.org >"$T/refuse"
drop hA f1.json "$(pjob f1 f1@example.org)"
ph hA run >/dev/null 2>&1
eq "a permanent refusal: the job failed after one attempt" \
  "$(state f1):$(pgsql "SELECT attempts FROM jobs WHERE producer_id = 'f1'")" "failed:1"
rm "$T/refuse"
ph hB requeue failed; rc=$?
eq "requeue failed on hB: waiting again, attempts started over" \
  "$rc:$(state f1):$(pgsql "SELECT attempts FROM jobs WHERE producer_id = 'f1'")" "0:waiting:0"
ph hB run >/dev/null 2>&1
eq "... then sent by hB, once" "$(state f1):$(grep -c '^f1@example.org$' "$T/got")" "sent:1"
id=$(pgsql "SELECT id FROM jobs WHERE producer_id = 'f1'")
ph hA show "$id" --json >"$T/show.json"; rc=$?
eq "show --json from hA: both attempts, oldest first" "$rc:$(js "[h['outcome'] for h in d['history']]" <"$T/show.json")" "0:['failed', 'sent']"
printf '{"client": "acme", "to": "l1@example.org", "subject": "Hello", "text": "Hi"}\n' >"$T/l.json"
lid=$(orc lite enqueue "$T/l.json"); orc lite run >/dev/null 2>&1
orc lite show "$lid" --json >"$T/lshow.json"
eq "... with SQLite's keys in SQLite's order, in the job and in its history" \
  "$(js "list(d) + list(d['history'][0])" <"$T/show.json")" "$(js "list(d) + list(d['history'][0])" <"$T/lshow.json")"
ph hA show "$id" | grep -q "^history:" && ok "show (text) lists the history" || notok "show (text) lists the history" "$(ph hA show "$id" 2>&1)"
out=$(ph hB render "$id" --part headers 2>&1); rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q '^To: <f1@example.org>' && printf '%s' "$out" | grep -q '^From: One <one@s1.example>'; then
  ok "render JOB_ID on hB: the message of a job hA took in, from the shared ledger"
else notok "render JOB_ID on hB: the message of a job hA took in, from the shared ledger" "rc=$rc $out"; fi
out=$(ph hA show 0123456789abcdef 2>&1); rc=$?
eq "show of an unknown id: 65, one line" "$rc:$out" "65:outreach: show: no job '0123456789abcdef'"

# --- requeue bad: on the host that holds the file ------------------------------------------------
drop hA b1.json '{"client": "acme", "to": "b1@example.org", "subject": "Hello"'
ph hA run >/dev/null 2>&1
bid=$(pgsql "SELECT id FROM jobs WHERE state = 'bad' AND host = 'hA'")
eq "a file that is not JSON: a bad row of hA, its file in hA's bad/" "$(ls "$T/hA/spool/bad" | grep -c "^$bid.json$")" 1
out=$(ph hB requeue bad "$bid" 2>&1); rc=$?
eq "requeue bad on hB, which does not hold the file: no bad job (65), the row left" \
  "$rc:$(printf '%s' "$out" | grep -c "no bad job '$bid'"):$(pgsql "SELECT state FROM jobs WHERE id = '$bid'")" "65:1:bad"
printf '%s\n' "$(pjob b1 b1@example.org)" >"$T/hA/spool/bad/$bid.json"   # the operator fixes it
ph hA requeue bad "$bid"; rc=$?
eq "requeue bad on hA: the file back in new/, the row requeued" \
  "$rc:$(ls "$T/hA/spool/new" | grep -c "^$bid.json$"):$(pgsql "SELECT state FROM jobs WHERE id = '$bid'")" "0:1:requeued"
ph hA run >/dev/null 2>&1
eq "... ingested anew and sent, once" "$(state b1):$(grep -c '^b1@example.org$' "$T/got")" "sent:1"

# --- cancel from the other host --------------------------------------------------------------------
later=', "not_before": "2030-01-01T09:00:00Z"'
for i in 1 2 3; do drop hA "c$i.json" "$(pjob "c$i" "c$i@example.org" spring | sed "s/}\$/$later}/")"; done
drop hA c4.json "$(pjob c4 c4@example.org fall | sed "s/}\$/$later}/")"
ph hA run >/dev/null 2>&1   # taken in, not due until 2030
eq "four jobs waiting for 2030" "$(pgsql "SELECT count(*) FROM jobs WHERE state = 'waiting'")" 4
out=$(ph hB cancel --campaign spring --reason "client paused"); rc=$?
eq "cancel --campaign spring on hB" "$rc:$out" "0:3 jobs cancelled"
eq "... its three jobs failed as cancelled, with the reason" \
  "$(pgsql "SELECT count(*) FROM jobs WHERE campaign = 'spring' AND state = 'failed' AND last_error LIKE 'cancelled: client paused at 20%'")" 3
OUTREACH_NOW=2030-01-01T10:00:00Z ph hA run >/dev/null 2>&1
eq "hA's tick in 2030 sends only the other campaign's job" \
  "$(grep -c '^c[0-9]@example.org$' "$T/got"):$(grep -c '^c4@example.org$' "$T/got")" "1:1"
eq "outreach.prom counts the three as failed for spring" \
  "$(grep '^outreach_failed_total{client="acme",campaign="spring"}' "$T/hA/reports/outreach.prom" | awk '{ print $2 }')" 3

# --- pause and resume from the other host ------------------------------------------------------------
: >"$T/got"
drop hA p1.json "$(pjob p1 p1@example.org held1)"; drop hA p2.json "$(pjob p2 p2@example.org held1)"
drop hA p3.json "$(pjob p3 p3@example.org other)"
for s in hB lite; do "$OR" -c "$T/$s/conf" pause --campaign held1 --reason "waiting for the client's go" || notok "$s: pause"; done
export OUTREACH_NOW=2031-04-01T10:00:00Z   # after the cancel's 2030 sends: the sender's last slot is behind
ph hA run >/dev/null 2>&1
eq "pause --campaign on hB: hA's tick sends only the other campaign's job, the paused ones wait" \
  "$(sort "$T/got" | tr '\n' ' '):$(state p1):$(state p2)" "p3@example.org :waiting:waiting"
ph hA status --json | js "[{k: v for k, v in p.items() if k != 'since'} for p in d['paused']]" >"$T/pg.paused"
orc lite status --json | js "[{k: v for k, v in p.items() if k != 'since'} for p in d['paused']]" >"$T/lite.paused"
eq "status --json lists the pause as SQLite does (since aside)" "$(cat "$T/pg.paused")" "$(cat "$T/lite.paused")"
grep -q '^outreach_paused{client="",campaign="held1",sender=""} 1$' "$T/hA/reports/outreach.prom" &&
  ok "outreach.prom has the paused scope" || notok "outreach.prom has the paused scope" "$(grep paused "$T/hA/reports/outreach.prom")"
ph hB resume --campaign held1; rc=$?
OUTREACH_NOW=2031-04-01T11:00:00Z ph hA run >/dev/null 2>&1   # an hour on: the sender's gap is behind
eq "resume on hB: hA's next tick sends them" "$rc:$(state p1):$(state p2):$(grep -c '^p[12]@' "$T/got")" "0:sent:sent:2"
out=$(ph hB resume --campaign held1 2>&1); rc=$?
eq "resume of a scope not paused: 65, one line" "$rc:$out" "65:outreach: resume: no such pause"
unset OUTREACH_NOW
ph hB pause --sender s1 || notok "pause --sender"
drop hA p4.json "$(pjob p4 p4@example.org)"
OUTREACH_NOW=2031-05-01T10:00:00Z ph hA run >/dev/null 2>&1
eq "pause --sender s1 (the only sender): the job waits, due again at the next tick, not tomorrow" \
  "$(state p4):$(pgsql "SELECT round(next_due - extract(epoch FROM timestamptz '2031-05-01 10:00:00+00')) FROM jobs WHERE producer_id = 'p4'")" "waiting:60"
eq "... and status shows s1 disabled: paused by the operator" \
  "$(ph hA status --json | js "[(s['name'], s['enabled'], s['disabled_reason']) for s in d['senders']]")" "[('s1', False, 'paused by the operator')]"
ph hB resume --sender s1
OUTREACH_NOW=2031-05-01T10:01:01Z ph hA run >/dev/null 2>&1
eq "... resumed: sent at the tick after" "$(state p4):$(grep -c '^p4@' "$T/got")" "sent:1"

# --- sender disable and enable from the other host -----------------------------------------------------------
ph hB sender disable s1 --reason "listed at a blocklist" || notok "sender disable"
drop hA sd1.json "$(pjob sd1 sd1@example.org)"
OUTREACH_NOW=2031-06-01T10:00:00Z ph hA run >/dev/null 2>&1
eq "sender disable s1 on hB: hA's tick leaves the job waiting; status gives the reason" \
  "$(state sd1):$(ph hA status --json | js "[(s['enabled'], s['disabled_reason']) for s in d['senders']]")" \
  "waiting:[(False, 'listed at a blocklist')]"
ph hB sender enable s1 || notok "sender enable"
OUTREACH_NOW=2031-06-01T10:02:00Z ph hA run >/dev/null 2>&1
eq "... enabled again: sent at the next tick, its warm-up restarted today" \
  "$(state sd1):$(pgsql "SELECT warmup_start_day IS NOT NULL AND enabled FROM senders WHERE name = 's1'")" "sent:t"

# --- backup -------------------------------------------------------------------------------------
out=$(ph hA backup "$T/b.db" 2>&1); rc=$?
if [ $rc -eq 78 ] && printf '%s' "$out" | grep -q "pg_dump" && [ ! -e "$T/b.db" ]; then ok "backup says to use pg_dump (78), writes nothing"
else notok "backup says to use pg_dump (78), writes nothing" "rc=$rc $out"; fi

# --- the job alerts: error_rate, backlog_old ----------------------------------------------------------------
printf 'alerts = { min_attempts = 2; backlog_age = 60; };\n' >>"$T/hA/conf"
printf 'e1@example.org\ne2@example.org\n' >"$T/refuse"
drop hA e1.json "$(pjob e1 e1@example.org)"; drop hA e2.json "$(pjob e2 e2@example.org)"
OUTREACH_NOW=2032-01-01T10:00:00Z ph hA run >/dev/null 2>&1
alerts() { pgsql "SELECT string_agg(name, ' ' ORDER BY name) FROM alerts"; }
eq "two permanent refusals in the hour (min_attempts = 2): error_rate" "$(alerts)" "error_rate"
rm "$T/refuse"
ph hB pause --campaign slow
drop hA w1.json "$(pjob w1 w1@example.org slow)"
OUTREACH_NOW=2032-01-01T11:30:00Z ph hA run >/dev/null 2>&1
OUTREACH_NOW=2032-01-01T11:32:00Z ph hA run >/dev/null 2>&1
eq "a due job of a paused campaign waiting past backlog_age (60 s): backlog_old; the failures an hour old: error_rate cleared" "$(alerts)" "backlog_old"
ph hB resume --campaign slow
OUTREACH_NOW=2032-01-01T11:33:00Z ph hA run >/dev/null 2>&1
eq "... resumed and sent: cleared" "$(state w1):$(alerts)" "sent:"
sed -i '/^alerts = /d' "$T/hA/conf"

# --- retention: once an hour, by one host, the counters kept ----------------------------------------------
sent0=$(pgsql "SELECT count(*) FROM jobs WHERE state = 'sent'"); failed0=$(pgsql "SELECT count(*) FROM jobs WHERE state = 'failed'")
total0=$(awk '/^outreach_sent_total/ { s += $2 } END { print s }' "$T/hA/reports/outreach.prom")
OUTREACH_NOW=2033-01-01T00:00:00Z ph hA run >/dev/null 2>&1 &
OUTREACH_NOW=2033-01-01T00:00:00Z ph hB run >/dev/null 2>&1; wait
eq "retention in 2033 (past retention_days): the sent jobs and their attempts go, the failed stay" \
  "$(pgsql "SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state = 'failed') FROM jobs"):$(pgsql "SELECT count(*) FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.state = 'sent'")" \
  "0|$failed0:0"
[ "$sent0" -gt 0 ] || notok "... there were sent jobs to retire" "sent0=$sent0"
eq "... the finished runs before the cutoff go, the mark is the tick's time" \
  "$(pgsql "SELECT count(*) FROM runs WHERE started_at < extract(epoch FROM timestamptz '2032-10-01')"):$(pgsql "SELECT abs(value::float8 - extract(epoch FROM timestamptz '2033-01-01')) < 60 FROM kv WHERE key = 'housekept_at'")" "0:t"
eq "... outreach_sent_total does not go back" "$(awk '/^outreach_sent_total/ { s += $2 } END { print s }' "$T/hA/reports/outreach.prom")" "$total0"
drop hA r1.json "$(pjob r1 r1@example.org)"
OUTREACH_NOW=2033-01-01T00:30:00Z ph hA run >/dev/null 2>&1
pgsql "UPDATE jobs SET updated_at = 0 WHERE producer_id = 'r1'"   # as if settled long ago
OUTREACH_NOW=2033-01-01T00:40:00Z ph hB run >/dev/null 2>&1
eq "within the hour no host does it again" "$(state r1)" sent
OUTREACH_NOW=2033-01-01T01:00:01Z ph hB run >/dev/null 2>&1
eq "... an hour on, the next tick of any host does" "$(pgsql "SELECT count(*) FROM jobs WHERE producer_id = 'r1'")" 0
# --- plan: the same forecast as SQLite's for the same backlog ------------------------------------------------
for i in $(seq 1 30); do
  printf '{"id": "pl%d", "client": "acme", "campaign": "later", "to": "pl%d@example.org", "subject": "Hi", "text": "Hi", "not_before": "2034-03-0%dT09:00:00Z"}\n' \
    "$i" "$i" $((i % 3 + 1))
done >"$T/plan.jsonl"
OUTREACH_NOW=2034-02-27T10:00:00Z ph hB enqueue --format jsonl "$T/plan.jsonl" >/dev/null
OUTREACH_NOW=2034-02-27T10:00:00Z orc lite enqueue --format jsonl "$T/plan.jsonl" >/dev/null
OUTREACH_NOW=2034-02-27T10:00:00Z ph hB run >/dev/null 2>&1
OUTREACH_NOW=2034-02-27T10:00:00Z orc lite run >/dev/null 2>&1
OUTREACH_NOW=2034-02-28T08:00:00Z ph hA plan --json | js "{k: v for k, v in d.items() if k != 'generated_at'}" >"$T/pg.plan"; rc=$?
OUTREACH_NOW=2034-02-28T08:00:00Z orc lite plan --json | js "{k: v for k, v in d.items() if k != 'generated_at'}" >"$T/lite.plan"
[ -s "$T/pg.plan" ] && [ -s "$T/lite.plan" ] || notok "plan --json printed a forecast on both stores" "$(ph hA plan --json 2>&1 | head -5)"
eq "plan --json on hA: SQLite's forecast for the same 30 jobs (generated_at aside)" "$rc:$(cat "$T/pg.plan")" "0:$(cat "$T/lite.plan")"
grep -q "'later'" "$T/pg.plan" && ok "... and it forecasts the campaign" || notok "... and it forecasts the campaign" "$(cat "$T/pg.plan")"

finish
