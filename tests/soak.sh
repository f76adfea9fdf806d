#!/bin/sh
# tests/soak.sh — issue 7's chaos soak: for SOAK_SECONDS (default 300) of real
# time, ticks of three concurrent `outreach run`s on a virtual clock that
# advances a minute a tick, a producer enqueueing beside them, and a killer
# sending SIGKILL to runs at random moments (all draws seeded by SOAK_SEED,
# default 1).  Two SendGrid accounts point at two copies of the `mix` peer
# (tests/peers/faulty.py, mode mix: 202, 429, 5xx, resets before and after the request,
# unanswered requests, hangs, each drawn per request), each the other's
# fallback; a third sender uses the file provider.  Then killing stops and
# single runs go on (the clock jumping 20 minutes a run) until no job is due
# or pending.  At the end every job is exactly one of:
#   sent     the peer logged exactly one accepted (202) request for it, or
#            the outbox holds exactly one <id>.eml, and nothing else;
#   held     in doubt: at most one request for it may have gone through;
#   failed   with a reason (ledger last_error and failed/<id>.err).
# Also: PRAGMA integrity_check = ok, the per-state counts equal the rows,
# nothing in cur/ or new/, each job's file
# in the folder of its ledger state, no sender over its daily cap, every run
# exits 0 unless killed.  Prints "ticks K, kills K, jobs K, duplicates N,
# lost N"; duplicates (outside held jobs) or lost jobs fail the test.
: "${OUTREACH_BIN:=$(cd "$(dirname "$0")/.." && pwd)/outreach}"
export OUTREACH_BIN
. "$(dirname "$0")/lib.sh"
TESTS=$(cd "$(dirname "$0")" && pwd)
private_binary
SOAK_SECONDS=${SOAK_SECONDS:-300}
SOAK_SEED=${SOAK_SEED:-1}
PIDS=
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
echo "# soak: SOAK_SECONDS=$SOAK_SECONDS SOAK_SEED=$SOAK_SEED"

