#!/usr/bin/env python3
"""A loopback HTTP recording proxy for outreach's provider tests.

    python3 recorder.py LISTEN_PORT UPSTREAM_URL LOGFILE [--sigv4-secret S] [--delay MS]

Listens on 127.0.0.1:LISTEN_PORT, forwards every request (method, path,
headers, body) to UPSTREAM_URL (http://host:port[/prefix]) and returns the
upstream's answer.  For each request it appends one JSON line to LOGFILE:

    {"method", "path", "headers": {lower-case name: value, repeats joined
     with ", "}, "header_list": [[name, value], ...], "body": text,
     "status", "response_headers": {...}, "response_body": text,
     "sigv4_ok": bool, "sigv4_error": text}        (sigv4_* only with --sigv4-secret)

With --sigv4-secret the AWS Signature Version 4 of the request is computed
afresh from what arrived on the wire (canonical request: method, path,
sorted query, the signed headers the Authorization header names, SHA-256 of
the body; date, region and service from the Credential scope) and compared
with the Signature the client sent.

With --delay each answer is held back MS milliseconds (a slow provider, to
see transfers overlap).

Keep-alive (HTTP/1.1) and Content-Length bodies; a chunked request body is
decoded (and its Transfer-Encoding header logged, so tests can refuse it).
Standard library only.
"""
import hashlib
import hmac
import http.client
import http.server
import json
import posixpath
import re
import sys
import threading
import time
import urllib.parse

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authenticate", "proxy-authorization"}


def uri_encode(s, safe):
    return urllib.parse.quote(s, safe=safe)


def canonical_uri(path):
    if not path:
        return "/"
    norm = posixpath.normpath(path)
    if path.endswith("/") and norm != "/":
        norm += "/"
    norm = re.sub("/+", "/", norm)
    if not norm.startswith("/"):
        norm = "/" + norm
    # as botocore does for every service but S3: the path as sent, encoded again
    return uri_encode(norm, "/~")


def canonical_query(query):
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    enc = sorted((uri_encode(k, "-_.~"), uri_encode(v, "-_.~")) for k, v in pairs)
    return "&".join("%s=%s" % kv for kv in enc)


def hmac256(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                     r"SignedHeaders=([a-z0-9;._-]+),\s*Signature=([0-9a-f]{64})$")


def sigv4_check(secret, method, raw_path, header_list, body):
    """(ok, error text)."""
    auth = [v for k, v in header_list if k.lower() == "authorization"]
    if len(auth) != 1:
        return False, "expected one Authorization header, got %d" % len(auth)
    m = AUTH_RE.match(auth[0].strip())
    if not m:
        return False, "Authorization header not in SigV4 form: %r" % auth[0][:200]
    _akid, day, region, service, signed, sig = m.groups()
    names = signed.split(";")
    if names != sorted(names):
        return False, "SignedHeaders not sorted"
    amz_date = [v.strip() for k, v in header_list if k.lower() == "x-amz-date"]
    if len(amz_date) != 1:
        return False, "expected one X-Amz-Date header, got %d" % len(amz_date)
    amz_date = amz_date[0]
    if not re.match(r"^\d{8}T\d{6}Z$", amz_date) or amz_date[:8] != day:
        return False, "X-Amz-Date %r does not match the scope date %s" % (amz_date, day)
    lines = []
    for n in names:
        vals = [re.sub(r"\s+", " ", v.strip()) for k, v in header_list if k.lower() == n]
        if not vals:
            return False, "signed header %s not in the request" % n
        lines.append("%s:%s\n" % (n, ",".join(vals)))
    path, _, query = raw_path.partition("?")
    creq = "\n".join([method, canonical_uri(path), canonical_query(query), "".join(lines), signed,
                      hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode("utf-8")).hexdigest()])
    k = hmac256(("AWS4" + secret).encode("utf-8"), day)
    k = hmac256(k, region)
    k = hmac256(k, service)
    k = hmac256(k, "aws4_request")
    want = hmac.new(k, sts.encode("utf-8"), hashlib.sha256).hexdigest()
    if hmac.compare_digest(want, sig):
        return True, ""
    return False, "signature mismatch; canonical request was %r" % creq[:2000]


