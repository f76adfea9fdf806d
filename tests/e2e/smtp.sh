#!/bin/sh
# tests/e2e/smtp.sh — an SMTP relay's replies as Postfix gives them, against
# tests/peers/smtp-peer.js (STARTTLS + AUTH, replies chosen by the local part):
#   the reply's RFC 3463 enhanced code decides (5.1.1, 5.1.10, 5.2.1: the
#   mailbox is dead, suppressed; 5.7.x policy: failed, not suppressed), else
#   the basic code (553: suppressed);
#   421 pauses the account and counts toward its circuit, burning no attempt;
#   451 (greylisting) retries the job;
#   "try again after 1000000000 seconds" waits max_provider_wait at most, with
#   an alert;
#   the EHLO name is fully qualified (the machine's FQDN, else the sender's
#   domain, or the account's helo) and a relay refusing it (at EHLO, or at RCPT
#   as Postfix does by default) takes the account down, never a job;
#   a 554 greeting ("No SMTP service here", before EHLO: the relay refuses this
#   client) takes the account down the same way, never a job;
#   RCPT TO carries the local part as the producer wrote it.
# san: yes
. "$(dirname "$0")/../lib.sh"

PEERS=$TESTS/peers
NOW=1796029200            # 2026-11-30T09:00:00Z, a Monday
export OUTREACH_NOW=$NOW
if [ ! -e "$PEERS/node_modules/smtp-server/package.json" ]; then
  notok "test peers installed" "missing smtp-server (cd tests/peers && npm ci)"; finish
fi
printf 'smtp-pass-1\n' >"$T/pass"; chmod 600 "$T/pass"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
  -days 2 -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1 || notok "openssl made a certificate"
