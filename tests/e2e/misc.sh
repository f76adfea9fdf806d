#!/bin/sh
# tests/e2e/misc.sh — the command line and operator commands end to end: version,
# help, unknown commands, config errors with file:line, check-config, a database
# newer than the binary, sender disable/enable, the suppression list, tmp/ cleaning,
# and a graceful SIGTERM in the middle of a transfer.
# san: yes
. "$(dirname "$0")/../lib.sh"

NOW=1796029200            # 2026-11-30T09:00:00Z, a Monday
export OUTREACH_NOW=$NOW
setup

# ---- version, help, unknown command ----------------------------------------------------------
"$OR" version >"$T/out" 2>&1; rc=$?
eq "version: exit 0" "$rc" 0
check "version: prints 'outreach <version>'" grep -qE '^outreach [0-9]' "$T/out"
"$OR" help >"$T/out" 2>&1; rc=$?
eq "help: exit 0" "$rc" 0
check "help: lists the commands" sh -c "grep -q 'enqueue' '$T/out' && grep -q 'requeue' '$T/out' && grep -q 'check-config' '$T/out'"
or frobnicate >"$T/out" 2>"$T/err"; rc=$?
eq "unknown command: exit 64" "$rc" 64
check "unknown command: stderr names it" grep -q 'frobnicate' "$T/err"
"$OR" >/dev/null 2>&1; rc=$?
eq "no command: exit 64" "$rc" 64

# ---- config errors: exit 78, file:line ----------------------------------------------------------
mkdir "$T/bc"
cat >"$T/bc/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
colour = "blue";
$default_senders
EOF
"$OR" -c "$T/bc/conf" check-config >"$T/out" 2>"$T/err"; rc=$?
eq "unknown top-level key: exit 78" "$rc" 78
check "unknown top-level key: stderr names conf:4" grep -q 'conf:4:' "$T/err"
check "unknown top-level key: stderr names the key" grep -q 'colour' "$T/err"
"$OR" -c "$T/bc/conf" run >/dev/null 2>&1; rc=$?
eq "unknown key: run refuses too (78)" "$rc" 78
cat >"$T/bc/conf" <<'EOF'
spool = "spool";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = (
  { name = "s1"; from = "One <one@s1.example>"; provider = "dry";
    daily_limt = 100; }
);
EOF
"$OR" -c "$T/bc/conf" check-config >"$T/out" 2>"$T/err"; rc=$?
eq "unknown key in a sender: exit 78" "$rc" 78
check "unknown key in a sender: stderr names conf:5 and daily_limt" grep -q 'conf:5:.*daily_limt' "$T/err"
printf 'spool = "spool"\nsenders = (;\n' >"$T/bc/conf"
"$OR" -c "$T/bc/conf" check-config >/dev/null 2>"$T/err"; rc=$?
eq "syntax error: exit 78" "$rc" 78
check "syntax error: stderr names conf:LINE" grep -qE 'conf:[0-9]+:' "$T/err"
"$OR" -c "$T/bc/missing.conf" check-config >/dev/null 2>&1; rc=$?
eq "missing config file: exit 78" "$rc" 78

# ---- check-config -----------------------------------------------------------------------------------
or check-config >"$T/out" 2>"$T/err"; rc=$?
eq "check-config: exit 0" "$rc" 0
check "check-config: names sender s1 and its address" grep -q 's1.*one@s1.example' "$T/out"
check "check-config: names sender s2 and its address" grep -q 's2.*two@s2.example' "$T/out"
check "check-config: quiet on stderr" test ! -s "$T/err"

