"""年度考核: the year's assessment of communities and units, computed from the year's data.

- **Indicators**: each code of `INDICATOR_CODES` has one measure here, `measure(session, period,
  ids) -> {id: value}` — a value from 0 to 1, or None where it does not apply (no need raised,
  no meeting held): one set-based query (or a few) over all subjects of the level, never one
  per subject, since a city has thousands of communities and units. Where the dashboard, the
  star rating or the meetings service already count a thing, their query is called or their
  SQL definition (hybrids such as `Need.closed_on_time`, `Attendance.non_compliant`,
  `served_between`) is used, not re-written. The year is cut in GONGJIAN_TIMEZONE
  (`figures.Period`: day bounds through app.clock).
- **Score**: an indicator earns its weight × min(1, value ÷ target); indicators without data
  for a subject are left out and the others' weights scaled to 100 (as the star rating does);
  the total is that plus the manual adjustment (within ASSESSMENT_ADJUSTMENT_BOUND, with a
  reason); subjects are ranked by total within year and level.
- **Workflow** (`ASSESSMENT_FLOW`): 已计算 → review (审核: a community's by its street, the level
  above it; a unit's by 组织部) → 已审核 → publish (公示: 组织部, once every result of the
  year and level is reviewed) → 已公示. An adjustment (组织部) sends a reviewed result back to
  已计算. Once a year and level has results published, its ranking is fixed: no adjustment,
  no recomputation.
- A year not ended is previewed only (nothing saved).
"""
from __future__ import annotations

import io
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask import current_app
from sqlalchemy import and_, case, func, select

from app import clock
from app.dashboards.figures import Period, _count_if, agreement_three_ones, registration_rates
from app.errors import DomainError, committed
from app.models.assessment import (
    INDICATOR_CODES,
    LEVEL_NAMES,
    LEVELS,
    WEIGHT_TOTAL,
    Assessment,
    AssessmentIndicator,
    AssessmentStatus,
    points_text,
)
from app.models.cobuild import (
    MemberRegistration,
    MemberRegistrationStatus,
    RecordStatus,
    ServiceRecord,
    UnitRegistration,
    UnitRegistrationStatus,
)
from app.models.inspections import Rectification
from app.models.lists import NEED_DONE, Need, NeedStatus
from app.models.meetings import (
    DONE,
    PRESENT,
    REQUIRED_LEVEL_COLUMN,
    Attendance,
    JointBody,
    Meeting,
    MeetingStatus,
    Resolution,
)
from app.models.org import Member, Organization, Unit, UnitStatus
from app.models.workplan import WorkPlanItem
from app.security.principal import Principal, current_principal, unscoped
from app.services import audit
from app.services.cobuild import Period as StarPeriod
from app.services.cobuild import (
    _among,
    unit_list_provision,
    unit_registration_rates,
    unit_three_ones,
)
from app.services.meetings import unit_attendance_rates
from app.services.workflow import Field, Transition, Workflow
from app.validators import ascii_digits, four_digit_year

# --- the year ---------------------------------------------------------------------------------


def year_period(year: int) -> Period:
    return Period(str(year), date(year, 1, 1), date(year, 12, 31))


def parse_year(text, ended: bool = True) -> int:
    """A year written as 2026; one not ended is refused (`ended=False`: a preview, allowed once
    the year has begun)."""
    year = four_digit_year(text)
    if year is None:
        raise DomainError("考核年度应为四位年份，如 2026", "year")
    today = clock.today()
    if year > today.year:
        raise DomainError(f"{year}年尚未开始，没有可考核的数据", "year")
    if ended and year >= today.year:
        raise DomainError(f"{year}年尚未结束（{year}-12-31），只能预览，不能计算保存", "year")
    return year


def parse_level(text) -> str:
    if text not in LEVELS:
        raise DomainError("请选择考核对象：社区或驻区单位", "level")
    return text


# --- the measures --------------------------------------------------------------------------------

def _rates(rows, ids) -> dict[int, float | None]:
    """(id, whole, part) rows → part ÷ whole per id (None where whole is 0 or absent)."""
    found = {i: (int(part) / int(whole) if whole else None) for i, whole, part in rows}
    return {i: found.get(i) for i in ids}


def _needs_of_year(period: Period):
    return and_(Need.created_on >= period.begins, Need.created_on < period.ends,
                Need.deleted_on.is_(None))


