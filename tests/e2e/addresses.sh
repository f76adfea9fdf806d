#!/bin/sh
# tests/e2e/addresses.sh — addresses as a user sees them end to end:
#   an RFC 2047 encoded word in an addr-spec (RFC 2047 §5) is bad input in a
#   job, in `validate` and in the config's From (a reader that decodes it shows
#   another address than the one mail goes to);
#   the local part is sent as the producer wrote it (RFC 5321 §2.4: it is
#   case-sensitive), the domain lower-cased, while suppression and duplicates
#   compare case-insensitively.
# The SMTP envelope (RCPT TO as written) is checked in smtp.sh.
# san: yes
. "$(dirname "$0")/../lib.sh"

NOW=1796029200            # 2026-11-30T09:00:00Z, a Monday
export OUTREACH_NOW=$NOW
setup

# ---- encoded words: jobs --------------------------------------------------------------
for a in '=?utf-8?B?YWRtaW4=?=@example.org' '\"=?utf-8?B?YQ==?=\"@example.org' \
         'Admin <=?utf-8?Q?admin?=@example.org>'; do
  job "$a" >"$T/ew.json"
  or enqueue "$T/ew.json" >"$T/ew.out" 2>"$T/ew.err"; rc=$?
  eq "encoded word ($a): enqueue refuses it (exit 65)" "$rc" 65
  check "encoded word ($a): the error names the to field and encoded words" grep -q ": to: .*encoded words" "$T/ew.err"
done
eq "encoded words: nothing reached new/" "$(nfiles new)" 0
# a job dropped straight into new/ is judged bad at ingest, never sent
job '=?utf-8?B?YWRtaW4=?=@example.org' >"$T/spool/new/ew-drop.json"
or run 2>"$T/run.err"
eq "encoded word dropped into new/: judged bad" "$(nfiles bad)" 1
eq "encoded word dropped into new/: nothing sent" "$(ls "$T/outbox" 2>/dev/null | grep -c '\.eml$')" 0

# ---- encoded words: validate ----------------------------------------------------------
printf 'ok@example.org\n=?utf-8?B?YWRtaW4=?=@example.org\n"=?utf-8?B?YQ==?="@example.org\n' >"$T/list.txt"
or validate --json "$T/list.txt" >"$T/v.json" 2>"$T/v.err"
eq "validate: the plain address is ok" "$(sed -n 1p "$T/v.json" | grep -c '"verdict":"ok"')" 1
eq "validate: both encoded-word addresses are invalid (syntax)" \
  "$(grep -c '"verdict":"invalid","reasons":\["syntax"\]' "$T/v.json")" 2

# ---- encoded words: the config's From -------------------------------------------------
mkdir -p "$T/cf"
cat >"$T/cf/conf" <<'EOC'
spool = "spool";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "=?utf-8?B?YWRtaW4=?=@example.org"; provider = "dry"; } );
EOC
"$OR" -c "$T/cf/conf" check-config >"$T/cf/out" 2>&1; rc=$?
eq "config From with an encoded word: check-config exits 78" "$rc" 78
check "config From with an encoded word: the error says 'from' is not an address" grep -q "'from' is not an address" "$T/cf/out"

# ---- the local part as written --------------------------------------------------------
id=$(job 'John Smith <John.Smith@Example.ORG>' | or enqueue -)
or run 2>"$T/run2.err"
eq "mixed case: the job was sent" "$(q "SELECT state FROM jobs WHERE id = '$id'")" sent
eml=$T/outbox/$id.eml
check "mixed case: To keeps the local part as written, the domain lower-cased" \
  grep -q "^To: John Smith <John.Smith@example.org>" "$eml"
grep '^To:' "$eml" | sed 's/^/# /'
eq "mixed case: the ledger keeps the lower-cased key" "$(q "SELECT rcpt FROM jobs WHERE id = '$id'")" john.smith@example.org
# the same person in another case is the same job (no second mail)
id2=$(job 'JOHN.SMITH@example.org' | or enqueue -)
eq "another case of the address: the same job id (a duplicate)" "$id2" "$id"
# suppression compares case-insensitively
or suppress add MARY.Jones@Example.org >/dev/null 2>&1
id3=$(job 'Mary.Jones@EXAMPLE.org' | or enqueue -)
or run 2>"$T/run3.err"
eq "suppressed in another case: not sent" "$(q "SELECT state FROM jobs WHERE id = '$id3'")" suppressed
finish
