#!/bin/sh
# tests/e2e/enqueue.sh — `outreach enqueue` end to end: every input format
# (.json object and array, .jsonl, stdin, .csv with --template/--client/
# --campaign), idempotent ids, all-or-nothing, --dry-run, --validate, usage
# and input errors; then one run: the rendered CSV message (vars, RFC 2047
# subject), status --json (doc/design.md §11) and outreach.prom (§12, promtool).
# san: yes
. "$(dirname "$0")/../lib.sh"

NOW=1796029200            # 2026-11-30T09:00:00Z, a Monday
export OUTREACH_NOW=$NOW
setup

# ids printed by enqueue: exactly N lines of 16 lower-case hex
is_ids() {   # is_ids FILE N
  [ "$(wc -l <"$1")" -eq "$2" ] && [ "$(grep -cE '^[0-9a-f]{16}$' "$1")" -eq "$2" ]
}
# every id of FILE has spool/new/<id>.json
all_in_new() {
  while read -r id; do [ -f "$T/spool/new/$id.json" ] || return 1; done <"$1"
}

# ---- .json: a single object ---------------------------------------------------------
job one@example.com >"$T/one.json"
or enqueue "$T/one.json" >"$T/ids.one" 2>"$T/err"; rc=$?
eq "json object: exit 0" "$rc" 0
check "json object: one 16-hex id" is_ids "$T/ids.one" 1
check "json object: spool/new/<id>.json exists" all_in_new "$T/ids.one"

# ---- .json: an array -------------------------------------------------------------------
printf '[%s,%s,%s]\n' "$(job arr1@example.com)" "$(job arr2@example.com)" "$(job arr3@example.com)" >"$T/arr.json"
or enqueue "$T/arr.json" >"$T/ids.arr" 2>"$T/err"; rc=$?
eq "json array: exit 0" "$rc" 0
check "json array: three 16-hex ids" is_ids "$T/ids.arr" 3
check "json array: three files in new/" all_in_new "$T/ids.arr"
eq "json array: three distinct ids" "$(sort -u "$T/ids.arr" | wc -l)" 3

# ---- .jsonl ----------------------------------------------------------------------------------
{ job l1@example.com; job l2@example.com; echo; job l3@example.com globex; } >"$T/jobs.jsonl"
or enqueue "$T/jobs.jsonl" >"$T/ids.jsonl" 2>"$T/err"; rc=$?
eq "jsonl: exit 0" "$rc" 0
check "jsonl: three ids (blank line skipped)" is_ids "$T/ids.jsonl" 3
check "jsonl: files in new/" all_in_new "$T/ids.jsonl"

# ---- enqueueing the same file again: same ids, nothing new -------------------------------
or enqueue "$T/jobs.jsonl" >"$T/ids.jsonl2" 2>"$T/err"; rc=$?
eq "jsonl twice: exit 0" "$rc" 0
check "jsonl twice: the same ids" cmp -s "$T/ids.jsonl" "$T/ids.jsonl2"
eq "jsonl twice: still 7 files in new/" "$(nfiles new)" 7

# ---- stdin: JSON Lines by default ----------------------------------------------------------------
{ job in1@example.com; job in2@example.com; } | or enqueue - >"$T/ids.stdin" 2>"$T/err"; rc=$?
eq "stdin: exit 0" "$rc" 0
check "stdin: two ids (JSON Lines default)" is_ids "$T/ids.stdin" 2
check "stdin: files in new/" all_in_new "$T/ids.stdin"

