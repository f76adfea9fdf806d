#!/bin/sh
# tests/e2e/retry.sh — the exec provider's verdicts end to end (doc/design.md §6, §10):
# exit 75 = temporary (back to defer/ with exponential backoff, then failed/ after
# max_attempts), another exit = permanent (failed/ at once), killed after `timeout` =
# in doubt (held/, requeue held), exit 0 = sent with its first stdout line as the
# provider id; the command gets the message on stdin with CRLF line ends and an
# X-Outreach-Job header.  Times are judged on the ledger under OUTREACH_NOW.
# san: yes
. "$(dirname "$0")/../lib.sh"

NOW=1796029200            # 2026-11-30T09:00:00Z, a Monday
export OUTREACH_NOW=$NOW
mkdir "$T/got"

cat >"$T/temp.sh" <<'EOF'
#!/bin/sh
cat >/dev/null
echo "451 try later, mailbox busy" >&2
echo "second line of stderr" >&2
exit 75
EOF
cat >"$T/perm.sh" <<'EOF'
#!/bin/sh
cat >/dev/null
echo "550 no such user" >&2
exit 1
EOF
cat >"$T/hang.sh" <<'EOF'
#!/bin/sh
exec sleep 30
EOF
cat >"$T/ok.sh" <<EOF
#!/bin/sh
n=\$(ls "$T/got" | wc -l)
cat >"$T/got/msg.\$n"
echo "prov-id-\$n-x"
echo "more output"
exit 0
EOF
chmod +x "$T"/*.sh

setup "
retry = { first = 60; max = 3600; max_attempts = 3; max_age = 259200; };
providers = (
  { name = \"ptemp\"; type = \"exec\"; argv = [\"$T/temp.sh\"]; timeout = 5; },
  { name = \"pperm\"; type = \"exec\"; argv = [\"$T/perm.sh\"]; timeout = 5; },
  { name = \"phang\"; type = \"exec\"; argv = [\"$T/hang.sh\"]; timeout = 1; },
  { name = \"pok\";   type = \"exec\"; argv = [\"$T/ok.sh\", \"-i\"]; timeout = 5; }
);
senders = (
  { name = \"stemp\"; from = \"T <t@temp.example>\"; provider = \"ptemp\"; },
  { name = \"sperm\"; from = \"P <p@perm.example>\"; provider = \"pperm\"; },
  { name = \"shang\"; from = \"H <h@hang.example>\"; provider = \"phang\"; },
  { name = \"sok\";   from = \"O <o@ok.example>\";   provider = \"pok\"; }
);"

enq() {   # enq TO SENDER -> the job id
  job "$1" acme ",\"sender\":\"$2\"" | or enqueue - 2>>"$T/enq.err"
}
jt=$(enq temp@example.com stemp)
jp=$(enq perm@example.com sperm)
jh=$(enq hang@example.com shang)
jo=$(enq ok@example.com sok)
eq "four jobs enqueued" "$(printf '%s\n' "$jt" "$jp" "$jh" "$jo" | grep -cE '^[0-9a-f]{16}$')" 4

st()  { q "SELECT state FROM jobs WHERE id = '$1'"; }
col() { q "SELECT $2 FROM jobs WHERE id = '$1'"; }
# in_range VALUE LO HI (floating point, inclusive)
in_range() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v != "" && v + 0 >= lo && v + 0 <= hi) }'; }

start=$(date +%s)
or run >"$T/run1.out" 2>"$T/run1.err"; rc=$?
took=$(($(date +%s) - start))
eq "run 1: exit 0" "$rc" 0
check "run 1: the hung command was killed after its 1 s timeout (run took ${took}s)" test "$took" -lt 10

# ---- temporary failure: back to defer/ with backoff ----------------------------------------
eq "temp: state waiting" "$(st "$jt")" waiting
check "temp: file back in defer/" test -f "$T/spool/defer/$jt.json"
check "temp: no file left in cur/" test -z "$(ls -A "$T/spool/cur")"
eq "temp: attempts 1" "$(col "$jt" attempts)" 1
check "temp: last_error has the command's stderr (\"try later\")" sh -c "printf '%s' \"\$1\" | grep -q 'try later'" _ "$(col "$jt" last_error)"
check "temp: last_error keeps only the first stderr line" sh -c "! printf '%s' \"\$1\" | grep -q 'second line'" _ "$(col "$jt" last_error)"
due1=$(col "$jt" next_due)
check "temp: next_due is 30..60 s after the failure (first = 60, jitter) [$(col "$jt" "next_due - updated_at")]" \
  in_range "$(col "$jt" "next_due - updated_at")" 30 60
check "temp: next_due between now+30 and now+60 (+run time) [$(awk "BEGIN{print $due1 - $NOW}")]" \
  in_range "$(awk "BEGIN{print $due1 - $NOW}")" 30 $((60 + took + 1))

# ---- permanent failure: failed/ at once ------------------------------------------------------------
eq "perm: state failed" "$(st "$jp")" failed
check "perm: in failed/" test -f "$T/spool/failed/$jp.json"
check "perm: failed/<id>.err says 550" grep -q '550' "$T/spool/failed/$jp.err"
eq "perm: one attempt" "$(col "$jp" attempts)" 1

# ---- hang: killed after the timeout, in doubt ------------------------------------------------
eq "hang: state held" "$(st "$jh")" held
check "hang: in held/" test -f "$T/spool/held/$jh.json"
check "hang: not in defer/ nor failed/" test ! -e "$T/spool/defer/$jh.json" -a ! -e "$T/spool/failed/$jh.json"

# ---- success: provider id and what the command received --------------------------------------
eq "ok: state sent" "$(st "$jo")" sent
check "ok: in done/" test -f "$T/spool/done/$jo.json"
eq "ok: provider_id = the command's first stdout line" "$(col "$jo" provider_id)" "prov-id-0-x"
m=$T/got/msg.0
check "ok: the command got the message on stdin" test -s "$m"
eq "ok: every line of the message ends in CRLF (bare LFs)" \
   "$(python3 -c "import sys; d=open(sys.argv[1],'rb').read(); print(d.count(b'\n') - d.count(b'\r\n'))" "$m")" 0
check "ok: the message has more than a few lines" test "$(wc -l <"$m")" -gt 5
check "ok: X-Outreach-Job: <id> header" grep -q "^X-Outreach-Job: $jo$(printf '\r')\$" "$m"
check "ok: To: header names the recipient" grep -q '^To: .*ok@example.com' "$m"
eq "ok: the message id recorded is the one delivered" \
   "$(sed -n 's/^Message-ID: *//p' "$m" | tr -d '\r')" "$(col "$jo" message_id)"

