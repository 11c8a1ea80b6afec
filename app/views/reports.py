"""月汇报's page and API: a declaration, its figures' tables, the A4 print page and the
documents (.docx, PDF) made by a job and kept in the storage (app/services/work_report.py)."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import get_locale

from app import jobs
from app.errors import DomainError
from app.models.jobs import FINISHED, JobStatus
from app.models.reports import WorkReport
from app.security.principal import _request_user
from app.services import work_report as service
from app.views.base import EntityView

FORMATS = ("docx", "pdf")


def start_document(report: WorkReport, fmt: str, user, form_token: str | None = None):
    """The job making a report's document (run here and now without a broker)."""
    if fmt == "pdf" and service.soffice() is None:
        raise DomainError("服务器未安装 LibreOffice，无法生成 PDF：请使用“打印”页面另存为 PDF")
    # The document speaks its reader's language, also when a worker makes it (no request there).
    job = jobs.start("work_report_document", f"{report}（{fmt.upper()}）", user,
                     {"report": report.id, "format": fmt, "right": ["can_read", "work_report"],
                      "locale": str(get_locale() or "zh")},
                     resource="work_report", form_token=form_token)
    return jobs.submit(job)


class WorkReportView(EntityView):
    model = WorkReport
    workflow = service.REPORT_FLOW
    show_template = "reports/work_report_show.html"
    list_columns = ["org", "month", "status", "submitted_on", "reviewed_on"]
    show_columns = ["org", "month", "status", "summary", "problems", "plans", "return_reason",
                    "submitted_on", "reviewed_on", "created_on", "changed_on"]
    add_columns = ["org", "month", "summary", "problems", "plans"]
    edit_columns = ["summary", "problems", "plans"]
    search_columns = ["org", "month", "status", "awaits_review"]
    order_columns = ["month", "status"]
    base_order = ("month", "desc")
    permission_of = {"printable": "read", "document": "read"}
    description_columns = {"month": "格式：年-月，如 2026-07"}

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        """A node's month has one report: asked for again, the existing one is opened."""
        if request.method == "POST":
            found = service.existing(self.datamodel.session, request.form.get("org", type=int),
                                     request.form.get("month", ""))
            if found is not None:
                flash(f"{found}已存在，已为您打开", "info")
                return redirect(url_for(f"{self.endpoint}.show", pk=found.id))
        return super().add()

    def post_add(self, item):
        g.work_report_added = item.id

    def post_add_redirect(self):
        """A new report opens on its page, where its figures are previewed."""
        added = g.get("work_report_added")
        if added is None:
            return super().post_add_redirect()
        return redirect(url_for(f"{self.endpoint}.show", pk=added))

    def _show(self, pk):
        widgets = super()._show(pk)
        report = self.datamodel.get(pk)
        if report is not None:
            widgets["report"] = report
            widgets["tables"] = service.tables(service.figures_of(self.datamodel.session, report))
        return widgets

    @expose("/print/<int:pk>")
    @has_access
    def printable(self, pk):
        """The report as an A4 page (the browser's print is the PDF where there is no
        LibreOffice)."""
        report = self.datamodel.get(pk)
        if report is None:
            abort(404)
        session = self.datamodel.session
        return render_template("reports/work_report_print.html", report=report,
                               title=service.title_of(report, service.node_of(session, report)),
                               tables=service.tables(service.figures_of(session, report)))

    @expose("/document/<int:pk>/<fmt>", methods=["POST"])
    @has_access
    def document(self, pk, fmt):
        report = self.datamodel.get(pk)
        if report is None or fmt not in FORMATS:
            abort(404)
        try:
            job = start_document(report, fmt, _request_user(), request.form.get("form_token"))
        except DomainError as exc:
            flash(str(exc), "danger")
            return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        if job.status == JobStatus.DONE and job.file_id:
            return redirect(f"/jobs/{job.id}/download")
        if job.status in FINISHED:
            flash(job.message or "文件生成失败", "danger")
            return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        return redirect(f"/jobs/{job.id}")
