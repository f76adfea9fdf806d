"""What the crash, soak, resource and concurrency suites read back from a spool:
which final folder holds each job file, how many messages the file provider
wrote per job, and which temporary files were left behind.  Imported by their inline checks (lib.sh puts tests/ on PYTHONPATH)."""
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


def strays(root):
    """temporary files under root, relative paths: outreach's own (.tmp-<16 hex>, left by a
    crash between a file's fsync and its rename) in any folder, and anything in a tmp/"""
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            if re.fullmatch(r"\.tmp-[0-9a-f]{16}", f) or os.path.basename(d) == "tmp":
                out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def counts_off(db):
    """the per-state counts (state_counts, kept by triggers and by each move) that differ
    from the rows they count, as (client, campaign, state): (kept, rows); {} when right"""
    kept = {(c, k, st): n for c, k, st, n in db.execute("SELECT client, campaign, state, n FROM state_counts")
            if n != 0}
    rows = {(c, k, st): n for c, k, st, n in db.execute(
        "SELECT coalesce(client, ''), coalesce(campaign, ''), state, count(*) FROM jobs GROUP BY 1, 2, 3")}
    return {key: (kept.get(key, 0), rows.get(key, 0)) for key in set(kept) | set(rows)
            if kept.get(key, 0) != rows.get(key, 0)}
