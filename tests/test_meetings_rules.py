"""Business rules of joint meetings (DOMAIN.md §2, §3): the attendee level each meeting type
requires (the 一把手 at quarterly and yearly meetings), overdue resolutions, the moves of meetings and resolutions, and bad input —
each refusal told in Chinese (a page through the form, a 422 through the API) with nothing
written, checked with plain SQL."""
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from app import clock
from tests.test_data_io import csv_rows
from tests.test_meetings_support import (
    api_says,
    body_id,
    count,
    fresh_day,
    make_attendance,
    make_meeting,
    make_resolution,
    member_units,
    page_says,
    unit_of,
)

pytestmark = pytest.mark.db

LEVELS = [("一把手", "出席"), ("分管领导", "出席"), ("党务干部", "迟到"), ("其他", "请假")]


# --- attendee levels ----------------------------------------------------------------------------

# The practice's defaults: 旬例会 党务干部 or above, 月推进会 分管领导 or above, 季研讨会 and 年总结会
# the 一把手; 临时会议 none.
BELOW_REQUIRED = {"旬例会": {"其他"}, "月推进会": {"党务干部", "其他"},
                  "季研讨会": {"分管领导", "党务干部", "其他"},
                  "年总结会": {"分管领导", "党务干部", "其他"}, "临时会议": set()}


def flagged_by_default(made):
    return {pk for pk, (type_, level, status) in made.items()
            if level in BELOW_REQUIRED[type_] and status != "请假"}


@pytest.fixture(scope="module")
def attendance_by_type(app):
    """One meeting of each type, each member unit recorded at a different level or status."""
    from tests.conftest import Db

    ctx = Db(app)
    body = body_id(ctx)
    units = member_units(ctx, body)
    assert len(units) >= 4, "the seeded body has four member units"
    made = {}
    for type_ in ("旬例会", "月推进会", "季研讨会", "年总结会", "临时会议"):
        meeting = make_meeting(ctx, body, type_)
        for unit, (level, status) in zip(units, LEVELS):
            made[make_attendance(ctx, meeting, unit, level, status)] = (type_, level, status)
    return made


def flagged(app, ids):
    from app.extensions import db
    from app.models.meetings import Attendance

    with app.app_context():
        in_sql = set(db.session.execute(select(Attendance.id).where(
            Attendance.id.in_(ids), Attendance.non_compliant)).scalars())
        in_python = {a.id for a in db.session.execute(
            select(Attendance).where(Attendance.id.in_(ids))).scalars() if a.non_compliant}
        db.session.remove()
    assert in_sql == in_python
    return in_sql


def test_each_type_flags_exactly_the_attendances_below_its_required_level(
        app, ctx, api, attendance_by_type):
    expected = flagged_by_default(attendance_by_type)
    # 分管领导 present and 党务干部 late at each of the quarterly and yearly meetings, 党务干部 late
    # at the 月推进会; the 旬例会's 其他 was on leave, and a 临时会议 requires no level
    assert len(expected) == 5
    ids = list(attendance_by_type)
    assert flagged(app, ids) == expected
    client, headers = api("shequ01")
    for pk in ids:
        response = client.get(f"/api/v1/attendance/{pk}", headers=headers)
        assert response.json["result"]["non_compliant"] is (pk in expected)


def test_a_liaison_at_a_xun_meeting_is_flagged_and_a_body_sets_its_own_levels(app, ctx, api):
    body = body_id(ctx)
    units = member_units(ctx, body)
    meeting = make_meeting(ctx, body, "旬例会")
    liaison = make_attendance(ctx, meeting, units[0], "其他", "出席")  # the unit sent its 联络员
    deputy = make_attendance(ctx, meeting, units[1], "分管领导", "出席")
    assert flagged(app, [liaison, deputy]) == {liaison}
    # the body raises the 旬例会's level to the 一把手: the deputy falls below it too
    client, headers = api("shequ01")
    response = client.put(f"/api/v1/joint_body/{body}", headers=headers,
                          json={"xun_level": "一把手"})
    assert response.status_code == 200, response.get_data(as_text=True)
    try:
        assert flagged(app, [liaison, deputy]) == {liaison, deputy}
        api_says(client.put(f"/api/v1/joint_body/{body}", headers=headers,
                            json={"monthly_level": "处长"}), "月推进会参会职级要求应为")
        assert ctx.execute(text("SELECT monthly_level FROM joint_body WHERE id = :b"),
                           {"b": body}).scalar() == "分管领导"
    finally:
        with ctx.session() as session:
            session.execute(text("UPDATE joint_body SET xun_level = '党务干部' WHERE id = :b"),
                            {"b": body})
            session.commit()


