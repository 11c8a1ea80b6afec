"""Measurements made inside the application's process (`python -m bench.inproc URL REPEAT`),
one child process per database; prints one JSON object on its last line.

- the dashboard's own SQL: the statements `GET /dashboard/` runs, captured once with a cursor
  hook, then replayed raw on a DBAPI connection (the baseline: the sum of its queries);
- the queries per page of each list, API and dashboard page (what makes a slow page slow);
- the annual assessment (年度考核) of every community and unit, composed as 组织部's preview,
  against its SELECTs replayed raw;
- the import of 10,000 rows of .xlsx (资源清单, as danwei01 for its own unit) through the
  import page's own code path (`Importer.run`, dry-run: every row validated and flushed in
  savepoints, then rolled back, so the cached database stays as built) against
  ``pandas.read_excel`` of the same file with the same reader.
"""
from __future__ import annotations

import io
import json
import statistics
import sys
import time
from contextlib import contextmanager

from sqlalchemy import event, text

IMPORT_ROWS = 10_000


def timed(function, repeat: int) -> tuple[float, list[float]]:
    """Median seconds of `repeat` calls (fewer when one call is slow: the figure of a
    10-second page needs no five samples)."""
    samples = []
    for i in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
        if samples[-1] > 20 or (i >= 2 and samples[-1] > 5):
            break
    return statistics.median(samples), samples


@contextmanager
def captured(engine):
    """Every statement the block sends to the database, with its parameters."""
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters, executemany))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def login(app, username: str, password: str):
    client = app.test_client()
    response = client.post("/login/", data={"username": username, "password": password})
    if response.status_code != 302:
        raise SystemExit(f"{username} could not log in to the in-process app")
    return client


