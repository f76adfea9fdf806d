#!/usr/bin/env python3
"""faulty.py (the soak's copy of tests/peers/faulty.py, plus mode `mix`): a loopback HTTP(S) peer that answers like SendGrid's
POST /v3/mail/send, or misbehaves in one precise, scripted way.

    python3 faulty.py PORT MODE LOGFILE [--tls CERT KEY] [--location URL] [--seed N]

PORT 0 binds an ephemeral port.  Either way the peer prints "PORT <n>" on
stdout once it listens (tests wait for that line).  It binds 127.0.0.1 only.

Every send (POST /v3/mail/send) received is logged as one JSON line in LOGFILE:
    {"event": "request", "n": <send number, 1-based>,
     "conn": <connection number>, "conn_req": <send number on that connection>,
     "method", "path", "version", "headers": {name: value}, "content_length",
     "body_len": <bytes of body actually read>, "job": <the body's job id or null>,
     "time": <epoch s>,
     "action": <what the peer did>}
GET /_busy answers the number of other connections still being handled (for a
test that must know every request is logged); it is not logged.
Any other request (outreach's feed pulls: GET /v3/suppression/<list>) is
answered 200 with an empty JSON list, whatever the mode, and logged the same
way with "event": "other-request"; it does not move the counters.
Connection-level events that are not requests (a reset before anything was
read, a failed TLS handshake, the end of a huge answer) are logged with other
"event" values and no "method", so `grep -c '"event": "request"'` counts
sends.

The send counter n (over the peer's whole life, all connections) decides
what happens to the n-th send:

  ok              202 + X-Message-Id: f-<n>, keep-alive
  429secs         n <= 2: 429 with Retry-After: 120; then 202
  429date         n == 1: 429 with Date: <2030-01-01 00:00:00 GMT> and
                  Retry-After: <that Date + 300 s as an HTTP-date>; then 202
  ratelimit       n == 1: 429 with Date: <2030-01-01 00:00:00 GMT> and
                  X-RateLimit-Reset: <that Date + 90, epoch s>; then 202
  429huge         n == 1: 429 with Retry-After: 1000000000; n == 2: 429 with
                  Date: <2030-01-01 00:00:00 GMT> and X-RateLimit-Reset: that
                  Date + 1000000000 (epoch s); then 202
  5xx             500, 503, 503, then 202
  reset-before    every connection is reset (SO_LINGER 0) as soon as it is
                  accepted, before a byte of the request is read
  reset-after     the whole request (body included) is read, then the
                  connection is reset without an answer
  keepalive-close the first request on a connection gets 202 (keep-alive); a
                  later one on the same connection is read completely and the
                  socket is closed without an answer
  hang            the request is read and never answered (the connection is
                  held open until the client goes away)
  redirect        302 with Location: --location URL (default
                  http://127.0.0.1:<PORT+1>/)
  huge            202 + X-Message-Id with a 100 MB body, streamed
  tls             202 (use with --tls; handshake failures are logged)
  mix             (this copy only) each connection, and each send on it, draws
                  its behaviour from a random stream seeded with --seed N
                  (default 1; the draw for send n and connection c depends only
                  on the seed and n or c, so a run is repeatable): a connection
                  is reset before a byte is read (5%); a send is answered 202
                  (62%), 429 with Retry-After: 30 (8%), 500 or 503 (10%), read
                  whole then reset (6%), read whole then closed without an
                  answer (6%), or read whole and never answered (3%).  "action"
                  in the log says which; "accepted" is true for a 202, "maybe"
                  for a request read whole and left unanswered (the client
                  cannot know whether it went through).

Standard library only.
"""

import email.utils
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time

FAR_DATE = 1893456000          # 2030-01-01T00:00:00Z: far from any test clock
HUGE_BYTES = 100 * 1024 * 1024
MAX_HEAD = 65536
MAX_KEEP = 4 * 1024 * 1024     # body bytes kept to find the job id in

MODES = ("ok", "429secs", "429date", "ratelimit", "429huge", "5xx", "reset-before", "reset-after",
         "keepalive-close", "hang", "redirect", "huge", "tls", "mix")

MIX_SEND = (("ok", 62), ("429", 8), ("5xx", 10), ("reset-after", 6), ("close", 6), ("hang", 3))


def mix_draw(seed, kind, n):
    """The mix behaviour of send (kind "send") or connection (kind "conn") n."""
    import random
    r = random.Random("%s:%s:%d" % (seed, kind, n))
    if kind == "conn":
        return "reset-before" if r.random() < 0.05 else "serve"
    x = r.uniform(0, sum(w for _, w in MIX_SEND))
    for name, w in MIX_SEND:
        if x < w:
            return name
        x -= w
    return "ok"


