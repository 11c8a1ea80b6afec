"""Rollups (issue 29, app/rollups.py): the figures read from rollup cells equal their raw
queries — which stay the reference — for every viewer whose scope the cells can express, and
stay equal after the writes that move cells: certifying, revoking, changing a record's month
or member, moving a member to another community, soft delete, restore, purge, the ledger's
payments, twenty certifications at once, a community moved to another street, an import.
All data and a node at or above a community read the node cells (the subtree's sums at the
node); a unit's liaison the community cells. `rollups check` fails on a tampered cell."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from unittest import mock

import pytest
from sqlalchemy import text

from app import clock, rollups
from app.dashboards import figures as F
from app.models.rollups import (
    MonthlyServiceCell,
    NeedNode,
    ServiceHoursCell,
    ServiceHoursNode,
)
from tests.conftest import api_token, tables_kept_by

pytestmark = pytest.mark.db

ROLLED = ("service_hours_per_month", "member_points_leaderboard", "unit_points_leaderboard",
          "points_paid", "registration_rates", "need_funnel", "needs_by_category_and_status",
          "need_completion_rate", "need_on_time_rate", "need_mean_time_to_close",
          "need_mean_satisfaction", "needs_per_month", "monthly_service", "agreement_three_ones",
          "members_by_grid", "needs_by_community", "need_match_rate", "meeting_attendance_rate",
          "leader_compliance", "resolutions_on_time", "wishes_per_month", "wish_claim_rate",
          "overdue_by_step", "overdue_by_category")
MEETING_FIGURES = ("meeting_attendance_rate", "leader_compliance", "resolutions_on_time")
# Who sees what the cells can say: all data (zuzhibu, shenji), a street's and a community's
# subtree, a unit. A grid secretary and a member keep the raw queries.
CELL_VIEWERS = ["zuzhibu", "jiedao01", "shequ01", "danwei01", "shenji"]
RAW_VIEWERS = ["wangge01", "dangyuan01"]
DELETED = {"include_deleted": True}  # the recycle bin's rows


@pytest.fixture(scope="module", autouse=True)
def kept(app):
    """From cells rebuilt over whatever rows the modules before left (some write by SQL, past
    the app: a bulk load, which a deployment follows by `rollups rebuild`)."""
    with tables_kept_by(app):
        with viewing(app) as session:
            rollups.rebuild(session.connection())
            session.commit()
        yield


@contextmanager
def raw_only():
    """The figures as their raw queries compute them (the reference)."""
    with mock.patch.object(rollups, "cells", return_value=None), \
            mock.patch.object(rollups, "whole_ledger", return_value=False), \
            mock.patch.object(rollups, "sees_all", return_value=False):
        yield


@contextmanager
def viewing(app, username=None):
    """A session as `username` (its scope applies) or as the system."""
    from app.extensions import db
    from app.security.scope import SYSTEM, acting_as, principal_for

    with app.app_context():
        try:
            principal = SYSTEM
            if username is not None:
                user = db.session.execute(text("SELECT id FROM ab_user WHERE username = :u"),
                                          {"u": username}).scalar()
                principal = principal_for(db.session.get(app.appbuilder.sm.user_model, user))
            with acting_as(principal):
                yield db.session
        finally:
            db.session.remove()


def org_of(ctx, username):
    return ctx.execute(text("SELECT org_id FROM ab_user WHERE username = :u"),
                       {"u": username}).scalar()


def periods():
    quarter = f"{clock.today().year}Q{(clock.today().month - 1) // 3 + 1}"
    return [F.parse_period(code) for code in
            (str(clock.today().year), str(clock.today().year - 1), quarter, f"{clock.today():%Y-%m}")]


def both_ways(app, username, period, org_id, figures=ROLLED):
    # One instant for both: 各社区需求办理's overdue column is counted live, and a need whose
    # step falls due between the two readings is time passing, not the rollup.
    now = clock.utcnow()
    with viewing(app, username) as session, mock.patch.object(clock, "utcnow", return_value=now):
        rolled = {name: F.FIGURES[name].function(session, period, org_id) for name in figures}
        with raw_only():
            raw = {name: F.FIGURES[name].function(session, period, org_id) for name in figures}
    return rolled, raw


def assert_rolled_equal_raw(app, ctx, users=("zuzhibu",), figures=ROLLED):
    nodes = [None, org_of(ctx, "jiedao01"), org_of(ctx, "shequ01")]
    for username in users:
        for period in periods():
            for org_id in nodes if username in ("zuzhibu", "shenji") else [None]:
                rolled, raw = both_ways(app, username, period, org_id, figures)
                assert rolled == raw, (username, period.code, org_id)


def assert_cells_current(app):
    with viewing(app) as session:
        rollups.apply(session.connection())
        assert list(rollups.differences(session.connection())) == []
        session.commit()


def deleted_and_restored(app, model, pk):
    """To the recycle bin and back: the cells follow each step."""
    with viewing(app) as session:
        session.get(model, pk).soft_delete(None)
        session.commit()
    assert_cells_current(app)
    with viewing(app) as session:
        session.get(model, pk, execution_options=DELETED).restore()
        session.commit()
    assert_cells_current(app)


# --- the figures each viewer reads --------------------------------------------------------------

@pytest.mark.parametrize("username", CELL_VIEWERS)
def test_each_rolled_figure_equals_its_raw_query(app, ctx, username):
    assert_rolled_equal_raw(app, ctx, users=[username])
    with viewing(app, username) as session:
        assert rollups.cells_where(session, ServiceHoursCell.__table__, None) is not None
        assert rollups.whole_ledger(None) == (username in ("zuzhibu", "shenji"))


@pytest.mark.parametrize("username", ["zuzhibu", "shenji", "jiedao01"])
def test_all_data_and_a_nodes_subtree_read_that_nodes_cells(app, ctx, username):
    """One node's rows, not its communities': all data reads node 0, a street's admin its street,
    组织部 at a street that street."""
    own = org_of(ctx, username) if username == "jiedao01" else rollups.ALL_DATA
    street = ctx.execute(text("SELECT path FROM organization WHERE id = :i"),
                         {"i": org_of(ctx, "jiedao01")}).scalar()
    with viewing(app, username) as session:
        table, where = rollups.cells(session, rollups.Needs.name, None)
        assert table is NeedNode.__table__
        assert ctx.execute(text("SELECT count(*) FROM rollup_node_need WHERE node_id = :n"),
                           {"n": own}).scalar() > 0
        assert session.execute(table.select().where(where)).all() == session.execute(
            table.select().where(table.c.node_id == own)).all()
        if username in ("zuzhibu", "jiedao01"):
            table, where = rollups.cells(session, rollups.ServiceHours.name, street)
            assert table is ServiceHoursNode.__table__
            assert {r.node_id for r in session.execute(table.select().where(where))} == \
                {org_of(ctx, "jiedao01")}


@pytest.mark.parametrize("username", ["danwei01", "shequ01"])
def test_a_liaison_and_a_community_read_community_cells(app, username):
    with viewing(app, username) as session:
        table, _ = rollups.cells(session, rollups.ServiceHours.name, None)
        assert table is ServiceHoursCell.__table__


def test_a_registration_placed_in_two_communities_of_one_street_counts_once_there(app, ctx):
    """A member living in one community (its grid there) registers in another of the same
    street: each community counts it, their street and all data once, as the raw rows do."""
    from app.models.cobuild import MemberRegistration

    street = org_of(ctx, "jiedao01")
    home, there = ctx.execute(text(
        "SELECT id FROM organization WHERE parent_id = :s AND type = 'community' ORDER BY id"),
        {"s": street}).scalars().all()[:2]
    member = ctx.execute(text(
        "SELECT m.id FROM member m WHERE m.community_id = :c AND m.group_id IS NOT NULL AND "
        "m.deleted_on IS NULL AND NOT EXISTS (SELECT 1 FROM member_registration r WHERE "
        "r.member_id = m.id AND r.active_key IS NOT NULL) ORDER BY m.id"), {"c": home}).scalar()
    with viewing(app) as session:
        session.add(MemberRegistration(member_id=member, community_id=there, status="已报到",
                                       registered_on=clock.today()))
        session.commit()
    assert_cells_current(app)
    counted = dict(ctx.execute(text(
        "SELECT node_id, sum(count) FROM rollup_node_registration WHERE kind = 'member_reg' "
        "AND community_id = :t AND year = :y AND month = :m GROUP BY node_id"),
        {"t": there, "y": clock.today().year, "m": clock.today().month}).all())
    assert counted[street] == counted[rollups.ALL_DATA] >= 1
    assert_rolled_equal_raw(app, ctx, ["zuzhibu", "jiedao01", "shequ01"])


def test_a_community_moved_to_another_street_moves_its_sums_there(app, ctx):
    """The tree changes: a community moved under another street leaves its old street's node
    cells and joins the new one's — and back."""
    from app.models.org import Organization

    community = org_of(ctx, "shequ01")
    street = ctx.execute(text("SELECT parent_id FROM organization WHERE id = :c"),
                         {"c": community}).scalar()
    other = ctx.execute(text("SELECT id FROM organization WHERE type = 'street' AND id != :s "
                             "ORDER BY id"), {"s": street}).scalar()
    assert other is not None, "the seed has two streets"

    def hours_at(node):
        return ctx.execute(text("SELECT coalesce(sum(records), 0) FROM rollup_node_service_hours "
                                "WHERE node_id = :n"), {"n": node}).scalar()

    moving = ctx.execute(text("SELECT sum(records) FROM rollup_service_hours WHERE "
                              "community_id = :c"), {"c": community}).scalar()
    before = hours_at(street), hours_at(other), moving
    assert moving > 0
    try:
        change(app, Organization, community, parent_id=other)
        assert ctx.execute(text("SELECT count(*) FROM rollup_mark WHERE rollup = 'nodes'")).scalar()
        assert_cells_current(app)
        assert (hours_at(street), hours_at(other)) == (before[0] - moving, before[1] + moving)
        nodes = [None, street, other, community]
        for period in periods()[:2]:
            for org_id in nodes:
                rolled, raw = both_ways(app, "zuzhibu", period, org_id)
                assert rolled == raw, (period.code, org_id)
    finally:
        change(app, Organization, community, parent_id=street)
    assert_cells_current(app)
    assert (hours_at(street), hours_at(other)) == before[:2]


