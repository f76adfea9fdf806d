#!/bin/sh
# outreach benchmarks (issue "Fast at any size"); `make bench` builds ./outreach with
# -O2 -DNDEBUG and runs this.  Prints one table: per scenario the jobs, seconds, rate,
# CPU seconds per 1,000 jobs (user+sys of the outreach process alone, /usr/bin/time),
# peak RSS (/usr/bin/time %M), the target and PASS/MISS.  A miss never fails the script:
# benchmarks are not tests.  It exits non-zero only when it could not measure.
#
# Scenarios (sizes are multiplied by BENCH_SCALE):
#   throughput   50,000 jobs, one `run`, SendGrid-shaped provider, concurrency 64, against
#                nginx on loopback answering 202 + X-Message-Id as soon as it has read the
#                request body (see start_nginx).  The jobs are
#                ingested first by a run with the client paused (not timed here: see ingest),
#                then resumed; the timed run only sends.  Checked afterwards: every job
#                `sent` in the ledger, every file in done/, the sink saw exactly one request
#                per job.
#   durability   a small send run (2,000 jobs) under strace: fsync-family calls per send,
#                renames, journal mode.  Not proof of crash safety (tests/crashwalk.sh and
#                the crash suite are), but a build that stopped syncing shows here.
#   sequential   the same with concurrency = 1, for the ratio; its run gets --deadline
#                BENCH_SEQ_DEADLINE (300 s) so a slow build does not take an hour: the
#                rate is then over the jobs sent before it (the rest must still wait).
#   latency      5,000 jobs, concurrency 64, a sink answering after 100 ms, then the same
#                after 500 ms (nginx with the echo module's echo_sleep, else
#                tests/bench/sink.py; see slow_sink); the bounds are 64 / 0.1 s = 640 and
#                64 / 0.5 s = 128 sends/s, over the whole run (start-up and the last
#                answers' wait included), the target 95 % of them.
#   scheduled    50,000 jobs with not_before a day ahead (the agency's way: enqueue tonight,
#                send from 09:00), concurrency 64, same sink: one run ingests them (untimed),
#                the timed run starts when they are due.  The sends/s over each fifth of it
#                must stay flat (slowest fifth >= 50% of the fastest; the python sink on a
#                loaded machine is noisy): a claim that sorted every job sharing one next_due
#                made each send cost as much as the jobs still waiting (4,000: 62 .. 141/s).
#   pg           "two hosts on PostgreSQL": 20,000 jobs, half dropped on each of two hosts
#                (two configs and spools) sharing one private PostgreSQL 15 on loopback
#                (tests/peers/postgres.sh), ingested with the client paused (untimed), then
#                both hosts' runs at once against the fast sink, timed from the first start
#                to the last exit; then the same with a synchronous standby (every commit
#                waits for it).  Sends/s next to the SQLite throughput figure: this store is
#                for availability, one job at a time per host.  Checked: every job sent,
#                the sink saw one request per job.  Skipped (a note) on a build without
#                PG=1 or without postgresql-15.
#   rq           the design's own architecture for the ratio (doc/design.md's Redis + RQ +
#                requests): the same number of jobs as throughput, enqueued one RQ job per
#                email (untimed, as ingest is), then BENCH_RQ_WORKERS (3) RQ SimpleWorker
#                processes in burst mode POST each, SendGrid-shaped, to the same nginx sink
#                (tests/bench/rqbench.py).  Redis runs here, unprivileged, on a unix socket in
#                the temp dir, persistence off (RQ's cheapest setup), stopped after.  CPU is
#                the whole tree's (workers + redis-server) against outreach's alone; the row
#                prints both ratios (sends/s, CPU per 1,000).  Checked: every job finished,
#                none failed or left, the sink saw exactly one request per job.  In the
#                default run when redis-server, python3-rq and python3-requests are there or
#                install (Debian packages, as root, like nginx); otherwise skipped with a note.
#                Workers: 2, 3 and 4 gave the same rate within noise on 2 cores (~290/s at
#                3,000 jobs, loaded), 6 and 8 less and more CPU per send; hence 3.
#   replies      10,000 messages in a Maildir (tests/peers/dovecot.sh, Debian's Dovecot on
#                loopback, STARTTLS, written by tests/bench/maildir.py after a first pull
#                baselined the empty folder), one `pull --mailbox` reading them all; one in 50
#                answers a send by In-Reply-To (200 leads), the rest come from strangers.
#                Messages/s, CPU per 1,000 and the rate over each fifth (replies.at: the
#                windows commit as they go); checked: every message recorded once, every
#                lead replied.  Skipped (a note) without dovecot.
#   ingest       100,000 job files written straight into spool/new/ (tests/bench/gen.py),
#                not_before 180 days ahead so nothing is due; one run ingests them.
#   idle         that spool (100,000 waiting in defer/, none due): BENCH_REPEAT (20) cron
#                ticks, interleaved with `outreach version` (the floor of any process
#                linking these libraries) and a run over an empty spool; means of wall
#                time and peak RSS; then three more ticks under strace, counting their
#                fsync-family calls (target: none).
#
# Environment:
#   BENCH_SCALE=1      0.1 runs a tenth of every size (a quick check)
#   BENCH_ONLY="..."   a subset of: throughput pg rq durability sequential latency scheduled replies ingest idle
#   BENCH_RQ_WORKERS=3 the rq scenario's SimpleWorker processes
#   BENCH_RQ_PYTHON=/usr/bin/python3  the python with Debian's rq, redis and requests modules
#   BENCH_REPEAT=20    idle-tick rounds (after 2 warm-up rounds)
#   BENCH_KEEP=1       keep the temp dir (spools, configs, logs) and say where
#   BENCH_SEQ_DEADLINE=300  the sequential run's --deadline (virtual = wall seconds here)
#   BENCH_SINK_EARLY=1 the fast sink answers before reading the body (bare `return 202;`)
#   OUTREACH_BIN       the binary (default ./outreach at the repository root)
#   PYTHON             python3 (standard library only)
# The virtual clock (OUTREACH_NOW) is set for every outreach command; the sinks are started
# here on 127.0.0.1 and stopped on exit.  nginx (Debian nginx-light) and /usr/bin/time
# (Debian time) are installed with apt-get when missing and running as root; without
# nginx the fast sink is sink.py with no delay (then the sink may be the bottleneck).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BD=$ROOT/tests/bench
OR=${OUTREACH_BIN:-$ROOT/outreach}
PY=${PYTHON:-python3}
SCALE=${BENCH_SCALE:-1}
ONLY=${BENCH_ONLY:-throughput pg rq durability sequential latency scheduled replies ingest idle}
REPEAT=${BENCH_REPEAT:-20}
TIMEBIN=/usr/bin/time
T0=$(date +%s)
BASE=1796029200          # 2026-11-30T09:00:00Z, a Monday: the virtual clock's origin

say() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }
want() { case " $ONLY " in *" $1 "*) return 0;; esac; return 1; }
# sizes: scaled, at least 1
sz() { awk -v b="$1" -v s="$SCALE" 'BEGIN { n = int(b * s + 0.5); if (n < 1) n = 1; print n }'; }
calc() { awk "BEGIN { $1 }" </dev/null; }

[ -x "$OR" ] || die "no binary at $OR (make bench builds it)"
command -v "$PY" >/dev/null 2>&1 || die "python3 is needed"
command -v sqlite3 >/dev/null 2>&1 || say "sqlite3 missing: ledger checks skipped"
inst() {   # inst PACKAGE: apt-get install when root, quietly
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
	say "installing $1"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null 2>&1; }
}
[ -x $TIMEBIN ] || inst time || die "/usr/bin/time is needed (apt-get install time)"
NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null)
if [ -z "$NGINX" ] && { want throughput || want sequential || want durability || want rq; }; then
	inst nginx-light || inst nginx
	NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null)
fi
# rq: Debian's python3 (not a pyenv or venv one) with python3-rq and python3-requests, and
# redis-server; installed like nginx (root only); without them the scenario is skipped
RQPY=${BENCH_RQ_PYTHON:-/usr/bin/python3}
RQ_OFF=""
rq_ready() { command -v redis-server >/dev/null 2>&1 && "$RQPY" -c 'import redis, requests, rq' >/dev/null 2>&1; }
if want rq && ! rq_ready; then
	for p in redis-server python3-rq python3-requests; do inst "$p"; done
	rq_ready || RQ_OFF="redis-server, or python3-rq / python3-requests for $RQPY, missing (apt-get install redis-server python3-rq python3-requests)"
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/outreach-bench.XXXXXX") || die "mktemp failed"
PIDS=""
PGDIRS=""   # PostgreSQL servers started by pg_scn, stopped on exit
cleanup() {
	for x in $PGDIRS; do sh "$ROOT/tests/peers/postgres.sh" kill "$x" >/dev/null 2>&1; done
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
: >"$W/rows"
: >"$W/notes"
note() { echo "  $*" >>"$W/notes"; }

freeport() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
	"$PY" - "$1" <<'EOF'
import socket, sys, time
end = time.time() + 15
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
}

# ---- sinks -------------------------------------------------------------------------------
FAST_PORT=""; FAST_KIND=""; SLOW_PORT=""; NGINX_LOG=""
# The fast sink reads each request body before it answers, as SendGrid does (it parses the
# JSON first), with the echo module that Debian's nginx-light carries.  A bare
# `return 202;` answers as soon as the headers are in, before curl has sent the body; curl
# then finishes the upload and the transfer stalls (measured: ~45 ms a send at
# concurrency 1), which is a property of that sink, not of a provider.  Without the echo
# module (or with BENCH_SINK_EARLY=1) the sink is the bare `return 202;` and a note says so.
start_nginx() {
	FAST_PORT=$(freeport)
	echo_mod=$(ls /usr/lib/nginx/modules/ngx_http_echo_module.so 2>/dev/null)
	[ "${BENCH_SINK_EARLY:-0}" = 1 ] && echo_mod=""
	if [ -n "$echo_mod" ]; then
		load="load_module $echo_mod;"
		loc='echo_read_request_body; echo_status 202; add_header X-Message-Id $request_id always; echo -n "";'
		FAST_KIND=nginx
	else
		load=""
		loc='add_header X-Message-Id $request_id always; return 202;'
		FAST_KIND=nginx-early
		note "sink: nginx answers 202 before reading the request body (no echo module, or BENCH_SINK_EARLY=1): sends may stall"
	fi
	nginx_run "$W/nginx" "$FAST_PORT" "$load" "$loc" || FAST_KIND=""
	[ -n "$FAST_KIND" ] && NGINX_LOG=$W/nginx/access.log
}
# nginx_run DIR PORT LOAD LOCATION: an nginx on 127.0.0.1:PORT, its files in DIR, each
# request logged as "connection method uri status request_time"; waits for its port
nginx_run() {
	nd=$1
	mkdir -p "$nd/tmp"
	u=""; [ "$(id -u)" = 0 ] && u="user root;"
	cat >"$nd/nginx.conf" <<EOF
$3
daemon off;
master_process on;
worker_processes 2;
$u
error_log stderr;
pid $nd/nginx.pid;
events { worker_connections 1024; }
http {
  log_format bench '\$connection \$request_method \$uri \$status \$request_time';
  access_log $nd/access.log bench buffer=256k flush=1s;
  client_body_temp_path $nd/tmp/body;
  proxy_temp_path $nd/tmp/proxy;
  fastcgi_temp_path $nd/tmp/fastcgi;
  uwsgi_temp_path $nd/tmp/uwsgi;
  scgi_temp_path $nd/tmp/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_body_buffer_size 1m;
  client_max_body_size 2m;
  server {
    listen 127.0.0.1:$2 backlog=1024;
    location / { $4 }
  }
}
EOF
	"$NGINX" -e stderr -p "$nd" -c "$nd/nginx.conf" >"$nd/stderr" 2>&1 &
	PIDS="$PIDS $!"
	wait_port "$2" && return 0
	say "nginx did not start: $(head -3 "$nd/stderr")"
	return 1
}
# The latency sink: nginx answering DELAY seconds after it has read the body (the echo
# module's echo_sleep), else sink.py.  nginx is the peer of choice: sink.py (asyncio)
# answered 0.7 ms late at the median and 1.8 ms at p90 at 640 requests/s, and its own CPU
# competes with outreach's on 2 cores; nginx's answer times are in its log (SLOW_LOG).
SLOW_PORT=""; SLOW_KIND=""; SLOW_LOG=""
slow_sink() {
	echo_mod=$(ls /usr/lib/nginx/modules/ngx_http_echo_module.so 2>/dev/null)
	if [ -n "$NGINX" ] && [ -n "$echo_mod" ]; then
		SLOW_PORT=$(freeport)
		if nginx_run "$W/nginx-$SLOW_PORT" "$SLOW_PORT" "load_module $echo_mod;" \
		     "echo_read_request_body; echo_sleep $1; echo_status 202; add_header X-Message-Id \$request_id always; echo -n \"\";"; then
			SLOW_KIND=nginx; SLOW_LOG=$W/nginx-$SLOW_PORT/access.log; return 0
		fi
	fi
	start_pysink "$1"; SLOW_PORT=$PY_PORT; SLOW_KIND=sink.py; SLOW_LOG=""
}
start_pysink() {   # start_pysink DELAY: sets PY_PORT (not in a subshell: PIDS must be kept)
	PY_PORT=$(freeport)
	"$PY" "$BD/sink.py" "$PY_PORT" "$1" >"$W/sink-$PY_PORT.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_port "$PY_PORT" || die "sink.py did not start (see $W/sink-$PY_PORT.log)"
}
fast_sink() {
	[ -n "$FAST_KIND" ] && return 0
	[ -n "$NGINX" ] && start_nginx
	if [ -z "$FAST_KIND" ]; then
		say "nginx unavailable: the fast sink is sink.py (it may be the bottleneck)"
		start_pysink 0; FAST_PORT=$PY_PORT; FAST_KIND=python
	fi
	return 0
}
# sink_count PORT [AT_LEAST]: requests the sink on PORT has answered so far.  nginx
# writes its access log through a buffer flushed every second, so the count is read
# again until it reaches AT_LEAST (the ledger's sent count: each send is one request),
# for 5 s at most; then it is what the log holds.
nginx_posts() { awk '$2 == "POST" { n++ } END { print n + 0 }' "$1" 2>/dev/null || echo 0; }
sink_count() {
	lg=""
	[ "$1" = "$FAST_PORT" ] && lg=$NGINX_LOG
	[ "$1" = "$SLOW_PORT" ] && lg=$SLOW_LOG
	if [ -n "$lg" ]; then
		c=$(nginx_posts "$lg"); i=0
		while [ "$c" -lt "${2:-0}" ] && [ $i -lt 50 ]; do sleep 0.1; c=$(nginx_posts "$lg"); i=$((i + 1)); done
		echo "$c"
	else
		"$PY" -c 'import sys, urllib.request; print(urllib.request.urlopen("http://127.0.0.1:%s/_count" % sys.argv[1]).read().decode().strip())' "$1"
	fi
}
# distinct connections the nginx sink saw after line N of its log
sink_conns() {
	[ -n "$NGINX_LOG" ] || { echo "-"; return; }
	tail -n +"$(($1 + 1))" "$W/nginx/access.log" | awk '$2 == "POST" { c[$1] = 1 } END { n = 0; for (k in c) n++; print n }'
}

