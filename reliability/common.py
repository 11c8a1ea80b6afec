"""What every reliability run shares: a scratch PostgreSQL database loaded with the demo data
set, the panel served by gunicorn with several workers, and direct SQL to check the outcome.

The database and the server are real (no test client): the runs are about processes dying,
the database going away and many users writing at once, which only real ones show.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
ARTIFACTS = ROOT / "artifacts" / "reliability"
PASSWORD = os.environ.get("RELIABILITY_PASSWORD", "Reliab1lity-Demo!")
PG_ADMIN_URL = os.environ.get("RELIABILITY_PG_ADMIN", "postgresql+psycopg2://postgres@127.0.0.1/postgres")
DATABASE = os.environ.get("RELIABILITY_DATABASE", "gongjian_reliability")
# The seeded template is shared by every run (a run may use a database of its own).
TEMPLATE_PREFIX = os.environ.get("RELIABILITY_TEMPLATE", "gongjian_reliability")
DATABASE_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + DATABASE
PORT = int(os.environ.get("RELIABILITY_PORT", "8765"))
BASE_URL = f"http://127.0.0.1:{PORT}"
WORKERS = int(os.environ.get("RELIABILITY_WORKERS", "4"))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def env() -> dict:
    """The panel's environment: the scratch database, development config (no forced password
    change), the demo password known to the load clients."""
    return {**os.environ, "FLASK_APP": "run.py", "GONGJIAN_CONFIG": "development",
            "DATABASE_URL": DATABASE_URL, "DEMO_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}


def fresh_database(scale: str = "demo") -> None:
    """A database of its own for a run: a copy of the seeded one (seeded once, then kept as a
    template — `--reseed` or RELIABILITY_RESEED=1 seeds it again)."""
    template = f"{TEMPLATE_PREFIX}_seed_{scale}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"),
                                  {"d": template}).scalar()
            if not exists or os.environ.get("RELIABILITY_RESEED") == "1":
                _seed(conn, template, scale)
            log(f"database {DATABASE}: a copy of {template}")
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{DATABASE}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()
    # A template seeded before a newer migration: bring the copy to the head (no-op if there).
    subprocess.run([str(BIN / "flask"), "db", "upgrade"], cwd=ROOT, env=env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _seed(conn, template: str, scale: str) -> None:
    log(f"database {template}: create, migrate, seed ({scale}) — once")
    conn.execute(text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
    conn.execute(text(f'CREATE DATABASE "{template}"'))
    url = DATABASE_URL.rsplit("/", 1)[0] + "/" + template
    for args in (("db", "upgrade"), ("gongjian", "init"),
                 ("seed", "demo", "--scale", scale, "--password", PASSWORD)):
        subprocess.run([str(BIN / "flask"), *args], cwd=ROOT, env={**env(), "DATABASE_URL": url},
                       check=True, stdout=subprocess.DEVNULL)


def engine():
    return create_engine(DATABASE_URL, pool_pre_ping=True)


def scalar(sql: str, **params):
    eng = engine()
    try:
        with eng.connect() as conn:
            return conn.execute(text(sql), params).scalar()
    finally:
        eng.dispose()


def rows(sql: str, **params) -> list:
    eng = engine()
    try:
        with eng.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        eng.dispose()


def host_env(bind: str, folder: Path) -> dict:
    """What one served panel must not share with another on the machine: its address (given to
    gunicorn.conf.py, which the server loads from the repository's root) and its metrics folder
    (gunicorn.conf.py empties it at each start)."""
    metrics = folder / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    return {"GUNICORN_BIND": bind, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}


class Server:
    """gunicorn serving `run:app` with WORKERS gthread workers on loopback; `env`: settings of
    this server only (a fault's inline limits), not of the harness's process."""

    def __init__(self, workers: int = WORKERS, threads: int = 4, name: str = "server",
                 env: dict | None = None):
        self.workers, self.threads, self.name = workers, threads, name
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_file = open(ARTIFACTS / f"gunicorn-{self.name}.log", "w")
        self.folder = tempfile.TemporaryDirectory(prefix=f"gongjian-{self.name}-")
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "-w", str(self.workers), "-k", "gthread",
             "--threads", str(self.threads), "--timeout", "120",
             # Keep-alive longer than a user's pause: a connection the server closes just as the
             # client reuses it is reset, an error that is the harness's, not the panel's.
             "--keep-alive", "75", "--graceful-timeout", "5", "run:app"],
            cwd=ROOT, stdout=self.log_file, stderr=subprocess.STDOUT,
            env={**env(), **host_env(f"127.0.0.1:{PORT}", Path(self.folder.name)), **self.extra_env})
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, seconds: float = 180) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log_file.name}")
            try:
                with urllib.request.urlopen(BASE_URL + "/login/", timeout=30) as response:
                    if response.status == 200 and len(self.worker_pids()) >= self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("gunicorn did not become ready")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log_file.close()
            self.folder.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def save(name: str, data: dict) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    return path


@contextmanager
def section(title: str):
    log(f"== {title} ==")
    started = time.time()
    yield
    log(f"== {title}: {time.time() - started:.0f} s ==")


if __name__ == "__main__":  # `python -m reliability.common` prepares the database only
    fresh_database(sys.argv[1] if len(sys.argv) > 1 else "demo")
