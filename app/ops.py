"""What an operator reads: request ids, JSON log lines, health checks and Prometheus metrics.

- A request id comes from the `X-Request-ID` header (the proxy's) or is made here; it is in
  every log line written during the request, in the response's header and in the access log,
  and a job carries it on (`request_id()` when starting one, `carrying(request_id)` around its
  run) so that a job's lines join the request that started it.
- `/healthz` answers 200 while the process serves; `/readyz` 200 when the database answers and
  503 when not — the broker's and the cache's state are in its body without failing it (logins
  work without Redis, exports below the job threshold without the broker).
- `/metrics` (Prometheus text) is given to a bearer token (`METRICS_TOKEN`) or to addresses in
  `METRICS_ALLOW_FROM` (default loopback only). Under gunicorn each worker writes its numbers
  into `PROMETHEUS_MULTIPROC_DIR` and a scrape of any worker sums them (prometheus_client's
  multi-process mode; gunicorn.conf.py clears the folder at start and marks dead workers).
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import re
import sys
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

import redis
from flask import Blueprint, Response, current_app, g, jsonify, request
from jinja2 import TemplateError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# An id from outside is taken only if it looks like one (it goes into logs and headers).
_GOOD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_request_id: ContextVar[str | None] = ContextVar("gongjian_request_id", default=None)
# Keys of the WSGI environ that gunicorn's access log reads (gunicorn.conf.py's logger).
ENVIRON_REQUEST_ID, ENVIRON_USER = "gongjian.request_id", "gongjian.user"

# --- metrics --------------------------------------------------------------------------------
# Endpoints, not paths, label the request metrics: ids in paths would make a series per row.
REQUESTS = Counter("gongjian_http_requests_total", "HTTP requests answered",
                   ["endpoint", "method", "status"])
LATENCY = Histogram("gongjian_http_request_duration_seconds", "Time to answer a request",
                    ["endpoint", "method"],
                    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
LOGIN_FAILURES = Counter("gongjian_login_failures_total",
                         "Login attempts refused or failed, by reason",
                         ["reason"])
JOBS = Counter("gongjian_jobs_total", "Jobs finished, by kind and outcome", ["kind", "outcome"])
JOB_DURATION = Histogram("gongjian_job_duration_seconds", "Time a job ran", ["kind"],
                         buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600))
JOB_QUEUE = Gauge("gongjian_job_queue_depth", "Jobs waiting in the broker's queue",
                  ["queue"], multiprocess_mode="livemax")


def login_failed(reason: str) -> None:
    """A login refused (locked, throttled, busy…) or failed on its password ("password")."""
    LOGIN_FAILURES.labels(reason=reason).inc()


def job_finished(kind: str, outcome: str, seconds: float) -> None:
    """For the job runner: a job of `kind` ended with `outcome` (done, failed, cancelled)."""
    JOBS.labels(kind=kind, outcome=outcome).inc()
    JOB_DURATION.labels(kind=kind).observe(seconds)


def queue_depth(queue: str, depth: int) -> None:
    """For whoever can see the broker's queue: how many jobs wait in it."""
    JOB_QUEUE.labels(queue=queue).set(depth)


# --- request ids ------------------------------------------------------------------------------

def request_id() -> str | None:
    """The id of the request (or job) being served, for log lines and for a job it starts."""
    return _request_id.get()


@contextmanager
def carrying(rid: str | None):
    """Run a job (or any work) under the id of the request that started it."""
    token = _request_id.set(rid or uuid.uuid4().hex)
    try:
        yield
    finally:
        _request_id.reset(token)


def _begin_request():
    given = request.headers.get(REQUEST_ID_HEADER, "")
    rid = given if _GOOD_ID.fullmatch(given) else uuid.uuid4().hex
    g._ops_token = _request_id.set(rid)
    g._ops_started = time.perf_counter()
    request.environ[ENVIRON_REQUEST_ID] = rid


def _end_request(response):
    rid = request_id()
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    user = _username()
    if user:
        request.environ[ENVIRON_USER] = user
    started = g.get("_ops_started")
    endpoint = request.endpoint or "unmatched"
    REQUESTS.labels(endpoint=endpoint, method=request.method, status=response.status_code).inc()
    if started is not None:
        LATENCY.labels(endpoint=endpoint, method=request.method).observe(
            time.perf_counter() - started)
    return response


def _forget_request(exc=None):
    token = g.pop("_ops_token", None)
    if token is not None:
        _request_id.reset(token)


def _username() -> str | None:
    """The user this request already loaded, read without a query: the access line is written
    after every answer, also the database-error page's, and asking the database again there
    turned a Chinese 503 into a 500 (Flask-Login loads the user lazily; an ORM row's expired
    attributes refresh themselves, which may fail too)."""
    user = g.get("_login_user")
    try:
        return getattr(user, "username", None)
    except SQLAlchemyError:  # its row expired by a commit, and the database gone meanwhile
        return None


