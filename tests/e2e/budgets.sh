#!/bin/sh
# tests/e2e/budgets.sh — days of cron ticks on the virtual clock, then the
# ledger is audited the way an operator would audit it (doc/design.md §6, §10).
#
# Phase 1: timezone Europe/Moscow, three senders (linear warm-up, geometric
#   warm-up, none; each with per_minute), two clients (alpha capped at 50 a
#   day), a backlog far larger than the caps.  Four local days (Sat 2026-11-28
#   .. Tue 2026-12-01), one `run --deadline 1800` every 30 virtual minutes.
#   Checked from the slots/jobs tables: per sender per local day sends ==
#   min(daily_limit, warm-up volume) (the volume computed here, in Python, from
#   the formula of doc/design.md §10), never more; no 60-s window holds more than
#   per_minute of one sender's slots; the client cap; fairness (beta's 10 jobs,
#   enqueued after alpha's 500, all go the first day); round-robin order;
#   pinned jobs only via their sender; not_before; outbox <-> ledger; Date
#   headers == slot times; `status --json` agrees.
# Phase 2: rotation = "quota" and send windows: a Mon-Fri 09:00-18:00 Moscow
#   window enqueued on Saturday goes Monday at the first tick from 09:00, a
#   22:00-06:00 Mon-Fri window goes Monday at 00:00 (days are judged at the
#   slot's local time), and every quota pick is a sender with most remaining.
. "$(dirname "$0")/../lib.sh"
# a private copy of the binary under test, so a rebuild in the work tree while this
# runs cannot swap it (or leave it half-written) mid-test
private_binary

BASE=$T
# python3 analyses print ok/not ok lines; count the failures into nfail

# ---------------------------------------------------------------- phase 1
T=$BASE/p1; mkdir -p "$T"
setup '
rotation = "round-robin";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = (
  { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 60; per_minute = 2;
    warmup = { start = "2026-11-27"; first = 10; days = 5; curve = "linear"; }; },
  { name = "s2"; from = "Two <two@s2.example>"; provider = "dry"; daily_limit = 90; per_minute = 1;
    warmup = { start = "2026-11-28"; first = 7; days = 4; curve = "geometric"; }; },
  { name = "s3"; from = "Three <three@s3.example>"; provider = "dry"; daily_limit = 30; per_minute = 3; }
);
clients = ( { name = "alpha"; daily_limit = 50; }, { name = "beta"; daily_limit = 1000; } );'
sed -i 's/^timezone = "UTC";/timezone = "Europe\/Moscow";/' "$T/conf"
grep -q 'Europe/Moscow' "$T/conf" || notok "config uses Europe/Moscow"

SAT=1795813200          # 2026-11-28 00:00 Europe/Moscow (Saturday)
SUN=$((SAT + 86400))
i=1; while [ $i -le 500 ]; do job "a$i@alpha-rcpt.example" alpha; i=$((i + 1)); done >"$T/alpha.jsonl"
i=1; while [ $i -le 10 ]; do job "b$i@beta-rcpt.example" beta; i=$((i + 1)); done >"$T/beta10.jsonl"
{ for i in 1 2 3; do job "pin$i@beta-rcpt.example" beta ',"sender":"s2.example"'; done; } >"$T/pinned.jsonl"
job "later@beta-rcpt.example" beta ',"not_before":"2026-11-28T12:00:00+03:00"' >"$T/nb.jsonl"
i=1; while [ $i -le 300 ]; do job "bb$i@beta-rcpt.example" beta; i=$((i + 1)); done >"$T/beta300.jsonl"

export OUTREACH_NOW=$((SAT - 30))
or enqueue "$T/alpha.jsonl" >"$T/alpha.ids" || notok "enqueue alpha"
or enqueue "$T/beta10.jsonl" >"$T/beta10.ids" || notok "enqueue beta 10"
or enqueue "$T/pinned.jsonl" >"$T/pinned.ids" || notok "enqueue pinned"
or enqueue "$T/nb.jsonl" >"$T/nb.ids" || notok "enqueue not_before"
eq "enqueue printed 514 ids" "$(cat "$T/alpha.ids" "$T/beta10.ids" "$T/pinned.ids" "$T/nb.ids" | sort -u | wc -l)" 514

