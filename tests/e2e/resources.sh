#!/bin/sh
# tests/e2e/resources.sh — issue 7: the run under resource faults.
#   full disk (OUTREACH_FAULT=enospc:N, the N-th atomic file write fails):
#     enqueue -> exit 74, nothing in new/, nothing left in tmp/;
#     the report -> exit 0, the previous status.json intact, outcomes recorded;
#     the file provider's message -> the job waits for a retry and goes later;
#   a real 600 KB tmpfs filled while a run writes the ledger (skipped when mount
#     is refused): exit 74 or 0, integrity_check ok, nothing lost once space returns;
#   the database locked by another writer past busy_timeout -> exit 75 within
#     seconds, nothing sent; a later run sends everything;
#   too many open files (ulimit -n 4..34, at ingest and at claim) -> the run exits 75
#     (temporary) or succeeds, no job is judged bad for it, a waiting one-click
#     unsubscribe is kept for the next run (key and request files alike), and a
#     run that exits 0 did its work or said why; nothing lost;
#   an input file (enqueue, --template, suppress import, validate) that cannot be opened
#     for want of descriptors (ulimit -n, or the fsquirks shim's EMFILE) -> exit 75,
#     nothing enqueued or imported; a missing one still exits 65;
#   fds 0-2 closed -> works, nothing written into spool files by mistake;
#   out of memory (tests/shims/oom.c: the N-th allocation fails) at 20 N sampled across a
#     whole run (ingest, claim, send, the feed, the reports; tests/oomwalk.sh, whose full
#     form is `make oomwalk`): the run exits 0 or 75, no valid job judged bad, and after
#     clean runs nothing lost or sent twice;
#   the wall clock jumping back an hour and forward two days mid-run
#     (libfaketime, a file-based time source, no OUTREACH_NOW): each run still
#     ends near its deadline, nothing lost, nothing sent twice, caps per day hold.
. "$(dirname "$0")/../lib.sh"
private_binary
MNT=
trap '[ -n "$MNT" ] && umount "$MNT" 2>/dev/null; rm -rf "$T"' EXIT
NOW=1795813200   # 2026-11-27 21:00 UTC

# audit TAG DIR [ALLOW_HELD]: the spool in DIR/spool against DIR/ids and every
# delivery (DIR/outbox/*.eml, DIR/exec.log): integrity, cur/ and new/ empty, one
# folder per job agreeing with the ledger, every enqueued job sent exactly once
# (or held, at most ALLOW_HELD of them, with at most one delivery).
cat >"$T/audit.py" <<'EOF'
import os, re, sqlite3, sys
from spoolcheck import FOLDERS, where as folders_of, outbox
tag, W = sys.argv[1], sys.argv[2]
allow_held = int(sys.argv[3]) if len(sys.argv) > 3 else 0
sp = os.path.join(W, "spool")
def ok(c, name, detail=""):
    print(("ok - " if c else "not ok - ") + tag + ": " + name)
    if not c and detail != "":
        print("#   " + str(detail)[:500])
ls = lambda d: sorted(f for f in os.listdir(os.path.join(sp, d)) if not f.startswith("."))
db = sqlite3.connect(os.path.join(sp, "state.db"), timeout=30)
ok(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "PRAGMA integrity_check = ok")
state = dict(db.execute("SELECT id, state FROM jobs"))
ids = [l.strip() for l in open(os.path.join(W, "ids")) if l.strip()]
left = ls("cur") + ls("new")
where = folders_of(sp)
mism = {i: (where.get(i), state[i]) for i in state if len(where.get(i, [])) != 1 or state[i] not in FOLDERS[where[i][0]]}
ok(not left and not mism, "nothing in cur/ or new/; every job in one folder, the one its ledger state says",
   {"cur+new": left, "mismatch": mism})
n = outbox(os.path.join(W, "outbox"))
el = os.path.join(W, "exec.log")
for l in open(el) if os.path.exists(el) else []:
    if l.split():
        n[l.split()[0]] = n.get(l.split()[0], 0) + 1
