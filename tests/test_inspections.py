"""季度督查 (issue 26) around a round of 社区 YX0101 (shequ01's, in jiedao01's street): the street
inspects the community and danwei01's unit; each failing finding opens its rectification task
in the same save (responsible party and deadline asked on the finding; nothing written when
either is missing); the round is published on the public board; the responsible side may not
close its own task; scope; a finding's photos checked, and deleted (and restored from the
recycle bin) only by the inspecting side while the round is open. The quarter's tasks closed
on time and late, and the work plan, are walked with the year's assessment in
tests/test_assessment.py."""
import io
from datetime import timedelta

import pytest
from sqlalchemy import text

from app import clock
from tests.conftest import tables_kept_by
from tests.test_meetings_support import api_says, count, unit_of
from tests.test_supervision_support import item_ids, org_of, png, post, show, task_of
from tests.test_supervision_support import move_task as move

pytestmark = pytest.mark.db

# The round took place four months ago.
INSPECTED = clock.today() - timedelta(days=120)
QUARTER = (INSPECTED.month + 2) // 3
DEADLINE = INSPECTED + timedelta(days=30)


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
        # A failing finding names who rectifies and by when; saving it opens the task.
        failing_community = post(api, "jiedao01", "inspection_finding", {
            "inspection": round_id, "item": items[1], "org": community, "result": "不符合",
            "note": "本季度未召开季研讨会", "responsible_org": community,
            "deadline": DEADLINE.isoformat()})
        failing_unit = post(api, "jiedao01", "inspection_finding", {
            "inspection": round_id, "item": items[4], "unit": unit1, "result": "部分符合",
            "note": "协议“三个一”承诺落实不到位", "responsible_unit": unit1,
            "deadline": DEADLINE.isoformat()})
        on_time, late = task_of(ctx, failing_community), task_of(ctx, failing_unit)
        yield {"round": round_id, "community": community, "street": street, "unit1": unit1,
               "unit2": unit2, "items": items, "passing": passing,
               "failing": (failing_community, failing_unit), "on_time": on_time, "late": late}


def test_the_round_is_on_the_public_board_only_once_published(ctx, api, app, quarter):
    q = quarter
    board = app.test_client()
    page = board.get(f"/public/community/{q['community']}").get_data(as_text=True)
    assert "社区党建工作季度督查" not in page
    assert "社区党建工作季度督查" not in board.get("/public/").get_data(as_text=True)
    assert move(api, "jiedao01", "inspection", q["round"], "publish").status_code == 200
    page = board.get(f"/public/community/{q['community']}").get_data(as_text=True)
    assert "社区党建工作季度督查" in page
    assert "13912345678" not in page  # a phone number in the summary is masked
    # The board's index lists the round — names and counts, linking the community's page.
    index = board.get("/public/").get_data(as_text=True)
    line = index[index.index("社区党建工作季度督查"):]
    line = line[:line.index("</li>")]
    failing = count(ctx, "inspection_finding", "inspection_id = :r AND result = '不符合' "
                    "AND deleted_on IS NULL", r=q["round"])
    assert f"不符合 {failing}" in line and f"/public/community/{q['community']}#inspections" in line
    assert "13912345678" not in index and "总体良好" not in index
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
    assert "社区党建工作季度督查" not in board.get("/public/").get_data(as_text=True)


