#!/bin/sh
# tests/peers/postgres.sh — a private PostgreSQL (Debian 12: postgresql-15) on
# loopback for the PostgreSQL store's tests:
#
#   postgres.sh port             a free loopback port
#   postgres.sh start DIR PORT   initdb into DIR/data (once), then a server on
#                                127.0.0.1:PORT and a Unix socket in DIR/sock;
#                                role "outreach" (password "secret", scram-sha-256
#                                on TCP) owns the database "outreach"
#   postgres.sh stop DIR         stop it (fast) and wait until it has exited
#   postgres.sh kill DIR         stop it at once (immediate: as a crash would)
#   postgres.sh sql DIR SQL      run SQL as the superuser over the socket; rows
#                                unaligned, fields separated by '|'
#   postgres.sh standby DIR PORT PRIMARY_DIR
#                                a streaming standby of the server in PRIMARY_DIR
#                                (pg_basebackup -R -X stream), on PORT, made the
#                                primary's synchronous standby: every commit there
#                                waits for it
#   postgres.sh promote DIR      promote a standby and wait until it takes writes
#
# start returns when the server takes connections (pg_isready, a condition,
# never a fixed sleep), or 1 after 30 s with the log's tail.  The cluster has
# fsync off (a test's data is thrown away; the store's own durability is
# PostgreSQL's business) and logs to DIR/log.
#
# Privileges: initdb and the server refuse root, so as root they run as the
# user postgres (made by the postgresql-common package), DIR belongs to it
# and DIR's parent is made searchable by others (o+x).  Unprivileged,
# everything runs as the invoking user.  No system cluster is touched: .ci/run
# installs the packages without one.
set -u
cmd=${1:-} dir=${2:-}
if [ "$cmd" = port ]; then
  exec python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
fi
[ -n "$dir" ] || { echo "usage: postgres.sh port | start DIR PORT | stop DIR | kill DIR | sql DIR SQL | standby DIR PORT PRIMARY_DIR | promote DIR" >&2; exit 64; }
[ -d "$dir" ] && dir=$(cd "$dir" && pwd)
bin=$(pg_config --bindir 2>/dev/null)
[ -x "$bin/initdb" ] || bin=/usr/lib/postgresql/15/bin
[ -x "$bin/initdb" ] || { echo "postgres.sh: initdb not found (apt-get install postgresql-15)" >&2; exit 69; }

# as_pg CMD...: CMD as the cluster's owner
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# serve: the server in $dir/data started on $port, waited for until it takes
# connections (pg_isready: a condition, at most 30 s); its port into $dir/port
serve() {
  as_pg "$bin/pg_ctl" -D "$dir/data" -o "-p $port" -l "$dir/log" start >/dev/null 2>&1 &
  i=0
  until as_pg "$bin/pg_isready" -q -h "$dir/sock" -p "$port"; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then echo "postgres.sh: not ready after 30 s"; tail -20 "$dir/log"; return 1; fi
    sleep 0.1
  done
  wait
  echo "$port" >"$dir/port"
}

case $cmd in
start)
  port=${3:?port}
  mkdir -p "$dir" || exit 1
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$dir" && chmod o+x "$(dirname "$dir")" || exit 1
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { tail -5 "$dir/initdb.log"; exit 1; }
    as_pg mkdir -p "$dir/sock"
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
fsync = off
synchronous_commit = on
max_connections = 40
shared_buffers = 16MB
deadlock_timeout = 200ms
log_min_messages = warning
EOF
    fresh=1
  else
    fresh=0
  fi
  serve || exit 1
  if [ $fresh = 1 ]; then
    as_pg "$bin/psql" -qX -h "$dir/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE outreach LOGIN PASSWORD 'secret'" -c "CREATE DATABASE outreach OWNER outreach" >/dev/null || exit 1
  fi
  ;;
standby)
  port=${3:?port} from=$(cd "${4:?primary dir}" && pwd)
  mkdir -p "$dir" || exit 1
  dir=$(cd "$dir" && pwd)
  [ "$(id -u)" -eq 0 ] && { chown postgres "$dir" || exit 1; }
  as_pg "$bin/pg_basebackup" -h "$from/sock" -p "$(cat "$from/port")" -U postgres -D "$dir/data" -R -X stream --checkpoint=fast \
    >"$dir/basebackup.log" 2>&1 || { tail -5 "$dir/basebackup.log"; exit 1; }
  as_pg mkdir -p "$dir/sock"
  echo "unix_socket_directories = '$dir/sock'" | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
  serve || exit 1
  as_pg "$bin/psql" -qAtX -h "$from/sock" -p "$(cat "$from/port")" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "ALTER SYSTEM SET synchronous_standby_names = '*'" -c "SELECT pg_reload_conf()" >/dev/null || exit 1
  # synchronous once the primary says so (a condition)
  i=0
  until [ "$(as_pg "$bin/psql" -qAtX -h "$from/sock" -p "$(cat "$from/port")" -U postgres -d postgres \
            -c "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")" = 1 ]; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then echo "postgres.sh: the standby is not synchronous after 30 s"; exit 1; fi
    sleep 0.1
  done
  ;;
promote)
  as_pg "$bin/pg_ctl" -D "$dir/data" -w promote >/dev/null 2>&1 || exit 1
  i=0
  until [ "$(as_pg "$bin/psql" -qAtX -h "$dir/sock" -p "$(cat "$dir/port")" -U postgres -d postgres \
            -c "SELECT pg_is_in_recovery()")" = f ]; do
    i=$((i + 1)); [ $i -gt 300 ] && exit 1; sleep 0.1
  done
  ;;
stop|kill)
  [ -f "$dir/data/postmaster.pid" ] || exit 0
  mode=fast; [ "$cmd" = kill ] && mode=immediate
  as_pg "$bin/pg_ctl" -D "$dir/data" -m $mode -w stop >/dev/null 2>&1
  ;;
sql)
  as_pg "$bin/psql" -qAtX -h "$dir/sock" -p "$(cat "$dir/port")" -U postgres -d outreach -v ON_ERROR_STOP=1 -c "$3"
  ;;
*)
  echo "usage: postgres.sh port | start DIR PORT | stop DIR | kill DIR | sql DIR SQL | standby DIR PORT PRIMARY_DIR | promote DIR" >&2; exit 64
  ;;
esac