# ---- spools ------------------------------------------------------------------------------
# mkspool DIR PORT CONCURRENCY: a config (SendGrid-shaped account on the sink), key, init
mkspool() {
	mkdir -p "$1"
	printf 'SG.bench-key\n' >"$1/key"
	chmod 600 "$1/key"
	cat >"$1/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
run = { max_jobs = 100000; deadline = 3600; };
providers = ( { name = "sg"; type = "sendgrid"; endpoint = "http://127.0.0.1:$2"; allow_plaintext = true;
                api_key_file = "key"; concurrency = $3; feed = false; } );
senders = ( { name = "s1"; from = "Anna <anna@s1.example>"; provider = "sg"; daily_limit = 1000000; } );
EOF
	OUTREACH_NOW=$BASE "$OR" -c "$1/conf" init >"$1/init.log" 2>&1 || die "init failed in $1: $(cat "$1/init.log")"
}
orat() { d=$1; t=$2; shift 2; OUTREACH_NOW=$t "$OR" -c "$d/conf" "$@"; }
q() { sqlite3 -batch -noheader "$1/spool/state.db" "$2" 2>/dev/null || echo "?"; }
nfiles() { ls "$1/spool/$2" 2>/dev/null | awk '/\.json$/ { n++ } END { print n + 0 }'; }
gen() { "$PY" "$BD/gen.py" "$@" || die "gen.py failed"; }
# shq WORD...: the words quoted for measure.py (shlex)
shq() { for a; do printf "'%s' " "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"; done; }
# measure1 LOG NOW COMMAND...: one measured run; sets M_WALL (s), M_CPU (s), M_RSS (KiB), M_FAIL
measure1() {
	log=$1; now=$2; shift 2
	out=$("$PY" "$BD/measure.py" --now "$now" --log "$log" --case run "$(shq "$@")") || die "measure.py failed"
	set -- $out
	M_WALL=$(calc "printf \"%.3f\", $3 / 1000"); M_CPU=$(calc "printf \"%.3f\", $7 + $8")
	M_RSS=$9; M_FAIL=${11}
}
mib() { calc "printf \"%.1f MiB\", $1 / 1024"; }
row() { printf '%-30s %8s %11s %9s %9s %10s  %-30s %s\n' "$@" >>"$W/rows"; }
# phases of the last run from the ledger (the clock is virtual but runs on the real
# monotonic clock while nothing is paced, so the offsets are wall seconds)
phases() {
	command -v sqlite3 >/dev/null 2>&1 || { echo "?"; return; }
	sqlite3 -batch -noheader "$1/spool/state.db" "
	  WITH r AS (SELECT started_at s, ended_at e FROM runs ORDER BY rowid DESC LIMIT 1),
	       i AS (SELECT min(created_at) a, max(created_at) b FROM jobs, r WHERE created_at >= r.s),
	       t AS (SELECT min(at) a, max(at) b FROM attempts, r WHERE at >= r.s)
	  SELECT 'phases from run start: '
	    || CASE WHEN i.a IS NULL THEN 'no ingest' ELSE printf('ingest +%.2f..%.2f s', i.a - r.s, i.b - r.s) END
	    || CASE WHEN t.a IS NULL THEN ', no sends' ELSE printf(', sends +%.2f..%.2f s', t.a - r.s, t.b - r.s) END
	    || printf(', run row closed +%.2f s (reports after it)', r.e - r.s) FROM r, i, t" 2>/dev/null || echo "?"
}
# the send rate over each fifth of the last run's sends (a falling rate: a cost that grows
# with what the run has done, e.g. a count over today's slots per claim)
fifths() {
	command -v sqlite3 >/dev/null 2>&1 || { echo "?"; return; }
	sqlite3 -batch -noheader "$1/spool/state.db" "
	  WITH r AS (SELECT started_at s FROM runs ORDER BY rowid DESC LIMIT 1),
	       a AS (SELECT at, ntile(5) OVER (ORDER BY at) k FROM attempts, r WHERE at >= r.s),
	       f AS (SELECT k, count(*) n, min(at) a0, max(at) a1 FROM a GROUP BY k)
	  SELECT group_concat(CASE WHEN a1 > a0 THEN printf('%.0f', (n - 1) / (a1 - a0)) ELSE '-' END, ' ') FROM f" 2>/dev/null || echo "?"
}
states() { q "$1" "SELECT group_concat(state || '=' || n, ' ') FROM (SELECT state, count(*) n FROM jobs GROUP BY state)"; }

