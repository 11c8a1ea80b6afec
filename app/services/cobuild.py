"""Co-building: the workflows of agreements, registrations, claims, service records and star
ratings (DOMAIN.md §3), the points ledger, the agreements' scanned files, the star-rating
computation and the co-building summaries of a unit's and a member's page."""
from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app
from sqlalchemy import Select, and_, case, func, select, true
from sqlalchemy.orm import object_session

from app import clock, storage
from app.errors import DomainError, committed
from app.models.cobuild import (
    Agreement,
    AgreementStatus,
    ClaimStatus,
    MemberRegistration,
    MemberRegistrationStatus,
    PointEntry,
    PointRule,
    PostClaim,
    RatingStatus,
    RecordStatus,
    ServicePost,
    ServiceRecord,
    StarRating,
    UnitRegistration,
    UnitRegistrationStatus,
)
from app.models.lists import (
    NEED_DONE,
    Need,
    Resource,
    ResourceStatus,
    ServiceItem,
    ServiceStatus,
)
from app.models.meetings import PRESENT, Attendance, BodyMember, Meeting, MeetingStatus
from app.models.org import Member, MemberStatus, Unit, UnitStatus
from app.models.rollups import UnitOnesCell
from app.security.roles import ADMIN_GROUP, LIAISON_GROUP, MEMBER_GROUP, RATER_GROUP
from app.security.scope import Principal, current_principal, may_write, owner_clause, unscoped
from app.services import audit
from app.services.meetings import _quarter_of, attendance_measure
from app.services.workflow import Field, Transition, Workflow
from app.validators import four_digit_year

REASON = Field("reason", "原因", "textarea", required=True)


def _now() -> datetime:
    return clock.utcnow().replace(microsecond=0)


def quarter_of(day: date) -> str:
    """The ledger's period of a day, e.g. 2026Q3."""
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


# --- agreements ------------------------------------------------------------------------------

def _sign(agreement, data, principal):
    signed_on = data["signed_on"]
    if signed_on > clock.today():
        raise DomainError("签订日期不能晚于今天", "signed_on")
    agreement.signed_on = signed_on


def _terminate(agreement, data, principal):
    agreement.terminate_reason = data["reason"]
    agreement.terminated_on = clock.today()


AGREEMENT_FLOW = Workflow(Agreement, (
    Transition("sign", "签订", (AgreementStatus.DRAFT,), AgreementStatus.SIGNED, ADMIN_GROUP, style="success", apply=_sign,
               fields=(Field("signed_on", "签订日期", "date", required=True),)),
    Transition("terminate", "终止协议", (AgreementStatus.DRAFT, AgreementStatus.SIGNED), AgreementStatus.TERMINATED, ADMIN_GROUP, apply=_terminate,
               fields=(Field("reason", "终止原因", "textarea", required=True),), style="danger"),
))


@dataclass
class ThreeOnes:
    """An agreement's 三个一 in a year (DOMAIN.md §1): signed and in force; the unit at a joint
    meeting in every quarter its bodies met; problems solved (needs it closed) against the
    agreement's yearly target."""

    year: int
    in_force: bool
    quarters_held: int
    quarters_attended: int
    needs_closed: int
    target: int

    @property
    def meetings_met(self) -> bool:
        return self.quarters_held > 0 and self.quarters_attended >= self.quarters_held

    @property
    def needs_met(self) -> bool:
        return self.needs_closed >= self.target

    @property
    def all_met(self) -> bool:
        return self.in_force and self.meetings_met and self.needs_met

    def as_dict(self) -> dict:
        """As the REST API answers it: the counts and each criterion met."""
        return {"year": self.year, "in_force": self.in_force,
                "quarters_held": self.quarters_held, "quarters_attended": self.quarters_attended,
                "meetings_met": self.meetings_met, "needs_closed": self.needs_closed,
                "target": self.target, "needs_met": self.needs_met, "all_met": self.all_met}


def three_ones_year(text) -> int:
    """The year an agreement's 三个一 is asked for: this year when not given; one not begun
    has nothing to count."""
    raw = str(text or "").strip()
    if not raw:
        return clock.today().year
    year = four_digit_year(raw)
    if year is None:
        raise DomainError("年度应为四位年份，如 2026", "year")
    if year > clock.today().year:
        raise DomainError(f"{year}年尚未开始，没有可统计的“三个一”", "year")
    return year


def _among(column, ids):
    """`column IN ids` where it narrows the rows down to a few subjects (a street's star
    rating, a unit's page) or to a subquery's; nothing where the run is for thousands (the
    city's assessment): grouping every row costs less than a list of 30,000 bound values, and
    the caller keeps its own ids of the result."""
    if isinstance(ids, Select):
        return column.in_(ids)
    ids = list(ids)
    return column.in_(ids) if len(ids) <= AMONG_LIMIT else true()


AMONG_LIMIT = 1000