def test_members_imported_count_at_every_node_above_them(app, ctx, as_user):
    import io

    from openpyxl import Workbook

    from tests.test_data_io import id_number

    community = ctx.execute(text("SELECT code FROM organization WHERE id = :c"),
                            {"c": org_of(ctx, "shequ01")}).scalar()
    book = Workbook()
    book.active.append(["姓名", "身份证号", "居住社区", "党员类别", "状态"])
    for n in range(5):
        book.active.append([f"汇总导入党员{n}", id_number(900 + n), community, "在职", "正常"])
    buffer = io.BytesIO()
    book.save(buffer)
    browser = as_user("zuzhibu")
    page = browser.post("/member/import/", {"file": (io.BytesIO(buffer.getvalue()), "党员.xlsx")},
                        form_url="/member/import/", content_type="multipart/form-data")
    assert "汇总导入党员" in ctx.execute(text("SELECT coalesce(max(name), '') FROM member WHERE "
                                        "name LIKE '汇总导入党员%'")).scalar(), \
        page.get_data(as_text=True)[:3000]
    assert_rolled_equal_raw(app, ctx, ["zuzhibu", "jiedao01", "shequ01"])
    assert_cells_current(app)


@pytest.mark.parametrize("username", RAW_VIEWERS)
def test_a_grid_secretary_and_a_member_keep_the_raw_queries(app, username):
    with viewing(app, username) as session:
        assert rollups.cells_where(session, ServiceHoursCell.__table__, None) is None
        assert not rollups.whole_ledger(None)


