#!/bin/sh
# tests/e2e/pg.sh — the PostgreSQL store's foundation against a real
# PostgreSQL 15 (tests/peers/postgres.sh: a private cluster on a loopback port,
# started here as an unprivileged user):
#   the store group's checks, each one line with file:line and exit 78: a
#   password inline in conninfo, a host off this machine without
#   sslmode=verify-full, a lease shorter than the largest provider timeout + 30
#   (the minimum named), PostgreSQL keys in a sqlite store, an unknown type, a
#   password_file others may read, a bad host_name, a conninfo libpq cannot parse;
#   check-config shows the store, never the password;
#   six hosts' init at once on an empty database: all exit 0, the schema is
#   made once (one version row, this outreach's version), six hosts rows with the key's
#   sha256, each spool's key the given one (mode 600), no SQLite ledger beside;
#   init again changes nothing but last_seen;
#   a host without the ledger's key, or with another one, is refused (78, the
#   first host named) and not registered; init --key refuses a key file others
#   may read, one that is not 32 bytes, and one that differs from the spool's
#   key (which stays);
#   a ledger whose schema is newer than this outreach is refused (74) and left
#   alone;
#   check-config --online: the primary, the schema, every host with whether its
#   key is this spool's (exit 0), a spool with another key sees them differ and
#   itself unregistered (exit 1), a database that is down is one line (exit 1);
#   a wrong password exits 78 without printing it; a database that is down
#   exits 75 (temporary); the same init works once it is back;
#   commands not yet built on this store (leads, lead, engagement) refuse
#   with one line and exit 78, touching nothing: a job enqueued stays in new/
#   (tests/e2e/pg-ingest.sh takes it from there);
#   a config without a store group never calls into libpq (the dynamic
#   linker's bindings), while a PostgreSQL one does.
# san: yes
. "$(dirname "$0")/../lib.sh"

PGS=$TESTS/peers/postgres.sh
pg_up
port=$pg_port ci=$pg_ci
sql() { pgsql "$1"; }
lines() { printf '%s\n' "$1" | grep -c .; }
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
hconf() { pg_host "$@"; }
h() { ph "$@"; }

# --- the store group's checks ----------------------------------------------------------
# refused NAME STORE_GROUP WANT [PROVIDER_EXTRA]: check-config exits 78 with one line
# naming the config's line 5 (the store group) and saying WANT
refused() {
  mkdir -p "$T/bad"
  cat >"$T/bad/conf" <<EOF
spool = "spool";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; ${4:-} } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; } );

store = { $2 };
EOF
  out=$("$OR" -c "$T/bad/conf" check-config 2>&1); rc=$?
  if [ $rc -eq 78 ] && [ "$(lines "$out")" = 1 ] && printf '%s' "$out" | grep -q "conf:5: .*$3"; then ok "refused: $1"
  else notok "refused: $1" "rc=$rc out=$out"; fi
}
printf 'secret\n' >"$T/open-pw"; chmod 644 "$T/open-pw"
refused "a password inline in conninfo" "type = \"postgresql\"; conninfo = \"$ci password=secret\";" "never inline"
refused "a host off this machine without verify-full" "type = \"postgresql\"; conninfo = \"host=db.example.com,127.0.0.1 sslmode=require\";" "sslmode=verify-full"
refused "a lease shorter than the largest timeout + 30" "type = \"postgresql\"; conninfo = \"$ci\"; lease = 60;" "at least 75" "timeout = 45;"
refused "a PostgreSQL key in a sqlite store" "type = \"sqlite\"; conninfo = \"$ci\";" "only for type"
refused "an unknown store type" "type = \"mysql\";" "must be"
refused "a password_file others may read" "type = \"postgresql\"; conninfo = \"$ci\"; password_file = \"$T/open-pw\";" "chmod 600"
refused "a host_name with a space" "type = \"postgresql\"; conninfo = \"$ci\"; host_name = \"a b\";" "host_name"
refused "a conninfo libpq cannot parse" "type = \"postgresql\"; conninfo = \"host='unterminated\";" "unterminated"
mkdir -p "$T/ok"
cat >"$T/ok/conf" <<EOF
spool = "spool";
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; } );
store = { type = "postgresql"; conninfo = "host=db1.example.com,db2.example.com sslmode=verify-full"; password_file = "../pw"; };
EOF
out=$("$OR" -c "$T/ok/conf" check-config 2>&1); rc=$?
eq "check-config: remote hosts with verify-full pass" "$rc" 0
if printf '%s' "$out" | grep -q "^store postgresql: host $(hostname), lease 180 s, .*password from password_file $T/ok/../pw" &&
   ! printf '%s' "$out" | grep -q secret; then ok "check-config: the store, the host name by default, not the password"
