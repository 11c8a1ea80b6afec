"""年度考核 (issue 26). One test walks a year of the demo community (社区 YX0101, shequ01's) as
the acceptance says: a quarterly inspection whose two failing findings open rectification tasks
closed on time and late, work-plan items closed and overdue, then the year's assessment computed
— every indicator of 社区 checked against a count made here in plain SQL — adjusted with a
reason within the bound, reviewed by the street (the level above), published by 组织部 and shown
on the public board (ranking, scores by indicator; nothing unpublished), with its .xlsx and .docx.
Besides: the refusals of the Bad input list, the indicator set's weights, units' results, scope."""
from __future__ import annotations

import io
import json
from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise

import pytest
from docx import Document
from openpyxl import load_workbook
from sqlalchemy import select, text

from app import clock
from app.models.inspections import Rectification
from app.security.principal import unscoped
from tests.conftest import tables_kept_by
from tests.test_meetings_support import api_says
from tests.test_supervision_support import item_ids, move_task, post, show, task_of

pytestmark = pytest.mark.db

YEAR = 2026
# A day in January 2027 (Beijing): the demo data's year 2026 has ended.
AFTER_YEAR = datetime(2027, 1, 10, 2, 0)


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    with tables_kept_by(app):
        yield


@pytest.fixture
def year_ended(monkeypatch):
    monkeypatch.setattr(clock, "utcnow", lambda: AFTER_YEAR)


def node_of(ctx, username) -> int:
    return ctx.execute(text("SELECT org_id FROM ab_user WHERE username = :u"), {"u": username}).scalar()


def unit_of(ctx, username) -> int:
    return ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = :u"), {"u": username}).scalar()


def row_of(ctx, level, subject):
    column = "unit_id" if level == "unit" else "community_id"
    return ctx.execute(text(f"SELECT * FROM assessment WHERE year = :y AND level = :l AND {column} = :s "
                            "AND deleted_on IS NULL"), {"y": YEAR, "l": level, "s": subject}).mappings().one()


def compute(api, level, year=YEAR):
    client, headers = api("zuzhibu")
    return client.post("/api/v1/assessment/compute", json={"year": year, "level": level},
                       headers=headers)


def move(client, headers, pk, name, **body):
    return client.post(f"/api/v1/assessment/{pk}/transition/{name}", json=body, headers=headers)


# --- the counts in plain SQL -----------------------------------------------------------------

def _bounds():
    return {"b0": clock.day_begins(date(YEAR, 1, 1)), "b1": clock.day_ends(date(YEAR, 12, 31)),
            "d0": date(YEAR, 1, 1), "d1": date(YEAR, 12, 31)}


def _share(part, whole):
    return None if not whole else round(float(part) / float(whole), 4)


