#!/bin/sh
# Operator controls (pause, resume, cancel, render, jobs, show, backup) and retention.
# san: no
. "$(dirname "$0")/../lib.sh"
NOW=1796029200   # Monday 2026-11-30 09:00 UTC
at() { OUTREACH_NOW=$(( NOW + $1 )) or "$@"; }
setup '
providers = ( { name = "dry"; type = "file"; dir = "outbox"; },
              { name = "slow"; type = "exec"; argv = ["'"$T"'/slow.sh"]; timeout = 30; } );
senders = (
  { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 100000; per_minute = 60; },
  { name = "s2"; from = "Two <two@s2.example>"; provider = "dry"; daily_limit = 100000; per_minute = 60; }
);'
# slow.sh: a transfer that lasts until the test opens the gate ($T/slow.go; 25 s at
# most, within the provider's timeout), so a command can land while one is in flight
cat > "$T/slow.sh" <<EOS
#!/bin/sh
cat > /dev/null
: > "$T/slow.started"
i=0; while [ ! -e "$T/slow.go" ] && [ \$i -lt 250 ]; do sleep 0.1; i=\$((i + 1)); done
echo slow-ok
EOS
chmod +x "$T/slow.sh"
gen() {  # gen CLIENT CAMPAIGN N PREFIX
  python3 -c "
import json,sys
c,k,n,p=sys.argv[1],sys.argv[2],int(sys.argv[3]),sys.argv[4]
for i in range(n): print(json.dumps({'client':c,'campaign':k,'to':'%s%d@example.com'%(p,i),'subject':'Hi {{n}}','text':'Hello {{n}}','html':'<p>Hello {{n}}</p>','vars':{'n':str(i)}}))" "$@"
}

# ---- pause a campaign mid-way: nothing of it goes out until resume, others proceed
gen acme q4 40 a > "$T/a.jsonl"; gen acme spring 40 b > "$T/b.jsonl"
or enqueue "$T/a.jsonl" "$T/b.jsonl" >/dev/null
OUTREACH_NOW=$NOW or run --deadline 20 >/dev/null 2>&1
before=$(q "SELECT count(*) FROM jobs WHERE campaign = 'q4' AND state = 'sent'")
check "pause: some of q4 went before the pause ($before)" test "$before" -gt 0
or pause --campaign q4 --reason "client asked"
for m in 1 2 3 4 5; do OUTREACH_NOW=$(( NOW + m * 60 )) or run --deadline 50 >/dev/null 2>&1; done
eq "pause: nothing more of q4 went out during 5 paused minutes" \
  "$(q "SELECT count(*) FROM jobs WHERE campaign = 'q4' AND state = 'sent'")" "$before"
eq "pause: the other campaign finished meanwhile" "$(q "SELECT count(*) FROM jobs WHERE campaign = 'spring' AND state = 'sent'")" 40
grep -q '"paused":\[{"client":null,"campaign":"q4"' "$T/reports/status.json" && ok "pause: status.json lists the paused scope" || notok "pause: status.json lists the paused scope"
grep -q '^outreach_paused{client="",campaign="q4",sender=""} 1' "$T/reports/outreach.prom" && ok "pause: outreach.prom has outreach_paused" || notok "pause: outreach.prom has outreach_paused"
OUTREACH_NOW=$(( NOW + 360 )) or plan --json > "$T/plan.json"
python3 -c "
import json; p=json.load(open('$T/plan.json'))
c=[x for x in p['campaigns'] if x['name']=='q4'][0]
assert c['paused'] is True, c" && ok "pause: plan shows q4 as paused" || notok "pause: plan shows q4 as paused"
or resume --campaign q4
for m in 7 8 9; do OUTREACH_NOW=$(( NOW + m * 60 )) or run --deadline 50 >/dev/null 2>&1; done
eq "resume: q4 finishes after resume" "$(q "SELECT count(*) FROM jobs WHERE campaign = 'q4' AND state = 'sent'")" 40
eq "resume: resuming an unknown pause is an error" "$(or resume --campaign nope 2>/dev/null; echo $?)" 65

