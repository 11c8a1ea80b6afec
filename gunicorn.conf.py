"""gunicorn's configuration: `gunicorn -c gunicorn.conf.py 'run:app'` (README, deploy/).

Requests are short now that long work runs as jobs (app/jobs.py), so a worker is killed after
GUNICORN_TIMEOUT (30 s) of silence; the app is loaded once in the master and forked
(preload_app); logs are JSON lines on stdout, one per request with its id and user
(app.ops.GunicornLogger). Metrics of all workers meet in PROMETHEUS_MULTIPROC_DIR.
"""
import multiprocessing
import os
import shutil
import tempfile
import time

# Every process in UTC: the app stores UTC whatever the zone, and this makes the libraries that
# read the local clock (Flask-AppBuilder's own user timestamps, log times) agree with it.
os.environ["TZ"] = "UTC"
time.tzset()

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# prometheus_client's multi-process mode: set before the app (and so prometheus_client) loads.
# The folder holds this server's numbers only: emptied at each start, one per address (two
# servers on one machine must not empty each other's).
_metrics = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(
    tempfile.gettempdir(), "gongjian-metrics-" + "".join(c if c.isalnum() else "_" for c in bind)))
shutil.rmtree(_metrics, ignore_errors=True)
os.makedirs(_metrics, exist_ok=True)
# gunicorn's control socket (gunicornc) beside it, one per server too: its default is one path
# per user ($HOME/.gunicorn/gunicorn.ctl), which a second server on the machine takes over and
# the first one's exit removes.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or _metrics.rstrip("/") + ".ctl"

workers = int(os.environ.get("GUNICORN_WORKERS") or multiprocessing.cpu_count() * 2 + 1)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# A deploy or restart lets requests in flight finish (a download streaming) this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
preload_app = True
accesslog = "-"
errorlog = "-"
logger_class = "app.ops.GunicornLogger"


def pre_request(worker, req):
    """The worker's CPU clock as the request begins: its access line says the CPU seconds the
    request took (`cpu_ms`, app.ops.GunicornLogger) beside its wall time — on a busy machine the
    wall time is mostly the wait for a core. A sync worker serves one request at a time."""
    req.cpu_started = time.process_time()


def child_exit(server, worker):
    """A worker gone: its live gauges leave the sums (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker):
    """The app was loaded in the master (preload_app): a database connection it opened is the
    master's, not to be shared by the workers — each worker starts with an empty pool."""
    from app.extensions import db

    flask_app = server.app.callable
    with flask_app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