badrc=0 runs=0
day=0
while [ $day -lt 4 ]; do
  k=0
  while [ $k -lt 48 ]; do
    t=$((SAT + day * 86400 + k * 1800))
    if [ $t -eq $SUN ]; then
      OUTREACH_NOW=$((t - 10)) or enqueue "$T/beta300.jsonl" >"$T/beta300.ids" || notok "enqueue beta 300"
    fi
    echo "--- run $t" >>"$T/run.log"
    OUTREACH_NOW=$t OUTREACH_SEED=$((day * 100 + k)) or run --deadline 1800 >>"$T/run.log" 2>&1 ||
      { badrc=$((badrc + 1)); echo "run at $t exited $?" >>"$T/rc.log"; }
    runs=$((runs + 1)) k=$((k + 1))
  done
  # outreach prunes slot rows after a few days (jobs keep slot_at); keep each day's copy
  sqlite3 "$T/spool/state.db" ".backup '$T/day$day.db'" || notok "snapshot of day $day"
  day=$((day + 1))
done
eq "192 runs over 4 days, every one exits 0" "$runs/$badrc" "192/0"
[ -s "$T/rc.log" ] && head -3 "$T/rc.log" | sed 's/^/# /'
# cron mails whatever a run prints: only alerts, raised on a change of state
# (doc/design.md §8), may appear; never the same alert from two runs in a row
awk '/^--- run/ { prev = cur; cur = ""; next }
     !/event=alert alert=/ { print "not an alert: " $0; next }
     { a = $0; sub(/.*alert=/, "", a); sub(/ .*/, "", a);
       if (index(prev, " " a " ")) print "raised again by the next run: " $0; cur = cur " " a " " }' \
  "$T/run.log" >"$T/noise"
eq "runs print nothing but alerts, each raised once per change of state" "$(wc -l <"$T/noise")" 0
sed 's/^/#   /' "$T/noise" | head -5

# what the user sees at the end of the last day (Tue 23:50 local)
OUTREACH_NOW=$((SAT + 3 * 86400 + 23 * 3600 + 50 * 60)) or status --json >"$T/status.json" ||
  notok "status --json"

cat >"$T/check1.py" <<'EOF'
import sqlite3, sys, os, re, math, bisect, json, datetime, zoneinfo, email.parser, email.utils
T = sys.argv[1]
fails = 0
def ok(cond, name, detail=""):
    global fails
    if cond:
        print("ok - " + name)
    else:
        fails += 1
        print("not ok - " + name)
        if detail:
            print("#   " + str(detail))
Z = zoneinfo.ZoneInfo("Europe/Moscow")
def lday(t): return datetime.datetime.fromtimestamp(t, Z).date()
D0 = datetime.date(2026, 11, 28)
DAYS = [D0 + datetime.timedelta(days=i) for i in range(4)]
NAMES = {0: "Sat", 1: "Sun", 2: "Mon", 3: "Tue"}
SENDERS = [  # name, domain, daily_limit, per_minute, warm-up (curve, start, first, days)
    ("s1", "s1.example", 60, 2, ("linear", datetime.date(2026, 11, 27), 10, 5)),
    ("s2", "s2.example", 90, 1, ("geometric", datetime.date(2026, 11, 28), 7, 4)),
    ("s3", "s3.example", 30, 3, None),
]
def volume(dl, wu, day):
    """doc/design.md §10, written out independently of outreach.c"""
    if wu is None:
        return dl
    curve, start, first, ndays = wu
    d = (day - start).days
    if d < 0:
        return 0
    if d >= ndays:
        return dl
    if curve == "linear":
        v = first + (dl - first) * d / ndays
    else:
        v = first * math.pow(dl / first, d / ndays)
    return min(dl, math.floor(v + 1e-9))