def sql_counts(ctx, cid) -> dict:
    """The community's indicators for the year, counted here in SQL (statuses as stored)."""
    p = {"c": cid, **_bounds()}
    one = lambda sql, **more: ctx.execute(text(sql), {**p, **more}).one()
    year_needs = ("FROM need WHERE community_id = :c AND deleted_on IS NULL "
                  "AND created_on >= :b0 AND created_on < :b1")
    found = {}
    closed, on_time = one("SELECT count(*), coalesce(sum(CASE WHEN completed_on <= deadline THEN 1 ELSE 0 END), 0) "
                          + year_needs + " AND status IN ('已办结', '已回访')")
    found["need_on_time"] = _share(on_time, closed)
    needs, matched = one(
        "SELECT count(*), coalesce(sum(CASE WHEN id IN (SELECT sin.need_id FROM service_item_need sin "
        "JOIN service_item si ON si.id = sin.service_item_id WHERE si.deleted_on IS NULL) "
        "OR id IN (SELECT need_id FROM need_resource WHERE status = '已认领' AND deleted_on IS NULL) "
        "THEN 1 ELSE 0 END), 0) " + year_needs + " AND status <> '已驳回'")
    found["need_match"] = _share(matched, needs)
    rated, mean = one("SELECT count(*), avg(satisfaction) " + year_needs
                      + " AND status = '已回访' AND satisfaction IS NOT NULL")
    found["satisfaction"] = None if not rated else round(float(mean) / 5, 4)
    units, provision = one(
        "SELECT count(*), coalesce(sum((CASE WHEN EXISTS (SELECT 1 FROM resource r WHERE r.unit_id = u.id "
        "AND r.year = :y AND r.status = '已发布' AND r.deleted_on IS NULL) THEN 1 ELSE 0 END) + "
        "(CASE WHEN EXISTS (SELECT 1 FROM service_item s WHERE s.provider_unit_id = u.id AND s.year = :y "
        "AND s.status IN ('已发布', '进行中', '已完成') AND s.deleted_on IS NULL) THEN 1 ELSE 0 END)), 0) "
        "FROM unit u WHERE u.community_id = :c AND u.status = '在册' AND u.deleted_on IS NULL", y=YEAR)
    found["list_provision"] = None if not units else round(float(provision) / 2 / units, 4)
    registered_units = one("SELECT count(*) FROM unit_registration WHERE community_id = :c "
                           "AND status = '已报到' AND registered_on <= :d1 AND deleted_on IS NULL")[0]
    found["unit_registration"] = _share(registered_units, units)
    members = one("SELECT count(*) FROM member WHERE community_id = :c AND category = '在职' "
                  "AND status = '正常' AND deleted_on IS NULL")[0]
    registered_members = one("SELECT count(*) FROM member_registration WHERE community_id = :c "
                             "AND status = '已报到' AND registered_on <= :d1 AND deleted_on IS NULL")[0]
    found["member_registration"] = _share(registered_members, members)
    expected = served = 0
    for month in range(1, 13):
        first = date(YEAR, month, 1)
        last = date(YEAR + (month == 12), month % 12 + 1, 1).toordinal() - 1
        last = date.fromordinal(last)
        e, s = one("SELECT count(*), coalesce(sum(CASE WHEN EXISTS (SELECT 1 FROM service_record sr "
                   "WHERE sr.member_id = mr.member_id AND sr.served_on BETWEEN :f AND :l "
                   "AND sr.status <> '已驳回' AND sr.deleted_on IS NULL) THEN 1 ELSE 0 END), 0) "
                   "FROM member_registration mr WHERE mr.community_id = :c AND mr.status = '已报到' "
                   "AND mr.registered_on <= :l AND mr.deleted_on IS NULL", f=first, l=last)
        expected, served = expected + e, served + s
    found["monthly_service"] = _share(served, expected)
    held = ("FROM attendance a JOIN meeting m ON m.id = a.meeting_id JOIN joint_body b ON b.id = m.body_id "
            "WHERE b.host_id = :c AND m.status = '已召开' AND m.held_on BETWEEN :d0 AND :d1 "
            "AND a.deleted_on IS NULL AND m.deleted_on IS NULL")
    recorded, present = one("SELECT count(*), coalesce(sum(CASE WHEN a.status IN ('出席', '迟到') "
                            "THEN 1 ELSE 0 END), 0) " + held)
    found["attendance"] = _share(present, recorded)
    rank = ("CASE {0} WHEN '一把手' THEN 1 WHEN '分管领导' THEN 2 WHEN '党务干部' THEN 3 "
            "WHEN '其他' THEN 4 ELSE 5 END")
    required = ("CASE m.type WHEN '旬例会' THEN b.xun_level WHEN '月推进会' THEN b.monthly_level "
                "WHEN '季研讨会' THEN b.quarterly_level WHEN '年总结会' THEN b.yearly_level END")
    present_at, below = one(
        f"SELECT count(*), coalesce(sum(CASE WHEN {rank.format('a.attendee_level')} > "
        f"{rank.format(required)} THEN 1 ELSE 0 END), 0) " + held
        + " AND a.status IN ('出席', '迟到') AND m.type IN ('旬例会', '月推进会', '季研讨会', '年总结会')")
    found["leader_compliance"] = _share(present_at - below, present_at)
    due, in_time = one(
        "SELECT count(*), coalesce(sum(CASE WHEN r.status = '已办结' AND r.closed_on <= r.deadline "
        "THEN 1 ELSE 0 END), 0) FROM resolution r JOIN meeting m ON m.id = r.meeting_id "
        "JOIN joint_body b ON b.id = m.body_id WHERE b.host_id = :c AND r.deadline BETWEEN :d0 AND :d1 "
        "AND r.deleted_on IS NULL")
    found["resolution_on_time"] = _share(in_time, due)
    on_time = "coalesce(sum(CASE WHEN t.status = '已办结' AND t.closed_on <= t.deadline THEN 1 ELSE 0 END), 0)"
    due, in_time = one(
        f"SELECT count(*), {on_time} FROM rectification t LEFT JOIN unit u ON u.id = t.lead_unit_id "
        "WHERE coalesce(t.org_id, u.community_id) = :c AND t.deadline BETWEEN :d0 AND :d1 "
        "AND t.deleted_on IS NULL")
    found["rectification_on_time"] = _share(in_time, due)
    due, in_time = one(f"SELECT count(*), {on_time} FROM work_plan_item t WHERE t.org_id = :c "
                       "AND t.deadline BETWEEN :d0 AND :d1 AND t.deleted_on IS NULL")
    found["work_plan_on_time"] = _share(in_time, due)
    found["three_ones"] = _three_ones(ctx, p)
    return found