def _need_on_time(column):
    """按期办结率 (the dashboard's `need_on_time_rate`, grouped): of the needs raised in the
    year and closed, those closed by their deadline."""
    def measure(session, period, ids):
        return _rates(session.execute(
            select(column, func.count(Need.id), _count_if(Need.closed_on_time))
            .where(_needs_of_year(period), Need.status.in_(NEED_DONE), column.is_not(None))
            .group_by(column)).all(), ids)
    return measure


def _satisfaction(column):
    """Mean satisfaction (1–5) of the year's needs visited back, as a share of 5."""
    def measure(session, period, ids):
        found = dict(session.execute(
            select(column, func.avg(Need.satisfaction))
            .where(_needs_of_year(period), Need.status == NeedStatus.VISITED,
                   Need.satisfaction.is_not(None), column.is_not(None))
            .group_by(column)).all())
        return {i: (float(found[i]) / 5 if found.get(i) is not None else None) for i in ids}
    return measure


def need_match(session, period, ids):
    """匹配率 (the dashboard's `need_match_rate`, grouped): the year's needs not rejected, and
    those matched to a service item or a unit's resource."""
    return _rates(session.execute(
        select(Need.community_id, func.count(Need.id), _count_if(Need.matched))
        .where(_needs_of_year(period), Need.status != NeedStatus.REJECTED)
        .group_by(Need.community_id)).all(), ids)


def _registered_units(session) -> dict[int, int]:
    """Registered units (在册) → their community."""
    return dict(session.execute(select(Unit.id, Unit.community_id).where(
        Unit.status == UnitStatus.REGISTERED, Unit.deleted_on.is_(None))).all())


def list_provision(session, period, ids):
    """三单 provision of a community: the mean over its registered units of the star rating's
    `unit_list_provision` (a published 资源清单 entry, a published service item of the year)."""
    units = _registered_units(session)
    provided = unit_list_provision(session, period, list(units))
    sums, counts = defaultdict(float), defaultdict(int)
    for unit_id, community_id in units.items():
        sums[community_id] += provided[unit_id]
        counts[community_id] += 1
    return {i: (sums[i] / counts[i] if counts[i] else None) for i in ids}


def _registration(key: str):
    """报到率 at the year's end, as the dashboard's `registration_rates` counts it (its four
    counts read once per composition: both rates come from the same rows)."""
    def measure(session, period, ids):
        rows = _once(session, ("registration_rates", period.start, period.end),
                     lambda: registration_rates(session, period))
        found = {row["community_id"]: row[key] for row in rows}
        return {i: found.get(i) for i in ids}
    return measure


_SHARED = "assessment.shared"  # session.info: what the measures of one composition share


def _once(session, key, read):
    """`read()` once per composition (`compose` opens and closes the store)."""
    shared = session.info.setdefault(_SHARED, {})
    if key not in shared:
        shared[key] = read()
    return shared[key]


def _months_served(months):
    """For a registration (correlated), the months of the year it counts as served in: those
    ending on or after its registration day with a record of the member dated in them and not
    refused (the dashboard's `served_between`) — one probe of the member's records per
    registration, where an EXISTS per registration and month made the city's 350,000
    registrations 4 million probes a level."""
    served_on = ServiceRecord.served_on
    month = case(*[(served_on.between(first, last), n) for n, (first, last) in enumerate(months)])
    # The first day of the registration's month (registrations after the year are left out).
    since = case(*[(MemberRegistration.registered_on <= last, first) for first, last in months],
                 else_=months[0][0])
    return (select(func.count(func.distinct(month)))
            .where(ServiceRecord.member_id == MemberRegistration.member_id,
                   served_on.between(since, months[-1][1]),
                   ServiceRecord.status != RecordStatus.REJECTED, ServiceRecord.deleted_on.is_(None))
            .scalar_subquery())


