"""The same jobs on a real Celery worker (a separate process, `--pool=solo`) over the machine's
Redis — or RabbitMQ, when `JOB_TEST_BROKER_URL` says amqp://… (.ci/run does so once). Skipped
when the broker does not answer: `make test` passes without one."""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.test_data_io import body_of, upload, xlsx
from tests.test_jobs import job_id_of, member_file

pytestmark = pytest.mark.db

BROKER = os.environ.get("JOB_TEST_BROKER_URL", "redis://127.0.0.1:6379/13")
ROOT = Path(__file__).resolve().parent.parent


def _broker_answers() -> bool:
    from kombu import Connection

    try:
        with Connection(BROKER, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:  # noqa: BLE001 — any failure to connect means no broker here
        return False


@pytest.fixture(scope="module")
def queue():
    if not _broker_answers():
        pytest.skip(f"no broker at {BROKER}")
    return f"gongjian-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    from tests.conftest import tables_kept_by

    with tables_kept_by(app):
        yield


class Worker:
    """`celery -A app.worker worker --pool=solo` on the test database and a queue of its own."""

    def __init__(self, database_url, queue, tmp_path, **config):
        from config import TestingConfig

        env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": BROKER,
               "CELERY_QUEUE": queue, "GONGJIAN_DATA_KEY": TestingConfig.DATA_KEY,
               "GONGJIAN_INSTANCE": str(tmp_path), "GONGJIAN_CONFIG": "development",
               **{k: str(v) for k, v in config.items()}}
        self.log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "app.worker", "worker", "--pool=solo",
             "-Q", queue, "--without-gossip", "--without-mingle", "--loglevel=INFO"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def broker(app, queue):
    """The test app hands its jobs to the broker (and so to the worker) for one test."""
    from app import jobs

    saved = {k: app.config[k] for k in ("CELERY_BROKER_URL", "CELERY_QUEUE",
                                        "EXPORT_INLINE_MAX_ROWS", "IMPORT_INLINE_MAX_ROWS")}
    app.config.update(CELERY_BROKER_URL=BROKER, CELERY_QUEUE=queue)
    jobs.init_app(app)
    yield app
    app.config.update(saved)
    jobs.init_app(app)


@pytest.fixture
def worker(database_url, queue, tmp_path):
    started = []

    def start(**config):
        started.append(Worker(database_url, queue, tmp_path, **config))
        return started[-1]
    yield start
    for one in started:
        one.stop()


def state(ctx, job):
    return ctx.execute(text("SELECT status, done, total, attempts, message FROM job WHERE id=:j"),
                       {"j": job}).one()


def wait_for(ctx, job, statuses, seconds=90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = state(ctx, job)
        if found[0] in statuses:
            return found
        time.sleep(0.2)
    raise AssertionError(f"job {job} still {state(ctx, job)} after {seconds} s")


def test_an_export_runs_on_the_worker_and_matches_the_inline_file(ctx, as_user, broker, worker):
    worker()
    browser = as_user("zuzhibu")
    url = "/member/export/csv?_oc_MemberView=name&_od_MemberView=asc"
    inline = body_of(browser.get(url))
    broker.config["EXPORT_INLINE_MAX_ROWS"] = 10
    job = job_id_of(browser.get(url + f"&_token={uuid.uuid4().hex}"))
    page = browser.get(f"/jobs/{job}").get_data(as_text=True)
    assert 'http-equiv="refresh"' in page or "已完成" in page
    status, done, total, attempts, _ = wait_for(ctx, job, {"已完成", "失败"})
    assert (status, attempts) == ("已完成", 1) and done == total == inline.count(b"\n") - 1
    assert body_of(browser.get(f"/jobs/{job}/download")) == inline


def test_a_worker_killed_mid_import_imports_once(ctx, as_user, broker, worker):
    """kill -9 of the worker while it imports: nothing of the first attempt stays, the message
    comes back (acks_late, the visibility timeout), the next worker takes the job over and the
    rows are written exactly once."""
    first = worker(JOB_VISIBILITY_TIMEOUT=4, JOB_STALE_SECONDS=2)
    broker.config["IMPORT_INLINE_MAX_ROWS"] = 100
    browser = as_user("zuzhibu")
    before = ctx.execute(text("SELECT count(*) FROM member")).scalar()
    rows = 4000
    data = xlsx(member_file(ctx, rows, region="140105"))
    job = job_id_of(upload(browser, "member", "党员.xlsx", data))
    wait_for(ctx, job, {"运行中"}, seconds=60)
    time.sleep(1.5)  # well into the rows, not committed
    first.kill()
    assert state(ctx, job)[0] == "运行中"
    assert ctx.execute(text("SELECT count(*) FROM member")).scalar() == before
    worker(JOB_VISIBILITY_TIMEOUT=4, JOB_STALE_SECONDS=2)
    status, _done, _total, attempts, message = wait_for(ctx, job, {"已完成", "失败"}, seconds=180)
    assert (status, attempts) == ("已完成", 2), message
    assert f"新增 {rows} 条" in message
    assert ctx.execute(text("SELECT count(*) FROM member")).scalar() == before + rows


def test_a_broker_that_is_down_refuses_the_job_with_a_message(ctx, as_user, broker):
    from app import jobs

    broker.config.update(CELERY_BROKER_URL="redis://127.0.0.1:1/0", EXPORT_INLINE_MAX_ROWS=10)
    jobs.init_app(broker)
    browser = as_user("zuzhibu")
    started = time.monotonic()
    response = browser.get(f"/member/export/csv?_token={uuid.uuid4().hex}")
    assert time.monotonic() - started < 20
    assert response.status_code == 302 and "/member/list" in response.headers["Location"]
    page = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "任务队列暂时不可用" in page
    broker.config["EXPORT_INLINE_MAX_ROWS"] = 100000
    small = browser.get("/member/export/csv")
    assert small.status_code == 200 and body_of(small).count(b"\n") > 10


def test_a_star_rating_run_is_a_job_on_the_worker(ctx, api, broker, worker):
    """计算星级评定 through the API: 202 and the job's URL; the worker computes the period as
    the user who started it, with its progress, and the ratings are there when it is done."""
    worker()
    client, headers = api("zuzhibu")
    period = "2010Q1"  # long before any data: every registered unit and active member, rated 0
    response = client.post("/api/v1/star_rating/compute", json={"period": period},
                           headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    job = response.get_json()["job"]
    status, done, total, attempts, message = wait_for(ctx, job, {"已完成", "失败"})
    assert (status, attempts) == ("已完成", 1), message
    rated = ctx.execute(text("SELECT count(*) FROM star_rating WHERE period = :p"),
                        {"p": period}).scalar()
    assert rated > 0 and done == total == rated
    assert message.startswith("2010年第1季度星级评定已计算")
    assert client.get(response.get_json()["url"], headers=headers).get_json()["status"] == "已完成"
