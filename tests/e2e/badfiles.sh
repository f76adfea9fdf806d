#!/bin/sh
# tests/e2e/badfiles.sh — hostile arrivals dropped straight into spool/new/ (as a
# producer would): broken JSON, oversize, invalid UTF-8, header injection, reserved
# headers, unknown fields, bad placeholders, odd file names, a symlink to
# /etc/passwd, a FIFO and a directory, beside three good jobs.  One run sends the
# good ones, moves every bad one to bad/<id>.json with a reason in <id>.err, never
# opens through a link or blocks on a FIFO, and leaves the directory alone.  Then a
# bad job fixed by hand and requeued is sent.
# san: yes
. "$(dirname "$0")/../lib.sh"

NOW=1796029200            # 2026-11-30T09:00:00Z, a Monday
export OUTREACH_NOW=$NOW
setup
N=$T/spool/new
B=$T/spool/bad
mkdir "$T/orig"           # a copy of every bad file's bytes, to find it again in bad/

put() {   # put NAME CONTENT: an arrival in new/ (the bad ones are copied to orig/ below)
  printf '%s' "$2" >"$N/$1"
}
put trunc.json '{"client":"acme","to":"trunc@example.com","subj'
{ printf '{"client":"acme","to":"big@example.com","subject":"s","text":"'
  head -c 10485760 /dev/zero | tr '\0' a
  printf '"}'; } >"$N/big.json"
printf '{"client":"acme","to":"utf8@example.com","subject":"caf\351 \377","text":"t"}' >"$N/utf8.json"
put crlf.json '{"client":"acme","to":"a@x.com\r\nBcc: v@y.com","subject":"s","text":"t"}'
put reserved.json '{"client":"acme","to":"reserved@example.com","subject":"s","text":"t","headers":{"Bcc":"x@y.com"}}'
put unknown.json '{"client":"acme","to":"unknown@example.com","subject":"s","text":"t","colour":"red"}'
put missingvar.json '{"client":"acme","to":"var@example.com","subject":"s","text":"Hi {{first_name}}"}'
put placeholder.json '{"client":"acme","to":"ph@example.com","subject":"s","text":"Hi {{ first name }}"}'
put 'with space.json' '{"client":"acme","to":"space@example.com","subject":"s","text":"t"}'
put '-dash.json' '{"client":"acme","to":"dash@example.com","subject":"s","text":"t"}'
long=$(printf '%0250d' 0 | tr 0 L)
put "$long" '{"client":"acme","to":"long@example.com","subject":"s","text":"t"}'
put "$(printf 'ctl\001x.json')" '{"client":"acme","to":"ctl@example.com","subject":"s","text":"t"}'
ln -s /etc/passwd "$N/passwd.json"
mkfifo "$N/fifo.json"
mkdir "$N/adir"
echo 'inside a directory' >"$N/adir/keep.json"
for i in 1 2 3; do job "good$i@example.com" >"$N/good$i.json"; done
# what each bad file should be: its bytes (for finding it in bad/) and a reason keyword
cp "$N/trunc.json" "$N/big.json" "$N/utf8.json" "$N/crlf.json" "$N/reserved.json" "$N/unknown.json" \
   "$N/missingvar.json" "$N/placeholder.json" "$T/orig/"
cp "$N/with space.json" "$T/orig/space"; cp "$N/-dash.json" "$T/orig/dash"
cp "$N/$long" "$T/orig/long"; cp "$N/$(printf 'ctl\001x.json')" "$T/orig/ctl"
passwd_sum=$(cksum </etc/passwd)

timeout 30 "$OR" -c "$T/conf" run >"$T/run.out" 2>"$T/run.err"; rc=$?
eq "run: exit 0 (did not block on the FIFO)" "$rc" 0

