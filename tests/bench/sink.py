#!/usr/bin/env python3
"""A loopback HTTP/1.1 sink for the benchmark (standard library only).

    sink.py PORT DELAY_SECONDS

Keep-alive; reads each request's headers and Content-Length body (answers
`Expect: 100-continue`), waits DELAY seconds without blocking other connections
(asyncio), then answers 202 with an X-Message-Id, like SendGrid's mail/send.
GET /_count answers the number of other requests seen so far (the benchmark's
check that every job was sent exactly once).  Prints "listening" once bound.
"""
import asyncio, sys

PORT, DELAY = int(sys.argv[1]), float(sys.argv[2])
count = 0


async def handle(reader, writer):
    global count
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                break
            lines = head.decode("latin-1").split("\r\n")
            method, target = (lines[0].split(" ") + ["", ""])[:2]
            hdr = {}
            for ln in lines[1:]:
                if ":" in ln:
                    k, v = ln.split(":", 1)
                    hdr[k.strip().lower()] = v.strip()
            if hdr.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            n = int(hdr.get("content-length", "0") or 0)
            if n:
                await reader.readexactly(n)
            close = hdr.get("connection", "").lower() == "close"
            if method == "GET" and target == "/_count":
                body = b"%d\n" % count
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
            else:
                count += 1
                mid = count
                if DELAY > 0:
                    await asyncio.sleep(DELAY)
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nX-Message-Id: sink-%d\r\n%s\r\n"
                             % (mid, b"Connection: close\r\n" if close else b""))
            await writer.drain()
            if close:
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", PORT, backlog=1024)
    print("listening", flush=True)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