# --- log lines ---------------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request id, and whatever
    the record carries in `extra` (gunicorn's access lines: method, path, status…)."""

    RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id()
        if rid:
            line["request_id"] = rid
        line.update({k: v for k, v in vars(record).items()
                     if k not in self.RESERVED and not k.startswith("_")})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def json_logs(level: int = logging.INFO) -> None:
    """Every logger's lines as JSON on stdout (the root's handler; gunicorn's logger and the
    Celery worker call it)."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)


try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # gunicorn is a deployment's, not every test's, dependency
    _GunicornLogger = object


class GunicornLogger(_GunicornLogger):
    """gunicorn's logs as JSON lines (gunicorn.conf.py's `logger_class`): its own, the app's,
    and one access line per request with its id and user (set in the environ by the app)."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers + self.access_log.handlers:
            handler.setFormatter(JsonFormatter())
        json_logs(self.loglevel)

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        cpu_started = getattr(req, "cpu_started", None)  # gunicorn.conf.py's pre_request
        self.access_log.info("request", extra={
            "request_id": environ.get(ENVIRON_REQUEST_ID),
            "user": environ.get(ENVIRON_USER),
            "remote": environ.get("REMOTE_ADDR"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            # Which page of a view (a dashboard's node and period) and which worker served it:
            # a slow request is found again by both.
            "query": environ.get("QUERY_STRING") or None,
            "worker": os.getpid(),
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "cpu_ms": None if cpu_started is None
            else round((time.process_time() - cpu_started) * 1000, 1),
        })


def compile_templates(app) -> int:
    """Compile every template the app can render (run.py, in gunicorn's master before it forks
    its workers); a template that does not compile is logged, not fatal — its
    page fails as it would have."""
    env, compiled = app.jinja_env, 0
    for name in env.list_templates(filter_func=lambda n: n.endswith(".html")):
        try:
            env.get_template(name)
            compiled += 1
        except TemplateError:
            log.exception("template %s does not compile", name)
    return compiled


# --- health and metrics routes -----------------------------------------------------------------

ops = Blueprint("ops", __name__)


@ops.route("/healthz")
def healthz():
    return jsonify(status="ok")


@ops.route("/readyz")
def readyz():
    from app.extensions import db

    checks = {}
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:  # any failure to answer is "not ready"
        log.warning("readiness: the database does not answer: %s", exc)
        checks["database"] = "down"
    checks["broker"] = _redis_state(current_app.config.get("CELERY_BROKER_URL"))
    cache = current_app.config.get("RATELIMIT_STORAGE_URI") or ""
    checks["cache"] = _redis_state(cache if cache.startswith(("redis", "rediss")) else None)
    ready = checks["database"] == "ok"
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503


def _redis_state(url: str | None) -> str:
    """"ok", "down", or "not configured"; an AMQP broker is asked whether it accepts a
    connection."""
    if not url:
        return "not configured"
    if url.startswith(("redis", "rediss")):
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        except (redis.RedisError, OSError):
            return "down"
        finally:
            client.close()
        return "ok"
    from kombu import Connection
    from kombu.exceptions import OperationalError as BrokerDown

    try:
        with Connection(url, connect_timeout=1) as connection:
            connection.ensure_connection(max_retries=1)
    except (BrokerDown, OSError):
        return "down"
    return "ok"


def _metrics_allowed() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    given = request.headers.get("Authorization", "")
    if token and given == f"Bearer {token}":
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    allowed = current_app.config.get("METRICS_ALLOW_FROM") or ""
    return any(address in ipaddress.ip_network(net.strip(), strict=False)
               for net in allowed.split(",") if net.strip())


@ops.route("/metrics")
def metrics():
    if not _metrics_allowed():
        return Response("forbidden\n", status=403, mimetype="text/plain")
    _sample_queue()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _sample_queue() -> None:
    """The queue's depth, read from a Redis broker at each scrape (Celery's Redis transport
    keeps a queue as a list under the queue's name)."""
    url = current_app.config.get("CELERY_BROKER_URL") or ""
    queue = current_app.config.get("CELERY_QUEUE") or "celery"
    if not url.startswith(("redis", "rediss")):
        return
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        queue_depth(queue, int(client.llen(queue)))
    except (redis.RedisError, OSError) as exc:  # the broker's state is /readyz's to tell
        log.debug("queue depth not read: %s", exc)
    finally:
        client.close()


# --- static files: content-hashed URLs, cached long ----------------------------------------------

_hashes: dict[tuple, str] = {}


def _static_folder(endpoint: str) -> str | None:
    if endpoint == "static":
        return current_app.static_folder
    blueprint = current_app.blueprints.get(endpoint.rsplit(".", 1)[0])
    return blueprint.static_folder if blueprint is not None else None


def _version_static_url(endpoint: str | None, values: dict) -> None:
    """`url_for('static', filename=…)` (ours and FAB's templates alike) carries `v=<hash of the
    file's content>`: a changed file gets a new URL, so the browser may keep each for a year."""
    if not endpoint or not (endpoint == "static" or endpoint.endswith(".static")) or \
            "v" in values or not values.get("filename"):
        return
    folder = _static_folder(endpoint)
    path = os.path.join(folder, values["filename"]) if folder else None
    try:
        stat = os.stat(path) if path else None
    except OSError:
        return
    if stat is None:
        return
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _hashes:
        with open(path, "rb") as handle:
            _hashes[key] = hashlib.sha256(handle.read()).hexdigest()[:12]
    values["v"] = _hashes[key]


def _cache_static(response):
    endpoint = request.endpoint or ""
    if (endpoint == "static" or endpoint.endswith(".static")) and request.args.get("v") and \
            response.status_code == 200:
        response.cache_control.public = True
        response.cache_control.max_age = current_app.config["STATIC_MAX_AGE"]
        response.cache_control.immutable = True
        response.cache_control.no_cache = None
    return response


def init_app(app) -> None:
    """Request ids, request metrics and the operator's routes (no login: FAB does not guard a
    plain blueprint; /metrics guards itself)."""
    app.before_request(_begin_request)
    app.after_request(_end_request)
    app.after_request(_cache_static)
    app.url_defaults(_version_static_url)
    app.teardown_request(_forget_request)
    app.register_blueprint(ops)