def _monthly_service(group, *joins):
    """双报到's 三个一, serve once a month: over the year's months, the registered members
    (报到 by that month's end) who served in the month ÷ those registered — one query: a sum
    per month of those registered, and the months each registration served in
    (`_months_served`), grouped."""
    def measure(session, period, ids):
        months = []
        for year, month in period.months:
            first = date(year, month, 1)
            last = date(year + (month == 12), month % 12 + 1, 1).toordinal() - 1
            months.append((first, date.fromordinal(last)))
        registered = [_count_if(MemberRegistration.registered_on <= last) for _, last in months]
        served = func.coalesce(func.sum(_months_served(months)), 0)
        stmt = select(group, *registered, served).select_from(MemberRegistration)
        for target, on in joins:
            stmt = stmt.join(target, on)
        rows = session.execute(stmt.where(
            MemberRegistration.status == MemberRegistrationStatus.REGISTERED,
            MemberRegistration.registered_on <= period.end,
            MemberRegistration.deleted_on.is_(None), group.is_not(None)).group_by(group)).all()
        found = {}
        for row in rows:
            expected, served_months = sum(row[1:1 + len(months)]), row[1 + len(months)]
            found[row[0]] = int(served_months) / expected if expected else None
        return {i: found.get(i) for i in ids}
    return measure


def _held_in(period):
    return (Meeting.status == MeetingStatus.HELD, Meeting.held_on.between(period.start, period.end),
            Meeting.deleted_on.is_(None), Attendance.deleted_on.is_(None))


def _attendance(group, *joins, leaders: bool = False):
    """At the joint meetings held in the year: the attendance records present (出席, 迟到) ÷
    recorded (the meetings service's `attendance_rate`, grouped); with `leaders`, of those
    present at meetings whose type requires a level (the 一把手 at 季研讨会 and 年总结会), those
    at it (`Attendance.non_compliant`, as `leader_compliance`)."""
    def measure(session, period, ids):
        if leaders:
            counted = (func.count(Attendance.id),
                       func.count(Attendance.id) - _count_if(Attendance.non_compliant))
            where = (Meeting.type.in_(tuple(REQUIRED_LEVEL_COLUMN)), Attendance.status.in_(PRESENT))
        else:
            counted = (func.count(Attendance.id), _count_if(Attendance.status.in_(PRESENT)))
            where = ()
        stmt = (select(group, *counted).select_from(Attendance)
                .join(Meeting, Meeting.id == Attendance.meeting_id))
        for target, on in joins:
            stmt = stmt.join(target, on)
        return _rates(session.execute(stmt.where(*_held_in(period), *where).group_by(group)).all(),
                      ids)
    return measure


def closed_on_time(model, group, *joins, done=DONE):
    """A supervised task (columns deadline, closed_on, status, lead_unit_id) closed on time:
    of those due in the year, the ones closed (status `done`) on or before their deadline — a
    task still open or closed late counts against. One query per level over all subjects;
    `group` places a task (its lead unit, or through `joins` its host community; outer joins:
    a rectification answered by a node has no lead unit)."""
    def measure(session, period, ids):
        on_time = and_(model.status == done, model.closed_on.is_not(None),
                       model.closed_on <= model.deadline)
        stmt = select(group, func.count(model.id), _count_if(on_time)).select_from(model)
        for target, on in joins:
            stmt = stmt.outerjoin(target, on)
        return _rates(session.execute(stmt.where(
            model.deadline.between(period.start, period.end), model.deleted_on.is_(None))
            .group_by(group)).all(), ids)
    return measure


def three_ones(session, period, ids):
    """The agreements' 三个一 per community, as the dashboard's `agreement_three_ones` counts
    them: the share of the agreements in force whose unit met all three."""
    found = {row["community_id"]: row["rate"] for row in agreement_three_ones(session, period)}
    return {i: found.get(i) for i in ids}


def unit_registered(session, period, ids):
    """The unit registered (单位报到 已报到) by the year's end: 1, else 0."""
    done = set(session.execute(select(UnitRegistration.unit_id).distinct().where(
        UnitRegistration.status == UnitRegistrationStatus.REGISTERED,
        UnitRegistration.registered_on <= period.end,
        UnitRegistration.deleted_on.is_(None))).scalars())
    return {i: 1.0 if i in done else 0.0 for i in ids}


def _all_units(measure):
    """A star-rating input (`measure(session, period, ids)`), over all units at once, given the
    year as the star rating writes its periods."""
    def over(session, period, ids):
        return measure(session, StarPeriod(period.code, period.year, None), list(ids))
    return over


_host = ((JointBody, JointBody.id == Meeting.body_id),)
_resolution_host = ((Meeting, Meeting.id == Resolution.meeting_id),
                    (JointBody, JointBody.id == Meeting.body_id))
