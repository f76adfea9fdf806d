#!/bin/sh
# tests/e2e/monitoring.sh — the Prometheus rules, their unit tests and the Grafana
# dashboard in contrib/ are valid and agree with what the binary really writes.
#
#   rules:     promtool check rules; every alert has for:, a page/ticket severity,
#              summary/description/runbook and a runbook section in the README;
#              promtool test rules passes and has a firing and a quiet case per alert
#   real run:  setup + enqueue + run (+ a pause, so every family has a sample);
#              promtool check metrics accepts reports/outreach.prom
#   dashboard: valid JSON, schemaVersion, the `datasource` variable, ${datasource} on
#              every panel (rows' nested panels too) and every target, unique ids,
#              gridPos everywhere, queries parse as PromQL
#   names:     every metric name in a dashboard query or a rule is one the run emitted
#              (its `# TYPE` lines) or on the "coming soon" allow-list below (empty today)
#
# A missing promtool is a failure, not a skip: CI installs Debian's `prometheus`.
# san: no
. "$(dirname "$0")/../lib.sh"

ROOT=$(cd "$TESTS/.." && pwd)
RULES=$ROOT/contrib/prometheus/outreach-rules.yml
RTEST=$ROOT/tests/prometheus/outreach-rules.test.yml
DASH=$ROOT/contrib/grafana/outreach.json
DOC=$ROOT/contrib/prometheus/README.md
# doc/design.md §12 names the binary does not write yet; rules and panels may use them.
# Empty: the binary writes every family they use (the run below checks it, and fails
# when a name listed here is emitted, so this list and the docs cannot go stale).
ALLOW=""

have_promtool=1
if command -v promtool >/dev/null 2>&1; then
  ok "promtool installed ($(promtool --version 2>&1 | sed -n '1s/^promtool, version \([^ ]*\).*/\1/p'))"
else
  notok "promtool installed" "apt-get install prometheus"
  have_promtool=0
fi
for f in "$RULES" "$RTEST" "$DASH" "$DOC"; do
  check "present: ${f#"$ROOT"/}" test -s "$f"
done

# run CMD... : ok/not ok NAME with the command's output as the diagnostic
run_check() {
  n=$1; shift
  if out=$("$@" 2>&1); then ok "$n"; else notok "$n" "$(printf '%s\n' "$out" | head -40 | sed '2,$s/^/#   /')"; fi
}

# ---- rules ---------------------------------------------------------------------------
if [ $have_promtool = 1 ]; then
  run_check "promtool check rules contrib/prometheus/outreach-rules.yml" promtool check rules "$RULES"
  run_check "promtool test rules tests/prometheus/outreach-rules.test.yml" \
            sh -c 'cd "$1" && promtool test rules tests/prometheus/outreach-rules.test.yml' sh "$ROOT"
fi

# ---- a real run: the metrics the binary writes -----------------------------------------
setup
{ job a@example.org acme ',"campaign":"q4"'; job b@example.org acme ',"campaign":"q4"'
  job c@example.org globex ',"campaign":"launch"'; } >"$T/jobs.jsonl"
check "enqueue 3 jobs" or enqueue "$T/jobs.jsonl"
check "run" or run
check "pause a scope" or pause --client globex --campaign later --reason "monitoring test"
check "run again" or run
PROM=$T/reports/outreach.prom
check "reports/outreach.prom written" test -s "$PROM"
sent=$(awk '/^outreach_sent_total\{/ { s += $2 } END { print s + 0 }' "$PROM")
eq "outreach_sent_total sums to the 3 jobs sent" "$sent" 3
# the Near threshold rules' gauges: written by every run (the feed's timestamp is checked in feedback.sh)
check "outreach_health_max_bounce_rate and _complaint_rate have a sample" \
  sh -c 'grep -q "^outreach_health_max_bounce_rate [0-9.]" "$1" && grep -q "^outreach_health_max_complaint_rate [0-9.]" "$1"' sh "$PROM"
sed -n 's/^# TYPE \([a-zA-Z_:][a-zA-Z0-9_:]*\) .*/\1/p' "$PROM" | sort -u >"$T/emitted"
echo "# emitted by the binary: $(tr '\n' ' ' <"$T/emitted")"
if [ $have_promtool = 1 ]; then
  run_check "promtool check metrics accepts the real outreach.prom" sh -c 'promtool check metrics <"$1"' sh "$PROM"
fi

