#!/bin/sh
# tests/e2e/plan.sh — `outreach plan` against a forecast computed IN THIS TEST (python)
# from doc/design.md §10 (warm-up formulas, today's cap) and the model the comment above
# or_cmd_plan documents (day by day in the config timezone; day 0 from now with what is
# left today; clients take turns one job at a time, each client's jobs earliest due first;
# each job to the eligible sender free earliest; a sender is then busy for its gap; client
# caps per day; windows; not_before; paused scopes listed, not forecast).
#
# Scenario (config timezone Europe/Moscow; now = Thursday 2026-12-03 12:00 local):
#   sender a  linear    warm-up started 2 days ago  (first 10, 10 days, limit 100), all clients
#   sender b  geometric warm-up starts tomorrow     (first 20, 7 days, limit 80), clients = ["globex"]
#   sender c  geometric warm-up started 5 days ago  (first 2, 8 days, limit 50), all clients
#   client acme   daily_limit 90: campaign "early" (6 jobs, sent today before the plan) and
#                 "bulk" (230 jobs, no window)
#   client globex no cap: "weekday" (240 jobs, window Mon-Fri: the forecast skips the
#                 weekend), "paused" (5 jobs, campaign paused), "spring" (3 jobs with a
#                 not_before beyond the 60-day horizon)
# By hand (capacities a/b/c per day from §10; acme's jobs are the older, so acme leads):
#   Thu  a 28-3, c 14-3 (6 early sends, 3 each), b 0 36 -> acme 18, globex 18 (turns)
#   Fri  a 37, b 20, c 22                          79 -> acme 40, globex 39
#   Sat  weekend: globex waits; acme only a+c      46+33 = 79 (b serves globex only) -> acme 79
#   Sun  acme a+c = 55+50 = 105, capped            -> acme 90 (227 of 230 done)
#   Mon  a 64, b 36, c 50 = 150                    -> acme 3 (finishes Mon 12-07), globex 147
#   Tue                                            -> globex 36 (finishes Tue 12-08)
# Without b's client restriction or acme's cap, acme would finish on Sunday.
# Checks: senders[].capacity = the warm-up volumes of the next 14 days (today's minus
# today's sends); each campaign's finish falls on the local day the model says (and the
# model agrees with the hand-computed days above); warning true for a campaign finishing
# after --days N, false otherwise (--days 4: globex/weekday yes, acme/bulk no; default 7:
# neither; spring always, being unscheduled); paused true for the paused one; the text form has one
# 14-column chart line per sender, and no line of it, nor of status.txt, is over 100
# columns.
# san: yes
. "$(dirname "$0")/../lib.sh"

NOW=1796288400   # Thursday 2026-12-03T09:00:00Z = 12:00 Europe/Moscow
TZNAME=Europe/Moscow
# warm-up start dates relative to the virtual local day
eval "$(python3 - "$NOW" "$TZNAME" <<'EOF'
import datetime, sys, zoneinfo
now, tz = int(sys.argv[1]), zoneinfo.ZoneInfo(sys.argv[2])
d = datetime.datetime.fromtimestamp(now, tz).date()
for name, off in (("A", -2), ("B", 1), ("C", -5)):
    print("START_%s=%s" % (name, d + datetime.timedelta(days=off)))
EOF
)"
cat >"$T/conf" <<EOC
spool = "spool";
report_dir = "reports";
timezone = "$TZNAME";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = (
  { name = "a"; from = "A <a@a.example>"; provider = "dry"; daily_limit = 100; per_minute = 60;
    warmup = { start = "$START_A"; first = 10; days = 10; curve = "linear"; }; },
  { name = "b"; from = "B <b@b.example>"; provider = "dry"; daily_limit = 80; per_minute = 60;
    warmup = { start = "$START_B"; first = 20; days = 7; curve = "geometric"; }; clients = ["globex"]; },
  { name = "c"; from = "C <c@c.example>"; provider = "dry"; daily_limit = 50; per_minute = 60;
    warmup = { start = "$START_C"; first = 2; days = 8; curve = "geometric"; }; }
);
clients = ( { name = "acme"; daily_limit = 90; } );
EOC
"$OR" -c "$T/conf" init >/dev/null || { notok "init"; finish; }
at() { _s=$1; shift; OUTREACH_NOW=$((NOW + _s)) "$OR" -c "$T/conf" "$@"; }

