# Shared helpers for tests/e2e/*.sh (POSIX sh).  Source it, then use:
#   setup [EXTRA_CONFIG]   a fresh spool in $T with config $T/conf (file provider "dry"
#                          writing $T/outbox unless EXTRA_CONFIG replaces providers/senders)
#   ok NAME / notok NAME [DETAIL] / check NAME CMD...   TAP-style lines
#   or ARGS...             the binary with -c $T/conf
#   q SQL                  sqlite3 query on the ledger
set -u
OR=${OUTREACH_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/outreach}
TESTS=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/outreach-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
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
job() { printf '{"client":"%s","to":"%s","subject":"Hi","text":"Hello"%s}\n' "${2:-acme}" "$1" "${3:-}"; }
finish() { [ "$nfail" -eq 0 ]; exit $?; }
