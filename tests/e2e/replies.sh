#!/bin/sh
# tests/e2e/replies.sh — replies read from a real mailbox stop sequences
# (doc/design.md §15), against a private Dovecot (tests/peers/dovecot.sh)
# whose Maildir the test writes, on the virtual clock:
#   the first read baselines (mail already there answers nothing);
#   a human reply (In-Reply-To) ends its lead and stops its steps, and a
#   colleague's lead with domain_reply with it, never for a free-mail domain;
#   a reply told only by its From address; an out-of-office pauses its lead
#   to its return date (inclusive cue: the day after, plus one open day);
#   a DSN suppresses the address and ends the lead as bounced; our own mail
#   and a list message change nothing; the user's mail stays unread;
#   a message read twice applies once (a second pull, a UIDVALIDITY reset,
#   a crash at every durable step of a pull); hostile headers are read
#   safely (CR/LF tricks, 8-bit junk, 10,000 References); inbound/ takes a dropped file; a mailbox down makes follow-ups
#   wait and raises mailbox_stale; lead show|pause|resume|stop; reports.
# san: yes
. "$(dirname "$0")/../lib.sh"

PEERS=$TESTS/peers
private_binary
dovecot_up
printf 'secret\n' >"$T/pw"; chmod 600 "$T/pw"

