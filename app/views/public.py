"""The public notice board (公示栏) at /public/: no login. Published 三单 per community, units'
public commitments and their fulfilment, published star ratings, meeting schedules and the
published annual assessments (年度考核: the ranking and the scores by indicator).

Nobody is logged in here, and an anonymous principal may read no business rows through the
scope filter; so the board reads inside `unscoped()` and says itself, in every query, which
rows are public: published statuses only, live rows only (the soft-delete filter is part of
the scope filter it leaves aside). No personal data: residents' and members' names are
masked (张*), no phone, no ID number, no minutes; numbers that look like a phone or an ID
number in free text are masked too.
"""
from __future__ import annotations

import re
from datetime import timedelta

from flask import Response, abort, current_app, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from sqlalchemy import and_, func, select

from app import clock, validators
from app.errors import DomainError
from app.exports import XLSX_TYPE
from app.extensions import db
from app.models.cobuild import RatingStatus, StarRating
from app.models.lists import (
    NEED_DONE,
    NEED_STATUSES,
    WISH_PUBLISHED,
    MicroWish,
    Need,
    NeedStatus,
    Resource,
    ResourceStatus,
    ServiceItem,
    ServiceStatus,
)
from app.models.meetings import JointBody, Meeting, MeetingStatus
from app.models.org import Dictionary, Member, Organization, Unit
from app.security.login_guard import client_address
from app.security.scope import unscoped
from app.services import assessment, inspections, intake

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
RESOURCE_PUBLIC = (ResourceStatus.PUBLISHED,)
SERVICE_PUBLIC = (ServiceStatus.PUBLISHED, ServiceStatus.RUNNING, ServiceStatus.COMPLETED)
# A need is on the public 需求清单 once the platform has accepted it (平台接单).
NEED_PUBLIC = tuple(s for s in NEED_STATUSES if s not in (NeedStatus.NEW, NeedStatus.REJECTED))
RATING_PUBLIC = RatingStatus.PUBLISHED
SECTION_LIMIT = 100
RECENT_MEETING_DAYS = 90
# What a resident types between the digits of a number: spaces (ideographic too), dots, dashes
# and slashes, in their half- and full-width forms; digits may be full-width (０-９).
_DIGIT = "[0-9\uff10-\uff19]"
_SEP = "[\\s.\\-/\u3000\uff0e\uff0d\u2010-\u2015\u00b7\u30fb\uff0f]{0,3}"
_EDGE_BEFORE = "(?<![0-9\uff10-\uff19])"
_EDGE_AFTER = "(?![0-9\uff10-\uff19])"
# A mobile number is 11 digits from 13x-19x; an 身份证号 is 17 digits and a digit or X; a
# landline starts with its 0 area code. Dates (2026-12-06, 2026.12.06), year ranges
# (2025-2026) and amounts have neither the length nor the leading digits of these: a pattern
# of "any long run of digits and dashes" masked them too ("2026-12-06" → "202****").
_PERSONAL_NUMBER = re.compile("|".join([
    # 身份证号: first, so that an ID's leading digits are never read as a mobile number
    _EDGE_BEFORE + _DIGIT + f"(?:{_SEP}{_DIGIT}){{16}}{_SEP}[0-9\uff10-\uff19Xx\uff38\uff58]"
    + "(?![0-9\uff10-\uff19A-Za-z])",
    # mobile, optionally after +86 / 0086
    _EDGE_BEFORE + "(?:(?:\\+|\uff0b|00)86" + _SEP + ")?[1\uff11]" + _SEP
    + "[3-9\uff13-\uff19]" + f"(?:{_SEP}{_DIGIT}){{9}}" + _EDGE_AFTER,
    # landline with its area code: 0591-87654321, (0591) 8765 4321
    _EDGE_BEFORE + "[(\uff08]?[0\uff10]" + f"{_DIGIT}{{2,3}}" + "[)\uff09]?" + _SEP
    + _DIGIT + f"(?:{_SEP}{_DIGIT}){{6,7}}" + _EDGE_AFTER,
]))


def masked(name: str | None) -> str:
    """A person's name as the public sees it: the surname and stars (张*, 欧阳**)."""
    name = (name or "").strip()
    return name[:1] + "*" * (len(name) - 1) if name else ""