CAP = {(s[0], day): volume(s[2], s[4], day) for s in SENDERS for day in DAYS}
# the formula itself, against numbers worked out by hand from doc/design.md §10
ok([CAP[("s1", d)] for d in DAYS] == [20, 30, 40, 50] and [CAP[("s2", d)] for d in DAYS] == [7, 13, 25, 47],
   "expected caps: s1 linear 20/30/40/50, s2 geometric 7/13/25/47, s3 30",
   [(k, v) for k, v in sorted(CAP.items())])

db = sqlite3.connect(os.path.join(T, "spool", "state.db"))
ids = lambda f: [l.strip() for l in open(os.path.join(T, f)) if l.strip()]
jobs = {r[0]: r for r in db.execute(
    "SELECT id, client, state, sender, slot_at, pin, not_before FROM jobs")}
sent = [r for r in jobs.values() if r[2] == "sent"]
# every slot row that existed at the end of some day (newest copy of each row wins)
allslots = {}
for n in range(4):
    for row in sqlite3.connect(os.path.join(T, "day%d.db" % n)).execute(
            "SELECT id, sender, client, at, job_id, state, day FROM slots"):
        allslots[row[0]] = row
slots = [allslots[k] for k in sorted(allslots) if allslots[k][5] != "void"]

# --- caps: every sender, every local day: exactly its cap while backlog remains
waiting = {c: n for c, n in db.execute("SELECT client, count(*) FROM jobs WHERE state = 'waiting' GROUP BY client")}
ok(waiting.get("alpha", 0) > 0 and waiting.get("beta", 0) > 0,
   "backlog remains at the end for both clients", waiting)
states = dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
ok(set(states) <= {"waiting", "sent"}, "every job is sent or waiting (no failures, nothing held)", states)
per = {}
for r in sent:
    k = (r[3], lday(r[4]))
    per[k] = per.get(k, 0) + 1
sper = {}
for s in slots:
    k = (s[1], lday(s[3]))
    sper[k] = sper.get(k, 0) + 1
for name, _, dl, pm, wu in SENDERS:
    for i, day in enumerate(DAYS):
        c = CAP[(name, day)]
        ok(per.get((name, day), 0) == c and sper.get((name, day), 0) == c,
           "%s %s %s: sent == min(daily_limit, warm-up) == %d" % (name, NAMES[i], day, c),
           "sent jobs %d, slots %d" % (per.get((name, day), 0), sper.get((name, day), 0)))
outside = [k for k in list(per) + list(sper) if k[1] not in DAYS]
ok(not outside, "no send outside the four simulated local days", outside[:5])
ok(len(sent) == sum(CAP.values()) == len(slots), "total sends == sum of the caps (%d)" % sum(CAP.values()),
   "sent %d slots %d" % (len(sent), len(slots)))
# the day a send counts on is the local (Moscow) day of its slot: the ledger's own day
# column must agree with it
epoch = datetime.date(1970, 1, 1)
bad_day = [s for s in slots if (lday(s[3]) - epoch).days != s[6]]
ok(not bad_day, "slots.day is the Europe/Moscow calendar day of the slot", bad_day[:3])
early = [s for s in slots if datetime.datetime.fromtimestamp(s[3], Z).hour < 3 and lday(s[3]) == D0]
ok(len(early) > 0, "sends between 00:00 and 03:00 Moscow (still the previous UTC day) count on the local day")

# --- per_minute: no half-open 60 s window [t, t+60) holds more than per_minute slots
for name, _, dl, pm, wu in SENDERS:
    ts = sorted(s[3] for s in slots if s[1] == name)
    worst = max((bisect.bisect_left(ts, t + 60 - 1e-6) - j for j, t in enumerate(ts)), default=0)
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    ok(worst <= pm, "%s: no 60-second window holds more than per_minute=%d of its slots" % (name, pm),
       "max in a window: %d" % worst)
    ok(min(gaps) >= 60.0 / pm - 1e-6, "%s: slots at least 60/per_minute = %.0f s apart" % (name, 60.0 / pm),
       "smallest gap %.3f" % min(gaps))

# --- client cap
cper = {}
for r in sent:
    k = (r[1], lday(r[4]))
    cper[k] = cper.get(k, 0) + 1
