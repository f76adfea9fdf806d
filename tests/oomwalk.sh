#!/bin/sh
# tests/oomwalk.sh — issue 14 item 1, "out of memory is temporary": a whole run (ingest,
# claim, send, the feed, the reports) with one allocation failing, at every N in turn.
#
# The shim (tests/shims/oom.c, built here) makes the N-th malloc/calloc/realloc of the
# process return NULL.  The starting spool: the file provider (f1) and a SendGrid account
# (g1) against tests/peers/faulty.py in `ok` mode with feed = true, report_dir, and 8 valid
# job files plus one that is not JSON dropped straight into new/, so the run ingests them.
# A clean run is counted first (OOM_COUNT): its allocations are the range of N.  For each
# N the spool is copied from the start, the run made with the N-th allocation failing,
# then two clean runs follow, and:
#   the failed run exits 0 or 75, and 75 only saying "out of memory"; after it, no valid
#   job is in bad/ (ledger or folder); the clean runs exit 0; then PRAGMA integrity_check
#   = ok; nothing in new/ or cur/; all 9 jobs in the ledger and in one folder each; the
#   invalid one in bad/, every valid one sent (or held: in flight when the process
#   stopped) and none reached a provider twice, none that was not sent or held did.
#
#   OOMWALK=full     every N = 1 .. the clean run's count (make oomwalk; ~19,000 runs, hours:
#                    OOMWALK_STEP=K walks every K-th)
#   otherwise (CI)   OOMWALK_SAMPLE (20) values of N, one from each of as many equal
#                    strata of the range, drawn with OOMWALK_SEED (default 1)
# Prints "# oom steps walked: K" and the ok / not ok lines (one line per failing N and
# invariant; one summary line per invariant over the whole walk).
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
MODE=${OOMWALK:-ci}
start=$(date +%s)

SHIM=$BASE/oom.so
${CC:-cc} -shared -fPIC -O1 -o "$SHIM" "$TESTS/shims/oom.c" 2>"$BASE/cc.err" ||
  { notok "the malloc-failure shim builds" "$(head -3 "$BASE/cc.err")"; finish; }

PEERLOG=$BASE/peer.log
faulty_peer "$PEERLOG" ok || { notok "faulty.py peer started" "$(cat "$PEERLOG.err")"; finish; }

S0=$BASE/start
mkdir -p "$S0"
printf 'SG.oomwalk-not-a-real-key\n' >"$S0/sg.key"
chmod 600 "$S0/sg.key"
cat >"$S0/conf" <<EOC
spool = "spool";
report_dir = "reports";
timezone = "UTC";
providers = (
  { name = "dry"; type = "file"; dir = "outbox"; },
  { name = "sg"; type = "sendgrid"; endpoint = "http://127.0.0.1:$PORT"; allow_plaintext = true;
    api_key_file = "sg.key"; concurrency = 2; timeout = 10; feed = true; }
);
senders = (
  { name = "f1"; from = "File <f1@file.example>"; provider = "dry"; daily_limit = 100; },
  { name = "g1"; from = "Grid <g1@grid.example>"; provider = "sg"; daily_limit = 100; }
);
EOC
"$OR" -c "$S0/conf" init >/dev/null || { notok "init of the starting spool"; finish; }
for i in 1 2 3 4 5 6 7 8; do
  printf '{"client":"acme","campaign":"q4","id":"v%d","to":"Name %d <u%d@rcpt.example>","subject":"Hi {{n}}","text":"Hello %d","html":"<p>%d</p>","vars":{"n":"%d"}}\n' \
    $i $i $i $i $i $i >"$S0/spool/tmp/v$i" && mv "$S0/spool/tmp/v$i" "$S0/spool/new/v$i.json"
done
printf '{"client":"acme","to":' >"$S0/spool/tmp/broken" && mv "$S0/spool/tmp/broken" "$S0/spool/new/broken.json"

cat >"$BASE/check.py" <<'EOF'
import json, os, sqlite3, sys
from spoolcheck import FOLDERS, where as folders_of, outbox
W, phase, tag = sys.argv[1:4]
def ok(cond, name, detail=""):
    print(("ok - " if cond else "not ok - ") + "[%s] %s" % (tag, name))
    if not cond and detail != "":
        print("#   " + str(detail)[:400])
sp = os.path.join(W, "spool")
ls = lambda d: sorted(f for f in os.listdir(os.path.join(sp, d)) if not f.startswith("."))
db = sqlite3.connect(os.path.join(sp, "state.db"), timeout=30)
rows = db.execute("SELECT id, producer_id, state FROM jobs").fetchall()
valid = {r[0] for r in rows if r[1] and r[1].startswith("v")}
state = {r[0]: r[2] for r in rows}
where = folders_of(sp)
if phase == "failed":
    rc = int(sys.argv[4])
    err = open(os.path.join(W, "failed.err"), errors="replace").read()
    ok(rc == 0 or (rc == 75 and "out of memory" in err), "the run exits 0 or 75 (saying out of memory)",
       "exit %d: %s" % (rc, err.strip().splitlines()[-1:] if err.strip() else ""))
    judged = sorted(i for i in valid if state[i] == "bad" or "bad" in where.get(i, []))
    ok(not judged, "no valid job judged bad", judged)
    sys.exit(0)
