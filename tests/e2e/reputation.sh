#!/bin/sh
# tests/e2e/reputation.sh — reputation care, on the virtual clock:
#
#   domains   a local unbound serves a good sender domain and broken ones (two SPF
#             records; SPF without the provider's include; an SPF include chain of 11
#             look-ups; no DMARC; DMARC without p=; a missing DKIM selector; no MX; a null
#             MX; one listed on a DNS blocklist): every verdict of `domains --json`, with
#             the exact doc/design.md §14 keys
#   gate      domain_checks.required = ["spf"]: the sender of a failing domain is never
#             used while the good one sends; status.json shows it disabled with a reason;
#             alert domain_check:DOMAIN
#   groups    recipient_domains limits (per_minute, per_hour, sender_per_minute) hold in
#             every sliding window over the slots of two hours of ticks across three
#             senders; a tick interleaves groups
#   sticky    each recipient keeps its sender over an initial mail and three follow-ups;
#             thread replies carry In-Reply-To/References = the first Message-ID and
#             "Re: <first subject>"; a disabled sticky sender falls back (counted as
#             sticky_fallback in the ledger's counters)
#   jitter    gaps between one sender's slots are >= min_gap, (gap - min_gap) in
#             [0, jitter] with a mean near jitter/2; the same OUTREACH_SEED repeats them
# san: no
. "$(dirname "$0")/../lib.sh"

NOW=1796029200   # Monday 2026-11-30T09:00:00Z
UNBOUND=${UNBOUND:-/usr/sbin/unbound}
UB_PID=
stop_unbound() { [ -n "$UB_PID" ] && kill "$UB_PID" 2>/dev/null && wait "$UB_PID" 2>/dev/null; UB_PID=; }
trap 'stop_unbound; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP

# mk NAME CONFIG: a spool of its own in $T/NAME
mk() {
  mkdir -p "$T/$1"
  printf 'spool = "spool";\nreport_dir = "reports";\ntimezone = "UTC";\n%s\n' "$2" >"$T/$1/conf"
  "$OR" -c "$T/$1/conf" init >/dev/null || notok "$1: init"
}
# at NAME SECONDS ARGS...: the binary on scenario NAME at NOW + SECONDS
at() { _sc=$1; _s=$2; shift 2; OUTREACH_NOW=$((NOW + _s)) "$OR" -c "$T/$_sc/conf" "$@"; }
tick() { _tn=$1; _ts=$2; shift 2; at "$_tn" "$_ts" run "$@" >>"$T/$_tn/run.out" 2>&1 ||
  notok "$_tn: run at +$_ts s exits 0" "$(tail -3 "$T/$_tn/run.out")"; }
sq() { sqlite3 -batch -noheader "$T/$1/spool/state.db" "$2"; }
# py NAME: a python3 check (standard library) from stdin, with res() and the ledger as db
PYHEAD='
import datetime, email, email.policy, glob, json, math, os, re, sqlite3, statistics, sys
fails = 0
def res(name, good, detail=""):
    global fails
    print(("ok - " if good else "not ok - ") + name)
    if not good:
        fails += 1
        for line in str(detail)[:1500].splitlines()[:25]:
            print("#   " + line)
T = sys.argv[1]
'
py() { { printf '%s\n' "$PYHEAD"; cat; printf '\nsys.exit(1 if fails else 0)\n'; } >"$T/check.py"
       python3 "$T/check.py" "$T" "$@" || nfail=$((nfail + 1)); }

# =========================================================================================
# domains: unbound on a free loopback port
# =========================================================================================
if [ ! -x "$UNBOUND" ]; then
  notok "unbound installed at $UNBOUND"
