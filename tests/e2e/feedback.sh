#!/bin/sh
# tests/e2e/feedback.sh — the feedback loop end to end against offline peers
# (doc/design.md §6 health, §7, §11, §12; the providers' feedback APIs as tests/data/specs
# describes them):
#   SES        tests/peers/sqs.py: SQS JSON protocol (ReceiveMessage / DeleteMessage,
#              visibility timeout, SigV4 "sqs" checked), the SES account suppression
#              list and SendEmail (SigV4 "ses"); bounces, complaints and deliveries as
#              SNS envelopes and raw deliveries; domain health disables a burning
#              domain with one alert; a run killed between receive and delete deletes
#              nothing; replays change nothing; re-enabling restarts the warm-up;
#              a held job is settled by its Delivery event (the `job` EmailTag);
#   SendGrid   Prism mock of tsg_suppressions_v3.yaml behind tests/peers/recorder.py;
#   Mailgun    Prism mock of openapi.prism.yaml behind the recorder, and an endless
#              paging fixture (the pull must stop at its page bound);
#   robustness feeds answering garbage, 500, or nothing: sending goes on;
#   unsubscribe one-click tokens (command, CGI by hand, and behind lighttpd when
#              /usr/sbin/lighttpd is installed; skipped otherwise).
# KEEP=1 keeps the scratch directory.  Peers listen on 127.0.0.1 only and are
# killed (by pid) on exit.
. "$(dirname "$0")/../lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PEERS=$ROOT/tests/peers
NM=$PEERS/node_modules
SPECS=$ROOT/tests/data/specs     # third-party specs: README.md, "Third-party test data"
PY=python3
NOW=1796029200            # 2026-11-30T09:00:00Z, a Monday
export OUTREACH_NOW=$NOW
SECRET='wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
SGKEY='SG.test-key.abcdef'
MGKEY='key-0123456789abcdef'
QPATH=/123456789012/ses-feedback

T0=$(date +%s)

PRISM="$NM/@stoplight/prism-cli/dist/index.js"
for f in "$PRISM" "$PEERS/sqs.py" "$PEERS/recorder.py" "$SPECS/sendgrid/tsg_suppressions_v3.yaml" \
         "$SPECS/mailgun/openapi.prism.yaml"; do
  if [ ! -e "$f" ]; then notok "test peers and specs present" "missing $f (cd tests/peers && npm ci)"; finish; fi
done

secret() { printf '%s\n' "$2" >"$1"; chmod 600 "$1"; }   # secret FILE VALUE
at()  { off=$1; d=$2; shift 2; OUTREACH_NOW=$((NOW + off)) "$OR" -c "$T/$d/conf" "$@"; }   # at SECONDS DIR ARGS
runat() {   # runat SECONDS DIR LABEL : a run on the virtual clock; exit code checked
  at "$1" "$2" run 2>"$T/$2/run-$3.err"
  rc=$?
  eq "$2 $3: run exits 0" "$rc" 0
  [ -s "$T/$2/run-$3.err" ] && sed "s/^/# $3 stderr: /" "$T/$2/run-$3.err" | head -4
  return 0
}

