"""`python -m bench.run --dashboard-only`: 数据看板 under load (issue 29), through gunicorn.

The panel is served as deployed for several workers — gunicorn with `--workers` sync workers
and its rendered boards kept in Redis (`BENCH_REDIS_URL`, default db 14) — and measured by the
server's own time for each request: the `duration_ms` of gunicorn's access line (JSON, one per
request, app.ops.GunicornLogger), found by the `X-Request-ID` the client sends. Client times
(the wait for a free worker included) are reported beside them.

1. **One user, cold**: `/dashboard/` as 组织部 (all data, this year), the boards in Redis cleared
   before each request and that board never asked for before it — its figures computed; then
   the same page again, served from the kept copy (warm).
2. **Need lists, idle**: the need list's four pages (first, filtered, page 500, sorted) in turn,
   one client, nothing else running: p50 and p95.
3. **Ten dashboards at once**: ten clients as 组织部, each on a node of its own (all data, the
   first streets, the first communities) and a period of its own in each of its rounds (this
   year, last year, this quarter, this month, …): every board asked for once, the cache cleared
   at the start — all cold. Meanwhile the need-list client goes on; its p95 against its idle
   p95 (target ≤ 1.5 ×), the dashboards' p95 against 2 s.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
import uuid
from datetime import date, datetime
from pathlib import Path

import redis
import requests
from sqlalchemy import create_engine, text

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CLIENTS = int(os.environ.get("BENCH_DASHBOARD_CLIENTS", "10"))
ROUNDS = int(os.environ.get("BENCH_DASHBOARD_ROUNDS", "3"))
IDLE_LIST_REQUESTS = 20
TARGETS = {"cold_s": 0.5, "p95_s": 2.0, "lists": 1.5}


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: the smallest value at or above `share` of the samples."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class AccessLog:
    """The server's time of each request, by the request id the client sent."""

    def __init__(self, path: Path):
        self.path = path

    def entries(self) -> dict[str, dict]:
        """Each request's access line (JSON), by the request id the client sent."""
        found = {}
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"duration_ms"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("request_id") and entry.get("duration_ms") is not None:
                found[entry["request_id"]] = entry
        return found

    def lines(self, ids: list[str], wait: float = 10) -> list[dict]:
        deadline = time.time() + wait
        while True:
            known = self.entries()
            if all(i in known for i in ids) or time.time() > deadline:
                missing = [i for i in ids if i not in known]
                if missing:
                    raise SystemExit(f"{len(missing)} requests not in the access log {self.path}")
                return [known[i] for i in ids]
            time.sleep(0.2)

    def server_times(self, ids: list[str], wait: float = 10) -> list[float]:
        return [entry["duration_ms"] / 1000 for entry in self.lines(ids, wait)]


class Client:
    """A logged-in session whose each GET carries a request id of its own."""

    def __init__(self, base: str, cookies):
        self.base = base
        self.session = requests.Session()
        self.session.cookies.update(cookies)
        self.ids: list[str] = []
        self.client_s: list[float] = []

    def get(self, url: str) -> str:
        rid = f"bench-{uuid.uuid4().hex}"
        started = time.perf_counter()
        response = self.session.get(self.base + url, headers={"X-Request-ID": rid},
                                    timeout=900)
        self.client_s.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"GET {url}: {response.status_code} (request {rid})")
        self.ids.append(rid)
        return rid


def run_all(work: list) -> None:
    """Run each callable on a thread of its own; the first failure raised here."""
    failures = []

    def guarded(function):
        try:
            function()
        except BaseException as exc:  # a thread's SystemExit is not the run's
            failures.append(exc)
    threads = [threading.Thread(target=guarded, args=(w,)) for w in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} clients failed: {failures[0]}")


def clear_boards(client: redis.Redis, prefix: str) -> int:
    keys = list(client.scan_iter(f"{prefix}:board:*"))
    if keys:
        client.delete(*keys)
    return len(keys)