_member = ((Member, Member.id == MemberRegistration.member_id),)

MEASURES = {
    "need_on_time": _need_on_time(Need.community_id),
    "need_match": need_match,
    "list_provision": list_provision,
    "unit_registration": _registration("unit_rate"),
    "member_registration": _registration("member_rate"),
    "monthly_service": _monthly_service(MemberRegistration.community_id),
    "attendance": _attendance(JointBody.host_id, *_host),
    "leader_compliance": _attendance(JointBody.host_id, *_host, leaders=True),
    "resolution_on_time": closed_on_time(Resolution, JointBody.host_id, *_resolution_host),
    # A rectification sits with the node answering for it, else with its unit's community.
    "rectification_on_time": closed_on_time(
        Rectification, func.coalesce(Rectification.org_id, Unit.community_id),
        (Unit, Unit.id == Rectification.lead_unit_id)),
    "work_plan_on_time": closed_on_time(WorkPlanItem, WorkPlanItem.org_id),
    "three_ones": three_ones,
    "satisfaction": _satisfaction(Need.community_id),
    "unit_need_on_time": _need_on_time(Need.assigned_unit_id),
    "unit_list_provision": _all_units(unit_list_provision),
    "unit_registered": unit_registered,
    "unit_member_registration": _all_units(unit_registration_rates),
    "unit_monthly_service": _monthly_service(Member.work_unit_id, *_member),
    "unit_attendance": lambda session, period, ids: unit_attendance_rates(
        session, period.start, period.end, ids),
    "unit_leader_compliance": _attendance(Attendance.unit_id, leaders=True),
    "unit_resolution_on_time": closed_on_time(Resolution, Resolution.lead_unit_id),
    "unit_rectification_on_time": closed_on_time(Rectification, Rectification.lead_unit_id),
    "unit_work_plan_on_time": closed_on_time(WorkPlanItem, WorkPlanItem.lead_unit_id),
    "unit_three_ones": _all_units(unit_three_ones),
    "unit_satisfaction": _satisfaction(Need.assigned_unit_id),
}
if set(MEASURES) != set(INDICATOR_CODES):  # a code without its function, or the reverse
    raise RuntimeError(f"assessment indicators and measures differ: "
                       f"{sorted(set(MEASURES) ^ set(INDICATOR_CODES))}")


# --- the indicator set -----------------------------------------------------------------------------

def indicators(session, level: str) -> list[AssessmentIndicator]:
    """The level's live indicators; weights not summing to 100 are refused (a Chinese message;
    nothing is computed, previewed or written)."""
    with unscoped():
        rows = session.execute(select(AssessmentIndicator).where(
            AssessmentIndicator.level == level, AssessmentIndicator.deleted_on.is_(None))
            .order_by(AssessmentIndicator.order, AssessmentIndicator.id)).scalars().all()
    total = sum((Decimal(str(row.weight)) for row in rows), Decimal(0))
    if not rows or total != WEIGHT_TOTAL:
        raise DomainError(f"{LEVEL_NAMES[level]}考核指标的权重之和为{points_text(total)}分，应为100分："
                          "请组织部先调整考核指标的权重", "level")
    return rows


def set_weights(session, level: str, weights: dict) -> int:
    """Set the level's weights in one write (组织部's 调整权重): every weight a number, their
    sum 100 — else a Chinese message and nothing saved. Returns the rows changed."""
    level = parse_level(level)
    with unscoped():
        rows = {row.id: row for row in session.execute(select(AssessmentIndicator).where(
            AssessmentIndicator.level == level,
            AssessmentIndicator.deleted_on.is_(None))).scalars()}
    unknown = [str(key) for key in weights if not ascii_digits(key) or int(key) not in rows]
    if unknown:
        raise DomainError(f"没有这些{LEVEL_NAMES[level]}考核指标：{'、'.join(unknown)}", "weight")
    changes = {}
    session.info[audit.SKIP_ROWS] = True  # one record for the whole set, below
    try:
        with committed(session, "考核指标正由他人修改，请刷新后重试"):
            for key, raw in weights.items():
                row = rows[int(key)]
                try:
                    value = Decimal(str(raw).strip())
                except (InvalidOperation, ValueError):
                    raise DomainError(f"“{row.name}”的权重应为数字", "weight") from None
                if Decimal(str(row.weight)) != value:
                    changes[row.name] = [points_text(row.weight), points_text(value)]
                    row.weight = value
            total = sum((Decimal(str(row.weight)) for row in rows.values()), Decimal(0))
            if total != WEIGHT_TOTAL:
                raise DomainError(f"{LEVEL_NAMES[level]}考核各项指标的权重之和应为100分，"
                                  f"现为{points_text(total)}分", "weight")
            session.flush()
            if changes:
                audit.record(session, "update", "assessment_indicator", changes={
                    "_operation": "weights", "level": level, "weight": changes})
    finally:
        session.info.pop(audit.SKIP_ROWS, None)
    return len(changes)