# ---- a database newer than the binary: refused with 74 --------------------------------------
mkdir "$T/v99"
printf 'spool = "spool";\n%s\n' "$default_senders" >"$T/v99/conf"
"$OR" -c "$T/v99/conf" init >/dev/null 2>&1
sqlite3 "$T/v99/spool/state.db" 'PRAGMA user_version = 99;'
job new@example.com | "$OR" -c "$T/v99/conf" enqueue - >/dev/null 2>&1
"$OR" -c "$T/v99/conf" run >"$T/out" 2>"$T/err"; rc=$?
eq "user_version 99: run exits 74" "$rc" 74
check "user_version 99: a message on stderr" grep -qiE 'version|newer' "$T/err"
eq "user_version 99: the database is left at 99" "$(sqlite3 "$T/v99/spool/state.db" 'PRAGMA user_version;')" 99
eq "user_version 99: nothing sent" "$(ls "$T/v99/outbox" 2>/dev/null | wc -l)" 0
"$OR" -c "$T/v99/conf" status >/dev/null 2>&1; rc=$?
eq "user_version 99: status exits 74 too" "$rc" 74

# ---- a v12 database (its indexes as v12 made them) is brought to v14 ------------------------------
mkdir "$T/v12"
printf 'spool = "spool";\n%s\n' "$default_senders" >"$T/v12/conf"
"$OR" -c "$T/v12/conf" init >/dev/null 2>&1
sqlite3 "$T/v12/spool/state.db" "DROP INDEX jobs_run; DROP INDEX jobs_rcpt; DROP INDEX jobs_provider;
  DROP INDEX jobs_msgid; DROP INDEX jobs_sent; DROP INDEX jobs_next; DROP INDEX slots_rgroup;
  CREATE INDEX jobs_run ON jobs(run_id); CREATE INDEX jobs_rcpt ON jobs(client, rcpt);
  CREATE INDEX jobs_provider ON jobs(provider_id); CREATE INDEX jobs_msgid ON jobs(message_id);
  CREATE INDEX jobs_sent ON jobs(sender, sent_at); CREATE INDEX jobs_next ON jobs(state, next_due);
  CREATE INDEX slots_rgroup ON slots(rgroup, at); CREATE INDEX slots_sender_day ON slots(sender, day, state);
  CREATE INDEX slots_client_day ON slots(client, day, state);
  DROP INDEX jobs_due; CREATE INDEX jobs_due ON jobs(state, client, next_due); PRAGMA user_version = 12;"
job old1@example.com | "$OR" -c "$T/v12/conf" enqueue - >/dev/null 2>&1
"$OR" -c "$T/v12/conf" run >"$T/out" 2>"$T/err"; rc=$?
eq "user_version 12: run exits 0" "$rc" 0
v12() { sqlite3 "$T/v12/spool/state.db" "$1"; }
eq "user_version 12: brought to 17" "$(v12 'PRAGMA user_version;')" 17
eq "user_version 12: no trigger on a job's state change (v17: or_job_move counts moves)" \
  "$(v12 "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'jobs_count_upd'")" 0
eq "user_version 12: jobs_sent and attempts_at cover state and outcome (v17)" \
  "$(v12 "SELECT count(*) FROM sqlite_master WHERE (name = 'jobs_sent' AND sql LIKE '%(sender, sent_at, state)%') OR (name = 'attempts_at' AND sql LIKE '%(at, outcome)')")" 2
eq "user_version 12: jobs_due is in claim order (v14)" \
  "$(v12 "SELECT sql LIKE '%(state, client, next_due, created_at)' FROM sqlite_master WHERE name = 'jobs_due'")" 1
eq "user_version 12: integrity_check ok" "$(v12 'PRAGMA integrity_check;')" ok
eq "user_version 12: jobs_next holds waiting jobs only" \
  "$(v12 "SELECT sql LIKE '%WHERE state = ''waiting''' FROM sqlite_master WHERE name = 'jobs_next'")" 1
eq "user_version 12: jobs_rcpt is by recipient first" \
  "$(v12 "SELECT sql LIKE '%(rcpt, client)' FROM sqlite_master WHERE name = 'jobs_rcpt'")" 1
eq "user_version 12: the slot indexes by day are gone" \
  "$(v12 "SELECT count(*) FROM sqlite_master WHERE name IN ('slots_sender_day', 'slots_client_day')")" 0
eq "user_version 12: nine partial indexes (jobs_run, _provider, _msgid, _sent, _next, _seq, slots_rgroup, replies_seq, events_burn)" \
  "$(v12 "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")" 9