set -- $(python3 -c 'import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
P_OK=$1 P_EHLO=$2 P_RCPT=$3 P_GREET=$4
bg peer node "$PEERS/smtp-peer.js" "$P_OK" "$T/cert.pem" "$T/key.pem" u smtp-pass-1 "$T/out"
bg peer-ehlo node "$PEERS/smtp-peer.js" "$P_EHLO" "$T/cert.pem" "$T/key.pem" u smtp-pass-1 "$T/out-ehlo" helo-ehlo
bg peer-rcpt node "$PEERS/smtp-peer.js" "$P_RCPT" "$T/cert.pem" "$T/key.pem" u smtp-pass-1 "$T/out-rcpt" helo-rcpt
bg peer-greet node "$PEERS/smtp-peer.js" "$P_GREET" "$T/cert.pem" "$T/key.pem" u smtp-pass-1 "$T/out-greet" greet-554
wait_line peer 'smtp-peer listening' 10 && wait_line peer-ehlo 'smtp-peer listening' 10 &&
  wait_line peer-rcpt 'smtp-peer listening' 10 && wait_line peer-greet 'smtp-peer listening' 10
check "SMTP peers are up" test $? -eq 0

# relay DIR PORT [PROVIDER KEYS] [TOP-LEVEL KEYS]
relay() {
  newconf "$1" "
providers = ( { name = \"relay\"; type = \"smtp\"; url = \"smtp://127.0.0.1:$2\"; username = \"u\";
                password_file = \"$T/pass\"; ca_file = \"$T/cert.pem\"; timeout = 10; concurrency = 1;
                circuit_failures = 3; ${3:-} } );
senders = ( { name = \"r\"; from = \"Relay <relay@r.example>\"; provider = \"relay\"; daily_limit = 1000; } );" "${4:-}"
}
jf() { qd "$1" "SELECT $3 FROM jobs WHERE id = '$2'"; }     # jf DIR ID FIELD
af() { qd "$1" "SELECT $2 FROM accounts WHERE name = 'relay'"; }
suppressed() { qd "$1" "SELECT count(*) FROM suppressions WHERE address = '$2'"; }
alert() { qd "$1" "SELECT count(*) FROM alerts WHERE name = '$2'"; }
send1() {   # send1 DIR ADDRESS: enqueue one job and run once; prints the job id
  _id=$(job "$2" | orc "$1" enqueue -)
  orc "$1" run 2>>"$T/$1/run.err"
  echo "$_id"
}

# ---- enhanced status codes: dead mailboxes are suppressed, policy is not ---------------
relay codes "$P_OK"
for c in "dead1@example.com:554 5.1.1" "disabled1@example.com:550 5.2.1" "nullmx1@example.com:556 5.1.10" \
         "nomailbox1@example.com:553 (no enhanced code)"; do
  a=${c%%:*} what=${c#*:}
  id=$(send1 codes "$a")
  eq "$what: the job failed" "$(jf codes "$id" state)" failed
  eq "$what: the address is suppressed" "$(suppressed codes "$a")" 1
done
id=$(send1 codes policy1@example.com)
eq "550 5.7.1 (policy): the job failed" "$(jf codes "$id" state)" failed
eq "550 5.7.1 (policy): the address is not suppressed" "$(suppressed codes policy1@example.com)" 0
check "550 5.7.1: its .err gives the server's reason" grep -q 'refused by policy' "$T/codes/spool/failed/$id.err"
eq "none of these opened the circuit" "$(af codes failures):$(alert codes account_down:relay)" 0:0

# ---- 421: the account pauses and counts toward its circuit; 451: the job retries -------
relay shed "$P_OK"
a=$(job shed1@example.com | orc shed enqueue -)
b=$(job shed2@example.com | orc shed enqueue -)
orc shed run 2>"$T/shed/run.err"
eq "421: both jobs wait (the second was not tried while paused)" "$(jf shed "$a" state):$(jf shed "$b" state)" waiting:waiting
eq "421: no attempt burned" "$(jf shed "$a" attempts):$(jf shed "$b" attempts)" 0:0
eq "421: counted on the account" "$(af shed failures)" 1
p=$(af shed "CAST(paused_until AS INTEGER)")
check "421: the account is paused (paused_until $p > now)" test "${p:-0}" -gt "$NOW"
for k in 1 2; do OUTREACH_NOW=$((NOW + 100 * k)) orc shed run 2>>"$T/shed/run.err"; done
eq "421 three times: the circuit opened with an alert" "$(alert shed account_down:relay)" 1
eq "421 three times: still no attempt burned" "$(jf shed "$a" attempts)" 0
eq "421 three times: nothing failed" "$(qd shed "SELECT count(*) FROM jobs WHERE state = 'failed'")" 0

relay grey "$P_OK"
id=$(send1 grey grey1@example.com)
eq "451 4.7.1 (greylisted): the job waits for a retry" "$(jf grey "$id" state)" waiting
eq "451: one attempt counted, for the job" "$(jf grey "$id" attempts)" 1
eq "451: the account is neither paused nor counted" "$(af grey "paused_until <= $NOW"):$(af grey failures)" 1:0

# ---- "try again after 10^9 s": at most max_provider_wait, with an alert ---------------
relay slow "$P_OK" "" "max_provider_wait = 600;"
id=$(send1 slow slow1@example.com)
eq "454 try again after 1e9 s: the job waits, no attempt burned" "$(jf slow "$id" state):$(jf slow "$id" attempts)" waiting:0
eq "454 try again after 1e9 s: next_due is now + max_provider_wait (600)" "$(jf slow "$id" "CAST(next_due AS INTEGER) - $NOW")" 600
eq "454 try again after 1e9 s: paused_until is now + 600" "$(af slow "CAST(paused_until AS INTEGER) - $NOW")" 600
eq "454 try again after 1e9 s: alert provider_wait:relay raised" "$(alert slow provider_wait:relay)" 1
check "the alert says what was asked" sh -c "sqlite3 '$T/slow/spool/state.db' \"SELECT detail FROM alerts WHERE name = 'provider_wait:relay'\" | grep -q 'asked to wait 1000000000 s'"
relay slowdef "$P_OK"
id=$(send1 slowdef slow2@example.com)
eq "default max_provider_wait: one hour" "$(jf slowdef "$id" "CAST(next_due AS INTEGER) - $NOW")" 3600

# ---- EHLO: a fully qualified name; a refused greeting is the account's, not the job's --
relay helo "$P_OK"
id=$(send1 helo John.Smith@Example.COM)
eq "default EHLO: the job was sent" "$(jf helo "$id" state)" sent
h=$(sed -n 1p "$T/out/rcpt.log" | cut -d' ' -f1)
case $h in *.*) ok "default EHLO name is fully qualified ($h)" ;; *) notok "default EHLO name is fully qualified" "got [$h]" ;; esac
eq "RCPT TO keeps the local part as written, domain lower-cased" "$(tail -1 "$T/out/rcpt.log" | cut -d' ' -f2)" John.Smith@example.com
check "the message's To keeps it too" grep -q '^To: <John.Smith@example.com>' "$T/out/1.eml"

relay fqdnrelay "$P_RCPT"
id=$(send1 fqdnrelay fq1@example.com)
eq "default EHLO to a relay refusing names without a dot: sent" "$(jf fqdnrelay "$id" state)" sent

relay heloset "$P_OK" 'helo = "mx1.r.example";'
send1 heloset helo1@example.com >/dev/null
eq "helo = \"mx1.r.example\": the EHLO name sent" "$(tail -1 "$T/out/rcpt.log" | cut -d' ' -f1)" mx1.r.example

for where in ehlo rcpt; do
  [ $where = ehlo ] && port=$P_EHLO || port=$P_RCPT
  relay "short$where" "$port" 'helo = "vm";'
  a=$(job "a-$where@example.com" | orc "short$where" enqueue -)
  b=$(job "b-$where@example.com" | orc "short$where" enqueue -)
  orc "short$where" run 2>"$T/short$where/run.err"
  eq "504 to a short name ($where): no job failed" "$(qd "short$where" "SELECT count(*) FROM jobs WHERE state = 'failed'")" 0
  eq "504 to a short name ($where): both wait, no attempt burned" \
    "$(jf "short$where" "$a" state):$(jf "short$where" "$a" attempts):$(jf "short$where" "$b" state):$(jf "short$where" "$b" attempts)" \
    waiting:0:waiting:0
  eq "504 to a short name ($where): the circuit is open with alert account_down:relay" "$(alert "short$where" account_down:relay)" 1
  check "504 to a short name ($where): the reason names EHLO/HELO" \
    sh -c "sqlite3 '$T/short$where/spool/state.db' \"SELECT reason FROM accounts WHERE name = 'relay'\" | grep -q 'EHLO/HELO refused'"
  # fixed: the same relay takes the fully qualified name
  sed -i 's/helo = "vm";/helo = "mx1.r.example";/' "$T/short$where/conf"
  OUTREACH_NOW=$((NOW + 400)) orc "short$where" run 2>>"$T/short$where/run.err"
  eq "with a fully qualified helo ($where): both sent after the cool-down" \
    "$(qd "short$where" "SELECT count(*) FROM jobs WHERE state = 'sent'")" 2
done

# ---- a refused greeting (554 before EHLO) is the account's, not the job's ----------------
relay greet "$P_GREET"
a=$(job a-greet@example.com | orc greet enqueue -)
b=$(job b-greet@example.com | orc greet enqueue -)
orc greet run 2>"$T/greet/run.err"
eq "554 greeting: no job failed" "$(qd greet "SELECT count(*) FROM jobs WHERE state = 'failed'")" 0
eq "554 greeting: both wait, no attempt burned" \
  "$(jf greet "$a" state):$(jf greet "$a" attempts):$(jf greet "$b" state):$(jf greet "$b" attempts)" waiting:0:waiting:0
eq "554 greeting: the circuit is open with alert account_down:relay" "$(alert greet account_down:relay)" 1
check "554 greeting: the reason names the refused greeting and the relay's words" \
  sh -c "sqlite3 '$T/greet/spool/state.db' \"SELECT reason FROM accounts WHERE name = 'relay'\" | grep 'greeting refused' | grep -q 'No SMTP service here'"
check "README's SMTP outcome table has the refused greeting's row" grep -q '^| SMTP 5xx greeting' "$TESTS/../README.md"

# ---- config: helo must be a host name; the URL carries no path ---------------------------
sed -e 's/helo = "mx1.r.example";/helo = "bad name";/' "$T/heloset/conf" >"$T/badhelo.conf"
"$OR" -c "$T/badhelo.conf" check-config >"$T/badhelo.out" 2>&1; rc=$?
eq "helo with a space: check-config exits 78" "$rc" 78
check "helo with a space: the error names helo" grep -q "helo must be a host name" "$T/badhelo.out"
sed -e "s|url = \"smtp://127.0.0.1:$P_OK\"|url = \"smtp://127.0.0.1:$P_OK/vm\"|" "$T/helo/conf" >"$T/badurl.conf"
"$OR" -c "$T/badurl.conf" check-config >"$T/badurl.out" 2>&1; rc=$?
eq "an EHLO name as the url's path: check-config exits 78 and points to helo" "$rc:$(grep -c "the EHLO name is 'helo'" "$T/badurl.out")" 78:1
finish
