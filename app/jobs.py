"""Long work as jobs: exports and imports past their inline limits, star ratings, meeting
generation, the purge — on Celery when `CELERY_BROKER_URL` is set, else inline in the request
that starts them. One code path, two executors: `start()` writes the job's row, `submit()` hands
its id to a worker or runs it at once, and `run()` is the same either way.

What a job promises (issue 21):
- It runs as the user who started it, with that user's scope and rights as they are when it
  runs (a user deactivated meanwhile gets a failed job, one moved gets its new scope).
- Its work and its "done" commit together: an import's rows and the job's status are one
  transaction. A worker killed mid-way leaves the job "running"; the broker hands the message
  (acknowledged only after the work, `acks_late`) to the next worker, which starts again from
  the beginning, and a job found done is not run again — keyed by the job's id, a retry
  writes once, while a second upload is a second job.
- A double-click starts one job: the form's token is unique among jobs.
- A file is offered only when complete: a result is stored in the transaction that marks the
  job done, so a job that failed half-way has no file, whatever the disk or the worker did.
- Progress (rows done of the total) is written on a connection of its own, and a cancel is
  noticed there: a cancelled import rolls back whole. (On SQLite, where the job's own
  transaction holds the file's write lock, progress is only shown at the end.)
"""
from __future__ import annotations

import errno
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import Celery
from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.clock import today, utcnow
from app.errors import DomainError
from app.extensions import db
from app.models.jobs import FINISHED, Job, JobStatus

log = logging.getLogger(__name__)

celery = Celery("gongjian")

# How often, at most, a running job writes its progress (and looks for a cancel).
PROGRESS_SECONDS = 1.0
# A job interrupted this many times (a worker killed each time) is failed, not retried forever.
MAX_ATTEMPTS = 3


class Cancelled(Exception):
    pass


class StillRunning(Exception):
    """The job runs elsewhere, alive: the task looks again later."""


class JobRefused(DomainError):
    """A job that could not be started, told as such."""


class QueueUnavailable(JobRefused):
    """The broker did not take the job."""


# --- the Celery application ----------------------------------------------------------------

def init_app(app) -> None:
    """Configure Celery from the Flask app's config; its tasks run in this app's context."""
    broker = app.config.get("CELERY_BROKER_URL")
    backend = app.config.get("CELERY_RESULT_BACKEND") or (
        broker if broker and broker.startswith(("redis", "rediss")) else None)
    if getattr(celery, "flask_app", None) is not None and \
            celery.conf.broker_url != (broker or "memory://"):
        # Configured again with another broker (tests): drop the connections to the old one.
        celery.close()
        celery.amqp._producer_pool = None
    celery.conf.update(
        broker_url=broker or "memory://",
        result_backend=backend,
        task_default_queue=app.config["CELERY_QUEUE"],
        # The job's row holds its state; Celery's result store only says the task ended.
        task_ignore_result=True,
        # Acknowledged after the work: a worker killed mid-job leaves the message to be
        # delivered again (Redis: after the visibility timeout; RabbitMQ: when the channel closes).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Redis: a message left unacknowledged (its worker killed) is handed on once it is
        # older than the visibility timeout, looked for every 10 s (kombu's default scans only
        # every 10th look, adding up to 100 s to a killed worker's job).
        broker_transport_options={"visibility_timeout": app.config["JOB_VISIBILITY_TIMEOUT"],
                                  "unacked_restore_interval": 10,
                                  "unacked_restore_throttle": 1},
        # A worker that loses the broker mid-job runs the job to its end (its work commits
        # with its row); the acknowledgement goes when the broker is back, and a delivery again
        # finds the job done. (Said explicitly: Celery 6 will cancel such jobs by default.)
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        # A broker that is down refuses a new job within seconds, with a message to the user.
        broker_connection_timeout=3,
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 1},
        timezone="UTC",
        enable_utc=True,
        beat_schedule=app.config["JOB_SCHEDULE"],
        worker_hijack_root_logger=False,
    )
    celery.flask_app = app
    app.extensions["celery"] = celery