def scrubbed(text: str | None) -> str:
    """Free text with any phone- or ID-like number masked whole: what stays of it (a prefix)
    would tell the operator and the region, and separators would survive a partial mask."""
    return _PERSONAL_NUMBER.sub("****", text or "")


def _scrub(row, *fields) -> dict:
    """A board row with its free-text fields scrubbed: every one the page shows."""
    values = row._asdict()
    return {**values, **{name: scrubbed(values[name]) for name in fields}}


def _live(*models):
    return and_(*[model.deleted_on.is_(None) for model in models])


# A search term longer than any name is no name.
SEARCH_MAX = 50


def _communities(session, term: str = ""):
    """Streets and their communities (live, active), in tree order; with a search term, the
    communities whose name (or short name) holds it, and every community of a street whose
    name holds it — a street without any is left out."""
    rows = session.execute(
        select(Organization.id, Organization.name, Organization.short_name, Organization.type,
               Organization.parent_id)
        .where(Organization.type.in_(("street", "community")), Organization.active.is_(True),
               _live(Organization))
        .order_by(Organization.path)).all()
    streets = {r.id: {"id": r.id, "name": r.name, "communities": [],
                      "found": bool(term) and term in r.name}
               for r in rows if r.type == "street"}
    for r in rows:
        street = streets.get(r.parent_id)
        if r.type != "community" or street is None:
            continue
        if not term or street["found"] or term in r.name or term in (r.short_name or ""):
            street["communities"].append({"id": r.id, "name": r.name})
    return [street for street in streets.values() if street["communities"] or not term]


def _counts(session) -> dict[int, dict[str, int]]:
    """Per community, how many public items of each list (one GROUP BY each)."""
    counts: dict[int, dict[str, int]] = {}
    queries = {
        "resources": select(Unit.community_id, func.count(Resource.id))
        .join(Unit, Unit.id == Resource.unit_id)
        .where(Resource.status.in_(RESOURCE_PUBLIC), _live(Resource, Unit))
        .group_by(Unit.community_id),
        "services": select(Unit.community_id, func.count(ServiceItem.id))
        .join(Unit, Unit.id == ServiceItem.provider_unit_id)
        .where(ServiceItem.status.in_(SERVICE_PUBLIC), _live(ServiceItem, Unit))
        .group_by(Unit.community_id),
        "needs": select(Need.community_id, func.count(Need.id))
        .where(Need.status.in_(NEED_PUBLIC), _live(Need)).group_by(Need.community_id),
        "wishes": select(MicroWish.community_id, func.count(MicroWish.id))
        .where(MicroWish.status.in_(WISH_PUBLISHED), _live(MicroWish))
        .group_by(MicroWish.community_id),
    }
    for key, stmt in queries.items():
        for community_id, n in session.execute(stmt):
            counts.setdefault(community_id, {})[key] = int(n)
    return counts


