"""The phone pages in Debian's chromium at 390×844 (issue 22): the liaison opens the login
page on a phone, follows it to the phone pages, takes a dispatched need on /m/need/<id> and
completes it with a photo. No page of the walk scrolls sideways. Screenshots in artifacts/."""
import pytest
from sqlalchemy import text

from tests.browser.conftest import ARTIFACTS, log_in, offline_page
from tests.conftest import api_token
from tests.test_mobile import JPEG

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 3}
NO_SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"


def dispatched_need(app, ctx) -> int:
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()
    category = ctx.execute(text("SELECT id FROM dictionary WHERE kind='need_category' "
                                "ORDER BY id")).scalar()
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username='danwei01'")).scalar()
    client, headers = app.test_client(), api_token(app, "shequ01")
    response = client.post("/api/v1/need/", headers=headers, json={
        "community": community, "category": category, "title": "路灯不亮（手机旅程）",
        "content": "3号楼前的路灯连续三晚不亮，老人夜间出行不便，请尽快修复。" * 3,
        "urgency": "一般", "source": "社区"})
    pk = response.json["id"]
    for name, body in (("accept", {}), ("dispatch", {"assigned_unit": unit, "note": "请联系物业"})):
        assert client.post(f"/api/v1/need/{pk}/transition/{name}", headers=headers,
                           json=body).status_code == 200
    return pk


def take_and_complete(page, pk, photo, result, fits):
    """On /m/need/<pk> (open): 接单 with a photo, then 办结 with the result and a photo."""
    fits("need-dispatched")
    take = page.locator("form.m-move:has(button[value=take])")
    take.locator("input[type=file]").set_input_files(str(photo))
    take.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert "已接单" in page.content()
    fits("need-taken")
    complete = page.locator("form.m-move:has(button[value=complete])")
    complete.locator("textarea[name=result]").fill(result)
    complete.locator("input[type=file]").set_input_files(str(photo))
    complete.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert "已办结" in page.content()
    fits("need-done")


def test_the_liaison_takes_and_completes_a_need_on_the_phone(app, browser, server, ctx, tmp_path):
    pk = dispatched_need(app, ctx)
    photo = tmp_path / "现场.jpg"
    photo.write_bytes(JPEG)
    page, outside = offline_page(browser, server, **PHONE)

    def fits(name):
        page.screenshot(path=str(ARTIFACTS / f"mobile-{name}.png"), full_page=True)
        assert page.evaluate(NO_SIDEWAYS), f"{name} scrolls sideways at 390 px"

    page.goto(f"{server}/login/")
    fits("login")
    log_in(page, server, "danwei01")
    fits("home")
    page.click("text=切换到手机版")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/m/")
    fits("todo")
    page.click(f"a[href='/m/need/{pk}']")
    page.wait_for_load_state("networkidle")
    take_and_complete(page, pk, photo, "已联系供电所更换灯具，晚间复查正常", fits)
    row = ctx.execute(text("SELECT status, result, handling_photo_id FROM need WHERE id=:i"),
                      {"i": pk}).one()
    assert row.status == "已办结" and row.result.startswith("已联系供电所")
    assert row.handling_photo_id is not None
    page.click("text=我的")
    page.wait_for_load_state("networkidle")
    fits("me")
    assert outside == []


def test_the_loop_from_the_residents_tap_to_the_dashboard(app, browser, server, ctx, tmp_path):
    """The issue's acceptance walk: a resident files a need on the intake page with a photo;
    the community accepts and dispatches it; the liaison takes it on /m/need/<id> and completes
    it with a photo; the resident rates it from the tracking page; the community adopts the
    rating; the dashboard counts it closed within its limit, with its satisfaction."""
    from tests.resident import file_from_phone, phone_photo, rate_from_phone

    code = ctx.execute(text("SELECT o.code FROM ab_user u JOIN organization o ON o.id = u.org_id "
                            "WHERE u.username = 'shequ01'")).scalar()
    resident, outside = offline_page(browser, server, **PHONE)

    def fits(page, name):
        page.screenshot(path=str(ARTIFACTS / f"walk-{name}.png"), full_page=True)
        assert page.evaluate(NO_SIDEWAYS), f"{name} scrolls sideways at 390 px"

    tracking = file_from_phone(resident, server, code, "小区东门路灯不亮（全程验收）", phone_photo(),
                               before_submit=lambda: fits(resident, "intake"), phone="13955550022")
    fits(resident, "tracking")
    pk = ctx.execute(text("SELECT id FROM need WHERE tracking_code=:c"), {"c": tracking}).scalar()
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username='danwei01'")).scalar()
    client, headers = app.test_client(), api_token(app, "shequ01")
    for name, body in (("accept", {}), ("dispatch", {"assigned_unit": unit})):
        assert client.post(f"/api/v1/need/{pk}/transition/{name}", headers=headers,
                           json=body).status_code == 200

    liaison, liaison_outside = offline_page(browser, server, **PHONE)
    log_in(liaison, server, "danwei01")
    liaison.goto(f"{server}/m/")
    fits(liaison, "liaison-todo")
    liaison.click(f"a[href='/m/need/{pk}']")
    liaison.wait_for_load_state("networkidle")
    photo = tmp_path / "完成.jpg"
    photo.write_bytes(JPEG)
    take_and_complete(liaison, pk, photo, "已更换东门路灯", lambda name: fits(liaison, name))

    rate_from_phone(resident, server, tracking, 5, "当天就修好了")
    fits(resident, "rated")
    assert client.post(f"/api/v1/need/{pk}/transition/adopt_rating", headers=headers,
                       json={}).status_code == 200

    admin, admin_outside = offline_page(browser, server)
    log_in(admin, server, "shequ01")
    admin.goto(f"{server}/dashboard/")
    admin.wait_for_load_state("networkidle")
    board = admin.content()
    assert "按期办结率" in board and "平均满意度" in board
    # the cards' drill-downs list the need: closed within its limit, and rated 5
    admin.goto(f"{server}/need/list/?_flt_0_closed_on_time=1&_flt_1_title=小区东门路灯不亮（全程验收）")
    assert f"/need/show/{pk}" in admin.content()
    admin.goto(f"{server}/need/show/{pk}")
    shown = admin.content()
    assert "已回访" in shown and "当天就修好了" in shown
    row = ctx.execute(text("SELECT status, satisfaction, completed_on <= deadline AS in_time "
                           "FROM need WHERE id=:i"), {"i": pk}).one()
    assert row.status == "已回访" and row.satisfaction == 5 and row.in_time
    assert outside == [] and liaison_outside == [] and admin_outside == []