def queued() -> bool:
    return bool(current_app.config.get("CELERY_BROKER_URL"))


@celery.task(name="gongjian.run_job", bind=True, max_retries=None)
def run_job(task, job_id: int) -> None:
    with celery.flask_app.app_context():
        try:
            run(job_id)
        except StillRunning:
            raise task.retry(countdown=celery.flask_app.config["JOB_STALE_SECONDS"])


@celery.task(name="gongjian.scheduled")
def scheduled(kind: str) -> None:
    """Beat's entry: a job of the system's (no user), run in this worker at once."""
    with celery.flask_app.app_context():
        job = start(kind, title=KINDS[kind].title, user=None)
        run(job.id)


@celery.task(name="gongjian.deliver_notices")
def deliver_notices() -> None:
    """Beat's entry, every minute: send the notices' e-mails and webhook calls that are due
    (app/services/notices.py), in batches, for at most a minute's work."""
    from app.services.notices import deliver

    with celery.flask_app.app_context():
        deliver(db.session)


@celery.task(name="gongjian.apply_rollups")
def apply_rollups() -> None:
    """Beat's entry, every minute: recompute the dashboard's rollup cells that writes marked
    since the last run (app/rollups.py)."""
    from app import rollups

    with celery.flask_app.app_context():
        rollups.apply(db.session.connection(), rollups.JOB_APPLY_LIMIT)
        db.session.commit()


# --- the kinds of job ------------------------------------------------------------------------

@dataclass
class Kind:
    title: str
    # work(job, params, progress) -> StoredFile | None. It writes in `db.session` and does not
    # commit: `run` commits its writes with the job's end. It runs in a request rebuilt from
    # the params (path, query string): an export reads its filters there, as the list page does.
    work: callable


KINDS: dict[str, Kind] = {}


def kind(name: str, title: str):
    def register(work):
        KINDS[name] = Kind(title, work)
        return work
    return register


def result_expiry() -> datetime:
    """When a job's file (and its download link) expires."""
    return utcnow() + timedelta(hours=current_app.config["JOB_RESULT_HOURS"])


# --- starting a job --------------------------------------------------------------------------

def new_form_token() -> str:
    """A token for a form or an export link: submitting it twice starts one job."""
    return secrets.token_urlsafe(24)


def start(kind_name: str, title: str, user, params: dict | None = None,
          resource: str | None = None, form_token: str | None = None,
          total: int | None = None) -> Job:
    """Write the job's row (committed) — or, for a token already used by this user, return the
    job that token started."""
    session = db.session
    job = Job(kind=kind_name, title=title, resource=resource,
              params=json.dumps(params or {}, ensure_ascii=False),
              user_id=getattr(user, "id", None), form_token=form_token or None,
              status=JobStatus.QUEUED, total=total, done=0, created_on=utcnow())
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = session.execute(select(Job).where(Job.form_token == form_token)).scalar_one()
        if existing.user_id != job.user_id:
            raise JobRefused("表单已失效，请刷新页面后重试") from None
        return existing
    return job


def submit(job: Job) -> Job:
    """Hand the job to a worker (its id as the task's id), or run it here and now."""
    if job.status != JobStatus.QUEUED or job.attempts:
        return job  # the same token submitted twice: the first submission runs it
    if not queued():
        app = current_app._get_current_object()
        with app.app_context():  # a session and a `g` of its own, as a worker would have
            run(job.id)
        # This request's transaction began before the run (reading the job's status above):
        # ended here, so the job is read as the run left it, not from that transaction's
        # snapshot (SQLite's, MariaDB's repeatable read).
        db.session.commit()
        db.session.refresh(job)
        return job
    try:
        run_job.apply_async((job.id,), task_id=f"job-{job.id}")
    except Exception as exc:  # kombu's OperationalError, a refused connection, a timeout
        log.warning("任务队列不可用：%s", exc)
        _finish(job.id, JobStatus.FAILED, "任务队列暂时不可用，任务未能开始，请稍后再试"
                "（数据量较小的导出、导入不受影响）")
        raise QueueUnavailable("任务队列暂时不可用，请稍后再试；数据量较小的导出、导入不受影响") from exc
    return job