# --- computing -----------------------------------------------------------------------------------

TWO_PLACES = Decimal("0.01")


def _points(value: float | None, weight: Decimal, target: Decimal) -> Decimal | None:
    if value is None:
        return None
    share = min(Decimal(1), Decimal(str(value)) * 100 / target) if target else Decimal(1)
    return (weight * max(share, Decimal(0))).quantize(TWO_PLACES, ROUND_HALF_UP)


def score_of(earned: Decimal, weights: Decimal) -> Decimal:
    """The computed score: the points earned over the weights that apply (indicators with a
    value), scaled to 100."""
    if not weights:
        return Decimal(0).quantize(TWO_PLACES)
    return (earned * WEIGHT_TOTAL / weights).quantize(TWO_PLACES, ROUND_HALF_UP)


class _Scored:
    """One indicator's part of every subject's score. A city's subjects share few values (a
    rate of small counts, 0, 1, none), so each value's part is made once (Decimal
    arithmetic ran half a million times a level)."""

    def __init__(self, row: AssessmentIndicator):
        self.code, self.name = row.code, row.name
        self.weight, self.target = Decimal(str(row.weight)), Decimal(str(row.target))
        self._parts: dict = {}

    def part(self, value) -> tuple[dict, Decimal | None]:
        """The part shown (code, name, weight, target, value, points) and the points earned
        (None: no value, the weight left out)."""
        known = self._parts.get(value)
        if known is None:
            points = _points(value, self.weight, self.target)
            known = self._parts[value] = (
                {"code": self.code, "name": self.name, "weight": float(self.weight),
                 "target": float(self.target),
                 "value": None if value is None else round(float(value), 4),
                 "points": 0.0 if points is None else float(points)}, points)
        return known


def subjects(session, level: str) -> dict[int, int]:
    """The year's subjects → their community: the active communities, or the registered units."""
    if level == "unit":
        return _registered_units(session)
    return {i: i for i in session.execute(select(Organization.id).where(
        Organization.type == "community", Organization.active.is_(True),
        Organization.deleted_on.is_(None))).scalars()}


def compose(session, year: int, level: str) -> dict[int, dict]:
    """Each subject's indicators and computed score for the year. Read through the session as
    组织部 (who alone computes: every row is in its scope), so that the figures' queries shared
    here read live rows only, as they do on the dashboard."""
    period = year_period(year)
    rows = indicators(session, level)
    places = subjects(session, level)
    ids = list(places)
    try:
        values = {row.code: MEASURES[row.code](session, period, ids) for row in rows}
    finally:
        session.info.pop(_SHARED, None)
    scored = [_Scored(row) for row in rows]
    result = {}
    for i in ids:
        parts, earned, weights = [], Decimal(0), Decimal(0)
        for indicator in scored:
            part, points = indicator.part(values[indicator.code].get(i))
            parts.append(dict(part))
            if points is not None:
                earned += points
                weights += indicator.weight
        result[i] = {"community_id": places[i], "parts": parts, "score": score_of(earned, weights)}
    return result


def _ranked(totals: dict) -> dict:
    """Rank 1 for the highest total; equal totals share a rank (1, 2, 2, 4)."""
    ranks, previous, rank = {}, None, 0
    for position, (key, total) in enumerate(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])),
                                            start=1):
        if total != previous:
            rank, previous = position, total
        ranks[key] = rank
    return ranks


def _names(session, level: str, ids) -> dict[int, str]:
    model = Unit if level == "unit" else Organization
    with unscoped():
        return dict(session.execute(select(model.id, model.name).where(_among(model.id, ids))).all()) \
            if ids else {}


