#!/bin/sh
# tests/e2e/pg-migrate.sh — README's way of moving a host's SQLite ledger onto
# the PostgreSQL store, done step by step on a real spool and a private
# PostgreSQL 15 on loopback:
#   a SQLite host has sent three jobs over two days (its sender's cap), holds
#   three waiting for tomorrow (one to a suppressed address) and one job held
#   in doubt;
#   the move: suppress export; the waiting jobs' files from defer/ back into
#   new/; the store group added to the config; init (the spool's key kept, so
#   the links already sent still work); suppress import;
#   the same move by `store migrate` on a second host (run twice: nothing more the
#   second time), and store migrate refused on a SQLite config, while the old
#   ledger has a job a run holds (75, nothing copied), and with no ledger there;
#   then the next day's tick on PostgreSQL sends the two and nothing else
#   (none of the sent ones again, the held one left to the operator), the
#   suppression holds, and an unsubscribe link from a message sent before the
#   move is accepted by the new store.
# san: yes
. "$(dirname "$0")/../lib.sh"

pg_up
# scenario HOST MODE: a SQLite host's history, moved onto the shared ledger by README's steps
# (MODE steps) or by store migrate (MODE command), then the next day on PostgreSQL
scenario() {
H=$1 MODE=$2
mkdir -p "$T/$H"
cat >"$T/$H/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
unsubscribe = { url = "https://unsub.example/u"; };
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 2; } );
EOF
orc $H init || notok "[$MODE] the SQLite host: init"
orc $H suppress add gone@example.org --reason "asked by phone" || notok "suppress add"
for i in 1 2 3 4 5; do
  printf '{"id": "m%d", "client": "acme", "to": "m%d@example.org", "subject": "Hello", "text": "Hi"}\n' "$i" "$i"
done >"$T/jobs.jsonl"
printf '{"id": "g1", "client": "acme", "to": "gone@example.org", "subject": "Hello", "text": "Hi"}\n' >>"$T/jobs.jsonl"
orc $H enqueue --format jsonl "$T/jobs.jsonl" >/dev/null || notok "enqueue"
OUTREACH_NOW=2027-04-05T10:00:00Z orc $H run >/dev/null 2>&1
printf '{"id": "h1", "client": "acme", "to": "h1@example.org", "subject": "Hello", "text": "Hi"}\n' | orc $H enqueue - >/dev/null
OUTREACH_NOW=2027-04-06T10:00:00Z OUTREACH_FAULT=after-intent orc $H run >/dev/null 2>&1
OUTREACH_NOW=2027-04-06T10:05:00Z orc $H run >/dev/null 2>&1   # recovery: h1 held
eq "[$MODE] before the move: 3 sent on SQLite (2, then 1 beside the held one's kept unit), 1 held, 3 waiting in defer/ (g1 too: its suppression is judged at its claim)" \
  "$(qd $H "SELECT group_concat(state || '=' || n, ' ') FROM (SELECT state, count(*) n FROM jobs GROUP BY state ORDER BY state)"):$(nf $H defer)" \
  "held=1 sent=3 waiting=3:3"
