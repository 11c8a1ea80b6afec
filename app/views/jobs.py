"""我的任务: the jobs a user started (app/jobs.py), their progress, their files and a cancel.

A job is its user's alone: another user's job does not exist here (404), whatever their roles;
a file past its time answers 410 with a message. The page refreshes itself while the job runs;
`/jobs/<id>/status` and the REST API's `/api/v1/job/<id>` say the same as JSON.
"""
from __future__ import annotations

from flask import Response, abort, current_app, flash, jsonify, redirect, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.api import BaseApi
from flask_jwt_extended import verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from sqlalchemy import select

from app import jobs, storage
from app.extensions import db
from app.models.jobs import FINISHED, Job
from app.security.principal import _request_user

EXPIRED = "下载链接已过期（任务结果保留 {hours} 小时），请重新导出"


def own_job(user, pk: int, not_found=404) -> Job:
    """The user's job `pk`; anyone else's, or none, is a 404 (`not_found`: the API's own)."""
    job = db.session.get(Job, pk)
    if job is None or user is None or job.user_id != user.id:
        abort(not_found)
    return job


def job_state(job: Job) -> dict:
    return {"id": job.id, "title": job.title, "status": job.status, "done": job.done,
            "total": job.total, "message": job.message, "finished": job.status in FINISHED,
            "download": f"/jobs/{job.id}/download" if job.file_id and job.status in FINISHED
            else None,
            "expires_on": job.expires_on.isoformat() if job.expires_on else None}


def download(job: Job) -> Response:
    """The job's file, streamed from the storage: 404 while there is none, 410 once expired."""
    if job.file is None or job.status not in FINISHED:
        abort(404)
    if job.expires_on is not None and job.expires_on < jobs.utcnow():
        hours = current_app.config["JOB_RESULT_HOURS"]
        return Response(EXPIRED.format(hours=hours), status=410,
                        content_type="text/plain; charset=utf-8")
    stored = job.file
    return Response(storage.read(stored), content_type=stored.content_type, headers={
        "Content-Disposition": f"attachment; filename={stored.name}",
        "Content-Length": str(stored.size)})


class PersonalView(BaseView):
    """Pages of the logged-in user's own things (its jobs, its messages): no permission of
    their own, only a login — anybody else's is not found."""

    def _user(self):
        user = _request_user()
        if user is None or not user.is_authenticated:
            abort(redirect(self.appbuilder.get_url_for_login))
        return user


class JobView(PersonalView):
    route_base = "/jobs"
    default_view = "mine"

    @expose("/")
    def mine(self):
        user = self._user()
        found = db.session.execute(select(Job).where(Job.user_id == user.id)
                                   .order_by(Job.id.desc()).limit(100)).scalars().all()
        return self.render_template("jobs/list.html", jobs=found, state=job_state,
                                    title="我的任务")

    @expose("/<int:pk>")
    def show(self, pk):
        job = own_job(self._user(), pk)
        return self.render_template("jobs/show.html", job=job, state=job_state(job),
                                    title=job.title)

    @expose("/<int:pk>/status")
    def status(self, pk):
        return jsonify(job_state(own_job(self._user(), pk)))

    @expose("/<int:pk>/download")
    def download(self, pk):
        return download(own_job(self._user(), pk))

    @expose("/<int:pk>/cancel", methods=["POST"])
    def cancel(self, pk):
        job = own_job(self._user(), pk)
        if jobs.cancel(job):
            flash("任务已取消，未写入任何数据", "info")
        else:
            flash("任务已结束，无法取消", "warning")
        return redirect(url_for("JobView.show", pk=pk))


class JobApi(BaseApi):
    """`GET /api/v1/job/<id>` (its state) and `/api/v1/job/<id>/download`, for the user whose
    export answered 202 with this job (JWT)."""

    resource_name = "job"
    openapi_spec_tag = "Jobs"

    def _job(self, pk) -> Job:
        try:
            verify_jwt_in_request()
        except (JWTExtendedException, PyJWTError):
            abort(self.response_401())
        return own_job(_request_user(), pk, self.response_404())

    @expose("/<int:pk>", methods=["GET"])
    def get(self, pk):
        """The state of one of the user's jobs.
        ---
        get:
          description: >-
            The state of a job the user started (an export past its inline limit answered 202
            with this URL): status, rows done of the total, message, and its file's link
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          responses:
            200:
              description: The job's state
              content:
                application/json:
                  schema:
                    type: object
            401:
              $ref: '#/components/responses/401'
            404:
              $ref: '#/components/responses/404'
        """
        state = job_state(self._job(pk))
        if state["download"]:
            state["download"] = f"/api/v1/job/{pk}/download"
        return self.response(200, **state)

    @expose("/<int:pk>/download", methods=["GET"])
    def download(self, pk):
        """The file of one of the user's finished jobs.
        ---
        get:
          description: >-
            The job's file (an export, an import's error report), while it lasts
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          responses:
            200:
              description: The file
              content:
                application/octet-stream:
                  schema:
                    type: string
                    format: binary
            401:
              $ref: '#/components/responses/401'
            404:
              $ref: '#/components/responses/404'
            410:
              description: The file has expired
              content:
                text/plain:
                  schema:
                    type: string
        """
        return download(self._job(pk))
