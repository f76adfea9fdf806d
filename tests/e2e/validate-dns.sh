#!/bin/sh
# tests/e2e/validate-dns.sh — `outreach validate --mx` and `enqueue --validate --mx`
# against a local unbound (doc/design.md §2, §13): MX ok, A-only ok (implicit MX), null
# MX invalid, NXDOMAIN invalid no_mx, a zone that never answers unknown dns_timeout;
# each domain queried once however many addresses share it (counted in unbound's
# query log), the SQLite cache on a second run (and its one-day age), dns_server in
# the config, enqueue skipping invalid jobs (and risky ones with --strict), then
# throughput figures (# lines, no assertions): 10,000 addresses over 500 domains.
. "$(dirname "$0")/../lib.sh"

UNBOUND=${UNBOUND:-/usr/sbin/unbound}
if [ ! -x "$UNBOUND" ]; then
  echo "ok - # SKIP $UNBOUND not installed"
  exit 0
fi
UB_PID=
stop_unbound() { [ -n "$UB_PID" ] && kill "$UB_PID" 2>/dev/null && wait "$UB_PID" 2>/dev/null; UB_PID=; }
trap 'stop_unbound; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP

setup
ms() { date +%s%N | cut -c1-13; }   # wall clock in milliseconds

# ---- unbound on 127.0.0.1, a free high port ---------------------------------------------
PORT=$(free_port)   # free for UDP and TCP: unbound binds both
NPERF=500
{
  cat <<EOF
server:
  interface: 127.0.0.1
  port: $PORT
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$T"
  pidfile: "$T/unbound.pid"
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  log-queries: yes
  logfile: "$T/unbound.log"
  verbosity: 1
  use-syslog: no
  num-threads: 1
  module-config: "iterator"
  local-zone: "ready.test." static
  local-data: "ready.test. IN A 127.0.0.1"
  local-zone: "mx.test." static
  local-data: "mx.test. IN MX 10 mail.mx.test."
  local-data: "mail.mx.test. IN A 127.0.0.1"
  local-zone: "aonly.test." static
  local-data: "aonly.test. IN A 127.0.0.1"
  local-zone: "aaaaonly.test." static
  local-data: "aaaaonly.test. IN AAAA ::1"
  local-zone: "txtonly.test." static
  local-data: "txtonly.test. IN TXT \"no mail here\""
  local-zone: "nullmx.test." static
  local-data: "nullmx.test. IN MX 0 ."
  local-zone: "nx.test." static
  local-zone: "slow.test." deny
  local-zone: "mailinator.com." static
  local-data: "mailinator.com. IN MX 10 mail.mailinator.com."
  local-zone: "perf.test." static
EOF
  i=0
  while [ $i -lt $NPERF ]; do
    echo "  local-data: \"dom$i.perf.test. IN MX 10 mx.dom$i.perf.test.\""
    i=$((i + 1))
  done
} >"$T/unbound.conf"
"$UNBOUND" -d -c "$T/unbound.conf" >"$T/unbound.out" 2>&1 &
UB_PID=$!

# wait until it answers (a plain UDP query for ready.test A)
if ! python3 "$TESTS/peers/dns_ready.py" "$PORT" ready.test; then
  notok "unbound answers on 127.0.0.1:$PORT" "$(cat "$T/unbound.out" "$T/unbound.log" 2>/dev/null | tail -5)"
  finish
fi
ok "unbound answers on 127.0.0.1:$PORT"

# The query log on this machine (unbound 1.17): "[epoch] unbound[pid:0] info: 127.0.0.1 NAME. TYPE IN"
check "unbound's query log has the form '... info: 127.0.0.1 ready.test. A IN'" \
  grep -q 'info: 127\.0\.0\.1 ready\.test\. A IN$' "$T/unbound.log"
mark() { wc -l <"$T/unbound.log"; }
# queries TYPE DOMAIN SINCE: how many TYPE queries for DOMAIN after log line SINCE
queries() {
  tail -n +"$(($3 + 1))" "$T/unbound.log" |
    awk -v n="$2." -v t="$1" '$3 == "info:" && tolower($5) == n && $6 == t { c++ } END { print c + 0 }'
}

# ---- 20 addresses for each domain, interleaved, some in capitals ------------------------------
DOMAINS="mx.test aonly.test aaaaonly.test txtonly.test nullmx.test nx.test slow.test"
i=1
while [ $i -le 20 ]; do
  for d in $DOMAINS; do
    if [ $((i % 4)) -eq 0 ]; then echo "User$i@$(echo "$d" | tr a-z A-Z)"; else echo "user$i@$d"; fi
  done
  i=$((i + 1))
done >"$T/dns.txt"

# per_domain OUTFILE: "domain verdict reasons" once per distinct (domain, verdict, reasons)
per_domain() {
  python3 -c '
import json, sys
seen = set()
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    seen.add("%s %s %s" % (o["address"].split("@")[1], o["verdict"], ",".join(sorted(o["reasons"])) or "-"))
print("\n".join(sorted(seen)))' "$1"
}
want_dns='aaaaonly.test ok -
aonly.test ok -
mx.test ok -
nullmx.test invalid null_mx
nx.test invalid no_mx
slow.test unknown dns_timeout
txtonly.test invalid no_mx'

