#!/bin/sh
# tests/e2e/alerts.sh — the alerts the binary judges itself (doc/design.md §8; outreach.c
# HEALTH AND ALERTS), each driven by ticks on the virtual clock in a spool of its own:
#
#   senders_exhausted   daily caps reached while jobs are due
#   senders_blocked     no sender can send for another reason (here the account's open circuit)
#   error_rate          an exec provider failing permanently (alerts.min_attempts small)
#   backlog_old         alerts.backlog_age small, jobs due, the sender paused
#   jobs_held           an exec provider killed by its timeout (in doubt -> held/)
#   account_down:sg     a sendgrid account pointed at a loopback responder answering 401
#
# For each: raised ONCE (one 'raised' row in alert_log however many ticks see the
# condition; status.json "alerts" lists it; outreach.prom has
# outreach_alert_active{alert="..."} 1), delivered once to a loopback webhook receiver
# (JSON with text/alert/event/detail/at) and once to an alert_command script (its
# OUTREACH_ALERT_* environment appended to a file); then the condition goes and the alert
# is cleared once (one 'cleared' row, delivered once to each channel, gone from the reports).
# Last, a webhook answering 500: retried next run, never holding up sending, and the
# command channel (which worked) not called again for the same change.
# san: yes
. "$(dirname "$0")/../lib.sh"

NOW=1796029200   # Monday 2026-11-30T09:00:00Z
PEER_PID=
stop_peer() { [ -n "$PEER_PID" ] && kill "$PEER_PID" 2>/dev/null && wait "$PEER_PID" 2>/dev/null; PEER_PID=; }
trap 'stop_peer; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP

# ---- one loopback peer: the webhook receiver (any path but /v3/mail/send) and a SendGrid
# responder (/v3/mail/send).  Control files in $T/ctl: fail-NAME makes the webhook path
# /NAME answer 500; sg-401 makes SendGrid answer 401.  Every request is one JSON line.
mkdir -p "$T/ctl"
cat >"$T/peer.py" <<'PY'
import http.server, json, os, sys, threading
portfile, logfile, ctl = sys.argv[1:4]
lock = threading.Lock()
count = [0]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        hdrs = {}
        if self.path.endswith("/v3/mail/send"):
            if os.path.exists(os.path.join(ctl, "sg-401")):
                status, out = 401, b'{"errors":[{"message":"The provided authorization grant is invalid, expired, or revoked"}]}'
            else:
                with lock:
                    count[0] += 1
                    hdrs["X-Message-Id"] = "sg-msg-%d" % count[0]
                status, out = 202, b""
        else:
            name = self.path.strip("/").split("/")[0]
            status = 500 if os.path.exists(os.path.join(ctl, "fail-" + name)) else 200
            out = b"ok" if status == 200 else b"boom"
        with lock:
            with open(logfile, "a", encoding="utf-8") as f:
                f.write(json.dumps({"path": self.path, "status": status, "body": body,
                                    "content_type": self.headers.get("Content-Type")}) + "\n")
        self.send_response(status)
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
PY
: >"$T/peer.log"
python3 "$T/peer.py" "$T/peer.port" "$T/peer.log" "$T/ctl" 2>"$T/peer.err" &
PEER_PID=$!
i=0
while [ ! -s "$T/peer.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
PORT=$(cat "$T/peer.port" 2>/dev/null)
if [ -z "$PORT" ]; then notok "loopback peer started" "$(cat "$T/peer.err")"; finish; fi
ok "loopback peer (webhook receiver + SendGrid responder) on 127.0.0.1:$PORT"

# ---- the alert_command: appends its argv and OUTREACH_ALERT_* environment as one JSON line
cat >"$T/alert-cmd.py" <<'PY'
#!/usr/bin/env python3
import json, os, sys
with open(sys.argv[1], "a", encoding="utf-8") as f:
    f.write(json.dumps({k: os.environ.get(k) for k in
                        ("OUTREACH_ALERT", "OUTREACH_ALERT_EVENT", "OUTREACH_ALERT_DETAIL", "OUTREACH_ALERT_AT")}) + "\n")
PY
chmod 755 "$T/alert-cmd.py"

# exec providers: fail.sh fails permanently; slow.sh sleeps past its timeout while the
# file named by $1 exists, else sends
printf '#!/bin/sh\ncat >/dev/null\necho "mailbox unavailable: no such user" >&2\nexit 1\n' >"$T/fail.sh"
printf '#!/bin/sh\ncat >/dev/null\n[ -f "$1" ] && exec sleep 5\necho "exec-$$"\n' >"$T/slow.sh"
chmod 755 "$T/fail.sh" "$T/slow.sh"
printf 'SG.test-key\n' >"$T/sg.key"
chmod 600 "$T/sg.key"

# mk NAME CONFIG: a spool of its own in $T/NAME; both alert channels point at files and
# paths named after it
mk() {
  mkdir -p "$T/$1"
  cat >"$T/$1/conf" <<EOC
spool = "spool";
report_dir = "reports";
timezone = "UTC";
alert_command = ["$T/alert-cmd.py", "$T/$1/cmd.log"];
alert_webhook = "http://127.0.0.1:$PORT/$1";
$2
EOC
  : >"$T/$1/cmd.log"
  "$OR" -c "$T/$1/conf" init >/dev/null || notok "$1: init"
}
# at NAME SECONDS ARGS...: the binary on scenario NAME at NOW + SECONDS
at() { _sc=$1; _s=$2; shift 2; OUTREACH_NOW=$((NOW + _s)) "$OR" -c "$T/$_sc/conf" "$@"; }
tick() { at "$1" "$2" run >>"$T/$1/run.out" 2>&1 || notok "$1: run at +$2 s exits 0" "$(tail -3 "$T/$1/run.out")"; }
sq() { sqlite3 -batch -noheader "$T/$1/spool/state.db" "$2"; }
jobs_to() { # jobs_to NAME N: N jobs for acme
  k=1; while [ "$k" -le "$2" ]; do job "r$k@example.org" acme; k=$((k + 1)); done >"$T/$1/jobs.jsonl"
  at "$1" 0 enqueue "$T/$1/jobs.jsonl" >/dev/null || notok "$1: enqueue $2 jobs"
}

# the checker: alert NAME of scenario SCEN in PHASE (active|cleared|gone-before-clear)
cat >"$T/chk.py" <<'PY'
import json, re, sqlite3, sys
T, scen, name, phase = sys.argv[1:5]
d = "%s/%s" % (T, scen)
fails = 0
def res(label, good, detail=""):
    global fails
    print(("ok - " if good else "not ok - ") + "%s: %s: %s" % (scen, name, label))
    if not good:
        fails += 1
        print("#   " + str(detail)[:600].replace("\n", "\n#   "))
active = phase == "active"
db = sqlite3.connect(d + "/spool/state.db")
rows = db.execute("SELECT event, delivered, detail FROM alert_log WHERE name = ? ORDER BY id", (name,)).fetchall()
raised = [r for r in rows if r[0] == "raised"]
cleared = [r for r in rows if r[0] == "cleared"]
res("alert_log has exactly one 'raised' row", len(raised) == 1, rows)
res("alert_log has %s 'cleared' row" % ("no" if active else "exactly one"), len(cleared) == (0 if active else 1), rows)
res("every alert_log row delivered", all(r[1] == 1 for r in rows), rows)
res("raised detail says something", bool(raised and raised[0][2] and raised[0][2].strip()), raised)
st = json.load(open(d + "/reports/status.json", encoding="utf-8"))
names = [a.get("name") for a in st.get("alerts", [])]
if active:
    a = [x for x in st.get("alerts", []) if x.get("name") == name]
    res("status.json alerts lists it (with since and detail)",
        len(a) == 1 and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", a[0].get("since") or "") and a[0].get("detail"), st.get("alerts"))
else:
    res("status.json alerts no longer lists it", name not in names, st.get("alerts"))
prom = open(d + "/reports/outreach.prom", encoding="utf-8").read()
line = 'outreach_alert_active{alert="%s"} 1' % name
has = any(l.strip() == line for l in prom.splitlines())
res("outreach.prom %s %s" % ("has" if active else "no longer has", line), has == active,
    [l for l in prom.splitlines() if "outreach_alert_active" in l])
# webhook: only the POSTs the receiver answered 200 count as delivered
hooks = []
for l in open(T + "/peer.log", encoding="utf-8"):
    r = json.loads(l)
    if r["path"] == "/" + scen and r["status"] == 200:
        if not (r.get("content_type") or "").startswith("application/json"):
            res("webhook POST has Content-Type application/json", False, r)
        try:
            hooks.append(json.loads(r["body"]))
        except ValueError:
            hooks.append({"unparsable": r["body"]})
mine = [h for h in hooks if h.get("alert") == name]
for ev, want in (("raised", 1), ("cleared", 0 if active else 1)):
    got = [h for h in mine if h.get("event") == ev]
    res("webhook got '%s' %d time(s)" % (ev, want), len(got) == want, "got it %d times: %s" % (len(got), got[:2]))
    if got:
        h = got[0]
        res("webhook '%s' JSON has text, alert, event, detail, at" % ev,
            all(isinstance(h.get(k), str) and h.get(k) for k in ("text", "alert", "event", "detail", "at"))
            and name in h["text"], h)
cmds = [json.loads(l) for l in open(d + "/cmd.log", encoding="utf-8")]
mine = [c for c in cmds if c.get("OUTREACH_ALERT") == name]
for ev, want in (("raised", 1), ("cleared", 0 if active else 1)):
    got = [c for c in mine if c.get("OUTREACH_ALERT_EVENT") == ev]
    res("alert_command got '%s' %d time(s)" % (ev, want), len(got) == want, "got it %d times: %s" % (len(got), got[:2]))
    if got:
        c = got[0]
        res("alert_command '%s' env has OUTREACH_ALERT_DETAIL and an RFC 3339 OUTREACH_ALERT_AT" % ev,
            bool(c.get("OUTREACH_ALERT_DETAIL")) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$",
                                                              c.get("OUTREACH_ALERT_AT") or ""), c)
sys.exit(1 if fails else 0)
PY
chk() { python3 "$T/chk.py" "$T" "$@" || nfail=$((nfail + 1)); }

FILE1='providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );'

# ---- senders_exhausted: cap 2 a day, 4 jobs due ---------------------------------------------
mk ex "$FILE1
senders = ( { name = \"s1\"; from = \"One <one@s1.example>\"; provider = \"dry\"; daily_limit = 2; } );"
jobs_to ex 4
tick ex 0
eq "senders_exhausted: 2 of 4 sent on day 1" "$(sq ex "SELECT count(*) FROM jobs WHERE state = 'sent'")" 2
tick ex 60
tick ex 120
chk ex senders_exhausted active
tick ex 86400   # the next day: the last two go, nothing is due any more
eq "senders_exhausted: all 4 sent by day 2" "$(sq ex "SELECT count(*) FROM jobs WHERE state = 'sent'")" 4
tick ex 86460
chk ex senders_exhausted cleared

# ---- error_rate: every attempt fails permanently, min_attempts = 3 --------------------------
mk er "providers = ( { name = \"x\"; type = \"exec\"; argv = [\"$T/fail.sh\"]; } );
senders = ( { name = \"s1\"; from = \"One <one@s1.example>\"; provider = \"x\"; daily_limit = 100; } );
alerts = { error_share = 0.2; min_attempts = 3; backlog_age = 21600; };"
jobs_to er 4
tick er 0
eq "error_rate: the 4 jobs failed" "$(sq er "SELECT count(*) FROM jobs WHERE state = 'failed'")" 4
tick er 60
tick er 600
chk er error_rate active
tick er 3700    # the last hour holds no attempts any more
tick er 3760
chk er error_rate cleared

# ---- backlog_old: backlog_age = 60 s, the only sender paused --------------------------------
mk bl "$FILE1
senders = ( { name = \"s1\"; from = \"One <one@s1.example>\"; provider = \"dry\"; daily_limit = 100; } );
alerts = { backlog_age = 60; };"
at bl 0 pause --sender s1 --reason "alerts test" >/dev/null || notok "backlog_old: pause --sender s1"
jobs_to bl 2
tick bl 0
tick bl 30
eq "backlog_old: not raised while the wait is under backlog_age" \
  "$(sq bl "SELECT count(*) FROM alert_log WHERE name = 'backlog_old'")" 0
tick bl 120
tick bl 180
tick bl 240
eq "backlog_old: nothing sent while paused" "$(sq bl "SELECT count(*) FROM jobs WHERE state = 'sent'")" 0
chk bl backlog_old active
at bl 250 resume --sender s1 >/dev/null || notok "backlog_old: resume --sender s1"
tick bl 300
eq "backlog_old: both sent after resume" "$(sq bl "SELECT count(*) FROM jobs WHERE state = 'sent'")" 2
tick bl 360
chk bl backlog_old cleared

# ---- jobs_held: an exec provider killed after its 1 s timeout --------------------------------
mk hd "providers = ( { name = \"x\"; type = \"exec\"; argv = [\"$T/slow.sh\", \"$T/ctl/slow\"]; timeout = 1; } );
senders = ( { name = \"s1\"; from = \"One <one@s1.example>\"; provider = \"x\"; daily_limit = 100; } );"
touch "$T/ctl/slow"
jobs_to hd 1
tick hd 0
eq "jobs_held: the job is held" "$(sq hd "SELECT state FROM jobs")" held
tick hd 60
tick hd 120
chk hd jobs_held active
rm -f "$T/ctl/slow"
at hd 150 requeue held >/dev/null 2>&1 || notok "jobs_held: requeue held"
tick hd 180
eq "jobs_held: sent after requeue" "$(sq hd "SELECT state FROM jobs")" sent
tick hd 240
chk hd jobs_held cleared

# ---- jobs_held's text follows the count (a requeue of one of two) and status shows it whole ----
mk hd2 "providers = ( { name = \"x\"; type = \"exec\"; argv = [\"$T/slow.sh\", \"$T/ctl/slow2\"]; timeout = 1; } );
senders = ( { name = \"s1\"; from = \"One <one@s1.example>\"; provider = \"x\"; daily_limit = 100; } );"
touch "$T/ctl/slow2"
jobs_to hd2 2
for s in 0 60 120 180; do
  [ "$(sq hd2 "SELECT count(*) FROM jobs WHERE state = 'held'")" = 2 ] && break
  tick hd2 $s
done
eq "jobs_held (2 jobs): both held" "$(sq hd2 "SELECT count(*) FROM jobs WHERE state = 'held'")" 2
rm -f "$T/ctl/slow2"
one=$(sq hd2 "SELECT id FROM jobs WHERE state = 'held' ORDER BY id LIMIT 1")
at hd2 200 requeue held "$one" >/dev/null 2>&1 || notok "jobs_held (2 jobs): requeue held $one"
want="1 job in held/: check the provider, then 'outreach requeue held' or leave them"
# an alert's text in status.txt: its line and the continuation lines (indented 27) joined
alert_text() {
  python3 - "$1" "$2" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
for i, l in enumerate(lines):
    if l.startswith("  %s " % sys.argv[2]):
        t = [l.split(None, 1)[1]]
        for c in lines[i + 1:]:
            if not c.startswith(" " * 27) or not c.strip():
                break
            t.append(c.strip())
        print(" ".join(t))
PY
}
at hd2 201 status >"$T/hd2/status.txt" 2>&1
eq "jobs_held: status right after requeuing one of two says 1 job, the text whole" \
  "$(alert_text "$T/hd2/status.txt" jobs_held)" "$want"
tick hd2 240
eq "jobs_held: status.json after the next run says 1 job" \
  "$(python3 -c "import json; print('|'.join(a['detail'] for a in json.load(open('$T/hd2/reports/status.json'))['alerts'] if a['name'] == 'jobs_held'))")" "$want"
eq "jobs_held: status.txt shows the text whole" "$(alert_text "$T/hd2/reports/status.txt" jobs_held)" "$want"
check "jobs_held: status.txt has no line over 100 columns" sh -c "! awk 'length > 100' '$T/hd2/reports/status.txt' | grep -q ."

# ---- account_down:sg: SendGrid answers 401, then 202 after the cool-down ---------------------
mk ad "providers = ( { name = \"sg\"; type = \"sendgrid\"; endpoint = \"http://127.0.0.1:$PORT\"; allow_plaintext = true;
                api_key_file = \"$T/sg.key\"; timeout = 5; circuit_cooldown = 300; } );
senders = ( { name = \"s1\"; from = \"One <one@s1.example>\"; provider = \"sg\"; daily_limit = 100; } );"
touch "$T/ctl/sg-401"
jobs_to ad 2
tick ad 0
eq "account_down: nothing sent on a 401" "$(sq ad "SELECT count(*) FROM jobs WHERE state = 'sent'")" 0
eq "account_down: the circuit is open" "$(sq ad "SELECT open_until > $NOW FROM accounts WHERE name = 'sg'")" 1
tick ad 60
tick ad 120
chk ad account_down:sg active
# the sender is blocked by its account, not by its cap (0 of 100 sent): senders_blocked says so,
# senders_exhausted is never raised
eq "account_down: senders_exhausted not raised while caps are unspent" \
  "$(sq ad "SELECT count(*) FROM alert_log WHERE name = 'senders_exhausted'")" 0
chk ad senders_blocked active
check "senders_blocked: the detail names the sender and its account's open circuit" \
  sh -c "sqlite3 '$T/ad/spool/state.db' \"SELECT detail FROM alerts WHERE name = 'senders_blocked'\" | grep -q '^2 jobs are due and no sender can send: s1: account sg down (circuit open) until 20'"
rm -f "$T/ctl/sg-401"
tick ad 400     # past the cool-down: the probe succeeds
tick ad 460
eq "account_down: both sent after the cool-down" "$(sq ad "SELECT count(*) FROM jobs WHERE state = 'sent'")" 2
tick ad 520
chk ad account_down:sg cleared
chk ad senders_blocked cleared

# ---- a failing webhook: retried next run, never holding up sending ---------------------------
mk wf "$FILE1
senders = ( { name = \"s1\"; from = \"One <one@s1.example>\"; provider = \"dry\"; daily_limit = 2; } );"
touch "$T/ctl/fail-wf"
jobs_to wf 5
tick wf 0
eq "failing webhook: day 1 sends its 2 jobs" "$(sq wf "SELECT count(*) FROM jobs WHERE state = 'sent'")" 2
eq "failing webhook: the raised row stays undelivered" \
  "$(sq wf "SELECT delivered FROM alert_log WHERE name = 'senders_exhausted'")" 0
tick wf 60
tick wf 86400   # day 2, the webhook still failing: 2 more go out
eq "failing webhook: day 2 sends 2 more while the webhook fails" "$(sq wf "SELECT count(*) FROM jobs WHERE state = 'sent'")" 4
hook500=$(grep -c '"path": "/wf", "status": 500' "$T/peer.log")
check "failing webhook: retried each run (>= 3 POSTs answered 500, got $hook500)" test "$hook500" -ge 3
rm -f "$T/ctl/fail-wf"
tick wf 86460
eq "failing webhook: delivered once the receiver recovers" \
  "$(sq wf "SELECT delivered FROM alert_log WHERE name = 'senders_exhausted'")" 1
tick wf 86520
chk wf senders_exhausted active
tick wf 172800  # day 3: the last job goes, the alert clears
eq "failing webhook: all 5 sent" "$(sq wf "SELECT count(*) FROM jobs WHERE state = 'sent'")" 5
chk wf senders_exhausted cleared

finish