# ---- dashboard, rule texts, metric names (python3, standard library) -------------------
python3 - "$DASH" "$RULES" "$RTEST" "$DOC" "$T/emitted" "$T/dash-rules.yml" "$ALLOW" <<'EOF'
import json, re, sys
dash_path, rules_path, rtest_path, doc_path, emitted_path, dash_rules_path, allow = sys.argv[1:8]
allow = allow.split()
fails = 0
def res(name, good, detail=""):
    global fails
    print(("ok - " if good else "not ok - ") + name)
    if not good:
        fails += 1
        for line in str(detail).splitlines()[:20]:
            print("#   " + line)

# PromQL metric names: drop strings, label matchers, ranges, grouping label lists and
# Grafana variables; what is left and is neither a function call nor a keyword is one.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset", "inf", "nan", "atan2", "sum", "min", "max", "avg", "group",
            "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"}
def metric_names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"#[^\n]*", "", e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r" \1 ", e)
    e = re.sub(r"\$\{[^}]*\}|\$\w+", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        if m.group(2) is None and m.group(1).lower() not in KEYWORDS:
            names.add(m.group(1))
    return names
probe = {
    'sum by (client) (rate(outreach_bogus_total{instance=~"$instance"}[$__rate_interval])) * 60': {"outreach_bogus_total"},
    'time() - max(outreach_last_run_timestamp_seconds) > 1e3 and on (job) up offset 5m': {"outreach_last_run_timestamp_seconds", "up"},
    'label_replace(absent(a_b), "x", "y_z", "", "") or vector(0)': {"a_b"},
}
bad = {k: metric_names(k) for k, v in probe.items() if metric_names(k) != v}
res("metric-name extractor self-test", not bad, bad)

# ---- the dashboard
DS = {"type": "prometheus", "uid": "${datasource}"}
try:
    dash = json.load(open(dash_path, encoding="utf-8"))
    res("dashboard is valid JSON", True)
except Exception as e:
    res("dashboard is valid JSON", False, e)
    sys.exit(fails)
res("dashboard has a schemaVersion (>= 36)", isinstance(dash.get("schemaVersion"), int) and dash["schemaVersion"] >= 36,
    dash.get("schemaVersion"))
res("dashboard has no __inputs", "__inputs" not in dash)
tvars = dash.get("templating", {}).get("list", [])
res("templating.list has the datasource variable (type datasource, query prometheus)",
    any(v.get("name") == "datasource" and v.get("type") == "datasource" and v.get("query") == "prometheus" for v in tvars),
    [v.get("name") for v in tvars])
qvars = [v["name"] for v in tvars if v.get("type") == "query" and v.get("datasource") != DS]
res("query variables use ${datasource}", not qvars, qvars)

def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
panels = list(walk(dash.get("panels", [])))
nested = [p for r in dash.get("panels", []) for p in r.get("panels", [])]
print("# %d panels (%d nested in collapsed rows), %d targets" % (
    len(panels), len(nested), sum(len(p.get("targets", [])) for p in panels)))
res("dashboard has panels", len(panels) > 0)
wrong = [(p.get("id"), p.get("title"), p.get("datasource")) for p in panels if p.get("datasource") != DS]
res("every panel's datasource is ${datasource}", not wrong, wrong)
targets = [(p, t) for p in panels for t in p.get("targets", [])]
wrong = [(p.get("id"), t.get("refId"), t.get("datasource")) for p, t in targets if t.get("datasource") != DS]
res("every target's datasource is ${datasource}", not wrong, wrong)
notgt = [(p.get("id"), p.get("title")) for p in panels if p.get("type") != "row" and not p.get("targets")]
res("every panel has targets", not notgt, notgt)
noexpr = [(p.get("id"), t.get("refId")) for p, t in targets if not (t.get("expr") or "").strip()]
res("every target has an expr", not noexpr, noexpr)
ids = [p.get("id") for p in panels]
dup = sorted({i for i in ids if ids.count(i) > 1 or not isinstance(i, int)}, key=str)
res("panel ids are unique integers", not dup, dup)
def grid_ok(g):
    return (isinstance(g, dict) and all(isinstance(g.get(k), int) for k in "xywh")
            and g["w"] > 0 and g["h"] > 0 and 0 <= g["x"] and g["x"] + g["w"] <= 24)
nogrid = [(p.get("id"), p.get("gridPos")) for p in panels if not grid_ok(p.get("gridPos"))]
res("every panel has a gridPos within 24 columns", not nogrid, nogrid)
refs = [(p.get("id"), [t.get("refId") for t in p.get("targets", [])]) for p in panels]
res("refIds are unique within each panel", all(len(r) == len(set(r)) for _, r in refs), refs)

# queries as recording rules, for `promtool check rules` (Grafana variables filled in)
with open(dash_rules_path, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for p, t in targets:
        e = t.get("expr", "").replace("$__rate_interval", "5m").replace("$__interval", "1m")
        e = re.sub(r"\$\{?(\w+)\}?", ".*", e)
        f.write("      - record: dashboard:panel%s:%s\n        expr: %s\n" % (p.get("id"), t.get("refId"), json.dumps(e)))

# ---- the rules file: a crude reading of its YAML (stdlib has no YAML parser)
rules = open(rules_path, encoding="utf-8").read()
blocks = re.split(r"\n(?=[ \t]*- alert: )", rules)[1:]
alerts = {}
for b in blocks:
    name = re.match(r"\s*- alert: (\S+)", b).group(1)
    alerts[name] = b
want = ["OutreachTickStale", "OutreachBacklogAgeGrowing", "OutreachSenderDisabled",
        "OutreachBounceRateNearThreshold", "OutreachComplaintRateNearThreshold", "OutreachErrorSpike",
        "OutreachFeedFailing", "OutreachAllSendersExhausted", "OutreachAccountCircuitOpen", "OutreachJobsHeld",
        "OutreachMailboxStale", "OutreachReplyBounceSpike"]
print("# %d alerts in the rules file" % len(alerts))
res("rules: all 12 alerts defined", all(w in alerts for w in want), sorted(set(want) - set(alerts)))
bad = [n for n, b in alerts.items()
       if not (re.search(r"\n\s+for: \d+[smhd]", b) and re.search(r"\n\s+severity: (page|ticket)\s", b)
               and all(re.search(r"\n\s+%s: " % k, b) for k in ("summary", "description", "runbook")))]
res("rules: every alert has for:, severity page|ticket, summary, description, runbook", not bad, bad)
doc = open(doc_path, encoding="utf-8").read()
missing = [n for n in alerts if not re.search(r"^### %s\s*$" % n, doc, re.M)
           or ("#" + n.lower()) not in alerts[n]]
res("rules: every alert's runbook annotation points at a README section", not missing, missing)
exprs = []
for m in re.finditer(r"\n(\s+)expr: (\|-?|>-?)?(.*)", rules):
    if m.group(2):
        body, ind = [], len(m.group(1))
        for line in rules[m.end():].split("\n")[1:]:
            if line.strip() and len(line) - len(line.lstrip()) <= ind:
                break
            body.append(line)
        exprs.append("\n".join(body))
    else:
        exprs.append(m.group(3))
res("rules: one expr per alert", len(exprs) == len(alerts), "%d exprs" % len(exprs))

# ---- the rule tests: a firing and a quiet case for every alert
tests = open(rtest_path, encoding="utf-8").read()
fire, quiet = set(), set()
for m in re.finditer(r"alertname: (\S+)\s*\n\s*exp_alerts:(.*)", tests):
    (quiet if m.group(2).strip() == "[]" else fire).add(m.group(1))
res("rule tests: every alert has a firing case", set(alerts) <= fire, sorted(set(alerts) - fire))
res("rule tests: every alert has a quiet (exp_alerts: []) case", set(alerts) <= quiet, sorted(set(alerts) - quiet))

# ---- metric names against the real run
emitted = set(open(emitted_path).read().split())
res("the real run emitted metric families", len(emitted) > 0)
print("# allow-listed (coming soon, not checked against the run): " + (" ".join(allow) or "none"))
now = sorted(set(allow) & emitted)
res("the allow-list names no metric the binary emits", not now, "drop from ALLOW (and the docs' 'not filled yet'): " + " ".join(now))
dnames = set()
for p, t in targets:
    dnames |= metric_names(t.get("expr", ""))
rnames = set()
for e in exprs:
    rnames |= metric_names(e)
for what, names in (("dashboard queries", dnames), ("rule exprs", rnames)):
    unknown = sorted(names - emitted - set(allow))
    res("%s use only metrics the binary emits or allow-listed ones (%d names)" % (what, len(names)), not unknown,
        "unknown: " + " ".join(unknown))
    used = sorted(names & set(allow))
    print("# %s use allow-listed: %s" % (what, " ".join(used) or "none"))
unshown = sorted(emitted - dnames)
print("# emitted but on no dashboard panel: " + (" ".join(unshown) or "none"))
sys.exit(fails)
EOF
nfail=$((nfail + $?))

if [ $have_promtool = 1 ] && [ -s "$T/dash-rules.yml" ]; then
  run_check "dashboard queries parse as PromQL (promtool check rules)" promtool check rules "$T/dash-rules.yml"
fi
finish