def test_a_node_below_a_community_keeps_the_raw_query(app, ctx):
    grid = ctx.execute(text("SELECT path FROM organization WHERE type = 'grid' ORDER BY id")).scalar()
    with viewing(app, "zuzhibu") as session:
        assert rollups.cells_where(session, ServiceHoursCell.__table__, grid) is None


def test_the_seeded_cells_hold_hours_and_points(ctx):
    """Not vacuous: the seed's certified records and ledger are in the cells."""
    assert ctx.execute(text("SELECT sum(records) FROM rollup_service_hours")).scalar() == \
        ctx.execute(text("SELECT count(*) FROM service_record WHERE status = '已认证' "
                         "AND deleted_on IS NULL")).scalar() > 0
    assert ctx.execute(text("SELECT count(*) FROM rollup_point_balance")).scalar() > 0


# --- writes move cells ------------------------------------------------------------------------

def member_in(ctx, username, other=False):
    """A live member living in `username`'s community (or, `other`, outside its street)."""
    path = ctx.execute(text("SELECT o.path FROM ab_user u JOIN organization o ON o.id = u.org_id "
                            "WHERE u.username = :u"), {"u": username}).scalar()
    where = "NOT LIKE" if other else "LIKE"
    return ctx.execute(text(
        f"SELECT m.id FROM member m JOIN organization o ON o.id = m.community_id "
        f"WHERE o.path {where} :p AND m.deleted_on IS NULL ORDER BY m.id"), {"p": path + "%"}).scalar()


def new_record(app, member_id, served_on, hours=3, status="已认证"):
    from app.models.cobuild import ServiceRecord

    with viewing(app) as session:
        record = ServiceRecord(member_id=member_id, served_on=served_on, hours=hours,
                               description="汇总测试", status=status)
        session.add(record)
        session.commit()
        return record.id


def change(app, model, pk, **values):
    with viewing(app) as session:
        row = session.get(model, pk)
        for key, value in values.items():
            setattr(row, key, value)
        session.commit()


def test_a_record_certified_moved_deleted_restored_and_purged_keeps_the_cells(app, ctx):
    from app.models.cobuild import ServiceRecord
    from app.services.recycle import purge_expired

    here, elsewhere = member_in(ctx, "shequ01"), member_in(ctx, "jiedao01", other=True)
    first = clock.today().replace(day=1)
    last_month = first - timedelta(days=1)
    pk = new_record(app, here, clock.today())
    assert ctx.execute(text("SELECT count(*) FROM rollup_mark")).scalar() > 0, "marked"
    assert_rolled_equal_raw(app, ctx, ["shequ01", "zuzhibu"])  # applied before reading
    assert_cells_current(app)
    # A certified record changes only once its certification is revoked (models.cobuild).
    for values in ({"status": "待认证"}, {"served_on": last_month}, {"hours": 7},
                   {"status": "已认证"}, {"status": "待认证", "member_id": elsewhere},
                   {"status": "已认证", "served_on": first}):
        change(app, ServiceRecord, pk, **values)
        assert_cells_current(app)
    deleted_and_restored(app, ServiceRecord, pk)
    assert_rolled_equal_raw(app, ctx, ["zuzhibu", "jiedao01"])
    with viewing(app) as session:
        session.get(ServiceRecord, pk).soft_delete(None)
        session.commit()
        purge_expired(session, 0, now=clock.utcnow() + timedelta(days=1))
        session.commit()
    assert ctx.execute(text("SELECT count(*) FROM service_record WHERE id = :i"),
                       {"i": pk}).scalar() == 0
    assert_cells_current(app)


def test_a_member_moved_deleted_and_restored_carries_its_hours(app, ctx):
    from app.models.org import Member

    member = member_in(ctx, "shequ01")
    new_record(app, member, clock.today().replace(day=1))
    new_record(app, member, date(clock.today().year - 1, 6, 1))
    assert_cells_current(app)
    community, group = ctx.execute(text(
        "SELECT m.community_id, m.group_id FROM member m WHERE m.id = :i"), {"i": member}).one()
    other = ctx.execute(text(
        "SELECT id FROM organization WHERE type = 'community' AND id != :c ORDER BY id"),
        {"c": community}).scalar()
    change(app, Member, member, community_id=other, group_id=None)
    assert_cells_current(app)
    assert_rolled_equal_raw(app, ctx, ["zuzhibu", "shequ01"])
    with viewing(app) as session:
        session.get(Member, member).soft_delete(None)
        session.commit()
    assert_cells_current(app)
    assert_rolled_equal_raw(app, ctx, ["zuzhibu"])
    with viewing(app) as session:
        session.get(Member, member, execution_options=DELETED).restore()
        session.commit()
    change(app, Member, member, community_id=community, group_id=group)
    assert_cells_current(app)


def test_registrations_cancelled_members_retired_and_units_struck_off_keep_the_counts(app, ctx):
    from app.models.cobuild import MemberRegistration, UnitRegistration
    from app.models.org import Member, Unit

    community = org_of(ctx, "shequ01")
    member_reg, member = ctx.execute(text(
        "SELECT id, member_id FROM member_registration WHERE status = '已报到' AND "
        "deleted_on IS NULL AND community_id = :c ORDER BY id"), {"c": community}).first()
    unit_reg, unit = ctx.execute(text(
        "SELECT id, unit_id FROM unit_registration WHERE status = '已报到' AND "
        "deleted_on IS NULL AND community_id = :c ORDER BY id"), {"c": community}).first()
    steps = [(MemberRegistration, member_reg, {"status": "已注销", "cancel_reason": "测试"}),
             (UnitRegistration, unit_reg, {"registered_on": date(clock.today().year - 1, 3, 1)}),
             (Member, member, {"category": "退休"}),
             (Unit, unit, {"status": "已注销", "cancel_reason": "测试"}),
             (Unit, unit, {"status": "在册"}),
             (UnitRegistration, unit_reg, {"status": "已注销", "cancel_reason": "测试"})]
    for model, pk, values in steps:
        change(app, model, pk, **values)
        assert_rolled_equal_raw(app, ctx, ["zuzhibu", "shequ01"])
        assert_cells_current(app)
    deleted_and_restored(app, Unit, unit)