eq "user_version 12: the job is sent" "$(v12 "SELECT state FROM jobs")" sent
eq "user_version 12: the per-state counts, recounted at v17 and kept by the send, equal the rows" \
  "$(v12 "SELECT client, campaign, state, n FROM state_counts WHERE n != 0 ORDER BY 1, 2, 3")" \
  "$(v12 "SELECT coalesce(client, ''), coalesce(campaign, ''), state, count(*) FROM jobs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")"

# ---- init: the modes and group spool/README documents; report_dir made at init ----------------------
mkdir "$T/perm"
printf 'spool = "spool";\nreport_dir = "reports";\ntimezone = "UTC";\n%s\n' \
  "$(printf '%s\n' "$default_senders" | sed 's|dir = "outbox"|dir = "spool/outbox"|')" >"$T/perm/conf"
"$OR" -c "$T/perm/conf" init >/dev/null 2>"$T/err"; rc=$?
eq "init (modes): exit 0" "$rc" 0
modes=$(cd "$T/perm" && for d in spool spool/tmp spool/new spool/unsub spool/defer spool/bad reports; do
  printf '%s=%s ' "$d" "$(stat -c %a "$d" 2>/dev/null)"; done)
eq "init: spool 2750, tmp/ new/ unsub/ 2770, the others 2750, report_dir 750" "$modes" \
  "spool=2750 spool/tmp=2770 spool/new=2770 spool/unsub=2770 spool/defer=2750 spool/bad=2750 reports=750 "
eq "init: tmp/ and new/ have the spool's group" \
  "$(stat -c %g "$T/perm/spool/tmp") $(stat -c %g "$T/perm/spool/new")" \
  "$(stat -c %g "$T/perm/spool") $(stat -c %g "$T/perm/spool")"
# root enqueueing into a spool another user owns: that user's run reads the file
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
  chmod 755 "$T" "$T/perm"
  chown -R 65534:65534 "$T/perm/spool" "$T/perm/reports"
  job root@example.com | "$OR" -c "$T/perm/conf" enqueue - >"$T/perm/ids" 2>"$T/err"; rc=$?
  eq "root enqueue into nobody's spool: exit 0" "$rc" 0
  eq "root enqueue: the file in new/ is the spool owner's (uid:gid)" \
    "$(stat -c %u:%g "$T/perm/spool/new/$(cat "$T/perm/ids").json" 2>/dev/null)" 65534:65534
  OUTREACH_NOW=$NOW setpriv --reuid=65534 --regid=65534 --clear-groups "$OR" -c "$T/perm/conf" run \
    >/dev/null 2>"$T/err"; rc=$?
  eq "root enqueue: the owner's run exits 0" "$rc" 0
  eq "root enqueue: the owner's run sends the job (not bad/ with Permission denied)" \
    "$(sqlite3 "$T/perm/spool/state.db" "SELECT state FROM jobs")" sent
  chmod 700 "$T"
else
  ok "root enqueue into another user's spool: skipped (not root or no setpriv)"
fi

# ---- a window opening at 09:00: the 09:00 run sends the job enqueued at 08:30 -----------------------
# The run ingests it at 09:00:00.x: it is due then, not at 09:00:01 after the run has looked
# (it waited for the next run: an hourly timer sent it an hour late).
mkdir "$T/win"
printf 'spool = "spool";\ntimezone = "UTC";\n%s\n' "$default_senders" >"$T/win/conf"
OUTREACH_NOW=$((NOW - 3600)) "$OR" -c "$T/win/conf" init >/dev/null 2>&1
job early@example.com acme ',"window":{"days":"Mon-Fri","hours":"09:00-17:00"}' |
  OUTREACH_NOW=$((NOW - 1800)) "$OR" -c "$T/win/conf" enqueue - >/dev/null 2>&1
OUTREACH_NOW=$NOW "$OR" -c "$T/win/conf" run >/dev/null 2>"$T/err"; rc=$?
eq "window opening at 09:00: the 09:00 run exits 0" "$rc" 0
eq "window opening at 09:00: the 09:00 run sends the job enqueued at 08:30" \
  "$(sqlite3 "$T/win/spool/state.db" "SELECT state FROM jobs")" sent

