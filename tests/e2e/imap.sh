#!/bin/sh
# tests/e2e/imap.sh — reading a mailbox read-only, against a private Dovecot
# (tests/peers/dovecot.sh) whose Maildir the test writes itself:
#   mailbox-dump over STARTTLS (the test certificate as ca_file) lists each
#   message's UID and the header fields asked for, nothing else;
#   ABOVE_UID filters, and a cursor at or past the last UID prints nothing
#   (the n:* rule);
#   the user's mail is still unread afterwards: no file in cur/ gains the S
#   flag and new/ files stay in new/ (EXAMINE and BODY.PEEK only);
#   a wrong password exits 75 with one line naming the mailbox, and the
#   password in no output;
#   imaps (implicit TLS) works; a self-signed server without ca_file is
#   refused (verification is always on);
#   a folder recreated shows a new UIDVALIDITY;
#   a 300 KiB header field comes back cut at the bound, and the message after
#   it is still read; 250 messages are read across windows of 200 UIDs.
# san: yes
. "$(dirname "$0")/../lib.sh"

PEERS=$TESTS/peers
dovecot_up

printf 'secret\n' >"$T/pw"; printf 'wrong-pw-7731\n' >"$T/badpw"; chmod 600 "$T/pw" "$T/badpw"
mb() {   # mb NAME URL [KEYS]
  printf '  { name = "%s"; url = "%s"; username = "anna"; password_file = "pw"; %s },\n' "$1" "$2" "${3:-}"
}
cat >"$T/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; } );
mailboxes = (
$(mb anna "imap://127.0.0.1:$P/" 'ca_file = "dv/cert.pem"; timeout = 10;')
$(mb secure "imaps://127.0.0.1:$((P + 1))/" 'ca_file = "dv/cert.pem"; timeout = 10;')
$(mb noca "imaps://localhost:$((P + 1))/" 'timeout = 10;')
  { name = "wrong"; url = "imap://127.0.0.1:$P/"; username = "anna"; password_file = "badpw";
    ca_file = "dv/cert.pem"; timeout = 10; }
);
EOF
mno=0
# put DIR SUBDIR FLAGS SUBJECT: one message file, named by the Maildir rules
put() {
  mno=$((mno + 1))
  f=$1/$2/1796029$mno.M${mno}P$$.test${3:+:2,$3}
  [ "$2" = cur ] && [ -z "$3" ] && f=$f:2,
  printf 'Return-Path: <x@example.com>\r\nMessage-ID: <m%s@test>\r\nFrom: Lead %s <lead%s@example.com>\r\nX-Other: not asked for\r\nSubject: %s\r\n\r\nBODYTEXT %s\r\n' \
    "$mno" "$mno" "$mno" "$4" "$mno" >"$1/tmp/msg" && mv "$1/tmp/msg" "$f"
}
dump() { or mailbox-dump "$@" >"$T/out" 2>"$T/err"; echo $? >"$T/rc"; }
uids() { grep '^uid=' "$T/out" | sed 's/ bytes=.*//' | tr '\n' ' '; }

# ---- STARTTLS: the messages, their UIDs and the fields asked for ---------------------------
# one at a time, so Dovecot gives them UIDs 1, 2, 3 in this order
put "$MD" new "" "first"; dump anna INBOX
put "$MD" cur "" "second"; dump anna INBOX
put "$MD" cur F "third"; dump anna INBOX
eq "STARTTLS: exit 0" "$(cat "$T/rc")" 0
V=$(sed -n '1s/.*uidvalidity=\([0-9]*\).*/\1/p' "$T/out")
check "the first line gives the folder's numbers" grep -qx "folder=INBOX uidvalidity=$V uidnext=4 exists=3" "$T/out"
eq "three messages, UIDs in order" "$(uids)" "uid=1 uid=2 uid=3 "
check "each with its fields" grep -qx '  Subject: second' "$T/out"
check "Message-ID" grep -qx '  Message-ID: <m3@test>' "$T/out"
check "From and Return-Path" sh -c "grep -qx '  From: Lead 1 <lead1@example.com>' '$T/out' &&
  grep -qx '  Return-Path: <x@example.com>' '$T/out'"
check "no field that was not asked for, no body" sh -c "! grep -q 'X-Other\|BODYTEXT' '$T/out'"
before=$(cd "$MD" && ls new cur)

# ---- ABOVE_UID, and the n:* rule -----------------------------------------------------------
dump anna INBOX 1
eq "ABOVE_UID 1: UIDs 2 and 3" "$(uids)" "uid=2 uid=3 "
dump anna INBOX 3
eq "ABOVE_UID 3 (the last): nothing, exit 0" "$(cat "$T/rc"):$(uids)" "0:"
dump anna INBOX 7
eq "ABOVE_UID 7 (past the last): nothing" "$(cat "$T/rc"):$(uids)" "0:"