def test_monthly_service_follows_records_registrations_and_members(app, ctx, api):
    """已报到党员本月服务 read from its cells equals the raw figure for each viewer the cells
    serve — a street's admin counting only the members living in its street, a liaison its
    unit's — after each write that moves them: a work unit changed, registrations confirmed
    (one of a member living outside the street), a record added, certified, rejected, deleted
    and restored, a registration transferred out and the member registered in another
    street, one cancelled, a member deleted and restored; `rollups check` clean after each."""
    from app.models.cobuild import MemberRegistration, ServiceRecord
    from app.models.org import Member

    community = org_of(ctx, "shequ01")
    street = ctx.execute(text("SELECT path FROM organization WHERE id = :i"),
                         {"i": org_of(ctx, "jiedao01")}).scalar()
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei01'")).scalar()
    elsewhere = ctx.execute(text("SELECT id FROM organization WHERE type = 'community' AND "
                                 "path NOT LIKE :p ORDER BY id"), {"p": street + "%"}).scalar()

    def unregistered(where, **params):
        return ctx.execute(text(
            "SELECT m.id FROM member m JOIN organization o ON o.id = m.community_id WHERE "
            f"{where} AND m.deleted_on IS NULL AND NOT EXISTS (SELECT 1 FROM "
            "member_registration r WHERE r.member_id = m.id AND r.active_key IS NOT NULL) "
            "ORDER BY m.id"), params).scalar()

    here = unregistered("m.community_id = :c AND m.group_id IS NOT NULL", c=community)
    outsider = unregistered("o.path NOT LIKE :p", p=street + "%")
    assert here and outsider and elsewhere
    client, headers = api("zuzhibu")

    def move(resource, pk, name, **body):
        response = client.post(f"/api/v1/{resource}/{pk}/transition/{name}", headers=headers,
                               json=body)
        assert response.status_code == 200, response.get_json()

    def registered_here():
        return ctx.execute(text("SELECT coalesce(sum(members), 0) FROM rollup_monthly_service "
                                "WHERE community_id = :c AND year = 0"), {"c": community}).scalar()

    def check():
        assert_rolled_equal_raw(app, ctx, CELL_VIEWERS, figures=("monthly_service",))
        assert_cells_current(app)

    before = registered_here()
    change(app, Member, here, work_unit_id=unit)
    check()
    with viewing(app) as session:
        made = [MemberRegistration(member_id=m, community_id=community, status="待确认",
                                   registered_on=clock.today()) for m in (here, outsider)]
        session.add_all(made)
        session.commit()
        mine, theirs = (r.id for r in made)
    check()
    for pk in (mine, theirs):
        move("member_registration", pk, "confirm")
    check()
    assert registered_here() == before + 2, "the cells count the registrations confirmed"
    record = new_record(app, here, clock.today(), status="待认证")
    check()
    move("service_record", record, "certify")
    check()
    refused = new_record(app, outsider, clock.today(), status="待认证")
    move("service_record", refused, "reject", reason="汇总测试驳回")
    check()
    new_record(app, here, clock.today().replace(day=1) - timedelta(days=1))  # last month
    deleted_and_restored(app, ServiceRecord, record)
    check()
    move("member_registration", mine, "transfer_out", note="转往其他街道")
    check()
    with viewing(app) as session:
        session.add(MemberRegistration(member_id=here, community_id=elsewhere, status="已报到",
                                       registered_on=clock.today()))
        session.commit()
    check()
    change(app, Member, here, work_unit_id=None)
    check()
    move("member_registration", theirs, "cancel", reason="汇总测试注销")
    check()
    assert registered_here() == before
    deleted_and_restored(app, Member, here)
    check()
    for username in CELL_VIEWERS:
        with viewing(app, username) as session:
            table, _ = rollups.cells(session, rollups.MonthlyService.name, None)
            assert table is MonthlyServiceCell.__table__, username


@pytest.mark.parametrize("username", CELL_VIEWERS + RAW_VIEWERS)
def test_the_boards_monthly_service_card_reads_the_figures_sums(app, ctx, username):
    """The board shows monthly_service's sums alone: it reads them as such (a city's figure is
    329,141 rows), from the cells and from the raw rows alike."""
    from app.dashboards.views import Board

    keys = ("registered", "served", "unserved")
    nodes = [None, org_of(ctx, "jiedao01")] if username == "zuzhibu" else [None]
    for period in periods():
        for org_id in nodes:
            with viewing(app, username) as session, app.test_request_context("/dashboard/"):
                rows = F.monthly_service(session, period, org_id)
                sums = {k: sum(r[k] for r in rows) for k in keys}
                [card] = Board(session, period, org_id).rows["monthly_service"]
                assert {k: card[k] for k in keys} == sums, (period.code, org_id)
                with raw_only():
                    [raw] = F.monthly_service_totals(session, period, org_id)
                assert {k: raw[k] for k in keys} == sums, (period.code, org_id)
    assert sums["registered"] > 0


