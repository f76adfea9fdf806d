#!/bin/sh
# tests/crashwalk.sh — issue 7, "nothing lost, nothing twice": a realistic run
# killed (OUTREACH_FAULT, doc/design.md §9) at every durable step in turn.
#
# The starting spool is made once: init, one empty run (so a previous
# status.json exists), a paused campaign (globex/paused), a suppressed
# address, 39 jobs enqueued for three clients and five campaigns (one the same
# content as another: a duplicate at send time; one pinned to no configured
# sender and one the exec provider refuses: both fail), plus a second arrival
# of a known (client, id), an invalid file dropped straight into new/ and a
# message dropped into inbound/ (read once, then moved to inbound/cur, whatever the crash).  Three
# senders with tight daily caps (10 + 8 + 10 for 32 sendable jobs) and a
# client cap (globex 9):
#   f1  file provider (outbox/<id>.eml, a resend would be <id>.2.eml)
#   x1  exec provider (exec.sh): exit 75 on the first try for recipients
#       slow*, so retries happen; exit 1 for reject*; logs every accepted
#       job id in exec.log
#   g1  SendGrid account against tests/peers/faulty.py in `ok` mode,
#       concurrency 4, feed = true (the peer answers the feed's GETs with [])
# For each crash point the spool is copied (cp -a) from the start, the run is
# killed there, two normal runs follow, and the invariants are checked:
#   the run died by SIGKILL; the previous status.json still parses as JSON;
#   the recovery runs exit 0; PRAGMA integrity_check = ok; the per-state counts
#   equal the rows; nothing left in cur/, new/ or new.old/ (every run here
#   compacts new/: OUTREACH_NEW_COMPACT=0); every job in exactly one folder, and the folder agrees with
#   the ledger (defer=waiting, done=sent|suppressed|duplicate, failed, bad,
#   held); every job in failed/ or bad/ has its reason (.err beside it, and
#   last_error in the ledger); nothing lost (every arrival has its row and its file); no job
#   reached a provider twice (outbox, exec.log, the peer's request log); every
#   sent job reached its provider and no unsent job did, except those in
#   flight at the crash; held/ holds exactly the jobs in flight at the crash;
#   no sender or client above its daily cap; the paused campaign sent nothing; and, once
#   past tmp/'s age, a run leaves no temporary file anywhere (spool, report_dir, outbox).
#
#   CRASHWALK=full   every step N = 1, 2, ... until a run completes (exit 0),
#                    plus the four named points at N = 1 and 2 (make crashwalk)
#   otherwise (CI)   the four named points at N = 1 and 2 plus a sample of 12
#                    steps drawn with CRASHWALK_SEED (default 1) from the run's
#                    whole range (found first by bisection)
# Prints "# crash steps walked: K" and one ok / not ok line per invariant per
# crash.  KEEP_FAILED=1 keeps the spool of the first failing crash in
# /tmp/crashwalk-failed (the test's mktemp folder is removed).
: "${OUTREACH_BIN:=$(cd "$(dirname "$0")/.." && pwd)/outreach}"
export OUTREACH_BIN
. "$(dirname "$0")/lib.sh"
TESTS=$(cd "$(dirname "$0")" && pwd)
private_binary
BASE=$T
PEERPID=
trap '[ -n "$PEERPID" ] && kill "$PEERPID" 2>/dev/null; rm -rf "$BASE"' EXIT
trap 'exit 130' INT TERM

NOW=1795813200          # 2026-11-27 21:00 UTC
# every run that leaves new/ or inbound/new/ empty exchanges it for a fresh folder
# (doc/design.md §4), so the walk goes through each step of that too: new.old made,
# exchanged, drained, removed
export OUTREACH_NEW_COMPACT=0
MODE=${CRASHWALK:-ci}
SEED=${CRASHWALK_SEED:-1}
start=$(date +%s)

# ---- the peer: one for the whole walk; each crash reads its log from an offset
PEERLOG=$BASE/peer.log
faulty_peer "$PEERLOG" ok || { notok "faulty.py peer started" "$(cat "$PEERLOG.err")"; finish; }

