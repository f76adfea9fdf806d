#!/bin/sh
# tests/e2e/pg-failover.sh — the shared ledger's primary dies while two hosts
# send, and its synchronous standby takes over (a private PostgreSQL 15 primary
# on loopback, a streaming standby made with pg_basebackup, the primary's
# synchronous_standby_names set so that every commit waits for the standby):
#   both hosts' conninfo names both servers with target_session_attrs=read-write;
#   the primary is killed (immediate, as a crash) once sending is under way, and
#   the standby promoted; the runs then under way exit 75 (temporary) or 0;
#   the next ticks reach the new primary through the same conninfo, recover the
#   dead runs once their leases lapse, and drain the backlog;
#   audited on the new primary against a recorder of every delivery: every
#   ingested job is there (0 lost), none delivered twice, every sent job
#   delivered, every delivery a sent or held job (held: the transfers in flight
#   when the primary died), every job sent or held, the day counter the sent
#   and held jobs.
. "$(dirname "$0")/../lib.sh"

pg_up
PGS=$TESTS/peers/postgres.sh
sport=$(sh "$PGS" port)
sh "$PGS" standby "$T/db2" "$sport" "$T/db" >"$T/db2.out" 2>&1 || { notok "the synchronous standby starts" "$(tail -5 "$T/db2.out")"; exit 1; }
trap 'sh "$PGS" kill "$T/db"; sh "$PGS" kill "$T/db2"; cleanup' EXIT
ok "a synchronous standby streams from the primary"
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
: >"$T/deliveries"
prov=$(pg_recorder 0.05)
for h in hA hB; do
  mkdir -p "$T/$h"
  cat >"$T/$h/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
providers = ( $prov );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "p"; daily_limit = 10000; } );
store = { type = "postgresql"; password_file = "../pw"; host_name = "$h"; lease = 31;
          conninfo = "host=127.0.0.1,127.0.0.1 port=$pg_port,$sport dbname=outreach user=outreach target_session_attrs=read-write connect_timeout=3"; };
EOF
  "$OR" -c "$T/$h/conf" init --key "$T/key" || notok "$h: init"
done
for h in hA hB; do
  for i in $(seq 1 40); do
    printf '{"id": "%s%s", "client": "acme", "to": "%s%s@example.org", "subject": "Hello", "text": "Hi"}\n' \
      "$h" "$i" "$h" "$i" >"$T/$h/spool/tmp/$i.json" && mv "$T/$h/spool/tmp/$i.json" "$T/$h/spool/new/$i.json"
  done
done
("$OR" -c "$T/hA/conf" run >"$T/hA.run" 2>&1; echo $? >"$T/hA.rc") & pa=$!
("$OR" -c "$T/hB/conf" run >"$T/hB.run" 2>&1; echo $? >"$T/hB.rc") & pb=$!
i=0; until [ "$(wc -l <"$T/deliveries")" -ge 10 ] || [ $i -gt 400 ]; do i=$((i + 1)); sleep 0.05; done
ingested=$(sh "$PGS" sql "$T/db" "SELECT count(*) FROM jobs" 2>/dev/null)
sh "$PGS" kill "$T/db"
sh "$PGS" promote "$T/db2" || notok "the standby is promoted"
wait $pa $pb
rcs="$(cat "$T/hA.rc") $(cat "$T/hB.rc")"
case "$rcs" in
  "75 75"|"75 0"|"0 75"|"0 0") ok "the runs under way when the primary died exit 75 or 0 [$rcs]" ;;
  *) notok "the runs under way when the primary died exit 75 or 0" "rcs=$rcs $(tail -2 "$T/hA.run" "$T/hB.run")" ;;
esac
PG_DB=$T/db2   # pgsql, pg_drain and pg_audit now ask the new primary
eq "the new primary takes writes" "$(pgsql 'SELECT pg_is_in_recovery()')" f
eq "every job ingested before the failover is on the new primary (0 lost)" "$(pgsql 'SELECT count(*) FROM jobs')" "$ingested"
pg_leases_lapse || notok "the dead runs' leases lapse within 60 s (the new primary's clock)"
pg_drain "$T/hA/conf" "$T/hB/conf"
eq "the hosts reach the new primary through their conninfo: every drain run exits 0" "$(cat "$T/drain.log" 2>/dev/null)" ""
eq "80 jobs, each once" "$(pgsql "SELECT count(*), count(DISTINCT producer_id) FROM jobs")" "80|80"
pg_audit "after the failover"
held=$(pgsql "SELECT count(*) FROM jobs WHERE state = 'held'")
if [ "$held" -le 2 ]; then ok "held: only the transfers in flight when the primary died ($held, at most one a host)"
else notok "held: only the transfers in flight when the primary died" "held=$held"; fi
exit $nfail