def test_needs_backfilled_moved_through_the_loop_deleted_and_restored_keep_the_counts(app, ctx):
    """A need recorded after the fact (raised last year just after midnight on the 1st in the
    zone's calendar, closed months later likewise, rated), then re-rated, reopened, closed a
    month later, moved to another community, deleted and restored: the counts stay the
    needs'."""
    from app.models.lists import Need

    community = org_of(ctx, "shequ01")
    other = ctx.execute(text("SELECT id FROM organization WHERE type = 'community' AND id != :c "
                             "ORDER BY id"), {"c": community}).scalar()
    category = ctx.execute(text("SELECT id FROM dictionary WHERE kind = 'need_category' "
                                "ORDER BY id")).scalar()
    # Just after midnight on a month's first day in the zone: still the month before in UTC.
    raised = clock.to_utc(datetime(clock.today().year - 1, 4, 1, 0, 30))
    closed = clock.day_begins(date(clock.today().year - 1, 6, 1)) + timedelta(minutes=10)
    with viewing(app) as session:
        need = Need(community_id=community, category_id=category, title="补录需求",
                    content="汇总测试：往期办结", status="已回访", urgency="一般",
                    created_on=raised, accepted_on=raised, dispatched_on=raised, taken_on=raised,
                    completed_on=closed, deadline=closed + timedelta(days=1), result="已解决",
                    visitor="测试", visited_on=closed.date(), satisfaction=4)
        session.add(need)
        session.commit()
        pk = need.id
    assert_rolled_equal_raw(app, ctx, ["zuzhibu", "jiedao01", "shequ01"])
    assert_cells_current(app)
    for values in ({"satisfaction": 2}, {"status": "办理中", "completed_on": None},
                   {"status": "已办结", "completed_on": closed + timedelta(days=40)},
                   {"community_id": other, "grid_id": None}):
        change(app, Need, pk, **values)
        assert_rolled_equal_raw(app, ctx, ["zuzhibu", "shequ01"])
        assert_cells_current(app)
    deleted_and_restored(app, Need, pk)
    assert_rolled_equal_raw(app, ctx, ["zuzhibu"])


def test_a_members_grid_flags_community_and_deletion_keep_the_grid_counts(app, ctx):
    """各网格党员's cells (MemberGroups) follow a member made 红色网格员 and 党员中心户, moved
    to another building group of its community, left without one, moved to another
    community, deleted and restored."""
    from app.models.org import Member

    member = member_in(ctx, "shequ01")
    community = org_of(ctx, "shequ01")
    path = ctx.execute(text("SELECT path FROM organization WHERE id = :c"),
                       {"c": community}).scalar()
    groups = ctx.execute(text(
        "SELECT id FROM organization WHERE path LIKE :p AND type IN ('grid', 'building') "
        "AND deleted_on IS NULL ORDER BY type DESC, id"), {"p": path + "%"}).scalars().all()
    other = ctx.execute(text("SELECT id FROM organization WHERE type = 'community' AND id != :c "
                             "ORDER BY id"), {"c": community}).scalar()
    assert len(groups) >= 2
    for values in ({"is_red_grid_worker": True, "is_household_center": True},
                   {"group_id": groups[0]}, {"group_id": groups[-1]},
                   {"is_red_grid_worker": False}, {"group_id": None},
                   {"group_id": groups[1]}, {"community_id": other, "group_id": None},
                   {"community_id": community, "group_id": groups[0]}):
        change(app, Member, member, **values)
        assert_cells_current(app)
        assert_rolled_equal_raw(app, ctx, ["zuzhibu", "jiedao01", "shequ01"])
    deleted_and_restored(app, Member, member)
    assert_rolled_equal_raw(app, ctx, ["zuzhibu", "shequ01"])


def test_meetings_attendance_bodies_and_needs_keep_the_units_three_ones(app, ctx):
    """A unit's 三个一 (UnitOnes) follow what counts them: a meeting of its body held in a new
    quarter, then moved to another quarter, cancelled and put back; its attendance marked
    absent and present again; its seat on the body deleted and restored; a need it closed
    this year reopened, closed again and handed to another unit; the meeting deleted and
    restored — and 协议“三个一” of who sees all stays its raw query's."""
    from app.models.lists import Need
    from app.models.meetings import Attendance, BodyMember, JointBody, Meeting
    from app.models.org import Unit

    unit, body = ctx.execute(text(
        "SELECT b.unit_id, b.body_id FROM body_member b JOIN agreement a ON a.unit_id = b.unit_id "
        "WHERE a.status = '已签订' AND b.deleted_on IS NULL ORDER BY b.id")).first()
    seat = ctx.execute(text("SELECT id FROM body_member WHERE unit_id = :u AND body_id = :b"),
                       {"u": unit, "b": body}).scalar()
    other = ctx.execute(text("SELECT id FROM unit WHERE id != :u ORDER BY id"), {"u": unit}).scalar()
    held_on = date(clock.today().year - 1, 2, 10)

    def check():
        assert_cells_current(app)
        assert_rolled_equal_raw(app, ctx, ["zuzhibu", "shenji"])

    with viewing(app) as session:
        meeting = Meeting(body=session.get(JointBody, body), type="临时会议",
                          planned_date=held_on, status="已召开", held_on=held_on, place="汇总测试")
        session.add(meeting)
        session.flush()
        session.add(Attendance(meeting=meeting, unit=session.get(Unit, unit), attendee="测试",
                               attendee_level="一把手", status="出席"))
        session.commit()
        pk = meeting.id
        attendance = session.execute(text("SELECT id FROM attendance WHERE meeting_id = :m"),
                                     {"m": pk}).scalar()
    with viewing(app) as session:
        cell = session.execute(text("SELECT quarters_held, quarters_attended FROM "
                                    "rollup_unit_ones WHERE unit_id = :u AND year = :y"),
                               {"u": unit, "y": held_on.year}).first()
    assert cell is not None and cell[0] >= 1 and cell[1] >= 1
    check()
    for values in ({"held_on": date(clock.today().year - 1, 8, 10)},
                   {"status": "计划中", "held_on": None}, {"status": "已召开", "held_on": held_on}):
        change(app, Meeting, pk, **values)
        check()
    for status in ("缺席", "迟到"):
        change(app, Attendance, attendance, status=status)
        check()
    deleted_and_restored(app, BodyMember, seat)
    check()
    need = ctx.execute(text("SELECT id FROM need WHERE status IN ('已办结', '已回访') "
                            "ORDER BY id")).scalar()
    closed = clock.day_begins(date(clock.today().year, 1, 5))
    for values in ({"assigned_unit_id": unit, "completed_on": closed},
                   {"status": "办理中", "completed_on": None},
                   {"status": "已办结", "completed_on": closed},
                   {"assigned_unit_id": other}):
        change(app, Need, need, **values)
        check()
    deleted_and_restored(app, Meeting, pk)
    check()