over = {k: v for k, v in cper.items() if k[0] == "alpha" and v > 50}
ok(not over, "client alpha never above its daily_limit 50", over)
ok(cper.get(("alpha", DAYS[3]), 0) == 50,
   "client alpha at exactly its cap 50 on Tuesday (it binds: senders have 127)", cper.get(("alpha", DAYS[3])))
sl_over = {}
for s in slots:
    k = (s[2], lday(s[3]))
    sl_over[k] = sl_over.get(k, 0) + 1
ok(all(v <= 50 for k, v in sl_over.items() if k[0] == "alpha"), "alpha's slots per day never above 50",
   {k: v for k, v in sl_over.items() if k[0] == "alpha"})
ok(cper.get(("beta", DAYS[3]), 0) == sum(CAP[(s[0], DAYS[3])] for s in SENDERS) - 50,
   "beta takes the capacity alpha's cap leaves on Tuesday", cper.get(("beta", DAYS[3])))

# --- fairness: beta's 10 (enqueued after alpha's 500) all go on Saturday
b10 = ids("beta10.ids")
bs = [(jobs[i][2], lday(jobs[i][4]) if jobs[i][4] else None) for i in b10]
ok(len(b10) == 10 and all(s == "sent" and d == D0 for s, d in bs),
   "fairness: beta's 10 jobs all sent on the first day despite alpha's 500", bs)

# --- round-robin, in claim order, on Saturday and Sunday (all their sends fit in the
# first run of the day, so only caps and pins decide who is eligible)
rr_last = -1
mism = []
checked = 0
count = {}
for sid, sender, client, at, job_id, st, _ in slots:
    day = lday(at)
    if day not in DAYS[:2]:
        continue
    pin = jobs[job_id][5]
    elig = [i for i, s in enumerate(SENDERS) if count.get((s[0], day), 0) < CAP[(s[0], day)]
            and (not pin or pin in (s[0], s[1]))]
    exp = next((i for i in elig if i > rr_last), elig[0] if elig else None)
    if exp is None or SENDERS[exp][0] != sender:
        mism.append((sid, sender, exp is not None and SENDERS[exp][0]))
    got = [s[0] for s in SENDERS].index(sender)
    rr_last = got
    count[(sender, day)] = count.get((sender, day), 0) + 1
    checked += 1
ok(checked == sum(CAP[(s[0], d)] for s in SENDERS for d in DAYS[:2]) and not mism,
   "round-robin: each claim takes the next sender after the last one used (%d claims)" % checked,
   "mismatches (slot, got, expected): %s" % mism[:5])
sat_order = [s[1] for s in slots if lday(s[3]) == D0][:6]
ok(sat_order[:3] in (["s1", "s2", "s3"], ["s2", "s3", "s1"], ["s3", "s1", "s2"]) and len(set(sat_order[:3])) == 3,
   "round-robin: the first three sends use three different senders", sat_order)

# --- pinned to s2's domain: only ever via s2
pins = ids("pinned.ids")
pst = [(jobs[i][2], jobs[i][3]) for i in pins]
ok(all(p == ("sent", "s2") for p in pst), "jobs pinned to s2.example were sent via s2", pst)
other = db.execute("SELECT count(*) FROM slots WHERE sender != 's2' AND job_id IN (%s)" %
                   ",".join("?" * len(pins)), pins).fetchone()[0]
ok(other == 0, "no slot of a pinned job on another sender", other)

# --- messages on disk
box = os.path.join(T, "outbox")
files = sorted(os.listdir(box))
name_ok = [f for f in files if re.fullmatch(r"[0-9a-f]{16}\.eml", f)]
ok(len(name_ok) == len(files), "every outbox file is named <ledger-id>.eml (no <id>.2.eml resends)",
   [f for f in files if f not in name_ok][:5])
sent_ids = {r[0] for r in sent}
box_ids = {f[:-4] for f in name_ok}
ok(box_ids == sent_ids and len(files) == len(sent),
   "outbox files <-> 'sent' ledger rows: same %d ids" % len(sent),
   "only in outbox: %s; only in ledger: %s" % (sorted(box_ids - sent_ids)[:3], sorted(sent_ids - box_ids)[:3]))
