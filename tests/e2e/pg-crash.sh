#!/bin/sh
# tests/e2e/pg-crash.sh — the PostgreSQL store's send path killed at each of
# its durable steps, and the database stopped under two sending hosts (one
# private PostgreSQL 15 on loopback, two hosts):
#   host A is killed at durable step 1, 2, 3, ... of one run after another
#   (OUTREACH_FAULT=step:N: the heartbeats, the ingest's steps, each claim,
#   intent and outcome commit, the run's end, the alerts' evaluation), each
#   run taking up where the last left off, until
#   a run outlives its N, then once after a transfer before its outcome (the
#   message went, the ledger does not know); once every lease has lapsed (waited for in the
#   database) host B drains the rest; then what the provider received (a
#   recorder: one line a delivery, whichever host) is audited against the
#   ledger: no job delivered twice, every sent job delivered, every job sent
#   or held, a held job only where a kill
#   came between its intent and its outcome, and the day counter equal to
#   the sent and held jobs (a held job keeps its unit);
#   the database stopped (immediate, as a crash) while both hosts send
#   through a slow provider: the runs exit 75 (temporary) or 0, nothing is
#   sent twice, and once it is back and the leases have lapsed the hosts
#   drain the backlog with the same audit;
#   a host cut off from the database mid-run (tests/peers/netcut.py, a relay
#   that drops every byte with the connections left open): it gives up with
#   75 within a minute instead of hanging, the other host goes on sending
#   meanwhile (the server ends the cut host's open transaction, so its locks
#   do not hold the others), and once healed the two drain it, audited.
. "$(dirname "$0")/../lib.sh"

pg_up
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
host() {   # host NAME PROVIDER
  mkdir -p "$T/$1"
  cat >"$T/$1/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
providers = ( $2 );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "p"; daily_limit = 10000; } );
store = { type = "postgresql"; conninfo = "$pg_ci"; password_file = "../pw"; host_name = "$1"; lease = 31; };
EOF
  "$OR" -c "$T/$1/conf" init --key "$T/key" || notok "$1: init"
}
drop() {   # drop HOST PREFIX N
  for i in $(seq 1 "$3"); do
    printf '{"id": "%s%s", "client": "acme", "to": "%s%s@example.org", "subject": "Hello", "text": "Hi"}\n' \
      "$2" "$i" "$2" "$i" >"$T/$1/spool/tmp/$2$i.json" && mv "$T/$1/spool/tmp/$2$i.json" "$T/$1/spool/new/$2$i.json"
  done
}

# --- host A killed at each durable step -----------------------------------------------------------------------------
: >"$T/deliveries"
prov=$(pg_recorder 0)
host hA "$prov"; host hB "$prov"
drop hA j 30
walked=0 outlived=0
for n in $(seq 1 30); do
  OUTREACH_FAULT=step:$n "$OR" -c "$T/hA/conf" run --max 3 >/dev/null 2>&1; rc=$?
  walked=$n
  if [ $rc -ne 137 ]; then outlived=1; break; fi
done
if [ $outlived = 1 ] && [ $walked -ge 8 ]; then ok "host A killed at steps 1 to $((walked - 1)), step $walked outlived"
else notok "host A killed at each step until a run outlives it" "walked=$walked outlived=$outlived"; fi
# and once after the transfer, before its outcome: the message went, the ledger does not know
# (a job of its own: the walk may have sent all it could reach)
drop hA late 1
OUTREACH_FAULT=after-send "$OR" -c "$T/hA/conf" run --max 1 >/dev/null 2>&1; rc=$?
eq "host A killed after a transfer, before its outcome" "$rc" 137
killed_in_doubt=$(pgsql "SELECT count(*) FROM jobs WHERE state = 'sending'")
pg_leases_lapse || notok "the leases lapse within 60 s"
pg_drain "$T/hB/conf"
eq "host B's runs exit 0" "$(cat "$T/drain.log" 2>/dev/null)" ""
rm -f "$T/drain.log"
pg_audit "after the step walk"
eq "the held jobs are those killed between intent and outcome" "$(pgsql "SELECT count(*) FROM jobs WHERE state = 'held'")" "$killed_in_doubt"
eq "31 jobs, all in the ledger once" "$(pgsql "SELECT count(*), count(DISTINCT producer_id) FROM jobs")" "31|31"