m0=$(mark); t0=$(ms)
or validate --json --mx --dns-server "127.0.0.1:$PORT" --timeout-ms 300 "$T/dns.txt" >"$T/out1" 2>"$T/err1"; rc=$?
t1=$(ms)
eq "validate --mx (cold cache): exit 0" "$rc" 0
eq "validate --mx: 140 objects" "$(wc -l <"$T/out1")" 140
eq "validate --mx: mx.test ok, aonly.test ok (A), aaaaonly.test ok (AAAA), txtonly.test invalid no_mx (no MX/A/AAAA), nullmx.test invalid null_mx, nx.test invalid no_mx, slow.test unknown dns_timeout" \
  "$(per_domain "$T/out1")" "$want_dns"
check "validate --mx: slow.test is not invalid" sh -c "! grep -q '@slow.test.*\"invalid\"' '$T/out1'"
eq "mx.test: one MX query for 20 addresses" "$(queries MX mx.test "$m0")" 1
eq "aonly.test: one MX query for 20 addresses" "$(queries MX aonly.test "$m0")" 1
eq "aonly.test: one A query (the implicit MX)" "$(queries A aonly.test "$m0")" 1
eq "aaaaonly.test: one MX, one A and one AAAA query for 20 addresses" \
  "$(queries MX aaaaonly.test "$m0") $(queries A aaaaonly.test "$m0") $(queries AAAA aaaaonly.test "$m0")" "1 1 1"
eq "txtonly.test: one MX, one A and one AAAA query for 20 addresses" \
  "$(queries MX txtonly.test "$m0") $(queries A txtonly.test "$m0") $(queries AAAA txtonly.test "$m0")" "1 1 1"
eq "nullmx.test: one MX query for 20 addresses" "$(queries MX nullmx.test "$m0")" 1
eq "nx.test: one MX query for 20 addresses" "$(queries MX nx.test "$m0")" 1
n=$(queries MX slow.test "$m0")
check "slow.test: at most 2 MX queries for 20 addresses (one try and one retry), got $n" test "$n" -ge 1 -a "$n" -le 2
echo "# cold run, 140 addresses over 7 domains, timeout 300 ms: $((t1 - t0)) ms"

# ---- a second run within the day: the cache answers, slow.test is asked again ----------------------
m0=$(mark)
or validate --json --mx --dns-server "127.0.0.1:$PORT" --timeout-ms 300 "$T/dns.txt" >"$T/out2" 2>/dev/null; rc=$?
eq "validate --mx (second run): exit 0" "$rc" 0
check "second run: the same objects as the first" cmp -s "$T/out1" "$T/out2"
for d in mx.test aonly.test aaaaonly.test txtonly.test nullmx.test nx.test; do
  eq "second run: no MX query for $d (cached)" "$(queries MX "$d" "$m0")" 0
done
eq "second run: no A query for aonly.test (cached)" "$(queries A aonly.test "$m0")" 0
check "second run: slow.test (never answered) is not cached: asked again" test "$(queries MX slow.test "$m0")" -ge 1
eq "the cache holds the six answered domains, not slow.test" \
  "$(q "SELECT group_concat(domain, ' ') FROM (SELECT domain FROM dns_cache WHERE domain LIKE '%.test' ORDER BY domain)")" \
  "aaaaonly.test aonly.test mx.test nullmx.test nx.test txtonly.test"

# ---- dns_server in the config works like --dns-server -----------------------------------------------
printf 'dns_server = "127.0.0.1:%s";\ndns_timeout_ms = 300;\n' "$PORT" >>"$T/conf"
q "DELETE FROM dns_cache"
m0=$(mark)
or validate --json --mx "$T/dns.txt" >"$T/out3" 2>/dev/null; rc=$?
eq "dns_server in the config: exit 0" "$rc" 0
check "dns_server in the config: the same objects as with --dns-server" cmp -s "$T/out1" "$T/out3"
eq "dns_server in the config: mx.test asked once, of that server" "$(queries MX mx.test "$m0")" 1

# ---- a malformed --dns-server is a usage error --------------------------------------------------------
printf 'x@fresh-a.test\n' >"$T/fresh.txt"
or validate --json --mx --dns-server 'not-an-ip' "$T/fresh.txt" >"$T/out" 2>"$T/err"; rc=$?
eq "--dns-server not-an-ip: exit 64 (bad parameter), not a run of 'unknown' verdicts" "$rc" 64

# ---- enqueue --validate --mx: invalid jobs listed and skipped, the rest enqueued ---------------------
{ job a@mx.test; job b@aonly.test; job c@nullmx.test; job d@nx.test; job e@slow.test;
  job info@mx.test; job x@mailinator.com; } >"$T/jobs.jsonl"
