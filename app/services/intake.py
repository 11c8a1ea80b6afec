"""The resident's side of the loop (群众点单): a need or a micro-wish filed without login from a
community's (or grid's) QR code, followed by a tracking code, and rated once after 办结.

Nobody is logged in: the places offered and the rows read are those of the organisation code
in the URL, looked up `unscoped`; the rows are written as the system, with the resident's own
data on them (source 扫码点单). What keeps this from being abused:
- limits per client address and per phone in the login throttle's storage (Redis when
  configured, so every worker and host counts together): `INTAKE_ADDRESS_LIMIT`,
  `INTAKE_PHONE_LIMIT`, `TRACK_ADDRESS_LIMIT`;
- a human check that needs no outside service: an arithmetic question made by the server,
  its answer carried signed (HMAC under SECRET_KEY) in the form and usable once (its nonce
  is counted in the same storage);
- the same phone, category and community within 24 hours is one need: the repeat is counted
  on the first, and the resident is given the first one's code.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select, update

from app import clock
from app.errors import DomainError, committed
from app.models.lists import (
    NEED_DONE,
    PUBLIC_SOURCE,
    MicroWish,
    Need,
    NeedStatus,
)
from app.models.org import Dictionary, Organization
from app.security.principal import SYSTEM, acting_as
from app.security.scope import unscoped
from app.security.throttle import throttle
from app.services import audit, photos
from app.validators import ascii_digits

PLACE_TYPES = ("grid", "building")
POSTER_TYPES = ("community", *PLACE_TYPES)  # the nodes whose QR poster residents scan
KINDS = {"need": "需求（群众点单）", "wish": "微心愿"}
CHECK_SECONDS = 30 * 60
DUPLICATE_WINDOW = timedelta(hours=24)
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
TITLE_LENGTH = 30


class Limited(DomainError):
    """Over a public limit: answered 429 with a Chinese page."""


# --- where: the organisation of the code and the places below it -------------------------------

@dataclass(frozen=True)
class IntakePoint:
    community: Organization
    node: Organization  # the community itself, or the grid/building whose poster was scanned


def intake_point(session, code: str) -> IntakePoint | None:
    """The live, active community (or grid/building below one) of `code`, else None."""
    with unscoped():
        node = session.execute(select(Organization).where(
            Organization.code == code, Organization.active.is_(True),
            Organization.deleted_on.is_(None))).scalar()
        if node is None or node.type not in POSTER_TYPES:
            return None
        if node.type == "community":
            return IntakePoint(node, node)
        ids = [int(part) for part in node.path.strip("/").split("/") if part]
        community = session.execute(select(Organization).where(
            Organization.id.in_(ids), Organization.type == "community",
            Organization.active.is_(True), Organization.deleted_on.is_(None))).scalar()
        return IntakePoint(community, node) if community is not None else None


def places(session, point: IntakePoint) -> list[Organization]:
    """The grids and buildings a resident may name: below the scanned node, live and active."""
    with unscoped():
        return list(session.execute(select(Organization).where(
            Organization.path.like(point.node.path + "%"), Organization.type.in_(PLACE_TYPES),
            Organization.active.is_(True), Organization.deleted_on.is_(None))
            .order_by(Organization.path)).scalars())


def categories(session) -> list[Dictionary]:
    with unscoped():
        return list(session.execute(select(Dictionary).where(
            Dictionary.kind == "need_category", Dictionary.active.is_(True),
            Dictionary.deleted_on.is_(None)).order_by(Dictionary.order, Dictionary.id)).scalars())


# --- the human check ---------------------------------------------------------------------------

def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="gongjian-human-check")


def _digest(nonce: str, answer: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{nonce}:{answer}".encode(), hashlib.sha256).hexdigest()


def new_question() -> tuple[str, str]:
    """(the question, the signed token the form carries back)."""
    a, b = secrets.randbelow(9) + 1, secrets.randbelow(9) + 1
    if secrets.randbelow(2):
        question, answer = f"{a} 加 {b} 等于几？", a + b
    else:
        a, b = max(a, b), min(a, b)
        question, answer = f"{a} 减 {b} 等于几？", a - b
    nonce = secrets.token_urlsafe(12)
    return question, _serializer().dumps({"n": nonce, "d": _digest(nonce, answer)})


def check_answer(token: str, answer: str) -> None:
    """Refuse a missing, wrong, stale or replayed answer (each question is answered once)."""
    try:
        payload = _serializer().loads(token or "", max_age=CHECK_SECONDS)
        nonce, digest = payload["n"], payload["d"]
    except (BadSignature, KeyError, TypeError):
        raise DomainError("验证题已过期，请回答新的验证题", "answer") from None
    if throttle().incr(throttle().key("intake-check", nonce), CHECK_SECONDS) > 1:
        raise DomainError("该验证题已使用过，请回答新的验证题", "answer")
    answer = (answer or "").strip()
    if not ascii_digits(answer) or not hmac.compare_digest(digest, _digest(nonce, int(answer))):
        raise DomainError("验证题答案不正确，请回答新的验证题", "answer")


# --- limits ------------------------------------------------------------------------------------

def within_limit(config_key: str, *identifiers) -> None:
    if not throttle().hit(current_app.config[config_key], *identifiers):
        raise Limited("提交过于频繁，请稍后再试。如有急事请直接联系社区。")


# --- filing --------------------------------------------------------------------------------------

@dataclass
class Report:
    kind: str = "need"
    category_id: int | None = None
    place_id: int | None = None
    content: str = ""
    name: str = ""
    phone: str = ""


def _clean_phone(phone: str) -> str:
    phone = re.sub(r"[\s\-]", "", phone or "")
    phone = phone.removeprefix("+86")
    if not (_MOBILE.match(phone) or _LANDLINE.match(phone)):
        raise DomainError("请填写正确的联系电话（11位手机号或带区号的固定电话）", "phone")
    return phone


def validate(session, point: IntakePoint, report: Report) -> tuple[Report, Organization | None]:
    """The report cleaned, and its place; Chinese refusals by field."""
    if report.kind not in KINDS:
        raise DomainError("请选择要提交的类型", "kind")
    content = (report.content or "").strip()
    if not content:
        raise DomainError("请填写情况描述", "content")
    if len(content) > 500:
        raise DomainError("情况描述不能超过500字", "content")
    name = (report.name or "").strip()
    if not name:
        raise DomainError("请填写您的称呼", "name")
    if len(name) > 20:
        raise DomainError("称呼不能超过20个字", "name")
    phone = _clean_phone(report.phone)
    place = None
    if report.place_id is not None:
        # Only a place of this community's tree below the scanned node: an id of another
        # community's grid, posted by hand, is refused like one that does not exist.
        place = next((p for p in places(session, point) if p.id == report.place_id), None)
        if place is None:
            raise DomainError("所选网格或楼栋不在本社区，请重新选择", "place")
    elif point.node.type in PLACE_TYPES:
        place = point.node
    category_id = None
    if report.kind == "need":
        category_id = report.category_id
        if category_id not in {c.id for c in categories(session)}:
            raise DomainError("请选择需求类别", "category")
    cleaned = Report(report.kind, category_id, place.id if place else None, content, name, phone)
    return cleaned, place


def check_photo(filename: str, stream) -> tuple[str, str, bytes] | None:
    """(name, content type, cleaned bytes) of the optional photo, or None when none was sent."""
    if not filename:
        return None
    from app.services.meetings import check_upload

    name, ext, data = check_upload(filename, stream, allowed={"jpg": "image/jpeg",
                                                               "jpeg": "image/jpeg",
                                                               "png": "image/png"},
                                   allowed_text="JPG 或 PNG 格式的照片")
    return name, ("image/png" if ext == "png" else "image/jpeg"), photos.cleaned(ext, data)


def _title(content: str) -> str:
    flat = " ".join(content.split())
    return flat[:TITLE_LENGTH] + ("…" if len(flat) > TITLE_LENGTH else "")


def new_code() -> str:
    """A tracking code: 128 random bits (22 URL-safe characters), unguessable."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class Filed:
    kind: str
    code: str
    repeated: bool = False