jobs() { campaign_jobs "$@"; }   # lib.sh

# today: 6 acme jobs go out before the plan (day 0 capacity is what is left)
jobs acme early 6 >"$T/early.jsonl"
check "enqueue 6 early jobs" at 0 enqueue "$T/early.jsonl"
check "run: the early jobs go out today" at 0 run
eq "6 early jobs sent" "$(q "SELECT count(*) FROM jobs WHERE state = 'sent'")" 6
# the rest is only ingested (every sender paused for those ticks), acme's first
for s in a b c; do at 5 pause --sender $s --reason "ingest only" >/dev/null || notok "pause --sender $s"; done
jobs acme bulk 230 >"$T/bulk.jsonl"
check "enqueue 230 acme/bulk jobs" at 6 enqueue "$T/bulk.jsonl"
check "run (ingest acme)" at 10 run
{ jobs globex weekday 240 ',"window":{"days":"Mon-Fri"}'
  jobs globex paused 5
  jobs globex spring 3 ',"not_before":"2027-03-15T10:00:00+03:00"'; } >"$T/globex.jsonl"
check "enqueue 248 globex jobs" at 11 enqueue "$T/globex.jsonl"
check "run (ingest globex)" at 20 run
for s in a b c; do at 25 resume --sender $s >/dev/null || notok "resume --sender $s"; done
check "pause the campaign globex/paused" at 26 pause --client globex --campaign paused
eq "478 jobs wait in the ledger" "$(q "SELECT count(*) FROM jobs WHERE state = 'waiting'")" 478
at 60 plan --json --days 4 >"$T/plan4.json" 2>"$T/plan.err"; eq "plan --json --days 4 exits 0" $? 0
at 60 plan --json >"$T/plan7.json" 2>>"$T/plan.err"; eq "plan --json exits 0" $? 0
at 60 plan --days 4 >"$T/plan.txt" 2>>"$T/plan.err"; eq "plan (text) exits 0" $? 0
at 60 status >"$T/status-cmd.txt" 2>&1; eq "status exits 0" $? 0

python3 - "$T" "$NOW" "$TZNAME" "$START_A" "$START_B" "$START_C" <<'EOF'
import datetime, json, math, re, sqlite3, sys, zoneinfo
T, now0, tzname = sys.argv[1], int(sys.argv[2]), sys.argv[3]
starts = dict(zip("abc", (datetime.date.fromisoformat(x) for x in sys.argv[4:7])))
tz = zoneinfo.ZoneInfo(tzname)
fails = 0
def res(name, good, detail=""):
    global fails
    print(("ok - " if good else "not ok - ") + name)
    if not good:
        fails += 1
        for line in str(detail).splitlines()[:25]:
            print("#   " + line)

NOW = now0 + 60                       # the plan's virtual now
today = datetime.datetime.fromtimestamp(NOW, tz).date()
def day_start(date):                  # local midnight of a date, epoch seconds
    return datetime.datetime(date.year, date.month, date.day, tzinfo=tz).timestamp()
def local_date(t):
    return datetime.datetime.fromtimestamp(t, tz).date()

