#!/usr/bin/env python3
"""Write N job files (doc/design.md §3) straight into a spool folder, fast.

    gen.py DIR N [--client C] [--campaign K] [--not-before RFC3339] [--prefix j] [--first 1]

Files are named <prefix><6+ digit number>.json, which new/ accepts; jobs are numbered
from --first (two hosts' spools get different jobs).  Every job has its
own producer id and recipient (so no duplicates), a subject, text and html part with two
vars each; about 1 KB, like a real cold email.  Writes go straight into DIR (no tmp/ +
rename): the benchmark drops them before any run starts, so no run can see half a file.
"""
import argparse, json, os, time

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("n", type=int)
ap.add_argument("--client", default="bench")
ap.add_argument("--campaign", default="q4")
ap.add_argument("--not-before", default=None)
ap.add_argument("--prefix", default="j")
ap.add_argument("--first", type=int, default=1)
a = ap.parse_args()

from body import TEXT, HTML   # tests/bench/body.py (this script's folder is on sys.path)
width = max(6, len(str(a.first + a.n)))
t0 = time.perf_counter()
for i in range(a.first, a.first + a.n):
    job = {"id": "bench-%d" % i, "client": a.client, "campaign": a.campaign,
           "to": "Recipient %d <r%d@d%d.example>" % (i, i, i % 1000),
           "subject": "Quick question, {{ first_name }}", "text": TEXT, "html": HTML,
           "vars": {"first_name": "Name%d" % i, "company": "Company %d" % (i % 5000)}}
    if a.not_before:
        job["not_before"] = a.not_before
    fd = os.open(os.path.join(a.dir, "%s%0*d.json" % (a.prefix, width, i)),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, json.dumps(job, ensure_ascii=False).encode())
    os.close(fd)
print("%.2f" % (time.perf_counter() - t0))
