#!/bin/sh
# tests/peers/dovecot.sh — a private Dovecot (Debian 12: dovecot-imapd) on
# loopback for the IMAP tests:
#
#   dovecot.sh start DIR PORT [oauth2 KEYFILE]
#                               IMAP (STARTTLS) on 127.0.0.1:PORT, imaps on PORT+1
#   dovecot.sh stop DIR         stop it and wait until it has exited
#   dovecot.sh ports            a free loopback port P with P+1 free too
#   dovecot.sh maildir DIR USER [FOLDER]
#                               make USER's Maildir (or its .FOLDER) with new/ cur/
#                               tmp/ owned by the mail user; prints its path
#
# start writes DIR/dovecot.conf, a self-signed certificate DIR/cert.pem (CN
# localhost, SAN DNS:localhost and IP:127.0.0.1; the tests use it as ca_file)
# with its key DIR/key.pem, and runs `dovecot -F` in the background (pid in
# DIR/dovecot.pid, its output in DIR/dovecot.out, its log in DIR/dovecot.log).
# It returns when the server greets on both ports (a condition, never a fixed
# sleep), or 1 after 15 s with the log's tail.  Every user logs in with the
# password "secret"; user U's mail is the Maildir DIR/mail/U/Maildir, which the
# tests write themselves (files in new/ and cur/ are visible to IMAP at once).
#
# With `oauth2 KEYFILE` (KEYFILE: one line, an HMAC key in base64) the server
# also takes SASL XOAUTH2 and OAUTHBEARER: Dovecot's oauth2 passdb validates
# the bearer token itself (introspection_mode = local, no HTTP), as a JWT
# signed HS256 with that key; the user is its "sub" claim, which must match
# the user logging in, and it must carry "exp" (not past).  The JWT's header
# has no "kid" and its claims no "azp": Dovecot looks the key up as
# default/HS256/default in the dict DIR/oauth2-keys/ (fs:posix), where start
# copies it.  PLAIN and LOGIN still take "secret".  Without it nothing changes.
#
# Privileges: as root, Dovecot's processes run as its own users (dovecot,
# dovenull, made by the package) and the mail as the user dovecot too (Dovecot
# refuses uid 0 for mail), so the Maildir's folders must belong to it (make
# them with `maildir`; root may then write message files into them) and DIR
# and its parent are made searchable by others (o+x).
# Unprivileged it needs nothing more: every process, and the mail, run as the
# invoking user (default_internal_user and default_login_user are set to it)
# and the ports must be above 1023.
set -u
cmd=${1:-} dir=${2:-}
# dovecot.sh ports: a free loopback port P whose P+1 is free too (IMAP, imaps)
if [ "$cmd" = ports ]; then
  exec python3 -c 'import socket
while True:
    a, b = socket.socket(), socket.socket()
    a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    try:
        b.bind(("127.0.0.1", p + 1))
    except OSError:
        continue
    print(p); break'
fi
[ -n "$dir" ] || { echo "usage: dovecot.sh ports | start DIR PORT [oauth2 KEYFILE] | stop DIR | maildir DIR USER [FOLDER]" >&2; exit 64; }

# greets HOST PORT TLS: 0 when the port answers with an IMAP greeting
greets() {
  python3 - "$1" "$2" "$3" <<'EOF' 2>/dev/null
import socket, ssl, sys
host, port, tls = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
s = socket.create_connection((host, port), timeout=2)
if tls:
    c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
    s = c.wrap_socket(s)
sys.exit(0 if s.recv(200).startswith(b"* OK") else 1)
EOF
}

# mail_ids: uid and gid the mail is read as (see Privileges above)
mail_ids() {
  if [ "$(id -u)" -eq 0 ]; then uid=$(id -u dovecot) gid=$(id -g dovecot); else uid=$(id -u) gid=$(id -g); fi
}

maildir() {
  mail_ids
  md=$dir/mail/$1/Maildir
  [ -n "${2:-}" ] && [ "$2" != INBOX ] && md=$md/.$2
  mkdir -p "$md/new" "$md/cur" "$md/tmp" || exit 1
  chown "$uid:$gid" "$dir/mail" "$dir/mail/$1" "$dir/mail/$1/Maildir" "$md" "$md/new" "$md/cur" "$md/tmp" || exit 1
  (cd "$md" && pwd)
}

