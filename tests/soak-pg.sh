#!/bin/sh
# tests/soak-pg.sh — the chaos soak on the PostgreSQL store (make soak
# SOAK_HOSTS=2): two hosts (two configs and spools) sharing one private
# PostgreSQL 15 on loopback with a synchronous standby, for SOAK_SECONDS
# (default 300) of real time:
#   a producer drops jobs into both hosts' new/ (about 20 a second in all);
#   each host keeps two `outreach run`s going, and a killer sends SIGKILL to
#   about four runs in five at a random moment within a run's usual length
#   (learnt from the runs it spares; all draws seeded by SOAK_SEED, default
#   1), so a kill lands anywhere: at
#   connect, mid-ingest, between a claim and its intent, mid-transfer,
#   before an outcome;
#   once, at 40 % of the time, the primary is killed (immediate) and the
#   standby promoted; both hosts' conninfo names both servers with
#   target_session_attrs=read-write, so they go on against the new primary;
#   the provider is an exec recorder: every delivery appends its job id.
# Then the killing stops, the dead runs' leases lapse (waited for in the
# database) and both hosts tick until nothing is due.  The audit, against
# the recorder and the new primary:
#   lost       a job dropped but not in the ledger, or sent but never
#              delivered, or left in a host's new/;
#   duplicates a job delivered more than once (a held job too: held means
#              "at most once", and a hold is never resent here);
# every delivery is of a sent or held job, every job is sent or held, the
# day counter equals the sent and held jobs and never passed the cap, every
# run not killed exited 0 or 75 (the failover's runs).  Prints "ticks K,
# kills K, jobs K, sent K, held K, duplicates N, lost N"; a duplicate or a
# lost job fails it.  At SOAK_SECONDS=300 it must reach 1,000 kills.
: "${OUTREACH_BIN:=$(cd "$(dirname "$0")/.." && pwd)/outreach}"
export OUTREACH_BIN
. "$(dirname "$0")/lib.sh"
TESTS=$(cd "$(dirname "$0")" && pwd)
private_binary
SOAK_SECONDS=${SOAK_SECONDS:-300}
SOAK_SEED=${SOAK_SEED:-1}
PGS=$TESTS/peers/postgres.sh
echo "# soak (two hosts, PostgreSQL): SOAK_SECONDS=$SOAK_SECONDS SOAK_SEED=$SOAK_SEED"
pg_up
sport=$(sh "$PGS" port)
sh "$PGS" standby "$T/db2" "$sport" "$T/db" >"$T/db2.out" 2>&1 || { notok "the synchronous standby starts" "$(tail -5 "$T/db2.out")"; finish; }
trap 'sh "$PGS" kill "$T/db"; sh "$PGS" kill "$T/db2"; cleanup' EXIT
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
: >"$T/deliveries"
prov=$(pg_recorder 0)
for h in hA hB; do
  mkdir -p "$T/$h"
  cat >"$T/$h/conf" <<EOF
spool = "spool";
report_dir = "reports";
timezone = "UTC";
providers = ( $prov );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "p"; daily_limit = 60000; },
            { name = "s2"; from = "Two <two@s2.example>"; provider = "p"; daily_limit = 60000; } );
store = { type = "postgresql"; password_file = "../pw"; host_name = "$h"; lease = 31;
          conninfo = "host=127.0.0.1,127.0.0.1 port=$pg_port,$sport dbname=outreach user=outreach target_session_attrs=read-write connect_timeout=3"; };
EOF
  "$OR" -c "$T/$h/conf" init --key "$T/key" || { notok "$h: init"; finish; }
done

python3 - "$OR" "$T" "$SOAK_SECONDS" "$SOAK_SEED" "$PGS" <<'EOF'
import os, random, signal, subprocess, sys, time
OR, T, seconds, seed, PGS = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
HOSTS = ("hA", "hB")
CAP = 60000
rng = random.Random(seed)
nfail = 0
def ok(cond, name, detail=""):
    global nfail
    print(("ok - " if cond else "not ok - ") + name)
    if not cond:
        nfail += 1
        if detail != "":
            print("#   " + str(detail)[:800])