def headers(i):
    with open(os.path.join(box, i + ".eml"), "rb") as f:
        return email.parser.BytesHeaderParser().parse(f)
def hdate(i):
    return email.utils.parsedate_to_datetime(headers(i)["Date"]).timestamp()
pfrom = [headers(i)["From"] for i in pins if i in box_ids]
ok(len(pfrom) == 3 and all("two@s2.example" in f for f in pfrom), "pinned jobs' messages are From two@s2.example", pfrom)
by_time = sorted(sent, key=lambda r: r[4])
sample = by_time[:3] + by_time[len(by_time) // 2:len(by_time) // 2 + 2] + by_time[-3:]
bad = []
for r in sample:
    h = headers(r[0])
    d = email.utils.parsedate_to_datetime(h["Date"]).timestamp()
    if abs(d - r[4]) >= 1 or h["X-Outreach-Job"] != r[0]:
        bad.append((r[0], h["Date"], r[4], h["X-Outreach-Job"]))
ok(not bad, "Date header == slot_at of its job (%d sampled), X-Outreach-Job == id" % len(sample), bad)

# --- not_before
nb = ids("nb.ids")[0]
nbt = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=Z).timestamp()
r = jobs[nb]
ok(r[2] == "sent" and r[4] >= nbt and hdate(nb) >= nbt - 1e-6,
   "a job with not_before Sat 12:00 Moscow is not sent before it", (r[2], r[4], nbt))
ok(r[2] == "sent" and lday(r[4]) == DAYS[1],
   "... and goes the next day, when the senders have room again (Sunday)", r[4] and lday(r[4]))

# --- status --json for the last day
st = json.load(open(os.path.join(T, "status.json")))
got = {s["name"]: (s["sent_today"], s["cap_today"]) for s in st["senders"]}
exp = {s[0]: (CAP[(s[0], DAYS[3])], CAP[(s[0], DAYS[3])]) for s in SENDERS}
ok(got == exp, "status --json on Tuesday: sent_today == cap_today == expected per sender", (got, exp))
cl = {c["name"]: (c["sent_today"], c["cap_today"]) for c in st["clients"]}
ok(cl.get("alpha") == (50, 50), "status --json: client alpha 50/50 on Tuesday", cl)
print("# analysis complete")
EOF
pycheck "$T/check1.py" "$T"

# ---------------------------------------------------------------- phase 2
T=$BASE/p2; mkdir -p "$T"
setup '
rotation = "quota";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = (
  { name = "q1"; from = "Q1 <q1@q1.example>"; provider = "dry"; daily_limit = 12; },
  { name = "q2"; from = "Q2 <q2@q2.example>"; provider = "dry"; daily_limit = 8; per_minute = 30; },
  { name = "q3"; from = "Q3 <q3@q3.example>"; provider = "dry"; daily_limit = 5; }
);'
sed -i 's/^timezone = "UTC";/timezone = "Europe\/Moscow";/' "$T/conf"
SAT10=$((SAT + 10 * 3600))
export OUTREACH_NOW=$((SAT10 - 60))
i=1; while [ $i -le 20 ]; do job "c$i@gamma-rcpt.example" gamma; i=$((i + 1)); done >"$T/plain.jsonl"
or enqueue "$T/plain.jsonl" >"$T/plain.ids" || notok "enqueue plain"
job "office@gamma-rcpt.example" gamma \
  ',"window":{"days":"Mon-Fri","hours":"09:00-18:00","tz":"Europe/Moscow"}' | or enqueue - >"$T/w1.ids" ||
  notok "enqueue office-hours job"
job "night@gamma-rcpt.example" gamma ',"window":{"days":"Mon-Fri","hours":"22:00-06:00"}' |
  or enqueue - >"$T/w2.ids" || notok "enqueue night job"