# ---- .csv with --template, --client, --campaign ------------------------------------------
cat >"$T/tmpl.json" <<'EOF'
{"subject": "Привет, {{first_name}}! Специальное предложение для вашей компании на декабрь", "text": "Hello {{first_name}} from {{company}} in {{city}}", "html": "<p>Hello {{ first_name }} from <b>{{company}}</b></p>", "vars": {"city": "Moscow", "company": "Default Co"}, "reply_to": "sales@acme.example"}
EOF
cat >"$T/people.csv" <<'EOF'
email,first_name,company,subject
ivan@example.com,Иван,Acme,
"petr@example.com",Пётр,"Smith & Sons, Inc",
anna@example.com,Anna,Initech,Special offer for {{first_name}}
EOF
or enqueue --client acme --campaign q4 --template "$T/tmpl.json" "$T/people.csv" >"$T/ids.csv" 2>"$T/err"; rc=$?
eq "csv: exit 0" "$rc" 0
check "csv: three ids" is_ids "$T/ids.csv" 3
check "csv: files in new/" all_in_new "$T/ids.csv"
csv1=$(sed -n 1p "$T/ids.csv"); csv2=$(sed -n 2p "$T/ids.csv"); csv3=$(sed -n 3p "$T/ids.csv")

# ---- --dry-run: ids, nothing written -------------------------------------------------------------
before=$(ls "$T/spool/new" | wc -l)
{ job dry1@example.com; job dry2@example.com; } >"$T/dry.jsonl"
or enqueue --dry-run "$T/dry.jsonl" >"$T/ids.dry" 2>"$T/err"; rc=$?
eq "dry-run: exit 0" "$rc" 0
check "dry-run: prints two ids" is_ids "$T/ids.dry" 2
eq "dry-run: nothing new in new/" "$(ls "$T/spool/new" | wc -l)" "$before"
eq "dry-run: tmp/ empty" "$(ls -A "$T/spool/tmp" | wc -l)" 0
d1=$(sed -n 1p "$T/ids.dry")
check "dry-run: no file for the printed id" test ! -e "$T/spool/new/$d1.json"

# ---- a repeated recipient in one client and campaign of one input is enqueued once ------------
# six rows, one address (any case) with different names, one campaign: one job, five named
# duplicates; the same address in another campaign is its own job; --allow-repeat or an id per
# row keeps every row, as before
printf 'email,name\nrep@example.com,Ann\nREP@example.com,Anna\nrep@example.com,A.\nrep@Example.COM,Annie\nrep@example.com,Ms A\nrep@example.com,Dr A\n' >"$T/rep.csv"
printf '{"subject":"Hi {{name}}","text":"Hello {{name}}"}' >"$T/rep-tmpl.json"
or enqueue --validate --client acme --campaign k1 --template "$T/rep-tmpl.json" --dry-run "$T/rep.csv" >"$T/rep.ids" 2>"$T/rep.err"; rc=$?
eq "repeat: exit 0" "$rc" 0
eq "repeat: one job for six rows to one address" "$(wc -l <"$T/rep.ids")" 1
eq "repeat: the five later rows are named as duplicates" "$(grep -c '^.*rep\.csv:[3-7]: duplicate: the same recipient as .*rep\.csv:2 ' "$T/rep.err")" 5
check "repeat: the summary counts them skipped" grep -q '6 jobs checked, 5 skipped' "$T/rep.err"
{ job rep@example.com acme ',"campaign":"k1"'; job rep@example.com acme ',"campaign":"k2"'; } >"$T/rep2.jsonl"
or enqueue --dry-run "$T/rep2.jsonl" >"$T/rep2.ids" 2>"$T/rep2.err"
eq "repeat: the same address in another campaign is its own job" "$(wc -l <"$T/rep2.ids")" 2
or enqueue --allow-repeat --client acme --campaign k1 --template "$T/rep-tmpl.json" --dry-run "$T/rep.csv" >"$T/rep.ids" 2>/dev/null
eq "repeat: --allow-repeat keeps all six" "$(sort -u "$T/rep.ids" | wc -l)" 6
python3 -c "
for i in range(3): print('{\"id\":\"row-%d\",\"client\":\"acme\",\"campaign\":\"k1\",\"to\":\"rep@example.com\",\"subject\":\"s\",\"text\":\"t%d\"}' % (i, i))" >"$T/rep3.jsonl"
or enqueue --dry-run "$T/rep3.jsonl" >"$T/rep3.ids" 2>/dev/null
eq "repeat: rows with their own id are kept" "$(sort -u "$T/rep3.ids" | wc -l)" 3
newconf rep "$default_senders"
orc rep enqueue --client acme --campaign k1 --template "$T/rep-tmpl.json" "$T/rep.csv" >"$T/rep.ids" 2>"$T/rep.err"
eq "repeat (no --validate): one job written" "$(wc -l <"$T/rep.ids") $(nf rep new)" "1 1"
check "repeat (no --validate): says how many it skipped" grep -q '5 repeated recipients skipped' "$T/rep.err"