else notok "check-config: the store, the host name by default, not the password" "$out"; fi

# --- six hosts' init at once ---------------------------------------------------------------
for n in 1 2 3 4 5 6; do hconf "h$n"; done
for n in 1 2 3 4 5 6; do (h "h$n" init --key "$T/key" >"$T/h$n.out" 2>&1; echo $? >"$T/h$n.rc") & done
wait
rcs=$(cat "$T"/h[1-6].rc | tr '\n' ' ')
eq "six inits at once: all exit 0" "$rcs" "0 0 0 0 0 0 "
[ "$rcs" = "0 0 0 0 0 0 " ] || cat "$T"/h[1-6].out | sed 's/^/#   /'
# the schema version this outreach writes, as check-config --online says it
want=$(h h1 check-config --online 2>/dev/null | sed -n 's/^online store: schema .*(this outreach: \([0-9]*\)).*/\1/p')
eq "the schema is made once: one version row, this outreach's version ($want)" \
  "$(sql 'SELECT count(*), max(version) FROM outreach_schema')" "1|${want:-?}"
sha=$(sha256sum "$T/key" | cut -d' ' -f1)
eq "six hosts, each with the key's sha256" "$(sql "SELECT count(*), count(*) FILTER (WHERE key_sha256 = '$sha') FROM hosts")" "6|6"
same=0; for n in 1 2 3 4 5 6; do cmp -s "$T/key" "$T/h$n/spool/key" && [ "$(stat -c %a "$T/h$n/spool/key")" = 600 ] && same=$((same + 1)); done
eq "each spool's key is the given one, mode 600" "$same" 6
eq "no SQLite ledger beside a PostgreSQL one" "$(ls "$T"/h*/spool/state.db 2>/dev/null | wc -l)" 0
check "init made the spool's folders" test -d "$T/h1/spool/new" -a -d "$T/h1/spool/run" -a -d "$T/h1/reports"

before=$(sql "SELECT first_seen, last_seen FROM hosts WHERE name = 'h1'")
h h1 init; rc=$?
after=$(sql "SELECT first_seen, last_seen FROM hosts WHERE name = 'h1'")
eq "init again: exit 0" "$rc" 0
if [ "${before%|*}" = "${after%|*}" ] && [ "${after#*|}" \> "${before#*|}" ]; then ok "init again: first_seen kept, last_seen later"
else notok "init again: first_seen kept, last_seen later" "before=$before after=$after"; fi
eq "init again: still six hosts, one schema row" "$(sql 'SELECT (SELECT count(*) FROM hosts), (SELECT count(*) FROM outreach_schema)')" "6|1"

# --- the key: one for all hosts -------------------------------------------------------------------
hconf nokey
out=$(h nokey init 2>&1); rc=$?
if [ $rc -eq 78 ] && [ "$(lines "$out")" = 1 ] && printf '%s' "$out" | grep -q "copy h[1-6]'s SPOOL/key"; then
  ok "a host without the ledger's key is refused, a host to copy it from named"
