#!/bin/sh
# tests/e2e/concurrency.sh — four `run`s at once over one spool (doc/design.md §4, §5:
# claims are renames that lose races cleanly, quota decisions are BEGIN IMMEDIATE
# transactions, so overlapping runs never overspend a cap or send a job twice).
# 1,000 jobs, three senders capped at 300 + 300 + 200 = 800 a day, no per_minute.
# Each round starts four runs in the background at the same virtual time, waits
# for all, then audits: every run exits 0; no job sent twice (one <id>.eml per
# sent job, ledger 'sent' rows == messages); each sender at exactly its cap;
# the 200 left wait in defer/; nothing in cur/ or new/; integrity ok; every job
# in exactly one folder.  Rounds 1 and 2 race on pre-ingested jobs (different
# seeds); round 3 races from a cold start, 1,000 files still in new/; round 4
# races paced senders (per_minute) and checks the 60-s windows across runs.
. "$(dirname "$0")/../lib.sh"
# a private copy of the binary under test, so a rebuild in the work tree while this
# runs cannot swap it (or leave it half-written) mid-test
private_binary

BASE=$T
NOW=1795813200   # 2026-11-27 21:00 UTC

cat >"$BASE/check.py" <<'EOF'
import sqlite3, sys, os, re, json, bisect
T, tag = sys.argv[1], "[%s] " % sys.argv[2]
spec = json.loads(sys.argv[3])
CAP, PM, NJOBS = spec["caps"], spec.get("per_minute", {}), spec["jobs"]
TOTAL = sum(CAP.values())
def ok(cond, name, detail=""):
    print(("ok - " if cond else "not ok - ") + tag + name)
    if not cond and detail != "":
        print("#   " + str(detail)[:400])
sp = os.path.join(T, "spool")
ls = lambda d: sorted(f for f in os.listdir(os.path.join(sp, d)) if not f.startswith("."))
ids = [l.strip() for l in open(os.path.join(T, "ids")) if l.strip()]
db = sqlite3.connect(os.path.join(sp, "state.db"))

ok(len(set(ids)) == NJOBS, "%d distinct job ids enqueued" % NJOBS, len(set(ids)))
ok(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "PRAGMA integrity_check = ok")
box = os.path.join(T, "outbox")
files = sorted(os.listdir(box)) if os.path.isdir(box) else []
per = {}
for f in files:
    m = re.fullmatch(r"([0-9a-f]{16})(?:\.(\d+))?\.eml", f)
    key = m.group(1) if m else f
    per[key] = per.get(key, 0) + 1
twice = {k: v for k, v in per.items() if v > 1}
ok(not twice and all(re.fullmatch(r"[0-9a-f]{16}\.eml", f) for f in files),
   "no job sent twice: at most one <id>.eml per job, no <id>.2.eml", list(twice.items())[:5])
state = dict(db.execute("SELECT id, state FROM jobs"))
sent = {i for i in ids if state.get(i) == "sent"}
ok(len(sent) == len(files) == TOTAL and set(per) == sent,
   "ledger 'sent' rows == messages in the outbox == %d (the total cap)" % TOTAL,
   "sent %d, files %d, in outbox not sent %s" % (len(sent), len(files), sorted(set(per) - sent)[:3]))
by = dict(db.execute("SELECT sender, count(*) FROM jobs WHERE state = 'sent' GROUP BY sender"))
sl = dict(db.execute("SELECT sender, count(*) FROM slots WHERE state != 'void' GROUP BY sender"))
ok(by == CAP and sl == CAP, "each sender sent exactly its cap today (%s), never more" %
   "/".join(str(CAP[k]) for k in sorted(CAP)),
   "jobs %s, slots %s" % (by, sl))
dupslot = db.execute("SELECT job_id, count(*) FROM slots WHERE state != 'void' GROUP BY job_id "
                     "HAVING count(*) > 1").fetchall()
ok(not dupslot, "no job holds two send slots", dupslot[:5])
waiting = [i for i in ids if state.get(i) == "waiting"]
defer = {f[:-5] for f in ls("defer") if f.endswith(".json")}
ok(len(waiting) == NJOBS - TOTAL and set(waiting) == defer,
   "the %d over the caps wait in defer/ (state waiting)" % (NJOBS - TOTAL),
   "waiting %d, in defer/ %d" % (len(waiting), len(defer)))
left = ls("cur") + ls("new")
ok(not left, "nothing left in cur/ or new/", left[:5])
where = {}
for d in ("defer", "done", "failed", "bad", "held"):
    for f in ls(d):
        if f.endswith(".json"):
            where.setdefault(f[:-5], []).append(d)