def community_board(session, community: Organization) -> dict:
    """Everything public about one community."""
    cid = community.id
    category = Dictionary.label.label("category")
    resources = session.execute(
        select(Resource.title, Resource.content, Resource.quantity, Resource.measure,
               Resource.available_from, Resource.available_to, Resource.year,
               Unit.name.label("unit"), category)
        .join(Unit, Unit.id == Resource.unit_id)
        .outerjoin(Dictionary, and_(Dictionary.id == Resource.category_id, _live(Dictionary)))
        .where(Unit.community_id == cid, Resource.status.in_(RESOURCE_PUBLIC),
               _live(Resource, Unit))
        .order_by(Resource.year.desc(), Resource.id.desc()).limit(SECTION_LIMIT)).all()
    services = session.execute(
        select(ServiceItem.title, ServiceItem.content, ServiceItem.status, ServiceItem.year,
               ServiceItem.start_date, ServiceItem.end_date, ServiceItem.place,
               ServiceItem.commitment, ServiceItem.fulfilment, Unit.name.label("unit"), category)
        .join(Unit, Unit.id == ServiceItem.provider_unit_id)
        .outerjoin(Dictionary, and_(Dictionary.id == ServiceItem.category_id, _live(Dictionary)))
        .where(Unit.community_id == cid, ServiceItem.status.in_(SERVICE_PUBLIC),
               _live(ServiceItem, Unit))
        .order_by(ServiceItem.year.desc(), ServiceItem.id.desc()).limit(SECTION_LIMIT)).all()
    needs = session.execute(
        select(Need.title, Need.urgency, Need.status, Need.created_on, Need.completed_on,
               Unit.name.label("unit"), category)
        .outerjoin(Unit, and_(Unit.id == Need.assigned_unit_id, _live(Unit)))
        .outerjoin(Dictionary, and_(Dictionary.id == Need.category_id, _live(Dictionary)))
        .where(Need.community_id == cid, Need.status.in_(NEED_PUBLIC), _live(Need))
        .order_by(Need.created_on.desc(), Need.id.desc()).limit(SECTION_LIMIT)).all()
    wishes = session.execute(
        select(MicroWish.resident_name, MicroWish.content, MicroWish.status,
               MicroWish.created_on, MicroWish.fulfilled_on, Unit.name.label("unit"),
               Member.name.label("member"))
        .outerjoin(Unit, and_(Unit.id == MicroWish.claimant_unit_id, _live(Unit)))
        .outerjoin(Member, and_(Member.id == MicroWish.claimant_member_id, _live(Member)))
        .where(MicroWish.community_id == cid, MicroWish.status.in_(WISH_PUBLISHED),
               _live(MicroWish))
        .order_by(MicroWish.created_on.desc(), MicroWish.id.desc()).limit(SECTION_LIMIT)).all()
    stars = _published_stars(session, cid)
    today = clock.today()
    meetings = session.execute(
        select(JointBody.name.label("body"), Meeting.type, Meeting.planned_date, Meeting.held_on,
               Meeting.status, Meeting.place)
        .join(JointBody, JointBody.id == Meeting.body_id)
        .where(JointBody.host_id == cid, _live(Meeting, JointBody),
               ((Meeting.status == MeetingStatus.PLANNED) & (Meeting.planned_date >= today))
               | ((Meeting.status == MeetingStatus.HELD)
                  & (Meeting.held_on >= today - timedelta(days=RECENT_MEETING_DAYS))))
        .order_by(Meeting.planned_date, Meeting.type).limit(SECTION_LIMIT)).all()
    return {
        "resources": [_scrub(r, "title", "content", "measure") for r in resources],
        "services": [_scrub(r, "title", "content", "place", "commitment", "fulfilment")
                     for r in services],
        "needs": [_scrub(r, "title") for r in needs],
        "wishes": [{"resident": masked(r.resident_name), "content": scrubbed(r.content),
                    "status": r.status, "created_on": r.created_on,
                    "fulfilled_on": r.fulfilled_on,
                    "claimant": r.unit or masked(r.member)} for r in wishes],
        "stars": stars,
        "upcoming": [_scrub(r, "place") for r in meetings if r.status == MeetingStatus.PLANNED],
        "held": [_scrub(r, "place") for r in meetings if r.status == MeetingStatus.HELD],
        # 季度督查: the published rounds that inspected it, each with its summary (names and
        # counts only) and its text scrubbed of numbers that look personal.
        "inspections": [(_scrubbed_round(r), inspections.summary(session, r))
                        for r in inspections.published_rounds(session, community)],
    }


def _scrubbed_round(inspection):
    inspection.public_summary = scrubbed(inspection.summary)
    return inspection


def _period_label(code: str | None) -> str | None:
    if code is None:
        return None
    return f"{code[:4]}年第{code[-1]}季度" if "Q" in code else f"{code}年度"