def _first_of_day(session, community_id: int, report: Report) -> Need | None:
    since = clock.utcnow() - DUPLICATE_WINDOW
    with unscoped():
        return session.execute(select(Need).where(
            Need.community_id == community_id, Need.requester_phone == report.phone,
            Need.category_id == report.category_id, Need.created_on >= since,
            Need.tracking_code.is_not(None), Need.deleted_on.is_(None))
            .order_by(Need.created_on, Need.id).limit(1)).scalar()


def file_report(session, point: IntakePoint, report: Report, place,
                photo: tuple[str, str, bytes] | None) -> Filed:
    """Store the resident's need (待受理, 扫码点单) or wish (待审核), or count a repeat of the
    same need within 24 hours on the first one; commit."""
    from app import storage

    with acting_as(SYSTEM), committed(session, "提交未成功，请稍后重试"):
        if report.kind == "need":
            first = _first_of_day(session, point.community.id, report)
            if first is not None:
                session.execute(update(Need).where(Need.id == first.id).values(
                    repeat_reports=Need.repeat_reports + 1)
                    .execution_options(synchronize_session=False))
                audit.record(session, "update", "need", first.id,
                             {"repeat_reports": [first.repeat_reports, first.repeat_reports + 1]})
                return Filed("need", first.tracking_code, repeated=True)
            row = Need(source=PUBLIC_SOURCE, requester_name=report.name,
                       requester_phone=report.phone, community_id=point.community.id,
                       grid_id=place.id if place else None, category_id=report.category_id,
                       title=_title(report.content), content=report.content,
                       status=NeedStatus.NEW, tracking_code=new_code())
            if photo is not None:
                name, content_type, data = photo
                row.photo_id = storage.save([data], name, content_type, session=session).id
        else:
            row = MicroWish(resident_name=report.name, resident_phone=report.phone,
                            community_id=point.community.id,
                            grid_id=place.id if place else None, content=report.content,
                            tracking_code=new_code())
        session.add(row)
        session.flush()
    return Filed(report.kind, row.tracking_code)


