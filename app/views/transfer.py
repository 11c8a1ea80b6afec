"""A business page's data out and in (app/exports.py, app/imports.py): the list as CSV or
Excel, and the spreadsheet import of the resources a liaison fills."""
from __future__ import annotations

from flask import Response, abort, flash, redirect, request, session, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access
from flask_appbuilder.urltools import get_filter_args
from sqlalchemy import select

from app.exports import Export, TooManyRows, csv_response, query_for, xlsx_response
from app.imports import REGISTRY, Importer, ImportRefused, keep_report, read_report
from app.security.scope import unscoped
from app.views.entity import list_args


class Transfers:
    """Export and import endpoints of EntityView."""

    # Export: the columns written (default: the show page's). Import: the columns a
    # spreadsheet fills, in template order, and the natural key a row updates by.
    export_columns: list[str] | None = None
    import_columns: list[str] = []
    import_key: str | tuple[str, ...] | None = None
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
        filters = self.datamodel.get_filters(self.search_columns)
        get_filter_args(filters)
        order = list_args(self)[:2]
        export = Export(self, query_for(self, filters, *order), self.export_columns,
                        english_keys=request.args.get("headers") == "keys")
        described = {k: v for k, v in request.args.items() if k.startswith(("_flt_", "_oc_", "_od_"))}
        if fmt == "csv":
            encoding = "gb18030" if request.args.get("encoding") == "gb18030" else "utf-8-sig"
            return csv_response(self, export, described, encoding)
        try:
            return xlsx_response(self, export, described)
        except TooManyRows as exc:
            flash(str(exc), "danger")
            return redirect(url_for(f"{self.endpoint}.list", **request.args))

    @expose("/import/", methods=["GET", "POST"])
    @has_access
    def import_page(self):
        importer = self._importer()
        outcome = None
        if request.method == "POST":
            upload = request.files.get("file")
            if upload is None or not upload.filename:
                flash("请选择要导入的文件", "danger")
            else:
                try:
                    outcome = importer.run(upload.filename, upload.read(),
                                           dry_run=bool(request.form.get("dry_run")))
                except ImportRefused as exc:
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
                                    resource=self.class_permission_name)

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
        return Response(body, mimetype="text/csv; charset=utf-8", headers={
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