# ---- all or nothing: one invalid job refuses the whole input -----------------------------------
mkdir "$T/aon"
cat >"$T/aon/conf" <<EOF
spool = "spool";
report_dir = "reports";
$default_senders
EOF
"$OR" -c "$T/aon/conf" init >/dev/null 2>&1
{ job ok1@example.com; job ok2@example.com; job 'not-an-address'; job ok4@example.com; } >"$T/bad.jsonl"
"$OR" -c "$T/aon/conf" enqueue "$T/bad.jsonl" >"$T/aon/out" 2>"$T/aon/err"; rc=$?
eq "all-or-nothing: exit 65" "$rc" 65
check "all-or-nothing: stderr names bad.jsonl:3 and field to" grep -q 'bad\.jsonl:3: to: ' "$T/aon/err"
check "all-or-nothing: stderr does not blame the good lines" sh -c "! grep -qE 'bad\\.jsonl:[124]:' '$T/aon/err'"
eq "all-or-nothing: no ids printed" "$(wc -l <"$T/aon/out")" 0
eq "all-or-nothing: nothing in new/" "$(ls -A "$T/aon/spool/new" | wc -l)" 0
eq "all-or-nothing: nothing in tmp/" "$(ls -A "$T/aon/spool/tmp" | wc -l)" 0

# a CSV with an invalid row is refused the same way, naming its line
printf 'email,subject,text,client\ngood@example.com,S,T,acme\nbroken@,S,T,acme\n' >"$T/bad.csv"
"$OR" -c "$T/aon/conf" enqueue "$T/bad.csv" >"$T/aon/out" 2>"$T/aon/err"; rc=$?
eq "all-or-nothing csv: exit 65" "$rc" 65
check "all-or-nothing csv: stderr names bad.csv:3: to" grep -q 'bad\.csv:3: to: ' "$T/aon/err"
eq "all-or-nothing csv: nothing in new/ or tmp/" "$(ls -A "$T/aon/spool/new" "$T/aon/spool/tmp" | grep -cv -e ':$' -e '^$')" 0

# ---- --validate: the invalid address is listed and skipped, the rest goes ------------------
{ job val1@example.com; job 'val2@@example'; job val3@example.com; } >"$T/val.jsonl"
or enqueue --validate "$T/val.jsonl" >"$T/ids.val" 2>"$T/err"; rc=$?
eq "validate: exit 0" "$rc" 0
check "validate: two ids printed" is_ids "$T/ids.val" 2
check "validate: the skipped job is listed on stderr (val.jsonl:2)" grep -q 'val\.jsonl:2' "$T/err"
check "validate: the others are in new/" all_in_new "$T/ids.val"

# ---- ids: recipients compared lower-cased; --dry-run renders (a missing var is refused) ----
a=$(echo '{"client":"acme","to":"Case@Example.COM","subject":"s","text":"t"}' | or enqueue --dry-run - 2>/dev/null)
b=$(echo '{"client":"acme","to":"case@example.com","subject":"s","text":"t"}' | or enqueue --dry-run - 2>/dev/null)
check "dry-run: an id is printed for Case@Example.COM" sh -c "echo '$a' | grep -qE '^[0-9a-f]{16}\$'"
eq "the same job to Case@Example.COM and case@example.com has one id" "$a" "$b"
echo '{"client":"acme","to":"v@example.com","subject":"s","text":"Hi {{nope}}"}' | or enqueue --dry-run - >"$T/out" 2>"$T/err"; rc=$?
eq "dry-run: a missing var is refused (exit 65)" "$rc" 65
check "dry-run: stderr names stdin:1 and the field text" grep -q '^stdin:1: text: ' "$T/err"

