#!/bin/sh
# tests/e2e/pg-ingest.sh — jobs taken into the shared PostgreSQL ledger, by two
# hosts (two configs and spools, one private PostgreSQL 15 on loopback):
#   both hosts run at once over their own new/: every job is one row with its
#   file's exact bytes as its body and its host, the same file dropped on both
#   hosts is one waiting job and one duplicate of it, a bad file is a bad row
#   and stays in that host's bad/ with its .err, and both new/ end empty;
#   jobs (table and --json, with --state and --client) lists every host's
#   jobs from either host, in the shape SQLite's ledger gives;
#   a crash at every durable step of an ingest (OUTREACH_FAULT=step:N: the
#   commit, each file's removal, new/'s fsync, the arrivals list forgotten),
#   then the next run: each job is in the ledger exactly once, none is lost,
#   new/ is empty and this host's arrivals list too; the walk ends at the
#   first N the run outlives, so every step was walked;
#   a sequence (follow-ups) is bad for now, its file kept in bad/;
#   the database down: the run exits 75 and the file stays in new/, taken in
#   by the next run once it is back;
#   (the sender has no send today: nothing is sent; pg-send.sh sends.)
# san: yes
. "$(dirname "$0")/../lib.sh"

pg_up
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
# the sender's warm-up starts in 2099: it has no send today, so the jobs wait (this
# script is about taking jobs in; tests/e2e/pg-send.sh sends them)
for hn in hA hB hC; do
  pg_host $hn "" "" 'warmup = { start = "2099-01-01"; first = 1; days = 10; };'
  ph $hn init --key "$T/key" || notok "$hn: init"
done
# drop HOST NAME JSON: a job file written into HOST's new/ the way producers do (tmp/, then rename)
drop() {
  printf '%s\n' "$3" >"$T/$1/spool/tmp/$2" && mv "$T/$1/spool/tmp/$2" "$T/$1/spool/new/$2"
}
job() {   # job ID [CLIENT] [EXTRA]: a job's JSON with producer id ID
  printf '{"id": "%s", "client": "%s", "to": "%s@example.org", "subject": "Hello {{ name }}", "text": "Hi {{ name }}", "vars": {"name": "N%s"}%s}' \
    "$1" "${2:-acme}" "$1" "$1" "${3:-}"
}
nnew() { ls "$T/$1/spool/new" | grep -c '\.json$'; }

