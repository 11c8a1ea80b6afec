"""Accounts opened in bulk: from the member list or from a file (the importable resource
`account`), the progress of a large batch and its 账号通知单 (app/services/accounts.py). A batch
is its creator's alone: anybody else is told it does not exist."""
from flask import Response, abort, flash, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access

from app.extensions import db
from app.imports import ImportRefused, keep_report, read_report
from app.security.models import AccountBatch
from app.security.scope import current_principal
from app.services import accounts


class AccountView(BaseView):
    route_base = "/account"
    class_permission_name = "account"
    method_permission_name = {"batch": "read", "slips": "read", "import_page": "import",
                              "import_template": "import", "import_report": "import"}
    default_view = "import_page"

    def _own_batch(self, token) -> AccountBatch:
        batch = db.session.get(AccountBatch, str(token)[:32])
        if batch is None or batch.created_by_id != current_principal().user_id:
            abort(404)
        return batch

    @expose("/batch/<token>", methods=["GET", "POST"])
    @has_access
    def batch(self, token):
        batch = self._own_batch(token)
        if request.method == "POST" and accounts.pending(batch):
            accounts.open_next(db.session, current_principal(), batch)
            return redirect(url_for(".batch", token=token))
        left = len(accounts.pending(batch))
        if not left:
            return redirect(url_for(".slips", token=token))
        return self.render_template("accounts/progress.html", total=batch.total,
                                    done=batch.total - left)

    @expose("/slips/<token>")
    @has_access
    def slips(self, token):
        batch = self._own_batch(token)
        if accounts.pending(batch):
            return redirect(url_for(".batch", token=token))
        slips, with_passwords = accounts.take_slips(db.session, batch)
        return self.render_template("accounts/slips.html", slips=slips,
                                    with_passwords=with_passwords,
                                    problems=accounts.problems(batch),
                                    login_url=request.host_url.rstrip("/") + "/login/")

    @expose("/import/", methods=["GET", "POST"])
    @has_access
    def import_page(self):
        importer, outcome = accounts.AccountImporter(), None
        if request.method == "POST":
            upload = request.files.get("file")
            if upload is None or not upload.filename:
                flash("请选择要导入的文件", "danger")
            else:
                try:
                    outcome, batch = importer.open(db.session, current_principal(),
                                                   upload.filename, upload.read(),
                                                   dry_run=bool(request.form.get("dry_run")))
                except ImportRefused as exc:
                    flash(str(exc), "danger")
                else:
                    if batch is not None:
                        flash(f"已开通 {outcome.created} 个账号，请立即打印账号通知单", "success")
                        return redirect(url_for(".slips", token=batch.id))
                    if outcome.ok:
                        flash(f"预览：将开通 {outcome.created} 个账号（未写入）", "info")
                    else:
                        flash(f"发现 {len(outcome.problems)} 处错误，未开通任何账号", "danger")
                        session["import_report"] = keep_report(outcome, importer)
        return self.render_template("gongjian/import.html", title="导入账号", importer=importer,
                                    outcome=outcome, resource="account")

    @expose("/import/template")
    @has_access
    def import_template(self):
        return Response(accounts.AccountImporter().template(), headers={
            "Content-Disposition": "attachment; filename=account-template.xlsx"},
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    @expose("/import/report")
    @has_access
    def import_report(self):
        body = read_report(session.get("import_report"))
        if body is None:
            abort(404)
        return Response(body, content_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": "attachment; filename=account-errors.csv"})
