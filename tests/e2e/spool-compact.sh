#!/bin/sh
# tests/e2e/spool-compact.sh — new/ made small again (doc/design.md §4): a folder never
# shrinks on ext4, so after 2,000 jobs have passed through, new/ stays ~200 KB that every
# run reads.  After an ingest that left new/ empty, a run exchanges it for a fresh folder
# of the same owner, group and mode; the old one waits as new.old for the next ingest,
# which moves back what raced into it and removes it.  Checked here:
#   - with a producer's hidden file in new/, or a chattr flag a fresh folder would lack
#     (+D), new/ is left as it is (same inode, the file still there, the run says why);
#   - otherwise new/ is a fresh folder (another inode), smaller, mode 2770 with the same
#     owner and group and the same extended attributes (an ACL would be one), nothing
#     lost (every job has its ledger row), new.old empty;
#   - a job that raced into new.old is ingested by the next run, and new.old is gone;
#   - a job already in new/ under the same name as one in new.old is not overwritten;
#   - inbound/new/ (mail for REPLIES) the same way, once a run has read it to its end.
# On a file system whose folders shrink (tmpfs) new/ is never big: the test then sets
# OUTREACH_NEW_COMPACT=1 (the seam of doc/design.md §9) for steps 1 and 2, so they run.
# san: yes
. "$(dirname "$0")/../lib.sh"
export OUTREACH_NOW=1796029200   # 2026-11-30T09:00:00Z
setup
S=$T/spool
N=$S/new
ino() { stat -c %i "$1"; }
size() { stat -c %s "$1"; }
drop() {   # drop FROM COUNT: COUNT jobs the producer's way (tmp/, then a rename into new/)
  python3 - "$S" "$1" "$2" <<'EOF'
import os, sys
s, a, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(a, a + n):
    name = "job-%06d-from-a-producer-with-a-long-name.json" % i
    with open(os.path.join(s, "tmp", name), "w") as f:
        f.write('{"client":"acme","id":"j%d","to":"u%d@rcpt.example","subject":"s","text":"t"}' % (i, i))
    os.rename(os.path.join(s, "tmp", name), os.path.join(s, "new", name))
EOF
}
FORCE=
run() { OUTREACH_NOW=$((OUTREACH_NOW + 60)); export OUTREACH_NOW; env $FORCE "$OR" -c "$T/conf" -v run >"$T/out" 2>"$T/err"; }

drop 0 2000
: >"$N/.producer-temp"
big=$(size "$N")
if [ "$big" -le 65536 ]; then
  echo "# new/ is $big bytes after 2,000 files: this file system keeps folders small; OUTREACH_NEW_COMPACT=1"
  FORCE=OUTREACH_NEW_COMPACT=1
fi
i0=$(ino "$N"); mode0=$(stat -c '%a %u %g' "$N")

# ---- 1. something in new/: left alone ------------------------------------------------------
run; rc=$?
eq "a hidden file in new/: the run exits 0" "$rc" 0
eq "a hidden file in new/: all 2,000 jobs have their ledger row" "$(q "SELECT count(*) FROM jobs")" 2000
eq "a hidden file in new/: new/ is the same folder" "$(ino "$N")" "$i0"
check "a hidden file in new/: the producer's file is still there" test -e "$N/.producer-temp"
check "a hidden file in new/: no new.old" test ! -e "$S/new.old"

rm "$N/.producer-temp"
# a flag the administrator set (chattr +D: synchronous folder updates) that a fresh folder
# would not have: new/ is left as it is rather than lose it
if chattr +D "$N" 2>/dev/null; then
  run; rc=$?
  eq "a chattr flag on new/: the run exits 0" "$rc" 0
  eq "a chattr flag on new/: new/ is the same folder" "$(ino "$N")" "$i0"
  check "a chattr flag on new/: no new.old" test ! -e "$S/new.old"
  check "a chattr flag on new/: the run says why at -v" grep -q 'event=spool new/ not compacted' "$T/err"
  chattr -D "$N"
else
  echo "# chattr +D is refused here: a flag the fresh folder cannot match is not checked"
fi
# an extended attribute on new/ (an ACL would be one) goes to the fresh folder too
xattr=0
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.outreach-test", b"kept")' "$N" 2>/dev/null && xattr=1
[ $xattr = 1 ] || echo "# this file system takes no user.* attributes: their copy is not checked here"

# ---- 2. empty: exchanged for a fresh folder ------------------------------------------------
run; rc=$?
eq "empty: the run exits 0" "$rc" 0
check "empty: new/ is another folder now" test "$(ino "$N")" != "$i0"
eq "empty: new/ has the old one's mode, owner and group" "$(stat -c '%a %u %g' "$N")" "$mode0"
[ $xattr = 1 ] && eq "empty: and its extended attribute" \
  "$(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.outreach-test").decode())' "$N" 2>&1)" kept