def test_attendance_for_a_meeting_not_yet_held_is_refused(ctx, as_user, api):
    body = body_id(ctx)
    unit = member_units(ctx, body)[0]
    meeting = make_meeting(ctx, body, "月推进会", held=False, planned=clock.today() + timedelta(days=3))
    before = count(ctx, "attendance")
    client, headers = api("shequ01")
    api_says(client.post("/api/v1/attendance/", headers=headers, json={
        "meeting": meeting, "unit": unit, "attendee": "张三", "attendee_level": "一把手",
        "status": "出席"}), "会议尚未召开")
    form = {"meeting": str(meeting), "unit": str(unit), "attendee": "张三",
            "attendee_level": "一把手", "status": "出席", "note": ""}
    page_says(as_user("shequ01").post("/attendance/add", form, follow_redirects=True),
              f"会议尚未召开（{clock.today() + timedelta(days=3):%Y-%m-%d}），不能登记参会")
    assert count(ctx, "attendance") == before


def test_the_list_filters_the_non_compliant_ones(as_user, attendance_by_type):

    from tests.security.support import listed_on_pages

    shown = listed_on_pages(as_user("shequ01"), "/attendance/list/?_flt_0_non_compliant=1",
                            "attendance", "AttendanceView")
    ours = set(attendance_by_type)
    assert shown & ours == flagged_by_default(attendance_by_type)
    # exported like the list: the same rows, each flagged
    rows = csv_rows(as_user("shequ01").get("/attendance/export/csv?_flt_0_non_compliant=1"))
    assert len(rows) - 1 == len(shown)
    column = rows[0].index("参会职级不达标")
    assert {row[column] for row in rows[1:]} == {"不达标（低于联席会对该类会议的参会职级要求）"}


def test_the_meeting_page_flags_a_deputy_at_a_quarterly_meeting(ctx, as_user, attendance_by_type):
    meeting = ctx.execute(text("SELECT meeting_id FROM attendance WHERE id = :i"),
                          {"i": next(pk for pk, v in attendance_by_type.items()
                                     if v[0] == "季研讨会")}).scalar()
    page = as_user("shequ01").get(f"/meeting/show/{meeting}").get_data(as_text=True)
    assert "参会职级要求：一把手及以上" in page
    assert "参会职级不达标 2" in page and page.count(">职级不达标</span>") == 2


# --- overdue ----------------------------------------------------------------------------------

def test_overdue_follows_the_deadline(app, ctx, api):
    from app.extensions import db
    from app.models.meetings import Resolution

    body = body_id(ctx)
    lead = member_units(ctx, body)[0]
    meeting = make_meeting(ctx, body)
    cases = {
        "yesterday": make_resolution(ctx, meeting, lead, deadline=clock.today() - timedelta(days=1)),
        "today": make_resolution(ctx, meeting, lead, deadline=clock.today()),
        "tomorrow": make_resolution(ctx, meeting, lead, deadline=clock.today() + timedelta(days=1),
                                    status="办理中"),
        "done late": make_resolution(ctx, meeting, lead, deadline=clock.today() - timedelta(days=9),
                                     status="已办结", closed_on=clock.today() - timedelta(days=2)),
    }
    ids = list(cases.values())

    def overdue_now():
        with app.app_context():
            in_sql = set(db.session.execute(select(Resolution.id).where(
                Resolution.id.in_(ids), Resolution.overdue)).scalars())
            in_python = {r.id for r in db.session.execute(
                select(Resolution).where(Resolution.id.in_(ids))).scalars() if r.overdue}
        client, headers = api("shequ01")
        by_api = {pk for pk in ids
                  if client.get(f"/api/v1/resolution/{pk}", headers=headers).json["result"]["overdue"]}
        assert in_sql == in_python == by_api
        return in_sql

    assert overdue_now() == {cases["yesterday"]}
    # Nothing stored: moving the deadline moves the flag.
    with ctx.session() as session:
        session.execute(text("UPDATE resolution SET deadline = :d WHERE id = :i"),
                        {"d": clock.today() - timedelta(days=3), "i": cases["tomorrow"]})
        session.commit()
    assert overdue_now() == {cases["yesterday"], cases["tomorrow"]}
    with ctx.session() as session:
        session.execute(text("UPDATE resolution SET deadline = :d WHERE id = :i"),
                        {"d": clock.today() + timedelta(days=5), "i": cases["yesterday"]})
        session.commit()
    assert overdue_now() == {cases["tomorrow"]}


