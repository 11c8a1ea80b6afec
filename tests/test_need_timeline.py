"""A need's timeline (issue 22): its steps read from the audit trail's transition records, each
with its time; a 重办 appears as a new round and the earlier round stays as it was."""
import re

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.db


def test_the_timeline_shows_each_step_and_a_reopening_as_a_new_round(ctx, api, as_user):
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()
    category = ctx.execute(text("SELECT id FROM dictionary WHERE kind='need_category' ORDER BY id")).scalar()
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username='danwei01'")).scalar()
    admin, admin_headers = api("shequ01")
    liaison, liaison_headers = api("danwei01")
    pk = admin.post("/api/v1/need/", headers=admin_headers, json={
        "community": community, "category": category, "title": "时间线测试", "source": "社区"}).json["id"]

    def move(client, headers, name, **body):
        response = client.post(f"/api/v1/need/{pk}/transition/{name}", headers=headers, json=body)
        assert response.status_code == 200, response.json

    move(admin, admin_headers, "accept")
    move(admin, admin_headers, "dispatch", assigned_unit=unit)
    move(liaison, liaison_headers, "take")
    move(liaison, liaison_headers, "complete", result="第一次办结")
    move(admin, admin_headers, "review", satisfaction=1, comment="不满意")
    move(admin, admin_headers, "reopen")
    move(liaison, liaison_headers, "complete", result="第二次办结")

    page = as_user("shequ01").get(f"/need/show/{pk}").get_data(as_text=True)
    timeline = page[page.index("办理时间线"):]
    rows = re.findall(r"<tr><td>(第\d+轮)</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]*)</td>"
                      r"<td>([^<]*)</td></tr>", timeline)
    assert [(r[0], r[1], r[4]) for r in rows] == [
        ("第1轮", "提交（群众接单）", "待受理"), ("第1轮", "平台接单", "已受理"),
        ("第1轮", "会商派单", "已派单"), ("第1轮", "接单", "办理中"), ("第1轮", "办结", "已办结"),
        ("第1轮", "回访评单", "已回访"), ("第2轮", "重办", "办理中"), ("第2轮", "办结", "已办结")]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r[2]) for r in rows)
    assert rows[3][3] == "danwei01" and rows[1][3] == "shequ01"
    # the liaison sees the same timeline on its phone page
    phone = as_user("danwei01").get(f"/m/need/{pk}").get_data(as_text=True)
    assert phone.count("第2轮") == 2 and "第1轮" in phone


def test_a_need_given_a_purged_needs_id_starts_its_own_timeline(ctx, api, as_user):
    """SQLite gives an erased row's id to the next row; the old need's trail is not the new one's."""
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()
    category = ctx.execute(text("SELECT id FROM dictionary WHERE kind='need_category' ORDER BY id")).scalar()
    admin, headers = api("shequ01")

    def submit(title):
        return admin.post("/api/v1/need/", headers=headers, json={
            "community": community, "category": category, "title": title, "source": "社区"}).json["id"]

    old = submit("将被清除的需求")
    assert admin.post(f"/api/v1/need/{old}/transition/accept", headers=headers, json={}).status_code == 200
    # As `flask gongjian purge` erases a binned row: the row goes, its audit trail stays.
    with ctx.session() as session:
        session.execute(text("DELETE FROM need WHERE id = :i"), {"i": old})
        session.commit()
    new = submit("新需求")

    page = as_user("shequ01").get(f"/need/show/{new}").get_data(as_text=True)
    timeline = page[page.index("办理时间线"):]
    steps = re.findall(r"<tr><td>(第\d+轮)</td><td>([^<]+)</td>", timeline)
    assert steps == [("第1轮", "提交（群众接单）")]