def preview(session, year_text, level_text) -> dict:
    """The year's assessment as it stands, computed and shown, never stored (a year not ended
    is allowed once begun). Ranked by the computed score; the subjects are those in the acting
    user's scope."""
    year, level = parse_year(year_text, ended=False), parse_level(level_text)
    computed = compose(session, year, level)
    ranks = _ranked({i: c["score"] for i, c in computed.items()})
    names = _names(session, level, computed)
    rows = [{"id": i, "name": names.get(i, f"#{i}"), "community_id": c["community_id"],
             "score": float(c["score"]), "rank": ranks[i], "indicators": c["parts"]}
            for i, c in computed.items()]
    visible = _visible_subjects(session, level, [r["id"] for r in rows])
    rows = sorted((r for r in rows if r["id"] in visible), key=lambda r: (r["rank"], r["id"]))
    return {"year": year, "level": level, "ended": year < clock.today().year, "rows": rows}


def _visible_subjects(session, level: str, ids) -> set[int]:
    """Of the subjects, those the acting user answers for (the unit directory and the tree are
    readable by all: ownership, not reading, decides)."""
    from app.security.scope import owner_clause

    model = Unit if level == "unit" else Organization
    return set(ids) & set(session.execute(select(model.id).where(
        _among(model.id, ids), owner_clause(model, current_principal()))).scalars())


def _published_exists(session, year: int, level: str) -> bool:
    with unscoped():
        return session.execute(select(Assessment.id).where(
            Assessment.year == year, Assessment.level == level,
            Assessment.status == AssessmentStatus.PUBLISHED,
            Assessment.deleted_on.is_(None)).limit(1)).first() is not None


def compute(session, year_text, level_text, progress=None, commit: bool = True) -> dict:
    """Compute and store the year's assessment of a level (all its subjects), ranked. A year not
    ended, weights not summing to 100, or a year whose results are published are refused. A
    result computed again keeps its adjustment and goes back to 已计算 (its data changed: it is
    reviewed again)."""
    year, level = parse_year(year_text), parse_level(level_text)
    if _published_exists(session, year, level):
        raise DomainError(f"{year}年度{LEVEL_NAMES[level]}考核结果已公示，不能重新计算", "year")
    computed = compose(session, year, level)
    now = clock.utcnow()
    with unscoped():
        existing = {(r.unit_id if level == "unit" else r.community_id): r
                    for r in session.execute(select(Assessment).where(
                        Assessment.year == year, Assessment.level == level,
                        Assessment.deleted_on.is_(None))).scalars()}
    session.info[audit.SKIP_ROWS] = True  # one record for the run, not one per subject
    try:
        with committed(session, f"{year}年度{LEVEL_NAMES[level]}考核正由他人计算或审核，请稍后重试",
                       commit=commit):
            for done, (i, c) in enumerate(computed.items()):
                if progress is not None and done % 500 == 0:
                    progress(done, len(computed))
                row = existing.get(i)
                if row is None:
                    row = Assessment(year=year, level=level, adjustment=Decimal(0),
                                     unit_id=i if level == "unit" else None)
                    session.add(row)
                    existing[i] = row
                row.community_id = c["community_id"]
                row.computed_score = c["score"]
                row.total = c["score"] + Decimal(str(row.adjustment or 0))
                row.scores = json.dumps(c["parts"], ensure_ascii=False)
                row.status = AssessmentStatus.COMPUTED
                row.reviewed_on = row.reviewed_by_id = None
                row.computed_on = now
            _rerank(existing.values())
            audit.record(session, "create", "assessment", changes={
                "_operation": "compute", "year": year, "level": level,
                "subjects": len(computed)})
    finally:
        session.info.pop(audit.SKIP_ROWS, None)
    if progress is not None:
        progress(len(computed), len(computed))
    return {"year": year, "level": level, "count": len(computed)}


def _rerank(rows) -> None:
    rows = [r for r in rows if r.deleted_on is None]
    ranks = _ranked({r.unit_id if r.level == "unit" else r.community_id: Decimal(str(r.total))
                     for r in rows})
    for r in rows:
        r.rank = ranks[r.unit_id if r.level == "unit" else r.community_id]