def _three_ones(ctx, p):
    """The share of the community's agreements in force in the year whose unit met all of the
    三个一: a joint meeting attended in every quarter its bodies met (at least one), and as many
    needs closed in the year as the agreement's yearly target — counted agreement by agreement."""
    quarters = [(date(YEAR, m, 1), date(YEAR + (m == 10), (m + 2) % 12 + 1, 1).toordinal() - 1)
                for m in (1, 4, 7, 10)]
    quarters = [(first, date.fromordinal(last)) for first, last in quarters]
    held_in = ("FROM meeting m WHERE m.status = '已召开' AND m.held_on BETWEEN :f AND :l "
               "AND m.deleted_on IS NULL")
    agreements = ctx.execute(text(
        "SELECT id, unit_id, coalesce(yearly_target, 0) AS target FROM agreement "
        "WHERE community_id = :c AND status = '已签订' AND valid_from <= :d1 AND valid_to >= :d0 "
        "AND deleted_on IS NULL"), p).all()
    met = 0
    for agreement in agreements:
        held = attended = 0
        for first, last in quarters:
            q = {"u": agreement.unit_id, "f": first, "l": last}
            was_held = ctx.execute(text(
                f"SELECT count(*) {held_in} AND m.body_id IN (SELECT bm.body_id FROM body_member bm "
                "WHERE bm.unit_id = :u AND bm.deleted_on IS NULL)"), q).scalar() > 0
            was_there = ctx.execute(text(
                f"SELECT count(*) {held_in} AND m.id IN (SELECT a.meeting_id FROM attendance a "
                "WHERE a.unit_id = :u AND a.status IN ('出席', '迟到') AND a.deleted_on IS NULL)"),
                q).scalar() > 0
            held += was_held
            attended += was_held and was_there
        closed = ctx.execute(text(
            "SELECT count(*) FROM need WHERE assigned_unit_id = :u AND status IN ('已办结', '已回访') "
            "AND completed_on >= :b0 AND completed_on < :b1 AND deleted_on IS NULL"),
            {**p, "u": agreement.unit_id}).scalar()
        met += held > 0 and attended == held and closed >= agreement.target
    return _share(met, len(agreements))


