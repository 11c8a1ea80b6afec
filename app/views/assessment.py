"""年度考核's pages: the indicator set (组织部 edits it; 调整权重 sets a level's weights in one
save) and the results (computed by a job, previewed for a year not ended, adjusted, reviewed
and published through the transition table, app/services/assessment.py)."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access
from sqlalchemy import select

from app import clock, jobs
from app.errors import DomainError
from app.extensions import db
from app.models.assessment import LEVELS, Assessment, AssessmentIndicator
from app.models.jobs import FINISHED, JobStatus
from app.security.principal import _request_user
from app.services import assessment as service
from app.views.base import EntityView

# A preview's page lists at most this many subjects (the best first); the API's has them all.
PREVIEW_ROWS = 200


class AssessmentIndicatorView(EntityView):
    model = AssessmentIndicator
    list_template = "assessment/indicator_list.html"
    list_columns = ["level", "order", "name", "code", "weight", "target"]
    show_columns = add_columns = ["level", "order", "name", "code", "weight", "target",
                                  "description"]
    edit_columns = ["order", "name", "code", "weight", "target", "description"]
    search_columns = ["level", "name", "code"]
    order_columns = ["level", "order"]
    base_order = ("level", "asc")
    permission_of = {"weights": "edit"}
    description_columns = {
        "weight": "同一考核对象各项指标的权重之和须为100分；调整时请用“调整权重”同时修改各项",
        "target": "达到该比率即得满分，低于时按比例得分"}

    @expose("/weights/<level>", methods=["GET", "POST"])
    @has_access
    def weights(self, level):
        """A level's weights in one save: their sum must be 100, or nothing is saved."""
        if level not in LEVELS:
            return redirect(url_for(f"{self.endpoint}.list"))
        if request.method == "POST":
            given = {key[len("weight_"):]: value for key, value in request.form.items()
                     if key.startswith("weight_")}
            try:
                changed = service.set_weights(db.session, level, given)
            except DomainError as exc:
                flash(str(exc), "danger")
            else:
                flash(f"权重已保存（修改 {changed} 项）", "success")
                return redirect(url_for(f"{self.endpoint}.list"))
        rows = db.session.execute(select(AssessmentIndicator).where(
            AssessmentIndicator.level == level).order_by(
            AssessmentIndicator.order, AssessmentIndicator.id)).scalars().all()
        return self.render_template("assessment/weights.html", title="调整权重", level=level,
                                    level_label=LEVELS[level], rows=rows, form=request.form)


class AssessmentView(EntityView):
    """Results are made by the computation, then adjusted, reviewed and published."""

    model = Assessment
    workflow = service.ASSESSMENT_FLOW
    exclude_route_methods = {"add", "edit", "delete"}
    muldelete = None
    list_template = "assessment/list.html"
    list_columns = ["year", "level", "subject_name", "community", "computed_score", "adjustment",
                    "total", "rank", "status"]
    show_columns = ["year", "level", "community", "unit", "scores_text", "computed_score",
                    "adjustment", "adjustment_reason", "total", "rank", "status", "computed_on",
                    "reviewed_on", "published_on"]
    search_columns = ["year", "level", "community", "unit", "status"]
    order_columns = ["year", "total", "rank", "status"]
    base_order = ("rank", "asc")
    permission_of = {"compute": "compute"}

    @expose("/compute", methods=["GET", "POST"])
    @has_access
    def compute(self):
        """The year's computation, as a job (on a worker: its page; without a broker: its
        outcome here); 预览 computes and shows, storing nothing — a year not ended is previewed
        only."""
        preview = None
        if request.method == "POST" and request.form.get("preview"):
            try:
                preview = service.preview(db.session, request.form.get("year"),
                                          request.form.get("level"))
            except DomainError as exc:
                flash(str(exc), "danger")
        elif request.method == "POST":
            try:
                job = jobs.assess(request.form.get("year"), request.form.get("level"),
                                  _request_user(), self.class_permission_name,
                                  request.form.get("_token"))
            except DomainError as exc:
                flash(str(exc), "danger")
            else:
                if job.status not in FINISHED:
                    return redirect(url_for("JobView.show", pk=job.id))
                flash(job.message, "success" if job.status == JobStatus.DONE else "danger")
                if job.status == JobStatus.DONE:
                    return redirect(url_for(f"{self.endpoint}.list")
                                    + f"?_flt_0_year={request.form.get('year')}")
        return self.render_template("assessment/compute.html", title="计算年度考核",
                                    years=[clock.today().year - 1, clock.today().year],
                                    levels=LEVELS, preview=preview, preview_rows=PREVIEW_ROWS)
