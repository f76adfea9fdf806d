#!/bin/sh
# tests/e2e/fsquirks.sh — ingest on file systems that behave unlike ext4, through an
# LD_PRELOAD shim (tests/shims/fsquirks.c, built here):
#   - the listing says nothing of file types (DT_UNKNOWN, as XFS without ftype and some
#     network file systems do): outreach must lstat, so good jobs still go out, a
#     symlink and a FIFO still go to bad/ unopened (the link's target untouched), and a
#     directory is still left where it is;
#   - a job file taken back by its producer between the listing and the open: skipped
#     without a trace (no ledger row, nothing in bad/), the others ingested.
. "$(dirname "$0")/../lib.sh"
export OUTREACH_NOW=1796029200   # 2026-11-30T09:00:00Z
SHIM=$T/fsquirks.so
if ! ${CC:-cc} -shared -fPIC -O1 -o "$SHIM" "$TESTS/shims/fsquirks.c" -ldl 2>"$T/cc.err"; then
  notok "the shim builds" "$(head -3 "$T/cc.err")"; finish
fi
setup
N=$T/spool/new
good() { printf '{"client":"acme","to":"%s@rcpt.example","subject":"s","text":"t"}' "$1" >"$N/$1.json"; }

# ---- 1. no file types in the listing ---------------------------------------------------------
good g1; good g2; good g3
echo 'root:x:0:0' >"$T/target"; cp "$T/target" "$T/target.orig"
ln -s "$T/target" "$N/link.json"
mkfifo "$N/fifo.json"
mkdir "$N/adir"; echo 'kept' >"$N/adir/keep.json"
timeout 20 env LD_PRELOAD="$SHIM" FSQUIRKS_DTUNKNOWN=1 "$OR" -c "$T/conf" run >"$T/out" 2>"$T/err"; rc=$?
eq "DT_UNKNOWN: the run exits 0 (did not block on the FIFO)" "$rc" 0
eq "DT_UNKNOWN: the three good jobs are sent" "$(q "SELECT count(*) FROM jobs WHERE state = 'sent'")" 3
eq "DT_UNKNOWN: three messages in the outbox" "$(ls "$T/outbox" 2>/dev/null | grep -c '\.eml$')" 3
eq "DT_UNKNOWN: the link and the FIFO are bad, nothing else" "$(q "SELECT count(*) FROM jobs WHERE state = 'bad'")" 2
eq "DT_UNKNOWN: both say why: not a regular file" \
  "$(q "SELECT count(*) FROM jobs WHERE state = 'bad' AND last_error LIKE 'not a regular file%'")" 2
eq "DT_UNKNOWN: bad/ holds the link and the FIFO (and their .err)" "$(ls "$T/spool/bad" | grep -c '\.json$')" 2
links=$(find "$T/spool/bad" -type l | wc -l); fifos=$(find "$T/spool/bad" -type p | wc -l)
eq "DT_UNKNOWN: the link moved as a link (never opened through)" "$links" 1
eq "DT_UNKNOWN: the FIFO moved as a FIFO" "$fifos" 1
check "DT_UNKNOWN: the link's target is untouched" cmp -s "$T/target" "$T/target.orig"
check "DT_UNKNOWN: the directory stays in new/ with its file" test -f "$N/adir/keep.json"
eq "DT_UNKNOWN: nothing else left in new/" "$(ls "$N")" "adir"

# ---- 2. a file gone between the listing and its open -----------------------------------------
good keep1; good vanish1; good keep2; good vanish2
timeout 20 env LD_PRELOAD="$SHIM" FSQUIRKS_VANISH=vanish "$OR" -c "$T/conf" run >"$T/out" 2>"$T/err"; rc=$?
eq "vanished: the run exits 0" "$rc" 0
eq "vanished: the shim took both back (they are gone from new/)" "$(ls "$N" | grep -c vanish)" 0
eq "vanished: the other two are sent" \
  "$(q "SELECT count(*) FROM jobs WHERE state = 'sent' AND rcpt IN ('keep1@rcpt.example', 'keep2@rcpt.example')")" 2
eq "vanished: no ledger row for the taken-back ones" "$(q "SELECT count(*) FROM jobs WHERE rcpt LIKE 'vanish%'")" 0
eq "vanished: nothing new in bad/" "$(ls "$T/spool/bad" | grep -c '\.json$')" 2
eq "vanished: no arrival left listed" "$(q "SELECT count(*) FROM arrivals")" 0
finish