# ---- doc/design.md §10: warm-up volume and today's cap
SENDERS = [  # name, daily_limit, first, days, curve, clients (None = all), gap
    ("a", 100, 10, 10, "linear", None, 60 / 60),
    ("b", 80, 20, 7, "geometric", {"globex"}, 60 / 60),
    ("c", 50, 2, 8, "geometric", None, 60 / 60),
]
def volume(limit, first, days, curve, d):
    if d < 0:
        return 0
    if d >= days:
        return limit
    v = first + (limit - first) * d / days if curve == "linear" else first * math.pow(limit / first, d / days)
    return min(limit, math.floor(v + 1e-9))
def cap(s, date):
    name, limit, first, days, curve, _, _ = s
    return volume(limit, first, days, curve, (date - starts[name]).days)

db = sqlite3.connect(T + "/spool/state.db")
day_no = lambda t: (local_date(t) - today).days
slots = db.execute("SELECT sender, client, at FROM slots WHERE state != 'void'").fetchall()
sent_today = {s[0]: sum(1 for x in slots if x[0] == s[0] and day_no(x[2]) == 0) for s in SENDERS}
client_today = {c: sum(1 for x in slots if x[1] == c and day_no(x[2]) == 0) for c in ("acme", "globex")}
last_slot = {s[0]: max([x[2] for x in slots if x[0] == s[0]], default=0) for s in SENDERS}
print("# sent today before the plan: %s (clients %s)" % (sent_today, client_today))

CAPS = {}
for s in SENDERS:
    CAPS[s[0]] = [cap(s, today + datetime.timedelta(days=d)) for d in range(60)]
    CAPS[s[0]][0] = max(0, CAPS[s[0]][0] - sent_today[s[0]])

# ---- the model (or_cmd_plan's comment), on the ledger's pending jobs
CLIENT_LIMIT = {"acme": 90}
WINDOW = {("globex", "weekday"): {0, 1, 2, 3, 4}}      # Mon-Fri, local weekday numbers
PAUSED = {("globex", "paused")}
jobs = [dict(client=c, campaign=k, due=due, at=None) for c, k, due in db.execute(
    "SELECT client, campaign, next_due FROM jobs WHERE state IN ('waiting', 'claimed', 'sending') "
    "ORDER BY next_due, created_at")]
clients = []
for j in jobs:
    if j["client"] not in clients:
        clients.append(j["client"])
per_day = []                           # (date, {campaign: n}) for the diagnostics
for d in range(60):
    date = today + datetime.timedelta(days=d)
    start = NOW if d == 0 else day_start(date)
    end = day_start(date + datetime.timedelta(days=1))
    free = [max(last_slot[s[0]] + s[6], start) if d == 0 else start for s in SENDERS]
    rem = [CAPS[s[0]][d] for s in SENDERS]
    crem = {c: (CLIENT_LIMIT[c] - (client_today[c] if d == 0 else 0)) if c in CLIENT_LIMIT else 10**9 for c in clients}
    queue = {c: [j for j in jobs if j["client"] == c and (j["client"], j["campaign"]) not in PAUSED and j["at"] is None]
             for c in clients}
    placed_today = {}
    active = set(clients)
    while active:
        for c in clients:
            if c not in active:
                continue
            placed = False
            while queue[c] and not placed and crem[c] > 0:
                j = queue[c].pop(0)
                best, bt = None, None
                for i, s in enumerate(SENDERS):
                    if rem[i] <= 0 or (s[5] is not None and c not in s[5]):
                        continue
                    t = max(free[i], j["due"])
                    if t >= end:
                        continue
                    w = WINDOW.get((j["client"], j["campaign"]))
                    if w is not None and date.weekday() not in w:   # a days-only window: open all day or not
                        continue
                    if best is None or t < bt:
                        best, bt = i, t
                if best is None:
                    continue
                j["at"] = bt
                free[best] = bt + SENDERS[best][6]
                rem[best] -= 1
                crem[c] -= 1
                placed = True
                key = "%s/%s" % (j["client"], j["campaign"])
                placed_today[key] = placed_today.get(key, 0) + 1
            if not placed:
                active.discard(c)
    per_day.append((date, placed_today))
    if all(j["at"] is not None or (j["client"], j["campaign"]) in PAUSED for j in jobs):
        break