def test_meetings_attendance_resolutions_and_bodies_keep_the_hosts_cells(app, ctx):
    """参会率, 参会职级 and 议定事项办理's cells (MeetingAttendance, Resolutions: per host of the
    body) follow an attendance marked absent and sent below the required level, the meeting
    held a month earlier, put back to planned and held again, the body's required level
    changed, a resolution closed late, its deadline moved, deleted and restored, the meeting
    deleted and restored (its attendance and resolutions with it), the body hosted by the
    street instead and back — each viewer the cells serve reading its raw query's figures."""
    from app.models.meetings import Attendance, JointBody, Meeting, Resolution

    community = org_of(ctx, "shequ01")
    meeting, body, held_on = ctx.execute(text(
        "SELECT m.id, m.body_id, m.held_on FROM meeting m JOIN joint_body b ON b.id = m.body_id "
        "WHERE b.host_id = :c AND m.status = '已召开' AND m.type = '季研讨会' AND m.deleted_on "
        "IS NULL AND EXISTS (SELECT 1 FROM resolution r WHERE r.meeting_id = m.id AND "
        "r.deleted_on IS NULL) AND EXISTS (SELECT 1 FROM attendance a WHERE a.meeting_id = "
        "m.id AND a.status = '出席' AND a.deleted_on IS NULL) ORDER BY m.held_on DESC"),
        {"c": community}).first()
    held_on = date.fromisoformat(str(held_on))
    attendance = ctx.execute(text("SELECT id FROM attendance WHERE meeting_id = :m AND "
                                  "status = '出席' ORDER BY id"), {"m": meeting}).scalar()
    resolution, deadline = ctx.execute(text(
        "SELECT id, deadline FROM resolution WHERE meeting_id = :m ORDER BY id"),
        {"m": meeting}).first()
    deadline = date.fromisoformat(str(deadline))
    street = ctx.execute(text("SELECT parent_id FROM organization WHERE id = :c"),
                         {"c": community}).scalar()
    earlier = (held_on.replace(day=1) - timedelta(days=1)).replace(day=min(held_on.day, 28))

    def check():
        assert_cells_current(app)
        assert_rolled_equal_raw(app, ctx, ["zuzhibu", "jiedao01", "shequ01"], MEETING_FIGURES)

    check()
    steps = [(Attendance, attendance, {"status": "缺席"}),
             (Attendance, attendance, {"status": "出席", "attendee_level": "党务干部"}),
             (Meeting, meeting, {"held_on": earlier}),
             (Meeting, meeting, {"status": "计划中", "held_on": None}),
             (Meeting, meeting, {"status": "已召开", "held_on": held_on}),
             (JointBody, body, {"quarterly_level": "党务干部"}),
             (JointBody, body, {"quarterly_level": "一把手"}),
             (Resolution, resolution, {"status": "已办结", "closed_on": deadline + timedelta(days=3)}),
             (Resolution, resolution, {"deadline": deadline + timedelta(days=40)}),
             (JointBody, body, {"host_id": street}),
             (JointBody, body, {"host_id": community})]
    for model, pk, values in steps:
        change(app, model, pk, **values)
        check()
    deleted_and_restored(app, Resolution, resolution)
    deleted_and_restored(app, Meeting, meeting)
    check()
    with viewing(app) as session:
        assert session.execute(text("SELECT count(*) FROM rollup_node_attendance WHERE node_id = 0 "
                                    "AND below > 0")).scalar() > 0
        assert session.execute(text("SELECT count(*) FROM rollup_resolution WHERE host_id = :c "
                                    "AND closed > on_time"), {"c": community}).scalar() > 0


def test_needs_matched_follow_their_links_and_resources(app, ctx):
    """需求匹配率's `matched` (Needs' cells) follows a service item linked to a need and
    unlinked, the item deleted and restored, linked and unlinked from the need's side, a
    resource proposed for a need and taken on."""
    from app.models.lists import Need, NeedResource, Resource, ServiceItem

    community = org_of(ctx, "shequ01")
    need = ctx.execute(text(
        "SELECT id FROM need WHERE community_id = :c AND status = '已受理' AND deleted_on IS NULL "
        "AND id NOT IN (SELECT need_id FROM service_item_need) ORDER BY created_on DESC"),
        {"c": community}).scalar()
    item = ctx.execute(text("SELECT id FROM service_item WHERE deleted_on IS NULL AND status = "
                            "'已发布' ORDER BY id")).scalar()
    resource = ctx.execute(text("SELECT id FROM resource WHERE status = '已发布' AND deleted_on "
                                "IS NULL ORDER BY id")).scalar()

    def check():
        assert_cells_current(app)
        assert_rolled_equal_raw(app, ctx, ["zuzhibu", "jiedao01", "shequ01"], ("need_match_rate",))

    def matched_here():
        return ctx.execute(text("SELECT coalesce(sum(matched), 0) FROM rollup_need "
                                "WHERE community_id = :c"), {"c": community}).scalar()

    before = matched_here()
    with viewing(app) as session:
        linked = session.get(ServiceItem, item)
        linked.needs.append(session.get(Need, need))
        session.commit()
    check()
    assert matched_here() == before + 1
    deleted_and_restored(app, ServiceItem, item)
    with viewing(app) as session:
        linked = session.get(ServiceItem, item)
        linked.needs.remove(session.get(Need, need))
        session.commit()
    check()
    assert matched_here() == before
    with viewing(app) as session:  # from the need's side: a need written
        linked = session.get(Need, need)
        linked.service_items.append(session.get(ServiceItem, item))
        session.commit()
    check()
    assert matched_here() == before + 1
    with viewing(app) as session:
        linked = session.get(Need, need)
        linked.service_items.clear()
        session.commit()
    check()
    with viewing(app) as session:
        match = NeedResource(need=session.get(Need, need), resource=session.get(Resource, resource))
        session.add(match)
        session.commit()
        pk = match.id
    check()
    change(app, NeedResource, pk, status="已认领")
    check()
    assert matched_here() == before + 1
    deleted_and_restored(app, NeedResource, pk)
    check()