# ---- the statement cache: a run and every command close the database cleanly -------------------
# (one cached statement per call site; a statement left unfinalized, or a call site handed
# two, exits 70 with "internal error")
mkdir "$T/cache"
printf 'spool = "spool";\nreport_dir = "reports";\ntimezone = "UTC";\n%s\n' "$default_senders" >"$T/cache/conf"
oc() { "$OR" -c "$T/cache/conf" "$@"; }
oc init >/dev/null 2>&1
for i in 1 2 3; do job "c$i@example.com"; done | oc enqueue - >"$T/cache/ids" 2>/dev/null
cid=$(head -n 1 "$T/cache/ids")
echo 'd@example.com' >"$T/cache/list.txt"
bad70=""
for c in "run" "status" "status --json" "senders" "jobs" "jobs --json" "show $cid" "render $cid" "plan" "plan --json" \
         "check-config" "pause --client acme" "resume --client acme" "sender disable s1" "sender enable s1" \
         "suppress add x@example.com" "suppress list" "suppress remove x@example.com" "requeue failed" \
         "cancel --client nobody" "backup $T/cache/copy.db" "validate $T/cache/list.txt" "pull" "run"; do
  OUTREACH_NOW=$((NOW + 60)) oc $c >/dev/null 2>"$T/cache/err"; rc=$?
  { [ $rc -eq 70 ] || grep -q 'internal error' "$T/cache/err"; } && bad70="$bad70 [$c: $rc $(head -c 200 "$T/cache/err")]"
done
eq "statement cache: a run and every command end without an internal error" "$bad70" ""

# ---- sender disable / enable ------------------------------------------------------------------
or sender disable s1 --reason test >"$T/out" 2>"$T/err"; rc=$?
eq "sender disable: exit 0" "$rc" 0
or senders >"$T/senders" 2>&1
check "senders: s1 shown disabled" grep -qE '^s1 .* NO ' "$T/senders"
check "senders: the reason is shown" grep -q 'disabled: test' "$T/senders"
check "senders: s2 still enabled" grep -qE '^s2 .* yes ' "$T/senders"
for i in 1 2 3 4; do job "dis$i@example.com"; done | or enqueue - >"$T/ids.dis" 2>/dev/null
or run >/dev/null 2>"$T/err"; rc=$?
eq "run with s1 disabled: exit 0" "$rc" 0
eq "run with s1 disabled: 4 sent" "$(q "SELECT count(*) FROM jobs WHERE state = 'sent' AND rcpt LIKE 'dis%'")" 4
eq "run with s1 disabled: none through s1" "$(q "SELECT count(*) FROM jobs WHERE sender = 's1'")" 0
eq "run with s1 disabled: all through s2" "$(q "SELECT count(*) FROM jobs WHERE sender = 's2' AND rcpt LIKE 'dis%'")" 4
eq "run with s1 disabled: no message From s1" "$(grep -l '^From: .*one@s1.example' "$T"/outbox/*.eml 2>/dev/null | wc -l)" 0
or senders >"$T/senders" 2>&1
check "senders: s2 sent/cap today 4/1000" grep -qE '^s2 .* 4/1000 ' "$T/senders"
check "senders: s1 sent/cap today 0/1000" grep -qE '^s1 .* 0/1000 ' "$T/senders"
python3 -c "
import json,sys
s = json.load(open('$T/reports/status.json'))
x = [r for r in s['senders'] if r['name'] == 's1'][0]
print(x['enabled'], x['disabled_reason'])" >"$T/out" 2>&1
eq "status.json: s1 enabled false, reason test" "$(cat "$T/out")" "False test"
or sender enable s1 >/dev/null 2>&1; rc=$?
eq "sender enable: exit 0" "$rc" 0
or senders >"$T/senders" 2>&1
check "senders: s1 back enabled" grep -qE '^s1 .* yes ' "$T/senders"
for i in 1 2 3 4; do job "en$i@example.com"; done | or enqueue - >/dev/null 2>&1
OUTREACH_NOW=$((NOW + 60)) or run >/dev/null 2>&1
eq "run with s1 enabled: 4 sent" "$(q "SELECT count(*) FROM jobs WHERE state = 'sent' AND rcpt LIKE 'en%'")" 4
check "run with s1 enabled: s1 sends again" test "$(q "SELECT count(*) FROM jobs WHERE sender = 's1'")" -ge 1
or sender disable nosuch >/dev/null 2>&1; rc=$?
check "sender disable of an unknown sender fails (exit $rc)" test "$rc" -ne 0