for date, p in per_day:
    if p:
        print("# model %s %s: %s" % (date, date.strftime("%a"), p))

def model_campaign(c, k, warn_days):
    mine = [j for j in jobs if (j["client"], j["campaign"]) == (c, k)]
    paused = (c, k) in PAUSED
    live = [j for j in mine if not paused]
    uns = sum(1 for j in live if j["at"] is None)
    fin = max([j["at"] for j in live if j["at"] is not None], default=None)
    warn = not paused and (uns > 0 or (fin is not None and fin > NOW + warn_days * 86400))
    return dict(pending=len(mine), paused=paused, unscheduled=uns, finish=fin, warning=warn)

# hand-computed (see the header): finish days in local time
HAND = {("acme", "bulk"): datetime.date(2026, 12, 7), ("globex", "weekday"): datetime.date(2026, 12, 8)}
for key, want in HAND.items():
    m = model_campaign(*key, 4)
    res("model self-check: %s/%s finishes on %s (hand-computed)" % (key + (want,)),
        m["finish"] is not None and local_date(m["finish"]) == want, m)

def load(p):
    try:
        return json.load(open(p, encoding="utf-8"))
    except Exception as e:
        res("%s is JSON" % p, False, e)
        return {"campaigns": [], "senders": []}
for path, warn_days in ((T + "/plan4.json", 4), (T + "/plan7.json", 7)):
    P = load(path)
    tag = "plan --json%s" % (" --days 4" if warn_days == 4 else "")
    got = {(x.get("client"), x.get("name")): x for x in P.get("campaigns", [])}
    keys = sorted({(j["client"], j["campaign"]) for j in jobs})
    res("%s: campaigns listed are the pending ones %s" % (tag, keys), sorted(got) == keys, sorted(got))
    for key in keys:
        m, g = model_campaign(*key, warn_days), got.get(key, {})
        name = "%s: %s/%s" % (tag, key[0], key[1])
        res("%s pending %d" % (name, m["pending"]), g.get("pending") == m["pending"], g)
        res("%s paused %s" % (name, str(m["paused"]).lower()), g.get("paused") is m["paused"], g)
        res("%s unscheduled %d" % (name, m["unscheduled"]), g.get("unscheduled") == m["unscheduled"], g)
        res("%s warning %s" % (name, str(m["warning"]).lower()), g.get("warning") is m["warning"], (g, m))
        if m["finish"] is None:
            res("%s finish null" % name, g.get("finish") is None, g)
        else:
            want = local_date(m["finish"])
            gf = g.get("finish")
            try:
                gd = local_date(datetime.datetime.fromisoformat(gf.replace("Z", "+00:00")).timestamp())
            except Exception:
                gd = None
            res("%s finish on %s %s (local day; %s)" % (name, want, want.strftime("%a"), gf), gd == want,
                "model %s, plan %s" % (datetime.datetime.fromtimestamp(m["finish"], tz), gf))
    caps = {s.get("name"): s.get("capacity") for s in P.get("senders", [])}
    for s in SENDERS:
        want = CAPS[s[0]][:14]
        res("%s: sender %s capacity (14 days) = %s" % (tag, s[0], want), caps.get(s[0]) == want, caps.get(s[0]))