# ---- a send scenario -----------------------------------------------------------------------
# send_scn KEY LABEL N CONCURRENCY PORT [DEADLINE]  -> notes; sets S_* (S_OK: every job
# sent exactly once, or with DEADLINE every job sent before it, once, and the rest waiting)
send_scn() {
	key=$1; label=$2; n=$3; conc=$4; port=$5; dl=${6:-}
	d=$W/$key
	say "$label: $n jobs, concurrency $conc${dl:+, run --deadline $dl}"
	mkspool "$d" "$port" "$conc"
	gt=$(gen "$d/spool/new" "$n")
	orat "$d" $((BASE + 10)) pause --client bench --reason bench >/dev/null 2>&1 || die "pause failed"
	measure1 "$d/ingest.log" $((BASE + 60)) "$OR" -c "$d/conf" run
	pre_wall=$M_WALL
	orat "$d" $((BASE + 110)) resume --client bench >/dev/null 2>&1 || die "resume failed"
	before=$(sink_count "$port")
	lines0=0; [ -n "$NGINX_LOG" ] && [ "$port" = "$FAST_PORT" ] && lines0=$(cat "$W/nginx/access.log" 2>/dev/null | wc -l)
	measure1 "$d/run.log" $((BASE + 120)) "$OR" -c "$d/conf" run ${dl:+--deadline "$dl"}
	sent=$(q "$d" "SELECT count(*) FROM jobs WHERE state = 'sent'")
	case $sent in ''|*[!0-9]*) sent=0;; esac
	after=$(sink_count "$port" $((before + sent)))
	reqs=$((after - before))
	conns="-"; [ "$port" = "$FAST_PORT" ] && conns=$(sink_conns "$lines0")
	done_n=$(nfiles "$d" done)
	S_RATE=$(calc "printf \"%.1f\", $sent / $M_WALL")
	cpuk="-"; [ "$sent" -gt 0 ] && cpuk=$(calc "printf \"%.3f\", $M_CPU / $sent * 1000")
	S_OK=1
	[ "$done_n" = "$sent" ] && [ "$reqs" = "$sent" ] && [ "$M_FAIL" = 0 ] && [ "$sent" -gt 0 ] || S_OK=0
	if [ -z "$dl" ]; then [ "$sent" = "$n" ] || S_OK=0
	elif [ "$sent" != "$n" ]; then
		left=$(q "$d" "SELECT count(*) FROM jobs WHERE state != 'sent'")
		note "$label: capped by run --deadline $dl: $sent of $n sent, $left still waiting (the rate is over the $sent)"
		[ "$left" = $((n - sent)) ] || S_OK=0
	fi
	S_WALL=$M_WALL; S_CPU=$M_CPU; S_RSS=$M_RSS; S_N=$sent; S_CPUK=$cpuk
	note "$label: run ${M_WALL} s (${M_CPU} s CPU, exit failures $M_FAIL); ledger: $(states "$d"); done/ $done_n;" \
	     "sink got $reqs requests on $conns connections"
	note "$label: $(phases "$d"); sends/s over each fifth of them: $(fifths "$d")"
	note "$label: the untimed ingest run before it: ${pre_wall} s for $n files (gen.py wrote them in ${gt} s)"
	[ "$S_OK" = 1 ] || note "$label: NOT ALL SENT EXACTLY ONCE (sent $sent, done/ $done_n, sink $reqs, of $n, failed runs $M_FAIL): see $d/run.log"
}

# ---- header --------------------------------------------------------------------------------
{
	echo "outreach benchmark  $(date -u '+%Y-%m-%dT%H:%M:%SZ')  BENCH_SCALE=$SCALE"
	echo "binary: $OR ($("$OR" version 2>/dev/null)); source${OUTREACH_BIN:+ in $ROOT (OUTREACH_BIN is set: may differ)}: git $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet HEAD -- outreach.c outreach.h 2>/dev/null || echo ' + uncommitted changes'), outreach.c sha256 $(sha256sum "$ROOT/outreach.c" 2>/dev/null | cut -c1-12)"
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg) at start"
	awk -v n="$(nproc)" '$1 > n / 2 { print "WARNING: the machine is busy (load " $1 " on " n " CPUs): figures are pessimistic and noisy" }' /proc/loadavg
	echo "disk: 4 KiB append + fdatasync in $W: median/p90 $("$PY" "$BD/fsync.py" "$W" 200 | awk '{ print $1 "/" $2 }') us at start"
} >"$W/head"

# ---- throughput, durability probe, sequential ------------------------------------------------
NT=$(sz 50000)
if want throughput || want sequential || want durability || want rq; then fast_sink; fi
if want throughput; then
	send_scn tp "throughput (c=64)" "$NT" 64 "$FAST_PORT"
	TP_RATE=$S_RATE; TP_CPUK=$S_CPUK; TP_OK=$S_OK
	res=MISS; [ "$S_OK" = 1 ] && calc "exit !($S_RATE >= 5000)" && res=PASS
	[ "$S_OK" = 1 ] || res="MISS (not durable/once)"
	row "throughput (c=64, $FAST_KIND)" "$S_N" "$S_WALL" "$S_RATE" "$S_CPUK" "$(mib "$S_RSS")" ">= 5000 sends/s, all once" "$res"
