"""What an operator relies on (issue 21): health and readiness without login, protected
Prometheus metrics, request ids in headers and log lines, static files cached by content, the
statement timeout, the trusted proxy hops."""
import json
import logging
import re
import time

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from app import ops
from config import engine_options
from tests.security.served import Served, redis_url

CLOSED_PORT_DB = "postgresql+psycopg2://postgres@127.0.0.1:1/nothing"


def metric(body: str, name: str, **labels) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in body.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_health_and_readiness_answer_without_login(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"]["database"] == "ok"
    assert ready.json["checks"]["broker"] == "not configured"


def test_readiness_fails_without_the_database_and_tells_the_broker_without_failing():
    """A database that does not answer: 503. A broker that does not answer is reported down,
    and one that answers up, without either failing the check."""
    with Served(CLOSED_PORT_DB, CELERY_BROKER_URL="redis://127.0.0.1:1/0") as host:
        assert requests.get(f"{host.url}/healthz", timeout=30).status_code == 200
        ready = requests.get(f"{host.url}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "down", "broker": "down",
                                          "cache": "not configured"}


def test_readiness_reports_redis_down_and_up_without_failing(app, database_url):
    redis = redis_url()
    if redis is None:
        pytest.skip("no Redis on this machine")
    with Served(database_url, CELERY_BROKER_URL=redis, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
                RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 1}) as host:
        ready = requests.get(f"{host.url}/readyz", timeout=30)
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "cache": "down"}


def test_metrics_are_given_to_the_token_or_the_allowed_addresses_only(app, client):
    outside = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/metrics", environ_base=outside).status_code == 403
    app.config["METRICS_TOKEN"] = "s3cret-token"
    try:
        assert client.get("/metrics", environ_base=outside,
                          headers={"Authorization": "Bearer wrong"}).status_code == 403
        given = client.get("/metrics", environ_base=outside,
                           headers={"Authorization": "Bearer s3cret-token"})
        assert given.status_code == 200 and given.mimetype == "text/plain"
    finally:
        app.config["METRICS_TOKEN"] = None
    assert client.get("/metrics").status_code == 200  # loopback: the default allow-list


def test_metrics_count_requests_per_endpoint_and_failed_logins(client):
    before = client.get("/metrics").get_data(as_text=True)
    for _ in range(3):
        client.get("/healthz")
    client.post("/api/v1/security/login", json={"username": "shequ01", "password": "wrong-one",
                                                "provider": "db"})
    after = client.get("/metrics").get_data(as_text=True)
    key = {"endpoint": "ops.healthz", "method": "GET", "status": "200"}
    assert metric(after, "gongjian_http_requests_total", **key) == \
        metric(before, "gongjian_http_requests_total", **key) + 3
    assert metric(after, "gongjian_login_failures_total", reason="password") == \
        metric(before, "gongjian_login_failures_total", reason="password") + 1
    assert metric(after, "gongjian_http_request_duration_seconds_count",
                  endpoint="ops.healthz", method="GET") >= 3


def test_a_request_id_is_kept_or_made_and_in_every_log_line(app, client):
    assert client.get("/healthz", headers={"X-Request-ID": "req-42.a"}).headers["X-Request-ID"] \
        == "req-42.a"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id; <x>"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)

    record = logging.makeLogRecord({"name": "gongjian.test", "levelno": logging.WARNING,
                                    "levelname": "WARNING", "msg": "写出 %s 行", "args": (3,)})
    with app.test_request_context("/need/list/", headers={"X-Request-ID": "req-43"}):
        app.preprocess_request()  # the before-request hooks, as for a served request
        written = ops.JsonFormatter().format(record)
        app.do_teardown_request()
    line = json.loads(written)
    assert line["request_id"] == "req-43" and line["message"] == "写出 3 行"
    assert line["level"] == "warning" and line["time"].endswith("Z")
    with ops.carrying("req-44"):  # a job carries its request's id
        assert json.loads(ops.JsonFormatter().format(logging.makeLogRecord({"msg": "x"})))[
            "request_id"] == "req-44"
    assert ops.request_id() is None


def test_the_access_line_names_the_user_without_asking_the_database_again(app, as_user,
                                                                          monkeypatch):
    """The access line is written after every answer, the database-error page's too: reading its
    user must not query again (a PostgreSQL restart turned the Chinese 503 into a 500)."""
    client = as_user("shequ01")
    assert client.get("/need/list/").status_code == 200

    def database_gone(user_id):
        raise OperationalError("SELECT ab_user", {}, Exception("the database system is shutting down"))

    monkeypatch.setattr(app.login_manager, "_user_callback", database_gone)
    answer = client.get("/need/list/")
    assert answer.status_code == 503 and "数据库" in answer.get_data(as_text=True)