check "empty: new/ is smaller ($(size "$N") bytes, was $big)" test "$(size "$N")" -lt "$big"
eq "empty: the old folder waits as new.old, empty" "$(ls -A "$S/new.old" 2>&1)" ""
eq "empty: new.old is the old new/" "$(ino "$S/new.old")" "$i0"
check "empty: the run says so at -v" grep -q 'event=spool new/ compacted' "$T/err"
eq "empty: nothing lost (2,000 rows, none bad)" "$(q "SELECT count(*) FROM jobs WHERE state != 'bad'")" 2000
FORCE=

# ---- 3. a job that raced into the old folder -----------------------------------------------
printf '{"client":"acme","id":"raced","to":"raced@rcpt.example","subject":"s","text":"t"}' >"$S/tmp/raced.json"
mv "$S/tmp/raced.json" "$S/new.old/raced.json"
run; rc=$?
eq "raced: the run exits 0" "$rc" 0
eq "raced: the job in new.old has its ledger row" "$(q "SELECT count(*) FROM jobs WHERE rcpt = 'raced@rcpt.example'")" 1
check "raced: new.old is gone" test ! -e "$S/new.old"
eq "raced: new/ is empty" "$(ls -A "$N")" ""

# ---- 4. a name in both: nothing replaced ---------------------------------------------------
mkdir "$S/new.old"
printf '{"client":"acme","id":"twin-a","to":"twin-a@rcpt.example","subject":"s","text":"t"}' >"$S/new.old/twin.json"
printf '{"client":"acme","id":"twin-b","to":"twin-b@rcpt.example","subject":"s","text":"t"}' >"$S/tmp/twin.json"
mv "$S/tmp/twin.json" "$N/twin.json"
run; rc=$?
eq "same name: the run exits 0" "$rc" 0
eq "same name: the one in new/ is ingested" "$(q "SELECT count(*) FROM jobs WHERE rcpt = 'twin-b@rcpt.example'")" 1
eq "same name: the one in new.old waits there, untouched" "$(cat "$S/new.old/twin.json" 2>&1 | grep -c twin-a)" 1
check "same name: the run says why" grep -q "new.old: an entry cannot go back into new/" "$T/err"
run; rc=$?
eq "same name: the next run ingests it" "$(q "SELECT count(*) FROM jobs WHERE rcpt = 'twin-a@rcpt.example'")" 1
check "same name: then new.old is gone" test ! -e "$S/new.old"

# ---- 5. inbound/new/ (mail for REPLIES, read every run, 500 a run) -------------------------
I=$S/inbound
python3 - "$I" <<'EOF'
import os, sys
i = sys.argv[1]
for k in range(2000):
    name = "mail-%06d-dropped-by-an-mda-with-a-long-name" % k
    with open(os.path.join(i, "tmp", name), "w") as f:
        f.write("Message-ID: <m%d@mail.example>\r\nFrom: <x%d@mail.example>\r\nSubject: hi\r\n\r\nhello\r\n" % (k, k))
    os.rename(os.path.join(i, "tmp", name), os.path.join(i, "new", name))
EOF
ibig=$(size "$I/new"); ii0=$(ino "$I/new"); imode=$(stat -c '%a %u %g' "$I/new")
[ "$ibig" -le 65536 ] && FORCE=OUTREACH_NEW_COMPACT=1
k=0
while [ -n "$(ls -A "$I/new")" ] && [ $k -lt 6 ]; do run; k=$((k + 1)); done
eq "inbound: 2,000 mails read in four runs" "$k" 4
eq "inbound: each has its row" "$(q "SELECT count(*) FROM replies WHERE message_id LIKE '<m%@mail.example>'")" 2000
eq "inbound: the run that took the last 500 stopped at its limit: inbound/new/ kept" "$(ino "$I/new")" "$ii0"
run; rc=$?
eq "inbound: the next run exits 0" "$rc" 0
check "inbound: then inbound/new/ is another folder" test "$(ino "$I/new")" != "$ii0"
eq "inbound: with the old one's mode, owner and group" "$(stat -c '%a %u %g' "$I/new")" "$imode"
check "inbound: smaller ($(size "$I/new") bytes, was $ibig)" test "$(size "$I/new")" -lt "$ibig"
eq "inbound: the old one waits as inbound/new.old, empty" "$(ls -A "$I/new.old" 2>&1)" ""
FORCE=
printf 'Message-ID: <late@mail.example>\r\nFrom: <late@mail.example>\r\nSubject: hi\r\n\r\nhello\r\n' >"$I/tmp/late"
mv "$I/tmp/late" "$I/new.old/late"
run; rc=$?
eq "inbound: a mail that raced into inbound/new.old is read" \
  "$(q "SELECT count(*) FROM replies WHERE message_id = '<late@mail.example>'")" 1
check "inbound: and moved to inbound/cur/" test -f "$I/cur/late"
check "inbound: inbound/new.old is gone" test ! -e "$I/new.old"
finish