fi
# ---- two hosts on PostgreSQL ------------------------------------------------------------------
# pg_scn KEY LABEL N STANDBY: two hosts (two configs and spools) on one private PostgreSQL 15 on
# loopback (tests/peers/postgres.sh), with STANDBY=1 a synchronous standby beside it (every
# commit waits for it); N/2 jobs dropped on each host, ingested with the client paused (untimed),
# then both hosts' runs at once, timed from the first start to the last exit; sets P_* (its
# folder is pd: orat and send_scn use d)
pg_scn() {
	key=$1; label=$2; n=$3; sb=$4
	pd=$W/$key; PGS=$ROOT/tests/peers/postgres.sh
	mkdir -p "$pd"; chmod o+x "$W" "$pd"
	port=$(sh "$PGS" port)
	sh "$PGS" start "$pd/db" "$port" >"$pd/db.log" 2>&1 || { note "$label: PostgreSQL did not start: $(tail -2 "$pd/db.log")"; return 1; }
	PGDIRS="$PGDIRS $pd/db"
	if [ "$sb" = 1 ]; then
		sport=$(sh "$PGS" port)
		sh "$PGS" standby "$pd/db2" "$sport" "$pd/db" >"$pd/db2.log" 2>&1 || { note "$label: the standby did not start: $(tail -2 "$pd/db2.log")"; return 1; }
		PGDIRS="$PGDIRS $pd/db2"
	fi
	printf 'secret\n' >"$pd/pw"; chmod 600 "$pd/pw"
	head -c 32 /dev/urandom >"$pd/spoolkey"; chmod 600 "$pd/spoolkey"
	half=$((n / 2))
	for h in hA hB; do   # mkspool's config, with the store group
		mkdir -p "$pd/$h"
		printf 'SG.bench-key\n' >"$pd/$h/key"; chmod 600 "$pd/$h/key"
		cat >"$pd/$h/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
run = { max_jobs = 100000; deadline = 3600; };
providers = ( { name = "sg"; type = "sendgrid"; endpoint = "http://127.0.0.1:$FAST_PORT"; allow_plaintext = true;
                api_key_file = "key"; feed = false; } );
senders = ( { name = "s1"; from = "Anna <anna@s1.example>"; provider = "sg"; daily_limit = 1000000; } );
store = { type = "postgresql"; conninfo = "host=127.0.0.1 port=$port dbname=outreach user=outreach";
          password_file = "../pw"; host_name = "$h"; lease = 180; };
EOF
		orat "$pd/$h" "$BASE" init --key "$pd/spoolkey" >"$pd/$h/init.log" 2>&1 || { note "$label: init failed: $(cat "$pd/$h/init.log")"; return 1; }
	done
	gen "$pd/hA/spool/new" "$half" --first 1 >/dev/null
	gen "$pd/hB/spool/new" $((n - half)) --first $((half + 1)) >/dev/null
	orat "$pd/hA" $((BASE + 10)) pause --client bench >/dev/null 2>&1 || die "$label: pause failed"
	for h in hA hB; do orat "$pd/$h" $((BASE + 60)) run >"$pd/$h/ingest.log" 2>&1 || die "$label: the ingest run failed"; done
	orat "$pd/hA" $((BASE + 110)) resume --client bench >/dev/null 2>&1 || die "$label: resume failed"
	before=$(sink_count "$FAST_PORT")
	t0=$("$PY" -c 'import time; print(time.monotonic())')
	ws=""
	for h in hA hB; do
		"$PY" "$BD/measure.py" --now $((BASE + 120)) --log "$pd/$h/run.log" --case run \
			"$(shq "$OR" -c "$pd/$h/conf" run --deadline 3000)" >"$pd/$h/m" &
		ws="$ws $!"
	done
	wait $ws   # these two only: the sinks run in the background too
	wall=$("$PY" -c 'import sys, time; print("%.3f" % (time.monotonic() - float(sys.argv[1])))' "$t0")
	cpu=$(cat "$pd/hA/m" "$pd/hB/m" | awk '{ c += $7 + $8 } END { printf "%.3f", c }')
	fails=$(cat "$pd/hA/m" "$pd/hB/m" | awk '{ f += $11 } END { print f }')
	rss=$(cat "$pd/hA/m" "$pd/hB/m" | awk '$10 > m { m = $10 } END { print m }')
	P_N=$(sh "$PGS" sql "$pd/db" "SELECT count(*) FROM jobs WHERE state = 'sent'")
	byhost=$(sh "$PGS" sql "$pd/db" "SELECT string_agg(host || ' ' || n, ', ' ORDER BY host) FROM (SELECT r.host, count(*) n FROM jobs j JOIN runs r ON r.id = j.run_id WHERE j.state = 'sent' GROUP BY r.host) s")
	fifths=$(sh "$PGS" sql "$pd/db" "WITH a AS (SELECT sent_at, ntile(5) OVER (ORDER BY sent_at) k FROM jobs WHERE state = 'sent'), f AS (SELECT k, count(*) n, min(sent_at) a0, max(sent_at) a1 FROM a GROUP BY k) SELECT string_agg(CASE WHEN a1 > a0 THEN round((n - 1) / (a1 - a0))::text ELSE '-' END, ' ' ORDER BY k) FROM f")
	reqs=$(($(sink_count "$FAST_PORT" $((before + P_N))) - before))
	P_WALL=$wall; P_RATE=$(calc "printf \"%.1f\", $P_N / $wall")
	P_CPUK="-"; [ "$P_N" -gt 0 ] && P_CPUK=$(calc "printf \"%.3f\", $cpu / $P_N * 1000")
	P_RSS=$rss; P_OK=1
	[ "$P_N" = "$n" ] && [ "$reqs" = "$n" ] && [ "$fails" = 0 ] || P_OK=0
	note "$label: both runs in $wall s ($cpu s CPU, failed runs $fails); sent $P_N of $n ($byhost); the sink got $reqs requests;" \
	     "sends/s over each fifth: $fifths"
	[ "$P_OK" = 1 ] || note "$label: NOT ALL SENT EXACTLY ONCE (sent $P_N, sink $reqs, of $n): see $pd/hA/run.log, $pd/hB/run.log"
	for x in $PGDIRS; do sh "$PGS" kill "$x" >/dev/null 2>&1; done
	PGDIRS=""
	return 0
}
NP=$(sz 20000)
if want pg && ! ldd "$OR" 2>/dev/null | grep -q libpq; then
	note "pg: skipped: $OR is not built with PostgreSQL (make bench PG=1)"
elif want pg && ! [ -x /usr/lib/postgresql/15/bin/initdb ] && ! command -v pg_config >/dev/null 2>&1; then
	note "pg: skipped: PostgreSQL 15 is not installed (apt-get install postgresql-15)"
elif want pg; then
	fast_sink
	for sb in 0 1; do
		lab="two hosts on PostgreSQL"; [ "$sb" = 1 ] && lab="$lab + sync standby"
		say "$lab: $NP jobs, half dropped on each host"
		pg_scn "pg$sb" "$lab" "$NP" "$sb" || continue
		res="-"; [ "$P_OK" = 1 ] || res="MISS (not all sent once)"
		[ -n "${TP_RATE:-}" ] && [ "$P_OK" = 1 ] && res="SQLite one host: ${TP_RATE}/s"
		row "$lab" "$P_N" "$P_WALL" "$P_RATE" "$P_CPUK" "$(mib "$P_RSS")" "(availability, not speed)" "$res"
	done
fi
# ---- the design's own architecture: Redis + RQ SimpleWorker + requests ---------------------------
if want rq && [ -n "$RQ_OFF" ]; then
	note "rq: skipped: $RQ_OFF"
