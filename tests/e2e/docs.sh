#!/bin/sh
# The man page, README and sample config stay true to the code.
# san: no
. "$(dirname "$0")/../lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
"$OR" help >"$T/help"
# every command word of `help` has its own entry (a .B/.BR line) in the man page
groff -man -Tascii -P -cbou "$root/outreach.1" >"$T/man.txt" 2>/dev/null
for c in $(sed -n 's/^  \([a-z-]*\).*/\1/p' "$T/help" | sort -u); do
  if grep -q "^       $c\b" "$T/man.txt"; then ok "man page documents '$c'"; else notok "man page documents '$c'"; fi
done
out=$(groff -man -ww -z "$root/outreach.1" 2>&1)
eq "man page renders without warnings" "$out" ""
check "sample config is valid" "$OR" -c "$root/conf/outreach.conf" check-config
check "demo config is valid" "$OR" -c "$root/conf/demo.conf" check-config
grep -q 'make test' "$root/README.md" && ok "README gives the test command" || notok "README gives the test command"
# every key the sample config uses is accepted (check-config passed) and every
# top-level key the program knows is shown in the sample config
for k in spool state report_dir timezone rotation in_doubt retention_days job_max_bytes run retry health providers senders clients; do
  grep -q "^#* *$k *=" "$root/conf/outreach.conf" && ok "sample config shows '$k'" || notok "sample config shows '$k'"
done
# the project carries its own contract: every "design.md §N" names doc/design.md and a
# section it has, and no tracked file points outside the repository (the patterns are
# written so that this file does not match itself)
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$root" ls-files -z | (cd "$root" && xargs -0 grep -IHnE '(^|[^/])design\.md|doc/design\.md( §[0-9]+)(, §[0-9]+)*') >"$T/cites" 2>/dev/null
  bare=$(grep -E '(^|[^/])design\.md' "$T/cites" | grep -v 'doc/design\.md' | head -3)
  eq "every design.md citation names doc/design.md" "$bare" ""
  for n in $(grep -oE 'doc/design\.md( §[0-9]+)(, §[0-9]+)*' "$T/cites" | grep -oE '[0-9]+' | sort -un); do
    grep -q "^## $n\. " "$root/doc/design.md" && ok "doc/design.md has the cited §$n" || notok "doc/design.md has the cited §$n"
  done
  outside=$(git -C "$root" ls-files -z | (cd "$root" && xargs -0 grep -IlE '\.\./share[d]|/wor[k]/') | head -3)
  eq "no tracked file names a folder beside the repository or a path of the build machine" "$outside" ""
else
  ok "# skip citation checks: $root is not a git checkout"
fi
# the restore steps name the database files as SQLite names them (state.db, state.db-wal, state.db-shm)
restore=$(sed -n '/\*\*Restore\*\*/,/requeue/p' "$root/README.md")
check "README restore: names state.db-wal and state.db-shm" sh -c "printf '%s' \"\$1\" | grep -q 'state.db-wal' && printf '%s' \"\$1\" | grep -q 'state.db-shm'" - "$restore"
check "README restore: no file named state-wal or state-shm" sh -c "! printf '%s' \"\$1\" | grep -q 'state-wal\|state-shm'" - "$restore"
# the job window is documented in README and the man page, and their example is a valid job
for doc in README man; do
  f=$root/README.md; [ $doc = man ] && f=$T/man.txt
  w=$(grep -o '"window": {[^}]*}\|^ *{"days": [^}]*}' "$f" | head -1 | sed 's/^ *//; s/^"window": //')
  check "$doc documents the window keys days, hours, tz" sh -c "grep -q 'Fri-Mon' '$f' && grep -q '22:00-06:00' '$f' && [ -n '$w' ]"
  printf '{"client":"acme","to":"a@example.com","subject":"s","text":"t","window":%s}\n' "$w" >"$T/w.json"
  check "$doc's window example is a valid job ($w)" "$OR" -c "$root/conf/outreach.conf" enqueue --dry-run "$T/w.json"