def computed_message(done: dict) -> str:
    return (f"{done['year']}年度{LEVEL_NAMES[done['level']]}考核已计算：{done['count']} 个考核对象"
            "（状态：已计算，待审核）")


# --- the workflow ----------------------------------------------------------------------------------

def adjustment_bound() -> Decimal:
    return Decimal(str(current_app.config["ASSESSMENT_ADJUSTMENT_BOUND"]))


def _adjust(row: Assessment, data: dict, principal: Principal) -> None:
    from app.extensions import db

    try:
        value = Decimal(str(data["adjustment"]).strip()).quantize(TWO_PLACES, ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        raise DomainError("调整分值应为数字，如 -2 或 1.5", "adjustment") from None
    bound = adjustment_bound()
    if abs(value) > bound:
        raise DomainError(f"调整分值应在±{points_text(bound)}分以内", "adjustment")
    if _published_exists(db.session, row.year, row.level):
        raise DomainError(f"{row.year}年度{LEVEL_NAMES[row.level]}考核结果已公示，排名已固定，不能再调整")
    row.adjustment = value
    row.adjustment_reason = data["reason"]
    row.total = Decimal(str(row.computed_score)) + value
    row.reviewed_on = row.reviewed_by_id = None
    with unscoped():
        peers = db.session.execute(select(Assessment).where(
            Assessment.year == row.year, Assessment.level == row.level,
            Assessment.deleted_on.is_(None))).scalars().all()
    _rerank(peers)


def may_review(row: Assessment, principal: Principal) -> bool | str:
    """The level above the subject: a community's result by its street's admin; a unit's by
    组织部 (the units' register is the district's; a street or a community reviewing its own
    units' ranking would review a ranking it is ranked by)."""
    if principal.system or "Admin" in principal.role_names:
        return True
    if row.level == "unit":
        return True if "OrgAdmin" in principal.role_names and principal.sees_all \
            else "驻区单位的年度考核由区委组织部审核"
    with unscoped():
        from app.extensions import db

        community = db.session.get(Organization, row.community_id)
        street = db.session.get(Organization, community.parent_id) \
            if community is not None and community.parent_id else None
    if street is not None and street.path in principal.org_paths:
        return True
    return "社区的年度考核由所在街道审核"


def may_publish(row: Assessment, principal: Principal) -> bool | str:
    from app.extensions import db

    with unscoped():
        waiting = db.session.execute(select(func.count(Assessment.id)).where(
            Assessment.year == row.year, Assessment.level == row.level,
            Assessment.status == AssessmentStatus.COMPUTED,
            Assessment.deleted_on.is_(None))).scalar()
    if waiting:
        return (f"{row.year}年度{LEVEL_NAMES[row.level]}考核还有 {waiting} 个结果未审核，"
                "全部审核后才能公示")
    return True


def _reviewed(row, data, principal):
    row.reviewed_on = clock.utcnow()
    row.reviewed_by_id = principal.user_id


def _published(row, data, principal):
    row.published_on = clock.utcnow()


ASSESSORS = frozenset({"OrgAdmin"})
REVIEWERS = frozenset({"OrgAdmin", "StreetAdmin"})
ASSESSMENT_FLOW = Workflow(Assessment, (
    Transition("adjust", "调整得分", (AssessmentStatus.COMPUTED, AssessmentStatus.REVIEWED),
               AssessmentStatus.COMPUTED, ASSESSORS, apply=_adjust,
               fields=(Field("adjustment", "调整分值", required=True),
                       Field("reason", "调整原因", "textarea", required=True))),
    Transition("review", "审核", (AssessmentStatus.COMPUTED,), AssessmentStatus.REVIEWED, REVIEWERS,
               rule=may_review, apply=_reviewed, style="success",
               lost="该考核结果已被他人审核或调整，请刷新后查看"),
    Transition("publish", "公示", (AssessmentStatus.REVIEWED,), AssessmentStatus.PUBLISHED,
               ASSESSORS, rule=may_publish, apply=_published, style="success",
               confirm="公示后本年度考核结果不能再调整或重新计算，确定公示吗？"),
))


# --- what the public board and the documents show ------------------------------------------------

@dataclass(frozen=True)
class Ranking:
    year: int
    level: str
    indicators: list[dict]  # code, name, weight (the columns)
    rows: list[dict]  # rank, name, community, total, points by code


def published_years(session) -> list[tuple[int, str]]:
    """(year, level) with published results, the latest first."""
    with unscoped():
        return [tuple(r) for r in session.execute(
            select(Assessment.year, Assessment.level).distinct().where(
                Assessment.status == AssessmentStatus.PUBLISHED, Assessment.deleted_on.is_(None))
            .order_by(Assessment.year.desc(), Assessment.level)).all()]


def published_ranking(session, year: int, level: str) -> Ranking | None:
    """The published results of a year and level, ranked: names of communities and units only
    (no person), the scores by indicator, the adjustment — nothing not published."""
    if level not in LEVELS:
        return None
    with unscoped():
        rows = session.execute(
            select(Assessment.id, Assessment.rank, Assessment.total, Assessment.computed_score,
                   Assessment.adjustment, Assessment.scores, Assessment.unit_id,
                   Assessment.community_id)
            .where(Assessment.year == year, Assessment.level == level,
                   Assessment.status == AssessmentStatus.PUBLISHED,
                   Assessment.deleted_on.is_(None))
            .order_by(Assessment.rank, Assessment.id)).all()
        if not rows:
            return None
        communities = _names(session, "community", {r.community_id for r in rows})
        units = _names(session, "unit", {r.unit_id for r in rows if r.unit_id})
    columns: dict[str, dict] = {}
    result = []
    for r in rows:
        try:
            parts = json.loads(r.scores or "[]")
        except ValueError:
            parts = []
        points = {}
        for part in parts if isinstance(parts, list) else []:
            columns.setdefault(part.get("code"), {"code": part.get("code"), "name": part.get("name"),
                                                  "weight": part.get("weight")})
            points[part.get("code")] = part.get("points")
        result.append({"rank": r.rank, "name": units.get(r.unit_id) if level == "unit"
                       else communities.get(r.community_id),
                       "community": communities.get(r.community_id, ""),
                       "computed": float(r.computed_score), "adjustment": float(r.adjustment),
                       "total": float(r.total), "points": points})
    return Ranking(year, level, list(columns.values()), result)


def _table(ranking: Ranking) -> tuple[list[str], list[list]]:
    head = ["排名", LEVEL_NAMES[ranking.level]] + (["所在社区"] if ranking.level == "unit" else [])
    head += [f"{c['name']}（{c['weight']:g}分）" for c in ranking.indicators]
    head += ["计算得分", "调整分", "总分"]
    body = []
    for row in ranking.rows:
        cells = [row["rank"], row["name"]] + ([row["community"]] if ranking.level == "unit" else [])
        cells += [row["points"].get(c["code"], "") for c in ranking.indicators]
        cells += [row["computed"], row["adjustment"], row["total"]]
        body.append(cells)
    return head, body


def title_of(ranking: Ranking) -> str:
    return f"{ranking.year}年度{LEVEL_NAMES[ranking.level]}共驻共建考核结果"


def xlsx_bytes(ranking: Ranking) -> bytes:
    from openpyxl import Workbook

    from app.spreadsheet import neutralise

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "考核结果"
    sheet.append([title_of(ranking)])
    head, body = _table(ranking)
    sheet.append(head)
    for cells in body:
        sheet.append([neutralise(c) for c in cells])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def docx_bytes(ranking: Ranking) -> bytes:
    """The published ranking as a Word document, with the monthly report's page set-up (A4,
    CJK styles, page numbers)."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm

    from app.services.work_report import _cjk_style, _page_number

    document = Document()
    section = document.sections[0]
    section.page_width, section.page_height = Cm(29.7), Cm(21)  # A4 landscape: many columns
    section.left_margin = section.right_margin = Cm(1.5)
    _cjk_style(document)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _page_number(footer)
    document.add_heading(title_of(ranking), 0).alignment = WD_ALIGN_PARAGRAPH.CENTER
    head, body = _table(ranking)
    grid = document.add_table(rows=1, cols=len(head))
    grid.style = "Table Grid"
    for i, label in enumerate(head):
        grid.rows[0].cells[i].text = label
    for cells in body:
        row = grid.add_row().cells
        for i, value in enumerate(cells):
            row[i].text = "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def document_name(ranking: Ranking, fmt: str) -> str:
    return f"assessment-{ranking.year}-{ranking.level}.{fmt}"