# --- two hosts at once ---------------------------------------------------------------------------
for i in $(seq 1 20); do drop hA "a$i.json" "$(job "a$i" acme)"; done
for i in $(seq 1 10); do drop hB "b$i.json" "$(job "b$i" beta)"; done
drop hA shared.json "$(job shared acme)"
drop hB shared.json "$(job shared acme)"
drop hA broken.json '{"id": "broken", "client": "acme", "to": "nobody"'
mkdir -p "$T/orig"; cp "$T"/hA/spool/new/*.json "$T"/hB/spool/new/b*.json "$T/orig/"
(ph hA run >"$T/runA.out" 2>&1; echo $? >"$T/runA.rc") &
(ph hB run >"$T/runB.out" 2>&1; echo $? >"$T/runB.rc") &
wait
eq "both hosts' runs exit 0" "$(cat "$T/runA.rc") $(cat "$T/runB.rc")" "0 0"
eq "both new/ are empty" "$(nnew hA):$(nnew hB)" "0:0"
eq "31 waiting jobs (20 + 10 + the shared one), 1 duplicate, 1 bad" \
  "$(pgsql "SELECT count(*) FILTER (WHERE state = 'waiting'), count(*) FILTER (WHERE state = 'duplicate'), count(*) FILTER (WHERE state = 'bad'), count(*) FROM jobs")" \
  "31|1|1|33"
eq "the duplicate is of the shared job's row" \
  "$(pgsql "SELECT count(*) FROM jobs d JOIN jobs j ON j.id = d.dup_of WHERE d.state = 'duplicate' AND j.producer_id LIKE '%shared' AND j.state = 'waiting'")" 1
eq "each job's host is the one that took it in" \
  "$(pgsql "SELECT count(*) FILTER (WHERE host = 'hA' AND producer_id LIKE '%a%'), count(*) FILTER (WHERE host = 'hB' AND producer_id LIKE '%b%') FROM jobs WHERE state = 'waiting' AND producer_id NOT LIKE '%shared'")" "20|10"
# every body is its file, byte for byte (md5 of the body against the file's)
bodies_ok=0
for f in "$T"/orig/a*.json "$T"/orig/b*.json; do
  p=$(basename "$f" .json)
  got=$(pgsql "SELECT md5(body) FROM jobs WHERE producer_id LIKE '%$p' AND producer_id NOT LIKE '%_$p' AND state = 'waiting'")
  [ "$got" = "$(md5sum <"$f" | cut -d' ' -f1)" ] && bodies_ok=$((bodies_ok + 1))
done
eq "each of the 30 bodies is its file's exact bytes" "$bodies_ok" 30
bad_id=$(pgsql "SELECT id FROM jobs WHERE state = 'bad'")
check "the bad file is in hA's bad/ under its ledger id, with its .err" \
  test -f "$T/hA/spool/bad/$bad_id.json" -a -f "$T/hA/spool/bad/$bad_id.err"
eq "hB has no bad file" "$(ls "$T/hB/spool/bad" | wc -l)" 0
eq "nothing was sent by either host (no sender has a send today)" "$(ls "$T/hA/outbox" "$T/hB/outbox" 2>/dev/null | grep -c eml)" 0
eq "no arrivals are left listed" "$(pgsql 'SELECT count(*) FROM arrivals')" 0

# --- jobs from either host ----------------------------------------------------------------------------
out=$(ph hB jobs --state waiting --client acme); rc=$?
eq "jobs on hB lists hA's jobs too (--state waiting --client acme: 21 rows and the header)" \
  "$rc:$(printf '%s\n' "$out" | wc -l)" "0:22"
check "jobs: the header as SQLite's" sh -c "printf '%s\n' \"\$1\" | head -1 | grep -q '^ID  *STATE  *CLIENT  *CAMPAIGN  *TO  *SENDER  *TRY  *UPDATED  *LAST ERROR$'" - "$out"
ph hA jobs --json --limit 100 >"$T/jobs.json"
python3 - "$T/jobs.json" <<'EOF' && ok "jobs --json: 33 objects, SQLite's keys in SQLite's order, RFC 3339 times" || notok "jobs --json: 33 objects, SQLite's keys in SQLite's order, RFC 3339 times"
import json, re, sys
rows = [json.loads(l, object_pairs_hook=list) for l in open(sys.argv[1])]
keys = ["id", "state", "client", "campaign", "to", "sender", "account", "attempts", "created_at", "updated_at",
        "sent_at", "message_id", "provider_id", "last_error"]
assert len(rows) == 33, len(rows)
for r in rows:
    assert [k for k, _ in r] == keys, r
    d = dict(r)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d["created_at"]), d
    assert d["attempts"] == 0 and d["sent_at"] is None
EOF

# --- a crash at every durable step of an ingest ------------------------------------------------------------
walked=0 survived=0 lost=0 twice=0
for n in $(seq 1 40); do
  for k in 1 2 3; do drop hC "c$n-$k.json" "$(job "c$n-$k" gamma)"; done
  drop hC "bad$n.json" '{"client": "gamma"}'
  OUTREACH_FAULT=step:$n ph hC run >/dev/null 2>&1; rc=$?
  ph hC run >/dev/null 2>&1 || notok "step $n: the run after the crash exits 0"
  for k in 1 2 3; do
    c=$(pgsql "SELECT count(*) FROM jobs WHERE producer_id LIKE '%c$n-$k' AND state = 'waiting'")
    [ "$c" = 0 ] && lost=$((lost + 1)); [ "$c" -gt 1 ] && twice=$((twice + 1))
  done
  [ "$(nnew hC)" = 0 ] || notok "step $n: hC's new/ is empty after the next run" "$(ls "$T/hC/spool/new")"
  [ "$(pgsql "SELECT count(*) FROM arrivals WHERE host = 'hC'")" = 0 ] || notok "step $n: hC's arrivals list is empty"
  walked=$n
  if [ $rc -ne 137 ]; then survived=1; break; fi
done
eq "a crash at each durable step, then a run: no job lost" "$lost" 0
eq "... and none taken in twice" "$twice" 0
eq "... nor recorded again as a duplicate of itself" "$(pgsql "SELECT count(*) FROM jobs WHERE state = 'duplicate' AND host = 'hC'")" 0
eq "... and every bad file a bad row, each once" "$(pgsql "SELECT count(*) FROM jobs WHERE state = 'bad' AND host = 'hC'")" "$walked"
if [ $survived = 1 ] && [ "$walked" -ge 4 ]; then ok "the walk reached a run past its last durable step ($walked steps)"
else notok "the walk reached a run past its last durable step" "walked=$walked survived=$survived"; fi

# --- a sequence, for now -------------------------------------------------------------------------------------
drop hA seq.json "$(job seq1 acme ', "sequence": {"steps": [{"after": "2d", "text": "Again"}]}')"
ph hA run >/dev/null 2>&1
eq "a sequence is bad for now, with the reason" \
  "$(pgsql "SELECT count(*) FROM jobs WHERE state = 'bad' AND last_error LIKE 'sequences (follow-ups) are not built on the PostgreSQL store yet%'")" 1

# --- the database down ----------------------------------------------------------------------------------------
sh "$TESTS/peers/postgres.sh" stop "$T/db"
drop hA late.json "$(job late acme)"
out=$(ph hA run 2>&1); rc=$?
if [ $rc -eq 75 ] && [ "$(nnew hA)" = 1 ]; then ok "the database down: the run exits 75, the file stays in new/"
else notok "the database down: the run exits 75, the file stays in new/" "rc=$rc new=$(nnew hA) $out"; fi
sh "$TESTS/peers/postgres.sh" start "$T/db" "$pg_port" >"$T/db.out" 2>&1 || notok "PostgreSQL starts again" "$(tail -5 "$T/db.out")"
ph hA run >/dev/null 2>&1
eq "... and the next run takes it in once it is back" \
  "$(nnew hA):$(pgsql "SELECT count(*) FROM jobs WHERE producer_id LIKE '%late' AND state = 'waiting'")" "0:1"
exit $nfail
