#!/usr/bin/env python3
"""sqs.py: a loopback fake of the AWS calls behind outreach's SES account.

    python3 sqs.py PORT LOGFILE [--secret S] [--visibility SECONDS] [--queue-url URL]
                   [--suppressed FILE] [--suppressed-page-size N] [BODY_FILE...]

PORT 0 binds an ephemeral port.  Either way the fake prints
"sqs fake listening on 127.0.0.1:<port>" once it listens; it binds 127.0.0.1
only.  Standard library only (the SigV4 checker is recorder.py's, beside it).

SQS, JSON protocol (POST /, X-Amz-Target: AmazonSQS.<Op>,
Content-Type: application/x-amz-json-1.0, SigV4 with service "sqs"):
  ReceiveMessage  at most MaxNumberOfMessages (1..10, default 1) visible
                  messages, oldest first, each with a fresh ReceiptHandle; a
                  received message stays invisible for VisibilityTimeout
                  seconds (default 30; --visibility overrides whatever the
                  request asks, e.g. 1 for tests) on the real clock, then
                  comes back if nobody deleted it.  WaitTimeSeconds (0..20)
                  long-polls.  Attributes (ApproximateReceiveCount,
                  SentTimestamp, ...) when MessageSystemAttributeNames or
                  AttributeNames ask for them.
  DeleteMessage   deletes the message whose *latest* ReceiptHandle is given;
                  an older handle of a message received again since answers
                  200 but deletes nothing (as SQS documents); a handle never
                  issued is 400 ReceiptHandleIsInvalid; a handle of a message
                  already deleted is 200 again (idempotent).
  anything else   400 UnknownOperationException.
  A QueueUrl other than --queue-url (when given) is 400 QueueDoesNotExist.
  Message bodies come from the BODY_FILEs (each file is one body, as is: an
  SES notification = raw delivery, or an SNS envelope around one) and from
  POST /enqueue.

SES v2 (SigV4 with service "ses"):
  GET  /v2/email/suppression/addresses   ListSuppressedDestinations over the
       fixture list (--suppressed FILE: a JSON array of {EmailAddress,
       Reason, LastUpdateTime (epoch s)}; a small default list otherwise),
       Reason / StartDate / EndDate filters (inclusive), PageSize (1..1000,
       capped by --suppressed-page-size) and NextToken paging.
  GET  /v2/email/account                 GetAccount: MaxSendRate 50,
       Max24HourSend 50000, sending enabled.
  POST /v2/email/outbound-emails         SendEmail: 200 {"MessageId":"ses-<n>"};
       what was sent is kept (GET /sent) with the decoded Raw message's
       recipients, Message-ID and X-Outreach-Job, and the EmailTags.

Every request with an Authorization header has its SigV4 signature computed
afresh (when --secret is given) and checked, the scope's service too, and
X-Amz-Date must be within 5 minutes of the real clock (as AWS requires; the
program's virtual clock must never leak onto the wire).  A bad signature is
403 (InvalidSignatureException / SignatureDoesNotMatch).

Control (no signature; loopback only; not part of any AWS API):
  GET  /state      {"visible", "inflight", "deleted", "total", "receives",
                    "deletes", "sends", "sigv4_failures", "suppressed"}
  GET  /sent       the SendEmail calls, in order
  POST /enqueue    the request body becomes one more message body
  POST /suppressed a JSON object or array of suppressed-destination entries
                   to add to the fixture list
  POST /control    {"kill_on_receive": PIDFILE}: the next ReceiveMessage that
                   returns at least one message sends its answer, then kills
                   (SIGKILL) the process whose pid is in PIDFILE and waits for
                   it to be gone before this fake handles anything else (a
                   client dying between receiving and deleting).  One shot.

LOGFILE gets one JSON line per call: {"time", "op", "method", "path",
"status", "sigv4_ok", "sigv4_error", "service", "target", "error", plus
"message_ids"/"handles" (receive), "handle"/"result" (delete), "n"/"job"
(send)}; on SIGTERM or SIGINT a last line {"op": "final", "state": {...}}.
"""
import base64
import datetime
import email
import email.policy
import email.utils
import hashlib
import http.server
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recorder import AUTH_RE, sigv4_check  # noqa: E402  (the same checker the provider tests use)

DEFAULT_SUPPRESSED = [
    {"EmailAddress": "old-bounce@example.net", "Reason": "BOUNCE", "LastUpdateTime": 1764547200},
    {"EmailAddress": "old-complaint@example.net", "Reason": "COMPLAINT", "LastUpdateTime": 1764633600},
    {"EmailAddress": "Older-Bounce@Example.net", "Reason": "BOUNCE", "LastUpdateTime": 1764720000},
]
SKEW = 300