FOLD = {"waiting": "defer", "sent": "done"}
bad = {i: (where.get(i), state.get(i)) for i in ids if where.get(i) != [FOLD.get(state.get(i), "?")]}
ok(not bad and set(where) == set(ids), "every job in exactly one folder, the one its ledger state names",
   list(bad.items())[:5])
runs = db.execute("SELECT state, sent FROM runs ORDER BY started_at").fetchall()
racers = runs[-4:]
ok(len(racers) == 4 and all(r[0] == "done" for r in racers), "the four runs ended 'done' in the ledger", runs)
ok(sum(1 for r in racers if r[1] > 0) >= 2, "the runs really overlapped: more than one of them sent",
   [r[1] for r in racers])
for name, pm in sorted(PM.items()):
    ts = sorted(r[0] for r in db.execute("SELECT at FROM slots WHERE sender = ? AND state != 'void'", (name,)))
    worst = max((bisect.bisect_left(ts, t + 60 - 1e-6) - j for j, t in enumerate(ts)), default=0)
    ok(worst <= pm, "%s: interleaved runs never put more than per_minute=%d of its slots in a 60 s window"
       % (name, pm), "max %d" % worst)
print("# four runs sent %s" % [r[1] for r in racers])
print("# analysis complete")
EOF

BIG='
  { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 300; },
  { name = "s2"; from = "Two <two@s2.example>"; provider = "dry"; daily_limit = 300; },
  { name = "s3"; from = "Three <three@s3.example>"; provider = "dry"; daily_limit = 200; }'
BIGSPEC='{"caps": {"s1": 300, "s2": 300, "s3": 200}, "jobs": 1000}'
PACED='
  { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 30; per_minute = 6; },
  { name = "s2"; from = "Two <two@s2.example>"; provider = "dry"; daily_limit = 30; per_minute = 4; },
  { name = "s3"; from = "Three <three@s3.example>"; provider = "dry"; daily_limit = 20; per_minute = 3; }'
PACEDSPEC='{"caps": {"s1": 30, "s2": 30, "s3": 20}, "per_minute": {"s1": 6, "s2": 4, "s3": 3}, "jobs": 100}'

round() {   # round NAME SEED warm|cold NJOBS SENDERS SPEC
  T=$BASE/$1; mkdir -p "$T"
  setup "
providers = ( { name = \"dry\"; type = \"file\"; dir = \"outbox\"; } );
senders = ( $5
);"
  if [ "$3" = cold ]; then extra=''; else extra=',"not_before":"2026-11-27T21:01:00Z"'; fi
  python3 -c '
import json, sys
for i in range(int(sys.argv[2])):
    j = {"client": ("alpha", "beta", "gamma")[i % 3], "to": "user%d@rcpt%d.example" % (i, i % 7),
         "subject": "Hello {{n}}", "text": "Message {{n}}", "vars": {"n": i}}
    s = json.dumps(j)
    print(s[:-1] + sys.argv[1] + "}")' "$extra" "$4" >"$T/jobs.jsonl"
  OUTREACH_NOW=$NOW or enqueue "$T/jobs.jsonl" >"$T/ids" || notok "[$1] enqueue"
  # warm: a run before the jobs' not_before ingests them and sends nothing, so the
  # four racers all find the whole backlog due; cold: they race on new/ as well
  [ "$3" = cold ] || OUTREACH_NOW=$NOW or run || notok "[$1] ingest run"
  start=$((NOW + 60))
  for r in 1 2 3 4; do
    ( OUTREACH_NOW=$start OUTREACH_SEED=$(($2 + r)) "$OR" -c "$T/conf" run --deadline 3600 \
        >"$T/run$r.log" 2>&1; echo $? >"$T/rc$r" ) &
  done
  wait
  rcs=$(cat "$T/rc1" "$T/rc2" "$T/rc3" "$T/rc4" | tr '\n' ' ')
  eq "[$1] all four runs exit 0" "$rcs" "0 0 0 0 "
  for r in 1 2 3 4; do [ -s "$T/run$r.log" ] && sed "s/^/# run$r: /" "$T/run$r.log" | head -3; done
  pycheck "$BASE/check.py" "$T" "$1" "$6"
  T=$BASE
}

round race1 100 warm 1000 "$BIG" "$BIGSPEC"
round race2 200 warm 1000 "$BIG" "$BIGSPEC"
round cold 300 cold 1000 "$BIG" "$BIGSPEC"
# per_minute across overlapping runs: each run waits for its own reserved slots,
# the reservations interleave (doc/design.md §10)
round paced 400 warm 100 "$PACED" "$PACEDSPEC"
finish
