#!/usr/bin/env python3
"""dns_ready.py PORT [NAME] [PID]: waits (10 s at most) until the DNS server on
127.0.0.1:PORT answers an A query for NAME (default ready.test) without error.
Exit 0 when it does, 1 if not; with PID, gives up early when that process has
died (unbound gives up when its port was taken meanwhile)."""
import socket, struct, sys, time

port = int(sys.argv[1])
name = sys.argv[2] if len(sys.argv) > 2 else "ready.test"
pid = int(sys.argv[3]) if len(sys.argv) > 3 else 0
q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + b"".join(
    bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.1)
end = time.time() + 10
while time.time() < end:
    try:
        s.sendto(q, ("127.0.0.1", port))
        d, _ = s.recvfrom(512)
        if d[:2] == q[:2] and d[3] & 0x0F == 0:
            sys.exit(0)
    except OSError:
        time.sleep(0.1)
    if pid:
        try:
            if open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] in "ZX":
                break
        except OSError:
            break
sys.exit(1)