def hdict(pairs):
    d = {}
    for k, v in pairs:
        k = k.lower()
        d[k] = d[k] + ", " + v if k in d else v
    return d


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256        # many transfers may connect at once


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "recorder/1"
    disable_nagle_algorithm = True   # no 40 ms delayed-ACK stalls between small writes

    def log_message(self, fmt, *args):   # quiet
        pass

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = b""
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def handle_any(self):
        srv = self.server
        body = self.read_body()
        if srv.delay > 0:
            time.sleep(srv.delay)
        header_list = list(self.headers.items())
        rec = {"method": self.command, "path": self.path, "headers": hdict(header_list),
               "header_list": [[k, v] for k, v in header_list], "body": body.decode("utf-8", "replace")}
        if srv.sigv4_secret is not None:
            ok, err = sigv4_check(srv.sigv4_secret, self.command, self.path, header_list, body)
            rec["sigv4_ok"] = ok
            rec["sigv4_error"] = err
        fwd = [(k, v) for k, v in header_list if k.lower() not in HOP and k.lower() != "content-length"]
        status, rpairs, rbody = 502, [("Content-Type", "text/plain")], b"recorder: upstream unreachable\n"
        try:
            conn = http.client.HTTPConnection(srv.up_host, srv.up_port, timeout=60)
            conn.putrequest(self.command, srv.up_prefix + self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in fwd:
                conn.putheader(k, v)
            if body or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            rbody = resp.read()
            status = resp.status
            rpairs = resp.getheaders()
            conn.close()
        except Exception as e:   # noqa: BLE001 - any upstream failure is a 502
            rbody = ("recorder: upstream error: %s\n" % e).encode()
        rec["status"] = status
        rec["response_headers"] = hdict(rpairs)
        rec["response_body"] = rbody.decode("utf-8", "replace")[:20000]
        with srv.log_lock:
            with open(srv.logfile, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        # status line, headers and body in one write
        reason = self.responses.get(status, ("",))[0]
        out = ["HTTP/1.1 %d %s\r\n" % (status, reason)]
        out += ["%s: %s\r\n" % (k, v) for k, v in rpairs if k.lower() not in HOP and k.lower() != "content-length"]
        out.append("Content-Length: %d\r\n\r\n" % len(rbody))
        self.log_request(status)
        self.wfile.write("".join(out).encode("latin-1", "replace") + (rbody if self.command != "HEAD" else b""))
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


def main(argv):
    args = list(argv[1:])
    secret, delay = None, 0.0
    if "--delay" in args:
        i = args.index("--delay")
        if i + 1 >= len(args):
            sys.exit("--delay needs a value (milliseconds)")
        delay = float(args[i + 1]) / 1000.0
        del args[i:i + 2]
    if "--sigv4-secret" in args:
        i = args.index("--sigv4-secret")
        if i + 1 >= len(args):
            sys.exit("--sigv4-secret needs a value")
        secret = args[i + 1]
        del args[i:i + 2]
    if len(args) != 3:
        sys.exit("usage: recorder.py LISTEN_PORT UPSTREAM_URL LOGFILE [--sigv4-secret S] [--delay MS]")
    port, upstream, logfile = int(args[0]), args[1], args[2]
    u = urllib.parse.urlsplit(upstream)
    if u.scheme != "http" or not u.hostname:
        sys.exit("UPSTREAM_URL must be http://host:port")
    srv = Server(("127.0.0.1", port), Handler)
    srv.up_host, srv.up_port = u.hostname, u.port or 80
    srv.up_prefix = u.path.rstrip("/")
    srv.logfile = logfile
    srv.log_lock = threading.Lock()
    srv.sigv4_secret = secret
    srv.delay = delay
    open(logfile, "a").close()
    print("recorder listening on 127.0.0.1:%d -> %s" % (port, upstream), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv)
