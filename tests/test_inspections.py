"""季度督查 and 工作要点 (issue 26), walked through a quarter of 社区 YX0101 (shequ01's, in
jiedao01's street): the street inspects the community and danwei01's unit, two findings fail
and open rectification tasks — one closed on time, one late — while the responsible side
reports progress and may not close its own; the round is published on the public board. The
community's work-plan items are closed and overdue. Scope: a unit sees only its tasks, a unit
of another street not even the round. Bad input is told in Chinese with nothing written —
every count checked with plain SQL."""
import io
import struct
import zlib
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from app import clock
from app.models.inspections import Rectification
from app.security.principal import unscoped
from tests.conftest import tables_kept_by
from tests.test_meetings_support import api_says, count, unit_of

pytestmark = pytest.mark.db

TODAY = clock.today()
# The round took place four months ago: its tasks' deadlines and closing dates are all past.
INSPECTED = TODAY - timedelta(days=120)
QUARTER = (INSPECTED.month + 2) // 3
DEADLINE = INSPECTED + timedelta(days=30)


def png() -> bytes:
    """A real 1×1 PNG."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def org_of(ctx, username) -> int:
    return ctx.execute(text("SELECT org_id FROM ab_user WHERE username = :u"),
                       {"u": username}).scalar()


def item_ids(ctx) -> list[int]:
    return list(ctx.execute(text(
        "SELECT id FROM inspection_item WHERE deleted_on IS NULL ORDER BY seq, id")).scalars())


def post(api, username, resource, body, status=201) -> int:
    client, headers = api(username)
    response = client.post(f"/api/v1/{resource}/", json=body, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json.get("id")


def move(api, username, resource, pk, name, body=None):
    client, headers = api(username) if isinstance(username, str) else username
    return client.post(f"/api/v1/{resource}/{pk}/transition/{name}", json=body or {},
                       headers=headers)


def show(api, username, resource, pk):
    client, headers = api(username)
    return client.get(f"/api/v1/{resource}/{pk}", headers=headers)


@pytest.fixture(scope="module")
def quarter(app):
    """The round, its findings and rectification tasks, as the street made them."""
    from tests.conftest import Db, api_token

    ctx = Db(app)

    def api(username):
        return app.test_client(), api_token(app, username)

    with tables_kept_by(app):
        community, street = org_of(ctx, "shequ01"), org_of(ctx, "jiedao01")
        unit1, unit2 = unit_of(ctx, "danwei01"), unit_of(ctx, "danwei02")
        items = item_ids(ctx)
        assert len(items) >= 5, "the migration seeds the checklist's five defaults"
        round_id = post(api, "jiedao01", "inspection", {
            "organizer": street, "title": "社区党建工作季度督查", "year": INSPECTED.year,
            "quarter": QUARTER, "inspected_on": INSPECTED.isoformat(),
            "communities": [community], "units": [unit1], "summary": "总体良好，联系电话13912345678"})
        passing = post(api, "jiedao01", "inspection_finding", {
            "inspection": round_id, "item": items[0], "org": community, "result": "符合"})
        failing_community = post(api, "jiedao01", "inspection_finding", {
            "inspection": round_id, "item": items[1], "org": community, "result": "不符合",
            "note": "本季度未召开季研讨会"})
        failing_unit = post(api, "jiedao01", "inspection_finding", {
            "inspection": round_id, "item": items[4], "unit": unit1, "result": "部分符合",
            "note": "协议“三个一”承诺落实不到位"})
        on_time = post(api, "jiedao01", "rectification", {
            "finding": failing_community, "org": community, "deadline": DEADLINE.isoformat(),
            "content": "补开季研讨会，一把手出席"})
        late = post(api, "jiedao01", "rectification", {
            "finding": failing_unit, "lead_unit": unit1, "deadline": DEADLINE.isoformat()})
        yield {"round": round_id, "community": community, "street": street, "unit1": unit1,
               "unit2": unit2, "items": items, "passing": passing,
               "failing": (failing_community, failing_unit), "on_time": on_time, "late": late}


def test_a_quarter_of_inspection_closes_one_rectification_on_time_and_one_late(ctx, api, quarter):
    q = quarter
    assert count(ctx, "inspection_finding", "inspection_id = :r AND deleted_on IS NULL",
                 r=q["round"]) == 3
    # The rectification's text defaults to what its finding says.
    assert ctx.execute(text("SELECT content FROM rectification WHERE id = :i"),
                       {"i": q["late"]}).scalar() == "共驻共建协议：协议“三个一”承诺落实不到位"
    # The responsible unit starts its task and reports progress (its unit filled in for it).
    assert move(api, "danwei01", "rectification", q["late"], "start").status_code == 200
    note = post(api, "danwei01", "rectification_note", {
        "rectification": q["late"], "content": "已与社区重新约定服务项目", "progress": 50})
    assert ctx.execute(text("SELECT unit_id FROM rectification_note WHERE id = :i"),
                       {"i": note}).scalar() == q["unit1"]
    # The community answering for the other task reports its progress too.
    post(api, "shequ01", "rectification_note", {
        "rectification": q["on_time"], "content": "已定于下周召开季研讨会", "progress": 30})
    # The street closes them: one within the time limit, one after it.
    closed = {q["on_time"]: INSPECTED + timedelta(days=20), q["late"]: INSPECTED + timedelta(days=45)}
    for pk, on in closed.items():
        response = move(api, "jiedao01", "rectification", pk, "close",
                        {"closed_on": on.isoformat(), "result": "已整改到位"})
        assert response.status_code == 200, response.get_data(as_text=True)
    assert show(api, "jiedao01", "rectification", q["on_time"]).json["result"]["closed_on_time"] is True
    assert show(api, "jiedao01", "rectification", q["late"]).json["result"]["closed_on_time"] is False
    # The hybrid counts in SQL what a plain query counts.
    with ctx.session() as session, unscoped():
        in_sql = set(session.execute(select(Rectification.id).where(
            Rectification.id.in_(list(closed)), Rectification.closed_on_time)).scalars())
    plain = set(ctx.execute(text(
        "SELECT id FROM rectification WHERE status = '已办结' AND closed_on <= deadline "
        "AND id IN (:a, :b)"), {"a": q["on_time"], "b": q["late"]}).scalars())
    assert in_sql == plain == {q["on_time"]}


def test_the_round_is_on_the_public_board_only_once_published(ctx, api, app, quarter):
    q = quarter
    board = app.test_client()
    page = board.get(f"/public/community/{q['community']}").get_data(as_text=True)
    assert "社区党建工作季度督查" not in page
    assert move(api, "jiedao01", "inspection", q["round"], "publish").status_code == 200
    page = board.get(f"/public/community/{q['community']}").get_data(as_text=True)
    assert "社区党建工作季度督查" in page
    assert "13912345678" not in page  # a phone number in the summary is masked
    # Published, the round's findings stand: a change is refused, nothing written.
    client, headers = api("jiedao01")
    response = client.put(f"/api/v1/inspection_finding/{q['passing']}", json={"result": "不符合"},
                          headers=headers)
    api_says(response, "已公示")
    assert ctx.execute(text("SELECT result FROM inspection_finding WHERE id = :i"),
                       {"i": q["passing"]}).scalar() == "符合"
    assert move(api, "jiedao01", "inspection", q["round"], "withdraw").status_code == 200
    page = board.get(f"/public/community/{q['community']}").get_data(as_text=True)
    assert "社区党建工作季度督查" not in page


def test_the_responsible_side_cannot_close_its_own_rectification(ctx, api, quarter):
    q = quarter
    task = post(api, "jiedao01", "rectification", {
        "finding": q["failing"][0], "org": q["community"],
        "deadline": (TODAY + timedelta(days=10)).isoformat()})
    task2 = post(api, "jiedao01", "rectification", {
        "finding": q["failing"][1], "lead_unit": q["unit1"],
        "deadline": (TODAY + timedelta(days=10)).isoformat()})
    community, liaison = api("shequ01"), api("danwei01")
    before = count(ctx, "audit_log")
    # The community answering for it holds an admin role, yet is not the inspecting side.
    api_says(move(api, community, "rectification", task, "close", {"result": "自行办结"}),
             "只有督查方", status=403)
    # The unit's liaison may not close at all.
    api_says(move(api, liaison, "rectification", task2, "close", {"result": "自行办结"}),
             "不能执行", status=403)
    assert count(ctx, "rectification", "id IN (:a, :b) AND status = '待办' "
                 "AND closed_on IS NULL AND result IS NULL", a=task, b=task2) == 2
    assert count(ctx, "audit_log") == before


def test_bad_input_is_told_in_chinese_and_nothing_is_written(ctx, api, quarter):
    q = quarter
    findings = count(ctx, "inspection_finding")
    # A subject outside the round: danwei02's unit was not inspected.
    client, headers = api("jiedao01")
    response = client.post("/api/v1/inspection_finding/", headers=headers, json={
        "inspection": q["round"], "item": q["items"][2], "unit": q["unit2"], "result": "符合"})
    api_says(response, "不是本轮督查")
    assert count(ctx, "inspection_finding") == findings
    tasks = count(ctx, "rectification")
    response = client.post("/api/v1/rectification/", headers=headers, json={
        "finding": q["failing"][0], "deadline": DEADLINE.isoformat()})
    api_says(response, "请选择整改责任单位或责任党组织")
    response = client.post("/api/v1/rectification/", headers=headers, json={
        "finding": q["failing"][0], "org": q["community"]})
    assert response.status_code in (400, 422) and "时限" in str(response.json["message"])
    # A finding that passed opens no task.
    response = client.post("/api/v1/rectification/", headers=headers, json={
        "finding": q["passing"], "org": q["community"], "deadline": DEADLINE.isoformat()})
    api_says(response, "需要整改")
    assert count(ctx, "rectification") == tasks


def test_a_unit_sees_only_its_tasks_and_another_street_not_the_round(ctx, api, quarter):
    q = quarter
    for username in ("danwei02", "danwei03"):
        assert show(api, username, "rectification", q["late"]).status_code == 404
        assert show(api, username, "inspection_finding", q["failing"][1]).status_code == 404
    assert show(api, "danwei03", "inspection", q["round"]).status_code == 404
    assert show(api, "danwei01", "inspection", q["round"]).status_code == 200
    assert show(api, "danwei01", "rectification", q["on_time"]).status_code == 404
    assert show(api, "shequ01", "rectification", q["on_time"]).status_code == 200
    client, headers = api("danwei01")
    listed = {row["id"] for row in client.get(
        "/api/v1/rectification/?q=(page_size:100)", headers=headers).json["result"]}
    owned = set(ctx.execute(text(
        "SELECT id FROM rectification WHERE lead_unit_id = :u AND deleted_on IS NULL"),
        {"u": q["unit1"]}).scalars())
    assert listed == owned and q["late"] in listed
    # The unit was told of its task (the notice of its creation).
    assert count(ctx, "notice", "event = 'rectification_assigned' AND record_id = :r",
                 r=q["late"]) >= 1


def test_a_finding_photo_must_be_an_image_within_the_limit(ctx, as_user, quarter):
    q = quarter
    browser = as_user("jiedao01")
    pk = q["failing"][0]
    photos = count(ctx, "finding_photo")
    browser.post(f"/inspection_finding/attach/{pk}",
                 {"file": (io.BytesIO(b"%PDF-1.4 not an image"), "report.pdf")},
                 form_url=f"/inspection_finding/show/{pk}", content_type="multipart/form-data")
    assert count(ctx, "finding_photo") == photos
    response = browser.post(f"/inspection_finding/attach/{pk}",
                            {"file": (io.BytesIO(png()), "scene.png")},
                            form_url=f"/inspection_finding/show/{pk}",
                            content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200
    assert count(ctx, "finding_photo", "finding_id = :f", f=pk) == 1


def test_work_plan_items_are_closed_or_overdue_and_on_the_units_to_do(ctx, api, as_user, quarter):
    q = quarter
    year = TODAY.year
    overdue = post(api, "shequ01", "work_plan_item", {
        "org": q["community"], "year": year, "number": "T1", "content": "建立双报到党员服务台账",
        "lead_unit": q["unit1"], "deadline": (TODAY - timedelta(days=10)).isoformat()})
    done = post(api, "shequ01", "work_plan_item", {
        "org": q["community"], "year": year, "number": "T2", "content": "共建项目签约",
        "lead_unit": q["unit1"], "co_units": [q["unit2"]],
        "deadline": (TODAY - timedelta(days=5)).isoformat()})
    # The same number twice in a year is refused.
    client, headers = api("shequ01")
    api_says(client.post("/api/v1/work_plan_item/", headers=headers, json={
        "org": q["community"], "year": year, "number": "T1", "content": "重复",
        "lead_unit": q["unit1"], "deadline": TODAY.isoformat()}), "已有序号")
    response = move(api, "shequ01", "work_plan_item", done, "close",
                    {"closed_on": (TODAY - timedelta(days=6)).isoformat(), "result": "已签约"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert show(api, "shequ01", "work_plan_item", overdue).json["result"]["overdue"] is True
    assert show(api, "shequ01", "work_plan_item", done).json["result"]["closed_on_time"] is True
    # The co-unit reads the item; a unit of another street does not.
    assert show(api, "danwei02", "work_plan_item", done).status_code == 200
    assert show(api, "danwei03", "work_plan_item", done).status_code == 404
    # On the lead unit's to-do page, counted as a plain query counts them.
    open_items = count(ctx, "work_plan_item", "lead_unit_id = :u AND status != '已办结' "
                       "AND deleted_on IS NULL", u=q["unit1"])
    page = as_user("danwei01").get("/").get_data(as_text=True)
    assert "本单位牵头、未办结的工作要点" in page
    assert open_items >= 1