# ---- before next_due nothing is retried; after it, it is ------------------------------------------
OUTREACH_NOW=$((NOW + 29)) or run >/dev/null 2>&1
eq "run at now+29 s: temp not retried yet (attempts 1)" "$(col "$jt" attempts)" 1
t2=$(awk "BEGIN { printf \"%d\", $due1 + 1 }")
OUTREACH_NOW=$t2 or run >/dev/null 2>&1
eq "run past next_due: retried (attempts 2)" "$(col "$jt" attempts)" 2
eq "run past next_due: still waiting" "$(st "$jt")" waiting
check "second backoff doubles: 60..120 s [$(col "$jt" "next_due - updated_at")]" \
  in_range "$(col "$jt" "next_due - updated_at")" 60 120
due2=$(col "$jt" next_due)
t3=$(awk "BEGIN { printf \"%d\", $due2 + 1 }")
OUTREACH_NOW=$t3 or run >/dev/null 2>&1
eq "after max_attempts (3): state failed" "$(st "$jt")" failed
eq "after max_attempts: attempts 3" "$(col "$jt" attempts)" 3
check "after max_attempts: in failed/" test -f "$T/spool/failed/$jt.json"
check "after max_attempts: not in defer/" test ! -e "$T/spool/defer/$jt.json"
check "after max_attempts: failed/<id>.err says why (\"try later\")" grep -q 'try later' "$T/spool/failed/$jt.err"
t4=$((t3 + 7200))
OUTREACH_NOW=$t4 or run >/dev/null 2>&1
eq "a failed job is not tried again (attempts 3)" "$(col "$jt" attempts)" 3

# ---- requeue held: back to defer/, sent by a later run once the provider works -------------
OUTREACH_NOW=$t4 or requeue held "$jh" >/dev/null 2>"$T/rq.err"; rc=$?
eq "requeue held ID: exit 0" "$rc" 0
check "requeue held: in defer/" test -f "$T/spool/defer/$jh.json"
check "requeue held: gone from held/" test ! -e "$T/spool/held/$jh.json"
eq "requeue held: state waiting" "$(st "$jh")" waiting
cp "$T/ok.sh" "$T/hang.sh"       # the operator fixed the provider
OUTREACH_NOW=$((t4 + 60)) or run >/dev/null 2>"$T/run5.err"; rc=$?
eq "run after requeue: exit 0" "$rc" 0
eq "run after requeue: the held job is sent" "$(st "$jh")" sent
check "run after requeue: in done/" test -f "$T/spool/done/$jh.json"
check "run after requeue: the command got it" grep -lq "^X-Outreach-Job: $jh" "$T"/got/msg.*
eq "ledger: nothing left claimed or sending" "$(q "SELECT count(*) FROM jobs WHERE state IN ('claimed','sending')")" 0

finish