# ---- peers ---------------------------------------------------------------------
set -- $($PY -c 'import socket
ss = [socket.socket() for _ in range(12)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
P_SQS=$1 P_SGM=$2 P_RSG=$3 P_MGM=$4 P_RMG=$5 P_PAGE=$6 P_GARB=$7 P_500=$8 P_HANG=$9
shift 9
P_HTTPD=$1 P_RPAGE=$2

# Prism is slow to start: first.
bg prism-sg node "$PRISM" mock -h 127.0.0.1 -p "$P_SGM" --errors "$SPECS/sendgrid/tsg_suppressions_v3.yaml"
bg prism-mg node "$PRISM" mock -h 127.0.0.1 -p "$P_MGM" --errors "$SPECS/mailgun/openapi.prism.yaml"
bg rec-sg $PY "$PEERS/recorder.py" "$P_RSG" "http://127.0.0.1:$P_SGM" "$T/rec-sg.log"
bg rec-mg $PY "$PEERS/recorder.py" "$P_RMG" "http://127.0.0.1:$P_MGM" "$T/rec-mg.log"
bg rec-page $PY "$PEERS/recorder.py" "$P_RPAGE" "http://127.0.0.1:$P_PAGE" "$T/rec-page.log"
bg sqs $PY "$PEERS/sqs.py" "$P_SQS" "$T/sqs.log" --secret "$SECRET" --visibility 1 \
  --queue-url "http://127.0.0.1:$P_SQS$QPATH" --suppressed-page-size 2

# misbehaving feed endpoints: garbage, 500, and an answer that never comes
cat >"$T/bad.py" <<'EOF'
import http.server, json, sys, time
port, mode, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(log, "a") as f:
            f.write(json.dumps({"mode": mode, "method": self.command, "path": self.path, "t": time.time()}) + "\n")
        if mode == "hang":
            time.sleep(60); self.close_connection = True; return
        body = b"not json" if mode == "garbage" else b'{"message":"internal error"}'
        self.send_response(200 if mode == "garbage" else 500)
        self.send_header("Content-Type", "application/json" if mode == "garbage" else "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    do_POST = do_GET
s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H); s.daemon_threads = True
print("bad listening", flush=True); s.serve_forever()
EOF
bg garb $PY "$T/bad.py" "$P_GARB" garbage "$T/bad.log"
bg err500 $PY "$T/bad.py" "$P_500" 500 "$T/bad.log"
bg hang $PY "$T/bad.py" "$P_HANG" hang "$T/bad.log"

# Mailgun events whose paging never ends (a new event on every page, next = the
# following page on the same host), to see the pull stop at its page bound.
cat >"$T/mgpage.py" <<'EOF'
import http.server, json, re, sys, urllib.parse
port, log = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        u = urllib.parse.urlsplit(self.path); q = urllib.parse.parse_qs(u.query)
        m = re.fullmatch(r"/v3/([^/]+)/events(?:/p(\d+))?", u.path)
        if not m:
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        k = int(m.group(2) or 1)
        host = self.headers.get("Host")
        items = [{"event": "opened", "id": "page-%d" % k, "timestamp": 1796000000.5 + k, "log-level": "info",
                  "recipient": "reader%d@example.com" % k, "tags": [], "user-variables": {},
                  "message": {"headers": {"message-id": "m%d@mg.example.com" % k}}}]
        body = json.dumps({"items": items, "paging": {
            "next": "http://%s/v3/%s/events/p%d" % (host, m.group(1), k + 1),
            "previous": "http://%s/v3/%s/events/p%d" % (host, m.group(1), max(k - 1, 1))}}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H); s.daemon_threads = True
print("mgpage listening", flush=True); s.serve_forever()
EOF
bg mgpage $PY "$T/mgpage.py" "$P_PAGE" "$T/mgpage.log"

wait_line sqs 'sqs fake listening' 10 && wait_line garb 'bad listening' 10 && wait_line err500 'bad listening' 10 &&
  wait_line hang 'bad listening' 10 && wait_line mgpage 'mgpage listening' 10 && wait_line rec-page 'recorder listening' 10
check "SQS/SES fake, misbehaving responders and paging fixture are up" test $? -eq 0

SQSURL=http://127.0.0.1:$P_SQS
sqs_state() { curl -s --max-time 5 "$SQSURL/state"; }
sqs_get() {   # sqs_get FIELD : one number from the fake's state
  sqs_state | $PY -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
enqueue_msg() { curl -s --max-time 5 -X POST --data-binary @"$1" "$SQSURL/enqueue" >/dev/null || notok "fake took $1"; }

# The checker (Python, stdlib): notification builder and assertions.
cat >"$T/chk.py" <<'EOF'
import json, sqlite3, sys, time
nfail = 0
def ok(name, cond, detail=""):
    global nfail
    if cond: print("ok - " + name)
    else:
        nfail += 1; print("not ok - " + name)
        if detail != "": print("#   " + str(detail)[:700])
def iso(t): return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))
def recs(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]

def events(a):
    """events DB SPEC_JSON: each {key_like, job, type} mapped once to its job's client/campaign/sender."""
    db, spec = a[0], json.loads(a[1])
    c = sqlite3.connect(db); c.row_factory = sqlite3.Row
    for s in spec:
        rows = [dict(r) for r in c.execute("SELECT * FROM events WHERE event_key LIKE ?", (s["like"],))]
        j = dict(c.execute("SELECT * FROM jobs WHERE id = ?", (s["job"],)).fetchone())
        ok("%s: one %s event (%s)" % (s["name"], s["type"], s["like"]), len(rows) == 1 and rows[0]["type"] == s["type"],
           [(r["event_key"], r["type"]) for r in rows])
        if rows:
            r = rows[0]
            got = (r["job_id"], r["client"], r["campaign"], r["sender"], r["rcpt"])
            want = (j["id"], j["client"], j["campaign"], j["sender"], j["rcpt"])
            ok("%s: mapped to job %s (client %s, campaign %s, sender %s)" % (s["name"], j["id"], j["client"], j["campaign"], j["sender"]),
               got == want, "got %r want %r" % (got, want))

def status(a):
    """status FILE SENDER FIELD: print a sender's field from status.json."""
    d = json.load(open(a[0]))
    for s in d["senders"]:
        if s["name"] == a[1]:
            v = s.get(a[2]); print("null" if v is None else (json.dumps(v) if not isinstance(v, str) else v)); return
    print("missing")

def sqsorder(a):
    """sqsorder LOG: every DeleteMessage used the latest handle of a received message, after its receive;
    every call was signed right; nothing was deleted twice."""
    rs = recs(a[0]); latest = {}; probs = []; deleted = set()
    for r in rs:
        if r.get("op") == "ReceiveMessage" and r.get("status") == 200:
            for mid, h in zip(r.get("message_ids", []), r.get("handles", [])): latest[mid] = h
        if r.get("op") == "DeleteMessage":
            mid = r.get("message_id")
            if r.get("status") != 200: probs.append("delete %s -> %s" % (r.get("handle"), r.get("status")))
            elif latest.get(mid) != r.get("handle"): probs.append("delete of %s with a stale handle" % mid)
            elif r.get("result") != "deleted": probs.append("delete of %s: %s" % (mid, r.get("result")))
            deleted.add(mid)
    ok("sqs: every DeleteMessage used the latest handle of a received message, once", not probs, probs[:4])
    calls = [r for r in rs if r.get("op") in ("ReceiveMessage", "DeleteMessage", "ListSuppressedDestinations", "GetAccount", "SendEmail")]
    ok("sqs fake: every AWS call (%d) carries a valid SigV4 signature of the right service, X-Amz-Date on the real clock" % len(calls),
       calls and all(r.get("sigv4_ok") for r in calls), [r.get("sigv4_error") for r in calls if not r.get("sigv4_ok")][:3])
    rec = [r for r in rs if r.get("op") == "ReceiveMessage"]
    ok("sqs: ReceiveMessage asks for at most 10 messages, on the configured queue",
       rec and all(1 <= r.get("max", 0) <= 10 and r.get("queue_url", "").endswith("/123456789012/ses-feedback") for r in rec),
       [(r.get("max"), r.get("queue_url"), r.get("status"), r.get("error")) for r in rec][:3])

def sessup(a):
    """sessup LOG: ListSuppressedDestinations: the first pull has no StartDate and follows NextToken through
    the pages; later pulls start at the newest LastUpdateTime seen (ISO 8601)."""
    rs = [r for r in recs(a[0]) if r.get("op") == "ListSuppressedDestinations"]
    ok("ses suppression list: every call answered 200 (%d calls)" % len(rs), rs and all(r["status"] == 200 for r in rs),
       [(r["path"], r["status"], r.get("error")) for r in rs if r["status"] != 200][:3])
    first = rs[0] if rs else {"query": {}}
    ok("ses suppression list: the first call has no StartDate", "StartDate" not in first["query"], first.get("path"))
    follow = [r for r in rs if "NextToken" in r["query"]]
    tokens = set(r.get("next_token") for r in rs if r.get("next_token"))
    ok("ses suppression list: NextToken followed (%d pages past the first)" % len(follow),
       follow and all(r["query"]["NextToken"][0] in tokens for r in follow), [r["path"] for r in follow][:3])
    later = [r for r in rs[2:] if "NextToken" not in r["query"]]
    ok("ses suppression list: later pulls start at the newest entry seen (StartDate=2025-12-03T00:00:00Z)",
       later and all(r["query"].get("StartDate") == ["2025-12-03T00:00:00Z"] for r in later),
       [r["query"].get("StartDate") for r in later][:3])
    ok("ses suppression list: PageSize given and within 1..1000", all(1 <= int(r["query"].get("PageSize", ["0"])[0]) <= 1000 for r in rs))

def http2xx(a):
    """http2xx PREFIX LOG: every request 2xx without sl-violations."""
    rs = recs(a[1])
    ok("%s: every request (%d) got a 2xx without sl-violations" % (a[0], len(rs)),
       rs and all(200 <= r["status"] < 300 and "sl-violations" not in r["response_headers"] for r in rs),
       [(r["path"][:90], r["status"], r["response_headers"].get("sl-violations")) for r in rs
        if not (200 <= r["status"] < 300) or "sl-violations" in r["response_headers"]][:3])

def sgreq(a):
    """sgreq LOG KEY NFIRST DB: SendGrid list requests (Accept, auth, limit<=500, start_time only after the first
    pull, from the newest entry seen) and what the first pull served, recorded once and suppressed by kind."""
    import urllib.parse
    rs = recs(a[0]); n1 = int(a[2])
    first, later = rs[:n1], rs[n1:]
    lists = ["bounces", "blocks", "spam_reports", "invalid_emails", "unsubscribes"]
    paths = sorted(urllib.parse.urlsplit(r["path"]).path for r in first)
    ok("sendgrid: the first pull asked each of the 5 lists once", paths == sorted("/v3/suppression/" + l for l in lists), paths)
    ok("sendgrid: every request has Accept: application/json", all(r["headers"].get("accept") == "application/json" for r in rs),
       [r["headers"].get("accept") for r in rs][:3])
    ok("sendgrid: every request has Authorization: Bearer <key>", all(r["headers"].get("authorization") == "Bearer " + a[1] for r in rs))
    qs = [urllib.parse.parse_qs(urllib.parse.urlsplit(r["path"]).query) for r in rs]
    ok("sendgrid: every request has limit <= 500", all(q.get("limit") and 1 <= int(q["limit"][0]) <= 500 for q in qs), qs[:2])
    ok("sendgrid: the first pull has no start_time", all("start_time" not in urllib.parse.parse_qs(urllib.parse.urlsplit(r["path"]).query) for r in first))
    served = {}   # list -> entries Prism served in the first pull
    for r in first:
        l = urllib.parse.urlsplit(r["path"]).path.rsplit("/", 1)[1]
        served[l] = json.loads(r["response_body"])
    want = {l: max(e["created"] for e in v) for l, v in served.items() if v}
    got = {urllib.parse.urlsplit(r["path"]).path.rsplit("/", 1)[1]: urllib.parse.parse_qs(urllib.parse.urlsplit(r["path"]).query).get("start_time", [None])[0] for r in later}
    ok("sendgrid: the next pull starts each list at the newest created time it saw", later and all(got.get(k) == str(v) for k, v in want.items()),
       "sent %r, expected %r" % (got, want))
    c = sqlite3.connect(a[3])
    keys = set(r[0] for r in c.execute("SELECT event_key FROM events"))
    exp = set("sg:%s:%s:%s" % (l, e["email"].lower(), e["created"]) for l, v in served.items() for e in v)
    ok("sendgrid: every entry Prism served is one event (%d; same address and time twice = one)" % len(exp), keys == exp,
       "missing %r, extra %r" % (sorted(exp - keys)[:3], sorted(keys - exp)[:3]))
    kinds = {"bounces": "bounced", "blocks": "soft_bounce", "spam_reports": "complained", "invalid_emails": "bounced", "unsubscribes": "unsubscribed"}
    bad = [(k, t) for k, t in c.execute("SELECT event_key, type FROM events") if kinds.get(k.split(":")[1]) != t]
    ok("sendgrid: bounces/invalid_emails -> bounced, blocks -> soft_bounce, spam_reports -> complained, unsubscribes -> unsubscribed", not bad, bad[:3])
    sup = {r[0]: r[1] for r in c.execute("SELECT address, reason FROM suppressions")}
    hard = set(e["email"].lower() for l in ("bounces", "spam_reports", "invalid_emails", "unsubscribes") for e in served.get(l, []))
    blocks = set(e["email"].lower() for e in served.get("blocks", []))
    ok("sendgrid: every bounced, reported, invalid or unsubscribed address is suppressed", hard and hard <= set(sup), sorted(hard - set(sup)))
    ok("sendgrid: a block (one soft bounce) never suppresses on its own: blocked-only addresses not suppressed, others not for soft bounces",
       all(b not in sup for b in blocks - hard) and not any("soft bounce" in (sup.get(b) or "") for b in blocks),
       {b: sup.get(b) for b in blocks})
    print("# sendgrid: Prism served %s" % {l: [e["email"] for e in v] for l, v in served.items()})

def mgreq(a):
    """mgreq LOG NOW NFIRST: Mailgun events requests (the first NFIRST from the first pull)."""
    import urllib.parse
    rs = recs(a[0]); now = float(a[1]); n1 = int(a[2]); probs = []
    for i, r in enumerate(rs):
        u = urllib.parse.urlsplit(r["path"]); q = urllib.parse.parse_qs(u.query)
        if u.path != "/v3/mg.example.com/events": probs.append("path " + u.path)
        if q.get("ascending") != ["yes"]: probs.append("ascending %r" % q.get("ascending"))
        if not q.get("limit") or not 1 <= int(q["limit"][0]) <= 300: probs.append("limit %r" % q.get("limit"))
        if not q.get("begin") or not (float(q["begin"][0]) <= now and (i >= n1 or now - 4 * 86400 <= float(q["begin"][0]))):
            probs.append("begin %r" % q.get("begin"))
        if not r["headers"].get("authorization", "").startswith("Basic "): probs.append("no basic auth")
    ok("mailgun: GET /v3/mg.example.com/events with ascending=yes, limit<=300, begin (first pull: within 4 days), basic auth (%d requests)" % len(rs),
       rs and not probs, probs[:4])

{"events": events, "status": status, "sqsorder": sqsorder, "http2xx": http2xx, "sgreq": sgreq,
 "mgreq": mgreq, "sessup": sessup}[sys.argv[1]](sys.argv[2:])
sys.exit(min(nfail, 100))
EOF
chk() { $PY "$T/chk.py" "$@"; nfail=$((nfail + $?)); }
mk() { $PY "$PEERS/sesnote.py" "$@" || notok "built notification $1"; }

# jobs FILE N CLIENT CAMPAIGN PREFIX : N JSON lines
jobs() {
  i=1
  while [ $i -le "$2" ]; do
    printf '{"client":"%s","campaign":"%s","to":"%s%d@rcpt.example","subject":"Offer %d for %s","text":"Hello %d"}\n' \
      "$3" "$4" "$5" $i $i "$3" $i
    i=$((i + 1))
  done >>"$1"
}

# ==== SES: SES -> SNS -> SQS, suppression, domain health ===========================
sesprov() {   # the SES account on the fake: sending, SQS and the suppression list
  printf '{ name = "ses"; type = "ses"; region = "us-east-1"; endpoint = "%s"; sqs_queue_url = "%s%s";
    sqs_endpoint = "%s"; allow_plaintext = true; access_key_id = "AKIDEXAMPLE"; secret_file = "secret";
    feed_interval = 60; }' "$SQSURL" "$SQSURL" "$QPATH" "$SQSURL"
}
mkdir -p "$T/ses"; secret "$T/ses/secret" "$SECRET"
newconf ses "
providers = ( $(sesprov) );
senders = (
  { name = \"a\"; from = \"Anna <anna@a-mail.example>\"; provider = \"ses\"; daily_limit = 1000; },
  { name = \"b\"; from = \"Boris <boris@b-mail.example>\"; provider = \"ses\"; daily_limit = 1000; }
);" "health = { window_days = 7; min_sent = 10; max_bounce_rate = 0.05; max_complaint_rate = 0.003; };"
jobs "$T/ses/b1.jsonl" 20 acme q1 acme-
jobs "$T/ses/b1.jsonl" 20 beta q2 beta-
orc ses enqueue "$T/ses/b1.jsonl" >/dev/null 2>"$T/ses/enq.err" || notok "ses: enqueue 40" "$(head -3 "$T/ses/enq.err")"
runat 0 ses r1
eq "ses r1: 40 jobs sent" "$(qd ses "SELECT count(*) FROM jobs WHERE state = 'sent'")" 40
eq "ses r1: round-robin gave sender a 20 and b 20" \
  "$(qd ses "SELECT group_concat(sender || '=' || n, ' ') FROM (SELECT sender, count(*) n FROM jobs GROUP BY sender ORDER BY sender)")" "a=20 b=20"
eq "ses r1: the fake recorded 40 SendEmail calls" "$(sqs_get sends)" 40
eq "ses r1: every job has the fake's MessageId as provider_id" "$(qd ses "SELECT count(*) FROM jobs WHERE provider_id GLOB 'ses-[0-9]*'")" 40

set -- $(qd ses "SELECT id FROM jobs WHERE sender = 'a' ORDER BY sent_at, id LIMIT 4")
JA1=$1 JA2=$2 JA3=$3 JA4=$4
set -- $(qd ses "SELECT id FROM jobs WHERE sender = 'b' ORDER BY sent_at, id LIMIT 3")
JB1=$1 JB2=$2 JB3=$3
pid_of()  { qd ses "SELECT provider_id FROM jobs WHERE id = '$1'"; }
rcpt_of() { qd ses "SELECT rcpt FROM jobs WHERE id = '$1'"; }
N=$T/ses/n
# three hard bounces and a complaint for sender a's jobs, a delivery for one of b's;
# SNS envelopes and raw deliveries, identity notifications and event publishing;
# one recipient in upper case (addresses compare lower-cased)
mk "$N-1.json" bounce sns "$(pid_of "$JA1")" "$(rcpt_of "$JA1")" fb-a1 $((NOW + 60))
mk "$N-2.json" bounce raw "$(pid_of "$JA2")" "$(rcpt_of "$JA2" | tr a-z A-Z)" fb-a2 $((NOW + 61))
mk "$N-3.json" bounce sns-event "$(pid_of "$JA3")" "$(rcpt_of "$JA3")" fb-a3 $((NOW + 62))
mk "$N-4.json" complaint sns "$(pid_of "$JA4")" "$(rcpt_of "$JA4")" fc-a4 $((NOW + 63))
mk "$N-5.json" delivery raw "$(pid_of "$JB1")" "$(rcpt_of "$JB1")" d-b1 $((NOW + 64))
ALL="$N-1.json $N-2.json $N-3.json $N-4.json $N-5.json"
for f in $ALL; do enqueue_msg "$f"; done
eq "ses: 5 notifications visible in the queue before the run" "$(sqs_get visible)" 5
jobs "$T/ses/b2.jsonl" 10 acme q3 second-
orc ses enqueue "$T/ses/b2.jsonl" >/dev/null 2>>"$T/ses/enq.err"
runat 120 ses r2
chk events "$T/ses/spool/state.db" "[
 {\"name\": \"bounce in an SNS envelope\", \"like\": \"ses:b:fb-a1:%\", \"job\": \"$JA1\", \"type\": \"bounced\"},
 {\"name\": \"raw bounce, recipient in upper case\", \"like\": \"ses:b:fb-a2:%\", \"job\": \"$JA2\", \"type\": \"bounced\"},
 {\"name\": \"event-publishing bounce in SNS\", \"like\": \"ses:b:fb-a3:%\", \"job\": \"$JA3\", \"type\": \"bounced\"},
 {\"name\": \"complaint\", \"like\": \"ses:c:fc-a4:%\", \"job\": \"$JA4\", \"type\": \"complained\"},
 {\"name\": \"raw delivery\", \"like\": \"ses:d:$(pid_of "$JB1"):%\", \"job\": \"$JB1\", \"type\": \"delivered\"}]"
eq "ses r2: 5 notification events (no more)" "$(qd ses "SELECT count(*) FROM events WHERE event_key NOT LIKE 'ses:sup:%'")" 5
orc ses suppress list >"$T/ses/supp.csv"
for j in "$JA1" "$JA2" "$JA3" "$JA4"; do
  check "ses r2: $(rcpt_of "$j") (bounced or complained) suppressed everywhere" grep -q "^$(rcpt_of "$j"),," "$T/ses/supp.csv"
done
check "ses r2: the delivered $(rcpt_of "$JB1") is not suppressed" sh -c "! grep -q '^$(rcpt_of "$JB1"),' '$T/ses/supp.csv'"
for a in old-bounce@example.net old-complaint@example.net older-bounce@example.net; do
  check "ses r2: $a (SES account suppression list, 2 pages) suppressed" grep -q "^$a,," "$T/ses/supp.csv"
done
orc ses senders >"$T/ses/senders.txt" 2>&1
sed 's/^/# senders: /' "$T/ses/senders.txt"
check "ses r2: senders shows a disabled" grep -Eq '^a +a-mail\.example +ses +NO ' "$T/ses/senders.txt"
check "ses r2: senders gives the reason with the bounce rate and figures (3 of 20)" \
  grep -Eq 'disabled: .*bounce rate.*3 of 20' "$T/ses/senders.txt"
check "ses r2: senders shows b enabled" grep -Eq '^b +b-mail\.example +ses +yes ' "$T/ses/senders.txt"
check "ses r2: senders shows a's bounce rate (15.00%) and complaint rate (5.000%)" \
  grep -Eq '^a +.* 15\.00% +5\.000%$' "$T/ses/senders.txt"
SJ=$T/ses/reports/status.json
eq "ses r2: status.json a enabled" "$(chk status "$SJ" a enabled)" false
r=$(chk status "$SJ" a disabled_reason)
echo "# disabled_reason: $r"
case $r in *bounce*rate*"3 of 20"*) ok "ses r2: status.json disabled_reason names the bounce rate and 3 of 20";;
  *) notok "ses r2: status.json disabled_reason names the bounce rate and 3 of 20" "$r";; esac
eq "ses r2: status.json a bounce_rate" "$(chk status "$SJ" a bounce_rate)" 0.15
eq "ses r2: status.json a complaint_rate" "$(chk status "$SJ" a complaint_rate)" 0.05
eq "ses r2: status.json b enabled" "$(chk status "$SJ" b enabled)" true
eq "ses r2: alert sender_disabled:a-mail.example active" \
  "$(qd ses "SELECT count(*) FROM alerts WHERE name = 'sender_disabled:a-mail.example'")" 1
check "ses r2: status.json lists the alert" grep -q '"name":"sender_disabled:a-mail.example"' "$SJ"
eq "ses r2: the second batch (10) went out via b only" \
  "$(qd ses "SELECT group_concat(sender || '=' || n) FROM (SELECT sender, count(*) n FROM jobs WHERE campaign = 'q3' AND state = 'sent' GROUP BY sender)")" "b=10"
eq "ses r2: the queue is empty: 5 deleted, none visible or in flight" \
  "$(sqs_state | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["visible"], d["inflight"], d["deleted"])')" "0 0 5"
eq "ses r2: status.json campaign counters acme/q1+beta/q2: bounced, complained, delivered" \
  "$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); c=[x for x in d["campaigns"] if x["name"] in ("q1","q2")]; print(sum(x["bounced"] for x in c), sum(x["complained"] for x in c), sum(x["delivered"] for x in c))' "$SJ")" "3 1 1"

# -- a run killed between ReceiveMessage and DeleteMessage deletes nothing ---------
mk "$N-6.json" softbounce raw "$(pid_of "$JB2")" "$(rcpt_of "$JB2")" fs-b2-1 $((NOW + 190))
mk "$N-7.json" delivery sns "$(pid_of "$JB3")" "$(rcpt_of "$JB3")" d-b3 $((NOW + 191))
enqueue_msg "$N-6.json"; enqueue_msg "$N-7.json"; ALL="$ALL $N-6.json $N-7.json"
curl -s -X POST --data "{\"kill_on_receive\": \"$T/ses/run.pid\"}" "$SQSURL/control" >/dev/null
OUTREACH_NOW=$((NOW + 200)) sh -c 'echo $$ >"$1"; exec "$2" -c "$3" run' sh "$T/ses/run.pid" "$OR" "$T/ses/conf" 2>"$T/ses/run-kill.err"
eq "ses kill: the run died (SIGKILL) right after ReceiveMessage" "$?" 137
i=0; until grep -q '"op": "kill", "pid"' "$T/sqs.log" || [ $i -ge 20 ]; do sleep 0.1; i=$((i + 1)); done
check "ses kill: the fake killed the run on its ReceiveMessage" grep -q '"op": "kill", "pid"' "$T/sqs.log"
eq "ses kill: nothing deleted (5 before, 2 in flight)" \
  "$(sqs_state | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["deleted"], d["inflight"] + d["visible"])')" "5 2"
echo "# ses kill: events recorded before the kill: $(qd ses "SELECT count(*) FROM events WHERE event_key LIKE 'ses:b:fs-b2-1:%' OR event_key LIKE 'ses:d:$(pid_of "$JB3"):%'")"
# the two received but not deleted come back once the fake's visibility timeout (1 s,
# real time) has passed: wait until the fake shows them visible again
two_back() { [ "$(sqs_state | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["inflight"], d["visible"])')" = "0 2" ]; }
wait_for 10 two_back ||
  notok "ses kill: the two in flight become visible again" "$(sqs_state)"
runat 280 ses r4
eq "ses r4: the two come back and are deleted (7)" "$(sqs_get deleted)" 7
eq "ses r4: the soft bounce recorded once" "$(qd ses "SELECT count(*) FROM events WHERE event_key LIKE 'ses:b:fs-b2-1:%' AND type = 'soft_bounce'")" 1
eq "ses r4: the delivery recorded once, mapped" "$(qd ses "SELECT count(*) || ' ' || group_concat(job_id) FROM events WHERE event_key LIKE 'ses:d:$(pid_of "$JB3"):%'")" "1 $JB3"
SB=$(rcpt_of "$JB2")
check "ses r4: one soft bounce does not suppress $SB" sh -c "! '$OR' -c '$T/ses/conf' suppress list | grep -q '^$SB,'"

# -- soft bounces: suppressed at the third in a row (soft_bounce_limit default 3) ---
mk "$N-8.json" softbounce sns-event "$(pid_of "$JB2")" "$SB" fs-b2-2 $((NOW + 290))
enqueue_msg "$N-8.json"; ALL="$ALL $N-8.json"
runat 360 ses r5
check "ses r5: two soft bounces do not suppress $SB" sh -c "! '$OR' -c '$T/ses/conf' suppress list | grep -q '^$SB,'"
mk "$N-9.json" softbounce raw "$(pid_of "$JB2")" "$SB" fs-b2-3 $((NOW + 370))
enqueue_msg "$N-9.json"; ALL="$ALL $N-9.json"
runat 440 ses r6
check "ses r6: the third soft bounce in a row suppresses $SB" sh -c "'$OR' -c '$T/ses/conf' suppress list | grep -q '^$SB,,.*soft bounce'"
eq "ses r6: b still enabled (soft bounces are not hard bounces)" "$(chk status "$SJ" b enabled)" true

# -- the same notifications again, in reverse order: no count changes ----------------
snap() {
  qd ses "SELECT (SELECT count(*) FROM events) || ' ' || (SELECT count(*) FROM suppressions) || ' ' ||
    (SELECT count(*) FROM alert_log) || ' ' || (SELECT group_concat(state || '=' || n) FROM (SELECT state, count(*) n FROM jobs GROUP BY state ORDER BY state))
    || ' ' || (SELECT coalesce(group_concat(kind || ':' || client || ':' || campaign || '=' || n), '') FROM counters WHERE kind LIKE 'event:%')"
}
before=$(snap)
campaigns() { $PY -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["campaigns"], sort_keys=True))' "$SJ"; }
cbefore=$(campaigns)
rev=""; for f in $ALL; do rev="$f $rev"; done
for f in $rev; do enqueue_msg "$f"; done
runat 520 ses r7
eq "ses r7: replay (reverse order): events, suppressions, alerts, job states, counters unchanged" "$(snap)" "$before"
eq "ses r7: replay: status.json campaign figures unchanged" "$(campaigns)" "$cbefore"
eq "ses r7: replay: all 18 queue messages deleted, none left" \
  "$(sqs_state | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["deleted"], d["visible"] + d["inflight"])')" "18 0"

# -- another client's job to a bounced address: suppressed, never sent ----------------
BA=$(rcpt_of "$JA1")
sends0=$(sqs_get sends)
GJ=$(printf '{"client":"gamma","campaign":"g1","to":"%s","subject":"Another client","text":"Hi"}\n' "$BA" | orc ses enqueue -)
runat 600 ses r8
eq "ses r8: gamma's job to the bounced $BA ends suppressed" "$(qd ses "SELECT state FROM jobs WHERE id = '$GJ'")" suppressed
check "ses r8: its file is in done/" test -f "$T/ses/spool/done/$GJ.json"
eq "ses r8: nothing more was sent" "$(sqs_get sends)" "$sends0"
eq "ses r8: the fake saw exactly one send to $BA, ever" \
  "$(curl -s "$SQSURL/sent" | $PY -c 'import json,sys; print(sum(1 for s in json.load(sys.stdin) if sys.argv[1] in [t.lower() for t in s["to"]]))' "$BA")" 1
eq "ses r8: sender_disabled:a-mail.example raised exactly once (alert_log) after 6 more runs" \
  "$(qd ses "SELECT count(*) FROM alert_log WHERE name = 'sender_disabled:a-mail.example' AND event = 'raised'")" 1

# -- sender enable a: back, warm-up restarted, alert cleared, used again -------------
at 620 ses sender enable a 2>"$T/ses/enable.err"
eq "ses enable: exit 0" "$?" 0
at 630 ses status --json >"$T/ses/st-enable.json" 2>/dev/null
eq "ses enable: a enabled" "$(chk status "$T/ses/st-enable.json" a enabled)" true
eq "ses enable: a's warm-up day restarts at 0" "$(chk status "$T/ses/st-enable.json" a warmup_day)" 0
c=$(chk status "$T/ses/st-enable.json" a cap_today)
check "ses enable: a's cap today is a warm-up cap below daily_limit 1000 (got $c)" test "$c" -ge 1 -a "$c" -lt 1000
eq "ses enable: the alert is cleared" "$(qd ses "SELECT count(*) FROM alerts WHERE name = 'sender_disabled:a-mail.example'")" 0
eq "ses enable: alert_log has one 'cleared'" \
  "$(qd ses "SELECT count(*) FROM alert_log WHERE name = 'sender_disabled:a-mail.example' AND event = 'cleared'")" 1
jobs "$T/ses/b3.jsonl" 6 acme q4 third-
orc ses enqueue "$T/ses/b3.jsonl" >/dev/null 2>>"$T/ses/enq.err"
runat 700 ses r9
eq "ses r9: the 6 new jobs sent" "$(qd ses "SELECT count(*) FROM jobs WHERE campaign = 'q4' AND state = 'sent'")" 6
n=$(qd ses "SELECT count(*) FROM jobs WHERE campaign = 'q4' AND sender = 'a'")
check "ses r9: sender a is used again ($n of 6)" test "$n" -ge 1
eq "ses r9: a stays enabled (its health span restarted at the enable)" "$(chk status "$SJ" a enabled)" true
eq "ses r9: still exactly one 'raised' for the alert" \
  "$(qd ses "SELECT count(*) FROM alert_log WHERE name = 'sender_disabled:a-mail.example' AND event = 'raised'")" 1
# -- a queue message that is no SES notification: recorded as such, deleted, harmless ------
printf 'this is not a notification' >"$N-junk.txt"
printf '{"Type":"Notification","Message":"{\\"hello\\": 1}"}' >"$N-junk2.json"
enqueue_msg "$N-junk.txt"; enqueue_msg "$N-junk2.json"
printf '{"client":"acme","campaign":"q5","to":"after-junk@rcpt.example","subject":"After junk","text":"Hi"}\n' | orc ses enqueue - >/dev/null
runat 800 ses r10
eq "ses r10: two unparsable queue messages recorded as 'unparsed'" "$(qd ses "SELECT count(*) FROM events WHERE type = 'unparsed'")" 2
eq "ses r10: ... and deleted (the queue is empty)" \
  "$(sqs_state | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["visible"] + d["inflight"])')" 0
eq "ses r10: sending goes on" "$(qd ses "SELECT state FROM jobs WHERE campaign = 'q5'")" sent
chk sqsorder "$T/sqs.log"
chk sessup "$T/sqs.log"
ls "$T/ses/spool/held" | grep -q . && echo "# ses: held/ is not empty: $(ls "$T/ses/spool/held")"

# ==== a held job settled by its Delivery event ========================================
mkdir -p "$T/held"; secret "$T/held/secret" "$SECRET"
newconf held "
providers = ( $(sesprov) );
senders = ( { name = \"h\"; from = \"Hana <hana@h-mail.example>\"; provider = \"ses\"; daily_limit = 1000; } );"
HJ=$(job held1@rcpt.example acme | orc held enqueue -)
sends0=$(sqs_get sends)
OUTREACH_FAULT=after-send OUTREACH_NOW=$NOW "$OR" -c "$T/held/conf" run 2>"$T/held/fault.err"
eq "held: the run died after the send (after-send)" "$?" 137
eq "held: the fake accepted it" "$(sqs_get sends)" $((sends0 + 1))
runat 10 held h2
eq "held: the next run parks it in held/" "$(qd held "SELECT state FROM jobs WHERE id = '$HJ'")" held
check "held: held/$HJ.json exists" test -f "$T/held/spool/held/$HJ.json"
eq "held: no provider_id in the ledger (it died before recording)" "$(qd held "SELECT coalesce(provider_id, '') FROM jobs WHERE id = '$HJ'")" ""
HM=$(curl -s "$SQSURL/sent" | $PY -c 'import json,sys; print([s["MessageId"] for s in json.load(sys.stdin) if s["job"] == sys.argv[1]][-1])' "$HJ")
mk "$T/held/d.json" delivery raw-event "$HM" held1@rcpt.example hd-1 $((NOW + 60)) "$HJ"
enqueue_msg "$T/held/d.json"
runat 120 held h3
eq "held: the Delivery event (job EmailTag) settles it: state sent" "$(qd held "SELECT state FROM jobs WHERE id = '$HJ'")" sent
check "held: moved to done/" test -f "$T/held/spool/done/$HJ.json"
check "held: held/ is empty" test ! -e "$T/held/spool/held/$HJ.json"
eq "held: the event is mapped to the job" "$(qd held "SELECT count(*) FROM events WHERE type = 'delivered' AND job_id = '$HJ'")" 1
eq "held: alert jobs_held cleared" "$(qd held "SELECT count(*) FROM alerts WHERE name = 'jobs_held'")" 0

# ==== SendGrid suppression lists: Prism mock behind the recorder ===========================
wait_line prism-sg 'Prism is listening' 60 && wait_line rec-sg 'recorder listening' 5
check "sendgrid: Prism mock of tsg_suppressions_v3.yaml is up" test $? -eq 0
mkdir -p "$T/sg"; secret "$T/sg/sg.key" "$SGKEY"
newconf sg "
providers = ( { name = \"sg\"; type = \"sendgrid\"; endpoint = \"http://127.0.0.1:$P_RSG\"; allow_plaintext = true;
                api_key_file = \"sg.key\"; } );
senders = ( { name = \"s\"; from = \"Sam <sam@sg-mail.example>\"; provider = \"sg\"; daily_limit = 1000; } );"
at 0 sg pull >"$T/sg/pull1.out" 2>"$T/sg/pull1.err"
eq "sendgrid pull 1: exit 0" "$?" 0
eq "sendgrid pull 1: says the feed is ok" "$(cat "$T/sg/pull1.out")" "feed sg: ok"
n1=$(wc -l <"$T/rec-sg.log" | tr -d ' ')
ev() { qd "$1" "SELECT coalesce(group_concat(subtype || '=' || n, ' '), '') FROM (SELECT subtype, count(*) n FROM events GROUP BY subtype ORDER BY subtype)"; }
echo "# sendgrid pull 1: events per list: $(ev sg)"
e1=$(qd sg "SELECT count(*) FROM events")
at 600 sg pull >"$T/sg/pull2.out" 2>"$T/sg/pull2.err"
eq "sendgrid pull 2: exit 0, feed ok" "$?:$(cat "$T/sg/pull2.out")" "0:feed sg: ok"
eq "sendgrid pull 2: adds nothing" "$(qd sg "SELECT count(*) FROM events")" "$e1"
chk http2xx sendgrid "$T/rec-sg.log"
chk sgreq "$T/rec-sg.log" "$SGKEY" "$n1" "$T/sg/spool/state.db"

# ==== Mailgun events: Prism mock behind the recorder, then endless paging ====================
wait_line prism-mg 'Prism is listening' 60 && wait_line rec-mg 'recorder listening' 5
check "mailgun: Prism mock of openapi.prism.yaml is up" test $? -eq 0
mgconf() {   # mgconf DIR ENDPOINT
  mkdir -p "$T/$1"; secret "$T/$1/mg.key" "$MGKEY"
  newconf "$1" "
providers = ( { name = \"mg\"; type = \"mailgun\"; endpoint = \"$2\"; allow_plaintext = true;
                api_key_file = \"mg.key\"; domain = \"mg.example.com\"; } );
senders = ( { name = \"m\"; from = \"Mia <mia@mg.example.com>\"; provider = \"mg\"; daily_limit = 1000; } );"
}
mgconf mg "http://127.0.0.1:$P_RMG"
at 0 mg pull >"$T/mg/pull1.out" 2>"$T/mg/pull1.err"
eq "mailgun pull 1: exit 0, feed ok" "$?:$(cat "$T/mg/pull1.out")" "0:feed mg: ok"
n1=$(wc -l <"$T/rec-mg.log" | tr -d ' ')
eq "mailgun pull 1: one request (the example's paging.next is on api.mailgun.net: not followed, the key stays home)" "$n1" 1
eq "mailgun pull 1: the example event stored" "$(qd mg "SELECT group_concat(event_key || ' ' || type) FROM events")" "mg:OMTXD3-sSmKIQa1gSKkYVA rejected"
at 600 mg pull >"$T/mg/pull2.out" 2>"$T/mg/pull2.err"
eq "mailgun pull 2: exit 0, feed ok" "$?:$(cat "$T/mg/pull2.out")" "0:feed mg: ok"
eq "mailgun pull 2: stored once" "$(qd mg "SELECT count(*) FROM events")" 1
chk http2xx mailgun "$T/rec-mg.log"
chk mgreq "$T/rec-mg.log" $((NOW + 600)) "$n1"

mgconf mgp "http://127.0.0.1:$P_RPAGE"
t0=$(date +%s)
at 0 mgp pull >"$T/mgp/pull1.out" 2>"$T/mgp/pull1.err"
eq "mailgun endless paging: pull exits 0, feed ok" "$?:$(cat "$T/mgp/pull1.out")" "0:feed mg: ok"
np=$(wc -l <"$T/rec-page.log" | tr -d ' ')
echo "# mailgun endless paging: $np requests in $(($(date +%s) - t0)) s"
check "mailgun endless paging: paging.next followed, and the pull stopped at a bound (2 <= $np <= 50)" test "$np" -ge 2 -a "$np" -le 50
eq "mailgun endless paging: one event per page fetched" "$(qd mgp "SELECT count(*) FROM events")" "$np"
at 600 mgp pull >/dev/null 2>&1
eq "mailgun endless paging: a second pull re-reads the same pages and stores nothing new" "$(qd mgp "SELECT count(*) FROM events")" "$np"

# ==== robustness: feeds that answer garbage, 500, or never ====================================
mkdir -p "$T/rob"; secret "$T/rob/secret" "$SECRET"; secret "$T/rob/sg.key" "$SGKEY"; secret "$T/rob/mg.key" "$MGKEY"
newconf rob "
providers = (
  { name = \"dry\"; type = \"file\"; dir = \"outbox\"; },
  { name = \"sg-garbage\"; type = \"sendgrid\"; endpoint = \"http://127.0.0.1:$P_GARB\"; allow_plaintext = true; api_key_file = \"sg.key\"; },
  { name = \"mg-garbage\"; type = \"mailgun\"; endpoint = \"http://127.0.0.1:$P_GARB\"; allow_plaintext = true; api_key_file = \"mg.key\";
    domain = \"mg.example.com\"; },
  { name = \"ses-garbage\"; type = \"ses\"; region = \"us-east-1\"; endpoint = \"http://127.0.0.1:$P_GARB\"; allow_plaintext = true;
    sqs_queue_url = \"http://127.0.0.1:$P_GARB$QPATH\"; sqs_endpoint = \"http://127.0.0.1:$P_GARB\";
    access_key_id = \"AKIDEXAMPLE\"; secret_file = \"secret\"; },
  { name = \"mg-500\"; type = \"mailgun\"; endpoint = \"http://127.0.0.1:$P_500\"; allow_plaintext = true; api_key_file = \"mg.key\";
    domain = \"mg.example.com\"; },
  { name = \"ses-hang\"; type = \"ses\"; region = \"us-east-1\"; endpoint = \"$SQSURL\"; allow_plaintext = true;
    sqs_queue_url = \"http://127.0.0.1:$P_HANG$QPATH\"; sqs_endpoint = \"http://127.0.0.1:$P_HANG\";
    access_key_id = \"AKIDEXAMPLE\"; secret_file = \"secret\"; },
  { name = \"ses-good\"; type = \"ses\"; region = \"us-east-1\"; endpoint = \"$SQSURL\"; allow_plaintext = true;
    access_key_id = \"AKIDEXAMPLE\"; secret_file = \"secret\"; }
);
senders = ( { name = \"d\"; from = \"Dora <dora@d-mail.example>\"; provider = \"dry\"; daily_limit = 1000; } );"
jobs "$T/rob/j.jsonl" 5 acme rob rob-
orc rob enqueue "$T/rob/j.jsonl" >/dev/null
t0=$(date +%s)
runat 0 rob r1
dt=$(($(date +%s) - t0))
echo "# robustness: the run with a hanging feed took $dt s"
eq "robustness r1: the 5 jobs sent" "$(qd rob "SELECT count(*) FROM jobs WHERE state = 'sent'")" 5
check "robustness r1: the hang is cut off by a timeout (run took $dt s < 45)" test "$dt" -lt 45
qd rob "SELECT '# feed ' || account || ': ' || coalesce(last_error, 'ok') FROM feeds WHERE list = '' ORDER BY account"
for a in sg-garbage mg-garbage ses-garbage mg-500 ses-hang; do
  check "robustness r1: feeds.last_error recorded for $a" \
    test -n "$(qd rob "SELECT last_error FROM feeds WHERE account = '$a' AND list = '' AND last_error != ''")"
done
eq "robustness r1: ses-good has no error" "$(qd rob "SELECT coalesce(last_error, 'none') FROM feeds WHERE account = 'ses-good' AND list = ''")" none
check "robustness r1: each bad endpoint was asked" sh -c "grep -q '\"mode\": \"garbage\"' '$T/bad.log' && grep -q '\"mode\": \"500\"' '$T/bad.log' && grep -q '\"mode\": \"hang\"' '$T/bad.log'"
prom=$T/rob/reports/outreach.prom
grep '^outreach_feed_last_success_timestamp_seconds' "$prom" | sed 's/^/# prom: /'
eq "robustness r1: outreach.prom has outreach_feed_last_success_timestamp_seconds only for the feed that succeeded" \
  "$(grep '^outreach_feed_last_success_timestamp_seconds{' "$prom" | sed 's/.*account="\([^"]*\)".*/\1/' | sort | tr '\n' ' ')" "ses-good "
jobs "$T/rob/k.jsonl" 3 acme rob2 rob2-
orc rob enqueue "$T/rob/k.jsonl" >/dev/null
runat 30 rob r2
eq "robustness r2: the next run sends its 3 too" "$(qd rob "SELECT count(*) FROM jobs WHERE campaign = 'rob2' AND state = 'sent'")" 3
# a run whose deadline is shorter than the feed's hang (as several hanging accounts add up
# to more than the default 50 s): the feed must not eat the whole sending time
jobs "$T/rob/l.jsonl" 3 acme rob3 rob3-
orc rob enqueue "$T/rob/l.jsonl" >/dev/null
t0=$(date +%s)
OUTREACH_NOW=$((NOW + 400)) "$OR" -c "$T/rob/conf" run --deadline 10 2>"$T/rob/run-r3.err"
eq "robustness r3 (--deadline 10, a feed hanging 15 s): run exits 0" "$?" 0
echo "# robustness r3: $(($(date +%s) - t0)) s; ses-hang: $(qd rob "SELECT coalesce(last_error, 'ok') FROM feeds WHERE account = 'ses-hang' AND list = ''" | cut -c1-80)"
eq "robustness r3 (--deadline 10, a feed hanging 15 s): its 3 jobs are still sent" \
  "$(qd rob "SELECT count(*) FROM jobs WHERE campaign = 'rob3' AND state = 'sent'")" 3

# ==== one-click unsubscribe (RFC 8058): tokens, the command, the CGI ==========================
newconf unsub "$default_senders" 'unsubscribe = { url = "https://example.com/u"; mailto = "unsub@example.com"; };'
i=1; while [ $i -le 4 ]; do job "u$i@rcpt.example" acme ',"campaign":"news"'; i=$((i + 1)); done >"$T/unsub/j.jsonl"
orc unsub enqueue "$T/unsub/j.jsonl" >/dev/null
runat 0 unsub r1
# each .eml: the List-Unsubscribe URIs (unfolded) and the token, one line per message
$PY - "$T/unsub/outbox" >"$T/unsub/tokens" <<'EOF'
import email, email.policy, glob, re, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.eml")):
    m = email.message_from_binary_file(open(f, "rb"), policy=email.policy.compat32)
    lu = re.sub(r"\r?\n[ \t]+", " ", m.get("List-Unsubscribe", ""))
    lp = m.get("List-Unsubscribe-Post", "")
    to = email.utils.parseaddr(m.get("To", ""))[1]
    t = re.fullmatch(r"<https://example\.com/u\?t=([A-Za-z0-9_.-]+)>, ?<mailto:unsub@example\.com\?subject=unsubscribe%20([A-Za-z0-9_.-]+)>", lu)
    good = bool(t) and t.group(1) == t.group(2) and lp == "List-Unsubscribe=One-Click" and len(m.get_all("List-Unsubscribe")) == 1
    print(to, t.group(1) if t else "-", "good" if good else "bad:" + repr((lu, lp))[:300])
EOF
sed 's/^/# /' "$T/unsub/tokens" | cut -c1-160
eq "unsub: 4 messages with List-Unsubscribe <https…?t=TOKEN>, <mailto:…> and List-Unsubscribe-Post: List-Unsubscribe=One-Click" \
  "$(grep -c ' good$' "$T/unsub/tokens")" 4
grep -q 'List-Unsubscribe: <https://example.com/u?t=' "$T/unsub/outbox"/*.eml
check "unsub: the header starts with the https URI" test $? -eq 0
tok() { sed -n "s/^$1 \([^ ]*\) .*/\1/p" "$T/unsub/tokens"; }
TOK1=$(tok u1@rcpt.example) TOK2=$(tok u2@rcpt.example) TOK3=$(tok u3@rcpt.example)
at 60 unsub unsubscribe "$TOK1" >"$T/unsub/cmd.out" 2>&1
eq "unsub: 'outreach unsubscribe TOKEN' exits 0" "$?" 0
sed 's/^/# unsubscribe: /' "$T/unsub/cmd.out"
eq "unsub: u1 suppressed for client acme" "$(qd unsub "SELECT count(*) FROM suppressions WHERE address = 'u1@rcpt.example' AND client = 'acme'")" 1
eq "unsub: ... and for acme only (scope client: no global row, nothing else)" "$(qd unsub "SELECT group_concat(address || ',' || client, ' ') FROM suppressions")" "u1@rcpt.example,acme"
eq "unsub: the unsubscribe event carries the token's client and campaign" \
  "$(qd unsub "SELECT coalesce(client, '-') || ' ' || coalesce(campaign, '-') FROM events WHERE type = 'unsubscribed' AND rcpt = 'u1@rcpt.example'")" "acme news"
# forged, altered, truncated and garbage tokens: exit 65, nothing suppressed
forge() {   # forge TOKEN WHAT : one character changed / the token cut / garbage
  $PY - "$1" "$2" <<'EOF'
import sys
t, what = sys.argv[1], sys.argv[2]
p, _, s = t.partition(".")
flip = lambda c: "B" if c != "B" else "C"
if what == "payload": i = len(p) // 2; p = p[:i] + flip(p[i]) + p[i + 1:]; print(p + "." + s)
elif what == "signature": i = len(s) // 2; s = s[:i] + flip(s[i]) + s[i + 1:]; print(p + "." + s)
elif what == "truncated": print(t[:-5])
elif what == "nosig": print(p + ".")
elif what == "shortpayload": print(p[:-2] + "." + s)   # payload cut short, the signature kept
else: print("not-a-token!")
EOF
}
nsup=$(qd unsub "SELECT count(*) FROM suppressions")
for w in payload signature truncated nosig shortpayload garbage; do
  ft=$(forge "$TOK2" $w)
  at 70 unsub unsubscribe "$ft" >/dev/null 2>"$T/unsub/forge.err"
  eq "unsub: a $w token is refused with 65" "$?" 65
done
eq "unsub: ... and nothing more suppressed" "$(qd unsub "SELECT count(*) FROM suppressions")" "$nsup"
for c in acme beta; do
  printf '{"client":"%s","campaign":"news","to":"U1@rcpt.example","subject":"Again","text":"Hello again"}\n' $c
done >"$T/unsub/again.jsonl"
set -- $(orc unsub enqueue "$T/unsub/again.jsonl") x x
runat 120 unsub r2
eq "unsub: a new acme job to u1 ends suppressed" "$(qd unsub "SELECT state FROM jobs WHERE id = '$1'")" suppressed
eq "unsub: a beta job to u1 is sent (the unsubscribe was for acme)" "$(qd unsub "SELECT state FROM jobs WHERE id = '$2'")" sent

# the CGI by hand (CGI/1.1 environment)
cgi() {   # cgi METHOD TOKEN [BODY] : the response on stdout
  if [ "$1" = POST ]; then
    body=${3:-List-Unsubscribe=One-Click}
    printf '%s' "$body" | env GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 REQUEST_METHOD=POST \
      QUERY_STRING="t=$2" CONTENT_TYPE=application/x-www-form-urlencoded CONTENT_LENGTH=${#body} \
      SCRIPT_NAME=/u REMOTE_ADDR=127.0.0.1 "$OR" -c "$T/unsub/conf" cgi
  else
    env GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 REQUEST_METHOD="$1" QUERY_STRING="t=$2" SCRIPT_NAME=/u \
      REMOTE_ADDR=127.0.0.1 "$OR" -c "$T/unsub/conf" cgi </dev/null
  fi
}
nunsub() { ls -A "$T/unsub/spool/unsub" | wc -l | tr -d ' '; }
cgi GET "$TOK2" >"$T/unsub/get.out" 2>"$T/unsub/get.err"
eq "cgi GET: exit 0" "$?" 0
check "cgi GET: Status: 200" grep -q '^Status: 200' "$T/unsub/get.out"
check "cgi GET: a page with a POST form (one click to confirm)" grep -qi '<form[^>]*method="post"' "$T/unsub/get.out"
check "cgi GET: Content-Type text/html" grep -qi '^Content-Type: text/html' "$T/unsub/get.out"
eq "cgi GET: nothing dropped into unsub/" "$(nunsub)" 0
cgi POST "$TOK2" "List-Unsubscribe=One-Click" >"$T/unsub/post.out" 2>"$T/unsub/post.err"
eq "cgi POST: exit 0" "$?" 0
check "cgi POST: Status: 200" grep -q '^Status: 200' "$T/unsub/post.out"
eq "cgi POST: exactly one file in spool/unsub/" "$(nunsub)" 1
cgi POST "$TOK2" "List-Unsubscribe=One-Click" >/dev/null 2>&1
eq "cgi POST again (same token): still one file" "$(nunsub)" 1
for w in payload signature truncated garbage; do
  cgi GET "$(forge "$TOK3" $w)" >"$T/unsub/bad.out" 2>/dev/null
  check "cgi GET with a $w token: Status: 400" grep -q '^Status: 400' "$T/unsub/bad.out"
  cgi POST "$(forge "$TOK3" $w)" "List-Unsubscribe=One-Click" >"$T/unsub/bad.out" 2>/dev/null
  check "cgi POST with a $w token: Status: 400" grep -q '^Status: 400' "$T/unsub/bad.out"
done
env REQUEST_METHOD=GET "$OR" -c "$T/unsub/conf" cgi >"$T/unsub/bad.out" 2>/dev/null </dev/null
check "cgi without a token: Status: 400" grep -q '^Status: 400' "$T/unsub/bad.out"
eq "cgi: bad tokens dropped nothing" "$(nunsub)" 1
eq "cgi: not applied before the next run" "$(qd unsub "SELECT count(*) FROM suppressions WHERE address = 'u2@rcpt.example'")" 0
runat 180 unsub r3
eq "cgi: the next run applies it: u2 suppressed for acme" "$(qd unsub "SELECT count(*) FROM suppressions WHERE address = 'u2@rcpt.example' AND client = 'acme'")" 1
eq "cgi: ... for acme only (no global row)" "$(qd unsub "SELECT group_concat(client) FROM suppressions WHERE address = 'u2@rcpt.example'")" acme
eq "cgi: unsub/ is empty after the run" "$(nunsub)" 0
eq "cgi: u3 and u4 untouched" "$(qd unsub "SELECT count(*) FROM suppressions WHERE address IN ('u3@rcpt.example', 'u4@rcpt.example')")" 0

# the same behind a real web server: lighttpd (mod_cgi) on a loopback port, as this user
LIGHTTPD=$(command -v lighttpd 2>/dev/null || { [ -x /usr/sbin/lighttpd ] && echo /usr/sbin/lighttpd; })
if [ -n "$LIGHTTPD" ]; then
  mkdir -p "$T/www"
  printf '#!/bin/sh\nexec "%s" -c "%s" cgi\n' "$OR" "$T/unsub/conf" >"$T/www/u.cgi"
  chmod 755 "$T/www/u.cgi"
  cat >"$T/lighttpd.conf" <<EOF
server.document-root = "$T/www"
server.bind = "127.0.0.1"
server.port = $P_HTTPD
server.modules = ( "mod_cgi" )
server.errorlog = "$T/lighttpd.err"
cgi.assign = ( ".cgi" => "" )
EOF
  bg lighttpd "$LIGHTTPD" -D -f "$T/lighttpd.conf"
  U="http://127.0.0.1:$P_HTTPD/u.cgi"
  i=0; until curl -s -o /dev/null --max-time 1 "$U" || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
  curl -s -i --max-time 10 "$U?t=$TOK3" >"$T/lh-get.out"
  check "lighttpd GET: HTTP 200 with the confirmation form" sh -c "head -1 '$T/lh-get.out' | grep -q ' 200' && grep -qi '<form[^>]*method=\"post\"' '$T/lh-get.out'"
  curl -s -i --max-time 10 -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data 'List-Unsubscribe=One-Click' \
    "$U?t=$TOK3" >"$T/lh-post.out"
  check "lighttpd one-click POST: HTTP 200" sh -c "head -1 '$T/lh-post.out' | grep -q ' 200'"
  eq "lighttpd one-click POST: one file in unsub/" "$(nunsub)" 1
  curl -s -i --max-time 10 -X POST --data 'List-Unsubscribe=One-Click' "$U?t=$(forge "$TOK3" signature)" >"$T/lh-bad.out"
  check "lighttpd POST with an altered token: HTTP 400" sh -c "head -1 '$T/lh-bad.out' | grep -q ' 400'"
  runat 240 unsub r4
  eq "lighttpd: the next run applies it: u3 suppressed for acme" "$(qd unsub "SELECT count(*) FROM suppressions WHERE address = 'u3@rcpt.example' AND client = 'acme'")" 1
  eq "lighttpd: unsub/ empty" "$(nunsub)" 0
  [ -s "$T/lighttpd.err" ] && sed 's/^/# lighttpd: /' "$T/lighttpd.err" | grep -v 'server started\|server stopped' | head -5
else
  ok "lighttpd: not installed (apt-get install lighttpd), CGI behind a real web server not tried # SKIP"
fi
echo "# feedback.sh: $(($(date +%s) - T0)) s"

finish