# --- running a job ---------------------------------------------------------------------------

def run(job_id: int) -> None:
    """Run a job once to its end: done (with its file), failed (with a Chinese message) or
    cancelled. A job found finished is left alone: a message delivered twice runs once."""
    from app.security.models import UserAccount
    from app.security.principal import SYSTEM, acting_as, principal_for

    session = db.session
    job = session.get(Job, job_id)
    if job is None or job.status in FINISHED:
        return
    if job.attempts >= MAX_ATTEMPTS:
        _finish(job_id, JobStatus.FAILED, f"任务已中断 {job.attempts} 次，不再重试，请重新发起")
        return
    # Claimed when queued, or running with a silent heartbeat (its worker was killed). One still
    # beating is another delivery's (a visibility timeout passed while it ran): left to it.
    now = utcnow()
    stale = now - timedelta(seconds=current_app.config["JOB_STALE_SECONDS"])
    claimed = session.execute(
        update(Job).where(Job.id == job_id, or_(
            Job.status == JobStatus.QUEUED,
            and_(Job.status == JobStatus.RUNNING, or_(Job.heartbeat_on.is_(None),
                                                      Job.heartbeat_on < stale))))
        .values(status=JobStatus.RUNNING, attempts=Job.attempts + 1, started_on=now,
                heartbeat_on=now, done=0)
        .execution_options(synchronize_session=False))
    session.commit()
    if not claimed.rowcount:
        session.refresh(job)
        if job.status == JobStatus.RUNNING:
            raise StillRunning(job_id)
        return  # cancelled meanwhile
    session.refresh(job)
    params = json.loads(job.params or "{}")
    user = session.get(UserAccount, job.user_id) if job.user_id else None
    if job.user_id and (user is None or not user.active):
        _finish(job_id, JobStatus.FAILED, "发起任务的用户已停用，任务未执行")
        return
    # The right the request was checked for, asked again now (roles may have changed).
    right = params.get("right")
    if user is not None and right and not current_app.appbuilder.sm.exist_permission_on_roles(
            right[1], right[0], [role.id for role in user.roles]):
        _finish(job_id, JobStatus.FAILED, "您已没有此操作的权限，任务未执行")
        return
    app = current_app._get_current_object()
    work = KINDS[job.kind]
    progress = Progress(job_id, session.get_bind().dialect.name != "sqlite")
    try:
        request = app.test_request_context(params.get("path", "/"),
                                           query_string=params.get("args"))
        with request, acting_as(principal_for(user) if user else SYSTEM):
            result = work.work(job, params, progress)
            # The work's writes and the job's end in one commit, and only if nobody
            # cancelled it meanwhile (the update waits for a cancel in flight).
            finished = session.execute(
                update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                .values(status=JobStatus.FAILED if progress.failed else JobStatus.DONE,
                        finished_on=utcnow(), done=progress.done,
                        total=progress.total if progress.total is not None else progress.done,
                        file_id=result.id if result is not None else None,
                        message=progress.message, expires_on=result_expiry())
                .execution_options(synchronize_session=False))
            if not finished.rowcount:
                raise Cancelled()
            session.commit()
    except Cancelled:
        session.rollback()
        _finish(job_id, JobStatus.CANCELLED, "任务已取消，未写入任何数据")
    except DomainError as exc:
        session.rollback()
        _finish(job_id, JobStatus.FAILED, str(exc))
    except OSError as exc:
        session.rollback()
        if exc.errno == errno.ENOSPC:
            _finish(job_id, JobStatus.FAILED, "服务器临时磁盘空间不足，任务失败，未生成任何文件；请缩小范围或联系管理员")
        else:
            log.exception("任务 %s 失败", job_id)
            _finish(job_id, JobStatus.FAILED, "任务执行出错（已记录），请稍后重试或联系管理员")
    except Exception:
        session.rollback()
        log.exception("任务 %s 失败", job_id)
        _finish(job_id, JobStatus.FAILED, "任务执行出错（已记录），请稍后重试或联系管理员")