# ---- the good jobs ------------------------------------------------------------------------------------
eq "three good jobs sent (3 .eml)" "$(ls "$T/outbox" 2>/dev/null | grep -c '\.eml$')" 3
for i in 1 2 3; do
  check "good$i@example.com got its message" grep -lq "^To: .*good$i@example.com" "$T"/outbox/*.eml
done
eq "ledger: 3 sent" "$(q "SELECT count(*) FROM jobs WHERE state = 'sent'")" 3
check "no message carries the injected Bcc address" sh -c "! grep -rq 'v@y.com' '$T/outbox'"

# ---- every bad file in bad/ with its reason ---------------------------------------------------------
eq "new/ holds only the directory" "$(ls -A "$N")" "adir"
eq "14 bad arrivals in bad/" "$(ls "$B" | grep -c '\.json$')" 14
eq "ledger: 14 rows in state bad" "$(q "SELECT count(*) FROM jobs WHERE state = 'bad'")" 14
noerr=0 notbad=0
for f in "$B"/*.json; do
  id=$(basename "$f" .json)
  [ -s "$B/$id.err" ] || noerr=$((noerr + 1))
  [ "$(q "SELECT state FROM jobs WHERE id = '$id'")" = bad ] || notbad=$((notbad + 1))
done
eq "every bad/<id>.json has a non-empty <id>.err" "$noerr" 0
eq "every bad/<id>.json is state 'bad' in the ledger" "$notbad" 0
check "bad ids are 16 hex" sh -c "ls '$B' | grep -vqE '^[0-9a-f]{16}\\.(json|err)\$' && exit 1 || exit 0"

# find the bad/ id whose file has the same bytes as orig/NAME
idof() {
  for f in "$B"/*.json; do
    [ -f "$f" ] && [ ! -L "$f" ] && cmp -s "$f" "$T/orig/$1" && { basename "$f" .json; return; }
  done
}
reason() {   # reason ORIGNAME KEYWORD: the .err of that file names the reason
  id=$(idof "$1")
  if [ -z "$id" ]; then notok "$1: in bad/ with the bytes as received"; return; fi
  ok "$1: in bad/ with the bytes as received"
  if grep -qi -- "$2" "$B/$id.err"; then ok "$1: .err says \"$2\""
  else notok "$1: .err says \"$2\"" "got: $(cat "$B/$id.err")"; fi
  eq "$1: ledger last_error = .err" "$(q "SELECT last_error FROM jobs WHERE id = '$id'")" "$(cat "$B/$id.err")"
}
reason trunc.json "JSON"
reason big.json "over the limit"
reason utf8.json "UTF-8"
reason crlf.json "^to: "
reason reserved.json "reserved"
reason unknown.json "unknown field"
reason missingvar.json "first_name"
reason placeholder.json "placeholder"
reason space "file name"
reason dash "file name"
reason long "file name"
reason ctl "file name"

# the symlink: moved as a link, never opened through
links=$(find "$B" -type l -name '*.json')
eq "bad/ holds one symlink" "$(printf '%s\n' "$links" | grep -c .)" 1
if [ -n "$links" ]; then
  lid=$(basename "$links" .json)
  check "the moved entry is still a symlink (test -L)" test -L "$links"
  eq "it still points to /etc/passwd" "$(readlink "$links")" /etc/passwd
  check "symlink .err: \"not a regular file\"" grep -q 'not a regular file' "$B/$lid.err"
fi
fifos=$(find "$B" -type p -name '*.json')
eq "bad/ holds the FIFO" "$(printf '%s\n' "$fifos" | grep -c .)" 1
[ -n "$fifos" ] && check "FIFO .err: \"not a regular file\"" \
  grep -q 'not a regular file' "$B/$(basename "$fifos" .json).err"
eq "/etc/passwd unchanged" "$(cksum </etc/passwd)" "$passwd_sum"
copies=0
for f in "$B"/* "$T"/outbox/* "$T"/spool/done/* "$T"/spool/defer/*; do
  [ -f "$f" ] && [ ! -L "$f" ] && cmp -s "$f" /etc/passwd && copies=$((copies + 1))
done
eq "no regular file in the spool has /etc/passwd's content" "$copies" 0
check "no .err quotes /etc/passwd's first line" \
  sh -c "! grep -qF \"\$(head -n 1 /etc/passwd)\" '$B'/*.err"

# the directory: left where it was, untouched
check "the directory is still in new/" test -d "$N/adir"
eq "its content is untouched" "$(cat "$N/adir/keep.json" 2>/dev/null)" "inside a directory"

# ---- a second run changes nothing -------------------------------------------------------------
OUTREACH_NOW=$((NOW + 60)) timeout 30 "$OR" -c "$T/conf" run >/dev/null 2>&1; rc=$?
eq "second run: exit 0" "$rc" 0
eq "second run: still 3 messages" "$(ls "$T/outbox" | grep -c '\.eml$')" 3
eq "second run: bad/ unchanged" "$(ls "$B" | grep -c '\.json$')" 14

# ---- requeue bad after fixing the file by hand ------------------------------------------------
uid=$(idof unknown.json)
if [ -n "$uid" ]; then
  printf '%s' '{"client":"acme","to":"unknown@example.com","subject":"s","text":"fixed"}' >"$B/$uid.json"
  or requeue bad "$uid" >"$T/rq.out" 2>"$T/rq.err"; rc=$?
  eq "requeue bad ID: exit 0" "$rc" 0
  check "requeue: gone from bad/" test ! -e "$B/$uid.json"
  check "requeue: its .err is gone" test ! -e "$B/$uid.err"
  OUTREACH_NOW=$((NOW + 120)) timeout 30 "$OR" -c "$T/conf" run >/dev/null 2>"$T/run2.err"; rc=$?
  eq "run after requeue: exit 0" "$rc" 0
  eq "run after requeue: 4 messages" "$(ls "$T/outbox" | grep -c '\.eml$')" 4
  check "the fixed job reached unknown@example.com" grep -lq '^To: .*unknown@example.com' "$T"/outbox/*.eml
  eq "ledger: the fixed job is sent" \
     "$(q "SELECT count(*) FROM jobs WHERE rcpt = 'unknown@example.com' AND state = 'sent'")" 1
  eq "bad/ holds 13 now" "$(ls "$B" | grep -c '\.json$')" 13
else
  notok "requeue: the unknown-field job was not found in bad/"
fi
or requeue bad 0123456789abcdef >/dev/null 2>&1; rc=$?
check "requeue bad of an unknown id fails (exit $rc)" test "$rc" -ne 0

finish