# --- bad input ----------------------------------------------------------------------------------

def outsider_unit(ctx, body) -> int:
    """danwei03's unit: in another street, not a member of the body."""
    unit = unit_of(ctx, "danwei03")
    assert unit not in member_units(ctx, body)
    return unit


def test_attendance_for_a_unit_not_in_the_body_is_refused(ctx, as_user, api):
    body = body_id(ctx)
    meeting = make_meeting(ctx, body, "季研讨会")
    unit = outsider_unit(ctx, body)
    before = count(ctx, "attendance")
    form = {"meeting": str(meeting), "unit": str(unit), "attendee": "外单位人员",
            "attendee_level": "一把手", "status": "出席", "note": ""}
    response = as_user("shequ01").post("/attendance/add", form, follow_redirects=True)
    page_says(response, "不是“")
    page_says(response, "的成员单位，不能登记参会")
    client, headers = api("shequ01")
    api_says(client.post("/api/v1/attendance/", headers=headers, json={
        "meeting": meeting, "unit": unit, "attendee": "外单位人员", "attendee_level": "一把手",
        "status": "出席"}), "的成员单位，不能登记参会")
    assert count(ctx, "attendance") == before
    # A member unit is fine, once.
    member = member_units(ctx, body)[0]
    ok = client.post("/api/v1/attendance/", headers=headers, json={
        "meeting": meeting, "unit": member, "attendee": "张三", "attendee_level": "一把手",
        "status": "出席"})
    assert ok.status_code == 201, ok.get_data(as_text=True)
    api_says(client.post("/api/v1/attendance/", headers=headers, json={
        "meeting": meeting, "unit": member, "attendee": "李四", "attendee_level": "分管领导",
        "status": "出席"}), "在本次会议已有参会记录")
    api_says(client.post("/api/v1/attendance/", headers=headers, json={
        "meeting": meeting, "unit": member_units(ctx, body)[1], "status": "出席"}),
        "出席的单位须填写参会人及其职级")
    assert count(ctx, "attendance") == before + 1


