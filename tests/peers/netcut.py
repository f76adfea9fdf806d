#!/usr/bin/env python3
"""tests/peers/netcut.py — a loopback TCP relay that can cut one host off.

    netcut.py LISTEN_PORT UPSTREAM_PORT PIDFILE

Relays every connection made to 127.0.0.1:LISTEN_PORT to 127.0.0.1:UPSTREAM_PORT,
byte for byte, both ways.  SIGUSR1 blackholes it: connections stay open (nothing
is closed or reset, as in a network partition seen by TCP), every byte either way
is dropped, and new connections are accepted and never relayed.  SIGUSR2 makes it
pass bytes again (what was dropped stays dropped).  It writes its pid to PIDFILE
once it listens, so a test waits for that file (a condition, never a sleep).
Standard library only.
"""
import asyncio
import os
import signal
import sys

listen_port, upstream_port, pidfile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
state = {"cut": False}


async def pump(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if not state["cut"]:
                writer.write(data)
                await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        if not state["cut"]:
            try:
                writer.close()
            except OSError:
                pass


async def handle(client_r, client_w):
    try:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pump(client_r, up_w), pump(up_r, client_w))


async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: state.update(cut=True))
    loop.add_signal_handler(signal.SIGUSR2, lambda: state.update(cut=False))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    tmp = pidfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(tmp, pidfile)
    async with server:
        await server.serve_forever()


try:
    asyncio.run(main())
except RuntimeError:
    pass
