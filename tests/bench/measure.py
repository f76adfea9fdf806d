#!/usr/bin/env python3
"""Run commands under /usr/bin/time and summarise them (the benchmark's stopwatch).

    measure.py [--repeat K] [--warmup W] [--now EPOCH --step S] [--log FILE] [--time PATH]
               --case NAME 'COMMAND WORDS' [--case NAME2 'COMMAND WORDS' ...]

Cases are interleaved (case1, case2, ..., case1, case2, ...) so drift in the machine's load
hits them alike; the first W rounds are not counted.  Wall time is taken here with a
monotonic clock around /usr/bin/time (whose own fork/exec, well under a millisecond, is in
every case alike); user/sys CPU and peak RSS (%M, KiB) are /usr/bin/time's figures for the
command alone.  With --now, round i runs with OUTREACH_NOW = EPOCH + i*S (a cron tick
every S virtual seconds).  Prints one line per case:
    NAME runs wall_mean_ms wall_median_ms wall_sd_ms wall_min_ms user_s sys_s rss_mean_kib rss_max_kib failures
(user_s and sys_s: means per run.)  Command output goes to --log (default /dev/null).
"""
import argparse, os, shlex, statistics, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--repeat", type=int, default=1)
ap.add_argument("--warmup", type=int, default=0)
ap.add_argument("--now", type=float, default=None)
ap.add_argument("--step", type=float, default=60)
ap.add_argument("--log", default=os.devnull)
ap.add_argument("--time", default="/usr/bin/time")
ap.add_argument("--case", nargs=2, action="append", metavar=("NAME", "COMMAND"), required=True)
a = ap.parse_args()

res = {name: [] for name, _ in a.case}
fails = {name: 0 for name, _ in a.case}
fd, tf = tempfile.mkstemp(prefix="measure.")
os.close(fd)
with open(a.log, "ab") as log:
    for r in range(a.warmup + a.repeat):
        for name, cmd in a.case:
            env = dict(os.environ)
            if a.now is not None:
                env["OUTREACH_NOW"] = "%d" % (a.now + r * a.step)
            argv = [a.time, "-f", "%e %U %S %M", "-o", tf] + shlex.split(cmd)
            log.write(("## %s round %d: %s\n" % (name, r, cmd)).encode())
            log.flush()
            t0 = time.perf_counter()
            rc = subprocess.call(argv, stdout=log, stderr=log, env=env)
            wall = time.perf_counter() - t0
            try:
                with open(tf) as f:
                    line = [ln for ln in f.read().splitlines() if ln and ln[0].isdigit()][-1]
                _, u, s, m = line.split()
                u, s, m = float(u), float(s), int(m)
            except Exception:
                u = s = 0.0
                m = 0
            if rc != 0:
                log.write(("## %s round %d: exit %d\n" % (name, r, rc)).encode())
            if r >= a.warmup:
                res[name].append((wall, u, s, m))
                if rc != 0:
                    fails[name] += 1
os.unlink(tf)
for name, _ in a.case:
    v = res[name]
    w = [x[0] * 1000 for x in v]
    print("%s %d %.3f %.3f %.3f %.3f %.4f %.4f %d %d %d" % (
        name, len(v), statistics.mean(w), statistics.median(w),
        statistics.stdev(w) if len(w) > 1 else 0.0, min(w),
        statistics.mean(x[1] for x in v), statistics.mean(x[2] for x in v),
        round(statistics.mean(x[3] for x in v)), max(x[3] for x in v), fails[name]))