class AgreementOnes:
    """The 三个一 of agreements in `year`, up to today (or up to `until`, if earlier: a star
    rating counts up to its period's end), as SQL: the agreements joined to their units'
    counts — the quarters in which a joint body the unit sits on met, of those the quarters it
    attended one (出席, 迟到), the needs it closed — each grouped per unit in a subquery (a
    unit has at most four quarters, where its meeting days were dozens). `select(*columns)`
    reads them for any set of agreements and groups them as its caller needs: per agreement
    (its page), per unit (the star rating), per community (the dashboard, the assessment) —
    one statement however many agreements. `units` (ids or a subquery) restricts the counts
    to those units. `rolled`: the units' counts of the whole year read from their rollup
    (app/rollups.py UnitOnes) — only for who sees all, and not with `until`."""

    def __init__(self, year: int, until: date | None = None, units=None, rolled: bool = False):
        self.start = start = date(year, 1, 1)
        self.end = end = min(date(year, 12, 31), clock.today(), until or date.max)
        self.rolled = rolled
        only = (lambda column: _among(column, units)) if units is not None else (lambda column: true())
        quarter = _quarter_of(Meeting.held_on)
        held_in = (Meeting.status == MeetingStatus.HELD, Meeting.held_on.between(start, end))
        # The quarters each body met in first (a few per body), then its member units': not
        # every member unit against every meeting day of its bodies.
        bodies = true() if units is None else Meeting.body_id.in_(
            select(BodyMember.body_id).where(only(BodyMember.unit_id)))
        met = (select(Meeting.body_id.label("body_id"), quarter.label("quarter")).distinct()
               .where(bodies, *held_in).subquery("met"))
        held = (select(BodyMember.unit_id.label("unit_id"), met.c.quarter).distinct()
                .select_from(BodyMember).join(met, met.c.body_id == BodyMember.body_id)
                .where(only(BodyMember.unit_id)).subquery("held"))
        attended = (select(Attendance.unit_id.label("unit_id"), quarter.label("quarter")).distinct()
                    .join(Meeting, Meeting.id == Attendance.meeting_id)
                    .where(only(Attendance.unit_id), Attendance.status.in_(PRESENT), *held_in)
                    .subquery("attended"))
        # Of the quarters held, those attended (a quarter attended at another body's meeting
        # only, with none of the unit's own bodies meeting, does not count).
        self._quarters = (select(held.c.unit_id, func.count().label("held"),
                                 func.count(attended.c.unit_id).label("attended"))
                          .select_from(held)
                          .outerjoin(attended, and_(attended.c.unit_id == held.c.unit_id,
                                                    attended.c.quarter == held.c.quarter))
                          .group_by(held.c.unit_id).subquery("quarters"))
        self._closed = (select(Need.assigned_unit_id.label("unit_id"),
                               func.count(Need.id).label("closed"))
                        .where(only(Need.assigned_unit_id), Need.status.in_(NEED_DONE),
                               Need.completed_on >= clock.day_begins(start),
                               Need.completed_on < clock.day_ends(end))
                        .group_by(Need.assigned_unit_id).subquery("closed"))
        if rolled:
            # The units' counts of the year from their rollup (app/rollups.py UnitOnes), for
            # who sees all: the same counts, kept rather than recounted from every meeting,
            # attendance and need of the year. Whether an agreement is in force stays live.
            cell = UnitOnesCell.__table__
            self._quarters = self._closed = (
                select(cell.c.unit_id, cell.c.quarters_held.label("held"),
                       cell.c.quarters_attended.label("attended"),
                       cell.c.needs_closed.label("closed"))
                .where(cell.c.year == year).subquery("ones"))
        self.quarters_held = func.coalesce(self._quarters.c.held, 0)
        self.quarters_attended = func.coalesce(self._quarters.c.attended, 0)
        self.needs_closed = func.coalesce(self._closed.c.closed, 0)
        self.target = func.coalesce(Agreement.yearly_target, 0)
        self.in_force = and_(Agreement.status == AgreementStatus.SIGNED,
                             Agreement.valid_from <= end, Agreement.valid_to >= start)
        self.meetings_met = and_(self.quarters_held > 0,
                                 self.quarters_attended >= self.quarters_held)
        self.needs_met = self.needs_closed >= self.target
        self.all_met = and_(self.in_force, self.meetings_met, self.needs_met)

    def select(self, *columns):
        stmt = (select(*columns).select_from(Agreement)
                .outerjoin(self._quarters, self._quarters.c.unit_id == Agreement.unit_id))
        if self._closed is self._quarters:  # rolled: one row per unit holds both
            return stmt
        return stmt.outerjoin(self._closed, self._closed.c.unit_id == Agreement.unit_id)

    def counts(self):
        """The columns `ThreeOnes` is made of, after the agreement's id."""
        return (case((self.in_force, 1), else_=0), self.quarters_held, self.quarters_attended,
                self.needs_closed, self.target)


def three_ones(session, agreements: Sequence[Agreement], year: int,
               until: date | None = None) -> dict[int, ThreeOnes]:
    """Each agreement's 三个一 in `year`, up to today (or up to `until`, if earlier), as
    `AgreementOnes` counts them — one query for all of them."""
    if not agreements:
        return {}
    ones = AgreementOnes(year, until, units={a.unit_id for a in agreements})
    rows = session.execute(ones.select(Agreement.id, *ones.counts()).where(
        Agreement.id.in_([a.id for a in agreements])))
    return {pk: ThreeOnes(year=year, in_force=bool(in_force), quarters_held=int(held),
                          quarters_attended=int(attended), needs_closed=int(closed),
                          target=int(target))
            for pk, in_force, held, attended, closed, target in rows}


# --- the agreements' scanned files ----------------------------------------------------------