lost = [i for i in ids if state.get(i) not in ("sent", "held")]
held = [i for i in ids if state.get(i) == "held"]
ok(not lost and len(held) <= allow_held, "nothing lost: all %d jobs sent%s" % (len(ids), " (or held: in flight)" if allow_held else ""),
   {"not sent": {i: state.get(i) for i in lost}, "held": held})
twice = {i: c for i, c in n.items() if c > 1}
nomsg = [i for i in ids if state.get(i) == "sent" and n.get(i, 0) != 1]
ok(not twice and not nomsg, "nothing sent twice: one message per sent job, none twice", {"twice": twice, "sent without one message": nomsg})
EOF
audit() { python3 "$T/audit.py" "$@" || notok "$1: audit finished"; }
jobs() {   # jobs N [FIRST]: N job lines
  _i=${2:-1}; _e=$((_i + $1 - 1))
  while [ $_i -le $_e ]; do job "u$_i@rcpt.example" acme; _i=$((_i + 1)); done
}
mkspool() {   # mkspool DIR CONFIG-BODY: a fresh spool with its config in DIR
  mkdir -p "$1"
  printf 'spool = "spool";\nreport_dir = "reports";\ntimezone = "UTC";\n%s\n' "$2" >"$1/conf"
  "$OR" -c "$1/conf" init >/dev/null || notok "init $1"
}
printf '#!/bin/sh\n# accepts the message, logs its job id\nid=$(sed -n "s/^X-Outreach-Job: *\\([0-9a-f]*\\).*/\\1/p" | head -n 1)\nprintf "%%s\\n" "$id" >>"$(dirname "$0")/exec.log"\necho "x-$id"\n' >"$T/ex.sh"
FILEONLY='providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; } );'

# ---- 1. ENOSPC through the seam -------------------------------------------------------------
W=$T/nospc; mkspool "$W" "$FILEONLY"
for n in 1 3; do
  jobs 5 | OUTREACH_FAULT=enospc:$n "$OR" -c "$W/conf" enqueue - >"$W/out" 2>"$W/err"; rc=$?
  eq "enqueue, disk full at write $n of 5: exit 74" "$rc" 74
  check "enqueue, disk full at write $n: the reason on stderr" grep -q 'No space left' "$W/err"
  eq "enqueue, disk full at write $n: nothing in new/, nothing printed" "$(ls -A "$W/spool/new" | wc -l)$(wc -c <"$W/out" | tr -d ' ')" "00"
  eq "enqueue, disk full at write $n: nothing left in tmp/" "$(ls -A "$W/spool/tmp" | wc -l)" 0
done