# ---- the starting spool
S0=$BASE/start
mkdir -p "$S0"
printf 'SG.crashwalk-not-a-real-key\n' >"$S0/sg.key"
chmod 600 "$S0/sg.key"
cat >"$S0/exec.sh" <<'EOS'
#!/bin/sh
# exec provider for the crash walk: the message on stdin; exit 75 on the first
# try for recipients slow*, exit 1 for reject*; every accepted job id is
# appended to exec.log.
d=$(dirname "$0")
msg=$(cat)
id=$(printf '%s\n' "$msg" | sed -n 's/^X-Outreach-Job: *\([0-9a-f]*\).*/\1/p' | head -n 1)
to=$(printf '%s\n' "$msg" | tr -d '\r' | sed -n 's/^To: .*<\(.*\)>.*/\1/p; s/^To: \([^<]*@[^ ]*\)$/\1/p' | head -n 1)
case "$to" in
slow*)
  if [ ! -e "$d/exec.tried.$id" ]; then
    : >"$d/exec.tried.$id"
    echo "mailbox busy, try later" >&2
    exit 75
  fi;;
reject*)
  echo "550 no such user" >&2
  exit 1;;
esac
printf '%s\n' "$id" >>"$d/exec.log"
echo "x-$id"
EOS
chmod 755 "$S0/exec.sh"
cat >"$S0/conf.in" <<EOC
spool = "spool";
report_dir = "reports";
timezone = "UTC";
retry = { first = 60; max = 600; max_attempts = 4; max_age = 259200; };
providers = (
  { name = "dry"; type = "file"; dir = "outbox"; },
  { name = "ex"; type = "exec"; argv = ["@DIR@/exec.sh"]; timeout = 20; },
  { name = "sg"; type = "sendgrid"; endpoint = "http://127.0.0.1:$PORT"; allow_plaintext = true;
    api_key_file = "sg.key"; concurrency = 4; timeout = 10; feed = true; }
);
senders = (
  { name = "f1"; from = "File <f1@file.example>"; provider = "dry"; daily_limit = 10; },
  { name = "x1"; from = "Exec <x1@exec.example>"; provider = "ex"; daily_limit = 8; },
  { name = "g1"; from = "Grid <g1@grid.example>"; provider = "sg"; daily_limit = 10; }
);
clients = ( { name = "acme"; daily_limit = 30; }, { name = "globex"; daily_limit = 9; } );
EOC
mkconf() { sed "s|@DIR@|$1|g" "$1/conf.in" >"$1/conf"; }
mkconf "$S0"
cw() { "$OR" -c "$S0/conf" "$@"; }
cw init >/dev/null || { notok "init of the starting spool"; finish; }
OUTREACH_NOW=$NOW cw run || notok "the first (empty) run of the starting spool"
cw pause --client globex --campaign paused || notok "pause globex/paused"
cw suppress add gone@rcpt.example >/dev/null || notok "suppress add"
{
  for i in $(seq 1 14); do
    printf '{"client":"acme","campaign":"q4","id":"a%d","to":"u%d@rcpt.example","subject":"Hi {{n}}","text":"Hello %d","vars":{"n":"%d"}}\n' $i $i $i $i
  done
  for i in 1 2 3 4; do printf '{"client":"acme","campaign":"q1","to":"slow%d@rcpt.example","subject":"Q1","text":"t%d"}\n' $i $i; done
  for i in $(seq 1 10); do printf '{"client":"globex","campaign":"spring","to":"g%d@other.example","subject":"Spring","html":"<p>%d</p>"}\n' $i $i; done
  for i in 1 2 3; do printf '{"client":"globex","campaign":"paused","to":"p%d@other.example","subject":"Later","text":"p%d"}\n' $i $i; done
  for i in 1 2 3 4; do printf '{"client":"initech","to":"slow-i%d@third.example","subject":"I","text":"i%d","sender":"x1"}\n' $i $i; done
  printf '{"client":"initech","to":"gone@rcpt.example","subject":"I","text":"gone"}\n'
  printf '{"client":"initech","to":"nobody@third.example","subject":"I","text":"pinned","sender":"nobody"}\n'
  printf '{"client":"acme","campaign":"q1","to":"reject1@rcpt.example","subject":"Q1","text":"r","sender":"x1"}\n'
  # same client, recipient and content as a1 under another producer id: a duplicate at send time
  printf '{"client":"acme","campaign":"q4","to":"u1@rcpt.example","subject":"Hi {{n}}","text":"Hello 1","vars":{"n":"1"}}\n'
} | cw enqueue - >"$S0/ids" || notok "enqueue into the starting spool"
# a second arrival of (acme, a1), and an invalid job, dropped the producer's way
printf '{"client":"acme","campaign":"q4","id":"a1","to":"u1@rcpt.example","subject":"Hi {{n}}","text":"Hello 1","vars":{"n":"1"}}\n' \
  >"$S0/spool/tmp/dup" && mv "$S0/spool/tmp/dup" "$S0/spool/new/dup-a1"