def test_wishes_claimed_fulfilled_moved_and_deleted_keep_their_months(app, ctx):
    """微心愿月度情况 and 认领率's cells (Wishes) follow a wish recorded after the fact (posted
    last year just after midnight on the 1st in the zone's calendar), claimed, the claim
    cancelled, claimed again, fulfilled and confirmed a month later, moved to another
    community, deleted and restored."""
    from app.models.lists import MicroWish

    community = org_of(ctx, "shequ01")
    other = ctx.execute(text("SELECT id FROM organization WHERE type = 'community' AND id != :c "
                             "ORDER BY id"), {"c": community}).scalar()
    member = member_in(ctx, "shequ01")
    posted = clock.day_begins(date(clock.today().year - 1, 11, 1)) + timedelta(minutes=5)
    wished = ("zuzhibu", "jiedao01", "shequ01")
    with viewing(app) as session:
        wish = MicroWish(community_id=community, resident_name="汇总测试", content="汇总测试心愿",
                         status="待认领", created_on=posted)
        session.add(wish)
        session.commit()
        pk = wish.id
    assert_cells_current(app)
    claimed = posted + timedelta(days=29, hours=23)  # the zone's 30 November, UTC's 30 November
    for values in ({"status": "已认领", "claimant_member_id": member, "claimed_on": claimed},
                   {"status": "待认领", "claimant_member_id": None, "claimed_on": None},
                   {"status": "已认领", "claimant_member_id": member, "claimed_on": claimed},
                   {"status": "已实现", "fulfilled_on": claimed + timedelta(days=31)},
                   {"status": "已确认"}, {"community_id": other}):
        change(app, MicroWish, pk, **values)
        assert_cells_current(app)
        assert_rolled_equal_raw(app, ctx, wished, ("wishes_per_month", "wish_claim_rate"))
    deleted_and_restored(app, MicroWish, pk)
    assert_rolled_equal_raw(app, ctx, ["zuzhibu"], ("wishes_per_month", "wish_claim_rate"))


def test_the_ledgers_payments_and_reversals_move_the_balances(app, ctx, api):
    """Certify (pay) and revoke (reverse) through the API: the leaderboards stay the ledger's."""
    member = member_in(ctx, "shequ01")
    pk = new_record(app, member, clock.today(), hours=20, status="待认证")
    client, headers = api("shequ01")
    url = f"/api/v1/service_record/{pk}/transition/"
    assert client.post(url + "certify", headers=headers, json={}).status_code == 200
    assert ctx.execute(text("SELECT count(*) FROM point_entry WHERE source_id = :i AND "
                            "source_type = 'service_record'"), {"i": pk}).scalar() > 0
    assert_rolled_equal_raw(app, ctx, ["zuzhibu", "shenji"])
    assert_cells_current(app)
    response = client.post(url + "revoke", headers=headers, json={"reason": "测试撤销"})
    assert response.status_code == 200, response.get_json()
    assert_rolled_equal_raw(app, ctx, ["zuzhibu"])
    assert_cells_current(app)


def test_twenty_certifications_at_once_in_one_community(app, ctx, database_url):
    """Moves in parallel, each in its own session and transaction: every one marks its cell,
    and the cells applied afterwards are the raw rows' (a recompute, not an increment)."""
    count = 5 if database_url.startswith("sqlite") else 20
    member = member_in(ctx, "shequ01")
    pks = [new_record(app, member, clock.today(), hours=1, status="待认证") for _ in range(count)]
    assert_cells_current(app)
    headers = api_token(app, "shequ01")
    start, results = threading.Barrier(count), []

    def certify(pk):
        client = app.test_client()
        start.wait(timeout=60)
        response = client.post(f"/api/v1/service_record/{pk}/transition/certify",
                               headers=headers, json={})
        results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=certify, args=(pk,)) for pk in pks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    codes = [code for code, _ in results]
    if database_url.startswith("sqlite"):  # one writer at a time: the others may be told to retry
        assert 200 in codes and set(codes) <= {200, 409}, results
    else:
        assert codes == [200] * count, results
    assert_rolled_equal_raw(app, ctx, ["shequ01", "zuzhibu"])
    assert_cells_current(app)


CHILD_BOARD = """
import csv, io, sys
from app import create_app
from tests.conftest import login
app = create_app("testing", SQLALCHEMY_DATABASE_URI=sys.argv[1])
browser = login(app, "zuzhibu")
body = browser.get("/dashboard/figure/service_hours_per_month.csv?period=" + sys.argv[2])
rows = list(csv.reader(io.StringIO(body.get_data(as_text=True).lstrip("\ufeff"))))
print([r for r in rows if r[1] == sys.argv[2]][0][2])
"""


def hours_on_another_process(database_url, month: str) -> float:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CHILD_BOARD, database_url, month],
                          capture_output=True, text=True, timeout=120, cwd=".")
    assert done.returncode == 0, done.stderr[-2000:]
    return float(done.stdout.strip().splitlines()[-1])


def test_a_write_on_one_process_shows_on_anothers_board(app, ctx, database_url):
    """Two app processes on one database: a certified record written through this one is on
    the other's board once applied (here by the other's page itself: no queue)."""
    month = f"{clock.today():%Y-%m}"
    before = hours_on_another_process(database_url, month)
    new_record(app, member_in(ctx, "shequ01"), clock.today(), hours=6)
    assert hours_on_another_process(database_url, month) == before + 6


