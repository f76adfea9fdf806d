#!/usr/bin/env python3
"""Calibrate the disk: N times, append 4 KiB to a file in DIR and fdatasync it.

    fsync.py DIR [N]

Prints "median_us p90_us": what one durable commit costs on this file system right now.
Every figure of the benchmark that waits on fsync (sends at low concurrency, idle ticks)
moves with it, so the benchmark prints it at its start and its end.
"""
import os, statistics, sys, time

d, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
path = os.path.join(d, "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
buf = b"\0" * 4096
t = []
for _ in range(n):
    os.write(fd, buf)
    t0 = time.perf_counter()
    os.fdatasync(fd)
    t.append((time.perf_counter() - t0) * 1e6)
os.close(fd)
os.unlink(path)
t.sort()
print("%.0f %.0f" % (statistics.median(t), t[int(len(t) * 0.9)]))