else notok "a host without the ledger's key is refused, a host to copy it from named" "rc=$rc $out"; fi
check "... and gets no key of its own" test ! -e "$T/nokey/spool/key"
eq "... and is not registered" "$(sql "SELECT count(*) FROM hosts WHERE name = 'nokey'")" 0
hconf other
head -c 32 /dev/urandom >"$T/other-key"; chmod 600 "$T/other-key"
h other init --key "$T/other-key" >/dev/null 2>&1
out=$(h other init 2>&1); rc=$?
if [ $rc -eq 78 ] && printf '%s' "$out" | grep -q "differs from host h[1-6]'s key"; then ok "a host with another key is refused"
else notok "a host with another key is refused" "rc=$rc $out"; fi
eq "... and is not registered" "$(sql "SELECT count(*) FROM hosts WHERE name = 'other'")" 0
out=$(h other init --key "$T/key" 2>&1); rc=$?
if [ $rc -eq 78 ] && printf '%s' "$out" | grep -q "exists and differs" && cmp -s "$T/other-key" "$T/other/spool/key"; then
  ok "init --key never replaces a spool's key"
else notok "init --key never replaces a spool's key" "rc=$rc $out"; fi
cp "$T/key" "$T/open-key"; chmod 644 "$T/open-key"
out=$(h nokey init --key "$T/open-key" 2>&1); rc=$?
if [ $rc -eq 78 ] && printf '%s' "$out" | grep -q "chmod 600"; then ok "init --key refuses a key file others may read"
else notok "init --key refuses a key file others may read" "rc=$rc $out"; fi
head -c 31 "$T/key" >"$T/short-key"; chmod 600 "$T/short-key"
out=$(h nokey init --key "$T/short-key" 2>&1); rc=$?
if [ $rc -eq 78 ] && printf '%s' "$out" | grep -q "not a 32-byte key"; then ok "init --key refuses a key that is not 32 bytes"
else notok "init --key refuses a key that is not 32 bytes" "rc=$rc $out"; fi
h nokey init --key "$T/key"; rc=$?
eq "init --key with the ledger's key registers the host" "$rc:$(sql "SELECT count(*) FROM hosts WHERE name = 'nokey'")" "0:1"