def replay(engine, statements) -> None:
    """The captured SELECTs, raw: DBAPI cursor, fetch everything, no ORM, no rendering."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters, executemany in statements:
            if executemany:
                cursor.executemany(statement, parameters)
            else:
                cursor.execute(statement, parameters)
            if cursor.description:
                cursor.fetchall()
        cursor.close()
        raw.rollback()
    finally:
        raw.close()


def _selects(statements):
    return [s for s in statements if s[0].lstrip().upper().startswith(("SELECT", "WITH"))]


def dashboard(app, client, engine, repeat: int) -> dict:
    with captured(engine) as statements:
        response = client.get("/dashboard/")
    assert response.status_code == 200, response.status_code
    selects = _selects(statements)
    median, samples = timed(lambda: replay(engine, selects), repeat)
    return {"queries": len(statements), "selects": len(selects), "raw_s": median,
            "raw_samples": samples}


def assessment(app, password: str, engine, repeat: int) -> dict:
    """年度考核 of the whole data set, both levels (every community, every unit): the preview
    request as 组织部 makes it (the composition the computing job runs, without the writes),
    against its SELECTs replayed raw (the sum of its aggregate queries)."""
    from app import clock

    token = app.test_client().post("/api/v1/security/login", json={
        "username": "zuzhibu", "password": password, "provider": "db"}).json["access_token"]
    client, headers = app.test_client(), {"Authorization": f"Bearer {token}"}

    def compose():
        for level in ("community", "unit"):
            response = client.post("/api/v1/assessment/preview", headers=headers,
                                   json={"year": clock.today().year, "level": level})
            assert response.status_code == 200, response.get_data(as_text=True)[:500]

    with captured(engine) as statements:
        compose()
    selects = _selects(statements)
    median, samples = timed(compose, repeat)
    raw, raw_samples = timed(lambda: replay(engine, selects), repeat)
    return {"queries": len(statements), "selects": len(selects), "s": median, "samples": samples,
            "raw_s": raw, "raw_samples": raw_samples}


def query_counts(client, engine, urls: dict, headers=None) -> dict:
    counts = {}
    for name, url in urls.items():
        with captured(engine) as statements:
            response = client.get(url, headers=headers or {})
        counts[name] = {"status": response.status_code, "queries": len(statements)}
    return counts


def export_queries(client, engine, rows: int = 1000) -> dict:
    """Statements the CSV export of service records sends for its first `rows` rows (a
    streamed export should send a few per chunk, not some per row)."""
    lines = 0
    with captured(engine) as statements:
        response = client.get("/service_record/export/csv", buffered=False)
        for chunk in response.response:
            lines += (chunk if isinstance(chunk, bytes) else chunk.encode()).count(b"\n")
            if lines > rows:
                break
        response.close()
    return {"rows": min(lines - 1, rows), "queries": len(statements)}


def xlsx_file(app, engine) -> bytes:
    """10,000 valid 资源清单 rows of danwei01's unit, headed as the import template is."""
    from openpyxl import Workbook

    with engine.connect() as conn:
        unit = conn.execute(text("SELECT u.name FROM unit u JOIN ab_user a ON a.unit_id = u.id "
                                 "WHERE a.username = 'danwei01'")).scalar_one()
        category = conn.execute(text("SELECT label FROM dictionary WHERE kind = 'resource_category' "
                                     "AND active ORDER BY id")).scalars().first()
    book = Workbook(write_only=True)
    sheet = book.create_sheet("导入模板")
    sheet.append(["提供单位", "年度", "资源类别", "资源名称", "资源内容", "数量", "单位", "可用开始日期",
                  "可用结束日期", "联系人", "联系电话"])
    for n in range(IMPORT_ROWS):
        sheet.append([unit, "2026", category, f"共享资源{n + 1:05d}", f"第{n + 1}项可共享资源，周末开放",
                      str(1 + n % 50), "项", "2026-01-01", "2026-12-31", "张联络", f"1390000{n % 10000:04d}"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def importing(app, password: str, engine, repeat: int) -> dict:
    """The import against ``pandas.read_excel`` with the reader the import read this file with
    (python-calamine, app/office_files.py; openpyxl for a file calamine is not trusted with),
    and against read_excel with openpyxl beside it (the baseline of the runs before issue 30)."""
    import pandas as pd

    from app.office_files import xlsx_reader

    data = xlsx_file(app, engine)
    reader = xlsx_reader(data)
    client = login(app, "danwei01", password)

    def dry_run(retry=True):
        response = client.post("/resource/import/", data={
            "file": (io.BytesIO(data), "resources.xlsx"), "dry_run": "1"},
            content_type="multipart/form-data")
        page = response.get_data(as_text=True)
        if response.status_code == 503 and retry:  # the database dropped the connection
            return dry_run(retry=False)
        if response.status_code != 200 or f"将新增 {IMPORT_ROWS} 条" not in page:
            raise SystemExit("the bench import was not accepted: " + page[:2000])

    def read(engine_name=reader):
        return lambda: pd.read_excel(io.BytesIO(data), engine=engine_name)

    imported, imported_samples = timed(dry_run, max(1, min(repeat, 3)))
    read_s, read_samples = timed(read(), repeat)
    openpyxl_s, _ = timed(read("openpyxl"), max(1, min(repeat, 3)))
    # The process's CPU seconds too: on a busy machine the wall clock also counts the waits.
    import_cpu, _ = timed_cpu(dry_run, max(1, min(repeat, 3)))
    read_cpu, _ = timed_cpu(read(), repeat)
    return {"rows": IMPORT_ROWS, "bytes": len(data), "reader": reader, "import_s": imported,
            "import_samples": imported_samples, "read_excel_s": read_s,
            "read_samples": read_samples, "read_excel_openpyxl_s": openpyxl_s,
            "import_cpu_s": import_cpu, "read_excel_cpu_s": read_cpu}


def timed_cpu(function, repeat: int) -> tuple[float, list[float]]:
    """Median CPU seconds (this process's) of `repeat` calls."""
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        function()
        samples.append(time.process_time() - started)
    return statistics.median(samples), samples


def import_alone(url: str, repeat: int, password: str) -> dict:
    from app import create_app, tune_collector
    from app.extensions import db

    app = create_app("development", SQLALCHEMY_DATABASE_URI=url, WTF_CSRF_ENABLED=False,
                     RATELIMIT_ENABLED=False)
    tune_collector()
    with app.app_context():
        engine = db.engine
    return importing(app, password, engine, repeat)


def main(url: str, repeat: int, password: str, pages: dict) -> dict:
    from app import create_app, tune_collector
    from app.extensions import db

    app = create_app("development", SQLALCHEMY_DATABASE_URI=url, WTF_CSRF_ENABLED=False,
                     RATELIMIT_ENABLED=False, DASHBOARD_CACHE_SECONDS=0)
    tune_collector()  # as the server runs (run.py)
    with app.app_context():
        engine = db.engine
    client = login(app, "zuzhibu", password)
    result = {"dashboard": dashboard(app, client, engine, repeat)}
    result["pages"] = query_counts(client, engine, pages)
    result["export"] = export_queries(client, engine)
    token = app.test_client().post("/api/v1/security/login", json={
        "username": "zuzhibu", "password": password, "provider": "db"}).json["access_token"]
    result["api"] = query_counts(app.test_client(), engine, {"need": "/api/v1/need/"},
                                 {"Authorization": f"Bearer {token}"})
    result["import"] = importing(app, password, engine, repeat)
    result["assessment"] = assessment(app, password, engine, repeat)
    return result


def assessment_alone(url: str, repeat: int, password: str) -> dict:
    from app import create_app, tune_collector
    from app.extensions import db

    app = create_app("development", SQLALCHEMY_DATABASE_URI=url, WTF_CSRF_ENABLED=False,
                     RATELIMIT_ENABLED=False, DASHBOARD_CACHE_SECONDS=0)
    tune_collector()
    with app.app_context():
        engine = db.engine
    return assessment(app, password, engine, repeat)


def by_package(stats, requests: int) -> dict[str, float]:
    """A profile's own time (tottime) per request, by where the code lives: the application,
    each library under site-packages, the database driver's C calls, the rest."""
    totals: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        if "site-packages/" in filename:
            where = filename.split("site-packages/")[1].split("/")[0].removesuffix(".py")
        elif "/app/" in filename:
            where = "app"
        elif filename == "~" and ("sqlite3" in name or "psycopg2" in name):
            where = "database (driver calls)"
        else:
            where = "python (stdlib, builtins)"
        totals[where] = totals.get(where, 0.0) + tottime / requests
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def lists_alone(url: str, repeat: int, password: str, pages: dict, profile: str = "") -> dict:
    """Each list page's time in the application's process (the test client: the server's work
    without the network), its queries, and the CPU time of `repeat` requests; with `profile`
    (a page's name), that page's cProfile by function, cumulative, its top entries."""
    import cProfile
    import pstats

    from app import create_app, tune_collector
    from app.extensions import db

    app = create_app("development", SQLALCHEMY_DATABASE_URI=url, WTF_CSRF_ENABLED=False,
                     RATELIMIT_ENABLED=False)
    tune_collector()
    with app.app_context():
        engine = db.engine
    client = login(app, "zuzhibu", password)
    result = {}
    for name, page in pages.items():
        with captured(engine) as statements:
            response = client.get(page)  # warm-up
        assert response.status_code == 200, (page, response.status_code)
        cpu = time.process_time()
        median, samples = timed(lambda page=page: client.get(page), repeat)
        result[name] = {"s": median, "samples": samples, "queries": len(statements),
                        "cpu_s": (time.process_time() - cpu) / len(samples)}
    if profile:
        profiler = cProfile.Profile(time.process_time)  # CPU: a loaded machine inflates wall time
        profiler.enable()
        for _ in range(repeat):
            client.get(pages[profile])
        profiler.disable()
        stats = pstats.Stats(profiler)
        result["by_package"] = by_package(stats, repeat)
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats("cumulative").print_stats(40)
        result["profile"] = out.getvalue()
    return result


if __name__ == "__main__":
    if sys.argv[1] == "assessment":  # assessment URL REPEAT PASSWORD: that figure alone
        result = assessment_alone(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "import":  # import URL REPEAT PASSWORD: the import's figure alone
        result = import_alone(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "lists":  # lists URL REPEAT PASSWORD PAGES [PROFILE]: list pages alone
        result = lists_alone(sys.argv[2], int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5]),
                             sys.argv[6] if len(sys.argv) > 6 else "")
    else:
        url, repeat, password, pages = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
        result = main(url, repeat, password, pages)
    print(json.dumps(result, ensure_ascii=False))
