"""The need's five-step loop (DOMAIN.md §3), through the UI routes and the API: every move by
the right role, every wrong move refused with the row unchanged, bad input refused, and
claims safe under concurrency."""
import re
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from app import clock
from tests import need_limits
from tests.conftest import api_token

pytestmark = pytest.mark.db


def link(ctx, username, column):
    return ctx.execute(text(f"SELECT {column} FROM ab_user WHERE username=:u"), {"u": username}).scalar()


def need_row(ctx, pk):
    return ctx.execute(text("SELECT * FROM need WHERE id=:i"), {"i": pk}).mappings().one()


def transitions_of(ctx, pk):
    return ctx.execute(text("SELECT action, changes FROM audit_log WHERE resource='need' "
                            "AND record_id=:i ORDER BY id"), {"i": str(pk)}).all()


@pytest.fixture
def community(ctx):
    return ctx.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()


@pytest.fixture
def category(ctx):
    return ctx.execute(text("SELECT id FROM dictionary WHERE kind='need_category' ORDER BY id")).scalar()


@pytest.fixture
def new_need(api, community, category):
    """A fresh need filed by the community admin, in 待受理."""
    def make(title="测试需求", urgency="一般"):
        client, headers = api("shequ01")
        response = client.post("/api/v1/need/", headers=headers, json={
            "community": community, "category": category, "title": title, "content": "内容",
            "urgency": urgency, "source": "社区"})
        assert response.status_code == 201, response.json
        return response.json["id"]
    return make


def move(api, username, pk, name, **body):
    client, headers = api(username)
    return client.post(f"/api/v1/need/{pk}/transition/{name}", headers=headers, json=body)


def ui_move(as_user, username, pk, name, **form):
    browser = as_user(username)
    return browser.post(f"/need/transition/{pk}/{name}", form, form_url="/need/list/",
                        follow_redirects=True)


def test_a_need_walks_the_whole_loop(ctx, api, as_user, new_need):
    unit1 = link(ctx, "danwei01", "unit_id")
    pk = new_need("独居老人助餐")
    assert need_row(ctx, pk)["status"] == "待受理"
    # 平台接单 by the community admin, through the show page's button
    page = ui_move(as_user, "shequ01", pk, "accept")
    assert "已平台接单" in page.get_data(as_text=True)
    assert need_row(ctx, pk)["status"] == "已受理"
    # 会商派单 through the API, to danwei01's unit; the deadline follows the urgency (一般: 1 h)
    before = clock.utcnow()
    response = move(api, "shequ01", pk, "dispatch", assigned_unit=unit1, note="请尽快办理")
    assert response.status_code == 200, response.json
    row = need_row(ctx, pk)
    assert row["status"] == "已派单" and row["assigned_unit_id"] == unit1
    deadline = row["deadline"] if isinstance(row["deadline"], datetime) else datetime.fromisoformat(str(row["deadline"]))
    assert timedelta(minutes=59) <= deadline - before <= timedelta(minutes=61)
    # 单位接单 by the unit's liaison, through the UI
    ui_move(as_user, "danwei01", pk, "take")
    assert need_row(ctx, pk)["status"] == "办理中"
    # 办结 with its result, through the API
    assert move(api, "danwei01", pk, "complete", result="已送餐上门").status_code == 200
    assert need_row(ctx, pk)["status"] == "已办结"
    # 回访评单 with a low satisfaction, then 重办 and again
    ui_move(as_user, "shequ01", pk, "review", satisfaction="2", comment="送餐不及时")
    assert need_row(ctx, pk)["status"] == "已回访" and need_row(ctx, pk)["satisfaction"] == 2
    assert move(api, "shequ01", pk, "reopen").status_code == 200
    assert need_row(ctx, pk)["status"] == "办理中"
    assert move(api, "danwei01", pk, "complete", result="改为每日按时送餐").status_code == 200
    assert move(api, "shequ01", pk, "review", satisfaction=5).status_code == 200
    row = need_row(ctx, pk)
    assert row["status"] == "已回访" and row["satisfaction"] == 5
    # each move is one audit record of kind transition, named by the move
    moves = [(a, re.search(r'"_operation": "(\w+)"', c or "")) for a, c in transitions_of(ctx, pk)]
    assert [m.group(1) for a, m in moves if a == "transition"] == [
        "accept", "dispatch", "take", "complete", "review", "reopen", "complete", "review"]


