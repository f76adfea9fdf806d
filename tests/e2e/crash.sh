#!/bin/sh
# san: yes
# tests/e2e/crash.sh — kill a run at every named fault point and at a sample of
# durable steps (OUTREACH_FAULT, doc/design.md §9), then let normal runs recover,
# and audit spool + ledger + outbox the way an operator would (§4, §5):
#   integrity_check ok; the per-state counts equal the rows; every job in exactly
#   one of defer/done/failed/bad/held and
#   nothing left in cur/ or new/; the folder agrees with the ledger state; no job
#   has two messages unless it was in flight and in_doubt = "resend"; a job in
#   flight at the crash is held (hold) or resent (resend), nothing else is held;
#   caps are never exceeded; the previous status.json stays valid JSON.
# 20 jobs, two senders capped at 8 a day each: 16 go the first day, the rest
# wait in defer/ and go the next day.  Under SAN=1 a short sample runs.
. "$(dirname "$0")/../lib.sh"
# a private copy of the binary under test, so a rebuild in the work tree while this
# runs cannot swap it (or leave it half-written) mid-test
private_binary

BASE=$T
NOW=1795813200   # 2026-11-27 21:00 UTC

cat >"$BASE/check.py" <<'EOF'
import sqlite3, sys, os, re, json, datetime
from spoolcheck import FOLDERS, where as folders_of, outbox, counts_off
T, phase, mode, fault = sys.argv[1:5]
rc = int(sys.argv[5]) if len(sys.argv) > 5 else None
tag = "[%s %s] " % (fault, mode)
group = None   # while set, passing checks are folded into one line
def ok(cond, name, detail=""):
    if cond and group is not None:
        group.append(name)
        return
    print(("ok - " if cond else "not ok - ") + tag + name)
    if not cond and detail != "":
        print("#   " + str(detail)[:400])
sp = os.path.join(T, "spool")
ls = lambda d: sorted(f for f in os.listdir(os.path.join(sp, d)) if not f.startswith("."))
ids = [l.strip() for l in open(os.path.join(T, "ids")) if l.strip()]
emls = lambda: outbox(os.path.join(T, "outbox"))
db = sqlite3.connect(os.path.join(sp, "state.db"))
state = dict(db.execute("SELECT id, state FROM jobs"))
point = fault.split(":")[0]
N = int(fault.split(":")[1])

if phase == "crash":
    killed = rc == 137
    if point == "step":
        ok(killed or (rc == 0 and N > 40), "the run died by SIGKILL at step %d (exit 137)" % N, "exit %s" % rc)
    else:
        ok(killed, "the run died by SIGKILL at %s (exit 137)" % fault, "exit %s" % rc)
    try:
        js = json.load(open(os.path.join(T, "reports", "status.json")))
        good = isinstance(js, dict) and "spool" in js and "run" in js
    except Exception as e:
        good, js = False, e
    ok(good, "reports/status.json is still whole, valid JSON after the crash", js if not good else "")
    cur = [f.split(".")[0] for f in ls("cur")]
    doubt = sorted(i for i in ids if state.get(i) == "sending")
    e = emls()
    info = {"cur": cur, "doubt": doubt, "eml": e, "killed": killed,
            "victim": None}
    if point == "after-claim":
        v = [i for i in cur if state.get(i) == "claimed"]
        ok(len(v) >= 1 and not doubt and all(e.get(i, 0) == 0 for i in v),
           "after-claim: the claimed job is in cur/, nothing in flight", (cur, doubt))
        info["victim"] = v[0] if v else None
    elif point in ("after-intent", "after-send"):
        ok(len(doubt) == 1 and doubt[0] in cur, "%s: exactly the one job in flight is 'sending' in cur/" % point,
           (cur, doubt))
        if doubt:
            info["victim"] = doubt[0]
            want = 1 if point == "after-send" else 0
            ok(e.get(doubt[0], 0) == want, "%s: the provider %s the message" %
               (point, "has" if want else "has not got"), e.get(doubt[0], 0))
    elif point == "after-record":
        v = [i for i in cur if state.get(i) == "sent"]
        ok(len(v) == 1 and e.get(v[0], 0) == 1, "after-record: the sent job's file is still in cur/", (cur, v))
        info["victim"] = v[0] if v else None
    print("# [%s %s] at the crash: %d file(s) in cur/, %d job(s) in flight, %d message(s)" %
          (fault, mode, len(cur), len(doubt), sum(e.values())))
    json.dump(info, open(os.path.join(T, "crash.json"), "w"))
    print("# analysis complete")
    sys.exit(0)