def test_a_year_not_ended_is_previewed_only(ctx, api):
    before = ctx.execute(text("SELECT count(*) FROM assessment")).scalar()
    response = compute(api, "community", clock.today().year)
    assert response.status_code == 422
    assert "尚未结束" in response.json["message"] and "预览" in response.json["message"]
    client, headers = api("zuzhibu")
    preview = client.post("/api/v1/assessment/preview", headers=headers,
                          json={"year": clock.today().year, "level": "community"})
    assert preview.status_code == 200, preview.get_data(as_text=True)
    assert preview.json["preview"] is True and preview.json["ended"] is False
    assert preview.json["rows"] and preview.json["rows"][0]["rank"] == 1
    assert ctx.execute(text("SELECT count(*) FROM assessment")).scalar() == before
    # A year not begun is not even previewed.
    later = client.post("/api/v1/assessment/preview", headers=headers,
                        json={"year": clock.today().year + 1, "level": "community"})
    assert later.status_code == 422 and "尚未开始" in later.json["message"]
    # A year in digits str.isdigit() takes and int() refuses: told, not a 500.
    superscript = client.post("/api/v1/assessment/preview", headers=headers,
                              json={"year": "²⁰²⁶", "level": "community"})
    assert superscript.status_code == 422 and "四位年份" in superscript.json["message"]
    # The page says the same.
    from tests.conftest import login
    page = login(ctx.app, "zuzhibu")
    response = page.post("/assessment/compute", {"year": str(clock.today().year), "level": "community"},
                         follow_redirects=True)
    assert "尚未结束" in response.get_data(as_text=True)
    assert ctx.execute(text("SELECT count(*) FROM assessment")).scalar() == before


def test_weights_of_a_level_sum_to_100(ctx, api):
    client, headers = api("zuzhibu")
    rows = ctx.execute(text("SELECT id, name, weight FROM assessment_indicator WHERE level = 'community' "
                            "AND deleted_on IS NULL ORDER BY id")).all()
    first, second = rows[0], rows[1]
    one = client.put(f"/api/v1/assessment_indicator/{first.id}", headers=headers,
                     json={"weight": float(first.weight) + 5})
    assert one.status_code == 422 and "权重之和应为100分" in json.dumps(one.json, ensure_ascii=False)
    bad = client.put("/api/v1/assessment_indicator/weights", headers=headers, json={
        "level": "community", "weights": {str(first.id): float(first.weight) + 5}})
    assert bad.status_code == 422 and "现为105分" in bad.json["message"]
    assert Decimal(str(ctx.execute(text("SELECT weight FROM assessment_indicator WHERE id = :i"),
                                   {"i": first.id}).scalar())) == Decimal(str(first.weight))
    moved = client.put("/api/v1/assessment_indicator/weights", headers=headers, json={
        "level": "community", "weights": {str(first.id): float(first.weight) + 5,
                                          str(second.id): float(second.weight) - 5}})
    assert moved.status_code == 200 and moved.json["changed"] == 2
    total = ctx.execute(text("SELECT sum(weight) FROM assessment_indicator WHERE level = 'community' "
                             "AND deleted_on IS NULL")).scalar()
    assert Decimal(str(total)) == 100
    back = client.put("/api/v1/assessment_indicator/weights", headers=headers, json={
        "level": "community", "weights": {str(first.id): float(first.weight),
                                          str(second.id): float(second.weight)}})
    assert back.status_code == 200
    # An indicator with a weight is not deleted; a street cannot edit the set at all.
    refused = client.delete(f"/api/v1/assessment_indicator/{first.id}", headers=headers)
    assert refused.status_code == 422 and "权重不为0" in refused.json["message"]
    street, street_headers = api("jiedao01")
    assert street.put("/api/v1/assessment_indicator/weights", headers=street_headers, json={
        "level": "community", "weights": {}}).status_code == 403
    # Each save of the weights is one record, naming the weights before and after.
    audited = ctx.execute(text("SELECT changes FROM audit_log WHERE resource = 'assessment_indicator' "
                               "AND action = 'update' ORDER BY id DESC")).scalars().all()[:2]
    assert all(second.name in changes and "weights" in changes for changes in audited)