waiting=$(qd $H "SELECT group_concat(producer_id, ' ') FROM (SELECT producer_id FROM jobs WHERE state = 'waiting' AND producer_id <> 'g1' ORDER BY producer_id)")
held=$(qd $H "SELECT producer_id FROM jobs WHERE state = 'held'")
token=$(sed -n 's/^List-Unsubscribe:.*?t=\([A-Za-z0-9_.-]*\)>.*/\1/p' "$T"/$H/outbox/*.eml | head -1)
before=$(ls "$T/$H/outbox" | grep -c '\.eml$')

# --- the move: README's steps, or store migrate ---------------------------------------------------------------
if [ "$MODE" = steps ]; then
orc $H suppress export "$T/supp.csv" 2>/dev/null || notok "suppress export"
for f in "$T"/$H/spool/defer/*.json; do mv "$f" "$T/$H/spool/new/"; done
fi
printf 'store = { type = "postgresql"; conninfo = "%s"; password_file = "../pw"; host_name = "%s"; };\n' "$pg_ci" "$H" >>"$T/$H/conf"
sed -i 's/daily_limit = 2;/daily_limit = 20;/' "$T/$H/conf"   # and the new day's plan: a larger cap
orc $H init; rc=$?
eq "[$MODE] init on PostgreSQL keeps the spool's key" "$rc:$(pgsql "SELECT count(*) FROM hosts WHERE name = '$H'")" "0:1"
if [ "$MODE" = steps ]; then
orc $H suppress import "$T/supp.csv" >/dev/null; rc=$?
eq "[$MODE] suppress import of the export" "$rc:$(orc $H suppress list | cut -d, -f1-4 | tail -n +2)" '0:gone@example.org,,"asked by phone",operator'
else
out=$(orc $H store migrate 2>&1); rc=$?
eq "[$MODE] store migrate says what it did" "$rc:$out" \
  "0:store migrate: 1 of 1 suppressions added; 3 waiting jobs moved from defer/ to new/ (the next tick takes them in); 1 held job left in held/; $T/$H/spool/state.db stays as an archive"
eq "[$MODE] ... the suppression is in the shared ledger with its reason and source" \
  "$(orc $H suppress list | cut -d, -f1-4 | tail -n +2)" 'gone@example.org,,"asked by phone",operator'
out=$(orc $H store migrate 2>&1); rc=$?
eq "[$MODE] ... run again, it adds and moves nothing" "$rc:$out" \
  "0:store migrate: 0 of 1 suppressions added; 0 waiting jobs moved from defer/ to new/ (the next tick takes them in); 1 held job left in held/; $T/$H/spool/state.db stays as an archive"
fi

# --- the next day on PostgreSQL ---------------------------------------------------------------------------
OUTREACH_NOW=2027-04-07T10:00:00Z orc $H run >/dev/null 2>&1; rc=$?
eq "[$MODE] the next day's tick on PostgreSQL sends the two that waited ($waiting), g1 suppressed by the imported list" \
  "$rc:$(pgsql "SELECT string_agg(producer_id, ' ' ORDER BY producer_id) FROM jobs WHERE state = 'sent'"):$(pgsql "SELECT state FROM jobs WHERE producer_id = 'g1'")" "0:$waiting:suppressed"
eq "[$MODE] ... and nothing else: two more messages, the held one ($held) not among them" \
  "$(ls "$T/$H/outbox" | grep -c '\.eml$'):$(pgsql "SELECT count(*) FROM jobs WHERE producer_id = '$held'")" "$((before + 2)):0"
ls "$T/$H/outbox" | grep '\.eml$' | sed 's/\.eml$//' | sort | uniq -d >"$T/dups"
eq "[$MODE] ... no file name twice" "$(wc -l <"$T/dups")" 0
eq "[$MODE] the held job's file stays in held/ for the operator" "$(nf $H held)" 1
printf '{"id": "g2", "client": "acme", "to": "gone@example.org", "subject": "Again", "text": "Hi"}\n' >"$T/$H/spool/tmp/g2.json"
mv "$T/$H/spool/tmp/g2.json" "$T/$H/spool/new/g2.json"
OUTREACH_NOW=2027-04-07T11:00:00Z orc $H run >/dev/null 2>&1
eq "[$MODE] the imported suppression holds on PostgreSQL" "$(pgsql "SELECT state FROM jobs WHERE producer_id = 'g2'")" suppressed
[ -n "$token" ] || notok "[$MODE] a message sent on SQLite carries an unsubscribe token"
orc $H unsubscribe "$token" >/dev/null; rc=$?
eq "[$MODE] an unsubscribe link from before the move is accepted (the key is the same)" "$rc:$(pgsql "SELECT count(*) FROM suppressions WHERE reason = 'unsubscribed'")" "0:1"
}
scenario h steps
# a fresh shared ledger for the second way (its spool has its own key)
pgsql "TRUNCATE $(pgsql "SELECT string_agg(tablename, ', ') FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'outreach_schema'")" >/dev/null
scenario m command
sed '/^store = /d' "$T/m/conf" >"$T/m/conf-lite"
out=$("$OR" -c "$T/m/conf-lite" store migrate 2>&1); rc=$?
eq "store migrate with a SQLite config: exit 78, one line saying what to do" "$rc:$(printf '%s\n' "$out" | wc -l):$(printf '%s' "$out" | grep -c 'add the store group')" "78:1:1"
# a SQLite ledger with a job a run still holds (its copy, one job set claimed as a run dead
# mid-claim leaves it): refused as temporary, nothing copied; a ledger that is not there: one line
cp "$T/m/spool/state.db" "$T/m/held-run.db"
qm() { sqlite3 -batch -noheader "$T/m/held-run.db" "$1"; }
qm "UPDATE jobs SET state = 'claimed' WHERE producer_id = 'm1'"
pgsql "TRUNCATE suppressions" >/dev/null
printf 'state = "%s";\n' "$T/m/held-run.db" | cat - "$T/m/conf" >"$T/m/conf-held"
out=$("$OR" -c "$T/m/conf-held" store migrate 2>&1); rc=$?
eq "store migrate while the SQLite ledger has a claimed job: exit 75, one line, no suppression copied" \
  "$rc:$(printf '%s\n' "$out" | wc -l):$(printf '%s' "$out" | grep -c '1 job of .* is claimed or sending'):$(pgsql "SELECT count(*) FROM suppressions")" "75:1:1:0"
printf 'state = "%s";\n' "$T/m/nothing.db" | cat - "$T/m/conf" >"$T/m/conf-none"
out=$("$OR" -c "$T/m/conf-none" store migrate 2>&1); rc=$?
eq "store migrate with no SQLite ledger there: exit 74, one line naming it" \
  "$rc:$(printf '%s\n' "$out" | wc -l):$(printf '%s' "$out" | grep -c 'nothing.db')" "74:1:1"
finish