info = json.load(open(os.path.join(T, "crash.json")))
doubt = set(info["doubt"])
resend = mode == "resend"
group = []
ok(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", phase + ": PRAGMA integrity_check = ok")
ok(not counts_off(db), phase + ": the per-state counts equal the ledger's rows", counts_off(db))
left = ls("cur") + ls("new")
ok(not left, phase + ": nothing left in cur/ or new/", left)
where = folders_of(sp)
multi = {i: where.get(i) for i in ids if len(where.get(i, [])) != 1}
ok(not multi, phase + ": every job is in exactly one of defer/done/failed/bad/held", multi)
stray = sorted(set(where) - set(ids))
ok(not stray, phase + ": no job files but the 20 enqueued", stray)
mism = {i: (where[i][0], state.get(i)) for i in ids if len(where.get(i, [])) == 1
        and state.get(i) not in FOLDERS[where[i][0]]}
ok(not mism, phase + ": each job's folder agrees with its ledger state", mism)
e = emls()
over = {i: e[i] for i in e if e[i] > (2 if resend and i in doubt else 1)}
ok(not over, phase + ": no job has two messages unless it was in flight and in_doubt = resend", over)
unsent = {i: (state.get(i), e[i]) for i in e
          if state.get(i) not in ("sent", "held") and not (resend and i in doubt)}
ok(not unsent and all(e.get(i, 0) >= 1 for i in ids if state.get(i) == "sent"),
   phase + ": a message exists for every sent job and for no job that was not sent", unsent)
held = {i for i in ids if state.get(i) == "held"}
ok(held == (set() if resend else doubt), phase + ": held/ holds exactly the jobs that were in flight (%s)" %
   ("none: resend" if resend else len(doubt)), (sorted(held), sorted(doubt)))
over = db.execute("SELECT sender, day, count(*) FROM slots WHERE state != 'void' GROUP BY 1, 2 "
                  "HAVING count(*) > 8").fetchall()
sday = {}
for sender, at in db.execute("SELECT sender, slot_at FROM jobs WHERE state = 'sent'"):
    k = (sender, int(at // 86400))
    sday[k] = sday.get(k, 0) + 1
ok(not over and all(v <= 8 for v in sday.values()), phase + ": no sender above its cap of 8 a day", (over, sday))
ok(len(ids) == 20, phase + ": 20 job ids enqueued", len(ids))
print("ok - %s%s: spool, ledger and outbox agree (%d checks: integrity, cur/new empty, one folder per job, "
      "folder == state, messages per job, held == in flight, caps)" % (tag, phase, len(group)))
group = None
if phase == "mid":
    # the first day: 16 slots, of which the in-doubt ones count (the provider may have it)
    nd = sum(1 for i in ids if state.get(i) == "waiting")
    ok(nd >= 4, phase + ": the jobs over the day's caps wait in defer/", nd)
if phase == "final":
    fin = {i: state.get(i) for i in ids if state.get(i) not in ("sent", "held")}
    ok(not fin, "final: every job is sent, or held when it was in flight", fin)
    v = info["victim"]
    if point == "after-claim":
        ok(v and state.get(v) == "sent" and e.get(v) == 1, "after-claim: the claimed job went back and was sent once",
           (v, state.get(v), e.get(v)))
        ns = db.execute("SELECT count(*) FROM slots WHERE job_id = ? AND state != 'void'", (v,)).fetchone()[0]
        ok(ns == 1, "after-claim: the dead claim's slot was given back (one slot left for the job)", ns)
    elif point == "after-intent":
        if resend:
            ok(v and state.get(v) == "sent" and e.get(v) == 1,
               "after-intent + resend: the job is resent; one message (the provider never got the first)",
               (v, state.get(v), e.get(v)))
        else:
            ok(v and state.get(v) == "held" and e.get(v, 0) == 0 and where.get(v) == ["held"],
               "after-intent + hold: the job is in held/ (nothing was sent)", (v, state.get(v), e.get(v)))
    elif point == "after-send":
        if resend:
            ok(v and state.get(v) == "sent" and e.get(v) == 2,
               "after-send + resend: resent, so two messages (<id>.eml and <id>.2.eml)", (v, state.get(v), e.get(v)))
        else:
            ok(v and state.get(v) == "held" and e.get(v) == 1 and where.get(v) == ["held"],
               "after-send + hold: the job is in held/ and its one message exists", (v, state.get(v), e.get(v)))
    elif point == "after-record":
        ok(v and state.get(v) == "sent" and e.get(v) == 1 and where.get(v) == ["done"],
           "after-record: the job ends in done/ with exactly one message", (v, state.get(v), e.get(v)))
    else:
        ok(all(e.get(i, 0) == 1 for i in ids if i not in doubt),
           "step: every job that was not in flight has exactly one message",
           {i: e.get(i, 0) for i in ids if i not in doubt and e.get(i, 0) != 1})
print("# analysis complete")
EOF

scen=0
normal_run() {   # normal_run NAME NOW: a run after the crash; it must succeed
  OUTREACH_NOW=$2 OUTREACH_SEED=$scen "$OR" -c "$T/conf" run >"$T/after.log" 2>&1
  _rc=$?
  [ $_rc -eq 0 ] || notok "$1" "exit $_rc: $(grep -v 'event=alert' "$T/after.log" | tail -3)"
}
scenario() {   # scenario MODE FAULT
  scen=$((scen + 1))
  T=$BASE/s$scen; mkdir -p "$T"
  setup "in_doubt = \"$1\";
providers = ( { name = \"dry\"; type = \"file\"; dir = \"outbox\"; } );
senders = (
  { name = \"s1\"; from = \"One <one@s1.example>\"; provider = \"dry\"; daily_limit = 8; },
  { name = \"s2\"; from = \"Two <two@s2.example>\"; provider = \"dry\"; daily_limit = 8; }
);"
  OUTREACH_NOW=$NOW or run || notok "[$2 $1] first (empty) run"
  i=1; while [ $i -le 20 ]; do job "u$i@rcpt.example" acme; i=$((i + 1)); done | or enqueue - >"$T/ids"
  # (the outer subshell swallows the shell's own "Killed" report)
  ( OUTREACH_NOW=$((NOW + 60)) OUTREACH_SEED=$scen OUTREACH_FAULT=$2 "$OR" -c "$T/conf" run \
      >"$T/crash.log" 2>&1; echo $? >"$T/rc" ) 2>/dev/null
  rc=$(cat "$T/rc")
  [ $rc -ne 137 ] && echo "# [$2 $1] the run finished (exit $rc) before reaching the fault"
  pycheck "$BASE/check.py" "$T" crash "$1" "$2" $rc
  normal_run "[$2 $1] recovery run exits 0" $((NOW + 120))
  normal_run "[$2 $1] second run exits 0" $((NOW + 180))
  pycheck "$BASE/check.py" "$T" mid "$1" "$2"
  normal_run "[$2 $1] next day's run exits 0" $((NOW + 86400))
  pycheck "$BASE/check.py" "$T" final "$1" "$2"
  T=$BASE
  rm -rf "$BASE/s$scen"
}

if [ "${SAN:-}" = 1 ]; then
  for f in after-claim:3 after-intent:3 after-send:3 after-record:3; do scenario hold $f; done
  scenario resend after-send:2
  scenario resend after-intent:2
  for sn in 5 23 40; do scenario hold step:$sn; done
else
  for mode in hold resend; do
    for p in after-claim after-intent after-send after-record; do
      for sn in 1 3; do scenario $mode $p:$sn; done
    done
  done
  sn=1
  while [ $sn -le 40 ]; do scenario hold step:$sn; scenario resend step:$sn; sn=$((sn + 3)); done
  for sn in 50 65 80 95 110 125 140; do scenario hold step:$sn; scenario resend step:$sn; done
fi
T=$BASE
finish
