"""What the crash, soak, resource and concurrency suites read back from a spool:
which final folder holds each job file, and how many messages the file provider
wrote per job.  Imported by their inline checks (lib.sh puts tests/ on PYTHONPATH)."""
import os
import re

# the ledger states each folder may hold
FOLDERS = {"defer": {"waiting"}, "done": {"sent", "suppressed", "duplicate"}, "failed": {"failed"},
           "bad": {"bad"}, "held": {"held"}}


def ls(spool, d):
    """the entries of spool/d, hidden ones left out"""
    return sorted(f for f in os.listdir(os.path.join(spool, d)) if not f.startswith("."))


def where(spool):
    """job id -> the folders of FOLDERS that hold its .json file"""
    w = {}
    for d in FOLDERS:
        for f in ls(spool, d):
            if f.endswith(".json"):
                w.setdefault(f[:-5], []).append(d)
    return w


def outbox(box):
    """job id -> how many messages the file provider wrote for it (<id>.eml, <id>.2.eml, ...)"""
    n = {}
    for f in os.listdir(box) if os.path.isdir(box) else []:
        m = re.fullmatch(r"([0-9a-f]{16})(?:\.(\d+))?\.eml", f)
        if m:
            n[m.group(1)] = n.get(m.group(1), 0) + 1
    return n