# ---- cancel while a run is in progress (an exec provider slows each send)
sed -i 's/provider = "dry"; daily_limit = 100000; per_minute = 60; },/provider = "slow"; daily_limit = 100000; },/' "$T/conf"
gen acme cx 30 c > "$T/c.jsonl"; or enqueue "$T/c.jsonl" >/dev/null
OUTREACH_NOW=$(( NOW + 900 )) or run --deadline 3600 >/dev/null 2>&1 &
pid=$!
wait_for 30 test -e "$T/slow.started" || notok "cancel: the run started a transfer" "no slow.sh within 30 s"
or cancel --campaign cx --reason "stop" > "$T/cancel.out"
sent_then=$(q "SELECT count(*) FROM jobs WHERE campaign = 'cx' AND state IN ('sent', 'sending', 'claimed')")
: > "$T/slow.go"
wait $pid
n_cancelled=$(q "SELECT count(*) FROM jobs WHERE campaign = 'cx' AND state = 'failed' AND last_error LIKE 'cancelled: stop at %'")
check "cancel: it reports what it cancelled ($(cat "$T/cancel.out"))" grep -q "jobs\? cancelled" "$T/cancel.out"
check "cancel: jobs of the campaign are failed with reason cancelled ($n_cancelled)" test "$n_cancelled" -gt 10
sent_end=$(q "SELECT count(*) FROM jobs WHERE campaign = 'cx' AND state = 'sent'")
eq "cancel: nothing was sent after the command returned but what was already claimed ($sent_then)" "$sent_end" "$sent_then"
eq "cancel: every cx job is sent or cancelled" \
  "$(q "SELECT count(*) FROM jobs WHERE campaign = 'cx' AND state IN ('sent', 'failed')")" 30
for id in $(q "SELECT id FROM jobs WHERE campaign = 'cx' AND state = 'failed' LIMIT 3"); do
  check "cancel: $id in failed/ with its .err" test -f "$T/spool/failed/$id.json" -a -s "$T/spool/failed/$id.err"
done

# ---- render equals what the file provider writes (but Date and Message-ID)
sed -i 's/provider = "slow"; daily_limit = 100000; },/provider = "dry"; daily_limit = 100000; per_minute = 60; },/' "$T/conf"
printf '{"client":"acme","campaign":"r","to":"Иван <ivan@example.com>","subject":"Привет, {{n}}!","text":"Текст {{n}}","html":"<p>{{n}} &amp; co</p>","vars":{"n":"Иван"},"headers":{"X-Ref":"42"}}\n' > "$T/r.json"
id=$(or enqueue "$T/r.json")
# ingested, not sent (a run while its campaign is paused), so render finds it waiting in the ledger
or pause --campaign r --reason "render first"
OUTREACH_NOW=$(( NOW + 5000 )) or run >/dev/null 2>&1
or resume --campaign r
eq "render: the job waits in the ledger" "$(q "SELECT state FROM jobs WHERE id = '$id'")" waiting
OUTREACH_NOW=$(( NOW + 5000 )) or render "$id" > "$T/render.eml" 2>"$T/render.err"
check "render: prints the message for a waiting job and names the sender" grep -q "via sender" "$T/render.err"
OUTREACH_NOW=$(( NOW + 5000 )) or render "$T/r.json" --part text > "$T/render.txt" 2>/dev/null
eq "render --part text: the text with vars" "$(cat "$T/render.txt")" "Текст Иван"
OUTREACH_NOW=$(( NOW + 5010 )) or run >/dev/null 2>&1
python3 - "$T/render.eml" "$T/outbox/$id.eml" <<'PY' && ok "render: parsed by Python's email package, equal to the sent .eml but Date and Message-ID" || notok "render: equal to the sent .eml"
import email, sys
from email import policy
a = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=policy.default)
b = email.message_from_bytes(open(sys.argv[2], 'rb').read(), policy=policy.default)
ha = [(k, str(v)) for k, v in a.items() if k not in ('Date', 'Message-ID')]
hb = [(k, str(v)) for k, v in b.items() if k not in ('Date', 'Message-ID')]
assert [k for k, _ in ha] == [k for k, _ in hb], (ha, hb)
ta = {p.get_content_type(): p.get_content() for p in a.walk() if not p.is_multipart()}
tb = {p.get_content_type(): p.get_content() for p in b.walk() if not p.is_multipart()}
assert ta == tb, (ta, tb)
assert str(a['Subject']) == 'Привет, Иван!', a['Subject']
# boundaries differ by design (random); everything a reader sees is equal
for (k, va), (_, vb) in zip(ha, hb):
    if k != 'Content-Type':
        assert va == vb, (k, va, vb)
PY