# ---- usage and unreadable input ------------------------------------------------------------------
or enqueue --format xml "$T/one.json" >/dev/null 2>&1; rc=$?
eq "enqueue --format xml: exit 64" "$rc" 64
or enqueue "$T/no-such-file.json" >/dev/null 2>"$T/err"; rc=$?
eq "missing file: exit 65" "$rc" 65
check "missing file: stderr names it" grep -q 'no-such-file\.json' "$T/err"

# ---- one run sends everything ---------------------------------------------------------------------
cat "$T/ids.one" "$T/ids.arr" "$T/ids.jsonl" "$T/ids.stdin" "$T/ids.csv" "$T/ids.val" >"$T/all.ids"
N=$(wc -l <"$T/all.ids")
eq "14 distinct jobs enqueued" "$(sort -u "$T/all.ids" | wc -l)" 14
or run >"$T/run.out" 2>"$T/run.err"; rc=$?
eq "run: exit 0" "$rc" 0
eq "run: one .eml per job" "$(ls "$T/outbox" | grep -c '\.eml$')" "$N"
missing=0
while read -r id; do [ -f "$T/outbox/$id.eml" ] || missing=$((missing + 1)); done <"$T/all.ids"
eq "run: every printed id has outbox/<id>.eml" "$missing" 0
eq "run: ledger has every job sent" "$(q "SELECT count(*) FROM jobs WHERE state = 'sent'")" "$N"
eq "csv: ledger client/campaign from --client/--campaign" \
   "$(q "SELECT client || '/' || campaign FROM jobs WHERE id = '$csv1'")" "acme/q4"

# the same file again after the run: same ids, and still one message per job
or enqueue "$T/jobs.jsonl" >"$T/ids.jsonl3" 2>"$T/err"
check "jsonl after run: the same ids again" cmp -s "$T/ids.jsonl" "$T/ids.jsonl3"
OUTREACH_NOW=$((NOW + 60)) or run >/dev/null 2>&1
eq "jsonl after run: no second copy (.N.eml) sent" "$(ls "$T/outbox" | grep -c '\.[0-9]*\.eml$')" 0
eq "jsonl after run: still $N messages" "$(ls "$T/outbox" | grep -c '\.eml$')" "$N"

# ---- the CSV messages: vars substituted, subject RFC 2047 encoded ---------------------------
msg() {   # msg ID WHAT -> decoded subject | body | raw subject line | reply-to
  python3 - "$T/outbox/$1.eml" "$2" <<'EOF'
import sys, email, email.policy
raw = open(sys.argv[1], 'rb').read()
m = email.message_from_bytes(raw, policy=email.policy.default)
w = sys.argv[2]
if w == 'subject':
    print(str(m['Subject']))
elif w == 'body':
    part = m.get_body(preferencelist=('plain',))
    print(part.get_content().rstrip('\r\n'))
elif w == 'html':
    part = m.get_body(preferencelist=('html',))
    print(part.get_content().rstrip('\r\n'))
elif w == 'words':
    # every RFC 2047 encoded word: at most 75 characters, and whole UTF-8 on its own
    import re, base64, quopri
    hdr = raw.split(b'\r\n\r\n', 1)[0].decode('latin-1').replace('\r\n', '\n')
    subj = re.search(r'(?im)^subject:(.*(?:\n[ \t].*)*)', hdr).group(1)
    words = re.findall(r'=\?[^?]+\?[BbQq]\?[^?]*\?=', subj)
    bad = [x for x in words if len(x) > 75]
    for x in words:
        cs, enc, txt = x[2:-2].split('?')
        b = base64.b64decode(txt) if enc in 'Bb' else quopri.decodestring(txt.replace('_', ' ').encode(), header=True)
        try: b.decode('utf-8')
        except UnicodeDecodeError: bad.append(x)
    print(len(words), 'ok' if words and not bad else 'bad ' + ' '.join(bad))
elif w == 'rawsubject':
    for line in raw.split(b'\r\n\r\n', 1)[0].replace(b'\r\n', b'\n').split(b'\n'):
        if line.lower().startswith(b'subject:'):
            print(line.decode('latin-1'))
elif w == 'reply_to':
    print(str(m['Reply-To']))
EOF
}
eq "csv row 1: subject decodes to the template with the var" "$(msg "$csv1" subject)" \
   "Привет, Иван! Специальное предложение для вашей компании на декабрь"
