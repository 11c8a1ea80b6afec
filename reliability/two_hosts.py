"""Two hosts (issue 21): two app instances, each with an instance folder of its own (no shared
disk), one Celery worker and one beat, on one PostgreSQL and Redis — what a city's deployment
behind a load balancer looks like, on loopback:

    .venv/bin/python -m reliability.two_hosts [--export-rows 50000] [--import-rows 45000]
        [--load-seconds 120 --load-users 20]

With --load-seconds, the checks are followed by a locust crowd on both hosts (reliability/
locustfile.py, each user keeping to one host), once quiet and once while the service-record
export runs as a job again and again: throughput and p95 of the list pages and of the moves,
every move found in the audit log (artifacts/reliability/two-hosts.json).

Each host has its own instance folder, address and metrics folder (gunicorn.conf.py, loaded by
both, is told them by GUNICORN_BIND and PROMETHEUS_MULTIPROC_DIR). Redis is one of the run's own
(a redis-server on TWO_HOSTS_REDIS_PORT, append-only as a deployment keeps its queue), so that
it can be stopped and restarted without touching the machine's.

It checks that
- a scan uploaded through A downloads through B, byte for byte;
- an export of EXPORT rows started on A (past A's inline limit: a job) completes on the worker
  and downloads from B, byte-identical to B's inline export of the same rows (B's limit is high);
- an import of IMPORT rows started on A completes as a job (no request time limit), with the
  broker (Redis) stopped and started again while it runs: the rows are written exactly once,
  and both hosts' /readyz answer 200 throughout, telling the broker "down", then "ok";
- a worker killed (kill -9) mid-import: the next worker takes the job over and the rows are
  written exactly once;
- beat starts and stays up.
The bulk rows are made by SQL (copies of the seeded service records), not by the seed's ORM path. Figures
(the worker's export rows/s, psql's \\copy of the same rows) go to artifacts/reliability/.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RELIABILITY_DATABASE", "gongjian_two_hosts")

import requests

from . import common
from .common import BIN, PASSWORD, ROOT, log
from .faults import member_file

REDIS_PORT = int(os.environ.get("TWO_HOSTS_REDIS_PORT", "6391"))
BROKER = f"redis://127.0.0.1:{REDIS_PORT}/0"
PORTS = {"A": int(os.environ.get("TWO_HOSTS_PORT_A", "8791")),
         "B": int(os.environ.get("TWO_HOSTS_PORT_B", "8792"))}
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
PDF = b"%PDF-1.4\n" + os.urandom(600_000) + b"\n%%EOF\n"


class Processes:
    """The hosts, the worker and beat: started with one environment (the same keys, broker and
    database), each host with its own instance folder; stopped together."""

    def __init__(self, folder: Path):
        self.folder, self.procs, self.queue = folder, {}, f"two-hosts-{os.getpid()}"
        self.base = {**common.env(), "SECRET_KEY": secrets.token_urlsafe(48),
                     "GONGJIAN_DATA_KEY": secrets.token_urlsafe(48),
                     "CELERY_BROKER_URL": BROKER, "CELERY_QUEUE": self.queue,
                     # A killed worker's job is handed on within seconds here (default: an hour).
                     "JOB_VISIBILITY_TIMEOUT": "20", "JOB_STALE_SECONDS": "10"}

    def start(self, name: str, argv: list[str], **env) -> subprocess.Popen:
        instance = self.folder / name.split("-")[0]
        instance.mkdir(exist_ok=True)
        out = open(common.ARTIFACTS / f"two-hosts-{name}.log", "a")
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**self.base, "GONGJIAN_INSTANCE": str(instance), **env})
        self.procs[name] = proc
        return proc

    def redis(self) -> None:
        """The run's Redis (started again on the same folder after a stop: its append-only
        file keeps the queue, unacknowledged messages included)."""
        folder = self.folder / "redis"
        folder.mkdir(exist_ok=True)
        self.start("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(REDIS_PORT),
                             "--dir", str(folder), "--save", "", "--appendonly", "yes"])
        deadline = time.time() + 30
        while subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "ping"],
                             capture_output=True).stdout.strip() != b"PONG":
            assert time.time() < deadline, "the run's Redis did not start"
            time.sleep(0.2)

    def stop_redis(self) -> None:
        subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "shutdown"], capture_output=True)
        self.procs["redis"].wait(30)

    def host(self, name: str, **env) -> None:
        # gunicorn.conf.py (loaded from the root by both hosts) takes its address and metrics
        # folder from the environment: each host its own, or B's start would empty A's metrics.
        self.start(name, [str(BIN / "gunicorn"), "-w", "2", "-k", "gthread", "--threads", "4",
                          "--timeout", "30", "run:app"],
                   **common.host_env(f"127.0.0.1:{PORTS[name]}", self.folder / name), **env)

    def worker(self, name: str = "worker") -> subprocess.Popen:
        return self.start(name, [str(BIN / "celery"), "-A", "app.worker", "worker",
                                 "--pool=solo", "-Q", self.queue, "--without-gossip",
                                 "--without-mingle", "--loglevel=INFO"])

    def beat(self) -> None:
        self.start("beat", [str(BIN / "celery"), "-A", "app.worker", "beat", "--loglevel=INFO",
                            f"--schedule={self.folder / 'celerybeat-schedule'}"])

    def stop(self) -> None:
        for proc in reversed(self.procs.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def url(host: str, path: str) -> str:
    return f"http://127.0.0.1:{PORTS[host]}{path}"


def wait_up(host: str, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if requests.get(url(host, "/login/"), timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"host {host} did not come up")


def login(session: requests.Session, host: str, username: str) -> None:
    token = CSRF.search(session.get(url(host, "/login/"), timeout=60).text).group(1)
    response = session.post(url(host, "/login/"), allow_redirects=False, timeout=60, data={
        "username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and "/login" not in response.headers["Location"], \
        f"{username} could not log in through {host}"


def csrf(session, host, path) -> str:
    return CSRF.search(session.get(url(host, path), timeout=60).text).group(1)


def job_of(response) -> int:
    assert response.status_code == 302, f"{response.status_code}: {response.text[:300]}"
    match = re.search(r"/jobs/(\d+)$", response.headers["Location"])
    assert match, f"not a job: {response.headers['Location']}"
    return int(match.group(1))


def finished(session, host: str, job: int, seconds: float = 300) -> dict:
    deadline = time.time() + seconds
    while time.time() < deadline:
        state = session.get(url(host, f"/jobs/{job}/status"), timeout=60).json()
        if state["finished"]:
            return state
        time.sleep(0.5)
    raise AssertionError(f"job {job} not finished after {seconds} s: {state}")


# The hosts' EXPORT_INLINE_MAX_ROWS (config.py's default; B's is raised for its comparison).
INLINE_LIMIT = 20_000

# Exported: the service records, the largest list of a district (its CSV written by the
# database, app/exports.py).
EXPORTED = "service_record"


def bulk_rows(rows: int) -> None:
    """`rows` copies of the seeded service records, made by one INSERT … SELECT."""
    from sqlalchemy import text

    columns = [r[0] for r in common.rows(
        "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
        "AND column_name <> 'id' ORDER BY ordinal_position", t=EXPORTED)]
    seeded = common.scalar(f"SELECT count(*) FROM {EXPORTED} WHERE deleted_on IS NULL")
    listed = ", ".join(columns)
    engine = common.engine()
    with engine.begin() as conn:
        conn.execute(text(
            f"INSERT INTO {EXPORTED} ({listed}) SELECT {listed} FROM (SELECT s.*, g FROM "
            f"{EXPORTED} s, generate_series(1, :copies) g WHERE s.deleted_on IS NULL "
            f"ORDER BY g, s.id LIMIT :rows) picked"),
            {"copies": rows // max(seeded, 1) + 1, "rows": rows})
    # The statistics a deployment's autovacuum keeps: without them the planner takes the table
    # for its seeded size and joins the export's related rows by nested loops over all of them
    # (75,527 rows: 6.2 s in COPY instead of 0.9 s).
    with engine.begin() as conn:
        conn.execute(text(f"ANALYZE {EXPORTED}"))
    engine.dispose()


def check_upload(session) -> dict:
    pk = common.scalar("SELECT min(id) FROM agreement WHERE deleted_on IS NULL")
    response = session.post(url("A", f"/agreement/upload/{pk}"), allow_redirects=False,
                            timeout=60, data={"csrf_token": csrf(session, "A", f"/agreement/upload/{pk}")},
                            files={"file": ("协议.pdf", io.BytesIO(PDF), "application/pdf")})
    assert response.status_code == 302, f"upload through A: {response.status_code}"
    through_b = session.get(url("B", f"/agreement/scan/{pk}"), timeout=60)
    assert through_b.status_code == 200 and through_b.content == PDF, \
        f"the scan through B: {through_b.status_code}, {len(through_b.content)} bytes"
    log(f"a {len(PDF)}-byte scan uploaded through A downloads through B, identical")
    return {"scan_bytes": len(PDF)}


class PeakMemory:
    """The largest resident size a process reaches while the block runs (sampled 5 times a
    second)."""

    def __init__(self, pid: int):
        import psutil

        self.process, self.peak, self.running = psutil.Process(pid), 0, True

    def _sample(self):
        while self.running:
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except Exception:  # noqa: BLE001 — the process ended
                return
            time.sleep(0.2)

    def __enter__(self):
        import threading

        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def check_export(session, rows: int, worker_pid: int) -> dict:
    total = common.scalar(f"SELECT count(*) FROM {EXPORTED} WHERE deleted_on IS NULL")
    assert total > rows
    path = f"/{EXPORTED}/export/csv"
    with PeakMemory(worker_pid) as memory:
        job = job_of(session.get(url("A", path + f"?_token={secrets.token_hex(8)}"),
                                 allow_redirects=False, timeout=60))
        state = finished(session, "B", job, seconds=900)
    assert state["status"] == "已完成", state
    through_b = session.get(url("B", state["download"]), timeout=300).content
    started, ended = common.rows("SELECT started_on, finished_on FROM job WHERE id = :j", j=job)[0]
    seconds = (ended - started).total_seconds()
    inline = session.get(url("B", path), timeout=300).content
    assert through_b == inline, "the job's file is byte for byte B's inline export"
    assert through_b.count(b"\n") == total + 1
    log(f"export of {total} {EXPORTED} rows: a job on the worker ({seconds:.1f} s, "
        f"{total / seconds:,.0f} rows/s, peak memory {memory.peak / 2**20:.0f} MiB), "
        "downloaded through B, identical to B's inline export")
    # What psql's \copy of the same rows (the table's columns) takes, for comparison.
    t0 = time.monotonic()
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", common.DATABASE, "-qc",
                    (f"\\copy (SELECT * FROM {EXPORTED} WHERE deleted_on IS NULL ORDER BY id) "
                     "TO '/dev/null' WITH (FORMAT csv)")], check=True)
    psql = time.monotonic() - t0
    log(f"psql \\copy of the same rows: {psql:.2f} s ({total / psql:,.0f} rows/s)")
    return {"export_rows": total, "export_job_seconds": round(seconds, 2),
            "export_rows_per_second": round(total / seconds),
            "worker_peak_rss_mib": round(memory.peak / 2**20),
            "psql_copy_seconds": round(psql, 2), "psql_rows_per_second": round(total / psql),
            "export_sha256": hashlib.sha256(inline).hexdigest()}


def import_members(session, rows: int, first: int) -> int:
    response = session.post(url("A", "/member/import/"), allow_redirects=False, timeout=120, data={
        "csrf_token": csrf(session, "A", "/member/import/"), "_token": secrets.token_hex(8)},
        files={"file": ("党员.csv", io.BytesIO(member_file(rows, first)), "text/csv")})
    return job_of(response)


def readiness() -> dict:
    """Both hosts' /readyz: each must answer 200 (the database answers); the broker's state."""
    states = {}
    for host in PORTS:
        response = requests.get(url(host, "/readyz"), timeout=30)
        assert response.status_code == 200, f"/readyz on {host}: {response.status_code}"
        states[host] = response.json()["checks"]["broker"]
    return states


def running(job: int) -> int:
    """Wait until the job has rows done; how many."""
    deadline = time.time() + 120
    while not (done := common.scalar(
            "SELECT done FROM job WHERE id = :j AND status = '运行中'", j=job)):
        assert time.time() < deadline, f"job {job} never got going"
        time.sleep(0.2)
    return done


def check_import(session, procs: Processes, rows: int) -> dict:
    """The import, with Redis stopped and started again while it runs."""
    before = common.scalar("SELECT count(*) FROM member")
    assert set(readiness().values()) == {"ok"}
    t0 = time.monotonic()
    job = import_members(session, rows, first=0)
    done = running(job)
    procs.stop_redis()
    down = readiness()
    assert set(down.values()) == {"down"}, f"/readyz with Redis stopped: {down}"
    log(f"Redis stopped at {done} of {rows} rows; /readyz on A and B: 200, broker {down['A']}")
    time.sleep(2)
    procs.redis()
    up = readiness()
    assert set(up.values()) == {"ok"}, f"/readyz with Redis back: {up}"
    state = finished(session, "B", job, seconds=600)
    seconds = time.monotonic() - t0
    assert state["status"] == "已完成", state
    assert common.scalar("SELECT count(*) FROM member") == before + rows, "written exactly once"
    log(f"import of {rows} members: a job, done in {seconds:.1f} s ({state['message']}); "
        f"Redis restarted mid-way, /readyz 200 on both hosts (broker down, then ok)")
    return {"import_job": job, "import_rows": rows, "import_seconds": round(seconds, 1),
            "redis_stopped_at_row": done, "readyz_broker_down": down["A"],
            "readyz_broker_up": up["A"]}


def check_ran_once(job: int) -> dict:
    """Past the visibility timeout (the kill's check waited it out, and counted the members),
    the import Redis was restarted under was not run again: one attempt."""
    attempts = common.scalar("SELECT attempts FROM job WHERE id = :j", j=job)
    assert attempts == 1, f"the import Redis restarted under ran {attempts} times"
    log("the import Redis was restarted under: still one attempt")
    return {"import_attempts": attempts}


def check_kill_mid_import(session, procs: Processes, rows: int) -> dict:
    before = common.scalar("SELECT count(*) FROM member")
    job = import_members(session, rows, first=500_000)
    done = running(job)
    procs.procs["worker"].send_signal(signal.SIGKILL)
    procs.procs["worker"].wait()
    log(f"worker killed (kill -9) at {done} of {rows} rows")
    assert common.scalar("SELECT count(*) FROM member") == before, "nothing of it committed"
    procs.worker("worker-2")
    state = finished(session, "B", job, seconds=300)
    attempts = common.scalar("SELECT attempts FROM job WHERE id = :j", j=job)
    assert state["status"] == "已完成" and attempts == 2, (state, attempts)
    assert common.scalar("SELECT count(*) FROM member") == before + rows, "written exactly once"
    log(f"the next worker took the job over: {rows} rows written once ({attempts} attempts)")
    return {"kill_import_rows": rows, "killed_at_row": done, "attempts": attempts}


def crowd(the_plan: dict, users: int, seconds: int, name: str) -> dict:
    """A locust run on both hosts (each user keeps to one); its figures: the whole, the list
    pages and the moves (requests/s, the largest p95 among them), and what it wrote checked
    against the database and the audit log as reliability/load.py checks it."""
    import json

    from . import load

    the_plan = {**the_plan, "need_baseline": common.scalar("SELECT coalesce(max(id), 0) FROM need"),
                "journal": str(common.ARTIFACTS / f"{name}-journal.json")}
    load.run_locust(the_plan, users, seconds, host=url("A", ""), name=name)
    table = load.stats(name)["pages"]
    with open(the_plan["journal"]) as f:
        checked = load.verify(the_plan, json.load(f))

    def summary(rows):
        return {"requests": sum(r["requests"] for r in rows),
                "failures": sum(r["failures"] for r in rows),
                "rps": round(sum(r["rps"] for r in rows), 2),
                "p95_ms_max": max((r["p95_ms"] or 0 for r in rows), default=None),
                "p50_ms_max": max((r["p50_ms"] or 0 for r in rows), default=None)}
    lists = [r for k, r in table.items() if re.fullmatch(r"GET /\w+/list/", k)]
    moves = [r for k, r in table.items() if "/transition/" in k]
    total = table.get(" Aggregated") or table.get("Aggregated") or summary(list(table.values()))
    return {"all": total, "list_pages": summary(lists), "moves": summary(moves),
            "moves_audited": checked["audit_transition_records"],
            "moves_journalled": checked["moves"], "problems": checked["problems"]}


def load_figures(session, seconds: int, users: int) -> dict:
    """The crowd on both hosts, then again while the service-record export runs as a job on the
    worker over and over (each one started on A as soon as the last is done)."""
    import threading

    from . import load

    the_plan = {**load.plan(seconds), "hosts": [url("A", ""), url("B", "")], "users": users}
    # The crowd's CSV exports stay in the request (lists within the inline limit): the exports
    # run as jobs are the ones started below.
    small = {r for r in load.BROWSED
             if common.scalar(f"SELECT count(*) FROM {r}") <= INLINE_LIMIT}
    the_plan["exportable"] = {u: [r for r in rs if r in small]
                              for u, rs in the_plan["exportable"].items()}
    quiet = crowd(the_plan, users, seconds, "two-hosts-load")
    log(f"load, {users} users for {seconds} s on A and B: {quiet}")
    stop, exports = threading.Event(), []

    def export_again():
        exporter = requests.Session()
        login(exporter, "A", "zuzhibu")
        while not stop.is_set():
            job = job_of(exporter.get(url("A", f"/{EXPORTED}/export/csv?_token={secrets.token_hex(8)}"),
                                      allow_redirects=False, timeout=60))
            exports.append(finished(exporter, "A", job, seconds=900)["status"])
    thread = threading.Thread(target=export_again)
    thread.start()
    try:
        busy = crowd(the_plan, users, seconds, "two-hosts-load-exporting")
    finally:
        stop.set()
        thread.join()
    log(f"load with the export running ({len(exports)} exports: {set(exports)}): {busy}")
    assert not quiet["problems"] and not busy["problems"], (quiet["problems"], busy["problems"])
    return {"load_users": users, "load_seconds": seconds, "load_quiet": quiet,
            "load_exporting": busy, "exports_during_load": exports}


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the processes it started
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export-rows", type=int,
                        default=int(os.environ.get("TWO_HOSTS_EXPORT_ROWS", "50000")))
    parser.add_argument("--import-rows", type=int,
                        default=int(os.environ.get("TWO_HOSTS_IMPORT_ROWS", "45000")))
    parser.add_argument("--kill-rows", type=int,
                        default=int(os.environ.get("TWO_HOSTS_KILL_ROWS", "20000")))
    parser.add_argument("--load-seconds", type=int, default=0,
                        help="then a locust run of this length on both hosts, quiet and with the "
                             "export running (default: none)")
    parser.add_argument("--load-users", type=int, default=20)
    args = parser.parse_args(argv)
    common.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    common.fresh_database("demo")
    bulk_rows(args.export_rows)
    results = {}
    with tempfile.TemporaryDirectory(prefix="gongjian-two-hosts-") as folder:
        procs = Processes(Path(folder))
        try:
            procs.redis()
            procs.host("A")
            procs.host("B", EXPORT_INLINE_MAX_ROWS="10000000", IMPORT_INLINE_MAX_ROWS="10000000")
            procs.worker()
            procs.beat()
            wait_up("A")
            wait_up("B")
            session = requests.Session()  # one browser: its cookie works on either host
            login(session, "A", "zuzhibu")
            assert "我的任务" in session.get(url("B", "/jobs/"), timeout=60).text, \
                "the session made on A is a session on B (the same keys)"
            results.update(check_upload(session))
            results.update(check_export(session, args.export_rows, procs.procs["worker"].pid))
            if args.import_rows and args.kill_rows:  # 0: without the imports (a load run)
                results.update(check_import(session, procs, args.import_rows))
                results.update(check_kill_mid_import(session, procs, args.kill_rows))
                results.update(check_ran_once(results["import_job"]))
            assert procs.procs["beat"].poll() is None, "beat stays up"
            if args.load_seconds:
                results.update(load_figures(session, args.load_seconds, args.load_users))
        finally:
            procs.stop()
    results["seconds"] = round(time.monotonic() - started, 1)
    common.save("two-hosts", results)
    log(f"two hosts: every check passed in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
