"""年度考核 at the city's scale (issue 26): the measures rewritten as one GROUP BY per level —
the star rating's 在职党员报到率 (`unit_registration_rates`), the agreements' 三个一 per agreement
(`three_ones`), per unit (`unit_three_ones`) and per community (the dashboard's
`agreement_three_ones`), and the composition's arithmetic (`compose`) — give what the
definitions they replaced gave, kept here as they were: on the demo data, for this year (up to
today) and the last, per quarter, for a few subjects and for all, as 组织部 and as a street,
with rows of every table they read soft-deleted in the session (flushed, rolled back after)."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import select, text, update

from app import clock
from tests.planted import planted_session

pytestmark = pytest.mark.db


# --- the definitions replaced, as they were -------------------------------------------------

def old_unit_registration_rates(session, period, ids):
    from app.models.cobuild import MemberRegistration, MemberRegistrationStatus
    from app.models.org import Member, MemberStatus

    registered = set(session.execute(select(MemberRegistration.member_id,
                                            MemberRegistration.community_id).where(
        MemberRegistration.status == MemberRegistrationStatus.REGISTERED,
        MemberRegistration.registered_on <= period.end,
        MemberRegistration.deleted_on.is_(None))).all())
    totals, done = defaultdict(int), defaultdict(int)
    for unit_id, member_id, community_id in session.execute(
            select(Member.work_unit_id, Member.id, Member.community_id).where(
                Member.work_unit_id.is_not(None), Member.category == "在职",
                Member.status == MemberStatus.ACTIVE, Member.deleted_on.is_(None))):
        totals[unit_id] += 1
        done[unit_id] += (member_id, community_id) in registered
    return {i: (done[i] / totals[i] if totals[i] else None) for i in ids}


def old_three_ones(session, agreements, year, until=None):
    from sqlalchemy import func

    from app.models.cobuild import AgreementStatus
    from app.models.lists import NEED_DONE, Need
    from app.models.meetings import PRESENT, Attendance, BodyMember, Meeting, MeetingStatus
    from app.services.meetings import _quarter_of

    units = {a.unit_id for a in agreements}
    if not units:
        return {}
    start, end = date(year, 1, 1), min(date(year, 12, 31), clock.today(), until or date.max)
    quarter = _quarter_of(Meeting.held_on)
    held_in_year = (Meeting.status == MeetingStatus.HELD, Meeting.held_on.between(start, end))
    held, attended = defaultdict(set), defaultdict(set)
    for unit_id, q in session.execute(
            select(BodyMember.unit_id, quarter).distinct()
            .join(Meeting, Meeting.body_id == BodyMember.body_id)
            .where(BodyMember.unit_id.in_(units), *held_in_year)):
        held[unit_id].add(int(q))
    for unit_id, q in session.execute(
            select(Attendance.unit_id, quarter).distinct()
            .join(Meeting, Meeting.id == Attendance.meeting_id)
            .where(Attendance.unit_id.in_(units), Attendance.status.in_(PRESENT), *held_in_year)):
        attended[unit_id].add(int(q))
    closed = dict(session.execute(
        select(Need.assigned_unit_id, func.count(Need.id))
        .where(Need.assigned_unit_id.in_(units), Need.status.in_(NEED_DONE),
               Need.completed_on >= clock.day_begins(start), Need.completed_on < clock.day_ends(end))
        .group_by(Need.assigned_unit_id)).all())
    return {a.id: (a.status == AgreementStatus.SIGNED and a.valid_from <= end and a.valid_to >= start,
                   len(held[a.unit_id]), len(attended[a.unit_id] & held[a.unit_id]),
                   closed.get(a.unit_id, 0), a.yearly_target or 0) for a in agreements}


def _met(in_force, held, attended, closed, target):
    meetings, needs = held > 0 and attended >= held, closed >= target
    return meetings, needs, in_force and meetings and needs


def old_agreement_three_ones(session, period, org_id=None):
    from app.dashboards.figures import _under, ratio
    from app.models.cobuild import Agreement, AgreementStatus

    start, end = date(period.year, 1, 1), date(period.year, 12, 31)
    agreements = session.execute(select(Agreement).where(
        Agreement.status == AgreementStatus.SIGNED, Agreement.valid_from <= end,
        Agreement.valid_to >= start, _under(session, Agreement, org_id))).scalars().all()
    judged = old_three_ones(session, agreements, period.year)
    merged = {}
    for agreement in agreements:
        meetings, needs, met = _met(*judged[agreement.id])
        row = merged.setdefault(agreement.community_id, dict.fromkeys(
            ("agreements", "meetings_met", "needs_met", "all_met"), 0))
        row["agreements"] += 1
        row["meetings_met"] += meetings
        row["needs_met"] += needs
        row["all_met"] += met
    return {cid: {**row, "rate": ratio(row["all_met"], row["agreements"])}
            for cid, row in merged.items()}


def old_unit_three_ones(session, period, ids):
    from app.models.cobuild import Agreement, AgreementStatus

    agreements = session.execute(select(Agreement).where(
        Agreement.unit_id.in_(ids), Agreement.status == AgreementStatus.SIGNED,
        Agreement.valid_from <= period.end, Agreement.valid_to >= period.start,
        Agreement.deleted_on.is_(None))).scalars().all()
    share_of_year = (period.quarter or 4) / 4
    best = {}
    judged = old_three_ones(session, agreements, period.year, until=period.end)
    for agreement in agreements:
        in_force, held, attended, closed, target = judged[agreement.id]
        target = target * share_of_year
        parts = [1.0 if in_force else 0.0, 1.0 if not target else min(1.0, closed / target)]
        if held:
            parts.append(attended / held)
        best[agreement.unit_id] = max(best.get(agreement.unit_id, 0.0), sum(parts) / len(parts))
    return {i: best.get(i, 0.0) for i in ids}


def old_compose(session, year, level):
    from app.services.assessment import (
        MEASURES,
        WEIGHT_TOTAL,
        _points,
        indicators,
        subjects,
        year_period,
    )

    period = year_period(year)
    rows = indicators(session, level)
    places = subjects(session, level)
    ids = list(places)
    values = {row.code: MEASURES[row.code](session, period, ids) for row in rows}
    result = {}
    for i in ids:
        parts = []
        for row in rows:
            value = values[row.code].get(i)
            weight, target = Decimal(str(row.weight)), Decimal(str(row.target))
            points = _points(value, weight, target)
            parts.append({"code": row.code, "name": row.name, "weight": float(weight),
                          "target": float(target),
                          "value": None if value is None else round(float(value), 4),
                          "points": 0.0 if points is None else float(points)})
        applicable = [p for p in parts if p["value"] is not None]
        weights = sum((Decimal(str(p["weight"])) for p in applicable), Decimal(0))
        earned = sum((Decimal(str(p["points"])) for p in applicable), Decimal(0))
        score = (earned * WEIGHT_TOTAL / weights).quantize(Decimal("0.01"), ROUND_HALF_UP) \
            if weights else Decimal(0).quantize(Decimal("0.01"))
        result[i] = {"community_id": places[i], "parts": parts, "score": score}
    return result


# --- the session they are compared in ------------------------------------------------------

# One live row of each table the measures read, soft-deleted in the session: the rewritten
# queries must leave them out as the old ones did (through the session's criteria or their own).
DELETED = {
    "member_registration": "SELECT min(r.id) FROM member_registration r JOIN member m ON "
                           "m.id = r.member_id WHERE r.status = '已报到' AND m.work_unit_id IS NOT NULL "
                           "AND m.category = '在职'",
    "member": "SELECT max(id) FROM member WHERE work_unit_id IS NOT NULL AND category = '在职' "
              "AND status = '正常'",
    "body_member": "SELECT min(id) FROM body_member WHERE unit_id IN "
                   "(SELECT unit_id FROM agreement WHERE status = '已签订')",
    "attendance": "SELECT max(id) FROM attendance WHERE status IN ('出席', '迟到') AND unit_id IN "
                  "(SELECT unit_id FROM agreement WHERE status = '已签订')",
    "need": "SELECT min(id) FROM need WHERE status IN ('已办结', '已回访') AND assigned_unit_id IN "
            "(SELECT unit_id FROM agreement WHERE status = '已签订')",
    "agreement": "SELECT max(id) FROM agreement WHERE status = '已签订'",
}


def _plant(session, tables):
    """The demo's few needs closed by two units on joint bodies this year and last, their
    agreements' yearly targets lowered (one to none), and a third unit absent a quarter: some
    agreements meet each criterion, some all three, some two of three."""
    need, agreement = tables["need"], tables["agreement"]
    units = session.execute(text("SELECT DISTINCT b.unit_id FROM body_member b JOIN agreement a "
                                 "ON a.unit_id = b.unit_id ORDER BY b.unit_id")).scalars().all()[:3]
    assert len(units) == 3, "the demo data has units with agreements on joint bodies"
    this = clock.today()
    for n, pk in enumerate(session.execute(select(need.c.id).order_by(need.c.id)).scalars()):
        year = this.year - (n % 3 == 2)
        month = min(n % 12 + 1, this.month) if year == this.year else n % 12 + 1
        session.execute(update(need).where(need.c.id == pk).values(
            status="已办结", assigned_unit_id=units[n % 2],
            completed_on=datetime(year, month, 1, 4, 0)))
    # ... and a third absent from every meeting of the second quarter: 3 of 4 attended
    attendance, meeting = tables["attendance"], tables["meeting"]
    session.execute(update(attendance).where(
        attendance.c.unit_id == units[2], attendance.c.meeting_id.in_(select(meeting.c.id).where(
            meeting.c.held_on.between(date(this.year, 4, 1), date(this.year, 6, 30)))))
        .values(status="缺席"))
    for unit, target in zip(units, (0, 2)):
        session.execute(update(agreement).where(agreement.c.unit_id == unit)
                        .values(yearly_target=target))


@pytest.fixture(params=["zuzhibu", "jiedao01"])
def session(request, app):
    """A session acting as the user, some rows soft-deleted in it; rolled back after."""
    with planted_session(app, request.param, _plant, DELETED) as session:
        yield session


@pytest.fixture(params=["zuzhibu", "jiedao01", "shequ01", "wangge01", "danwei01", "shenji"])
def viewer(request, app):
    """`session` as each kind of viewer, the rollups rebuilt over the rows planted and deleted
    (past the app, as a bulk load is): who sees all reads 协议“三个一” from them."""
    from app import rollups
    from app.security.principal import unscoped

    with planted_session(app, request.param, _plant, DELETED) as session:
        with unscoped():
            rollups.rebuild(session.connection())
        yield request.param, session


def years():
    this = clock.today().year
    return (this, this - 1)


def unit_ids(session):
    from app.models.org import Unit

    return list(session.execute(select(Unit.id).order_by(Unit.id)).scalars())


def test_unit_registration_rates_equal_the_old(session, monkeypatch):
    from app.services import cobuild
    from app.services.cobuild import Period, unit_registration_rates

    ids = unit_ids(session)
    assert ids
    for year in years():
        for period in (Period(str(year), year, None), Period(f"{year}Q2", year, 2)):
            old = old_unit_registration_rates(session, period, ids)
            assert any(v for v in old.values()), "some unit has members registered"
            assert unit_registration_rates(session, period, ids) == old
            assert unit_registration_rates(session, period, ids[:3]) == {i: old[i] for i in ids[:3]}
            monkeypatch.setattr(cobuild, "AMONG_LIMIT", 0)  # all units grouped, not a list
            assert unit_registration_rates(session, period, ids) == old
            monkeypatch.undo()


def test_three_ones_per_agreement_equal_the_old(session):
    from app.models.cobuild import Agreement
    from app.services.cobuild import three_ones

    agreements = session.execute(select(Agreement).order_by(Agreement.id)).scalars().all()
    assert agreements
    for year in years():
        for until in (None, date(year, 6, 30)):
            old = old_three_ones(session, agreements, year, until)
            new = three_ones(session, agreements, year, until)
            assert {pk: (t.in_force, t.quarters_held, t.quarters_attended, t.needs_closed, t.target)
                    for pk, t in new.items()} == old
            one = agreements[len(agreements) // 2]  # an agreement's page: its unit only
            assert three_ones(session, [one], year, until)[one.id] == new[one.id]
    judged = [_met(*t) for t in old_three_ones(session, agreements, years()[0]).values()]
    # the comparison is not all zeros: each criterion met by some, missed by others
    assert {meetings for meetings, _, _ in judged} == {True, False}
    assert {needs for _, needs, _ in judged} == {True, False}
    assert {met for _, _, met in judged} == {True, False}


def test_unit_three_ones_equal_the_old(session, monkeypatch):
    from app.services import cobuild
    from app.services.cobuild import Period, unit_three_ones

    ids = unit_ids(session)
    for year in years():
        for period in [Period(str(year), year, None)] + [
                Period(f"{year}Q{q}", year, q) for q in (1, 2, 3, 4)]:
            if period.start > clock.today():
                continue
            old = old_unit_three_ones(session, period, ids)
            assert unit_three_ones(session, period, ids) == old, period
            assert unit_three_ones(session, period, ids[-5:]) == {i: old[i] for i in ids[-5:]}
            monkeypatch.setattr(cobuild, "AMONG_LIMIT", 0)
            assert unit_three_ones(session, period, ids) == old, period
            monkeypatch.undo()
    assert len(set(old.values())) > 2, "the units' shares differ (not all 0 or 1)"


def test_agreement_three_ones_per_community_equal_the_old(viewer):
    """Each viewer's, all data and under streets and communities; who sees all reads the
    units' counts from their rollup (app/rollups.py UnitOnes), the others the rows."""
    from app import rollups
    from app.dashboards.figures import Period, agreement_three_ones
    from app.models.org import Organization

    username, session = viewer
    rolled = rollups.sees_all() and rollups.readable(session, rollups.UnitOnes.name)
    assert rolled == (username in ("zuzhibu", "shenji"))

    nodes = [None] + list(session.execute(select(Organization.id).where(
        Organization.type.in_(("street", "community"))).order_by(Organization.id).limit(6)).scalars())
    for year in years():
        period = Period(str(year), date(year, 1, 1), date(year, 12, 31))
        for org_id in nodes:
            old = old_agreement_three_ones(session, period, org_id)
            new = agreement_three_ones(session, period, org_id)
            assert {row["community_id"]: {k: row[k] for k in (
                "agreements", "meetings_met", "needs_met", "all_met", "rate")}
                for row in new} == old, (year, org_id)
    if username in ("zuzhibu", "jiedao01", "shenji"):  # not a comparison of nothing
        assert any(row["all_met"] for row in old_agreement_three_ones(session, Period(
            str(years()[0]), date(years()[0], 1, 1), date(years()[0], 12, 31))).values())


@pytest.mark.parametrize("level", ["community", "unit"])
def test_compose_equals_the_old_arithmetic(session, level):
    from app.services.assessment import compose

    for year in years():
        old = old_compose(session, year, level)
        new = compose(session, year, level)
        assert new == old
        assert len({c["score"] for c in new.values()}) > 1
