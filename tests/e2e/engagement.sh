#!/bin/sh
# tests/e2e/engagement.sh — list aging (issue 18) on the virtual clock: three
# addresses of one client mailed five times over 160 days (retention retires
# the old rows on the way: the fold must have kept them); one never engages,
# one has a delivery event, one replies (through inbound/).  `engagement`
# lists only the first; with action = "suppress" the daily judgement
# suppresses only it (reason inactive, reversible with suppress remove), a
# later reply from it is still recorded; --export writes CSV that suppress
# import takes; the reports count it.
# san: yes
. "$(dirname "$0")/../lib.sh"
setup '
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; } );
clients = ( { name = "acme"; } );'
at() { date -u -d "2026-01-05T09:00:00Z + $1 days" +%Y-%m-%dT%H:%M:%SZ; }   # at DAYS: day 0 is Monday 5 January
for k in 1 2 3 4 5; do
  d=$(( (k - 1) * 40 ))
  for a in quiet delivered replied; do
    printf '{"client":"acme","campaign":"k%s","to":"%s@corp.example","subject":"Note %s","text":"hi"}\n' "$k" "$a" "$k"
  done >"$T/k$k.jsonl"
  OUTREACH_NOW=$(at $d) or enqueue "$T/k$k.jsonl" >/dev/null
  if [ "$k" = 4 ]; then   # a provider's feed brought a delivery for one address (as or_event_record stores it)
    q "INSERT INTO events(event_key, account, type, at, rcpt, client, campaign, pulled_at) VALUES('t-dlv', 'dry',
       'delivered', strftime('%s', '$(at 119)'), 'delivered@corp.example', 'acme', 'k3', strftime('%s', '$(at 119)'))"
  fi
  if [ "$k" = 5 ]; then   # the third address answers the mail of day 120, through inbound/
    mid=$(q "SELECT message_id FROM jobs WHERE rcpt = 'replied@corp.example' AND campaign = 'k4'")
    printf 'Message-ID: <rep1@corp.example>\r\nFrom: <replied@corp.example>\r\nIn-Reply-To: %s\r\nSubject: Re: Note 4\r\n\r\nyes\r\n' "$mid" \
      >"$T/spool/inbound/tmp/r1" && mv "$T/spool/inbound/tmp/r1" "$T/spool/inbound/new/r1"
  fi
  OUTREACH_NOW=$(at $d) or run
done
eq "fifteen sends over 160 days" "$(ls "$T/outbox" | wc -l)" 15
eq "retention retired the first sends from the ledger" "$(q "SELECT count(*) FROM jobs WHERE campaign = 'k1'")" 0
OUTREACH_NOW=$(at 200) or run
eq "the fold kept every send: five per address" "$(q "SELECT group_concat(rcpt || '=' || sends, ' ') FROM (SELECT * FROM engagement ORDER BY rcpt)")" \
  "delivered@corp.example=5 quiet@corp.example=5 replied@corp.example=5"
eq "the delivery and the reply are on their addresses" \
  "$(q "SELECT last_delivered IS NOT NULL, last_replied IS NOT NULL FROM engagement WHERE rcpt IN ('delivered@corp.example', 'replied@corp.example') ORDER BY rcpt")" "1|0
0|1"
OUTREACH_NOW=$(at 200) or engagement --json >"$T/eng.json"
eq "engagement lists only the address that never engaged" "$(python3 -c "import json; print(' '.join(json.loads(l)['address'] for l in open('$T/eng.json')))")" "quiet@corp.example"
check "with its sends and no engagement" python3 -c "
import json,sys; r=json.loads(open('$T/eng.json').readline())
sys.exit(not (r['sends']==5 and r['last_engaged'] is None and r['first_sent'].startswith('2026-01-05') and r['client']=='acme'))"
eq "a shorter window (60 days) lists the delivered one too (its delivery was day 119), not the one who replied (day 160)" \
  "$(OUTREACH_NOW=$(at 200) or engagement --inactive-days 60 --json | python3 -c "import json,sys; print(' '.join(sorted(json.loads(l)['address'] for l in sys.stdin)))")" \
  "delivered@corp.example quiet@corp.example"
or suppress add quiet@corp.example --client globex >/dev/null
eq "a suppression for another client does not hide it from this one's list" \
  "$(OUTREACH_NOW=$(at 200) or engagement --client acme --json | wc -l)" 1
or suppress remove quiet@corp.example --client globex >/dev/null
eq "min_sends above what was sent lists nobody" "$(OUTREACH_NOW=$(at 200) or engagement --min-sends 6 --json | wc -l)" 0
OUTREACH_NOW=$(at 200) or engagement --export "$T/inactive.csv" >/dev/null
eq "--export writes the CSV suppress import takes" "$(head -1 "$T/inactive.csv"):$(sed -n 2p "$T/inactive.csv" | cut -d, -f1,2)" \
  "address,client,reason,last_sent,last_engaged:quiet@corp.example,acme"
or engagement --bogus 2>"$T/err" >/dev/null
eq "a bad option: exit 64, named" "$?:$(grep -c 'bogus' "$T/err")" "64:1"

# ---- the daily judgement, action = "suppress" --------------------------------------------------
cat >>"$T/conf" <<'EOC'
engagement = { inactive_days = 120; min_sends = 5; action = "suppress"; };
EOC
check "check-config says what it will do, and warns that with no delivery feed only replies count" \
  sh -c "'$OR' -c '$T/conf' check-config | grep -q 'engagement: inactive after 120 days and 5 sends, suppressed; WARNING: no account.s feed'"
OUTREACH_NOW=$(at 201) or run
eq "only the silent address is suppressed, for its client, as inactive" \
  "$(q "SELECT address, client, reason LIKE 'inactive: 5 sends since 2026-01-05%' FROM suppressions")" "quiet@corp.example|acme|1"
eq "status.json counts it" "$(python3 -c "import json; print(json.load(open('$T/reports/status.json'))['engagement'])")" \
  "[{'client': 'acme', 'inactive': 1, 'suppressed': True}]"
check "outreach.prom has outreach_inactive_addresses" grep -qx 'outreach_inactive_addresses{client="acme"} 1' "$T/reports/outreach.prom"
mid=$(q "SELECT message_id FROM jobs WHERE rcpt = 'quiet@corp.example' AND campaign = 'k5'")
printf 'Message-ID: <rep2@corp.example>\r\nFrom: <quiet@corp.example>\r\nIn-Reply-To: %s\r\nSubject: Re: Note 5\r\n\r\nplease keep me\r\n' "$mid" \
  >"$T/spool/inbound/tmp/r2" && mv "$T/spool/inbound/tmp/r2" "$T/spool/inbound/new/r2"
OUTREACH_NOW=$(at 202) or run
eq "a later reply from it is still recorded (its send is retired: by its address, unmatched)" \
  "$(q "SELECT class, from_addr FROM replies WHERE message_id = '<rep2@corp.example>'")" "human|quiet@corp.example"
OUTREACH_NOW=$(at 203) or run
eq "and counts as its engagement" "$(q "SELECT last_replied IS NOT NULL FROM engagement WHERE rcpt = 'quiet@corp.example'")" 1
or suppress remove quiet@corp.example --client acme >/dev/null
eq "suppress remove undoes it" "$(q "SELECT count(*) FROM suppressions")" 0
or suppress import "$T/inactive.csv" >/dev/null
eq "and the exported CSV suppresses it again" "$(q "SELECT address, client FROM suppressions")" "quiet@corp.example|acme"
finish