def test_a_year_of_the_demo_community(ctx, api, as_user, app, monkeypatch):
    """The acceptance's walk: 社区 YX0101's year 2026, the clock moved through it."""
    def at(moment: datetime) -> None:  # the clock in UTC (08:00 Beijing unless said)
        monkeypatch.setattr(clock, "utcnow", lambda: moment)

    cid, street = node_of(ctx, "shequ01"), node_of(ctx, "jiedao01")
    unit1, unit2 = unit_of(ctx, "danwei01"), unit_of(ctx, "danwei02")
    items = item_ids(ctx)

    # 季度督查, Q3: the street inspects the community and danwei01's unit; two findings fail,
    # each opening its rectification task as it is saved.
    at(datetime(2026, 8, 10, 0, 0))
    round_id = post(api, "jiedao01", "inspection", {
        "organizer": street, "title": "2026年第三季度共驻共建督查", "year": YEAR, "quarter": 3,
        "inspected_on": "2026-08-10", "communities": [cid], "units": [unit1]})
    post(api, "jiedao01", "inspection_finding", {
        "inspection": round_id, "item": items[0], "org": cid, "result": "符合"})
    failing_community = post(api, "jiedao01", "inspection_finding", {
        "inspection": round_id, "item": items[1], "org": cid, "result": "不符合",
        "note": "本季度未召开季研讨会", "responsible_org": cid, "deadline": "2026-09-10"})
    failing_unit = post(api, "jiedao01", "inspection_finding", {
        "inspection": round_id, "item": items[4], "unit": unit1, "result": "部分符合",
        "note": "协议“三个一”承诺落实不到位", "responsible_unit": unit1, "deadline": "2026-09-10"})
    on_time, late = task_of(ctx, failing_community), task_of(ctx, failing_unit)
    # The responsible sides start and report progress (the liaison's note is its unit's).
    assert move_task(api, "danwei01", "rectification", late, "start").status_code == 200
    note = post(api, "danwei01", "rectification_note", {
        "rectification": late, "content": "已与社区重新约定服务项目", "progress": 50})
    assert ctx.execute(text("SELECT unit_id FROM rectification_note WHERE id = :i"),
                       {"i": note}).scalar() == unit1
    post(api, "shequ01", "rectification_note", {
        "rectification": on_time, "content": "已定于下周召开季研讨会", "progress": 30})
    # Only the inspecting side closes them: one within its time limit, one after it.
    at(datetime(2026, 8, 30, 0, 0))
    closed = move_task(api, "jiedao01", "rectification", on_time, "close", {"result": "已补开季研讨会"})
    assert closed.status_code == 200, closed.get_data(as_text=True)
    at(datetime(2026, 9, 25, 0, 0))
    closed = move_task(api, "jiedao01", "rectification", late, "close", {"result": "已整改到位"})
    assert closed.status_code == 200, closed.get_data(as_text=True)
    assert show(api, "jiedao01", "rectification", on_time).json["result"]["closed_on_time"] is True
    assert show(api, "jiedao01", "rectification", late).json["result"]["closed_on_time"] is False
    with ctx.session() as session, unscoped():  # the hybrid counts in SQL what plain SQL counts
        in_sql = set(session.execute(select(Rectification.id).where(
            Rectification.id.in_([on_time, late]), Rectification.closed_on_time)).scalars())
    plain = set(ctx.execute(text(
        "SELECT id FROM rectification WHERE status = '已办结' AND closed_on <= deadline "
        "AND id IN (:a, :b)"), {"a": on_time, "b": late}).scalars())
    assert in_sql == plain == {on_time}

    # 工作要点: the community's plan items led by danwei01's unit — one closed on time, one
    # left open past its deadline.
    at(datetime(2026, 10, 9, 0, 0))
    overdue = post(api, "shequ01", "work_plan_item", {
        "org": cid, "year": YEAR, "number": "W1", "content": "建立双报到党员服务台账",
        "lead_unit": unit1, "deadline": "2026-11-30"})
    signed = post(api, "shequ01", "work_plan_item", {
        "org": cid, "year": YEAR, "number": "W2", "content": "共建项目签约", "lead_unit": unit1,
        "co_units": [unit2], "deadline": "2026-12-15"})
    client, headers = api("shequ01")
    api_says(client.post("/api/v1/work_plan_item/", headers=headers, json={
        "org": cid, "year": YEAR, "number": "W1", "content": "重复", "lead_unit": unit1,
        "deadline": "2026-12-31"}), "已有序号")
    at(datetime(2026, 12, 10, 0, 0))
    closed = move_task(api, "shequ01", "work_plan_item", signed, "close", {"result": "已签约"})
    assert closed.status_code == 200, closed.get_data(as_text=True)
    assert show(api, "shequ01", "work_plan_item", overdue).json["result"]["overdue"] is True
    assert show(api, "shequ01", "work_plan_item", signed).json["result"]["closed_on_time"] is True
    # The co-unit reads the item; a unit of another street does not; the lead unit finds its
    # open items on its to-do page.
    assert show(api, "danwei02", "work_plan_item", signed).status_code == 200
    assert show(api, "danwei03", "work_plan_item", signed).status_code == 404
    assert "本单位牵头、未办结的工作要点" in as_user("danwei01").get("/").get_data(as_text=True)

    # The community revises danwei02's agreement: its yearly target of problems solved is now
    # one (what the unit did solve), so that agreement meets its 三个一 if its unit attended.
    agreement = ctx.execute(text(
        "SELECT id FROM agreement WHERE community_id = :c AND unit_id = :u AND status = '已签订' "
        "AND deleted_on IS NULL ORDER BY id"), {"c": cid, "u": unit2}).scalars().first()
    revised = client.put(f"/api/v1/agreement/{agreement}", headers=headers,
                         json={"yearly_target": 1})
    assert revised.status_code == 200, revised.get_data(as_text=True)

    # 年度考核: the year has ended; 组织部 computes the communities' results.
    at(AFTER_YEAR)
    done = compute(api, "community")
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "已计算" in done.json["result"]["message"]
    row = row_of(ctx, "community", cid)
    parts = {p["code"]: p for p in json.loads(row["scores"])}
    counted = sql_counts(ctx, cid)
    for code, value in counted.items():
        assert parts[code]["value"] == value, (code, parts[code]["value"], value)
    assert set(counted) == set(parts), "every indicator of the level is counted here"
    with_data = [code for code, value in counted.items() if value is not None]
    assert len(with_data) >= 10, f"the demo community should have data for most indicators: {counted}"
    # The walk's own rows are among those counted: 1 of its 2 tasks and 1 of its 2 items on time.
    assert 0 < counted["rectification_on_time"] < 1 and 0 < counted["work_plan_on_time"] < 1
    assert counted["three_ones"] > 0, "the revised agreement meets its 三个一"
    # The score is the points over the weights that apply, scaled to 100.
    applicable = [p for p in parts.values() if p["value"] is not None]
    expected = sum(Decimal(str(p["points"])) for p in applicable) * 100 / sum(
        Decimal(str(p["weight"])) for p in applicable)
    assert abs(Decimal(str(row["computed_score"])) - expected) < Decimal("0.01")
    for p in applicable:
        share = min(Decimal(1), Decimal(str(p["value"])) * 100 / Decimal(str(p["target"])))
        assert abs(Decimal(str(p["points"])) - Decimal(str(p["weight"])) * share) <= Decimal("0.01")
    # Ranked among all the communities of the year (1 is the best total).
    ranks = ctx.execute(text("SELECT total, rank FROM assessment WHERE year = :y AND level = 'community' "
                             "ORDER BY rank, id"), {"y": YEAR}).all()
    assert ranks[0].rank == 1 and all(a.total >= b.total for a, b in pairwise(ranks))
    assert ctx.execute(text("SELECT count(*) FROM audit_log WHERE resource = 'assessment' "
                            "AND action = 'create'")).scalar() >= 1

    client, headers = api("zuzhibu")
    pk = row["id"]
    # Adjustments: a reason, within the bound.
    assert move(client, headers, pk, "adjust", adjustment="2").status_code == 422
    beyond = move(client, headers, pk, "adjust", adjustment="9", reason="创新工作")
    assert beyond.status_code == 422 and "±5分以内" in beyond.json["message"]
    assert row_of(ctx, "community", cid)["adjustment"] == 0
    adjusted = move(client, headers, pk, "adjust", adjustment="2.5", reason="社区创新工作获市级表彰")
    assert adjusted.status_code == 200, adjusted.get_data(as_text=True)
    after = row_of(ctx, "community", cid)
    assert Decimal(str(after["total"])) == Decimal(str(after["computed_score"])) + Decimal("2.5")
    assert after["adjustment_reason"] == "社区创新工作获市级表彰"
    change = ctx.execute(text("SELECT changes FROM audit_log WHERE resource = 'assessment' AND record_id = :i "
                              "AND action = 'transition' ORDER BY id DESC"), {"i": str(pk)}).scalar()
    assert "adjustment" in change and "社区创新工作获市级表彰" in change

    # Publishing before review is refused; the review is the street's, not 组织部's nor the community's.
    assert move(client, headers, pk, "publish").status_code == 409
    assert ctx.execute(text("SELECT status FROM assessment WHERE id = :i"), {"i": pk}).scalar() == "已计算"
    own, own_headers = api("shequ01")
    assert move(own, own_headers, pk, "review").status_code == 403
    district = move(client, headers, pk, "review")
    assert district.status_code == 403 and "所在街道" in district.json["message"]
    street, street_headers = api("jiedao01")
    assert move(street, street_headers, pk, "review").status_code == 200
    # Reviewed, one result of the year cannot be published while others wait for review.
    early = move(client, headers, pk, "publish")
    assert early.status_code == 403 and "未审核" in early.json["message"]
    # Nothing unpublished is on the board.
    anonymous = app.test_client()
    assert anonymous.get(f"/public/assessment/{YEAR}/community").status_code == 404
    assert anonymous.get(f"/public/assessment/{YEAR}/community.xlsx").status_code == 404

    # The street reviews its communities; the others' streets (no demo account) by the admin.
    admin, admin_headers = api("admin")
    waiting = ctx.execute(text("SELECT id, community_id FROM assessment WHERE year = :y AND level = 'community' "
                               "AND status = '已计算'"), {"y": YEAR}).all()
    for other in waiting:
        answer = move(street, street_headers, other.id, "review")
        if answer.status_code != 200:
            assert answer.status_code in (403, 404)
            assert move(admin, admin_headers, other.id, "review").status_code == 200
    ids = [r.id for r in ctx.execute(text("SELECT id FROM assessment WHERE year = :y AND level = 'community'"),
                                     {"y": YEAR})]
    for other in ids:
        assert move(client, headers, other, "publish").status_code == 200
    # Re-publishing, adjusting a published result, and computing the year again are refused.
    assert move(client, headers, pk, "publish").status_code == 409
    assert move(client, headers, pk, "adjust", adjustment="1", reason="再调整").status_code == 409
    again = compute(api, "community")
    assert again.status_code == 422 and "已公示" in again.json["message"]

    # The board: the ranking and the scores by indicator, with its documents.
    index = anonymous.get("/public/").get_data(as_text=True)
    assert f"/public/assessment/{YEAR}/community" in index
    board = anonymous.get(f"/public/assessment/{YEAR}/community")
    assert board.status_code == 200
    page = board.get_data(as_text=True)
    names = [r.name for r in ctx.execute(text(
        "SELECT o.name FROM assessment a JOIN organization o ON o.id = a.community_id "
        "WHERE a.year = :y AND a.level = 'community' ORDER BY a.rank, a.id"), {"y": YEAR})]
    positions = [page.index(name) for name in names]
    assert positions == sorted(positions)
    assert parts["need_on_time"]["name"] in page
    assert anonymous.get(f"/public/assessment/{YEAR}/unit").status_code == 404
    sheet = load_workbook(io.BytesIO(anonymous.get(f"/public/assessment/{YEAR}/community.xlsx").data)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[1][:2] == ("排名", "社区") and [v[1] for v in values[2:]] == names
    document = Document(io.BytesIO(anonymous.get(f"/public/assessment/{YEAR}/community.docx").data))
    table = document.tables[0]
    assert [row.cells[1].text for row in table.rows[1:]] == names
    assert anonymous.get(f"/public/assessment/{YEAR}/community.pdf").status_code == 404


def test_units_assessed_scoped_and_reviewed_by_the_district(ctx, api, year_ended, app):
    done = compute(api, "unit")
    assert done.status_code == 200, done.get_data(as_text=True)
    unit = unit_of(ctx, "danwei01")
    row = row_of(ctx, "unit", unit)
    parts = {p["code"]: p for p in json.loads(row["scores"])}
    p = _bounds()
    registered = ctx.execute(text("SELECT count(*) FROM unit_registration WHERE unit_id = :u AND status = '已报到' "
                                  "AND registered_on <= :d1 AND deleted_on IS NULL"), {"u": unit, **p}).scalar()
    assert parts["unit_registered"]["value"] == (1.0 if registered else 0.0)
    closed, on_time = ctx.execute(text(
        "SELECT count(*), coalesce(sum(CASE WHEN completed_on <= deadline THEN 1 ELSE 0 END), 0) FROM need "
        "WHERE assigned_unit_id = :u AND deleted_on IS NULL AND created_on >= :b0 AND created_on < :b1 "
        "AND status IN ('已办结', '已回访')"), {"u": unit, **p}).one()
    assert parts["unit_need_on_time"]["value"] == _share(on_time, closed)
    due, in_time = ctx.execute(text(
        "SELECT count(*), coalesce(sum(CASE WHEN status = '已办结' AND closed_on <= deadline THEN 1 ELSE 0 END), 0) "
        "FROM resolution WHERE lead_unit_id = :u AND deadline BETWEEN :d0 AND :d1 AND deleted_on IS NULL"),
        {"u": unit, **p}).one()
    assert parts["unit_resolution_on_time"]["value"] == _share(in_time, due)

    # Scope: a liaison reads its unit's result only; a community its own community's rows.
    liaison, liaison_headers = api("danwei01")
    mine = liaison.get("/api/v1/assessment/", headers=liaison_headers).json["result"]
    assert {r["unit_id"] for r in mine} == {unit}
    other = ctx.execute(text("SELECT id FROM assessment WHERE level = 'unit' AND unit_id <> :u "
                             "AND year = :y ORDER BY id"), {"u": unit, "y": YEAR}).first()
    assert liaison.get(f"/api/v1/assessment/{other.id}", headers=liaison_headers).status_code == 404
    cid = node_of(ctx, "shequ01")
    community, community_headers = api("shequ01")
    rows = community.get("/api/v1/assessment/?q=(page_size:100)", headers=community_headers).json["result"]
    assert rows and {r["community_id"] for r in rows} == {cid}
    outside = ctx.execute(text("SELECT id FROM assessment WHERE community_id <> :c AND year = :y"),
                          {"c": cid, "y": YEAR}).first()
    assert community.get(f"/api/v1/assessment/{outside.id}", headers=community_headers).status_code == 404
    # A community admin may not compute; a street does not review units' results.
    assert community.post("/api/v1/assessment/compute", headers=community_headers,
                          json={"year": YEAR, "level": "unit"}).status_code == 403
    street, street_headers = api("jiedao01")
    refused = move(street, street_headers, row["id"], "review")
    assert refused.status_code == 403 and "区委组织部" in refused.json["message"]
    client, headers = api("zuzhibu")
    assert move(client, headers, row["id"], "review").status_code == 200
    # Exported like every list, within scope: the community's own rows (its row, its units').
    from tests.conftest import login
    page = login(app, "shequ01")
    exported = page.get("/assessment/export/csv")
    assert exported.status_code == 200
    lines = exported.get_data(as_text=True).strip().splitlines()
    assert len(lines) - 1 == ctx.execute(text("SELECT count(*) FROM assessment WHERE community_id = :c "
                                              "AND deleted_on IS NULL"), {"c": cid}).scalar()
    assert login(app, "danwei01").get("/assessment/export/csv").status_code in (302, 403)