elif want rq; then
	RW=${BENCH_RQ_WORKERS:-3}
	d=$W/rq; mkdir -p "$d"
	say "rq: $NT jobs, $RW SimpleWorkers, redis-server on a unix socket"
	redis-server --port 0 --unixsocket "$d/redis.sock" --unixsocketperm 700 --dir "$d" \
		--save '' --appendonly no --daemonize no --logfile "$d/redis.log" >/dev/null 2>&1 &
	RPID=$!; PIDS="$PIDS $RPID"
	i=0; while [ ! -S "$d/redis.sock" ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
	[ -S "$d/redis.sock" ] || die "redis-server did not start (see $d/redis.log)"
	before=$(sink_count "$FAST_PORT")
	out=$("$RQPY" "$BD/rqbench.py" "$d/redis.sock" "http://127.0.0.1:$FAST_PORT" "$NT" "$RW" 2>"$d/rq.log") ||
		die "rqbench.py failed: $(tail -3 "$d/rq.log")"
	rv=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
	kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null
	PIDS=$(for p in $PIDS; do [ "$p" = "$RPID" ] || printf '%s ' "$p"; done)
	read -r enq enqcpu wall wcpu rcpu fin failed left wrss rrss <<EOF
$out
EOF
	reqs=$(($(sink_count "$FAST_PORT" $((before + fin))) - before))
	rate=$(calc "printf \"%.1f\", $fin / $wall")
	cpu=$(calc "printf \"%.3f\", $wcpu + $rcpu")
	cpuk="-"; [ "$fin" -gt 0 ] && cpuk=$(calc "printf \"%.3f\", $cpu / $fin * 1000")
	ok=1; [ "$fin" = "$NT" ] && [ "$failed" = 0 ] && [ "$left" = 0 ] && [ "$reqs" = "$NT" ] || ok=0
	res="-"
	if [ "$ok" = 1 ] && [ -n "${TP_RATE:-}" ]; then
		x=$(calc "printf \"%.1f\", $TP_RATE / $rate")
		cx="-"; [ "$TP_CPUK" != "-" ] && cx=$(calc "printf \"%.1f\", $cpuk / $TP_CPUK")
		res=MISS; [ "$TP_OK" = 1 ] && calc "exit !($x >= 40)" && res=PASS
		res="$res (outreach ${x}x the sends/s, ${cx}x less CPU)"
		note "rq vs outreach: sends/s $TP_RATE vs $rate = ${x}x; CPU s per 1,000 sends $TP_CPUK (outreach alone) vs $cpuk (workers + redis) = ${cx}x"
	fi
	[ "$ok" = 1 ] || res="MISS (not all sent once: finished $fin, failed $failed, queued $left, sink $reqs, of $NT)"
	row "rq SimpleWorker (w=$RW, $FAST_KIND)" "$fin" "$wall" "$rate" "$cpuk" "$(mib $((wrss + rrss)))" "outreach >= 40x its sends/s" "$res"
	note "rq: Redis $rv on a unix socket, persistence off (no RDB, no AOF: no durability at all, its cheapest setup);" \
	     "$RW SimpleWorker processes (burst, log level WARNING), python3-rq $("$RQPY" -c 'import rq; print(rq.VERSION)'), one requests.Session each"
	note "rq: the untimed enqueue of $NT jobs: $enq s ($enqcpu CPU s, pipelined 1,000 a batch); drain $wall s: CPU workers $wcpu s + redis $rcpu s;" \
	     "peak RSS workers $(mib "$wrss") (sum) + redis $(mib "$rrss"); finished $fin, failed $failed, still queued $left; sink got $reqs requests"
fi
if want durability; then
	nd=$(sz 2000); [ "$nd" -gt "$NT" ] && nd=$NT
	d=$W/dur
	if command -v strace >/dev/null 2>&1; then
		say "durability probe: $nd jobs under strace"
		mkspool "$d" "$FAST_PORT" 64
		gen "$d/spool/new" "$nd" >/dev/null
		orat "$d" $((BASE + 10)) pause --client bench >/dev/null 2>&1
		orat "$d" $((BASE + 60)) run >/dev/null 2>&1
		orat "$d" $((BASE + 110)) resume --client bench >/dev/null 2>&1
		OUTREACH_NOW=$((BASE + 120)) strace -f -qq -c -o "$d/strace.txt" \
			-e trace=fsync,fdatasync,sync_file_range,syncfs,sync,msync,rename,renameat,renameat2 \
			"$OR" -c "$d/conf" run >"$d/run.log" 2>&1
		syncs=$(awk '$NF ~ /^(fsync|fdatasync|sync_file_range|syncfs|sync|msync)$/ { n += $4 } END { print n + 0 }' "$d/strace.txt")
		renames=$(awk '$NF ~ /^rename/ { n += $4 } END { print n + 0 }' "$d/strace.txt")
		sent=$(q "$d" "SELECT count(*) FROM jobs WHERE state = 'sent'")
		jm=$(q "$d" "PRAGMA journal_mode")
		per=$(calc "printf \"%.2f\", $syncs / $nd")
		res=PASS; [ "$syncs" -gt 0 ] && [ "$sent" = "$nd" ] || res=MISS
		row "durability probe (strace)" "$nd" "-" "-" "-" "-" "fsyncs > 0, all sent" "$res ($per fsync/send)"
		note "durability probe: $nd sends, $syncs fsync-family calls ($per per send), $renames renames, journal_mode=$jm, ledger $(states "$d")"
	else
		note "durability probe skipped: strace not installed"
	fi
fi
if want sequential; then
	send_scn seq "sequential (c=1)" "$NT" 1 "$FAST_PORT" "${BENCH_SEQ_DEADLINE:-300}"
	r="-"; [ -n "${TP_RATE:-}" ] && r="c=64 is $(calc "printf \"%.2f\", $TP_RATE / $S_RATE")x c=1"
	row "sequential (c=1, $FAST_KIND)" "$S_N" "$S_WALL" "$S_RATE" "$S_CPUK" "$(mib "$S_RSS")" "(reference)" "$r"
fi

# ---- latency hiding ----------------------------------------------------------------------------
if want latency; then
	for ms in 100 500; do
		slow_sink "$(calc "print $ms / 1000")"
		bound=$(calc "print 64 * 1000 / $ms")
		send_scn "lat$ms" "latency hiding $ms ms" "$(sz 5000)" 64 "$SLOW_PORT"
		pct=$(calc "printf \"%.1f\", $S_RATE / $bound * 100")
		res=MISS; [ "$S_OK" = 1 ] && calc "exit !($pct >= 95)" && res=PASS
		row "latency $ms ms (c=64, $SLOW_KIND)" "$S_N" "$S_WALL" "$S_RATE" "$S_CPUK" "$(mib "$S_RSS")" ">= 95% of $bound/s" "$res ($pct%)"
		[ -n "$SLOW_LOG" ] && note "latency hiding $ms ms: the sink (nginx echo_sleep) answered in" \
			"$(awk '$2 == "POST" { n++; s += $5; if ($5 > m) m = $5 } END { if (n) printf "%.2f ms on average, %.0f ms at most (its $request_time, 1 ms steps)", s / n * 1000, m * 1000 }' "$SLOW_LOG")"
	done