ok(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "integrity_check = ok")
ok(not ls("new") and not ls("cur"), "nothing left in new/ or cur/", ls("new") + ls("cur"))
multi = {i: where.get(i) for i in state if len(where.get(i, [])) != 1}
mism = {i: (where[i][0], state[i]) for i in state if len(where.get(i, [])) == 1 and state[i] not in FOLDERS[where[i][0]]}
ok(len(state) == 9 and len(valid) == 8 and not multi and not mism,
   "all 9 jobs in the ledger, each in one folder agreeing with it",
   {"rows": len(state), "valid": len(valid), "not in one folder": multi, "folder != state": mism})
bad = sorted(i for i, s in state.items() if s == "bad")
ok(bad and all(i not in valid for i in bad) and len(bad) == 1, "only the invalid file is in bad/",
   [(i, db.execute("SELECT last_error FROM jobs WHERE id = ?", (i,)).fetchone()[0]) for i in bad])
n = outbox(os.path.join(W, "outbox"))
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
twice = {i: c for i, c in n.items() if c > 1}
ok(not twice, "no job reached a provider twice", twice)
unsent = sorted(i for i in valid if state[i] not in ("sent", "held"))
stray = sorted(i for i in n if state.get(i) not in ("sent", "held"))
nomsg = sorted(i for i in valid if state[i] == "sent" and n.get(i, 0) != 1)
ok(not unsent and not stray and not nomsg, "every valid job sent once (or held: in flight when it stopped)",
   {"not sent": [(i, state[i]) for i in unsent], "delivered, not sent": stray, "sent, not delivered": nomsg})
print("# analysis complete")
EOF

pycheck() {
  out=$(python3 "$BASE/check.py" "$@" 2>&1)
  printf '%s\n' "$out" | grep -E '^not ok - |^#   ' 
  _n=$(printf '%s\n' "$out" | grep -c '^not ok - ')
  nfail=$((nfail + _n)) cases_failed=$((cases_failed + (_n > 0)))
  [ "$2" = failed ] || printf '%s\n' "$out" | grep -q '^# analysis complete$' ||
    notok "[$3] analysis finished" "$(printf '%s\n' "$out" | tail -5)"
}

# one clean run of a copy: its allocations are the walk's range
W=$BASE/count
cp -a "$S0" "$W"
wc -c <"$PEERLOG" | tr -d ' ' >"$W/peer.offset"
OOM_COUNT=$BASE/count.n LD_PRELOAD=$SHIM OUTREACH_NOW=$((NOW + 60)) "$OR" -c "$W/conf" run >/dev/null 2>&1 ||
  notok "the clean run under the shim exits 0"
M=$(cat "$BASE/count.n" 2>/dev/null || echo 0)
[ "$M" -gt 1000 ] || { notok "the clean run made allocations" "count $M"; finish; }
pycheck "$W" after clean
rm -rf "$W"

cases_failed=0 walked=0 stopped=0
oom_case() {   # oom_case N
  W=$BASE/w
  rm -rf "$W"
  cp -a "$S0" "$W"
  wc -c <"$PEERLOG" | tr -d ' ' >"$W/peer.offset"
  OOM_AT=$1 LD_PRELOAD=$SHIM OUTREACH_NOW=$((NOW + 60)) "$OR" -c "$W/conf" run >"$W/failed.log" 2>"$W/failed.err"
  _rc=$?
  [ $_rc -eq 75 ] && stopped=$((stopped + 1))
  pycheck "$W" failed "N=$1" "$_rc"
  for at in $((NOW + 120)) $((NOW + 300)); do
    OUTREACH_NOW=$at "$OR" -c "$W/conf" run >"$W/after.log" 2>&1 ||
      notok "[N=$1] a clean run after it exits 0" "$(grep -v 'event=' "$W/after.log" | tail -2)"
  done
  pycheck "$W" after "N=$1"
  walked=$((walked + 1))
  rm -rf "$W"
}

if [ "$MODE" = full ]; then
  ns=$(seq 1 "${OOMWALK_STEP:-1}" "$M")
else
  ns=$(python3 -c 'import random, sys
r = random.Random(int(sys.argv[1])); m, k = int(sys.argv[2]), int(sys.argv[3])
print(" ".join(str(r.randint(m * i // k + 1, m * (i + 1) // k)) for i in range(k)))' "${OOMWALK_SEED:-1}" "$M" "${OOMWALK_SAMPLE:-20}")
  echo "# OOMWALK_SEED=${OOMWALK_SEED:-1}: a clean run makes $M allocations; N sampled: $ns"
fi
for n in $ns; do oom_case "$n"; done
echo "# oom steps walked: $walked ($stopped exited 75; a run may also survive its failed allocation)"
eq "out of memory at $walked allocations across a run: no case broke an invariant" "$cases_failed" 0
echo "# oomwalk ($MODE): $(($(date +%s) - start)) s"
finish
