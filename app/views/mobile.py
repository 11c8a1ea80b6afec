"""The phone pages (/m/): what liaisons, members and grid workers do on the spot, on a 390 px
screen — my to-do, a need with its moves first, logging one's own service, a wish, a post, my
points and 报到证.

Same app, same rights, same data: rows are read through the scoped session (out of scope: 404),
each page asks the permission its desktop page asks (403), and every move goes through the
resource's workflow table (`Workflow.run`) or, for a new row, through the one flush that checks
the business rules and the write scope. Only the layout differs: one column, the actions first,
then only the fields that are filled.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from app import clock, storage
from app.errors import DomainError, committed
from app.extensions import db
from app.models.cobuild import (
    ClaimStatus,
    MemberRegistration,
    PointEntry,
    PostClaim,
    ServicePost,
    ServiceRecord,
)
from app.models.lists import URGENCIES, MicroWish, Need, NeedStatus, WishStatus
from app.models.org import Dictionary, Member, Organization
from app.security.scope import current_principal
from app.services.lists import MICRO_WISH_FLOW, NEED_FLOW, need_timeline
from app.validators import ascii_digits
from app.views.cobuild import ServicePostView
from app.views.lists import MicroWishView, NeedView

# How many rows of each kind the to-do page lists (the most urgent first).
TODO_ROWS = 30


def _value_text(value) -> str:
    """A field's value as the phone page shows it (empty: not shown)."""
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, date):  # a datetime too: on the zone's wall clock
        return clock.local_text(value, seconds=False)
    if isinstance(value, (list, tuple)):
        return "、".join(str(v) for v in value)
    return str(value)


def filled_fields(view, row) -> list[tuple[str, str]]:
    """(label, text) of the desktop page's show columns that hold a value, in its order."""
    choices = {name: column.info.get("choices") for name, column in
               type(row).__table__.columns.items() if column.info.get("choices")}
    shown = []
    for name in view.show_columns:
        value = getattr(row, name, None)
        if name in choices and value in choices[name]:
            value = choices[name][value]
        text = _value_text(value)
        if text:
            shown.append((str(view.label_columns.get(name, name)), text))
    return shown


# What a move asks only of some rows: a 复杂 need's plan at 接单 (the others are not offered it).
def _asked(move, row) -> list:
    if isinstance(row, Need) and row.urgency != "复杂":
        return [f for f in move.fields if f.name not in ("plan", "plan_due")]
    return list(move.fields)


def _submitted() -> dict:
    values = {key: value for key, value in request.form.items() if key != "csrf_token"}
    values.update({key: upload for key, upload in request.files.items() if upload.filename})
    return values