def test_a_failing_finding_opens_its_rectification_in_the_same_save(ctx, api, quarter):
    q = quarter
    # The two failing findings of the round each opened one task, with the party and the
    # deadline asked on the finding and the finding's note as its text; the passing one none.
    rows = ctx.execute(text(
        "SELECT f.id, f.result, r.org_id, r.lead_unit_id, r.deadline, r.status, r.content "
        "FROM inspection_finding f LEFT JOIN rectification r ON r.finding_id = f.id "
        "WHERE f.id IN (:a, :b, :c) ORDER BY f.id"),
        {"a": q["passing"], "b": q["failing"][0], "c": q["failing"][1]}).all()
    assert [(r.id, r.result) for r in rows] == [
        (q["passing"], "符合"), (q["failing"][0], "不符合"), (q["failing"][1], "部分符合")]
    passing, community, unit = rows
    assert passing.org_id is None and passing.lead_unit_id is None and passing.status is None
    assert (community.org_id, community.lead_unit_id, str(community.deadline)) == (
        q["community"], None, DEADLINE.isoformat())
    assert (unit.org_id, unit.lead_unit_id, unit.status) == (None, q["unit1"], "待办")
    assert unit.content == "共驻共建协议：协议“三个一”承诺落实不到位"
    # One audit record each: the finding's creation and its task's, in the same transaction.
    for resource, pk in (("inspection_finding", q["failing"][1]), ("rectification", q["late"])):
        assert count(ctx, "audit_log", "resource = :r AND record_id = :i AND action = 'create'",
                     r=resource, i=str(pk)) == 1
    # Made by the inspector who recorded the finding.
    makers = ctx.execute(text(
        "SELECT f.created_by_id, r.created_by_id FROM inspection_finding f "
        "JOIN rectification r ON r.finding_id = f.id WHERE f.id = :f"), {"f": q["failing"][1]}).one()
    assert makers[0] is not None and makers[0] == makers[1] == ctx.execute(text(
        "SELECT id FROM ab_user WHERE username = 'jiedao01'")).scalar()
    # The responsible unit is told of its task (the notice of its creation).
    assert count(ctx, "notice", "event = 'rectification_assigned' AND record_id = :r",
                 r=q["late"]) >= 1

    # A finding turned failing on edit opens its task then; editing it again opens no other.
    client, headers = api("jiedao01")
    later = post(api, "jiedao01", "inspection_finding", {
        "inspection": q["round"], "item": q["items"][3], "org": q["community"], "result": "符合"})
    assert count(ctx, "rectification", "finding_id = :f", f=later) == 0
    due = (INSPECTED + timedelta(days=60)).isoformat()
    changed = client.put(f"/api/v1/inspection_finding/{later}", headers=headers, json={
        "result": "不符合", "note": "未按月通报服务情况", "responsible_org": q["community"],
        "deadline": due})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    task = task_of(ctx, later)
    assert client.put(f"/api/v1/inspection_finding/{later}", headers=headers,
                      json={"note": "未按月通报双报到党员服务情况"}).status_code == 200
    assert task_of(ctx, later) == task
    # Once the task is open, its party and deadline are the task's, and the finding cannot be
    # turned back to 符合 while it stands — each refused, nothing written.
    api_says(client.put(f"/api/v1/inspection_finding/{later}", headers=headers,
                        json={"deadline": clock.today().isoformat()}), "请在整改任务中修改")
    api_says(client.put(f"/api/v1/inspection_finding/{later}", headers=headers,
                        json={"result": "符合"}), "已下达整改任务")
    assert ctx.execute(text("SELECT result, deadline FROM inspection_finding WHERE id = :i"),
                       {"i": later}).one() == ("不符合", ctx.execute(text(
                           "SELECT deadline FROM rectification WHERE id = :i"), {"i": task}).scalar())
    # There is no second way of opening a task: the task is never added on its own.
    response = client.post("/api/v1/rectification/", headers=headers, json={
        "finding": q["failing"][0], "org": q["community"], "deadline": DEADLINE.isoformat()})
    assert response.status_code in (404, 405)


def test_the_responsible_side_cannot_close_its_own_rectification(ctx, api, quarter):
    q = quarter
    soon = (clock.today() + timedelta(days=10)).isoformat()
    task = task_of(ctx, post(api, "jiedao01", "inspection_finding", {
        "inspection": q["round"], "item": q["items"][2], "org": q["community"],
        "result": "不符合", "note": "需求未按时办结", "responsible_org": q["community"],
        "deadline": soon}))
    task2 = task_of(ctx, post(api, "jiedao01", "inspection_finding", {
        "inspection": q["round"], "item": q["items"][3], "unit": q["unit1"],
        "result": "不符合", "note": "未按月开展服务", "responsible_unit": q["unit1"],
        "deadline": soon}))
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
    client, headers = api("jiedao01")  # (its login is audited: counted after it)
    findings, tasks, records = (count(ctx, "inspection_finding"), count(ctx, "rectification"),
                                count(ctx, "audit_log"))
    # A subject outside the round: danwei02's unit was not inspected.
    response = client.post("/api/v1/inspection_finding/", headers=headers, json={
        "inspection": q["round"], "item": q["items"][2], "unit": q["unit2"], "result": "符合"})
    api_says(response, "不是本轮督查")
    # A failing finding without its responsible party, or without its deadline, or with a
    # deadline before the inspection: refused, neither the finding nor a task written.
    failing = {"inspection": q["round"], "item": q["items"][2], "unit": q["unit1"],
               "result": "不符合", "note": "台账缺失"}
    api_says(client.post("/api/v1/inspection_finding/", headers=headers, json={
        **failing, "deadline": DEADLINE.isoformat()}), "请选择整改责任单位或责任党组织")
    api_says(client.post("/api/v1/inspection_finding/", headers=headers, json={
        **failing, "responsible_unit": q["unit1"]}), "请填写整改时限")
    api_says(client.post("/api/v1/inspection_finding/", headers=headers, json={
        **failing, "responsible_unit": q["unit1"],
        "deadline": (INSPECTED - timedelta(days=1)).isoformat()}), "不能早于督查日期")
    assert (count(ctx, "inspection_finding"), count(ctx, "rectification"),
            count(ctx, "audit_log")) == (findings, tasks, records)


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
    page = f"/inspection_finding/show/{pk}"
    photos = count(ctx, "finding_photo")
    browser.post(f"/inspection_finding/attach/{pk}",
                 {"file": (io.BytesIO(b"%PDF-1.4 not an image"), "report.pdf")},
                 form_url=page, content_type="multipart/form-data")
    assert count(ctx, "finding_photo") == photos
    response = browser.post(f"/inspection_finding/attach/{pk}",
                            {"file": (io.BytesIO(png()), "scene.png")},
                            form_url=page, content_type="multipart/form-data",
                            follow_redirects=True)
    assert response.status_code == 200
    assert count(ctx, "finding_photo", "finding_id = :f", f=pk) == 1