def test_a_report_frozen_at_submission_reads_the_raw_rows(app, ctx):
    """A figure frozen for good is not a minute behind: with a queue (nothing applied by the
    reader), the submitted monthly report still counts the write just made."""
    from app.models.lists import Need
    from app.services.work_report import compose

    community, month = org_of(ctx, "shequ01"), f"{clock.today():%Y-%m}"
    category = ctx.execute(text("SELECT id FROM dictionary WHERE kind = 'need_category' "
                                "ORDER BY id")).scalar()
    app.config["CELERY_BROKER_URL"] = "memory://"
    try:
        with viewing(app) as session:
            session.add(Need(community_id=community, category_id=category, title="本月新需求",
                             content="汇总测试：冻结", status="待受理", urgency="一般"))
            session.commit()
            live = compose(session, community, month)["needs_per_month"]
            with rollups.raw_rows(session):
                frozen = compose(session, community, month)["needs_per_month"]
            with raw_only():
                reference = compose(session, community, month)["needs_per_month"]
    finally:
        app.config["CELERY_BROKER_URL"] = None
    assert frozen == reference and live != reference  # the cells wait for the queue's job
    assert_cells_current(app)


# --- rebuild, check, how current --------------------------------------------------------------

@pytest.mark.parametrize("tampered", [
    ("UPDATE rollup_service_hours SET hours = hours + 1 WHERE "
     "community_id = (SELECT max(community_id) FROM rollup_service_hours)"),
    ("UPDATE rollup_node_need SET count = count + 1 WHERE node_id = 0 AND "
     "month = (SELECT max(month) FROM rollup_node_need WHERE node_id = 0)"),
    ("DELETE FROM rollup_node_registration WHERE node_id = (SELECT max(node_id) FROM "
     "rollup_node_registration)"),
    ("UPDATE rollup_resolution SET on_time = on_time + 1 WHERE host_id = (SELECT max(host_id) "
     "FROM rollup_resolution)"),
    "UPDATE rollup_node_attendance SET below = below + 1 WHERE node_id = 0",
    "UPDATE rollup_need SET matched = matched + 1 WHERE kind = 'raised'"])
def test_check_fails_on_a_tampered_cell_and_rebuild_repairs_it(app, ctx, tampered):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["gongjian", "rollups", "check"]).exit_code == 0
    with ctx.session() as session:
        session.execute(text(tampered))
        session.commit()
    result = runner.invoke(args=["gongjian", "rollups", "check"])
    assert result.exit_code == 1 and "不一致" in result.output, result.output
    assert runner.invoke(args=["gongjian", "rollups", "rebuild"]).exit_code == 0
    assert runner.invoke(args=["gongjian", "rollups", "check"]).exit_code == 0


def test_a_rollup_not_yet_computed_is_not_read(app, ctx):
    """After the migration that adds a rollup (a mark for every cell), its figures read the raw
    rows until the job or `rollups rebuild` has computed it — a page does not."""
    with ctx.session() as session:
        session.execute(text("DELETE FROM rollup_service_hours"))
        session.execute(text("INSERT INTO rollup_mark (rollup, subject, period, created_on) "
                             "VALUES ('service_hours', -1, '', :now)"), {"now": clock.utcnow()})
        session.commit()
    try:
        assert_rolled_equal_raw(app, ctx, ["zuzhibu"])
        with viewing(app, "zuzhibu") as session:
            assert not rollups.ready(session, "service_hours")
    finally:
        assert_cells_current(app)  # the job's apply: every cell
    with viewing(app, "zuzhibu") as session:
        assert rollups.ready(session, "service_hours")


def test_the_board_says_how_current_it_is(app, ctx, as_user):
    """Nothing pending: as of now; a write not yet applied (a queue's minute): as of it."""
    browser = as_user("zuzhibu")
    page = browser.get("/dashboard/").get_data(as_text=True)
    now = clock.local_now()
    assert f"数据截至 {now:%H:%M}" in page or \
        f"数据截至 {now - timedelta(minutes=1):%H:%M}" in page, "as of the page's minute"
    written = clock.utcnow() - timedelta(hours=3)
    with ctx.session() as session:
        session.execute(text("INSERT INTO rollup_mark (rollup, subject, period, created_on) "
                             "VALUES ('service_hours', 0, '', :t)"), {"t": written})
        session.commit()
    with app.app_context():
        app.config["CELERY_BROKER_URL"] = "memory://"  # a queue applies it, not the page
        try:
            page = browser.get("/dashboard/").get_data(as_text=True)
        finally:
            app.config["CELERY_BROKER_URL"] = None
    shown = clock.to_local(written)
    assert f"{shown:%H:%M}" in page.split("数据截至", 1)[1][:40]
    browser.get("/lang/en")
    assert "Data as of" in browser.get("/dashboard/").get_data(as_text=True)
    browser.get("/lang/zh")
    assert_cells_current(app)


def test_without_a_queue_a_rollup_behind_its_marks_is_read_raw(app, ctx, api, as_user):
    """A page applies at most PAGE_APPLY_LIMIT marks (oldest first): a need written behind a
    burst of more still counts on the next page — its rollup is read raw until caught up."""
    from tests.test_recycle import funnel_total, new_need

    assert_cells_current(app)
    browser = as_user("zuzhibu")
    before = funnel_total(browser)
    with ctx.session() as session:  # a burst of writes elsewhere, older than the need's
        session.execute(text("INSERT INTO rollup_mark (rollup, subject, period, created_on) "
                             "VALUES ('need', 0, '', :t)"),
                        [{"t": clock.utcnow()}] * (rollups.PAGE_APPLY_LIMIT + 50))
        session.commit()
    new_need(ctx, api, "排在积压之后的需求")
    assert funnel_total(browser) == before + 1
    with viewing(app, "zuzhibu") as session:
        assert not rollups.ready(session, "need")  # 50 of the burst and the need still pending
    assert_cells_current(app)
    assert funnel_total(browser) == before + 1
    with viewing(app, "zuzhibu") as session:
        assert rollups.ready(session, "need")