fi

# ---- scheduled ahead -----------------------------------------------------------------------------
if want scheduled; then
	fast_sink
	n=$(sz 50000); d=$W/sch
	say "scheduled: $n jobs with not_before a day ahead, sent once due"
	mkspool "$d" "$FAST_PORT" 64
	due=$((BASE + 86400))
	nb=$("$PY" -c "import datetime; print(datetime.datetime.fromtimestamp($due, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))")
	gen "$d/spool/new" "$n" --not-before "$nb" >/dev/null
	measure1 "$d/ingest.log" $((BASE + 60)) "$OR" -c "$d/conf" run
	waiting=$(q "$d" "SELECT count(*) FROM jobs WHERE state = 'waiting'")
	before=$(sink_count "$FAST_PORT")
	measure1 "$d/run.log" $((due + 60)) "$OR" -c "$d/conf" run
	sent=$(q "$d" "SELECT count(*) FROM jobs WHERE state = 'sent'")
	case $sent in ''|*[!0-9]*) sent=0;; esac
	reqs=$(($(sink_count "$FAST_PORT" $((before + sent))) - before))
	rate=$(calc "printf \"%.1f\", $sent / $M_WALL")
	cpuk="-"; [ "$sent" -gt 0 ] && cpuk=$(calc "printf \"%.3f\", $M_CPU / $sent * 1000")
	f=$(fifths "$d")
	flat=$(echo "$f" | awk '{ lo = hi = $1; for (i = 2; i <= NF; i++) { if ($i < lo) lo = $i; if ($i > hi) hi = $i }
	                          printf "%.0f", (hi > 0 ? lo / hi * 100 : 0) }')
	res=MISS; [ "$sent" = "$n" ] && [ "$reqs" = "$n" ] && [ "$waiting" = "$n" ] && [ "$M_FAIL" = 0 ] &&
		[ "$flat" -ge 50 ] && res=PASS
	row "scheduled (c=64, $FAST_KIND)" "$sent" "$M_WALL" "$rate" "$cpuk" "$(mib "$M_RSS")" "fifths flat (>= 50%)" "$res ($flat%)"
	note "scheduled: $waiting waiting after the ingest run; run at their not_before + 60 s: ${M_WALL} s (${M_CPU} s CPU);" \
	     "ledger $(states "$d"); sink got $reqs requests"
	note "scheduled: sends/s over each fifth of the run: $f (slowest fifth $flat% of the fastest)"
fi

# ---- replies: a pull of 10,000 messages --------------------------------------------------------
if want replies; then
	PATH=$PATH:/usr/sbin
	if ! command -v dovecot >/dev/null 2>&1; then
		note "replies: skipped (no dovecot: apt-get install dovecot-imapd)"
	else
		NR=$(sz 10000); NL=$(( NR / 50 > 0 ? NR / 50 : 1 ))
		d=$W/replies; DV=$d/dv; mkdir -p "$d"
		chmod o+x "$W"   # as root the mail is read as the user dovecot: it must reach DV
		port=$(sh "$ROOT/tests/peers/dovecot.sh" ports)
		sh "$ROOT/tests/peers/dovecot.sh" start "$DV" "$port" >"$d/dv.out" 2>&1 || die "replies: dovecot: $(tail -3 "$d/dv.out")"
		MD=$(sh "$ROOT/tests/peers/dovecot.sh" maildir "$DV" anna)
		printf 'secret\n' >"$d/pw"; chmod 600 "$d/pw"
		cat >"$d/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
run = { max_jobs = 100000; deadline = 3600; };
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "Anna <anna@s1.example>"; provider = "dry"; daily_limit = 1000000; mailbox = "anna"; } );
mailboxes = ( { name = "anna"; url = "imap://127.0.0.1:$port/"; username = "anna"; password_file = "pw";
                ca_file = "dv/cert.pem"; timeout = 60; } );
replies = { max_messages = 100000; };
EOF
		orat "$d" $BASE init >/dev/null 2>&1 || die "replies: init failed"
		"$PY" -c "import json