# ---- suppression (addresses compared lower-cased) ---------------------------------------------
or suppress add x@example.com >/dev/null 2>"$T/err"; rc=$?
eq "suppress add: exit 0" "$rc" 0
check "suppress list shows it" sh -c "'$OR' -c '$T/conf' suppress list | grep -q 'x@example.com'"
sid=$(job 'Mr X <X@Example.com>' | or enqueue - 2>/dev/null)
OUTREACH_NOW=$((NOW + 120)) or run >/dev/null 2>&1
eq "suppressed: state suppressed" "$(q "SELECT state FROM jobs WHERE id = '$sid'")" suppressed
check "suppressed: in done/" test -f "$T/spool/done/$sid.json"
check "suppressed: no message" test ! -e "$T/outbox/$sid.eml"
check "suppressed: no message to x@example.com at all" sh -c "! grep -qi '^To: .*x@example.com' '$T'/outbox/*.eml"
or suppress remove x@example.com >/dev/null 2>&1
sid2=$(echo '{"client":"acme","to":"x@example.com","subject":"Second","text":"Hello again"}' | or enqueue - 2>/dev/null)
OUTREACH_NOW=$((NOW + 180)) or run >/dev/null 2>&1
eq "after suppress remove: sent" "$(q "SELECT state FROM jobs WHERE id = '$sid2'")" sent

# ---- suppress import is all or nothing; export writes to - (stdout) or to FILE -----------------
printf 'address,reason\ngood1@example.com,bounce\nnot-an-address\ngood2@example.com,bounce\n' > "$T/supp.csv"
or suppress import "$T/supp.csv" >"$T/out" 2>"$T/err"; rc=$?
eq "suppress import with a bad line: exit 65" "$rc" 65
eq "suppress import with a bad line: nothing added" "$(q "SELECT count(*) FROM suppressions WHERE address LIKE 'good_@example.com'")" 0
check "suppress import: names the bad line and says nothing was imported" \
  sh -c "grep -q 'supp.csv:3: not an address' '$T/err' && grep -q 'nothing imported' '$T/err'"
or suppress import --skip-invalid "$T/supp.csv" >"$T/out" 2>"$T/err"; rc=$?
eq "suppress import --skip-invalid: exit 0" "$rc" 0
eq "suppress import --skip-invalid: the good lines added" "$(q "SELECT count(*) FROM suppressions WHERE address LIKE 'good_@example.com'")" 2
eq "suppress import --skip-invalid: says what it did" "$(cat "$T/out")" "2 addresses added, 1 bad line skipped"
# an unterminated quote: the lines after it cannot be read, so none before it is kept either
printf 'address,reason\ngood3@example.com,bounce\n"good4@example.com,bounce\ngood5@example.com,x\n' > "$T/supp2.csv"
or suppress import --skip-invalid "$T/supp2.csv" >"$T/out" 2>"$T/err"; rc=$?
eq "suppress import with an unterminated quote: exit 65" "$rc" 65
eq "suppress import with an unterminated quote: nothing added" \
  "$(q "SELECT count(*) FROM suppressions WHERE address LIKE 'good_@example.com' AND address != 'good1@example.com' AND address != 'good2@example.com'")" 0