# --- check-config --online: the server, the schema, the hosts and their keys ---------------------------------
out=$(h h1 check-config --online 2>&1); rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "^online store: PostgreSQL 15.* at 127.0.0.1:$port, the primary" &&
   printf '%s' "$out" | grep -q "^online store: schema $want (this outreach: $want)$" &&
   [ "$(printf '%s\n' "$out" | grep -c "^online store: host h[1-6].*key the same as this spool's")" = 6 ] &&
   printf '%s' "$out" | grep -q "^online store: host h1 (this host): outreach "; then
  ok "check-config --online: the primary, the schema, six hosts with this spool's key (exit 0)"
else notok "check-config --online: the primary, the schema, six hosts with this spool's key (exit 0)" "rc=$rc $out"; fi
out=$(h other check-config --online 2>&1); rc=$?
if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q "^online store: host h1: .*key DIFFERS" &&
   printf '%s' "$out" | grep -q "^online store: this host (other) is not registered"; then
  ok "check-config --online: a spool with another key sees every host's differ, and itself unregistered (exit 1)"
else notok "check-config --online: a spool with another key sees every host's differ, and itself unregistered (exit 1)" "rc=$rc $out"; fi

# --- a newer schema ----------------------------------------------------------------------------
sql "UPDATE outreach_schema SET version = 99"
out=$(h h2 init 2>&1); rc=$?
if [ $rc -eq 74 ] && [ "$(lines "$out")" = 1 ] && printf '%s' "$out" | grep -q "version 99, newer than this outreach's ($want)"; then
  ok "a newer schema is refused (74, one line)"
else notok "a newer schema is refused (74, one line)" "rc=$rc $out"; fi
eq "... and left alone" "$(sql 'SELECT version FROM outreach_schema')" 99
sql "UPDATE outreach_schema SET version = $want"

# --- the connection: a wrong password, a database down ----------------------------------------------
printf 'wrong-pw-5521\n' >"$T/pw"
out=$(h h3 init 2>&1); rc=$?
if [ $rc -eq 78 ] && [ "$(lines "$out")" = 1 ] && printf '%s' "$out" | grep -q "password authentication failed" &&
   ! printf '%s' "$out" | grep -q wrong-pw-5521; then ok "a wrong password: 78, one line, the password not in it"
else notok "a wrong password: 78, one line, the password not in it" "rc=$rc $out"; fi
printf 'secret\n' >"$T/pw"
sh "$PGS" stop "$T/db"
out=$(h h3 init 2>&1); rc=$?
if [ $rc -eq 75 ] && [ "$(lines "$out")" = 1 ] && printf '%s' "$out" | grep -q "temporary"; then ok "a database that is down: 75, one line"
else notok "a database that is down: 75, one line" "rc=$rc $out"; fi
out=$(h h3 check-config --online 2>&1); rc=$?
if [ $rc -eq 1 ] && [ "$(printf '%s\n' "$out" | grep -c '^online store:')" = 1 ] &&
   printf '%s' "$out" | grep -q "^online store: .*Connection refused"; then ok "check-config --online with the database down: one line, exit 1"
else notok "check-config --online with the database down: one line, exit 1" "rc=$rc $out"; fi
sh "$PGS" start "$T/db" "$port" >"$T/db.out" 2>&1 || notok "PostgreSQL starts again" "$(tail -5 "$T/db.out")"
h h3 init; eq "the same init once it is back" "$?" 0

# --- commands not built on this store yet -------------------------------------------------------------
printf '{"to": "lead@example.org", "subject": "Hi", "text": "Hello", "client": "acme"}\n' >"$T/job.json"
id=$(h h1 enqueue "$T/job.json" 2>"$T/enq.err"); rc=$?
eq "enqueue drops the job into new/ as on any store" "$rc:$(ls "$T/h1/spool/new" | grep -c '\.json$')" "0:1"
all=1
for c in leads engagement "lead show x@example.org"; do
  out=$(h h1 $c 2>&1); rc=$?
  if [ $rc -ne 78 ] || [ "$(lines "$out")" != 1 ] || ! printf '%s' "$out" | grep -q "not built on it yet"; then
    all=0; notok "'$c' on the PostgreSQL store refuses with one line" "rc=$rc $out"
  fi
done
[ $all = 1 ] && ok "leads, engagement, lead refuse: 78, one line each"
eq "... touching nothing: the job is still in new/, no ledger file, nothing sent" \
  "$(ls "$T/h1/spool/new" | grep -c '\.json$'):$(ls "$T/h1/spool/state.db" 2>/dev/null | wc -l):$(ls "$T/h1/outbox" 2>/dev/null | wc -l)" "1:0:0"

# --- libpq stays untouched without a store group --------------------------------------------------------
if readelf -d "$OR" 2>/dev/null | grep -q -E 'BIND_NOW|FLAGS.*NOW'; then
  echo "# $OR is linked BIND_NOW: the dynamic linker cannot tell which libpq calls are made"
else
  setup
  n=$(LD_DEBUG=bindings "$OR" -c "$T/conf" run 2>&1 | grep -c "binding file $OR \[0\] to [^ ]*libpq")
  eq "a config without a store group: no call into libpq (run)" "$n" 0
  n=$(LD_DEBUG=bindings "$OR" -c "$T/h1/conf" init 2>&1 | grep -c "binding file $OR \[0\] to [^ ]*libpq")
  if [ "$n" -gt 0 ]; then ok "... while a PostgreSQL config does call it (the probe sees calls)"
  else notok "... while a PostgreSQL config does call it (the probe sees calls)" "n=$n"; fi
fi
exit $nfail