for i in range($NL):
    print(json.dumps({'client': 'acme', 'campaign': 'seq', 'to': 'lead%d@corp%d.example' % (i, i), 'subject': 'Hello',
                      'text': 'hi', 'sequence': {'steps': [{'after': '3d', 'text': 'bump'}]}}))" >"$d/jobs.jsonl"
		orat "$d" $BASE enqueue "$d/jobs.jsonl" >/dev/null && orat "$d" $BASE run >/dev/null 2>&1 || die "replies: the send run failed"
		q "$d" "SELECT rcpt || ' ' || message_id FROM jobs WHERE step = 1" >"$d/sent.txt"
		say "replies: writing $NR messages into the Maildir"
		"$PY" "$BD/maildir.py" "$MD" "$NR" "$d/sent.txt" || die "replies: maildir.py failed"
		say "replies: one pull of $NR messages"
		measure1 "$d/pull.log" $((BASE + 3600)) "$OR" -c "$d/conf" pull --mailbox anna
		sh "$ROOT/tests/peers/dovecot.sh" stop "$DV" >/dev/null 2>&1
		got=$(q "$d" "SELECT count(*) FROM replies"); rep=$(q "$d" "SELECT count(*) FROM leads WHERE state = 'replied'")
		rate=$(calc "printf \"%.0f\", $got / $M_WALL"); cpuk=$(calc "printf \"%.3f\", $M_CPU / ($got > 0 ? $got : 1) * 1000")
		f=$(q "$d" "WITH a AS (SELECT at, ntile(5) OVER (ORDER BY at, id) k FROM replies),
		             g AS (SELECT k, count(*) n, min(at) a0, max(at) a1 FROM a GROUP BY k)
		           SELECT group_concat(CASE WHEN a1 > a0 THEN printf('%.0f', (n - 1) / (a1 - a0)) ELSE '-' END, ' ') FROM g")
		res=MISS; [ "$got" = "$NR" ] && [ "$rep" = "$NL" ] && [ "$M_FAIL" = 0 ] && res=PASS
		row "replies (pull, Dovecot)" "$got" "$M_WALL" "$rate" "$cpuk" "$(mib "$M_RSS")" "all read, $NL leads replied" "$res"
		note "replies: pull of $NR messages ${M_WALL} s (${M_CPU} s CPU), $got recorded, $rep of $NL leads replied;" \
		     "messages/s over each fifth (by commit time): $f"
	fi
fi

# ---- ingest ------------------------------------------------------------------------------------
NI=$(sz 100000)
NB=$("$PY" -c "import datetime, sys; print(datetime.datetime.fromtimestamp($BASE + 180 * 86400, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))")
ING=$W/ing
ingest_spool() {   # the spool with NI waiting jobs; sets I_* when measuring
	[ -n "$SLOW_PORT$FAST_PORT" ] || fast_sink
	mkspool "$ING" "${FAST_PORT:-$SLOW_PORT}" 64
	say "ingest: writing $NI job files"
	I_GEN=$(gen "$ING/spool/new" "$NI" --not-before "$NB")
	say "ingest: one run over $NI new files"
	measure1 "$ING/run.log" $((BASE + 60)) "$OR" -c "$ING/conf" run
}
if want ingest; then
	ingest_spool
	rate=$(calc "printf \"%.0f\", $NI / $M_WALL")
	cpuk=$(calc "printf \"%.3f\", $M_CPU / $NI * 1000")
	in_defer=$(nfiles "$ING" defer); in_new=$(nfiles "$ING" new); in_bad=$(nfiles "$ING" bad)
	rows=$(q "$ING" "SELECT count(*) FROM jobs")
	ok=1; [ "$rows" = "$NI" ] && [ "$in_defer" = "$NI" ] && [ "$M_FAIL" = 0 ] || ok=0
	res=MISS; [ "$ok" = 1 ] && calc "exit !($rate >= 20000)" && res=PASS
	[ "$ok" = 1 ] || res="MISS (not all ingested)"
	row "ingest" "$NI" "$M_WALL" "$rate" "$cpuk" "$(mib "$M_RSS")" ">= 20000 jobs/s" "$res"
	note "ingest: run ${M_WALL} s (${M_CPU} s CPU); ledger rows $rows ($(states "$ING")); defer/ $in_defer, new/ $in_new, bad/ $in_bad; gen.py wrote the files in ${I_GEN} s (page cache warm)"
	note "ingest: $(phases "$ING")"
fi

# ---- idle tick and RSS -------------------------------------------------------------------------
if want idle; then
	[ -f "$ING/spool/state.db" ] || ingest_spool
	EMPTY=$W/empty
	mkspool "$EMPTY" "${FAST_PORT:-${SLOW_PORT:-9}}" 64
	say "idle: $REPEAT rounds (+2 warm-up) of version / empty run / run over $NI waiting"
	out=$("$PY" "$BD/measure.py" --repeat "$REPEAT" --warmup 2 --now $((BASE + 3600)) --step 60 --log "$W/idle.log" \
		--case version "$(shq "$OR" version)" \
		--case empty "$(shq "$OR" -c "$EMPTY/conf" run)" \
		--case waiting "$(shq "$OR" -c "$ING/conf" run)") || die "measure.py failed"
	echo "$out" >"$W/idle.txt"
	get() { awk -v c="$1" -v f="$2" '$1 == c { print $f }' "$W/idle.txt"; }
	vw=$(get version 3); ew=$(get empty 3); ww=$(get waiting 3)
	vr=$(get version 9); er=$(get empty 9); wr=$(get waiting 9)
	cpums() { calc "printf \"%.1f ms\", ($(get "$1" 7) + $(get "$1" 8)) * 1000"; }
	dw=$(calc "printf \"%+.1f\", $ww - $vw"); dr=$(calc "printf \"%+.1f\", ($wr - $vr) / 1024")
	de=$(calc "printf \"%+.1f\", ($wr - $er) / 1024")
	# the fsync-family calls of three more ticks over the waiting spool (strace): an idle
	# tick writes nothing it must sync; a WAL checkpoint (every ~1,000 pages of commits)
	# would show here as two
	isyncs="-"
	if command -v strace >/dev/null 2>&1; then
		isyncs=0
		for k in 1 2 3; do
			OUTREACH_NOW=$((BASE + 3600 + 60 * (REPEAT + 3 + k))) strace -f -qq -c -o "$W/idle-strace.$k" \
				-e trace=fsync,fdatasync,sync_file_range,syncfs,sync,msync "$OR" -c "$ING/conf" run >/dev/null 2>&1
			isyncs=$((isyncs + $(awk '$NF ~ /^(fsync|fdatasync|sync_file_range|syncfs|sync|msync)$/ { n += $4 } END { print n + 0 }' "$W/idle-strace.$k")))
		done
	fi
	res=MISS; calc "exit !($ww - $vw <= 2 && $wr - $vr <= 1024)" && [ "$isyncs" = 0 ] && res=PASS
	[ "$(get waiting 11)" = 0 ] || res="$res (runs failed: see idle.log)"
	row "outreach version (floor)" "-" "$(calc "printf \"%.1f ms\", $vw")" "-" "$(cpums version)" "$(mib "$vr")" "" ""
	row "idle tick, empty spool" "0" "$(calc "printf \"%.1f ms\", $ew")" "-" "$(cpums empty)" "$(mib "$er")" "" ""
	row "idle tick, $NI waiting" "$NI" "$(calc "printf \"%.1f ms\", $ww")" "-" "$(cpums waiting)" "$(mib "$wr")" \
		"version +2 ms, +1 MiB, 0 fsync" "$res ($dw ms, $dr MiB, $isyncs fsync in 3)"
	res=MISS; calc "exit !($wr - $er <= 2048)" && res=PASS
	row "RSS: $NI waiting vs empty" "$NI" "-" "-" "-" "$de MiB" "<= +2 MiB" "$res"
	note "idle: CPU column is ms per tick; wall mean/median/sd/min ms over $REPEAT rounds:" \
	     "version $(get version 3)/$(get version 4)/$(get version 5)/$(get version 6)," \
	     "empty $(get empty 3)/$(get empty 4)/$(get empty 5)/$(get empty 6)," \
	     "waiting $(get waiting 3)/$(get waiting 4)/$(get waiting 5)/$(get waiting 6);" \
	     "peak RSS max KiB: version $(get version 10), empty $(get empty 10), waiting $(get waiting 10)"
fi

# ---- the table ---------------------------------------------------------------------------------
cat "$W/head"
echo "at end: load $(cut -d' ' -f1-3 /proc/loadavg), fdatasync median/p90 $("$PY" "$BD/fsync.py" "$W" 200 | awk '{ print $1 "/" $2 }') us; $(($(date +%s) - T0)) s in all"
echo "sinks: ${FAST_KIND:-none} (fast, concurrency 64 and 1, and rq), ${SLOW_KIND:-none} 100 and 500 ms (latency)"
echo
printf '%-30s %8s %11s %9s %9s %10s  %-30s %s\n' "scenario" "jobs" "seconds" "per s" "CPU s/1k" "peak RSS" "target" "result"
cat "$W/rows"
echo
echo "notes:"
cat "$W/notes"
exit 0