check "suppress import with an unterminated quote: names the line" sh -c "grep -q 'supp2.csv:3: .*nothing imported' '$T/err'"
or suppress export - >"$T/exp.out" 2>"$T/err"; rc=$?
eq "suppress export -: exit 0" "$rc" 0
check "suppress export -: the CSV on stdout" sh -c "head -1 '$T/exp.out' | grep -q '^address,client,reason' && grep -q '^good1@example.com,,bounce,import,' '$T/exp.out'"
or suppress export "$T/exp.csv" >"$T/exp2.out" 2>"$T/err"; rc=$?
eq "suppress export FILE: exit 0" "$rc" 0
check "suppress export FILE: the file holds the CSV" cmp "$T/exp.csv" "$T/exp.out"
eq "suppress export FILE: nothing on stdout" "$(wc -c <"$T/exp2.out")" 0
check "suppress export FILE: no temporary file left" sh -c "! ls -a '$T' | grep -q '^\.tmp-'"
or suppress remove good1@example.com >/dev/null 2>&1; or suppress remove good2@example.com >/dev/null 2>&1

# ---- tmp/: files older than 36 h are removed, fresh ones stay ----------------------------------
# (mtimes are set against the virtual clock of the run that cleans)
TC=$((NOW + 7200))
echo old >"$T/spool/tmp/abandoned.json.123"
echo new >"$T/spool/tmp/writing.json.456"
echo edge >"$T/spool/tmp/edge.json.789"
touch -d "@$((TC - 37 * 3600))" "$T/spool/tmp/abandoned.json.123"
touch -d "@$((TC - 3600))" "$T/spool/tmp/writing.json.456"
touch -d "@$((TC - 35 * 3600))" "$T/spool/tmp/edge.json.789"
OUTREACH_NOW=$TC or run >/dev/null 2>&1; rc=$?
eq "tmp clean run: exit 0" "$rc" 0
check "tmp/: the 37 h old file is removed" test ! -e "$T/spool/tmp/abandoned.json.123"
check "tmp/: the 1 h old file stays" test -f "$T/spool/tmp/writing.json.456"
check "tmp/: the 35 h old file stays" test -f "$T/spool/tmp/edge.json.789"

# ---- our own temporary files a crash left (between fsync and rename) go at the same age ---------
TC2=$((TC + 7200))
mkdir -p "$T/reports" "$T/outbox"
for d in spool/bad spool/failed spool/unsub reports outbox; do
  echo old >"$T/$d/.tmp-0123456789abcdef"; touch -d "@$((TC2 - 37 * 3600))" "$T/$d/.tmp-0123456789abcdef"
  echo new >"$T/$d/.tmp-fedcba9876543210"; touch -d "@$((TC2 - 3600))" "$T/$d/.tmp-fedcba9876543210"
done
echo mine >"$T/spool/bad/.keep"; touch -d "@$((TC2 - 37 * 3600))" "$T/spool/bad/.keep"
OUTREACH_NOW=$TC2 or run >/dev/null 2>&1; rc=$?
eq "stray clean run: exit 0" "$rc" 0
for d in spool/bad spool/failed spool/unsub reports outbox; do
  check "$d: a 37 h old .tmp-* left by a crash is removed" test ! -e "$T/$d/.tmp-0123456789abcdef"
  check "$d: a 1 h old .tmp-* stays" test -f "$T/$d/.tmp-fedcba9876543210"
done
check "spool/bad: a file not named like ours stays, however old" test -f "$T/spool/bad/.keep"

# ---- SIGTERM: the transfer in flight finishes and is recorded, the rest wait -----------------
mkdir "$T/sig" "$T/sig/got"
cat >"$T/sig/slow.sh" <<EOF
#!/bin/sh
n=\$\$
: >"$T/sig/got/started.\$n"
cat >"$T/sig/got/msg.\$n"
sleep 2
echo "slow-\$n"
EOF
chmod +x "$T/sig/slow.sh"
cat >"$T/sig/conf" <<EOF
spool = "spool";
report_dir = "reports";
providers = ( { name = "slow"; type = "exec"; argv = ["$T/sig/slow.sh"]; timeout = 30; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "slow"; } );
EOF
"$OR" -c "$T/sig/conf" init >/dev/null 2>&1
for i in 1 2 3 4 5; do job "sig$i@example.com"; done | "$OR" -c "$T/sig/conf" enqueue - >"$T/sig/ids" 2>/dev/null
eq "sigterm: 5 jobs enqueued" "$(wc -l <"$T/sig/ids")" 5
"$OR" -c "$T/sig/conf" run >"$T/sig/out" 2>"$T/sig/err" &
pid=$!
# the signal lands while a transfer is in flight: its intent is durable ('sending') and
# the command has started (slow.sh answers 2 s later)
in_flight() {
  ls "$T/sig/got" | grep -q started &&
    [ "$(sqlite3 -batch -noheader "$T/sig/spool/state.db" "SELECT count(*) FROM jobs WHERE state = 'sending'")" -eq 1 ]
}
wait_for 10 in_flight ||
  notok "sigterm: a transfer is in flight before the signal" "none within 10 s"
