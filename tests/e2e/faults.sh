#!/bin/sh
# tests/e2e/faults.sh — a SendGrid account against a misbehaving loopback peer
# (tests/peers/faulty.py), one fresh spool per behaviour, judged on the ledger
# (jobs, accounts, alerts) and on the peer's log of what it received:
#   429secs / 429date / ratelimit  throttling: waits as long as the peer said
#        (absolute times against the response's own Date), burns no attempt,
#        pauses the account;
#   429huge  a wait of 10^9 s (Retry-After, X-RateLimit-Reset) is cut to
#        max_provider_wait, with the alert provider_wait:ACCOUNT;
#   5xx  attempts counted with backoff; 3 failures open the circuit (alert),
#        nothing is sent while it is open, a successful probe closes it;
#   reset-before  temporary when the reset beat the request (strict over TLS,
#        where the peer resets before the handshake); over plain HTTP the
#        client has usually written the request already, so held is accepted
#        there only with "after the request was sent" as its reason;
#   reset-after / hang / keepalive-close  in doubt: held/, never retried, and
#        no silent resend by libcurl (the peer logs each request once);
#   redirect  not followed, not a permanent failure, counted on the account;
#   huge  a 100 MB answer is capped, not buffered;
#   tls   a self-signed peer is refused without ca_file, accepted with it.
# The API key must never show in stderr (-v), status.json, outreach.prom or the
# ledger.  Times are judged on the ledger under OUTREACH_NOW.
# san: yes
. "$(dirname "$0")/../lib.sh"

NOW=1796029200            # 2026-11-30T09:00:00Z
ROOT=$T
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$ROOT"' EXIT
KEY="SG.faults-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')-KEY"

# start_peer MODE LOG [ARGS...]: starts faulty.py on an ephemeral port; sets PORT
start_peer() {
  _m=$1 _l=$2; shift 2
  faulty_peer "$_l" "$_m" "$@"; _rc=$?
  PIDS="$PIDS $PEERPID"
  [ $_rc = 0 ] || echo "# peer $_m did not start: $(cat "$_l.err")"
  return $_rc
}

# lq LOG PYEXPR: PYEXPR over E (every log record) and R (the sends: POST
# /v3/mail/send; the feed's GETs are logged as "other-request")
lq() {
  python3 -c 'import json,sys
E=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
R=[e for e in E if e.get("event")=="request"]
print(eval(sys.argv[2]))' "$1" "$2"
}
nreq() { lq "${1:-$T/peer.log}" 'len(R)'; }

sgconf() {   # ENDPOINT [MORE PROVIDER KEYS]; $TOP: more top-level keys
  printf '%s\n' "${TOP:-}"
  printf 'providers = ( { name = "sg"; type = "sendgrid"; endpoint = "%s"; allow_plaintext = true; api_key_file = "%s"; timeout = 3; concurrency = 1; circuit_failures = 3; circuit_cooldown = 300; %s} );\nsenders = ( { name = "a"; from = "A <a@a.example>"; provider = "sg"; daily_limit = 1000; } );\n' \
    "$1" "$T/key" "${2:-}"
}

# fresh NAME MODE [PEER ARGS...]: a new directory, key, peer and spool
fresh() {
  T=$ROOT/$1; _mode=$2; shift 2
  mkdir -p "$T"
  printf '%s\n' "$KEY" >"$T/key"
  chmod 600 "$T/key"
  start_peer "$_mode" "$T/peer.log" "$@" || return 1
  setup "$(sgconf "${SCHEME:-http}://127.0.0.1:$PORT" "${MORE:-}")" >/dev/null
}

# enq N: N jobs, ids in $T/ids
enq() {
  _i=1
  while [ "$_i" -le "$1" ]; do job "r$_i@example.com"; _i=$((_i + 1)); done |
    or enqueue - >"$T/ids" 2>>"$T/stderr"
}
id_n() { sed -n "${1}p" "$T/ids"; }

# run_at OFFSET: one -v run at NOW+OFFSET (stderr kept for the key check); sets rc
run_at() {
  OUTREACH_NOW=$((NOW + $1)) timeout 60 "$OR" -c "$T/conf" -v run >>"$T/stdout" 2>>"$T/stderr"
  rc=$?
}

