# Shared helpers for tests/e2e/*.sh (POSIX sh).  Source it, then use:
#   setup [EXTRA_CONFIG]   a fresh spool in $T with config $T/conf (file provider "dry"
#                          writing $T/outbox unless EXTRA_CONFIG replaces providers/senders)
#   ok NAME / notok NAME [DETAIL] / check NAME CMD...   TAP-style lines
#   or ARGS...             the binary with -c $T/conf
#   q SQL                  sqlite3 query on the ledger
set -u
OR=${OUTREACH_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/outreach}
TESTS=$(cd "$(dirname "$0")/.." && pwd)
# tests/ (where this file and spoolcheck.py live) for the scripts' inline Python
for _d in "$(dirname "$0")" "$(dirname "$0")/.."; do
  [ -f "$_d/spoolcheck.py" ] && PYTHONPATH=$(cd "$_d" && pwd)${PYTHONPATH:+:$PYTHONPATH} && break
done
export PYTHONPATH
T=$(mktemp -d /tmp/outreach-test.XXXXXX)
pids=""   # peers started with bg: killed on exit
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null; done
  for p in $pids; do wait "$p" 2>/dev/null; done
  [ -n "${KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
nfail=0
ok()    { echo "ok - $1"; }
notok() { echo "not ok - $1"; [ $# -gt 1 ] && echo "#   $2"; nfail=$((nfail + 1)); }
check() { n=$1; shift; if "$@" >/dev/null 2>&1; then ok "$n"; else notok "$n" "failed: $*"; fi; }
eq()    { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "expected [$3], got [$2]"; fi; }
or()    { "$OR" -c "$T/conf" "$@"; }
q()     { sqlite3 -batch -noheader "$T/spool/state.db" "$1"; }
# count files in a spool folder matching *.json (excluding .err)
nfiles() { ls "$T/spool/$1" 2>/dev/null | grep -c '\.json$'; }
default_senders='
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = (
  { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; },
  { name = "s2"; from = "Two <two@s2.example>"; provider = "dry"; daily_limit = 1000; }
);'
setup() {
  cat >"$T/conf" <<EOC
spool = "spool";
report_dir = "reports";
timezone = "UTC";
${1:-$default_senders}
EOC
  "$OR" -c "$T/conf" init || { echo "not ok - init failed"; exit 1; }
}
# job JSON on stdout: job TO [CLIENT] [EXTRA_FIELDS]
# Scripts with several scenarios give each its own config and spool in $T/<dir>.
newconf() {    # newconf DIR PROVIDERS_AND_SENDERS [EXTRA]
  mkdir -p "$T/$1"
  cat >"$T/$1/conf" <<EOC
spool = "spool";
report_dir = "reports";
timezone = "UTC";
${3:-}
$2
EOC
  "$OR" -c "$T/$1/conf" init >/dev/null 2>"$T/$1/init.err" || notok "$1: init" "$(cat "$T/$1/init.err")"
}
orc() { d=$1; shift; "$OR" -c "$T/$d/conf" "$@"; }                   # orc DIR ARGS
qd()  { sqlite3 -batch -noheader "$T/$1/spool/state.db" "$2"; }      # qd DIR SQL
nf()  { ls "$T/$1/spool/$2" 2>/dev/null | grep -c '\.json$'; }      # nf DIR FOLDER
job() { printf '{"client":"%s","to":"%s","subject":"Hi","text":"Hello"%s}\n' "${2:-acme}" "$1" "${3:-}"; }
# campaign_jobs CLIENT CAMPAIGN N [EXTRA_FIELDS]: N jobs as JSON Lines, rK@CAMPAIGN.example.org each
campaign_jobs() {
  _k=1
  while [ "$_k" -le "$3" ]; do
    printf '{"client":"%s","campaign":"%s","to":"r%d@%s.example.org","subject":"Hi","text":"Hello"%s}\n' \
      "$1" "$2" "$_k" "$2" "${4:-}"
    _k=$((_k + 1))
  done
}
finish() { [ "$nfail" -eq 0 ]; exit $?; }
# a private copy of the binary under test, so a rebuild in the work tree while a
# long script runs cannot swap it (or leave it half-written) mid-test
private_binary() { cp "$OR" "$T/outreach.bin" && OR=$T/outreach.bin; }
# bg NAME CMD... : start a peer in the background, output in $T/NAME.out, pid in $pids
bg() {
  n=$1; shift
  "$@" >"$T/$n.out" 2>&1 &
  pids="$pids $!"
}
# wait_line NAME PATTERN SECONDS: wait for a peer's readiness line
wait_line() {
  i=0
  while [ $i -lt $(($3 * 10)) ]; do
    grep -q "$2" "$T/$1.out" 2>/dev/null && return 0
    sleep 0.1; i=$((i + 1))
  done
  echo "# $1 did not become ready:"; sed 's/^/#   /' "$T/$1.out" | tail -5
  return 1
}
# faulty_peer LOG MODE [ARGS...]: tests/peers/faulty.py on an ephemeral port, logging
# what it receives to LOG (its own output in LOG.out and LOG.err); sets PORT and
# PEERPID (the caller kills it); 1 when it has not said its port within 5 s.
faulty_peer() {
  _fl=$1 _fm=$2; shift 2
  : >"$_fl"
  python3 "$TESTS/peers/faulty.py" 0 "$_fm" "$_fl" "$@" >"$_fl.out" 2>"$_fl.err" &
  PEERPID=$!
  PORT=
  for _fi in $(seq 100); do
    PORT=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$_fl.out" 2>/dev/null)
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  return 1
}
# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds, for at most SECONDS
# (whole seconds); 1 if it never did.  Tests wait on a condition with this, never on
# a fixed sleep: the assertion after it then holds on a slow machine as on a fast one.
wait_for() {
  _wn=$(($1 * 10)); shift; _wi=0
  until "$@" >/dev/null 2>&1; do
    _wi=$((_wi + 1)); [ $_wi -ge $_wn ] && return 1
    sleep 0.1
  done
  return 0
}
# pycheck SCRIPT ARGS...: run a python checker printing ok/not ok lines and ending
# with "# analysis complete"; its failures count, and so does an unfinished analysis
pycheck() {
  out=$(python3 "$@" 2>&1)
  printf '%s\n' "$out" | grep -E '^(ok|not ok) - |^#' | grep -v '^# analysis complete$' || true
  _pcn=$(printf '%s\n' "$out" | grep -c '^not ok - ')
  nfail=$((nfail + _pcn))
  printf '%s\n' "$out" | grep -q '^# analysis complete$' ||
    notok "analysis ($*) finished" "$(printf '%s\n' "$out" | tail -5)"
}
# free_port: a loopback port free for both UDP and TCP (unbound binds both)
free_port() {
  python3 -c '
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    p = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(p)
    break'
}
# dovecot_up [oauth2 KEYFILE]: a private Dovecot (tests/peers/dovecot.sh) in $T/dv on a free
# loopback port pair (IMAP on $P, imaps on P+1), stopped on exit; sets DV, P and MD (user
# anna's Maildir).  Dovecot missing or not starting is a failure, and the script ends there.
dovecot_up() {
  PATH=$PATH:/usr/sbin
  if ! command -v dovecot >/dev/null 2>&1; then
    notok "dovecot installed" "missing dovecot (apt-get install dovecot-imapd)"; finish
  fi
  DV=$T/dv
  trap 'sh "$TESTS/peers/dovecot.sh" stop "$DV" >/dev/null 2>&1; cleanup' EXIT
  P=$(sh "$TESTS/peers/dovecot.sh" ports)
  if sh "$TESTS/peers/dovecot.sh" start "$DV" "$P" "$@" >"$T/dv.out" 2>&1; then
    ok "dovecot is up${1:+, with XOAUTH2}"
  else
    notok "dovecot is up${1:+, with XOAUTH2}"; sed 's/^/#   /' "$T/dv.out"; finish
  fi
  MD=$(sh "$TESTS/peers/dovecot.sh" maildir "$DV" anna)
}
# The PostgreSQL store's scripts: pg_up starts this script's own server
# (tests/peers/postgres.sh, on a free loopback port, stopped at exit) and sets
# pg_port and pg_ci (a conninfo for it); pgsql SQL queries it as the superuser;
# pg_host NAME [STORE_EXTRA] [PROVIDER_EXTRA] [SENDER_EXTRA] writes host NAME's config in
# $T/NAME (its own spool, the file provider, store.host_name NAME, the password
# "secret" in $T/pw); ph NAME ARGS... runs outreach as that host.
pg_up() {
  if ! ldd "$OR" 2>/dev/null | grep -q libpq; then
    notok "outreach is built with PostgreSQL (make PG=1; make test builds it so)" "$OR has no libpq"
    exit 1
  fi
  pg_port=$(sh "$TESTS/peers/postgres.sh" port)
  chmod o+x "$T"
  sh "$TESTS/peers/postgres.sh" start "$T/db" "$pg_port" >"$T/db.out" 2>&1 ||
    { notok "PostgreSQL starts" "$(tail -5 "$T/db.out")"; exit 1; }
  trap 'sh "$TESTS/peers/postgres.sh" kill "$T/db"; cleanup' EXIT
  pg_ci="host=127.0.0.1 port=$pg_port dbname=outreach user=outreach"
  printf 'secret\n' >"$T/pw"; chmod 600 "$T/pw"
}
pgsql() { sh "$TESTS/peers/postgres.sh" sql "${PG_DB:-$T/db}" "$1"; }   # PG_DB: another server's dir
pg_host() {
  mkdir -p "$T/$1"
  cat >"$T/$1/conf" <<EOC
spool = "spool";
report_dir = "reports";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; ${3:-} } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; ${4:-} } );
store = { type = "postgresql"; conninfo = "$pg_ci"; password_file = "../pw"; host_name = "$1"; ${2:-} };
EOC
}
ph() { _h=$1; shift; "$OR" -c "$T/$_h/conf" "$@"; }
pg_leases_lapse() {   # waits (in the database, at most 60 s) until no run holds a live lease
  i=0
  until [ "$(pgsql "SELECT count(*) FROM runs WHERE state = 'running' AND lease_until > clock_timestamp()")" = 0 ]; do
    i=$((i + 1)); [ $i -gt 600 ] && return 1; sleep 0.1
  done
}
# pg_recorder: a provider, a recorder that appends each delivery's job id (the Message-ID's second
# part) to $T/deliveries, one line a delivery, whichever host sends it (a resend by the
# same host shows as a second line), then takes DELAY seconds; a message cut short before
# its Message-ID (its sender killed while writing it) is refused, as a provider refuses a
# request it did not get whole
pg_recorder() {   # pg_recorder DELAY: writes $T/send.sh, prints the provider's config
  printf '#!/bin/sh
id=$(sed -n "s/^Message-ID: <[^.]*\\.\\([0-9a-f]*\\)@.*/\\1/p" | head -1)
[ -n "$id" ] || { echo "incomplete message" >&2; exit 1; }
echo "$id" >>"%s"
sleep %s
' \
    "$T/deliveries" "$1" >"$T/send.sh"
  chmod 755 "$T/send.sh"
  echo "{ name = \"p\"; type = \"exec\"; argv = [\"$T/send.sh\"]; timeout = 1; }"
}
# pg_audit NAME: what the provider received against the ledger
pg_audit() {
  sort "$T/deliveries" >"$T/emls"
  pgsql "SELECT id FROM jobs WHERE state = 'sent' ORDER BY id" | sort >"$T/sent"
  eq "$1: no job delivered twice" "$(uniq -d <"$T/emls" | wc -l)" 0
  eq "$1: every sent job was delivered" "$(comm -13 "$T/emls" "$T/sent" | wc -l)" 0
  eq "$1: every delivery is of a sent or held job" \
    "$(comm -23 "$T/emls" "$T/sent" | while read -r id; do pgsql "SELECT state FROM jobs WHERE id = '$id'"; done | grep -vc '^held$')" 0
  eq "$1: every job is sent or held, none waiting, claimed or sending" \
    "$(pgsql "SELECT count(*) FROM jobs WHERE state NOT IN ('sent', 'held')")" 0
  eq "$1: the day counter is the sent and held jobs" \
    "$(pgsql "SELECT (SELECT coalesce(sum(n), 0) FROM day_counts WHERE kind = 's') - (SELECT count(*) FROM jobs WHERE state IN ('sent', 'held'))")" 0
}
# pg_drain CONF...: those hosts tick at once until no job is waiting, claimed or sending (at
# most 10 rounds); a run that fails is logged in $T/drain.log
pg_drain() {
  for _r in 1 2 3 4 5 6 7 8 9 10; do
    _p=""
    for _c in "$@"; do ("$OR" -c "$_c" run >/dev/null 2>&1 || echo "$_c rc=$?" >>"$T/drain.log") & _p="$_p $!"; done
    wait $_p
    [ "$(pgsql "SELECT count(*) FROM jobs WHERE state IN ('waiting', 'claimed', 'sending')")" = 0 ] && return 0
  done
}
