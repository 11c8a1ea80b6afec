"""Time limits from intake, per step (issue 22): each step of the loop is due a share of the
urgency's whole limit after intake, 办理 by its deadline; a 复杂 need is taken on with a plan
whose date becomes its deadline. Checked with the clock moved."""
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import text

from app import clock

pytestmark = pytest.mark.db


@pytest.fixture
def file_need(api, ctx):
    """File a need as the community admin (in 待受理), at the current (moved) time."""
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()
    category = ctx.execute(text("SELECT id FROM dictionary WHERE kind='need_category' "
                                "ORDER BY id")).scalar()

    def make(urgency, title="时限测试需求"):
        client, headers = api("shequ01")
        response = client.post("/api/v1/need/", headers=headers, json={
            "community": community, "category": category, "title": title, "urgency": urgency,
            "source": "社区"})
        assert response.status_code == 201, response.json
        return response.json["id"]
    return make


def stored(ctx, pk, column):
    value = ctx.execute(text(f"SELECT {column} FROM need WHERE id=:i"), {"i": pk}).scalar()
    return value if isinstance(value, datetime) or value is None else datetime.fromisoformat(str(value))


def read(api, pk, username="shequ01"):
    client, headers = api(username)
    response = client.get(f"/api/v1/need/{pk}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["result"]


def move(api, username, pk, name, **body):
    client, headers = api(username)
    return client.post(f"/api/v1/need/{pk}/transition/{name}", headers=headers, json=body)


def later(**delta):
    return time_machine.travel(datetime.now(UTC) + timedelta(**delta), tick=True)


def overdue_ids(api, username="shequ01"):
    client, headers = api(username)
    ids, page = set(), 0
    while True:
        response = client.get("/api/v1/need/?q=(filters:!((col:overdue,opr:flag,value:1)),"
                              f"page:{page},page_size:100)", headers=headers)
        assert response.status_code == 200, response.json
        ids |= set(response.json["ids"])
        if len(response.json["ids"]) < 100:
            return ids
        page += 1


def test_a_major_need_left_waiting_two_days_is_overdue_at_acceptance(api, file_need):
    pk = file_need("重大")
    row = read(api, pk)
    assert not row["overdue"] and row["overdue_step"] == ""
    # 受理 is due 10 % of 重大's day after intake: 2 h 24 min.
    with later(hours=2):
        assert not read(api, pk)["overdue"]
    with later(days=2):
        row = read(api, pk)
        assert row["overdue"] and row["overdue_step"] == "受理"
        assert pk in overdue_ids(api)


def test_each_step_is_due_its_share_of_the_limit_after_intake(api, file_need):
    pk = file_need("一般")  # the whole loop within 1 hour
    with later(minutes=7):  # 受理 was due at 6 minutes
        assert read(api, pk)["overdue_step"] == "受理"
        assert move(api, "shequ01", pk, "accept").status_code == 200
        # 派单 is due at 18 minutes: accepted late, but not late at 派单 yet
        row = read(api, pk)
        assert not row["overdue"] and row["overdue_step"] == ""
    with later(minutes=20):
        assert read(api, pk)["overdue_step"] == "派单"


def test_the_default_deadline_counts_from_intake(ctx, api, file_need):
    pk = file_need("重大")
    created = stored(ctx, pk, "created_on")
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username='danwei01'")).scalar()
    with later(hours=5):
        assert move(api, "shequ01", pk, "accept").status_code == 200
        assert move(api, "shequ01", pk, "dispatch", assigned_unit=unit).status_code == 200
        deadline = stored(ctx, pk, "deadline")
        assert abs(deadline - (created + timedelta(days=1))) <= timedelta(seconds=1)
        # dispatched 5 h after intake: 接单 was due at 12 h, so not late yet
        assert not read(api, pk)["overdue"]
    with later(hours=13):
        assert read(api, pk)["overdue_step"] == "接单"


def dispatched_complex_need(ctx, api, file_need):
    pk = file_need("复杂", title="老旧小区加装电梯")
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username='danwei01'")).scalar()
    assert move(api, "shequ01", pk, "accept").status_code == 200
    assert move(api, "shequ01", pk, "dispatch", assigned_unit=unit).status_code == 200
    return pk


def test_a_complex_need_taken_without_a_plan_is_refused(ctx, api, file_need):
    pk = dispatched_complex_need(ctx, api, file_need)
    response = move(api, "danwei01", pk, "take")
    assert response.status_code == 422 and "办理方案" in response.json["message"]
    response = move(api, "danwei01", pk, "take", plan="分三步实施")
    assert response.status_code == 422 and "方案完成日期" in response.json["message"]
    yesterday = (clock.today() - timedelta(days=1)).isoformat()
    response = move(api, "danwei01", pk, "take", plan="分三步实施", plan_due=yesterday)
    assert response.status_code == 422 and "不能早于今天" in response.json["message"]
    row = read(api, pk)
    assert row["status"] == "已派单" and row["plan"] is None


def test_a_complex_need_is_due_by_its_plans_date(ctx, api, file_need):
    pk = dispatched_complex_need(ctx, api, file_need)
    due = clock.today() + timedelta(days=30)
    response = move(api, "danwei01", pk, "take", plan="先勘测，再征求意见，后施工", plan_due=due.isoformat())
    assert response.status_code == 200, response.json
    row = read(api, pk)
    assert row["status"] == "办理中" and row["plan"] == "先勘测，再征求意见，后施工"
    assert row["plan_due"] == due.isoformat()
    # the deadline is the end of the plan's day on the zone's calendar
    assert clock.to_local(stored(ctx, pk, "deadline")) == \
        datetime.combine(due + timedelta(days=1), datetime.min.time())
    # past the week a plan was due in, but within the plan: not late
    with later(days=10):
        assert not read(api, pk)["overdue"]
    with later(days=32):
        assert read(api, pk)["overdue_step"] == "办理"


def test_the_need_list_shows_the_step_it_is_late_at(as_user, file_need):
    pk = file_need("重大", title="逾期环节显示测试")
    with later(days=2):
        page = as_user("shequ01").get("/need/list/?_flt_0_overdue=1&psize_NeedView=100"
                                      "&_flt_1_title=逾期环节显示测试").get_data(as_text=True)
        assert f"/need/show/{pk}" in page and "受理" in page