jf() { q "SELECT $2 FROM jobs WHERE id = '$1'"; }      # job field
af() { q "SELECT $1 FROM accounts WHERE name = 'sg'"; } # account field
# near NAME VALUE TARGET TOL
near() {
  if awk -v v="$2" -v t="$3" -v e="$4" 'BEGIN { d = v - t; if (d < 0) d = -d; exit !(v != "" && d <= e) }'; then
    ok "$1"; else notok "$1" "expected $3 ± $4, got [$2]"; fi
}
# within NAME VALUE LO HI
within() {
  if awk -v v="$2" -v a="$3" -v b="$4" 'BEGIN { exit !(v != "" && v >= a && v <= b) }'; then
    ok "$1"; else notok "$1" "expected in [$3, $4], got [$2]"; fi
}
has_alert() { q "SELECT count(*) FROM alerts WHERE name = 'account_down:sg'"; }

# Key check material, collected per spool
keycheck() {
  cat "$T/stderr" >>"$ROOT/all.stderr" 2>/dev/null
  cat "$T/reports/status.json" >>"$ROOT/all.status" 2>/dev/null
  cat "$T/reports/outreach.prom" >>"$ROOT/all.prom" 2>/dev/null
  sqlite3 "$T/spool/state.db" .dump >>"$ROOT/all.dump" 2>/dev/null
  printf '%s\n' "$T" >>"$ROOT/checked"
}

# ---------------------------------------------------------------- 429secs
# The peer answers 429 Retry-After: 120 to its first two requests, then 202.
fresh 429secs 429secs && enq 1
A=$(id_n 1)
run_at 0
eq "429secs: run exits 0" "$rc" 0
eq "429secs: one request" "$(nreq)" 1
eq "429secs: throttled job waits" "$(jf "$A" state)" waiting
eq "429secs: throttling burns no attempt" "$(jf "$A" attempts)" 0
near "429secs: next_due = now + 120" "$(jf "$A" next_due)" $((NOW + 120)) 5
near "429secs: accounts.paused_until = now + 120" "$(af paused_until)" $((NOW + 120)) 5
check "429secs: last_error says 429" sh -c "sqlite3 '$T/spool/state.db' 'SELECT last_error FROM jobs' | grep -q 429"
eq "429secs: its file is in defer/" "$(nfiles defer)" 1
eq "429secs: a throttle is not an outage (no alert, no failure counted)" "$(has_alert):$(af failures)" 0:0
run_at 60
eq "429secs: nothing sent while paused (run at +60)" "$(nreq)" 1
# the peer's 2nd request is scripted to be a 429 as well
run_at 121
eq "429secs: the run at +121 tries again (the peer's 2nd 429)" "$(nreq)" 2
eq "429secs: still no attempt burned after two throttles" "$(jf "$A" state):$(jf "$A" attempts)" waiting:0
near "429secs: paused again until +121+120" "$(af paused_until)" $((NOW + 241)) 5
run_at 242
eq "429secs: the run at +242 sends it" "$(jf "$A" state)" sent
eq "429secs: 3 requests in all" "$(nreq)" 3
eq "429secs: provider id from X-Message-Id" "$(jf "$A" provider_id)" f-3
eq "429secs: done/ holds it" "$(nfiles done)" 1
keycheck

# Two jobs: once the peer said "wait 120 s", the run sends nothing more to the
# account, not even a job it had already claimed while the first was in flight.
fresh 429secs-2 429secs && enq 2
run_at 0
eq "429secs (2 jobs): one request in the run, the account is paused after it" "$(nreq)" 1
eq "429secs (2 jobs): both wait with no attempt burned" "$(q "SELECT group_concat(state || ':' || attempts) FROM jobs")" "waiting:0,waiting:0"
keycheck

