"""The export job at scale (issue 21): a copy of the seeded database with ROWS service records
added by SQL (and analysed), one Celery worker on a Redis of the run's own, and the service-record
CSV export run on it as a job — its rows/s and the worker's peak resident memory (sampled 5 times
a second), against psql's \\copy of the same rows:

    .venv/bin/python -m reliability.export_speed [--rows 2000000] [--keep-db]

Figures go to artifacts/reliability/export-speed.json. The worker must stay within 256 MiB.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RELIABILITY_DATABASE", "gongjian_export_speed")

# (after the line above: common reads the database's name when it is imported)
from . import common
from .common import log
from .two_hosts import EXPORTED, PeakMemory, Processes, bulk_rows

LIMIT_MIB = 256


def export_job(procs: Processes) -> int:
    """Start the export as zuzhibu would, past the inline limit: a job handed to the worker —
    by a process of the run's environment (the app's configuration reads it when imported)."""
    out = subprocess.run([sys.executable, "-m", "reliability.export_speed", "--submit"],
                         cwd=common.ROOT, env=procs.base, check=True, capture_output=True,
                         text=True).stdout
    return int(out.split()[-1])


def submit() -> int:
    from app import create_app, jobs
    from app.extensions import db
    from app.security.models import UserAccount

    app = create_app()
    with app.app_context():
        user = db.session.query(UserAccount).filter_by(username="zuzhibu").one()
        job = jobs.start("export", "导出服务记录（规模测试）", user, {
            "path": f"/{EXPORTED}/export/csv", "args": [], "fmt": "csv", "api": False,
            "right": ["can_export", EXPORTED]}, resource=EXPORTED)
        jobs.submit(job)
        return job.id


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--keep-db", action="store_true", help="reuse the last run's database")
    parser.add_argument("--submit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.submit:
        print(submit())
        return 0
    if not args.keep_db:
        common.fresh_database("demo")
        bulk_rows(args.rows)
    total = common.scalar(f"SELECT count(*) FROM {EXPORTED} WHERE deleted_on IS NULL")
    with tempfile.TemporaryDirectory(prefix="gongjian-export-speed-") as folder:
        procs = Processes(Path(folder))
        try:
            procs.redis()
            worker = procs.worker()
            time.sleep(10)  # the worker up and idle
            with PeakMemory(worker.pid) as memory:
                idle = memory.process.memory_info().rss
                job = export_job(procs)
                deadline = time.time() + 1800
                while common.scalar("SELECT status FROM job WHERE id = :j", j=job) not in (
                        "已完成", "失败", "已取消"):
                    assert time.time() < deadline, "the export did not finish in 30 minutes"
                    time.sleep(0.5)
        finally:
            procs.stop()
    status, done, started, ended, size = common.rows(
        "SELECT j.status, j.done, j.started_on, j.finished_on, f.size FROM job j "
        "LEFT JOIN stored_file f ON f.id = j.file_id WHERE j.id = :j", j=job)[0]
    assert status == "已完成" and done == total, (status, done, total)
    seconds = (ended - started).total_seconds()
    t0 = time.monotonic()
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", common.DATABASE, "-qc",
                    (f"\\copy (SELECT * FROM {EXPORTED} WHERE deleted_on IS NULL ORDER BY id) "
                     "TO '/dev/null' WITH (FORMAT csv)")], check=True)
    psql = time.monotonic() - t0
    result = {"rows": total, "file_bytes": size, "job_seconds": round(seconds, 1),
              "job_rows_per_second": round(total / seconds),
              "psql_copy_seconds": round(psql, 1), "psql_rows_per_second": round(total / psql),
              "worker_idle_mib": round(idle / 2**20), "worker_peak_mib": round(memory.peak / 2**20)}
    common.save("export-speed", result)
    log(f"export of {total:,} rows ({size:,} bytes): the job {seconds:.1f} s "
        f"({total / seconds:,.0f} rows/s); psql \\copy {psql:.1f} s ({total / psql:,.0f} rows/s); "
        f"the worker {idle / 2**20:.0f} MiB idle, {memory.peak / 2**20:.0f} MiB at its peak")
    return 0 if memory.peak <= LIMIT_MIB * 2**20 else 1


if __name__ == "__main__":
    sys.exit(main())
