"""我的消息: the message centre (app/services/notices.py) — every logged-in user's own notices,
newest first, unread marked, each linking to its row; mark one or all read. The bell in the
navigation bar counts the same messages unread (`unread_notices`, a template global).

A message is its recipient's alone: another user's does not exist here (404). One whose row the
user may no longer read is neither listed nor counted nor opened (the data scope, asked again).
"""
from __future__ import annotations

from flask import abort, jsonify, redirect, request, url_for
from flask_appbuilder import expose
from sqlalchemy import func, select

from app.extensions import db
from app.models.notices import Notice
from app.security.principal import _request_user
from app.services import notices
from app.views.jobs import PersonalView

PAGE_SIZE = 50


def unread_notices() -> int:
    """The bell's figure for the logged-in user (0 for anybody else)."""
    user = _request_user()
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    return notices.unread_count(db.session, user.id)


class MessageView(PersonalView):
    route_base = "/messages"
    default_view = "mine"

    @expose("/")
    def mine(self):
        user = self._user()
        page = max(request.args.get("page", 1, type=int) or 1, 1)
        query = notices.inbox(user.id)
        total = db.session.scalar(select(func.count()).select_from(query.subquery()))
        rows = db.session.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
        return self.render_template(
            "messages/list.html", title="我的消息", rows=rows, text_of=notices.text_of,
            page=page, pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1), total=total,
            unread=notices.unread_count(db.session, user.id))

    def _own(self, user, pk) -> Notice:
        notice = db.session.scalar(notices.inbox(user.id).where(Notice.id == pk))
        if notice is None:
            abort(404)
        return notice

    @expose("/<int:pk>")
    def open(self, pk):
        """Read a message: marked read, then on to its row."""
        user = self._user()
        notice = self._own(user, pk)
        notices.mark_read(db.session, user.id, notice.id)
        return redirect(notices.link_of(notice) or url_for("MessageView.mine"))

    @expose("/<int:pk>/read", methods=["POST"])
    def read(self, pk):
        user = self._user()
        notices.mark_read(db.session, user.id, self._own(user, pk).id)
        return redirect(url_for("MessageView.mine"))

    @expose("/read-all", methods=["POST"])
    def read_all(self):
        notices.mark_read(db.session, self._user().id)
        return redirect(url_for("MessageView.mine"))

    @expose("/count")
    def count(self):
        return jsonify(unread=notices.unread_count(db.session, self._user().id))