def _published_stars(session, cid: int) -> dict:
    """The star section: the latest quarter and the latest year published for the community's
    units and members — one row per subject with both, units first, then members (masked),
    the most stars first. Older periods stay on the panel: a board shows where things stand."""
    subjects = (("unit", Unit, StarRating.unit_id), ("member", Member, StarRating.member_id))
    latest = {}
    for subject, model, column in subjects:
        for kind, code in session.execute(
                select(StarRating.period_kind, func.max(StarRating.period))
                .join(model, model.id == column)
                .where(StarRating.subject_type == subject, model.community_id == cid,
                       StarRating.status == RATING_PUBLIC, _live(StarRating, model))
                .group_by(StarRating.period_kind)):
            latest[kind] = max(latest.get(kind, code), code)
    quarter, year = latest.get("quarter"), latest.get("year")
    rows = {"unit": {}, "member": {}}
    if quarter or year:
        for subject, model, column in subjects:
            for pk, name, period, stars in session.execute(
                    select(model.id, model.name, StarRating.period, StarRating.stars)
                    .join(model, model.id == column)
                    .where(StarRating.subject_type == subject, model.community_id == cid,
                           StarRating.status == RATING_PUBLIC, _live(StarRating, model),
                           StarRating.period.in_([p for p in (quarter, year) if p]))):
                row = rows[subject].setdefault(pk, {
                    "name": name if subject == "unit" else masked(name),
                    "quarter": "", "year": ""})  # "": no published rating of that period
                row["quarter" if period == quarter else "year"] = stars

    def ranked(found):
        return sorted(found.values(), key=lambda r: (-(r["year"] or 0), -(r["quarter"] or 0),
                                                     r["name"]))[:SECTION_LIMIT]
    return {"quarter": _period_label(quarter), "year": _period_label(year),
            "units": ranked(rows["unit"]), "members": ranked(rows["member"])}


# The public index lists this many of the latest published inspection rounds.
INDEX_ROUNDS = 10


class PublicView(BaseView):
    """No login and no permission: every method here shows only what is public."""

    route_base = "/public"
    default_view = "index"

    @expose("/")
    def index(self):
        session = db.session
        term = (request.args.get("q") or "").strip()[:SEARCH_MAX]
        with unscoped():
            streets = _communities(session, term)
            counts = _counts(session)
            # The latest published rounds: names and counts, each community's page for more.
            rounds = [(r, inspections.summary(session, r))
                      for r in inspections.published_rounds(session, limit=INDEX_ROUNDS)]
        return self.render_template("public/index.html", streets=streets, counts=counts,
                                    term=term, assessments=assessment.published_years(session),
                                    rounds=rounds)

    @expose("/assessment/<int:year>/<level>")
    def assessment(self, year, level):
        """A year's published assessment of a level: the ranking and the scores by indicator
        (names of communities and units, no person), nothing not published."""
        ranking = assessment.published_ranking(db.session, year, level)
        if ranking is None:
            abort(404)
        return self.render_template("public/assessment.html", ranking=ranking,
                                    title=assessment.title_of(ranking))

    @expose("/assessment/<int:year>/<level>.<fmt>")
    def assessment_document(self, year, level, fmt):
        """The published ranking as .xlsx or .docx (made from what is published, here: a
        ranking is a table of a few thousand rows at most)."""
        ranking = assessment.published_ranking(db.session, year, level)
        makers = {"xlsx": (assessment.xlsx_bytes, XLSX_TYPE), "docx": (assessment.docx_bytes, DOCX_TYPE)}
        if ranking is None or fmt not in makers:
            abort(404)
        make, kind = makers[fmt]
        return Response(make(ranking), mimetype=kind, headers={
            "Content-Disposition": f"attachment; filename={assessment.document_name(ranking, fmt)}"})

    @expose("/community/<int:pk>")
    def community(self, pk):
        session = db.session
        with unscoped():
            community = session.execute(select(Organization).where(
                Organization.id == pk, Organization.type == "community",
                Organization.active.is_(True), _live(Organization))).scalar()
            if community is None:
                abort(404)
            street = session.execute(select(Organization.name).where(
                Organization.id == community.parent_id, _live(Organization))).scalar()
            board = community_board(session, community)
        return self.render_template("public/community.html", community=community,
                                    street=street, board=board)


