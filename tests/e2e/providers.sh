#!/bin/sh
# tests/e2e/providers.sh — the remote providers end to end against offline peers
# (doc/design.md §6, §7, §9; the providers' APIs as tests/data/specs describes them):
#   SES v2     aws-ses-v2-local behind tests/peers/recorder.py, which re-computes
#              every SigV4 signature (the emulator checks none);
#   SendGrid   Prism mock (--errors) of tsg_mail_v3.yaml behind the recorder, then
#              Prism proxy in front of a tiny responder that sends X-Message-Id;
#   Mailgun    Prism mock of openapi.prism.yaml behind the recorder;
#   SMTP       tests/peers/smtp-peer.js (STARTTLS, AUTH only after TLS, 550/454
#              recipients), a wrong password, an untrusted certificate;
#   failover   a sender whose primary account refuses connections moves to its
#              fallback once the circuit opens, and every job goes out once;
# and prints the SES send rate at concurrency 1 and 16, direct and behind 40 ms of
# added latency (figures, not assertions).  KEEP=1 keeps the scratch directory.
# Peers listen on 127.0.0.1 only, on free high ports, and are killed on exit.
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


for f in "$NM/aws-ses-v2-local/dist/cli.js" "$NM/@stoplight/prism-cli/dist/index.js" "$NM/smtp-server/package.json" \
         "$SPECS/sendgrid/tsg_mail_v3.yaml" "$SPECS/mailgun/openapi.prism.yaml"; do
  if [ ! -e "$f" ]; then notok "test peers installed" "missing $f (cd tests/peers && npm ci)"; finish; fi
done

wait_http() {   # wait_http URL SECONDS : any HTTP answer counts
  i=0
  while [ $i -lt $(($2 * 10)) ]; do
    c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null)
    [ "$c" != 000 ] && [ -n "$c" ] && return 0
    sleep 0.1; i=$((i + 1))
  done
  return 1
}
secret() { printf '%s\n' "$2" >"$T/$1"; chmod 600 "$T/$1"; }   # secret FILE VALUE

secret ses.secret "$SECRET"
secret sg.key "$SGKEY"
secret mg.key "$MGKEY"
secret smtp.pass 'smtp-pass-1'
secret smtp.badpass 'not-the-password'