done
# README's key list is the program's key table as `check-config --keys` prints it: a key
# added to one and not the other (or a default, bound or type changed in one) fails here
"$OR" -c "$root/conf/outreach.conf" check-config --keys >"$T/keys" 2>&1
sed -n '/^<!-- outreach check-config --keys -->$/,/^```$/p' "$root/README.md" | sed '1,2d;$d' >"$T/readme-keys"
check "check-config --keys lists the key table" grep -q '^providers\[\]\.rate  *number ' "$T/keys"
eq "README's key list is what check-config --keys prints" "$(diff "$T/readme-keys" "$T/keys")" ""
# main's command table (listed by the hidden `outreach commands`, one "NAME NEEDS" line per
# command), usage() (--help) and the man page's COMMANDS entries name the same commands: a
# usage line or a .TP tag gives one word, or two as "pause|resume" or "version | help"
words() { sed -n 's/^\([a-z|-]*\)\( *| *\([a-z-]*\)\)\{0,1\}.*/\1|\3/p' | tr '|' '\n' | grep . | sort -u; }
"$OR" commands >"$T/cmd.out" 2>&1; rc=$?
cut -d' ' -f1 "$T/cmd.out" | sort -u >"$T/cmd.table"
"$OR" --help | sed -n 's/^  \([a-z]\)/\1/p' | words >"$T/cmd.help"
sed -n '/^\.SH COMMANDS/,/^\.SH /{/^\.TP/{n;p;};}' "$root/outreach.1" |
  sed 's/\\f[BIRP]//g; s/\\-/-/g; s/"//g; s/^\.BR* //' | words >"$T/cmd.man"
check "outreach commands lists the command table (exit 0, 20 or more)" sh -c "[ $rc = 0 ] && [ \$(wc -l <'$T/cmd.table') -ge 20 ]"
eq "every command of the table is in --help" "$(comm -23 "$T/cmd.table" "$T/cmd.help" | tr '\n' ' ')" ""
eq "every command of --help is in the table" "$(comm -13 "$T/cmd.table" "$T/cmd.help" | tr '\n' ' ')" ""
eq "every command of the table has its entry in outreach.1" "$(comm -23 "$T/cmd.table" "$T/cmd.man" | tr '\n' ' ')" ""
eq "every command entry of outreach.1 is in the table" "$(comm -13 "$T/cmd.table" "$T/cmd.man" | tr '\n' ' ')" ""
# doc/store.md: the ledger is reached only through the store.  Outside the STORE sections
# and the JSON section (the in-memory connection) no line calls sqlite3_* or the store's
# statement helpers; the job state changes in one statement; every operation in outreach.h
# is on the map; the header has one block per section of outreach.c, in the file's order.
awk '/^\/\* =+$/ { getline; s = $0; next }
     s !~ /^ \* (STORE|JSON)/ && /sqlite3_|or_q\(|or_q_at\(|or_step\(|or_col\(|or_q_int\(|or_q_double\(|or_q_done\(|or_exec\(|or_begin\(|or_commit\(|[^_]or_db\>/ {
       print NR ": " $0 }' "$root/outreach.c" >"$T/outside"
eq "no sqlite3_* call or ledger statement outside the STORE and JSON sections" "$(head -3 "$T/outside")" ""
# (one per store: SQLite's or_job_move and PostgreSQL's or_pg_job_move, each checking or_transitions)
awk '/^(OR_STATIC |static )?[a-z].*[ *]or_[a-z_]*\(/ { fn = $0; sub(/\(.*/, "", fn); sub(/.*[ *]/, "", fn) }
     /UPDATE jobs SET state/ { print fn }' "$root/outreach.c" | sort | tr '\n' ' ' >"$T/movers"
eq "one UPDATE jobs SET state per store (the state machines': or_job_move, or_pg_job_move)" "$(cat "$T/movers")" \
  "or_job_move or_pg_job_move "
awk '/^\/\* =+$/ { getline; s = $0; next }
     s !~ /^ \* STORE/ && /PQ[A-Za-z]+\(|or_pg_must\(|or_pg_rows\(|or_pg_q\(|or_pg_run\(/ { print NR ": " $0 }' \
  "$root/outreach.c" >"$T/outside-pg"
eq "no libpq call or shared-ledger statement outside the STORE sections" "$(head -3 "$T/outside-pg")" ""
grep -o 'or_store_[a-z_]*(' "$root/outreach.h" | tr -d '(' | sort -u >"$T/ops.h"
grep -o 'or_store_[a-z][a-z_]*' "$root/doc/store.md" | sort -u >"$T/ops.md"
eq "every store operation of outreach.h is on doc/store.md's map" "$(comm -23 "$T/ops.h" "$T/ops.md" | tr '\n' ' ')" ""
eq "every operation on doc/store.md's map is in outreach.h" "$(comm -13 "$T/ops.h" "$T/ops.md" | tr '\n' ' ')" ""
awk '/^\/\* =+$/ { getline; sub(/^ \* /, ""); print }' "$root/outreach.c" >"$T/sec.c"
# (the header's type blocks are headed in lower case; its prototype blocks carry the sections' names)
sed -n 's|^/\* ---- \([A-Z].*\) ---- \*/$|\1|p' "$root/outreach.h" >"$T/sec.h"
eq "outreach.h has one block per section of outreach.c, in the file's order" "$(diff "$T/sec.c" "$T/sec.h" | head -5)" ""
finish
