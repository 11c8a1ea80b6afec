"""`make bench` / `python -m bench.run [--db sqlite|postgresql|all] [--scale-only demo]`.

Measures each figure of the performance issue against its baseline, in the same run, on a
cached city database (and a demo-scale one for "does cost grow with the data?"), and prints a
table of medians and ratios with the issue's targets; the same table goes to
bench/results/<db>-<date>.md with the machine and the date. See bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib.util import find_spec
from pathlib import Path

import psutil
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import cache
from bench.inproc import timed

RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
TIMEOUT = 900  # seconds a request may take (a stock page over millions of rows is slow)
# An export slower than this is cut off: its throughput is that of the rows it sent by then.
EXPORT_LIMIT = float(os.environ.get("BENCH_EXPORT_LIMIT", "300"))

# Each list: its view class (FAB's URL arguments carry it), a filter (FAB's FilterEqual is
# filter 3 of a text column, in FAB's and in the panel's converter alike) and a non-default order.
LISTS = {
    "need": ("NeedView", ("status", "待受理"), ("deadline", "asc")),
    "member": ("MemberView", ("category", "退休"), ("status", "desc")),
    "service_record": ("ServiceRecordView", ("status", "已认证"), ("hours", "desc")),
}
PAGE_KINDS = ("first", "filtered", "page 500", "sorted")
# The stock app's two configurations (bench/stock_app.py): "stock" as a competent user sets it
# up (the baseline of the target), "untuned" with FAB's defaults and relationship search fields.
STOCK = {"stock": "1", "untuned": "0"}

# The export measured is the CSV streamed in the request. Past EXPORT_INLINE_MAX_ROWS (20,000 by
# default) an export is a job that writes its file into the shared storage — with no broker, in
# the request, into the database itself: the bench's — and the client is sent to the job's page
# (since issue 21 the bench timed that and counted the page's lines as rows).
EXPORT_ENV = {"EXPORT_INLINE_MAX_ROWS": str(10 ** 9)}

# CSV export of all service records: the same rows, columns and order as the panel's export
# (app.views.cobuild.ServiceRecordView's show columns: member, served_on, hours, served_what,
# description, status, certified_on, reject_reason, revoke_reason, pay_cycle, created_on,
# changed_on; base order served_on desc, then id; soft-deleted rows left out), written raw.
EXPORT_SQL = """SELECT m.name, sr.served_on, sr.hours,
 CASE WHEN p.id IS NOT NULL THEN '岗位：' || p.name
      WHEN i.id IS NOT NULL THEN '项目：' || i.title
      WHEN n.id IS NOT NULL THEN '需求：' || n.title
      WHEN w.id IS NOT NULL THEN '微心愿：' || substr(w.content, 1, 20)
      ELSE '其他服务' END,
 sr.description, sr.status, sr.certified_on, sr.reject_reason, sr.revoke_reason, sr.pay_cycle,
 sr.created_on, sr.changed_on