def restore_photo(app, pk, username="jiedao01"):
    """Restore a photo from the recycle bin as the bin does (services.recycle.restore_rows),
    as the user: None, or the refusal's message."""
    from sqlalchemy import select

    from app.errors import DomainError
    from app.extensions import db
    from app.models.inspections import FindingPhoto
    from app.services.recycle import restore_rows
    from tests.test_notices import as_user

    with as_user(app, username) as session:
        photo = session.execute(select(FindingPhoto).where(FindingPhoto.id == pk)
                                .execution_options(include_deleted=True)).scalar_one()
        try:
            restore_rows(session, [photo])
        except DomainError as exc:
            return str(exc)
        finally:
            db.session.remove()


def test_a_finding_photo_is_deleted_and_restored_by_the_inspecting_side_while_the_round_is_open(
        app, ctx, api, as_user, quarter):
    q = quarter
    pk = q["failing"][1]
    page = f"/inspection_finding/show/{pk}"
    inspector = as_user("jiedao01")
    for name in ("a.png", "b.png"):
        inspector.post(f"/inspection_finding/attach/{pk}", {"file": (io.BytesIO(png()), name)},
                       form_url=page, content_type="multipart/form-data")
    first, second = ctx.execute(text("SELECT id FROM finding_photo WHERE finding_id = :f "
                                      "AND deleted_on IS NULL ORDER BY id"), {"f": pk}).scalars()
    assert f"/inspection_finding/unphoto/{pk}/{first}" in inspector.get(page).get_data(as_text=True)
    live = "finding_id = :f AND deleted_on IS NULL"
    # The inspected sides read the photo but may not delete it: the community (its subject's
    # admin) and danwei01's liaison (the unit inspected) — refused, nothing written.
    for username in ("shequ01", "danwei01"):
        viewer = as_user(username)
        assert "/unphoto/" not in viewer.get(page).get_data(as_text=True)
        viewer.post(f"/inspection_finding/unphoto/{pk}/{first}", {}, form_url=page)
        assert count(ctx, "finding_photo", live, f=pk) == 2
    # The inspector deletes one: one audit record, the other photo stays.
    response = inspector.post(f"/inspection_finding/unphoto/{pk}/{first}", {}, form_url=page,
                              follow_redirects=True)
    assert "已删除照片" in response.get_data(as_text=True)
    assert list(ctx.execute(text(f"SELECT id FROM finding_photo WHERE {live}"),
                            {"f": pk}).scalars()) == [second]
    assert count(ctx, "audit_log", "resource = 'finding_photo' AND record_id = :i "
                 "AND action = 'delete'", i=str(first)) == 1
    # Published, the round's photos stand.
    assert move(api, "jiedao01", "inspection", q["round"], "publish").status_code == 200
    try:
        response = inspector.post(f"/inspection_finding/unphoto/{pk}/{second}", {},
                                  form_url=page, follow_redirects=True)
        assert "已公示" in response.get_data(as_text=True)
        assert count(ctx, "finding_photo", live, f=pk) == 1
        # ... and the one deleted before stays in the recycle bin: its restore is refused, as a
        # delete is (nothing written).
        assert restore_photo(app, first) == "该轮督查已公示，不能恢复照片；如需恢复，请先撤回公示"
        assert count(ctx, "finding_photo", live, f=pk) == 1
    finally:
        assert move(api, "jiedao01", "inspection", q["round"], "withdraw").status_code == 200
    # Withdrawn, the round's photo comes back from the bin.
    assert restore_photo(app, first) is None
    assert count(ctx, "finding_photo", live, f=pk) == 2