badrc=0 runs=0
t=$SAT10
while [ $t -le $((SAT + 2 * 86400 + 10 * 3600)) ]; do    # Sat 10:00 .. Mon 10:00, every 30 min
  OUTREACH_NOW=$t OUTREACH_SEED=$runs or run --deadline 1800 >>"$T/run.log" 2>&1 || badrc=$((badrc + 1))
  runs=$((runs + 1)) t=$((t + 1800))
done
eq "97 runs Sat 10:00 .. Mon 10:00, every one exits 0" "$runs/$badrc" "97/0"

cat >"$T/check2.py" <<'EOF'
import sqlite3, sys, os, datetime, zoneinfo, email.parser, email.utils
T = sys.argv[1]
def ok(cond, name, detail=""):
    print(("ok - " if cond else "not ok - ") + name)
    if not cond and detail != "":
        print("#   " + str(detail))
Z = zoneinfo.ZoneInfo("Europe/Moscow")
loc = lambda t: datetime.datetime.fromtimestamp(t, Z)
db = sqlite3.connect(os.path.join(T, "spool", "state.db"))
ids = lambda f: [l.strip() for l in open(os.path.join(T, f)) if l.strip()]
jobs = {r[0]: r for r in db.execute("SELECT id, state, sender, slot_at FROM jobs")}
plain = ids("plain.ids")
ok(all(jobs[i][1] == "sent" and loc(jobs[i][3]).date() == datetime.date(2026, 11, 28) for i in plain),
   "the 20 plain jobs all go on Saturday (caps 12+8+5)")
CAP = {"q1": 12, "q2": 8, "q3": 5}
order = ["q1", "q2", "q3"]
slots = db.execute("SELECT id, sender, at FROM slots WHERE state != 'void' ORDER BY id").fetchall()
used, bad = {}, []
for sid, sender, at in slots:
    day = loc(at).date()
    rem = {s: CAP[s] - used.get((s, day), 0) for s in order}
    best = max(rem.values())
    if rem[sender] != best or best <= 0:
        bad.append((sid, sender, rem))
    used[(sender, day)] = used.get((sender, day), 0) + 1
ok(len(slots) == 22 and not bad, "quota rotation: every pick is a sender with the most remaining today "
   "(%d picks)" % len(slots), bad[:4])
sat = [s[1] for s in slots if loc(s[2]).date() == datetime.date(2026, 11, 28)]
ok(sat[:4] == ["q1"] * 4, "quota: q1 (12 left) takes the first 4 until it is level with q2 (8 left)", sat[:8])
box = os.path.join(T, "outbox")
def hdate(i):
    with open(os.path.join(box, i + ".eml"), "rb") as f:
        return email.utils.parsedate_to_datetime(email.parser.BytesHeaderParser().parse(f)["Date"]).timestamp()
w1 = ids("w1.ids")[0]
r = jobs[w1]
mon9 = datetime.datetime(2026, 11, 30, 9, 0, tzinfo=Z).timestamp()
ok(r[1] == "sent" and mon9 <= r[3] < mon9 + 1800,
   "Mon-Fri 09:00-18:00 Moscow window, enqueued Saturday: sent Monday at the first tick from 09:00",
   (r[1], r[3] and loc(r[3]).isoformat()))
ok(r[1] == "sent" and abs(hdate(w1) - r[3]) < 1 and hdate(w1) >= mon9,
   "... its Date header is Monday >= 09:00 Moscow", r[3])
w2 = ids("w2.ids")[0]
r = jobs[w2]
mon0 = datetime.datetime(2026, 11, 30, 0, 0, tzinfo=Z).timestamp()
ok(r[1] == "sent" and mon0 <= r[3] < mon0 + 1800,
   "22:00-06:00 Mon-Fri window (config tz), enqueued Saturday: sent Monday 00:00 (not Sat/Sun nights)",
   (r[1], r[3] and loc(r[3]).isoformat()))
files = sorted(os.listdir(box))
sent = {i for i, r in jobs.items() if r[1] == "sent"}
ok(sorted(f[:-4] for f in files) == sorted(sent) and len(files) == 22, "22 .eml files, one per sent job", len(files))
print("# analysis complete")
EOF
pycheck "$T/check2.py" "$T"

T=$BASE
finish