printf '{"client":"acme","to":"broken@rcpt.example"}\n' >"$S0/spool/tmp/bad" && mv "$S0/spool/tmp/bad" "$S0/spool/new/broken-1"
# a message dropped into inbound/ for REPLIES to read (a stranger's: it answers no send)
printf 'Message-ID: <cw-inbound@mail.example>\r\nFrom: <someone@mail.example>\r\nSubject: hello\r\n\r\nhi\r\n' \
  >"$S0/spool/inbound/tmp/m1" && mv "$S0/spool/inbound/tmp/m1" "$S0/spool/inbound/new/cw-inbound-1"
nids=$(wc -l <"$S0/ids")
[ "$nids" -eq 39 ] || notok "39 job ids enqueued" "got $nids"

cat >"$BASE/check.py" <<'EOF'
import sqlite3, sys, os, re, json
from spoolcheck import FOLDERS, where as folders_of, outbox, counts_off
W, phase, tag = sys.argv[1:4]
rc = int(sys.argv[4]) if len(sys.argv) > 4 else None
def ok(cond, name, detail=""):
    print(("ok - " if cond else "not ok - ") + "[%s] %s" % (tag, name))
    if not cond and detail != "":
        print("#   " + str(detail)[:600])
sp = os.path.join(W, "spool")
ls = lambda d: sorted(f for f in os.listdir(os.path.join(sp, d)) if not f.startswith("."))
ids = [l.strip() for l in open(os.path.join(W, "ids")) if l.strip()]
db = sqlite3.connect(os.path.join(sp, "state.db"), timeout=30)
state = dict(db.execute("SELECT id, state FROM jobs"))

def deliveries():
    """job id -> number of times a provider got it (file, exec, SendGrid peer)"""
    n = outbox(os.path.join(W, "outbox"))
    el = os.path.join(W, "exec.log")
    for l in open(el) if os.path.exists(el) else []:
        if l.strip():
            n[l.strip()] = n.get(l.strip(), 0) + 1
    off = int(open(os.path.join(W, "peer.offset")).read())
    with open(os.path.join(W, "..", "peer.log"), "rb") as f:
        f.seek(off)
        for l in f.read().decode("utf-8", "replace").splitlines():
            try:
                e = json.loads(l)
            except ValueError:
                continue
            if e.get("event") == "request" and e.get("job"):
                n[e["job"]] = n.get(e["job"], 0) + 1
    return n

if phase == "crash":
    want = 137
    ok(rc == 137 or (rc == 0 and tag.startswith("step:")), "the run died by SIGKILL (exit 137)", "exit %s" % rc)
    try:
        js = json.load(open(os.path.join(W, "reports", "status.json")))
        good = isinstance(js, dict) and "run" in js and "spool" in js
    except Exception as e:
        good, js = False, repr(e)
    ok(good, "the previous status.json still parses as JSON", js)
    doubt = sorted(i for i, s in state.items() if s == "sending")
    json.dump({"doubt": doubt, "rc": rc}, open(os.path.join(W, "crash.json"), "w"))
    print("# [%s] at the crash: %d file(s) in cur/, %d transfer(s) in flight, %d delivered" %
          (tag, len(ls("cur")), len(doubt), sum(deliveries().values())))
    print("# analysis complete")
    sys.exit(0)

info = json.load(open(os.path.join(W, "crash.json")))
doubt = set(info["doubt"])
ok(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "PRAGMA integrity_check = ok")
off = counts_off(db)
ok(not off, "the per-state counts equal the ledger's rows", off)
retired = [r + "/" + f for r in ("new.old", "inbound/new.old") if os.path.isdir(os.path.join(sp, r))
           for f in os.listdir(os.path.join(sp, r))]
left = ls("cur") + ls("new") + retired
ok(not left, "nothing left in cur/, new/ or new.old/ (nor inbound/new.old/)", left)
where = folders_of(sp)
multi = {i: where.get(i) for i in state if len(where.get(i, [])) != 1}
mism = {i: (where[i][0], state[i]) for i in state if len(where.get(i, [])) == 1 and state[i] not in FOLDERS[where[i][0]]}
ok(not multi and not mism, "every job in exactly one folder, agreeing with its ledger state",
   {"not in one folder": multi, "folder != state": mism})