def test_static_files_carry_their_content_hash_and_are_cached_long(as_user):
    page = as_user("shequ01").get("/need/list/").get_data(as_text=True)
    url = re.search(r'src="(/static/js/gongjian\.js\?v=[0-9a-f]{12})"', page).group(1)
    response = as_user("shequ01").get(url)
    assert response.status_code == 200
    assert response.cache_control.max_age == 365 * 24 * 3600 and response.cache_control.public
    fab = re.search(r'href="(/static/appbuilder/[^"]+\?v=[0-9a-f]{12})"', page)
    assert fab, "FAB's own static files carry the hash too"
    plain = as_user("shequ01").get("/static/js/gongjian.js")
    assert plain.cache_control.max_age != 365 * 24 * 3600  # unversioned: revalidated


def test_trusted_proxy_hops_come_from_the_environment(database_url):
    """Two proxies in front (GONGJIAN_PROXY_FIX=2): the client is the address the outer proxy
    saw; with one trusted hop, the inner proxy's view is taken."""
    forwarded = {"X-Forwarded-For": "203.0.113.7, 10.9.8.7"}
    for hops, allowed in ((2, True), (1, False)):
        with Served(database_url, PROXY_FIX_HOPS=hops,
                    METRICS_ALLOW_FROM="203.0.113.7/32") as host:
            answer = requests.get(f"{host.url}/metrics", headers=forwarded, timeout=30)
            assert (answer.status_code == 200) is allowed, (hops, answer.status_code)


@pytest.mark.db
def test_the_statement_timeout_cuts_a_long_statement(database_url, monkeypatch):
    kind = database_url.split(":", 1)[0]
    if kind.startswith("sqlite"):
        pytest.skip("SQLite has no statement timeout")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "300")
    engine = create_engine(database_url, **engine_options(database_url))
    started = time.monotonic()
    try:
        sleep = "SELECT pg_sleep(3)" if kind.startswith("postgresql") else "SELECT SLEEP(3)"
        with engine.connect() as connection, pytest.raises(OperationalError):
            connection.execute(text(sleep))  # MariaDB: 1969, max_statement_time exceeded
    finally:
        engine.dispose()
    assert time.monotonic() - started < 2.5
    assert engine_options(database_url)["pool_recycle"] == 1800


_RUN = """
import gc, json
import run  # the module gunicorn's master loads (preload_app) before forking its workers
env = run.app.jinja_env
dashboard = env.get_template("dashboards/index.html")  # from the cache: compiled already
tracked = {id(o) for o in gc.get_objects()}  # the collector's generations, the frozen not in
print(json.dumps({"compiled": sorted(key[1] for key in env.cache.keys()),
                  "frozen": id(dashboard) not in tracked}))
"""


def test_the_served_app_has_its_templates_compiled_and_frozen_before_the_workers_fork(
        database_url, tmp_path):
    """run.py, as gunicorn's master loads it: every template compiled, and with the rest of
    what start-up made out of the collector's sight (tune_collector) — a worker compiles no
    template on its first page, nor walks them in a full collection."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": database_url, "GONGJIAN_CONFIG": "testing",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    done = subprocess.run([sys.executable, "-c", _RUN], cwd=ops.__file__.rsplit("/app/", 1)[0],
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"dashboards/index.html", "dashboards/board.html", "appbuilder/baselayout.html",
            "gongjian/list.html"} <= set(found["compiled"])
    assert found["frozen"]


def test_the_access_line_says_the_query_the_worker_and_the_cpu_time():
    """A slow page is found again by its query (the dashboard's node and period) and its worker,
    and its CPU seconds tell its own work from the wait for a core."""
    import os
    from datetime import timedelta
    from types import SimpleNamespace

    lines = []
    handler = logging.Handler()
    handler.emit = lines.append
    access = logging.getLogger("test.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    logger = SimpleNamespace(access_log_enabled=True, access_log=access)
    req = SimpleNamespace(cpu_started=time.process_time() - 0.25)  # 250 ms of CPU before
    environ = {"PATH_INFO": "/dashboard/", "QUERY_STRING": "period=2026Q3&org=5",
               "REQUEST_METHOD": "GET"}
    try:
        ops.GunicornLogger.access(logger, SimpleNamespace(status="200 OK", sent=10), req,
                                  environ, timedelta(seconds=0.4))
    finally:
        access.removeHandler(handler)
    line = json.loads(ops.JsonFormatter().format(lines[0]))
    assert line["query"] == "period=2026Q3&org=5" and line["worker"] == os.getpid()
    assert line["duration_ms"] == 400.0 and 250 <= line["cpu_ms"] < 400