eq "csv row 2: subject decodes to the template with the var" "$(msg "$csv2" subject)" \
   "Привет, Пётр! Специальное предложение для вашей компании на декабрь"
words=$(msg "$csv1" words)
check "csv row 1: long subject in several encoded words ($words)" test "${words%% *}" -ge 2
eq "csv row 1: each encoded word <= 75 chars, none split inside a UTF-8 sequence" "${words#* }" ok
eq "csv row 3: the row's subject overrides the template" "$(msg "$csv3" subject)" "Special offer for Anna"
raws=$(msg "$csv1" rawsubject)
check "csv row 1: raw Subject is RFC 2047 encoded words" sh -c "printf '%s' '$raws' | grep -q '=?[Uu][Tt][Ff]-8?[BbQq]?'"
check "csv row 1: raw Subject is 7-bit ASCII" sh -c "printf '%s' '$raws' | LC_ALL=C grep -qv '[^ -~]'"
eq "csv row 1: text with row vars and template vars merged" "$(msg "$csv1" body)" "Hello Иван from Acme in Moscow"
eq "csv row 2: quoted CSV field with a comma" "$(msg "$csv2" body)" "Hello Пётр from Smith & Sons, Inc in Moscow"
eq "csv row 2: the var is HTML-escaped in the html part" "$(msg "$csv2" html)" "<p>Hello Пётр from <b>Smith &amp; Sons, Inc</b></p>"
eq "csv row 1: template reply_to applies" "$(msg "$csv1" reply_to)" "sales@acme.example"

# ---- status --json (doc/design.md §11) ----------------------------------------------------------------
or status --json >"$T/status.json" 2>"$T/err"; rc=$?
eq "status --json: exit 0" "$rc" 0
py_status=$(python3 - "$T/status.json" "$N" <<'EOF'
import sys, json
s = json.load(open(sys.argv[1])); n = int(sys.argv[2])
need = {
  '': ['generated_at', 'run', 'spool', 'senders', 'clients', 'campaigns', 'alerts'],
  'run': ['started_at', 'duration_s', 'claimed', 'sent', 'deferred', 'failed', 'bad', 'held'],
  'spool': ['new', 'cur', 'defer', 'done', 'failed', 'bad', 'held', 'oldest_waiting_s'],
  'senders': ['name', 'domain', 'provider', 'enabled', 'disabled_reason', 'sent_today', 'cap_today',
              'warmup_day', 'bounce_rate', 'complaint_rate'],
  'clients': ['name', 'sent_today', 'cap_today', 'pending'],
  'campaigns': ['client', 'name', 'sent', 'delivered', 'bounced', 'complained', 'opened', 'clicked',
                'failed', 'pending'],
}
bad = []
for k in need['']:
    if k not in s: bad.append(k)
for sec in ('run', 'spool'):
    for k in need[sec]:
        if k not in s.get(sec, {}): bad.append(sec + '.' + k)
for sec in ('senders', 'clients', 'campaigns'):
    rows = s.get(sec) or []
    if not rows: bad.append(sec + ' empty')
    for r in rows:
        for k in need[sec]:
            if k not in r: bad.append(sec + '[].' + k)
print('keys', 'ok' if not bad else 'missing ' + ','.join(sorted(set(bad))))
print('spool.done', s['spool']['done'])
print('senders.sent_today', sum(x['sent_today'] for x in s['senders']))
print('campaigns.sent', sum(x['sent'] for x in s['campaigns']))
print('clients.sent_today', sum(x['sent_today'] for x in s['clients']))
print('acme/q4.sent', sum(x['sent'] for x in s['campaigns'] if x['client'] == 'acme' and x['name'] == 'q4'))
print('run.sent', s['run']['sent'])
print('pending', sum(x['pending'] for x in s['clients']))
EOF
)
val() { printf '%s\n' "$py_status" | sed -n "s|^$1 ||p"; }
eq "status.json: the fixed keys of §11" "$(val keys)" "ok"
eq "status.json: spool.done = files in done/ ($N sent + 3 duplicates)" "$(val spool.done)" "$(nfiles done)"
eq "done/ holds $N sent + 3 duplicates" "$(nfiles done)" $((N + 3))
eq "ledger: the 3 re-enqueued jobs are duplicates of the first ones" \
   "$(q "SELECT count(*) FROM jobs WHERE state = 'duplicate' AND dup_of IN ($(sed "s/.*/'&'/" "$T/ids.jsonl" | paste -sd,))")" 3