else
# a port free for both UDP and TCP (unbound binds both); retried below if taken meanwhile
DKIM='v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq7tUG6kU4eDNXn/DAcPNhmgg4oIuv/V0XAPGrplwRhy3Kn3vygC9rq7Yfpv5qVyNP+2qPgE4ZKyQRijlPyNjLNPfM9j4t7qx6QIDAQAB'
{
  cat <<EOF
server:
  interface: 127.0.0.1
  port: @PORT@
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$T"
  pidfile: "$T/unbound.pid"
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  use-syslog: no
  logfile: "$T/unbound.log"
  num-threads: 1
  module-config: "iterator"
  local-zone: "test." static
  local-zone: "sendgrid.net." static
  local-data: 'sendgrid.net. TXT "v=spf1 ip4:167.89.0.0/17 ip4:208.117.48.0/20 -all"'
  local-data: "ready.test. A 127.0.0.1"
  local-data: "listed.test.dbl.test. A 127.0.1.2"
  local-data: 'listed.test.dbl.test. TXT "listed for the test"'
EOF
  # zone LABEL SPF... : a domain that is right in every way unless told otherwise
  #   (nodmarc, dmarcnop, nos2, nomx, nullmx change one thing; spf text given by caller)
  zone() {
    d=$1.test
    case $1 in
      twospf) echo "  local-data: '$d. TXT \"v=spf1 include:sendgrid.net -all\"'"
              echo "  local-data: '$d. TXT \"v=spf1 ip4:192.0.2.1 -all\"'" ;;
      noinc)  echo "  local-data: '$d. TXT \"v=spf1 ip4:192.0.2.0/24 mx -all\"'" ;;
      chain)  echo "  local-data: '$d. TXT \"v=spf1 include:sendgrid.net include:l1.chain.test -all\"'"
              i=1
              while [ $i -lt 10 ]; do
                echo "  local-data: 'l$i.chain.test. TXT \"v=spf1 include:l$((i + 1)).chain.test -all\"'"
                i=$((i + 1))
              done
              echo "  local-data: 'l10.chain.test. TXT \"v=spf1 ip4:192.0.2.10 -all\"'" ;;
      good2)  echo "  local-data: '$d. TXT \"v=spf1 ip4:192.0.2.0/24 -all\"'" ;;
      *)      echo "  local-data: '$d. TXT \"v=spf1 include:sendgrid.net ~all\"'" ;;
    esac
    echo "  local-data: '$d. TXT \"google-site-verification=abc123\"'"
    case $1 in
      nodmarc) ;;
      dmarcnop) echo "  local-data: '_dmarc.$d. TXT \"v=DMARC1; rua=mailto:dmarc@$d\"'" ;;
      *) echo "  local-data: '_dmarc.$d. TXT \"v=DMARC1; p=quarantine; rua=mailto:dmarc@$d\"'" ;;
    esac
    case $1 in
      good2) echo "  local-data: 'sel._domainkey.$d. TXT \"$DKIM\"'" ;;
      nos2)  echo "  local-data: 's1._domainkey.$d. TXT \"$DKIM\"'" ;;
      *)     echo "  local-data: 's1._domainkey.$d. TXT \"$DKIM\"'"
             echo "  local-data: 's2._domainkey.$d. TXT \"$DKIM\"'" ;;
    esac
    case $1 in
      nomx) ;;
      nullmx) echo "  local-data: '$d. MX 0 .'" ;;
      *) echo "  local-data: '$d. MX 10 mx.$d'"
         echo "  local-data: 'mx.$d. A 192.0.2.25'" ;;
    esac
  }
  for z in good good2 twospf noinc chain nodmarc dmarcnop nos2 nomx nullmx listed; do zone $z; done
} >"$T/unbound.zones"
up=0
for try in 1 2 3 4 5; do
  PORT=$(free_port)
  sed "s/@PORT@/$PORT/" "$T/unbound.zones" >"$T/unbound.conf"
  : >"$T/unbound.log"
  "$UNBOUND" -d -c "$T/unbound.conf" >"$T/unbound.out" 2>&1 &
  UB_PID=$!
  if python3 "$TESTS/peers/dns_ready.py" "$PORT" ready.test "$UB_PID"; then up=1; break; fi
  stop_unbound
done
if [ $up = 1 ]; then
  ok "unbound answers on 127.0.0.1:$PORT"
else
  notok "unbound answers on 127.0.0.1:$PORT (domains and gate not run)" "$(cat "$T/unbound.out" "$T/unbound.log" 2>/dev/null | tail -5)"
fi
fi
if [ -n "$UB_PID" ]; then   # unbound is up: domains and the gate
printf 'SG.test-key\n' >"$T/sg.key"
chmod 600 "$T/sg.key"

