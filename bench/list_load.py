"""`python -m bench.run --lists-only`: the list pages by the server's own time (issue 30).

The panel is served as deployed — gunicorn with `--workers` sync workers — and each request is
timed by the server itself: the `duration_ms` of gunicorn's access line (bench/dashboard_load.py
`AccessLog`), found by the `X-Request-ID` the client sends. The rest of `make bench` times the
list pages from the client, which adds the client's own work and the network's.

1. **Each page alone**: the twelve list pages of `make bench` (need, member, service_record ×
   first, filtered, page 500, sorted) as 组织部, one client, `repeat` times each after a warm-up:
   p50 and p95 of server time (target ≤ 15 ms each).
2. **Throughput**: `BENCH_LIST_BUSY_CLIENTS` clients (default 4: two per worker, so that a worker
   never waits for its next request) asking for the need list's four pages in turn without
   pause for `BENCH_LIST_SECONDS`: pages served per second (target ≥ 2 × the issue's 46–49).
3. **Thirty users**: `BENCH_LIST_USERS` clients (default 30), each waiting 1 s between its
   requests, for `BENCH_LIST_SECONDS`: p95 of server time (target ≤ 300 ms), the clients' own
   beside it (their wait for a free worker included).

The clients are threads of this process, on the same machine as the server: at full speed they
take some of its CPU, which the throughput figure includes (as stated in its table).
"""
from __future__ import annotations

import os
import statistics
import time
from datetime import datetime

from bench.dashboard_load import AccessLog, Client, percentile, run_all

SECONDS = float(os.environ.get("BENCH_LIST_SECONDS", "30"))
BUSY_CLIENTS = int(os.environ.get("BENCH_LIST_BUSY_CLIENTS", "4"))
USERS = int(os.environ.get("BENCH_LIST_USERS", "30"))
THINK_S = 1.0
# The "today": two workers served 46–49 need-list pages a second.
TODAY_PER_S = 49
TARGETS = {"page_s": 0.015, "throughput": 2 * TODAY_PER_S, "users_p95_s": 0.3}


def _for(seconds: float, client: Client, urls: list[str], pause: float = 0.0,
         offset: int = 0) -> None:
    """GET `urls` in turn until `seconds` have passed, `pause` seconds between requests."""
    end = time.perf_counter() + seconds
    i = offset
    while time.perf_counter() < end:
        client.get(urls[i % len(urls)])
        i += 1
        if pause:
            time.sleep(pause)


def measure(db, workers: int, repeat: int, echo=print) -> dict:
    from bench import run as bench

    log_path = bench.RESULTS / f"{db.engine}-lists-gunicorn.log"
    log_path.unlink(missing_ok=True)
    result = {"workers": workers, "load": [os.getloadavg()], "pages": {}}
    echo(f"[{db.engine}/{db.scale}] list pages by server time: gunicorn {workers} workers")
    server = bench.Server("run:app", db.env(), workers, log_path)
    log = AccessLog(log_path)
    try:
        cookies = bench.login(server.base, "zuzhibu", db.password).cookies
        need_pages = list(bench.page_urls("need").values())
        warm = Client(server.base, cookies)
        for _ in range(2 * workers):  # each worker's first requests (imports, connections)
            for url in need_pages:
                warm.get(url)

        echo(f"  each page alone, {repeat} requests after a warm-up")
        for resource in bench.LISTS:
            for kind, url in bench.page_urls(resource).items():
                one = Client(server.base, cookies)
                one.get(url)
                one.ids.clear()
                for _ in range(repeat):
                    one.get(url)
                result["pages"][(resource, kind)] = log.server_times(one.ids)

        echo(f"  throughput: {BUSY_CLIENTS} clients without pause for {SECONDS:.0f} s")
        busy = [Client(server.base, cookies) for _ in range(BUSY_CLIENTS)]
        started = time.perf_counter()
        run_all([lambda c=c, i=i: _for(SECONDS, c, need_pages, offset=i)
                 for i, c in enumerate(busy)])
        elapsed = time.perf_counter() - started
        served = [rid for c in busy for rid in c.ids]
        result["busy"] = log.server_times(served)
        result["busy_per_s"] = len(served) / elapsed

        echo(f"  {USERS} users, {THINK_S:.0f} s between their requests, for {SECONDS:.0f} s")
        users = [Client(server.base, cookies) for _ in range(USERS)]

        def user(client, i):
            time.sleep(THINK_S * i / USERS)  # not all at the same instant
            _for(SECONDS, client, need_pages, pause=THINK_S, offset=i)
        run_all([lambda c=c, i=i: user(c, i) for i, c in enumerate(users)])
        result["users"] = log.server_times([rid for c in users for rid in c.ids])
        result["users_client"] = [s for c in users for s in c.client_s]
    finally:
        server.stop()
    result["load"].append(os.getloadavg())
    return result


def report(db, r: dict) -> str:
    from bench.run import commit, load_text, machine, ms, verdict

    lines = [
        f"# Benchmark: {db.engine}, {db.scale} scale, list pages by server time — "
        f"{datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"- Machine: {machine()}",
        f"- Commit: {commit()}; gunicorn {r['workers']} sync workers on loopback; server time = "
        "gunicorn's access log `duration_ms`, by request id; as zuzhibu (组织部, all data)",
        f"- Load average (1/5/15 min) at the start → the end: {load_text(r['load'])}",
        "",
        "| page | n | p50 | p95 | max | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for (resource, kind), times in r["pages"].items():
        p50 = statistics.median(times)
        lines.append(f"| {resource} {kind} | {len(times)} | {ms(p50)} | "
                     f"{ms(percentile(times, 0.95))} | {ms(max(times))} | "
                     f"≤ {ms(TARGETS['page_s'])} {verdict(p50 <= TARGETS['page_s'])} (p50) |")
    busy, users = r["busy"], r["users"]
    users_p95 = percentile(users, 0.95)
    lines += [
        "",
        "| load | requests | pages/s | server p50 | server p95 | client p95 | target |",
        "|---|---:|---:|---:|---:|---:|---|",
        f"| need list, {BUSY_CLIENTS} clients without pause | {len(busy)} | "
        f"{r['busy_per_s']:.1f} | {ms(statistics.median(busy))} | "
        f"{ms(percentile(busy, 0.95))} | | ≥ {TARGETS['throughput']} pages/s "
        f"{verdict(r['busy_per_s'] >= TARGETS['throughput'])} |",
        f"| need list, {USERS} users, {THINK_S:.0f} s between requests | {len(users)} | | "
        f"{ms(statistics.median(users))} | {ms(users_p95)} | "
        f"{ms(percentile(r['users_client'], 0.95))} | p95 ≤ {ms(TARGETS['users_p95_s'])} "
        f"{verdict(users_p95 <= TARGETS['users_p95_s'])} |",
        "",
        f"The clients run on the server's machine ({BUSY_CLIENTS} threads at full speed take some "
        "of its CPU); the issue's \"today\" is 46–49 need-list pages/s with 2 workers.",
    ]
    return "\n".join(lines) + "\n"