eq "status.json: senders' sent_today sum = sent" "$(val senders.sent_today)" "$N"
eq "status.json: campaigns' sent sum = sent" "$(val campaigns.sent)" "$N"
eq "status.json: clients' sent_today sum = sent" "$(val clients.sent_today)" "$N"
eq "status.json: campaign acme/q4 sent 3" "$(val acme/q4.sent)" 3
eq "status.json: nothing pending" "$(val pending)" 0
eq "status.json: run.sent of the last run (the rerun of duplicates) = 0" "$(val run.sent)" 0
check "reports/status.json is valid JSON" python3 -c "import json,sys; json.load(open('$T/reports/status.json'))"
diffs=$(python3 - "$T/status.json" "$T/reports/status.json" <<'EOF'
import sys, json
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
for x in (a, b):
    x.pop('generated_at', None); x.get('run', {}).pop('duration_s', None)
print(' '.join(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)) or 'same')
EOF
)
eq "status --json has the same content as reports/status.json" "$diffs" same

# ---- outreach.prom (§12) --------------------------------------------------------------------------
# a third run that sends two: the report speaks of that run only
{ job prom1@example.com; job prom2@example.com; } | or enqueue - >/dev/null 2>&1
OUTREACH_NOW=$((NOW + 120)) or run >/dev/null 2>&1
prom=$T/reports/outreach.prom
check "outreach.prom exists" test -s "$prom"
if command -v promtool >/dev/null 2>&1; then
  promtool check metrics <"$prom" >"$T/promtool.out" 2>&1; rc=$?
  eq "outreach.prom: promtool check metrics passes" "$rc" 0
  [ "$rc" -eq 0 ] || sed 's/^/#   /' "$T/promtool.out"
else
  notok "promtool installed"
fi
eq "outreach.prom: outreach_run_jobs{outcome=\"sent\"} = jobs sent by the run" \
   "$(sed -n 's/^outreach_run_jobs{outcome="sent"} //p' "$prom")" 2
eq "outreach.prom: run_jobs sent = the ledger's sends of the last run" \
   "$(sed -n 's/^outreach_run_jobs{outcome="sent"} //p' "$prom")" \
   "$(q "SELECT count(*) FROM jobs WHERE state = 'sent' AND run_id = (SELECT id FROM runs ORDER BY rowid DESC LIMIT 1)")"
# every per-sender and per-account series of §12, one sample for each sender / account
for m in sent_today cap_today warmup_day enabled bounce_rate complaint_rate; do
  for snd in s1 s2; do
    check "outreach.prom: outreach_sender_$m{sender=\"$snd\"}" \
      grep -qE "^outreach_sender_$m\\{sender=\"$snd\"\\} [0-9.eE+-]+\$" "$prom"
  done
done
check "outreach.prom: outreach_account_circuit_open{account=\"dry\"}" \
  grep -qE '^outreach_account_circuit_open\{account="dry"\} [01]$' "$prom"
eq "outreach.prom: outreach_spool_jobs{folder=\"done\"}" \
   "$(sed -n 's/^outreach_spool_jobs{folder="done"} //p' "$prom")" \
   "$(q "SELECT count(*) FROM jobs WHERE state IN ('sent', 'suppressed', 'duplicate')")"

finish