# --- tracking and the resident's rating ---------------------------------------------------------

STEPS = (("受理", "accepted_on"), ("派单", "dispatched_on"), ("接单", "taken_on"),
         ("办结", "completed_on"))


def tracked(session, code: str):
    """The need or wish of a tracking code (None: no such code)."""
    if not code or len(code) > 32:
        return None
    with unscoped():
        for model in (Need, MicroWish):
            row = session.execute(select(model).where(model.tracking_code == code,
                                                      model.deleted_on.is_(None))).scalar()
            if row is not None:
                return row
    return None


def need_steps(need: Need) -> list[dict]:
    """The loop's steps with the date each was reached (None: not yet)."""
    steps = [{"name": name, "on": getattr(need, attr)} for name, attr in STEPS]
    visited = need.visited_on or need.resident_rated_on
    steps.append({"name": "回访", "on": visited})
    return steps


def handling_unit(session, need: Need) -> str:
    if need.status not in (NeedStatus.DISPATCHED, NeedStatus.IN_HAND, *NEED_DONE):
        return ""
    with unscoped():
        if need.assigned_unit is not None:
            return need.assigned_unit.name
        return "社区党员志愿者" if need.assigned_members else ""


def rate(session, need: Need, satisfaction: str, comment: str) -> None:
    """The resident's one rating after 办结 (stored as the resident's, apart from the
    community's 回访)."""
    try:
        score = int(satisfaction)
    except (TypeError, ValueError):
        score = 0
    if not 1 <= score <= 5:
        raise DomainError("请选择满意度（1到5分）", "satisfaction")
    comment = (comment or "").strip()
    if len(comment) > 500:
        raise DomainError("评价意见不能超过500字", "comment")
    if need.resident_satisfaction is not None:
        raise DomainError("您已经评价过了，每件事只能评价一次。感谢您的反馈！", "satisfaction")
    if need.status not in NEED_DONE:
        raise DomainError("事项办结后才能评价，请耐心等待", "satisfaction")
    with acting_as(SYSTEM), committed(session, "提交未成功，请稍后重试"):
        # Once: the row changes only while it has no rating (two posts at once: one wins).
        done = session.execute(update(Need).where(
            Need.id == need.id, Need.resident_satisfaction.is_(None),
            Need.status.in_(NEED_DONE)).values(
            resident_satisfaction=score, resident_comment=comment or None,
            resident_rated_on=clock.utcnow().replace(microsecond=0))
            .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            raise DomainError("您已经评价过了，每件事只能评价一次。感谢您的反馈！", "satisfaction")
        audit.record(session, "update", "need", need.id,
                     {"resident_satisfaction": [None, score]})