def test_reject_and_decline(ctx, api, new_need):
    unit1 = link(ctx, "danwei01", "unit_id")
    pk = new_need()
    assert move(api, "shequ01", pk, "reject", reason="不属于受理范围").status_code == 200
    assert need_row(ctx, pk)["status"] == "已驳回"
    pk = new_need()
    move(api, "shequ01", pk, "accept")
    move(api, "shequ01", pk, "dispatch", assigned_unit=unit1)
    response = move(api, "danwei01", pk, "decline", reason="超出本单位能力")
    assert response.status_code == 200, response.json
    row = need_row(ctx, pk)
    assert row["status"] == "已受理" and row["assigned_unit_id"] is None
    assert row["decline_reason"] == "超出本单位能力"


def test_members_dispatched_take_it(ctx, api, new_need):
    member = link(ctx, "dangyuan01", "member_id")
    pk = new_need()
    move(api, "shequ01", pk, "accept")
    assert move(api, "shequ01", pk, "dispatch", assigned_members=[member]).status_code == 200
    assert move(api, "dangyuan01", pk, "take").status_code == 200
    assert need_row(ctx, pk)["status"] == "办理中"


def snapshot(ctx, pk):
    row = dict(need_row(ctx, pk))
    row.pop("changed_on", None)
    return row


@pytest.mark.parametrize("status_moves", [
    (["accept"], ["accept", "take", "complete", "review", "reopen", "decline"]),
    ([], ["dispatch", "take", "complete", "review", "reopen"]),
])
def test_moves_not_allowed_from_the_current_status_change_nothing(ctx, api, new_need, status_moves):
    done, refused = status_moves
    unit1 = link(ctx, "danwei01", "unit_id")
    pk = new_need()
    for name in done:
        move(api, "shequ01", pk, name)
    before = snapshot(ctx, pk)
    for name in refused:
        body = {"assigned_unit": unit1, "result": "x", "satisfaction": 1, "reason": "x"}
        response = move(api, "shequ01" if name != "take" else "danwei01", pk, name, **body)
        assert response.status_code in (403, 404, 409), (name, response.json)
        assert "不能" in response.json.get("message", "") or response.status_code == 404
    assert snapshot(ctx, pk) == before


def test_wrong_role_or_wrong_unit_is_refused(ctx, api, as_user, new_need):
    unit1 = link(ctx, "danwei01", "unit_id")
    pk = new_need()
    # a liaison cannot accept; an auditor cannot either (403 with a Chinese message)
    before = snapshot(ctx, pk)
    response = move(api, "shenji", pk, "accept")
    assert response.status_code == 403 and "不能执行" in response.json["message"]
    assert snapshot(ctx, pk) == before
    move(api, "shequ01", pk, "accept")
    move(api, "shequ01", pk, "dispatch", assigned_unit=unit1)
    before = snapshot(ctx, pk)
    # another unit's liaison does not even see it
    assert move(api, "danwei02", pk, "take").status_code == 404
    assert ui_move(as_user, "danwei02", pk, "take").status_code == 404
    # the community admin may not take on the unit's behalf
    assert move(api, "shequ01", pk, "take").status_code == 403
    assert snapshot(ctx, pk) == before
    # after taking, another liaison cannot complete it
    move(api, "danwei01", pk, "take")
    assert move(api, "danwei03", pk, "complete", result="x").status_code == 404
    assert need_row(ctx, pk)["status"] == "办理中"


def test_bad_input_is_refused_in_chinese(ctx, api, as_user, new_need):
    unit1 = link(ctx, "danwei01", "unit_id")
    pk = new_need()
    assert move(api, "shequ01", pk, "reject").status_code == 422
    response = move(api, "shequ01", pk, "reject", reason="  ")
    assert response.status_code == 422 and "驳回原因" in response.json["message"]
    move(api, "shequ01", pk, "accept")
    before = snapshot(ctx, pk)
    response = move(api, "shequ01", pk, "dispatch", note="没有承办方")
    assert response.status_code == 422 and "至少选择一个承办单位或党员" in response.json["message"]
    past = (clock.utcnow() - timedelta(days=1)).isoformat(timespec="minutes")
    response = move(api, "shequ01", pk, "dispatch", assigned_unit=unit1, deadline=past)
    assert response.status_code == 422 and "不能早于当前时间" in response.json["message"]
    page = ui_move(as_user, "shequ01", pk, "dispatch", note="没有承办方").get_data(as_text=True)
    assert "至少选择一个承办单位或党员" in page
    assert snapshot(ctx, pk) == before
    move(api, "shequ01", pk, "dispatch", assigned_unit=unit1)
    move(api, "danwei01", pk, "take")
    response = move(api, "danwei01", pk, "complete")
    assert response.status_code == 422 and "办理结果" in response.json["message"]
    move(api, "danwei01", pk, "complete", result="完成")
    before = snapshot(ctx, pk)
    for bad in (0, 6, "abc"):
        response = move(api, "shequ01", pk, "review", satisfaction=bad)
        assert response.status_code == 422 and "满意度" in response.json["message"]
    assert snapshot(ctx, pk) == before