# ---- still unread ---------------------------------------------------------------------------
eq "the Maildir's file names are unchanged (nothing moved, no flag added)" "$(cd "$MD" && ls new cur)" "$before"
check "no file in cur/ is marked seen" sh -c "! ls '$MD/cur' | grep -q ':2,[A-Z]*S'"
eq "the new/ message is still new" "$(ls "$MD/new" | wc -l)" 1

# ---- a wrong password -----------------------------------------------------------------------
dump wrong INBOX
eq "a wrong password: exit 75" "$(cat "$T/rc")" 75
eq "one line on stderr" "$(wc -l <"$T/err")" 1
check "it names the mailbox and says why" grep -q 'mailbox wrong: login refused' "$T/err"
check "no password in any output" sh -c "! cat '$T/out' '$T/err' | grep -q 'wrong-pw-7731\|secret'"

# ---- imaps; no ca_file ----------------------------------------------------------------------
dump secure INBOX
eq "imaps: exit 0 and the same messages" "$(cat "$T/rc"):$(uids)" "0:uid=1 uid=2 uid=3 "
dump noca INBOX
eq "a self-signed server without ca_file: exit 75" "$(cat "$T/rc")" 75
check "refused for its certificate" grep -qi 'mailbox noca: TLS refused.*certificate' "$T/err"
check "and nothing listed" test ! -s "$T/out"

# ---- UIDVALIDITY: a folder recreated ---------------------------------------------------------
L=$(sh "$PEERS/dovecot.sh" maildir "$DV" anna Later)
put "$L" new "" "later one"; dump anna Later
V1=$(sed -n '1s/.*uidvalidity=\([0-9]*\).*/\1/p' "$T/out")
rm -rf "$L"
L=$(sh "$PEERS/dovecot.sh" maildir "$DV" anna Later)
put "$L" new "" "later two"; dump anna Later
V2=$(sed -n '1s/.*uidvalidity=\([0-9]*\).*/\1/p' "$T/out")
check "a recreated folder has a new UIDVALIDITY ($V1, then $V2)" test -n "$V1" -a -n "$V2" -a "$V1" != "$V2"
check "and its message again as uid 1" grep -qx '  Subject: later two' "$T/out"

# ---- a 300 KiB header field; 250 messages across windows --------------------------------------
B=$(sh "$PEERS/dovecot.sh" maildir "$DV" anna Big)
{ printf 'Message-ID: <big@test>\r\nSubject: '; head -c 307200 /dev/zero | tr '\0' x; printf '\r\n\r\nbody\r\n'; } \
  >"$B/tmp/big" && mv "$B/tmp/big" "$B/new/1796028000.M1P1.big"
dump anna Big
put "$B" new "" "after the big one"; dump anna Big
eq "the 300 KiB field: exit 0, both messages" "$(cat "$T/rc"):$(uids)" "0:uid=1 uid=2 "
check "the big one cut at 64 KiB" grep -qx 'uid=1 bytes=65536' "$T/out"
check "its Message-ID, before the big field, read" grep -qx '  Message-ID: <big@test>' "$T/out"
check "the message after it read whole" grep -qx '  Subject: after the big one' "$T/out"

M=$(sh "$PEERS/dovecot.sh" maildir "$DV" anna Many)
i=0
while [ $i -lt 250 ]; do
  i=$((i + 1))
  printf 'Message-ID: <many%s@test>\r\nSubject: many %s\r\n\r\nx\r\n' $i $i >"$M/tmp/m" &&
    mv "$M/tmp/m" "$M/new/1796027000.M${i}P1.many"
done
dump anna Many
eq "250 messages: exit 0, 250 listed" "$(cat "$T/rc"):$(grep -c '^uid=' "$T/out")" 0:250
[ "$(cat "$T/rc")" = 0 ] || sed 's/^/#   /' "$T/err"
eq "each message-id once" "$(grep -c '  Message-ID: <many[0-9]*@test>' "$T/out"):$(grep '  Message-ID' "$T/out" | sort -u | wc -l)" 250:250
dump anna Many 199
eq "above 199: UIDs 200..250 (a window edge)" \
  "$(grep -c '^uid=' "$T/out"):$(grep '^uid=' "$T/out" | sed -n '1s/ .*//p;$s/ .*//p' | tr '\n' ' ')" "51:uid=200 uid=250 "
finish