kill -TERM "$pid"
t0=$(date +%s)
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$pid" 2>/dev/null; then
  notok "sigterm: run exits within a few seconds" "still running after 15 s"
  kill -KILL "$pid"
fi
wait "$pid"; rc=$?
took=$(($(date +%s) - t0))
eq "sigterm: run exits 0" "$rc" 0
check "sigterm: run exited within 5 s of the signal (${took}s)" test "$took" -le 5
sq() { sqlite3 -batch -noheader "$T/sig/spool/state.db" "$1"; }
eq "sigterm: one transfer was started" "$(ls "$T/sig/got" | grep -c started)" 1
eq "sigterm: nothing left in cur/" "$(ls -A "$T/sig/spool/cur" | wc -l)" 0
eq "sigterm: no job claimed or sending in the ledger" "$(sq "SELECT count(*) FROM jobs WHERE state IN ('claimed','sending')")" 0
eq "sigterm: the job in flight is recorded as sent" "$(sq "SELECT count(*) FROM jobs WHERE state = 'sent'")" 1
spid=$(ls "$T/sig/got" | sed -n 's/^started\.//p' | head -n 1)
eq "sigterm: with the command's provider id" "$(sq "SELECT provider_id FROM jobs WHERE state = 'sent'")" "slow-$spid"
eq "sigterm: its file is in done/" "$(ls "$T/sig/spool/done" | grep -c '\.json$')" 1
eq "sigterm: the other 4 wait in the ledger" "$(sq "SELECT count(*) FROM jobs WHERE state = 'waiting'")" 4
eq "sigterm: the other 4 are in defer/" "$(ls "$T/sig/spool/defer" | grep -c '\.json$')" 4
eq "sigterm: no attempt was burnt on the waiting ones" "$(sq "SELECT count(*) FROM jobs WHERE state = 'waiting' AND attempts > 0")" 0

# ---- OUTREACH_SQL_PROFILE: one line per statement, counters a run can be compared by ----------
newconf prof "$default_senders"
for i in 1 2 3; do job "p$i@rcpt.example" >"$T/prof/spool/new/p$i.json"; done
OUTREACH_SQL_PROFILE="$T/prof.tsv" orc prof run >/dev/null 2>"$T/err"; rc=$?
eq "sql profile: the run exits 0" "$rc" 0
eq "sql profile: the three jobs are sent" "$(qd prof "SELECT count(*) FROM jobs WHERE state = 'sent'")" 3
check "sql profile: every line is runs, steps, sorts, autoindexes, full-scan steps, SQL" \
  awk -F'\t' 'NF < 6 || $1 !~ /^[0-9]+$/ || $2 !~ /^[0-9]+$/ || $3 !~ /^[0-9]+$/ { bad = 1 } END { exit bad || NR < 10 }' "$T/prof.tsv"
check "sql profile: the intent's UPDATE ran for each job" \
  awk -F'\t' '$6 ~ /^UPDATE jobs SET state = \?3, message_id/ && $1 >= 3 { ok = 1 } END { exit !ok }' "$T/prof.tsv"
n1=$(wc -l <"$T/prof.tsv")
orc prof run >/dev/null 2>&1
eq "sql profile: without the variable nothing is appended" "$(wc -l <"$T/prof.tsv")" "$n1"