# ---- domains --json: every sender domain, every check -----------------------------------
SG="{ name = \"sg\"; type = \"sendgrid\"; api_key_file = \"$T/sg.key\"; endpoint = \"http://127.0.0.1:9\"; allow_plaintext = true; }"
snd() { printf '{ name = "%s"; from = "%s <%s@%s.test>"; provider = "%s"; %s },\n' "$1" "$1" "$1" "$1" "${2:-sg}" "${3:-}"; }
mk dom "providers = ( $SG, { name = \"dry\"; type = \"file\"; dir = \"outbox\"; } );
senders = (
$(for z in good twospf noinc chain nodmarc dmarcnop nos2 nomx nullmx listed; do snd $z; done)
$(snd good2 dry 'dkim_selectors = ["sel"];' | sed 's/},$/}/')
);
dns_server = \"127.0.0.1:$PORT\";
domain_checks = { required = [\"spf\", \"dmarc\"]; blocklists = [\"dbl.test\"]; };"
at dom 0 domains --json >"$T/domains.json" 2>"$T/domains.err"
eq "domains --json exits 0" $? 0
at dom 0 domains >"$T/domains.txt" 2>>"$T/domains.err"
eq "domains (text) exits 0" $? 0
py <<'EOF'
# verdicts: (spf, dkim, dmarc, mx, blocklist); required = spf, dmarc
W = {
    "good.test":     (1, 1, 1, 1, 1),
    "good2.test":    (1, 1, 1, 1, 1),   # file provider (no include needed), dkim_selectors = ["sel"]
    "twospf.test":   (0, 1, 1, 1, 1),
    "noinc.test":    (0, 1, 1, 1, 1),
    "chain.test":    (0, 1, 1, 1, 1),
    "nodmarc.test":  (1, 1, 0, 1, 1),
    "dmarcnop.test": (1, 1, 0, 1, 1),
    "nos2.test":     (1, 0, 1, 1, 1),
    "nomx.test":     (1, 1, 1, 0, 1),
    "nullmx.test":   (1, 1, 1, 0, 1),
    "listed.test":   (1, 1, 1, 1, 0),
}
NAMES = ("spf", "dkim", "dmarc", "mx", "blocklist")
# words the detail of a failing check should hold, to tell the operator what to fix
HINT = {("twospf.test", "spf"): r"\b2\b", ("noinc.test", "spf"): "sendgrid\\.net", ("chain.test", "spf"): r"\b11\b",
        ("nos2.test", "dkim"): r"\bs2\b", ("nullmx.test", "mx"): "(?i)null", ("listed.test", "blocklist"): "dbl\\.test"}
lines = [l for l in open(T + "/domains.json", encoding="utf-8").read().splitlines() if l.strip()]
objs = []
for l in lines:
    try:
        objs.append(json.loads(l))
    except ValueError as e:
        res("domains --json: each line is one JSON object", False, "%s: %s" % (e, l))
res("domains --json: one object per sender domain (%d)" % len(W), sorted(o.get("domain") for o in objs) == sorted(W),
    [o.get("domain") for o in objs])
for o in objs:
    d = o.get("domain")
    if d not in W:
        continue
    res("%s: keys are exactly domain, ok, checks" % d, sorted(o) == ["checks", "domain", "ok"], sorted(o))
    checks = o.get("checks") or []
    res("%s: checks are spf, dkim, dmarc, mx, blocklist, each once" % d,
        sorted(c.get("name") for c in checks) == sorted(NAMES), [c.get("name") for c in checks])
    for c in checks:
        n = c.get("name")
        if n not in NAMES:
            continue
        want = bool(W[d][NAMES.index(n)])
        good = sorted(c) == ["detail", "name", "ok", "required"] and c.get("ok") is want and \
            c.get("required") is (n in ("spf", "dmarc")) and isinstance(c.get("detail"), str) and len(c["detail"].strip()) > 3
        res("%s: %s ok=%s required=%s, with a detail" % (d, n, str(want).lower(), str(n in ("spf", "dmarc")).lower()),
            good, c)
        if not want and (d, n) in HINT:
            res("%s: %s detail names what is wrong (/%s/)" % (d, n, HINT[(d, n)]),
                re.search(HINT[(d, n)], c.get("detail") or "") is not None, c.get("detail"))
    res("%s: ok is %s" % (d, str(all(W[d])).lower()), o.get("ok") is all(W[d]), o.get("ok"))
txt = open(T + "/domains.txt", encoding="utf-8").read()
res("domains (text) names every domain", all(d in txt for d in W), txt)
EOF
[ -s "$T/domains.err" ] && sed 's/^/# stderr: /' "$T/domains.err"

# ---- a run keeps out the sender of a domain failing a required check ----------------------
mk gate "providers = ( { name = \"dry\"; type = \"file\"; dir = \"outbox\"; } );
senders = (
  { name = \"good\"; from = \"Good <g@good2.test>\"; provider = \"dry\"; daily_limit = 100; },
  { name = \"broken\"; from = \"Broken <b@twospf.test>\"; provider = \"dry\"; daily_limit = 100; }
);
dns_server = \"127.0.0.1:$PORT\";
domain_checks = { required = [\"spf\"]; blocklists = [\"dbl.test\"]; };"
k=1; while [ $k -le 12 ]; do job "g$k@example.org" acme; k=$((k + 1)); done >"$T/gate.jsonl"
check "gate: enqueue 12 jobs" at gate 0 enqueue "$T/gate.jsonl"
tick gate 0
tick gate 60
eq "gate: all 12 jobs sent" "$(sq gate "SELECT count(*) FROM jobs WHERE state = 'sent'")" 12
eq "gate: every send went through 'good' (ledger sender column)" \
  "$(sq gate "SELECT group_concat(DISTINCT coalesce(sender, '-')) FROM jobs")" good
eq "gate: no slot was ever reserved for 'broken'" "$(sq gate "SELECT count(*) FROM slots WHERE sender = 'broken'")" 0
eq "gate: domain_check:twospf.test raised once" \
  "$(sq gate "SELECT count(*) FROM alert_log WHERE name = 'domain_check:twospf.test' AND event = 'raised'")" 1
eq "gate: no alert for the good domain" \
  "$(sq gate "SELECT count(*) FROM alert_log WHERE name = 'domain_check:good2.test'")" 0
py <<'EOF'
def load(p, default):
    try:
        return json.load(open(p, encoding="utf-8")) if p.endswith(".json") else open(p, encoding="utf-8").read()
    except (OSError, ValueError) as e:
        res("gate: %s readable" % p[len(T) + 1:], False, e)
        return default
st = load(T + "/gate/reports/status.json", {})
s = {x.get("name"): x for x in st.get("senders", [])}
b = s.get("broken", {})
res("gate: status.json shows 'broken' disabled with a reason naming SPF",
    b.get("enabled") is False and isinstance(b.get("disabled_reason"), str) and "spf" in b["disabled_reason"].lower(), b)
res("gate: status.json shows 'good' enabled", s.get("good", {}).get("enabled") is True, s.get("good"))
a = [x for x in st.get("alerts", []) if x.get("name") == "domain_check:twospf.test"]
res("gate: status.json alerts lists domain_check:twospf.test", len(a) == 1, st.get("alerts"))
prom = load(T + "/gate/reports/outreach.prom", "").splitlines()
res("gate: outreach.prom outreach_alert_active{alert=\"domain_check:twospf.test\"} 1",
    'outreach_alert_active{alert="domain_check:twospf.test"} 1' in prom, [l for l in prom if "alert_active" in l])
EOF
# the verdicts are cached for a day: with the DNS gone, an hour later, nothing changes
stop_unbound
checked_at=$(sq gate "SELECT group_concat(at, ',') FROM (SELECT at FROM domain_checks ORDER BY domain)")
k=1; while [ $k -le 3 ]; do job "h$k@example.org" acme; k=$((k + 1)); done >"$T/gate2.jsonl"
check "gate: enqueue 3 more jobs" at gate 3600 enqueue "$T/gate2.jsonl"
tick gate 3600
eq "gate: an hour later (DNS down) the cached verdicts hold: 15 sent, all through 'good'" \
  "$(sq gate "SELECT count(*) || ' ' || group_concat(DISTINCT sender) FROM jobs WHERE state = 'sent'")" "15 good"
eq "gate: domain_checks not redone within the day" \
  "$(sq gate "SELECT group_concat(at, ',') FROM (SELECT at FROM domain_checks ORDER BY domain)")" "$checked_at"
fi

# ---- domains when the DNS does not answer: every check it needed is unknown with the reason,
# never "fix"; exit 75. Two resolvers: a closed port, and a socket that never replies.
bg silent python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
print("port", s.getsockname()[1], flush=True); time.sleep(120)'
wait_line silent '^port ' 10 && SILENT=$(sed -n 's/^port //p' "$T/silent.out")
mk nodns "providers = ( { name = \"dry\"; type = \"file\"; dir = \"outbox\"; } );
senders = ( { name = \"s1\"; from = \"One <one@nodns.test>\"; provider = \"dry\"; dkim_selectors = [\"sel\"]; } );
domain_checks = { required = [\"spf\", \"dmarc\"]; blocklists = [\"dbl.test\"]; };"
CLOSED=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for srv in "closed 127.0.0.1:$CLOSED" "silent 127.0.0.1:$SILENT"; do
  set -- $srv
  at nodns 0 domains --dns-server "$2" --timeout-ms 400 >"$T/nodns.txt" 2>"$T/nodns.err"; rc=$?
  eq "domains, DNS $1: exit 75 (could not check)" "$rc" 75
  check "domains, DNS $1: no check says FIX" sh -c "! grep -q ' FIX ' '$T/nodns.txt'"
  eq "domains, DNS $1: every check unknown" "$(grep -c '^  [a-z]* *unknown .*the DNS did not answer in time for ' "$T/nodns.txt")" 5
  at nodns 0 domains --json --dns-server "$2" --timeout-ms 400 >"$T/nodns.json" 2>/dev/null; rc=$?
  eq "domains --json, DNS $1: exit 75" "$rc" 75
  py "$1" <<'EOF'
o = json.loads(open(T + "/nodns.json", encoding="utf-8").read())   # doc/design.md §14: fixed keys, so the detail says it
res("domains --json, DNS %s: every check has no verdict, the reason in its detail" % sys.argv[2],
    o["ok"] is False and len(o["checks"]) == 5 and all(c["ok"] is False and "the DNS did not answer in time for "
                                                      in c["detail"] and "no verdict" in c["detail"] for c in o["checks"]), o)
EOF
done

# =========================================================================================
# recipient groups: two hours of ticks, three senders
# =========================================================================================
THREE='providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = (
  { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; per_minute = 30; },
  { name = "s2"; from = "Two <two@s2.example>"; provider = "dry"; daily_limit = 1000; per_minute = 30; },
  { name = "s3"; from = "Three <three@s3.example>"; provider = "dry"; daily_limit = 1000; per_minute = 30; }
);'
GROUPS='recipient_domains = (
  { name = "google"; domains = ["gmail.com", "googlemail.com"]; per_minute = 5; per_hour = 100; sender_per_minute = 2; },
  { name = "microsoft"; domains = ["outlook.com", "hotmail.com"]; per_minute = 4; per_hour = 60; sender_per_minute = 2; }
);'
mk grp "$THREE
$GROUPS"
python3 - >"$T/grp.jsonl" <<'EOF'
import json
for i in range(150):
    print(json.dumps({"client": "acme", "to": "g%d@%s" % (i, "gmail.com" if i % 3 else "googlemail.com"), "subject": "Hi", "text": "Hello"}))
for i in range(100):
    print(json.dumps({"client": "acme", "to": "m%d@%s" % (i, "outlook.com" if i % 2 else "hotmail.com"), "subject": "Hi", "text": "Hello"}))
for i in range(40):
    print(json.dumps({"client": "globex", "to": "o%d@example.org" % i, "subject": "Hi", "text": "Hello"}))
EOF
check "groups: enqueue 290 jobs" at grp 0 enqueue "$T/grp.jsonl"
s=0
while [ $s -le 8400 ]; do tick grp $s; s=$((s + 60)); done
eq "groups: all 290 sent within 2 h 20 min of ticks" "$(sq grp "SELECT count(*) FROM jobs WHERE state = 'sent'")" 290
py <<'EOF'
db = sqlite3.connect(T + "/grp/spool/state.db")
G = {"google": (("gmail.com", "googlemail.com"), 5, 100, 2), "microsoft": (("outlook.com", "hotmail.com"), 4, 60, 2)}
rows = db.execute("SELECT s.at, s.sender, j.rcpt_domain FROM slots s JOIN jobs j ON j.id = s.job_id "
                  "WHERE s.state != 'void' ORDER BY s.at").fetchall()
def worst(ts, width):   # the most slots in any half-open window [t, t + width)
    ts = sorted(ts)
    best, at, k = 0, None, 0
    for i, t in enumerate(ts):
        while k < len(ts) and ts[k] < t + width:
            k += 1
        if k - i > best:
            best, at = k - i, t
    return best, at
for g, (doms, pm, ph, spm) in G.items():
    ts = [r[0] for r in rows if r[2] in doms]
    n, t = worst(ts, 60)
    res("groups: %s: %d slots, no 60 s window holds more than per_minute %d (most %d)" % (g, len(ts), pm, n), n <= pm, t)
    n, t = worst(ts, 3600)
    res("groups: %s: no 1 h window holds more than per_hour %d (most %d)" % (g, ph, n), n <= ph, t)
    for s in ("s1", "s2", "s3"):
        n, t = worst([r[0] for r in rows if r[2] in doms and r[1] == s], 60)
        res("groups: %s via %s: no 60 s window holds more than sender_per_minute %d (most %d)" % (g, s, spm, n), n <= spm, t)
    used = {r[1] for r in rows if r[2] in doms}
    res("groups: %s mail went out through all three senders" % g, used == {"s1", "s2", "s3"}, used)
    # the limits are met, not undershot by far: per_hour reached in the first hour
    first = [x for x in ts if x < ts[0] + 3600]
    res("groups: %s: the first hour sends close to per_hour (%d of %d)" % (g, len(first), ph), len(first) >= ph * 0.8, len(first))
ungrouped = [r[0] for r in rows if r[2] == "example.org"]
res("groups: ungrouped mail is not held back by the groups (all 40 in the first 10 min)",
    len(ungrouped) == 40 and max(ungrouped) - min(ungrouped) < 600, (len(ungrouped), ungrouped[-1:]))
EOF

# ---- a tick interleaves groups: jobs enqueued in blocks go out alternating -----------------
mk ilv "$THREE
recipient_domains = (
  { name = \"google\"; domains = [\"gmail.com\", \"googlemail.com\"]; per_minute = 1000; per_hour = 10000; },
  { name = \"microsoft\"; domains = [\"outlook.com\", \"hotmail.com\"]; per_minute = 1000; per_hour = 10000; }
);"
{ k=1; while [ $k -le 12 ]; do job "g$k@gmail.com" acme; k=$((k + 1)); done
  k=1; while [ $k -le 8 ]; do job "m$k@outlook.com" acme; k=$((k + 1)); done; } >"$T/ilv.jsonl"
check "interleave: enqueue 12 gmail then 8 outlook jobs" at ilv 0 enqueue "$T/ilv.jsonl"
tick ilv 0
eq "interleave: all 20 sent in one tick" "$(sq ilv "SELECT count(*) FROM jobs WHERE state = 'sent'")" 20
seq=$(sq ilv "SELECT group_concat(g, '') FROM (SELECT CASE WHEN j.rcpt_domain = 'gmail.com' THEN 'G' ELSE 'M' END g
              FROM slots s JOIN jobs j ON j.id = s.job_id WHERE s.state != 'void' ORDER BY s.at, s.id)")
# 12 G and 8 M: the first 16 slots alternate (either may lead), the last 4 are G
case $seq in
  GMGMGMGMGMGMGMGMGGGG|MGMGMGMGMGMGMGMGGGGG) ok "interleave: slots alternate while both groups have jobs ($seq)" ;;
  *) notok "interleave: slots alternate while both groups have jobs" "got $seq" ;;
esac

# =========================================================================================
# sticky senders and threads
# =========================================================================================
mk stk "$THREE"
# round R (1-6): 12 recipients; even ones get thread replies (subject "", thread = round-1 id:
# the producer id, in round 4 the ledger id, SHA-256(client NUL producer id)[:16]), odd ones
# plain follow-ups with a subject of their own
python3 - "$T" <<'EOF'
import hashlib, json, sys
T = sys.argv[1]
for r in range(1, 7):
    with open("%s/stk-%d.jsonl" % (T, r), "w") as f:
        for i in range(12):
            j = {"client": "acme", "campaign": "seq", "id": "p%d-r%d" % (i, r), "to": "Person %d <p%d@example.net>" % (i, i),
                 "text": "Message %d to person %d" % (r, i), "vars": {"first": "P%d" % i}}
            if r == 1:
                j["subject"] = "Quick question, {{first}}"
            elif i % 2 == 0:
                j["subject"] = ""
                j["thread"] = "p%d-r1" % i
                if r == 4:
                    j["thread"] = hashlib.sha256(b"acme\0" + j["thread"].encode()).hexdigest()[:16]
            else:
                j["subject"] = "Follow-up %d" % r
            f.write(json.dumps(j) + "\n")
EOF
for r in 1 2 3 4; do
  check "sticky: enqueue round $r" at stk $((r * 600 - 600)) enqueue "$T/stk-$r.jsonl"
  tick stk $((r * 600 - 600))
done
eq "sticky: 48 jobs sent over 4 rounds" "$(sq stk "SELECT count(*) FROM jobs WHERE state = 'sent'")" 48
py <<'EOF'
db = sqlite3.connect(T + "/stk/spool/state.db")
rows = db.execute("SELECT producer_id, rcpt, sender, id, message_id FROM jobs WHERE state = 'sent'").fetchall()
by = {}
for pid, rcpt, sender, jid, mid in rows:
    by.setdefault(rcpt, {})[int(pid.split("-r")[1])] = (sender, jid, mid)
res("sticky: round 1 spread over all three senders", {v[1][0] for v in by.values()} == {"s1", "s2", "s3"},
    {k: v[1][0] for k, v in by.items()})
bad = {r: [v[k][0] for k in sorted(v)] for r, v in by.items() if len({x[0] for x in v.values()}) != 1 or len(v) != 4}
res("sticky: each of 12 recipients got all 4 messages from one sender", len(by) == 12 and not bad, bad)
# thread replies, from the .eml files
def eml(jid):
    p = "%s/stk/outbox/%s.eml" % (T, jid)
    return email.message_from_binary_file(open(p, "rb"), policy=email.policy.default) if os.path.exists(p) else None
probs = []
for rcpt, v in sorted(by.items()):
    i = int(rcpt[1:rcpt.index("@")])
    first = eml(v[1][1])
    if first is None:
        probs.append("%s: no .eml for round 1" % rcpt)
        continue
    fmid, fsub = first["Message-ID"], first["Subject"]
    if fsub != "Quick question, P%d" % i or fmid != v[1][2]:
        probs.append("%s: first message subject %r, Message-ID %r (ledger %r)" % (rcpt, fsub, fmid, v[1][2]))
    for r in (2, 3, 4):
        m = eml(v[r][1])
        if m is None:
            probs.append("%s round %d: no .eml" % (rcpt, r))
            continue
        if i % 2 == 0:
            refs = (m["References"] or "").split()
            if m["In-Reply-To"] != fmid or fmid not in refs or m["Subject"] != "Re: " + fsub:
                probs.append("%s round %d: In-Reply-To %r References %r Subject %r; want %r / Re: %r" %
                             (rcpt, r, m["In-Reply-To"], m["References"], m["Subject"], fmid, fsub))
        elif m["In-Reply-To"] is not None or m["Subject"] != "Follow-up %d" % r:
            probs.append("%s round %d (no thread): In-Reply-To %r Subject %r" % (rcpt, r, m["In-Reply-To"], m["Subject"]))
res("threads: replies carry In-Reply-To and References = the first Message-ID and 'Re: <first subject>'; "
    "plain follow-ups keep their own subject and no In-Reply-To", not probs, "\n".join(probs))
EOF

# ---- a disabled sticky sender falls back, counted --------------------------------------------
check "sticky: sender disable s2" at stk 2500 sender disable s2 --reason "sticky test"
n2=$(sq stk "SELECT count(DISTINCT rcpt) FROM jobs WHERE state = 'sent' AND sender = 's2'")
check "sticky: some recipients are sticky to s2 ($n2)" test "$n2" -gt 0
check "sticky: enqueue round 5" at stk 2600 enqueue "$T/stk-5.jsonl"
tick stk 2600
eq "sticky: round 5 all sent" "$(sq stk "SELECT count(*) FROM jobs WHERE state = 'sent' AND producer_id LIKE '%-r5'")" 12
eq "sticky: no round-5 mail through the disabled s2" \
  "$(sq stk "SELECT count(*) FROM jobs WHERE producer_id LIKE '%-r5' AND sender = 's2'")" 0
eq "sticky: the others keep their sender in round 5" \
  "$(sq stk "SELECT count(*) FROM jobs a JOIN jobs b ON a.rcpt = b.rcpt AND b.producer_id LIKE '%-r1'
             WHERE a.producer_id LIKE '%-r5' AND b.sender != 's2' AND a.sender != b.sender")" 0
eq "sticky: counters sticky_fallback counts the $n2 recipients that fell back" \
  "$(sq stk "SELECT coalesce(sum(n), 0) FROM counters WHERE kind = 'sticky_fallback' AND client = 'acme'")" "$n2"
# README: "a recipient (per client) keeps the sender that first mailed it while that sender
# is enabled": once s2 is back, its recipients go through s2 again
check "sticky: sender enable s2" at stk 3100 sender enable s2
check "sticky: enqueue round 6" at stk 3200 enqueue "$T/stk-6.jsonl"
tick stk 3200
eq "sticky: round 6 all sent" "$(sq stk "SELECT count(*) FROM jobs WHERE state = 'sent' AND producer_id LIKE '%-r6'")" 12
eq "sticky: round 6 goes from the sender that first mailed each recipient (s2 enabled again)" \
  "$(sq stk "SELECT count(*) FROM jobs a JOIN jobs b ON a.rcpt = b.rcpt AND b.producer_id LIKE '%-r1'
             WHERE a.producer_id LIKE '%-r6' AND a.sender = b.sender")" 12

# =========================================================================================
# min_gap and jitter, repeatable with OUTREACH_SEED
# =========================================================================================
JIT='providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "j1"; from = "J <j@j.example>"; provider = "dry"; daily_limit = 1000; min_gap = 30; jitter = 20; } );'
python3 -c '
import json
for i in range(50):
    print(json.dumps({"client": "acme", "to": "j%d@example.org" % i, "subject": "Hi", "text": "Hello"}))' >"$T/jit.jsonl"
for spool in jit1 jit2 jit3; do
  mk $spool "$JIT"
  at $spool 0 enqueue "$T/jit.jsonl" >/dev/null || notok "$spool: enqueue"
  seed=7; [ $spool = jit3 ] && seed=8
  OUTREACH_SEED=$seed tick $spool 0 --deadline 3600
done
py <<'EOF'
def gaps(n):
    db = sqlite3.connect(T + "/%s/spool/state.db" % n)
    at = [r[0] for r in db.execute("SELECT at FROM slots WHERE sender = 'j1' AND state != 'void' ORDER BY at")]
    return at, [b - a for a, b in zip(at, at[1:])]
at1, g1 = gaps("jit1")
at2, g2 = gaps("jit2")
at3, g3 = gaps("jit3")
res("jitter: 50 slots in one run of a 3600 s deadline", len(at1) == 50, len(at1))
res("jitter: every gap >= min_gap 30", g1 and min(g1) >= 30 - 1e-6, sorted(g1)[:3])
ex = [g - 30 for g in g1]
res("jitter: every (gap - min_gap) within [0, 20]", ex and min(ex) >= -1e-6 and max(ex) <= 20 + 0.002,
    (min(ex) if ex else None, max(ex) if ex else None))
mean = statistics.mean(ex) if ex else -1
res("jitter: mean of (gap - min_gap) near jitter/2 = 10 (got %.2f, want 6..14)" % mean, 6 <= mean <= 14, ex)
res("jitter: the draws spread (max - min > 10)", ex and max(ex) - min(ex) > 10, ex)
same = len(g1) == len(g2) and all(abs(a - b) < 0.002 for a, b in zip(g1, g2))
res("jitter: the same OUTREACH_SEED gives the same slot times (relative to the first)", same,
    list(zip(g1, g2))[:5])
res("jitter: another seed gives other gaps", g1 != g3 and any(abs(a - b) > 0.01 for a, b in zip(g1, g3)), g3[:5])
EOF

finish
