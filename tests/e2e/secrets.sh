#!/bin/sh
# tests/e2e/secrets.sh — issue 7: secrets stay secret.
#   a secret file readable by group or others (640, 604) -> exit 78 naming the file;
#   a secret written inline in the config -> exit 78 (unknown key), the value not echoed;
#   a verbose run with SES, SendGrid, Mailgun and SMTP accounts (and one SendGrid key
#     from the environment, its peer hanging) against loopback peers: the distinctive keys appear nowhere
#     in the run's stdout/stderr, the reports, the ledger (.dump and raw bytes),
#     any spool file, the command outputs (status, jobs, show, check-config), nor
#     in any process's argv while a transfer hangs;
#   plain http:// is refused for any host that is not loopback, allow_plaintext
#     or not (tricky spellings included), and there is no key to switch TLS
#     verification off.
# Redirects and response caps are covered by faults.sh.
. "$(dirname "$0")/../lib.sh"
private_binary
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
NOW=1795813200
rnd() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }
K_SES="SESsecret$(rnd)XyZ"; K_SG="SG.sgsecret$(rnd)"; K_MG="key-mgsecret$(rnd)"; K_SMTP="smtpsecret$(rnd)pw"
K_ENV="SG.envsecret$(rnd)"
KEYS="$K_SES $K_SG $K_MG $K_SMTP $K_ENV"
mkdir -p "$T/s"
printf '%s\n' "$K_SES" >"$T/s/ses.secret"; printf '%s\n' "$K_SG" >"$T/s/sg.key"
printf '%s\n' "$K_MG" >"$T/s/mg.key"; printf '%s\n' "$K_SMTP" >"$T/s/smtp.pass"
chmod 600 "$T/s/"*

start_peer() {   # start_peer MODE LOG: sets PORT
  faulty_peer "$2" "$1"; _rc=$?
  PIDS="$PIDS $PEERPID"
  [ $_rc = 0 ] || notok "peer $1 started" "$(cat "$2.err")"
  return $_rc
}
mkdir -p "$T/peers"
start_peer ok "$T/peers/ok.log"; P_OK=$PORT
start_peer hang "$T/peers/hang.log"; P_HANG=$PORT
# a closed port for SMTP: bind, note the port, close
P_CLOSED=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

provs() {   # the four remote accounts (and one key from the environment)
  cat <<EOF
providers = (
  { name = "ses"; type = "ses"; region = "eu-west-1"; access_key_id = "AKIAEXAMPLEKEYID"; secret_file = "$T/s/ses.secret";
    endpoint = "http://127.0.0.1:$P_OK"; allow_plaintext = true; timeout = 4; },
  { name = "sg"; type = "sendgrid"; api_key_file = "$T/s/sg.key"; endpoint = "http://127.0.0.1:$P_OK"; allow_plaintext = true;
    timeout = 4; feed = true; },
  { name = "sgenv"; type = "sendgrid"; api_key_env = "OUTREACH_TEST_SG_KEY"; endpoint = "http://127.0.0.1:$P_HANG";
    allow_plaintext = true; timeout = 4; },
  { name = "mg"; type = "mailgun"; domain = "mg.example.com"; api_key_file = "$T/s/mg.key"; endpoint = "http://127.0.0.1:$P_OK";
    allow_plaintext = true; timeout = 4; feed = true; },
  { name = "relay"; type = "smtp"; url = "smtp://127.0.0.1:$P_CLOSED"; allow_plaintext = true; username = "u";
    password_file = "$T/s/smtp.pass"; timeout = 4; }
);
senders = (
  { name = "ses1"; from = "S <s@ses.example>"; provider = "ses"; daily_limit = 100; },
  { name = "sg1"; from = "G <g@sg.example>"; provider = "sg"; daily_limit = 100; },
  { name = "env1"; from = "E <e@env.example>"; provider = "sgenv"; daily_limit = 100; },
  { name = "mg1"; from = "M <m@mg.example>"; provider = "mg"; daily_limit = 100; },
  { name = "smtp1"; from = "R <r@relay.example>"; provider = "relay"; daily_limit = 100; }
);
EOF
}
export OUTREACH_TEST_SG_KEY="$K_ENV"

# ---- a secret file readable by group or others -------------------------------------------------
setup "$(provs)"
for mode in 640 604 644; do
  chmod $mode "$T/s/mg.key"
  OUTREACH_NOW=$NOW or run >"$T/out" 2>"$T/err"; rc=$?
  eq "secret file chmod $mode: run exits 78" "$rc" 78
  check "secret file chmod $mode: the message names the file and says why" \
    sh -c "grep -q '$T/s/mg.key' '$T/err' && grep -qi 'group or others' '$T/err'"
  or check-config >/dev/null 2>&1; eq "secret file chmod $mode: check-config exits 78" "$?" 78
done
chmod 600 "$T/s/mg.key"
or check-config >"$T/cc.out" 2>&1; eq "secret files chmod 600: check-config exits 0" "$?" 0
check "check-config names where each secret came from (the key, never 'config')" sh -c "
  grep -q '^provider relay: .*secret from password_file $T/s/smtp.pass,' '$T/cc.out' &&
  grep -q '^provider sgenv: .*secret from api_key_env OUTREACH_TEST_SG_KEY,' '$T/cc.out' &&
  grep -q '^provider ses: .*secret from secret_file $T/s/ses.secret,' '$T/cc.out' && ! grep -q 'secret from config' '$T/cc.out'"

# ---- a secret inline in the config -----------------------------------------------------------
for kv in 'api_key = "INLINEsecret1"' 'password = "INLINEsecret2"' 'secret = "INLINEsecret3"' 'secret_access_key = "INLINEsecret4"'; do
  mkdir -p "$T/inl"
  cat >"$T/inl/conf" <<EOF