def test_a_resolution_without_a_deadline_or_a_lead_unit_is_refused(ctx, as_user, api):
    body = body_id(ctx)
    meeting = make_meeting(ctx, body)
    lead = member_units(ctx, body)[0]
    before = count(ctx, "resolution")
    browser = as_user("shequ01")
    no_deadline = {"meeting": str(meeting), "content": "加装电梯意见征询", "lead_unit": str(lead),
                   "deadline": ""}
    page_says(browser.post("/resolution/add", no_deadline, follow_redirects=True), "请填写办结时限")
    no_lead = {**no_deadline, "lead_unit": "", "deadline": str(clock.today() + timedelta(days=10))}
    page_says(browser.post("/resolution/add", no_lead, follow_redirects=True), "请选择牵头单位")
    client, headers = api("shequ01")
    api_says(client.post("/api/v1/resolution/", headers=headers, json={
        "meeting": meeting, "content": "加装电梯意见征询", "lead_unit": lead}), "请填写办结时限")
    api_says(client.post("/api/v1/resolution/", headers=headers, json={
        "meeting": meeting, "content": "加装电梯意见征询",
        "deadline": str(clock.today() + timedelta(days=10))}), "请填写牵头单位")
    api_says(client.post("/api/v1/resolution/", headers=headers, json={
        "meeting": meeting, "content": "加装电梯意见征询", "lead_unit": None,
        "deadline": str(clock.today() + timedelta(days=10))}), "牵头单位不能为空")
    # A lead or co-unit outside the body, a deadline before the meeting: refused too.
    outsider = outsider_unit(ctx, body)
    api_says(client.post("/api/v1/resolution/", headers=headers, json={
        "meeting": meeting, "content": "x", "lead_unit": lead, "co_units": [outsider],
        "deadline": str(clock.today() + timedelta(days=10))}), "不是")
    api_says(client.post("/api/v1/resolution/", headers=headers, json={
        "meeting": meeting, "content": "x", "lead_unit": lead, "co_units": [lead],
        "deadline": str(clock.today() + timedelta(days=10))}), "配合单位不能包含牵头单位")
    held = ctx.execute(text("SELECT held_on FROM meeting WHERE id = :i"), {"i": meeting}).scalar()
    day_before = date.fromisoformat(str(held)[:10]) - timedelta(days=1)
    api_says(client.post("/api/v1/resolution/", headers=headers, json={
        "meeting": meeting, "content": "x", "lead_unit": lead, "deadline": str(day_before)}),
        "办结时限不能早于会议召开日期")
    planned = make_meeting(ctx, body, held=False, planned=fresh_day())
    api_says(client.post("/api/v1/resolution/", headers=headers, json={
        "meeting": planned, "content": "x", "lead_unit": lead,
        "deadline": str(clock.today() + timedelta(days=10))}), "只能为已召开的会议登记议定事项")
    assert count(ctx, "resolution") == before
    # With both, through the form, with co-units: saved.
    co = member_units(ctx, body)[1:3]
    response = browser.post("/resolution/add", {**no_deadline, "deadline": str(clock.today() + timedelta(days=10)),
                                                "co_units": [str(u) for u in co]},
                            follow_redirects=True)
    assert response.status_code == 200
    assert count(ctx, "resolution") == before + 1
    saved = ctx.execute(text("SELECT id FROM resolution ORDER BY id DESC")).scalars().first()
    assert set(ctx.execute(text("SELECT unit_id FROM resolution_co_unit WHERE resolution_id = :r"),
                           {"r": saved}).scalars()) == set(co)


def meeting_row(ctx, pk):
    return ctx.execute(text("SELECT status, held_on, place FROM meeting WHERE id = :i"),
                       {"i": pk}).one()


def test_a_meeting_held_in_the_future_is_refused(ctx, as_user, api):
    body = body_id(ctx)
    planned = make_meeting(ctx, body, held=False)
    before = meeting_row(ctx, planned)
    tomorrow = str(clock.today() + timedelta(days=1))
    url = f"/meeting/transition/{planned}/hold"
    response = as_user("shequ01").post(url, {"held_on": tomorrow, "place": "会议室"},
                                       form_url=url, follow_redirects=True)
    page_says(response, "晚于今天")
    client, headers = api("shequ01")
    api_says(client.post(f"/api/v1/meeting/{planned}/transition/hold", headers=headers,
                         json={"held_on": tomorrow}), "晚于今天")
    assert meeting_row(ctx, planned) == before
    # Held today: fine; then moving its held date into the future is refused as well.
    done = client.post(f"/api/v1/meeting/{planned}/transition/hold", headers=headers,
                       json={"held_on": str(clock.today()), "place": "党群服务中心"})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert meeting_row(ctx, planned)[0] == "已召开"
    api_says(client.put(f"/api/v1/meeting/{planned}", headers=headers,
                        json={"held_on": tomorrow}), "晚于今天")
    assert str(meeting_row(ctx, planned)[1])[:10] == str(clock.today())


def test_a_meeting_is_cancelled_with_a_reason_and_a_held_one_is_not_deleted(ctx, as_user, api):
    body = body_id(ctx)
    client, headers = api("shequ01")
    planned = make_meeting(ctx, body, held=False)
    api_says(client.post(f"/api/v1/meeting/{planned}/transition/cancel", headers=headers,
                         json={}), "请填写取消原因")
    ok = client.post(f"/api/v1/meeting/{planned}/transition/cancel", headers=headers,
                     json={"reason": "与防汛工作冲突"})
    assert ok.status_code == 200 and meeting_row(ctx, planned)[0] == "已取消"
    held = make_meeting(ctx, body)
    api_says(client.delete(f"/api/v1/meeting/{held}", headers=headers), "不能删除")
    assert count(ctx, "meeting", "id = :i AND deleted_on IS NULL", i=held) == 1


