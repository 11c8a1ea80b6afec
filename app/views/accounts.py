"""Accounts opened in bulk: the progress of a large batch and its 账号通知单 (app/services/accounts.py).
A batch is its creator's alone: anybody else is told it does not exist."""
from flask import abort, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access

from app.extensions import db
from app.security.models import AccountBatch
from app.security.scope import current_principal
from app.services import accounts


class AccountView(BaseView):
    route_base = "/account"
    class_permission_name = "account"
    method_permission_name = {"batch": "read", "slips": "read"}
    default_view = "batch"

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