def _finish(job_id: int, status: JobStatus, message: str) -> None:
    """End a job that did not complete (in a transaction of its own)."""
    with db.engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job_id, Job.status.not_in(
            [JobStatus.DONE, JobStatus.CANCELLED] if status != JobStatus.CANCELLED
            else [JobStatus.DONE])).values(status=status, message=message,
                                           finished_on=utcnow()))


class Progress:
    """Rows done (of a total) as a job goes: written on a connection of its own at most once a
    second, which is also where a cancel is noticed (it raises `Cancelled`)."""

    def __init__(self, job_id: int, live: bool):
        self.job_id, self.live = job_id, live
        self.done, self.total, self.message = 0, None, None
        # A job that ends refusing its input (an import's errors) keeps its file (the report)
        # but reads as failed, with `message` saying why.
        self.failed = False
        self._written = 0.0

    def __call__(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if not self.live or time.monotonic() - self._written < PROGRESS_SECONDS:
            return
        self._written = time.monotonic()
        with db.engine.begin() as connection:
            values = {"done": done, "heartbeat_on": utcnow()}
            if self.total is not None:
                values["total"] = self.total
            written = connection.execute(update(Job).where(
                Job.id == self.job_id, Job.status == JobStatus.RUNNING).values(**values))
        if not written.rowcount:
            raise Cancelled()


def cancel(job: Job) -> bool:
    """Cancel a queued or running job (its user's); whether it was still going."""
    with db.engine.begin() as connection:
        done = connection.execute(update(Job).where(
            Job.id == job.id, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
            .values(status=JobStatus.CANCELLED, message="任务已取消，未写入任何数据",
                    finished_on=utcnow()))
    return bool(done.rowcount)


def purge_jobs(session, now: datetime) -> int:
    """Delete finished jobs past their result's life (their files go with the storage's purge);
    safe to run twice."""
    from app import storage

    keep = timedelta(days=current_app.config["JOB_KEEP_DAYS"])
    old = session.execute(select(Job).where(Job.status.in_(FINISHED),
                                            Job.finished_on < now - keep)).scalars().all()
    for job in old:
        if job.file is not None:
            storage.delete_file(job.file, session)
        session.delete(job)
    return len(old)


# --- scheduled work (Celery beat; each safe to run twice) -----------------------------------

@kind("purge", "清理回收站、过期任务与文件")
def _purge(job, params, progress):
    from app import storage
    from app.services.recycle import purge_expired

    report = purge_expired(db.session, current_app.config["RECYCLE_RETENTION_DAYS"])
    now = utcnow()
    jobs_purged = purge_jobs(db.session, now)
    files = storage.purge_expired(db.session, now)
    progress.message = (f"回收站清除 {sum(item.purged for item in report)} 条；"
                        f"过期任务 {jobs_purged} 个，过期文件 {files} 个")


@kind("generate_meetings", "生成下月会议计划")
def _generate_meetings(job, params, progress):
    from calendar import monthrange
    from datetime import date

    from app.models.meetings import JointBody
    from app.services.meetings import generate_meetings

    today_ = today()
    year, month = (today_.year + 1, 1) if today_.month == 12 else (today_.year, today_.month + 1)
    first, last = date(year, month, 1), date(year, month, monthrange(year, month)[1])
    created = 0
    for body in db.session.execute(select(JointBody).order_by(JointBody.id)).scalars().all():
        created += len(generate_meetings(db.session, body, first, last).created)
    progress.message = f"{first:%Y-%m} 会议计划：新生成 {created} 次"


@kind("rate_stars", "计算星级评定")
def _rate_stars(job, params, progress):
    """A period's star ratings, as its user may compute them (`rate_stars` below). Scheduled
    (no period): the quarter just ended, computed once — a period already computed is left as
    its raters have it (a review is not undone), so beat may run it twice."""
    from app.services.cobuild import compute_ratings, previous_quarter, rated_message, rating_count

    period = params.get("period")
    if period is None:
        period = previous_quarter()
        if rating_count(db.session, period):
            progress.message = f"{period} 的星级评定已计算，本次未重新计算"
            return
    done = compute_ratings(db.session, period, progress=progress, commit=False)
    progress.message = rated_message(done)
    return


def rate_stars(period_text: str, user, resource: str, form_token: str | None = None) -> Job:
    """Start the star-rating run of a period (the page's and the API's): a period written
    wrong, not ended, or weights not summing to 100 are refused at once, before any job."""
    from app.services.cobuild import parse_period, rating_weights

    period = parse_period(period_text)
    rating_weights()
    job = start("rate_stars", f"计算{period.label}星级评定", user,
                {"period": period.code, "right": ["can_compute", resource]},
                resource=resource, form_token=form_token)
    return submit(job)


@kind("notices", "定时提醒：办理时限、协议到期、月度服务")
def _scheduled_notices(job, params, progress):
    from app.services.notices import scan

    counts = scan(db.session)
    progress.message = f"写入提醒 {sum(counts.values())} 条"


@kind("work_report_document", "生成月汇报文件")
def _work_report_document(job, params, progress):
    """A monthly report's .docx (or its PDF), composed as its user reads it and kept in the
    storage: the report is read through the user's scope (a report it may not read is none)."""
    from flask_babel import force_locale

    from app import storage
    from app.models.reports import WorkReport
    from app.services import audit
    from app.services.work_report import document_name, docx_bytes, pdf_bytes

    report = db.session.get(WorkReport, params["report"])
    if report is None:
        raise JobRefused("月汇报不存在或超出您的数据范围")
    with force_locale(params.get("locale") or current_app.config["BABEL_DEFAULT_LOCALE"]):
        content = docx_bytes(db.session, report)
    fmt = params.get("format", "docx")
    if fmt == "pdf":
        content = pdf_bytes(content)
    kinds = {"docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             "pdf": "application/pdf"}
    stored = storage.save([content], document_name(report, fmt), kinds[fmt],
                          expires_on=result_expiry())
    audit.record(db.session, "export", "work_report", record_id=report.id,
                 changes={"format": fmt, "month": report.month, "org": report.org_id})
    progress.message = f"已生成 {report}（{fmt}）"
    return stored


@kind("assess", "计算年度考核")
def _assess(job, params, progress):
    """A year's assessment of a level, as its user may compute it (`assess` below): committed
    with the job's end."""
    from app.services.assessment import compute, computed_message

    done = compute(db.session, params["year"], params["level"], progress=progress, commit=False)
    progress.message = computed_message(done)


def assess(year_text, level_text, user, resource: str, form_token: str | None = None) -> Job:
    """Start the computation of a year's assessment (the page's and the API's): a year written
    wrong or not ended, a level unknown, or weights not summing to 100 are refused at once,
    before any job."""
    from app.models.assessment import LEVEL_NAMES
    from app.services.assessment import indicators, parse_level, parse_year

    year, level = parse_year(year_text), parse_level(level_text)
    indicators(db.session, level)
    job = start("assess", f"计算{year}年度{LEVEL_NAMES[level]}考核", user,
                {"year": year, "level": level, "right": ["can_compute", resource]},
                resource=resource, form_token=form_token)
    return submit(job)