class Msg:
    def __init__(self, n, body):
        self.n = n
        self.id = "%08x-0000-4000-8000-%012x" % (secrets.randbits(32), n)
        self.body = body
        self.md5 = hashlib.md5(body.encode("utf-8")).hexdigest()
        self.sent = time.time()
        self.visible_at = 0.0      # monotonic
        self.handles = []          # every handle issued, the last one is live
        self.receives = 0
        self.first_receive = None
        self.deleted = False


class State:
    def __init__(self, args):
        self.lock = threading.RLock()
        self.log_lock = threading.Lock()
        self.logfile = args["log"]
        self.secret = args["secret"]
        self.visibility = args["visibility"]
        self.queue_url = args["queue_url"]
        self.page_cap = args["page_cap"]
        self.msgs = []
        self.by_handle = {}
        self.suppressed = list(args["suppressed"])
        self.tokens = {}
        self.sends = []
        self.receives = 0
        self.deletes = 0
        self.sig_failures = 0
        self.kill_pidfile = None

    def add(self, body):
        with self.lock:
            m = Msg(len(self.msgs) + 1, body)
            self.msgs.append(m)
            return m

    def snapshot(self):
        with self.lock:
            now = time.monotonic()
            vis = sum(1 for m in self.msgs if not m.deleted and m.visible_at <= now)
            inf = sum(1 for m in self.msgs if not m.deleted and m.visible_at > now)
            return {"visible": vis, "inflight": inf, "deleted": sum(1 for m in self.msgs if m.deleted),
                    "total": len(self.msgs), "receives": self.receives, "deletes": self.deletes,
                    "sends": len(self.sends), "sigv4_failures": self.sig_failures,
                    "suppressed": len(self.suppressed)}

    def log(self, rec):
        rec["time"] = round(time.time(), 3)
        with self.log_lock:
            with open(self.logfile, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def aws_error(code, message, status=400):
    return status, {"__type": code, "message": message}


def parse_iso(s):
    s = s.strip()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    d = datetime.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sqs-fake/1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    # ---- plumbing --------------------------------------------------------
    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def answer(self, status, obj, ctype="application/x-amz-json-1.0", extra=None):
        body = obj if isinstance(obj, bytes) else (b"" if obj is None else json.dumps(obj).encode("utf-8"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("x-amzn-RequestId", "%032x" % secrets.randbits(128))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if status >= 400 and isinstance(obj, dict) and "__type" in obj:
            self.send_header("x-amzn-ErrorType", obj["__type"].split("#")[-1])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def check_sig(self, body, service, rec):
        """None when the request may go on, else (status, error object)."""
        S = self.server.st
        hl = list(self.headers.items())
        auth = self.headers.get("Authorization") or ""
        m = AUTH_RE.match(auth.strip())
        rec["service"] = m.group(4) if m else None
        if S.secret is None:
            return None
        ok, err = sigv4_check(S.secret, self.command, self.path, hl, body)
        if ok and m.group(4) != service:
            ok, err = False, "credential scope service %r, expected %r" % (m.group(4), service)
        if ok:
            amz = (self.headers.get("X-Amz-Date") or "").strip()
            t = datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
            if abs(t - time.time()) > SKEW:
                ok, err = False, "X-Amz-Date %s is %.0f s away from the real clock (max %d)" % (amz, t - time.time(), SKEW)
        rec["sigv4_ok"], rec["sigv4_error"] = ok, err
        if ok:
            return None
        with S.lock:
            S.sig_failures += 1
        if not auth:
            return 403, {"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"}
        code = "com.amazon.coral.service#InvalidSignatureException" if service == "sqs" else "SignatureDoesNotMatch"
        return 403, {"__type": code, "message": "The request signature we calculated does not match the "
                                               "signature you provided. " + err[:300]}

    def finish_call(self, rec, status, obj, **kw):
        rec["status"] = status
        if status >= 400 and isinstance(obj, dict):
            rec["error"] = obj.get("__type") or obj.get("message")
        self.server.st.log(rec)
        self.answer(status, obj, **kw)

    # ---- HTTP verbs ----------------------------------------------------------
    def do_GET(self):
        body = self.read_body()
        S = self.server.st
        with S.lock:      # a kill in progress holds the lock: nothing is handled meanwhile
            pass
        u = urllib.parse.urlsplit(self.path)
        rec = {"method": "GET", "path": self.path}
        if u.path == "/state":
            return self.answer(200, S.snapshot(), "application/json")
        if u.path == "/sent":
            with S.lock:
                return self.answer(200, S.sends, "application/json")
        if u.path == "/v2/email/suppression/addresses":
            rec["op"] = "ListSuppressedDestinations"
            bad = self.check_sig(body, "ses", rec)
            if bad:
                return self.finish_call(rec, *bad, ctype="application/json")
            return self.finish_call(rec, *self.list_suppressed(u.query, rec), ctype="application/json")
        if u.path == "/v2/email/account":
            rec["op"] = "GetAccount"
            bad = self.check_sig(body, "ses", rec)
            if bad:
                return self.finish_call(rec, *bad, ctype="application/json")
            with S.lock:
                n = len(S.sends)
            return self.finish_call(rec, 200, {
                "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 50.0, "SentLast24Hours": float(n)},
                "SendingEnabled": True, "ProductionAccessEnabled": True, "EnforcementStatus": "HEALTHY",
                "DedicatedIpAutoWarmupEnabled": False}, ctype="application/json")
        rec["op"] = "unknown"
        return self.finish_call(rec, 404, {"__type": "UnknownOperationException", "message": "no route " + u.path},
                                ctype="application/json")

    def do_POST(self):
        body = self.read_body()
        S = self.server.st
        with S.lock:
            pass
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/enqueue":
            m = S.add(body.decode("utf-8"))
            S.log({"op": "enqueue", "message_id": m.id, "n": m.n})
            return self.answer(200, {"MessageId": m.id, "n": m.n}, "application/json")
        if u.path == "/suppressed":
            try:
                v = json.loads(body)
            except ValueError:
                return self.answer(400, {"message": "not JSON"}, "application/json")
            with S.lock:
                S.suppressed.extend(v if isinstance(v, list) else [v])
            return self.answer(200, {"suppressed": len(S.suppressed)}, "application/json")
        if u.path == "/control":
            try:
                v = json.loads(body)
            except ValueError:
                return self.answer(400, {"message": "not JSON"}, "application/json")
            with S.lock:
                S.kill_pidfile = v.get("kill_on_receive")
            S.log({"op": "control", "control": v})
            return self.answer(200, {"ok": True}, "application/json")
        if u.path == "/v2/email/outbound-emails":
            rec = {"method": "POST", "path": self.path, "op": "SendEmail"}
            bad = self.check_sig(body, "ses", rec)
            if bad:
                return self.finish_call(rec, *bad, ctype="application/json")
            return self.finish_call(rec, *self.send_email(body, rec), ctype="application/json")
        if u.path == "/":
            return self.sqs(body)
        rec = {"method": "POST", "path": self.path, "op": "unknown"}
        return self.finish_call(rec, 404, {"__type": "UnknownOperationException", "message": "no route " + u.path},
                                ctype="application/json")

    do_PUT = do_DELETE = do_PATCH = do_POST

    # ---- SQS -------------------------------------------------------------------
    def sqs(self, body):
        S = self.server.st
        target = self.headers.get("X-Amz-Target") or ""
        rec = {"method": "POST", "path": self.path, "target": target, "op": target.split(".")[-1]}
        bad = self.check_sig(body, "sqs", rec)
        if bad:
            return self.finish_call(rec, *bad)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-amz-json-1.0":
            return self.finish_call(rec, *aws_error("com.amazonaws.sqs#UnsupportedOperation",
                                                     "Content-Type %r: the JSON protocol wants "
                                                     "application/x-amz-json-1.0" % ctype))
        try:
            req = json.loads(body or b"{}")
            if not isinstance(req, dict):
                raise ValueError
        except ValueError:
            return self.finish_call(rec, *aws_error("com.amazon.coral.service#SerializationException",
                                                     "the body is not a JSON object"))
        rec["queue_url"] = req.get("QueueUrl")
        if not req.get("QueueUrl"):
            return self.finish_call(rec, *aws_error("com.amazonaws.sqs#MissingParameter",
                                                     "The request must contain the parameter QueueUrl."))
        if S.queue_url and req["QueueUrl"] != S.queue_url:
            return self.finish_call(rec, *aws_error("com.amazonaws.sqs#QueueDoesNotExist",
                                                     "The specified queue does not exist."))
        if target == "AmazonSQS.ReceiveMessage":
            return self.receive(req, rec)
        if target == "AmazonSQS.DeleteMessage":
            return self.delete(req, rec)
        return self.finish_call(rec, *aws_error("com.amazon.coral.service#UnknownOperationException",
                                                 "unknown or unsupported X-Amz-Target %r" % target))

    def receive(self, req, rec):
        S = self.server.st
        mx = req.get("MaxNumberOfMessages", 1)
        vt = req.get("VisibilityTimeout", 30)
        wait = req.get("WaitTimeSeconds", 0)
        for name, v, lo, hi in (("MaxNumberOfMessages", mx, 1, 10), ("VisibilityTimeout", vt, 0, 43200),
                                ("WaitTimeSeconds", wait, 0, 20)):
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                return self.finish_call(rec, *aws_error("com.amazonaws.sqs#InvalidParameterValue",
                                                         "Value %r for parameter %s is invalid. Must be between "
                                                         "%d and %d." % (v, name, lo, hi)))
        rec.update({"max": mx, "visibility_requested": vt, "wait": wait})
        if S.visibility is not None:
            vt = S.visibility
        want_attrs = set(req.get("MessageSystemAttributeNames") or []) | set(req.get("AttributeNames") or [])
        deadline = time.monotonic() + wait
        while True:
            with S.lock:
                now = time.monotonic()
                got = [m for m in S.msgs if not m.deleted and m.visible_at <= now][:mx]
                out = []
                for m in got:
                    h = "rh-%d-%d-%s" % (m.n, m.receives + 1, secrets.token_urlsafe(24))
                    m.handles.append(h)
                    m.receives += 1
                    m.first_receive = m.first_receive or time.time()
                    m.visible_at = now + vt
                    S.by_handle[h] = m
                    e = {"MessageId": m.id, "ReceiptHandle": h, "MD5OfBody": m.md5, "Body": m.body}
                    attrs = {"ApproximateReceiveCount": str(m.receives), "SentTimestamp": str(int(m.sent * 1000)),
                             "ApproximateFirstReceiveTimestamp": str(int(m.first_receive * 1000)),
                             "SenderId": "AIDAEXAMPLE"}
                    if want_attrs:
                        e["Attributes"] = attrs if "All" in want_attrs else \
                            {k: v for k, v in attrs.items() if k in want_attrs}
                    out.append(e)
                if out or time.monotonic() >= deadline:
                    S.receives += 1
                    rec.update({"status": 200, "message_ids": [e["MessageId"] for e in out],
                                "handles": [e["ReceiptHandle"] for e in out], "visibility": vt})
                    S.log(rec)
                    pidfile = S.kill_pidfile if out else None
                    if pidfile:
                        S.kill_pidfile = None
                        # answer, then kill the client before anything else is handled
                        self.answer(200, {"Messages": out})
                        self.kill_client(pidfile)
                        self.close_connection = True
                        return None
                    break
            time.sleep(0.05)
        return self.answer(200, {"Messages": out} if out else {})

    def kill_client(self, pidfile):
        S = self.server.st
        try:
            pid = int(open(pidfile).read().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError) as e:
            S.log({"op": "kill", "error": str(e)})
            return
        S.log({"op": "kill", "pid": pid})
        for _ in range(500):          # until it is gone (or a zombie)
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                        break
            except OSError:
                break
            time.sleep(0.01)
        S.log({"op": "killed", "pid": pid})

    def delete(self, req, rec):
        S = self.server.st
        h = req.get("ReceiptHandle")
        rec["handle"] = h
        if not h:
            return self.finish_call(rec, *aws_error("com.amazonaws.sqs#MissingParameter",
                                                     "The request must contain the parameter ReceiptHandle."))
        with S.lock:
            m = S.by_handle.get(h)
            if m is None:
                return self.finish_call(rec, *aws_error("com.amazonaws.sqs#ReceiptHandleIsInvalid",
                                                         "The input receipt handle \"%s\" is not a valid receipt "
                                                         "handle." % h[:80]))
            rec["message_id"] = m.id
            if m.deleted:
                rec["result"] = "already deleted"
            elif h != m.handles[-1]:
                rec["result"] = "stale handle: not deleted"
            else:
                m.deleted = True
                rec["result"] = "deleted"
            S.deletes += 1
        return self.finish_call(rec, 200, None)

    # ---- SES ---------------------------------------------------------------------
    def list_suppressed(self, query, rec):
        S = self.server.st
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        rec["query"] = q
        try:
            size = int(q.get("PageSize", ["1000"])[-1])
            if not 1 <= size <= 1000:
                raise ValueError
        except ValueError:
            return aws_error("BadRequestException", "PageSize must be an integer from 1 to 1000")
        reasons = q.get("Reason") or ["BOUNCE", "COMPLAINT"]
        if any(r not in ("BOUNCE", "COMPLAINT") for r in reasons):
            return aws_error("BadRequestException", "Reason must be BOUNCE or COMPLAINT")
        try:
            start = parse_iso(q["StartDate"][-1]) if "StartDate" in q else None
            end = parse_iso(q["EndDate"][-1]) if "EndDate" in q else None
        except (ValueError, KeyError):
            return aws_error("BadRequestException", "StartDate/EndDate must be ISO 8601 dates")
        rec["start"], rec["end"] = start, end
        with S.lock:
            items = [e for e in sorted(S.suppressed, key=lambda e: (e["LastUpdateTime"], e["EmailAddress"]))
                     if e.get("Reason") in reasons and (start is None or e["LastUpdateTime"] >= start)
                     and (end is None or e["LastUpdateTime"] <= end)]
            off = 0
            if "NextToken" in q:
                tok = q["NextToken"][-1]
                if tok not in S.tokens:
                    return aws_error("InvalidNextTokenException", "The next token is invalid or has expired")
                off = S.tokens[tok]
            size = min(size, S.page_cap) if S.page_cap else size
            page = items[off:off + size]
            out = {"SuppressedDestinationSummaries": page}
            if off + size < len(items):
                tok = secrets.token_urlsafe(16)
                S.tokens[tok] = off + size
                out["NextToken"] = tok
        rec["returned"] = [e["EmailAddress"] for e in page]
        rec["next_token"] = out.get("NextToken")
        return 200, out

    def send_email(self, body, rec):
        S = self.server.st
        try:
            req = json.loads(body)
            raw = req["Content"]["Raw"]["Data"] if "Raw" in req.get("Content", {}) else None
            msg = None
            if raw is not None:
                msg = email.message_from_bytes(base64.b64decode(raw, validate=True), policy=email.policy.compat32)
            elif "Simple" not in req.get("Content", {}) and "Template" not in req.get("Content", {}):
                raise KeyError("Content")
        except (ValueError, KeyError, TypeError) as e:
            return aws_error("BadRequestException", "invalid SendEmail body: %s" % e)
        tags = {t.get("Name"): t.get("Value") for t in req.get("EmailTags") or []}
        with S.lock:
            n = len(S.sends) + 1
            mid = "ses-%d" % n
            to = (req.get("Destination") or {}).get("ToAddresses") or []
            if msg is not None and not to:
                to = [a for _, a in email.utils.getaddresses(msg.get_all("To", []))]
            sent = {"n": n, "MessageId": mid, "to": to, "from": req.get("FromEmailAddress"),
                    "tags": tags, "job": tags.get("job") or (msg.get("X-Outreach-Job") if msg else None),
                    "message_id_header": msg.get("Message-ID") if msg else None,
                    "subject": msg.get("Subject") if msg else None,
                    "list_unsubscribe": msg.get("List-Unsubscribe") if msg else None,
                    "configuration_set": req.get("ConfigurationSetName"), "time": time.time()}
            S.sends.append(sent)
        rec.update({"n": n, "message_id": mid, "job": sent["job"], "to": to})
        return 200, {"MessageId": mid}


def main(argv):
    args = list(argv[1:])
    opts = {"secret": None, "visibility": None, "queue_url": None, "suppressed": DEFAULT_SUPPRESSED, "page_cap": 0}

    def take(flag, conv):
        if flag in args:
            i = args.index(flag)
            if i + 1 >= len(args):
                sys.exit("%s needs a value" % flag)
            v = conv(args[i + 1])
            del args[i:i + 2]
            return v
        return None

    v = take("--secret", str)
    opts["secret"] = v
    v = take("--visibility", float)
    opts["visibility"] = v
    v = take("--queue-url", str)
    opts["queue_url"] = v
    v = take("--suppressed", lambda p: json.load(open(p, encoding="utf-8")))
    if v is not None:
        opts["suppressed"] = v
    v = take("--suppressed-page-size", int)
    if v:
        opts["page_cap"] = v
    if len(args) < 2 or any(a.startswith("--") for a in args):
        sys.exit(__doc__.split("\n\n")[1])
    port, opts["log"] = int(args[0]), args[1]
    st = State(opts)
    for path in args[2:]:
        with open(path, encoding="utf-8") as f:
            st.add(f.read())
    open(opts["log"], "a").close()
    srv = Server(("127.0.0.1", port), Handler)
    srv.st = st

    def stop(signum, frame):
        st.log({"op": "final", "state": st.snapshot()})
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("sqs fake listening on 127.0.0.1:%d (%d messages queued)" % (srv.server_address[1], len(st.msgs)),
          flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