def _number(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


class IntakeView(BaseView):
    """The resident's side, without login (app/services/intake.py): file a need or a wish from a
    community's or grid's QR code, follow it by its code, rate it once after 办结; and the
    printable QR poster of each node. Every free text a resident or a handler typed is shown
    escaped (Jinja's autoescape) and scrubbed of phone-like numbers; names masked."""

    route_base = "/public"

    def _message(self, title: str, message: str, status: int):
        response = current_app.make_response(self.render_template(
            "public/message.html", title=title, message=message))
        response.status_code = status
        if status == 429:
            response.headers["Retry-After"] = "3600"
        return response

    def _not_found(self):
        return self._message("未找到该社区", "该二维码对应的社区或网格不存在或已停用，"
                             "请联系社区工作人员获取新的二维码。", 404)

    def _limited(self, error):
        return self._message("请求过于频繁", str(error), 429)

    def _form(self, point, values=None, error=None, status=200):
        session = db.session
        question, token = intake.new_question()
        response = current_app.make_response(self.render_template(
            "public/intake.html", point=point, places=intake.places(session, point),
            categories=intake.categories(session), kinds=intake.KINDS, values=values or {},
            error=error, question=question, token=token,
            limit=current_app.config["UPLOAD_MAX_BYTES"] // (1024 * 1024)))
        response.status_code = status
        return response

    @expose("/intake/<code>", methods=["GET", "POST"])
    def intake(self, code):
        session = db.session
        point = intake.intake_point(session, code)
        if point is None:
            return self._not_found()
        if request.method == "GET":
            return self._form(point)
        form = request.form
        try:
            intake.within_limit("INTAKE_ADDRESS_LIMIT", "intake-address", client_address())
            report = intake.Report(kind=form.get("kind", ""),
                                   category_id=_number(form.get("category")),
                                   place_id=_number(form.get("place")),
                                   content=form.get("content", ""), name=form.get("name", ""),
                                   phone=form.get("phone", ""))
            report, place = intake.validate(session, point, report)
            intake.check_answer(form.get("check", ""), form.get("answer", ""))
            intake.within_limit("INTAKE_PHONE_LIMIT", "intake-phone", report.phone)
            sent = request.files.get("photo")
            photo = intake.check_photo(sent.filename if sent else None,
                                       sent.stream if sent else None)
            filed = intake.file_report(session, point, report, place, photo)
        except intake.Limited as error:
            return self._limited(error)
        except DomainError as error:
            return self._form(point, form, error, 400)
        return redirect(url_for("IntakeView.track", code=filed.code,
                                filed="repeat" if filed.repeated else "new"))

    def _tracked(self, code):
        intake.within_limit("TRACK_ADDRESS_LIMIT", "track-address", client_address())
        return intake.tracked(db.session, code)

    def _track_page(self, row, error=None, status=200):
        session = db.session
        with unscoped():
            community = row.community.name if row.community is not None else ""
            category = getattr(row, "category", None)
        is_need = isinstance(row, Need)
        response = current_app.make_response(self.render_template(
            "public/track.html", row=row, is_need=is_need, community=community,
            category=category.label if category is not None else "",
            content=scrubbed(row.content), name=masked(getattr(row, "requester_name", None)
                                                        or getattr(row, "resident_name", None)),
            phone=validators.mask_phone(getattr(row, "requester_phone", None)
                                        or getattr(row, "resident_phone", None)),
            steps=intake.need_steps(row) if is_need else [],
            unit=intake.handling_unit(session, row) if is_need else "",
            result=scrubbed(row.result) if is_need else "",
            may_rate=is_need and row.status in NEED_DONE and row.resident_satisfaction is None,
            filed=request.args.get("filed"), error=error))
        response.status_code = status
        return response

    @expose("/track/<code>")
    def track(self, code):
        try:
            row = self._tracked(code)
        except intake.Limited as error:
            return self._limited(error)
        if row is None:
            return self._message("查询码无效", "没有找到该查询码对应的事项，请核对后重试。", 404)
        return self._track_page(row)

    @expose("/track/<code>/rate", methods=["POST"])
    def rate(self, code):
        try:
            row = self._tracked(code)
        except intake.Limited as error:
            return self._limited(error)
        if not isinstance(row, Need):
            return self._message("查询码无效", "没有找到该查询码对应的需求，请核对后重试。", 404)
        try:
            intake.rate(db.session, row, request.form.get("satisfaction"),
                        request.form.get("comment"))
        except DomainError as error:
            db.session.expire_all()
            return self._track_page(intake.tracked(db.session, code), error, 400)
        return redirect(url_for("IntakeView.track", code=code))

    @expose("/poster/<code>")
    def poster(self, code):
        import segno

        point = intake.intake_point(db.session, code)
        if point is None:
            return self._not_found()
        url = current_app.config["PUBLIC_BASE_URL"] + url_for("IntakeView.intake", code=code)
        qr = segno.make(url, error="m")
        return self.render_template("public/poster.html", point=point, url=url,
                                    qr=qr.svg_inline(scale=1, border=2, omitsize=True))
