"""A business page's data out and in (app/exports.py, app/imports.py): the list as CSV or
Excel, and the spreadsheet import of the resources a liaison fills."""
from __future__ import annotations

import prison
from flask import Response, abort, current_app, flash, redirect, request, session, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access
from flask_appbuilder.urltools import get_filter_args
from sqlalchemy import select

from app import jobs
from app.api.base import EntityApi
from app.errors import DomainError
from app.exports import (
    Export,
    TooManyRows,
    api_export,
    csv_response,
    export_file,
    export_job,
    query_for,
    requested_encoding,
    xlsx_response,
)
from app.imports import (
    NEW_ENTRY,
    REGISTRY,
    Importer,
    ImportRefused,
    import_job,
    import_work,
    keep_report,
    keep_upload,
    read_report,
    read_upload,
    remember,
)
from app.security.scope import unscoped
from app.views.entity import list_args, view_of


class Transfers:
    """Export and import endpoints of EntityView."""

    # Export: the columns written (default: the show page's). Import: the columns a
    # spreadsheet fills, in template order, and the natural key a row updates by.
    export_columns: list[str] | None = None
    import_columns: list[str] = []
    import_key: str | tuple[str, ...] | list[tuple[str, ...]] | None = None
    import_past_work: tuple[str, ...] = ()  # columns only a role that starts the workflow fills
    import_examples: dict[str, str] = {}

    @classmethod
    def declare_transfers(cls) -> None:
        cls.export_columns = cls.__dict__.get("export_columns") or cls.__dict__.get("show_columns")
        cls.extra_args = {"importable": bool(cls.__dict__.get("import_columns"))}

    @expose("/export/<fmt>")
    @has_access
    def export(self, fmt):
        """The list as it is filtered and ordered, as CSV (`?encoding=gb18030`, `?headers=keys`
        for English keys) or Excel."""
        if fmt not in ("csv", "xlsx"):
            abort(404)
        export, described = self.export_request()
        count = export.query.order_by(None).count()
        try:
            # Past EXPORT_INLINE_MAX_ROWS: a job, and its page (app/jobs.py).
            job = export_job(self, fmt, count, api=False)
            if job is not None:
                return redirect(url_for("JobView.show", pk=job.id))
            if fmt == "csv":
                return csv_response(self, export, described, requested_encoding(), count)
            return xlsx_response(self, export, described, count)
        except (TooManyRows, jobs.JobRefused) as exc:
            flash(str(exc), "danger")
            return redirect(url_for(f"{self.endpoint}.list", **request.args))

    def export_request(self) -> tuple[Export, dict]:
        """The export the list page's arguments in this request ask for, and its filters as
        the audit record describes them (the page's export, and its job's)."""
        filters = self.datamodel.get_filters(self.search_columns)
        get_filter_args(filters)
        order = list_args(self)[:2]
        export = Export(self, query_for(self, filters, *order), self.export_columns,
                        english_keys=request.args.get("headers") == "keys")
        # A filter given several values (an IN filter) keeps them all.
        described = {k: v if len(v) > 1 else v[0] for k, v in request.args.lists()
                     if k.startswith(("_flt_", "_oc_", "_od_"))}
        return export, described

    @expose("/import/", methods=["GET", "POST"])
    @has_access
    def import_page(self):
        importer = self._importer()
        outcome = None
        may_add_entry = self.appbuilder.sm.has_access("can_add", "dictionary")
        if request.method == "POST":
            upload = request.files.get("file")
            # The mapping form of a preview sends no file: the one it previewed was kept.
            found = (upload.filename, upload.read()) if upload is not None and upload.filename \
                else read_upload(session.get("import_upload"), self.class_permission_name) \
                if request.form.get("kept") else None
            if found is None:
                flash("请选择要导入的文件" if not request.form.get("kept") else
                      "上传的文件已过期，请重新上传", "danger")
            else:
                (filename, data), dry_run = found, bool(request.form.get("dry_run"))
                sheet = request.form.get("sheet") or None  # chosen on the page, else the best
                chosen = {tuple(key.split(":", 2)[1:]): value for key, value in request.form.items()
                          if key.startswith("map:") and key.count(":") >= 2 and value}
                try:
                    # The user's words for entries, kept for its next files too.
                    mappings = remember(importer, chosen, may_add_entry) if chosen else {}
                    # Past IMPORT_INLINE_MAX_ROWS: a job, and its page (app/jobs.py).
                    job = None if dry_run else import_job(self, importer, filename, data,
                                                          request.form.get("_token"), sheet)
                    if job is not None:
                        return redirect(url_for("JobView.show", pk=job.id))
                    outcome = importer.run(filename, data, dry_run=dry_run, mappings=mappings,
                                           sheet=sheet)
                    if (outcome.unknown or len(outcome.sheets) > 1) and not outcome.written:
                        session["import_upload"] = keep_upload(self.class_permission_name,
                                                               filename, data)
                except (ImportRefused, jobs.JobRefused, DomainError) as exc:
                    flash(str(exc), "danger")
                else:
                    counts = f"新增 {outcome.created} 条，更新 {outcome.updated} 条，无变化 {outcome.unchanged} 条"
                    if outcome.written:
                        flash(f"导入成功：{counts}", "success")
                    elif outcome.ok:
                        flash(f"预览：将{counts}（未写入）", "info")
                    else:
                        flash(f"发现 {len(outcome.problems)} 处错误，未导入任何数据", "danger")
                        session["import_report"] = keep_report(outcome, importer)
        return self.render_template("gongjian/import.html", title=f"导入{self.model.__label__}",
                                    importer=importer, outcome=outcome,
                                    resource=self.class_permission_name,
                                    may_add_entry=may_add_entry, new_entry=NEW_ENTRY)

    @expose("/import/template")
    @has_access
    def import_template(self):
        body = self._importer().template()
        return Response(body, headers={
            "Content-Disposition": f"attachment; filename={self.class_permission_name}-template.xlsx"},
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    @expose("/import/report")
    @has_access
    def import_report(self):
        body = read_report(session.get("import_report"))
        if body is None:
            abort(404)
        return Response(body, content_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f"attachment; filename={self.class_permission_name}-errors.csv"})

    def _importer(self) -> Importer:
        if not self.import_columns:
            abort(404)
        return REGISTRY.get(self.class_permission_name) or Importer(self)

    def import_key_of(self, value):
        """The natural key as stored (overridden where it is normalised)."""
        return value

    def import_lookup(self, session, key):
        """The live row a natural key names, among all rows (the write check then decides).
        Without autoflush: a flush inside `unscoped()` skips the write check, and the rows the
        file changed before this one (another community's unit, moved into one's own) were
        written unchecked (issue 17)."""
        with unscoped(), session.no_autoflush:
            return session.execute(select(self.model).where(
                getattr(self.model, self.import_key) == key)).scalar_one_or_none()



def entity_api(resource: str):
    for api in current_app.appbuilder.baseviews:
        if isinstance(api, EntityApi) and api.class_permission_name == resource:
            return api
    return None


# --- the jobs of data in and out (app/jobs.py): the same code, in the request rebuilt from the
# job's parameters

@jobs.kind("export", "导出")
def _export_job(job, params, progress):
    view = view_of(job.resource)
    if params.get("api"):
        args = prison.loads(request.args["q"]) if request.args.get("q") else {}
        export, described = api_export(entity_api(job.resource), view, args)
    else:
        export, described = view.export_request()
    return export_file(view, export, described, params["fmt"], progress)


@jobs.kind("import", "导入")
def _import_job(job, params, progress):
    view = view_of(job.resource)
    return import_work(view, view._importer(), job, params, progress)