# ---------------------------------------------------------------- 429date
# 429 with Date: 2030-01-01 and Retry-After: that Date + 300 s as an HTTP-date.
fresh 429date 429date && enq 1
A=$(id_n 1)
run_at 0
eq "429date: run exits 0" "$rc" 0
eq "429date: job waits, no attempt burned" "$(jf "$A" state):$(jf "$A" attempts)" waiting:0
near "429date: next_due = now + 300 (against the response's Date)" "$(jf "$A" next_due)" $((NOW + 300)) 5
near "429date: paused_until = now + 300" "$(af paused_until)" $((NOW + 300)) 5
run_at 200
eq "429date: nothing sent at +200" "$(nreq)" 1
run_at 301
eq "429date: sent at +301" "$(jf "$A" state)" sent
eq "429date: 2 requests in all" "$(nreq)" 2
keycheck

# ---------------------------------------------------------------- ratelimit
# 429 with Date: 2030-01-01 and X-RateLimit-Reset: that Date + 90 (epoch).
fresh ratelimit ratelimit && enq 1
A=$(id_n 1)
run_at 0
eq "ratelimit: job waits, no attempt burned" "$(jf "$A" state):$(jf "$A" attempts)" waiting:0
near "ratelimit: next_due = now + 90 (X-RateLimit-Reset against Date)" "$(jf "$A" next_due)" $((NOW + 90)) 5
near "ratelimit: paused_until = now + 90" "$(af paused_until)" $((NOW + 90)) 5
run_at 91
eq "ratelimit: sent at +91" "$(jf "$A" state)" sent
keycheck

# ---------------------------------------------------------------- 429huge
# 429 with Retry-After: 10^9 s, then X-RateLimit-Reset 10^9 s after Date, then 202.
TOP='max_provider_wait = 900;'
fresh 429huge 429huge && enq 1
TOP=
A=$(id_n 1)
run_at 0
eq "429huge: job waits, no attempt burned" "$(jf "$A" state):$(jf "$A" attempts)" waiting:0
near "429huge: Retry-After 1e9 s waits max_provider_wait (next_due = now + 900)" "$(jf "$A" next_due)" $((NOW + 900)) 5
near "429huge: paused_until = now + 900" "$(af paused_until)" $((NOW + 900)) 5
eq "429huge: alert provider_wait:sg raised" "$(q "SELECT count(*) FROM alerts WHERE name = 'provider_wait:sg'")" 1
run_at 901
near "429huge: X-RateLimit-Reset 1e9 s ahead waits 900 s too" "$(af paused_until)" $((NOW + 901 + 900)) 5
run_at 1802
eq "429huge: sent once the clamped wait is over" "$(jf "$A" state)" sent
eq "429huge: a send clears the alert" "$(q "SELECT count(*) FROM alerts WHERE name = 'provider_wait:sg'")" 0
keycheck
fresh 429huge-default 429huge && enq 1
run_at 0
near "429huge: by default the wait is at most an hour" "$(af paused_until)" $((NOW + 3600)) 5
keycheck