# ---- peers -------------------------------------------------------------------
# distinct free ports, all bound at once so none is handed out twice
set -- $($PY -c 'import socket
ss = [socket.socket() for _ in range(14)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
P_SES=$1 P_RSES=$2 P_SG=$3 P_RSG=$4 P_SGP=$5 P_RESP=$6 P_MG=$7 P_RMG=$8 P_SMTP=$9
shift 9
P_DEAD=$1 P_FSES=$2 P_FSG=$3 P_FMG=$4 P_SLOW=$5
PRISM="$NM/@stoplight/prism-cli/dist/index.js"

# the SendGrid stand-in behind Prism's proxy: 202 with X-Message-Id sg-<n>
cat >"$T/responder.py" <<'EOF'
import http.server, json, sys, threading
port, log = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock(); n = [0]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            n[0] += 1; mid = "sg-%d" % n[0]
            with open(log, "a") as f:
                f.write(json.dumps({"path": self.path, "x_message_id": mid, "body": body.decode("utf-8", "replace")}) + "\n")
        self.send_response(202); self.send_header("X-Message-Id", mid)
        self.send_header("Content-Length", "0"); self.end_headers()
    do_GET = do_POST
s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H); s.daemon_threads = True
print("responder listening", flush=True); s.serve_forever()
EOF

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
  -days 2 -keyout "$T/smtp-key.pem" -out "$T/smtp-cert.pem" >/dev/null 2>&1 || notok "openssl made a certificate"

bg prism-sg node "$PRISM" mock -h 127.0.0.1 -p "$P_SG" --errors "$SPECS/sendgrid/tsg_mail_v3.yaml"
bg prism-mg node "$PRISM" mock -h 127.0.0.1 -p "$P_MG" --errors "$SPECS/mailgun/openapi.prism.yaml"
bg prism-sgp node "$PRISM" proxy -h 127.0.0.1 -p "$P_SGP" --errors "$SPECS/sendgrid/tsg_mail_v3.yaml" "http://127.0.0.1:$P_RESP"
bg ses node "$NM/aws-ses-v2-local/dist/cli.js" --host 127.0.0.1 --port "$P_SES"
bg responder $PY "$T/responder.py" "$P_RESP" "$T/responder.log"
bg smtp node "$PEERS/smtp-peer.js" "$P_SMTP" "$T/smtp-cert.pem" "$T/smtp-key.pem" u smtp-pass-1 "$T/smtp-out"
bg rec-ses $PY "$PEERS/recorder.py" "$P_RSES" "http://127.0.0.1:$P_SES" "$T/rec-ses.log" --sigv4-secret "$SECRET"
bg rec-sg $PY "$PEERS/recorder.py" "$P_RSG" "http://127.0.0.1:$P_SG" "$T/rec-sg.log"
bg rec-mg $PY "$PEERS/recorder.py" "$P_RMG" "http://127.0.0.1:$P_MG" "$T/rec-mg.log"
bg rec-fses $PY "$PEERS/recorder.py" "$P_FSES" "http://127.0.0.1:$P_SES" "$T/rec-fses.log" --sigv4-secret "$SECRET"
bg rec-fsg $PY "$PEERS/recorder.py" "$P_FSG" "http://127.0.0.1:$P_SG" "$T/rec-fsg.log"
bg rec-fmg $PY "$PEERS/recorder.py" "$P_FMG" "http://127.0.0.1:$P_MG" "$T/rec-fmg.log"
bg rec-slow $PY "$PEERS/recorder.py" "$P_SLOW" "http://127.0.0.1:$P_SES" "$T/rec-slow.log" --delay 40

wait_line ses 'server running' 20 && wait_http "http://127.0.0.1:$P_SES/health-check" 10 &&
  wait_line smtp 'smtp-peer listening' 10 && wait_line responder 'responder listening' 10 &&
  wait_line rec-ses 'recorder listening' 10 && wait_line rec-fses 'recorder listening' 10
check "SES emulator, SMTP peer, responder and recorders are up" test $? -eq 0

# The checker: recorder logs, peer stores and the ledger, judged in Python (stdlib).
cat >"$T/chk.py" <<'EOF'
import base64, email, email.policy, json, re, sqlite3, sys, urllib.request
nfail = 0
def ok(name, cond, detail=""):
    global nfail
    if cond: print("ok - " + name)
    else:
        nfail += 1; print("not ok - " + name)
        if detail: print("#   " + str(detail)[:600])
def recs(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]
def ledger(db):
    c = sqlite3.connect(db); c.row_factory = sqlite3.Row
    return {r["id"]: dict(r) for r in c.execute("SELECT * FROM jobs")}
def bad(items):   # first few offenders, for the diagnostic line
    return items[:3]
def as_written(pfx, tos):
    """RFC 5321 §2.4: the local part goes out as the producer wrote it, the domain lower-cased."""
    mixed = [t for t in tos if t.lower().endswith(".mixed@example.com")]
    ok(pfx + ": the mixed-case address went out as written, domain lower-cased (%s)" % mixed,
       mixed and all(re.fullmatch(r"[a-z-]+1\.Mixed@example\.com", t) for t in mixed), tos[:3])
def split(pfx, rs, send_path):
    """The send requests, and the rest (feed pulls, GetAccount) listed as a comment."""
    sends = [r for r in rs if r["method"] == "POST" and r["path"] == send_path]
    other = [r for r in rs if r not in sends]
    for r in other:
        print("# %s: also %s %s -> %s" % (pfx, r["method"], r["path"][:100], r["status"]))
    ok(pfx + ": every other request is a GET (feed or limits), never a send",
       all(r["method"] == "GET" for r in other), bad([(r["method"], r["path"]) for r in other if r["method"] != "GET"]))
    return sends, other
def common_http(pfx, rs, expect_path):
    ok(pfx + ": every request went to " + expect_path,
       all(r["method"] == "POST" and r["path"] == expect_path for r in rs),
       bad([(r["method"], r["path"]) for r in rs if r["path"] != expect_path]))
    ok(pfx + ": every request has a Content-Length and no chunked Transfer-Encoding",
       all("content-length" in r["headers"] and "chunked" not in r["headers"].get("transfer-encoding", "").lower()
           for r in rs), bad([r["headers"] for r in rs if "content-length" not in r["headers"]]))
    ok(pfx + ": every response is 2xx without sl-violations",
       all(200 <= r["status"] < 300 and "sl-violations" not in r["response_headers"] for r in rs),
       bad([(r["status"], r["response_headers"].get("sl-violations"), r["response_body"][:200]) for r in rs
            if not (200 <= r["status"] < 300) or "sl-violations" in r["response_headers"]]))

def ses(args):
    log, db, store_url, cs_by_sender, expect = args[0], args[1], args[2], json.loads(args[3]), json.loads(args[4])
    L = ledger(db); rs = recs(log)
    sends, gets = split("ses", rs, "/v2/email/outbound-emails")
    sent = {i: j for i, j in L.items() if j["state"] == "sent"}
    ok("ses: all %d jobs sent" % len(L), len(sent) == len(L) == len(expect), {i: (j["state"], j["last_error"]) for i, j in L.items() if j["state"] != "sent"})
    ok("ses: provider_id is the emulator's ses-NNN",
       all(re.fullmatch(r"ses-\d+", j["provider_id"] or "") for j in sent.values()), [j["provider_id"] for j in sent.values()][:3])
    ok("ses: message_id is <provider_id@email.amazonses.com>",
       all(j["message_id"] == "<%s@email.amazonses.com>" % j["provider_id"] for j in sent.values()),
       [(j["provider_id"], j["message_id"]) for j in sent.values()][:3])
    ok("ses: one recorded SendEmail per job (%d)" % len(sends), len(sends) == len(L), len(sends))
    common_http("ses", sends, "/v2/email/outbound-emails")
    ok("ses: every SigV4 signature verifies (%d requests)" % len(rs), all(r.get("sigv4_ok") for r in rs),
       bad([r.get("sigv4_error") for r in rs if not r.get("sigv4_ok")]))
    are = re.compile(r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/us-east-1/ses/aws4_request, "
                     r"SignedHeaders=content-type;host;x-amz-date, Signature=[0-9a-f]{64}")
    ok("ses: Authorization has the SigV4 form with scope us-east-1/ses",
       all(are.fullmatch(r["headers"].get("authorization", "")) for r in sends), bad([r["headers"].get("authorization") for r in sends]))
    ok("ses: GETs (GetAccount, suppression list) are signed over host;x-amz-date",
       all(re.search(r"SignedHeaders=host;x-amz-date,", r["headers"].get("authorization", "")) for r in gets),
       bad([r["headers"].get("authorization") for r in gets]))
    seen, probs, wire = {}, [], []
    for r in sends:
        try:
            b = json.loads(r["body"])
        except ValueError:
            probs.append("body is not JSON"); continue
        tags = {t.get("Name"): t.get("Value") for t in b.get("EmailTags", [])}
        jid = tags.get("job"); j = L.get(jid)
        if not j:
            probs.append("EmailTags job %r is not a ledger id" % jid); continue
        seen[jid] = seen.get(jid, 0) + 1
        tos = b.get("Destination", {}).get("ToAddresses", [])
        wire.extend(tos)
        if [t.lower() for t in tos] != [j["rcpt"]]:
            probs.append("%s: ToAddresses %r" % (jid, tos))
        try:
            raw = base64.b64decode(b["Content"]["Raw"]["Data"], validate=True).decode("utf-8", "replace")
        except Exception as e:
            probs.append("%s: Content.Raw.Data not base64: %s" % (jid, e)); continue
        if "X-Outreach-Job: %s\r\n" % jid not in raw:
            probs.append("%s: raw message lacks X-Outreach-Job" % jid)
        if tags != {"client": j["client"], "campaign": j["campaign"], "job": jid}:
            probs.append("%s: EmailTags %r" % (jid, tags))
        want_cs = cs_by_sender.get(j["sender"])
        if b.get("ConfigurationSetName") != want_cs:
            probs.append("%s (sender %s): ConfigurationSetName %r, expected %r" % (jid, j["sender"], b.get("ConfigurationSetName"), want_cs))
    ok("ses: bodies carry Raw.Data with X-Outreach-Job, EmailTags client/campaign/job, the right ConfigurationSetName",
       not probs, probs[:3])
    as_written("ses", wire)
    ok("ses: each job's request recorded exactly once", set(seen) == set(L) and all(v == 1 for v in seen.values()), seen)
    ok("ses: both senders used (the sender-level configuration_set is exercised)",
       set(j["sender"] for j in L.values()) == set(cs_by_sender), set(j["sender"] for j in L.values()))
    store = json.load(urllib.request.urlopen(store_url))["emails"]
    got = {}
    for e in store:
        for to in e["destination"]["to"]:
            m = re.search(r"<([^>]+)>", to); got[(m.group(1) if m else to).lower()] = e["subject"]
    ok("ses: the emulator stored %d emails" % len(expect), len(store) == len(expect), len(store))
    ok("ses: stored recipients and decoded subjects match the jobs (Cyrillic too)", got == expect,
       [(k, got.get(k), v) for k, v in expect.items() if got.get(k) != v][:3])

def sendgrid(args):
    log, db, key = args[0], args[1], args[2]
    L = ledger(db); rs, other = split("sendgrid", recs(log), "/v3/mail/send")
    ok("sendgrid: every request carries Authorization: Bearer <key>",
       all(r["headers"].get("authorization") == "Bearer " + key for r in rs + other))
    ok("sendgrid: all %d jobs sent" % len(L), all(j["state"] == "sent" for j in L.values()),
       {i: (j["state"], j["last_error"]) for i, j in L.items() if j["state"] != "sent"})
    ok("sendgrid: one recorded request per job", len(rs) == len(L), len(rs))
    common_http("sendgrid", rs, "/v3/mail/send")
    ok("sendgrid: Authorization: Bearer <key>", all(r["headers"].get("authorization") == "Bearer " + key for r in rs),
       bad([r["headers"].get("authorization") for r in rs]))
    probs, seen, wire = [], set(), []
    for r in rs:
        b = json.loads(r["body"]); p = b["personalizations"][0]
        ca = p.get("custom_args", {}); jid = ca.get("job_id"); j = L.get(jid)
        if not j:
            probs.append("custom_args.job_id %r not a ledger id" % jid); continue
        seen.add(jid)
        if ca != {"client": j["client"], "campaign": j["campaign"], "job_id": jid} or not all(isinstance(v, str) for v in ca.values()):
            probs.append("%s: custom_args %r" % (jid, ca))
        if b.get("categories") != [j["client"], j["campaign"]]:
            probs.append("%s: categories %r" % (jid, b.get("categories")))
        h = b.get("headers", {})
        if h.get("X-Outreach-Job") != jid:
            probs.append("%s: headers X-Outreach-Job %r" % (jid, h.get("X-Outreach-Job")))
        if not re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", h.get("Message-ID", "")) or h.get("Message-ID") != j["message_id"]:
            probs.append("%s: headers Message-ID %r, ledger %r" % (jid, h.get("Message-ID"), j["message_id"]))
        wire.extend(t["email"] for t in p.get("to", []))
        if [t["email"].lower() for t in p.get("to", [])] != [j["rcpt"]]:
            probs.append("%s: to %r" % (jid, p.get("to")))
    ok("sendgrid: custom_args {client,campaign,job_id} strings, categories [client,campaign], headers X-Outreach-Job and Message-ID",
       not probs, probs[:3])
    ok("sendgrid: every job recorded", seen == set(L), len(seen))
    as_written("sendgrid", wire)

def sendgrid_proxy(args):
    rlog, db = args[0], args[1]
    L = ledger(db); rs = recs(rlog)
    by_job = {json.loads(r["body"])["personalizations"][0]["custom_args"]["job_id"]: r["x_message_id"] for r in rs}
    ok("sendgrid proxy: all %d jobs sent through Prism's validating proxy" % len(L),
       all(j["state"] == "sent" for j in L.values()) and len(rs) == len(L),
       ({i: (j["state"], j["last_error"]) for i, j in L.items() if j["state"] != "sent"}, len(rs)))
    ok("sendgrid proxy: the ledger provider_id is the X-Message-Id", all(L[i]["provider_id"] == m for i, m in by_job.items()) and set(by_job) == set(L),
       [(L[i]["provider_id"] if i in L else None, m) for i, m in by_job.items()][:3])

def mailgun(args):
    log, db, key, domain = args[0], args[1], args[2], args[3]
    L = ledger(db); rs, other = split("mailgun", recs(log), "/v3/%s/messages.mime" % domain)
    ok("mailgun: every request carries Authorization: Basic api:KEY",
       all(r["headers"].get("authorization") == "Basic " + base64.b64encode(("api:" + key).encode()).decode() for r in rs + other))
    ok("mailgun: all %d jobs sent" % len(L), all(j["state"] == "sent" for j in L.values()),
       {i: (j["state"], j["last_error"]) for i, j in L.items() if j["state"] != "sent"})
    ok("mailgun: provider_id is Prism's example id without brackets",
       all(j["provider_id"] == "message-id" for j in L.values()), [j["provider_id"] for j in L.values()][:3])
    ok("mailgun: one recorded request per job", len(rs) == len(L), len(rs))
    common_http("mailgun", rs, "/v3/%s/messages.mime" % domain)
    auth = "Basic " + base64.b64encode(("api:" + key).encode()).decode()
    ok("mailgun: Authorization: Basic api:KEY", all(r["headers"].get("authorization") == auth for r in rs),
       bad([r["headers"].get("authorization") for r in rs]))
    probs, seen, wire = [], set(), []
    for r in rs:
        ct = r["headers"].get("content-type", "")
        if not ct.startswith("multipart/form-data"):
            probs.append("content-type %r" % ct); continue
        m = email.message_from_bytes(("Content-Type: %s\r\n\r\n" % ct).encode() + r["body"].encode("utf-8"),
                                     policy=email.policy.compat32)
        fields = []
        for part in m.get_payload():
            name = part.get_param("name", header="content-disposition")
            fields.append((name, part))
        vals = lambda n: [p.get_payload(decode=False) if not p.is_multipart() else p for k, p in fields if k == n]
        jid = (vals("v:job_id") or [None])[0]; j = L.get(jid)
        if not j:
            probs.append("v:job_id %r not a ledger id" % jid); continue
        seen.add(jid)
        wire.extend(vals("to"))
        if [t.lower() for t in vals("to")] != [j["rcpt"]]:
            probs.append("%s: to %r" % (jid, vals("to")))
        if vals("o:tag") != [j["client"], j["campaign"]]:
            probs.append("%s: o:tag %r" % (jid, vals("o:tag")))
        msg = [p for k, p in fields if k == "message"]
        if len(msg) != 1 or not msg[0].get_param("filename", header="content-disposition"):
            probs.append("%s: no message file part" % jid); continue
        body = r["body"]
        if "X-Outreach-Job: %s\r\n" % jid not in body or "MIME-Version: 1.0" not in body:
            probs.append("%s: the message part lacks our MIME (X-Outreach-Job, MIME-Version)" % jid)
    ok("mailgun: multipart has to, o:tag client+campaign, v:job_id and the message file part with our MIME", not probs, probs[:3])
    ok("mailgun: every job recorded", seen == set(L), len(seen))
    as_written("mailgun", wire)

def failover(args):
    db, ses_log, sg_log, mg_log, store_url, status_json = args
    L = ledger(db)
    ok("failover: all %d jobs sent" % len(L), len(L) == 30 and all(j["state"] == "sent" for j in L.values()),
       {i: (j["state"], j["last_error"]) for i, j in L.items() if j["state"] != "sent"})
    got = []
    for r in recs(ses_log):
        if r["method"] == "POST" and r["path"] == "/v2/email/outbound-emails" and 200 <= r["status"] < 300:
            got.append(("ses", {t["Name"]: t["Value"] for t in json.loads(r["body"])["EmailTags"]}["job"]))
    for r in recs(sg_log):
        if r["method"] == "POST" and r["path"] == "/v3/mail/send" and 200 <= r["status"] < 300:
            got.append(("sg", json.loads(r["body"])["personalizations"][0]["custom_args"]["job_id"]))
    for r in recs(mg_log):
        if r["method"] == "POST" and r["path"].endswith("/messages.mime") and 200 <= r["status"] < 300:
            m = re.search(r'name="v:job_id"\r\n\r\n([0-9a-f]+)\r\n', r["body"])
            got.append(("mg", m.group(1) if m else None))
    store = json.load(urllib.request.urlopen(store_url))["emails"]
    ses_n = sum(1 for p, _ in got if p == "ses")
    ok("failover: the SES emulator's store matches its accepted requests (%d)" % ses_n, len(store) == ses_n, len(store))
    ids = [i for _, i in got]
    ok("failover: the peers together accepted exactly 30 messages, each job once",
       len(ids) == 30 and set(ids) == set(L), (len(ids), len(set(ids)), sorted(set(i for i in ids if ids.count(i) > 1))[:3]))
    ok("failover: all three peers took messages", set(p for p, _ in got) == {"ses", "sg", "mg"}, set(p for p, _ in got))
    # a job sent back to waiting when the circuit opened (its slot voided) and claimed
    # again in the same run through the fallback: only its new slot becomes sent
    con = sqlite3.connect(db)
    sent_slots = con.execute("SELECT count(*) FROM slots WHERE state = 'sent'").fetchone()[0]
    day = dict(con.execute("SELECT name, sum(n) FROM day_counts WHERE kind = 's' GROUP BY name"))
    by_sender = dict(con.execute("SELECT sender, count(*) FROM jobs WHERE state = 'sent' GROUP BY sender"))
    ok("failover: one sent slot a job (%d), the voided ones stay void" % sent_slots, sent_slots == 30, sent_slots)
    ok("failover: each sender's day count is its sent jobs", day == by_sender, (day, by_sender))
    ok("failover: the accounts in the ledger match where each message went",
       all(L[i]["account"] == {"ses": "ses", "sg": "sg", "mg": "mg"}[p] for p, i in got if i in L),
       [(p, i, L[i]["account"]) for p, i in got if i in L and L[i]["account"] != p][:3])
    st = json.load(open(status_json))
    acc = {a["name"]: a for a in st.get("accounts", [])}
    ok("failover: status --json shows account ses-dead circuit_open", acc.get("ses-dead", {}).get("circuit_open") is True, acc.get("ses-dead"))
    snd = {s["name"]: s for s in st.get("senders", [])}
    ok("failover: status --json shows sender a on account sg", snd.get("a", {}).get("account") == "sg", snd.get("a"))
    ok("failover: sender a's jobs went out through sg",
       all(j["account"] == "sg" for j in L.values() if j["sender"] == "a") and any(j["sender"] == "a" for j in L.values()),
       [(j["sender"], j["account"]) for j in L.values() if j["sender"] == "a"][:5])

{"ses": ses, "sendgrid": sendgrid, "sendgrid_proxy": sendgrid_proxy, "mailgun": mailgun, "failover": failover}[sys.argv[1]](sys.argv[2:])
sys.exit(min(nfail, 100))
EOF
chk() { $PY "$T/chk.py" "$@"; nfail=$((nfail + $?)); }

# jobs: jobs FILE N CLIENT CAMPAIGN PREFIX : N JSON lines, the first with a Cyrillic subject
# and a mixed-case address (PREFIX1.Mixed@Example.COM: sent as PREFIX1.Mixed@example.com)
jobs() {
  i=1
  while [ $i -le "$2" ]; do
    if [ $i -eq 1 ]; then
      printf '{"client":"%s","campaign":"%s","to":"Иван Петров <%s%d.Mixed@Example.COM>","subject":"Привет, {{first_name}}","text":"Здравствуйте, {{first_name}}!","html":"<p>Hi {{first_name}}</p>","vars":{"first_name":"Иван"}}\n' "$3" "$4" "$5" $i
    else
      printf '{"client":"%s","campaign":"%s","to":"%s%d@example.com","subject":"Offer %d for %s","text":"Hello %d","headers":{"X-Ref":"r%d"}}\n' "$3" "$4" "$5" $i $i "$3" $i $i
    fi
    i=$((i + 1))
  done >>"$1"
}

# relative secret paths: resolved like every other config path (against the config's directory)
mkdir -p "$T/rel"; cp "$T/ses.secret" "$T/rel/secret"; chmod 600 "$T/rel/secret"
cat >"$T/rel/conf" <<EOC
spool = "spool";
providers = ( { name = "ses"; type = "ses"; region = "us-east-1"; endpoint = "http://127.0.0.1:$P_RSES";
                allow_plaintext = true; access_key_id = "AKIDEXAMPLE"; secret_file = "secret"; } );
senders = ( { name = "a"; from = "Anna <anna@a.example>"; provider = "ses"; } );
EOC
out=$(cd / && "$OR" -c "$T/rel/conf" check-config 2>&1)
check "a relative secret_file is found beside the config whatever the working directory" test $? -eq 0
[ -n "$out" ] && echo "$out" | grep -v '^ ' | head -2 | sed 's/^/# /'

# ---- SES ---------------------------------------------------------------------
newconf ses "
providers = ( { name = \"ses\"; type = \"ses\"; region = \"us-east-1\"; endpoint = \"http://127.0.0.1:$P_RSES\";
                allow_plaintext = true; access_key_id = \"AKIDEXAMPLE\"; secret_file = \"$T/ses.secret\";
                concurrency = 4; configuration_set = \"cs1\"; } );
senders = (
  { name = \"a\"; from = \"Anna <anna@a.example>\"; provider = \"ses\"; daily_limit = 1000; },
  { name = \"b\"; from = \"Boris <boris@b.example>\"; provider = \"ses\"; daily_limit = 1000; configuration_set = \"cs-b\"; }
);"
jobs "$T/ses/jobs.jsonl" 5 acme q4-fintech ses-acme
jobs "$T/ses/jobs.jsonl" 5 beta spring_2027 ses-beta
orc ses enqueue "$T/ses/jobs.jsonl" >"$T/ses/ids" 2>"$T/ses/enq.err"
sed "s/^/# enqueue: /" "$T/ses/enq.err" | head -3
eq "ses: 10 jobs enqueued" "$(wc -l <"$T/ses/ids" | tr -d ' ')" 10
orc ses run 2>"$T/ses/run.err"
check "ses: run exits 0" test $? -eq 0
sed 's/^/# run: /' "$T/ses/run.err" | head -5
expect=$($PY - "$T/ses/jobs.jsonl" <<'EOF'
import json, re, sys
out = {}
for l in open(sys.argv[1], encoding="utf-8"):
    j = json.loads(l); to = re.search(r"<([^>]+)>", j["to"]); to = to.group(1) if to else j["to"]
    out[to.lower()] = j["subject"].replace("{{first_name}}", j.get("vars", {}).get("first_name", ""))
print(json.dumps(out, ensure_ascii=False))
EOF
)
chk ses "$T/rec-ses.log" "$T/ses/spool/state.db" "http://127.0.0.1:$P_SES/store" '{"a":"cs1","b":"cs-b"}' "$expect"
eq "ses: spool done/ holds the 10 jobs" "$(nf ses done)" 10

# ---- SendGrid: Prism mock (validation) ----------------------------------------
wait_line prism-sg 'Prism is listening' 60 && wait_line rec-sg 'recorder listening' 5
check "sendgrid: Prism mock is up" test $? -eq 0
newconf sg "
providers = ( { name = \"sg\"; type = \"sendgrid\"; endpoint = \"http://127.0.0.1:$P_RSG\"; allow_plaintext = true;
                api_key_file = \"$T/sg.key\"; } );
senders = ( { name = \"a\"; from = \"Anna <anna@a.example>\"; provider = \"sg\"; daily_limit = 1000; } );"
jobs "$T/sg/jobs.jsonl" 3 acme q4-fintech sg-acme
printf '%s\n' '{"client":"beta","campaign":"spring_2027","to":"Olga <olga@example.com>","subject":"Re: hello","html":"<b>Hi</b>","reply_to":"Sales <sales@beta.example>"}' >>"$T/sg/jobs.jsonl"
orc sg enqueue "$T/sg/jobs.jsonl" >/dev/null 2>"$T/sg/enq.err"
sed "s/^/# enqueue: /" "$T/sg/enq.err" | head -3
orc sg run 2>"$T/sg/run.err"
check "sendgrid: run exits 0" test $? -eq 0
sed 's/^/# run: /' "$T/sg/run.err" | head -5
chk sendgrid "$T/rec-sg.log" "$T/sg/spool/state.db" "$SGKEY"

# ---- SendGrid: Prism proxy in front of a responder with X-Message-Id ---------
wait_line prism-sgp 'Prism is listening' 60
check "sendgrid: Prism proxy is up" test $? -eq 0
newconf sgp "
providers = ( { name = \"sg\"; type = \"sendgrid\"; endpoint = \"http://127.0.0.1:$P_SGP\"; allow_plaintext = true;
                api_key_file = \"$T/sg.key\"; } );
senders = ( { name = \"a\"; from = \"Anna <anna@a.example>\"; provider = \"sg\"; daily_limit = 1000; } );"
jobs "$T/sgp/jobs.jsonl" 4 acme q4-fintech sgp
orc sgp enqueue "$T/sgp/jobs.jsonl" >/dev/null 2>"$T/sgp/enq.err"
sed "s/^/# enqueue: /" "$T/sgp/enq.err" | head -3
orc sgp run 2>"$T/sgp/run.err"
check "sendgrid proxy: run exits 0" test $? -eq 0
sed 's/^/# run: /' "$T/sgp/run.err" | head -5
touch "$T/responder.log"
chk sendgrid_proxy "$T/responder.log" "$T/sgp/spool/state.db"

# ---- Mailgun: Prism mock ------------------------------------------------------
wait_line prism-mg 'Prism is listening' 60 && wait_line rec-mg 'recorder listening' 5
check "mailgun: Prism mock is up" test $? -eq 0
newconf mg "
providers = ( { name = \"mg\"; type = \"mailgun\"; endpoint = \"http://127.0.0.1:$P_RMG\"; allow_plaintext = true;
                api_key_file = \"$T/mg.key\"; domain = \"mg.example.com\"; } );
senders = ( { name = \"a\"; from = \"Anna <anna@a.example>\"; provider = \"mg\"; daily_limit = 1000; } );"
jobs "$T/mg/jobs.jsonl" 3 acme q4-fintech mg-acme
jobs "$T/mg/jobs.jsonl" 1 beta spring_2027 mg-beta
orc mg enqueue "$T/mg/jobs.jsonl" >/dev/null 2>"$T/mg/enq.err"
sed "s/^/# enqueue: /" "$T/mg/enq.err" | head -3
orc mg run 2>"$T/mg/run.err"
check "mailgun: run exits 0" test $? -eq 0
sed 's/^/# run: /' "$T/mg/run.err" | head -5
chk mailgun "$T/rec-mg.log" "$T/mg/spool/state.db" "$MGKEY" mg.example.com

# ---- SMTP: STARTTLS + AUTH ----------------------------------------------------
smtpconf() {   # smtpconf DIR PASSFILE CA_LINE
  newconf "$1" "
providers = ( { name = \"relay\"; type = \"smtp\"; url = \"smtp://127.0.0.1:$P_SMTP\"; username = \"u\";
                password_file = \"$T/$2\"; $3 timeout = 10; } );
senders = ( { name = \"r\"; from = \"Relay <relay@r.example>\"; provider = \"relay\"; daily_limit = 1000; } );"
}
neml() { ls "$T/smtp-out" 2>/dev/null | grep -c '\.eml$'; }
smtpconf smtp smtp.pass "ca_file = \"$T/smtp-cert.pem\";"
jobs "$T/smtp/jobs.jsonl" 5 acme q4-fintech smtp
orc smtp enqueue "$T/smtp/jobs.jsonl" >"$T/smtp/ids" 2>"$T/smtp/enq.err"
sed "s/^/# enqueue: /" "$T/smtp/enq.err" | head -3
orc smtp run 2>"$T/smtp/run.err"
check "smtp: run exits 0" test $? -eq 0
sed 's/^/# run: /' "$T/smtp/run.err" | head -5
eq "smtp: 5 jobs sent" "$(qd smtp "SELECT count(*) FROM jobs WHERE state = 'sent'")" 5
eq "smtp: the peer saved 5 messages" "$(neml)" 5
hdrs=0
for id in $(cat "$T/smtp/ids"); do grep -l "^X-Outreach-Job: $id" "$T/smtp-out"/*.eml >/dev/null 2>&1 && hdrs=$((hdrs + 1)); done
eq "smtp: each saved message carries its job's X-Outreach-Job" "$hdrs" 5
ids_ok=0
for f in "$T/smtp-out"/*.json; do
  qid=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$f")
  job=$(grep -h '^X-Outreach-Job:' "${f%.json}.eml" | tr -d '\r' | sed 's/^X-Outreach-Job: //')
  [ "$(qd smtp "SELECT provider_id FROM jobs WHERE id = '$job'")" = "$qid" ] && ids_ok=$((ids_ok + 1))
done
eq "smtp: the ledger provider_id is the peer's queued id" "$ids_ok" 5
check "smtp: the envelope was authenticated over TLS" sh -c "grep -l '\"user\":\"u\",\"secure\":true' '$T/smtp-out'/*.json | wc -l | grep -qx 5"

# a 550 recipient: failed/ with the reason, and suppressed from now on
rj=$(job reject1@example.com | orc smtp enqueue -)
orc smtp run 2>"$T/smtp/run2.err"
eq "smtp 550: job state failed" "$(qd smtp "SELECT state FROM jobs WHERE id = '$rj'")" failed
check "smtp 550: failed/ holds the job" test -f "$T/smtp/spool/failed/$rj.json"
check "smtp 550: its .err mentions 550" grep -q 550 "$T/smtp/spool/failed/$rj.err"
check "smtp 550: its .err gives the server's reason (no such user)" grep -q 'no such user' "$T/smtp/spool/failed/$rj.err"
sed 's/^/# 550 .err: /' "$T/smtp/spool/failed/$rj.err" | head -2
check "smtp 550: the address is on the suppression list" sh -c "'$OR' -c '$T/smtp/conf' suppress list | grep -q 'reject1@example.com'"
eq "smtp 550: nothing more reached the peer" "$(neml)" 5

# a 454 recipient: throttled, back to defer/ without burning an attempt
th=$(job throttle1@example.com | orc smtp enqueue -)
orc smtp run 2>"$T/smtp/run3.err"
eq "smtp 454: job waiting" "$(qd smtp "SELECT state FROM jobs WHERE id = '$th'")" waiting
check "smtp 454: defer/ holds the job" test -f "$T/smtp/spool/defer/$th.json"
eq "smtp 454: no attempt burned" "$(qd smtp "SELECT attempts FROM jobs WHERE id = '$th'")" 0
check "smtp 454: last_error gives the server's reason (Throttling failure)" \
  sh -c "sqlite3 '$T/smtp/spool/state.db' \"SELECT last_error FROM jobs WHERE id = '$th'\" | grep -q 'Throttling failure'"
qd smtp "SELECT '# 454 last_error: ' || coalesce(last_error, '') FROM jobs WHERE id = '$th'"

# a wrong password: the account is down, the job waits without burning an attempt
smtpconf smtpbad smtp.badpass "ca_file = \"$T/smtp-cert.pem\";"
wp=$(job wrongpass@example.com | orc smtpbad enqueue -)
orc smtpbad run 2>"$T/smtpbad/run.err"
eq "smtp bad password: job waiting" "$(qd smtpbad "SELECT state FROM jobs WHERE id = '$wp'")" waiting
check "smtp bad password: defer/ holds the job" test -f "$T/smtpbad/spool/defer/$wp.json"
eq "smtp bad password: no attempt burned" "$(qd smtpbad "SELECT attempts FROM jobs WHERE id = '$wp'")" 0
f=$(qd smtpbad "SELECT failures FROM accounts WHERE name = 'relay'")
check "smtp bad password: accounts.failures >= 1 (got ${f:-none})" test "${f:-0}" -ge 1
orc smtpbad status --json >"$T/smtpbad/status.json" 2>"$T/smtpbad/status.err"
check "smtp bad password: status --json shows relay circuit_open" \
  $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if [a for a in d["accounts"] if a["name"]=="relay" and a["circuit_open"] is True] else 1)' "$T/smtpbad/status.json"
check "smtp bad password: status --json has alert account_down:relay" \
  $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if [a for a in d["alerts"] if a["name"]=="account_down:relay"] else 1)' "$T/smtpbad/status.json"
eq "smtp bad password: nothing reached the peer" "$(neml)" 5

# no ca_file: the self-signed certificate is not trusted, and TLS is always verified
smtpconf smtpnoca smtp.pass ""
nc=$(job noca@example.com | orc smtpnoca enqueue -)
orc smtpnoca run 2>"$T/smtpnoca/run.err"
eq "smtp untrusted cert: nothing sent" "$(neml)" 5
eq "smtp untrusted cert: job waiting" "$(qd smtpnoca "SELECT state FROM jobs WHERE id = '$nc'")" waiting
qd smtpnoca "SELECT '# untrusted cert last_error: ' || coalesce(last_error, '') FROM jobs WHERE id = '$nc'"

# ---- failover: a dead primary, its circuit opens, the fallback takes over -------
curl -s -X POST "http://127.0.0.1:$P_SES/clear-store" >/dev/null
newconf fo "
providers = (
  { name = \"ses-dead\"; type = \"ses\"; region = \"us-east-1\"; endpoint = \"http://127.0.0.1:$P_DEAD\"; allow_plaintext = true;
    access_key_id = \"AKIDEXAMPLE\"; secret_file = \"$T/ses.secret\"; circuit_failures = 2; },
  { name = \"ses\"; type = \"ses\"; region = \"us-east-1\"; endpoint = \"http://127.0.0.1:$P_FSES\"; allow_plaintext = true;
    access_key_id = \"AKIDEXAMPLE\"; secret_file = \"$T/ses.secret\"; },
  { name = \"sg\"; type = \"sendgrid\"; endpoint = \"http://127.0.0.1:$P_FSG\"; allow_plaintext = true; api_key_file = \"$T/sg.key\"; },
  { name = \"mg\"; type = \"mailgun\"; endpoint = \"http://127.0.0.1:$P_FMG\"; allow_plaintext = true; api_key_file = \"$T/mg.key\";
    domain = \"mg.example.com\"; }
);
senders = (
  { name = \"a\"; from = \"Anna <anna@a.example>\"; provider = \"ses-dead\"; fallback = \"sg\"; daily_limit = 1000; },
  { name = \"b\"; from = \"Boris <boris@b.example>\"; provider = \"ses\"; daily_limit = 1000; },
  { name = \"c\"; from = \"Clara <clara@c.example>\"; provider = \"mg\"; daily_limit = 1000; }
);"
jobs "$T/fo/jobs.jsonl" 30 acme q4-fintech fo
orc fo enqueue "$T/fo/jobs.jsonl" >/dev/null 2>"$T/fo/enq.err"
sed "s/^/# enqueue: /" "$T/fo/enq.err" | head -3
k=0
while [ $k -lt 5 ]; do
  OUTREACH_NOW=$((NOW + 60 * k)) orc fo run 2>>"$T/fo/run.err"
  k=$((k + 1))
  [ "$(qd fo "SELECT count(*) FROM jobs WHERE state != 'sent'")" = 0 ] && break
done
echo "# failover: $k run(s); $(qd fo "SELECT group_concat(state || '=' || n, ' ') FROM (SELECT state, count(*) n FROM jobs GROUP BY state)")"
OUTREACH_NOW=$((NOW + 60 * (k - 1) + 30)) orc fo status --json >"$T/fo/status.json" 2>"$T/fo/status.err"
chk failover "$T/fo/spool/state.db" "$T/rec-fses.log" "$T/rec-fsg.log" "$T/rec-fmg.log" \
  "http://127.0.0.1:$P_SES/store" "$T/fo/status.json"

# ---- sends per second against the SES emulator (reported, not asserted) ------
# perf NAME ENDPOINT CONCURRENCY JOBS : one run, timed on the wall clock
perf() {
  newconf "$1" "
providers = ( { name = \"ses\"; type = \"ses\"; region = \"us-east-1\"; endpoint = \"$2\";
                allow_plaintext = true; access_key_id = \"AKIDEXAMPLE\"; secret_file = \"$T/ses.secret\"; concurrency = $3; } );
senders = ( { name = \"a\"; from = \"Anna <anna@a.example>\"; provider = \"ses\"; daily_limit = 100000; } );"
  i=1
  while [ $i -le "$4" ]; do
    printf '{"client":"perf","campaign":"%s","to":"p%d@example.com","subject":"Perf %d","text":"Hello %d"}\n' "$1" $i $i $i
    i=$((i + 1))
  done >"$T/$1/jobs.jsonl"
  orc "$1" enqueue "$T/$1/jobs.jsonl" >/dev/null
  t0=$(date +%s.%N)
  orc "$1" run 2>"$T/$1/run.err"
  t1=$(date +%s.%N)
  n=$(qd "$1" "SELECT count(*) FROM jobs WHERE state = 'sent'")
  $PY -c 'import sys; n, s = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); print("# ses: %d jobs in %.2f s (%s, %.0f sends/s)" % (n, s, sys.argv[4], n / s if s > 0 else 0))' \
    "$n" "$t0" "$t1" "$5"
}
perf perf1 "http://127.0.0.1:$P_SES" 1 200 "concurrency 1"
perf perf16 "http://127.0.0.1:$P_SES" 16 200 "concurrency 16"
# the same behind 40 ms of added latency per answer: shows whether transfers overlap
wait_line rec-slow 'recorder listening' 5 >/dev/null
perf slow1 "http://127.0.0.1:$P_SLOW" 1 100 "concurrency 1, peer answers after 40 ms"
perf slow16 "http://127.0.0.1:$P_SLOW" 16 100 "concurrency 16, peer answers after 40 ms"

finish