noerr = {}
for i, s in state.items():
    if s in ("failed", "bad") and where.get(i) == [{"failed": "failed", "bad": "bad"}[s]]:
        e = os.path.join(sp, where[i][0], i + ".err")
        why = db.execute("SELECT coalesce(last_error, '') FROM jobs WHERE id = ?", (i,)).fetchone()[0]
        if not os.path.exists(e) or not open(e).read().strip() or not why:
            noerr[i] = (s, "no .err" if not os.path.exists(e) else ".err empty" if not open(e).read().strip() else "",
                        "" if why else "no last_error")
ok(not noerr, "every job in failed/ or bad/ has its reason (.err beside it, last_error in the ledger)", noerr)
stray = sorted(set(where) - set(state))
missing = sorted(set(ids) - set(state))
ok(not stray and not missing and len(state) == len(ids) + 2,
   "nothing lost: %d arrivals, each with one ledger row and one file" % (len(ids) + 2),
   {"files without a row": stray, "enqueued without a row": missing, "rows": len(state)})
e = deliveries()
twice = {i: n for i, n in e.items() if n > 1}
ok(not twice, "no job reached a provider twice", {i: (n, state.get(i), i in doubt) for i, n in twice.items()})
unsent = {i: (state.get(i), n) for i, n in e.items() if state.get(i) not in ("sent", "held") and i not in doubt}
nomsg = sorted(i for i, s in state.items() if s == "sent" and e.get(i, 0) < 1)
ok(not unsent and not nomsg, "every sent job reached its provider; no other did (but those in flight)",
   {"delivered but not sent": unsent, "sent, never delivered": nomsg})
held = {i for i, s in state.items() if s == "held"}
ok(held == doubt, "held/ holds exactly the %d job(s) in flight at the crash" % len(doubt),
   (sorted(held), sorted(doubt)))
CAP = {"f1": 10, "x1": 8, "g1": 10}
CCAP = {"acme": 30, "globex": 9}
over = [r for r in db.execute("SELECT sender, day, count(*) FROM slots WHERE state != 'void' GROUP BY 1, 2")
        if r[2] > CAP.get(r[0], 0)]
cover = [r for r in db.execute("SELECT client, day, count(*) FROM slots WHERE state != 'void' GROUP BY 1, 2")
         if r[0] in CCAP and r[2] > CCAP[r[0]]]