# Checked by content (the first bytes) as well as by name: a renamed file is refused.
FILE_SIGNATURES = {"pdf": b"%PDF-", "jpg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}
FILE_EXTENSIONS = {"pdf": "pdf", "jpg": "jpg", "jpeg": "jpg", "png": "png"}
FILE_MIMETYPES = {"pdf": "application/pdf", "jpg": "image/jpeg", "png": "image/png"}


def size_text(size: int) -> str:
    return f"{size / 1024 / 1024:g} MB" if size >= 1024 * 1024 else f"{size / 1024:g} KB"


def store_agreement_file(session, agreement, filename: str | None, stream) -> None:
    """Keep the scanned signed agreement and commit; refuse (nothing kept) a file too large, of
    another type, or whose content is not what its name says."""
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    if not name:
        raise DomainError("请选择要上传的协议扫描件", "file")
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    kind = FILE_EXTENSIONS.get(extension)
    if kind is None:
        raise DomainError("只能上传 PDF、JPG 或 PNG 格式的协议扫描件", "file")
    data = stream.read(limit + 1)
    if not data:
        raise DomainError("上传的文件是空文件", "file")
    if len(data) > limit:
        raise DomainError(f"文件大小超过上限（{size_text(limit)}），请压缩后再上传", "file")
    if not data.startswith(FILE_SIGNATURES[kind]):
        raise DomainError(f"文件内容不是有效的 {kind.upper()} 文件（扩展名与内容不符），"
                          "请上传协议扫描件原件", "file")
    with committed(session, "该协议已被他人修改，扫描件未保存；请刷新后重试"):
        # The file and the record commit together (a bucket that refuses the file refuses both).
        replaced = agreement.file_id
        stored = storage.save([data], name, FILE_MIMETYPES[kind], session=session)
        agreement.file_name = name[-200:]
        agreement.file_id = stored.id
        agreement.file_path = None
        agreement.file_type = kind
        agreement.file_size = len(data)
        agreement.file_uploaded_on = _now()
        if replaced is not None:
            storage.delete_id(replaced, session)


def agreement_file(agreement):
    """The agreement's stored file (app/storage.py), or None when there is none."""
    if agreement.file_id is None:
        return None
    return storage.get(agreement.file_id)


# --- dual registration ------------------------------------------------------------------------

def _confirm(registration, data, principal):
    registration.confirmed_by_id = principal.user_id
    registration.confirmed_on = _now()


def _cancel(registration, data, principal):
    registration.cancel_reason = data["reason"]


def _transfer_out(registration, data, principal):
    """Leaving the community also ends the member's posts there."""
    registration.transferred_on = data.get("transferred_on") or clock.today()
    registration.transfer_note = data.get("note")
    session = object_session(registration)
    claims = session.execute(select(PostClaim).join(ServicePost, PostClaim.post_id == ServicePost.id)
                             .where(PostClaim.member_id == registration.member_id,
                                    PostClaim.status == ClaimStatus.CLAIMED,
                                    ServicePost.community_id == registration.community_id)).scalars()
    for claim in claims:
        _withdraw(claim, {}, principal)
        claim.status = ClaimStatus.WITHDRAWN


UNIT_REGISTRATION_FLOW = Workflow(UnitRegistration, (
    Transition("confirm", "确认报到", (UnitRegistrationStatus.PENDING,), UnitRegistrationStatus.REGISTERED, ADMIN_GROUP, apply=_confirm, style="success"),
    Transition("cancel", "注销报到", (UnitRegistrationStatus.PENDING, UnitRegistrationStatus.REGISTERED), UnitRegistrationStatus.CANCELLED, ADMIN_GROUP, apply=_cancel,
               fields=(Field("reason", "注销原因", "textarea", required=True),), style="danger"),
))

MEMBER_REGISTRATION_FLOW = Workflow(MemberRegistration, (
    Transition("confirm", "确认报到", (MemberRegistrationStatus.PENDING,), MemberRegistrationStatus.REGISTERED, ADMIN_GROUP, apply=_confirm, style="success"),
    Transition("transfer_out", "转出", (MemberRegistrationStatus.REGISTERED,), MemberRegistrationStatus.TRANSFERRED, ADMIN_GROUP, apply=_transfer_out,
               fields=(Field("transferred_on", "转出日期", "date"),
                       Field("note", "转出说明（转往何处）", "textarea")), style="warning"),
    Transition("cancel", "注销报到", (MemberRegistrationStatus.PENDING, MemberRegistrationStatus.REGISTERED), MemberRegistrationStatus.CANCELLED, ADMIN_GROUP, apply=_cancel,
               fields=(Field("reason", "注销原因", "textarea", required=True),), style="danger"),
))


# --- service posts: claims ----------------------------------------------------------------------

def _withdraw(claim, data, principal):
    claim.withdrawn_on = clock.today()
    claim.free_place(object_session(claim))


POST_CLAIM_FLOW = Workflow(PostClaim, (
    Transition("withdraw", "退出认领", (ClaimStatus.CLAIMED,), ClaimStatus.WITHDRAWN, MEMBER_GROUP | ADMIN_GROUP, apply=_withdraw,
               style="warning", confirm="确定退出该服务岗位吗？"),
))


# --- service records and the points ledger ---------------------------------------------------

def _take_move(record, status: str) -> None:
    """Make the move's compare-and-set on the status now, before any entry is written: of two
    admins certifying at once, the second stops here (`Conflict`) and pays nothing."""
    record.status = status
    object_session(record).flush()


def _certify(record, data, principal):
    record.certified_by_id = principal.user_id
    record.certified_on = _now()
    record.reject_reason = None
    record.pay_cycle = (record.pay_cycle or 0) + 1
    _take_move(record, RecordStatus.CERTIFIED)
    pay_service_record(object_session(record), record, principal)


def _reject_record(record, data, principal):
    record.reject_reason = data["reason"]


def _revoke(record, data, principal):
    record.revoke_reason = data["reason"]
    record.certified_by_id = None
    record.certified_on = None
    _take_move(record, RecordStatus.PENDING)
    reverse_service_record(object_session(record), record, principal, data["reason"])


SERVICE_RECORD_FLOW = Workflow(ServiceRecord, (
    Transition("certify", "认证", (RecordStatus.PENDING,), RecordStatus.CERTIFIED, ADMIN_GROUP, apply=_certify, style="success",
               confirm="确定认证该服务记录并按积分规则记分吗？"),
    Transition("reject", "驳回", (RecordStatus.PENDING,), RecordStatus.REJECTED, ADMIN_GROUP, apply=_reject_record,
               fields=(Field("reason", "驳回原因", "textarea", required=True),), style="danger"),
    Transition("revoke", "撤销认证", (RecordStatus.CERTIFIED,), RecordStatus.PENDING, ADMIN_GROUP, apply=_revoke,
               fields=(Field("reason", "撤销原因", "textarea", required=True),), style="warning"),
    Transition("resubmit", "重新提交", (RecordStatus.REJECTED,), RecordStatus.PENDING, MEMBER_GROUP | LIAISON_GROUP | ADMIN_GROUP),
))


def _subject_of(rule: PointRule, member: Member) -> tuple[str, int] | None:
    """Who a rule pays for a member's service: the member, or the member's unit (records of
    service flow back to the unit, DOMAIN.md §1)."""
    if rule.subject == "member":
        return "member", member.id
    if member.work_unit_id:
        return "unit", member.work_unit_id
    return None


def pay_service_record(session, record, principal: Principal) -> list[PointEntry]:
    """One pay entry per active rule and subject for this certification (payment cycle)."""
    rules = session.execute(select(PointRule).where(PointRule.event == "service_record",
                                                    PointRule.active)
                            .order_by(PointRule.id)).scalars().all()
    member = record.member
    entries = []
    for rule in rules:
        subject = _subject_of(rule, member)
        delta = rule.points_for(record.hours)
        if subject is None or not delta:
            continue
        kind, subject_id = subject
        entries.append(PointEntry(
            subject_type=kind, member_id=subject_id if kind == "member" else None,
            unit_id=subject_id if kind == "unit" else None, rule_id=rule.id, kind="pay",
            delta=delta, reason=f"服务记录认证：{record.served_on} 服务{record.hours}小时（{rule.name}）",
            source_type="service_record", source_id=record.id, cycle=record.pay_cycle,
            period=quarter_of(record.served_on), community_id=member.community_id,
            operator_id=principal.user_id))
    session.add_all(entries)
    return entries


def reverse_service_record(session, record, principal: Principal, reason: str) -> list[PointEntry]:
    """A compensating entry for each payment of the current cycle: nothing is deleted."""
    with unscoped():
        pays = session.execute(select(PointEntry).where(
            PointEntry.source_type == "service_record", PointEntry.source_id == record.id,
            PointEntry.cycle == record.pay_cycle, PointEntry.kind == "pay",
            PointEntry.deleted_on.is_(None))).scalars().all()
    entries = [PointEntry(
        subject_type=pay.subject_type, member_id=pay.member_id, unit_id=pay.unit_id,
        rule_id=pay.rule_id, kind="reverse", delta=-pay.delta, reason=f"撤销认证冲正：{reason}"[:200],
        source_type=pay.source_type, source_id=pay.source_id, cycle=pay.cycle, period=pay.period,
        community_id=pay.community_id, operator_id=principal.user_id) for pay in pays]
    session.add_all(entries)
    return entries


# --- star ratings -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """A quarter (2026Q1) or a year (2026)."""

    code: str
    year: int
    quarter: int | None

    @property
    def kind(self) -> str:
        return "year" if self.quarter is None else "quarter"

    @property
    def quarters(self) -> list[str]:
        return [f"{self.year}Q{q}" for q in ((self.quarter,) if self.quarter else (1, 2, 3, 4))]

    @property
    def start(self) -> date:
        return date(self.year, 3 * (self.quarter or 1) - 2, 1)

    @property
    def end(self) -> date:
        month = 3 * self.quarter if self.quarter else 12
        following = date(self.year + (month == 12), month % 12 + 1, 1)
        return following - timedelta(days=1)

    @property
    def months(self) -> list[tuple[int, int]]:
        first = self.start.month
        return [(self.year, m) for m in range(first, self.end.month + 1)]

    @property
    def label(self) -> str:
        return f"{self.year}年第{self.quarter}季度" if self.quarter else f"{self.year}年度"


def parse_period(text: str, ended: bool = True) -> Period:
    """The period written as "2026Q1" or "2026"; one that has not ended is refused with the
    date it ends (`ended=False`, for a preview: one that has begun)."""
    match = re.fullmatch(r"\s*(\d{4})(?:\s*[Qq]([1-4]))?\s*", text or "")
    if not match:
        raise DomainError("评定期间应写作“2026Q1”（季度）或“2026”（年度）", "period")
    period = Period(match.group(0).strip().upper().replace(" ", ""), int(match.group(1)),
                    int(match.group(2)) if match.group(2) else None)
    if ended and period.end >= clock.today():
        raise DomainError(f"{period.label}于{period.end:%Y-%m-%d}结束，结束后才能评定", "period")
    if period.start > clock.today():
        raise DomainError(f"{period.label}于{period.start:%Y-%m-%d}开始，尚无可评定的数据", "period")
    return period


Measure = Callable[[object, Period, Sequence[int]], Mapping[int, "float | None"]]


@dataclass(frozen=True)
class RatingInput:
    """One input of a rating: `measure(session, period, ids)` gives each subject a value from 0
    to 1 (None: does not apply to it, left out of the weights). Its weight is the
    configuration's (STAR_WEIGHTS, `rating_weights`). Adding an input is appending one to
    `RATING_INPUTS` and giving it a weight."""

    name: str
    label: str
    subject: str  # "unit" or "member"
    measure: Measure


def _points(subject: str):
    column = PointEntry.unit_id if subject == "unit" else PointEntry.member_id

    def measure(session, period, ids):
        target = float(current_app.config["STAR_POINT_TARGETS"][subject]) * len(period.quarters)
        sums = dict(session.execute(
            select(column, func.sum(PointEntry.delta))
            .where(PointEntry.subject_type == subject, PointEntry.period.in_(period.quarters),
                   PointEntry.deleted_on.is_(None))
            .group_by(column)).all())
        return {i: min(1.0, max(0.0, float(sums.get(i) or 0) / target)) for i in ids}
    return measure


def unit_registration_rates(session, period, ids) -> dict[int, float | None]:
    """Each unit's in-service members registered in their home communities by the period's
    end ÷ its in-service members (None: it has none) — one GROUP BY per unit, the members
    joined to their registrations there (distinct: a member registered twice counts once)."""
    registered = (select(MemberRegistration.member_id, MemberRegistration.community_id).distinct()
                  .where(MemberRegistration.status == MemberRegistrationStatus.REGISTERED,
                         MemberRegistration.registered_on <= period.end,
                         MemberRegistration.deleted_on.is_(None)).subquery("registered"))
    rows = session.execute(
        select(Member.work_unit_id, func.count(Member.id), func.count(registered.c.member_id))
        .outerjoin(registered, and_(registered.c.member_id == Member.id,
                                    registered.c.community_id == Member.community_id))
        .where(_among(Member.work_unit_id, ids), Member.work_unit_id.is_not(None),
               Member.category == "在职", Member.status == MemberStatus.ACTIVE,
               Member.deleted_on.is_(None))
        .group_by(Member.work_unit_id))
    found = {unit_id: int(done) / int(total) for unit_id, total, done in rows if total}
    return {i: found.get(i) for i in ids}


def unit_completion_rates(session, period, ids) -> dict[int, float | None]:
    """Needs dispatched to each unit in the period and closed ÷ needs dispatched to it in the
    period (None: none was dispatched to it)."""
    totals, done = defaultdict(int), defaultdict(int)
    for unit_id, status in session.execute(select(Need.assigned_unit_id, Need.status).where(
            Need.assigned_unit_id.is_not(None), Need.deleted_on.is_(None),
            Need.dispatched_on >= clock.day_begins(period.start),
            Need.dispatched_on < clock.day_ends(period.end))):
        totals[unit_id] += 1
        done[unit_id] += status in NEED_DONE
    return {i: (done[i] / totals[i] if totals[i] else None) for i in ids}


def member_monthly_service(session, period, ids) -> dict[int, float]:
    """The share of the period's months in which the member served (三个一: once a month)."""
    months = defaultdict(set)
    for member_id, served_on in session.execute(
            select(ServiceRecord.member_id, ServiceRecord.served_on).where(
                ServiceRecord.status == RecordStatus.CERTIFIED, ServiceRecord.served_on >= period.start,
                ServiceRecord.served_on <= period.end, ServiceRecord.deleted_on.is_(None))):
        months[member_id].add((served_on.year, served_on.month))
    return {i: len(months[i]) / len(period.months) for i in ids}


def member_registered(session, period, ids) -> dict[int, float]:
    registered = set(session.execute(select(MemberRegistration.member_id).where(
        MemberRegistration.status == MemberRegistrationStatus.REGISTERED, MemberRegistration.registered_on <= period.end,
        MemberRegistration.deleted_on.is_(None))).scalars())
    return {i: 1.0 if i in registered else 0.0 for i in ids}


def unit_list_provision(session, period, ids) -> dict[int, float]:
    """三单 provision: half for a published entry on the unit's 资源清单 of the period's year,
    half for a service item of that year it provides that was published (and may since run
    or be done) — the two lists a unit files (DOMAIN.md §1)."""
    resources = set(session.execute(select(Resource.unit_id).distinct().where(
        _among(Resource.unit_id, ids), Resource.year == period.year,
        Resource.status == ResourceStatus.PUBLISHED, Resource.deleted_on.is_(None))).scalars())
    services = set(session.execute(select(ServiceItem.provider_unit_id).distinct().where(
        _among(ServiceItem.provider_unit_id, ids), ServiceItem.year == period.year,
        ServiceItem.status.in_((ServiceStatus.PUBLISHED, ServiceStatus.RUNNING,
                                ServiceStatus.COMPLETED)),
        ServiceItem.deleted_on.is_(None))).scalars())
    return {i: ((i in resources) + (i in services)) / 2 for i in ids}


def unit_three_ones(session, period, ids) -> dict[int, float]:
    """The agreement's 三个一 up to the period's end (`AgreementOnes`), as a share: signed and
    in force; the quarters with a joint meeting attended of those its bodies met in (left out
    when they met in none); needs closed against the yearly target, pro rata for the quarters
    of the year gone by the period's end. A unit without an agreement in force has not signed
    the first 一: 0. Its best agreement counts. One query for all units: a row of counts per
    agreement (a unit has one or two), the shares made here as the rating shows them."""
    ones = AgreementOnes(period.year, until=period.end, units=ids)
    rows = session.execute(ones.select(Agreement.unit_id, *ones.counts()).where(
        _among(Agreement.unit_id, ids), Agreement.status == AgreementStatus.SIGNED,
        Agreement.valid_from <= period.end, Agreement.valid_to >= period.start,
        Agreement.deleted_on.is_(None)))
    share_of_year = (period.quarter or 4) / 4
    best: dict[int, float] = {}
    for unit_id, in_force, held, attended, closed, target in rows:
        target = target * share_of_year
        parts = [1.0 if in_force else 0.0, 1.0 if not target else min(1.0, closed / target)]
        if held:
            parts.append(attended / held)
        best[unit_id] = max(best.get(unit_id, 0.0), sum(parts) / len(parts))
    return {i: best.get(i, 0.0) for i in ids}


RATING_INPUTS: list[RatingInput] = [
    RatingInput("points", "单位积分", "unit", _points("unit")),
    RatingInput("registration", "在职党员报到率", "unit", unit_registration_rates),
    RatingInput("completion", "派单办结率", "unit", unit_completion_rates),
    RatingInput("attendance", "联席会议出席率", "unit", attendance_measure),
    RatingInput("lists", "三单提供", "unit", unit_list_provision),
    RatingInput("three_ones", "协议三个一", "unit", unit_three_ones),
    RatingInput("points", "个人积分", "member", _points("member")),
    RatingInput("monthly_service", "按月服务", "member", member_monthly_service),
    RatingInput("registration", "到社区报到", "member", member_registered),
]
SUBJECT_LABELS = {"unit": "驻区单位", "member": "党员"}


def rating_weights() -> dict[str, dict[str, float]]:
    """The inputs' weights in force (STAR_WEIGHTS: a mapping, or its JSON from the environment),
    per subject: every input named, none negative, each subject's summing to 100 — otherwise a
    Chinese message and no rating is computed, previewed or written."""
    raw = current_app.config["STAR_WEIGHTS"]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise DomainError("星级评定权重设置（STAR_WEIGHTS）不是有效的 JSON，请联系管理员修正",
                              "period") from None
    if not isinstance(raw, Mapping):
        raise DomainError("星级评定权重设置（STAR_WEIGHTS）应按“驻区单位”“党员”分别给出各项权重",
                          "period")
    weights = {}
    for subject, label in SUBJECT_LABELS.items():
        given = raw.get(subject)
        names = {spec.name: spec.label for spec in RATING_INPUTS if spec.subject == subject}
        if not isinstance(given, Mapping):
            raise DomainError(f"星级评定权重设置缺少{label}的各项权重", "period")
        unknown = [str(name) for name in given if name not in names]
        missing = [names[name] for name in names if name not in given]
        if unknown or missing:
            raise DomainError(f"星级评定权重设置有误：{label}" + (
                f"缺少{'、'.join(missing)}的权重" if missing else
                f"没有名为{'、'.join(unknown)}的评分项"), "period")
        try:
            values = {name: float(given[name]) for name in names}
        except (TypeError, ValueError):
            raise DomainError(f"星级评定权重设置有误：{label}的权重应为数字", "period") from None
        if any(value < 0 for value in values.values()):
            raise DomainError(f"星级评定权重设置有误：{label}的权重不能为负数", "period")
        total = sum(values.values())
        if abs(total - 100) > 1e-6:
            raise DomainError(f"星级评定权重设置有误：{label}各项权重合计为{total:g}，应为100",
                              "period")
        weights[subject] = values
    return weights
# A unit below the floor on either of these is not rated (DOMAIN.md: the 95% rule).
FLOOR_INPUTS = {"registration": "在职党员报到率", "completion": "派单办结率"}


def _star_table() -> dict[int, float]:
    table = current_app.config["STAR_THRESHOLDS"]
    return {int(stars): float(score) for stars, score in table.items()}


def stars_for(score: float, table: Mapping[int, float]) -> int | None:
    reached = [stars for stars, minimum in table.items() if score >= minimum]
    return max(reached) if reached else None


def _score(value) -> Decimal:
    """A score as stored and shown: two decimals, halves rounded up (as by hand)."""
    return Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _weighted(values: list[tuple[RatingInput, float | None]], weights: Mapping[str, float]
              ) -> Decimal:
    total = sum(weights[spec.name] for spec, value in values if value is not None)
    if not total:
        return _score(0)
    return _score(100 * sum(weights[spec.name] * value for spec, value in values
                            if value is not None) / total)


# A subject with nothing to its name in the period (every input 0 or not applying) is not
# rated: the lowest star is for taking part, not for being on the register.
NO_DATA = "本期没有可评分的数据（各项均为零或不适用），不予评星"


def _floor_note(values: dict[str, float | None], floor: float) -> str | None:
    if floor <= 0:  # the floor is a district's own rule, off unless configured
        return None
    below = [f"{label}{values[name] * 100:.1f}%" for name, label in FLOOR_INPUTS.items()
             if values.get(name) is not None and values[name] < floor]
    if below:
        return f"{'、'.join(below)}，低于{floor * 100:g}%，不予评星"
    return None


def _quarter_ratings(session, period, subjects, weights):
    results = {}
    floor = float(current_app.config["STAR_RATING_FLOOR"])
    for subject, ids in subjects.items():
        specs = [spec for spec in RATING_INPUTS if spec.subject == subject]
        measured = {spec.name: spec.measure(session, period, ids) for spec in specs}
        for i in ids:
            values = [(spec, measured[spec.name].get(i)) for spec in specs]
            note = _floor_note({spec.name: v for spec, v in values}, floor) \
                if subject == "unit" else None
            if not any(v for spec, v in values if weights[subject][spec.name]):
                note = NO_DATA
            results[(subject, i)] = (_weighted(values, weights[subject]), note, [
                {"name": spec.name, "label": spec.label, "weight": weights[subject][spec.name],
                 "value": None if v is None else round(v, 4)} for spec, v in values])
    return results


def _year_ratings(session, period, subjects, weights):
    """The year's award from its four quarters as rated (a run of the year needs all four)."""
    rows = session.execute(select(StarRating.subject_type, StarRating.unit_id,
                                  StarRating.member_id, StarRating.period, StarRating.score)
                           .where(StarRating.period.in_(period.quarters),
                                  StarRating.deleted_on.is_(None))).all()
    missing = [q for q in period.quarters if q not in {row.period for row in rows}]
    if missing:
        raise DomainError(f"请先完成{period.year}年各季度的星级评定（尚未计算："
                          f"{'、'.join(missing)}）", "period")
    return _award(session, period, subjects, {
        (row.subject_type, row.unit_id or row.member_id, row.period): Decimal(row.score)
        for row in rows})


def _award(session, period, subjects, scores):
    """The year's award from its four quarters' scores: their mean (a quarter without a score
    counts 0); a unit's floor is checked on the whole year."""
    floor = float(current_app.config["STAR_RATING_FLOOR"])
    floors = {spec.name: spec.measure(session, period, subjects.get("unit", []))
              for spec in RATING_INPUTS if spec.subject == "unit" and spec.name in FLOOR_INPUTS}
    results = {}
    for subject, ids in subjects.items():
        for i in ids:
            quarters = [scores.get((subject, i, q), Decimal(0)) for q in period.quarters]
            note = _floor_note({name: values.get(i) for name, values in floors.items()}, floor) \
                if subject == "unit" else None
            if not any(quarters):
                note = NO_DATA
            results[(subject, i)] = (_score(sum(quarters) / 4), note, [
                {"name": q, "label": f"第{n}季度得分", "weight": 1, "value": float(s / 100)}
                for n, (q, s) in enumerate(zip(period.quarters, quarters), start=1)])
    return results


def _subjects(session) -> dict[str, list[int]]:
    """The subjects a run is for: those the acting user answers for (the unit directory is
    readable by all: its own units only; members by the session's scope)."""
    return {
        "unit": session.execute(select(Unit.id).where(
            Unit.status == UnitStatus.REGISTERED, owner_clause(Unit, current_principal()))
            .order_by(Unit.id)).scalars().all(),
        "member": session.execute(select(Member.id).where(Member.status == MemberStatus.ACTIVE)
                                  .order_by(Member.id)).scalars().all(),
    }


def preview_ratings(session, period_text: str) -> dict:
    """A preview (预览) of a period's ratings of the subjects in the user's scope: computed
    from the figures as they stand, shown, never stored — so allowed for a period that has not
    ended (one that has begun). A year's is the mean of its quarters computed now (those not
    begun count 0), whatever the quarters' stored ratings say. Nothing is written."""
    period = parse_period(period_text, ended=False)
    weights = rating_weights()
    table = _star_table()
    subjects = _subjects(session)
    with unscoped():
        if period.kind == "quarter":
            computed = _quarter_ratings(session, period, subjects, weights)
        else:
            scores = {}
            for code in period.quarters:
                quarter = Period(code, period.year, int(code[-1]))
                if quarter.start > clock.today():
                    continue
                for (subject, i), (score, _note, _inputs) in _quarter_ratings(
                        session, quarter, subjects, weights).items():
                    scores[(subject, i, code)] = score
            computed = _award(session, period, subjects, scores)
        names = {"unit": dict(session.execute(select(Unit.id, Unit.name).where(
            Unit.id.in_(subjects["unit"]))).all()) if subjects["unit"] else {}}
    # members' names as the user may read them (its scope)
    names["member"] = dict(session.execute(select(Member.id, Member.name).where(
        Member.id.in_(subjects["member"]))).all()) if subjects["member"] else {}
    rows = {"unit": [], "member": []}
    for (subject, i), (score, note, inputs) in computed.items():
        stars = None if note else stars_for(float(score), table)
        rows[subject].append({"subject_type": subject, "id": i, "name": names[subject].get(i),
                              "score": float(score), "stars": stars,
                              "note": note or (None if stars else "得分未达到一星标准"),
                              "inputs": inputs})
    for subject_rows in rows.values():
        subject_rows.sort(key=lambda row: (-row["score"], row["id"]))
    return {"period": period, "ended": period.end < clock.today(), "weights": weights,
            "units": rows["unit"], "members": rows["member"]}


def compute_ratings(session, period_text: str, progress=None, commit: bool = True) -> dict:
    """Compute (or recompute) a period's star ratings of the units and members in the acting
    user's scope, and commit (`commit=False`: flush only — the job commits them with its end,
    app/jobs.py). Only a period that has ended; a subject whose rating was reviewed or published
    is left as its raters have it (per subject: one street's publication binds no other).
    `progress(done, total)` is told the ratings written. Returns counts for the message."""
    period = parse_period(period_text)
    weights = rating_weights()  # weights not summing to 100: refused before anything is read
    table = _star_table()
    floor = float(current_app.config["STAR_RATING_FLOOR"])
    thresholds = json.dumps({"stars": {str(s): v for s, v in sorted(table.items(), reverse=True)},
                             "floor": floor, "weights": weights,
                             "point_targets": dict(current_app.config["STAR_POINT_TARGETS"])},
                            ensure_ascii=False)
    # The subjects are those the user answers for; the figures about them count every row.
    subjects = _subjects(session)
    with unscoped():
        computed = (_year_ratings if period.kind == "year" else _quarter_ratings)(
            session, period, subjects, weights)
        existing = {(r.subject_type, r.unit_id or r.member_id): r for r in session.execute(
            select(StarRating).where(StarRating.period == period.code,
                                     StarRating.deleted_on.is_(None))).scalars()}
    # A rating reviewed or published (by this runner or by a street) is its raters' now: a
    # run computes only the subjects still 已计算 or not yet rated.
    kept = {key for key in computed if key in existing
            and existing[key].status != RatingStatus.COMPUTED}
    computed = {key: value for key, value in computed.items() if key not in kept}
    if not computed and kept:
        raise DomainError(f"{period.label}您范围内的星级评定均已审核或公示，不能重新计算", "period")
    now = _now()
    counts = {"unit": 0, "member": 0, "not_rated": 0, "kept": len(kept)}
    session.info[audit.SKIP_ROWS] = True  # one record for the run, below, not one per rating
    try:
        with committed(session, f"{period.label}的星级评定正由他人计算或审核，请稍后重试",
                       commit=commit):
            for written, ((subject, i), (score, note, inputs)) in enumerate(computed.items()):
                if progress is not None:
                    progress(written, len(computed))
                rating = existing.get((subject, i))
                if rating is None:
                    rating = StarRating(subject_type=subject, period=period.code,
                                        period_kind=period.kind,
                                        unit_id=i if subject == "unit" else None,
                                        member_id=i if subject == "member" else None)
                    session.add(rating)
                stars = None if note else stars_for(float(score), table)
                rating.score = score
                rating.stars = stars
                rating.eligible = note is None
                rating.note = note or (None if stars else "得分未达到一星标准")
                rating.inputs = json.dumps(inputs, ensure_ascii=False)
                rating.thresholds = thresholds
                rating.status = RatingStatus.COMPUTED
                rating.computed_on = now
                counts[subject] += 1
                counts["not_rated"] += stars is None
            audit.record(session, "create", "star_rating", changes={
                "_operation": "compute", "period": period.code, "units": counts["unit"],
                "members": counts["member"], "not_rated": counts["not_rated"]})
    finally:
        session.info.pop(audit.SKIP_ROWS, None)
    if progress is not None:
        progress(len(computed), len(computed))
    return {"period": period, **counts}


def rated_message(done: dict) -> str:
    """What a star-rating run tells its user (the page, the job, the command line)."""
    kept = f"；已审核或公示的 {done['kept']} 个保持不变" if done.get("kept") else ""
    return (f"{done['period'].label}星级评定已计算：驻区单位 {done['unit']} 个、党员 "
            f"{done['member']} 名，其中不予评星 {done['not_rated']} 个{kept}")


def rating_count(session, period_code: str) -> int:
    """How many live ratings a period has (any status)."""
    with unscoped():
        return session.execute(select(func.count()).select_from(StarRating).where(
            StarRating.period == period_code, StarRating.deleted_on.is_(None))).scalar()


def previous_quarter() -> str:
    """The last quarter that has ended (the scheduled run's period)."""
    today = clock.today()
    quarter = (today.month - 1) // 3 + 1
    return f"{today.year}Q{quarter - 1}" if quarter > 1 else f"{today.year - 1}Q4"


def unrated_reason(session, subject: str, subject_id: int) -> str | None:
    """Why a unit or a member has no stars for the last quarter that has ended (its page says
    it): the quarter not computed yet, the subject left out of the run, or its rating's note
    (no data, below the floor, below one star). None when it has stars."""
    code = previous_quarter()
    period = Period(code, int(code[:4]), int(code[-1]))
    column = StarRating.unit_id if subject == "unit" else StarRating.member_id
    rating = session.execute(select(StarRating).where(
        StarRating.subject_type == subject, column == subject_id, StarRating.period == code,
        StarRating.deleted_on.is_(None))).scalars().first()
    if rating is None:
        if not rating_count(session, code):
            return f"{period.label}尚未评定：季度结束后由街道党工委或区委组织部计算"
        who = "已登记的驻区单位" if subject == "unit" else "在册党员"
        return f"{period.label}的星级评定未包含：计算时不是{who}，或不在计算者的范围内"
    if rating.stars is None:
        return f"{period.label}不予评星：{rating.note or '得分未达到一星标准'}"
    return None


def _reviewed(rating, data, principal):
    rating.reviewed_by_id = principal.user_id
    rating.reviewed_on = _now()


def _published(rating, data, principal):
    rating.published_on = _now()


STAR_RATING_FLOW = Workflow(StarRating, (
    Transition("review", "审核", (RatingStatus.COMPUTED,), RatingStatus.REVIEWED, RATER_GROUP, apply=_reviewed, style="success"),
    Transition("publish", "公示", (RatingStatus.REVIEWED,), RatingStatus.PUBLISHED, RATER_GROUP, apply=_published, style="success",
               confirm="公示后本期评定不能再重新计算，确定公示吗？"),
))


def recent_periods(count: int = 6) -> list[str]:
    """The latest quarters that have ended (the last first) and the last full year, for the
    compute form."""
    today = clock.today()
    year, quarter = today.year, (today.month - 1) // 3 + 1
    year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    periods = []
    for _ in range(count):
        periods.append(f"{year}Q{quarter}")
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    return periods + [str(today.year - 1)]


# --- the co-building panels of a unit's and a member's page ----------------------------------

def _sum(session, column, *where) -> Decimal:
    return session.execute(select(func.coalesce(func.sum(column), 0)).where(*where)).scalar() or 0


def _latest_rating(session, *where):
    return session.execute(select(StarRating).where(*where).order_by(
        StarRating.period_kind.desc(), StarRating.period.desc())).scalars().first()


def unit_summary(session, unit) -> dict:
    """Registration, agreements, members registered, points and stars — as far as the viewer
    may see them (the session's scope)."""
    year_periods = [f"{clock.today().year}Q{q}" for q in range(1, 5)]
    registration = session.execute(select(UnitRegistration).where(
        UnitRegistration.unit_id == unit.id).order_by(UnitRegistration.registered_on.desc(),
                                                      UnitRegistration.id.desc())).scalars().first()
    agreements = session.execute(select(Agreement).where(
        Agreement.unit_id == unit.id, Agreement.status.in_((AgreementStatus.DRAFT, AgreementStatus.SIGNED)))
        .order_by(Agreement.valid_to.desc())).scalars().all()
    in_service = select(Member.id, Member.community_id).where(
        Member.work_unit_id == unit.id, Member.category == "在职", Member.status == MemberStatus.ACTIVE)
    members = session.execute(in_service).all()
    at_home = set(session.execute(select(MemberRegistration.member_id,
                                         MemberRegistration.community_id).where(
        MemberRegistration.member_id.in_([m.id for m in members]),
        MemberRegistration.status == MemberRegistrationStatus.REGISTERED)).all()) if members else set()
    registered = sum((m.id, m.community_id) in at_home for m in members)
    unit_entries = (PointEntry.subject_type == "unit", PointEntry.unit_id == unit.id)
    return {
        # Beside the 党员人数 the unit declares (a register detail: only to those who own the
        # unit, not through the directory): its members entered in the panel.
        "declared": unit.party_member_count if may_write(session, unit) else None,
        "in_panel": session.execute(select(func.count(Member.id)).where(
            Member.work_unit_id == unit.id)).scalar(),
        "registration": registration,
        "agreements": agreements,
        "three_ones": three_ones(session, agreements, clock.today().year),
        "members": len(members),
        "registered": registered,
        "registration_rate": registered / len(members) if members else None,
        "points": _sum(session, PointEntry.delta, *unit_entries),
        "points_year": _sum(session, PointEntry.delta, *unit_entries,
                            PointEntry.period.in_(year_periods)),
        "rating": _latest_rating(session, StarRating.subject_type == "unit",
                                 StarRating.unit_id == unit.id),
        "unrated": unrated_reason(session, "unit", unit.id),
    }


def member_summary(session, member) -> dict:
    """Registration, posts, service hours and points — as far as the viewer may see them."""
    year_start = date(clock.today().year, 1, 1)
    registration = session.execute(select(MemberRegistration).where(
        MemberRegistration.member_id == member.id)
        .order_by(MemberRegistration.registered_on.desc(), MemberRegistration.id.desc())
    ).scalars().first()
    claims = session.execute(select(PostClaim).where(
        PostClaim.member_id == member.id, PostClaim.status == ClaimStatus.CLAIMED)
        .order_by(PostClaim.claimed_on)).scalars().all()
    certified = (ServiceRecord.member_id == member.id, ServiceRecord.status == RecordStatus.CERTIFIED)
    member_entries = (PointEntry.subject_type == "member", PointEntry.member_id == member.id)
    return {
        "registration": registration,
        "claims": claims,
        "hours": _sum(session, ServiceRecord.hours, *certified),
        "hours_year": _sum(session, ServiceRecord.hours, *certified,
                           ServiceRecord.served_on >= year_start),
        "records_pending": session.execute(select(func.count()).select_from(ServiceRecord).where(
            ServiceRecord.member_id == member.id, ServiceRecord.status == RecordStatus.PENDING)).scalar(),
        "points": _sum(session, PointEntry.delta, *member_entries),
        "points_year": _sum(session, PointEntry.delta, *member_entries,
                            PointEntry.period.like(f"{clock.today().year}Q%")),
        "rating": _latest_rating(session, StarRating.subject_type == "member",
                                 StarRating.member_id == member.id),
        "unrated": unrated_reason(session, "member", member.id),
    }