class Peer:
    def __init__(self, mode, logpath, location, seed=1):
        self.mode = mode
        self.seed = seed
        self.location = location
        self.lock = threading.Lock()
        self.n = 0
        self.conns = 0
        self.busy = 0    # connections accepted whose handler has not finished
        self.log = open(logpath, "a", encoding="utf-8")

    def write_log(self, rec):
        rec.setdefault("time", round(time.time(), 6))
        line = json.dumps(rec, sort_keys=False)
        with self.lock:
            self.log.write(line + "\n")
            self.log.flush()

    def next_request(self):
        with self.lock:
            self.n += 1
            return self.n

    def next_conn(self):
        with self.lock:
            self.conns += 1
            return self.conns

    def enter(self):
        with self.lock:
            self.busy += 1

    def leave(self):
        with self.lock:
            self.busy -= 1


def rst_close(sock):
    """Closes with a TCP RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


class Conn:
    """One accepted connection: a buffered reader over a (possibly TLS) socket."""

    def __init__(self, peer, sock, cid):
        self.peer = peer
        self.sock = sock
        self.cid = cid
        self.buf = b""
        self.body = b""
        self.eof = False

    def fill(self):
        try:
            d = self.sock.recv(65536)
        except (OSError, ssl.SSLError):
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def read_head(self):
        """The request line and headers, or None when the client went away."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD or not self.fill():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return None
        headers = {}
        for line in lines[1:]:
            if ":" not in line:
                continue
            k, v = line.split(":", 1)
            k, v = k.strip(), v.strip()
            headers[k] = headers[k] + ", " + v if k in headers else v
        return parts[0], parts[1], parts[2], headers

    def read_exact(self, k):
        while len(self.buf) < k:
            if not self.fill():
                break
        got = min(k, len(self.buf))
        if len(self.body) < MAX_KEEP:
            self.body += self.buf[:min(got, MAX_KEEP - len(self.body))]
        self.buf = self.buf[got:]
        return got

    def read_body(self, headers):
        self.body = b""
        lower = {k.lower(): v for k, v in headers.items()}
        if "chunked" in lower.get("transfer-encoding", "").lower():
            total = 0
            while True:
                while b"\r\n" not in self.buf:
                    if not self.fill():
                        return total
                line, self.buf = self.buf.split(b"\r\n", 1)
                try:
                    size = int(line.split(b";")[0], 16)
                except ValueError:
                    return total
                if size == 0:
                    while b"\r\n" not in self.buf and self.fill():
                        pass
                    self.buf = self.buf.split(b"\r\n", 1)[1] if b"\r\n" in self.buf else b""
                    return total
                total += self.read_exact(size)
                self.read_exact(2)
        try:
            cl = int(lower.get("content-length", "0"))
        except ValueError:
            cl = 0
        return self.read_exact(cl)

    def send(self, data):
        self.sock.sendall(data)

    def answer(self, n, status, reason, extra=None, body=b"", keep=True, date=None):
        hdrs = [("Date", http_date(time.time() if date is None else date)),
                ("Server", "faulty.py")]
        hdrs += extra or []
        hdrs += [("Content-Length", str(len(body))),
                 ("Connection", "keep-alive" if keep else "close")]
        out = "HTTP/1.1 %d %s\r\n" % (status, reason)
        out += "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
        self.send(out.encode("latin-1") + body)


def errors_body(msg):
    return json.dumps({"errors": [{"field": None, "message": msg}]}).encode()


def job_of(body):
    """The outreach job id a SendGrid body carries (custom_args.job_id, else
    the X-Outreach-Job header), or None."""
    try:
        d = json.loads(body.decode("utf-8"))
        for p in d.get("personalizations") or []:
            j = (p.get("custom_args") or {}).get("job_id")
            if j:
                return j
        return (d.get("headers") or {}).get("X-Outreach-Job")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None


def accepted(c, n, keep=True):
    c.answer(n, 202, "Accepted", [("X-Message-Id", "f-%d" % n)], keep=keep)
    return "202 X-Message-Id: f-%d" % n


def serve(peer, raw, addr, tls_ctx):
    """Serves one connection; peer.enter() was called when it was accepted (a /_busy
    probe leaves by itself, before it answers)."""
    probe = False
    try:
        probe = serve_conn(peer, raw, addr, tls_ctx)
    finally:
        if not probe:
            peer.leave()