# ---- an idle tick syncs nothing: reports by rename, its rows at synchronous=NORMAL ----------------
# (issue 19: the hourly one too, whose housekeeping folds engagement and retires nothing)
if command -v strace >/dev/null 2>&1; then
  newconf quiet "$default_senders"
  syncs() {   # syncs NOW: the fsync-family calls of one tick at NOW
    OUTREACH_NOW=$1 strace -f -qq -c -o "$T/quiet.strace" -e trace=fsync,fdatasync,sync_file_range,syncfs,sync,msync \
      "$OR" -c "$T/quiet/conf" run >/dev/null 2>&1
    awk '$NF ~ /^(fsync|fdatasync|sync_file_range|syncfs|sync|msync)$/ { n += $4 } END { print n + 0 }' "$T/quiet.strace"
  }
  syncs $((NOW + 60)) >/dev/null   # the first tick makes the WAL (its header is synced once)
  eq "idle tick: no fsync" "$(syncs $((NOW + 120)))" 0
  eq "idle tick: the next one neither" "$(syncs $((NOW + 180)))" 0
  eq "idle tick an hour on (housekeeping and the engagement fold due): no fsync" "$(syncs $((NOW + 3800)))" 0
  eq "idle tick: the reports were written all the same" "$(ls "$T/quiet/reports" | grep -cE '^(status.txt|status.json|outreach.prom)$')" 3
  wal() { stat -c %s "$T/quiet/spool/state.db-wal" 2>/dev/null || echo 0; }
  w1=$(wal)
  OUTREACH_NOW=$((NOW + 3840)) orc quiet run >/dev/null 2>&1
  OUTREACH_NOW=$((NOW + 3860)) orc quiet run >/dev/null 2>&1
  eq "idle ticks write nothing to the ledger: its WAL (read whole by every open) stays $w1 bytes" "$(wal)" "$w1"
  eq "idle ticks leave no run row (they hold nothing to recover)" "$(qd quiet "SELECT count(*) FROM runs")" 0
  job "q1@rcpt.example" >"$T/quiet/spool/new/q1.json"
  n=$(syncs $((NOW + 3900)))
  check "a tick that sends does sync ($n calls): the count above can see them" test "$n" -gt 0
  eq "a tick that sends has its row, done, with its send" "$(qd quiet "SELECT state || ' ' || sent FROM runs")" "done 1"
  # a run that died before its first claim has no row: its lock file is swept when old and free
  dead=0123456789abcdef0123456789abcdef; live=fedcba9876543210fedcba9876543210
  : >"$T/quiet/spool/run/$dead.lock"; : >"$T/quiet/spool/run/$live.lock"
  : >"$T/quiet/spool/run/.tmp-0123456789abcdef"; : >"$T/quiet/spool/run/ingest.lock"
  touch -d "@$((NOW - 2 * 86400))" "$T/quiet/spool/run/$dead.lock" "$T/quiet/spool/run/$live.lock" \
    "$T/quiet/spool/run/.tmp-0123456789abcdef" "$T/quiet/spool/run/ingest.lock"
  rm -f "$T/quiet/locked"
  python3 -c 'import fcntl, os, sys, time
f = open(sys.argv[1], "r+"); fcntl.lockf(f, fcntl.LOCK_EX); open(sys.argv[2], "w").close(); time.sleep(60)' \
    "$T/quiet/spool/run/$live.lock" "$T/quiet/locked" &
  holder=$!
  wait_for 20 test -e "$T/quiet/locked" || notok "the lock holder took its lock" "no $T/quiet/locked after 20 s"
  OUTREACH_NOW=$((NOW + 7600)) orc quiet run >/dev/null 2>&1
  check "an old run lock nobody holds is swept" test ! -e "$T/quiet/spool/run/$dead.lock"
  check "an old run lock a live process holds stays" test -e "$T/quiet/spool/run/$live.lock"
  check "an old temporary file of run/idle's, left by a crash, is swept" test ! -e "$T/quiet/spool/run/.tmp-0123456789abcdef"
  check "an old ingest lock stays (not a run's)" test -e "$T/quiet/spool/run/ingest.lock"
  kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
else
  ok "idle tick fsyncs: strace is not installed # SKIP"
fi

finish