# ---------------------------------------------------------------- 5xx
# 500, 503, 503, then 202; circuit_failures = 3, circuit_cooldown = 300.
fresh 5xx 5xx && enq 1
A=$(id_n 1)
run_at 0
eq "5xx: run exits 0" "$rc" 0
eq "5xx: after a 500 the job waits with 1 attempt" "$(jf "$A" state):$(jf "$A" attempts)" waiting:1
within "5xx: backoff 1 in [first/2, first] = [30, 60] s" "$(q "SELECT next_due - $NOW FROM jobs")" 29 61
check "5xx: last_error names the 500" sh -c "sqlite3 '$T/spool/state.db' 'SELECT last_error FROM jobs' | grep -q 500"
eq "5xx: one failure on the account, circuit closed" "$(af failures):$(af "open_until > $NOW")" 1:0
t1=$(q "SELECT CAST(next_due AS INT) + 1 - $NOW FROM jobs")
run_at "$t1"
eq "5xx: 503: 2 attempts" "$(jf "$A" state):$(jf "$A" attempts)" waiting:2
within "5xx: backoff 2 in [60, 120] s" "$(q "SELECT next_due - ($NOW + $t1) FROM jobs")" 59 121
eq "5xx: 2 failures, circuit still closed, no alert" "$(af failures):$(af "open_until > $NOW + $t1"):$(has_alert)" 2:0:0
t2=$(q "SELECT CAST(next_due AS INT) + 1 - $NOW FROM jobs")
run_at "$t2"
eq "5xx: 3 requests so far" "$(nreq)" 3
# the failure that opens the circuit may be booked on the account, not the job
check "5xx: 503 again: still waiting, 2 or 3 attempts" sh -c "[ '$(jf "$A" state)' = waiting ] && [ '$(jf "$A" attempts)' -ge 2 ]"
att=$(jf "$A" attempts)
eq "5xx: 3 failures" "$(af failures)" 3
near "5xx: circuit open for the cooldown (open_until = now + 300)" "$(af open_until)" $((NOW + t2 + 300)) 5
eq "5xx: alert account_down:sg raised" "$(has_alert)" 1
check "5xx: status.json lists the alert" grep -q 'account_down:sg' "$T/reports/status.json"
check "5xx: outreach.prom shows the circuit open" grep -Eq '^outreach_account_circuit_open\{account="sg"\} 1' "$T/reports/outreach.prom"
t3=$(q "SELECT CAST(next_due AS INT) + 1 - $NOW FROM jobs")
[ "$t3" -lt $((t2 + 300)) ] || t3=$((t2 + 200))
run_at "$t3"
eq "5xx: no request while the circuit is open (job due at +$t3)" "$(nreq)" 3
eq "5xx: the job still waits, no attempt added" "$(jf "$A" state):$(jf "$A" attempts)" "waiting:$att"
run_at $((t2 + 301))
eq "5xx: after the cooldown the probe is sent" "$(nreq)" 4
eq "5xx: the probe's job is sent" "$(jf "$A" state)" sent
eq "5xx: the probe closed the circuit (failures 0, open_until 0)" "$(af failures):$(af "open_until > 0")" 0:0
eq "5xx: alert cleared" "$(has_alert)" 0
keycheck

# Four jobs in one run: 500, 503, 503 open the circuit; the 4th job must not
# go to the open circuit (the peer would have answered it 202).
fresh 5xx-4 5xx && enq 4
run_at 0
eq "5xx (4 jobs): 3 requests, none after the circuit opened" "$(nreq)" 3
eq "5xx (4 jobs): circuit open, alert raised" "$(af "open_until > $NOW"):$(has_alert)" 1:1
eq "5xx (4 jobs): nothing sent, all wait" "$(q "SELECT count(*) FROM jobs WHERE state = 'waiting'")" 4
keycheck

# ---------------------------------------------------------------- reset-before
# Plain HTTP: the peer resets each connection as soon as it is accepted.  On
# loopback the client has usually written its whole request by then, so it
# cannot know the peer read none of it: held is then the right answer; waiting
# is right when the reset came first.  Never sent, failed or lost.
fresh reset-before reset-before && enq 1
A=$(id_n 1)
run_at 0
eq "reset-before: run exits 0" "$rc" 0
eq "reset-before: the peer read no request" "$(nreq)" 0
check "reset-before: the peer reset a connection" test "$(lq "$T/peer.log" 'sum(e["event"]=="reset-before-read" for e in E)')" -ge 1
S=$(jf "$A" state)
case $S in
  waiting) ok "reset-before: job waits (temporary)"
           eq "reset-before: its file is in defer/" "$(nfiles defer)" 1 ;;
  held)    if jf "$A" last_error | grep -q 'after the request was sent'; then
             ok "reset-before: held because the request had left before the reset"
             echo "# reset-before over plain HTTP: the request had been written before the RST arrived (in doubt)"
           else notok "reset-before: held without the request having left" "$(jf "$A" last_error)"; fi
           eq "reset-before: its file is in held/" "$(nfiles held)" 1 ;;
  *)       notok "reset-before: job waits (temporary)" "state [$S], last_error [$(jf "$A" last_error)]" ;;
esac
keycheck

# TLS: the peer resets before the handshake, so not a byte of the request can
# have left: strictly temporary (the job waits with its attempt counted).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$ROOT/peer-key.pem" -out "$ROOT/peer-cert.pem" \
  -days 2 -subj /CN=127.0.0.1 -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' >/dev/null 2>&1
