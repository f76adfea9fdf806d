#!/usr/bin/env python3
"""The design's own architecture, for the benchmark's ratio: Redis + RQ SimpleWorker + requests.

    rqbench.py SOCKET URL N WORKERS      (run with Debian's /usr/bin/python3: python3-rq,
                                          python3-redis, python3-requests; no PyPI)

SOCKET is the unix socket of a redis-server the benchmark started (its database is
flushed first).  The producer enqueues one RQ job per email, N of them (recipient, subject,
text and html body, rendered from gen.py's template), in pipelined batches of 1,000; that
part is not timed, as outreach's ingest run is not.  Then WORKERS processes each run one
`SimpleWorker(...).work(burst=True)` (no fork per job; a burst worker exits once the queue
is empty), and each job POSTs a SendGrid-shaped mail/send body (the JSON outreach's
sendgrid provider builds, roughly: personalizations/to/custom_args, from, subject, content,
headers, categories) with a keep-alive requests.Session to URL + /v3/mail/send, and fails
unless the answer is 202.  Workers log at WARNING (not RQ's INFO line per job): the
cheapest way to run it.  Timed: from starting the workers to the last one's exit.

Prints one line:
    enq_s enq_cpu_s wall_s workers_cpu_s redis_cpu_s finished failed left workers_rss_kib redis_rss_kib
workers_cpu_s is user+sys of every worker (os.wait4), redis_cpu_s the server's used_cpu_user +
used_cpu_sys over the timed part (INFO cpu), workers_rss_kib the sum of the workers' peak
RSS, redis_rss_kib the server's VmHWM.  finished/failed: the registries' counts; left: jobs
still queued.
"""
import os, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from body import TEXT, HTML   # the same body gen.py gives outreach's jobs

_session = None


def send(to, subject, text, html, job_id, client="bench", campaign="q4"):
    """The job: one mail/send POST; returns the provider's message id."""
    global _session
    import requests
    if _session is None:
        _session = requests.Session()
    name, addr = to.rsplit(" <", 1)
    body = {
        "personalizations": [{"to": [{"email": addr.rstrip(">"), "name": name}],
                              "custom_args": {"client": client, "campaign": campaign, "job_id": job_id}}],
        "from": {"email": "anna@s1.example", "name": "Anna"},
        "subject": subject,
        "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
        "headers": {"Message-ID": "<%s@s1.example>" % job_id},
        "categories": [client, campaign],
    }
    r = _session.post(os.environ["RQBENCH_URL"] + "/v3/mail/send", json=body,
                      headers={"Authorization": "Bearer SG.bench-key", "Accept": "application/json"},
                      timeout=30)
    if r.status_code != 202:
        raise RuntimeError("mail/send answered %d" % r.status_code)
    return r.headers.get("X-Message-Id")


def worker(sock):
    from redis import Redis
    from rq import Queue, SimpleWorker
    conn = Redis(unix_socket_path=sock)
    SimpleWorker([Queue(connection=conn)], connection=conn).work(burst=True, logging_level="WARNING")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "worker":
        os.environ["RQBENCH_URL"] = sys.argv[3]
        worker(sys.argv[2])
        return
    sock, url, n, nw = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    from redis import Redis
    from rq import Queue
    from rq.registry import FailedJobRegistry, FinishedJobRegistry
    conn = Redis(unix_socket_path=sock)
    conn.flushdb()
    q = Queue(connection=conn)

    c0, t0 = time.process_time(), time.perf_counter()
    batch = []
    for i in range(1, n + 1):
        v = {"{{ first_name }}": "Name%d" % i, "{{ company }}": "Company %d" % (i % 5000)}
        text, html = TEXT, HTML
        for k, s in v.items():
            text, html = text.replace(k, s), html.replace(k, s)
        batch.append(Queue.prepare_data("rqbench.send",
                                        args=("Recipient %d <r%d@d%d.example>" % (i, i, i % 1000),
                                              "Quick question, Name%d" % i, text, html, "bench-%d" % i),
                                        result_ttl=86400))
        if len(batch) == 1000 or i == n:
            q.enqueue_many(batch)
            batch = []
    enq_s, enq_cpu = time.perf_counter() - t0, time.process_time() - c0

    def redis_cpu():
        c = conn.info("cpu")
        return c["used_cpu_user"] + c["used_cpu_sys"]
    rc0 = redis_cpu()
    env = dict(os.environ, RQBENCH_URL=url)
    t0 = time.perf_counter()
    pids = [os.spawnve(os.P_NOWAIT, sys.executable, [sys.executable, os.path.join(HERE, "rqbench.py"),
                                                     "worker", sock, url], env) for _ in range(nw)]
    cpu = rss = 0
    for p in pids:
        _, _, ru = os.wait4(p, 0)
        cpu += ru.ru_utime + ru.ru_stime
        rss += ru.ru_maxrss
    wall = time.perf_counter() - t0
    rcpu = redis_cpu() - rc0
    hwm = 0
    with open("/proc/%d/status" % conn.info("server")["process_id"]) as f:
        for ln in f:
            if ln.startswith("VmHWM:"):
                hwm = int(ln.split()[1])
    fin = len(FinishedJobRegistry(queue=q))
    failed = len(FailedJobRegistry(queue=q))
    print("%.3f %.3f %.3f %.3f %.3f %d %d %d %d %d" % (enq_s, enq_cpu, wall, cpu, rcpu, fin, failed,
                                                       len(q), rss, hwm))


if __name__ == "__main__":
    main()