# tos IDSFILE: the "to" of each enqueued file in new/, sorted, space-separated
tos() {
  while read -r id; do
    [ -f "$T/spool/new/$id.json" ] && python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["to"])' "$T/spool/new/$id.json"
  done <"$1" | sort | tr '\n' ' ' | sed 's/ $//'
}
or enqueue --validate --mx "$T/jobs.jsonl" >"$T/ids" 2>"$T/err"; rc=$?
eq "enqueue --validate --mx: exit 0" "$rc" 0
check "enqueue --validate --mx: jobs.jsonl:3 (nullmx.test) listed as null_mx" grep -q 'jobs\.jsonl:3:.*null_mx' "$T/err"
check "enqueue --validate --mx: jobs.jsonl:4 (nx.test) listed as no_mx" grep -q 'jobs\.jsonl:4:.*no_mx' "$T/err"
eq "enqueue --validate --mx: only those two listed as skipped" "$(grep -c ': skipped$' "$T/err")" 2
eq "enqueue --validate --mx: five ids printed" "$(grep -cE '^[0-9a-f]{16}$' "$T/ids")" 5
eq "enqueue --validate --mx: the enqueued jobs are the other five" "$(tos "$T/ids")" \
  "a@mx.test b@aonly.test e@slow.test info@mx.test x@mailinator.com"

or enqueue --validate --mx --strict --campaign strict "$T/jobs.jsonl" >"$T/ids.strict" 2>"$T/err"; rc=$?
eq "enqueue --validate --mx --strict: exit 0" "$rc" 0
check "--strict: the role job (jobs.jsonl:6) is listed" grep -q 'jobs\.jsonl:6:.*role' "$T/err"
check "--strict: the disposable job (jobs.jsonl:7) is listed" grep -q 'jobs\.jsonl:7:.*disposable' "$T/err"
eq "--strict: four listed as skipped (null_mx, no_mx, role, disposable)" "$(grep -c ': skipped$' "$T/err")" 4
eq "--strict: three ids printed" "$(grep -cE '^[0-9a-f]{16}$' "$T/ids.strict")" 3
eq "--strict: the enqueued jobs are mx, aonly and the unknown slow.test" "$(tos "$T/ids.strict")" \
  "a@mx.test b@aonly.test e@slow.test"

# ---- the cache keeps an answer for a day, not longer (OUTREACH_NOW moves the clock) ---------------------
q "DELETE FROM dns_cache"
printf 'z@mx.test\n' >"$T/one.txt"
now=$(date +%s)
m0=$(mark)
OUTREACH_NOW=$now or validate --json --mx "$T/one.txt" >/dev/null 2>&1
eq "cache age: resolved at t0" "$(queries MX mx.test "$m0")" 1
m0=$(mark)
OUTREACH_NOW=$((now + 20 * 3600)) or validate --json --mx "$T/one.txt" >/dev/null 2>&1
eq "cache age: at t0+20h the cached answer is used" "$(queries MX mx.test "$m0")" 0
m0=$(mark)
OUTREACH_NOW=$((now + 25 * 3600)) or validate --json --mx "$T/one.txt" >/dev/null 2>&1
eq "cache age: at t0+25h the answer (from t0) is over a day old: asked again" "$(queries MX mx.test "$m0")" 1

# ---- throughput: 10,000 addresses over 500 domains (figures only) ----------------------------------------
python3 -c "
for i in range(10000):
    print('person%d@dom%d.perf.test' % (i, i % $NPERF))" >"$T/perf.txt"
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0) ? (n * 1000 / ms) : 0 }'; }
verdicts() { python3 -c '
import collections, json, sys
c = collections.Counter(json.loads(l)["verdict"] for l in open(sys.argv[1]))
print(" ".join("%s=%d" % kv for kv in sorted(c.items())))' "$1"; }
t0=$(ms)
or validate --json "$T/perf.txt" >"$T/perf.out" 2>/dev/null
t1=$(ms)
echo "# throughput without --mx: 10000 addresses in $((t1 - t0)) ms = $(rate 10000 $((t1 - t0))) addresses/s ($(verdicts "$T/perf.out"))"
q "DELETE FROM dns_cache"
m0=$(mark); t0=$(ms)
or validate --json --mx --timeout-ms 1000 "$T/perf.txt" >"$T/perf.out" 2>/dev/null
t1=$(ms)
nq=$(tail -n +"$((m0 + 1))" "$T/unbound.log" | grep -c 'perf\.test\. MX IN$')
echo "# throughput with --mx, cold cache: 10000 addresses / $NPERF domains in $((t1 - t0)) ms = $(rate 10000 $((t1 - t0))) addresses/s, $nq MX queries ($(verdicts "$T/perf.out"))"
t0=$(ms)
or validate --json --mx --timeout-ms 1000 "$T/perf.txt" >"$T/perf.out" 2>/dev/null
t1=$(ms)
echo "# throughput with --mx, warm cache: 10000 addresses in $((t1 - t0)) ms = $(rate 10000 $((t1 - t0))) addresses/s ($(verdicts "$T/perf.out"))"

finish