setup "
providers = ( { name = \"dry\"; type = \"file\"; dir = \"outbox\"; } );
senders = ( { name = \"s1\"; from = \"Anna <anna@s1.example>\"; provider = \"dry\"; daily_limit = 1000;
              mailbox = \"anna\"; } );
mailboxes = ( { name = \"anna\"; url = \"imap://127.0.0.1:$P/\"; username = \"anna\"; password_file = \"pw\";
                ca_file = \"dv/cert.pem\"; timeout = 10; addresses = [\"anna@s1.example\"]; } );
clients = ( { name = \"acme\"; } );
replies = { interval = 60; max_age = 1800; };"

mno=0
# put FILE-CONTENT: one message into the Maildir's new/ (Maildir rules: tmp/, then a rename)
put() {
  mno=$((mno + 1))
  printf '%s' "$1" >"$MD/tmp/m$mno" && mv "$MD/tmp/m$mno" "$MD/new/1796029$mno.M${mno}P$$.test"
}
msg() {   # msg FROM SUBJECT [EXTRA_HEADERS] [BODY] [DATE]: a message with CRLF line ends
  printf 'Message-ID: <r%s.%s@mail.example>\r\nDate: %s\r\nFrom: %s\r\nTo: anna@s1.example\r\nSubject: %s\r\n%s\r\n%s\r\n' \
    "$mno" "$$" "${5:-Mon, 07 Dec 2026 12:00:00 +0000}" "$1" "$2" "${3:-}" "${4:-Thanks}"
}
seqjob() {   # seqjob NAME TO [STOP_ON]
  cat >"$T/spool/new/$1.json" <<EOJ
{"client":"acme","campaign":"q1","to":"$2","subject":"Hello","text":"hi",
 "sequence":{"steps":[{"after":"1bd","text":"bump"},{"after":"1bd","text":"last"}]${3:+,\"stop_on\":$3}}}
EOJ
}
DR='["reply","bounce","complaint","unsubscribe","domain_reply"]'

# ---- the first read baselines: mail already there answers nothing --------------------------
put "$(msg 'Jane <jane@corp.example>' 'an old thread' '' 'from last week' 'Fri, 04 Dec 2026 16:00:00 +0000')"
seqjob jane jane@corp.example; seqjob lee lee@corp.example "$DR"; seqjob kim kim@ooo.example
seqjob bob bob@bounce.example; seqjob amy amy@gmail.com; seqjob tom tom@gmail.com "$DR"; seqjob joe joe@drop.example
OUTREACH_NOW=2026-12-07T09:00:00Z or run
eq "step 1 went to all seven leads" "$(q "SELECT count(*) FROM jobs WHERE step = 1 AND state = 'sent'")" 7
eq "the first read set a baseline at the last UID" "$(q "SELECT last_uid, last_success IS NOT NULL FROM mailbox_cursors")" "1|1"
eq "the message already there was not taken for a reply" "$(q "SELECT count(*) FROM replies")" 0
mid() { q "SELECT message_id FROM jobs WHERE rcpt = '$1' AND step = 1"; }

# ---- replies arrive ---------------------------------------------------------------------------
put "$(msg 'Jane Doe <Jane@corp.example>' 'Re: Hello' "In-Reply-To: $(mid jane@corp.example)
References: $(mid jane@corp.example)
")"
put "$(msg 'Kim <kim@ooo.example>' 'Automatic reply: Hello' "Auto-Submitted: auto-replied
In-Reply-To: $(mid kim@ooo.example)
" 'I am out of the office until 16 December 2026 and will answer then.')"
put "$(printf 'Message-ID: <dsn1@mx.bounce.example>\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.bounce.example>\r\nTo: anna@s1.example\r\nSubject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="B1"\r\n\r\n--B1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--B1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.bounce.example\r\n\r\nFinal-Recipient: rfc822; bob@bounce.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n--B1\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: %s\r\nSubject: Hello\r\n--B1--\r\n' "$(mid bob@bounce.example)")"
put "$(msg 'Amy <amy@gmail.com>' 'your note' '' 'Yes, call me.')"
put "$(msg 'Anna <anna@s1.example>' 'Hello' '' 'our own copy')"
put "$(msg 'News <news@list.example>' 'Weekly digest' 'List-Id: <weekly.list.example>
Precedence: list
')"
# hostile: a header folded with CR/LF tricks, a NUL, an overlong field
refs=$(python3 -c 'print(" ".join("<r%d@spam.example>" % i for i in range(10000)))')
put "$(printf 'Message-ID: <evil@x.example>\r\nFrom: "Evil\r\n Bcc: x@y" <evil@corp.example>\r\nSubject: =?UTF-8?B?SGkNCkJjYzogeEB5?= \377\376\r\nReferences: %s\r\nX-Long: %s\r\n\r\nbody\r\n' "$refs" "$(head -c 70000 /dev/zero | tr '\0' a)")"
before=$(cd "$MD" && ls new cur)

OUTREACH_NOW=2026-12-08T09:00:00Z or run 2>"$T/run2.err"
eq "the run read every new message" "$(q "SELECT count(*) FROM replies")" 7
eq "a human reply ends its lead: replied" "$(q "SELECT state FROM leads WHERE rcpt = 'jane@corp.example'")" replied
eq "and stops its remaining steps before any went" \
  "$(q "SELECT group_concat(state) FROM (SELECT state FROM jobs WHERE rcpt = 'jane@corp.example' AND step > 1 ORDER BY step)")" "stopped,stopped"
eq "no follow-up reached the lead who replied" "$(grep -l '^To: <jane@corp.example>' "$T"/outbox/*.eml | wc -l)" 1
eq "matched by In-Reply-To, recorded with its rule" \
  "$(q "SELECT method, class, step FROM replies WHERE from_addr = 'jane@corp.example'")" "in-reply-to|human|1"
eq "a colleague with domain_reply stopped too" "$(q "SELECT state FROM leads WHERE rcpt = 'lee@corp.example'")" stopped
check "saying a colleague replied" sh -c "sqlite3 '$T/spool/state.db' \"SELECT reason FROM leads WHERE rcpt = 'lee@corp.example'\" | grep -q 'colleague replied'"
eq "a reply told by its From address alone" "$(q "SELECT state FROM leads WHERE rcpt = 'amy@gmail.com'"):$(q "SELECT method FROM replies WHERE from_addr = 'amy@gmail.com'")" "replied:from"
eq "a free-mail domain is no company: tom's lead goes on" "$(q "SELECT state FROM leads WHERE rcpt = 'tom@gmail.com'")" active
eq "and tom's step 2 went out" "$(q "SELECT state FROM jobs WHERE rcpt = 'tom@gmail.com' AND step = 2")" sent
eq "an out-of-office pauses its lead" "$(q "SELECT state FROM leads WHERE rcpt = 'kim@ooo.example'")" paused
eq "until the open day after its inclusive return date (Thu 17th, so Fri 18th)" \
  "$(q "SELECT date(hold_until, 'unixepoch') FROM leads WHERE rcpt = 'kim@ooo.example'")" 2026-12-18
eq "its step 2 waits for the hold" \
  "$(q "SELECT state, next_due >= (SELECT hold_until FROM leads WHERE rcpt = 'kim@ooo.example') FROM jobs WHERE rcpt = 'kim@ooo.example' AND step = 2")" "waiting|1"
eq "a DSN suppresses the address" "$(q "SELECT count(*) FROM suppressions WHERE address = 'bob@bounce.example'")" 1
eq "and ends the lead as bounced, matched by the returned Message-ID" \
  "$(q "SELECT l.state, r.method FROM leads l, replies r WHERE l.rcpt = 'bob@bounce.example' AND r.class = 'bounce'")" "bounced|dsn-message-id"
eq "our own mail is ignored" "$(q "SELECT class, effect FROM replies WHERE from_addr = 'anna@s1.example'")" "own|ignored (our own mail)"
eq "a list message is counted, changes nothing" "$(q "SELECT class, job_id IS NULL FROM replies WHERE from_addr = 'news@list.example'")" "auto|1"
eq "the hostile message was read, its address kept clean" "$(q "SELECT count(*) FROM replies WHERE message_id = '<evil@x.example>' AND from_addr NOT LIKE '%' || char(10) || '%' AND from_addr NOT LIKE '%' || char(13) || '%'")" 1
eq "the user's mail is as it was: nothing moved, nothing marked read" "$(cd "$MD" && ls new cur)" "$before"
eq "the replies are counted per step and kind" "$(q "SELECT n FROM counters WHERE kind = 'reply:human:1' AND client = 'acme'")" 2

# ---- read twice, applied once ------------------------------------------------------------------
OUTREACH_NOW=2026-12-08T09:10:00Z or pull --mailbox anna >/dev/null
OUTREACH_NOW=2026-12-08T09:11:00Z or pull --mailbox anna --since 2026-12-01 >/dev/null
eq "a pull and a backfill again apply nothing twice; the backfill adds the older message, answering nothing" \
  "$(q "SELECT count(*) FROM replies"):$(q "SELECT n FROM counters WHERE kind = 'reply:human:1'"):$(q "SELECT count(*) FROM replies WHERE job_id IS NULL AND from_addr = 'jane@corp.example'")" "8:2:1"
put "$(msg 'Ann <ann@nowhere.example>' 'late news')"   # arrives before the folder is renumbered, unread
OUTREACH_NOW=2026-12-08T09:12:00Z or pull --mailbox anna --since 2026-10-01 >/dev/null 2>"$T/err"
eq "a backfill older than retention_days (30) is refused: the ledger no longer knows what it read then" \
  "$?:$(grep -c 'older than retention_days' "$T/err")" "64:1"
rm -f "$MD/dovecot-uidlist"   # Dovecot numbers the folder anew
or mailbox-dump anna INBOX 999999 >"$T/dump"
OUTREACH_NOW=2026-12-08T09:20:00Z or pull --mailbox anna >/dev/null
eq "a renumbered folder: read again since the last full read (the new message too), nothing applied twice, the cursor at its new end" \
  "$(q "SELECT count(*) FROM replies"):$(q "SELECT count(*) FROM replies WHERE from_addr = 'ann@nowhere.example'"):$(q "SELECT n FROM counters WHERE kind = 'reply:human:1'"):$(q "SELECT 'folder=INBOX uidvalidity=' || uidvalidity || ' uidnext=' || (last_uid + 1) FROM mailbox_cursors")" \
  "9:1:2:$(sed -n '1s/ exists=.*//p' "$T/dump")"

# ---- a crash at each durable step of a pull: each reply applied exactly once --------------------
cp -a "$T/spool" "$T/before"
put "$(msg 'Tom <tom@gmail.com>' 'Re: Hello' "In-Reply-To: $(mid tom@gmail.com)
")"
put "$(msg 'Someone <x9@nowhere.example>' 'hello?')"
walked=0 bad=0
want="$(($(q "SELECT count(*) FROM replies") + 2)):$(($(q "SELECT n FROM counters WHERE kind = 'reply:human:1'") + 1)):replied:ok"
for n in 1 2 3 4 5 6 7 8; do
  rm -rf "$T/spool"; cp -a "$T/before" "$T/spool"
  OUTREACH_NOW=2026-12-08T10:00:00Z OUTREACH_FAULT=step:$n "$OR" -c "$T/conf" pull --mailbox anna >/dev/null 2>&1
  rc=$?
  OUTREACH_NOW=2026-12-08T10:01:00Z "$OR" -c "$T/conf" pull --mailbox anna >/dev/null 2>&1
  got="$(q "SELECT count(*) FROM replies"):$(q "SELECT n FROM counters WHERE kind = 'reply:human:1'"):$(q "SELECT state FROM leads WHERE rcpt = 'tom@gmail.com'"):$(q "PRAGMA integrity_check")"
  [ "$got" = "$want" ] || { bad=$((bad + 1)); echo "#   crash at step $n: $got"; }
  walked=$((walked + 1))
  [ "$rc" -eq 0 ] && break   # the pull finished before step n: every step was walked
done
echo "# pull crash steps walked: $walked"
eq "killed at any durable step of a pull, then pulled again: each reply applied once" "$bad" 0
check "the walk reached the end of the pull" test "$rc" -eq 0

# ---- inbound/: a dropped file ---------------------------------------------------------------------
printf 'Message-ID: <drop1@drop.example>\r\nFrom: Joe <joe@drop.example>\r\nIn-Reply-To: %s\r\nSubject: Re: Hello\r\n\r\nNo thanks.\r\n' \
  "$(mid joe@drop.example)" >"$T/spool/inbound/tmp/joe.eml"
mv "$T/spool/inbound/tmp/joe.eml" "$T/spool/inbound/new/joe.eml"
OUTREACH_NOW=2026-12-08T11:00:00Z or run
eq "a file dropped into inbound/new is a reply like any" "$(q "SELECT state FROM leads WHERE rcpt = 'joe@drop.example'"):$(q "SELECT source FROM replies WHERE message_id = '<drop1@drop.example>'")" "replied:inbound"
eq "and moves to inbound/cur" "$(ls "$T/spool/inbound/new"):$(ls "$T/spool/inbound/cur")" ":joe.eml"
# the same reply of jane's, copied into inbound/ by a mail filter as well: recorded, applied once
human0=$(q "SELECT n FROM counters WHERE kind = 'reply:human:1'")
jmid=$(q "SELECT message_id FROM replies WHERE from_addr = 'jane@corp.example' AND method = 'in-reply-to'")
printf 'Message-ID: %s\r\nFrom: <jane@corp.example>\r\nIn-Reply-To: %s\r\nSubject: Re: Hello\r\n\r\nThanks\r\n' "$jmid" \
  "$(mid jane@corp.example)" >"$T/spool/inbound/tmp/copy" && mv "$T/spool/inbound/tmp/copy" "$T/spool/inbound/new/copy"
OUTREACH_NOW=2026-12-08T11:01:00Z or run
eq "a copy of a message another source read is recorded and applied once" \
  "$(q "SELECT count(*) FROM replies WHERE message_id = '$jmid'"):$(q "SELECT n FROM counters WHERE kind = 'reply:human:1'")" "2:$human0"

# ---- the operator's hand, and an out-of-office that ends -----------------------------------------
check "lead show gives the steps and the replies" sh -c "'$OR' -c '$T/conf' lead show jane@corp.example | grep -q 'human.*in-reply-to.*lead replied'"
or lead show kim@ooo.example --json >"$T/kim.json"
check "lead show --json is JSON with the hold" python3 -c "import json,sys; d=json.load(open('$T/kim.json')); sys.exit(d['state'] != 'paused' or not d['hold_until'].startswith('2026-12-18'))"
OUTREACH_NOW=2026-12-17T09:30:00Z or run
eq "the paused lead gets nothing the day before its hold ends" "$(q "SELECT state FROM jobs WHERE rcpt = 'kim@ooo.example' AND step = 2")" waiting
OUTREACH_NOW=2026-12-18T09:30:00Z or run
eq "when the hold ends the lead is active again and its step 2 goes" \
  "$(q "SELECT l.state, j.state FROM leads l JOIN jobs j ON j.seq = l.seq AND j.step = 2 WHERE l.rcpt = 'kim@ooo.example'")" "active|sent"
or lead pause kim@ooo.example --until 2026-12-28 >/dev/null
eq "lead pause --until moves its next step past the date" \
  "$(q "SELECT l.state, date(j.next_due, 'unixepoch') >= '2026-12-28' FROM leads l JOIN jobs j ON j.seq = l.seq AND j.step = 3 WHERE l.rcpt = 'kim@ooo.example'")" "paused|1"
OUTREACH_NOW=2026-12-18T10:00:00Z or lead resume kim@ooo.example >/dev/null
eq "lead resume: active, the step due from its own delay again (1bd after Friday: Monday)" \
  "$(q "SELECT l.state, datetime(j.next_due, 'unixepoch') FROM leads l JOIN jobs j ON j.seq = l.seq AND j.step = 3 WHERE l.rcpt = 'kim@ooo.example'")" "active|2026-12-21 09:30:00"
or lead stop kim@ooo.example --reason "asked by phone" >/dev/null
eq "lead stop ends it and its last step" "$(q "SELECT l.state, j.state, l.reason FROM leads l JOIN jobs j ON j.seq = l.seq AND j.step = 3 WHERE l.rcpt = 'kim@ooo.example'")" "stopped|stopped|operator: asked by phone"
eq "leads --state replied lists the four who replied" "$(or leads --state replied --json | wc -l)" 4
or lead pause nobody@nowhere.example 2>"$T/err" >/dev/null
eq "an address with no lead: exit 65, one line" "$?:$(wc -l <"$T/err")" "65:1"

# ---- a folder dropped from the config holds nothing back -------------------------------------------
OLD=$(sh "$PEERS/dovecot.sh" maildir "$DV" anna Old)
sed -i 's/addresses = \["anna@s1.example"\];/addresses = ["anna@s1.example"]; folders = ["INBOX", "Old"];/' "$T/conf"
OUTREACH_NOW=2026-12-18T10:30:00Z or pull --mailbox anna >/dev/null
eq "a second folder gets its own cursor" "$(q "SELECT count(*) FROM mailbox_cursors WHERE mailbox = 'anna'")" 2
sed -i 's/ folders = \["INBOX", "Old"\];//' "$T/conf"
eq "once the config drops it, the mailbox is as fresh as its folders still read" \
  "$(OUTREACH_NOW=2026-12-18T11:30:00Z or pull --mailbox anna)" "mailbox anna: last read in full 2026-12-18T11:30:00Z"

# ---- reports ---------------------------------------------------------------------------------------
check "status.json has the campaign's reply rate, and step 1's" python3 -c "
import json,sys; d=json.load(open('$T/reports/status.json'))
s=[x for x in d['sequences'] if x['campaign']=='q1'][0]
st=s['steps'][0]
sys.exit(not (s['leads']==7 and s['contacted']==7 and s['replied']==4 and abs(s['reply_rate']-4/7)<1e-3
              and st['step']==1 and st['sent']==7 and st['replies']==4))"
check "status.txt gives the per-step line" grep -q '^    step 1: 7 sent, 4 replied (57.1%)' "$T/reports/status.txt"
check "outreach.prom has outreach_replies_total" grep -q '^outreach_replies_total{client="acme",campaign="q1",step="1",kind="human"} 4' "$T/reports/outreach.prom"
if command -v promtool >/dev/null 2>&1; then
  check "promtool accepts outreach.prom" promtool check metrics <"$T/reports/outreach.prom"
fi

# ---- a mailbox down: follow-ups wait, mailbox_stale ---------------------------------------------------
sh "$PEERS/dovecot.sh" stop "$DV" >/dev/null 2>&1
seqjob max max@later.example
OUTREACH_NOW=2026-12-21T09:00:00Z or run 2>"$T/down.err"
eq "step 1 needs no mailbox: it went" "$(q "SELECT state FROM jobs WHERE rcpt = 'max@later.example' AND step = 1")" sent
check "the failed read is logged, naming the mailbox" grep -q 'event=mailbox mailbox=anna error=' "$T/down.err"
OUTREACH_NOW=2026-12-22T09:00:00Z or run 2>/dev/null
eq "step 2 waits while the mailbox cannot be read, saying why" \
  "$(q "SELECT state, last_error LIKE '%not read lately%' FROM jobs WHERE rcpt = 'max@later.example' AND step = 2")" "waiting|1"
eq "nothing but step 1 went to that lead" "$(grep -l '^To: <max@later.example>' "$T"/outbox/*.eml | wc -l)" 1
check "mailbox_stale:anna is raised with the last error" python3 -c "
import json,sys; d=json.load(open('$T/reports/status.json'))
a=[x for x in d['alerts'] if x['name']=='mailbox_stale:anna']
sys.exit(not a or 'last error' not in a[0]['detail'])"
finish