def dashboard_urls(url: str, clients: int, rounds: int) -> list[list[str]]:
    """Per client, its rounds' URLs: a node each (all data, streets, communities) and a period
    each round — every (node, period) once."""
    engine = create_engine(url)
    with engine.connect() as conn:
        streets = conn.execute(text(
            "SELECT id FROM organization WHERE type = 'street' AND deleted_on IS NULL "
            "ORDER BY id LIMIT :n"), {"n": clients // 2}).scalars().all()
        communities = conn.execute(text(
            "SELECT id FROM organization WHERE type = 'community' AND deleted_on IS NULL "
            "ORDER BY id LIMIT :n"), {"n": clients}).scalars().all()
    engine.dispose()
    nodes = ([None, *streets, *communities])[:clients]
    today = date.today()
    quarter = (today.month - 1) // 3 + 1
    periods = [str(today.year), str(today.year - 1), f"{today.year}Q{quarter}",
               f"{today:%Y-%m}", f"{today.year - 1}Q{quarter}",
               f"{today.year - 1}-{today.month:02d}"]
    return [[f"/dashboard/?period={periods[(i + r) % len(periods)]}"
             + (f"&org={node}" if node else "") for r in range(rounds)]
            for i, node in enumerate(nodes)]


def measure(db, workers: int, repeat: int, echo=print) -> dict:
    from bench import run as bench

    prefix = f"bench-{os.getpid()}"
    log_path = bench.RESULTS / f"{db.engine}-dashboard-gunicorn.log"
    log_path.unlink(missing_ok=True)
    env = {**db.env(), "REDIS_URL": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix,
           "DASHBOARD_CACHE_SECONDS": "600"}
    store = redis.Redis.from_url(REDIS_URL)
    store.ping()
    result = {"workers": workers, "clients": CLIENTS, "rounds": ROUNDS,
              "load": [os.getloadavg()]}
    urls = dashboard_urls(db.url, CLIENTS, ROUNDS)
    echo(f"[{db.engine}/{db.scale}] /dashboard/ under load: gunicorn {workers} workers, "
         f"boards in {REDIS_URL}")
    server = bench.Server("run:app", env, workers, log_path)
    log = AccessLog(log_path)
    try:
        # One login, shared: the clients are one user's tabs (the login limit counts per
        # account and address).
        cookies = bench.login(server.base, "zuzhibu", db.password).cookies
        warm = Client(server.base, cookies)
        for _ in range(2 * workers):  # each worker's first requests (imports, connections)
            warm.get("/need/list/")
        year = f"/dashboard/?period={date.today().year}"

        echo("  one user, cold (boards cleared before each request)")
        single = Client(server.base, cookies)
        cold_ids, warm_ids = [], []
        for _ in range(max(1, repeat)):
            clear_boards(store, prefix)
            cold_ids.append(single.get(year))
            warm_ids.append(single.get(year))
            if single.client_s[-2] > 20:
                break
        cold_lines = log.lines(cold_ids)
        result["cold"] = [b["duration_ms"] / 1000 for b in cold_lines]
        result["cold_cpu"] = [b["cpu_ms"] / 1000 for b in cold_lines if b.get("cpu_ms") is not None]
        result["warm"] = log.server_times(warm_ids)
        result["cold_client"] = single.client_s[0::2]

        echo(f"  need lists idle ({IDLE_LIST_REQUESTS} requests)")
        pages = list(bench.page_urls("need").values())
        lists = Client(server.base, cookies)
        for i in range(IDLE_LIST_REQUESTS):
            lists.get(pages[i % len(pages)])
        result["lists_idle"] = log.server_times(lists.ids)
        result["lists_idle_client"] = list(lists.client_s)

        echo(f"  {CLIENTS} dashboards at once, {ROUNDS} rounds each, cold; need lists meanwhile")
        clear_boards(store, prefix)
        loaded = Client(server.base, cookies)
        stop = threading.Event()

        def browse_lists():
            i = 0
            while not stop.is_set():
                loaded.get(pages[i % len(pages)])
                i += 1

        viewers = [Client(server.base, cookies) for _ in urls]

        def view(client, own):
            for url in own:
                client.get(url)

        lister = threading.Thread(target=browse_lists)
        started = time.perf_counter()
        lister.start()
        try:
            run_all([lambda c=c, own=own: view(c, own) for c, own in zip(viewers, urls)])
        finally:
            result["load_s"] = time.perf_counter() - started
            stop.set()
            lister.join()
        ids = [rid for c in viewers for rid in c.ids]
        boards = log.lines(ids)
        result["dashboards"] = [b["duration_ms"] / 1000 for b in boards]
        result["dashboards_cpu"] = [b["cpu_ms"] / 1000 for b in boards if b.get("cpu_ms") is not None]
        # Which worker served each board, and whether it was that worker's first board.
        firsts = {}
        for b in sorted(log.lines(cold_ids + warm_ids + ids), key=lambda b: b["time"]):
            firsts.setdefault(b.get("worker"), b["request_id"])
        result["slowest"] = [
            {"query": b.get("query"), "s": b["duration_ms"] / 1000, "cpu_s": (b.get("cpu_ms") or 0) / 1000,
             "first": firsts.get(b.get("worker")) == b["request_id"]}
            for b in sorted(boards, key=lambda b: -b["duration_ms"])[:5]]
        result["dashboards_client"] = [s for c in viewers for s in c.client_s]
        result["lists_loaded"] = log.server_times(loaded.ids)
        result["lists_loaded_client"] = list(loaded.client_s)
        result["distinct"] = len({u for own in urls for u in own})
    finally:
        server.stop()
        clear_boards(store, prefix)
    result["load"].append(os.getloadavg())
    return result


def report(db, r: dict) -> str:
    from bench.run import commit, load_text, machine, ms, verdict

    def line(name, values, client=None, target="", cpu=None):
        row = (f"| {name} | {len(values)} | {ms(statistics.median(values))} | "
               f"{ms(percentile(values, 0.95))} | {ms(max(values))} |")
        row += (f" {ms(statistics.median(cpu))} / {ms(percentile(cpu, 0.95))} |" if cpu
                else " |")
        row += f" {ms(percentile(client, 0.95))} |" if client else " |"
        return row + f" {target} |"

    cold = statistics.median(r["cold"])
    p95 = percentile(r["dashboards"], 0.95)
    idle, loaded = percentile(r["lists_idle"], 0.95), percentile(r["lists_loaded"], 0.95)
    ratio = loaded / idle
    return "\n".join([
        f"# Benchmark: {db.engine}, {db.scale} scale, 数据看板 under load — "
        f"{datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"- Machine: {machine()}",
        f"- Commit: {commit()}; gunicorn {r['workers']} sync workers on loopback, boards kept in "
        f"Redis ({REDIS_URL}); server time = gunicorn's access log `duration_ms`, by request id",
        f"- Load average (1/5/15 min) at the start → the end: {load_text(r['load'])}",
        f"- {r['clients']} clients × {r['rounds']} rounds = {r['distinct']} distinct boards "
        f"(node × period), all cold; {len(r['dashboards']) / r['load_s']:.2f} boards/s over "
        f"{r['load_s']:.1f} s",
        "",
        "| requests (server time) | n | p50 | p95 | max | worker CPU p50 / p95 | client p95 | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        line("/dashboard/ 组织部, all data, this year — cold", r["cold"], r["cold_client"],
             f"≤ {ms(TARGETS['cold_s'])} {verdict(cold <= TARGETS['cold_s'])} (p50)",
             r.get("cold_cpu")),
        line("the same, served from the kept board (warm)", r["warm"]),
        line(f"{r['clients']} dashboards at once, nodes × periods, cold", r["dashboards"],
             r["dashboards_client"],
             f"p95 ≤ {ms(TARGETS['p95_s'])} {verdict(p95 <= TARGETS['p95_s'])}",
             r.get("dashboards_cpu")),
        line("need lists, idle", r["lists_idle"], r["lists_idle_client"]),
        line("need lists, while the dashboards run", r["lists_loaded"], r["lists_loaded_client"],
             f"p95 ≤ {TARGETS['lists']} × idle: {ratio:.2f} {verdict(ratio <= TARGETS['lists'])}"),
        "",
        f"Client times include the wait for a free worker ({r['workers']} sync workers, "
        f"{r['clients'] + 1} clients: the dashboards' and the need lists'). Worker CPU: the "
        "serving worker's own CPU time (the access line's `cpu_ms`) — on PostgreSQL the "
        "database server's work is not in it.",
        "",
        "The slowest of the boards at once (server time, worker CPU; * a worker's first board):",
        "",
        *[f"- `{b['query']}`: {ms(b['s'])}, CPU {ms(b['cpu_s'])}{' *' if b['first'] else ''}"
          for b in r.get("slowest", [])],
    ]) + "\n"