class MobileView(BaseView):
    route_base = "/m"
    default_view = "todo"

    # --- who and what ---

    def _login(self):
        user = g.get("user")
        if user is None or not user.is_authenticated:
            abort(redirect(self.appbuilder.get_url_for_login))
        return user

    def _may(self, permission: str, resource: str) -> bool:
        return self.appbuilder.sm.has_access(f"can_{permission}", resource)

    def _require(self, permission: str, resource: str) -> None:
        self._login()
        if not self._may(permission, resource):
            abort(403)

    def _row(self, model, pk):
        """The row as the user may read it: out of scope is not found."""
        row = db.session.get(model, pk)
        if row is None:
            abort(404)
        return row

    def _render(self, template, **context):
        return self.render_template(f"mobile/{template}", asked=_asked, **context)

    # --- my to-do ---

    @expose("/")
    def todo(self):
        self._login()
        principal = current_principal()
        needs = wishes = posts = []
        if self._may("read", "need"):
            needs = self._actionable(Need, NEED_FLOW, Need.status != NeedStatus.REJECTED,
                                     selectinload(Need.assigned_members))
        if self._may("read", "micro_wish"):
            wishes = self._actionable(MicroWish, MICRO_WISH_FLOW,
                                      MicroWish.status.in_((WishStatus.PENDING, WishStatus.OPEN,
                                                            WishStatus.CLAIMED,
                                                            WishStatus.FULFILLED)))
        if principal.member_ids and self._may("add", "post_claim"):
            posts = db.session.execute(
                select(ServicePost).where(ServicePost.active,
                                          ServicePost.claimed < ServicePost.headcount,
                                          ServicePost.id.not_in(self._my_posts(principal)))
                .order_by(ServicePost.name, ServicePost.id).limit(TODO_ROWS)).scalars().all()
        return self._render("todo.html", title="我的待办", needs=needs, wishes=wishes, posts=posts,
                            grid_event=self._grid_node(principal) is not None,
                            categories=self._need_categories(), urgencies=URGENCIES,
                            member=bool(principal.member_ids))

    def _actionable(self, model, flow, where, *options):
        """The rows the user may move now (its roles, the row's status and rule), late first."""
        stmt = select(model).where(where).options(*options)
        if model is Need:
            stmt = stmt.order_by(case((Need.overdue, 0), else_=1), Need.created_on, Need.id)
        else:
            stmt = stmt.order_by(model.created_on, model.id)
        rows = db.session.execute(stmt.limit(TODO_ROWS * 4)).scalars().all()
        return [(row, moves) for row in rows if (moves := flow.available(row))][:TODO_ROWS]

    @staticmethod
    def _my_posts(principal):
        return (select(PostClaim.post_id)
                .where(PostClaim.member_id.in_(principal.member_ids),
                       PostClaim.status == ClaimStatus.CLAIMED).correlate(None))

    def _need_categories(self):
        return db.session.execute(select(Dictionary).where(
            Dictionary.kind == "need_category", Dictionary.active)
            .order_by(Dictionary.order, Dictionary.id)).scalars().all()

    def _grid_node(self, principal):
        """A grid admin's grid (where its events are filed), or None."""
        if "GridAdmin" not in principal.role_names or not principal.org_paths:
            return None
        node = db.session.execute(select(Organization).where(
            Organization.path == principal.org_paths[0])).scalar()
        return node if node is not None and node.type in ("grid", "building") else None

    # --- grid events: a grid admin files a need of its grid (source 网格员) ---

    @expose("/event", methods=["POST"])
    def event(self):
        self._require("add", "need")
        grid = self._grid_node(current_principal())
        if grid is None:
            abort(403)
        community = db.session.execute(select(Organization).where(
            Organization.type == "community",
            func.substr(grid.path, 1, func.length(Organization.path)) == Organization.path)
        ).scalar()
        form = request.form
        try:
            if community is None:
                raise DomainError("未找到本网格所属的社区")
            if not (form.get("title") or "").strip():
                raise DomainError("请填写事件标题", "title")
            category = form.get("category", "")
            if not ascii_digits(category):
                raise DomainError("请选择需求类别", "category")
            if form.get("urgency") not in URGENCIES:
                raise DomainError("请选择紧急程度", "urgency")
            need = Need(community_id=community.id, grid_id=grid.id, category_id=int(category),
                        title=form["title"].strip()[:100],
                        content=(form.get("content") or "").strip() or None,
                        urgency=form["urgency"], source="网格员")
            with committed(db.session):
                db.session.add(need)
        except DomainError as exc:
            flash(str(exc), "danger")
            return redirect(url_for(".todo"))
        flash("已上报网格事件，等待社区受理", "success")
        return redirect(url_for(".need", pk=need.id))

    # --- a need: its moves first, then what is filled ---

    @expose("/need/<int:pk>")
    def need(self, pk):
        self._require("read", "need")
        row = self._row(Need, pk)
        return self._render("record.html", title=row.title, row=row, resource="need",
                            moves=NEED_FLOW.available(row), fields=filled_fields(NeedView, row),
                            timeline=need_timeline(db.session, row),
                            photo=url_for(".need_photo", pk=pk) if row.handling_photo_id else None,
                            resident_photo=url_for("NeedView.photo", pk=pk) if row.photo_id else None)

    @expose("/need/<int:pk>/<name>", methods=["POST"])
    def need_move(self, pk, name):
        self._require("read", "need")  # the desktop's moves ask the same (then the table's roles)
        return self._move(NEED_FLOW, self._row(Need, pk), name, ".need")

    @expose("/need/<int:pk>/photo")
    def need_photo(self, pk):
        self._require("read", "need")
        row = self._row(Need, pk)
        stored = storage.get(row.handling_photo_id) if row.handling_photo_id else None
        if stored is None:
            abort(404)
        return storage.response(stored)

    # --- a micro-wish: claim, fulfil ---

    @expose("/micro_wish/<int:pk>")
    def micro_wish(self, pk):
        self._require("read", "micro_wish")
        row = self._row(MicroWish, pk)
        return self._render("record.html", title=row.content[:30], row=row,
                            resource="micro_wish", moves=MICRO_WISH_FLOW.available(row),
                            fields=filled_fields(MicroWishView, row), photo=None)

    @expose("/micro_wish/<int:pk>/<name>", methods=["POST"])
    def micro_wish_move(self, pk, name):
        self._require("read", "micro_wish")
        return self._move(MICRO_WISH_FLOW, self._row(MicroWish, pk), name, ".micro_wish")

    def _move(self, flow, row, name, page):
        if name not in flow.by_name:
            abort(404)
        move = flow.by_name[name]
        try:
            flow.run(db.session, row, name, _submitted())
        except DomainError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"已{move.label}", "success")
        return redirect(url_for(page, pk=row.id))

    # --- a service post: claim ---

    @expose("/service_post/<int:pk>")
    def service_post(self, pk):
        self._require("read", "service_post")
        row = self._row(ServicePost, pk)
        principal = current_principal()
        claimed = bool(principal.member_ids) and db.session.execute(
            select(PostClaim.id).where(PostClaim.post_id == pk,
                                       PostClaim.member_id.in_(principal.member_ids),
                                       PostClaim.status == ClaimStatus.CLAIMED)
            .limit(1)).first() is not None
        claimable = (bool(principal.member_ids) and self._may("add", "post_claim") and row.active
                     and not claimed and row.claimed < row.headcount)
        return self._render("post.html", title=row.name, row=row, claimed=claimed,
                            claimable=claimable, fields=filled_fields(ServicePostView, row))

    @expose("/service_post/<int:pk>/claim", methods=["POST"])
    def service_post_claim(self, pk):
        self._require("add", "post_claim")
        row = self._row(ServicePost, pk)
        principal = current_principal()
        if not principal.member_ids:
            abort(403)
        try:
            with committed(db.session, "该岗位刚被认领满额，请刷新后查看"):
                db.session.add(PostClaim(member_id=principal.member_ids[0], post_id=row.id,
                                         claimed_on=clock.today()))
        except DomainError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"已认领服务岗位“{row.name}”", "success")
        return redirect(url_for(".service_post", pk=pk))

    # --- the member logs its own service ---

    @expose("/service_record/add", methods=["GET", "POST"])
    def service_record_add(self):
        self._require("add", "service_record")
        principal = current_principal()
        if not principal.member_ids:
            abort(403)  # it logs its own service: a user that is no member has none
        member_id = principal.member_ids[0]
        posts = db.session.execute(
            select(ServicePost).where(ServicePost.id.in_(self._my_posts(principal)))
            .order_by(ServicePost.name)).scalars().all()
        if request.method == "POST":
            form = request.form
            try:
                record = ServiceRecord(member_id=member_id, **_service_values(form, posts))
                with committed(db.session):
                    db.session.add(record)
            except DomainError as exc:
                flash(str(exc), "danger")
            else:
                flash("已登记服务记录，等待社区认证", "success")
                return redirect(url_for(".me"))
        # The member is the user itself, shown as a value, not offered as a choice (as the
        # desktop form settles a choice with one possible value); the flush checks it anyway.
        member = db.session.get(Member, member_id)
        return self._render("service_record.html", title="登记服务", posts=posts, member=member,
                            values=request.form, today=clock.today().isoformat())

    # --- me: my points and my 报到证 ---

    @expose("/me")
    def me(self):
        self._login()
        principal = current_principal()
        points, registrations, records = None, [], []
        if principal.member_ids:
            member_id = principal.member_ids[0]
            points = db.session.execute(select(func.coalesce(func.sum(PointEntry.delta), 0))
                                        .where(PointEntry.subject_type == "member",
                                               PointEntry.member_id == member_id)).scalar()
            registrations = db.session.execute(
                select(MemberRegistration).where(MemberRegistration.member_id == member_id)
                .order_by(MemberRegistration.registered_on.desc())).scalars().all()
            records = db.session.execute(
                select(ServiceRecord).where(ServiceRecord.member_id == member_id)
                .order_by(ServiceRecord.served_on.desc(), ServiceRecord.id.desc())
                .limit(10)).scalars().all()
        return self._render("me.html", title="我的", points=points, registrations=registrations,
                            records=records, member=bool(principal.member_ids))


def _service_values(form, posts) -> dict:
    """A service record's fields from the phone form, or a Chinese refusal (the ranges of
    date and hours are the model's rules, checked at the flush)."""
    try:
        served_on = date.fromisoformat(form.get("served_on") or "")
    except ValueError:
        raise DomainError("请填写正确的服务日期", "served_on") from None
    try:
        hours = Decimal(form.get("hours") or "")
    except InvalidOperation:
        raise DomainError("请填写服务时长（小时）", "hours") from None
    if not hours.is_finite():
        raise DomainError("请填写服务时长（小时）", "hours")
    post = form.get("post") or None
    if post is not None and post not in {str(p.id) for p in posts}:
        raise DomainError("只能选择您已认领的服务岗位", "post")
    description = (form.get("description") or "").strip()
    if not description:
        raise DomainError("请填写服务内容", "description")
    return {"served_on": served_on, "hours": hours.quantize(Decimal("0.1")),
            "description": description, "post_id": int(post) if post else None}