FROM service_record sr JOIN member m ON m.id = sr.member_id
LEFT JOIN service_post p ON p.id = sr.post_id LEFT JOIN service_item i ON i.id = sr.service_item_id
LEFT JOIN need n ON n.id = sr.need_id LEFT JOIN micro_wish w ON w.id = sr.micro_wish_id
WHERE sr.deleted_on IS NULL ORDER BY sr.served_on DESC, sr.id"""

# The API's list of needs as plain SQL: its columns (app.api.lists.NeedApi), first page of 20
# in its order, and the count it returns.
API_SQL = [
    "SELECT id, title, community_id, category_id, urgency, status, assigned_unit_id, deadline, "
    "created_on FROM need WHERE deleted_on IS NULL ORDER BY created_on DESC LIMIT 20",
    "SELECT count(*) FROM need WHERE deleted_on IS NULL",
]

# Issue 9's targets, raised where issues 29 and 30 raised them: the panel ≥ 3× the tuned stock
# app, export ≥ 0.7× the database's client, import ≤ 1.3× read_excel, the API ≤ 1.5× its SQL,
# the dashboard ≤ 500 ms (beside ≤ 2× its own SELECTs, which slow SQL can pass).
TARGETS = {"scale": 1.5, "stock": 3.0, "export": {"sqlite": 0.7, "postgresql": 0.7},
           "export_mb": 256, "dashboard": 2.0, "dashboard_s": 0.5, "import": 1.3, "api": 1.5,
           "assessment": 2.0, "assessment_s": 60}


def page_urls(resource: str) -> dict[str, str]:
    view, (column, value), (order, direction) = LISTS[resource]
    base = f"/{resource}/list/"
    return {
        "first": base,
        "filtered": f"{base}?_flt_3_{column}={value}",
        "page 500": f"{base}?page_{view}=499",
        "sorted": f"{base}?_oc_{view}={order}&_od_{view}={direction}",
    }


# --- serving ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn on loopback, a random port, several workers; stopped by its own pid. The panel
    runs with its own gunicorn.conf.py (found in the project's root, as deployed); another app
    (the stock one) with gunicorn's defaults — that file's hooks reach for the panel's database."""

    def __init__(self, spec: str, env: dict, workers: int, log: Path, panel: bool = True):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "ab")
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
             "--timeout", str(TIMEOUT), "--log-level", "warning",
             *([] if panel else ["-c", os.devnull]), spec],
            cwd=cache.ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn {spec} exited; see {log}")
            try:
                if requests.get(self.base + "/login/", timeout=30).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"gunicorn {spec} did not answer in 180 s; see {log}")

    def workers(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def login(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(base + "/login/", timeout=60).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = session.post(base + "/login/", allow_redirects=False, timeout=60, data={
        "username": username, "password": password, "csrf_token": token})
    if response.status_code != 302:
        raise SystemExit(f"{username} could not log in at {base}")
    return session


def get_timed(session, url: str, repeat: int, **kw) -> tuple[float, requests.Response]:
    """Median seconds of GET `url` after one warm-up request; the last response. A page
    slower than 20 s is measured once, its first request being the figure."""
    started = time.perf_counter()
    response = session.get(url, timeout=TIMEOUT, **kw)  # warm-up (caches, first connection)
    response.raise_for_status()
    if time.perf_counter() - started > 20:
        return time.perf_counter() - started, response
    last = {}

    def once():
        last["r"] = session.get(url, timeout=TIMEOUT, **kw)
        last["r"].raise_for_status()
    median, _ = timed(once, repeat)
    return median, last["r"]


def rows_shown(resource: str, page: str) -> int:
    """The rows a list page shows (each links to its record): none past the last page."""
    return len(set(re.findall(rf'href="/{resource}/show/(\d+)', page)))


def record_count(page: str) -> str:
    match = re.search(r"(?:Record Count|记录数)\D{0,40}?([\d,]+\+?)", page)
    return match.group(1) if match else "?"


def list_pages(base: str, username: str, password: str, repeat: int) -> dict:
    session = login(base, username, password)
    out = {}
    for resource in LISTS:
        for kind, url in page_urls(resource).items():
            seconds, response = get_timed(session, base + url, repeat)
            out[(resource, kind)] = {"s": seconds, "count": record_count(response.text),
                                     "shown": rows_shown(resource, response.text)}
    return out


def export_csv(server: Server, password: str, repeat: int) -> dict:
    """GET /service_record/export/csv consumed as it streams; peak RSS of the workers sampled
    every 20 ms while it runs."""
    session = login(server.base, "zuzhibu", password)
    workers = server.workers()
    idle = max(w.memory_info().rss for w in workers)
    samples = []
    for _ in range(max(1, min(repeat, 3))):
        peak, done = [idle], threading.Event()

        def sample(peak=peak, done=done):
            while not done.is_set():
                for w in workers:
                    try:
                        peak.append(w.memory_info().rss)
                    except psutil.Error:
                        pass
                time.sleep(0.02)
        thread = threading.Thread(target=sample)
        thread.start()
        started, lines, cut = time.perf_counter(), 0, False
        with session.get(server.base + "/service_record/export/csv", stream=True,
                         timeout=TIMEOUT) as response:
            response.raise_for_status()
            if not response.headers.get("Content-Type", "").startswith("text/csv"):
                raise SystemExit(f"the export answered {response.url}, not a CSV")
            for chunk in response.iter_content(1 << 16):
                lines += chunk.count(b"\n")
                if time.perf_counter() - started > EXPORT_LIMIT:
                    cut = True
                    break
        seconds = time.perf_counter() - started
        done.set()
        thread.join()
        samples.append({"s": seconds, "rows": lines - 1, "peak": max(peak), "cut": cut,
                        "rows_per_s": (lines - 1) / seconds})
        if seconds > 20:
            break
    middle = sorted(samples, key=lambda s: s["s"])[len(samples) // 2]
    return {**middle, "peak_mb": max(s["peak"] for s in samples) / 2**20, "idle_mb": idle / 2**20}


def export_cli(url: str, repeat: int) -> dict:
    """The same query's CSV from the database's own client, read through a pipe as the HTTP
    export is read: sqlite3 -csv, or psql \\copy … TO STDOUT CSV."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        command = ["sqlite3", "-csv", "-header", parsed.database, EXPORT_SQL]
    else:
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        sql = " ".join(EXPORT_SQL.split())
        command = ["psql", "-X", "-q", "-d", dsn, "-c", f"\\copy ({sql}) TO STDOUT WITH CSV HEADER"]

    def once():
        with subprocess.Popen(command, stdout=subprocess.PIPE) as process:
            while process.stdout.read(1 << 16):
                pass
        if process.returncode:
            raise SystemExit(f"{command[0]} failed ({process.returncode})")
    seconds, _ = timed(once, max(1, min(repeat, 3)))
    # Rows counted by the database: a CSV line count would also count newlines inside cells.
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT count(*) FROM ({EXPORT_SQL.split(' ORDER BY')[0]}) t")).scalar()
    engine.dispose()
    return {"s": seconds, "rows": rows, "rows_per_s": rows / seconds}


def api_list(base: str, password: str, repeat: int) -> float:
    response = requests.post(base + "/api/v1/security/login", timeout=60, json={
        "username": "zuzhibu", "password": password, "provider": "db"})
    response.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + response.json()["access_token"]
    seconds, _ = get_timed(session, base + "/api/v1/need/", repeat)
    return seconds


def api_raw(url: str, repeat: int) -> float:
    engine = create_engine(url)
    raw = engine.raw_connection()
    cursor = raw.cursor()

    def once():
        for sql in API_SQL:
            cursor.execute(sql)
            cursor.fetchall()
    once()
    seconds, _ = timed(once, repeat)
    raw.close()
    engine.dispose()
    return seconds


# --- one database -------------------------------------------------------------------------------

@dataclass
class Run:
    engine: str
    scales: list[str]
    repeat: int
    workers: int
    dbs: dict = field(default_factory=dict)  # scale -> cache.Database
    lists: dict = field(default_factory=dict)  # scale or a STOCK key -> {(resource, kind): …}
    export: dict = field(default_factory=dict)
    cli: dict = field(default_factory=dict)
    dashboard: dict = field(default_factory=dict)  # scale -> seconds
    api: dict = field(default_factory=dict)
    api_raw: float = 0.0
    inproc: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    load: list = field(default_factory=lambda: [os.getloadavg()])  # at the start, at the end

    @property
    def big(self) -> str:
        return self.scales[-1]


def measure(engine: str, scales: list[str], repeat: int, workers: int, echo=print) -> Run:
    run = Run(engine, scales, repeat, workers)
    log = RESULTS / f"{engine}-gunicorn.log"
    for scale in scales:
        run.dbs[scale] = cache.ensure(engine, scale, echo)
    for scale in scales:
        db = run.dbs[scale]
        echo(f"[{engine}/{scale}] the panel through gunicorn ({workers} workers)")
        # The dashboard computed at each request (its cold figure): no board kept between them
        # (the board cache under load is --dashboard-only's, bench/dashboard_load.py).
        server = Server("run:app", {**db.env(), "DASHBOARD_CACHE_SECONDS": "0", **EXPORT_ENV},
                        workers, log)
        try:
            run.lists[scale] = list_pages(server.base, "zuzhibu", db.password, repeat)
            session = login(server.base, "zuzhibu", db.password)
            run.dashboard[scale], _ = get_timed(session, server.base + "/dashboard/", repeat)
            run.api[scale] = api_list(server.base, db.password, repeat)
            if scale == run.big:
                echo(f"[{engine}/{scale}] CSV export of all service records")
                run.export = export_csv(server, db.password, repeat)
        finally:
            server.stop()
    big = run.dbs[run.big]
    subprocess.run([sys.executable, "-m", "bench.stock_app", "init", big.url], cwd=cache.ROOT,
                   env=big.env(), check=True, stdout=subprocess.DEVNULL)
    for key, tuned in STOCK.items():
        echo(f"[{engine}/{run.big}] stock Flask-AppBuilder over the same data ({key})")
        server = Server("bench.stock_app:app", {**big.env(), "BENCH_STOCK_DATA_URL": big.url,
                                                "BENCH_STOCK_TUNED": tuned}, workers, log,
                        panel=False)
        try:
            run.lists[key] = list_pages(server.base, "admin", cache.PASSWORD, repeat)
        finally:
            server.stop()
    echo(f"[{engine}/{run.big}] baselines: database CLI export, raw API SQL")
    run.cli = export_cli(big.url, repeat)
    run.api_raw = api_raw(big.url, repeat)
    echo(f"[{engine}/{run.big}] in process: dashboard SQL, queries per page, import of 10,000 rows")
    pages = {f"{r} {k}": u for r in LISTS for k, u in page_urls(r).items()}
    pages["dashboard"] = "/dashboard/"
    child = subprocess.run([sys.executable, "-m", "bench.inproc", big.url, str(repeat),
                            big.password, json.dumps(pages)], cwd=cache.ROOT,
                           env=big.env(), check=True, stdout=subprocess.PIPE, text=True)
    run.inproc = json.loads(child.stdout.strip().splitlines()[-1])
    sizes = create_engine(big.url)
    with sizes.connect() as conn:
        for table in ("organization", "unit", "member", "need", "service_record", "point_entry"):
            run.sizes[table] = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
    sizes.dispose()
    run.load.append(os.getloadavg())
    return run


# --- the table ----------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
                 platform.processor())
    return (f"{os.cpu_count()} CPUs ({model}), {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cache.ROOT,
                              capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def load_text(load: list) -> str:
    """The machine's load averages (1, 5, 15 min) at the start and the end: the figures of a
    busy machine read differently from a quiet one's."""
    return " → ".join("/".join(f"{x:.1f}" for x in sample) for sample in load)


def report(run: Run) -> str:
    big, demo = run.big, run.scales[0] if len(run.scales) > 1 else None
    q = run.inproc["pages"]
    lines = [
        f"# Benchmark: {run.engine}, {big} scale — {datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"- Machine: {machine()}",
        f"- Commit: {commit()}; gunicorn {run.workers} sync workers on loopback; median of up to "
        f"{run.repeat} requests after one warm-up (fewer when one takes > 5 s)",
        f"- Load average (1/5/15 min) at the start → the end of the run: {load_text(run.load)}",
        f"- Database ({big}): " + ", ".join(f"{k} {v:,}" for k, v in run.sizes.items()),
        "",
        "## List pages (as zuzhibu, all data in scope)",
        "",
    ]
    head = f"| page | {big} | rows |"
    rule = "|---|---:|---:|"
    if demo:
        head += f" {demo} | {big}/{demo} (≤ {TARGETS['scale']}) |"
        rule += "---:|---|"
    head += (f" stock FAB | stock/panel (≥ {TARGETS['stock']}) | untuned stock FAB | "
             "untuned/panel | queries |")
    rule += "---:|---|---:|---:|---:|"
    lines += [head, rule]
    for resource in LISTS:
        for kind in PAGE_KINDS:
            key = (resource, kind)
            mine = run.lists[big][key]
            row = f"| {resource} {kind} | {ms(mine['s'])} | {mine['count']} |"
            if demo:
                ratio = mine["s"] / run.lists[demo][key]["s"]
                empty = " (no rows)" if run.lists[demo][key]["shown"] == 0 else ""
                row += (f" {ms(run.lists[demo][key]['s'])}{empty} | {ratio:.2f} "
                        f"{verdict(ratio <= TARGETS['scale'])} |")
            stock, untuned = run.lists["stock"][key], run.lists["untuned"][key]
            speedup = stock["s"] / mine["s"]
            row += (f" {ms(stock['s'])} ({stock['count']}) | {speedup:.1f}× "
                    f"{verdict(speedup >= TARGETS['stock'])} | {ms(untuned['s'])} | "
                    f"{untuned['s'] / mine['s']:.1f}× | {q[f'{resource} {kind}']['queries']} |")
            lines.append(row)
    e, c = run.export, run.cli
    if not e["cut"]:  # the same rows as the client's (the line count also counts newlines in cells)
        e = {**e, "rows": c["rows"], "rows_per_s": c["rows"] / e["s"]}
    ratio = e["rows_per_s"] / c["rows_per_s"]
    target = TARGETS["export"][run.engine]
    client = "sqlite3 -csv" if run.engine == "sqlite" else "psql \\copy"
    d = run.inproc["dashboard"]
    dash = run.dashboard[big] / d["raw_s"]
    imp = run.inproc["import"]
    imp_ratio = imp["import_s"] / imp["read_excel_s"]
    api = run.api[big] / run.api_raw
    lines += [
        "",
        "## Export, dashboard, import, API",
        "",
        "| figure | measured | baseline | ratio | target |",
        "|---|---:|---:|---:|---|",
        f"| CSV export of all service records ({e['rows']:,} rows"
        f"{f' sent when cut off after {EXPORT_LIMIT:.0f} s' if e['cut'] else ''}) | "
        f"{e['rows_per_s']:,.0f} rows/s ({ms(e['s'])}) | {client}: {c['rows_per_s']:,.0f} rows/s ({ms(c['s'])}, {c['rows']:,} rows) | "
        f"{ratio:.2f} | ≥ {target} {verdict(ratio >= target)} |",
        f"| export: SQL statements for its first {run.inproc['export']['rows']:,} rows | "
        f"{run.inproc['export']['queries']:,} | | | constant in the rows |",
        f"| export peak RSS of the serving worker | {e['peak_mb']:.0f} MB | idle {e['idle_mb']:.0f} MB | "
        f"| < {TARGETS['export_mb']} MB {verdict(e['peak_mb'] < TARGETS['export_mb'])} |",
        f"| dashboard /dashboard/ ({q['dashboard']['queries']} queries) | {ms(run.dashboard[big])} | "
        f"its {d['selects']} SELECTs raw: {ms(d['raw_s'])} | {dash:.2f} | ≤ {TARGETS['dashboard']} "
        f"and ≤ {ms(TARGETS['dashboard_s'])} "
        f"{verdict(dash <= TARGETS['dashboard'] and run.dashboard[big] <= TARGETS['dashboard_s'])} |",
        f"| import of {imp['rows']:,} .xlsx rows (dry-run, as danwei01) | {ms(imp['import_s'])} | "
        f"pandas.read_excel ({imp['reader']}, the import's reader): {ms(imp['read_excel_s'])} | "
        f"{imp_ratio:.2f} | ≤ {TARGETS['import']} {verdict(imp_ratio <= TARGETS['import'])} |",
        f"| the same import | {ms(imp['import_s'])} | pandas.read_excel (openpyxl): "
        f"{ms(imp['read_excel_openpyxl_s'])} | {imp['import_s'] / imp['read_excel_openpyxl_s']:.2f} | |",
        f"| API GET /api/v1/need/ ({run.inproc['api']['need']['queries']} queries) | {ms(run.api[big])} | "
        f"raw SQL (page + count): {ms(run.api_raw)} | {api:.1f} | ≤ {TARGETS['api']} {verdict(api <= TARGETS['api'])} |",
    ]
    a = run.inproc.get("assessment")
    if a:
        ratio = a["s"] / a["raw_s"]
        lines.append(
            f"| 年度考核 of all communities and units ({a['queries']} queries) | {ms(a['s'])} | "
            f"its {a['selects']} SELECTs raw: {ms(a['raw_s'])} | {ratio:.2f} | ≤ {TARGETS['assessment']} "
            f"and < {TARGETS['assessment_s']} s {verdict(ratio <= TARGETS['assessment'] and a['s'] < TARGETS['assessment_s'])} |")
    if demo:
        lines += ["", f"Demo scale for comparison: dashboard {ms(run.dashboard[demo])}, "
                  f"API {ms(run.api[demo])}."]
    return "\n".join(lines) + "\n"


def assessment_only(engine: str, scale: str, repeat: int, echo=print) -> str:
    """年度考核 of every community and unit against its SELECTs raw, alone (the whole run
    takes a quarter of an hour a database at the city scale)."""
    db = cache.ensure(engine, scale, echo)
    load = [os.getloadavg()]
    echo(f"[{engine}/{scale}] in process: 年度考核 of all communities and units")
    child = subprocess.run([sys.executable, "-m", "bench.inproc", "assessment", db.url,
                            str(repeat), db.password], cwd=cache.ROOT, env=db.env(), check=True,
                           stdout=subprocess.PIPE, text=True)
    a = json.loads(child.stdout.strip().splitlines()[-1])
    load.append(os.getloadavg())
    ratio = a["s"] / a["raw_s"]
    ok = ratio <= TARGETS["assessment"] and a["s"] < TARGETS["assessment_s"]
    samples = ", ".join(ms(x) for x in a["samples"])
    raw_samples = ", ".join(ms(x) for x in a["raw_samples"])
    return "\n".join([
        f"# Benchmark: {engine}, {scale} scale, 年度考核 only — {datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"- Machine: {machine()}",
        f"- Commit: {commit()}; in process (`bench.inproc assessment`), median of up to {repeat} "
        "compositions (fewer when one takes > 5 s)",
        f"- Load average (1/5/15 min) at the start → the end: {load_text(load)}",
        "",
        "| figure | measured | baseline | ratio | target |",
        "|---|---:|---:|---:|---|",
        f"| 年度考核 of all communities and units ({a['queries']} queries) | {ms(a['s'])} | "
        f"its {a['selects']} SELECTs raw: {ms(a['raw_s'])} | {ratio:.2f} | ≤ {TARGETS['assessment']} "
        f"and < {TARGETS['assessment_s']} s {verdict(ok)} |",
        "",
        f"Samples: composed {samples}; raw {raw_samples}.",
    ]) + "\n"


def export_only(db: cache.Database, repeat: int, workers: int, echo=print) -> str:
    """The CSV export of all service records against the database's client, alone (issue 30):
    a server of its own, so the workers' peak RSS is the export's, not what earlier pages left."""
    load = [os.getloadavg()]
    echo(f"[{db.engine}/{db.scale}] CSV export of all service records")
    server = Server("run:app", {**db.env(), **EXPORT_ENV}, workers,
                    RESULTS / f"{db.engine}-export-gunicorn.log")
    try:
        e = export_csv(server, db.password, repeat)
    finally:
        server.stop()
    echo(f"[{db.engine}/{db.scale}] the database's client")
    c = export_cli(db.url, repeat)
    load.append(os.getloadavg())
    ratio, target = e["rows_per_s"] / c["rows_per_s"], TARGETS["export"][db.engine]
    client = "sqlite3 -csv" if db.engine == "sqlite" else "psql \\copy"
    return "\n".join([
        f"# Benchmark: {db.engine}, {db.scale} scale, export only — {datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"- Machine: {machine()}",
        f"- Commit: {commit()}; gunicorn, {workers} workers; median of up to {repeat} runs "
        "(fewer when one takes > 20 s)",
        f"- Load average (1/5/15 min) at the start → the end: {load_text(load)}",
        "",
        "| figure | measured | baseline | ratio | target |",
        "|---|---:|---:|---:|---|",
        f"| CSV export of all service records ({e['rows']:,} rows"
        f"{f' sent when cut off after {EXPORT_LIMIT:.0f} s' if e['cut'] else ''}) | "
        f"{e['rows_per_s']:,.0f} rows/s ({ms(e['s'])}) | {client}: {c['rows_per_s']:,.0f} rows/s "
        f"({ms(c['s'])}, {c['rows']:,} rows) | {ratio:.2f} | ≥ {target} {verdict(ratio >= target)} |",
        f"| export peak RSS of the workers | {e['peak_mb']:.0f} MB | idle {e['idle_mb']:.0f} MB | "
        f"| < {TARGETS['export_mb']} MB {verdict(e['peak_mb'] < TARGETS['export_mb'])} |",
    ]) + "\n"


def import_only(engine: str, scale: str, repeat: int, echo=print) -> str:
    """The import of 10,000 .xlsx rows against pandas.read_excel of the same file, alone
    (issue 30): wall and CPU seconds, the ratios of one run."""
    db = cache.ensure(engine, scale, echo)
    load = [os.getloadavg()]
    echo(f"[{engine}/{scale}] in process: import of 10,000 rows")
    child = subprocess.run([sys.executable, "-m", "bench.inproc", "import", db.url, str(repeat),
                            db.password], cwd=cache.ROOT, env=db.env(), check=True,
                           stdout=subprocess.PIPE, text=True)
    return import_table(engine, scale, repeat, json.loads(child.stdout.strip().splitlines()[-1]),
                        load + [os.getloadavg()])


def import_table(engine: str, scale: str, repeat: int, imp: dict, load: list) -> str:
    wall, cpu = imp["import_s"] / imp["read_excel_s"], imp["import_cpu_s"] / imp["read_excel_cpu_s"]
    return "\n".join([
        f"# Benchmark: {engine}, {scale} scale, import only — {datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"- Machine: {machine()}",
        f"- Commit: {commit()}; in process (`bench.inproc import`), median of up to {repeat} runs",
        f"- Load average (1/5/15 min) at the start → the end: {load_text(load)}",
        "",
        "| figure | measured | baseline | ratio | target |",
        "|---|---:|---:|---:|---|",
        f"| import of {imp['rows']:,} .xlsx rows (dry-run, as danwei01), wall | {ms(imp['import_s'])} | "
        f"pandas.read_excel ({imp['reader']}, the import's reader): {ms(imp['read_excel_s'])} | "
        f"{wall:.2f} | ≤ {TARGETS['import']} {verdict(wall <= TARGETS['import'])} |",
        f"| the same, CPU of the process | {ms(imp['import_cpu_s'])} | "
        f"pandas.read_excel ({imp['reader']}): {ms(imp['read_excel_cpu_s'])} | {cpu:.2f} | |",
        f"| the same import, wall | {ms(imp['import_s'])} | pandas.read_excel (openpyxl): "
        f"{ms(imp['read_excel_openpyxl_s'])} | {imp['import_s'] / imp['read_excel_openpyxl_s']:.2f} | |",
        "",
        f"Samples (wall): import {', '.join(ms(x) for x in imp['import_samples'])}; "
        f"read_excel {', '.join(ms(x) for x in imp['read_samples'])}.",
    ]) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="共驻共建管理平台 benchmark (issue #9)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "all"], default="sqlite",
                        help="all: SQLite, then PostgreSQL when reachable")
    parser.add_argument("--scale-only", choices=["demo", "city"],
                        default=os.environ.get("BENCH_SCALE_ONLY") or None,
                        help="measure one scale only (development: demo)")
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "5")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")))
    parser.add_argument("--assessment-only", action="store_true",
                        help="only 年度考核's figure (issue 26), on the largest scale")
    parser.add_argument("--dashboard-only", action="store_true",
                        help="only 数据看板 under load (issue 29): one user cold, ten at once, "
                             "need lists meanwhile, on the largest scale (bench/dashboard_load.py)")
    parser.add_argument("--lists-only", action="store_true",
                        help="only the list pages by the server's own time, throughput and 30 "
                             "users (issue 30), on the largest scale (bench/list_load.py)")
    parser.add_argument("--import-only", action="store_true",
                        help="only the import of 10,000 .xlsx rows (issue 30), on the largest scale")
    parser.add_argument("--export-only", action="store_true",
                        help="only the CSV export of all service records (issue 30), on the largest scale")
    args = parser.parse_args(argv)
    if args.scale_only:
        scales = [args.scale_only]
    elif find_spec("seed.city"):
        scales = ["demo", "city"]
    else:
        print("seed.demo has no city scale yet: measuring the demo scale only")
        scales = ["demo"]
    engines = ["sqlite", "postgresql"] if args.db == "all" else [args.db]
    RESULTS.mkdir(exist_ok=True)
    cache.BENCH_DATA.mkdir(parents=True, exist_ok=True)
    for engine in engines:
        if engine == "postgresql" and not cache.postgres_reachable():
            print(f"PostgreSQL not reachable at {cache.POSTGRES}: skipped")
            continue
        if args.assessment_only:
            table, name = assessment_only(engine, scales[-1], args.repeat), "assessment-"
        elif args.dashboard_only:
            from bench import dashboard_load

            db = cache.ensure(engine, scales[-1])
            table = dashboard_load.report(db, dashboard_load.measure(db, args.workers,
                                                                     args.repeat))
            name = "dashboard-"
        elif args.lists_only:
            from bench import list_load

            db = cache.ensure(engine, scales[-1])
            table = list_load.report(db, list_load.measure(db, args.workers, args.repeat))
            name = "lists-"
        elif args.import_only:
            table, name = import_only(engine, scales[-1], args.repeat), "import-"
        elif args.export_only:
            table = export_only(cache.ensure(engine, scales[-1]), args.repeat, args.workers)
            name = "export-"
        else:
            table, name = report(measure(engine, scales, args.repeat, args.workers)), ""
        path = RESULTS / f"{engine}-{scales[-1]}-{name}{datetime.now():%Y-%m-%d-%H%M}.md"
        path.write_text(table, encoding="utf-8")
        print("\n" + table + f"\n(written to {path.relative_to(cache.ROOT)})\n", flush=True)


if __name__ == "__main__":
    main()
