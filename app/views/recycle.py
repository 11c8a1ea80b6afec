"""回收站: the deleted rows of each entity, for the administrators who may delete them, within
their scope; restore one or several at once. Erasing for good is `flask gongjian purge`, after
`RECYCLE_RETENTION_DAYS` (the logic: app/services/recycle.py)."""
from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from sqlalchemy import select

from app import clock
from app.errors import DomainError
from app.extensions import db
from app.i18n import gettext
from app.security.scope import current_principal, unscoped
from app.services.recycle import binned_models, count_deleted, deleted_rows, restore_rows

PAGE_SIZE = 50


def _may_restore(resource: str) -> bool:
    """Who may delete a resource's rows may bring them back (within scope)."""
    return current_app.appbuilder.sm.has_access("can_delete", resource)


class RecycleView(BaseView):
    route_base = "/recycle"
    default_view = "index"
    class_permission_name = "recycle"
    method_permission_name = {"index": "read", "rows": "read", "restore": "restore"}

    def _model(self, resource: str):
        model = binned_models().get(resource)
        if model is None or not _may_restore(resource):
            abort(404)
        return model

    @expose("/")
    @has_access
    def index(self):
        principal = current_principal()
        entries = []
        for resource, model in sorted(binned_models().items()):
            if _may_restore(resource):
                entries.append((resource, gettext(model.__label__ or resource),
                                count_deleted(db.session, model, principal)))
        return self.render_template("recycle/index.html", title=gettext("回收站"),
                                    entries=entries, days=self._days())

    @expose("/<resource>/")
    @has_access
    def rows(self, resource):
        model = self._model(resource)
        page = max(request.args.get("page", 1, type=int), 1)
        stmt = deleted_rows(model, current_principal())
        total = count_deleted(db.session, model, current_principal())
        items = db.session.execute(
            stmt.order_by(model.deleted_on.desc(), model.id.desc())
            .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).scalars().all()
        retention = timedelta(days=self._days())
        rows = [(item.id, str(item), item.deleted_on, self._username(item.deleted_by_id),
                 clock.to_local(item.deleted_on + retention).date()) for item in items]
        return self.render_template(
            "recycle/rows.html", title=gettext("回收站：%(entity)s",
                                               entity=gettext(model.__label__ or resource)),
            resource=resource, rows=rows, page=page, total=total,
            pages=max(1, -(-total // PAGE_SIZE)), days=self._days())

    @expose("/<resource>/restore", methods=["POST"])
    @has_access
    def restore(self, resource):
        model = self._model(resource)
        try:
            ids = {int(pk) for pk in request.form.getlist("rowid")}
        except ValueError:
            abort(404)
        items = db.session.execute(deleted_rows(model, current_principal())
                                   .where(model.id.in_(ids))).scalars().all() if ids else []
        # All or nothing: one row out of scope (or not in the bin) and nothing is restored.
        if not items or len(items) != len(ids):
            abort(404)
        try:
            done = restore_rows(db.session, items)
        except DomainError as exc:  # a parent still in the bin, a key taken meanwhile
            flash(str(exc), "danger")
        else:
            flash(gettext("已恢复 %(n)d 条记录", n=done), "success")
        return redirect(url_for(f"{self.endpoint}.rows", resource=resource))

    @staticmethod
    def _days() -> int:
        return int(current_app.config["RECYCLE_RETENTION_DAYS"])

    @staticmethod
    def _username(user_id) -> str:
        if user_id is None:
            return ""
        sm = current_app.appbuilder.sm
        with unscoped():
            name = db.session.execute(select(sm.user_model.username)
                                      .where(sm.user_model.id == user_id)).scalar()
        return name or ""