def serve_conn(peer, raw, addr, tls_ctx):
    cid = peer.next_conn()
    mode = peer.mode
    probe = False   # True: this connection was a /_busy probe, which already left peer.busy
    if mode == "reset-before" or (mode == "mix" and mix_draw(peer.seed, "conn", cid) == "reset-before"):
        rst_close(raw)    # before anything is read
        peer.write_log({"event": "reset-before-read", "conn": cid})
        return
    sock = raw
    if tls_ctx is not None:
        try:
            raw.settimeout(10)
            sock = tls_ctx.wrap_socket(raw, server_side=True)
            sock.settimeout(None)
        except (ssl.SSLError, OSError) as e:
            peer.write_log({"event": "tls_handshake_failed", "conn": cid, "error": str(e)})
            try:
                raw.close()
            except OSError:
                pass
            return
    c = Conn(peer, sock, cid)
    conn_req = 0
    try:
        while True:
            req = c.read_head()
            if req is None:
                break
            method, path, version, headers = req
            if method == "GET" and path == "/_busy":
                # how many other connections are still being handled: 0 once every
                # request that reached the peer is answered and logged (soak.sh's
                # audit waits for it); neither logged nor counted
                # A probe stops counting itself before it answers: counted until its
                # handler returned, it made the next probe (soak.sh asks both peers in
                # turn) see 1 now and then though nothing was being handled.
                with peer.lock:
                    peer.busy -= 1
                    busy = peer.busy
                probe = True
                c.answer(0, 200, "OK", [("Content-Type", "text/plain")], b"%d" % busy, keep=False)
                break
            rec = {"event": "request", "n": None, "conn": cid, "conn_req": None,
                   "method": method, "path": path, "version": version, "headers": headers,
                   "content_length": headers.get("Content-Length", headers.get("content-length"))}
            rec["body_len"] = c.read_body(headers)
            rec["job"] = job_of(c.body)
            rec["time"] = round(time.time(), 6)
            if not (method == "POST" and path.split("?")[0] == "/v3/mail/send"):
                rec["event"] = "other-request"
                c.answer(0, 200, "OK", [("Content-Type", "application/json")], b"[]")
                rec["action"] = "200 []"
                peer.write_log(rec)
                continue
            conn_req += 1
            n = peer.next_request()
            rec["n"], rec["conn_req"] = n, conn_req
            keep = True
            if mode in ("ok", "tls"):
                action = accepted(c, n)
            elif mode == "429secs":
                if n <= 2:
                    c.answer(n, 429, "Too Many Requests", [("Retry-After", "120")],
                             errors_body("too many requests"))
                    action = "429 Retry-After: 120"
                else:
                    action = accepted(c, n)
            elif mode == "429date":
                if n == 1:
                    ra = http_date(FAR_DATE + 300)
                    c.answer(n, 429, "Too Many Requests", [("Retry-After", ra)],
                             errors_body("too many requests"), date=FAR_DATE)
                    action = "429 Date: %s Retry-After: %s" % (http_date(FAR_DATE), ra)
                else:
                    action = accepted(c, n)
            elif mode == "ratelimit":
                if n == 1:
                    c.answer(n, 429, "Too Many Requests",
                             [("X-RateLimit-Limit", "600"), ("X-RateLimit-Remaining", "0"),
                              ("X-RateLimit-Reset", str(FAR_DATE + 90))],
                             errors_body("too many requests"), date=FAR_DATE)
                    action = "429 Date: %s X-RateLimit-Reset: %d" % (http_date(FAR_DATE), FAR_DATE + 90)
                else:
                    action = accepted(c, n)
            elif mode == "429huge":
                if n == 1:
                    c.answer(n, 429, "Too Many Requests", [("Retry-After", "1000000000")],
                             errors_body("too many requests"))
                    action = "429 Retry-After: 1000000000"
                elif n == 2:
                    c.answer(n, 429, "Too Many Requests", [("X-RateLimit-Reset", str(FAR_DATE + 1000000000))],
                             errors_body("too many requests"), date=FAR_DATE)
                    action = "429 X-RateLimit-Reset: Date + 1000000000"
                else:
                    action = accepted(c, n)
            elif mode == "5xx":
                if n <= 3:
                    st, rs = (500, "Internal Server Error") if n == 1 else (503, "Service Unavailable")
                    c.answer(n, st, rs, None, errors_body("scripted failure %d" % st))
                    action = str(st)
                else:
                    action = accepted(c, n)
            elif mode == "reset-after":
                rec["action"] = "read the whole request, then RST"
                peer.write_log(rec)
                rst_close(sock)
                return
            elif mode == "keepalive-close":
                if conn_req == 1:
                    action = accepted(c, n)
                else:
                    rec["action"] = "read the whole request, then closed without answering"
                    peer.write_log(rec)
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    sock.close()
                    return
            elif mode == "mix":
                what = mix_draw(peer.seed, "send", n)
                rec["mix"] = what
                if what == "ok":
                    action = accepted(c, n)
                    rec["accepted"] = True
                elif what == "429":
                    c.answer(n, 429, "Too Many Requests", [("Retry-After", "30")],
                             errors_body("too many requests"))
                    action = "429 Retry-After: 30"
                elif what == "5xx":
                    st, rs = (500, "Internal Server Error") if n % 2 else (503, "Service Unavailable")
                    c.answer(n, st, rs, None, errors_body("scripted failure %d" % st))
                    action = str(st)
                elif what == "reset-after":
                    rec["action"], rec["maybe"] = "read the whole request, then RST", True
                    peer.write_log(rec)
                    rst_close(sock)
                    return
                elif what == "close":
                    rec["action"], rec["maybe"] = "read the whole request, then closed without answering", True
                    peer.write_log(rec)
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    sock.close()
                    return
                else:
                    rec["action"], rec["maybe"] = "read the whole request, never answering", True
                    peer.write_log(rec)
                    while c.fill():      # hold it open until the client goes away
                        pass
                    peer.write_log({"event": "client_closed", "conn": cid})
                    sock.close()
                    return
            elif mode == "hang":
                rec["action"] = "read the whole request, never answering"
                peer.write_log(rec)
                while c.fill():      # hold it open until the client goes away
                    pass
                peer.write_log({"event": "client_closed", "conn": cid})
                sock.close()
                return
            elif mode == "redirect":
                c.answer(n, 302, "Found", [("Location", peer.location)], b"")
                action = "302 Location: %s" % peer.location
            elif mode == "huge":
                hdr = ("HTTP/1.1 202 Accepted\r\nDate: %s\r\nX-Message-Id: f-%d\r\n"
                       "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
                       % (http_date(time.time()), n, HUGE_BYTES))
                rec["action"] = "202 X-Message-Id: f-%d with a %d-byte body, streamed" % (n, HUGE_BYTES)
                peer.write_log(rec)
                sent = 0
                chunk = b"x" * 65536
                try:
                    c.send(hdr.encode())
                    while sent < HUGE_BYTES:
                        c.send(chunk)
                        sent += len(chunk)
                except OSError as e:
                    peer.write_log({"event": "huge_aborted", "conn": cid, "n": n,
                                    "body_sent": sent, "error": str(e)})
                    sock.close()
                    return
                peer.write_log({"event": "huge_done", "conn": cid, "n": n, "body_sent": sent})
                continue
            else:
                action = "unknown mode"
                keep = False
            rec["action"] = action
            peer.write_log(rec)
            if not keep:
                break
    except (OSError, ssl.SSLError) as e:
        peer.write_log({"event": "connection_error", "conn": cid, "error": str(e)})
    try:
        sock.close()
    except OSError:
        pass
    return probe