W=$T/report; mkdir -p "$W"; cp "$T/ex.sh" "$W/ex.sh"; chmod 755 "$W/ex.sh"
mkspool "$W" "providers = ( { name = \"ex\"; type = \"exec\"; argv = [\"$W/ex.sh\"]; } );
senders = ( { name = \"x\"; from = \"X <x@x.example>\"; provider = \"ex\"; daily_limit = 1000; } );"
OUTREACH_NOW=$NOW "$OR" -c "$W/conf" run || notok "report: the first run"
cp "$W/reports/status.json" "$W/prev.json"
jobs 5 | "$OR" -c "$W/conf" enqueue - >"$W/ids"
# no job fails, so the run's atomic writes are status.txt, status.json, outreach.prom
OUTREACH_FAULT=enospc:2 OUTREACH_NOW=$((NOW + 60)) "$OR" -c "$W/conf" run 2>"$W/err"; rc=$?
eq "report: disk full writing status.json: the run exits 0" "$rc" 0
check "report: the failed write is named on stderr (status.json)" grep -q 'file=status.json.*No space' "$W/err"
check "report: the previous status.json is intact, byte for byte" cmp -s "$W/prev.json" "$W/reports/status.json"
check "report: the previous status.json parses as JSON" python3 -m json.tool "$W/reports/status.json"
eq "report: no temp file left in reports/" "$(ls -A "$W/reports" | grep -c '^\.tmp')" 0
eq "report: the jobs' outcomes are recorded (5 sent)" "$(sqlite3 "$W/spool/state.db" "SELECT count(*) FROM jobs WHERE state = 'sent'")" 5
audit "report" "$W"

W=$T/fileprov; mkspool "$W" "$FILEONLY"
jobs 3 | "$OR" -c "$W/conf" enqueue - >"$W/ids"
OUTREACH_FAULT=enospc:1 OUTREACH_NOW=$NOW "$OR" -c "$W/conf" run 2>"$W/err"; rc=$?
eq "file provider, disk full writing a message: the run exits 0" "$rc" 0
r=$(sqlite3 "$W/spool/state.db" "SELECT state, attempts, last_error LIKE '%No space left%', next_due > $NOW FROM jobs WHERE state != 'sent'")
eq "file provider, disk full: that job waits for a retry (attempt 1, the reason, due later)" "$r" "waiting|1|1|1"
eq "file provider, disk full: no message and no temp file for it in the outbox" \
  "$(ls -A "$W/outbox" | grep -vc '^[0-9a-f]\{16\}\.eml$')$(ls "$W/outbox" | wc -l)" "02"
OUTREACH_NOW=$((NOW + 3600)) "$OR" -c "$W/conf" run || notok "file provider: the later run exits 0"
audit "file provider, the retry an hour later" "$W"

# ---- 2. a real small tmpfs filled while a run writes the ledger ----------------------------------
mkdir -p "$T/small"
if mount -t tmpfs -o size=600k tmpfs "$T/small" 2>/dev/null; then
  MNT=$T/small
  for how in itself filler; do
    W=$T/small/$how; mkdir -p "$W"
    printf 'spool = "spool";\nreport_dir = "reports";\ntimezone = "UTC";\n%s\n' \
      "providers = ( { name = \"dry\"; type = \"file\"; dir = \"$T/tmpfs-outbox-$how\"; } );
senders = ( { name = \"s1\"; from = \"One <one@s1.example>\"; provider = \"dry\"; daily_limit = 1000; } );" >"$W/conf"
    "$OR" -c "$W/conf" init >/dev/null || notok "tmpfs: init"
    OUTREACH_NOW=$NOW "$OR" -c "$W/conf" run || notok "tmpfs: the first run"
    jobs 40 | "$OR" -c "$W/conf" enqueue - >"$W/ids" || notok "tmpfs: enqueue"
    if [ $how = filler ]; then   # someone else fills the disk, leaving 96 KB
      dd if=/dev/zero of="$T/small/.fill" bs=4k 2>/dev/null; truncate -s -96K "$T/small/.fill"
    fi
    echo "# tmpfs ($how): $(df -k "$T/small" | awk 'NR==2 {print $4}') KB free before the run"
    OUTREACH_NOW=$((NOW + 60)) "$OR" -c "$W/conf" run >"$T/small.out" 2>"$T/small.err"; rc=$?
    echo "# tmpfs ($how): exit $rc: $(head -c 150 "$T/small.err")"
    case $rc in 0|74) ok "tmpfs ($how): the run on a full disk fails cleanly (exit $rc)";;
      *) notok "tmpfs ($how): the run on a full disk fails cleanly (exit 74 or 0)" "exit $rc: $(tail -3 "$T/small.err")";; esac
    [ $rc -eq 0 ] || check "tmpfs ($how): exit 74 says why on stderr" grep -qi 'full\|space\|I/O' "$T/small.err"
    # space returns
    rm -f "$T/small/.fill"
    mount -o remount,size=16m "$T/small" || notok "tmpfs: remount bigger"
    eq "tmpfs ($how): PRAGMA integrity_check = ok once space returns" \
      "$(sqlite3 "$W/spool/state.db" 'PRAGMA integrity_check' 2>&1)" ok
    OUTREACH_NOW=$((NOW + 120)) "$OR" -c "$W/conf" run 2>"$T/small.err" || notok "tmpfs ($how): the run after space returns exits 0" "$(cat "$T/small.err")"
    ln -s "$T/tmpfs-outbox-$how" "$W/outbox"
    audit "tmpfs ($how), after space returns" "$W" 1
    rm -rf "$W"
    mount -o remount,size=600k "$T/small" || notok "tmpfs: remount small again"
  done
  umount "$T/small" && MNT=
else
  echo "# skip: cannot mount tmpfs here"
fi

# ---- 3. the database locked by another writer past busy_timeout ----------------------------------
W=$T/locked; mkspool "$W" "busy_timeout = 1;
$FILEONLY"
jobs 10 | "$OR" -c "$W/conf" enqueue - >"$W/ids"
python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(5)
c.execute("COMMIT")' "$W/spool/state.db" >"$W/lock.out" &
LPID=$!
for _i in $(seq 100); do grep -q locked "$W/lock.out" && break; sleep 0.05; done
t0=$(date +%s.%N)
OUTREACH_NOW=$NOW "$OR" -c "$W/conf" run 2>"$W/err"; rc=$?
el=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$t0" "$(date +%s.%N)")
eq "locked: the run exits 75 (temporary)" "$rc" 75
check "locked: ... within a few seconds of busy_timeout = 1 (took $el s)" python3 -c "import sys; sys.exit(not $el < 4)"
check "locked: stderr says the database is locked" grep -q 'locked' "$W/err"
eq "locked: nothing sent" "$(ls "$W/outbox" 2>/dev/null | wc -l)" 0
wait $LPID
eq "locked: nothing recorded as sent" "$(sqlite3 "$W/spool/state.db" "SELECT count(*) FROM jobs WHERE state NOT IN ('waiting')")" 0
OUTREACH_NOW=$((NOW + 60)) "$OR" -c "$W/conf" run || notok "locked: the run after the lock is gone exits 0"
audit "locked, then a later run" "$W"

# ---- 4. too many open files -------------------------------------------------------------------
# Every limit from "cannot even start" to "plenty", one by one: the descriptor a
# job file's open needs is the last one free at exactly one limit, and that limit
# moves with the descriptors the caller leaves open (CI's shell left more than
# ours).  Stage "new": the limited run ingests; stage "cur": the jobs were ingested
# by an earlier run (their client paused), so the limited run opens them at claim.
# nofile.py N CMD...: CMD with descriptors 3 and up closed (whatever the caller
# left open) and at most N open, so a limit means the same here and on CI.
cat >"$T/nofile.py" <<'EOF'
import os, resource, sys
n = int(sys.argv[1])
os.closerange(3, 65536)
resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
os.execv(sys.argv[2], sys.argv[2:])
EOF
for stage in new cur; do
for lim in $(seq 4 34); do
  W=$T/fd$stage$lim; mkdir -p "$W"; cp "$T/ex.sh" "$W/ex.sh"; chmod 755 "$W/ex.sh"
  mkspool "$W" "providers = ( { name = \"dry\"; type = \"file\"; dir = \"outbox\"; },
  { name = \"ex\"; type = \"exec\"; argv = [\"$W/ex.sh\"]; } );
senders = ( { name = \"f\"; from = \"F <f@f.example>\"; provider = \"dry\"; daily_limit = 1000; },
  { name = \"x\"; from = \"X <x@x.example>\"; provider = \"ex\"; daily_limit = 1000; } );
retry = { first = 60; max = 600; max_attempts = 8; max_age = 86400; };"
  jobs 10 | "$OR" -c "$W/conf" enqueue - >"$W/ids"
  if [ $stage = cur ]; then
    "$OR" -c "$W/conf" pause --client acme >/dev/null
    OUTREACH_NOW=$((NOW - 60)) "$OR" -c "$W/conf" run 2>/dev/null || notok "ulimit stage cur: the ingesting run exits 0"
    "$OR" -c "$W/conf" resume --client acme >/dev/null
  fi
  t="ulimit -n $lim ($stage)"
  OUTREACH_NOW=$NOW python3 "$T/nofile.py" $lim "$OR" -c "$W/conf" run >"$W/out" 2>"$W/err"; rc=$?
  echo "# $t: exit $rc $(head -c 120 "$W/err" | tr '\n' ' ')"
  case $rc in 0|74|75) ok "$t: the run fails cleanly or succeeds (exit $rc)";;
    *) notok "$t: the run fails cleanly or succeeds (exit 0, 74 or 75)" "exit $rc: $(tail -3 "$W/err")";; esac
  if [ $rc -ne 0 ] && grep -q 'Too many open files' "$W/err"; then
    eq "$t: a run stopped for want of descriptors exits 75 (temporary), not 74 or 78" "$rc" 75
  fi
  if [ $rc -eq 0 ]; then
    nnew=$(ls "$W/spool/new" | wc -l)
    if [ "$nnew" -eq 0 ] || [ -s "$W/err" ]; then ok "$t: exit 0 means new/ was ingested, or stderr says why not"
    else notok "$t: exit 0 means new/ was ingested, or stderr says why not" \
      "exit 0, silent, yet all $nnew jobs are still in new/ (nothing ingested)"; fi
  fi
  eq "$t: no job judged bad or failed for want of descriptors" \
    "$(sqlite3 "$W/spool/state.db" "SELECT count(*) FROM jobs WHERE state IN ('bad', 'failed')")" 0
  OUTREACH_NOW=$((NOW + 60)) "$OR" -c "$W/conf" run || notok "$t: the next normal run exits 0"
  OUTREACH_NOW=$((NOW + 3600)) "$OR" -c "$W/conf" run || notok "$t: the run an hour later exits 0"
  audit "$t, then normal runs" "$W" 1
done
done

# the same walk for a one-click unsubscribe request waiting in unsub/ (written by the
# CGI): the run that cannot open it for want of descriptors must keep it, not drop it
for lim in $(seq 4 34); do
  W=$T/fdunsub$lim
  mkspool "$W" "$FILEONLY
unsubscribe = { url = \"https://example.com/u\"; };"
  job u1@rcpt.example acme | "$OR" -c "$W/conf" enqueue - >/dev/null
  OUTREACH_NOW=$((NOW - 60)) "$OR" -c "$W/conf" run 2>/dev/null || notok "unsub walk: the first run exits 0"
  tok=$(sed -n 's/^List-Unsubscribe: <https:\/\/example.com\/u?t=\([^>]*\)>.*/\1/p' "$W"/outbox/*.eml | head -n 1)
  printf 'List-Unsubscribe=One-Click' | env GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 REQUEST_METHOD=POST \
    QUERY_STRING="t=$tok" CONTENT_TYPE=application/x-www-form-urlencoded CONTENT_LENGTH=26 SCRIPT_NAME=/u \
    REMOTE_ADDR=127.0.0.1 "$OR" -c "$W/conf" cgi >/dev/null 2>&1
  [ "$(ls "$W/spool/unsub" | wc -l)" -eq 1 ] || notok "unsub walk: the CGI left one request in unsub/"
  t="ulimit -n $lim (unsubscribe waiting)"
  OUTREACH_NOW=$NOW python3 "$T/nofile.py" $lim "$OR" -c "$W/conf" run >"$W/out" 2>"$W/err"; rc=$?
  echo "# $t: exit $rc $(head -c 120 "$W/err" | tr '\n' ' ')"
  case $rc in 0|75) ok "$t: the run exits 0 or 75 (exit $rc)";;
    *) notok "$t: the run exits 0 or 75" "exit $rc: $(tail -3 "$W/err")";; esac
  OUTREACH_NOW=$((NOW + 60)) "$OR" -c "$W/conf" run || notok "$t: the next normal run exits 0"
  eq "$t: the address is suppressed once descriptors are back (the request was kept)" \
    "$(sqlite3 "$W/spool/state.db" "SELECT count(*) FROM suppressions WHERE address = 'u1@rcpt.example'")" 1
  eq "$t: unsub/ is empty after it was applied" "$(ls "$W/spool/unsub" | wc -l)" 0
done

# an input file the user names (enqueue's FILE and --template, suppress import's FILE,
# validate's FILE) that cannot be opened for want of descriptors is no bad input: exit 75
# (temporary), nothing enqueued or imported; a missing file is still bad input (65)
W=$T/fdinput; mkspool "$W" "$FILEONLY"
jobs 3 >"$W/in.jsonl"; printf '{"subject":"T"}\n' >"$W/tmpl.json"
printf 'address\nx@rcpt.example\n' >"$W/sup.csv"
nsup() { sqlite3 "$W/spool/state.db" "SELECT count(*) FROM suppressions"; }
seen=
for lim in $(seq 4 34); do   # real limits: suppress import opens FILE after the database
  t="ulimit -n $lim (suppress import FILE)"
  python3 "$T/nofile.py" $lim "$OR" -c "$W/conf" suppress import "$W/sup.csv" >/dev/null 2>"$W/err"; rc=$?
  grep -q 'sup.csv: Too many open files' "$W/err" && seen=$lim &&
    eq "$t: FILE cannot be opened for want of descriptors: exit 75 (temporary), not 65" "$rc" 75
  [ $rc -eq 0 ] && break
  [ $rc -eq 75 ] || notok "$t: exit 0 or 75" "exit $rc: $(tail -2 "$W/err")"
  eq "$t: nothing imported by an import that exits $rc" "$(nsup)" 0
done
[ -n "$seen" ] && ok "the ulimit walk reached suppress import's open of FILE (at -n $seen)" ||
  notok "the ulimit walk reached suppress import's open of FILE"
"$OR" -c "$W/conf" suppress remove x@rcpt.example >/dev/null || notok "suppress remove after the walk"
# enqueue and validate open FILE before anything they keep open, so ulimit -n cannot
# single it out: tests/shims/fsquirks.c fails that one open with EMFILE
SHIM=$T/fsquirks.so
${CC:-cc} -shared -fPIC -O1 -o "$SHIM" "$TESTS/shims/fsquirks.c" -ldl 2>"$T/cc.err" ||
  notok "the fsquirks shim builds" "$(head -3 "$T/cc.err")"
emfile() { _n=$1; shift; env LD_PRELOAD="$SHIM" FSQUIRKS_EMFILE="$_n" "$OR" -c "$W/conf" "$@" >/dev/null 2>"$W/err"; }
emfile in.jsonl enqueue "$W/in.jsonl"
eq "enqueue FILE, out of descriptors at its open: exit 75 (temporary), not 65" "$?" 75
emfile in.jsonl enqueue "$W/tmpl.json" "$W/in.jsonl"
eq "enqueue GOOD FILE, out of descriptors at FILE's open: exit 75" "$?" 75
emfile tmpl.json enqueue --template "$W/tmpl.json" "$W/in.jsonl"
eq "enqueue --template T, out of descriptors at T's open: exit 75" "$?" 75
eq "no enqueue short of descriptors added a job" "$(ls "$W/spool/new" | wc -l)/$(sqlite3 "$W/spool/state.db" 'SELECT count(*) FROM jobs')" 0/0
emfile sup.csv suppress import "$W/sup.csv"
eq "suppress import FILE, out of descriptors at its open: exit 75" "$?" 75
eq "suppress import short of descriptors imported nothing" "$(nsup)" 0
emfile in.jsonl validate "$W/in.jsonl"
eq "validate FILE, out of descriptors at its open: exit 75" "$?" 75
"$OR" -c "$W/conf" enqueue "$W/none.jsonl" >/dev/null 2>&1
eq "enqueue of a missing FILE still exits 65" "$?" 65
"$OR" -c "$W/conf" suppress import "$W/none.csv" >/dev/null 2>&1
eq "suppress import of a missing FILE still exits 65" "$?" 65
"$OR" -c "$W/conf" validate "$W/none.txt" >/dev/null 2>&1
eq "validate of a missing FILE still exits 65" "$?" 65

# ---- 5. started with fds 0-2 closed ---------------------------------------------------------------
W=$T/closed; mkspool "$W" "$FILEONLY"
jobs 10 | "$OR" -c "$W/conf" enqueue - >"$W/ids"
printf '{"client":"acme","to":"x@rcpt.example"}\n' >"$W/spool/new/broken"                              # bad: logged
printf '{"client":"acme","to":"p@rcpt.example","subject":"s","text":"t","sender":"nobody"}\n' >"$W/spool/new/pinned"   # failed: logged
OUTREACH_NOW=$NOW "$OR" -v -c "$W/conf" run <&- >&- 2>&-; rc=$?
eq "fds 0-2 closed: the run exits 0" "$rc" 0
check "fds 0-2 closed: status.json is valid JSON" python3 -m json.tool "$W/reports/status.json"
python3 - "$W" <<'EOF'
import json, os, sys
W = sys.argv[1]
bad = []
for root in ("spool", "reports", "outbox"):
    for d, _, fs in os.walk(os.path.join(W, root)):
        for f in fs:
            p = os.path.join(d, f)
            b = open(p, "rb").read()
            if b"event=" in b or b"outreach:" in b:
                bad.append((p, "holds log text"))
            if f.endswith(".json"):
                try:
                    json.loads(b)
                except ValueError:
                    if not p.endswith("broken"):
                        bad.append((p, "not JSON"))
            if f.endswith(".err") and b.count(b"\n") != 1:
                bad.append((p, "not one line"))
            if f.endswith(".eml") and not b[:1].isalpha():
                bad.append((p, "does not start with a header"))
ok = not bad
print(("ok - " if ok else "not ok - ") + "fds 0-2 closed: no log text or stray bytes in any spool, report or outbox file")
if bad:
    print("#   %s" % bad[:5])
EOF
[ $? -eq 0 ] || nfail=$((nfail + 1))
eq "fds 0-2 closed: the bad file and the failed job were settled" \
  "$(sqlite3 "$W/spool/state.db" "SELECT group_concat(state) FROM (SELECT state FROM jobs WHERE state IN ('bad', 'failed') ORDER BY state)")" "bad,failed"
audit "fds 0-2 closed" "$W"

# ---- 6. the wall clock jumps back an hour and forward two days, mid-run ---------------------------
FTLIB=$(ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
if [ -z "$FTLIB" ]; then
  echo "# skip: libfaketime not found"
else
  W=$T/clock; mkdir -p "$W"
  # the exec provider logs each send with the (fake) time it saw; at its 3rd and
  # 8th send it rewrites the clock file: the jump happens inside a run
  cat >"$W/ex.sh" <<'EOS'
#!/bin/sh
d=$(dirname "$0")
id=$(sed -n 's/^X-Outreach-Job: *\([0-9a-f]*\).*/\1/p' | head -n 1)
printf '%s %s\n' "$id" "$(date -u +%FT%T)" >>"$d/exec.log"
n=$(wc -l <"$d/exec.log")
j=$(sed -n "${n}p" "$d/jumps")
[ -n "$j" ] && [ "$j" != - ] && echo "$j" >"$d/clock"
echo "x-$id"
EOS
  chmod 755 "$W/ex.sh"
  mkspool "$W" "run = { deadline = 5; };
providers = ( { name = \"dry\"; type = \"file\"; dir = \"outbox\"; },
  { name = \"ex\"; type = \"exec\"; argv = [\"$W/ex.sh\"]; timeout = 30; } );
senders = ( { name = \"f\"; from = \"F <f@f.example>\"; provider = \"dry\"; daily_limit = 10; per_minute = 600; },
  { name = \"x\"; from = \"X <x@x.example>\"; provider = \"ex\"; daily_limit = 10; per_minute = 240; } );"
  jobs 50 | "$OR" -c "$W/conf" enqueue - >"$W/ids"
  # the fake clock: an offset from the real one, read from $W/clock at every call
  T0=$(date -u -d '2027-03-02 00:20:00' +%s); OFF=$((T0 - $(date +%s)))
  setclock() { printf '%+d\n' "$((OFF + $1))" >"$W/clock"; }
  fake() { env LD_PRELOAD="$FTLIB" FAKETIME_TIMESTAMP_FILE="$W/clock" FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 "$@"; }
  # the 3rd exec send steps the clock back an hour, the 8th forward two days from there
  printf -- '-\n-\n%+d\n-\n-\n-\n-\n%+d\n' $((OFF - 3600)) $((OFF - 3600 + 2 * 86400)) >"$W/jumps"
  # ingest 3 hours earlier (paused: nothing sent), so every job is due when the clock steps back
  setclock -10800
  "$OR" -c "$W/conf" pause --client acme && fake "$OR" -c "$W/conf" run && "$OR" -c "$W/conf" resume --client acme ||
    notok "clock: the ingest run"
  fakerun() {   # fakerun NAME: one run on the fake clock, limited to 15 s of real time
    _at=$(fake date -u +%FT%T)
    t0=$(date +%s.%N)
    fake timeout 15 "$OR" -c "$W/conf" run >>"$W/runs.log" 2>&1; _rc=$?
    _el=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$t0" "$(date +%s.%N)")
    echo "# clock: $1: started at $_at, exit $_rc after $_el s; the clock now says $(fake date -u +%FT%T); $(wc -l <"$W/exec.log" 2>/dev/null || echo 0) exec sends so far"
    if [ $_rc -eq 124 ]; then
      notok "clock: $1: ends near its deadline (5 s)" "still running after 15 s of real time (then stopped by SIGTERM from timeout)"
    else
      eq "clock: $1: exit 0" "$_rc" 0
      check "clock: $1: ends near its deadline (5 s), not after sleeping out the jump (took $_el s)" \
        python3 -c "import sys; sys.exit(not $_el < 10)"
    fi
  }
  setclock 0
  fakerun "run 1 (2027-03-02 00:20; its exec sends step the clock back 1 h, then forward 2 days)"
  fakerun "run 2 (on the clock as run 1 left it)"
  setclock -3600
  fakerun "run 3 (the clock set back to 2027-03-01 23:20, before run 1)"
  k=4
  while [ $k -le 9 ]; do
    [ "$(sqlite3 "$W/spool/state.db" "SELECT count(*) FROM jobs WHERE state = 'waiting'")" -eq 0 ] && break
    setclock $(((k - 1) * 86400))
    fakerun "run $k ($((k - 1)) days after run 1)"
    k=$((k + 1))
  done
  audit "clock jumps" "$W"
  over=$(sqlite3 "$W/spool/state.db" "SELECT group_concat(sender || ' ' || d || ': ' || n, '; ') FROM (SELECT sender,
    date(slot_at, 'unixepoch') AS d, count(*) AS n FROM jobs WHERE state = 'sent' GROUP BY 1, 2) WHERE n > 10")
  eq "clock: caps per day hold (no sender above 10 sends on any day of its slots)" "$over" ""
  echo "# clock: sends per sender and day: $(sqlite3 "$W/spool/state.db" "SELECT group_concat(x, ', ') FROM (SELECT sender || ' ' ||
    date(slot_at, 'unixepoch') || ' ' || count(*) AS x FROM jobs WHERE state = 'sent' GROUP BY sender, date(slot_at, 'unixepoch'))")"
fi

# ---- out of memory: the sampled walk (its lines are this script's) ------------------------------
OUTREACH_BIN=$OR OOMWALK= sh "$TESTS/oomwalk.sh" || nfail=$((nfail + 1))
finish