# ---- jobs and show
or jobs --to IVAN@example.com --json > "$T/jobs.json"
python3 -c "
import json
rows=[json.loads(l) for l in open('$T/jobs.json')]
assert len(rows)==1 and rows[0]['id']=='$id' and rows[0]['state']=='sent', rows" && ok "jobs --to: finds the job by address, any case" || notok "jobs --to"
python3 - "$T/jobs.json" <<'PY' && ok "jobs --json: times in RFC 3339, as every other JSON output" || notok "jobs --json: times in RFC 3339" "$(cat "$T/jobs.json")"
import json, re, sys
r = json.loads(open(sys.argv[1]).readline())
for k in ("created_at", "updated_at", "sent_at"):
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r[k] or ""), (k, r[k])
PY
or show "$id" --json > "$T/show.json"
python3 -c "
import json, re
j=json.load(open('$T/show.json'))
h=j['history']
assert len(h)==1 and h[0]['outcome']=='sent' and h[0]['sender'] in ('s1','s2') and h[0]['account']=='dry' and h[0]['provider_id']=='$id.eml', j
assert all(re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', v) for v in (j['created_at'], j['sent_at'], h[0]['at'])), j" \
  && ok "show: the attempt with time (RFC 3339), sender, account, outcome and provider id" || notok "show: history"
check "show (text): the times in RFC 3339, the history's too" \
  sh -c "'$OR' -c '$T/conf' show '$id' | grep -q '^sent_at: *20[0-9-]*T[0-9:]*Z\$' && '$OR' -c '$T/conf' show '$id' | grep -q '^  20[0-9-]*T[0-9:]*Z  s[12] '"
eq "show: unknown job is an error" "$(or show 0000000000000000 2>/dev/null; echo $?)" 65
# an enumerated option's unknown value exits 64 naming the valid ones; a mistyped option is named
for v in defer bogus; do
  or jobs --state "$v" >"$T/jobs.out" 2>"$T/jobs.err"; rc=$?
  eq "jobs --state $v: exit 64" "$rc" 64
  check "jobs --state $v: names the value and lists the states" \
    sh -c "grep -q \"'$v' is not one of: waiting, claimed, sending, held, sent, suppressed, duplicate, failed, bad, requeued\" '$T/jobs.err'"
  eq "jobs --state $v: no table printed" "$(wc -c <"$T/jobs.out")" 0
done
eq "jobs --state sent: a valid state still lists" "$(or jobs --state sent --to ivan@example.com | tail -n +2 | wc -l)" 1
or render "$id" --part body >/dev/null 2>"$T/jobs.err"; rc=$?
check "render --part body: exit 64 with the valid parts (rc $rc)" sh -c "[ $rc = 64 ] && grep -q 'raw, headers, text, html' '$T/jobs.err'"
or enqueue --format xml "$T/r.json" >/dev/null 2>"$T/jobs.err"; rc=$?
check "enqueue --format xml: exit 64 with the valid formats (rc $rc)" sh -c "[ $rc = 64 ] && grep -q 'json, jsonl, csv' '$T/jobs.err'"
or jobs --statee sent >/dev/null 2>"$T/jobs.err"; rc=$?
eq "jobs --statee: exit 64" "$rc" 64
check "jobs --statee: the error names --statee" grep -q "^outreach: jobs: .*'--statee'" "$T/jobs.err"
for c in "status --jsn" "show $id --jsn" "check-config --onlin" "validate --csvv x" "plan --dayz 3" \
         "pause --campain q4" "resume --campain q4" "cancel --sender s1" "run --max 0" "run --deadline inf" \
         "enqueue --strict $T/r.json"; do
  set -- $c
  or $c >/dev/null 2>"$T/jobs.err"; rc=$?
  check "$1 with a mistyped option: exit 64, the error names it (rc $rc)" \
    sh -c "[ $rc = 64 ] && grep -q \"^outreach: $1: .*'\$(printf '%s' '$c' | grep -o -- '--[a-z]*')'\" '$T/jobs.err'"
done
or --verbose status >/dev/null 2>"$T/jobs.err"; rc=$?
check "a mistyped global option: exit 64, the error names it (rc $rc)" \
  sh -c "[ $rc = 64 ] && grep -q \"^outreach: unknown option.*'--verbose'\" '$T/jobs.err'"
# status cuts a pause's reason (free text) between UTF-8 characters, never inside one
or pause --campaign utf8cut --reason "x$(python3 -c "print('é' * 30)")"
or status > "$T/status.out"; or resume --campaign utf8cut
check "status: a long UTF-8 pause reason is cut between characters" python3 -c "
line = [l for l in open('$T/status.out', 'rb') if b'utf8cut' in l][0]
line.decode('utf-8'); assert line.rstrip().endswith('é'.encode()), line"
check "man page documents the job states" sh -c "groff -man -Tascii -P -cbou '$TESTS/../outreach.1' 2>/dev/null | grep -q 'requeued'"

# ---- backup taken during a run of 5,000 jobs is one committed state of the ledger
# The 5,000 are ingested first (a run while the campaign is paused), so from then on the ledger
# only changes states: every state it passes through has the same rows, and between
# sent_before and sent_after sent ones.  The backup starts once the sending run has
# sent something; wherever it falls, the copy must be one of those states, whole.
gen big b 5000 z > "$T/z.jsonl"; or enqueue "$T/z.jsonl" >/dev/null
or pause --campaign b --reason "ingest only"
OUTREACH_NOW=$(( NOW + 7000 )) or run >/dev/null 2>&1
or resume --campaign b
rows=$(q 'SELECT count(*) FROM jobs')
sent_before=$(q "SELECT count(*) FROM jobs WHERE state = 'sent'")
eq "backup: the 5,000 are in the ledger, waiting, before the run" \
  "$(q "SELECT count(*) FROM jobs WHERE campaign = 'b' AND state = 'waiting'")" 5000
OUTREACH_NOW=$(( NOW + 7060 )) or run --deadline 3600 --max 5000 >/dev/null 2>&1 &
pid=$!
b_sending() { [ "$(q "SELECT count(*) FROM jobs WHERE campaign = 'b' AND state = 'sent'")" -gt 0 ]; }
wait_for 30 b_sending ||
  notok "backup: the run started sending" "nothing of b sent within 30 s"
or backup "$T/backup.db"; brc=$?
wait $pid
sent_after=$(q "SELECT count(*) FROM jobs WHERE state = 'sent'")
bq() { sqlite3 -batch -noheader "$T/backup.db" "$1"; }
eq "backup: exit 0 while a run goes on" "$brc" 0
eq "backup: the copy passes integrity_check" "$(bq 'PRAGMA integrity_check')" ok
eq "backup: the copy holds the ledger's $rows rows, as every state the run passed through" "$(bq 'SELECT count(*) FROM jobs')" "$rows"
bsent=$(bq "SELECT count(*) FROM jobs WHERE state = 'sent'")
check "backup: the copy's sent jobs ($bsent) lie between the run's start ($sent_before) and end ($sent_after)" \
  test "$bsent" -ge "$sent_before" -a "$bsent" -le "$sent_after"
# the per-state counts (kept by triggers and or_job_move) change in the same transaction as the rows: a
# copy mixing two states would show them apart
eq "backup: the copy's per-state counts equal its rows" \
  "$(bq "SELECT client, campaign, state, n FROM state_counts WHERE n != 0 ORDER BY 1, 2, 3")" \
  "$(bq "SELECT coalesce(client, ''), coalesce(campaign, ''), state, count(*) FROM jobs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")"

# ---- retention keeps the database flat over 30 simulated days of steady sending
# (to one list of 300 addresses, as an agency mails its list: what outreach keeps
# per address, the engagement table, is bounded by the list, not by time)
setup_ret() {
  cat > "$T/rconf" <<EOC
spool = "rspool";
retention_days = 3;
providers = ( { name = "dry"; type = "file"; dir = "routbox"; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 100000; } );
EOC
  "$OR" -c "$T/rconf" init
}
setup_ret
sizes=""
for d in $(seq 0 29); do
  python3 -c "
import json
for i in range(300): print(json.dumps({'client':'acme','campaign':'d$d','to':'r%d@example.com'%i,'subject':'s','text':'t'}))" \
    | "$OR" -c "$T/rconf" enqueue - >/dev/null
  OUTREACH_NOW=$(( NOW + d * 86400 )) "$OR" -c "$T/rconf" run --deadline 600 >/dev/null 2>&1
  OUTREACH_NOW=$(( NOW + d * 86400 + 7200 )) "$OR" -c "$T/rconf" run >/dev/null 2>&1
  sizes="$sizes $(stat -c %s "$T/rspool/state.db")"
done
echo "# retention: database size per day:$sizes"
python3 -c "
s=[int(x) for x in '$sizes'.split()]
assert max(s[10:]) <= 1.25*max(s[4:10]) + 65536, s" && ok "retention: the database stays flat after retention_days" || notok "retention: database flat" "$sizes"
eq "retention: done/ keeps only retention_days of files" \
  "$(ls "$T/rspool/done" | wc -l | awk '{print ($1 <= 1200)}')" 1
eq "retention: rows older than retention_days are gone" \
  "$(sqlite3 "$T/rspool/state.db" "SELECT count(*) FROM jobs WHERE campaign = 'd0'")" 0
finish