def test_a_code_no_list_offers_is_refused_in_chinese(ctx, api, community, category):
    """The API's body is not a form's select: an urgency no time limit knows (紧急) or an
    unknown channel is refused, nothing written, and an existing need keeps its code."""
    client, headers = api("shequ01")
    before = ctx.execute(text("SELECT count(*) FROM need")).scalar()
    body = {"community": community, "category": category, "title": "代码之外", "source": "社区"}
    for field, bad, label in (("urgency", "紧急", "紧急程度"), ("source", "微信群", "来源渠道")):
        response = client.post("/api/v1/need/", headers=headers, json={**body, field: bad})
        assert response.status_code == 422, response.json
        assert f"「{label}」不能是「{bad}」" in response.json["message"]
    assert ctx.execute(text("SELECT count(*) FROM need")).scalar() == before
    pk = client.post("/api/v1/need/", headers=headers, json=body).json["id"]
    response = client.put(f"/api/v1/need/{pk}", headers=headers, json={"urgency": "特急"})
    assert response.status_code == 422 and "一般、重大、复杂" in response.json["message"]
    assert need_row(ctx, pk)["urgency"] == "一般"


def test_overdue_is_computed_and_filterable(ctx, as_user):
    now = clock.utcnow()
    expected = {row.id for row in ctx.execute(text(
        f"SELECT t.id, {need_limits.COLUMNS} FROM need t WHERE t.deleted_on IS NULL"))
        if need_limits.is_overdue(row._mapping, now)}
    assert expected, "the seed has overdue needs"
    from tests.security.support import listed_on_pages

    listed = listed_on_pages(as_user("zuzhibu"), "/need/list/?_flt_0_overdue=1", "need", "NeedView")
    assert listed == expected


def race(app, calls):
    """Run the calls at the same moment, each as its own user and connection."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    tokens = [api_token(app, username) for username, _, _ in calls]  # log in first, in turn

    def run(i, headers, url, body):
        client = app.test_client()
        barrier.wait(timeout=60)
        response = client.post(url, headers=headers, json=body)
        results[i] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=run, args=(i, tokens[i], url, body))
               for i, (_, url, body) in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_assignees_taking_the_same_need_at_once_one_wins(app, ctx, api, new_need):
    unit1 = link(ctx, "danwei01", "unit_id")
    member = link(ctx, "dangyuan01", "member_id")
    pk = new_need()
    move(api, "shequ01", pk, "accept")
    move(api, "shequ01", pk, "dispatch", assigned_unit=unit1, assigned_members=[member])
    url = f"/api/v1/need/{pk}/transition/take"
    results = race(app, [("danwei01", url, {}), ("dangyuan01", url, {})])
    codes = sorted(code for code, _ in results)
    assert codes == [200, 409], results
    loser = next(body for code, body in results if code == 409)
    assert ("已被他人接单" in loser["message"] or "不能执行" in loser["message"]
            or "稍后" in loser["message"]), loser
    assert need_row(ctx, pk)["status"] == "办理中"


def test_two_claiming_the_same_wish_at_once_one_wins(app, ctx, api, community):
    client, headers = api("shequ01")
    wish = client.post("/api/v1/micro_wish/", headers=headers, json={
        "resident_name": "王奶奶", "community": community, "content": "想要一副老花镜"})
    assert wish.status_code == 201, wish.json
    pk = wish.json["id"]
    assert client.post(f"/api/v1/micro_wish/{pk}/transition/publish", headers=headers).status_code == 200
    url = f"/api/v1/micro_wish/{pk}/transition/claim"
    results = race(app, [("danwei01", url, {}), ("dangyuan01", url, {})])
    assert sorted(code for code, _ in results) == [200, 409], results
    loser = next(body for code, body in results if code == 409)
    assert ("已被他人认领" in loser["message"] or "不能执行" in loser["message"]
            or "稍后" in loser["message"]), loser
    row = ctx.execute(text("SELECT status, claimant_unit_id, claimant_member_id FROM micro_wish "
                           "WHERE id=:i"), {"i": pk}).one()
    assert row.status == "已认领"
    assert (row.claimant_unit_id is None) != (row.claimant_member_id is None)