# --- the database stopped under two sending hosts ---------------------------------------------------------------------
pgsql "TRUNCATE jobs, arrivals, runs, day_counts, attempts"
: >"$T/deliveries"
prov=$(pg_recorder 0.05)
host hA "$prov"; host hB "$prov"
drop hA d 40; drop hB e 40
for h in hA hB; do ("$OR" -c "$T/$h/conf" run >"$T/$h.run1" 2>&1; echo $? >"$T/$h.rc1") & done
# stop it once sending is under way (a condition, not a guess)
i=0; until [ "$(pgsql "SELECT count(*) FROM jobs WHERE state = 'sent'" 2>/dev/null || echo 0)" -ge 10 ] || [ $i -gt 300 ]; do i=$((i + 1)); sleep 0.05; done
sh "$TESTS/peers/postgres.sh" kill "$T/db"
wait
rcs="$(cat "$T/hA.rc1") $(cat "$T/hB.rc1")"
case "$rcs" in
  "75 75"|"75 0"|"0 75") ok "the database stopped mid-run: the runs exit 75 (temporary) [$rcs]" ;;
  *) notok "the database stopped mid-run: the runs exit 75 (temporary)" "rcs=$rcs $(tail -2 "$T/hA.run1" "$T/hB.run1")" ;;
esac
sh "$TESTS/peers/postgres.sh" start "$T/db" "$pg_port" >"$T/db.out" 2>&1 || notok "PostgreSQL starts again" "$(tail -5 "$T/db.out")"
pg_leases_lapse || notok "the leases lapse within 60 s"
pg_drain "$T/hA/conf" "$T/hB/conf"
eq "the drain's runs exit 0" "$(cat "$T/drain.log" 2>/dev/null)" ""
rm -f "$T/drain.log"
eq "80 jobs in the ledger once each" "$(pgsql "SELECT count(*), count(DISTINCT producer_id) FROM jobs")" "80|80"
pg_audit "after the database came back"
# --- a host cut off from the database while the other goes on ---------------------------------------------------------
pgsql "TRUNCATE jobs, arrivals, runs, day_counts, attempts"
: >"$T/deliveries"
prov=$(pg_recorder 0.1)
relay=$(sh "$TESTS/peers/postgres.sh" port)
python3 "$TESTS/peers/netcut.py" "$relay" "$pg_port" "$T/netcut.pid" >"$T/netcut.out" 2>&1 &
pids="$pids $!"
i=0; until [ -s "$T/netcut.pid" ] || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.05; done
host hB "$prov"
host hC "$prov"
sed -i "s/port=$pg_port /port=$relay /" "$T/hC/conf"   # hC reaches the database through the relay
grep -q "port=$relay " "$T/hC/conf" || notok "hC's conninfo goes through the relay"
drop hC c 30; drop hB f 30
start=$(date +%s)
("$OR" -c "$T/hC/conf" run >"$T/hC.run" 2>&1; echo $? >"$T/hC.rc") &
pidC=$!
("$OR" -c "$T/hB/conf" run >"$T/hB.run" 2>&1; echo $? >"$T/hB.rc") &
pidB=$!
i=0; until [ "$(wc -l <"$T/deliveries")" -ge 6 ] || [ $i -gt 400 ]; do i=$((i + 1)); sleep 0.05; done
kill -USR1 "$(cat "$T/netcut.pid")"
cut=$(date +%s) at_cut=$(wc -l <"$T/deliveries")
i=0; until [ -s "$T/hC.rc" ] || [ $i -gt 1200 ]; do i=$((i + 1)); sleep 0.1; done
gone=$(date +%s) at_gone=$(wc -l <"$T/deliveries")
wait $pidC $pidB   # (not a bare wait: the relay runs in the background too)
if [ "$(cat "$T/hC.rc" 2>/dev/null)" = 75 ] && [ $((gone - cut)) -le 60 ]; then
  ok "hC cut off mid-run exits 75 in $((gone - cut)) s, not hanging on its socket"
else notok "hC cut off mid-run exits 75 within 60 s" "rc=$(cat "$T/hC.rc" 2>/dev/null) after $((gone - cut)) s: $(tail -2 "$T/hC.run")"; fi
if [ "$at_gone" -gt "$at_cut" ] && [ "$(cat "$T/hB.rc")" = 0 ]; then
  ok "hB went on sending while hC was cut off ($at_cut deliveries at the cut, $at_gone when hC gave up)"
else notok "hB went on sending while hC was cut off" "at_cut=$at_cut at_gone=$at_gone hB rc=$(cat "$T/hB.rc")"; fi
kill -USR2 "$(cat "$T/netcut.pid")"
pg_leases_lapse || notok "the leases lapse within 60 s"
pg_drain "$T/hB/conf" "$T/hC/conf"
eq "healed, both hosts drain: their runs exit 0" "$(cat "$T/drain.log" 2>/dev/null)" ""
eq "60 jobs in the ledger once each" "$(pgsql "SELECT count(*), count(DISTINCT producer_id) FROM jobs")" "60|60"
pg_audit "after the cut healed"
echo "# cut-off scenario: $(( $(date +%s) - start )) s"
exit $nfail