spool = "spool";
report_dir = "reports";
providers = ( { name = "sg"; type = "sendgrid"; api_key_file = "$T/s/sg.key"; $kv; } );
senders = ( { name = "a"; from = "A <a@a.example>"; provider = "sg"; daily_limit = 10; } );
EOF
  key=${kv%% *}
  "$OR" -c "$T/inl/conf" check-config >"$T/out" 2>"$T/err"; rc=$?
  eq "inline secret ($key = ...): exit 78" "$rc" 78
  check "inline secret ($key = ...): the message names the unknown key" grep -q "$key" "$T/err"
  eq "inline secret ($key = ...): the value is not echoed" "$(cat "$T/out" "$T/err" | grep -c INLINEsecret)" 0
done

# ---- a verbose run against loopback peers: the keys show nowhere --------------------------------
i=0
for s in ses1 sg1 env1 mg1 smtp1; do
  i=$((i + 1))
  job "u$i@rcpt.example" acme ",\"sender\":\"$s\""
  job "v$i@rcpt.example" globex ",\"sender\":\"$s\""
done | or enqueue - >"$T/ids" || notok "enqueue"
OUTREACH_NOW=$NOW "$OR" -v -c "$T/conf" run >"$T/run.out" 2>"$T/run.err" &
RPID=$!
: >"$T/ps.txt"
n=0
while kill -0 $RPID 2>/dev/null; do   # every process's argv, while the transfers of account sgenv hang
  ps -eo args >>"$T/ps.txt" 2>/dev/null
  n=$((n + 1))
  sleep 0.1
done
wait $RPID; rc=$?
eq "verbose run: exit 0" "$rc" 0
echo "# argv of every process sampled $n times during the run"
check "verbose run: a transfer hung while argv was sampled (the peer held a request)" grep -q '"event": "request"' "$T/peers/hang.log"
check "verbose run: requests reached the SendGrid peer with the key in the Authorization header" \
  grep -q "Bearer $K_SG" "$T/peers/ok.log"
echo "# ledger after the run: $(q "SELECT group_concat(sender || '=' || state, ' ') FROM jobs")"
sqlite3 "$T/spool/state.db" .dump >"$T/ledger.dump" 2>&1
or status >"$T/cmd.status" 2>&1
or status --json >"$T/cmd.status.json" 2>&1
or jobs --json >"$T/cmd.jobs" 2>&1
or senders >"$T/cmd.senders" 2>&1
or check-config >"$T/cmd.cc" 2>&1
: >"$T/cmd.show"
for id in $(cat "$T/ids"); do or show "$id" --json >>"$T/cmd.show" 2>&1; done
check "show: the attempts are there to search (a reason per job)" test -s "$T/cmd.show"
hits() {   # hits FILE...: how many of the keys occur in the files (binary files read as bytes)
  _n=0
  for k in $KEYS; do
    _c=$(cat "$@" 2>/dev/null | grep -a -c -F "$k")
    _n=$((_n + _c))
  done
  echo $_n
}
eq "no key in the run's stdout or stderr (-v)" "$(hits "$T/run.out" "$T/run.err")" 0
eq "no key in status.json" "$(hits "$T/reports/status.json")" 0
eq "no key in outreach.prom" "$(hits "$T/reports/outreach.prom")" 0
eq "no key in status.txt" "$(hits "$T/reports/status.txt")" 0
eq "no key in the ledger (sqlite3 .dump)" "$(hits "$T/ledger.dump")" 0
eq "no key in any spool file, the database, its WAL and shm included (raw bytes)" \
  "$(hits $(find "$T/spool" -type f))" 0
eq "no key in the output of status, status --json, jobs --json, senders, show, check-config" \
  "$(hits "$T/cmd.status" "$T/cmd.status.json" "$T/cmd.jobs" "$T/cmd.senders" "$T/cmd.show" "$T/cmd.cc")" 0
eq "no key in any process's argv while a transfer hung" "$(hits "$T/ps.txt")" 0
check "the run said something on stderr (so the check above means something)" test -s "$T/run.err"

# ---- plain http:// only on loopback; no switch for TLS verification ---------------------------
for ep in "http://api.sendgrid.example" "http://10.0.0.1:8080" "http://127.0.0.1.evil.example" \
          "http://127.0.0.1@evil.example" "http://127.0.0.1:80@evil.example" "http://localhost.evil.example"; do
  mkdir -p "$T/pt"
  cat >"$T/pt/conf" <<EOF
spool = "spool";
report_dir = "reports";
providers = ( { name = "sg"; type = "sendgrid"; endpoint = "$ep"; allow_plaintext = true; api_key_file = "$T/s/sg.key"; } );
senders = ( { name = "a"; from = "A <a@a.example>"; provider = "sg"; daily_limit = 10; } );
EOF
  "$OR" -c "$T/pt/conf" check-config >/dev/null 2>"$T/err"; rc=$?
  eq "endpoint $ep with allow_plaintext = true: exit 78 (not a loopback host)" "$rc" 78
done
check "the refusal says why (https://, http:// only on loopback)" grep -q 'https://' "$T/err"
for kv in 'ssl_verify = false' 'insecure = true' 'tls_verify = false' 'verify_peer = false'; do
  cat >"$T/pt/conf" <<EOF
spool = "spool";
report_dir = "reports";
providers = ( { name = "sg"; type = "sendgrid"; api_key_file = "$T/s/sg.key"; $kv; } );
senders = ( { name = "a"; from = "A <a@a.example>"; provider = "sg"; daily_limit = 10; } );
EOF
  "$OR" -c "$T/pt/conf" check-config >/dev/null 2>&1
  eq "no switch to turn TLS verification off: '$kv' is refused (exit 78)" "$?" 78
done
finish
