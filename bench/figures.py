"""Each dashboard figure's time, in process, as 组织部 (all data) sees it: which figures the
page's time goes to (`python -m bench.figures sqlite|postgresql [SCALE] [PERIOD] [ORG_ID]`).

The cached database is opened read-only (SQLite `mode=ro`; PostgreSQL
`default_transaction_read_only`): it is shared and must stay as built — a figure whose rollup is
behind its marks would apply them first (app/rollups.py), which fails here and is logged; the
figure then reads the raw rows, as a page without a job queue would. Each figure runs in its
own transaction (a page's first reader applies pending marks once: here nothing), then the
whole board (`Board`: every figure and the page's sections, without the template) once.
Last, the page itself (`/dashboard/`, template and frame included) once as the user, its board
cache cold: what the browser waits for, but
the login and the network. Prints a Markdown table; times are wall seconds of one call, with the process's CPU seconds
beside them (the database's work on SQLite is the process's; on PostgreSQL it is the server's).
The first argument may be a database URL instead (a copy of a cached database, migrated).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import quote

from bench import cache


def read_only(url: str) -> str:
    if url.startswith("sqlite:///"):
        return f"sqlite:///file:{url[len('sqlite:///'):]}?mode=ro&uri=true"
    return url + "?options=" + quote("-c default_transaction_read_only=on")


def profile(url: str, period_code: str, org_id: int | None, username: str = "zuzhibu") -> str:
    from sqlalchemy import text

    from app import create_app
    from app.dashboards import figures as F
    from app.dashboards.views import Board
    from app.extensions import db
    from app.security.principal import acting_as, principal_for

    app = create_app("development", SQLALCHEMY_DATABASE_URI=read_only(url),
                     WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False)
    lines = [f"| figure ({username}, {period_code or 'this year'}, "
             f"{'all data' if org_id is None else f'node {org_id}'}) | wall s | CPU s | rows |",
             "|---|---:|---:|---:|"]
    with app.test_request_context("/dashboard/"):
        user_id = db.session.execute(text("SELECT id FROM ab_user WHERE username = :u"),
                                     {"u": username}).scalar_one()
        principal = principal_for(db.session.get(app.appbuilder.sm.user_model, user_id))
        db.session.rollback()
        period = F.parse_period(period_code)
        total_wall = total_cpu = 0.0
        with acting_as(principal):
            for name, figure in F.FIGURES.items():
                wall, cpu = time.perf_counter(), time.process_time()
                rows = figure.function(db.session, period, org_id)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                db.session.rollback()
                total_wall, total_cpu = total_wall + wall, total_cpu + cpu
                lines.append(f"| {name} | {wall:.3f} | {cpu:.3f} | {len(rows)} |")
            lines.append(f"| **sum of figures** | **{total_wall:.3f}** | **{total_cpu:.3f}** | |")
            wall, cpu = time.perf_counter(), time.process_time()
            Board(db.session, period, org_id)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            db.session.rollback()
            lines.append(f"| **whole board (figures + sections)** | **{wall:.3f}** | **{cpu:.3f}** | |")
    lines.append(page(app, user_id, period_code, org_id))
    return "\n".join(lines)


def page(app, user_id: int, period_code: str, org_id: int | None) -> str:
    """`/dashboard/` rendered as the user in a fresh request (its board cache cold: the
    board's cache key differs from nothing kept yet), by the view function itself: a login
    would write to the read-only database."""
    from flask import g

    from app.extensions import db

    query = "&".join(f"{k}={v}" for k, v in (("period", period_code), ("org", org_id)) if v)
    app.extensions.pop("gongjian_board_cache", None)
    with app.test_request_context(f"/dashboard/?{query}"):
        # flask_login's and FAB's current user, without login_user's signal (it records a session).
        g._login_user = g.user = db.session.get(app.appbuilder.sm.user_model, user_id)
        wall, cpu = time.perf_counter(), time.process_time()
        html = app.view_functions["DashboardView.index"]()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        db.session.rollback()
    size = len(html if isinstance(html, str) else html.get_data())
    return f"| **the page /dashboard/ (template included, {size // 1024} KB)** | **{wall:.3f}** | **{cpu:.3f}** | |"


def main(argv: list[str]) -> None:
    engine = argv[0] if argv else "sqlite"
    scale = argv[1] if len(argv) > 1 else "city"
    # A copy of a cached database (a URL) is measured as the cache itself.
    url = engine if "://" in engine else cache.database_url(engine, scale)
    if os.environ.get("GONGJIAN_BENCH_CHILD"):
        period = argv[2] if len(argv) > 2 else ""
        org_id = int(argv[3]) if len(argv) > 3 and argv[3] else None
        print(profile(url, period, org_id))
        return
    marker = cache._built(url)
    if marker is None:
        raise SystemExit(f"{url}: not built (bench.cache builds it)")
    env = cache.Database(url, scale, marker["password"], marker["data_key"]).env()
    env["GONGJIAN_BENCH_CHILD"] = "1"
    subprocess.run([sys.executable, __file__, *argv], cwd=cache.ROOT, env=env,
                   check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