SCHEME=https MORE="ca_file = \"$ROOT/peer-cert.pem\"; "
fresh reset-before-tls reset-before --tls "$ROOT/peer-cert.pem" "$ROOT/peer-key.pem" && enq 1
SCHEME=http MORE=
A=$(id_n 1)
run_at 0
eq "reset-before (tls): the peer read no request" "$(nreq)" 0
eq "reset-before (tls): temporary: waiting, 1 attempt" "$(jf "$A" state):$(jf "$A" attempts)" waiting:1
eq "reset-before (tls): not held" "$(nfiles held):$(nfiles defer)" 0:1
within "reset-before (tls): retried after the backoff" "$(q "SELECT next_due - $NOW FROM jobs")" 29 61
keycheck

# ---------------------------------------------------------------- reset-after, hang
for m in reset-after hang; do
  fresh "$m" "$m" && enq 1
  A=$(id_n 1)
  s=$(date +%s)
  run_at 0
  e=$(($(date +%s) - s))
  eq "$m: run exits 0" "$rc" 0
  within "$m: the run ends within the 3 s timeout (+slack)" "$e" 0 8
  eq "$m: in doubt: held" "$(jf "$A" state)" held
  eq "$m: file in held/, not in defer/" "$(nfiles held):$(nfiles defer)" 1:0
  check "$m: last_error says why" test -n "$(jf "$A" last_error)"
  eq "$m: the peer got the request exactly once" "$(nreq)" 1
  eq "$m: the logged request is this job's, body complete" \
    "$(lq "$T/peer.log" 'R[0]["job"] + ":" + str(R[0]["body_len"] == int(R[0]["content_length"]))')" "$A:True"
  run_at 3600
  run_at 90000
  eq "$m: never retried automatically (later runs)" "$(nreq):$(jf "$A" state)" 1:held
  keycheck
done

# ---------------------------------------------------------------- keepalive-close
# 1st request on a connection: 202 keep-alive; the 2nd on the same connection is
# read whole and the socket closed without an answer.  libcurl must not resend
# it on a fresh connection.
fresh keepalive-close keepalive-close && enq 2
run_at 0
eq "keepalive-close: run exits 0" "$rc" 0
eq "keepalive-close: the peer logged exactly 2 requests (no silent resend)" "$(nreq)" 2
eq "keepalive-close: both on one reused connection" "$(lq "$T/peer.log" 'len(set(r["conn"] for r in R)) == 1 and [r["conn_req"] for r in R] == [1, 2]')" True
J1=$(lq "$T/peer.log" 'R[0]["job"]') J2=$(lq "$T/peer.log" 'R[1]["job"]')
eq "keepalive-close: first job sent" "$(jf "$J1" state)" sent
eq "keepalive-close: second job held (in doubt)" "$(jf "$J2" state)" held
eq "keepalive-close: files in done/ and held/" "$(nfiles done):$(nfiles held)" 1:1
run_at 3600
eq "keepalive-close: held job not retried" "$(nreq)" 2
keycheck

# ---------------------------------------------------------------- redirect
mkdir -p "$ROOT/other"
start_peer ok "$ROOT/other/peer.log"
OTHER=$PORT
fresh redirect redirect --location "http://127.0.0.1:$OTHER/v3/mail/send" && enq 1
A=$(id_n 1)
run_at 0
eq "redirect: run exits 0" "$rc" 0
eq "redirect: the peer got 1 request" "$(nreq)" 1
eq "redirect: not followed (the Location peer got nothing)" "$(nreq "$ROOT/other/peer.log")" 0
eq "redirect: not failed: the job waits, no attempt burned" "$(jf "$A" state):$(jf "$A" attempts)" waiting:0
check "redirect: last_error mentions the redirect" sh -c "sqlite3 '$T/spool/state.db' 'SELECT last_error FROM jobs' | grep -qi redirect"
eq "redirect: counted on the account (account-level)" "$(af failures)" 1
eq "redirect: account-level failure opens the circuit (alert)" "$(af "open_until > $NOW"):$(has_alert)" 1:1
eq "redirect: nothing in failed/" "$(nfiles failed)" 0
keycheck