sday = {}
for sender, at in db.execute("SELECT sender, slot_at FROM jobs WHERE state IN ('sent', 'held')"):
    k = (sender, int(at // 86400))
    sday[k] = sday.get(k, 0) + 1
sover = {k: v for k, v in sday.items() if v > CAP.get(k[0], 0)}
ok(not over and not cover and not sover, "caps: no sender (10/8/10) or client (globex 9) over its day",
   {"sender slots": over, "client slots": cover, "sent": sover})
nrep = db.execute("SELECT count(*) FROM replies WHERE message_id = '<cw-inbound@mail.example>'").fetchone()[0]
inb = (os.listdir(os.path.join(sp, "inbound", "new")), os.listdir(os.path.join(sp, "inbound", "cur")))
ok(nrep == 1 and inb == ([], ["cw-inbound-1"]), "the inbound/ message was read once and moved to inbound/cur",
   {"replies rows": nrep, "new, cur": inb})
ps = db.execute("SELECT count(*) FROM jobs WHERE client = 'globex' AND campaign = 'paused' AND "
                "state NOT IN ('waiting')").fetchone()[0]
ok(ps == 0, "the paused campaign sent nothing (its 3 jobs wait)", ps)
c = {}
for s in state.values():
    c[s] = c.get(s, 0) + 1
print("# [%s] after recovery: %s" % (tag, " ".join("%s=%d" % kv for kv in sorted(c.items()))))
print("# analysis complete")
EOF

pycheck() {
  out=$(python3 "$BASE/check.py" "$@" 2>&1)
  printf '%s\n' "$out" | grep -E '^(ok|not ok) - |^#' | grep -v '^# analysis complete$'
  _n=$(printf '%s\n' "$out" | grep -c '^not ok - ')
  nfail=$((nfail + _n))
  printf '%s\n' "$out" | grep -q '^# analysis complete$' ||
    notok "[$3] analysis finished" "$(printf '%s\n' "$out" | tail -5)"
}

# crash_run W FAULT: a fresh copy of the starting spool in W, the run killed at FAULT; sets rc
crash_run() {
  rm -rf "$1"
  cp -a "$S0" "$1"
  mkconf "$1"
  wc -c <"$PEERLOG" | tr -d ' ' >"$1/peer.offset"
  ( OUTREACH_NOW=$((NOW + 60)) OUTREACH_SEED=$SEED OUTREACH_FAULT=$2 "$OR" -c "$1/conf" run \
      >"$1/crash.log" 2>&1; echo $? >"$1/rc" ) 2>/dev/null
  rc=$(cat "$1/rc")
}

walked=0
crash_case() {   # crash_case FAULT; leaves rc
  W=$BASE/w
  crash_run "$W" "$1"
  pycheck "$W" crash "$1" "$rc"
  i=0
  for at in $((NOW + 120)) $((NOW + 300)); do
    i=$((i + 1))
    OUTREACH_NOW=$at OUTREACH_SEED=$SEED "$OR" -c "$W/conf" run >"$W/after$i.log" 2>&1
    _rc=$?
    if [ $_rc -eq 0 ]; then ok "[$1] normal run $i after the crash exits 0"
    else notok "[$1] normal run $i after the crash exits 0" "exit $_rc: $(grep -v 'event=' "$W/after$i.log" | tail -3)"; fi
  done
  pycheck "$W" after "$1"
  # the temporary files the crash left (between a file's fsync and its rename) are gone once
  # they are past tmp/'s age: aged, then a run two hours on (the hourly clean is due again)
  left=$(cd "$TESTS" && python3 -c 'import sys; from spoolcheck import strays; print(len(strays(sys.argv[1])))' "$W")
  find "$W" -name '.tmp-*' -exec touch -d "@$((NOW + 7200 - 37 * 3600))" {} +
  find "$W/spool/tmp" -type f -exec touch -d "@$((NOW + 7200 - 37 * 3600))" {} +
  OUTREACH_NOW=$((NOW + 7200)) OUTREACH_SEED=$SEED "$OR" -c "$W/conf" run >"$W/after3.log" 2>&1 ||
    notok "[$1] the run two hours on exits 0" "$(grep -v 'event=' "$W/after3.log" | tail -3)"
  stray=$(cd "$TESTS" && python3 -c 'import sys; from spoolcheck import strays; print(" ".join(strays(sys.argv[1])))' "$W")
  eq "[$1] no stray temporary file anywhere after recovery ($left after the crash)" "$stray" ""
  walked=$((walked + 1))
  if [ "${KEEP_FAILED:-}" = 1 ] && [ "$nfail" -gt 0 ] && [ ! -d "$BASE/../crashwalk-failed" ]; then
    cp -a "$W" "$BASE/../crashwalk-failed"; echo "# kept $BASE/../crashwalk-failed"
  fi
  rm -rf "$W"
}

named=0
for p in after-claim after-intent after-send after-record; do
  for n in 1 2; do crash_case "$p:$n"; named=$((named + 1)); done
done

steps=0
if [ "$MODE" = full ]; then
  n=1
  while :; do
    crash_case "step:$n"
    [ "$rc" -ne 137 ] && break
    steps=$((steps + 1))
    n=$((n + 1))
  done
  echo "# step:$n completed without dying (exit $rc): $steps durable steps in the run"
  echo "# crash steps walked: $steps"
else
  # the run's range of steps: the first N at which the run completes, by bisection
  probe() { crash_run "$BASE/probe" "step:$1"; rm -rf "$BASE/probe"; [ "$rc" -eq 137 ]; }
  hi=64
  while probe $hi; do hi=$((hi * 2)); done
  lo=$((hi / 2))
  while [ $((hi - lo)) -gt 1 ]; do
    mid=$(((lo + hi) / 2))
    if probe $mid; then lo=$mid; else hi=$mid; fi
  done
  sample=$(python3 -c 'import random, sys
r = random.Random(int(sys.argv[1])); hi = int(sys.argv[2])
print(" ".join(str(x) for x in sorted(r.sample(range(1, hi + 1), 12))))' "$SEED" "$lo")
  echo "# CRASHWALK_SEED=$SEED: the run has $lo durable steps; sample of 12: $sample"
  for n in $sample; do crash_case "step:$n"; steps=$((steps + 1)); done
  echo "# crash steps walked: $((named + steps)) ($named at the named points, $steps sampled steps)"
fi
echo "# crashwalk ($MODE): $(($(date +%s) - start)) s"
finish