db = os.path.join(T, "db")
def sql(q):
    r = subprocess.run(["sh", PGS, "sql", db, q], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("sql: %s: %s" % (q, r.stderr.strip()))
    return r.stdout.strip()
def conf(h):
    return os.path.join(T, h, "conf")
runlog = open(os.path.join(T, "runs.log"), "ab")

dropped, seq = set(), 0
def produce(n):
    global seq
    for _ in range(n):
        seq += 1
        h = rng.choice(HOSTS)
        name = "j%d.json" % seq
        body = '{"id": "soak-%d", "client": "acme", "to": "r%d@rcpt%d.example", "subject": "Hello", "text": "Message %d"}\n' % (
            seq, seq, seq % 7, seq)
        tmp = os.path.join(T, h, "spool", "tmp", name)
        with open(tmp, "w") as f:
            f.write(body)
        os.rename(tmp, os.path.join(T, h, "spool", "new", name))
        dropped.add("soak-%d" % seq)

running = {h: [] for h in HOSTS}
ticks = kills = 0
avg = 0.1        # a run's usual length (s), learnt from the runs not killed: kills land inside runs
bad_exits, tempfails = [], 0
t0 = time.time()
failover_at, failed_over = t0 + 0.4 * seconds, None
next_drop = t0
while time.time() - t0 < seconds:
    now = time.time()
    if now >= next_drop:   # about 20 jobs a second, in small bursts
        produce(rng.randint(0, 4))
        next_drop = now + 0.1
    for h in HOSTS:
        still = []
        for pr, kill_at, began in running[h]:
            rc = pr.poll()
            if rc is None and kill_at is not None and time.time() >= kill_at:
                pr.send_signal(signal.SIGKILL)
                pr.wait()
                kills += 1
            elif rc is None:
                still.append((pr, kill_at, began))
            elif rc == 75:
                tempfails += 1
            elif rc != 0:
                bad_exits.append((h, rc))
            elif kill_at is None:
                avg = 0.9 * avg + 0.1 * (time.time() - began)
        running[h] = still
        while len(running[h]) < 2:
            pr = subprocess.Popen([OR, "-c", conf(h), "run"], stdout=runlog, stderr=runlog)
            kill_at = time.time() + rng.uniform(0, 1.2 * avg) if rng.random() < 0.8 else None
            running[h].append((pr, kill_at, time.time()))
            ticks += 1
    if failed_over is None and time.time() >= failover_at:
        subprocess.run(["sh", PGS, "kill", db])
        r = subprocess.run(["sh", PGS, "promote", os.path.join(T, "db2")], capture_output=True, text=True)
        ok(r.returncode == 0, "the standby is promoted at %.0f s" % (time.time() - t0), r.stdout + r.stderr)
        db = os.path.join(T, "db2")
        failed_over = time.time() - t0
    time.sleep(0.005)
for h in HOSTS:   # the soak's end: whatever still runs is killed too
    for pr, _, _ in running[h]:
        if pr.poll() is None:
            pr.send_signal(signal.SIGKILL)
            kills += 1
        pr.wait()
print("# soak phase: %d ticks, %d kills, %d jobs dropped, failover at %.0f s, %d runs exited 75, a run %.0f ms"
      % (ticks, kills, len(dropped), failed_over or -1, tempfails, 1000 * avg))

# the dead runs' leases lapse (the database's clock), then both hosts tick until nothing is due
for _ in range(900):
    if sql("SELECT count(*) FROM runs WHERE state = 'running' AND lease_until > clock_timestamp()") == "0":
        break
    time.sleep(0.1)
def pending():
    n = int(sql("SELECT count(*) FROM jobs WHERE state IN ('waiting', 'claimed', 'sending')") or 0)
    return n + sum(len([f for f in os.listdir(os.path.join(T, h, "spool", "new")) if not f.startswith(".")])
                   for h in HOSTS)
drains = 0
while drains < 60 and pending() > 0:
    drains += 1
    ps = [subprocess.Popen([OR, "-c", conf(h), "run"], stdout=runlog, stderr=runlog) for h in HOSTS]
    for pr in ps:
        if pr.wait() != 0:
            bad_exits.append(("drain %d" % drains, pr.returncode))
print("# drain: %d rounds" % drains)
ok(not bad_exits, "every run not killed exited 0 (or 75 while the database failed over)", bad_exits[:10])
ok(pending() == 0, "after the drain nothing is due, claimed, sending or in new/", pending())

# ---- the audit
rows = {}
for line in sql("SELECT id, producer_id, state FROM jobs").splitlines():
    i, p, s = line.split("|")
    rows[i] = (p, s)
got = {}
for line in open(os.path.join(T, "deliveries")):
    got[line.strip()] = got.get(line.strip(), 0) + 1
producers = {p for p, _ in rows.values()}
lost_dropped = dropped - producers
sent = [i for i, (_, s) in rows.items() if s == "sent"]
held = [i for i, (_, s) in rows.items() if s == "held"]
lost_sent = [i for i in sent if got.get(i, 0) == 0]
dups = [i for i, n in got.items() if n > 1]
stray = [i for i in got if rows.get(i, ("", ""))[1] not in ("sent", "held")]
other = {s for _, s in rows.values()} - {"sent", "held"}
lost = len(lost_dropped) + len(lost_sent)
ok(not lost_dropped, "every job dropped on either host is in the ledger", sorted(lost_dropped)[:10])
ok(len(rows) == len(producers), "each producer id is one job", (len(rows), len(producers)))
ok(not lost_sent, "every sent job was delivered", lost_sent[:10])
ok(not dups, "no job delivered twice", [(i, rows.get(i)) for i in dups[:10]])
ok(not stray, "every delivery is of a sent or held job", [(i, rows.get(i)) for i in stray[:10]])
ok(not other, "every job is sent or held", other)
units = sql("SELECT coalesce(sum(n), 0), coalesce(max(n), 0) FROM day_counts WHERE kind = 's'").split("|")
ok(int(units[0]) == len(sent) + len(held), "the day counters are the sent and held jobs", (units, len(sent), len(held)))
ok(int(units[1]) <= CAP, "no sender over its daily cap", units)
if seconds >= 300:
    ok(kills >= 1000, "at least 1,000 kills in %d s" % seconds, kills)
print("# ticks %d, kills %d, jobs %d, sent %d, held %d, duplicates %d, lost %d"
      % (ticks, kills, len(rows), len(sent), len(held), len(dups), lost))
sys.exit(1 if nfail else 0)
EOF
rc=$?
[ $rc -eq 0 ] || nfail=$((nfail + 1))
finish