# ---------------------------------------------------------------- huge
fresh huge huge && enq 1
A=$(id_n 1)
s=$(date +%s)
if [ -x /usr/bin/time ] && /usr/bin/time -v true >/dev/null 2>&1; then
  OUTREACH_NOW=$NOW timeout 30 /usr/bin/time -v -o "$T/time.txt" "$OR" -c "$T/conf" -v run >>"$T/stdout" 2>>"$T/stderr"
  rc=$?
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$T/time.txt")
  if nm "$OR" 2>/dev/null | grep -q __asan_init; then
    echo "# huge: peak RSS ${rss} kB not judged (AddressSanitizer build: shadow memory)"
  else
    within "huge: peak RSS of the run < 50 MB (kB)" "$rss" 1 51200
  fi
else
  run_at 0
  echo "# huge: /usr/bin/time -v not available: peak RSS not checked"
fi
e=$(($(date +%s) - s))
eq "huge: run exits 0" "$rc" 0
within "huge: the run ends within the timeout" "$e" 0 10
eq "huge: the job is sent (the status was 202)" "$(jf "$A" state)" sent
eq "huge: X-Message-Id kept" "$(jf "$A" provider_id)" f-1
check "huge: the peer did not get to stream all 100 MB" test "$(lq "$T/peer.log" 'sum(e["event"]=="huge_done" for e in E)')" -eq 0
keycheck

# ---------------------------------------------------------------- tls
SCHEME=https
fresh tls tls --tls "$ROOT/peer-cert.pem" "$ROOT/peer-key.pem" && enq 1
SCHEME=http
A=$(id_n 1)
run_at 0
eq "tls: run exits 0" "$rc" 0
eq "tls: self-signed peer refused without ca_file: job waits" "$(jf "$A" state)" waiting
check "tls: last_error mentions the certificate/SSL" sh -c "sqlite3 '$T/spool/state.db' 'SELECT last_error FROM jobs' | grep -Eqi 'certificate|ssl'"
eq "tls: nothing reached the handler" "$(nreq)" 0
check "tls: the peer saw the handshake fail" test "$(lq "$T/peer.log" 'sum(e["event"]=="tls_handshake_failed" for e in E)')" -ge 1
sed "s|timeout = 3;|timeout = 3; ca_file = \"$ROOT/peer-cert.pem\";|" "$T/conf" >"$T/conf.new" && mv "$T/conf.new" "$T/conf"
run_at 61
eq "tls: with ca_file = the cert it is sent" "$(jf "$A" state)" sent
eq "tls: one request reached the handler" "$(nreq)" 1
eq "tls: the request carried the key as a Bearer token" "$(lq "$T/peer.log" 'R[0]["headers"].get("Authorization") == "Bearer '"$KEY"'"')" True
keycheck

# ---------------------------------------------------------------- the key
eq "key: checked in every spool" "$(wc -l <"$ROOT/checked")" 16
eq "key: never in stderr of the -v runs" "$(grep -cF "$KEY" "$ROOT/all.stderr")" 0
eq "key: never in status.json" "$(grep -cF "$KEY" "$ROOT/all.status")" 0
eq "key: never in outreach.prom" "$(grep -cF "$KEY" "$ROOT/all.prom")" 0
eq "key: never in the ledger (sqlite3 .dump)" "$(grep -cF "$KEY" "$ROOT/all.dump")" 0
eq "no sanitizer report in any run's stderr" "$(grep -cE 'AddressSanitizer|LeakSanitizer|runtime error:' "$ROOT/all.stderr")" 0
check "key: the material checked is not empty" test -s "$ROOT/all.stderr" -a -s "$ROOT/all.status" -a -s "$ROOT/all.prom" -a -s "$ROOT/all.dump"

# A relative api_key_file, like every other relative path in the config, is
# read from the config file's directory (cron runs from any cwd).
T=$ROOT/relkey
mkdir -p "$T"
printf '%s\n' "$KEY" >"$T/key"
chmod 600 "$T/key"
printf 'spool = "spool";\nreport_dir = "reports";\n%s' "$(sgconf http://127.0.0.1:9 | sed 's|api_key_file = "[^"]*"|api_key_file = "key"|')" >"$T/conf"
check "config: relative api_key_file resolved against the config's directory" sh -c "cd / && '$OR' -c '$T/conf' check-config"

finish