# --- the resolution's moves -----------------------------------------------------------------------

def res_row(ctx, pk):
    return ctx.execute(text("SELECT status, closed_on, result FROM resolution WHERE id = :i"),
                       {"i": pk}).one()


def test_a_resolution_moves_from_todo_to_done_and_back(ctx, api):
    body = body_id(ctx)
    lead = unit_of(ctx, "danwei01")
    meeting = make_meeting(ctx, body)
    pk = make_resolution(ctx, meeting, lead, deadline=clock.today() + timedelta(days=20))
    liaison, liaison_headers = api("danwei01")
    other, other_headers = api("danwei02")
    admin, admin_headers = api("shequ01")
    # Only the lead unit (or the host) starts it; another unit does not even see it.
    assert other.post(f"/api/v1/resolution/{pk}/transition/start",
                      headers=other_headers).status_code == 404
    assert liaison.post(f"/api/v1/resolution/{pk}/transition/start",
                        headers=liaison_headers).status_code == 200
    assert res_row(ctx, pk).status == "办理中"
    # Closing is the host's, with a result.
    assert liaison.post(f"/api/v1/resolution/{pk}/transition/close", headers=liaison_headers,
                        json={"result": "已完成"}).status_code == 403
    api_says(admin.post(f"/api/v1/resolution/{pk}/transition/close", headers=admin_headers,
                        json={}), "请填写办理结果")
    api_says(admin.post(f"/api/v1/resolution/{pk}/transition/close", headers=admin_headers,
                        json={"result": "已完成", "closed_on": str(clock.today() + timedelta(days=1))}),
             "办结日期不能晚于今天")
    assert res_row(ctx, pk).status == "办理中"
    assert admin.post(f"/api/v1/resolution/{pk}/transition/close", headers=admin_headers,
                      json={"result": "电梯意见征询完成"}).status_code == 200
    status, closed_on, result = res_row(ctx, pk)
    assert (status, str(closed_on)[:10], result) == ("已办结", str(clock.today()), "电梯意见征询完成")
    assert admin.post(f"/api/v1/resolution/{pk}/transition/close", headers=admin_headers,
                      json={"result": "again"}).status_code == 409
    api_says(liaison.post("/api/v1/supervision_note/", headers=liaison_headers, json={
        "resolution": pk, "content": "补报进展", "note_date": str(clock.today())}), "该议定事项已办结")
    assert count(ctx, "supervision_note", "resolution_id = :r", r=pk) == 0
    assert admin.post(f"/api/v1/resolution/{pk}/transition/reopen", headers=admin_headers,
                      json={"reason": "群众反映电梯方案仍有分歧"}).status_code == 200
    assert res_row(ctx, pk)[:2] == ("办理中", None)
    note = ctx.execute(text("SELECT content FROM supervision_note WHERE resolution_id = :r"),
                       {"r": pk}).scalars().all()
    assert note == ["重新办理：群众反映电梯方案仍有分歧"]


# --- the meeting page ---------------------------------------------------------------------------

def test_the_next_meeting_lists_the_bodys_open_resolutions_for_review(ctx, as_user):
    body = body_id(ctx)
    upcoming = ctx.execute(text(
        "SELECT id, planned_date FROM meeting WHERE body_id = :b AND status = '计划中' "
        "AND planned_date >= :t AND deleted_on IS NULL ORDER BY planned_date, id"),
        {"b": body, "t": clock.today()}).first()
    assert upcoming, "the seed plans the coming months"
    rows = ctx.execute(text(
        "SELECT r.id, r.status FROM resolution r JOIN meeting m ON m.id = r.meeting_id "
        "WHERE m.body_id = :b AND m.planned_date < :d AND r.deleted_on IS NULL"),
        {"b": body, "d": upcoming.planned_date}).all()
    open_ids = {r.id for r in rows if r.status != "已办结"}
    closed_ids = {r.id for r in rows if r.status == "已办结"}
    assert open_ids and closed_ids
    page = as_user("shequ01").get(f"/meeting/show/{upcoming.id}").get_data(as_text=True)
    review = page.split("提请本次会议审议", 1)[1].split("附件", 1)[0]
    import re
    listed = {int(pk) for pk in re.findall(r'href="/resolution/show/(\d+)"', review)}
    assert listed == open_ids
    assert "逾期" in review  # the seed leaves some open past their deadline


