#!/bin/sh
# Sequences (doc/design.md §15) on the virtual clock: follow-ups on business
# days, threaded, a suppression stopping the rest, a bad step making the
# whole job bad.
# san: yes
. "$(dirname "$0")/../lib.sh"
setup '
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; replies = "none"; } );
clients = ( { name = "acme"; holidays = ["2026-12-14"]; } );'
seqjob() {   # seqjob FILE TO
  cat >"$T/spool/new/$1" <<EOJ
{"client":"acme","campaign":"q1","to":"$2","subject":"Hello {{ n }}","text":"hi","vars":{"n":"Jane"},
 "window":{"days":"Mon-Fri","hours":"09:00-17:00","tz":"UTC"},
 "sequence":{"steps":[{"after":"3bd","text":"bump {{ n }}"},{"after":"2bd","subject":"Closing","text":"last"}]}}
EOJ
}
seqjob a.json jane@corp.example
seqjob b.json joe@other.example
OUTREACH_NOW=2026-12-07T09:00:00Z or run
eq "step 1 of both leads sent on Monday" "$(q "SELECT count(*) FROM jobs WHERE step = 1 AND state = 'sent'")" 2
eq "step 2 waits, due the third business day after (Thursday)" \
  "$(q "SELECT DISTINCT datetime(next_due, 'unixepoch') FROM jobs WHERE step = 2 AND state = 'waiting'")" "2026-12-10 09:00:00"
eq "step 3 is pending until step 2 goes" "$(q "SELECT count(*) FROM jobs WHERE step = 3 AND state = 'pending'")" 2
eq "follow-ups hold their job in the ledger, no file in defer/" "$(nfiles defer)" 0
eq "plan forecasts the follow-ups too: four to go, the last on its earliest day (the holiday skipped)" \
  "$(OUTREACH_NOW=2026-12-07T10:00:00Z or plan --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["campaigns"][0]; print(c["pending"], c["finish"])')" \
  "4 2026-12-15T09:00:00Z"
or suppress add joe@other.example --client acme --reason replied >/dev/null
eq "a suppression stops every remaining step of that lead at once" \
  "$(q "SELECT group_concat(state) FROM (SELECT state FROM jobs WHERE rcpt = 'joe@other.example' AND step > 1 ORDER BY step)")" "stopped,stopped"
eq "the lead records why" "$(q "SELECT state FROM leads WHERE rcpt = 'joe@other.example'")" replied
OUTREACH_NOW=2026-12-10T09:00:30Z or run
s2=$(q "SELECT id FROM jobs WHERE rcpt = 'jane@corp.example' AND step = 2")
m1=$(q "SELECT message_id FROM jobs WHERE rcpt = 'jane@corp.example' AND step = 1")
eq "step 2 sent on Thursday" "$(q "SELECT state FROM jobs WHERE id = '$s2'")" sent
check "step 2 is a reply in the thread: Re: the first subject" grep -q '^Subject: Re: Hello Jane' "$T/outbox/$s2.eml"
check "step 2 answers step 1 (In-Reply-To)" grep -qF "In-Reply-To: $m1" "$T/outbox/$s2.eml"
eq "no message went to the lead that was stopped" "$(grep -l 'joe@other.example' "$T"/outbox/*.eml | wc -l)" 1
eq "step 3 is due two business days later, the client's holiday (Monday) left out" \
  "$(q "SELECT datetime(next_due, 'unixepoch') FROM jobs WHERE rcpt = 'jane@corp.example' AND step = 3")" "2026-12-15 09:00:00"
OUTREACH_NOW=2026-12-15T09:00:40Z or run
s3=$(q "SELECT id FROM jobs WHERE rcpt = 'jane@corp.example' AND step = 3")
check "step 3 has a subject of its own" grep -q '^Subject: Closing' "$T/outbox/$s3.eml"
eq "the lead that got every step is finished" "$(q "SELECT state FROM leads WHERE rcpt = 'jane@corp.example'")" finished
cat >"$T/spool/new/c.json" <<'EOJ'
{"client":"acme","to":"x@corp.example","subject":"Hi","text":"hi",
 "sequence":{"steps":[{"after":"3bd","text":"bump {{ missing }}"}]}}
EOJ
OUTREACH_NOW=2026-12-15T10:00:00Z or run
check "a bad step makes the whole job bad, naming the step" grep -q 'sequence.steps\[0\]' "$T/spool/bad/"*.err
cat >"$T/spool/new/d.json" <<'EOJ'
{"client":"acme","to":"y@corp.example","subject":"Hi","text":"hi","sequence":{"steps":[{"after":"soon","text":"x"}]}}
EOJ
OUTREACH_NOW=2026-12-15T10:01:00Z or run
eq "an 'after' that is not Nbd, Nd or Nh is refused" "$(grep -l 'Nbd, Nd or Nh' "$T/spool/bad/"*.err | wc -l)" 1
# never send blind: a sender whose replies are read nowhere, and that does not
# say replies = "none", holds its follow-ups
newconf blind '
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; } );'
cat >"$T/blind/spool/new/a.json" <<'EOJ'
{"client":"acme","to":"kim@corp.example","subject":"Hi","text":"hi","sequence":{"steps":[{"after":"1d","text":"bump"}]}}
EOJ
OUTREACH_NOW=2026-12-07T09:00:00Z "$OR" -c "$T/blind/conf" run
OUTREACH_NOW=2026-12-08T09:05:00Z "$OR" -c "$T/blind/conf" run
qb() { sqlite3 -batch -noheader "$T/blind/spool/state.db" "$1"; }
eq "a follow-up from a sender with no mailbox waits, saying why" \
  "$(qb "SELECT state, last_error LIKE '%has no mailbox%' FROM jobs WHERE step = 2")" "waiting|1"
eq "and nothing went out for it" "$(ls "$T/blind/outbox" | wc -l)" 1
# lead stop before the first step went: it never goes (cancelled to failed/, the reason kept)
cat >"$T/spool/new/e.json" <<'EOJ'
{"client":"acme","to":"late@corp.example","subject":"Hi","text":"hi","not_before":"2026-12-20T09:00:00Z",
 "sequence":{"steps":[{"after":"1bd","text":"bump"}]}}
EOJ
OUTREACH_NOW=2026-12-15T11:00:00Z or run
or lead stop late@corp.example --reason "met at a fair" >/dev/null
OUTREACH_NOW=2026-12-21T09:00:00Z or run
eq "lead stop cancels a first step not yet sent, and its follow-up" \
  "$(q "SELECT group_concat(state || ':' || coalesce(last_error, ''), ' / ') FROM (SELECT * FROM jobs WHERE rcpt = 'late@corp.example' ORDER BY step)")" \
  "failed:stopped: operator: met at a fair / stopped:stopped: operator: met at a fair"
eq "nothing went to that lead" "$(grep -l '^To: <late@corp.example>' "$T"/outbox/*.eml 2>/dev/null | wc -l)" 0
[ "$nfail" -eq 0 ]