start_peer() {   # start_peer NAME SEED: sets PORT (the peer's output in $T/NAME.log.out)
  faulty_peer "$T/$1.log" mix --seed "$2"; _rc=$?
  PIDS="$PIDS $PEERPID"
  [ $_rc = 0 ] || { notok "peer $1 started" "$(cat "$T/$1.log.err")"; finish; }
}
start_peer peerA $((SOAK_SEED * 2)); PA=$PORT
start_peer peerB $((SOAK_SEED * 2 + 1)); PB=$PORT
printf 'SG.soak-not-a-real-key\n' >"$T/sg.key"; chmod 600 "$T/sg.key"
setup "retry = { first = 30; max = 600; max_attempts = 6; max_age = 172800; };
providers = (
  { name = \"dry\"; type = \"file\"; dir = \"outbox\"; },
  { name = \"sgA\"; type = \"sendgrid\"; endpoint = \"http://127.0.0.1:$PA\"; allow_plaintext = true;
    api_key_file = \"sg.key\"; concurrency = 4; timeout = 1.5; feed = true; feed_interval = 600;
    circuit_failures = 5; circuit_cooldown = 120; },
  { name = \"sgB\"; type = \"sendgrid\"; endpoint = \"http://127.0.0.1:$PB\"; allow_plaintext = true;
    api_key_file = \"sg.key\"; concurrency = 3; timeout = 1.5;
    circuit_failures = 5; circuit_cooldown = 120; }
);
senders = (
  { name = \"a\"; from = \"A <a@a.example>\"; provider = \"sgA\"; fallback = \"sgB\"; daily_limit = 1000; per_minute = 20; },
  { name = \"b\"; from = \"B <b@b.example>\"; provider = \"sgB\"; fallback = \"sgA\"; daily_limit = 800; per_minute = 20; },
  { name = \"f\"; from = \"F <f@f.example>\"; provider = \"dry\"; daily_limit = 400; per_minute = 10; }
);
clients = ( { name = \"globex\"; daily_limit = 600; } );"

cat >"$T/soak.py" <<'EOF'
import json, os, random, re, signal, sqlite3, subprocess, sys, time, urllib.request
from spoolcheck import FOLDERS, where as folders_of, outbox, counts_off
OR, T, seconds, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
CONF = os.path.join(T, "conf")
SP = os.path.join(T, "spool")
CAP = {"a": 1000, "b": 800, "f": 400}
CCAP = 600
NOW0 = 1795813200            # 2026-11-27 21:00 UTC: the first day ends after 3 virtual hours
rng = random.Random(seed)
nfail = 0
def ok(cond, name, detail=""):
    global nfail
    print(("ok - " if cond else "not ok - ") + name)
    if not cond:
        nfail += 1
        if detail != "":
            print("#   " + str(detail)[:800])
runlog = open(os.path.join(T, "runs.log"), "ab")
bad_exits = []
def env(vnow):
    e = dict(os.environ, OUTREACH_NOW=str(vnow), OUTREACH_SEED=str(rng.randrange(1 << 30)))
    e.pop("OUTREACH_FAULT", None)
    return e

ids, seq = [], 0
def producer(vnow):
    """Some jobs for two clients and a few campaigns, enqueued beside the runs."""
    global seq
    lines = []
    for _ in range(rng.randint(0, 7)):
        seq += 1
        client = rng.choice(["acme", "acme", "globex"])
        camp = rng.choice(["q4", "q1", "spring"])
        job = {"client": client, "campaign": camp, "id": "soak-%d" % seq,
               "to": "r%d@rcpt%d.example" % (seq, seq % 7), "subject": "Hello {{n}}",
               "text": "Message %d" % seq, "vars": {"n": seq}}
        if rng.random() < 0.03:
            job["sender"] = "nobody"     # pinned to no configured sender: fails, with its reason
        lines.append(json.dumps(job))
    if not lines:
        return None
    return subprocess.Popen([OR, "-c", CONF, "enqueue", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env(vnow)), "\n".join(lines) + "\n"

ticks = kills = 0
avg = 0.2        # a run's usual length (s), learnt from the runs not killed: kills land inside runs
t_end = time.time() + seconds
vnow = NOW0
while time.time() < t_end:
    ticks += 1
    vnow += 60
    prod = producer(vnow)
    if prod:
        p, data = prod
        p.stdin.write(data.encode()); p.stdin.close()
    procs = []
    for r in range(3):
        pr = subprocess.Popen([OR, "-c", CONF, "run"], stdout=runlog, stderr=runlog, env=env(vnow + r))
        # the killer's plan for this run: SIGKILL at a random moment, about one run in three
        kill_at = time.time() + rng.uniform(0, 1.2 * avg) if rng.random() < 0.35 else None
        procs.append([pr, kill_at, time.time()])
        time.sleep(rng.uniform(0, 0.03))
    while any(pr.poll() is None for pr, _, _ in procs):
        for item in procs:
            pr, at, _ = item
            if at is not None and time.time() >= at:
                item[1] = None
                if pr.poll() is None:      # still ours and alive (not reaped): kill it
                    pr.send_signal(signal.SIGKILL)
                    kills += 1
        for pr, _, _ in procs:
            if not hasattr(pr, "ended") and pr.returncode is not None:
                pr.ended = time.time()
        time.sleep(0.003)
    for pr, _, t0 in procs:
        if pr.returncode not in (0, -signal.SIGKILL):
            bad_exits.append((ticks, pr.returncode))
    durs = [pr.ended - t0 for pr, _, t0 in procs if pr.returncode == 0 and hasattr(pr, "ended")]
    if durs:
        avg = 0.8 * avg + 0.2 * (sum(durs) / len(durs))
    if prod:
        out, err = p.stdout.read(), p.stderr.read()
        p.wait()
        if p.returncode != 0:
            bad_exits.append((ticks, "enqueue %d: %s" % (p.returncode, err.decode()[:200])))
        ids += out.decode().split()
print("# soak phase: %d ticks, %d kills, %d jobs enqueued, virtual clock %+.1f h" % (ticks, kills, len(ids), (vnow - NOW0) / 3600))

# drain: no more killing; single runs, the clock a minute further after a run that
# settled something, an hour further after one that did not (caps spent, backoff)
def pending():
    db = sqlite3.connect(os.path.join(SP, "state.db"), timeout=60)
    n = db.execute("SELECT count(*) FROM jobs WHERE state NOT IN ('sent', 'held', 'failed', 'bad', "
                   "'suppressed', 'duplicate')").fetchone()[0]
    db.close()
    return n + len([f for f in os.listdir(os.path.join(SP, "new")) if not f.startswith(".")])
drains, left = 0, pending()
while drains < 2000 and left > 0:
    drains += 1
    r = subprocess.run([OR, "-c", CONF, "run"], stdout=runlog, stderr=runlog, env=env(vnow))
    if r.returncode != 0:
        bad_exits.append(("drain %d" % drains, r.returncode))
    now_left = pending()
    vnow += 60 if now_left < left else 3600
    left = now_left
print("# drain: %d runs, virtual clock %+.1f h" % (drains, (vnow - NOW0) / 3600))
ok(not bad_exits, "every run exited 0 unless killed (and every enqueue 0)", bad_exits[:10])
ok(pending() == 0, "after the drain nothing is due or pending", pending())

# ---- the audit
def busy(name):   # the peer's connections still being handled (it logs a request after answering it)
    port = open(os.path.join(T, name + ".log.out")).read().split()[1]
    try:
        return int(urllib.request.urlopen("http://127.0.0.1:%s/_busy" % port, timeout=5).read())
    except (OSError, ValueError):
        return -1
for _ in range(100):   # every run has exited: wait (10 s at most) until both peers have logged all
    still = (busy("peerA"), busy("peerB"))
    if still == (0, 0):
        break
    time.sleep(0.1)
ok(still == (0, 0), "the peers finished handling (and logging) every request", still)
db = sqlite3.connect(os.path.join(SP, "state.db"), timeout=60)
rows = {r[0]: r[1:] for r in db.execute("SELECT id, state, coalesce(last_error, ''), sender FROM jobs")}
ok(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "PRAGMA integrity_check = ok")
ok(not counts_off(db), "the per-state counts equal the ledger's rows", counts_off(db))
ls = lambda d: sorted(f for f in os.listdir(os.path.join(SP, d)) if not f.startswith("."))
left = ls("cur") + ls("new")
ok(not left, "nothing left in cur/ or new/", left[:10])
where = folders_of(SP)
mism = {i: (where.get(i), rows[i][0]) for i in rows
        if len(where.get(i, [])) != 1 or rows[i][0] not in FOLDERS[where[i][0]]}
ok(not mism, "every job's file is in exactly one folder, the one its ledger state says", list(mism.items())[:10])

acc, maybe, other = {}, {}, {}
for name in ("peerA", "peerB"):
    for l in open(os.path.join(T, name + ".log")):
        try:
            e = json.loads(l)
        except ValueError:
            continue
        j = e.get("event") == "request" and e.get("job")
        if not j:
            continue
        if e.get("accepted"):
            acc[j] = acc.get(j, 0) + 1
        elif e.get("maybe"):
            maybe[j] = maybe.get(j, 0) + 1
        else:
            other[j] = other.get(j, 0) + 1
for j, c in outbox(os.path.join(T, "outbox")).items():
    acc[j] = acc.get(j, 0) + c

dups, dups_held, lost, wrong = [], [], [], []
count = {"sent": 0, "held": 0, "failed": 0}
for i in ids:
    if i not in rows:
        lost.append((i, "no ledger row"))
        continue
    st, why, sender = rows[i]
    a, m = acc.get(i, 0), maybe.get(i, 0)
    if a + m > 1:
        (dups_held if st == "held" else dups).append((i, st, a, m))
    if st in count:
        count[st] += 1
    if st == "sent":
        if a == 0:
            lost.append((i, "sent but no provider has it"))
    elif st == "held":
        if not why:
            wrong.append((i, "held without a reason"))
    elif st == "failed":
        err = os.path.join(SP, "failed", i + ".err")
        miss = [w for w, bad in (("ledger last_error", not why),
                                 ("failed/%s.err" % i, not os.path.exists(err) or not open(err).read().strip())) if bad]
        if miss:
            wrong.append((i, "failed, its reason missing from: " + ", ".join(miss)))
        if a + m:
            wrong.append((i, "failed, yet the provider may have it", a, m))
    else:
        lost.append((i, "ended as %s" % st))
stray = sorted(set(rows) - set(ids))
ok(not stray, "no ledger rows but the jobs enqueued", stray[:10])
ok(not lost, "lost: every job ended sent, held or failed, and every sent job reached its provider", lost[:10])
ok(not dups, "duplicates: no job outside held/ reached a provider twice", dups[:10])
ok(not wrong, "each sent job went exactly once, each held or failed job has its reason", wrong[:10])
if dups_held:
    print("# held jobs that reached a provider twice: %s" % dups_held[:10])
over = [r for r in db.execute("SELECT sender, day, count(*) FROM slots WHERE state != 'void' GROUP BY 1, 2")
        if r[2] > CAP.get(r[0], 0)]
cover = [r for r in db.execute("SELECT client, day, count(*) FROM slots WHERE state != 'void' AND client = 'globex' "
                               "GROUP BY 1, 2") if r[2] > CCAP]
full = [r for r in db.execute("SELECT sender, day, count(*) FROM slots WHERE state != 'void' GROUP BY 1, 2")
        if r[2] == CAP.get(r[0])]
ok(not over and not cover, "no sender over its daily cap (1000/800/400), no client over its cap (globex 600)", (over, cover))
print("# sender-days that reached their cap exactly: %d" % len(full))
nreq = sum(acc.values()) + sum(maybe.values()) + sum(other.values())
print("# outcomes: sent %d, held %d, failed %d; peer requests %d (accepted %d, unanswered %d, refused %d)" %
      (count["sent"], count["held"], count["failed"], nreq, sum(acc.values()), sum(maybe.values()), sum(other.values())))
print("ticks %d, kills %d, jobs %d, duplicates %d, lost %d" % (ticks, kills, len(ids), len(dups), len(lost)))
sys.exit(1 if nfail else 0)
EOF
start=$(date +%s)
python3 "$T/soak.py" "$OR" "$T" "$SOAK_SECONDS" "$SOAK_SEED"
rc=$?
[ $rc -eq 0 ] || { nfail=$((nfail + 1)); echo "# failed runs' stderr (last lines):"; grep -v 'event=\(held\|in-doubt\|failed\|alert\|deferred\|throttled\)' "$T/runs.log" | tail -15 | sed 's/^/#   /'; }
echo "# soak: $(($(date +%s) - start)) s"
finish