def test_a_held_meeting_reads_like_a_record(ctx, as_user):
    meeting = ctx.execute(text(
        "SELECT m.id FROM meeting m WHERE m.body_id = :b AND m.status = '已召开' AND m.type = '季研讨会' "
        "AND EXISTS (SELECT 1 FROM resolution r WHERE r.meeting_id = m.id) ORDER BY m.id"),
        {"b": body_id(ctx)}).scalars().first()
    page = as_user("shequ01").get(f"/meeting/show/{meeting}").get_data(as_text=True)
    for part in ("参会情况", "议题", "会议纪要", "议定事项", "牵头单位", "办结时限", "附件"):
        assert part in page, part
    # The minutes as pasted: paragraphs and numbered items, kept in their own numbering.
    assert '<ol class="gj-minutes-ol"><li><span class="gj-marker">一、</span>会议议题</li>' in page
    assert "None" not in page.split("会议纪要", 1)[0].split("查看会议", 1)[-1]
    lead = ctx.execute(text("SELECT u.name FROM resolution r JOIN unit u ON u.id = r.lead_unit_id "
                            "WHERE r.meeting_id = :m ORDER BY r.id"), {"m": meeting}).scalars().first()
    assert lead in page.split("议定事项", 2)[-1]


def test_a_unit_that_leaves_the_body_keeps_its_resolutions_workable(ctx, api):
    body = body_id(ctx)
    leaving = member_units(ctx, body)[-1]
    meeting = make_meeting(ctx, body)
    pk = make_resolution(ctx, meeting, leaving, deadline=clock.today() + timedelta(days=5))
    membership = ctx.execute(text("SELECT id FROM body_member WHERE body_id = :b AND unit_id = :u"),
                             {"b": body, "u": leaving}).scalar()
    client, headers = api("shequ01")
    assert client.delete(f"/api/v1/body_member/{membership}", headers=headers).status_code == 200
    try:
        assert client.post(f"/api/v1/resolution/{pk}/transition/close", headers=headers,
                           json={"result": "已完成"}).status_code == 200
        # It may no longer be given new work, though.
        api_says(client.post("/api/v1/resolution/", headers=headers, json={
            "meeting": meeting, "content": "新的事项", "lead_unit": leaving,
            "deadline": str(clock.today() + timedelta(days=5))}), "不是")
    finally:
        with ctx.session() as session:
            session.execute(text("UPDATE body_member SET deleted_on = NULL, deleted_by_id = NULL, "
                                 "member_key = :k WHERE id = :i"),
                            {"k": f"{body}:{leaving}", "i": membership})
            session.commit()
    assert res_row(ctx, pk).status == "已办结"


def test_attendance_is_recorded_from_the_meeting_page_unit_by_unit(ctx, as_user):
    body = body_id(ctx)
    meeting = make_meeting(ctx, body, "年总结会")
    unit = member_units(ctx, body)[0]
    browser = as_user("shequ01")
    page = browser.get(f"/meeting/show/{meeting}").get_data(as_text=True)
    link = f"/attendance/add?_flt_0_meeting={meeting}&amp;_flt_0_unit={unit}"
    assert link in page
    url = link.replace("&amp;", "&")
    response = browser.post(url, {"attendee": "王局长", "attendee_level": "一把手", "status": "出席",
                                  "note": ""})
    assert response.status_code == 302
    row = ctx.execute(text("SELECT meeting_id, unit_id, attendee, attendee_level FROM attendance "
                           "WHERE meeting_id = :m"), {"m": meeting}).one()
    assert tuple(row) == (meeting, unit, "王局长", "一把手")
    assert link not in browser.get(f"/meeting/show/{meeting}").get_data(as_text=True)
