#!/bin/sh
# tests/e2e/xoauth2.sh — a mailbox that logs in with SASL XOAUTH2, its bearer
# token from token_command, against a private Dovecot in its OAuth2 mode
# (tests/peers/dovecot.sh start ... oauth2 KEYFILE: the oauth2 passdb checks
# the token locally as an HS256 JWT signed with the test's key, no HTTP):
#   a token_command printing a token Dovecot accepts lets mailbox-dump list
#   the messages, and Dovecot saw an XOAUTH2 login (not a password);
#   a token Dovecot refuses (a JWT signed with another key; the word
#   "secret", which would pass the static passdb if XOAUTH2 reached it) exits
#   75 with one line naming the mailbox;
#   a token_command that exits 1, even after printing the good token, exits
#   75 saying the command failed, and its output is not used;
#   no token (nor the SASL message carrying it) in any stdout or stderr;
#   PLAIN with the password still works beside it.
# san: yes
. "$(dirname "$0")/../lib.sh"

PEERS=$TESTS/peers

# the issuer's key (Dovecot gets a copy) and another, for a forged token
key() { (umask 077 && python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())' >"$1"); }
key "$T/key"; key "$T/otherkey"
# mint KEYFILE SUB: a JWT {"alg":"HS256"} {"sub":SUB,"iat":now,"exp":now+1h}
mint() {
  python3 - "$1" "$2" <<'EOF'
import base64, hashlib, hmac, json, sys, time
key = base64.b64decode(open(sys.argv[1]).read().strip())
enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
part = lambda d: enc(json.dumps(d, separators=(",", ":")).encode())
now = int(time.time())
m = part({"alg": "HS256", "typ": "JWT"}) + b"." + part({"sub": sys.argv[2], "iat": now, "exp": now + 3600})
print((m + b"." + enc(hmac.new(key, m, hashlib.sha256).digest())).decode())
EOF
}
GOOD=$(mint "$T/key" anna)
FORGED=$(mint "$T/otherkey" anna)
[ -n "$GOOD" ] && [ -n "$FORGED" ] || { notok "tokens minted"; finish; }

dovecot_up oauth2 "$T/key"
check "XOAUTH2 in its config" grep -q '^auth_mechanisms = .*xoauth2' "$DV/dovecot.conf"
for i in 1 2; do
  printf 'Message-ID: <x%s@test>\r\nFrom: Lead %s <lead%s@example.com>\r\nSubject: reply %s\r\n\r\nbody\r\n' \
    $i $i $i $i >"$MD/tmp/m" && mv "$MD/tmp/m" "$MD/new/179602900$i.M${i}P1.test"
done

# cmd NAME EXIT [TOKEN]: an executable $T/NAME (mode 700) printing TOKEN, exiting EXIT
cmd() {
  { echo '#!/bin/sh'; [ -n "${3:-}" ] && echo "printf '%s\\n' '$3'"; echo "exit $2"; } >"$T/$1" && chmod 700 "$T/$1"
}
cmd good 0 "$GOOD"
cmd forged 0 "$FORGED"
cmd word 0 secret
cmd fails 1 "$GOOD"
printf 'secret\n' >"$T/pw"; chmod 600 "$T/pw"
mb() {   # mb NAME KEYS [,]
  printf '  { name = "%s"; url = "imap://127.0.0.1:%s/"; username = "anna"; %s ca_file = "dv/cert.pem"; timeout = 10; }%s\n' \
    "$1" "$P" "$2" "${3:-}"
}
cat >"$T/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; } );
mailboxes = (
$(mb oauth "token_command = [\"$T/good\"];" ,)
$(mb forged "token_command = [\"$T/forged\"];" ,)
$(mb word "token_command = [\"$T/word\"];" ,)
$(mb failing "token_command = [\"$T/fails\"];" ,)
$(mb pw 'password_file = "pw";')
);
EOF
# the SASL XOAUTH2 message carrying a token, as it goes on the wire
sasl() { printf 'user=anna\001auth=Bearer %s\001\001' "$1" | base64 -w0; }
# every output so far, to look for the tokens in
: >"$T/all"
dump() { or mailbox-dump "$@" >"$T/out" 2>"$T/err"; echo $? >"$T/rc"; cat "$T/out" "$T/err" >>"$T/all"; }
uids() { grep '^uid=' "$T/out" | sed 's/ bytes=.*//' | tr '\n' ' '; }
logins() { grep -c 'Login: user=<anna>, method=XOAUTH2' "$DV/dovecot.log"; }

# ---- the right token -------------------------------------------------------------------------
dump oauth INBOX
eq "XOAUTH2 with the token_command's token: exit 0" "$(cat "$T/rc")" 0
[ "$(cat "$T/rc")" = 0 ] || sed 's/^/#   /' "$T/err"
eq "both messages listed" "$(uids)" "uid=1 uid=2 "
check "with their fields" grep -qx '  Subject: reply 2' "$T/out"
check "nothing on stderr" test ! -s "$T/err"
check "Dovecot logged anna in by XOAUTH2" wait_for 5 grep -q 'Login: user=<anna>, method=XOAUTH2' "$DV/dovecot.log"
dump oauth INBOX 1
eq "again, above UID 1: UID 2 (a fresh token run per login)" "$(cat "$T/rc"):$(uids)" "0:uid=2 "

# ---- tokens Dovecot refuses -------------------------------------------------------------------
dump forged INBOX
eq "a JWT signed with another key: exit 75" "$(cat "$T/rc")" 75
eq "one line on stderr" "$(wc -l <"$T/err")" 1
check "it names the mailbox and says the login was refused" grep -q 'mailbox forged: login refused' "$T/err"
check "and nothing listed" test ! -s "$T/out"
dump word INBOX
eq "the bearer \"secret\" (the PLAIN password): exit 75" "$(cat "$T/rc")" 75
check "refused, one line" sh -c "[ \"\$(wc -l <'$T/err')\" -eq 1 ] && grep -q 'mailbox word: login refused' '$T/err'"

# ---- a token_command that fails ----------------------------------------------------------------
dump failing INBOX
eq "a token_command exiting 1: exit 75" "$(cat "$T/rc")" 75
eq "one line on stderr" "$(wc -l <"$T/err")" 1
check "it says the command failed" grep -q 'mailbox failing: token_command failed' "$T/err"
check "and nothing listed (what it printed is not used)" test ! -s "$T/out"

# ---- a password beside it ------------------------------------------------------------------------
dump pw INBOX
eq "PLAIN with the password: exit 0, the same messages" "$(cat "$T/rc"):$(uids)" "0:uid=1 uid=2 "

# ---- no token anywhere -----------------------------------------------------------------------------
# each token's claims and signature, its SASL message, and the word "secret"
# (the bearer and the password); the failure names which, never the value
leak=
for w in good:"$GOOD" forged:"$FORGED"; do
  t=${w#*:}
  for s in claims:"$(echo "$t" | cut -d. -f2)" signature:"$(echo "$t" | cut -d. -f3)" sasl:"$(sasl "$t")"; do
    grep -qF -- "${s#*:}" "$T/all" && leak="$leak ${w%%:*}'s ${s%%:*}"
  done
done
grep -q secret "$T/all" && leak="$leak secret"
eq "no token, nor its SASL message, in any stdout or stderr" "$leak" ""
check "the outputs were looked at" test -s "$T/all"
# the log is written apart from the logins: the last one (PLAIN) in it, the ones before are too
wait_for 5 grep -q 'Login: user=<anna>, method=PLAIN' "$DV/dovecot.log"
eq "Dovecot saw two XOAUTH2 logins, the 'oauth' runs' (none from the failed command's token)" "$(logins)" 2
finish