def main(argv):
    args = list(argv[1:])
    cert = key = None
    location = None
    if "--tls" in args:
        i = args.index("--tls")
        cert, key = args[i + 1], args[i + 2]
        del args[i:i + 3]
    seed = 1
    if "--seed" in args:
        i = args.index("--seed")
        seed = int(args[i + 1])
        del args[i:i + 2]
    if "--location" in args:
        i = args.index("--location")
        location = args[i + 1]
        del args[i:i + 2]
    if len(args) != 3 or args[1] not in MODES:
        sys.stderr.write("usage: faulty.py PORT MODE LOGFILE [--tls CERT KEY] [--location URL] [--seed N]\n"
                         "modes: %s\n" % " ".join(MODES))
        return 64
    port, mode, logpath = int(args[0]), args[1], args[2]
    tls_ctx = None
    if cert:
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.load_cert_chain(cert, key)
        tls_ctx.set_alpn_protocols(["http/1.1"])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    port = srv.getsockname()[1]
    if location is None:
        location = "http://127.0.0.1:%d/" % (port + 1)
    peer = Peer(mode, logpath, location, seed)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()
    while True:
        raw, addr = srv.accept()
        peer.enter()
        if mode == "reset-before":
            serve(peer, raw, addr, tls_ctx)    # at once, in the accepting thread
            continue
        threading.Thread(target=serve, args=(peer, raw, addr, tls_ctx), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