# ---- the text form
txt = open(T + "/plan.txt", encoding="utf-8").read().splitlines()
long = [l for l in txt if len(l) > 100]
res("plan text: no line over 100 columns", not long, "\n".join("%d: %s" % (len(l), l) for l in long))
top = max(max(CAPS[s[0]][:14]) for s in SENDERS)
bars = " \u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
for s in SENDERS:
    lines = [l for l in txt if re.match(r"^\s+%s\s.*today \d+" % s[0], l)]
    m = re.match(r"^\s+%s\s+?(.{14})  today (\d+), in 13 days (\d+)\s*$" % s[0], lines[0]) if len(lines) == 1 else None
    res("plan text: one chart line for sender %s with 14 day columns" % s[0],
        m is not None and all(ch in bars for ch in m.group(1)), lines)
    if m:
        want = "".join(bars[math.ceil(v * 8 / top)] for v in CAPS[s[0]][:14])
        res("plan text: sender %s chart columns follow the capacities (full block = %d)" % (s[0], top),
            m.group(1) == want and int(m.group(2)) == CAPS[s[0]][0] and int(m.group(3)) == CAPS[s[0]][13],
            "want [%s] got [%s]" % (want, m.group(1)))
for key in ((("globex", "weekday"), "WARNING"), (("globex", "paused"), "paused")):
    (c, k), word = key
    res("plan text: %s/%s line says %s" % (c, k, word),
        any(l.startswith(c) and (" " + k + " ") in l and word in l for l in txt), "\n".join(txt))

# ---- status.txt (written by the last tick, senders paused) and `status` (computed afresh)
for p in ("reports/status.txt", "status-cmd.txt"):
    st = open(T + "/" + p, encoding="utf-8").read().splitlines()
    long = [l for l in st if len(l) > 100]
    res("%s: no line over 100 columns (%d lines)" % (p, len(st)), st and not long,
        "\n".join("%d: %s" % (len(l), l) for l in long))
sys.exit(1 if fails else 0)
EOF
[ $? -eq 0 ] || nfail=$((nfail + 1))
[ -s "$T/plan.err" ] && sed 's/^/# stderr: /' "$T/plan.err"

# ---- 300 clients: each keeps its own cap counter (client 0 and client 256 used to share one)
# c000 (daily_limit 2, 5 jobs, due first so it is the first client found) must take three days
# to finish (one sent by the run that ingests, then 1 + 2 + 1); c256, found 257th, has no cap
# and one job: it must not lend c000 its counter.
newconf many '
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s"; from = "S <s@s.example>"; provider = "dry"; daily_limit = 100000; per_minute = 600; } );
clients = ( { name = "c000"; daily_limit = 2; } );'
python3 - "$NOW" >"$T/many.jsonl" <<'EOF'
import datetime, json, sys
later = datetime.datetime.fromtimestamp(int(sys.argv[1]) + 600, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
for i in range(5):
    print(json.dumps({"client": "c000", "campaign": "k", "to": "p%d@example.com" % i, "subject": "s", "text": "t"}))
for c in range(1, 300):
    print(json.dumps({"client": "c%03d" % c, "campaign": "k", "to": "q%d@example.com" % c, "subject": "s",
                      "text": "t", "not_before": later}))
EOF
orc many enqueue "$T/many.jsonl" >/dev/null && OUTREACH_NOW=$NOW orc many run --max 1 >/dev/null 2>&1   # ingests all, sends one of c000
OUTREACH_NOW=$NOW orc many plan --json >"$T/many.json" 2>"$T/many.err"
python3 - "$T/many.json" "$NOW" <<'EOF' && ok "plan with 300 clients: c000's cap holds (finishes in 3 days), c256 finishes today" || notok "plan with 300 clients: each client its own cap" "$(head -c 600 "$T/many.json")"
import datetime, json, sys
p = json.load(open(sys.argv[1]))
now = datetime.datetime.fromtimestamp(int(sys.argv[2]), datetime.timezone.utc).date()
fin = {c["client"]: datetime.date.fromisoformat(c["finish"][:10]) for c in p["campaigns"]}
assert len(fin) == 300, len(fin)
assert (fin["c000"] - now).days == 2, ("c000", fin["c000"])
assert all(fin["c%03d" % c] == now for c in range(1, 300)), [k for k, v in fin.items() if k != "c000" and v != now][:5]
EOF
finish