start() {
  port=$1 oauth2key=${2:-}
  mkdir -p "$dir/run" "$dir/mail" "$dir/home" || exit 1
  mail_ids
  chown "$uid:$gid" "$dir/mail" "$dir/home" || exit 1
  # as root the mail is read as dovecot, which must reach DIR through its
  # parent (a mktemp -d folder is 0700): both become searchable, no more
  [ "$(id -u)" -eq 0 ] && { chmod o+x "$dir" "$(dirname "$dir")" || exit 1; }
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/cert.pem" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
      -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
      -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 || { echo "openssl failed" >&2; exit 1; }
  me=$(id -un)
  mail_ids
  mechs="plain login" oauth2= staticmechs=
  if [ -n "$oauth2key" ]; then
    # the key where the auth process (the internal user) reads it, no one else
    mkdir -p "$dir/oauth2-keys/default/HS256" || exit 1
    (umask 077 && tr -d ' \t\r\n' <"$oauth2key" >"$dir/oauth2-keys/default/HS256/default") || exit 1
    [ -s "$dir/oauth2-keys/default/HS256/default" ] || { echo "no key in $oauth2key" >&2; exit 1; }
    chown -R "$uid:$gid" "$dir/oauth2-keys" || exit 1
    chmod 700 "$dir/oauth2-keys" "$dir/oauth2-keys/default" "$dir/oauth2-keys/default/HS256" || exit 1
    cat >"$dir/oauth2.conf.ext" <<EOF
introspection_mode = local
local_validation_key_dict = fs:posix:prefix=$dir/oauth2-keys/
username_attribute = sub
EOF
    mechs="plain login xoauth2 oauthbearer"
    # the mechanisms pass the token to the passdbs as the password: the static
    # one must not see them, or a token "secret" would log in
    staticmechs="
  mechanisms = plain login"
    oauth2="passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $dir/oauth2.conf.ext
}"
  fi
  if [ "$(id -u)" -eq 0 ]; then
    users="default_internal_user = dovecot
default_login_user = dovenull"
  else
    # unprivileged: no chroot (it needs root), every process as the invoking user
    users="default_internal_user = $me
default_internal_group = $(id -gn)
default_login_user = $me
service anvil {
  chroot =
}
service imap-login {
  chroot =
}"
  fi
  cat >"$dir/dovecot.conf" <<EOF
base_dir = $dir/run
state_dir = $dir/run/state
log_path = $dir/dovecot.log
protocols = imap
listen = 127.0.0.1
$users
first_valid_uid = $uid
last_valid_uid = 0
first_valid_gid = $gid
ssl = yes
ssl_cert = <$dir/cert.pem
ssl_key = <$dir/key.pem
disable_plaintext_auth = no
auth_mechanisms = $mechs
mail_location = maildir:$dir/mail/%u/Maildir
$oauth2
passdb {
  driver = static
  args = password=secret$staticmechs
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$dir/home/%u
}
service imap-login {
  inet_listener imap {
    port = $port
  }
  inet_listener imaps {
    port = $((port + 1))
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
EOF
  dovecot -F -c "$dir/dovecot.conf" >"$dir/dovecot.out" 2>&1 &
  echo $! >"$dir/dovecot.pid"
  i=0
  until greets 127.0.0.1 "$port" 0 && greets 127.0.0.1 $((port + 1)) 1; do
    i=$((i + 1))
    if [ $i -ge 150 ] || ! kill -0 "$(cat "$dir/dovecot.pid")" 2>/dev/null; then
      echo "dovecot did not start:" >&2
      tail -n 5 "$dir/dovecot.out" "$dir/dovecot.log" >&2 2>/dev/null
      return 1
    fi
    sleep 0.1
  done
}

stop() {
  [ -f "$dir/dovecot.pid" ] || return 0
  pid=$(cat "$dir/dovecot.pid")
  kill "$pid" 2>/dev/null
  i=0
  while kill -0 "$pid" 2>/dev/null; do       # the master waits for its children
    i=$((i + 1))
    [ $i -eq 100 ] && kill -9 "$pid" 2>/dev/null
    [ $i -ge 150 ] && { echo "dovecot $pid did not exit" >&2; return 1; }
    sleep 0.1
  done
  rm -f "$dir/dovecot.pid"
}

case $cmd in
start)
  [ -n "${3:-}" ] && { [ $# -eq 3 ] || { [ $# -eq 5 ] && [ "$4" = oauth2 ] && [ -n "$5" ]; }; } ||
    { echo "usage: dovecot.sh start DIR PORT [oauth2 KEYFILE]" >&2; exit 64; }
  start "$3" "${5:-}" ;;
stop) stop ;;
maildir) [ -n "${3:-}" ] || { echo "usage: dovecot.sh maildir DIR USER [FOLDER]" >&2; exit 64; }; maildir "$3" "${4:-}" ;;
*) echo "usage: dovecot.sh start DIR PORT [oauth2 KEYFILE] | stop DIR | maildir DIR USER [FOLDER]" >&2; exit 64 ;;
esac
